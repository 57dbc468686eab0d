/* Hostile devices beside healthy ones, in one `batch run`: station-devsim
 * devices on real pseudo-terminals that lie, stream garbage, are pulled out
 * in the middle of a write, or sit on a noisy line that drops responses.
 * None may crash the station or stop the other sockets; every failure
 * carries an operator reason and the protocol detail; no certificate that a
 * device holds goes unrecorded, and nothing that failed keeps a live one.
 * (test-line covers each lying device alone; here they run together.) */
#include <json-glib/json-glib.h>
#include <string.h>

#include "st-test-run.h"
#include "st-test-json.h"

/* The line of @out that reports a unit on @port with @outcome, the n-th
 * (0-based) of them, and the detail line after it. */
static gboolean
st_find_unit_line (const char *out, const char *port, const char *outcome, guint nth,
                   gchar **line, gchar **detail)
{
  g_auto(GStrv) lines = g_strsplit (out, "\n", -1);
  g_autofree gchar *needle = g_strdup_printf ("%s ", port);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      if (!g_str_has_prefix (lines[i], needle) || strstr (lines[i], outcome) == NULL)
        continue;
      if (nth-- > 0)
        continue;
      *line = g_strdup (lines[i]);
      *detail = g_strdup (lines[i + 1] != NULL ? lines[i + 1] : "");
      return TRUE;
    }
  return FALSE;
}

static guint
st_count_port_lines (const char *out, const char *port, const char *what)
{
  g_auto(GStrv) lines = g_strsplit (out, "\n", -1);
  g_autofree gchar *needle = g_strdup_printf ("%s ", port);
  guint n = 0;
  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], needle) && strstr (lines[i], what) != NULL)
      n++;
  return n;
}

/* Upper-case hex of @s, as SQLite's hex() gives it. */
static gchar *
st_hex_upper (const char *s)
{
  GString *out = g_string_new (NULL);
  for (const char *p = s; *p != '\0'; p++)
    g_string_append_printf (out, "%02X", (guchar) *p);
  return g_string_free (out, FALSE);
}

static JsonArray *
st_state_devices (const char *path, JsonParser **parser_out)
{
  g_autoptr(GError) error = NULL;
  JsonParser *parser = st_test_load_json (path);
  *parser_out = parser;
  return json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)), "devices");
}

/* The profile with short device time-outs, so that a dropped KEYGEN
 * response costs seconds, not the default half-minute. */
static gchar *
st_fast_profile (StFixture *f)
{
  const char *overrides[] = { "keygen-timeout-ms=3000", "commit-timeout-ms=3000", NULL };
  return st_profile_copy (f, "example-device-csr.profile", overrides);
}

/* Garbage without delimiters, an unplug in the middle of a write, and line
 * noise with dropped responses, each on its own socket beside a healthy
 * one. */
static void
test_garbage_unplug_noise (StFixture *f, gconstpointer data)
{
  g_autofree gchar *profile = st_fast_profile (f);
  gint64 batch = st_create_batch (f, profile, 10);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);

  /* The station's peak memory on a healthy socket, for comparison. */
  g_autofree gchar *s0 = g_build_filename (f->tmp, "sim-base.json", NULL);
  g_autofree gchar *base = st_start_devsim (f, "--units", "1", "--seed", "600", "--state", s0, NULL);
  const char *base_args[] = { "batch", "run", id, "--port", base, "--units", "1", "--wait", "10", NULL };
  glong base_rss = 0;
  g_autofree gchar *base_out = NULL;
  g_assert_cmpint (st_run_station_rusage (f, NULL, &base_out, base_args, &base_rss), ==, 0);
  g_assert_cmpuint (st_count_lines (base_out, " PASSED "), ==, 1);

  g_autofree gchar *sh = g_build_filename (f->tmp, "sim-healthy.json", NULL);
  g_autofree gchar *sg = g_build_filename (f->tmp, "sim-garbage.json", NULL);
  g_autofree gchar *su = g_build_filename (f->tmp, "sim-unplug.json", NULL);
  g_autofree gchar *sn = g_build_filename (f->tmp, "sim-noise.json", NULL);
  g_autofree gchar *healthy = st_start_devsim (f, "--units", "3", "--seed", "601", "--state", sh, NULL);
  g_autofree gchar *garbage = st_start_devsim (f, "--units", "1", "--seed", "602", "--state", sg,
                                               "--fault", "garbage", NULL);
  g_autofree gchar *unplug = st_start_devsim (f, "--units", "2", "--seed", "603", "--state", su,
                                              "--fault", "unplug-write", "--fault-unit", "1", NULL);
  g_autofree gchar *noisy = st_start_devsim (f, "--units", "3", "--seed", "604", "--state", sn,
                                             "--fault", "noise", "--fault", "drop", NULL);
  const char *args[] = { "batch", "run", id, "--port", healthy, "--port", garbage, "--port", unplug,
                         "--port", noisy, "--units", "3", "--wait", "5", NULL };
  glong rss = 0;
  g_autofree gchar *out = NULL;
  int rc = st_run_station_rusage (f, NULL, &out, args, &rss);
  /* Failures, not a crash. */
  g_assert_cmpint (rc, ==, 1);
  g_assert_nonnull (strstr (out, "batch 1: 7 passed, 1 failed, 0 refused, some sockets gave up"));

  /* The healthy socket did its three units. */
  g_assert_cmpuint (st_count_port_lines (out, healthy, " PASSED "), ==, 3);

  /* Garbage: the socket gives up, saying what the device did; the station's
   * memory stayed bounded. */
  g_assert_cmpuint (st_count_port_lines (out, garbage, " PASSED "), ==, 0);
  g_assert_cmpuint (st_count_port_lines (out, garbage, "gave up:"), ==, 1);
  g_assert_cmpuint (st_count_port_lines (out, garbage, "sent only garbage in answer to HELLO"), ==, 1);
  g_assert_cmpuint (st_count_port_lines (out, garbage, "check the baud rate and the cable"), ==, 1);
  g_test_message ("peak RSS: %ld KiB healthy alone, %ld KiB with the hostile sockets", base_rss, rss);
  g_assert_cmpint (rss, <, base_rss + 64 * 1024);

  /* Unplugged in the middle of the certificate write: that unit fails with
   * the reason and the protocol detail; the socket carries on with the next
   * device, which passes. */
  g_autofree gchar *line = NULL, *detail = NULL;
  g_assert_true (st_find_unit_line (out, unplug, " FAILED ", 0, &line, &detail));
  g_assert_nonnull (strstr (line, "writing the certificate to the device failed: check the connection and retry"));
  g_assert_nonnull (strstr (detail, "step write: writing slot 1"));
  g_assert_cmpuint (st_count_port_lines (out, unplug, " PASSED "), ==, 1);

  /* Noise and drops: every unit passes, one key and one commit per device. */
  g_assert_cmpuint (st_count_port_lines (out, noisy, " PASSED "), ==, 3);
  g_autoptr(JsonParser) pn = NULL;
  JsonArray *devices = st_state_devices (sn, &pn);
  g_assert_cmpuint (json_array_get_length (devices), ==, 3);
  for (guint i = 0; i < 3; i++)
    {
      JsonObject *d = json_array_get_object_element (devices, i);
      g_assert_cmpint (json_object_get_int_member (d, "keys_made"), ==, 1);
      g_assert_cmpint (json_object_get_int_member (d, "commits"), ==, 1);
    }

  /* The unplugged device holds nothing committed; its certificate is voided. */
  g_autoptr(JsonParser) pu = NULL;
  JsonArray *ud = st_state_devices (su, &pu);
  JsonObject *first = json_array_get_object_element (ud, 0);
  g_assert_true (JSON_NODE_HOLDS_NULL (json_object_get_member (first, "cert")));
  g_autofree gchar *sql = g_strdup_printf ("SELECT group_concat(state) FROM certificates WHERE uid = '%s'",
                                           json_object_get_string_member (first, "uid"));
  g_autofree gchar *states = st_sql (f, sql);
  g_assert_cmpstr (states, ==, "voided");

  const char *files[] = { s0, sh, sg, su, sn, NULL };
  g_assert_cmpuint (st_check_devices_on_record (f, files, TRUE), ==, 8);
  st_check_db_invariants (f);
}

/* Every lying device of the table at once, beside a healthy socket: each
 * fails or is refused with its own reason and step, nothing it could hold
 * stays live, and the healthy socket is not held up. */
static void
test_liars_beside_healthy (StFixture *f, gconstpointer data)
{
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 12);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  struct {
    const char *fault;
    const char *outcome;
    const char *reason;
    const char *step;
    gchar *port;
    gchar *state;
  } cases[] = {
    { "bad-csr-sig", " FAILED ", "key request was refused and nothing was issued", "step csr:" },
    { "csr-trailing", " FAILED ", "key request was refused and nothing was issued", "step csr:" },
    { "wrong-curve", " FAILED ", "key request was refused and nothing was issued", "step csr:" },
    { "pop-other-key", " FAILED ", "could not prove it holds the key", "step proof-of-possession:" },
    { "readback-differs", " FAILED ", "stored a different certificate", "step read-back:" },
    { "commit-storage", " FAILED ", "refused to store its credentials", "step commit:" },
    { "locked", " REFUSED ", "locked", "step identify:" },
    { "csr-greedy", " PASSED ", "provisioned", NULL },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree gchar *seed = g_strdup_printf ("%u", 650 + i);
      g_autofree gchar *name = g_strdup_printf ("sim-%s.json", cases[i].fault);
      cases[i].state = g_build_filename (f->tmp, name, NULL);
      cases[i].port = st_start_devsim (f, "--units", "1", "--seed", seed, "--state", cases[i].state,
                                       "--fault", cases[i].fault, NULL);
    }
  g_autofree gchar *sh = g_build_filename (f->tmp, "sim-healthy.json", NULL);
  g_autofree gchar *healthy = st_start_devsim (f, "--units", "3", "--seed", "640", "--state", sh, NULL);

  g_autoptr(GPtrArray) args = g_ptr_array_new ();
  g_ptr_array_add (args, "batch");
  g_ptr_array_add (args, "run");
  g_ptr_array_add (args, id);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_ptr_array_add (args, "--port");
      g_ptr_array_add (args, cases[i].port);
    }
  g_ptr_array_add (args, "--port");
  g_ptr_array_add (args, healthy);
  g_ptr_array_add (args, "--units");
  g_ptr_array_add (args, "3");
  g_ptr_array_add (args, "--wait");
  g_ptr_array_add (args, "3");
  g_ptr_array_add (args, NULL);
  g_autofree gchar *out = NULL;
  int rc = st_run_stationv (f, NULL, &out, NULL, (const char *const *) args->pdata);
  g_assert_cmpint (rc, ==, 1);
  g_assert_cmpuint (st_count_port_lines (out, healthy, " PASSED "), ==, 3);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_test_message ("fault %s on %s", cases[i].fault, cases[i].port);
      g_autofree gchar *line = NULL, *detail = NULL;
      g_assert_true (st_find_unit_line (out, cases[i].port, cases[i].outcome, 0, &line, &detail));
      g_assert_nonnull (strstr (line, cases[i].reason));
      if (cases[i].step != NULL)
        {
          /* The protocol detail for the log, beyond the operator's reason. */
          g_assert_nonnull (strstr (detail, cases[i].step));
          g_assert_cmpuint (strlen (strstr (detail, cases[i].step)), >, strlen (cases[i].step) + 10);
        }
    }
  /* Nothing live for a device that failed: refused before issuance, or
   * voided. */
  g_autofree gchar *live = st_sql (f, "SELECT count(*) FROM certificates c JOIN units u ON u.id = c.unit_id "
                                      "WHERE u.state = 'failed' AND c.state <> 'voided'");
  g_assert_cmpstr (live, ==, "0");
  g_autofree gchar *voided = st_sql (f, "SELECT count(*) FROM certificates WHERE state = 'voided'");
  g_assert_cmpstr (voided, ==, "3");  /* proof of possession, read-back, commit */
  g_autofree gchar *active = st_sql (f, "SELECT count(*) FROM certificates WHERE state = 'active'");
  g_assert_cmpstr (active, ==, "4");  /* the greedy one and the healthy three */

  /* The locked device came with a certificate from elsewhere: not ours to
   * find on record; every other device's committed certificate is. */
  const char *files[G_N_ELEMENTS (cases) + 1];
  guint n_files = 0;
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    if (g_strcmp0 (cases[i].fault, "locked") != 0)
      files[n_files++] = cases[i].state;
  files[n_files++] = sh;
  files[n_files] = NULL;
  g_assert_cmpuint (st_check_devices_on_record (f, files, TRUE), ==, 4);
  st_check_db_invariants (f);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_free (cases[i].port);
      g_free (cases[i].state);
    }
}

/* Security review, issue 14, item 5: a device whose model is "...\nPASS\e[8m"
 * printed a fake PASS line in `unit verify` and hid what followed; the model
 * reached the refusal detail of `batch run` as it was. What a person sees
 * holds no control character but the line breaks, and shows the escape. */
#define ST_HOSTILE_MODEL "SIM-DEV-1\nPASS\x1b[8m\r\x7f"
#define ST_HOSTILE_SHOWN "SIM-DEV-1\\x0aPASS\\x1b[8m\\x0d\\x7f"

/* No C0 control but '\n', no DEL, no C1 control, valid UTF-8. */
static void
st_assert_printable (const char *what, const char *text)
{
  g_test_message ("%s:\n%s", what, text);
  g_assert_true (g_utf8_validate (text, -1, NULL));
  for (const char *p = text; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar ch = g_utf8_get_char (p);
      if (ch == '\n')
        continue;
      if (ch < 0x20 || (ch >= 0x7f && ch < 0xa0))
        {
          g_test_message ("%s holds the raw control character U+%04X", what, ch);
          g_assert_not_reached ();
        }
    }
}

static void
test_device_strings (StFixture *f, gconstpointer data)
{
  /* A profile of the simulator's model: the hostile device is refused. */
  g_autofree gchar *src = st_profile_path ("example-device-csr.profile");
  g_autofree gchar *text = NULL;
  g_assert_true (g_file_get_contents (src, &text, NULL, NULL));
  g_assert_nonnull (strstr (text, "#model = EX-SENSOR-1"));
  g_auto(GStrv) parts = g_strsplit (text, "#model = EX-SENSOR-1", 2);
  g_autofree gchar *modelled = g_strjoinv ("model = SIM-DEV-1", parts);
  g_autofree gchar *profile = g_build_filename (f->tmp, "sim-model.profile", NULL);
  g_assert_true (g_file_set_contents (profile, modelled, -1, NULL));
  gint64 refusing = st_create_batch (f, profile, 2);
  g_autofree gchar *rid = g_strdup_printf ("%" G_GINT64_FORMAT, refusing);

  g_autofree gchar *s1 = g_build_filename (f->tmp, "sim-hostile-1.json", NULL);
  g_autofree gchar *port1 = st_start_devsim (f, "--units", "1", "--seed", "670", "--state", s1,
                                             "--model", ST_HOSTILE_MODEL, NULL);
  g_autofree gchar *out = NULL, *err = NULL;
  const char *run1[] = { "batch", "run", rid, "--port", port1, "--units", "1", "--wait", "5", NULL };
  g_assert_cmpint (st_run_stationv (f, NULL, &out, &err, run1), ==, 1);
  st_assert_printable ("batch run (stdout)", out);
  st_assert_printable ("batch run (stderr)", err);
  g_autofree gchar *line = NULL, *detail = NULL;
  g_assert_true (st_find_unit_line (out, port1, " REFUSED ", 0, &line, &detail));
  g_assert_nonnull (strstr (line, "another model than the batch's product"));
  g_assert_nonnull (strstr (detail, "HELLO model '" ST_HOSTILE_SHOWN "', profile model 'SIM-DEV-1'"));
  /* The record keeps what the device sent. */
  g_autofree gchar *hex = st_sql (f, "SELECT hex(model) FROM units");
  g_autofree gchar *want = st_hex_upper (ST_HOSTILE_MODEL);
  g_assert_cmpstr (hex, ==, want);

  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station (f, &out, &err, "batch", "show", rid, NULL), ==, 0);
  st_assert_printable ("batch show", out);

  /* Any model: the hostile device is provisioned, then verified by QA. */
  gint64 open = st_create_batch (f, "example-device-csr.profile", 2);
  g_autofree gchar *oid = g_strdup_printf ("%" G_GINT64_FORMAT, open);
  g_autofree gchar *s2 = g_build_filename (f->tmp, "sim-hostile-2.json", NULL);
  g_autofree gchar *port2 = st_start_devsim (f, "--units", "1", "--seed", "671", "--state", s2,
                                             "--model", ST_HOSTILE_MODEL, NULL);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  const char *run2[] = { "batch", "run", oid, "--port", port2, "--units", "1", "--wait", "5", NULL };
  g_assert_cmpint (st_run_stationv (f, NULL, &out, &err, run2), ==, 0);
  st_assert_printable ("batch run (stdout)", out);
  g_assert_cmpuint (st_count_port_lines (out, port2, " PASSED "), ==, 1);

  st_stop_devsims (f);
  g_autofree gchar *qa = st_start_devsim (f, "--state", s2, "--present", "1", "--model", ST_HOSTILE_MODEL, NULL);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station (f, &out, &err, "unit", "verify", "--port", qa, NULL), ==, 0);
  st_assert_printable ("unit verify (stdout)", out);
  st_assert_printable ("unit verify (stderr)", err);
  g_assert_nonnull (strstr (out, "model " ST_HOSTILE_SHOWN ", firmware "));
  /* one verdict line, the real one, last */
  g_assert_cmpuint (st_count_lines (out, "PASS"), ==, 2);   /* the model's line and the verdict */
  g_assert_true (g_str_has_suffix (out, "\nPASS\n"));

  /* The service's log shows the device's model escaped, if at all. */
  g_autofree gchar *log = st_service_read_log (f);
  st_assert_printable ("the service's log", log);
}

/* Security review, issue 14, item 5: the manifest's CSV opens in a
 * spreadsheet. A cell that starts with = + - @ (a formula) starts with a
 * "'" there; manifest.json keeps the value, and the manifest verifies. */
static void
test_csv_formula (StFixture *f, gconstpointer data)
{
  const char *overrides[] = { "format=-{seq:06}", NULL };
  g_autofree gchar *profile = st_profile_copy (f, "example-device-csr.profile", overrides);
  gint64 batch = st_create_batch (f, profile, 1);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  g_autofree gchar *state = g_build_filename (f->tmp, "sim-csv.json", NULL);
  g_autofree gchar *port = st_start_devsim (f, "--units", "1", "--seed", "680", "--state", state, NULL);
  const char *run[] = { "batch", "run", id, "--port", port, "--units", "1", "--wait", "5", NULL };
  g_autofree gchar *out = NULL;
  g_assert_cmpint (st_run_stationv (f, NULL, &out, NULL, run), ==, 0);
  g_assert_cmpuint (st_count_port_lines (out, port, "provisioned (serial -000001,"), ==, 1);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "batch", "close", id, NULL), ==, 0);
  g_autofree gchar *dir = g_build_filename (f->tmp, "manifest", NULL);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "manifest", "export", id, "--out", dir, NULL), ==, 0);

  g_autofree gchar *csv_path = g_build_filename (dir, "manifest.csv", NULL);
  g_autofree gchar *csv = NULL;
  g_assert_true (g_file_get_contents (csv_path, &csv, NULL, NULL));
  g_test_message ("%s", csv);
  g_auto(GStrv) rows = g_strsplit (csv, "\r\n", -1);
  g_assert_cmpuint (g_strv_length (rows), ==, 3);  /* header, the unit, "" */
  g_auto(GStrv) cells = g_strsplit (rows[1], ",", -1);
  g_assert_cmpstr (cells[1], ==, "'-000001");
  for (guint i = 0; cells[i] != NULL; i++)
    g_assert_null (strchr ("=+-@\t\r", cells[i][0] != '\0' ? cells[i][0] : 'x'));
  g_autofree gchar *json_path = g_build_filename (dir, "units.jsonl", NULL);
  g_autofree gchar *json = NULL;
  g_assert_true (g_file_get_contents (json_path, &json, NULL, NULL));
  g_assert_nonnull (strstr (json, "\"-000001\""));
  g_assert_cmpint (st_run_station (f, NULL, NULL, "manifest", "verify", dir, NULL), ==, 0);
}

int
main (int argc, char **argv)
{
  st_test_init (&argc, &argv);
  st_test_add_station ("/hostile/garbage-unplug-noise", NULL, test_garbage_unplug_noise);
  st_test_add_station ("/hostile/liars-beside-healthy", NULL, test_liars_beside_healthy);
  st_test_add_station ("/hostile/device-strings", NULL, test_device_strings);
  st_test_add_station ("/hostile/csv-formula", NULL, test_csv_formula);
  return g_test_run ();
}
