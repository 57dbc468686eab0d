/* The sim: backend: the agent backend over a loopback transport to an
 * in-process simulated device (programmer/devsim/). */
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "st-agent-link.h"
#include "st-backend.h"
#include "st-error.h"
#include "st-ossl.h"
#include "st-simdev.h"
#include "st-util.h"

#define POP_PREFIX "PROVISION-POP-V1"

static StBackend *
open_backend (const char *port, const StLinkParams *params)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StBackend) backend = st_backend_new (port, params, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (backend);
  { gboolean ok_ = st_backend_open (backend, &error);
    g_assert_no_error (error);
    g_assert_true (ok_); }
  return g_steal_pointer (&backend);
}

/* open_backend(), then HELLO: the device in the socket answers (@info). */
static StBackend *
open_device (const char *port, StDeviceInfo *info)
{
  g_autoptr(GError) error = NULL;
  StBackend *backend = open_backend (port, NULL);
  { gboolean ok_ = st_backend_identify (backend, info, &error);
    g_assert_no_error (error);
    g_assert_true (ok_); }
  return backend;
}

/* Polls HELLO until a device answers whose uid differs from @prev_uid_hex
 * (NULL: any device); as the station does between units. */
static gboolean
wait_for_device (StBackend *backend, const char *prev_uid_hex, StDeviceInfo *info,
                 guint max_polls, GError **error)
{
  for (guint i = 0; i < max_polls; i++)
    {
      g_autoptr(GError) local = NULL;
      if (st_backend_identify (backend, info, &local))
        {
          g_autofree gchar *uid = st_device_info_uid_hex (info);
          if (prev_uid_hex == NULL || g_strcmp0 (uid, prev_uid_hex) != 0)
            return TRUE;
          continue;
        }
      if (!g_error_matches (local, ST_ERROR, ST_ERROR_TIMED_OUT))
        {
          g_propagate_error (error, g_steal_pointer (&local));
          return FALSE;
        }
      g_usleep (2000);
    }
  g_set_error (error, ST_ERROR, ST_ERROR_TIMED_OUT, "no new device after %u polls", max_polls);
  return FALSE;
}

/* Parses the CSR strictly and checks its self-signature; returns its key. */
static EVP_PKEY *
check_csr (GBytes *csr_bytes, int expected_nid)
{
  gsize len = 0;
  const guint8 *der = g_bytes_get_data (csr_bytes, &len);
  const unsigned char *p = der;
  g_autoptr(X509_REQ) csr = d2i_X509_REQ (NULL, &p, (long) len);
  g_assert_nonnull (csr);
  g_assert_true (p == der + len);
  g_assert_cmpint (X509_REQ_verify (csr, X509_REQ_get0_pubkey (csr)), ==, 1);
  EVP_PKEY *key = X509_REQ_get_pubkey (csr);
  g_assert_nonnull (key);
  if (expected_nid != 0)
    {
      char group[64] = "";
      size_t glen = 0;
      g_assert_true (EVP_PKEY_get_utf8_string_param (key, "group", group, sizeof group, &glen));
      g_assert_cmpint (OBJ_sn2nid (group), ==, expected_nid);
    }
  return key;
}

static void
check_pop (EVP_PKEY *key, const guint8 challenge[32], GBytes *sig)
{
  guint8 msg[16 + 32];
  memcpy (msg, POP_PREFIX, 16);
  memcpy (msg + 16, challenge, 32);
  const EVP_MD *md = EVP_PKEY_get_bits (key) == 384 ? EVP_sha384 () : EVP_sha256 ();
  g_autoptr(EVP_MD_CTX) ctx = EVP_MD_CTX_new ();
  g_assert_cmpint (EVP_DigestVerifyInit (ctx, NULL, md, NULL, key), ==, 1);
  gsize sig_len = 0;
  const guint8 *sig_data = g_bytes_get_data (sig, &sig_len);
  g_assert_cmpint (EVP_DigestVerify (ctx, sig_data, sig_len, msg, sizeof msg), ==, 1);
  /* Another challenge does not verify. */
  msg[20] ^= 0x01;
  g_autoptr(EVP_MD_CTX) ctx2 = EVP_MD_CTX_new ();
  g_assert_cmpint (EVP_DigestVerifyInit (ctx2, NULL, md, NULL, key), ==, 1);
  g_assert_cmpint (EVP_DigestVerify (ctx2, sig_data, sig_len, msg, sizeof msg), !=, 1);
}

static GBytes *
make_blob (gsize len, guint8 seed)
{
  guint8 *data = g_malloc (len);
  for (gsize i = 0; i < len; i++)
    data[i] = (guint8) (i * 7 + seed + (i >> 8));
  return g_bytes_new_take (data, len);
}

/* A certificate for @key signed by a throwaway CA, as DER. */
static GBytes *
make_cert (EVP_PKEY *key)
{
  g_autoptr(EVP_PKEY) ca = EVP_EC_gen ("P-256");
  g_assert_nonnull (ca);
  g_autoptr(X509) cert = X509_new ();
  X509_set_version (cert, 2);
  ASN1_INTEGER_set (X509_get_serialNumber (cert), 42);
  X509_NAME_add_entry_by_txt (X509_get_subject_name (cert), "CN", MBSTRING_ASC,
                              (const unsigned char *) "sim device", -1, -1, 0);
  X509_set_issuer_name (cert, X509_get_subject_name (cert));
  X509_gmtime_adj (X509_getm_notBefore (cert), 0);
  X509_gmtime_adj (X509_getm_notAfter (cert), 3600);
  X509_set_pubkey (cert, key);
  g_assert_cmpint (X509_sign (cert, ca, EVP_sha256 ()), >, 0);
  unsigned char *der = NULL;
  int len = i2d_X509 (cert, &der);
  g_assert_cmpint (len, >, 0);
  GBytes *out = g_bytes_new (der, (gsize) len);
  OPENSSL_free (der);
  return out;
}

static void
test_sim_full_sequence (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StBackend) backend = open_backend ("sim:full?units=2", NULL);
  StDeviceInfo info;

  { gboolean ok_ = st_backend_identify (backend, &info, &error);
    g_assert_no_error (error);
    g_assert_true (ok_); }
  g_assert_cmpuint (info.uid_len, >=, 1);
  g_assert_cmpstr (info.model, !=, "");
  g_assert_cmpint (info.state, ==, ST_DEVICE_STATE_BLANK);
  g_assert_cmpuint (info.algorithms & 0x01, ==, 0x01);
  g_assert_cmpuint (info.max_payload, >=, 256);
  g_autofree gchar *uid = st_device_info_uid_hex (&info);
  g_assert_cmpuint (strlen (uid), ==, info.uid_len * 2);

  /* SIGN before any key: BAD_STATE -> BUSY. */
  guint8 challenge[32];
  for (guint i = 0; i < 32; i++)
    challenge[i] = (guint8) g_random_int ();
  g_autoptr(GBytes) nosig = st_backend_sign (backend, challenge, &error);
  g_assert_error (error, ST_ERROR, ST_ERROR_BUSY);
  g_assert_nonnull (strstr (error->message, "BAD_STATE"));
  g_assert_nonnull (strstr (error->message, "SIGN"));
  g_assert_null (nosig);
  g_assert_cmpint (st_backend_get_last_status (backend), ==, ST_AGENT_STATUS_BAD_STATE);
  g_clear_error (&error);

  guint64 keygen_before = backend->n_keygen;
  g_autoptr(GBytes) csr = st_backend_keygen (backend, ST_ALG_EC_P256, &error);
  g_assert_no_error (error);
  g_assert_cmpint (st_backend_get_last_status (backend), ==, ST_AGENT_STATUS_OK);
  g_assert_cmpuint (backend->n_keygen, ==, keygen_before + 1);
  g_autoptr(EVP_PKEY) key = check_csr (csr, NID_X9_62_prime256v1);

  g_autoptr(GBytes) cert = make_cert (key);
  g_autoptr(GBytes) chain = make_blob (3000, 3);
  { gboolean ok_ = st_backend_write (backend, ST_SLOT_CERT, cert, &error);
    g_assert_no_error (error);
    g_assert_true (ok_); }
  guint64 req_before = backend->n_requests;
  { gboolean ok_ = st_backend_write (backend, ST_SLOT_CHAIN, chain, &error);
    g_assert_no_error (error);
    g_assert_true (ok_); }
  /* Chunked to the device's max payload. */
  guint64 chunk = info.max_payload - 5;
  g_assert_cmpuint (backend->n_requests - req_before, ==, (3000 + chunk - 1) / chunk);

  g_autoptr(GBytes) sig = st_backend_sign (backend, challenge, &error);
  g_assert_no_error (error);
  check_pop (key, challenge, sig);

  g_autoptr(GBytes) back1 = st_backend_read (backend, ST_SLOT_CERT, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (back1, cert));
  g_autoptr(GBytes) back2 = st_backend_read (backend, ST_SLOT_CHAIN, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (back2, chain));

  { gboolean ok_ = st_backend_commit (backend, TRUE, &error);
    g_assert_no_error (error);
    g_assert_true (ok_); }
  { gboolean ok_ = st_backend_identify (backend, &info, &error);
    g_assert_no_error (error);
    g_assert_true (ok_); }
  g_assert_cmpint (info.state, ==, ST_DEVICE_STATE_LOCKED);
  g_autofree gchar *uid2 = st_device_info_uid_hex (&info);
  g_assert_cmpstr (uid, ==, uid2);
}

/* The r of a DER ECDSA signature. */
static BIGNUM *
sig_r (GBytes *sig)
{
  gsize len = 0;
  const unsigned char *p = g_bytes_get_data (sig, &len);
  ECDSA_SIG *ecdsa = d2i_ECDSA_SIG (NULL, &p, (long) len);
  g_assert_nonnull (ecdsa);
  BIGNUM *r = BN_dup (ECDSA_SIG_get0_r (ecdsa));
  ECDSA_SIG_free (ecdsa);
  return r;
}

/* Two proofs of possession of @key by the device: both verify, with
 * different nonces. */
static void
sign_twice (StBackend *backend, EVP_PKEY *key)
{
  g_autoptr(GError) error = NULL;
  GBytes *sigs[2];
  for (guint n = 0; n < 2; n++)
    {
      guint8 challenge[32];
      for (guint k = 0; k < 32; k++)
        challenge[k] = (guint8) g_random_int ();
      sigs[n] = st_backend_sign (backend, challenge, &error);
      g_assert_no_error (error);
      check_pop (key, challenge, sigs[n]);
    }
  g_autoptr(BIGNUM) r0 = sig_r (sigs[0]);
  g_autoptr(BIGNUM) r1 = sig_r (sigs[1]);
  g_assert_cmpint (BN_cmp (r0, r1), !=, 0);
  g_bytes_unref (sigs[0]);
  g_bytes_unref (sigs[1]);
}

/* Keys made ahead of time (the bench's): each KEYGEN of the algorithm takes
 * one, the device proves possession of it, none is handed out twice, a
 * device whose faults shape its key makes its own, and once the premade
 * keys are gone KEYGEN makes them as before. */
static void
test_sim_premade_keys (void)
{
  g_autoptr(GError) error = NULL;
  g_assert_false (st_sim_premake_keys (9, 1, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  { gboolean ok_ = st_sim_premake_keys (ST_ALG_EC_P256, 2, &error);
    g_assert_no_error (error);
    g_assert_true (ok_); }
  g_assert_cmpuint (st_sim_premade_count (ST_ALG_EC_P256), ==, 2);
  g_assert_cmpuint (st_sim_premade_count (ST_ALG_EC_P384), ==, 0);

  /* a P-384 KEYGEN does not take a P-256 key */
  StDeviceInfo info;
  g_autoptr(StBackend) backend = open_device ("sim:premade?units=1", &info);
  g_autoptr(GBytes) csr384 = st_backend_keygen (backend, ST_ALG_EC_P384, &error);
  g_assert_no_error (error);
  g_autoptr(EVP_PKEY) key384 = check_csr (csr384, NID_secp384r1);
  g_assert_cmpuint (st_sim_premade_count (ST_ALG_EC_P256), ==, 2);

  /* a device whose faults shape its key makes its own */
  {
    g_autoptr(StBackend) wrong = open_device ("sim:premade-wrong?units=1&fault=wrong-curve", &info);
    g_autoptr(GBytes) csr = st_backend_keygen (wrong, ST_ALG_EC_P256, &error);
    g_assert_no_error (error);
    g_autoptr(EVP_PKEY) key = check_csr (csr, NID_secp256k1);
    g_assert_cmpuint (st_sim_premade_count (ST_ALG_EC_P256), ==, 2);
  }

  /* three KEYGENs: two premade keys, then one made on the spot; all differ */
  g_autoptr(GPtrArray) seen = g_ptr_array_new_with_free_func ((GDestroyNotify) EVP_PKEY_free);
  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(GBytes) csr = st_backend_keygen (backend, ST_ALG_EC_P256, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (st_sim_premade_count (ST_ALG_EC_P256), ==, i < 2 ? 1 - i : 0);
      EVP_PKEY *key = check_csr (csr, NID_X9_62_prime256v1);
      for (guint j = 0; j < seen->len; j++)
        g_assert_cmpint (EVP_PKEY_eq (key, g_ptr_array_index (seen, j)), !=, 1);
      g_ptr_array_add (seen, key);

      /* the device holds the key of its request: the first proof uses the
       * nonce made with a premade key, the second one a fresh nonce (a nonce
       * used twice would give the key away) */
      sign_twice (backend, key);
    }

  /* P-384: the nonce's arithmetic with the other curve and SHA-384 */
  { gboolean ok_ = st_sim_premake_keys (ST_ALG_EC_P384, 1, &error);
    g_assert_no_error (error);
    g_assert_true (ok_); }
  {
    g_autoptr(GBytes) csr = st_backend_keygen (backend, ST_ALG_EC_P384, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (st_sim_premade_count (ST_ALG_EC_P384), ==, 0);
    g_autoptr(EVP_PKEY) key = check_csr (csr, NID_secp384r1);
    sign_twice (backend, key);
  }

  { gboolean ok_ = st_sim_premake_keys (ST_ALG_ED25519, 3, &error);
    g_assert_no_error (error);
    g_assert_true (ok_); }
  g_assert_cmpuint (st_sim_premade_count (ST_ALG_ED25519), ==, 3);
  st_sim_premade_clear ();
  g_assert_cmpuint (st_sim_premade_count (ST_ALG_ED25519), ==, 0);
}

/* A new P-256 key, sent to the device by PUT_KEY; returns the key. */
static EVP_PKEY *
put_fresh_key (StBackend *backend)
{
  g_autoptr(GError) error = NULL;
  EVP_PKEY *key = EVP_EC_gen ("P-256");
  g_assert_nonnull (key);
  g_autoptr(PKCS8_PRIV_KEY_INFO) p8 = EVP_PKEY2PKCS8 (key);
  unsigned char *der = NULL;
  int der_len = i2d_PKCS8_PRIV_KEY_INFO (p8, &der);
  g_assert_cmpint (der_len, >, 0);
  GBytes *pkcs8 = g_bytes_new (der, (gsize) der_len);
  OPENSSL_clear_free (der, (size_t) der_len);
  { gboolean ok_ = st_backend_put_key (backend, ST_ALG_EC_P256, pkcs8, &error);
    g_assert_no_error (error);
    g_assert_true (ok_); }
  st_bytes_wipe_unref (pkcs8);
  return key;
}

/* Debug messages while one is captured (main installs the writer). */
static GPtrArray *captured;

static GLogWriterOutput
capture_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
  if (captured != NULL && (level & G_LOG_LEVEL_DEBUG) != 0)
    {
      for (gsize i = 0; i < n_fields; i++)
        if (g_strcmp0 (fields[i].key, "MESSAGE") == 0)
          g_ptr_array_add (captured, fields[i].length < 0
                                       ? g_strdup (fields[i].value)
                                       : g_strndup (fields[i].value, (gsize) fields[i].length));
      return G_LOG_WRITER_HANDLED;
    }
  return g_log_writer_default (level, fields, n_fields, user_data);
}

static guint
captured_with (const char *a, const char *b)
{
  guint n = 0;
  for (guint i = 0; i < captured->len; i++)
    if (strstr (g_ptr_array_index (captured, i), a) != NULL
        && strstr (g_ptr_array_index (captured, i), b) != NULL)
      n++;
  return n;
}

/* The frame traces: one line per request and per response when debug
 * output is on (never a payload: a PUT_KEY says so), and not even formatted
 * when it is off. */
static void
test_sim_frame_traces (void)
{
  g_autoptr(GError) error = NULL;
  captured = g_ptr_array_new_with_free_func (g_free);
  gboolean env_debug = g_getenv ("G_MESSAGES_DEBUG") != NULL;
  g_log_set_debug_enabled (FALSE);
  StDeviceInfo info;
  g_autoptr(StBackend) backend = open_device ("sim:traces?units=1", &info);
  if (!env_debug)
    g_assert_cmpuint (captured_with ("HELLO", "seq"), ==, 0);

  g_log_set_debug_enabled (TRUE);
  { gboolean ok_ = st_backend_identify (backend, &info, &error);
    g_assert_no_error (error);
    g_assert_true (ok_); }
  g_autoptr(EVP_PKEY) key = put_fresh_key (backend);
  g_log_set_debug_enabled (FALSE);

  g_assert_cmpuint (captured_with ("sim:traces?units=1: -> HELLO seq ", ", 0 bytes"), >=, 1);
  g_assert_cmpuint (captured_with ("sim:traces?units=1: <- HELLO seq ", "status OK"), >=, 1);
  g_assert_cmpuint (captured_with ("-> PUT_KEY seq ", "(payload not logged)"), ==, 1);
  g_assert_cmpuint (captured_with ("<- PUT_KEY seq ", "status OK, 0 bytes of result"), ==, 1);
  g_clear_pointer (&captured, g_ptr_array_unref);
}

static void
test_sim_locked_and_put_key (void)
{
  g_autoptr(GError) error = NULL;
  StDeviceInfo info;

  /* A device that is already locked refuses KEYGEN with LOCKED. */
  {
    g_autoptr(StBackend) backend = open_device ("sim:locked?faults=locked", &info);
    g_assert_cmpint (info.state, ==, ST_DEVICE_STATE_LOCKED);
    g_autoptr(GBytes) csr = st_backend_keygen (backend, ST_ALG_EC_P256, &error);
    g_assert_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED);
    g_assert_nonnull (strstr (error->message, "LOCKED"));
    g_assert_nonnull (strstr (error->message, "KEYGEN"));
    g_assert_null (csr);
    g_assert_cmpint (st_backend_get_last_status (backend), ==, ST_AGENT_STATUS_LOCKED);
    g_clear_error (&error);
  }

  /* Station-made key: PUT_KEY, then the device proves it holds it. */
  g_autoptr(StBackend) backend = open_device ("sim:putkey", &info);
  g_autoptr(EVP_PKEY) key = put_fresh_key (backend);
  guint8 challenge[32] = { 1, 2, 3 };
  g_autoptr(GBytes) sig = st_backend_sign (backend, challenge, &error);
  g_assert_no_error (error);
  check_pop (key, challenge, sig);
  /* ABORT drops the uncommitted key: SIGN is BAD_STATE again. */
  { gboolean ok_ = st_backend_abort (backend, &error);
    g_assert_no_error (error);
    g_assert_true (ok_); }
  g_autoptr(GBytes) sig2 = st_backend_sign (backend, challenge, &error);
  g_assert_error (error, ST_ERROR, ST_ERROR_BUSY);
  g_assert_null (sig2);
  g_clear_error (&error);
  /* A key that is not PKCS#8: BAD_REQUEST -> INVALID_DATA. */
  g_autoptr(GBytes) junk = make_blob (100, 9);
  g_assert_false (st_backend_put_key (backend, ST_ALG_EC_P256, junk, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "PUT_KEY"));
}

static void
test_sim_write_small_chunks (void)
{
  /* Before any HELLO the backend assumes 256-byte payloads: 251-byte chunks. */
  g_autoptr(GError) error = NULL;
  g_autoptr(StBackend) backend = open_backend ("sim:chunks", NULL);
  g_autoptr(GBytes) csr = st_backend_keygen (backend, ST_ALG_EC_P256, &error);
  g_assert_no_error (error);
  g_autoptr(GBytes) blob = make_blob (3000, 1);
  guint64 before = backend->n_requests;
  { gboolean ok_ = st_backend_write (backend, ST_SLOT_CHAIN, blob, &error);
    g_assert_no_error (error);
    g_assert_true (ok_); }
  g_assert_cmpuint (backend->n_requests - before, ==, (3000 + 250) / 251);
  g_autoptr(GBytes) back = st_backend_read (backend, ST_SLOT_CHAIN, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (back, blob));
  /* Empty slot reads as empty. */
  g_autoptr(GBytes) empty = st_backend_read (backend, ST_SLOT_CERT, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_bytes_get_size (empty), ==, 0);
  /* Too large for the station's bound: refused before anything is sent. */
  g_autoptr(GBytes) huge = make_blob (ST_AGENT_OBJECT_MAX + 1, 0);
  before = backend->n_requests;
  g_assert_false (st_backend_write (backend, ST_SLOT_CHAIN, huge, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_assert_cmpuint (backend->n_requests, ==, before);
  g_clear_error (&error);
  /* Too large for the device: TOO_LARGE -> INVALID_DATA. */
  g_autoptr(GBytes) big = make_blob (8000, 0);
  g_assert_false (st_backend_write (backend, ST_SLOT_CERT, big, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "TOO_LARGE"));
}

/* One unit's device-key sequence, without OpenSSL checks (benchmark). */
static void
run_quick_sequence (StBackend *backend, GBytes *cert, GBytes *chain)
{
  g_autoptr(GError) error = NULL;
  guint8 challenge[32] = { 0 };
  g_autoptr(GBytes) csr = st_backend_keygen (backend, ST_ALG_EC_P256, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_bytes_get_size (csr), >, 64);
  { gboolean ok_ = st_backend_write (backend, ST_SLOT_CERT, cert, &error);
    g_assert_no_error (error);
    g_assert_true (ok_); }
  { gboolean ok_ = st_backend_write (backend, ST_SLOT_CHAIN, chain, &error);
    g_assert_no_error (error);
    g_assert_true (ok_); }
  g_autoptr(GBytes) sig = st_backend_sign (backend, challenge, &error);
  g_assert_no_error (error);
  g_autoptr(GBytes) back = st_backend_read (backend, ST_SLOT_CERT, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (back, cert));
  { gboolean ok_ = st_backend_commit (backend, FALSE, &error);
    g_assert_no_error (error);
    g_assert_true (ok_); }
}

static void
test_sim_many_units (void)
{
  const guint n_units = 500;
  g_autoptr(GError) error = NULL;
  g_autoptr(StBackend) backend = open_backend ("sim:bench?units=500", NULL);
  g_autoptr(GBytes) cert = make_blob (600, 5);
  g_autoptr(GBytes) chain = make_blob (1200, 6);
  g_autoptr(GHashTable) uids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autofree gchar *prev = NULL;
  StDeviceInfo info;

  for (guint i = 0; i < n_units; i++)
    {
      g_assert_true (wait_for_device (backend, prev, &info, 10, &error));
      g_assert_no_error (error);
      g_assert_cmpint (info.state, ==, ST_DEVICE_STATE_BLANK);
      g_free (prev);
      prev = st_device_info_uid_hex (&info);
      g_assert_false (g_hash_table_contains (uids, prev));
      g_hash_table_add (uids, g_strdup (prev));
      run_quick_sequence (backend, cert, chain);
      { gboolean ok_ = st_backend_identify (backend, &info, &error);
        g_assert_no_error (error);
        g_assert_true (ok_); }
      g_assert_cmpint (info.state, ==, ST_DEVICE_STATE_PROVISIONED);
    }
  /* After the last unit the socket stays empty. */
  g_assert_false (wait_for_device (backend, prev, &info, 3, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_TIMED_OUT);
  g_assert_cmpuint (g_hash_table_size (uids), ==, n_units);
  g_assert_cmpuint (backend->n_keygen, ==, n_units);
  g_assert_cmpuint (backend->n_retries, ==, 0);
}

static void
test_sim_faults_retry (void)
{
  /* Dropped responses and line noise: every step still succeeds through
   * retries of the very same request, and the devices execute one KEYGEN
   * each (the retried KEYGEN is answered from the stored response). */
  StLinkParams params;
  st_link_params_init_defaults (&params);
  params.retries = 6;
  g_autoptr(GError) error = NULL;
  g_autoptr(StBackend) backend = open_backend ("sim:faulty?units=8&seed=11&faults=drop,noise",
                                               &params);
  g_autoptr(GBytes) cert = make_blob (700, 1);
  g_autoptr(GBytes) chain = make_blob (2500, 2);
  g_autofree gchar *prev = NULL;
  StDeviceInfo info;

  for (guint i = 0; i < 8; i++)
    {
      g_assert_true (wait_for_device (backend, prev, &info, 50, &error));
      g_assert_no_error (error);
      g_free (prev);
      prev = st_device_info_uid_hex (&info);
      guint64 keygen_before = backend->n_keygen;
      run_quick_sequence (backend, cert, chain);
      g_assert_cmpuint (backend->n_keygen, ==, keygen_before + 1);
      g_autoptr(GBytes) back = st_backend_read (backend, ST_SLOT_CHAIN, &error);
      g_assert_no_error (error);
      g_assert_true (g_bytes_equal (back, chain));
    }
  g_assert_cmpuint (backend->n_retries, >, 0);
  g_assert_cmpuint (backend->n_keygen, ==, 8);
}

static void
test_sim_garbage (void)
{
  StLinkParams params;
  st_link_params_init_defaults (&params);
  params.timeout_ms = 60;
  params.keygen_timeout_ms = 60;
  params.retries = 1;
  g_autoptr(GError) error = NULL;
  g_autoptr(StBackend) backend = open_backend ("sim:garbage?faults=garbage", &params);
  StDeviceInfo info;
  g_assert_false (st_backend_identify (backend, &info, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_TIMED_OUT);
  g_assert_nonnull (strstr (error->message, "garbage"));
  g_assert_nonnull (strstr (error->message, "sim:garbage"));
  g_clear_error (&error);
  g_autoptr(GBytes) csr = st_backend_keygen (backend, ST_ALG_EC_P256, &error);
  g_assert_error (error, ST_ERROR, ST_ERROR_TIMED_OUT);
  g_assert_null (csr);
  g_assert_cmpuint (backend->n_retries, ==, 1);
  g_assert_cmpuint (backend->bytes_rx, >, 0);
  g_assert_cmpint (st_backend_get_last_status (backend), ==, ST_AGENT_STATUS_NONE);
}

static void
test_sim_cancel (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(StBackend) backend = st_backend_new ("sim:cancel", NULL, cancellable, &error);
  g_assert_no_error (error);
  g_assert_true (st_backend_open (backend, &error));
  StDeviceInfo info;
  g_assert_true (st_backend_identify (backend, &info, &error));
  g_cancellable_cancel (cancellable);
  g_assert_false (st_backend_identify (backend, &info, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_CANCELLED);
}

static gchar *
sim_uid (const char *port)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StBackend) backend = open_backend (port, NULL);
  StDeviceInfo info;
  { gboolean ok_ = st_backend_identify (backend, &info, &error);
    g_assert_no_error (error);
    g_assert_true (ok_); }
  return st_device_info_uid_hex (&info);
}

static void
test_sim_names_and_seeds (void)
{
  g_autofree gchar *a1 = sim_uid ("sim:alpha");
  g_autofree gchar *a2 = sim_uid ("sim:alpha");
  g_autofree gchar *b = sim_uid ("sim:beta");
  g_autofree gchar *s1 = sim_uid ("sim:alpha?seed=7");
  g_autofree gchar *s2 = sim_uid ("sim:beta?seed=7");
  g_assert_cmpstr (a1, ==, a2);
  g_assert_cmpstr (a1, !=, b);
  g_assert_cmpstr (s1, ==, s2);
  g_assert_cmpstr (s1, !=, a1);
}

static void
test_port_parsing (void)
{
  static const struct {
    const char *port;
    int code;   /* -1: accepted */
  } cases[] = {
    { "sim:x", -1 },
    { "sim:x?units=5&seed=7&faults=noise,drop", -1 },
    { "sim:x?model=ACME-1&swap_delay_ms=10&fault_unit=2&algorithms=3", -1 },
    { "agent:/dev/ttyUSB9", -1 },
    { "/dev/ttyUSB9", -1 },
    { "", ST_ERROR_INVALID_DATA },
    { "agent:", ST_ERROR_INVALID_DATA },
    { "sim:x?units=abc", ST_ERROR_INVALID_DATA },
    { "sim:x?units=-1", ST_ERROR_INVALID_DATA },
    { "sim:x?faults=noise,nonsense", ST_ERROR_INVALID_DATA },
    { "sim:x?colour=blue", ST_ERROR_INVALID_DATA },
    { "sim:x?units", ST_ERROR_INVALID_DATA },
    { "stm32-rom:/dev/ttyUSB0", -1 },   /* issue 5: created, opened later */
    { "stm32-rom:", ST_ERROR_INVALID_DATA },
    { "cmsis-dap:0123", -1 },           /* the probe is looked for at open */
    { "cmsis-dap:", -1 },               /* the only probe there is */
    { "bogus:thing", ST_ERROR_NOT_SUPPORTED },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(StBackend) backend = st_backend_new (cases[i].port, NULL, NULL, &error);
      g_test_message ("port '%s'", cases[i].port);
      if (cases[i].code < 0)
        {
          g_assert_no_error (error);
          g_assert_nonnull (backend);
          g_assert_cmpstr (backend->port, ==, cases[i].port);
          g_assert_cmpuint (backend->params.retries, ==, 3);
        }
      else
        {
          g_assert_error (error, ST_ERROR, cases[i].code);
          g_assert_null (backend);
        }
    }

  /* A baud rate that is not a standard rate is named in the error. */
  StLinkParams params;
  st_link_params_init_defaults (&params);
  g_assert_cmpuint (params.baud, ==, 115200);
  g_assert_cmpuint (params.timeout_ms, ==, 1000);
  g_assert_cmpuint (params.keygen_timeout_ms, ==, 30000);
  g_assert_cmpuint (params.commit_timeout_ms, ==, 10000);
  params.baud = 12345;
  g_autoptr(GError) error = NULL;
  g_autoptr(StBackend) backend = st_backend_new ("agent:/dev/ttyUSB9", &params, NULL, &error);
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED);
  g_assert_nonnull (strstr (error->message, "12345"));
  g_assert_null (backend);
  g_clear_error (&error);

  /* A serial port that does not exist: NOT_FOUND at open, naming it. */
  g_autoptr(StBackend) missing = st_backend_new ("/nonexistent/ttyX", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (st_backend_open (missing, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "/nonexistent/ttyX"));
  g_clear_error (&error);
  /* Calls before open fail cleanly. */
  StDeviceInfo info;
  g_assert_false (st_backend_identify (missing, &info, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INTERNAL);
  g_clear_error (&error);
  /* A file that is not a terminal. */
  g_autoptr(StBackend) notty = st_backend_new ("/dev/null", NULL, NULL, &error);
  g_assert_false (st_backend_open (notty, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_log_set_writer_func (capture_writer, NULL, NULL);
  g_test_add_func ("/programmer/sim/port-parsing", test_port_parsing);
  g_test_add_func ("/programmer/sim/full-sequence", test_sim_full_sequence);
  g_test_add_func ("/programmer/sim/locked-put-key-abort", test_sim_locked_and_put_key);
  g_test_add_func ("/programmer/sim/write-small-chunks", test_sim_write_small_chunks);
  g_test_add_func ("/programmer/sim/names-and-seeds", test_sim_names_and_seeds);
  g_test_add_func ("/programmer/sim/faults-retry", test_sim_faults_retry);
  g_test_add_func ("/programmer/sim/garbage", test_sim_garbage);
  g_test_add_func ("/programmer/sim/cancel", test_sim_cancel);
  g_test_add_func ("/programmer/sim/many-units", test_sim_many_units);
  g_test_add_func ("/programmer/sim/premade-keys", test_sim_premade_keys);
  g_test_add_func ("/programmer/sim/frame-traces", test_sim_frame_traces);
  return g_test_run ();
}
