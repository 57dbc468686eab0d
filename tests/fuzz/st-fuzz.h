/* What every libFuzzer target here shares. */
#pragma once

#include <glib.h>

static void
st_fuzz_quiet (const gchar *domain, GLogLevelFlags level, const gchar *message, gpointer data)
{
}

/* GLib's warnings about rejected input would flood the fuzzer's output:
 * drop them, once per process. */
static inline void
st_fuzz_silence_logs (void)
{
  static gboolean once;
  if (!once)
    {
      g_log_set_default_handler (st_fuzz_quiet, NULL);
      once = TRUE;
    }
}
