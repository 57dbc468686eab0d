/* A Matter station's PAA and PAI (issue 18, item 1; docs/matter.md, "The
 * PAA and the PAI: set-up and ceremony"), on fresh SoftHSM2 tokens:
 *
 * /matter-setup/cd-tlv: the Certification Declaration's TLV against
 *   encodings derived by hand from the Matter Core spec (appendix A), and
 *   its refusals;
 * /matter-setup/demo: `setup demo --matter` makes a PAA and a PAI that the
 *   C rules and tests/matter/check-dac.py accept, records [matter], and a
 *   test CD that stock `openssl cms -verify` verifies with the CD signer's
 *   certificate (giving back the TLV), names its signer by its key id, and
 *   loads through st_profile_load_certification_declaration() from
 *   profiles/example-matter.profile; that profile passes `batch create`'s
 *   check (st_issue_check_profile) with the demo's PAI and is refused with
 *   the plain demo's CA; a plain and a Matter demo each refuse the other's
 *   home;
 * /matter-setup/ceremony: `ca init --matter-vid FFF1` puts the VID in the
 *   PAI's request and records [matter]; `ca import` refuses, naming the
 *   Matter rule, a root with a PID, a CA with pathlen 1, a CA without VID,
 *   a P-384 CA, a CA of another VID and a chain with a CA between; then
 *   accepts a PAA and PAI that check-dac.py passes. */
#include <glib/gstdio.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <sys/wait.h>

#include "st-ca.h"
#include "st-ceremony.h"
#include "st-config.h"
#include "st-error.h"
#include "st-hsm.h"
#include "st-issue.h"
#include "st-matter-cd.h"
#include "st-matter-dac.h"
#include "st-ossl.h"
#include "st-profile.h"
#include "st-setup.h"
#include "st-test-home.h"
#include "st-test-tmp.h"
#include "st-util.h"

static const char *python_path, *checker_path, *source_dir;

/* ---- helpers ---- */

static int
run (gchar **out_text, const char *const *argv)
{
  g_autofree gchar *out = NULL, *err = NULL;
  int status = 0;
  g_autoptr(GError) error = NULL;
  g_assert_true (g_spawn_sync (NULL, (gchar **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err,
                               &status, &error));
  g_assert_no_error (error);
  g_test_message ("$ %s %s ...: %s%s", argv[0], argv[1], out, err);
  g_assert_true (WIFEXITED (status));
  if (out_text != NULL)
    *out_text = g_strconcat (out, err, NULL);
  return WEXITSTATUS (status);
}

static int
run_checker (const char *kind, const char *file, gchar **text)
{
  const char *argv[] = { python_path, checker_path, kind, file, NULL };
  return run (text, argv);
}

static gchar *
write_pem (const char *dir, const char *name, X509 *cert)
{
  gchar *path = g_build_filename (dir, name, NULL);
  g_autoptr(GError) error = NULL;
  g_assert_true (st_x509_write_pem_file (path, &cert, 1, &error));
  g_assert_no_error (error);
  return path;
}

static EVP_PKEY *
make_key (const char *curve)
{
  EVP_PKEY *key = EVP_PKEY_Q_keygen (NULL, NULL, "EC", curve);
  g_assert_nonnull (key);
  return key;
}

static void
add_ext (X509 *cert, X509 *issuer, int nid, const char *value)
{
  X509V3_CTX ctx;
  X509V3_set_ctx (&ctx, issuer != NULL ? issuer : cert, cert, NULL, NULL, 0);
  X509_EXTENSION *ext = X509V3_EXT_conf_nid (NULL, &ctx, nid, value);
  g_assert_nonnull (ext);
  g_assert_cmpint (X509_add_ext (cert, ext, -1), ==, 1);
  X509_EXTENSION_free (ext);
}

/* A certificate for @pub: subject O=Test Vendor, CN=@cn and, when not
 * NULL, the VID and PID (each a UTF8String in its own RDN); signed by
 * @issuer_key (self-signed when @issuer is NULL) with SHA-256;
 * @bc the basicConstraints, @eku (or NULL) an extendedKeyUsage. */
static X509 *
make_cert (const char *cn, const char *vid, const char *pid, EVP_PKEY *pub, X509 *issuer,
           EVP_PKEY *issuer_key, const char *bc, const char *ku, const char *eku)
{
  X509 *cert = X509_new ();
  X509_NAME *name = X509_NAME_new ();
  g_assert_cmpint (X509_NAME_add_entry_by_txt (name, "O", MBSTRING_UTF8, (const unsigned char *) "Test Vendor", -1, -1, 0), ==, 1);
  g_assert_cmpint (X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_UTF8, (const unsigned char *) cn, -1, -1, 0), ==, 1);
  if (vid != NULL)
    g_assert_cmpint (X509_NAME_add_entry_by_txt (name, ST_MATTER_OID_VID, V_ASN1_UTF8STRING, (const unsigned char *) vid, -1, -1, 0), ==, 1);
  if (pid != NULL)
    g_assert_cmpint (X509_NAME_add_entry_by_txt (name, ST_MATTER_OID_PID, V_ASN1_UTF8STRING, (const unsigned char *) pid, -1, -1, 0), ==, 1);
  static long serial = 100;
  ASN1_INTEGER_set (X509_get_serialNumber (cert), ++serial);
  g_assert_cmpint (X509_set_version (cert, X509_VERSION_3), ==, 1);
  g_assert_cmpint (X509_set_subject_name (cert, name), ==, 1);
  g_assert_cmpint (X509_set_issuer_name (cert, issuer != NULL ? X509_get_subject_name (issuer) : name), ==, 1);
  g_assert_cmpint (X509_set_pubkey (cert, pub), ==, 1);
  g_assert_nonnull (X509_gmtime_adj (X509_getm_notBefore (cert), -3600));
  g_assert_nonnull (X509_gmtime_adj (X509_getm_notAfter (cert), 3600L * 24 * 3650));
  add_ext (cert, issuer, NID_basic_constraints, bc);
  add_ext (cert, issuer, NID_key_usage, ku);
  add_ext (cert, issuer, NID_subject_key_identifier, "hash");
  if (issuer != NULL)
    add_ext (cert, issuer, NID_authority_key_identifier, "keyid:always");
  if (eku != NULL)
    add_ext (cert, issuer, NID_ext_key_usage, eku);
  g_assert_cmpint (X509_sign (cert, issuer_key, EVP_sha256 ()), >, 0);
  X509_NAME_free (name);
  return cert;
}

/* In `openssl cms -print` text: the value printed after "@field:" is
 * "<ABSENT>". */
static gboolean
printed_absent (const char *text, const char *field)
{
  g_autofree gchar *key = g_strdup_printf ("%s:", field);
  const char *at = strstr (text, key);
  if (at == NULL)
    return FALSE;
  at += strlen (key);
  while (g_ascii_isspace (*at))
    at++;
  return g_str_has_prefix (at, "<ABSENT>");
}

static gchar *
pem_of (X509 *const *certs, int n)
{
  g_autoptr(BIO) bio = BIO_new (BIO_s_mem ());
  for (int i = 0; i < n; i++)
    g_assert_cmpint (PEM_write_bio_X509 (bio, certs[i]), ==, 1);
  char *p = NULL;
  long len = BIO_get_mem_data (bio, &p);
  return g_strndup (p, (gsize) len);
}

/* ---- the Certification Declaration's TLV ---- */

static void
assert_bytes (GBytes *got, const guint8 *want, gsize want_len)
{
  gsize len = 0;
  const guint8 *p = g_bytes_get_data (got, &len);
  g_autofree gchar *hex = st_hex_encode (p, len);
  g_test_message ("TLV %s", hex);
  g_assert_cmpmem (p, len, want, want_len);
}

static void
test_cd_tlv (void)
{
  /* The demo's CD, derived by hand: control byte = tag control (000
   * anonymous, 001 context-specific: 0x20) | element type (0x04 uint8,
   * 0x05 uint16, 0x0C UTF-8 string with a 1-byte length, 0x15 structure,
   * 0x16 array, 0x18 end of container); integers little-endian, each in
   * the fewest bytes. */
  static const guint8 want_demo[] = {
    0x15,                         /* anonymous structure */
    0x24, 0x00, 0x01,             /* [0] format_version 1 (uint8) */
    0x25, 0x01, 0xf1, 0xff,       /* [1] vendor_id 0xFFF1 (uint16) */
    0x36, 0x02,                   /* [2] product_id_array */
    0x05, 0x00, 0x80,             /*     0x8000 (anonymous uint16) */
    0x18,                         /*     end of the array */
    0x25, 0x03, 0x00, 0x01,       /* [3] device_type_id 0x0100 */
    0x2c, 0x04, 0x13,             /* [4] certificate_id, 19 bytes */
    'Z', 'I', 'G', '2', '0', '1', '4', '2', 'Z', 'B', '3', '3', '0', '0', '0', '3', '-', '2', '4',
    0x24, 0x05, 0x00,             /* [5] security_level 0 */
    0x24, 0x06, 0x00,             /* [6] security_information 0 */
    0x24, 0x07, 0x01,             /* [7] version_number 1 */
    0x24, 0x08, 0x00,             /* [8] certification_type 0 */
    0x18,                         /* end of the structure */
  };
  static const guint16 one_pid[] = { 0x8000 };
  StMatterCd cd = {
    .format_version = 1, .vendor_id = 0xFFF1, .product_ids = one_pid, .n_product_ids = 1,
    .device_type_id = 0x0100, .certificate_id = "ZIG20142ZB330003-24", .security_level = 0,
    .security_information = 0, .version_number = 1, .certification_type = 0,
  };
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) demo = st_matter_cd_encode (&cd, &error);
  g_assert_no_error (error);
  assert_bytes (demo, want_demo, sizeof want_demo);

  /* two products, a one-byte device type, a two-byte version, a
   * four-byte device type: each integer takes the width its value needs */
  static const guint8 want_two[] = {
    0x15, 0x24, 0x00, 0x01, 0x25, 0x01, 0xf1, 0xff,
    0x36, 0x02, 0x05, 0x00, 0x80, 0x05, 0x01, 0x80, 0x18,
    0x26, 0x03, 0x01, 0x00, 0x01, 0x00,           /* 0x00010001 as uint32 */
    0x2c, 0x04, 0x13,
    'Z', 'I', 'G', '2', '0', '1', '4', '2', 'Z', 'B', '3', '3', '0', '0', '0', '3', '-', '2', '4',
    0x24, 0x05, 0x00, 0x24, 0x06, 0x00,
    0x25, 0x07, 0x94, 0x26,                       /* 0x2694 */
    0x24, 0x08, 0x02, 0x18,
  };
  static const guint16 two_pids[] = { 0x8000, 0x8001 };
  StMatterCd two = cd;
  two.product_ids = two_pids;
  two.n_product_ids = 2;
  two.device_type_id = 0x00010001;
  two.version_number = 0x2694;
  two.certification_type = 2;
  g_autoptr(GBytes) b2 = st_matter_cd_encode (&two, &error);
  g_assert_no_error (error);
  assert_bytes (b2, want_two, sizeof want_two);

  /* refusals, each naming the field */
  StMatterCd bad = cd;
  bad.n_product_ids = 0;
  g_assert_null (st_matter_cd_encode (&bad, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "product_id_array"));
  g_clear_error (&error);
  bad = cd;
  bad.certificate_id = "ZIG20142ZB330003-2";
  g_assert_null (st_matter_cd_encode (&bad, &error));
  g_assert_nonnull (strstr (error->message, "certificate_id"));
  g_clear_error (&error);
  bad = cd;
  bad.certification_type = 3;
  g_assert_null (st_matter_cd_encode (&bad, &error));
  g_assert_nonnull (strstr (error->message, "certification_type"));
  g_clear_error (&error);
}

/* ---- the Matter demo ---- */

/* profiles/example-matter.profile with its CD file set to @cd. */
static StProfile *
example_profile (const char *cd, GError **error)
{
  g_autofree gchar *path = g_build_filename (source_dir, "profiles", "example-matter.profile", NULL);
  g_autofree gchar *text = NULL;
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  const char *line = "certification-declaration = matter-demo-home/matter/cd-FFF1-8000.der\n";
  gchar *at = strstr (text, line);
  g_assert_nonnull (at);
  *at = '\0';
  g_autofree gchar *data = g_strdup_printf ("%scertification-declaration = %s\n%s", text, cd, at + strlen (line));
  return st_profile_load_from_data (data, strlen (data), "example-matter.profile", error);
}

static void
test_demo (void)
{
  g_autofree gchar *tmp = st_test_tmpdir ("matter-setup");
  g_autofree gchar *home = g_build_filename (tmp, "home", NULL);
  g_autoptr(GError) error = NULL;
  g_assert_true (st_setup_demo_matter (home, ST_TEST_PIN, &error));
  g_assert_no_error (error);
  g_autoptr(StConfig) config = st_config_load (home, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (config->matter_vendor_id, ==, "FFF1");
  g_assert_null (config->matter_product_id);

  g_autoptr(X509) root = st_ca_load_cert_file (config->root_file, &error);
  g_assert_no_error (error);
  g_autoptr(X509) pai = st_ca_load_cert_file (config->ca_cert, &error);
  g_assert_no_error (error);
  g_assert_true (st_matter_paa_check (root, &error));
  g_assert_no_error (error);
  StMatterIds ids = { 0 };
  g_assert_true (st_matter_pai_check (pai, &ids, &error));
  g_assert_no_error (error);
  g_assert_true (ids.has_vid && ids.vid == 0xFFF1 && !ids.has_pid);
  g_autofree gchar *root_text = st_x509_name_text (X509_get_subject_name (root));
  g_assert_nonnull (strstr (root_text, "Station Demo Matter PAA"));
  /* the independent checker agrees */
  g_autofree gchar *out = NULL;
  g_assert_cmpint (run_checker ("paa", config->root_file, &out), ==, 0);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (run_checker ("pai", config->ca_cert, &out), ==, 0);
  g_assert_nonnull (strstr (out, "VID=FFF1"));
  g_clear_pointer (&out, g_free);

  /* the CD: stock openssl verifies it with the signer's certificate and
   * gives back the TLV; the SignerInfo names the signer by its key id */
  g_autofree gchar *cd = g_build_filename (home, ST_SETUP_MATTER_CD_FILE, NULL);
  g_autofree gchar *signer = g_build_filename (home, ST_SETUP_MATTER_CD_SIGNER_FILE, NULL);
  g_autofree gchar *tlv_out = g_build_filename (tmp, "cd.tlv", NULL);
  const char *verify[] = { "openssl", "cms", "-verify", "-inform", "DER", "-in", cd, "-binary", "-noverify",
                           "-certfile", signer, "-out", tlv_out, NULL };
  g_assert_cmpint (run (NULL, verify), ==, 0);
  gchar *tlv = NULL;
  gsize tlv_len = 0;
  g_assert_true (g_file_get_contents (tlv_out, &tlv, &tlv_len, NULL));
  g_autoptr(GBytes) tlv_bytes = g_bytes_new_take (tlv, tlv_len);
  static const guint16 pid[] = { ST_SETUP_MATTER_PID };
  StMatterCd want = { .format_version = 1, .vendor_id = 0xFFF1, .product_ids = pid, .n_product_ids = 1,
                      .device_type_id = ST_SETUP_MATTER_DEVICE_TYPE, .certificate_id = ST_SETUP_MATTER_CERT_ID,
                      .version_number = 1, .certification_type = 0 };
  g_autoptr(GBytes) want_tlv = st_matter_cd_encode (&want, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (tlv_bytes, want_tlv));
  const char *print[] = { "openssl", "cms", "-cmsout", "-print", "-inform", "DER", "-in", cd, NULL };
  g_assert_cmpint (run (&out, print), ==, 0);
  g_assert_nonnull (strstr (out, "d.subjectKeyIdentifier:"));   /* the sid: the signer's key id */
  g_assert_nonnull (strstr (out, "ecdsa-with-SHA256"));
  g_assert_nonnull (strstr (out, "eContentType: pkcs7-data"));
  g_assert_true (printed_absent (out, "signedAttrs"));
  g_assert_true (printed_absent (out, "certificates"));
  g_clear_pointer (&out, g_free);
  /* a signature by another key does not verify */
  g_autoptr(EVP_PKEY) other = make_key ("P-256");
  g_autoptr(X509) other_cert = make_cert ("Other CD Signer", NULL, NULL, other, NULL, other, "critical,CA:FALSE",
                                          "critical,digitalSignature", NULL);
  g_autofree gchar *other_pem = write_pem (tmp, "other-cd-signer.pem", other_cert);
  const char *verify_other[] = { "openssl", "cms", "-verify", "-inform", "DER", "-in", cd, "-binary", "-noverify",
                                 "-certfile", other_pem, "-out", tlv_out, NULL };
  g_assert_cmpint (run (NULL, verify_other), !=, 0);

  /* the example profile names it and loads it */
  g_autoptr(StProfile) profile = example_profile (cd, &error);
  g_assert_no_error (error);
  g_autoptr(GBytes) cd_bytes = st_profile_load_certification_declaration (profile, &error);
  g_assert_no_error (error);
  g_assert_nonnull (cd_bytes);
  /* batch create's check: the demo's PAI is accepted */
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  g_assert_true (st_issue_check_profile (pai, profile, now, &error));
  g_assert_no_error (error);

  /* the plain demo's CA is refused, with the message */
  g_autoptr(StTestHome) plain = st_test_home_new ();
  g_autoptr(X509) plain_ca = st_ca_load_cert_file (plain->config->ca_cert, &error);
  g_assert_no_error (error);
  g_assert_false (st_issue_check_profile (plain_ca, profile, now, &error));
  g_assert_nonnull (error);
  g_test_message ("the plain demo's CA: %s", error->message);
  g_assert_nonnull (strstr (error->message, "PAI"));
  g_clear_error (&error);
  g_assert_null (plain->config->matter_vendor_id);

  /* each kind of demo leaves the other's home alone; the same kind again is checked */
  g_assert_false (st_setup_demo (home, ST_TEST_PIN, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED);
  g_assert_nonnull (strstr (error->message, "Matter demo"));
  g_clear_error (&error);
  g_assert_false (st_setup_demo_matter (plain->home, ST_TEST_PIN, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED);
  g_clear_error (&error);
  g_assert_true (st_setup_demo_matter (home, ST_TEST_PIN, &error));
  g_assert_no_error (error);
  st_test_rm_rf (tmp);
}

/* ---- the ceremony ---- */

/* The PAA's openssl.cnf of docs/ceremony.md ("A Matter station": the
 * ```ini block that starts with oid_section), its dir set to @dir. */
static gchar *
doc_paa_cnf (const char *dir)
{
  g_autofree gchar *path = g_build_filename (source_dir, "docs", "ceremony.md", NULL);
  g_autofree gchar *doc = NULL;
  g_assert_true (g_file_get_contents (path, &doc, NULL, NULL));
  const char *start = strstr (doc, "```ini\noid_section = matter_oids\n");
  g_assert_nonnull (start);
  start += strlen ("```ini\n");
  const char *end = strstr (start, "```");
  g_assert_nonnull (end);
  g_autofree gchar *block = g_strndup (start, (gsize) (end - start));
  const char *dir_line = "dir = /srv/matter-paa\n";
  gchar *at = strstr (block, dir_line);
  g_assert_nonnull (at);
  *at = '\0';
  return g_strdup_printf ("%sdir = %s\n%s", block, dir, at + strlen (dir_line));
}

typedef struct {
  gchar *dir;
  StConfig *config;
  X509_REQ *ca_csr, *sig_csr;
  EVP_PKEY *paa_key;
  X509 *paa;
} Ceremony;

static X509_REQ *
parse_csr (const char *pem)
{
  g_autoptr(BIO) bio = BIO_new_mem_buf (pem, -1);
  X509_REQ *csr = PEM_read_bio_X509_REQ (bio, NULL, NULL, NULL);
  g_assert_nonnull (csr);
  return csr;
}

/* ca import of @ca (signed by the test's PAA unless in @chain) with a
 * signing certificate from the PAA; returns the error or NULL. */
static GError *
try_import (Ceremony *c, X509 *const *chain, int n)
{
  g_autoptr(X509) signing = make_cert ("Station Signing", NULL, NULL, X509_REQ_get0_pubkey (c->sig_csr), c->paa,
                                       c->paa_key, "critical,CA:FALSE", "critical,digitalSignature",
                                       "codeSigning,emailProtection," ST_OID_STATION_SIGNING);
  g_autofree gchar *chain_pem = pem_of (chain, n);
  g_autofree gchar *signing_pem = pem_of (&signing, 1);
  g_autoptr(GString) report = g_string_new (NULL);
  g_autofree gchar *payload = NULL;
  GError *error = NULL;
  g_autoptr(StConfig) next = st_ceremony_import (c->config, ST_TEST_PIN, chain_pem, signing_pem, report,
                                                 &payload, &error);
  if (next != NULL)
    {
      g_assert_cmpstr (next->matter_vendor_id, ==, "FFF1");
      return NULL;
    }
  g_assert_nonnull (error);
  g_test_message ("refused: %s", error->message);
  return error;
}

static void
expect_refused (Ceremony *c, X509 *ca, X509 *root, const char *rule)
{
  X509 *chain[] = { ca, root };
  g_autoptr(GError) error = try_import (c, chain, 2);
  g_assert_nonnull (error);
  g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
  g_assert_nonnull (strstr (error->message, rule));
}

static void
test_ceremony (void)
{
  g_autoptr(StTestHome) h = st_test_home_new ();
  g_autoptr(GError) error = NULL;
  Ceremony c = { 0 };
  c.dir = g_build_filename (h->tmpdir, "ceremony", NULL);
  g_assert_cmpint (g_mkdir_with_parents (c.dir, 0700), ==, 0);
  StCeremonyInit req = { .module = st_test_softhsm_module (), .token = ST_SETUP_DEMO_TOKEN,
                         .station_id = "matter1", .subject = "O=Test Vendor", .alg = ST_ALG_EC_P256,
                         .pin = ST_TEST_PIN, .admin = "alice", .matter_vid = "FFF1" };
  /* refused before the token: a bad VID, a PID without VID, P-384 */
  StCeremonyInit bad = req;
  bad.matter_vid = "fff1";
  g_assert_false (st_ceremony_check_request (&bad, &error));
  g_assert_nonnull (strstr (error->message, "--matter-vid"));
  g_clear_error (&error);
  bad = req;
  bad.matter_vid = NULL;
  bad.matter_pid = "8000";
  g_assert_false (st_ceremony_check_request (&bad, &error));
  g_assert_nonnull (strstr (error->message, "--matter-pid needs --matter-vid"));
  g_clear_error (&error);
  bad = req;
  bad.alg = ST_ALG_EC_P384;
  g_assert_false (st_ceremony_check_request (&bad, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED);
  g_clear_error (&error);

  g_auto(StCeremonyKeys) keys = { 0 };
  g_autofree gchar *home = g_build_filename (h->tmpdir, "matter-home", NULL);
  g_assert_cmpint (g_mkdir_with_parents (home, 0700), ==, 0);
  g_autoptr(StConfig) config = st_ceremony_init (home, &req, &keys, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (config->matter_vendor_id, ==, "FFF1");
  g_assert_null (config->matter_product_id);
  g_assert_nonnull (strstr (keys.audit_payload, "\"matter-vendor-id\":\"FFF1\""));
  g_assert_true (st_config_save (config, &error));
  g_assert_no_error (error);
  /* station.conf records it, and reads back */
  c.config = st_config_load (home, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (c.config->matter_vendor_id, ==, "FFF1");
  c.ca_csr = parse_csr (keys.ca_csr_pem);
  c.sig_csr = parse_csr (keys.signing_csr_pem);
  /* the PAI's request carries the VID, a UTF8String in its own RDN */
  StMatterIds ids = { 0 };
  g_assert_true (st_matter_name_ids (X509_REQ_get_subject_name (c.ca_csr), "the request", &ids, &error));
  g_assert_no_error (error);
  g_assert_true (ids.has_vid && ids.vid == 0xFFF1 && !ids.has_pid);

  c.paa_key = make_key ("P-256");
  c.paa = make_cert ("Test PAA", "FFF1", NULL, c.paa_key, NULL, c.paa_key, "critical,CA:TRUE",
                     "critical,keyCertSign,cRLSign", NULL);
  EVP_PKEY *ca_pub = X509_REQ_get0_pubkey (c.ca_csr);
  const char *pai_bc = "critical,CA:TRUE,pathlen:0", *ca_ku = "critical,keyCertSign,cRLSign";

  /* a root with a PID is no PAA */
  g_autoptr(X509) paa_pid = make_cert ("Test PAA", "FFF1", "8000", c.paa_key, NULL, c.paa_key, "critical,CA:TRUE",
                                       ca_ku, NULL);
  g_autoptr(X509) pai_under_pid = make_cert ("Station PAI", "FFF1", NULL, ca_pub, paa_pid, c.paa_key, pai_bc, ca_ku, NULL);
  expect_refused (&c, pai_under_pid, paa_pid, "the root is not a Matter PAA: the PAA breaks the Matter rule (Matter Core spec 6.2.2.5, PAA): its subject must not carry a PID");
  /* a CA with pathlen 1 */
  g_autoptr(X509) pai_len1 = make_cert ("Station PAI", "FFF1", NULL, ca_pub, c.paa, c.paa_key,
                                        "critical,CA:TRUE,pathlen:1", ca_ku, NULL);
  expect_refused (&c, pai_len1, c.paa, "the issuing CA is not a Matter PAI: the PAI breaks the Matter rule (Matter Core spec 6.2.2.4, PAI): basicConstraints must be present, critical, CA:TRUE with pathLenConstraint 0");
  /* a CA without VID */
  g_autoptr(X509) pai_novid = make_cert ("Station PAI", NULL, NULL, ca_pub, c.paa, c.paa_key, pai_bc, ca_ku, NULL);
  expect_refused (&c, pai_novid, c.paa, "(Matter Core spec 6.2.2.4, PAI): its subject must carry a VID");
  /* a P-384 CA (another key than the token's, refused for its curve first) */
  g_autoptr(EVP_PKEY) p384 = make_key ("P-384");
  g_autoptr(X509) pai_p384 = make_cert ("Station PAI", "FFF1", NULL, p384, c.paa, c.paa_key, pai_bc, ca_ku, NULL);
  expect_refused (&c, pai_p384, c.paa, "(Matter Core spec 6.2.2.4, PAI): the public key must be on the named curve P-256");
  /* a PAI of another vendor, and one with a PID the ceremony did not ask */
  g_autoptr(X509) pai_vid2 = make_cert ("Station PAI", "FFF2", NULL, ca_pub, c.paa, c.paa_key, pai_bc, ca_ku, NULL);
  expect_refused (&c, pai_vid2, c.paa, "carries VID FFF2");
  g_autoptr(X509) pai_pid = make_cert ("Station PAI", "FFF1", "8000", ca_pub, c.paa, c.paa_key, pai_bc, ca_ku, NULL);
  expect_refused (&c, pai_pid, c.paa, "carries PID 8000");
  /* an intermediate between PAA and PAI */
  {
    g_autoptr(EVP_PKEY) mid_key = make_key ("P-256");
    g_autoptr(X509) mid = make_cert ("Middle", "FFF1", NULL, mid_key, c.paa, c.paa_key, "critical,CA:TRUE,pathlen:1",
                                     ca_ku, NULL);
    g_autoptr(X509) pai_mid = make_cert ("Station PAI", "FFF1", NULL, ca_pub, mid, mid_key, pai_bc, ca_ku, NULL);
    X509 *chain[] = { pai_mid, mid, c.paa };
    g_autoptr(GError) e = try_import (&c, chain, 3);
    g_assert_nonnull (e);
    g_assert_nonnull (strstr (e->message, "exactly its PAI"));
  }
  /* nothing was written by the refusals */
  g_autofree gchar *root_file = g_build_filename (home, "root.pem", NULL);
  g_assert_false (g_file_test (root_file, G_FILE_TEST_EXISTS));

  /* a good PAI made here passes the checker (and is accepted below) */
  g_autoptr(X509) pai = make_cert ("Station PAI", "FFF1", NULL, ca_pub, c.paa, c.paa_key, pai_bc, ca_ku, NULL);
  g_autofree gchar *pai_c_pem = write_pem (c.dir, "pai-c.pem", pai);
  g_assert_cmpint (run_checker ("pai", pai_c_pem, NULL), ==, 0);

  /* docs/ceremony.md's recipe, with its openssl.cnf: stock openssl makes
   * the PAA and signs the two requests; the checker passes the PAA and
   * PAI, and ca import accepts them */
  g_autofree gchar *paa_dir = g_build_filename (c.dir, "paa", NULL);
  g_autofree gchar *newcerts = g_build_filename (paa_dir, "newcerts", NULL);
  g_assert_cmpint (g_mkdir_with_parents (newcerts, 0700), ==, 0);
  g_autofree gchar *index = g_build_filename (paa_dir, "index.txt", NULL);
  g_assert_true (g_file_set_contents (index, "", 0, NULL));
  g_autofree gchar *cnf_text = doc_paa_cnf (paa_dir);
  g_autofree gchar *cnf = g_build_filename (paa_dir, "openssl.cnf", NULL);
  g_assert_true (g_file_set_contents (cnf, cnf_text, -1, NULL));
  g_autofree gchar *paa_key = g_build_filename (paa_dir, "paa.key", NULL);
  g_autofree gchar *paa_pem = g_build_filename (paa_dir, "paa.pem", NULL);
  g_autofree gchar *ca_csr = g_build_filename (c.dir, "issuing-ca.csr.pem", NULL);
  g_autofree gchar *sig_csr = g_build_filename (c.dir, "station-signing.csr.pem", NULL);
  g_assert_true (g_file_set_contents (ca_csr, keys.ca_csr_pem, -1, NULL));
  g_assert_true (g_file_set_contents (sig_csr, keys.signing_csr_pem, -1, NULL));
  g_autofree gchar *pai_pem = g_build_filename (c.dir, "issuing-ca.pem", NULL);
  g_autofree gchar *sig_pem = g_build_filename (c.dir, "station-signing.pem", NULL);
  const char *genkey[] = { "openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                           "-out", paa_key, NULL };
  const char *mkpaa[] = { "openssl", "req", "-config", cnf, "-new", "-x509", "-key", paa_key, "-sha256",
                          "-days", "7300", "-subj", "/O=Example GmbH/CN=Example Matter PAA/matterVID=FFF1",
                          "-extensions", "v3_matter_paa", "-out", paa_pem, NULL };
  const char *mkpai[] = { "openssl", "ca", "-batch", "-config", cnf, "-extensions", "v3_matter_pai", "-preserveDN",
                          "-in", ca_csr, "-out", pai_pem, NULL };
  const char *mksig[] = { "openssl", "ca", "-batch", "-config", cnf, "-extensions", "v3_station_signing",
                          "-in", sig_csr, "-out", sig_pem, NULL };
  g_assert_cmpint (run (NULL, genkey), ==, 0);
  g_assert_cmpint (run (NULL, mkpaa), ==, 0);
  g_assert_cmpint (run (NULL, mkpai), ==, 0);
  g_assert_cmpint (run (NULL, mksig), ==, 0);
  g_assert_cmpint (run_checker ("paa", paa_pem, NULL), ==, 0);
  g_assert_cmpint (run_checker ("pai", pai_pem, NULL), ==, 0);
  g_autofree gchar *pai_text = NULL, *paa_text = NULL, *sig_text = NULL;
  g_assert_true (g_file_get_contents (pai_pem, &pai_text, NULL, NULL));
  g_assert_true (g_file_get_contents (paa_pem, &paa_text, NULL, NULL));
  g_assert_true (g_file_get_contents (sig_pem, &sig_text, NULL, NULL));
  g_autofree gchar *chain_text = g_strconcat (pai_text, paa_text, NULL);
  g_autoptr(GString) report = g_string_new (NULL);
  g_autofree gchar *payload = NULL;
  g_autoptr(StConfig) next = st_ceremony_import (c.config, ST_TEST_PIN, chain_text, sig_text, report, &payload,
                                                 &error);
  g_assert_no_error (error);
  g_assert_nonnull (next);
  g_assert_true (g_file_test (root_file, G_FILE_TEST_EXISTS));
  g_autoptr(StConfig) done = st_config_load (home, &error);
  g_assert_no_error (error);
  g_assert_false (done->awaiting_import);
  g_assert_cmpstr (done->matter_vendor_id, ==, "FFF1");

  /* a station for one product (--matter-pid 8000): the request carries VID
   * and PID, each in its own RDN; a PAI without the PID is refused, one
   * with it passes the Matter checks */
  StCeremonyInit one = req;
  one.station_id = "matter2";
  one.matter_pid = "8000";
  g_auto(StCeremonyKeys) keys2 = { 0 };
  g_autofree gchar *home2 = g_build_filename (h->tmpdir, "matter-home-2", NULL);
  g_autoptr(StConfig) config2 = st_ceremony_init (home2, &one, &keys2, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (config2->matter_product_id, ==, "8000");
  g_assert_nonnull (strstr (keys2.audit_payload, "\"matter-product-id\":\"8000\""));
  g_autoptr(X509_REQ) csr2 = parse_csr (keys2.ca_csr_pem);
  StMatterIds ids2 = { 0 };
  g_assert_true (st_matter_name_ids (X509_REQ_get_subject_name (csr2), "the request", &ids2, &error));
  g_assert_no_error (error);
  g_assert_true (ids2.has_vid && ids2.vid == 0xFFF1 && ids2.has_pid && ids2.pid == 0x8000);
  EVP_PKEY *pub2 = X509_REQ_get0_pubkey (csr2);
  g_autoptr(X509) pai2_nopid = make_cert ("Station PAI", "FFF1", NULL, pub2, c.paa, c.paa_key, pai_bc, ca_ku, NULL);
  g_assert_false (st_ceremony_matter_check (c.paa, pai2_nopid, 2, "FFF1", "8000", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
  g_assert_nonnull (strstr (error->message, "carries no PID, but this station was set up for PID 8000"));
  g_clear_error (&error);
  g_autoptr(X509) pai2 = make_cert ("Station PAI", "FFF1", "8000", pub2, c.paa, c.paa_key, pai_bc, ca_ku, NULL);
  g_assert_true (st_ceremony_matter_check (c.paa, pai2, 2, "FFF1", "8000", &error));
  g_assert_no_error (error);

  X509_REQ_free (c.ca_csr);
  X509_REQ_free (c.sig_csr);
  X509_free (c.paa);
  EVP_PKEY_free (c.paa_key);
  st_config_free (c.config);
  g_free (c.dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_assert_cmpint (argc, ==, 4);
  python_path = argv[1];
  checker_path = argv[2];
  source_dir = argv[3];
  g_test_add_func ("/matter-setup/cd-tlv", test_cd_tlv);
  g_test_add_func ("/matter-setup/demo", test_demo);
  g_test_add_func ("/matter-setup/ceremony", test_ceremony);
  return g_test_run ();
}
