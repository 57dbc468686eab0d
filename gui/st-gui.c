#include "st-gui.h"

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
  gtk_label_set_text (label, message != NULL ? message : "");
  GtkStyleContext *style = gtk_widget_get_style_context (GTK_WIDGET (label));
  if (error)
    gtk_style_context_add_class (style, "st-error");
  else
    gtk_style_context_remove_class (style, "st-error");
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
