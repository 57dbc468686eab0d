/* `batch run`: one worker thread per socket, all sharing one StLine (the HSM
 * session, serialised, and the database writer). A slow or dead socket never
 * holds up the others: each worker only waits on its own port. */
#pragma once

#include "st-line.h"

G_BEGIN_DECLS

/* Called on the worker thread after every unit (callers serialise output). */
typedef void (*StBatchUnitFunc) (const StUnitResult *result, gpointer user_data);
/* Called on the worker thread when a socket gives up (never opened, or no
 * new device within the idle time-out). */
typedef void (*StBatchPortFunc) (const char *port, const GError *error, gpointer user_data);

typedef struct {
  const char *const *ports;
  guint units_per_port;        /* 0 = until cancelled */
  guint idle_timeout_s;        /* a socket with no new device for this long gives up; 0 = never */
  guint poll_interval_ms;      /* HELLO polling between devices, default 200 */
  StBatchUnitFunc unit_func;
  StBatchPortFunc port_func;
  gpointer user_data;
} StBatchRunOptions;

typedef struct {
  guint passed, failed, refused, resumed;
  guint ports_failed;          /* sockets that gave up before their units were done */
} StBatchRunSummary;

/* Runs the line on every port until each has handled units_per_port devices,
 * gave up, or the line was cancelled. FALSE (with the reason) only when the
 * line stopped: a database write failed and nothing more was acknowledged. */
gboolean st_batch_run (StLine *line, const StBatchRunOptions *options,
                       StBatchRunSummary *summary, GError **error);

G_END_DECLS
