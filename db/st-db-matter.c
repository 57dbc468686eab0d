/* The Matter factory data of a unit (schema 10; st-db.h, docs/matter.md
 * "Factory data per unit"): recorded with the unit's reservation, read
 * back by unit and per batch in pages, and the batch's sequential
 * discriminator counter. */
#include "st-db.h"
#include "st-db-private.h"
#include "st-error.h"
#include "st-sqlite.h"
#include "st-util.h"

#include <string.h>

void
st_db_unit_matter_free (StDbUnitMatter *m)
{
  if (m == NULL)
    return;
  if (m->qr_text != NULL)
    st_memwipe (m->qr_text, strlen (m->qr_text));
  if (m->manual_code != NULL)
    st_memwipe (m->manual_code, strlen (m->manual_code));
  g_free (m->qr_text);
  g_free (m->manual_code);
  g_bytes_unref (m->salt);
  g_bytes_unref (m->verifier);
  g_bytes_unref (m->unique_id);
  st_memwipe (m, sizeof *m);
  g_free (m);
}

static void
st_db_matter_hex_line (GString *s, const char *name, GBytes *b)
{
  g_string_append_printf (s, "%s=", name);
  if (b != NULL)
    {
      gsize len = 0;
      const guint8 *d = g_bytes_get_data (b, &len);
      for (gsize i = 0; i < len; i++)
        g_string_append_printf (s, "%02x", d[i]);
    }
  g_string_append_c (s, '\n');
}

gchar *
st_db_unit_matter_digest (const StDbUnitMatter *m)
{
  g_autoptr(GString) s = g_string_new ("station-matter/1\n");
  g_string_append_printf (s, "vendor_id=%u\nproduct_id=%u\ndiscriminator=%u\ncounter=%" G_GINT64_FORMAT
                          "\npasscode=%u\niterations=%u\n",
                          m->vendor_id, m->product_id, m->discriminator,
                          m->counter < 0 ? (gint64) -1 : m->counter, m->passcode, m->iterations);
  st_db_matter_hex_line (s, "salt", m->salt);
  st_db_matter_hex_line (s, "verifier", m->verifier);
  st_db_matter_hex_line (s, "unique_id", m->unique_id);
  g_string_append_printf (s, "flow=%u\ndiscovery=%u\nqr_text=%s\nmanual_code=%s\n", m->flow,
                          m->discovery, m->qr_text != NULL ? m->qr_text : "",
                          m->manual_code != NULL ? m->manual_code : "");
  gchar *hex = st_sha256_hex ((const guint8 *) s->str, s->len);
  st_memwipe (s->str, s->len);
  return hex;
}

/* What the schema's CHECKs hold too, said before the write with the
 * field's name. */
gboolean
st_db_unit_matter_check (const StDbUnitMatter *m, GError **error)
{
  gsize salt_len = m->salt != NULL ? g_bytes_get_size (m->salt) : 0;
  gsize uid_len = m->unique_id != NULL ? g_bytes_get_size (m->unique_id) : 0;
  const char *bad = NULL;
  if (m->vendor_id > 0xFFFF)
    bad = "the vendor id is more than 16 bits";
  else if (m->product_id == 0 || m->product_id > 0xFFFF)
    bad = "the product id is not 1 to 65535";
  else if (m->discriminator > 4095)
    bad = "the discriminator is more than 12 bits";
  else if (m->passcode < 1 || m->passcode > 99999998)
    bad = "the passcode is not 1 to 99999998";
  else if (m->iterations < 1000 || m->iterations > 100000)
    bad = "the PBKDF2 iterations are not 1000 to 100000";
  else if (salt_len < 16 || salt_len > 32)
    bad = "the salt is not 16 to 32 bytes";
  else if (m->verifier == NULL || g_bytes_get_size (m->verifier) != 97)
    bad = "the verifier is not 97 bytes";
  else if (m->unique_id != NULL && (uid_len < 16 || uid_len > 32))
    bad = "the rotating device id's unique id is not 16 to 32 bytes";
  else if (m->flow > 2)
    bad = "the commissioning flow is not 0, 1 or 2";
  else if (m->discovery < 1 || m->discovery > 7)
    bad = "the discovery capabilities are not 1 to 7";
  else if (m->qr_text == NULL || strlen (m->qr_text) != 22 || strncmp (m->qr_text, "MT:", 3) != 0)
    bad = "the QR text is not MT: and 19 characters";
  else if (m->manual_code == NULL
           || (strlen (m->manual_code) != 11 && strlen (m->manual_code) != 21)
           || strspn (m->manual_code, "0123456789") != strlen (m->manual_code))
    bad = "the manual pairing code is not 11 or 21 digits";
  if (bad != NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "the unit's Matter record is not valid: %s", bad);
      return FALSE;
    }
  return TRUE;
}

gboolean
st_db_w_unit_matter (StDbConn *c, gint64 unit_id, const char *operator_name,
                     const StDbUnitMatter *m, GError **error)
{
  gint64 batch_id = 0;
  {
    gboolean row = FALSE;
    g_autoptr(StSqliteStmtRef) stmt = st_db_conn_query (c, "SELECT batch_id FROM units WHERE id = ?",
                                                        "cannot read the unit", &row, error, "i", unit_id);
    if (stmt == NULL)
      return FALSE;
    if (!row)
      {
        g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND, "there is no unit %" G_GINT64_FORMAT, unit_id);
        return FALSE;
      }
    batch_id = sqlite3_column_int64 (stmt, 0);
  }
  if (m->counter >= 0)
    {
      gboolean row = FALSE;
      g_autoptr(StSqliteStmtRef) stmt = st_db_conn_query (c,
          "SELECT unit_id FROM unit_matter WHERE batch_id = ? AND counter = ?",
          "cannot look up the discriminator counter", &row, error, "ii", batch_id, m->counter);
      if (stmt == NULL)
        return FALSE;
      if (row)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL,
                       "discriminator counter collision: counter %" G_GINT64_FORMAT " of batch %"
                       G_GINT64_FORMAT " was already given to unit %" G_GINT64_FORMAT "; draw a new one",
                       m->counter, batch_id, (gint64) sqlite3_column_int64 (stmt, 0));
          return FALSE;
        }
    }
  if (!st_db_conn_run (c,
      "INSERT INTO unit_matter (unit_id, batch_id, vendor_id, product_id, discriminator, counter,"
      " passcode, iterations, salt, verifier, unique_id, flow, discovery, qr_text, manual_code,"
      " created_at) VALUES (?, ?, ?, ?, ?, nullif (?, -1), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      "cannot record the unit's Matter data", error, "iiiii" "iii" "bbb" "ii" "tti",
      unit_id, batch_id, (gint64) m->vendor_id, (gint64) m->product_id, (gint64) m->discriminator,
      m->counter < 0 ? (gint64) -1 : m->counter, (gint64) m->passcode, (gint64) m->iterations, m->salt, m->verifier, m->unique_id,
      (gint64) m->flow, (gint64) m->discovery, m->qr_text, m->manual_code, st_db_now ()))
    return FALSE;
  g_autofree gchar *digest = st_db_unit_matter_digest (m);
  g_autofree gchar *payload = st_db_payload ("iiiibs", "unit", unit_id, "batch", batch_id,
                                             "discriminator", (gint64) m->discriminator,
                                             "counter", m->counter, "sequential", m->counter >= 0,
                                             "matter_sha256", digest);
  return st_db_w_audit (c, operator_name, "unit-matter", payload, error);
}

StDbUnitMatter *
st_db_unit_matter_from_cols (sqlite3_stmt *stmt, int first)
{
  if (sqlite3_column_type (stmt, first) == SQLITE_NULL)
    return NULL;
  StDbUnitMatter *m = g_new0 (StDbUnitMatter, 1);
  int i = first;
  m->unit_id = sqlite3_column_int64 (stmt, i++);
  m->batch_id = sqlite3_column_int64 (stmt, i++);
  m->vendor_id = (guint) sqlite3_column_int64 (stmt, i++);
  m->product_id = (guint) sqlite3_column_int64 (stmt, i++);
  m->discriminator = (guint) sqlite3_column_int64 (stmt, i++);
  m->counter = sqlite3_column_type (stmt, i) == SQLITE_NULL ? -1 : sqlite3_column_int64 (stmt, i);
  i++;
  m->passcode = (guint32) sqlite3_column_int64 (stmt, i++);
  m->iterations = (guint32) sqlite3_column_int64 (stmt, i++);
  m->salt = st_db_col_bytes (stmt, i++);
  m->verifier = st_db_col_bytes (stmt, i++);
  m->unique_id = st_db_col_bytes (stmt, i++);
  m->flow = (guint) sqlite3_column_int64 (stmt, i++);
  m->discovery = (guint) sqlite3_column_int64 (stmt, i++);
  m->qr_text = st_db_col_text (stmt, i++);
  m->manual_code = st_db_col_text (stmt, i++);
  m->created_at = sqlite3_column_int64 (stmt, i++);
  return m;
}

StDbUnitMatter *
st_db_unit_matter_get (StDb *db, gint64 unit_id, GError **error)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&db->rlock);
  gboolean row = FALSE;
  g_autoptr(StSqliteStmtRef) stmt = st_db_conn_query (db->r,
      "SELECT " ST_DB_UNIT_MATTER_COLS " FROM unit_matter m WHERE m.unit_id = ?",
      "cannot read the unit's Matter record", &row, error, "i", unit_id);
  if (stmt == NULL)
    return NULL;
  if (!row)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                   "unit %" G_GINT64_FORMAT " has no Matter record (it is not a unit of a Matter "
                   "batch, or it failed before its reservation)", unit_id);
      return NULL;
    }
  return st_db_unit_matter_from_cols (stmt, 0);
}

GPtrArray *
st_db_unit_matter_list_page (StDb *db, gint64 batch_id, gint64 after_unit_id, guint limit,
                             GError **error)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&db->rlock);
  g_autoptr(StSqliteStmtRef) stmt = st_db_conn_prepare (db->r,
      "SELECT " ST_DB_UNIT_MATTER_COLS " FROM unit_matter m"
      " WHERE m.batch_id = ? AND m.unit_id > ? ORDER BY m.unit_id LIMIT ?", error);
  if (stmt == NULL || !st_db_bind (db->r, stmt, error, "iii", batch_id, after_unit_id, (gint64) limit))
    return NULL;
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) st_db_unit_matter_free);
  for (;;)
    {
      gboolean row = FALSE;
      if (!st_db_step (db->r, stmt, &row, "cannot list the batch's Matter records", error))
        return NULL;
      if (!row)
        break;
      g_ptr_array_add (out, st_db_unit_matter_from_cols (stmt, 0));
    }
  return g_steal_pointer (&out);
}

gboolean
st_db_unit_matter_foreach (StDb *db, gint64 batch_id, StDbUnitMatterFunc func, gpointer user_data,
                           GError **error)
{
  gint64 after = 0;
  for (;;)
    {
      g_autoptr(GPtrArray) page = st_db_unit_matter_list_page (db, batch_id, after, ST_DB_UNIT_PAGE, error);
      if (page == NULL)
        return FALSE;
      for (guint i = 0; i < page->len; i++)
        {
          const StDbUnitMatter *m = g_ptr_array_index (page, i);
          if (!func (m, user_data, error))
            return FALSE;
          after = m->unit_id;
        }
      if (page->len < ST_DB_UNIT_PAGE)
        return TRUE;
    }
}

/* The in-memory next counter of @batch_id, read from the database the
 * first time (or when @resync), never moved back; under seq_lock. */
static gint64 *
st_db_matter_counter_next (StDb *db, gint64 batch_id, gboolean resync, GError **error)
{
  gint64 *next = g_hash_table_lookup (db->matter_next, &batch_id);
  if (next != NULL && !resync)
    return next;
  gint64 recorded = 0;
  {
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&db->rlock);
    gboolean row = FALSE;
    g_autoptr(StSqliteStmtRef) stmt = st_db_conn_query (db->r,
        "SELECT coalesce (max (counter) + 1, 0) FROM unit_matter WHERE batch_id = ?",
        "cannot read the batch's discriminator counter", &row, error, "i", batch_id);
    if (stmt == NULL)
      {
        g_prefix_error (error, "cannot draw the next discriminator of batch %" G_GINT64_FORMAT ": ",
                        batch_id);
        return NULL;
      }
    if (row)
      recorded = sqlite3_column_int64 (stmt, 0);
  }
  if (next == NULL)
    {
      gint64 *key = g_new (gint64, 1);
      *key = batch_id;
      next = g_new0 (gint64, 1);
      g_hash_table_insert (db->matter_next, key, next);
    }
  *next = MAX (*next, recorded);
  return next;
}

gint64
st_db_matter_counter_draw (StDb *db, gint64 batch_id, GError **error)
{
  g_autoptr(GMutexLocker) seq_locker = g_mutex_locker_new (&db->seq_lock);
  gint64 *next = st_db_matter_counter_next (db, batch_id, FALSE, error);
  if (next == NULL)
    return -1;
  return (*next)++;
}

gboolean
st_db_matter_counter_resync (StDb *db, gint64 batch_id, GError **error)
{
  g_autoptr(GMutexLocker) seq_locker = g_mutex_locker_new (&db->seq_lock);
  return st_db_matter_counter_next (db, batch_id, TRUE, error) != NULL;
}
