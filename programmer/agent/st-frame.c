/* Agent protocol framing: CRC-32, COBS, frame bodies (portable C99). */
#include "st-frame.h"

#include <string.h>
#ifdef ST_FRAME_CRC32_ZLIB
#include <zlib.h>
#endif

uint32_t
st_crc32_portable (uint32_t crc, const uint8_t *data, size_t len)
{
  /* Reflected polynomial 0xEDB88320, four bits at a time: a 64-byte table
   * (small enough for any firmware), four times the speed of bitwise. */
  static const uint32_t nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu,
    0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
    0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
    0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
  };
  crc = ~crc;
  for (size_t i = 0; i < len; i++)
    {
      crc ^= data[i];
      crc = (crc >> 4) ^ nibble[crc & 0x0fu];
      crc = (crc >> 4) ^ nibble[crc & 0x0fu];
    }
  return ~crc;
}

#ifdef ST_FRAME_CRC32_ZLIB
uint32_t
st_crc32 (uint32_t crc, const uint8_t *data, size_t len)
{
  /* zlib's crc32() is this CRC with the same convention (~ in, ~ out) */
  while (len > 0)
    {
      uInt n = len > 0x40000000u ? 0x40000000u : (uInt) len;
      crc = (uint32_t) crc32 ((uLong) crc, data, n);
      data += n;
      len -= n;
    }
  return crc;
}
#else
uint32_t
st_crc32 (uint32_t crc, const uint8_t *data, size_t len)
{
  return st_crc32_portable (crc, data, len);
}
#endif

/* Streaming COBS encoder: one reserved code byte per block, filled in when
 * the block ends (a zero in the input, 254 non-zero bytes, or the end). */
typedef struct {
  uint8_t *out;
  size_t max;
  size_t pos;       /* next data position */
  size_t code_pos;  /* where the current block's code goes */
  uint8_t code;     /* 1 + data bytes in the current block */
  int full_block;   /* the last block ended by the 254-byte rule, none since */
  int err;
} StCobsEnc;

static void
st_cobs_enc_init (StCobsEnc *e, uint8_t *out, size_t max)
{
  e->out = out;
  e->max = max;
  e->code_pos = 0;
  e->pos = 1;
  e->code = 1;
  e->full_block = 0;
  e->err = (max < 1);
}

static void
st_cobs_enc_close_block (StCobsEnc *e)
{
  if (e->code_pos >= e->max)
    {
      e->err = 1;
      return;
    }
  e->out[e->code_pos] = e->code;
  /* Reserve the next block's code byte; it is written when that block ends
   * (and checked against the buffer size then). */
  e->code_pos = e->pos++;
  e->code = 1;
}

static void
st_cobs_enc_push (StCobsEnc *e, uint8_t b)
{
  if (e->err)
    return;
  if (b == 0)
    {
      st_cobs_enc_close_block (e);
      e->full_block = 0;
      return;
    }
  if (e->pos >= e->max)
    {
      e->err = 1;
      return;
    }
  e->out[e->pos++] = b;
  e->code++;
  e->full_block = 0;
  if (e->code == 0xFF)
    {
      st_cobs_enc_close_block (e);
      e->full_block = 1;
    }
}

/* The same as pushing the bytes one by one: runs of non-zero bytes are
 * copied whole, up to the end of the current block. */
static void
st_cobs_enc_push_n (StCobsEnc *e, const uint8_t *p, size_t n)
{
  while (n > 0 && !e->err)
    {
      size_t room = (size_t) (0xFF - e->code);   /* data bytes the block still takes */
      size_t max = n < room ? n : room;
      const uint8_t *zero = memchr (p, 0, max);
      size_t run = zero != NULL ? (size_t) (zero - p) : max;
      if (run == 0)
        {
          st_cobs_enc_push (e, *p++);   /* a 0x00 ends the block */
          n--;
          continue;
        }
      if (e->pos > e->max || run > e->max - e->pos)
        {
          e->err = 1;
          return;
        }
      memcpy (e->out + e->pos, p, run);
      e->pos += run;
      e->code = (uint8_t) (e->code + run);
      e->full_block = 0;
      if (e->code == 0xFF)
        {
          st_cobs_enc_close_block (e);
          e->full_block = 1;
        }
      p += run;
      n -= run;
    }
}

static size_t
st_cobs_enc_finish (StCobsEnc *e)
{
  if (e->err)
    return 0;
  if (e->full_block)
    {
      /* Canonical form: no empty 0x01 block after a full one. The code
       * byte reserved for it is simply not used. */
      return e->code_pos;
    }
  if (e->code_pos >= e->max)
    return 0;
  e->out[e->code_pos] = e->code;
  return e->pos;
}

size_t
st_cobs_encode (const uint8_t *in, size_t len, uint8_t *out, size_t out_max)
{
  StCobsEnc e;
  if (out == NULL || (in == NULL && len > 0))
    return 0;
  st_cobs_enc_init (&e, out, out_max);
  st_cobs_enc_push_n (&e, in, len);
  return st_cobs_enc_finish (&e);
}

int
st_cobs_decode (const uint8_t *in, size_t len, uint8_t *out, size_t out_max, size_t *out_len)
{
  size_t i = 0;
  size_t o = 0;

  if (in == NULL || out_len == NULL || len == 0)
    return -1;
  while (i < len)
    {
      uint8_t code = in[i++];
      size_t n;
      if (code == 0)
        return -1;
      n = (size_t) code - 1;
      if (n > len - i)
        return -1;
      if (n > out_max - o)
        return -1;
      if (n > 0)
        {
          if (memchr (in + i, 0, n) != NULL)
            return -1;
          memcpy (out + o, in + i, n);
        }
      i += n;
      o += n;
      if (code != 0xFF && i < len)
        {
          if (o >= out_max)
            return -1;
          out[o++] = 0;
        }
    }
  *out_len = o;
  return 0;
}

static void
st_put_le16 (uint8_t *p, uint16_t v)
{
  p[0] = (uint8_t) (v & 0xFF);
  p[1] = (uint8_t) (v >> 8);
}

static void
st_put_le32 (uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t) (v & 0xFF);
  p[1] = (uint8_t) ((v >> 8) & 0xFF);
  p[2] = (uint8_t) ((v >> 16) & 0xFF);
  p[3] = (uint8_t) (v >> 24);
}

size_t
st_frame_encode2 (uint8_t op, uint16_t seq, const uint8_t *p1, uint16_t len1,
                  const uint8_t *p2, uint16_t len2, uint8_t *wire, size_t wire_max)
{
  uint8_t header[ST_FRAME_HEADER];
  uint8_t crc_le[4];
  uint32_t crc;
  uint32_t total = (uint32_t) len1 + (uint32_t) len2;
  StCobsEnc e;
  size_t n;

  if (wire == NULL || total > ST_FRAME_MAX_PAYLOAD)
    return 0;
  if ((p1 == NULL && len1 > 0) || (p2 == NULL && len2 > 0))
    return 0;
  header[0] = ST_FRAME_VERSION;
  header[1] = op;
  st_put_le16 (header + 2, seq);
  st_put_le16 (header + 4, (uint16_t) total);
  crc = st_crc32 (0, header, sizeof header);
  if (len1 > 0)
    crc = st_crc32 (crc, p1, len1);
  if (len2 > 0)
    crc = st_crc32 (crc, p2, len2);
  st_put_le32 (crc_le, crc);

  st_cobs_enc_init (&e, wire, wire_max);
  st_cobs_enc_push_n (&e, header, sizeof header);
  if (len1 > 0)
    st_cobs_enc_push_n (&e, p1, len1);
  if (len2 > 0)
    st_cobs_enc_push_n (&e, p2, len2);
  st_cobs_enc_push_n (&e, crc_le, sizeof crc_le);
  n = st_cobs_enc_finish (&e);
  if (n == 0 || n >= wire_max)
    return 0;
  wire[n] = 0x00;
  return n + 1;
}

size_t
st_frame_encode (uint8_t op, uint16_t seq, const uint8_t *payload, uint16_t len,
                 uint8_t *wire, size_t wire_max)
{
  return st_frame_encode2 (op, seq, payload, len, NULL, 0, wire, wire_max);
}

int
st_frame_parse_body (const uint8_t *body, size_t len, StFrame *frame)
{
  uint16_t plen;
  uint32_t crc;
  uint32_t want;

  if (body == NULL || frame == NULL)
    return -1;
  if (len < ST_FRAME_MIN_BODY || len > ST_FRAME_MAX_BODY)
    return -1;
  plen = (uint16_t) (body[4] | (body[5] << 8));
  if (plen > ST_FRAME_MAX_PAYLOAD || (size_t) plen + ST_FRAME_MIN_BODY != len)
    return -1;
  crc = (uint32_t) body[len - 4] | ((uint32_t) body[len - 3] << 8)
        | ((uint32_t) body[len - 2] << 16) | ((uint32_t) body[len - 1] << 24);
  want = st_crc32 (0, body, len - 4);
  if (crc != want)
    return -1;
  if (body[0] != ST_FRAME_VERSION)
    return -1;
  frame->version = body[0];
  frame->op = body[1];
  frame->seq = (uint16_t) (body[2] | (body[3] << 8));
  frame->len = plen;
  frame->payload = body + ST_FRAME_HEADER;
  return 0;
}

void
st_frame_rx_init (StFrameRx *rx)
{
  rx->n = 0;
  rx->discarding = 0;
}

size_t
st_frame_rx_take_run (StFrameRx *rx, const uint8_t *data, size_t len)
{
  const uint8_t *zero = data != NULL && len > 0 ? memchr (data, 0, len) : NULL;
  size_t run = zero != NULL ? (size_t) (zero - data) : len;
  if (run == 0 || rx->discarding)
    return run;
  if (run > sizeof rx->buf - rx->n)
    {
      /* Larger than any frame: throw it away up to the next 0x00. */
      rx->n = 0;
      rx->discarding = 1;
      return run;
    }
  memcpy (rx->buf + rx->n, data, run);
  rx->n += run;
  return run;
}

int
st_frame_rx_push (StFrameRx *rx, uint8_t byte, uint8_t *body, size_t body_max,
                  size_t *body_len)
{
  if (byte != 0x00)
    {
      if (rx->discarding)
        return 0;
      if (rx->n >= sizeof rx->buf)
        {
          /* Larger than any frame: throw it away up to the next 0x00. */
          rx->n = 0;
          rx->discarding = 1;
          return 0;
        }
      rx->buf[rx->n++] = byte;
      return 0;
    }

  if (rx->discarding)
    {
      rx->discarding = 0;
      rx->n = 0;
      return 0;
    }
  if (rx->n == 0)
    return 0;
  {
    size_t n = rx->n;
    size_t out = 0;
    rx->n = 0;
    if (body == NULL || body_len == NULL)
      return 0;
    if (st_cobs_decode (rx->buf, n, body, body_max, &out) != 0)
      return 0;
    *body_len = out;
    return 1;
  }
}
