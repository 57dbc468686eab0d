/* db/: the Matter factory data of a unit (schema 10; db/st-db-matter.c,
 * docs/matter.md "Factory data per unit").
 *
 * /db/matter/record: recorded with the reservation, read back field by
 *   field, audited as unit-matter with the record's digest and without the
 *   passcode; the log explains it and db check passes.
 * /db/matter/refused: a refused reservation, an invalid record and a
 *   counter already given leave no unit and no record behind.
 * /db/matter/counter: the batch's sequential counter goes on after the
 *   database is closed and opened again, per batch; a second process that
 *   drew the same counter collides and resyncs past it.
 * /db/matter/tamper: a passcode, a verifier, a QR text rewritten, a
 *   record deleted or added with sqlite3 on the file: db check and the
 *   replay name the unit; the triggers refuse the plain update.
 * /db/matter/paged: the per-batch reader walks more than a page in unit
 *   order and only the batch's records. */
#include "st-db.h"
#include "st-db-private.h"
#include "st-error.h"
#include "st-util.h"
#include "st-test-tmp.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <sqlite3.h>   /* the attacks: sqlite3 on the file */
#include <string.h>

#define ISSUER "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
#define PROFILE_SHA "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"

typedef struct {
  gchar *dir, *path;
  StDb *db;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  f->dir = st_test_tmpdir ("st-db-matter");
  f->path = g_build_filename (f->dir, "station.db", NULL);
  f->db = st_db_open (f->path, &error);
  g_assert_no_error (error);
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

static GBytes *
random_bytes (gsize n)
{
  guint8 *b = g_malloc (n);
  for (gsize i = 0; i < n; i++)
    b[i] = (guint8) g_random_int_range (0, 256);
  return g_bytes_new_take (b, n);
}

/* A record of the right shape (the database does not do the
 * cryptography: tests/station/test-matter-factory.c and the line's test
 * check that the verifier is the passcode's). */
static StDbUnitMatter *
make_record (gint64 counter)
{
  static const char b38[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-.";
  StDbUnitMatter *m = g_new0 (StDbUnitMatter, 1);
  m->vendor_id = 0xFFF1;
  m->product_id = 0x800A;
  m->counter = counter;
  m->discriminator = counter >= 0 ? (guint) (3840 + counter % 16) : (guint) g_random_int_range (0, 4096);
  m->passcode = (guint32) g_random_int_range (1, 99999998);
  m->iterations = 1000;
  m->salt = random_bytes ((gsize) g_random_int_range (16, 33));
  m->verifier = random_bytes (97);
  m->unique_id = counter % 2 == 0 ? random_bytes (16) : NULL;
  m->flow = (guint) (counter >= 0 ? counter % 3 : 0);
  m->discovery = 2;
  GString *qr = g_string_new ("MT:");
  for (int i = 0; i < 19; i++)
    g_string_append_c (qr, b38[g_random_int_range (0, 38)]);
  m->qr_text = g_string_free (qr, FALSE);
  GString *manual = g_string_new (NULL);
  for (int i = 0; i < (m->flow == 0 ? 11 : 21); i++)
    g_string_append_c (manual, (char) ('0' + g_random_int_range (0, 10)));
  m->manual_code = g_string_free (manual, FALSE);
  return m;
}

static gint64
make_batch (StDb *db, const char *wo)
{
  g_autoptr(GError) error = NULL;
  gint64 id = st_db_batch_create (db, wo, "lamp", PROFILE_SHA, "[matter]\n", 1000, "station-1",
                                  "lead-anna", &error);
  g_assert_no_error (error);
  return id;
}

static gint64
reserve (StDb *db, gint64 batch, const char *uid, gint64 seq, const StDbUnitMatter *m,
         gint64 *unit_id, GError **error)
{
  StDbUnitNew u = { batch, "/dev/pts/3", uid, "lamp", "1.0", "op-bob" };
  guint8 s[16];
  for (gsize i = 0; i < sizeof s; i++)
    s[i] = (guint8) g_random_int_range (0, 256);
  s[0] = (guint8) ((s[0] & 0x7f) | 1);
  g_autofree gchar *serial = st_hex_encode (s, sizeof s);
  g_autofree gchar *uuid = g_uuid_string_random ();
  g_autofree gchar *pk = st_sha256_hex ((const guint8 *) uuid, strlen (uuid));
  g_autoptr(GBytes) tbs = g_bytes_new (uuid, strlen (uuid));
  g_autofree gchar *ps = g_strdup_printf ("ML-%06" G_GINT64_FORMAT, seq);
  return st_db_unit_begin_reserve_matter (db, &u, ISSUER, serial, pk, tbs, ps, seq, FALSE, m,
                                          unit_id, error);
}

static void
assert_same (const StDbUnitMatter *a, const StDbUnitMatter *b)
{
  g_assert_cmpuint (a->vendor_id, ==, b->vendor_id);
  g_assert_cmpuint (a->product_id, ==, b->product_id);
  g_assert_cmpuint (a->discriminator, ==, b->discriminator);
  g_assert_cmpint (a->counter, ==, b->counter);
  g_assert_cmpuint (a->passcode, ==, b->passcode);
  g_assert_cmpuint (a->iterations, ==, b->iterations);
  g_assert_true (g_bytes_equal (a->salt, b->salt));
  g_assert_true (g_bytes_equal (a->verifier, b->verifier));
  g_assert_true ((a->unique_id == NULL) == (b->unique_id == NULL));
  if (a->unique_id != NULL)
    g_assert_true (g_bytes_equal (a->unique_id, b->unique_id));
  g_assert_cmpuint (a->flow, ==, b->flow);
  g_assert_cmpuint (a->discovery, ==, b->discovery);
  g_assert_cmpstr (a->qr_text, ==, b->qr_text);
  g_assert_cmpstr (a->manual_code, ==, b->manual_code);
  g_autofree gchar *da = st_db_unit_matter_digest (a);
  g_autofree gchar *db = st_db_unit_matter_digest (b);
  g_assert_cmpstr (da, ==, db);
}

typedef struct {
  guint n;
  gchar *payload;
} FindEvent;

static gboolean
find_matter_event (const StDbAuditEntry *e, gpointer user_data, GError **error)
{
  FindEvent *fe = user_data;
  if (g_strcmp0 (e->event, "unit-matter") == 0)
    {
      fe->n++;
      g_free (fe->payload);
      fe->payload = g_strdup (e->payload);
    }
  return TRUE;
}

static void
assert_explained (StDb *db)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) report = g_string_new (NULL);
  guint n = G_MAXUINT;
  g_assert_true (st_db_audit_explain (db, report, &n, &error));
  g_assert_no_error (error);
  if (n != 0)
    g_error ("not explained:\n%s", report->str);
  g_autoptr(GString) check = g_string_new (NULL);
  if (!st_db_check (db, check, &error))
    g_error ("db check: %s\n%s", error->message, check->str);
}

static void
test_record (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  gint64 batch = make_batch (f->db, "WO-M1");
  g_autoptr(StDbUnitMatter) seq = make_record (0);
  g_autoptr(StDbUnitMatter) rnd = make_record (-1);
  gint64 unit1 = 0, unit2 = 0, unit3 = 0;
  g_assert_cmpint (reserve (f->db, batch, "a1", 1, seq, &unit1, &error), >, 0);
  g_assert_no_error (error);
  g_assert_cmpint (reserve (f->db, batch, "a2", 2, rnd, &unit2, &error), >, 0);
  g_assert_no_error (error);
  /* a unit without Matter data (st_db_unit_begin_reserve) has no record */
  g_assert_cmpint (reserve (f->db, batch, "a3", 3, NULL, &unit3, &error), >, 0);
  g_assert_no_error (error);

  g_autoptr(StDbUnitMatter) back1 = st_db_unit_matter_get (f->db, unit1, &error);
  g_assert_no_error (error);
  assert_same (seq, back1);
  g_assert_cmpint (back1->unit_id, ==, unit1);
  g_assert_cmpint (back1->batch_id, ==, batch);
  g_assert_cmpint (back1->created_at, >, 0);
  g_autoptr(StDbUnitMatter) back2 = st_db_unit_matter_get (f->db, unit2, &error);
  g_assert_no_error (error);
  assert_same (rnd, back2);
  g_assert_cmpint (back2->counter, ==, -1);
  g_assert_null (st_db_unit_matter_get (f->db, unit3, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_FOUND);
  g_clear_error (&error);

  /* the log: one entry per record, with its digest, never the passcode */
  FindEvent fe = { 0 };
  g_assert_true (st_db_audit_foreach (f->db, find_matter_event, &fe, &error));
  g_assert_cmpuint (fe.n, ==, 2);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_assert_true (json_parser_load_from_data (parser, fe.payload, -1, &error));
  JsonObject *o = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpint (json_object_get_int_member (o, "unit"), ==, unit2);
  g_autofree gchar *digest = st_db_unit_matter_digest (rnd);
  g_assert_cmpstr (json_object_get_string_member (o, "matter_sha256"), ==, digest);
  g_assert_false (json_object_get_boolean_member (o, "sequential"));
  g_autofree gchar *pc = g_strdup_printf ("%u", rnd->passcode);
  g_assert_null (strstr (fe.payload, pc));
  g_assert_null (strstr (fe.payload, rnd->qr_text));
  g_free (fe.payload);
  assert_explained (f->db);

  /* the digest covers every field: one changed, the digest changes */
  g_autofree gchar *d0 = st_db_unit_matter_digest (seq);
  seq->passcode ^= 1;
  g_autofree gchar *d1 = st_db_unit_matter_digest (seq);
  g_assert_cmpstr (d0, !=, d1);
  seq->passcode ^= 1;
  seq->counter = 1;
  g_autofree gchar *d2 = st_db_unit_matter_digest (seq);
  g_assert_cmpstr (d0, !=, d2);
}

static void
assert_units (const char *path, gint64 expected_units, gint64 expected_records)
{
  sqlite3 *raw = NULL;
  sqlite3_stmt *stmt = NULL;
  g_assert_cmpint (sqlite3_open_v2 (path, &raw, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (raw, "SELECT (SELECT count(*) FROM units),"
                                       " (SELECT count(*) FROM unit_matter)", -1, &stmt, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  g_assert_cmpint (sqlite3_column_int64 (stmt, 0), ==, expected_units);
  g_assert_cmpint (sqlite3_column_int64 (stmt, 1), ==, expected_records);
  sqlite3_finalize (stmt);
  sqlite3_close (raw);
}

static void
test_refused (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  gint64 batch = make_batch (f->db, "WO-M2");
  g_autoptr(StDbUnitMatter) ok = make_record (0);
  gint64 unit = 0;
  g_assert_cmpint (reserve (f->db, batch, "b1", 1, ok, &unit, &error), >, 0);
  g_assert_no_error (error);
  assert_units (f->path, 1, 1);

  /* the same uid again: the reservation is refused, no record is left */
  g_autoptr(StDbUnitMatter) m2 = make_record (1);
  gint64 other = 0;
  g_assert_cmpint (reserve (f->db, batch, "b1", 2, m2, &other, &error), ==, 0);
  g_assert_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED);
  g_clear_error (&error);
  assert_units (f->path, 1, 1);

  /* a counter the batch already gave: INTERNAL, nothing recorded */
  g_autoptr(StDbUnitMatter) again = make_record (0);
  g_assert_cmpint (reserve (f->db, batch, "b2", 3, again, &other, &error), ==, 0);
  g_assert_error (error, ST_ERROR, ST_ERROR_INTERNAL);
  g_assert_nonnull (strstr (error->message, "discriminator counter collision"));
  g_clear_error (&error);
  assert_units (f->path, 1, 1);
  /* in another batch the same counter is free */
  gint64 batch2 = make_batch (f->db, "WO-M2b");
  g_assert_cmpint (reserve (f->db, batch2, "b2", 3, again, &other, &error), >, 0);
  g_assert_no_error (error);
  assert_units (f->path, 2, 2);

  /* records the schema would not take are refused before the write, by field */
  static const char *const fields[] = { "salt", "verifier", "QR text", "manual pairing code",
                                        "passcode", "discriminator", "unique id", "discovery" };
  for (gsize i = 0; i < G_N_ELEMENTS (fields); i++)
    {
      g_autoptr(StDbUnitMatter) bad = make_record (10 + (gint64) i);
      switch (i)
        {
        case 0: g_bytes_unref (bad->salt); bad->salt = random_bytes (15); break;
        case 1: g_bytes_unref (bad->verifier); bad->verifier = random_bytes (65); break;
        case 2: bad->qr_text[0] = 'X'; break;
        case 3: bad->manual_code[4] = '-'; break;
        case 4: bad->passcode = 99999999; break;
        case 5: bad->discriminator = 4096; break;
        case 6: g_clear_pointer (&bad->unique_id, g_bytes_unref); bad->unique_id = random_bytes (33); break;
        case 7: bad->discovery = 8; break;
        }
      g_assert_cmpint (reserve (f->db, batch, "b9", 9, bad, &other, &error), ==, 0);
      g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
      if (strstr (error->message, fields[i]) == NULL)
        g_error ("%s: %s", fields[i], error->message);
      g_clear_error (&error);
    }
  assert_units (f->path, 2, 2);
  assert_explained (f->db);
}

static void
test_counter (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  gint64 a = make_batch (f->db, "WO-A");
  gint64 b = make_batch (f->db, "WO-B");
  /* fresh batches start at 0, each its own */
  for (gint64 i = 0; i < 3; i++)
    {
      gint64 c = st_db_matter_counter_draw (f->db, a, &error);
      g_assert_no_error (error);
      g_assert_cmpint (c, ==, i);
      g_autoptr(StDbUnitMatter) m = make_record (c);
      g_autofree gchar *uid = g_strdup_printf ("c%" G_GINT64_FORMAT, i);
      gint64 unit = 0;
      g_assert_cmpint (reserve (f->db, a, uid, i + 1, m, &unit, &error), >, 0);
      g_assert_no_error (error);
    }
  g_assert_cmpint (st_db_matter_counter_draw (f->db, b, &error), ==, 0);
  /* a draw that is never recorded (the unit failed before its reservation) */
  g_assert_cmpint (st_db_matter_counter_draw (f->db, a, &error), ==, 3);

  /* after a restart: the batch goes on past the highest recorded counter */
  g_clear_pointer (&f->db, st_db_close);
  f->db = st_db_open (f->path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (st_db_matter_counter_draw (f->db, a, &error), ==, 3);
  g_assert_cmpint (st_db_matter_counter_draw (f->db, a, &error), ==, 4);
  g_assert_cmpint (st_db_matter_counter_draw (f->db, b, &error), ==, 0);
  g_assert_no_error (error);

  /* a second process on the same file draws what this one drew: the later
   * reservation collides, resyncs, and draws past it */
  g_autoptr(StDb) second = st_db_open (f->path, &error);
  g_assert_no_error (error);
  gint64 mine = st_db_matter_counter_draw (f->db, a, &error);     /* 5 */
  gint64 theirs = st_db_matter_counter_draw (second, a, &error);  /* 3: it read the file */
  g_assert_cmpint (mine, ==, 5);
  g_assert_cmpint (theirs, ==, 3);
  g_autoptr(StDbUnitMatter) m5 = make_record (theirs);
  gint64 unit = 0;
  g_assert_cmpint (reserve (second, a, "d1", 10, m5, &unit, &error), >, 0);
  g_assert_no_error (error);
  g_autoptr(StDbUnitMatter) m3 = make_record (3);
  g_assert_cmpint (reserve (f->db, a, "d2", 11, m3, &unit, &error), ==, 0);
  g_assert_error (error, ST_ERROR, ST_ERROR_INTERNAL);
  g_clear_error (&error);
  g_assert_true (st_db_matter_counter_resync (f->db, a, &error));
  g_assert_cmpint (st_db_matter_counter_draw (f->db, a, &error), ==, 6);
  g_assert_true (st_db_matter_counter_resync (second, a, &error));
  g_assert_cmpint (st_db_matter_counter_draw (second, a, &error), ==, 4);
  g_assert_no_error (error);
}

typedef struct {
  const char *what, *sql, *expected;
} Tamper;

static void
test_tamper (Fixture *f, gconstpointer data)
{
  static const Tamper cases[] = {
    { "a passcode rewritten",
      "DROP TRIGGER unit_matter_immutable; UPDATE unit_matter SET passcode = 20202021 WHERE unit_id = {u1}",
      "unit {u1}: its Matter record (passcode, verifier, salt, discriminator or codes) is not the one in the log" },
    { "a verifier rewritten",
      "DROP TRIGGER unit_matter_immutable; UPDATE unit_matter SET verifier = zeroblob (97) WHERE unit_id = {u2}",
      "unit {u2}: its Matter record (passcode, verifier, salt, discriminator or codes) is not the one in the log" },
    { "a QR text and passcode rewritten together",
      "DROP TRIGGER unit_matter_immutable; UPDATE unit_matter SET qr_text = 'MT:Y.K9042C00KA0648G00',"
      " passcode = 20202021, discriminator = 3840 WHERE unit_id = {u1}",
      "unit {u1}: its Matter record (passcode, verifier, salt, discriminator or codes) is not the one in the log" },
    { "a record deleted",
      "DROP TRIGGER unit_matter_no_delete; DELETE FROM unit_matter WHERE unit_id = {u2}",
      "unit {u2}: its Matter record is missing; the log gives it one" },
    { "a record added to a unit that had none",
      "INSERT INTO unit_matter SELECT {u3}, batch_id, vendor_id, product_id, discriminator, NULL,"
      " passcode, iterations, salt, verifier, unique_id, flow, discovery, qr_text, manual_code,"
      " created_at FROM unit_matter WHERE unit_id = {u1}",
      "unit {u3}: it has a Matter record the log does not give it" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree gchar *name = g_strdup_printf ("tamper-%02" G_GSIZE_FORMAT ".db", i);
      g_autofree gchar *path = g_build_filename (f->dir, name, NULL);
      g_autoptr(StDb) db = st_db_open (path, &error);
      g_assert_no_error (error);
      gint64 batch = make_batch (db, "WO-T");
      gint64 u[3] = { 0 };
      for (int k = 0; k < 3; k++)
        {
          g_autoptr(StDbUnitMatter) m = k < 2 ? make_record (k) : NULL;
          g_autofree gchar *uid = g_strdup_printf ("e%d", k);
          g_assert_cmpint (reserve (db, batch, uid, k + 1, m, &u[k], &error), >, 0);
          g_assert_no_error (error);
        }
      assert_explained (db);
      g_autofree gchar *u1 = g_strdup_printf ("%" G_GINT64_FORMAT, u[0]);
      g_autofree gchar *u2 = g_strdup_printf ("%" G_GINT64_FORMAT, u[1]);
      g_autofree gchar *u3 = g_strdup_printf ("%" G_GINT64_FORMAT, u[2]);
      g_autoptr(GString) sql = g_string_new (cases[i].sql);
      g_autoptr(GString) expected = g_string_new (cases[i].expected);
      g_string_replace (sql, "{u1}", u1, 0);
      g_string_replace (sql, "{u2}", u2, 0);
      g_string_replace (sql, "{u3}", u3, 0);
      g_string_replace (expected, "{u1}", u1, 0);
      g_string_replace (expected, "{u2}", u2, 0);
      g_string_replace (expected, "{u3}", u3, 0);
      g_test_message ("%s: %s", cases[i].what, sql->str);
      g_autofree gchar *msg = NULL;
      if (raw_exec (path, sql->str, &msg) != SQLITE_OK)
        g_error ("%s: %s", cases[i].what, msg);

      g_autoptr(GString) report = g_string_new (NULL);
      guint n = 0;
      g_assert_true (st_db_audit_explain (db, report, &n, &error));
      g_assert_cmpuint (n, >=, 1);
      if (strstr (report->str, expected->str) == NULL)
        g_error ("%s: '%s' is not in the replay's report:\n%s", cases[i].what, expected->str, report->str);
      g_autoptr(GString) check = g_string_new (NULL);
      g_assert_false (st_db_check (db, check, &error));
      g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
      g_assert_nonnull (strstr (check->str, expected->str));
    }

  /* without dropping the triggers, the file refuses the change */
  gint64 batch = make_batch (f->db, "WO-T2");
  g_autoptr(StDbUnitMatter) m = make_record (0);
  gint64 unit = 0;
  g_autoptr(GError) error = NULL;
  g_assert_cmpint (reserve (f->db, batch, "f1", 1, m, &unit, &error), >, 0);
  g_autofree gchar *upd = g_strdup_printf ("UPDATE unit_matter SET passcode = 1 WHERE unit_id = %" G_GINT64_FORMAT, unit);
  g_autofree gchar *msg = NULL;
  g_assert_cmpint (raw_exec (f->path, upd, &msg), ==, SQLITE_CONSTRAINT);
  g_assert_nonnull (strstr (msg, "written once"));
  g_clear_pointer (&msg, g_free);
  g_assert_cmpint (raw_exec (f->path, "DELETE FROM unit_matter", &msg), ==, SQLITE_CONSTRAINT);
  assert_explained (f->db);
}

typedef struct {
  gint64 last;
  guint n;
  gint64 batch;
} Walk;

static gboolean
walk_one (const StDbUnitMatter *m, gpointer user_data, GError **error)
{
  Walk *w = user_data;
  g_assert_cmpint (m->unit_id, >, w->last);
  g_assert_cmpint (m->batch_id, ==, w->batch);
  g_assert_cmpint (m->counter, ==, (gint64) w->n);
  w->last = m->unit_id;
  w->n++;
  return TRUE;
}

static void
test_paged (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  gint64 a = make_batch (f->db, "WO-P1");
  gint64 b = make_batch (f->db, "WO-P2");
  guint n = 2 * ST_DB_UNIT_PAGE;
  for (guint i = 0; i < n; i++)
    {
      /* the other batch's units between this one's */
      gint64 batch = i % 3 == 2 ? b : a;
      gint64 c = st_db_matter_counter_draw (f->db, batch, &error);
      g_autoptr(StDbUnitMatter) m = make_record (c);
      g_autofree gchar *uid = g_strdup_printf ("%04x", i);
      gint64 unit = 0;
      g_assert_cmpint (reserve (f->db, batch, uid, i + 1, m, &unit, &error), >, 0);
      g_assert_no_error (error);
    }
  Walk wa = { 0, 0, a }, wb = { 0, 0, b };
  g_assert_true (st_db_unit_matter_foreach (f->db, a, walk_one, &wa, &error));
  g_assert_true (st_db_unit_matter_foreach (f->db, b, walk_one, &wb, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (wa.n + wb.n, ==, n);
  g_assert_cmpuint (wa.n, >, ST_DB_UNIT_PAGE);
  g_assert_cmpuint (wb.n, ==, n / 3);  /* i % 3 == 2 for i < n */
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/db/matter/record", Fixture, NULL, fixture_setup, test_record, fixture_teardown);
  g_test_add ("/db/matter/refused", Fixture, NULL, fixture_setup, test_refused, fixture_teardown);
  g_test_add ("/db/matter/counter", Fixture, NULL, fixture_setup, test_counter, fixture_teardown);
  g_test_add ("/db/matter/tamper", Fixture, NULL, fixture_setup, test_tamper, fixture_teardown);
  g_test_add ("/db/matter/paged", Fixture, NULL, fixture_setup, test_paged, fixture_teardown);
  return g_test_run ();
}
