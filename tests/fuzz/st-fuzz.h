/* What every libFuzzer target here shares. */
#pragma once

#include <glib.h>
#include <stdlib.h>

#include "st-frame.h"
#include "st-util.h"

static inline void
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

/* A new private folder in memory (/dev/shm, a tmpfs, when there is one;
 * else the temporary folder) from @tmpl ("name-XXXXXX"), for a target whose
 * parser reads files: it writes each input there instead of to disk. */
static inline gchar *
st_fuzz_make_tmp_dir (const char *tmpl)
{
  const char *base = g_file_test ("/dev/shm", G_FILE_TEST_IS_DIR) ? "/dev/shm" : g_get_tmp_dir ();
  gchar *dir = g_build_filename (base, tmpl, NULL);
  if (g_mkdtemp (dir) == NULL)
    {
      g_printerr ("cannot make a folder in %s\n", base);
      abort ();
    }
  return dir;
}

/* Sets the CRC-32 in the last 4 bytes of the @total-byte blob at @d (a
 * credential blob's trailer, st-blob.h) to match what precedes it. */
static inline void
st_fuzz_fix_blob_crc (guint8 *d, gsize total)
{
  st_put_le32 (d + total - 4, st_crc32 (0, d, total - 4));
}
