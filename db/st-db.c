/* The station's records in SQLite: the connections and their statements,
 * the migrations, opening and closing, and the checks of arguments every
 * public function makes in its caller's thread.
 *
 * Two connections: the writer's (owned by one writer thread after the
 * migrations ran, st-db-writer.c) and a read-only one behind a mutex. The
 * records are read and written in one file per concern: st-db-batch.c,
 * st-db-unit.c, st-db-operator.c, st-db-audit.c, st-db-check.c. */
#include "st-db.h"
#include "st-db-private.h"
#include "st-db-schema.h"
#include "st-error.h"
#include "st-private-files.h"
#include "st-sqlite.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define ST_DB_WRITER_CACHE_KIB 32768

/* ---------- errors ---------- */

static const char *
st_db_rc_name (int rc)
{
  switch (rc)
    {
    case SQLITE_OK: return "SQLITE_OK";
    case SQLITE_ERROR: return "SQLITE_ERROR";
    case SQLITE_INTERNAL: return "SQLITE_INTERNAL";
    case SQLITE_PERM: return "SQLITE_PERM";
    case SQLITE_ABORT: return "SQLITE_ABORT";
    case SQLITE_BUSY: return "SQLITE_BUSY";
    case SQLITE_BUSY_SNAPSHOT: return "SQLITE_BUSY_SNAPSHOT";
    case SQLITE_BUSY_RECOVERY: return "SQLITE_BUSY_RECOVERY";
    case SQLITE_LOCKED: return "SQLITE_LOCKED";
    case SQLITE_NOMEM: return "SQLITE_NOMEM";
    case SQLITE_READONLY: return "SQLITE_READONLY";
    case SQLITE_READONLY_DBMOVED: return "SQLITE_READONLY_DBMOVED";
    case SQLITE_READONLY_RECOVERY: return "SQLITE_READONLY_RECOVERY";
    case SQLITE_READONLY_CANTINIT: return "SQLITE_READONLY_CANTINIT";
    case SQLITE_INTERRUPT: return "SQLITE_INTERRUPT";
    case SQLITE_IOERR: return "SQLITE_IOERR";
    case SQLITE_IOERR_READ: return "SQLITE_IOERR_READ";
    case SQLITE_IOERR_SHORT_READ: return "SQLITE_IOERR_SHORT_READ";
    case SQLITE_IOERR_WRITE: return "SQLITE_IOERR_WRITE";
    case SQLITE_IOERR_FSYNC: return "SQLITE_IOERR_FSYNC";
    case SQLITE_IOERR_DIR_FSYNC: return "SQLITE_IOERR_DIR_FSYNC";
    case SQLITE_IOERR_TRUNCATE: return "SQLITE_IOERR_TRUNCATE";
    case SQLITE_IOERR_FSTAT: return "SQLITE_IOERR_FSTAT";
    case SQLITE_IOERR_LOCK: return "SQLITE_IOERR_LOCK";
    case SQLITE_IOERR_SHMOPEN: return "SQLITE_IOERR_SHMOPEN";
    case SQLITE_IOERR_SHMSIZE: return "SQLITE_IOERR_SHMSIZE";
    case SQLITE_IOERR_SHMMAP: return "SQLITE_IOERR_SHMMAP";
    case SQLITE_IOERR_NOMEM: return "SQLITE_IOERR_NOMEM";
    case SQLITE_CORRUPT: return "SQLITE_CORRUPT";
    case SQLITE_NOTFOUND: return "SQLITE_NOTFOUND";
    case SQLITE_FULL: return "SQLITE_FULL";
    case SQLITE_CANTOPEN: return "SQLITE_CANTOPEN";
    case SQLITE_PROTOCOL: return "SQLITE_PROTOCOL";
    case SQLITE_SCHEMA: return "SQLITE_SCHEMA";
    case SQLITE_TOOBIG: return "SQLITE_TOOBIG";
    case SQLITE_CONSTRAINT: return "SQLITE_CONSTRAINT";
    case SQLITE_CONSTRAINT_CHECK: return "SQLITE_CONSTRAINT_CHECK";
    case SQLITE_CONSTRAINT_FOREIGNKEY: return "SQLITE_CONSTRAINT_FOREIGNKEY";
    case SQLITE_CONSTRAINT_NOTNULL: return "SQLITE_CONSTRAINT_NOTNULL";
    case SQLITE_CONSTRAINT_PRIMARYKEY: return "SQLITE_CONSTRAINT_PRIMARYKEY";
    case SQLITE_CONSTRAINT_TRIGGER: return "SQLITE_CONSTRAINT_TRIGGER";
    case SQLITE_CONSTRAINT_UNIQUE: return "SQLITE_CONSTRAINT_UNIQUE";
    case SQLITE_MISMATCH: return "SQLITE_MISMATCH";
    case SQLITE_MISUSE: return "SQLITE_MISUSE";
    case SQLITE_NOLFS: return "SQLITE_NOLFS";
    case SQLITE_AUTH: return "SQLITE_AUTH";
    case SQLITE_RANGE: return "SQLITE_RANGE";
    case SQLITE_NOTADB: return "SQLITE_NOTADB";
    default: break;
    }
  if ((rc & 0xff) != rc)
    return st_db_rc_name (rc & 0xff);
  return "SQLITE_UNKNOWN";
}

/* Converts sqlite's @rc (extended) into an ST_ERROR, telling what happened and
 * what to do, with the sqlite code name and message kept. */
void
st_db_set_error_rc (GError **error, StDbConn *c, int rc, const char *what)
{
  const char *name = st_db_rc_name (rc);
  const char *msg = c != NULL && c->db != NULL ? sqlite3_errmsg (c->db) : sqlite3_errstr (rc);
  const char *path = c != NULL ? c->path : "the station database";

  switch (rc & 0xff)
    {
    case SQLITE_FULL:
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE,
                   "%s: the disk holding %s is full: free space, then restart the station; "
                   "nothing was lost (%s: %s)", what, path, name, msg);
      break;
    case SQLITE_IOERR:
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE,
                   "%s: the disk holding %s reported an I/O error: check the disk and the "
                   "system log, then restart the station; this write was not acknowledged (it may "
                   "or may not be there after the restart), earlier ones are safe (%s: %s)", what, path, name, msg);
      break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "%s: %s is damaged or not a station database: stop the station and restore "
                   "it from a backup (%s: %s)", what, path, name, msg);
      break;
    case SQLITE_CANTOPEN:
      g_set_error (error, ST_ERROR, ST_ERROR_READ,
                   "%s: cannot open %s: check that its folder exists and that the station may "
                   "write there (%s: %s)", what, path, name, msg);
      break;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                   "%s: %s cannot be written: check its permissions and those of its folder "
                   "(%s: %s)", what, path, name, msg);
      break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      g_set_error (error, ST_ERROR, ST_ERROR_BUSY,
                   "%s: %s is locked by another program: close other station programs using "
                   "it, then try again (%s: %s)", what, path, name, msg);
      break;
    case SQLITE_CONSTRAINT:
    case SQLITE_TOOBIG:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "%s: refused by the database: %s (%s)", what, msg, name);
      break;
    default:
      g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL,
                   "%s: %s (%s)", what, msg, name);
      break;
    }
}

/* ---------- connections and statements ---------- */

void
st_db_conn_free (StDbConn *c)
{
  if (c == NULL)
    return;
  g_clear_pointer (&c->stmts, g_hash_table_unref);  /* finalizes them */
  if (c->db != NULL)
    sqlite3_close_v2 (c->db);
  g_free (c);
}

static void
st_db_stmt_finalize (gpointer stmt)
{
  sqlite3_finalize (stmt);
}

/* The connection's cached statement for @sql (a constant: values are always
 * bound, never formatted in). Release it with g_autoptr(StSqliteStmtRef). */
sqlite3_stmt *
st_db_conn_prepare (StDbConn *c, const char *sql, GError **error)
{
  sqlite3_stmt *stmt = g_hash_table_lookup (c->stmts, sql);
  if (stmt != NULL)
    return stmt;
  int rc = sqlite3_prepare_v3 (c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL);
  if (rc != SQLITE_OK)
    {
      st_db_set_error_rc (error, c, rc, "cannot prepare a query");
      sqlite3_finalize (stmt);
      return NULL;
    }
  g_hash_table_insert (c->stmts, (gpointer) sql, stmt);
  return stmt;
}

/* Binds from 1: @types is a string of 't' (const char *, NULL binds NULL),
 * 'i' (gint64) and 'b' (GBytes *, NULL binds NULL). */
static gboolean
st_db_bindv (StDbConn *c, sqlite3_stmt *stmt, GError **error, const char *types, va_list ap)
{
  int rc = SQLITE_OK;
  for (int i = 0; types[i] != '\0' && rc == SQLITE_OK; i++)
    {
      switch (types[i])
        {
        case 't':
          {
            const char *s = va_arg (ap, const char *);
            rc = s != NULL ? sqlite3_bind_text (stmt, i + 1, s, -1, SQLITE_TRANSIENT)
                           : sqlite3_bind_null (stmt, i + 1);
            break;
          }
        case 'i':
          rc = sqlite3_bind_int64 (stmt, i + 1, va_arg (ap, gint64));
          break;
        case 'b':
          {
            GBytes *b = va_arg (ap, GBytes *);
            gsize len = 0;
            const void *data = b != NULL ? g_bytes_get_data (b, &len) : NULL;
            if (b == NULL)
              rc = sqlite3_bind_null (stmt, i + 1);
            else
              rc = sqlite3_bind_blob64 (stmt, i + 1, data != NULL ? data : "", len, SQLITE_TRANSIENT);
            break;
          }
        default:
          rc = SQLITE_MISUSE;
          break;
        }
    }
  if (rc != SQLITE_OK)
    {
      st_db_set_error_rc (error, c, rc, "cannot bind a value");
      return FALSE;
    }
  return TRUE;
}

gboolean
st_db_bind (StDbConn *c, sqlite3_stmt *stmt, GError **error, const char *types, ...)
{
  va_list ap;
  va_start (ap, types);
  gboolean ok = st_db_bindv (c, stmt, error, types, ap);
  va_end (ap);
  return ok;
}

/* Steps @stmt once: TRUE with *@row set (a row, or done), FALSE on error. */
gboolean
st_db_step (StDbConn *c, sqlite3_stmt *stmt, gboolean *row, const char *what, GError **error)
{
  int rc = sqlite3_step (stmt);
  if (rc == SQLITE_ROW || rc == SQLITE_DONE)
    {
      if (row != NULL)
        *row = rc == SQLITE_ROW;
      return TRUE;
    }
  st_db_set_error_rc (error, c, sqlite3_extended_errcode (c->db), what);
  return FALSE;
}

static sqlite3_stmt *
st_db_conn_queryv (StDbConn *c, const char *sql, const char *what, gboolean *row, GError **error,
                   const char *types, va_list ap)
{
  sqlite3_stmt *stmt = st_db_conn_prepare (c, sql, error);
  if (stmt == NULL)
    return NULL;
  if (!st_db_bindv (c, stmt, error, types, ap) || !st_db_step (c, stmt, row, what, error))
    {
      st_sqlite_stmt_release (stmt);
      return NULL;
    }
  return stmt;
}

/* The cached statement for @sql with @types/values bound (st_db_bind())
 * and stepped once: *@row tells whether it gave a row. NULL on error, with
 * @what in the message. Release it with g_autoptr(StSqliteStmtRef). */
sqlite3_stmt *
st_db_conn_query (StDbConn *c, const char *sql, const char *what, gboolean *row, GError **error,
                  const char *types, ...)
{
  va_list ap;
  va_start (ap, types);
  sqlite3_stmt *stmt = st_db_conn_queryv (c, sql, what, row, error, types, ap);
  va_end (ap);
  return stmt;
}

/* Runs @sql (an INSERT, UPDATE or DELETE) once with @types/values bound. */
gboolean
st_db_conn_run (StDbConn *c, const char *sql, const char *what, GError **error,
                const char *types, ...)
{
  va_list ap;
  va_start (ap, types);
  sqlite3_stmt *stmt = st_db_conn_queryv (c, sql, what, NULL, error, types, ap);
  va_end (ap);
  if (stmt == NULL)
    return FALSE;
  st_sqlite_stmt_release (stmt);
  return TRUE;
}

/* Runs a statement without values (transaction control, pragmas). */
gboolean
st_db_conn_exec (StDbConn *c, const char *sql, GError **error)
{
  g_autoptr(StSqliteStmtRef) stmt = st_db_conn_prepare (c, sql, error);
  if (stmt == NULL)
    return FALSE;
  gboolean row = TRUE;
  while (row)
    if (!st_db_step (c, stmt, &row, sql, error))
      return FALSE;
  return TRUE;
}

/* One row, one integer column: a pragma or a count. */
gboolean
st_db_conn_query_int (StDbConn *c, const char *sql, gint64 *out, GError **error)
{
  g_autoptr(StSqliteStmtRef) stmt = st_db_conn_prepare (c, sql, error);
  gboolean row = FALSE;
  if (stmt == NULL || !st_db_step (c, stmt, &row, sql, error))
    return FALSE;
  *out = row ? sqlite3_column_int64 (stmt, 0) : 0;
  return TRUE;
}

gchar *
st_db_col_text (sqlite3_stmt *stmt, int col)
{
  const unsigned char *s = sqlite3_column_text (stmt, col);
  return s != NULL ? g_strdup ((const char *) s) : NULL;
}

GBytes *
st_db_col_bytes (sqlite3_stmt *stmt, int col)
{
  if (sqlite3_column_type (stmt, col) == SQLITE_NULL)
    return NULL;
  const void *data = sqlite3_column_blob (stmt, col);
  int len = sqlite3_column_bytes (stmt, col);
  return g_bytes_new (data, (gsize) MAX (len, 0));
}

static gboolean
st_db_conn_configure (StDbConn *c, gboolean readonly, GError **error)
{
  int rc = sqlite3_extended_result_codes (c->db, 1);
  if (rc == SQLITE_OK)
    rc = sqlite3_busy_timeout (c->db, ST_DB_BUSY_TIMEOUT_MS);
  if (rc == SQLITE_OK)
    rc = sqlite3_db_config (c->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_db_config (c->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
  if (rc != SQLITE_OK)
    {
      st_db_set_error_rc (error, c, rc, "cannot configure the database connection");
      return FALSE;
    }

  /* journal_mode answers the mode in force: insist on WAL. */
  {
    g_autoptr(StSqliteStmtRef) stmt = st_db_conn_prepare (c, "PRAGMA journal_mode = WAL", error);
    gboolean row = FALSE;
    if (stmt == NULL || !st_db_step (c, stmt, &row, "cannot switch to WAL", error))
      return FALSE;
    const char *mode = row ? (const char *) sqlite3_column_text (stmt, 0) : NULL;
    if (g_strcmp0 (mode, "wal") != 0)
      {
        g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                     "%s cannot use write-ahead logging (journal mode is %s): keep the "
                     "station's home on a local disk", c->path, mode != NULL ? mode : "unknown");
        return FALSE;
      }
  }
  /* temp_store=MEMORY keeps the statement journals of the writer's
   * per-request savepoints (and any sort) in memory: SQLite otherwise spills
   * them past 64 KiB to a new file in /var/tmp, created and unlinked once
   * per commit group, which cost more than the commit itself. */
  if (!st_db_conn_exec (c, "PRAGMA synchronous = FULL", error)
      || !st_db_conn_exec (c, "PRAGMA foreign_keys = ON", error)
      || !st_db_conn_exec (c, "PRAGMA temp_store = MEMORY", error))
    return FALSE;
  /* The writer keeps its pages from one transaction to the next (no other
   * connection writes), so a cache that holds the indexes spares it a
   * read for every random key it inserts (uid, serial, key hash); SQLite's
   * 2 MB default held a bench of a few thousand units and no more. A
   * reader drops its cache whenever the writer commits: the default
   * serves it. */
  if (!readonly && !st_db_conn_exec (c, "PRAGMA cache_size = -" G_STRINGIFY (ST_DB_WRITER_CACHE_KIB), error))
    return FALSE;
  if (readonly && !st_db_conn_exec (c, "PRAGMA query_only = ON", error))
    return FALSE;
#if defined(__SANITIZE_ADDRESS__)
  /* Test-only, honoured in sanitizer builds only: ST_TEST_DB_CACHE_KIB=N
   * (64 up to the writer's size) caps both connections' page caches, so
   * that tests/integration/test-memory.c sees them full after a few units
   * and any further growth of the service's memory is something else. */
  const char *knob = g_getenv ("ST_TEST_DB_CACHE_KIB");
  guint64 kib = 0;
  if (knob != NULL && g_ascii_string_to_unsigned (knob, 10, 64, ST_DB_WRITER_CACHE_KIB, &kib, NULL))
    {
      g_autofree gchar *sql = g_strdup_printf ("PRAGMA cache_size = -%" G_GUINT64_FORMAT, kib);
      if (!st_db_conn_exec (c, sql, error))
        return FALSE;
    }
#endif
  return TRUE;
}

static gpointer
st_db_sqlite_setup (gpointer data)
{
  (void) data;
  /* SQLite's memory statistics take a global mutex on every allocation;
   * nothing here reads them. Too late (SQLITE_MISUSE) once SQLite has been
   * initialised elsewhere in the process, which changes nothing else. */
  sqlite3_config (SQLITE_CONFIG_MEMSTATUS, 0);
  return NULL;
}

StDbConn *
st_db_conn_open (const char *path, gboolean readonly, GError **error)
{
  static GOnce once = G_ONCE_INIT;
  g_once (&once, st_db_sqlite_setup, NULL);
  g_autoptr(StDbConn) c = g_new0 (StDbConn, 1);
  c->path = path;
  c->stmts = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, st_db_stmt_finalize);
  int flags = SQLITE_OPEN_NOMUTEX | (readonly ? SQLITE_OPEN_READONLY
                                               : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  int rc = sqlite3_open_v2 (path, &c->db, flags, NULL);
  if (rc != SQLITE_OK)
    {
      st_db_set_error_rc (error, c, c->db != NULL ? sqlite3_extended_errcode (c->db) : rc,
                          "cannot open the station database");
      return NULL;
    }
  if (!st_db_conn_configure (c, readonly, error))
    return NULL;
  return g_steal_pointer (&c);
}

/* Rows of a read query, each made into an object by @from_row. @sql binds
 * one integer (@bind_int), one text (@sval) or nothing. */
void
st_db_set_progress (StDb *db, StDbProgressFunc func, gpointer user_data)
{
  db->progress_func = func;
  db->progress_data = user_data;
}

void
st_db_progress (StDb *db, const char *what, gint64 done, gint64 total)
{
  if (db->progress_func != NULL && (done == 0 || done == total || (done & 0xfff) == 0))
    db->progress_func (what, done, total, db->progress_data);
}

GPtrArray *
st_db_query_list (StDb *db, const char *sql, const char *what, gboolean bind_int,
                  gint64 ival, const char *sval, StDbFromRow from_row,
                  GDestroyNotify free_func, GError **error)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&db->rlock);
  g_autoptr(StSqliteStmtRef) stmt = st_db_conn_prepare (db->r, sql, error);
  if (stmt == NULL)
    return NULL;
  if (bind_int ? !st_db_bind (db->r, stmt, error, "i", ival)
               : (sval != NULL && !st_db_bind (db->r, stmt, error, "t", sval)))
    return NULL;
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func (free_func);
  for (;;)
    {
      gboolean row = FALSE;
      if (!st_db_step (db->r, stmt, &row, what, error))
        return NULL;
      if (!row)
        break;
      g_ptr_array_add (out, from_row (stmt));
    }
  return g_steal_pointer (&out);
}

/* ---------- migrations ---------- */

#define ST_DB_DUPLICATES_LISTED 10

/* After the migration to ST_DB_SCHEMA_PRODUCT_SERIALS: the product serials
 * earlier stations gave twice, which no migration can undo, in a warning
 * (the first few of them; `db check` lists all). */
static gboolean
st_db_warn_duplicate_serials (StDbConn *c, GError **error)
{
  g_autoptr(StSqliteStmtRef) stmt = st_db_conn_prepare (c, ST_DB_SQL_DUPLICATE_PRODUCT_SERIALS, error);
  if (stmt == NULL)
    return FALSE;
  g_autoptr(GString) list = g_string_new (NULL);
  guint n = 0;
  for (;;)
    {
      gboolean row = FALSE;
      if (!st_db_step (c, stmt, &row, "cannot look for duplicate product serials", error))
        return FALSE;
      if (!row)
        break;
      if (n++ < ST_DB_DUPLICATES_LISTED)
        g_string_append_printf (list, "; %s", (const char *) sqlite3_column_text (stmt, 0));
    }
  if (n > 0)
    g_warning ("%s holds %u product serial(s) given to more than one unit by an earlier station "
               "(each batch restarted the {seq} numbering)%s%s. They cannot be made unique after "
               "the fact: relabel those units; 'station db check' lists them all. New serials "
               "never repeat any of them", c->path, n, list->str,
               n > ST_DB_DUPLICATES_LISTED ? "; ..." : "");
  return TRUE;
}

static gboolean
st_db_migrate (StDbConn *c, GError **error)
{
  const gint known = st_db_schema_version ();
  gint64 from = -1;
  for (;;)
    {
      gint64 version = 0;
      if (!st_db_conn_exec (c, "BEGIN IMMEDIATE", error))
        return FALSE;
      /* read inside the transaction: another process may have migrated */
      if (!st_db_conn_query_int (c, "PRAGMA user_version", &version, error))
        {
          st_db_conn_exec (c, "ROLLBACK", NULL);
          return FALSE;
        }
      if (from < 0)
        from = version;
      if (version > known)
        {
          st_db_conn_exec (c, "ROLLBACK", NULL);
          g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                       "%s has schema version %" G_GINT64_FORMAT " but this station knows only "
                       "up to version %d: it was written by a newer station; run that version "
                       "or restore a backup made by this one", c->path, version, known);
          return FALSE;
        }
      if (version == known)
        return st_db_conn_exec (c, "COMMIT", error)
               && (from >= ST_DB_SCHEMA_PRODUCT_SERIALS || st_db_warn_duplicate_serials (c, error));

      char *msg = NULL;
      int rc = sqlite3_exec (c->db, st_db_schema_migration ((gint) version + 1), NULL, NULL, &msg);
      sqlite3_free (msg);
      if (rc != SQLITE_OK)
        {
          g_autofree gchar *what = g_strdup_printf ("cannot migrate %s to schema version %"
                                                    G_GINT64_FORMAT, c->path, version + 1);
          st_db_set_error_rc (error, c, sqlite3_extended_errcode (c->db), what);
          st_db_conn_exec (c, "ROLLBACK", NULL);
          return FALSE;
        }
      if (!st_db_conn_exec (c, "COMMIT", error))
        {
          g_prefix_error (error, "cannot migrate %s to schema version %" G_GINT64_FORMAT ": ",
                          c->path, version + 1);
          if (!sqlite3_get_autocommit (c->db))
            st_db_conn_exec (c, "ROLLBACK", NULL);
          return FALSE;
        }
    }
}

/* ---------- open / close ---------- */

/* The database and the files SQLite keeps beside it are the station's
 * alone, whatever the umask and wherever db= points: its folder is made
 * 0700 when missing and refused when others may write to it; the file is
 * made 0600 before SQLite opens it, since SQLite creates a database with
 * 0644 less the umask, and gives the -wal, -shm and -journal files it
 * creates the database's own mode. Left-overs of a looser past are set to
 * 0600. (Security review, issue 14, item 7.) */
static gboolean
st_db_files_ensure_private (const char *link_path, GError **error)
{
  /* A database reached through a symbolic link (an admin's move to another
   * disk) is checked where it is: SQLite follows the link and keeps its
   * -wal and -shm beside the real file. A dangling link stays as it is,
   * and is refused below. */
  char *resolved = realpath (link_path, NULL);
  g_autofree gchar *path = g_strdup (resolved != NULL ? resolved : link_path);
  free (resolved);
  g_autofree gchar *dir = g_path_get_dirname (path);
  if (!st_dir_ensure_private (dir, error) || !st_file_ensure_private (path, TRUE, error))
    {
      g_prefix_error (error, "cannot open the station database %s: ", link_path);
      return FALSE;
    }
  static const char *const beside[] = { "-wal", "-shm", "-journal" };
  for (guint i = 0; i < G_N_ELEMENTS (beside); i++)
    {
      g_autofree gchar *p = g_strconcat (path, beside[i], NULL);
      if (!st_file_ensure_private (p, FALSE, error))
        {
          g_prefix_error (error, "cannot open the station database %s: ", link_path);
          return FALSE;
        }
    }
  return TRUE;
}

StDb *
st_db_open (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  if (!sqlite3_threadsafe ())
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                   "the SQLite library was built without thread support: install a "
                   "thread-safe libsqlite3");
      return NULL;
    }
  if (!st_db_files_ensure_private (path, error))
    return NULL;
  StDb *db = g_new0 (StDb, 1);
  db->path = g_strdup (path);
  g_mutex_init (&db->rlock);
  g_mutex_init (&db->qlock);
  g_cond_init (&db->qcond);
  g_queue_init (&db->queue);
  g_mutex_init (&db->seq_lock);
  db->seq_next = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  db->matter_next = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, g_free);

  db->w = st_db_conn_open (db->path, FALSE, error);
  if (db->w == NULL || !st_db_migrate (db->w, error)
      || (db->r = st_db_conn_open (db->path, TRUE, error)) == NULL)
    {
      st_db_close (db);
      return NULL;
    }
  sqlite3_wal_hook (db->w->db, st_db_wal_hook, db->w);
  if (!st_db_conn_query_int (db->w, "SELECT coalesce (max (seq), 0) FROM audit", &db->audit_seq, error)
      || !st_db_conn_query_int (db->w, "SELECT coalesce (max (seq), 0) FROM audit_checkpoints",
                                &db->checkpoint_seq, error))
    {
      st_db_close (db);
      return NULL;
    }
  db->writer = g_thread_try_new ("st-db-writer", st_db_writer_main, db, error);
  if (db->writer == NULL)
    {
      g_prefix_error (error, "cannot start the database writer: ");
      st_db_close (db);
      return NULL;
    }
  return db;
}

void
st_db_close (StDb *db)
{
  if (db == NULL)
    return;
  if (db->writer != NULL)
    {
      g_mutex_lock (&db->qlock);
      db->stopping = TRUE;
      g_cond_broadcast (&db->qcond);
      g_mutex_unlock (&db->qlock);
      g_thread_join (db->writer);
    }
  /* the reader first: the last connection to close checkpoints the WAL */
  g_clear_pointer (&db->r, st_db_conn_free);
  g_clear_pointer (&db->w, st_db_conn_free);
  g_mutex_clear (&db->rlock);
  g_mutex_clear (&db->qlock);
  g_cond_clear (&db->qcond);
  g_clear_pointer (&db->seq_next, g_hash_table_unref);
  g_clear_pointer (&db->matter_next, g_hash_table_unref);
  g_mutex_clear (&db->seq_lock);
  g_free (db->actor);
  g_free (db->path);
  g_free (db);
}

const char *
st_db_get_path (StDb *db)
{
  return db->path;
}

void
st_db_get_write_stats (StDb *db, guint64 *n_writes, guint64 *n_commits)
{
  g_mutex_lock (&db->qlock);
  if (n_writes != NULL)
    *n_writes = db->n_writes;
  if (n_commits != NULL)
    *n_commits = db->n_commits;
  g_mutex_unlock (&db->qlock);
}

/* ---------- argument checks (in the caller's thread) ---------- */

gint64
st_db_now (void)
{
  return g_get_real_time () / G_USEC_PER_SEC;
}

static gboolean
st_db_is_lower_hex (const char *s)
{
  for (const char *p = s; *p != '\0'; p++)
    if (!g_ascii_isdigit (*p) && !(*p >= 'a' && *p <= 'f'))
      return FALSE;
  return TRUE;
}

gboolean
st_db_check_text (const char *what, const char *s, gboolean required, gsize max, GError **error)
{
  if (s == NULL || *s == '\0')
    {
      if (!required)
        return TRUE;
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "%s is missing", what);
      return FALSE;
    }
  gsize len = strlen (s);
  if (len > max)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "%s is too long (%" G_GSIZE_FORMAT " bytes, at most %" G_GSIZE_FORMAT ")",
                   what, len, max);
      return FALSE;
    }
  if (!g_utf8_validate (s, (gssize) len, NULL))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "%s is not valid UTF-8", what);
      return FALSE;
    }
  return TRUE;
}

/* Lower-case hex of whole bytes; @exact_len 0 = any length up to @max_len. */
gboolean
st_db_check_hex (const char *what, const char *s, gsize exact_len, gsize max_len, GError **error)
{
  gsize len = s != NULL ? strlen (s) : 0;
  if (len == 0 || len % 2 != 0 || (exact_len != 0 && len != exact_len) || len > max_len
      || !st_db_is_lower_hex (s))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "%s '%.80s' is not lower-case hex of %s", what, s != NULL ? s : "",
                   exact_len == 64 ? "a SHA-256 (64 digits)" : "whole bytes");
      return FALSE;
    }
  return TRUE;
}

/* A certificate serial: the positive integer's value in lower-case hex of
 * whole bytes with no leading zero byte (as `openssl x509 -serial` shows it,
 * without DER's sign padding); at most 20 octets (RFC 5280, 4.1.2.2). */
gboolean
st_db_check_serial (const char *serial, GError **error)
{
  if (!st_db_check_hex ("certificate serial", serial, 0, 40, error))
    return FALSE;
  if (serial[0] == '0' && serial[1] == '0')
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "certificate serial '%s' is zero or has a leading zero byte", serial);
      return FALSE;
    }
  return TRUE;
}

gboolean
st_db_check_blob (const char *what, GBytes *b, GError **error)
{
  gsize len = b != NULL ? g_bytes_get_size (b) : 0;
  if (len == 0 || len > ST_DB_CERT_MAX)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "%s is empty or too large (%" G_GSIZE_FORMAT " bytes, at most %d)",
                   what, len, ST_DB_CERT_MAX);
      return FALSE;
    }
  return TRUE;
}
