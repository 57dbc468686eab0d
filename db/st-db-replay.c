/* Binding the records to the log (docs/audit.md, Records bound to the
 * log): the state of every operator, batch, unit and certificate is
 * rebuilt from the audit log's payloads, then compared with the tables row
 * by row. A row the log does not explain (changed, added or deleted behind
 * the station's back, e.g. with sqlite3 on the file) is reported by name.
 *
 * One handler per event that changes a record (st_db_replay_handlers); an
 * event that changes a record MUST have one (tests/db, /db/replay-every-
 * event-handled, fails otherwise). Memory stays bounded whatever the number
 * of units: a unit's state is 32 bytes and a certificate's 40, their texts
 * kept as 64-bit truncations of their SHA-256 (enough to compare); the
 * last ST_DB_REPLAY_WINDOW ids of each are kept in memory (the log names a
 * unit again mostly within a few entries), older ones go to a private
 * temporary SQLite database of their own (ReplayStore, on disk past a
 * bounded page cache), and the tables are compared by walking them and
 * that store side by side in id order. The log and the tables are read as
 * streams, in one read transaction of a connection of its own, so that
 * both are the same snapshot while the station goes on writing. */
#include "st-db.h"

#include <glib/gi18n.h>
#include <inttypes.h>
#include "st-db-private.h"
#include "st-error.h"
#include "st-sqlite.h"
#include "st-util.h"

#include <json-glib/json-glib.h>
#include <string.h>

#define ST_DB_REPLAY_REPORT_MAX 20

/* ---------- the states, as the tables spell them ----------
 * A new state of a unit or a certificate is added here too: a state the
 * log gives that is not in these lists is reported, never compared. */

static const char *const st_db_replay_unit_states[] = {
  NULL /* 0: not known */, "started", "issuing", "issued", "done", "failed",
};
static const char *const st_db_replay_cert_states[] = {
  NULL, "issuing", "issued", "active", "voided", "unconfirmed", "disputed", "revoked",
};
#define ST_DB_STATE_OTHER 0xff  /* a table row's state no handler makes */

static guint8
st_db_replay_state_index (const char *const *states, gsize n, const char *name)
{
  for (gsize i = 1; i < n; i++)
    if (g_strcmp0 (states[i], name) == 0)
      return (guint8) i;
  return ST_DB_STATE_OTHER;
}
#define UNIT_STATE(name) \
  st_db_replay_state_index (st_db_replay_unit_states, G_N_ELEMENTS (st_db_replay_unit_states), (name))
#define CERT_STATE(name) \
  st_db_replay_state_index (st_db_replay_cert_states, G_N_ELEMENTS (st_db_replay_cert_states), (name))

/* ---------- what the log says ---------- */

enum {
  R_IN_LOG = 1 << 0,   /* the log names it */
  R_CREATED = 1 << 1,  /* ... and created it (else it is older than the log) */
  R_SEEN = 1 << 2,     /* its table row was read */
};

typedef struct {
  gint64 id;           /* 0: not known (logs from before record binding) */
  gchar *role;         /* NULL: not known */
  gchar *pin_sha256;   /* SHA-256 of its pin_hash; NULL: not known */
  gboolean locked, locked_known;
  guint8 flags;
} ReplayOperator;

typedef struct {
  gchar *work_order, *product, *profile_sha256, *text_sha256;  /* NULL: not known */
  gint64 quantity;        /* 0: not known */
  gint64 void_allowance;  /* -1: not known */
  guint8 state;           /* 0 not known, 1 open, 2 closed */
  guint8 flags;
} ReplayBatch;

enum { U_K_BATCH = 1 << 0, U_K_UID = 1 << 1, U_K_PSERIAL = 1 << 2, U_K_MATTER = 1 << 3 };
typedef struct {
  guint64 uid, product_serial;   /* truncated SHA-256; product_serial 0 = none */
  guint64 matter;                /* its Matter record's digest (schema 10); 0 = none */
  guint32 batch;
  guint8 state, flags, known;
} ReplayUnit;

enum { C_K_UNIT = 1 << 0, C_K_SERIAL = 1 << 1, C_K_PUBKEY = 1 << 2, C_K_IDENT = 1 << 3, C_K_DER = 1 << 4 };
typedef struct {
  guint64 serial, pubkey, ident /* issuer and to-be-signed */, der;
  guint32 unit;
  guint8 state, flags, known;
} ReplayCert;

/* The replay's state of every unit (or certificate) the log names, by id,
 * in bounded memory: ids [base, base + ST_DB_REPLAY_WINDOW) in a ring, the
 * ones below it in a table of the spill database (one row per id, the
 * record as a blob), read back into @scratch when the log names them
 * again (a revocation, a void months later). A record of all zero bytes is
 * one the log never named. */
#define ST_DB_REPLAY_WINDOW 65536
#define ST_DB_REPLAY_SPILL_CACHE_KIB 4096

guint st_db_replay_window = ST_DB_REPLAY_WINDOW;

typedef struct {
  const char *what;      /* "unit", "certificate" */
  gsize size;            /* one record */
  gint64 window;         /* st_db_replay_window when the replay began */
  guint8 *ring;          /* window records, id at id % window */
  gint64 base;
  guint8 *scratch;       /* the record of scratch_id (< base), read from the spill */
  gint64 scratch_id;     /* 0: none */
  sqlite3_stmt *get, *put, *walk;
} ReplayStore;

typedef struct {
  StDb *db;
  StDbConn *c;
  sqlite3 *spill;            /* the stores' private temporary database */
  GError *spill_error;       /* its first failure: the replay stops */
  ReplayStore ustore, cstore;
  GString *report;
  guint problems;
  gint64 seq;                /* the entry being replayed */
  const char *event;
  gint64 first_unbound, last_unbound;  /* record entries without the binding fields */
  gint64 n_record_entries;
  gboolean older_records;    /* the log names records it never created */
  guint n_older_rows;        /* rows older than the log, checked for existence only */
  GHashTable *operators;     /* name -> ReplayOperator */
  GHashTable *batches;       /* gint64 id -> ReplayBatch */
  gint64 max_unit_row, max_cert_row, max_batch_row;  /* the tables' highest ids */
  gint64 first_created_unit, first_created_cert, first_created_batch;
  GChecksum *sha;
  guint n_operators, n_batches, n_units, n_certs;  /* rows explained */
  GHashTable *crls;          /* gint64 number -> ReplayCrl */
  guint n_crls;
} Replay;

/* A CRL number the log took (crl-reserve) and, once signed, its SHA-256
 * (crl-issue). */
typedef struct {
  gchar *der_sha256;   /* NULL: taken, not (yet) signed */
  gint64 entries;
  guint8 flags;
} ReplayCrl;

static void
st_db_replay_crl_free (ReplayCrl *c)
{
  g_free (c->der_sha256);
  g_free (c);
}

G_GNUC_PRINTF (2, 3) static void
st_db_replay_problem (Replay *r, const char *fmt, ...)
{
  r->problems++;
  if (r->problems > ST_DB_REPLAY_REPORT_MAX)
    return;
  va_list ap;
  va_start (ap, fmt);
  g_string_append (r->report, _("records: FAILED: "));
  g_string_append_vprintf (r->report, fmt, ap);
  g_string_append_c (r->report, '\n');
  va_end (ap);
}

static guint64
st_db_replay_digest (Replay *r, const char *s)
{
  if (s == NULL)
    return 0;
  guint8 md[32];
  gsize n = sizeof md;
  g_checksum_reset (r->sha);
  g_checksum_update (r->sha, (const guchar *) s, (gssize) strlen (s));
  g_checksum_get_digest (r->sha, md, &n);
  guint64 v = 0;
  memcpy (&v, md, sizeof v);
  return v != 0 ? v : 1;   /* 0 means none */
}

static guint64
st_db_replay_ident (Replay *r, const char *issuer, const char *tbs_sha256)
{
  g_autofree gchar *s = g_strconcat (issuer, "/", tbs_sha256, NULL);
  return st_db_replay_digest (r, s);
}

static void
st_db_replay_operator_free (ReplayOperator *op)
{
  g_free (op->role);
  g_free (op->pin_sha256);
  g_free (op);
}

static void
st_db_replay_batch_free (ReplayBatch *b)
{
  g_free (b->work_order);
  g_free (b->product);
  g_free (b->profile_sha256);
  g_free (b->text_sha256);
  g_free (b);
}

/* ---------- reading a payload ---------- */

static gboolean
st_db_replay_int (JsonObject *o, const char *name, gint64 *v)
{
  JsonNode *n = json_object_get_member (o, name);
  if (n == NULL || json_node_get_value_type (n) != G_TYPE_INT64)
    return FALSE;
  *v = json_node_get_int (n);
  return TRUE;
}

/* The member's text; NULL when it is null, missing (*@present FALSE) or not a string. */
static const char *
st_db_replay_str (JsonObject *o, const char *name, gboolean *present)
{
  JsonNode *n = json_object_get_member (o, name);
  gboolean is_str = n != NULL && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING;
  if (present != NULL)
    *present = is_str || (n != NULL && JSON_NODE_HOLDS_NULL (n));
  return is_str ? json_node_get_string (n) : NULL;
}

static gboolean
st_db_replay_bool (JsonObject *o, const char *name, gboolean *v)
{
  JsonNode *n = json_object_get_member (o, name);
  if (n == NULL || json_node_get_value_type (n) != G_TYPE_BOOLEAN)
    return FALSE;
  *v = json_node_get_boolean (n);
  return TRUE;
}

/* ---------- the records the log names ---------- */

static ReplayOperator *
st_db_replay_operator (Replay *r, const char *name)
{
  ReplayOperator *op = g_hash_table_lookup (r->operators, name);
  if (op == NULL)
    {
      op = g_new0 (ReplayOperator, 1);
      g_hash_table_insert (r->operators, g_strdup (name), op);
    }
  /* operators came with the log (schema 2): one it never added is not
   * older than the log, and its table row is reported */
  op->flags |= R_IN_LOG;
  return op;
}

static ReplayBatch *
st_db_replay_batch (Replay *r, gint64 id)
{
  ReplayBatch *b = g_hash_table_lookup (r->batches, &id);
  if (b == NULL)
    {
      b = g_new0 (ReplayBatch, 1);
      b->void_allowance = -1;
      b->flags = R_IN_LOG;
      r->older_records = TRUE;
      g_hash_table_insert (r->batches, g_memdup2 (&id, sizeof id), b);
    }
  return b;
}

/* ---------- the stores (ReplayStore) ---------- */

static gboolean
st_db_replay_spill_ok (Replay *r, int rc, const char *what)
{
  if (rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE)
    return TRUE;
  if (r->spill_error == NULL)
    g_set_error (&r->spill_error, ST_ERROR, ST_ERROR_WRITE,
                 "cannot %s in the replay's temporary database (%s): it goes to SQLite's temporary "
                 "directory (SQLITE_TMPDIR, else TMPDIR, else /var/tmp); free space there (about "
                 "80 bytes per unit) and check again", what, sqlite3_errmsg (r->spill));
  return FALSE;
}

static gboolean
st_db_replay_spill_exec (Replay *r, const char *sql)
{
  return st_db_replay_spill_ok (r, sqlite3_exec (r->spill, sql, NULL, NULL, NULL), "prepare the store");
}

static gboolean
st_db_replay_store_init (Replay *r, ReplayStore *s, const char *what, const char *table, gsize size)
{
  s->what = what;
  s->size = size;
  s->window = MAX (st_db_replay_window, 1);
  s->ring = g_malloc0 ((gsize) s->window * size);
  s->scratch = g_malloc0 (size);
  /* the table name is one of two constants */
  g_autofree gchar *create = g_strdup_printf ("CREATE TABLE %s (id INTEGER PRIMARY KEY, s BLOB NOT NULL)",
                                              table);
  g_autofree gchar *get = g_strdup_printf ("SELECT s FROM %s WHERE id = ?", table);
  g_autofree gchar *put = g_strdup_printf ("INSERT OR REPLACE INTO %s (id, s) VALUES (?, ?)", table);
  g_autofree gchar *walk = g_strdup_printf ("SELECT id, s FROM %s ORDER BY id", table);
  return st_db_replay_spill_exec (r, create)
         && st_db_replay_spill_ok (r, sqlite3_prepare_v2 (r->spill, get, -1, &s->get, NULL), "prepare a read")
         && st_db_replay_spill_ok (r, sqlite3_prepare_v2 (r->spill, put, -1, &s->put, NULL), "prepare a write")
         && st_db_replay_spill_ok (r, sqlite3_prepare_v2 (r->spill, walk, -1, &s->walk, NULL), "prepare a walk");
}

static void
st_db_replay_store_clear (ReplayStore *s)
{
  sqlite3_finalize (s->get);
  sqlite3_finalize (s->put);
  sqlite3_finalize (s->walk);
  g_free (s->ring);
  g_free (s->scratch);
}

/* The spill: an on-disk temporary database (SQLite deletes it on close)
 * written in one transaction that is never committed, with no journal. */
static gboolean
st_db_replay_spill_open (Replay *r)
{
  int rc = sqlite3_open_v2 ("", &r->spill, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                            | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_PRIVATECACHE, NULL);
  if (!st_db_replay_spill_ok (r, rc, "open the store"))
    return FALSE;
  return st_db_replay_spill_exec (r, "PRAGMA journal_mode = OFF")
         && st_db_replay_spill_exec (r, "PRAGMA synchronous = OFF")
         && st_db_replay_spill_exec (r, "PRAGMA temp_store = FILE")
         && st_db_replay_spill_exec (r, "PRAGMA cache_size = -" G_STRINGIFY (ST_DB_REPLAY_SPILL_CACHE_KIB))
         && st_db_replay_store_init (r, &r->ustore, "unit", "u", sizeof (ReplayUnit))
         && st_db_replay_store_init (r, &r->cstore, "certificate", "c", sizeof (ReplayCert))
         && st_db_replay_spill_exec (r, "BEGIN");
}

static gboolean
st_db_replay_record_empty (const guint8 *rec, gsize size)
{
  for (gsize i = 0; i < size; i++)
    if (rec[i] != 0)
      return FALSE;
  return TRUE;
}

static gboolean
st_db_replay_store_put (Replay *r, ReplayStore *s, gint64 id, const guint8 *rec)
{
  if (r->spill_error != NULL)
    return FALSE;
  sqlite3_bind_int64 (s->put, 1, id);
  sqlite3_bind_blob (s->put, 2, rec, (int) s->size, SQLITE_STATIC);
  int rc = sqlite3_step (s->put);
  sqlite3_reset (s->put);
  return st_db_replay_spill_ok (r, rc, "write a record");
}

static gboolean
st_db_replay_store_get (Replay *r, ReplayStore *s, gint64 id, guint8 *rec)
{
  memset (rec, 0, s->size);
  if (r->spill_error != NULL)
    return FALSE;
  sqlite3_bind_int64 (s->get, 1, id);
  int rc = sqlite3_step (s->get);
  if (rc == SQLITE_ROW && sqlite3_column_bytes (s->get, 0) == (int) s->size)
    memcpy (rec, sqlite3_column_blob (s->get, 0), s->size);
  sqlite3_reset (s->get);
  return st_db_replay_spill_ok (r, rc, "read a record");
}

/* The ring's records from @base up to @to (excluded) go to the spill. */
static void
st_db_replay_store_slide (Replay *r, ReplayStore *s, gint64 to)
{
  gint64 end = MIN (to, s->base + s->window);
  for (gint64 id = s->base; id < end; id++)
    {
      guint8 *rec = s->ring + (gsize) (id % s->window) * s->size;
      if (!st_db_replay_record_empty (rec, s->size))
        {
          st_db_replay_store_put (r, s, id, rec);
          memset (rec, 0, s->size);
        }
    }
  s->base = to;
}

/* The record of @id (> 0) to read and change: valid until the next call on
 * @s (a handler takes at most one unit and one certificate). */
static guint8 *
st_db_replay_store_at (Replay *r, ReplayStore *s, gint64 id)
{
  if (id >= s->base + s->window)
    st_db_replay_store_slide (r, s, id - s->window + 1);
  if (id >= s->base)
    return s->ring + (gsize) (id % s->window) * s->size;
  if (s->scratch_id != id)
    {
      if (s->scratch_id != 0)
        st_db_replay_store_put (r, s, s->scratch_id, s->scratch);
      st_db_replay_store_get (r, s, id, s->scratch);
      s->scratch_id = id;
    }
  return s->scratch;
}

/* Everything to the spill, for the walk in id order. */
static gboolean
st_db_replay_store_flush (Replay *r, ReplayStore *s)
{
  if (s->scratch_id != 0)
    st_db_replay_store_put (r, s, s->scratch_id, s->scratch);
  s->scratch_id = 0;
  st_db_replay_store_slide (r, s, s->base + s->window);
  return r->spill_error == NULL;
}

/* The record of @id (of @s's kind); NULL and a problem when the id cannot
 * be one (at most the table's highest id plus one per entry, so that a
 * forged id cannot make the walk long). */
static gpointer
st_db_replay_slot (Replay *r, ReplayStore *s, gint64 id, gint64 max_row)
{
  if (id <= 0 || id > MAX (max_row, 0) + r->seq)
    {
      st_db_replay_problem (r, "entry %" G_GINT64_FORMAT " (%s) names %s %" G_GINT64_FORMAT
                            ", which no row can be", r->seq, r->event, s->what, id);
      return NULL;
    }
  return st_db_replay_store_at (r, s, id);
}

static ReplayUnit *
st_db_replay_unit (Replay *r, gint64 id, gboolean creates)
{
  ReplayUnit *u = st_db_replay_slot (r, &r->ustore, id, r->max_unit_row);
  if (u == NULL)
    return NULL;
  if (creates && !(u->flags & R_CREATED))
    {
      u->flags |= R_CREATED;
      u->known |= U_K_MATTER;  /* a unit is created without a Matter record (unit-matter adds it) */
      if (r->first_created_unit == 0 || id < r->first_created_unit)
        r->first_created_unit = id;
    }
  else if (!(u->flags & R_IN_LOG))
    r->older_records = TRUE;
  u->flags |= R_IN_LOG;
  return u;
}

static ReplayCert *
st_db_replay_cert (Replay *r, gint64 id, gboolean creates)
{
  ReplayCert *c = st_db_replay_slot (r, &r->cstore, id, r->max_cert_row);
  if (c == NULL)
    return NULL;
  if (creates && !(c->flags & R_CREATED))
    {
      c->flags |= R_CREATED;
      if (r->first_created_cert == 0 || id < r->first_created_cert)
        r->first_created_cert = id;
    }
  else if (!(c->flags & R_IN_LOG))
    r->older_records = TRUE;
  c->flags |= R_IN_LOG;
  return c;
}

static void
st_db_replay_unit_state (ReplayUnit *u, const char *state)
{
  u->state = UNIT_STATE (state);
}

/* The unit's move when its certificate goes to @to and the entry does not
 * say (entries before record binding): the rules of st_db_cert_set_state
 * and of a re-provision's void. */
static void
st_db_replay_unit_follows (ReplayUnit *u, const char *to, gboolean from_cert_state)
{
  guint8 s = u->state;
  gboolean unfinished = s == UNIT_STATE ("started") || s == UNIT_STATE ("issuing")
                        || s == UNIT_STATE ("issued");
  if (s == 0)
    return;  /* not known: it stays so */
  if (g_strcmp0 (to, "active") == 0 && from_cert_state)
    u->state = UNIT_STATE ("done");
  else if (g_strcmp0 (to, "unconfirmed") == 0 && s == UNIT_STATE ("issued"))
    ;
  else if (unfinished)
    u->state = UNIT_STATE ("failed");
}

/* ---------- one handler per event that changes a record ----------
 * Each reads its payload and returns FALSE when the payload lacks the
 * fields that bind a record (entries written before record binding). */

typedef gboolean (*ReplayFunc) (Replay *r, JsonObject *o);

static gboolean
st_db_replay_need (Replay *r, gboolean ok)
{
  if (!ok)
    st_db_replay_problem (r, "entry %" G_GINT64_FORMAT " (%s) does not say which record it changed",
                          r->seq, r->event);
  return ok;
}

/* An operator the log creates (operator-add, or admin-recover adding an
 * admin) with @role, bound by its id and the commitment to its PIN hash;
 * FALSE when the entry lacks them (before record binding). */
static gboolean
st_db_replay_operator_created (Replay *r, const char *name, const char *role, JsonObject *o)
{
  ReplayOperator *op = g_hash_table_lookup (r->operators, name);
  if (op == NULL)
    {
      op = g_new0 (ReplayOperator, 1);
      g_hash_table_insert (r->operators, g_strdup (name), op);
    }
  op->flags |= R_IN_LOG | R_CREATED;
  g_free (op->role);
  op->role = g_strdup (role);
  op->locked = FALSE;
  op->locked_known = TRUE;
  gint64 id = 0;
  const char *pin = st_db_replay_str (o, "pin_sha256", NULL);
  g_free (op->pin_sha256);
  op->pin_sha256 = g_strdup (pin);
  if (st_db_replay_int (o, "id", &id) && id > 0)
    op->id = id;
  return id > 0 && pin != NULL;
}

static gboolean
st_db_replay_on_operator_add (Replay *r, JsonObject *o)
{
  const char *name = st_db_replay_str (o, "name", NULL);
  if (!st_db_replay_need (r, name != NULL))
    return TRUE;
  return st_db_replay_operator_created (r, name, st_db_replay_str (o, "role", NULL), o);
}

static gboolean
st_db_replay_on_operator_set_role (Replay *r, JsonObject *o)
{
  const char *name = st_db_replay_str (o, "name", NULL);
  const char *to = st_db_replay_str (o, "to", NULL);
  if (!st_db_replay_need (r, name != NULL && to != NULL))
    return TRUE;
  ReplayOperator *op = st_db_replay_operator (r, name);
  g_free (op->role);
  op->role = g_strdup (to);
  return TRUE;
}

static gboolean
st_db_replay_on_operator_unlock (Replay *r, JsonObject *o)
{
  const char *name = st_db_replay_str (o, "name", NULL);
  if (!st_db_replay_need (r, name != NULL))
    return TRUE;
  ReplayOperator *op = st_db_replay_operator (r, name);
  op->locked = FALSE;
  op->locked_known = TRUE;
  return TRUE;
}

/* admin-recover: an admin unlocked, or added (as operator-add binds it) */
static gboolean
st_db_replay_on_admin_recover (Replay *r, JsonObject *o)
{
  const char *name = st_db_replay_str (o, "name", NULL);
  const char *action = st_db_replay_str (o, "action", NULL);
  if (!st_db_replay_need (r, name != NULL && action != NULL))
    return TRUE;
  if (strcmp (action, "added") == 0)
    return st_db_replay_operator_created (r, name, "admin", o);
  ReplayOperator *op = st_db_replay_operator (r, name);
  op->locked = FALSE;
  op->locked_known = TRUE;
  return TRUE;
}

/* login-failed and operator-locked */
static gboolean
st_db_replay_on_login_failed (Replay *r, JsonObject *o)
{
  const char *name = st_db_replay_str (o, "name", NULL);
  gboolean locked = FALSE;
  if (!st_db_replay_need (r, name != NULL && st_db_replay_bool (o, "locked", &locked)))
    return TRUE;
  ReplayOperator *op = st_db_replay_operator (r, name);
  op->locked = locked;
  op->locked_known = TRUE;
  return TRUE;
}

/* login-attempts-reset and -released: only the count of wrong PINs, which
 * is not bound */
static gboolean
st_db_replay_on_login_attempts_reset (Replay *r, JsonObject *o)
{
  const char *name = st_db_replay_str (o, "name", NULL);
  if (st_db_replay_need (r, name != NULL))
    st_db_replay_operator (r, name);
  return TRUE;
}

static gboolean
st_db_replay_on_batch_create (Replay *r, JsonObject *o)
{
  gint64 id = 0, quantity = 0;
  if (!st_db_replay_need (r, st_db_replay_int (o, "batch", &id)))
    return TRUE;
  ReplayBatch *b = g_hash_table_lookup (r->batches, &id);
  if (b == NULL)
    {
      b = g_new0 (ReplayBatch, 1);
      g_hash_table_insert (r->batches, g_memdup2 (&id, sizeof id), b);
    }
  b->flags |= R_IN_LOG | R_CREATED;
  if (r->first_created_batch == 0 || id < r->first_created_batch)
    r->first_created_batch = id;
  g_free (b->work_order);
  g_free (b->product);
  g_free (b->profile_sha256);
  g_free (b->text_sha256);
  b->work_order = g_strdup (st_db_replay_str (o, "work_order", NULL));
  b->product = g_strdup (st_db_replay_str (o, "product", NULL));
  b->profile_sha256 = g_strdup (st_db_replay_str (o, "profile_sha256", NULL));
  b->text_sha256 = g_strdup (st_db_replay_str (o, "profile_text_sha256", NULL));
  b->quantity = st_db_replay_int (o, "quantity", &quantity) ? quantity : 0;
  b->void_allowance = 0;
  b->state = 1;
  return b->text_sha256 != NULL;
}

static gboolean
st_db_replay_on_batch_close (Replay *r, JsonObject *o)
{
  gint64 id = 0;
  if (st_db_replay_need (r, st_db_replay_int (o, "batch", &id)))
    st_db_replay_batch (r, id)->state = 2;
  return TRUE;
}

static gboolean
st_db_replay_on_batch_allow_more_voids (Replay *r, JsonObject *o)
{
  gint64 id = 0, allowance = 0, cap = 0;
  if (!st_db_replay_need (r, st_db_replay_int (o, "batch", &id)))
    return TRUE;
  ReplayBatch *b = st_db_replay_batch (r, id);
  if (st_db_replay_int (o, "void_allowance", &allowance))
    {
      b->void_allowance = allowance;
      return TRUE;
    }
  /* before record binding: the cap is the base plus the allowance */
  b->void_allowance = b->quantity > 0 && st_db_replay_int (o, "cap", &cap)
                      ? cap - st_db_void_cap_base (b->quantity) : -1;
  return FALSE;
}

/* The unit's batch and uid from a payload that creates it. */
static void
st_db_replay_unit_identity (Replay *r, ReplayUnit *u, JsonObject *o)
{
  gint64 batch = 0;
  const char *uid = st_db_replay_str (o, "uid", NULL);
  if (st_db_replay_int (o, "batch", &batch) && batch > 0 && batch <= G_MAXUINT32)
    {
      u->batch = (guint32) batch;
      u->known |= U_K_BATCH;
      st_db_replay_batch (r, batch);
    }
  if (uid != NULL)
    {
      u->uid = st_db_replay_digest (r, uid);
      u->known |= U_K_UID;
    }
}

static gboolean
st_db_replay_on_unit_begin (Replay *r, JsonObject *o)
{
  gint64 id = 0;
  if (!st_db_replay_need (r, st_db_replay_int (o, "unit", &id)))
    return TRUE;
  ReplayUnit *u = st_db_replay_unit (r, id, TRUE);
  if (u == NULL)
    return TRUE;
  st_db_replay_unit_identity (r, u, o);
  u->product_serial = 0;
  u->known |= U_K_PSERIAL;
  st_db_replay_unit_state (u, "started");
  return TRUE;
}

static gboolean
st_db_replay_on_cert_reserve (Replay *r, JsonObject *o)
{
  gint64 unit_id = 0, cert_id = 0;
  if (!st_db_replay_need (r, st_db_replay_int (o, "unit", &unit_id)
                          && st_db_replay_int (o, "cert", &cert_id)))
    return TRUE;
  /* st_db_unit_begin_reserve records the unit and its reservation in one
   * entry: a unit the log has not seen is created here */
  ReplayUnit *u = st_db_replay_unit (r, unit_id, TRUE);
  ReplayCert *c = st_db_replay_cert (r, cert_id, TRUE);
  if (u == NULL || c == NULL)
    return TRUE;
  st_db_replay_unit_identity (r, u, o);
  gboolean present = FALSE;
  const char *ps = st_db_replay_str (o, "product_serial", &present);
  if (present)
    {
      u->product_serial = st_db_replay_digest (r, ps);
      u->known |= U_K_PSERIAL;
    }
  st_db_replay_unit_state (u, "issuing");
  c->unit = (guint32) unit_id;
  c->known |= C_K_UNIT;
  const char *serial = st_db_replay_str (o, "serial", NULL);
  const char *pubkey = st_db_replay_str (o, "pubkey_sha256", NULL);
  const char *issuer = st_db_replay_str (o, "issuer", NULL);
  const char *tbs = st_db_replay_str (o, "tbs_sha256", NULL);
  if (serial != NULL)
    {
      c->serial = st_db_replay_digest (r, serial);
      c->known |= C_K_SERIAL;
    }
  if (pubkey != NULL)
    {
      c->pubkey = st_db_replay_digest (r, pubkey);
      c->known |= C_K_PUBKEY;
    }
  c->state = CERT_STATE ("issuing");
  if (issuer == NULL || tbs == NULL)
    return FALSE;
  c->ident = st_db_replay_ident (r, issuer, tbs);
  c->known |= C_K_IDENT;
  return TRUE;
}

/* The unit's Matter record (schema 10), written with its reservation: the
 * log carries its digest (st_db_unit_matter_digest). */
static gboolean
st_db_replay_on_unit_matter (Replay *r, JsonObject *o)
{
  gint64 unit_id = 0;
  const char *digest = st_db_replay_str (o, "matter_sha256", NULL);
  if (!st_db_replay_need (r, st_db_replay_int (o, "unit", &unit_id) && digest != NULL))
    return TRUE;
  ReplayUnit *u = st_db_replay_unit (r, unit_id, FALSE);
  if (u == NULL)
    return TRUE;
  if ((u->known & U_K_MATTER) && u->matter != 0)
    st_db_replay_problem (r, "entry %" G_GINT64_FORMAT " (%s) gives unit %" G_GINT64_FORMAT
                          " a second Matter record", r->seq, r->event, unit_id);
  u->matter = st_db_replay_digest (r, digest);
  u->known |= U_K_MATTER;
  return TRUE;
}

static gboolean
st_db_replay_on_cert_issued (Replay *r, JsonObject *o)
{
  gint64 unit_id = 0, cert_id = 0;
  if (!st_db_replay_need (r, st_db_replay_int (o, "unit", &unit_id)
                          && st_db_replay_int (o, "cert", &cert_id)))
    return TRUE;
  ReplayUnit *u = st_db_replay_unit (r, unit_id, FALSE);
  ReplayCert *c = st_db_replay_cert (r, cert_id, FALSE);
  if (u == NULL || c == NULL)
    return TRUE;
  st_db_replay_unit_state (u, "issued");
  c->state = CERT_STATE ("issued");
  const char *der = st_db_replay_str (o, "certificate_sha256", NULL);
  if (der == NULL)
    return FALSE;
  c->der = st_db_replay_digest (r, der);
  c->known |= C_K_DER;
  return TRUE;
}

static gboolean
st_db_replay_on_unit_done (Replay *r, JsonObject *o)
{
  gint64 unit_id = 0, cert_id = 0;
  if (!st_db_replay_need (r, st_db_replay_int (o, "unit", &unit_id)
                          && st_db_replay_int (o, "cert", &cert_id)))
    return TRUE;
  ReplayUnit *u = st_db_replay_unit (r, unit_id, FALSE);
  ReplayCert *c = st_db_replay_cert (r, cert_id, FALSE);
  if (u != NULL)
    st_db_replay_unit_state (u, "done");
  if (c != NULL)
    c->state = CERT_STATE ("active");
  return TRUE;
}

/* st_db_unit_fail (the unit and its certificate's new state) and
 * st_db_unit_add_failed (a new unit, with its batch and uid) */
static gboolean
st_db_replay_on_unit_fail (Replay *r, JsonObject *o)
{
  gint64 unit_id = 0, cert_id = 0;
  if (!st_db_replay_need (r, st_db_replay_int (o, "unit", &unit_id)))
    return TRUE;
  gboolean creates = json_object_has_member (o, "batch");
  ReplayUnit *u = st_db_replay_unit (r, unit_id, creates);
  if (u == NULL)
    return TRUE;
  if (creates)
    {
      st_db_replay_unit_identity (r, u, o);
      u->product_serial = 0;
      u->known |= U_K_PSERIAL;
    }
  st_db_replay_unit_state (u, "failed");
  const char *cert_state = st_db_replay_str (o, "cert_state", NULL);
  if (st_db_replay_int (o, "cert", &cert_id) && cert_id != 0 && cert_state != NULL)
    {
      ReplayCert *c = st_db_replay_cert (r, cert_id, FALSE);
      if (c != NULL)
        c->state = CERT_STATE (cert_state);
    }
  return TRUE;
}

static gboolean
st_db_replay_on_cert_state (Replay *r, JsonObject *o)
{
  gint64 unit_id = 0, cert_id = 0;
  const char *to = st_db_replay_str (o, "to", NULL);
  if (!st_db_replay_need (r, st_db_replay_int (o, "unit", &unit_id)
                          && st_db_replay_int (o, "cert", &cert_id) && to != NULL))
    return TRUE;
  ReplayUnit *u = st_db_replay_unit (r, unit_id, FALSE);
  ReplayCert *c = st_db_replay_cert (r, cert_id, FALSE);
  if (c != NULL)
    c->state = CERT_STATE (to);
  if (u == NULL)
    return TRUE;
  const char *unit_state = st_db_replay_str (o, "unit_state", NULL);
  if (unit_state != NULL)
    {
      st_db_replay_unit_state (u, unit_state);
      return TRUE;
    }
  st_db_replay_unit_follows (u, to, TRUE);
  return FALSE;
}

/* a re-provision voids the uid's live certificate; its unit, if unfinished, fails */
static gboolean
st_db_replay_on_cert_void (Replay *r, JsonObject *o)
{
  gint64 unit_id = 0, cert_id = 0;
  if (!st_db_replay_need (r, st_db_replay_int (o, "unit", &unit_id)
                          && st_db_replay_int (o, "cert", &cert_id)))
    return TRUE;
  ReplayUnit *u = st_db_replay_unit (r, unit_id, FALSE);
  ReplayCert *c = st_db_replay_cert (r, cert_id, FALSE);
  if (c != NULL)
    c->state = CERT_STATE ("voided");
  if (u != NULL)
    st_db_replay_unit_follows (u, "voided", FALSE);
  return TRUE;
}

/* an unconfirmed certificate disputed (st_db_cert_dispute): its unit, if
 * unfinished, fails at the step */
static gboolean
st_db_replay_on_cert_dispute (Replay *r, JsonObject *o)
{
  gint64 unit_id = 0, cert_id = 0;
  if (!st_db_replay_need (r, st_db_replay_int (o, "unit", &unit_id)
                          && st_db_replay_int (o, "cert", &cert_id)))
    return TRUE;
  ReplayCert *c = st_db_replay_cert (r, cert_id, FALSE);
  if (c != NULL)
    c->state = CERT_STATE ("disputed");
  ReplayUnit *u = st_db_replay_unit (r, unit_id, FALSE);
  if (u != NULL)
    st_db_replay_unit_follows (u, "disputed", FALSE);
  return TRUE;
}

/* a lead's decision (st_db_cert_resolve_dispute): the certificate to
 * unconfirmed or voided; the unit stays as it is */
static gboolean
st_db_replay_on_unit_resolve (Replay *r, JsonObject *o)
{
  gint64 cert_id = 0;
  const char *to = st_db_replay_str (o, "to", NULL);
  if (!st_db_replay_need (r, st_db_replay_int (o, "cert", &cert_id) && to != NULL))
    return TRUE;
  ReplayCert *c = st_db_replay_cert (r, cert_id, FALSE);
  if (c != NULL)
    c->state = CERT_STATE (to);
  return TRUE;
}

/* a lead revoked an active certificate (st_db_cert_revoke); the unit stays done */
static gboolean
st_db_replay_on_unit_revoke (Replay *r, JsonObject *o)
{
  gint64 cert_id = 0;
  if (!st_db_replay_need (r, st_db_replay_int (o, "cert", &cert_id)))
    return TRUE;
  ReplayCert *c = st_db_replay_cert (r, cert_id, FALSE);
  if (c != NULL)
    c->state = CERT_STATE ("revoked");
  return TRUE;
}

/* a CRL number taken (st_db_crl_reserve) */
static gboolean
st_db_replay_on_crl_reserve (Replay *r, JsonObject *o)
{
  gint64 number = 0;
  if (!st_db_replay_need (r, st_db_replay_int (o, "crl_number", &number)))
    return TRUE;
  if (g_hash_table_contains (r->crls, &number))
    {
      st_db_replay_problem (r, "entry %" G_GINT64_FORMAT " (crl-reserve): CRL number %" G_GINT64_FORMAT
                            " was taken before", r->seq, number);
      return TRUE;
    }
  ReplayCrl *c = g_new0 (ReplayCrl, 1);
  c->entries = -1;
  g_hash_table_insert (r->crls, g_memdup2 (&number, sizeof number), c);
  return TRUE;
}

/* a CRL signed under its number (st_db_crl_complete) */
static gboolean
st_db_replay_on_crl_issue (Replay *r, JsonObject *o)
{
  gint64 number = 0, entries = 0;
  const char *sha = st_db_replay_str (o, "sha256", NULL);
  if (!st_db_replay_need (r, st_db_replay_int (o, "crl_number", &number)
                          && st_db_replay_int (o, "entries", &entries) && sha != NULL))
    return TRUE;
  ReplayCrl *c = g_hash_table_lookup (r->crls, &number);
  if (c == NULL || c->der_sha256 != NULL)
    {
      st_db_replay_problem (r, "entry %" G_GINT64_FORMAT " (crl-issue): CRL number %" G_GINT64_FORMAT
                            " was %s", r->seq, number, c == NULL ? "never taken" : "issued before");
      return TRUE;
    }
  c->der_sha256 = g_strdup (sha);
  c->entries = entries;
  return TRUE;
}

/* Every event a db/ function logs with the record it changes. Adding an
 * event that changes a batch, unit, certificate or operator means adding
 * its handler here (and a field to docs/audit.md's table if it binds one). */
static const struct {
  const char *event;
  ReplayFunc func;
} st_db_replay_handlers[] = {
  { "batch-create", st_db_replay_on_batch_create },
  { "batch-close", st_db_replay_on_batch_close },
  { "batch-allow-more-voids", st_db_replay_on_batch_allow_more_voids },
  { "operator-add", st_db_replay_on_operator_add },
  { "operator-set-role", st_db_replay_on_operator_set_role },
  { "operator-unlock", st_db_replay_on_operator_unlock },
  { "login-failed", st_db_replay_on_login_failed },
  { "operator-locked", st_db_replay_on_login_failed },
  { "login-attempts-reset", st_db_replay_on_login_attempts_reset },
  { "login-attempts-released", st_db_replay_on_login_attempts_reset },
  { "admin-recover", st_db_replay_on_admin_recover },
  { "unit-begin", st_db_replay_on_unit_begin },
  { "cert-reserve", st_db_replay_on_cert_reserve },
  { "unit-matter", st_db_replay_on_unit_matter },
  { "cert-issued", st_db_replay_on_cert_issued },
  { "unit-done", st_db_replay_on_unit_done },
  { "unit-fail", st_db_replay_on_unit_fail },
  { "cert-state", st_db_replay_on_cert_state },
  { "cert-void", st_db_replay_on_cert_void },
  { "cert-dispute", st_db_replay_on_cert_dispute },
  { "unit-resolve", st_db_replay_on_unit_resolve },
  { "unit-revoke", st_db_replay_on_unit_revoke },
  { "crl-reserve", st_db_replay_on_crl_reserve },
  { "crl-issue", st_db_replay_on_crl_issue },
};

static ReplayFunc
st_db_replay_handler (const char *event)
{
  for (gsize i = 0; i < G_N_ELEMENTS (st_db_replay_handlers); i++)
    if (g_strcmp0 (st_db_replay_handlers[i].event, event) == 0)
      return st_db_replay_handlers[i].func;
  return NULL;
}

gboolean
st_db_replay_handles (const char *event)
{
  return st_db_replay_handler (event) != NULL;
}

const char *const *
st_db_replay_events (void)
{
  static const char *names[G_N_ELEMENTS (st_db_replay_handlers) + 1];
  static gsize once = 0;
  if (g_once_init_enter (&once))
    {
      for (gsize i = 0; i < G_N_ELEMENTS (st_db_replay_handlers); i++)
        names[i] = st_db_replay_handlers[i].event;
      g_once_init_leave (&once, 1);
    }
  return names;
}

/* ---------- walking the log ---------- */

static gboolean
st_db_replay_walk (Replay *r, GError **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  gint64 max_seq = 0;
  if (r->db->progress_func != NULL
      && !st_db_conn_query_int (r->c, "SELECT coalesce (max (seq), 0) FROM audit", &max_seq, error))
    return FALSE;
  g_autoptr(StSqliteStmtRef) stmt = st_db_conn_prepare (r->c,
      "SELECT seq, event, payload FROM audit ORDER BY seq", error);
  if (stmt == NULL)
    return FALSE;
  for (;;)
    {
      gboolean row = FALSE;
      if (!st_db_step (r->c, stmt, &row, "cannot read the audit log", error))
        return FALSE;
      if (!row)
        return TRUE;
      st_db_progress (r->db, "replay", sqlite3_column_int64 (stmt, 0), max_seq);
      const char *event = (const char *) sqlite3_column_text (stmt, 1);
      ReplayFunc func = st_db_replay_handler (event);
      if (func == NULL)
        continue;
      r->seq = sqlite3_column_int64 (stmt, 0);
      r->event = event;
      r->n_record_entries++;
      const char *payload = (const char *) sqlite3_column_text (stmt, 2);
      JsonNode *root = NULL;
      if (payload == NULL || !json_parser_load_from_data (parser, payload, -1, NULL)
          || (root = json_parser_get_root (parser)) == NULL || !JSON_NODE_HOLDS_OBJECT (root))
        {
          st_db_replay_problem (r, "entry %" G_GINT64_FORMAT " (%s): its payload is not a JSON object",
                                r->seq, event);
          continue;
        }
      if (!func (r, json_node_get_object (root)))
        {
          if (r->first_unbound == 0)
            r->first_unbound = r->seq;
          r->last_unbound = r->seq;
        }
      if (r->spill_error != NULL)
        {
          g_propagate_error (error, g_steal_pointer (&r->spill_error));
          return FALSE;
        }
    }
}

/* ---------- comparing the tables ---------- */

/* A batch, unit or certificate row the log does not name: older than the
 * log (checked for existence only), or not explained. The log came with
 * schema 2, so only a database from schema 1 has rows older than it, and
 * its log shows it: it names records it never created (a batch closed, a
 * unit begun in an old batch), or it has no record entries at all. Even
 * then only the ids below the first one the log created in that table are
 * older (ids are handed out in order). Operators came with the log: one it
 * does not name is always reported. */
static gboolean
st_db_replay_older (Replay *r, gint64 id, gint64 first_created)
{
  gboolean log_after_records = r->older_records || r->n_record_entries == 0;
  if (log_after_records && id > 0 && (first_created == 0 || id < first_created))
    {
      r->n_older_rows++;
      return TRUE;
    }
  return FALSE;
}

static const char *
st_db_replay_yes_no (gboolean v)
{
  return v ? "yes" : "no";
}

static gboolean
st_db_replay_operators (Replay *r, GError **error)
{
  g_autoptr(StSqliteStmtRef) stmt = st_db_conn_prepare (r->c,
      "SELECT id, name, role, locked, pin_hash FROM operators ORDER BY id", error);
  if (stmt == NULL)
    return FALSE;
  for (;;)
    {
      gboolean row = FALSE;
      if (!st_db_step (r->c, stmt, &row, "cannot read the operators", error))
        return FALSE;
      if (!row)
        break;
      gint64 id = sqlite3_column_int64 (stmt, 0);
      const char *name = (const char *) sqlite3_column_text (stmt, 1);
      const char *role = (const char *) sqlite3_column_text (stmt, 2);
      gboolean locked = sqlite3_column_int64 (stmt, 3) != 0;
      const char *pin_hash = (const char *) sqlite3_column_text (stmt, 4);
      ReplayOperator *op = name != NULL ? g_hash_table_lookup (r->operators, name) : NULL;
      if (op == NULL || !(op->flags & R_IN_LOG))
        {
          st_db_replay_problem (r, "operator '%s' (id %" G_GINT64_FORMAT ") is not in the log",
                                name != NULL ? name : "", id);
          continue;
        }
      op->flags |= R_SEEN;
      r->n_operators++;
      if (op->id != 0 && op->id != id)
        st_db_replay_problem (r, "operator '%s': id is %" G_GINT64_FORMAT ", the log says %"
                              G_GINT64_FORMAT, name, id, op->id);
      if (op->role != NULL && g_strcmp0 (op->role, role) != 0)
        st_db_replay_problem (r, "operator '%s': role is %s, the log says %s", name,
                              role != NULL ? role : "NULL", op->role);
      if (op->locked_known && op->locked != locked)
        st_db_replay_problem (r, "operator '%s': locked is %s, the log says %s", name,
                              st_db_replay_yes_no (locked), st_db_replay_yes_no (op->locked));
      if (op->pin_sha256 != NULL)
        {
          g_autofree gchar *pin = st_sha256_hex ((const guint8 *) (pin_hash != NULL ? pin_hash : ""),
                                                 pin_hash != NULL ? strlen (pin_hash) : 0);
          if (g_strcmp0 (pin, op->pin_sha256) != 0)
            st_db_replay_problem (r, "operator '%s': its PIN hash is not the one the log "
                                  "committed to (the PIN was changed behind the station's back)", name);
        }
    }
  GHashTableIter it;
  gpointer key, value;
  g_hash_table_iter_init (&it, r->operators);
  while (g_hash_table_iter_next (&it, &key, &value))
    {
      ReplayOperator *op = value;
      if ((op->flags & R_IN_LOG) && !(op->flags & R_SEEN))
        st_db_replay_problem (r, "operator '%s' is in the log but not in the table", (const char *) key);
    }
  return TRUE;
}

static void
st_db_replay_text_differs (Replay *r, gint64 id, const char *field, const char *is, const char *log)
{
  if (log != NULL && g_strcmp0 (is, log) != 0)
    st_db_replay_problem (r, "batch %" G_GINT64_FORMAT ": %s is %s, the log says %s", id, field,
                          is != NULL ? is : "NULL", log);
}

static gboolean
st_db_replay_batches (Replay *r, GError **error)
{
  static const char *const batch_states[] = { NULL, "open", "closed" };
  g_autoptr(StSqliteStmtRef) stmt = st_db_conn_prepare (r->c,
      "SELECT id, work_order, product, profile_sha256, quantity, state, void_allowance, profile_text"
      " FROM batches ORDER BY id", error);
  if (stmt == NULL)
    return FALSE;
  for (;;)
    {
      gboolean row = FALSE;
      if (!st_db_step (r->c, stmt, &row, "cannot read the batches", error))
        return FALSE;
      if (!row)
        break;
      gint64 id = sqlite3_column_int64 (stmt, 0);
      ReplayBatch *b = g_hash_table_lookup (r->batches, &id);
      if (b == NULL)
        {
          if (!st_db_replay_older (r, id, r->first_created_batch))
            st_db_replay_problem (r, "batch %" G_GINT64_FORMAT " is not in the log", id);
          continue;
        }
      b->flags |= R_SEEN;
      r->n_batches++;
      st_db_replay_text_differs (r, id, "work order", (const char *) sqlite3_column_text (stmt, 1),
                                 b->work_order);
      st_db_replay_text_differs (r, id, "product", (const char *) sqlite3_column_text (stmt, 2),
                                 b->product);
      st_db_replay_text_differs (r, id, "profile_sha256", (const char *) sqlite3_column_text (stmt, 3),
                                 b->profile_sha256);
      /* the line issues from the batch's copy of its profile */
      const char *text = (const char *) sqlite3_column_text (stmt, 7);
      g_autofree gchar *text_sha256 = st_sha256_hex ((const guint8 *) (text != NULL ? text : ""),
                                                     text != NULL ? strlen (text) : 0);
      if (b->text_sha256 != NULL && g_strcmp0 (text_sha256, b->text_sha256) != 0)
        st_db_replay_problem (r, "batch %" G_GINT64_FORMAT ": its profile text is not the one the "
                              "log holds the SHA-256 of", id);
      gint64 quantity = sqlite3_column_int64 (stmt, 4);
      if (b->quantity > 0 && quantity != b->quantity)
        st_db_replay_problem (r, "batch %" G_GINT64_FORMAT ": quantity is %" G_GINT64_FORMAT
                              ", the log says %" G_GINT64_FORMAT, id, quantity, b->quantity);
      if (b->state != 0)
        st_db_replay_text_differs (r, id, "state", (const char *) sqlite3_column_text (stmt, 5),
                                   batch_states[b->state]);
      gint64 allowance = sqlite3_column_int64 (stmt, 6);
      if (b->void_allowance >= 0 && allowance != b->void_allowance)
        st_db_replay_problem (r, "batch %" G_GINT64_FORMAT ": void allowance is %" G_GINT64_FORMAT
                              ", the log says %" G_GINT64_FORMAT, id, allowance, b->void_allowance);
    }
  GHashTableIter it;
  gpointer key, value;
  g_hash_table_iter_init (&it, r->batches);
  while (g_hash_table_iter_next (&it, &key, &value))
    if (!(((ReplayBatch *) value)->flags & R_SEEN))
      st_db_replay_problem (r, "batch %" G_GINT64_FORMAT " is in the log but not in the table",
                            *(gint64 *) key);
  return TRUE;
}

static const char *
st_db_replay_state_name (const char *const *states, guint8 s)
{
  return s != ST_DB_STATE_OTHER && states[s] != NULL ? states[s] : "?";
}

/* The spill's next record of @s in id order; FALSE at its end, or on a
 * failure (r->spill_error). */
static gboolean
st_db_replay_store_next (Replay *r, ReplayStore *s, gint64 *id, gpointer rec)
{
  int rc = sqlite3_step (s->walk);
  if (rc != SQLITE_ROW)
    {
      st_db_replay_spill_ok (r, rc, "read the records back");
      return FALSE;
    }
  *id = sqlite3_column_int64 (s->walk, 0);
  memset (rec, 0, s->size);
  if (sqlite3_column_bytes (s->walk, 1) == (int) s->size)
    memcpy (rec, sqlite3_column_blob (s->walk, 1), s->size);
  return TRUE;
}

/* The records the log names that the table lacks, reported after the
 * table's own rows: the first ST_DB_REPLAY_REPORT_MAX ids are kept (no
 * more can be shown), the rest counted. */
typedef struct {
  guint n;
  gint64 ids[ST_DB_REPLAY_REPORT_MAX];
} ReplayMissing;

static void
st_db_replay_missing_add (ReplayMissing *m, gint64 id)
{
  if (m->n < G_N_ELEMENTS (m->ids))
    m->ids[m->n] = id;
  m->n++;
}

static gboolean
st_db_replay_missing_report (Replay *r, ReplayMissing *m, const char *what, GError **error)
{
  if (r->spill_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&r->spill_error));
      return FALSE;
    }
  guint shown = MIN (m->n, G_N_ELEMENTS (m->ids));
  for (guint i = 0; i < shown; i++)
    st_db_replay_problem (r, "%s %" G_GINT64_FORMAT " is in the log but not in the table", what, m->ids[i]);
  r->problems += m->n - shown;
  return TRUE;
}

static gboolean
st_db_replay_flush (Replay *r, ReplayStore *s, GError **error)
{
  if (!st_db_replay_store_flush (r, s))
    {
      g_propagate_error (error, g_steal_pointer (&r->spill_error));
      return FALSE;
    }
  return TRUE;
}

/* The unit's Matter record (the columns from @first) against the digest
 * the log gives it: a passcode, verifier or code rewritten, a record added
 * or deleted behind the station's back. */
static void
st_db_replay_unit_matter (Replay *r, gint64 id, const ReplayUnit *u, sqlite3_stmt *stmt, int first)
{
  g_autoptr(StDbUnitMatter) m = st_db_unit_matter_from_cols (stmt, first);
  g_autofree gchar *hex = m != NULL ? st_db_unit_matter_digest (m) : NULL;
  guint64 is = st_db_replay_digest (r, hex);
  if (is == u->matter)
    return;
  if (m == NULL)
    st_db_replay_problem (r, "unit %" G_GINT64_FORMAT ": its Matter record is missing; the log "
                          "gives it one", id);
  else if (u->matter == 0)
    st_db_replay_problem (r, "unit %" G_GINT64_FORMAT ": it has a Matter record the log does not "
                          "give it", id);
  else
    st_db_replay_problem (r, "unit %" G_GINT64_FORMAT ": its Matter record (passcode, verifier, "
                          "salt, discriminator or codes) is not the one in the log", id);
}

static gboolean
st_db_replay_units (Replay *r, GError **error)
{
  g_autoptr(StSqliteStmtRef) stmt = st_db_conn_prepare (r->c,
      "SELECT u.id, u.batch_id, u.uid, u.state, u.product_serial, " ST_DB_UNIT_MATTER_COLS
      " FROM units u LEFT JOIN unit_matter m ON m.unit_id = u.id ORDER BY u.id", error);
  if (stmt == NULL || !st_db_replay_flush (r, &r->ustore, error))
    return FALSE;
  /* the table and the replay's records side by side, in id order */
  ReplayUnit logged, current;
  gint64 logged_id = 0;
  ReplayMissing missing = { 0 };
  gboolean have = st_db_replay_store_next (r, &r->ustore, &logged_id, &logged);
  for (;;)
    {
      gboolean row = FALSE;
      if (!st_db_step (r->c, stmt, &row, "cannot read the units", error))
        return FALSE;
      if (!row)
        break;
      gint64 id = sqlite3_column_int64 (stmt, 0);
      st_db_progress (r->db, "units", id, r->max_unit_row);
      for (; have && logged_id < id; have = st_db_replay_store_next (r, &r->ustore, &logged_id, &logged))
        if (logged.flags & R_IN_LOG)
          st_db_replay_missing_add (&missing, logged_id);
      ReplayUnit *u = NULL;
      if (have && logged_id == id)
        {
          current = logged;
          u = &current;
          have = st_db_replay_store_next (r, &r->ustore, &logged_id, &logged);
        }
      if (u == NULL || !(u->flags & R_IN_LOG))
        {
          if (!st_db_replay_older (r, id, r->first_created_unit))
            st_db_replay_problem (r, "unit %" G_GINT64_FORMAT " is not in the log", id);
          continue;
        }
      r->n_units++;
      gint64 batch = sqlite3_column_int64 (stmt, 1);
      const char *state = (const char *) sqlite3_column_text (stmt, 3);
      if ((u->known & U_K_BATCH) && batch != (gint64) u->batch)
        st_db_replay_problem (r, "unit %" G_GINT64_FORMAT ": batch is %" G_GINT64_FORMAT
                              ", the log says %u", id, batch, u->batch);
      if ((u->known & U_K_UID)
          && st_db_replay_digest (r, (const char *) sqlite3_column_text (stmt, 2)) != u->uid)
        st_db_replay_problem (r, "unit %" G_GINT64_FORMAT ": its uid %s is not the one in the log",
                              id, (const char *) sqlite3_column_text (stmt, 2));
      if (u->state == ST_DB_STATE_OTHER)
        st_db_replay_problem (r, "unit %" G_GINT64_FORMAT ": the log gives it a state the replay "
                              "does not know (st_db_replay_unit_states)", id);
      else if (u->state != 0 && UNIT_STATE (state) != u->state)
        st_db_replay_problem (r, "unit %" G_GINT64_FORMAT ": state is %s, the log says %s", id,
                              state != NULL ? state : "NULL",
                              st_db_replay_state_name (st_db_replay_unit_states, u->state));
      if ((u->known & U_K_PSERIAL)
          && st_db_replay_digest (r, (const char *) sqlite3_column_text (stmt, 4)) != u->product_serial)
        st_db_replay_problem (r, "unit %" G_GINT64_FORMAT ": its product serial is not the one in "
                              "the log", id);
      if (u->known & U_K_MATTER)
        st_db_replay_unit_matter (r, id, u, stmt, 5);
    }
  for (; have; have = st_db_replay_store_next (r, &r->ustore, &logged_id, &logged))
    if (logged.flags & R_IN_LOG)
      st_db_replay_missing_add (&missing, logged_id);
  return st_db_replay_missing_report (r, &missing, "unit", error);
}

static gboolean
st_db_replay_certs (Replay *r, GError **error)
{
  g_autoptr(StSqliteStmtRef) stmt = st_db_conn_prepare (r->c,
      "SELECT id, unit_id, serial, pubkey_sha256, issuer, tbs, der, state FROM certificates ORDER BY id",
      error);
  if (stmt == NULL || !st_db_replay_flush (r, &r->cstore, error))
    return FALSE;
  ReplayCert logged, current;
  gint64 logged_id = 0;
  ReplayMissing missing = { 0 };
  gboolean have = st_db_replay_store_next (r, &r->cstore, &logged_id, &logged);
  for (;;)
    {
      gboolean row = FALSE;
      if (!st_db_step (r->c, stmt, &row, "cannot read the certificates", error))
        return FALSE;
      if (!row)
        break;
      gint64 id = sqlite3_column_int64 (stmt, 0);
      st_db_progress (r->db, "certificates", id, r->max_cert_row);
      for (; have && logged_id < id; have = st_db_replay_store_next (r, &r->cstore, &logged_id, &logged))
        if (logged.flags & R_IN_LOG)
          st_db_replay_missing_add (&missing, logged_id);
      ReplayCert *c = NULL;
      if (have && logged_id == id)
        {
          current = logged;
          c = &current;
          have = st_db_replay_store_next (r, &r->cstore, &logged_id, &logged);
        }
      if (c == NULL || !(c->flags & R_IN_LOG))
        {
          if (!st_db_replay_older (r, id, r->first_created_cert))
            st_db_replay_problem (r, "certificate %" G_GINT64_FORMAT " is not in the log", id);
          continue;
        }
      r->n_certs++;
      gint64 unit = sqlite3_column_int64 (stmt, 1);
      const char *state = (const char *) sqlite3_column_text (stmt, 7);
      if ((c->known & C_K_UNIT) && unit != (gint64) c->unit)
        st_db_replay_problem (r, "certificate %" G_GINT64_FORMAT ": unit is %" G_GINT64_FORMAT
                              ", the log says %u", id, unit, c->unit);
      if ((c->known & C_K_SERIAL)
          && st_db_replay_digest (r, (const char *) sqlite3_column_text (stmt, 2)) != c->serial)
        st_db_replay_problem (r, "certificate %" G_GINT64_FORMAT ": its serial is not the one in "
                              "the log", id);
      if ((c->known & C_K_PUBKEY)
          && st_db_replay_digest (r, (const char *) sqlite3_column_text (stmt, 3)) != c->pubkey)
        st_db_replay_problem (r, "certificate %" G_GINT64_FORMAT ": its public key is not the one "
                              "in the log", id);
      if (c->known & C_K_IDENT)
        {
          const void *tbs = sqlite3_column_blob (stmt, 5);
          gsize tbs_len = tbs != NULL ? (gsize) sqlite3_column_bytes (stmt, 5) : 0;
          g_autofree gchar *tbs_sha256 = st_sha256_hex (tbs, tbs_len);
          const char *issuer = (const char *) sqlite3_column_text (stmt, 4);
          if (st_db_replay_ident (r, issuer != NULL ? issuer : "", tbs_sha256) != c->ident)
            st_db_replay_problem (r, "certificate %" G_GINT64_FORMAT ": its issuer or to-be-signed "
                                  "certificate is not the one in the log", id);
        }
      if (c->known & C_K_DER)
        {
          const void *der = sqlite3_column_blob (stmt, 6);
          g_autofree gchar *der_sha256 = der != NULL
              ? st_sha256_hex (der, (gsize) sqlite3_column_bytes (stmt, 6)) : NULL;
          if (st_db_replay_digest (r, der_sha256) != c->der)
            st_db_replay_problem (r, "certificate %" G_GINT64_FORMAT ": its DER is not the one the "
                                  "log recorded as issued", id);
        }
      if (c->state == ST_DB_STATE_OTHER)
        st_db_replay_problem (r, "certificate %" G_GINT64_FORMAT ": the log gives it a state the "
                              "replay does not know (st_db_replay_cert_states)", id);
      else if (c->state != 0 && CERT_STATE (state) != c->state)
        st_db_replay_problem (r, "certificate %" G_GINT64_FORMAT ": state is %s, the log says %s", id,
                              state != NULL ? state : "NULL",
                              st_db_replay_state_name (st_db_replay_cert_states, c->state));
    }
  for (; have; have = st_db_replay_store_next (r, &r->cstore, &logged_id, &logged))
    if (logged.flags & R_IN_LOG)
      st_db_replay_missing_add (&missing, logged_id);
  return st_db_replay_missing_report (r, &missing, "certificate", error);
}

/* The CRL numbers: every row taken and signed as the log says, none the
 * log does not name (a row added, a number reused, a hash changed). */
static gboolean
st_db_replay_crls (Replay *r, GError **error)
{
  g_autoptr(StSqliteStmtRef) stmt = st_db_conn_prepare (r->c,
      "SELECT number, der_sha256, entries FROM crls ORDER BY number", error);
  if (stmt == NULL)
    return FALSE;
  for (;;)
    {
      gboolean row = FALSE;
      if (!st_db_step (r->c, stmt, &row, "cannot read the CRL numbers", error))
        return FALSE;
      if (!row)
        break;
      gint64 number = sqlite3_column_int64 (stmt, 0);
      const char *sha = (const char *) sqlite3_column_text (stmt, 1);
      gint64 entries = sqlite3_column_type (stmt, 2) == SQLITE_NULL ? -1 : sqlite3_column_int64 (stmt, 2);
      ReplayCrl *c = g_hash_table_lookup (r->crls, &number);
      if (c == NULL)
        {
          st_db_replay_problem (r, "CRL number %" G_GINT64_FORMAT " is not in the log", number);
          continue;
        }
      c->flags |= R_SEEN;
      r->n_crls++;
      if (g_strcmp0 (sha, c->der_sha256) != 0 || entries != c->entries)
        st_db_replay_problem (r, "CRL number %" G_GINT64_FORMAT ": its SHA-256 or count of entries is "
                              "not the one the log recorded", number);
    }
  GHashTableIter it;
  gpointer key, value;
  g_hash_table_iter_init (&it, r->crls);
  while (g_hash_table_iter_next (&it, &key, &value))
    if (!(((ReplayCrl *) value)->flags & R_SEEN))
      st_db_replay_problem (r, "CRL number %" G_GINT64_FORMAT " is in the log but not in the table",
                            *(gint64 *) key);
  return TRUE;
}

/* ---------- the whole of it ---------- */

static gboolean
st_db_replay_run (Replay *r, GError **error)
{
  if (!st_db_conn_query_int (r->c, "SELECT coalesce (max (id), 0) FROM units", &r->max_unit_row, error)
      || !st_db_conn_query_int (r->c, "SELECT coalesce (max (id), 0) FROM certificates",
                                &r->max_cert_row, error)
      || !st_db_replay_walk (r, error)
      || !st_db_replay_operators (r, error)
      || !st_db_replay_batches (r, error)
      || !st_db_replay_units (r, error)
      || !st_db_replay_certs (r, error)
      || !st_db_replay_crls (r, error))
    return FALSE;
  return TRUE;
}

gboolean
st_db_audit_explain (StDb *db, GString *report, guint *n_unexplained, GError **error)
{
  g_autoptr(GString) local = g_string_new (NULL);
  g_autoptr(StDbConn) c = st_db_conn_open (db->path, TRUE, error);
  if (c == NULL)
    {
      g_prefix_error (error, "cannot replay the audit log: ");
      return FALSE;
    }
  Replay r = {
    .db = db,
    .c = c,
    .report = report != NULL ? report : local,
    .operators = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                        (GDestroyNotify) st_db_replay_operator_free),
    .batches = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free,
                                      (GDestroyNotify) st_db_replay_batch_free),
    .sha = g_checksum_new (G_CHECKSUM_SHA256),
    .crls = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free,
                                   (GDestroyNotify) st_db_replay_crl_free),
  };
  gboolean ok = st_db_replay_spill_open (&r);
  if (!ok)
    g_propagate_error (error, g_steal_pointer (&r.spill_error));
  /* one snapshot: the log and the tables as of the same commit */
  ok = ok && st_db_conn_exec (c, "BEGIN", error);
  if (ok)
    {
      ok = st_db_replay_run (&r, error);
      g_autoptr(GError) end_error = NULL;
      if (!st_db_conn_exec (c, "COMMIT", ok ? error : &end_error))
        ok = FALSE;
    }
  g_hash_table_unref (r.operators);
  g_hash_table_unref (r.batches);
  st_db_replay_store_clear (&r.ustore);
  st_db_replay_store_clear (&r.cstore);
  sqlite3_close (r.spill);
  g_clear_error (&r.spill_error);
  g_checksum_free (r.sha);
  g_hash_table_unref (r.crls);
  if (!ok)
    {
      g_prefix_error (error, "cannot replay the audit log: ");
      return FALSE;
    }
  if (r.problems > ST_DB_REPLAY_REPORT_MAX)
    g_string_append_printf (r.report, _("records: ... %u more rows the log does not explain\n"),
                            r.problems - ST_DB_REPLAY_REPORT_MAX);
  if (r.first_unbound != 0)
    g_string_append_printf (r.report, _("records: entries before seq %" PRId64 " predate "
                            "record binding: rows they created are checked only for existence and "
                            "for what their payloads name (not the PIN hash, the profile text, the "
                            "issuer nor the to-be-signed certificate)\n"),
                            r.last_unbound + 1);
  if (r.n_older_rows > 0)
    g_string_append_printf (r.report, _("records: %u row(s) are older than the log (below the first "
                            "id it created): checked only for existence\n"), r.n_older_rows);
  g_autofree gchar *crls_text = g_strdup_printf (_(", %u CRL number(s)"), r.n_crls);
  if (r.problems == 0)
    g_string_append_printf (r.report, _("records: ok (the log explains %u operator(s), %u batch(es), "
                            "%u unit(s), %u certificate(s)%s)\n"),
                            r.n_operators, r.n_batches, r.n_units, r.n_certs,
                            r.n_crls > 0 ? crls_text : "");
  else
    g_string_append_printf (r.report, _("records: FAILED: %u row(s) or field(s) the log does not "
                            "explain: they were changed behind the station's back\n"), r.problems);
  if (n_unexplained != NULL)
    *n_unexplained = r.problems;
  return TRUE;
}
