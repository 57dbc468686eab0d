#include "st-batch.h"

#include <glib/gi18n.h>

#include <string.h>

#include "st-error.h"
#include "st-text.h"

/* One socket. Its thread runs one session (until its units are done, it
 * gave up, or it was stopped); the run's own thread joins it and starts it
 * again when asked. Fields under the control's lock unless noted. */
typedef struct {
  StBatchControl *control;     /* borrowed: owns this worker */
  gchar *port;
  GCancellable *cancellable;   /* this socket's; cancelled by a stop and by the line */
  GThread *thread;             /* NULL while the socket is not running */
  gboolean ended;              /* the thread returned; join pending */
  gboolean wanted;             /* a start was asked for */
  guint units;                 /* of the next session (0: until stopped) */
  gint retry;                  /* atomic: run the device in the socket again */
  /* The uid of the last device this socket handled, kept across its
   * sessions in this run: a socket stopped and started again (the GUI's
   * acknowledgement of a FAIL) waits for another device instead of running
   * the one still in it. A retry clears it. */
  gchar *last_uid;
  /* hold_failures: the last unit failed or was refused, and the socket
   * takes no device until a start (the acknowledgement) or a retry. */
  gboolean held;
  gboolean renew;              /* released from the hold: the session goes on for units more */
} StWorker;

struct _StBatchControl {
  gint ref;
  GMutex lock;
  GCond cond;                  /* a worker ended, a start was asked for, the line was cancelled */
  GPtrArray *workers;          /* StWorker* */
  gboolean ended;              /* the run returned: no more starts */
  /* Set for the run's duration. */
  StLine *line;
  const StBatchRunOptions *options;
  StBatchRunSummary *summary;
  guint64 left;                /* units the batch still needs; see batch_left */
  gboolean goal;               /* the run has a batch goal */
};

static void
st_worker_free (gpointer data)
{
  StWorker *w = data;
  g_free (w->port);
  g_free (w->last_uid);
  g_clear_object (&w->cancellable);
  g_free (w);
}

StBatchControl *
st_batch_control_new (void)
{
  StBatchControl *c = g_new0 (StBatchControl, 1);
  c->ref = 1;
  g_mutex_init (&c->lock);
  g_cond_init (&c->cond);
  c->workers = g_ptr_array_new_with_free_func (st_worker_free);
  return c;
}

StBatchControl *
st_batch_control_ref (StBatchControl *control)
{
  g_atomic_int_inc (&control->ref);
  return control;
}

void
st_batch_control_unref (StBatchControl *control)
{
  if (control == NULL || !g_atomic_int_dec_and_test (&control->ref))
    return;
  g_ptr_array_unref (control->workers);
  g_cond_clear (&control->cond);
  g_mutex_clear (&control->lock);
  g_free (control);
}

/* Under the lock. */
static StWorker *
st_control_worker (StBatchControl *c, const char *port, gboolean add)
{
  for (guint i = 0; i < c->workers->len; i++)
    {
      StWorker *w = g_ptr_array_index (c->workers, i);
      if (g_strcmp0 (w->port, port) == 0)
        return w;
    }
  if (!add)
    return NULL;
  StWorker *w = g_new0 (StWorker, 1);
  w->control = c;
  w->port = g_strdup (port);
  g_ptr_array_add (c->workers, w);
  return w;
}

/* Under the lock: the socket runs and was not asked to stop. */
static gboolean
st_worker_is_live (StWorker *w)
{
  return w->thread != NULL && !w->ended && !g_cancellable_is_cancelled (w->cancellable);
}

static gboolean
st_control_request (StBatchControl *c, const char *port, guint units, gboolean retry)
{
  g_mutex_lock (&c->lock);
  gboolean ok = !c->ended;
  if (ok)
    {
      StWorker *w = st_control_worker (c, port, TRUE);
      /* A start or a retry is the answer to a held failure: the socket
       * goes on for @units more. The retry is kept for the socket's next
       * session when it is not running: its memory of the last uid
       * outlives the session. */
      if (w->held)
        {
          w->held = FALSE;
          w->renew = TRUE;
          w->units = units;
        }
      if (retry)
        g_atomic_int_set (&w->retry, TRUE);
      if (!st_worker_is_live (w))
        {
          w->wanted = TRUE;
          w->units = units;
          g_cond_broadcast (&c->cond);
        }
    }
  g_mutex_unlock (&c->lock);
  return ok;
}

gboolean
st_batch_control_start_port (StBatchControl *control, const char *port, guint units)
{
  return st_control_request (control, port, units, FALSE);
}

gboolean
st_batch_control_retry_port (StBatchControl *control, const char *port, guint units)
{
  return st_control_request (control, port, units, TRUE);
}

/* The socket is to stop: its unit in flight ends by the pipeline's rules.
 * Under the lock. */
static void
st_worker_stop (StWorker *w)
{
  w->wanted = FALSE;
  if (w->cancellable != NULL)
    g_cancellable_cancel (w->cancellable);
}

void
st_batch_control_stop_port (StBatchControl *control, const char *port)
{
  g_mutex_lock (&control->lock);
  StWorker *w = st_control_worker (control, port, FALSE);
  if (w != NULL)
    st_worker_stop (w);
  g_mutex_unlock (&control->lock);
}

/* The line was cancelled (stop all, or a database failure): every socket stops. */
static void
st_control_on_line_cancelled (GCancellable *cancellable, gpointer data)
{
  StBatchControl *c = data;
  g_mutex_lock (&c->lock);
  for (guint i = 0; i < c->workers->len; i++)
    st_worker_stop (g_ptr_array_index (c->workers, i));
  g_cond_broadcast (&c->cond);
  g_mutex_unlock (&c->lock);
}

/* Sleeps @ms unless the socket is stopped first. */
static void
st_worker_sleep (StWorker *w, guint ms)
{
  gint64 until = g_get_monotonic_time () + (gint64) ms * 1000;
  while (g_get_monotonic_time () < until &&
         !g_cancellable_is_cancelled (w->cancellable))
    g_usleep (MIN (20000, MAX (until - g_get_monotonic_time (), 0)));
}

static void
st_worker_give_up (StWorker *w, GError *error)
{
  StBatchControl *c = w->control;
  g_mutex_lock (&c->lock);
  c->summary->ports_failed++;
  g_mutex_unlock (&c->lock);
  if (c->options->port_func != NULL)
    c->options->port_func (w->port, error, c->options->user_data);
}

/* Under no lock: the batch got all its units, and the run ends. */
static gboolean
st_control_batch_done (StBatchControl *c)
{
  g_mutex_lock (&c->lock);
  gboolean done = c->goal && c->left == 0;
  g_mutex_unlock (&c->lock);
  return done;
}

/* One session of a socket. */
static void
st_worker_session (StWorker *w)
{
  StBatchControl *c = w->control;
  StLine *line = c->line;
  const StBatchRunOptions *opt = c->options;
  guint units = w->units;
  guint poll_ms = opt->poll_interval_ms > 0 ? opt->poll_interval_ms : 200;
  g_autoptr(GError) error = NULL;
  g_autoptr(StBackend) backend = st_backend_new (w->port, &st_line_get_profile (line)->link,
                                                 w->cancellable, &error);
  if (backend == NULL)
    {
      st_worker_give_up (w, error);
      return;
    }

  gboolean open = FALSE;
  g_autofree gchar *last_problem = NULL; /* the last thing that went wrong, for the give-up message */
  gint64 idle_since = g_get_monotonic_time ();
  guint handled = 0;

  while (!g_cancellable_is_cancelled (w->cancellable) && !st_control_batch_done (c))
    {
      g_clear_error (&error);
      g_mutex_lock (&c->lock);
      if (g_atomic_int_compare_and_exchange (&w->retry, TRUE, FALSE))
        g_clear_pointer (&w->last_uid, g_free); /* the same device may run again */
      if (w->renew)
        {
          /* released from a hold: the acknowledgement's count of units */
          w->renew = FALSE;
          units = w->units;
          handled = 0;
        }
      gboolean held = w->held;
      g_mutex_unlock (&c->lock);
      if (held)
        {
          /* A failure waits for its acknowledgement, even after the
           * session's last unit: no device, and no idle time-out (the
           * operator is the one to act). */
          st_worker_sleep (w, poll_ms);
          idle_since = g_get_monotonic_time ();
          continue;
        }
      if (units > 0 && handled >= units)
        break;
      if (opt->idle_timeout_s > 0 &&
          g_get_monotonic_time () - idle_since > (gint64) opt->idle_timeout_s * G_USEC_PER_SEC)
        {
          g_set_error (&error, ST_ERROR, ST_ERROR_TIMED_OUT,
                       _("%s: no new device answered for %u s (%u of %u units done): "
                       "check the socket and its cable%s%s"),
                       w->port, opt->idle_timeout_s, handled, units,
                       last_problem != NULL ? _("; last problem: ") : "",
                       last_problem != NULL ? last_problem : "");
          st_worker_give_up (w, error);
          return;
        }
      if (!open)
        {
          if (!st_backend_open (backend, &error))
            {
              g_autofree gchar *safe = st_text_escape (error->message, -1, ST_TEXT_ONE_LINE);
              g_debug ("%s: %s", w->port, safe);
              g_free (last_problem);
              last_problem = g_strdup (error->message);
              st_worker_sleep (w, 500);
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
              g_autofree gchar *safe = st_text_escape (error->message, -1, ST_TEXT_ONE_LINE);
              g_debug ("%s: %s; reopening", w->port, safe);
              st_backend_close (backend);
              open = FALSE;
            }
          st_worker_sleep (w, poll_ms);
          continue;
        }
      g_autofree gchar *uid = st_device_info_uid_hex (&info);
      g_mutex_lock (&c->lock);
      gboolean same = g_strcmp0 (uid, w->last_uid) == 0;
      g_mutex_unlock (&c->lock);
      if (same)
        {
          /* The same device is still in the socket: wait for a swap. */
          st_worker_sleep (w, poll_ms);
          continue;
        }

      g_autoptr(StUnitResult) result = st_unit_run (line, backend, &info, &error);
      if (result == NULL)
        return; /* the line stopped; st_batch_run reports why */
      handled++;
      idle_since = g_get_monotonic_time ();

      g_mutex_lock (&c->lock);
      g_free (w->last_uid);
      w->last_uid = g_steal_pointer (&uid);
      /* held before the result is told, so that an acknowledgement that
       * answers it always finds the hold */
      if (opt->hold_failures && result->outcome != ST_UNIT_PASSED)
        w->held = TRUE;
      gboolean reopen = w->held;
      switch (result->outcome)
        {
        case ST_UNIT_PASSED:
          c->summary->passed++;
          if (c->goal && c->left > 0 && --c->left == 0)
            c->summary->batch_done = TRUE;
          break;
        case ST_UNIT_FAILED: c->summary->failed++; break;
        case ST_UNIT_REFUSED: c->summary->refused++; break;
        }
      if (result->resumed)
        c->summary->resumed++;
      g_mutex_unlock (&c->lock);
      if (opt->unit_func != NULL)
        opt->unit_func (result, opt->user_data);
      if (reopen)
        {
          /* The link starts afresh after the hold, as a new session's
           * would (a device that failed may be run again by a retry). */
          st_backend_close (backend);
          open = FALSE;
        }
    }
  st_backend_close (backend);
}

static gpointer
st_worker_main (gpointer data)
{
  StWorker *w = data;
  st_worker_session (w);
  StBatchControl *c = w->control;
  g_mutex_lock (&c->lock);
  w->ended = TRUE;
  g_cond_broadcast (&c->cond);
  g_mutex_unlock (&c->lock);
  return NULL;
}

/* The run's own thread: joins the sockets that ended and starts those asked
 * for, until none runs. Under the lock. */
static void
st_control_supervise (StBatchControl *c)
{
  guint spawned = 0;
  for (;;)
    {
      gboolean cancelled = g_cancellable_is_cancelled (st_line_get_cancellable (c->line));
      guint running = 0;
      for (guint i = 0; i < c->workers->len; i++)
        {
          StWorker *w = g_ptr_array_index (c->workers, i);
          if (w->thread != NULL && w->ended)
            {
              g_thread_join (w->thread); /* it only returns after setting ended */
              w->thread = NULL;
              w->ended = FALSE;
            }
          if (w->thread == NULL && w->wanted && !cancelled)
            {
              w->wanted = FALSE;
              g_clear_object (&w->cancellable);
              w->cancellable = g_cancellable_new ();
              g_autofree gchar *name = g_strdup_printf ("socket-%u", spawned++);
              w->thread = g_thread_new (name, st_worker_main, w);
            }
          if (w->thread != NULL)
            running++;
        }
      if (running == 0)
        return;
      g_cond_wait (&c->cond, &c->lock);
    }
}

gboolean
st_batch_run (StLine *line, const StBatchRunOptions *options,
              StBatchRunSummary *summary, GError **error)
{
  guint n = options->ports != NULL ? g_strv_length ((gchar **) options->ports) : 0;
  if (n == 0)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           _("no port given: name at least one socket with --port"));
      return FALSE;
    }
  /* The same port twice would be two workers fighting over one device. */
  for (guint i = 0; i < n; i++)
    for (guint j = i + 1; j < n; j++)
      if (g_strcmp0 (options->ports[i], options->ports[j]) == 0)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       _("port %s is given twice"), options->ports[i]);
          return FALSE;
        }

  g_autoptr(GCancellable) own = NULL;
  if (st_line_get_cancellable (line) == NULL)
    st_line_set_cancellable (line, own = g_cancellable_new ());
  GCancellable *cancellable = st_line_get_cancellable (line);

  memset (summary, 0, sizeof *summary);
  g_autoptr(StBatchControl) control = options->control != NULL ? st_batch_control_ref (options->control)
                                                               : st_batch_control_new ();
  g_mutex_lock (&control->lock);
  gboolean used = control->line != NULL || control->ended;
  if (!used)
    {
      control->line = line;
      control->options = options;
      control->summary = summary;
      control->goal = options->batch_left > 0;
      control->left = options->batch_left;
      for (guint i = 0; i < n; i++)
        {
          StWorker *w = st_control_worker (control, options->ports[i], TRUE);
          w->wanted = TRUE;
          w->units = options->units_per_port;
          if (options->last_uids != NULL && options->last_uids[i] != NULL && *options->last_uids[i] != '\0')
            {
              g_free (w->last_uid);
              w->last_uid = g_strdup (options->last_uids[i]);
            }
        }
    }
  g_mutex_unlock (&control->lock);
  if (used)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INTERNAL, "a batch control serves one run only");
      return FALSE;
    }
  /* Connected outside the lock: it runs at once when already cancelled. */
  gulong handler = g_cancellable_connect (cancellable, G_CALLBACK (st_control_on_line_cancelled),
                                          control, NULL);
  g_mutex_lock (&control->lock);
  st_control_supervise (control);
  control->ended = TRUE;
  control->line = NULL;
  control->options = NULL;
  control->summary = NULL;
  g_mutex_unlock (&control->lock);
  g_cancellable_disconnect (cancellable, handler);
  if (own != NULL)
    st_line_set_cancellable (line, NULL);

  g_autofree gchar *stop = st_line_dup_stop_reason (line);
  if (stop != NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, _("the line stopped: %s"), stop);
      return FALSE;
    }
  return TRUE;
}
