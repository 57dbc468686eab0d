/* The station's records in SQLite.
 *
 * Two connections: the writer's (owned by one writer thread after the
 * migrations ran) and a read-only one behind a mutex. Public write functions
 * queue a request and block; the writer runs every queued request of a group
 * inside one BEGIN IMMEDIATE transaction, each in its own SAVEPOINT, commits,
 * and only then wakes the callers. */
#include "st-db.h"
#include "st-db-private.h"
#include "st-db-schema.h"
#include "st-error.h"
#include "st-sqlite.h"
#include "st-util.h"

#include <json-glib/json-glib.h>
#include <stdarg.h>
#include <string.h>

#define ST_DB_BUSY_TIMEOUT_MS 5000
#define ST_DB_WAL_CHECKPOINT_FRAMES 1000   /* SQLite's automatic checkpoint */
#define ST_DB_WAL_RESTART_FRAMES 4000      /* 16 MB of 4 KiB pages */
#define ST_DB_WAL_RESTART_WAIT_MS 20
#define ST_DB_GROUP_MAX 128
#define ST_DB_WRITER_CACHE_KIB 32768
#define ST_DB_NAME_MAX 1024           /* work order, operator, port, model, ... */
#define ST_DB_DETAIL_MAX (64 * 1024)  /* fail detail, event payload */
#define ST_DB_PROFILE_MAX (1024 * 1024)
#define ST_DB_CERT_MAX (64 * 1024)    /* tbs and der */
#define ST_DB_UID_HEX_MAX 128

/* A live certificate (issuing, issued, active or unconfirmed) is one that is
 * not voided; an unfinished unit (started, issuing, issued) one that is
 * neither done nor failed. Written so, as the schema's partial indexes are
 * (migration 4): SQLite builds a temporary b-tree for every list of three or
 * more constants each time a statement runs. */
#define ST_DB_LIVE(col) col " <> 'voided'"
#define ST_DB_UNFINISHED(col) col " NOT IN ('done','failed')"

typedef struct {
  sqlite3 *db;
  GHashTable *stmts;    /* SQL text -> sqlite3_stmt*, prepared once */
  const char *path;     /* the StDb's, for messages */
  const char *actor;    /* the current request's default operator (writer) */
  gint64 last_seq;      /* the last audit seq this connection appended */
  int wal_frames;       /* the WAL's size after this connection's last commit */
  int checkpoint_rc;    /* the last checkpoint's failure that was reported, or SQLITE_OK */
} StDbConn;

typedef gboolean (*StDbWriteFunc) (StDbConn *c, gpointer data, gint64 *result, GError **error);

typedef struct {
  StDbWriteFunc func;
  gpointer data;
  gint64 result;
  GError *error;
  gchar *actor;
  /* The caller waits on its own lock and condition, not on qlock: woken
   * under the queue's lock, it would only go to sleep again on that lock
   * while the writer wakes the rest of the group. */
  GMutex done_lock;
  GCond done_cond;      /* signalled once, when done (under done_lock) */
  gboolean done;
  gboolean run_hook;    /* this caller signs the due audit checkpoint */
} StDbRequest;

struct _StDb {
  gchar *path;
  StDbConn *w;          /* the writer thread's, once it runs */
  StDbConn *r;
  GMutex rlock;
  GThread *writer;
  GMutex qlock;
  GCond qcond;          /* a request was queued, or stop */
  GQueue queue;
  gboolean stopping;
  gboolean hold;
  gboolean writer_waits;   /* the writer sleeps on qcond: a new request wakes it */
  guint64 n_writes, n_commits;
  /* under qlock */
  gchar *actor;
  gint64 audit_seq;        /* the newest committed audit seq known */
  gint64 checkpoint_seq;   /* the seq of the newest checkpoint (or attempt) */
  guint cp_every;
  StDbCheckpointFunc cp_func;
  gpointer cp_data;
  gboolean in_hook;
  /* under seq_lock: product -> the next number this process hands out */
  GMutex seq_lock;
  GHashTable *seq_next;
};

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
static void
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

static void
st_db_conn_free (StDbConn *c)
{
  if (c == NULL)
    return;
  g_clear_pointer (&c->stmts, g_hash_table_unref);  /* finalizes them */
  if (c->db != NULL)
    sqlite3_close_v2 (c->db);
  g_free (c);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StDbConn, st_db_conn_free)

static void
st_db_stmt_finalize (gpointer stmt)
{
  sqlite3_finalize (stmt);
}

/* The connection's cached statement for @sql (a constant: values are always
 * bound, never formatted in). Release it with g_autoptr(StSqliteStmtRef). */
static sqlite3_stmt *
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

static gboolean
st_db_bind (StDbConn *c, sqlite3_stmt *stmt, GError **error, const char *types, ...)
{
  va_list ap;
  va_start (ap, types);
  gboolean ok = st_db_bindv (c, stmt, error, types, ap);
  va_end (ap);
  return ok;
}

/* Steps @stmt once: TRUE with *@row set (a row, or done), FALSE on error. */
static gboolean
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
static sqlite3_stmt *
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
static gboolean
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
static gboolean
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
static gboolean
st_db_conn_query_int (StDbConn *c, const char *sql, gint64 *out, GError **error)
{
  g_autoptr(StSqliteStmtRef) stmt = st_db_conn_prepare (c, sql, error);
  gboolean row = FALSE;
  if (stmt == NULL || !st_db_step (c, stmt, &row, sql, error))
    return FALSE;
  *out = row ? sqlite3_column_int64 (stmt, 0) : 0;
  return TRUE;
}

static gchar *
st_db_col_text (sqlite3_stmt *stmt, int col)
{
  const unsigned char *s = sqlite3_column_text (stmt, col);
  return s != NULL ? g_strdup ((const char *) s) : NULL;
}

static GBytes *
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

static StDbConn *
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

/* ---------- the writer ---------- */

/* The writer's checkpoints, in place of SQLite's automatic one. Every
 * commit leaves the WAL's size in frames here (st_db_wal_hook). From
 * ST_DB_WAL_CHECKPOINT_FRAMES on, the writer copies the WAL into the
 * database as far as the readers allow, without waiting (PASSIVE), as
 * SQLite would. Under sustained load some reader always holds an older
 * snapshot, the copy never completes and the WAL never starts over: it grew
 * by 10 MB a second in `station bench`, every commit appending where the
 * file system must allocate. From ST_DB_WAL_RESTART_FRAMES on, the writer
 * waits up to ST_DB_WAL_RESTART_WAIT_MS for those readers (RESTART), so the
 * next commit writes the WAL from its start again; a long reader elsewhere
 * (an export) only makes it try again after the next commit. The records
 * are durable in the WAL either way: a failed checkpoint loses nothing. */
static int
st_db_wal_hook (void *data, sqlite3 *db, const char *name, int n_frames)
{
  (void) db;
  (void) name;
  StDbConn *c = data;
  c->wal_frames = n_frames;
  return SQLITE_OK;
}

static void
st_db_writer_checkpoint (StDbConn *c)
{
  if (c->wal_frames < ST_DB_WAL_CHECKPOINT_FRAMES)
    return;
  gboolean restart = c->wal_frames >= ST_DB_WAL_RESTART_FRAMES;
  if (restart)
    sqlite3_busy_timeout (c->db, ST_DB_WAL_RESTART_WAIT_MS);
  int rc = sqlite3_wal_checkpoint_v2 (c->db, NULL,
                                      restart ? SQLITE_CHECKPOINT_RESTART : SQLITE_CHECKPOINT_PASSIVE,
                                      NULL, NULL);
  if (restart)
    sqlite3_busy_timeout (c->db, ST_DB_BUSY_TIMEOUT_MS);
  if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
    return;
  /* once per kind of failure, not after every commit while it lasts */
  if (rc != SQLITE_OK && rc != c->checkpoint_rc)
    g_warning ("%s: copying the write-ahead log into the database failed (%s, %d frames): the "
               "records are safe in the log; check the disk", c->path, sqlite3_errstr (rc),
               c->wal_frames);
  c->checkpoint_rc = rc;
}

static void
st_db_writer_run_group (StDb *db, GPtrArray *group, gboolean *committed)
{
  StDbConn *c = db->w;
  g_autoptr(GError) group_error = NULL;

  *committed = FALSE;
  if (!st_db_conn_exec (c, "BEGIN IMMEDIATE", &group_error))
    g_prefix_error (&group_error, "cannot start a write transaction: ");

  for (guint i = 0; group_error == NULL && i < group->len; i++)
    {
      StDbRequest *req = g_ptr_array_index (group, i);
      if (!st_db_conn_exec (c, "SAVEPOINT st_request", &group_error))
        break;
      c->actor = req->actor;
      if (req->func (c, req->data, &req->result, &req->error))
        {
          st_db_conn_exec (c, "RELEASE st_request", &group_error);
          continue;
        }
      if (req->error == NULL)
        g_set_error_literal (&req->error, ST_ERROR, ST_ERROR_INTERNAL, "write failed without a reason");
      /* SQLITE_FULL, IOERR, NOMEM may roll the whole transaction back:
       * the group's earlier requests are gone too. */
      if (sqlite3_get_autocommit (c->db))
        {
          group_error = g_error_copy (req->error);
          break;
        }
      if (st_db_conn_exec (c, "ROLLBACK TO st_request", &group_error))
        st_db_conn_exec (c, "RELEASE st_request", &group_error);
    }

  if (group_error == NULL)
    {
      if (st_db_conn_exec (c, "COMMIT", &group_error))
        {
          *committed = TRUE;
          return;
        }
      g_prefix_error (&group_error, "the database did not commit: ");
    }
  if (!sqlite3_get_autocommit (c->db))
    st_db_conn_exec (c, "ROLLBACK", NULL);
  /* nothing of this group is acknowledged: every caller gets the error */
  for (guint i = 0; i < group->len; i++)
    {
      StDbRequest *req = g_ptr_array_index (group, i);
      g_clear_error (&req->error);
      req->error = g_error_copy (group_error);
      req->result = 0;
    }
}

static gpointer
st_db_writer_main (gpointer user_data)
{
  StDb *db = user_data;
  g_autoptr(GPtrArray) group = g_ptr_array_new ();

  for (;;)
    {
      g_mutex_lock (&db->qlock);
      while (!db->stopping && (db->hold || g_queue_is_empty (&db->queue)))
        {
          db->writer_waits = TRUE;
          g_cond_wait (&db->qcond, &db->qlock);
          db->writer_waits = FALSE;
        }
      if (g_queue_is_empty (&db->queue))
        {
          g_mutex_unlock (&db->qlock);
          break;
        }
      while (group->len < ST_DB_GROUP_MAX && !g_queue_is_empty (&db->queue))
        g_ptr_array_add (group, g_queue_pop_head (&db->queue));
      g_mutex_unlock (&db->qlock);

      gboolean committed = FALSE;
      st_db_writer_run_group (db, group, &committed);

      g_mutex_lock (&db->qlock);
      db->n_writes += group->len;
      if (committed)
        {
          db->n_commits++;
          db->audit_seq = MAX (db->audit_seq, db->w->last_seq);
        }
      /* a checkpoint is due: one caller at a time signs it, outside the lock */
      gboolean due = db->cp_func != NULL && !db->in_hook && db->cp_every > 0
                     && db->audit_seq - db->checkpoint_seq >= (gint64) db->cp_every;
      for (guint i = 0; due && i < group->len; i++)
        {
          StDbRequest *req = g_ptr_array_index (group, i);
          if (req->error == NULL)
            {
              req->run_hook = db->in_hook = TRUE;
              break;
            }
        }
      g_mutex_unlock (&db->qlock);
      /* each caller is woken alone (a broadcast would wake every socket
       * waiting on a later group too); the writer touches no request after
       * its done_lock is released, as its caller may have returned */
      for (guint i = 0; i < group->len; i++)
        {
          StDbRequest *req = g_ptr_array_index (group, i);
          g_mutex_lock (&req->done_lock);
          req->done = TRUE;
          g_cond_signal (&req->done_cond);
          g_mutex_unlock (&req->done_lock);
        }
      g_ptr_array_set_size (group, 0);
      /* after the callers have their answer: it does not hold them up */
      if (committed)
        st_db_writer_checkpoint (db->w);
    }
  return NULL;
}

/* Queues a write and blocks until its group was committed (TRUE) or it
 * failed (FALSE, @error). */
static gboolean
st_db_write (StDb *db, StDbWriteFunc func, gpointer data, gint64 *result, GError **error)
{
  StDbRequest req = { .func = func, .data = data };
  g_mutex_init (&req.done_lock);
  g_cond_init (&req.done_cond);
  g_mutex_lock (&db->qlock);
  req.actor = g_strdup (db->actor != NULL ? db->actor : "station");
  g_queue_push_tail (&db->queue, &req);
  /* a busy writer takes it with its next group: no wake-up (a system call
   * per signal) for each of the requests that queue meanwhile */
  if (db->writer_waits)
    g_cond_signal (&db->qcond);
  g_mutex_unlock (&db->qlock);
  g_mutex_lock (&req.done_lock);
  while (!req.done)
    g_cond_wait (&req.done_cond, &req.done_lock);
  g_mutex_unlock (&req.done_lock);
  g_cond_clear (&req.done_cond);
  g_mutex_clear (&req.done_lock);
  g_free (req.actor);
  if (req.run_hook)
    {
      g_mutex_lock (&db->qlock);
      StDbCheckpointFunc cp_func = db->cp_func;
      gpointer cp_data = db->cp_data;
      g_mutex_unlock (&db->qlock);
      if (cp_func != NULL)
        cp_func (db, cp_data);
      g_mutex_lock (&db->qlock);
      /* a failed attempt is tried again only after @every more entries */
      db->checkpoint_seq = MAX (db->checkpoint_seq, db->audit_seq);
      db->in_hook = FALSE;
      g_mutex_unlock (&db->qlock);
    }
  if (req.error != NULL)
    {
      g_propagate_error (error, req.error);
      return FALSE;
    }
  if (result != NULL)
    *result = req.result;
  return TRUE;
}

/* ---------- open / close ---------- */

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
  StDb *db = g_new0 (StDb, 1);
  db->path = g_strdup (path);
  g_mutex_init (&db->rlock);
  g_mutex_init (&db->qlock);
  g_cond_init (&db->qcond);
  g_queue_init (&db->queue);
  g_mutex_init (&db->seq_lock);
  db->seq_next = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);

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

static gint64
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

static gboolean
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
static gboolean
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
static gboolean
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

static gboolean
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

/* ---------- the audit chain (inside each writer job) ---------- */

/* A JSON string (RFC 8259): quotes, backslash and the control characters
 * escaped, everything else as it is; bytes that are not UTF-8 (the texts
 * are checked on the way in, so none should come) become U+FFFD. */
static void
st_db_json_string (GString *out, const char *v)
{
  g_autofree gchar *valid = g_utf8_validate (v, -1, NULL) ? NULL : g_utf8_make_valid (v, -1);
  if (valid != NULL)
    v = valid;
  g_string_append_c (out, '"');
  for (const guchar *p = (const guchar *) v; *p != '\0'; p++)
    switch (*p)
      {
      case '"':  g_string_append (out, "\\\""); break;
      case '\\': g_string_append (out, "\\\\"); break;
      case '\b': g_string_append (out, "\\b"); break;
      case '\f': g_string_append (out, "\\f"); break;
      case '\n': g_string_append (out, "\\n"); break;
      case '\r': g_string_append (out, "\\r"); break;
      case '\t': g_string_append (out, "\\t"); break;
      default:
        if (*p < 0x20)
          g_string_append_printf (out, "\\u%04x", *p);
        else
          g_string_append_c (out, (gchar) *p);
      }
  g_string_append_c (out, '"');
}

/* Compact JSON of key/value pairs: @types has one letter per pair: 's'
 * (const char *, NULL = null), 'i' (gint64) or 'b' (gboolean as int).
 * Written directly rather than through json-glib's builder and generator:
 * every unit appends several of these inside the writer's transaction, and
 * the object trees took 2% of the station's CPU. tests/db checks the output
 * against json-glib's parser. */
gchar *
st_db_payload (const char *types, ...)
{
  GString *out = g_string_sized_new (256);
  va_list ap;
  va_start (ap, types);
  g_string_append_c (out, '{');
  for (const char *t = types; *t != '\0'; t++)
    {
      if (t != types)
        g_string_append_c (out, ',');
      st_db_json_string (out, va_arg (ap, const char *));
      g_string_append_c (out, ':');
      switch (*t)
        {
        case 's':
          {
            const char *v = va_arg (ap, const char *);
            if (v != NULL)
              st_db_json_string (out, v);
            else
              g_string_append (out, "null");
            break;
          }
        case 'b':
          g_string_append (out, va_arg (ap, gboolean) ? "true" : "false");
          break;
        default:
          g_string_append_printf (out, "%" G_GINT64_FORMAT, va_arg (ap, gint64));
          break;
        }
    }
  g_string_append_c (out, '}');
  va_end (ap);
  return g_string_free (out, FALSE);
}

static void
st_db_hash_field (GString *s, const char *field)
{
  g_string_append_printf (s, "%" G_GSIZE_FORMAT ":", strlen (field));
  g_string_append (s, field);
  g_string_append_c (s, '\n');
}

gchar *
st_db_audit_hash (gint64 seq, gint64 at, const char *operator_name, const char *event,
                  const char *payload, const char *prev_hash)
{
  g_autoptr(GString) s = g_string_new ("station-audit/1\n");
  g_autofree gchar *seq_s = g_strdup_printf ("%" G_GINT64_FORMAT, seq);
  g_autofree gchar *at_s = g_strdup_printf ("%" G_GINT64_FORMAT, at);
  st_db_hash_field (s, seq_s);
  st_db_hash_field (s, at_s);
  st_db_hash_field (s, operator_name != NULL ? operator_name : "");
  st_db_hash_field (s, event != NULL ? event : "");
  st_db_hash_field (s, payload != NULL ? payload : "");
  st_db_hash_field (s, prev_hash != NULL ? prev_hash : "");
  return st_sha256_hex ((const guint8 *) s->str, s->len);
}

/* Appends one audit entry in the current transaction: @operator_name NULL
 * means the request's actor; @payload NULL means {}. */
static gboolean
st_db_w_audit (StDbConn *c, const char *operator_name, const char *event, const char *payload,
               GError **error)
{
  gint64 seq = 1, at = st_db_now ();
  g_autofree gchar *prev_hash = NULL;
  {
    g_autoptr(StSqliteStmtRef) stmt = st_db_conn_prepare (c,
        "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", error);
    gboolean row = FALSE;
    if (stmt == NULL || !st_db_step (c, stmt, &row, "cannot read the audit log", error))
      return FALSE;
    if (row)
      {
        seq = sqlite3_column_int64 (stmt, 0) + 1;
        prev_hash = st_db_col_text (stmt, 1);
      }
  }
  if (prev_hash == NULL)
    prev_hash = g_strdup (ST_DB_AUDIT_GENESIS);
  const char *who = operator_name != NULL ? operator_name : c->actor != NULL ? c->actor : "station";
  const char *body = payload != NULL ? payload : "{}";
  g_autofree gchar *hash = st_db_audit_hash (seq, at, who, event, body, prev_hash);
  if (!st_db_conn_run (c,
      "INSERT INTO audit (seq, at, operator, event, payload, prev_hash, hash)"
      " VALUES (?, ?, ?, ?, ?, ?, ?)",
      "cannot append to the audit log", error, "iittttt", seq, at, who, event, body, prev_hash, hash))
    return FALSE;
  c->last_seq = seq;
  return TRUE;
}

void
st_db_set_actor (StDb *db, const char *operator_name)
{
  g_mutex_lock (&db->qlock);
  g_free (db->actor);
  db->actor = g_strdup (operator_name);
  g_mutex_unlock (&db->qlock);
}

void
st_db_set_checkpoint_hook (StDb *db, guint every, StDbCheckpointFunc func, gpointer user_data)
{
  g_mutex_lock (&db->qlock);
  db->cp_every = every;
  db->cp_func = func;
  db->cp_data = user_data;
  g_mutex_unlock (&db->qlock);
}

/* ---------- batches ---------- */

typedef struct {
  const char *work_order, *product, *profile_sha256, *profile_text, *station_id, *operator_name;
  gint64 quantity;
} BatchCreate;

static gboolean
st_db_w_batch_create (StDbConn *c, gpointer data, gint64 *result, GError **error)
{
  BatchCreate *a = data;
  if (!st_db_conn_run (c,
      "INSERT INTO batches (work_order, product, profile_sha256, profile_text, quantity, state,"
      " created_at, created_by, station_id) VALUES (?, ?, ?, ?, ?, 'open', ?, ?, ?)",
      "cannot record the batch", error, "ttttiitt", a->work_order, a->product, a->profile_sha256,
                      a->profile_text, a->quantity, st_db_now (), a->operator_name, a->station_id))
    return FALSE;
  *result = sqlite3_last_insert_rowid (c->db);
  g_autofree gchar *payload = st_db_payload ("isssis", "batch", *result, "work_order", a->work_order,
                                             "product", a->product, "profile_sha256", a->profile_sha256,
                                             "quantity", a->quantity, "station_id", a->station_id);
  return st_db_w_audit (c, a->operator_name, "batch-create", payload, error);
}

gint64
st_db_batch_create (StDb *db, const char *work_order, const char *product,
                    const char *profile_sha256, const char *profile_text, gint64 quantity,
                    const char *station_id, const char *operator_name, GError **error)
{
  BatchCreate a = { work_order, product, profile_sha256, profile_text, station_id, operator_name,
                    quantity };
  gint64 id = 0;
  if (!st_db_check_text ("the work order", work_order, TRUE, ST_DB_NAME_MAX, error)
      || !st_db_check_text ("the product", product, TRUE, ST_DB_NAME_MAX, error)
      || !st_db_check_hex ("the profile's SHA-256", profile_sha256, 64, 64, error)
      || !st_db_check_text ("the profile text", profile_text, TRUE, ST_DB_PROFILE_MAX, error)
      || !st_db_check_text ("the station id", station_id, TRUE, ST_DB_NAME_MAX, error)
      || !st_db_check_text ("the operator", operator_name, TRUE, ST_DB_NAME_MAX, error))
    {
      g_prefix_error (error, "cannot create the batch: ");
      return 0;
    }
  if (quantity <= 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "cannot create the batch: quantity %" G_GINT64_FORMAT " is not positive", quantity);
      return 0;
    }
  if (!st_db_write (db, st_db_w_batch_create, &a, &id, error))
    {
      g_prefix_error (error, "cannot create batch for work order %s: ", work_order);
      return 0;
    }
  return id;
}

typedef struct {
  gint64 id;
  const char *operator_name;
} BatchClose;

static gboolean
st_db_w_batch_close (StDbConn *c, gpointer data, gint64 *result, GError **error)
{
  BatchClose *a = data;
  {
    gboolean row = FALSE;
    g_autoptr(StSqliteStmtRef) stmt = st_db_conn_query (c,
        "SELECT state, (SELECT count(*) FROM units WHERE batch_id = b.id"
        " AND state IN ('issuing','issued')) FROM batches b WHERE id = ?",
        "cannot read the batch", &row, error, "i", a->id);
    if (stmt == NULL)
      return FALSE;
    if (!row)
      {
        g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND, "there is no batch %" G_GINT64_FORMAT, a->id);
        return FALSE;
      }
    if (g_strcmp0 ((const char *) sqlite3_column_text (stmt, 0), "open") != 0)
      {
        g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                     "batch %" G_GINT64_FORMAT " is already closed", a->id);
        return FALSE;
      }
    gint64 busy = sqlite3_column_int64 (stmt, 1);
    if (busy > 0)
      {
        g_set_error (error, ST_ERROR, ST_ERROR_BUSY,
                     "batch %" G_GINT64_FORMAT " still has %" G_GINT64_FORMAT " unit(s) being "
                     "issued: let them finish or recover them, then close it", a->id, busy);
        return FALSE;
      }
  }
  if (!st_db_conn_run (c,
      "UPDATE batches SET state = 'closed', closed_at = ?, closed_by = ? WHERE id = ?",
      "cannot close the batch", error, "iti", st_db_now (), a->operator_name, a->id))
    return FALSE;
  g_autofree gchar *payload = st_db_payload ("i", "batch", a->id);
  return st_db_w_audit (c, a->operator_name, "batch-close", payload, error);
}

gboolean
st_db_batch_close (StDb *db, gint64 id, const char *operator_name, GError **error)
{
  BatchClose a = { id, operator_name };
  if (!st_db_check_text ("the operator", operator_name, TRUE, ST_DB_NAME_MAX, error)
      || !st_db_write (db, st_db_w_batch_close, &a, NULL, error))
    {
      g_prefix_error (error, "cannot close batch %" G_GINT64_FORMAT ": ", id);
      return FALSE;
    }
  return TRUE;
}

void
st_db_batch_free (StDbBatch *b)
{
  if (b == NULL)
    return;
  g_free (b->work_order);
  g_free (b->product);
  g_free (b->profile_sha256);
  g_free (b->profile_text);
  g_free (b->state);
  g_free (b->created_by);
  g_free (b->closed_by);
  g_free (b->station_id);
  g_free (b);
}

#define ST_DB_BATCH_SELECT \
  "SELECT b.id, b.work_order, b.product, b.profile_sha256, b.profile_text, b.state," \
  " b.created_by, b.closed_by, b.station_id, b.quantity, b.created_at, coalesce (b.closed_at, 0)," \
  " (SELECT count(*) FROM units u WHERE u.batch_id = b.id)," \
  " (SELECT count(*) FROM units u WHERE u.batch_id = b.id AND u.state = 'done')," \
  " (SELECT count(*) FROM units u WHERE u.batch_id = b.id AND u.state = 'failed')," \
  " b.live_certs," /* kept by trigger (schema 3); `db check` verifies it */ \
  " (SELECT count(*) FROM certificates c WHERE c.batch_id = b.id AND c.state = 'voided')," \
  " (SELECT count(*) FROM certificates c WHERE c.batch_id = b.id AND c.state = 'unconfirmed')" \
  " FROM batches b "

typedef gpointer (*StDbFromRow) (sqlite3_stmt *stmt);
static GPtrArray *st_db_query_list (StDb *db, const char *sql, const char *what, gboolean bind_int,
                                    gint64 ival, const char *sval, StDbFromRow from_row,
                                    GDestroyNotify free_func, GError **error);

static StDbBatch *
st_db_batch_from_row (sqlite3_stmt *stmt)
{
  StDbBatch *b = g_new0 (StDbBatch, 1);
  b->id = sqlite3_column_int64 (stmt, 0);
  b->work_order = st_db_col_text (stmt, 1);
  b->product = st_db_col_text (stmt, 2);
  b->profile_sha256 = st_db_col_text (stmt, 3);
  b->profile_text = st_db_col_text (stmt, 4);
  b->state = st_db_col_text (stmt, 5);
  b->created_by = st_db_col_text (stmt, 6);
  b->closed_by = st_db_col_text (stmt, 7);
  b->station_id = st_db_col_text (stmt, 8);
  b->quantity = sqlite3_column_int64 (stmt, 9);
  b->created_at = sqlite3_column_int64 (stmt, 10);
  b->closed_at = sqlite3_column_int64 (stmt, 11);
  b->n_units = sqlite3_column_int64 (stmt, 12);
  b->n_done = sqlite3_column_int64 (stmt, 13);
  b->n_failed = sqlite3_column_int64 (stmt, 14);
  b->n_live_certs = sqlite3_column_int64 (stmt, 15);
  b->n_voided = sqlite3_column_int64 (stmt, 16);
  b->n_unconfirmed = sqlite3_column_int64 (stmt, 17);
  return b;
}

StDbBatch *
st_db_batch_get (StDb *db, gint64 id, GError **error)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&db->rlock);
  gboolean row = FALSE;
  g_autoptr(StSqliteStmtRef) stmt = st_db_conn_query (db->r,
      ST_DB_BATCH_SELECT "WHERE b.id = ?",
      "cannot read the batch", &row, error, "i", id);
  if (stmt == NULL)
    return NULL;
  if (!row)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND, "there is no batch %" G_GINT64_FORMAT, id);
      return NULL;
    }
  return st_db_batch_from_row (stmt);
}

GPtrArray *
st_db_batch_list (StDb *db, GError **error)
{
  return st_db_query_list (db, ST_DB_BATCH_SELECT "ORDER BY b.id DESC", "cannot list the batches",
                           FALSE, 0, NULL, (StDbFromRow) st_db_batch_from_row,
                           (GDestroyNotify) st_db_batch_free, error);
}

/* ---------- units ---------- */

typedef struct {
  gint64 batch_id;
  const char *port, *uid, *model, *fw_version, *operator_name;
} UnitBegin;

/* The batch's state, NOT_FOUND naming the id if there is none. */
static gboolean
st_db_w_batch_state (StDbConn *c, gint64 batch_id, gchar **state, gint64 *quantity, GError **error)
{
  gboolean row = FALSE;
  g_autoptr(StSqliteStmtRef) stmt = st_db_conn_query (c,
      "SELECT state, quantity FROM batches WHERE id = ?",
      "cannot read the batch", &row, error, "i", batch_id);
  if (stmt == NULL)
    return FALSE;
  if (!row)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND, "there is no batch %" G_GINT64_FORMAT, batch_id);
      return FALSE;
    }
  *state = st_db_col_text (stmt, 0);
  if (quantity != NULL)
    *quantity = sqlite3_column_int64 (stmt, 1);
  return TRUE;
}

gint64
st_db_void_cap_base (gint64 quantity)
{
  return MAX (quantity, 0) / 10 + 5;
}

/* The batch's voided certificates and its cap. */
static gboolean
st_db_conn_void_cap (StDbConn *c, gint64 batch_id, gint64 *voided, gint64 *cap, GError **error)
{
  gboolean row = FALSE;
  g_autoptr(StSqliteStmtRef) stmt = st_db_conn_query (c,
      "SELECT b.quantity, b.void_allowance, (SELECT count(*) FROM certificates c"
      " WHERE c.batch_id = b.id AND c.state = 'voided') FROM batches b WHERE b.id = ?",
      "cannot count the batch's voided certificates", &row, error, "i", batch_id);
  if (stmt == NULL)
    return FALSE;
  if (!row)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND, "there is no batch %" G_GINT64_FORMAT, batch_id);
      return FALSE;
    }
  *cap = st_db_void_cap_base (sqlite3_column_int64 (stmt, 0)) + sqlite3_column_int64 (stmt, 1);
  *voided = sqlite3_column_int64 (stmt, 2);
  return TRUE;
}

static gboolean
st_db_w_void_cap (StDbConn *c, gint64 batch_id, gint64 *voided, gint64 *cap, GError **error)
{
  return st_db_conn_void_cap (c, batch_id, voided, cap, error);
}

static gboolean
st_db_w_unit_begin_raw (StDbConn *c, gpointer data, gint64 *result, GError **error)
{
  UnitBegin *a = data;
  g_autofree gchar *state = NULL;
  if (!st_db_w_batch_state (c, a->batch_id, &state, NULL, error))
    return FALSE;
  if (g_strcmp0 (state, "open") != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                   "batch %" G_GINT64_FORMAT " is closed: open a new batch for more units", a->batch_id);
      return FALSE;
    }
  if (!st_db_conn_run (c,
      "INSERT INTO units (batch_id, port, uid, model, fw_version, state, started_at, operator)"
      " VALUES (?, ?, ?, ?, ?, 'started', ?, ?)",
      "cannot record the unit", error, "ittttit", a->batch_id, a->port, a->uid, a->model,
                      a->fw_version, st_db_now (), a->operator_name))
    return FALSE;
  *result = sqlite3_last_insert_rowid (c->db);
  return TRUE;
}

static gboolean
st_db_w_unit_begin (StDbConn *c, gpointer data, gint64 *result, GError **error)
{
  UnitBegin *a = data;
  if (!st_db_w_unit_begin_raw (c, data, result, error))
    return FALSE;
  g_autofree gchar *payload = st_db_payload ("iiss", "unit", *result, "batch", a->batch_id,
                                             "uid", a->uid, "port", a->port);
  return st_db_w_audit (c, a->operator_name, "unit-begin", payload, error);
}

gint64
st_db_unit_begin (StDb *db, gint64 batch_id, const char *port, const char *uid_hex,
                  const char *model, const char *fw_version, const char *operator_name,
                  GError **error)
{
  UnitBegin a = { batch_id, port, uid_hex, model, fw_version, operator_name };
  gint64 id = 0;
  if (!st_db_check_text ("the port", port, TRUE, ST_DB_NAME_MAX, error)
      || !st_db_check_hex ("the device uid", uid_hex, 0, ST_DB_UID_HEX_MAX, error)
      || !st_db_check_text ("the model", model, FALSE, ST_DB_NAME_MAX, error)
      || !st_db_check_text ("the firmware version", fw_version, FALSE, ST_DB_NAME_MAX, error)
      || !st_db_check_text ("the operator", operator_name, TRUE, ST_DB_NAME_MAX, error)
      || !st_db_write (db, st_db_w_unit_begin, &a, &id, error))
    {
      g_prefix_error (error, "cannot start unit %s on %s: ", uid_hex != NULL ? uid_hex : "(none)",
                      port != NULL ? port : "(no port)");
      return 0;
    }
  return id;
}

typedef struct {
  gint64 unit_id;
  const char *issuer, *serial, *pubkey_sha256, *product_serial;
  GBytes *tbs;
  gint64 product_seq;
  gboolean allow_reprovision;
  const char *operator_name, *port;  /* NULL: the actor / not known */
} CertReserve;

static gboolean
st_db_w_cert_reserve (StDbConn *c, gpointer data, gint64 *result, GError **error)
{
  CertReserve *a = data;
  gint64 now = st_db_now ();
  gint64 batch_id = 0, quantity = 0;
  g_autofree gchar *uid = NULL, *product = NULL;
  gboolean has_serial = a->product_serial != NULL && *a->product_serial != '\0';

  /* the unit and its batch */
  {
    gboolean row = FALSE;
    g_autoptr(StSqliteStmtRef) stmt = st_db_conn_query (c,
        "SELECT u.state, u.batch_id, u.uid, b.state, b.quantity, b.product FROM units u"
        " JOIN batches b ON b.id = u.batch_id WHERE u.id = ?",
        "cannot read the unit", &row, error, "i", a->unit_id);
    if (stmt == NULL)
      return FALSE;
    if (!row)
      {
        g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND, "there is no unit %" G_GINT64_FORMAT, a->unit_id);
        return FALSE;
      }
    const char *ustate = (const char *) sqlite3_column_text (stmt, 0);
    batch_id = sqlite3_column_int64 (stmt, 1);
    uid = st_db_col_text (stmt, 2);
    quantity = sqlite3_column_int64 (stmt, 4);
    product = st_db_col_text (stmt, 5);
    if (g_strcmp0 (ustate, "started") != 0)
      {
        g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                     "unit %" G_GINT64_FORMAT " is in state '%s': a certificate is reserved "
                     "only for a unit in state 'started'", a->unit_id, ustate);
        return FALSE;
      }
    if (g_strcmp0 ((const char *) sqlite3_column_text (stmt, 3), "open") != 0)
      {
        g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                     "batch %" G_GINT64_FORMAT " is closed: open a new batch", batch_id);
        return FALSE;
      }
  }

  /* the cap on voided certificates: the line stops for a lead to look */
  {
    gint64 voided = 0, cap = 0;
    if (!st_db_w_void_cap (c, batch_id, &voided, &cap, error))
      return FALSE;
    if (voided > cap)
      {
        g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                     "batch %" G_GINT64_FORMAT " has voided %" G_GINT64_FORMAT " certificates, "
                     "more than the cap of %" G_GINT64_FORMAT ": a lead must review the failures "
                     "before the line goes on ('station batch allow-more-voids %" G_GINT64_FORMAT "')",
                     batch_id, voided, cap, batch_id);
        return FALSE;
      }
  }

  /* the uid's live certificate, in any batch */
  {
    gboolean row = FALSE;
    g_autoptr(StSqliteStmtRef) stmt = st_db_conn_query (c,
        "SELECT id, serial, batch_id, unit_id FROM certificates WHERE uid = ? AND " ST_DB_LIVE ("state"),
        "cannot look up the uid's certificates", &row, error, "t", uid);
    if (stmt == NULL)
      return FALSE;
    if (row)
      {
        gint64 old_id = sqlite3_column_int64 (stmt, 0);
        g_autofree gchar *old_serial = st_db_col_text (stmt, 1);
        gint64 old_batch = sqlite3_column_int64 (stmt, 2);
        gint64 old_unit = sqlite3_column_int64 (stmt, 3);
        if (!a->allow_reprovision)
          {
            g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                         "uid %s already has live certificate serial %s (batch %" G_GINT64_FORMAT
                         "): re-provision it explicitly to void that certificate",
                         uid, old_serial, old_batch);
            return FALSE;
          }
        if (!st_db_conn_run (c,
            "UPDATE certificates SET state = 'voided', void_reason = 're-provisioned', voided_at = ?"
            " WHERE id = ?",
            "cannot void the old certificate", error, "ii", now, old_id))
          return FALSE;
        g_autofree gchar *vp = st_db_payload ("iisis", "cert", old_id, "unit", old_unit, "serial",
                                              old_serial, "batch", old_batch, "reason", "re-provisioned");
        if (!st_db_w_audit (c, a->operator_name, "cert-void", vp, error))
          return FALSE;
        /* a unit left unfinished with that certificate ends here */
        if (!st_db_conn_run (c,
            "UPDATE units SET state = 'failed', fail_step = 'reprovision',"
            " fail_reason = 're-provisioned', finished_at = ?"
            " WHERE id = ? AND " ST_DB_UNFINISHED ("state"),
            "cannot close the old unit", error, "ii", now, old_unit))
          return FALSE;
      }
  }

  /* the batch's quantity */
  {
    gboolean row = FALSE;
    g_autoptr(StSqliteStmtRef) stmt = st_db_conn_query (c,
        "SELECT live_certs FROM batches WHERE id = ?",
        "cannot count the batch's certificates", &row, error, "i", batch_id);
    if (stmt == NULL)
      return FALSE;
    if (sqlite3_column_int64 (stmt, 0) >= quantity)
      {
        g_set_error (error, ST_ERROR, ST_ERROR_BUSY,
                     "batch quantity %" G_GINT64_FORMAT " reached: batch %" G_GINT64_FORMAT
                     " has that many live certificates; close it and open a new batch",
                     quantity, batch_id);
        return FALSE;
      }
  }

  /* one public key is certified once */
  {
    gboolean row = FALSE;
    g_autoptr(StSqliteStmtRef) stmt = st_db_conn_query (c,
        "SELECT serial FROM certificates WHERE pubkey_sha256 = ?",
        "cannot look up the public key", &row, error, "t", a->pubkey_sha256);
    if (stmt == NULL)
      return FALSE;
    if (row)
      {
        g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                     "this public key was already certified (serial %s): the device must make a "
                     "new key", (const char *) sqlite3_column_text (stmt, 0));
        return FALSE;
      }
  }
  {
    gboolean row = FALSE;
    g_autoptr(StSqliteStmtRef) stmt = st_db_conn_query (c,
        "SELECT 1 FROM certificates WHERE issuer = ? AND serial = ?",
        "cannot look up the serial", &row, error, "tt", a->issuer, a->serial);
    if (stmt == NULL)
      return FALSE;
    if (row)
      {
        g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL,
                     "serial collision: serial %s is already used by this issuer; draw a new one",
                     a->serial);
        return FALSE;
      }
  }
  /* one product serial per unit of a product (the register's primary key
   * holds it too; this says which unit has it) */
  if (has_serial)
    {
      gboolean row = FALSE;
      g_autoptr(StSqliteStmtRef) stmt = st_db_conn_query (c,
          "SELECT unit_id FROM product_serials WHERE product = ? AND serial = ?",
          "cannot look up the product serial", &row, error, "tt", product, a->product_serial);
      if (stmt == NULL)
        return FALSE;
      if (row)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL,
                       "product serial collision: product serial %s of product %s was already given "
                       "to unit %" G_GINT64_FORMAT "; draw a new number", a->product_serial, product,
                       (gint64) sqlite3_column_int64 (stmt, 0));
          return FALSE;
        }
    }

  {
    if (!st_db_conn_run (c,
        "INSERT INTO certificates (unit_id, batch_id, uid, issuer, serial, pubkey_sha256, tbs,"
        " state, reserved_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'issuing', ?)",
        "cannot record the certificate", error, "iittttbi", a->unit_id, batch_id, uid, a->issuer,
                        a->serial, a->pubkey_sha256, a->tbs, now))
      return FALSE;
    *result = sqlite3_last_insert_rowid (c->db);
  }
  if (!st_db_conn_run (c,
      "UPDATE units SET product_serial = ?, product_seq = ?, state = 'issuing' WHERE id = ?",
      "cannot update the unit", error, "tii", a->product_serial, a->product_seq, a->unit_id))
    return FALSE;
  if (has_serial && !st_db_conn_run (c,
      "INSERT INTO product_serials (product, serial, unit_id) VALUES (?, ?, ?)",
      "cannot register the product serial", error, "tti", product, a->product_serial, a->unit_id))
    return FALSE;
  /* the sequence stays ahead of every number recorded, drawn here or not */
  if (a->product_seq > 0 && !st_db_conn_run (c,
      "INSERT INTO product_sequences (product, next) VALUES (?, ?)"
      " ON CONFLICT (product) DO UPDATE SET next = max (next, excluded.next)",
      "cannot advance the product's sequence", error, "ti", product, a->product_seq + 1))
    return FALSE;
  g_autofree gchar *payload = st_db_payload ("iiisssssib", "unit", a->unit_id, "cert", *result,
                                             "batch", batch_id, "uid", uid, "port", a->port,
                                             "serial", a->serial, "pubkey_sha256", a->pubkey_sha256,
                                             "product_serial", a->product_serial,
                                             "product_seq", a->product_seq,
                                             "allow_reprovision", a->allow_reprovision);
  return st_db_w_audit (c, a->operator_name, "cert-reserve", payload, error);
}

gint64
st_db_cert_reserve (StDb *db, gint64 unit_id, const char *issuer, const char *serial_hex,
                    const char *pubkey_sha256, GBytes *tbs, const char *product_serial,
                    gint64 product_seq, gboolean allow_reprovision, GError **error)
{
  CertReserve a = { unit_id, issuer, serial_hex, pubkey_sha256, product_serial, tbs,
                    product_seq, allow_reprovision };
  gint64 id = 0;
  if (!st_db_check_hex ("the issuer's SHA-256", issuer, 64, 64, error)
      || !st_db_check_serial (serial_hex, error)
      || !st_db_check_hex ("the public key's SHA-256", pubkey_sha256, 64, 64, error)
      || !st_db_check_blob ("the to-be-signed certificate", tbs, error)
      || !st_db_check_text ("the product serial", product_serial, FALSE, ST_DB_NAME_MAX, error)
      || !st_db_write (db, st_db_w_cert_reserve, &a, &id, error))
    {
      g_prefix_error (error, "cannot reserve a certificate for unit %" G_GINT64_FORMAT ": ", unit_id);
      return 0;
    }
  return id;
}

/* A (text, integer, text) row by the id of a @thing ("unit",
 * "certificate"): the states of a unit and of its certificate. */
static gboolean
st_db_w_states (StDbConn *c, const char *sql, const char *thing, gint64 id, gchar **s0,
                gint64 *i1, gchar **s2, GError **error)
{
  gboolean row = FALSE;
  g_autoptr(StSqliteStmtRef) stmt = st_db_conn_query (c, sql, "cannot read the record", &row, error, "i", id);
  if (stmt == NULL)
    {
      g_prefix_error (error, "%s %" G_GINT64_FORMAT ": ", thing, id);
      return FALSE;
    }
  if (!row)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND, "there is no %s %" G_GINT64_FORMAT, thing, id);
      return FALSE;
    }
  *s0 = st_db_col_text (stmt, 0);
  *i1 = sqlite3_column_int64 (stmt, 1);
  *s2 = st_db_col_text (stmt, 2);
  return TRUE;
}

/* The certificate's and its unit's states. */
static gboolean
st_db_w_cert_states (StDbConn *c, gint64 cert_id, gchar **cert_state, gint64 *unit_id,
                     gchar **unit_state, GError **error)
{
  return st_db_w_states (c, "SELECT c.state, c.unit_id, u.state FROM certificates c"
                         " JOIN units u ON u.id = c.unit_id WHERE c.id = ?",
                         "certificate", cert_id, cert_state, unit_id, unit_state, error);
}

typedef struct {
  gint64 cert_id;
  GBytes *der;
} CertIssued;

static gboolean
st_db_w_cert_issued (StDbConn *c, gpointer data, gint64 *result, GError **error)
{
  CertIssued *a = data;
  g_autofree gchar *cstate = NULL, *ustate = NULL;
  gint64 unit_id = 0;
  if (!st_db_w_cert_states (c, a->cert_id, &cstate, &unit_id, &ustate, error))
    return FALSE;
  if (g_strcmp0 (cstate, "issuing") != 0 || g_strcmp0 (ustate, "issuing") != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "certificate %" G_GINT64_FORMAT " is '%s' and its unit %" G_GINT64_FORMAT
                   " '%s': only an 'issuing' certificate of an 'issuing' unit can be recorded as issued",
                   a->cert_id, cstate, unit_id, ustate);
      return FALSE;
    }
  if (!st_db_conn_run (c,
      "UPDATE certificates SET state = 'issued', der = ?, issued_at = ? WHERE id = ?",
      "cannot record the certificate", error, "bii", a->der, st_db_now (), a->cert_id))
    return FALSE;
  if (!st_db_conn_run (c,
      "UPDATE units SET state = 'issued' WHERE id = ?",
      "cannot update the unit", error, "i", unit_id))
    return FALSE;
  gsize der_len = 0;
  const guint8 *der = g_bytes_get_data (a->der, &der_len);
  g_autofree gchar *der_hash = st_sha256_hex (der, der_len);
  g_autofree gchar *payload = st_db_payload ("iis", "cert", a->cert_id, "unit", unit_id,
                                             "certificate_sha256", der_hash);
  return st_db_w_audit (c, NULL, "cert-issued", payload, error);
}

gboolean
st_db_cert_issued (StDb *db, gint64 cert_id, GBytes *der, GError **error)
{
  CertIssued a = { cert_id, der };
  if (!st_db_check_blob ("the certificate", der, error)
      || !st_db_write (db, st_db_w_cert_issued, &a, NULL, error))
    {
      g_prefix_error (error, "cannot record certificate %" G_GINT64_FORMAT " as issued: ", cert_id);
      return FALSE;
    }
  return TRUE;
}

/* The unit's state and its certificate (id 0 if none). */
static gboolean
st_db_w_unit_states (StDbConn *c, gint64 unit_id, gchar **unit_state, gint64 *cert_id,
                     gchar **cert_state, GError **error)
{
  return st_db_w_states (c, "SELECT u.state, coalesce (c.id, 0), c.state FROM units u"
                         " LEFT JOIN certificates c ON c.unit_id = u.id WHERE u.id = ?",
                         "unit", unit_id, unit_state, cert_id, cert_state, error);
}

static gboolean
st_db_w_unit_done (StDbConn *c, gpointer data, gint64 *result, GError **error)
{
  gint64 unit_id = *(gint64 *) data;
  g_autofree gchar *ustate = NULL, *cstate = NULL;
  gint64 cert_id = 0;
  if (!st_db_w_unit_states (c, unit_id, &ustate, &cert_id, &cstate, error))
    return FALSE;
  /* An interrupted unit waits in 'issued' with its certificate
   * 'unconfirmed' until its device is seen again. */
  if (g_strcmp0 (ustate, "issued") != 0 ||
      (g_strcmp0 (cstate, "issued") != 0 && g_strcmp0 (cstate, "unconfirmed") != 0))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "unit %" G_GINT64_FORMAT " is '%s' with certificate '%s': only an 'issued' unit "
                   "with an 'issued' or 'unconfirmed' certificate can be done", unit_id, ustate,
                   cstate != NULL ? cstate : "(none)");
      return FALSE;
    }
  if (!st_db_conn_run (c,
      "UPDATE certificates SET state = 'active' WHERE id = ?",
      "cannot activate the certificate", error, "i", cert_id))
    return FALSE;
  if (!st_db_conn_run (c,
      "UPDATE units SET state = 'done', finished_at = ? WHERE id = ?",
      "cannot update the unit", error, "ii", st_db_now (), unit_id))
    return FALSE;
  g_autofree gchar *payload = st_db_payload ("iis", "unit", unit_id, "cert", cert_id,
                                             "cert_state_was", cstate);
  return st_db_w_audit (c, NULL, "unit-done", payload, error);
}

gboolean
st_db_unit_done (StDb *db, gint64 unit_id, GError **error)
{
  if (!st_db_write (db, st_db_w_unit_done, &unit_id, NULL, error))
    {
      g_prefix_error (error, "cannot record unit %" G_GINT64_FORMAT " as done: ", unit_id);
      return FALSE;
    }
  return TRUE;
}

static gboolean
st_db_is_live (const char *cert_state)
{
  return g_strcmp0 (cert_state, "issuing") == 0 || g_strcmp0 (cert_state, "issued") == 0
         || g_strcmp0 (cert_state, "active") == 0 || g_strcmp0 (cert_state, "unconfirmed") == 0;
}

/* @cert_id -> voided or unconfirmed, with @reason. */
static gboolean
st_db_w_cert_dispose (StDbConn *c, gint64 cert_id, const char *state, const char *reason,
                      GError **error)
{
  gboolean voided = g_strcmp0 (state, "voided") == 0;
  g_autoptr(StSqliteStmtRef) stmt = st_db_conn_prepare (c,
      "UPDATE certificates SET state = ?, void_reason = ?, voided_at = ? WHERE id = ?", error);
  if (stmt == NULL)
    return FALSE;
  if (!st_db_bind (c, stmt, error, "tt", state, reason)
      || (voided ? sqlite3_bind_int64 (stmt, 3, st_db_now ()) : sqlite3_bind_null (stmt, 3)) != SQLITE_OK
      || sqlite3_bind_int64 (stmt, 4, cert_id) != SQLITE_OK)
    {
      if (error != NULL && *error == NULL)
        st_db_set_error_rc (error, c, sqlite3_extended_errcode (c->db), "cannot bind a value");
      return FALSE;
    }
  return st_db_step (c, stmt, NULL, "cannot update the certificate", error);
}

typedef struct {
  gint64 unit_id;
  const char *step, *reason, *detail;
  StDbCertDisposition disposition;
  gboolean quiet;  /* the caller audits */
} UnitFail;

static gboolean
st_db_w_unit_fail (StDbConn *c, gpointer data, gint64 *result, GError **error)
{
  UnitFail *a = data;
  g_autofree gchar *ustate = NULL, *cstate = NULL;
  gint64 cert_id = 0;
  if (!st_db_w_unit_states (c, a->unit_id, &ustate, &cert_id, &cstate, error))
    return FALSE;
  if (g_strcmp0 (ustate, "failed") == 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "unit %" G_GINT64_FORMAT " has already failed", a->unit_id);
      return FALSE;
    }
  if (cert_id != 0 && st_db_is_live (cstate))
    {
      const char *to = a->disposition == ST_DB_CERT_VOID ? "voided" : "unconfirmed";
      if (g_strcmp0 (cstate, to) != 0 && !st_db_w_cert_dispose (c, cert_id, to, a->reason, error))
        return FALSE;
    }
  if (!st_db_conn_run (c,
      "UPDATE units SET state = 'failed', fail_step = ?, fail_reason = ?, fail_detail = ?,"
      " finished_at = ? WHERE id = ?",
      "cannot update the unit", error, "tttii", a->step, a->reason, a->detail, st_db_now (), a->unit_id))
    return FALSE;
  if (a->quiet)
    return TRUE;
  const char *cert_to = cert_id == 0 ? NULL : !st_db_is_live (cstate) ? cstate
                        : a->disposition == ST_DB_CERT_VOID ? "voided" : "unconfirmed";
  g_autofree gchar *payload = st_db_payload ("isssis", "unit", a->unit_id, "unit_state_was", ustate,
                                             "step", a->step, "reason", a->reason, "cert", cert_id,
                                             "cert_state", cert_to);
  return st_db_w_audit (c, NULL, "unit-fail", payload, error);
}

gboolean
st_db_unit_fail (StDb *db, gint64 unit_id, const char *step, const char *reason,
                 const char *detail, StDbCertDisposition disposition, GError **error)
{
  UnitFail a = { unit_id, step, reason, detail, disposition };
  if (!st_db_check_text ("the failed step", step, TRUE, ST_DB_NAME_MAX, error)
      || !st_db_check_text ("the failure reason", reason, TRUE, ST_DB_NAME_MAX, error)
      || !st_db_check_text ("the failure detail", detail, FALSE, ST_DB_DETAIL_MAX, error))
    {
      g_prefix_error (error, "cannot record unit %" G_GINT64_FORMAT " as failed: ", unit_id);
      return FALSE;
    }
  if (disposition != ST_DB_CERT_VOID && disposition != ST_DB_CERT_UNCONFIRMED)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "cannot record unit %" G_GINT64_FORMAT " as failed: unknown certificate "
                   "disposition %d", unit_id, (int) disposition);
      return FALSE;
    }
  if (!st_db_write (db, st_db_w_unit_fail, &a, NULL, error))
    {
      g_prefix_error (error, "cannot record unit %" G_GINT64_FORMAT " as failed: ", unit_id);
      return FALSE;
    }
  return TRUE;
}

typedef struct {
  gint64 cert_id;
  const char *state, *reason;
} CertSetState;

static gboolean
st_db_cert_move_allowed (const char *from, const char *to)
{
  static const struct { const char *from, *to; } moves[] = {
    { "issuing", "voided" }, { "issuing", "unconfirmed" },
    { "issued", "active" }, { "issued", "voided" }, { "issued", "unconfirmed" },
    { "unconfirmed", "active" }, { "unconfirmed", "voided" },
    { "active", "voided" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (moves); i++)
    if (g_strcmp0 (moves[i].from, from) == 0 && g_strcmp0 (moves[i].to, to) == 0)
      return TRUE;
  return FALSE;
}

static gboolean
st_db_w_cert_state_audit (StDbConn *c, CertSetState *a, gint64 unit_id, const char *from,
                          GError **error)
{
  g_autofree gchar *payload = st_db_payload ("iisss", "cert", a->cert_id, "unit", unit_id,
                                             "from", from, "to", a->state, "reason", a->reason);
  return st_db_w_audit (c, NULL, "cert-state", payload, error);
}

static gboolean
st_db_w_cert_set_state (StDbConn *c, gpointer data, gint64 *result, GError **error)
{
  CertSetState *a = data;
  g_autofree gchar *cstate = NULL, *ustate = NULL;
  gint64 unit_id = 0;
  gint64 now = st_db_now ();
  if (!st_db_w_cert_states (c, a->cert_id, &cstate, &unit_id, &ustate, error))
    return FALSE;
  if (!st_db_cert_move_allowed (cstate, a->state))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "certificate %" G_GINT64_FORMAT " cannot go from '%s' to '%s'",
                   a->cert_id, cstate, a->state);
      return FALSE;
    }
  if (g_strcmp0 (a->state, "active") == 0)
    {
      if (!st_db_conn_run (c,
          "UPDATE certificates SET state = 'active' WHERE id = ?",
          "cannot activate the certificate", error, "i", a->cert_id))
        return FALSE;
      if (!st_db_conn_run (c,
          "UPDATE units SET state = 'done', finished_at = ? WHERE id = ? AND state <> 'done'",
          "cannot update the unit", error, "ii", now, unit_id))
        return FALSE;
      return st_db_w_cert_state_audit (c, a, unit_id, cstate, error);
    }
  if (!st_db_w_cert_dispose (c, a->cert_id, a->state, a->reason, error))
    return FALSE;
  /* 'unconfirmed': the unit keeps waiting for its device (an 'issued' unit
   * stays 'issued'); 'voided': an unfinished unit ends here. */
  if (g_strcmp0 (a->state, "unconfirmed") == 0 && g_strcmp0 (ustate, "issued") == 0)
    return st_db_w_cert_state_audit (c, a, unit_id, cstate, error);
  if (!st_db_conn_run (c,
      "UPDATE units SET state = 'failed', fail_step = 'recovery', fail_reason = ?, finished_at = ?"
      " WHERE id = ? AND " ST_DB_UNFINISHED ("state"),
      "cannot update the unit", error, "tii", a->reason, now, unit_id))
    return FALSE;
  return st_db_w_cert_state_audit (c, a, unit_id, cstate, error);
}

gboolean
st_db_cert_set_state (StDb *db, gint64 cert_id, const char *state, const char *reason,
                      GError **error)
{
  CertSetState a = { cert_id, state, reason };
  if (g_strcmp0 (state, "voided") != 0 && g_strcmp0 (state, "unconfirmed") != 0
      && g_strcmp0 (state, "active") != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "cannot set certificate %" G_GINT64_FORMAT " to '%s': only 'voided', "
                   "'unconfirmed' or 'active'", cert_id, state != NULL ? state : "(null)");
      return FALSE;
    }
  if (a.reason == NULL && g_strcmp0 (state, "active") != 0)
    a.reason = state;
  if (!st_db_check_text ("the reason", a.reason, FALSE, ST_DB_NAME_MAX, error)
      || !st_db_write (db, st_db_w_cert_set_state, &a, NULL, error))
    {
      g_prefix_error (error, "cannot set certificate %" G_GINT64_FORMAT " to '%s': ", cert_id, state);
      return FALSE;
    }
  return TRUE;
}

gint64
st_db_product_seq_draw (StDb *db, const char *product, GError **error)
{
  if (!st_db_check_text ("the product", product, TRUE, ST_DB_NAME_MAX, error))
    {
      g_prefix_error (error, "cannot draw the next serial number: ");
      return 0;
    }
  g_autoptr(GMutexLocker) seq_locker = g_mutex_locker_new (&db->seq_lock);
  /* where the database's sequence is: moved by every reservation, of this
   * process or another (read under seq_lock, so no draw passes another) */
  gint64 recorded = 1;
  {
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&db->rlock);
    gboolean row = FALSE;
    g_autoptr(StSqliteStmtRef) stmt = st_db_conn_query (db->r,
        "SELECT next FROM product_sequences WHERE product = ?",
        "cannot read the product's sequence", &row, error, "t", product);
    if (stmt == NULL)
      {
        g_prefix_error (error, "cannot draw the next serial number of product %s: ", product);
        return 0;
      }
    if (row)
      recorded = sqlite3_column_int64 (stmt, 0);
  }
  gint64 *next = g_hash_table_lookup (db->seq_next, product);
  if (next == NULL)
    {
      next = g_new0 (gint64, 1);
      g_hash_table_insert (db->seq_next, g_strdup (product), next);
    }
  gint64 seq = MAX (*next, recorded);
  *next = seq + 1;
  return seq;
}

/* ---------- unit reads ---------- */

void
st_db_unit_free (StDbUnit *u)
{
  if (u == NULL)
    return;
  g_free (u->port);
  g_free (u->uid);
  g_free (u->model);
  g_free (u->fw_version);
  g_free (u->product_serial);
  g_free (u->state);
  g_free (u->fail_step);
  g_free (u->fail_reason);
  g_free (u->fail_detail);
  g_free (u->operator_name);
  g_free (u->cert_serial);
  g_free (u->cert_state);
  g_free (u->cert_issuer);
  g_free (u->pubkey_sha256);
  g_free (u->void_reason);
  g_clear_pointer (&u->cert_der, g_bytes_unref);
  g_clear_pointer (&u->tbs, g_bytes_unref);
  g_free (u);
}

#define ST_DB_UNIT_SELECT \
  "SELECT u.id, u.batch_id, coalesce (u.product_seq, 0), u.started_at, coalesce (u.finished_at, 0)," \
  " u.port, u.uid, u.model, u.fw_version, u.product_serial, u.state, u.fail_step, u.fail_reason," \
  " u.fail_detail, u.operator, coalesce (c.id, 0), coalesce (c.issued_at, 0), c.serial, c.state," \
  " c.issuer, c.pubkey_sha256, c.void_reason, c.der, c.tbs" \
  " FROM units u LEFT JOIN certificates c ON c.unit_id = u.id "

static StDbUnit *
st_db_unit_from_row (sqlite3_stmt *stmt)
{
  StDbUnit *u = g_new0 (StDbUnit, 1);
  u->id = sqlite3_column_int64 (stmt, 0);
  u->batch_id = sqlite3_column_int64 (stmt, 1);
  u->product_seq = sqlite3_column_int64 (stmt, 2);
  u->started_at = sqlite3_column_int64 (stmt, 3);
  u->finished_at = sqlite3_column_int64 (stmt, 4);
  u->port = st_db_col_text (stmt, 5);
  u->uid = st_db_col_text (stmt, 6);
  u->model = st_db_col_text (stmt, 7);
  u->fw_version = st_db_col_text (stmt, 8);
  u->product_serial = st_db_col_text (stmt, 9);
  u->state = st_db_col_text (stmt, 10);
  u->fail_step = st_db_col_text (stmt, 11);
  u->fail_reason = st_db_col_text (stmt, 12);
  u->fail_detail = st_db_col_text (stmt, 13);
  u->operator_name = st_db_col_text (stmt, 14);
  u->cert_id = sqlite3_column_int64 (stmt, 15);
  u->issued_at = sqlite3_column_int64 (stmt, 16);
  u->cert_serial = st_db_col_text (stmt, 17);
  u->cert_state = st_db_col_text (stmt, 18);
  u->cert_issuer = st_db_col_text (stmt, 19);
  u->pubkey_sha256 = st_db_col_text (stmt, 20);
  u->void_reason = st_db_col_text (stmt, 21);
  u->cert_der = st_db_col_bytes (stmt, 22);
  u->tbs = st_db_col_bytes (stmt, 23);
  return u;
}

/* Runs a unit query (bound with @types and one argument) into an array. */
/* Rows of a read query, each made into an object by @from_row. @sql binds
 * one integer (@bind_int), one text (@sval) or nothing. */
static GPtrArray *
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

static GPtrArray *
st_db_unit_query (StDb *db, const char *sql, const char *what, gboolean bind_int,
                  gint64 ival, const char *sval, GError **error)
{
  return st_db_query_list (db, sql, what, bind_int, ival, sval, (StDbFromRow) st_db_unit_from_row,
                           (GDestroyNotify) st_db_unit_free, error);
}

GPtrArray *
st_db_unit_list (StDb *db, gint64 batch_id, GError **error)
{
  return st_db_unit_query (db, ST_DB_UNIT_SELECT "WHERE u.batch_id = ? ORDER BY u.id",
                           "cannot list the batch's units", TRUE, batch_id, NULL, error);
}

GPtrArray *
st_db_unit_list_unfinished (StDb *db, GError **error)
{
  return st_db_unit_query (db, ST_DB_UNIT_SELECT
                           "WHERE " ST_DB_UNFINISHED ("u.state") " ORDER BY u.id",
                           "cannot list the unfinished units", FALSE, 0, NULL, error);
}

static StDbUnit *
st_db_unit_take_one (GPtrArray *units, const char *what, GError **error)
{
  if (units == NULL)
    return NULL;
  if (units->len == 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND, "%s", what);
      return NULL;
    }
  return g_ptr_array_steal_index (units, 0);
}

StDbUnit *
st_db_unit_find_live_by_uid (StDb *db, const char *uid_hex, GError **error)
{
  g_autoptr(GPtrArray) units = st_db_unit_query (db, ST_DB_UNIT_SELECT
      "WHERE u.id = (SELECT unit_id FROM certificates WHERE uid = ? AND " ST_DB_LIVE ("state") ")",
      "cannot look up the uid", FALSE, 0, uid_hex != NULL ? uid_hex : "", error);
  g_autofree gchar *what = g_strdup_printf ("uid %s has no live certificate", uid_hex);
  return st_db_unit_take_one (units, what, error);
}

StDbUnit *
st_db_unit_get (StDb *db, gint64 unit_id, GError **error)
{
  g_autoptr(GPtrArray) units = st_db_unit_query (db, ST_DB_UNIT_SELECT "WHERE u.id = ?",
                                                 "cannot read the unit", TRUE, unit_id, NULL, error);
  g_autofree gchar *what = g_strdup_printf ("there is no unit %" G_GINT64_FORMAT, unit_id);
  return st_db_unit_take_one (units, what, error);
}

/* ---------- events ---------- */

typedef struct {
  const char *operator_name, *event, *payload;
} EventAdd;

static gboolean
st_db_w_event_add (StDbConn *c, gpointer data, gint64 *result, GError **error)
{
  EventAdd *a = data;
  if (!st_db_conn_run (c,
      "INSERT INTO events (at, operator, event, payload) VALUES (?, ?, ?, ?)",
      "cannot record the event", error, "ittt", st_db_now (), a->operator_name, a->event, a->payload))
    return FALSE;
  *result = sqlite3_last_insert_rowid (c->db);
  return st_db_w_audit (c, a->operator_name, a->event, a->payload, error);
}

static gboolean
st_db_check_json (const char *payload, GError **error)
{
  if (payload == NULL)
    return TRUE;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) local = NULL;
  if (!json_parser_load_from_data (parser, payload, -1, &local))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "the payload is not JSON: %s", local->message);
      return FALSE;
    }
  return TRUE;
}

gboolean
st_db_event_add (StDb *db, const char *operator_name, const char *event,
                 const char *payload_json, GError **error)
{
  EventAdd a = { operator_name, event, payload_json };
  if (!st_db_check_text ("the operator", operator_name, TRUE, ST_DB_NAME_MAX, error)
      || !st_db_check_text ("the event", event, TRUE, ST_DB_NAME_MAX, error)
      || !st_db_check_text ("the event payload", payload_json, FALSE, ST_DB_DETAIL_MAX, error)
      || !st_db_check_json (payload_json, error)
      || !st_db_write (db, st_db_w_event_add, &a, NULL, error))
    {
      g_prefix_error (error, "cannot record event '%s': ", event != NULL ? event : "(none)");
      return FALSE;
    }
  return TRUE;
}

/* ---------- checks ---------- */

typedef struct {
  const char *name;
  const char *sql;   /* every row is a problem; columns are printed */
} StDbCheck;

static const StDbCheck st_db_checks[] = {
  { "foreign keys", "PRAGMA foreign_key_check" },
  { "serials unique per issuer",
    "SELECT issuer, serial, count(*) FROM certificates GROUP BY issuer, serial HAVING count(*) > 1" },
  { "public keys certified once",
    "SELECT pubkey_sha256, count(*) FROM certificates GROUP BY pubkey_sha256 HAVING count(*) > 1" },
  { "one live certificate per uid",
    "SELECT uid, count(*) FROM certificates WHERE " ST_DB_LIVE ("state")
    " GROUP BY uid HAVING count(*) > 1" },
  { "issued certificates have their DER",
    "SELECT id, serial, state FROM certificates WHERE state IN ('issued','active') AND der IS NULL" },
  { "unit and certificate states agree",
    "SELECT u.id, u.state, c.state FROM units u LEFT JOIN certificates c ON c.unit_id = u.id"
    " WHERE (u.state = 'started' AND c.id IS NOT NULL)"
    "    OR (u.state = 'issuing' AND c.state IS NOT 'issuing')"
    "    OR (u.state = 'issued' AND (c.state IS NULL OR c.state NOT IN ('issued','unconfirmed')))"
    "    OR (u.state = 'done' AND (c.id IS NULL OR c.state IN ('issuing','issued')))"
    "    OR (c.batch_id IS NOT u.batch_id AND c.id IS NOT NULL)"
    "    OR (c.uid IS NOT u.uid AND c.id IS NOT NULL)" },
  { "batches within their quantity",
    "SELECT b.id, b.quantity, count(c.id) FROM batches b JOIN certificates c ON c.batch_id = b.id"
    " AND " ST_DB_LIVE ("c.state") " GROUP BY b.id HAVING count(c.id) > b.quantity" },
  { "batch live counts agree with the certificates",
    "SELECT b.id, b.live_certs, (SELECT count(*) FROM certificates c WHERE c.batch_id = b.id"
    " AND " ST_DB_LIVE ("c.state") ") AS n FROM batches b WHERE b.live_certs <> n" },
  /* from schema 5 on the register refuses a duplicate: what this finds
   * was given by an earlier station and stays (st-db-schema.c, 5) */
  { "product serials unique per product", ST_DB_SQL_DUPLICATE_PRODUCT_SERIALS },
  { "product sequences ahead of the numbers used",
    "SELECT b.product, max (u.product_seq), coalesce (s.next, 1) FROM units u"
    " JOIN batches b ON b.id = u.batch_id LEFT JOIN product_sequences s ON s.product = b.product"
    " WHERE u.product_seq > 0 GROUP BY b.product HAVING max (u.product_seq) >= coalesce (s.next, 1)" },
};

static gboolean st_db_check_records (StDb *db, GString *report, GError **error);

gboolean
st_db_check (StDb *db, GString *report, GError **error)
{
  g_autoptr(GString) local = g_string_new (NULL);
  GString *out = report != NULL ? report : local;
  g_autoptr(GError) records_error = NULL;
  gboolean records_ok = st_db_check_records (db, out, &records_error);
  if (!records_ok && !g_error_matches (records_error, ST_ERROR, ST_ERROR_VERIFY_FAILED))
    {
      g_propagate_error (error, g_steal_pointer (&records_error));
      return FALSE;
    }
  g_autoptr(GError) audit_error = NULL;
  if (!st_db_audit_verify (db, out, NULL, &audit_error)
      && !g_error_matches (audit_error, ST_ERROR, ST_ERROR_VERIFY_FAILED))
    {
      g_propagate_error (error, g_steal_pointer (&audit_error));
      return FALSE;
    }
  if (records_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&records_error));
      return FALSE;
    }
  if (audit_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&audit_error));
      return FALSE;
    }
  return TRUE;
}

static gboolean
st_db_check_records (StDb *db, GString *report, GError **error)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&db->rlock);
  g_autoptr(GString) local = g_string_new (NULL);
  GString *out = report != NULL ? report : local;
  guint problems = 0;

  {
    g_autoptr(StSqliteStmtRef) stmt = st_db_conn_prepare (db->r, "PRAGMA integrity_check", error);
    if (stmt == NULL)
      return FALSE;
    gboolean ok = FALSE;
    for (;;)
      {
        gboolean row = FALSE;
        if (!st_db_step (db->r, stmt, &row, "cannot check the database's integrity", error))
          return FALSE;
        if (!row)
          break;
        const char *line = (const char *) sqlite3_column_text (stmt, 0);
        if (g_strcmp0 (line, "ok") == 0)
          ok = TRUE;
        else
          {
            g_string_append_printf (out, "integrity: %s\n", line != NULL ? line : "(null)");
            problems++;
          }
      }
    if (ok)
      g_string_append (out, "integrity: ok\n");
  }

  for (gsize i = 0; i < G_N_ELEMENTS (st_db_checks); i++)
    {
      g_autoptr(StSqliteStmtRef) stmt = st_db_conn_prepare (db->r, st_db_checks[i].sql, error);
      if (stmt == NULL)
        return FALSE;
      guint n = 0;
      for (;;)
        {
          gboolean row = FALSE;
          if (!st_db_step (db->r, stmt, &row, st_db_checks[i].name, error))
            return FALSE;
          if (!row)
            break;
          n++;
          g_string_append_printf (out, "%s: FAILED:", st_db_checks[i].name);
          for (int col = 0; col < sqlite3_column_count (stmt); col++)
            {
              const unsigned char *v = sqlite3_column_text (stmt, col);
              g_string_append_printf (out, " %s", v != NULL ? (const char *) v : "NULL");
            }
          g_string_append_c (out, '\n');
        }
      if (n == 0)
        g_string_append_printf (out, "%s: ok\n", st_db_checks[i].name);
      problems += n;
    }

  if (problems > 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "%s failed %u check(s): stop issuing and have it examined; see the report",
                   db->path, problems);
      return FALSE;
    }
  return TRUE;
}

/* ---------- test hooks (st-db-private.h) ---------- */

void
st_db_pragmas_clear (StDbPragmas *p)
{
  g_clear_pointer (&p->journal_mode, g_free);
}

static gboolean
st_db_conn_query_pragmas (StDbConn *c, StDbPragmas *out, GError **error)
{
  g_autoptr(StSqliteStmtRef) stmt = st_db_conn_prepare (c, "PRAGMA journal_mode", error);
  gboolean row = FALSE;
  if (stmt == NULL || !st_db_step (c, stmt, &row, "PRAGMA journal_mode", error))
    return FALSE;
  out->journal_mode = row ? st_db_col_text (stmt, 0) : NULL;
  return st_db_conn_query_int (c, "PRAGMA synchronous", &out->synchronous, error)
         && st_db_conn_query_int (c, "PRAGMA foreign_keys", &out->foreign_keys, error)
         && st_db_conn_query_int (c, "PRAGMA busy_timeout", &out->busy_timeout_ms, error)
         && st_db_conn_query_int (c, "PRAGMA query_only", &out->query_only, error)
         && st_db_conn_query_int (c, "PRAGMA temp_store", &out->temp_store, error)
         && st_db_conn_query_int (c, "PRAGMA cache_size", &out->cache_size, error)
         && st_db_conn_query_int (c, "PRAGMA user_version", &out->user_version, error);
}

static gboolean
st_db_w_query_pragmas (StDbConn *c, gpointer data, gint64 *result, GError **error)
{
  return st_db_conn_query_pragmas (c, data, error);
}

gboolean
st_db_query_pragmas (StDb *db, gboolean writer, StDbPragmas *out, GError **error)
{
  memset (out, 0, sizeof *out);
  if (writer)
    return st_db_write (db, st_db_w_query_pragmas, out, NULL, error);
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&db->rlock);
  return st_db_conn_query_pragmas (db->r, out, error);
}

static gboolean
st_db_w_set_max_page_count (StDbConn *c, gpointer data, gint64 *result, GError **error)
{
  gint64 pages = *(gint64 *) data;
  if (pages == 0 && !st_db_conn_query_int (c, "PRAGMA page_count", &pages, error))
    return FALSE;
  if (pages < 0)
    pages = G_MAXINT32;
  /* a pragma's argument cannot be bound: this formats an integer only */
  g_autofree gchar *sql = g_strdup_printf ("PRAGMA max_page_count = %" G_GINT64_FORMAT, pages);
  g_autoptr(sqlite3_stmt) stmt = NULL;
  int rc = sqlite3_prepare_v2 (c->db, sql, -1, &stmt, NULL);
  if (rc == SQLITE_OK && (rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      *result = sqlite3_column_int64 (stmt, 0);
      return TRUE;
    }
  st_db_set_error_rc (error, c, sqlite3_extended_errcode (c->db), "cannot set max_page_count");
  return FALSE;
}

gint64
st_db_set_max_page_count (StDb *db, gint64 pages, GError **error)
{
  gint64 result = 0;
  if (!st_db_write (db, st_db_w_set_max_page_count, &pages, &result, error))
    return -1;
  return result;
}

void
st_db_writer_hold (StDb *db, gboolean hold)
{
  g_mutex_lock (&db->qlock);
  db->hold = hold;
  g_cond_broadcast (&db->qcond);
  g_mutex_unlock (&db->qlock);
}

guint
st_db_writer_queued (StDb *db)
{
  g_mutex_lock (&db->qlock);
  guint n = g_queue_get_length (&db->queue);
  g_mutex_unlock (&db->qlock);
  return n;
}

/* ---------- a unit in one write ---------- */

static gboolean
st_db_check_unit_new (const StDbUnitNew *u, GError **error)
{
  return st_db_check_text ("the port", u->port, TRUE, ST_DB_NAME_MAX, error)
         && st_db_check_hex ("the device uid", u->uid_hex, 0, ST_DB_UID_HEX_MAX, error)
         && st_db_check_text ("the model", u->model, FALSE, ST_DB_NAME_MAX, error)
         && st_db_check_text ("the firmware version", u->fw_version, FALSE, ST_DB_NAME_MAX, error)
         && st_db_check_text ("the operator", u->operator_name, TRUE, ST_DB_NAME_MAX, error);
}

typedef struct {
  const StDbUnitNew *unit;
  CertReserve reserve;
  gint64 unit_id;
} UnitBeginReserve;

static gboolean
st_db_w_unit_begin_reserve (StDbConn *c, gpointer data, gint64 *result, GError **error)
{
  UnitBeginReserve *a = data;
  UnitBegin b = { a->unit->batch_id, a->unit->port, a->unit->uid_hex, a->unit->model,
                  a->unit->fw_version, a->unit->operator_name };
  /* Both run inside this request's SAVEPOINT: a refused reservation leaves
   * no unit behind. */
  if (!st_db_w_unit_begin_raw (c, &b, &a->unit_id, error))
    return FALSE;
  a->reserve.unit_id = a->unit_id;
  a->reserve.operator_name = a->unit->operator_name;
  a->reserve.port = a->unit->port;
  return st_db_w_cert_reserve (c, &a->reserve, result, error);
}

gint64
st_db_unit_begin_reserve (StDb *db, const StDbUnitNew *unit, const char *issuer,
                          const char *serial_hex, const char *pubkey_sha256, GBytes *tbs,
                          const char *product_serial, gint64 product_seq,
                          gboolean allow_reprovision, gint64 *unit_id, GError **error)
{
  UnitBeginReserve a = {
    .unit = unit,
    .reserve = { 0, issuer, serial_hex, pubkey_sha256, product_serial, tbs, product_seq,
                 allow_reprovision },
  };
  gint64 id = 0;
  if (!st_db_check_unit_new (unit, error)
      || !st_db_check_hex ("the issuer's SHA-256", issuer, 64, 64, error)
      || !st_db_check_serial (serial_hex, error)
      || !st_db_check_hex ("the public key's SHA-256", pubkey_sha256, 64, 64, error)
      || !st_db_check_blob ("the to-be-signed certificate", tbs, error)
      || !st_db_check_text ("the product serial", product_serial, FALSE, ST_DB_NAME_MAX, error)
      || !st_db_write (db, st_db_w_unit_begin_reserve, &a, &id, error))
    {
      g_prefix_error (error, "cannot reserve a certificate for unit %s on %s: ",
                      unit->uid_hex != NULL ? unit->uid_hex : "(none)",
                      unit->port != NULL ? unit->port : "(no port)");
      return 0;
    }
  *unit_id = a.unit_id;
  return id;
}

typedef struct {
  const StDbUnitNew *unit;
  UnitFail fail;
} UnitAddFailed;

static gboolean
st_db_w_unit_add_failed (StDbConn *c, gpointer data, gint64 *result, GError **error)
{
  UnitAddFailed *a = data;
  UnitBegin b = { a->unit->batch_id, a->unit->port, a->unit->uid_hex, a->unit->model,
                  a->unit->fw_version, a->unit->operator_name };
  if (!st_db_w_unit_begin_raw (c, &b, result, error))
    return FALSE;
  a->fail.unit_id = *result;
  a->fail.quiet = TRUE;
  if (!st_db_w_unit_fail (c, &a->fail, NULL, error))
    return FALSE;
  g_autofree gchar *payload = st_db_payload ("iissssss", "unit", *result, "batch", b.batch_id,
                                             "uid", b.uid, "port", b.port, "step", a->fail.step,
                                             "reason", a->fail.reason, "model", b.model,
                                             "fw_version", b.fw_version);
  return st_db_w_audit (c, b.operator_name, "unit-fail", payload, error);
}

gint64
st_db_unit_add_failed (StDb *db, const StDbUnitNew *unit, const char *step, const char *reason,
                       const char *detail, GError **error)
{
  UnitAddFailed a = { .unit = unit, .fail = { 0, step, reason, detail, ST_DB_CERT_VOID } };
  gint64 id = 0;
  if (!st_db_check_unit_new (unit, error)
      || !st_db_check_text ("the failed step", step, TRUE, ST_DB_NAME_MAX, error)
      || !st_db_check_text ("the failure reason", reason, TRUE, ST_DB_NAME_MAX, error)
      || !st_db_check_text ("the failure detail", detail, FALSE, ST_DB_DETAIL_MAX, error)
      || !st_db_write (db, st_db_w_unit_add_failed, &a, &id, error))
    {
      g_prefix_error (error, "cannot record unit %s on %s as failed: ",
                      unit->uid_hex != NULL ? unit->uid_hex : "(none)",
                      unit->port != NULL ? unit->port : "(no port)");
      return 0;
    }
  return id;
}

/* ---------- the quota of voided certificates ---------- */

gboolean
st_db_batch_over_void_cap (StDb *db, gint64 batch_id, gint64 *voided, gint64 *cap)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&db->rlock);
  gint64 v = 0, k = 0;
  if (!st_db_conn_void_cap (db->r, batch_id, &v, &k, NULL))
    return FALSE;
  if (voided != NULL)
    *voided = v;
  if (cap != NULL)
    *cap = k;
  return v > k;
}

typedef struct {
  gint64 batch_id;
  const char *by;
} AllowVoids;

static gboolean
st_db_w_allow_more_voids (StDbConn *c, gpointer data, gint64 *result, GError **error)
{
  AllowVoids *a = data;
  gint64 voided = 0, cap = 0;
  if (!st_db_w_void_cap (c, a->batch_id, &voided, &cap, error))
    return FALSE;
  g_autoptr(StSqliteStmtRef) stmt = st_db_conn_prepare (c,
      "UPDATE batches SET void_allowance = void_allowance + ? WHERE id = ?", error);
  gint64 quantity = 0;
  g_autofree gchar *state = NULL;
  if (!st_db_w_batch_state (c, a->batch_id, &state, &quantity, error))
    return FALSE;
  gint64 step = st_db_void_cap_base (quantity);
  if (stmt == NULL || !st_db_bind (c, stmt, error, "ii", step, a->batch_id)
      || !st_db_step (c, stmt, NULL, "cannot raise the batch's cap of voided certificates", error))
    return FALSE;
  *result = cap + step;
  g_autofree gchar *payload = st_db_payload ("iiii", "batch", a->batch_id, "voided", voided,
                                             "cap_was", cap, "cap", cap + step);
  return st_db_w_audit (c, a->by, "batch-allow-more-voids", payload, error);
}

gboolean
st_db_batch_allow_more_voids (StDb *db, gint64 batch_id, const char *by, gint64 *new_cap,
                              GError **error)
{
  AllowVoids a = { batch_id, by };
  gint64 cap = 0;
  if (!st_db_check_text ("the operator", by, TRUE, ST_DB_NAME_MAX, error)
      || !st_db_write (db, st_db_w_allow_more_voids, &a, &cap, error))
    {
      g_prefix_error (error, "cannot allow more voided certificates in batch %" G_GINT64_FORMAT ": ",
                      batch_id);
      return FALSE;
    }
  if (new_cap != NULL)
    *new_cap = cap;
  return TRUE;
}

/* ---------- operators ---------- */

void
st_db_operator_free (StDbOperator *op)
{
  if (op == NULL)
    return;
  g_free (op->name);
  g_free (op->role);
  if (op->pin_hash != NULL)
    st_memwipe (op->pin_hash, strlen (op->pin_hash));
  g_free (op->pin_hash);
  g_free (op);
}

static gboolean
st_db_check_role (const char *role, GError **error)
{
  static const char *const roles[] = { "operator", "lead", "qa", "admin" };
  for (gsize i = 0; i < G_N_ELEMENTS (roles); i++)
    if (g_strcmp0 (role, roles[i]) == 0)
      return TRUE;
  g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
               "'%s' is not a role: use operator, lead, qa or admin", role != NULL ? role : "");
  return FALSE;
}

static gboolean
st_db_check_operator_name (const char *name, GError **error)
{
  if (!st_db_check_text ("the operator name", name, TRUE, ST_DB_OPERATOR_NAME_MAX, error))
    return FALSE;
  for (const char *p = name; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && *p != '.' && *p != '-' && *p != '_')
      {
        g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                     "operator name '%s' may hold only letters, digits, '.', '-' and '_'", name);
        return FALSE;
      }
  return TRUE;
}

#define ST_DB_OPERATOR_SELECT \
  "SELECT id, name, role, pin_hash, failed_attempts, created_at, updated_at, locked FROM operators "

static StDbOperator *
st_db_operator_from_row (sqlite3_stmt *stmt)
{
  StDbOperator *op = g_new0 (StDbOperator, 1);
  op->id = sqlite3_column_int64 (stmt, 0);
  op->name = st_db_col_text (stmt, 1);
  op->role = st_db_col_text (stmt, 2);
  op->pin_hash = st_db_col_text (stmt, 3);
  op->failed_attempts = sqlite3_column_int64 (stmt, 4);
  op->created_at = sqlite3_column_int64 (stmt, 5);
  op->updated_at = sqlite3_column_int64 (stmt, 6);
  op->locked = sqlite3_column_int64 (stmt, 7) != 0;
  return op;
}

gint64
st_db_operator_count (StDb *db, GError **error)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&db->rlock);
  gint64 n = 0;
  if (!st_db_conn_query_int (db->r, "SELECT count(*) FROM operators", &n, error))
    return -1;
  return n;
}

StDbOperator *
st_db_operator_get (StDb *db, const char *name, GError **error)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&db->rlock);
  gboolean row = FALSE;
  g_autoptr(StSqliteStmtRef) stmt = st_db_conn_query (db->r,
      ST_DB_OPERATOR_SELECT "WHERE name = ?",
      "cannot read the operator", &row, error, "t", name);
  if (stmt == NULL)
    return NULL;
  if (!row)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                   "there is no operator '%s' (see 'station operator list')", name != NULL ? name : "");
      return NULL;
    }
  return st_db_operator_from_row (stmt);
}

GPtrArray *
st_db_operator_list (StDb *db, GError **error)
{
  return st_db_query_list (db, ST_DB_OPERATOR_SELECT "ORDER BY name", "cannot list the operators",
                           FALSE, 0, NULL, (StDbFromRow) st_db_operator_from_row,
                           (GDestroyNotify) st_db_operator_free, error);
}

typedef struct {
  const char *name, *role, *pin_hash, *by;
  gint64 max_attempts;
  gint64 attempts;
  gboolean locked;
} OperatorOp;

/* The operator's role, locked flag and failed attempts; NOT_FOUND if none. */
static gboolean
st_db_w_operator_state (StDbConn *c, const char *name, gchar **role, gboolean *locked,
                        gint64 *attempts, GError **error)
{
  gboolean row = FALSE;
  g_autoptr(StSqliteStmtRef) stmt = st_db_conn_query (c,
      "SELECT role, locked, failed_attempts FROM operators WHERE name = ?",
      "cannot read the operator", &row, error, "t", name);
  if (stmt == NULL)
    return FALSE;
  if (!row)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND, "there is no operator '%s'", name);
      return FALSE;
    }
  *role = st_db_col_text (stmt, 0);
  *locked = sqlite3_column_int64 (stmt, 1) != 0;
  *attempts = sqlite3_column_int64 (stmt, 2);
  return TRUE;
}

static gboolean
st_db_w_operator_add (StDbConn *c, gpointer data, gint64 *result, GError **error)
{
  OperatorOp *a = data;
  if (a->by == NULL)
    {
      gint64 n = 0;
      if (!st_db_conn_query_int (c, "SELECT count(*) FROM operators", &n, error))
        return FALSE;
      if (n > 0)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                       "the station already has operators: only an admin adds more "
                       "(--operator ADMIN with the admin's PIN)");
          return FALSE;
        }
      if (g_strcmp0 (a->role, "admin") != 0)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                       "the first operator must be an admin (--role admin): only an admin can "
                       "add the others");
          return FALSE;
        }
    }
  {
    gboolean row = FALSE;
    g_autoptr(StSqliteStmtRef) stmt = st_db_conn_query (c,
        "SELECT 1 FROM operators WHERE name = ?",
        "cannot read the operators", &row, error, "t", a->name);
    if (stmt == NULL)
      return FALSE;
    if (row)
      {
        g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                     "there is already an operator '%s': choose another name", a->name);
        return FALSE;
      }
  }
  gint64 now = st_db_now ();
  if (!st_db_conn_run (c,
      "INSERT INTO operators (name, role, pin_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
      "cannot record the operator", error, "tttii", a->name, a->role, a->pin_hash, now, now))
    return FALSE;
  *result = sqlite3_last_insert_rowid (c->db);
  g_autofree gchar *payload = st_db_payload ("ssb", "name", a->name, "role", a->role,
                                             "first", a->by == NULL);
  return st_db_w_audit (c, a->by != NULL ? a->by : a->name, "operator-add", payload, error);
}

gboolean
st_db_operator_add (StDb *db, const char *name, const char *role, const char *pin_hash,
                    const char *by, GError **error)
{
  OperatorOp a = { .name = name, .role = role, .pin_hash = pin_hash, .by = by };
  if (!st_db_check_operator_name (name, error) || !st_db_check_role (role, error)
      || !st_db_check_text ("the PIN hash", pin_hash, TRUE, ST_DB_NAME_MAX, error)
      || (by != NULL && !st_db_check_text ("the admin", by, TRUE, ST_DB_NAME_MAX, error))
      || !st_db_write (db, st_db_w_operator_add, &a, NULL, error))
    {
      g_prefix_error (error, "cannot add operator '%s': ", name != NULL ? name : "");
      return FALSE;
    }
  return TRUE;
}

static gboolean
st_db_w_operator_set_role (StDbConn *c, gpointer data, gint64 *result, GError **error)
{
  OperatorOp *a = data;
  g_autofree gchar *role = NULL;
  gboolean locked = FALSE;
  gint64 attempts = 0;
  if (!st_db_w_operator_state (c, a->name, &role, &locked, &attempts, error))
    return FALSE;
  if (!st_db_conn_run (c,
      "UPDATE operators SET role = ?, updated_at = ? WHERE name = ?",
      "cannot change the role", error, "tit", a->role, st_db_now (), a->name))
    return FALSE;
  g_autofree gchar *payload = st_db_payload ("sss", "name", a->name, "from", role, "to", a->role);
  return st_db_w_audit (c, a->by, "operator-set-role", payload, error);
}

gboolean
st_db_operator_set_role (StDb *db, const char *name, const char *role, const char *by,
                         GError **error)
{
  OperatorOp a = { .name = name, .role = role, .by = by };
  if (!st_db_check_operator_name (name, error) || !st_db_check_role (role, error)
      || !st_db_check_text ("the admin", by, TRUE, ST_DB_NAME_MAX, error)
      || !st_db_write (db, st_db_w_operator_set_role, &a, NULL, error))
    {
      g_prefix_error (error, "cannot change the role of '%s': ", name != NULL ? name : "");
      return FALSE;
    }
  return TRUE;
}

static gboolean
st_db_w_operator_unlock (StDbConn *c, gpointer data, gint64 *result, GError **error)
{
  OperatorOp *a = data;
  g_autofree gchar *role = NULL;
  gboolean locked = FALSE;
  gint64 attempts = 0;
  if (!st_db_w_operator_state (c, a->name, &role, &locked, &attempts, error))
    return FALSE;
  if (!st_db_conn_run (c,
      "UPDATE operators SET locked = 0, failed_attempts = 0, updated_at = ? WHERE name = ?",
      "cannot unlock the operator", error, "it", st_db_now (), a->name))
    return FALSE;
  g_autofree gchar *payload = st_db_payload ("sbi", "name", a->name, "was_locked", locked,
                                             "failed_attempts_were", attempts);
  return st_db_w_audit (c, a->by, "operator-unlock", payload, error);
}

gboolean
st_db_operator_unlock (StDb *db, const char *name, const char *by, GError **error)
{
  OperatorOp a = { .name = name, .by = by };
  if (!st_db_check_operator_name (name, error)
      || !st_db_check_text ("the admin", by, TRUE, ST_DB_NAME_MAX, error)
      || !st_db_write (db, st_db_w_operator_unlock, &a, NULL, error))
    {
      g_prefix_error (error, "cannot unlock '%s': ", name != NULL ? name : "");
      return FALSE;
    }
  return TRUE;
}

static gboolean
st_db_w_operator_login_failed (StDbConn *c, gpointer data, gint64 *result, GError **error)
{
  OperatorOp *a = data;
  g_autofree gchar *role = NULL;
  gboolean locked = FALSE;
  gint64 attempts = 0;
  if (!st_db_w_operator_state (c, a->name, &role, &locked, &attempts, error))
    return FALSE;
  a->attempts = attempts + 1;
  a->locked = locked || a->attempts >= a->max_attempts;
  if (!st_db_conn_run (c,
      "UPDATE operators SET failed_attempts = ?, locked = ?, updated_at = ? WHERE name = ?",
      "cannot count the wrong PIN", error, "iiit", a->attempts, (gint64) a->locked, st_db_now (), a->name))
    return FALSE;
  g_autofree gchar *payload = st_db_payload ("sib", "name", a->name, "failed_attempts", a->attempts,
                                             "locked", a->locked);
  return st_db_w_audit (c, a->name, a->locked && !locked ? "operator-locked" : "login-failed",
                        payload, error);
}

gboolean
st_db_operator_login_failed (StDb *db, const char *name, gint64 max_attempts, gint64 *attempts,
                             gboolean *locked, GError **error)
{
  OperatorOp a = { .name = name, .max_attempts = max_attempts };
  if (!st_db_check_operator_name (name, error)
      || !st_db_write (db, st_db_w_operator_login_failed, &a, NULL, error))
    {
      g_prefix_error (error, "cannot record a wrong PIN for '%s': ", name != NULL ? name : "");
      return FALSE;
    }
  if (attempts != NULL)
    *attempts = a.attempts;
  if (locked != NULL)
    *locked = a.locked;
  return TRUE;
}

static gboolean
st_db_w_operator_login_ok (StDbConn *c, gpointer data, gint64 *result, GError **error)
{
  OperatorOp *a = data;
  if (!st_db_conn_run (c,
      "UPDATE operators SET failed_attempts = 0, updated_at = ? WHERE name = ? AND locked = 0",
      "cannot reset the wrong PIN count", error, "it", st_db_now (), a->name))
    return FALSE;
  g_autofree gchar *payload = st_db_payload ("s", "name", a->name);
  return st_db_w_audit (c, a->name, "login-attempts-reset", payload, error);
}

gboolean
st_db_operator_login_ok (StDb *db, const char *name, GError **error)
{
  g_autoptr(StDbOperator) op = st_db_operator_get (db, name, error);
  if (op == NULL)
    return FALSE;
  if (op->failed_attempts == 0)
    return TRUE;
  OperatorOp a = { .name = name };
  return st_db_write (db, st_db_w_operator_login_ok, &a, NULL, error);
}

/* ---------- the audit trail: reads, checkpoints, verification ---------- */

void
st_db_audit_entry_free (StDbAuditEntry *e)
{
  if (e == NULL)
    return;
  g_free (e->operator_name);
  g_free (e->event);
  g_free (e->payload);
  g_free (e->prev_hash);
  g_free (e->hash);
  g_free (e);
}

static void
st_db_audit_entry_fill (StDbAuditEntry *e, sqlite3_stmt *stmt)
{
  e->seq = sqlite3_column_int64 (stmt, 0);
  e->at = sqlite3_column_int64 (stmt, 1);
  e->operator_name = st_db_col_text (stmt, 2);
  e->event = st_db_col_text (stmt, 3);
  e->payload = st_db_col_text (stmt, 4);
  e->prev_hash = st_db_col_text (stmt, 5);
  e->hash = st_db_col_text (stmt, 6);
}

#define ST_DB_AUDIT_SELECT "SELECT seq, at, operator, event, payload, prev_hash, hash FROM audit "

gboolean
st_db_audit_head (StDb *db, gint64 *seq, gchar **hash, GError **error)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&db->rlock);
  g_autoptr(StSqliteStmtRef) stmt = st_db_conn_prepare (db->r,
      "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", error);
  gboolean row = FALSE;
  if (stmt == NULL || !st_db_step (db->r, stmt, &row, "cannot read the audit log", error))
    return FALSE;
  *seq = row ? sqlite3_column_int64 (stmt, 0) : 0;
  *hash = row ? st_db_col_text (stmt, 1) : g_strdup (ST_DB_AUDIT_GENESIS);
  return TRUE;
}

StDbAuditEntry *
st_db_audit_get (StDb *db, gint64 seq, GError **error)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&db->rlock);
  gboolean row = FALSE;
  g_autoptr(StSqliteStmtRef) stmt = st_db_conn_query (db->r,
      ST_DB_AUDIT_SELECT "WHERE seq = ?",
      "cannot read the audit log", &row, error, "i", seq);
  if (stmt == NULL)
    return NULL;
  if (!row)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND, "the audit log has no entry %" G_GINT64_FORMAT, seq);
      return NULL;
    }
  StDbAuditEntry *e = g_new0 (StDbAuditEntry, 1);
  st_db_audit_entry_fill (e, stmt);
  return e;
}

/* Reads in pages so that the reader lock is never held for long. */
#define ST_DB_AUDIT_PAGE 512

gboolean
st_db_audit_foreach (StDb *db, StDbAuditFunc func, gpointer user_data, GError **error)
{
  gint64 after = 0;
  for (;;)
    {
      g_autoptr(GPtrArray) page = g_ptr_array_new_with_free_func ((GDestroyNotify) st_db_audit_entry_free);
      {
        g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&db->rlock);
        g_autoptr(StSqliteStmtRef) stmt = st_db_conn_prepare (db->r,
            ST_DB_AUDIT_SELECT "WHERE seq > ? ORDER BY seq LIMIT " G_STRINGIFY (ST_DB_AUDIT_PAGE), error);
        if (stmt == NULL || !st_db_bind (db->r, stmt, error, "i", after))
          return FALSE;
        for (;;)
          {
            gboolean row = FALSE;
            if (!st_db_step (db->r, stmt, &row, "cannot read the audit log", error))
              return FALSE;
            if (!row)
              break;
            StDbAuditEntry *e = g_new0 (StDbAuditEntry, 1);
            st_db_audit_entry_fill (e, stmt);
            g_ptr_array_add (page, e);
          }
      }
      if (page->len == 0)
        return TRUE;
      for (guint i = 0; i < page->len; i++)
        {
          StDbAuditEntry *e = g_ptr_array_index (page, i);
          if (!func (e, user_data, error))
            return FALSE;
          after = e->seq;
        }
    }
}

static gboolean
st_db_w_audit_add (StDbConn *c, gpointer data, gint64 *result, GError **error)
{
  EventAdd *a = data;
  return st_db_w_audit (c, a->operator_name, a->event, a->payload, error);
}

gboolean
st_db_audit_add (StDb *db, const char *operator_name, const char *event, const char *payload_json,
                 GError **error)
{
  EventAdd a = { operator_name, event, payload_json };
  if (!st_db_check_text ("the operator", operator_name, FALSE, ST_DB_NAME_MAX, error)
      || !st_db_check_text ("the event", event, TRUE, ST_DB_NAME_MAX, error)
      || !st_db_check_text ("the payload", payload_json, FALSE, ST_DB_DETAIL_MAX, error)
      || !st_db_check_json (payload_json, error)
      || !st_db_write (db, st_db_w_audit_add, &a, NULL, error))
    {
      g_prefix_error (error, "cannot audit '%s': ", event != NULL ? event : "(none)");
      return FALSE;
    }
  return TRUE;
}

void
st_db_audit_checkpoint_free (StDbAuditCheckpoint *cp)
{
  if (cp == NULL)
    return;
  g_free (cp->hash);
  g_free (cp->reason);
  g_clear_pointer (&cp->signature, g_bytes_unref);
  g_clear_pointer (&cp->signer_cert, g_bytes_unref);
  g_free (cp);
}

typedef struct {
  gint64 seq;
  const char *hash, *reason;
  GBytes *signature, *signer_cert;
} CheckpointAdd;

static gboolean
st_db_w_checkpoint_add (StDbConn *c, gpointer data, gint64 *result, GError **error)
{
  CheckpointAdd *a = data;
  {
    gboolean row = FALSE;
    g_autoptr(StSqliteStmtRef) stmt = st_db_conn_query (c,
        "SELECT hash FROM audit WHERE seq = ?",
        "cannot read the audit log", &row, error, "i", a->seq);
    if (stmt == NULL)
      return FALSE;
    if (!row || g_strcmp0 ((const char *) sqlite3_column_text (stmt, 0), a->hash) != 0)
      {
        g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                     "audit entry %" G_GINT64_FORMAT " is %s: the checkpoint does not match the log",
                     a->seq, row ? "not the one signed" : "missing");
        return FALSE;
      }
  }
  if (!st_db_conn_run (c,
      "INSERT INTO audit_checkpoints (seq, hash, at, reason, signature, signer_cert)"
      " VALUES (?, ?, ?, ?, ?, ?)",
      "cannot record the audit checkpoint", error, "ititbb", a->seq, a->hash, st_db_now (), a->reason,
                      a->signature, a->signer_cert))
    return FALSE;
  *result = sqlite3_last_insert_rowid (c->db);
  return TRUE;
}

gboolean
st_db_audit_checkpoint_add (StDb *db, gint64 seq, const char *hash, const char *reason,
                            GBytes *signature, GBytes *signer_cert, GError **error)
{
  CheckpointAdd a = { seq, hash, reason != NULL ? reason : "checkpoint", signature, signer_cert };
  if (!st_db_check_hex ("the checkpoint hash", hash, 64, 64, error)
      || !st_db_check_text ("the checkpoint reason", a.reason, TRUE, ST_DB_NAME_MAX, error)
      || !st_db_check_blob ("the checkpoint signature", signature, error)
      || !st_db_check_blob ("the signer certificate", signer_cert, error)
      || !st_db_write (db, st_db_w_checkpoint_add, &a, NULL, error))
    {
      g_prefix_error (error, "cannot record the audit checkpoint of entry %" G_GINT64_FORMAT ": ", seq);
      return FALSE;
    }
  g_mutex_lock (&db->qlock);
  db->checkpoint_seq = MAX (db->checkpoint_seq, seq);
  g_mutex_unlock (&db->qlock);
  return TRUE;
}

#define ST_DB_CHECKPOINT_SELECT \
  "SELECT id, seq, at, hash, reason, signature, signer_cert FROM audit_checkpoints "

static GPtrArray *
st_db_checkpoint_query (StDb *db, const char *sql, GError **error)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&db->rlock);
  g_autoptr(StSqliteStmtRef) stmt = st_db_conn_prepare (db->r, sql, error);
  if (stmt == NULL)
    return NULL;
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) st_db_audit_checkpoint_free);
  for (;;)
    {
      gboolean row = FALSE;
      if (!st_db_step (db->r, stmt, &row, "cannot read the audit checkpoints", error))
        return NULL;
      if (!row)
        break;
      StDbAuditCheckpoint *cp = g_new0 (StDbAuditCheckpoint, 1);
      cp->id = sqlite3_column_int64 (stmt, 0);
      cp->seq = sqlite3_column_int64 (stmt, 1);
      cp->at = sqlite3_column_int64 (stmt, 2);
      cp->hash = st_db_col_text (stmt, 3);
      cp->reason = st_db_col_text (stmt, 4);
      cp->signature = st_db_col_bytes (stmt, 5);
      cp->signer_cert = st_db_col_bytes (stmt, 6);
      g_ptr_array_add (out, cp);
    }
  return g_steal_pointer (&out);
}

GPtrArray *
st_db_audit_checkpoint_list (StDb *db, GError **error)
{
  return st_db_checkpoint_query (db, ST_DB_CHECKPOINT_SELECT "ORDER BY id", error);
}

StDbAuditCheckpoint *
st_db_audit_checkpoint_latest (StDb *db, GError **error)
{
  g_autoptr(GPtrArray) list = st_db_checkpoint_query (db, ST_DB_CHECKPOINT_SELECT
                                                      "ORDER BY seq DESC, id DESC LIMIT 1", error);
  if (list == NULL)
    return NULL;
  if (list->len == 0)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_NOT_FOUND, "the audit log has no signed checkpoint yet");
      return NULL;
    }
  return g_ptr_array_steal_index (list, 0);
}

#define ST_DB_AUDIT_REPORT_MAX 20

typedef struct {
  GString *report;
  guint problems;
  gint64 n, last_seq;
  gchar *last_hash;
} AuditVerify;

G_GNUC_PRINTF (2, 3) static void
st_db_audit_problem (AuditVerify *v, const char *fmt, ...)
{
  v->problems++;
  if (v->problems > ST_DB_AUDIT_REPORT_MAX)
    return;
  va_list ap;
  va_start (ap, fmt);
  g_string_append (v->report, "audit chain: FAILED: ");
  g_string_append_vprintf (v->report, fmt, ap);
  g_string_append_c (v->report, '\n');
  va_end (ap);
}

static gboolean
st_db_audit_verify_entry (const StDbAuditEntry *e, gpointer user_data, GError **error)
{
  AuditVerify *v = user_data;
  v->n++;
  if (e->seq != v->last_seq + 1)
    st_db_audit_problem (v, "entries %" G_GINT64_FORMAT " to %" G_GINT64_FORMAT " are missing "
                         "(deleted): the sequence jumps from %" G_GINT64_FORMAT " to %" G_GINT64_FORMAT,
                         v->last_seq + 1, e->seq - 1, v->last_seq, e->seq);
  else if (g_strcmp0 (e->prev_hash, v->last_hash) != 0)
    st_db_audit_problem (v, "entry %" G_GINT64_FORMAT " does not follow entry %" G_GINT64_FORMAT
                         ": its prev_hash is not that entry's hash", e->seq, v->last_seq);
  g_autofree gchar *hash = st_db_audit_hash (e->seq, e->at, e->operator_name, e->event, e->payload,
                                             e->prev_hash);
  if (g_strcmp0 (hash, e->hash) != 0)
    st_db_audit_problem (v, "entry %" G_GINT64_FORMAT " (%s by %s) was changed: its contents do not "
                         "match its hash", e->seq, e->event, e->operator_name);
  v->last_seq = e->seq;
  g_free (v->last_hash);
  v->last_hash = g_strdup (e->hash);
  return TRUE;
}

gboolean
st_db_audit_verify (StDb *db, GString *report, gint64 *n_entries, GError **error)
{
  g_autoptr(GString) local = g_string_new (NULL);
  AuditVerify v = { .report = report != NULL ? report : local,
                    .last_hash = g_strdup (ST_DB_AUDIT_GENESIS) };
  if (!st_db_audit_foreach (db, st_db_audit_verify_entry, &v, error))
    {
      g_free (v.last_hash);
      return FALSE;
    }
  g_free (v.last_hash);
  g_autoptr(GPtrArray) cps = st_db_audit_checkpoint_list (db, error);
  if (cps == NULL)
    return FALSE;
  for (guint i = 0; i < cps->len; i++)
    {
      StDbAuditCheckpoint *cp = g_ptr_array_index (cps, i);
      if (cp->seq > v.last_seq)
        {
          st_db_audit_problem (&v, "the log ends at entry %" G_GINT64_FORMAT " but checkpoint %"
                               G_GINT64_FORMAT " signed entry %" G_GINT64_FORMAT ": the log was "
                               "truncated behind a signed checkpoint", v.last_seq, cp->id, cp->seq);
          continue;
        }
      g_autoptr(GError) local_error = NULL;
      g_autoptr(StDbAuditEntry) e = st_db_audit_get (db, cp->seq, &local_error);
      if (e == NULL && !g_error_matches (local_error, ST_ERROR, ST_ERROR_NOT_FOUND))
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return FALSE;
        }
      if (e == NULL)
        st_db_audit_problem (&v, "entry %" G_GINT64_FORMAT ", signed by checkpoint %" G_GINT64_FORMAT
                             ", is missing", cp->seq, cp->id);
      else if (g_strcmp0 (e->hash, cp->hash) != 0)
        st_db_audit_problem (&v, "entry %" G_GINT64_FORMAT " is not the one checkpoint %" G_GINT64_FORMAT
                             " signed", cp->seq, cp->id);
    }
  if (v.problems > ST_DB_AUDIT_REPORT_MAX)
    g_string_append_printf (v.report, "audit chain: ... %u more problems\n",
                            v.problems - ST_DB_AUDIT_REPORT_MAX);
  if (n_entries != NULL)
    *n_entries = v.n;
  if (v.problems > 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "the audit log of %s failed %u check(s): it was edited, cut or truncated; keep "
                   "the database as it is and call the auditor", db->path, v.problems);
      return FALSE;
    }
  g_string_append_printf (v.report, "audit chain: ok (%" G_GINT64_FORMAT " entries, %u checkpoint(s) "
                          "match)\n", v.n, cps->len);
  return TRUE;
}
