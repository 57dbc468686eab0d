/* One big tile per socket: state colour, current step, uid, elapsed time,
 * progress, failure reason, start/stop/retry. */
#pragma once

#include "st-gui.h"

G_BEGIN_DECLS

#define ST_TYPE_SOCKET_TILE (st_socket_tile_get_type ())
G_DECLARE_FINAL_TYPE (StSocketTile, st_socket_tile, ST, SOCKET_TILE, GtkBox)

typedef enum { ST_TILE_IDLE, ST_TILE_WORKING, ST_TILE_PASS, ST_TILE_FAIL } StTileState;

/* Signals: "start", "stop", "retry", "acknowledge" (no arguments). */
/* @name: the socket's name from the station's configuration ("A – left
 * fixture"), shown large with the port small under it; NULL or empty:
 * "Socket N". */
StSocketTile *st_socket_tile_new (guint index, const char *port, const char *name);
const char *st_socket_tile_get_port (StSocketTile *tile);
/* What the operator reads for the socket (the name, else the port), escaped. */
const char *st_socket_tile_get_name (StSocketTile *tile);
/* The uid of the device of the socket's last FAIL (NULL after a pass):
 * a new line skips it (LineStart's skip-uids) until Retry forgets it. */
const char *st_socket_tile_get_failed_uid (StSocketTile *tile);
void st_socket_tile_forget_failed_uid (StSocketTile *tile);
/* Whether the operator wants this socket running. */
gboolean st_socket_tile_get_enabled (StSocketTile *tile);
void st_socket_tile_set_enabled (StSocketTile *tile, gboolean enabled);
/* A FAIL that stays until the operator presses Acknowledge: the tile keeps
 * its verdict and its Start is off (the line view stops the socket). */
void st_socket_tile_hold (StSocketTile *tile);
gboolean st_socket_tile_get_held (StSocketTile *tile);
/* The socket was stopped by the operator while held: the acknowledgement
 * will not start it. */
void st_socket_tile_forget_resume (StSocketTile *tile);
/* Clears the hold (and a FAIL verdict); TRUE when the socket was held by a
 * failure of a running line and is to start again. */
gboolean st_socket_tile_acknowledge (StSocketTile *tile);
/* A unit entered a step: the step, the uid and the elapsed time show at once. */
void st_socket_tile_set_progress (StSocketTile *tile, const StUnitProgress *progress);
void st_socket_tile_set_result (StSocketTile *tile, const StUnitResult *result);
/* The socket gave up, or the line stopped. */
void st_socket_tile_set_problem (StSocketTile *tile, const char *message);
/* Waiting for a device (the socket was started: the last verdict is
 * cleared) or stopped (a verdict stays in view). */
void st_socket_tile_set_waiting (StSocketTile *tile, gboolean running);
/* Refreshes the elapsed time of a unit in progress. */
void st_socket_tile_tick (StSocketTile *tile);

G_END_DECLS
