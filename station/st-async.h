/* The station for a GUI: every action as an _async/_finish pair built on
 * GTask, run on a worker thread, with a GCancellable; progress and the
 * line's per-socket events are delivered on the main context of the thread
 * that started the call (its thread-default context). Nothing here blocks
 * the caller's main loop.
 *
 * One StStation per process: the configuration, the database, and the CA in
 * the HSM once the HSM PIN was given (st_station_unlock_hsm_async). Actions
 * take the StAuthSession of the operator logged in and check its role
 * (st_auth_require), exactly as the CLI does. */
#pragma once

#include <gio/gio.h>

#include "st-auth.h"
#include "st-batch.h"
#include "st-config.h"
#include "st-db.h"

G_BEGIN_DECLS

typedef struct _StStation StStation;

/* Loads HOME/station.conf and opens the database. The HSM stays closed
 * until st_station_unlock_hsm_async. */
void st_station_open_async (const char *home, GCancellable *cancellable,
                            GAsyncReadyCallback callback, gpointer user_data);
StStation *st_station_open_finish (GAsyncResult *result, GError **error);
void st_station_free (StStation *station);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StStation, st_station_free)

/* Borrowed; valid as long as @station. */
StConfig *st_station_get_config (StStation *station);
gboolean st_station_hsm_is_open (StStation *station);

/* Opens the token, logs in with @pin (copied, wiped after use) and loads
 * the CA material (st_ca_open). */
void st_station_unlock_hsm_async (StStation *station, const char *pin, GCancellable *cancellable,
                                  GAsyncReadyCallback callback, gpointer user_data);
gboolean st_station_unlock_hsm_finish (StStation *station, GAsyncResult *result, GError **error);

/* ---- operators ---- */

/* Of StDbOperator* (without their PIN hashes), by name. */
void st_station_list_operators_async (StStation *station, GCancellable *cancellable,
                                      GAsyncReadyCallback callback, gpointer user_data);
GPtrArray *st_station_list_operators_finish (StStation *station, GAsyncResult *result,
                                             GError **error);

/* st_auth_login on a worker thread (the PIN hash is deliberately slow). */
void st_station_login_async (StStation *station, const char *name, const char *pin,
                             GCancellable *cancellable, GAsyncReadyCallback callback,
                             gpointer user_data);
StAuthSession *st_station_login_finish (StStation *station, GAsyncResult *result, GError **error);
StAuthSession *st_auth_session_copy (const StAuthSession *session);

typedef enum {
  ST_OPERATOR_ADD,       /* name, role, pin */
  ST_OPERATOR_UNLOCK,    /* name */
  ST_OPERATOR_SET_ROLE,  /* name, role */
} StOperatorChange;

/* Admin only. */
void st_station_change_operator_async (StStation *station, const StAuthSession *session,
                                       StOperatorChange change, const char *name, StRole role,
                                       const char *pin, GCancellable *cancellable,
                                       GAsyncReadyCallback callback, gpointer user_data);
gboolean st_station_change_operator_finish (StStation *station, GAsyncResult *result,
                                            GError **error);

/* ---- batches ---- */

/* Of StDbBatch*, newest first (any role). */
void st_station_list_batches_async (StStation *station, const StAuthSession *session,
                                    GCancellable *cancellable, GAsyncReadyCallback callback,
                                    gpointer user_data);
GPtrArray *st_station_list_batches_finish (StStation *station, GAsyncResult *result,
                                           GError **error);

/* One batch with its counts (any role). */
void st_station_get_batch_async (StStation *station, const StAuthSession *session,
                                 gint64 batch_id, GCancellable *cancellable,
                                 GAsyncReadyCallback callback, gpointer user_data);
StDbBatch *st_station_get_batch_finish (StStation *station, GAsyncResult *result, GError **error);

/* The product profiles this station offers: *.profile in HOME/profiles,
 * the installed ones and the source tree's (build-time) folder. Of
 * gchar* paths, sorted by file name, one per name. */
void st_station_list_profiles_async (StStation *station, GCancellable *cancellable,
                                     GAsyncReadyCallback callback, gpointer user_data);
GPtrArray *st_station_list_profiles_finish (StStation *station, GAsyncResult *result,
                                            GError **error);

/* Lead only. Returns the new batch id (> 0), or 0 and @error. */
void st_station_create_batch_async (StStation *station, const StAuthSession *session,
                                    const char *profile_path, const char *work_order,
                                    gint64 quantity, GCancellable *cancellable,
                                    GAsyncReadyCallback callback, gpointer user_data);
gint64 st_station_create_batch_finish (StStation *station, GAsyncResult *result, GError **error);

/* Lead only; needs the HSM (the signed audit checkpoint of the close). */
void st_station_close_batch_async (StStation *station, const StAuthSession *session,
                                   gint64 batch_id, GCancellable *cancellable,
                                   GAsyncReadyCallback callback, gpointer user_data);
gboolean st_station_close_batch_finish (StStation *station, GAsyncResult *result, GError **error);

/* Progress of a long action, on the caller's main context: @fraction 0..1,
 * @what a short text. */
typedef void (*StStationProgressFunc) (double fraction, const char *what, gpointer user_data);

/* Lead only; needs the HSM. Writes the signed manifest into @out_dir and
 * checks it against the station's root before reporting success. */
void st_station_export_manifest_async (StStation *station, const StAuthSession *session,
                                       gint64 batch_id, const char *out_dir,
                                       StStationProgressFunc progress, gpointer progress_data,
                                       GCancellable *cancellable, GAsyncReadyCallback callback,
                                       gpointer user_data);
gboolean st_station_export_manifest_finish (StStation *station, GAsyncResult *result,
                                            GError **error);

/* The shift chart's data for one batch (any role): units finished per hour
 * (the last @hours hours, oldest first) and failures by step. */
typedef struct {
  gint64 first_hour;          /* unix time of the first bucket */
  guint n_hours;
  guint *passed_per_hour;     /* n_hours entries */
  guint *failed_per_hour;
  GHashTable *failures_by_step; /* step -> GUINT_TO_POINTER(count) */
  guint done, failed;
} StShiftStats;
void st_shift_stats_free (StShiftStats *stats);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StShiftStats, st_shift_stats_free)

void st_station_shift_stats_async (StStation *station, const StAuthSession *session,
                                   gint64 batch_id, guint hours, GCancellable *cancellable,
                                   GAsyncReadyCallback callback, gpointer user_data);
StShiftStats *st_station_shift_stats_finish (StStation *station, GAsyncResult *result,
                                             GError **error);

/* ---- QA ---- */

typedef struct {
  gboolean ok;          /* every check passed */
  gchar *text;          /* one line per check, "ok"/"FAIL" */
  gchar *message;       /* the failure, or NULL */
} StReport;
void st_report_free (StReport *report);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StReport, st_report_free)

/* QA only. A report is returned even when a check failed (ok FALSE); NULL
 * and @error only when nothing could be checked (no device answered, the
 * role does not allow it). @profile_path may be NULL (default link). */
void st_station_verify_unit_async (StStation *station, const StAuthSession *session,
                                   const char *port, const char *profile_path,
                                   GCancellable *cancellable, GAsyncReadyCallback callback,
                                   gpointer user_data);
StReport *st_station_verify_unit_finish (StStation *station, GAsyncResult *result,
                                         GError **error);

/* QA or lead; against the station's root. Audited. */
void st_station_verify_manifest_async (StStation *station, const StAuthSession *session,
                                       const char *dir, GCancellable *cancellable,
                                       GAsyncReadyCallback callback, gpointer user_data);
StReport *st_station_verify_manifest_finish (StStation *station, GAsyncResult *result,
                                             GError **error);

/* ---- health (admin; also what `setup show` tells) ---- */

typedef struct {
  gchar *token;           /* token description, or NULL when the HSM is closed */
  gboolean logged_in;
  gchar *chain;           /* one line per certificate: subject, days left */
  gint min_days_left;     /* of the chain and the signing certificate; G_MAXINT if unknown */
  gchar *db_path;
  guint64 db_size;        /* database + WAL, bytes */
  guint64 disk_free;      /* bytes free on the database's file system */
  gchar *audit;           /* the audit chain's state, one line per check */
  gboolean audit_ok;
  gchar *setup_text;      /* st_setup_show without the PIN */
} StHealth;
void st_health_free (StHealth *health);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StHealth, st_health_free)

void st_station_health_async (StStation *station, const StAuthSession *session,
                              GCancellable *cancellable, GAsyncReadyCallback callback,
                              gpointer user_data);
StHealth *st_station_health_finish (StStation *station, GAsyncResult *result, GError **error);

/* ---- the line ---- */

/* Called on the caller's main context. */
typedef struct {
  /* a unit entered a step ("identify", "keygen", "sign", ...): its port,
   * uid and elapsed time, as it runs */
  void (*step) (const StUnitProgress *progress, gpointer user_data);
  /* a unit on @port ended */
  void (*result) (const StUnitResult *result, gpointer user_data);
  /* the socket @port gave up (@error says why) */
  void (*port_failed) (const char *port, const GError *error, gpointer user_data);
} StLineCallbacks;

/* Operator or lead; needs the HSM. Runs batch @batch_id on @ports (one
 * worker each, device swaps picked up by the pipeline) until each socket
 * handled @units_per_port devices (0: until cancelled) or the line was
 * cancelled: cancelling lets the units in flight finish or fail safely.
 * Recovers what an earlier run left first. Only one line runs at a time
 * (BUSY otherwise). The callbacks run on the caller's main context until
 * the callback of this call has run. */
void st_station_run_line_async (StStation *station, const StAuthSession *session,
                                gint64 batch_id, const char *const *ports, guint units_per_port,
                                const StLineCallbacks *callbacks, gpointer callbacks_data,
                                GCancellable *cancellable, GAsyncReadyCallback callback,
                                gpointer user_data);
/* FALSE when the line could not start or had to stop (a database write
 * failed); cancelled is not an error: *@summary says what was done. */
gboolean st_station_run_line_finish (StStation *station, GAsyncResult *result,
                                     StBatchRunSummary *summary, GError **error);

/* Per-socket control of the running line, from the main context; they only
 * set flags and never block. Start runs @port's worker for @units devices
 * (0: until stopped) unless it runs; retry runs the device in @port again
 * (after a failure) or starts the worker. Both return FALSE when no line
 * runs or it is ending: start a line instead. Stop cancels @port's worker
 * alone: its unit in flight fails safely, the other sockets go on. */
gboolean st_station_line_start_port (StStation *station, const char *port, guint units);
gboolean st_station_line_retry_port (StStation *station, const char *port, guint units);
void st_station_line_stop_port (StStation *station, const char *port);

G_END_DECLS
