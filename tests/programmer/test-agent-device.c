/* The portable device core (programmer/agent/st-agent.c) against fake hooks
 * that record what the core asks of the storage and crypto. */
#include <glib.h>
#include <string.h>

#include "st-agent.h"
#include "st-frame.h"

#define NO_RESPONSE 0xFF

typedef struct {
  GByteArray *out;
  guint n_keygen, n_put_key, n_sign, n_commit, n_abort, n_load, n_observe, n_replayed;
  /* The fake device's keys: ids, 0 = none. */
  guint next_key_id;
  guint pending_key;
  guint committed_key;
  GByteArray *put_key_der;
  /* Committed storage. */
  GByteArray *c1, *c2;
  gboolean c_locked;
  /* Knobs. */
  guint8 commit_status;
  guint8 put_key_status;
  gboolean load_fails;
  gsize csr_len;
} Fake;

typedef struct {
  Fake fake;
  StAgent *agent;
  guint16 seq;
} Fixture;

static void
fake_output (void *user_data, const uint8_t *data, size_t len)
{
  Fake *f = user_data;
  g_byte_array_append (f->out, data, (guint) len);
}

static uint8_t
fake_keygen (void *user_data, uint8_t alg, uint8_t *csr, size_t csr_max, size_t *csr_len)
{
  Fake *f = user_data;
  f->n_keygen++;
  f->pending_key = ++f->next_key_id;
  if (f->csr_len > csr_max)
    {
      f->pending_key = 0;
      return ST_AGENT_RC_INTERNAL;
    }
  for (gsize i = 0; i < f->csr_len; i++)
    csr[i] = (guint8) (i + f->pending_key);
  csr[0] = 0x30;
  csr[1] = alg;
  csr[2] = (guint8) f->pending_key;
  *csr_len = f->csr_len;
  return ST_AGENT_RC_OK;
}

static uint8_t
fake_put_key (void *user_data, uint8_t alg, const uint8_t *der, size_t len)
{
  Fake *f = user_data;
  f->n_put_key++;
  if (f->put_key_status != ST_AGENT_RC_OK)
    return f->put_key_status;
  g_byte_array_set_size (f->put_key_der, 0);
  g_byte_array_append (f->put_key_der, der, (guint) len);
  f->pending_key = ++f->next_key_id;
  return ST_AGENT_RC_OK;
}

/* The "signature": the key id, then the message itself. */
static uint8_t
fake_sign (void *user_data, const uint8_t *msg, size_t msg_len, uint8_t *sig, size_t sig_max,
           size_t *sig_len)
{
  Fake *f = user_data;
  guint key = f->pending_key != 0 ? f->pending_key : f->committed_key;
  f->n_sign++;
  if (key == 0 || msg_len + 1 > sig_max)
    return ST_AGENT_RC_INTERNAL;
  sig[0] = (guint8) key;
  memcpy (sig + 1, msg, msg_len);
  *sig_len = msg_len + 1;
  return ST_AGENT_RC_OK;
}

static uint8_t
fake_commit (void *user_data, const uint8_t *slot1, size_t len1, const uint8_t *slot2, size_t len2,
             int lock)
{
  Fake *f = user_data;
  f->n_commit++;
  if (f->commit_status != ST_AGENT_RC_OK)
    return f->commit_status;
  g_byte_array_set_size (f->c1, 0);
  g_byte_array_append (f->c1, slot1, (guint) len1);
  g_byte_array_set_size (f->c2, 0);
  g_byte_array_append (f->c2, slot2, (guint) len2);
  if (f->pending_key != 0)
    f->committed_key = f->pending_key;
  f->pending_key = 0;
  f->c_locked = lock;
  return ST_AGENT_RC_OK;
}

static void
fake_abort (void *user_data)
{
  Fake *f = user_data;
  f->n_abort++;
  f->pending_key = 0;
}

static int
fake_load (void *user_data, uint8_t *slot1, size_t *len1, uint8_t *slot2, size_t *len2, int *has_key,
           int *locked)
{
  Fake *f = user_data;
  f->n_load++;
  if (f->load_fails)
    return -1;
  if (f->c1->len > 0)
    memcpy (slot1, f->c1->data, f->c1->len);
  *len1 = f->c1->len;
  if (f->c2->len > 0)
    memcpy (slot2, f->c2->data, f->c2->len);
  *len2 = f->c2->len;
  *has_key = f->committed_key != 0;
  *locked = f->c_locked;
  return 0;
}

static void
fake_observe (void *user_data, const StFrame *request, int replayed)
{
  Fake *f = user_data;
  f->n_observe++;
  if (replayed)
    f->n_replayed++;
}

static void
fixture_init_agent (Fixture *t)
{
  StAgentInfo info;
  StAgentHooks hooks = {
    .user_data = &t->fake,
    .output = fake_output,
    .keygen = fake_keygen,
    .put_key = fake_put_key,
    .sign = fake_sign,
    .commit = fake_commit,
    .abort = fake_abort,
    .load = fake_load,
    .observe = fake_observe,
  };
  memset (&info, 0, sizeof info);
  for (guint i = 0; i < 12; i++)
    info.uid[i] = (guint8) (0xA0 + i);
  info.uid_len = 12;
  g_strlcpy (info.model, "TEST-MODEL", sizeof info.model);
  g_strlcpy (info.fw_version, "1.2.3", sizeof info.fw_version);
  info.algorithms = 0x05;   /* P-256 and Ed25519, not P-384 */
  if (t->agent == NULL)
    t->agent = g_new0 (StAgent, 1);
  g_assert_cmpint (st_agent_init (t->agent, &info, &hooks), ==, t->fake.load_fails ? -1 : 0);
}

static void
fixture_setup (Fixture *t, gconstpointer data)
{
  memset (t, 0, sizeof *t);
  t->fake.out = g_byte_array_new ();
  t->fake.put_key_der = g_byte_array_new ();
  t->fake.c1 = g_byte_array_new ();
  t->fake.c2 = g_byte_array_new ();
  t->fake.csr_len = 200;
  t->seq = 1;
  fixture_init_agent (t);
}

static void
fixture_teardown (Fixture *t, gconstpointer data)
{
  st_agent_clear (t->agent);
  g_free (t->agent);
  g_byte_array_unref (t->fake.out);
  g_byte_array_unref (t->fake.put_key_der);
  g_byte_array_unref (t->fake.c1);
  g_byte_array_unref (t->fake.c2);
}

/* Feeds @wire; decodes what came back: exactly one response expected when
 * @want_op is not 0. Returns the status or NO_RESPONSE. */
static guint8
feed_and_decode (Fixture *t, const guint8 *wire, gsize wire_len, guint8 want_op, guint16 want_seq,
                 GBytes **result)
{
  StFrameRx rx;
  guint8 body[ST_FRAME_MAX_BODY];
  gsize body_len = 0;
  StFrame f;
  guint frames = 0;
  guint8 status = NO_RESPONSE;

  if (result != NULL)
    *result = NULL;
  g_byte_array_set_size (t->fake.out, 0);
  st_agent_receive (t->agent, wire, wire_len);
  st_frame_rx_init (&rx);
  for (guint i = 0; i < t->fake.out->len; i++)
    {
      if (!st_frame_rx_push (&rx, t->fake.out->data[i], body, sizeof body, &body_len))
        continue;
      g_assert_cmpint (st_frame_parse_body (body, body_len, &f), ==, 0);
      frames++;
      g_assert_cmpuint (f.op, ==, want_op | 0x80);
      g_assert_cmpuint (f.seq, ==, want_seq);
      g_assert_cmpuint (f.len, >=, 1);
      status = f.payload[0];
      if (status != ST_AGENT_RC_OK)
        g_assert_cmpuint (f.len, ==, 1);
      if (result != NULL)
        *result = g_bytes_new (f.payload + 1, f.len - 1u);
    }
  /* Nothing but whole frames on the wire. */
  g_assert_cmpuint (rx.n, ==, 0);
  g_assert_cmpuint (frames, <=, 1);
  return status;
}

static guint8
request (Fixture *t, guint8 op, const void *payload, gsize len, GBytes **result)
{
  guint8 wire[ST_FRAME_MAX_WIRE];
  guint16 seq = t->seq++;
  gsize n = st_frame_encode (op, seq, payload, (guint16) len, wire, sizeof wire);
  g_assert_cmpuint (n, >, 0);
  return feed_and_decode (t, wire, n, op, seq, result);
}

static guint8
chunk_req (Fixture *t, guint8 op, guint8 a, guint16 offset, guint16 total, const guint8 *chunk, gsize len)
{
  g_autofree guint8 *p = g_malloc (5 + len);
  p[0] = a;
  p[1] = (guint8) offset;
  p[2] = (guint8) (offset >> 8);
  p[3] = (guint8) total;
  p[4] = (guint8) (total >> 8);
  if (len > 0)
    memcpy (p + 5, chunk, len);
  return request (t, op, p, 5 + len, NULL);
}

static guint8
read_req (Fixture *t, guint8 slot, guint16 offset, guint16 max, GBytes **result)
{
  guint8 p[5] = { slot, (guint8) offset, (guint8) (offset >> 8), (guint8) max, (guint8) (max >> 8) };
  return request (t, ST_AGENT_OP_READ, p, sizeof p, result);
}

/* Reads a whole slot with @max-byte READs. */
static GBytes *
read_slot (Fixture *t, guint8 slot, guint16 max)
{
  g_autoptr(GByteArray) all = g_byte_array_new ();
  guint total = 0;
  do
    {
      g_autoptr(GBytes) r = NULL;
      gsize n = 0;
      const guint8 *d;
      g_assert_cmpuint (read_req (t, slot, (guint16) all->len, max, &r), ==, ST_AGENT_RC_OK);
      d = g_bytes_get_data (r, &n);
      g_assert_cmpuint (n, >=, 2);
      total = d[0] | (d[1] << 8);
      g_assert_cmpuint (n - 2, <=, max);
      g_assert_cmpuint (all->len + n - 2, <=, total);
      if (total > all->len)
        g_assert_cmpuint (n - 2, >, 0);
      g_byte_array_append (all, d + 2, (guint) (n - 2));
    }
  while (all->len < total);
  return g_byte_array_free_to_bytes (g_steal_pointer (&all));
}

static void
write_slot (Fixture *t, guint8 slot, const guint8 *data, gsize len, gsize chunk)
{
  gsize off = 0;
  do
    {
      gsize n = MIN (chunk, len - off);
      g_assert_cmpuint (chunk_req (t, ST_AGENT_OP_WRITE, slot, (guint16) off, (guint16) len, data + off, n),
                        ==, ST_AGENT_RC_OK);
      off += n;
    }
  while (off < len);
}

static guint8
hello_state (Fixture *t)
{
  g_autoptr(GBytes) r = NULL;
  gsize n = 0;
  const guint8 *d;
  g_assert_cmpuint (request (t, ST_AGENT_OP_HELLO, NULL, 0, &r), ==, ST_AGENT_RC_OK);
  d = g_bytes_get_data (r, &n);
  for (gsize i = 0; i + 2 <= n; i += 2u + d[i + 1])
    if (d[i] == ST_AGENT_TLV_STATE)
      return d[i + 2];
  g_assert_not_reached ();
  return 0xFF;
}

static guint8
keygen (Fixture *t, guint8 alg)
{
  return request (t, ST_AGENT_OP_KEYGEN, &alg, 1, NULL);
}

static guint8 *
pattern (gsize len, guint8 salt)
{
  guint8 *p = g_malloc (len + 1);
  for (gsize i = 0; i < len; i++)
    p[i] = (guint8) (i * 7 + salt);
  return p;
}

static void
test_hello (Fixture *t, gconstpointer data)
{
  g_autoptr(GBytes) r = NULL;
  gsize n = 0;
  const guint8 *d;
  guint seen = 0;

  g_assert_cmpuint (request (t, ST_AGENT_OP_HELLO, NULL, 0, &r), ==, ST_AGENT_RC_OK);
  d = g_bytes_get_data (r, &n);
  for (gsize i = 0; i < n;)
    {
      guint8 type, len;
      g_assert_cmpuint (i + 2, <=, n);
      type = d[i];
      len = d[i + 1];
      g_assert_cmpuint (i + 2 + len, <=, n);
      switch (type)
        {
        case ST_AGENT_TLV_UID:
          g_assert_cmpuint (len, ==, 12);
          g_assert_cmpuint (d[i + 2], ==, 0xA0);
          g_assert_cmpuint (d[i + 2 + 11], ==, 0xAB);
          break;
        case ST_AGENT_TLV_MODEL:
          g_assert_cmpmem (d + i + 2, len, "TEST-MODEL", 10);
          break;
        case ST_AGENT_TLV_FW_VERSION:
          g_assert_cmpmem (d + i + 2, len, "1.2.3", 5);
          break;
        case ST_AGENT_TLV_ALGORITHMS:
          g_assert_cmpuint (len, ==, 1);
          g_assert_cmpuint (d[i + 2], ==, 0x05);
          break;
        case ST_AGENT_TLV_STATE:
          g_assert_cmpuint (len, ==, 1);
          g_assert_cmpuint (d[i + 2], ==, ST_AGENT_STATE_BLANK);
          break;
        case ST_AGENT_TLV_MAX_PAYLOAD:
          g_assert_cmpuint (len, ==, 2);
          g_assert_cmpuint (d[i + 2] | (d[i + 3] << 8), ==, 2048);
          break;
        default:
          g_assert_not_reached ();
        }
      seen |= 1u << type;
      i += 2u + len;
    }
  g_assert_cmphex (seen, ==, 0x7E);
  /* HELLO takes no payload. */
  g_assert_cmpuint (request (t, ST_AGENT_OP_HELLO, "x", 1, NULL), ==, ST_AGENT_RC_BAD_REQUEST);
}

static void
test_keygen (Fixture *t, gconstpointer data)
{
  g_autoptr(GBytes) csr = NULL;
  g_autoptr(GBytes) csr2 = NULL;
  guint8 alg;

  /* Unknown or unsupported algorithms; malformed payloads. */
  for (guint8 a = 0; a < 8; a++)
    if (a != 1 && a != 3)
      g_assert_cmpuint (keygen (t, a), ==, ST_AGENT_RC_UNSUPPORTED);
  g_assert_cmpuint (request (t, ST_AGENT_OP_KEYGEN, NULL, 0, NULL), ==, ST_AGENT_RC_BAD_REQUEST);
  g_assert_cmpuint (request (t, ST_AGENT_OP_KEYGEN, "\x01\x01", 2, NULL), ==, ST_AGENT_RC_BAD_REQUEST);
  g_assert_cmpuint (t->fake.n_keygen, ==, 0);
  g_assert_cmpuint (hello_state (t), ==, ST_AGENT_STATE_BLANK);

  alg = 1;
  g_assert_cmpuint (request (t, ST_AGENT_OP_KEYGEN, &alg, 1, &csr), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (g_bytes_get_size (csr), ==, 200);
  g_assert_cmpuint (((const guint8 *) g_bytes_get_data (csr, NULL))[1], ==, 1);
  g_assert_cmpuint (t->fake.n_keygen, ==, 1);
  g_assert_cmpuint (hello_state (t), ==, ST_AGENT_STATE_KEY_PRESENT);

  /* A CSR as large as a response can carry (2047 bytes), and one larger. */
  t->fake.csr_len = ST_AGENT_MAX_PAYLOAD - 1;
  alg = 3;
  g_assert_cmpuint (request (t, ST_AGENT_OP_KEYGEN, &alg, 1, &csr2), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (g_bytes_get_size (csr2), ==, ST_AGENT_MAX_PAYLOAD - 1);
  t->fake.csr_len = ST_AGENT_MAX_PAYLOAD;
  g_assert_cmpuint (keygen (t, 3), ==, ST_AGENT_RC_INTERNAL);
  /* The failed KEYGEN left no key. */
  g_assert_cmpuint (hello_state (t), ==, ST_AGENT_STATE_BLANK);
  g_assert_cmpuint (request (t, ST_AGENT_OP_SIGN, "0123456789abcdef0123456789abcdef", 32, NULL), ==,
                    ST_AGENT_RC_BAD_STATE);
}

static void
test_retry_idempotent (Fixture *t, gconstpointer data)
{
  guint8 wire[64], wire2[64];
  gsize n, n2;
  g_autoptr(GBytes) r1 = NULL;
  g_autoptr(GBytes) r2 = NULL;
  g_autoptr(GBytes) r3 = NULL;
  g_autoptr(GByteArray) first = g_byte_array_new ();

  /* The same KEYGEN body three times: one key, three identical responses. */
  n = st_frame_encode (ST_AGENT_OP_KEYGEN, 500, (const guint8 *) "\x01", 1, wire, sizeof wire);
  g_assert_cmpuint (feed_and_decode (t, wire, n, ST_AGENT_OP_KEYGEN, 500, &r1), ==, ST_AGENT_RC_OK);
  g_byte_array_append (first, t->fake.out->data, t->fake.out->len);
  g_assert_cmpuint (feed_and_decode (t, wire, n, ST_AGENT_OP_KEYGEN, 500, &r2), ==, ST_AGENT_RC_OK);
  g_assert_cmpmem (t->fake.out->data, t->fake.out->len, first->data, first->len);
  g_assert_cmpuint (feed_and_decode (t, wire, n, ST_AGENT_OP_KEYGEN, 500, &r3), ==, ST_AGENT_RC_OK);
  g_assert_true (g_bytes_equal (r1, r2) && g_bytes_equal (r1, r3));
  g_assert_cmpuint (t->fake.n_keygen, ==, 1);
  g_assert_cmpuint (t->fake.n_replayed, ==, 2);

  /* The same op with a new seq is a new request: executed. */
  n2 = st_frame_encode (ST_AGENT_OP_KEYGEN, 501, (const guint8 *) "\x01", 1, wire2, sizeof wire2);
  g_assert_cmpuint (feed_and_decode (t, wire2, n2, ST_AGENT_OP_KEYGEN, 501, NULL), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (t->fake.n_keygen, ==, 2);
  /* Only the last request is remembered: the first body again executes. */
  g_assert_cmpuint (feed_and_decode (t, wire, n, ST_AGENT_OP_KEYGEN, 500, NULL), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (t->fake.n_keygen, ==, 3);

  /* A retried WRITE chunk is answered OK again, not re-applied (which
   * would be an out-of-order offset). */
  {
    guint8 p[5 + 4] = { 1, 0, 0, 8, 0, 'a', 'b', 'c', 'd' };
    guint8 p2[5 + 4] = { 1, 4, 0, 8, 0, 'e', 'f', 'g', 'h' };
    g_autoptr(GBytes) slot = NULL;
    n = st_frame_encode (ST_AGENT_OP_WRITE, 600, p, sizeof p, wire, sizeof wire);
    g_assert_cmpuint (feed_and_decode (t, wire, n, ST_AGENT_OP_WRITE, 600, NULL), ==, ST_AGENT_RC_OK);
    g_assert_cmpuint (feed_and_decode (t, wire, n, ST_AGENT_OP_WRITE, 600, NULL), ==, ST_AGENT_RC_OK);
    n = st_frame_encode (ST_AGENT_OP_WRITE, 601, p2, sizeof p2, wire, sizeof wire);
    g_assert_cmpuint (feed_and_decode (t, wire, n, ST_AGENT_OP_WRITE, 601, NULL), ==, ST_AGENT_RC_OK);
    g_assert_cmpuint (feed_and_decode (t, wire, n, ST_AGENT_OP_WRITE, 601, NULL), ==, ST_AGENT_RC_OK);
    slot = read_slot (t, 1, 100);
    g_assert_cmpmem (g_bytes_get_data (slot, NULL), g_bytes_get_size (slot), "abcdefgh", 8);
  }
  /* A retry split across receive calls, with the initial 0x00, still hits. */
  {
    guint keys = t->fake.n_keygen;
    n = st_frame_encode (ST_AGENT_OP_KEYGEN, 700, (const guint8 *) "\x03", 1, wire, sizeof wire);
    g_assert_cmpuint (feed_and_decode (t, wire, n, ST_AGENT_OP_KEYGEN, 700, NULL), ==, ST_AGENT_RC_OK);
    g_byte_array_set_size (t->fake.out, 0);
    st_agent_receive (t->agent, (const guint8 *) "", 1);
    st_agent_receive (t->agent, wire, 3);
    g_assert_cmpuint (t->fake.out->len, ==, 0);
    g_assert_cmpuint (feed_and_decode (t, wire + 3, n - 3, ST_AGENT_OP_KEYGEN, 700, NULL), ==, ST_AGENT_RC_OK);
    g_assert_cmpuint (t->fake.n_keygen, ==, keys + 1);
  }
}

static void
test_write_chunks (Fixture *t, gconstpointer data)
{
  g_autofree guint8 *cert = pattern (1500, 3);
  g_autofree guint8 *big = pattern (ST_AGENT_SLOT2_MAX + 1, 9);
  g_autoptr(GBytes) back = NULL;
  g_autoptr(GBytes) r = NULL;

  /* Slot 1 needs a key; slot 2 does not. */
  g_assert_cmpuint (chunk_req (t, ST_AGENT_OP_WRITE, 1, 0, 10, cert, 10), ==, ST_AGENT_RC_BAD_STATE);
  g_assert_cmpuint (chunk_req (t, ST_AGENT_OP_WRITE, 2, 0, 10, cert, 10), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (keygen (t, 1), ==, ST_AGENT_RC_OK);

  /* Malformed: too short; unknown slots. */
  g_assert_cmpuint (request (t, ST_AGENT_OP_WRITE, "\x01\x00\x00\x00", 4, NULL), ==, ST_AGENT_RC_BAD_REQUEST);
  g_assert_cmpuint (chunk_req (t, ST_AGENT_OP_WRITE, 0, 0, 10, cert, 10), ==, ST_AGENT_RC_UNSUPPORTED);
  g_assert_cmpuint (chunk_req (t, ST_AGENT_OP_WRITE, 3, 0, 10, cert, 10), ==, ST_AGENT_RC_UNSUPPORTED);

  /* Larger than the slots: TOO_LARGE; the exact capacity is fine. */
  g_assert_cmpuint (chunk_req (t, ST_AGENT_OP_WRITE, 1, 0, ST_AGENT_SLOT1_MAX + 1, cert, 10), ==,
                    ST_AGENT_RC_TOO_LARGE);
  g_assert_cmpuint (chunk_req (t, ST_AGENT_OP_WRITE, 2, 0, ST_AGENT_SLOT2_MAX + 1, cert, 10), ==,
                    ST_AGENT_RC_TOO_LARGE);
  write_slot (t, 2, big, ST_AGENT_SLOT2_MAX, 2000);
  back = read_slot (t, 2, 0xFFFF);
  g_assert_cmpmem (g_bytes_get_data (back, NULL), g_bytes_get_size (back), big, ST_AGENT_SLOT2_MAX);
  g_clear_pointer (&back, g_bytes_unref);

  /* In order: fine. Out of order, a changed total, past the total: BAD_REQUEST. */
  g_assert_cmpuint (chunk_req (t, ST_AGENT_OP_WRITE, 1, 0, 1500, cert, 600), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (chunk_req (t, ST_AGENT_OP_WRITE, 1, 700, 1500, cert + 700, 100), ==, ST_AGENT_RC_BAD_REQUEST);
  g_assert_cmpuint (chunk_req (t, ST_AGENT_OP_WRITE, 1, 500, 1500, cert + 500, 100), ==, ST_AGENT_RC_BAD_REQUEST);
  g_assert_cmpuint (chunk_req (t, ST_AGENT_OP_WRITE, 1, 600, 1400, cert + 600, 100), ==, ST_AGENT_RC_BAD_REQUEST);
  g_assert_cmpuint (chunk_req (t, ST_AGENT_OP_WRITE, 1, 600, 1500, cert + 600, 901), ==, ST_AGENT_RC_BAD_REQUEST);
  /* While the transfer is open the slot reads as empty, COMMIT refuses. */
  g_assert_cmpuint (read_req (t, 1, 0, 100, &r), ==, ST_AGENT_RC_OK);
  g_assert_cmpmem (g_bytes_get_data (r, NULL), g_bytes_get_size (r), "\x00\x00", 2);
  g_assert_cmpuint (request (t, ST_AGENT_OP_COMMIT, "\x00", 1, NULL), ==, ST_AGENT_RC_BAD_STATE);
  /* The transfer goes on after the rejected chunks. */
  g_assert_cmpuint (chunk_req (t, ST_AGENT_OP_WRITE, 1, 600, 1500, cert + 600, 600), ==, ST_AGENT_RC_OK);
  /* Offset 0 restarts: the old prefix is discarded. */
  g_assert_cmpuint (chunk_req (t, ST_AGENT_OP_WRITE, 1, 0, 1500, cert, 1000), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (chunk_req (t, ST_AGENT_OP_WRITE, 1, 1200, 1500, cert + 1200, 300), ==, ST_AGENT_RC_BAD_REQUEST);
  g_assert_cmpuint (chunk_req (t, ST_AGENT_OP_WRITE, 1, 1000, 1500, cert + 1000, 500), ==, ST_AGENT_RC_OK);
  back = read_slot (t, 1, 256);
  g_assert_cmpmem (g_bytes_get_data (back, NULL), g_bytes_get_size (back), cert, 1500);
  /* A finished transfer takes no more chunks at offset != 0. */
  g_assert_cmpuint (chunk_req (t, ST_AGENT_OP_WRITE, 1, 1500, 1500, NULL, 0), ==, ST_AGENT_RC_BAD_REQUEST);
}

static void
test_read (Fixture *t, gconstpointer data)
{
  g_autofree guint8 *chain = pattern (ST_AGENT_SLOT2_MAX, 1);
  g_autoptr(GBytes) r = NULL;
  const guint8 *d;
  gsize n = 0;

  /* Empty slots: total 0, no data. */
  g_assert_cmpuint (read_req (t, 1, 0, 100, &r), ==, ST_AGENT_RC_OK);
  g_assert_cmpmem (g_bytes_get_data (r, NULL), g_bytes_get_size (r), "\x00\x00", 2);
  g_clear_pointer (&r, g_bytes_unref);
  g_assert_cmpuint (read_req (t, 1, 1, 100, NULL), ==, ST_AGENT_RC_BAD_REQUEST);
  g_assert_cmpuint (read_req (t, 3, 0, 100, NULL), ==, ST_AGENT_RC_UNSUPPORTED);
  g_assert_cmpuint (request (t, ST_AGENT_OP_READ, "\x01\x00\x00\x10", 4, NULL), ==, ST_AGENT_RC_BAD_REQUEST);
  g_assert_cmpuint (request (t, ST_AGENT_OP_READ, "\x01\x00\x00\x10\x00\x00", 6, NULL), ==, ST_AGENT_RC_BAD_REQUEST);

  write_slot (t, 2, chain, ST_AGENT_SLOT2_MAX, 1024);
  /* min(max, total - offset), bounded by one response. */
  g_assert_cmpuint (read_req (t, 2, 100, 10, &r), ==, ST_AGENT_RC_OK);
  d = g_bytes_get_data (r, &n);
  g_assert_cmpuint (n, ==, 12);
  g_assert_cmpuint (d[0] | (d[1] << 8), ==, ST_AGENT_SLOT2_MAX);
  g_assert_cmpmem (d + 2, 10, chain + 100, 10);
  g_clear_pointer (&r, g_bytes_unref);
  g_assert_cmpuint (read_req (t, 2, ST_AGENT_SLOT2_MAX - 5, 100, &r), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (g_bytes_get_size (r), ==, 2 + 5);
  g_clear_pointer (&r, g_bytes_unref);
  g_assert_cmpuint (read_req (t, 2, 0, 0xFFFF, &r), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (g_bytes_get_size (r), ==, ST_AGENT_MAX_PAYLOAD - 1);
  g_clear_pointer (&r, g_bytes_unref);
  g_assert_cmpuint (read_req (t, 2, 0, 0, &r), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (g_bytes_get_size (r), ==, 2);
  g_clear_pointer (&r, g_bytes_unref);
  /* offset == total: no data; offset > total: BAD_REQUEST. */
  g_assert_cmpuint (read_req (t, 2, ST_AGENT_SLOT2_MAX, 100, &r), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (g_bytes_get_size (r), ==, 2);
  g_assert_cmpuint (read_req (t, 2, ST_AGENT_SLOT2_MAX + 1, 100, NULL), ==, ST_AGENT_RC_BAD_REQUEST);
}

static void
test_sign (Fixture *t, gconstpointer data)
{
  guint8 challenge[32];
  g_autoptr(GBytes) sig = NULL;
  const guint8 *d;
  gsize n = 0;

  for (guint i = 0; i < 32; i++)
    challenge[i] = (guint8) (0xC0 ^ i);
  g_assert_cmpuint (request (t, ST_AGENT_OP_SIGN, challenge, 32, NULL), ==, ST_AGENT_RC_BAD_STATE);
  g_assert_cmpuint (t->fake.n_sign, ==, 0);
  g_assert_cmpuint (keygen (t, 1), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (request (t, ST_AGENT_OP_SIGN, challenge, 31, NULL), ==, ST_AGENT_RC_BAD_REQUEST);
  g_assert_cmpuint (request (t, ST_AGENT_OP_SIGN, challenge, 0, NULL), ==, ST_AGENT_RC_BAD_REQUEST);
  g_assert_cmpuint (request (t, ST_AGENT_OP_SIGN, challenge, 32, &sig), ==, ST_AGENT_RC_OK);
  d = g_bytes_get_data (sig, &n);
  g_assert_cmpuint (n, ==, 1 + 48);
  g_assert_cmpuint (d[0], ==, t->fake.pending_key);
  g_assert_cmpmem (d + 1, 16, "PROVISION-POP-V1", 16);
  g_assert_cmpmem (d + 17, 32, challenge, 32);
}

static void
test_commit_lock (Fixture *t, gconstpointer data)
{
  g_autofree guint8 *cert = pattern (700, 5);
  g_autofree guint8 *chain = pattern (1800, 6);
  g_autoptr(GBytes) back = NULL;
  guint key;

  /* No key; a key but no certificate. */
  g_assert_cmpuint (request (t, ST_AGENT_OP_COMMIT, "\x00", 1, NULL), ==, ST_AGENT_RC_BAD_STATE);
  write_slot (t, 2, chain, 1800, 1000);
  g_assert_cmpuint (keygen (t, 1), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (request (t, ST_AGENT_OP_COMMIT, "\x00", 1, NULL), ==, ST_AGENT_RC_BAD_STATE);
  g_assert_cmpuint (request (t, ST_AGENT_OP_COMMIT, NULL, 0, NULL), ==, ST_AGENT_RC_BAD_REQUEST);
  g_assert_cmpuint (t->fake.n_commit, ==, 0);
  write_slot (t, 1, cert, 700, 256);
  write_slot (t, 2, chain, 1800, 1000);
  key = t->fake.pending_key;

  /* Storage failure: nothing changes. */
  t->fake.commit_status = ST_AGENT_RC_STORAGE;
  g_assert_cmpuint (request (t, ST_AGENT_OP_COMMIT, "\x01", 1, NULL), ==, ST_AGENT_RC_STORAGE);
  g_assert_cmpuint (hello_state (t), ==, ST_AGENT_STATE_KEY_PRESENT);
  g_assert_cmpuint (t->fake.c1->len, ==, 0);
  t->fake.commit_status = ST_AGENT_RC_OK;

  /* Unlocked commit: provisioned; slots committed as they were. */
  g_assert_cmpuint (request (t, ST_AGENT_OP_COMMIT, "\x00", 1, NULL), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (hello_state (t), ==, ST_AGENT_STATE_PROVISIONED);
  g_assert_cmpmem (t->fake.c1->data, t->fake.c1->len, cert, 700);
  g_assert_cmpmem (t->fake.c2->data, t->fake.c2->len, chain, 1800);
  g_assert_cmpuint (t->fake.committed_key, ==, key);
  g_assert_false (t->fake.c_locked);

  /* Still writable; then committed with the lock. */
  g_assert_cmpuint (keygen (t, 3), ==, ST_AGENT_RC_OK);
  write_slot (t, 1, chain, 1000, 1000);
  g_assert_cmpuint (request (t, ST_AGENT_OP_COMMIT, "\x01", 1, NULL), ==, ST_AGENT_RC_OK);
  g_assert_true (t->fake.c_locked);
  g_assert_cmpuint (hello_state (t), ==, ST_AGENT_STATE_LOCKED);

  /* Locked: KEYGEN, PUT_KEY, WRITE refused; READ and SIGN still work. */
  g_assert_cmpuint (keygen (t, 1), ==, ST_AGENT_RC_LOCKED);
  g_assert_cmpuint (chunk_req (t, ST_AGENT_OP_PUT_KEY, 1, 0, 4, (const guint8 *) "abcd", 4), ==, ST_AGENT_RC_LOCKED);
  g_assert_cmpuint (chunk_req (t, ST_AGENT_OP_WRITE, 1, 0, 4, (const guint8 *) "abcd", 4), ==, ST_AGENT_RC_LOCKED);
  g_assert_cmpuint (chunk_req (t, ST_AGENT_OP_WRITE, 2, 0, 4, (const guint8 *) "abcd", 4), ==, ST_AGENT_RC_LOCKED);
  g_assert_cmpuint (t->fake.n_keygen, ==, 2);
  back = read_slot (t, 1, 300);
  g_assert_cmpmem (g_bytes_get_data (back, NULL), g_bytes_get_size (back), chain, 1000);
  g_assert_cmpuint (request (t, ST_AGENT_OP_SIGN, cert, 32, NULL), ==, ST_AGENT_RC_OK);
  /* ABORT and a new COMMIT (even without the lock bit) keep the lock. */
  g_assert_cmpuint (request (t, ST_AGENT_OP_ABORT, NULL, 0, NULL), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (request (t, ST_AGENT_OP_COMMIT, "\x00", 1, NULL), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (hello_state (t), ==, ST_AGENT_STATE_LOCKED);
  g_assert_true (t->fake.c_locked);

  /* A reboot (init again) sees the committed, locked state. Clearing
   * leaves no byte of the agent's memory (slots, staged key, last request
   * and response) behind. */
  st_agent_clear (t->agent);
  for (gsize i = 0; i < sizeof *t->agent; i++)
    g_assert_cmpuint (((const guint8 *) t->agent)[i], ==, 0);
  fixture_init_agent (t);
  g_assert_cmpuint (hello_state (t), ==, ST_AGENT_STATE_LOCKED);
  g_clear_pointer (&back, g_bytes_unref);
  back = read_slot (t, 1, 2000);
  g_assert_cmpmem (g_bytes_get_data (back, NULL), g_bytes_get_size (back), chain, 1000);
  g_assert_cmpuint (keygen (t, 1), ==, ST_AGENT_RC_LOCKED);
}

static void
test_abort (Fixture *t, gconstpointer data)
{
  g_autofree guint8 *cert = pattern (600, 1);
  g_autofree guint8 *other = pattern (300, 2);
  g_autoptr(GBytes) back = NULL;
  guint8 challenge[32] = { 0 };
  g_autoptr(GBytes) sig = NULL;

  g_assert_cmpuint (keygen (t, 1), ==, ST_AGENT_RC_OK);
  write_slot (t, 1, cert, 600, 600);
  g_assert_cmpuint (request (t, ST_AGENT_OP_ABORT, "\x00", 1, NULL), ==, ST_AGENT_RC_BAD_REQUEST);
  g_assert_cmpuint (request (t, ST_AGENT_OP_ABORT, NULL, 0, NULL), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (t->fake.n_abort, ==, 1);
  g_assert_cmpuint (hello_state (t), ==, ST_AGENT_STATE_BLANK);
  back = read_slot (t, 1, 100);
  g_assert_cmpuint (g_bytes_get_size (back), ==, 0);
  g_clear_pointer (&back, g_bytes_unref);

  /* Provision, then change things and abort: back to the committed state. */
  g_assert_cmpuint (keygen (t, 1), ==, ST_AGENT_RC_OK);
  write_slot (t, 1, cert, 600, 600);
  g_assert_cmpuint (request (t, ST_AGENT_OP_COMMIT, "\x00", 1, NULL), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (keygen (t, 3), ==, ST_AGENT_RC_OK);
  write_slot (t, 1, other, 300, 300);
  write_slot (t, 2, other, 300, 300);
  g_assert_cmpuint (hello_state (t), ==, ST_AGENT_STATE_KEY_PRESENT);
  g_assert_cmpuint (request (t, ST_AGENT_OP_ABORT, NULL, 0, NULL), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (hello_state (t), ==, ST_AGENT_STATE_PROVISIONED);
  back = read_slot (t, 1, 1000);
  g_assert_cmpmem (g_bytes_get_data (back, NULL), g_bytes_get_size (back), cert, 600);
  g_clear_pointer (&back, g_bytes_unref);
  back = read_slot (t, 2, 1000);
  g_assert_cmpuint (g_bytes_get_size (back), ==, 0);
  g_clear_pointer (&back, g_bytes_unref);
  /* SIGN uses the committed key again. */
  g_assert_cmpuint (request (t, ST_AGENT_OP_SIGN, challenge, 32, &sig), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (((const guint8 *) g_bytes_get_data (sig, NULL))[0], ==, t->fake.committed_key);

  /* KEYGEN also discards uncommitted slot contents. */
  write_slot (t, 2, other, 300, 300);
  g_assert_cmpuint (keygen (t, 1), ==, ST_AGENT_RC_OK);
  back = read_slot (t, 2, 1000);
  g_assert_cmpuint (g_bytes_get_size (back), ==, 0);
}

static void
test_put_key (Fixture *t, gconstpointer data)
{
  g_autofree guint8 *der = pattern (300, 4);
  guint8 challenge[32] = { 1 };
  g_autoptr(GBytes) sig = NULL;

  g_assert_cmpuint (chunk_req (t, ST_AGENT_OP_PUT_KEY, 2, 0, 10, der, 10), ==, ST_AGENT_RC_UNSUPPORTED);
  g_assert_cmpuint (chunk_req (t, ST_AGENT_OP_PUT_KEY, 9, 0, 10, der, 10), ==, ST_AGENT_RC_UNSUPPORTED);
  g_assert_cmpuint (request (t, ST_AGENT_OP_PUT_KEY, "\x01\x00", 2, NULL), ==, ST_AGENT_RC_BAD_REQUEST);
  g_assert_cmpuint (chunk_req (t, ST_AGENT_OP_PUT_KEY, 1, 0, ST_AGENT_KEY_MAX + 1, der, 10), ==,
                    ST_AGENT_RC_TOO_LARGE);
  g_assert_cmpuint (chunk_req (t, ST_AGENT_OP_PUT_KEY, 1, 0, 0, NULL, 0), ==, ST_AGENT_RC_BAD_REQUEST);

  /* Three chunks; the key takes effect with the last one only. */
  g_assert_cmpuint (chunk_req (t, ST_AGENT_OP_PUT_KEY, 1, 0, 300, der, 100), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (chunk_req (t, ST_AGENT_OP_PUT_KEY, 1, 150, 300, der + 150, 100), ==, ST_AGENT_RC_BAD_REQUEST);
  g_assert_cmpuint (chunk_req (t, ST_AGENT_OP_PUT_KEY, 3, 100, 300, der + 100, 100), ==, ST_AGENT_RC_BAD_REQUEST);
  g_assert_cmpuint (chunk_req (t, ST_AGENT_OP_PUT_KEY, 1, 100, 300, der + 100, 100), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (t->fake.n_put_key, ==, 0);
  g_assert_cmpuint (hello_state (t), ==, ST_AGENT_STATE_BLANK);
  g_assert_cmpuint (chunk_req (t, ST_AGENT_OP_PUT_KEY, 1, 200, 300, der + 200, 100), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (t->fake.n_put_key, ==, 1);
  g_assert_cmpmem (t->fake.put_key_der->data, t->fake.put_key_der->len, der, 300);
  g_assert_cmpuint (hello_state (t), ==, ST_AGENT_STATE_KEY_PRESENT);
  /* The staged copy is wiped. */
  for (gsize i = 0; i < ST_AGENT_KEY_MAX; i++)
    g_assert_cmpuint (t->agent->staged_key[i], ==, 0);
  g_assert_cmpuint (request (t, ST_AGENT_OP_SIGN, challenge, 32, &sig), ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (((const guint8 *) g_bytes_get_data (sig, NULL))[0], ==, t->fake.pending_key);

  /* A key the hook rejects: BAD_REQUEST, the previous key stays. */
  t->fake.put_key_status = ST_AGENT_RC_BAD_REQUEST;
  g_assert_cmpuint (chunk_req (t, ST_AGENT_OP_PUT_KEY, 3, 0, 40, der, 40), ==, ST_AGENT_RC_BAD_REQUEST);
  g_assert_cmpuint (hello_state (t), ==, ST_AGENT_STATE_KEY_PRESENT);
}

static void
test_unknown_and_dropped (Fixture *t, gconstpointer data)
{
  static const guint8 ops[] = { 0x00, 0x09, 0x10, 0x7F, 0x81, 0xFF };
  guint8 wire[64];
  guint8 body[32];
  gsize n;
  guint32 crc;

  for (gsize i = 0; i < G_N_ELEMENTS (ops); i++)
    g_assert_cmpuint (request (t, ops[i], "xy", 2, NULL), ==, ST_AGENT_RC_UNKNOWN_OP);

  /* Bad CRC, version 2, len disagreeing, too short, garbage: no answer. */
  memcpy (body, "\x01\x01\x05\x00\x00\x00", 6);
  crc = st_crc32 (0, body, 6);
  body[6] = (guint8) crc;
  body[7] = (guint8) (crc >> 8);
  body[8] = (guint8) (crc >> 16);
  body[9] = (guint8) (crc >> 24);
  n = st_cobs_encode (body, 10, wire, sizeof wire);
  wire[n] = 0;
  g_assert_cmpuint (feed_and_decode (t, wire, n + 1, ST_AGENT_OP_HELLO, 5, NULL), ==, ST_AGENT_RC_OK);

  body[9] ^= 0x40;
  n = st_cobs_encode (body, 10, wire, sizeof wire);
  wire[n] = 0;
  g_assert_cmpuint (feed_and_decode (t, wire, n + 1, 0, 0, NULL), ==, NO_RESPONSE);
  body[9] ^= 0x40;

  body[0] = 2;
  crc = st_crc32 (0, body, 6);
  body[6] = (guint8) crc;
  body[7] = (guint8) (crc >> 8);
  body[8] = (guint8) (crc >> 16);
  body[9] = (guint8) (crc >> 24);
  n = st_cobs_encode (body, 10, wire, sizeof wire);
  wire[n] = 0;
  g_assert_cmpuint (feed_and_decode (t, wire, n + 1, 0, 0, NULL), ==, NO_RESPONSE);

  body[0] = 1;
  body[4] = 1;
  crc = st_crc32 (0, body, 6);
  body[6] = (guint8) crc;
  body[7] = (guint8) (crc >> 8);
  body[8] = (guint8) (crc >> 16);
  body[9] = (guint8) (crc >> 24);
  n = st_cobs_encode (body, 10, wire, sizeof wire);
  wire[n] = 0;
  g_assert_cmpuint (feed_and_decode (t, wire, n + 1, 0, 0, NULL), ==, NO_RESPONSE);

  n = st_cobs_encode (body, 9, wire, sizeof wire);
  wire[n] = 0;
  g_assert_cmpuint (feed_and_decode (t, wire, n + 1, 0, 0, NULL), ==, NO_RESPONSE);

  /* Random garbage of every kind: never an answer, never a crash. */
  {
    g_autoptr(GRand) r = g_rand_new_with_seed (99);
    g_autofree guint8 *junk = g_malloc (100000);
    for (gsize i = 0; i < 100000; i++)
      junk[i] = (guint8) g_rand_int_range (r, 0, 256);
    g_assert_cmpuint (feed_and_decode (t, junk, 100000, 0, 0, NULL), ==, NO_RESPONSE);
    for (gsize i = 0; i < 100000; i++)
      junk[i] = (guint8) g_rand_int_range (r, 1, 256);
    g_assert_cmpuint (feed_and_decode (t, junk, 100000, 0, 0, NULL), ==, NO_RESPONSE);
  }
  g_assert_cmpuint (t->fake.n_keygen + t->fake.n_commit + t->fake.n_abort, ==, 0);
  /* After a delimiter the device answers again. */
  g_assert_cmpuint (feed_and_decode (t, (const guint8 *) "", 1, 0, 0, NULL), ==, NO_RESPONSE);
  g_assert_cmpuint (hello_state (t), ==, ST_AGENT_STATE_BLANK);
}

static void
test_storage_failure (Fixture *t, gconstpointer data)
{
  /* A device whose storage cannot be read at boot answers HELLO, and
   * STORAGE to everything else. */
  st_agent_clear (t->agent);
  t->fake.load_fails = TRUE;
  fixture_init_agent (t);
  g_assert_cmpuint (hello_state (t), ==, ST_AGENT_STATE_BLANK);
  g_assert_cmpuint (keygen (t, 1), ==, ST_AGENT_RC_STORAGE);
  g_assert_cmpuint (read_req (t, 1, 0, 10, NULL), ==, ST_AGENT_RC_STORAGE);
  g_assert_cmpuint (request (t, ST_AGENT_OP_ABORT, NULL, 0, NULL), ==, ST_AGENT_RC_STORAGE);
  g_assert_cmpuint (request (t, 0x42, NULL, 0, NULL), ==, ST_AGENT_RC_UNKNOWN_OP);
  g_assert_cmpuint (t->fake.n_keygen, ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/agent-device/hello", test_hello);
  ADD ("/agent-device/keygen", test_keygen);
  ADD ("/agent-device/retry-idempotent", test_retry_idempotent);
  ADD ("/agent-device/write-chunks", test_write_chunks);
  ADD ("/agent-device/read", test_read);
  ADD ("/agent-device/sign", test_sign);
  ADD ("/agent-device/commit-lock", test_commit_lock);
  ADD ("/agent-device/abort", test_abort);
  ADD ("/agent-device/put-key", test_put_key);
  ADD ("/agent-device/unknown-and-dropped", test_unknown_and_dropped);
  ADD ("/agent-device/storage-failure", test_storage_failure);
#undef ADD
  return g_test_run ();
}
