/* The main window: login, then the views the operator's role allows. */
#pragma once

#include "st-gui.h"

G_BEGIN_DECLS

#define ST_TYPE_WINDOW (st_window_get_type ())
G_DECLARE_FINAL_TYPE (StWindow, st_window, ST, WINDOW, GtkApplicationWindow)

/* @station is borrowed and must outlive the window. */
StWindow *st_window_new (GtkApplication *app, StStation *station, const char *const *ports);
/* Kiosk mode, before the window is shown: full screen, no decoration, no
 * way to close it; "Leave kiosk" asks for an admin, checked by the service
 * at @target (st-kiosk.h). */
void st_window_set_kiosk (StWindow *self, const StClientTarget *target);
/* The HSM was unlocked (or failed to): refresh the login screen. */
void st_window_show_login (StWindow *self, const char *message);

G_END_DECLS
