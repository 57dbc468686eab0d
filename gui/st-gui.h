/* Shared bits of station-gui. The GUI does no I/O and no SQL itself:
 * every action goes through station/st-async.h. */
#pragma once

#include <gtk/gtk.h>

#include "st-async.h"

G_BEGIN_DECLS

/* The accessible name AT-SPI (and the GUI test) finds @widget by. */
void st_gui_name (GtkWidget *widget, const char *name);
/* Shows @message in @label, styled as an error when @error. */
void st_gui_status (GtkLabel *label, const char *message, gboolean error);
/* "12 s", "3 min 4 s". */
gchar *st_gui_format_elapsed (gint64 usec);
/* "1.2 GB" */
gchar *st_gui_format_size (guint64 bytes);
/* Every view: what the window gives it after a login (NULL session = logged out). */
typedef void (*StGuiSetSession) (GtkWidget *view, StStation *station, const StAuthSession *session);

G_END_DECLS
