/* Login: the operator list and a large PIN pad (the numeric keypad works). */
#pragma once

#include "st-gui.h"

G_BEGIN_DECLS

#define ST_TYPE_LOGIN_VIEW (st_login_view_get_type ())
G_DECLARE_FINAL_TYPE (StLoginView, st_login_view, ST, LOGIN_VIEW, GtkBox)

/* Signal "logged-in" (StAuthSession *session, borrowed for the emission). */
GtkWidget *st_login_view_new (void);
/* Loads the operator list; shows the HSM PIN row while the HSM is locked. */
void st_login_view_reset (StLoginView *self, StStation *station, const char *message);

G_END_DECLS
