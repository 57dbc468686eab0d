/* The shift lead's batches: list with filters, create, close, export the
 * manifest (folder or removable drive), the shift chart. */
#pragma once

#include "st-gui.h"

G_BEGIN_DECLS

#define ST_TYPE_BATCHES_VIEW (st_batches_view_get_type ())
G_DECLARE_FINAL_TYPE (StBatchesView, st_batches_view, ST, BATCHES_VIEW, GtkBox)

GtkWidget *st_batches_view_new (void);
void st_batches_view_set_session (GtkWidget *view, StStation *station, const StAuthSession *session);

G_END_DECLS
