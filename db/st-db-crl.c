/* Revocation and CRLs (docs/revocation.md): a lead revokes an active
 * certificate (schema 8, state 'revoked'); every CRL the station signs is
 * numbered here, its number taken before the HSM signs and never given
 * again; the entries of a CRL are read here. */
#include "st-db.h"
#include "st-db-private.h"
#include "st-error.h"
#include "st-sqlite.h"
#include "st-util.h"

#include <string.h>

#define ST_DB_CRL_REASON_MAX 64

/* ---------- revoking a certificate ---------- */

typedef struct {
  gint64 cert_id;
  const char *reason;
  const char *by;
} CertRevoke;

static gboolean
st_db_w_cert_revoke (StDbConn *c, gpointer data, gint64 *result, GError **error)
{
  CertRevoke *a = data;
  g_auto(StDbCertNamed) n = { 0 };
  if (!st_db_cert_named_read (c, a->cert_id, &n, error))
    return FALSE;
  const char *cstate = n.state, *uid = n.uid, *serial = n.serial, *product_serial = n.product_serial;
  gint64 unit_id = n.unit_id;
  if (g_strcmp0 (cstate, "revoked") == 0)
    {
      /* who revoked it, when and why: for the message */
      gboolean row = FALSE;
      g_autoptr(StSqliteStmtRef) stmt = st_db_conn_query (c,
          "SELECT revoke_reason, coalesce (revoked_at, 0), revoked_by FROM certificates WHERE id = ?",
          "cannot read the revocation", &row, error, "i", a->cert_id);
      if (stmt == NULL)
        return FALSE;
      g_autofree gchar *was_reason = row ? st_db_col_text (stmt, 0) : NULL;
      gint64 was_at = row ? sqlite3_column_int64 (stmt, 1) : 0;
      g_autofree gchar *was_by = row ? st_db_col_text (stmt, 2) : NULL;
      g_clear_pointer (&stmt, st_sqlite_stmt_release);
      g_autoptr(GDateTime) when = g_date_time_new_from_unix_utc (was_at);
      g_autofree gchar *when_s = when != NULL ? g_date_time_format_iso8601 (when) : g_strdup ("?");
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "certificate %s (uid %s) is already revoked: by %s at %s (%s); it is on every "
                   "CRL issued since", serial, uid, was_by, when_s, was_reason);
      return FALSE;
    }
  if (g_strcmp0 (cstate, "active") != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "certificate %s (uid %s, unit %" G_GINT64_FORMAT ") is '%s', not active: only a "
                   "certificate whose device was provisioned (active) can be revoked%s", serial, uid,
                   unit_id, cstate,
                   g_strcmp0 (cstate, "voided") == 0 ? " (a voided one is on the CRL already)" : "");
      return FALSE;
    }
  if (!st_db_conn_run (c, "UPDATE certificates SET state = 'revoked', revoke_reason = ?,"
                       " revoked_at = ?, revoked_by = ? WHERE id = ?",
                       "cannot revoke the certificate", error, "titi", a->reason, st_db_now (), a->by,
                       a->cert_id))
    return FALSE;
  g_autofree gchar *payload = st_db_payload ("iisssss", "unit", unit_id, "cert", a->cert_id,
                                             "uid", uid, "cert_serial", serial,
                                             "product_serial", product_serial,
                                             "reason", a->reason, "to", "revoked");
  return st_db_w_audit (c, a->by, "unit-revoke", payload, error);
}

gboolean
st_db_cert_revoke (StDb *db, gint64 cert_id, const char *reason, const char *by, GError **error)
{
  CertRevoke a = { cert_id, reason, by };
  if (!st_db_check_text ("the reason", reason, TRUE, ST_DB_CRL_REASON_MAX, error)
      || !st_db_check_text ("the lead", by, TRUE, ST_DB_NAME_MAX, error)
      || !st_db_write (db, st_db_w_cert_revoke, &a, NULL, error))
    {
      g_prefix_error (error, "cannot revoke certificate %" G_GINT64_FORMAT ": ", cert_id);
      return FALSE;
    }
  return TRUE;
}

/* ---------- numbering CRLs ---------- */

typedef struct {
  gint64 this_update, next_update;
  const char *by;
} CrlReserve;

static gboolean
st_db_w_crl_reserve (StDbConn *c, gpointer data, gint64 *result, GError **error)
{
  CrlReserve *a = data;
  gint64 number = 0;
  if (!st_db_conn_query_int (c, "SELECT coalesce (max (number), 0) + 1 FROM crls", &number, error)
      || !st_db_conn_run (c, "INSERT INTO crls (number, this_update, next_update, issued_by)"
                          " VALUES (?, ?, ?, ?)", "cannot take a CRL number", error, "iiit",
                          number, a->this_update, a->next_update, a->by))
    return FALSE;
  g_autofree gchar *payload = st_db_payload ("iii", "crl_number", number, "this_update",
                                             a->this_update, "next_update", a->next_update);
  if (!st_db_w_audit (c, a->by, "crl-reserve", payload, error))
    return FALSE;
  *result = number;
  return TRUE;
}

gboolean
st_db_crl_reserve (StDb *db, gint64 this_update, gint64 next_update, const char *by,
                   gint64 *number, GError **error)
{
  CrlReserve a = { this_update, next_update, by };
  if (next_update <= this_update)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "cannot take a CRL number: its next update must come after its this update");
      return FALSE;
    }
  if (!st_db_check_text ("the operator", by, TRUE, ST_DB_NAME_MAX, error)
      || !st_db_write (db, st_db_w_crl_reserve, &a, number, error))
    {
      g_prefix_error (error, "cannot take a CRL number: ");
      return FALSE;
    }
  return TRUE;
}

typedef struct {
  gint64 number, entries;
  const char *der_sha256;
  const char *by;
} CrlComplete;

static gboolean
st_db_w_crl_complete (StDbConn *c, gpointer data, gint64 *result, GError **error)
{
  CrlComplete *a = data;
  gboolean row = FALSE;
  g_autoptr(StSqliteStmtRef) stmt = st_db_conn_query (c,
      "SELECT der_sha256 IS NULL, this_update, next_update FROM crls WHERE number = ?",
      "cannot read the CRL's record", &row, error, "i", a->number);
  if (stmt == NULL)
    return FALSE;
  if (!row || sqlite3_column_int64 (stmt, 0) == 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "CRL number %" G_GINT64_FORMAT " was %s", a->number,
                   row ? "completed already" : "never taken");
      return FALSE;
    }
  gint64 this_update = sqlite3_column_int64 (stmt, 1), next_update = sqlite3_column_int64 (stmt, 2);
  g_clear_pointer (&stmt, st_sqlite_stmt_release);
  if (!st_db_conn_run (c, "UPDATE crls SET entries = ?, der_sha256 = ? WHERE number = ?",
                       "cannot record the CRL", error, "iti", a->entries, a->der_sha256, a->number))
    return FALSE;
  g_autofree gchar *payload = st_db_payload ("iiisi", "crl_number", a->number, "entries", a->entries,
                                             "this_update", this_update, "sha256", a->der_sha256,
                                             "next_update", next_update);
  return st_db_w_audit (c, a->by, "crl-issue", payload, error);
}

gboolean
st_db_crl_complete (StDb *db, gint64 number, gint64 entries, const char *der_sha256, const char *by,
                    GError **error)
{
  CrlComplete a = { number, entries, der_sha256, by };
  if (!st_db_check_hex ("the CRL's SHA-256", der_sha256, 64, 64, error)
      || !st_db_check_text ("the operator", by, TRUE, ST_DB_NAME_MAX, error)
      || !st_db_write (db, st_db_w_crl_complete, &a, NULL, error))
    {
      g_prefix_error (error, "cannot record CRL number %" G_GINT64_FORMAT ": ", number);
      return FALSE;
    }
  return TRUE;
}

/* ---------- what a CRL lists ---------- */

void
st_db_crl_entry_free (StDbCrlEntry *e)
{
  if (e == NULL)
    return;
  g_free (e->serial);
  g_free (e->issuer);
  g_free (e->state);
  g_free (e->reason);
  g_free (e);
}

static gpointer
st_db_crl_entry_from_row (sqlite3_stmt *stmt)
{
  StDbCrlEntry *e = g_new0 (StDbCrlEntry, 1);
  e->serial = st_db_col_text (stmt, 0);
  e->issuer = st_db_col_text (stmt, 1);
  e->state = st_db_col_text (stmt, 2);
  e->reason = st_db_col_text (stmt, 3);
  e->when = sqlite3_column_int64 (stmt, 4);
  return e;
}

GPtrArray *
st_db_crl_entries (StDb *db, GError **error)
{
  /* A certificate voided while 'issuing' was never signed (no der): no
   * one holds it, and it is not listed. */
  return st_db_query_list (db,
      "SELECT serial, issuer, state, CASE state WHEN 'revoked' THEN revoke_reason ELSE NULL END,"
      " CASE state WHEN 'revoked' THEN revoked_at ELSE coalesce (voided_at, issued_at, reserved_at) END"
      " FROM certificates WHERE (state = 'voided' AND der IS NOT NULL) OR state = 'revoked'"
      " ORDER BY id", "cannot list the voided and revoked certificates", FALSE, 0, NULL,
      st_db_crl_entry_from_row, (GDestroyNotify) st_db_crl_entry_free, error);
}

gboolean
st_db_crl_last_number (StDb *db, gint64 *number, GError **error)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&db->rlock);
  return st_db_conn_query_int (db->r, "SELECT coalesce (max (number), 0) FROM crls", number, error);
}
