/* The files the clouds import as they are (issue 15, item 4), checked by
 * code that shares nothing with the station (tests/cloud/check-cloud.py:
 * python3-cryptography, python3-jsonschema, the openssl command).
 *
 * /cloud/export-and-verification-cert, on one demo station (its set-up is
 * most of the time), checks two things.
 *
 * The export: a closed batch of three units, the second failing at
 * read-back (its certificate voided). `manifest export` writes aws/,
 * azure/, certs/ and jws/ next to the manifest; the checker verifies every
 * JWS entry against the pinned signer of `setup show`, each certs/ file
 * with openssl to the root, the AWS lines and template and the Azure
 * enrollment group against schemas written from the AWS and Azure docs,
 * the lines' keys against the template's parameters, and that the voided
 * unit is in no file a cloud imports but is named in the report. Exporting
 * again into the same folder is refused without --force and replaces the
 * folders with it. `--cloud certs,aws` writes those two folders only (the
 * report names the others), `--cloud none` none, `--cloud aws,gcp` is
 * refused before anything is written.
 *
 * The verification certificate: `ca verification-cert --code CODE` (admin):
 * CN = the code, openssl verifies it to the root through the chain, not a
 * CA, no extended key usage; bad codes refused; a lead refused; audited. */
#include <glib/gstdio.h>
#include <string.h>

#include "st-test-run.h"

/* The value after "@prefix" on a line of @text, to the end of the line. */
static gchar *
st_line_value (const char *text, const char *prefix)
{
  const char *p = strstr (text, prefix);
  g_assert_nonnull (p);
  p += strlen (prefix);
  const char *end = strchr (p, '\n');
  return g_strndup (p, end != NULL ? (gsize) (end - p) : strlen (p));
}

static gchar *
st_setup_show (StFixture *f)
{
  gchar *out = NULL;
  g_assert_cmpint (st_run_station_as (f, "admin", "4444", NULL, &out, NULL, "setup", "show", NULL), ==, 0);
  return out;
}

static gchar *
st_uids_where (StFixture *f, gint64 batch, const char *cert_state)
{
  g_autofree gchar *sql = g_strdup_printf (
    "SELECT group_concat(uid, ',') FROM certificates WHERE batch_id = %" G_GINT64_FORMAT
    " AND state = '%s'", batch, cert_state);
  return st_sql (f, sql);
}

static void
st_check_export (StFixture *f, const char *show)
{
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 3);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  g_autofree gchar *port = st_start_devsim (f, "--units", "3", "--seed", "1501", "--fault",
                                            "readback-differs", "--fault-unit", "2", NULL);
  /* one unit fails: the run says so */
  g_assert_cmpint (st_run_station (f, NULL, NULL, "batch", "run", id, "--port", port, "--units", "3",
                                   "--wait", "5", NULL), ==, 1);
  st_stop_devsims (f);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "batch", "close", id, NULL), ==, 0);
  g_autofree gchar *active = st_uids_where (f, batch, "active");
  g_autofree gchar *voided = st_uids_where (f, batch, "voided");
  g_auto(GStrv) active_v = g_strsplit (active, ",", -1);
  g_assert_cmpuint (g_strv_length (active_v), ==, 2);
  g_assert_cmpuint (strlen (voided), >, 0);
  g_assert_null (strchr (voided, ','));

  g_autofree gchar *dir = g_build_filename (f->tmp, "export", NULL);
  g_autofree gchar *out = NULL;
  g_assert_cmpint (st_run_station (f, &out, NULL, "manifest", "export", id, "--out", dir, NULL), ==, 0);
  /* the report is shown, and names the unit left out */
  g_assert_nonnull (strstr (out, "active certificates: 2; left out of every target: 1"));
  g_assert_nonnull (strstr (out, voided));
  g_assert_nonnull (strstr (out, "aws: 2 line(s)"));

  g_autofree gchar *pin = st_line_value (show, "Station signing key pin (SHA-256 of its public key): ");
  g_autofree gchar *root = st_line_value (show, "Trusted root: ");
  g_assert_cmpuint (strlen (pin), ==, 64);
  g_autofree gchar *checker = g_build_filename (g_getenv ("ST_SOURCE_DIR"), "tests", "cloud",
                                                "check-cloud.py", NULL);
  g_autofree gchar *schemas = g_build_filename (g_getenv ("ST_SOURCE_DIR"), "tests", "cloud",
                                                "schemas", NULL);
  g_autofree gchar *check_out = NULL, *check_err = NULL;
  int rc = st_run_tool (&check_out, &check_err, "python3", checker, dir, "--root", root, "--pin", pin,
                        "--schemas", schemas, "--active", active, "--left-out", voided, NULL);
  g_test_message ("%s%s", check_out, check_err);
  g_assert_cmpint (rc, ==, 0);
  g_assert_cmpuint (st_count_lines (check_out, "ok: "), ==, 5);

  /* the checker must fail on a forged entry: the first payload decoded,
   * its model changed (valid JSON still, the same length), encoded again */
  g_autofree gchar *entries = g_build_filename (dir, "jws", "entries.json", NULL);
  g_autofree gchar *text = NULL;
  g_assert_true (g_file_get_contents (entries, &text, NULL, NULL));
  /* (one entry a line, written as it is signed: the value after the
   * member's colon, whatever the spacing) */
  gchar *payload = strstr (text, "\"payload\"");
  g_assert_nonnull (payload);
  payload = strchr (payload + strlen ("\"payload\""), ':');
  g_assert_nonnull (payload);
  payload = strchr (payload, '"');
  g_assert_nonnull (payload);
  payload++;
  gsize b64_len = strcspn (payload, "\"");
  g_autoptr(GString) b64 = g_string_new_len (payload, (gssize) b64_len);
  g_strdelimit (b64->str, "-", '+');
  g_strdelimit (b64->str, "_", '/');
  while (b64->len % 4 != 0)
    g_string_append_c (b64, '=');
  gsize raw_len = 0;
  g_autofree guchar *raw = g_base64_decode (b64->str, &raw_len);
  g_autofree gchar *json = g_strndup ((const gchar *) raw, raw_len);
  gchar *model = strstr (json, "\"model\":\"SIM-DEV-1\"");
  g_assert_nonnull (model);
  model[strlen ("\"model\":\"SIM-DEV-")] = '2';
  g_autofree gchar *again = g_base64_encode ((const guchar *) json, raw_len);
  gsize again_len = strlen (again);
  while (again_len > 0 && again[again_len - 1] == '=')
    again[--again_len] = '\0';
  g_strdelimit (again, "+", '-');
  g_strdelimit (again, "/", '_');
  g_assert_cmpuint (again_len, ==, b64_len);
  memcpy (payload, again, b64_len);
  g_autofree gchar *forged_dir = g_build_filename (f->tmp, "forged", NULL);
  g_assert_cmpint (st_run_tool (NULL, NULL, "cp", "-r", dir, forged_dir, NULL), ==, 0);
  g_autofree gchar *forged = g_build_filename (forged_dir, "jws", "entries.json", NULL);
  g_assert_true (g_file_set_contents (forged, text, -1, NULL));
  g_autofree gchar *forged_out = NULL;
  rc = st_run_tool (&forged_out, NULL, "python3", checker, forged_dir, "--root", root, "--pin", pin,
                    "--schemas", schemas, "--active", active, "--left-out", voided, NULL);
  g_assert_cmpint (rc, !=, 0);
  g_assert_nonnull (strstr (forged_out, "FAIL: the JWS of "));
  g_assert_nonnull (strstr (forged_out, "does not verify"));

  /* again into the same folder: refused without --force, naming a cloud
   * folder or the manifest; with it, the folders are replaced (a stray file
   * in certs/ does not survive) */
  g_autofree gchar *stray = g_build_filename (dir, "certs", "stray.pem", NULL);
  g_assert_true (g_file_set_contents (stray, "not a device of this batch\n", -1, NULL));
  g_autofree gchar *err = NULL;
  g_assert_cmpint (st_run_station (f, NULL, &err, "manifest", "export", id, "--out", dir, NULL), ==, ST_RC_ERROR);
  g_assert_nonnull (strstr (err, "--force"));
  g_assert_true (g_file_test (stray, G_FILE_TEST_EXISTS));
  g_assert_cmpint (st_run_station (f, NULL, NULL, "manifest", "export", id, "--out", dir, "--force", NULL), ==, 0);
  g_assert_false (g_file_test (stray, G_FILE_TEST_EXISTS));
  g_autofree gchar *certs_dir = g_build_filename (dir, "certs", NULL);
  g_autoptr(GDir) certs = g_dir_open (certs_dir, 0, NULL);
  g_assert_nonnull (certs);
  guint n_certs = 0;
  while (g_dir_read_name (certs) != NULL)
    n_certs++;
  g_assert_cmpuint (n_certs, ==, 2);
  /* the manifest itself still verifies with the cloud folders beside it */
  g_assert_cmpint (st_run_station (f, NULL, NULL, "manifest", "verify", dir, NULL), ==, 0);

  /* --cloud: only the folders asked for, the others named in the report;
   * none: the manifest alone (no per-unit HSM signature); a bad list is
   * refused before anything is written */
  g_autofree gchar *some = g_build_filename (f->tmp, "export-some", NULL);
  g_autofree gchar *some_out = NULL;
  g_assert_cmpint (st_run_station (f, &some_out, NULL, "manifest", "export", id, "--out", some,
                                   "--cloud", "certs,aws", NULL), ==, 0);
  g_assert_nonnull (strstr (some_out, "jws: not exported (not asked for with --cloud)"));
  g_assert_nonnull (strstr (some_out, "azure: not exported"));
  g_assert_nonnull (strstr (some_out, "aws: 2 line(s)"));
  const char *folders[] = { "aws", "azure", "certs", "jws" };
  const gboolean in_some[] = { TRUE, FALSE, TRUE, FALSE };
  for (guint i = 0; i < G_N_ELEMENTS (folders); i++)
    {
      g_autofree gchar *path = g_build_filename (some, folders[i], NULL);
      g_assert_cmpint (g_file_test (path, G_FILE_TEST_IS_DIR), ==, in_some[i]);
    }
  g_assert_cmpint (st_run_station (f, NULL, NULL, "manifest", "verify", some, NULL), ==, 0);
  g_autofree gchar *none = g_build_filename (f->tmp, "export-none", NULL);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "manifest", "export", id, "--out", none,
                                   "--cloud", "none", NULL), ==, 0);
  for (guint i = 0; i < G_N_ELEMENTS (folders); i++)
    {
      g_autofree gchar *path = g_build_filename (none, folders[i], NULL);
      g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
    }
  g_autofree gchar *none_report_path = g_build_filename (none, "cloud-report.txt", NULL);
  g_autofree gchar *none_report = NULL;
  g_assert_true (g_file_get_contents (none_report_path, &none_report, NULL, NULL));
  g_assert_nonnull (strstr (none_report, "no cloud target asked for (--cloud none)"));
  g_assert_null (strstr (none_report, "left out"));
  g_autofree gchar *bad = g_build_filename (f->tmp, "export-bad", NULL);
  g_autofree gchar *bad_err = NULL;
  g_assert_cmpint (st_run_station (f, NULL, &bad_err, "manifest", "export", id, "--out", bad,
                                   "--cloud", "aws,gcp", NULL), !=, 0);
  g_assert_nonnull (strstr (bad_err, "'gcp' is not a cloud target"));
  g_autofree gchar *bad_manifest = g_build_filename (bad, "manifest.json", NULL);
  g_assert_false (g_file_test (bad_manifest, G_FILE_TEST_EXISTS));
}

static void
st_check_verification_cert (StFixture *f, const char *show)
{
  const char *code = "3b1fc5e6a0c1d2e3f40516273849aabbccddeeff00112233445566778899aabb";
  g_autofree gchar *out = g_build_filename (f->tmp, "verification.pem", NULL);
  g_assert_cmpint (st_run_station_as (f, "admin", "4444", NULL, NULL, NULL, "ca", "verification-cert",
                                      "--code", code, "--out", out, NULL), ==, 0);
  g_autofree gchar *subject = NULL;
  g_assert_cmpint (st_run_tool (&subject, NULL, "openssl", "x509", "-in", out, "-noout", "-subject",
                                "-nameopt", "RFC2253", NULL), ==, 0);
  g_autofree gchar *want = g_strdup_printf ("subject=CN=%s\n", code);
  g_assert_cmpstr (subject, ==, want);
  g_autofree gchar *root = st_line_value (show, "Trusted root: ");
  g_autofree gchar *chain = st_line_value (show, "Chain: ");
  g_autofree gchar *verified = NULL;
  g_assert_cmpint (st_run_tool (&verified, NULL, "openssl", "verify", "-CAfile", root, "-untrusted",
                                chain, out, NULL), ==, 0);
  g_assert_nonnull (strstr (verified, ": OK"));
  /* not a CA, not the station's signer, not a device's client certificate */
  g_autofree gchar *text = NULL;
  g_assert_cmpint (st_run_tool (&text, NULL, "openssl", "x509", "-in", out, "-noout", "-text", NULL), ==, 0);
  g_assert_nonnull (strstr (text, "CA:FALSE"));
  g_assert_null (strstr (text, "Extended Key Usage"));
  g_assert_nonnull (strstr (text, "Digital Signature"));

  /* an existing file is not replaced without --force */
  g_autofree gchar *err = NULL;
  g_assert_cmpint (st_run_station_as (f, "admin", "4444", NULL, NULL, &err, "ca", "verification-cert",
                                      "--code", code, "--out", out, NULL), ==, ST_RC_ERROR);
  g_assert_nonnull (strstr (err, "--force"));

  /* codes that are not a registration code */
  /* (the whole rule is /cloud/names' in tests/station/test-cloud.c) */
  const char *bad[] = { "../x", "00000000000000000000000000000000000000000000000000000000000000000" /* 65 */ };
  g_autofree gchar *other = g_build_filename (f->tmp, "other.pem", NULL);
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_clear_pointer (&err, g_free);
      g_assert_cmpint (st_run_station_as (f, "admin", "4444", NULL, NULL, &err, "ca", "verification-cert",
                                          "--code", bad[i], "--out", other, NULL), ==, ST_RC_USAGE);
      g_assert_nonnull (strstr (err, "registration code"));
      g_assert_false (g_file_test (other, G_FILE_TEST_EXISTS));
    }

  /* admin only */
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station_as (f, "lead", "2222", NULL, NULL, &err, "ca", "verification-cert",
                                      "--code", "abcd", "--out", other, NULL), ==, ST_RC_AUTH);
  g_assert_nonnull (strstr (err, "admin"));
  g_assert_false (g_file_test (other, G_FILE_TEST_EXISTS));

  /* audited: the code and the serial */
  g_autofree gchar *audited = st_sql (f, "SELECT payload FROM audit WHERE event = 'ca-verification-cert'");
  g_assert_nonnull (strstr (audited, code));
  g_assert_nonnull (strstr (audited, "\"serial\""));
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM audit WHERE event = 'ca-verification-cert'"), ==, 1);
}

static void
test_export_and_verification_cert (StFixture *f, gconstpointer data)
{
  g_autofree gchar *show = st_setup_show (f);
  st_check_export (f, show);
  st_check_verification_cert (f, show);
}

int
main (int argc, char **argv)
{
  st_test_init (&argc, &argv);
  /* one station for both: a demo station's set-up is most of the time */
  st_test_add_station ("/cloud/export-and-verification-cert", NULL, test_export_and_verification_cert);
  return g_test_run ();
}
