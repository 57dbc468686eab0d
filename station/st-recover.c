/* Break-glass recovery: the SO PIN proved in a process of its own. */
#include "st-recover.h"

#include <gio/gio.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "st-error.h"
#include "st-hsm.h"
#include "st-util.h"

/* What the child writes on its standard error, at most. */
#define ST_RECOVER_MAX_MESSAGE 4096
/* The child's exit status for an ST_ERROR code. */
#define ST_RECOVER_STATUS_BASE 10

static void
st_recover_wipe_free (gpointer data)
{
  st_secret_free (data);
}

gboolean
st_recover_check_so_pin (const StConfig *config, const char *so_pin, GError **error)
{
  if (so_pin == NULL || *so_pin == '\0' || strlen (so_pin) > ST_HSM_PIN_MAX
      || strchr (so_pin, '\n') != NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_AUTH_FAILED,
                   "an SO PIN has 1 to %d characters on one line", ST_HSM_PIN_MAX);
      return FALSE;
    }
  if (config->hsm_module == NULL || config->hsm_token == NULL)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                           "the station's configuration names no HSM module and token: there is "
                           "no SO PIN to prove");
      return FALSE;
    }
  const char *argv[] = { "/proc/self/exe", ST_RECOVER_CHECK_OPTION, config->hsm_module,
                         config->hsm_token, NULL };
  g_autoptr(GError) local = NULL;
  g_autoptr(GSubprocess) child = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDIN_PIPE
                                                    | G_SUBPROCESS_FLAGS_STDOUT_SILENCE
                                                    | G_SUBPROCESS_FLAGS_STDERR_PIPE, &local);
  if (child == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL,
                   "cannot start the process that checks the SO PIN: %s", local->message);
      return FALSE;
    }
  /* the PIN goes over the pipe, and its copy is wiped */
  gchar *line = g_strconcat (so_pin, "\n", NULL);
  gsize line_len = strlen (line);
  g_autoptr(GBytes) in = g_bytes_new_with_free_func (line, line_len, st_recover_wipe_free, line);
  g_autoptr(GBytes) err_bytes = NULL;
  if (!g_subprocess_communicate (child, in, NULL, NULL, &err_bytes, &local))
    {
      g_subprocess_force_exit (child);
      g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL,
                   "cannot talk to the process that checks the SO PIN: %s", local->message);
      return FALSE;
    }
  if (g_subprocess_get_if_exited (child) && g_subprocess_get_exit_status (child) == 0)
    return TRUE;
  gsize len = 0;
  const char *data = err_bytes != NULL ? g_bytes_get_data (err_bytes, &len) : NULL;
  g_autofree gchar *message = g_strndup (data != NULL ? data : "", MIN (len, ST_RECOVER_MAX_MESSAGE));
  g_strstrip (message);
  if (!g_utf8_validate (message, -1, NULL))
    g_clear_pointer (&message, g_free);
  int status = g_subprocess_get_if_exited (child) ? g_subprocess_get_exit_status (child) : -1;
  StError code = ST_ERROR_INTERNAL;
  if (status >= ST_RECOVER_STATUS_BASE && status < ST_RECOVER_STATUS_BASE + ST_ERROR_LAST)
    code = (StError) (status - ST_RECOVER_STATUS_BASE);
  g_set_error (error, ST_ERROR, code, "%s",
               message != NULL && *message != '\0' ? message
               : "the process that checks the SO PIN failed without a word");
  return FALSE;
}

int
st_recover_check_so_pin_main (int argc, char **argv)
{
  if (argc != 4 || g_strcmp0 (argv[1], ST_RECOVER_CHECK_OPTION) != 0)
    {
      fprintf (stderr, "usage: stationd " ST_RECOVER_CHECK_OPTION " MODULE TOKEN (the SO PIN on "
               "standard input): run by the service itself\n");
      return ST_RECOVER_STATUS_BASE + ST_ERROR_INVALID_DATA;
    }
  /* one line, the PIN, at most ST_HSM_PIN_MAX bytes */
  char buf[ST_HSM_PIN_MAX + 2];
  gsize len = 0;
  char c;
  /* read(), not stdio: no buffer of its own keeps a copy */
  while (read (STDIN_FILENO, &c, 1) == 1 && c != '\n')
    {
      if (len >= ST_HSM_PIN_MAX)
        {
          st_memwipe (buf, sizeof buf);
          fprintf (stderr, "an SO PIN has at most %d characters\n", ST_HSM_PIN_MAX);
          return ST_RECOVER_STATUS_BASE + ST_ERROR_AUTH_FAILED;
        }
      buf[len++] = (char) c;
    }
  buf[len] = '\0';
  g_autoptr(GError) error = NULL;
  gboolean ok = st_hsm_check_so_pin (argv[2], argv[3], buf, &error);
  st_memwipe (buf, sizeof buf);
  if (ok)
    return 0;
  fprintf (stderr, "%s\n", error->message);
  return ST_RECOVER_STATUS_BASE + (error->domain == ST_ERROR ? error->code : ST_ERROR_INTERNAL);
}
