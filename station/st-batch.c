#include "st-batch.h"

#include <string.h>

#include "st-error.h"

typedef struct {
  StLine *line;
  const StBatchRunOptions *options;
  const char *port;
  StBatchRunSummary *summary;  /* shared, under summary_lock */
  GMutex *summary_lock;
  GThread *thread;
} StWorker;

/* Sleeps @ms unless the line is cancelled first. */
static void
st_worker_sleep (StLine *line, guint ms)
{
  gint64 until = g_get_monotonic_time () + (gint64) ms * 1000;
  while (g_get_monotonic_time () < until &&
         !g_cancellable_is_cancelled (line->cancellable))
    g_usleep (MIN (20000, MAX (until - g_get_monotonic_time (), 0)));
}

static void
st_worker_give_up (StWorker *w, GError *error)
{
  g_mutex_lock (w->summary_lock);
  w->summary->ports_failed++;
  g_mutex_unlock (w->summary_lock);
  if (w->options->port_func != NULL)
    w->options->port_func (w->port, error, w->options->user_data);
}

static gpointer
st_worker_main (gpointer data)
{
  StWorker *w = data;
  StLine *line = w->line;
  const StBatchRunOptions *opt = w->options;
  guint poll_ms = opt->poll_interval_ms > 0 ? opt->poll_interval_ms : 200;
  g_autoptr(GError) error = NULL;
  g_autoptr(StBackend) backend = st_backend_new (w->port, &line->profile->link,
                                                 line->cancellable, &error);
  if (backend == NULL)
    {
      st_worker_give_up (w, error);
      return NULL;
    }

  gboolean open = FALSE;
  g_autofree gchar *last_uid = NULL;
  g_autofree gchar *last_problem = NULL; /* the last thing that went wrong, for the give-up message */
  gint64 idle_since = g_get_monotonic_time ();
  guint handled = 0;

  while ((opt->units_per_port == 0 || handled < opt->units_per_port) &&
         !g_cancellable_is_cancelled (line->cancellable))
    {
      g_clear_error (&error);
      if (opt->idle_timeout_s > 0 &&
          g_get_monotonic_time () - idle_since > (gint64) opt->idle_timeout_s * G_USEC_PER_SEC)
        {
          g_set_error (&error, ST_ERROR, ST_ERROR_TIMED_OUT,
                       "%s: no new device answered for %u s (%u of %u units done): "
                       "check the socket and its cable%s%s",
                       w->port, opt->idle_timeout_s, handled, opt->units_per_port,
                       last_problem != NULL ? "; last problem: " : "",
                       last_problem != NULL ? last_problem : "");
          st_worker_give_up (w, error);
          return NULL;
        }
      if (!open)
        {
          if (!st_backend_open (backend, &error))
            {
              g_debug ("%s: %s", w->port, error->message);
              g_free (last_problem);
              last_problem = g_strdup (error->message);
              st_worker_sleep (line, 500);
              continue;
            }
          open = TRUE;
        }

      StDeviceInfo info = { 0 };
      if (!st_backend_identify (backend, &info, &error))
        {
          /* A silent socket is empty; one that streams garbage is not, and
           * the give-up message says so (the link's reason is specific). */
          if (!g_error_matches (error, ST_ERROR, ST_ERROR_CANCELLED))
            {
              g_free (last_problem);
              last_problem = g_strdup (error->message);
            }
          if (!g_error_matches (error, ST_ERROR, ST_ERROR_TIMED_OUT) &&
              !g_error_matches (error, ST_ERROR, ST_ERROR_CANCELLED))
            {
              /* The port failed (unplugged adapter), or the device answered
               * HELLO with something unusable: reopen and try again. */
              g_debug ("%s: %s; reopening", w->port, error->message);
              st_backend_close (backend);
              open = FALSE;
            }
          st_worker_sleep (line, poll_ms);
          continue;
        }
      g_autofree gchar *uid = st_device_info_uid_hex (&info);
      if (g_strcmp0 (uid, last_uid) == 0)
        {
          /* The same device is still in the socket: wait for a swap. */
          st_worker_sleep (line, poll_ms);
          continue;
        }

      g_autoptr(StUnitResult) result = st_unit_run (line, backend, &info, &error);
      if (result == NULL)
        return NULL; /* the line stopped; st_batch_run reports why */
      g_free (last_uid);
      last_uid = g_steal_pointer (&uid);
      handled++;
      idle_since = g_get_monotonic_time ();

      g_mutex_lock (w->summary_lock);
      switch (result->outcome)
        {
        case ST_UNIT_PASSED: w->summary->passed++; break;
        case ST_UNIT_FAILED: w->summary->failed++; break;
        case ST_UNIT_REFUSED: w->summary->refused++; break;
        }
      if (result->resumed)
        w->summary->resumed++;
      g_mutex_unlock (w->summary_lock);
      if (opt->unit_func != NULL)
        opt->unit_func (result, opt->user_data);
    }
  st_backend_close (backend);
  return NULL;
}

gboolean
st_batch_run (StLine *line, const StBatchRunOptions *options,
              StBatchRunSummary *summary, GError **error)
{
  guint n = options->ports != NULL ? g_strv_length ((gchar **) options->ports) : 0;
  if (n == 0)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "no port given: name at least one socket with --port");
      return FALSE;
    }
  /* The same port twice would be two workers fighting over one device. */
  for (guint i = 0; i < n; i++)
    for (guint j = i + 1; j < n; j++)
      if (g_strcmp0 (options->ports[i], options->ports[j]) == 0)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "port %s is given twice", options->ports[i]);
          return FALSE;
        }

  g_autoptr(GCancellable) own = NULL;
  if (line->cancellable == NULL)
    line->cancellable = own = g_cancellable_new ();

  memset (summary, 0, sizeof *summary);
  GMutex summary_lock;
  g_mutex_init (&summary_lock);
  g_autofree StWorker *workers = g_new0 (StWorker, n);
  for (guint i = 0; i < n; i++)
    {
      workers[i] = (StWorker) {
        .line = line, .options = options, .port = options->ports[i],
        .summary = summary, .summary_lock = &summary_lock,
      };
      g_autofree gchar *name = g_strdup_printf ("socket-%u", i);
      workers[i].thread = g_thread_new (name, st_worker_main, &workers[i]);
    }
  for (guint i = 0; i < n; i++)
    g_thread_join (workers[i].thread);
  g_mutex_clear (&summary_lock);
  if (own != NULL)
    line->cancellable = NULL;

  g_autofree gchar *stop = st_line_dup_stop_reason (line);
  if (stop != NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, "the line stopped: %s", stop);
      return FALSE;
    }
  return TRUE;
}
