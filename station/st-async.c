#include "st-async.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <openssl/x509.h>

#include "st-audit.h"
#include "st-ca.h"
#include "st-error.h"
#include "st-hsm.h"
#include "st-manifest.h"
#include "st-ossl.h"
#include "st-profile.h"
#include "st-qa.h"
#include "st-setup.h"
#include "st-util.h"

#define ST_ASYNC_MAX_PROFILES 256
#define ST_ASYNC_MAX_HOURS 168

struct _StStation {
  StConfig *config;
  StDb *db;
  GMutex lock;       /* guards ca and control */
  StCa *ca;          /* NULL until the HSM is unlocked; never replaced after */
  StBatchControl *control;  /* the running line's, or NULL: NULL when none runs */
};

/* ---- one runner for every call ---------------------------------------- */

typedef struct _StCall StCall;

/* The work of a call, on a worker thread: the result (freed with the
 * call's result_free when nobody takes it), or NULL and @error. A call
 * with a boolean result returns GINT_TO_POINTER (TRUE). */
typedef gpointer (*StJobFunc) (StStation *station, StCall *call, GCancellable *cancellable,
                               GError **error);

/* What a call carries to its thread. */
struct _StCall {
  StStation *station;       /* borrowed: outlives its calls */
  StAuthSession *session;   /* a copy */
  guint roles;              /* checked first when not 0 */
  const char *what;         /* for the role check's message */
  StJobFunc func;
  GDestroyNotify result_free;
  gchar *s1, *s2;           /* call-specific strings; s2 is wiped (may hold a PIN) */
  gint64 id, n;
  StRole role;
  StOperatorChange change;
  StStationProgressFunc progress;
  gpointer progress_data;
  GMainContext *context;    /* the caller's, for progress */
};

static void
st_call_free (gpointer data)
{
  StCall *c = data;
  st_auth_session_free (c->session);
  g_free (c->s1);
  if (c->s2 != NULL)
    st_secret_free (c->s2);
  g_main_context_unref (c->context);
  g_free (c);
}

static StCall *
st_call_new (StStation *station, const StAuthSession *session, guint roles, const char *what)
{
  StCall *c = g_new0 (StCall, 1);
  c->station = station;
  c->session = st_auth_session_copy (session);
  c->roles = roles;
  c->what = what;
  c->context = g_main_context_ref_thread_default ();
  return c;
}

static gboolean st_station_require (StStation *station, const StAuthSession *session, guint roles,
                                    const char *what, GError **error);

static void
st_call_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  StCall *c = data;
  GError *error = NULL;
  if (c->roles != 0 && !st_station_require (c->station, c->session, c->roles, c->what, &error))
    return g_task_return_error (task, error);
  gpointer result = c->func (c->station, c, cancellable, &error);
  if (result == NULL)
    {
      if (error == NULL)
        g_set_error (&error, ST_ERROR, ST_ERROR_INTERNAL, "%s failed without a reason",
                     c->what != NULL ? c->what : "the call");
      return g_task_return_error (task, error);
    }
  g_task_return_pointer (task, result, c->result_free);
}

/* Runs @func with @call (taken) on a worker thread; @tag is the _async
 * function, checked by st_call_finish. */
static void
st_call_run (StCall *call, StJobFunc func, GDestroyNotify result_free, GCancellable *cancellable,
             GAsyncReadyCallback callback, gpointer user_data, gpointer tag)
{
  g_autoptr(GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, tag);
  call->func = func;
  call->result_free = result_free;
  g_task_set_task_data (task, call, st_call_free);
  g_task_run_in_thread (task, st_call_thread);
}

static gpointer
st_call_finish (GAsyncResult *result, gpointer tag, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == tag, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

#define ST_CALL_TRUE GINT_TO_POINTER (TRUE)

/* ---- helpers ---------------------------------------------------------- */

/* The CA, or NOT_FOUND telling the user to unlock the HSM. */
static StCa *
st_station_get_ca (StStation *station, GError **error)
{
  g_mutex_lock (&station->lock);
  StCa *ca = station->ca;
  g_mutex_unlock (&station->lock);
  if (ca == NULL)
    g_set_error_literal (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                         "the HSM is locked: enter the HSM PIN on the login screen first");
  return ca;
}

static gboolean
st_station_require (StStation *station, const StAuthSession *session, guint roles,
                    const char *what, GError **error)
{
  if (session == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED, "%s: nobody is logged in", what);
      return FALSE;
    }
  return st_auth_require (station->db, session, roles, what, error);
}

StAuthSession *
st_auth_session_copy (const StAuthSession *session)
{
  if (session == NULL)
    return NULL;
  StAuthSession *copy = g_new0 (StAuthSession, 1);
  copy->name = g_strdup (session->name);
  copy->role = session->role;
  return copy;
}

/* ---- open, unlock ----------------------------------------------------- */

void
st_station_free (StStation *station)
{
  if (station == NULL)
    return;
  st_batch_control_unref (station->control);
  st_ca_free (station->ca);
  st_db_close (station->db);
  st_config_free (station->config);
  g_mutex_clear (&station->lock);
  g_free (station);
}

static gpointer
st_open_job (StStation *unused, StCall *c, GCancellable *cancellable, GError **error)
{
  g_autoptr(StConfig) config = st_config_load (c->s1, error);
  if (config == NULL)
    return NULL;
  st_config_apply_env (config);
  g_autoptr(StDb) db = st_db_open (config->db_path, error);
  if (db == NULL)
    return NULL;
  StStation *station = g_new0 (StStation, 1);
  g_mutex_init (&station->lock);
  station->config = g_steal_pointer (&config);
  station->db = g_steal_pointer (&db);
  return station;
}

void
st_station_open_async (const char *home, GCancellable *cancellable,
                       GAsyncReadyCallback callback, gpointer user_data)
{
  StCall *c = st_call_new (NULL, NULL, 0, "opening the station");
  c->s1 = g_strdup (home != NULL ? home : st_config_default_home ());
  st_call_run (c, st_open_job, (GDestroyNotify) st_station_free, cancellable, callback, user_data,
               st_station_open_async);
}

StStation *
st_station_open_finish (GAsyncResult *result, GError **error)
{
  return st_call_finish (result, st_station_open_async, error);
}

StConfig *
st_station_get_config (StStation *station)
{
  return station->config;
}

gboolean
st_station_hsm_is_open (StStation *station)
{
  g_mutex_lock (&station->lock);
  gboolean open = station->ca != NULL;
  g_mutex_unlock (&station->lock);
  return open;
}

static gpointer
st_unlock_job (StStation *station, StCall *c, GCancellable *cancellable, GError **error)
{
  if (st_station_hsm_is_open (station))
    return ST_CALL_TRUE;
  StCa *ca = st_ca_open (station->config, c->s2, error);
  if (ca == NULL)
    return NULL;
  g_mutex_lock (&station->lock);
  if (station->ca == NULL)
    station->ca = g_steal_pointer (&ca);
  g_mutex_unlock (&station->lock);
  st_ca_free (ca);
  return ST_CALL_TRUE;
}

void
st_station_unlock_hsm_async (StStation *station, const char *pin, GCancellable *cancellable,
                             GAsyncReadyCallback callback, gpointer user_data)
{
  StCall *c = st_call_new (station, NULL, 0, "unlocking the HSM");
  c->s2 = g_strdup (pin != NULL ? pin : "");
  st_call_run (c, st_unlock_job, NULL, cancellable, callback, user_data, st_station_unlock_hsm_async);
}

gboolean
st_station_unlock_hsm_finish (StStation *station, GAsyncResult *result, GError **error)
{
  return st_call_finish (result, st_station_unlock_hsm_async, error) != NULL;
}

/* ---- operators -------------------------------------------------------- */

static gpointer
st_list_operators_job (StStation *station, StCall *c, GCancellable *cancellable, GError **error)
{
  GPtrArray *ops = st_db_operator_list (station->db, error);
  for (guint i = 0; ops != NULL && i < ops->len; i++)
    {
      StDbOperator *op = g_ptr_array_index (ops, i);
      g_clear_pointer (&op->pin_hash, g_free);
    }
  return ops;
}

void
st_station_list_operators_async (StStation *station, GCancellable *cancellable,
                                 GAsyncReadyCallback callback, gpointer user_data)
{
  st_call_run (st_call_new (station, NULL, 0, "listing operators"), st_list_operators_job,
               (GDestroyNotify) g_ptr_array_unref, cancellable, callback, user_data,
               st_station_list_operators_async);
}

GPtrArray *
st_station_list_operators_finish (StStation *station, GAsyncResult *result, GError **error)
{
  return st_call_finish (result, st_station_list_operators_async, error);
}

static gpointer
st_login_job (StStation *station, StCall *c, GCancellable *cancellable, GError **error)
{
  return st_auth_login (station->db, c->s1, c->s2, error);
}

void
st_station_login_async (StStation *station, const char *name, const char *pin,
                        GCancellable *cancellable, GAsyncReadyCallback callback,
                        gpointer user_data)
{
  StCall *c = st_call_new (station, NULL, 0, "logging in");
  c->s1 = g_strdup (name);
  c->s2 = g_strdup (pin);
  st_call_run (c, st_login_job, (GDestroyNotify) st_auth_session_free, cancellable, callback,
               user_data, st_station_login_async);
}

StAuthSession *
st_station_login_finish (StStation *station, GAsyncResult *result, GError **error)
{
  return st_call_finish (result, st_station_login_async, error);
}

static gpointer
st_change_operator_job (StStation *station, StCall *c, GCancellable *cancellable, GError **error)
{
  gboolean ok = FALSE;
  switch (c->change)
    {
    case ST_OPERATOR_ADD:
      ok = st_auth_add_operator (station->db, c->session, c->s1, c->role, c->s2, error);
      break;
    case ST_OPERATOR_UNLOCK:
      ok = st_db_operator_unlock (station->db, c->s1, c->session->name, error);
      break;
    case ST_OPERATOR_SET_ROLE:
      ok = st_db_operator_set_role (station->db, c->s1, st_role_to_string (c->role),
                                    c->session->name, error);
      break;
    }
  return ok ? ST_CALL_TRUE : NULL;
}

void
st_station_change_operator_async (StStation *station, const StAuthSession *session,
                                  StOperatorChange change, const char *name, StRole role,
                                  const char *pin, GCancellable *cancellable,
                                  GAsyncReadyCallback callback, gpointer user_data)
{
  StCall *c = st_call_new (station, session, ST_ROLE_ADMIN, "managing operators");
  c->change = change;
  c->s1 = g_strdup (name);
  c->s2 = g_strdup (pin);
  c->role = role;
  st_call_run (c, st_change_operator_job, NULL, cancellable, callback, user_data,
               st_station_change_operator_async);
}

gboolean
st_station_change_operator_finish (StStation *station, GAsyncResult *result, GError **error)
{
  return st_call_finish (result, st_station_change_operator_async, error) != NULL;
}

/* ---- batches ---------------------------------------------------------- */

static gpointer
st_list_batches_job (StStation *station, StCall *c, GCancellable *cancellable, GError **error)
{
  return st_db_batch_list (station->db, error);
}

void
st_station_list_batches_async (StStation *station, const StAuthSession *session,
                               GCancellable *cancellable, GAsyncReadyCallback callback,
                               gpointer user_data)
{
  st_call_run (st_call_new (station, session, ST_ROLE_ANY, "listing batches"), st_list_batches_job,
               (GDestroyNotify) g_ptr_array_unref, cancellable, callback, user_data,
               st_station_list_batches_async);
}

GPtrArray *
st_station_list_batches_finish (StStation *station, GAsyncResult *result, GError **error)
{
  return st_call_finish (result, st_station_list_batches_async, error);
}

static gpointer
st_get_batch_job (StStation *station, StCall *c, GCancellable *cancellable, GError **error)
{
  return st_db_batch_get (station->db, c->id, error);
}

void
st_station_get_batch_async (StStation *station, const StAuthSession *session, gint64 batch_id,
                            GCancellable *cancellable, GAsyncReadyCallback callback,
                            gpointer user_data)
{
  StCall *c = st_call_new (station, session, ST_ROLE_ANY, "showing a batch");
  c->id = batch_id;
  st_call_run (c, st_get_batch_job, (GDestroyNotify) st_db_batch_free, cancellable, callback,
               user_data, st_station_get_batch_async);
}

StDbBatch *
st_station_get_batch_finish (StStation *station, GAsyncResult *result, GError **error)
{
  return st_call_finish (result, st_station_get_batch_async, error);
}

static gpointer
st_list_profiles_job (StStation *station, StCall *c, GCancellable *cancellable, GError **error)
{
  g_autofree gchar *home_dir = g_build_filename (station->config->home, "profiles", NULL);
  g_autofree gchar *installed = g_build_filename (ST_DATADIR, "profiles", NULL);
  g_autofree gchar *source_dir = g_build_filename (ST_SOURCE_DIR, "profiles", NULL);
  const char *dirs[] = { home_dir, installed, source_dir };
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  for (guint d = 0; d < G_N_ELEMENTS (dirs); d++)
    {
      g_autoptr(GDir) dir = g_dir_open (dirs[d], 0, NULL);
      if (dir == NULL)
        continue;
      const char *name;
      while ((name = g_dir_read_name (dir)) != NULL &&
             g_hash_table_size (seen) < ST_ASYNC_MAX_PROFILES)
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

void
st_station_list_profiles_async (StStation *station, GCancellable *cancellable,
                                GAsyncReadyCallback callback, gpointer user_data)
{
  st_call_run (st_call_new (station, NULL, 0, "listing profiles"), st_list_profiles_job,
               (GDestroyNotify) g_ptr_array_unref, cancellable, callback, user_data,
               st_station_list_profiles_async);
}

GPtrArray *
st_station_list_profiles_finish (StStation *station, GAsyncResult *result, GError **error)
{
  return st_call_finish (result, st_station_list_profiles_async, error);
}

static gpointer
st_create_batch_job (StStation *station, StCall *c, GCancellable *cancellable, GError **error)
{
  if (c->s2 == NULL || *c->s2 == '\0' || c->n <= 0)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "a batch needs a work order and a quantity of at least 1");
      return NULL;
    }
  g_autoptr(StProfile) profile = st_profile_load (c->s1, error);
  if (profile == NULL)
    return NULL;
  gint64 id = st_db_batch_create (station->db, c->s2, profile->name, profile->sha256,
                                  profile->text, c->n, station->config->station_id,
                                  c->session->name, error);
  return id > 0 ? g_memdup2 (&id, sizeof id) : NULL;
}

void
st_station_create_batch_async (StStation *station, const StAuthSession *session,
                               const char *profile_path, const char *work_order,
                               gint64 quantity, GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data)
{
  StCall *c = st_call_new (station, session, ST_ROLE_LEAD, "creating a batch");
  c->s1 = g_strdup (profile_path);
  c->s2 = g_strdup (work_order);
  c->n = quantity;
  st_call_run (c, st_create_batch_job, g_free, cancellable, callback, user_data,
               st_station_create_batch_async);
}

gint64
st_station_create_batch_finish (StStation *station, GAsyncResult *result, GError **error)
{
  g_autofree gint64 *id = st_call_finish (result, st_station_create_batch_async, error);
  return id != NULL ? *id : 0;
}

static gpointer
st_close_batch_job (StStation *station, StCall *c, GCancellable *cancellable, GError **error)
{
  StCa *ca = st_station_get_ca (station, error);
  if (ca == NULL || !st_db_batch_close (station->db, c->id, c->session->name, error))
    return NULL;
  if (!st_audit_checkpoint (station->db, ca, "batch-close", error))
    {
      g_prefix_error (error, "batch %" G_GINT64_FORMAT " closed, but ", c->id);
      return NULL;
    }
  return ST_CALL_TRUE;
}

void
st_station_close_batch_async (StStation *station, const StAuthSession *session,
                              gint64 batch_id, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data)
{
  StCall *c = st_call_new (station, session, ST_ROLE_LEAD, "closing a batch");
  c->id = batch_id;
  st_call_run (c, st_close_batch_job, NULL, cancellable, callback, user_data,
               st_station_close_batch_async);
}

gboolean
st_station_close_batch_finish (StStation *station, GAsyncResult *result, GError **error)
{
  return st_call_finish (result, st_station_close_batch_async, error) != NULL;
}

/* Progress, delivered on the caller's context. */
typedef struct {
  StStationProgressFunc func;
  gpointer data;
  double fraction;
  gchar *what;
} StProgressEvent;

static gboolean
st_progress_dispatch (gpointer data)
{
  StProgressEvent *e = data;
  e->func (e->fraction, e->what, e->data);
  return G_SOURCE_REMOVE;
}

static void
st_progress_event_free (gpointer data)
{
  StProgressEvent *e = data;
  g_free (e->what);
  g_free (e);
}

static void
st_call_progress (StCall *c, double fraction, const char *what)
{
  if (c->progress == NULL)
    return;
  StProgressEvent *e = g_new0 (StProgressEvent, 1);
  e->func = c->progress;
  e->data = c->progress_data;
  e->fraction = fraction;
  e->what = g_strdup (what);
  g_main_context_invoke_full (c->context, G_PRIORITY_DEFAULT, st_progress_dispatch, e,
                              st_progress_event_free);
}

static gchar *
st_json_object (const char *k1, const char *v1, const char *k2, gint64 v2)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, k1);
  json_builder_add_string_value (b, v1);
  json_builder_set_member_name (b, k2);
  json_builder_add_int_value (b, v2);
  json_builder_end_object (b);
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  return json_generator_to_data (gen, NULL);
}

static gpointer
st_export_job (StStation *station, StCall *c, GCancellable *cancellable, GError **error)
{
  StCa *ca = st_station_get_ca (station, error);
  if (ca == NULL)
    return NULL;
  st_call_progress (c, 0.1, "writing and signing the manifest");
  if (!st_manifest_export (station->db, ca, station->config->station_id, c->id, c->s1, error) ||
      g_cancellable_set_error_if_cancelled (cancellable, error))
    return NULL;
  st_call_progress (c, 0.7, "checking the written manifest");
  g_autoptr(GString) report = g_string_new (NULL);
  if (!st_manifest_verify (c->s1, ca->root, report, error))
    {
      g_prefix_error (error, "the manifest written to %s does not verify (%s): ", c->s1, report->str);
      return NULL;
    }
  g_autofree gchar *payload = st_json_object ("out", c->s1, "batch", c->id);
  if (!st_db_event_add (station->db, c->session->name, "manifest-export", payload, error))
    return NULL;
  st_call_progress (c, 1.0, "manifest written and verified");
  return ST_CALL_TRUE;
}

void
st_station_export_manifest_async (StStation *station, const StAuthSession *session,
                                  gint64 batch_id, const char *out_dir,
                                  StStationProgressFunc progress, gpointer progress_data,
                                  GCancellable *cancellable, GAsyncReadyCallback callback,
                                  gpointer user_data)
{
  StCall *c = st_call_new (station, session, ST_ROLE_LEAD, "exporting a manifest");
  c->id = batch_id;
  c->s1 = g_strdup (out_dir);
  c->progress = progress;
  c->progress_data = progress_data;
  st_call_run (c, st_export_job, NULL, cancellable, callback, user_data,
               st_station_export_manifest_async);
}

gboolean
st_station_export_manifest_finish (StStation *station, GAsyncResult *result, GError **error)
{
  return st_call_finish (result, st_station_export_manifest_async, error) != NULL;
}

void
st_shift_stats_free (StShiftStats *stats)
{
  if (stats == NULL)
    return;
  g_free (stats->passed_per_hour);
  g_free (stats->failed_per_hour);
  g_clear_pointer (&stats->failures_by_step, g_hash_table_unref);
  g_free (stats);
}

static gpointer
st_stats_job (StStation *station, StCall *c, GCancellable *cancellable, GError **error)
{
  g_autoptr(GPtrArray) units = st_db_unit_list (station->db, c->id, error);
  if (units == NULL)
    return NULL;
  StShiftStats *s = g_new0 (StShiftStats, 1);
  s->n_hours = (guint) CLAMP (c->n, 1, ST_ASYNC_MAX_HOURS);
  gint64 now_hour = g_get_real_time () / G_USEC_PER_SEC / 3600 * 3600;
  s->first_hour = now_hour - (gint64) (s->n_hours - 1) * 3600;
  s->passed_per_hour = g_new0 (guint, s->n_hours);
  s->failed_per_hour = g_new0 (guint, s->n_hours);
  s->failures_by_step = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < units->len; i++)
    {
      StDbUnit *u = g_ptr_array_index (units, i);
      gboolean done = g_strcmp0 (u->state, "done") == 0;
      gboolean failed = g_strcmp0 (u->state, "failed") == 0;
      if (!done && !failed)
        continue;
      if (done)
        s->done++;
      else
        {
          s->failed++;
          const char *step = u->fail_step != NULL ? u->fail_step : "unknown";
          guint n = GPOINTER_TO_UINT (g_hash_table_lookup (s->failures_by_step, step));
          g_hash_table_insert (s->failures_by_step, g_strdup (step), GUINT_TO_POINTER (n + 1));
        }
      gint64 at = u->finished_at > 0 ? u->finished_at : u->started_at;
      if (at < s->first_hour)
        continue;
      gint64 bucket = (at - s->first_hour) / 3600;
      if (bucket >= 0 && bucket < (gint64) s->n_hours)
        (done ? s->passed_per_hour : s->failed_per_hour)[bucket]++;
    }
  return s;
}

void
st_station_shift_stats_async (StStation *station, const StAuthSession *session,
                              gint64 batch_id, guint hours, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data)
{
  StCall *c = st_call_new (station, session, ST_ROLE_ANY, "showing the shift");
  c->id = batch_id;
  c->n = hours;
  st_call_run (c, st_stats_job, (GDestroyNotify) st_shift_stats_free, cancellable, callback,
               user_data, st_station_shift_stats_async);
}

StShiftStats *
st_station_shift_stats_finish (StStation *station, GAsyncResult *result, GError **error)
{
  return st_call_finish (result, st_station_shift_stats_async, error);
}

/* ---- QA ---------------------------------------------------------------- */

void
st_report_free (StReport *report)
{
  if (report == NULL)
    return;
  g_free (report->text);
  g_free (report->message);
  g_free (report);
}

/* A report of checks: @ok, their lines, and what failed. Takes @text and
 * @failure. */
static StReport *
st_report_new (gboolean ok, GString *text, GError *failure)
{
  StReport *r = g_new0 (StReport, 1);
  r->ok = ok;
  r->text = g_string_free (text, FALSE);
  r->message = failure != NULL ? g_strdup (failure->message) : NULL;
  g_clear_error (&failure);
  return r;
}

static gpointer
st_verify_unit_job (StStation *station, StCall *c, GCancellable *cancellable, GError **error)
{
  g_autoptr(X509) root = st_ca_load_cert_file (station->config->root_file, error);
  if (root == NULL)
    return NULL;
  StLinkParams params;
  st_link_params_init_defaults (&params);
  if (c->s2 != NULL && *c->s2 != '\0')
    {
      g_autoptr(StProfile) profile = st_profile_load (c->s2, error);
      if (profile == NULL)
        return NULL;
      params = profile->link;
    }
  GString *text = g_string_new (NULL);
  GError *failure = NULL;
  gboolean ok = st_qa_verify_unit (station->db, root, c->s1, &params, c->session->name, text, &failure);
  if (!ok && !g_error_matches (failure, ST_ERROR, ST_ERROR_VERIFY_FAILED))
    {
      g_string_free (text, TRUE);
      g_propagate_error (error, failure);
      return NULL;
    }
  return st_report_new (ok, text, failure);
}

void
st_station_verify_unit_async (StStation *station, const StAuthSession *session,
                              const char *port, const char *profile_path,
                              GCancellable *cancellable, GAsyncReadyCallback callback,
                              gpointer user_data)
{
  StCall *c = st_call_new (station, session, ST_ROLE_QA, "verifying a unit");
  c->s1 = g_strdup (port);
  c->s2 = g_strdup (profile_path);
  st_call_run (c, st_verify_unit_job, (GDestroyNotify) st_report_free, cancellable, callback,
               user_data, st_station_verify_unit_async);
}

StReport *
st_station_verify_unit_finish (StStation *station, GAsyncResult *result, GError **error)
{
  return st_call_finish (result, st_station_verify_unit_async, error);
}

static gpointer
st_verify_manifest_job (StStation *station, StCall *c, GCancellable *cancellable, GError **error)
{
  g_autoptr(X509) root = st_ca_load_cert_file (station->config->root_file, error);
  if (root == NULL)
    return NULL;
  GString *text = g_string_new (NULL);
  GError *failure = NULL;
  gboolean ok = st_manifest_verify (c->s1, root, text, &failure);
  g_autoptr(StReport) r = st_report_new (ok, text, failure);
  g_autofree gchar *payload = st_json_object ("dir", c->s1, "verified", ok ? 1 : 0);
  if (!st_db_audit_add (station->db, c->session->name, "manifest-verify", payload, error))
    return NULL;
  return g_steal_pointer (&r);
}

void
st_station_verify_manifest_async (StStation *station, const StAuthSession *session,
                                  const char *dir, GCancellable *cancellable,
                                  GAsyncReadyCallback callback, gpointer user_data)
{
  StCall *c = st_call_new (station, session, ST_ROLE_QA | ST_ROLE_LEAD, "verifying a manifest");
  c->s1 = g_strdup (dir);
  st_call_run (c, st_verify_manifest_job, (GDestroyNotify) st_report_free, cancellable, callback,
               user_data, st_station_verify_manifest_async);
}

StReport *
st_station_verify_manifest_finish (StStation *station, GAsyncResult *result, GError **error)
{
  return st_call_finish (result, st_station_verify_manifest_async, error);
}

/* ---- health ------------------------------------------------------------ */

void
st_health_free (StHealth *h)
{
  if (h == NULL)
    return;
  g_free (h->token);
  g_free (h->chain);
  g_free (h->db_path);
  g_free (h->audit);
  g_free (h->setup_text);
  g_free (h);
}

static void
st_health_add_cert (StHealth *h, GString *out, X509 *cert, const char *what)
{
  char name[256];
  X509_NAME_oneline (X509_get_subject_name (cert), name, sizeof name);
  int days = 0, secs = 0;
  if (ASN1_TIME_diff (&days, &secs, NULL, X509_get0_notAfter (cert)) != 1)
    {
      g_string_append_printf (out, "%s %s: expiry unreadable\n", what, name);
      return;
    }
  h->min_days_left = MIN (h->min_days_left, days);
  g_string_append_printf (out, "%s %s: %d days left%s\n", what, name, days,
                          days < 0 ? " (EXPIRED: renew it now)" : days < 30 ? " (renew soon)" : "");
}

static guint64
st_file_size (const char *path)
{
  GStatBuf st;
  return g_stat (path, &st) == 0 ? (guint64) st.st_size : 0;
}

static gpointer
st_health_job (StStation *station, StCall *c, GCancellable *cancellable, GError **error)
{
  StHealth *h = g_new0 (StHealth, 1);
  h->min_days_left = G_MAXINT;
  StCa *ca = st_station_get_ca (station, NULL);
  g_autoptr(GString) chain = g_string_new (NULL);
  if (ca != NULL)
    {
      h->token = st_hsm_get_token_description (ca->hsm);
      g_autoptr(GError) login_error = NULL;
      h->logged_in = st_hsm_ensure_login (ca->hsm, &login_error);
      for (int i = 0; i < sk_X509_num (ca->chain); i++)
        st_health_add_cert (h, chain, sk_X509_value (ca->chain, i), i == 0 ? "issuing CA" : "CA");
      st_health_add_cert (h, chain, ca->signing_cert, "station signing");
    }
  else
    {
      g_autoptr(StX509Stack) certs = st_ca_load_chain_file (station->config->chain_file, NULL);
      for (int i = 0; certs != NULL && i < sk_X509_num (certs); i++)
        st_health_add_cert (h, chain, sk_X509_value (certs, i), i == 0 ? "issuing CA" : "CA");
      if (certs == NULL)
        g_string_append_printf (chain, "the chain file %s cannot be read\n", station->config->chain_file);
    }
  h->chain = g_string_free (g_steal_pointer (&chain), FALSE);
  h->db_path = g_strdup (st_db_get_path (station->db));
  g_autofree gchar *wal = g_strconcat (h->db_path, "-wal", NULL);
  h->db_size = st_file_size (h->db_path) + st_file_size (wal);
  g_autoptr(GFile) file = g_file_new_for_path (h->db_path);
  g_autoptr(GFileInfo) fs = g_file_query_filesystem_info (file, G_FILE_ATTRIBUTE_FILESYSTEM_FREE,
                                                          cancellable, NULL);
  if (fs != NULL)
    h->disk_free = g_file_info_get_attribute_uint64 (fs, G_FILE_ATTRIBUTE_FILESYSTEM_FREE);
  g_autoptr(GString) audit = g_string_new (NULL);
  g_autoptr(GError) audit_error = NULL;
  if (ca != NULL)
    h->audit_ok = st_audit_verify (station->db, ca->root, ca->chain, audit, &audit_error);
  else
    {
      gint64 n = 0;
      h->audit_ok = st_db_audit_verify (station->db, audit, &n, &audit_error);
      g_string_append (audit, "(checkpoint signatures are checked once the HSM is unlocked)\n");
    }
  if (audit_error != NULL)
    g_string_append_printf (audit, "%s\n", audit_error->message);
  h->audit = g_string_free (g_steal_pointer (&audit), FALSE);
  g_autoptr(GString) setup = g_string_new (NULL);
  g_autoptr(GError) setup_error = NULL;
  if (!st_setup_show (station->config, NULL, setup, &setup_error))
    g_string_append_printf (setup, "%s\n", setup_error->message);
  h->setup_text = g_string_free (g_steal_pointer (&setup), FALSE);
  return h;
}

void
st_station_health_async (StStation *station, const StAuthSession *session,
                         GCancellable *cancellable, GAsyncReadyCallback callback,
                         gpointer user_data)
{
  st_call_run (st_call_new (station, session, ST_ROLE_ANY, "showing the station's health"),
               st_health_job, (GDestroyNotify) st_health_free, cancellable, callback, user_data,
               st_station_health_async);
}

StHealth *
st_station_health_finish (StStation *station, GAsyncResult *result, GError **error)
{
  return st_call_finish (result, st_station_health_async, error);
}

/* ---- the line ---------------------------------------------------------- */

/* Shared by the worker threads and the events they post; the events stop
 * being delivered once the caller's callback ran (@finished). */
typedef struct {
  gint ref;
  StLineCallbacks callbacks;
  gpointer data;
  GMainContext *context;
  gboolean finished;     /* main context only */
  StBatchRunSummary summary;
  gboolean ok;
  GError *error;
  StStation *station;
  StAuthSession *session;
  gint64 batch_id;
  gchar **ports;
  guint units;
  StBatchControl *control;
} StRun;

static StRun *
st_run_ref (StRun *run)
{
  g_atomic_int_inc (&run->ref);
  return run;
}

static void
st_run_unref (gpointer data)
{
  StRun *run = data;
  if (!g_atomic_int_dec_and_test (&run->ref))
    return;
  g_main_context_unref (run->context);
  g_clear_error (&run->error);
  st_auth_session_free (run->session);
  g_strfreev (run->ports);
  st_batch_control_unref (run->control);
  g_free (run);
}

typedef enum { ST_EV_STEP, ST_EV_RESULT, ST_EV_PORT } StEventKind;

typedef struct {
  StRun *run;
  StEventKind kind;
  gchar *port, *step, *uid;
  gdouble seconds;
  StUnitResult *result;
  GError *error;
} StEvent;

static void
st_event_free (gpointer data)
{
  StEvent *e = data;
  st_run_unref (e->run);
  g_free (e->port);
  g_free (e->step);
  g_free (e->uid);
  st_unit_result_free (e->result);
  g_clear_error (&e->error);
  g_free (e);
}

static gboolean
st_event_dispatch (gpointer data)
{
  StEvent *e = data;
  StRun *run = e->run;
  if (run->finished)
    return G_SOURCE_REMOVE;
  switch (e->kind)
    {
    case ST_EV_STEP:
      if (run->callbacks.step != NULL)
        {
          StUnitProgress progress = { .port = e->port, .step = e->step, .uid_hex = e->uid,
                                      .seconds = e->seconds };
          run->callbacks.step (&progress, run->data);
        }
      break;
    case ST_EV_RESULT:
      if (run->callbacks.result != NULL)
        run->callbacks.result (e->result, run->data);
      break;
    case ST_EV_PORT:
      if (run->callbacks.port_failed != NULL)
        run->callbacks.port_failed (e->port, e->error, run->data);
      break;
    }
  return G_SOURCE_REMOVE;
}

static void
st_event_post (StRun *run, StEvent *e)
{
  e->run = st_run_ref (run);
  g_main_context_invoke_full (run->context, G_PRIORITY_DEFAULT, st_event_dispatch, e, st_event_free);
}

static void
st_run_on_step (const StUnitProgress *progress, gpointer user_data)
{
  StEvent *e = g_new0 (StEvent, 1);
  e->kind = ST_EV_STEP;
  e->port = g_strdup (progress->port);
  e->step = g_strdup (progress->step);
  e->uid = g_strdup (progress->uid_hex);
  e->seconds = progress->seconds;
  st_event_post (user_data, e);
}

static StUnitResult *
st_unit_result_copy (const StUnitResult *r)
{
  StUnitResult *c = g_new0 (StUnitResult, 1);
  *c = *r;
  c->port = g_strdup (r->port);
  c->uid_hex = g_strdup (r->uid_hex);
  c->step = g_strdup (r->step);
  c->reason = g_strdup (r->reason);
  c->detail = g_strdup (r->detail);
  c->product_serial = g_strdup (r->product_serial);
  c->cert_serial = g_strdup (r->cert_serial);
  return c;
}

static void
st_run_on_unit (const StUnitResult *result, gpointer user_data)
{
  StEvent *e = g_new0 (StEvent, 1);
  e->kind = ST_EV_RESULT;
  e->port = g_strdup (result->port);
  e->result = st_unit_result_copy (result);
  st_event_post (user_data, e);
}

static void
st_run_on_port (const char *port, const GError *error, gpointer user_data)
{
  StEvent *e = g_new0 (StEvent, 1);
  e->kind = ST_EV_PORT;
  e->port = g_strdup (port);
  e->error = g_error_copy (error);
  st_event_post (user_data, e);
}

static void
st_station_line_ended (StStation *station)
{
  g_mutex_lock (&station->lock);
  g_clear_pointer (&station->control, st_batch_control_unref);
  g_mutex_unlock (&station->lock);
}

static void
st_run_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  StRun *run = data;
  StStation *station = run->station;
  GError *error = NULL;
  StCa *ca = NULL;
  if (st_station_require (station, run->session, ST_ROLE_OPERATOR | ST_ROLE_LEAD,
                          "running a batch", &error))
    ca = st_station_get_ca (station, &error);
  g_autoptr(StLine) line = NULL;
  if (ca != NULL)
    line = st_line_new (station->config, ca, station->db, run->batch_id, run->session->name, &error);
  if (line == NULL)
    {
      st_station_line_ended (station);
      return g_task_return_error (task, error);
    }
  line->cancellable = cancellable;
  line->step_func = st_run_on_step;
  line->step_data = run;
  st_audit_install_hook (station->db, ca, st_audit_checkpoint_interval (station->config));
  g_autoptr(GString) recovered = g_string_new (NULL);
  run->ok = st_line_recover (line, recovered, &run->error);
  if (recovered->len > 0)
    g_message ("recovered from an earlier interruption:\n%s", recovered->str);
  if (run->ok)
    {
      StBatchRunOptions options = {
        .ports = (const char *const *) run->ports,
        .units_per_port = run->units,
        .idle_timeout_s = 0,
        .unit_func = st_run_on_unit,
        .port_func = st_run_on_port,
        .user_data = run,
        .control = run->control,
      };
      run->ok = st_batch_run (line, &options, &run->summary, &run->error);
    }
  line->cancellable = NULL;
  st_audit_remove_hook (station->db);
  g_autoptr(GError) cp_error = NULL;
  if (!st_audit_checkpoint (station->db, ca, "batch-run-end", &cp_error))
    g_warning ("the audit checkpoint at the end of the run failed: %s", cp_error->message);
  st_station_line_ended (station);
  g_task_return_boolean (task, TRUE);
}

void
st_station_run_line_async (StStation *station, const StAuthSession *session,
                           gint64 batch_id, const char *const *ports, guint units_per_port,
                           const StLineCallbacks *callbacks, gpointer callbacks_data,
                           GCancellable *cancellable, GAsyncReadyCallback callback,
                           gpointer user_data)
{
  g_autoptr(GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, st_station_run_line_async);
  /* A cancelled line is a normal end: finish tells what was done. */
  g_task_set_check_cancellable (task, FALSE);
  StRun *run = g_new0 (StRun, 1);
  run->ref = 1;
  run->callbacks = *callbacks;
  run->data = callbacks_data;
  run->context = g_main_context_ref_thread_default ();
  run->station = station;
  run->session = st_auth_session_copy (session);
  run->batch_id = batch_id;
  run->ports = g_strdupv ((gchar **) ports);
  run->units = units_per_port;
  run->control = st_batch_control_new ();
  g_task_set_task_data (task, run, st_run_unref);

  g_mutex_lock (&station->lock);
  gboolean busy = station->control != NULL;
  if (!busy)
    station->control = st_batch_control_ref (run->control);
  g_mutex_unlock (&station->lock);
  if (busy)
    return g_task_return_new_error (task, ST_ERROR, ST_ERROR_BUSY,
                                    "a line is already running: stop it first");
  g_task_run_in_thread (task, st_run_thread);
}

gboolean
st_station_run_line_finish (StStation *station, GAsyncResult *result,
                            StBatchRunSummary *summary, GError **error)
{
  StRun *run = g_task_get_task_data (G_TASK (result));
  run->finished = TRUE;
  if (!g_task_propagate_boolean (G_TASK (result), error))
    return FALSE;
  if (summary != NULL)
    *summary = run->summary;
  if (!run->ok)
    {
      g_propagate_error (error, g_steal_pointer (&run->error));
      return FALSE;
    }
  return TRUE;
}

/* The running line's control, or NULL. */
static StBatchControl *
st_station_dup_control (StStation *station)
{
  g_mutex_lock (&station->lock);
  StBatchControl *control = station->control != NULL ? st_batch_control_ref (station->control) : NULL;
  g_mutex_unlock (&station->lock);
  return control;
}

gboolean
st_station_line_start_port (StStation *station, const char *port, guint units)
{
  g_autoptr(StBatchControl) control = st_station_dup_control (station);
  return control != NULL && st_batch_control_start_port (control, port, units);
}

gboolean
st_station_line_retry_port (StStation *station, const char *port, guint units)
{
  g_autoptr(StBatchControl) control = st_station_dup_control (station);
  return control != NULL && st_batch_control_retry_port (control, port, units);
}

void
st_station_line_stop_port (StStation *station, const char *port)
{
  g_autoptr(StBatchControl) control = st_station_dup_control (station);
  if (control != NULL)
    st_batch_control_stop_port (control, port);
}
