/* libFuzzer: the frame receiver and decoder (COBS, length, CRC, version),
 * the round trip of whatever decodes, and the receiver fed run by run
 * (st_frame_rx_take_run) against the same receiver fed byte by byte. */
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

  static StFrameRx runs;
  static uint8_t run_body[ST_FRAME_MAX_BODY];
  size_t at = 0;   /* how far the run-by-run receiver has read */

  st_frame_rx_init (&rx);
  st_frame_rx_init (&runs);
  for (size_t i = 0; i < size; i++)
    {
      int got = st_frame_rx_push (&rx, data[i], body, sizeof body, &body_len);
      if (data[i] == 0x00)
        {
          /* the other receiver catches up to this 0x00, in runs of up to
           * 61 bytes (the reads of a serial port) */
          int run_got = 0;
          size_t run_len = 0;
          while (at <= i)
            {
              size_t read = i + 1 - at < 61 ? i + 1 - at : 61;
              size_t k = st_frame_rx_take_run (&runs, data + at, read);
              at += k;
              if (k < read)
                {
                  if (data[at] != 0x00)
                    abort ();
                  run_got = st_frame_rx_push (&runs, 0x00, run_body, sizeof run_body, &run_len);
                  at++;
                }
            }
          if (run_got != got || (got && (run_len != body_len || memcmp (run_body, body, body_len) != 0))
              || runs.n != rx.n || runs.discarding != rx.discarding)
            abort ();
        }
      if (got != 1)
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
