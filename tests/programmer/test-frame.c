/* The agent frame codec: CRC-32, COBS, bodies, the byte receiver. */
#include <glib.h>
#include <string.h>

#include "st-frame.h"
#include "st-util.h"

static GBytes *
hex (const char *h)
{
  g_autoptr(GString) clean = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  GBytes *b;
  for (const char *p = h; *p != '\0'; p++)
    if (*p != ' ')
      g_string_append_c (clean, *p);
  b = st_hex_decode (clean->str, &error);
  g_assert_no_error (error);
  return b;
}

static void
assert_bytes (const guint8 *got, gsize got_len, GBytes *want)
{
  gsize n = 0;
  const guint8 *w = g_bytes_get_data (want, &n);
  g_autofree gchar *gh = st_hex_encode (got, got_len);
  g_autofree gchar *wh = st_hex_encode (w, n);
  g_assert_cmpstr (gh, ==, wh);
}

/* Pushes @wire through a fresh receiver; returns the number of bodies
 * completed, the last one in @body. */
static guint
rx_feed (StFrameRx *rx, const guint8 *wire, gsize len, guint8 *body, gsize *body_len)
{
  guint frames = 0;
  for (gsize i = 0; i < len; i++)
    {
      gsize n = 0;
      if (st_frame_rx_push (rx, wire[i], body, ST_FRAME_MAX_BODY, &n))
        {
          frames++;
          *body_len = n;
        }
    }
  return frames;
}

static void
test_crc (void)
{
  const guint8 *check = (const guint8 *) "123456789";
  g_assert_cmphex (st_crc32 (0, check, 9), ==, 0xCBF43926u);
  g_assert_cmphex (st_crc32 (0, check, 0), ==, 0);
  /* Chaining gives the same as one pass. */
  g_assert_cmphex (st_crc32 (st_crc32 (0, check, 4), check + 4, 5), ==, 0xCBF43926u);
  /* A known value of a single byte: crc32(b"\x00") = 0xD202EF8D. */
  g_assert_cmphex (st_crc32 (0, (const guint8 *) "", 1), ==, 0xD202EF8Du);

  /* the agent's own CRC (what a firmware builds) and the host's give the
   * same on the check value and on lengths and splits of random data */
  g_assert_cmphex (st_crc32_portable (0, check, 9), ==, 0xCBF43926u);
  g_autoptr(GRand) rand = g_rand_new_with_seed (1);
  guint8 data[4099];
  for (gsize i = 0; i < sizeof data; i++)
    data[i] = (guint8) g_rand_int_range (rand, 0, 256);
  for (gsize len = 0; len <= sizeof data; len += 1 + len / 3)
    {
      guint32 host = st_crc32 (0, data, len);
      g_assert_cmphex (st_crc32_portable (0, data, len), ==, host);
      gsize cut = len / 3;
      g_assert_cmphex (st_crc32 (st_crc32_portable (0, data, cut), data + cut, len - cut), ==, host);
    }
}

typedef struct {
  guint8 op;
  guint16 seq;
  const char *payload;
  const char *body;
  const char *wire;
} Vector;

static const Vector vectors[] = {
  { 0x01, 1, "", "01 01 01 00 00 00 d3 3c 42 ff", "04 01 01 01 01 01 05 d3 3c 42 ff 00" },
  { 0x02, 2, "01", "01 02 02 00 01 00 01 00 7c d6 7a", "04 01 02 02 02 01 02 01 04 7c d6 7a 00" },
  { 0x88, 0x1234, "00", "01 88 34 12 01 00 00 1a a9 8b 66", "06 01 88 34 12 01 01 05 1a a9 8b 66 00" },
};

static void
test_vectors (void)
{
  for (gsize i = 0; i < G_N_ELEMENTS (vectors); i++)
    {
      const Vector *v = &vectors[i];
      g_autoptr(GBytes) payload = hex (v->payload);
      g_autoptr(GBytes) body = hex (v->body);
      g_autoptr(GBytes) wire = hex (v->wire);
      guint8 out[ST_FRAME_MAX_WIRE];
      guint8 dec[ST_FRAME_MAX_BODY];
      gsize plen = g_bytes_get_size (payload);
      gsize n, body_len = 0;
      StFrame f;
      StFrameRx rx;

      /* Encode: the whole wire form. */
      n = st_frame_encode (v->op, v->seq, g_bytes_get_data (payload, NULL), (guint16) plen, out, sizeof out);
      assert_bytes (out, n, wire);
      /* Two-part encode: status byte and the rest. */
      if (plen > 0)
        {
          n = st_frame_encode2 (v->op, v->seq, g_bytes_get_data (payload, NULL), 1,
                                (const guint8 *) g_bytes_get_data (payload, NULL) + 1, (guint16) (plen - 1),
                                out, sizeof out);
          assert_bytes (out, n, wire);
        }
      /* COBS of the body alone. */
      n = st_cobs_encode (g_bytes_get_data (body, NULL), g_bytes_get_size (body), out, sizeof out);
      g_assert_cmpuint (n, ==, g_bytes_get_size (wire) - 1);
      g_assert_cmpmem (out, n, g_bytes_get_data (wire, NULL), n);

      /* Decode: the receiver gives the body, the parser the fields. */
      st_frame_rx_init (&rx);
      g_assert_cmpuint (rx_feed (&rx, g_bytes_get_data (wire, NULL), g_bytes_get_size (wire), dec, &body_len), ==, 1);
      assert_bytes (dec, body_len, body);
      g_assert_cmpint (st_frame_parse_body (dec, body_len, &f), ==, 0);
      g_assert_cmpuint (f.version, ==, 1);
      g_assert_cmpuint (f.op, ==, v->op);
      g_assert_cmpuint (f.seq, ==, v->seq);
      g_assert_cmpuint (f.len, ==, plen);
      g_assert_cmpmem (f.payload, f.len, g_bytes_get_data (payload, NULL), plen);
      g_assert_true (f.payload == dec + ST_FRAME_HEADER);
    }
}

static void
cobs_check (const guint8 *in, gsize len, const guint8 *want, gsize want_len)
{
  guint8 enc[1200];
  guint8 dec[1200];
  gsize n, m = 0;
  n = st_cobs_encode (in, len, enc, sizeof enc);
  g_assert_cmpmem (enc, n, want, want_len);
  g_assert_null (memchr (enc, 0, n));
  g_assert_cmpint (st_cobs_decode (enc, n, dec, sizeof dec, &m), ==, 0);
  g_assert_cmpmem (dec, m, in, len);
  /* Exactly enough room works, one byte less does not. */
  g_assert_cmpuint (st_cobs_encode (in, len, enc, want_len), ==, want_len);
  g_assert_cmpuint (st_cobs_encode (in, len, enc, want_len - 1), ==, 0);
  if (len > 0)
    {
      g_assert_cmpint (st_cobs_decode (want, want_len, dec, len, &m), ==, 0);
      g_assert_cmpint (st_cobs_decode (want, want_len, dec, len - 1, &m), ==, -1);
    }
}

static void
test_cobs_edges (void)
{
  guint8 in[600], want[620];
  gsize w;

  /* Empty input: one 0x01 code. */
  cobs_check (NULL, 0, (const guint8 *) "\x01", 1);
  /* Zeros only, and zeros at both ends. */
  cobs_check ((const guint8 *) "\x00", 1, (const guint8 *) "\x01\x01", 2);
  cobs_check ((const guint8 *) "\x00\x00", 2, (const guint8 *) "\x01\x01\x01", 3);
  cobs_check ((const guint8 *) "\x00\x11\x22\x00", 4, (const guint8 *) "\x01\x03\x11\x22\x01", 5);
  cobs_check ((const guint8 *) "\x11\x22\x00\x33", 4, (const guint8 *) "\x03\x11\x22\x02\x33", 5);

  for (gsize i = 0; i < sizeof in; i++)
    in[i] = (guint8) (i % 255 + 1);

  /* 254 non-zero bytes: one full block, no trailing 0x01 (canonical). */
  want[0] = 0xFF;
  memcpy (want + 1, in, 254);
  cobs_check (in, 254, want, 255);
  /* The non-canonical form with a final 0x01 decodes the same. */
  {
    guint8 dec[600];
    gsize m = 0;
    want[255] = 0x01;
    g_assert_cmpint (st_cobs_decode (want, 256, dec, sizeof dec, &m), ==, 0);
    g_assert_cmpmem (dec, m, in, 254);
  }
  /* 253 non-zero: code 0xFE. */
  want[0] = 0xFE;
  memcpy (want + 1, in, 253);
  cobs_check (in, 253, want, 254);
  /* 255: a full block then a block of one. */
  want[0] = 0xFF;
  memcpy (want + 1, in, 254);
  want[255] = 0x02;
  want[256] = in[254];
  cobs_check (in, 255, want, 257);
  /* 254 non-zero then a zero: FF block, 01 (the zero), 01 (end). */
  {
    guint8 in2[255];
    memcpy (in2, in, 254);
    in2[254] = 0;
    want[0] = 0xFF;
    memcpy (want + 1, in, 254);
    want[255] = 0x01;
    want[256] = 0x01;
    cobs_check (in2, 255, want, 257);
  }
  /* 508: two full blocks, canonical without trailing code. */
  w = 0;
  want[w++] = 0xFF;
  memcpy (want + w, in, 254);
  w += 254;
  want[w++] = 0xFF;
  memcpy (want + w, in + 254, 254);
  w += 254;
  cobs_check (in, 508, want, w);
  {
    guint8 dec[600];
    gsize m = 0;
    want[w] = 0x01;
    g_assert_cmpint (st_cobs_decode (want, w + 1, dec, sizeof dec, &m), ==, 0);
    g_assert_cmpmem (dec, m, in, 508);
  }
}

static void
test_cobs_invalid (void)
{
  guint8 dec[64];
  gsize m = 0;
  /* Empty, a zero code, a block running past the end, a zero inside. */
  g_assert_cmpint (st_cobs_decode ((const guint8 *) "", 0, dec, sizeof dec, &m), ==, -1);
  g_assert_cmpint (st_cobs_decode ((const guint8 *) "\x00", 1, dec, sizeof dec, &m), ==, -1);
  g_assert_cmpint (st_cobs_decode ((const guint8 *) "\x05\x11\x22", 3, dec, sizeof dec, &m), ==, -1);
  g_assert_cmpint (st_cobs_decode ((const guint8 *) "\x03\x11\x00", 3, dec, sizeof dec, &m), ==, -1);
  g_assert_cmpint (st_cobs_decode ((const guint8 *) "\x02\x11\x00\x01", 4, dec, sizeof dec, &m), ==, -1);
  /* Output too small for the implicit zero. */
  g_assert_cmpint (st_cobs_decode ((const guint8 *) "\x02\x11\x02\x22", 4, dec, 2, &m), ==, -1);
  g_assert_cmpint (st_cobs_decode ((const guint8 *) "\x02\x11\x02\x22", 4, dec, 3, &m), ==, 0);
  g_assert_cmpuint (m, ==, 3);
}

static void
test_cobs_random (void)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (42);
  for (guint round = 0; round < 400; round++)
    {
      guint8 in[1100], enc[1200], dec[1100];
      gsize len = (gsize) g_rand_int_range (r, 0, 1100);
      gint zero_rate = g_rand_int_range (r, 0, 4);   /* 0: no zeros at all */
      gsize n, m = 0;
      for (gsize i = 0; i < len; i++)
        {
          in[i] = (guint8) g_rand_int_range (r, 1, 256);
          if (zero_rate > 0 && g_rand_int_range (r, 0, 8 * zero_rate) == 0)
            in[i] = 0;
        }
      n = st_cobs_encode (in, len, enc, sizeof enc);
      g_assert_cmpuint (n, >, 0);
      g_assert_cmpuint (n, <=, len + len / 254 + 1);
      g_assert_null (memchr (enc, 0, n));
      g_assert_cmpint (st_cobs_decode (enc, n, dec, sizeof dec, &m), ==, 0);
      g_assert_cmpmem (dec, m, in, len);
    }
}

/* COBS the textbook way, one byte at a time, in the canonical form
 * (no empty block after a full one at the end): what st_cobs_encode, which
 * copies runs whole, must give byte for byte. */
static GByteArray *
cobs_reference (const guint8 *in, gsize len)
{
  GByteArray *out = g_byte_array_new ();
  guint8 zero = 0;
  guint code_at = 0, code = 1;
  gboolean full = FALSE;
  g_byte_array_append (out, &zero, 1);
  for (gsize i = 0; i < len; i++)
    {
      full = FALSE;
      if (in[i] != 0)
        {
          g_byte_array_append (out, &in[i], 1);
          code++;
        }
      if (in[i] == 0 || code == 0xFF)
        {
          full = in[i] != 0;
          out->data[code_at] = (guint8) code;
          code_at = out->len;
          g_byte_array_append (out, &zero, 1);
          code = 1;
        }
    }
  if (full)
    g_byte_array_set_size (out, out->len - 1);
  else
    out->data[code_at] = (guint8) code;
  return out;
}

static void
test_cobs_reference (void)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (4242);
  for (guint round = 0; round < 3000; round++)
    {
      guint8 in[1100], enc[1200];
      gsize len = (gsize) g_rand_int_range (r, 0, round < 1000 ? 600 : 1100);
      gint zero_rate = g_rand_int_range (r, 0, 5);   /* 0: no zeros at all */
      for (gsize i = 0; i < len; i++)
        {
          in[i] = (guint8) g_rand_int_range (r, 1, 256);
          if (zero_rate > 0 && g_rand_int_range (r, 0, 1 << (2 * zero_rate)) == 0)
            in[i] = 0;
        }
      /* runs of exactly 253, 254 and 255 non-zero bytes, at the end too */
      if (round % 7 == 0 && len > 300)
        {
          gsize at = (gsize) g_rand_int_range (r, 0, (gint) (len - 256));
          gsize run = 253 + (gsize) (round % 3);
          memset (in + at, 0x5A, run);
          if (round % 2 == 0)
            len = at + run;
          else
            in[at + run] = 0;
        }
      g_autoptr(GByteArray) want = cobs_reference (in, len);
      gsize n = st_cobs_encode (in, len, enc, sizeof enc);
      g_assert_cmpmem (enc, n, want->data, want->len);
      /* one byte short of room: nothing */
      g_assert_cmpuint (st_cobs_encode (in, len, enc, want->len - 1), ==, 0);
    }
}

/* The receiver fed run by run (st_frame_rx_take_run, then the 0x00 by
 * st_frame_rx_push) ends in the same state, with the same frames, as fed
 * byte by byte: frames, garbage, lone and doubled 0x00, and runs longer
 * than any frame, cut into reads of random sizes. */
static void
test_rx_runs (void)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (99);
  guint frames = 0;
  for (guint round = 0; round < 300; round++)
    {
      g_autoptr(GByteArray) stream = g_byte_array_new ();
      while (stream->len < 6000)
        {
          guint8 wire[ST_FRAME_MAX_WIRE];
          guint8 payload[ST_FRAME_MAX_PAYLOAD];
          guint kind = (guint) g_rand_int_range (r, 0, 6);
          gsize n = 0;
          if (kind <= 2)
            {
              guint16 plen = (guint16) g_rand_int_range (r, 0, kind == 0 ? 600 : 40);
              for (guint i = 0; i < plen; i++)
                payload[i] = (guint8) g_rand_int_range (r, 0, 256);
              n = st_frame_encode (0x85, (guint16) round, payload, plen, wire, sizeof wire);
            }
          else if (kind == 3)
            for (n = (gsize) g_rand_int_range (r, 1, 30); n > 0; n--)
              {
                guint8 b = (guint8) g_rand_int_range (r, 0, 3);
                g_byte_array_append (stream, &b, 1);
              }
          else if (kind == 4)
            {
              gsize run = (gsize) g_rand_int_range (r, ST_FRAME_MAX_WIRE - 3, ST_FRAME_MAX_WIRE + 3);
              for (gsize i = 0; i < run; i++)
                {
                  guint8 b = (guint8) g_rand_int_range (r, 1, 256);
                  g_byte_array_append (stream, &b, 1);
                }
            }
          else
            g_byte_array_append (stream, (const guint8 *) "\0\0", (guint) g_rand_int_range (r, 1, 3));
          g_byte_array_append (stream, wire, (guint) n);
        }

      StFrameRx one, runs;
      st_frame_rx_init (&one);
      st_frame_rx_init (&runs);
      g_autoptr(GPtrArray) got_one = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
      g_autoptr(GPtrArray) got_runs = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
      guint8 body[ST_FRAME_MAX_BODY];
      gsize body_len = 0;
      for (guint i = 0; i < stream->len; i++)
        if (st_frame_rx_push (&one, stream->data[i], body, sizeof body, &body_len))
          g_ptr_array_add (got_one, g_bytes_new (body, body_len));
      for (gsize at = 0; at < stream->len;)
        {
          gsize read = (gsize) g_rand_int_range (r, 1, 700);
          read = MIN (read, stream->len - at);
          const guint8 *buf = stream->data + at;
          for (gsize i = 0; i < read; i++)
            {
              i += st_frame_rx_take_run (&runs, buf + i, read - i);
              if (i >= read)
                break;
              g_assert_cmpuint (buf[i], ==, 0);
              if (st_frame_rx_push (&runs, buf[i], body, sizeof body, &body_len))
                g_ptr_array_add (got_runs, g_bytes_new (body, body_len));
            }
          at += read;
        }
      frames += got_one->len;
      g_assert_cmpuint (got_runs->len, ==, got_one->len);
      for (guint i = 0; i < got_one->len; i++)
        g_assert_true (g_bytes_equal (g_ptr_array_index (got_runs, i), g_ptr_array_index (got_one, i)));
      g_assert_cmpuint (runs.n, ==, one.n);
      g_assert_cmpint (runs.discarding, ==, one.discarding);
      g_assert_cmpmem (runs.buf, runs.n, one.buf, one.n);
    }
  g_assert_cmpuint (frames, >, 1000);
}

/* Builds a body by hand (with a chosen version / len field) and its CRC. */
static gsize
make_body (guint8 *body, guint8 version, guint16 len_field, gsize payload_len)
{
  guint32 crc;
  body[0] = version;
  body[1] = 0x05;
  body[2] = 0x34;
  body[3] = 0x12;
  body[4] = (guint8) (len_field & 0xFF);
  body[5] = (guint8) (len_field >> 8);
  for (gsize i = 0; i < payload_len; i++)
    body[6 + i] = (guint8) i;
  crc = st_crc32 (0, body, 6 + payload_len);
  body[6 + payload_len] = (guint8) crc;
  body[7 + payload_len] = (guint8) (crc >> 8);
  body[8 + payload_len] = (guint8) (crc >> 16);
  body[9 + payload_len] = (guint8) (crc >> 24);
  return 10 + payload_len;
}

static void
test_parse_drop_rules (void)
{
  guint8 body[ST_FRAME_MAX_BODY + 16];
  StFrame f;
  gsize n;

  n = make_body (body, 1, 5, 5);
  g_assert_cmpint (st_frame_parse_body (body, n, &f), ==, 0);
  g_assert_cmpuint (f.op, ==, 5);
  g_assert_cmpuint (f.seq, ==, 0x1234);
  g_assert_cmpuint (f.len, ==, 5);

  /* Shorter than 10 bytes. */
  for (gsize k = 0; k < 10; k++)
    g_assert_cmpint (st_frame_parse_body (body, k, &f), ==, -1);
  /* len disagreeing with the size, either way (CRC valid for what's there). */
  n = make_body (body, 1, 6, 5);
  g_assert_cmpint (st_frame_parse_body (body, n, &f), ==, -1);
  n = make_body (body, 1, 4, 5);
  g_assert_cmpint (st_frame_parse_body (body, n, &f), ==, -1);
  /* A bad CRC: every single-bit flip anywhere is caught. */
  n = make_body (body, 1, 5, 5);
  for (gsize i = 0; i < n; i++)
    for (int b = 0; b < 8; b++)
      {
        body[i] ^= (guint8) (1u << b);
        g_assert_cmpint (st_frame_parse_body (body, n, &f), ==, -1);
        body[i] ^= (guint8) (1u << b);
      }
  g_assert_cmpint (st_frame_parse_body (body, n, &f), ==, 0);
  /* Version other than 1 (with a valid CRC). */
  n = make_body (body, 2, 5, 5);
  g_assert_cmpint (st_frame_parse_body (body, n, &f), ==, -1);
  n = make_body (body, 0, 5, 5);
  g_assert_cmpint (st_frame_parse_body (body, n, &f), ==, -1);
  /* Payload of 2048 is fine, 2049 is not even with a consistent len. */
  n = make_body (body, 1, 2048, 2048);
  g_assert_cmpint (st_frame_parse_body (body, n, &f), ==, 0);
  n = make_body (body, 1, 2049, 2049);
  g_assert_cmpint (st_frame_parse_body (body, n, &f), ==, -1);
}

static void
test_encode_limits (void)
{
  static guint8 payload[ST_FRAME_MAX_PAYLOAD + 1];
  guint8 wire[ST_FRAME_MAX_WIRE + 8];
  gsize n;

  /* Worst case for COBS: no zero anywhere, maximal payload. */
  memset (payload, 0xA5, sizeof payload);
  n = st_frame_encode (0x84, 0xFFFF, payload, ST_FRAME_MAX_PAYLOAD, wire, sizeof wire);
  g_assert_cmpuint (n, >, 0);
  g_assert_cmpuint (n, <=, ST_FRAME_MAX_WIRE);
  g_assert_cmpuint (wire[n - 1], ==, 0);
  g_assert_null (memchr (wire, 0, n - 1));
  /* Too large a payload; too small a buffer; exactly enough. */
  g_assert_cmpuint (st_frame_encode (0x84, 1, payload, ST_FRAME_MAX_PAYLOAD + 1, wire, sizeof wire), ==, 0);
  g_assert_cmpuint (st_frame_encode (0x84, 1, payload, ST_FRAME_MAX_PAYLOAD, wire, n - 1), ==, 0);
  g_assert_cmpuint (st_frame_encode (0x84, 0xFFFF, payload, ST_FRAME_MAX_PAYLOAD, wire, n), ==, n);
  g_assert_cmpuint (st_frame_encode2 (1, 1, payload, 1024, payload, 1025, wire, sizeof wire), ==, 0);
  g_assert_cmpuint (st_frame_encode2 (1, 1, payload, 1024, payload, 1024, wire, sizeof wire), >, 0);

  /* The maximal frame goes through the receiver. */
  {
    StFrameRx rx;
    guint8 body[ST_FRAME_MAX_BODY];
    gsize body_len = 0;
    StFrame f;
    n = st_frame_encode (0x84, 7, payload, ST_FRAME_MAX_PAYLOAD, wire, sizeof wire);
    st_frame_rx_init (&rx);
    g_assert_cmpuint (rx_feed (&rx, wire, n, body, &body_len), ==, 1);
    g_assert_cmpint (st_frame_parse_body (body, body_len, &f), ==, 0);
    g_assert_cmpuint (f.len, ==, ST_FRAME_MAX_PAYLOAD);
    g_assert_cmpmem (f.payload, f.len, payload, ST_FRAME_MAX_PAYLOAD);
    /* Too small a body buffer: dropped. */
    st_frame_rx_init (&rx);
    for (gsize i = 0; i < n; i++)
      g_assert_cmpint (st_frame_rx_push (&rx, wire[i], body, ST_FRAME_MAX_BODY - 1, &body_len), ==, 0);
  }
}

static void
test_rx_resync (void)
{
  guint8 hello[32], keygen[32];
  guint8 body[ST_FRAME_MAX_BODY];
  gsize hello_len, keygen_len, body_len = 0;
  StFrameRx rx;
  StFrame f;
  g_autoptr(GRand) r = g_rand_new_with_seed (7);
  g_autoptr(GByteArray) stream = g_byte_array_new ();

  hello_len = st_frame_encode (1, 1, NULL, 0, hello, sizeof hello);
  keygen_len = st_frame_encode (2, 2, (const guint8 *) "\x01", 1, keygen, sizeof keygen);

  /* Empty frames (the station's initial 0x00, doubled delimiters) are ignored. */
  st_frame_rx_init (&rx);
  g_assert_cmpuint (rx_feed (&rx, (const guint8 *) "\x00\x00\x00", 3, body, &body_len), ==, 0);
  g_assert_cmpuint (rx_feed (&rx, hello, hello_len, body, &body_len), ==, 1);

  /* Garbage glued to the front of a frame spoils that frame only. */
  st_frame_rx_init (&rx);
  body_len = 0;
  g_assert_cmpuint (rx_feed (&rx, (const guint8 *) "\x17\x42", 2, body, &body_len), ==, 0);
  g_assert_cmpuint (rx_feed (&rx, hello, hello_len, body, &body_len), <=, 1);
  if (body_len > 0)
    g_assert_cmpint (st_frame_parse_body (body, body_len, &f), ==, -1);
  g_assert_cmpuint (rx_feed (&rx, keygen, keygen_len, body, &body_len), ==, 1);
  g_assert_cmpint (st_frame_parse_body (body, body_len, &f), ==, 0);
  g_assert_cmpuint (f.op, ==, 2);

  /* Bad COBS (a code pointing past the delimiter) gives nothing. */
  st_frame_rx_init (&rx);
  g_assert_cmpuint (rx_feed (&rx, (const guint8 *) "\x09\x01\x02\x00", 4, body, &body_len), ==, 0);
  g_assert_cmpuint (rx_feed (&rx, hello, hello_len, body, &body_len), ==, 1);

  /* Overflow: far more non-zero bytes than any frame, then a frame glued to
   * them (dropped with them), then a delimited frame that is received. */
  st_frame_rx_init (&rx);
  for (guint i = 0; i < 3 * ST_FRAME_MAX_WIRE; i++)
    {
      guint8 b = (guint8) g_rand_int_range (r, 1, 256);
      g_byte_array_append (stream, &b, 1);
    }
  g_byte_array_append (stream, hello, (guint) hello_len);
  g_byte_array_append (stream, keygen, (guint) keygen_len);
  body_len = 0;
  g_assert_cmpuint (rx_feed (&rx, stream->data, stream->len, body, &body_len), ==, 1);
  g_assert_cmpint (st_frame_parse_body (body, body_len, &f), ==, 0);
  g_assert_cmpuint (f.op, ==, 2);
  g_assert_cmpuint (rx.n, ==, 0);
  g_assert_cmpint (rx.discarding, ==, 0);

  /* Exactly ST_FRAME_MAX_WIRE non-zero bytes still fit (no discard); one
   * more starts discarding. */
  st_frame_rx_init (&rx);
  for (guint i = 0; i < ST_FRAME_MAX_WIRE; i++)
    st_frame_rx_push (&rx, 0x55, body, sizeof body, &body_len);
  g_assert_cmpint (rx.discarding, ==, 0);
  st_frame_rx_push (&rx, 0x55, body, sizeof body, &body_len);
  g_assert_cmpint (rx.discarding, ==, 1);
  g_assert_cmpint (st_frame_rx_push (&rx, 0x00, body, sizeof body, &body_len), ==, 0);
  g_assert_cmpuint (rx_feed (&rx, hello, hello_len, body, &body_len), ==, 1);

  /* Random noise with zeros: never a crash, never a frame that parses. */
  st_frame_rx_init (&rx);
  for (guint i = 0; i < 200000; i++)
    {
      guint8 b = (guint8) g_rand_int_range (r, 0, 256);
      if (st_frame_rx_push (&rx, b, body, sizeof body, &body_len))
        g_assert_cmpuint (body_len, <=, sizeof body);
    }
  st_frame_rx_push (&rx, 0x00, body, sizeof body, &body_len);
  g_assert_cmpuint (rx_feed (&rx, keygen, keygen_len, body, &body_len), ==, 1);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/frame/crc32", test_crc);
  g_test_add_func ("/frame/vectors", test_vectors);
  g_test_add_func ("/frame/cobs-edges", test_cobs_edges);
  g_test_add_func ("/frame/cobs-invalid", test_cobs_invalid);
  g_test_add_func ("/frame/cobs-random", test_cobs_random);
  g_test_add_func ("/frame/cobs-reference", test_cobs_reference);
  g_test_add_func ("/frame/rx-runs", test_rx_runs);
  g_test_add_func ("/frame/parse-drop-rules", test_parse_drop_rules);
  g_test_add_func ("/frame/encode-limits", test_encode_limits);
  g_test_add_func ("/frame/rx-resync", test_rx_resync);
  return g_test_run ();
}
