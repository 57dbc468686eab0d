/* A Matter batch's outputs (issue 18; docs/matter.md, "The manifest and
 * the lead's codes file" and "Labels of a batch"), through the real
 * service and CLI on a `setup demo --matter` station of the test's own
 * (its SoftHSM2 token), a batch of profiles/example-matter.profile run on
 * station-devsim devices on pseudo-terminals.
 *
 * /matter-outputs/manifest: `manifest export` of the batch: the header's
 *   batch.matter (VID, PID, the SHA-256 of the CD file), each unit's
 *   matter member equal to the database's record; no passcode, QR text,
 *   manual code, salt or verifier of any unit anywhere in the folder;
 *   `manifest verify` passes and compares every unit with the records. */
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "st-test-run.h"
#include "st-test-tmp.h"

#define UNITS 3

typedef struct {
  StFixture fx;
  gchar *cd;
  gint64 batch;
  gchar *batch_s;
} Matter;

/* A new Matter demo home, a batch of the example profile (its CD file the
 * demo's) with UNITS units run and closed. */
static void
matter_setup (Matter *m, const char *name)
{
  StFixture *f = &m->fx;
  f->tmp = st_test_tmpdir (name);
  f->home = g_build_filename (f->tmp, "home", NULL);
  f->sims = g_ptr_array_new_with_free_func (g_object_unref);
  const char *none[] = { NULL };
  st_service_ensure (f, none);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "setup", "demo", "--matter", NULL), ==, 0);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "unlock", NULL), ==, 0);
  m->cd = g_build_filename (f->home, "matter", "cd-FFF1-8000.der", NULL);
  g_autofree gchar *o = g_strdup_printf ("certification-declaration=%s", m->cd);
  const char *overrides[] = { o, NULL };
  g_autofree gchar *profile = st_profile_copy (f, "example-matter.profile", overrides);
  m->batch = st_create_batch (f, profile, UNITS);
  m->batch_s = g_strdup_printf ("%" G_GINT64_FORMAT, m->batch);
  g_autofree gchar *port = st_start_devsim (f, "--units", G_STRINGIFY (UNITS), "--seed", "1801", NULL);
  g_autofree gchar *out = NULL, *err = NULL;
  int rc = st_run_station (f, &out, &err, "batch", "run", m->batch_s, "--port", port, "--units",
                           G_STRINGIFY (UNITS), NULL);
  if (rc != 0)
    g_error ("batch run: %d\n%s\n%s", rc, out, err);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "batch", "close", m->batch_s, NULL), ==, 0);
  st_stop_devsims (f);
}

static void
matter_teardown (Matter *m)
{
  g_free (m->cd);
  g_free (m->batch_s);
  st_fixture_teardown (&m->fx, NULL);
}

/* The whole of the file @dir/@name as text. */
static gchar *
read_text (const char *dir, const char *name)
{
  g_autofree gchar *path = g_build_filename (dir, name, NULL);
  gchar *text = NULL;
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  return text;
}

/* No secret of any unit in any file of @dir (its sub-folders too). */
static void
assert_no_secret (Matter *m, const char *dir)
{
  g_autofree gchar *sql = g_strdup_printf ("SELECT passcode || ' ' || qr_text || ' ' || manual_code || ' ' "
                                           "|| hex (salt) || ' ' || hex (verifier) FROM unit_matter WHERE "
                                           "batch_id = %" G_GINT64_FORMAT " ORDER BY unit_id", m->batch);
  g_autofree gchar *rows = st_sql (&m->fx, sql);
  g_auto(GStrv) lines = g_strsplit (g_strstrip (rows), "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, UNITS);
  g_autofree gchar *out = NULL;
  g_assert_cmpint (st_run_tool (&out, NULL, "find", dir, "-type", "f", NULL), ==, 0);
  g_auto(GStrv) files = g_strsplit (g_strstrip (out), "\n", -1);
  g_assert_cmpuint (g_strv_length (files), >=, 7);
  for (guint i = 0; files[i] != NULL; i++)
    {
      g_autofree gchar *text = NULL;
      gsize len = 0;
      g_assert_true (g_file_get_contents (files[i], &text, &len, NULL));
      g_autofree gchar *lower = g_ascii_strdown (text, (gssize) len);
      for (guint u = 0; lines[u] != NULL; u++)
        {
          g_auto(GStrv) v = g_strsplit (lines[u], " ", -1);
          g_assert_cmpuint (g_strv_length (v), ==, 5);
          /* the passcode as a JSON number or CSV cell, the codes, salt and verifier as text */
          g_autofree gchar *pc1 = g_strdup_printf (":%s", v[0]);
          g_autofree gchar *pc2 = g_strdup_printf (",%s", v[0]);
          g_autofree gchar *salt = g_ascii_strdown (v[3], -1);
          g_autofree gchar *verifier = g_ascii_strdown (v[4], -1);
          if (strstr (text, pc1) != NULL || strstr (text, pc2) != NULL || strstr (text, v[1]) != NULL
              || strstr (text, v[2]) != NULL || strstr (lower, salt) != NULL || strstr (lower, verifier) != NULL
              || strstr (text, "passcode") != NULL)
            g_error ("%s holds a secret of unit %u", files[i], u + 1);
        }
    }
}

static void
test_manifest (void)
{
  Matter m = { 0 };
  matter_setup (&m, "st-matter-out-manifest");
  StFixture *f = &m.fx;
  g_autofree gchar *dir = g_build_filename (f->tmp, "manifest", NULL);
  g_autofree gchar *out = NULL, *err = NULL;
  int rc = st_run_station (f, &out, &err, "manifest", "export", m.batch_s, "--out", dir, NULL);
  if (rc != 0)
    g_error ("manifest export: %d\n%s\n%s", rc, out, err);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* the header: a Matter batch, and the CD's SHA-256 is that of the file */
  g_autofree gchar *header = read_text (dir, "manifest.json");
  g_autoptr(JsonParser) p = json_parser_new ();
  g_assert_true (json_parser_load_from_data (p, header, -1, NULL));
  JsonObject *batch = json_object_get_object_member (json_node_get_object (json_parser_get_root (p)), "batch");
  JsonObject *bm = json_object_get_object_member (batch, "matter");
  g_assert_nonnull (bm);
  g_assert_cmpstr (json_object_get_string_member (bm, "vendor_id"), ==, "FFF1");
  g_assert_cmpstr (json_object_get_string_member (bm, "product_id"), ==, "8000");
  g_autofree gchar *cd_sum = NULL;
  g_assert_cmpint (st_run_tool (&cd_sum, NULL, "sha256sum", m.cd, NULL), ==, 0);
  cd_sum[64] = '\0';
  g_assert_cmpstr (json_object_get_string_member (bm, "certification_declaration_sha256"), ==, cd_sum);

  /* each unit's member is its record, in unit order */
  g_autofree gchar *sql = g_strdup_printf ("SELECT printf ('%%04X %%04X %%d %%d %%d', vendor_id, product_id, "
                                           "flow, discovery, discriminator) FROM unit_matter WHERE batch_id = %"
                                           G_GINT64_FORMAT " ORDER BY unit_id", m.batch);
  g_autofree gchar *rows = st_sql (f, sql);
  g_auto(GStrv) want = g_strsplit (g_strstrip (rows), "\n", -1);
  g_assert_cmpuint (g_strv_length (want), ==, UNITS);
  g_autofree gchar *units = read_text (dir, "units.jsonl");
  g_auto(GStrv) lines = g_strsplit (units, "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, UNITS + 1);
  for (guint i = 0; i < UNITS; i++)
    {
      g_autoptr(JsonParser) lp = json_parser_new ();
      g_assert_true (json_parser_load_from_data (lp, lines[i], -1, NULL));
      JsonObject *u = json_node_get_object (json_parser_get_root (lp));
      g_assert_cmpstr (json_object_get_string_member (u, "state"), ==, "done");
      JsonObject *um = json_object_get_object_member (u, "matter");
      g_assert_cmpuint (json_object_get_size (um), ==, 6);
      g_assert_cmpint (json_object_get_int_member (um, "version"), ==, 0);
      g_autofree gchar *have = g_strdup_printf ("%s %s %" G_GINT64_FORMAT " %" G_GINT64_FORMAT " %" G_GINT64_FORMAT,
                                                json_object_get_string_member (um, "vendor_id"),
                                                json_object_get_string_member (um, "product_id"),
                                                json_object_get_int_member (um, "commissioning_flow"),
                                                json_object_get_int_member (um, "discovery"),
                                                json_object_get_int_member (um, "discriminator"));
      g_assert_cmpstr (have, ==, want[i]);
      /* sequential in 3840-3855 */
      g_assert_cmpint (json_object_get_int_member (um, "discriminator"), ==, 3840 + i);
    }
  assert_no_secret (&m, dir);

  /* verified on the station: every unit compared with its record */
  rc = st_run_station (f, &out, &err, "manifest", "verify", dir, NULL);
  if (rc != 0)
    g_error ("manifest verify: %d\n%s\n%s", rc, out, err);
  g_assert_nonnull (strstr (out, "a Matter batch: VID FFF1, PID 8000"));
  g_assert_nonnull (strstr (out, G_STRINGIFY (UNITS) " Matter unit(s)"));
  g_assert_nonnull (strstr (out, "Matter records: " G_STRINGIFY (UNITS) " unit(s), each the station's record"));
  matter_teardown (&m);
}

int
main (int argc, char **argv)
{
  st_test_init (&argc, &argv);
  g_test_add_func ("/matter-outputs/manifest", test_manifest);
  return g_test_run ();
}
