/* The operator's line view: the batch header and one tile per socket. */
#pragma once

#include "st-gui.h"

G_BEGIN_DECLS

#define ST_TYPE_LINE_VIEW (st_line_view_get_type ())
G_DECLARE_FINAL_TYPE (StLineView, st_line_view, ST, LINE_VIEW, GtkBox)

/* Signal "line-finished": the line stopped (all units in flight finished or failed). */
GtkWidget *st_line_view_new (const char *const *ports);
void st_line_view_set_session (GtkWidget *view, StStation *station, const StAuthSession *session);
gboolean st_line_view_is_running (StLineView *self);
/* Stops every socket: the line's cancellable is cancelled, the units in
 * flight finish or fail safely; "line-finished" follows. */
void st_line_view_stop (StLineView *self);

G_END_DECLS
