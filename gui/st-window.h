/* The main window: login, then the views the operator's role allows. */
#pragma once

#include "st-gui.h"

G_BEGIN_DECLS

#define ST_TYPE_WINDOW (st_window_get_type ())
G_DECLARE_FINAL_TYPE (StWindow, st_window, ST, WINDOW, GtkApplicationWindow)

/* @station is borrowed and must outlive the window. */
StWindow *st_window_new (GtkApplication *app, StStation *station, const char *const *ports);
/* The HSM was unlocked (or failed to): refresh the login screen. */
void st_window_show_login (StWindow *self, const char *message);

G_END_DECLS
