#include "st-line-view.h"

#include <glib/gi18n.h>
#include <inttypes.h>
#include <string.h>

#include "st-scan.h"
#include "st-socket-tile.h"
#include "st-sound.h"
#include "st-text.h"

struct _StLineView {
  GtkBox parent;
  GtkEntry *scan_entry;
  GtkComboBoxText *batch_combo;
  GtkLabel *wo_value, *product_value, *planned_value, *done_value, *failed_value,
           *remaining_value, *yield_value, *status_label;
  GtkButton *refresh_button, *start_all_button, *stop_all_button;
  GtkToggleButton *sound_check;
  GtkGrid *tiles;

  GPtrArray *tile_list;        /* StSocketTile*, borrowed (owned by the grid) */
  StGuiContext ctx;            /* station, session, cancellable */
  GPtrArray *batches;          /* open StBatchInfo* */
  StBatchInfo *batch;            /* the chosen one, with fresh counts */
  GCancellable *run_cancel;    /* the line's */
  gboolean running, restart_pending;
  GHashTable *joining;         /* ports asked to join the running line, not heard from since */
  guint tick_id;
  /* A line another client started (the CLI's 'batch run', another GUI):
   * the service's signals, followed while someone is logged in here. */
  StStation *watched;
  gulong signal_ids[4];
  gint64 other_batch;          /* its batch, 0 when none runs */
  /* The sockets: --port PATH of the command line (may be empty); the tiles
   * are made at the first login, once the service told the configured
   * sockets' names (SocketNames), and never move after. */
  gchar **cmd_ports;
  gboolean tiles_made, names_asked;
};

G_DEFINE_TYPE (StLineView, st_line_view, GTK_TYPE_BOX)

enum { SIG_LINE_FINISHED, N_SIGNALS };
static guint st_line_view_signals[N_SIGNALS];

static void st_line_view_start (StLineView *self);
void st_line_view_refresh (StLineView *self);

static StSocketTile *
st_line_view_tile (StLineView *self, const char *port)
{
  for (guint i = 0; i < self->tile_list->len; i++)
    {
      StSocketTile *t = g_ptr_array_index (self->tile_list, i);
      if (g_strcmp0 (st_socket_tile_get_port (t), port) == 0)
        return t;
    }
  return NULL;
}

static void
st_line_view_show_batch (StLineView *self)
{
  StBatchInfo *b = self->batch;
  if (b == NULL)
    {
      GtkLabel *all[] = { self->wo_value, self->product_value, self->planned_value, self->done_value,
                          self->failed_value, self->remaining_value, self->yield_value };
      for (guint i = 0; i < G_N_ELEMENTS (all); i++)
        gtk_label_set_text (all[i], "–");
      return;
    }
  gtk_label_set_text (self->wo_value, b->work_order);
  gtk_label_set_text (self->product_value, b->product);
  g_autofree gchar *planned = g_strdup_printf ("%" G_GINT64_FORMAT, b->quantity);
  g_autofree gchar *done = g_strdup_printf ("%" G_GINT64_FORMAT, b->n_done);
  g_autofree gchar *failed = g_strdup_printf ("%" G_GINT64_FORMAT, b->n_failed);
  g_autofree gchar *remaining = g_strdup_printf ("%" G_GINT64_FORMAT, MAX (b->quantity - b->n_done, 0));
  gint64 finished = b->n_done + b->n_failed;
  g_autofree gchar *yield = finished > 0 ? g_strdup_printf ("%.1f %%", 100.0 * (double) b->n_done / (double) finished)
                                         : g_strdup ("–");
  gtk_label_set_text (self->planned_value, planned);
  gtk_label_set_text (self->done_value, done);
  gtk_label_set_text (self->failed_value, failed);
  gtk_label_set_text (self->remaining_value, remaining);
  gtk_label_set_text (self->yield_value, yield);
}

static void
st_line_view_on_batch (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(StLineView) self = user_data;
  g_autoptr(GError) error = NULL;
  StBatchInfo *b = st_station_get_batch_finish (self->ctx.station, result, &error);
  if (st_gui_failed (error, self->status_label))
    return;
  g_clear_pointer (&self->batch, st_batch_info_free);
  self->batch = b;
  st_line_view_show_batch (self);
}

static gint64
st_line_view_selected_id (StLineView *self)
{
  const char *id = gtk_combo_box_get_active_id (GTK_COMBO_BOX (self->batch_combo));
  return id != NULL ? g_ascii_strtoll (id, NULL, 10) : 0;
}

static void
st_line_view_load_batch (StLineView *self)
{
  gint64 id = st_line_view_selected_id (self);
  if (id <= 0 || self->ctx.session == NULL)
    {
      g_clear_pointer (&self->batch, st_batch_info_free);
      st_line_view_show_batch (self);
      return;
    }
  st_station_get_batch_async (self->ctx.station, id, self->ctx.cancellable,
                              st_line_view_on_batch, g_object_ref (self));
}

static void
st_line_view_on_batch_changed (StLineView *self)
{
  gtk_widget_set_sensitive (GTK_WIDGET (self->batch_combo), !self->running);
  st_line_view_load_batch (self);
}

static void
st_line_view_on_batches (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(StLineView) self = user_data;
  g_autoptr(GError) error = NULL;
  GPtrArray *list = st_station_list_batches_finish (self->ctx.station, result, &error);
  if (st_gui_failed (error, self->status_label))
    return;
  g_autofree gchar *keep = g_strdup (gtk_combo_box_get_active_id (GTK_COMBO_BOX (self->batch_combo)));
  g_clear_pointer (&self->batches, g_ptr_array_unref);
  self->batches = g_ptr_array_new_with_free_func ((GDestroyNotify) st_batch_info_free);
  g_signal_handlers_block_by_func (self->batch_combo, st_line_view_on_batch_changed, self);
  gtk_combo_box_text_remove_all (self->batch_combo);
  for (guint i = 0; i < list->len; i++)
    {
      StBatchInfo *b = g_ptr_array_index (list, i);
      if (g_strcmp0 (b->state, "open") != 0)
        continue;
      g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, b->id);
      g_autofree gchar *text = g_strdup_printf (_("Batch %" PRId64 ": %s, %" PRId64 " x %s"),
                                                b->id, b->work_order, b->quantity, b->product);
      gtk_combo_box_text_append (self->batch_combo, id, text);
      g_ptr_array_add (self->batches, g_ptr_array_steal_index (list, i));
      i--;
    }
  g_ptr_array_unref (list);
  if (keep == NULL || !gtk_combo_box_set_active_id (GTK_COMBO_BOX (self->batch_combo), keep))
    gtk_combo_box_set_active (GTK_COMBO_BOX (self->batch_combo), self->batches->len > 0 ? 0 : -1);
  g_signal_handlers_unblock_by_func (self->batch_combo, st_line_view_on_batch_changed, self);
  if (self->batches->len == 0)
    st_gui_status (self->status_label, _("No open batch: ask the shift lead to create one."), FALSE);
  st_line_view_load_batch (self);
}

void
st_line_view_refresh (StLineView *self)
{
  if (self->ctx.session == NULL)
    return;
  st_station_list_batches_async (self->ctx.station, self->ctx.cancellable,
                                 st_line_view_on_batches, g_object_ref (self));
}

/* A barcode scanner types the work order and Enter. */
static void
st_line_view_on_scan (StLineView *self)
{
  if (self->running)
    {
      st_gui_status (self->status_label, _("Stop the line before changing the batch."), TRUE);
      return;
    }
  g_autofree gchar *problem = NULL;
  StBatchInfo *b = st_scan_batch_from_entry (self->scan_entry, self->batches, FALSE, &problem);
  if (b == NULL)
    {
      st_gui_status (self->status_label, problem, TRUE);
      return;
    }
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, b->id);
  gtk_combo_box_set_active_id (GTK_COMBO_BOX (self->batch_combo), id);
  g_autofree gchar *wo = st_text_escape (b->work_order, -1, ST_TEXT_ONE_LINE);
  g_autofree gchar *msg = g_strdup_printf (_("Work order %s: batch %" PRId64 " chosen."), wo, b->id);
  st_gui_status (self->status_label, msg, FALSE);
}

/* ---- running ---- */

static gboolean
st_line_view_tick (gpointer data)
{
  StLineView *self = data;
  for (guint i = 0; i < self->tile_list->len; i++)
    st_socket_tile_tick (g_ptr_array_index (self->tile_list, i));
  return G_SOURCE_CONTINUE;
}

static void
st_line_view_on_step (const StUnitProgress *progress, gpointer user_data)
{
  StLineView *self = user_data;
  g_hash_table_remove (self->joining, progress->port);
  StSocketTile *t = st_line_view_tile (self, progress->port);
  if (t != NULL)
    st_socket_tile_set_progress (t, progress);
}

/* A unit of this view's line failed (or was refused) in @tile: the FAIL
 * stays until the operator presses Acknowledge, and the socket takes no
 * device before. The service holds the socket itself (the line runs with
 * "hold-failures"): its worker took the hold before it sent the result, so
 * no device slips in between. Acknowledge releases it (LinePortStart), and
 * the socket then takes only another device: it remembers the uid it
 * handled last. Retry runs the same device again (LinePortRetry). */
static void
st_line_view_hold (StLineView *self, StSocketTile *tile)
{
  const char *port = st_socket_tile_get_port (tile);
  g_hash_table_remove (self->joining, port);
  st_socket_tile_hold (tile);
  /* (st_gui_status escapes what it shows) */
  g_autofree gchar *msg = g_strdup_printf (_("%s: a unit failed. The socket takes no device until the "
                                             "operator presses Acknowledge; the other sockets go on."),
                                           st_socket_tile_get_name (tile));
  st_gui_status (self->status_label, msg, TRUE);
}

static void
st_line_view_on_result (const StUnitResult *result, gpointer user_data)
{
  StLineView *self = user_data;
  g_hash_table_remove (self->joining, result->port);
  StSocketTile *t = st_line_view_tile (self, result->port);
  if (t != NULL)
    {
      st_socket_tile_set_result (t, result);
      st_sound_play (GTK_WIDGET (t), result->outcome == ST_UNIT_PASSED ? ST_SOUND_PASS : ST_SOUND_FAIL);
      if (result->outcome != ST_UNIT_PASSED)
        st_line_view_hold (self, t);
    }
  st_line_view_load_batch (self);
}

static void
st_line_view_on_port_failed (const char *port, const GError *error, gpointer user_data)
{
  StLineView *self = user_data;
  g_hash_table_remove (self->joining, port);
  StSocketTile *t = st_line_view_tile (self, port);
  if (t != NULL)
    {
      st_socket_tile_set_problem (t, error->message);
      st_socket_tile_set_enabled (t, FALSE);
    }
}

static void
st_line_view_set_running (StLineView *self, gboolean running)
{
  self->running = running;
  gtk_widget_set_sensitive (GTK_WIDGET (self->stop_all_button), running);
  gtk_widget_set_sensitive (GTK_WIDGET (self->batch_combo), !running);
  gtk_widget_set_sensitive (GTK_WIDGET (self->scan_entry), !running);
  if (running && self->tick_id == 0)
    self->tick_id = g_timeout_add (200, st_line_view_tick, self);
  if (!running && self->tick_id != 0)
    {
      g_source_remove (self->tick_id);
      self->tick_id = 0;
    }
}

/* Why the line cannot start on the chosen batch, or NULL. A socket takes
 * devices until the batch has its quantity: the service shares what the
 * batch still needs among the sockets (devices do not come evenly), so the
 * view asks for no count per socket (0). */
static const char *
st_line_view_batch_problem (StLineView *self)
{
  if (self->batch == NULL || self->batch->id != st_line_view_selected_id (self))
    return _("Choose a batch first (scan its work order).");
  if (self->batch->quantity - self->batch->n_done <= 0)
    return _("This batch has all its units done: ask the shift lead to close it.");
  return NULL;
}

static void
st_line_view_on_line_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(StLineView) self = user_data;
  g_autoptr(GError) error = NULL;
  StLineSummary summary = { 0 };
  gboolean ok = st_station_run_line_finish (self->ctx.station, result, &summary, &error);
  g_clear_object (&self->run_cancel);
  st_line_view_set_running (self, FALSE);
  if (ok || !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_autofree gchar *msg = !ok ? g_strdup (error->message)
                              : summary.batch_done
                              ? g_strdup_printf (_("The batch has all its units: %u passed, %u failed, %u refused "
                                                   "in this run. Ask the shift lead to close it."),
                                                 summary.passed, summary.failed, summary.refused)
                              : g_strdup_printf (_("Line stopped: %u passed, %u failed, %u refused in this run."),
                                                 summary.passed, summary.failed, summary.refused);
      st_gui_status (self->status_label, msg, !ok);
    }
  /* A socket asked to join while the line was ending (the service refused
   * it: no line ran any more) starts a new line. A socket that joined waits
   * for its device as long as it takes, so a line that ended by itself
   * with a joined socket never heard from means the join came too late. */
  GHashTableIter it;
  gpointer port;
  g_hash_table_iter_init (&it, self->joining);
  while (ok && !summary.stopped && g_hash_table_iter_next (&it, &port, NULL))
    {
      StSocketTile *t = st_line_view_tile (self, port);
      if (t != NULL && st_socket_tile_get_enabled (t))
        self->restart_pending = TRUE;
    }
  g_hash_table_remove_all (self->joining);
  gboolean restart = ok && self->restart_pending && self->ctx.session != NULL;
  self->restart_pending = FALSE;
  for (guint i = 0; i < self->tile_list->len; i++)
    {
      StSocketTile *t = g_ptr_array_index (self->tile_list, i);
      if (!restart)
        st_socket_tile_set_enabled (t, FALSE);
      st_socket_tile_set_waiting (t, FALSE);
    }
  st_line_view_load_batch (self);
  if (restart)
    st_line_view_start (self);
  else
    g_signal_emit (self, st_line_view_signals[SIG_LINE_FINISHED], 0);
}

/* Starts the line on the enabled sockets. */
static void
st_line_view_start (StLineView *self)
{
  g_autoptr(GPtrArray) ports = g_ptr_array_new ();
  g_autoptr(GPtrArray) skip = g_ptr_array_new ();
  for (guint i = 0; i < self->tile_list->len; i++)
    {
      StSocketTile *t = g_ptr_array_index (self->tile_list, i);
      if (st_socket_tile_get_enabled (t))
        {
          g_ptr_array_add (ports, (gpointer) st_socket_tile_get_port (t));
          /* a failed device stays skipped in a new line too: only Retry runs it again */
          const char *failed = st_socket_tile_get_failed_uid (t);
          g_ptr_array_add (skip, (gpointer) (failed != NULL ? failed : ""));
        }
    }
  g_ptr_array_add (ports, NULL);
  g_ptr_array_add (skip, NULL);
  guint n = ports->len - 1;
  if (n == 0)
    return;
  const char *problem = st_line_view_batch_problem (self);
  if (problem != NULL)
    {
      st_gui_status (self->status_label, problem, TRUE);
      for (guint i = 0; i < self->tile_list->len; i++)
        st_socket_tile_set_enabled (g_ptr_array_index (self->tile_list, i), FALSE);
      return;
    }
  self->run_cancel = g_cancellable_new ();
  st_line_view_set_running (self, TRUE);
  for (guint i = 0; i < self->tile_list->len; i++)
    {
      StSocketTile *t = g_ptr_array_index (self->tile_list, i);
      if (st_socket_tile_get_enabled (t))
        st_socket_tile_set_waiting (t, TRUE);
    }
  g_autofree gchar *msg = g_strdup_printf (ngettext ("Running batch %" PRId64 " on %u socket: put the devices in.",
                                                     "Running batch %" PRId64 " on %u sockets: put the devices in.", n),
                                           self->batch->id, n);
  st_gui_status (self->status_label, msg, FALSE);
  static const StLineCallbacks callbacks = {
    .step = st_line_view_on_step,
    .result = st_line_view_on_result,
    .port_failed = st_line_view_on_port_failed,
  };
  st_station_run_line_async (self->ctx.station, self->batch->id,
                             (const char *const *) ports->pdata, 0, TRUE,
                             (const char *const *) skip->pdata, &callbacks, self,
                             self->run_cancel, st_line_view_on_line_done, g_object_ref (self));
}

/* @tile's socket joins the running line until the batch has its quantity
 * (@retry: runs the device in it again), or is refused with @problem. */
static void
st_line_view_join (StLineView *self, StSocketTile *tile, gboolean retry, const char *problem)
{
  if (problem != NULL)
    {
      st_gui_status (self->status_label, problem, TRUE);
      st_socket_tile_set_enabled (tile, FALSE);
      return;
    }
  const char *port = st_socket_tile_get_port (tile);
  if (retry)
    st_station_line_retry_port (self->ctx.station, port, 0);
  else
    st_station_line_start_port (self->ctx.station, st_line_view_selected_id (self), port, 0);
  g_hash_table_add (self->joining, g_strdup (port));
  st_socket_tile_set_waiting (tile, TRUE);
}

/* One socket joins the line (@retry: runs the device in it again). The
 * other sockets are not touched; without a line, one starts. */
static void
st_line_view_start_socket (StLineView *self, StSocketTile *tile, gboolean retry)
{
  st_socket_tile_set_enabled (tile, TRUE);
  if (!self->running)
    {
      st_line_view_start (self);
      return;
    }
  st_line_view_join (self, tile, retry, st_line_view_batch_problem (self));
}

static void
st_line_view_on_start_all (StLineView *self)
{
  g_autoptr(GPtrArray) joining = g_ptr_array_new ();
  for (guint i = 0; i < self->tile_list->len; i++)
    {
      StSocketTile *t = g_ptr_array_index (self->tile_list, i);
      if (st_socket_tile_get_held (t))
        continue; /* its FAIL waits for Acknowledge */
      if (self->running && !st_socket_tile_get_enabled (t))
        g_ptr_array_add (joining, t);
      st_socket_tile_set_enabled (t, TRUE);
    }
  if (!self->running)
    {
      st_line_view_start (self);
      return;
    }
  const char *problem = st_line_view_batch_problem (self);
  for (guint i = 0; i < joining->len; i++)
    st_line_view_join (self, g_ptr_array_index (joining, i), FALSE, problem);
}

/* The Sound switch: mutes the pass and fail sounds of this window. */
static void
st_line_view_on_sound_toggled (StLineView *self)
{
  st_sound_set_muted (!gtk_toggle_button_get_active (self->sound_check));
}

static void
st_line_view_on_stop_all (StLineView *self)
{
  st_line_view_stop (self);
}

void
st_line_view_stop (StLineView *self)
{
  for (guint i = 0; i < self->tile_list->len; i++)
    {
      st_socket_tile_set_enabled (g_ptr_array_index (self->tile_list, i), FALSE);
      st_socket_tile_forget_resume (g_ptr_array_index (self->tile_list, i));
    }
  self->restart_pending = FALSE;
  g_hash_table_remove_all (self->joining);
  if (self->run_cancel != NULL)
    {
      st_gui_status (self->status_label, _("Stopping: the units in the sockets finish or fail safely…"), FALSE);
      g_cancellable_cancel (self->run_cancel);
    }
}

gboolean
st_line_view_is_running (StLineView *self)
{
  return self->running;
}

static void
st_line_view_on_tile_start (StSocketTile *tile, StLineView *self)
{
  st_line_view_start_socket (self, tile, FALSE);
}

/* Retry is the operator's answer to the failure too: it clears the hold
 * and runs the device in the socket again. */
static void
st_line_view_on_tile_retry (StSocketTile *tile, StLineView *self)
{
  st_socket_tile_forget_failed_uid (tile);
  st_socket_tile_acknowledge (tile);
  st_line_view_start_socket (self, tile, TRUE);
}

/* The operator saw the FAIL: the tile clears, and the socket the failure
 * held takes the next device, never the one that failed (the service's
 * worker remembers its uid); the line starts again when it had ended. */
static void
st_line_view_on_tile_acknowledge (StSocketTile *tile, StLineView *self)
{
  if (st_socket_tile_acknowledge (tile) && self->ctx.session != NULL)
    {
      st_line_view_start_socket (self, tile, FALSE);
      /* (a socket refused, the batch done say so themselves) */
      if (self->running && st_socket_tile_get_enabled (tile))
        {
          g_autofree gchar *msg = g_strdup_printf (_("%s: acknowledged. The socket takes the next device, never "
                                                     "the one that failed: put it aside."),
                                                   st_socket_tile_get_name (tile));
          st_gui_status (self->status_label, msg, FALSE);
        }
    }
  else
    st_socket_tile_set_waiting (tile, FALSE);
}

/* Only this socket stops (its unit in flight fails safely); the line ends
 * by itself once no socket runs. */
static void
st_line_view_on_tile_stop (StSocketTile *tile, StLineView *self)
{
  st_socket_tile_set_enabled (tile, FALSE);
  g_hash_table_remove (self->joining, st_socket_tile_get_port (tile));
  if (self->running)
    st_station_line_stop_port (self->ctx.station, st_socket_tile_get_port (tile));
  st_socket_tile_set_waiting (tile, FALSE);
  g_autofree gchar *msg = g_strdup_printf (_("%s stopped; the other sockets go on."),
                                           st_socket_tile_get_name (tile));
  st_gui_status (self->status_label, msg, FALSE);
}

/* ---- a line another client runs ---- */

/* The service tells every client about the running line. While this view
 * runs its own line, its StLineCallbacks show it; otherwise the line that
 * another client started (the CLI's 'batch run', another GUI) shows here:
 * the tiles of the sockets it uses, and the status line. */
static gboolean
st_line_view_shows_other (StLineView *self)
{
  return self->run_cancel == NULL && self->ctx.session != NULL;
}

static void
st_line_view_show_other (StLineView *self, gint64 batch_id, guint n_ports)
{
  g_autofree gchar *msg = n_ports > 0
    ? g_strdup_printf (ngettext ("Batch %" PRId64 " is running on %u socket, started from another station "
                                 "client (the command line or another screen): its units show here.",
                                 "Batch %" PRId64 " is running on %u sockets, started from another station "
                                 "client (the command line or another screen): its units show here.", n_ports),
                       batch_id, n_ports)
    : g_strdup_printf (_("Batch %" PRId64 " is running, started from another station client (the "
                       "command line or another screen): its units show here."), batch_id);
  st_gui_status (self->status_label, msg, FALSE);
}

static void
st_line_view_on_other_started (StDbusStation1 *proxy, gint64 batch_id, const char *const *ports,
                               const char *recovered, StLineView *self)
{
  if (!st_line_view_shows_other (self))
    return;
  self->other_batch = batch_id;
  for (guint i = 0; ports != NULL && ports[i] != NULL; i++)
    {
      StSocketTile *t = st_line_view_tile (self, ports[i]);
      if (t != NULL)
        st_socket_tile_set_waiting (t, TRUE);
    }
  st_line_view_show_other (self, batch_id, ports != NULL ? g_strv_length ((gchar **) ports) : 0);
  if (batch_id == st_line_view_selected_id (self))
    st_line_view_load_batch (self);
}

static void
st_line_view_on_other_step (StDbusStation1 *proxy, const char *port, const char *step, const char *uid,
                            gdouble seconds, StLineView *self)
{
  if (!st_line_view_shows_other (self))
    return;
  StSocketTile *t = st_line_view_tile (self, port);
  StUnitProgress progress = { .port = port, .step = step, .uid_hex = uid, .seconds = seconds };
  if (t != NULL)
    st_socket_tile_set_progress (t, &progress);
  if (self->tick_id == 0)
    self->tick_id = g_timeout_add (200, st_line_view_tick, self);
}

static void
st_line_view_on_other_result (StDbusStation1 *proxy, GVariant *dict, StLineView *self)
{
  if (!st_line_view_shows_other (self))
    return;
  gint64 batch_id = 0;
  g_autoptr(StUnitResult) r = st_unit_result_from_variant (dict, &batch_id);
  StSocketTile *t = st_line_view_tile (self, r->port);
  if (t != NULL)
    st_socket_tile_set_result (t, r);
  if (batch_id == st_line_view_selected_id (self))
    st_line_view_load_batch (self);
}

static void
st_line_view_on_other_ended (StDbusStation1 *proxy, gint64 batch_id, GVariant *dict, StLineView *self)
{
  if (!st_line_view_shows_other (self))
    return;
  guint passed = 0, failed = 0, refused = 0;
  g_variant_lookup (dict, "passed", "u", &passed);
  g_variant_lookup (dict, "failed", "u", &failed);
  g_variant_lookup (dict, "refused", "u", &refused);
  const char *why = st_dict_get_string (dict, "error");
  g_autofree gchar *msg = g_strdup_printf (_("The line on batch %" PRId64 " (started from another client) "
                                           "ended: %u passed, %u failed, %u refused.%s%s"), batch_id, passed,
                                           failed, refused, *why != '\0' ? " " : "", why);
  st_gui_status (self->status_label, msg, *why != '\0');
  self->other_batch = 0;
  for (guint i = 0; i < self->tile_list->len; i++)
    st_socket_tile_set_waiting (g_ptr_array_index (self->tile_list, i), FALSE);
  if (self->tick_id != 0)
    {
      g_source_remove (self->tick_id);
      self->tick_id = 0;
    }
  if (batch_id == st_line_view_selected_id (self))
    st_line_view_load_batch (self);
}

static void
st_line_view_unwatch (StLineView *self)
{
  for (guint i = 0; i < G_N_ELEMENTS (self->signal_ids); i++)
    if (self->signal_ids[i] != 0)
      g_signal_handler_disconnect (st_station_get_proxy (self->watched), self->signal_ids[i]);
  memset (self->signal_ids, 0, sizeof self->signal_ids);
  self->watched = NULL;
  self->other_batch = 0;
}

static void
st_line_view_watch (StLineView *self, StStation *station)
{
  if (self->watched == station)
    return;
  st_line_view_unwatch (self);
  self->watched = station;
  StDbusStation1 *proxy = st_station_get_proxy (station);
  self->signal_ids[0] = g_signal_connect (proxy, "line-started", G_CALLBACK (st_line_view_on_other_started), self);
  self->signal_ids[1] = g_signal_connect (proxy, "unit-step", G_CALLBACK (st_line_view_on_other_step), self);
  self->signal_ids[2] = g_signal_connect (proxy, "unit-result", G_CALLBACK (st_line_view_on_other_result), self);
  self->signal_ids[3] = g_signal_connect (proxy, "line-ended", G_CALLBACK (st_line_view_on_other_ended), self);
}

/* ---- life cycle ---- */

static void
st_line_view_dispose (GObject *object)
{
  StLineView *self = ST_LINE_VIEW (object);
  st_line_view_unwatch (self);
  st_gui_context_clear (&self->ctx);
  if (self->tick_id != 0)
    {
      g_source_remove (self->tick_id);
      self->tick_id = 0;
    }
  G_OBJECT_CLASS (st_line_view_parent_class)->dispose (object);
}

static void
st_line_view_finalize (GObject *object)
{
  StLineView *self = ST_LINE_VIEW (object);
  g_ptr_array_unref (self->tile_list);
  g_hash_table_unref (self->joining);
  g_strfreev (self->cmd_ports);
  g_clear_pointer (&self->batches, g_ptr_array_unref);
  g_clear_pointer (&self->batch, st_batch_info_free);
  G_OBJECT_CLASS (st_line_view_parent_class)->finalize (object);
}

static void
st_line_view_class_init (StLineViewClass *klass)
{
  GtkWidgetClass *wc = GTK_WIDGET_CLASS (klass);
  G_OBJECT_CLASS (klass)->dispose = st_line_view_dispose;
  G_OBJECT_CLASS (klass)->finalize = st_line_view_finalize;
  gtk_widget_class_set_template_from_resource (wc, "/org/station/gui/st-line-view.ui");
#define BIND(x) gtk_widget_class_bind_template_child (wc, StLineView, x)
  BIND (scan_entry); BIND (batch_combo); BIND (wo_value); BIND (product_value); BIND (planned_value);
  BIND (done_value); BIND (failed_value); BIND (remaining_value); BIND (yield_value);
  BIND (status_label); BIND (refresh_button); BIND (start_all_button); BIND (stop_all_button);
  BIND (tiles); BIND (sound_check);
#undef BIND
  gtk_widget_class_bind_template_callback (wc, st_line_view_on_sound_toggled);
  gtk_widget_class_bind_template_callback (wc, st_line_view_on_scan);
  gtk_widget_class_bind_template_callback (wc, st_line_view_on_batch_changed);
  gtk_widget_class_bind_template_callback (wc, st_line_view_refresh);
  gtk_widget_class_bind_template_callback (wc, st_line_view_on_start_all);
  gtk_widget_class_bind_template_callback (wc, st_line_view_on_stop_all);
  st_line_view_signals[SIG_LINE_FINISHED] =
    g_signal_new ("line-finished", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                  NULL, G_TYPE_NONE, 0);
}

static void
st_line_view_init (StLineView *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  self->tile_list = g_ptr_array_new ();
  self->joining = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  st_gui_context_init (&self->ctx);
  st_scan_entry_setup (self->scan_entry, _("Work order"));
  st_gui_name (GTK_WIDGET (self->batch_combo), _("Batch"));
  st_gui_name (GTK_WIDGET (self->wo_value), _("Batch work order"));
  st_gui_name (GTK_WIDGET (self->product_value), _("Batch product"));
  st_gui_name (GTK_WIDGET (self->planned_value), _("Units planned"));
  st_gui_name (GTK_WIDGET (self->done_value), _("Units done"));
  st_gui_name (GTK_WIDGET (self->failed_value), _("Units failed"));
  st_gui_name (GTK_WIDGET (self->remaining_value), _("Units remaining"));
  st_gui_name (GTK_WIDGET (self->yield_value), _("Yield"));
  st_gui_name (GTK_WIDGET (self->status_label), _("Line status"));
  st_gui_name (GTK_WIDGET (self->tiles), _("Sockets"));
  /* (the check box's accessible name is its label, Sound; its tooltip says more) */
  gtk_toggle_button_set_active (self->sound_check, !st_sound_get_muted ());
}

/* Up to three sockets side by side; more on a square-ish grid (4: 2 x 2,
 * 5 to 9: three columns, 10 to 16: four). */
static guint
st_line_view_columns (guint n)
{
  guint c = 1;
  while (c * c < n)
    c++;
  return n <= 3 ? MAX (n, 1) : c;
}

/* Makes the tiles once: @ports with their configured @names (NULL: none). */
static void
st_line_view_make_tiles (StLineView *self, const char *const *ports, const char *const *names)
{
  self->tiles_made = TRUE;
  guint n_ports = ports != NULL ? g_strv_length ((gchar **) ports) : 0;
  guint columns = st_line_view_columns (n_ports);
  for (guint i = 0; ports != NULL && ports[i] != NULL; i++)
    {
      StSocketTile *t = st_socket_tile_new (i + 1, ports[i], names != NULL ? names[i] : NULL);
      g_signal_connect (t, "start", G_CALLBACK (st_line_view_on_tile_start), self);
      g_signal_connect (t, "retry", G_CALLBACK (st_line_view_on_tile_retry), self);
      g_signal_connect (t, "stop", G_CALLBACK (st_line_view_on_tile_stop), self);
      g_signal_connect (t, "acknowledge", G_CALLBACK (st_line_view_on_tile_acknowledge), self);
      gtk_widget_show (GTK_WIDGET (t));
      gtk_widget_set_hexpand (GTK_WIDGET (t), TRUE);
      /* Fixed places: row-major on a grid whose columns are set here, once,
       * so the tiles never reflow while the line runs. */
      gtk_grid_attach (self->tiles, GTK_WIDGET (t), (gint) (i % columns), (gint) (i / columns), 1, 1);
      g_ptr_array_add (self->tile_list, t);
    }
  if (self->tile_list->len == 0)
    st_gui_status (self->status_label, _("No socket configured: name the sockets in the [sockets] group of "
                                         "station.conf (docs/setup.md), or start station-gui with --port PATH "
                                         "for each socket."), TRUE);
  gtk_widget_set_sensitive (GTK_WIDGET (self->start_all_button), self->tile_list->len > 0);
}

/* The configured sockets: with --port on the command line, those ports,
 * named where the configuration names them; without, the configured
 * sockets in their order. */
static void
st_line_view_on_socket_names (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(StLineView) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) list = st_station_socket_names_finish (NULL, result, &error);
  if (self->tiles_made)
    return;
  if (list == NULL && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      self->names_asked = FALSE; /* logged out first: asked again at the next login */
      return;
    }
  if (list == NULL)
    g_message ("the service told no socket names (%s): the tiles show the ports", error->message);
  g_autoptr(GPtrArray) ports = g_ptr_array_new ();
  g_autoptr(GPtrArray) names = g_ptr_array_new ();
  guint n_cmd = self->cmd_ports != NULL ? g_strv_length (self->cmd_ports) : 0;
  for (guint i = 0; i < n_cmd; i++)
    {
      const char *name = NULL;
      for (guint j = 0; list != NULL && j < list->len && name == NULL; j++)
        {
          StSocketName *e = g_ptr_array_index (list, j);
          if (g_strcmp0 (e->port, self->cmd_ports[i]) == 0)
            name = e->name;
        }
      g_ptr_array_add (ports, self->cmd_ports[i]);
      g_ptr_array_add (names, (gpointer) name);
    }
  for (guint j = 0; n_cmd == 0 && list != NULL && j < list->len; j++)
    {
      StSocketName *e = g_ptr_array_index (list, j);
      g_ptr_array_add (ports, e->port);
      g_ptr_array_add (names, e->name);
    }
  g_ptr_array_add (ports, NULL);
  g_ptr_array_add (names, NULL);
  st_line_view_make_tiles (self, (const char *const *) ports->pdata, (const char *const *) names->pdata);
}

GtkWidget *
st_line_view_new (const char *const *ports)
{
  StLineView *self = g_object_new (ST_TYPE_LINE_VIEW, NULL);
  self->cmd_ports = g_strdupv ((gchar **) ports);
  gtk_widget_set_sensitive (GTK_WIDGET (self->start_all_button), FALSE);
  return GTK_WIDGET (self);
}

void
st_line_view_set_session (GtkWidget *view, StStation *station, const StAuthSession *session)
{
  StLineView *self = ST_LINE_VIEW (view);
  if (!st_gui_context_set (&self->ctx, station, session))
    {
      st_line_view_unwatch (self);
      if (!self->running && self->tick_id != 0)
        {
          g_source_remove (self->tick_id);
          self->tick_id = 0;
        }
      return;
    }
  st_line_view_watch (self, station);
  if (!self->tiles_made && !self->names_asked)
    {
      self->names_asked = TRUE;
      st_station_socket_names_async (station, self->ctx.cancellable, st_line_view_on_socket_names,
                                     g_object_ref (self));
    }
  st_line_view_refresh (self);
  /* a line that runs already (the service's RunningBatch) */
  gint64 running = st_dbus_station1_get_running_batch (st_station_get_proxy (station));
  if (running > 0 && !self->running)
    {
      self->other_batch = running;
      st_line_view_show_other (self, running, 0);
    }
}
