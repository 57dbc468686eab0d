/* Product profiles: the shipped examples, strict validation, serials. */
#include "st-config.h"
#include "st-error.h"
#include "st-ossl.h"
#include "st-profile.h"
#include "st-util.h"

#include <string.h>

#define EXAMPLE_CSR ST_SOURCE_DIR "/profiles/example-device-csr.profile"
#define EXAMPLE_KEY ST_SOURCE_DIR "/profiles/example-station-key.profile"

/* A valid profile that the error table edits line by line. */
static const char base_profile[] =
  "[profile]\n"
  "name = base\n"
  "description = a test profile\n"
  "model = M1\n"
  "[key]\n"
  "mode = device-csr\n"
  "algorithm = ec-p256\n"
  "[certificate]\n"
  "subject = CN={uid},O=Example Devices Ltd,serialNumber={serial}\n"
  "san = URI:urn:example:device:{uid}\n"
  "validity-days = 3650\n"
  "key-usage = digitalSignature\n"
  "[serial]\n"
  "format = EX-{seq:06}\n"
  "[device]\n"
  "lock = false\n";

static void
test_examples (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StProfile) p = st_profile_load (EXAMPLE_CSR, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (p->name, ==, "example-device-csr");
  g_assert_null (p->model);   /* left open: any agent device may be provisioned */
  g_assert_cmpint (p->key_mode, ==, ST_KEY_MODE_DEVICE_CSR);
  g_assert_cmpint (p->alg, ==, ST_ALG_EC_P256);
  g_assert_false (p->lock);
  g_assert_false (p->no_expiry);
  g_assert_cmpint (p->validity_days, ==, 3650);
  g_assert_cmpuint (p->backdate_minutes, ==, 60);
  g_assert_cmpuint (p->key_usage, ==, KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT);
  g_assert_cmpuint (g_strv_length (p->san_templates), ==, 1);
  g_assert_cmpstr (p->san_templates[0], ==, "URI:urn:example:device:{uid}");
  g_assert_cmpuint (g_strv_length (p->eku), ==, 1);
  g_assert_cmpstr (p->eku[0], ==, "1.3.6.1.5.5.7.3.2");
  g_assert_cmpstr (p->serial_format, ==, "EX-{yy}{mm}-{seq:06}");
  g_assert_cmpstr (p->path, ==, EXAMPLE_CSR);

  StLinkParams defaults;
  st_link_params_init_defaults (&defaults);
  g_assert_cmpuint (p->link.baud, ==, 115200);
  g_assert_cmpuint (p->link.timeout_ms, ==, defaults.timeout_ms);
  g_assert_cmpuint (p->link.keygen_timeout_ms, ==, defaults.keygen_timeout_ms);
  g_assert_cmpuint (p->link.commit_timeout_ms, ==, defaults.commit_timeout_ms);
  g_assert_cmpuint (p->link.retries, ==, defaults.retries);

  /* text and sha256 are the file's bytes */
  g_autofree gchar *contents = NULL;
  gsize len = 0;
  g_assert_true (g_file_get_contents (EXAMPLE_CSR, &contents, &len, NULL));
  g_assert_cmpstr (p->text, ==, contents);
  g_autofree gchar *sha = st_sha256_hex ((const guint8 *) contents, len);
  g_assert_cmpstr (p->sha256, ==, sha);

  /* loading the stored text validates and gives the same profile */
  g_autoptr(StProfile) q = st_profile_load_from_data (p->text, strlen (p->text), "stored", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (q->sha256, ==, p->sha256);
  g_assert_cmpstr (q->subject_template, ==, p->subject_template);
  g_assert_cmpstr (q->path, ==, "stored");
  g_assert_cmpmem (&q->link, sizeof q->link, &p->link, sizeof p->link);

  g_autoptr(StProfile) k = st_profile_load (EXAMPLE_KEY, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (k->name, ==, "example-station-key");
  g_assert_null (k->model);
  g_assert_cmpint (k->key_mode, ==, ST_KEY_MODE_STATION_KEY);
  g_assert_cmpint (k->alg, ==, ST_ALG_EC_P256);
  g_assert_true (k->no_expiry);
  g_assert_cmpint (k->validity_days, ==, 0);
  g_assert_cmpuint (k->key_usage, ==, KU_DIGITAL_SIGNATURE);
  g_assert_cmpuint (g_strv_length (k->san_templates), ==, 2);
  g_assert_cmpstr (k->san_templates[1], ==, "DNS:{uid}.devices.example.com");
  g_assert_cmpuint (g_strv_length (k->eku), ==, 2);
  g_assert_cmpstr (k->eku[1], ==, "1.3.6.1.5.5.7.3.1");
  /* no [link] group: the backend's defaults */
  g_assert_cmpmem (&k->link, sizeof k->link, &defaults, sizeof defaults);
}

static void
test_not_found (void)
{
  g_autoptr(GError) error = NULL;
  g_assert_null (st_profile_load ("/nonexistent/x.profile", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "/nonexistent/x.profile"));
}

/* Replaces the line starting with @prefix in the base profile (or appends
 * @line to the group @group when @prefix is NULL). */
static gchar *
edit_profile (const char *prefix, const char *line)
{
  g_auto(GStrv) lines = g_strsplit (base_profile, "\n", -1);
  g_autoptr(GString) out = g_string_new (NULL);
  gboolean replaced = FALSE;
  for (guint i = 0; lines[i] != NULL; i++)
    {
      if (*lines[i] == '\0' && lines[i + 1] == NULL)
        break;
      if (prefix != NULL && !replaced && g_str_has_prefix (lines[i], prefix))
        {
          replaced = TRUE;
          if (line != NULL)
            g_string_append_printf (out, "%s\n", line);
          continue;
        }
      g_string_append_printf (out, "%s\n", lines[i]);
    }
  if (prefix == NULL)
    g_string_append_printf (out, "%s\n", line);
  else
    g_assert_true (replaced);
  return g_string_free (g_steal_pointer (&out), FALSE);
}

typedef struct {
  const char *prefix;   /* line to replace, NULL to append */
  const char *line;     /* replacement, NULL to delete */
  const char *expect[4];
} ErrorCase;

static const ErrorCase error_cases[] = {
  { "algorithm", "algorithm = rsa2048",
    { "[key] algorithm=rsa2048 is not allowed", "ec-p256, ec-p384 or ed25519" } },
  { "algorithm", NULL, { "[key] algorithm is missing", "ec-p256" } },
  { "mode =", "mode = device", { "[key] mode=device is not allowed", "device-csr or station-key" } },
  { "name", "name = bad name!", { "[profile] name=bad name! is not allowed", "A-Z a-z 0-9 . _ -" } },
  { "name", NULL, { "[profile] name is missing" } },
  { "name", "name = 01234567890123456789012345678901234567890123456789012345678901234",
    { "[profile] name=0123", "1 to 64" } },
  { "model", "model = 01234567890123456789012345678901234567890123456789012345678901234",
    { "[profile] model=", "1 to 64 bytes" } },
  { NULL, "colour = red", { "[device] unknown key colour=red", "lock" } },
  { "validity-days", "validity-day = 10", { "[certificate] unknown key validity-day=10", "validity-days" } },
  { NULL, "[extras]", { "unknown group [extras]", "[profile]" } },
  { "[device]", NULL, { "[serial] unknown key lock=false", "format" } },
  { "lock", "lock = yes", { "[device] lock=yes is not allowed", "true or false" } },
  { "lock", NULL, { "[device] lock is missing", "true or false" } },
  { "validity-days", "validity-days = 0", { "[certificate] validity-days=0 is not allowed", "1 to 36500" } },
  { "validity-days", "validity-days = 36501", { "[certificate] validity-days=36501 is not allowed", "1 to 36500" } },
  { "validity-days", "validity-days = -5", { "[certificate] validity-days=-5 is not allowed" } },
  { "validity-days", "validity-days = 10 days", { "[certificate] validity-days=10 days is not allowed" } },
  { "validity-days", "validity = forever", { "[certificate] validity=forever is not allowed", "no-expiry" } },
  { "validity-days", NULL, { "[certificate] give exactly one of validity-days", "validity=no-expiry" } },
  { "validity-days", "validity-days = 10\nvalidity = no-expiry", { "[certificate]", "(both are given)" } },
  { "key-usage", "key-usage = keyCertSign", { "[certificate] key-usage=keyCertSign is not allowed", "CA:FALSE", "digitalSignature" } },
  { "key-usage", "key-usage = digitalSignature, keyAgreement",
    { "[certificate] key-usage=digitalSignature, keyAgreement is not allowed", "separate items with ';'" } },
  { "key-usage", "key-usage = digitalSignature;digitalSignature", { "[certificate] key-usage=", "lists digitalSignature twice" } },
  { "key-usage", "key-usage = keyEncipherment", { "[certificate] key-usage=keyEncipherment is not allowed with algorithm=ec-p256" } },
  { "key-usage", NULL, { "[certificate] key-usage is missing" } },
  { "subject", "subject = CN={uid},XX=foo", { "[certificate] subject=CN={uid},XX=foo is not allowed", "attribute 'XX'", "CN, O, OU" } },
  { "subject", "subject = CN={uuid}", { "[certificate] subject=CN={uuid}", "unknown placeholder {uuid}", "{uid}, {UID}, {serial} or {model}" } },
  { "subject", "subject = CN={uid},O=a=b", { "[certificate] subject=", "unescaped '='", "\\=" } },
  { "subject", "subject = CN={uid}+O=x", { "[certificate] subject=", "multi-valued" } },
  { "subject", "subject = CN={uid},C=Britain", { "[certificate] subject=", "C=Britain", "two-letter" } },
  { "subject", "subject = CN={uid},serialNumber=A_B", { "[certificate] subject=", "serialNumber=A_B", "PrintableString" } },
  { "subject", "subject = CN={uid},,O=x", { "[certificate] subject=", "attribute=value" } },
  { "subject", "subject = CN={uid},CN=again", { "[certificate] subject=", "CN is given twice" } },
  { "subject", "subject = CN={uid", { "[certificate] subject=CN={uid", "'{' without '}'" } },
  { "subject", "subject = CN=01234567890123456789012345678901234567890123456789012345678901234",
    { "[certificate] subject=", "at most 64" } },
  { "subject", NULL, { "[certificate] subject is missing" } },
  { "san", "san = IP:10.0.0.1", { "[certificate] san=IP:10.0.0.1 is not allowed", "URI:" } },
  { "san", "san = DNS:bad_host.{uid}", { "[certificate] san=DNS:bad_host.{uid} is not allowed", "DNS name" } },
  { "san", "san = URI:no scheme", { "[certificate] san=URI:no scheme is not allowed", "URI" } },
  { "san", "san = email:nobody", { "[certificate] san=email:nobody is not allowed", "e-mail" } },
  { "san", "san = URI:urn:x:{uid};;DNS:a.example", { "[certificate] san=", "empty item" } },
  { "key-usage", "key-usage = digitalSignature\nextended-key-usage = fooAuth", { "[certificate] extended-key-usage=fooAuth is not allowed", "clientAuth", "dotted OIDs" } },
  { "key-usage", "key-usage = digitalSignature\nextended-key-usage = 2.5.29.37.0", { "[certificate] extended-key-usage=2.5.29.37.0", "anyExtendedKeyUsage" } },
  { "key-usage", "key-usage = digitalSignature\nextended-key-usage = clientAuth;2.25.139898662358177256637798941297150809261", { "[certificate] extended-key-usage=2.25.139898662358177256637798941297150809261", "station's own signing purpose" } },
  { "key-usage", "key-usage = digitalSignature\nextended-key-usage = clientAuth;1.3.6.1.5.5.7.3.2", { "[certificate] extended-key-usage=1.3.6.1.5.5.7.3.2", "twice" } },
  { "key-usage", "key-usage = digitalSignature\nextended-key-usage = 1.03.4", { "[certificate] extended-key-usage=1.03.4 is not allowed" } },
  { "key-usage", "key-usage = digitalSignature\nbackdate-minutes = 1441", { "[certificate] backdate-minutes=1441 is not allowed", "0 to 1440" } },
  { "format", "format = EX-{seq:0}", { "[serial] format=EX-{seq:0} is not allowed", "1 to 20" } },
  { "format", "format = EX-{yy}", { "[serial] format=EX-{yy} has 0 {seq}" } },
  { "format", "format = {seq}-{seq}", { "[serial] format={seq}-{seq} has 2 {seq}" } },
  { "format", "format = EX_{seq}", { "[serial] format=EX_{seq} is not allowed", "'_'" } },
  { "format", "format = {month}{seq}", { "[serial] format={month}{seq}", "unknown placeholder {month}" } },
  { "format", "format = ABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJ-{seq}",
    { "[serial] format=ABCDEFGHIJ", "at most 64" } },
  { NULL, "[link]\nbaud = 12345", { "[link] baud=12345 is not allowed", "115200" } },
  { NULL, "[link]\nretries = 11", { "[link] retries=11 is not allowed", "0 to 10" } },
  { NULL, "[link]\ntimeout-ms = 0x10", { "[link] timeout-ms=0x10 is not allowed" } },
  { NULL, "[link]\nuid-length = 33", { "[link] uid-length=33 is not allowed", "1 to 32" } },
  { NULL, "[link]\nbaud = 9600\nbaud = 19200", { "[link] baud is given twice" } },
  { NULL, "[device]\nlock = true", { "the group [device] appears twice" } },
  { NULL, "name[de] = basis", { "[device] unknown key name[de]=basis" } },
  { "algorithm", "algorithm = ed25519\nkey-usage = keyAgreement", { "[key] unknown key key-usage" } },
};

static void
test_errors (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (error_cases); i++)
    {
      const ErrorCase *c = &error_cases[i];
      g_autofree gchar *text = edit_profile (c->prefix, c->line);
      g_autoptr(GError) error = NULL;
      g_autoptr(StProfile) p = st_profile_load_from_data (text, strlen (text), "t.profile", &error);
      g_test_message ("case %u (%s): %s", i, c->line ? c->line : "(deleted)",
                      error != NULL ? error->message : "accepted");
      g_assert_null (p);
      g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
      g_assert_true (g_str_has_prefix (error->message, "t.profile: "));
      for (guint k = 0; k < G_N_ELEMENTS (c->expect) && c->expect[k] != NULL; k++)
        {
          if (strstr (error->message, c->expect[k]) == NULL)
            g_test_message ("case %u: '%s' is missing", i, c->expect[k]);
          g_assert_nonnull (strstr (error->message, c->expect[k]));
        }
    }
  /* the base itself is valid */
  g_autoptr(GError) error = NULL;
  g_autoptr(StProfile) p = st_profile_load_from_data (base_profile, strlen (base_profile), "t.profile", &error);
  g_assert_no_error (error);
}

static void
test_combinations (void)
{
  /* keyAgreement is refused with Ed25519 but fine with EC */
  g_autofree gchar *ed = edit_profile ("algorithm", "algorithm = ed25519");
  g_autofree gchar *ed_ka = NULL;
  {
    g_autoptr(GString) s = g_string_new (ed);
    g_string_replace (s, "key-usage = digitalSignature", "key-usage = digitalSignature;keyAgreement", 1);
    ed_ka = g_strdup (s->str);
  }
  g_autoptr(GError) error = NULL;
  g_autoptr(StProfile) p = st_profile_load_from_data (ed_ka, strlen (ed_ka), "ed.profile", &error);
  g_assert_null (p);
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "ed.profile: [certificate] key-usage=keyAgreement is not allowed with algorithm=ed25519"));
  g_clear_error (&error);

  g_autoptr(StProfile) ok = st_profile_load_from_data (ed, strlen (ed), "ed.profile", &error);
  g_assert_no_error (error);
  g_assert_cmpint (ok->alg, ==, ST_ALG_ED25519);

  /* not UTF-8, NUL bytes, empty, too large */
  const char bad_utf8[] = "[profile]\nname = \xff\n";
  g_assert_null (st_profile_load_from_data (bad_utf8, sizeof bad_utf8 - 1, "b.profile", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_assert_true (g_str_has_prefix (error->message, "b.profile: "));
  g_clear_error (&error);
  g_assert_null (st_profile_load_from_data ("a\0b", 3, "b.profile", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_assert_null (st_profile_load_from_data ("", 0, "b.profile", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_autofree gchar *big = g_strnfill (ST_PROFILE_MAX_SIZE + 1, '#');
  g_assert_null (st_profile_load_from_data (big, ST_PROFILE_MAX_SIZE + 1, "b.profile", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "at most"));
  g_clear_error (&error);

  /* link overrides, hex addresses */
  g_autofree gchar *link = edit_profile (NULL, "[link]\nbaud = 921600\nretries = 0\nkeygen-timeout-ms = 60000\n"
                                                "blob-address = 0x0800C000\nblob-area-size = 16384\nuid-address = 0x1FFF7A10\nuid-length = 12");
  g_autoptr(StProfile) l = st_profile_load_from_data (link, strlen (link), "l.profile", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (l->link.baud, ==, 921600);
  g_assert_cmpuint (l->link.retries, ==, 0);
  g_assert_cmpuint (l->link.keygen_timeout_ms, ==, 60000);
  g_assert_cmpuint (l->link.timeout_ms, ==, 1000);
  g_assert_cmpuint (l->link.blob_address, ==, 0x0800C000);
  g_assert_cmpuint (l->link.blob_area_size, ==, 16384);
  g_assert_cmpuint (l->link.uid_address, ==, 0x1FFF7A10);
  g_assert_cmpuint (l->link.uid_length, ==, 12);
}

static void
test_serial_format (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StProfile) p = st_profile_load (EXAMPLE_CSR, &error);
  g_assert_no_error (error);
  g_autoptr(GDateTime) t = g_date_time_new_utc (2026, 3, 5, 23, 30, 0);
  g_autofree gchar *s1 = st_profile_format_serial (p, 42, t);
  g_assert_cmpstr (s1, ==, "EX-2603-000042");
  g_autofree gchar *s2 = st_profile_format_serial (p, 12345678, t);
  g_assert_cmpstr (s2, ==, "EX-2603-12345678");

  /* the station's UTC date, not the local one */
  g_autoptr(GTimeZone) tz = g_time_zone_new_identifier ("+10:00");
  g_assert_nonnull (tz);
  g_autoptr(GDateTime) local = g_date_time_new (tz, 2026, 4, 1, 5, 0, 0); /* 2026-03-31T19:00Z */
  g_autofree gchar *s3 = st_profile_format_serial (p, 7, local);
  g_assert_cmpstr (s3, ==, "EX-2603-000007");

  g_autoptr(StProfile) k = st_profile_load (EXAMPLE_KEY, &error);
  g_assert_no_error (error);
  g_autofree gchar *s4 = st_profile_format_serial (k, 3, t);
  g_assert_cmpstr (s4, ==, "GW20260305-00003");
  g_autofree gchar *s5 = st_profile_format_serial (k, G_MAXUINT64, t);
  g_assert_cmpstr (s5, ==, "GW20260305-18446744073709551615");
  g_assert_cmpuint (strlen (s5), <=, ST_PROFILE_SERIAL_MAX);

  g_autofree gchar *plain = edit_profile ("format", "format = {seq}");
  g_autoptr(StProfile) pl = st_profile_load_from_data (plain, strlen (plain), "p.profile", &error);
  g_assert_no_error (error);
  g_autofree gchar *s6 = st_profile_format_serial (pl, 0, t);
  g_assert_cmpstr (s6, ==, "0");
}

static gchar *
name_entry_text (X509_NAME *name, int i, int *nid)
{
  X509_NAME_ENTRY *e = X509_NAME_get_entry (name, i);
  g_assert_nonnull (e);
  *nid = OBJ_obj2nid (X509_NAME_ENTRY_get_object (e));
  unsigned char *utf8 = NULL;
  int n = ASN1_STRING_to_UTF8 (&utf8, X509_NAME_ENTRY_get_data (e));
  g_assert_cmpint (n, >=, 0);
  gchar *s = g_strndup ((const char *) utf8, (gsize) n);
  OPENSSL_free (utf8);
  return s;
}

static void
test_subject_template (void)
{
  const StSubjectInfo info = { "00a1b2", "Model, Mk=2", "EX-000001" };
  g_autoptr(GError) error = NULL;
  g_autoptr(X509_NAME) name = st_profile_build_subject (
      "CN=dev-{UID} ,OU=Line\\, 2 \\= east, O = Acme {model},serialNumber={serial}", &info, &error);
  g_assert_no_error (error);
  g_assert_cmpint (X509_NAME_entry_count (name), ==, 4);
  /* DER order is the reverse of the RFC 4514 text */
  int nid = 0;
  g_autofree gchar *e0 = name_entry_text (name, 0, &nid);
  g_assert_cmpint (nid, ==, NID_serialNumber);
  g_assert_cmpstr (e0, ==, "EX-000001");
  g_autofree gchar *e1 = name_entry_text (name, 1, &nid);
  g_assert_cmpint (nid, ==, NID_organizationName);
  g_assert_cmpstr (e1, ==, "Acme Model, Mk=2");
  g_autofree gchar *e2 = name_entry_text (name, 2, &nid);
  g_assert_cmpint (nid, ==, NID_organizationalUnitName);
  g_assert_cmpstr (e2, ==, "Line, 2 = east");
  g_autofree gchar *e3 = name_entry_text (name, 3, &nid);
  g_assert_cmpint (nid, ==, NID_commonName);
  g_assert_cmpstr (e3, ==, "dev-00A1B2");

  /* the serialNumber is a PrintableString */
  X509_NAME_ENTRY *sn = X509_NAME_get_entry (name, 0);
  g_assert_cmpint (ASN1_STRING_type (X509_NAME_ENTRY_get_data (sn)), ==, V_ASN1_PRINTABLESTRING);

  /* a placeholder without a value */
  const StSubjectInfo no_serial = { "00a1b2", "m", NULL };
  g_autoptr(X509_NAME) none = st_profile_build_subject ("CN={uid},serialNumber={serial}", &no_serial, &error);
  g_assert_null (none);
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "{serial}"));
  g_clear_error (&error);

  /* a device value that breaks the attribute's rules at build time */
  const StSubjectInfo long_model = { "00", "0123456789012345678901234567890123456789012345678901234567890123456789", "S" };
  g_autoptr(X509_NAME) too_long = st_profile_build_subject ("CN={model}", &long_model, &error);
  g_assert_null (too_long);
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "at most 64"));
  g_clear_error (&error);

  /* SAN: {model} that is not a DNS label */
  const char *const sans[] = { "DNS:{model}.example.com", NULL };
  g_autoptr(GENERAL_NAMES) gn = st_profile_build_san (sans, &info, &error);
  g_assert_null (gn);
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  const char *const good[] = { "URI:urn:x:{uid}", "email:dev-{uid}@example.com", NULL };
  g_autoptr(GENERAL_NAMES) gn2 = st_profile_build_san (good, &info, &error);
  g_assert_no_error (error);
  g_assert_cmpint (sk_GENERAL_NAME_num (gn2), ==, 2);
  int type = 0;
  ASN1_IA5STRING *v = GENERAL_NAME_get0_value (sk_GENERAL_NAME_value (gn2, 1), &type);
  g_assert_cmpint (type, ==, GEN_EMAIL);
  g_assert_cmpmem (ASN1_STRING_get0_data (v), ASN1_STRING_length (v), "dev-00a1b2@example.com", 22);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/profile/examples", test_examples);
  g_test_add_func ("/profile/not-found", test_not_found);
  g_test_add_func ("/profile/errors", test_errors);
  g_test_add_func ("/profile/combinations", test_combinations);
  g_test_add_func ("/profile/serial-format", test_serial_format);
  g_test_add_func ("/profile/subject-template", test_subject_template);
  return g_test_run ();
}
