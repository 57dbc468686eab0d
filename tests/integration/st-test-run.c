#include "st-test-run.h"
#include "st-util.h"
#include "st-test-tmp.h"
#include "st-test-json.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <spawn.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static int
st_wait (GSubprocess *proc, gchar **out, gchar **err, const char *what)
{
  g_autofree gchar *o = NULL, *e = NULL;
  g_autoptr(GError) error = NULL;
  g_assert_true (g_subprocess_communicate_utf8 (proc, NULL, NULL, &o, &e, &error));
  g_assert_no_error (error);
  g_test_message ("$ %s\n%s%s", what, o != NULL ? o : "", e != NULL ? e : "");
  if (out != NULL)
    *out = g_steal_pointer (&o);
  if (err != NULL)
    *err = g_steal_pointer (&e);
  if (g_subprocess_get_if_signaled (proc))
    return 128 + g_subprocess_get_term_sig (proc);
  return g_subprocess_get_exit_status (proc);
}

/* Unless @args name an --operator, logs in as the demo operator whose role
 * the command needs (README: op/1111, lead/2222, qa/3333, admin/4444): adds
 * --operator NAME to @argv and sets STATION_OPERATOR_PIN in this process's
 * environment, which the child inherits (env_extra still wins). */
static void
st_station_add_operator (GPtrArray *argv, const char *const *args)
{
  const char *words[2] = { NULL, NULL };
  guint n = 0;
  for (guint i = 0; args[i] != NULL; i++)
    {
      if (g_strcmp0 (args[i], "--operator") == 0 || g_str_has_prefix (args[i], "--operator="))
        return;
      if (n < 2 && args[i][0] != '-')
        words[n++] = args[i];
    }
  const char *cmd = words[0], *sub = words[1];
  const char *who = "op", *pin = "1111";
  if (g_strcmp0 (cmd, "setup") == 0 || g_strcmp0 (cmd, "operator") == 0
      || g_strcmp0 (cmd, "db") == 0 || g_strcmp0 (cmd, "bench") == 0)
    who = "admin", pin = "4444";
  else if ((g_strcmp0 (cmd, "batch") == 0 && (g_strcmp0 (sub, "create") == 0 || g_strcmp0 (sub, "close") == 0
                                              || g_strcmp0 (sub, "allow-more-voids") == 0))
           || (g_strcmp0 (cmd, "manifest") == 0 && g_strcmp0 (sub, "export") == 0))
    who = "lead", pin = "2222";
  else if (g_strcmp0 (cmd, "manifest") == 0 || g_strcmp0 (cmd, "unit") == 0 || g_strcmp0 (cmd, "audit") == 0)
    who = "qa", pin = "3333";
  else if (g_strcmp0 (cmd, "demo") == 0)
    return;
  g_ptr_array_add (argv, "--operator");
  g_ptr_array_add (argv, (gpointer) who);
  g_setenv ("STATION_OPERATOR_PIN", pin, TRUE);
}

int
st_run_stationv (StFixture *f, const char *const *env_extra, gchar **out, gchar **err,
                 const char *const *args)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_ptr_array_add (argv, (gpointer) g_getenv ("ST_STATION"));
  g_ptr_array_add (argv, "--home");
  g_ptr_array_add (argv, f->home);
  st_station_add_operator (argv, args);
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  g_autofree gchar *what = g_strjoinv (" ", (gchar **) argv->pdata);

  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  for (guint i = 0; env_extra != NULL && env_extra[i] != NULL; i++)
    {
      g_auto(GStrv) kv = g_strsplit (env_extra[i], "=", 2);
      g_subprocess_launcher_setenv (launcher, kv[0], kv[1], TRUE);
    }
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) proc = g_subprocess_launcher_spawnv (launcher, (const gchar *const *) argv->pdata, &error);
  g_assert_no_error (error);
  return st_wait (proc, out, err, what);
}

int
st_run_station (StFixture *f, gchar **out, gchar **err, const char *first, ...)
{
  g_autoptr(GPtrArray) args = g_ptr_array_new ();
  va_list ap;
  va_start (ap, first);
  for (const char *a = first; a != NULL; a = va_arg (ap, const char *))
    g_ptr_array_add (args, (gpointer) a);
  va_end (ap);
  g_ptr_array_add (args, NULL);
  return st_run_stationv (f, NULL, out, err, (const char *const *) args->pdata);
}

int
st_run_tool (gchar **out, gchar **err, const char *first, ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  va_list ap;
  va_start (ap, first);
  for (const char *a = first; a != NULL; a = va_arg (ap, const char *))
    g_ptr_array_add (argv, (gpointer) a);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  g_autofree gchar *what = g_strjoinv (" ", (gchar **) argv->pdata);
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) proc = g_subprocess_newv ((const gchar *const *) argv->pdata,
                                                   G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                                                   &error);
  g_assert_no_error (error);
  return st_wait (proc, out, err, what);
}

gchar *
st_start_devsim (StFixture *f, const char *first, ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_ptr_array_add (argv, (gpointer) g_getenv ("ST_DEVSIM"));
  g_ptr_array_add (argv, "--exit-on-stdin-eof");
  va_list ap;
  va_start (ap, first);
  for (const char *a = first; a != NULL; a = va_arg (ap, const char *))
    g_ptr_array_add (argv, (gpointer) a);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  return st_start_device_program (f, (const char *const *) argv->pdata);
}

guint
st_count_lines (const char *text, const char *needle)
{
  guint n = 0;
  g_auto(GStrv) lines = g_strsplit (text != NULL ? text : "", "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (strstr (lines[i], needle) != NULL)
      n++;
  return n;
}

gchar *
st_profile_path (const char *name)
{
  return g_build_filename (g_getenv ("ST_SOURCE_DIR"), "profiles", name, NULL);
}

gint64
st_create_batch (StFixture *f, const char *profile, guint quantity)
{
  /* a name in profiles/, or a path (a copy made by st_profile_copy()) */
  g_autofree gchar *path = g_path_is_absolute (profile) ? g_strdup (profile) : st_profile_path (profile);
  g_autofree gchar *q = g_strdup_printf ("%u", quantity);
  g_autofree gchar *out = NULL;
  int rc = st_run_station (f, &out, NULL, "batch", "create", "--profile", path,
                           "--work-order", "WO-TEST-1", "--quantity", q, NULL);
  g_assert_cmpint (rc, ==, 0);
  g_auto(GStrv) lines = g_strsplit (g_strstrip (out), "\n", -1);
  guint n = g_strv_length (lines);
  g_assert_cmpuint (n, >=, 1);
  gint64 id = g_ascii_strtoll (lines[n - 1], NULL, 10);
  g_assert_cmpint (id, >, 0);
  return id;
}

gchar *
st_check_cert_with_stock_tools (StFixture *f, const char *pem, const char *chain_path,
                                const char *uid)
{
  g_autofree gchar *root = g_build_filename (f->home, "demo-root.pem", NULL);
  g_autofree gchar *pem_path = g_build_filename (f->tmp, "checked.pem", NULL);
  g_autofree gchar *bundle_path = g_build_filename (f->tmp, "checked-bundle.pem", NULL);
  g_autofree gchar *chain = NULL;
  g_assert_true (g_file_get_contents (chain_path, &chain, NULL, NULL));
  g_assert_true (g_file_set_contents (pem_path, pem, -1, NULL));
  g_autofree gchar *out = NULL;
  g_assert_cmpint (st_run_tool (&out, NULL, "openssl", "verify", "-x509_strict", "-CAfile", root,
                                "-untrusted", chain_path, pem_path, NULL), ==, 0);
  g_assert_nonnull (strstr (out, ": OK"));
  g_clear_pointer (&out, g_free);
  g_autofree gchar *bundle = g_strconcat (pem, chain, NULL);
  g_assert_true (g_file_set_contents (bundle_path, bundle, -1, NULL));
  g_assert_cmpint (st_run_tool (&out, NULL, "certtool", "--verify", "--load-ca-certificate", root,
                                "--infile", bundle_path, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "Chain verification output: Verified"));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_tool (&out, NULL, "certtool", "-i", "--infile", pem_path, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "Certificate Authority (CA): FALSE"));
  g_assert_nonnull (strstr (out, uid));
  return g_steal_pointer (&out);
}

void
st_test_init (int *argc, char ***argv)
{
  g_test_init (argc, argv, NULL);
  g_setenv ("STATION_HSM_PIN", ST_TEST_PIN, TRUE);
}

void
st_fixture_setup (StFixture *f, gconstpointer data)
{
  f->tmp = st_test_tmpdir ("st-int");
  f->home = g_build_filename (f->tmp, "home", NULL);
  f->sims = g_ptr_array_new_with_free_func (g_object_unref);
  int rc = st_run_station (f, NULL, NULL, "setup", "demo", NULL);
  g_assert_cmpint (rc, ==, 0);
}

void
st_fixture_teardown (StFixture *f, gconstpointer data)
{
  for (guint i = 0; i < f->sims->len; i++)
    {
      GSubprocess *proc = g_ptr_array_index (f->sims, i);
      g_subprocess_force_exit (proc);
      g_subprocess_wait (proc, NULL, NULL);
    }
  g_ptr_array_unref (f->sims);
  st_rm_rf (f->tmp);
  g_free (f->tmp);
  g_free (f->home);
}

void
st_stop_devsims (StFixture *f)
{
  for (guint i = 0; i < f->sims->len; i++)
    {
      GSubprocess *proc = g_ptr_array_index (f->sims, i);
      g_subprocess_force_exit (proc);
      g_subprocess_wait (proc, NULL, NULL);
    }
  g_ptr_array_set_size (f->sims, 0);
}

/* ---- crash, hostile and independent-device tests ---- */

static GPtrArray *
st_station_argv (StFixture *f, const char *const *args)
{
  GPtrArray *argv = g_ptr_array_new ();
  g_ptr_array_add (argv, (gpointer) g_getenv ("ST_STATION"));
  g_ptr_array_add (argv, "--home");
  g_ptr_array_add (argv, f->home);
  st_station_add_operator (argv, args);
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  return argv;
}

GSubprocess *
st_start_station (StFixture *f, const char *const *env_extra, const char *const *args)
{
  g_autoptr(GPtrArray) argv = st_station_argv (f, args);
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  for (guint i = 0; env_extra != NULL && env_extra[i] != NULL; i++)
    {
      g_auto(GStrv) kv = g_strsplit (env_extra[i], "=", 2);
      g_subprocess_launcher_setenv (launcher, kv[0], kv[1], TRUE);
    }
  g_autoptr(GError) error = NULL;
  GSubprocess *proc = g_subprocess_launcher_spawnv (launcher, (const gchar *const *) argv->pdata, &error);
  g_assert_no_error (error);
  return proc;
}

int
st_finish_station (GSubprocess *proc, gchar **out, gchar **err)
{
  return st_wait (proc, out, err, "station (started earlier)");
}

int
st_run_station_rusage (StFixture *f, const char *const *env_extra, gchar **out,
                       const char *const *args, glong *maxrss_kb)
{
  g_autoptr(GPtrArray) argv = st_station_argv (f, args);
  g_autofree gchar *what = g_strjoinv (" ", (gchar **) argv->pdata);
  g_autofree gchar *out_path = g_build_filename (f->tmp, "station-rusage.out", NULL);
  g_auto(GStrv) envp = g_get_environ ();
  for (guint i = 0; env_extra != NULL && env_extra[i] != NULL; i++)
    {
      g_auto(GStrv) kv = g_strsplit (env_extra[i], "=", 2);
      envp = g_environ_setenv (envp, kv[0], kv[1], TRUE);
    }
  posix_spawn_file_actions_t fa;
  g_assert_cmpint (posix_spawn_file_actions_init (&fa), ==, 0);
  g_assert_cmpint (posix_spawn_file_actions_addopen (&fa, STDOUT_FILENO, out_path,
                                                     O_WRONLY | O_CREAT | O_TRUNC, 0600), ==, 0);
  g_assert_cmpint (posix_spawn_file_actions_adddup2 (&fa, STDOUT_FILENO, STDERR_FILENO), ==, 0);
  pid_t pid = 0;
  int rc = posix_spawn (&pid, argv->pdata[0], &fa, NULL, (char *const *) argv->pdata, envp);
  posix_spawn_file_actions_destroy (&fa);
  g_assert_cmpint (rc, ==, 0);
  int status = 0;
  struct rusage ru = { 0 };
  pid_t w;
  do
    w = wait4 (pid, &status, 0, &ru);
  while (w < 0 && errno == EINTR);
  g_assert_cmpint (w, ==, pid);
  g_autofree gchar *text = NULL;
  g_assert_true (g_file_get_contents (out_path, &text, NULL, NULL));
  g_test_message ("$ %s\n%s(peak RSS %ld KiB)", what, text, ru.ru_maxrss);
  if (maxrss_kb != NULL)
    *maxrss_kb = ru.ru_maxrss;
  if (out != NULL)
    *out = g_steal_pointer (&text);
  return WIFSIGNALED (status) ? 128 + WTERMSIG (status) : WEXITSTATUS (status);
}

gchar *
st_sql (StFixture *f, const char *sql)
{
  g_autofree gchar *db = g_build_filename (f->home, "station.db", NULL);
  gchar *out = NULL;
  g_autofree gchar *err = NULL;
  g_assert_cmpint (st_run_tool (&out, &err, "sqlite3", "-batch", db, sql, NULL), ==, 0);
  return g_strstrip (out);
}

gint64
st_sql_int (StFixture *f, const char *sql)
{
  g_autofree gchar *out = st_sql (f, sql);
  gchar *end = NULL;
  gint64 v = g_ascii_strtoll (out, &end, 10);
  g_assert_true (end != out && *end == '\0');
  return v;
}

gchar *
st_profile_copy (StFixture *f, const char *name, const char *const *overrides)
{
  g_autofree gchar *src = st_profile_path (name);
  g_autofree gchar *text = NULL;
  g_assert_true (g_file_get_contents (src, &text, NULL, NULL));
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; overrides != NULL && overrides[i] != NULL; i++)
    {
      g_auto(GStrv) kv = g_strsplit (overrides[i], "=", 2);
      g_autofree gchar *prefix = g_strdup_printf ("%s =", kv[0]);
      gboolean found = FALSE;
      for (guint j = 0; lines[j] != NULL; j++)
        if (g_str_has_prefix (lines[j], prefix))
          {
            g_free (lines[j]);
            lines[j] = g_strdup_printf ("%s = %s", kv[0], kv[1]);
            found = TRUE;
          }
      g_assert_true (found);
    }
  g_autofree gchar *joined = g_strjoinv ("\n", lines);
  g_autofree gchar *base = g_strdup_printf ("copy-%s", name);
  gchar *path = g_build_filename (f->tmp, base, NULL);
  g_assert_true (g_file_set_contents (path, joined, -1, NULL));
  return path;
}

void
st_check_db_invariants (StFixture *f)
{
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM (SELECT uid FROM certificates "
                                  "WHERE state IN ('issuing','issued','active','unconfirmed') "
                                  "GROUP BY uid HAVING count(*) > 1)"), ==, 0);
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM (SELECT issuer, serial FROM certificates "
                                  "GROUP BY issuer, serial HAVING count(*) > 1)"), ==, 0);
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM (SELECT pubkey_sha256 FROM certificates "
                                  "WHERE state <> 'voided' GROUP BY pubkey_sha256 HAVING count(*) > 1)"), ==, 0);
  g_autofree gchar *integrity = st_sql (f, "PRAGMA integrity_check");
  g_assert_cmpstr (integrity, ==, "ok");
  g_autofree gchar *out = NULL;
  g_assert_cmpint (st_run_station (f, &out, NULL, "db", "check", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "integrity: ok"));
}

guint
st_check_devices_on_record (StFixture *f, const char *const *state_files, gboolean must_be_active)
{
  guint n = 0;
  for (guint s = 0; state_files[s] != NULL; s++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(JsonParser) parser = st_test_load_json (state_files[s]);
      JsonObject *top = json_node_get_object (json_parser_get_root (parser));
      JsonArray *devices = json_object_get_array_member (top, "devices");
      for (guint i = 0; i < json_array_get_length (devices); i++)
        {
          JsonObject *d = json_array_get_object_element (devices, i);
          JsonNode *cert = json_object_get_member (d, "cert");
          if (cert == NULL || JSON_NODE_HOLDS_NULL (cert))
            continue;
          gsize der_len = 0;
          g_autofree guchar *der = g_base64_decode (json_node_get_string (cert), &der_len);
          g_assert_cmpuint (der_len, >, 0);
          g_autoptr(GString) hex = g_string_new (NULL);
          for (gsize k = 0; k < der_len; k++)
            g_string_append_printf (hex, "%02X", der[k]);
          g_autofree gchar *sql = g_strdup_printf ("SELECT uid || ' ' || state FROM certificates "
                                                   "WHERE der = X'%s'", hex->str);
          g_autofree gchar *row = st_sql (f, sql);
          const char *uid = json_object_get_string_member (d, "uid");
          g_test_message ("device %s holds a certificate on record as: %s", uid, row);
          g_auto(GStrv) parts = g_strsplit (row, " ", -1);
          g_assert_cmpuint (g_strv_length (parts), ==, 2); /* exactly one row */
          g_assert_cmpstr (parts[0], ==, uid);
          g_assert_cmpstr (parts[1], !=, "voided");
          if (must_be_active)
            g_assert_cmpstr (parts[1], ==, "active");
          n++;
        }
    }
  return n;
}

gchar *
st_start_device_program (StFixture *f, const char *const *argv)
{
  g_autoptr(GError) error = NULL;
  GSubprocess *proc = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDIN_PIPE,
                                         &error);
  g_assert_no_error (error);
  g_ptr_array_add (f->sims, proc);
  g_autoptr(GDataInputStream) in = g_data_input_stream_new (g_subprocess_get_stdout_pipe (proc));
  gchar *port = g_data_input_stream_read_line (in, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (port);
  g_assert_true (g_str_has_prefix (port, "/dev/"));
  return port;
}
