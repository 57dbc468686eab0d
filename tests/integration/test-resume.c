/* Units interrupted with their certificate possibly on the device, finished
 * in a LATER `batch run` of the same batch when their device comes back
 * (DESIGN.md, crash recovery): the station re-identifies the device by uid,
 * reads slot 1, and
 *   - finishes the unit when the device holds the recorded certificate (or
 *     still holds the key it was made for) and proves possession: no second
 *     certificate;
 *   - voids the certificate when the device does not hold it (it came back
 *     blank) and issues a new one: never two live certificates for a uid.
 * Real parts: the station CLI killed with SIGKILL at a fault point, a
 * SoftHSM2 token, station-devsim devices on pseudo-terminals whose --state
 * files say what each device committed. */
#include <signal.h>
#include <string.h>

#include "st-test-run.h"

/* `batch run` of one unit on @port; returns the exit status. */
static int
st_resume_run (StFixture *f, const char *batch, const char *port, gchar **out, gchar **err)
{
  return st_run_station (f, out, err, "batch", "run", batch, "--port", port, "--units", "1",
                         "--wait", "10", NULL);
}

/* `batch run` on @port killed by the fault point @point; returns the uid of
 * the unit it interrupted. */
static gchar *
st_resume_crash (StFixture *f, const char *batch, const char *port, const char *point)
{
  const char *args[] = { "batch", "run", batch, "--port", port, "--units", "1", "--wait", "10", NULL };
  g_autofree gchar *crash = g_strdup_printf ("STATION_CRASH_AT=%s", point);
  const char *env[] = { crash, NULL };
  g_autoptr(GSubprocess) proc = st_start_station (f, env, args);
  g_autofree gchar *err = NULL;
  g_assert_cmpint (st_finish_station (proc, NULL, &err), ==, 128 + SIGKILL);
  g_autofree gchar *reached = g_strdup_printf ("fault point %s reached", point);
  g_assert_nonnull (strstr (err, reached));
  g_autofree gchar *uid = st_sql (f, "SELECT uid FROM units WHERE state = 'issued'");
  g_assert_cmpuint (strlen (uid), >, 0);
  g_assert_null (strchr (uid, '\n'));
  return g_steal_pointer (&uid);
}

/* A run in between, on another device: the interrupted unit is recovered
 * (its certificate unconfirmed, not voided) but its device is not there. */
static void
st_resume_run_other_device (StFixture *f, const char *batch, const char *uid, guint seed)
{
  g_autofree gchar *s = g_strdup_printf ("%u", seed);
  g_autofree gchar *port = st_start_devsim (f, "--units", "1", "--seed", s, NULL);
  g_autofree gchar *out = NULL;
  g_assert_cmpint (st_resume_run (f, batch, port, &out, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "Recovered from an earlier interruption"));
  g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, 1);
  g_assert_cmpuint (st_count_lines (out, "completed the unit interrupted"), ==, 0);
  g_autofree gchar *sql = g_strdup_printf ("SELECT state FROM certificates WHERE uid = '%s'", uid);
  g_autofree gchar *state = st_sql (f, sql);
  g_assert_cmpstr (state, ==, "unconfirmed");
}

/* The certificates of @uid, as "state state ..." in id order. */
static gchar *
st_resume_cert_states (StFixture *f, const char *uid)
{
  g_autofree gchar *sql = g_strdup_printf ("SELECT group_concat(state, ' ') FROM "
                                           "(SELECT state FROM certificates WHERE uid = '%s' ORDER BY id)", uid);
  return st_sql (f, sql);
}

/* Killed after WRITE of slot 1: the device (still powered, in its socket
 * of the first run) holds the certificate and key uncommitted. A later run
 * without it, then one with it: the unit is finished with the same
 * certificate. */
static void
test_after_write_cert (StFixture *f, gconstpointer data)
{
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 3);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  g_autofree gchar *state = g_build_filename (f->tmp, "sim1.json", NULL);
  g_autofree gchar *port = st_start_devsim (f, "--units", "1", "--seed", "801", "--state", state, NULL);
  g_autofree gchar *uid = st_resume_crash (f, id, port, "after-write-cert");
  g_autofree gchar *serial_sql = g_strdup_printf ("SELECT serial FROM certificates WHERE uid = '%s'", uid);
  g_autofree gchar *serial = st_sql (f, serial_sql);
  st_resume_run_other_device (f, id, uid, 802);

  g_autofree gchar *out = NULL;
  g_assert_cmpint (st_resume_run (f, id, port, &out, NULL), ==, 0);
  g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, 1);
  g_assert_cmpuint (st_count_lines (out, "completed the unit interrupted at 'issued'"), ==, 1);
  g_assert_nonnull (strstr (out, uid));
  /* No second certificate: the recorded one is active and on the device. */
  g_autofree gchar *states = st_resume_cert_states (f, uid);
  g_assert_cmpstr (states, ==, "active");
  g_autofree gchar *serial_after = st_sql (f, serial_sql);
  g_assert_cmpstr (serial_after, ==, serial);
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM units WHERE state = 'done'"), ==, 2);
  st_stop_devsims (f);
  const char *states_files[] = { state, NULL };
  g_assert_cmpuint (st_check_devices_on_record (f, states_files, TRUE), ==, 1);
  st_check_db_invariants (f);
}

/* Killed after COMMIT: the device committed, the station never recorded
 * DONE; the operator put the device aside. Two runs later it is put back
 * into a socket: the unit is finished, no second certificate. */
static void
test_after_commit (StFixture *f, gconstpointer data)
{
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 3);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  g_autofree gchar *state = g_build_filename (f->tmp, "sim1.json", NULL);
  g_autofree gchar *port = st_start_devsim (f, "--units", "1", "--seed", "803", "--state", state, NULL);
  g_autofree gchar *uid = st_resume_crash (f, id, port, "after-commit");
  st_stop_devsims (f);
  st_resume_run_other_device (f, id, uid, 804);
  st_resume_run_other_device (f, id, uid, 805);

  g_autofree gchar *back = st_start_devsim (f, "--state", state, "--present", "1", NULL);
  g_autofree gchar *out = NULL;
  g_assert_cmpint (st_resume_run (f, id, back, &out, NULL), ==, 0);
  g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, 1);
  g_assert_cmpuint (st_count_lines (out, "completed the unit interrupted at 'issued'"), ==, 1);
  g_autofree gchar *states = st_resume_cert_states (f, uid);
  g_assert_cmpstr (states, ==, "active");
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM units WHERE state = 'done'"), ==, 3);
  st_stop_devsims (f);
  const char *states_files[] = { state, NULL };
  g_assert_cmpuint (st_check_devices_on_record (f, states_files, TRUE), ==, 1);
  st_check_db_invariants (f);
}

/* Killed after WRITE of slot 1, and the device lost power before it
 * committed: it comes back blank in a later run. Its old certificate is
 * known not to be on it: voided, and a new one issued; one live
 * certificate for the uid at every moment. */
static void
test_blank_device (StFixture *f, gconstpointer data)
{
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 3);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  g_autofree gchar *state = g_build_filename (f->tmp, "sim1.json", NULL);
  g_autofree gchar *port = st_start_devsim (f, "--units", "1", "--seed", "806", "--state", state, NULL);
  g_autofree gchar *uid = st_resume_crash (f, id, port, "after-write-cert");
  st_stop_devsims (f);  /* the uncommitted key and certificate are gone */
  st_resume_run_other_device (f, id, uid, 807);

  g_autofree gchar *back = st_start_devsim (f, "--state", state, "--present", "1", NULL);
  g_autofree gchar *out = NULL, *err = NULL;
  g_assert_cmpint (st_resume_run (f, id, back, &out, &err), ==, 0);
  g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, 1);
  g_assert_nonnull (strstr (err, "voided the certificate of the unit interrupted at 'issued'"));
  g_autofree gchar *states = st_resume_cert_states (f, uid);
  g_assert_cmpstr (states, ==, "voided active");
  g_autofree gchar *old_sql = g_strdup_printf ("SELECT u.state || ' ' || u.fail_step FROM units u JOIN certificates c "
                                               "ON c.unit_id = u.id WHERE c.uid = '%s' AND c.state = 'voided'", uid);
  g_autofree gchar *old = st_sql (f, old_sql);
  g_assert_cmpstr (old, ==, "failed resume");
  st_stop_devsims (f);
  const char *states_files[] = { state, NULL };
  g_assert_cmpuint (st_check_devices_on_record (f, states_files, TRUE), ==, 1);
  st_check_db_invariants (f);
}

/* Item of the audit trail: every acting command that ends normally leaves
 * the log covered by a signed checkpoint ("shutdown"); without the HSM PIN
 * it says the entries wait, and the next command with it signs one. */
static void
test_checkpoint_at_exit (StFixture *f, gconstpointer data)
{
  const char *head = "SELECT max(seq) FROM audit";
  const char *covered = "SELECT max(seq) FROM audit_checkpoints";
  g_autofree gchar *profile = st_profile_path ("example-device-csr.profile");
  g_assert_cmpint (st_run_station (f, NULL, NULL, "batch", "create", "--profile", profile,
                                   "--work-order", "WO-EXIT-1", "--quantity", "1", NULL), ==, 0);
  g_assert_cmpint (st_sql_int (f, covered), ==, st_sql_int (f, head));
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM audit_checkpoints WHERE reason = 'shutdown'"), >=, 1);

  /* Without the HSM PIN: no prompt, a note, the entries wait. */
  gint64 before = st_sql_int (f, head);
  g_unsetenv ("STATION_HSM_PIN");
  g_autofree gchar *err = NULL;
  int rc = st_run_station (f, NULL, &err, "batch", "create", "--profile", profile,
                           "--work-order", "WO-EXIT-2", "--quantity", "1", NULL);
  g_setenv ("STATION_HSM_PIN", ST_TEST_PIN, TRUE);
  g_assert_cmpint (rc, ==, 0);
  g_assert_cmpint (st_sql_int (f, head), >, before);
  g_assert_cmpint (st_sql_int (f, covered), ==, before);
  g_assert_nonnull (strstr (err, "wait for a signed checkpoint"));

  /* A failing command adds nothing to sign at exit; the next normal one
   * with the PIN covers what waited. */
  g_assert_cmpint (st_run_station (f, NULL, NULL, "batch", "close", "999", NULL), !=, 0);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "batch", "list", NULL), ==, 0);
  g_assert_cmpint (st_sql_int (f, covered), ==, st_sql_int (f, head));
  g_autofree gchar *vout = NULL;
  g_assert_cmpint (st_run_station (f, &vout, NULL, "audit", "verify", NULL), ==, 0);
  st_check_db_invariants (f);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_setenv ("STATION_HSM_PIN", ST_TEST_PIN, TRUE);
  g_test_add ("/resume/after-write-cert-later-run", StFixture, NULL, st_fixture_setup,
              test_after_write_cert, st_fixture_teardown);
  g_test_add ("/resume/after-commit-later-run", StFixture, NULL, st_fixture_setup,
              test_after_commit, st_fixture_teardown);
  g_test_add ("/resume/blank-device-voided-reissued", StFixture, NULL, st_fixture_setup,
              test_blank_device, st_fixture_teardown);
  g_test_add ("/audit/checkpoint-at-exit", StFixture, NULL, st_fixture_setup,
              test_checkpoint_at_exit, st_fixture_teardown);
  return g_test_run ();
}
