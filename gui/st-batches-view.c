#include "st-batches-view.h"

#include <inttypes.h>
#include <string.h>

#include <gio/gunixmounts.h>
#include <glib/gi18n.h>

#include "st-scan.h"
#include "st-shift-chart.h"
#include "st-text.h"

struct _StBatchesView {
  GtkBox parent;
  GtkComboBoxText *filter_combo, *drive_combo, *profile_combo;
  GtkSearchEntry *search_entry;
  GtkListBox *batch_list;
  GtkButton *close_button, *export_button, *create_button;
  GtkButton *matter_labels_button, *matter_codes_button; /* issue 18: a lead's, for a Matter batch */
  GtkEntry *export_entry, *wo_entry, *scan_entry;
  GtkSpinButton *qty_spin;
  GtkProgressBar *export_progress;
  GtkLabel *status_label;
  GtkBox *chart_box;
  StShiftChart *chart;
  GVolumeMonitor *volumes;
  GUnixMountMonitor *unix_mounts;
  GCancellable *drives_cancellable; /* the free-space queries of the drive list */
  guint drives_idle;                /* a list update queued: one per burst of mount signals */
  StGuiContext ctx;            /* station, session, cancellable */
  GPtrArray *profiles;         /* the service's StProfileEntry*, the combo's ids their indexes */
  gint64 select_after_refresh;
  gchar *scanned_wo;           /* a work order scanned, looked up in the next list (st-scan.h) */
  gint64 listed_asked, stats_asked; /* when the list, the chart were asked for (figures) */
};

G_DEFINE_TYPE (StBatchesView, st_batches_view, GTK_TYPE_BOX)

void st_batches_view_refresh (StBatchesView *self);

static StBatchInfo *
st_batches_view_selected (StBatchesView *self)
{
  GtkListBoxRow *row = gtk_list_box_get_selected_row (self->batch_list);
  return row != NULL ? g_object_get_data (G_OBJECT (row), "st-batch") : NULL;
}

static gboolean
st_batches_view_filter (GtkListBoxRow *row, gpointer data)
{
  StBatchesView *self = data;
  StBatchInfo *b = g_object_get_data (G_OBJECT (row), "st-batch");
  const char *state = gtk_combo_box_get_active_id (GTK_COMBO_BOX (self->filter_combo));
  if (state != NULL && g_strcmp0 (state, "all") != 0 && g_strcmp0 (state, b->state) != 0)
    return FALSE;
  const char *text = gtk_entry_get_text (GTK_ENTRY (self->search_entry));
  if (text != NULL && *text != '\0')
    {
      g_autofree gchar *needle = g_utf8_casefold (text, -1);
      g_autofree gchar *wo = g_utf8_casefold (b->work_order, -1);
      g_autofree gchar *product = g_utf8_casefold (b->product, -1);
      return strstr (wo, needle) != NULL || strstr (product, needle) != NULL;
    }
  return TRUE;
}

static void
st_batches_view_apply_filter (StBatchesView *self)
{
  gtk_list_box_invalidate_filter (self->batch_list);
}

static void
st_batches_view_on_stats (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(StBatchesView) self = user_data;
  g_autoptr(GError) error = NULL;
  StShiftStats *stats = st_station_shift_stats_finish (self->ctx.station, result, &error);
  if (stats == NULL && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    st_gui_status (self->status_label, error->message, TRUE);
  if (stats != NULL || self->ctx.session == NULL)
    st_shift_chart_set_stats (self->chart, stats);
  if (stats != NULL && st_gui_figures_on ())
    {
      g_autofree gchar *what = g_strdup_printf ("the shift chart (%u done, %u failed) drawn from its reply",
                                                stats->done, stats->failed);
      st_gui_figure (what, self->stats_asked);
    }
}

static void
st_batches_view_on_selected (StBatchesView *self)
{
  StBatchInfo *b = st_batches_view_selected (self);
  gtk_widget_set_sensitive (GTK_WIDGET (self->close_button), b != NULL && g_strcmp0 (b->state, "open") == 0);
  gtk_widget_set_sensitive (GTK_WIDGET (self->export_button), b != NULL);
  /* Issue 18: a Matter batch's labels and codes file are the lead's (the
   * service checks the role too: MatterCodesExport, MatterLabelsExport) */
  gboolean matter = b != NULL && b->matter && self->ctx.session != NULL
                    && (self->ctx.session->role & ST_ROLE_LEAD) != 0;
  gtk_widget_set_visible (GTK_WIDGET (self->matter_labels_button), matter);
  gtk_widget_set_visible (GTK_WIDGET (self->matter_codes_button), matter);
  if (b == NULL || self->ctx.session == NULL)
    return;
  self->stats_asked = g_get_monotonic_time ();
  st_station_shift_stats_async (self->ctx.station, b->id, 12, self->ctx.cancellable,
                                st_batches_view_on_stats, g_object_ref (self));
}

/* Issue 17: a scanned work order selects its batch, looked up in the list
 * the service has just sent (a batch made a moment ago by the CLI is
 * there): the open batch with that work order, the newest if several,
 * else the newest closed one. The filter and the search are cleared when
 * they would hide it. Returns the id to select (0 when none), with
 * *@message what the status line says. */
static gint64
st_batches_view_scanned (StBatchesView *self, GPtrArray *list, const char *wo, gchar **message)
{
  StBatchInfo *b = st_scan_find_batch (list, wo, TRUE);
  if (b == NULL)
    {
      *message = st_scan_no_batch_message (wo, TRUE);
      gtk_entry_set_text (self->scan_entry, wo);
      gtk_editable_select_region (GTK_EDITABLE (self->scan_entry), 0, -1);
      return 0; /* the old selection stays */
    }
  g_autofree gchar *quoted = st_text_escape (wo, -1, ST_TEXT_ONE_LINE);
  const char *state = gtk_combo_box_get_active_id (GTK_COMBO_BOX (self->filter_combo));
  if (state != NULL && g_strcmp0 (state, "all") != 0 && g_strcmp0 (state, b->state) != 0)
    gtk_combo_box_set_active_id (GTK_COMBO_BOX (self->filter_combo), "all");
  if (*gtk_entry_get_text (GTK_ENTRY (self->search_entry)) != '\0')
    gtk_entry_set_text (GTK_ENTRY (self->search_entry), "");
  *message = g_strcmp0 (b->state, "open") == 0
             ? g_strdup_printf (_("Work order %s: batch %" PRId64 " selected."), quoted, b->id)
             : g_strdup_printf (_("Work order %s: batch %" PRId64 " selected; it is closed (no "
                                  "open batch has this work order)."), quoted, b->id);
  return b->id;
}

static void
st_batches_view_on_scan (StBatchesView *self)
{
  g_autofree gchar *message = NULL;
  g_autofree gchar *wo = st_scan_read (gtk_entry_get_text (self->scan_entry), ST_SCAN_WORK_ORDER, &message);
  if (wo == NULL)
    {
      st_gui_status (self->status_label, message, TRUE);
      gtk_editable_select_region (GTK_EDITABLE (self->scan_entry), 0, -1);
      return;
    }
  gtk_entry_set_text (self->scan_entry, "");
  g_free (self->scanned_wo);
  self->scanned_wo = g_steal_pointer (&wo);
  st_batches_view_refresh (self);
}

static void
st_batches_view_on_batches (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(StBatchesView) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) list = st_station_list_batches_finish (self->ctx.station, result, &error);
  /* a scan is looked up in this list, or dropped with it when it failed */
  g_autofree gchar *scanned = g_steal_pointer (&self->scanned_wo);
  if (st_gui_failed (error, self->status_label))
    return;
  StBatchInfo *old = st_batches_view_selected (self);
  gint64 keep = self->select_after_refresh > 0 ? self->select_after_refresh : old != NULL ? old->id : 0;
  self->select_after_refresh = 0;
  g_autofree gchar *scan_message = NULL;
  gboolean scan_found = FALSE;
  if (scanned != NULL)
    {
      gint64 id = st_batches_view_scanned (self, list, scanned, &scan_message);
      if (id > 0)
        keep = id;
      scan_found = id > 0;
    }
  st_gui_list_clear (self->batch_list);
  GtkWidget *select = NULL;
  for (guint i = 0; i < list->len; i++)
    {
      StBatchInfo *b = g_ptr_array_index (list, i);
      g_autofree gchar *text = g_strdup_printf (_("Batch %" PRId64 "  %-8s  %s  %s  %" PRId64
                                                " of %" PRId64 " done, %" PRId64 " failed"),
                                                b->id, b->state, b->work_order, b->product, b->n_done,
                                                b->quantity, b->n_failed);
      g_autofree gchar *name = g_strdup_printf (_("Batch %" PRId64 " %s"), b->id, b->work_order);
      gboolean kept = b->id == keep;
      GtkWidget *row = st_gui_list_add (self->batch_list, text, name, 6, "st-batch",
                                        g_ptr_array_steal_index (list, i), (GDestroyNotify) st_batch_info_free);
      i--;
      if (kept)
        select = row;
    }
  if (select != NULL)
    gtk_list_box_select_row (self->batch_list, GTK_LIST_BOX_ROW (select));
  st_batches_view_on_selected (self);
  if (scan_message != NULL)
    st_gui_status (self->status_label, scan_message, !scan_found);
  st_gui_figure ("the batches listed", self->listed_asked);
}

void
st_batches_view_refresh (StBatchesView *self)
{
  if (self->ctx.session == NULL)
    return;
  self->listed_asked = g_get_monotonic_time ();
  st_station_list_batches_async (self->ctx.station, self->ctx.cancellable,
                                 st_batches_view_on_batches, g_object_ref (self));
}

static void
st_batches_view_on_profiles (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(StBatchesView) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) list = st_station_list_profiles_finish (self->ctx.station, result, &error);
  if (st_gui_failed (error, self->status_label))
    return;
  g_clear_pointer (&self->profiles, g_ptr_array_unref);
  self->profiles = g_steal_pointer (&list);
  gtk_combo_box_text_remove_all (self->profile_combo);
  for (guint i = 0; i < self->profiles->len; i++)
    {
      StProfileEntry *e = g_ptr_array_index (self->profiles, i);
      g_autofree gchar *base = g_strdup (e->name);
      char *dot = strrchr (base, '.');
      if (dot != NULL && dot != base)
        *dot = '\0';
      /* one that does not load stays listed, saying so: the lead learns why at once */
      g_autofree gchar *text = e->text != NULL ? g_strdup (base) : g_strdup_printf (_("%s (does not load)"), base);
      g_autofree gchar *id = g_strdup_printf ("%u", i);
      gtk_combo_box_text_append (self->profile_combo, id, text);
    }
  /* Issue 17: none preselected, the lead picks the product */
  gtk_combo_box_set_active (GTK_COMBO_BOX (self->profile_combo), -1);
  if (self->profiles->len == 0)
    st_gui_status (self->status_label, _("No product profile in this station's profile folder: an admin copies "
                   "a .profile file into the profiles folder of the station home."), TRUE);
}

static void
st_batches_view_on_created (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(StBatchesView) self = user_data;
  g_autoptr(GError) error = NULL;
  gtk_widget_set_sensitive (GTK_WIDGET (self->create_button), TRUE);
  gint64 id = st_station_create_batch_finish (self->ctx.station, result, &error);
  if (id <= 0)
    {
      st_gui_status (self->status_label, error->message, TRUE);
      return;
    }
  g_autofree gchar *msg = g_strdup_printf (_("Batch %" PRId64 " created."), id);
  st_gui_status (self->status_label, msg, FALSE);
  gtk_entry_set_text (self->wo_entry, "");
  self->select_after_refresh = id;
  st_batches_view_refresh (self);
}

static void
st_batches_view_on_create (StBatchesView *self)
{
  const char *id = gtk_combo_box_get_active_id (GTK_COMBO_BOX (self->profile_combo));
  const char *wo = gtk_entry_get_text (self->wo_entry);
  guint64 index = id != NULL ? g_ascii_strtoull (id, NULL, 10) : G_MAXUINT64;
  StProfileEntry *profile = self->profiles != NULL && index < self->profiles->len
                            ? g_ptr_array_index (self->profiles, index) : NULL;
  if (profile == NULL || *wo == '\0')
    {
      st_gui_status (self->status_label, _("Pick a product profile and give the work order."), TRUE);
      return;
    }
  if (profile->text == NULL)
    {
      g_autofree gchar *msg = g_strdup_printf (_("The profile %s does not load: %s"), profile->path,
                                               profile->error != NULL ? profile->error : _("unknown reason"));
      st_gui_status (self->status_label, msg, TRUE);
      return;
    }
  gtk_widget_set_sensitive (GTK_WIDGET (self->create_button), FALSE);
  st_station_create_batch_async (self->ctx.station, profile->path, profile->text, wo,
                                 gtk_spin_button_get_value_as_int (self->qty_spin), self->ctx.cancellable,
                                 st_batches_view_on_created, g_object_ref (self));
}

static void
st_batches_view_on_closed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(StBatchesView) self = user_data;
  g_autoptr(GError) error = NULL;
  if (!st_station_close_batch_finish (self->ctx.station, result, &error))
    st_gui_status (self->status_label, error->message, TRUE);
  else
    st_gui_status (self->status_label, _("Batch closed."), FALSE);
  st_batches_view_refresh (self);
}

/* Issue 17: a batch with units left is closed only after the lead says so.
 * A closed batch is never reopened (docs/architecture.md, "Batches"): its
 * manifest may be out and signed already, so the remaining units go into a
 * new batch. Cancel is the default answer; TRUE when the lead confirmed or
 * nothing is left. The batch's figures are copied first: the list may be
 * refreshed (and its rows freed) while the dialog is up. */
static gboolean
st_batches_view_confirm_close (StBatchesView *self, const StBatchInfo *b)
{
  gint64 left = b->quantity - b->n_done;
  if (left <= 0)
    return TRUE;
  gint64 id = b->id, done = b->n_done, quantity = b->quantity;
  g_autofree gchar *wo = st_text_escape (b->work_order, -1, ST_TEXT_ONE_LINE);
  GtkWidget *toplevel = gtk_widget_get_toplevel (GTK_WIDGET (self));
  GtkWidget *dialog = gtk_message_dialog_new (GTK_IS_WINDOW (toplevel) ? GTK_WINDOW (toplevel) : NULL,
                                              GTK_DIALOG_MODAL, GTK_MESSAGE_WARNING, GTK_BUTTONS_NONE,
                                              _("Close batch %" PRId64 " (%s) with %" PRId64
                                              " of its %" PRId64 " units left?"),
                                              id, wo, left, quantity);
  gtk_message_dialog_format_secondary_text (GTK_MESSAGE_DIALOG (dialog),
                                            _("%" PRId64 " of %" PRId64 " units are done, %"
                                            PRId64 " left. A closed batch cannot be reopened: the "
                                            "units left would need a new batch."), done, quantity, left);
  gtk_dialog_add_buttons (GTK_DIALOG (dialog), _("Cancel"), GTK_RESPONSE_CANCEL,
                          _("Close the batch"), GTK_RESPONSE_ACCEPT, NULL);
  gtk_dialog_set_default_response (GTK_DIALOG (dialog), GTK_RESPONSE_CANCEL);
  gtk_widget_grab_focus (gtk_dialog_get_widget_for_response (GTK_DIALOG (dialog), GTK_RESPONSE_CANCEL));
  gtk_window_set_title (GTK_WINDOW (dialog), _("Close the batch?"));
  int response = gtk_dialog_run (GTK_DIALOG (dialog));
  gtk_widget_destroy (dialog);
  return response == GTK_RESPONSE_ACCEPT;
}

static void
st_batches_view_on_close (StBatchesView *self)
{
  StBatchInfo *b = st_batches_view_selected (self);
  if (b == NULL)
    return;
  gint64 id = b->id;
  if (!st_batches_view_confirm_close (self, b))
    {
      st_gui_status (self->status_label, _("The batch stays open."), FALSE);
      return;
    }
  gtk_widget_set_sensitive (GTK_WIDGET (self->close_button), FALSE);
  st_station_close_batch_async (self->ctx.station, id, self->ctx.cancellable,
                                st_batches_view_on_closed, g_object_ref (self));
}

static void
st_batches_view_on_browse (StBatchesView *self)
{
  g_autofree gchar *dir = st_gui_choose (GTK_WIDGET (self), _("Export the manifest to"),
                                         GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER, _("Export here"), TRUE, NULL, NULL);
  if (dir != NULL)
    gtk_entry_set_text (self->export_entry, dir);
}

static void
st_batches_view_on_drive (StBatchesView *self)
{
  const char *root = gtk_combo_box_get_active_id (GTK_COMBO_BOX (self->drive_combo));
  StBatchInfo *b = st_batches_view_selected (self);
  if (root == NULL || *root == '\0')
    return;
  g_autofree gchar *sub = g_strdup_printf ("manifest-%s", b != NULL ? b->work_order : "batch");
  g_autofree gchar *dir = g_build_filename (root, sub, NULL);
  gtk_entry_set_text (self->export_entry, dir);
}

/* Removable drives: the mounts GIO's volume monitor shows to users (with
 * udisks/gvfs: USB sticks, SD cards), and the plain mounts under /media
 * and /run/media/$USER that an admin or usbmount makes on a station
 * without udisks, which the unix volume monitor hides when their file
 * system type looks internal (tmpfs, say). The combo's id is the mount's
 * root path; the free space is filled in when GIO's query comes back. */
static gboolean
st_batches_view_is_media_path (const char *path)
{
  g_autofree gchar *user_media = g_build_filename ("/run/media", g_get_user_name (), NULL);
  return (g_str_has_prefix (path, "/media/") && path[strlen ("/media/")] != '\0') ||
         (g_str_has_prefix (path, user_media) && path[strlen (user_media)] == '/' &&
          path[strlen (user_media) + 1] != '\0');
}

static void
st_batches_view_add_drive (StBatchesView *self, GHashTable *seen, const char *path, const char *name,
                           gboolean read_only)
{
  if (!g_hash_table_add (seen, g_strdup (path)))
    return;
  g_autofree gchar *text = read_only ? g_strdup_printf (_("%s (%s), read-only"), name, path)
                                      : g_strdup_printf ("%s (%s)", name, path);
  gtk_combo_box_text_append (self->drive_combo, path, text);
}

static void
st_batches_view_on_drive_free (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(StBatchesView) self = user_data;
  g_autoptr(GFileInfo) info = g_file_query_filesystem_info_finish (G_FILE (source), result, NULL);
  if (info == NULL || !g_file_info_has_attribute (info, G_FILE_ATTRIBUTE_FILESYSTEM_FREE))
    return; /* cancelled (the list changed), or the drive is gone: no figure shown */
  g_autofree gchar *path = g_file_get_path (G_FILE (source));
  g_autofree gchar *size =
    st_gui_format_size (g_file_info_get_attribute_uint64 (info, G_FILE_ATTRIBUTE_FILESYSTEM_FREE));
  GtkTreeModel *model = gtk_combo_box_get_model (GTK_COMBO_BOX (self->drive_combo));
  gint id_column = gtk_combo_box_get_id_column (GTK_COMBO_BOX (self->drive_combo));
  gint text_column = gtk_combo_box_get_entry_text_column (GTK_COMBO_BOX (self->drive_combo));
  GtkTreeIter iter;
  for (gboolean ok = gtk_tree_model_get_iter_first (model, &iter); ok; ok = gtk_tree_model_iter_next (model, &iter))
    {
      g_autofree gchar *id = NULL;
      g_autofree gchar *text = NULL;
      gtk_tree_model_get (model, &iter, id_column, &id, text_column, &text, -1);
      if (g_strcmp0 (id, path) != 0 || text == NULL)
        continue;
      g_autofree gchar *with_free = g_strdup_printf (_("%s, %s free"), text, size);
      gtk_list_store_set (GTK_LIST_STORE (model), &iter, text_column, with_free, -1);
      return;
    }
}

static void
st_batches_view_update_drives (StBatchesView *self)
{
  g_autofree gchar *chosen = g_strdup (gtk_combo_box_get_active_id (GTK_COMBO_BOX (self->drive_combo)));
  g_cancellable_cancel (self->drives_cancellable);
  g_clear_object (&self->drives_cancellable);
  self->drives_cancellable = g_cancellable_new ();
  g_signal_handlers_block_by_func (self->drive_combo, st_batches_view_on_drive, self);
  gtk_combo_box_text_remove_all (self->drive_combo);
  gtk_combo_box_text_append (self->drive_combo, "", _("Removable drive…"));
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  GList *mounts = g_volume_monitor_get_mounts (self->volumes);
  for (GList *l = mounts; l != NULL; l = l->next)
    {
      GMount *m = l->data;
      g_autoptr(GDrive) drive = g_mount_get_drive (m);
      if (!(g_mount_can_unmount (m) || g_mount_can_eject (m)) &&
          (drive == NULL || !g_drive_is_removable (drive)))
        continue;
      g_autoptr(GFile) root = g_mount_get_root (m);
      g_autofree gchar *path = g_file_get_path (root);
      g_autofree gchar *name = g_mount_get_name (m);
      if (path != NULL)
        st_batches_view_add_drive (self, seen, path, name, FALSE);
    }
  g_list_free_full (mounts, g_object_unref);

  GList *entries = g_unix_mounts_get (NULL);
  for (GList *l = entries; l != NULL; l = l->next)
    {
      GUnixMountEntry *e = l->data;
      const char *path = g_unix_mount_get_mount_path (e);
      if (!st_batches_view_is_media_path (path))
        continue;
      g_autofree gchar *name = g_unix_mount_guess_name (e);
      st_batches_view_add_drive (self, seen, path, name, g_unix_mount_is_readonly (e));
    }
  g_list_free_full (entries, (GDestroyNotify) g_unix_mount_free);

  guint n = g_hash_table_size (seen);
  GHashTableIter it;
  gpointer path;
  g_hash_table_iter_init (&it, seen);
  while (g_hash_table_iter_next (&it, &path, NULL))
    {
      g_autoptr(GFile) root = g_file_new_for_path (path);
      g_file_query_filesystem_info_async (root, G_FILE_ATTRIBUTE_FILESYSTEM_FREE, G_PRIORITY_DEFAULT,
                                          self->drives_cancellable, st_batches_view_on_drive_free,
                                          g_object_ref (self));
    }

  /* The drive chosen is still there: keep it. Gone: an export into it
   * would fail, so the folder is cleared and the lead told why. */
  gboolean kept = chosen != NULL && *chosen != '\0' && g_hash_table_contains (seen, chosen);
  gtk_combo_box_set_active_id (GTK_COMBO_BOX (self->drive_combo), kept ? chosen : "");
  g_signal_handlers_unblock_by_func (self->drive_combo, st_batches_view_on_drive, self);
  gtk_widget_set_sensitive (GTK_WIDGET (self->drive_combo), n > 0);
  if (chosen != NULL && *chosen != '\0' && !kept)
    {
      const char *dir = gtk_entry_get_text (self->export_entry);
      if (g_str_has_prefix (dir, chosen) && (dir[strlen (chosen)] == '/' || dir[strlen (chosen)] == '\0'))
        gtk_entry_set_text (self->export_entry, "");
      g_autofree gchar *msg = g_strdup_printf (_("The drive at %s was removed: choose another folder or drive."),
                                               chosen);
      st_gui_status (self->status_label, msg, TRUE);
    }
}

static gboolean
st_batches_view_drives_idle (gpointer data)
{
  StBatchesView *self = data;
  self->drives_idle = 0;
  st_batches_view_update_drives (self);
  return G_SOURCE_REMOVE;
}

/* A drive comes or goes: the volume monitor and the mount monitor both say
 * so; the list is rebuilt once, when the main loop is idle. */
static void
st_batches_view_queue_drives (StBatchesView *self)
{
  if (self->drives_idle == 0)
    self->drives_idle = g_idle_add (st_batches_view_drives_idle, self);
}

static void
st_batches_view_on_mounts_changed (GVolumeMonitor *monitor, GMount *mount, StBatchesView *self)
{
  st_batches_view_queue_drives (self);
}

static void
st_batches_view_on_unix_mounts_changed (GUnixMountMonitor *monitor, StBatchesView *self)
{
  st_batches_view_queue_drives (self);
}

static void
st_batches_view_on_export_progress (double fraction, const char *what, gpointer user_data)
{
  StBatchesView *self = user_data;
  gtk_progress_bar_set_fraction (self->export_progress, fraction);
  gtk_progress_bar_set_text (self->export_progress, what);
}

static void
st_batches_view_on_exported (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(StBatchesView) self = user_data;
  g_autoptr(GError) error = NULL;
  gtk_widget_set_sensitive (GTK_WIDGET (self->export_button), TRUE);
  if (!st_station_export_manifest_finish (self->ctx.station, result, &error))
    {
      gtk_progress_bar_set_fraction (self->export_progress, 0);
      gtk_progress_bar_set_text (self->export_progress, _("export failed"));
      st_gui_status (self->status_label, error->message, TRUE);
      return;
    }
  g_autofree gchar *msg = g_strdup_printf (_("Manifest exported to %s and verified."),
                                           gtk_entry_get_text (self->export_entry));
  st_gui_status (self->status_label, msg, FALSE);
  st_batches_view_update_drives (self); /* the drive's free space now */
}

static void
st_batches_view_on_export (StBatchesView *self)
{
  StBatchInfo *b = st_batches_view_selected (self);
  const char *dir = gtk_entry_get_text (self->export_entry);
  if (b == NULL || *dir == '\0')
    {
      st_gui_status (self->status_label, _("Choose a batch and a folder (or a removable drive) first."), TRUE);
      return;
    }
  gtk_widget_set_sensitive (GTK_WIDGET (self->export_button), FALSE);
  st_batches_view_on_export_progress (0, "starting", self);
  st_station_export_manifest_async (self->ctx.station, b->id, dir,
                                    st_batches_view_on_export_progress, self, self->ctx.cancellable,
                                    st_batches_view_on_exported, g_object_ref (self));
}

/* ---- a Matter batch's labels and codes file (issue 18) ----
 *
 * Into a folder the lead chooses, never replacing a file there; every file
 * is made 0600 (st_client_save_private_pack). The codes file holds the
 * setup passcodes: the status says so. */

typedef struct {
  StBatchesView *self;
  gboolean labels;
  gint64 batch_id;
  gchar *dir;
} StMatterExportCall;

static void
st_matter_export_call_free (StMatterExportCall *call)
{
  g_object_unref (call->self);
  g_free (call->dir);
  g_free (call);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StMatterExportCall, st_matter_export_call_free)

static void
st_batches_view_matter_sensitive (StBatchesView *self, gboolean on)
{
  gtk_widget_set_sensitive (GTK_WIDGET (self->matter_labels_button), on);
  gtk_widget_set_sensitive (GTK_WIDGET (self->matter_codes_button), on);
}

static void
st_batches_view_on_matter_exported (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(StMatterExportCall) call = user_data;
  StBatchesView *self = call->self;
  g_autoptr(GError) error = NULL;
  g_autoptr(StMatterExport) e = st_station_export_matter_finish (self->ctx.station, result, &error);
  st_batches_view_matter_sensitive (self, TRUE);
  if (e == NULL)
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
      g_autofree gchar *msg = call->labels
        ? g_strdup_printf (_("The labels of batch %" PRId64 " were not exported: %s"), call->batch_id,
                           error->message)
        : g_strdup_printf (_("The Matter codes of batch %" PRId64 " were not exported: %s"), call->batch_id,
                           error->message);
      st_gui_status (self->status_label, msg, TRUE);
      return;
    }
  g_autofree gchar *dir = st_text_escape (call->dir, -1, ST_TEXT_ONE_LINE);
  g_autofree gchar *msg = NULL;
  if (call->labels)
    msg = g_strdup_printf (ngettext ("%u label of batch %" PRId64 " (PNG, PDF and ZPL) written to %s.",
                                        "%u labels of batch %" PRId64 " (PNG, PDF and ZPL each) written to %s.",
                                        e->units),
                           e->units, call->batch_id, dir);
  else
    msg = g_strdup_printf (ngettext ("The Matter codes of %u unit of batch %" PRId64 " written to "
                                        "%s/matter-codes.csv (readable by you alone, SHA-256 %s, recorded in "
                                        "the audit log). It holds the setup passcodes: keep it safe, and "
                                        "give it only to those who pair the devices.",
                                        "The Matter codes of %u units of batch %" PRId64 " written to "
                                        "%s/matter-codes.csv (readable by you alone, SHA-256 %s, recorded in "
                                        "the audit log). It holds the setup passcodes: keep it safe, and "
                                        "give it only to those who pair the devices.", e->units),
                           e->units, call->batch_id, dir, e->sha256 != NULL ? e->sha256 : "-");
  st_gui_status (self->status_label, msg, FALSE);
  st_batches_view_update_drives (self); /* the drive's free space now */
}

static void
st_batches_view_matter_export (StBatchesView *self, gboolean labels)
{
  StBatchInfo *b = st_batches_view_selected (self);
  if (b == NULL || !b->matter || self->ctx.session == NULL)
    return;
  gint64 id = b->id;
  /* it opens in the export folder, else the user's home */
  g_autofree gchar *dir = st_gui_choose (GTK_WIDGET (self),
                                         labels ? _("Export the batch's labels to") : _("Export the Matter codes to"),
                                         GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER, _("Export here"), TRUE,
                                         gtk_entry_get_text (self->export_entry), NULL);
  if (dir == NULL || self->ctx.session == NULL)
    return; /* cancelled, or logged out meanwhile */
  StMatterExportCall *call = g_new0 (StMatterExportCall, 1);
  call->self = g_object_ref (self);
  call->labels = labels;
  call->batch_id = id;
  call->dir = g_strdup (dir);
  st_batches_view_matter_sensitive (self, FALSE);
  g_autofree gchar *shown = st_text_escape (dir, -1, ST_TEXT_ONE_LINE);
  g_autofree gchar *msg = labels ? g_strdup_printf (_("Exporting the labels of batch %" PRId64 " to %s…"), id, shown)
                                 : g_strdup_printf (_("Exporting the Matter codes of batch %" PRId64 " to %s…"), id,
                                                    shown);
  st_gui_status (self->status_label, msg, FALSE);
  if (labels)
    st_station_export_matter_labels_async (self->ctx.station, id, dir, self->ctx.cancellable,
                                           st_batches_view_on_matter_exported, call);
  else
    st_station_export_matter_codes_async (self->ctx.station, id, dir, self->ctx.cancellable,
                                          st_batches_view_on_matter_exported, call);
}

static void
st_batches_view_on_matter_labels (StBatchesView *self)
{
  st_batches_view_matter_export (self, TRUE);
}

static void
st_batches_view_on_matter_codes (StBatchesView *self)
{
  st_batches_view_matter_export (self, FALSE);
}

static void
st_batches_view_dispose (GObject *object)
{
  StBatchesView *self = ST_BATCHES_VIEW (object);
  st_gui_context_clear (&self->ctx);
  if (self->volumes != NULL)
    g_signal_handlers_disconnect_by_data (self->volumes, self);
  g_clear_object (&self->volumes);
  if (self->unix_mounts != NULL)
    g_signal_handlers_disconnect_by_data (self->unix_mounts, self);
  g_clear_object (&self->unix_mounts);
  g_clear_handle_id (&self->drives_idle, g_source_remove);
  g_cancellable_cancel (self->drives_cancellable);
  g_clear_object (&self->drives_cancellable);
  g_clear_pointer (&self->profiles, g_ptr_array_unref);
  g_clear_pointer (&self->scanned_wo, g_free);
  G_OBJECT_CLASS (st_batches_view_parent_class)->dispose (object);
}

static void
st_batches_view_class_init (StBatchesViewClass *klass)
{
  GtkWidgetClass *wc = GTK_WIDGET_CLASS (klass);
  G_OBJECT_CLASS (klass)->dispose = st_batches_view_dispose;
  gtk_widget_class_set_template_from_resource (wc, "/org/station/gui/st-batches-view.ui");
#define BIND(x) gtk_widget_class_bind_template_child (wc, StBatchesView, x)
  BIND (filter_combo); BIND (drive_combo); BIND (profile_combo); BIND (search_entry); BIND (batch_list);
  BIND (close_button); BIND (export_button); BIND (create_button); BIND (export_entry); BIND (wo_entry);
  BIND (qty_spin); BIND (export_progress); BIND (status_label); BIND (chart_box); BIND (scan_entry);
  BIND (matter_labels_button); BIND (matter_codes_button);
#undef BIND
  gtk_widget_class_bind_template_callback (wc, st_batches_view_apply_filter);
  gtk_widget_class_bind_template_callback (wc, st_batches_view_refresh);
  gtk_widget_class_bind_template_callback (wc, st_batches_view_on_selected);
  gtk_widget_class_bind_template_callback (wc, st_batches_view_on_close);
  gtk_widget_class_bind_template_callback (wc, st_batches_view_on_browse);
  gtk_widget_class_bind_template_callback (wc, st_batches_view_on_drive);
  gtk_widget_class_bind_template_callback (wc, st_batches_view_on_export);
  gtk_widget_class_bind_template_callback (wc, st_batches_view_on_create);
  gtk_widget_class_bind_template_callback (wc, st_batches_view_on_scan);
  gtk_widget_class_bind_template_callback (wc, st_batches_view_on_matter_labels);
  gtk_widget_class_bind_template_callback (wc, st_batches_view_on_matter_codes);
}

static void
st_batches_view_init (StBatchesView *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  st_gui_context_init (&self->ctx);
  self->chart = ST_SHIFT_CHART (st_shift_chart_new ());
  gtk_widget_show (GTK_WIDGET (self->chart));
  gtk_box_pack_start (self->chart_box, GTK_WIDGET (self->chart), TRUE, TRUE, 0);
  gtk_list_box_set_filter_func (self->batch_list, st_batches_view_filter, self, NULL);
  st_gui_name (GTK_WIDGET (self->filter_combo), _("Batch state filter"));
  st_gui_name (GTK_WIDGET (self->search_entry), _("Search batches"));
  st_gui_name (GTK_WIDGET (self->batch_list), _("Batches"));
  st_gui_name (GTK_WIDGET (self->export_entry), _("Export folder"));
  st_gui_name (GTK_WIDGET (self->drive_combo), _("Removable drive"));
  st_gui_name (GTK_WIDGET (self->export_progress), _("Export progress"));
  st_gui_name (GTK_WIDGET (self->status_label), _("Batches status"));
  st_gui_name (GTK_WIDGET (self->profile_combo), _("Product profile"));
  st_gui_name (GTK_WIDGET (self->wo_entry), _("New work order"));
  st_gui_name (GTK_WIDGET (self->qty_spin), _("Quantity"));
  st_scan_entry_setup (self->scan_entry, _("Scan work order"));
  self->volumes = g_volume_monitor_get ();
  g_signal_connect (self->volumes, "mount-added", G_CALLBACK (st_batches_view_on_mounts_changed), self);
  g_signal_connect (self->volumes, "mount-removed", G_CALLBACK (st_batches_view_on_mounts_changed), self);
  self->unix_mounts = g_unix_mount_monitor_get ();
  g_signal_connect (self->unix_mounts, "mounts-changed", G_CALLBACK (st_batches_view_on_unix_mounts_changed), self);
  st_batches_view_update_drives (self);
}

GtkWidget *
st_batches_view_new (void)
{
  return g_object_new (ST_TYPE_BATCHES_VIEW, NULL);
}

void
st_batches_view_set_session (GtkWidget *view, StStation *station, const StAuthSession *session)
{
  StBatchesView *self = ST_BATCHES_VIEW (view);
  if (!st_gui_context_set (&self->ctx, station, session))
    {
      st_shift_chart_set_stats (self->chart, NULL);
      gtk_label_set_text (self->status_label, "");
      st_batches_view_on_selected (self); /* no session: the lead's Matter buttons go */
      return;
    }
  st_station_list_profiles_async (station, self->ctx.cancellable, st_batches_view_on_profiles, g_object_ref (self));
  st_batches_view_refresh (self);
}
