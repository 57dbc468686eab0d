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

/* Per-socket control of a running line (the GUI): start one socket's
 * worker into the running line, stop one, retry one, while the others go
 * on. Thread-safe and non-blocking; reference counted. */
typedef struct _StBatchControl StBatchControl;

StBatchControl *st_batch_control_new (void);
StBatchControl *st_batch_control_ref (StBatchControl *control);
void st_batch_control_unref (StBatchControl *control);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StBatchControl, st_batch_control_unref)

/* Starts @port's worker for @units devices (0: until stopped) unless it is
 * running; a socket that is still stopping starts again once its unit in
 * flight ended. FALSE when the run already ended (start a new one). */
gboolean st_batch_control_start_port (StBatchControl *control, const char *port, guint units);
/* Stops @port's worker through its own cancellable: the unit in flight
 * fails safely by the pipeline's rules (nothing acknowledged before
 * COMMIT, the failure recorded, the certificate voided or, after a COMMIT
 * without answer, kept unconfirmed). The other sockets go on. */
void st_batch_control_stop_port (StBatchControl *control, const char *port);
/* Runs the device in @port again although it is the one just handled
 * (after a failure: a worker only takes a new uid otherwise); starts the
 * worker for @units when it ended. FALSE when the run already ended.
 *
 * A socket remembers the uid of the last device it handled for the whole
 * run, across its stops and starts: a start takes only another device (the
 * one in the socket was just handled); a retry forgets the uid. Both
 * release a socket held by hold_failures. */
gboolean st_batch_control_retry_port (StBatchControl *control, const char *port, guint units);

typedef struct {
  const char *const *ports;
  guint units_per_port;        /* 0 = until cancelled, or until the batch is done */
  /* The units the batch still needs (0: no goal). Once that many passed,
   * the run ends: a socket that waits for a device stops waiting, one with
   * a device in flight finishes it (the quantity check refuses a unit too
   * many). Sockets share the goal, so uneven arrivals never leave a socket
   * waiting for its share of a batch that is already done. */
  guint64 batch_left;
  guint idle_timeout_s;        /* a socket with no new device for this long gives up; 0 = never */
  guint poll_interval_ms;      /* HELLO polling between devices, default 200 */
  /* A socket whose unit failed or was refused takes no device, not even a
   * new one, until st_batch_control_start_port (the operator acknowledged
   * the failure) or _retry_port; it keeps the run going meanwhile and never
   * gives up for being idle. */
  gboolean hold_failures;
  /* Parallel to ports, or NULL: the uid each socket handled last in an
   * earlier run ("" for none), which it then skips as if it had just
   * handled it (a failed device the operator acknowledged). */
  const char *const *last_uids;
  StBatchUnitFunc unit_func;
  StBatchPortFunc port_func;
  gpointer user_data;
  /* Optional: per-socket control. The run ends once no socket's worker
   * runs and none is asked to start, or when the line is cancelled. */
  StBatchControl *control;
} StBatchRunOptions;

typedef struct {
  guint passed, failed, refused, resumed;
  guint ports_failed;          /* sockets that gave up before their units were done */
  gboolean batch_done;         /* batch_left units passed */
} StBatchRunSummary;

/* Runs the line on every port until each has handled units_per_port devices,
 * gave up, or the line was cancelled. FALSE (with the reason) only when the
 * line stopped: a database write failed and nothing more was acknowledged. */
gboolean st_batch_run (StLine *line, const StBatchRunOptions *options,
                       StBatchRunSummary *summary, GError **error);

G_END_DECLS
