/* DbCheck and AuditVerify while the service goes on serving (issue 16).
 *
 * /check/serves-meanwhile: a `db check` held after its integrity check
 * (ST_FAULT_CHECK_STALL, a test-only gate of sanitizer builds,
 * db/st-db-check.c) while other clients read the database (`batch list`,
 * `batch show`), ask for the status and log in: each is answered while
 * the check still waits at the gate. A second `db check` and an `audit
 * verify` meanwhile are refused with a message naming the running check;
 * once the gate opens the first check ends with a full report, and a
 * check after it is accepted again. Before the checks ran on a read
 * connection of their own, the first read waited for the whole check (the
 * shared reader's lock), so the gate was still closed at the 60 s limit
 * and this test failed. */
#include <glib/gstdio.h>
#include <string.h>

#include "st-test-run.h"

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

  /* the check ended: the next one is accepted (no gate now) */
  g_assert_cmpint (st_run_stationv (f, qa_env, &out, NULL, verify), ==, 0);
  g_assert_nonnull (strstr (out, "audit log verified"));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_stationv (f, env, &out, NULL, check), ==, 0);
  g_assert_nonnull (strstr (out, "records: ok"));
}

int
main (int argc, char **argv)
{
  st_test_init (&argc, &argv);
  st_test_add_station ("/check/serves-meanwhile", NULL, test_serves_meanwhile);
  return g_test_run ();
}
