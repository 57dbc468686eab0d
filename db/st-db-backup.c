/* `station db backup DEST`: an online copy of the station database with
 * SQLite's backup API (the station may be running meanwhile), made
 * durable before it is reported done. See st_db_backup() in st-db.h. */
#include "st-db.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <sqlite3.h>
#include <unistd.h>

#include "st-error.h"

/* Pages copied per step, and how long a busy source may hold us up. */
#define ST_DB_BACKUP_PAGES 256
#define ST_DB_BACKUP_BUSY_MS 30000
#define ST_DB_BACKUP_BUSY_PAUSE_MS 50

static void
st_db_backup_set_error (GError **error, sqlite3 *db, int rc, const char *what, const char *path)
{
  int code = (rc & 0xff) == SQLITE_FULL || (rc & 0xff) == SQLITE_IOERR ? ST_ERROR_WRITE : ST_ERROR_INTERNAL;
  const char *hint = (rc & 0xff) == SQLITE_FULL ? ": the disk is full; free space or choose another place"
                     : (rc & 0xff) == SQLITE_IOERR ? ": the disk reported an I/O error; check it or choose another place"
                     : "";
  g_set_error (error, ST_ERROR, code, "%s %s%s (%s, sqlite code %d)", what, path, hint,
               db != NULL ? sqlite3_errmsg (db) : sqlite3_errstr (rc), rc);
}

static gboolean
st_db_backup_fsync_path (const char *path, gboolean is_dir, GError **error)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC | (is_dir ? O_DIRECTORY : 0));
  if (fd < 0 || fsync (fd) != 0)
    {
      int e = errno;
      if (fd >= 0)
        close (fd);
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, "cannot flush %s to the disk: %s", path,
                   g_strerror (e));
      return FALSE;
    }
  close (fd);
  return TRUE;
}

/* The copy itself, into @tmp (an empty file). */
static gboolean
st_db_backup_copy (const char *db_path, const char *tmp, GError **error)
{
  sqlite3 *src = NULL, *dst = NULL;
  int rc = sqlite3_open_v2 (db_path, &src, SQLITE_OPEN_READONLY, NULL);
  if (rc != SQLITE_OK)
    {
      st_db_backup_set_error (error, src, rc, "cannot open the database", db_path);
      sqlite3_close (src);
      return FALSE;
    }
  sqlite3_busy_timeout (src, ST_DB_BACKUP_BUSY_MS);
  rc = sqlite3_open_v2 (tmp, &dst, SQLITE_OPEN_READWRITE, NULL);
  if (rc != SQLITE_OK)
    {
      st_db_backup_set_error (error, dst, rc, "cannot open the backup file", tmp);
      sqlite3_close (dst);
      sqlite3_close (src);
      return FALSE;
    }
  gboolean ok = FALSE;
  sqlite3_backup *b = sqlite3_backup_init (dst, "main", src, "main");
  if (b == NULL)
    st_db_backup_set_error (error, dst, sqlite3_extended_errcode (dst), "cannot start the backup into", tmp);
  else
    {
      /* The source is locked only during each step: the station keeps
       * writing in between (a write restarts the copy of that database). */
      gint64 busy_since = 0;
      do
        {
          rc = sqlite3_backup_step (b, ST_DB_BACKUP_PAGES);
          if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
            {
              gint64 now = g_get_monotonic_time ();
              if (busy_since == 0)
                busy_since = now;
              if (now - busy_since > (gint64) ST_DB_BACKUP_BUSY_MS * 1000)
                break;
              sqlite3_sleep (ST_DB_BACKUP_BUSY_PAUSE_MS);
              rc = SQLITE_OK;
            }
          else
            busy_since = 0;
        }
      while (rc == SQLITE_OK);
      int frc = sqlite3_backup_finish (b);
      if (rc == SQLITE_DONE && frc == SQLITE_OK)
        ok = TRUE;
      else
        st_db_backup_set_error (error, dst, rc != SQLITE_DONE ? rc : frc, "cannot copy the database into", tmp);
    }
  /* A standalone file: a rollback journal rather than WAL, so that the
   * copy is one file; then a quick check of what was written. */
  char *msg = NULL;
  if (ok && (rc = sqlite3_exec (dst, "PRAGMA journal_mode=DELETE", NULL, NULL, &msg)) != SQLITE_OK)
    {
      st_db_backup_set_error (error, dst, rc, "cannot set the journal mode of", tmp);
      ok = FALSE;
    }
  sqlite3_free (msg);
  if (ok)
    {
      sqlite3_stmt *st = NULL;
      rc = sqlite3_prepare_v2 (dst, "PRAGMA quick_check", -1, &st, NULL);
      const unsigned char *result = rc == SQLITE_OK && sqlite3_step (st) == SQLITE_ROW ? sqlite3_column_text (st, 0) : NULL;
      if (result == NULL || g_strcmp0 ((const char *) result, "ok") != 0)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED, "the backup %s fails its quick check: %s", tmp,
                       result != NULL ? (const char *) result : sqlite3_errmsg (dst));
          ok = FALSE;
        }
      sqlite3_finalize (st);
    }
  rc = sqlite3_close (dst);
  if (ok && rc != SQLITE_OK)
    {
      st_db_backup_set_error (error, NULL, rc, "cannot close the backup file", tmp);
      ok = FALSE;
    }
  sqlite3_close (src);
  return ok;
}

gboolean
st_db_backup (const char *db_path, const char *dest, gboolean force, GError **error)
{
  g_return_val_if_fail (db_path != NULL && dest != NULL, FALSE);
  if (!g_file_test (db_path, G_FILE_TEST_IS_REGULAR))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND, "there is no station database at %s", db_path);
      return FALSE;
    }
  GStatBuf st;
  if (g_lstat (dest, &st) == 0 && !force)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                   "%s already exists: choose another name, or add --force to replace it", dest);
      return FALSE;
    }
  if (g_lstat (dest, &st) == 0 && !S_ISREG (st.st_mode))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                   "%s exists and is not a regular file: it is not replaced", dest);
      return FALSE;
    }
  g_autofree gchar *dir = g_path_get_dirname (dest);
  g_autofree gchar *base = g_path_get_basename (dest);
  g_autofree gchar *tmpl = g_strdup_printf ("%s/.%s.XXXXXX", dir, base);
  int fd = g_mkstemp_full (tmpl, O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0)
    {
      int e = errno;
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, "cannot create a file in %s: %s", dir, g_strerror (e));
      return FALSE;
    }
  close (fd);
  g_autofree gchar *journal = g_strconcat (tmpl, "-journal", NULL);

  gboolean ok = st_db_backup_copy (db_path, tmpl, error) &&
                st_db_backup_fsync_path (tmpl, FALSE, error);
  if (ok)
    {
      if (force)
        {
          if (g_rename (tmpl, dest) != 0)
            {
              int e = errno;
              g_set_error (error, ST_ERROR, ST_ERROR_WRITE, "cannot move the backup to %s: %s", dest, g_strerror (e));
              ok = FALSE;
            }
        }
      else if (link (tmpl, dest) != 0)
        {
          /* link() never replaces: a file that appeared meanwhile stays. */
          int e = errno;
          /* A file system without hard links (a FAT stick): check, then move. */
          if ((e == EPERM || e == EOPNOTSUPP || e == ENOSYS) && g_lstat (dest, &st) != 0 &&
              g_rename (tmpl, dest) == 0)
            e = 0;
          if (e == EEXIST)
            g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                         "%s already exists: choose another name, or add --force to replace it", dest);
          else if (e != 0)
            g_set_error (error, ST_ERROR, ST_ERROR_WRITE, "cannot move the backup to %s: %s", dest, g_strerror (e));
          if (e != 0)
            ok = FALSE;
        }
    }
  g_unlink (journal);
  if (!force || !ok)
    g_unlink (tmpl);
  if (ok && !st_db_backup_fsync_path (dir, TRUE, error))
    ok = FALSE;
  return ok;
}
