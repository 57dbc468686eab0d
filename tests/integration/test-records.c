/* The records bound to the log (security review, issue 14, item 1, the
 * last part): `UPDATE operators SET role='admin'`, done with sqlite3 on the
 * database behind the service's back, took effect at once and left no
 * trace, since the audit chain itself was untouched. `station audit verify`
 * and `station db check` now rebuild the records from the log
 * (db/st-db-replay.c) and name the row the log does not explain.
 *
 * /records/role-raised-behind-the-back: a real batch through the pipeline
 * is explained by its log; then the role of the demo's operator is raised
 * with the stock sqlite3 CLI, the attack is shown to work, and both
 * commands report it by name and fail. */
#include <string.h>

#include "st-test-run.h"

static void
test_role_raised (StFixture *f, gconstpointer data)
{
  /* a real batch: what the pipeline logged explains every row */
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 2);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  g_autofree gchar *port = st_start_devsim (f, "--units", "2", "--seed", "601", NULL);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "batch", "run", id, "--port", port, "--units",
                                   "2", NULL), ==, 0);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "batch", "close", id, NULL), ==, 0);
  g_autofree gchar *out = NULL, *err = NULL;
  g_assert_cmpint (st_run_station (f, &out, NULL, "audit", "verify", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "records: ok (the log explains 4 operator(s), 1 batch(es), "
                                 "2 unit(s), 2 certificate(s))"));
  g_clear_pointer (&out, g_free);

  /* the attack: operator 'op' made an admin with sqlite3 on the file */
  g_autofree gchar *done = st_sql (f, "UPDATE operators SET role = 'admin' WHERE name = 'op'");
  /* it works at once: 'op' lists the operators, which only an admin may */
  const char *env[] = { "STATION_OPERATOR_PIN=1111", NULL };
  const char *list[] = { "--operator", "op", "operator", "list", NULL };
  g_assert_cmpint (st_run_stationv (f, env, NULL, NULL, list), ==, 0);

  /* and the log does not explain it: audit verify names it and fails */
  g_assert_cmpint (st_run_station (f, &out, &err, "audit", "verify", NULL), ==, 1);
  g_assert_nonnull (strstr (out, "records: FAILED: operator 'op': role is admin, the log says operator\n"));
  g_assert_nonnull (strstr (out, "audit chain: ok"));   /* the chain alone never saw it */
  g_assert_nonnull (strstr (out, "AUDIT LOG REJECTED"));
  g_assert_nonnull (strstr (err, "records the log does not explain"));
  g_clear_pointer (&out, g_free);
  /* so does db check */
  g_assert_cmpint (st_run_station (f, &out, NULL, "db", "check", NULL), ==, 1);
  g_assert_nonnull (strstr (out, "records: FAILED: operator 'op': role is admin, the log says operator\n"));
}

int
main (int argc, char **argv)
{
  st_test_init (&argc, &argv);
  st_test_add_station ("/records/role-raised-behind-the-back", NULL, test_role_raised);
  return g_test_run ();
}
