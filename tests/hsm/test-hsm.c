/* The HSM layer, the CA material and the demo set-up against real
 * SoftHSM2 tokens (a fresh one per test) and the stock openssl CLI. */
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "st-anchor.h"
#include "st-ca.h"
#include "st-ceremony.h"
#include "st-config.h"
#include "st-error.h"
#include "st-hsm.h"
#include "st-issue.h"
#include "st-ossl.h"
#include "st-setup.h"
#include "st-test-home.h"
#include "st-util.h"

static StHsm *
open_logged_in (StTestHome *h)
{
  g_autoptr(GError) error = NULL;
  st_config_apply_env (h->config);
  StHsm *hsm = st_hsm_open (h->config->hsm_module, h->config->hsm_token, &error);
  g_assert_no_error (error);
  g_assert_true (st_hsm_login (hsm, ST_TEST_PIN, &error));
  g_assert_no_error (error);
  return hsm;
}

static gchar *
read_text (const char *path)
{
  gchar *data = NULL;
  g_autoptr(GError) error = NULL;
  g_file_get_contents (path, &data, NULL, &error);
  g_assert_no_error (error);
  return data;
}

/* Runs @argv; returns the exit status, output in @out. */
static int
run (const char *const *argv, gchar **out)
{
  g_autoptr(GError) error = NULL;
  gchar *sout = NULL, *serr = NULL;
  int status = -1;
  g_spawn_sync (NULL, (gchar **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &sout, &serr, &status, &error);
  g_assert_no_error (error);
  g_autofree gchar *all = g_strconcat (sout, serr, NULL);
  g_free (sout);
  g_free (serr);
  if (out != NULL)
    *out = g_steal_pointer (&all);
  return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

/* ---- hsm ---------------------------------------------------------------------- */

static void
test_login_wrong_pin (void)
{
  g_autoptr(StTestHome) h = st_test_home_new ();
  g_autoptr(GError) error = NULL;
  st_config_apply_env (h->config);
  g_autoptr(StHsm) hsm = st_hsm_open (h->config->hsm_module, h->config->hsm_token, &error);
  g_assert_no_error (error);
  g_assert_false (st_hsm_login (hsm, "000000", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_AUTH_FAILED);
  g_assert_nonnull (strstr (error->message, "CKR_PIN_INCORRECT"));
  g_clear_error (&error);
  /* not logged in: private keys are not visible */
  g_autoptr(EVP_PKEY) none = st_hsm_get_private_key (hsm, h->config->ca_key_uri, &error);
  g_assert_null (none);
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_true (st_hsm_login (hsm, ST_TEST_PIN, &error));
  g_assert_no_error (error);
  g_autoptr(EVP_PKEY) key = st_hsm_get_private_key (hsm, h->config->ca_key_uri, &error);
  g_assert_no_error (error);
  g_assert_nonnull (key);
}

static void
test_open_unknown_token (void)
{
  g_autoptr(StTestHome) h = st_test_home_new ();
  g_autoptr(GError) error = NULL;
  st_config_apply_env (h->config);
  g_autoptr(StHsm) hsm = st_hsm_open (h->config->hsm_module, "no-such-token", &error);
  g_assert_null (hsm);
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "'station-demo'"));
  g_clear_error (&error);
  g_autoptr(StHsm) hsm2 = st_hsm_open ("/nonexistent/module.so", "x", &error);
  g_assert_null (hsm2);
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_FOUND);
}

static void
test_missing_key (void)
{
  g_autoptr(StTestHome) h = st_test_home_new ();
  g_autoptr(StHsm) hsm = open_logged_in (h);
  g_autoptr(GError) error = NULL;
  const char *uri = "pkcs11:token=station-demo;object=no-such-key;type=private";
  g_autoptr(EVP_PKEY) k = st_hsm_get_private_key (hsm, uri, &error);
  g_assert_null (k);
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, uri));
  g_clear_error (&error);
  const char *pub_uri = "pkcs11:object=issuing-ca;id=%7F;type=public";
  g_autoptr(EVP_PKEY) p = st_hsm_get_public_key (hsm, pub_uri, &error);
  g_assert_null (p);
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, pub_uri));
  g_clear_error (&error);
  const char *cert_uri = "pkcs11:object=nothing;type=cert";
  g_autoptr(X509) c = st_hsm_get_certificate (hsm, cert_uri, &error);
  g_assert_null (c);
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, cert_uri));
  g_clear_error (&error);
  /* another token's URI */
  g_autoptr(EVP_PKEY) k2 = st_hsm_get_private_key (hsm, "pkcs11:token=other;object=issuing-ca", &error);
  g_assert_null (k2);
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_FOUND);
}

static void
test_uri (void)
{
  const guint8 id[] = { 0x00, 0xff };
  g_autofree gchar *uri = st_hsm_uri_build ("station-demo", "a b;c", id, sizeof id, "private");
  g_assert_cmpstr (uri, ==, "pkcs11:token=station-demo;object=a%20b%3Bc;id=%00%FF;type=private");
  g_autoptr(GError) error = NULL;
  g_autofree gchar *pub = st_hsm_uri_with_type (uri, "public", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (pub, ==, "pkcs11:token=station-demo;object=a%20b%3Bc;id=%00%FF;type=public");
  g_autofree gchar *lower = st_hsm_uri_with_type ("pkcs11:object=x;id=%0a%0B?pin-value=1", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (lower, ==, "pkcs11:object=x;id=%0A%0B");
  const char *bad[] = { "file:///x", "pkcs11:object=%zz", "pkcs11:object=%4", "pkcs11:type=private",
                        "pkcs11:object", "pkcs11:object=a%00b" };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree gchar *r = st_hsm_uri_with_type (bad[i], "public", &error);
      g_assert_null (r);
      g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
      g_clear_error (&error);
    }
}

static void
test_sign_x509 (void)
{
  g_autoptr(StTestHome) h = st_test_home_new ();
  g_autoptr(StHsm) hsm = open_logged_in (h);
  g_autoptr(GError) error = NULL;
  g_autoptr(EVP_PKEY) ca_key = st_hsm_get_private_key (hsm, h->config->ca_key_uri, &error);
  g_assert_no_error (error);
  g_autofree gchar *pub_uri = st_hsm_uri_with_type (h->config->ca_key_uri, "public", &error);
  g_assert_no_error (error);
  g_autoptr(EVP_PKEY) ca_pub = st_hsm_get_public_key (hsm, pub_uri, &error);
  g_assert_no_error (error);
  g_autofree gchar *sig_pub_uri = st_hsm_uri_with_type (h->config->signing_key_uri, "public", &error);
  g_autoptr(EVP_PKEY) other_pub = st_hsm_get_public_key (hsm, sig_pub_uri, &error);
  g_assert_no_error (error);

  /* a device certificate for a software key, signed in the token */
  g_autoptr(EVP_PKEY) dev = EVP_EC_gen ("P-256");
  g_assert_nonnull (dev);
  g_autoptr(X509) cert = X509_new ();
  X509_set_version (cert, X509_VERSION_3);
  ASN1_INTEGER_set (X509_get_serialNumber (cert), 42);
  X509_NAME *name = X509_get_subject_name (cert);
  X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_ASC, (const unsigned char *) "device", -1, -1, 0);
  g_autoptr(X509) ca_cert = st_ca_load_cert_file (h->config->ca_cert, &error);
  g_assert_no_error (error);
  X509_set_issuer_name (cert, X509_get_subject_name (ca_cert));
  X509_gmtime_adj (X509_getm_notBefore (cert), 0);
  X509_gmtime_adj (X509_getm_notAfter (cert), 3600);
  X509_set_pubkey (cert, dev);
  st_hsm_lock (hsm);
  int n = X509_sign (cert, ca_key, EVP_sha256 ());
  st_hsm_unlock (hsm);
  g_assert_cmpint (n, >, 0);
  g_assert_cmpint (X509_verify (cert, ca_pub), ==, 1);
  g_assert_cmpint (X509_verify (cert, X509_get0_pubkey (ca_cert)), ==, 1);
  /* and not with another key of the token */
  g_assert_cmpint (X509_verify (cert, other_pub), !=, 1);
  ERR_clear_error ();
  /* the public key object and the certificate agree */
  g_assert_cmpint (EVP_PKEY_eq (ca_pub, X509_get0_pubkey (ca_cert)), ==, 1);
}

static void
test_key_flags (void)
{
  g_autoptr(StTestHome) h = st_test_home_new ();
  g_autoptr(StHsm) hsm = open_logged_in (h);
  g_autoptr(GError) error = NULL;
  g_autofree gchar *root_uri = st_hsm_uri_build ("station-demo", "demo-root-ca", NULL, 0, "private");
  const char *uris[] = { h->config->ca_key_uri, h->config->signing_key_uri, root_uri };
  for (gsize i = 0; i < G_N_ELEMENTS (uris); i++)
    {
      gboolean sensitive = FALSE, extractable = TRUE, never = FALSE;
      g_assert_true (st_hsm_get_key_flags (hsm, uris[i], &sensitive, &extractable, &never, &error));
      g_assert_no_error (error);
      g_assert_true (sensitive);
      g_assert_false (extractable);
      g_assert_true (never);
    }
  /* and a stock tool agrees: every private key in the token is
   * sensitive and never extractable for pkcs11-tool too */
  g_autofree gchar *tool = g_find_program_in_path ("pkcs11-tool");
  if (tool == NULL)
    {
      g_test_message ("pkcs11-tool not installed: the cross-check is left out");
      return;
    }
  g_autofree gchar *out = NULL;
  const char *argv[] = { tool, "--module", h->config->hsm_module, "--token-label", "station-demo",
                         "--login", "--pin", ST_TEST_PIN, "--list-objects", "--type", "privkey", NULL };
  g_assert_cmpint (run (argv, &out), ==, 0);
  g_auto(GStrv) lines = g_strsplit (out, "\n", -1);
  guint keys = 0, protected_keys = 0;
  for (gsize i = 0; lines[i] != NULL; i++)
    {
      if (g_str_has_prefix (lines[i], "Private Key Object"))
        keys++;
      if (strstr (lines[i], "Access:") != NULL && strstr (lines[i], "sensitive") != NULL &&
          strstr (lines[i], "never extractable") != NULL)
        protected_keys++;
    }
  g_assert_cmpuint (keys, ==, 3);
  g_assert_cmpuint (protected_keys, ==, 3);
}

static void
test_random (void)
{
  g_autoptr(StTestHome) h = st_test_home_new ();
  g_autoptr(StHsm) hsm = open_logged_in (h);
  g_autoptr(GError) error = NULL;
  guint8 a[32] = { 0 }, b[32] = { 0 }, zero[32] = { 0 };
  g_assert_true (st_hsm_random (hsm, a, sizeof a, &error));
  g_assert_true (st_hsm_random (hsm, b, sizeof b, &error));
  g_assert_no_error (error);
  g_assert_true (memcmp (a, b, sizeof a) != 0);
  g_assert_true (memcmp (a, zero, sizeof a) != 0);
  /* more than one C_GenerateRandom chunk */
  g_autofree guint8 *big = g_malloc0 (10000);
  g_assert_true (st_hsm_random (hsm, big, 10000, &error));
  g_assert_true (memcmp (big + 9000, zero, sizeof zero) != 0);
}

/* Private data objects: replaced, read back, invisible without a login;
 * and the anchor text they hold for the audit log (st-anchor.c). */
static void
test_data_objects (void)
{
  g_autoptr(StTestHome) h = st_test_home_new ();
  g_autoptr(StHsm) hsm = open_logged_in (h);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) none = st_hsm_data_read (hsm, "st-test-data", 64, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (none->len, ==, 0);
  for (int i = 0; i < 3; i++)
    {
      g_autofree gchar *text = g_strdup_printf ("value %d", i);
      g_autoptr(GBytes) v = g_bytes_new (text, strlen (text));
      g_assert_true (st_hsm_data_replace (hsm, "st-test-data", v, &error));
      g_assert_no_error (error);
      g_autoptr(GPtrArray) got = st_hsm_data_read (hsm, "st-test-data", 64, &error);
      g_assert_no_error (error);
      /* one object: the older ones were destroyed */
      g_assert_cmpuint (got->len, ==, 1);
      g_assert_true (g_bytes_equal (g_ptr_array_index (got, 0), v));
    }
  /* longer than the reader allows: refused, not truncated */
  g_autoptr(GPtrArray) small = st_hsm_data_read (hsm, "st-test-data", 4, &error);
  g_assert_null (small);
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  /* a handle that has not logged in may not write (the objects are private) */
  g_autoptr(StHsm) outsider = st_hsm_open (h->config->hsm_module, h->config->hsm_token, &error);
  g_assert_no_error (error);
  g_autoptr(GBytes) v = g_bytes_new ("x", 1);
  g_assert_false (st_hsm_data_replace (outsider, "st-test-data", v, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_AUTH_FAILED);
  g_clear_error (&error);

  /* the anchor's text */
  g_autofree gchar *text = st_anchor_format ("line-1", 42, "00112233445566778899aabbccddeeff"
                                                          "00112233445566778899aabbccddeeff");
  g_autofree gchar *id = NULL, *hash = NULL;
  gint64 seq = 0;
  g_assert_true (st_anchor_parse ((const guint8 *) text, strlen (text), &id, &seq, &hash));
  g_assert_cmpstr (id, ==, "line-1");
  g_assert_cmpint (seq, ==, 42);
  g_assert_cmpuint (strlen (hash), ==, 64);
  const char *bad[] = {
    "station-audit-anchor/1\nstation=a\nseq=0\nhash=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
    "station-audit-anchor/1\nstation=a\nseq=-1\nhash=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
    "station-audit-anchor/1\nstation=a\nseq=1\nhash=0011\n",
    "station-audit-anchor/1\nstation=a\nseq=1\nhash=00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff\n",
    "station-audit-anchor/2\nstation=a\nseq=1\nhash=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
    "station-audit-anchor/1\nstation=a\nseq=1\nhash=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
    "station-audit-anchor/1\nstation=a\nseq=1\nhash=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\nmore\n",
    "",
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree gchar *bid = NULL, *bhash = NULL;
      gint64 bseq = 0;
      g_assert_false (st_anchor_parse ((const guint8 *) bad[i], strlen (bad[i]), &bid, &bseq, &bhash));
      g_assert_null (bid);
    }
}

static void
test_generate_p384 (void)
{
  g_autoptr(StTestHome) h = st_test_home_new ();
  g_autoptr(StHsm) hsm = open_logged_in (h);
  g_autoptr(GError) error = NULL;
  const guint8 id[] = { 0xca, 0xfe };
  g_autofree gchar *uri = st_hsm_generate_key (hsm, "p384-test", id, sizeof id, ST_ALG_EC_P384, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (uri, ==, "pkcs11:token=station-demo;object=p384-test;id=%CA%FE;type=private");
  g_autoptr(EVP_PKEY) key = st_hsm_get_private_key (hsm, uri, &error);
  g_assert_no_error (error);
  g_autofree gchar *pub_uri = st_hsm_uri_with_type (uri, "public", &error);
  g_autoptr(EVP_PKEY) pub = st_hsm_get_public_key (hsm, pub_uri, &error);
  g_assert_no_error (error);
  g_assert_cmpint (EVP_PKEY_get_bits (pub), ==, 384);
  const guint8 msg[] = "manifest";
  guint8 sig[256];
  size_t siglen = sizeof sig;
  g_autoptr(EVP_MD_CTX) sctx = EVP_MD_CTX_new ();
  st_hsm_lock (hsm);
  g_assert_cmpint (EVP_DigestSignInit (sctx, NULL, EVP_sha384 (), NULL, key), ==, 1);
  g_assert_cmpint (EVP_DigestSign (sctx, sig, &siglen, msg, sizeof msg), ==, 1);
  st_hsm_unlock (hsm);
  g_autoptr(EVP_MD_CTX) vctx = EVP_MD_CTX_new ();
  g_assert_cmpint (EVP_DigestVerifyInit (vctx, NULL, EVP_sha384 (), NULL, pub), ==, 1);
  g_assert_cmpint (EVP_DigestVerify (vctx, sig, siglen, msg, sizeof msg), ==, 1);
  gboolean sensitive = FALSE, extractable = TRUE;
  g_assert_true (st_hsm_get_key_flags (hsm, uri, &sensitive, &extractable, NULL, &error));
  g_assert_true (sensitive && !extractable);
  /* the same label again is refused, and so is an unsupported algorithm */
  g_autofree gchar *again = st_hsm_generate_key (hsm, "p384-test", (const guint8 *) "\x09", 1, ST_ALG_EC_P384, &error);
  g_assert_null (again);
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_autofree gchar *ed = st_hsm_generate_key (hsm, "ed", (const guint8 *) "\x0a", 1, ST_ALG_ED25519, &error);
  g_assert_null (ed);
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED);
}

/* A second handle on the same token comes and goes without disturbing
 * the first. */
static void
test_two_handles (void)
{
  g_autoptr(StTestHome) h = st_test_home_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(StCa) ca = st_ca_open (h->config, ST_TEST_PIN, &error);
  g_assert_no_error (error);
  guint gen = st_hsm_get_login_generation (ca->hsm);
  /* the token is logged in already: a wrong PIN is still refused */
  {
    g_autoptr(StHsm) other = st_hsm_open (h->config->hsm_module, h->config->hsm_token, &error);
    g_assert_no_error (error);
    g_assert_false (st_hsm_login (other, "000000", &error));
    g_assert_error (error, ST_ERROR, ST_ERROR_AUTH_FAILED);
    g_assert_nonnull (strstr (error->message, "CKR_PIN_INCORRECT"));
    g_clear_error (&error);
    g_autoptr(StCa) ca2 = st_ca_open (h->config, "000000", &error);
    g_assert_null (ca2);
    g_assert_error (error, ST_ERROR, ST_ERROR_AUTH_FAILED);
    g_clear_error (&error);
  }
  for (int i = 0; i < 2; i++)
    {
      StHsm *other = open_logged_in (h);
      g_autoptr(EVP_PKEY) k = st_hsm_get_private_key (other, h->config->ca_key_uri, &error);
      g_assert_no_error (error);
      g_assert_true (st_ca_check_key_matches (other, k, ca->ca_cert, "issuing CA", &error));
      g_assert_no_error (error);
      g_clear_pointer (&k, EVP_PKEY_free);
      st_hsm_free (other);
      g_assert_true (st_ca_check_key_matches (ca->hsm, ca->ca_key, ca->ca_cert, "issuing CA", &error));
      g_assert_no_error (error);
    }
  g_assert_cmpuint (st_hsm_get_login_generation (ca->hsm), ==, gen);
  /* no demo set-up while the module is loaded with this HOME's token */
  g_autofree gchar *tmp = st_test_tmpdir ("station-test");
  g_assert_false (st_setup_demo (tmp, ST_TEST_PIN, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_BUSY);
  st_test_rm_rf (tmp);
}

/* A token reset closes every session (logged out, object handles gone):
 * the StHsm logs in again by itself and st_ca_ensure_keys() takes the
 * keys anew. */
static void
test_relogin (void)
{
  g_autoptr(StTestHome) h = st_test_home_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(StCa) ca = st_ca_open (h->config, ST_TEST_PIN, &error);
  g_assert_no_error (error);
  guint gen = st_hsm_get_login_generation (ca->hsm);
  g_assert_true (st_ca_ensure_keys (ca, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (st_hsm_get_login_generation (ca->hsm), ==, gen);

  st_hsm_close_all_sessions (ca->hsm);
  /* the old key handle is dead */
  g_assert_false (st_ca_check_key_matches (ca->hsm, ca->ca_key, ca->ca_cert, "issuing CA", &error));
  g_assert_nonnull (error);
  g_clear_error (&error);

  g_assert_true (st_ca_ensure_keys (ca, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (st_hsm_get_login_generation (ca->hsm), ==, gen + 1);
  g_assert_true (st_ca_check_key_matches (ca->hsm, ca->ca_key, ca->ca_cert, "issuing CA", &error));
  g_assert_no_error (error);
  g_assert_true (st_ca_check_key_matches (ca->hsm, ca->signing_key, ca->signing_cert, "signing", &error));
  g_assert_no_error (error);
  guint8 r[8];
  g_assert_true (st_hsm_random (ca->hsm, r, sizeof r, &error));
  g_assert_no_error (error);
}

/* Worker threads signing with the one CA key, serialised by st_hsm_lock. */
typedef struct {
  StCa *ca;
  gint failures;
} ThreadsCtx;

static gpointer
sign_worker (gpointer data)
{
  ThreadsCtx *t = data;
  for (int i = 0; i < 20; i++)
    {
      g_autoptr(GError) error = NULL;
      if (!st_ca_check_key_matches (t->ca->hsm, t->ca->ca_key, t->ca->ca_cert, "issuing CA", &error))
        g_atomic_int_inc (&t->failures);
      guint8 r[16];
      if (!st_hsm_random (t->ca->hsm, r, sizeof r, &error))
        g_atomic_int_inc (&t->failures);
    }
  return NULL;
}

static void
test_threads (void)
{
  g_autoptr(StTestHome) h = st_test_home_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(StCa) ca = st_ca_open (h->config, ST_TEST_PIN, &error);
  g_assert_no_error (error);
  ThreadsCtx t = { ca, 0 };
  GThread *threads[4];
  for (gsize i = 0; i < G_N_ELEMENTS (threads); i++)
    threads[i] = g_thread_new ("signer", sign_worker, &t);
  for (gsize i = 0; i < G_N_ELEMENTS (threads); i++)
    g_thread_join (threads[i]);
  g_assert_cmpint (t.failures, ==, 0);
}

/* ---- PIN prompt on a real pseudo-terminal ---------------------------------------------- */

static void
test_read_pin_env (void)
{
  g_autoptr(GError) error = NULL;
  g_setenv ("STATION_HSM_PIN", "4242", TRUE);
  gchar *pin = st_hsm_read_pin ("PIN: ", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (pin, ==, "4242");
  st_hsm_pin_free (pin);
  g_unsetenv ("STATION_HSM_PIN");
}

static void
test_read_pin_tty (void)
{
  g_unsetenv ("STATION_HSM_PIN");
  int master = posix_openpt (O_RDWR | O_NOCTTY);
  g_assert_cmpint (master, >=, 0);
  g_assert_cmpint (grantpt (master), ==, 0);
  g_assert_cmpint (unlockpt (master), ==, 0);
  g_autofree gchar *slave_name = g_strdup (ptsname (master));
  int pipefd[2];
  g_assert_cmpint (pipe (pipefd), ==, 0);
  pid_t pid = fork ();
  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    {
      /* a new session whose controlling terminal is the pty */
      close (master);
      close (pipefd[0]);
      setsid ();
      int s = open (slave_name, O_RDWR);
      if (s < 0)
        _exit (3);
      GError *e = NULL;
      gchar *pin = st_hsm_read_pin ("Test PIN: ", &e);
      const char *r = pin != NULL ? pin : e->message;
      if (write (pipefd[1], r, strlen (r)) < 0)
        _exit (4);
      _exit (pin != NULL ? 0 : 1);
    }
  close (pipefd[1]);
  /* the prompt, then the PIN typed: it must not come back (no echo) */
  GString *screen = g_string_new (NULL);
  char buf[256];
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  while (strstr (screen->str, "Test PIN: ") == NULL && g_get_monotonic_time () < deadline)
    {
      ssize_t n = read (master, buf, sizeof buf);
      if (n > 0)
        g_string_append_len (screen, buf, n);
    }
  g_assert_nonnull (strstr (screen->str, "Test PIN: "));
  /* the prompt comes before echo is turned off: wait for that */
  struct termios tio;
  int s = open (slave_name, O_RDWR | O_NOCTTY);
  g_assert_cmpint (s, >=, 0);
  do
    {
      g_assert_cmpint (tcgetattr (s, &tio), ==, 0);
      if (tio.c_lflag & ECHO)
        g_usleep (10000);
    }
  while ((tio.c_lflag & ECHO) && g_get_monotonic_time () < deadline);
  close (s);
  g_assert_cmpint (write (master, "s3cret-pin\n", 11), ==, 11);
  char result[128] = { 0 };
  ssize_t n = read (pipefd[0], result, sizeof result - 1);
  g_assert_cmpint (n, >, 0);
  int status = 0;
  waitpid (pid, &status, 0);
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 0);
  g_assert_cmpstr (result, ==, "s3cret-pin");
  /* what the terminal showed after the prompt: no PIN */
  int flags = fcntl (master, F_GETFL);
  fcntl (master, F_SETFL, flags | O_NONBLOCK);
  ssize_t m;
  while ((m = read (master, buf, sizeof buf)) > 0)
    g_string_append_len (screen, buf, m);
  g_assert_null (strstr (screen->str, "s3cret"));
  g_string_free (screen, TRUE);
  close (pipefd[0]);
  close (master);
}

static void
test_read_pin_no_tty (void)
{
  g_unsetenv ("STATION_HSM_PIN");
  int pipefd[2];
  g_assert_cmpint (pipe (pipefd), ==, 0);
  pid_t pid = fork ();
  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    {
      close (pipefd[0]);
      setsid (); /* no controlling terminal */
      GError *e = NULL;
      gchar *pin = st_hsm_read_pin (NULL, &e);
      if (pin != NULL)
        _exit (2);
      if (write (pipefd[1], e->message, strlen (e->message)) < 0)
        _exit (4);
      _exit (e->code == ST_ERROR_NOT_FOUND ? 0 : 1);
    }
  close (pipefd[1]);
  char msg[256] = { 0 };
  g_assert_cmpint (read (pipefd[0], msg, sizeof msg - 1), >, 0);
  close (pipefd[0]);
  int status = 0;
  waitpid (pid, &status, 0);
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 0);
  g_assert_cmpstr (msg, ==, "no PIN: set STATION_HSM_PIN or run from a terminal");
}

/* ---- the demo set-up ----------------------------------------------------------------- */

static const char *const demo_files[] = {
  "station.conf", "ca-chain.pem", "demo-root.pem", "ca/demo-root-ca.pem", "ca/issuing-ca.pem",
  "ca/station-signing.pem", "softhsm2.conf", NULL,
};

static void
test_setup_idempotent (void)
{
  g_autoptr(StTestHome) h = st_test_home_new ();
  g_autoptr(GPtrArray) before = g_ptr_array_new_with_free_func (g_free);
  for (gsize i = 0; demo_files[i] != NULL; i++)
    {
      g_autofree gchar *p = g_build_filename (h->home, demo_files[i], NULL);
      g_ptr_array_add (before, read_text (p));
    }
  GStatBuf st;
  g_assert_cmpint (g_stat (h->home, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0700);

  g_autoptr(GError) error = NULL;
  g_assert_true (st_setup_demo (h->home, ST_TEST_PIN, &error));
  g_assert_no_error (error);
  for (gsize i = 0; demo_files[i] != NULL; i++)
    {
      g_autofree gchar *p = g_build_filename (h->home, demo_files[i], NULL);
      g_autofree gchar *now = read_text (p);
      g_assert_cmpstr (now, ==, g_ptr_array_index (before, i));
    }
  /* a wrong PIN on a complete demo: AUTH_FAILED, and still nothing changed */
  g_assert_false (st_setup_demo (h->home, "999999", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_AUTH_FAILED);
  g_clear_error (&error);
  g_autofree gchar *conf = g_build_filename (h->home, "station.conf", NULL);
  g_autofree gchar *conf_now = read_text (conf);
  g_assert_cmpstr (conf_now, ==, g_ptr_array_index (before, 0));
  /* no PIN in any file of HOME */
  for (gsize i = 0; demo_files[i] != NULL; i++)
    g_assert_null (strstr (g_ptr_array_index (before, i), ST_TEST_PIN));
}

static void
test_setup_refuses (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *tmp = st_test_tmpdir ("station-test");
  /* unrelated files */
  g_autofree gchar *notes = g_build_filename (tmp, "notes.txt", NULL);
  g_assert_true (g_file_set_contents (notes, "mine", -1, NULL));
  g_assert_false (st_setup_demo (tmp, ST_TEST_PIN, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED);
  g_assert_nonnull (strstr (error->message, "notes.txt"));
  g_clear_error (&error);
  g_autofree gchar *kept = read_text (notes);
  g_assert_cmpstr (kept, ==, "mine");
  g_unlink (notes);

  /* a station that is not a demo */
  g_autoptr(StConfig) c = st_config_new (tmp);
  c->station_id = g_strdup ("real-station");
  c->demo = FALSE;
  c->hsm_token = g_strdup ("production");
  c->ca_key_uri = g_strdup ("pkcs11:object=ca;type=private");
  c->signing_key_uri = g_strdup ("pkcs11:object=sign;type=private");
  c->ca_cert = g_strdup ("ca.pem");
  c->signing_cert = g_strdup ("sign.pem");
  c->chain_file = g_strdup ("chain.pem");
  c->root_file = g_strdup ("root.pem");
  g_assert_true (st_config_save (c, &error));
  g_assert_no_error (error);
  g_autofree gchar *conf_before = read_text (c->path);
  g_assert_false (st_setup_demo (tmp, ST_TEST_PIN, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED);
  g_assert_nonnull (strstr (error->message, "not a demo"));
  g_clear_error (&error);
  g_autofree gchar *conf_after = read_text (c->path);
  g_assert_cmpstr (conf_after, ==, conf_before);
  /* and the config round-trips, relative paths taken from HOME */
  g_autoptr(StConfig) back = st_config_load (tmp, &error);
  g_assert_no_error (error);
  g_assert_false (back->demo);
  g_assert_null (back->softhsm2_conf);
  g_autofree gchar *expect_ca = g_build_filename (tmp, "ca.pem", NULL);
  g_assert_cmpstr (back->ca_cert, ==, expect_ca);
  g_assert_cmpuint (back->idle_logout_s, ==, 300);
  st_test_rm_rf (tmp);

  /* no station.conf at all */
  g_autoptr(StConfig) none = st_config_load ("/nonexistent-station-home", &error);
  g_assert_null (none);
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "station setup demo"));
}

/* A set-up that stopped half-way (no station.conf, the marker present)
 * is removed and made again. */
static void
test_setup_half_made (void)
{
  g_autoptr(StTestHome) h = st_test_home_new ();
  g_autoptr(GError) error = NULL;
  g_autofree gchar *conf = g_build_filename (h->home, "station.conf", NULL);
  g_autofree gchar *marker = g_build_filename (h->home, ".setup-demo-incomplete", NULL);
  g_autofree gchar *root_pem = g_build_filename (h->home, "demo-root.pem", NULL);
  g_autofree gchar *old_root = read_text (root_pem);
  g_assert_cmpint (g_unlink (conf), ==, 0);
  g_assert_true (g_file_set_contents (marker, "", 0, NULL));
  g_assert_true (st_setup_demo (h->home, ST_TEST_PIN, &error));
  g_assert_no_error (error);
  g_assert_false (g_file_test (marker, G_FILE_TEST_EXISTS));
  g_autofree gchar *new_root = read_text (root_pem);
  g_assert_cmpstr (new_root, !=, old_root);
  g_autoptr(StConfig) config = st_config_load (h->home, &error);
  g_assert_no_error (error);
  g_autoptr(StCa) ca = st_ca_open (config, ST_TEST_PIN, &error);
  g_assert_no_error (error);
  g_assert_nonnull (ca);
  /* exactly one demo token in the token folder */
  g_autofree gchar *tokens = g_build_filename (h->home, "tokens", NULL);
  g_autoptr(GDir) dir = g_dir_open (tokens, 0, &error);
  g_assert_no_error (error);
  guint n = 0;
  while (g_dir_read_name (dir) != NULL)
    n++;
  g_assert_cmpuint (n, ==, 1);
}

static void
test_setup_openssl_verify (void)
{
  g_autoptr(StTestHome) h = st_test_home_new ();
  g_autofree gchar *root = g_build_filename (h->home, "demo-root.pem", NULL);
  g_autofree gchar *chain = g_build_filename (h->home, "ca-chain.pem", NULL);
  g_autofree gchar *out = NULL;
  const char *argv[] = { "openssl", "verify", "-x509_strict", "-CAfile", root, "-untrusted", chain,
                         h->config->signing_cert, h->config->ca_cert, NULL };
  int rc = run (argv, &out);
  g_assert_cmpint (rc, ==, 0);
  g_assert_nonnull (strstr (out, "station-signing.pem: OK"));
  g_assert_nonnull (strstr (out, "issuing-ca.pem: OK"));
  g_clear_pointer (&out, g_free);
  /* without the intermediate it must fail */
  const char *argv2[] = { "openssl", "verify", "-CAfile", root, h->config->signing_cert, NULL };
  g_assert_cmpint (run (argv2, &out), !=, 0);

  /* a detached CMS signature made in the token verifies with stock
   * openssl cms -verify (its default S/MIME signing purpose) */
  g_autoptr(GError) error = NULL;
  g_autoptr(StCa) ca = st_ca_open (h->config, ST_TEST_PIN, &error);
  g_assert_no_error (error);
  const char content[] = "batch manifest\n";
  g_autoptr(BIO) in = BIO_new_mem_buf (content, sizeof content - 1);
  st_hsm_lock (ca->hsm);
  g_autoptr(CMS_ContentInfo) cms = CMS_sign (ca->signing_cert, ca->signing_key, ca->chain, in,
                                             CMS_DETACHED | CMS_BINARY);
  st_hsm_unlock (ca->hsm);
  g_assert_nonnull (cms);
  g_autoptr(BIO) pem = BIO_new (BIO_s_mem ());
  g_assert_cmpint (i2d_CMS_bio (pem, cms), ==, 1);
  char *p = NULL;
  long len = BIO_get_mem_data (pem, &p);
  g_autofree gchar *sig_path = g_build_filename (h->tmpdir, "manifest.p7s", NULL);
  g_autofree gchar *data_path = g_build_filename (h->tmpdir, "manifest.txt", NULL);
  g_assert_true (g_file_set_contents (sig_path, p, len, NULL));
  g_assert_true (g_file_set_contents (data_path, content, -1, NULL));
  g_clear_pointer (&out, g_free);
  const char *argv3[] = { "openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", sig_path,
                          "-content", data_path, "-CAfile", root, "-out", "/dev/null", NULL };
  rc = run (argv3, &out);
  g_assert_cmpint (rc, ==, 0);
  g_assert_nonnull (strstr (out, "Verification successful"));
  /* a changed manifest does not */
  g_assert_true (g_file_set_contents (data_path, "batch manifest!\n", -1, NULL));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (run (argv3, &out), !=, 0);
}

static void
test_ca_open_checks (void)
{
  g_autoptr(StTestHome) h = st_test_home_new ();
  g_autoptr(GError) error = NULL;
  {
    g_autoptr(StCa) ca = st_ca_open (h->config, ST_TEST_PIN, &error);
    g_assert_no_error (error);
    g_assert_cmpint (sk_X509_num (ca->chain), ==, 2);
    g_assert_cmpint (X509_cmp (sk_X509_value (ca->chain, 1), ca->root), ==, 0);
    g_assert_cmpint (X509_check_issued (ca->ca_cert, ca->signing_cert), ==, X509_V_OK);
  }
  /* a key that does not belong to the certificate */
  gchar *saved = h->config->ca_key_uri;
  h->config->ca_key_uri = g_strdup (h->config->signing_key_uri);
  {
    g_autoptr(StCa) ca = st_ca_open (h->config, ST_TEST_PIN, &error);
    g_assert_null (ca);
    g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
    g_clear_error (&error);
  }
  g_free (h->config->ca_key_uri);
  h->config->ca_key_uri = saved;
  /* the chain in the wrong order */
  g_autofree gchar *chain_text = read_text (h->config->chain_file);
  g_autofree gchar *root_text = read_text (h->config->root_file);
  g_autofree gchar *ca_text = read_text (h->config->ca_cert);
  g_autofree gchar *reversed = g_strconcat (root_text, ca_text, NULL);
  g_assert_true (g_file_set_contents (h->config->chain_file, reversed, -1, NULL));
  {
    g_autoptr(StCa) ca = st_ca_open (h->config, ST_TEST_PIN, &error);
    g_assert_null (ca);
    g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
    g_clear_error (&error);
  }
  /* the issuing CA without its root */
  g_assert_true (g_file_set_contents (h->config->chain_file, ca_text, -1, NULL));
  {
    g_autoptr(StCa) ca = st_ca_open (h->config, ST_TEST_PIN, &error);
    g_assert_null (ca);
    g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
    g_clear_error (&error);
  }
  g_assert_true (g_file_set_contents (h->config->chain_file, chain_text, -1, NULL));
  /* a wrong PIN */
  {
    g_autoptr(StCa) ca = st_ca_open (h->config, "111111", &error);
    g_assert_null (ca);
    g_assert_error (error, ST_ERROR, ST_ERROR_AUTH_FAILED);
    g_assert_nonnull (strstr (error->message, "CKR_PIN_INCORRECT"));
    g_clear_error (&error);
  }
  /* the signer pin: another pin, no pin, a signer without the purpose */
  gchar *pin = h->config->signing_key_sha256;
  g_assert_nonnull (pin);
  g_assert_cmpuint (strlen (pin), ==, 64);
  h->config->signing_key_sha256 = g_strdup (pin);
  h->config->signing_key_sha256[0] = pin[0] == '0' ? '1' : '0';
  {
    g_autoptr(StCa) ca = st_ca_open (h->config, ST_TEST_PIN, &error);
    g_assert_null (ca);
    g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
    g_assert_nonnull (strstr (error->message, "not the pinned station signing key"));
    g_clear_error (&error);
  }
  g_clear_pointer (&h->config->signing_key_sha256, g_free);
  {
    g_autoptr(StCa) ca = st_ca_open (h->config, ST_TEST_PIN, &error);
    g_assert_null (ca);
    g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
    g_assert_nonnull (strstr (error->message, "signing-key-sha256"));
    g_clear_error (&error);
  }
  h->config->signing_key_sha256 = pin;
  {
    g_autoptr(StCa) ca = st_ca_open (h->config, ST_TEST_PIN, &error);
    g_assert_no_error (error);
    g_assert_true (st_ca_check_station_signer (ca->signing_cert, pin, &error));
    g_assert_no_error (error);
    /* upper-case hex is the same pin */
    g_autofree gchar *upper = g_ascii_strup (pin, -1);
    g_assert_true (st_ca_check_station_signer (ca->signing_cert, upper, &error));
    g_assert_no_error (error);
    /* a certificate of the same root without the station-signing purpose,
     * even pinned by its own key, is no station signer */
    g_autofree gchar *ca_pin = st_x509_pubkey_sha256_hex (ca->ca_cert, &error);
    g_assert_false (st_ca_check_station_signer (ca->ca_cert, ca_pin, &error));
    g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
    g_assert_nonnull (strstr (error->message, ST_OID_STATION_SIGNING));
    g_clear_error (&error);
  }
  /* the certificate from the token instead of a file */
  g_free (h->config->ca_cert);
  h->config->ca_cert = st_hsm_uri_build ("station-demo", "issuing-ca", NULL, 0, "cert");
  g_autoptr(StCa) ca = st_ca_open (h->config, ST_TEST_PIN, &error);
  g_assert_no_error (error);
  g_assert_nonnull (ca);
}

static int
days_left (const char *pem_path)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(X509) cert = st_ca_load_cert_file (pem_path, &error);
  g_assert_no_error (error);
  int days = 0, secs = 0;
  g_assert_true (ASN1_TIME_diff (&days, &secs, NULL, X509_get0_notAfter (cert)));
  return days;
}

static void
test_setup_show (void)
{
  g_autoptr(StTestHome) h = st_test_home_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) out = g_string_new (NULL);
  g_autoptr(StCa) ca = st_ca_open (h->config, ST_TEST_PIN, &error);
  g_assert_no_error (error);
  g_assert_true (st_setup_show (h->config, ca, out, &error));
  g_assert_no_error (error);
  if (g_test_verbose ())
    g_printerr ("%s", out->str);
  g_assert_nonnull (strstr (out->str, "CN=Station Demo Root CA"));
  g_assert_nonnull (strstr (out->str, "CN=Station Demo Issuing CA"));
  g_autofree gchar *signing_cn = g_strdup_printf ("CN=Station Demo Signing %s", h->config->station_id);
  g_assert_nonnull (strstr (out->str, signing_cn));
  g_autofree gchar *root_days = g_strdup_printf ("(%d days left)", days_left (h->config->root_file));
  g_autofree gchar *ca_days = g_strdup_printf ("(%d days left)", days_left (h->config->ca_cert));
  g_assert_nonnull (strstr (out->str, root_days));
  g_assert_nonnull (strstr (out->str, ca_days));
  g_assert_nonnull (strstr (out->str, "sensitive, not extractable"));
  g_assert_nonnull (strstr (out->str, h->config->ca_key_uri));
  g_assert_nonnull (strstr (out->str, h->config->db_path));
  g_assert_null (strstr (out->str, ST_TEST_PIN));

  /* locked (no CA open): what the files say */
  g_string_truncate (out, 0);
  g_assert_true (st_setup_show (h->config, NULL, out, &error));
  g_assert_no_error (error);
  g_assert_nonnull (strstr (out->str, "CN=Station Demo Issuing CA"));
  g_assert_nonnull (strstr (out->str, root_days));
  g_assert_null (strstr (out->str, "sensitive"));
  g_assert_nonnull (strstr (out->str, "locked: an admin unlocks it"));
}

/* Break-glass recovery's proof (station/st-recover.h): the SO PIN of a
 * token made here with a known one. Right, wrong, and why the service checks
 * it in a process of its own: one logged in as the token's user cannot log
 * the SO in. */
static void
test_so_pin (void)
{
  g_autoptr(StTestHome) h = st_test_home_new ();
  g_autoptr(GError) error = NULL;
  st_config_apply_env (h->config);
  const char *module = h->config->hsm_module;
  g_assert_true (st_hsm_init_token (module, "so-test", "so-pin-2468", "135790", &error));
  g_assert_no_error (error);
  g_assert_true (st_hsm_check_so_pin (module, "so-test", "so-pin-2468", &error));
  g_assert_no_error (error);
  g_assert_false (st_hsm_check_so_pin (module, "so-test", "so-pin-2469", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_AUTH_FAILED);
  g_assert_nonnull (strstr (error->message, "CKR_PIN_INCORRECT"));
  g_clear_error (&error);
  g_assert_false (st_hsm_check_so_pin (module, "no-such-token", "so-pin-2468", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_FOUND);
  g_clear_error (&error);
  /* the right one again: a wrong one locked nothing */
  g_assert_true (st_hsm_check_so_pin (module, "so-test", "so-pin-2468", &error));
  g_assert_no_error (error);

  g_autoptr(StHsm) hsm = st_hsm_open (module, "so-test", &error);
  g_assert_no_error (error);
  g_assert_true (st_hsm_login (hsm, "135790", &error));
  g_assert_no_error (error);
  g_assert_false (st_hsm_check_so_pin (module, "so-test", "so-pin-2468", &error));
  g_assert_nonnull (error);
  g_test_message ("logged in as the user: %s", error->message);
  g_assert_nonnull (strstr (error->message, "CKR_USER_ANOTHER_ALREADY_LOGGED_IN"));
}

/* The key ceremony's first half on a token that already holds objects
 * labelled issuing-ca and station-signing (the demo's): P-384 keys under
 * the next free labels, fresh ids, sensitive and not extractable, and two
 * requests signed in the token with SHA-384 asking for what
 * docs/ceremony.md says; the configuration awaits its import. */
static void
test_ceremony_p384_labels_taken (void)
{
  g_autoptr(StTestHome) h = st_test_home_new ();
  g_autoptr(GError) error = NULL;
  StCeremonyInit req = { .module = st_test_softhsm_module (), .token = ST_SETUP_DEMO_TOKEN,
                         .station_id = "line9", .subject = "O=Example GmbH, C=DE",
                         .alg = ST_ALG_EC_P384, .pin = ST_TEST_PIN, .admin = "alice" };
  g_auto(StCeremonyKeys) keys = { 0 };
  g_autofree gchar *other_home = g_build_filename (h->tmpdir, "other-home", NULL);
  g_autoptr(StConfig) c = st_ceremony_init (other_home, &req, &keys, &error);
  g_assert_no_error (error);
  g_assert_true (c->awaiting_import);
  g_assert_null (c->ca_cert);
  g_assert_nonnull (strstr (keys.ca_key_uri, "object=issuing-ca-2;"));
  g_assert_nonnull (strstr (keys.signing_key_uri, "object=station-signing-2;"));
  g_assert_cmpstr (c->ca_key_uri, ==, keys.ca_key_uri);
  g_assert_nonnull (strstr (keys.audit_payload, keys.ca_csr_sha256));
  g_assert_nonnull (strstr (keys.audit_payload, "\"admin\":\"alice\""));
  /* nothing was written into the home */
  g_assert_false (g_file_test (other_home, G_FILE_TEST_EXISTS));
  const char *pems[] = { keys.ca_csr_pem, keys.signing_csr_pem };
  for (guint i = 0; i < G_N_ELEMENTS (pems); i++)
    {
      g_autoptr(BIO) bio = BIO_new_mem_buf (pems[i], -1);
      g_autoptr(X509_REQ) csr = PEM_read_bio_X509_REQ (bio, NULL, NULL, NULL);
      g_assert_nonnull (csr);
      EVP_PKEY *pub = X509_REQ_get0_pubkey (csr);
      g_assert_cmpint (EVP_PKEY_get_bits (pub), ==, 384);
      g_assert_cmpint (X509_REQ_verify (csr, pub), ==, 1);
      const X509_ALGOR *sig_alg = NULL;
      X509_REQ_get0_signature (csr, NULL, &sig_alg);
      const ASN1_OBJECT *sig_oid = NULL;
      X509_ALGOR_get0 (&sig_oid, NULL, NULL, sig_alg);
      g_assert_cmpint (OBJ_obj2nid (sig_oid), ==, NID_ecdsa_with_SHA384);
      g_autoptr(BIO) out = BIO_new (BIO_s_mem ());
      X509_REQ_print (out, csr);
      char *text = NULL;
      long n = BIO_get_mem_data (out, &text);
      g_autofree gchar *printed = g_strndup (text, (gsize) n);
      g_assert_nonnull (strstr (printed, "Example GmbH"));
      g_assert_nonnull (strstr (printed, i == 0 ? "Station line9 Issuing CA" : "Station line9 Signing"));
      if (i == 0)
        {
          g_assert_nonnull (strstr (printed, "CA:TRUE, pathlen:0"));
          g_assert_nonnull (strstr (printed, "Certificate Sign, CRL Sign"));
        }
      else
        {
          g_assert_nonnull (strstr (printed, "CA:FALSE"));
          g_assert_nonnull (strstr (printed, ST_OID_STATION_SIGNING));
        }
      const char *uri = i == 0 ? keys.ca_key_uri : keys.signing_key_uri;
      g_autofree gchar *pub_uri = st_hsm_uri_with_type (uri, "public", &error);
      g_autoptr(StHsm) hsm = st_hsm_open (req.module, req.token, &error);
      g_assert_no_error (error);
      g_autoptr(EVP_PKEY) token_pub = st_hsm_get_public_key (hsm, pub_uri, &error);
      g_assert_no_error (error);
      g_assert_cmpint (EVP_PKEY_eq (token_pub, pub), ==, 1);
      g_assert_true (st_hsm_login (hsm, ST_TEST_PIN, &error));
      gboolean sensitive = FALSE, extractable = TRUE;
      g_assert_true (st_hsm_get_key_flags (hsm, uri, &sensitive, &extractable, NULL, &error));
      g_assert_true (sensitive && !extractable);
    }
  /* a subject with its own CN, a bad curve and a bad station id are refused before the token */
  StCeremonyInit bad = req;
  bad.subject = "O=Example,CN=mine";
  g_assert_false (st_ceremony_check_request (&bad, &error));
  g_assert_nonnull (strstr (error->message, "leave CN out"));
  g_clear_error (&error);
  bad = req;
  bad.station_id = "line 9/../x";
  g_assert_false (st_ceremony_check_request (&bad, &error));
  g_assert_nonnull (strstr (error->message, "--station-id"));
  g_clear_error (&error);
  bad = req;
  bad.alg = ST_ALG_ED25519;
  g_assert_false (st_ceremony_check_request (&bad, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED);
  g_clear_error (&error);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/hsm/uri", test_uri);
  g_test_add_func ("/hsm/login/wrong-pin", test_login_wrong_pin);
  g_test_add_func ("/hsm/open/unknown-token", test_open_unknown_token);
  g_test_add_func ("/hsm/key/missing", test_missing_key);
  g_test_add_func ("/hsm/key/flags", test_key_flags);
  g_test_add_func ("/hsm/key/generate-p384", test_generate_p384);
  g_test_add_func ("/hsm/sign/x509", test_sign_x509);
  g_test_add_func ("/hsm/random", test_random);
  g_test_add_func ("/hsm/data-objects", test_data_objects);
  g_test_add_func ("/hsm/relogin", test_relogin);
  g_test_add_func ("/hsm/two-handles", test_two_handles);
  g_test_add_func ("/hsm/threads", test_threads);
  g_test_add_func ("/hsm/pin/env", test_read_pin_env);
  g_test_add_func ("/hsm/pin/tty", test_read_pin_tty);
  g_test_add_func ("/hsm/pin/no-tty", test_read_pin_no_tty);
  g_test_add_func ("/setup/idempotent", test_setup_idempotent);
  g_test_add_func ("/setup/refuses", test_setup_refuses);
  g_test_add_func ("/setup/half-made", test_setup_half_made);
  g_test_add_func ("/setup/openssl-verify", test_setup_openssl_verify);
  g_test_add_func ("/setup/show", test_setup_show);
  g_test_add_func ("/ca/open-checks", test_ca_open_checks);
  g_test_add_func ("/hsm/so-pin", test_so_pin);
  g_test_add_func ("/ceremony/p384-labels-taken", test_ceremony_p384_labels_taken);
  return g_test_run ();
}
