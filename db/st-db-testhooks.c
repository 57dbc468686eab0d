/* Hooks for tests/db only (st-db-testhooks.h), built into st_db_test_lib:
 * never linked into the station. */
#include "st-db.h"
#include "st-db-private.h"
#include "st-db-testhooks.h"
#include "st-sqlite.h"

#include <string.h>

/* ---------- test hooks (st-db-testhooks.h) ---------- */

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

void
st_db_replay_set_window (guint records)
{
  st_db_replay_window = records;
}
