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
 *   `manifest verify` passes and compares every unit with the records;
 *   without its CD file the export stops, naming the profile's key;
 *   after a record is rewritten with sqlite3, verify names the unit.
 * /matter-outputs/codes: `batch codes` refused to the operator and QA
 *   (nothing written); the lead's matter-codes.csv is mode 0600, its rows
 *   exactly the records (serial, uid, discriminator, passcode, QR text,
 *   manual code), its SHA-256 the one printed and audited; a second export
 *   into the folder, and one onto a link, are refused and change nothing.
 * /matter-outputs/labels: `batch labels` refused to the operator and QA;
 *   the lead's PNG, PDF and ZPL per unit, mode 0600; zbarimg decodes the
 *   PNG, and the PDF rasterised by pdftoppm, to exactly the recorded QR
 *   text, which st_matter_qr_parse reads back to the unit's discriminator
 *   and passcode in the database; pdftotext finds the manual code and the
 *   serial; the ZPL carries the QR text; another size and resolution
 *   decode too.
 * /matter-outputs/unprivileged: the client as the Unix user nobody
 *   (setpriv), the service as the test's user: the operator and QA
 *   refused; the lead's codes file and labels written by nobody's client,
 *   owned by nobody, mode 0600, in a folder of mode 0700, the codes exactly
 *   the records and the labels decoding to them. Skipped when not root. */
#include <glib/gstdio.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "st-label.h"
#include "st-matter-codes.h"
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
  g_autofree gchar *profile = st_matter_demo_station (f, name, &m->cd);
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
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* the CD file gone: the export stops, naming the profile's key */
  g_autofree gchar *cd_away = g_strconcat (m.cd, ".away", NULL);
  g_assert_cmpint (g_rename (m.cd, cd_away), ==, 0);
  g_autofree gchar *dir2 = g_build_filename (f->tmp, "manifest2", NULL);
  g_assert_cmpint (st_run_station (f, &out, &err, "manifest", "export", m.batch_s, "--out", dir2, NULL), !=, 0);
  g_assert_nonnull (strstr (err, "[matter] certification-declaration"));
  g_autofree gchar *sig2 = g_build_filename (dir2, "SHA256SUMS.p7s", NULL);
  g_assert_false (g_file_test (sig2, G_FILE_TEST_EXISTS));
  g_assert_cmpint (g_rename (cd_away, m.cd), ==, 0);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* a record rewritten on the station (its trigger dropped first): the
   * manifest no longer agrees with it, and verify says which unit */
  g_free (st_sql (f, "DROP TRIGGER unit_matter_immutable; UPDATE unit_matter SET discriminator = 100 "
                  "WHERE unit_id = (SELECT max (unit_id) FROM unit_matter)"));
  g_assert_cmpint (st_run_station (f, &out, &err, "manifest", "verify", dir, NULL), ==, ST_RC_CHECK);
  g_assert_nonnull (strstr (out, "FAIL  unit " G_STRINGIFY (UNITS) " (uid "));
  g_assert_nonnull (strstr (out, "its Matter data is not the station's record (VID FFF1, PID 8000, "
                            "discriminator 100,"));
  g_assert_nonnull (strstr (out, "FAIL  Matter records: 1 unit(s) differ from the station's records"));
  matter_teardown (&m);
}

/* The mode bits of @path (never following a link). */
static guint
file_mode (const char *path)
{
  GStatBuf st;
  g_assert_cmpint (g_lstat (path, &st), ==, 0);
  g_assert_true (S_ISREG (st.st_mode));
  return st.st_mode & 07777;
}

/* The records of the batch's units as rows of matter-codes.csv. */
static gchar *
expected_codes (Matter *m)
{
  g_autofree gchar *sql = g_strdup_printf ("SELECT u.product_serial || ',' || u.uid || ',' || m.discriminator "
                                           "|| ',' || printf ('%%08d', m.passcode) || ',' || m.qr_text || ',' || "
                                           "m.manual_code FROM units u JOIN unit_matter m ON m.unit_id = u.id "
                                           "WHERE u.batch_id = %" G_GINT64_FORMAT " ORDER BY u.id", m->batch);
  g_autofree gchar *rows = st_sql (&m->fx, sql);
  g_auto(GStrv) lines = g_strsplit (g_strstrip (rows), "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, UNITS);
  GString *want = g_string_new ("serial,uid,discriminator,passcode,qr,manual\r\n");
  for (guint i = 0; lines[i] != NULL; i++)
    g_string_append_printf (want, "%s\r\n", lines[i]);
  return g_string_free (want, FALSE);
}

static void
test_codes (void)
{
  Matter m = { 0 };
  matter_setup (&m, "st-matter-out-codes");
  StFixture *f = &m.fx;
  g_autofree gchar *dir = g_build_filename (f->tmp, "codes", NULL);
  g_autofree gchar *path = g_build_filename (dir, "matter-codes.csv", NULL);
  g_autofree gchar *out = NULL, *err = NULL;

  /* the operator and QA are refused, and nothing is written */
  const char *who[][2] = { { "op", "1111" }, { "qa", "3333" } };
  for (guint i = 0; i < G_N_ELEMENTS (who); i++)
    {
      g_assert_cmpint (st_run_station_as (f, who[i][0], who[i][1], NULL, &out, &err, "batch", "codes", m.batch_s,
                                          "--out", dir, NULL), ==, ST_RC_AUTH);
      g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
      g_clear_pointer (&out, g_free);
      g_clear_pointer (&err, g_free);
    }
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM audit WHERE event = 'matter-codes-export'"), ==, 0);

  /* the lead's file: the records, 0600 */
  int rc = st_run_station_as (f, "lead", "2222", NULL, &out, &err, "batch", "codes", m.batch_s, "--out", dir, NULL);
  if (rc != 0)
    g_error ("batch codes: %d\n%s\n%s", rc, out, err);
  g_assert_cmpuint (file_mode (path), ==, 0600);
  g_autofree gchar *text = read_text (dir, "matter-codes.csv");
  g_autofree gchar *want = expected_codes (&m);
  g_assert_cmpstr (text, ==, want);
  /* its SHA-256: printed, and in the audit entry (which holds no code) */
  g_autofree gchar *sum = NULL;
  g_assert_cmpint (st_run_tool (&sum, NULL, "sha256sum", path, NULL), ==, 0);
  sum[64] = '\0';
  g_assert_nonnull (strstr (out, sum));
  g_autofree gchar *payload = st_sql (f, "SELECT payload FROM audit WHERE event = 'matter-codes-export'");
  g_assert_nonnull (strstr (payload, sum));
  g_autofree gchar *rows_s = g_strdup_printf ("\"" G_STRINGIFY (UNITS) "\"");
  g_assert_nonnull (strstr (payload, rows_s));
  g_autofree gchar *qr = st_sql (f, "SELECT qr_text FROM unit_matter ORDER BY unit_id LIMIT 1");
  g_assert_null (strstr (payload, g_strstrip (qr)));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* never replaced */
  g_assert_cmpint (st_run_station_as (f, "lead", "2222", NULL, &out, &err, "batch", "codes", m.batch_s, "--out", dir,
                                      NULL), !=, 0);
  g_assert_nonnull (strstr (err, "never replaced"));
  g_autofree gchar *again = read_text (dir, "matter-codes.csv");
  g_assert_cmpstr (again, ==, want);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* never written through a link */
  g_autofree gchar *dir2 = g_build_filename (f->tmp, "codes2", NULL);
  g_autofree gchar *link = g_build_filename (dir2, "matter-codes.csv", NULL);
  g_autofree gchar *victim = g_build_filename (f->tmp, "victim.csv", NULL);
  g_assert_cmpint (g_mkdir (dir2, 0700), ==, 0);
  g_assert_cmpint (symlink (victim, link), ==, 0);
  g_assert_cmpint (st_run_station_as (f, "lead", "2222", NULL, &out, &err, "batch", "codes", m.batch_s, "--out", dir2,
                                      NULL), !=, 0);
  g_assert_false (g_file_test (victim, G_FILE_TEST_EXISTS));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* a batch that is not a Matter one has no codes */
  gint64 plain = st_create_batch (f, "example-device-csr.profile", 1);
  g_autofree gchar *plain_s = g_strdup_printf ("%" G_GINT64_FORMAT, plain);
  g_autofree gchar *dir3 = g_build_filename (f->tmp, "codes3", NULL);
  g_assert_cmpint (st_run_station_as (f, "lead", "2222", NULL, &out, &err, "batch", "codes", plain_s, "--out", dir3,
                                      NULL), !=, 0);
  g_assert_nonnull (strstr (err, "is not a Matter batch"));
  matter_teardown (&m);
}

/* zbarimg's one symbol in @image: "QR-Code:TEXT". */
static gchar *
decode_qr (const char *image)
{
  g_autofree gchar *out = NULL, *err = NULL;
  int rc = st_run_tool (&out, &err, "zbarimg", "-q", image, NULL);
  if (rc != 0)
    g_error ("zbarimg %s: %d %s", image, rc, err);
  g_strstrip (out);
  g_assert_true (g_str_has_prefix (out, "QR-Code:"));
  g_assert_null (strchr (out, '\n'));
  return g_strdup (out + strlen ("QR-Code:"));
}

/* Every unit's label in @dir against the records. */
static void
check_labels (Matter *m, const char *dir)
{
  StFixture *f = &m->fx;
  g_autofree gchar *sql = g_strdup_printf ("SELECT u.product_serial || ' ' || m.qr_text || ' ' || m.manual_code || ' ' "
                                           "|| m.discriminator || ' ' || m.passcode FROM units u JOIN unit_matter m "
                                           "ON m.unit_id = u.id WHERE u.batch_id = %" G_GINT64_FORMAT " ORDER BY u.id",
                                           m->batch);
  g_autofree gchar *rows = st_sql (f, sql);
  g_auto(GStrv) lines = g_strsplit (g_strstrip (rows), "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, UNITS);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_auto(GStrv) v = g_strsplit (lines[i], " ", -1);
      g_assert_cmpuint (g_strv_length (v), ==, 5);
      g_autofree gchar *png_name = g_strconcat (v[0], ".png", NULL);
      g_autofree gchar *pdf_name = g_strconcat (v[0], ".pdf", NULL);
      g_autofree gchar *zpl_name = g_strconcat (v[0], ".zpl", NULL);
      g_autofree gchar *png = g_build_filename (dir, png_name, NULL);
      g_autofree gchar *pdf = g_build_filename (dir, pdf_name, NULL);
      g_autofree gchar *zpl = g_build_filename (dir, zpl_name, NULL);
      g_assert_cmpuint (file_mode (png), ==, 0600);
      g_assert_cmpuint (file_mode (pdf), ==, 0600);
      g_assert_cmpuint (file_mode (zpl), ==, 0600);

      /* the PNG and the PDF carry exactly the recorded QR text ... */
      g_autofree gchar *from_png = decode_qr (png);
      g_assert_cmpstr (from_png, ==, v[1]);
      g_autofree gchar *raster = g_build_filename (f->tmp, "label-page", NULL);
      g_assert_cmpint (st_run_tool (NULL, NULL, "pdftoppm", "-r", "300", "-png", "-singlefile", pdf, raster, NULL), ==, 0);
      g_autofree gchar *raster_png = g_strconcat (raster, ".png", NULL);
      g_autofree gchar *from_pdf = decode_qr (raster_png);
      g_assert_cmpstr (from_pdf, ==, v[1]);
      g_unlink (raster_png);
      /* ... which gives the unit's discriminator and passcode */
      StMatterPayload p;
      g_autoptr(GError) error = NULL;
      g_assert_true (st_matter_qr_parse (from_png, strlen (from_png), &p, &error));
      g_assert_no_error (error);
      g_assert_cmpuint (p.discriminator, ==, g_ascii_strtoull (v[3], NULL, 10));
      g_assert_cmpuint (p.passcode, ==, g_ascii_strtoull (v[4], NULL, 10));
      g_assert_cmpuint (p.vendor_id, ==, 0xFFF1);
      g_assert_cmpuint (p.product_id, ==, 0x8000);

      /* the manual code, as people read it, and the serial */
      g_autofree gchar *pdf_text = NULL;
      g_assert_cmpint (st_run_tool (&pdf_text, NULL, "pdftotext", pdf, "-", NULL), ==, 0);
      g_autofree gchar *grouped = st_label_manual_code_format (v[2]);
      g_assert_nonnull (grouped);
      g_assert_nonnull (strstr (pdf_text, grouped));
      g_assert_nonnull (strstr (pdf_text, v[0]));
      g_assert_nonnull (strstr (pdf_text, "example-matter"));

      g_autofree gchar *zpl_text = NULL;
      g_assert_true (g_file_get_contents (zpl, &zpl_text, NULL, NULL));
      g_autofree gchar *field = g_strdup_printf ("^FDMA,%s^FS", v[1]);
      g_assert_nonnull (strstr (zpl_text, field));
    }
  /* nothing else in the folder */
  g_autofree gchar *listing = NULL;
  g_assert_cmpint (st_run_tool (&listing, NULL, "ls", "-A", dir, NULL), ==, 0);
  g_auto(GStrv) names = g_strsplit (g_strstrip (listing), "\n", -1);
  g_assert_cmpuint (g_strv_length (names), ==, 3 * UNITS);
}

static void
test_labels (void)
{
  Matter m = { 0 };
  matter_setup (&m, "st-matter-out-labels");
  StFixture *f = &m.fx;
  g_autofree gchar *dir = g_build_filename (f->tmp, "labels", NULL);
  g_autofree gchar *out = NULL, *err = NULL;

  const char *who[][2] = { { "op", "1111" }, { "qa", "3333" } };
  for (guint i = 0; i < G_N_ELEMENTS (who); i++)
    {
      g_assert_cmpint (st_run_station_as (f, who[i][0], who[i][1], NULL, &out, &err, "batch", "labels", m.batch_s,
                                          "--out", dir, NULL), ==, ST_RC_AUTH);
      g_assert_false (g_file_test (dir, G_FILE_TEST_EXISTS));
      g_clear_pointer (&out, g_free);
      g_clear_pointer (&err, g_free);
    }

  int rc = st_run_station_as (f, "lead", "2222", NULL, &out, &err, "batch", "labels", m.batch_s, "--out", dir, NULL);
  if (rc != 0)
    g_error ("batch labels: %d\n%s\n%s", rc, out, err);
  g_assert_nonnull (strstr (out, G_STRINGIFY (UNITS) " labels"));
  check_labels (&m, dir);
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM audit WHERE event = 'matter-labels-export'"), ==, 1);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* the same folder again: nothing replaced */
  g_assert_cmpint (st_run_station_as (f, "lead", "2222", NULL, &out, &err, "batch", "labels", m.batch_s, "--out", dir,
                                      NULL), !=, 0);
  g_assert_nonnull (strstr (err, "never replaced"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* another size and resolutions */
  g_autofree gchar *dir2 = g_build_filename (f->tmp, "labels-big", NULL);
  rc = st_run_station_as (f, "lead", "2222", NULL, &out, &err, "batch", "labels", m.batch_s, "--out", dir2,
                          "--size", "70x35", "--dpi", "600", "--zpl-dpi", "300", NULL);
  if (rc != 0)
    g_error ("batch labels --size: %d\n%s\n%s", rc, out, err);
  check_labels (&m, dir2);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* a size the label refuses, and a malformed one */
  g_autofree gchar *dir3 = g_build_filename (f->tmp, "labels-small", NULL);
  g_assert_cmpint (st_run_station_as (f, "lead", "2222", NULL, &out, &err, "batch", "labels", m.batch_s, "--out", dir3,
                                      "--size", "10x10", NULL), !=, 0);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station_as (f, "lead", "2222", NULL, &out, &err, "batch", "labels", m.batch_s, "--out", dir3,
                                      "--size", "50by25", NULL), ==, ST_RC_USAGE);
  matter_teardown (&m);
}

/* `station --address ADDR ARGS...` as nobody in @dir, with @pin. */
static int
station_nobody (const char *dir, const char *address, const char *pin, gchar **out, gchar **err,
                const char *const *args)
{
  g_autoptr(GPtrArray) a = g_ptr_array_new ();
  g_ptr_array_add (a, "--address");
  g_ptr_array_add (a, (gpointer) address);
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (a, (gpointer) args[i]);
  g_ptr_array_add (a, NULL);
  return st_station_as_nobody (dir, NULL, pin, out, err, (const char *const *) a->pdata);
}

static void
test_unprivileged (void)
{
  if (getuid () != 0)
    {
      g_test_skip ("changing to the user nobody needs root");
      return;
    }
  Matter m = { 0 };
  matter_setup (&m, "st-matter-out-nobody");
  StFixture *f = &m.fx;
  /* nobody passes through the test's folder to its own and to a public socket */
  g_assert_cmpint (g_chmod (f->tmp, 0711), ==, 0);
  g_autofree gchar *dir = g_build_filename (f->tmp, "nobody", NULL);
  g_assert_cmpint (g_mkdir (dir, 0755), ==, 0);
  g_assert_cmpint (chown (dir, 65534, 65534), ==, 0);
  g_autofree gchar *sock = g_build_filename (f->tmp, "public", NULL);
  g_assert_cmpint (g_mkdir (sock, 0755), ==, 0);
  g_autofree gchar *address = g_strdup_printf ("unix:path=%s/stationd.sock", sock);
  st_service_stop (f);
  g_autofree gchar *log = g_build_filename (f->tmp, "service-nobody.log", NULL);
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_MERGE);
  g_subprocess_launcher_set_stdout_file_path (launcher, log);
  g_subprocess_launcher_set_child_setup (launcher, st_child_dies_with_parent, NULL, NULL);
  g_subprocess_launcher_unsetenv (launcher, "STATION_HSM_PIN");
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) service = g_subprocess_launcher_spawn (launcher, &error, g_getenv ("ST_STATIOND"), "--home",
                                                                f->home, "--listen", address, NULL);
  g_assert_no_error (error);
  g_autofree gchar *sock_path = g_build_filename (sock, "stationd.sock", NULL);
  for (guint i = 0; i < 400 && !g_file_test (sock_path, G_FILE_TEST_EXISTS); i++)
    g_usleep (25 * 1000);
  g_assert_true (g_file_test (sock_path, G_FILE_TEST_EXISTS));

  g_autofree gchar *codes = g_build_filename (dir, "codes", NULL);
  g_autofree gchar *labels = g_build_filename (dir, "labels", NULL);
  g_autofree gchar *out = NULL, *err = NULL;
  const char *op_codes[] = { "--operator", "op", "batch", "codes", m.batch_s, "--out", codes, NULL };
  g_assert_cmpint (station_nobody (dir, address, "1111", &out, &err, op_codes), ==, ST_RC_AUTH);
  g_assert_nonnull (strstr (err, "needs the role lead"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  const char *qa_labels[] = { "--operator", "qa", "batch", "labels", m.batch_s, "--out", labels, NULL };
  g_assert_cmpint (station_nobody (dir, address, "3333", &out, &err, qa_labels), ==, ST_RC_AUTH);
  g_assert_nonnull (strstr (err, "needs the role lead"));
  g_assert_false (g_file_test (codes, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (labels, G_FILE_TEST_EXISTS));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  const char *lead_codes[] = { "--operator", "lead", "batch", "codes", m.batch_s, "--out", codes, NULL };
  int rc = station_nobody (dir, address, "2222", &out, &err, lead_codes);
  if (rc != 0)
    g_error ("batch codes as nobody: %d\n%s\n%s", rc, out, err);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  GStatBuf st;
  g_autofree gchar *path = g_build_filename (codes, "matter-codes.csv", NULL);
  g_assert_cmpint (g_lstat (path, &st), ==, 0);
  g_assert_cmpuint (st.st_uid, ==, 65534);
  g_assert_cmpuint (st.st_mode & 07777, ==, 0600);
  g_assert_cmpint (g_lstat (codes, &st), ==, 0);
  g_assert_cmpuint (st.st_uid, ==, 65534);
  g_assert_cmpuint (st.st_mode & 07777, ==, 0700);
  g_autofree gchar *text = read_text (codes, "matter-codes.csv");
  g_autofree gchar *want = expected_codes (&m);
  g_assert_cmpstr (text, ==, want);

  const char *lead_labels[] = { "--operator", "lead", "batch", "labels", m.batch_s, "--out", labels, NULL };
  rc = station_nobody (dir, address, "2222", &out, &err, lead_labels);
  if (rc != 0)
    g_error ("batch labels as nobody: %d\n%s\n%s", rc, out, err);
  check_labels (&m, labels);
  g_autofree gchar *one = NULL;
  g_assert_cmpint (st_run_tool (&one, NULL, "sh", "-c", "stat -c %u:%a \"$1\"/*", "sh", labels, NULL), ==, 0);
  g_auto(GStrv) owners = g_strsplit (g_strstrip (one), "\n", -1);
  g_assert_cmpuint (g_strv_length (owners), ==, 3 * UNITS);
  for (guint i = 0; owners[i] != NULL; i++)
    g_assert_cmpstr (owners[i], ==, "65534:600");

  g_subprocess_send_signal (service, SIGTERM);
  g_assert_true (g_subprocess_wait (service, NULL, NULL));
  g_assert_cmpint (g_subprocess_get_exit_status (service), ==, 0);
  matter_teardown (&m);
}

int
main (int argc, char **argv)
{
  st_test_init (&argc, &argv);
  g_test_add_func ("/matter-outputs/manifest", test_manifest);
  g_test_add_func ("/matter-outputs/codes", test_codes);
  g_test_add_func ("/matter-outputs/labels", test_labels);
  g_test_add_func ("/matter-outputs/unprivileged", test_unprivileged);
  return g_test_run ();
}
