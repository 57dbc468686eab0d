/* Kiosk mode (station-gui --kiosk): the window covers the screen, has no
 * decoration and cannot be closed (the close button, Alt-F4, Ctrl+Q, the
 * window manager's close all end in a refused delete-event: st-window.c).
 * The one way out is Leave kiosk: an admin's name and PIN, checked here by
 * the service itself. */
#pragma once

#include "st-gui.h"

G_BEGIN_DECLS

/* Called once an admin proved their PIN: the window leaves kiosk mode. */
typedef void (*StKioskLeaveFunc) (GtkWindow *window, const char *admin);

/* Asks for an admin's name and PIN (a modal dialog over @window) and checks
 * them with the service over a connection of its own to @target: a Login
 * there, counted, locked out and audited as every login is, and ended at
 * once. The operator logged in on the window stays logged in. A wrong
 * PIN, an unknown name or an operator who is not an admin keeps the kiosk
 * (the dialog says why); an admin calls @leave. */
void st_kiosk_ask_leave (GtkWindow *window, const StClientTarget *target, StKioskLeaveFunc leave);

G_END_DECLS
