/* The Matter demo through the real service and CLI (issue 18, item 1;
 * docs/matter.md, "The PAA and the PAI: set-up and ceremony"):
 *
 * /matter-demo/setup: `station setup demo --matter` on a new home makes a
 *   station whose `setup show` names the Matter PAA and PAI; `batch
 *   create` of profiles/example-matter.profile (its CD file the demo's)
 *   is accepted there; `setup demo` (plain) on that home is refused;
 *   `--matter` with `setup show` is a usage error;
 * /matter-demo/plain-refused: on the plain demo, `batch create` of the same
 *   profile is refused with the PAI rule named, and `setup demo --matter`
 *   is refused too. */
#include <glib/gstdio.h>
#include <string.h>

#include "st-test-run.h"
#include "st-test-tmp.h"

/* profiles/example-matter.profile with its CD file set to @cd. */
static gchar *
matter_profile (StFixture *f, const char *cd)
{
  const char *overrides[] = { NULL, NULL };
  g_autofree gchar *o = g_strdup_printf ("certification-declaration=%s", cd);
  overrides[0] = o;
  return st_profile_copy (f, "example-matter.profile", overrides);
}

static int
create_batch (StFixture *f, const char *profile, gchar **out, gchar **err)
{
  return st_run_station (f, out, err, "batch", "create", "--profile", profile, "--work-order", "WO-MATTER-1",
                         "--quantity", "2", NULL);
}

static void
test_setup (void)
{
  StFixture fx = { 0 };
  StFixture *f = &fx;
  f->tmp = st_test_tmpdir ("st-matter-demo");
  f->home = g_build_filename (f->tmp, "home", NULL);
  f->sims = g_ptr_array_new_with_free_func (g_object_unref);
  const char *none[] = { NULL };
  st_service_ensure (f, none);

  g_autofree gchar *out = NULL, *err = NULL;
  g_assert_cmpint (st_run_station (f, &out, &err, "setup", "demo", "--matter", NULL), ==, 0);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station (f, &out, &err, "setup", "show", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "Station Demo Matter PAA"));
  g_assert_nonnull (strstr (out, "Station Demo Matter PAI"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_autofree gchar *conf = NULL;
  g_autofree gchar *conf_path = g_build_filename (f->home, "station.conf", NULL);
  g_assert_true (g_file_get_contents (conf_path, &conf, NULL, NULL));
  g_assert_nonnull (strstr (conf, "[matter]\nvendor-id=FFF1\n"));

  /* the demo's PAI is accepted by batch create of a Matter profile */
  g_autofree gchar *cd = g_build_filename (f->home, "matter", "cd-FFF1-8000.der", NULL);
  g_autofree gchar *profile = matter_profile (f, cd);
  g_assert_cmpint (create_batch (f, profile, &out, &err), ==, 0);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* the two kinds of demo never turn into each other */
  g_assert_cmpint (st_run_station (f, &out, &err, "setup", "demo", NULL), !=, 0);
  g_assert_nonnull (strstr (err, "Matter demo"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station (f, &out, &err, "setup", "show", "--matter", NULL), ==, ST_RC_USAGE);
  st_fixture_teardown (f, NULL);
}

static void
test_plain_refused (StFixture *f, gconstpointer data)
{
  /* the CD file is valid (a DER SignedData): only the CA is wrong */
  g_autofree gchar *out = NULL, *err = NULL;
  g_autofree gchar *tlv = g_build_filename (f->tmp, "cd.tlv", NULL);
  g_autofree gchar *cd = g_build_filename (f->tmp, "cd.der", NULL);
  g_autofree gchar *key = g_build_filename (f->tmp, "cd.key", NULL);
  g_autofree gchar *cert = g_build_filename (f->tmp, "cd.pem", NULL);
  g_assert_true (g_file_set_contents (tlv, "\x15\x18", 2, NULL));
  g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-subj", "/CN=CD", "-out",
                                cert, NULL), ==, 0);
  g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "cms", "-sign", "-binary", "-nodetach", "-in", tlv,
                                "-signer", cert, "-inkey", key, "-outform", "DER", "-out", cd, NULL), ==, 0);
  g_autofree gchar *profile = matter_profile (f, cd);
  g_assert_cmpint (create_batch (f, profile, &out, &err), !=, 0);
  g_assert_nonnull (strstr (err, "needs the issuing CA to be a Matter PAI"));
  g_assert_nonnull (strstr (err, "must carry a VID"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "lock", NULL), ==, 0);
  g_assert_cmpint (st_run_station (f, &out, &err, "setup", "demo", "--matter", NULL), !=, 0);
  g_assert_nonnull (strstr (err, "not a Matter one"));
}

int
main (int argc, char **argv)
{
  st_test_init (&argc, &argv);
  g_test_add_func ("/matter-demo/setup", test_setup);
  st_test_add_station ("/matter-demo/plain-refused", NULL, test_plain_refused);
  return g_test_run ();
}
