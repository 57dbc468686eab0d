/* db/: schema, life cycles, constraints, group commit, storage faults.
 * Every test works on a fresh database in a temporary directory. */
#include "st-db.h"
#include "st-db-private.h"   /* st_db_payload */
#include "st-db-testhooks.h"
#include "st-db-schema.h"
#include "st-error.h"
#include "st-util.h"
#include "st-test-tmp.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <sqlite3.h>   /* tests/db may poke the file directly to try the triggers */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ISSUER "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
#define PROFILE_SHA "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"

typedef struct {
  gchar *dir;
  gchar *path;
  StDb *db;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  f->dir = st_test_tmpdir ("st-db");
  f->path = g_build_filename (f->dir, "station.db", NULL);
  f->db = st_db_open (f->path, &error);
  g_assert_no_error (error);
  g_assert_nonnull (f->db);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_pointer (&f->db, st_db_close);
  g_autoptr(GDir) d = g_dir_open (f->dir, 0, NULL);
  const char *name;
  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree gchar *p = g_build_filename (f->dir, name, NULL);
      g_unlink (p);
    }
  g_rmdir (f->dir);
  g_free (f->path);
  g_free (f->dir);
}

/* A fresh random serial: 16 octets, positive, minimal. */
static gchar *
random_serial (void)
{
  guint8 b[16];
  for (gsize i = 0; i < sizeof b; i++)
    b[i] = (guint8) g_random_int_range (0, 256);
  b[0] = (guint8) ((b[0] & 0x7f) | 0x01);
  return st_hex_encode (b, sizeof b);
}

static gchar *
random_pubkey_hash (void)
{
  g_autofree gchar *u = g_uuid_string_random ();
  return st_sha256_hex ((const guint8 *) u, strlen (u));
}

static GBytes *
fake_der (const char *what, gint64 n)
{
  g_autofree gchar *s = g_strdup_printf ("0\x82 %s %" G_GINT64_FORMAT, what, n);
  return g_bytes_new (s, strlen (s));
}

static gint64
make_batch (StDb *db, const char *wo, gint64 quantity)
{
  g_autoptr(GError) error = NULL;
  gint64 id = st_db_batch_create (db, wo, "sensor-x", PROFILE_SHA, "name: sensor-x\nkey: ec-p256\n",
                                  quantity, "station-1", "lead-anna", &error);
  g_assert_no_error (error);
  g_assert_cmpint (id, >, 0);
  return id;
}

/* begin + reserve: returns the unit id, the certificate id in *@cert_id. */
static gint64
begin_reserve (StDb *db, gint64 batch_id, const char *uid, gint64 seq, gboolean reprovision,
               gint64 *cert_id, GError **error)
{
  gint64 unit = st_db_unit_begin (db, batch_id, "/dev/pts/7", uid, "stm32f4", "1.2.3", "op-bob", error);
  if (unit == 0)
    return 0;
  g_autofree gchar *serial = random_serial ();
  g_autofree gchar *pk = random_pubkey_hash ();
  g_autoptr(GBytes) tbs = fake_der ("tbs", seq);
  g_autofree gchar *ps = g_strdup_printf ("SX-%06" G_GINT64_FORMAT, seq);
  *cert_id = st_db_cert_reserve (db, unit, ISSUER, serial, pk, tbs, ps, seq, reprovision, error);
  return unit;
}

/* The whole life cycle; returns the unit id. */
static gint64
full_cycle (StDb *db, gint64 batch_id, const char *uid, gint64 seq)
{
  g_autoptr(GError) error = NULL;
  gint64 cert = 0;
  gint64 unit = begin_reserve (db, batch_id, uid, seq, FALSE, &cert, &error);
  g_assert_no_error (error);
  g_assert_cmpint (cert, >, 0);
  g_autoptr(GBytes) der = fake_der ("der", seq);
  g_assert_true (st_db_cert_issued (db, cert, der, &error));
  g_assert_no_error (error);
  g_assert_true (st_db_unit_done (db, unit, &error));
  g_assert_no_error (error);
  return unit;
}

static void
assert_check_ok (StDb *db)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) report = g_string_new (NULL);
  gboolean ok = st_db_check (db, report, &error);
  if (!ok)
    g_test_message ("%s", report->str);
  g_assert_no_error (error);
  g_assert_true (ok);
  g_assert_nonnull (strstr (report->str, "integrity: ok"));
}

/* Runs @sql on the file directly; returns sqlite's result code. */
static int
raw_exec (const char *path, const char *sql, gchar **errmsg)
{
  sqlite3 *raw = NULL;
  g_assert_cmpint (sqlite3_open_v2 (path, &raw, SQLITE_OPEN_READWRITE, NULL), ==, SQLITE_OK);
  sqlite3_busy_timeout (raw, 5000);
  char *msg = NULL;
  int rc = sqlite3_exec (raw, sql, NULL, NULL, &msg);
  if (errmsg != NULL)
    *errmsg = g_strdup (msg);
  sqlite3_free (msg);
  sqlite3_close (raw);
  return rc;
}

/* One integer from a query on a raw connection. */
static gint64
raw_int (const char *path, const char *sql)
{
  sqlite3 *raw = NULL;
  sqlite3_stmt *stmt = NULL;
  g_assert_cmpint (sqlite3_open_v2 (path, &raw, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (raw, sql, -1, &stmt, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  gint64 v = sqlite3_column_int64 (stmt, 0);
  sqlite3_finalize (stmt);
  sqlite3_close (raw);
  return v;
}

static gchar *replay_report (StDb *db, guint *n);

/* ---------- tests ---------- */

/* A wrong PIN as a login makes it: the attempt reserved, then found
 * wrong (st_db_operator_login_reserve, st_db_operator_login_wrong); a
 * locked operator gets no attempt and stays as it is. */
static gboolean
login_failed (StDb *db, const char *name, gint64 max_attempts, gint64 *attempts, gboolean *locked,
              GError **error)
{
  gint64 attempt = 0;
  g_autoptr(StDbOperator) op = st_db_operator_login_reserve (db, name, max_attempts, &attempt, error);
  if (op == NULL)
    return FALSE;
  *attempts = attempt > 0 ? attempt : op->failed_attempts;
  *locked = op->locked;
  return attempt == 0 || st_db_operator_login_wrong (db, name, attempt, max_attempts, locked, error);
}

static void
test_migrations (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  StDbPragmas p = { 0 };
  g_assert_true (st_db_query_pragmas (f->db, TRUE, &p, &error));
  g_assert_no_error (error);
  g_assert_cmpint (p.user_version, ==, st_db_schema_version ());
  g_assert_cmpint (st_db_schema_version (), >=, 1);
  st_db_pragmas_clear (&p);

  gint64 batch = make_batch (f->db, "WO-1", 5);
  g_clear_pointer (&f->db, st_db_close);

  /* re-open: nothing to migrate, the data is there */
  f->db = st_db_open (f->path, &error);
  g_assert_no_error (error);
  g_autoptr(StDbBatch) b = st_db_batch_get (f->db, batch, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (b->work_order, ==, "WO-1");
  g_clear_pointer (&f->db, st_db_close);

  /* a database from a newer station is refused, and left alone */
  g_assert_cmpint (raw_exec (f->path, "PRAGMA user_version = 99", NULL), ==, SQLITE_OK);
  StDb *db = st_db_open (f->path, &error);
  g_assert_null (db);
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED);
  g_assert_nonnull (strstr (error->message, "newer station"));
  g_assert_nonnull (strstr (error->message, "99"));
  g_clear_error (&error);
  g_autofree gchar *back = g_strdup_printf ("PRAGMA user_version = %d", st_db_schema_version ());
  g_assert_cmpint (raw_exec (f->path, back, NULL), ==, SQLITE_OK);
  f->db = st_db_open (f->path, &error);
  g_assert_no_error (error);

  /* a file that is not a database */
  g_autofree gchar *junk = g_build_filename (f->dir, "junk.db", NULL);
  g_assert_true (g_file_set_contents (junk, "this is not a database, not at all, no no no. "
                                      "it is long enough to have a header though........",
                                      -1, NULL));
  g_assert_null (st_db_open (junk, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);

  /* a folder that does not exist is made (0700: /db/file-modes); one
   * that is a file is refused */
  g_autofree gchar *missing = g_build_filename (f->dir, "no", "such", "station.db", NULL);
  g_autoptr(StDb) made = st_db_open (missing, &error);
  g_assert_no_error (error);
  g_autofree gchar *not_dir = g_build_filename (junk, "station.db", NULL);
  g_assert_null (st_db_open (not_dir, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "is not a folder"));
}

static void
st_assert_mode (const char *path, guint mode)
{
  GStatBuf st;
  g_assert_cmpint (g_lstat (path, &st), ==, 0);
  g_test_message ("%s: %04o", path, (guint) (st.st_mode & 07777));
  g_assert_cmpuint (st.st_mode & 07777, ==, mode);
}

/* Security review, issue 14, item 7: with db= outside the home, the
 * database took the umask's mode (0644). Whatever the umask, the database
 * and the files SQLite keeps beside it are 0600 in a 0700 folder made for
 * them; a folder that others may write to is refused, naming the fix; an
 * old database open to others is closed to them. */
static void
test_file_modes (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *tmp = st_test_tmpdir ("st-db-modes");
  mode_t old_umask = umask (022);
  /* in a folder that exists: SQLite alone made it 0644 */
  g_autofree gchar *first = g_build_filename (tmp, "station.db", NULL);
  g_autofree gchar *first_wal = g_strconcat (first, "-wal", NULL);
  StDb *db = st_db_open (first, &error);
  g_assert_no_error (error);
  g_assert_true (st_db_event_add (db, "admin", "test-modes", "{}", &error));
  g_assert_no_error (error);
  st_assert_mode (first, 0600);
  st_assert_mode (first_wal, 0600);
  st_db_close (db);

  /* outside the home, in a folder that does not exist yet */
  g_autofree gchar *parent = g_build_filename (tmp, "elsewhere", NULL);
  g_autofree gchar *dir = g_build_filename (parent, "db", NULL);
  g_autofree gchar *path = g_build_filename (dir, "station.db", NULL);
  g_autofree gchar *wal = g_strconcat (path, "-wal", NULL);
  g_autofree gchar *shm = g_strconcat (path, "-shm", NULL);
  db = st_db_open (path, &error);
  g_assert_no_error (error);
  g_assert_true (st_db_event_add (db, "admin", "test-modes", "{}", &error));
  g_assert_no_error (error);
  st_assert_mode (parent, 0700);
  st_assert_mode (dir, 0700);
  st_assert_mode (path, 0600);
  st_assert_mode (wal, 0600);
  st_assert_mode (shm, 0600);
  st_db_close (db);

  /* a folder open to others: refused, naming the fix */
  g_assert_cmpint (g_chmod (dir, 0777), ==, 0);
  g_assert_null (st_db_open (path, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED);
  g_assert_nonnull (strstr (error->message, "may be written by other users (mode 0777)"));
  g_assert_nonnull (strstr (error->message, "chmod 700"));
  g_clear_error (&error);
  g_assert_cmpint (g_chmod (dir, 0770), ==, 0);
  g_assert_null (st_db_open (path, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED);
  g_clear_error (&error);
  /* readable by others is the admin's choice; the files stay 0600 */
  g_assert_cmpint (g_chmod (dir, 0755), ==, 0);

  /* an old database and journal open to others are closed to them */
  g_assert_cmpint (g_chmod (path, 0644), ==, 0);
  g_autofree gchar *journal = g_strconcat (path, "-journal", NULL);
  g_assert_true (g_file_set_contents (journal, "", 0, NULL));
  g_assert_cmpint (g_chmod (journal, 0666), ==, 0);
  db = st_db_open (path, &error);
  g_assert_no_error (error);
  st_assert_mode (path, 0600);
  st_assert_mode (journal, 0600);
  st_db_close (db);
  g_unlink (journal);

  /* a link to the database (moved to another disk) is followed: the real
   * file and its folder are checked; a dangling link is refused */
  g_autofree gchar *link = g_build_filename (tmp, "linked.db", NULL);
  g_assert_cmpint (symlink (path, link), ==, 0);
  g_assert_cmpint (g_chmod (path, 0640), ==, 0);
  db = st_db_open (link, &error);
  g_assert_no_error (error);
  st_assert_mode (path, 0600);
  st_db_close (db);
  g_assert_cmpint (g_chmod (dir, 0777), ==, 0);
  g_assert_null (st_db_open (link, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED);
  g_clear_error (&error);
  g_assert_cmpint (g_chmod (dir, 0700), ==, 0);
  g_autofree gchar *dangling = g_build_filename (tmp, "dangling.db", NULL);
  g_autofree gchar *nowhere = g_build_filename (tmp, "nowhere.db", NULL);
  g_assert_cmpint (symlink (nowhere, dangling), ==, 0);
  g_assert_null (st_db_open (dangling, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "symbolic link"));

  umask (old_umask);
  st_rm_rf (tmp);
}

static void
test_pragmas (Fixture *f, gconstpointer data)
{
  for (int writer = 0; writer <= 1; writer++)
    {
      g_autoptr(GError) error = NULL;
      StDbPragmas p = { 0 };
      g_assert_true (st_db_query_pragmas (f->db, writer, &p, &error));
      g_assert_no_error (error);
      g_assert_cmpstr (p.journal_mode, ==, "wal");
      g_assert_cmpint (p.synchronous, ==, 2);   /* FULL */
      g_assert_cmpint (p.foreign_keys, ==, 1);
      g_assert_cmpint (p.busy_timeout_ms, >, 0);
      g_assert_cmpint (p.query_only, ==, writer ? 0 : 1);
      g_assert_cmpint (p.temp_store, ==, 2);    /* MEMORY: no temp files in /var/tmp */
      /* the writer's cache holds the indexes (32 MiB); the reader's the default */
      g_assert_cmpint (p.cache_size, ==, writer ? -32768 : -2000);
      st_db_pragmas_clear (&p);
    }
}

/* A reader in another connection that holds its snapshot 5 ms at a time,
 * as a busy line's lookups and a GUI's refreshes together can. */
typedef struct {
  const char *path;
  gint stop;
  guint reads;
} SnapshotReader;

static gpointer
snapshot_reader (gpointer data)
{
  SnapshotReader *r = data;
  sqlite3 *raw = NULL;
  g_assert_cmpint (sqlite3_open_v2 (r->path, &raw, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
  sqlite3_busy_timeout (raw, 5000);
  while (!g_atomic_int_get (&r->stop))
    {
      g_assert_cmpint (sqlite3_exec (raw, "BEGIN; SELECT count(*) FROM audit", NULL, NULL, NULL), ==, SQLITE_OK);
      g_usleep (5000);
      g_assert_cmpint (sqlite3_exec (raw, "COMMIT", NULL, NULL, NULL), ==, SQLITE_OK);
      r->reads++;
      g_usleep (100);
    }
  sqlite3_close (raw);
  return NULL;
}

/* The write-ahead log stays bounded while readers never let a checkpoint
 * copy all of it: the writer then waits briefly for them and the log starts
 * over (st_db_writer_checkpoint). Without that it grew with every commit. */
static void
test_wal_bounded (Fixture *f, gconstpointer data)
{
  SnapshotReader r = { .path = f->path };
  GThread *reader = g_thread_new ("snapshot-reader", snapshot_reader, &r);
  g_autoptr(GString) payload = g_string_new ("{\"pad\":\"");
  for (guint i = 0; i < 60000; i++)
    g_string_append_c (payload, 'a' + (char) (i % 26));
  g_string_append (payload, "\"}");
  g_autofree gchar *wal = g_strconcat (f->path, "-wal", NULL);
  /* the restart threshold, and room for attempts that found a reader on
   * an old snapshot even after their 20 ms wait (each write adds about 15
   * frames until the next attempt succeeds) */
  const goffset frame = 4096 + 24, bound = (4000 + 1000) * frame;
  goffset largest = 0;
  guint writes = 0;
  /* about three times the bound's worth of log (without the restarts it
   * grew to 40 MB here) */
  for (; writes < 1000; writes++)
    {
      g_autoptr(GError) error = NULL;
      g_assert_true (st_db_audit_add (f->db, "tester", "pad", payload->str, &error));
      g_assert_no_error (error);
      GStatBuf st;
      if (g_stat (wal, &st) == 0)
        largest = MAX (largest, (goffset) st.st_size);
    }
  g_atomic_int_set (&r.stop, 1);
  g_thread_join (reader);
  g_test_message ("%u writes of %" G_GSIZE_FORMAT " bytes, %u reads meanwhile; largest WAL %"
                  G_GOFFSET_FORMAT " bytes (bound %" G_GOFFSET_FORMAT ")", writes, payload->len,
                  r.reads, largest, bound);
  g_assert_cmpuint (r.reads, >, 10);
  g_assert_cmpint ((goffset) writes * (goffset) payload->len, >, 2 * bound);
  g_assert_cmpint (largest, <=, bound);
}

static void
test_lifecycle (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  gint64 batch = make_batch (f->db, "WO-7", 10);
  gint64 unit = st_db_unit_begin (f->db, batch, "/dev/pts/3", "0a1b2c3d4e5f60718293a4b5",
                                  "stm32f4", "1.0.0", "op-bob", &error);
  g_assert_no_error (error);
  g_assert_cmpint (unit, >, 0);

  g_autoptr(StDbUnit) u0 = st_db_unit_get (f->db, unit, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (u0->state, ==, "started");
  g_assert_cmpint (u0->cert_id, ==, 0);
  g_assert_null (u0->cert_der);

  /* steps out of order are refused */
  g_assert_false (st_db_unit_done (f->db, unit, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);

  const char *serial = "c1d2e3f405162738495a6b7c8d9eafb0";
  g_autofree gchar *pk = random_pubkey_hash ();
  g_autoptr(GBytes) tbs = fake_der ("tbs", 1);
  gint64 cert = st_db_cert_reserve (f->db, unit, ISSUER, serial, pk, tbs, "SX-000042", 42, FALSE, &error);
  g_assert_no_error (error);
  g_assert_cmpint (cert, >, 0);

  g_autoptr(StDbUnit) u1 = st_db_unit_get (f->db, unit, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (u1->state, ==, "issuing");
  g_assert_cmpint (u1->cert_id, ==, cert);
  g_assert_cmpstr (u1->cert_state, ==, "issuing");
  g_assert_cmpstr (u1->cert_serial, ==, serial);
  g_assert_cmpstr (u1->cert_issuer, ==, ISSUER);
  g_assert_cmpstr (u1->pubkey_sha256, ==, pk);
  g_assert_cmpstr (u1->product_serial, ==, "SX-000042");
  g_assert_cmpint (u1->product_seq, ==, 42);
  g_assert_true (g_bytes_equal (u1->tbs, tbs));
  g_assert_null (u1->cert_der);
  /* a second reservation for the same unit is refused */
  g_autofree gchar *pk2 = random_pubkey_hash ();
  g_assert_cmpint (st_db_cert_reserve (f->db, unit, ISSUER, "0102", pk2, tbs, "SX-43", 43, FALSE, &error), ==, 0);
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);

  g_autoptr(GBytes) der = fake_der ("der", 1);
  g_assert_true (st_db_cert_issued (f->db, cert, der, &error));
  g_assert_no_error (error);
  g_autoptr(StDbUnit) u2 = st_db_unit_get (f->db, unit, &error);
  g_assert_cmpstr (u2->state, ==, "issued");
  g_assert_cmpstr (u2->cert_state, ==, "issued");
  g_assert_true (g_bytes_equal (u2->cert_der, der));
  g_assert_cmpint (u2->issued_at, >, 0);

  g_assert_true (st_db_unit_done (f->db, unit, &error));
  g_assert_no_error (error);
  g_autoptr(StDbUnit) u3 = st_db_unit_find_live_by_uid (f->db, "0a1b2c3d4e5f60718293a4b5", &error);
  g_assert_no_error (error);
  g_assert_cmpint (u3->id, ==, unit);
  g_assert_cmpstr (u3->state, ==, "done");
  g_assert_cmpstr (u3->cert_state, ==, "active");
  g_assert_cmpint (u3->finished_at, >=, u3->started_at);
  g_assert_cmpstr (u3->operator_name, ==, "op-bob");
  g_assert_cmpstr (u3->port, ==, "/dev/pts/3");

  g_assert_null (st_db_unit_find_live_by_uid (f->db, "ffff", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_null (st_db_unit_get (f->db, 9999, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "9999"));
  g_clear_error (&error);

  g_autoptr(StDbBatch) b = st_db_batch_get (f->db, batch, &error);
  g_assert_no_error (error);
  g_assert_cmpint (b->n_units, ==, 1);
  g_assert_cmpint (b->n_done, ==, 1);
  g_assert_cmpint (b->n_live_certs, ==, 1);
  g_assert_cmpint (b->n_failed, ==, 0);
  g_assert_cmpstr (b->state, ==, "open");
  g_assert_cmpstr (b->product, ==, "sensor-x");
  g_assert_cmpstr (b->profile_sha256, ==, PROFILE_SHA);
  g_assert_cmpstr (b->station_id, ==, "station-1");
  g_assert_cmpstr (b->created_by, ==, "lead-anna");
  g_assert_cmpint (b->closed_at, ==, 0);

  /* the reservation moved the product's sequence past its number */
  g_assert_cmpint (st_db_product_seq_draw (f->db, "sensor-x", &error), ==, 43);
  g_assert_cmpint (st_db_product_seq_draw (f->db, "other", &error), ==, 1);
  g_assert_no_error (error);

  /* the batch list is newest first */
  gint64 batch2 = make_batch (f->db, "WO-8", 3);
  g_autoptr(GPtrArray) list = st_db_batch_list (f->db, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (list->len, ==, 2);
  g_assert_cmpint (((StDbBatch *) list->pdata[0])->id, ==, batch2);
  g_assert_cmpint (((StDbBatch *) list->pdata[1])->id, ==, batch);

  g_assert_true (st_db_batch_close (f->db, batch, "lead-anna", &error));
  g_assert_no_error (error);
  g_autoptr(StDbBatch) bc = st_db_batch_get (f->db, batch, &error);
  g_assert_cmpstr (bc->state, ==, "closed");
  g_assert_cmpstr (bc->closed_by, ==, "lead-anna");
  g_assert_cmpint (bc->closed_at, >=, bc->created_at);
  g_assert_null (st_db_batch_get (f->db, 777, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "777"));
  g_clear_error (&error);

  /* events: JSON checked */
  g_assert_true (st_db_event_add (f->db, "qa-carl", "qa.verify", "{\"unit\":1,\"ok\":true}", &error));
  g_assert_no_error (error);
  g_assert_true (st_db_event_add (f->db, "qa-carl", "qa.note", NULL, &error));
  g_assert_no_error (error);
  g_assert_false (st_db_event_add (f->db, "qa-carl", "qa.verify", "{not json", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);

  /* bad arguments never reach the database */
  g_assert_cmpint (st_db_unit_begin (f->db, batch2, "p", "0A1B", NULL, NULL, "op", &error), ==, 0);
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  gint64 u4 = st_db_unit_begin (f->db, batch2, "p", "aabb", NULL, NULL, "op", &error);
  g_assert_no_error (error);
  /* leading zero byte, zero, odd, upper case, empty, too long (21 octets) */
  const char *bad_serials[] = { "007f", "0001", "00ff", "00", "0", "abc", "01AB", "",
                                "010203040506070809101112131415161718192021" };
  for (gsize i = 0; i < G_N_ELEMENTS (bad_serials); i++)
    {
      g_assert_cmpint (st_db_cert_reserve (f->db, u4, ISSUER, bad_serials[i], pk2, tbs, NULL, 0,
                                           FALSE, &error), ==, 0);
      g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
      g_clear_error (&error);
    }
  /* the value, without DER's sign padding: ff is 255 */
  g_assert_cmpint (st_db_cert_reserve (f->db, u4, ISSUER, "ff", pk2, tbs, NULL, 0, FALSE, &error), >, 0);
  g_assert_no_error (error);

  assert_check_ok (f->db);
}

static void
test_quota (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  gint64 batch = make_batch (f->db, "WO-Q", 2);
  full_cycle (f->db, batch, "01", 1);
  gint64 cert2 = 0;
  gint64 unit2 = begin_reserve (f->db, batch, "02", 2, FALSE, &cert2, &error);
  g_assert_no_error (error);

  gint64 cert3 = 0;
  gint64 unit3 = begin_reserve (f->db, batch, "03", 3, FALSE, &cert3, &error);
  g_assert_cmpint (unit3, >, 0);
  g_assert_cmpint (cert3, ==, 0);
  g_assert_error (error, ST_ERROR, ST_ERROR_BUSY);
  g_assert_nonnull (strstr (error->message, "batch quantity 2 reached"));
  g_clear_error (&error);
  /* the refused reservation left nothing behind */
  g_autoptr(StDbUnit) u3 = st_db_unit_get (f->db, unit3, &error);
  g_assert_cmpstr (u3->state, ==, "started");
  g_assert_cmpint (u3->cert_id, ==, 0);

  /* a voided certificate frees its place */
  g_assert_true (st_db_unit_fail (f->db, unit2, "write", "device did not answer", NULL,
                                  ST_DB_CERT_VOID, &error));
  g_assert_no_error (error);
  g_autofree gchar *serial = random_serial ();
  g_autofree gchar *pk = random_pubkey_hash ();
  g_autoptr(GBytes) tbs = fake_der ("tbs", 3);
  g_assert_cmpint (st_db_cert_reserve (f->db, unit3, ISSUER, serial, pk, tbs, "SX-3", 3, FALSE, &error), >, 0);
  g_assert_no_error (error);
  g_autoptr(StDbBatch) b = st_db_batch_get (f->db, batch, &error);
  g_assert_cmpint (b->n_live_certs, ==, 2);
  g_assert_cmpint (b->n_voided, ==, 1);
  assert_check_ok (f->db);
}

static void
test_reprovision (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  gint64 batch_a = make_batch (f->db, "WO-A", 5);
  gint64 batch_b = make_batch (f->db, "WO-B", 5);
  gint64 old_unit = full_cycle (f->db, batch_a, "c0ffee", 1);
  g_autoptr(StDbUnit) old = st_db_unit_get (f->db, old_unit, &error);

  gint64 cert = 0;
  gint64 unit = begin_reserve (f->db, batch_b, "c0ffee", 2, FALSE, &cert, &error);
  g_assert_cmpint (cert, ==, 0);
  g_assert_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED);
  g_autofree gchar *expect = g_strdup_printf ("uid c0ffee already has live certificate serial %s (batch %"
                                              G_GINT64_FORMAT ")", old->cert_serial, batch_a);
  g_assert_nonnull (strstr (error->message, expect));
  g_clear_error (&error);

  g_autofree gchar *serial = random_serial ();
  g_autofree gchar *pk = random_pubkey_hash ();
  g_autoptr(GBytes) tbs = fake_der ("tbs", 2);
  cert = st_db_cert_reserve (f->db, unit, ISSUER, serial, pk, tbs, "SX-2", 2, TRUE, &error);
  g_assert_no_error (error);
  g_assert_cmpint (cert, >, 0);

  g_autoptr(StDbUnit) voided = st_db_unit_get (f->db, old_unit, &error);
  g_assert_cmpstr (voided->cert_state, ==, "voided");
  g_assert_cmpstr (voided->void_reason, ==, "re-provisioned");
  g_assert_cmpstr (voided->state, ==, "done");   /* the unit's history stays */
  g_autoptr(StDbUnit) live = st_db_unit_find_live_by_uid (f->db, "c0ffee", &error);
  g_assert_no_error (error);
  g_assert_cmpint (live->id, ==, unit);
  g_autoptr(StDbBatch) ba = st_db_batch_get (f->db, batch_a, &error);
  g_assert_cmpint (ba->n_live_certs, ==, 0);
  g_assert_cmpint (ba->n_voided, ==, 1);
  assert_check_ok (f->db);
}

static void
test_duplicate_key (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  gint64 batch = make_batch (f->db, "WO-K", 10);
  gint64 u1 = full_cycle (f->db, batch, "11", 1);
  g_autoptr(StDbUnit) first = st_db_unit_get (f->db, u1, &error);

  gint64 u2 = st_db_unit_begin (f->db, batch, "p2", "22", NULL, NULL, "op", &error);
  g_assert_no_error (error);
  g_autofree gchar *serial = random_serial ();
  g_autoptr(GBytes) tbs = fake_der ("tbs", 2);
  g_assert_cmpint (st_db_cert_reserve (f->db, u2, ISSUER, serial, first->pubkey_sha256, tbs, NULL, 2,
                                       FALSE, &error), ==, 0);
  g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
  g_autofree gchar *expect = g_strdup_printf ("this public key was already certified (serial %s)",
                                              first->cert_serial);
  g_assert_nonnull (strstr (error->message, expect));
  g_clear_error (&error);

  /* same serial, same issuer: a collision the caller retries */
  g_autofree gchar *pk = random_pubkey_hash ();
  g_assert_cmpint (st_db_cert_reserve (f->db, u2, ISSUER, first->cert_serial, pk, tbs, NULL, 2,
                                       FALSE, &error), ==, 0);
  g_assert_error (error, ST_ERROR, ST_ERROR_INTERNAL);
  g_assert_nonnull (strstr (error->message, "serial collision"));
  g_clear_error (&error);
  /* ... which another issuer may use */
  const char *issuer2 = "1111111111111111111111111111111111111111111111111111111111111111";
  g_assert_cmpint (st_db_cert_reserve (f->db, u2, issuer2, first->cert_serial, pk, tbs, NULL, 2,
                                       FALSE, &error), >, 0);
  g_assert_no_error (error);
  assert_check_ok (f->db);
}

static void
test_der_immutable (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  gint64 batch = make_batch (f->db, "WO-D", 10);
  gint64 unit = full_cycle (f->db, batch, "d00d", 1);
  g_autoptr(StDbUnit) u = st_db_unit_get (f->db, unit, &error);

  /* through the API: a second 'issued' is refused */
  g_autoptr(GBytes) other = fake_der ("other", 1);
  g_assert_false (st_db_cert_issued (f->db, u->cert_id, other, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);

  /* straight at the file: the triggers hold */
  g_autofree gchar *msg = NULL;
  g_autofree gchar *upd = g_strdup_printf ("UPDATE certificates SET der = x'3082' WHERE id = %" G_GINT64_FORMAT, u->cert_id);
  g_assert_cmpint (raw_exec (f->path, upd, &msg), ==, SQLITE_CONSTRAINT);
  g_assert_nonnull (strstr (msg, "der cannot be changed"));
  g_clear_pointer (&msg, g_free);
  g_autofree gchar *null_der = g_strdup_printf ("UPDATE certificates SET der = NULL WHERE id = %" G_GINT64_FORMAT, u->cert_id);
  g_assert_cmpint (raw_exec (f->path, null_der, NULL), ==, SQLITE_CONSTRAINT);
  g_autofree gchar *same = g_strdup_printf ("UPDATE certificates SET der = der WHERE id = %" G_GINT64_FORMAT, u->cert_id);
  g_assert_cmpint (raw_exec (f->path, same, NULL), ==, SQLITE_OK);
  g_assert_cmpint (raw_exec (f->path, "DELETE FROM certificates", &msg), ==, SQLITE_CONSTRAINT);
  g_assert_nonnull (strstr (msg, "never deleted"));
  g_clear_pointer (&msg, g_free);
  g_assert_cmpint (raw_exec (f->path, "UPDATE certificates SET serial = '01'", NULL), ==, SQLITE_CONSTRAINT);
  g_assert_cmpint (raw_exec (f->path, "UPDATE certificates SET state = 'issuing'", NULL), ==, SQLITE_CONSTRAINT);

  g_autoptr(StDbUnit) after = st_db_unit_get (f->db, unit, &error);
  g_assert_true (g_bytes_equal (after->cert_der, u->cert_der));
  g_assert_cmpstr (after->cert_serial, ==, u->cert_serial);
  assert_check_ok (f->db);

  /* and st_db_check notices what the triggers cannot prevent */
  g_assert_cmpint (raw_exec (f->path, "UPDATE units SET state = 'issued'", NULL), ==, SQLITE_OK);
  g_autoptr(GString) report = g_string_new (NULL);
  g_assert_false (st_db_check (f->db, report, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
  g_assert_nonnull (strstr (report->str, "unit and certificate states agree: FAILED"));
}

static void
test_closed_batch (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  gint64 batch = make_batch (f->db, "WO-C", 10);
  full_cycle (f->db, batch, "aa", 1);
  gint64 cert = 0;
  gint64 busy_unit = begin_reserve (f->db, batch, "bb", 2, FALSE, &cert, &error);
  g_assert_no_error (error);

  g_assert_false (st_db_batch_close (f->db, batch, "lead", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_BUSY);
  g_clear_error (&error);
  g_assert_true (st_db_unit_fail (f->db, busy_unit, "sign", "hsm error", "CKR_DEVICE_ERROR",
                                  ST_DB_CERT_VOID, &error));
  g_assert_no_error (error);
  g_assert_true (st_db_batch_close (f->db, batch, "lead", &error));
  g_assert_no_error (error);

  g_assert_false (st_db_batch_close (f->db, batch, "lead", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_assert_cmpint (st_db_unit_begin (f->db, batch, "p", "cc", NULL, NULL, "op", &error), ==, 0);
  g_assert_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED);
  g_assert_nonnull (strstr (error->message, "closed"));
  g_clear_error (&error);
  g_assert_cmpint (st_db_unit_begin (f->db, 4242, "p", "cc", NULL, NULL, "op", &error), ==, 0);
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_autoptr(GPtrArray) units = st_db_unit_list (f->db, batch, &error);
  g_assert_cmpuint (units->len, ==, 2);
}

static void
test_fail (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  gint64 batch = make_batch (f->db, "WO-F", 10);

  /* known not on the device: voided */
  gint64 c1 = 0;
  gint64 u1 = begin_reserve (f->db, batch, "f1", 1, FALSE, &c1, &error);
  g_assert_no_error (error);
  g_assert_true (st_db_unit_fail (f->db, u1, "sign", "hsm refused", "CKR_KEY_HANDLE_INVALID",
                                  ST_DB_CERT_VOID, &error));
  g_assert_no_error (error);
  g_autoptr(StDbUnit) f1 = st_db_unit_get (f->db, u1, &error);
  g_assert_cmpstr (f1->state, ==, "failed");
  g_assert_cmpstr (f1->fail_step, ==, "sign");
  g_assert_cmpstr (f1->fail_reason, ==, "hsm refused");
  g_assert_cmpstr (f1->fail_detail, ==, "CKR_KEY_HANDLE_INVALID");
  g_assert_cmpstr (f1->cert_state, ==, "voided");
  g_assert_cmpstr (f1->void_reason, ==, "hsm refused");
  g_assert_cmpint (f1->finished_at, >, 0);
  /* the uid is free again */
  g_assert_null (st_db_unit_find_live_by_uid (f->db, "f1", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_false (st_db_unit_fail (f->db, u1, "x", "y", NULL, ST_DB_CERT_VOID, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);

  /* may be on the device: unconfirmed, still live */
  gint64 c2 = 0;
  gint64 u2 = begin_reserve (f->db, batch, "f2", 2, FALSE, &c2, &error);
  g_autoptr(GBytes) der = fake_der ("der", 2);
  g_assert_true (st_db_cert_issued (f->db, c2, der, &error));
  g_assert_true (st_db_unit_fail (f->db, u2, "write", "timeout", "no answer after 5 s",
                                  ST_DB_CERT_UNCONFIRMED, &error));
  g_assert_no_error (error);
  g_autoptr(StDbUnit) f2 = st_db_unit_find_live_by_uid (f->db, "f2", &error);
  g_assert_no_error (error);
  g_assert_cmpint (f2->id, ==, u2);
  g_assert_cmpstr (f2->state, ==, "failed");
  g_assert_cmpstr (f2->cert_state, ==, "unconfirmed");
  g_autoptr(StDbBatch) b = st_db_batch_get (f->db, batch, &error);
  g_assert_cmpint (b->n_failed, ==, 2);
  g_assert_cmpint (b->n_voided, ==, 1);
  g_assert_cmpint (b->n_unconfirmed, ==, 1);
  g_assert_cmpint (b->n_live_certs, ==, 1);

  /* seen again later with the certificate: active, unit done */
  g_assert_true (st_db_cert_set_state (f->db, c2, "active", NULL, &error));
  g_assert_no_error (error);
  g_autoptr(StDbUnit) f2b = st_db_unit_get (f->db, u2, &error);
  g_assert_cmpstr (f2b->cert_state, ==, "active");
  g_assert_cmpstr (f2b->state, ==, "done");

  /* recovery of units left issuing / issued */
  gint64 c3 = 0, c4 = 0;
  gint64 u3 = begin_reserve (f->db, batch, "f3", 3, FALSE, &c3, &error);
  gint64 u4 = begin_reserve (f->db, batch, "f4", 4, FALSE, &c4, &error);
  g_assert_no_error (error);
  g_autoptr(GBytes) der4 = fake_der ("der", 4);
  g_assert_true (st_db_cert_issued (f->db, c4, der4, &error));
  g_assert_false (st_db_cert_set_state (f->db, c3, "active", NULL, &error));   /* never signed */
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_assert_false (st_db_cert_set_state (f->db, c3, "issued", NULL, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_assert_true (st_db_cert_set_state (f->db, c3, "voided", "device re-identified without it", &error));
  g_assert_true (st_db_cert_set_state (f->db, c4, "active", NULL, &error));
  g_assert_no_error (error);
  g_autoptr(StDbUnit) r3 = st_db_unit_get (f->db, u3, &error);
  g_autoptr(StDbUnit) r4 = st_db_unit_get (f->db, u4, &error);
  g_assert_cmpstr (r3->state, ==, "failed");
  g_assert_cmpstr (r3->fail_step, ==, "recovery");
  g_assert_cmpstr (r3->void_reason, ==, "device re-identified without it");
  g_assert_cmpstr (r4->state, ==, "done");
  g_assert_cmpstr (r4->cert_state, ==, "active");
  /* interrupted after issuance: the unit waits for its device, then ends */
  gint64 c5 = 0;
  gint64 u5 = begin_reserve (f->db, batch, "f5", 5, FALSE, &c5, &error);
  g_autoptr(GBytes) der5 = fake_der ("der", 5);
  g_assert_true (st_db_cert_issued (f->db, c5, der5, &error));
  g_assert_true (st_db_cert_set_state (f->db, c5, "unconfirmed", "interrupted", &error));
  g_autoptr(StDbUnit) r5 = st_db_unit_get (f->db, u5, &error);
  g_assert_cmpstr (r5->state, ==, "issued");
  g_assert_cmpstr (r5->cert_state, ==, "unconfirmed");
  g_assert_true (st_db_unit_done (f->db, u5, &error));
  g_assert_no_error (error);
  g_autoptr(StDbUnit) r5b = st_db_unit_get (f->db, u5, &error);
  g_assert_cmpstr (r5b->state, ==, "done");
  g_assert_cmpstr (r5b->cert_state, ==, "active");
  /* a voided certificate never comes back */
  g_assert_false (st_db_cert_set_state (f->db, c3, "active", NULL, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  assert_check_ok (f->db);
}

static void
test_unfinished (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  gint64 batch = make_batch (f->db, "WO-U", 10);
  full_cycle (f->db, batch, "e1", 1);                                      /* done */
  gint64 started = st_db_unit_begin (f->db, batch, "p", "e2", NULL, NULL, "op", &error);
  gint64 c = 0;
  gint64 issuing = begin_reserve (f->db, batch, "e3", 3, FALSE, &c, &error);
  gint64 c4 = 0;
  gint64 issued = begin_reserve (f->db, batch, "e4", 4, FALSE, &c4, &error);
  g_autoptr(GBytes) der = fake_der ("der", 4);
  st_db_cert_issued (f->db, c4, der, &error);
  gint64 c5 = 0;
  gint64 failed = begin_reserve (f->db, batch, "e5", 5, FALSE, &c5, &error);
  st_db_unit_fail (f->db, failed, "write", "x", NULL, ST_DB_CERT_VOID, &error);
  g_assert_no_error (error);

  g_autoptr(GPtrArray) list = st_db_unit_list_unfinished (f->db, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (list->len, ==, 3);
  g_assert_cmpint (((StDbUnit *) list->pdata[0])->id, ==, started);
  g_assert_cmpint (((StDbUnit *) list->pdata[1])->id, ==, issuing);
  g_assert_cmpint (((StDbUnit *) list->pdata[2])->id, ==, issued);
  g_assert_cmpstr (((StDbUnit *) list->pdata[2])->cert_state, ==, "issued");
  g_assert_nonnull (((StDbUnit *) list->pdata[2])->cert_der);
  g_assert_null (((StDbUnit *) list->pdata[1])->cert_der);
  g_assert_nonnull (((StDbUnit *) list->pdata[1])->tbs);

  g_autoptr(GPtrArray) all = st_db_unit_list (f->db, batch, &error);
  g_assert_cmpuint (all->len, ==, 5);
  for (guint i = 1; i < all->len; i++)
    g_assert_cmpint (((StDbUnit *) all->pdata[i - 1])->id, <, ((StDbUnit *) all->pdata[i])->id);
}

/* ---------- concurrency ---------- */

#define N_THREADS 8
#define N_CYCLES 200

typedef struct {
  StDb *db;
  gint64 batch;
  int index;
  guint failures;
} Worker;

static gpointer
worker_main (gpointer data)
{
  Worker *w = data;
  for (int i = 0; i < N_CYCLES; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree gchar *uid = g_strdup_printf ("%02x%04x", w->index, i);
      gint64 seq = w->index * 1000 + i + 1;
      gint64 cert = 0;
      gint64 unit = begin_reserve (w->db, w->batch, uid, seq, FALSE, &cert, &error);
      g_autoptr(GBytes) der = fake_der (uid, seq);
      if (unit == 0 || cert == 0 || !st_db_cert_issued (w->db, cert, der, &error)
          || !st_db_unit_done (w->db, unit, &error))
        {
          g_test_message ("worker %d cycle %d: %s", w->index, i, error != NULL ? error->message : "?");
          w->failures++;
        }
    }
  return NULL;
}

static void
test_concurrent (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  gint64 batch = make_batch (f->db, "WO-MT", N_THREADS * N_CYCLES);
  guint64 writes0 = 0, commits0 = 0;
  st_db_get_write_stats (f->db, &writes0, &commits0);

  Worker workers[N_THREADS];
  GThread *threads[N_THREADS];
  gint64 t0 = g_get_monotonic_time ();
  for (int i = 0; i < N_THREADS; i++)
    {
      workers[i] = (Worker) { f->db, batch, i, 0 };
      threads[i] = g_thread_new ("worker", worker_main, &workers[i]);
    }
  for (int i = 0; i < N_THREADS; i++)
    {
      g_thread_join (threads[i]);
      g_assert_cmpuint (workers[i].failures, ==, 0);
    }
  gint64 t1 = g_get_monotonic_time ();

  guint64 writes = 0, commits = 0;
  st_db_get_write_stats (f->db, &writes, &commits);
  writes -= writes0;
  commits -= commits0;
  g_test_message ("%d threads x %d life cycles: %" G_GUINT64_FORMAT " writes in %" G_GUINT64_FORMAT
                  " commits (%.1f writes per commit), %.2f s",
                  N_THREADS, N_CYCLES, writes, commits, (double) writes / (double) MAX (commits, 1),
                  (double) (t1 - t0) / G_USEC_PER_SEC);
  g_assert_cmpuint (writes, ==, (guint64) N_THREADS * N_CYCLES * 4);
  g_assert_cmpuint (commits, <=, writes);
  g_assert_cmpuint (commits, >, 0);

  g_autoptr(StDbBatch) b = st_db_batch_get (f->db, batch, &error);
  g_assert_no_error (error);
  g_assert_cmpint (b->n_units, ==, N_THREADS * N_CYCLES);
  g_assert_cmpint (b->n_done, ==, N_THREADS * N_CYCLES);
  g_assert_cmpint (b->n_live_certs, ==, N_THREADS * N_CYCLES);

  g_autoptr(GPtrArray) units = st_db_unit_list (f->db, batch, &error);
  g_assert_cmpuint (units->len, ==, N_THREADS * N_CYCLES);
  g_autoptr(GHashTable) serials = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < units->len; i++)
    {
      StDbUnit *u = units->pdata[i];
      g_assert_cmpstr (u->state, ==, "done");
      g_assert_cmpstr (u->cert_state, ==, "active");
      g_assert_true (g_hash_table_add (serials, u->cert_serial));
    }
  g_assert_cmpuint (g_hash_table_size (serials), ==, N_THREADS * N_CYCLES);
  assert_check_ok (f->db);
}

/* ---------- group commit: one bad request in a group ---------- */

typedef struct {
  StDb *db;
  gint64 unit;
  const char *pubkey;
  gint64 result;
  GError *error;
} GroupWrite;

static gpointer
group_write_main (gpointer data)
{
  GroupWrite *g = data;
  g_autofree gchar *serial = random_serial ();
  g_autoptr(GBytes) tbs = fake_der ("tbs", g->unit);
  g->result = st_db_cert_reserve (g->db, g->unit, ISSUER, serial, g->pubkey, tbs, NULL, g->unit,
                                  FALSE, &g->error);
  return NULL;
}

static void
test_group_constraint (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  gint64 batch = make_batch (f->db, "WO-G", 100);
  gint64 first = full_cycle (f->db, batch, "9900", 1);
  g_autoptr(StDbUnit) u1 = st_db_unit_get (f->db, first, &error);

  enum { N = 6, BAD = 3 };
  GroupWrite g[N];
  gchar *keys[N];
  for (int i = 0; i < N; i++)
    {
      g_autofree gchar *uid = g_strdup_printf ("99%02x", i + 1);
      keys[i] = random_pubkey_hash ();
      gint64 unit = st_db_unit_begin (f->db, batch, "p", uid, NULL, NULL, "op", &error);
      g_assert_no_error (error);
      /* request BAD reuses the first unit's public key */
      g[i] = (GroupWrite) { f->db, unit, i == BAD ? u1->pubkey_sha256 : keys[i], 0, NULL };
    }

  guint64 writes0 = 0, commits0 = 0;
  st_db_get_write_stats (f->db, &writes0, &commits0);
  st_db_writer_hold (f->db, TRUE);
  GThread *threads[N];
  for (int i = 0; i < N; i++)
    threads[i] = g_thread_new ("group", group_write_main, &g[i]);
  for (int tries = 0; st_db_writer_queued (f->db) < N && tries < 5000; tries++)
    g_usleep (1000);
  g_assert_cmpuint (st_db_writer_queued (f->db), ==, N);
  st_db_writer_hold (f->db, FALSE);
  for (int i = 0; i < N; i++)
    g_thread_join (threads[i]);

  guint64 writes = 0, commits = 0;
  st_db_get_write_stats (f->db, &writes, &commits);
  g_assert_cmpuint (writes - writes0, ==, N);
  g_assert_cmpuint (commits - commits0, ==, 1);   /* one group, one commit */

  for (int i = 0; i < N; i++)
    {
      g_autoptr(StDbUnit) u = st_db_unit_get (f->db, g[i].unit, &error);
      g_assert_no_error (error);
      if (i == BAD)
        {
          g_assert_error (g[i].error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
          g_assert_nonnull (strstr (g[i].error->message, "already certified"));
          g_assert_cmpint (g[i].result, ==, 0);
          g_assert_cmpstr (u->state, ==, "started");
          g_assert_cmpint (u->cert_id, ==, 0);
        }
      else
        {
          g_assert_no_error (g[i].error);
          g_assert_cmpint (g[i].result, >, 0);
          g_assert_cmpstr (u->state, ==, "issuing");
          g_assert_cmpint (u->cert_id, ==, g[i].result);
        }
      g_clear_error (&g[i].error);
      g_free (keys[i]);
    }
  assert_check_ok (f->db);
}

/* ---------- storage faults ---------- */

static void
test_disk_full (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  gint64 batch = make_batch (f->db, "WO-FULL", 10);
  full_cycle (f->db, batch, "ab01", 1);

  gint64 limit = st_db_set_max_page_count (f->db, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpint (limit, >, 0);

  /* a large profile needs new pages: the database is "full" */
  g_autofree gchar *profile = g_strnfill (256 * 1024, 'p');
  gint64 id = st_db_batch_create (f->db, "WO-BIG", "sensor-x", PROFILE_SHA, profile, 10,
                                  "station-1", "lead", &error);
  g_assert_cmpint (id, ==, 0);
  g_assert_error (error, ST_ERROR, ST_ERROR_WRITE);
  g_test_message ("disk full: %s", error->message);
  g_assert_nonnull (strstr (error->message, "SQLITE_FULL"));
  g_assert_nonnull (strstr (error->message, "is full: free space, then restart the station"));
  g_assert_nonnull (strstr (error->message, f->path));
  g_clear_error (&error);

  /* not acknowledged, not recorded */
  g_autoptr(GPtrArray) list = st_db_batch_list (f->db, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (list->len, ==, 1);
  g_assert_cmpint (((StDbBatch *) list->pdata[0])->id, ==, batch);

  /* space again: the station goes on where it was */
  g_assert_cmpint (st_db_set_max_page_count (f->db, -1, &error), >, limit);
  g_assert_no_error (error);
  id = st_db_batch_create (f->db, "WO-BIG", "sensor-x", PROFILE_SHA, profile, 10,
                           "station-1", "lead", &error);
  g_assert_no_error (error);
  g_assert_cmpint (id, >, batch);
  full_cycle (f->db, batch, "ab02", 2);
  assert_check_ok (f->db);
}

/* A VFS around the default one that makes the WAL file's writes or syncs
 * fail on demand: a full disk or a dying one at COMMIT time. */
typedef struct {
  sqlite3_file base;
  sqlite3_file *real;
  gboolean is_wal;
} FaultFile;

static sqlite3_vfs *real_vfs;
static sqlite3_vfs fault_vfs;
static sqlite3_io_methods fault_methods;
static gint fault_write_rc;   /* SQLITE_OK, or the code the WAL's xWrite returns */
static gint fault_sync_rc;    /* likewise for xSync */

static int fault_close (sqlite3_file *f) { return ((FaultFile *) f)->real->pMethods->xClose (((FaultFile *) f)->real); }
static int fault_read (sqlite3_file *f, void *b, int n, sqlite3_int64 o) { sqlite3_file *r = ((FaultFile *) f)->real; return r->pMethods->xRead (r, b, n, o); }
static int
fault_write (sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
  FaultFile *ff = (FaultFile *) f;
  int rc = g_atomic_int_get (&fault_write_rc);
  if (ff->is_wal && rc != SQLITE_OK)
    return rc;
  return ff->real->pMethods->xWrite (ff->real, b, n, o);
}
static int fault_truncate (sqlite3_file *f, sqlite3_int64 s) { sqlite3_file *r = ((FaultFile *) f)->real; return r->pMethods->xTruncate (r, s); }
static int
fault_sync (sqlite3_file *f, int flags)
{
  FaultFile *ff = (FaultFile *) f;
  int rc = g_atomic_int_get (&fault_sync_rc);
  if (ff->is_wal && rc != SQLITE_OK)
    return rc;
  return ff->real->pMethods->xSync (ff->real, flags);
}
static int fault_file_size (sqlite3_file *f, sqlite3_int64 *s) { sqlite3_file *r = ((FaultFile *) f)->real; return r->pMethods->xFileSize (r, s); }
static int fault_lock (sqlite3_file *f, int l) { sqlite3_file *r = ((FaultFile *) f)->real; return r->pMethods->xLock (r, l); }
static int fault_unlock (sqlite3_file *f, int l) { sqlite3_file *r = ((FaultFile *) f)->real; return r->pMethods->xUnlock (r, l); }
static int fault_check_reserved (sqlite3_file *f, int *o) { sqlite3_file *r = ((FaultFile *) f)->real; return r->pMethods->xCheckReservedLock (r, o); }
static int fault_file_control (sqlite3_file *f, int op, void *a) { sqlite3_file *r = ((FaultFile *) f)->real; return r->pMethods->xFileControl (r, op, a); }
static int fault_sector_size (sqlite3_file *f) { sqlite3_file *r = ((FaultFile *) f)->real; return r->pMethods->xSectorSize (r); }
static int fault_device_chars (sqlite3_file *f) { sqlite3_file *r = ((FaultFile *) f)->real; return r->pMethods->xDeviceCharacteristics (r); }
static int fault_shm_map (sqlite3_file *f, int i, int sz, int e, void volatile **p) { sqlite3_file *r = ((FaultFile *) f)->real; return r->pMethods->xShmMap (r, i, sz, e, p); }
static int fault_shm_lock (sqlite3_file *f, int o, int n, int fl) { sqlite3_file *r = ((FaultFile *) f)->real; return r->pMethods->xShmLock (r, o, n, fl); }
static void fault_shm_barrier (sqlite3_file *f) { sqlite3_file *r = ((FaultFile *) f)->real; r->pMethods->xShmBarrier (r); }
static int fault_shm_unmap (sqlite3_file *f, int d) { sqlite3_file *r = ((FaultFile *) f)->real; return r->pMethods->xShmUnmap (r, d); }
static int fault_fetch (sqlite3_file *f, sqlite3_int64 o, int n, void **p) { sqlite3_file *r = ((FaultFile *) f)->real; return r->pMethods->xFetch (r, o, n, p); }
static int fault_unfetch (sqlite3_file *f, sqlite3_int64 o, void *p) { sqlite3_file *r = ((FaultFile *) f)->real; return r->pMethods->xUnfetch (r, o, p); }

static int
fault_open (sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
  FaultFile *ff = (FaultFile *) f;
  ff->real = (sqlite3_file *) (ff + 1);
  ff->is_wal = (flags & SQLITE_OPEN_WAL) != 0;
  int rc = real_vfs->xOpen (real_vfs, name, ff->real, flags, out_flags);
  ff->base.pMethods = rc == SQLITE_OK && ff->real->pMethods != NULL ? &fault_methods : NULL;
  return rc;
}

static void
fault_vfs_install (void)
{
  real_vfs = sqlite3_vfs_find (NULL);
  g_assert_nonnull (real_vfs);
  g_assert_cmpint (real_vfs->iVersion, >=, 2);
  fault_vfs = *real_vfs;
  fault_vfs.zName = "st-test-fault";
  fault_vfs.szOsFile = (int) sizeof (FaultFile) + real_vfs->szOsFile;
  fault_vfs.xOpen = fault_open;
  fault_methods = (sqlite3_io_methods) {
    .iVersion = 3, .xClose = fault_close, .xRead = fault_read, .xWrite = fault_write,
    .xTruncate = fault_truncate, .xSync = fault_sync, .xFileSize = fault_file_size,
    .xLock = fault_lock, .xUnlock = fault_unlock, .xCheckReservedLock = fault_check_reserved,
    .xFileControl = fault_file_control, .xSectorSize = fault_sector_size,
    .xDeviceCharacteristics = fault_device_chars, .xShmMap = fault_shm_map,
    .xShmLock = fault_shm_lock, .xShmBarrier = fault_shm_barrier, .xShmUnmap = fault_shm_unmap,
    .xFetch = fault_fetch, .xUnfetch = fault_unfetch,
  };
  g_assert_cmpint (sqlite3_vfs_register (&fault_vfs, 1), ==, SQLITE_OK);
}

typedef struct {
  StDb *db;
  gint64 batch;
  int index;
  gint64 unit;
  GError *error;
} BeginWrite;

static gpointer
begin_write_main (gpointer data)
{
  BeginWrite *w = data;
  g_autofree gchar *uid = g_strdup_printf ("fa%02x", w->index);
  w->unit = st_db_unit_begin (w->db, w->batch, "p", uid, NULL, NULL, "op", &w->error);
  return NULL;
}

/* COMMIT itself fails: every caller of the group gets the error, none is
 * acknowledged, none is recorded; afterwards the station goes on. */
static void
commit_fault (Fixture *f, gint *which, int rc, const char *name, const char *says)
{
  g_autoptr(GError) error = NULL;
  gint64 batch = make_batch (f->db, "WO-IO", 10);
  full_cycle (f->db, batch, "fa00", 1);
  guint64 writes0 = 0, commits0 = 0;
  st_db_get_write_stats (f->db, &writes0, &commits0);

  enum { N = 4 };
  BeginWrite w[N];
  GThread *threads[N];
  st_db_writer_hold (f->db, TRUE);
  for (int i = 0; i < N; i++)
    {
      w[i] = (BeginWrite) { f->db, batch, i + 1, -1, NULL };
      threads[i] = g_thread_new ("begin", begin_write_main, &w[i]);
    }
  for (int tries = 0; st_db_writer_queued (f->db) < N && tries < 5000; tries++)
    g_usleep (1000);
  g_assert_cmpuint (st_db_writer_queued (f->db), ==, N);
  g_atomic_int_set (which, rc);
  st_db_writer_hold (f->db, FALSE);
  for (int i = 0; i < N; i++)
    g_thread_join (threads[i]);
  g_atomic_int_set (which, SQLITE_OK);

  guint64 writes = 0, commits = 0;
  st_db_get_write_stats (f->db, &writes, &commits);
  g_assert_cmpuint (commits, ==, commits0);
  for (int i = 0; i < N; i++)
    {
      g_assert_error (w[i].error, ST_ERROR, ST_ERROR_WRITE);
      g_assert_cmpint (w[i].unit, ==, 0);
      g_assert_nonnull (strstr (w[i].error->message, name));
      g_assert_nonnull (strstr (w[i].error->message, says));
      g_assert_nonnull (strstr (w[i].error->message, f->path));
      if (i == 0)
        g_test_message ("%s", w[i].error->message);
      g_clear_error (&w[i].error);
    }
  g_autoptr(GPtrArray) units = st_db_unit_list (f->db, batch, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (units->len, ==, 1);

  full_cycle (f->db, batch, "fa10", 2);
  g_autoptr(GPtrArray) after = st_db_unit_list (f->db, batch, &error);
  g_assert_cmpuint (after->len, ==, 2);
  assert_check_ok (f->db);

  /* and after a restart, too */
  g_clear_pointer (&f->db, st_db_close);
  f->db = st_db_open (f->path, &error);
  g_assert_no_error (error);
  assert_check_ok (f->db);
}

static void
test_commit_disk_full (Fixture *f, gconstpointer data)
{
  commit_fault (f, &fault_write_rc, SQLITE_FULL, "SQLITE_FULL",
                "is full: free space, then restart the station; nothing was lost");
}

static void
test_commit_io_error (Fixture *f, gconstpointer data)
{
  commit_fault (f, &fault_sync_rc, SQLITE_IOERR_FSYNC, "SQLITE_IOERR_FSYNC", "I/O error");
}

/* ---------- audit trail, operators, voided-certificate cap ---------- */

static gint64
audit_head (StDb *db, gchar **hash)
{
  g_autoptr(GError) error = NULL;
  gint64 seq = -1;
  gchar *h = NULL;
  g_assert_true (st_db_audit_head (db, &seq, &h, &error));
  g_assert_no_error (error);
  if (hash != NULL)
    *hash = h;
  else
    g_free (h);
  return seq;
}

static StDbAuditEntry *
audit_entry (StDb *db, gint64 seq)
{
  g_autoptr(GError) error = NULL;
  StDbAuditEntry *e = st_db_audit_get (db, seq, &error);
  g_assert_no_error (error);
  return e;
}

/* Verifies the chain; returns the report; *@ok tells the outcome. */
static gchar *
audit_verify (StDb *db, gboolean *ok)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) report = g_string_new (NULL);
  *ok = st_db_audit_verify (db, report, NULL, &error);
  if (*ok)
    g_assert_no_error (error);
  else
    g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
  g_test_message ("%s", report->str);
  return g_string_free (g_steal_pointer (&report), FALSE);
}

static void
add_checkpoint (StDb *db)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *hash = NULL;
  gint64 seq = audit_head (db, &hash);
  g_autoptr(GBytes) sig = g_bytes_new_static ("sig", 3);
  g_autoptr(GBytes) cert = g_bytes_new_static ("cert", 4);
  g_assert_true (st_db_audit_checkpoint_add (db, seq, hash, "test", sig, cert, &error));
  g_assert_no_error (error);
}

/* Every write appends one entry in its own transaction, chained, naming
 * who did it; a refused write appends nothing. */
static void
test_audit_chain (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_assert_cmpint (audit_head (f->db, NULL), ==, 0);
  gint64 batch = make_batch (f->db, "WO-A", 2);
  g_autoptr(StDbAuditEntry) e1 = audit_entry (f->db, 1);
  g_assert_cmpstr (e1->event, ==, "batch-create");
  g_assert_cmpstr (e1->operator_name, ==, "lead-anna");
  g_assert_cmpstr (e1->prev_hash, ==, ST_DB_AUDIT_GENESIS);
  g_assert_nonnull (strstr (e1->payload, "\"work_order\":\"WO-A\""));
  g_autofree gchar *h1 = st_db_audit_hash (e1->seq, e1->at, e1->operator_name, e1->event,
                                           e1->payload, e1->prev_hash);
  g_assert_cmpstr (h1, ==, e1->hash);

  st_db_set_actor (f->db, "op-carl");
  full_cycle (f->db, batch, "0a", 1);
  /* unit-begin, cert-reserve, cert-issued, unit-done */
  g_assert_cmpint (audit_head (f->db, NULL), ==, 5);
  g_autoptr(StDbAuditEntry) e3 = audit_entry (f->db, 3);
  g_assert_cmpstr (e3->event, ==, "cert-reserve");
  g_assert_cmpstr (e3->operator_name, ==, "op-carl");  /* the actor: the call names nobody */
  g_autoptr(StDbAuditEntry) e2 = audit_entry (f->db, 2);
  g_assert_cmpstr (e3->prev_hash, ==, e2->hash);
  g_autoptr(StDbAuditEntry) e5 = audit_entry (f->db, 5);
  g_assert_cmpstr (e5->event, ==, "unit-done");
  g_assert_cmpstr (e5->operator_name, ==, "op-carl");

  /* a refused reservation (the uid holds a live certificate) records nothing */
  gint64 cert = 0;
  begin_reserve (f->db, batch, "0a", 2, FALSE, &cert, &error);
  g_assert_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED);
  g_clear_error (&error);
  g_assert_cmpint (audit_head (f->db, NULL), ==, 6);  /* its unit-begin only */

  g_assert_true (st_db_event_add (f->db, "qa-dana", "qa-verify-unit", "{\"uid\":\"0a\"}", &error));
  g_assert_no_error (error);
  g_autoptr(StDbAuditEntry) e7 = audit_entry (f->db, 7);
  g_assert_cmpstr (e7->event, ==, "qa-verify-unit");
  g_assert_cmpstr (e7->operator_name, ==, "qa-dana");
  g_assert_true (st_db_batch_close (f->db, batch, "lead-anna", &error) || error != NULL);
  g_clear_error (&error);  /* unit 2 is 'started', not busy: the batch closes */

  gboolean ok = FALSE;
  g_autofree gchar *report = audit_verify (f->db, &ok);
  g_assert_true (ok);
  g_assert_nonnull (strstr (report, "audit chain: ok"));
  assert_check_ok (f->db);
}

/* The file edited behind the station's back: an edited payload, a deleted
 * entry, truncation behind a checkpoint. */
static void
test_audit_tamper (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  gint64 batch = make_batch (f->db, "WO-T", 10);
  for (gint64 i = 1; i <= 4; i++)
    {
      g_autofree gchar *uid = g_strdup_printf ("%02" G_GINT64_MODIFIER "x", i);
      full_cycle (f->db, batch, uid, i);
    }
  add_checkpoint (f->db);              /* signs entry 17 */
  full_cycle (f->db, batch, "99", 9);  /* entries 18..21 */
  g_assert_cmpint (audit_head (f->db, NULL), ==, 21);
  gboolean ok = FALSE;
  g_autofree gchar *r0 = audit_verify (f->db, &ok);
  g_assert_true (ok);

  /* the log refuses changes through the station's own triggers */
  g_autofree gchar *msg = NULL;
  g_assert_cmpint (raw_exec (f->path, "UPDATE audit SET payload = '{}' WHERE seq = 3", &msg), !=, SQLITE_OK);
  g_assert_nonnull (strstr (msg, "append-only"));

  /* an edited payload */
  g_assert_cmpint (raw_exec (f->path, "DROP TRIGGER audit_append_only; DROP TRIGGER audit_no_delete;"
                             "UPDATE audit SET payload = replace (payload, '\"unit\":1', '\"unit\":2')"
                             " WHERE seq = 3", NULL), ==, SQLITE_OK);
  g_autofree gchar *r1 = audit_verify (f->db, &ok);
  g_assert_false (ok);
  g_assert_nonnull (strstr (r1, "entry 3 (cert-reserve by station) was changed"));
  g_assert_null (strstr (r1, "missing"));
  g_autoptr(GString) check = g_string_new (NULL);
  g_assert_false (st_db_check (f->db, check, &error));   /* db check sees it too */
  g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
  g_clear_error (&error);
  g_assert_nonnull (strstr (check->str, "entry 3"));

  /* put it back: it verifies again (the hash is over the contents) */
  g_assert_cmpint (raw_exec (f->path, "UPDATE audit SET payload = replace (payload, '\"unit\":2', '\"unit\":1')"
                             " WHERE seq = 3", NULL), ==, SQLITE_OK);
  g_autofree gchar *r2 = audit_verify (f->db, &ok);
  g_assert_true (ok);

  /* a deleted entry: a gap in the sequence */
  g_assert_cmpint (raw_exec (f->path, "DELETE FROM audit WHERE seq = 10", NULL), ==, SQLITE_OK);
  g_autofree gchar *r3 = audit_verify (f->db, &ok);
  g_assert_false (ok);
  g_assert_nonnull (strstr (r3, "entries 10 to 10 are missing (deleted)"));

  /* truncation behind the signed checkpoint (entries 12..21 gone; the
   * re-chained remainder would pass without the checkpoint) */
  g_assert_cmpint (raw_exec (f->path, "DELETE FROM audit WHERE seq >= 12", NULL), ==, SQLITE_OK);
  g_autofree gchar *r4 = audit_verify (f->db, &ok);
  g_assert_false (ok);
  g_assert_nonnull (strstr (r4, "the log ends at entry 11 but checkpoint 1 signed entry 17"));
  g_assert_nonnull (strstr (r4, "truncated"));
}

static void
test_audit_checkpoint (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  make_batch (f->db, "WO-C", 1);
  g_autoptr(StDbAuditCheckpoint) none = st_db_audit_checkpoint_latest (f->db, &error);
  g_assert_null (none);
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_FOUND);
  g_clear_error (&error);
  /* a checkpoint must match the log */
  g_autoptr(GBytes) sig = g_bytes_new_static ("sig", 3);
  g_autoptr(GBytes) cert = g_bytes_new_static ("cert", 4);
  g_assert_false (st_db_audit_checkpoint_add (f->db, 1, ST_DB_AUDIT_GENESIS, "test", sig, cert, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
  g_clear_error (&error);
  g_assert_false (st_db_audit_checkpoint_add (f->db, 5, ST_DB_AUDIT_GENESIS, "test", sig, cert, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
  g_clear_error (&error);
  add_checkpoint (f->db);
  g_autoptr(StDbAuditCheckpoint) cp = st_db_audit_checkpoint_latest (f->db, &error);
  g_assert_no_error (error);
  g_assert_cmpint (cp->seq, ==, 1);
  g_assert_cmpstr (cp->reason, ==, "test");
}

static guint hook_calls;
static void
count_hook (StDb *db, gpointer user_data)
{
  hook_calls++;
  add_checkpoint (db);
}

/* The checkpoint hook runs every N entries. */
static void
test_audit_hook (Fixture *f, gconstpointer data)
{
  hook_calls = 0;
  st_db_set_checkpoint_hook (f->db, 4, count_hook, NULL);
  gint64 batch = make_batch (f->db, "WO-H", 10);        /* 1 */
  full_cycle (f->db, batch, "01", 1);                     /* 2..5: hook at 4 */
  g_assert_cmpuint (hook_calls, ==, 1);
  full_cycle (f->db, batch, "02", 2);                     /* 6..9: hook at 9 (5 since 4) */
  g_assert_cmpuint (hook_calls, ==, 2);
  st_db_set_checkpoint_hook (f->db, 0, NULL, NULL);
  full_cycle (f->db, batch, "03", 3);
  g_assert_cmpuint (hook_calls, ==, 2);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) cps = st_db_audit_checkpoint_list (f->db, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (cps->len, ==, 2);
}

static void
test_operators (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_assert_cmpint (st_db_operator_count (f->db, &error), ==, 0);
  /* the first operator is made by nobody, and must be an admin */
  g_assert_false (st_db_operator_add (f->db, "bob", "operator", "h1", NULL, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED);
  g_assert_nonnull (strstr (error->message, "first operator must be an admin"));
  g_clear_error (&error);
  g_assert_true (st_db_operator_add (f->db, "root-ann", "admin", "h0", NULL, &error));
  g_assert_no_error (error);
  /* after that, nobody adds without an admin */
  g_assert_false (st_db_operator_add (f->db, "eve", "admin", "h2", NULL, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED);
  g_clear_error (&error);
  g_assert_true (st_db_operator_add (f->db, "bob", "operator", "h1", "root-ann", &error));
  g_assert_no_error (error);
  g_assert_false (st_db_operator_add (f->db, "bob", "lead", "h1", "root-ann", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_assert_false (st_db_operator_add (f->db, "carl", "boss", "h1", "root-ann", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_assert_false (st_db_operator_add (f->db, "x'; DROP", "qa", "h1", "root-ann", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);

  /* five wrong PINs lock */
  gint64 attempts = 0;
  gboolean locked = FALSE;
  for (int i = 1; i <= 5; i++)
    {
      g_assert_true (login_failed (f->db, "bob", 5, &attempts, &locked, &error));
      g_assert_no_error (error);
      g_assert_cmpint (attempts, ==, i);
      g_assert_cmpint (locked, ==, i == 5);
    }
  g_autoptr(StDbOperator) bob = st_db_operator_get (f->db, "bob", &error);
  g_assert_true (bob->locked);
  g_assert_true (st_db_operator_unlock (f->db, "bob", "root-ann", &error));
  g_assert_true (st_db_operator_set_role (f->db, "bob", "lead", "root-ann", &error));
  g_assert_no_error (error);
  g_autoptr(StDbOperator) bob2 = st_db_operator_get (f->db, "bob", &error);
  g_assert_false (bob2->locked);
  g_assert_cmpint (bob2->failed_attempts, ==, 0);
  g_assert_cmpstr (bob2->role, ==, "lead");
  g_assert_null (st_db_operator_get (f->db, "nobody", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_false (st_db_operator_unlock (f->db, "nobody", "root-ann", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_FOUND);
  g_clear_error (&error);

  /* every change is audited with who did it */
  gint64 head = audit_head (f->db, NULL);
  g_assert_cmpint (head, ==, 9);  /* 2 adds, 4 failures, 1 lock, unlock, set-role */
  g_autoptr(StDbAuditEntry) lock = audit_entry (f->db, 7);
  g_assert_cmpstr (lock->event, ==, "operator-locked");
  g_autoptr(StDbAuditEntry) unlock = audit_entry (f->db, 8);
  g_assert_cmpstr (unlock->event, ==, "operator-unlock");
  g_assert_cmpstr (unlock->operator_name, ==, "root-ann");
  g_autoptr(GPtrArray) list = st_db_operator_list (f->db, &error);
  g_assert_cmpuint (list->len, ==, 2);
  g_assert_cmpint (raw_exec (f->path, "DELETE FROM operators", NULL), !=, SQLITE_OK);
}

/* Past quantity / 10 + 5 voided certificates the reservation is refused
 * until a lead allows more. */
static void
test_void_cap (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  gint64 batch = make_batch (f->db, "WO-V", 20);   /* cap 20 / 10 + 5 = 7 */
  g_assert_cmpint (st_db_void_cap_base (20), ==, 7);
  gint64 voided = -1, cap = -1;
  for (gint64 i = 1; i <= 8; i++)
    {
      g_autofree gchar *uid = g_strdup_printf ("%02" G_GINT64_MODIFIER "x", i);
      gint64 cert = 0;
      gint64 unit = begin_reserve (f->db, batch, uid, i, FALSE, &cert, &error);
      g_assert_no_error (error);
      g_assert_false (st_db_batch_over_void_cap (f->db, batch, &voided, &cap));
      g_assert_true (st_db_unit_fail (f->db, unit, "write", "read-back differs", NULL, ST_DB_CERT_VOID, &error));
      g_assert_no_error (error);
    }
  g_assert_true (st_db_batch_over_void_cap (f->db, batch, &voided, &cap));
  g_assert_cmpint (voided, ==, 8);
  g_assert_cmpint (cap, ==, 7);
  gint64 cert = 0;
  begin_reserve (f->db, batch, "a0", 20, FALSE, &cert, &error);
  g_assert_cmpint (cert, ==, 0);
  g_assert_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED);
  g_assert_nonnull (strstr (error->message, "has voided 8 certificates, more than the cap of 7: "
                                            "a lead must review the failures"));
  g_clear_error (&error);
  /* the one-write path refuses the same way and records nothing */
  StDbUnitNew un = { batch, "/dev/pts/9", "a1", "stm32f4", "1.2.3", "op-bob" };
  g_autofree gchar *serial = random_serial ();
  g_autofree gchar *pk = random_pubkey_hash ();
  g_autoptr(GBytes) tbs = fake_der ("tbs", 21);
  gint64 unit_id = 0;
  gint64 head = audit_head (f->db, NULL);
  g_assert_cmpint (st_db_unit_begin_reserve (f->db, &un, ISSUER, serial, pk, tbs, "SX-21", 21, FALSE,
                                             &unit_id, &error), ==, 0);
  g_assert_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED);
  g_clear_error (&error);
  g_assert_cmpint (audit_head (f->db, NULL), ==, head);

  gint64 new_cap = 0;
  g_assert_true (st_db_batch_allow_more_voids (f->db, batch, "lead-anna", &new_cap, &error));
  g_assert_no_error (error);
  g_assert_cmpint (new_cap, ==, 14);
  g_autoptr(StDbAuditEntry) e = audit_entry (f->db, audit_head (f->db, NULL));
  g_assert_cmpstr (e->event, ==, "batch-allow-more-voids");
  g_assert_cmpstr (e->operator_name, ==, "lead-anna");
  g_assert_false (st_db_batch_over_void_cap (f->db, batch, NULL, NULL));
  g_assert_cmpint (st_db_unit_begin_reserve (f->db, &un, ISSUER, serial, pk, tbs, "SX-21", 21, FALSE,
                                             &unit_id, &error), >, 0);
  g_assert_no_error (error);
  assert_check_ok (f->db);
}

/* A database file @name of schema @version as older stations wrote it,
 * with one batch (id 1) of @work_order and @quantity. */
static gchar *
make_db_at (Fixture *f, const char *name, gint version, const char *work_order, gint quantity)
{
  gchar *path = g_build_filename (f->dir, name, NULL);
  g_assert_true (g_file_set_contents (path, "", 0, NULL));  /* an empty file is an empty database */
  for (gint v = 1; v <= version; v++)
    g_assert_cmpint (raw_exec (path, st_db_schema_migration (v), NULL), ==, SQLITE_OK);
  g_autofree gchar *batch = g_strdup_printf (
      "INSERT INTO batches (work_order, product, profile_sha256, profile_text, quantity, created_at,"
      " created_by, station_id) VALUES ('%s', 'p', '" PROFILE_SHA "', 't', %d, 1, 'x', 's')",
      work_order, quantity);
  g_assert_cmpint (raw_exec (path, batch, NULL), ==, SQLITE_OK);
  return path;
}

/* A database of schema 1 with records moves to 2: nothing lost, the chain
 * starts there. */
static void
test_migrate_v1 (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_clear_pointer (&f->db, st_db_close);
  g_autofree gchar *old = make_db_at (f, "v1.db", 1, "WO-OLD", 3);
  g_autoptr(StDb) db = st_db_open (old, &error);
  g_assert_no_error (error);
  g_autoptr(StDbBatch) b = st_db_batch_get (db, 1, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (b->work_order, ==, "WO-OLD");
  g_assert_cmpint (audit_head (db, NULL), ==, 0);
  g_assert_false (st_db_batch_over_void_cap (db, 1, NULL, NULL));
  g_assert_true (st_db_batch_close (db, 1, "lead", &error));
  g_assert_cmpint (audit_head (db, NULL), ==, 1);
  assert_check_ok (db);
}

/* Schema 3 counts each batch's live certificates: a v2 database with
 * certificates gets the count on opening, the triggers keep it, and
 * `db check` notices a counter that was tampered with. */
static void
test_migrate_v2_live_count (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_clear_pointer (&f->db, st_db_close);
  g_autofree gchar *old = make_db_at (f, "v2.db", 2, "WO-2", 5);
  for (int i = 0; i < 3; i++)
    {
      g_autofree gchar *sql = g_strdup_printf (
          "INSERT INTO units (batch_id, port, uid, state, started_at, operator) VALUES (1, 'p', '%02x', '%s', 1, 'x');"
          "INSERT INTO certificates (unit_id, batch_id, uid, issuer, serial, pubkey_sha256, tbs, state, reserved_at)"
          " VALUES (%d, 1, '%02x', '%064d', '%02x', '%064d', x'30', '%s', 1)",
          i, i == 2 ? "failed" : "issuing", i + 1, i, 0, i + 1, i, i == 2 ? "voided" : "issuing");
      g_assert_cmpint (raw_exec (old, sql, NULL), ==, SQLITE_OK);
    }
  g_autoptr(StDb) db = st_db_open (old, &error);
  g_assert_no_error (error);
  g_clear_pointer (&db, st_db_close);
  g_assert_cmpint (raw_int (old, "SELECT live_certs FROM batches WHERE id = 1"), ==, 2);
  g_assert_cmpint (raw_exec (old, "UPDATE certificates SET state = 'voided' WHERE id = 1;"
                             "UPDATE units SET state = 'failed' WHERE id = 1", NULL), ==, SQLITE_OK);
  g_assert_cmpint (raw_int (old, "SELECT live_certs FROM batches WHERE id = 1"), ==, 1);
  db = st_db_open (old, &error);
  g_assert_no_error (error);
  assert_check_ok (db);
  /* its rows are older than the log (schema 2 brought it): not unexplained */
  guint n = G_MAXUINT;
  g_autofree gchar *records = replay_report (db, &n);
  g_assert_cmpuint (n, ==, 0);
  g_assert_nonnull (strstr (records, "records: 7 row(s) are older than the log"));
  g_clear_pointer (&db, st_db_close);
  g_assert_cmpint (raw_exec (old, "UPDATE batches SET live_certs = 4 WHERE id = 1", NULL), ==, SQLITE_OK);
  db = st_db_open (old, &error);
  g_assert_no_error (error);
  g_autoptr(GString) report = g_string_new (NULL);
  g_assert_false (st_db_check (db, report, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
  g_assert_nonnull (strstr (report->str, "batch live counts agree with the certificates: FAILED"));
}

/* The certificate state moves a database at @path allows, tried one by one:
 * five lines of Y/N (from issuing, issued, active, voided, unconfirmed) over
 * the same five targets. Each try has its own unit and uid. */
static gchar *
state_moves (const char *path, int first_id)
{
  static const char *const states[] = { "issuing", "issued", "active", "voided", "unconfirmed" };
  GString *out = g_string_new (NULL);
  int id = first_id;
  for (guint i = 0; i < G_N_ELEMENTS (states); i++)
    {
      for (guint j = 0; j < G_N_ELEMENTS (states); j++, id++)
        {
          g_autofree gchar *insert = g_strdup_printf (
              "INSERT INTO units (id, batch_id, port, uid, state, started_at, operator)"
              " VALUES (%d, 1, 'p', '%04x', 'issued', 1, 'x');"
              "INSERT INTO certificates (unit_id, batch_id, uid, issuer, serial, pubkey_sha256, tbs, der,"
              " state, reserved_at) VALUES (%d, 1, '%04x', '%064d', '%04x', '%064x', x'30', x'30', '%s', 1)",
              id, id, id, id, 0, id, id, states[i]);
          g_assert_cmpint (raw_exec (path, insert, NULL), ==, SQLITE_OK);
          g_autofree gchar *update = g_strdup_printf (
              "UPDATE certificates SET state = '%s' WHERE unit_id = %d", states[j], id);
          g_string_append_c (out, raw_exec (path, update, NULL) == SQLITE_OK ? 'Y' : 'N');
        }
      g_string_append_c (out, '\n');
    }
  return g_string_free (out, FALSE);
}

#define HEX64_2 "2222222222222222222222222222222222222222222222222222222222222222"
#define HEX64_3 "3333333333333333333333333333333333333333333333333333333333333333"

/* Schema 4 writes the state rules without constant lists of three or more
 * (SQLite builds a temporary b-tree for each one, every time): the same
 * moves are allowed as in schema 3, the live count and the one-live-
 * certificate-per-uid rule hold as before, on a migrated database too. */
static void
test_migrate_v3_same_rules (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_clear_pointer (&f->db, st_db_close);
  g_autofree gchar *v3 = make_db_at (f, "v3.db", 3, "WO-3", 100);
  g_autofree gchar *moves_v3 = state_moves (v3, 1000);

  /* a v3 database with those records, migrated on opening */
  g_autofree gchar *v4 = make_db_at (f, "v4.db", 3, "WO-3", 100);
  g_autofree gchar *before = state_moves (v4, 1000);
  g_autoptr(StDb) db = st_db_open (v4, &error);
  g_assert_no_error (error);
  g_clear_pointer (&db, st_db_close);
  g_assert_cmpint (raw_int (v4, "PRAGMA user_version"), ==, st_db_schema_version ());
  g_autofree gchar *moves_v4 = state_moves (v4, 2000);

  g_assert_cmpstr (before, ==, moves_v3);
  g_assert_cmpstr (moves_v4, ==, moves_v3);
  g_assert_cmpstr (moves_v4, ==,
                   /* staying is no move; otherwise: */
                   "YYNYY\n"    /* issuing: to issued, voided, unconfirmed */
                   "NYYYY\n"    /* issued: to active, voided, unconfirmed */
                   "NNYYY\n"    /* active: to voided, unconfirmed */
                   "NNNYN\n"    /* voided: none */
                   "NNYYY\n");  /* unconfirmed: to active, voided */
  /* the live count moved with every change, in both schemas alike */
  g_assert_cmpint (raw_int (v4, "SELECT live_certs FROM batches WHERE id = 1"), ==,
                   raw_int (v4, "SELECT count(*) FROM certificates WHERE state <> 'voided'"));
  g_assert_cmpint (raw_int (v3, "SELECT live_certs FROM batches WHERE id = 1"), ==,
                   raw_int (v3, "SELECT count(*) FROM certificates WHERE state <> 'voided'"));

  /* one live certificate per uid; voided ones do not count */
  g_assert_cmpint (raw_exec (v4,
      "INSERT INTO units (id, batch_id, port, uid, state, started_at, operator) VALUES"
      " (1, 1, 'p', 'ab', 'failed', 1, 'x'), (2, 1, 'p', 'ab', 'issued', 1, 'x'), (3, 1, 'p', 'ab', 'started', 1, 'x');"
      "INSERT INTO certificates (unit_id, batch_id, uid, issuer, serial, pubkey_sha256, tbs, state, reserved_at)"
      " VALUES (1, 1, 'ab', '" PROFILE_SHA "', '01', '" PROFILE_SHA "', x'30', 'voided', 1);"
      "INSERT INTO certificates (unit_id, batch_id, uid, issuer, serial, pubkey_sha256, tbs, state, reserved_at)"
      " VALUES (2, 1, 'ab', '" PROFILE_SHA "', '02', '" HEX64_2 "', x'30', 'issuing', 1)",
      NULL), ==, SQLITE_OK);
  g_autofree gchar *msg = NULL;
  g_assert_cmpint (raw_exec (v4,
      "INSERT INTO certificates (unit_id, batch_id, uid, issuer, serial, pubkey_sha256, tbs, state, reserved_at)"
      " VALUES (3, 1, 'ab', '" PROFILE_SHA "', '03', '" HEX64_3 "', x'30', 'issuing', 1)",
      &msg), ==, SQLITE_CONSTRAINT);
  g_assert_nonnull (strstr (msg, "certificates.uid"));
}

/* ---------- product serials ---------- */

/* While set, the warnings logged, as "domain: message", instead of
 * aborting the test. */
static GPtrArray *warnings;

static GLogWriterOutput
capture_warnings (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
  if (warnings == NULL || (level & G_LOG_LEVEL_WARNING) == 0)
    return g_log_writer_default (level, fields, n_fields, user_data);
  const char *domain = NULL, *message = NULL;
  for (gsize i = 0; i < n_fields; i++)
    if (g_strcmp0 (fields[i].key, "GLIB_DOMAIN") == 0 && fields[i].length < 0)
      domain = fields[i].value;
    else if (g_strcmp0 (fields[i].key, "MESSAGE") == 0 && fields[i].length < 0)
      message = fields[i].value;
  g_ptr_array_add (warnings, g_strdup_printf ("%s: %s", domain != NULL ? domain : "(none)",
                                              message != NULL ? message : ""));
  return G_LOG_WRITER_HANDLED;
}

#define SEQ_THREADS 8
#define SEQ_DRAWS 40

typedef struct {
  StDb *db;
  gint64 batch[2];
  int index;
  gint64 seqs[SEQ_DRAWS];
  guint failures;
} SeqWorker;

/* Draws a number and records a unit with it, alternately in either batch. */
static gpointer
seq_worker_main (gpointer data)
{
  SeqWorker *w = data;
  for (int i = 0; i < SEQ_DRAWS; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree gchar *uid = g_strdup_printf ("5e%02x%04x", w->index, i);
      gint64 cert = 0;
      w->seqs[i] = st_db_product_seq_draw (w->db, "sensor-x", &error);
      if (w->seqs[i] <= 0 || begin_reserve (w->db, w->batch[i % 2], uid, w->seqs[i], FALSE, &cert, &error) == 0
          || cert <= 0)
        {
          g_test_message ("worker %d draw %d: %s", w->index, i, error != NULL ? error->message : "?");
          w->failures++;
        }
    }
  return NULL;
}

/* Two batches of one product running at once, many threads each: every
 * number drawn once, every product serial recorded once. */
static void
test_product_seq_threads (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  gint64 a = make_batch (f->db, "WO-SEQ-A", SEQ_THREADS * SEQ_DRAWS);
  gint64 b = make_batch (f->db, "WO-SEQ-B", SEQ_THREADS * SEQ_DRAWS);
  SeqWorker workers[SEQ_THREADS];
  GThread *threads[SEQ_THREADS];
  for (int i = 0; i < SEQ_THREADS; i++)
    {
      workers[i] = (SeqWorker) { .db = f->db, .batch = { i % 2 ? a : b, i % 2 ? b : a }, .index = i };
      threads[i] = g_thread_new ("seq", seq_worker_main, &workers[i]);
    }
  g_autoptr(GHashTable) seen = g_hash_table_new (g_int64_hash, g_int64_equal);
  for (int i = 0; i < SEQ_THREADS; i++)
    {
      g_thread_join (threads[i]);
      g_assert_cmpuint (workers[i].failures, ==, 0);
      for (int j = 0; j < SEQ_DRAWS; j++)
        {
          g_assert_cmpint (workers[i].seqs[j], >=, 1);
          g_assert_cmpint (workers[i].seqs[j], <=, SEQ_THREADS * SEQ_DRAWS);
          g_assert_true (g_hash_table_add (seen, &workers[i].seqs[j]));
        }
    }
  g_assert_cmpuint (g_hash_table_size (seen), ==, SEQ_THREADS * SEQ_DRAWS);

  g_autoptr(GHashTable) serials = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GPtrArray) ua = st_db_unit_list (f->db, a, &error);
  g_autoptr(GPtrArray) ub = st_db_unit_list (f->db, b, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (ua->len + ub->len, ==, SEQ_THREADS * SEQ_DRAWS);
  for (guint i = 0; i < ua->len + ub->len; i++)
    {
      StDbUnit *u = i < ua->len ? ua->pdata[i] : ub->pdata[i - ua->len];
      g_assert_true (g_hash_table_add (serials, u->product_serial));
    }
  g_assert_cmpint (st_db_product_seq_draw (f->db, "sensor-x", &error), ==, SEQ_THREADS * SEQ_DRAWS + 1);
  assert_check_ok (f->db);
}

/* Batches of a product one after another continue its sequence, across a
 * restart too; another product has its own. */
static void
test_product_seq_batches (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  gint64 first = make_batch (f->db, "WO-1", 10);
  for (gint64 i = 1; i <= 3; i++)
    {
      g_autofree gchar *uid = g_strdup_printf ("a1%02" G_GINT64_MODIFIER "x", i);
      gint64 seq = st_db_product_seq_draw (f->db, "sensor-x", &error);
      g_assert_no_error (error);
      g_assert_cmpint (seq, ==, i);
      full_cycle (f->db, first, uid, seq);
    }
  g_assert_true (st_db_batch_close (f->db, first, "lead-anna", &error));
  g_assert_no_error (error);

  gint64 second = make_batch (f->db, "WO-2", 10);
  gint64 seq = st_db_product_seq_draw (f->db, "sensor-x", &error);
  g_assert_cmpint (seq, ==, 4);
  gint64 unit = full_cycle (f->db, second, "a2", seq);
  g_autoptr(StDbUnit) u = st_db_unit_get (f->db, unit, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (u->product_serial, ==, "SX-000004");
  g_assert_cmpint (u->product_seq, ==, 4);

  g_clear_pointer (&f->db, st_db_close);
  f->db = st_db_open (f->path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (st_db_product_seq_draw (f->db, "sensor-x", &error), ==, 5);
  g_assert_cmpint (st_db_product_seq_draw (f->db, "sensor-y", &error), ==, 1);
  g_assert_no_error (error);
  /* a number drawn and never recorded is not drawn again in this process */
  g_assert_cmpint (st_db_product_seq_draw (f->db, "sensor-x", &error), ==, 6);
  /* drawing writes nothing (a unit's durable writes stay three) */
  guint64 writes0 = 0, writes = 0;
  st_db_get_write_stats (f->db, &writes0, NULL);
  g_assert_cmpint (st_db_product_seq_draw (f->db, "sensor-x", &error), ==, 7);
  st_db_get_write_stats (f->db, &writes, NULL);
  g_assert_cmpuint (writes, ==, writes0);
  assert_check_ok (f->db);
}

/* Two station processes (two StDb) on one database may draw the same
 * number at the same moment: the later reservation is refused as a
 * collision, and a new draw goes on after what the other recorded. */
static void
test_product_seq_two_processes (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StDb) other = st_db_open (f->path, &error);
  g_assert_no_error (error);
  gint64 a = make_batch (f->db, "WO-P1", 10);
  gint64 b = make_batch (other, "WO-P2", 10);
  gint64 s1 = st_db_product_seq_draw (f->db, "sensor-x", &error);
  gint64 s2 = st_db_product_seq_draw (other, "sensor-x", &error);
  g_assert_no_error (error);
  g_assert_cmpint (s1, ==, 1);
  g_assert_cmpint (s2, ==, 1);
  gint64 cert = 0;
  begin_reserve (f->db, a, "c1", s1, FALSE, &cert, &error);
  g_assert_no_error (error);
  g_assert_cmpint (cert, >, 0);
  begin_reserve (other, b, "c2", s2, FALSE, &cert, &error);
  g_assert_error (error, ST_ERROR, ST_ERROR_INTERNAL);
  g_assert_nonnull (strstr (error->message, "product serial collision: product serial SX-000001"));
  g_clear_error (&error);
  /* both go on after what is recorded; whoever records second draws again */
  s2 = st_db_product_seq_draw (other, "sensor-x", &error);
  s1 = st_db_product_seq_draw (f->db, "sensor-x", &error);
  g_assert_no_error (error);
  g_assert_cmpint (s2, ==, 2);
  g_assert_cmpint (s1, ==, 2);
  begin_reserve (other, b, "c3", s2, FALSE, &cert, &error);
  g_assert_no_error (error);
  begin_reserve (f->db, a, "c4", s1, FALSE, &cert, &error);
  g_assert_error (error, ST_ERROR, ST_ERROR_INTERNAL);
  g_clear_error (&error);
  s1 = st_db_product_seq_draw (f->db, "sensor-x", &error);
  g_assert_cmpint (s1, ==, 3);
  begin_reserve (f->db, a, "c4", s1, FALSE, &cert, &error);
  g_assert_no_error (error);
  /* a process far behind (it draws from memory) resyncs after a collision */
  for (guint i = 0; i < 3; i++)
    {
      s1 = st_db_product_seq_draw (f->db, "sensor-x", &error);
      g_autofree gchar *c = g_strdup_printf ("c%u", 5 + i);
      begin_reserve (f->db, a, c, s1, FALSE, &cert, &error);
      g_assert_no_error (error);
    }
  s2 = st_db_product_seq_draw (other, "sensor-x", &error);
  g_assert_cmpint (s2, ==, 3);
  begin_reserve (other, b, "c8", s2, FALSE, &cert, &error);
  g_assert_error (error, ST_ERROR, ST_ERROR_INTERNAL);
  g_clear_error (&error);
  g_assert_true (st_db_product_seq_resync (other, "sensor-x", &error));
  s2 = st_db_product_seq_draw (other, "sensor-x", &error);
  g_assert_cmpint (s2, ==, 7);
  begin_reserve (other, b, "c8", s2, FALSE, &cert, &error);
  g_assert_no_error (error);
  assert_check_ok (f->db);
}

/* The register refuses a product serial a unit of the product has, through
 * the API and in the schema itself; another product may use it. */
static void
test_product_serial_unique (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  gint64 a = make_batch (f->db, "WO-A", 10);
  gint64 b = make_batch (f->db, "WO-B", 10);
  gint64 first = full_cycle (f->db, a, "b1", 7);   /* SX-000007 */

  gint64 unit = st_db_unit_begin (f->db, b, "/dev/pts/1", "b2", NULL, NULL, "op-bob", &error);
  g_assert_no_error (error);
  g_autofree gchar *serial = random_serial ();
  g_autofree gchar *pk = random_pubkey_hash ();
  g_autoptr(GBytes) tbs = fake_der ("tbs", 8);
  gint64 head = audit_head (f->db, NULL);
  g_assert_cmpint (st_db_cert_reserve (f->db, unit, ISSUER, serial, pk, tbs, "SX-000007", 8, FALSE,
                                       &error), ==, 0);
  g_assert_error (error, ST_ERROR, ST_ERROR_INTERNAL);   /* a collision: the caller draws again */
  g_autofree gchar *expect = g_strdup_printf ("product serial collision: product serial SX-000007 of "
                                              "product sensor-x was already given to unit %"
                                              G_GINT64_FORMAT "; draw a new number", first);
  g_assert_nonnull (strstr (error->message, expect));
  g_clear_error (&error);
  g_assert_cmpint (audit_head (f->db, NULL), ==, head);
  g_autoptr(StDbUnit) u = st_db_unit_get (f->db, unit, &error);
  g_assert_cmpstr (u->state, ==, "started");
  g_assert_null (u->product_serial);

  /* the unique index itself, whatever the code does */
  g_autofree gchar *msg = NULL;
  g_autofree gchar *sql = g_strdup_printf ("INSERT INTO product_serials (product, serial, unit_id)"
                                           " VALUES ('sensor-x', 'SX-000007', %" G_GINT64_FORMAT ")", unit);
  g_assert_cmpint (raw_exec (f->path, sql, &msg), ==, SQLITE_CONSTRAINT);
  g_assert_nonnull (strstr (msg, "UNIQUE constraint failed: product_serials.product, product_serials.serial"));
  g_clear_pointer (&msg, g_free);
  g_assert_cmpint (raw_exec (f->path, "DELETE FROM product_serials", &msg), ==, SQLITE_CONSTRAINT);
  g_assert_nonnull (strstr (msg, "stays given"));

  /* the same text for another product is another serial */
  gint64 other = st_db_batch_create (f->db, "WO-O", "sensor-y", PROFILE_SHA, "name: sensor-y\n", 5,
                                     "station-1", "lead-anna", &error);
  g_assert_no_error (error);
  gint64 unit_o = st_db_unit_begin (f->db, other, "/dev/pts/1", "b3", NULL, NULL, "op-bob", &error);
  g_assert_cmpint (st_db_cert_reserve (f->db, unit_o, ISSUER, serial, pk, tbs, "SX-000007", 7, FALSE,
                                       &error), >, 0);
  g_assert_no_error (error);
  assert_check_ok (f->db);
}

/* A database from before schema 5 with serials given twice (two batches of
 * one product, the same month, each numbering from 1): it migrates, opens,
 * warns, and `db check` names the duplicates; they stay, and no new serial
 * repeats them. */
static void
test_migrate_v4_duplicate_serials (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_clear_pointer (&f->db, st_db_close);
  g_autofree gchar *old = make_db_at (f, "v4-dup.db", 4, "WO-4", 10);
  g_assert_cmpint (raw_exec (old,
      "INSERT INTO batches (work_order, product, profile_sha256, profile_text, quantity, created_at,"
      " created_by, station_id) VALUES ('WO-4b', 'p', '" PROFILE_SHA "', 't', 10, 1, 'x', 's');"
      "INSERT INTO units (id, batch_id, port, uid, product_serial, product_seq, state, started_at, operator)"
      " VALUES (1, 1, 'p', '01', 'EX-2612-000001', 1, 'failed', 1, 'x'),"
      " (2, 1, 'p', '02', 'EX-2612-000002', 2, 'failed', 1, 'x'),"
      " (3, 2, 'p', '03', 'EX-2612-000001', 1, 'failed', 1, 'x'),"
      " (4, 2, 'p', '04', NULL, NULL, 'failed', 1, 'x')",
      NULL), ==, SQLITE_OK);

  warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(StDb) db = st_db_open (old, &error);
  g_assert_no_error (error);
  g_assert_nonnull (db);
  g_assert_cmpuint (warnings->len, ==, 1);
  const char *w = g_ptr_array_index (warnings, 0);
  g_assert_true (g_str_has_prefix (w, "station-db: "));   /* db/'s log domain */
  g_assert_nonnull (strstr (w, "holds 1 product serial(s) given to more than one unit"));
  g_assert_nonnull (strstr (w, "product p serial EX-2612-000001 given to units 1, 3."));
  g_assert_cmpint (raw_int (old, "PRAGMA user_version"), ==, st_db_schema_version ());
  /* the first holder of each serial is registered, the later one is not */
  g_assert_cmpint (raw_int (old, "SELECT count(*) FROM product_serials"), ==, 2);
  g_assert_cmpint (raw_int (old, "SELECT unit_id FROM product_serials WHERE serial = 'EX-2612-000001'"), ==, 1);

  g_autoptr(GString) report = g_string_new (NULL);
  g_assert_false (st_db_check (db, report, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
  g_clear_error (&error);
  g_assert_nonnull (strstr (report->str, "product serials unique per product: FAILED: product p serial "
                                         "EX-2612-000001 given to units 1, 3\n"));
  g_assert_nonnull (strstr (report->str, "product sequences ahead of the numbers used: ok"));
  g_assert_nonnull (strstr (report->str, "unit and certificate states agree: ok"));

  /* the sequence goes on after the highest number used */
  g_assert_cmpint (st_db_product_seq_draw (db, "p", &error), ==, 3);
  g_assert_no_error (error);
  /* an old serial is not given again, whichever unit held it */
  gint64 unit = st_db_unit_begin (db, 2, "p", "05", NULL, NULL, "op", &error);
  g_assert_no_error (error);
  g_autofree gchar *serial = random_serial ();
  g_autofree gchar *pk = random_pubkey_hash ();
  g_autoptr(GBytes) tbs = fake_der ("tbs", 3);
  g_assert_cmpint (st_db_cert_reserve (db, unit, ISSUER, serial, pk, tbs, "EX-2612-000002", 3, FALSE,
                                       &error), ==, 0);
  g_assert_error (error, ST_ERROR, ST_ERROR_INTERNAL);
  g_clear_error (&error);
  g_assert_cmpint (st_db_cert_reserve (db, unit, ISSUER, serial, pk, tbs, "EX-2612-000003", 3, FALSE,
                                       &error), >, 0);
  g_assert_no_error (error);

  /* reopening migrates nothing and warns no more */
  g_clear_pointer (&db, st_db_close);
  db = st_db_open (old, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (warnings->len, ==, 1);
  g_clear_pointer (&warnings, g_ptr_array_unref);
}

/* ---------- disputed certificates (schema 6) ---------- */

/* A unit of @batch on uid @uid whose certificate is issued, then left
 * 'unconfirmed': failed at commit when @failed, else 'issued' after an
 * interruption. Returns the certificate id, the unit's in *@unit. */
static gint64
unconfirmed_unit (StDb *db, gint64 batch, const char *uid, gint64 seq, gboolean failed, gint64 *unit)
{
  g_autoptr(GError) error = NULL;
  gint64 cert = 0;
  *unit = begin_reserve (db, batch, uid, seq, FALSE, &cert, &error);
  g_assert_no_error (error);
  g_autoptr(GBytes) der = fake_der ("der", seq);
  g_assert_true (st_db_cert_issued (db, cert, der, &error));
  if (failed)
    g_assert_true (st_db_unit_fail (db, *unit, "commit", "no answer to COMMIT", NULL,
                                    ST_DB_CERT_UNCONFIRMED, &error));
  else
    g_assert_true (st_db_cert_set_state (db, cert, "unconfirmed", "interrupted", &error));
  g_assert_no_error (error);
  return cert;
}

/* The payload of the last audit entry, and its event and operator. */
static JsonObject *
last_audit (StDb *db, JsonParser *parser, gchar **event, gchar **who)
{
  g_autoptr(StDbAuditEntry) e = audit_entry (db, audit_head (db, NULL));
  *event = g_strdup (e->event);
  *who = g_strdup (e->operator_name);
  g_assert_true (json_parser_load_from_data (parser, e->payload, -1, NULL));
  return json_node_get_object (json_parser_get_root (parser));
}

/* An unconfirmed certificate is disputed, not voided; it stays live; a lead
 * keeps it (unconfirmed again, it can become active) or voids it; every
 * step is audited in its own transaction. */
static void
test_dispute (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  gint64 batch = make_batch (f->db, "WO-D", 10);

  /* a unit failed at commit: disputed, its failure kept */
  gint64 u1 = 0;
  gint64 c1 = unconfirmed_unit (f->db, batch, "d1", 1, TRUE, &u1);
  g_assert_true (st_db_cert_dispute (f->db, c1, "resume", "holds neither certificate nor key",
                                     "slot 1 empty", "/dev/pts/9", "op-bob", &error));
  g_assert_no_error (error);
  g_autoptr(StDbUnit) r1 = st_db_unit_get (f->db, u1, &error);
  g_assert_cmpstr (r1->cert_state, ==, "disputed");
  g_assert_cmpstr (r1->dispute_reason, ==, "holds neither certificate nor key");
  g_assert_cmpstr (r1->state, ==, "failed");
  g_assert_cmpstr (r1->fail_step, ==, "commit");
  g_assert_null (r1->void_reason == NULL ? NULL : strstr (r1->void_reason, "voided"));
  {
    g_autoptr(JsonParser) p = json_parser_new ();
    g_autofree gchar *event = NULL, *who = NULL;
    JsonObject *o = last_audit (f->db, p, &event, &who);
    g_assert_cmpstr (event, ==, "cert-dispute");
    g_assert_cmpstr (who, ==, "op-bob");
    g_assert_cmpint (json_object_get_int_member (o, "cert"), ==, c1);
    g_assert_cmpint (json_object_get_int_member (o, "unit"), ==, u1);
    g_assert_cmpstr (json_object_get_string_member (o, "uid"), ==, "d1");
    g_assert_cmpstr (json_object_get_string_member (o, "from"), ==, "unconfirmed");
    g_assert_cmpstr (json_object_get_string_member (o, "port"), ==, "/dev/pts/9");
  }
  /* still live: the uid keeps it, the batch counts it */
  g_autoptr(StDbUnit) live = st_db_unit_find_live_by_uid (f->db, "d1", &error);
  g_assert_no_error (error);
  g_assert_cmpint (live->id, ==, u1);
  g_autoptr(StDbBatch) b = st_db_batch_get (f->db, batch, &error);
  g_assert_cmpint (b->n_disputed, ==, 1);
  g_assert_cmpint (b->n_unconfirmed, ==, 0);
  g_assert_cmpint (b->n_live_certs, ==, 1);
  /* not re-provisioned over, not disputed twice, never made active directly */
  gint64 c_other = 0;
  g_assert_cmpint (begin_reserve (f->db, batch, "d1", 2, TRUE, &c_other, &error), >, 0);
  g_assert_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED);
  g_assert_nonnull (strstr (error->message, "disputed"));
  g_assert_cmpint (c_other, ==, 0);
  g_clear_error (&error);
  g_assert_false (st_db_cert_dispute (f->db, c1, "resume", "again", NULL, NULL, "op-bob", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_assert_false (st_db_cert_set_state (f->db, c1, "active", NULL, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  /* the batch waits for the decision */
  g_assert_false (st_db_batch_close (f->db, batch, "lead-anna", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_BUSY);
  g_assert_nonnull (strstr (error->message, "1 disputed unit"));
  g_clear_error (&error);
  assert_check_ok (f->db);

  /* keep: unconfirmed again, and its device can finish it */
  g_assert_true (st_db_cert_resolve_dispute (f->db, c1, ST_DB_DISPUTE_KEEP, "lead-anna", &error));
  g_assert_no_error (error);
  {
    g_autoptr(JsonParser) p = json_parser_new ();
    g_autofree gchar *event = NULL, *who = NULL;
    JsonObject *o = last_audit (f->db, p, &event, &who);
    g_assert_cmpstr (event, ==, "unit-resolve");
    g_assert_cmpstr (who, ==, "lead-anna");
    g_assert_cmpstr (json_object_get_string_member (o, "decision"), ==, "keep");
    g_assert_cmpstr (json_object_get_string_member (o, "from"), ==, "disputed");
    g_assert_cmpstr (json_object_get_string_member (o, "to"), ==, "unconfirmed");
    g_assert_cmpint (json_object_get_int_member (o, "unit"), ==, u1);
  }
  g_assert_false (st_db_cert_resolve_dispute (f->db, c1, ST_DB_DISPUTE_VOID, "lead-anna", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "not disputed"));
  g_clear_error (&error);
  g_assert_true (st_db_cert_set_state (f->db, c1, "active", NULL, &error));
  g_assert_no_error (error);
  g_autoptr(StDbUnit) r1b = st_db_unit_get (f->db, u1, &error);
  g_assert_cmpstr (r1b->state, ==, "done");

  /* a unit left 'issued' by an interruption: disputed, it fails at the step */
  gint64 u2 = 0;
  gint64 c2 = unconfirmed_unit (f->db, batch, "d2", 3, FALSE, &u2);
  g_assert_true (st_db_cert_dispute (f->db, c2, "proof-of-possession", "cannot prove the key", NULL,
                                     "/dev/pts/9", "op-bob", &error));
  g_assert_no_error (error);
  g_autoptr(StDbUnit) r2 = st_db_unit_get (f->db, u2, &error);
  g_assert_cmpstr (r2->state, ==, "failed");
  g_assert_cmpstr (r2->fail_step, ==, "proof-of-possession");
  g_assert_cmpstr (r2->cert_state, ==, "disputed");
  /* found by uid, product serial or certificate serial, whatever the case */
  g_autoptr(GPtrArray) by_uid = st_db_unit_find_by_name (f->db, "D2", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (by_uid->len, ==, 1);
  g_autoptr(GPtrArray) by_ps = st_db_unit_find_by_name (f->db, "SX-000003", &error);
  g_assert_cmpuint (by_ps->len, ==, 1);
  g_autofree gchar *upper = g_ascii_strup (r2->cert_serial, -1);
  g_autoptr(GPtrArray) by_serial = st_db_unit_find_by_name (f->db, upper, &error);
  g_assert_cmpuint (by_serial->len, ==, 1);
  g_assert_cmpint (((StDbUnit *) g_ptr_array_index (by_serial, 0))->id, ==, u2);
  g_autoptr(GPtrArray) none = st_db_unit_find_by_name (f->db, "SX-999999", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (none->len, ==, 0);

  /* void: the uid is free for a new unit; the reason names the lead */
  g_assert_true (st_db_cert_resolve_dispute (f->db, c2, ST_DB_DISPUTE_VOID, "lead-anna", &error));
  g_assert_no_error (error);
  g_autoptr(StDbUnit) r2b = st_db_unit_get (f->db, u2, &error);
  g_assert_cmpstr (r2b->cert_state, ==, "voided");
  g_assert_nonnull (strstr (r2b->void_reason, "voided by lead-anna deciding the dispute over uid d2"));
  g_assert_nonnull (strstr (r2b->void_reason, "cannot prove the key"));
  g_assert_null (st_db_unit_find_live_by_uid (f->db, "d2", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_FOUND);
  g_clear_error (&error);
  gint64 c3 = 0;
  g_assert_cmpint (begin_reserve (f->db, batch, "d2", 4, FALSE, &c3, &error), >, 0);
  g_assert_no_error (error);
  g_assert_cmpint (c3, >, 0);
  /* a certificate that is not unconfirmed cannot be disputed */
  g_assert_false (st_db_cert_dispute (f->db, c3, "resume", "x", NULL, NULL, "op-bob", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_assert_false (st_db_cert_resolve_dispute (f->db, c3, (StDbDisputeDecision) 7, "lead-anna", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_assert_true (st_db_batch_close (f->db, batch, "lead-anna", &error) == FALSE);   /* c3 still issuing */
  g_clear_error (&error);
  assert_check_ok (f->db);

  /* `db check` notices a disputed certificate whose unit is not failed */
  g_assert_cmpint (raw_exec (f->path, "UPDATE units SET state = 'issued' WHERE id = 1;", NULL), ==, SQLITE_OK);
  g_autofree gchar *msg = NULL;
  g_assert_cmpint (raw_exec (f->path, "UPDATE certificates SET state = 'unconfirmed' WHERE id = 1;"
                             "UPDATE certificates SET state = 'disputed', dispute_reason = 'x', disputed_at = 1"
                             " WHERE id = 1", &msg), ==, SQLITE_OK);
  g_autoptr(GString) report = g_string_new (NULL);
  g_assert_false (st_db_check (f->db, report, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
  g_assert_nonnull (strstr (report->str, "unit and certificate states agree: FAILED"));
}

/* Schema 6 makes the certificates table anew: a v5 database keeps every
 * certificate, its live counts and the old moves, and gains the dispute
 * moves (unconfirmed -> disputed -> unconfirmed | voided) and no other. */
static void
test_migrate_v5_disputed (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_clear_pointer (&f->db, st_db_close);
  g_autofree gchar *v5 = make_db_at (f, "v5.db", 5, "WO-5", 100);
  g_autofree gchar *moves_v5 = state_moves (v5, 1000);
  g_autofree gchar *v6 = make_db_at (f, "v6.db", 5, "WO-5", 100);
  g_autofree gchar *before = state_moves (v6, 1000);
  g_assert_cmpint (raw_exec (v6,
      "INSERT INTO units (id, batch_id, port, uid, state, started_at, operator) VALUES"
      " (5000, 1, 'p', 'cafe', 'failed', 1, 'x');"
      "INSERT INTO certificates (unit_id, batch_id, uid, issuer, serial, pubkey_sha256, tbs, der, state,"
      " reserved_at, issued_at, void_reason) VALUES (5000, 1, 'cafe', '" PROFILE_SHA "', 'cafe', '" HEX64_3 "',"
      " x'30', x'3031', 'unconfirmed', 7, 8, 'no answer')", NULL), ==, SQLITE_OK);
  gint64 n_before = raw_int (v6, "SELECT count(*) FROM certificates");
  gint64 live_before = raw_int (v6, "SELECT live_certs FROM batches WHERE id = 1");
  g_autoptr(StDb) db = st_db_open (v6, &error);
  g_assert_no_error (error);
  g_assert_cmpint (raw_int (v6, "PRAGMA user_version"), ==, st_db_schema_version ());
  g_assert_cmpint (raw_int (v6, "SELECT count(*) FROM certificates"), ==, n_before);
  g_assert_cmpint (raw_int (v6, "SELECT live_certs FROM batches WHERE id = 1"), ==, live_before);
  g_assert_cmpint (raw_int (v6, "SELECT issued_at + reserved_at FROM certificates WHERE uid = 'cafe'"), ==, 15);
  g_assert_cmpint (raw_int (v6, "SELECT count(*) FROM sqlite_schema WHERE tbl_name = 'certificates'"
                                " AND type IN ('index','trigger') AND sql IS NOT NULL"), ==,
                   8 + 2 /* schema 9: certificates_count_insert, certificates_count_update */);
  g_assert_cmpint (raw_int (v6, "SELECT count(*) FROM pragma_foreign_key_check"), ==, 0);
  g_clear_pointer (&db, st_db_close);
  g_autofree gchar *moves_v6 = state_moves (v6, 2000);
  g_assert_cmpstr (before, ==, moves_v5);
  g_assert_cmpstr (moves_v6, ==, moves_v5);

  /* the moves to and from 'disputed' */
  static const char *const states[] = { "issuing", "issued", "active", "voided", "unconfirmed" };
  for (guint i = 0; i < G_N_ELEMENTS (states); i++)
    {
      g_autofree gchar *sql = g_strdup_printf (
          "INSERT INTO units (id, batch_id, port, uid, state, started_at, operator)"
          " VALUES (%u, 1, 'p', 'd%03u', 'failed', 1, 'x');"
          "INSERT INTO certificates (unit_id, batch_id, uid, issuer, serial, pubkey_sha256, tbs, der,"
          " state, reserved_at) VALUES (%u, 1, 'd%03u', '%064d', 'd%03u', '%064x', x'30', x'30', '%s', 1);"
          "UPDATE certificates SET state = 'disputed', dispute_reason = 'r', disputed_at = 1 WHERE unit_id = %u",
          3000 + i, i, 3000 + i, i, 0, i, 3000 + i, states[i], 3000 + i);
      g_assert_cmpint (raw_exec (v6, sql, NULL), ==,
                       g_strcmp0 (states[i], "unconfirmed") == 0 ? SQLITE_OK : SQLITE_CONSTRAINT);
    }
  for (guint i = 0; i < G_N_ELEMENTS (states); i++)
    {
      g_autofree gchar *sql = g_strdup_printf (
          "INSERT INTO units (id, batch_id, port, uid, state, started_at, operator)"
          " VALUES (%u, 1, 'p', 'e%03u', 'failed', 1, 'x');"
          "INSERT INTO certificates (unit_id, batch_id, uid, issuer, serial, pubkey_sha256, tbs, der,"
          " state, reserved_at, dispute_reason, disputed_at) VALUES (%u, 1, 'e%03u', '%064d', 'e%03u',"
          " '%064x', x'30', x'30', 'disputed', 1, 'r', 1);"
          "UPDATE certificates SET state = '%s' WHERE unit_id = %u",
          4000 + i, i, 4000 + i, i, 0, i, 0x4000 + i, states[i], 4000 + i);
      gboolean allowed = g_strcmp0 (states[i], "unconfirmed") == 0 || g_strcmp0 (states[i], "voided") == 0;
      g_assert_cmpint (raw_exec (v6, sql, NULL), ==, allowed ? SQLITE_OK : SQLITE_CONSTRAINT);
    }
  /* a dispute says why and when */
  g_autofree gchar *msg = NULL;
  g_assert_cmpint (raw_exec (v6, "UPDATE certificates SET state = 'unconfirmed' WHERE uid = 'e000';"
                             "UPDATE certificates SET state = 'disputed' WHERE uid = 'cafe'", &msg), ==,
                   SQLITE_CONSTRAINT);
  /* the live count follows */
  g_assert_cmpint (raw_int (v6, "SELECT live_certs FROM batches WHERE id = 1"), ==,
                   raw_int (v6, "SELECT count(*) FROM certificates WHERE state <> 'voided'"));
}


/* A lead revokes an active certificate: 'revoked' with reason, time and
 * lead, audited; not live any more (the uid gets a new certificate, the
 * batch's live count drops); a second revocation and a certificate that
 * is not active are refused; the CRL lists it with its reason, beside the
 * voided certificates that were signed and without the one voided while
 * issuing. The log explains it all. */
static void
test_revoke (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  gint64 batch = make_batch (f->db, "WO-R", 10);
  gint64 u1 = full_cycle (f->db, batch, "a1", 1);
  full_cycle (f->db, batch, "a2", 2);
  g_autoptr(StDbUnit) r1 = st_db_unit_get (f->db, u1, &error);
  g_assert_no_error (error);
  /* one voided while issuing (never signed), one voided after signing */
  gint64 c3 = 0, c4 = 0;
  begin_reserve (f->db, batch, "a3", 3, FALSE, &c3, &error);
  g_assert_no_error (error);
  g_assert_true (st_db_cert_set_state (f->db, c3, "voided", "crashed before signing", &error));
  g_assert_no_error (error);
  begin_reserve (f->db, batch, "a4", 4, FALSE, &c4, &error);
  g_assert_no_error (error);
  g_autoptr(GBytes) der4 = fake_der ("der", 4);
  g_assert_true (st_db_cert_issued (f->db, c4, der4, &error));
  g_assert_no_error (error);
  g_assert_true (st_db_cert_set_state (f->db, c4, "voided", "commit refused", &error));
  g_assert_no_error (error);

  g_assert_true (st_db_cert_revoke (f->db, r1->cert_id, "keyCompromise", "lead-anna", &error));
  g_assert_no_error (error);
  {
    g_autoptr(JsonParser) p = json_parser_new ();
    g_autofree gchar *event = NULL, *who = NULL;
    JsonObject *o = last_audit (f->db, p, &event, &who);
    g_assert_cmpstr (event, ==, "unit-revoke");
    g_assert_cmpstr (who, ==, "lead-anna");
    g_assert_cmpint (json_object_get_int_member (o, "cert"), ==, r1->cert_id);
    g_assert_cmpstr (json_object_get_string_member (o, "cert_serial"), ==, r1->cert_serial);
    g_assert_cmpstr (json_object_get_string_member (o, "reason"), ==, "keyCompromise");
  }
  g_autoptr(StDbUnit) after = st_db_unit_get (f->db, u1, &error);
  g_assert_cmpstr (after->cert_state, ==, "revoked");
  g_assert_cmpstr (after->state, ==, "done");
  /* twice, or a certificate that is not active: refused, saying why */
  g_assert_false (st_db_cert_revoke (f->db, r1->cert_id, "unspecified", "lead-anna", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "already revoked: by lead-anna at "));
  g_clear_error (&error);
  g_assert_false (st_db_cert_revoke (f->db, c4, "unspecified", "lead-anna", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "is 'voided', not active"));
  g_clear_error (&error);
  /* a revoked certificate is not live: nothing is voided, the uid is free */
  g_autoptr(StDbBatch) b = st_db_batch_get (f->db, batch, &error);
  g_assert_cmpint (b->n_live_certs, ==, 1);
  gint64 c5 = 0;
  g_assert_cmpint (begin_reserve (f->db, batch, "a1", 5, FALSE, &c5, &error), >, 0);
  g_assert_no_error (error);
  g_assert_cmpint (c5, >, 0);
  g_autoptr(StDbUnit) still = st_db_unit_get (f->db, u1, &error);
  g_assert_cmpstr (still->cert_state, ==, "revoked");
  /* the CRL's entries: the revoked one with its reason, the signed voided one */
  g_autoptr(GPtrArray) entries = st_db_crl_entries (f->db, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (entries->len, ==, 2);
  const StDbCrlEntry *e0 = g_ptr_array_index (entries, 0), *e1 = g_ptr_array_index (entries, 1);
  g_assert_cmpstr (e0->serial, ==, r1->cert_serial);
  g_assert_cmpstr (e0->state, ==, "revoked");
  g_assert_cmpstr (e0->reason, ==, "keyCompromise");
  g_assert_cmpint (e0->when, >, 0);
  g_assert_cmpstr (e1->state, ==, "voided");
  g_assert_null (e1->reason);
  /* the schema holds the moves: revoked goes nowhere, nothing but active comes in */
  g_autofree gchar *msg = NULL;
  g_assert_cmpint (raw_exec (f->path, "UPDATE certificates SET state = 'active' WHERE state = 'revoked'", &msg),
                   ==, SQLITE_CONSTRAINT);
  g_clear_pointer (&msg, g_free);
  g_assert_cmpint (raw_exec (f->path, "UPDATE certificates SET state = 'revoked', revoke_reason = 'x',"
                             " revoked_at = 1, revoked_by = 'x' WHERE state = 'voided'", &msg), ==, SQLITE_CONSTRAINT);
  g_clear_pointer (&msg, g_free);
  g_assert_cmpint (raw_exec (f->path, "UPDATE certificates SET state = 'revoked' WHERE state = 'active'", &msg),
                   ==, SQLITE_CONSTRAINT);   /* without a reason */
  assert_check_ok (f->db);
  guint n = 0;
  g_autofree gchar *report = replay_report (f->db, &n);
  g_assert_cmpuint (n, ==, 0);
}

/* CRL numbers only grow: one taken and never completed (the HSM failed) is
 * not given again; a number is completed once; the rows cannot be changed
 * or deleted; the log explains them, and names one added behind its back. */
static void
test_crl_numbers (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  gint64 n1 = 0, n2 = 0, n3 = 0, last = -1;
  g_assert_true (st_db_crl_last_number (f->db, &last, &error));
  g_assert_cmpint (last, ==, 0);
  g_assert_true (st_db_crl_reserve (f->db, 100, 200, "lead-anna", &n1, &error));
  g_assert_no_error (error);
  g_assert_cmpint (n1, ==, 1);
  g_assert_true (st_db_crl_complete (f->db, n1, 0, HEX64_3, "lead-anna", &error));
  g_assert_no_error (error);
  /* taken, then the signature failed: no completion */
  g_assert_true (st_db_crl_reserve (f->db, 300, 400, "lead-anna", &n2, &error));
  g_assert_cmpint (n2, ==, 2);
  g_assert_true (st_db_crl_reserve (f->db, 500, 600, "admin", &n3, &error));
  g_assert_no_error (error);
  g_assert_cmpint (n3, ==, 3);
  g_assert_true (st_db_crl_complete (f->db, n3, 4, HEX64_3, "admin", &error));
  g_assert_no_error (error);
  g_assert_false (st_db_crl_complete (f->db, n3, 4, HEX64_3, "admin", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "completed already"));
  g_clear_error (&error);
  g_assert_false (st_db_crl_complete (f->db, 9, 4, HEX64_3, "admin", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_assert_false (st_db_crl_reserve (f->db, 700, 700, "admin", &n3, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_assert_true (st_db_crl_last_number (f->db, &last, &error));
  g_assert_cmpint (last, ==, 3);
  {
    g_autoptr(JsonParser) p = json_parser_new ();
    g_autofree gchar *event = NULL, *who = NULL;
    JsonObject *o = last_audit (f->db, p, &event, &who);
    g_assert_cmpstr (event, ==, "crl-issue");
    g_assert_cmpint (json_object_get_int_member (o, "crl_number"), ==, 3);
    g_assert_cmpint (json_object_get_int_member (o, "entries"), ==, 4);
    g_assert_cmpstr (json_object_get_string_member (o, "sha256"), ==, HEX64_3);
  }
  g_autofree gchar *msg = NULL;
  g_assert_cmpint (raw_exec (f->path, "DELETE FROM crls WHERE number = 2", &msg), ==, SQLITE_CONSTRAINT);
  g_clear_pointer (&msg, g_free);
  g_assert_cmpint (raw_exec (f->path, "UPDATE crls SET der_sha256 = '" PROFILE_SHA "' WHERE number = 1", &msg),
                   ==, SQLITE_CONSTRAINT);
  g_clear_pointer (&msg, g_free);
  guint n = 0;
  g_autofree gchar *ok = replay_report (f->db, &n);
  g_assert_cmpuint (n, ==, 0);
  g_assert_nonnull (strstr (ok, ", 3 CRL number(s))"));
  /* completing the abandoned number behind the station's back, and a row added */
  g_assert_cmpint (raw_exec (f->path, "UPDATE crls SET entries = 0, der_sha256 = '" PROFILE_SHA "' WHERE number = 2;"
                             "INSERT INTO crls (number, this_update, next_update, issued_by) VALUES (7, 1, 2, 'x')",
                             &msg), ==, SQLITE_OK);
  g_autofree gchar *bad = replay_report (f->db, &n);
  g_assert_cmpuint (n, ==, 2);
  g_assert_nonnull (strstr (bad, "records: FAILED: CRL number 2: its SHA-256 or count of entries is not the one the log recorded"));
  g_assert_nonnull (strstr (bad, "records: FAILED: CRL number 7 is not in the log"));
}

/* Schema 8 keeps every certificate of schema 7, its live count and the
 * old moves, and adds revoked (from active only, with why, when, who). */
static void
test_migrate_v7_revoked (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_clear_pointer (&f->db, st_db_close);
  g_autofree gchar *v7 = make_db_at (f, "v7.db", 7, "WO-7", 100);
  g_autofree gchar *moves_v7 = state_moves (v7, 1000);
  g_autofree gchar *v8 = make_db_at (f, "v8.db", 7, "WO-7", 100);
  g_assert_cmpint (raw_exec (v8,
      "INSERT INTO units (id, batch_id, port, uid, state, started_at, operator) VALUES"
      " (5000, 1, 'p', 'cafe', 'failed', 1, 'x');"
      "INSERT INTO certificates (unit_id, batch_id, uid, issuer, serial, pubkey_sha256, tbs, der, state,"
      " reserved_at, issued_at, dispute_reason, disputed_at) VALUES (5000, 1, 'cafe', '" PROFILE_SHA "', 'cafe',"
      " '" HEX64_3 "', x'30', x'3031', 'disputed', 7, 8, 'clone?', 9)", NULL), ==, SQLITE_OK);
  g_autofree gchar *before = state_moves (v8, 1000);
  gint64 n_before = raw_int (v8, "SELECT count(*) FROM certificates");
  gint64 live_before = raw_int (v8, "SELECT live_certs FROM batches WHERE id = 1");
  g_autoptr(StDb) db = st_db_open (v8, &error);
  g_assert_no_error (error);
  g_assert_cmpint (raw_int (v8, "PRAGMA user_version"), ==, st_db_schema_version ());
  g_assert_cmpint (raw_int (v8, "SELECT count(*) FROM certificates"), ==, n_before);
  g_assert_cmpint (raw_int (v8, "SELECT live_certs FROM batches WHERE id = 1"), ==, live_before);
  g_assert_cmpint (raw_int (v8, "SELECT disputed_at + issued_at FROM certificates WHERE uid = 'cafe'"), ==, 17);
  g_assert_cmpint (raw_int (v8, "SELECT count(*) FROM pragma_foreign_key_check"), ==, 0);
  g_clear_pointer (&db, st_db_close);
  g_autofree gchar *moves_v8 = state_moves (v8, 2000);
  g_assert_cmpstr (before, ==, moves_v7);
  g_assert_cmpstr (moves_v8, ==, moves_v7);
  /* into 'revoked': from active only, with a reason, a time and a lead */
  static const char *const states[] = { "issuing", "issued", "active", "voided", "unconfirmed", "disputed" };
  for (guint i = 0; i < G_N_ELEMENTS (states); i++)
    {
      g_autofree gchar *sql = g_strdup_printf (
          "INSERT INTO units (id, batch_id, port, uid, state, started_at, operator)"
          " VALUES (%u, 1, 'p', 'f%03u', 'done', 1, 'x');"
          "INSERT INTO certificates (unit_id, batch_id, uid, issuer, serial, pubkey_sha256, tbs, der,"
          " state, reserved_at, dispute_reason, disputed_at) VALUES (%u, 1, 'f%03u', '%064d', 'f%03u',"
          " '%064x', x'30', x'30', '%s', 1, 'r', 1);"
          "UPDATE certificates SET state = 'revoked', revoke_reason = 'superseded', revoked_at = 2,"
          " revoked_by = 'lead' WHERE unit_id = %u",
          6000 + i, i, 6000 + i, i, 0, i, 0x6000 + i, states[i], 6000 + i);
      g_assert_cmpint (raw_exec (v8, sql, NULL), ==,
                       g_strcmp0 (states[i], "active") == 0 ? SQLITE_OK : SQLITE_CONSTRAINT);
    }
  /* the live count follows: a revoked certificate is not live */
  g_assert_cmpint (raw_int (v8, "SELECT live_certs FROM batches WHERE id = 1"), ==,
                   raw_int (v8, "SELECT count(*) FROM certificates WHERE state NOT IN ('voided','revoked')"));
  g_assert_cmpint (raw_int (v8, "SELECT count(*) FROM certificates WHERE state = 'revoked'"), ==, 1);
}

/* ---------- schema 9: the batches' counts ---------- */

static const char *const unit_states_v9[] = { "started", "issuing", "issued", "done", "failed" };
static const char *const cert_states_v9[] = { "issuing", "issued", "active", "voided", "unconfirmed",
                                              "disputed", "revoked" };

/* Every count of every batch against a COUNT(*) of its rows, and what
 * st_db_batch_get and st_db_batch_list give against the same rows. */
static void
assert_counts (const char *path, StDb *db)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) list = st_db_batch_list (db, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (list->len, ==, raw_int (path, "SELECT count(*) FROM batches"));
  for (guint i = 0; i < list->len; i++)
    {
      StDbBatch *l = g_ptr_array_index (list, i);
      g_autoptr(StDbBatch) b = st_db_batch_get (db, l->id, &error);
      g_assert_no_error (error);
      for (guint k = 0; k < G_N_ELEMENTS (unit_states_v9); k++)
        {
          g_autofree gchar *kept = g_strdup_printf ("SELECT units_%s FROM batches WHERE id = %" G_GINT64_FORMAT,
                                                    unit_states_v9[k], b->id);
          g_autofree gchar *rows = g_strdup_printf ("SELECT count(*) FROM units WHERE batch_id = %" G_GINT64_FORMAT
                                                    " AND state = '%s'", b->id, unit_states_v9[k]);
          g_assert_cmpint (raw_int (path, kept), ==, raw_int (path, rows));
        }
      for (guint k = 0; k < G_N_ELEMENTS (cert_states_v9); k++)
        {
          g_autofree gchar *kept = g_strdup_printf ("SELECT certs_%s FROM batches WHERE id = %" G_GINT64_FORMAT,
                                                    cert_states_v9[k], b->id);
          g_autofree gchar *rows = g_strdup_printf ("SELECT count(*) FROM certificates WHERE batch_id = %"
                                                    G_GINT64_FORMAT " AND state = '%s'", b->id, cert_states_v9[k]);
          g_assert_cmpint (raw_int (path, kept), ==, raw_int (path, rows));
        }
#define ST_SCAN(what, cond) \
      ({ g_autofree gchar *q_ = g_strdup_printf ("SELECT count(*) FROM " what " WHERE batch_id = %" \
                                                 G_GINT64_FORMAT cond, b->id); raw_int (path, q_); })
      g_assert_cmpint (b->n_units, ==, ST_SCAN ("units", ""));
      g_assert_cmpint (b->n_done, ==, ST_SCAN ("units", " AND state = 'done'"));
      g_assert_cmpint (b->n_failed, ==, ST_SCAN ("units", " AND state = 'failed'"));
      g_assert_cmpint (b->n_live_certs, ==, ST_SCAN ("certificates", " AND state NOT IN ('voided','revoked')"));
      g_assert_cmpint (b->n_voided, ==, ST_SCAN ("certificates", " AND state = 'voided'"));
      g_assert_cmpint (b->n_unconfirmed, ==, ST_SCAN ("certificates", " AND state = 'unconfirmed'"));
      g_assert_cmpint (b->n_disputed, ==, ST_SCAN ("certificates", " AND state = 'disputed'"));
      g_assert_cmpint (b->n_revoked, ==, ST_SCAN ("certificates", " AND state = 'revoked'"));
#undef ST_SCAN
      g_assert_cmpint (l->n_units, ==, b->n_units);
      g_assert_cmpint (l->n_done, ==, b->n_done);
      g_assert_cmpint (l->n_failed, ==, b->n_failed);
      g_assert_cmpint (l->n_voided, ==, b->n_voided);
      g_assert_cmpint (l->n_unconfirmed, ==, b->n_unconfirmed);
      g_assert_cmpint (l->n_disputed, ==, b->n_disputed);
      g_assert_cmpint (l->n_revoked, ==, b->n_revoked);
      /* the pages of the batch's units are its units, in id order, once each */
      gint64 after = 0, n = 0, last = 0;
      for (;;)
        {
          g_autoptr(GPtrArray) page = st_db_unit_list_page (db, b->id, after, 3, &error);
          g_assert_no_error (error);
          for (guint j = 0; j < page->len; j++)
            {
              StDbUnit *u = g_ptr_array_index (page, j);
              g_assert_cmpint (u->batch_id, ==, b->id);
              g_assert_cmpint (u->id, >, last);
              last = u->id;
              n++;
            }
          if (page->len < 3)
            break;
          after = last;
        }
      g_assert_cmpint (n, ==, b->n_units);
    }
}

/* The counts follow every state change the pipeline and the leads make:
 * issue, fail (voided and unconfirmed), dispute, resolve (keep, void),
 * recovery, revoke, reprovision; after each, every count of two batches
 * equals a count of the rows. */
static void
test_batch_counts (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  gint64 b1 = make_batch (f->db, "WO-C1", 50);
  gint64 b2 = make_batch (f->db, "WO-C2", 50);
  assert_counts (f->path, f->db);
  gint64 done[6];
  for (int i = 0; i < 6; i++)
    {
      g_autofree gchar *uid = g_strdup_printf ("c0%02d", i);
      done[i] = full_cycle (f->db, i % 2 ? b2 : b1, uid, 100 + i);
      assert_counts (f->path, f->db);
    }
  /* started, issuing, issued */
  gint64 started = st_db_unit_begin (f->db, b1, "p", "c100", "m", "1", "op", &error);
  g_assert_no_error (error);
  assert_counts (f->path, f->db);
  gint64 cert = 0;
  gint64 issuing = begin_reserve (f->db, b1, "c101", 201, FALSE, &cert, &error);
  g_assert_no_error (error);
  assert_counts (f->path, f->db);
  g_autoptr(GBytes) der = fake_der ("der", 201);
  g_assert_true (st_db_cert_issued (f->db, cert, der, &error));
  assert_counts (f->path, f->db);
  /* fail: voided */
  g_assert_true (st_db_unit_fail (f->db, issuing, "commit", "no answer", NULL, ST_DB_CERT_VOID, &error));
  g_assert_no_error (error);
  assert_counts (f->path, f->db);
  g_assert_true (st_db_unit_fail (f->db, started, "hello", "no answer", NULL, ST_DB_CERT_VOID, &error));
  assert_counts (f->path, f->db);
  /* unconfirmed, disputed, resolved both ways */
  gint64 unit = 0;
  gint64 c1 = unconfirmed_unit (f->db, b2, "c200", 300, TRUE, &unit);
  assert_counts (f->path, f->db);
  g_assert_true (st_db_cert_dispute (f->db, c1, "hello", "clone?", NULL, "p", "op", &error));
  g_assert_no_error (error);
  assert_counts (f->path, f->db);
  g_assert_true (st_db_cert_resolve_dispute (f->db, c1, ST_DB_DISPUTE_KEEP, "lead", &error));
  assert_counts (f->path, f->db);
  g_assert_true (st_db_cert_dispute (f->db, c1, "hello", "clone again?", NULL, "p", "op", &error));
  g_assert_true (st_db_cert_resolve_dispute (f->db, c1, ST_DB_DISPUTE_VOID, "lead", &error));
  g_assert_no_error (error);
  assert_counts (f->path, f->db);
  /* recovery: unconfirmed -> active */
  gint64 c2 = unconfirmed_unit (f->db, b1, "c201", 301, FALSE, &unit);
  assert_counts (f->path, f->db);
  g_assert_true (st_db_cert_set_state (f->db, c2, "active", "seen again", &error));
  g_assert_no_error (error);
  assert_counts (f->path, f->db);
  /* revoke */
  g_autoptr(StDbUnit) u0 = st_db_unit_get (f->db, done[0], &error);
  g_assert_no_error (error);
  g_assert_true (st_db_cert_revoke (f->db, u0->cert_id, "keyCompromise", "lead", &error));
  g_assert_no_error (error);
  assert_counts (f->path, f->db);
  /* reprovision: the old certificate voided in its batch, the new one in the other */
  gint64 c3 = 0;
  begin_reserve (f->db, b1, "c003", 400, TRUE, &c3, &error);
  g_assert_no_error (error);
  assert_counts (f->path, f->db);
  /* a refusal recorded as a failed unit without a certificate */
  StDbUnitNew refused = { b2, "p", "c300", "m", "1", "op" };
  g_assert_cmpint (st_db_unit_add_failed (f->db, &refused, "hello", "refused", NULL, &error), >, 0);
  g_assert_no_error (error);
  assert_counts (f->path, f->db);
  assert_check_ok (f->db);
  /* a count changed behind the station's back: db check names it */
  g_clear_pointer (&f->db, st_db_close);
  g_assert_cmpint (raw_exec (f->path, "UPDATE batches SET units_done = units_done + 1 WHERE id = 1", NULL),
                   ==, SQLITE_OK);
  f->db = st_db_open (f->path, &error);
  g_assert_no_error (error);
  g_autoptr(GString) report = g_string_new (NULL);
  g_assert_false (st_db_check (f->db, report, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
  g_assert_nonnull (strstr (report->str, "batch counts agree with the units and certificates: FAILED: 1 units_done"));
}

/* Schema 9 counts the units and certificates of a schema 8 database per
 * batch and state on opening, and its triggers keep the counts through
 * every later change, including moves the station never makes (a unit
 * deleted, a unit moved to another batch). */
static void
test_migrate_v8_counts (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_clear_pointer (&f->db, st_db_close);
  g_autofree gchar *v8 = make_db_at (f, "v8-counts.db", 8, "WO-8", 100);
  g_assert_cmpint (raw_exec (v8,
      "INSERT INTO batches (work_order, product, profile_sha256, profile_text, quantity, created_at,"
      " created_by, station_id) VALUES ('WO-8b', 'p', '" PROFILE_SHA "', 't', 10, 1, 'x', 's')", NULL), ==, SQLITE_OK);
  /* one unit per (unit state, certificate state) the schema allows, in both batches */
  gint id = 1;
  for (guint b = 1; b <= 2; b++)
    for (guint us = 0; us < G_N_ELEMENTS (unit_states_v9); us++)
      for (guint cs = 0; cs <= G_N_ELEMENTS (cert_states_v9); cs++, id++)
        {
          g_autofree gchar *sql = g_strdup_printf (
              "INSERT INTO units (id, batch_id, port, uid, state, started_at, operator)"
              " VALUES (%d, %u, 'p', '%04x', '%s', 1, 'x')", id, b, id, unit_states_v9[us]);
          g_assert_cmpint (raw_exec (v8, sql, NULL), ==, SQLITE_OK);
          if (cs == G_N_ELEMENTS (cert_states_v9))
            continue;   /* a unit without a certificate */
          const char *st = cert_states_v9[cs];
          /* one live certificate per uid: each has its own uid */
          g_autofree gchar *csql = g_strdup_printf (
              "INSERT INTO certificates (unit_id, batch_id, uid, issuer, serial, pubkey_sha256, tbs, der,"
              " state, reserved_at, dispute_reason, disputed_at, revoke_reason, revoked_at, revoked_by)"
              " VALUES (%d, %u, '%04x', '" PROFILE_SHA "', '%04x', '%064x', x'30', x'30', '%s', 1, 'r', 1,"
              " 'superseded', 2, 'lead')", id, b, id, id, id, st);
          g_assert_cmpint (raw_exec (v8, csql, NULL), ==, SQLITE_OK);
        }
  gint64 live_before = raw_int (v8, "SELECT live_certs FROM batches WHERE id = 1");
  g_autoptr(StDb) db = st_db_open (v8, &error);
  g_assert_no_error (error);
  g_assert_cmpint (raw_int (v8, "PRAGMA user_version"), ==, st_db_schema_version ());
  g_assert_cmpint (raw_int (v8, "SELECT live_certs FROM batches WHERE id = 1"), ==, live_before);
  g_assert_cmpint (raw_int (v8, "SELECT units_done FROM batches WHERE id = 2"), ==, G_N_ELEMENTS (cert_states_v9) + 1);
  g_assert_cmpint (raw_int (v8, "SELECT certs_revoked FROM batches WHERE id = 1"), ==, G_N_ELEMENTS (unit_states_v9));
  assert_counts (v8, db);
  g_clear_pointer (&db, st_db_close);
  /* moves the station never makes, behind its back: the counts follow */
  g_assert_cmpint (raw_exec (v8, "UPDATE units SET state = 'failed' WHERE id = 1;"
                             "UPDATE units SET batch_id = 2 WHERE id = 2;"
                             "UPDATE units SET batch_id = 1, state = 'done' WHERE id = 50;"
                             "DELETE FROM units WHERE id = 3;"
                             "UPDATE certificates SET state = 'voided' WHERE state = 'unconfirmed';"
                             "UPDATE certificates SET state = 'active' WHERE state = 'issued'", NULL), ==, SQLITE_OK);
  db = st_db_open (v8, &error);
  g_assert_no_error (error);
  assert_counts (v8, db);
}

/* The audit payloads are written without json-glib's generator: its parser
 * reads them back to the same members, whatever the strings hold. */
static void
test_payload_json (void)
{
  static const char *const strings[] = {
    "", "plain", "quote \" and back\\slash", "/slash/", "tab\tnew\nline\rcr\bbs\fff",
    "\x01\x1f\x7f", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91", "sim:bench-0?units=40",
  };
  for (gsize i = 0; i < G_N_ELEMENTS (strings); i++)
    {
      g_autofree gchar *json = st_db_payload ("sisbsb", "text", strings[i], "n",
                                              (gint64) G_MININT64 + (gint64) i, strings[i], NULL,
                                              "yes", TRUE, "k\"ey", "v", "no", FALSE);
      g_autoptr(JsonParser) parser = json_parser_new ();
      g_autoptr(GError) error = NULL;
      g_assert_true (json_parser_load_from_data (parser, json, -1, &error));
      g_assert_no_error (error);
      JsonObject *o = json_node_get_object (json_parser_get_root (parser));
      g_assert_nonnull (o);
      g_assert_cmpstr (json_object_get_string_member (o, "text"), ==, strings[i]);
      g_assert_cmpint (json_object_get_int_member (o, "n"), ==, (gint64) G_MININT64 + (gint64) i);
      g_assert_true (json_object_get_null_member (o, strings[i]));
      g_assert_true (json_object_get_boolean_member (o, "yes"));
      g_assert_cmpstr (json_object_get_string_member (o, "k\"ey"), ==, "v");
      g_assert_false (json_object_get_boolean_member (o, "no"));
      g_assert_cmpuint (json_object_get_size (o), ==, 6);
      /* compact: no whitespace outside the strings */
      g_assert_null (strstr (json, "\": "));
    }
  /* bytes that are not UTF-8 cannot make the JSON invalid */
  {
    g_autofree gchar *bad = st_db_payload ("s", "port", "tty\xff\xfe" "A");
    g_autoptr(JsonParser) parser = json_parser_new ();
    g_assert_true (json_parser_load_from_data (parser, bad, -1, NULL));
    g_assert_true (g_utf8_validate (bad, -1, NULL));
    JsonObject *o = json_node_get_object (json_parser_get_root (parser));
    g_assert_cmpstr (json_object_get_string_member (o, "port"), ==, "tty\xef\xbf\xbd\xef\xbf\xbd" "A");
  }
  g_autofree gchar *empty = st_db_payload ("");
  g_assert_cmpstr (empty, ==, "{}");
  g_autofree gchar *one = st_db_payload ("is", "unit", (gint64) 7, "uid", "00ff");
  g_assert_cmpstr (one, ==, "{\"unit\":7,\"uid\":\"00ff\"}");
}

/* A login counted before its PIN is checked (st_db_operator_login_reserve),
 * with attempts made at once played out in a fixed order: never more than
 * five reserved; the fifth wrong one locks; a right one resets the count,
 * unless the operator was locked meanwhile; a locked operator gets no
 * attempt; recovery and the last admin's role. */
static void
test_operator_login_reserve (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_assert_true (st_db_operator_add (f->db, "root-ann", "admin", "h0", NULL, &error));
  g_assert_true (st_db_operator_add (f->db, "bob", "operator", "h1", "root-ann", &error));
  g_assert_no_error (error);
  gint64 head0 = audit_head (f->db, NULL);

  /* five at once: numbered 1..5, the sixth gets none; nothing audited yet */
  gint64 attempt = -1;
  for (gint64 i = 1; i <= 6; i++)
    {
      g_autoptr(StDbOperator) op = st_db_operator_login_reserve (f->db, "bob", 5, &attempt, &error);
      g_assert_no_error (error);
      g_assert_nonnull (op);
      g_assert_cmpstr (op->pin_hash, ==, "h1");
      g_assert_cmpint (attempt, ==, i <= 5 ? i : 0);
      g_assert_false (op->locked);
    }
  g_assert_cmpint (audit_head (f->db, NULL), ==, head0);
  /* attempt 2 was right: the count starts again, audited with its number */
  g_assert_true (st_db_operator_login_right (f->db, "bob", 2, &error));
  g_assert_no_error (error);
  g_autoptr(StDbAuditEntry) reset = audit_entry (f->db, head0 + 1);
  g_assert_cmpstr (reset->event, ==, "login-attempts-reset");
  g_assert_nonnull (strstr (reset->payload, "\"attempt\":2"));
  g_autoptr(StDbOperator) bob = st_db_operator_get (f->db, "bob", &error);
  g_assert_cmpint (bob->failed_attempts, ==, 0);
  /* attempt 5 was wrong: it locks, whatever the count says now */
  gboolean locked = FALSE;
  g_assert_true (st_db_operator_login_wrong (f->db, "bob", 4, 5, &locked, &error));
  g_assert_false (locked);
  g_assert_true (st_db_operator_login_wrong (f->db, "bob", 5, 5, &locked, &error));
  g_assert_no_error (error);
  g_assert_true (locked);
  g_autoptr(StDbAuditEntry) lock = audit_entry (f->db, head0 + 3);
  g_assert_cmpstr (lock->event, ==, "operator-locked");
  /* a right PIN checked meanwhile is refused; a locked operator gets no attempt */
  g_assert_false (st_db_operator_login_right (f->db, "bob", 1, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED);
  g_clear_error (&error);
  g_autoptr(StDbOperator) again = st_db_operator_login_reserve (f->db, "bob", 5, &attempt, &error);
  g_assert_nonnull (again);
  g_assert_true (again->locked);
  g_assert_cmpint (attempt, ==, 0);
  g_assert_null (st_db_operator_login_reserve (f->db, "nobody", 5, &attempt, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_FOUND);
  g_clear_error (&error);
  /* a right first attempt writes no audit entry */
  gint64 head1 = audit_head (f->db, NULL);
  g_autoptr(StDbOperator) ann = st_db_operator_login_reserve (f->db, "root-ann", 5, &attempt, &error);
  g_assert_cmpint (attempt, ==, 1);
  g_assert_true (st_db_operator_login_right (f->db, "root-ann", 1, &error));
  g_assert_no_error (error);
  g_assert_cmpint (audit_head (f->db, NULL), ==, head1);

  /* a service stopped while it checked two PINs: the next one releases them */
  g_assert_true (st_db_operator_add (f->db, "cy", "operator", "h3", "root-ann", &error));
  for (gint64 i = 1; i <= 3; i++)
    {
      g_autoptr(StDbOperator) cy = st_db_operator_login_reserve (f->db, "cy", 5, &attempt, &error);
      g_assert_cmpint (attempt, ==, i);
    }
  g_assert_true (st_db_operator_login_wrong (f->db, "cy", 1, 5, &locked, &error));
  g_assert_no_error (error);
  guint released = 0;
  g_assert_true (st_db_operator_release_attempts (f->db, &released, &error));
  g_assert_no_error (error);
  /* bob's two left in flight (locked: he stays so) and cy's two */
  g_assert_cmpuint (released, ==, 2);
  g_autoptr(StDbAuditEntry) rel = audit_entry (f->db, audit_head (f->db, NULL));
  g_assert_cmpstr (rel->event, ==, "login-attempts-released");
  g_assert_nonnull (strstr (rel->payload, "\"released\":2"));
  {
    /* the wrong one still counts: the next attempt is the second */
    g_autoptr(StDbOperator) cy = st_db_operator_login_reserve (f->db, "cy", 5, &attempt, &error);
    g_assert_cmpint (attempt, ==, 2);
    g_assert_true (st_db_operator_login_right (f->db, "cy", attempt, &error));
    g_assert_no_error (error);
  }
  g_assert_true (st_db_operator_release_attempts (f->db, &released, &error));
  g_assert_cmpuint (released, ==, 0);

  /* the last admin keeps its role */
  g_assert_false (st_db_operator_set_role (f->db, "root-ann", "lead", "root-ann", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED);
  g_assert_nonnull (strstr (error->message, "last admin"));
  g_clear_error (&error);
  /* recovery: a locked operator who is not an admin is not recovered */
  const char *action = NULL;
  g_assert_false (st_db_operator_recover (f->db, "bob", NULL, "hsm-so", &action, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED);
  g_clear_error (&error);
  g_assert_true (st_db_operator_recover (f->db, "root-bea", "h2", "hsm-so", &action, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (action, ==, "added");
  g_assert_false (st_db_operator_recover (f->db, "root-bea", "h2", "hsm-so", &action, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_autoptr(StDbAuditEntry) added = audit_entry (f->db, audit_head (f->db, NULL));
  g_assert_cmpstr (added->event, ==, "admin-recover");
  g_assert_cmpstr (added->operator_name, ==, "hsm-so");
  /* now root-ann may step down */
  g_assert_true (st_db_operator_set_role (f->db, "root-ann", "lead", "root-bea", &error));
  g_assert_no_error (error);
}

/* ---------- the records bound to the log (st-db-replay.c) ---------- */

/* What replay_world made, for the tampering to aim at. */
typedef struct {
  gint64 batch, closed_batch;
  gint64 done_unit, failed_unit, added_failed_unit, voided_cert, active_cert, reprov_unit;
} ReplayWorld;

static void
ok_or_die (gboolean ok, GError *error)
{
  g_assert_no_error (error);
  g_assert_true (ok);
}

/* A normal life: operators added, locked by wrong PINs, unlocked, their
 * roles changed; two batches, one closed; units done, failed with their
 * certificate voided or unconfirmed, recovered, re-provisioned, refused
 * before any reservation; more voids allowed. */
static void
replay_world (StDb *db, ReplayWorld *w)
{
  GError *error = NULL;
  ok_or_die (st_db_operator_add (db, "root-ann", "admin", "pinhash-ann", NULL, &error), error);
  ok_or_die (st_db_operator_add (db, "lead-anna", "lead", "pinhash-anna", "root-ann", &error), error);
  ok_or_die (st_db_operator_add (db, "eve", "operator", "pinhash-eve", "root-ann", &error), error);
  ok_or_die (st_db_operator_add (db, "mallory", "qa", "pinhash-mallory", "root-ann", &error), error);
  ok_or_die (st_db_operator_add (db, "bob", "operator", "pinhash-bob", "root-ann", &error), error);
  gint64 attempts = 0;
  gboolean locked = FALSE;
  for (int i = 0; i < 3; i++)
    ok_or_die (login_failed (db, "mallory", 3, &attempts, &locked, &error), error);
  g_assert_true (locked);
  for (int i = 0; i < 3; i++)
    ok_or_die (login_failed (db, "bob", 3, &attempts, &locked, &error), error);
  ok_or_die (st_db_operator_unlock (db, "bob", "root-ann", &error), error);
  ok_or_die (st_db_operator_set_role (db, "bob", "lead", "root-ann", &error), error);
  ok_or_die (login_failed (db, "eve", 3, &attempts, &locked, &error), error);
  {
    gint64 attempt = 0;
    g_autoptr(StDbOperator) eve = st_db_operator_login_reserve (db, "eve", 3, &attempt, &error);
    ok_or_die (eve != NULL, error);
    g_assert_cmpint (attempt, ==, 2);
    ok_or_die (st_db_operator_login_right (db, "eve", attempt, &error), error);
  }
  /* break-glass: a locked admin unlocked, a new admin added */
  const char *action = NULL;
  for (int i = 0; i < 3; i++)
    ok_or_die (login_failed (db, "root-ann", 3, &attempts, &locked, &error), error);
  ok_or_die (st_db_operator_recover (db, "root-ann", NULL, "hsm-so", &action, &error), error);
  ok_or_die (st_db_operator_recover (db, "root-cid", "pinhash-cid", "hsm-so", &action, &error), error);

  w->closed_batch = make_batch (db, "WO-R1", 3);
  full_cycle (db, w->closed_batch, "c1", 1);
  ok_or_die (st_db_batch_close (db, w->closed_batch, "lead-anna", &error), error);

  w->batch = make_batch (db, "WO-R2", 50);
  w->done_unit = full_cycle (db, w->batch, "a1", 2);
  /* failed after it was issued, before its COMMIT: voided */
  gint64 cert = 0;
  w->failed_unit = begin_reserve (db, w->batch, "a2", 3, FALSE, &cert, &error);
  g_assert_no_error (error);
  w->voided_cert = cert;
  g_autoptr(GBytes) der2 = fake_der ("der", 3);
  ok_or_die (st_db_cert_issued (db, cert, der2, &error), error);
  ok_or_die (st_db_unit_fail (db, w->failed_unit, "write", "timeout", NULL, ST_DB_CERT_VOID, &error), error);
  /* issued, interrupted: unconfirmed, then seen again: active */
  gint64 u3 = begin_reserve (db, w->batch, "a3", 4, FALSE, &cert, &error);
  g_assert_no_error (error);
  g_autoptr(GBytes) der3 = fake_der ("der", 4);
  ok_or_die (st_db_cert_issued (db, cert, der3, &error), error);
  ok_or_die (st_db_cert_set_state (db, cert, "unconfirmed", "interrupted", &error), error);
  ok_or_die (st_db_cert_set_state (db, cert, "active", NULL, &error), error);
  w->active_cert = cert;
  g_assert_cmpint (u3, >, 0);
  /* issuing, interrupted: voided by recovery */
  begin_reserve (db, w->batch, "a4", 5, FALSE, &cert, &error);
  g_assert_no_error (error);
  ok_or_die (st_db_cert_set_state (db, cert, "voided", "recovery", &error), error);
  /* failed with its certificate unconfirmed (COMMIT unanswered) */
  gint64 u5 = begin_reserve (db, w->batch, "a5", 6, FALSE, &cert, &error);
  g_assert_no_error (error);
  g_autoptr(GBytes) der5 = fake_der ("der", 6);
  ok_or_die (st_db_cert_issued (db, cert, der5, &error), error);
  ok_or_die (st_db_unit_fail (db, u5, "commit", "no answer", NULL, ST_DB_CERT_UNCONFIRMED, &error), error);
  /* a certificate disputed and kept, and one interrupted at 'issued',
   * disputed and voided by a lead */
  ok_or_die (st_db_cert_dispute (db, cert, "pop", "a device with the uid lacks the key", NULL,
                                 "/dev/pts/8", "op-bob", &error), error);
  ok_or_die (st_db_cert_resolve_dispute (db, cert, ST_DB_DISPUTE_KEEP, "lead-anna", &error), error);
  gint64 u9 = begin_reserve (db, w->batch, "a9", 9, FALSE, &cert, &error);
  g_assert_no_error (error);
  g_autoptr(GBytes) der9 = fake_der ("der", 9);
  ok_or_die (st_db_cert_issued (db, cert, der9, &error), error);
  ok_or_die (st_db_cert_set_state (db, cert, "unconfirmed", "interrupted", &error), error);
  ok_or_die (st_db_cert_dispute (db, cert, "pop", "a device with the uid lacks the key", NULL,
                                 "/dev/pts/8", "op-bob", &error), error);
  ok_or_die (st_db_cert_resolve_dispute (db, cert, ST_DB_DISPUTE_VOID, "lead-anna", &error), error);
  g_assert_cmpint (u9, >, 0);
  /* a1 re-provisioned: its certificate voided (cert-void) */
  w->reprov_unit = begin_reserve (db, w->batch, "a1", 7, TRUE, &cert, &error);
  g_assert_no_error (error);
  /* the whole unit in one write, and one refused before any reservation */
  StDbUnitNew nu = { w->batch, "/dev/pts/8", "a6", "stm32f4", "1.2.3", "op-bob" };
  g_autofree gchar *serial = random_serial ();
  g_autofree gchar *pk = random_pubkey_hash ();
  g_autoptr(GBytes) tbs = fake_der ("tbs", 8);
  gint64 u6 = 0;
  cert = st_db_unit_begin_reserve (db, &nu, ISSUER, serial, pk, tbs, "SX-000008", 8, FALSE, &u6, &error);
  g_assert_no_error (error);
  g_autoptr(GBytes) der6 = fake_der ("der", 8);
  ok_or_die (st_db_cert_issued (db, cert, der6, &error), error);
  ok_or_die (st_db_unit_done (db, u6, &error), error);
  StDbUnitNew nf = { w->batch, "/dev/pts/8", "a7", "stm32f4", "1.2.3", "op-bob" };
  w->added_failed_unit = st_db_unit_add_failed (db, &nf, "identify", "wrong model", NULL, &error);
  g_assert_no_error (error);
  gint64 cap = 0;
  ok_or_die (st_db_batch_allow_more_voids (db, w->batch, "lead-anna", &cap, &error), error);
  /* events that change no record */
  ok_or_die (st_db_event_add (db, "qa-dana", "qa-verify-unit", "{\"uid\":\"a1\"}", &error), error);
  ok_or_die (st_db_audit_add (db, "qa-dana", "manifest-export", "{\"batch\":1}", &error), error);
}

/* st_db_audit_explain's report; *@n its count of rows not explained. */
static gchar *
replay_report (StDb *db, guint *n)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) report = g_string_new (NULL);
  *n = G_MAXUINT;
  g_assert_true (st_db_audit_explain (db, report, n, &error));
  g_assert_no_error (error);
  g_test_message ("%s", report->str);
  return g_string_free (g_steal_pointer (&report), FALSE);
}

/* A normal life is explained by its log, row by row, and db check says so. */
static void
test_replay_explains (Fixture *f, gconstpointer data)
{
  ReplayWorld w = { 0 };
  replay_world (f->db, &w);
  guint n = 0;
  g_autofree gchar *report = replay_report (f->db, &n);
  g_assert_cmpuint (n, ==, 0);
  g_assert_nonnull (strstr (report, "records: ok (the log explains 6 operator(s), 2 batch(es), "
                                    "10 unit(s), 9 certificate(s))"));
  g_assert_null (strstr (report, "FAILED"));
  g_assert_null (strstr (report, "predate record binding"));
  g_assert_null (strstr (report, "older than the log"));
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) check = g_string_new (NULL);
  g_assert_true (st_db_check (f->db, check, &error));
  g_assert_no_error (error);
  g_assert_nonnull (strstr (check->str, "records: ok"));
}

typedef struct {
  const char *what;
  const char *sql;        /* %1$ld the batch, ... see replay_tamper_sql */
  const char *expected;   /* in the report, formatted the same way */
} ReplayTamper;

/* @fmt with {batch}, {closed}, {done}, {failed}, {added}, {voided}, {active},
 * {next_unit} replaced by the ids of @w. */
static gchar *
replay_fill (const char *fmt, const ReplayWorld *w, gint64 next_unit)
{
  struct { const char *key; gint64 v; } ids[] = {
    { "{batch}", w->batch }, { "{closed}", w->closed_batch }, { "{done}", w->done_unit },
    { "{failed}", w->failed_unit }, { "{added}", w->added_failed_unit },
    { "{voided}", w->voided_cert }, { "{active}", w->active_cert }, { "{next_unit}", next_unit },
  };
  gchar *s = g_strdup (fmt);
  for (gsize i = 0; i < G_N_ELEMENTS (ids); i++)
    {
      g_autofree gchar *v = g_strdup_printf ("%" G_GINT64_FORMAT, ids[i].v);
      g_auto(GStrv) parts = g_strsplit (s, ids[i].key, -1);
      g_free (s);
      s = g_strjoinv (v, parts);
    }
  return s;
}

/* Lines of @report with "FAILED", and those of them from the replay. */
static guint
st_count_failed (const char *report)
{
  guint n = 0;
  for (const char *p = report; (p = strstr (p, "FAILED")) != NULL; p++)
    n++;
  return n;
}

static guint
st_count_records_failed (const char *report)
{
  guint n = 0;
  for (const char *p = report; (p = strstr (p, "records: FAILED")) != NULL; p++)
    n++;
  return n;
}

/* Each change made with sqlite3 on the file, behind the station's back (its
 * triggers dropped where they stand in the way), is reported by name, while
 * the chain itself still verifies: the log alone never saw it. */
static void
test_replay_tamper (Fixture *f, gconstpointer data)
{
  static const ReplayTamper cases[] = {
    { "a role raised", "UPDATE operators SET role = 'admin' WHERE name = 'eve'",
      "operator 'eve': role is admin, the log says operator" },
    { "a lock lifted", "UPDATE operators SET locked = 0, failed_attempts = 0 WHERE name = 'mallory'",
      "operator 'mallory': locked is no, the log says yes" },
    { "a PIN replaced", "UPDATE operators SET pin_hash = 'pinhash-of-the-attacker' WHERE name = 'eve'",
      "operator 'eve': its PIN hash is not the one the log committed to" },
    { "an operator added", "INSERT INTO operators (name, role, pin_hash, created_at, updated_at)"
      " VALUES ('mole', 'admin', 'x', 1, 1)", "operator 'mole' (id 7) is not in the log" },
    { "an operator deleted", "DROP TRIGGER operators_no_delete; DELETE FROM operators WHERE name = 'bob'",
      "operator 'bob' is in the log but not in the table" },
    { "a failed unit made done", "UPDATE units SET state = 'done' WHERE id = {failed}",
      "unit {failed}: state is done, the log says failed" },
    { "a voided certificate made active",
      "DROP TRIGGER certificates_state_moves; UPDATE certificates SET state = 'active' WHERE id = {voided}",
      "certificate {voided}: state is active, the log says voided" },
    { "an active certificate voided", "UPDATE certificates SET state = 'voided' WHERE id = {active}",
      "certificate {active}: state is voided, the log says active" },
    { "a batch reopened", "UPDATE batches SET state = 'open', closed_at = NULL WHERE id = {closed}",
      "batch {closed}: state is open, the log says closed" },
    { "a batch's quantity raised", "UPDATE batches SET quantity = 5000 WHERE id = {batch}",
      "batch {batch}: quantity is 5000, the log says 50" },
    { "a batch's profile rewritten", "UPDATE batches SET profile_text = 'name: sensor-x\nkey: rsa-1024\n'"
      " WHERE id = {batch}", "batch {batch}: its profile text is not the one the log holds the SHA-256 of" },
    { "more voids allowed", "UPDATE batches SET void_allowance = 1000 WHERE id = {batch}",
      "batch {batch}: void allowance is 1000, the log says 10" },
    { "a unit added", "INSERT INTO units (batch_id, port, uid, state, started_at, operator)"
      " VALUES ({batch}, 'p', 'ee', 'done', 1, 'x')", "unit {next_unit} is not in the log" },
    { "a unit deleted", "DELETE FROM units WHERE id = {added}",
      "unit {added} is in the log but not in the table" },
    { "a unit moved to another batch", "UPDATE units SET batch_id = {closed} WHERE id = {added}",
      "unit {added}: batch is {closed}, the log says {batch}" },
    { "a product serial changed", "UPDATE units SET product_serial = 'SX-999999' WHERE id = {done}",
      "unit {done}: its product serial is not the one in the log" },
    { "a certificate's key swapped", "DROP TRIGGER certificates_identity_immutable;"
      " UPDATE certificates SET pubkey_sha256 = '" PROFILE_SHA "' WHERE id = {active}",
      "certificate {active}: its public key is not the one in the log" },
    { "a certificate's DER swapped", "DROP TRIGGER certificates_der_immutable;"
      " UPDATE certificates SET der = x'3082' WHERE id = {active}",
      "certificate {active}: its DER is not the one the log recorded as issued" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree gchar *name = g_strdup_printf ("tamper-%02" G_GSIZE_FORMAT ".db", i);
      g_autofree gchar *path = g_build_filename (f->dir, name, NULL);
      g_autoptr(StDb) db = st_db_open (path, &error);
      g_assert_no_error (error);
      ReplayWorld w = { 0 };
      replay_world (db, &w);
      gint64 next_unit = raw_int (path, "SELECT max (id) + 1 FROM units");
      g_autofree gchar *sql = replay_fill (cases[i].sql, &w, next_unit);
      g_autofree gchar *expected = replay_fill (cases[i].expected, &w, next_unit);
      g_test_message ("%s: %s", cases[i].what, sql);
      g_autofree gchar *msg = NULL;
      g_assert_cmpint (raw_exec (path, sql, &msg), ==, SQLITE_OK);

      guint n = 0;
      g_autofree gchar *report = replay_report (db, &n);
      g_assert_cmpuint (n, >=, 1);
      if (strstr (report, expected) == NULL)
        g_error ("%s: '%s' is not in the report:\n%s", cases[i].what, expected, report);
      g_assert_nonnull (strstr (report, "records: FAILED: "));
      /* the chain verifies: only the replay sees it */
      gboolean chain_ok = FALSE;
      g_autofree gchar *chain = audit_verify (db, &chain_ok);
      g_assert_true (chain_ok);
      /* db check sees it too */
      g_autoptr(GString) check = g_string_new (NULL);
      g_assert_false (st_db_check (db, check, &error));
      g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
      g_assert_nonnull (strstr (check->str, expected));
      if (st_count_failed (check->str) == st_count_records_failed (check->str))
        g_assert_nonnull (strstr (error->message, "does not explain"));  /* the replay alone failed */
      g_clear_pointer (&db, st_db_close);
      for (const char *suffix = ""; suffix != NULL;
           suffix = g_str_equal (suffix, "") ? "-wal" : g_str_equal (suffix, "-wal") ? "-shm" : NULL)
        {
          g_autofree gchar *p = g_strconcat (path, suffix, NULL);
          g_unlink (p);
        }
    }
}

/* Removes @drop_fields from every entry's payload and chains the log anew,
 * as a station from before record binding would have written it. */
static void
rewrite_log (const char *path, const char *const *drop_fields)
{
  sqlite3 *raw = NULL;
  g_assert_cmpint (sqlite3_open_v2 (path, &raw, SQLITE_OPEN_READWRITE, NULL), ==, SQLITE_OK);
  sqlite3_busy_timeout (raw, 5000);
  g_assert_cmpint (sqlite3_exec (raw, "DROP TRIGGER audit_append_only; BEGIN", NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_stmt *sel = NULL, *upd = NULL;
  g_assert_cmpint (sqlite3_prepare_v2 (raw, "SELECT seq, at, operator, event, payload FROM audit ORDER BY seq",
                                       -1, &sel, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (raw, "UPDATE audit SET payload = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                                       -1, &upd, NULL), ==, SQLITE_OK);
  g_autofree gchar *prev = g_strdup (ST_DB_AUDIT_GENESIS);
  while (sqlite3_step (sel) == SQLITE_ROW)
    {
      gint64 seq = sqlite3_column_int64 (sel, 0), at = sqlite3_column_int64 (sel, 1);
      const char *who = (const char *) sqlite3_column_text (sel, 2);
      const char *event = (const char *) sqlite3_column_text (sel, 3);
      g_autoptr(JsonParser) parser = json_parser_new ();
      g_assert_true (json_parser_load_from_data (parser, (const char *) sqlite3_column_text (sel, 4), -1, NULL));
      JsonObject *o = json_node_get_object (json_parser_get_root (parser));
      for (guint i = 0; drop_fields[i] != NULL; i++)
        if (json_object_has_member (o, drop_fields[i]))
          json_object_remove_member (o, drop_fields[i]);
      g_autofree gchar *payload = json_to_string (json_parser_get_root (parser), FALSE);
      g_autofree gchar *hash = st_db_audit_hash (seq, at, who, event, payload, prev);
      sqlite3_bind_text (upd, 1, payload, -1, SQLITE_TRANSIENT);
      sqlite3_bind_text (upd, 2, prev, -1, SQLITE_TRANSIENT);
      sqlite3_bind_text (upd, 3, hash, -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64 (upd, 4, seq);
      g_assert_cmpint (sqlite3_step (upd), ==, SQLITE_DONE);
      sqlite3_reset (upd);
      g_free (prev);
      prev = g_strdup (hash);
    }
  sqlite3_finalize (sel);
  sqlite3_finalize (upd);
  g_assert_cmpint (sqlite3_exec (raw, "COMMIT", NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (raw);
}

/* A log written before record binding lacks the new fields: the replay
 * says from which entry on the records are bound, does not call the older
 * rows tampered, and still checks what the older payloads name. */
static void
test_replay_legacy (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  ReplayWorld w = { 0 };
  replay_world (f->db, &w);
  /* the last entry that changed a record (two events that change none follow) */
  gint64 last_old = raw_int (f->path, "SELECT max (seq) FROM audit WHERE event NOT IN"
                                      " ('qa-verify-unit', 'manifest-export')");
  g_assert_cmpint (last_old, ==, audit_head (f->db, NULL) - 2);
  static const char *const new_fields[] = { "pin_sha256", "id", "issuer", "tbs_sha256", "unit_state",
                                            "void_allowance", "profile_text_sha256", NULL };
  rewrite_log (f->path, new_fields);
  gboolean ok = FALSE;
  g_autofree gchar *chain = audit_verify (f->db, &ok);
  g_assert_true (ok);
  /* the station goes on, binding from here */
  ok_or_die (st_db_operator_add (f->db, "newbie", "operator", "pinhash-newbie", "root-ann", &error), error);
  gint64 cert = 0;
  begin_reserve (f->db, w.batch, "b1", 20, FALSE, &cert, &error);
  g_assert_no_error (error);

  guint n = 0;
  g_autofree gchar *r0 = replay_report (f->db, &n);
  g_assert_cmpuint (n, ==, 0);
  g_autofree gchar *line = g_strdup_printf ("records: entries before seq %" G_GINT64_FORMAT
                                            " predate record binding", last_old + 1);
  g_assert_nonnull (strstr (r0, line));
  g_assert_nonnull (strstr (r0, "records: ok"));
  assert_check_ok (f->db);

  /* what the old payloads name is still bound: a role ... */
  g_assert_cmpint (raw_exec (f->path, "UPDATE operators SET role = 'admin' WHERE name = 'eve'", NULL), ==, SQLITE_OK);
  g_autofree gchar *r1 = replay_report (f->db, &n);
  g_assert_cmpuint (n, ==, 1);
  g_assert_nonnull (strstr (r1, "operator 'eve': role is admin, the log says operator"));
  /* ... and a PIN committed to after binding */
  g_assert_cmpint (raw_exec (f->path, "UPDATE operators SET pin_hash = 'x' WHERE name = 'newbie'", NULL), ==, SQLITE_OK);
  g_autofree gchar *r2 = replay_report (f->db, &n);
  g_assert_cmpuint (n, ==, 2);
  g_assert_nonnull (strstr (r2, "operator 'newbie': its PIN hash is not the one the log committed to"));
}

/* A state the log gives that the replay's lists do not know (a state added
 * to the code but not to st-db-replay.c) is reported, not taken as equal
 * to whatever unknown state the table holds. */
static void
test_replay_unknown_state (Fixture *f, gconstpointer data)
{
  gint64 batch = make_batch (f->db, "WO-U", 5);
  gint64 unit = full_cycle (f->db, batch, "d1", 1);
  guint n = 0;
  g_autofree gchar *r0 = replay_report (f->db, &n);
  g_assert_cmpuint (n, ==, 0);
  g_autofree gchar *sql = g_strdup_printf (
      "INSERT INTO audit (seq, at, operator, event, payload, prev_hash, hash) VALUES"
      " ((SELECT max (seq) + 1 FROM audit), 1, 'station', 'cert-state',"
      " '{\"cert\":1,\"unit\":%" G_GINT64_FORMAT ",\"from\":\"active\",\"to\":\"lost\","
      "\"reason\":null,\"unit_state\":\"lost\"}', '%s', '%s')",
      unit, ST_DB_AUDIT_GENESIS, ST_DB_AUDIT_GENESIS);
  g_assert_cmpint (raw_exec (f->path, sql, NULL), ==, SQLITE_OK);
  g_autofree gchar *r1 = replay_report (f->db, &n);
  g_assert_cmpuint (n, ==, 2);
  g_autofree gchar *u = g_strdup_printf ("unit %" G_GINT64_FORMAT ": the log gives it a state the "
                                         "replay does not know", unit);
  g_assert_nonnull (strstr (r1, u));
  g_assert_nonnull (strstr (r1, "certificate 1: the log gives it a state the replay does not know"));
}

/* Every event that db/ logs with st_db_w_audit changes a record and has a
 * replay handler, and every handler's event is still logged somewhere: a
 * new event without a handler fails here. Events through st_db_audit_add
 * and st_db_event_add change no record, and may not take a record event's
 * name. */
static void
test_replay_every_event_handled (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GDir) dir = g_dir_open (ST_DB_SOURCE_DIR, 0, &error);
  g_assert_no_error (error);
  g_autoptr(GHashTable) logged = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GRegex) call = g_regex_new ("st_db_w_audit\\s*\\(([^()]*)\\)", 0, 0, &error);
  g_assert_no_error (error);
  g_autoptr(GRegex) literal = g_regex_new ("\"([a-z][a-z0-9-]*)\"", 0, 0, &error);
  g_assert_no_error (error);
  const char *name;
  guint calls = 0;
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      if (!g_str_has_suffix (name, ".c"))
        continue;
      g_autofree gchar *path = g_build_filename (ST_DB_SOURCE_DIR, name, NULL);
      g_autofree gchar *text = NULL;
      g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
      g_autoptr(GMatchInfo) m = NULL;
      for (g_regex_match (call, text, 0, &m); g_match_info_matches (m); g_match_info_next (m, NULL))
        {
          g_autofree gchar *args = g_match_info_fetch (m, 1);
          if (strstr (args, "const char *") != NULL)
            continue;   /* the definition */
          calls++;
          g_autoptr(GMatchInfo) lm = NULL;
          for (g_regex_match (literal, args, 0, &lm); g_match_info_matches (lm); g_match_info_next (lm, NULL))
            {
              gchar *event = g_match_info_fetch (lm, 1);
              if (!st_db_replay_handles (event))
                g_error ("%s logs event '%s' with st_db_w_audit but st-db-replay.c has no handler "
                         "for it: every event that changes a record needs one", name, event);
              g_hash_table_add (logged, event);
            }
        }
    }
  g_assert_cmpuint (calls, >=, 15);
  for (const char *const *e = st_db_replay_events (); *e != NULL; e++)
    if (!g_hash_table_contains (logged, *e))
      g_error ("st-db-replay.c handles '%s', which no st_db_w_audit call in db/ logs", *e);

  Fixture f = { 0 };
  fixture_setup (&f, NULL);
  g_assert_false (st_db_audit_add (f.db, "mallory", "operator-add", "{\"name\":\"mole\"}", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_assert_false (st_db_event_add (f.db, "mallory", "operator-set-role", "{\"name\":\"eve\"}", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_assert_cmpint (audit_head (f.db, NULL), ==, 0);
  fixture_teardown (&f, NULL);
}

/* st_db_unit_shift_counts (the shift chart, issue 16) against the units
 * themselves: st_db_unit_list counted one by one, as the engine counted
 * them before; for each batch and 1, 3 and 12 hours. The units' times are
 * spread over the hours (and one day back) with SQL, since they all
 * happen now. */
static void
assert_shift_counts (StDb *db, gint64 batch, guint n_hours)
{
  g_autoptr(GError) error = NULL;
  gint64 first_hour = g_get_real_time () / G_USEC_PER_SEC / 3600 * 3600 - (gint64) (n_hours - 1) * 3600;
  g_autofree guint *passed = g_new0 (guint, n_hours), *failed = g_new0 (guint, n_hours);
  g_autofree guint *want_passed = g_new0 (guint, n_hours), *want_failed = g_new0 (guint, n_hours);
  g_autoptr(GHashTable) steps = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GHashTable) want_steps = g_hash_table_new (g_str_hash, g_str_equal);
  guint n_done = 0, n_failed = 0, want_done = 0, want_n_failed = 0;
  g_assert_true (st_db_unit_shift_counts (db, batch, first_hour, n_hours, passed, failed, &n_done, &n_failed,
                                          steps, &error));
  g_assert_no_error (error);
  g_autoptr(GPtrArray) units = st_db_unit_list (db, batch, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < units->len; i++)
    {
      StDbUnit *u = g_ptr_array_index (units, i);
      gboolean is_done = g_strcmp0 (u->state, "done") == 0;
      if (!is_done && g_strcmp0 (u->state, "failed") != 0)
        continue;
      if (is_done)
        want_done++;
      else
        {
          want_n_failed++;
          const char *step = g_strcmp0 (u->cert_state, "disputed") == 0 ? "disputed"
                             : u->fail_step != NULL ? u->fail_step : "unknown";
          guint n = GPOINTER_TO_UINT (g_hash_table_lookup (want_steps, step));
          g_hash_table_insert (want_steps, (gpointer) step, GUINT_TO_POINTER (n + 1));
        }
      gint64 at = u->finished_at > 0 ? u->finished_at : u->started_at;
      if (at >= first_hour && (at - first_hour) / 3600 < (gint64) n_hours)
        (is_done ? want_passed : want_failed)[(at - first_hour) / 3600]++;
    }
  g_assert_cmpuint (n_done, ==, want_done);
  g_assert_cmpuint (n_failed, ==, want_n_failed);
  for (guint h = 0; h < n_hours; h++)
    {
      g_assert_cmpuint (passed[h], ==, want_passed[h]);
      g_assert_cmpuint (failed[h], ==, want_failed[h]);
    }
  g_assert_cmpuint (g_hash_table_size (steps), ==, g_hash_table_size (want_steps));
  GHashTableIter it;
  gpointer step, n;
  g_hash_table_iter_init (&it, want_steps);
  while (g_hash_table_iter_next (&it, &step, &n))
    g_assert_cmpuint (GPOINTER_TO_UINT (g_hash_table_lookup (steps, step)), ==, GPOINTER_TO_UINT (n));
}

static void
test_shift_counts (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  gint64 b1 = make_batch (f->db, "WO-S1", 50);
  gint64 b2 = make_batch (f->db, "WO-S2", 50);
  for (int i = 0; i < 12; i++)
    {
      g_autofree gchar *uid = g_strdup_printf ("d0%02d", i);
      full_cycle (f->db, i % 3 ? b1 : b2, uid, 600 + i);
    }
  const char *fail_steps[] = { "hello", "keygen", "commit", "keygen" };
  for (guint i = 0; i < G_N_ELEMENTS (fail_steps); i++)
    {
      g_autofree gchar *uid = g_strdup_printf ("e0%02u", i);
      gint64 u = st_db_unit_begin (f->db, b1, "p", uid, "m", "1", "op", &error);
      g_assert_no_error (error);
      g_assert_true (st_db_unit_fail (f->db, u, fail_steps[i], "no answer", NULL, ST_DB_CERT_VOID, &error));
      g_assert_no_error (error);
    }
  /* a failed unit whose certificate is disputed counts as "disputed" */
  gint64 unit = 0;
  gint64 cert = unconfirmed_unit (f->db, b1, "e100", 700, TRUE, &unit);
  g_assert_true (st_db_cert_dispute (f->db, cert, "hello", "clone?", NULL, "p", "op", &error));
  g_assert_no_error (error);
  /* unfinished: not counted */
  st_db_unit_begin (f->db, b1, "p", "e200", "m", "1", "op", &error);
  g_assert_no_error (error);
  /* the finished units spread over the last hours, one a day back */
  g_assert_cmpint (raw_exec (f->path, "UPDATE units SET finished_at = finished_at - 3600 * (id % 5)"
                                      " WHERE finished_at IS NOT NULL;"
                                      "UPDATE units SET finished_at = finished_at - 86400 WHERE id = 3", NULL),
                   ==, SQLITE_OK);
  for (gint64 b = b1; b <= b2; b++)
    {
      assert_shift_counts (f->db, b, 1);
      assert_shift_counts (f->db, b, 3);
      assert_shift_counts (f->db, b, 12);
    }
  /* a batch without units */
  gint64 b3 = make_batch (f->db, "WO-S3", 5);
  assert_shift_counts (f->db, b3, 12);
}

/* The replay tests again with a window of 2 units and 2 certificates:
 * every record older than that goes through the replay's temporary
 * database (written, read back when the log names it again, walked in id
 * order against the tables), and the same problems are found. */
static void
fixture_setup_spilled (Fixture *f, gconstpointer data)
{
  st_db_replay_set_window (2);
  fixture_setup (f, data);
}

static void
fixture_teardown_spilled (Fixture *f, gconstpointer data)
{
  fixture_teardown (f, data);
  st_db_replay_set_window (65536);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  fault_vfs_install ();
  g_log_set_writer_func (capture_warnings, NULL, NULL);
#define ADD(name, fn) g_test_add ("/db/" name, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("migrations", test_migrations);
  ADD ("pragmas", test_pragmas);
  ADD ("wal-bounded", test_wal_bounded);
  ADD ("lifecycle", test_lifecycle);
  ADD ("quota", test_quota);
  ADD ("reprovision", test_reprovision);
  ADD ("duplicate-key", test_duplicate_key);
  ADD ("der-immutable", test_der_immutable);
  ADD ("closed-batch", test_closed_batch);
  ADD ("fail", test_fail);
  ADD ("unfinished", test_unfinished);
  ADD ("concurrent", test_concurrent);
  ADD ("group-constraint", test_group_constraint);
  ADD ("disk-full", test_disk_full);
  ADD ("commit-disk-full", test_commit_disk_full);
  ADD ("commit-io-error", test_commit_io_error);
  ADD ("audit-chain", test_audit_chain);
  ADD ("audit-tamper", test_audit_tamper);
  ADD ("audit-checkpoint", test_audit_checkpoint);
  ADD ("audit-hook", test_audit_hook);
  ADD ("operators", test_operators);
  ADD ("operator-login-reserve", test_operator_login_reserve);
  ADD ("void-cap", test_void_cap);
  ADD ("migrate-v1", test_migrate_v1);
  ADD ("migrate-v2-live-count", test_migrate_v2_live_count);
  ADD ("migrate-v3-same-rules", test_migrate_v3_same_rules);
  ADD ("migrate-v4-duplicate-serials", test_migrate_v4_duplicate_serials);
  ADD ("dispute", test_dispute);
  ADD ("migrate-v5-disputed", test_migrate_v5_disputed);
  ADD ("revoke", test_revoke);
  ADD ("crl-numbers", test_crl_numbers);
  ADD ("migrate-v7-revoked", test_migrate_v7_revoked);
  ADD ("product-seq-threads", test_product_seq_threads);
  ADD ("product-seq-batches", test_product_seq_batches);
  ADD ("product-seq-two-processes", test_product_seq_two_processes);
  ADD ("product-serial-unique", test_product_serial_unique);
  ADD ("replay-explains", test_replay_explains);
  ADD ("replay-tamper", test_replay_tamper);
  ADD ("replay-legacy", test_replay_legacy);
  ADD ("replay-unknown-state", test_replay_unknown_state);
  ADD ("batch-counts", test_batch_counts);
  ADD ("migrate-v8-counts", test_migrate_v8_counts);
  ADD ("shift-counts", test_shift_counts);
#undef ADD
#define ADD_SPILLED(name, fn) \
  g_test_add ("/db/" name "-spilled", Fixture, NULL, fixture_setup_spilled, fn, fixture_teardown_spilled)
  ADD_SPILLED ("replay-explains", test_replay_explains);
  ADD_SPILLED ("replay-tamper", test_replay_tamper);
  ADD_SPILLED ("replay-legacy", test_replay_legacy);
  ADD_SPILLED ("replay-unknown-state", test_replay_unknown_state);
  ADD_SPILLED ("revoke", test_revoke);
  ADD_SPILLED ("reprovision", test_reprovision);
#undef ADD_SPILLED
  g_test_add_func ("/db/payload-json", test_payload_json);
  g_test_add_func ("/db/replay-every-event-handled", test_replay_every_event_handled);
  g_test_add_func ("/db/file-modes", test_file_modes);
  return g_test_run ();
}
