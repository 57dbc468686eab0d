/* Batches: creating, closing and reading them, and each batch's quota of
 * voided certificates. */
#include "st-db.h"
#include "st-db-private.h"
#include "st-error.h"
#include "st-sqlite.h"
#include "st-util.h"

#include <string.h>

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
  /* the text the line issues from, bound to the log (st-db-replay.c) */
  g_autofree gchar *text_sha256 = st_sha256_hex ((const guint8 *) a->profile_text, strlen (a->profile_text));
  g_autofree gchar *payload = st_db_payload ("isssiss", "batch", *result, "work_order", a->work_order,
                                             "product", a->product, "profile_sha256", a->profile_sha256,
                                             "quantity", a->quantity, "station_id", a->station_id,
                                             "profile_text_sha256", text_sha256);
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
        "SELECT state, units_issuing + units_issued, certs_disputed FROM batches WHERE id = ?",
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
    gint64 disputed = sqlite3_column_int64 (stmt, 2);
    if (disputed > 0)
      {
        g_set_error (error, ST_ERROR, ST_ERROR_BUSY,
                     "batch %" G_GINT64_FORMAT " has %" G_GINT64_FORMAT " disputed unit(s): a lead "
                     "decides each first ('station unit resolve UID --keep' or '--void'; 'station "
                     "batch show' lists them), then closes it", a->id, disputed);
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

/* Every count is a column of the batch, kept by triggers (schema 9; `db
 * check` compares them with the rows): no query here reads the units or
 * the certificates, whatever the size of the batch. */
#define ST_DB_BATCH_SELECT \
  "SELECT b.id, b.work_order, b.product, b.profile_sha256, b.profile_text, b.state," \
  " b.created_by, b.closed_by, b.station_id, b.quantity, b.created_at, coalesce (b.closed_at, 0)," \
  " b.units_started + b.units_issuing + b.units_issued + b.units_done + b.units_failed," \
  " b.units_done, b.units_failed," \
  " b.live_certs," /* kept by trigger (schema 3); `db check` verifies it */ \
  " b.certs_voided, b.certs_unconfirmed, b.certs_disputed, b.certs_revoked" \
  " FROM batches b "


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
  b->n_disputed = sqlite3_column_int64 (stmt, 18);
  b->n_revoked = sqlite3_column_int64 (stmt, 19);
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

/* The batch's state, NOT_FOUND naming the id if there is none. */
gboolean
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

/* ---------- the quota of voided certificates ---------- */

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
      "SELECT quantity, void_allowance, certs_voided FROM batches WHERE id = ?",
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

gboolean
st_db_w_void_cap (StDbConn *c, gint64 batch_id, gint64 *voided, gint64 *cap, GError **error)
{
  return st_db_conn_void_cap (c, batch_id, voided, cap, error);
}

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
  g_autofree gchar *payload = st_db_payload ("iiiii", "batch", a->batch_id, "voided", voided,
                                             "cap_was", cap, "cap", cap + step, "void_allowance",
                                             cap + step - st_db_void_cap_base (quantity));
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
