/* libFuzzer: the frame receiver and decoder (COBS, length, CRC, version), and
 * the round trip of whatever decodes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "st-frame.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static StFrameRx rx;
  static uint8_t body[ST_FRAME_MAX_BODY];
  static uint8_t wire[ST_FRAME_MAX_WIRE];
  static uint8_t again[ST_FRAME_MAX_BODY];
  size_t body_len = 0;

  st_frame_rx_init (&rx);
  for (size_t i = 0; i < size; i++)
    {
      if (st_frame_rx_push (&rx, data[i], body, sizeof body, &body_len) != 1)
        continue;
      if (body_len > sizeof body)
        abort ();
      StFrame frame;
      if (st_frame_parse_body (body, body_len, &frame) != 0)
        continue;
      if (frame.len > ST_FRAME_MAX_PAYLOAD || (size_t) frame.len + 10 != body_len)
        abort ();
      /* Whatever decodes must encode back to the same body. */
      size_t n = st_frame_encode (frame.op, frame.seq, frame.payload, frame.len, wire, sizeof wire);
      if (n == 0 || wire[n - 1] != 0)
        abort ();
      size_t again_len = 0;
      if (st_cobs_decode (wire, n - 1, again, sizeof again, &again_len) != 0 ||
          again_len != body_len || memcmp (again, body, body_len) != 0)
        abort ();
    }
  /* The decoder alone, on the raw input. */
  size_t out_len = 0;
  if (size <= ST_FRAME_MAX_WIRE &&
      st_cobs_decode (data, size, body, sizeof body, &out_len) == 0 && out_len > sizeof body)
    abort ();
  return 0;
}
