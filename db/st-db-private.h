/* What the files of db/ share, and nothing outside db/ sees: the
 * connections, the database object and the writer's interface, the
 * statement helpers, the argument checks. Tests use st-db-testhooks.h. */
#pragma once

#include "st-db.h"
#include "st-sqlite.h"

G_BEGIN_DECLS

#define ST_DB_BUSY_TIMEOUT_MS 5000
#define ST_DB_NAME_MAX 1024           /* work order, operator, port, model, ... */
#define ST_DB_DETAIL_MAX (64 * 1024)  /* fail detail, event payload */
#define ST_DB_PROFILE_MAX (1024 * 1024)
#define ST_DB_CERT_MAX (64 * 1024)    /* tbs and der */
#define ST_DB_UID_HEX_MAX 128

/* A live certificate (issuing, issued, active, unconfirmed or disputed) is
 * one that is neither voided nor revoked (schema 8); an unfinished unit (started, issuing, issued) one that is
 * neither done nor failed. Written so, as the schema's partial indexes are
 * (migration 4): SQLite builds a temporary b-tree for every list of three or
 * more constants each time a statement runs. */
#define ST_DB_LIVE(col) col " NOT IN ('voided','revoked')"
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
  /* st_db_set_progress: set and read by the thread that runs a check */
  StDbProgressFunc progress_func;
  gpointer progress_data;
  /* under seq_lock: product -> the next number this process hands out */
  GMutex seq_lock;
  GHashTable *seq_next;
  /* under seq_lock: batch id -> the next sequential discriminator counter
   * this process hands out (st_db_matter_counter_draw) */
  GHashTable *matter_next;
};

/* --- st-db.c: connections, errors, statements, argument checks --- */
/* A connection of its own (the writer's, the readers'; st-db-replay.c reads
 * one snapshot through one); @path must outlive it. */
StDbConn *st_db_conn_open (const char *path, gboolean readonly, GError **error);
void st_db_conn_free (StDbConn *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StDbConn, st_db_conn_free)
void st_db_set_error_rc (GError **error, StDbConn *c, int rc, const char *what);
sqlite3_stmt *st_db_conn_prepare (StDbConn *c, const char *sql, GError **error);
gboolean st_db_bind (StDbConn *c, sqlite3_stmt *stmt, GError **error, const char *types, ...);
gboolean st_db_step (StDbConn *c, sqlite3_stmt *stmt, gboolean *row, const char *what, GError **error);
sqlite3_stmt *st_db_conn_query (StDbConn *c, const char *sql, const char *what, gboolean *row,
                                GError **error, const char *types, ...);
gboolean st_db_conn_run (StDbConn *c, const char *sql, const char *what, GError **error,
                         const char *types, ...);
gboolean st_db_conn_exec (StDbConn *c, const char *sql, GError **error);
gboolean st_db_conn_query_int (StDbConn *c, const char *sql, gint64 *out, GError **error);
gchar *st_db_col_text (sqlite3_stmt *stmt, int col);
GBytes *st_db_col_bytes (sqlite3_stmt *stmt, int col);
typedef gpointer (*StDbFromRow) (sqlite3_stmt *stmt);
/* Reports progress (st_db_set_progress) at a step's start (@done 0), at
 * its end (@done == @total) and every 4096 rows between. */
void st_db_progress (StDb *db, const char *what, gint64 done, gint64 total);
GPtrArray *st_db_query_list (StDb *db, const char *sql, const char *what, gboolean bind_int,
                             gint64 ival, const char *sval, StDbFromRow from_row,
                             GDestroyNotify free_func, GError **error);
gint64 st_db_now (void);
gboolean st_db_check_text (const char *what, const char *s, gboolean required, gsize max, GError **error);
gboolean st_db_check_hex (const char *what, const char *s, gsize exact_len, gsize max_len, GError **error);
gboolean st_db_check_serial (const char *serial, GError **error);
gboolean st_db_check_blob (const char *what, GBytes *b, GError **error);

/* --- st-db-writer.c --- */
int st_db_wal_hook (void *data, sqlite3 *db, const char *name, int n_frames);
gpointer st_db_writer_main (gpointer user_data);
gboolean st_db_write (StDb *db, StDbWriteFunc func, gpointer data, gint64 *result, GError **error);

/* --- st-db-audit.c: inside a write --- */
/* The audit payloads' compact JSON object: @types one letter per pair, 's'
 * (const char *, NULL = null), 'i' (gint64) or 'b' (gboolean); each pair
 * is a const char * name and its value. */
gchar *st_db_payload (const char *types, ...);
gboolean st_db_w_audit (StDbConn *c, const char *operator_name, const char *event, const char *payload,
                        GError **error);

/* A certificate as a lead's decision over it (revoke, resolve) names it:
 * its state, its unit and uid, its serial and the unit's product serial. */
typedef struct {
  gchar *state, *uid, *serial, *product_serial;
  gint64 unit_id;
} StDbCertNamed;

/* Reads certificate @cert_id into @out (cleared with st_db_cert_named_clear);
 * NOT_FOUND when there is none. */
gboolean st_db_cert_named_read (StDbConn *c, gint64 cert_id, StDbCertNamed *out, GError **error);
void st_db_cert_named_clear (StDbCertNamed *n);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (StDbCertNamed, st_db_cert_named_clear)

/* --- st-db-replay.c --- */
/* Whether @event changes records (batches, units, certificates, operators)
 * and so has a replay handler: only the db/ function that makes the change
 * may log it (st_db_audit_add and st_db_event_add refuse it). */
gboolean st_db_replay_handles (const char *event);
/* The events that have a replay handler, NULL-terminated (tests/db checks
 * every st_db_w_audit event of db/ against it). */
const char *const *st_db_replay_events (void);
/* How many units (and as many certificates) the replay keeps in memory,
 * the latest ids; older ones go to its temporary database. Tests lower it
 * (st_db_replay_set_window) to run the replay tests through that path. */
extern guint st_db_replay_window;

/* --- st-db-batch.c: inside a write --- */
gboolean st_db_w_batch_state (StDbConn *c, gint64 batch_id, gchar **state, gint64 *quantity, GError **error);
gboolean st_db_w_void_cap (StDbConn *c, gint64 batch_id, gint64 *voided, gint64 *cap, GError **error);

/* --- st-db-matter.c --- */
/* INVALID_DATA naming the field when @m is not a record the schema takes. */
gboolean st_db_unit_matter_check (const StDbUnitMatter *m, GError **error);
/* Inside st_db_unit_begin_reserve_matter's transaction: records @m for
 * unit @unit_id (its batch read from the unit) and audits unit-matter. */
gboolean st_db_w_unit_matter (StDbConn *c, gint64 unit_id, const char *operator_name,
                              const StDbUnitMatter *m, GError **error);
/* The columns of a unit_matter row for st_db_unit_matter_from_cols, from
 * the table aliased "m" (all NULL when a LEFT JOIN found none). */
#define ST_DB_UNIT_MATTER_COLS \
  "m.unit_id, m.batch_id, m.vendor_id, m.product_id, m.discriminator, m.counter, m.passcode," \
  " m.iterations, m.salt, m.verifier, m.unique_id, m.flow, m.discovery, m.qr_text," \
  " m.manual_code, m.created_at"
/* The record from ST_DB_UNIT_MATTER_COLS starting at column @first; NULL
 * when that row has none (m.unit_id NULL). */
StDbUnitMatter *st_db_unit_matter_from_cols (sqlite3_stmt *stmt, int first);

G_END_DECLS
