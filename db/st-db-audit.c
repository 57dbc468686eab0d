/* The audit trail: the hash chain every write appends to (inside the
 * writer's transaction), who does it, the event log, reading the chain,
 * its signed checkpoints and verifying it (docs/audit.md). */
#include "st-db.h"

#include <glib/gi18n.h>
#include <inttypes.h>
#include "st-db-private.h"
#include "st-error.h"
#include "st-sqlite.h"
#include "st-util.h"

#include <json-glib/json-glib.h>
#include <stdarg.h>
#include <string.h>

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
gboolean
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

/* An event that changes records is logged only by the db/ function that
 * makes the change: written through st_db_audit_add or st_db_event_add, it
 * would explain to the replay (st-db-replay.c) a row nobody wrote. */
static gboolean
st_db_check_not_record_event (const char *event, GError **error)
{
  if (st_db_replay_handles (event))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "'%s' is an event that changes records: only the change itself logs it", event);
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
      || !st_db_check_not_record_event (event, error)
      || !st_db_check_text ("the event payload", payload_json, FALSE, ST_DB_DETAIL_MAX, error)
      || !st_db_check_json (payload_json, error)
      || !st_db_write (db, st_db_w_event_add, &a, NULL, error))
    {
      g_prefix_error (error, "cannot record event '%s': ", event != NULL ? event : "(none)");
      return FALSE;
    }
  return TRUE;
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
      || !st_db_check_not_record_event (event, error)
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
  StDb *db;
  GString *report;
  guint problems;
  gint64 n, last_seq, max_seq;
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
  g_string_append (v->report, _("audit chain: FAILED: "));
  g_string_append_vprintf (v->report, fmt, ap);
  g_string_append_c (v->report, '\n');
  va_end (ap);
}

static gboolean
st_db_audit_verify_entry (const StDbAuditEntry *e, gpointer user_data, GError **error)
{
  AuditVerify *v = user_data;
  v->n++;
  st_db_progress (v->db, "audit chain", e->seq, v->max_seq);
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
  AuditVerify v = { .db = db, .report = report != NULL ? report : local,
                    .last_hash = g_strdup (ST_DB_AUDIT_GENESIS) };
  if (db->progress_func != NULL)
    {
      g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&db->rlock);
      if (!st_db_conn_query_int (db->r, "SELECT coalesce (max (seq), 0) FROM audit", &v.max_seq, error))
        {
          g_free (v.last_hash);
          return FALSE;
        }
    }
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
    g_string_append_printf (v.report, _("audit chain: ... %u more problems\n"),
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
  g_string_append_printf (v.report, _("audit chain: ok (%" PRId64 " entries, %u checkpoint(s) "
                          "match)\n"), v.n, cps->len);
  return TRUE;
}
