/* DbCheck and AuditVerify while the service goes on serving (issue 16).
 *
 * /check/serves-meanwhile: a `db check` held after its integrity check
 * (ST_FAULT_CHECK_STALL, a test-only gate of sanitizer builds,
 * db/st-db-check.c) while other clients read the database (`batch list`,
 * `batch show`), ask for the status and log in: each is answered while
 * the check still waits at the gate. A second `db check` and an `audit
 * verify` meanwhile are refused with a message naming the running check;
 * once the gate opens the first check ends with a full report, a client
 * watching CheckProgress got its steps, and a check after it is accepted
 * again. Before the checks ran on a read
 * connection of their own, the first read waited for the whole check (the
 * shared reader's lock), so the gate was still closed at the 60 s limit
 * and this test failed. */
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>

#include "st-test-run.h"

static void
on_check_progress (GDBusConnection *connection, const char *sender, const char *path,
                   const char *interface, const char *signal, GVariant *params, gpointer data)
{
  const char *step = NULL;
  gint64 done = 0, total = 0;
  g_variant_get (params, "(&sxx)", &step, &done, &total);
  g_assert_cmpint (done, >=, 0);
  g_ptr_array_add (data, g_strdup_printf ("%s %" G_GINT64_FORMAT "/%" G_GINT64_FORMAT, step, done, total));
}

static gboolean
st_steps_have (GPtrArray *steps, const char *prefix)
{
  for (guint i = 0; i < steps->len; i++)
    if (g_str_has_prefix (g_ptr_array_index (steps, i), prefix))
      return TRUE;
  return FALSE;
}

static void
test_serves_meanwhile (StFixture *f, gconstpointer data)
{
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 4);
  g_autofree gchar *batch_text = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  g_autofree gchar *gate = g_build_filename (f->tmp, "check-gate", NULL);
  g_autofree gchar *stalled = g_strconcat (gate, ".stalled", NULL);
  g_autofree gchar *knob = g_strconcat ("ST_FAULT_CHECK_STALL=", gate, NULL);
  /* every command with the same service settings: the fixture would
   * restart the service (and end the check) for other ones */
  const char *env[] = { knob, NULL };
  const char *qa_env[] = { knob, "STATION_OPERATOR_PIN=3333", NULL };
  g_assert_true (g_file_set_contents (gate, "", 0, NULL));

  const char *check[] = { "db", "check", NULL };
  g_autoptr(GSubprocess) first = st_start_station (f, env, check);
  for (guint i = 0; i < 1200 && !g_file_test (stalled, G_FILE_TEST_EXISTS); i++)
    g_usleep (50000);
  g_assert_true (g_file_test (stalled, G_FILE_TEST_EXISTS));

  /* a client that watches CheckProgress, as the CLI and the GUI do */
  g_autofree gchar *address = g_strdup_printf ("unix:path=%s/stationd.sock", f->home);
  g_autoptr(GError) error = NULL;
  g_autoptr(GDBusConnection) watcher = g_dbus_connection_new_for_address_sync (
      address, G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT, NULL, NULL, &error);
  g_assert_no_error (error);
  g_autoptr(GPtrArray) steps = g_ptr_array_new_with_free_func (g_free);
  guint sub = g_dbus_connection_signal_subscribe (watcher, NULL, "org.station.Station1", "CheckProgress",
                                                  "/org/station/Station1", NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                                  on_check_progress, steps, NULL);

  /* the service answers meanwhile, from the database too */
  g_autofree gchar *out = NULL, *err = NULL;
  const char *list[] = { "batch", "list", NULL };
  g_assert_cmpint (st_run_stationv (f, env, &out, NULL, list), ==, 0);
  g_assert_nonnull (strstr (out, "WO-TEST-"));
  g_clear_pointer (&out, g_free);
  const char *show[] = { "batch", "show", batch_text, NULL };
  g_assert_cmpint (st_run_stationv (f, env, &out, NULL, show), ==, 0);
  g_assert_nonnull (strstr (out, "WO-TEST-"));
  g_clear_pointer (&out, g_free);
  const char *status[] = { "status", NULL };
  g_assert_cmpint (st_run_stationv (f, env, &out, NULL, status), ==, 0);
  g_clear_pointer (&out, g_free);

  /* one check at a time: the second is refused, naming the first */
  g_assert_cmpint (st_run_stationv (f, env, NULL, &err, check), !=, 0);
  g_assert_nonnull (strstr (err, "cannot start db check: db check (asked by "));
  g_assert_nonnull (strstr (err, "one check at a time"));
  g_clear_pointer (&err, g_free);
  const char *verify[] = { "--operator", "qa", "audit", "verify", NULL };
  g_assert_cmpint (st_run_stationv (f, qa_env, NULL, &err, verify), !=, 0);
  g_assert_nonnull (strstr (err, "cannot start audit verify: db check (asked by "));
  g_clear_pointer (&err, g_free);

  /* all that while the first check waited at the gate (not timed out) */
  g_assert_true (g_file_test (stalled, G_FILE_TEST_EXISTS));
  g_assert_cmpint (g_unlink (gate), ==, 0);
  g_assert_cmpint (st_finish_station (first, &out, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "integrity: ok\n"));
  g_assert_nonnull (strstr (out, "records: ok"));
  g_clear_pointer (&out, g_free);
  /* its progress reached the watcher, the replay's end included */
  gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;
  while (!st_steps_have (steps, "replay ") && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, FALSE) || (g_usleep (10000), TRUE);
  for (guint i = 0; i < steps->len; i++)
    g_test_message ("CheckProgress %s", (const char *) g_ptr_array_index (steps, i));
  g_assert_true (st_steps_have (steps, "checks "));
  g_assert_true (st_steps_have (steps, "replay "));
  g_dbus_connection_signal_unsubscribe (watcher, sub);

  /* the check ended: the next one is accepted (no gate now) */
  g_assert_cmpint (st_run_stationv (f, qa_env, &out, NULL, verify), ==, 0);
  g_assert_nonnull (strstr (out, "audit log verified"));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_stationv (f, env, &out, NULL, check), ==, 0);
  g_assert_nonnull (strstr (out, "records: ok"));
}

/* Whether process @pid runs (a zombie does not). */
static gboolean
st_pid_runs (GPid pid)
{
  g_autofree gchar *path = g_strdup_printf ("/proc/%d/stat", (int) pid);
  g_autofree gchar *stat = NULL;
  if (!g_file_get_contents (path, &stat, NULL, NULL))
    return FALSE;
  const char *end = strrchr (stat, ')');
  return end != NULL && end[1] == ' ' && end[2] != 'Z';
}

/* /check/stop-during-check: SIGTERM while a db check runs. The service
 * says it waits for the check (its thread uses the engine and the
 * database), then stops cleanly, exit status 0 under ASan: it does not
 * free them under the check's feet. */
static void
test_stop_during_check (StFixture *f, gconstpointer data)
{
  g_autofree gchar *gate = g_build_filename (f->tmp, "check-gate", NULL);
  g_autofree gchar *stalled = g_strconcat (gate, ".stalled", NULL);
  g_autofree gchar *knob = g_strconcat ("ST_FAULT_CHECK_STALL=", gate, NULL);
  const char *env[] = { knob, NULL };
  const char *check[] = { "db", "check", NULL };
  g_assert_true (g_file_set_contents (gate, "", 0, NULL));
  g_autoptr(GSubprocess) first = st_start_station (f, env, check);
  for (guint i = 0; i < 1200 && !g_file_test (stalled, G_FILE_TEST_EXISTS); i++)
    g_usleep (50000);
  g_assert_true (g_file_test (stalled, G_FILE_TEST_EXISTS));
  GPid pid = st_service_pid (f);
  g_assert_cmpint (pid, >, 0);
  g_assert_cmpint (kill (pid, SIGTERM), ==, 0);
  /* it says it waits for the check, which still waits at the gate */
  gboolean waits = FALSE;
  for (guint i = 0; i < 600 && !waits; i++)
    {
      g_autofree gchar *log = st_service_read_log (f);
      waits = log != NULL && strstr (log, "waiting for db check (asked by ") != NULL;
      if (!waits)
        g_usleep (50000);
    }
  g_assert_true (waits);
  g_assert_true (st_pid_runs (pid));
  g_assert_true (g_file_test (stalled, G_FILE_TEST_EXISTS));
  g_assert_cmpint (g_unlink (gate), ==, 0);
  g_autofree gchar *out = NULL, *err = NULL;
  int rc = st_finish_station (first, &out, &err);
  g_test_message ("db check during the stop: exit status %d", rc);
  /* the reply may or may not leave before the service exits; the
   * service must not die of a signal (128 + signal, its log appended) */
  g_assert_cmpint (rc, <, 128);
  g_assert_null (strstr (err, "Sanitizer"));
  g_autofree gchar *log = st_service_read_log (f);
  g_assert_null (strstr (log, "Sanitizer"));
  /* it had its SIGTERM: once the check ends it stops by itself, cleanly.
   * Waited for without a second signal, which could land after the
   * service has let go of its handler on the way out. */
  g_autoptr(GSubprocess) service = g_steal_pointer (&f->service);
  g_assert_true (g_subprocess_wait (service, NULL, NULL));
  g_assert_false (g_subprocess_get_if_signaled (service));
  g_assert_cmpint (g_subprocess_get_exit_status (service), ==, 0);
}

int
main (int argc, char **argv)
{
  st_test_init (&argc, &argv);
  st_test_add_station ("/check/serves-meanwhile", NULL, test_serves_meanwhile);
  st_test_add_station ("/check/stop-during-check", NULL, test_stop_during_check);
  return g_test_run ();
}
