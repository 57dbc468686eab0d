/* The streaming manifest, station-manifest/2 (issue 16): st_manifest_verify
 * on folders this program writes with software keys it makes (a root, a
 * station signing certificate with the station-signing purpose, a device
 * certificate per unit with its own key, built by a recorded profile), the
 * files as st_manifest_export writes them.
 *
 * /manifest-stream/verifies: a genuine folder verifies.
 * /manifest-stream/tamper: one changed line of units.jsonl, a changed
 * manifest.json, a changed SHA256SUMS, a line dropped, a line added, two
 * lines swapped: each is refused with the report line that says which.
 * The same changes resealed by the signing key (a new SHA256SUMS signed:
 * an insider with the key, or a bug) are still refused by the line count,
 * the counts and the CSV compared line by line.
 * /manifest-stream/memory-bound: peak RSS of verifying N and 4N units, each
 * in a child process (this program, "verify DIR ROOT PIN"): the 4N run
 * stays within N's and a margin far below what reading the units whole
 * would take.
 *
 * Run as "gen DIR N" it writes a folder of N units (DIR.root.pem and
 * DIR.signer-pin beside); as "verify DIR ROOT PIN" it verifies one and
 * prints the peak RSS and CPU time; as "check-written DIR ROOT PIN" the
 * export's self-check alone; as "export HOME BATCH OUT" it runs
 * st_manifest_export alone on a station home (tests/bench/manifest-scale). */
#include "st-ca.h"
#include "st-config.h"
#include "st-db.h"
#include "st-error.h"
#include "st-issue.h"
#include "st-manifest.h"
#include "st-ossl.h"
#include "st-profile.h"
#include "st-util.h"
#include "st-verify.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <openssl/cms.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define ST_GEN_SUBJECT "CN={uid},O=Stream Test Devices"
#define ST_GEN_PURPOSE "2.25.139898662358177256637798941297150809261"

typedef struct {
  EVP_PKEY *root_key, *signer_key;
  X509 *root, *signer;
} StGenKeys;

static EVP_PKEY *
st_gen_key (void)
{
  EVP_PKEY *k = EVP_EC_gen ("P-256");
  g_assert_nonnull (k);
  return k;
}

static void
st_gen_ext (X509 *cert, X509 *issuer, int nid, const char *value)
{
  X509V3_CTX ctx;
  X509V3_set_ctx (&ctx, issuer, cert, NULL, NULL, 0);
  X509_EXTENSION *ext = X509V3_EXT_conf_nid (NULL, &ctx, nid, value);
  g_assert_nonnull (ext);
  g_assert_true (X509_add_ext (cert, ext, -1));
  X509_EXTENSION_free (ext);
}

static X509 *
st_gen_cert (X509_NAME *subject, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, guint64 serial)
{
  X509 *c = X509_new ();
  X509_set_version (c, 2);
  ASN1_INTEGER_set_uint64 (X509_get_serialNumber (c), serial);
  X509_set_subject_name (c, subject);
  X509_set_issuer_name (c, issuer != NULL ? X509_get_subject_name (issuer) : subject);
  X509_gmtime_adj (X509_getm_notBefore (c), -3600);
  X509_gmtime_adj (X509_getm_notAfter (c), 3600L * 24 * 365);
  X509_set_pubkey (c, key);
  return c;
}

static X509_NAME *
st_gen_name (const char *cn)
{
  X509_NAME *n = X509_NAME_new ();
  X509_NAME_add_entry_by_txt (n, "CN", MBSTRING_UTF8, (const guint8 *) cn, -1, -1, 0);
  return n;
}

static void
st_gen_keys (StGenKeys *k)
{
  k->root_key = st_gen_key ();
  g_autoptr(X509_NAME) rn = st_gen_name ("Stream Test Root");
  k->root = st_gen_cert (rn, k->root_key, NULL, NULL, 1);
  st_gen_ext (k->root, k->root, NID_basic_constraints, "critical,CA:TRUE");
  st_gen_ext (k->root, k->root, NID_key_usage, "critical,keyCertSign,cRLSign");
  st_gen_ext (k->root, k->root, NID_subject_key_identifier, "hash");
  g_assert_true (X509_sign (k->root, k->root_key, EVP_sha256 ()) > 0);
  k->signer_key = st_gen_key ();
  g_autoptr(X509_NAME) sn = st_gen_name ("Stream Test Station Signing");
  k->signer = st_gen_cert (sn, k->signer_key, k->root, k->root_key, 2);
  st_gen_ext (k->signer, k->root, NID_basic_constraints, "critical,CA:FALSE");
  st_gen_ext (k->signer, k->root, NID_key_usage, "critical,digitalSignature");
  st_gen_ext (k->signer, k->root, NID_ext_key_usage, "codeSigning,emailProtection," ST_GEN_PURPOSE);
  st_gen_ext (k->signer, k->root, NID_authority_key_identifier, "keyid");
  g_assert_true (X509_sign (k->signer, k->root_key, EVP_sha256 ()) > 0);
}

static void
st_gen_keys_clear (StGenKeys *k)
{
  EVP_PKEY_free (k->root_key);
  EVP_PKEY_free (k->signer_key);
  X509_free (k->root);
  X509_free (k->signer);
}

static gchar *
st_gen_path (const char *dir, const char *name)
{
  return g_build_filename (dir, name, NULL);
}

static gchar *
st_gen_file_sha256 (const char *dir, const char *name)
{
  g_autofree gchar *path = st_gen_path (dir, name);
  g_autofree gchar *data = NULL;
  gsize len = 0;
  g_assert_true (g_file_get_contents (path, &data, &len, NULL));
  return g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) data, len);
}

static void
st_gen_write (const char *dir, const char *name, const char *data, gssize len)
{
  g_autofree gchar *path = st_gen_path (dir, name);
  g_autoptr(GError) error = NULL;
  g_assert_true (g_file_set_contents (path, data, len, &error));
  g_assert_no_error (error);
}

/* manifest.json: the header as the export writes it, for @lines units of
 * which @units counted, units.jsonl's hash as it is now. */
static void
st_gen_header (const char *dir, gint64 units, gint64 lines)
{
  g_autofree gchar *units_sha = st_gen_file_sha256 (dir, "units.jsonl");
  g_autofree gchar *p_units = st_gen_path (dir, "units.jsonl");
  GStatBuf st;
  g_assert_cmpint (g_stat (p_units, &st), ==, 0);
  g_autofree gchar *json = g_strdup_printf (
    "{\n  \"format\" : \"station-manifest/2\",\n  \"batch\" : {\n    \"id\" : 1,\n"
    "    \"work_order\" : \"WO-STREAM\",\n    \"profile\" : { \"name\" : \"stream-test\", "
    "\"sha256\" : \"%064d\", \"subject\" : \"" ST_GEN_SUBJECT "\", \"san\" : [] },\n"
    "    \"state\" : \"closed\",\n    \"counts\" : { \"quantity\" : %" G_GINT64_FORMAT ", \"units\" : %"
    G_GINT64_FORMAT ", \"done\" : %" G_GINT64_FORMAT ", \"failed\" : 0, \"certificates_active\" : %"
    G_GINT64_FORMAT ", \"certificates_voided\" : 0, \"certificates_unconfirmed\" : 0, "
    "\"certificates_disputed\" : 0, \"certificates_revoked\" : 0 }\n  },\n"
    "  \"units_file\" : { \"name\" : \"units.jsonl\", \"lines\" : %" G_GINT64_FORMAT ", \"bytes\" : %"
    G_GINT64_FORMAT ", \"sha256\" : \"%s\" }\n}\n",
    0, units, units, units, units, lines, (gint64) st.st_size, units_sha);
  st_gen_write (dir, "manifest.json", json, -1);
}

/* SHA256SUMS for the folder as it is now, and SHA256SUMS.p7s by the signer. */
static void
st_gen_seal (const char *dir, const StGenKeys *k)
{
  static const char *const names[] = { "manifest.json", "units.jsonl", "manifest.csv", "ca-chain.pem" };
  g_autoptr(GString) sums = g_string_new (NULL);
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree gchar *hex = st_gen_file_sha256 (dir, names[i]);
      g_string_append_printf (sums, "%s  %s\n", hex, names[i]);
    }
  st_gen_write (dir, "SHA256SUMS", sums->str, (gssize) sums->len);
  g_autoptr(BIO) in = BIO_new_mem_buf (sums->str, (int) sums->len);
  CMS_ContentInfo *cms = CMS_sign (k->signer, k->signer_key, NULL, in, CMS_DETACHED | CMS_BINARY);
  g_assert_nonnull (cms);
  guint8 *der = NULL;
  int der_len = i2d_CMS_ContentInfo (cms, &der);
  CMS_ContentInfo_free (cms);
  g_assert_cmpint (der_len, >, 0);
  st_gen_write (dir, "SHA256SUMS.p7s", (const char *) der, der_len);
  OPENSSL_free (der);
}

/* When set, unit st_gen_tweak_unit's certificate is changed by it before
 * it is signed; it returns the key to sign with (NULL: the root's). */
static EVP_PKEY *(*st_gen_tweak) (X509 *cert, const StGenKeys *k);
static guint st_gen_tweak_unit = 2;

/* A station-manifest/2 folder of @n units in @dir. */
static void
st_gen_folder (const char *dir, guint n, const StGenKeys *k)
{
  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_autofree gchar *p_units = st_gen_path (dir, "units.jsonl");
  g_autofree gchar *p_csv = st_gen_path (dir, "manifest.csv");
  FILE *units = fopen (p_units, "w");
  FILE *csv = fopen (p_csv, "w");
  g_assert_nonnull (units);
  g_assert_nonnull (csv);
  fputs ("uid,serial,state,failure_step,failure_reason,cert_serial,certificate_status,issued_at,"
         "certificate_sha256\r\n", csv);
  for (guint i = 1; i <= n; i++)
    {
      g_autofree gchar *uid = g_strdup_printf ("5e7a%020x", i);
      g_autofree gchar *serial = g_strdup_printf ("ST-%08u", i);
      StSubjectInfo info = { .uid_hex = uid, .model = "STREAM-1", .product_serial = serial };
      g_autoptr(GError) error = NULL;
      g_autoptr(X509_NAME) name = st_profile_build_subject (ST_GEN_SUBJECT, &info, &error);
      g_assert_no_error (error);
      g_autoptr(EVP_PKEY) key = st_gen_key ();
      g_autoptr(X509) cert = st_gen_cert (name, key, k->root, k->root_key, 0x1000000ULL + i);
      st_gen_ext (cert, k->root, NID_basic_constraints, "critical,CA:FALSE");
      st_gen_ext (cert, k->root, NID_key_usage, "critical,digitalSignature");
      st_gen_ext (cert, k->root, NID_authority_key_identifier, "keyid");
      EVP_PKEY *sign_key = st_gen_tweak != NULL && i == st_gen_tweak_unit ? st_gen_tweak (cert, k) : NULL;
      g_assert_true (X509_sign (cert, sign_key != NULL ? sign_key : k->root_key, EVP_sha256 ()) > 0);
      EVP_PKEY_free (sign_key);
      g_autofree gchar *pem = st_x509_to_pem (cert);
      g_autoptr(GString) pem_json = g_string_new (NULL);
      for (const char *p = pem; *p != '\0'; p++)
        if (*p == '\n')
          g_string_append (pem_json, "\\n");
        else
          g_string_append_c (pem_json, *p);
      guint8 *der = NULL;
      int der_len = i2d_X509 (cert, &der);
      g_autofree gchar *fp = st_sha256_hex (der, (gsize) der_len);
      OPENSSL_free (der);
      g_autofree gchar *cert_serial = g_strdup_printf ("%x", 0x1000000U + i);
      fprintf (units, "{\"uid\":\"%s\",\"serial\":\"%s\",\"model\":\"STREAM-1\",\"state\":\"done\","
               "\"certificate\":\"%s\",\"cert_serial\":\"%s\",\"certificate_status\":\"active\","
               "\"issued_at\":\"2026-12-06T10:00:00Z\"}\n", uid, serial, pem_json->str, cert_serial);
      fprintf (csv, "%s,%s,done,,,%s,active,2026-12-06T10:00:00Z,%s\r\n", uid, serial, cert_serial, fp);
    }
  g_assert_cmpint (fclose (units), ==, 0);
  g_assert_cmpint (fclose (csv), ==, 0);
  g_autofree gchar *root_pem = st_x509_to_pem (k->root);
  st_gen_write (dir, "ca-chain.pem", root_pem, -1);
  st_gen_header (dir, n, n);
  st_gen_seal (dir, k);
}

static gchar *
st_gen_pin (const StGenKeys *k)
{
  g_autoptr(GError) error = NULL;
  gchar *pin = st_x509_pubkey_sha256_hex (k->signer, &error);
  g_assert_no_error (error);
  return pin;
}

/* st_manifest_verify of @dir: its result; the report in *@report. */
static gboolean
st_gen_verify (const char *dir, X509 *root, const char *pin, gchar **report)
{
  g_autoptr(GString) r = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  gboolean ok = st_manifest_verify (dir, root, pin, NULL, r, &error);
  g_assert_true (ok == (error == NULL));
  g_test_message ("%s", r->str);
  *report = g_string_free (g_steal_pointer (&r), FALSE);
  return ok;
}

/* ---- the tests ---- */

static StGenKeys keys;

static gchar *
st_tmp_folder (void)
{
  g_autoptr(GError) error = NULL;
  gchar *dir = g_dir_make_tmp ("st-test-stream-XXXXXX", &error);
  g_assert_no_error (error);
  return dir;
}

static void
st_rm_folder (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree gchar *p = st_gen_path (dir, name);
      if (g_file_test (p, G_FILE_TEST_IS_DIR))
        st_rm_folder (p);
      else
        g_unlink (p);
    }
  g_rmdir (dir);
}

static void
test_verifies (void)
{
  g_autofree gchar *tmp = st_tmp_folder ();
  g_autofree gchar *dir = st_gen_path (tmp, "m");
  st_gen_folder (dir, 5, &keys);
  g_autofree gchar *pin = st_gen_pin (&keys);
  g_autofree gchar *report = NULL;
  g_assert_true (st_gen_verify (dir, keys.root, pin, &report));
  g_assert_nonnull (strstr (report, "ok    format is station-manifest/2\n"));
  g_assert_nonnull (strstr (report, "ok    5 units: 5 done, 0 failed\n"));
  g_assert_nonnull (strstr (report, "ok    manifest.csv has the same 5 units as units.jsonl, in order\n"));
  g_assert_nonnull (strstr (report, "ok    units.jsonl: its SHA-256 is the one SHA256SUMS lists\n"));
  g_assert_nonnull (strstr (report, "ok    uids: 5 certificate(s) checked"));
  /* and with another pin, not */
  g_autofree gchar *other = NULL;
  g_assert_false (st_gen_verify (dir, keys.root, "00000000000000000000000000000000"
                                 "00000000000000000000000000000000", &other));
  g_assert_nonnull (strstr (other, "FAIL  signer: "));
  st_rm_folder (tmp);
}

typedef enum { ST_CHANGE_LINE, ST_DROP, ST_ADD, ST_SWAP } StChange;

/* units.jsonl's lines changed by @how (and manifest.csv's alike when
 * @csv_too, keeping the two in step). */
static void
st_change_units (const char *dir, StChange how, gboolean csv_too)
{
  const char *names[] = { "units.jsonl", "manifest.csv" };
  for (guint f = 0; f < (csv_too ? 2u : 1u); f++)
    {
      g_autofree gchar *path = st_gen_path (dir, names[f]);
      g_autofree gchar *text = NULL;
      g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
      const char *sep = f == 0 ? "\n" : "\r\n";
      g_auto(GStrv) l = g_strsplit (text, sep, -1);
      /* JSONL: l[0..4] units, l[5] ""; CSV: l[0] header, l[1..5], l[6] "" */
      guint first = f == 0 ? 0 : 1;
      g_autoptr(GPtrArray) out = g_ptr_array_new ();
      for (guint i = 0; l[i] != NULL && *l[i] != '\0'; i++)
        g_ptr_array_add (out, l[i]);
      g_autofree gchar *changed = NULL;
      switch (how)
        {
        case ST_CHANGE_LINE:
          {
            gchar *p = strstr (l[first + 1], "ST-00000002");
            g_assert_nonnull (p);
            p[10] = '9';
            break;
          }
        case ST_DROP:
          g_ptr_array_remove_index (out, first + 2);
          break;
        case ST_ADD:
          g_ptr_array_add (out, l[first + 4]);
          break;
        case ST_SWAP:
          out->pdata[first + 1] = l[first + 2];
          out->pdata[first + 2] = l[first + 1];
          break;
        }
      g_ptr_array_add (out, (gpointer) "");
      g_ptr_array_add (out, NULL);
      g_autofree gchar *joined = g_strjoinv (sep, (gchar **) out->pdata);
      st_gen_write (dir, names[f], joined, -1);
    }
}

static void
st_expect (const char *dir, const char *const *lines)
{
  g_autofree gchar *pin = st_gen_pin (&keys);
  g_autofree gchar *report = NULL;
  g_assert_false (st_gen_verify (dir, keys.root, pin, &report));
  for (guint i = 0; lines[i] != NULL; i++)
    if (strstr (report, lines[i]) == NULL)
      g_error ("the report lacks \"%s\":\n%s", lines[i], report);
}

static void
test_tamper (void)
{
  g_autofree gchar *tmp = st_tmp_folder ();
  guint n = 0;
#define FOLDER() ({ g_autofree gchar *name_ = g_strdup_printf ("m%u", n++); \
                    gchar *d_ = st_gen_path (tmp, name_); st_gen_folder (d_, 5, &keys); d_; })
  {
    g_autofree gchar *d = FOLDER ();
    st_change_units (d, ST_CHANGE_LINE, FALSE);
    const char *want[] = { "FAIL  units.jsonl: its SHA-256 is ",
                           "FAIL  manifest.csv: line 3 is not the row of unit 2 of units.jsonl", NULL };
    st_expect (d, want);
  }
  {
    g_autofree gchar *d = FOLDER ();
    g_autofree gchar *p = st_gen_path (d, "manifest.json");
    g_autofree gchar *text = NULL;
    g_assert_true (g_file_get_contents (p, &text, NULL, NULL));
    memcpy (strstr (text, "WO-STREAM"), "WO-EVILxx", 9);
    st_gen_write (d, "manifest.json", text, -1);
    const char *want[] = { "FAIL  manifest.json: its SHA-256 is ", NULL };
    st_expect (d, want);
  }
  {
    g_autofree gchar *d = FOLDER ();
    /* SHA256SUMS naming a changed units.jsonl, not signed again */
    st_change_units (d, ST_CHANGE_LINE, TRUE);
    g_autofree gchar *p = st_gen_path (d, "SHA256SUMS");
    g_autofree gchar *sums = NULL;
    g_assert_true (g_file_get_contents (p, &sums, NULL, NULL));
    g_autofree gchar *units_sha = st_gen_file_sha256 (d, "units.jsonl");
    memcpy (strstr (sums, "\n") + 1, units_sha, 64);
    st_gen_write (d, "SHA256SUMS", sums, -1);
    const char *want[] = { "FAIL  signature: does not verify against the trusted root", NULL };
    st_expect (d, want);
  }
  {
    g_autofree gchar *d = FOLDER ();
    st_change_units (d, ST_DROP, FALSE);
    const char *want[] = { "FAIL  units.jsonl: its SHA-256 is ",
                           "FAIL  units.jsonl: 4 line(s), manifest.json says 5",
                           "FAIL  manifest.csv: line 6 and on: rows without their unit in units.jsonl",
                           "FAIL  the batch counts agree with the units", NULL };
    st_expect (d, want);
  }
  {
    g_autofree gchar *d = FOLDER ();
    st_change_units (d, ST_ADD, FALSE);
    const char *want[] = { "FAIL  units.jsonl: its SHA-256 is ",
                           "FAIL  units.jsonl: 6 line(s), manifest.json says 5",
                           "FAIL  unit 5 and unit 6: the same certificate serial",
                           "FAIL  manifest.csv: line 7 is not the row of unit 6 of units.jsonl (the file ends)",
                           NULL };
    st_expect (d, want);
  }
  {
    g_autofree gchar *d = FOLDER ();
    st_change_units (d, ST_SWAP, FALSE);
    const char *want[] = { "FAIL  units.jsonl: its SHA-256 is ",
                           "FAIL  manifest.csv: line 3 is not the row of unit 2 of units.jsonl",
                           "FAIL  manifest.csv: line 4 is not the row of unit 3 of units.jsonl", NULL };
    st_expect (d, want);
  }
  /* resealed: SHA256SUMS written again and signed by the station's key */
  {
    g_autofree gchar *d = FOLDER ();
    st_change_units (d, ST_DROP, TRUE);
    st_gen_seal (d, &keys);
    const char *want[] = { "FAIL  manifest.json lacks its batch object, or its units_file does not name "
                           "units.jsonl", NULL };
    st_expect (d, want);
    /* the header made to name the new units.jsonl, its counts left */
    st_gen_header (d, 5, 4);
    st_gen_seal (d, &keys);
    const char *want2[] = { "FAIL  the batch counts agree with the units", NULL };
    st_expect (d, want2);
  }
  {
    g_autofree gchar *d = FOLDER ();
    st_change_units (d, ST_SWAP, FALSE);
    st_gen_header (d, 5, 5);
    st_gen_seal (d, &keys);
    const char *want[] = { "FAIL  manifest.csv: line 3 is not the row of unit 2 of units.jsonl", NULL };
    st_expect (d, want);
  }
  {
    g_autofree gchar *d = FOLDER ();
    st_change_units (d, ST_ADD, TRUE);
    st_gen_header (d, 6, 6);
    st_gen_seal (d, &keys);
    const char *want[] = { "FAIL  unit 5 and unit 6: the same certificate serial",
                           "FAIL  unit 5 and unit 6: the same public key certified twice",
                           "FAIL  unit 5 and unit 6: the same uid with two live certificates", NULL };
    st_expect (d, want);
  }
  {
    /* a line past the line bound, resealed: refused, not read whole */
    g_autofree gchar *d = FOLDER ();
    g_autofree gchar *p = st_gen_path (d, "units.jsonl");
    g_autofree gchar *text = NULL;
    g_assert_true (g_file_get_contents (p, &text, NULL, NULL));
    g_autoptr(GString) big = g_string_new (text);
    g_string_truncate (big, big->len - 2);  /* the last line's "}\n" */
    g_string_append (big, ",\"pad\":\"");
    for (guint i = 0; i < ST_MANIFEST_MAX_LINE; i++)
      g_string_append_c (big, 'x');
    g_string_append (big, "\"}\n");
    st_gen_write (d, "units.jsonl", big->str, (gssize) big->len);
    st_gen_header (d, 5, 5);
    st_gen_seal (d, &keys);
    g_autofree gchar *want_line = g_strdup_printf ("FAIL  units.jsonl: line 5 is longer than %d bytes",
                                                   ST_MANIFEST_MAX_LINE);
    const char *want[] = { want_line, NULL };
    st_expect (d, want);
  }
#undef FOLDER
  st_rm_folder (tmp);
}


/* ---- each leaf against the issuing CA (st_verify_leaf) ---- */

static void
st_gen_replace_ext (X509 *cert, int nid, X509_EXTENSION *ext)
{
  int at = X509_get_ext_by_NID (cert, nid, -1);
  if (at >= 0)
    X509_EXTENSION_free (X509_delete_ext (cert, at));
  if (ext != NULL)
    {
      g_assert_true (X509_add_ext (cert, ext, -1));
      X509_EXTENSION_free (ext);
    }
}

static X509_EXTENSION *
st_gen_raw_ext (const char *oid_or_null, int nid, gboolean critical, const guint8 *der, int len)
{
  g_autoptr(ASN1_OCTET_STRING) value = ASN1_OCTET_STRING_new ();
  ASN1_OCTET_STRING_set (value, der, len);
  ASN1_OBJECT *obj = oid_or_null != NULL ? OBJ_txt2obj (oid_or_null, 1) : OBJ_nid2obj (nid);
  X509_EXTENSION *ext = X509_EXTENSION_create_by_OBJ (NULL, obj, critical, value);
  ASN1_OBJECT_free (obj);
  g_assert_nonnull (ext);
  return ext;
}

static EVP_PKEY *
tweak_unknown_critical (X509 *cert, const StGenKeys *k)
{
  static const guint8 null_der[] = { 0x05, 0x00 };
  st_gen_replace_ext (cert, NID_undef, st_gen_raw_ext ("1.3.6.1.4.1.55555.1.1", 0, TRUE, null_der, 2));
  return NULL;
}

static EVP_PKEY *
tweak_bad_key_usage (X509 *cert, const StGenKeys *k)
{
  /* a keyUsage whose value is no BIT STRING */
  static const guint8 junk[] = { 0x02, 0x01, 0x05 };
  st_gen_replace_ext (cert, NID_key_usage, st_gen_raw_ext (NULL, NID_key_usage, TRUE, junk, 3));
  return NULL;
}

static EVP_PKEY *
tweak_other_issuer_name (X509 *cert, const StGenKeys *k)
{
  g_autoptr(X509_NAME) other = st_gen_name ("Some Other CA");
  X509_set_issuer_name (cert, other);
  return NULL;
}

static EVP_PKEY *
tweak_other_key (X509 *cert, const StGenKeys *k)
{
  /* same names and AKI, signed by a key that is not the CA's */
  return st_gen_key ();
}

static EVP_PKEY *
tweak_other_akid (X509 *cert, const StGenKeys *k)
{
  static const guint8 akid[] = { 0x30, 0x16, 0x80, 0x14, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
                                 11, 12, 13, 14, 15, 16, 17, 18, 19, 20 };
  st_gen_replace_ext (cert, NID_authority_key_identifier,
                      st_gen_raw_ext (NULL, NID_authority_key_identifier, FALSE, akid, sizeof akid));
  return NULL;
}

static EVP_PKEY *
tweak_no_akid (X509 *cert, const StGenKeys *k)
{
  st_gen_replace_ext (cert, NID_authority_key_identifier, NULL);
  return NULL;
}

static EVP_PKEY *
tweak_expired (X509 *cert, const StGenKeys *k)
{
  X509_gmtime_adj (X509_getm_notBefore (cert), -3600L * 24 * 10);
  X509_gmtime_adj (X509_getm_notAfter (cert), -3600L * 24);
  return NULL;
}

static EVP_PKEY *
tweak_not_yet_valid (X509 *cert, const StGenKeys *k)
{
  X509_gmtime_adj (X509_getm_notBefore (cert), 3600L * 24);
  return NULL;
}

static EVP_PKEY *
tweak_cert_sign_non_ca (X509 *cert, const StGenKeys *k)
{
  st_gen_replace_ext (cert, NID_key_usage, NULL);
  st_gen_ext (cert, k->root, NID_key_usage, "critical,digitalSignature,keyCertSign");
  return NULL;
}

static EVP_PKEY *
tweak_pathlen_non_ca (X509 *cert, const StGenKeys *k)
{
  /* CA:FALSE with a path length (encoded by hand: the config refuses it) */
  static const guint8 bc[] = { 0x30, 0x03, 0x02, 0x01, 0x00 };
  st_gen_replace_ext (cert, NID_basic_constraints, st_gen_raw_ext (NULL, NID_basic_constraints, TRUE, bc, 5));
  return NULL;
}

static EVP_PKEY *
tweak_version_1 (X509 *cert, const StGenKeys *k)
{
  X509_set_version (cert, 0);
  return NULL;
}

/* Unit @i's certificate in @dir, parsed whole (d2i, its key decoded). */
static X509 *
st_unit_cert (const char *dir, guint i)
{
  g_autofree gchar *p = st_gen_path (dir, "units.jsonl");
  g_autofree gchar *text = NULL;
  g_assert_true (g_file_get_contents (p, &text, NULL, NULL));
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_assert_true (json_parser_load_from_data (parser, lines[i - 1], -1, NULL));
  const char *pem = json_object_get_string_member (json_node_get_object (json_parser_get_root (parser)),
                                                   "certificate");
  g_autoptr(BIO) bio = BIO_new_mem_buf (pem, -1);
  X509 *cert = PEM_read_bio_X509 (bio, NULL, NULL, NULL);
  g_assert_nonnull (cert);
  return cert;
}

static void
test_leaf_checks (void)
{
  const struct {
    const char *name;
    EVP_PKEY *(*tweak) (X509 *, const StGenKeys *);
    const char *why;
  } cases[] = {
    { "unknown critical extension", tweak_unknown_critical, "unhandled critical extension" },
    { "keyUsage that does not parse", tweak_bad_key_usage, "invalid or inconsistent certificate extension" },
    { "another issuer name", tweak_other_issuer_name, "not issued by the issuing CA" },
    { "signed by another key", tweak_other_key, "certificate signature failure" },
    { "AKI of another key", tweak_other_akid, "not issued by the issuing CA" },
    { "no AKI", tweak_no_akid, "Missing Authority Key Identifier" },
    { "expired", tweak_expired, "certificate has expired" },
    { "not yet valid", tweak_not_yet_valid, "certificate is not yet valid" },
    { "keyCertSign without CA", tweak_cert_sign_non_ca, "keyCertSign invalid for non-CA" },
    { "path length without CA", tweak_pathlen_non_ca, "Path length invalid for non-CA" },
    { "version 1 with extensions", tweak_version_1, "Extensions require version 3" },
  };
  g_autofree gchar *tmp = st_tmp_folder ();
  g_autofree gchar *pin = st_gen_pin (&keys);
  g_autoptr(StX509Stack) chain = sk_X509_new_null ();
  X509_up_ref (keys.root);
  sk_X509_push (chain, keys.root);
  for (guint n = 0; n < G_N_ELEMENTS (cases); n++)
    {
      g_test_message ("leaf: %s", cases[n].name);
      g_autofree gchar *name = g_strdup_printf ("leaf%u", n);
      g_autofree gchar *d = st_gen_path (tmp, name);
      st_gen_tweak = cases[n].tweak;
      st_gen_folder (d, 3, &keys);
      st_gen_tweak = NULL;
      /* the old per-unit check, X509_verify_cert strict on the whole
       * certificate, refuses unit 2 and accepts unit 1 ... */
      g_autoptr(X509) good = st_unit_cert (d, 1);
      g_autoptr(X509) bad = st_unit_cert (d, 2);
      g_autoptr(GError) e1 = NULL, e2 = NULL;
      g_assert_true (st_verify_chain (good, chain, keys.root, &e1));
      g_assert_false (st_verify_chain (bad, chain, keys.root, &e2));
      g_test_message ("X509_verify_cert: %s", e2->message);
      /* ... and so do the new ones, the leaf parsed for its fields only */
      g_autoptr(GError) e3 = NULL;
      g_assert_true (st_verify_leaf (good, keys.root, chain, NULL));
      g_autofree gchar *pem = st_x509_to_pem (bad);
      guint8 *der = NULL;
      int der_len = i2d_X509 (bad, &der);
      g_autoptr(X509) fields = st_x509_from_der_fields (der, (gsize) der_len);
      OPENSSL_free (der);
      g_assert_nonnull (fields);
      g_assert_false (st_verify_leaf (fields, keys.root, chain, &e3));
      g_assert_nonnull (strstr (e3->message, cases[n].why));
      g_autofree gchar *report = NULL;
      g_assert_false (st_gen_verify (d, keys.root, pin, &report));
      g_autofree gchar *want = g_strdup_printf ("FAIL  unit 2 (uid 5e7a%020x): certificate does not chain to the "
                                                "root: ", 2);
      const char *line = strstr (report, want);
      g_assert_nonnull (line);
      g_assert_nonnull (strstr (line, cases[n].why));
      g_assert_null (strstr (report, "FAIL  unit 1 "));
      g_assert_null (strstr (report, "FAIL  unit 3 "));
    }
  st_rm_folder (tmp);
}

/* ---- the export's self-check (st_manifest_check_written) ---- */

static gboolean
st_check_written (const char *dir, gchar **report)
{
  g_autofree gchar *pin = st_gen_pin (&keys);
  g_autoptr(GString) r = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  gboolean ok = st_manifest_check_written (dir, keys.root, pin, r, &error);
  g_assert_true (ok == (error == NULL));
  g_test_message ("%s", r->str);
  *report = g_string_free (g_steal_pointer (&r), FALSE);
  return ok;
}

static void
test_check_written (void)
{
  g_autofree gchar *tmp = st_tmp_folder ();
  guint n = 0;
#define FOLDER() ({ g_autofree gchar *name_ = g_strdup_printf ("w%u", n++); \
                    gchar *d_ = st_gen_path (tmp, name_); st_gen_folder (d_, 5, &keys); d_; })
  {
    g_autofree gchar *d = FOLDER ();
    g_autofree gchar *report = NULL;
    g_assert_true (st_check_written (d, &report));
    g_assert_nonnull (strstr (report, "ok    units.jsonl: 5 line(s) of "));
    g_assert_nonnull (strstr (report, "ok    manifest.csv: 6 line(s)"));
    g_assert_nonnull (strstr (report, "ok    signer: "));
  }
  /* a folder changed between its write and its check */
  {
    g_autofree gchar *d = FOLDER ();
    st_change_units (d, ST_CHANGE_LINE, FALSE);
    g_autofree gchar *report = NULL;
    g_assert_false (st_check_written (d, &report));
    g_assert_nonnull (strstr (report, "FAIL  units.jsonl: its SHA-256 is "));
  }
  {
    g_autofree gchar *d = FOLDER ();
    st_change_units (d, ST_ADD, TRUE);
    g_autofree gchar *report = NULL;
    g_assert_false (st_check_written (d, &report));
    g_assert_nonnull (strstr (report, "FAIL  manifest.csv: its SHA-256 is "));
  }
  {
    g_autofree gchar *d = FOLDER ();
    g_autofree gchar *p = st_gen_path (d, "manifest.json");
    g_autofree gchar *text = NULL;
    g_assert_true (g_file_get_contents (p, &text, NULL, NULL));
    memcpy (strstr (text, "WO-STREAM"), "WO-EVILxx", 9);
    st_gen_write (d, "manifest.json", text, -1);
    g_autofree gchar *report = NULL;
    g_assert_false (st_check_written (d, &report));
    g_assert_nonnull (strstr (report, "FAIL  manifest.json: its SHA-256 is "));
  }
  {
    /* units.jsonl cut short (a full disk, a lost write) */
    g_autofree gchar *d = FOLDER ();
    g_autofree gchar *p = st_gen_path (d, "units.jsonl");
    GStatBuf st;
    g_assert_cmpint (g_stat (p, &st), ==, 0);
    g_assert_cmpint (truncate (p, st.st_size / 2), ==, 0);
    g_autofree gchar *report = NULL;
    g_assert_false (st_check_written (d, &report));
    g_assert_nonnull (strstr (report, "FAIL  units.jsonl: its SHA-256 is "));
    g_assert_nonnull (strstr (report, "FAIL  units.jsonl: 3 line(s) of "));
  }
  {
    /* resealed by the signer, a unit dropped from both files: the header's
     * count and hash no longer agree */
    g_autofree gchar *d = FOLDER ();
    st_change_units (d, ST_DROP, TRUE);
    st_gen_seal (d, &keys);
    g_autofree gchar *report = NULL;
    g_assert_false (st_check_written (d, &report));
    g_assert_nonnull (strstr (report, "FAIL  units.jsonl: 4 line(s) of "));
  }
  {
    g_autofree gchar *d = FOLDER ();
    g_autofree gchar *p = st_gen_path (d, "SHA256SUMS.p7s");
    g_unlink (p);
    g_autofree gchar *pin = st_gen_pin (&keys);
    g_autoptr(GString) r = g_string_new (NULL);
    g_autoptr(GError) error = NULL;
    g_assert_false (st_manifest_check_written (d, keys.root, pin, r, &error));
    g_assert_nonnull (error);
  }
#undef FOLDER
  st_rm_folder (tmp);
}

/* ---- the JSON string of a units.jsonl line (st_manifest_json_string) ---- */

static void
st_json_roundtrip (const char *s, const char *expect)
{
  g_autoptr(GString) out = g_string_new ("[");
  st_manifest_json_string (out, s);
  g_string_append_c (out, ']');
  /* strict JSON: no raw control character, valid UTF-8 */
  g_assert_true (g_utf8_validate (out->str, (gssize) out->len, NULL));
  for (gsize i = 0; i < out->len; i++)
    g_assert_true ((guchar) out->str[i] >= 0x20 && out->str[i] != 0x7f);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  g_assert_true (json_parser_load_from_data (parser, out->str, (gssize) out->len, &error));
  g_assert_no_error (error);
  JsonArray *a = json_node_get_array (json_parser_get_root (parser));
  g_assert_cmpstr (json_array_get_string_element (a, 0), ==, expect);
}

static void
test_json_string (void)
{
  /* every ASCII byte, alone and in a text */
  for (int ch = 1; ch < 0x80; ch++)
    {
      char one[2] = { (char) ch, '\0' };
      st_json_roundtrip (one, one);
      g_autofree gchar *text = g_strdup_printf ("a%cb\"c\\", ch);
      st_json_roundtrip (text, text);
    }
  st_json_roundtrip ("", "");
  st_json_roundtrip ("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                     "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
  st_json_roundtrip ("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xe2\x80\xae", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xe2\x80\xae");
  /* not UTF-8: each bad byte is U+FFFD */
  st_json_roundtrip ("a\xff" "b\xc3", "a\xef\xbf\xbd" "b\xef\xbf\xbd");
  st_json_roundtrip ("\xe2\x82", "\xef\xbf\xbd\xef\xbf\xbd");
  /* the short forms and \u00XX as RFC 8259 writes them */
  g_autoptr(GString) out = g_string_new (NULL);
  st_manifest_json_string (out, "\b\f\n\r\t\x01\x1f\x7f\"\\/");
  g_assert_cmpstr (out->str, ==, "\"\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f\\\"\\\\/\"");
  g_string_truncate (out, 0);
  st_manifest_json_string (out, NULL);
  g_assert_cmpstr (out->str, ==, "null");
}

/* Peak RSS (KiB) of this program verifying @dir in a child process. */
static glong
st_verify_rss (const char *dir, const char *root_pem, const char *pin)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  /* freed memory is reused at once, as without the sanitizer */
  g_subprocess_launcher_setenv (l, "ASAN_OPTIONS", "quarantine_size_mb=0:detect_leaks=0", TRUE);
  g_autoptr(GSubprocess) p = g_subprocess_launcher_spawn (l, &error, "/proc/self/exe", "verify", dir,
                                                          root_pem, pin, NULL);
  g_assert_no_error (error);
  g_autofree gchar *out = NULL;
  g_assert_true (g_subprocess_communicate_utf8 (p, NULL, NULL, &out, NULL, &error));
  g_assert_no_error (error);
  g_test_message ("%s", out);
  g_assert_true (g_subprocess_get_if_exited (p));
  g_assert_cmpint (g_subprocess_get_exit_status (p), ==, 0);
  const char *m = strstr (out, "peak_rss_kib ");
  g_assert_nonnull (m);
  return atol (m + strlen ("peak_rss_kib "));
}

#define ST_MEM_N 1000
/* What N to 4N may add: the duplicate checks' 60 bytes a unit and the
 * allocator's slack. Reading units.jsonl whole would add its size (about
 * 1 KB a unit, 3 MB here) and a JSON tree of several times that. */
#define ST_MEM_MARGIN_KIB 2048

static void
test_memory_bound (void)
{
  g_autofree gchar *tmp = st_tmp_folder ();
  g_autofree gchar *small = st_gen_path (tmp, "n");
  g_autofree gchar *large = st_gen_path (tmp, "4n");
  st_gen_folder (small, ST_MEM_N, &keys);
  st_gen_folder (large, 4 * ST_MEM_N, &keys);
  g_autofree gchar *root_pem = st_gen_path (tmp, "root.pem");
  g_autofree gchar *root_text = st_x509_to_pem (keys.root);
  g_assert_true (g_file_set_contents (root_pem, root_text, -1, NULL));
  g_autofree gchar *pin = st_gen_pin (&keys);
  glong rss_n = st_verify_rss (small, root_pem, pin);
  glong rss_4n = st_verify_rss (large, root_pem, pin);
  g_autofree gchar *units_path = st_gen_path (large, "units.jsonl");
  GStatBuf st;
  g_assert_cmpint (g_stat (units_path, &st), ==, 0);
  g_test_message ("peak RSS verifying %u units: %ld KiB; %u units: %ld KiB (units.jsonl %" G_GINT64_FORMAT
                  " bytes)", ST_MEM_N, rss_n, 4 * ST_MEM_N, rss_4n, (gint64) st.st_size);
  /* the bound means something: the file is larger than the margin */
  g_assert_cmpint (st.st_size / 1024, >, ST_MEM_MARGIN_KIB);
  g_assert_cmpint (rss_4n, <=, rss_n + ST_MEM_MARGIN_KIB);
  st_rm_folder (tmp);
}

/* ---- the tool modes ---- */

static int
st_main_gen (const char *dir, guint n)
{
  StGenKeys k = { 0 };
  st_gen_keys (&k);
  st_gen_folder (dir, n, &k);
  g_autofree gchar *root_pem = st_x509_to_pem (k.root);
  g_autofree gchar *pin = st_gen_pin (&k);
  g_autofree gchar *rp = g_strconcat (dir, ".root.pem", NULL);
  g_autofree gchar *pp = g_strconcat (dir, ".signer-pin", NULL);
  g_assert_true (g_file_set_contents (rp, root_pem, -1, NULL));
  g_assert_true (g_file_set_contents (pp, pin, -1, NULL));
  g_print ("%s: %u units; root %s, pin %s\n", dir, n, rp, pin);
  st_gen_keys_clear (&k);
  return 0;
}

static int
st_main_verify (const char *dir, const char *root_path, const char *pin)
{
  FILE *f = fopen (root_path, "r");
  if (f == NULL)
    return 2;
  g_autoptr(X509) root = PEM_read_X509 (f, NULL, NULL, NULL);
  fclose (f);
  g_autoptr(GString) report = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  gint64 t0 = g_get_monotonic_time ();
  gboolean ok = root != NULL && st_manifest_verify (dir, root, pin, NULL, report, &error);
  gint64 t1 = g_get_monotonic_time ();
  struct rusage ru, main_ru;
  getrusage (RUSAGE_SELF, &ru);
  /* this thread alone: what cannot run on the other cores (reading the
   * lines, taking the workers' results in order) */
  getrusage (RUSAGE_THREAD, &main_ru);
  g_print ("%s", report->str);
  g_print ("verified %s\nwall_s %.2f\ncpu_s %.2f\nmain_thread_cpu_s %.2f\npeak_rss_kib %ld\n", ok ? "yes" : "no",
           (t1 - t0) / 1e6, ru.ru_utime.tv_sec + ru.ru_stime.tv_sec
           + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6,
           main_ru.ru_utime.tv_sec + main_ru.ru_stime.tv_sec
           + (main_ru.ru_utime.tv_usec + main_ru.ru_stime.tv_usec) / 1e6, ru.ru_maxrss);
  return ok ? 0 : 1;
}

/* st_manifest_check_written of @dir: the export's self-check alone */
static int
st_main_check_written (const char *dir, const char *root_path, const char *pin)
{
  FILE *f = fopen (root_path, "r");
  if (f == NULL)
    return 2;
  g_autoptr(X509) root = PEM_read_X509 (f, NULL, NULL, NULL);
  fclose (f);
  g_autoptr(GString) report = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  gint64 t0 = g_get_monotonic_time ();
  gboolean ok = root != NULL && st_manifest_check_written (dir, root, pin, report, &error);
  gint64 t1 = g_get_monotonic_time ();
  struct rusage ru;
  getrusage (RUSAGE_SELF, &ru);
  g_print ("%s", report->str);
  g_print ("checked %s\nwall_s %.2f\ncpu_s %.2f\npeak_rss_kib %ld\n", ok ? "yes" : "no", (t1 - t0) / 1e6,
           ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6,
           ru.ru_maxrss);
  return ok ? 0 : 1;
}

static void
st_print_usage (const char *what, gint64 t0, gint64 t1)
{
  struct rusage ru;
  getrusage (RUSAGE_SELF, &ru);
  g_print ("%s: wall_s %.2f cpu_s %.2f peak_rss_kib %ld\n", what, (t1 - t0) / 1e6,
           ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6,
           ru.ru_maxrss);
}

/* st_manifest_export alone, on a station home whose service is stopped
 * (tests/bench/manifest-scale): what the export costs without the cloud
 * files and the service around it. */
static int
st_main_export (const char *home, const char *batch, const char *out)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StConfig) config = st_config_load (home, &error);
  g_autoptr(StCa) ca = config != NULL ? st_ca_open (config, g_getenv ("STATION_HSM_PIN"), &error) : NULL;
  g_autoptr(StDb) db = ca != NULL ? st_db_open (config->db_path, &error) : NULL;
  if (db == NULL)
    {
      g_printerr ("%s\n", error->message);
      return 2;
    }
  gint64 t0 = g_get_monotonic_time ();
  gboolean ok = st_manifest_export (db, ca, config->station_id, g_ascii_strtoll (batch, NULL, 10), out, &error);
  gint64 t1 = g_get_monotonic_time ();
  if (!ok)
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }
  st_print_usage ("st_manifest_export", t0, t1);
  return 0;
}

int
main (int argc, char **argv)
{
  if (argc == 5 && strcmp (argv[1], "export") == 0)
    return st_main_export (argv[2], argv[3], argv[4]);
  if (argc == 4 && strcmp (argv[1], "gen") == 0)
    return st_main_gen (argv[2], (guint) g_ascii_strtoull (argv[3], NULL, 10));
  if (argc == 5 && strcmp (argv[1], "verify") == 0)
    return st_main_verify (argv[2], argv[3], argv[4]);
  if (argc == 5 && strcmp (argv[1], "check-written") == 0)
    return st_main_check_written (argv[2], argv[3], argv[4]);
  g_test_init (&argc, &argv, NULL);
  st_gen_keys (&keys);
  g_test_add_func ("/manifest-stream/verifies", test_verifies);
  g_test_add_func ("/manifest-stream/tamper", test_tamper);
  g_test_add_func ("/manifest-stream/memory-bound", test_memory_bound);
  g_test_add_func ("/manifest-stream/leaf-checks", test_leaf_checks);
  g_test_add_func ("/manifest-stream/check-written", test_check_written);
  g_test_add_func ("/manifest-stream/json-string", test_json_string);
  int rc = g_test_run ();
  st_gen_keys_clear (&keys);
  return rc;
}
