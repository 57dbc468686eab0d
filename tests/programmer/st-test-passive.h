/* What the passive-backend tests (stm32-rom and cmsis-dap) share. */
#pragma once

#include <glib.h>
#include <string.h>

#include "st-backend.h"
#include "st-error.h"

/* A DER SEQUENCE with a long-form length around @body bytes of @fill:
 * enough framing for the chain splitter, not a real certificate. */
static inline GBytes *
st_test_der_seq (guint8 fill, gsize body)
{
  guint8 *p = g_malloc (body + 4);
  p[0] = 0x30;
  p[1] = 0x82;
  p[2] = (guint8) (body >> 8);
  p[3] = (guint8) body;
  memset (p + 4, fill, body);
  return g_bytes_new_take (p, body + 4);
}

/* Identifies the device in the socket, up to @tries times @sleep_us apart
 * while nothing answers (TIMED_OUT: the operator is swapping); any other
 * error fails the test. Returns whether nothing answered at first. */
static inline gboolean
st_test_identify_next (StBackend *be, StDeviceInfo *info, guint tries, gulong sleep_us)
{
  gboolean empty = FALSE;
  for (guint i = 0; i < tries; i++)
    {
      g_autoptr(GError) error = NULL;
      if (st_backend_identify (be, info, &error))
        return empty;
      g_assert_error (error, ST_ERROR, ST_ERROR_TIMED_OUT);
      empty = TRUE;
      if (sleep_us > 0)
        g_usleep (sleep_us);
    }
  g_assert_not_reached ();
  return empty;
}
