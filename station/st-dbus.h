/* What the service and its clients share about the D-Bus API: the code
 * gdbus-codegen makes from org.station.Station1.xml, and the errors. */
#pragma once

#include <gio/gio.h>

#include "st-dbus-generated.h"

G_BEGIN_DECLS

#define ST_DBUS_NAME "org.station.Station1"
#define ST_DBUS_PATH "/org/station/Station1"
#define ST_DBUS_ERROR_PREFIX "org.station.Station1.Error."

/* Maps the ST_ERROR codes to org.station.Station1.Error.NAME both ways, so
 * that a client gets the service's ST_ERROR code and message. Idempotent. */
void st_dbus_register_errors (void);

/* A client's error from a call: the remote prefix taken off, and a
 * broken connection said in words. */
void st_dbus_error_clean (GError *error);

G_END_DECLS
