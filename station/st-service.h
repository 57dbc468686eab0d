/* The D-Bus adapter over the engine (org.station.Station1.xml): sessions per
 * connection, one handler per method that calls the engine and returns what
 * it says, and the line's signals. No rule lives here: the engine checks
 * every role (st-engine.c). */
#pragma once

#include <gio/gio.h>

#include "st-engine.h"

G_BEGIN_DECLS

#define ST_SERVICE_BUS_NAME "org.station.Station1"
#define ST_SERVICE_OBJECT_PATH "/org/station/Station1"
/* The peer-to-peer socket of a private service, in its home. */
#define ST_SERVICE_SOCKET_NAME "stationd.sock"

typedef struct _StService StService;

/* @engine is borrowed and outlives the service. Sessions idle for
 * @idle_logout_s seconds end (0: the station's idle-logout setting). */
StService *st_service_new (StEngine *engine, guint idle_logout_s);
void st_service_free (StService *service);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StService, st_service_free)

/* Serves peer-to-peer connections at @address ("unix:path=..."): each
 * connection is a client and its session. */
gboolean st_service_listen (StService *service, const char *address, GError **error);
/* Exports the object on @bus and owns the well-known name there; @lost is
 * called when the name is lost (another service owns it). */
gboolean st_service_own_name (StService *service, GDBusConnection *bus, GCallback lost,
                              gpointer lost_data, GError **error);

/* How many sessions are open (for the status and the tests). */
guint st_service_get_n_sessions (StService *service);

G_END_DECLS
