/* Crash recovery: the station is killed with SIGKILL (as by a power cut) at
 * every step boundary of the unit pipeline, and at random moments of a
 * 20-unit batch on four sockets; after every kill, and after the restarts
 * that finish the batch, the invariants of docs/architecture.md hold:
 *   - every certificate that a device holds is on record and not voided;
 *   - no uid has two live certificates; serials are unique;
 *   - PRAGMA integrity_check is ok and `station db check` passes;
 * and in the end no certificate is lost: every device holds a certificate
 * that is on record and active, one per uid, and every unit is accounted
 * for. Real parts: the station CLI, a SoftHSM2 token, station-devsim
 * devices on pseudo-terminals whose --state files say what each device
 * committed. */
#include <json-glib/json-glib.h>
#include <signal.h>
#include <string.h>

#include "st-test-run.h"
#include "st-test-json.h"

#define ST_CRASH_PORTS 2
#define ST_CRASH_UNITS_PER_PORT 2

#define ST_LOOP_PORTS 4
#define ST_LOOP_UNITS_PER_PORT 5
#define ST_LOOP_KILLS 10

typedef struct {
  gint64 batch;
  gchar *id;
  gchar *state[ST_LOOP_PORTS + 1];  /* NULL-terminated */
  gchar *port[ST_LOOP_PORTS];
  guint n_ports;
  guint units_per_port;
} StCrashLine;

static void
st_crash_line_clear (StCrashLine *l)
{
  g_free (l->id);
  for (guint i = 0; i < ST_LOOP_PORTS; i++)
    {
      g_free (l->state[i]);
      g_free (l->port[i]);
    }
}

static void
st_crash_line_start (StFixture *f, StCrashLine *l, guint n_ports, guint units_per_port, guint seed0)
{
  memset (l, 0, sizeof *l);
  l->n_ports = n_ports;
  l->units_per_port = units_per_port;
  l->batch = st_create_batch (f, "example-device-csr.profile", n_ports * units_per_port);
  l->id = g_strdup_printf ("%" G_GINT64_FORMAT, l->batch);
  g_autofree gchar *units = g_strdup_printf ("%u", units_per_port);
  for (guint i = 0; i < n_ports; i++)
    {
      g_autofree gchar *name = g_strdup_printf ("sim%u.json", i + 1);
      g_autofree gchar *seed = g_strdup_printf ("%u", seed0 + i);
      l->state[i] = g_build_filename (f->tmp, name, NULL);
      l->port[i] = st_start_devsim (f, "--units", units, "--seed", seed, "--state", l->state[i], NULL);
    }
}

/* `batch run` on every socket of @l until the batch is done (or a socket
 * waits @wait_s for a device in vain). */
static GSubprocess *
st_crash_line_run (StFixture *f, StCrashLine *l, const char *crash_at, guint units, guint wait_s)
{
  g_autoptr(GPtrArray) args = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (args, g_strdup ("batch"));
  g_ptr_array_add (args, g_strdup ("run"));
  g_ptr_array_add (args, g_strdup (l->id));
  for (guint i = 0; i < l->n_ports; i++)
    {
      g_ptr_array_add (args, g_strdup ("--port"));
      g_ptr_array_add (args, g_strdup (l->port[i]));
    }
  if (units > 0)
    {
      g_ptr_array_add (args, g_strdup ("--units"));
      g_ptr_array_add (args, g_strdup_printf ("%u", units));
    }
  g_ptr_array_add (args, g_strdup ("--wait"));
  g_ptr_array_add (args, g_strdup_printf ("%u", wait_s));
  g_ptr_array_add (args, NULL);
  g_autofree gchar *crash = crash_at != NULL ? g_strdup_printf ("STATION_CRASH_AT=%s", crash_at) : NULL;
  const char *env[] = { crash, NULL };
  return st_start_station (f, env, (const char *const *) args->pdata);
}

/* The invariants that hold at every instant, a kill included. */
static void
st_check_after_kill (StFixture *f, StCrashLine *l)
{
  st_check_devices_on_record (f, (const char *const *) l->state, FALSE);
  st_check_db_invariants (f);
}

/* The 1-based position of @uid in a station-devsim state file, 0 if absent. */
static guint
st_state_file_index (const char *path, const char *uid)
{
  g_autoptr(JsonParser) parser = st_test_load_json (path);
  JsonArray *devices = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)), "devices");
  for (guint i = 0; i < json_array_get_length (devices); i++)
    if (g_strcmp0 (json_object_get_string_member (json_array_get_object_element (devices, i), "uid"), uid) == 0)
      return i + 1;
  return 0;
}

/* Devices that hold a committed certificate that is still unconfirmed: the
 * station was killed after their closing HELLO, the operator swapped them.
 * Each is put back into a socket (as a lead would, to settle them), and the
 * station must finish its unit. Returns how many there were. */
static guint
st_settle_unconfirmed (StFixture *f, StCrashLine *l)
{
  g_autofree gchar *uids = st_sql (f, "SELECT group_concat(uid, ' ') FROM certificates WHERE state = 'unconfirmed'");
  if (*uids == '\0')
    return 0;
  g_auto(GStrv) list = g_strsplit (uids, " ", -1);
  /* The simulators must not run while their state files are reused. */
  st_stop_devsims (f);
  guint settled = 0;
  for (guint u = 0; list[u] != NULL; u++)
    for (guint s = 0; l->state[s] != NULL; s++)
      {
        guint index = st_state_file_index (l->state[s], list[u]);
        if (index == 0)
          continue;
        g_autofree gchar *n = g_strdup_printf ("%u", index);
        g_autofree gchar *port = st_start_devsim (f, "--state", l->state[s], "--present", n, NULL);
        g_autofree gchar *out = NULL;
        int rc = st_run_station (f, &out, NULL, "batch", "run", l->id, "--port", port, "--units", "1",
                                 "--wait", "10", NULL);
        g_assert_cmpint (rc, ==, 0);
        g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, 1);
        g_assert_cmpuint (st_count_lines (out, "resumed after an interruption"), ==, 1);
        st_stop_devsims (f);
        settled++;
      }
  g_assert_cmpuint (settled, ==, g_strv_length (list));
  return settled;
}

/* Nothing lost: every device holds an active certificate on record, one per
 * uid, and every unit of the batch is done (or failed with its certificate
 * voided, as a crash before issuance leaves it). */
static void
st_check_nothing_lost (StFixture *f, StCrashLine *l)
{
  guint n_devices = l->n_ports * l->units_per_port;
  g_assert_cmpuint (st_check_devices_on_record (f, (const char *const *) l->state, TRUE), ==, n_devices);
  g_autofree gchar *done_sql = g_strdup_printf ("SELECT count(*) FROM units WHERE batch_id = %s AND state = 'done'", l->id);
  g_assert_cmpint (st_sql_int (f, done_sql), ==, n_devices);
  g_autofree gchar *open_sql = g_strdup_printf ("SELECT count(*) FROM units WHERE batch_id = %s "
                                                "AND state IN ('started','issuing','issued')", l->id);
  g_assert_cmpint (st_sql_int (f, open_sql), ==, 0);
  /* The certificates of the batch: active (one per device) or voided. */
  g_autofree gchar *active_sql = g_strdup_printf ("SELECT count(*) FROM certificates WHERE batch_id = %s AND state = 'active'", l->id);
  g_assert_cmpint (st_sql_int (f, active_sql), ==, n_devices);
  g_autofree gchar *other_sql = g_strdup_printf ("SELECT count(*) FROM certificates WHERE batch_id = %s "
                                                 "AND state NOT IN ('active','voided')", l->id);
  g_assert_cmpint (st_sql_int (f, other_sql), ==, 0);
  /* A failed unit is one the crash interrupted before its certificate could
   * reach the device, or a device met again after the crash. */
  g_autofree gchar *failed_sql = g_strdup_printf ("SELECT count(*) FROM units u LEFT JOIN certificates c ON c.unit_id = u.id "
                                                  "WHERE u.batch_id = %s AND u.state = 'failed' "
                                                  "AND c.state IS NOT NULL AND c.state <> 'voided'", l->id);
  g_assert_cmpint (st_sql_int (f, failed_sql), ==, 0);
  st_check_db_invariants (f);
}

static void
test_crash_point (StFixture *f, gconstpointer data)
{
  const char *point = data;
  StCrashLine l;
  st_crash_line_start (f, &l, ST_CRASH_PORTS, ST_CRASH_UNITS_PER_PORT, 710);

  g_autoptr(GSubprocess) crashed = st_crash_line_run (f, &l, point, 0, 10);
  g_autofree gchar *err = NULL;
  g_assert_cmpint (st_finish_station (crashed, NULL, &err), ==, 128 + SIGKILL);
  g_autofree gchar *reached = g_strdup_printf ("fault point %s reached", point);
  g_assert_nonnull (strstr (err, reached));
  st_check_after_kill (f, &l);

  /* Restart on the same sockets; the batch runs to its end. */
  g_autoptr(GSubprocess) again = st_crash_line_run (f, &l, NULL, 0, 3);
  g_autofree gchar *out = NULL;
  int rc = st_finish_station (again, &out, NULL);
  g_assert_nonnull (strstr (out, "Recovered from an earlier interruption"));
  st_check_after_kill (f, &l);

  /* Killed after the closing HELLO: the operator saw no result, but the
   * simulator swapped the device; its certificate waits, unconfirmed, not
   * voided, until the device is seen again. */
  guint unconfirmed = st_settle_unconfirmed (f, &l);
  if (g_strcmp0 (point, "before-done") == 0)
    g_assert_cmpuint (unconfirmed, >=, 1);  /* the other socket may have got that far too */
  else
    {
      g_assert_cmpuint (unconfirmed, ==, 0);
      g_assert_cmpint (rc, ==, 0);
    }
  st_check_nothing_lost (f, &l);
  st_crash_line_clear (&l);
}

/* SIGKILL at random moments (seeded, logged) of a 20-unit batch on four
 * sockets, restarting until every unit is done. */
static void
test_random_kills (StFixture *f, gconstpointer data)
{
  guint32 seed = g_getenv ("ST_CRASH_SEED") != NULL
                   ? (guint32) g_ascii_strtoull (g_getenv ("ST_CRASH_SEED"), NULL, 10)
                   : (guint32) g_test_rand_int ();
  g_test_message ("random kills: seed %u (set ST_CRASH_SEED to replay)", seed);
  g_autoptr(GRand) rand = g_rand_new_with_seed (seed);
  StCrashLine l;
  st_crash_line_start (f, &l, ST_LOOP_PORTS, ST_LOOP_UNITS_PER_PORT, 720);
  g_autofree gchar *done_sql = g_strdup_printf ("SELECT count(*) FROM units WHERE batch_id = %s AND state = 'done'", l.id);
  guint n_units = ST_LOOP_PORTS * ST_LOOP_UNITS_PER_PORT;

  /* Each run may handle more units per socket than the socket has left:
   * who was interrupted where is random. A socket with no device left
   * gives up after a short wait. */
  guint per_port = ST_LOOP_UNITS_PER_PORT + 2;
  guint kills = 0, runs = 0;
  gint64 done = 0;
  for (guint k = 0; k < ST_LOOP_KILLS && done < n_units; k++)
    {
      guint delay_ms = (guint) g_rand_int_range (rand, 20, 700);
      g_autoptr(GSubprocess) proc = st_crash_line_run (f, &l, NULL, per_port, 3);
      runs++;
      g_usleep (delay_ms * 1000);
      /* the service runs the line: it is the one killed (its client sees
       * the connection go and exits 2) */
      gboolean running = st_service_pid (f) != 0;
      st_service_kill (f);
      int rc = st_finish_station (proc, NULL, NULL);
      done = st_sql_int (f, done_sql);
      g_test_message ("run %u: service SIGKILLed after %u ms, client exit %d, %" G_GINT64_FORMAT
                      " of %u units done", runs, delay_ms, rc, done, n_units);
      if (running && rc != 0)
        kills++;
      st_check_after_kill (f, &l);
    }
  /* The last run, left alone, finishes the batch. */
  if (done < n_units)
    {
      g_autoptr(GSubprocess) proc = st_crash_line_run (f, &l, NULL, per_port, 3);
      runs++;
      int rc = st_finish_station (proc, NULL, NULL);
      g_assert_cmpint (rc, !=, 128 + SIGKILL);
      done = st_sql_int (f, done_sql);
      g_test_message ("run %u: no kill, exit %d, %" G_GINT64_FORMAT " of %u units done", runs, rc, done, n_units);
      st_check_after_kill (f, &l);
    }
  g_test_message ("%u runs, %u of them killed", runs, kills);
  g_assert_cmpuint (kills, >, 0);
  guint settled = st_settle_unconfirmed (f, &l);
  g_test_message ("%u unconfirmed certificates settled by presenting their device again", settled);
  st_check_nothing_lost (f, &l);
  st_crash_line_clear (&l);
}

/* The line belongs to the service; its client only watches. A client killed
 * mid-batch ends its session, and the line stops as `batch stop` stops it:
 * the units in flight finish or fail safely, none is lost or made twice.
 * The next `batch run` finishes the batch. */
static void
test_client_killed (StFixture *f, gconstpointer data)
{
  StCrashLine l;
  st_crash_line_start (f, &l, ST_CRASH_PORTS, ST_CRASH_UNITS_PER_PORT, 730);
  g_autoptr(GSubprocess) client = st_crash_line_run (f, &l, NULL, 0, 10);
  GPid service = st_service_pid (f);
  /* a unit or more through, then the client goes */
  g_autofree gchar *done_sql = g_strdup_printf ("SELECT count(*) FROM units WHERE batch_id = %s "
                                                "AND state = 'done'", l.id);
  for (guint i = 0; i < 400 && st_sql_int (f, done_sql) == 0; i++)
    g_usleep (25 * 1000);
  g_subprocess_force_exit (client);
  g_assert_cmpint (st_finish_station (client, NULL, NULL), ==, 128 + SIGKILL);
  /* the service lives on, and its line stops */
  gboolean idle = FALSE;
  for (guint i = 0; i < 400 && !idle; i++)
    {
      g_autofree gchar *out = NULL;
      g_assert_cmpint (st_run_station (f, &out, NULL, "status", NULL), ==, 0);
      idle = strstr (out, "line        idle") != NULL;
      if (!idle)
        g_usleep (50 * 1000);
    }
  g_assert_true (idle);
  g_assert_cmpint (st_service_pid (f), ==, service);
  g_autofree gchar *log = st_service_read_log (f);
  g_assert_nonnull (strstr (log, "the session that started the line of batch"));
  gint64 done = st_sql_int (f, done_sql);
  g_assert_cmpint (done, <, ST_CRASH_PORTS * ST_CRASH_UNITS_PER_PORT);
  st_check_after_kill (f, &l);

  /* a new client runs the rest */
  g_autoptr(GSubprocess) again = st_crash_line_run (f, &l, NULL, 0, 3);
  g_assert_cmpint (st_finish_station (again, NULL, NULL), ==, 0);
  st_settle_unconfirmed (f, &l);
  st_check_nothing_lost (f, &l);
  st_crash_line_clear (&l);
}

int
main (int argc, char **argv)
{
  st_test_init (&argc, &argv);
  static const char *points[] = {
    "after-reserve", "after-sign", "after-issued", "after-write-cert", "after-commit", "before-done",
  };
  for (guint i = 0; i < G_N_ELEMENTS (points); i++)
    {
      g_autofree gchar *path = g_strdup_printf ("/crash/point/%s", points[i]);
      st_test_add_station (path, points[i], test_crash_point);
    }
  st_test_add_station ("/crash/random-kills", NULL, test_random_kills);
  st_test_add_station ("/crash/client-killed", NULL, test_client_killed);
  return g_test_run ();
}
