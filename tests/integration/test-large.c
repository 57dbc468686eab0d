/* A generated database (tests/tools/st-gen-db, docs/testing.md "A large
 * database"), small enough for make test: 120 units written through the db
 * API into the demo station's database while its service is stopped.
 *
 * /large/generated-db: `db check` and `audit verify` (the HSM anchor and the
 * signed checkpoints included) accept what the tool makes; `batch show`
 * gives the batch's counts (kept by triggers, schema 9) equal to a count
 * of the rows, the first 50 units and how many more; `--all` pages
 * through every unit once, in id order. */
#include <string.h>

#include "st-test-run.h"

static void
test_generated_db (StFixture *f, gconstpointer data)
{
  /* the service up once (the demo set up and unlocked), then stopped */
  g_assert_cmpint (st_run_station (f, NULL, NULL, "batch", "list", NULL), ==, 0);
  g_assert_cmpint (st_service_stop (f), ==, 0);
  g_autofree gchar *db = g_build_filename (f->home, "station.db", NULL);
  g_autofree gchar *ca = g_build_filename (f->tmp, "gen-ca.pem", NULL);
  g_autofree gchar *out = NULL, *err = NULL;
  g_assert_cmpint (st_run_tool (&out, &err, ST_GEN_DB, "--db", db, "--units", "120", "--fail-every", "10",
                                "--threads", "8", "--work-order", "WO-GEN", "--ca-out", ca, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "120 units"));
  g_clear_pointer (&out, g_free);

  /* the counts against the rows */
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM units WHERE state = 'done'"), ==, 108);
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM certificates WHERE state = 'voided'"), ==, 12);
  g_assert_cmpint (st_run_station (f, &out, NULL, "batch", "show", "1", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "  units       120 (108 done, 12 failed)\n"));
  g_assert_nonnull (strstr (out, "certificates 108 live, 12 voided, 0 unconfirmed, 0 disputed, 0 revoked\n"));
  g_assert_cmpuint (st_count_lines (out, " gen:0"), ==, 50);
  g_assert_nonnull (strstr (out, "... 70 more unit(s): 'station batch show 1 --all' lists every one\n"));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_station (f, &out, NULL, "batch", "show", "1", "--all", NULL), ==, 0);
  g_assert_cmpuint (st_count_lines (out, " gen:0"), ==, 120);
  g_assert_cmpuint (st_count_lines (out, " failed "), ==, 12);
  g_assert_null (strstr (out, "more unit(s)"));
  /* every uid once (the tool numbers them from 5e0000000000) */
  for (guint i = 0; i < 120; i++)
    {
      g_autofree gchar *uid = g_strdup_printf ("  %024" G_GINT64_MODIFIER "x ", (guint64) 0x5e0000000000ull + i);
      g_assert_cmpuint (st_count_lines (out, uid), ==, 1);
    }
  g_clear_pointer (&out, g_free);

  /* everything the tool wrote is explained by the log and anchored */
  g_assert_cmpint (st_run_station (f, &out, NULL, "db", "check", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "batch counts agree with the units and certificates: ok\n"));
  g_assert_nonnull (strstr (out, "120 unit(s), 120 certificate(s)"));
  g_clear_pointer (&out, g_free);
  const char *env[] = { "STATION_OPERATOR_PIN=3333", NULL };
  const char *verify[] = { "--operator", "qa", "audit", "verify", NULL };
  g_assert_cmpint (st_run_stationv (f, env, &out, NULL, verify), ==, 0);
  g_assert_nonnull (strstr (out, "HSM anchor: ok"));
  g_assert_nonnull (strstr (out, "audit log verified"));
  g_clear_pointer (&out, g_free);

  /* the certificates are X.509 signed by the tool's CA: openssl agrees */
  g_autofree gchar *hex = st_sql (f, "SELECT hex(der) FROM certificates WHERE state = 'active' LIMIT 1");
  g_strstrip (hex);
  gsize n = strlen (hex) / 2;
  g_autofree guint8 *der = g_malloc (n);
  for (gsize i = 0; i < n; i++)
    der[i] = (guint8) (g_ascii_xdigit_value (hex[2 * i]) * 16 + g_ascii_xdigit_value (hex[2 * i + 1]));
  g_autofree gchar *der_path = g_build_filename (f->tmp, "gen-cert.der", NULL);
  g_assert_true (g_file_set_contents (der_path, (const gchar *) der, (gssize) n, NULL));
  g_autofree gchar *pem_path = g_build_filename (f->tmp, "gen-cert.pem", NULL);
  g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "x509", "-inform", "DER", "-in", der_path, "-out",
                                pem_path, NULL), ==, 0);
  g_assert_cmpint (st_run_tool (&out, NULL, "openssl", "verify", "-CAfile", ca, pem_path, NULL), ==, 0);
  g_assert_nonnull (strstr (out, ": OK"));
}

int
main (int argc, char **argv)
{
  st_test_init (&argc, &argv);
  st_test_add_station ("/large/generated-db", NULL, test_generated_db);
  return g_test_run ();
}
