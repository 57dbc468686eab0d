/* The trust boundary: the service runs as one Unix user (the test's), the
 * line's commands as another, unprivileged one (nobody, through setpriv).
 * That user runs a whole batch through the service, holds no HSM PIN,
 * cannot read the database, the token or the configuration, and is told
 * which role a refused command needs. Skipped when not run as root (setpriv
 * needs it to change user). */
#include <glib/gstdio.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "st-test-run.h"

typedef struct {
  StFixture *f;
  gchar *dir;        /* nobody's folder: the socket and the manifests */
  gchar *address;
  GSubprocess *service;
  gchar *log;
} StBoundary;

/* Runs `station --address ADDR ARGS...` as nobody, with the operator's
 * PIN (when given) and nothing else of this process's environment. */
G_GNUC_NULL_TERMINATED static int
st_station_nobody (StBoundary *b, const char *pin, gchar **out, gchar **err, ...)
{
  g_autoptr(GPtrArray) args = g_ptr_array_new ();
  g_ptr_array_add (args, "--address");
  g_ptr_array_add (args, b->address);
  va_list ap;
  va_start (ap, err);
  for (const char *a = va_arg (ap, const char *); a != NULL; a = va_arg (ap, const char *))
    g_ptr_array_add (args, (gpointer) a);
  va_end (ap);
  g_ptr_array_add (args, NULL);
  return st_station_as_nobody (b->dir, NULL, pin, out, err, (const char *const *) args->pdata);
}

/* Whether nobody can open @path for reading. */
static gboolean
st_nobody_can_read (const char *path)
{
  g_autofree gchar *out = NULL, *err = NULL;
  int rc = st_run_tool (&out, &err, "setpriv", "--reuid=nobody", "--regid=nogroup",
                        "--clear-groups", "--", "head", "-c", "1", path, NULL);
  return rc == 0;
}

static void
test_unprivileged_client (StFixture *f, gconstpointer data)
{
  if (getuid () != 0)
    {
      g_test_skip ("changing to the user nobody needs root");
      return;
    }
  StBoundary b = { .f = f };
  /* nobody may pass through the test's folder (not list it): to its own
   * folder and the service's public socket; the home inside stays 0700 */
  g_assert_cmpint (g_chmod (f->tmp, 0711), ==, 0);
  /* A folder nobody may use; the service serves it a socket of its own
   * beside the home's (stationd --listen). */
  b.dir = g_build_filename (f->tmp, "nobody", NULL);
  g_assert_cmpint (g_mkdir (b.dir, 0755), ==, 0);
  g_assert_cmpint (chown (b.dir, 65534, 65534), ==, 0);
  g_autofree gchar *sock = g_build_filename (f->tmp, "public", NULL);
  g_assert_cmpint (g_mkdir (sock, 0755), ==, 0);
  b.address = g_strdup_printf ("unix:path=%s/stationd.sock", sock);
  st_service_stop (f);
  b.log = g_build_filename (f->tmp, "service-boundary.log", NULL);
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_MERGE);
  g_subprocess_launcher_set_stdout_file_path (launcher, b.log);
  g_subprocess_launcher_set_child_setup (launcher, st_child_dies_with_parent, NULL, NULL);
  g_subprocess_launcher_unsetenv (launcher, "STATION_HSM_PIN");
  g_autoptr(GError) error = NULL;
  b.service = g_subprocess_launcher_spawn (launcher, &error, g_getenv ("ST_STATIOND"), "--home",
                                           f->home, "--listen", b.address, NULL);
  g_assert_no_error (error);
  g_autofree gchar *sock_path = g_build_filename (sock, "stationd.sock", NULL);
  for (guint i = 0; i < 400 && !g_file_test (sock_path, G_FILE_TEST_EXISTS); i++)
    g_usleep (25 * 1000);
  g_assert_true (g_file_test (sock_path, G_FILE_TEST_EXISTS));

  /* The service's files are not nobody's to read. */
  g_autofree gchar *db = g_build_filename (f->home, "station.db", NULL);
  g_autofree gchar *conf = g_build_filename (f->home, "station.conf", NULL);
  g_autofree gchar *softhsm = g_build_filename (f->home, "softhsm2.conf", NULL);
  g_assert_true (g_file_test (db, G_FILE_TEST_EXISTS));
  g_assert_false (st_nobody_can_read (db));
  g_assert_false (st_nobody_can_read (conf));
  g_assert_false (st_nobody_can_read (softhsm));
  GStatBuf st;
  g_assert_cmpint (g_stat (f->home, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0077, ==, 0);

  /* Locked: even an admin's command that signs is refused, saying who unlocks it. */
  g_autofree gchar *profile = st_profile_path ("example-device-csr.profile");
  g_autofree gchar *out = NULL, *err = NULL;
  g_assert_cmpint (st_station_nobody (&b, "2222", &out, &err, "--operator", "lead", "batch", "create",
                                  "--profile", profile, "--work-order", "WO-NOBODY",
                                  "--quantity", "2", NULL), ==, 0);
  g_auto(GStrv) lines = g_strsplit (g_strstrip (out), "\n", -1);
  const char *id = lines[g_strv_length (lines) - 1];
  g_autofree gchar *port = st_start_devsim (f, "--units", "2", "--seed", "99", NULL);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_station_nobody (&b, "1111", NULL, &err, "--operator", "op", "batch", "run", id,
                                  "--port", port, "--units", "2", NULL), ==, ST_RC_STOPPED);
  g_assert_nonnull (strstr (err, "station unlock"));

  /* No login: refused, naming the role; the wrong role: the same. */
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_station_nobody (&b, NULL, NULL, &err, "batch", "close", id, NULL), ==, ST_RC_AUTH);
  g_assert_nonnull (strstr (err, "closing a batch needs the role lead"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_station_nobody (&b, "1111", NULL, &err, "--operator", "op", "operator", "list",
                                  NULL), ==, ST_RC_AUTH);
  g_assert_nonnull (strstr (err, "needs the role admin"));

  /* The admin unlocks it once (the one command that carries the HSM PIN,
   * run here as root, the station's own user); then nobody runs the line. */
  g_autofree gchar *pin_env = g_strdup_printf ("STATION_HSM_PIN=%s", ST_TEST_PIN);
  g_autofree gchar *unlock_out = NULL;
  g_assert_cmpint (st_run_tool (&unlock_out, NULL, "env", pin_env, "STATION_OPERATOR_PIN=4444",
                                g_getenv ("ST_STATION"), "--address", b.address, "--operator",
                                "admin", "unlock", NULL), ==, 0);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_station_nobody (&b, "1111", &out, NULL, "--operator", "op", "batch", "run", id,
                                  "--port", port, "--units", "2", NULL), ==, 0);
  g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, 2);

  /* The lead closes it and exports the manifest into nobody's folder. */
  g_assert_cmpint (st_station_nobody (&b, "2222", NULL, NULL, "--operator", "lead", "batch", "close",
                                  id, NULL), ==, 0);
  g_autofree gchar *mdir = g_build_filename (b.dir, "manifest", NULL);
  g_assert_cmpint (st_station_nobody (&b, "2222", NULL, NULL, "--operator", "lead", "manifest",
                                  "export", id, "--out", mdir, NULL), ==, 0);
  g_autofree gchar *json = g_build_filename (mdir, "manifest.json", NULL);
  g_assert_cmpint (g_stat (json, &st), ==, 0);
  g_assert_cmpint (st.st_uid, ==, 65534);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_station_nobody (&b, "3333", &out, NULL, "--operator", "qa", "manifest",
                                  "verify", mdir, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "manifest verified"));

  /* QA re-verifies a unit: the devices are gone; a new one on a socket,
   * provisioned, then checked. */
  st_stop_devsims (f);
  g_autofree gchar *state = g_build_filename (f->tmp, "qa-sim.json", NULL);
  g_autofree gchar *port2 = st_start_devsim (f, "--units", "1", "--seed", "98", "--state", state, NULL);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_station_nobody (&b, "2222", &out, NULL, "--operator", "lead", "batch", "create",
                                  "--profile", profile, "--work-order", "WO-NOBODY-2",
                                  "--quantity", "1", NULL), ==, 0);
  g_auto(GStrv) lines2 = g_strsplit (g_strstrip (out), "\n", -1);
  const char *id2 = lines2[g_strv_length (lines2) - 1];
  g_assert_cmpint (st_station_nobody (&b, "1111", NULL, NULL, "--operator", "op", "batch", "run", id2,
                                  "--port", port2, "--units", "1", NULL), ==, 0);
  /* the provisioned device back in a socket */
  st_stop_devsims (f);
  g_autofree gchar *port3 = st_start_devsim (f, "--state", state, "--present", "1", NULL);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_station_nobody (&b, "3333", &out, NULL, "--operator", "qa", "unit", "verify",
                                  "--port", port3, NULL), ==, 0);

  /* The service's environment and command line hold no HSM PIN. */
  const char *pid = g_subprocess_get_identifier (b.service);
  /* the reads are real: what is there is found */
  g_assert_true (st_proc_file_contains (pid, "cmdline", "--listen"));
  g_assert_true (st_proc_file_contains (pid, "environ", "ST_SOURCE_DIR="));
  g_assert_false (st_proc_file_contains (pid, "environ", ST_TEST_PIN));
  g_assert_false (st_proc_file_contains (pid, "cmdline", ST_TEST_PIN));

  g_subprocess_send_signal (b.service, SIGTERM);
  g_assert_true (g_subprocess_wait (b.service, NULL, NULL));
  g_assert_cmpint (g_subprocess_get_exit_status (b.service), ==, 0);
  g_object_unref (b.service);
  g_free (b.dir);
  g_free (b.address);
  g_free (b.log);
}

/* An unattended line: systemd hands the service the HSM PIN as a
 * credential (LoadCredential=hsm-pin:FILE puts it in
 * $CREDENTIALS_DIRECTORY/hsm-pin); the service starts unlocked, the PIN in
 * no environment or command line, and the unlock is audited. A wrong one
 * leaves it locked, saying so. */
static void
test_credential_unlock (StFixture *f, gconstpointer data)
{
  st_service_stop (f);
  g_autofree gchar *creds = g_build_filename (f->tmp, "credentials", NULL);
  g_assert_cmpint (g_mkdir (creds, 0700), ==, 0);
  g_autofree gchar *pin_file = g_build_filename (creds, "hsm-pin", NULL);
  g_autofree gchar *pin_text = g_strdup_printf ("%s\n", ST_TEST_PIN);
  g_assert_true (g_file_set_contents (pin_file, pin_text, -1, NULL));
  g_assert_cmpint (g_chmod (pin_file, 0400), ==, 0);
  g_autofree gchar *cred_env = g_strdup_printf ("CREDENTIALS_DIRECTORY=%s", creds);
  const char *none[] = { NULL };

  for (guint round = 0; round < 2; round++)
    {
      /* round 1: a wrong PIN in the credential */
      if (round == 1)
        {
          g_assert_cmpint (g_chmod (pin_file, 0600), ==, 0);
          g_assert_true (g_file_set_contents (pin_file, "135799\n", -1, NULL));
        }
      g_autofree gchar *log = g_build_filename (f->tmp, round == 0 ? "cred-0.log" : "cred-1.log", NULL);
      g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_MERGE);
      g_subprocess_launcher_set_stdout_file_path (l, log);
      g_subprocess_launcher_set_child_setup (l, st_child_dies_with_parent, NULL, NULL);
      g_subprocess_launcher_unsetenv (l, "STATION_HSM_PIN");
      g_subprocess_launcher_setenv (l, "CREDENTIALS_DIRECTORY", creds, TRUE);
      g_autoptr(GError) error = NULL;
      g_autoptr(GSubprocess) service = g_subprocess_launcher_spawn (l, &error, g_getenv ("ST_STATIOND"),
                                                                    "--home", f->home, NULL);
      g_assert_no_error (error);
      g_autofree gchar *sock = g_build_filename (f->home, "stationd.sock", NULL);
      for (guint i = 0; i < 400 && !g_file_test (sock, G_FILE_TEST_EXISTS); i++)
        g_usleep (25 * 1000);
      g_autofree gchar *out = NULL;
      const char *status[] = { g_getenv ("ST_STATION"), "--home", f->home, "status", NULL };
      g_assert_cmpint (st_run_nobody (f->tmp, none, &out, NULL, status), !=, 0); /* the home is 0700 */
      g_clear_pointer (&out, g_free);
      g_assert_cmpint (st_run_tool (&out, NULL, "env", "-u", "STATION_HSM_PIN", g_getenv ("ST_STATION"),
                                    "--home", f->home, "status", NULL), ==, 0);
      if (round == 0)
        {
          g_assert_nonnull (strstr (out, "HSM         unlocked"));
          const char *pid = g_subprocess_get_identifier (service);
          g_assert_true (st_proc_file_contains (pid, "environ", cred_env));
          g_assert_false (st_proc_file_contains (pid, "environ", ST_TEST_PIN));
          g_assert_false (st_proc_file_contains (pid, "cmdline", ST_TEST_PIN));
        }
      else
        g_assert_nonnull (strstr (out, "HSM         locked"));
      g_subprocess_send_signal (service, SIGTERM);
      g_assert_true (g_subprocess_wait (service, NULL, NULL));
      g_autofree gchar *text = NULL;
      g_assert_true (g_file_get_contents (log, &text, NULL, NULL));
      if (round == 1)
        g_assert_nonnull (strstr (text, "the HSM stays locked"));
    }
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM audit WHERE event = 'hsm-unlock' "
                                  "AND payload LIKE '%credential%'"), ==, 1);
}

int
main (int argc, char **argv)
{
  st_test_init (&argc, &argv);
  st_test_add_station ("/boundary/unprivileged-client", NULL, test_unprivileged_client);
  st_test_add_station ("/boundary/credential-unlock", NULL, test_credential_unlock);
  return g_test_run ();
}
