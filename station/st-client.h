/* A client of the station service (stationd): how `station` and
 * `station-gui` reach it, the files that cross the boundary as descriptors,
 * and the GUI's asynchronous calls.
 *
 * A client holds no HSM PIN, opens no database and no port: it logs in on
 * its connection and asks. Every role is checked by the service. */
#pragma once

#include <gio/gio.h>

#include "st-api.h"
#include "st-dbus.h"

G_BEGIN_DECLS

/* Where the service is. In order: @address (a private service's
 * peer-to-peer address; $STATION_ADDRESS), @bus (a bus address, e.g. a
 * private dbus-daemon; $STATION_BUS), @system, @home (the private service
 * of that home: HOME/stationd.sock; $STATION_HOME), else the system bus. */
typedef struct {
  const char *address;
  const char *bus;
  gboolean system;
  const char *home;
} StClientTarget;

/* Fills the empty members of @target from the environment. */
void st_client_target_from_env (StClientTarget *target);
/* "the station service of HOME", "the system's station service": for messages. */
gchar *st_client_target_describe (const StClientTarget *target);

/* Connects and makes the proxy (calls never time out: a bench or an export
 * takes as long as it takes). NOT_FOUND, saying how to start the service,
 * when none answers. */
StDbusStation1 *st_client_connect (const StClientTarget *target, GCancellable *cancellable,
                                   GError **error);

/* ---- files across the boundary ---- */

/* Copies the file behind @fd to @path (st_file_write_durable_from_fd). */
gboolean st_client_save_fd (int fd, const char *path, GError **error);
/* Saves every (name, handle) of @files into @dir (made when missing).
 * Unless @replace, a file of that name already in @dir is not replaced:
 * nothing is written and the error names the fix (--force). */
gboolean st_client_save_files (GVariant *files, GUnixFDList *fds, const char *dir, gboolean replace,
                               GError **error);
/* The cloud export's folders arrive as entries named "NAME/" whose
 * descriptor holds a station-folder-pack/1 stream (st-cloud-pack.h):
 * checked here record by record without keeping it (every name, every
 * length, the count at its end), in bounded memory whatever its size.
 * A name given twice is found when the folder is written (a file is
 * never replaced by another of the same pack). */
gboolean st_client_check_folder_pack (int fd, const char *label, GError **error);
/* 1..255 of A-Z a-z 0-9 . _ -, not starting with '.'. */
gboolean st_client_export_name_ok (const char *name);
/* Whether a manifest may be exported into @dir: without @replace, none of
 * a manifest's files may be there yet (another batch's manifest would be
 * replaced silently). Checked before asking the service, and again by
 * st_client_save_files(). */
gboolean st_client_manifest_dest_check (const char *dir, gboolean replace, GError **error);
/* The files of a Matter batch's codes file or labels (MatterCodesExport,
 * MatterLabelsExport: a station-folder-pack/1 stream behind @pack_fd) into
 * @dir, made 0700 when missing and opened without following a link: the
 * pack checked whole first, none of its files may be in @dir yet (nothing
 * is ever replaced), each file created new with mode 0600 (they hold setup
 * passcodes), never through a link; on an error the files this call made
 * are removed. *@n_files (may be NULL) the files written. */
gboolean st_client_save_private_pack (int pack_fd, const char *dir, guint64 *n_files, GError **error);
/* The options of MatterLabelsExport; a value of 0 leaves it to the
 * service's default. */
GVariant *st_client_matter_labels_options (double width_mm, double height_mm, guint dpi, guint zpl_dpi);
/* The options of ManifestExport. */
GVariant *st_client_manifest_export_options (gboolean replace);
/* The same with "cloud" (`manifest export --cloud`: "all", "none",
 * "aws,certs", ...) when @cloud is not NULL. */
GVariant *st_client_manifest_export_options_cloud (gboolean replace, const char *cloud);
/* The manifest files of @dir, for ManifestVerify: each opened read-only,
 * without following a symbolic link and without blocking, and refused when
 * it is not a regular file. Missing files are left out (the service's
 * report names them). */
GVariant *st_client_manifest_files (const char *dir, GUnixFDList **fds, GError **error);
/* The manifest.json of each folder in @dirs (NULL-terminated, may be
 * NULL) as audit verify's a(sh) (label: the folder); the same refusals. */
GVariant *st_client_audit_manifests (char **dirs, GUnixFDList **fds, GError **error);
/* A text file of at most @max bytes (a profile, a root certificate). */
gchar *st_client_read_text (const char *path, gsize max, gsize *len, GError **error);

/* Lead: decides the dispute over the unit @unit (its uid, product serial or
 * certificate serial): @keep TRUE keeps its certificate, FALSE voids it.
 * Returns the unit after the decision (UnitResolve's dictionary). */
GVariant *st_client_resolve_unit (StDbusStation1 *proxy, const char *unit, gboolean keep,
                                  GError **error);

/* Lead: revokes the active certificate of the unit @unit (its certificate
 * serial, uid or product serial) with the RFC 5280 reason name @reason.
 * Returns the unit after it (UnitRevoke's dictionary). */
GVariant *st_client_revoke_unit (StDbusStation1 *proxy, const char *unit, const char *reason,
                                 GError **error);
/* Lead or admin: issues a CRL valid for @days and writes it (PEM) to
 * @path, which must not exist unless @replace (checked before the CRL is
 * issued, so that a refusal takes no CRL number). Returns its number in
 * *@number and its count of entries in *@entries. */
gboolean st_client_crl_issue (StDbusStation1 *proxy, guint days, const char *path, gboolean replace,
                              gint64 *number, guint *entries, GError **error);

/* ---- the GUI's calls: each an _async/_finish pair on the caller's main
 * context; the service checks the role of the operator logged in on this
 * connection ---- */

typedef struct _StStation StStation;

void st_station_open_async (const StClientTarget *target, GCancellable *cancellable,
                            GAsyncReadyCallback callback, gpointer user_data);
StStation *st_station_open_finish (GAsyncResult *result, GError **error);
void st_station_free (StStation *station);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StStation, st_station_free)

/* The proxy, for signals and properties (borrowed). */
StDbusStation1 *st_station_get_proxy (StStation *station);
gboolean st_station_hsm_is_open (StStation *station);
/* The station's idle-logout setting, seconds. */
guint st_station_get_idle_logout (StStation *station);

/* Admin: sends the HSM PIN to the service (copied, wiped after the call). */
void st_station_unlock_hsm_async (StStation *station, const char *pin, GCancellable *cancellable,
                                  GAsyncReadyCallback callback, gpointer user_data);
gboolean st_station_unlock_hsm_finish (StStation *station, GAsyncResult *result, GError **error);

/* The names on the login screen: of StOperatorInfo* (name and role). */
void st_station_list_operators_async (StStation *station, GCancellable *cancellable,
                                      GAsyncReadyCallback callback, gpointer user_data);
GPtrArray *st_station_list_operators_finish (StStation *station, GAsyncResult *result,
                                             GError **error);

void st_station_login_async (StStation *station, const char *name, const char *pin,
                             GCancellable *cancellable, GAsyncReadyCallback callback,
                             gpointer user_data);
StAuthSession *st_station_login_finish (StStation *station, GAsyncResult *result, GError **error);
/* Ends this connection's session (fire and forget). */
void st_station_logout (StStation *station);

typedef enum {
  ST_OPERATOR_ADD,       /* name, role, pin */
  ST_OPERATOR_UNLOCK,    /* name */
  ST_OPERATOR_SET_ROLE,  /* name, role */
} StOperatorChange;

void st_station_change_operator_async (StStation *station, StOperatorChange change,
                                       const char *name, StRole role, const char *pin,
                                       GCancellable *cancellable, GAsyncReadyCallback callback,
                                       gpointer user_data);
gboolean st_station_change_operator_finish (StStation *station, GAsyncResult *result,
                                            GError **error);

/* Of StBatchInfo*, newest first. */
void st_station_list_batches_async (StStation *station, GCancellable *cancellable,
                                    GAsyncReadyCallback callback, gpointer user_data);
GPtrArray *st_station_list_batches_finish (StStation *station, GAsyncResult *result,
                                           GError **error);
void st_station_get_batch_async (StStation *station, gint64 batch_id, GCancellable *cancellable,
                                 GAsyncReadyCallback callback, gpointer user_data);
StBatchInfo *st_station_get_batch_finish (StStation *station, GAsyncResult *result, GError **error);

/* A product profile the service offers. */
typedef struct {
  gchar *name;      /* file name */
  gchar *path;      /* on the service's side, for messages */
  gchar *product;   /* NULL when it does not load */
  gchar *text;      /* its contents; NULL when it does not load */
  gchar *error;     /* why it does not load */
} StProfileEntry;
void st_profile_entry_free (StProfileEntry *entry);

/* Of StProfileEntry*, by file name. */
void st_station_list_profiles_async (StStation *station, GCancellable *cancellable,
                                     GAsyncReadyCallback callback, gpointer user_data);
GPtrArray *st_station_list_profiles_finish (StStation *station, GAsyncResult *result,
                                            GError **error);

/* Lead. The profile is its text (@origin names it). Returns the batch id. */
void st_station_create_batch_async (StStation *station, const char *origin,
                                    const char *profile_text, const char *work_order,
                                    gint64 quantity, GCancellable *cancellable,
                                    GAsyncReadyCallback callback, gpointer user_data);
gint64 st_station_create_batch_finish (StStation *station, GAsyncResult *result, GError **error);

void st_station_close_batch_async (StStation *station, gint64 batch_id, GCancellable *cancellable,
                                   GAsyncReadyCallback callback, gpointer user_data);
gboolean st_station_close_batch_finish (StStation *station, GAsyncResult *result, GError **error);

typedef void (*StStationProgressFunc) (double fraction, const char *what, gpointer user_data);

/* Lead. The service writes, signs and checks the manifest; this client
 * saves its files into @out_dir. */
void st_station_export_manifest_async (StStation *station, gint64 batch_id, const char *out_dir,
                                       StStationProgressFunc progress, gpointer progress_data,
                                       GCancellable *cancellable, GAsyncReadyCallback callback,
                                       gpointer user_data);
gboolean st_station_export_manifest_finish (StStation *station, GAsyncResult *result,
                                            GError **error);

void st_station_shift_stats_async (StStation *station, gint64 batch_id, guint hours,
                                   GCancellable *cancellable, GAsyncReadyCallback callback,
                                   gpointer user_data);
StShiftStats *st_station_shift_stats_finish (StStation *station, GAsyncResult *result,
                                             GError **error);

typedef struct {
  gboolean ok;          /* every check passed */
  gchar *text;          /* one line per check, "ok"/"FAIL" */
  gchar *message;       /* the failure, or NULL */
} StReport;
void st_report_free (StReport *report);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StReport, st_report_free)

/* QA. @profile_text may be NULL (the default link settings). */
void st_station_verify_unit_async (StStation *station, const char *port, const char *profile_text,
                                   GCancellable *cancellable, GAsyncReadyCallback callback,
                                   gpointer user_data);
StReport *st_station_verify_unit_finish (StStation *station, GAsyncResult *result, GError **error);
/* The same with @matter_code, a scanned Matter onboarding code (QR text
 * "MT:..." or manual code; NULL or empty: none) that the service compares
 * with the unit's record (UnitVerify). Finished by
 * st_station_verify_unit_finish. */
void st_station_verify_unit_code_async (StStation *station, const char *port, const char *profile_text,
                                        const char *matter_code, GCancellable *cancellable,
                                        GAsyncReadyCallback callback, gpointer user_data);

/* A Matter batch's lead-only files (MatterCodesExport: matter-codes.csv;
 * MatterLabelsExport: NAME.png, NAME.pdf, NAME.zpl per unit, the default
 * size) saved into @out_dir by st_client_save_private_pack (made 0700 when
 * missing, each file new and 0600, nothing replaced). */
typedef struct {
  guint units;          /* the units in the codes file, or labelled */
  guint64 files;        /* the files written */
  gchar *sha256;        /* the codes file's SHA-256 (as audited), NULL for labels */
} StMatterExport;
void st_matter_export_free (StMatterExport *e);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StMatterExport, st_matter_export_free)
void st_station_export_matter_codes_async (StStation *station, gint64 batch_id, const char *out_dir,
                                           GCancellable *cancellable, GAsyncReadyCallback callback,
                                           gpointer user_data);
void st_station_export_matter_labels_async (StStation *station, gint64 batch_id, const char *out_dir,
                                            GCancellable *cancellable, GAsyncReadyCallback callback,
                                            gpointer user_data);
StMatterExport *st_station_export_matter_finish (StStation *station, GAsyncResult *result, GError **error);

/* QA's scan (UnitLookup): the unit a product serial, uid or certificate
 * serial names, and its record checked without the device. */
typedef struct {
  StReport *report;     /* the checks of the record */
  gint64 unit_id, batch_id;
  gchar *work_order, *uid, *product_serial, *state, *cert_serial, *cert_state;
} StUnitLookup;
void st_unit_lookup_free (StUnitLookup *lookup);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StUnitLookup, st_unit_lookup_free)
void st_station_lookup_unit_async (StStation *station, const char *code, GCancellable *cancellable,
                                   GAsyncReadyCallback callback, gpointer user_data);
/* NULL with NOT_FOUND (naming the code) when no unit has it. */
StUnitLookup *st_station_lookup_unit_finish (StStation *station, GAsyncResult *result, GError **error);

/* QA or lead: the manifest in @dir (this client's folder), against the
 * station's root. */
void st_station_verify_manifest_async (StStation *station, const char *dir,
                                       GCancellable *cancellable, GAsyncReadyCallback callback,
                                       gpointer user_data);
StReport *st_station_verify_manifest_finish (StStation *station, GAsyncResult *result,
                                             GError **error);

/* The sockets of the station's configuration ([sockets] in station.conf),
 * in order: StSocketName*, with the port and the name as the service sent
 * them (bounded: ST_CLIENT_MAX_SOCKET_NAMES entries, names of at most
 * ST_CLIENT_MAX_SOCKET_NAME bytes; escape them before showing them). */
#define ST_CLIENT_MAX_SOCKET_NAMES 64
#define ST_CLIENT_MAX_SOCKET_NAME 512
typedef struct {
  gchar *port, *name;
} StSocketName;
void st_socket_name_free (StSocketName *socket);
void st_station_socket_names_async (StStation *station, GCancellable *cancellable,
                                    GAsyncReadyCallback callback, gpointer user_data);
GPtrArray *st_station_socket_names_finish (StStation *station, GAsyncResult *result, GError **error);

void st_station_health_async (StStation *station, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data);
StHealth *st_station_health_finish (StStation *station, GAsyncResult *result, GError **error);

/* ---- the line ---- */

/* Called on the caller's main context while the line runs. */
typedef struct {
  void (*step) (const StUnitProgress *progress, gpointer user_data);
  void (*result) (const StUnitResult *result, gpointer user_data);
  void (*port_failed) (const char *port, const GError *error, gpointer user_data);
} StLineCallbacks;

typedef struct {
  guint passed, failed, refused, resumed;
  guint ports_failed;
  gboolean stopped;
  gboolean batch_done;         /* the batch got the last unit it needed */
} StLineSummary;

/* Operator or lead. Runs batch @batch_id on @ports until each socket
 * handled @units_per_port devices (0: until the batch has its quantity,
 * the sockets sharing what is left, however unevenly the devices come; the
 * summary's batch_done says it got there). Cancelling stops the
 * line (LineStop): the units in flight finish or fail safely. The callbacks
 * run until the callback of this call has run. @hold_failures: a socket
 * whose unit failed takes no device until st_station_line_start_port (the
 * acknowledgement) or _retry_port (LineStart's "hold-failures").
 * @skip_uids (parallel to @ports, "" for none, or NULL): the device each
 * socket is to skip, as if it had just handled it ("skip-uids"). */
void st_station_run_line_async (StStation *station, gint64 batch_id, const char *const *ports,
                                guint units_per_port, gboolean hold_failures, const char *const *skip_uids,
                                const StLineCallbacks *callbacks,
                                gpointer callbacks_data, GCancellable *cancellable,
                                GAsyncReadyCallback callback, gpointer user_data);
/* FALSE when the line could not start or had to stop; a stopped line is not
 * an error: *@summary says what was done. */
gboolean st_station_run_line_finish (StStation *station, GAsyncResult *result,
                                     StLineSummary *summary, GError **error);

/* Per-socket control of a running line; fire and forget (a refusal is
 * logged). A socket starts in the line of @batch_id. */
void st_station_line_start_port (StStation *station, gint64 batch_id, const char *port,
                                 guint units);
void st_station_line_retry_port (StStation *station, const char *port, guint units);
void st_station_line_stop_port (StStation *station, const char *port);

G_END_DECLS
