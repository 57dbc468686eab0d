/* station-folder-pack/1: a folder of the cloud export as one stream
 * (st-cloud-pack.h says the format). Bounded memory on both sides: a
 * 64 KiB buffer and one name. */
#include "st-cloud-pack.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "st-error.h"
#include "st-text.h"

#define ST_PACK_BUF (64 * 1024)

gboolean
st_cloud_pack_name_ok (const char *name, gsize len)
{
  if (name == NULL || len < 1 || len > 255 || name[0] == '.')
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isalnum (name[i]) && name[i] != '.' && name[i] != '_' && name[i] != '-')
      return FALSE;
  return TRUE;
}

static void
st_pack_put_be (guint8 *p, guint64 v, guint n)
{
  for (guint i = 0; i < n; i++)
    p[i] = (guint8) (v >> (8 * (n - 1 - i)));
}

static guint64
st_pack_get_be (const guint8 *p, guint n)
{
  guint64 v = 0;
  for (guint i = 0; i < n; i++)
    v = (v << 8) | p[i];
  return v;
}

/* ---- writing ------------------------------------------------------------- */

struct StCloudPack {
  int fd;                 /* the only writable descriptor */
  gchar *path;            /* while it still has a name */
  guint8 *buf;
  gsize used;
  guint64 files;
};

void
st_cloud_pack_free (StCloudPack *pack)
{
  if (pack == NULL)
    return;
  if (pack->fd >= 0)
    close (pack->fd);
  if (pack->path != NULL)
    g_unlink (pack->path);
  g_free (pack->path);
  g_free (pack->buf);
  g_free (pack);
}

static gboolean
st_pack_failed (StCloudPack *pack, int e, GError **error)
{
  g_set_error (error, ST_ERROR, ST_ERROR_WRITE, "cannot write a folder's pack for the client: %s",
               g_strerror (e));
  return FALSE;
}

static gboolean
st_pack_flush (StCloudPack *pack, GError **error)
{
  gsize done = 0;
  while (done < pack->used)
    {
      ssize_t n = write (pack->fd, pack->buf + done, pack->used - done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return st_pack_failed (pack, n < 0 ? errno : ENOSPC, error);
      done += (gsize) n;
    }
  pack->used = 0;
  return TRUE;
}

static gboolean
st_pack_put (StCloudPack *pack, const void *data, gsize len, GError **error)
{
  const guint8 *p = data;
  while (len > 0)
    {
      if (pack->used == ST_PACK_BUF && !st_pack_flush (pack, error))
        return FALSE;
      gsize n = MIN (len, ST_PACK_BUF - pack->used);
      memcpy (pack->buf + pack->used, p, n);
      pack->used += n;
      p += n;
      len -= n;
    }
  return TRUE;
}

StCloudPack *
st_cloud_pack_new (const char *tmp_dir, GError **error)
{
  g_autoptr(StCloudPack) pack = g_new0 (StCloudPack, 1);
  pack->path = g_build_filename (tmp_dir, ".pack-XXXXXX", NULL);
  pack->fd = g_mkstemp_full (pack->path, O_RDWR | O_CLOEXEC, 0600);
  if (pack->fd < 0)
    {
      int e = errno;
      g_clear_pointer (&pack->path, g_free);
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, "cannot make a folder's pack in %s: %s", tmp_dir,
                   g_strerror (e));
      return NULL;
    }
  pack->buf = g_malloc (ST_PACK_BUF);
  if (!st_pack_put (pack, ST_CLOUD_PACK_MAGIC, strlen (ST_CLOUD_PACK_MAGIC), error))
    return NULL;
  return g_steal_pointer (&pack);
}

static gboolean
st_pack_header (StCloudPack *pack, const char *name, guint64 len, GError **error)
{
  gsize n = name != NULL ? strlen (name) : 0;
  if (!st_cloud_pack_name_ok (name, n) || len > ST_CLOUD_PACK_FILE_MAX
      || pack->files >= ST_CLOUD_PACK_FILES_MAX)
    {
      g_autofree gchar *shown = st_text_escape (name != NULL ? name : "", -1, ST_TEXT_ONE_LINE);
      g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL,
                   "cannot pack '%s' (%" G_GUINT64_FORMAT " bytes) for the client: a name of "
                   "A-Z a-z 0-9 . _ -, at most %" G_GUINT64_FORMAT " bytes and %" G_GUINT64_FORMAT
                   " files", shown, len, ST_CLOUD_PACK_FILE_MAX, ST_CLOUD_PACK_FILES_MAX);
      return FALSE;
    }
  guint8 h[2];
  guint8 l[8];
  st_pack_put_be (h, n, 2);
  st_pack_put_be (l, len, 8);
  pack->files++;
  return st_pack_put (pack, h, 2, error) && st_pack_put (pack, name, n, error)
         && st_pack_put (pack, l, 8, error);
}

gboolean
st_cloud_pack_add_data (StCloudPack *pack, const char *name, const void *data, gsize len,
                        GError **error)
{
  return st_pack_header (pack, name, len, error) && st_pack_put (pack, data, len, error);
}

gboolean
st_cloud_pack_add_fd (StCloudPack *pack, const char *name, int fd, guint64 len, GError **error)
{
  if (!st_pack_header (pack, name, len, error))
    return FALSE;
  while (len > 0)
    {
      if (pack->used == ST_PACK_BUF && !st_pack_flush (pack, error))
        return FALSE;
      gsize want = (gsize) MIN (len, (guint64) (ST_PACK_BUF - pack->used));
      ssize_t n = read (fd, pack->buf + pack->used, want);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          int e = n < 0 ? errno : 0;
          g_set_error (error, ST_ERROR, ST_ERROR_READ, "cannot pack %s for the client: %s", name,
                       e != 0 ? g_strerror (e) : "it became shorter while it was read");
          return FALSE;
        }
      pack->used += (gsize) n;
      len -= (guint64) n;
    }
  return TRUE;
}

int
st_cloud_pack_finish (StCloudPack *pack, GError **error)
{
  guint8 end[10];
  st_pack_put_be (end, 0, 2);
  st_pack_put_be (end + 2, pack->files, 8);
  /* the client gets a read-only descriptor of a file without a name: the
   * writable one is closed before it is handed out, so nobody changes it */
  int ro = -1;
  if (st_pack_put (pack, end, sizeof end, error) && st_pack_flush (pack, error))
    {
      ro = g_open (pack->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
      if (ro < 0)
        st_pack_failed (pack, errno, error);
    }
  st_cloud_pack_free (pack);
  return ro;
}

int
st_cloud_pack_folder (const char *path, const char *tmp_dir, GError **error)
{
  int dfd = open (path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  DIR *d = dfd >= 0 ? fdopendir (dfd) : NULL;
  if (d == NULL)
    {
      int e = errno;
      if (dfd >= 0)
        close (dfd);
      g_set_error (error, ST_ERROR, ST_ERROR_READ, "cannot read %s: %s", path, g_strerror (e));
      return -1;
    }
  g_autoptr(StCloudPack) pack = st_cloud_pack_new (tmp_dir, error);
  gboolean ok = pack != NULL;
  struct dirent *de;
  while (ok && (de = readdir (d)) != NULL)
    {
      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      int fd = openat (dfd, de->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
      struct stat st;
      if (fd < 0 || fstat (fd, &st) != 0 || !S_ISREG (st.st_mode)
          || !st_cloud_pack_name_ok (de->d_name, strlen (de->d_name)))
        {
          g_autofree gchar *shown = st_text_escape (de->d_name, -1, ST_TEXT_ONE_LINE);
          g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL, "%s/%s is not a plain file of the export",
                       path, shown);
          ok = FALSE;
        }
      else
        ok = st_cloud_pack_add_fd (pack, de->d_name, fd, (guint64) st.st_size, error);
      if (fd >= 0)
        close (fd);
    }
  closedir (d);
  if (!ok)
    return -1;
  return st_cloud_pack_finish (g_steal_pointer (&pack), error);
}

/* ---- reading ------------------------------------------------------------- */

static gboolean
st_pack_read_at (int fd, guint64 size, guint64 at, void *buf, gsize len)
{
  if (at > size || len > size - at)
    return FALSE;
  gsize done = 0;
  while (done < len)
    {
      ssize_t n = pread (fd, (guint8 *) buf + done, len - done, (off_t) (at + done));
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      done += (gsize) n;
    }
  return TRUE;
}

gboolean
st_cloud_pack_read (int fd, const char *label, StCloudPackFunc func, gpointer user_data,
                    guint64 *n_files, GError **error)
{
  struct stat st;
  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "the service sent folder %s as something other than a regular file", label);
      return FALSE;
    }
  guint64 size = (guint64) st.st_size;
  gsize mlen = strlen (ST_CLOUD_PACK_MAGIC);
  char magic[32];
  if (!st_pack_read_at (fd, size, 0, magic, mlen) || memcmp (magic, ST_CLOUD_PACK_MAGIC, mlen) != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "the service sent folder %s in a form other than station-folder-pack/1 "
                   "(a client and a service of different versions? update both)", label);
      return FALSE;
    }
  guint64 at = mlen;
  guint64 files = 0;
  char name[256];
  for (;;)
    {
      guint8 h[2];
      if (!st_pack_read_at (fd, size, at, h, 2))
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "the service sent folder %s cut short after %" G_GUINT64_FORMAT " file(s)",
                       label, files);
          return FALSE;
        }
      at += 2;
      gsize nlen = (gsize) st_pack_get_be (h, 2);
      if (nlen == 0)
        break;
      if (nlen > 255 || !st_pack_read_at (fd, size, at, name, nlen))
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "the service sent folder %s with a file name of %" G_GSIZE_FORMAT " bytes "
                       "(at most 255) or cut short", label, nlen);
          return FALSE;
        }
      name[nlen] = '\0';
      if (!st_cloud_pack_name_ok (name, nlen) || memchr (name, '\0', nlen) != NULL)
        {
          g_autofree gchar *shown = st_text_escape (name, (gssize) nlen, ST_TEXT_ONE_LINE);
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "the service sent folder %s with a file named '%s': refused (names are "
                       "A-Z a-z 0-9 . _ -, not starting with '.', each once)", label, shown);
          return FALSE;
        }
      at += nlen;
      guint8 l[8];
      guint64 len = st_pack_read_at (fd, size, at, l, 8) ? st_pack_get_be (l, 8) : G_MAXUINT64;
      at += 8;
      if (len > ST_CLOUD_PACK_FILE_MAX || at > size || len > size - at
          || files >= ST_CLOUD_PACK_FILES_MAX)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "the service sent folder %s with file %s longer than what follows it, or "
                       "over %" G_GUINT64_FORMAT " bytes, or more than %" G_GUINT64_FORMAT " files",
                       label, name, ST_CLOUD_PACK_FILE_MAX, ST_CLOUD_PACK_FILES_MAX);
          return FALSE;
        }
      if (func != NULL && !func (name, fd, at, len, user_data, error))
        return FALSE;
      at += len;
      files++;
    }
  guint8 c[8];
  guint8 extra;
  if (!st_pack_read_at (fd, size, at, c, 8) || st_pack_get_be (c, 8) != files
      || st_pack_read_at (fd, size, at + 8, &extra, 1))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "the service sent folder %s whose end does not count its %" G_GUINT64_FORMAT
                   " file(s), or with bytes after its end", label, files);
      return FALSE;
    }
  if (n_files != NULL)
    *n_files = files;
  return TRUE;
}
