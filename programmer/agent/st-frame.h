/* Agent protocol framing (docs/agent-protocol.md, Frame): CRC-32, COBS and
 * the frame body. Portable C99 for both sides of the link: no heap, no OS
 * calls, only <stdint.h>, <stddef.h> and <string.h>. */
#ifndef ST_FRAME_H
#define ST_FRAME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ST_FRAME_VERSION 1
#define ST_FRAME_MAX_PAYLOAD 2048
#define ST_FRAME_HEADER 6
#define ST_FRAME_MIN_BODY 10                        /* header + CRC */
#define ST_FRAME_MAX_BODY (6 + ST_FRAME_MAX_PAYLOAD + 4)
#define ST_FRAME_MAX_WIRE (ST_FRAME_MAX_BODY + ST_FRAME_MAX_BODY / 254 + 2) /* COBS overhead + 0x00 */

/* CRC-32 ISO-HDLC, zlib convention: st_crc32 (0, p, n); chainable.
 * st_crc32_portable() is the agent's own, with a 64-byte table; st_crc32()
 * is the same function, or, built with ST_FRAME_CRC32_ZLIB (the station's
 * host build), zlib's crc32(), which computes the same CRC several bytes at a
 * time. A firmware with a CRC unit can put its own behind st_crc32(). */
uint32_t st_crc32_portable (uint32_t crc, const uint8_t *data, size_t len);
uint32_t st_crc32 (uint32_t crc, const uint8_t *data, size_t len);

/* COBS-encodes @len bytes into @out in the canonical form (a body whose last
 * block is a full 254 bytes gets no further 0x01 code), without the trailing
 * 0x00. Returns the encoded length, 0 if @out_max is too small. */
size_t st_cobs_encode (const uint8_t *in, size_t len, uint8_t *out, size_t out_max);
/* Decodes @len COBS bytes (no 0x00 among them) into @out. Accepts both the
 * canonical form and the one with a final 0x01 code after a full block.
 * Returns 0 and sets *@out_len, or -1 when the input is empty, invalid or
 * decodes to more than @out_max bytes. */
int st_cobs_decode (const uint8_t *in, size_t len, uint8_t *out, size_t out_max, size_t *out_len);

typedef struct {
  uint8_t version;
  uint8_t op;
  uint16_t seq;
  uint16_t len;
  const uint8_t *payload;
} StFrame;

/* Builds body+CRC, COBS-encodes it, appends 0x00. Returns wire length, 0 on
 * error (len > max, out too small). */
size_t st_frame_encode (uint8_t op, uint16_t seq, const uint8_t *payload, uint16_t len,
                        uint8_t *wire, size_t wire_max);
/* Same, with the payload given in two parts (status byte + result, without a copy). */
size_t st_frame_encode2 (uint8_t op, uint16_t seq, const uint8_t *p1, uint16_t len1,
                         const uint8_t *p2, uint16_t len2, uint8_t *wire, size_t wire_max);
/* Validates a decoded body: size >= 10, len agrees with size, CRC, version 1.
 * 0 ok (frame->payload points into body), -1 drop. */
int st_frame_parse_body (const uint8_t *body, size_t len, StFrame *frame);

/* Byte-at-a-time receiver with a bounded buffer: bytes past the largest
 * possible frame without a 0x00 are discarded up to the next 0x00. */
typedef struct {
  uint8_t buf[ST_FRAME_MAX_WIRE];
  size_t n;
  int discarding;
} StFrameRx;

void st_frame_rx_init (StFrameRx *rx);
/* Feeds one byte. Returns 1 when a 0x00 completed a frame that COBS-decoded
 * into @body (size in *body_len), 0 when more bytes are needed or the frame
 * was dropped (garbage, empty, bad COBS, overflow). The caller then runs
 * st_frame_parse_body. */
int st_frame_rx_push (StFrameRx *rx, uint8_t byte, uint8_t *body, size_t body_max,
                      size_t *body_len);
/* Takes the bytes of @data before its first 0x00 (all of them when it has
 * none) as st_frame_rx_push() would one by one, in one copy, and returns
 * how many it took: the byte there, if any, is a 0x00 for
 * st_frame_rx_push(). */
size_t st_frame_rx_take_run (StFrameRx *rx, const uint8_t *data, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* ST_FRAME_H */
