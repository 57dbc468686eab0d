/* The Matter demo through the real service and CLI (issue 18, item 1;
 * docs/matter.md, "The PAA and the PAI: set-up and ceremony"):
 *
 * /matter-demo/setup: `station setup demo --matter` on a new home makes a
 *   station whose `setup show` names the Matter PAA and PAI; `batch
 *   create` of profiles/example-matter.profile (its CD file the demo's)
 *   is accepted there; `setup demo` (plain) on that home is refused;
 *   `--matter` with `setup show` is a usage error;
 * /matter-demo/plain-refused: on the plain demo, `batch create` of the same
 *   profile is refused with the PAI rule named, and `setup demo --matter`
 *   is refused too;
 * /matter-demo/ceremony: `ca init --matter-vid FFF1` through the service
 *   (a lower-case VID refused) puts the VID in the PAI's request; `ca
 *   import` of a root with a PID is refused with the rule named and
 *   audited; the PAA and PAI of docs/ceremony.md's stock-openssl recipe are
 *   accepted and station.conf keeps [matter];
 * /matter-demo/whole-flow: `station demo --matter` (make matter-demo) on
 *   2 sockets of station-devsim devices; its DACs pass check-dac.py under
 *   the demo's PAI, every label's QR code read by zbarimg is its unit's QR
 *   text, and the codes file is the database's record. */
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "st-build-config.h"
#include "st-test-run.h"
#include "st-test-tmp.h"
#include "st-util.h"

#define ST_ADMIN_PIN "4444"

/* profiles/example-matter.profile with its CD file set to @cd. */
static gchar *
matter_profile (StFixture *f, const char *cd)
{
  const char *overrides[] = { NULL, NULL };
  g_autofree gchar *o = g_strdup_printf ("certification-declaration=%s", cd);
  overrides[0] = o;
  return st_profile_copy (f, "example-matter.profile", overrides);
}

static int
create_batch (StFixture *f, const char *profile, gchar **out, gchar **err)
{
  return st_run_station (f, out, err, "batch", "create", "--profile", profile, "--work-order", "WO-MATTER-1",
                         "--quantity", "2", NULL);
}

static void
test_setup (void)
{
  StFixture fx = { 0 };
  StFixture *f = &fx;
  f->tmp = st_test_tmpdir ("st-matter-demo");
  f->home = g_build_filename (f->tmp, "home", NULL);
  f->sims = g_ptr_array_new_with_free_func (g_object_unref);
  const char *none[] = { NULL };
  st_service_ensure (f, none);

  g_autofree gchar *out = NULL, *err = NULL;
  g_assert_cmpint (st_run_station (f, &out, &err, "setup", "demo", "--matter", NULL), ==, 0);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station (f, &out, &err, "setup", "show", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "Station Demo Matter PAA"));
  g_assert_nonnull (strstr (out, "Station Demo Matter PAI"));
  g_assert_nonnull (strstr (out, "Matter station: the root is a PAA and the issuing CA a PAI of VID FFF1"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  /* the same for scripts: setup show --json's "matter", held to its schema */
  g_assert_cmpint (st_run_station (f, &out, &err, "setup", "show", "--json", NULL), ==, 0);
  {
    g_autofree gchar *schema = g_build_filename (g_getenv ("ST_SOURCE_DIR"), "docs", "schema", "cli",
                                                 "setup-show.json", NULL);
    g_autofree gchar *checker = g_build_filename (g_getenv ("ST_SOURCE_DIR"), "tests", "cli", "check-json.py", NULL);
    g_autofree gchar *doc = g_build_filename (f->tmp, "setup-show.json", NULL);
    g_assert_true (g_file_set_contents (doc, out, -1, NULL));
    g_assert_cmpint (st_run_tool (NULL, NULL, "python3", checker, schema, doc, NULL), ==, 0);
    g_autoptr(JsonParser) parser = json_parser_new ();
    g_assert_true (json_parser_load_from_data (parser, out, -1, NULL));
    JsonObject *matter = json_object_get_object_member (json_node_get_object (json_parser_get_root (parser)),
                                                        "matter");
    g_assert_nonnull (matter);
    g_assert_cmpstr (json_object_get_string_member (matter, "vendor_id"), ==, "FFF1");
    g_assert_true (json_object_get_null_member (matter, "product_id"));
  }
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_autofree gchar *conf = NULL;
  g_autofree gchar *conf_path = g_build_filename (f->home, "station.conf", NULL);
  g_assert_true (g_file_get_contents (conf_path, &conf, NULL, NULL));
  g_assert_nonnull (strstr (conf, "[matter]\nvendor-id=FFF1\n"));

  /* the demo's PAI is accepted by batch create of a Matter profile */
  g_autofree gchar *cd = g_build_filename (f->home, "matter", "cd-FFF1-8000.der", NULL);
  g_autofree gchar *profile = matter_profile (f, cd);
  g_assert_cmpint (create_batch (f, profile, &out, &err), ==, 0);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* the two kinds of demo never turn into each other */
  g_assert_cmpint (st_run_station (f, &out, &err, "setup", "demo", NULL), !=, 0);
  g_assert_nonnull (strstr (err, "Matter demo"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station (f, &out, &err, "setup", "show", "--matter", NULL), ==, ST_RC_USAGE);
  st_fixture_teardown (f, NULL);
}

static void
test_plain_refused (StFixture *f, gconstpointer data)
{
  /* the CD file is valid (a DER SignedData): only the CA is wrong */
  g_autofree gchar *out = NULL, *err = NULL;
  g_autofree gchar *tlv = g_build_filename (f->tmp, "cd.tlv", NULL);
  g_autofree gchar *cd = g_build_filename (f->tmp, "cd.der", NULL);
  g_autofree gchar *key = g_build_filename (f->tmp, "cd.key", NULL);
  g_autofree gchar *cert = g_build_filename (f->tmp, "cd.pem", NULL);
  g_assert_true (g_file_set_contents (tlv, "\x15\x18", 2, NULL));
  g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-subj", "/CN=CD", "-out",
                                cert, NULL), ==, 0);
  g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "cms", "-sign", "-binary", "-nodetach", "-in", tlv,
                                "-signer", cert, "-inkey", key, "-outform", "DER", "-out", cd, NULL), ==, 0);
  g_autofree gchar *profile = matter_profile (f, cd);
  g_assert_cmpint (create_batch (f, profile, &out, &err), !=, 0);
  g_assert_nonnull (strstr (err, "needs the issuing CA to be a Matter PAI"));
  g_assert_nonnull (strstr (err, "must carry a VID"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "lock", NULL), ==, 0);
  g_assert_cmpint (st_run_station (f, &out, &err, "setup", "demo", "--matter", NULL), !=, 0);
  g_assert_nonnull (strstr (err, "not a Matter one"));
}

/* The PAA's openssl.cnf of docs/ceremony.md ("A Matter station"), its dir
 * set to @dir. */
static gchar *
doc_paa_cnf (const char *dir)
{
  g_autofree gchar *path = g_build_filename (g_getenv ("ST_SOURCE_DIR"), "docs", "ceremony.md", NULL);
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

/* A PAA in @dir made by stock openssl with @subj; its openssl.cnf, key,
 * certificate, index and newcerts/. */
static gchar *
make_paa (const char *dir, const char *subj)
{
  g_autofree gchar *newcerts = g_build_filename (dir, "newcerts", NULL);
  g_assert_cmpint (g_mkdir_with_parents (newcerts, 0700), ==, 0);
  g_autofree gchar *index = g_build_filename (dir, "index.txt", NULL);
  g_assert_true (g_file_set_contents (index, "", 0, NULL));
  g_autofree gchar *cnf_text = doc_paa_cnf (dir);
  gchar *cnf = g_build_filename (dir, "openssl.cnf", NULL);
  g_assert_true (g_file_set_contents (cnf, cnf_text, -1, NULL));
  g_autofree gchar *key = g_build_filename (dir, "paa.key", NULL);
  g_autofree gchar *pem = g_build_filename (dir, "paa.pem", NULL);
  g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                                "ec_paramgen_curve:P-256", "-out", key, NULL), ==, 0);
  g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "req", "-config", cnf, "-new", "-x509", "-key", key,
                                "-sha256", "-days", "7300", "-subj", subj, "-extensions", "v3_matter_paa",
                                "-out", pem, NULL), ==, 0);
  return cnf;
}

/* openssl ca of the PAA in @cnf's folder: the PAI and the signing
 * certificate, and the chain file PAI + PAA. */
static void
sign_requests (const char *cnf, const char *csr_dir, const char *out_dir, gchar **chain, gchar **signing)
{
  g_autofree gchar *ca_csr = g_build_filename (csr_dir, "issuing-ca.csr.pem", NULL);
  g_autofree gchar *sig_csr = g_build_filename (csr_dir, "station-signing.csr.pem", NULL);
  g_autofree gchar *pai = g_build_filename (out_dir, "issuing-ca.pem", NULL);
  *signing = g_build_filename (out_dir, "station-signing.pem", NULL);
  *chain = g_build_filename (out_dir, "chain.pem", NULL);
  g_assert_cmpint (g_mkdir_with_parents (out_dir, 0700), ==, 0);
  g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "ca", "-batch", "-config", cnf, "-extensions",
                                "v3_matter_pai", "-preserveDN", "-in", ca_csr, "-out", pai, NULL), ==, 0);
  g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "ca", "-batch", "-config", cnf, "-extensions",
                                "v3_station_signing", "-in", sig_csr, "-out", *signing, NULL), ==, 0);
  g_autofree gchar *dir = g_path_get_dirname (cnf);
  g_autofree gchar *paa = g_build_filename (dir, "paa.pem", NULL);
  g_autofree gchar *a = NULL, *b = NULL;
  g_assert_true (g_file_get_contents (pai, &a, NULL, NULL));
  g_assert_true (g_file_get_contents (paa, &b, NULL, NULL));
  g_autofree gchar *all = g_strconcat (a, b, NULL);
  g_assert_true (g_file_set_contents (*chain, all, -1, NULL));
}

static int
ca_import (StFixture *f, const char *chain, const char *signing, gchar **err)
{
  const char *env[] = { "STATION_HSM_PIN=" ST_TEST_PIN, "STATION_OPERATOR_PIN=" ST_ADMIN_PIN, NULL };
  const char *args[] = { "--operator", "admin", "ca", "import", "--chain", chain, "--signing-cert", signing, NULL };
  return st_run_stationv (f, env, NULL, err, args);
}

/* `ca init --matter-vid` through the service (the CaInit option), a token
 * made by softhsm2-util; `ca import` of a root with a PID refused and
 * audited; the PAA and PAI of docs/ceremony.md's recipe accepted. */
static void
test_ceremony (void)
{
  static guint tokens;
  StFixture fx = { 0 };
  StFixture *f = &fx;
  f->tmp = st_test_tmpdir ("st-matter-ceremony");
  f->home = g_build_filename (f->tmp, "home", NULL);
  f->sims = g_ptr_array_new_with_free_func (g_object_unref);
  g_autofree gchar *token = g_strdup_printf ("matter-%u-%d", ++tokens, (int) getpid ());
  g_assert_cmpint (st_run_tool (NULL, NULL, "softhsm2-util", "--init-token", "--free", "--label", token,
                                "--so-pin", "87654321", "--pin", ST_TEST_PIN, NULL), ==, 0);
  const char *none[] = { NULL };
  st_service_ensure (f, none);
  g_autofree gchar *csr_dir = g_build_filename (f->tmp, "requests", NULL);
  const char *env[] = { "STATION_HSM_PIN=" ST_TEST_PIN, "STATION_OPERATOR_PIN=" ST_ADMIN_PIN, NULL };
  g_autofree gchar *out = NULL, *err = NULL;
  /* a lower-case VID is refused before the token */
  const char *bad[] = { "--operator", "admin", "ca", "init", "--module", ST_SOFTHSM_MODULE, "--token", token,
                        "--station-id", "matter1", "--subject", "O=Test Vendor", "--admin", "admin", "--out",
                        csr_dir, "--matter-vid", "fff1", NULL };
  g_assert_cmpint (st_run_stationv (f, env, &out, &err, bad), !=, 0);
  g_assert_nonnull (strstr (err, "--matter-vid needs exactly 4 upper-case hex digits"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  const char *init[] = { "--operator", "admin", "ca", "init", "--module", ST_SOFTHSM_MODULE, "--token", token,
                         "--station-id", "matter1", "--subject", "O=Test Vendor", "--admin", "admin", "--out",
                         csr_dir, "--matter-vid", "FFF1", NULL };
  g_assert_cmpint (st_run_stationv (f, env, &out, &err, init), ==, 0);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_autofree gchar *ca_csr = g_build_filename (csr_dir, "issuing-ca.csr.pem", NULL);
  g_assert_cmpint (st_run_tool (&out, NULL, "openssl", "req", "-in", ca_csr, "-verify", "-noout", "-subject",
                                "-nameopt", "show_type", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "1.3.6.1.4.1.37244.2.1=UTF8STRING:FFF1"));
  g_clear_pointer (&out, g_free);

  /* a root with a PID: refused, nothing written, audited */
  g_autofree gchar *bad_dir = g_build_filename (f->tmp, "paa-with-pid", NULL);
  g_autofree gchar *bad_cnf = make_paa (bad_dir, "/O=Test Vendor/CN=PAA/matterVID=FFF1/matterPID=8000");
  g_autofree gchar *bad_chain = NULL, *bad_signing = NULL;
  g_autofree gchar *bad_out = g_build_filename (f->tmp, "signed-bad", NULL);
  sign_requests (bad_cnf, csr_dir, bad_out, &bad_chain, &bad_signing);
  g_assert_cmpint (ca_import (f, bad_chain, bad_signing, &err), !=, 0);
  g_assert_nonnull (strstr (err, "nothing was changed: the root is not a Matter PAA"));
  g_assert_nonnull (strstr (err, "must not carry a PID"));
  g_clear_pointer (&err, g_free);
  g_autofree gchar *root_file = g_build_filename (f->home, "root.pem", NULL);
  g_assert_false (g_file_test (root_file, G_FILE_TEST_EXISTS));

  /* the recipe: accepted */
  g_autofree gchar *good_dir = g_build_filename (f->tmp, "paa", NULL);
  g_autofree gchar *good_cnf = make_paa (good_dir, "/O=Test Vendor/CN=Test Matter PAA/matterVID=FFF1");
  g_autofree gchar *chain = NULL, *signing = NULL;
  g_autofree gchar *good_out = g_build_filename (f->tmp, "signed", NULL);
  sign_requests (good_cnf, csr_dir, good_out, &chain, &signing);
  g_assert_cmpint (ca_import (f, chain, signing, &err), ==, 0);
  g_assert_true (g_file_test (root_file, G_FILE_TEST_EXISTS));
  g_autofree gchar *conf = NULL;
  g_autofree gchar *conf_path = g_build_filename (f->home, "station.conf", NULL);
  g_assert_true (g_file_get_contents (conf_path, &conf, NULL, NULL));
  g_assert_nonnull (strstr (conf, "[matter]\nvendor-id=FFF1\n"));
  /* the audit log: ca-init with the VID, the refused import, the import */
  g_autofree gchar *events = st_sql (f, "SELECT group_concat(event, ' ') FROM audit");
  g_test_message ("audit: %s", events);
  g_assert_nonnull (strstr (events, "ca-init"));
  g_assert_nonnull (strstr (events, "ca-import-failed"));
  g_autofree gchar *init_payload = st_sql (f, "SELECT payload FROM audit WHERE event = 'ca-init'");
  g_assert_nonnull (strstr (init_payload, "\"matter-vendor-id\":\"FFF1\""));
  st_fixture_teardown (f, NULL);
}

/* `station demo --matter` (make matter-demo): the whole flow on Matter
 * devices over pseudo-terminals, then everything it wrote checked with
 * tools that share no code with the station: every DAC of the manifest by
 * tests/matter/check-dac.py under the demo's PAI, every label's QR code by
 * zbarimg against the codes file, the codes file against the database. */
static void
test_whole_flow (void)
{
  StFixture fx = { 0 };
  StFixture *f = &fx;
  f->tmp = st_test_tmpdir ("st-matter-flow");
  f->home = g_build_filename (f->tmp, "home", NULL);
  f->sims = g_ptr_array_new_with_free_func (g_object_unref);
  const char *none[] = { NULL };
  st_service_ensure (f, none);

  g_autofree gchar *out = NULL, *err = NULL;
  int rc = st_run_station (f, &out, &err, "demo", "--matter", "--ports", "2", "--units", "2", NULL);
  if (rc != 0)
    g_test_message ("demo --matter: %s\n%s", out, err);
  g_assert_cmpint (rc, ==, 0);
  g_assert_nonnull (strstr (out, "4 of 4 units provisioned"));
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM unit_matter m JOIN units u ON u.id = m.unit_id"
                                  " WHERE u.state = 'done'"), ==, 4);

  /* the codes file: one row per unit, exactly the database's record */
  g_autofree gchar *codes_path = g_build_filename (f->home, "matter", "batch-1", "matter-codes.csv", NULL);
  g_autofree gchar *codes = NULL;
  g_assert_true (g_file_get_contents (codes_path, &codes, NULL, NULL));
  GStatBuf st;
  g_assert_cmpint (g_stat (codes_path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);
  g_auto(GStrv) rows = g_strsplit (codes, "\r\n", -1);
  g_assert_cmpstr (rows[0], ==, "serial,uid,discriminator,passcode,qr,manual");
  guint n = 0;
  g_autofree gchar *pai = g_build_filename (f->home, "ca", "issuing-ca.pem", NULL);
  g_autofree gchar *checker = g_build_filename (g_getenv ("ST_SOURCE_DIR"), "tests", "matter", "check-dac.py",
                                               NULL);
  for (guint i = 1; rows[i] != NULL && rows[i][0] != '\0'; i++, n++)
    {
      g_auto(GStrv) c = g_strsplit (rows[i], ",", -1);
      g_assert_cmpuint (g_strv_length (c), ==, 6);
      g_autofree gchar *q = g_strdup_printf ("SELECT printf ('%%s,%%s,%%d,%%08d,%%s,%%s', u.product_serial, u.uid,"
                                             " m.discriminator, m.passcode, m.qr_text, m.manual_code)"
                                             " FROM unit_matter m JOIN units u ON u.id = m.unit_id"
                                             " WHERE u.uid = '%s'", c[1]);
      g_autofree gchar *want = st_sql (f, q);
      g_assert_cmpstr (g_strstrip (want), ==, rows[i]);

      /* its label's QR code, read by zbarimg, is the recorded QR text */
      g_autofree gchar *png_name = g_strdup_printf ("%s.png", c[0]);
      g_autofree gchar *png = g_build_filename (f->home, "matter", "batch-1", "labels", png_name, NULL);
      g_autofree gchar *zout = NULL;
      g_assert_cmpint (st_run_tool (&zout, NULL, "zbarimg", "-q", "--raw", png, NULL), ==, 0);
      g_assert_cmpstr (g_strstrip (zout), ==, c[4]);

      /* its DAC keeps the Matter rules under the demo's PAI */
      g_autofree gchar *qc = g_strdup_printf ("SELECT hex (c.der) FROM certificates c JOIN units u"
                                              " ON c.unit_id = u.id WHERE u.uid = '%s' AND c.state = 'active'", c[1]);
      g_autofree gchar *hex = st_sql (f, qc);
      g_strstrip (hex);
      gsize len = strlen (hex) / 2;
      g_autofree guint8 *der = g_malloc (len);
      for (gsize k = 0; k < len; k++)
        der[k] = (guint8) (g_ascii_xdigit_value (hex[2 * k]) * 16 + g_ascii_xdigit_value (hex[2 * k + 1]));
      g_autofree gchar *b64 = g_base64_encode (der, len);
      g_autoptr(GString) pem = g_string_new ("-----BEGIN CERTIFICATE-----\n");
      for (gsize k = 0; k < strlen (b64); k += 64)
        g_string_append_printf (pem, "%.64s\n", b64 + k);
      g_string_append (pem, "-----END CERTIFICATE-----\n");
      g_autofree gchar *dac_name = g_strdup_printf ("dac-%u.pem", n);
      g_autofree gchar *dac = g_build_filename (f->tmp, dac_name, NULL);
      g_assert_true (g_file_set_contents (dac, pem->str, -1, NULL));
      g_autofree gchar *dout = NULL, *derr = NULL;
      int drc = st_run_tool (&dout, &derr, "python3", checker, "dac", pai, dac, NULL);
      if (drc != 0)
        g_test_message ("check-dac.py: %s", derr);
      g_assert_cmpint (drc, ==, 0);
      g_assert_nonnull (strstr (dout, "VID=FFF1"));
    }
  g_assert_cmpuint (n, ==, 4);
  /* sequential discriminators of the example profile, from 3840 */
  g_assert_cmpint (st_sql_int (f, "SELECT min (discriminator) FROM unit_matter"), ==, 3840);
  g_assert_cmpint (st_sql_int (f, "SELECT max (discriminator) FROM unit_matter"), ==, 3843);
  st_fixture_teardown (f, NULL);
}

int
main (int argc, char **argv)
{
  /* a SoftHSM2 configuration of this process's own for the ceremony's
   * token, made before any thread: the service inherits it (the demo
   * stations have their own in their homes) */
  g_autofree gchar *softhsm_dir = st_test_tmpdir ("st-matter-softhsm");
  g_autofree gchar *tokens = g_build_filename (softhsm_dir, "tokens", NULL);
  g_assert_cmpint (g_mkdir_with_parents (tokens, 0700), ==, 0);
  g_autofree gchar *conf = g_build_filename (softhsm_dir, "softhsm2.conf", NULL);
  g_autofree gchar *conf_text = g_strdup_printf ("directories.tokendir = %s\nobjectstore.backend = file\n"
                                                 "log.level = ERROR\n", tokens);
  g_assert_true (g_file_set_contents (conf, conf_text, -1, NULL));
  g_setenv ("SOFTHSM2_CONF", conf, TRUE);
  st_test_init (&argc, &argv);
  g_test_add_func ("/matter-demo/setup", test_setup);
  g_test_add_func ("/matter-demo/whole-flow", test_whole_flow);
  st_test_add_station ("/matter-demo/plain-refused", NULL, test_plain_refused);
  g_test_add_func ("/matter-demo/ceremony", test_ceremony);
  int rc = g_test_run ();
  st_rm_rf (softhsm_dir);
  return rc;
}
