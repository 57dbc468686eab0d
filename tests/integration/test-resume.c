/* Units interrupted with their certificate possibly on the device, finished
 * in a LATER `batch run` of the same batch when their device comes back
 * (docs/architecture.md, The unit pipeline): the station re-identifies the device by uid,
 * reads slot 1, and
 *   - finishes the unit when the device holds the recorded certificate (or
 *     still holds the key it was made for) and proves possession: no second
 *     certificate;
 *   - does not void the certificate when the device does not hold it (it
 *     came back blank: or is it a clone?): the unit is disputed, the device
 *     refused; once a lead voids the certificate (unit resolve --void), the
 *     device is provisioned anew: never two live certificates for a uid
 *     (tests/integration/test-dispute.c has the clone).
 * Real parts: the station CLI killed with SIGKILL at a fault point, a
 * SoftHSM2 token, station-devsim devices on pseudo-terminals whose --state
 * files say what each device committed. */
#include <json-glib/json-glib.h>
#include <signal.h>
#include <string.h>

#include "st-test-run.h"
#include "st-test-json.h"

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

/* One test's batch (quantity 3) and its first device, on a socket of its
 * own, whose --state file says what it committed. */
typedef struct {
  gchar *id;     /* the batch */
  gchar *state;  /* the first device's state file */
  gchar *port;
} StResume;

static void
st_resume_clear (StResume *r)
{
  g_free (r->id);
  g_free (r->state);
  g_free (r->port);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (StResume, st_resume_clear)

/* @profile: a name in profiles/ or a path; @fault: a station-devsim fault
 * of that device, or NULL. */
static void
st_resume_begin (StFixture *f, StResume *r, const char *profile, const char *seed, const char *fault)
{
  r->id = g_strdup_printf ("%" G_GINT64_FORMAT, st_create_batch (f, profile, 3));
  r->state = g_build_filename (f->tmp, "sim1.json", NULL);
  r->port = st_start_devsim (f, "--units", "1", "--seed", seed, "--state", r->state,
                             fault != NULL ? "--fault" : NULL, fault, NULL);
}

/* The first device put back into a socket, as its state file says. */
static gchar *
st_resume_put_back (StFixture *f, StResume *r)
{
  return st_start_devsim (f, "--state", r->state, "--present", "1", NULL);
}

/* A run on @port, where the device of @uid is back holding its recorded
 * certificate: the unit interrupted at @at is completed with it, no second
 * certificate. */
static void
st_resume_run_completes (StFixture *f, StResume *r, const char *port, const char *uid, const char *at)
{
  g_autofree gchar *out = NULL;
  g_assert_cmpint (st_resume_run (f, r->id, port, &out, NULL), ==, 0);
  g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, 1);
  g_autofree gchar *completed = g_strdup_printf ("completed the unit interrupted at %s", at);
  g_assert_cmpuint (st_count_lines (out, completed), ==, 1);
  g_assert_nonnull (strstr (out, uid));
  g_autofree gchar *states = st_resume_cert_states (f, uid);
  g_assert_cmpstr (states, ==, "active");
}

/* A run on @port, where the device of @uid is back blank: the certificate
 * of the unit interrupted at @at is not voided on its word (it could be a
 * clone of a device that holds it), the unit is disputed and the device
 * refused. The old unit ends as @old_unit ("state fail_step": a unit left
 * 'issued' fails at 'resume', a failed one keeps its failure). A lead voids
 * it, and the device, put back, gets a new certificate; one live
 * certificate for the uid. */
static void
st_resume_run_reissues (StFixture *f, StResume *r, const char *port, const char *uid, const char *at,
                        const char *old_unit)
{
  g_autofree gchar *out = NULL, *err = NULL;
  g_assert_cmpint (st_resume_run (f, r->id, port, &out, &err), ==, 1);
  g_assert_cmpuint (st_count_lines (out, " REFUSED "), ==, 1);
  g_assert_cmpuint (st_count_lines (out, "the unit is disputed; set this device aside and ask a lead"), ==, 1);
  g_assert_nonnull (strstr (err, "was NOT voided"));
  g_autofree gchar *disputed = st_resume_cert_states (f, uid);
  g_assert_cmpstr (disputed, ==, "disputed");
  g_autofree gchar *old_sql = g_strdup_printf ("SELECT u.state || ' ' || u.fail_step FROM units u JOIN certificates c "
                                               "ON c.unit_id = u.id WHERE c.uid = '%s' AND c.state = 'disputed'", uid);
  g_autofree gchar *old = st_sql (f, old_sql);
  g_assert_cmpstr (old, ==, old_unit);
  g_test_message ("the unit was interrupted at %s", at);
  st_stop_devsims (f);

  const char *lead[] = { "STATION_OPERATOR_PIN=2222", NULL };
  const char *resolve[] = { "--operator", "lead", "unit", "resolve", uid, "--void", NULL };
  g_assert_cmpint (st_run_stationv (f, lead, NULL, NULL, resolve), ==, 0);
  g_autofree gchar *back = st_resume_put_back (f, r);
  g_autofree gchar *out2 = NULL;
  g_assert_cmpint (st_resume_run (f, r->id, back, &out2, NULL), ==, 0);
  g_assert_cmpuint (st_count_lines (out2, " PASSED "), ==, 1);
  g_autofree gchar *states = st_resume_cert_states (f, uid);
  g_assert_cmpstr (states, ==, "voided active");
  g_autofree gchar *why_sql = g_strdup_printf ("SELECT void_reason FROM certificates "
                                               "WHERE uid = '%s' AND state = 'voided'", uid);
  g_autofree gchar *why = st_sql (f, why_sql);
  g_assert_true (g_str_has_prefix (why, "voided by lead deciding the dispute over uid"));
}

/* The end of every test: @n_done units done, the first device's committed
 * certificate on record and active, the database invariants. */
static void
st_resume_finish (StFixture *f, StResume *r, gint64 n_done)
{
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM units WHERE state = 'done'"), ==, n_done);
  st_stop_devsims (f);
  const char *states_files[] = { r->state, NULL };
  g_assert_cmpuint (st_check_devices_on_record (f, states_files, TRUE), ==, 1);
  st_check_db_invariants (f);
}

/* Killed after WRITE of slot 1: the device (still powered, in its socket
 * of the first run) holds the certificate and key uncommitted. A later run
 * without it, then one with it: the unit is finished with the same
 * certificate. */
static void
test_after_write_cert (StFixture *f, gconstpointer data)
{
  g_auto(StResume) r = { 0 };
  st_resume_begin (f, &r, "example-device-csr.profile", "801", NULL);
  g_autofree gchar *uid = st_resume_crash (f, r.id, r.port, "after-write-cert");
  g_autofree gchar *serial_sql = g_strdup_printf ("SELECT serial FROM certificates WHERE uid = '%s'", uid);
  g_autofree gchar *serial = st_sql (f, serial_sql);
  st_resume_run_other_device (f, r.id, uid, 802);

  st_resume_run_completes (f, &r, r.port, uid, "'issued'");
  /* The very certificate recorded before the crash. */
  g_autofree gchar *serial_after = st_sql (f, serial_sql);
  g_assert_cmpstr (serial_after, ==, serial);
  st_resume_finish (f, &r, 2);
}

/* Killed after COMMIT: the device committed, the station never recorded
 * DONE; the operator put the device aside. Two runs later it is put back
 * into a socket: the unit is finished, no second certificate. */
static void
test_after_commit (StFixture *f, gconstpointer data)
{
  g_auto(StResume) r = { 0 };
  st_resume_begin (f, &r, "example-device-csr.profile", "803", NULL);
  g_autofree gchar *uid = st_resume_crash (f, r.id, r.port, "after-commit");
  st_stop_devsims (f);
  st_resume_run_other_device (f, r.id, uid, 804);
  st_resume_run_other_device (f, r.id, uid, 805);

  g_autofree gchar *back = st_resume_put_back (f, &r);
  st_resume_run_completes (f, &r, back, uid, "'issued'");
  st_resume_finish (f, &r, 3);
}

/* Killed after WRITE of slot 1, and the device lost power before it
 * committed: it comes back blank in a later run. The station cannot tell
 * it from a clone of a device that holds the certificate: disputed, and
 * once a lead voids it a new one is issued; one live certificate for the
 * uid at every moment. */
static void
test_blank_device (StFixture *f, gconstpointer data)
{
  g_auto(StResume) r = { 0 };
  st_resume_begin (f, &r, "example-device-csr.profile", "806", NULL);
  g_autofree gchar *uid = st_resume_crash (f, r.id, r.port, "after-write-cert");
  st_stop_devsims (f);  /* the uncommitted key and certificate are gone */
  st_resume_run_other_device (f, r.id, uid, 807);

  g_autofree gchar *back = st_resume_put_back (f, &r);
  st_resume_run_reissues (f, &r, back, uid, "'issued'", "failed resume");
  st_resume_finish (f, &r, 2);
}

/* How a device goes silent after storing its credentials, and what the
 * operator is told. */
typedef struct {
  const char *fault;   /* station-devsim's */
  const char *step;    /* the unit's fail_step */
  const char *reason;
} StSilent;

/* silent-after-commit: stores at COMMIT, never answers, is pulled out. */
static const StSilent silent_at_commit = {
  "silent-after-commit", "commit",
  "the device did not confirm storing its credentials; its certificate stays unconfirmed until the device is seen again",
};
/* silent-at-confirm: stores and answers COMMIT, is pulled out before the
 * confirming HELLO. */
static const StSilent silent_at_confirm = {
  "silent-at-confirm", "confirm",
  "the device stopped answering after storing its credentials; its certificate stays unconfirmed until the device is seen again",
};

/* Run 1: the device stores its credentials and goes silent as @how says.
 * The unit fails at that step with a reason the operator understands; the
 * certificate may be on the device, so it stays unconfirmed, and `batch
 * show` and the manifest say so. Returns the uid. */
static gchar *
st_resume_silent (StFixture *f, StResume *r, const StSilent *how)
{
  /* A COMMIT that is never answered costs 2 x 1.5 s, not 4 x 10 s. */
  const char *overrides[] = { "commit-timeout-ms=1500", "retries=1", NULL };
  g_autofree gchar *profile = st_profile_copy (f, "example-device-csr.profile", overrides);
  st_resume_begin (f, r, profile, "808", how->fault);
  g_autofree gchar *out = NULL;
  g_assert_cmpint (st_resume_run (f, r->id, r->port, &out, NULL), ==, 1);
  g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, 0);
  g_assert_cmpuint (st_count_lines (out, " FAILED "), ==, 1);
  g_assert_cmpuint (st_count_lines (out, how->reason), ==, 1);

  g_autofree gchar *sql = g_strdup_printf ("SELECT uid FROM units WHERE state = 'failed' AND fail_step = '%s'",
                                           how->step);
  g_autofree gchar *uid = st_sql (f, sql);
  g_assert_cmpuint (strlen (uid), >, 0);
  g_assert_null (strchr (uid, '\n'));
  g_autofree gchar *states = st_resume_cert_states (f, uid);
  g_assert_cmpstr (states, ==, "unconfirmed");

  g_autofree gchar *show = NULL;
  g_assert_cmpint (st_run_station (f, &show, NULL, "batch", "show", r->id, NULL), ==, 0);
  g_assert_nonnull (strstr (show, "0 voided, 1 unconfirmed"));
  g_auto(GStrv) lines = g_strsplit (show, "\n", -1);
  guint n_unit_lines = 0;
  for (guint i = 0; lines[i] != NULL; i++)
    if (strstr (lines[i], uid) != NULL)
      {
        g_assert_nonnull (strstr (lines[i], " failed "));
        g_assert_nonnull (strstr (lines[i], " unconfirmed "));
        n_unit_lines++;
      }
  g_assert_cmpuint (n_unit_lines, ==, 1);

  g_autofree gchar *dir = g_build_filename (f->tmp, "manifest-1", NULL);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "manifest", "export", r->id, "--out", dir, NULL), ==, 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonParser) parser = st_test_load_manifest (dir);
  JsonObject *top = json_node_get_object (json_parser_get_root (parser));
  JsonArray *units = json_object_get_array_member (top, "units");
  g_assert_cmpuint (json_array_get_length (units), ==, 1);
  JsonObject *unit = json_array_get_object_element (units, 0);
  g_assert_cmpstr (json_object_get_string_member (unit, "uid"), ==, uid);
  g_assert_cmpstr (json_object_get_string_member (unit, "state"), ==, "failed");
  g_assert_cmpstr (json_object_get_string_member (unit, "certificate_status"), ==, "unconfirmed");
  JsonObject *counts = json_object_get_object_member (json_object_get_object_member (top, "batch"), "counts");
  g_assert_cmpint (json_object_get_int_member (counts, "certificates_unconfirmed"), ==, 1);
  st_stop_devsims (f);
  return g_steal_pointer (&uid);
}

/* The device that went silent at COMMIT (or at the confirming HELLO) is put
 * back in a later run, holding what it stored: the failed unit is completed
 * with its certificate. */
static void
test_silent_later_run (StFixture *f, gconstpointer data)
{
  const StSilent *how = data;
  g_auto(StResume) r = { 0 };
  g_autofree gchar *uid = st_resume_silent (f, &r, how);
  g_autofree gchar *back = st_resume_put_back (f, &r);
  g_autofree gchar *at = g_strdup_printf ("'%s'", how->step);
  st_resume_run_completes (f, &r, back, uid, at);
  st_resume_finish (f, &r, 1);
}

/* The same, but the device comes back erased (its state file edited as a
 * re-flash would leave it): disputed, then voided by a lead, and a new
 * one issued. */
static void
test_silent_at_commit_blank (StFixture *f, gconstpointer data)
{
  g_auto(StResume) r = { 0 };
  g_autofree gchar *uid = st_resume_silent (f, &r, &silent_at_commit);

  g_autoptr(GError) error = NULL;
  g_autoptr(JsonParser) parser = st_test_load_json (r.state);
  JsonNode *root = json_parser_get_root (parser);
  JsonArray *devices = json_object_get_array_member (json_node_get_object (root), "devices");
  g_assert_cmpuint (json_array_get_length (devices), ==, 1);
  JsonObject *dev = json_array_get_object_element (devices, 0);
  g_assert_cmpstr (json_object_get_string_member (dev, "uid"), ==, uid);
  g_assert_false (json_object_get_null_member (dev, "cert"));  /* it did store them */
  json_object_set_null_member (dev, "cert");
  json_object_set_null_member (dev, "chain");
  json_object_set_null_member (dev, "key");
  json_object_set_int_member (dev, "state", 0);
  json_object_set_boolean_member (dev, "locked", FALSE);
  json_object_set_boolean_member (dev, "finished", FALSE);
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  json_generator_set_root (gen, root);
  g_assert_true (json_generator_to_file (gen, r.state, &error));
  g_assert_no_error (error);

  g_autofree gchar *back = st_resume_put_back (f, &r);
  st_resume_run_reissues (f, &r, back, uid, "'commit'", "failed commit");
  st_resume_finish (f, &r, 1);
}

/* Item of the audit trail: while the station is unlocked, every audited
 * change is covered by a signed checkpoint before its call returns; while
 * it is locked the entries wait, and the unlock covers them. No client
 * holds the HSM PIN for any of it. */
static void
test_checkpoint_after_call (StFixture *f, gconstpointer data)
{
  const char *head = "SELECT max(seq) FROM audit";
  const char *covered = "SELECT max(seq) FROM audit_checkpoints";
  g_autofree gchar *profile = st_profile_path ("example-device-csr.profile");
  g_assert_cmpint (st_run_station (f, NULL, NULL, "batch", "create", "--profile", profile,
                                   "--work-order", "WO-EXIT-1", "--quantity", "1", NULL), ==, 0);
  g_assert_cmpint (st_sql_int (f, covered), ==, st_sql_int (f, head));

  /* Locked: the entries wait. */
  g_assert_cmpint (st_run_station (f, NULL, NULL, "lock", NULL), ==, 0);
  gint64 before = st_sql_int (f, head);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "batch", "create", "--profile", profile,
                                   "--work-order", "WO-EXIT-2", "--quantity", "1", NULL), ==, 0);
  g_assert_cmpint (st_sql_int (f, head), >, before);
  g_assert_cmpint (st_sql_int (f, covered), ==, before);
  /* what needs the HSM says who unlocks it */
  g_autofree gchar *err = NULL;
  g_assert_cmpint (st_run_station (f, NULL, &err, "batch", "close", "1", NULL), ==, ST_RC_STOPPED);
  g_assert_nonnull (strstr (err, "station unlock"));

  /* The unlock covers what waited. */
  g_assert_cmpint (st_run_station (f, NULL, NULL, "unlock", NULL), ==, 0);
  g_assert_cmpint (st_sql_int (f, covered), ==, st_sql_int (f, head));
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM audit_checkpoints WHERE reason = 'unlock'"), >=, 1);

  /* A stop leaves it covered ("shutdown" when something waited). */
  g_assert_cmpint (st_service_stop (f), ==, 0);
  g_assert_cmpint (st_sql_int (f, covered), ==, st_sql_int (f, head));
  g_autofree gchar *vout = NULL;
  g_assert_cmpint (st_run_station (f, &vout, NULL, "audit", "verify", NULL), ==, 0);
  st_check_db_invariants (f);
}

int
main (int argc, char **argv)
{
  st_test_init (&argc, &argv);
  st_test_add_station ("/resume/after-write-cert-later-run", NULL, test_after_write_cert);
  st_test_add_station ("/resume/after-commit-later-run", NULL, test_after_commit);
  st_test_add_station ("/resume/blank-device-disputed-voided-reissued", NULL, test_blank_device);
  st_test_add_station ("/resume/silent-at-commit-later-run", &silent_at_commit, test_silent_later_run);
  st_test_add_station ("/resume/silent-at-confirm-later-run", &silent_at_confirm, test_silent_later_run);
  st_test_add_station ("/resume/silent-at-commit-blank-disputed-voided-reissued", NULL, test_silent_at_commit_blank);
  st_test_add_station ("/audit/checkpoint-after-call", NULL, test_checkpoint_after_call);
  return g_test_run ();
}
