/* The writer: public write functions queue a request and block; the writer
 * thread runs every queued request of a group inside one BEGIN IMMEDIATE
 * transaction, each in its own SAVEPOINT, commits, and only then wakes the
 * callers (docs/architecture.md, Throughput). */
#include "st-db.h"
#include "st-db-private.h"
#include "st-error.h"
#include "st-sqlite.h"

#define ST_DB_WAL_CHECKPOINT_FRAMES 1000   /* SQLite's automatic checkpoint */
#define ST_DB_WAL_RESTART_FRAMES 4000      /* 16 MB of 4 KiB pages */
#define ST_DB_WAL_RESTART_WAIT_MS 20
#define ST_DB_GROUP_MAX 128

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
int
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

gpointer
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
gboolean
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
