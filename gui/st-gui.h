/* Shared bits of station-gui. The GUI does no I/O and no SQL itself:
 * every action is a call to the station service through
 * station/st-client.h, which checks the role of the operator logged in on
 * this client's connection. */
#pragma once

#include <gtk/gtk.h>

#include "st-client.h"

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

/* What every view holds of the login: the station, the session (who is
 * logged in on the connection, for what the view shows: the service checks
 * the role itself), and the cancellable of the calls it started (cancelled
 * at logout). */
typedef struct {
  StStation *station;          /* borrowed from the window */
  StAuthSession *session;      /* a copy; NULL when logged out */
  GCancellable *cancellable;
} StGuiContext;

void st_gui_context_init (StGuiContext *ctx);
/* Takes the login; at logout (@session NULL) cancels the view's calls in
 * flight. TRUE when someone is logged in. */
gboolean st_gui_context_set (StGuiContext *ctx, StStation *station, const StAuthSession *session);
/* dispose/finalize: cancels and frees. */
void st_gui_context_clear (StGuiContext *ctx);

/* An _finish that failed: TRUE when @error is set, shown in @status unless
 * the call was cancelled (logout, closing). */
gboolean st_gui_failed (const GError *error, GtkLabel *status);

/* Lists: empties @list; a row of one left-aligned @text, found by @name,
 * carrying @key = @value (taken, freed with @destroy) before it is inserted,
 * so that a filter sees it. */
void st_gui_list_clear (GtkListBox *list);
GtkWidget *st_gui_list_add (GtkListBox *list, const char *text, const char *name, guint margin,
                            const char *key, gpointer value, GDestroyNotify destroy);

/* Figures for the GUI test and the bench, printed on stderr when main()
 * turned them on (STATION_GUI_STALL_REPORT set): how long after the
 * process started (@since_us 0) or after @since_us (g_get_monotonic_time)
 * @what happened. st_gui_figure_once prints only the first @what. */
void st_gui_figures_start (gint64 started_us);
gboolean st_gui_figures_on (void);
void st_gui_figure (const char *what, gint64 since_us);
void st_gui_figure_once (const char *what, gint64 since_us);

/* A modal file chooser over @widget's window: the path chosen, or NULL
 * when cancelled. @near: the folder it opens in (else the user's home, so
 * never "Recent", where no folder can be chosen); NULL: GTK's choice.
 * @filter (taken; may be NULL) limits what it shows. */
gchar *st_gui_choose (GtkWidget *widget, const char *title, GtkFileChooserAction action, const char *accept,
                      gboolean create_folders, const char *near, GtkFileFilter *filter);

G_END_DECLS
