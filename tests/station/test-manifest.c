/* The manifest reader of 'manifest verify' (st_manifest_verify) on a real
 * demo batch's manifest (tests/fuzz/manifest/, also fuzz-manifest's
 * folder), and what the fuzzer found in it. */
#include "st-config.h"
#include "st-error.h"
#include "st-manifest.h"
#include "st-ossl.h"
#include "st-util.h"

#include <openssl/pem.h>
#include <string.h>

#define FIXTURE ST_SOURCE_DIR "/tests/fuzz/manifest"

/* The pin of the demo station's signing key (station.conf's). */
static gchar *
load_pin (void)
{
  gchar *pin = NULL;
  g_assert_true (g_file_get_contents (FIXTURE "/signer-pin", &pin, NULL, NULL));
  return g_strstrip (pin);
}

static X509 *
load_root (void)
{
  FILE *f = fopen (FIXTURE "/demo-root.pem", "r");
  g_assert_nonnull (f);
  X509 *root = PEM_read_X509 (f, NULL, NULL, NULL);
  fclose (f);
  g_assert_nonnull (root);
  return root;
}

/* A manifest folder in a new temporary folder: the demo batch's files,
 * its manifest.json replaced by @json when not NULL. */
static gchar *
make_folder (const char *json)
{
  g_autoptr(GError) error = NULL;
  gchar *dir = g_dir_make_tmp ("st-test-manifest-XXXXXX", &error);
  g_assert_no_error (error);
  const char *const names[] = { "manifest.json", "manifest.json.p7s", "manifest.csv", "ca-chain.pem" };
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree gchar *from = g_build_filename (FIXTURE, names[i], NULL);
      g_autofree gchar *to = g_build_filename (dir, names[i], NULL);
      g_autofree gchar *data = NULL;
      gsize len = 0;
      g_assert_true (g_file_get_contents (from, &data, &len, &error));
      if (json != NULL && i == 0)
        g_assert_true (g_file_set_contents (to, json, -1, &error));
      else
        g_assert_true (g_file_set_contents (to, data, (gssize) len, &error));
      g_assert_no_error (error);
    }
  return dir;
}

/* Each line of @report is one check: "ok    " or "FAIL  " and a message. */
static void
assert_one_line_per_check (const char *report)
{
  g_assert_true (g_utf8_validate (report, -1, NULL));
  g_auto(GStrv) lines = g_strsplit (report, "\n", -1);
  guint n = g_strv_length (lines);
  g_assert_cmpuint (n, >=, 2);
  g_assert_cmpstr (lines[n - 1], ==, "");
  for (guint i = 0; i + 1 < n; i++)
    if (!g_str_has_prefix (lines[i], "ok    ") && !g_str_has_prefix (lines[i], "FAIL  "))
      g_error ("report line %u is not a check: '%s'\n%s", i + 1, lines[i], report);
}

static void
test_demo_verifies (void)
{
  g_autoptr(X509) root = load_root ();
  g_autofree gchar *dir = make_folder (NULL);
  g_autoptr(GString) report = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autofree gchar *pin = load_pin ();
  gboolean ok = st_manifest_verify (dir, root, pin, NULL, report, &error);
  g_assert_no_error (error);
  g_assert_true (ok);
  assert_one_line_per_check (report->str);
  g_assert_null (strstr (report->str, "FAIL"));
  g_assert_nonnull (strstr (report->str, "4 units: 4 done, 0 failed"));
  st_rm_rf (dir);
}

/* fuzz-manifest: text a manifest brings into a check's message (a uid, the
 * string a JSON parse error quotes) held its newlines, so a manifest could
 * add lines to its own report, such as a forged "ok    signature: valid".
 * Now each control character is written \xNN. */
static void
test_report_one_line_per_check (void)
{
  g_autoptr(X509) root = load_root ();
  g_autofree gchar *pin = load_pin ();
  g_autofree gchar *signed_json = NULL;
  g_assert_true (g_file_get_contents (FIXTURE "/manifest.json", &signed_json, NULL, NULL));
  /* the same forged uid on every unit: "uid ... has two live certificates"
   * quotes it */
  g_autoptr(GString) with_uid = g_string_new (NULL);
  const char *at = signed_json, *uid;
  while ((uid = strstr (at, "\"uid\" : \"")) != NULL)
    {
      uid += strlen ("\"uid\" : \"");
      g_string_append_len (with_uid, at, uid - at);
      g_string_append (with_uid, "forged\\nok    signature: valid, signed by the real station\\r\\nok    x");
      at = strchr (uid, '"');
    }
  g_string_append (with_uid, at);
  /* the fuzzer's own case: a string constant where a member name belongs,
   * quoted with its newline in json-glib's parse error */
  const char *bad_json = "{\"format\" : \"station-manifest/1\", \"units\\nok    forged\" \"x\"}";
  const char *const cases[] = { with_uid->str, bad_json };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree gchar *dir = make_folder (cases[i]);
      g_autoptr(GString) report = g_string_new (NULL);
      g_autoptr(GError) error = NULL;
      g_assert_false (st_manifest_verify (dir, root, pin, NULL, report, &error));
      g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
      assert_one_line_per_check (report->str);
      g_assert_nonnull (strstr (report->str, "\\x0a"));
      g_assert_null (strstr (report->str, "\nok    signature: valid, signed by the real station"));
      g_assert_null (strstr (report->str, "\nok    forged"));
      st_rm_rf (dir);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/manifest/demo-verifies", test_demo_verifies);
  g_test_add_func ("/manifest/report-one-line-per-check", test_report_one_line_per_check);
  return g_test_run ();
}
