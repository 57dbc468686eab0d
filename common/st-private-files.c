#include "st-private-files.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "st-error.h"

gboolean
st_dir_ensure_private (const char *dir, GError **error)
{
  GStatBuf st;
  if (g_stat (dir, &st) != 0)
    {
      int e = errno;
      if (e != ENOENT)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_WRITE, "cannot use the folder %s: %s", dir, g_strerror (e));
          return FALSE;
        }
      /* g_mkdir_with_parents() gives each folder it makes 0700 less the
       * umask: 0700 is what umask 077, 022 and 002 all leave. The last one
       * is set exactly, whatever the umask took. */
      if (g_mkdir_with_parents (dir, 0700) != 0 || g_chmod (dir, 0700) != 0)
        {
          e = errno;
          g_set_error (error, ST_ERROR, ST_ERROR_WRITE, "cannot create the folder %s: %s", dir,
                       g_strerror (e));
          return FALSE;
        }
      return TRUE;
    }
  if (!S_ISDIR (st.st_mode))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "%s is not a folder", dir);
      return FALSE;
    }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                   "the folder %s may be written by other users (mode %04o): they could replace or "
                   "remove the station's files there; make it the station's own (chmod 700 %s), or "
                   "give the station a folder of its own",
                   dir, (unsigned) (st.st_mode & 07777), dir);
      return FALSE;
    }
  return TRUE;
}

gboolean
st_file_ensure_private (const char *path, gboolean create, GError **error)
{
  int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
  int fd = g_open (path, flags | (create ? O_CREAT : 0), 0600);
  if (fd < 0)
    {
      int e = errno;
      if (e == ENOENT && !create)
        return TRUE;
      if (e == ELOOP)
        g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                     "%s is a symbolic link; the station's files must be regular files", path);
      else
        g_set_error (error, ST_ERROR, ST_ERROR_WRITE, "cannot open %s: %s", path, g_strerror (e));
      return FALSE;
    }
  struct stat st;
  gboolean ok = fstat (fd, &st) == 0;
  int e = errno;
  if (ok && !S_ISREG (st.st_mode))
    {
      close (fd);
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "%s is not a regular file; the station's files must be", path);
      return FALSE;
    }
  /* A new file has 0600 less the umask; an old one may have more. */
  mode_t mode = st.st_mode & 07777;
  if (ok && mode != 0600)
    {
      ok = fchmod (fd, 0600) == 0;
      e = errno;
      if (ok && (mode & ~(mode_t) 0600) != 0)
        g_message ("%s had mode %04o, open to others: set to 0600", path, (unsigned) mode);
    }
  close (fd);
  if (!ok)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, "cannot make %s private (mode 0600): %s", path,
                   g_strerror (e));
      return FALSE;
    }
  return TRUE;
}
