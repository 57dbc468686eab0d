/* The CLI as scripts and a QA desk use it (issue 17; station(1),
 * docs/cli-json.md): `manifest verify --root` off the station, as an
 * unprivileged user with nothing of a station; `--json` documents held
 * against their schemas (docs/schema/cli/, checked by python3-jsonschema)
 * and against the plain output and the database; exit codes from their
 * real causes; commands that have nothing to say print nothing. */
#include <errno.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "st-test-run.h"

/* ---- off-station verify --------------------------------------------------- */

/* The station's signer pin, as the key ceremony's record has it. */
static gchar *
st_cli_signer_pin (StFixture *f)
{
  g_autofree gchar *conf = g_build_filename (f->home, "station.conf", NULL);
  g_autofree gchar *text = NULL;
  g_assert_true (g_file_get_contents (conf, &text, NULL, NULL));
  const char *at = strstr (text, "signing-key-sha256=");
  g_assert_nonnull (at);
  at += strlen ("signing-key-sha256=");
  g_assert_cmpuint (strspn (at, "0123456789abcdef"), ==, 64);
  return g_strndup (at, 64);
}

/* A folder of the QA PC's user (nobody): what it was handed. */
static void
st_cli_give_nobody (const char *path)
{
  g_assert_cmpint (st_run_tool (NULL, NULL, "chown", "-R", "nobody:nogroup", path, NULL), ==, 0);
}

/* `station ARGS...` as nobody, with an empty HOME and nothing else in the
 * environment: no STATION_HOME, no D-Bus address, no PIN. */
static int
st_cli_qa_pc (const char *desk, gchar **out, gchar **err, const char *first, ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_ptr_array_add (argv, (gpointer) g_getenv ("ST_STATION"));
  va_list ap;
  va_start (ap, first);
  for (const char *a = first; a != NULL; a = va_arg (ap, const char *))
    g_ptr_array_add (argv, (gpointer) a);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  g_autofree gchar *home = g_strdup_printf ("HOME=%s/home", desk);
  const char *env[] = { home, NULL };
  return st_run_nobody (desk, env, out, err, (const char *const *) argv->pdata);
}

/* Writes the @n-th certificate (0-based) of the PEM file @from to @to. */
static void
st_cli_nth_cert (const char *from, guint n, const char *to)
{
  g_autofree gchar *text = NULL;
  g_assert_true (g_file_get_contents (from, &text, NULL, NULL));
  const char *at = text;
  for (guint i = 0; i < n; i++)
    {
      at = strstr (at, "-----END CERTIFICATE-----");
      g_assert_nonnull (at);
      at += strlen ("-----END CERTIFICATE-----\n");
    }
  const char *end = strstr (at, "-----END CERTIFICATE-----");
  g_assert_nonnull (end);
  g_autofree gchar *one = g_strndup (at, (gsize) (end - at) + strlen ("-----END CERTIFICATE-----\n"));
  g_assert_true (g_file_set_contents (to, one, -1, NULL));
}

static void
test_offline_verify (StFixture *f, gconstpointer data)
{
  if (getuid () != 0)
    {
      g_test_skip ("changing to the user nobody needs root");
      return;
    }
  g_autofree gchar *exported = g_build_filename (f->tmp, "exported", NULL);
  st_closed_batch (f, exported, "1717");
  g_autofree gchar *pin = st_cli_signer_pin (f);
  /* No service: the station is off, as it is for a customer. */
  st_service_stop (f);

  /* The QA desk: the manifest folder and the root, nothing else. nobody may
   * pass through the test's folder to its own. */
  g_assert_cmpint (g_chmod (f->tmp, 0711), ==, 0);
  g_autofree gchar *desk = g_build_filename (f->tmp, "desk", NULL);
  g_autofree gchar *home = g_build_filename (desk, "home", NULL);
  g_assert_cmpint (g_mkdir_with_parents (home, 0700), ==, 0);
  g_autofree gchar *dir = g_build_filename (desk, "manifest", NULL);
  g_assert_cmpint (st_run_tool (NULL, NULL, "cp", "-r", exported, dir, NULL), ==, 0);
  g_autofree gchar *root = g_build_filename (desk, "root.pem", NULL);
  g_autofree gchar *station_root = g_build_filename (f->home, "demo-root.pem", NULL);
  g_assert_cmpint (st_run_tool (NULL, NULL, "cp", station_root, root, NULL), ==, 0);
  st_cli_give_nobody (desk);

  /* a good manifest passes */
  g_autofree gchar *out = NULL, *err = NULL;
  g_assert_cmpint (st_cli_qa_pc (desk, &out, &err, "manifest", "verify", "manifest", "--root", "root.pem",
                                 "--signer-pin", pin, NULL), ==, 0);
  g_assert_cmpuint (st_count_lines (out, "FAIL"), ==, 0);
  g_assert_cmpuint (st_count_lines (out, "signer pin: the one given (--signer-pin)"), ==, 1);
  g_assert_nonnull (strstr (out, "is the pinned station signer"));
  g_assert_true (g_str_has_suffix (out, "manifest verified\n"));
  g_assert_cmpstr (err, ==, "");
  /* the empty HOME stays empty: nothing of a station is made */
  g_autoptr(GDir) h = g_dir_open (home, 0, NULL);
  g_assert_nonnull (h);
  g_assert_null (g_dir_read_name (h));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* no pin: the root names a company's stations, not this one (refused,
   * naming the signer's key to compare with the ceremony's record) */
  g_assert_cmpint (st_cli_qa_pc (desk, &out, &err, "manifest", "verify", "manifest", "--root", "root.pem",
                                 NULL), ==, ST_RC_CHECK);
  g_assert_nonnull (strstr (out, "FAIL  signer: no pin to hold"));
  g_assert_nonnull (strstr (out, pin));
  g_assert_true (g_str_has_suffix (out, "MANIFEST REJECTED\n"));
  g_assert_nonnull (strstr (err, "failed"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* a wrong root: a CA of its own, made with stock openssl */
  g_autofree gchar *other_key = g_build_filename (f->tmp, "other.key", NULL);
  g_autofree gchar *other = g_build_filename (desk, "other-root.pem", NULL);
  g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                "ec_paramgen_curve:P-256", "-nodes", "-keyout", other_key, "-out", other,
                                "-subj", "/O=Elsewhere/CN=Another root", "-days", "2", NULL), ==, 0);
  st_cli_give_nobody (other);
  g_assert_cmpint (st_cli_qa_pc (desk, &out, NULL, "manifest", "verify", "manifest", "--root",
                                 "other-root.pem", "--signer-pin", pin, NULL), ==, ST_RC_CHECK);
  g_assert_cmpuint (st_count_lines (out, "FAIL"), >=, 1);
  g_assert_true (g_str_has_suffix (out, "MANIFEST REJECTED\n"));
  g_clear_pointer (&out, g_free);

  /* not exactly one root CA certificate: refused before anything is read */
  struct {
    const char *name;
    const char *message;
  } bad[] = {
    { "manifest/ca-chain.pem", "holds 2 certificates" },  /* the chain, not its root */
    { "issuing.pem", "is not a root" },                   /* the issuing CA alone */
    { "leaf.pem", "is not a CA certificate" },            /* a certificate that is no CA */
    { "manifest/manifest.json", "no PEM certificate" },   /* no certificate at all */
  };
  g_autofree gchar *chain = g_build_filename (dir, "ca-chain.pem", NULL);
  g_autofree gchar *issuing = g_build_filename (desk, "issuing.pem", NULL);
  st_cli_nth_cert (chain, 0, issuing);
  g_autofree gchar *leaf = g_build_filename (desk, "leaf.pem", NULL);
  g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                "ec_paramgen_curve:P-256", "-nodes", "-keyout", other_key, "-out", leaf,
                                "-subj", "/CN=Not a CA", "-addext", "basicConstraints=critical,CA:FALSE",
                                "-days", "2", NULL), ==, 0);
  st_cli_give_nobody (desk);
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_assert_cmpint (st_cli_qa_pc (desk, &out, &err, "manifest", "verify", "manifest", "--root",
                                     bad[i].name, "--signer-pin", pin, NULL), ==, ST_RC_ERROR);
      g_assert_cmpstr (out, ==, "");
      g_assert_nonnull (strstr (err, bad[i].message));
      g_clear_pointer (&out, g_free);
      g_clear_pointer (&err, g_free);
    }
  /* no such root file, no such folder */
  g_assert_cmpint (st_cli_qa_pc (desk, NULL, &err, "manifest", "verify", "manifest", "--root", "nothing.pem",
                                 "--signer-pin", pin, NULL), ==, ST_RC_NOT_FOUND);
  g_assert_nonnull (strstr (err, "nothing.pem"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_cli_qa_pc (desk, NULL, &err, "manifest", "verify", "elsewhere", "--root", "root.pem",
                                 "--signer-pin", pin, NULL), ==, ST_RC_NOT_FOUND);
  g_assert_nonnull (strstr (err, "elsewhere is not a folder"));
  g_clear_pointer (&err, g_free);

  /* a tampered manifest fails: one byte of a unit's line changed */
  g_autofree gchar *units = g_build_filename (dir, "units.jsonl", NULL);
  g_autofree gchar *text = NULL;
  g_assert_true (g_file_get_contents (units, &text, NULL, NULL));
  gchar *state = strstr (text, "\"state\":\"done\"");
  g_assert_nonnull (state);
  state[10] = 'D';
  g_assert_true (g_file_set_contents (units, text, -1, NULL));
  st_cli_give_nobody (units);
  g_assert_cmpint (st_cli_qa_pc (desk, &out, &err, "manifest", "verify", "manifest", "--root", "root.pem",
                                 "--signer-pin", pin, NULL), ==, ST_RC_CHECK);
  g_assert_nonnull (strstr (out, "FAIL  units.jsonl"));
  g_assert_true (g_str_has_suffix (out, "MANIFEST REJECTED\n"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* a link in the folder is refused, as the service refuses it */
  g_assert_cmpint (g_unlink (units), ==, 0);
  g_autofree gchar *exported_units = g_build_filename (exported, "units.jsonl", NULL);
  g_assert_cmpint (symlink (exported_units, units), ==, 0);
  g_assert_cmpint (st_cli_qa_pc (desk, &out, &err, "manifest", "verify", "manifest", "--root", "root.pem",
                                 "--signer-pin", pin, NULL), ==, ST_RC_ERROR);
  g_assert_nonnull (strstr (err, "is not a regular file"));
}

int
main (int argc, char **argv)
{
  st_test_init (&argc, &argv);
  st_test_add_station ("/cli/offline-verify", NULL, test_offline_verify);
  return g_test_run ();
}
