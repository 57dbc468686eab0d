/* The host side of the agent protocol over real pseudo-terminals: against
 * station-devsim (the project's device simulator), against a hostile device
 * played by this test on its own pty, and the HELLO TLV parser. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "st-agent-link.h"
#include "st-backend.h"
#include "st-error.h"
#include "st-frame.h"
#include "st-ossl.h"
#include "st-util.h"
#include "st-test-devsim.h"
#include "st-test-tmp.h"
#include "st-test-json.h"

#define POP_PREFIX "PROVISION-POP-V1"

/* ---------------------------------------------------------------- HELLO */

typedef struct {
  const char *name;
  const char *hex;        /* the TLV list */
  gboolean ok;
  const char *uid_hex;    /* when ok */
  const char *model;
  const char *fw;
  guint algorithms;
  int state;
  guint max_payload;
} HelloCase;

static const HelloCase hello_cases[] = {
  { "minimal", "0104a1b2c3d4" "0203414243", TRUE, "a1b2c3d4", "ABC", "", 0, ST_DEVICE_STATE_UNKNOWN, 256 },
  { "full", "010201ff" "020458595a31" "0303312e30" "040107" "050102" "06020008", TRUE,
    "01ff", "XYZ1", "1.0", 7, ST_DEVICE_STATE_PROVISIONED, 2048 },
  { "unknown-types-ignored", "7f03000000" "0101aa" "00020000" "020141" "ff00", TRUE,
    "aa", "A", "", 0, ST_DEVICE_STATE_UNKNOWN, 256 },
  { "uid-32", "0120" "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f" "020141",
    TRUE, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "A", "", 0,
    ST_DEVICE_STATE_UNKNOWN, 256 },
  { "model-utf8", "0101aa" "0203c3a931", TRUE, "aa", "\xc3\xa9" "1", "", 0, ST_DEVICE_STATE_UNKNOWN, 256 },
  { "max-payload-256", "0101aa" "020141" "06020001", TRUE, "aa", "A", "", 0, ST_DEVICE_STATE_UNKNOWN, 256 },
  { "fw-empty", "0101aa" "020141" "0300", TRUE, "aa", "A", "", 0, ST_DEVICE_STATE_UNKNOWN, 256 },
  { "state-locked", "0101aa" "020141" "050103", TRUE, "aa", "A", "", 0, ST_DEVICE_STATE_LOCKED, 256 },
  { "empty", "", FALSE },
  { "no-uid", "020141", FALSE },
  { "no-model", "0101aa", FALSE },
  { "uid-empty", "0100" "020141", FALSE },
  { "uid-33", "0121" "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20" "020141", FALSE },
  { "model-empty", "0101aa" "0200", FALSE },
  { "model-65", "0101aa" "0241"
    "41414141414141414141414141414141414141414141414141414141414141414141414141414141414141414141414141414141414141414141414141414141"
    "41", FALSE },
  { "model-bad-utf8", "0101aa" "0202c328", FALSE },
  { "model-nul", "0101aa" "02024100", FALSE },
  { "fw-33", "0101aa" "020141" "0321" "414141414141414141414141414141414141414141414141414141414141414141", FALSE },
  { "fw-bad-utf8", "0101aa" "020141" "0301ff", FALSE },
  { "tlv-past-end", "0101aa" "020541", FALSE },
  { "unknown-tlv-past-end", "0101aa" "020141" "7710aa", FALSE },
  { "truncated-header", "0101aa" "020141" "05", FALSE },
  { "duplicate-uid", "0101aa" "0101bb" "020141", FALSE },
  { "duplicate-model", "0101aa" "020141" "020142", FALSE },
  { "duplicate-state", "0101aa" "020141" "050100" "050100", FALSE },
  { "max-payload-255", "0101aa" "020141" "0602ff00", FALSE },
  { "max-payload-2049", "0101aa" "020141" "06020108", FALSE },
  { "max-payload-short", "0101aa" "020141" "060100", FALSE },
  { "algorithms-long", "0101aa" "020141" "04020700", FALSE },
  { "state-invalid", "0101aa" "020141" "050104", FALSE },
  { "state-empty", "0101aa" "020141" "0500", FALSE },
};

static void
test_hello_parse (void)
{
  for (gsize i = 0; i < G_N_ELEMENTS (hello_cases); i++)
    {
      const HelloCase *c = &hello_cases[i];
      g_autoptr(GError) error = NULL;
      g_autoptr(GBytes) data = st_hex_decode (c->hex, &error);
      g_assert_no_error (error);
      gsize len = 0;
      const guint8 *p = g_bytes_get_data (data, &len);
      StDeviceInfo info;
      g_test_message ("HELLO case %s", c->name);
      gboolean ok = st_agent_parse_hello (len > 0 ? p : NULL, len, &info, &error);
      if (!c->ok)
        {
          g_assert_false (ok);
          g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
          g_assert_true (g_str_has_prefix (error->message, "HELLO"));
          continue;
        }
      g_assert_no_error (error);
      g_assert_true (ok);
      g_autofree gchar *uid = st_device_info_uid_hex (&info);
      g_assert_cmpstr (uid, ==, c->uid_hex);
      g_assert_cmpstr (info.model, ==, c->model);
      g_assert_cmpstr (info.fw_version, ==, c->fw);
      g_assert_cmpuint (info.algorithms, ==, c->algorithms);
      g_assert_cmpint (info.state, ==, c->state);
      g_assert_cmpuint (info.max_payload, ==, c->max_payload);
    }

  /* Every truncation of a valid list fails cleanly or parses a prefix. */
  g_autoptr(GBytes) full = st_hex_decode ("010201ff020458595a310303312e30040107050102"
                                          "06020008", NULL);
  gsize full_len = 0;
  const guint8 *full_data = g_bytes_get_data (full, &full_len);
  for (gsize n = 0; n < full_len; n++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree guint8 *copy = g_memdup2 (full_data, n);
      StDeviceInfo info;
      if (!st_agent_parse_hello (copy, n, &info, &error))
        g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
    }
}

static void
test_status_mapping (void)
{
  static const struct { guint8 status; const char *name; StError code; } map[] = {
    { 0x01, "BAD_REQUEST", ST_ERROR_INVALID_DATA },
    { 0x02, "UNKNOWN_OP", ST_ERROR_NOT_SUPPORTED },
    { 0x03, "BAD_STATE", ST_ERROR_BUSY },
    { 0x04, "LOCKED", ST_ERROR_PERMISSION_DENIED },
    { 0x05, "UNSUPPORTED", ST_ERROR_NOT_SUPPORTED },
    { 0x06, "STORAGE", ST_ERROR_WRITE },
    { 0x07, "TOO_LARGE", ST_ERROR_INVALID_DATA },
    { 0x08, "INTERNAL", ST_ERROR_INTERNAL },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (map); i++)
    {
      g_assert_cmpstr (st_agent_status_to_string (map[i].status), ==, map[i].name);
      g_assert_cmpint (st_agent_status_to_error (map[i].status), ==, map[i].code);
    }
  g_assert_cmpstr (st_agent_status_to_string (0x00), ==, "OK");
  g_assert_null (st_agent_status_to_string (0x09));
  g_assert_cmpstr (st_agent_op_to_string (0x06), ==, "SIGN");
  g_assert_null (st_agent_op_to_string (0x09));
}

/* ------------------------------------------------------ station-devsim */

/* Devsim, devsim_start, devsim_stop, devsim_free: st-test-devsim.h */

/* KEYGEN executions per device, from devsim's state file. */
static GArray *
devsim_keygen_counts (Devsim *d)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonParser) parser = st_test_load_json (d->state_file);
  JsonObject *root = json_node_get_object (json_parser_get_root (parser));
  JsonArray *devices = json_object_get_array_member (root, "devices");
  g_assert_nonnull (devices);
  GArray *counts = g_array_new (FALSE, FALSE, sizeof (guint));
  for (guint i = 0; i < json_array_get_length (devices); i++)
    {
      JsonObject *dev = json_array_get_object_element (devices, i);
      guint n = (guint) json_object_get_int_member (dev, "keygen_executed");
      g_array_append_val (counts, n);
    }
  return counts;
}

static StBackend *
backend_open (const char *port, const StLinkParams *params)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StBackend) backend = st_backend_new (port, params, NULL, &error);
  g_assert_no_error (error);
  { gboolean ok_ = st_backend_open (backend, &error);
    g_assert_no_error (error);
    g_assert_true (ok_); }
  return g_steal_pointer (&backend);
}

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
          g_usleep (20 * 1000);
          continue;
        }
      if (!g_error_matches (local, ST_ERROR, ST_ERROR_TIMED_OUT))
        {
          g_propagate_error (error, g_steal_pointer (&local));
          return FALSE;
        }
    }
  g_set_error (error, ST_ERROR, ST_ERROR_TIMED_OUT, "no new device after %u polls", max_polls);
  return FALSE;
}

static EVP_PKEY *
check_csr (GBytes *csr_bytes)
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
  g_assert_true (EVP_PKEY_is_a (key, "EC"));
  return key;
}

static GBytes *
make_cert (EVP_PKEY *key)
{
  g_autoptr(EVP_PKEY) ca = EVP_EC_gen ("P-256");
  g_autoptr(X509) cert = X509_new ();
  X509_set_version (cert, 2);
  ASN1_INTEGER_set (X509_get_serialNumber (cert), 7);
  X509_NAME_add_entry_by_txt (X509_get_subject_name (cert), "CN", MBSTRING_ASC,
                              (const unsigned char *) "devsim device", -1, -1, 0);
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

static GBytes *
make_blob (gsize len, guint8 seed)
{
  guint8 *data = g_malloc (len);
  for (gsize i = 0; i < len; i++)
    data[i] = (guint8) (i * 13 + seed + (i >> 8));
  return g_bytes_new_take (data, len);
}

/* The device-key sequence of one unit with every check the station makes. */
static void
run_unit (StBackend *backend, gboolean lock)
{
  g_autoptr(GError) error = NULL;
  guint8 challenge[32];
  for (guint i = 0; i < 32; i++)
    challenge[i] = (guint8) g_random_int ();

  guint64 keygen_before = backend->n_keygen;
  g_autoptr(GBytes) csr = st_backend_keygen (backend, ST_ALG_EC_P256, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (backend->n_keygen, ==, keygen_before + 1);
  g_autoptr(EVP_PKEY) key = check_csr (csr);
  g_autoptr(GBytes) cert = make_cert (key);
  g_autoptr(GBytes) chain = make_blob (3000, (guint8) g_random_int ());
  { gboolean ok_ = st_backend_write (backend, ST_SLOT_CERT, cert, &error);
    g_assert_no_error (error);
    g_assert_true (ok_); }
  { gboolean ok_ = st_backend_write (backend, ST_SLOT_CHAIN, chain, &error);
    g_assert_no_error (error);
    g_assert_true (ok_); }

  g_autoptr(GBytes) sig = st_backend_sign (backend, challenge, &error);
  g_assert_no_error (error);
  guint8 msg[16 + 32];
  memcpy (msg, POP_PREFIX, 16);
  memcpy (msg + 16, challenge, 32);
  g_autoptr(EVP_MD_CTX) ctx = EVP_MD_CTX_new ();
  g_assert_cmpint (EVP_DigestVerifyInit (ctx, NULL, EVP_sha256 (), NULL, key), ==, 1);
  gsize sig_len = 0;
  const guint8 *sig_data = g_bytes_get_data (sig, &sig_len);
  g_assert_cmpint (EVP_DigestVerify (ctx, sig_data, sig_len, msg, sizeof msg), ==, 1);

  g_autoptr(GBytes) back1 = st_backend_read (backend, ST_SLOT_CERT, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (back1, cert));
  g_autoptr(GBytes) back2 = st_backend_read (backend, ST_SLOT_CHAIN, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (back2, chain));
  { gboolean ok_ = st_backend_commit (backend, lock, &error);
    g_assert_no_error (error);
    g_assert_true (ok_); }
}

static void
test_devsim_sequence (void)
{
  const char *args[] = { "--units", "2", "--seed", "5", "--swap-delay-ms", "20", NULL };
  g_autoptr(Devsim) d = devsim_start ("st-agent-host", args);
  g_autoptr(GError) error = NULL;
  g_autofree gchar *port = g_strdup_printf ("agent:%s", d->path);
  g_autoptr(StBackend) backend = backend_open (port, NULL);
  StDeviceInfo info;

  g_assert_true (wait_for_device (backend, NULL, &info, 20, &error));
  g_assert_no_error (error);
  g_assert_cmpint (info.state, ==, ST_DEVICE_STATE_BLANK);
  g_assert_cmpuint (info.max_payload, >=, 256);
  g_assert_cmpstr (info.model, ==, "SIM-DEV-1");
  g_autofree gchar *uid1 = st_device_info_uid_hex (&info);
  run_unit (backend, TRUE);
  { gboolean ok_ = st_backend_identify (backend, &info, &error);
    g_assert_no_error (error);
    g_assert_true (ok_); }
  g_assert_cmpint (info.state, ==, ST_DEVICE_STATE_LOCKED);
  g_autofree gchar *uid1b = st_device_info_uid_hex (&info);
  g_assert_cmpstr (uid1, ==, uid1b);

  /* The operator swaps the device: KEYGEN, then ABORT leaves it blank. */
  g_assert_true (wait_for_device (backend, uid1, &info, 40, &error));
  g_assert_no_error (error);
  g_assert_cmpint (info.state, ==, ST_DEVICE_STATE_BLANK);
  g_autoptr(GBytes) csr = st_backend_keygen (backend, ST_ALG_EC_P256, &error);
  g_assert_no_error (error);
  g_autoptr(EVP_PKEY) key = check_csr (csr);
  { gboolean ok_ = st_backend_identify (backend, &info, &error);
    g_assert_no_error (error);
    g_assert_true (ok_); }
  g_assert_cmpint (info.state, ==, ST_DEVICE_STATE_KEY_PRESENT);
  { gboolean ok_ = st_backend_abort (backend, &error);
    g_assert_no_error (error);
    g_assert_true (ok_); }
  { gboolean ok_ = st_backend_identify (backend, &info, &error);
    g_assert_no_error (error);
    g_assert_true (ok_); }
  g_assert_cmpint (info.state, ==, ST_DEVICE_STATE_BLANK);
  g_assert_cmpuint (backend->n_retries, ==, 0);

  g_autoptr(GArray) counts = devsim_keygen_counts (d);
  g_assert_cmpuint (counts->len, ==, 2);
  g_assert_cmpuint (g_array_index (counts, guint, 0), ==, 1);
  g_assert_cmpuint (g_array_index (counts, guint, 1), ==, 1);
}

static void
run_faulty (const char *fault)
{
  const char *args[] = { "--units", "3", "--seed", "9", "--swap-delay-ms", "20",
                         "--fault", fault, NULL };
  g_autoptr(Devsim) d = devsim_start ("st-agent-host", args);
  StLinkParams params;
  st_link_params_init_defaults (&params);
  params.timeout_ms = 300;
  params.keygen_timeout_ms = 2000;
  params.commit_timeout_ms = 2000;
  params.retries = 6;
  g_autoptr(GError) error = NULL;
  g_autoptr(StBackend) backend = backend_open (d->path, &params);
  g_autofree gchar *prev = NULL;
  StDeviceInfo info;

  for (guint unit = 0; unit < 3; unit++)
    {
      g_assert_true (wait_for_device (backend, prev, &info, 60, &error));
      g_assert_no_error (error);
      g_assert_cmpint (info.state, ==, ST_DEVICE_STATE_BLANK);
      g_free (prev);
      prev = st_device_info_uid_hex (&info);
      run_unit (backend, FALSE);
    }
  g_assert_cmpuint (backend->n_keygen, ==, 3);
  g_assert_cmpuint (backend->n_retries, >, 0);
  g_autoptr(GArray) counts = devsim_keygen_counts (d);
  g_assert_cmpuint (counts->len, ==, 3);
  for (guint i = 0; i < counts->len; i++)
    g_assert_cmpuint (g_array_index (counts, guint, i), ==, 1);
}

static void
test_devsim_fault_drop (void)
{
  run_faulty ("drop");
}

static void
test_devsim_fault_noise (void)
{
  run_faulty ("noise");
}

static void
test_devsim_fault_garbage (void)
{
  const char *args[] = { "--fault", "garbage", NULL };
  g_autoptr(Devsim) d = devsim_start ("st-agent-host", args);
  StLinkParams params;
  st_link_params_init_defaults (&params);
  params.timeout_ms = 200;
  params.keygen_timeout_ms = 200;
  params.retries = 2;
  g_autoptr(GError) error = NULL;
  g_autoptr(StBackend) backend = backend_open (d->path, &params);
  StDeviceInfo info;

  g_assert_false (st_backend_identify (backend, &info, &error));
  g_assert_true (g_error_matches (error, ST_ERROR, ST_ERROR_TIMED_OUT)
                 || g_error_matches (error, ST_ERROR, ST_ERROR_READ));
  g_assert_nonnull (strstr (error->message, d->path));
  g_clear_error (&error);
  gint64 t0 = g_get_monotonic_time ();
  g_autoptr(GBytes) csr = st_backend_keygen (backend, ST_ALG_EC_P256, &error);
  gint64 elapsed_ms = (g_get_monotonic_time () - t0) / 1000;
  g_assert_null (csr);
  g_assert_error (error, ST_ERROR, ST_ERROR_TIMED_OUT);
  g_assert_nonnull (strstr (error->message, "garbage"));
  g_assert_nonnull (strstr (error->message, "KEYGEN"));
  /* The attempts are bounded in time although bytes kept arriving... */
  g_assert_cmpint (elapsed_ms, <, 3 * 200 + 1500);
  g_assert_cmpuint (backend->n_retries, ==, 2);
  /* ...and far more arrived than any frame buffer holds. */
  g_assert_cmpuint (backend->bytes_rx, >, ST_FRAME_MAX_WIRE);
  g_assert_cmpint (st_backend_get_last_status (backend), ==, ST_AGENT_STATUS_NONE);
}

static void
test_devsim_unplug (void)
{
  g_autoptr(Devsim) d = devsim_start ("st-agent-host", NULL);
  StLinkParams params;
  st_link_params_init_defaults (&params);
  params.timeout_ms = 300;
  params.retries = 1;
  g_autoptr(GError) error = NULL;
  g_autoptr(StBackend) backend = backend_open (d->path, &params);
  StDeviceInfo info;
  g_assert_true (wait_for_device (backend, NULL, &info, 20, &error));
  g_assert_no_error (error);

  devsim_stop (d);
  g_assert_false (st_backend_identify (backend, &info, &error));
  g_assert_true (g_error_matches (error, ST_ERROR, ST_ERROR_READ)
                 || g_error_matches (error, ST_ERROR, ST_ERROR_WRITE)
                 || g_error_matches (error, ST_ERROR, ST_ERROR_TIMED_OUT));
  g_assert_nonnull (strstr (error->message, d->path));
  g_clear_error (&error);
  guint8 challenge[32] = { 0 };
  g_autoptr(GBytes) sig = st_backend_sign (backend, challenge, &error);
  g_assert_null (sig);
  g_assert_true (g_error_matches (error, ST_ERROR, ST_ERROR_READ)
                 || g_error_matches (error, ST_ERROR, ST_ERROR_WRITE)
                 || g_error_matches (error, ST_ERROR, ST_ERROR_TIMED_OUT));
  g_assert_nonnull (strstr (error->message, d->path));
}

static void
test_serial_exclusive (void)
{
  g_autoptr(Devsim) d = devsim_start ("st-agent-host", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(StBackend) a = backend_open (d->path, NULL);
  g_autoptr(StBackend) b = st_backend_new (d->path, NULL, NULL, &error);
  g_assert_no_error (error);
  /* TIOCEXCL: a second open of the port fails (unless running as root,
   * which the exclusive mode does not stop). */
  if (geteuid () != 0)
    {
      g_assert_false (st_backend_open (b, &error));
      g_assert_error (error, ST_ERROR, ST_ERROR_BUSY);
      g_assert_nonnull (strstr (error->message, d->path));
    }
  /* Closing and re-opening works; the fresh open sends the 0x00 again. */
  st_backend_close (a);
  { gboolean ok_ = st_backend_open (a, &error);
    g_assert_no_error (error);
    g_assert_true (ok_); }
  StDeviceInfo info;
  g_assert_true (wait_for_device (a, NULL, &info, 20, &error));
  g_assert_no_error (error);
}

/* ------------------------------------------------------ hostile device */

/* A device played by this test on its own pty: it answers each request by
 * the script below, checking on the way what the station sends. */
typedef struct {
  int master;
  GThread *thread;
  gint stop;
  GMutex lock;
  GPtrArray *requests;        /* GBytes: every request body, in order */
  guint n_leading_zero;       /* 0x00 bytes seen before any frame */
  gboolean saw_frame;
  guint n_abort;
  guint n_read1;
  int slave;                  /* held so that the master never sees EIO */
} Hostile;

static void
hostile_send (Hostile *h, guint8 op, guint16 seq, const guint8 *payload, gsize len)
{
  guint8 wire[ST_FRAME_MAX_WIRE];
  gsize n = st_frame_encode (op, seq, payload, (uint16_t) len, wire, sizeof wire);
  g_assert_cmpuint (n, >, 0);
  gsize done = 0;
  while (done < n)
    {
      ssize_t w = write (h->master, wire + done, n - done);
      if (w > 0)
        done += (gsize) w;
      else if (w < 0 && errno != EAGAIN && errno != EINTR)
        return;
    }
}

static void
hostile_send_raw (Hostile *h, const guint8 *data, gsize len)
{
  g_assert_cmpint (write (h->master, data, len), ==, (ssize_t) len);
}

static void
hostile_answer (Hostile *h, const StFrame *req)
{
  guint8 rsp = (guint8) (req->op | 0x80);
  guint8 out[ST_FRAME_MAX_PAYLOAD];
  static const guint8 hello[] = {
    0x01, 0x03, 0xde, 0xad, 0x01, 0x02, 0x02, 'H', 'X', 0x06, 0x02, 0x00, 0x01,
  };
  switch (req->op)
    {
    case 0x01: /* HELLO: a stale answer, a damaged frame, a wrong-op frame, then the answer */
      out[0] = 0x00;
      memcpy (out + 1, hello, sizeof hello);
      hostile_send (h, rsp, (guint16) (req->seq - 1), out, 1 + sizeof hello);
      hostile_send_raw (h, (const guint8 *) "\x11\x22\x33\x00", 4);
      hostile_send (h, 0x82, req->seq, out, 1);
      hostile_send (h, rsp, req->seq, out, 1 + sizeof hello);
      break;
    case 0x08: /* ABORT: the first request is lost, the resend is answered */
      if (h->n_abort++ == 0)
        break;
      out[0] = 0x00;
      hostile_send (h, rsp, req->seq, out, 1);
      break;
    case 0x05: /* READ: the first read of slot 1 changes its total between
                * chunks, later ones send more than due; slot 2 is too large */
      {
        guint slot = req->payload[0];
        guint offset = req->payload[1] | (req->payload[2] << 8);
        guint max = req->payload[3] | (req->payload[4] << 8);
        guint total = 20000;
        guint n = max;
        if (slot == 1 && h->n_read1++ < 2)
          {
            total = offset == 0 ? 3000 : 2999;
            n = MIN (max, total - MIN (offset, total));
          }
        else if (slot == 1)
          {
            total = 100;
            n = 101;
          }
        n = MIN (n, (guint) sizeof out - 3);
        out[0] = 0x00;
        out[1] = (guint8) (total & 0xff);
        out[2] = (guint8) (total >> 8);
        memset (out + 3, 0x5a, n);
        hostile_send (h, rsp, req->seq, out, 3 + n);
      }
      break;
    case 0x06: /* SIGN: an unknown status */
      out[0] = 0x42;
      hostile_send (h, rsp, req->seq, out, 1);
      break;
    case 0x07: /* COMMIT: OK with a result where none is due */
      out[0] = 0x00;
      out[1] = 0x01;
      hostile_send (h, rsp, req->seq, out, 2);
      break;
    case 0x02: /* KEYGEN: a response without a status byte */
      hostile_send (h, rsp, req->seq, NULL, 0);
      break;
    default:
      out[0] = 0x02;
      hostile_send (h, rsp, req->seq, out, 1);
      break;
    }
}

static gpointer
hostile_thread (gpointer data)
{
  Hostile *h = data;
  StFrameRx rx;
  guint8 body[ST_FRAME_MAX_BODY];
  st_frame_rx_init (&rx);
  while (!g_atomic_int_get (&h->stop))
    {
      struct pollfd p = { .fd = h->master, .events = POLLIN };
      if (poll (&p, 1, 20) <= 0 || !(p.revents & POLLIN))
        continue;
      guint8 buf[512];
      ssize_t n = read (h->master, buf, sizeof buf);
      if (n <= 0)
        continue;
      for (ssize_t i = 0; i < n; i++)
        {
          size_t body_len = 0;
          if (!h->saw_frame && buf[i] == 0x00 && rx.n == 0)
            h->n_leading_zero++;
          if (st_frame_rx_push (&rx, buf[i], body, sizeof body, &body_len) != 1)
            continue;
          StFrame frame;
          if (st_frame_parse_body (body, body_len, &frame) != 0)
            continue;
          h->saw_frame = TRUE;
          g_mutex_lock (&h->lock);
          g_ptr_array_add (h->requests, g_bytes_new (body, body_len));
          g_mutex_unlock (&h->lock);
          hostile_answer (h, &frame);
        }
    }
  return NULL;
}

static Hostile *
hostile_start (gchar **slave_path)
{
  Hostile *h = g_new0 (Hostile, 1);
  int slave = -1;
  char name[128];
  g_assert_cmpint (openpty (&h->master, &slave, name, NULL, NULL), ==, 0);
  struct termios tio;
  g_assert_cmpint (tcgetattr (h->master, &tio), ==, 0);
  cfmakeraw (&tio);
  g_assert_cmpint (tcsetattr (h->master, TCSANOW, &tio), ==, 0);
  h->slave = slave;
  g_mutex_init (&h->lock);
  h->requests = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  h->thread = g_thread_new ("hostile", hostile_thread, h);
  *slave_path = g_strdup (name);
  return h;
}

static void
hostile_free (Hostile *h)
{
  g_atomic_int_set (&h->stop, 1);
  g_thread_join (h->thread);
  close (h->master);
  close (h->slave);
  g_ptr_array_unref (h->requests);
  g_mutex_clear (&h->lock);
  g_free (h);
}

static guint16
body_seq (GBytes *body)
{
  const guint8 *b = g_bytes_get_data (body, NULL);
  return (guint16) (b[2] | (b[3] << 8));
}

static void
test_hostile_device (void)
{
  g_autofree gchar *path = NULL;
  Hostile *h = hostile_start (&path);
  StLinkParams params;
  st_link_params_init_defaults (&params);
  params.timeout_ms = 200;
  params.retries = 2;
  g_autoptr(GError) error = NULL;
  g_autoptr(StBackend) backend = backend_open (path, &params);
  StDeviceInfo info;

  /* Stale, damaged and wrong-op frames are skipped without a retry. */
  { gboolean ok_ = st_backend_identify (backend, &info, &error);
    g_assert_no_error (error);
    g_assert_true (ok_); }
  g_autofree gchar *uid = st_device_info_uid_hex (&info);
  g_assert_cmpstr (uid, ==, "dead01");
  g_assert_cmpstr (info.model, ==, "HX");
  g_assert_cmpuint (info.max_payload, ==, 256);
  g_assert_cmpuint (backend->n_retries, ==, 0);

  /* A lost response: the very same body goes again. */
  { gboolean ok_ = st_backend_abort (backend, &error);
    g_assert_no_error (error);
    g_assert_true (ok_); }
  g_assert_cmpuint (backend->n_retries, ==, 1);

  g_autoptr(GBytes) r1 = st_backend_read (backend, ST_SLOT_CERT, &error);
  g_assert_null (r1);
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "changed"));
  g_clear_error (&error);
  g_autoptr(GBytes) r2 = st_backend_read (backend, ST_SLOT_CHAIN, &error);
  g_assert_null (r2);
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "20000"));
  g_clear_error (&error);
  g_autoptr(GBytes) r3 = st_backend_read (backend, ST_SLOT_CERT, &error);
  g_assert_null (r3);
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "101 bytes"));
  g_clear_error (&error);
  guint8 challenge[32] = { 0 };
  g_autoptr(GBytes) sig = st_backend_sign (backend, challenge, &error);
  g_assert_null (sig);
  g_assert_error (error, ST_ERROR, ST_ERROR_INTERNAL);
  g_assert_nonnull (strstr (error->message, "0x42"));
  g_assert_cmpint (st_backend_get_last_status (backend), ==, 0x42);
  g_clear_error (&error);
  g_assert_false (st_backend_commit (backend, FALSE, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_autoptr(GBytes) csr = st_backend_keygen (backend, ST_ALG_EC_P256, &error);
  g_assert_null (csr);
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "status"));
  g_clear_error (&error);
  /* An unknown op answer maps to NOT_SUPPORTED with the status name. */
  g_autoptr(GBytes) blob = make_blob (600, 1);
  g_assert_false (st_backend_write (backend, ST_SLOT_CERT, blob, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED);
  g_assert_nonnull (strstr (error->message, "UNKNOWN_OP"));
  g_assert_nonnull (strstr (error->message, "WRITE"));
  g_clear_error (&error);

  st_backend_close (backend);
  g_mutex_lock (&h->lock);
  /* One 0x00 before the first frame; seq +1 per new request; the ABORT
   * resend was byte-identical. */
  g_assert_cmpuint (h->n_leading_zero, ==, 1);
  g_assert_cmpuint (h->requests->len, ==, 11);
  GBytes *hello = g_ptr_array_index (h->requests, 0);
  GBytes *abort1 = g_ptr_array_index (h->requests, 1);
  GBytes *abort2 = g_ptr_array_index (h->requests, 2);
  GBytes *read1 = g_ptr_array_index (h->requests, 3);
  g_assert_true (g_bytes_equal (abort1, abort2));
  g_assert_cmpuint (body_seq (abort1), ==, (guint16) (body_seq (hello) + 1));
  g_assert_cmpuint (body_seq (read1), ==, (guint16) (body_seq (abort1) + 1));
  g_mutex_unlock (&h->lock);
  hostile_free (h);
}

static gpointer
cancel_later (gpointer data)
{
  g_usleep (100 * 1000);
  g_cancellable_cancel (G_CANCELLABLE (data));
  return NULL;
}

static void
test_silent_device (void)
{
  /* A pty whose device never answers: every attempt times out, the same
   * request is sent retries + 1 times, and a cancel ends a long wait. */
  int master = -1, slave = -1;
  char name[128];
  g_assert_cmpint (openpty (&master, &slave, name, NULL, NULL), ==, 0);
  StLinkParams params;
  st_link_params_init_defaults (&params);
  params.timeout_ms = 100;
  params.keygen_timeout_ms = 20000;
  params.retries = 2;
  g_autoptr(GError) error = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(StBackend) backend = st_backend_new (name, &params, cancellable, &error);
  g_assert_no_error (error);
  { gboolean ok_ = st_backend_open (backend, &error);
    g_assert_no_error (error);
    g_assert_true (ok_); }

  gint64 t0 = g_get_monotonic_time ();
  g_assert_false (st_backend_abort (backend, &error));
  gint64 elapsed_ms = (g_get_monotonic_time () - t0) / 1000;
  g_assert_error (error, ST_ERROR, ST_ERROR_TIMED_OUT);
  g_assert_nonnull (strstr (error->message, "no response"));
  g_assert_nonnull (strstr (error->message, "ABORT"));
  g_assert_nonnull (strstr (error->message, name));
  g_assert_cmpint (elapsed_ms, >=, 300);
  g_assert_cmpuint (backend->n_requests, ==, 1);
  g_assert_cmpuint (backend->n_retries, ==, 2);
  g_assert_cmpuint (backend->bytes_rx, ==, 0);
  g_clear_error (&error);

  /* What the device received: 0x00, then three identical frames. */
  guint8 buf[256];
  ssize_t n = read (master, buf, sizeof buf);
  g_assert_cmpint (n, ==, 1 + 3 * 12);
  g_assert_cmpuint (buf[0], ==, 0x00);
  g_assert_cmpmem (buf + 1, 12, buf + 13, 12);
  g_assert_cmpmem (buf + 1, 12, buf + 25, 12);
  g_assert_cmpuint (buf[12], ==, 0x00);

  GThread *thread = g_thread_new ("cancel", cancel_later, cancellable);
  t0 = g_get_monotonic_time ();
  g_autoptr(GBytes) csr = st_backend_keygen (backend, ST_ALG_EC_P256, &error);
  elapsed_ms = (g_get_monotonic_time () - t0) / 1000;
  g_thread_join (thread);
  g_assert_null (csr);
  g_assert_error (error, ST_ERROR, ST_ERROR_CANCELLED);
  g_assert_cmpint (elapsed_ms, <, 5000);
  close (master);
  close (slave);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/programmer/agent-host/unit/hello-parse", test_hello_parse);
  g_test_add_func ("/programmer/agent-host/unit/status-mapping", test_status_mapping);
  g_test_add_func ("/programmer/agent-host/hostile-device", test_hostile_device);
  g_test_add_func ("/programmer/agent-host/silent-device", test_silent_device);
  g_test_add_func ("/programmer/agent-host/devsim/sequence", test_devsim_sequence);
  g_test_add_func ("/programmer/agent-host/devsim/exclusive", test_serial_exclusive);
  g_test_add_func ("/programmer/agent-host/devsim/fault-drop", test_devsim_fault_drop);
  g_test_add_func ("/programmer/agent-host/devsim/fault-noise", test_devsim_fault_noise);
  g_test_add_func ("/programmer/agent-host/devsim/fault-garbage", test_devsim_fault_garbage);
  g_test_add_func ("/programmer/agent-host/devsim/unplug", test_devsim_unplug);
  return g_test_run ();
}
