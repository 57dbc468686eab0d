/* Disputed units: the finding "a uid clone takes a device's identity" of
 * the security review (issue 14, item 4), reproduced as the attack was made.
 *
 * A genuine device stores its credentials and is pulled before the station
 * sees it confirm them: its unit fails with the certificate unconfirmed (it
 * may be on the device, and here it is). A second device answering with the
 * same uid, but holding neither that certificate nor its key, then came to a
 * plain `batch run`: the station voided the genuine device's certificate
 * ("the device does not hold it; issuing anew") and certified the clone.
 *
 * Now the certificate is never voided on a device's word that it lacks it:
 * the unit becomes disputed (recorded, audited), the line refuses that
 * device telling the operator to set it aside and ask a lead, and goes on
 * with the next device. Only a lead decides, with `station unit resolve
 * UID|SERIAL --keep|--void`, and the decision is audited:
 *
 *   /dispute/clone-refused-keep     the attack; batch show, unit verify and the
 *                                   manifest show the dispute, the batch does
 *                                   not close; --keep (an operator and QA are
 *                                   refused); the genuine device completes its
 *                                   unit; the clone is still refused
 *   /dispute/void-then-reissued     --void by product serial: the next device
 *                                   with the uid is provisioned anew
 *   /dispute/reprovision-does-not-resolve
 *                                   a lead's --allow-reprovision run refuses
 *                                   the disputed uid all the same
 *   /dispute/resolve-refusals       what `unit resolve` refuses
 *
 * Real parts: the service and the CLI, a SoftHSM2 token, station-devsim
 * devices on pseudo-terminals (the same --seed gives the same uid: the
 * clone). */
#include <json-glib/json-glib.h>
#include <string.h>

#include "st-test-run.h"
#include "st-test-json.h"

#define ST_DISPUTE_SEED "901"

/* `batch run` of @units units on @port; the exit status. */
static int
st_dispute_run (StFixture *f, const char *batch, const char *port, const char *units,
                gboolean reprovision, gchar **out, gchar **err)
{
  if (reprovision)
    return st_run_station_as (f, "lead", "2222", NULL, out, err, "batch", "run", batch, "--port", port,
                          "--units", units, "--wait", "10", "--allow-reprovision", NULL);
  return st_run_station (f, out, err, "batch", "run", batch, "--port", port, "--units", units,
                         "--wait", "10", NULL);
}

/* The certificates of @uid, as "state state ..." in id order. */
static gchar *
st_dispute_cert_states (StFixture *f, const char *uid)
{
  g_autofree gchar *sql = g_strdup_printf ("SELECT group_concat(state, ' ') FROM "
                                           "(SELECT state FROM certificates WHERE uid = '%s' ORDER BY id)", uid);
  return st_sql (f, sql);
}

/* The one line of @text that names @uid (asserted to be one). */
static gchar *
st_dispute_line_of (const char *text, const char *uid)
{
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  gchar *found = NULL;
  for (guint i = 0; lines[i] != NULL; i++)
    if (strstr (lines[i], uid) != NULL)
      {
        g_assert_null (found);
        found = g_strdup (lines[i]);
      }
  g_assert_nonnull (found);
  return found;
}

/* The payload of the last audit entry @event, parsed; its operator in
 * *@who. */
static JsonParser *
st_dispute_audit (StFixture *f, const char *event, gchar **who)
{
  g_autofree gchar *sql = g_strdup_printf ("SELECT payload FROM audit WHERE event = '%s' "
                                           "ORDER BY seq DESC LIMIT 1", event);
  g_autofree gchar *payload = st_sql (f, sql);
  g_assert_cmpuint (strlen (payload), >, 0);
  g_autofree gchar *who_sql = g_strdup_printf ("SELECT operator FROM audit WHERE event = '%s' "
                                               "ORDER BY seq DESC LIMIT 1", event);
  *who = st_sql (f, who_sql);
  JsonParser *parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  g_assert_true (json_parser_load_from_data (parser, payload, -1, &error));
  g_assert_no_error (error);
  return parser;
}

/* One test's batch and its genuine device. */
typedef struct {
  gchar *id;     /* the batch */
  gchar *state;  /* the genuine device's state file */
  gchar *uid;
  gchar *cert_serial;
  gchar *product_serial;
} StDispute;

static void
st_dispute_clear (StDispute *d)
{
  g_free (d->id);
  g_free (d->state);
  g_free (d->uid);
  g_free (d->cert_serial);
  g_free (d->product_serial);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (StDispute, st_dispute_clear)

/* Run 1: the genuine device stores its credentials and is pulled before
 * the confirming HELLO: its unit fails, its certificate unconfirmed, and
 * the device holds it committed (its state file says so). */
static void
st_dispute_genuine (StFixture *f, StDispute *d)
{
  /* a confirmation that never comes costs 2 x 1.5 s, not 4 x 10 s */
  const char *overrides[] = { "commit-timeout-ms=1500", "retries=1", NULL };
  g_autofree gchar *profile = st_profile_copy (f, "example-device-csr.profile", overrides);
  d->id = g_strdup_printf ("%" G_GINT64_FORMAT, st_create_batch (f, profile, 5));
  d->state = g_build_filename (f->tmp, "genuine.json", NULL);
  g_autofree gchar *port = st_start_devsim (f, "--units", "1", "--seed", ST_DISPUTE_SEED,
                                            "--state", d->state, "--fault", "silent-at-confirm", NULL);
  g_autofree gchar *out = NULL;
  g_assert_cmpint (st_dispute_run (f, d->id, port, "1", FALSE, &out, NULL), ==, 1);
  g_assert_cmpuint (st_count_lines (out, " FAILED "), ==, 1);
  d->uid = st_sql (f, "SELECT uid FROM units WHERE state = 'failed' AND fail_step = 'confirm'");
  g_assert_cmpuint (strlen (d->uid), >, 0);
  g_assert_null (strchr (d->uid, '\n'));
  g_autofree gchar *states = st_dispute_cert_states (f, d->uid);
  g_assert_cmpstr (states, ==, "unconfirmed");
  g_autofree gchar *serial_sql = g_strdup_printf ("SELECT serial FROM certificates WHERE uid = '%s'", d->uid);
  d->cert_serial = st_sql (f, serial_sql);
  g_autofree gchar *ps_sql = g_strdup_printf ("SELECT product_serial FROM units WHERE uid = '%s'", d->uid);
  d->product_serial = st_sql (f, ps_sql);
  st_stop_devsims (f);
  /* the genuine device did commit the certificate on record */
  const char *files[] = { d->state, NULL };
  g_assert_cmpuint (st_check_devices_on_record (f, files, FALSE), ==, 1);
}

/* The clone: a blank device answering with the genuine device's uid (the
 * same seed), then, with @units "2", a second device of a new uid. */
static gchar *
st_dispute_clone (StFixture *f, const char *units)
{
  return st_start_devsim (f, "--units", units, "--seed", ST_DISPUTE_SEED, NULL);
}

/* A run where the clone comes: it is refused, the certificate is disputed
 * (not voided, no second certificate), the operator is told to set the
 * device aside and ask a lead; @reprovision: the run is a lead's with
 * --allow-reprovision. With @then_other, a device of another uid follows in
 * the same socket and is provisioned: the line goes on. */
static void
st_dispute_clone_refused (StFixture *f, StDispute *d, gboolean then_other, gboolean reprovision)
{
  g_autofree gchar *port = st_dispute_clone (f, then_other ? "2" : "1");
  g_autofree gchar *out = NULL, *err = NULL;
  g_assert_cmpint (st_dispute_run (f, d->id, port, then_other ? "2" : "1", reprovision, &out, &err), ==, 1);
  g_autofree gchar *line = st_dispute_line_of (out, d->uid);
  g_assert_nonnull (strstr (line, " REFUSED "));
  g_assert_nonnull (strstr (line, "disputed"));
  g_assert_nonnull (strstr (line, "set this device aside"));
  g_assert_nonnull (strstr (line, "ask a lead"));
  g_assert_nonnull (strstr (line, "station unit resolve"));
  g_assert_cmpuint (st_count_lines (out, " REFUSED "), ==, 1);
  g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, then_other ? 1 : 0);
  g_assert_nonnull (strstr (out, then_other ? ": 1 passed, 0 failed, 1 refused" : ": 0 passed, 0 failed, 1 refused"));
  /* the genuine device's certificate is not voided, nothing new for the uid */
  g_autofree gchar *states = st_dispute_cert_states (f, d->uid);
  g_assert_cmpstr (states, ==, "disputed");
  g_autofree gchar *why_sql = g_strdup_printf ("SELECT voided_at IS NULL AND disputed_at > 0 "
                                               "FROM certificates WHERE uid = '%s'", d->uid);
  g_assert_cmpint (st_sql_int (f, why_sql), ==, 1);
  st_stop_devsims (f);
}

/* The attack, then a lead keeps the genuine certificate. */
static void
test_clone_refused_keep (StFixture *f, gconstpointer data)
{
  g_auto(StDispute) d = { 0 };
  st_dispute_genuine (f, &d);

  /* the clone comes to a plain `batch run`, a new device after it */
  st_dispute_clone_refused (f, &d, TRUE, FALSE);
  /* recorded: the dispute, in the audit log with the socket and why */
  g_autofree gchar *who = NULL;
  g_autoptr(JsonParser) p = st_dispute_audit (f, "cert-dispute", &who);
  JsonObject *o = json_node_get_object (json_parser_get_root (p));
  g_assert_cmpstr (json_object_get_string_member (o, "uid"), ==, d.uid);
  g_assert_cmpstr (json_object_get_string_member (o, "cert_serial"), ==, d.cert_serial);
  g_assert_cmpstr (json_object_get_string_member (o, "from"), ==, "unconfirmed");
  g_assert_nonnull (strstr (json_object_get_string_member (o, "reason"), "holds neither its certificate nor its key"));
  g_assert_cmpstr (who, ==, "op");

  /* `batch show` says so */
  g_autofree gchar *show = NULL;
  g_assert_cmpint (st_run_station (f, &show, NULL, "batch", "show", d.id, NULL), ==, 0);
  g_assert_nonnull (strstr (show, "0 unconfirmed, 1 disputed"));
  g_autofree gchar *line = st_dispute_line_of (show, d.uid);
  g_assert_nonnull (strstr (line, " failed "));
  g_assert_nonnull (strstr (line, " disputed "));
  /* QA reading the genuine device sees it too */
  g_autofree gchar *qport = st_start_devsim (f, "--state", d.state, "--present", "1", NULL);
  g_autofree gchar *qout = NULL;
  g_assert_cmpint (st_run_station (f, &qout, NULL, "unit", "verify", "--port", qport, NULL), ==, 1);
  g_assert_nonnull (strstr (qout, "certificate disputed"));
  g_assert_nonnull (strstr (qout, "DISPUTED"));
  st_stop_devsims (f);
  /* the manifest: a disputed unit is not a good unit, and it verifies */
  g_autofree gchar *dir = g_build_filename (f->tmp, "manifest", NULL);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "manifest", "export", d.id, "--out", dir, NULL), ==, 0);
  g_autoptr(JsonParser) mp = st_test_load_manifest (dir);
  JsonObject *top = json_node_get_object (json_parser_get_root (mp));
  JsonArray *units = json_object_get_array_member (top, "units");
  guint n_disputed = 0;
  for (guint i = 0; i < json_array_get_length (units); i++)
    {
      JsonObject *u = json_array_get_object_element (units, i);
      if (g_strcmp0 (json_object_get_string_member (u, "uid"), d.uid) != 0)
        continue;
      g_assert_cmpstr (json_object_get_string_member (u, "state"), ==, "failed");
      g_assert_cmpstr (json_object_get_string_member (u, "certificate_status"), ==, "disputed");
      n_disputed++;
    }
  g_assert_cmpuint (n_disputed, ==, 1);
  JsonObject *counts = json_object_get_object_member (json_object_get_object_member (top, "batch"), "counts");
  g_assert_cmpint (json_object_get_int_member (counts, "certificates_disputed"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (counts, "certificates_unconfirmed"), ==, 0);
  g_autofree gchar *vout = NULL;
  g_assert_cmpint (st_run_station (f, &vout, NULL, "manifest", "verify", dir, NULL), ==, 0);
  g_assert_nonnull (strstr (vout, "1 disputed"));
  /* the batch does not close over an undecided unit */
  g_autofree gchar *cerr = NULL;
  g_assert_cmpint (st_run_station (f, NULL, &cerr, "batch", "close", d.id, NULL), ==, ST_RC_ERROR);
  g_assert_nonnull (strstr (cerr, "disputed"));
  g_assert_nonnull (strstr (cerr, "station unit resolve"));

  /* even the genuine device is refused until a lead decides */
  g_autofree gchar *back = st_start_devsim (f, "--state", d.state, "--present", "1", NULL);
  g_autofree gchar *bout = NULL;
  g_assert_cmpint (st_dispute_run (f, d.id, back, "1", FALSE, &bout, NULL), ==, 1);
  g_autofree gchar *bline = st_dispute_line_of (bout, d.uid);
  g_assert_nonnull (strstr (bline, " REFUSED "));
  g_assert_nonnull (strstr (bline, "disputed"));
  g_autofree gchar *still = st_dispute_cert_states (f, d.uid);
  g_assert_cmpstr (still, ==, "disputed");
  st_stop_devsims (f);

  /* an operator and QA may not decide; a refusal names the role */
  g_autofree gchar *err = NULL;
  g_assert_cmpint (st_run_station_as (f, "op", "1111", NULL, NULL, &err, "unit", "resolve", d.uid, "--keep", NULL), ==, ST_RC_AUTH);
  g_assert_nonnull (strstr (err, "resolving a disputed unit needs the role lead"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station_as (f, "qa", "3333", NULL, NULL, &err, "unit", "resolve", d.uid, "--keep", NULL), ==, ST_RC_AUTH);
  g_assert_nonnull (strstr (err, "needs the role lead"));
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM audit WHERE event = 'refused' AND operator IN ('op','qa') "
                                  "AND payload LIKE '%resolving a disputed unit%'"), ==, 2);
  g_autofree gchar *refused_states = st_dispute_cert_states (f, d.uid);
  g_assert_cmpstr (refused_states, ==, "disputed");

  /* the lead keeps the certificate */
  g_autofree gchar *rout = NULL;
  g_assert_cmpint (st_run_station_as (f, "lead", "2222", NULL, &rout, NULL, "unit", "resolve", d.uid, "--keep", NULL), ==, 0);
  g_assert_nonnull (strstr (rout, "kept"));
  g_assert_nonnull (strstr (rout, d.cert_serial));
  g_autofree gchar *kept = st_dispute_cert_states (f, d.uid);
  g_assert_cmpstr (kept, ==, "unconfirmed");
  g_clear_pointer (&who, g_free);
  g_autoptr(JsonParser) rp = st_dispute_audit (f, "unit-resolve", &who);
  JsonObject *r = json_node_get_object (json_parser_get_root (rp));
  g_assert_cmpstr (who, ==, "lead");
  g_assert_cmpstr (json_object_get_string_member (r, "decision"), ==, "keep");
  g_assert_cmpstr (json_object_get_string_member (r, "uid"), ==, d.uid);
  g_assert_cmpstr (json_object_get_string_member (r, "cert_serial"), ==, d.cert_serial);
  g_assert_cmpstr (json_object_get_string_member (r, "to"), ==, "unconfirmed");
  g_assert_cmpint (json_object_get_int_member (r, "unit"), >, 0);
  /* decided once: a second decision finds nothing disputed */
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station_as (f, "lead", "2222", NULL, NULL, &err, "unit", "resolve", d.uid, "--void", NULL), ==, ST_RC_NOT_FOUND);
  g_assert_nonnull (strstr (err, "not disputed"));

  /* the genuine device comes back: its unit is completed with its certificate */
  g_autofree gchar *back2 = st_start_devsim (f, "--state", d.state, "--present", "1", NULL);
  g_autofree gchar *gout = NULL;
  g_assert_cmpint (st_dispute_run (f, d.id, back2, "1", FALSE, &gout, NULL), ==, 0);
  g_autofree gchar *gline = st_dispute_line_of (gout, d.uid);
  g_assert_nonnull (strstr (gline, " PASSED "));
  g_assert_nonnull (strstr (gline, "completed the unit interrupted at 'confirm'"));
  g_autofree gchar *active = st_dispute_cert_states (f, d.uid);
  g_assert_cmpstr (active, ==, "active");
  st_stop_devsims (f);

  /* the clone again: refused as a provisioned uid, nothing voided */
  g_autofree gchar *port = st_dispute_clone (f, "1");
  g_autofree gchar *cout = NULL;
  g_assert_cmpint (st_dispute_run (f, d.id, port, "1", FALSE, &cout, NULL), ==, 1);
  g_autofree gchar *cline = st_dispute_line_of (cout, d.uid);
  g_assert_nonnull (strstr (cline, " REFUSED "));
  g_autofree gchar *after = st_dispute_cert_states (f, d.uid);
  g_assert_cmpstr (after, ==, "active");
  st_stop_devsims (f);

  const char *files[] = { d.state, NULL };
  g_assert_cmpuint (st_check_devices_on_record (f, files, TRUE), ==, 1);
  st_check_db_invariants (f);
}

/* The lead voids the disputed certificate, naming the unit by its product
 * serial: the next device with the uid is provisioned anew. */
static void
test_void_then_reissued (StFixture *f, gconstpointer data)
{
  g_auto(StDispute) d = { 0 };
  st_dispute_genuine (f, &d);
  st_dispute_clone_refused (f, &d, FALSE, FALSE);

  g_autofree gchar *rout = NULL;
  g_assert_cmpint (st_run_station_as (f, "lead", "2222", NULL, &rout, NULL, "unit", "resolve", d.product_serial,
                                  "--void", NULL), ==, 0);
  g_assert_nonnull (strstr (rout, "voided"));
  g_autofree gchar *voided = st_dispute_cert_states (f, d.uid);
  g_assert_cmpstr (voided, ==, "voided");
  g_autofree gchar *why_sql = g_strdup_printf ("SELECT void_reason FROM certificates WHERE uid = '%s'", d.uid);
  g_autofree gchar *why = st_sql (f, why_sql);
  g_assert_nonnull (strstr (why, "lead"));
  g_assert_nonnull (strstr (why, "dispute"));
  g_autofree gchar *who = NULL;
  g_autoptr(JsonParser) rp = st_dispute_audit (f, "unit-resolve", &who);
  JsonObject *r = json_node_get_object (json_parser_get_root (rp));
  g_assert_cmpstr (who, ==, "lead");
  g_assert_cmpstr (json_object_get_string_member (r, "decision"), ==, "void");
  g_assert_cmpstr (json_object_get_string_member (r, "uid"), ==, d.uid);
  g_assert_cmpstr (json_object_get_string_member (r, "to"), ==, "voided");

  /* the device with the uid is provisioned anew: one live certificate */
  g_autofree gchar *port = st_dispute_clone (f, "1");
  g_autofree gchar *out = NULL;
  g_assert_cmpint (st_dispute_run (f, d.id, port, "1", FALSE, &out, NULL), ==, 0);
  g_autofree gchar *line = st_dispute_line_of (out, d.uid);
  g_assert_nonnull (strstr (line, " PASSED "));
  g_autofree gchar *states = st_dispute_cert_states (f, d.uid);
  g_assert_cmpstr (states, ==, "voided active");
  st_stop_devsims (f);
  st_check_db_invariants (f);
}

/* --allow-reprovision voids the certificate of a device being provisioned
 * anew; it does not decide a dispute: a disputed uid is refused in a lead's
 * re-provisioning run too, and its certificate stays. */
static void
test_reprovision_does_not_resolve (StFixture *f, gconstpointer data)
{
  g_auto(StDispute) d = { 0 };
  st_dispute_genuine (f, &d);
  /* the dispute arises in a re-provisioning run as in any other */
  st_dispute_clone_refused (f, &d, FALSE, TRUE);
  /* and a disputed uid is refused by the next one */
  st_dispute_clone_refused (f, &d, FALSE, TRUE);
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM audit WHERE event = 'cert-dispute'"), ==, 1);
  st_check_db_invariants (f);
}

/* What `unit resolve` refuses. */
static void
test_resolve_refusals (StFixture *f, gconstpointer data)
{
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 2);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  g_autofree gchar *port = st_start_devsim (f, "--units", "1", "--seed", "902", NULL);
  g_assert_cmpint (st_dispute_run (f, id, port, "1", FALSE, NULL, NULL), ==, 0);
  g_autofree gchar *uid = st_sql (f, "SELECT uid FROM units WHERE state = 'done'");
  g_autofree gchar *err = NULL;
  /* a unit that is not disputed: says what it is */
  g_assert_cmpint (st_run_station_as (f, "lead", "2222", NULL, NULL, &err, "unit", "resolve", uid, "--void", NULL), ==, ST_RC_NOT_FOUND);
  g_assert_nonnull (strstr (err, "not disputed"));
  g_assert_nonnull (strstr (err, "active"));
  /* nothing with that name */
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station_as (f, "lead", "2222", NULL, NULL, &err, "unit", "resolve", "0badc0de", "--keep", NULL), ==, ST_RC_NOT_FOUND);
  g_assert_nonnull (strstr (err, "no unit"));
  /* one decision, exactly */
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station_as (f, "lead", "2222", NULL, NULL, &err, "unit", "resolve", uid, NULL), ==, ST_RC_USAGE);
  g_assert_nonnull (strstr (err, "--keep or --void"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station_as (f, "lead", "2222", NULL, NULL, &err, "unit", "resolve", uid, "--keep", "--void", NULL), ==, ST_RC_USAGE);
  g_assert_nonnull (strstr (err, "--keep or --void"));
  g_autofree gchar *state_sql = g_strdup_printf ("SELECT state FROM certificates WHERE uid = '%s'", uid);
  g_autofree gchar *state = st_sql (f, state_sql);
  g_assert_cmpstr (state, ==, "active");
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM audit WHERE event = 'unit-resolve'"), ==, 0);
}

int
main (int argc, char **argv)
{
  st_test_init (&argc, &argv);
  st_test_add_station ("/dispute/clone-refused-keep", NULL, test_clone_refused_keep);
  st_test_add_station ("/dispute/void-then-reissued", NULL, test_void_then_reissued);
  st_test_add_station ("/dispute/reprovision-does-not-resolve", NULL, test_reprovision_does_not_resolve);
  st_test_add_station ("/dispute/resolve-refusals", NULL, test_resolve_refusals);
  return g_test_run ();
}
