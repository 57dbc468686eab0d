/* The line end to end: the real CLI, a fresh SoftHSM2 token per test,
 * station-devsim devices on real pseudo-terminals, and stock tools
 * (openssl, certtool) checking what comes out. */
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "st-test-run.h"
#include "st-test-json.h"

/* The units of an exported manifest. */
static JsonArray *
st_manifest_units (const char *dir, JsonParser **parser_out)
{
  JsonParser *parser = st_test_load_manifest (dir);
  *parser_out = parser;
  JsonObject *top = json_node_get_object (json_parser_get_root (parser));
  return json_object_get_array_member (top, "units");
}

static void
st_export (StFixture *f, gint64 batch, const char *dir)
{
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "manifest", "export", id, "--out", dir, NULL), ==, 0);
}

/* Checks every active certificate of a manifest with two X.509 stacks that
 * are not ours: OpenSSL's CLI and GnuTLS's certtool. */
static guint
st_check_certs_with_stock_tools (StFixture *f, const char *dir)
{
  g_autoptr(JsonParser) parser = NULL;
  JsonArray *units = st_manifest_units (dir, &parser);
  g_autofree gchar *chain = g_build_filename (dir, "ca-chain.pem", NULL);
  guint checked = 0;
  for (guint i = 0; i < json_array_get_length (units); i++)
    {
      JsonObject *u = json_array_get_object_element (units, i);
      if (!json_object_has_member (u, "certificate") ||
          g_strcmp0 (json_object_get_string_member (u, "certificate_status"), "active") != 0)
        continue;
      g_autofree gchar *out = st_check_cert_with_stock_tools (
          f, json_object_get_string_member (u, "certificate"), chain,
          json_object_get_string_member (u, "uid"));
      g_assert_nonnull (strstr (out, "Basic Constraints (critical):"));
      g_assert_nonnull (strstr (out, "Key Usage (critical):"));
      checked++;
    }
  return checked;
}

static void
test_batch_three_ports (StFixture *f, gconstpointer data)
{
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 6);
  g_autofree gchar *p1 = st_start_devsim (f, "--units", "2", "--seed", "101", NULL);
  g_autofree gchar *p2 = st_start_devsim (f, "--units", "2", "--seed", "202", NULL);
  g_autofree gchar *p3 = st_start_devsim (f, "--units", "2", "--seed", "303", NULL);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  g_autofree gchar *out = NULL;
  int rc = st_run_station (f, &out, NULL, "batch", "run", id, "--port", p1, "--port", p2,
                           "--port", p3, "--units", "2", "--wait", "20", NULL);
  g_assert_cmpint (rc, ==, 0);
  g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, 6);
  /* each socket: first a line that the line waits on it, then its two units */
  const char *const ports[] = { p1, p2, p3 };
  for (guint i = 0; i < G_N_ELEMENTS (ports); i++)
    {
      g_autofree gchar *waiting = g_strconcat ("waiting for a device on ", ports[i], NULL);
      g_assert_cmpuint (st_count_lines (out, waiting), ==, 1);
      g_assert_cmpuint (st_count_lines (out, ports[i]), ==, 3);
      g_assert_true (strstr (out, waiting) < strstr (out, " PASSED "));
    }

  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_station (f, &out, NULL, "batch", "show", id, NULL), ==, 0);
  g_assert_cmpuint (st_count_lines (out, " done "), ==, 6);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_station (f, &out, NULL, "db", "check", NULL), ==, 0);

  /* The batch is full: a seventh device is refused, nothing more is issued. */
  g_autofree gchar *p4 = st_start_devsim (f, "--units", "1", "--seed", "404", NULL);
  g_clear_pointer (&out, g_free);
  rc = st_run_station (f, &out, NULL, "batch", "run", id, "--port", p4, "--units", "1", NULL);
  g_assert_cmpint (rc, ==, 1);
  g_assert_cmpuint (st_count_lines (out, " REFUSED "), ==, 1);

  g_assert_cmpint (st_run_station (f, NULL, NULL, "batch", "close", id, NULL), ==, 0);
  g_autofree gchar *dir = g_build_filename (f->tmp, "manifest", NULL);
  st_export (f, batch, dir);

  /* Stock OpenSSL accepts the detached signature over SHA256SUMS, and
   * sha256sum the files it lists. */
  g_autofree gchar *json = g_build_filename (dir, "manifest.json", NULL);
  g_autofree gchar *sums = g_build_filename (dir, "SHA256SUMS", NULL);
  g_autofree gchar *p7s = g_build_filename (dir, "SHA256SUMS.p7s", NULL);
  g_autofree gchar *root = g_build_filename (f->home, "demo-root.pem", NULL);
  g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "cms", "-verify", "-binary", "-inform", "DER",
                                "-in", p7s, "-content", sums, "-CAfile", root, "-out", "/dev/null", NULL), ==, 0);
  g_autofree gchar *sums_check = g_strdup_printf ("cd '%s' && sha256sum --strict -c SHA256SUMS", dir);
  g_assert_cmpint (st_run_tool (NULL, NULL, "sh", "-c", sums_check, NULL), ==, 0);
  g_assert_cmpuint (st_check_certs_with_stock_tools (f, dir), ==, 6);

  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_station (f, &out, NULL, "manifest", "verify", dir, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "manifest verified"));

  /* One changed byte in manifest.json: both verifiers refuse it. */
  g_autofree gchar *text = NULL;
  g_assert_true (g_file_get_contents (json, &text, NULL, NULL));
  gchar *wo = strstr (text, "WO-TEST-1");
  g_assert_nonnull (wo);
  wo[8] = '2';
  g_assert_true (g_file_set_contents (json, text, -1, NULL));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_station (f, &out, NULL, "manifest", "verify", dir, NULL), ==, 1);
  g_assert_nonnull (strstr (out, "FAIL  manifest.json: its SHA-256 is"));
  g_assert_cmpint (st_run_tool (NULL, NULL, "sh", "-c", sums_check, NULL), !=, 0);
}

/* Devices do not arrive evenly: with no --units, the sockets share what the
 * batch still needs. One socket gets every device, the other none (its
 * adapter is not even plugged in); the batch is done all the same, and the
 * empty socket stops waiting once it is, instead of waiting for a share. */
static void
test_batch_uneven_arrivals (StFixture *f, gconstpointer data)
{
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 3);
  g_autofree gchar *busy = st_start_devsim (f, "--units", "4", "--seed", "611", NULL);
  g_autofree gchar *empty = g_build_filename (f->tmp, "ttyUSB-not-plugged", NULL);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  g_autofree gchar *out = NULL;
  int rc = st_run_station (f, &out, NULL, "batch", "run", id, "--port", busy, "--port", empty,
                           "--wait", "120", NULL);
  g_test_message ("%s", out);
  g_assert_cmpint (rc, ==, 0);
  g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, 3);
  g_assert_nonnull (strstr (out, "3 passed, 0 failed, 0 refused; the batch has all its units"));
  g_assert_null (strstr (out, "gave up"));  /* it stopped with the batch, not after its 120 s */
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_station (f, &out, NULL, "batch", "show", id, NULL), ==, 0);
  g_assert_cmpuint (st_count_lines (out, " done "), ==, 3);
}

static guint
st_json_int (JsonObject *o, const char *name)
{
  return json_object_has_member (o, name) ? (guint) json_object_get_int_member (o, name) : G_MAXUINT;
}

/* Line noise and dropped responses: every unit passes, one key per device. */
static void
test_noise_and_drops (StFixture *f, gconstpointer data)
{
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 6);
  g_autofree gchar *s1 = g_build_filename (f->tmp, "sim1.json", NULL);
  g_autofree gchar *s2 = g_build_filename (f->tmp, "sim2.json", NULL);
  g_autofree gchar *p1 = st_start_devsim (f, "--units", "3", "--seed", "11", "--state", s1,
                                          "--fault", "noise", "--fault", "drop", NULL);
  g_autofree gchar *p2 = st_start_devsim (f, "--units", "3", "--seed", "22", "--state", s2,
                                          "--fault", "drop", NULL);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  g_autofree gchar *out = NULL;
  int rc = st_run_station (f, &out, NULL, "batch", "run", id, "--port", p1, "--port", p2,
                           "--units", "3", "--wait", "30", NULL);
  g_assert_cmpint (rc, ==, 0);
  g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, 6);

  const char *states[] = { s1, s2 };
  for (guint s = 0; s < G_N_ELEMENTS (states); s++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(JsonParser) parser = st_test_load_json (states[s]);
      JsonObject *top = json_node_get_object (json_parser_get_root (parser));
      JsonArray *devices = json_object_get_array_member (top, "devices");
      g_assert_cmpuint (json_array_get_length (devices), ==, 3);
      for (guint i = 0; i < 3; i++)
        {
          JsonObject *d = json_array_get_object_element (devices, i);
          g_assert_cmpuint (st_json_int (d, "keys_made"), ==, 1);
          g_assert_cmpuint (st_json_int (d, "commits"), ==, 1);
        }
    }
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_station (f, &out, NULL, "db", "check", NULL), ==, 0);
}

/* A crash at @point leaves a unit mid-pipeline; the next run finishes it. */
static void
st_check_resume (StFixture *f, const char *point, const char *expect_state)
{
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 2);
  g_autofree gchar *state = g_build_filename (f->tmp, "sim.json", NULL);
  g_autofree gchar *port = st_start_devsim (f, "--units", "2", "--seed", "77", "--state", state, NULL);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  g_autofree gchar *crash = g_strdup_printf ("STATION_CRASH_AT=%s", point);
  const char *env[] = { crash, NULL };
  const char *args[] = { "batch", "run", id, "--port", port, "--units", "1", NULL };
  g_autofree gchar *out = NULL, *err = NULL;
  int rc = st_run_stationv (f, env, &out, &err, args);
  g_assert_cmpint (rc, ==, 128 + SIGKILL);

  g_autofree gchar *show = NULL;
  g_assert_cmpint (st_run_station (f, &show, NULL, "batch", "show", id, NULL), ==, 0);
  g_assert_cmpuint (st_count_lines (show, expect_state), ==, 1);

  /* Restart: the same device is still in the socket. */
  g_clear_pointer (&out, g_free);
  rc = st_run_station (f, &out, NULL, "batch", "run", id, "--port", port, "--units", "2", "--wait", "20", NULL);
  g_assert_cmpint (rc, ==, 0);
  g_assert_nonnull (strstr (out, "Recovered from an earlier interruption"));
  g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, 2);
  g_assert_cmpuint (st_count_lines (out, "resumed"), ==, 1);

  g_clear_pointer (&show, g_free);
  g_assert_cmpint (st_run_station (f, &show, NULL, "batch", "show", id, NULL), ==, 0);
  g_assert_cmpuint (st_count_lines (show, " done "), ==, 2);
  g_assert_cmpuint (st_count_lines (show, " active "), ==, 2);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_station (f, &out, NULL, "db", "check", NULL), ==, 0);

  /* The device holds the certificate on record, made from one key. */
  g_autoptr(JsonParser) parser = st_test_load_json (state);
  JsonArray *devices = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)), "devices");
  JsonObject *d0 = json_array_get_object_element (devices, 0);
  g_assert_cmpuint (st_json_int (d0, "keys_made"), ==, 1);
  g_assert_cmpuint (st_json_int (d0, "commits"), ==, 1);
}

static void
test_resume_issued (StFixture *f, gconstpointer data)
{
  st_check_resume (f, "after-issued", " issued ");
}

static void
test_resume_written (StFixture *f, gconstpointer data)
{
  st_check_resume (f, "after-write-cert", " issued ");
}

static void
test_resume_committed (StFixture *f, gconstpointer data)
{
  st_check_resume (f, "after-commit", " issued ");
}

/* A crash before the certificate was recorded as issued: the reserved
 * certificate is voided (it never left the station) and the device gets a
 * new one. */
static void
test_crash_before_issued (StFixture *f, gconstpointer data)
{
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 1);
  g_autofree gchar *port = st_start_devsim (f, "--units", "1", "--seed", "78", NULL);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  const char *env[] = { "STATION_CRASH_AT=after-sign", NULL };
  const char *args[] = { "batch", "run", id, "--port", port, "--units", "1", NULL };
  g_assert_cmpint (st_run_stationv (f, env, NULL, NULL, args), ==, 128 + SIGKILL);
  g_autofree gchar *out = NULL;
  int rc = st_run_station (f, &out, NULL, "batch", "run", id, "--port", port, "--units", "1",
                           "--wait", "20", NULL);
  g_assert_cmpint (rc, ==, 0);
  g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, 1);
  g_autofree gchar *show = NULL;
  g_assert_cmpint (st_run_station (f, &show, NULL, "batch", "show", id, NULL), ==, 0);
  g_assert_cmpuint (st_count_lines (show, " voided "), ==, 1);
  g_assert_cmpuint (st_count_lines (show, " active "), ==, 1);
}

static void
test_station_key (StFixture *f, gconstpointer data)
{
  gint64 batch = st_create_batch (f, "example-station-key.profile", 2);
  g_autofree gchar *p1 = st_start_devsim (f, "--units", "2", "--seed", "505", NULL);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  g_autofree gchar *out = NULL;
  int rc = st_run_station (f, &out, NULL, "batch", "run", id, "--port", p1, "--units", "2", NULL);
  g_assert_cmpint (rc, ==, 0);
  g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, 2);
  g_autofree gchar *dir = g_build_filename (f->tmp, "manifest", NULL);
  st_export (f, batch, dir);
  g_assert_cmpuint (st_check_certs_with_stock_tools (f, dir), ==, 2);
  /* The station's copy of the key never reaches its disk. */
  g_autofree gchar *db = g_build_filename (f->home, "station.db", NULL);
  g_autofree gchar *dump = NULL;
  g_assert_cmpint (st_run_tool (&dump, NULL, "sqlite3", db, ".dump", NULL), ==, 0);
  g_assert_null (strstr (dump, "PRIVATE KEY"));
}

/* Devices that must not be provisioned, and devices that lie. */
static void
test_refusals_and_hostile_devices (StFixture *f, gconstpointer data)
{
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 10);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  struct { const char *fault; const char *outcome; const char *step; } cases[] = {
    { "locked", " REFUSED ", "identify" },
    { "bad-csr-sig", " FAILED ", "csr" },
    { "csr-trailing", " FAILED ", "csr" },
    { "wrong-curve", " FAILED ", "csr" },
    { "pop-other-key", " FAILED ", "proof-of-possession" },
    { "readback-differs", " FAILED ", "read-back" },
    { "commit-storage", " FAILED ", "commit" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree gchar *seed = g_strdup_printf ("%u", 900 + i);
      g_autofree gchar *port = st_start_devsim (f, "--units", "1", "--seed", seed, "--fault", cases[i].fault, NULL);
      g_autofree gchar *out = NULL;
      int rc = st_run_station (f, &out, NULL, "batch", "run", id, "--port", port, "--units", "1", NULL);
      g_test_message ("fault %s", cases[i].fault);
      g_assert_cmpint (rc, ==, 1);
      g_assert_cmpuint (st_count_lines (out, cases[i].outcome), ==, 1);
      g_autofree gchar *step = g_strdup_printf ("step %s:", cases[i].step);
      g_assert_cmpuint (st_count_lines (out, step), ==, 1);
    }
  /* A CSR asking for CA:TRUE, SANs and its own subject gets the profile's certificate. */
  g_autofree gchar *greedy = st_start_devsim (f, "--units", "1", "--seed", "990", "--fault", "csr-greedy", NULL);
  g_autofree gchar *out = NULL;
  g_assert_cmpint (st_run_station (f, &out, NULL, "batch", "run", id, "--port", greedy, "--units", "1", NULL), ==, 0);
  /* The same device again (same seed, same uid): already provisioned. */
  g_autofree gchar *again = st_start_devsim (f, "--units", "1", "--seed", "990", NULL);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_station (f, &out, NULL, "batch", "run", id, "--port", again, "--units", "1", NULL), ==, 1);
  g_assert_nonnull (strstr (out, "already provisioned"));

  g_autofree gchar *dir = g_build_filename (f->tmp, "manifest", NULL);
  st_export (f, batch, dir);
  g_assert_cmpuint (st_check_certs_with_stock_tools (f, dir), ==, 1);
  g_autoptr(JsonParser) parser = NULL;
  JsonArray *units = st_manifest_units (dir, &parser);
  guint with_cert = 0, voided = 0;
  for (guint i = 0; i < json_array_get_length (units); i++)
    {
      JsonObject *u = json_array_get_object_element (units, i);
      if (json_object_has_member (u, "certificate"))
        {
          with_cert++;
          if (g_strcmp0 (json_object_get_string_member (u, "certificate_status"), "voided") == 0)
            voided++;
        }
    }
  /* Issued: the PoP, read-back and commit failures (all voided) and the greedy one. */
  g_assert_cmpuint (with_cert, ==, 4);
  g_assert_cmpuint (voided, ==, 3);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_station (f, &out, NULL, "manifest", "verify", dir, NULL), ==, 0);
}

/* QA re-verification of flashed units, put back into a socket. */
static void
test_qa_unit_verify (StFixture *f, gconstpointer data)
{
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 2);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  g_autofree gchar *state = g_build_filename (f->tmp, "sim.json", NULL);
  /* The second device proves possession with another key: it fails. */
  g_autofree gchar *port = st_start_devsim (f, "--units", "2", "--seed", "31", "--state", state,
                                            "--fault", "pop-other-key", "--fault-unit", "2", NULL);
  g_autofree gchar *out = NULL;
  g_assert_cmpint (st_run_station (f, &out, NULL, "batch", "run", id, "--port", port, "--units", "2", NULL), ==, 1);
  g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, 1);
  st_stop_devsims (f);

  /* The good unit in the QA socket: every check passes, and it is recorded. */
  g_autofree gchar *qa1 = st_start_devsim (f, "--state", state, "--present", "1", NULL);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_station (f, &out, NULL, "unit", "verify", "--port", qa1, NULL), ==, 0);
  const char *checks[] = { "committed", "certificate", "chain", "proof-of-possession", "record" };
  for (guint i = 0; i < G_N_ELEMENTS (checks); i++)
    {
      g_autofree gchar *line = g_strdup_printf ("ok    %s", checks[i]);
      g_assert_cmpuint (st_count_lines (out, line), ==, 1);
    }
  g_assert_nonnull (strstr (out, "PASS"));
  st_stop_devsims (f);

  /* The failed one: never committed, nothing live on record. */
  g_autofree gchar *qa2 = st_start_devsim (f, "--state", state, "--present", "2", NULL);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_station (f, &out, NULL, "unit", "verify", "--port", qa2, NULL), ==, 1);
  g_assert_cmpuint (st_count_lines (out, "FAIL  committed"), ==, 1);
  g_assert_cmpuint (st_count_lines (out, "FAIL  record"), ==, 1);

  /* Both verifications are on record. */
  g_autofree gchar *db = g_build_filename (f->home, "station.db", NULL);
  g_autofree gchar *events = NULL;
  g_assert_cmpint (st_run_tool (&events, NULL, "sqlite3", db,
                                "SELECT count(*) FROM events WHERE event = 'qa-verify-unit'", NULL), ==, 0);
  g_assert_cmpint (g_ascii_strtoll (events, NULL, 10), ==, 2);
}

/* `station bench`: what it prints adds up (no timing is asserted: figures
 * are measured, not tested), its scratch database goes away, and the
 * station's own records are untouched. */
static void
test_bench (StFixture *f, gconstpointer data)
{
  gint64 units_before = st_sql_int (f, "SELECT count(*) FROM units");

  g_autofree gchar *out = NULL;
  g_autofree gchar *err = NULL;
  g_assert_cmpint (st_run_station (f, &out, &err, "bench", "--units", "10", "--slots", "3", NULL), ==, 0);
  g_test_message ("%s", out);
  /* 10 units on 3 sockets round up to 4 per socket */
  g_assert_cmpuint (st_count_lines (out, "raw issuance (build, sign in the HSM, verify, lint): 12 certificates in "), ==, 1);
  g_assert_cmpuint (st_count_lines (out, "  12 units on 3 sockets in "), ==, 1);
  /* the batch, then three durable transitions per unit */
  g_assert_cmpuint (st_count_lines (out, "  database: 37 durable writes in "), ==, 1);
  /* every device took a key made before the clock started */
  g_assert_cmpuint (st_count_lines (out, "  simulated devices: their 12 key pairs and CSRs made before the clock started"), ==, 1);
  g_assert_cmpuint (st_count_lines (out, "ms per certificate, one thread"), ==, 1);
  g_assert_cmpuint (st_count_lines (out, "ms per unit (the station's own: "), ==, 1);
  g_assert_cmpuint (st_count_lines (out, "ratio end-to-end / raw issuance: "), ==, 1);
  const char *ratio = strstr (out, "ratio end-to-end / raw issuance: ");
  g_assert_cmpfloat (g_ascii_strtod (ratio + strlen ("ratio end-to-end / raw issuance: "), NULL), >, 0.0);
  /* the long-run figures: a tenth of 12 units is 1; the scratch database
   * holds at least the 12 certificates; the service has a resident set */
  g_assert_cmpuint (st_count_lines (out, "over the run: first 1 units "), ==, 1);
  g_assert_cmpuint (st_count_lines (out, ", last 1 units "), ==, 1);
  const char *bytes = strstr (out, "\ndatabase: ");
  g_assert_nonnull (bytes);
  g_assert_cmpfloat (g_ascii_strtod (bytes + strlen ("\ndatabase: "), NULL), >, 300.0);
  const char *rss = strstr (out, "the service's peak RSS: ");
  g_assert_nonnull (rss);
  g_assert_cmpfloat (g_ascii_strtod (rss + strlen ("the service's peak RSS: "), NULL), >, 1.0);

  g_autoptr(GDir) dir = g_dir_open (f->home, 0, NULL);
  for (const char *name = g_dir_read_name (dir); name != NULL; name = g_dir_read_name (dir))
    g_assert_false (g_str_has_prefix (name, "bench-"));
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM units"), ==, units_before);

  /* Arguments out of range are refused with what is allowed. */
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station (f, NULL, &err, "bench", "--units", "10", "--slots", "0", NULL), ==, ST_RC_USAGE);
  g_assert_nonnull (strstr (err, "--slots 1..64"));
}

/* Every product serial and every certificate serial of the station, unique:
 * @n_units done units in all. */
static void
st_check_serials_unique (StFixture *f, guint n_units)
{
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM units WHERE state = 'done'"), ==, n_units);
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM (SELECT b.product, u.product_serial "
                                  "FROM units u JOIN batches b ON b.id = u.batch_id "
                                  "WHERE u.product_serial IS NOT NULL "
                                  "GROUP BY b.product, u.product_serial HAVING count(*) > 1)"), ==, 0);
  g_assert_cmpint (st_sql_int (f, "SELECT count(DISTINCT product_serial) FROM units "
                                  "WHERE state = 'done'"), ==, n_units);
  g_assert_cmpint (st_sql_int (f, "SELECT count(DISTINCT serial) FROM certificates "
                                  "WHERE state = 'active'"), ==, n_units);
  st_check_db_invariants (f);
}

/* Two batches of one product run at once, each on sockets of its own, in
 * one service: their product serials and certificate serials never meet. */
static void
test_serials_two_batches_at_once (StFixture *f, gconstpointer data)
{
  gint64 b1 = st_create_batch (f, "example-device-csr.profile", 6);
  gint64 b2 = st_create_batch (f, "example-device-csr.profile", 6);
  g_autofree gchar *id1 = g_strdup_printf ("%" G_GINT64_FORMAT, b1);
  g_autofree gchar *id2 = g_strdup_printf ("%" G_GINT64_FORMAT, b2);
  g_autofree gchar *p1 = st_start_devsim (f, "--units", "3", "--seed", "301", NULL);
  g_autofree gchar *p2 = st_start_devsim (f, "--units", "3", "--seed", "302", NULL);
  g_autofree gchar *p3 = st_start_devsim (f, "--units", "3", "--seed", "303", NULL);
  g_autofree gchar *p4 = st_start_devsim (f, "--units", "3", "--seed", "304", NULL);
  const char *run1[] = { "batch", "run", id1, "--port", p1, "--port", p2, "--units", "3", NULL };
  const char *run2[] = { "batch", "run", id2, "--port", p3, "--port", p4, "--units", "3", NULL };
  g_autoptr(GSubprocess) c1 = st_start_station (f, NULL, run1);
  g_autoptr(GSubprocess) c2 = st_start_station (f, NULL, run2);
  g_autofree gchar *o1 = NULL, *o2 = NULL;
  g_assert_cmpint (st_finish_station (c1, &o1, NULL), ==, 0);
  g_assert_cmpint (st_finish_station (c2, &o2, NULL), ==, 0);
  g_assert_cmpuint (st_count_lines (o1, " PASSED "), ==, 6);
  g_assert_cmpuint (st_count_lines (o2, " PASSED "), ==, 6);
  /* each client printed its own batch's units only */
  g_assert_cmpuint (st_count_lines (o1, p3), ==, 0);
  g_assert_cmpuint (st_count_lines (o2, p1), ==, 0);
  st_check_serials_unique (f, 12);

  /* a socket of one line cannot join another: batch 1 waits on p1 (its
   * devices are done), batch 2 may not take p1 meanwhile */
  const char *wait1[] = { "batch", "run", id1, "--port", p1, "--units", "1", "--wait", "30", NULL };
  g_autoptr(GSubprocess) c3 = st_start_station (f, NULL, wait1);
  /* batch 1's line holds p1 before batch 2 asks for it */
  g_autofree gchar *running = g_strdup_printf ("running batch %s", id1);
  gboolean holds = FALSE;
  for (guint i = 0; i < 200 && !holds; i++)
    {
      g_autofree gchar *status = NULL;
      g_assert_cmpint (st_run_station (f, &status, NULL, "status", NULL), ==, 0);
      holds = strstr (status, running) != NULL;
      if (!holds)
        g_usleep (50 * 1000);
    }
  g_assert_true (holds);
  g_autofree gchar *err = NULL;
  int rc = st_run_station (f, NULL, &err, "batch", "run", id2, "--port", p1, "--units", "1",
                           "--wait", "1", NULL);
  g_assert_cmpint (rc, ==, ST_RC_ERROR);
  g_assert_nonnull (strstr (err, "is in the line of batch"));
  /* `batch stop BATCH` stops that line only */
  g_assert_cmpint (st_run_station (f, NULL, NULL, "batch", "stop", id1, NULL), ==, 0);
  g_autofree gchar *o3 = NULL;
  g_assert_cmpint (st_finish_station (c3, &o3, NULL), ==, 1);
  g_assert_nonnull (strstr (o3, "0 passed, 0 failed, 0 refused"));
}

/* Two batches of one product, one after the other: the second goes on from
 * where the first stopped. */
static void
test_serials_two_batches_in_turn (StFixture *f, gconstpointer data)
{
  for (guint k = 0; k < 2; k++)
    {
      gint64 b = st_create_batch (f, "example-device-csr.profile", 3);
      g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, b);
      g_autofree gchar *seed = g_strdup_printf ("%u", 310 + k);
      g_autofree gchar *port = st_start_devsim (f, "--units", "3", "--seed", seed, NULL);
      g_autofree gchar *out = NULL;
      g_assert_cmpint (st_run_station (f, &out, NULL, "batch", "run", id, "--port", port, "--units",
                                       "3", NULL), ==, 0);
      g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, 3);
      st_stop_devsims (f);
    }
  st_check_serials_unique (f, 6);
  g_autofree gchar *last = st_sql (f, "SELECT product_serial FROM units ORDER BY id DESC LIMIT 1");
  g_assert_true (g_str_has_suffix (last, "000006"));
}

/* ---- a held socket over D-Bus (issue 17): what the GUI asks of the line ----
 * The service's own API, as station-gui calls it, on a connection of the
 * test's own: LineStart with "hold-failures", LinePortRetry and
 * LinePortStart (the GUI's Acknowledge). */

typedef struct {
  GPtrArray *results;          /* "OUTCOME UID" of each UnitResult (PASSED, FAILED, REFUSED) */
  guint steps;
  gboolean ended;
} StLineWatch;

static void
st_line_watch_signal (GDBusConnection *connection, const char *sender, const char *path,
                      const char *iface, const char *signal, GVariant *params, gpointer data)
{
  StLineWatch *w = data;
  if (g_strcmp0 (signal, "UnitResult") == 0)
    {
      g_autoptr(GVariant) d = g_variant_get_child_value (params, 0);
      const char *outcome = "", *uid = "";
      g_variant_lookup (d, "outcome", "&s", &outcome);
      g_variant_lookup (d, "uid", "&s", &uid);
      g_ptr_array_add (w->results, g_strdup_printf ("%s %s", outcome, uid));
      g_test_message ("unit: %s %s", outcome, uid);
    }
  else if (g_strcmp0 (signal, "UnitStep") == 0)
    w->steps++;
  else if (g_strcmp0 (signal, "LineEnded") == 0)
    w->ended = TRUE;
}

static GVariant *
st_line_call (GDBusConnection *c, const char *method, GVariant *params, const char *reply)
{
  g_autoptr(GError) error = NULL;
  GVariant *r = g_dbus_connection_call_sync (c, NULL, "/org/station/Station1", "org.station.Station1", method,
                                             params, reply != NULL ? G_VARIANT_TYPE (reply) : NULL,
                                             G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  g_assert_no_error (error);
  return r;
}

/* Runs the main context until @n results came, or with @n 0 until the
 * line ended (or @seconds passed). */
static void
st_line_wait (StLineWatch *w, guint n, guint seconds)
{
  gint64 end = g_get_monotonic_time () + (gint64) seconds * G_USEC_PER_SEC;
  while ((n > 0 ? w->results->len < n : !w->ended) && g_get_monotonic_time () < end)
    {
      while (g_main_context_iteration (NULL, FALSE))
        ;
      g_usleep (20000);
    }
}

/* A connection of the test's own to the service, as station-gui has one:
 * @w records the line's signals, the operator "op" is logged in. */
static GDBusConnection *
st_line_watch_open (StFixture *f, StLineWatch *w, guint *sub)
{
  g_autofree gchar *address = g_strdup_printf ("unix:path=%s/stationd.sock", f->home);
  g_autoptr(GError) error = NULL;
  GDBusConnection *c = g_dbus_connection_new_for_address_sync (
      address, G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT, NULL, NULL, &error);
  g_assert_no_error (error);
  w->results = g_ptr_array_new_with_free_func (g_free);
  *sub = g_dbus_connection_signal_subscribe (c, NULL, "org.station.Station1", NULL, "/org/station/Station1",
                                             NULL, G_DBUS_SIGNAL_FLAGS_NONE, st_line_watch_signal, w, NULL);
  g_autoptr(GVariant) role = st_line_call (c, "Login", g_variant_new ("(ss)", "op", "1111"), "(s)");
  return c;
}

static void
test_held_socket (StFixture *f, gconstpointer data)
{
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 2);
  /* three devices one after another: the first one's key request is bad;
   * the simulated operator swaps a device once the station, polling it
   * again, has seen its result */
  g_autofree gchar *port = st_start_devsim (f, "--units", "3", "--seed", "1717", "--fault", "bad-csr-sig",
                                            "--fault-unit", "1", NULL);
  StLineWatch w = { 0 };
  guint sub = 0;
  g_autoptr(GDBusConnection) c = st_line_watch_open (f, &w, &sub);
  GVariantBuilder opts;
  g_variant_builder_init (&opts, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&opts, "{sv}", "hold-failures", g_variant_new_boolean (TRUE));
  g_variant_builder_add (&opts, "{sv}", "wait", g_variant_new_uint32 (0));
  const char *ports[] = { port, NULL };
  g_autoptr(GVariant) info = st_line_call (c, "LineStart", g_variant_new ("(x^asu@a{sv})", batch, ports, 0u,
                                                                          g_variant_builder_end (&opts)),
                                           "(a{sv})");

  /* the first device fails, and the socket holds: no step, no device,
   * and the line goes on running */
  st_line_wait (&w, 1, 120);
  g_assert_cmpuint (w.results->len, ==, 1);
  const char *first = g_ptr_array_index (w.results, 0);
  g_assert_true (g_str_has_prefix (first, "FAILED "));
  g_autofree gchar *uid1 = g_strdup (first + strlen ("FAILED "));
  guint steps = w.steps;
  st_line_wait (&w, 2, 4);
  g_assert_cmpuint (w.results->len, ==, 1);
  g_assert_cmpuint (w.steps, ==, steps);
  g_assert_false (w.ended);

  /* Retry runs the same device again, and holds again */
  g_autoptr(GVariant) r1 = st_line_call (c, "LinePortRetry", g_variant_new ("(su)", port, 0u), NULL);
  st_line_wait (&w, 2, 120);
  g_assert_cmpuint (w.results->len, ==, 2);
  g_autofree gchar *again = g_strdup_printf ("FAILED %s", uid1);
  g_assert_cmpstr (g_ptr_array_index (w.results, 1), ==, again);
  g_assert_false (w.ended);

  /* the acknowledgement (LinePortStart): the failed device, still in the
   * socket, is not run again; the next two pass and the batch is done */
  g_autoptr(GVariant) r2 = st_line_call (c, "LinePortStart", g_variant_new ("(xsu)", batch, port, 0u), NULL);
  st_line_wait (&w, 3, 120);
  g_assert_cmpuint (w.results->len, >=, 3);
  g_assert_cmpstr (g_ptr_array_index (w.results, 2), !=, again);
  st_line_wait (&w, 4, 120);
  for (guint i = 0; i < w.results->len; i++)
    g_test_message ("result %u: %s", i, (const char *) g_ptr_array_index (w.results, i));
  g_assert_cmpuint (w.results->len, ==, 4);
  for (guint i = 2; i < 4; i++)
    {
      const char *r = g_ptr_array_index (w.results, i);
      g_assert_true (g_str_has_prefix (r, "PASSED "));
      g_assert_cmpstr (r + strlen ("PASSED "), !=, uid1);
    }
  g_assert_cmpstr (g_ptr_array_index (w.results, 2), !=, g_ptr_array_index (w.results, 3));
  st_line_wait (&w, 0, 60);
  g_assert_true (w.ended);
  g_autofree gchar *q = g_strdup_printf ("SELECT COUNT(*) FROM units WHERE batch_id = %" G_GINT64_FORMAT
                                         " AND state = 'done'", batch);
  g_assert_cmpint (st_sql_int (f, q), ==, 2);
  g_dbus_connection_signal_unsubscribe (c, sub);
  g_ptr_array_unref (w.results);
  st_check_db_invariants (f);
}

/* A new line skips what LineStart's skip-uids names (the GUI's memory of
 * a failed device the operator acknowledged, across lines), and refuses a
 * socket that is not in the line. */
static void
test_skip_uids (StFixture *f, gconstpointer data)
{
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 1);
  g_autofree gchar *port = st_start_devsim (f, "--units", "2", "--seed", "1818", "--fault", "bad-csr-sig",
                                            "--fault-unit", "1", NULL);
  StLineWatch w = { 0 };
  guint sub = 0;
  g_autoptr(GDBusConnection) c = st_line_watch_open (f, &w, &sub);
  const char *ports[] = { port, NULL };

  /* a socket that is not in the line: refused, no line starts */
  GVariantBuilder opts;
  g_variant_builder_init (&opts, G_VARIANT_TYPE_VARDICT);
  GVariantBuilder skip;
  g_variant_builder_init (&skip, G_VARIANT_TYPE ("a{ss}"));
  g_variant_builder_add (&skip, "{ss}", "/dev/not-in-this-line", "00aa");
  g_variant_builder_add (&opts, "{sv}", "skip-uids", g_variant_builder_end (&skip));
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) refused = g_dbus_connection_call_sync (
      c, NULL, "/org/station/Station1", "org.station.Station1", "LineStart",
      g_variant_new ("(x^asu@a{sv})", batch, ports, 0u, g_variant_builder_end (&opts)), NULL,
      G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  g_assert_null (refused);
  g_assert_nonnull (error);
  g_test_message ("refused: %s", error->message);
  g_assert_nonnull (strstr (error->message, "not a socket of this line"));
  g_clear_error (&error);

  /* the faulty first device fails; the line is stopped */
  g_variant_builder_init (&opts, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&opts, "{sv}", "hold-failures", g_variant_new_boolean (TRUE));
  g_autoptr(GVariant) i1 = st_line_call (c, "LineStart", g_variant_new ("(x^asu@a{sv})", batch, ports, 0u,
                                                                        g_variant_builder_end (&opts)),
                                         "(a{sv})");
  st_line_wait (&w, 1, 120);
  g_assert_cmpuint (w.results->len, ==, 1);
  const char *first = g_ptr_array_index (w.results, 0);
  g_assert_true (g_str_has_prefix (first, "FAILED "));
  g_autofree gchar *uid1 = g_strdup (first + strlen ("FAILED "));
  g_autoptr(GVariant) stop = st_line_call (c, "LineStop", g_variant_new ("(x)", batch), NULL);
  st_line_wait (&w, 0, 60);
  g_assert_true (w.ended);

  /* a new line told to skip it: the failed device, still in the socket,
   * is not run again; the next one passes and the batch is done */
  w.ended = FALSE;
  g_variant_builder_init (&opts, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&opts, "{sv}", "hold-failures", g_variant_new_boolean (TRUE));
  g_variant_builder_init (&skip, G_VARIANT_TYPE ("a{ss}"));
  g_variant_builder_add (&skip, "{ss}", port, uid1);
  g_variant_builder_add (&opts, "{sv}", "skip-uids", g_variant_builder_end (&skip));
  g_autoptr(GVariant) i2 = st_line_call (c, "LineStart", g_variant_new ("(x^asu@a{sv})", batch, ports, 0u,
                                                                        g_variant_builder_end (&opts)),
                                         "(a{sv})");
  st_line_wait (&w, 2, 120);
  g_assert_cmpuint (w.results->len, ==, 2);
  const char *second = g_ptr_array_index (w.results, 1);
  g_test_message ("second line: %s", second);
  g_assert_true (g_str_has_prefix (second, "PASSED "));
  g_assert_cmpstr (second + strlen ("PASSED "), !=, uid1);
  st_line_wait (&w, 0, 60);
  g_assert_true (w.ended);
  g_dbus_connection_signal_unsubscribe (c, sub);
  g_ptr_array_unref (w.results);
  st_check_db_invariants (f);
}

int
main (int argc, char **argv)
{
  st_test_init (&argc, &argv);
  st_test_add_station ("/line/batch-three-ports", NULL, test_batch_three_ports);
  st_test_add_station ("/line/batch-uneven-arrivals", NULL, test_batch_uneven_arrivals);
  st_test_add_station ("/line/noise-and-drops", NULL, test_noise_and_drops);
  st_test_add_station ("/line/resume-issued", NULL, test_resume_issued);
  st_test_add_station ("/line/resume-written", NULL, test_resume_written);
  st_test_add_station ("/line/resume-committed", NULL, test_resume_committed);
  st_test_add_station ("/line/crash-before-issued", NULL, test_crash_before_issued);
  st_test_add_station ("/line/station-key", NULL, test_station_key);
  st_test_add_station ("/line/refusals-and-hostile-devices", NULL, test_refusals_and_hostile_devices);
  st_test_add_station ("/line/qa-unit-verify", NULL, test_qa_unit_verify);
  st_test_add_station ("/line/bench", NULL, test_bench);
  st_test_add_station ("/line/serials-two-batches-at-once", NULL, test_serials_two_batches_at_once);
  st_test_add_station ("/line/serials-two-batches-in-turn", NULL, test_serials_two_batches_in_turn);
  st_test_add_station ("/line/held-socket", NULL, test_held_socket);
  st_test_add_station ("/line/skip-uids", NULL, test_skip_uids);
  return g_test_run ();
}
