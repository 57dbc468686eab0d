/* A whole Matter batch against the independent device side (issue 18):
 * `setup demo --matter`, profiles/example-matter.profile, `batch run` on
 * tests/independent/agentdev.py --matter over real pseudo-terminals.
 *
 * /agentdev-batch/matter: every unit passes; each device committed the
 *   profile's Certification Declaration byte for byte in slot 3 and, in
 *   slot 4, a record that agentdev's own parser (written from
 *   docs/agent-protocol.md) reads as the unit's record in the database:
 *   VID, PID, discriminator, iterations, salt, verifier, rotating id; the
 *   verifier the device holds is that of the passcode on record (the
 *   label's); slots 3 and 4 were read back. Beside the good socket, a
 *   device without matter-1 is refused before it gets a key or any slot,
 *   and one whose slot 4 reads back differently fails at the read-back,
 *   uncommitted. QA's `unit verify --code` of a unit on an agentdev that
 *   stayed in its socket passes every Matter check. A batch of the same
 *   profile with station-made keys (PUT_KEY) gets the same slots. */
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "st-matter-spake2p.h"
#include "st-test-json.h"
#include "st-test-run.h"
#include "st-test-tmp.h"
#include "st-util.h"

static gchar *
st_agentdev (StFixture *f, const char *const *extra, const char *state)
{
  g_autofree gchar *script = g_build_filename (g_getenv ("ST_SOURCE_DIR"), "tests", "independent",
                                               "agentdev.py", NULL);
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_ptr_array_add (argv, "python3");
  g_ptr_array_add (argv, script);
  g_ptr_array_add (argv, "--state");
  g_ptr_array_add (argv, (gpointer) state);
  for (guint i = 0; extra[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) extra[i]);
  g_ptr_array_add (argv, NULL);
  return st_start_device_program (f, (const char *const *) argv->pdata);
}

static GBytes *
st_b64 (JsonObject *o, const char *name)
{
  JsonNode *n = json_object_get_member (o, name);
  g_assert_nonnull (n);
  g_assert_false (JSON_NODE_HOLDS_NULL (n));
  gsize len = 0;
  guchar *data = g_base64_decode (json_node_get_string (n), &len);
  return g_bytes_new_take (data, len);
}

static gint64
st_requests (JsonObject *dev, const char *op, const char *slot)
{
  JsonObject *per = json_object_get_object_member (json_object_get_object_member (dev, "requests"), op);
  return json_object_has_member (per, slot) ? json_object_get_int_member (per, slot) : 0;
}

/* The line of `batch run` output for @port that contains @needle. */
static gboolean
st_port_line (const char *out, const char *port, const char *needle)
{
  g_autofree gchar *prefix = g_strdup_printf ("%s ", port);
  g_auto(GStrv) lines = g_strsplit (out, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], prefix) && strstr (lines[i], needle) != NULL)
      return TRUE;
  return FALSE;
}

/* One committed device of an agentdev state file against the records:
 * slot 3 the profile's CD, slot 4 read by agentdev's parser as the unit's
 * unit_matter row of batch @id, its verifier that of the recorded passcode,
 * both slots read back by the line. */
static void
st_check_matter_device (StFixture *f, JsonObject *dev, const char *id, GBytes *cd)
{
  const char *uid = json_object_get_string_member (dev, "uid");
  g_test_message ("device %s", uid);
  g_autoptr(GBytes) dev_cd = st_b64 (dev, "cd");
  g_assert_true (g_bytes_equal (dev_cd, cd));
  JsonObject *rec = json_object_get_object_member (dev, "commissioning_record");
  g_assert_nonnull (rec);
  if (!json_object_get_boolean_member (rec, "parsed"))
    g_error ("agentdev refused the station's record: %s", json_object_get_string_member (rec, "error"));
  JsonObject *fields = json_object_get_object_member (rec, "fields");

  g_autofree gchar *sql = g_strdup_printf (
      "SELECT m.vendor_id, m.product_id, m.discriminator, m.iterations, lower (hex (m.salt)),"
      " lower (hex (m.verifier)), CASE WHEN m.unique_id IS NULL THEN '-' ELSE lower (hex (m.unique_id)) END, m.passcode"
      " FROM unit_matter m JOIN units u ON u.id = m.unit_id"
      " WHERE u.uid = '%s' AND u.state = 'done' AND u.batch_id = %s", uid, id);
  g_autofree gchar *row = st_sql (f, sql);
  g_auto(GStrv) col = g_strsplit (row, "|", -1);
  g_assert_cmpuint (g_strv_length (col), ==, 8);
  g_assert_cmpint (json_object_get_int_member (fields, "vendor_id"), ==, g_ascii_strtoll (col[0], NULL, 10));
  g_assert_cmpint (json_object_get_int_member (fields, "vendor_id"), ==, 0xFFF1);
  g_assert_cmpint (json_object_get_int_member (fields, "product_id"), ==, g_ascii_strtoll (col[1], NULL, 10));
  g_assert_cmpint (json_object_get_int_member (fields, "product_id"), ==, 0x8000);
  g_assert_cmpint (json_object_get_int_member (fields, "discriminator"), ==, g_ascii_strtoll (col[2], NULL, 10));
  g_assert_cmpint (json_object_get_int_member (fields, "iterations"), ==, g_ascii_strtoll (col[3], NULL, 10));
  g_assert_cmpstr (json_object_get_string_member (fields, "salt"), ==, col[4]);
  g_autofree gchar *verifier_hex = g_strconcat (json_object_get_string_member (fields, "w0"),
                                                json_object_get_string_member (fields, "L"), NULL);
  g_assert_cmpstr (verifier_hex, ==, col[5]);
  JsonNode *rdid = json_object_get_member (fields, "rotating_id");
  g_assert_cmpstr (JSON_NODE_HOLDS_NULL (rdid) ? "-" : json_node_get_string (rdid), ==, col[6]);

  /* The verifier the device holds answers to the passcode on record. */
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) verifier = st_hex_decode (verifier_hex, &error);
  g_assert_no_error (error);
  g_autoptr(GBytes) salt = st_hex_decode (col[4], &error);
  g_assert_no_error (error);
  gsize vlen = 0, slen = 0;
  const guint8 *v = g_bytes_get_data (verifier, &vlen);
  const guint8 *s = g_bytes_get_data (salt, &slen);
  g_assert_true (st_matter_spake2p_verifier_matches (v, vlen, (guint32) g_ascii_strtoll (col[7], NULL, 10), s,
                                                     slen, (guint32) g_ascii_strtoll (col[3], NULL, 10),
                                                     &error));
  g_assert_no_error (error);

  /* Written once (a 2043-byte chunk each at max payload 2048 for
   * records and the demo's CD) and read back. */
  g_assert_cmpint (st_requests (dev, "write", "3"), >=, 1);
  g_assert_cmpint (st_requests (dev, "write", "4"), ==, 1);
  g_assert_cmpint (st_requests (dev, "read", "3"), >=, 1);
  g_assert_cmpint (st_requests (dev, "read", "4"), >=, 1);
}

static void
test_matter_batch (void)
{
  StFixture fx = { 0 };
  StFixture *f = &fx;
  g_autofree gchar *cd_path = NULL;
  g_autofree gchar *profile = st_matter_demo_station (f, "st-agentdev-batch", &cd_path);
  gint64 batch = st_create_batch (f, profile, 6);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  g_autofree gchar *cd_text = NULL;
  gsize cd_len = 0;
  g_assert_true (g_file_get_contents (cd_path, &cd_text, &cd_len, NULL));
  g_autoptr(GBytes) cd = g_bytes_new (cd_text, cd_len);

  g_autofree gchar *s_good = g_build_filename (f->tmp, "good.json", NULL);
  g_autofree gchar *s_plain = g_build_filename (f->tmp, "plain.json", NULL);
  g_autofree gchar *s_differs = g_build_filename (f->tmp, "differs.json", NULL);
  const char *good_args[] = { "--matter", "--units", "3", "--seed", "3001", NULL };
  const char *plain_args[] = { "--units", "1", "--seed", "3002", NULL };
  const char *differs_args[] = { "--matter", "--mode", "readback-differs-slot4", "--units", "1", "--seed", "3003",
                                 NULL };
  g_autofree gchar *p_good = st_agentdev (f, good_args, s_good);
  g_autofree gchar *p_plain = st_agentdev (f, plain_args, s_plain);
  g_autofree gchar *p_differs = st_agentdev (f, differs_args, s_differs);
  g_autofree gchar *out = NULL, *err = NULL;
  int rc = st_run_station (f, &out, &err, "batch", "run", id, "--port", p_good, "--port", p_plain, "--port",
                           p_differs, "--units", "3", "--wait", "5", NULL);
  g_test_message ("batch run: %d\n%s%s", rc, out, err);
  g_assert_cmpint (rc, ==, 1);   /* two devices fail */

  /* The good socket: three units, slots 3 and 4 as on record. */
  g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, 3);
  g_autoptr(JsonParser) parser = st_test_load_json (s_good);
  JsonArray *devices = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)),
                                                     "devices");
  guint checked = 0;
  for (guint i = 0; i < json_array_get_length (devices); i++)
    {
      JsonObject *dev = json_array_get_object_element (devices, i);
      if (json_object_get_int_member (dev, "commits") == 0)
        continue;
      st_check_matter_device (f, dev, id, cd);
      checked++;
    }
  g_assert_cmpuint (checked, ==, 3);

  /* No matter-1: refused at identify, before a key or anything else. */
  g_assert_true (st_port_line (out, p_plain, " REFUSED "));
  g_assert_true (st_port_line (out, p_plain, "matter-1"));
  g_autoptr(JsonParser) plain = st_test_load_json (s_plain);
  JsonObject *pdev = json_array_get_object_element (
      json_object_get_array_member (json_node_get_object (json_parser_get_root (plain)), "devices"), 0);
  g_assert_cmpint (json_object_get_int_member (pdev, "commits"), ==, 0);
  g_assert_cmpint (json_object_get_int_member (pdev, "keys_made"), ==, 0);
  for (guint slot = 1; slot <= 4; slot++)
    {
      g_autofree gchar *key = g_strdup_printf ("%u", slot);
      g_assert_cmpint (st_requests (pdev, "write", key) + st_requests (pdev, "read", key), ==, 0);
    }

  /* Slot 4 read back differently: the read-back step fails, no commit. */
  g_assert_true (st_port_line (out, p_differs, " FAILED "));
  g_assert_nonnull (strstr (out, "step read-back: slot 4"));
  g_autoptr(JsonParser) differs = st_test_load_json (s_differs);
  JsonObject *ddev = json_array_get_object_element (
      json_object_get_array_member (json_node_get_object (json_parser_get_root (differs)), "devices"), 0);
  g_assert_cmpint (json_object_get_int_member (ddev, "commits"), ==, 0);

  /* QA: `unit verify` of a unit whose independent device stays in its
   * socket, with the label's QR text: every Matter check passes. */
  g_autofree gchar *s_qa = g_build_filename (f->tmp, "qa.json", NULL);
  const char *qa_args[] = { "--matter", "--stay", "--units", "1", "--seed", "3004", NULL };
  g_autofree gchar *p_qa = st_agentdev (f, qa_args, s_qa);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  rc = st_run_station (f, &out, &err, "batch", "run", id, "--port", p_qa, "--units", "1", "--wait", "10", NULL);
  g_test_message ("batch run: %d\n%s%s", rc, out, err);
  g_assert_cmpint (rc, ==, 0);
  g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, 1);
  g_autoptr(JsonParser) qa = st_test_load_json (s_qa);
  JsonObject *qdev = json_array_get_object_element (
      json_object_get_array_member (json_node_get_object (json_parser_get_root (qa)), "devices"), 0);
  g_autofree gchar *qr_sql = g_strdup_printf ("SELECT m.qr_text FROM unit_matter m JOIN units u ON u.id = m.unit_id"
                                              " WHERE u.uid = '%s'", json_object_get_string_member (qdev, "uid"));
  g_autofree gchar *qr = st_sql (f, qr_sql);
  g_assert_true (g_str_has_prefix (qr, "MT:"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  rc = st_run_station (f, &out, &err, "unit", "verify", "--port", p_qa, "--json", "--code", qr, NULL);
  g_test_message ("unit verify: %d\n%s%s", rc, out, err);
  g_assert_cmpint (rc, ==, 0);
  g_autofree gchar *schema = g_build_filename (g_getenv ("ST_SOURCE_DIR"), "docs", "schema", "cli",
                                               "unit-verify.json", NULL);
  g_autofree gchar *checker = g_build_filename (g_getenv ("ST_SOURCE_DIR"), "tests", "cli", "check-json.py", NULL);
  g_autofree gchar *doc_path = g_build_filename (f->tmp, "unit-verify.json", NULL);
  g_assert_true (g_file_set_contents (doc_path, out, -1, NULL));
  g_assert_cmpint (st_run_tool (NULL, NULL, "python3", checker, schema, doc_path, NULL), ==, 0);
  g_autoptr(JsonParser) verdict = json_parser_new ();
  g_assert_true (json_parser_load_from_data (verdict, out, -1, NULL));
  JsonObject *root = json_node_get_object (json_parser_get_root (verdict));
  g_assert_true (json_object_get_boolean_member (root, "verified"));
  JsonArray *checks = json_object_get_array_member (json_object_get_object_member (root, "matter"), "checks");
  const char *wanted[] = { "matter-dac", "matter-cd", "matter-data", "matter-verifier", "matter-code" };
  for (guint w = 0; w < G_N_ELEMENTS (wanted); w++)
    {
      gboolean seen = FALSE;
      for (guint i = 0; i < json_array_get_length (checks); i++)
        {
          JsonObject *c = json_array_get_object_element (checks, i);
          g_assert_cmpstr (json_object_get_string_member (c, "status"), ==, "ok");
          seen = seen || g_strcmp0 (json_object_get_string_member (c, "name"), wanted[w]) == 0;
        }
      g_assert_true (seen);
    }
  /* QA read slots 3 and 4 from the device itself: once more than the line. */
  g_clear_pointer (&qa, g_object_unref);
  qa = st_test_load_json (s_qa);
  qdev = json_array_get_object_element (
      json_object_get_array_member (json_node_get_object (json_parser_get_root (qa)), "devices"), 0);
  g_assert_cmpint (json_object_get_int_member (qdev, "commits"), ==, 1);
  g_assert_cmpint (st_requests (qdev, "read", "3"), >=, 2);
  g_assert_cmpint (st_requests (qdev, "read", "4"), >=, 2);

  /* Station-made DAC keys (PUT_KEY) on a Matter profile: the same slots. */
  g_autofree gchar *override = g_strdup_printf ("certification-declaration=%s", cd_path);
  const char *sk_overrides[] = { override, "mode=station-key", NULL };
  g_autofree gchar *sk_copy = st_profile_copy (f, "example-matter.profile", sk_overrides);
  g_autofree gchar *sk_profile = g_build_filename (f->tmp, "matter-station-key.profile", NULL);
  g_assert_cmpint (g_rename (sk_copy, sk_profile), ==, 0);
  gint64 batch2 = st_create_batch (f, sk_profile, 2);
  g_autofree gchar *id2 = g_strdup_printf ("%" G_GINT64_FORMAT, batch2);
  g_autofree gchar *s_sk = g_build_filename (f->tmp, "station-key.json", NULL);
  const char *sk_args[] = { "--matter", "--units", "2", "--seed", "3005", NULL };
  g_autofree gchar *p_sk = st_agentdev (f, sk_args, s_sk);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  rc = st_run_station (f, &out, &err, "batch", "run", id2, "--port", p_sk, "--units", "2", "--wait", "10", NULL);
  g_test_message ("batch run: %d\n%s%s", rc, out, err);
  g_assert_cmpint (rc, ==, 0);
  g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, 2);
  g_autoptr(JsonParser) sk = st_test_load_json (s_sk);
  JsonArray *sk_devices = json_object_get_array_member (json_node_get_object (json_parser_get_root (sk)), "devices");
  checked = 0;
  for (guint i = 0; i < json_array_get_length (sk_devices); i++)
    {
      JsonObject *dev = json_array_get_object_element (sk_devices, i);
      if (json_object_get_int_member (dev, "commits") == 0)
        continue;
      g_assert_cmpint (json_object_get_int_member (dev, "keys_made"), ==, 1);   /* one PUT_KEY key */
      st_check_matter_device (f, dev, id2, cd);
      checked++;
    }
  g_assert_cmpuint (checked, ==, 2);

  st_check_db_invariants (f);
  st_fixture_teardown (f, NULL);
}

int
main (int argc, char **argv)
{
  st_test_init (&argc, &argv);
  g_test_add_func ("/agentdev-batch/matter", test_matter_batch);
  return g_test_run ();
}
