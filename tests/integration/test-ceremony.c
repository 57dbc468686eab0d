/* The key ceremony of a real station (issue 15, item 1; docs/ceremony.md),
 * through the real service and CLI, with a SoftHSM2 token made for the
 * test by the stock softhsm2-util and a company root made by stock openssl
 * (a key on disk, `openssl req -x509`), which signs the two requests with
 * stock `openssl ca` and the openssl.cnf that docs/ceremony.md shows (read
 * from it).
 *
 * /ceremony/whole: a module file that others may write is refused (the
 * caller names the code the service loads); `ca init` on a home that is
 * not set up (no login: the first admin comes with it) writes the two
 * requests; the station waits
 * for its import (unlock refused, saying so); four wrong imports are each
 * refused naming the problem with nothing written (an issuing certificate
 * for another key, a signing certificate without the station-signing
 * purpose, an expired certificate, a root that did not sign the chain);
 * the right one is accepted; an admin unlocks; a batch provisions two
 * simulated devices; the manifest export verifies with `openssl cms
 * -verify` against the new root, and each device certificate with GnuTLS
 * `certtool --verify` and `openssl verify` against the new chain; the
 * audit log holds ca-init and ca-import (a second `ca init` on a set-up
 * home is refused: /engine/awaiting-import). */
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "st-build-config.h"
#include "st-test-json.h"
#include "st-test-run.h"
#include "st-test-tmp.h"
#include "st-util.h"

#define ST_TOKEN_SO_PIN "87654321"
#define ST_ADMIN_PIN "4444"

static gchar *st_softhsm_dir;   /* the tokens of this process's tests */
static guint st_token_count;

/* The root's openssl.cnf is the one docs/ceremony.md shows (its first
 * ```ini block, with `dir` set to the test's root folder), so that the
 * recipe the admin follows is the one tested; the test adds the sections
 * it needs besides: the root's own request, and a signing profile without
 * the station-signing purpose for a refusal. */
static const char st_test_sections[] =
  "[ req ]\n"
  "distinguished_name = req_dn\n"
  "prompt = no\n"
  "[ req_dn ]\n"
  "O = Test Corp\n"
  "CN = Test Corp Root CA\n"
  "[ v3_root ]\n"
  "basicConstraints = critical,CA:TRUE\n"
  "keyUsage = critical,keyCertSign,cRLSign\n"
  "subjectKeyIdentifier = hash\n"
  "[ v3_signing_without_purpose ]\n"
  "basicConstraints = critical,CA:FALSE\n"
  "keyUsage = critical,digitalSignature\n"
  "extendedKeyUsage = codeSigning,emailProtection\n"
  "subjectKeyIdentifier = hash\n"
  "authorityKeyIdentifier = keyid:always\n";

static gchar *
st_root_cnf (const char *dir)
{
  g_autofree gchar *doc_path = g_build_filename (g_getenv ("ST_SOURCE_DIR"), "docs", "ceremony.md", NULL);
  g_autofree gchar *doc = NULL;
  g_assert_true (g_file_get_contents (doc_path, &doc, NULL, NULL));
  const char *start = strstr (doc, "```ini\n[ ca ]\n");
  g_assert_nonnull (start);
  start += strlen ("```ini\n");
  const char *end = strstr (start, "```");
  g_assert_nonnull (end);
  g_autofree gchar *block = g_strndup (start, (gsize) (end - start));
  const char *dir_line = "dir = /srv/root-ca\n";
  gchar *at = strstr (block, dir_line);
  g_assert_nonnull (at);
  *at = '\0';
  g_assert_nonnull (strstr (at + strlen (dir_line), "[ v3_station_issuing_ca ]"));
  g_assert_nonnull (strstr (at + strlen (dir_line), "[ v3_station_signing ]"));
  return g_strdup_printf ("%sdir = %s\n%s%s", block, dir, at + strlen (dir_line), st_test_sections);
}

typedef struct {
  StFixture f;
  gchar *token;
  gchar *csr_dir;
  gchar *root_dir, *other_root_dir;
} StCeremony;

static void
st_write (const char *path, const char *text)
{
  g_autoptr(GError) error = NULL;
  g_assert_true (g_file_set_contents (path, text, -1, &error));
  g_assert_no_error (error);
}

static gchar *
st_read (const char *path)
{
  gchar *text = NULL;
  g_autoptr(GError) error = NULL;
  g_assert_true (g_file_get_contents (path, &text, NULL, &error));
  g_assert_no_error (error);
  return text;
}

/* A root CA in @dir: an EC key on disk, a self-signed certificate. */
static gchar *
st_make_root (const char *dir, const char *cn)
{
  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_autofree gchar *newcerts = g_build_filename (dir, "newcerts", NULL);
  g_assert_cmpint (g_mkdir_with_parents (newcerts, 0700), ==, 0);
  g_autofree gchar *index = g_build_filename (dir, "index.txt", NULL);
  st_write (index, "");
  g_autofree gchar *cnf_text = st_root_cnf (dir);
  g_autofree gchar *cnf = g_build_filename (dir, "openssl.cnf", NULL);
  st_write (cnf, cnf_text);
  g_autofree gchar *key = g_build_filename (dir, "root.key", NULL);
  g_autofree gchar *pem = g_build_filename (dir, "root.pem", NULL);
  g_autofree gchar *subj = g_strdup_printf ("/O=Test Corp/CN=%s", cn);
  g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                                "ec_paramgen_curve:P-256", "-out", key, NULL), ==, 0);
  g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "req", "-config", cnf, "-new", "-x509",
                                "-key", key, "-subj", subj, "-days", "7300", "-extensions", "v3_root",
                                "-out", pem, NULL), ==, 0);
  return g_steal_pointer (&pem);
}

/* `openssl ca` of the root in @root_dir: @csr with the extension section
 * @ext into @out; @start/@end (or NULL) for the validity. */
static void
st_root_sign (const char *root_dir, const char *csr, const char *ext, const char *out,
              const char *start, const char *end)
{
  g_autofree gchar *cnf = g_build_filename (root_dir, "openssl.cnf", NULL);
  const char *argv[] = { "openssl", "ca", "-batch", "-notext", "-config", cnf, "-extensions", ext,
                         "-in", csr, "-out", out,
                         start != NULL ? "-startdate" : NULL, start, "-enddate", end, NULL };
  g_autofree gchar *what = g_strjoinv (" ", (gchar **) argv);
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) proc = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE
                                                   | G_SUBPROCESS_FLAGS_STDERR_MERGE, &error);
  g_assert_no_error (error);
  g_autofree gchar *text = NULL;
  g_assert_true (g_subprocess_communicate_utf8 (proc, NULL, NULL, &text, NULL, &error));
  g_test_message ("$ %s\n%s", what, text);
  g_assert_true (g_subprocess_get_if_exited (proc));
  g_assert_cmpint (g_subprocess_get_exit_status (proc), ==, 0);
}

/* @a then @b into @out (taken and returned). */
static gchar *
st_concat_files (gchar *out, const char *a, const char *b)
{
  g_autofree gchar *ta = st_read (a), *tb = st_read (b);
  g_autofree gchar *all = g_strconcat (ta, tb, NULL);
  st_write (out, all);
  return out;
}

static void
st_ceremony_setup (StCeremony *c, gconstpointer data)
{
  StFixture *f = &c->f;
  f->tmp = st_test_tmpdir ("st-ceremony");
  f->home = g_build_filename (f->tmp, "home", NULL);
  f->sims = g_ptr_array_new_with_free_func (g_object_unref);
  c->token = g_strdup_printf ("line-%u", ++st_token_count);
  g_assert_cmpint (st_run_tool (NULL, NULL, "softhsm2-util", "--init-token", "--free", "--label",
                                c->token, "--so-pin", ST_TOKEN_SO_PIN, "--pin", ST_TEST_PIN, NULL), ==, 0);
  c->csr_dir = g_build_filename (f->tmp, "requests", NULL);
  c->root_dir = g_build_filename (f->tmp, "root", NULL);
  c->other_root_dir = g_build_filename (f->tmp, "other-root", NULL);
  /* the service of a home that is not set up */
  const char *none[] = { NULL };
  st_service_ensure (f, none);
}

static void
st_ceremony_teardown (StCeremony *c, gconstpointer data)
{
  st_fixture_teardown (&c->f, data);
  g_free (c->token);
  g_free (c->csr_dir);
  g_free (c->root_dir);
  g_free (c->other_root_dir);
}

/* `station ca init` as the test's admin-to-be, with the module @module. */
static int
st_ca_init_with (StCeremony *c, const char *module, gchar **out, gchar **err)
{
  const char *env[] = { "STATION_HSM_PIN=" ST_TEST_PIN, "STATION_OPERATOR_PIN=" ST_ADMIN_PIN, NULL };
  const char *args[] = { "--operator", "admin", "ca", "init", "--module", module,
                         "--token", c->token, "--station-id", "line1-station1", "--subject",
                         "O=Test Corp,C=DE", "--admin", "admin", "--out", c->csr_dir, NULL };
  return st_run_stationv (&c->f, env, out, err, args);
}

static int
st_ca_init (StCeremony *c, gchar **out, gchar **err)
{
  return st_ca_init_with (c, ST_SOFTHSM_MODULE, out, err);
}

static int
st_ca_import (StCeremony *c, const char *chain, const char *signing, gchar **err)
{
  const char *env[] = { "STATION_HSM_PIN=" ST_TEST_PIN, "STATION_OPERATOR_PIN=" ST_ADMIN_PIN, NULL };
  const char *args[] = { "--operator", "admin", "ca", "import", "--chain", chain, "--signing-cert",
                         signing, NULL };
  return st_run_stationv (&c->f, env, NULL, err, args);
}

/* A refused import: the message names @needle, and HOME is as it was. */
static void
st_import_refused (StCeremony *c, const char *chain, const char *signing, const char *needle)
{
  g_autofree gchar *conf = g_build_filename (c->f.home, "station.conf", NULL);
  g_autofree gchar *before = st_read (conf);
  g_autofree gchar *err = NULL;
  g_assert_cmpint (st_ca_import (c, chain, signing, &err), !=, 0);
  if (strstr (err, needle) == NULL)
    g_error ("the refusal does not say '%s': %s", needle, err);
  g_assert_nonnull (strstr (err, "nothing was changed"));
  g_autofree gchar *after = st_read (conf);
  g_assert_cmpstr (after, ==, before);
  const char *never[] = { "ca-chain.pem", "root.pem", "ca", NULL };
  for (guint i = 0; never[i] != NULL; i++)
    {
      g_autofree gchar *p = g_build_filename (c->f.home, never[i], NULL);
      g_assert_false (g_file_test (p, G_FILE_TEST_EXISTS));
    }
}

static void
st_add_operator (StCeremony *c, const char *name, const char *role, const char *pin)
{
  g_autofree gchar *pin_env = g_strdup_printf ("STATION_NEW_OPERATOR_PIN=%s", pin);
  g_assert_cmpint (st_run_station_as (&c->f, "admin", ST_ADMIN_PIN, pin_env, NULL, NULL, "operator",
                                      "add", name, "--role", role, NULL), ==, 0);
}

static void
test_whole (StCeremony *c, gconstpointer data)
{
  StFixture *f = &c->f;
  g_autofree gchar *out = NULL, *err = NULL;

  /* ---- a module anyone may change is never loaded (CaInit needs no login on a new home) ---- */
  g_autofree gchar *module_copy = g_build_filename (f->tmp, "writable-module.so", NULL);
  g_autofree gchar *module_bytes = NULL;
  gsize module_len = 0;
  g_assert_true (g_file_get_contents (ST_SOFTHSM_MODULE, &module_bytes, &module_len, NULL));
  g_assert_true (g_file_set_contents (module_copy, module_bytes, (gssize) module_len, NULL));
  g_assert_cmpint (g_chmod (module_copy, 0666), ==, 0);
  g_assert_cmpint (st_ca_init_with (c, module_copy, NULL, &err), ==, ST_RC_AUTH);
  g_assert_nonnull (strstr (err, "only root may change"));
  g_autofree gchar *no_conf = g_build_filename (f->home, "station.conf", NULL);
  g_assert_false (g_file_test (no_conf, G_FILE_TEST_EXISTS));
  g_clear_pointer (&err, g_free);

  /* ---- ca init on a home that is not set up ---- */
  g_assert_cmpint (st_ca_init (c, &out, &err), ==, 0);
  g_autofree gchar *ca_csr = g_build_filename (c->csr_dir, "issuing-ca.csr.pem", NULL);
  g_autofree gchar *sig_csr = g_build_filename (c->csr_dir, "station-signing.csr.pem", NULL);
  g_assert_true (g_file_test (ca_csr, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (sig_csr, G_FILE_TEST_EXISTS));
  /* stock openssl: the requests are signed by their keys, and ask for what docs/ceremony.md says */
  g_autofree gchar *req_text = NULL;
  g_assert_cmpint (st_run_tool (&req_text, NULL, "openssl", "req", "-in", ca_csr, "-verify", "-noout",
                                "-text", NULL), ==, 0);
  g_assert_nonnull (strstr (req_text, "CA:TRUE, pathlen:0"));
  g_assert_nonnull (strstr (req_text, "Certificate Sign, CRL Sign"));
  g_assert_nonnull (strstr (req_text, "CN = Station line1-station1 Issuing CA"));
  g_assert_nonnull (strstr (req_text, "O = Test Corp"));
  g_clear_pointer (&req_text, g_free);
  g_assert_cmpint (st_run_tool (&req_text, NULL, "openssl", "req", "-in", sig_csr, "-verify", "-noout",
                                "-text", NULL), ==, 0);
  g_assert_nonnull (strstr (req_text, "2.25.139898662358177256637798941297150809261"));
  g_assert_nonnull (strstr (req_text, "Digital Signature"));
  /* the printed request hash is the DER's */
  g_autofree gchar *der_path = g_build_filename (f->tmp, "ca-csr.der", NULL);
  g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "req", "-in", ca_csr, "-outform", "DER", "-out",
                                der_path, NULL), ==, 0);
  g_autofree gchar *der = NULL;
  gsize der_len = 0;
  g_assert_true (g_file_get_contents (der_path, &der, &der_len, NULL));
  g_autofree gchar *der_sha = st_sha256_hex ((const guint8 *) der, der_len);
  g_assert_nonnull (strstr (out, der_sha));
  /* the requests are never replaced without --force */
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_ca_init (c, &out, &err), ==, ST_RC_ERROR);
  g_assert_nonnull (strstr (err, "--force"));

  /* ---- waiting for the import ---- */
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_station_as (f, "admin", ST_ADMIN_PIN, NULL, &out, NULL, "ca", "show", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "AWAITING IMPORT"));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_station (f, &out, NULL, "status", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "awaiting 'station ca import'"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station_as (f, "admin", ST_ADMIN_PIN, "STATION_HSM_PIN=" ST_TEST_PIN, NULL,
                                      &err, "unlock", NULL), !=, 0);
  g_assert_nonnull (strstr (err, "the key ceremony is not finished"));
  g_assert_nonnull (strstr (err, "ca import"));

  /* ---- the offline root signs with stock openssl ca ---- */
  g_autofree gchar *root = st_make_root (c->root_dir, "Test Corp Root CA");
  g_autofree gchar *ca_pem = g_build_filename (f->tmp, "issuing-ca.pem", NULL);
  g_autofree gchar *sig_pem = g_build_filename (f->tmp, "station-signing.pem", NULL);
  st_root_sign (c->root_dir, ca_csr, "v3_station_issuing_ca", ca_pem, NULL, NULL);
  st_root_sign (c->root_dir, sig_csr, "v3_station_signing", sig_pem, NULL, NULL);
  g_autofree gchar *chain = st_concat_files (g_build_filename (f->tmp, "chain.pem", NULL), ca_pem, root);

  /* ---- wrong imports: each refused, naming the problem, nothing written ---- */
  /* an issuing certificate for another key (the signing key's request, CA extensions) */
  g_autofree gchar *wrong_ca = g_build_filename (f->tmp, "wrong-ca.pem", NULL);
  st_root_sign (c->root_dir, sig_csr, "v3_station_issuing_ca", wrong_ca, NULL, NULL);
  g_autofree gchar *wrong_chain = st_concat_files (g_build_filename (f->tmp, "wrong-chain.pem", NULL),
                                                   wrong_ca, root);
  st_import_refused (c, wrong_chain, sig_pem, "is for another key");
  /* a signing certificate without the station-signing purpose */
  g_autofree gchar *no_eku = g_build_filename (f->tmp, "no-eku.pem", NULL);
  st_root_sign (c->root_dir, sig_csr, "v3_signing_without_purpose", no_eku, NULL, NULL);
  st_import_refused (c, chain, no_eku, "station-signing extended key usage");
  /* an expired issuing certificate */
  g_autofree gchar *expired = g_build_filename (f->tmp, "expired-ca.pem", NULL);
  st_root_sign (c->root_dir, ca_csr, "v3_station_issuing_ca", expired, "20200101000000Z",
                "20210101000000Z");
  g_autofree gchar *expired_chain = st_concat_files (g_build_filename (f->tmp, "expired-chain.pem", NULL),
                                                     expired, root);
  st_import_refused (c, expired_chain, sig_pem, "has expired");
  /* a root that did not sign the chain */
  g_autofree gchar *other_root = st_make_root (c->other_root_dir, "Someone Else Root CA");
  g_autofree gchar *foreign_chain = st_concat_files (g_build_filename (f->tmp, "foreign-chain.pem", NULL),
                                                     ca_pem, other_root);
  st_import_refused (c, foreign_chain, sig_pem, "is not signed by certificate 1");

  /* ---- the right one ---- */
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_ca_import (c, chain, sig_pem, &err), ==, 0);
  g_autofree gchar *conf = g_build_filename (f->home, "station.conf", NULL);
  g_autofree gchar *conf_text = st_read (conf);
  g_assert_nonnull (strstr (conf_text, "[certificates]"));
  g_assert_nonnull (strstr (conf_text, "signing-key-sha256="));
  g_assert_null (strstr (conf_text, ST_TEST_PIN));
  /* a second import is refused: the station no longer waits for one */
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_ca_import (c, chain, sig_pem, &err), !=, 0);
  g_assert_nonnull (strstr (err, "does not wait for 'ca import'"));

  /* ---- unlock, operators, a batch under the new chain ---- */
  g_assert_cmpint (st_run_station_as (f, "admin", ST_ADMIN_PIN, "STATION_HSM_PIN=" ST_TEST_PIN, NULL,
                                      NULL, "unlock", NULL), ==, 0);
  st_add_operator (c, "lead", "lead", "2222");
  st_add_operator (c, "op", "operator", "1111");
  st_add_operator (c, "qa", "qa", "3333");
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_station_as (f, "admin", ST_ADMIN_PIN, NULL, &out, NULL, "ca", "show", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "complete (certificates imported)"));
  g_assert_nonnull (strstr (out, "not extractable"));
  g_autofree gchar *dir = g_build_filename (f->tmp, "manifest", NULL);
  st_closed_batch (f, dir, "515");

  /* the manifest's signature, with the new root and stock openssl */
  g_autofree gchar *json = g_build_filename (dir, "SHA256SUMS", NULL);
  g_autofree gchar *p7s = g_build_filename (dir, "SHA256SUMS.p7s", NULL);
  g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "cms", "-verify", "-binary", "-inform", "DER",
                                "-in", p7s, "-content", json, "-CAfile", root, "-out", "/dev/null", NULL), ==, 0);
  /* and not with another root */
  g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "cms", "-verify", "-binary", "-inform", "DER",
                                "-in", p7s, "-content", json, "-CAfile", other_root, "-out", "/dev/null",
                                NULL), !=, 0);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_station (f, &out, NULL, "manifest", "verify", dir, NULL), ==, 0);
  /* names print one way, RFC 4514 ("CN=...,O=..."), never OpenSSL's
   * one-line "/O=.../CN=..." */
  const char *by = strstr (out, "signed by ");
  g_assert_nonnull (by);
  g_assert_true (g_str_has_prefix (by + strlen ("signed by "), "CN="));
  g_assert_null (strstr (out, "/CN="));
  g_assert_null (strstr (out, "/O="));

  /* each device certificate, with GnuTLS and OpenSSL against the new chain */
  g_autoptr(JsonParser) parser = st_test_load_manifest (dir);
  JsonArray *units = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)), "units");
  g_autofree gchar *home_chain = g_build_filename (f->home, "ca-chain.pem", NULL);
  g_autofree gchar *chain_text = st_read (home_chain);
  guint checked = 0;
  for (guint i = 0; i < json_array_get_length (units); i++)
    {
      JsonObject *u = json_array_get_object_element (units, i);
      if (g_strcmp0 (json_object_get_string_member (u, "certificate_status"), "active") != 0)
        continue;
      g_autofree gchar *pem_path = g_build_filename (f->tmp, "device.pem", NULL);
      g_autofree gchar *bundle_path = g_build_filename (f->tmp, "device-bundle.pem", NULL);
      const char *pem = json_object_get_string_member (u, "certificate");
      st_write (pem_path, pem);
      g_autofree gchar *bundle = g_strconcat (pem, chain_text, NULL);
      st_write (bundle_path, bundle);
      g_autofree gchar *tool_out = NULL;
      g_assert_cmpint (st_run_tool (&tool_out, NULL, "certtool", "--verify", "--load-ca-certificate", root,
                                    "--infile", bundle_path, NULL), ==, 0);
      g_assert_nonnull (strstr (tool_out, "Chain verification output: Verified"));
      g_clear_pointer (&tool_out, g_free);
      g_assert_cmpint (st_run_tool (&tool_out, NULL, "openssl", "verify", "-x509_strict", "-CAfile", root,
                                    "-untrusted", home_chain, pem_path, NULL), ==, 0);
      checked++;
    }
  g_assert_cmpuint (checked, ==, 2);

  /* the ceremony is in the audit log, by the admin */
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM audit WHERE event = 'ca-init' AND operator = 'admin'"), ==, 1);
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM audit WHERE event = 'ca-import' AND operator = 'admin'"), ==, 1);
  g_autofree gchar *init_payload = st_sql (f, "SELECT payload FROM audit WHERE event = 'ca-init'");
  g_assert_nonnull (strstr (init_payload, der_sha));
}

int
main (int argc, char **argv)
{
  /* one SoftHSM2 configuration for the tests of this process, made before
   * any thread: the service inherits it */
  st_softhsm_dir = st_test_tmpdir ("st-ceremony-softhsm");
  g_autofree gchar *tokens = g_build_filename (st_softhsm_dir, "tokens", NULL);
  g_assert_cmpint (g_mkdir_with_parents (tokens, 0700), ==, 0);
  g_autofree gchar *conf = g_build_filename (st_softhsm_dir, "softhsm2.conf", NULL);
  g_autofree gchar *conf_text = g_strdup_printf ("directories.tokendir = %s\nobjectstore.backend = file\n"
                                                 "log.level = ERROR\n", tokens);
  g_assert_true (g_file_set_contents (conf, conf_text, -1, NULL));
  g_setenv ("SOFTHSM2_CONF", conf, TRUE);
  st_test_init (&argc, &argv);
  g_test_add ("/ceremony/whole", StCeremony, NULL, st_ceremony_setup, test_whole, st_ceremony_teardown);
  int rc = g_test_run ();
  st_rm_rf (st_softhsm_dir);
  g_free (st_softhsm_dir);
  return rc;
}
