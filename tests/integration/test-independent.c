/* The station against an independent device side of the agent protocol:
 * tests/independent/agentdev.py, written from the protocol text alone
 * (own COBS, CRC-32, frames; python3-cryptography for keys), on real
 * pseudo-terminals. Well-behaved devices must all pass, with certificates
 * that stock OpenSSL and GnuTLS accept; hostile ones must get no bad
 * certificate, and the station must neither crash nor hold up the healthy
 * sockets. */
#include <json-glib/json-glib.h>
#include <string.h>

#include "st-test-run.h"
#include "st-test-json.h"

static gchar *
st_agentdev (StFixture *f, const char *mode, guint units, guint seed, const char *state)
{
  g_autofree gchar *script = g_build_filename (g_getenv ("ST_SOURCE_DIR"), "tests", "independent",
                                               "agentdev.py", NULL);
  g_autofree gchar *u = g_strdup_printf ("%u", units);
  g_autofree gchar *s = g_strdup_printf ("%u", seed);
  const char *argv[] = { "python3", script, "--mode", mode, "--units", u, "--seed", s,
                         "--state", state, NULL };
  return st_start_device_program (f, argv);
}

/* Checks the committed certificate of every device of a state file with
 * OpenSSL's and GnuTLS's command-line tools, against the demo root and the
 * exported chain; returns how many were checked. With @greedy, also that
 * the certificate is the profile's, not what the device asked for. */
static guint
st_check_device_certs (StFixture *f, const char *state, const char *chain_pem, gboolean greedy)
{
  g_autoptr(JsonParser) parser = st_test_load_json (state);
  JsonArray *devices = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)), "devices");
  g_autofree gchar *der_path = g_build_filename (f->tmp, "device.der", NULL);
  g_autofree gchar *pem_path = g_build_filename (f->tmp, "device.pem", NULL);
  guint n = 0;
  for (guint i = 0; i < json_array_get_length (devices); i++)
    {
      JsonObject *d = json_array_get_object_element (devices, i);
      JsonNode *cert = json_object_get_member (d, "cert");
      if (JSON_NODE_HOLDS_NULL (cert))
        continue;
      gsize len = 0;
      g_autofree guchar *der = g_base64_decode (json_node_get_string (cert), &len);
      g_assert_true (g_file_set_contents (der_path, (const gchar *) der, (gssize) len, NULL));
      g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "x509", "-inform", "DER", "-in", der_path,
                                    "-out", pem_path, NULL), ==, 0);
      g_autofree gchar *pem = NULL;
      g_assert_true (g_file_get_contents (pem_path, &pem, NULL, NULL));
      g_autofree gchar *out = st_check_cert_with_stock_tools (f, pem, chain_pem,
                                                              json_object_get_string_member (d, "uid"));
      if (greedy)
        {
          g_assert_null (strstr (out, "Greedy Device"));
          g_assert_null (strstr (out, "bank.example"));
          g_assert_null (strstr (out, "Certificate signing"));
        }
      n++;
    }
  return n;
}

static void
st_export_chain (StFixture *f, const char *id, gchar **chain_out)
{
  g_autofree gchar *dir = g_build_filename (f->tmp, "manifest", NULL);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "manifest", "export", id, "--out", dir, NULL), ==, 0);
  *chain_out = g_build_filename (dir, "ca-chain.pem", NULL);
}

static void
test_well_behaved (StFixture *f, gconstpointer data)
{
  /* Device-made keys (KEYGEN, CSR) on three sockets. */
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 6);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  g_autofree gchar *s1 = g_build_filename (f->tmp, "a1.json", NULL);
  g_autofree gchar *s2 = g_build_filename (f->tmp, "a2.json", NULL);
  g_autofree gchar *s3 = g_build_filename (f->tmp, "a3.json", NULL);
  g_autofree gchar *p1 = st_agentdev (f, "good", 2, 1001, s1);
  g_autofree gchar *p2 = st_agentdev (f, "good", 2, 1002, s2);
  g_autofree gchar *p3 = st_agentdev (f, "good", 2, 1003, s3);
  g_autofree gchar *out = NULL;
  int rc = st_run_station (f, &out, NULL, "batch", "run", id, "--port", p1, "--port", p2, "--port", p3,
                           "--units", "2", "--wait", "20", NULL);
  g_assert_cmpint (rc, ==, 0);
  g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, 6);
  const char *files[] = { s1, s2, s3, NULL };
  g_assert_cmpuint (st_check_devices_on_record (f, files, TRUE), ==, 6);
  g_autofree gchar *done_sql = g_strdup_printf ("SELECT count(*) FROM units WHERE batch_id = %s AND state = 'done'", id);
  g_assert_cmpint (st_sql_int (f, done_sql), ==, 6);

  g_autofree gchar *chain = NULL;
  st_export_chain (f, id, &chain);
  guint checked = 0;
  for (guint i = 0; files[i] != NULL; i++)
    checked += st_check_device_certs (f, files[i], chain, FALSE);
  g_assert_cmpuint (checked, ==, 6);

  /* Station-made keys (PUT_KEY) on one socket. */
  gint64 batch2 = st_create_batch (f, "example-station-key.profile", 2);
  g_autofree gchar *id2 = g_strdup_printf ("%" G_GINT64_FORMAT, batch2);
  g_autofree gchar *s4 = g_build_filename (f->tmp, "a4.json", NULL);
  g_autofree gchar *p4 = st_agentdev (f, "good", 2, 1004, s4);
  g_clear_pointer (&out, g_free);
  rc = st_run_station (f, &out, NULL, "batch", "run", id2, "--port", p4, "--units", "2", "--wait", "20", NULL);
  g_assert_cmpint (rc, ==, 0);
  g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, 2);
  const char *files2[] = { s4, NULL };
  g_assert_cmpuint (st_check_devices_on_record (f, files2, TRUE), ==, 2);
  g_assert_cmpuint (st_check_device_certs (f, s4, chain, FALSE), ==, 2);
  st_check_db_invariants (f);
}

static void
test_hostile (StFixture *f, gconstpointer data)
{
  /* Short device time-outs: a silent or garbage-streaming device costs
   * seconds, not minutes. */
  const char *overrides[] = { "keygen-timeout-ms=2000", "commit-timeout-ms=2000", "retries=2", NULL };
  g_autofree gchar *profile = st_profile_copy (f, "example-device-csr.profile", overrides);
  gint64 batch = st_create_batch (f, profile, 14);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);

  /* The station's peak memory with one healthy socket, for comparison. */
  g_autofree gchar *s0 = g_build_filename (f->tmp, "base.json", NULL);
  g_autofree gchar *p0 = st_agentdev (f, "good", 1, 2000, s0);
  const char *base_args[] = { "batch", "run", id, "--port", p0, "--units", "1", "--wait", "20", NULL };
  glong base_rss = 0;
  g_assert_cmpint (st_run_station_rusage (f, NULL, NULL, base_args, &base_rss), ==, 0);

  struct {
    const char *mode;
    const char *outcome;
    const char *step;
    const char *detail;
    gchar *port;
    gchar *state;
  } cases[] = {
    { "bad-csr-sig", " FAILED ", "step csr:", "not validly signed" },
    { "csr-trailing", " FAILED ", "step csr:", "garbage after it" },
    { "wrong-curve", " FAILED ", "step csr:", "curve" },
    { "pop-other-key", " FAILED ", "step proof-of-possession:", "does not verify" },
    { "readback-differs", " FAILED ", "step read-back:", "differ" },
    { "commit-storage", " FAILED ", "step commit:", "STORAGE" },
    { "garbage", " FAILED ", "step keygen:", "garbage" },
    { "silence", " FAILED ", "step keygen:", "no response" },
    { "csr-greedy", " PASSED ", NULL, NULL },
  };
  g_autoptr(GPtrArray) args = g_ptr_array_new ();
  g_ptr_array_add (args, "batch");
  g_ptr_array_add (args, "run");
  g_ptr_array_add (args, id);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree gchar *name = g_strdup_printf ("%s.json", cases[i].mode);
      cases[i].state = g_build_filename (f->tmp, name, NULL);
      cases[i].port = st_agentdev (f, cases[i].mode, 1, 2100 + i, cases[i].state);
      g_ptr_array_add (args, "--port");
      g_ptr_array_add (args, cases[i].port);
    }
  g_autofree gchar *sh = g_build_filename (f->tmp, "healthy.json", NULL);
  g_autofree gchar *healthy = st_agentdev (f, "good", 2, 2200, sh);
  g_ptr_array_add (args, "--port");
  g_ptr_array_add (args, healthy);
  g_ptr_array_add (args, "--units");
  g_ptr_array_add (args, "2");
  g_ptr_array_add (args, "--wait");
  g_ptr_array_add (args, "3");
  g_ptr_array_add (args, NULL);

  glong rss = 0;
  g_autofree gchar *out = NULL;
  int rc = st_run_station_rusage (f, NULL, &out, (const char *const *) args->pdata, &rss);
  g_assert_cmpint (rc, ==, 1);  /* failures, not a crash */
  g_test_message ("peak RSS: %ld KiB one healthy socket, %ld KiB with the hostile ones", base_rss, rss);
  g_assert_cmpint (rss, <, base_rss + 64 * 1024);

  /* The healthy socket was not held up. */
  g_autofree gchar *healthy_prefix = g_strdup_printf ("%s ", healthy);
  g_auto(GStrv) lines = g_strsplit (out, "\n", -1);
  guint healthy_passed = 0;
  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], healthy_prefix) && strstr (lines[i], " PASSED ") != NULL)
      healthy_passed++;
  g_assert_cmpuint (healthy_passed, ==, 2);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_test_message ("mode %s on %s", cases[i].mode, cases[i].port);
      g_autofree gchar *prefix = g_strdup_printf ("%s ", cases[i].port);
      gboolean found = FALSE;
      for (guint j = 0; lines[j] != NULL && !found; j++)
        {
          if (!g_str_has_prefix (lines[j], prefix) || strstr (lines[j], cases[i].outcome) == NULL)
            continue;
          found = TRUE;
          if (cases[i].step != NULL)
            {
              g_assert_nonnull (lines[j + 1]);
              g_assert_nonnull (strstr (lines[j + 1], cases[i].step));
              g_assert_nonnull (strstr (lines[j + 1], cases[i].detail));
            }
        }
      g_assert_true (found);
      /* No live certificate for a device that failed. */
      g_autoptr(JsonParser) parser = st_test_load_json (cases[i].state);
      JsonArray *devices = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)), "devices");
      JsonObject *d = json_array_get_object_element (devices, 0);
      g_autofree gchar *sql = g_strdup_printf ("SELECT count(*) FROM certificates WHERE uid = '%s' AND state <> 'voided'",
                                               json_object_get_string_member (d, "uid"));
      g_assert_cmpint (st_sql_int (f, sql), ==, g_strcmp0 (cases[i].mode, "csr-greedy") == 0 ? 1 : 0);
    }

  /* Every certificate a device holds is on record and active, and is a
   * good one: the healthy devices' and the greedy device's (the profile's
   * certificate, not the one it asked for). */
  const char *files[G_N_ELEMENTS (cases) + 3];
  guint n_files = 0;
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    files[n_files++] = cases[i].state;
  files[n_files++] = sh;
  files[n_files++] = s0;
  files[n_files] = NULL;
  g_assert_cmpuint (st_check_devices_on_record (f, files, TRUE), ==, 4);
  g_autofree gchar *chain = NULL;
  st_export_chain (f, id, &chain);
  g_assert_cmpuint (st_check_device_certs (f, sh, chain, FALSE), ==, 2);
  g_assert_cmpuint (st_check_device_certs (f, cases[G_N_ELEMENTS (cases) - 1].state, chain, TRUE), ==, 1);
  g_autofree gchar *active = st_sql (f, "SELECT count(*) FROM certificates WHERE state = 'active'");
  g_assert_cmpstr (active, ==, "4");
  st_check_db_invariants (f);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_free (cases[i].port);
      g_free (cases[i].state);
    }
}

int
main (int argc, char **argv)
{
  st_test_init (&argc, &argv);
  st_test_add_station ("/independent/well-behaved", NULL, test_well_behaved);
  st_test_add_station ("/independent/hostile", NULL, test_hostile);
  return g_test_run ();
}
