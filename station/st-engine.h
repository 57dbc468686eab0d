/* The engine: everything the station does, once, for every front end.
 *
 * The service (stationd, st-service.c) is a thin D-Bus adapter over it, as
 * fwupd's daemon is over FuEngine. The engine owns the configuration, the
 * database, the CA in the HSM once unlocked, and the running line. It owns
 * the three things that must exist once:
 *
 *  - the role rules: st_engine_rules[], one row per action, checked by
 *    st_engine_require() at the top of every action;
 *  - the batch lifecycle: create, run, close, export;
 *  - the run sequence: open the line, install the audit hook, recover what
 *    an interruption left, run the sockets, sign the closing checkpoint
 *    (st_engine_run_line).
 *
 * Every function is synchronous and thread-safe: the service calls them from
 * worker threads. Sessions are the caller's (a D-Bus connection's login):
 * the engine only checks them. */
#pragma once

#include <gio/gio.h>
#include <openssl/x509.h>

#include "st-api.h"
#include "st-auth.h"
#include "st-batch.h"
#include "st-bench.h"
#include "st-ceremony.h"
#include "st-config.h"
#include "st-crl.h"
#include "st-db.h"
#include "st-label.h"

G_BEGIN_DECLS

/* Every action a client can ask for. The order is the rule table's. */
typedef enum {
  ST_ACTION_STATUS,
  ST_ACTION_LOGIN_NAMES,
  ST_ACTION_SETUP_DEMO,
  ST_ACTION_SETUP_SHOW,
  ST_ACTION_UNLOCK,
  ST_ACTION_LOCK,
  ST_ACTION_OPERATOR_ADD,
  ST_ACTION_OPERATOR_LIST,
  ST_ACTION_OPERATOR_UNLOCK,
  ST_ACTION_OPERATOR_SET_ROLE,
  ST_ACTION_PROFILE_LIST,
  ST_ACTION_BATCH_CREATE,
  ST_ACTION_BATCH_LIST,
  ST_ACTION_BATCH_SHOW,
  ST_ACTION_BATCH_CLOSE,
  ST_ACTION_BATCH_ALLOW_MORE_VOIDS,
  ST_ACTION_SHIFT_STATS,
  ST_ACTION_LINE_RUN,
  ST_ACTION_LINE_REPROVISION,
  ST_ACTION_MANIFEST_EXPORT,
  ST_ACTION_MANIFEST_VERIFY,
  ST_ACTION_UNIT_VERIFY,
  ST_ACTION_UNIT_LOOKUP,
  ST_ACTION_UNIT_RESOLVE,
  ST_ACTION_UNIT_REVOKE,
  ST_ACTION_CRL_ISSUE,
  ST_ACTION_AUDIT_VERIFY,
  ST_ACTION_AUDIT_EXPORT,
  ST_ACTION_DB_CHECK,
  ST_ACTION_DB_BACKUP,
  ST_ACTION_HEALTH,
  ST_ACTION_SOCKET_NAMES,
  ST_ACTION_BENCH,
  ST_ACTION_ADMIN_RECOVER,
  ST_ACTION_CA_VERIFICATION_CERT,
  ST_ACTION_CA_INIT,
  ST_ACTION_CA_IMPORT,
  ST_ACTION_MATTER_CODES_EXPORT,
  ST_ACTION_MATTER_LABELS_EXPORT,
  ST_ACTION_LAST
} StAction;

/* One row of the role table. */
typedef struct {
  StAction action;
  const char *calls;      /* the D-Bus methods that take this action */
  guint roles;            /* the roles allowed; 0: no login needed */
  gboolean bootstrap;     /* also allowed without a login while the station has no operators */
  gboolean needs_hsm;     /* refused (NOT_FOUND, "unlock the station") while locked */
  const char *what;       /* "creating a batch": for refusals and the audit log */
} StActionRule;

/* The rule of @action; the whole table is st_engine_rule (0 .. ST_ACTION_LAST-1). */
const StActionRule *st_engine_rule (StAction action);

typedef struct _StEngine StEngine;

/* The engine for the station in @home, configured by @config_path (NULL:
 * HOME/station.conf). A home without a configuration yet gives an engine
 * that can only be set up (SetupDemo) or asked its status. */
StEngine *st_engine_new (const char *home, const char *config_path, GError **error);
/* Stops a running line (and waits for it), signs the closing audit
 * checkpoint when the HSM is unlocked, wipes the PIN, closes everything. */
void st_engine_free (StEngine *engine);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StEngine, st_engine_free)

const char *st_engine_get_home (StEngine *engine);
gboolean st_engine_is_configured (StEngine *engine);
gboolean st_engine_is_unlocked (StEngine *engine);
/* The batch of the first running line, 0 when none runs. */
gint64 st_engine_get_running_batch (StEngine *engine);
/* Borrowed, NULL until configured. */
StConfig *st_engine_get_config (StEngine *engine);

/* Called (on any thread) when Configured, Unlocked or RunningBatch change. */
typedef void (*StEngineStateFunc) (StEngine *engine, gpointer user_data);
void st_engine_set_state_func (StEngine *engine, StEngineStateFunc func, gpointer user_data);

/* The role check of every action: PERMISSION_DENIED naming the role the
 * action needs (audited when someone logged in was refused); NOT_FOUND
 * when the action needs the HSM and the station is locked, or needs a
 * configuration the station does not have yet. */
gboolean st_engine_require (StEngine *engine, const StAuthSession *session, StAction action,
                            GError **error);

/* ---- sessions, set-up, the HSM ---- */

StAuthSession *st_engine_login (StEngine *engine, const char *name, const char *pin, GError **error);
/* "configured", "unlocked", "running-batch", "station-id", "demo", "home",
 * "operators": what anyone may know. */
GVariant *st_engine_status (StEngine *engine);
/* The login screen's names: of StDbOperator* with name, role and locked only. */
GPtrArray *st_engine_login_names (StEngine *engine, GError **error);
gboolean st_engine_setup_demo (StEngine *engine, const StAuthSession *session, const char *pin,
                               GError **error);
/* The same with a Matter demo (st_setup_demo_matter: a test PAA and PAI of
 * VID FFF1, a test Certification Declaration); the SetupDemo rule. */
gboolean st_engine_setup_demo_matter (StEngine *engine, const StAuthSession *session,
                                      const char *pin, GError **error);
gchar *st_engine_setup_show (StEngine *engine, const StAuthSession *session, GError **error);
/* The same as values (st_setup_info; D-Bus SetupInfo): a floating a{sv}. */
GVariant *st_engine_setup_info (StEngine *engine, const StAuthSession *session, GError **error);
gboolean st_engine_unlock (StEngine *engine, const StAuthSession *session, const char *pin,
                           GError **error);
/* Unlock at start from a file (a systemd credential); no session: the file
 * is the service's own. */
gboolean st_engine_unlock_from_file (StEngine *engine, const char *path, GError **error);
gboolean st_engine_lock (StEngine *engine, const StAuthSession *session, GError **error);

/* ---- the key ceremony (st-ceremony.h, docs/ceremony.md) ---- */

/* `ca init` on a home that is not set up (no login needed while the
 * station has no operators): makes the keys and the requests in the token
 * (st_ceremony_init), writes station.conf awaiting the import, creates the
 * database and its first admin @admin with @admin_pin, and audits ca-init
 * (by @admin). @keys gets the requests. Refused on a station already set
 * up (a re-key is a new home). */
gboolean st_engine_ca_init (StEngine *engine, const StAuthSession *session,
                            const StCeremonyInit *request, const char *admin,
                            const char *admin_pin, StCeremonyKeys *keys, GError **error);
/* `ca import` (admin): checks the certificates against the keys in the
 * token (st_ceremony_import), completes station.conf, audits ca-import and
 * takes the new configuration: the station can be unlocked. @report gets
 * the warnings. Refused unless the station awaits its import. */
gboolean st_engine_ca_import (StEngine *engine, const StAuthSession *session, const char *pin,
                              const char *chain_pem, const char *signing_pem, GString *report,
                              GError **error);
/* Whether the station's key ceremony waits for 'ca import'. */
gboolean st_engine_awaits_import (StEngine *engine);

/* ---- operators ---- */

gboolean st_engine_operator_add (StEngine *engine, const StAuthSession *session, const char *name,
                                 const char *role, const char *pin, GError **error);
/* Of StDbOperator* without their PIN hashes. */
GPtrArray *st_engine_operator_list (StEngine *engine, const StAuthSession *session, GError **error);
gboolean st_engine_operator_unlock (StEngine *engine, const StAuthSession *session, const char *name,
                                    GError **error);
gboolean st_engine_operator_set_role (StEngine *engine, const StAuthSession *session,
                                      const char *name, const char *role, GError **error);
/* Break-glass recovery (st-recover.h): no login; the proof is the HSM
 * token's SO PIN @so_pin, checked in a child process (the token counts a
 * wrong one; one check at a time, and a wrong one costs a second). Then
 * unlocks admin @name, or, with @new_pin not NULL nor empty, adds @name as a
 * new admin with that PIN. Works while the HSM is locked. Audited either
 * way (admin-recover, admin-recover-failed). *@action: "unlocked" or
 * "added". */
gboolean st_engine_admin_recover (StEngine *engine, const StAuthSession *session, const char *name,
                                  const char *so_pin, const char *new_pin, const char **action,
                                  GError **error);

/* ---- profiles and batches ---- */

/* Of gchar* paths: *.profile in HOME/profiles (the station's profile
 * folder; never the installed or the build tree's examples), sorted. */
GPtrArray *st_engine_profile_list (StEngine *engine, const StAuthSession *session, GError **error);
/* A new batch from a profile's text; returns its id (> 0) or 0. *@profile
 * gets the parsed profile when not NULL; *@cd_note (may be NULL), for a
 * Matter profile whose Certification Declaration is a development one,
 * the line that says so. */
gint64 st_engine_batch_create (StEngine *engine, const StAuthSession *session,
                               const char *profile_origin, const char *profile_text,
                               const char *work_order, gint64 quantity, StProfile **profile,
                               gchar **cd_note, GError **error);
GPtrArray *st_engine_batch_list (StEngine *engine, const StAuthSession *session, GError **error);
StDbBatch *st_engine_batch_get (StEngine *engine, const StAuthSession *session, gint64 id,
                                GError **error);
/* Of StDbUnit*. */
/* Progress of db check and audit verify on the engine's database
 * (st_db_set_progress); NULL stops it. */
void st_engine_set_check_progress (StEngine *engine, StDbProgressFunc func, gpointer user_data);
/* The most units one BatchUnitsPage returns. */
#define ST_ENGINE_UNITS_PAGE_MAX 1000
GPtrArray *st_engine_batch_units_page (StEngine *engine, const StAuthSession *session, gint64 id,
                                       gint64 after_id, guint limit, GError **error);
GPtrArray *st_engine_batch_units (StEngine *engine, const StAuthSession *session, gint64 id,
                                  GError **error);
gboolean st_engine_batch_close (StEngine *engine, const StAuthSession *session, gint64 id,
                                GError **error);
gboolean st_engine_batch_allow_more_voids (StEngine *engine, const StAuthSession *session,
                                           gint64 id, gint64 *voided, gint64 *old_cap,
                                           gint64 *new_cap, GError **error);


StShiftStats *st_engine_shift_stats (StEngine *engine, const StAuthSession *session, gint64 id,
                                     guint hours, GError **error);

/* ---- the line ---- */

typedef struct {
  /* All called on the line's worker threads; serialise your own output. */
  StUnitStepFunc step;
  StBatchUnitFunc unit;
  StBatchPortFunc port_failed;
  /* a note for the operator about a unit (a unit disputed on resume) */
  StUnitNoticeFunc notice;
  /* Once, after recovery and before any socket starts. */
  void (*started) (gint64 batch_id, const char *const *ports, const char *recovered,
                   gpointer user_data);
  gpointer user_data;
} StEngineLineCallbacks;

typedef struct {
  gint64 batch_id;
  const char *const *ports;
  guint units;                /* per socket; 0: until the batch is done (the sockets share what is left), or until stopped */
  gboolean until_stopped;     /* run until st_engine_line_stop (the GUI) */
  guint wait_s;               /* a socket with no new device for this long gives up; 0 = never */
  gboolean allow_reprovision; /* needs ST_ACTION_LINE_REPROVISION */
  gboolean hold_failures;     /* a failed socket waits for LinePortStart/Retry (StBatchRunOptions) */
  const char *const *skip_uids; /* parallel to ports or NULL: StBatchRunOptions.last_uids */
} StLineRequest;

/* Runs the line to its end: the run sequence, in one place. Blocks. Several
 * lines may run at once, each its own batch on its own sockets (BUSY when
 * the batch already runs or a socket is taken). A line whose batch is already done returns TRUE with an
 * empty summary and *@nothing_to_do TRUE. FALSE when it could not start or
 * had to stop (a database write failed: nothing more was acknowledged);
 * stopped is not an error. *@stopped tells whether it was stopped. */
gboolean st_engine_run_line (StEngine *engine, const StAuthSession *session,
                             const StLineRequest *request, const StEngineLineCallbacks *callbacks,
                             StBatchRunSummary *summary, gboolean *stopped,
                             gboolean *nothing_to_do, GError **error);
/* Stops the line of @batch_id (0: every line); units in flight finish or
 * fail safely. NOT_FOUND when none runs. Needs the line role. */
gboolean st_engine_line_stop (StEngine *engine, const StAuthSession *session, gint64 batch_id,
                              GError **error);
/* The same without a role check, for the service when the session that
 * started the line ended, and at stop. */
void st_engine_line_stop_internal (StEngine *engine, gint64 batch_id);
/* Per-socket control (@verb "start", "stop", "retry"): a socket starts in
 * the line of @batch_id; stop and retry find the line that has it. */
gboolean st_engine_line_port (StEngine *engine, const StAuthSession *session, gint64 batch_id,
                              const char *verb, const char *port, guint units, GError **error);

/* ---- manifests, units, audit, database ---- */

/* Writes batch @id's signed manifest into @out_dir and checks it against
 * the station's root; @destination is what the audit log records, and
 * whether the client replaces a manifest already there (@replace). */
gboolean st_engine_manifest_export (StEngine *engine, const StAuthSession *session, gint64 id,
                                    const char *out_dir, const char *destination, gboolean replace,
                                    GError **error);
/* The same with the cloud files @cloud asks for (st_cloud_targets_parse:
 * "all", "none", "aws,certs", ...; NULL = all); the export above writes
 * them all. */
gboolean st_engine_manifest_export_cloud (StEngine *engine, const StAuthSession *session, gint64 id,
                                          const char *out_dir, const char *destination,
                                          gboolean replace, const char *cloud, GError **error);
/* Verifies the manifest in @dir against @root (NULL: the station's), its
 * signer pinned by @signer_pin (64 hex digits; NULL or "": the station's
 * configured pin, and with another @root none, which is refused).
 * Returns the verdict; @report gets one line per check; @error is set when
 * it failed. Audited. @origin names the manifest in the log. */
gboolean st_engine_manifest_verify (StEngine *engine, const StAuthSession *session,
                                    const char *dir, X509 *root, const char *signer_pin,
                                    const char *origin, GString *report, GError **error);
/* QA's check of the unit in socket @port (st_qa_verify_unit); @matter_code,
 * a scanned Matter onboarding code to compare with the unit's record (NULL
 * or "": none). */
gboolean st_engine_unit_verify (StEngine *engine, const StAuthSession *session, const char *port,
                                const char *profile_text, const char *matter_code, GString *report,
                                GError **error);
/* QA's scan at the desk (issue 17): the unit @code names (product serial,
 * uid or certificate serial) and what is on record of it, checked without
 * the device against the station's root and chain (st_qa_lookup_unit).
 * Returns the unit, its batch's work order in *@work_order and the verdict
 * in *@verified, the checks in @report; NULL with NOT_FOUND naming @code
 * when no unit has it. Reads only: not audited. */
StDbUnit *st_engine_unit_lookup (StEngine *engine, const StAuthSession *session, const char *code,
                                 gchar **work_order, gboolean *verified, GString *report, GError **error);
/* A lead's decision on the disputed unit named @name (its device uid, its
 * product serial or its certificate serial): @decision "keep" (the
 * certificate is unconfirmed again: the device that holds it completes its
 * unit) or "void" (voided: the next device with the uid is provisioned
 * anew). NOT_FOUND, saying what the units of that name are, when none is
 * disputed; INVALID_DATA for another decision. Audited in the same
 * transaction. Returns the unit after the decision. */
StDbUnit *st_engine_unit_resolve (StEngine *engine, const StAuthSession *session, const char *name,
                                  const char *decision, GError **error);
/* A lead revokes the active certificate of a shipped device, named by
 * @name: its certificate serial (hex, as the manifest shows it: always
 * unambiguous), its uid or its product serial (the unit whose certificate
 * is active). @reason: an RFC 5280 reason name (st_crl_reason_list).
 * INVALID_DATA for another reason, a certificate already revoked (when,
 * by whom) or not active; NOT_FOUND for a name no unit has. Audited
 * ("unit-revoke") in the same transaction. Returns the unit after it. */
StDbUnit *st_engine_unit_revoke (StEngine *engine, const StAuthSession *session, const char *name,
                                 const char *reason, GError **error);
/* Issues a CRL valid for @days (st_crl_issue): a new number, signed in the
 * HSM by the issuing CA key, audited. Lead or admin; needs the HSM. */
StCrlIssued *st_engine_crl_issue (StEngine *engine, const StAuthSession *session, guint days,
                                  GError **error);
/* @manifests: StAuditManifest (copies of manifest.json files whose
 * checkpoints must still be in the log), may be NULL. */
gboolean st_engine_audit_verify (StEngine *engine, const StAuthSession *session, X509 *root,
                                 GPtrArray *manifests, GString *report, GError **error);
gboolean st_engine_audit_export (StEngine *engine, const StAuthSession *session, const char *path,
                                 const char *destination, gint64 *n_entries, GError **error);
gboolean st_engine_db_check (StEngine *engine, const StAuthSession *session, GString *report,
                             GError **error);
gboolean st_engine_db_backup (StEngine *engine, const StAuthSession *session, const char *path,
                              const char *destination, GError **error);


StHealth *st_engine_health (StEngine *engine, const StAuthSession *session, GError **error);
/* The sockets of station.conf's [sockets] group, in its order: @ports and
 * @names (new, NULL-terminated, as long; empty when the group is absent). */
gboolean st_engine_socket_names (StEngine *engine, const StAuthSession *session, gchar ***ports,
                                 gchar ***names, GError **error);
gboolean st_engine_bench (StEngine *engine, const StAuthSession *session, guint units, guint slots,
                          StBenchResult *result, GError **error);

/* ---- the CA ---- */

/* Admin: a proof-of-possession certificate for registering the issuing CA
 * with a cloud (AWS IoT, Azure DPS): subject CN=@code, signed by the
 * issuing CA in the HSM, valid 30 days (st_cloud_verification_cert).
 * Returns its PEM. Audited (ca-verification-cert: the code and the serial). */
gchar *st_engine_ca_verification_cert (StEngine *engine, const StAuthSession *session,
                                       const char *code, GError **error);

/* Matter batch @id's codes file (st_matter_export_codes: passcodes, QR
 * texts, manual codes of its done units) written as @out_dir/
 * matter-codes.csv; lead only. Audited as matter-codes-export (batch,
 * out: @destination, rows, sha256 of the file), never a code. */
gboolean st_engine_matter_codes_export (StEngine *engine, const StAuthSession *session, gint64 id,
                                        const char *out_dir, const char *destination, guint *rows,
                                        gchar **sha256, GError **error);
/* The labels (PNG, PDF, ZPL) of Matter batch @id's done units, of @size,
 * into @out_dir (st_matter_export_labels); lead only. Audited as
 * matter-labels-export (batch, out, units, the size). */
gboolean st_engine_matter_labels_export (StEngine *engine, const StAuthSession *session, gint64 id,
                                         const StLabelSize *size, const char *out_dir,
                                         const char *destination, guint *count, GError **error);

/* A private folder under HOME for one call's files (0700), removed with
 * st_engine_scratch_remove. */
gchar *st_engine_scratch_new (StEngine *engine, const char *what, GError **error);
void st_engine_scratch_remove (const char *dir);

G_END_DECLS
