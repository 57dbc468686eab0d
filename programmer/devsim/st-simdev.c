/* The simulated device: the portable agent core with OpenSSL hooks, device
 * swaps, faults and a durable state file. */
#include "st-simdev.h"

#include "st-agent.h"
#include "st-error.h"
#include "st-frame.h"
#include "st-ossl.h"
#include "st-types.h"
#include "st-util.h"

#include <json-glib/json-glib.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <string.h>
#include <time.h>

#define ST_SIM_UID_LEN 12
#define ST_SIM_STATE_FILE_MAX (64 * 1024 * 1024)
#define ST_SIM_GARBAGE_FIRST 2048    /* garbage bytes answering a request */
#define ST_SIM_GARBAGE_PER_CALL 1024 /* and on every later call */
#define ST_SIM_FW_VERSION "devsim-2"       /* implements matter-1 */
#define ST_SIM_FW_VERSION_OLD "devsim-1"   /* --no-matter: version 1 only */

typedef struct {
  guint8 uid[32];
  gsize uid_len;
  gchar *uid_hex;
  guint8 state;               /* what HELLO reports, kept current */
  gboolean locked;            /* committed lock flag */
  GBytes *cert;               /* committed slot 1, NULL when empty */
  GBytes *chain;              /* committed slot 2, NULL when empty */
  GBytes *matter_cd;          /* committed slot 3 (matter-1), NULL when empty */
  GBytes *matter_data;        /* committed slot 4 (matter-1), NULL when empty */
  guint n_ext_slot_requests;  /* WRITE/READ requests for slots above 2 */
  EVP_PKEY *key_obj;          /* the committed key (NULL: none, or not decoded
                               * from @key yet) */
  GBytes *key;                /* its PKCS#8 DER, as the state file keeps it (so
                               * that a restart can sign): read from the file,
                               * or made from @key_obj when the file is written */
  guint n_keygen;             /* KEYGEN requests executed */
  guint n_keys_made;          /* key pairs made by KEYGEN */
  guint n_commits;            /* successful COMMITs */
  gboolean finished;
  gboolean presented_locked;
} StSimRecord;

typedef enum {
  ST_SIM_PHASE_PRESENT,       /* a device answers */
  ST_SIM_PHASE_EMPTY,         /* swapping: nobody answers until empty_until */
  ST_SIM_PHASE_GONE,          /* all units presented */
} StSimPhase;

typedef struct _StSimNonce StSimNonce;
static void st_sim_nonce_free (StSimNonce *nonce);

struct _StSimSocket {
  guint units;
  guint32 seed;
  gchar *model;
  guint8 algorithms;
  gboolean no_matter;
  guint32 faults;
  guint fault_unit;
  guint swap_delay_ms;
  gchar *state_file;

  /* StSimRecord of the devices presented: every one with a state file
   * (it lists them all), else only the last ST_SIM_KEEP_RECORDS. The sim
   * backend runs in the station's process: a socket that kept every
   * device it ever presented (its key, certificate and chain) would make a
   * long run's memory grow with every unit. */
  GPtrArray *records;
  guint records_base;         /* devices presented before records[0], forgotten */
  StSimPhase phase;
  gint64 empty_until;         /* monotonic, µs */

  /* The device in the socket (phase PRESENT). */
  StAgent *agent;             /* kept from device to device, wiped in between */
  StSimRecord *cur;
  guint32 dev_faults;
  GRand *rand;                /* the faults' randomness: st_sim_rand() */
  guint rand_index;
  EVP_PKEY *committed_key;
  EVP_PKEY *pending_key;
  StSimNonce *pending_nonce;  /* premade with pending_key; one signature */
  EVP_PKEY *other_key;        /* POP_OTHER_KEY */
  gboolean streaming_garbage;
  gboolean last_damaged;
  /* The station opened the port afresh (its lone 0x00 arrived) and has had no
   * answer since: it has shown the operator no result for the device in the
   * socket, so the operator has not swapped it (see the swap rule). */
  gboolean fresh_session;
  gboolean unplug_armed;
  gboolean flip_slot4_read;   /* matter-data-differs: the READ of slot 4 being answered */
  gboolean unplug_done;
  gboolean unplug_at_hello;   /* silent-at-confirm: pulled at the next HELLO */
  /* The device in the socket answered a HELLO: the station knows it, so an
   * ABORT ends its unit. An ABORT meant for a device that was pulled out
   * (unplug) reaches its unseen successor, which the operator keeps. */
  gboolean hello_answered;

  GByteArray *out;            /* where responses go during receive() */
  gboolean dirty;
};

/* Without a state file, the records a socket keeps (st_sim_socket_get_device). */
#define ST_SIM_KEEP_RECORDS 64

static void
st_sim_record_free (StSimRecord *r)
{
  if (r == NULL)
    return;
  g_free (r->uid_hex);
  g_clear_pointer (&r->cert, g_bytes_unref);
  g_clear_pointer (&r->chain, g_bytes_unref);
  g_clear_pointer (&r->matter_cd, g_bytes_unref);
  g_clear_pointer (&r->matter_data, g_bytes_unref);
  g_clear_pointer (&r->key, st_bytes_wipe_unref);
  g_clear_pointer (&r->key_obj, EVP_PKEY_free);
  g_free (r);
}

static gboolean
st_sim_has (StSimSocket *s, StSimFault fault)
{
  return (s->dev_faults & fault) != 0;
}

static const StSimFaultInfo st_sim_faults[] = {
  { "noise", ST_SIM_FAULT_NOISE, "garbage between responses, occasional bit flips" },
  { "drop", ST_SIM_FAULT_DROP, "some responses dropped (a retry is answered)" },
  { "bad-csr-sig", ST_SIM_FAULT_BAD_CSR_SIG, "CSR with a broken signature" },
  { "csr-trailing", ST_SIM_FAULT_CSR_TRAILING, "extra bytes after the CSR" },
  { "wrong-curve", ST_SIM_FAULT_WRONG_CURVE, "key on another curve than asked" },
  { "csr-greedy", ST_SIM_FAULT_CSR_GREEDY, "CSR asking for CA:TRUE, extra SANs, its own subject" },
  { "pop-other-key", ST_SIM_FAULT_POP_OTHER_KEY, "proof of possession signed with another key" },
  { "readback-differs", ST_SIM_FAULT_READBACK_DIFFERS, "READ returns one flipped byte" },
  { "commit-storage", ST_SIM_FAULT_COMMIT_STORAGE, "COMMIT answers STORAGE" },
  { "locked", ST_SIM_FAULT_LOCKED, "the device starts locked, with a certificate" },
  { "garbage", ST_SIM_FAULT_GARBAGE, "answers with endless garbage, no frame delimiters" },
  { "unplug-write", ST_SIM_FAULT_UNPLUG_WRITE, "pulled out in the middle of the certificate WRITE" },
  { "silent-after-commit", ST_SIM_FAULT_SILENT_AFTER_COMMIT,
    "stores its credentials at COMMIT, sends no answer and leaves the socket; "
    "--state FILE --present N puts it back" },
  { "silent-at-confirm", ST_SIM_FAULT_SILENT_AT_CONFIRM,
    "stores and answers COMMIT, then is pulled before the confirming HELLO; "
    "--state FILE --present N puts it back" },
  { "matter-data-differs", ST_SIM_FAULT_MATTER_DATA_DIFFERS, "READ of slot 4 (Matter commissioning data) returns one flipped byte" },
  { NULL, 0, NULL },
};

const StSimFaultInfo *
st_sim_fault_list (void)
{
  return st_sim_faults;
}

guint32
st_sim_fault_from_string (const char *name)
{
  for (const StSimFaultInfo *f = st_sim_faults; name != NULL && f->name != NULL; f++)
    if (strcmp (name, f->name) == 0)
      return f->fault;
  return 0;
}

/* ---- crypto ------------------------------------------------------------ */

static EVP_PKEY *
st_sim_make_key (const char *type, const char *group)
{
  if (group == NULL)
    return EVP_PKEY_Q_keygen (NULL, NULL, type);
  return st_ec_keygen (group);
}

/* The key type asked for, or with WRONG_CURVE another one. */
static EVP_PKEY *
st_sim_make_key_for_alg (guint8 alg, gboolean wrong_curve)
{
  switch (alg)
    {
    case ST_ALG_EC_P256:
      return wrong_curve ? st_sim_make_key ("EC", "secp256k1") : st_sim_make_key ("EC", "P-256");
    case ST_ALG_EC_P384:
      return wrong_curve ? st_sim_make_key ("EC", "P-256") : st_sim_make_key ("EC", "P-384");
    case ST_ALG_ED25519:
      return wrong_curve ? st_sim_make_key ("ED448", NULL) : st_sim_make_key ("ED25519", NULL);
    default:
      return NULL;
    }
}

static gboolean
st_sim_key_group (EVP_PKEY *key, char *buf, gsize buf_len)
{
  size_t n = 0;
  if (!EVP_PKEY_is_a (key, "EC"))
    return FALSE;
  return EVP_PKEY_get_utf8_string_param (key, OSSL_PKEY_PARAM_GROUP_NAME, buf, buf_len, &n) == 1;
}

static gboolean
st_sim_key_matches_alg (EVP_PKEY *key, guint8 alg)
{
  char group[64];
  switch (alg)
    {
    case ST_ALG_EC_P256:
      return st_sim_key_group (key, group, sizeof group) && g_strcmp0 (group, "prime256v1") == 0;
    case ST_ALG_EC_P384:
      return st_sim_key_group (key, group, sizeof group) && g_strcmp0 (group, "secp384r1") == 0;
    case ST_ALG_ED25519:
      return EVP_PKEY_is_a (key, "ED25519");
    default:
      return FALSE;
    }
}

/* SHA-384 for P-384, none for EdDSA, SHA-256 otherwise. */
static const EVP_MD *
st_sim_key_md (EVP_PKEY *key)
{
  char group[64];
  if (EVP_PKEY_is_a (key, "ED25519") || EVP_PKEY_is_a (key, "ED448"))
    return NULL;
  if (st_sim_key_group (key, group, sizeof group) && g_strcmp0 (group, "secp384r1") == 0)
    return st_md_sha384 ();
  return st_md_sha256 ();
}

/* Another key of the same kind as @key, for POP_OTHER_KEY. */
static EVP_PKEY *
st_sim_make_key_like (EVP_PKEY *key)
{
  char group[64];
  if (EVP_PKEY_is_a (key, "ED25519"))
    return st_sim_make_key ("ED25519", NULL);
  if (EVP_PKEY_is_a (key, "ED448"))
    return st_sim_make_key ("ED448", NULL);
  if (st_sim_key_group (key, group, sizeof group))
    return st_sim_make_key ("EC", group);
  return st_sim_make_key ("EC", "P-256");
}

static GBytes *
st_sim_key_to_pkcs8 (EVP_PKEY *key)
{
  g_autoptr(PKCS8_PRIV_KEY_INFO) p8 = EVP_PKEY2PKCS8 (key);
  unsigned char *der = NULL;
  int n;
  GBytes *out;
  if (p8 == NULL)
    return NULL;
  n = i2d_PKCS8_PRIV_KEY_INFO (p8, &der);
  if (n <= 0)
    return NULL;
  out = g_bytes_new (der, (gsize) n);
  OPENSSL_clear_free (der, (size_t) n);
  return out;
}

/* Parses a whole DER PKCS#8 buffer strictly; NULL when it does not. */
static EVP_PKEY *
st_sim_key_from_pkcs8 (const guint8 *der, gsize len)
{
  const unsigned char *p = der;
  g_autoptr(PKCS8_PRIV_KEY_INFO) p8 = NULL;
  if (len == 0 || len > G_MAXINT32)
    return NULL;
  p8 = d2i_PKCS8_PRIV_KEY_INFO (NULL, &p, (long) len);
  if (p8 == NULL || p != der + len)
    return NULL;
  return EVP_PKCS82PKEY (p8);
}

static gboolean
st_sim_name_add (X509_NAME *name, const char *field, const char *value)
{
  return X509_NAME_add_entry_by_txt (name, field, MBSTRING_UTF8, (const unsigned char *) value,
                                     -1, -1, 0) == 1;
}

static gboolean
st_sim_req_add_greedy (X509_REQ *req)
{
  static const struct {
    int nid;
    const char *value;
  } exts[] = {
    { NID_basic_constraints, "critical,CA:TRUE" },
    { NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature" },
    { NID_subject_alt_name, "DNS:ca.example.com,DNS:*.example.com,IP:10.0.0.1,email:root@example.com" },
  };
  STACK_OF (X509_EXTENSION) *sk = sk_X509_EXTENSION_new_null ();
  gboolean ok = (sk != NULL);
  for (gsize i = 0; ok && i < G_N_ELEMENTS (exts); i++)
    {
      X509_EXTENSION *ext = X509V3_EXT_conf_nid (NULL, NULL, exts[i].nid, exts[i].value);
      if (ext == NULL || !sk_X509_EXTENSION_push (sk, ext))
        {
          X509_EXTENSION_free (ext);
          ok = FALSE;
        }
    }
  if (ok)
    ok = X509_REQ_add_extensions (req, sk) == 1;
  sk_X509_EXTENSION_pop_free (sk, X509_EXTENSION_free);
  return ok;
}

/* Sets the request's SubjectPublicKeyInfo straight from the key's public
 * bits, as a device's firmware would from a DER template, without OpenSSL 3's
 * encoder lookup that X509_REQ_set_pubkey costs (it dominated the bench). */
static gboolean
st_sim_req_set_pubkey (X509_REQ *req, EVP_PKEY *key)
{
  X509_PUBKEY *spki = X509_REQ_get_X509_PUBKEY (req);
  if (spki == NULL)
    return FALSE;
  /* As a device writes its SPKI: from a template, without the encoders. */
  return st_spki_set_param (spki, key) || X509_REQ_set_pubkey (req, key) == 1;
}

/* A signed PKCS#10 request for @key, DER. */
static GByteArray *
st_sim_make_csr (EVP_PKEY *key, const char *uid_hex, gboolean greedy)
{
  g_autoptr(X509_REQ) req = X509_REQ_new ();
  g_autoptr(X509_NAME) name = X509_NAME_new ();
  g_autofree gchar *cn = g_strdup_printf ("sim-%s", uid_hex);
  unsigned char *der = NULL;
  GByteArray *out;
  int n;

  if (req == NULL || name == NULL || X509_REQ_set_version (req, X509_REQ_VERSION_1) != 1)
    return NULL;
  if (greedy)
    {
      if (!st_sim_name_add (name, "C", "US") || !st_sim_name_add (name, "O", "Greedy Devices Inc")
          || !st_sim_name_add (name, "CN", "Greedy Root CA"))
        return NULL;
    }
  else if (!st_sim_name_add (name, "CN", cn))
    return NULL;
  if (X509_REQ_set_subject_name (req, name) != 1 || !st_sim_req_set_pubkey (req, key))
    return NULL;
  if (greedy && !st_sim_req_add_greedy (req))
    return NULL;
  if (X509_REQ_sign (req, key, st_sim_key_md (key)) <= 0)
    return NULL;
  n = i2d_X509_REQ (req, &der);
  if (n <= 0)
    return NULL;
  out = g_byte_array_sized_new ((guint) n + 8);
  g_byte_array_append (out, der, (guint) n);
  OPENSSL_free (der);
  return out;
}

/* A self-signed certificate, for devices that start locked. */
static GBytes *
st_sim_make_self_signed (EVP_PKEY *key, const char *uid_hex, guint32 serial)
{
  g_autoptr(X509) x = X509_new ();
  g_autoptr(X509_NAME) name = X509_NAME_new ();
  g_autofree gchar *cn = g_strdup_printf ("sim-%s", uid_hex);
  unsigned char *der = NULL;
  GBytes *out;
  int n;

  if (x == NULL || name == NULL || !st_sim_name_add (name, "CN", cn))
    return NULL;
  if (X509_set_version (x, X509_VERSION_3) != 1
      || ASN1_INTEGER_set_uint64 (X509_get_serialNumber (x), (uint64_t) serial + 1) != 1
      || X509_set_subject_name (x, name) != 1 || X509_set_issuer_name (x, name) != 1
      || X509_gmtime_adj (X509_getm_notBefore (x), 0) == NULL
      || X509_gmtime_adj (X509_getm_notAfter (x), 3650L * 24 * 3600) == NULL
      || X509_set_pubkey (x, key) != 1 || X509_sign (x, key, st_sim_key_md (key)) <= 0)
    return NULL;
  n = i2d_X509 (x, &der);
  if (n <= 0)
    return NULL;
  out = g_bytes_new (der, (gsize) n);
  OPENSSL_free (der);
  return out;
}

/* The device's fault randomness, seeded from the socket's seed and the
 * device's index; made at its first use (only devices with noise, drop or
 * garbage faults draw from it). */
static GRand *
st_sim_rand (StSimSocket *s)
{
  if (s->rand == NULL)
    {
      guint32 seed[3] = { s->seed, s->rand_index, 0x5eed };
      s->rand = g_rand_new_with_seed_array (seed, G_N_ELEMENTS (seed));
    }
  return s->rand;
}

/* ---- agent hooks --------------------------------------------------------- */

static void
st_sim_append_garbage (StSimSocket *s, guint n)
{
  for (guint i = 0; i < n; i++)
    {
      guint8 b = (guint8) g_rand_int_range (st_sim_rand (s), 1, 256);
      g_byte_array_append (s->out, &b, 1);
    }
}

static void
st_sim_start_empty (StSimSocket *s)
{
  s->phase = ST_SIM_PHASE_EMPTY;
  s->empty_until = g_get_monotonic_time () + (gint64) s->swap_delay_ms * 1000;
  s->dirty = TRUE;
}

/* Decodes our own response frame (for faults and swaps). */
static gboolean
st_sim_decode_response (const guint8 *wire, gsize len, guint8 *body, gsize body_max, StFrame *frame)
{
  size_t body_len = 0;
  if (len < 2 || wire[len - 1] != 0x00)
    return FALSE;
  if (st_cobs_decode (wire, len - 1, body, body_max, &body_len) != 0)
    return FALSE;
  return st_frame_parse_body (body, body_len, frame) == 0 && frame->len >= 1;
}

static void
st_sim_hook_output (void *user_data, const uint8_t *data, size_t len)
{
  StSimSocket *s = user_data;
  guint8 body[ST_FRAME_MAX_BODY];
  guint8 wire[ST_FRAME_MAX_WIRE];
  StFrame resp;
  gsize wire_len = 0;
  gboolean delivered = TRUE;
  gboolean flipped = FALSE;
  guint8 new_state;

  if (s->out == NULL || s->cur == NULL || len > sizeof wire)
    return;
  new_state = st_agent_get_state (s->agent);
  if (new_state != s->cur->state)
    {
      s->cur->state = new_state;
      s->dirty = TRUE;
    }
  if (!st_sim_decode_response (data, len, body, sizeof body, &resp))
    return;

  if (st_sim_has (s, ST_SIM_FAULT_GARBAGE))
    {
      s->streaming_garbage = TRUE;
      st_sim_append_garbage (s, ST_SIM_GARBAGE_FIRST);
      return;
    }
  if (s->unplug_armed)
    {
      /* Pulled out mid-transfer or right after COMMIT: no answer, and the
       * socket is empty. What it committed stays committed. */
      s->unplug_armed = FALSE;
      s->cur->state = s->cur->locked ? ST_AGENT_STATE_LOCKED
                      : s->cur->key_obj != NULL ? ST_AGENT_STATE_PROVISIONED
                                                                     : ST_AGENT_STATE_BLANK;
      st_sim_start_empty (s);
      return;
    }

  memcpy (wire, data, len);
  wire_len = len;
  gboolean flip_slot4 = s->flip_slot4_read && resp.op == (ST_AGENT_OP_READ | ST_AGENT_OP_RESPONSE);
  if (resp.op == (ST_AGENT_OP_READ | ST_AGENT_OP_RESPONSE))
    s->flip_slot4_read = FALSE;
  if ((st_sim_has (s, ST_SIM_FAULT_READBACK_DIFFERS) || flip_slot4)
      && resp.op == (ST_AGENT_OP_READ | ST_AGENT_OP_RESPONSE)
      && resp.payload[0] == ST_AGENT_RC_OK && resp.len > 3)
    {
      guint8 payload[ST_FRAME_MAX_PAYLOAD];
      memcpy (payload, resp.payload, resp.len);
      payload[3] ^= 0x01;
      wire_len = st_frame_encode (resp.op, resp.seq, payload, resp.len, wire, sizeof wire);
      if (wire_len == 0)
        return;
    }

  /* Damage never hits two responses in a row, so a retry always gets through. */
  if (st_sim_has (s, ST_SIM_FAULT_DROP) && !s->last_damaged && g_rand_int_range (st_sim_rand (s), 0, 4) == 0)
    delivered = FALSE;
  if (delivered && st_sim_has (s, ST_SIM_FAULT_NOISE))
    {
      guint n = (guint) g_rand_int_range (st_sim_rand (s), 1, 24);
      for (guint i = 0; i < n; i++)
        {
          guint8 b = (guint8) g_rand_int_range (st_sim_rand (s), 0, 256);
          g_byte_array_append (s->out, &b, 1);
        }
      g_byte_array_append (s->out, (const guint8 *) "", 1);
      if (!s->last_damaged && g_rand_int_range (st_sim_rand (s), 0, 8) == 0)
        {
          gsize at = (gsize) g_rand_int_range (st_sim_rand (s), 0, (gint32) (wire_len - 1));
          wire[at] ^= (guint8) (1u << g_rand_int_range (st_sim_rand (s), 0, 8));
          flipped = TRUE;
        }
    }
  s->last_damaged = !delivered || flipped;
  if (!delivered)
    return;
  g_byte_array_append (s->out, wire, (guint) wire_len);
  if (flipped)
    return;

  gboolean fresh = s->fresh_session;
  s->fresh_session = FALSE;
  if (resp.op == (ST_AGENT_OP_HELLO | ST_AGENT_OP_RESPONSE) && resp.payload[0] == ST_AGENT_RC_OK)
    {
      s->hello_answered = TRUE;
      /* A station that restarted (crash, power cut) after COMMIT finds the
       * device still in the socket: the swap waits for its next HELLO. */
      if (s->cur->finished && !fresh)
        st_sim_start_empty (s);
      else if (s->cur->presented_locked)
        {
          s->cur->finished = TRUE;
          s->dirty = TRUE;
        }
    }
}

static void
st_sim_hook_observe (void *user_data, const StFrame *request, int replayed)
{
  StSimSocket *s = user_data;
  if (replayed)
    return;
  if (request->op == ST_AGENT_OP_KEYGEN)
    {
      s->cur->n_keygen++;
      s->dirty = TRUE;
    }
  if ((request->op == ST_AGENT_OP_WRITE || request->op == ST_AGENT_OP_READ) && request->len >= 1
      && request->payload[0] > ST_SLOT_CHAIN)
    {
      s->cur->n_ext_slot_requests++;
      s->dirty = TRUE;
    }
  if (request->op == ST_AGENT_OP_READ && request->len >= 1 && request->payload[0] == ST_SLOT_MATTER_DATA
      && st_sim_has (s, ST_SIM_FAULT_MATTER_DATA_DIFFERS))
    s->flip_slot4_read = TRUE;
  if (request->op == ST_AGENT_OP_HELLO && s->unplug_at_hello)
    {
      s->unplug_at_hello = FALSE;
      s->unplug_armed = TRUE;
    }
  if (request->op == ST_AGENT_OP_WRITE && request->len >= 1 && request->payload[0] == ST_SLOT_CERT
      && st_sim_has (s, ST_SIM_FAULT_UNPLUG_WRITE) && !s->unplug_done)
    {
      s->unplug_done = TRUE;
      s->unplug_armed = TRUE;
    }
}

/* An ECDSA signature's costly half, made ahead of time with the key (the
 * bench's premade keys): the nonce k, r = x(kG) mod n and k^-1 mod n, and
 * the key's scalar d. The proof of possession then costs the device two
 * modular products, s = k^-1 (e + r d) mod n, instead of a scalar
 * multiplication: a real device does it all on its own processor, and the
 * simulated one should not stand in the station's way on its cores. A
 * nonce serves one signature and is then freed: a second signature with
 * the same k would give the key away. */
struct _StSimNonce {
  BIGNUM *order, *d, *r, *kinv;
};

static void
st_sim_nonce_free (StSimNonce *nonce)
{
  if (nonce == NULL)
    return;
  BN_free (nonce->order);
  BN_clear_free (nonce->d);
  BN_free (nonce->r);
  BN_clear_free (nonce->kinv);
  g_free (nonce);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StSimNonce, st_sim_nonce_free)

/* A nonce for the EC key @key; NULL for other keys or on failure (the
 * signature is then made the usual way). */
static StSimNonce *
st_sim_nonce_new (EVP_PKEY *key)
{
  char group_name[64];
  if (!EVP_PKEY_is_a (key, "EC") || !st_sim_key_group (key, group_name, sizeof group_name))
    return NULL;
  g_autoptr(StSimNonce) nonce = g_new0 (StSimNonce, 1);
  EC_GROUP *group = EC_GROUP_new_by_curve_name (OBJ_sn2nid (group_name));
  BN_CTX *ctx = BN_CTX_secure_new ();
  EC_POINT *point = group != NULL ? EC_POINT_new (group) : NULL;
  BIGNUM *k = BN_secure_new (), *x = BN_new ();
  gboolean ok = point != NULL && ctx != NULL && k != NULL && x != NULL
                && EVP_PKEY_get_bn_param (key, OSSL_PKEY_PARAM_PRIV_KEY, &nonce->d) == 1
                && (nonce->order = BN_dup (EC_GROUP_get0_order (group))) != NULL
                && (nonce->r = BN_new ()) != NULL;
  if (ok)
    {
      BN_set_flags (k, BN_FLG_CONSTTIME);
      BN_set_flags (nonce->d, BN_FLG_CONSTTIME);
    }
  while (ok)
    {
      ok = BN_priv_rand_range_ex (k, nonce->order, 0, ctx) == 1
           && EC_POINT_mul (group, point, k, NULL, NULL, ctx) == 1
           && EC_POINT_get_affine_coordinates (group, point, x, NULL, ctx) == 1
           && BN_nnmod (nonce->r, x, nonce->order, ctx) == 1;
      if (ok && !BN_is_zero (k) && !BN_is_zero (nonce->r))
        break;
    }
  if (ok)
    ok = (nonce->kinv = BN_mod_inverse (NULL, k, nonce->order, ctx)) != NULL;
  BN_clear_free (k);
  BN_free (x);
  EC_POINT_free (point);
  BN_CTX_free (ctx);
  EC_GROUP_free (group);
  if (!ok)
    {
      st_error_clear_openssl ();
      return NULL;
    }
  return g_steal_pointer (&nonce);
}

/* ECDSA over @msg hashed with @md (whose size is the curve's), with the
 * precomputed @nonce, DER-encoded into @sig. FALSE when it cannot (the
 * caller then signs the usual way). */
static gboolean
st_sim_nonce_sign (const StSimNonce *nonce, const EVP_MD *md, const uint8_t *msg, size_t msg_len,
                   uint8_t *sig, size_t sig_max, size_t *sig_len)
{
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  if (md == NULL || EVP_Digest (msg, msg_len, digest, &digest_len, md, NULL) != 1
      || (int) digest_len * 8 != BN_num_bits (nonce->order))
    return FALSE;
  BN_CTX *ctx = BN_CTX_secure_new ();
  BIGNUM *e = BN_bin2bn (digest, (int) digest_len, NULL);
  BIGNUM *t = BN_secure_new (), *s = BN_new (), *r = BN_dup (nonce->r);
  ECDSA_SIG *ecdsa = ECDSA_SIG_new ();
  gboolean ok = ctx != NULL && e != NULL && t != NULL && s != NULL && r != NULL && ecdsa != NULL
                && BN_mod_mul (t, nonce->r, nonce->d, nonce->order, ctx) == 1
                && BN_mod_add (t, t, e, nonce->order, ctx) == 1
                && BN_mod_mul (s, nonce->kinv, t, nonce->order, ctx) == 1
                && !BN_is_zero (s) && ECDSA_SIG_set0 (ecdsa, r, s) == 1;
  if (ok)
    r = s = NULL;   /* the signature holds them now */
  int n = ok ? i2d_ECDSA_SIG (ecdsa, NULL) : 0;
  ok = ok && n > 0 && (size_t) n <= sig_max;
  if (ok)
    {
      unsigned char *out = sig;
      *sig_len = (size_t) i2d_ECDSA_SIG (ecdsa, &out);
    }
  ECDSA_SIG_free (ecdsa);
  BN_free (r);
  BN_free (s);
  BN_clear_free (t);
  BN_free (e);
  BN_CTX_free (ctx);
  OPENSSL_cleanse (digest, sizeof digest);
  if (!ok)
    st_error_clear_openssl ();
  return ok;
}

/* Key pairs and CSRs made ahead of time (st_sim_premake_keys), one queue
 * per algorithm code; each is handed out to one KEYGEN. */
typedef struct {
  EVP_PKEY *key;
  GByteArray *csr;
  StSimNonce *nonce;          /* for the proof of possession; NULL for Ed25519 */
} StSimPremade;

#define ST_SIM_PREMADE_ALGS 4
static GMutex st_sim_premade_lock;
static GQueue st_sim_premade[ST_SIM_PREMADE_ALGS];

static void
st_sim_premade_free (gpointer data)
{
  StSimPremade *p = data;
  EVP_PKEY_free (p->key);
  st_sim_nonce_free (p->nonce);
  if (p->csr != NULL)
    g_byte_array_unref (p->csr);
  g_free (p);
}

/* The queue of @alg's premade keys; NULL for an algorithm code the
 * simulated devices do not know. */
static GQueue *
st_sim_premade_queue (guint8 alg)
{
  return alg > 0 && alg < ST_SIM_PREMADE_ALGS ? &st_sim_premade[alg] : NULL;
}

/* The subject of a premade CSR: the device is not known yet, and the
 * station ignores the subject anyway (docs/agent-protocol.md, 0x02 KEYGEN). */
#define ST_SIM_PREMADE_NAME "premade"

gboolean
st_sim_premake_keys (guint8 alg, guint count, GError **error)
{
  GQueue *queue = st_sim_premade_queue (alg);
  if (queue == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "simulated devices know no algorithm %u", (guint) alg);
      return FALSE;
    }
  for (guint i = 0; i < count; i++)
    {
      StSimPremade *p = g_new0 (StSimPremade, 1);
      p->key = st_sim_make_key_for_alg (alg, FALSE);
      p->csr = p->key != NULL ? st_sim_make_csr (p->key, ST_SIM_PREMADE_NAME, FALSE) : NULL;
      p->nonce = p->key != NULL ? st_sim_nonce_new (p->key) : NULL;
      if (p->csr == NULL)
        {
          st_sim_premade_free (p);
          st_error_set_openssl (error, ST_ERROR_INTERNAL, "making a simulated device's key and CSR");
          return FALSE;
        }
      g_mutex_lock (&st_sim_premade_lock);
      g_queue_push_tail (queue, p);
      g_mutex_unlock (&st_sim_premade_lock);
    }
  return TRUE;
}

guint
st_sim_premade_count (guint8 alg)
{
  GQueue *queue = st_sim_premade_queue (alg);
  if (queue == NULL)
    return 0;
  g_mutex_lock (&st_sim_premade_lock);
  guint n = queue->length;
  g_mutex_unlock (&st_sim_premade_lock);
  return n;
}

void
st_sim_premade_clear (void)
{
  g_mutex_lock (&st_sim_premade_lock);
  for (guint a = 0; a < ST_SIM_PREMADE_ALGS; a++)
    g_queue_clear_full (&st_sim_premade[a], st_sim_premade_free);
  g_mutex_unlock (&st_sim_premade_lock);
}

/* A premade key and CSR for @alg, or NULL when none is left. */
static StSimPremade *
st_sim_premade_take (guint8 alg)
{
  GQueue *queue = st_sim_premade_queue (alg);
  if (queue == NULL)
    return NULL;
  g_mutex_lock (&st_sim_premade_lock);
  StSimPremade *p = g_queue_pop_head (queue);
  g_mutex_unlock (&st_sim_premade_lock);
  return p;
}

static uint8_t
st_sim_keygen_work (void *user_data, uint8_t alg, uint8_t *csr, size_t csr_max, size_t *csr_len)
{
  StSimSocket *s = user_data;
  g_autoptr(EVP_PKEY) key = NULL;
  g_autoptr(GByteArray) der = NULL;
  g_autoptr(StSimNonce) nonce = NULL;

  g_clear_pointer (&s->pending_key, EVP_PKEY_free);
  g_clear_pointer (&s->pending_nonce, st_sim_nonce_free);
  g_clear_pointer (&s->other_key, EVP_PKEY_free);
  /* the faults that shape the key or the request make their own */
  StSimPremade *premade = st_sim_has (s, ST_SIM_FAULT_WRONG_CURVE) || st_sim_has (s, ST_SIM_FAULT_CSR_GREEDY)
                          ? NULL : st_sim_premade_take (alg);
  if (premade != NULL)
    {
      key = g_steal_pointer (&premade->key);
      der = g_steal_pointer (&premade->csr);
      nonce = g_steal_pointer (&premade->nonce);
      st_sim_premade_free (premade);
    }
  else
    key = st_sim_make_key_for_alg (alg, st_sim_has (s, ST_SIM_FAULT_WRONG_CURVE));
  if (key == NULL)
    {
      st_error_clear_openssl ();
      return ST_AGENT_RC_INTERNAL;
    }
  s->cur->n_keys_made++;
  s->dirty = TRUE;
  if (der == NULL)
    der = st_sim_make_csr (key, s->cur->uid_hex, st_sim_has (s, ST_SIM_FAULT_CSR_GREEDY));
  if (der == NULL)
    {
      st_error_clear_openssl ();
      return ST_AGENT_RC_INTERNAL;
    }
  if (st_sim_has (s, ST_SIM_FAULT_BAD_CSR_SIG))
    der->data[der->len - 1] ^= 0x01;   /* last byte of the signature */
  if (st_sim_has (s, ST_SIM_FAULT_CSR_TRAILING))
    g_byte_array_append (der, (const guint8 *) "\xde\xad\xbe\xef", 4);
  if (der->len > csr_max)
    return ST_AGENT_RC_INTERNAL;
  memcpy (csr, der->data, der->len);
  *csr_len = der->len;
  s->pending_key = g_steal_pointer (&key);
  s->pending_nonce = g_steal_pointer (&nonce);
  return ST_AGENT_RC_OK;
}

static uint8_t
st_sim_hook_put_key (void *user_data, uint8_t alg, const uint8_t *der, size_t len)
{
  StSimSocket *s = user_data;
  EVP_PKEY *key = st_sim_key_from_pkcs8 (der, len);
  if (key == NULL)
    {
      st_error_clear_openssl ();
      return ST_AGENT_RC_BAD_REQUEST;
    }
  if (!st_sim_key_matches_alg (key, alg))
    {
      EVP_PKEY_free (key);
      return ST_AGENT_RC_BAD_REQUEST;
    }
  g_clear_pointer (&s->pending_key, EVP_PKEY_free);
  g_clear_pointer (&s->pending_nonce, st_sim_nonce_free);
  g_clear_pointer (&s->other_key, EVP_PKEY_free);
  s->pending_key = key;
  s->dirty = TRUE;
  return ST_AGENT_RC_OK;
}

static uint8_t
st_sim_sign_work (void *user_data, const uint8_t *msg, size_t msg_len, uint8_t *sig,
                  size_t sig_max, size_t *sig_len)
{
  StSimSocket *s = user_data;
  EVP_PKEY *key = s->pending_key != NULL ? s->pending_key : s->committed_key;
  g_autoptr(EVP_MD_CTX) ctx = NULL;
  size_t n = 0;

  if (key == NULL)
    return ST_AGENT_RC_BAD_STATE;
  if (st_sim_has (s, ST_SIM_FAULT_POP_OTHER_KEY))
    {
      if (s->other_key == NULL)
        s->other_key = st_sim_make_key_like (key);
      if (s->other_key == NULL)
        {
          st_error_clear_openssl ();
          return ST_AGENT_RC_INTERNAL;
        }
      key = s->other_key;
    }
  /* the premade nonce of the pending key, used once */
  if (key == s->pending_key && s->pending_nonce != NULL)
    {
      g_autoptr(StSimNonce) nonce = g_steal_pointer (&s->pending_nonce);
      if (st_sim_nonce_sign (nonce, st_sim_key_md (key), msg, msg_len, sig, sig_max, sig_len))
        return ST_AGENT_RC_OK;
    }
  ctx = EVP_MD_CTX_new ();
  if (ctx == NULL || EVP_DigestSignInit (ctx, NULL, st_sim_key_md (key), NULL, key) != 1
      || EVP_DigestSign (ctx, NULL, &n, msg, msg_len) != 1 || n > sig_max
      || EVP_DigestSign (ctx, sig, &n, msg, msg_len) != 1)
    {
      st_error_clear_openssl ();
      return ST_AGENT_RC_INTERNAL;
    }
  *sig_len = n;
  return ST_AGENT_RC_OK;
}

/* CPU time the simulated devices of this process spent on their key
 * generation, CSR and proof signing: work a real device does on its own
 * processor. Two clock reads per hook call, nothing per byte. */
static GMutex st_sim_crypto_lock;
static gint64 st_sim_crypto_ns;

static gint64
st_sim_thread_cpu_ns (void)
{
  struct timespec ts;
  if (clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
    return 0;
  return (gint64) ts.tv_sec * G_GINT64_CONSTANT (1000000000) + ts.tv_nsec;
}

static void
st_sim_crypto_add (gint64 since)
{
  gint64 spent = st_sim_thread_cpu_ns () - since;
  g_mutex_lock (&st_sim_crypto_lock);
  st_sim_crypto_ns += spent;
  g_mutex_unlock (&st_sim_crypto_lock);
}

gint64
st_sim_get_crypto_cpu_ns (void)
{
  g_mutex_lock (&st_sim_crypto_lock);
  gint64 ns = st_sim_crypto_ns;
  g_mutex_unlock (&st_sim_crypto_lock);
  return ns;
}

static uint8_t
st_sim_hook_keygen (void *user_data, uint8_t alg, uint8_t *csr, size_t csr_max, size_t *csr_len)
{
  gint64 t0 = st_sim_thread_cpu_ns ();
  uint8_t rc = st_sim_keygen_work (user_data, alg, csr, csr_max, csr_len);
  st_sim_crypto_add (t0);
  return rc;
}

static uint8_t
st_sim_hook_sign (void *user_data, const uint8_t *msg, size_t msg_len, uint8_t *sig,
                  size_t sig_max, size_t *sig_len)
{
  gint64 t0 = st_sim_thread_cpu_ns ();
  uint8_t rc = st_sim_sign_work (user_data, msg, msg_len, sig, sig_max, sig_len);
  st_sim_crypto_add (t0);
  return rc;
}

static uint8_t
st_sim_hook_commit_matter (void *user_data, const uint8_t *slot1, size_t len1,
                           const uint8_t *slot2, size_t len2, const uint8_t *slot3, size_t len3,
                           const uint8_t *slot4, size_t len4, int lock);

static uint8_t
st_sim_hook_commit (void *user_data, const uint8_t *slot1, size_t len1, const uint8_t *slot2,
                    size_t len2, int lock)
{
  return st_sim_hook_commit_matter (user_data, slot1, len1, slot2, len2, NULL, 0, NULL, 0, lock);
}

static uint8_t
st_sim_hook_commit_matter (void *user_data, const uint8_t *slot1, size_t len1,
                           const uint8_t *slot2, size_t len2, const uint8_t *slot3, size_t len3,
                           const uint8_t *slot4, size_t len4, int lock)
{
  StSimSocket *s = user_data;
  EVP_PKEY *key = s->pending_key != NULL ? s->pending_key : s->committed_key;

  if (st_sim_has (s, ST_SIM_FAULT_COMMIT_STORAGE))
    return ST_AGENT_RC_STORAGE;
  if (key == NULL)
    return ST_AGENT_RC_BAD_STATE;
  if (EVP_PKEY_up_ref (key) != 1)
    return ST_AGENT_RC_INTERNAL;
  g_clear_pointer (&s->cur->key, st_bytes_wipe_unref);
  g_clear_pointer (&s->cur->key_obj, EVP_PKEY_free);
  g_clear_pointer (&s->cur->cert, g_bytes_unref);
  g_clear_pointer (&s->cur->chain, g_bytes_unref);
  s->cur->key_obj = key;
  s->cur->cert = g_bytes_new (slot1, len1);
  if (len2 > 0)
    s->cur->chain = g_bytes_new (slot2, len2);
  g_clear_pointer (&s->cur->matter_cd, g_bytes_unref);
  g_clear_pointer (&s->cur->matter_data, g_bytes_unref);
  if (len3 > 0)
    s->cur->matter_cd = g_bytes_new (slot3, len3);
  if (len4 > 0)
    s->cur->matter_data = g_bytes_new (slot4, len4);
  s->cur->locked = lock != 0;
  s->cur->n_commits++;
  s->cur->finished = TRUE;
  if (s->pending_key != NULL)
    {
      g_clear_pointer (&s->committed_key, EVP_PKEY_free);
      s->committed_key = g_steal_pointer (&s->pending_key);
      g_clear_pointer (&s->pending_nonce, st_sim_nonce_free);
    }
  if (st_sim_has (s, ST_SIM_FAULT_SILENT_AFTER_COMMIT) && !s->unplug_done)
    {
      /* Stored, then the power went: its answer is never sent. */
      s->unplug_done = TRUE;
      s->unplug_armed = TRUE;
    }
  if (st_sim_has (s, ST_SIM_FAULT_SILENT_AT_CONFIRM) && !s->unplug_done)
    {
      /* Stored and answered; pulled before the confirming HELLO. */
      s->unplug_done = TRUE;
      s->unplug_at_hello = TRUE;
    }
  s->dirty = TRUE;
  return ST_AGENT_RC_OK;
}

static void
st_sim_hook_abort (void *user_data)
{
  StSimSocket *s = user_data;
  g_clear_pointer (&s->pending_key, EVP_PKEY_free);
  g_clear_pointer (&s->pending_nonce, st_sim_nonce_free);
  g_clear_pointer (&s->other_key, EVP_PKEY_free);
  if (s->hello_answered)
    s->cur->finished = TRUE;
  s->dirty = TRUE;
}

static int st_sim_hook_load (void *user_data, uint8_t *slot1, size_t *len1, uint8_t *slot2,
                             size_t *len2, int *has_key, int *locked);

static int
st_sim_hook_load_matter (void *user_data, uint8_t *slot1, size_t *len1, uint8_t *slot2,
                         size_t *len2, uint8_t *slot3, size_t *len3, uint8_t *slot4,
                         size_t *len4, int *has_key, int *locked)
{
  StSimSocket *s = user_data;
  gsize n3 = 0, n4 = 0;
  const guint8 *d3 = s->cur->matter_cd != NULL ? g_bytes_get_data (s->cur->matter_cd, &n3) : NULL;
  const guint8 *d4 = s->cur->matter_data != NULL ? g_bytes_get_data (s->cur->matter_data, &n4) : NULL;

  if (n3 > ST_AGENT_SLOT3_MAX || n4 > ST_AGENT_SLOT4_MAX)
    return -1;
  if (n3 > 0)
    memcpy (slot3, d3, n3);
  if (n4 > 0)
    memcpy (slot4, d4, n4);
  *len3 = n3;
  *len4 = n4;
  return st_sim_hook_load (user_data, slot1, len1, slot2, len2, has_key, locked);
}

static int
st_sim_hook_load (void *user_data, uint8_t *slot1, size_t *len1, uint8_t *slot2, size_t *len2,
                  int *has_key, int *locked)
{
  StSimSocket *s = user_data;
  gsize n1 = 0, n2 = 0;
  const guint8 *d1 = s->cur->cert != NULL ? g_bytes_get_data (s->cur->cert, &n1) : NULL;
  const guint8 *d2 = s->cur->chain != NULL ? g_bytes_get_data (s->cur->chain, &n2) : NULL;

  if (n1 > ST_AGENT_SLOT1_MAX || n2 > ST_AGENT_SLOT2_MAX)
    return -1;
  if (n1 > 0)
    memcpy (slot1, d1, n1);
  if (n2 > 0)
    memcpy (slot2, d2, n2);
  *len1 = n1;
  *len2 = n2;
  *has_key = s->committed_key != NULL;
  *locked = s->cur->locked;
  return 0;
}

/* ---- devices ------------------------------------------------------------- */

static void
st_sim_derive_uid (guint32 seed, guint index, guint8 *uid)
{
  guint8 in[18 + 8];
  guint8 md[32];
  unsigned int md_len = 0;
  memcpy (in, "station-devsim-uid", 18);
  for (int i = 0; i < 4; i++)
    {
      in[18 + i] = (guint8) (seed >> (8 * i));
      in[22 + i] = (guint8) (index >> (8 * i));
    }
  EVP_Digest (in, sizeof in, md, &md_len, EVP_sha256 (), NULL);
  memcpy (uid, md, ST_SIM_UID_LEN);
}

static void
st_sim_drop_device (StSimSocket *s)
{
  /* wiped; the memory serves the socket's next device */
  if (s->agent != NULL)
    st_agent_clear (s->agent);
  g_clear_pointer (&s->committed_key, EVP_PKEY_free);
  g_clear_pointer (&s->pending_key, EVP_PKEY_free);
  g_clear_pointer (&s->pending_nonce, st_sim_nonce_free);
  g_clear_pointer (&s->other_key, EVP_PKEY_free);
  g_clear_pointer (&s->rand, g_rand_free);
  s->cur = NULL;
  s->streaming_garbage = FALSE;
  s->last_damaged = FALSE;
  s->unplug_armed = FALSE;
  s->unplug_done = FALSE;
  s->unplug_at_hello = FALSE;
  s->hello_answered = FALSE;
  s->dev_faults = 0;
}

/* Brings the device of record @index into the socket, with its committed
 * state (a fresh device, or one reloaded from the state file). */
static gboolean
st_sim_activate (StSimSocket *s, guint index, GError **error)
{
  StSimRecord *r = g_ptr_array_index (s->records, index - s->records_base);
  StAgentInfo info;
  StAgentHooks hooks = {
    .user_data = s,
    .output = st_sim_hook_output,
    .keygen = st_sim_hook_keygen,
    .put_key = st_sim_hook_put_key,
    .sign = st_sim_hook_sign,
    .commit = st_sim_hook_commit,
    .abort = st_sim_hook_abort,
    .load = st_sim_hook_load,
    .commit_matter = st_sim_hook_commit_matter,
    .load_matter = st_sim_hook_load_matter,
    .observe = st_sim_hook_observe,
  };

  st_sim_drop_device (s);
  s->cur = r;
  s->dev_faults = (s->fault_unit == 0 || s->fault_unit == index + 1) ? s->faults : 0;
  s->rand_index = index;
  if (r->key_obj == NULL && r->key != NULL)
    {
      gsize n = 0;
      const guint8 *d = g_bytes_get_data (r->key, &n);
      r->key_obj = st_sim_key_from_pkcs8 (d, n);
      if (r->key_obj == NULL)
        {
          st_error_set_openssl (error, ST_ERROR_INVALID_DATA, "committed key of a simulated device");
          return FALSE;
        }
    }
  if (r->key_obj != NULL && EVP_PKEY_up_ref (r->key_obj) == 1)
    s->committed_key = r->key_obj;
  memset (&info, 0, sizeof info);
  memcpy (info.uid, r->uid, r->uid_len);
  info.uid_len = (uint8_t) r->uid_len;
  g_strlcpy (info.model, s->model, sizeof info.model);
  g_strlcpy (info.fw_version, s->no_matter ? ST_SIM_FW_VERSION_OLD : ST_SIM_FW_VERSION,
             sizeof info.fw_version);
  info.algorithms = s->algorithms;
  info.extensions = s->no_matter ? 0 : ST_AGENT_EXT_MATTER_1;
  if (s->agent == NULL)
    s->agent = g_new0 (StAgent, 1);
  if (st_agent_init (s->agent, &info, &hooks) != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL,
                   "the simulated device %s could not load its committed state", r->uid_hex);
      return FALSE;
    }
  r->state = st_agent_get_state (s->agent);
  s->phase = ST_SIM_PHASE_PRESENT;
  return TRUE;
}

/* The next device into the socket, or GONE after the last unit. */
static void
st_sim_present_next (StSimSocket *s)
{
  guint index = s->records_base + s->records->len;
  StSimRecord *r;
  g_autoptr(GError) error = NULL;

  st_sim_drop_device (s);
  s->dirty = TRUE;
  if (s->units != 0 && index >= s->units)
    {
      s->phase = ST_SIM_PHASE_GONE;
      return;
    }
  /* The devices that left, beyond the last few, are forgotten unless a
   * state file lists them (none is in the socket now: dropped above). */
  if (s->state_file == NULL && s->records->len >= ST_SIM_KEEP_RECORDS)
    {
      guint gone = s->records->len - ST_SIM_KEEP_RECORDS + 1;
      g_ptr_array_remove_range (s->records, 0, gone);
      s->records_base += gone;
    }
  r = g_new0 (StSimRecord, 1);
  r->uid_len = ST_SIM_UID_LEN;
  st_sim_derive_uid (s->seed, index, r->uid);
  r->uid_hex = st_hex_encode (r->uid, r->uid_len);
  g_ptr_array_add (s->records, r);

  if ((s->fault_unit == 0 || s->fault_unit == index + 1) && (s->faults & ST_SIM_FAULT_LOCKED))
    {
      g_autoptr(EVP_PKEY) key = st_sim_make_key ("EC", "P-256");
      r->cert = key != NULL ? st_sim_make_self_signed (key, r->uid_hex, s->seed ^ index) : NULL;
      r->key_obj = g_steal_pointer (&key);
      if (r->cert == NULL || r->key_obj == NULL)
        {
          st_error_clear_openssl ();
          g_warning ("simulated device %s: could not make its locked credentials", r->uid_hex);
        }
      r->locked = TRUE;
      r->presented_locked = TRUE;
    }
  if (!st_sim_activate (s, index, &error))
    {
      g_warning ("simulated device %s: %s; the socket stays empty", r->uid_hex, error->message);
      st_sim_drop_device (s);
      s->phase = ST_SIM_PHASE_GONE;
    }
}

/* ---- state file ---------------------------------------------------------- */

static const char *
st_sim_phase_to_string (StSimPhase phase)
{
  switch (phase)
    {
    case ST_SIM_PHASE_PRESENT:
      return "present";
    case ST_SIM_PHASE_EMPTY:
      return "empty";
    case ST_SIM_PHASE_GONE:
    default:
      return "gone";
    }
}

static void
st_sim_builder_add_b64 (JsonBuilder *b, const char *name, GBytes *bytes)
{
  json_builder_set_member_name (b, name);
  if (bytes == NULL)
    json_builder_add_null_value (b);
  else
    {
      gsize n = 0;
      const guint8 *d = g_bytes_get_data (bytes, &n);
      g_autofree gchar *b64 = g_base64_encode (d, n);
      json_builder_add_string_value (b, b64);
    }
}

static gboolean
st_sim_save (StSimSocket *s, GError **error)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree gchar *text = NULL;
  gsize len = 0;
  gboolean ok;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "version");
  json_builder_add_int_value (b, 1);
  json_builder_set_member_name (b, "seed");
  json_builder_add_int_value (b, s->seed);
  json_builder_set_member_name (b, "phase");
  json_builder_add_string_value (b, st_sim_phase_to_string (s->phase));
  json_builder_set_member_name (b, "devices");
  json_builder_begin_array (b);
  for (guint i = 0; i < s->records->len; i++)
    {
      StSimRecord *r = g_ptr_array_index (s->records, i);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "index");
      json_builder_add_int_value (b, i);
      json_builder_set_member_name (b, "uid");
      json_builder_add_string_value (b, r->uid_hex);
      json_builder_set_member_name (b, "state");
      json_builder_add_int_value (b, r->state);
      json_builder_set_member_name (b, "locked");
      json_builder_add_boolean_value (b, r->locked);
      st_sim_builder_add_b64 (b, "cert", r->cert);
      st_sim_builder_add_b64 (b, "chain", r->chain);
      st_sim_builder_add_b64 (b, "matter_cd", r->matter_cd);
      st_sim_builder_add_b64 (b, "matter_data", r->matter_data);
      json_builder_set_member_name (b, "ext_slot_requests");
      json_builder_add_int_value (b, r->n_ext_slot_requests);
      if (r->key == NULL && r->key_obj != NULL)
        r->key = st_sim_key_to_pkcs8 (r->key_obj);
      st_sim_builder_add_b64 (b, "key", r->key);
      json_builder_set_member_name (b, "keygen_executed");
      json_builder_add_int_value (b, r->n_keygen);
      json_builder_set_member_name (b, "keys_made");
      json_builder_add_int_value (b, r->n_keys_made);
      json_builder_set_member_name (b, "commits");
      json_builder_add_int_value (b, r->n_commits);
      json_builder_set_member_name (b, "finished");
      json_builder_add_boolean_value (b, r->finished);
      json_builder_set_member_name (b, "presented_locked");
      json_builder_add_boolean_value (b, r->presented_locked);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  text = json_generator_to_data (gen, &len);
  ok = st_file_write_durable (s->state_file, text, len, 0600, error);
  if (!ok)
    g_prefix_error (error, "cannot write the device simulator state %s: ", s->state_file);
  return ok;
}

static gboolean
st_sim_json_int (JsonObject *o, const char *name, gint64 max, gint64 *out, GError **error)
{
  JsonNode *n = json_object_get_member (o, name);
  gint64 v;
  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_INT64
      || (v = json_node_get_int (n)) < 0 || v > max)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "member \"%s\" is missing or not an integer 0..%" G_GINT64_FORMAT, name, max);
      return FALSE;
    }
  *out = v;
  return TRUE;
}

static gboolean
st_sim_json_bool (JsonObject *o, const char *name, gboolean *out, GError **error)
{
  JsonNode *n = json_object_get_member (o, name);
  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_BOOLEAN)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "member \"%s\" is missing or not a boolean", name);
      return FALSE;
    }
  *out = json_node_get_boolean (n);
  return TRUE;
}

static gboolean
st_sim_json_string (JsonObject *o, const char *name, const char **out, GError **error)
{
  JsonNode *n = json_object_get_member (o, name);
  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "member \"%s\" is missing or not a string", name);
      return FALSE;
    }
  *out = json_node_get_string (n);
  return TRUE;
}

/* Base64 or null; at most @max bytes. */
static gboolean
st_sim_json_b64 (JsonObject *o, const char *name, gsize max, GBytes **out, GError **error)
{
  JsonNode *n = json_object_get_member (o, name);
  const char *text;
  guchar *data;
  gsize len = 0;

  *out = NULL;
  if (n != NULL && JSON_NODE_HOLDS_NULL (n))
    return TRUE;
  if (!st_sim_json_string (o, name, &text, error))
    return FALSE;
  if (strlen (text) > (max / 3 + 1) * 4)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "member \"%s\" is larger than %" G_GSIZE_FORMAT " bytes", name, max);
      return FALSE;
    }
  data = g_base64_decode (text, &len);
  if (len == 0 || len > max)
    {
      g_free (data);
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "member \"%s\" is not base64 of 1 to %" G_GSIZE_FORMAT " bytes", name, max);
      return FALSE;
    }
  *out = g_bytes_new_take (data, len);
  return TRUE;
}

static StSimRecord *
st_sim_record_from_json (JsonObject *o, GError **error)
{
  StSimRecord *r = g_new0 (StSimRecord, 1);
  const char *uid = NULL;
  gint64 v = 0;
  g_autoptr(GBytes) uid_bytes = NULL;
  gboolean ok;

  ok = st_sim_json_string (o, "uid", &uid, error);
  if (ok)
    {
      uid_bytes = st_hex_decode (uid, error);
      ok = uid_bytes != NULL;
    }
  if (ok && (g_bytes_get_size (uid_bytes) < 1 || g_bytes_get_size (uid_bytes) > 32))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "uid \"%s\" is not 1 to 32 bytes", uid);
      ok = FALSE;
    }
  if (ok)
    {
      r->uid_len = g_bytes_get_size (uid_bytes);
      memcpy (r->uid, g_bytes_get_data (uid_bytes, NULL), r->uid_len);
      r->uid_hex = st_hex_encode (r->uid, r->uid_len);
    }
  ok = ok && st_sim_json_int (o, "state", 3, &v, error);
  r->state = (guint8) v;
  ok = ok && st_sim_json_bool (o, "locked", &r->locked, error);
  ok = ok && st_sim_json_b64 (o, "cert", ST_AGENT_SLOT1_MAX, &r->cert, error);
  ok = ok && st_sim_json_b64 (o, "chain", ST_AGENT_SLOT2_MAX, &r->chain, error);
  /* matter-1 members: absent from state files written before it. */
  if (ok && json_object_has_member (o, "matter_cd"))
    ok = st_sim_json_b64 (o, "matter_cd", ST_AGENT_SLOT3_MAX, &r->matter_cd, error);
  if (ok && json_object_has_member (o, "matter_data"))
    ok = st_sim_json_b64 (o, "matter_data", ST_AGENT_SLOT4_MAX, &r->matter_data, error);
  if (ok && json_object_has_member (o, "ext_slot_requests"))
    {
      ok = st_sim_json_int (o, "ext_slot_requests", G_MAXUINT, &v, error);
      r->n_ext_slot_requests = (guint) v;
    }
  ok = ok && st_sim_json_b64 (o, "key", ST_AGENT_KEY_MAX, &r->key, error);
  ok = ok && st_sim_json_int (o, "keygen_executed", G_MAXUINT, &v, error);
  r->n_keygen = (guint) v;
  ok = ok && st_sim_json_int (o, "keys_made", G_MAXUINT, &v, error);
  r->n_keys_made = (guint) v;
  ok = ok && st_sim_json_int (o, "commits", G_MAXUINT, &v, error);
  r->n_commits = (guint) v;
  ok = ok && st_sim_json_bool (o, "finished", &r->finished, error);
  ok = ok && st_sim_json_bool (o, "presented_locked", &r->presented_locked, error);
  if (!ok)
    {
      st_sim_record_free (r);
      return NULL;
    }
  return r;
}

static gboolean
st_sim_load (StSimSocket *s, GError **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autofree gchar *text = NULL;
  gsize len = 0;
  JsonNode *root;
  JsonObject *o;
  JsonNode *devices;
  JsonArray *arr;
  const char *phase = NULL;

  if (!g_file_get_contents (s->state_file, &text, &len, error))
    return FALSE;
  if (len > ST_SIM_STATE_FILE_MAX)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "the file is larger than %d bytes", ST_SIM_STATE_FILE_MAX);
      return FALSE;
    }
  if (!json_parser_load_from_data (parser, text, (gssize) len, error))
    return FALSE;
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "not a JSON object");
      return FALSE;
    }
  o = json_node_get_object (root);
  if (!st_sim_json_string (o, "phase", &phase, error))
    return FALSE;
  devices = json_object_get_member (o, "devices");
  if (devices == NULL || !JSON_NODE_HOLDS_ARRAY (devices))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "member \"devices\" is missing or not an array");
      return FALSE;
    }
  arr = json_node_get_array (devices);
  for (guint i = 0; i < json_array_get_length (arr); i++)
    {
      JsonNode *n = json_array_get_element (arr, i);
      StSimRecord *r;
      if (!JSON_NODE_HOLDS_OBJECT (n))
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "device %u is not an object", i);
          return FALSE;
        }
      r = st_sim_record_from_json (json_node_get_object (n), error);
      if (r == NULL)
        {
          g_prefix_error (error, "device %u: ", i);
          return FALSE;
        }
      g_ptr_array_add (s->records, r);
    }
  if (g_strcmp0 (phase, "present") == 0 && s->records->len > 0)
    return st_sim_activate (s, s->records->len - 1, error);
  if (g_strcmp0 (phase, "gone") == 0)
    s->phase = ST_SIM_PHASE_GONE;
  else
    st_sim_start_empty (s);
  return TRUE;
}

static void
st_sim_save_if_dirty (StSimSocket *s)
{
  g_autoptr(GError) error = NULL;
  if (!s->dirty || s->state_file == NULL)
    return;
  s->dirty = FALSE;
  if (!st_sim_save (s, &error))
    g_warning ("%s", error->message);
}

/* ---- the socket ---------------------------------------------------------- */

StSimSocket *
st_sim_socket_new (const StSimSocketConfig *config, GError **error)
{
  g_autoptr(StSimSocket) s = g_new0 (StSimSocket, 1);

  g_return_val_if_fail (config != NULL, NULL);
  s->units = config->units;
  s->seed = config->seed;
  s->model = g_strdup (config->model != NULL ? config->model : "SIM-DEV-1");
  s->algorithms = config->algorithms != 0 ? config->algorithms : 0x07;
  s->no_matter = config->no_matter;
  s->faults = config->faults;
  s->fault_unit = config->fault_unit;
  s->swap_delay_ms = config->swap_delay_ms;
  s->state_file = g_strdup (config->state_file);
  s->records = g_ptr_array_new_with_free_func ((GDestroyNotify) st_sim_record_free);

  if (strlen (s->model) < 1 || strlen (s->model) > 64 || !g_utf8_validate (s->model, -1, NULL))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "the simulated model name must be 1 to 64 bytes of UTF-8");
      return NULL;
    }
  if ((s->algorithms & ~0x07) != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "algorithms 0x%02x: only bits 0 to 2 (P-256, P-384, Ed25519) exist", s->algorithms);
      return NULL;
    }
  if (s->state_file != NULL && g_file_test (s->state_file, G_FILE_TEST_EXISTS))
    {
      if (!st_sim_load (s, error))
        {
          g_prefix_error (error, "cannot load the device simulator state %s (remove it to start afresh): ",
                          s->state_file);
          return NULL;
        }
    }
  else if (config->present > 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                   "device %u cannot be presented again: there is no state file %s", config->present,
                   s->state_file != NULL ? s->state_file : "(none given)");
      return NULL;
    }
  else
    st_sim_present_next (s);
  if (config->present > 0)
    {
      /* A device from the state file back in the socket, as committed
       * (QA putting a flashed unit into its test socket). */
      if (config->present > s->records->len)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                       "device %u cannot be presented again: %s records %u device(s)",
                       config->present, s->state_file, s->records->len);
          return NULL;
        }
      st_sim_drop_device (s);
      if (!st_sim_activate (s, config->present - 1, error))
        return NULL;
      s->units = s->records->len; /* no new devices after it */
    }
  s->dirty = TRUE;
  st_sim_save_if_dirty (s);
  return g_steal_pointer (&s);
}

void
st_sim_socket_free (StSimSocket *socket)
{
  if (socket == NULL)
    return;
  st_sim_drop_device (socket);
  g_free (socket->agent);
  g_clear_pointer (&socket->records, g_ptr_array_unref);
  g_free (socket->model);
  g_free (socket->state_file);
  g_free (socket);
}

static void
st_sim_socket_tick (StSimSocket *s)
{
  if (s->phase == ST_SIM_PHASE_EMPTY && g_get_monotonic_time () >= s->empty_until)
    st_sim_present_next (s);
}

void
st_sim_socket_receive (StSimSocket *socket, const guint8 *data, gsize len, GByteArray *out)
{
  g_return_if_fail (socket != NULL);
  g_return_if_fail (out != NULL);
  g_return_if_fail (data != NULL || len == 0);

  socket->out = out;
  st_sim_socket_tick (socket);
  for (gsize i = 0; i < len; i++)
    {
      if (socket->phase == ST_SIM_PHASE_EMPTY)
        st_sim_socket_tick (socket);
      if (socket->phase != ST_SIM_PHASE_PRESENT || socket->streaming_garbage)
        continue;
      if (data[i] == 0 && socket->agent->rx.n == 0 && !socket->agent->rx.discarding)
        socket->fresh_session = TRUE; /* an empty frame: a freshly opened port */
      st_agent_receive (socket->agent, data + i, 1);
    }
  if (socket->phase == ST_SIM_PHASE_PRESENT && socket->streaming_garbage)
    st_sim_append_garbage (socket, ST_SIM_GARBAGE_PER_CALL);
  socket->out = NULL;
  st_sim_save_if_dirty (socket);
}

guint
st_sim_socket_get_n_presented (StSimSocket *socket)
{
  g_return_val_if_fail (socket != NULL, 0);
  return socket->records_base + socket->records->len;
}

gboolean
st_sim_socket_get_device (StSimSocket *socket, guint index, gchar **uid_hex,
                          guint *n_keygen_executed, guint *n_keys_made, guint8 *state)
{
  StSimRecord *r;
  g_return_val_if_fail (socket != NULL, FALSE);
  if (index < socket->records_base || index - socket->records_base >= socket->records->len)
    return FALSE;
  r = g_ptr_array_index (socket->records, index - socket->records_base);
  if (uid_hex != NULL)
    *uid_hex = g_strdup (r->uid_hex);
  if (n_keygen_executed != NULL)
    *n_keygen_executed = r->n_keygen;
  if (n_keys_made != NULL)
    *n_keys_made = r->n_keys_made;
  if (state != NULL)
    *state = r->state;
  return TRUE;
}

gboolean
st_sim_socket_get_matter (StSimSocket *socket, guint index, GBytes **cd, GBytes **commissioning,
                          guint *n_ext_slot_requests)
{
  StSimRecord *r;
  g_return_val_if_fail (socket != NULL, FALSE);
  if (index < socket->records_base || index - socket->records_base >= socket->records->len)
    return FALSE;
  r = g_ptr_array_index (socket->records, index - socket->records_base);
  if (cd != NULL)
    *cd = r->matter_cd != NULL ? g_bytes_ref (r->matter_cd) : NULL;
  if (commissioning != NULL)
    *commissioning = r->matter_data != NULL ? g_bytes_ref (r->matter_data) : NULL;
  if (n_ext_slot_requests != NULL)
    *n_ext_slot_requests = r->n_ext_slot_requests;
  return TRUE;
}
