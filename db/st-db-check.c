/* `station db check`: SQLite's integrity and foreign key checks, the
 * rules the schema cannot hold by itself, the audit chain, and the records
 * against the log (st-db-replay.c). */
#include "st-db.h"
#include "st-db-private.h"
#include "st-db-schema.h"
#include "st-error.h"
#include "st-sqlite.h"

#include <glib/gstdio.h>

/* ---------- checks ---------- */

typedef struct {
  const char *name;
  const char *sql;   /* every row is a problem; columns are printed */
} StDbCheck;

/* A row (batch, column, count kept, rows counted) when the batch's count
 * @col of @table's rows in @state is not the number of those rows. */
#define ST_DB_COUNT_CHECK(col, table, state) \
  "SELECT b.id, '" col "', b." col ", (SELECT count(*) FROM " table " t WHERE t.batch_id = b.id" \
  " AND t.state = '" state "') AS n FROM batches b WHERE b." col " <> n"

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
    "    OR (c.state = 'disputed' AND u.state <> 'failed')"
    "    OR (c.batch_id IS NOT u.batch_id AND c.id IS NOT NULL)"
    "    OR (c.uid IS NOT u.uid AND c.id IS NOT NULL)" },
  { "batches within their quantity",
    "SELECT b.id, b.quantity, count(c.id) FROM batches b JOIN certificates c ON c.batch_id = b.id"
    " AND " ST_DB_LIVE ("c.state") " GROUP BY b.id HAVING count(c.id) > b.quantity" },
  { "batch live counts agree with the certificates",
    "SELECT b.id, b.live_certs, (SELECT count(*) FROM certificates c WHERE c.batch_id = b.id"
    " AND " ST_DB_LIVE ("c.state") ") AS n FROM batches b WHERE b.live_certs <> n" },
  /* schema 9: every count of a batch's units and certificates by state,
   * kept by triggers, against a count of the rows (units_batch and
   * certificates_batch, one index range per batch and state) */
  { "batch counts agree with the units and certificates",
    ST_DB_COUNT_CHECK ("units_started", "units", "started") " UNION ALL "
    ST_DB_COUNT_CHECK ("units_issuing", "units", "issuing") " UNION ALL "
    ST_DB_COUNT_CHECK ("units_issued", "units", "issued") " UNION ALL "
    ST_DB_COUNT_CHECK ("units_done", "units", "done") " UNION ALL "
    ST_DB_COUNT_CHECK ("units_failed", "units", "failed") " UNION ALL "
    ST_DB_COUNT_CHECK ("certs_issuing", "certificates", "issuing") " UNION ALL "
    ST_DB_COUNT_CHECK ("certs_issued", "certificates", "issued") " UNION ALL "
    ST_DB_COUNT_CHECK ("certs_active", "certificates", "active") " UNION ALL "
    ST_DB_COUNT_CHECK ("certs_voided", "certificates", "voided") " UNION ALL "
    ST_DB_COUNT_CHECK ("certs_unconfirmed", "certificates", "unconfirmed") " UNION ALL "
    ST_DB_COUNT_CHECK ("certs_disputed", "certificates", "disputed") " UNION ALL "
    ST_DB_COUNT_CHECK ("certs_revoked", "certificates", "revoked") },
  /* from schema 5 on the register refuses a duplicate: what this finds
   * was given by an earlier station and stays (st-db-schema.c, 5) */
  { "product serials unique per product", ST_DB_SQL_DUPLICATE_PRODUCT_SERIALS },
  { "product sequences ahead of the numbers used",
    "SELECT b.product, max (u.product_seq), coalesce (s.next, 1) FROM units u"
    " JOIN batches b ON b.id = u.batch_id LEFT JOIN product_sequences s ON s.product = b.product"
    " WHERE u.product_seq > 0 GROUP BY b.product HAVING max (u.product_seq) >= coalesce (s.next, 1)" },
  /* schema 10: a unit's Matter record is written with its reservation, in
   * its batch; a unit that reached 'issuing' in a Matter batch has one */
  { "Matter records belong to their unit's batch",
    "SELECT m.unit_id, m.batch_id, u.batch_id FROM unit_matter m JOIN units u ON u.id = m.unit_id"
    " WHERE m.batch_id IS NOT u.batch_id" },
  { "Matter records only of reserved units",
    "SELECT m.unit_id, u.state FROM unit_matter m JOIN units u ON u.id = m.unit_id"
    " LEFT JOIN certificates c ON c.unit_id = u.id WHERE c.id IS NULL" },
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
  /* the records bound to the log (st-db-replay.c) */
  guint unexplained = 0;
  if (!st_db_audit_explain (db, out, &unexplained, error))
    return FALSE;
  if (unexplained > 0 && records_error == NULL)
    g_set_error (&records_error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                 "%s holds %u row(s) or field(s) its audit log does not explain: they were changed "
                 "behind the station's back; stop issuing and have it examined; see the report",
                 db->path, unexplained);
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

static gboolean st_db_check_records_run (StDb *db, StDbConn *c, GString *report, GError **error);

/* Test-only, compiled into sanitizer builds only (as the PIN hash's knob,
 * station/st-auth.c): with ST_FAULT_CHECK_STALL=PATH and the file PATH
 * present, a check stops after the integrity check, creates PATH.stalled
 * and waits until a test removes PATH (at most 60 s, then it removes both
 * and goes on), so that a test can call the service while a check runs
 * (tests/integration/test-check.c). */
static void
st_db_check_stall (void)
{
#if defined(__SANITIZE_ADDRESS__)
  const char *gate = g_getenv ("ST_FAULT_CHECK_STALL");
  if (gate == NULL || !g_file_test (gate, G_FILE_TEST_EXISTS))
    return;
  g_autofree gchar *stalled = g_strconcat (gate, ".stalled", NULL);
  if (!g_file_set_contents (stalled, "", 0, NULL))
    return;
  for (guint i = 0; i < 1200 && g_file_test (gate, G_FILE_TEST_EXISTS); i++)
    g_usleep (50000);
  g_unlink (gate);
  g_unlink (stalled);
#endif
}

/* On a read connection of its own, not the shared one (db->r, under
 * rlock): the checks take minutes at a million units, and every other
 * read of the service would wait for them. Their sorts (a GROUP BY over
 * every unit's product serial) spill to temporary files past SQLite's
 * cache instead of growing in memory (temp_store FILE; the connections
 * keep MEMORY for the writer's statement journals, st-db.c): a million
 * units took 33 MB more. */
static gboolean
st_db_check_records (StDb *db, GString *report, GError **error)
{
  g_autoptr(StDbConn) c = st_db_conn_open (db->path, TRUE, error);
  if (c == NULL)
    {
      g_prefix_error (error, "cannot check the database: ");
      return FALSE;
    }
  if (!st_db_conn_exec (c, "PRAGMA temp_store = FILE", error))
    return FALSE;
  return st_db_check_records_run (db, c, report, error);
}

static gboolean
st_db_check_records_run (StDb *db, StDbConn *c, GString *report, GError **error)
{
  g_autoptr(GString) local = g_string_new (NULL);
  GString *out = report != NULL ? report : local;
  guint problems = 0;

  st_db_progress (db, "integrity", 0, 0);
  {
    g_autoptr(StSqliteStmtRef) stmt = st_db_conn_prepare (c, "PRAGMA integrity_check", error);
    if (stmt == NULL)
      return FALSE;
    gboolean ok = FALSE;
    for (;;)
      {
        gboolean row = FALSE;
        if (!st_db_step (c, stmt, &row, "cannot check the database's integrity", error))
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
  st_db_check_stall ();

  for (gsize i = 0; i < G_N_ELEMENTS (st_db_checks); i++)
    {
      st_db_progress (db, "checks", (gint64) i, G_N_ELEMENTS (st_db_checks));
      g_autoptr(StSqliteStmtRef) stmt = st_db_conn_prepare (c, st_db_checks[i].sql, error);
      if (stmt == NULL)
        return FALSE;
      guint n = 0;
      for (;;)
        {
          gboolean row = FALSE;
          if (!st_db_step (c, stmt, &row, st_db_checks[i].name, error))
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
