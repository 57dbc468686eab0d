/* Extension matter-1 of the agent protocol and credential blob version 2
 * (docs/agent-protocol.md): HELLO TLV 0x07; slots 3 and 4 written, read
 * back, committed, dropped by KEYGEN and ABORT, on station-devsim over a
 * real pseudo-terminal; the station's refusal to send them to a device
 * without the extension (nothing reaches the device); the device side's
 * own answers in process; the blob v2 round trip, every refusal, and
 * version 1 blobs unchanged byte for byte. */
#include <signal.h>
#include <string.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "st-agent-link.h"
#include "st-agent.h"
#include "st-backend.h"
#include "st-blob.h"
#include "st-error.h"
#include "st-frame.h"
#include "st-matter-data.h"
#include "st-simdev.h"
#include "st-stm32-rom.h"
#include "st-util.h"
#include "st-test-devsim.h"
#include "st-test-tmp.h"
#include "st-test-json.h"
#include "st-test-passive.h"

/* ---------------------------------------------------------------- HELLO */

typedef struct {
  const char *name;
  const char *hex;
  gboolean ok;
  guint32 extensions;
} ExtCase;

static const ExtCase ext_cases[] = {
  { "absent", "0101aa" "020141", TRUE, 0 },
  /* docs/agent-protocol.md, Vectors of matter-1 */
  { "doc-vector", "0104deadbeef" "02024142" "030131" "040101" "050100" "06020008" "070101", TRUE,
    ST_DEVICE_EXT_MATTER_1 },
  { "matter-1", "0101aa" "020141" "070101", TRUE, ST_DEVICE_EXT_MATTER_1 },
  { "matter-1-first", "070101" "0101aa" "020141", TRUE, ST_DEVICE_EXT_MATTER_1 },
  { "four-bytes-unknown-bits", "0101aa" "020141" "070401000080", TRUE, 0x80000001u },
  { "unknown-bits-only", "0101aa" "020141" "07020001", TRUE, 0x0100 },
  { "zero-byte", "0101aa" "020141" "070100", TRUE, 0 },
  { "empty", "0101aa" "020141" "0700", FALSE, 0 },
  { "five-bytes", "0101aa" "020141" "07050100000000", FALSE, 0 },
  { "twice", "0101aa" "020141" "070101" "070101", FALSE, 0 },
  { "past-end", "0101aa" "020141" "070201", FALSE, 0 },
};

static void
test_hello_extensions (void)
{
  for (gsize i = 0; i < G_N_ELEMENTS (ext_cases); i++)
    {
      const ExtCase *c = &ext_cases[i];
      g_autoptr(GError) error = NULL;
      g_autoptr(GBytes) data = st_hex_decode (c->hex, &error);
      g_assert_no_error (error);
      gsize len = 0;
      const guint8 *p = g_bytes_get_data (data, &len);
      StDeviceInfo info;
      g_test_message ("HELLO extensions case %s", c->name);
      gboolean ok = st_agent_parse_hello (p, len, &info, &error);
      g_assert_cmpint (ok, ==, c->ok);
      if (!c->ok)
        {
          g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
          continue;
        }
      g_assert_no_error (error);
      g_assert_cmphex (info.extensions, ==, c->extensions);
      g_assert_cmpstr (info.model, ==, g_str_equal (c->name, "doc-vector") ? "AB" : "A");
    }
}

/* -------------------------------------------------- the device, in process */

/* One request to an in-process simulated socket; returns the status and,
 * on OK, the result in @result. */
static guint8
sock_transact (StSimSocket *sock, guint16 seq, guint8 op, const guint8 *payload, gsize len,
               GByteArray *result)
{
  guint8 wire[ST_FRAME_MAX_WIRE];
  gsize n = st_frame_encode (op, seq, payload, (guint16) len, wire, sizeof wire);
  g_assert_cmpuint (n, >, 0);
  g_autoptr(GByteArray) out = g_byte_array_new ();
  st_sim_socket_receive (sock, wire, n, out);
  StFrameRx rx;
  st_frame_rx_init (&rx);
  guint8 body[ST_FRAME_MAX_BODY];
  for (guint i = 0; i < out->len; i++)
    {
      gsize blen = 0;
      StFrame f;
      if (st_frame_rx_push (&rx, out->data[i], body, sizeof body, &blen) != 1
          || st_frame_parse_body (body, blen, &f) != 0)
        continue;
      g_assert_cmpuint (f.op, ==, op | ST_AGENT_OP_RESPONSE);
      g_assert_cmpuint (f.seq, ==, seq);
      g_assert_cmpuint (f.len, >=, 1);
      if (result != NULL)
        {
          g_byte_array_set_size (result, 0);
          g_byte_array_append (result, f.payload + 1, f.len - 1);
        }
      return f.payload[0];
    }
  g_assert_not_reached ();
  return 0xFF;
}

static void
test_device_side (void)
{
  for (guint old = 0; old <= 1; old++)
    {
      StSimSocketConfig c = { .units = 1, .seed = 31, .no_matter = old != 0 };
      g_autoptr(GError) error = NULL;
      g_autoptr(StSimSocket) sock = st_sim_socket_new (&c, &error);
      g_assert_no_error (error);
      g_autoptr(GByteArray) res = g_byte_array_new ();
      guint16 seq = 1;

      g_assert_cmpuint (sock_transact (sock, seq++, ST_AGENT_OP_HELLO, NULL, 0, res), ==, ST_AGENT_RC_OK);
      StDeviceInfo info;
      g_assert_true (st_agent_parse_hello (res->data, res->len, &info, &error));
      g_assert_no_error (error);
      /* A version 1 device's HELLO has no TLV 0x07 at all. */
      gboolean has_tlv7 = FALSE;
      for (guint pos = 0; pos + 2 <= res->len; pos += 2 + res->data[pos + 1])
        has_tlv7 |= res->data[pos] == ST_AGENT_TLV_EXTENSIONS;
      g_assert_cmpint (has_tlv7, ==, !old);
      g_assert_cmphex (info.extensions, ==, old ? 0 : ST_DEVICE_EXT_MATTER_1);
      g_assert_cmpstr (info.fw_version, ==, old ? "devsim-1" : "devsim-2");

      guint8 alg = 1;
      g_assert_cmpuint (sock_transact (sock, seq++, ST_AGENT_OP_KEYGEN, &alg, 1, res), ==, ST_AGENT_RC_OK);
      for (guint slot = 3; slot <= 5; slot++)
        {
          guint8 w[5 + 3] = { (guint8) slot, 0, 0, 3, 0, 0xA1, 0xA2, 0xA3 };
          guint8 r[5] = { (guint8) slot, 0, 0, 0xFF, 0x07 };
          guint8 want = (old || slot == 5) ? ST_AGENT_RC_UNSUPPORTED : ST_AGENT_RC_OK;
          g_assert_cmpuint (sock_transact (sock, seq++, ST_AGENT_OP_WRITE, w, sizeof w, NULL), ==, want);
          g_assert_cmpuint (sock_transact (sock, seq++, ST_AGENT_OP_READ, r, sizeof r, res), ==, want);
          if (want == ST_AGENT_RC_OK)
            g_assert_cmpmem (res->data, res->len, "\x03\x00\xA1\xA2\xA3", 5);
        }
      /* A slot 4 larger than the device takes. */
      if (!old)
        {
          guint8 w[5] = { 4, 0, 0, (guint8) (ST_AGENT_SLOT4_MAX + 1), (guint8) ((ST_AGENT_SLOT4_MAX + 1) >> 8) };
          g_assert_cmpuint (sock_transact (sock, seq++, ST_AGENT_OP_WRITE, w, sizeof w, NULL), ==,
                            ST_AGENT_RC_TOO_LARGE);
          /* COMMIT refused while a transfer of slot 3 is unfinished. */
          guint8 part[5 + 2] = { 3, 0, 0, 4, 0, 1, 2 };
          g_assert_cmpuint (sock_transact (sock, seq++, ST_AGENT_OP_WRITE, part, sizeof part, NULL), ==,
                            ST_AGENT_RC_OK);
          guint8 cert[5 + 2] = { 1, 0, 0, 2, 0, 0x30, 0x00 };
          g_assert_cmpuint (sock_transact (sock, seq++, ST_AGENT_OP_WRITE, cert, sizeof cert, NULL), ==,
                            ST_AGENT_RC_OK);
          guint8 flags = 0;
          g_assert_cmpuint (sock_transact (sock, seq++, ST_AGENT_OP_COMMIT, &flags, 1, NULL), ==,
                            ST_AGENT_RC_BAD_STATE);
        }
      guint n_ext = 99;
      g_assert_true (st_sim_socket_get_matter (sock, 0, NULL, NULL, &n_ext));
      g_assert_cmpuint (n_ext, ==, old ? 6 : 8);  /* 3 slots x WRITE, READ; then 2 WRITEs */
    }
}

/* The reference agent's own rules: the hooks an extension needs, and only
 * implemented extensions announced. Minimal hooks: storage of one unit. */
typedef struct {
  GByteArray *out;
  guint n_commit_matter;
  gsize len3, len4;
} MiniDev;

static void mini_output (void *u, const uint8_t *d, size_t n) { g_byte_array_append (((MiniDev *) u)->out, d, (guint) n); }
static uint8_t mini_keygen (void *u, uint8_t alg, uint8_t *csr, size_t max, size_t *len) { return ST_AGENT_RC_INTERNAL; }
static uint8_t mini_put_key (void *u, uint8_t alg, const uint8_t *der, size_t len) { return ST_AGENT_RC_OK; }
static uint8_t mini_sign (void *u, const uint8_t *m, size_t ml, uint8_t *s, size_t max, size_t *sl) { return ST_AGENT_RC_INTERNAL; }
static void mini_abort (void *u) { }
static uint8_t mini_commit (void *u, const uint8_t *s1, size_t l1, const uint8_t *s2, size_t l2, int lock) { return ST_AGENT_RC_OK; }
static int mini_load (void *u, uint8_t *s1, size_t *l1, uint8_t *s2, size_t *l2, int *k, int *lk) { *l1 = *l2 = 0; *k = *lk = 0; return 0; }
static uint8_t
mini_commit_matter (void *u, const uint8_t *s1, size_t l1, const uint8_t *s2, size_t l2,
                    const uint8_t *s3, size_t l3, const uint8_t *s4, size_t l4, int lock)
{
  MiniDev *d = u;
  d->n_commit_matter++;
  d->len3 = l3;
  d->len4 = l4;
  return ST_AGENT_RC_OK;
}
static int
mini_load_matter (void *u, uint8_t *s1, size_t *l1, uint8_t *s2, size_t *l2, uint8_t *s3,
                  size_t *l3, uint8_t *s4, size_t *l4, int *k, int *lk)
{
  *l1 = *l2 = *l3 = *l4 = 0;
  *k = *lk = 0;
  return 0;
}

/* Sends one request to @agent; the response's payload (status first). */
static GByteArray *
mini_request (StAgent *agent, MiniDev *dev, guint16 seq, guint8 op, const guint8 *p, gsize len)
{
  guint8 wire[ST_FRAME_MAX_WIRE];
  gsize n = st_frame_encode (op, seq, p, (guint16) len, wire, sizeof wire);
  g_byte_array_set_size (dev->out, 0);
  st_agent_receive (agent, wire, n);
  StFrameRx rx;
  st_frame_rx_init (&rx);
  guint8 body[ST_FRAME_MAX_BODY];
  for (guint i = 0; i < dev->out->len; i++)
    {
      gsize blen = 0;
      StFrame f;
      if (st_frame_rx_push (&rx, dev->out->data[i], body, sizeof body, &blen) == 1
          && st_frame_parse_body (body, blen, &f) == 0)
        {
          GByteArray *r = g_byte_array_new ();
          g_byte_array_append (r, f.payload, f.len);
          return r;
        }
    }
  g_assert_not_reached ();
  return NULL;
}

static void
test_agent_hooks (void)
{
  MiniDev dev = { .out = g_byte_array_new () };
  StAgentHooks v1 = { .user_data = &dev, .output = mini_output, .keygen = mini_keygen,
                      .put_key = mini_put_key, .sign = mini_sign, .abort = mini_abort,
                      .commit = mini_commit, .load = mini_load };
  StAgentHooks m = v1;
  m.commit = NULL;
  m.load = NULL;
  m.commit_matter = mini_commit_matter;
  m.load_matter = mini_load_matter;
  StAgentInfo info = { .uid = { 0xAA }, .uid_len = 1, .model = "M", .algorithms = 1 };
  g_autofree StAgent *agent = g_new0 (StAgent, 1);

  /* matter-1 announced without its hooks, and version 1 without commit/load. */
  info.extensions = ST_AGENT_EXT_MATTER_1;
  g_assert_cmpint (st_agent_init (agent, &info, &v1), ==, -1);
  info.extensions = 0;
  g_assert_cmpint (st_agent_init (agent, &info, &m), ==, -1);

  /* Unknown bits are not announced: only matter-1, in one byte. */
  info.extensions = 0x80000101u;
  g_assert_cmpint (st_agent_init (agent, &info, &m), ==, 0);
  g_autoptr(GByteArray) hello = mini_request (agent, &dev, 1, ST_AGENT_OP_HELLO, NULL, 0);
  g_assert_cmpuint (hello->data[0], ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (hello->len, >=, 4);
  g_assert_cmpmem (hello->data + hello->len - 3, 3, "\x07\x01\x01", 3);

  /* COMMIT hands slots 3 and 4 to commit_matter with the others. */
  guint8 key[5 + 2] = { 1, 0, 0, 2, 0, 0x30, 0x00 };
  g_autoptr(GByteArray) r1 = mini_request (agent, &dev, 2, ST_AGENT_OP_PUT_KEY, key, sizeof key);
  g_assert_cmpuint (r1->data[0], ==, ST_AGENT_RC_OK);
  guint8 w1[5 + 1] = { 1, 0, 0, 1, 0, 0x30 };
  guint8 w3[5 + 3] = { 3, 0, 0, 3, 0, 1, 2, 3 };
  guint8 w4[5 + 4] = { 4, 0, 0, 4, 0, 1, 2, 3, 4 };
  g_autoptr(GByteArray) r2 = mini_request (agent, &dev, 3, ST_AGENT_OP_WRITE, w1, sizeof w1);
  g_autoptr(GByteArray) r3 = mini_request (agent, &dev, 4, ST_AGENT_OP_WRITE, w3, sizeof w3);
  g_autoptr(GByteArray) r4 = mini_request (agent, &dev, 5, ST_AGENT_OP_WRITE, w4, sizeof w4);
  g_assert_cmpuint (r2->data[0] | r3->data[0] | r4->data[0], ==, ST_AGENT_RC_OK);
  guint8 flags = 0;
  g_autoptr(GByteArray) rc = mini_request (agent, &dev, 6, ST_AGENT_OP_COMMIT, &flags, 1);
  g_assert_cmpuint (rc->data[0], ==, ST_AGENT_RC_OK);
  g_assert_cmpuint (dev.n_commit_matter, ==, 1);
  g_assert_cmpuint (dev.len3, ==, 3);
  g_assert_cmpuint (dev.len4, ==, 4);
  st_agent_clear (agent);

  /* Version 1: the HELLO ends with the max payload TLV, no 0x07. */
  info.extensions = 0;
  g_assert_cmpint (st_agent_init (agent, &info, &v1), ==, 0);
  g_autoptr(GByteArray) hello1 = mini_request (agent, &dev, 1, ST_AGENT_OP_HELLO, NULL, 0);
  g_assert_cmpmem (hello1->data + hello1->len - 4, 2, "\x06\x02", 2);
  st_agent_clear (agent);
  g_byte_array_unref (dev.out);
}

/* ------------------------------------------------------ station-devsim */

/* Devsim, devsim_start, devsim_stop, devsim_free: st-test-devsim.h */

/* Device @index of devsim's state file (rewritten after every change). */
static JsonParser *
devsim_state (Devsim *d, guint index, JsonObject **dev)
{
  JsonParser *parser = st_test_load_json (d->state_file);
  JsonObject *root = json_node_get_object (json_parser_get_root (parser));
  JsonArray *devices = json_object_get_array_member (root, "devices");
  g_assert_nonnull (devices);
  g_assert_cmpuint (index, <, json_array_get_length (devices));
  *dev = json_array_get_object_element (devices, index);
  return parser;
}

static GBytes *
state_b64 (JsonObject *dev, const char *member)
{
  JsonNode *n = json_object_get_member (dev, member);
  g_assert_nonnull (n);
  if (JSON_NODE_HOLDS_NULL (n))
    return NULL;
  gsize len = 0;
  guchar *data = g_base64_decode (json_node_get_string (n), &len);
  return g_bytes_new_take (data, len);
}

static StBackend *
open_device (const char *path, StDeviceInfo *info)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *port = g_strdup_printf ("agent:%s", path);
  g_autoptr(StBackend) backend = st_backend_new (port, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (st_backend_open (backend, &error));
  g_assert_no_error (error);
  for (guint i = 0; i < 40; i++)
    {
      g_clear_error (&error);
      if (st_backend_identify (backend, info, &error))
        return g_steal_pointer (&backend);
      g_assert_error (error, ST_ERROR, ST_ERROR_TIMED_OUT);
    }
  g_assert_not_reached ();
  return NULL;
}

static GBytes *
pattern (gsize len, guint8 seed)
{
  guint8 *data = g_malloc (len);
  for (gsize i = 0; i < len; i++)
    data[i] = (guint8) (i * 7 + seed + (i >> 8));
  return g_bytes_new_take (data, len);
}

static GBytes *
commissioning_record (guint16 discriminator)
{
  StMatterCommissioning c = { .vendor_id = 0xFFF1, .product_id = 0x8000,
                              .discriminator = discriminator, .iterations = 1000,
                              .salt_len = 32, .rdid_unique_id_len = 16 };
  for (guint i = 0; i < sizeof c.salt; i++)
    c.salt[i] = (guint8) (i + discriminator);
  for (guint i = 0; i < sizeof c.verifier; i++)
    c.verifier[i] = (guint8) (3 * i);
  c.verifier[32] = 0x04;
  memset (c.rdid_unique_id, 0x5A, 16);
  g_autoptr(GError) error = NULL;
  GBytes *b = st_matter_commissioning_encode (&c, &error);
  g_assert_no_error (error);
  return b;
}

static void
write_ok (StBackend *b, StSlot slot, GBytes *data)
{
  g_autoptr(GError) error = NULL;
  gboolean ok = st_backend_write (b, slot, data, &error);
  g_assert_no_error (error);
  g_assert_true (ok);
}

static GBytes *
read_ok (StBackend *b, StSlot slot)
{
  g_autoptr(GError) error = NULL;
  GBytes *back = st_backend_read (b, slot, &error);
  g_assert_no_error (error);
  g_assert_nonnull (back);
  return back;
}

static void
test_devsim_slots (void)
{
  const char *args[] = { "--units", "1", "--seed", "18", NULL };
  g_autoptr(Devsim) d = devsim_start ("st-matter-wire", args);
  g_autoptr(GError) error = NULL;
  StDeviceInfo info;
  g_autoptr(StBackend) b = open_device (d->path, &info);
  g_assert_cmphex (info.extensions & ST_DEVICE_EXT_MATTER_1, ==, ST_DEVICE_EXT_MATTER_1);
  g_assert_cmpstr (info.fw_version, ==, "devsim-2");

  /* KEYGEN drops uncommitted Matter slots. */
  g_autoptr(GBytes) early = pattern (100, 1);
  write_ok (b, ST_SLOT_MATTER_CD, early);
  g_autoptr(GBytes) early_back = read_ok (b, ST_SLOT_MATTER_CD);
  g_assert_true (g_bytes_equal (early_back, early));
  g_autoptr(GBytes) csr = st_backend_keygen (b, ST_ALG_EC_P256, &error);
  g_assert_no_error (error);
  g_autoptr(GBytes) gone = read_ok (b, ST_SLOT_MATTER_CD);
  g_assert_cmpuint (g_bytes_get_size (gone), ==, 0);

  /* A CD of the largest size, in several WRITE chunks (the device reports
   * 2048, so 2043 bytes per chunk). */
  g_autoptr(GBytes) cd = pattern (4096, 9);
  g_autoptr(GBytes) rec = commissioning_record (3840);
  g_autoptr(GBytes) cert = pattern (600, 2);
  g_autoptr(GBytes) chain = pattern (900, 3);
  write_ok (b, ST_SLOT_CERT, cert);
  write_ok (b, ST_SLOT_CHAIN, chain);
  guint64 before = b->n_requests;
  write_ok (b, ST_SLOT_MATTER_CD, cd);
  g_assert_cmpuint (b->n_requests - before, ==, 3);
  write_ok (b, ST_SLOT_MATTER_DATA, rec);
  /* Sizes outside what the extension allows are refused before sending. */
  {
    guint64 sent = b->n_requests;
    g_autoptr(GBytes) too_big = pattern (ST_SLOT_MATTER_CD_MAX + 1, 1);
    g_autoptr(GBytes) empty = g_bytes_new (NULL, 0);
    g_autoptr(GBytes) big_rec = pattern (ST_SLOT_MATTER_DATA_MAX + 1, 1);
    g_assert_false (st_backend_write (b, ST_SLOT_MATTER_CD, too_big, &error));
    g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
    g_clear_error (&error);
    g_assert_false (st_backend_write (b, ST_SLOT_MATTER_CD, empty, &error));
    g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
    g_clear_error (&error);
    g_assert_false (st_backend_write (b, ST_SLOT_MATTER_DATA, big_rec, &error));
    g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
    g_clear_error (&error);
    g_assert_cmpuint (b->n_requests, ==, sent);
  }
  g_autoptr(GBytes) cd_back = read_ok (b, ST_SLOT_MATTER_CD);
  g_autoptr(GBytes) rec_back = read_ok (b, ST_SLOT_MATTER_DATA);
  g_assert_true (g_bytes_equal (cd_back, cd));
  g_assert_true (g_bytes_equal (rec_back, rec));
  StMatterCommissioning parsed;
  g_assert_true (st_matter_commissioning_parse (g_bytes_get_data (rec_back, NULL),
                                                g_bytes_get_size (rec_back), &parsed, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (parsed.discriminator, ==, 3840);

  /* Nothing is stored before COMMIT. */
  JsonObject *dev = NULL;
  {
    g_autoptr(JsonParser) p = devsim_state (d, 0, &dev);
    g_assert_null (state_b64 (dev, "matter_cd"));
    g_assert_null (state_b64 (dev, "matter_data"));
  }
  g_assert_true (st_backend_commit (b, FALSE, &error));
  g_assert_no_error (error);
  {
    g_autoptr(JsonParser) p = devsim_state (d, 0, &dev);
    g_autoptr(GBytes) s3 = state_b64 (dev, "matter_cd");
    g_autoptr(GBytes) s4 = state_b64 (dev, "matter_data");
    g_assert_nonnull (s3);
    g_assert_nonnull (s4);
    g_assert_true (g_bytes_equal (s3, cd));
    g_assert_true (g_bytes_equal (s4, rec));
  }

  /* ABORT drops an uncommitted new value: the committed one reads again. */
  g_autoptr(GBytes) rec2 = commissioning_record (17);
  write_ok (b, ST_SLOT_MATTER_DATA, rec2);
  g_autoptr(GBytes) rec2_back = read_ok (b, ST_SLOT_MATTER_DATA);
  g_assert_true (g_bytes_equal (rec2_back, rec2));
  g_assert_true (st_backend_abort (b, &error));
  g_assert_no_error (error);
  g_autoptr(GBytes) after_abort = read_ok (b, ST_SLOT_MATTER_DATA);
  g_assert_true (g_bytes_equal (after_abort, rec));
  g_assert_cmpuint (b->n_retries, ==, 0);
}

static void
test_devsim_old_firmware (void)
{
  const char *args[] = { "--units", "1", "--seed", "19", "--no-matter", NULL };
  g_autoptr(Devsim) d = devsim_start ("st-matter-wire", args);
  g_autoptr(GError) error = NULL;
  StDeviceInfo info;
  g_autoptr(StBackend) b = open_device (d->path, &info);
  g_assert_cmphex (info.extensions, ==, 0);
  g_assert_cmpstr (info.fw_version, ==, "devsim-1");

  /* Version 1 works exactly as before. */
  g_autoptr(GBytes) csr = st_backend_keygen (b, ST_ALG_EC_P256, &error);
  g_assert_no_error (error);
  g_autoptr(GBytes) cert = pattern (500, 4);
  write_ok (b, ST_SLOT_CERT, cert);

  guint64 sent = b->n_requests, tx = b->bytes_tx;
  g_autoptr(GBytes) cd = pattern (300, 5);
  for (guint slot = ST_SLOT_MATTER_CD; slot <= ST_SLOT_MATTER_DATA; slot++)
    {
      g_clear_error (&error);
      g_assert_false (st_backend_write (b, (StSlot) slot, cd, &error));
      g_assert_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED);
      g_assert_nonnull (strstr (error->message, "devsim-1"));
      g_assert_nonnull (strstr (error->message, "matter-1"));
      g_clear_error (&error);
      g_assert_null (st_backend_read (b, (StSlot) slot, &error));
      g_assert_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED);
      g_clear_error (&error);
    }
  /* Nothing went out: not on the station's counters, not at the device. */
  g_assert_cmpuint (b->n_requests, ==, sent);
  g_assert_cmpuint (b->bytes_tx, ==, tx);
  g_assert_true (st_backend_commit (b, FALSE, &error));
  g_assert_no_error (error);
  JsonObject *dev = NULL;
  g_autoptr(JsonParser) p = devsim_state (d, 0, &dev);
  g_assert_cmpint (json_object_get_int_member (dev, "ext_slot_requests"), ==, 0);
  g_assert_cmpint (json_object_get_int_member (dev, "commits"), ==, 1);
}

/* ------------------------------------------------------------------ blob */

/* Written by st-blob.c before blob version 2 existed (and recomputed
 * independently with Python's zlib.crc32): uid DEADBEEF, key 3003020100,
 * certificate 30020500, one CA 300101, serial "SN-1", granularity 8. */
#define V1_VECTOR \
  "50434231010005003800000001000400deadbeef02000500300302010003000400300205000400" \
  "030030010105000400534e2d313c03a099"

static StBlob *
vector_blob (void)
{
  StBlob *b = st_blob_new ();
  b->uid = g_bytes_new ("\xDE\xAD\xBE\xEF", 4);
  b->key = g_bytes_new ("\x30\x03\x02\x01\x00", 5);
  b->cert = g_bytes_new ("\x30\x02\x05\x00", 4);
  g_ptr_array_add (b->ca_certs, g_bytes_new ("\x30\x01\x01", 3));
  b->product_serial = g_strdup ("SN-1");
  return b;
}

static void
test_blob_v1_unchanged (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StBlob) b = vector_blob ();
  g_autoptr(GBytes) out = st_blob_build (b, 8, 4096, &error);
  g_assert_no_error (error);
  g_autofree gchar *hex = st_hex_encode (g_bytes_get_data (out, NULL), g_bytes_get_size (out));
  g_assert_cmpstr (hex, ==, V1_VECTOR);
  g_autoptr(StBlob) back = st_blob_parse (g_bytes_get_data (out, NULL), g_bytes_get_size (out), &error);
  g_assert_no_error (error);
  g_assert_cmpuint (back->version, ==, 1);
  g_assert_null (back->matter_cd);
  g_assert_null (back->matter_data);
}

/* Rewrites the version field and the CRC of a built blob. */
static GByteArray *
patched (GBytes *blob, guint16 version, gssize cut_entry_bytes, guint16 count_delta)
{
  gsize len = 0;
  const guint8 *d = g_bytes_get_data (blob, &len);
  guint32 total = st_get_le32 (d + 8);
  GByteArray *a = g_byte_array_new ();
  g_byte_array_append (a, d, total - 4);
  st_put_le16 (a->data + 4, version);
  st_put_le16 (a->data + 6, (guint16) (st_get_le16 (a->data + 6) + count_delta));
  if (cut_entry_bytes > 0)
    g_byte_array_set_size (a, a->len - (guint) cut_entry_bytes);
  st_put_le32 (a->data + 8, a->len + 4);
  guint8 crc[4];
  st_put_le32 (crc, st_crc32 (0, a->data, a->len));
  g_byte_array_append (a, crc, 4);
  return a;
}

static void
expect_parse_refused (const guint8 *d, gsize len, const char *needle)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StBlob) b = st_blob_parse (d, len, &error);
  g_assert_null (b);
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  if (strstr (error->message, needle) == NULL)
    g_error ("blob refusal \"%s\" does not mention \"%s\"", error->message, needle);
}

static void
test_blob_v2 (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StBlob) b = vector_blob ();
  g_autoptr(GBytes) cd = pattern (ST_BLOB_MATTER_CD_MAX, 6);
  g_autoptr(GBytes) rec = commissioning_record (100);
  b->matter_cd = g_bytes_ref (cd);
  b->matter_data = g_bytes_ref (rec);
  g_autoptr(GBytes) out = st_blob_build (b, 16, 1 << 16, &error);
  g_assert_no_error (error);
  gsize len = 0;
  const guint8 *d = g_bytes_get_data (out, &len);
  g_assert_cmpuint (len % 16, ==, 0);
  g_assert_cmpuint (st_get_le16 (d + 4), ==, 2);
  g_assert_cmpuint (st_get_le16 (d + 6), ==, 7);
  /* The version 1 entries come first, byte for byte as in version 1. */
  g_autoptr(GBytes) v1 = st_hex_decode (V1_VECTOR, NULL);
  g_assert_cmpmem (d + 12, 52 - 12, (const guint8 *) g_bytes_get_data (v1, NULL) + 12, 52 - 12);
  g_assert_cmpuint (d[52], ==, 0x06);
  g_assert_cmpuint (d[53], ==, 0x00);
  g_assert_cmpuint (st_get_le16 (d + 54), ==, ST_BLOB_MATTER_CD_MAX);
  g_assert_cmpuint (d[56 + ST_BLOB_MATTER_CD_MAX], ==, 0x07);
  g_assert_cmpuint (st_get_le16 (d + 58 + ST_BLOB_MATTER_CD_MAX), ==, g_bytes_get_size (rec));
  g_assert_cmpuint (st_blob_peek_length (d, len), ==, st_get_le32 (d + 8));

  g_autoptr(StBlob) back = st_blob_parse (d, len, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (back->version, ==, 2);
  g_assert_true (g_bytes_equal (back->matter_cd, cd));
  g_assert_true (g_bytes_equal (back->matter_data, rec));
  g_assert_cmpstr (back->product_serial, ==, "SN-1");
  /* Built again from what was parsed: the same bytes. */
  g_autoptr(GBytes) again = st_blob_build (back, 16, 1 << 16, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (again, out));

  /* Refusals of the writer. */
  g_clear_pointer (&b->matter_data, g_bytes_unref);
  g_assert_null (st_blob_build (b, 16, 1 << 16, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  b->matter_data = g_bytes_ref (rec);
  g_clear_pointer (&b->matter_cd, g_bytes_unref);
  g_assert_null (st_blob_build (b, 16, 1 << 16, &error));
  g_clear_error (&error);
  b->matter_cd = pattern (ST_BLOB_MATTER_CD_MAX + 1, 1);
  g_assert_null (st_blob_build (b, 16, 1 << 16, &error));
  g_assert_nonnull (strstr (error->message, "4097"));
  g_clear_error (&error);
  g_clear_pointer (&b->matter_cd, g_bytes_unref);
  b->matter_cd = g_bytes_new (NULL, 0);
  g_assert_null (st_blob_build (b, 16, 1 << 16, &error));
  g_clear_error (&error);
  g_clear_pointer (&b->matter_cd, g_bytes_unref);
  b->matter_cd = g_bytes_ref (cd);
  g_clear_pointer (&b->matter_data, g_bytes_unref);
  b->matter_data = pattern (ST_BLOB_MATTER_DATA_MAX + 1, 1);
  g_assert_null (st_blob_build (b, 16, 1 << 16, &error));
  g_clear_error (&error);

  /* Refusals of the reader. A version 2 blob labelled version 1. */
  g_autoptr(GByteArray) as_v1 = patched (out, 1, 0, 0);
  expect_parse_refused (as_v1->data, as_v1->len, "version 1 blob cannot hold");
  g_assert_cmpuint (st_blob_peek_length (as_v1->data, as_v1->len), ==, as_v1->len);
  /* A version 1 blob labelled version 2: no Matter entries. */
  g_autoptr(GByteArray) as_v2 = patched (v1, 2, 0, 0);
  expect_parse_refused (as_v2->data, as_v2->len, "Matter Certification Declaration");
  /* Version 2 without its commissioning data (the last entry cut). */
  gsize rec_entry = 4 + g_bytes_get_size (rec);
  g_autoptr(GByteArray) no_rec = patched (out, 2, (gssize) rec_entry, (guint16) -1);
  expect_parse_refused (no_rec->data, no_rec->len, "Matter commissioning data");
  /* Versions 0 and 3. */
  g_autoptr(GByteArray) v3 = patched (out, 3, 0, 0);
  expect_parse_refused (v3->data, v3->len, "version 3");
  g_assert_cmpuint (st_blob_peek_length (v3->data, v3->len), ==, 0);
  g_autoptr(GByteArray) v0 = patched (out, 0, 0, 0);
  expect_parse_refused (v0->data, v0->len, "version 0");
  /* The commissioning data twice: the record entry appended again. */
  {
    gsize total = st_get_le32 (d + 8);
    g_autoptr(GByteArray) a = g_byte_array_new ();
    g_byte_array_append (a, d, (guint) (total - 4));
    g_byte_array_append (a, d + total - 4 - rec_entry, (guint) rec_entry);
    st_put_le16 (a->data + 6, 8);
    st_put_le32 (a->data + 8, a->len + 4);
    guint8 crc[4];
    st_put_le32 (crc, st_crc32 (0, a->data, a->len));
    g_byte_array_append (a, crc, 4);
    expect_parse_refused (a->data, a->len, "appears twice");
  }
  /* A commissioning data entry longer than a record can be. */
  {
    StBlob *big = vector_blob ();
    big->matter_cd = g_bytes_ref (cd);
    big->matter_data = pattern (ST_BLOB_MATTER_DATA_MAX, 1);
    g_autoptr(GBytes) bo = st_blob_build (big, 1, 1 << 16, &error);
    g_assert_no_error (error);
    st_blob_free (big);
    gsize bl = 0;
    const guint8 *bd = g_bytes_get_data (bo, &bl);
    g_autoptr(GByteArray) a = g_byte_array_new ();
    g_byte_array_append (a, bd, (guint) (bl - 4));
    guint8 extra = 0xEE;
    g_byte_array_append (a, &extra, 1);
    gsize at = bl - 4 - ST_BLOB_MATTER_DATA_MAX - 2;
    st_put_le16 (a->data + at, ST_BLOB_MATTER_DATA_MAX + 1);
    st_put_le32 (a->data + 8, a->len + 4);
    guint8 crc[4];
    st_put_le32 (crc, st_crc32 (0, a->data, a->len));
    g_byte_array_append (a, crc, 4);
    expect_parse_refused (a->data, a->len, "more than the 186");
  }
  /* Every truncation of the header's total is refused cleanly. */
  for (gsize cut = 0; cut < 64; cut++)
    {
      g_autoptr(GError) e = NULL;
      g_autoptr(StBlob) x = st_blob_parse (d, cut, &e);
      g_assert_null (x);
      g_assert_nonnull (e);
    }
}

/* --------------------------------------------------- passive: stm32-rom */

#define AREA 0x0800C000u
#define AREA_SIZE 16384u

static StBackend *
passive_backend (const char *path)
{
  StLinkParams params;
  st_link_params_init_defaults (&params);
  params.timeout_ms = 300;
  params.blob_address = AREA;
  params.blob_area_size = AREA_SIZE;
  params.uid_address = 0x1FFF7A10;
  params.uid_length = 12;
  g_autofree gchar *port = g_strdup_printf ("stm32-rom:%s", path);
  g_autoptr(GError) error = NULL;
  StBackend *be = st_backend_new (port, &params, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (st_backend_open (be, &error));
  g_assert_no_error (error);
  return be;
}

/* Key, certificate, chain, serial and (when given) the Matter data, then
 * COMMIT; returns the blob parsed from the device's flash. */
/* The independent checker (tests/programmer/stm32-blob-check.py, from the
 * documentation alone) on @area: its output. */
static gchar *
independent_check (const guint8 *area, gsize len)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *dir = st_test_tmpdir ("st-matter-wire-blob");
  g_autofree gchar *file = g_build_filename (dir, "area.bin", NULL);
  g_assert_true (g_file_set_contents (file, (const char *) area, (gssize) len, &error));
  g_autofree gchar *script = g_build_filename (g_getenv ("ST_SOURCE_DIR"), "tests", "programmer",
                                               "stm32-blob-check.py", NULL);
  const char *argv[] = { "python3", script, "--structure", file, NULL };
  gchar *out = NULL;
  gint status = 0;
  g_assert_true (g_spawn_sync (NULL, (gchar **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out,
                               NULL, &status, &error));
  g_assert_no_error (error);
  g_test_message ("%s", out);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  g_unlink (file);
  g_rmdir (dir);
  return out;
}

static StBlob *
passive_unit (StBackend *be, StDeviceInfo *info, GBytes *cd, GBytes *rec, guint *version)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) key = st_test_der_seq (0x22, 100);
  g_autoptr(GBytes) cert = st_test_der_seq (0x33, 300);
  g_autoptr(GBytes) chain = st_test_der_seq (0x44, 200);
  g_assert_cmphex (info->extensions, ==, 0);
  g_assert_true (st_backend_put_key (be, ST_ALG_EC_P256, key, &error));
  g_assert_true (st_backend_write (be, ST_SLOT_CERT, cert, &error));
  g_assert_true (st_backend_write (be, ST_SLOT_CHAIN, chain, &error));
  g_assert_true (st_backend_set_product_serial (be, "MT-0001", &error));
  if (cd != NULL)
    {
      g_assert_true (st_backend_set_matter_data (be, cd, rec, &error));
      /* Before COMMIT, slots 3 and 4 read what was buffered. */
      g_autoptr(GBytes) b3 = read_ok (be, ST_SLOT_MATTER_CD);
      g_assert_true (g_bytes_equal (b3, cd));
    }
  g_assert_no_error (error);
  g_assert_true (st_backend_commit (be, FALSE, &error));
  g_assert_no_error (error);
  /* The area as the device holds it, parsed apart from the backend. */
  g_autofree guint8 *area = g_malloc (AREA_SIZE);
  g_assert_true (st_rom_link_read (st_stm32_rom_backend_get_link (be), AREA, area, AREA_SIZE, &error));
  g_assert_no_error (error);
  *version = st_get_le16 (area + 4);
  g_autofree gchar *checked = independent_check (area, AREA_SIZE);
  g_assert_nonnull (strstr (checked, "PASS"));
  if (cd != NULL)
    g_assert_nonnull (strstr (checked, "discriminator 2222 iterations 1000 salt 32 bytes, rotating id"));
  StBlob *got = st_blob_parse (area, AREA_SIZE, &error);
  g_assert_no_error (error);
  g_assert_nonnull (got);
  g_assert_true (g_bytes_equal (got->cert, cert));
  return got;
}

static void
test_passive_blob (void)
{
  const char *args[] = { "--mode", "stm32-rom", "--units", "2", "--seed", "77",
                         "--swap-delay-ms", "50", NULL };
  g_autoptr(Devsim) d = devsim_start ("st-matter-wire", args);
  g_autoptr(GError) error = NULL;
  g_autoptr(StBackend) be = passive_backend (d->path);
  g_autoptr(GBytes) cd = st_test_der_seq (0x66, 1196);   /* a CD stand-in: a DER SEQUENCE */
  g_autoptr(GBytes) rec = commissioning_record (2222);
  StDeviceInfo info = { 0 };

  /* Both or neither, and sizes checked, before anything is buffered. */
  g_assert_false (st_backend_set_matter_data (be, cd, NULL, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_autoptr(GBytes) big = pattern (ST_BLOB_MATTER_CD_MAX + 1, 1);
  g_assert_false (st_backend_set_matter_data (be, big, rec, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);

  /* Unit 1 with Matter data: a version 2 blob holding both. */
  st_test_identify_next (be, &info, 20, 0);
  guint version = 0;
  g_autoptr(StBlob) b1 = passive_unit (be, &info, cd, rec, &version);
  g_assert_cmpuint (version, ==, 2);
  g_assert_true (g_bytes_equal (b1->matter_cd, cd));
  g_assert_true (g_bytes_equal (b1->matter_data, rec));
  /* QA's read-back: slots 3 and 4 from the flash. */
  g_autoptr(GBytes) s3 = read_ok (be, ST_SLOT_MATTER_CD);
  g_autoptr(GBytes) s4 = read_ok (be, ST_SLOT_MATTER_DATA);
  g_assert_true (g_bytes_equal (s3, cd));
  g_assert_true (g_bytes_equal (s4, rec));
  /* Slots 3 and 4 are not written through WRITE on a passive device. */
  g_assert_false (st_backend_write (be, ST_SLOT_MATTER_CD, cd, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED);
  g_clear_error (&error);

  /* Unit 2 without: COMMIT forgot unit 1's Matter data, so version 1. */
  StDeviceInfo closing = { 0 };
  g_assert_true (st_backend_identify (be, &closing, &error));
  g_assert_no_error (error);
  StDeviceInfo next = { 0 };
  for (guint i = 0; i < 100; i++)
    {
      st_test_identify_next (be, &next, 40, 20 * 1000);
      if (memcmp (next.uid, info.uid, info.uid_len) != 0)
        break;
      g_usleep (20 * 1000);
    }
  g_assert_true (memcmp (next.uid, info.uid, info.uid_len) != 0);
  g_autoptr(StBlob) b2 = passive_unit (be, &next, NULL, NULL, &version);
  g_assert_cmpuint (version, ==, 1);
  g_assert_null (b2->matter_cd);
  g_autoptr(GBytes) e3 = read_ok (be, ST_SLOT_MATTER_CD);
  g_assert_cmpuint (g_bytes_get_size (e3), ==, 0);
}

/* An agent device takes the Matter data as slots, not as a blob. */
static void
test_agent_no_matter_blob_call (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StBackend) be = st_backend_new ("sim:x?matter=0", NULL, NULL, &error);
  g_assert_no_error (error);
  g_autoptr(GBytes) cd = pattern (10, 1);
  g_assert_false (st_backend_set_matter_data (be, cd, cd, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED);
  g_clear_error (&error);
  /* The in-process sim: backend with matter=0 is an older firmware too. */
  g_assert_true (st_backend_open (be, &error));
  StDeviceInfo info;
  g_assert_true (st_backend_identify (be, &info, &error));
  g_assert_no_error (error);
  g_assert_cmphex (info.extensions, ==, 0);
  guint64 sent = be->n_requests;
  g_assert_false (st_backend_write (be, ST_SLOT_MATTER_DATA, cd, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED);
  g_assert_cmpuint (be->n_requests, ==, sent);
  g_clear_error (&error);
  g_autoptr(StBackend) be2 = st_backend_new ("sim:y", NULL, NULL, &error);
  g_assert_true (st_backend_open (be2, &error));
  g_assert_true (st_backend_identify (be2, &info, &error));
  g_assert_no_error (error);
  g_assert_cmphex (info.extensions, ==, ST_DEVICE_EXT_MATTER_1);
  g_assert_null (st_backend_new ("sim:z?matter=2", NULL, NULL, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
}

/* ------------------------------------------- the documentation's vectors */

/* docs/agent-protocol.md, Test vectors (computed there with Python's zlib
 * and a COBS written from the page). */
#define VEC_WRITE_SLOT3_WIRE "0401040302070203010202023005554bc06800"
#define VEC_READ_SLOT4_WIRE "04010504020502040107fd075077028900"
#define VEC_RECORD \
  "010102f1ff020200800302000f0404e803000005105350414b453250204b65792053616c74066100" \
  "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f042122232425262728" \
  "292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f50" \
  "5152535455565758595a5b5c5d5e5f60"
#define VEC_BLOB_V2 \
  "5043423102000500be00000001000400deadbeef02000500300302010003000400300205000600" \
  "0500300302010107008800" VEC_RECORD "8e99b966"

static gchar *
wire_hex (guint8 op, guint16 seq, const guint8 *payload, gsize len)
{
  guint8 wire[ST_FRAME_MAX_WIRE];
  gsize n = st_frame_encode (op, seq, payload, (guint16) len, wire, sizeof wire);
  g_assert_cmpuint (n, >, 0);
  return st_hex_encode (wire, n);
}

static void
test_doc_vectors (void)
{
  g_autoptr(GError) error = NULL;
  static const guint8 write3[] = { 3, 0, 0, 2, 0, 0x30, 0x00 };
  static const guint8 read4[] = { 4, 0, 0, 0xfd, 0x07 };
  g_autofree gchar *w = wire_hex (ST_AGENT_OP_WRITE, 3, write3, sizeof write3);
  g_assert_cmpstr (w, ==, VEC_WRITE_SLOT3_WIRE);
  g_autofree gchar *r = wire_hex (ST_AGENT_OP_READ, 4, read4, sizeof read4);
  g_assert_cmpstr (r, ==, VEC_READ_SLOT4_WIRE);

  StMatterCommissioning c = { .vendor_id = 0xFFF1, .product_id = 0x8000, .discriminator = 3840,
                              .iterations = 1000, .salt_len = 16 };
  memcpy (c.salt, "SPAKE2P Key Salt", 16);
  for (guint i = 0; i < ST_MATTER_DATA_VERIFIER_LEN; i++)
    c.verifier[i] = (guint8) i;
  c.verifier[32] = 0x04;
  g_autoptr(GBytes) rec = st_matter_commissioning_encode (&c, &error);
  g_assert_no_error (error);
  g_autofree gchar *rec_hex = st_hex_encode (g_bytes_get_data (rec, NULL), g_bytes_get_size (rec));
  g_assert_cmpstr (rec_hex, ==, VEC_RECORD);

  g_autoptr(StBlob) b = st_blob_new ();
  b->uid = g_bytes_new ("\xDE\xAD\xBE\xEF", 4);
  b->key = g_bytes_new ("\x30\x03\x02\x01\x00", 5);
  b->cert = g_bytes_new ("\x30\x02\x05\x00", 4);
  b->matter_cd = g_bytes_new ("\x30\x03\x02\x01\x01", 5);
  b->matter_data = g_bytes_ref (rec);
  g_autoptr(GBytes) out = st_blob_build (b, 1, 4096, &error);
  g_assert_no_error (error);
  g_autofree gchar *blob_hex = st_hex_encode (g_bytes_get_data (out, NULL), g_bytes_get_size (out));
  g_assert_cmpstr (blob_hex, ==, VEC_BLOB_V2);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/programmer/matter-wire/hello-extensions", test_hello_extensions);
  g_test_add_func ("/programmer/matter-wire/device-side", test_device_side);
  g_test_add_func ("/programmer/matter-wire/agent-hooks", test_agent_hooks);
  g_test_add_func ("/programmer/matter-wire/blob-v1-unchanged", test_blob_v1_unchanged);
  g_test_add_func ("/programmer/matter-wire/blob-v2", test_blob_v2);
  g_test_add_func ("/programmer/matter-wire/doc-vectors", test_doc_vectors);
  g_test_add_func ("/programmer/matter-wire/devsim/slots", test_devsim_slots);
  g_test_add_func ("/programmer/matter-wire/devsim/old-firmware", test_devsim_old_firmware);
  g_test_add_func ("/programmer/matter-wire/sim-backend", test_agent_no_matter_blob_call);
  g_test_add_func ("/programmer/matter-wire/passive-blob", test_passive_blob);
  return g_test_run ();
}
