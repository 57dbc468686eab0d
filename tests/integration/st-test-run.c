#include "st-test-run.h"
#include "st-util.h"

#include <glib/gstdio.h>
#include <string.h>

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

int
st_run_stationv (StFixture *f, const char *const *env_extra, gchar **out, gchar **err,
                 const char *const *args)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_ptr_array_add (argv, (gpointer) g_getenv ("ST_STATION"));
  g_ptr_array_add (argv, "--home");
  g_ptr_array_add (argv, f->home);
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
  g_autoptr(GError) error = NULL;
  GSubprocess *proc = g_subprocess_newv ((const gchar *const *) argv->pdata,
                                         G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDIN_PIPE,
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
  g_autofree gchar *path = st_profile_path (profile);
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

void
st_fixture_setup (StFixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  f->tmp = g_dir_make_tmp ("st-int-XXXXXX", &error);
  g_assert_no_error (error);
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
