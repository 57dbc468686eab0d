/* A station-devsim process for a programmer test: started with @args on a
 * pseudo-terminal of its own (ST_DEVSIM, which meson test sets; by hand:
 * ST_DEVSIM=build/programmer/devsim/station-devsim), its state file in a
 * scratch folder, stopped and cleaned up by devsim_free(). */
#pragma once

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <signal.h>

#include "st-test-tmp.h"

typedef struct {
  GSubprocess *proc;
  gchar *dir;
  gchar *state_file;  /* devsim --state: rewritten after every change */
  gchar *path;        /* its pseudo-terminal */
} Devsim;

static inline Devsim *
devsim_start (const char *tmp_prefix, const char *const *args)
{
  const char *exe = g_getenv ("ST_DEVSIM");
  g_autoptr(GError) error = NULL;
  if (exe == NULL)
    g_test_message ("ST_DEVSIM is not set: point it at station-devsim");
  g_assert_nonnull (exe);
  Devsim *d = g_new0 (Devsim, 1);
  d->dir = st_test_tmpdir (tmp_prefix);
  d->state_file = g_build_filename (d->dir, "devsim.json", NULL);
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_ptr_array_add (argv, (gpointer) exe);
  for (gsize i = 0; args != NULL && args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, (gpointer) "--state");
  g_ptr_array_add (argv, d->state_file);
  g_ptr_array_add (argv, (gpointer) "--exit-on-stdin-eof");
  g_ptr_array_add (argv, NULL);
  d->proc = g_subprocess_newv ((const char *const *) argv->pdata,
                               G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDIN_PIPE,
                               &error);
  g_assert_no_error (error);
  g_autoptr(GDataInputStream) in = g_data_input_stream_new (g_subprocess_get_stdout_pipe (d->proc));
  gsize len = 0;
  d->path = g_data_input_stream_read_line (in, &len, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (d->path);
  g_assert_true (g_str_has_prefix (d->path, "/dev/"));
  return d;
}

/* Stops the process (its state file stays to be read). */
static inline void
devsim_stop (Devsim *d)
{
  if (d->proc != NULL)
    {
      g_subprocess_send_signal (d->proc, SIGTERM);
      g_subprocess_wait (d->proc, NULL, NULL);
      g_clear_object (&d->proc);
    }
}

static inline void
devsim_free (Devsim *d)
{
  devsim_stop (d);
  g_unlink (d->state_file);
  g_rmdir (d->dir);
  g_free (d->state_file);
  g_free (d->dir);
  g_free (d->path);
  g_free (d);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Devsim, devsim_free)
