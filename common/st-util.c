#include "st-util.h"
#include "st-error.h"
#include "st-ossl.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <malloc.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

gchar *
st_hex_encode (const guint8 *data, gsize len)
{
  static const char digits[] = "0123456789abcdef";
  gchar *out = g_malloc (len * 2 + 1);
  for (gsize i = 0; i < len; i++)
    {
      out[2 * i] = digits[data[i] >> 4];
      out[2 * i + 1] = digits[data[i] & 0x0f];
    }
  out[len * 2] = '\0';
  return out;
}

GBytes *
st_hex_decode (const char *hex, GError **error)
{
  gsize n = strlen (hex);
  if (n % 2 != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "hex string has an odd length (%" G_GSIZE_FORMAT ")", n);
      return NULL;
    }
  g_autofree guint8 *buf = g_malloc (n / 2 + 1);
  for (gsize i = 0; i < n / 2; i++)
    {
      int hi = g_ascii_xdigit_value (hex[2 * i]);
      int lo = g_ascii_xdigit_value (hex[2 * i + 1]);
      if (hi < 0 || lo < 0)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "'%s' is not hex (bad digit at %" G_GSIZE_FORMAT ")",
                       hex, 2 * i);
          return NULL;
        }
      buf[i] = (guint8) (hi << 4 | lo);
    }
  return g_bytes_new_take (g_steal_pointer (&buf), n / 2);
}

void
st_memwipe (void *p, gsize len)
{
  if (p != NULL && len > 0)
    OPENSSL_cleanse (p, len);
}

void
st_bytes_wipe_unref (GBytes *secret)
{
  if (secret == NULL)
    return;
  gsize len = 0;
  /* The data is owned by the GBytes; writing through it before the last
   * unref is how a GBytes secret is wiped. */
  void *data = (void *) g_bytes_get_data (secret, &len);
  st_memwipe (data, len);
  g_bytes_unref (secret);
}

const guint8 *
st_bytes_get_bounded (GBytes *bytes, gsize max, const char *what, gsize *len, GError **error)
{
  g_return_val_if_fail (bytes != NULL && what != NULL && len != NULL, NULL);
  const guint8 *data = g_bytes_get_data (bytes, len);
  if (*len == 0 || data == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "%s is empty", what);
      return NULL;
    }
  if (*len > max)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "%s is too large (%" G_GSIZE_FORMAT " bytes, at most %" G_GSIZE_FORMAT ")", what,
                   *len, max);
      return NULL;
    }
  return data;
}

gchar *
st_sha256_hex (const guint8 *data, gsize len)
{
  guint8 md[32];
  unsigned int mdlen = 0;
  EVP_Digest (data, len, md, &mdlen, st_md_sha256 (), NULL);
  return st_hex_encode (md, mdlen);
}

gchar *
st_time_iso8601_from_unix (gint64 unix_seconds)
{
  g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc (unix_seconds);
  if (dt == NULL)
    return g_strdup ("invalid-time");
  return g_date_time_format (dt, "%Y-%m-%dT%H:%M:%SZ");
}

gchar *
st_time_iso8601_now (void)
{
  return st_time_iso8601_from_unix (g_get_real_time () / G_USEC_PER_SEC);
}

/* Writes all of @len bytes at @p to @fd; errno on failure. */
static gboolean
st_fd_write_all (int fd, const guint8 *p, gsize len)
{
  while (len > 0)
    {
      ssize_t w = write (fd, p, len);
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0)
        {
          if (w == 0)
            errno = ENOSPC;
          return FALSE;
        }
      p += w;
      len -= (gsize) w;
    }
  return TRUE;
}

gboolean
st_fd_copy (int from, int to, guint64 max, const char *what, GError **error)
{
  guint8 buf[65536];
  guint64 total = 0;
  for (;;)
    {
      ssize_t n = pread (from, buf, sizeof buf, (off_t) total);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int e = errno;
          g_set_error (error, ST_ERROR, ST_ERROR_READ, "cannot read %s: %s", what, g_strerror (e));
          return FALSE;
        }
      if (n == 0)
        return TRUE;
      total += (guint64) n;
      if (total > max)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "%s grew past %" G_GUINT64_FORMAT " bytes", what, max);
          return FALSE;
        }
      if (!st_fd_write_all (to, buf, (gsize) n))
        {
          int e = errno;
          g_set_error (error, ST_ERROR, ST_ERROR_WRITE, "cannot copy %s: %s", what, g_strerror (e));
          return FALSE;
        }
    }
}

/* Writes what @fill writes to a temporary file beside @path, then makes it
 * @path durably (fsync, rename, fsync of the folder). */
static gboolean
st_file_write_durable_by (const char *path, int mode,
                          gboolean (*fill) (int fd, gconstpointer data, gsize len,
                                            const char *path, GError **error),
                          gconstpointer data, gsize len, GError **error)
{
  g_autofree gchar *tmp = g_strdup_printf ("%s.tmp-XXXXXX", path);
  int fd = g_mkstemp_full (tmp, O_WRONLY | O_CLOEXEC, mode);
  if (fd < 0)
    {
      int e = errno;
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, "cannot create %s: %s",
                   tmp, g_strerror (e));
      return FALSE;
    }
  if (!fill (fd, data, len, path, error))
    {
      close (fd);
      g_unlink (tmp);
      return FALSE;
    }
  if (fsync (fd) != 0 || close (fd) != 0)
    {
      int e = errno;
      g_unlink (tmp);
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, "cannot flush %s to disk: %s",
                   path, g_strerror (e));
      return FALSE;
    }
  if (g_rename (tmp, path) != 0)
    {
      int e = errno;
      g_unlink (tmp);
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, "cannot rename %s to %s: %s",
                   tmp, path, g_strerror (e));
      return FALSE;
    }
  g_autofree gchar *dir = g_path_get_dirname (path);
  int dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0)
    {
      fsync (dfd);
      close (dfd);
    }
  return TRUE;
}

static gboolean
st_fill_from_buffer (int fd, gconstpointer data, gsize len, const char *path, GError **error)
{
  if (st_fd_write_all (fd, data, len))
    return TRUE;
  int e = errno;
  g_set_error (error, ST_ERROR, ST_ERROR_WRITE, "cannot write %s: %s", path, g_strerror (e));
  return FALSE;
}

gboolean
st_file_write_durable (const char *path, const void *data, gsize len,
                       int mode, GError **error)
{
  return st_file_write_durable_by (path, mode, st_fill_from_buffer, data, len, error);
}

static gboolean
st_fill_from_fd (int fd, gconstpointer data, gsize len, const char *path, GError **error)
{
  return st_fd_copy (*(const int *) data, fd, G_MAXUINT64, path, error);
}

gboolean
st_file_write_durable_from_fd (const char *path, int from, int mode, GError **error)
{
  return st_file_write_durable_by (path, mode, st_fill_from_fd, &from, 0, error);
}

void
st_rm_rf (const char *path)
{
  GStatBuf st;
  if (g_lstat (path, &st) != 0)
    return;
  if (!S_ISDIR (st.st_mode))
    {
      g_unlink (path);
      return;
    }
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  if (dir != NULL)
    {
      const char *name;
      while ((name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree gchar *child = g_build_filename (path, name, NULL);
          st_rm_rf (child);
        }
    }
  g_rmdir (path);
}

gchar *
st_read_secret (const char *prompt, const char *env_var, gsize max_len, GError **error)
{
  g_return_val_if_fail (env_var != NULL && max_len > 0 && max_len <= 4096, NULL);
  const char *env = g_getenv (env_var);
  if (env != NULL)
    {
      if (*env == '\0' || strlen (env) > max_len)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "%s must have 1 to %" G_GSIZE_FORMAT " characters", env_var, max_len);
          return NULL;
        }
      return g_strdup (env);
    }
  int fd = open ("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  struct termios old, quiet;
  if (fd < 0 || tcgetattr (fd, &old) != 0)
    {
      if (fd >= 0)
        close (fd);
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                   "no PIN: set %s or run from a terminal", env_var);
      return NULL;
    }
  const char *p = prompt != NULL ? prompt : "PIN: ";
  if (write (fd, p, strlen (p)) < 0)
    g_debug ("cannot write the PIN prompt: %s", g_strerror (errno));
  quiet = old;
  quiet.c_lflag &= ~(tcflag_t) (ECHO | ECHONL);
  quiet.c_lflag |= ICANON;
  tcsetattr (fd, TCSAFLUSH, &quiet);
  gchar *buf = g_malloc0 (max_len + 1);
  gsize len = 0;
  gboolean too_long = FALSE, got_line = FALSE;
  for (;;)
    {
      char c;
      ssize_t n = read (fd, &c, 1);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      if (c == '\n' || c == '\r')
        {
          got_line = TRUE;
          break;
        }
      if (len < max_len)
        buf[len++] = c;
      else
        too_long = TRUE;
      c = 0;
    }
  buf[len] = '\0';
  tcsetattr (fd, TCSAFLUSH, &old);
  if (write (fd, "\n", 1) < 0)
    g_debug ("cannot write to the terminal: %s", g_strerror (errno));
  close (fd);
  if (too_long || len == 0 || !got_line)
    {
      st_memwipe (buf, max_len + 1);
      g_free (buf);
      if (too_long)
        g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                     "the PIN is longer than %" G_GSIZE_FORMAT " characters", max_len);
      else
        g_set_error_literal (error, ST_ERROR, ST_ERROR_CANCELLED, "no PIN given");
      return NULL;
    }
  return buf;
}

void
st_secret_free (gchar *secret)
{
  if (secret == NULL)
    return;
  st_memwipe (secret, strlen (secret));
  g_free (secret);
}

void
st_process_setup (void)
{
  if (prctl (PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
    g_debug ("prctl(PR_SET_DUMPABLE): %s", g_strerror (errno));
  /* 64 MiB: far above what a line keeps in flight; the heap still shrinks
   * after a larger peak (a manifest export of a big batch). */
  if (mallopt (M_TRIM_THRESHOLD, 64 * 1024 * 1024) != 1)
    g_debug ("mallopt(M_TRIM_THRESHOLD) was refused");
}
