#include "st-gui.h"

#include <glib/gi18n.h>

#include "st-text.h"

void
st_gui_name (GtkWidget *widget, const char *name)
{
  AtkObject *acc = gtk_widget_get_accessible (widget);
  if (acc != NULL)
    atk_object_set_name (acc, name);
  gtk_widget_set_tooltip_text (widget, name);
}

void
st_gui_status (GtkLabel *label, const char *message, gboolean error)
{
  /* A message of the service may quote a device (st-text.h). */
  g_autofree gchar *safe = st_text_escape (message != NULL ? message : "", -1, ST_TEXT_KEEP_NEWLINES);
  gtk_label_set_text (label, safe);
  GtkStyleContext *style = gtk_widget_get_style_context (GTK_WIDGET (label));
  if (error)
    gtk_style_context_add_class (style, "st-error");
  else
    gtk_style_context_remove_class (style, "st-error");
}

static gint64 st_gui_figures_started;
static GHashTable *st_gui_figures_printed; /* main thread only */

void
st_gui_figures_start (gint64 started_us)
{
  st_gui_figures_started = started_us;
}

gboolean
st_gui_figures_on (void)
{
  return st_gui_figures_started != 0;
}

void
st_gui_figure (const char *what, gint64 since_us)
{
  if (st_gui_figures_started == 0)
    return;
  gint64 from = since_us != 0 ? since_us : st_gui_figures_started;
  g_printerr ("station-gui: figure: %s: %.0f ms%s\n", what, (g_get_monotonic_time () - from) / 1000.0,
              since_us != 0 ? "" : " after start");
}

void
st_gui_figure_once (const char *what, gint64 since_us)
{
  if (st_gui_figures_started == 0)
    return;
  if (st_gui_figures_printed == NULL)
    st_gui_figures_printed = g_hash_table_new (g_str_hash, g_str_equal);
  if (g_hash_table_contains (st_gui_figures_printed, what))
    return;
  g_hash_table_add (st_gui_figures_printed, (gpointer) what); /* a string literal */
  st_gui_figure (what, since_us);
}

gchar *
st_gui_format_elapsed (gint64 usec)
{
  gint64 s = usec / G_USEC_PER_SEC;
  if (s < 60)
    return g_strdup_printf ("%" G_GINT64_FORMAT ".%01" G_GINT64_FORMAT " s", s,
                            (usec % G_USEC_PER_SEC) / 100000);
  return g_strdup_printf ("%" G_GINT64_FORMAT " min %02" G_GINT64_FORMAT " s", s / 60, s % 60);
}

gchar *
st_gui_format_size (guint64 bytes)
{
  return g_format_size (bytes);
}

void
st_gui_context_init (StGuiContext *ctx)
{
  ctx->cancellable = g_cancellable_new ();
}

gboolean
st_gui_context_set (StGuiContext *ctx, StStation *station, const StAuthSession *session)
{
  ctx->station = station;
  st_auth_session_free (ctx->session);
  ctx->session = st_auth_session_copy (session);
  if (session != NULL)
    return TRUE;
  g_cancellable_cancel (ctx->cancellable);
  g_object_unref (ctx->cancellable);
  ctx->cancellable = g_cancellable_new ();
  return FALSE;
}

void
st_gui_context_clear (StGuiContext *ctx)
{
  if (ctx->cancellable != NULL)
    g_cancellable_cancel (ctx->cancellable);
  g_clear_object (&ctx->cancellable);
  g_clear_pointer (&ctx->session, st_auth_session_free);
}

gboolean
st_gui_failed (const GError *error, GtkLabel *status)
{
  if (error == NULL)
    return FALSE;
  if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    st_gui_status (status, error->message, TRUE);
  return TRUE;
}

void
st_gui_list_clear (GtkListBox *list)
{
  GList *rows = gtk_container_get_children (GTK_CONTAINER (list));
  for (GList *l = rows; l != NULL; l = l->next)
    gtk_widget_destroy (l->data);
  g_list_free (rows);
}

GtkWidget *
st_gui_list_add (GtkListBox *list, const char *text, const char *name, guint margin,
                 const char *key, gpointer value, GDestroyNotify destroy)
{
  GtkWidget *row = gtk_list_box_row_new ();
  GtkWidget *label = gtk_label_new (text);
  gtk_label_set_xalign (GTK_LABEL (label), 0);
  gtk_widget_set_margin_top (label, (gint) margin);
  gtk_widget_set_margin_bottom (label, (gint) margin);
  gtk_container_add (GTK_CONTAINER (row), label);
  if (key != NULL)
    g_object_set_data_full (G_OBJECT (row), key, value, destroy);
  st_gui_name (row, name);
  gtk_widget_show_all (row);
  gtk_list_box_insert (list, row, -1);
  return row;
}


gchar *
st_gui_choose (GtkWidget *widget, const char *title, GtkFileChooserAction action, const char *accept,
               gboolean create_folders, const char *near, GtkFileFilter *filter)
{
  GtkWidget *toplevel = gtk_widget_get_toplevel (widget);
  GtkFileChooserNative *chooser =
    gtk_file_chooser_native_new (title, GTK_IS_WINDOW (toplevel) ? GTK_WINDOW (toplevel) : NULL, action, accept,
                                 _("Cancel"));
  GtkFileChooser *fc = GTK_FILE_CHOOSER (chooser);
  gtk_file_chooser_set_create_folders (fc, create_folders);
  if (filter != NULL)
    gtk_file_chooser_add_filter (fc, filter);
  if (near != NULL && (*near == '\0' || !gtk_file_chooser_set_current_folder (fc, near)))
    gtk_file_chooser_set_current_folder (fc, g_get_home_dir ());
  gchar *path = NULL;
  if (gtk_native_dialog_run (GTK_NATIVE_DIALOG (chooser)) == GTK_RESPONSE_ACCEPT)
    path = gtk_file_chooser_get_filename (fc);
  g_object_unref (chooser);
  return path;
}
