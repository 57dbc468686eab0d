#include "st-engine.h"
#include "st-json.h"

#include <errno.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <inttypes.h>
#include <json-glib/json-glib.h>
#include <openssl/pem.h>
#include <string.h>

#include "st-audit.h"
#include "st-ca.h"
#include "st-cloud.h"
#include "st-error.h"
#include "st-hsm.h"
#include "st-issue.h"
#include "st-line.h"
#include "st-manifest.h"
#include "st-matter-cd.h"
#include "st-matter-export.h"
#include "st-ossl.h"
#include "st-profile.h"
#include "st-qa.h"
#include "st-recover.h"
#include "st-setup.h"
#include "st-util.h"
#include "st-text.h"
#include "st-verify.h"

#define ST_ENGINE_MAX_PROFILES 256
#define ST_ENGINE_MAX_HOURS 168
#define ST_ENGINE_PIN_FILE_MAX 256
/* While the HSM is unlocked and no line runs, every audited change is
 * covered by a signed checkpoint before its call returns (a line checkpoints
 * every [audit] checkpoint-every entries instead). */
#define ST_ENGINE_IDLE_CHECKPOINT_EVERY 1

#define R_ANY ST_ROLE_ANY
#define R_OP ST_ROLE_OPERATOR
#define R_LEAD ST_ROLE_LEAD
#define R_QA ST_ROLE_QA
#define R_ADMIN ST_ROLE_ADMIN

/* The role table: the one place that says who may do what. docs/architecture.md
 * shows it (tests/station/test-engine.c checks the two agree). */
static const StActionRule st_engine_rules[ST_ACTION_LAST] = {
  { ST_ACTION_STATUS, "Status", 0, FALSE, FALSE, N_("asking the station's status") },
  { ST_ACTION_LOGIN_NAMES, "LoginNames, Login, Logout", 0, FALSE, FALSE, N_("logging in") },
  { ST_ACTION_SETUP_DEMO, "SetupDemo, SetupDemoMatter", R_ADMIN, TRUE, FALSE, N_("setting the demo station up") },
  { ST_ACTION_SETUP_SHOW, "SetupShow, SetupInfo", R_ANY, TRUE, FALSE, N_("showing the set-up") },
  { ST_ACTION_UNLOCK, "Unlock", R_ADMIN, FALSE, FALSE, N_("unlocking the HSM") },
  { ST_ACTION_LOCK, "Lock", R_ADMIN, FALSE, FALSE, N_("locking the HSM") },
  { ST_ACTION_OPERATOR_ADD, "OperatorAdd", R_ADMIN, TRUE, FALSE, N_("adding an operator") },
  { ST_ACTION_OPERATOR_LIST, "OperatorList", R_ADMIN, FALSE, FALSE, N_("listing the operators") },
  { ST_ACTION_OPERATOR_UNLOCK, "OperatorUnlock", R_ADMIN, FALSE, FALSE, N_("unlocking an operator") },
  { ST_ACTION_OPERATOR_SET_ROLE, "OperatorSetRole", R_ADMIN, FALSE, FALSE, N_("changing an operator's role") },
  { ST_ACTION_PROFILE_LIST, "ProfileList", R_ANY, FALSE, FALSE, N_("listing the profiles") },
  { ST_ACTION_BATCH_CREATE, "BatchCreate", R_LEAD, FALSE, FALSE, N_("creating a batch") },
  { ST_ACTION_BATCH_LIST, "BatchList", R_ANY, FALSE, FALSE, N_("batch list") },
  { ST_ACTION_BATCH_SHOW, "BatchGet, BatchUnits, BatchUnitsPage", R_ANY, FALSE, FALSE, N_("batch show") },
  { ST_ACTION_BATCH_CLOSE, "BatchClose", R_LEAD, FALSE, TRUE, N_("closing a batch") },
  { ST_ACTION_BATCH_ALLOW_MORE_VOIDS, "BatchAllowMoreVoids", R_LEAD, FALSE, FALSE,
    N_("allowing more voided certificates") },
  { ST_ACTION_SHIFT_STATS, "ShiftStats", R_ANY, FALSE, FALSE, N_("showing the shift") },
  { ST_ACTION_LINE_RUN, "LineStart, LineStop, LinePortStart, LinePortStop, LinePortRetry",
    R_OP | R_LEAD, FALSE, TRUE, N_("running a batch") },
  { ST_ACTION_LINE_REPROVISION, "LineStart with allow-reprovision", R_LEAD, FALSE, TRUE,
    N_("re-provisioning devices that hold a certificate") },
  { ST_ACTION_MANIFEST_EXPORT, "ManifestExport", R_LEAD, FALSE, TRUE, N_("exporting a manifest") },
  { ST_ACTION_MANIFEST_VERIFY, "ManifestVerify", R_QA | R_LEAD, FALSE, FALSE, N_("verifying a manifest") },
  { ST_ACTION_UNIT_VERIFY, "UnitVerify", R_QA, FALSE, FALSE, N_("verifying a unit") },
  { ST_ACTION_UNIT_LOOKUP, "UnitLookup", R_QA, FALSE, FALSE, N_("looking a unit up by a scanned code") },
  { ST_ACTION_UNIT_RESOLVE, "UnitResolve", R_LEAD, FALSE, FALSE, N_("resolving a disputed unit") },
  { ST_ACTION_UNIT_REVOKE, "UnitRevoke", R_LEAD, FALSE, FALSE, N_("revoking a shipped unit's certificate") },
  { ST_ACTION_CRL_ISSUE, "CrlIssue", R_LEAD | R_ADMIN, FALSE, TRUE, N_("issuing a CRL") },
  { ST_ACTION_AUDIT_VERIFY, "AuditVerify", R_QA | R_LEAD | R_ADMIN, FALSE, FALSE,
    N_("verifying the audit log") },
  { ST_ACTION_AUDIT_EXPORT, "AuditExport", R_QA | R_ADMIN, FALSE, FALSE, N_("exporting the audit log") },
  { ST_ACTION_DB_CHECK, "DbCheck", R_ANY, FALSE, FALSE, N_("db check") },
  { ST_ACTION_DB_BACKUP, "DbBackup", R_ADMIN | R_LEAD, FALSE, FALSE, N_("db backup") },
  { ST_ACTION_HEALTH, "Health", R_ANY, FALSE, FALSE, N_("showing the station's health") },
  { ST_ACTION_SOCKET_NAMES, "SocketNames", R_ANY, FALSE, FALSE, N_("listing the sockets' names") },
  { ST_ACTION_BENCH, "Bench", R_ADMIN, FALSE, TRUE, N_("bench") },
  /* no login: the proof is the HSM token's SO PIN (st-recover.h) */
  { ST_ACTION_ADMIN_RECOVER, "AdminRecover", 0, FALSE, FALSE,
    N_("recovering a locked-out admin (the proof: the HSM token's SO PIN)") },
  { ST_ACTION_CA_VERIFICATION_CERT, "CaVerificationCert", R_ADMIN, FALSE, TRUE,
    N_("making a CA verification certificate") },
  /* the key ceremony: init on a new home only (no operators yet), import by an admin */
  { ST_ACTION_CA_INIT, "CaInit", R_ADMIN, TRUE, FALSE, N_("the key ceremony (ca init)") },
  { ST_ACTION_CA_IMPORT, "CaImport", R_ADMIN, FALSE, FALSE, N_("importing the CA certificates (ca import)") },
  /* a Matter batch's outputs that hold the setup passcodes (docs/matter.md) */
  { ST_ACTION_MATTER_CODES_EXPORT, "MatterCodesExport", R_LEAD, FALSE, FALSE,
    N_("exporting a Matter batch's setup codes") },
  { ST_ACTION_MATTER_LABELS_EXPORT, "MatterLabelsExport", R_LEAD, FALSE, FALSE,
    N_("printing a Matter batch's labels") },
};

const StActionRule *
st_engine_rule (StAction action)
{
  g_return_val_if_fail (action < ST_ACTION_LAST, NULL);
  return &st_engine_rules[action];
}

/* The CA with a count of the actions using it: Lock drops the engine's
 * reference, and the CA (its HSM session, its PIN) goes when the last
 * action using it ends. */
typedef struct {
  gint ref;
  StCa *ca;
} StCaHold;

static void
st_ca_hold_release (StCaHold *hold)
{
  if (hold != NULL && g_atomic_int_dec_and_test (&hold->ref))
    {
      st_ca_free (hold->ca);
      g_free (hold);
    }
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StCaHold, st_ca_hold_release)

/* A running line: its batch, its sockets (none shared with another line),
 * how to stop it and its per-socket control. */
typedef struct {
  gint64 batch_id;
  GPtrArray *ports;
  GCancellable *cancellable;
  StBatchControl *control;
} StEngineLine;

static void
st_engine_line_free (gpointer data)
{
  StEngineLine *l = data;
  g_ptr_array_unref (l->ports);
  g_object_unref (l->cancellable);
  st_batch_control_unref (l->control);
  g_free (l);
}

static gboolean
st_engine_line_has_port (StEngineLine *l, const char *port)
{
  for (guint i = 0; i < l->ports->len; i++)
    if (g_strcmp0 (g_ptr_array_index (l->ports, i), port) == 0)
      return TRUE;
  return FALSE;
}

struct _StEngine {
  gchar *home;
  gchar *config_path;        /* NULL: HOME/station.conf */
  GMutex lock;               /* guards everything below */
  StConfig *config;          /* NULL until set up */
  StDb *db;                  /* NULL until set up */
  StCaHold *ca_hold;         /* NULL while locked; each action holds its own reference */
  /* the running line */
  GPtrArray *lines;          /* StEngineLine*: the lines running, one per batch */
  GCond line_cond;           /* signalled when a line ends */
  StEngineStateFunc state_func;
  gpointer state_data;
  GMutex ceremony_lock;      /* one ca init or ca import at a time */
  GPtrArray *old_configs;    /* configurations replaced by ca import (borrowed pointers stay valid) */
};

/* ---- life cycle --------------------------------------------------------- */

static void
st_engine_state_changed (StEngine *engine)
{
  if (engine->state_func != NULL)
    engine->state_func (engine, engine->state_data);
}

/* Loads the configuration and opens the database when the home has one;
 * under the lock or before the engine is shared. */
static gboolean
st_engine_load (StEngine *engine, GError **error)
{
  g_autoptr(StConfig) config = engine->config_path != NULL
    ? st_config_load_file (engine->home, engine->config_path, error)
    : st_config_load (engine->home, error);
  if (config == NULL)
    return FALSE;
  st_config_apply_env (config);
  g_autoptr(StDb) db = st_db_open (config->db_path, error);
  if (db == NULL)
    return FALSE;
  /* one service per home (its lock): no PIN is being checked now */
  guint released = 0;
  if (!st_db_operator_release_attempts (db, &released, error))
    return FALSE;
  if (released > 0)
    g_message ("released the login attempts of %u operator(s) that a stopped service was checking",
               released);
  engine->config = g_steal_pointer (&config);
  engine->db = g_steal_pointer (&db);
  return TRUE;
}

StEngine *
st_engine_new (const char *home, const char *config_path, GError **error)
{
  g_autoptr(StEngine) engine = g_new0 (StEngine, 1);
  g_mutex_init (&engine->lock);
  g_cond_init (&engine->line_cond);
  engine->lines = g_ptr_array_new_with_free_func (st_engine_line_free);
  g_mutex_init (&engine->ceremony_lock);
  engine->old_configs = g_ptr_array_new_with_free_func ((GDestroyNotify) st_config_free);
  engine->home = g_strdup (home != NULL ? home : st_config_default_home ());
  engine->config_path = g_strdup (config_path);
  g_autoptr(GError) local = NULL;
  if (!st_engine_load (engine, &local))
    {
      /* A new home is set up later; anything else is a broken station. */
      if (!g_error_matches (local, ST_ERROR, ST_ERROR_NOT_FOUND) || config_path != NULL)
        {
          g_propagate_error (error, g_steal_pointer (&local));
          return NULL;
        }
      g_debug ("%s is not set up yet: %s", engine->home, local->message);
    }
  return g_steal_pointer (&engine);
}

void
st_engine_free (StEngine *engine)
{
  if (engine == NULL)
    return;
  st_engine_line_stop_internal (engine, 0);
  g_mutex_lock (&engine->lock);
  while (engine->lines->len > 0)
    g_cond_wait (&engine->line_cond, &engine->lock);
  g_mutex_unlock (&engine->lock);
  g_ptr_array_unref (engine->lines);
  if (engine->db != NULL)
    {
      st_db_set_checkpoint_hook (engine->db, 0, NULL, NULL);
      st_audit_checkpoint_at_exit (engine->home, engine->config, engine->db,
                                   engine->ca_hold != NULL ? engine->ca_hold->ca : NULL);
    }
  st_ca_hold_release (engine->ca_hold);
  st_db_close (engine->db);
  st_config_free (engine->config);
  g_ptr_array_unref (engine->old_configs);
  g_mutex_clear (&engine->ceremony_lock);
  g_free (engine->home);
  g_free (engine->config_path);
  g_mutex_clear (&engine->lock);
  g_cond_clear (&engine->line_cond);
  g_free (engine);
}

const char *
st_engine_get_home (StEngine *engine)
{
  return engine->home;
}

gboolean
st_engine_is_configured (StEngine *engine)
{
  g_mutex_lock (&engine->lock);
  gboolean configured = engine->db != NULL;
  g_mutex_unlock (&engine->lock);
  return configured;
}

gboolean
st_engine_is_unlocked (StEngine *engine)
{
  g_mutex_lock (&engine->lock);
  gboolean unlocked = engine->ca_hold != NULL;
  g_mutex_unlock (&engine->lock);
  return unlocked;
}

gint64
st_engine_get_running_batch (StEngine *engine)
{
  g_mutex_lock (&engine->lock);
  gint64 id = engine->lines->len > 0
               ? ((StEngineLine *) g_ptr_array_index (engine->lines, 0))->batch_id : 0;
  g_mutex_unlock (&engine->lock);
  return id;
}

StConfig *
st_engine_get_config (StEngine *engine)
{
  return engine->config;
}

void
st_engine_set_state_func (StEngine *engine, StEngineStateFunc func, gpointer user_data)
{
  engine->state_func = func;
  engine->state_data = user_data;
}

/* The database and the CA as they are now. The database never changes once
 * set (set-up only adds it); the CA is only freed by Lock, which refuses
 * while a line runs, and actions that use it hold... a reference through
 * the lock below for their whole call. */
static StDb *
st_engine_db (StEngine *engine)
{
  g_mutex_lock (&engine->lock);
  StDb *db = engine->db;
  g_mutex_unlock (&engine->lock);
  return db;
}

/* ---- the role check ----------------------------------------------------- */

gboolean
st_engine_awaits_import (StEngine *engine)
{
  g_mutex_lock (&engine->lock);
  gboolean awaiting = engine->config != NULL && engine->config->awaiting_import;
  g_mutex_unlock (&engine->lock);
  return awaiting;
}

/* What a station whose key ceremony waits for 'ca import' can do: its
 * operators, its records, showing the set-up and the import itself. */
static gboolean
st_engine_allowed_awaiting_import (StAction action)
{
  switch (action)
    {
    case ST_ACTION_STATUS:
    case ST_ACTION_LOGIN_NAMES:
    case ST_ACTION_SETUP_DEMO:
    case ST_ACTION_SETUP_SHOW:
    case ST_ACTION_OPERATOR_ADD:
    case ST_ACTION_OPERATOR_LIST:
    case ST_ACTION_OPERATOR_UNLOCK:
    case ST_ACTION_OPERATOR_SET_ROLE:
    case ST_ACTION_PROFILE_LIST:
    case ST_ACTION_DB_CHECK:
    case ST_ACTION_DB_BACKUP:
    case ST_ACTION_AUDIT_EXPORT:
    case ST_ACTION_ADMIN_RECOVER:
    case ST_ACTION_CA_INIT:
    case ST_ACTION_CA_IMPORT:
      return TRUE;
    default:
      return FALSE;
    }
}

gboolean
st_engine_require (StEngine *engine, const StAuthSession *session, StAction action, GError **error)
{
  const StActionRule *rule = st_engine_rule (action);
  StDb *db = st_engine_db (engine);
  if (rule->roles != 0)
    {
      gboolean allowed = FALSE;
      if (rule->bootstrap && session == NULL)
        {
          /* a new station: the first admin, the demo set-up */
          gint64 n = db != NULL ? st_db_operator_count (db, error) : 0;
          if (n < 0)
            return FALSE;
          allowed = n == 0;
        }
      if (!allowed)
        {
          if (db == NULL)
            {
              g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                           _("%s: the station in %s is not set up yet: run 'station setup demo' "
                           "or see docs/setup.md"), _(rule->what), engine->home);
              return FALSE;
            }
          if (session == NULL)
            {
              gint64 n = st_db_operator_count (db, error);
              if (n < 0)
                return FALSE;
              g_autofree gchar *needed = st_role_mask_to_string (rule->roles);
              if (n == 0)
                g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                             _("%s: this station has no operators yet: create the first admin with "
                             "'station operator add NAME --role admin' (or run 'station setup demo' "
                             "for the demo operators)"), _(rule->what));
              else
                g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                             _("%s needs the role %s: log in with --operator NAME (the PIN comes "
                             "from STATION_OPERATOR_PIN or a prompt)"), _(rule->what), needed);
              return FALSE;
            }
          if (!st_auth_require (db, session, rule->roles, rule->what, error))
            return FALSE;
        }
    }
  if (st_engine_awaits_import (engine) && !st_engine_allowed_awaiting_import (action))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                   _("%s: the key ceremony is not finished: run 'station ca import --chain FILE "
                   "--signing-cert FILE' with the certificates the root issued for the requests "
                   "of 'station ca init' (docs/ceremony.md)"), _(rule->what));
      return FALSE;
    }
  if (rule->needs_hsm && !st_engine_is_unlocked (engine))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_HSM_LOCKED,
                   _("%s needs the HSM, and the station is locked: an admin unlocks it with "
                   "'station unlock' (or the Unlock HSM button of the admin view)"), _(rule->what));
      return FALSE;
    }
  if (rule->roles != 0 && db == NULL && action != ST_ACTION_SETUP_DEMO
      && action != ST_ACTION_OPERATOR_ADD && action != ST_ACTION_CA_INIT)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                   _("%s: the station in %s is not set up yet: run 'station setup demo' or see "
                   "docs/setup.md"), _(rule->what), engine->home);
      return FALSE;
    }
  return TRUE;
}

/* The CA for one action (NULL while locked): release it when the action
 * ends (g_autoptr). */
static StCaHold *
st_engine_ca_acquire (StEngine *engine)
{
  g_mutex_lock (&engine->lock);
  StCaHold *hold = engine->ca_hold;
  if (hold != NULL)
    g_atomic_int_inc (&hold->ref);
  g_mutex_unlock (&engine->lock);
  return hold;
}

#define ST_CA_OF(hold) ((hold) != NULL ? (hold)->ca : NULL)

/* The database's checkpoint hook: signs with the CA as it is now (none
 * while locked: the entries wait for the unlock). */
static void
st_engine_checkpoint_hook (StDb *db, gpointer data)
{
  g_autoptr(StCaHold) hold = st_engine_ca_acquire (data);
  g_autoptr(GError) error = NULL;
  if (hold != NULL && !st_audit_checkpoint (db, hold->ca, "every-n", &error))
    g_warning ("audit checkpoint: %s", error->message);
}

static X509 *
st_engine_station_root (StEngine *engine, GError **error)
{
  return st_ca_load_cert_file (engine->config->root_file, error);
}

/* The audit entry of an action: @first_key, @value, ... NULL (strings). */
G_GNUC_NULL_TERMINATED static gboolean
st_engine_audit (StEngine *engine, const StAuthSession *session, const char *event,
                 GError **error, const char *first_key, ...)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  va_list ap;
  va_start (ap, first_key);
  for (const char *k = first_key; k != NULL; k = va_arg (ap, const char *))
    {
      const char *v = va_arg (ap, const char *);
      json_builder_set_member_name (b, k);
      json_builder_add_string_value (b, v != NULL ? v : "");
    }
  va_end (ap);
  json_builder_end_object (b);
  g_autofree gchar *payload = st_json_builder_text (b);
  return st_db_audit_add (engine->db, session != NULL ? session->name : "station", event,
                          payload, error);
}

/* ---- sessions, set-up, the HSM ------------------------------------------ */

StAuthSession *
st_engine_login (StEngine *engine, const char *name, const char *pin, GError **error)
{
  StDb *db = st_engine_db (engine);
  if (db == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                   _("the station in %s is not set up yet: run 'station setup demo' or see "
                   "docs/setup.md"), engine->home);
      return NULL;
    }
  return st_auth_login (db, name, pin, error);
}

GVariant *
st_engine_status (StEngine *engine)
{
  GVariantBuilder b;
  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_mutex_lock (&engine->lock);
  g_variant_builder_add (&b, "{sv}", "configured", g_variant_new_boolean (engine->db != NULL));
  g_variant_builder_add (&b, "{sv}", "unlocked", g_variant_new_boolean (engine->ca_hold != NULL));
  GVariantBuilder running;
  g_variant_builder_init (&running, G_VARIANT_TYPE ("ax"));
  for (guint i = 0; i < engine->lines->len; i++)
    g_variant_builder_add (&running, "x", ((StEngineLine *) g_ptr_array_index (engine->lines, i))->batch_id);
  g_variant_builder_add (&b, "{sv}", "running-batches", g_variant_builder_end (&running));
  g_variant_builder_add (&b, "{sv}", "running-batch",
                         g_variant_new_int64 (engine->lines->len > 0
                                              ? ((StEngineLine *) g_ptr_array_index (engine->lines, 0))->batch_id
                                              : 0));
  g_variant_builder_add (&b, "{sv}", "home", g_variant_new_string (engine->home));
  if (engine->config != NULL)
    {
      g_variant_builder_add (&b, "{sv}", "station-id",
                             g_variant_new_string (engine->config->station_id));
      g_variant_builder_add (&b, "{sv}", "demo", g_variant_new_boolean (engine->config->demo));
      g_variant_builder_add (&b, "{sv}", "ceremony",
                             g_variant_new_string (engine->config->awaiting_import
                                                   ? "awaiting-import" : "complete"));
      g_variant_builder_add (&b, "{sv}", "idle-logout",
                             g_variant_new_uint32 (engine->config->idle_logout_s));
    }
  StDb *db = engine->db;
  g_mutex_unlock (&engine->lock);
  gint64 n = db != NULL ? st_db_operator_count (db, NULL) : 0;
  g_variant_builder_add (&b, "{sv}", "operators", g_variant_new_int64 (MAX (n, 0)));
  return g_variant_builder_end (&b);
}

GPtrArray *
st_engine_login_names (StEngine *engine, GError **error)
{
  StDb *db = st_engine_db (engine);
  if (db == NULL)
    return g_ptr_array_new_with_free_func ((GDestroyNotify) st_db_operator_free);
  GPtrArray *ops = st_db_operator_list (db, error);
  for (guint i = 0; ops != NULL && i < ops->len; i++)
    {
      StDbOperator *op = g_ptr_array_index (ops, i);
      g_clear_pointer (&op->pin_hash, g_free);
      op->failed_attempts = 0;
    }
  return ops;
}

static gboolean
st_engine_setup_demo_kind (StEngine *engine, const StAuthSession *session, const char *pin,
                           gboolean matter, GError **error);

gboolean
st_engine_setup_demo (StEngine *engine, const StAuthSession *session, const char *pin,
                      GError **error)
{
  return st_engine_setup_demo_kind (engine, session, pin, FALSE, error);
}

gboolean
st_engine_setup_demo_matter (StEngine *engine, const StAuthSession *session, const char *pin,
                             GError **error)
{
  return st_engine_setup_demo_kind (engine, session, pin, TRUE, error);
}

static gboolean
st_engine_setup_demo_kind (StEngine *engine, const StAuthSession *session, const char *pin,
                           gboolean matter, GError **error)
{
  if (!st_engine_require (engine, session, ST_ACTION_SETUP_DEMO, error))
    return FALSE;
  if (st_engine_is_unlocked (engine))
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_BUSY,
                           _("the station is unlocked: lock it ('station lock') before setting it "
                           "up again"));
      return FALSE;
    }
  if (engine->config_path != NULL)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                           _("this service reads its configuration from a file of its own: a demo "
                           "station is set up in a home of its own ('stationd --home DIR')"));
      return FALSE;
    }
  if (!(matter ? st_setup_demo_matter (engine->home, pin, error) : st_setup_demo (engine->home, pin, error)))
    return FALSE;
  g_mutex_lock (&engine->lock);
  gboolean ok = engine->db != NULL || st_engine_load (engine, error);
  g_mutex_unlock (&engine->lock);
  if (ok)
    st_engine_state_changed (engine);
  return ok;
}

/* SetupShow and SetupInfo: the role, and a station that is set up. */
static gboolean
st_engine_setup_readable (StEngine *engine, const StAuthSession *session, GError **error)
{
  if (!st_engine_require (engine, session, ST_ACTION_SETUP_SHOW, error))
    return FALSE;
  if (engine->config == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                   _("the station in %s is not set up yet: run 'station setup demo' or see "
                     "docs/setup.md"), engine->home);
      return FALSE;
    }
  return TRUE;
}

gchar *
st_engine_setup_show (StEngine *engine, const StAuthSession *session, GError **error)
{
  if (!st_engine_setup_readable (engine, session, error))
    return NULL;
  g_autoptr(GString) out = g_string_new (NULL);
  g_autoptr(StCaHold) hold = st_engine_ca_acquire (engine);
  if (!st_setup_show (engine->config, ST_CA_OF (hold), out, error))
    return NULL;
  return g_string_free (g_steal_pointer (&out), FALSE);
}

GVariant *
st_engine_setup_info (StEngine *engine, const StAuthSession *session, GError **error)
{
  if (!st_engine_setup_readable (engine, session, error))
    return NULL;
  g_autoptr(StCaHold) hold = st_engine_ca_acquire (engine);
  return st_setup_info (engine->config, ST_CA_OF (hold));
}

static gboolean
st_engine_open_ca (StEngine *engine, const char *pin, GError **error)
{
  if (st_engine_is_unlocked (engine))
    return TRUE;
  StConfig *config = engine->config;
  if (config == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                   _("the station in %s is not set up yet: nothing to unlock"), engine->home);
      return FALSE;
    }
  if (config->awaiting_import)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                           /* English: the audit log records it (hsm-unlock-failed) */
                           "the key ceremony is not finished: run 'station ca import --chain FILE "
                           "--signing-cert FILE' before unlocking (docs/ceremony.md)");
      return FALSE;
    }
  StCa *ca = st_ca_open (config, pin, error);
  if (ca == NULL)
    return FALSE;
  StCaHold *hold = g_new0 (StCaHold, 1);
  hold->ref = 1;
  hold->ca = g_steal_pointer (&ca);
  g_mutex_lock (&engine->lock);
  gboolean first = engine->ca_hold == NULL;
  if (first)
    engine->ca_hold = g_steal_pointer (&hold);
  g_mutex_unlock (&engine->lock);
  st_ca_hold_release (hold);
  if (first)
    {
      /* what waited while the station was locked is covered now */
      st_db_set_checkpoint_hook (engine->db, ST_ENGINE_IDLE_CHECKPOINT_EVERY,
                                 st_engine_checkpoint_hook, engine);
      g_autoptr(StCaHold) now = st_engine_ca_acquire (engine);
      g_autoptr(GError) cp_error = NULL;
      if (now != NULL && !st_audit_checkpoint (engine->db, now->ca, "unlock", &cp_error))
        g_warning ("the audit checkpoint at unlock failed: %s", cp_error->message);
    }
  st_engine_state_changed (engine);
  return TRUE;
}

gboolean
st_engine_unlock (StEngine *engine, const StAuthSession *session, const char *pin, GError **error)
{
  if (!st_engine_require (engine, session, ST_ACTION_UNLOCK, error))
    return FALSE;
  gboolean ok = st_engine_open_ca (engine, pin, error);
  g_autoptr(GError) audit_error = NULL;
  if (!st_engine_audit (engine, session, ok ? "hsm-unlock" : "hsm-unlock-failed", &audit_error,
                        "reason", ok ? "" : (*error)->message, NULL))
    g_warning ("%s", audit_error->message);
  return ok;
}

gboolean
st_engine_unlock_from_file (StEngine *engine, const char *path, GError **error)
{
  gchar *pin = NULL;
  gsize len = 0;
  g_autoptr(GError) local = NULL;
  if (!g_file_get_contents (path, &pin, &len, &local))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_READ, _("cannot read the HSM PIN credential %s: %s"),
                   path, local->message);
      return FALSE;
    }
  if (len > ST_ENGINE_PIN_FILE_MAX || strlen (pin) != len)
    {
      st_secret_free (pin);
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("the HSM PIN credential %s is not a PIN (at most %d characters, no NUL)"), path,
                   ST_ENGINE_PIN_FILE_MAX);
      return FALSE;
    }
  while (len > 0 && (pin[len - 1] == '\n' || pin[len - 1] == '\r'))
    pin[--len] = '\0';
  gboolean ok = st_engine_open_ca (engine, pin, error);
  st_secret_free (pin);
  if (ok && engine->db != NULL)
    {
      g_autoptr(GError) audit_error = NULL;
      if (!st_engine_audit (engine, NULL, "hsm-unlock", &audit_error, "credential", path, NULL))
        g_warning ("%s", audit_error->message);
    }
  return ok;
}

gboolean
st_engine_lock (StEngine *engine, const StAuthSession *session, GError **error)
{
  if (!st_engine_require (engine, session, ST_ACTION_LOCK, error))
    return FALSE;
  g_mutex_lock (&engine->lock);
  gboolean busy = engine->lines->len > 0;
  g_mutex_unlock (&engine->lock);
  if (busy)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_BUSY,
                           _("a line is running: stop it before locking the HSM"));
      return FALSE;
    }
  /* the lock's own entry is the last one covered */
  gboolean ok = st_engine_audit (engine, session, "hsm-lock", error, "by", session->name, NULL);
  g_mutex_lock (&engine->lock);
  g_autoptr(StCaHold) hold = g_steal_pointer (&engine->ca_hold);
  g_mutex_unlock (&engine->lock);
  if (hold != NULL)
    {
      g_autoptr(GError) cp_error = NULL;
      if (!st_audit_checkpoint (engine->db, hold->ca, "lock", &cp_error))
        g_warning ("the audit checkpoint at lock failed: %s", cp_error->message);
    }
  st_engine_state_changed (engine);
  return ok;
}

/* ---- the key ceremony ----------------------------------------------------- */

gboolean
st_engine_ca_init (StEngine *engine, const StAuthSession *session, const StCeremonyInit *request,
                   const char *admin, const char *admin_pin, StCeremonyKeys *keys, GError **error)
{
  if (!st_engine_require (engine, session, ST_ACTION_CA_INIT, error))
    return FALSE;
  g_autoptr(GMutexLocker) ceremony = g_mutex_locker_new (&engine->ceremony_lock);
  g_mutex_lock (&engine->lock);
  gboolean set_up = engine->config != NULL;
  g_mutex_unlock (&engine->lock);
  g_autofree gchar *conf = g_build_filename (engine->home, ST_CONFIG_FILE, NULL);
  if (set_up || g_file_test (conf, G_FILE_TEST_EXISTS))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                   _("the station in %s is already set up (%s exists): 'ca init' makes the keys of a "
                   "new station only; a new key ceremony (a re-key) is a new home: see "
                   "docs/ceremony.md"), engine->home, conf);
      return FALSE;
    }
  if (engine->config_path != NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                   _("this service reads its configuration from %s: run the key ceremony with a "
                   "service of the station's home ('stationd --home DIR'), then point --config at "
                   "the station.conf it writes"), engine->config_path);
      return FALSE;
    }
  gsize pin_len = admin_pin != NULL ? strlen (admin_pin) : 0;
  if (admin == NULL || *admin == '\0' || strlen (admin) > 64 || !g_utf8_validate (admin, -1, NULL))
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           _("--admin needs the name of the station's first admin (1 to 64 characters): "
                           "the ceremony's record names who ran it"));
      return FALSE;
    }
  if (pin_len < ST_AUTH_PIN_MIN || pin_len > ST_AUTH_PIN_MAX)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("the new admin's PIN (STATION_OPERATOR_PIN or the prompt) must have %d to %d "
                   "characters"), ST_AUTH_PIN_MIN, ST_AUTH_PIN_MAX);
      return FALSE;
    }
  StCeremonyInit req = *request;
  req.admin = admin;
  g_autoptr(StConfig) config = st_ceremony_init (engine->home, &req, keys, error);
  if (config == NULL)
    {
      g_prefix_error (error, _("ca init: "));
      return FALSE;
    }
  if (!st_config_save (config, error))
    return FALSE;
  g_mutex_lock (&engine->lock);
  gboolean loaded = engine->db != NULL || st_engine_load (engine, error);
  StDb *db = engine->db;
  g_mutex_unlock (&engine->lock);
  if (!loaded)
    return FALSE;
  if (!st_auth_add_operator (db, NULL, admin, ST_ROLE_ADMIN, admin_pin, error))
    {
      g_prefix_error (error, _("the keys and %s are made, but the first admin is not: add it with "
                      "'station operator add NAME --role admin', then run 'ca import': "),
                      ST_CONFIG_FILE);
      st_engine_state_changed (engine);
      return FALSE;
    }
  gboolean ok = st_db_audit_add (db, admin, "ca-init", keys->audit_payload, error);
  st_engine_state_changed (engine);
  return ok;
}

gboolean
st_engine_ca_import (StEngine *engine, const StAuthSession *session, const char *pin,
                     const char *chain_pem, const char *signing_pem, GString *report,
                     GError **error)
{
  if (!st_engine_require (engine, session, ST_ACTION_CA_IMPORT, error))
    return FALSE;
  g_autoptr(GMutexLocker) ceremony = g_mutex_locker_new (&engine->ceremony_lock);
  if (!st_engine_awaits_import (engine))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                   _("the station in %s does not wait for 'ca import': its certificates are in "
                   "place ('station ca show'); a new key ceremony is a new home (docs/ceremony.md)"),
                   engine->home);
      return FALSE;
    }
  g_autofree gchar *payload = NULL;
  g_autoptr(StConfig) next = st_ceremony_import (engine->config, pin, chain_pem, signing_pem, report,
                                                 &payload, error);
  if (next == NULL)
    {
      /* English: the audit log records it (ca-import-failed) */
      g_prefix_error (error, "ca import: nothing was changed: ");
      g_autoptr(GError) audit_error = NULL;
      if (!st_engine_audit (engine, session, "ca-import-failed", &audit_error, "reason",
                            (*error)->message, NULL))
        g_warning ("%s", audit_error->message);
      return FALSE;
    }
  if (!st_db_audit_add (engine->db, session->name, "ca-import", payload, error))
    return FALSE;
  g_mutex_lock (&engine->lock);
  g_ptr_array_add (engine->old_configs, engine->config);
  engine->config = g_steal_pointer (&next);
  g_mutex_unlock (&engine->lock);
  st_engine_state_changed (engine);
  return TRUE;
}

/* ---- operators ---------------------------------------------------------- */

gboolean
st_engine_operator_add (StEngine *engine, const StAuthSession *session, const char *name,
                        const char *role_text, const char *pin, GError **error)
{
  StRole role = 0;
  if (!st_role_from_string (role_text, &role, error)
      || !st_engine_require (engine, session, ST_ACTION_OPERATOR_ADD, error))
    return FALSE;
  StDb *db = st_engine_db (engine);
  if (db == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                   _("the station in %s is not set up yet: operators come after the set-up"),
                   engine->home);
      return FALSE;
    }
  return st_auth_add_operator (db, session, name, role, pin, error);
}

GPtrArray *
st_engine_operator_list (StEngine *engine, const StAuthSession *session, GError **error)
{
  if (!st_engine_require (engine, session, ST_ACTION_OPERATOR_LIST, error))
    return NULL;
  GPtrArray *ops = st_db_operator_list (engine->db, error);
  for (guint i = 0; ops != NULL && i < ops->len; i++)
    {
      StDbOperator *op = g_ptr_array_index (ops, i);
      g_clear_pointer (&op->pin_hash, g_free);
    }
  return ops;
}

gboolean
st_engine_operator_unlock (StEngine *engine, const StAuthSession *session, const char *name,
                           GError **error)
{
  return st_engine_require (engine, session, ST_ACTION_OPERATOR_UNLOCK, error)
         && st_db_operator_unlock (engine->db, name, session->name, error);
}

gboolean
st_engine_operator_set_role (StEngine *engine, const StAuthSession *session, const char *name,
                             const char *role_text, GError **error)
{
  StRole role = 0;
  return st_role_from_string (role_text, &role, error)
         && st_engine_require (engine, session, ST_ACTION_OPERATOR_SET_ROLE, error)
         && st_db_operator_set_role (engine->db, name, st_role_to_string (role), session->name,
                                     error);
}

/* One SO PIN check at a time, service-wide: guesses are not made in parallel. */
static GMutex st_engine_recover_lock;
/* What a wrong SO PIN costs, on top of the token's own count. */
#define ST_ENGINE_RECOVER_DELAY_US G_USEC_PER_SEC

gboolean
st_engine_admin_recover (StEngine *engine, const StAuthSession *session, const char *name,
                         const char *so_pin, const char *new_pin, const char **action,
                         GError **error)
{
  if (!st_engine_require (engine, session, ST_ACTION_ADMIN_RECOVER, error))
    return FALSE;
  StDb *db = st_engine_db (engine);
  if (db == NULL || engine->config == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                   _("the station in %s is not set up yet: there is no admin to recover"),
                   engine->home);
      return FALSE;
    }
  gboolean add = new_pin != NULL && *new_pin != '\0';
  /* what can be refused without the SO PIN is refused before it is tried */
  g_autoptr(GError) local = NULL;
  g_autoptr(StDbOperator) op = st_db_operator_get (db, name, &local);
  if (op == NULL && !g_error_matches (local, ST_ERROR, ST_ERROR_NOT_FOUND))
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  if (!add && op == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                   _("there is no operator '%s': name a locked admin, or give a new name with --new "
                   "to add an admin"), name);
      return FALSE;
    }
  if (!add && g_strcmp0 (op->role, "admin") != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                   _("operator '%s' is %s: recovery unlocks an admin, or adds a new one (--new with a "
                   "name not taken)"), op->name, op->role);
      return FALSE;
    }
  if (add && op != NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("there is already an operator '%s': choose another name for the new admin, or "
                   "recover '%s' without --new"), name, name);
      return FALSE;
    }
  g_autofree gchar *hash = add ? st_auth_hash_pin (new_pin, error) : NULL;
  if (add && hash == NULL)
    return FALSE;

  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&st_engine_recover_lock);
  g_autoptr(GError) proof = NULL;
  if (!st_recover_check_so_pin (engine->config, so_pin, &proof))
    {
      g_autoptr(GError) audit_error = NULL;
      if (!st_engine_audit (engine, NULL, "admin-recover-failed", &audit_error, "name", name,
                            "reason", proof->message, NULL))
        g_warning ("%s", audit_error->message);
      if (g_error_matches (proof, ST_ERROR, ST_ERROR_AUTH_FAILED))
        g_usleep (ST_ENGINE_RECOVER_DELAY_US);
      g_propagate_prefixed_error (error, g_steal_pointer (&proof),
                                  _("recovery of admin '%s' refused: the HSM token's SO PIN was not "
                                  "proved (the attempt is audited, and the token counts it): "), name);
      return FALSE;
    }
  const char *done = NULL;
  gboolean ok = st_db_operator_recover (db, name, hash, "hsm-so", &done, error);
  if (hash != NULL)
    st_memwipe (hash, strlen (hash));
  if (!ok)
    return FALSE;
  g_message ("break-glass recovery: admin '%s' %s with the HSM token's SO PIN", name, done);
  if (action != NULL)
    *action = done;
  return TRUE;
}
/* ---- profiles and batches ----------------------------------------------- */

GPtrArray *
st_engine_profile_list (StEngine *engine, const StAuthSession *session, GError **error)
{
  if (!st_engine_require (engine, session, ST_ACTION_PROFILE_LIST, error))
    return NULL;
  /* Issue 17: the station's profile folder alone. The installed examples
   * (ST_DATADIR) and the build tree's are not profiles this station makes
   * batches of: an admin copies a profile into HOME/profiles to offer it. */
  g_autofree gchar *home_dir = g_build_filename (engine->home, "profiles", NULL);
  const char *dirs[] = { home_dir };
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  for (guint d = 0; d < G_N_ELEMENTS (dirs); d++)
    {
      g_autoptr(GDir) dir = g_dir_open (dirs[d], 0, NULL);
      if (dir == NULL)
        continue;
      const char *name;
      while ((name = g_dir_read_name (dir)) != NULL &&
             g_hash_table_size (seen) < ST_ENGINE_MAX_PROFILES)
        if (g_str_has_suffix (name, ".profile") && !g_hash_table_contains (seen, name))
          g_hash_table_insert (seen, g_strdup (name), g_build_filename (dirs[d], name, NULL));
    }
  GPtrArray *paths = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GList) keys = g_hash_table_get_keys (seen);
  keys = g_list_sort (keys, (GCompareFunc) g_strcmp0);
  for (GList *l = keys; l != NULL; l = l->next)
    g_ptr_array_add (paths, g_strdup (g_hash_table_lookup (seen, l->data)));
  return paths;
}

/* Security review, issue 14, item 11a: a profile that cannot issue under
 * the CA (a validity beyond its notAfter, a CA that cannot sign) is refused
 * when the batch is made, not unit by unit on the line. The CA certificate
 * is the unlocked CA's, or else its file (no HSM needed to read it); a CA
 * certificate kept in the token while locked is checked at the line's
 * start instead. */
static gboolean
st_engine_profile_can_issue (StEngine *engine, const StProfile *profile, GError **error)
{
  g_autoptr(StCaHold) hold = st_engine_ca_acquire (engine);
  StCa *ca = ST_CA_OF (hold);
  g_autoptr(X509) from_file = NULL;
  X509 *ca_cert = ca != NULL ? ca->ca_cert : NULL;
  if (ca_cert == NULL && engine->config->ca_cert != NULL && !g_str_has_prefix (engine->config->ca_cert, "pkcs11:"))
    {
      g_autoptr(GError) local = NULL;
      from_file = st_ca_load_cert_file (engine->config->ca_cert, &local);
      if (from_file == NULL)
        g_debug ("the profile is checked against the CA at the line's start: %s", local->message);
      ca_cert = from_file;
    }
  if (ca_cert == NULL)
    return TRUE;
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  if (!st_issue_check_profile (ca_cert, profile, now, error))
    {
      /* the lead's input is refused (exit 2), not a failed check */
      if ((*error)->domain == ST_ERROR && (*error)->code == ST_ERROR_VERIFY_FAILED)
        (*error)->code = ST_ERROR_INVALID_DATA;
      g_prefix_error (error, _("the batch was not created: "));
      return FALSE;
    }
  return TRUE;
}

/* A Matter profile's Certification Declaration is readable, names the
 * profile's VID and PID and, when it lists the PAAs it allows, the
 * station's root (st_matter_cd_load_for_profile): a batch of a CD every
 * commissioner would refuse is not made. The file is the service's to
 * read, as the line reads it. The root is station.conf's root-file; a
 * root that cannot be read here is checked at the line's start.
 * *@cd_note (may be NULL) gets the line that says a development CD is one. */
static gboolean
st_engine_matter_cd_fits (StEngine *engine, const StProfile *profile, gchar **cd_note, GError **error)
{
  if (!profile->matter.enabled)
    return TRUE;
  g_autoptr(GError) local = NULL;
  g_autoptr(X509) root = engine->config->root_file != NULL ? st_engine_station_root (engine, &local) : NULL;
  if (root == NULL && local != NULL)
    g_debug ("the Certification Declaration's PAA list is checked at the line's start: %s", local->message);
  g_autoptr(GBytes) cd = st_matter_cd_load_for_profile (profile, root, cd_note, error);
  if (cd != NULL)
    return TRUE;
  /* the lead's input is refused (exit 2), not a failed check */
  if ((*error)->domain == ST_ERROR && (*error)->code == ST_ERROR_VERIFY_FAILED)
    (*error)->code = ST_ERROR_INVALID_DATA;
  g_prefix_error (error, _("the batch was not created: "));
  return FALSE;
}

gint64
st_engine_batch_create (StEngine *engine, const StAuthSession *session, const char *origin,
                        const char *profile_text, const char *work_order, gint64 quantity,
                        StProfile **profile_out, gchar **cd_note, GError **error)
{
  if (!st_engine_require (engine, session, ST_ACTION_BATCH_CREATE, error))
    return 0;
  if (work_order == NULL || *work_order == '\0' || quantity <= 0)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           _("a batch needs a work order and a quantity of at least 1"));
      return 0;
    }
  g_autoptr(StProfile) profile = st_profile_load_from_data (profile_text, strlen (profile_text),
                                                           origin, error);
  if (profile == NULL || !st_engine_profile_can_issue (engine, profile, error)
      || !st_engine_matter_cd_fits (engine, profile, cd_note, error))
    return 0;
  gint64 id = st_db_batch_create (engine->db, work_order, profile->name, profile->sha256,
                                  profile->text, quantity, engine->config->station_id,
                                  session->name, error);
  if (id > 0 && profile_out != NULL)
    *profile_out = g_steal_pointer (&profile);
  return id;
}

GPtrArray *
st_engine_batch_list (StEngine *engine, const StAuthSession *session, GError **error)
{
  if (!st_engine_require (engine, session, ST_ACTION_BATCH_LIST, error))
    return NULL;
  return st_db_batch_list (engine->db, error);
}

StDbBatch *
st_engine_batch_get (StEngine *engine, const StAuthSession *session, gint64 id, GError **error)
{
  if (!st_engine_require (engine, session, ST_ACTION_BATCH_SHOW, error))
    return NULL;
  return st_db_batch_get (engine->db, id, error);
}

GPtrArray *
st_engine_batch_units (StEngine *engine, const StAuthSession *session, gint64 id, GError **error)
{
  if (!st_engine_require (engine, session, ST_ACTION_BATCH_SHOW, error))
    return NULL;
  g_autoptr(StDbBatch) batch = st_db_batch_get (engine->db, id, error);
  if (batch == NULL)
    return NULL;
  return st_db_unit_list (engine->db, id, error);
}

void
st_engine_set_check_progress (StEngine *engine, StDbProgressFunc func, gpointer user_data)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&engine->lock);
  if (engine->db != NULL)
    st_db_set_progress (engine->db, func, user_data);
}

/* A page of the batch's units (st_db_unit_list_page), at most
 * ST_ENGINE_UNITS_PAGE_MAX of them. */
GPtrArray *
st_engine_batch_units_page (StEngine *engine, const StAuthSession *session, gint64 id,
                            gint64 after_id, guint limit, GError **error)
{
  if (!st_engine_require (engine, session, ST_ACTION_BATCH_SHOW, error))
    return NULL;
  g_autoptr(StDbBatch) batch = st_db_batch_get (engine->db, id, error);
  if (batch == NULL)
    return NULL;
  return st_db_unit_list_page (engine->db, id, MAX (after_id, 0),
                               CLAMP (limit, 1, ST_ENGINE_UNITS_PAGE_MAX), error);
}

gboolean
st_engine_batch_close (StEngine *engine, const StAuthSession *session, gint64 id, GError **error)
{
  if (!st_engine_require (engine, session, ST_ACTION_BATCH_CLOSE, error))
    return FALSE;
  g_autoptr(StCaHold) hold = st_engine_ca_acquire (engine);
  StCa *ca = ST_CA_OF (hold);
  if (ca == NULL)   /* locked since the check */
    return st_engine_require (engine, session, ST_ACTION_BATCH_CLOSE, error);
  if (!st_db_batch_close (engine->db, id, session->name, error))
    return FALSE;
  if (!st_audit_checkpoint (engine->db, ca, "batch-close", error))
    {
      g_prefix_error (error, _("batch %" PRId64 " closed, but "), id);
      return FALSE;
    }
  return TRUE;
}

gboolean
st_engine_batch_allow_more_voids (StEngine *engine, const StAuthSession *session, gint64 id,
                                  gint64 *voided, gint64 *old_cap, gint64 *new_cap, GError **error)
{
  if (!st_engine_require (engine, session, ST_ACTION_BATCH_ALLOW_MORE_VOIDS, error))
    return FALSE;
  st_db_batch_over_void_cap (engine->db, id, voided, old_cap);
  return st_db_batch_allow_more_voids (engine->db, id, session->name, new_cap, error);
}


StShiftStats *
st_engine_shift_stats (StEngine *engine, const StAuthSession *session, gint64 id, guint hours,
                       GError **error)
{
  if (!st_engine_require (engine, session, ST_ACTION_SHIFT_STATS, error))
    return NULL;
  /* the batch exists (NOT_FOUND naming it otherwise); its units are
   * counted by the database, never loaded (a batch has up to millions) */
  g_autoptr(StDbBatch) batch = st_db_batch_get (engine->db, id, error);
  if (batch == NULL)
    return NULL;
  g_autoptr(StShiftStats) s = g_new0 (StShiftStats, 1);
  s->n_hours = CLAMP (hours, 1, ST_ENGINE_MAX_HOURS);
  gint64 now_hour = g_get_real_time () / G_USEC_PER_SEC / 3600 * 3600;
  s->first_hour = now_hour - (gint64) (s->n_hours - 1) * 3600;
  s->passed_per_hour = g_new0 (guint, s->n_hours);
  s->failed_per_hour = g_new0 (guint, s->n_hours);
  s->failures_by_step = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  if (!st_db_unit_shift_counts (engine->db, id, s->first_hour, s->n_hours, s->passed_per_hour,
                                s->failed_per_hour, &s->done, &s->failed, s->failures_by_step, error))
    return NULL;
  return g_steal_pointer (&s);
}

/* ---- the line: the run sequence ----------------------------------------- */

/* Claims a line for @batch_id on @ports: BUSY when a line runs that batch
 * already, or uses one of the sockets. */
static gboolean
st_engine_line_claim (StEngine *engine, gint64 batch_id, const char *const *ports,
                      GCancellable *cancellable, StBatchControl *control, gboolean *alone,
                      GError **error)
{
  g_mutex_lock (&engine->lock);
  const char *clash = NULL;
  gint64 other = 0;
  for (guint i = 0; i < engine->lines->len && other == 0; i++)
    {
      StEngineLine *l = g_ptr_array_index (engine->lines, i);
      if (l->batch_id == batch_id)
        other = batch_id;
      for (guint p = 0; ports[p] != NULL && other == 0; p++)
        if (st_engine_line_has_port (l, ports[p]))
          {
            other = l->batch_id;
            clash = ports[p];
          }
    }
  if (other == 0)
    {
      StEngineLine *l = g_new0 (StEngineLine, 1);
      l->batch_id = batch_id;
      l->ports = g_ptr_array_new_with_free_func (g_free);
      for (guint p = 0; ports[p] != NULL; p++)
        g_ptr_array_add (l->ports, g_strdup (ports[p]));
      l->cancellable = g_object_ref (cancellable);
      l->control = st_batch_control_ref (control);
      g_ptr_array_add (engine->lines, l);
      *alone = engine->lines->len == 1;
    }
  g_mutex_unlock (&engine->lock);
  if (other != 0)
    {
      if (clash != NULL)
        g_set_error (error, ST_ERROR, ST_ERROR_BUSY,
                     _("the socket %s is in the line of batch %" PRId64 ": stop that "
                     "line first ('station batch stop %" PRId64 "'), or use other sockets"),
                     clash, other, other);
      else
        g_set_error (error, ST_ERROR, ST_ERROR_BUSY,
                     _("batch %" PRId64 " already runs on a line: stop it first "
                     "('station batch stop %" PRId64 "' or the Stop button)"), other, other);
      return FALSE;
    }
  st_engine_state_changed (engine);
  return TRUE;
}

/* The line ends; the last one leaves the checkpoint hook to the idle
 * station's rule. */
static void
st_engine_line_release (StEngine *engine, gint64 batch_id)
{
  g_mutex_lock (&engine->lock);
  for (guint i = 0; i < engine->lines->len; i++)
    if (((StEngineLine *) g_ptr_array_index (engine->lines, i))->batch_id == batch_id)
      {
        g_ptr_array_remove_index (engine->lines, i);
        break;
      }
  gboolean last = engine->lines->len == 0;
  g_cond_broadcast (&engine->line_cond);
  g_mutex_unlock (&engine->lock);
  if (last)
    st_db_set_checkpoint_hook (engine->db, ST_ENGINE_IDLE_CHECKPOINT_EVERY,
                               st_engine_checkpoint_hook, engine);
  st_engine_state_changed (engine);
}

/* What the batch still needs, when the line runs until it is done (no
 * units per socket asked for, not until stopped); 0 otherwise. */
static gboolean
st_engine_line_left (StEngine *engine, const StLineRequest *request, guint64 *left, GError **error)
{
  *left = 0;
  if (request->units > 0 || request->until_stopped)
    return TRUE;
  g_autoptr(StDbBatch) b = st_db_batch_get (engine->db, request->batch_id, error);
  if (b == NULL)
    return FALSE;
  *left = (guint64) MAX (b->quantity - b->n_done, 0);
  return TRUE;
}

gboolean
st_engine_run_line (StEngine *engine, const StAuthSession *session, const StLineRequest *request,
                    const StEngineLineCallbacks *callbacks, StBatchRunSummary *summary,
                    gboolean *stopped, gboolean *nothing_to_do, GError **error)
{
  memset (summary, 0, sizeof *summary);
  *stopped = FALSE;
  *nothing_to_do = FALSE;
  if (!st_engine_require (engine, session, ST_ACTION_LINE_RUN, error))
    return FALSE;
  if (request->allow_reprovision
      && !st_engine_require (engine, session, ST_ACTION_LINE_REPROVISION, error))
    return FALSE;
  if (request->ports == NULL || request->ports[0] == NULL)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           _("a line needs at least one socket (--port PATH)"));
      return FALSE;
    }
  guint64 batch_left = 0;
  if (!st_engine_line_left (engine, request, &batch_left, error))
    return FALSE;
  if (batch_left == 0 && request->units == 0 && !request->until_stopped)
    {
      *nothing_to_do = TRUE;
      return TRUE;
    }
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(StBatchControl) control = st_batch_control_new ();
  gboolean alone = FALSE;
  if (!st_engine_line_claim (engine, request->batch_id, request->ports, cancellable, control,
                             &alone, error))
    return FALSE;
  g_autoptr(StCaHold) hold = st_engine_ca_acquire (engine);
  StCa *ca = ST_CA_OF (hold);
  StDb *db = engine->db;
  g_autoptr(StLine) line = ca != NULL ? st_line_new (engine->config, ca, db, request->batch_id,
                                                     session->name, error) : NULL;
  if (ca == NULL)   /* locked since the check */
    st_engine_require (engine, session, ST_ACTION_LINE_RUN, error);
  /* A batch whose profile cannot issue under the CA as it is now (made
   * before `batch create` checked, or the CA changed or runs out since) does
   * not start: every unit would fail at its issue step. */
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  if (line != NULL && !st_issue_check_profile (ca->ca_cert, st_line_get_profile (line), now, error))
    {
      if ((*error)->domain == ST_ERROR && (*error)->code == ST_ERROR_VERIFY_FAILED)
        (*error)->code = ST_ERROR_INVALID_DATA;  /* the batch's set-up, not a unit's check */
      g_prefix_error (error, _("batch %" PRId64 " cannot run: "), request->batch_id);
      g_clear_pointer (&line, st_line_free);
    }
  if (line == NULL)
    {
      st_engine_line_release (engine, request->batch_id);
      return FALSE;
    }
  st_line_set_allow_reprovision (line, request->allow_reprovision);
  st_line_set_cancellable (line, cancellable);
  st_line_set_callbacks (line, callbacks->step, callbacks->notice, callbacks->user_data);
  st_db_set_checkpoint_hook (db, st_audit_checkpoint_interval (engine->config),
                             st_engine_checkpoint_hook, engine);
  /* Decision: what an interruption left is resolved by a line that starts
   * alone. Every unit in flight belongs to a running line of this service
   * (one service per home), so with no other line running, whatever is
   * unfinished was left by a service that stopped or died; with one
   * running, it is that line's, and must not be touched. */
  g_autoptr(GString) recovered = g_string_new (NULL);
  gboolean ok = !alone || st_line_recover (line, recovered, error);
  if (ok)
    {
      if (recovered->len > 0)
        g_message ("recovered from an earlier interruption:\n%s", recovered->str);
      if (callbacks->started != NULL)
        callbacks->started (request->batch_id, request->ports, recovered->str,
                            callbacks->user_data);
      /* a development Certification Declaration: one line, no refusal */
      const char *cd_note = st_line_get_matter_cd_note (line);
      if (cd_note != NULL)
        {
          g_message ("batch %" PRId64 ": %s", request->batch_id, cd_note);
          if (callbacks->notice != NULL)
            callbacks->notice ("", "", cd_note, callbacks->user_data);
        }
      StBatchRunOptions options = {
        .ports = request->ports,
        /* asked for a number of units per socket, or until the batch is
         * done (the sockets share what is left: devices do not arrive
         * evenly), or until stopped */
        .units_per_port = request->units,
        .batch_left = request->units > 0 || request->until_stopped ? 0 : batch_left,
        .idle_timeout_s = request->wait_s,
        .hold_failures = request->hold_failures,
        .last_uids = request->skip_uids,
        .unit_func = callbacks->unit,
        .port_func = callbacks->port_failed,
        .user_data = callbacks->user_data,
        .control = control,
      };
      ok = st_batch_run (line, &options, summary, error);
    }
  st_line_set_cancellable (line, NULL);
  g_autoptr(GError) cp_error = NULL;
  if (!st_audit_checkpoint (db, ca, "batch-run-end", &cp_error))
    g_warning ("the audit checkpoint at the end of the run failed: %s", cp_error->message);
  *stopped = g_cancellable_is_cancelled (cancellable);
  st_engine_line_release (engine, request->batch_id);
  return ok;
}

void
st_engine_line_stop_internal (StEngine *engine, gint64 batch_id)
{
  g_autoptr(GPtrArray) stop = g_ptr_array_new_with_free_func (g_object_unref);
  g_mutex_lock (&engine->lock);
  for (guint i = 0; i < engine->lines->len; i++)
    {
      StEngineLine *l = g_ptr_array_index (engine->lines, i);
      if (batch_id == 0 || l->batch_id == batch_id)
        g_ptr_array_add (stop, g_object_ref (l->cancellable));
    }
  g_mutex_unlock (&engine->lock);
  for (guint i = 0; i < stop->len; i++)
    g_cancellable_cancel (g_ptr_array_index (stop, i));
}

gboolean
st_engine_line_stop (StEngine *engine, const StAuthSession *session, gint64 batch_id,
                     GError **error)
{
  if (!st_engine_require (engine, session, ST_ACTION_LINE_RUN, error))
    return FALSE;
  g_mutex_lock (&engine->lock);
  gboolean found = FALSE;
  for (guint i = 0; i < engine->lines->len && !found; i++)
    found = batch_id == 0 || ((StEngineLine *) g_ptr_array_index (engine->lines, i))->batch_id == batch_id;
  g_mutex_unlock (&engine->lock);
  if (!found)
    {
      if (batch_id == 0)
        g_set_error_literal (error, ST_ERROR, ST_ERROR_NOT_FOUND, _("no line is running"));
      else
        g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND, _("no line runs batch %" PRId64),
                     batch_id);
      return FALSE;
    }
  st_engine_line_stop_internal (engine, batch_id);
  return TRUE;
}

gboolean
st_engine_line_port (StEngine *engine, const StAuthSession *session, gint64 batch_id,
                     const char *verb, const char *port, guint units, GError **error)
{
  if (!st_engine_require (engine, session, ST_ACTION_LINE_RUN, error))
    return FALSE;
  gboolean start = g_strcmp0 (verb, "start") == 0;
  g_mutex_lock (&engine->lock);
  StBatchControl *control = NULL;
  gint64 other = 0;
  for (guint i = 0; i < engine->lines->len; i++)
    {
      StEngineLine *l = g_ptr_array_index (engine->lines, i);
      gboolean has = st_engine_line_has_port (l, port);
      /* a socket joins the line of its batch, unless another line has it */
      if ((start && batch_id != 0) ? l->batch_id == batch_id : has)
        control = st_batch_control_ref (l->control);
      else if (has)
        other = l->batch_id;
    }
  if (control != NULL && other == 0 && start)
    for (guint i = 0; i < engine->lines->len; i++)
      {
        StEngineLine *l = g_ptr_array_index (engine->lines, i);
        if (l->batch_id == batch_id && !st_engine_line_has_port (l, port))
          g_ptr_array_add (l->ports, g_strdup (port));
      }
  g_mutex_unlock (&engine->lock);
  g_autoptr(StBatchControl) owned = control;
  if (other != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_BUSY,
                   _("the socket %s is in the line of batch %" PRId64), port, other);
      return FALSE;
    }
  gboolean ok = control != NULL;
  if (ok && start)
    ok = st_batch_control_start_port (control, port, units);
  else if (ok && g_strcmp0 (verb, "retry") == 0)
    ok = st_batch_control_retry_port (control, port, units);
  else if (ok)
    st_batch_control_stop_port (control, port);
  if (!ok)
    g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                 _("no line runs %s, or it is ending: start a line first"), port);
  return ok;
}

/* ---- the CA ----------------------------------------------------------------- */

gchar *
st_engine_ca_verification_cert (StEngine *engine, const StAuthSession *session, const char *code,
                                GError **error)
{
  if (!st_engine_require (engine, session, ST_ACTION_CA_VERIFICATION_CERT, error))
    return NULL;
  if (!st_cloud_check_code (code, error))
    return NULL;
  g_autoptr(StCaHold) hold = st_engine_ca_acquire (engine);
  StCa *ca = ST_CA_OF (hold);
  if (ca == NULL)
    {
      st_engine_require (engine, session, ST_ACTION_CA_VERIFICATION_CERT, error);
      return NULL;
    }
  g_autofree gchar *serial = NULL;
  g_autoptr(X509) cert = st_cloud_verification_cert (ca, code, 30, &serial, error);
  if (cert == NULL)
    return NULL;
  g_autoptr(BIO) bio = BIO_new (BIO_s_mem ());
  char *data = NULL;
  long len = 0;
  if (bio == NULL || PEM_write_bio_X509 (bio, cert) != 1 || (len = BIO_get_mem_data (bio, &data)) <= 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL, _("cannot encode the verification certificate"));
      return NULL;
    }
  g_autofree gchar *pem = g_strndup (data, (gsize) len);
  /* the code is no secret: a cloud shows it to whoever registers the CA */
  if (!st_engine_audit (engine, session, "ca-verification-cert", error, "code", code, "serial", serial,
                        "valid-days", "30", NULL))
    return NULL;
  return g_steal_pointer (&pem);
}

/* ---- manifests, units, audit, database ---------------------------------- */

gboolean
st_engine_manifest_export (StEngine *engine, const StAuthSession *session, gint64 id,
                           const char *out_dir, const char *destination, gboolean replace,
                           GError **error)
{
  return st_engine_manifest_export_cloud (engine, session, id, out_dir, destination, replace, NULL,
                                          error);
}

gboolean
st_engine_manifest_export_cloud (StEngine *engine, const StAuthSession *session, gint64 id,
                                 const char *out_dir, const char *destination, gboolean replace,
                                 const char *cloud, GError **error)
{
  if (!st_engine_require (engine, session, ST_ACTION_MANIFEST_EXPORT, error))
    return FALSE;
  /* the cloud targets asked for, refused before any work */
  guint cloud_targets = 0;
  if (!st_cloud_targets_parse (cloud, &cloud_targets, error))
    return FALSE;
  g_autoptr(StCaHold) hold = st_engine_ca_acquire (engine);
  StCa *ca = ST_CA_OF (hold);
  if (ca == NULL)
    return st_engine_require (engine, session, ST_ACTION_MANIFEST_EXPORT, error);
  if (!st_manifest_export (engine->db, ca, engine->config->station_id, id, out_dir, error))
    return FALSE;
  /* the current CRL beside the manifest: a new number, audited as any issue */
  g_autoptr(StCrlIssued) crl = st_crl_issue (engine->db, ca, ST_CRL_DAYS_DEFAULT, session->name, error);
  g_autofree gchar *crl_path = g_build_filename (out_dir, "crl.pem", NULL);
  if (crl == NULL || !g_file_set_contents (crl_path, crl->pem, -1, error))
    {
      g_prefix_error (error, _("cannot add the CRL to the manifest: "));
      return FALSE;
    }
  /* Decision (docs/manifest-format.md, The export's self-check): what was
   * written is checked as read back (signature, SHA256SUMS, header, line
   * counts and hashes), not each unit's certificate again */
  g_autoptr(GString) report = g_string_new (NULL);
  if (!st_manifest_check_written (out_dir, ca->root, engine->config->signing_key_sha256, report, error))
    {
      g_prefix_error (error, _("the manifest written does not verify (%s): "), report->str);
      return FALSE;
    }
  /* the files the clouds import, next to the manifest (docs/cloud.md) */
  if (!st_cloud_export (engine->db, ca, engine->config->station_id, id, cloud_targets, out_dir, error))
    {
      g_prefix_error (error, _("the cloud files of batch %" PRId64 ": "), id);
      return FALSE;
    }
  g_autofree gchar *id_s = g_strdup_printf ("%" G_GINT64_FORMAT, id);
  return st_engine_audit (engine, session, "manifest-export", error, "batch", id_s, "out",
                          destination, "replace", replace ? "yes" : "no", NULL);
}

gboolean
st_engine_manifest_verify (StEngine *engine, const StAuthSession *session, const char *dir,
                           X509 *root, const char *signer_pin, const char *origin, GString *report,
                           GError **error)
{
  if (!st_engine_require (engine, session, ST_ACTION_MANIFEST_VERIFY, error))
    return FALSE;
  if (signer_pin != NULL && *signer_pin == '\0')
    signer_pin = NULL;
  if (signer_pin != NULL && (strlen (signer_pin) != 64 || strspn (signer_pin, "0123456789abcdefABCDEF") != 64))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("the signer pin must be 64 hex digits: the SHA-256 of the station signing "
                   "certificate's public key"));
      return FALSE;
    }
  /* Decision: the pin is the verifier's, never the manifest's. Given one,
   * it is held against the signer; else the station's own, but only with
   * the station's own root: another trust anchor without a pin is refused
   * (st_manifest_check_signer says which pin the manifest claims). */
  const char *pin = signer_pin;
  if (pin != NULL)
    g_string_append (report, _("signer pin: the one given (--signer-pin)\n"));
  else if (root == NULL && engine->config->signing_key_sha256 != NULL)
    {
      pin = engine->config->signing_key_sha256;
      g_string_append (report, _("signer pin: this station's ([certificates] signing-key-sha256)\n"));
    }
  else if (root == NULL)
    g_string_append_printf (report, _("signer pin: none: %s has no [certificates] signing-key-sha256\n"),
                            engine->config->path);
  else
    g_string_append (report, _("signer pin: none given with --root\n"));
  g_autoptr(X509) own_root = NULL;
  if (root == NULL && (root = own_root = st_engine_station_root (engine, error)) == NULL)
    return FALSE;
  GError *failure = NULL;
  gboolean ok = st_manifest_verify (dir, root, pin, engine->db, report, &failure);
  g_autoptr(GError) audit_error = NULL;
  if (!st_engine_audit (engine, session, "manifest-verify", &audit_error, "dir", origin,
                        "verified", ok ? "true" : "false", NULL))
    {
      g_clear_error (&failure);
      g_propagate_error (error, g_steal_pointer (&audit_error));
      return FALSE;
    }
  if (failure != NULL)
    g_propagate_error (error, failure);
  return ok;
}

gboolean
st_engine_unit_verify (StEngine *engine, const StAuthSession *session, const char *port,
                       const char *profile_text, const char *matter_code, GString *report, GError **error)
{
  if (!st_engine_require (engine, session, ST_ACTION_UNIT_VERIFY, error))
    return FALSE;
  g_autoptr(X509) root = st_engine_station_root (engine, error);
  if (root == NULL)
    return FALSE;
  StLinkParams params;
  st_link_params_init_defaults (&params);
  if (profile_text != NULL && *profile_text != '\0')
    {
      g_autoptr(StProfile) profile = st_profile_load_from_data (profile_text, strlen (profile_text),
                                                               "profile", error);
      if (profile == NULL)
        return FALSE;
      params = profile->link;
    }
  return st_qa_verify_unit (engine->db, root, port, &params, matter_code, session->name, report, error);
}

StDbUnit *
st_engine_unit_lookup (StEngine *engine, const StAuthSession *session, const char *code,
                       gchar **work_order, gboolean *verified, GString *report, GError **error)
{
  *verified = FALSE;
  *work_order = NULL;
  if (!st_engine_require (engine, session, ST_ACTION_UNIT_LOOKUP, error))
    return NULL;
  g_autoptr(X509) root = st_engine_station_root (engine, error);
  if (root == NULL)
    return NULL;
  g_autoptr(StX509Stack) chain = st_chain_load_pem (engine->config->chain_file, error);
  if (chain == NULL)
    return NULL;
  return st_qa_lookup_unit (engine->db, root, chain, code, work_order, verified, report, error);
}

/* What audit verify trusts on this station (st_engine_audit_trust): the
 * objects StAuditTrust points to, owned. */
typedef struct {
  StAuditTrust trust;
  X509 *own_root, *own_signer;
  StX509Stack *chain;
} StEngineTrust;

static void
st_engine_trust_free (StEngineTrust *t)
{
  X509_free (t->own_root);
  X509_free (t->own_signer);
  if (t->chain != NULL)
    st_x509_stack_free (t->chain);
  g_free (t);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StEngineTrust, st_engine_trust_free)

/* @root (NULL: the station's), the configured chain, the pinned signing
 * key and certificate, and the HSM when @ca (unlocked) is given. */
static StEngineTrust *
st_engine_audit_trust (StEngine *engine, X509 *root, StCa *ca, GPtrArray *manifests, GError **error)
{
  g_autoptr(StEngineTrust) t = g_new0 (StEngineTrust, 1);
  if (root == NULL && (root = t->own_root = st_engine_station_root (engine, error)) == NULL)
    return NULL;
  if ((t->chain = st_chain_load_pem (engine->config->chain_file, error)) == NULL)
    return NULL;
  X509 *signer = ca != NULL ? ca->signing_cert
                            : (t->own_signer = st_ca_load_cert (NULL, engine->config->signing_cert, NULL));
  if (signer != NULL && st_ca_check_station_signer (signer, engine->config->signing_key_sha256, NULL))
    t->trust.signer = signer;
  t->trust.root = root;
  t->trust.untrusted = t->chain;
  t->trust.signer_pin = engine->config->signing_key_sha256;
  t->trust.hsm = ca != NULL ? ca->hsm : NULL;
  t->trust.station_id = engine->config->station_id;
  t->trust.manifests = manifests;
  return g_steal_pointer (&t);
}

StDbUnit *
st_engine_unit_resolve (StEngine *engine, const StAuthSession *session, const char *name,
                        const char *decision, GError **error)
{
  if (!st_engine_require (engine, session, ST_ACTION_UNIT_RESOLVE, error))
    return NULL;
  StDbDisputeDecision d;
  if (g_strcmp0 (decision, st_db_dispute_decision_to_string (ST_DB_DISPUTE_KEEP)) == 0)
    d = ST_DB_DISPUTE_KEEP;
  else if (g_strcmp0 (decision, st_db_dispute_decision_to_string (ST_DB_DISPUTE_VOID)) == 0)
    d = ST_DB_DISPUTE_VOID;
  else
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("a dispute is decided with keep or void, not '%s'"), decision != NULL ? decision : "");
      return NULL;
    }
  g_autoptr(GPtrArray) units = st_db_unit_find_by_name (engine->db, name, error);
  if (units == NULL)
    return NULL;
  const StDbUnit *disputed = NULL;
  g_autoptr(GString) others = g_string_new (NULL);
  for (guint i = 0; i < units->len; i++)
    {
      const StDbUnit *u = g_ptr_array_index (units, i);
      if (g_strcmp0 (u->cert_state, "disputed") != 0)
        {
          g_string_append_printf (others, _("%sunit %" PRId64 " of batch %" PRId64
                                  " is %s, its certificate %s"), others->len > 0 ? "; " : "",
                                  u->id, u->batch_id, u->state,
                                  u->cert_state != NULL ? u->cert_state : "none");
          continue;
        }
      if (disputed != NULL)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       _("'%s' names more than one disputed unit (%" PRId64 " and %"
                       PRId64 "): name it by its certificate serial"), name, disputed->id, u->id);
          return NULL;
        }
      disputed = u;
    }
  if (disputed == NULL)
    {
      if (units->len == 0)
        g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                     _("there is no unit with the uid or serial '%s'"), name);
      else
        g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                     _("'%s' is not disputed (%s): there is nothing to decide"), name, others->str);
      return NULL;
    }
  if (!st_db_cert_resolve_dispute (engine->db, disputed->cert_id, d, session->name, error))
    return NULL;
  return st_db_unit_get (engine->db, disputed->id, error);
}

StDbUnit *
st_engine_unit_revoke (StEngine *engine, const StAuthSession *session, const char *name,
                       const char *reason, GError **error)
{
  if (!st_engine_require (engine, session, ST_ACTION_UNIT_REVOKE, error))
    return NULL;
  if (st_crl_reason_code (reason) < 0)
    {
      g_autofree gchar *shown = st_text_escape (reason != NULL ? reason : "", -1, ST_TEXT_ONE_LINE);
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("'%s' is not a revocation reason for a device: give one of %s"), shown,
                   st_crl_reason_list ());
      return NULL;
    }
  g_autoptr(GPtrArray) units = st_db_unit_find_by_name (engine->db, name, error);
  if (units == NULL)
    return NULL;
  /* the certificate serial names one certificate; a uid or a product
   * serial names the unit whose certificate is active (one at most: the
   * live uid index), or else tells what its units are */
  const StDbUnit *active = NULL, *revoked = NULL;
  g_autoptr(GString) others = g_string_new (NULL);
  for (guint i = 0; i < units->len; i++)
    {
      const StDbUnit *u = g_ptr_array_index (units, i);
      if (g_strcmp0 (u->cert_state, "active") == 0)
        {
          if (active != NULL)
            {
              g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           _("'%s' names more than one active certificate (%s and %s): name it by "
                           "its certificate serial"), name, active->cert_serial, u->cert_serial);
              return NULL;
            }
          active = u;
          continue;
        }
      if (g_strcmp0 (u->cert_state, "revoked") == 0)
        revoked = u;
      g_string_append_printf (others, _("%sunit %" PRId64 " of batch %" PRId64
                              " is %s, its certificate %s (%s)"), others->len > 0 ? "; " : "",
                              u->id, u->batch_id, u->state,
                              u->cert_serial != NULL ? u->cert_serial : "none",
                              u->cert_state != NULL ? u->cert_state : "none");
    }
  if (active == NULL && revoked != NULL)
    active = revoked;  /* st_db_cert_revoke says when and by whom it was revoked */
  if (active == NULL)
    {
      g_autofree gchar *shown = st_text_escape (name != NULL ? name : "", -1, ST_TEXT_ONE_LINE);
      if (units->len == 0)
        g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                     _("there is no unit with the certificate serial, uid or product serial '%s'"), shown);
      else
        g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                     _("'%s' has no active certificate to revoke (%s): only a certificate whose "
                     "device was provisioned can be revoked"), shown, others->str);
      return NULL;
    }
  if (!st_db_cert_revoke (engine->db, active->cert_id, reason, session->name, error))
    return NULL;
  return st_db_unit_get (engine->db, active->id, error);
}

StCrlIssued *
st_engine_crl_issue (StEngine *engine, const StAuthSession *session, guint days, GError **error)
{
  if (!st_engine_require (engine, session, ST_ACTION_CRL_ISSUE, error))
    return NULL;
  g_autoptr(StCaHold) hold = st_engine_ca_acquire (engine);
  StCa *ca = ST_CA_OF (hold);
  if (ca == NULL)
    {
      /* locked between the check and now: the check says so again */
      if (st_engine_require (engine, session, ST_ACTION_CRL_ISSUE, error))
        g_set_error_literal (error, ST_ERROR, ST_ERROR_HSM_LOCKED,
                             _("the HSM was locked meanwhile: ask an admin to unlock the station "
                             "('station unlock'), then issue the CRL again"));
      return NULL;
    }
  return st_crl_issue (engine->db, ca, days, session->name, error);
}

gboolean
st_engine_audit_verify (StEngine *engine, const StAuthSession *session, X509 *root,
                        GPtrArray *manifests, GString *report, GError **error)
{
  if (!st_engine_require (engine, session, ST_ACTION_AUDIT_VERIFY, error))
    return FALSE;
  g_autoptr(StCaHold) hold = st_engine_ca_acquire (engine);
  g_autoptr(StEngineTrust) t = st_engine_audit_trust (engine, root, ST_CA_OF (hold), manifests, error);
  return t != NULL && st_audit_verify (engine->db, &t->trust, report, error);
}

gboolean
st_engine_audit_export (StEngine *engine, const StAuthSession *session, const char *path,
                        const char *destination, gint64 *n_entries, GError **error)
{
  return st_engine_require (engine, session, ST_ACTION_AUDIT_EXPORT, error)
         && st_engine_audit (engine, session, "audit-export", error, "out", destination, NULL)
         && st_audit_export (engine->db, path, n_entries, error);
}

gboolean
st_engine_db_check (StEngine *engine, const StAuthSession *session, GString *report,
                    GError **error)
{
  return st_engine_require (engine, session, ST_ACTION_DB_CHECK, error)
         && st_db_check (engine->db, report, error);
}

gboolean
st_engine_db_backup (StEngine *engine, const StAuthSession *session, const char *path,
                     const char *destination, GError **error)
{
  return st_engine_require (engine, session, ST_ACTION_DB_BACKUP, error)
         && st_engine_audit (engine, session, "db-backup", error, "out", destination, NULL)
         && st_db_backup (engine->config->db_path, path, TRUE, error);
}


static void
st_health_add_cert (StHealth *h, GString *out, X509 *cert, const char *what)
{
  g_autofree gchar *name = st_x509_name_text (X509_get_subject_name (cert));
  int days = 0, secs = 0;
  if (ASN1_TIME_diff (&days, &secs, NULL, X509_get0_notAfter (cert)) != 1)
    {
      g_string_append_printf (out, _("%s %s: expiry unreadable\n"), what, name);
      return;
    }
  h->min_days_left = MIN (h->min_days_left, days);
  g_string_append_printf (out, _("%s %s: %d days left%s\n"), what, name, days,
                          days < 0 ? _(" (EXPIRED: renew it now)") : days < 30 ? _(" (renew soon)") : "");
}

static guint64
st_file_size (const char *path)
{
  GStatBuf st;
  return g_stat (path, &st) == 0 ? (guint64) st.st_size : 0;
}

gboolean
st_engine_socket_names (StEngine *engine, const StAuthSession *session, gchar ***ports,
                        gchar ***names, GError **error)
{
  *ports = *names = NULL;
  if (!st_engine_require (engine, session, ST_ACTION_SOCKET_NAMES, error))
    return FALSE;
  /* the configuration in use (st_engine_ca_import keeps the ones it replaced) */
  const StConfig *c = engine->config;
  gboolean any = c != NULL && c->socket_ports != NULL;
  *ports = any ? g_strdupv (c->socket_ports) : g_new0 (gchar *, 1);
  *names = any ? g_strdupv (c->socket_names) : g_new0 (gchar *, 1);
  return TRUE;
}

StHealth *
st_engine_health (StEngine *engine, const StAuthSession *session, GError **error)
{
  if (!st_engine_require (engine, session, ST_ACTION_HEALTH, error))
    return NULL;
  StHealth *h = g_new0 (StHealth, 1);
  h->min_days_left = G_MAXINT;
  g_autoptr(StCaHold) hold = st_engine_ca_acquire (engine);
  StCa *ca = ST_CA_OF (hold);
  g_autoptr(GString) chain = g_string_new (NULL);
  if (ca != NULL)
    {
      h->token = st_hsm_get_token_description (ca->hsm);
      g_autoptr(GError) login_error = NULL;
      h->logged_in = st_hsm_ensure_login (ca->hsm, &login_error);
      for (int i = 0; i < sk_X509_num (ca->chain); i++)
        st_health_add_cert (h, chain, sk_X509_value (ca->chain, i), i == 0 ? _("issuing CA") : _("CA"));
      st_health_add_cert (h, chain, ca->signing_cert, _("station signing"));
    }
  else
    {
      g_autoptr(StX509Stack) certs = st_ca_load_chain_file (engine->config->chain_file, NULL);
      for (int i = 0; certs != NULL && i < sk_X509_num (certs); i++)
        st_health_add_cert (h, chain, sk_X509_value (certs, i), i == 0 ? _("issuing CA") : _("CA"));
      if (certs == NULL)
        g_string_append_printf (chain, _("the chain file %s cannot be read\n"),
                                engine->config->chain_file);
    }
  h->chain = g_string_free (g_steal_pointer (&chain), FALSE);
  h->db_path = g_strdup (st_db_get_path (engine->db));
  g_autofree gchar *wal = g_strconcat (h->db_path, "-wal", NULL);
  h->db_size = st_file_size (h->db_path) + st_file_size (wal);
  g_autoptr(GFile) file = g_file_new_for_path (h->db_path);
  g_autoptr(GFileInfo) fs = g_file_query_filesystem_info (file, G_FILE_ATTRIBUTE_FILESYSTEM_FREE,
                                                          NULL, NULL);
  if (fs != NULL)
    h->disk_free = g_file_info_get_attribute_uint64 (fs, G_FILE_ATTRIBUTE_FILESYSTEM_FREE);
  g_autoptr(GString) audit = g_string_new (NULL);
  g_autoptr(GError) audit_error = NULL;
  g_autoptr(StEngineTrust) trust = ca != NULL ? st_engine_audit_trust (engine, ca->root, ca, NULL, &audit_error)
                                              : NULL;
  if (ca != NULL)
    h->audit_ok = trust != NULL && st_audit_verify (engine->db, &trust->trust, audit, &audit_error);
  else
    {
      gint64 n = 0;
      h->audit_ok = st_db_audit_verify (engine->db, audit, &n, &audit_error);
      g_string_append (audit, _("(checkpoint signatures are checked once the HSM is unlocked)\n"));
    }
  if (audit_error != NULL)
    g_string_append_printf (audit, "%s\n", audit_error->message);
  h->audit = g_string_free (g_steal_pointer (&audit), FALSE);
  g_autoptr(GString) setup = g_string_new (NULL);
  g_autoptr(GError) setup_error = NULL;
  if (!st_setup_show (engine->config, ca, setup, &setup_error))
    g_string_append_printf (setup, "%s\n", setup_error->message);
  h->setup_text = g_string_free (g_steal_pointer (&setup), FALSE);
  return h;
}

gboolean
st_engine_bench (StEngine *engine, const StAuthSession *session, guint units, guint slots,
                 StBenchResult *result, GError **error)
{
  if (!st_engine_require (engine, session, ST_ACTION_BENCH, error))
    return FALSE;
  if (units == 0 || slots == 0 || slots > 64)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           _("bench needs --units >= 1 and --slots 1..64"));
      return FALSE;
    }
  g_autofree gchar *units_s = g_strdup_printf ("%u", units);
  g_autofree gchar *slots_s = g_strdup_printf ("%u", slots);
  if (!st_engine_audit (engine, session, "bench", error, "units", units_s, "slots", slots_s, NULL))
    return FALSE;
  g_autoptr(StCaHold) hold = st_engine_ca_acquire (engine);
  if (hold == NULL)
    return st_engine_require (engine, session, ST_ACTION_BENCH, error);
  return st_bench_run (engine->config, hold->ca, units, slots, NULL, result, error);
}

/* ---- a Matter batch's codes file and labels (docs/matter.md) ---------- */

gboolean
st_engine_matter_codes_export (StEngine *engine, const StAuthSession *session, gint64 id,
                               const char *out_dir, const char *destination, guint *rows,
                               gchar **sha256, GError **error)
{
  if (!st_engine_require (engine, session, ST_ACTION_MATTER_CODES_EXPORT, error))
    return FALSE;
  g_autofree gchar *path = g_build_filename (out_dir, ST_MATTER_CODES_FILE, NULL);
  g_autofree gchar *sum = NULL;
  guint n = 0;
  if (!st_matter_export_codes (engine->db, id, path, &sum, &n, error))
    return FALSE;
  g_autofree gchar *id_s = g_strdup_printf ("%" G_GINT64_FORMAT, id);
  g_autofree gchar *rows_s = g_strdup_printf ("%u", n);
  /* the file's own record: it is in no signed manifest (docs/matter.md) */
  if (!st_engine_audit (engine, session, "matter-codes-export", error, "batch", id_s, "out", destination,
                        "rows", rows_s, "sha256", sum, NULL))
    return FALSE;
  *rows = n;
  *sha256 = g_steal_pointer (&sum);
  return TRUE;
}

gboolean
st_engine_matter_labels_export (StEngine *engine, const StAuthSession *session, gint64 id,
                                const StLabelSize *size, const char *out_dir, const char *destination,
                                guint *count, GError **error)
{
  if (!st_engine_require (engine, session, ST_ACTION_MATTER_LABELS_EXPORT, error))
    return FALSE;
  guint n = 0;
  if (!st_matter_export_labels (engine->db, id, size, out_dir, &n, error))
    return FALSE;
  g_autofree gchar *id_s = g_strdup_printf ("%" G_GINT64_FORMAT, id);
  g_autofree gchar *n_s = g_strdup_printf ("%u", n);
  g_autofree gchar *size_s = g_strdup_printf ("%gx%g mm, png %u dpi, zpl %u dpi", size->width_mm,
                                              size->height_mm, size->png_dpi, size->zpl_dpi);
  if (!st_engine_audit (engine, session, "matter-labels-export", error, "batch", id_s, "out", destination,
                        "units", n_s, "size", size_s, NULL))
    return FALSE;
  *count = n;
  return TRUE;
}

/* ---- scratch folders ---------------------------------------------------- */

gchar *
st_engine_scratch_new (StEngine *engine, const char *what, GError **error)
{
  g_autofree gchar *parent = g_build_filename (engine->home, "scratch", NULL);
  if (g_mkdir_with_parents (parent, 0700) != 0)
    {
      int e = errno;
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, _("cannot make %s: %s"), parent, g_strerror (e));
      return NULL;
    }
  /* mkdtemp's template: the six X become a unique suffix */
  g_autofree gchar *tmpl = g_strdup_printf ("%s/%s-XXXXXX", parent, what);
  if (g_mkdtemp_full (tmpl, 0700) == NULL)
    {
      int e = errno;
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, _("cannot make a folder in %s: %s"), parent,
                   g_strerror (e));
      return NULL;
    }
  return g_steal_pointer (&tmpl);
}

void
st_engine_scratch_remove (const char *dir)
{
  if (dir == NULL)
    return;
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree gchar *path = g_build_filename (dir, name, NULL);
      if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK))
        st_engine_scratch_remove (path);
      else
        g_unlink (path);
    }
  g_rmdir (dir);
}
