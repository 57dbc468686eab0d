/* The values the station's API carries, shared by the engine, the service
 * and its clients (station, station-gui): roles, the logged-in operator, a
 * unit's progress and result, the shift's figures, the health report, and
 * a batch and an operator as a client sees them. Each has its D-Bus form
 * here, so that the service and the clients read and write it in one place.
 * Nothing here touches the HSM, the database or a port. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* ---- roles and the logged-in operator ---- */

typedef enum {
  ST_ROLE_OPERATOR = 1 << 0,
  ST_ROLE_LEAD = 1 << 1,
  ST_ROLE_QA = 1 << 2,
  ST_ROLE_ADMIN = 1 << 3,
} StRole;
#define ST_ROLE_ANY (ST_ROLE_OPERATOR | ST_ROLE_LEAD | ST_ROLE_QA | ST_ROLE_ADMIN)

/* "operator", "lead", "qa", "admin"; INVALID_DATA for anything else. */
gboolean st_role_from_string (const char *text, StRole *role, GError **error);
const char *st_role_to_string (StRole role);
/* "lead", "operator or lead", "qa, lead or admin": the roles of @mask. */
gchar *st_role_mask_to_string (guint mask);

typedef struct {
  gchar *name;
  StRole role;
} StAuthSession;
void st_auth_session_free (StAuthSession *session);
StAuthSession *st_auth_session_copy (const StAuthSession *session);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StAuthSession, st_auth_session_free)

/* The demo operators that `setup demo` makes (README.md): op/1111
 * operator, lead/2222 lead, qa/3333 qa, admin/4444 admin, the admin first
 * (a station's first operator is an admin). Their PINs are public: a demo
 * station only. */
guint st_demo_operator_count (void);
void st_demo_operator_nth (guint i, StRole *role, const char **name, const char **pin);
/* The demo operator of @role; FALSE when there is none. */
gboolean st_demo_operator (StRole role, const char **name, const char **pin);

/* ---- a unit on the line ---- */

typedef enum {
  ST_UNIT_PASSED,
  ST_UNIT_FAILED,
  ST_UNIT_REFUSED, /* the device was not provisioned on purpose: locked, known, wrong model, quota */
} StUnitOutcome;

/* "PASSED", "FAILED", "REFUSED". */
const char *st_unit_outcome_to_string (StUnitOutcome outcome);

typedef struct {
  StUnitOutcome outcome;
  gchar *port;
  gchar *uid_hex;
  gchar *step;            /* the step that failed, or "done" */
  gchar *reason;          /* for the operator: what happened and what to do */
  gchar *detail;          /* protocol detail, for the log */
  gchar *product_serial;  /* when one was assigned */
  gchar *cert_serial;     /* when a certificate was issued */
  gint64 unit_id;         /* 0 when nothing was recorded */
  gboolean resumed;       /* the unit was left by an earlier run and completed now */
  gdouble seconds;
} StUnitResult;

void st_unit_result_free (StUnitResult *result);
StUnitResult *st_unit_result_copy (const StUnitResult *result);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StUnitResult, st_unit_result_free)
/* The UnitResult signal's dictionary (with the batch's id), and back. */
GVariant *st_unit_result_to_variant (const StUnitResult *result, gint64 batch_id);
StUnitResult *st_unit_result_from_variant (GVariant *dict, gint64 *batch_id);

/* Progress of a unit as it runs, for the GUI and the log. */
typedef struct {
  const char *port;
  const char *step;      /* the step the unit enters: "identify", "keygen", ... */
  const char *uid_hex;   /* the device's uid (known from identify on) */
  gdouble seconds;       /* since the unit started */
} StUnitProgress;

/* ---- the shift chart, the health report ---- */

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
GVariant *st_shift_stats_to_variant (const StShiftStats *stats);
StShiftStats *st_shift_stats_from_variant (GVariant *dict);

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
GVariant *st_health_to_variant (const StHealth *health);
StHealth *st_health_from_variant (GVariant *dict);

/* ---- a batch and an operator, as a client sees them ---- */

typedef struct {
  gint64 id;
  gchar *work_order, *product, *profile_sha256, *state, *created_by, *closed_by, *station_id;
  gint64 quantity, created_at, closed_at /* 0 if open */;
  gint64 n_units, n_done, n_failed, n_live_certs, n_voided, n_unconfirmed;
  gint64 n_disputed;
  gint64 n_revoked;
  gboolean matter;        /* its profile has a [matter] group: it has setup codes and labels */
} StBatchInfo;
void st_batch_info_free (StBatchInfo *batch);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StBatchInfo, st_batch_info_free)
/* From BatchGet's dictionary (docs/architecture.md, the D-Bus API). */
StBatchInfo *st_batch_info_from_variant (GVariant *dict);

typedef struct {
  gchar *name, *role;
  gint64 failed_attempts, created_at;
  gboolean locked;
} StOperatorInfo;
void st_operator_info_free (StOperatorInfo *op);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StOperatorInfo, st_operator_info_free)
StOperatorInfo *st_operator_info_from_variant (GVariant *dict);

/* A string member of a dictionary, "" when it is missing (a newer or older
 * peer may leave members out). */
const char *st_dict_get_string (GVariant *dict, const char *key);
gint64 st_dict_get_int64 (GVariant *dict, const char *key);

G_END_DECLS
