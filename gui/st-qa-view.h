/* QA: verify the unit in a socket (a result card), verify a manifest folder
 * (a readable report). */
#pragma once

#include "st-gui.h"

G_BEGIN_DECLS

#define ST_TYPE_QA_VIEW (st_qa_view_get_type ())
G_DECLARE_FINAL_TYPE (StQaView, st_qa_view, ST, QA_VIEW, GtkBox)

GtkWidget *st_qa_view_new (const char *const *ports);
void st_qa_view_set_session (GtkWidget *view, StStation *station, const StAuthSession *session);

G_END_DECLS
