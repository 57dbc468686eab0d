/* The engine's role table: the one place that says who may do what.
 *
 * /engine/role-table: docs/architecture.md shows the table exactly as
 * st_engine_rules holds it (run `test-engine --print-role-table` to get the
 * text to paste when the table changes).
 * /engine/every-method-has-a-rule: every method of the D-Bus API is named
 * by one row of the table, and every name a row gives is a method.
 * /engine/unconfigured: a station without a set-up refuses what needs one
 * and lets its first admin in. */
#include <string.h>

#include "st-dbus.h"
#include "st-engine.h"
#include "st-error.h"
#include "st-test-tmp.h"
#include "st-util.h"

static gchar *
st_role_table_markdown (void)
{
  GString *out = g_string_new ("| action | D-Bus calls | roles | bootstrap | HSM |\n"
                               "| --- | --- | --- | --- | --- |\n");
  for (guint i = 0; i < ST_ACTION_LAST; i++)
    {
      const StActionRule *r = st_engine_rule (i);
      g_autofree gchar *roles = r->roles == 0 ? g_strdup ("anyone, no login")
                                              : st_role_mask_to_string (r->roles);
      g_string_append_printf (out, "| %s | %s | %s | %s | %s |\n", r->what, r->calls, roles,
                              r->bootstrap ? "yes" : "", r->needs_hsm ? "unlocked" : "");
    }
  return g_string_free (out, FALSE);
}

static void
test_role_table (void)
{
  g_autofree gchar *path = g_build_filename (ST_SOURCE_DIR, "docs", "architecture.md", NULL);
  g_autofree gchar *doc = NULL;
  g_assert_true (g_file_get_contents (path, &doc, NULL, NULL));
  const char *begin = strstr (doc, "<!-- role-table:");
  g_assert_nonnull (begin);
  begin = strchr (begin, '\n') + 1;
  const char *end = strstr (begin, "<!-- end role-table -->");
  g_assert_nonnull (end);
  g_autofree gchar *shown = g_strndup (begin, (gsize) (end - begin));
  g_autofree gchar *expected = st_role_table_markdown ();
  if (g_strcmp0 (shown, expected) != 0)
    g_test_message ("docs/architecture.md should show:\n%s", expected);
  g_assert_cmpstr (shown, ==, expected);
}

static void
test_every_method_has_a_rule (void)
{
  GDBusInterfaceInfo *info = st_dbus_station1_interface_info ();
  g_autoptr(GHashTable) named = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < ST_ACTION_LAST; i++)
    {
      const StActionRule *r = st_engine_rule (i);
      g_assert_cmpint (r->action, ==, i);
      g_auto(GStrv) calls = g_strsplit (r->calls, ", ", -1);
      for (guint c = 0; calls[c] != NULL; c++)
        {
          /* "LineStart with allow-reprovision": the method is the first word */
          g_auto(GStrv) words = g_strsplit (calls[c], " ", 2);
          g_assert_nonnull (g_dbus_interface_info_lookup_method (info, words[0]));
          g_hash_table_add (named, g_strdup (words[0]));
        }
    }
  for (guint m = 0; info->methods[m] != NULL; m++)
    {
      if (!g_hash_table_contains (named, info->methods[m]->name))
        g_test_message ("method %s has no row in st_engine_rules", info->methods[m]->name);
      g_assert_true (g_hash_table_contains (named, info->methods[m]->name));
    }
}

static void
test_unconfigured (void)
{
  g_autofree gchar *tmp = st_test_tmpdir ("st-engine");
  g_autoptr(GError) error = NULL;
  g_autoptr(StEngine) engine = st_engine_new (tmp, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (st_engine_is_configured (engine));
  g_assert_false (st_engine_is_unlocked (engine));
  /* the set-up and the first admin need no login on a new station */
  g_assert_true (st_engine_require (engine, NULL, ST_ACTION_SETUP_DEMO, &error));
  g_assert_no_error (error);
  g_assert_true (st_engine_require (engine, NULL, ST_ACTION_OPERATOR_ADD, &error));
  g_assert_no_error (error);
  /* anything else says the station is not set up */
  g_assert_false (st_engine_require (engine, NULL, ST_ACTION_BATCH_CREATE, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "not set up"));
  g_clear_error (&error);
  /* a login needs a station */
  g_autoptr(StAuthSession) s = st_engine_login (engine, "admin", "4444", &error);
  g_assert_null (s);
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_FOUND);
  g_clear_error (&error);
  /* the status says so to anyone */
  g_autoptr(GVariant) status = st_engine_status (engine);
  gboolean configured = TRUE;
  g_assert_true (g_variant_lookup (status, "configured", "b", &configured));
  g_assert_false (configured);
  g_clear_pointer (&engine, st_engine_free);
  st_rm_rf (tmp);
}

/* A station whose key ceremony waits for 'ca import' (station.conf without
 * [certificates]): it opens its database and has operators, but refuses
 * what needs certificates, saying how to finish the ceremony; it cannot be
 * unlocked; showing the set-up and the import itself are allowed. */
static void
test_awaiting_import (void)
{
  g_autofree gchar *tmp = st_test_tmpdir ("st-engine");
  g_autofree gchar *conf = g_build_filename (tmp, "station.conf", NULL);
  const char text[] =
    "[station]\nid=line3-station1\n\n[hsm]\nmodule=/usr/lib/softhsm/libsofthsm2.so\ntoken=line3\n"
    "ca-key=pkcs11:token=line3;object=issuing-ca;id=%01;type=private\n"
    "signing-key=pkcs11:token=line3;object=station-signing;id=%02;type=private\n";
  g_assert_true (g_file_set_contents (conf, text, -1, NULL));
  g_autoptr(GError) error = NULL;
  g_autoptr(StEngine) engine = st_engine_new (tmp, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (st_engine_is_configured (engine));
  g_assert_true (st_engine_awaits_import (engine));
  g_assert_true (st_engine_operator_add (engine, NULL, "alice", "admin", "4444", &error));
  g_assert_no_error (error);
  g_autoptr(StAuthSession) alice = st_engine_login (engine, "alice", "4444", &error);
  g_assert_no_error (error);
  g_assert_true (st_engine_operator_add (engine, alice, "lee", "lead", "2222", &error));
  g_assert_no_error (error);
  g_autoptr(StAuthSession) lee = st_engine_login (engine, "lee", "2222", &error);
  g_assert_no_error (error);
  /* each with a role that may do it otherwise */
  const struct {
    StAuthSession *who;
    StAction action;
  } refused[] = {
    { alice, ST_ACTION_UNLOCK }, { lee, ST_ACTION_BATCH_CREATE }, { lee, ST_ACTION_LINE_RUN },
    { lee, ST_ACTION_MANIFEST_EXPORT }, { lee, ST_ACTION_HEALTH }, { lee, ST_ACTION_AUDIT_VERIFY },
  };
  for (guint i = 0; i < G_N_ELEMENTS (refused); i++)
    {
      g_assert_false (st_engine_require (engine, refused[i].who, refused[i].action, &error));
      g_assert_error (error, ST_ERROR, ST_ERROR_NOT_FOUND);
      g_assert_nonnull (strstr (error->message, "the key ceremony is not finished"));
      g_assert_nonnull (strstr (error->message, "station ca import --chain FILE --signing-cert FILE"));
      g_clear_error (&error);
    }
  /* unlock refuses the same way, and so does the service's start-up credential */
  g_assert_false (st_engine_unlock (engine, alice, "246810", &error));
  g_assert_nonnull (strstr (error->message, "the key ceremony is not finished"));
  g_clear_error (&error);
  const StAction allowed[] = { ST_ACTION_SETUP_SHOW, ST_ACTION_CA_IMPORT, ST_ACTION_OPERATOR_LIST,
                               ST_ACTION_DB_CHECK };
  for (guint i = 0; i < G_N_ELEMENTS (allowed); i++)
    {
      g_assert_true (st_engine_require (engine, alice, allowed[i], &error));
      g_assert_no_error (error);
    }
  g_autofree gchar *shown = st_engine_setup_show (engine, alice, &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (shown, "AWAITING IMPORT"));
  g_autoptr(GVariant) status = st_engine_status (engine);
  const char *ceremony = NULL;
  g_assert_true (g_variant_lookup (status, "ceremony", "&s", &ceremony));
  g_assert_cmpstr (ceremony, ==, "awaiting-import");
  /* ca init on a home that is set up (or half set up): refused */
  StCeremonyInit req = { .module = "/usr/lib/softhsm/libsofthsm2.so", .token = "line3",
                         .station_id = "x", .alg = ST_ALG_EC_P256, .pin = "246810" };
  StCeremonyKeys keys = { 0 };
  g_assert_false (st_engine_ca_init (engine, alice, &req, "bob", "5555", &keys, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED);
  g_assert_nonnull (strstr (error->message, "already set up"));
  g_clear_error (&error);
  st_ceremony_keys_clear (&keys);
  g_clear_pointer (&engine, st_engine_free);
  st_rm_rf (tmp);
}

/* Issue 17: ProfileList offers the station's profile folder (HOME/profiles)
 * alone, never the installed or the build tree's example-* profiles. The
 * source tree's profiles/ exists here (the engine was built from it), so a
 * listing that still looked there would show its examples. */
static void
test_profile_list_home_only (void)
{
  g_autofree gchar *example = g_build_filename (ST_SOURCE_DIR, "profiles", "example-device-csr.profile", NULL);
  g_assert_true (g_file_test (example, G_FILE_TEST_IS_REGULAR));
  g_autofree gchar *tmp = st_test_tmpdir ("st-engine");
  g_autofree gchar *conf = g_build_filename (tmp, "station.conf", NULL);
  const char text[] =
    "[station]\nid=line3-station1\n\n[hsm]\nmodule=/usr/lib/softhsm/libsofthsm2.so\ntoken=line3\n"
    "ca-key=pkcs11:token=line3;object=issuing-ca;id=%01;type=private\n"
    "signing-key=pkcs11:token=line3;object=station-signing;id=%02;type=private\n";
  g_assert_true (g_file_set_contents (conf, text, -1, NULL));
  g_autoptr(GError) error = NULL;
  g_autoptr(StEngine) engine = st_engine_new (tmp, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (st_engine_operator_add (engine, NULL, "alice", "admin", "4444", &error));
  g_assert_no_error (error);
  g_autoptr(StAuthSession) alice = st_engine_login (engine, "alice", "4444", &error);
  g_assert_no_error (error);
  /* no profile folder: an empty list, not an error */
  g_autoptr(GPtrArray) none = st_engine_profile_list (engine, alice, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (none->len, ==, 0);
  g_autofree gchar *dir = g_build_filename (tmp, "profiles", NULL);
  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  const char *files[] = { "sensor-v2.profile", "gateway.profile", "notes.txt" };
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree gchar *path = g_build_filename (dir, files[i], NULL);
      g_assert_true (g_file_set_contents (path, "[profile]\n", -1, NULL));
    }
  g_autoptr(GPtrArray) paths = st_engine_profile_list (engine, alice, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (paths->len, ==, 2);
  g_autofree gchar *first = g_build_filename (dir, "gateway.profile", NULL);
  g_autofree gchar *second = g_build_filename (dir, "sensor-v2.profile", NULL);
  g_assert_cmpstr (g_ptr_array_index (paths, 0), ==, first);
  g_assert_cmpstr (g_ptr_array_index (paths, 1), ==, second);
  g_clear_pointer (&engine, st_engine_free);
  st_rm_rf (tmp);
}

int
main (int argc, char **argv)
{
  if (argc == 2 && g_strcmp0 (argv[1], "--print-role-table") == 0)
    {
      g_autofree gchar *table = st_role_table_markdown ();
      g_print ("%s", table);
      return 0;
    }
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/role-table", test_role_table);
  g_test_add_func ("/engine/every-method-has-a-rule", test_every_method_has_a_rule);
  g_test_add_func ("/engine/unconfigured", test_unconfigured);
  g_test_add_func ("/engine/awaiting-import", test_awaiting_import);
  g_test_add_func ("/engine/profile-list-home-only", test_profile_list_home_only);
  return g_test_run ();
}
