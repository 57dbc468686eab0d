/* The simulated device (programmer/devsim/): in process through
 * StSimSocket, and as the station-devsim executable on a real
 * pseudo-terminal. Real OpenSSL on both sides. */
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <openssl/core_names.h>
#include <openssl/rand.h>
#include <poll.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "st-agent.h"
#include "st-error.h"
#include "st-frame.h"
#include "st-ossl.h"
#include "st-simdev.h"
#include "st-types.h"
#include "st-util.h"
#include "st-test-tmp.h"

#define NO_RESPONSE 0xFF

/* ---- the host side, minimal: one request, retries, one response -------- */

typedef struct {
  StSimSocket *sock;   /* in process, or */
  int fd;              /* a pty opened by the test */
  guint16 seq;
  StFrameRx rx;
  guint timeout_ms;    /* per attempt (pty) */
  guint retries;
  guint n_retries;     /* attempts that got no usable answer */
  gsize junk_bytes;    /* bytes that were not our response */
} Host;

static void
host_init_sock (Host *h, StSimSocket *sock)
{
  memset (h, 0, sizeof *h);
  h->sock = sock;
  h->fd = -1;
  h->seq = 1;
  h->retries = 0;
  st_frame_rx_init (&h->rx);
}

static void
host_init_fd (Host *h, int fd)
{
  memset (h, 0, sizeof *h);
  h->fd = fd;
  h->seq = 1;
  h->timeout_ms = 400;
  st_frame_rx_init (&h->rx);
}

/* Pushes received bytes; returns TRUE with @result when our response is
 * among them. Other frames or garbage count as junk. */
static gboolean
host_take (Host *h, const guint8 *data, gsize len, guint8 want_op, guint16 seq, guint8 *status,
           GBytes **result)
{
  gboolean found = FALSE;
  for (gsize i = 0; i < len; i++)
    {
      guint8 body[ST_FRAME_MAX_BODY];
      gsize body_len = 0;
      StFrame f;
      if (!st_frame_rx_push (&h->rx, data[i], body, sizeof body, &body_len))
        continue;
      if (st_frame_parse_body (body, body_len, &f) != 0 || f.op != (want_op | 0x80) || f.seq != seq
          || f.len < 1 || found)
        {
          h->junk_bytes += body_len;
          continue;
        }
      found = TRUE;
      *status = f.payload[0];
      if (result != NULL)
        *result = g_bytes_new (f.payload + 1, f.len - 1u);
    }
  return found;
}

static gboolean
host_attempt (Host *h, const guint8 *wire, gsize n, guint8 op, guint16 seq, guint8 *status,
              GBytes **result)
{
  if (h->sock != NULL)
    {
      g_autoptr(GByteArray) out = g_byte_array_new ();
      st_sim_socket_receive (h->sock, wire, n, out);
      return host_take (h, out->data, out->len, op, seq, status, result);
    }
  else
    {
      gint64 deadline = g_get_monotonic_time () + (gint64) h->timeout_ms * 1000;
      gsize done = 0;
      while (done < n)
        {
          ssize_t w = write (h->fd, wire + done, n - done);
          g_assert_cmpint (w, >, 0);
          done += (gsize) w;
        }
      for (;;)
        {
          gint64 left = (deadline - g_get_monotonic_time ()) / 1000;
          struct pollfd p = { .fd = h->fd, .events = POLLIN };
          guint8 buf[4096];
          ssize_t r;
          if (left <= 0)
            return FALSE;
          if (poll (&p, 1, (int) left) <= 0)
            continue;
          r = read (h->fd, buf, sizeof buf);
          if (r <= 0)
            continue;
          if (host_take (h, buf, (gsize) r, op, seq, status, result))
            return TRUE;
        }
    }
}

/* Sends a request (a new seq), retrying the identical bytes; returns the
 * status or NO_RESPONSE. */
static guint8
host_request (Host *h, guint8 op, const void *payload, gsize len, GBytes **result)
{
  guint8 wire[ST_FRAME_MAX_WIRE];
  guint16 seq = h->seq++;
  gsize n = st_frame_encode (op, seq, payload, (guint16) len, wire, sizeof wire);
  guint8 status = NO_RESPONSE;

  g_assert_cmpuint (n, >, 0);
  if (result != NULL)
    *result = NULL;
  for (guint attempt = 0; attempt <= h->retries; attempt++)
    {
      if (host_attempt (h, wire, n, op, seq, &status, result))
        return status;
      h->n_retries++;
    }
  return NO_RESPONSE;
}

typedef struct {
  guint8 uid[32];
  gsize uid_len;
  gchar *uid_hex;
  gchar *model;
  guint8 algorithms;
  guint8 state;
  guint max_payload;
} Hello;

static void
hello_clear (Hello *hl)
{
  g_free (hl->uid_hex);
  g_free (hl->model);
  memset (hl, 0, sizeof *hl);
}

static guint8
host_hello (Host *h, Hello *hl)
{
  g_autoptr(GBytes) r = NULL;
  guint8 st = host_request (h, ST_AGENT_OP_HELLO, NULL, 0, &r);
  gsize n = 0;
  const guint8 *d;

  memset (hl, 0, sizeof *hl);
  if (st != ST_AGENT_RC_OK)
    return st;
  d = g_bytes_get_data (r, &n);
  for (gsize i = 0; i < n; i += 2u + d[i + 1])
    {
      g_assert_cmpuint (i + 2, <=, n);
      g_assert_cmpuint (i + 2u + d[i + 1], <=, n);
      switch (d[i])
        {
        case ST_AGENT_TLV_UID:
          hl->uid_len = d[i + 1];
          memcpy (hl->uid, d + i + 2, hl->uid_len);
          hl->uid_hex = st_hex_encode (hl->uid, hl->uid_len);
          break;
        case ST_AGENT_TLV_MODEL:
          hl->model = g_strndup ((const char *) d + i + 2, d[i + 1]);
          break;
        case ST_AGENT_TLV_ALGORITHMS:
          hl->algorithms = d[i + 2];
          break;
        case ST_AGENT_TLV_STATE:
          hl->state = d[i + 2];
          break;
        case ST_AGENT_TLV_MAX_PAYLOAD:
          hl->max_payload = d[i + 2] | (d[i + 3] << 8);
          break;
        default:
          break;
        }
    }
  g_assert_nonnull (hl->uid_hex);
  g_assert_nonnull (hl->model);
  return st;
}

static guint8
host_chunks (Host *h, guint8 op, guint8 a, GBytes *data, gsize chunk)
{
  gsize len = 0, off = 0;
  const guint8 *d = g_bytes_get_data (data, &len);
  do
    {
      gsize n = MIN (chunk, len - off);
      g_autofree guint8 *p = g_malloc (5 + n);
      guint8 st;
      p[0] = a;
      p[1] = (guint8) off;
      p[2] = (guint8) (off >> 8);
      p[3] = (guint8) len;
      p[4] = (guint8) (len >> 8);
      memcpy (p + 5, d + off, n);
      st = host_request (h, op, p, 5 + n, NULL);
      if (st != ST_AGENT_RC_OK)
        return st;
      off += n;
    }
  while (off < len);
  return ST_AGENT_RC_OK;
}

static GBytes *
host_read_slot (Host *h, guint8 slot)
{
  g_autoptr(GByteArray) all = g_byte_array_new ();
  guint total = 0;
  do
    {
      guint8 p[5] = { slot, (guint8) all->len, (guint8) (all->len >> 8), 0x00, 0x02 };
      g_autoptr(GBytes) r = NULL;
      gsize n = 0;
      const guint8 *d;
      if (host_request (h, ST_AGENT_OP_READ, p, sizeof p, &r) != ST_AGENT_RC_OK)
        return NULL;
      d = g_bytes_get_data (r, &n);
      g_assert_cmpuint (n, >=, 2);
      total = d[0] | (d[1] << 8);
      g_assert_cmpuint (n - 2, <=, 512);
      if (all->len < total)
        g_assert_cmpuint (n, >, 2);
      g_byte_array_append (all, d + 2, (guint) (n - 2));
    }
  while (all->len < total);
  return g_byte_array_free_to_bytes (g_steal_pointer (&all));
}

/* ---- crypto helpers --------------------------------------------------- */

typedef struct {
  EVP_PKEY *key;
  X509 *cert;
} TestCa;

static TestCa ca;

static void
ca_ensure (void)
{
  g_autoptr(X509_NAME) name = X509_NAME_new ();
  if (ca.key != NULL)
    return;
  ca.key = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-256");
  ca.cert = X509_new ();
  g_assert_nonnull (ca.key);
  X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_UTF8, (const unsigned char *) "Test Devsim CA", -1, -1, 0);
  g_assert_cmpint (X509_set_version (ca.cert, X509_VERSION_3), ==, 1);
  ASN1_INTEGER_set (X509_get_serialNumber (ca.cert), 1);
  X509_set_subject_name (ca.cert, name);
  X509_set_issuer_name (ca.cert, name);
  X509_gmtime_adj (X509_getm_notBefore (ca.cert), 0);
  X509_gmtime_adj (X509_getm_notAfter (ca.cert), 86400);
  X509_set_pubkey (ca.cert, ca.key);
  g_assert_cmpint (X509_sign (ca.cert, ca.key, EVP_sha256 ()), >, 0);
}

static GBytes *
der_of_cert (X509 *x)
{
  unsigned char *der = NULL;
  int n = i2d_X509 (x, &der);
  GBytes *b;
  g_assert_cmpint (n, >, 0);
  b = g_bytes_new (der, (gsize) n);
  OPENSSL_free (der);
  return b;
}

/* Parses a CSR strictly: the whole buffer must be consumed. */
static X509_REQ *
csr_parse (GBytes *csr, gboolean *whole)
{
  gsize n = 0;
  const unsigned char *d = g_bytes_get_data (csr, &n);
  const unsigned char *p = d;
  X509_REQ *req = d2i_X509_REQ (NULL, &p, (long) n);
  g_assert_nonnull (req);
  *whole = (p == d + n);
  return req;
}

static gchar *
name_cn (const X509_NAME *name)
{
  char buf[256];
  if (X509_NAME_get_text_by_NID (name, NID_commonName, buf, sizeof buf) < 0)
    return NULL;
  return g_strdup (buf);
}

static gchar *
key_group (EVP_PKEY *key)
{
  char buf[64];
  size_t n = 0;
  if (!EVP_PKEY_is_a (key, "EC"))
    return g_strdup (EVP_PKEY_get0_type_name (key));
  g_assert_cmpint (EVP_PKEY_get_utf8_string_param (key, OSSL_PKEY_PARAM_GROUP_NAME, buf, sizeof buf, &n), ==, 1);
  return g_strdup (buf);
}

static const char *
alg_group (guint8 alg)
{
  return alg == ST_ALG_EC_P256 ? "prime256v1" : alg == ST_ALG_EC_P384 ? "secp384r1" : "ED25519";
}

static GBytes *
issue (X509_REQ *req, const char *cn)
{
  g_autoptr(X509) x = X509_new ();
  g_autoptr(X509_NAME) name = X509_NAME_new ();
  ca_ensure ();
  X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_UTF8, (const unsigned char *) cn, -1, -1, 0);
  X509_set_version (x, X509_VERSION_3);
  ASN1_INTEGER_set (X509_get_serialNumber (x), g_random_int_range (2, G_MAXINT32));
  X509_set_subject_name (x, name);
  X509_set_issuer_name (x, X509_get_subject_name (ca.cert));
  X509_gmtime_adj (X509_getm_notBefore (x), 0);
  X509_gmtime_adj (X509_getm_notAfter (x), 86400);
  g_assert_cmpint (X509_set_pubkey (x, X509_REQ_get0_pubkey (req)), ==, 1);
  g_assert_cmpint (X509_sign (x, ca.key, EVP_sha256 ()), >, 0);
  return der_of_cert (x);
}

static gboolean
pop_verify (EVP_PKEY *pub, const guint8 challenge[32], GBytes *sig)
{
  guint8 msg[48];
  g_autoptr(EVP_MD_CTX) ctx = EVP_MD_CTX_new ();
  const EVP_MD *md = NULL;
  g_autofree gchar *group = key_group (pub);
  gsize n = 0;
  const guint8 *s = g_bytes_get_data (sig, &n);
  int rc;

  memcpy (msg, "PROVISION-POP-V1", 16);
  memcpy (msg + 16, challenge, 32);
  if (g_strcmp0 (group, "secp384r1") == 0)
    md = EVP_sha384 ();
  else if (EVP_PKEY_is_a (pub, "EC"))
    md = EVP_sha256 ();
  g_assert_cmpint (EVP_DigestVerifyInit (ctx, NULL, md, NULL, pub), ==, 1);
  rc = EVP_DigestVerify (ctx, s, n, msg, sizeof msg);
  st_error_clear_openssl ();
  return rc == 1;
}

static guint8
host_sign (Host *h, guint8 challenge[32], GBytes **sig)
{
  g_assert_cmpint (RAND_bytes (challenge, 32), ==, 1);
  return host_request (h, ST_AGENT_OP_SIGN, challenge, 32, sig);
}

static StSimSocket *
sock_new (guint32 faults, guint units, guint delay_ms, const char *state_file)
{
  StSimSocketConfig c = { 0 };
  g_autoptr(GError) error = NULL;
  StSimSocket *s;
  c.units = units;
  c.seed = 1234;
  c.faults = faults;
  c.swap_delay_ms = delay_ms;
  c.state_file = state_file;
  s = st_sim_socket_new (&c, &error);
  g_assert_no_error (error);
  return s;
}

/* The station's sequence, device-generated key; returns the uid hex. */
static gchar *
provision (Host *h, guint8 alg, gboolean lock, GBytes **cert_out)
{
  Hello hl;
  g_autoptr(GBytes) csr = NULL;
  g_autoptr(GBytes) cert = NULL;
  g_autoptr(GBytes) chain = NULL;
  g_autoptr(GBytes) sig = NULL;
  g_autoptr(GBytes) back1 = NULL;
  g_autoptr(GBytes) back2 = NULL;
  g_autoptr(X509_REQ) req = NULL;
  g_autofree gchar *cn = NULL;
  g_autofree gchar *want_cn = NULL;
  g_autofree gchar *group = NULL;
  gchar *uid;
  gboolean whole = FALSE;
  guint8 challenge[32];
  guint8 flags = lock ? 1 : 0;

  ca_ensure ();
  g_assert_cmpuint (host_hello (h, &hl), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (hl.uid_len, ==, 12);
  g_assert_cmpstr (hl.model, ==, "SIM-DEV-1");
  g_assert_cmpuint (hl.algorithms, ==, 0x07);
  g_assert_cmpuint (hl.state, ==, ST_AGENT_STATE_BLANK);
  g_assert_cmpuint (hl.max_payload, ==, 2048);
  uid = g_strdup (hl.uid_hex);

  g_assert_cmpuint (host_request (h, ST_AGENT_OP_KEYGEN, &alg, 1, &csr), ==, ST_AGENT_RC_OK);
  req = csr_parse (csr, &whole);
  g_assert_true (whole);
  g_assert_cmpint (X509_REQ_verify (req, X509_REQ_get0_pubkey (req)), ==, 1);
  cn = name_cn (X509_REQ_get_subject_name (req));
  want_cn = g_strdup_printf ("sim-%s", uid);
  g_assert_cmpstr (cn, ==, want_cn);
  group = key_group (X509_REQ_get0_pubkey (req));
  g_assert_cmpstr (group, ==, alg_group (alg));

  cert = issue (req, uid);
  chain = der_of_cert (ca.cert);
  g_assert_cmpuint (host_chunks (h, ST_AGENT_OP_WRITE, 1, cert, 200), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (host_chunks (h, ST_AGENT_OP_WRITE, 2, chain, 2000), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (host_sign (h, challenge, &sig), ==, ST_AGENT_RC_OK);
  g_assert_true (pop_verify (X509_REQ_get0_pubkey (req), challenge, sig));
  back1 = host_read_slot (h, 1);
  back2 = host_read_slot (h, 2);
  g_assert_true (g_bytes_equal (back1, cert));
  g_assert_true (g_bytes_equal (back2, chain));
  g_assert_cmpuint (host_request (h, ST_AGENT_OP_COMMIT, &flags, 1, NULL), ==, ST_AGENT_RC_OK);
  hello_clear (&hl);
  if (cert_out != NULL)
    *cert_out = g_steal_pointer (&cert);
  return uid;
}

/* ---- in-process tests ------------------------------------------------- */

static void
test_provision (gconstpointer data)
{
  guint8 alg = (guint8) GPOINTER_TO_UINT (data);
  g_autoptr(StSimSocket) s = sock_new (0, 0, 0, NULL);
  Host h;
  Hello hl;
  g_autofree gchar *uid = NULL;
  g_autofree gchar *uid0 = NULL;
  guint keygens = 0, keys = 0;
  guint8 state = 0xFF;

  host_init_sock (&h, s);
  uid = provision (&h, alg, TRUE, NULL);
  /* Locked now: KEYGEN, WRITE refused. */
  g_assert_cmpuint (host_request (&h, ST_AGENT_OP_KEYGEN, &alg, 1, NULL), ==, ST_AGENT_RC_LOCKED);
  /* The HELLO after a finished unit: still the old device, locked. */
  g_assert_cmpuint (host_hello (&h, &hl), ==, ST_AGENT_RC_OK);
  g_assert_cmpstr (hl.uid_hex, ==, uid);
  g_assert_cmpuint (hl.state, ==, ST_AGENT_STATE_LOCKED);
  hello_clear (&hl);
  /* Swap delay 0: the next HELLO sees the next device. */
  g_assert_cmpuint (host_hello (&h, &hl), ==, ST_AGENT_RC_OK);
  g_assert_cmpstr (hl.uid_hex, !=, uid);
  g_assert_cmpuint (hl.state, ==, ST_AGENT_STATE_BLANK);
  hello_clear (&hl);
  g_assert_cmpuint (st_sim_socket_get_n_presented (s), ==, 2);
  g_assert_true (st_sim_socket_get_device (s, 0, &uid0, &keygens, &keys, &state));
  g_assert_cmpstr (uid0, ==, uid);
  g_assert_cmpuint (keygens, ==, 2);   /* the refused one was executed too */
  g_assert_cmpuint (keys, ==, 1);
  g_assert_cmpuint (state, ==, ST_AGENT_STATE_LOCKED);
  g_assert_false (st_sim_socket_get_device (s, 2, NULL, NULL, NULL, NULL));
  g_assert_cmpuint (h.n_retries, ==, 0);
}

static GBytes *
pkcs8_of (EVP_PKEY *key)
{
  g_autoptr(PKCS8_PRIV_KEY_INFO) p8 = EVP_PKEY2PKCS8 (key);
  unsigned char *der = NULL;
  int n = i2d_PKCS8_PRIV_KEY_INFO (p8, &der);
  GBytes *b;
  g_assert_cmpint (n, >, 0);
  b = g_bytes_new (der, (gsize) n);
  OPENSSL_clear_free (der, (size_t) n);
  return b;
}

static void
test_put_key (void)
{
  g_autoptr(StSimSocket) s = sock_new (0, 0, 0, NULL);
  g_autoptr(EVP_PKEY) ed = EVP_PKEY_Q_keygen (NULL, NULL, "ED25519");
  g_autoptr(EVP_PKEY) p384 = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-384");
  g_autoptr(GBytes) ed_der = pkcs8_of (ed);
  g_autoptr(GBytes) p384_der = pkcs8_of (p384);
  g_autoptr(GBytes) sig = NULL;
  g_autoptr(GByteArray) trailing = g_byte_array_new ();
  g_autoptr(GBytes) trailing_b = NULL;
  guint8 challenge[32];
  Host h;
  Hello hl;

  host_init_sock (&h, s);
  /* The key must be of the declared algorithm and parse exactly. */
  g_assert_cmpuint (host_chunks (&h, ST_AGENT_OP_PUT_KEY, ST_ALG_EC_P256, ed_der, 20), ==, ST_AGENT_RC_BAD_REQUEST);
  g_assert_cmpuint (host_chunks (&h, ST_AGENT_OP_PUT_KEY, ST_ALG_EC_P256, p384_der, 64), ==, ST_AGENT_RC_BAD_REQUEST);
  g_byte_array_append (trailing, g_bytes_get_data (ed_der, NULL), (guint) g_bytes_get_size (ed_der));
  g_byte_array_append (trailing, (const guint8 *) "\x00", 1);
  trailing_b = g_byte_array_free_to_bytes (g_steal_pointer (&trailing));
  g_assert_cmpuint (host_chunks (&h, ST_AGENT_OP_PUT_KEY, ST_ALG_ED25519, trailing_b, 64), ==, ST_AGENT_RC_BAD_REQUEST);
  g_assert_cmpuint (host_hello (&h, &hl), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (hl.state, ==, ST_AGENT_STATE_BLANK);
  hello_clear (&hl);

  g_assert_cmpuint (host_chunks (&h, ST_AGENT_OP_PUT_KEY, ST_ALG_ED25519, ed_der, 20), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (host_sign (&h, challenge, &sig), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (g_bytes_get_size (sig), ==, 64);
  g_assert_true (pop_verify (ed, challenge, sig));
  g_clear_pointer (&sig, g_bytes_unref);
  g_assert_cmpuint (host_chunks (&h, ST_AGENT_OP_PUT_KEY, ST_ALG_EC_P384, p384_der, 50), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (host_sign (&h, challenge, &sig), ==, ST_AGENT_RC_OK);
  g_assert_true (pop_verify (p384, challenge, sig));
  g_assert_cmpuint (host_hello (&h, &hl), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (hl.state, ==, ST_AGENT_STATE_KEY_PRESENT);
  hello_clear (&hl);
}

static X509_REQ *
keygen_csr (guint32 faults, guint8 alg, gboolean *whole, gboolean *sig_ok)
{
  g_autoptr(StSimSocket) s = sock_new (faults, 0, 0, NULL);
  g_autoptr(GBytes) csr = NULL;
  X509_REQ *req;
  Host h;

  host_init_sock (&h, s);
  g_assert_cmpuint (host_request (&h, ST_AGENT_OP_KEYGEN, &alg, 1, &csr), ==, ST_AGENT_RC_OK);
  req = csr_parse (csr, whole);
  *sig_ok = X509_REQ_verify (req, X509_REQ_get0_pubkey (req)) == 1;
  st_error_clear_openssl ();
  return req;
}

static void
test_faults_csr (void)
{
  gboolean whole, sig_ok;
  g_autofree gchar *group = NULL;

  /* Control: a clean CSR. */
  {
    g_autoptr(X509_REQ) req = keygen_csr (0, ST_ALG_EC_P256, &whole, &sig_ok);
    g_assert_true (whole && sig_ok);
  }
  {
    g_autoptr(X509_REQ) req = keygen_csr (ST_SIM_FAULT_BAD_CSR_SIG, ST_ALG_EC_P256, &whole, &sig_ok);
    g_assert_true (whole);
    g_assert_false (sig_ok);
  }
  {
    g_autoptr(X509_REQ) req = keygen_csr (ST_SIM_FAULT_BAD_CSR_SIG, ST_ALG_ED25519, &whole, &sig_ok);
    g_assert_false (sig_ok);
  }
  {
    g_autoptr(X509_REQ) req = keygen_csr (ST_SIM_FAULT_CSR_TRAILING, ST_ALG_EC_P384, &whole, &sig_ok);
    g_assert_false (whole);
    g_assert_true (sig_ok);
  }
  {
    g_autoptr(X509_REQ) req = keygen_csr (ST_SIM_FAULT_WRONG_CURVE, ST_ALG_EC_P256, &whole, &sig_ok);
    g_assert_true (whole && sig_ok);
    group = key_group (X509_REQ_get0_pubkey (req));
    g_assert_cmpstr (group, ==, "secp256k1");
    g_clear_pointer (&group, g_free);
  }
  {
    g_autoptr(X509_REQ) req = keygen_csr (ST_SIM_FAULT_WRONG_CURVE, ST_ALG_ED25519, &whole, &sig_ok);
    group = key_group (X509_REQ_get0_pubkey (req));
    g_assert_cmpstr (group, !=, "ED25519");
    g_clear_pointer (&group, g_free);
  }
  {
    g_autoptr(X509_REQ) req = keygen_csr (ST_SIM_FAULT_CSR_GREEDY, ST_ALG_EC_P256, &whole, &sig_ok);
    STACK_OF (X509_EXTENSION) *exts = X509_REQ_get_extensions (req);
    g_autofree gchar *cn = name_cn (X509_REQ_get_subject_name (req));
    BASIC_CONSTRAINTS *bc = NULL;
    GENERAL_NAMES *san = NULL;
    g_assert_true (whole && sig_ok);
    g_assert_false (g_str_has_prefix (cn, "sim-"));
    g_assert_nonnull (exts);
    bc = X509V3_get_d2i (exts, NID_basic_constraints, NULL, NULL);
    san = X509V3_get_d2i (exts, NID_subject_alt_name, NULL, NULL);
    g_assert_nonnull (bc);
    g_assert_true (bc->ca);
    g_assert_nonnull (san);
    g_assert_cmpint (sk_GENERAL_NAME_num (san), >=, 2);
    BASIC_CONSTRAINTS_free (bc);
    GENERAL_NAMES_free (san);
    sk_X509_EXTENSION_pop_free (exts, X509_EXTENSION_free);
  }
}

static void
test_fault_pop_other_key (void)
{
  g_autoptr(StSimSocket) s = sock_new (ST_SIM_FAULT_POP_OTHER_KEY, 0, 0, NULL);
  g_autoptr(StSimSocket) good = sock_new (0, 0, 0, NULL);
  for (int round = 0; round < 2; round++)
    {
      g_autoptr(GBytes) csr = NULL;
      g_autoptr(GBytes) sig = NULL;
      g_autoptr(X509_REQ) req = NULL;
      guint8 alg = ST_ALG_EC_P256, challenge[32];
      gboolean whole;
      Host h;

      host_init_sock (&h, round == 0 ? s : good);
      g_assert_cmpuint (host_request (&h, ST_AGENT_OP_KEYGEN, &alg, 1, &csr), ==, ST_AGENT_RC_OK);
      req = csr_parse (csr, &whole);
      g_assert_cmpuint (host_sign (&h, challenge, &sig), ==, ST_AGENT_RC_OK);
      /* A well-formed signature, by the wrong key (control: the right one). */
      g_assert_cmpint (pop_verify (X509_REQ_get0_pubkey (req), challenge, sig), ==, round == 1);
    }
}

static void
test_fault_readback (void)
{
  g_autoptr(StSimSocket) s = sock_new (ST_SIM_FAULT_READBACK_DIFFERS, 0, 0, NULL);
  g_autoptr(GBytes) data = g_bytes_new_static ("0123456789abcdefghij", 20);
  g_autoptr(GBytes) back = NULL;
  gsize n = 0, diffs = 0;
  const guint8 *b, *d;
  guint8 alg = 1;
  Host h;

  host_init_sock (&h, s);
  g_assert_cmpuint (host_request (&h, ST_AGENT_OP_KEYGEN, &alg, 1, NULL), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (host_chunks (&h, ST_AGENT_OP_WRITE, 1, data, 20), ==, ST_AGENT_RC_OK);
  back = host_read_slot (&h, 1);
  b = g_bytes_get_data (back, &n);
  d = g_bytes_get_data (data, NULL);
  g_assert_cmpuint (n, ==, 20);
  for (gsize i = 0; i < n; i++)
    diffs += b[i] != d[i];
  g_assert_cmpuint (diffs, ==, 1);
}

static void
test_fault_commit_storage (void)
{
  g_autoptr(StSimSocket) s = sock_new (ST_SIM_FAULT_COMMIT_STORAGE, 0, 0, NULL);
  g_autoptr(GBytes) data = g_bytes_new_static ("certificate", 11);
  guint8 alg = 3;
  Hello hl;
  Host h;
  g_autofree gchar *uid = NULL;

  host_init_sock (&h, s);
  g_assert_cmpuint (host_request (&h, ST_AGENT_OP_KEYGEN, &alg, 1, NULL), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (host_chunks (&h, ST_AGENT_OP_WRITE, 1, data, 20), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (host_request (&h, ST_AGENT_OP_COMMIT, "\x01", 1, NULL), ==, ST_AGENT_RC_STORAGE);
  /* Not finished: HELLOs keep showing the same device, key uncommitted. */
  for (int i = 0; i < 3; i++)
    {
      g_assert_cmpuint (host_hello (&h, &hl), ==, ST_AGENT_RC_OK);
      g_assert_cmpuint (hl.state, ==, ST_AGENT_STATE_KEY_PRESENT);
      if (uid == NULL)
        uid = g_strdup (hl.uid_hex);
      g_assert_cmpstr (hl.uid_hex, ==, uid);
      hello_clear (&hl);
    }
  /* ABORT finishes the unit: one more HELLO from it, then the next. */
  g_assert_cmpuint (host_request (&h, ST_AGENT_OP_ABORT, NULL, 0, NULL), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (host_hello (&h, &hl), ==, ST_AGENT_RC_OK);
  g_assert_cmpstr (hl.uid_hex, ==, uid);
  g_assert_cmpuint (hl.state, ==, ST_AGENT_STATE_BLANK);
  hello_clear (&hl);
  g_assert_cmpuint (host_hello (&h, &hl), ==, ST_AGENT_RC_OK);
  g_assert_cmpstr (hl.uid_hex, !=, uid);
  hello_clear (&hl);
}

static void
test_fault_locked (void)
{
  StSimSocketConfig c = { .seed = 5, .faults = ST_SIM_FAULT_LOCKED, .fault_unit = 1 };
  g_autoptr(GError) error = NULL;
  g_autoptr(StSimSocket) s = st_sim_socket_new (&c, &error);
  g_autoptr(GBytes) cert = NULL;
  g_autoptr(GBytes) sig = NULL;
  g_autoptr(X509) x = NULL;
  g_autofree gchar *cn = NULL;
  g_autofree gchar *want = NULL;
  g_autofree gchar *uid = NULL;
  const unsigned char *p;
  guint8 alg = 1, challenge[32];
  Hello hl;
  Host h;

  g_assert_no_error (error);
  host_init_sock (&h, s);
  g_assert_cmpuint (host_hello (&h, &hl), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (hl.state, ==, ST_AGENT_STATE_LOCKED);
  uid = g_strdup (hl.uid_hex);
  hello_clear (&hl);
  cert = host_read_slot (&h, 1);
  p = g_bytes_get_data (cert, NULL);
  x = d2i_X509 (NULL, &p, (long) g_bytes_get_size (cert));
  g_assert_nonnull (x);
  cn = name_cn (X509_get_subject_name (x));
  want = g_strdup_printf ("sim-%s", uid);
  g_assert_cmpstr (cn, ==, want);
  g_assert_cmpuint (host_sign (&h, challenge, &sig), ==, ST_AGENT_RC_OK);
  g_assert_true (pop_verify (X509_get0_pubkey (x), challenge, sig));
  g_assert_cmpuint (host_request (&h, ST_AGENT_OP_KEYGEN, &alg, 1, NULL), ==, ST_AGENT_RC_LOCKED);
  g_assert_cmpuint (host_chunks (&h, ST_AGENT_OP_WRITE, 2, cert, 500), ==, ST_AGENT_RC_LOCKED);
  /* Finished by its first HELLO: the next HELLO is its last. */
  g_assert_cmpuint (host_hello (&h, &hl), ==, ST_AGENT_RC_OK);
  g_assert_cmpstr (hl.uid_hex, ==, uid);
  hello_clear (&hl);
  /* fault_unit = 1: the second device is a normal blank one. */
  g_assert_cmpuint (host_hello (&h, &hl), ==, ST_AGENT_RC_OK);
  g_assert_cmpstr (hl.uid_hex, !=, uid);
  g_assert_cmpuint (hl.state, ==, ST_AGENT_STATE_BLANK);
  hello_clear (&hl);
}

static void
test_fault_garbage (void)
{
  g_autoptr(StSimSocket) s = sock_new (ST_SIM_FAULT_GARBAGE, 0, 0, NULL);
  g_autoptr(GByteArray) out = g_byte_array_new ();
  guint8 wire[32];
  gsize n = st_frame_encode (ST_AGENT_OP_HELLO, 1, NULL, 0, wire, sizeof wire);
  Host h;

  st_sim_socket_receive (s, wire, n, out);
  g_assert_cmpuint (out->len, >=, ST_FRAME_MAX_WIRE);
  g_assert_null (memchr (out->data, 0, out->len));
  /* It keeps talking, with or without input; never a delimiter. */
  for (int i = 0; i < 5; i++)
    {
      guint before = out->len;
      st_sim_socket_receive (s, NULL, 0, out);
      g_assert_cmpuint (out->len, >, before);
    }
  g_assert_null (memchr (out->data, 0, out->len));
  host_init_sock (&h, s);
  h.retries = 3;
  g_assert_cmpuint (host_request (&h, ST_AGENT_OP_HELLO, NULL, 0, NULL), ==, NO_RESPONSE);
}

/* HELLO and KEYGEN on the device in the socket, both answered OK; returns
 * its uid hex, and the CSR when asked. */
static gchar *
host_hello_keygen (Host *h, guint8 alg, GBytes **csr)
{
  Hello hl;
  g_assert_cmpuint (host_hello (h, &hl), ==, ST_AGENT_RC_OK);
  gchar *uid = g_strdup (hl.uid_hex);
  hello_clear (&hl);
  g_assert_cmpuint (host_request (h, ST_AGENT_OP_KEYGEN, &alg, 1, csr), ==, ST_AGENT_RC_OK);
  return uid;
}

static void
test_fault_unplug (void)
{
  g_autoptr(StSimSocket) s = sock_new (ST_SIM_FAULT_UNPLUG_WRITE, 0, 60, NULL);
  g_autoptr(GBytes) cert = g_bytes_new_static ("0123456789", 10);
  guint8 alg = 1;
  g_autofree gchar *uid = NULL;
  Hello hl;
  Host h;

  host_init_sock (&h, s);
  h.retries = 2;
  uid = host_hello_keygen (&h, alg, NULL);
  g_assert_cmpuint (host_chunks (&h, ST_AGENT_OP_WRITE, 2, cert, 5), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (host_chunks (&h, ST_AGENT_OP_WRITE, 1, cert, 5), ==, NO_RESPONSE);
  g_assert_cmpuint (host_hello (&h, &hl), ==, NO_RESPONSE);
  g_usleep (100 * 1000);
  g_assert_cmpuint (host_hello (&h, &hl), ==, ST_AGENT_RC_OK);
  g_assert_cmpstr (hl.uid_hex, !=, uid);
  g_assert_cmpuint (hl.state, ==, ST_AGENT_STATE_BLANK);
  hello_clear (&hl);
  /* The fault applies to every device: the second one is pulled too. */
  g_assert_cmpuint (host_request (&h, ST_AGENT_OP_KEYGEN, &alg, 1, NULL), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (host_chunks (&h, ST_AGENT_OP_WRITE, 1, cert, 5), ==, NO_RESPONSE);
  g_assert_cmpuint (st_sim_socket_get_n_presented (s), ==, 2);
}

/* silent-after-commit: stores at COMMIT, never answers, leaves the socket.
 * silent-at-confirm: stores at COMMIT and answers OK, then leaves before the
 * next HELLO. Either way a later socket with present = 1 puts it back as
 * committed, and it proves its key. */
static void
test_fault_silent (gconstpointer data)
{
  StSimFault fault = GPOINTER_TO_UINT (data);
  g_autofree gchar *dir = st_test_tmpdir ("st-devsim");
  g_autofree gchar *path = g_build_filename (dir, "state.json", NULL);
  g_autoptr(GBytes) cert = g_bytes_new_static ("certificate", 11);
  g_autoptr(GBytes) csr = NULL;
  g_autoptr(X509_REQ) req = NULL;
  g_autofree gchar *uid = NULL;
  guint8 alg = ST_ALG_EC_P256;
  guint8 state = 0xFF;
  guint keys = 0;
  gboolean whole = FALSE;
  Hello hl;

  {
    g_autoptr(StSimSocket) s = sock_new (fault, 2, 60, path);
    Host h;
    host_init_sock (&h, s);
    h.retries = 2;
    uid = host_hello_keygen (&h, alg, &csr);
    req = csr_parse (csr, &whole);
    g_assert_true (whole);
    g_assert_cmpuint (host_chunks (&h, ST_AGENT_OP_WRITE, 1, cert, 5), ==, ST_AGENT_RC_OK);
    if (fault == ST_SIM_FAULT_SILENT_AFTER_COMMIT)
      {
        /* COMMIT executed, its answer and the retries' never come. */
        g_assert_cmpuint (host_request (&h, ST_AGENT_OP_COMMIT, "\x00", 1, NULL), ==, NO_RESPONSE);
        g_assert_cmpuint (h.n_retries, ==, 3);
      }
    else
      {
        /* COMMIT answered; the confirming HELLO and its retries are not. */
        g_assert_cmpuint (host_request (&h, ST_AGENT_OP_COMMIT, "\x00", 1, NULL), ==, ST_AGENT_RC_OK);
        g_assert_cmpuint (h.n_retries, ==, 0);
      }
    g_assert_cmpuint (host_hello (&h, &hl), ==, NO_RESPONSE);
    g_assert_true (st_sim_socket_get_device (s, 0, NULL, NULL, &keys, &state));
    g_assert_cmpuint (keys, ==, 1);
    g_assert_cmpuint (state, ==, ST_AGENT_STATE_PROVISIONED);
    /* The operator pulled it: the next device after the swap delay. */
    g_usleep (100 * 1000);
    g_assert_cmpuint (host_hello (&h, &hl), ==, ST_AGENT_RC_OK);
    g_assert_cmpstr (hl.uid_hex, !=, uid);
    g_assert_cmpuint (hl.state, ==, ST_AGENT_STATE_BLANK);
    hello_clear (&hl);
    g_assert_cmpuint (st_sim_socket_get_n_presented (s), ==, 2);
  }

  /* Put back later: the same device, committed, answering again. */
  {
    StSimSocketConfig c = { .seed = 1234, .state_file = path, .present = 1 };
    g_autoptr(GError) error = NULL;
    g_autoptr(StSimSocket) s = st_sim_socket_new (&c, &error);
    g_autoptr(GBytes) back = NULL;
    g_autoptr(GBytes) sig = NULL;
    guint8 challenge[32];
    Host h;

    g_autoptr(GByteArray) out = g_byte_array_new ();
    g_assert_no_error (error);
    host_init_sock (&h, s);
    /* The station opens its port afresh (a lone 0x00): its HELLO does not
     * end the unit the device finished before it was pulled. */
    st_sim_socket_receive (s, (const guint8 *) "", 1, out);
    g_assert_cmpuint (out->len, ==, 0);
    g_assert_cmpuint (host_hello (&h, &hl), ==, ST_AGENT_RC_OK);
    g_assert_cmpstr (hl.uid_hex, ==, uid);
    g_assert_cmpuint (hl.state, ==, ST_AGENT_STATE_PROVISIONED);
    hello_clear (&hl);
    back = host_read_slot (&h, 1);
    g_assert_true (g_bytes_equal (back, cert));
    g_assert_cmpuint (host_sign (&h, challenge, &sig), ==, ST_AGENT_RC_OK);
    g_assert_true (pop_verify (X509_REQ_get0_pubkey (req), challenge, sig));
    g_assert_cmpuint (h.n_retries, ==, 0);
  }
  g_unlink (path);
  g_rmdir (dir);
}

static void
test_fault_noise_drop (void)
{
  g_autoptr(StSimSocket) s = sock_new (ST_SIM_FAULT_NOISE | ST_SIM_FAULT_DROP, 0, 0, NULL);
  Host h;
  guint keygens = 0, keys = 0;

  host_init_sock (&h, s);
  h.retries = 3;
  for (int unit = 0; unit < 3; unit++)
    {
      g_autofree gchar *uid = provision (&h, ST_ALG_EC_P256, FALSE, NULL);
      Hello hl;
      g_assert_cmpuint (host_hello (&h, &hl), ==, ST_AGENT_RC_OK);
      g_assert_cmpstr (hl.uid_hex, ==, uid);
      hello_clear (&hl);
      g_assert_true (st_sim_socket_get_device (s, (guint) unit, NULL, &keygens, &keys, NULL));
      /* Retried KEYGENs were answered from the stored response. */
      g_assert_cmpuint (keygens, ==, 1);
      g_assert_cmpuint (keys, ==, 1);
    }
  g_assert_cmpuint (h.n_retries, >, 0);
  g_assert_cmpuint (h.junk_bytes, >, 0);
}

static void
test_swap_and_units (void)
{
  g_autoptr(StSimSocket) s = sock_new (0, 2, 80, NULL);
  g_autofree gchar *uid1 = NULL;
  Hello hl;
  Host h;

  host_init_sock (&h, s);
  for (int unit = 0; unit < 2; unit++)
    {
      g_assert_cmpuint (host_hello (&h, &hl), ==, ST_AGENT_RC_OK);
      if (unit == 0)
        uid1 = g_strdup (hl.uid_hex);
      else
        g_assert_cmpstr (hl.uid_hex, !=, uid1);
      /* Requests other than HELLO after the unit finished: same device. */
      g_assert_cmpuint (host_request (&h, ST_AGENT_OP_ABORT, NULL, 0, NULL), ==, ST_AGENT_RC_OK);
      g_assert_cmpuint (host_request (&h, ST_AGENT_OP_ABORT, NULL, 0, NULL), ==, ST_AGENT_RC_OK);
      hello_clear (&hl);
      g_assert_cmpuint (host_hello (&h, &hl), ==, ST_AGENT_RC_OK);
      hello_clear (&hl);
      /* Empty socket during the swap delay. */
      g_assert_cmpuint (host_hello (&h, &hl), ==, NO_RESPONSE);
      g_usleep (120 * 1000);
    }
  /* After the last unit: empty for good. */
  g_assert_cmpuint (host_hello (&h, &hl), ==, NO_RESPONSE);
  g_assert_cmpuint (st_sim_socket_get_n_presented (s), ==, 2);
}

static void
test_seed_uids (void)
{
  guint32 seeds[] = { 1, 2, 1 };
  gchar *uids[3][2] = { { NULL } };
  for (int i = 0; i < 3; i++)
    {
      StSimSocketConfig c = { .seed = seeds[i] };
      g_autoptr(StSimSocket) s = st_sim_socket_new (&c, NULL);
      Host h;
      Hello hl;
      host_init_sock (&h, s);
      for (int d = 0; d < 2; d++)
        {
          g_assert_cmpuint (host_hello (&h, &hl), ==, ST_AGENT_RC_OK);
          uids[i][d] = g_strdup (hl.uid_hex);
          hello_clear (&hl);
          host_request (&h, ST_AGENT_OP_ABORT, NULL, 0, NULL);
          host_hello (&h, &hl);
          hello_clear (&hl);
        }
    }
  g_assert_cmpstr (uids[0][0], !=, uids[1][0]);
  g_assert_cmpstr (uids[0][0], !=, uids[0][1]);
  g_assert_cmpstr (uids[0][0], ==, uids[2][0]);
  g_assert_cmpstr (uids[0][1], ==, uids[2][1]);
  for (int i = 0; i < 3; i++)
    for (int d = 0; d < 2; d++)
      g_free (uids[i][d]);
}

static void
test_state_file (void)
{
  g_autofree gchar *dir = st_test_tmpdir ("st-devsim");
  g_autofree gchar *path = g_build_filename (dir, "state.json", NULL);
  g_autofree gchar *uid = NULL;
  g_autoptr(GBytes) cert = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonObject *dev;

  {
    g_autoptr(StSimSocket) s = sock_new (0, 0, 0, path);
    Host h;
    host_init_sock (&h, s);
    uid = provision (&h, ST_ALG_EC_P384, FALSE, &cert);
  }
  /* The file lists the device with its committed certificate. */
  g_assert_true (json_parser_load_from_file (parser, path, NULL));
  dev = json_array_get_object_element (
      json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)), "devices"), 0);
  g_assert_cmpstr (json_object_get_string_member (dev, "uid"), ==, uid);
  g_assert_cmpint (json_object_get_int_member (dev, "keygen_executed"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (dev, "keys_made"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (dev, "commits"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (dev, "state"), ==, 2);
  {
    gsize n = 0;
    g_autofree guchar *der = g_base64_decode (json_object_get_string_member (dev, "cert"), &n);
    g_assert_cmpmem (der, n, g_bytes_get_data (cert, NULL), g_bytes_get_size (cert));
  }

  /* A restarted simulator presents the same device in the same state. */
  {
    g_autoptr(StSimSocket) s = sock_new (0, 0, 0, path);
    g_autoptr(GBytes) back = NULL;
    g_autoptr(GBytes) sig = NULL;
    g_autoptr(X509) x = NULL;
    const unsigned char *p;
    guint8 challenge[32];
    guint keygens = 0;
    Hello hl;
    Host h;

    host_init_sock (&h, s);
    back = host_read_slot (&h, 1);
    g_assert_true (g_bytes_equal (back, cert));
    p = g_bytes_get_data (back, NULL);
    x = d2i_X509 (NULL, &p, (long) g_bytes_get_size (back));
    g_assert_cmpuint (host_sign (&h, challenge, &sig), ==, ST_AGENT_RC_OK);
    g_assert_true (pop_verify (X509_get0_pubkey (x), challenge, sig));
    g_assert_true (st_sim_socket_get_device (s, 0, NULL, &keygens, NULL, NULL));
    g_assert_cmpuint (keygens, ==, 1);
    /* The unit was finished before the restart, its final HELLO still to
     * come: this HELLO is its last, the next one sees the next device. */
    g_assert_cmpuint (host_hello (&h, &hl), ==, ST_AGENT_RC_OK);
    g_assert_cmpstr (hl.uid_hex, ==, uid);
    g_assert_cmpuint (hl.state, ==, ST_AGENT_STATE_PROVISIONED);
    hello_clear (&hl);
    g_assert_cmpuint (host_hello (&h, &hl), ==, ST_AGENT_RC_OK);
    g_assert_cmpstr (hl.uid_hex, !=, uid);
    hello_clear (&hl);
    g_assert_cmpuint (st_sim_socket_get_n_presented (s), ==, 2);
  }

  /* A damaged file is refused with a message naming it. */
  {
    StSimSocketConfig c = { .state_file = path };
    g_autoptr(GError) error = NULL;
    g_autoptr(StSimSocket) s = NULL;
    g_assert_true (g_file_set_contents (path, "{\"phase\":\"present\",\"devices\":[{\"uid\":\"zz\"}]}", -1, NULL));
    s = st_sim_socket_new (&c, &error);
    g_assert_null (s);
    g_assert_nonnull (error);
    g_assert_nonnull (strstr (error->message, path));
  }
  g_unlink (path);
  g_rmdir (dir);
}

static void
test_robust_garbage (void)
{
  g_autoptr(StSimSocket) s = sock_new (0, 0, 0, NULL);
  g_autoptr(GRand) r = g_rand_new_with_seed (31337);
  g_autoptr(GByteArray) out = g_byte_array_new ();
  g_autofree guint8 *junk = g_malloc (200000);
  Hello hl;
  Host h;

  for (gsize i = 0; i < 200000; i++)
    junk[i] = (guint8) g_rand_int_range (r, 0, 256);
  st_sim_socket_receive (s, junk, 200000, out);
  g_assert_cmpuint (out->len, ==, 0);
  st_sim_socket_receive (s, (const guint8 *) "", 1, out);
  host_init_sock (&h, s);
  g_assert_cmpuint (host_hello (&h, &hl), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (hl.state, ==, ST_AGENT_STATE_BLANK);
  hello_clear (&hl);
}

/* ---- station-devsim on a pseudo-terminal --------------------------------- */

typedef struct {
  GSubprocess *proc;
  gchar *path;
} Devsim;

static void
devsim_start (Devsim *d, const char *const *extra)
{
  const char *exe = g_getenv ("ST_DEVSIM");
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GDataInputStream) in = NULL;
  gsize len = 0;

  g_assert_nonnull (exe);
  g_ptr_array_add (argv, (gpointer) exe);
  g_ptr_array_add (argv, (gpointer) "--exit-on-stdin-eof");
  for (gsize i = 0; extra != NULL && extra[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) extra[i]);
  g_ptr_array_add (argv, NULL);
  d->proc = g_subprocess_newv ((const gchar *const *) argv->pdata,
                               G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
  g_assert_no_error (error);
  in = g_data_input_stream_new (g_subprocess_get_stdout_pipe (d->proc));
  d->path = g_data_input_stream_read_line (in, &len, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (d->path);
  g_assert_true (g_str_has_prefix (d->path, "/dev/pts/"));
}

static int
pty_open (const char *path)
{
  struct termios tio;
  int fd = open (path, O_RDWR | O_NOCTTY | O_CLOEXEC);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (tcgetattr (fd, &tio), ==, 0);
  cfmakeraw (&tio);
  tio.c_cc[VMIN] = 0;
  tio.c_cc[VTIME] = 0;
  g_assert_cmpint (tcsetattr (fd, TCSANOW, &tio), ==, 0);
  tcflush (fd, TCIOFLUSH);
  /* The station's initial delimiter. */
  g_assert_cmpint (write (fd, "", 1), ==, 1);
  return fd;
}

static void
devsim_stop_signal (Devsim *d)
{
  g_autoptr(GError) error = NULL;
  g_subprocess_send_signal (d->proc, SIGTERM);
  g_assert_true (g_subprocess_wait (d->proc, NULL, &error));
  g_assert_no_error (error);
  /* A clean exit, not death by the signal. */
  g_assert_true (g_subprocess_get_if_exited (d->proc));
  g_assert_cmpint (g_subprocess_get_exit_status (d->proc), ==, 0);
  g_clear_object (&d->proc);
  g_clear_pointer (&d->path, g_free);
}

static void
test_exe_session (void)
{
  const char *args[] = { "--units", "3", "--seed", "77", "--swap-delay-ms", "250", NULL };
  Devsim d = { 0 };
  g_autoptr(GBytes) csr = NULL;
  g_autoptr(GBytes) slot = NULL;
  g_autoptr(X509_REQ) req = NULL;
  g_autofree gchar *uid = NULL;
  gboolean whole = FALSE;
  guint8 alg = ST_ALG_ED25519;
  Hello hl;
  Host h;
  int fd;

  devsim_start (&d, args);
  fd = pty_open (d.path);
  host_init_fd (&h, fd);
  g_assert_cmpuint (host_hello (&h, &hl), ==, ST_AGENT_RC_OK);
  uid = g_strdup (hl.uid_hex);
  g_assert_cmpuint (hl.state, ==, ST_AGENT_STATE_BLANK);
  hello_clear (&hl);
  g_assert_cmpuint (host_request (&h, ST_AGENT_OP_KEYGEN, &alg, 1, &csr), ==, ST_AGENT_RC_OK);
  req = csr_parse (csr, &whole);
  g_assert_true (whole);
  g_assert_cmpint (X509_REQ_verify (req, X509_REQ_get0_pubkey (req)), ==, 1);
  slot = host_read_slot (&h, 1);
  g_assert_cmpuint (g_bytes_get_size (slot), ==, 0);

  /* The station closes and reopens the port: the device is still there. */
  close (fd);
  g_usleep (50 * 1000);
  fd = pty_open (d.path);
  h.fd = fd;
  g_assert_cmpuint (host_hello (&h, &hl), ==, ST_AGENT_RC_OK);
  g_assert_cmpstr (hl.uid_hex, ==, uid);
  g_assert_cmpuint (hl.state, ==, ST_AGENT_STATE_KEY_PRESENT);
  hello_clear (&hl);

  /* ABORT finishes the unit; one HELLO from it; empty; the next device. */
  g_assert_cmpuint (host_request (&h, ST_AGENT_OP_ABORT, NULL, 0, NULL), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (host_hello (&h, &hl), ==, ST_AGENT_RC_OK);
  g_assert_cmpstr (hl.uid_hex, ==, uid);
  hello_clear (&hl);
  h.timeout_ms = 100;
  g_assert_cmpuint (host_hello (&h, &hl), ==, NO_RESPONSE);
  g_usleep (250 * 1000);
  h.timeout_ms = 400;
  g_assert_cmpuint (host_hello (&h, &hl), ==, ST_AGENT_RC_OK);
  g_assert_cmpstr (hl.uid_hex, !=, uid);
  hello_clear (&hl);
  close (fd);
  devsim_stop_signal (&d);
}

static void
test_exe_drop (void)
{
  g_autofree gchar *dir = st_test_tmpdir ("st-devsim");
  g_autofree gchar *path = g_build_filename (dir, "state.json", NULL);
  const char *args[] = { "--fault", "drop", "--seed", "9", "--state", path, NULL };
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  Devsim d = { 0 };
  JsonObject *dev;
  guint8 alg = ST_ALG_EC_P256;
  Host h;
  int fd;

  devsim_start (&d, args);
  fd = pty_open (d.path);
  host_init_fd (&h, fd);
  h.timeout_ms = 250;
  h.retries = 3;
  for (int i = 0; i < 12; i++)
    {
      g_autoptr(GBytes) csr = NULL;
      g_autoptr(X509_REQ) req = NULL;
      gboolean whole;
      g_assert_cmpuint (host_request (&h, ST_AGENT_OP_KEYGEN, &alg, 1, &csr), ==, ST_AGENT_RC_OK);
      req = csr_parse (csr, &whole);
      g_assert_true (whole);
    }
  /* Some responses were dropped and retried; each KEYGEN ran once. */
  g_assert_cmpuint (h.n_retries, >, 0);
  close (fd);
  /* Closing stdin stops it (--exit-on-stdin-eof). */
  g_assert_true (g_output_stream_close (g_subprocess_get_stdin_pipe (d.proc), NULL, &error));
  g_assert_true (g_subprocess_wait (d.proc, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (d.proc));
  g_assert_cmpint (g_subprocess_get_exit_status (d.proc), ==, 0);
  g_clear_object (&d.proc);
  g_free (d.path);

  g_assert_true (json_parser_load_from_file (parser, path, &error));
  dev = json_array_get_object_element (
      json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)), "devices"), 0);
  g_assert_cmpint (json_object_get_int_member (dev, "keygen_executed"), ==, 12);
  g_assert_cmpint (json_object_get_int_member (dev, "keys_made"), ==, 12);
  g_unlink (path);
  g_rmdir (dir);
}

static void
test_exe_bad_args (void)
{
  const char *bad[][3] = {
    { "--fault", "nope", NULL },
    { "--mode", "swd", NULL },
    { "--units", "-1", NULL },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GSubprocess) p = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_SILENCE,
                                                   &error, g_getenv ("ST_DEVSIM"), bad[i][0], bad[i][1], NULL);
      g_assert_no_error (error);
      g_assert_true (g_subprocess_wait (p, NULL, &error));
      g_assert_true (g_subprocess_get_if_exited (p));
      g_assert_cmpint (g_subprocess_get_exit_status (p), ==, 2);
    }
}

int
main (int argc, char **argv)
{
  int rc;
  g_test_init (&argc, &argv, NULL);
  g_test_add_data_func ("/devsim/provision/p256", GUINT_TO_POINTER (ST_ALG_EC_P256), test_provision);
  g_test_add_data_func ("/devsim/provision/p384", GUINT_TO_POINTER (ST_ALG_EC_P384), test_provision);
  g_test_add_data_func ("/devsim/provision/ed25519", GUINT_TO_POINTER (ST_ALG_ED25519), test_provision);
  g_test_add_func ("/devsim/put-key", test_put_key);
  g_test_add_func ("/devsim/fault/csr", test_faults_csr);
  g_test_add_func ("/devsim/fault/pop-other-key", test_fault_pop_other_key);
  g_test_add_func ("/devsim/fault/readback-differs", test_fault_readback);
  g_test_add_func ("/devsim/fault/commit-storage", test_fault_commit_storage);
  g_test_add_func ("/devsim/fault/locked", test_fault_locked);
  g_test_add_func ("/devsim/fault/garbage", test_fault_garbage);
  g_test_add_func ("/devsim/fault/unplug-write", test_fault_unplug);
  g_test_add_data_func ("/devsim/fault/silent-after-commit",
                        GUINT_TO_POINTER (ST_SIM_FAULT_SILENT_AFTER_COMMIT), test_fault_silent);
  g_test_add_data_func ("/devsim/fault/silent-at-confirm",
                        GUINT_TO_POINTER (ST_SIM_FAULT_SILENT_AT_CONFIRM), test_fault_silent);
  g_test_add_func ("/devsim/fault/noise-drop", test_fault_noise_drop);
  g_test_add_func ("/devsim/swap-and-units", test_swap_and_units);
  g_test_add_func ("/devsim/seed-uids", test_seed_uids);
  g_test_add_func ("/devsim/state-file", test_state_file);
  g_test_add_func ("/devsim/robust-garbage", test_robust_garbage);
  g_test_add_func ("/devsim/exe/session", test_exe_session);
  g_test_add_func ("/devsim/exe/drop", test_exe_drop);
  g_test_add_func ("/devsim/exe/bad-args", test_exe_bad_args);
  rc = g_test_run ();
  EVP_PKEY_free (ca.key);
  X509_free (ca.cert);
  return rc;
}
