/* libFuzzer: the client's reader of station-folder-pack/1 (a folder of the
 * cloud export as the service sends it, st-cloud-pack.h). The input is the
 * pack; every file the reader accepts must have a name that passes the
 * rule and lie inside the input, the files must be as many as the end
 * says, and a pack the reader accepts, written again by the service's
 * writer from what was read, must be the same bytes. */
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "st-cloud-pack.h"
#include "st-fuzz.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

typedef struct {
  size_t size;
  StCloudPack *again;
  guint64 seen;
} FuzzPack;

static gboolean
fuzz_pack_file (const char *name, int fd, guint64 offset, guint64 len, gpointer user_data,
                GError **error)
{
  FuzzPack *f = user_data;
  if (!st_cloud_pack_name_ok (name, strlen (name)) || offset > f->size || len > f->size - offset)
    abort ();
  guint8 *buf = g_malloc (len > 0 ? (gsize) len : 1);
  if (pread (fd, buf, (gsize) len, (off_t) offset) != (ssize_t) len)
    abort ();
  gboolean ok = st_cloud_pack_add_data (f->again, name, buf, (gsize) len, error);
  g_free (buf);
  if (!ok)
    abort ();
  f->seen++;
  return TRUE;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  st_fuzz_silence_logs ();
  static gchar *dir;
  if (dir == NULL)
    dir = g_dir_make_tmp ("st-fuzz-pack-XXXXXX", NULL);
  int fd = memfd_create ("fuzz-pack", MFD_CLOEXEC);
  if (fd < 0 || (size > 0 && write (fd, data, size) != (ssize_t) size))
    abort ();
  FuzzPack f = { .size = size, .again = st_cloud_pack_new (dir, NULL) };
  if (f.again == NULL)
    abort ();
  guint64 n = 0;
  gboolean ok = st_cloud_pack_read (fd, "fuzz/", fuzz_pack_file, &f, &n, NULL);
  close (fd);
  if (!ok)
    {
      st_cloud_pack_free (f.again);
      return 0;
    }
  if (n != f.seen)
    abort ();
  /* what was accepted is exactly what the writer writes */
  int again = st_cloud_pack_finish (f.again, NULL);
  if (again < 0)
    abort ();
  guint8 *back = g_malloc (size + 1);
  ssize_t got = pread (again, back, size + 1, 0);
  close (again);
  if (got != (ssize_t) size || memcmp (back, data, size) != 0)
    abort ();
  g_free (back);
  return 0;
}
