/* Admin: station health (HSM, CA chain with days left, database, disk,
 * audit chain) and operators (add, unlock, change role). */
#pragma once

#include "st-gui.h"

G_BEGIN_DECLS

#define ST_TYPE_ADMIN_VIEW (st_admin_view_get_type ())
G_DECLARE_FINAL_TYPE (StAdminView, st_admin_view, ST, ADMIN_VIEW, GtkBox)

GtkWidget *st_admin_view_new (void);
void st_admin_view_set_session (GtkWidget *view, StStation *station, const StAuthSession *session);

G_END_DECLS
