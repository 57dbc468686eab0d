/* Units and their certificates: the life cycle (st-db.h), the product
 * sequences, and reading units back. */
#include "st-db.h"
#include "st-db-private.h"
#include "st-error.h"
#include "st-sqlite.h"
#include "st-util.h"

#include <string.h>

/* ---------- units ---------- */

typedef struct {
  gint64 batch_id;
  const char *port, *uid, *model, *fw_version, *operator_name;
} UnitBegin;

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
        "SELECT id, serial, batch_id, unit_id, state FROM certificates WHERE uid = ? AND " ST_DB_LIVE ("state"),
        "cannot look up the uid's certificates", &row, error, "t", uid);
    if (stmt == NULL)
      return FALSE;
    if (row)
      {
        gint64 old_id = sqlite3_column_int64 (stmt, 0);
        g_autofree gchar *old_serial = st_db_col_text (stmt, 1);
        gint64 old_batch = sqlite3_column_int64 (stmt, 2);
        gint64 old_unit = sqlite3_column_int64 (stmt, 3);
        if (g_strcmp0 ((const char *) sqlite3_column_text (stmt, 4), "disputed") == 0)
          {
            /* re-provisioning does not decide a dispute: a lead does */
            g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                         "uid %s has the disputed certificate serial %s (batch %" G_GINT64_FORMAT
                         "): a lead decides the dispute first ('station unit resolve %s --keep' "
                         "or '--void')", uid, old_serial, old_batch, uid);
            return FALSE;
          }
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
  gsize tbs_len = 0;
  const guint8 *tbs = g_bytes_get_data (a->tbs, &tbs_len);
  g_autofree gchar *tbs_sha256 = st_sha256_hex (tbs, tbs_len);
  g_autofree gchar *payload = st_db_payload ("iiisssssibss", "unit", a->unit_id, "cert", *result,
                                             "batch", batch_id, "uid", uid, "port", a->port,
                                             "serial", a->serial, "pubkey_sha256", a->pubkey_sha256,
                                             "product_serial", a->product_serial,
                                             "product_seq", a->product_seq,
                                             "allow_reprovision", a->allow_reprovision,
                                             "issuer", a->issuer, "tbs_sha256", tbs_sha256);
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
  /* the unit's state after the move, as the table now holds it */
  g_autofree gchar *unit_state = NULL, *unused = NULL;
  gint64 unused_id = 0;
  if (!st_db_w_states (c, "SELECT state, id, NULL FROM units WHERE id = ?", "unit", unit_id,
                       &unit_state, &unused_id, &unused, error))
    return FALSE;
  g_autofree gchar *payload = st_db_payload ("iissss", "cert", a->cert_id, "unit", unit_id,
                                             "from", from, "to", a->state, "reason", a->reason,
                                             "unit_state", unit_state);
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

/* ---------- disputes ---------- */

typedef struct {
  gint64 cert_id;
  const char *step, *reason, *detail, *port, *operator_name;
} CertDispute;

static gboolean
st_db_w_cert_dispute (StDbConn *c, gpointer data, gint64 *result, GError **error)
{
  CertDispute *a = data;
  g_autofree gchar *cstate = NULL, *ustate = NULL;
  gint64 unit_id = 0;
  if (!st_db_w_cert_states (c, a->cert_id, &cstate, &unit_id, &ustate, error))
    return FALSE;
  if (g_strcmp0 (cstate, "unconfirmed") != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "certificate %" G_GINT64_FORMAT " is '%s': only an 'unconfirmed' certificate "
                   "can be disputed", a->cert_id, cstate);
      return FALSE;
    }
  gint64 now = st_db_now ();
  if (!st_db_conn_run (c,
      "UPDATE certificates SET state = 'disputed', dispute_reason = ?, disputed_at = ? WHERE id = ?",
      "cannot record the dispute", error, "tii", a->reason, now, a->cert_id))
    return FALSE;
  /* a unit left 'issued' by an interruption ends here; a failed one keeps
   * its failure */
  if (!st_db_conn_run (c,
      "UPDATE units SET state = 'failed', fail_step = ?, fail_reason = ?, fail_detail = ?, finished_at = ?"
      " WHERE id = ? AND " ST_DB_UNFINISHED ("state"),
      "cannot update the unit", error, "tttii", a->step, a->reason, a->detail, now, unit_id))
    return FALSE;
  g_autoptr(StSqliteStmtRef) stmt = NULL;
  gboolean row = FALSE;
  stmt = st_db_conn_query (c, "SELECT uid, serial FROM certificates WHERE id = ?",
                           "cannot read the certificate", &row, error, "i", a->cert_id);
  if (stmt == NULL)
    return FALSE;
  g_autofree gchar *uid = row ? st_db_col_text (stmt, 0) : NULL;
  g_autofree gchar *serial = row ? st_db_col_text (stmt, 1) : NULL;
  g_autofree gchar *payload = st_db_payload ("iisssssss", "cert", a->cert_id, "unit", unit_id,
                                             "uid", uid, "cert_serial", serial, "from", cstate,
                                             "unit_state_was", ustate, "port", a->port,
                                             "step", a->step, "reason", a->reason);
  return st_db_w_audit (c, a->operator_name, "cert-dispute", payload, error);
}

gboolean
st_db_cert_dispute (StDb *db, gint64 cert_id, const char *step, const char *reason,
                    const char *detail, const char *port, const char *operator_name,
                    GError **error)
{
  CertDispute a = { cert_id, step, reason, detail, port, operator_name };
  if (!st_db_check_text ("the step", step, TRUE, ST_DB_NAME_MAX, error)
      || !st_db_check_text ("the reason", reason, TRUE, ST_DB_NAME_MAX, error)
      || !st_db_check_text ("the detail", detail, FALSE, ST_DB_DETAIL_MAX, error)
      || !st_db_check_text ("the port", port, FALSE, ST_DB_NAME_MAX, error)
      || !st_db_check_text ("the operator", operator_name, TRUE, ST_DB_NAME_MAX, error)
      || !st_db_write (db, st_db_w_cert_dispute, &a, NULL, error))
    {
      g_prefix_error (error, "cannot record certificate %" G_GINT64_FORMAT " as disputed: ", cert_id);
      return FALSE;
    }
  return TRUE;
}

const char *
st_db_dispute_decision_to_string (StDbDisputeDecision decision)
{
  switch (decision)
    {
    case ST_DB_DISPUTE_KEEP: return "keep";
    case ST_DB_DISPUTE_VOID: return "void";
    }
  return NULL;
}

gboolean
st_db_cert_named_read (StDbConn *c, gint64 cert_id, StDbCertNamed *out, GError **error)
{
  gboolean row = FALSE;
  g_autoptr(StSqliteStmtRef) stmt = st_db_conn_query (c,
      "SELECT c.state, c.unit_id, c.uid, c.serial, u.product_serial FROM certificates c"
      " JOIN units u ON u.id = c.unit_id WHERE c.id = ?", "cannot read the certificate", &row, error,
      "i", cert_id);
  if (stmt == NULL)
    return FALSE;
  if (!row)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND, "there is no certificate %" G_GINT64_FORMAT,
                   cert_id);
      return FALSE;
    }
  out->state = st_db_col_text (stmt, 0);
  out->unit_id = sqlite3_column_int64 (stmt, 1);
  out->uid = st_db_col_text (stmt, 2);
  out->serial = st_db_col_text (stmt, 3);
  out->product_serial = st_db_col_text (stmt, 4);
  return TRUE;
}

void
st_db_cert_named_clear (StDbCertNamed *n)
{
  g_free (n->state);
  g_free (n->uid);
  g_free (n->serial);
  g_free (n->product_serial);
  memset (n, 0, sizeof *n);
}

typedef struct {
  gint64 cert_id;
  StDbDisputeDecision decision;
  const char *by;
} CertResolve;

static gboolean
st_db_w_cert_resolve (StDbConn *c, gpointer data, gint64 *result, GError **error)
{
  CertResolve *a = data;
  g_auto(StDbCertNamed) n = { 0 };
  if (!st_db_cert_named_read (c, a->cert_id, &n, error))
    return FALSE;
  const char *cstate = n.state, *uid = n.uid, *serial = n.serial, *product_serial = n.product_serial;
  gint64 unit_id = n.unit_id;
  if (g_strcmp0 (cstate, "disputed") != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "certificate %s of unit %" G_GINT64_FORMAT " is '%s', not disputed: there is "
                   "nothing to decide", serial, unit_id, cstate);
      return FALSE;
    }
  const char *to = a->decision == ST_DB_DISPUTE_KEEP ? "unconfirmed" : "voided";
  if (a->decision == ST_DB_DISPUTE_KEEP)
    {
      if (!st_db_conn_run (c, "UPDATE certificates SET state = 'unconfirmed' WHERE id = ?",
                           "cannot keep the certificate", error, "i", a->cert_id))
        return FALSE;
    }
  else
    {
      gboolean row = FALSE;
      g_autoptr(StSqliteStmtRef) stmt = st_db_conn_query (c, "SELECT dispute_reason FROM certificates"
                                                          " WHERE id = ?", "cannot read the dispute",
                                                          &row, error, "i", a->cert_id);
      if (stmt == NULL)
        return FALSE;
      g_autofree gchar *why = row ? st_db_col_text (stmt, 0) : NULL;
      g_clear_pointer (&stmt, st_sqlite_stmt_release);
      g_autofree gchar *reason = g_strdup_printf ("voided by %s deciding the dispute over uid %s (%s)",
                                                  a->by, uid, why != NULL ? why : "no reason recorded");
      if (!st_db_conn_run (c,
          "UPDATE certificates SET state = 'voided', void_reason = ?, voided_at = ? WHERE id = ?",
          "cannot void the certificate", error, "tii", reason, st_db_now (), a->cert_id))
        return FALSE;
    }
  g_autofree gchar *payload = st_db_payload ("iissssss", "unit", unit_id, "cert", a->cert_id,
                                             "uid", uid, "cert_serial", serial,
                                             "product_serial", product_serial,
                                             "decision", st_db_dispute_decision_to_string (a->decision),
                                             "from", cstate, "to", to);
  return st_db_w_audit (c, a->by, "unit-resolve", payload, error);
}

gboolean
st_db_cert_resolve_dispute (StDb *db, gint64 cert_id, StDbDisputeDecision decision,
                            const char *by, GError **error)
{
  CertResolve a = { cert_id, decision, by };
  if (st_db_dispute_decision_to_string (decision) == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "cannot decide the dispute over certificate %" G_GINT64_FORMAT ": unknown "
                   "decision %d", cert_id, (int) decision);
      return FALSE;
    }
  if (!st_db_check_text ("the lead", by, TRUE, ST_DB_NAME_MAX, error)
      || !st_db_write (db, st_db_w_cert_resolve, &a, NULL, error))
    {
      g_prefix_error (error, "cannot decide the dispute over certificate %" G_GINT64_FORMAT ": ", cert_id);
      return FALSE;
    }
  return TRUE;
}

/* Where the database's sequence of @product is (moved by every
 * reservation); under seq_lock. */
static gboolean
st_db_product_seq_recorded (StDb *db, const char *product, gint64 *recorded, GError **error)
{
  *recorded = 1;
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&db->rlock);
  gboolean row = FALSE;
  g_autoptr(StSqliteStmtRef) stmt = st_db_conn_query (db->r,
      "SELECT next FROM product_sequences WHERE product = ?",
      "cannot read the product's sequence", &row, error, "t", product);
  if (stmt == NULL)
    {
      g_prefix_error (error, "cannot draw the next serial number of product %s: ", product);
      return FALSE;
    }
  if (row)
    *recorded = sqlite3_column_int64 (stmt, 0);
  return TRUE;
}

/* The in-memory next number of @product, read from the database the first
 * time (or when @resync), never moved back; under seq_lock. */
static gint64 *
st_db_product_seq_next (StDb *db, const char *product, gboolean resync, GError **error)
{
  gint64 *next = g_hash_table_lookup (db->seq_next, product);
  if (next != NULL && !resync)
    return next;
  gint64 recorded = 1;
  if (!st_db_product_seq_recorded (db, product, &recorded, error))
    return NULL;
  if (next == NULL)
    {
      next = g_new0 (gint64, 1);
      g_hash_table_insert (db->seq_next, g_strdup (product), next);
    }
  *next = MAX (*next, recorded);
  return next;
}

gint64
st_db_product_seq_draw (StDb *db, const char *product, GError **error)
{
  if (!st_db_check_text ("the product", product, TRUE, ST_DB_NAME_MAX, error))
    {
      g_prefix_error (error, "cannot draw the next serial number: ");
      return 0;
    }
  /* The database is read the first time only: one service per home (its
   * lock) draws, so what it handed out is all there is. A reservation that
   * collided anyway (another process on the same file) resyncs. */
  g_autoptr(GMutexLocker) seq_locker = g_mutex_locker_new (&db->seq_lock);
  gint64 *next = st_db_product_seq_next (db, product, FALSE, error);
  if (next == NULL)
    return 0;
  return (*next)++;
}

gboolean
st_db_product_seq_resync (StDb *db, const char *product, GError **error)
{
  g_autoptr(GMutexLocker) seq_locker = g_mutex_locker_new (&db->seq_lock);
  return st_db_product_seq_next (db, product, TRUE, error) != NULL;
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
  const StDbUnitMatter *matter;  /* NULL: not a Matter unit */
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
  if (!st_db_w_cert_reserve (c, &a->reserve, result, error))
    return FALSE;
  /* the Matter record in the same transaction: no unit is signed without it */
  return a->matter == NULL
         || st_db_w_unit_matter (c, a->unit_id, a->unit->operator_name, a->matter, error);
}

gint64
st_db_unit_begin_reserve (StDb *db, const StDbUnitNew *unit, const char *issuer,
                          const char *serial_hex, const char *pubkey_sha256, GBytes *tbs,
                          const char *product_serial, gint64 product_seq,
                          gboolean allow_reprovision, gint64 *unit_id, GError **error)
{
  return st_db_unit_begin_reserve_matter (db, unit, issuer, serial_hex, pubkey_sha256, tbs,
                                          product_serial, product_seq, allow_reprovision, NULL,
                                          unit_id, error);
}

gint64
st_db_unit_begin_reserve_matter (StDb *db, const StDbUnitNew *unit, const char *issuer,
                                 const char *serial_hex, const char *pubkey_sha256, GBytes *tbs,
                                 const char *product_serial, gint64 product_seq,
                                 gboolean allow_reprovision, const StDbUnitMatter *matter,
                                 gint64 *unit_id, GError **error)
{
  UnitBeginReserve a = {
    .unit = unit,
    .reserve = { 0, issuer, serial_hex, pubkey_sha256, product_serial, tbs, product_seq,
                 allow_reprovision },
    .matter = matter,
  };
  gint64 id = 0;
  if (!st_db_check_unit_new (unit, error)
      || (matter != NULL && !st_db_unit_matter_check (matter, error))
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
  g_free (u->dispute_reason);
  g_clear_pointer (&u->cert_der, g_bytes_unref);
  g_clear_pointer (&u->tbs, g_bytes_unref);
  g_free (u);
}

#define ST_DB_UNIT_SELECT \
  "SELECT u.id, u.batch_id, coalesce (u.product_seq, 0), u.started_at, coalesce (u.finished_at, 0)," \
  " u.port, u.uid, u.model, u.fw_version, u.product_serial, u.state, u.fail_step, u.fail_reason," \
  " u.fail_detail, u.operator, coalesce (c.id, 0), coalesce (c.issued_at, 0), c.serial, c.state," \
  " c.issuer, c.pubkey_sha256, c.void_reason, c.der, c.tbs, c.dispute_reason" \
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
  u->dispute_reason = st_db_col_text (stmt, 24);
  return u;
}

/* Runs a unit query (bound with @types and one argument) into an array. */
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

/* A page of the batch's units: those with an id above @after_id, in id
 * order, at most @limit of them (the next page starts after the last one's
 * id). One range of the units_batch index and of the units' primary key:
 * the cost of a page does not grow with the batch. */
GPtrArray *
st_db_unit_list_page (StDb *db, gint64 batch_id, gint64 after_id, guint limit, GError **error)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&db->rlock);
  g_autoptr(StSqliteStmtRef) stmt = st_db_conn_prepare (db->r, ST_DB_UNIT_SELECT
      "WHERE u.batch_id = ? AND u.id > ? ORDER BY u.id LIMIT ?", error);
  if (stmt == NULL || !st_db_bind (db->r, stmt, error, "iii", batch_id, after_id, (gint64) limit))
    return NULL;
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) st_db_unit_free);
  for (;;)
    {
      gboolean row = FALSE;
      if (!st_db_step (db->r, stmt, &row, "cannot list the batch's units", error))
        return NULL;
      if (!row)
        break;
      g_ptr_array_add (out, st_db_unit_from_row (stmt));
    }
  return g_steal_pointer (&out);
}

gboolean
st_db_unit_foreach (StDb *db, gint64 batch_id, StDbUnitFunc func, gpointer user_data, GError **error)
{
  gint64 after = 0;
  for (;;)
    {
      g_autoptr(GPtrArray) page = st_db_unit_list_page (db, batch_id, after, ST_DB_UNIT_PAGE, error);
      if (page == NULL)
        return FALSE;
      for (guint i = 0; i < page->len; i++)
        {
          const StDbUnit *u = g_ptr_array_index (page, i);
          if (!func (u, user_data, error))
            return FALSE;
          after = u->id;
        }
      if (page->len < ST_DB_UNIT_PAGE)
        return TRUE;
    }
}

/* The shift chart's figures without loading the units: one walk over the
 * batch's finished units in id order, in chunks of ST_DB_SHIFT_CHUNK rows
 * (the reader's lock is released between chunks, so a line's reads go on
 * while a chart of a large batch is counted), reading three columns of the
 * units table and no certificate; then the failures by step, one GROUP BY
 * over the batch's failed units (the units_batch index). A unit counts in
 * the hour it finished (it started, if it has no finish time). */
#define ST_DB_SHIFT_CHUNK 16384

gboolean
st_db_unit_shift_counts (StDb *db, gint64 batch_id, gint64 first_hour, guint n_hours,
                         guint *passed_per_hour, guint *failed_per_hour, guint *n_done, guint *n_failed,
                         GHashTable *failures_by_step, GError **error)
{
  *n_done = *n_failed = 0;
  gint64 after = 0;
  for (gboolean more = TRUE; more;)
    {
      g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&db->rlock);
      g_autoptr(StSqliteStmtRef) stmt = st_db_conn_prepare (db->r,
          "SELECT id, state = 'done', CASE WHEN finished_at > 0 THEN finished_at ELSE started_at END"
          " FROM units WHERE batch_id = ? AND state IN ('done', 'failed') AND id > ? ORDER BY id LIMIT ?",
          error);
      if (stmt == NULL || !st_db_bind (db->r, stmt, error, "iii", batch_id, after,
                                       (gint64) ST_DB_SHIFT_CHUNK))
        return FALSE;
      guint rows = 0;
      for (;;)
        {
          gboolean row = FALSE;
          if (!st_db_step (db->r, stmt, &row, "cannot count the batch's units for the shift chart", error))
            return FALSE;
          if (!row)
            break;
          rows++;
          after = sqlite3_column_int64 (stmt, 0);
          gboolean done = sqlite3_column_int (stmt, 1) != 0;
          gint64 at = sqlite3_column_int64 (stmt, 2);
          if (done)
            (*n_done)++;
          else
            (*n_failed)++;
          if (at < first_hour)
            continue;
          gint64 bucket = (at - first_hour) / 3600;
          if (bucket < (gint64) n_hours)
            (done ? passed_per_hour : failed_per_hour)[bucket]++;
        }
      more = rows == ST_DB_SHIFT_CHUNK;
    }

  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&db->rlock);
  /* a disputed unit waits for a lead: shown as such, whatever its step */
  g_autoptr(StSqliteStmtRef) stmt = st_db_conn_prepare (db->r,
      "SELECT CASE WHEN c.state = 'disputed' THEN 'disputed' ELSE COALESCE (u.fail_step, 'unknown') END,"
      " COUNT(*) FROM units u LEFT JOIN certificates c ON c.unit_id = u.id"
      " WHERE u.batch_id = ? AND u.state = 'failed' GROUP BY 1", error);
  if (stmt == NULL || !st_db_bind (db->r, stmt, error, "i", batch_id))
    return FALSE;
  for (;;)
    {
      gboolean row = FALSE;
      if (!st_db_step (db->r, stmt, &row, "cannot count the batch's failures by step", error))
        return FALSE;
      if (!row)
        return TRUE;
      g_hash_table_insert (failures_by_step, st_db_col_text (stmt, 0),
                           GUINT_TO_POINTER ((guint) sqlite3_column_int64 (stmt, 1)));
    }
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

GPtrArray *
st_db_unit_find_by_name (StDb *db, const char *name, GError **error)
{
  if (!st_db_check_text ("the uid or serial", name, TRUE, ST_DB_NAME_MAX, error))
    return NULL;
  return st_db_unit_query (db, ST_DB_UNIT_SELECT
                           "WHERE u.uid = lower (?1) OR c.serial = lower (?1) OR u.product_serial = ?1"
                           " ORDER BY u.id", "cannot look the unit up", FALSE, 0, name, error);
}

StDbUnit *
st_db_unit_get (StDb *db, gint64 unit_id, GError **error)
{
  g_autoptr(GPtrArray) units = st_db_unit_query (db, ST_DB_UNIT_SELECT "WHERE u.id = ?",
                                                 "cannot read the unit", TRUE, unit_id, NULL, error);
  g_autofree gchar *what = g_strdup_printf ("there is no unit %" G_GINT64_FORMAT, unit_id);
  return st_db_unit_take_one (units, what, error);
}
