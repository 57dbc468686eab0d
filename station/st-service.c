#include "st-service.h"

#include <inttypes.h>
#include <errno.h>
#include <fcntl.h>
#include <gio/gunixfdlist.h>
#include <glib/gstdio.h>
#include <glib/gi18n.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "st-audit.h"
#include "st-cloud.h"
#include "st-cloud-pack.h"
#include "st-dbus.h"
#include "st-error.h"
#include "st-line.h"
#include "st-ossl.h"
#include "st-profile.h"
#include "st-text.h"
#include "st-util.h"
#include "st-verify.h"

/* A manifest file handed in for verification is read up to this size. */
#define ST_SERVICE_MAX_IN_FILE (256 * 1024 * 1024)
/* A manifest file given to ManifestVerify: copied 64 KiB at a time and read
 * a line at a time, so no bound tied to the batch (units.jsonl is about
 * 1.2 KB a unit); this one only keeps a hostile client from filling the
 * disk without end. */
#define ST_SERVICE_MAX_MANIFEST_FILE ((gsize) 16 * 1024 * 1024 * 1024)
#define ST_SERVICE_MAX_IN_FILES 16
#define ST_SERVICE_MAX_ROOT_PEM (64 * 1024)
/* How often idle sessions are looked for. */
#define ST_SERVICE_IDLE_CHECK_S 5

typedef struct {
  gchar *key;                  /* the connection (peer to peer) or the sender (bus) */
  GDBusConnection *connection;
  StAuthSession *auth;         /* NULL until Login */
  gint64 last_used;            /* monotonic, µs */
  guint watch_id;              /* bus: the sender's name watch */
} StSession;

struct _StService {
  StEngine *engine;
  StDbusStation1 *skeleton;
  GDBusServer *server;
  GDBusAuthObserver *observer;
  GMainContext *context;
  guint idle_logout_s;
  guint idle_source;
  guint own_id;
  GMutex lock;                 /* guards sessions and line_owner */
  GHashTable *sessions;        /* key -> StSession */
  GHashTable *line_owners;     /* batch id (gint64*) -> the key of the session that started its line */
  gint64 progress_at;          /* when CheckProgress was last sent (monotonic) */
  /* under lock: the DbCheck or AuditVerify running (one at a time), and who asked */
  gchar *check_what, *check_by;
  GCond check_cond;            /* the check ended */
};

/* ---- sessions ----------------------------------------------------------- */

static void
st_session_free (gpointer data)
{
  StSession *s = data;
  if (s->watch_id != 0)
    g_bus_unwatch_name (s->watch_id);
  g_clear_object (&s->connection);
  st_auth_session_free (s->auth);
  g_free (s->key);
  g_free (s);
}

static gchar *
st_service_key (GDBusConnection *connection, const char *sender)
{
  /* On a bus every client has its unique name; peer to peer the
   * connection is the client. */
  if (sender != NULL && g_dbus_connection_get_unique_name (connection) != NULL)
    return g_strdup (sender);
  return g_strdup_printf ("p2p:%p", (void *) connection);
}

/* Whether the session @key started a line that runs; under the lock. */
static gboolean
st_service_owns_line_locked (StService *service, const char *key)
{
  GHashTableIter it;
  gpointer value;
  g_hash_table_iter_init (&it, service->line_owners);
  while (g_hash_table_iter_next (&it, NULL, &value))
    if (g_strcmp0 (value, key) == 0)
      return TRUE;
  return FALSE;
}

/* Ends the session @key: the lines it started stop. */
static void
st_service_end_session (StService *service, const char *key, const char *why)
{
  g_autoptr(GArray) stop = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_mutex_lock (&service->lock);
  StSession *s = g_hash_table_lookup (service->sessions, key);
  if (s != NULL && s->auth != NULL)
    g_info ("session of %s ended: %s", s->auth->name, why);
  g_hash_table_remove (service->sessions, key);
  GHashTableIter it;
  gpointer k, value;
  g_hash_table_iter_init (&it, service->line_owners);
  while (g_hash_table_iter_next (&it, &k, &value))
    if (g_strcmp0 (value, key) == 0)
      g_array_append_val (stop, *(gint64 *) k);
  g_mutex_unlock (&service->lock);
  for (guint i = 0; i < stop->len; i++)
    {
      gint64 batch = g_array_index (stop, gint64, i);
      g_message ("the session that started the line of batch %" G_GINT64_FORMAT " ended (%s): "
                 "stopping that line; units in flight finish or fail safely", batch, why);
      st_engine_line_stop_internal (service->engine, batch);
    }
}

/* What tells the service that a session's client is gone: the bus (its
 * unique name vanished) or the peer-to-peer connection (closed). */
typedef struct {
  StService *service;
  gchar *key;
} StSessionEnd;

static StSessionEnd *
st_session_end_new (StService *service, const char *key)
{
  StSessionEnd *e = g_new0 (StSessionEnd, 1);
  e->service = service;
  e->key = g_strdup (key);
  return e;
}

static void
st_session_end_free (gpointer data)
{
  StSessionEnd *e = data;
  g_free (e->key);
  g_free (e);
}

static void
st_on_name_vanished (GDBusConnection *connection, const char *name, gpointer data)
{
  StSessionEnd *e = data;
  st_service_end_session (e->service, e->key, "its client left the bus");
}

/* The session of @invocation's client, made when new; under the lock. */
static StSession *
st_service_session_locked (StService *service, GDBusMethodInvocation *invocation)
{
  GDBusConnection *connection = g_dbus_method_invocation_get_connection (invocation);
  const char *sender = g_dbus_method_invocation_get_sender (invocation);
  g_autofree gchar *key = st_service_key (connection, sender);
  StSession *s = g_hash_table_lookup (service->sessions, key);
  if (s == NULL)
    {
      s = g_new0 (StSession, 1);
      s->key = g_strdup (key);
      s->connection = g_object_ref (connection);
      if (g_dbus_connection_get_unique_name (connection) != NULL && sender != NULL)
        {
          s->watch_id = g_bus_watch_name_on_connection (connection, sender,
                                                        G_BUS_NAME_WATCHER_FLAGS_NONE, NULL,
                                                        st_on_name_vanished,
                                                        st_session_end_new (service, key),
                                                        st_session_end_free);
        }
      g_hash_table_insert (service->sessions, s->key, s);
    }
  s->last_used = g_get_monotonic_time ();
  return s;
}

/* A copy of the caller's login (NULL: nobody logged in on that connection). */
static StAuthSession *
st_service_caller (StService *service, GDBusMethodInvocation *invocation)
{
  g_mutex_lock (&service->lock);
  StSession *s = st_service_session_locked (service, invocation);
  StAuthSession *auth = st_auth_session_copy (s->auth);
  g_mutex_unlock (&service->lock);
  return auth;
}

static gchar *
st_service_caller_key (GDBusMethodInvocation *invocation)
{
  return st_service_key (g_dbus_method_invocation_get_connection (invocation),
                         g_dbus_method_invocation_get_sender (invocation));
}

static gboolean
st_service_check_idle (gpointer data)
{
  StService *service = data;
  if (service->idle_logout_s == 0)
    return G_SOURCE_CONTINUE;
  gint64 limit = g_get_monotonic_time () - (gint64) service->idle_logout_s * G_USEC_PER_SEC;
  g_autoptr(GPtrArray) idle = g_ptr_array_new_with_free_func (g_free);
  g_mutex_lock (&service->lock);
  GHashTableIter it;
  gpointer value;
  g_hash_table_iter_init (&it, service->sessions);
  while (g_hash_table_iter_next (&it, NULL, &value))
    {
      StSession *s = value;
      /* a line's session is busy as long as its line runs */
      if (s->auth != NULL && s->last_used < limit && !st_service_owns_line_locked (service, s->key))
        g_ptr_array_add (idle, g_strdup (s->key));
    }
  for (guint i = 0; i < idle->len; i++)
    {
      StSession *s = g_hash_table_lookup (service->sessions, g_ptr_array_index (idle, i));
      g_message ("operator %s logged out after %u s without a call", s->auth->name,
                 service->idle_logout_s);
      g_clear_pointer (&s->auth, st_auth_session_free);
    }
  g_mutex_unlock (&service->lock);
  return G_SOURCE_CONTINUE;
}

guint
st_service_get_n_sessions (StService *service)
{
  g_mutex_lock (&service->lock);
  guint n = 0;
  GHashTableIter it;
  gpointer value;
  g_hash_table_iter_init (&it, service->sessions);
  while (g_hash_table_iter_next (&it, NULL, &value))
    n += ((StSession *) value)->auth != NULL;
  g_mutex_unlock (&service->lock);
  return n;
}

/* ---- replies ------------------------------------------------------------ */

/* Returns @error (taken) to the caller, as org.station.Station1.Error.*. */
static gboolean
st_reply_error (GDBusMethodInvocation *invocation, GError *error)
{
  if (error == NULL)
    error = g_error_new_literal (ST_ERROR, ST_ERROR_INTERNAL, _("the call failed without a reason"));
  g_dbus_method_invocation_return_gerror (invocation, error);
  g_error_free (error);
  return TRUE;
}

/* The reply of a call that returns nothing: done, or @error (taken). */
static gboolean
st_reply_done (GDBusMethodInvocation *invocation, gboolean ok, GError *error)
{
  if (!ok)
    return st_reply_error (invocation, error);
  g_dbus_method_invocation_return_value (invocation, NULL);
  return TRUE;
}

#define ST_REPLY_IF_FAILED(ok, invocation, error) \
  if (!(ok)) \
    return st_reply_error ((invocation), g_steal_pointer (&(error)))

static GVariant *
st_variant_batch (const StDbBatch *b)
{
  GVariantBuilder d;
  g_variant_builder_init (&d, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&d, "{sv}", "id", g_variant_new_int64 (b->id));
  g_variant_builder_add (&d, "{sv}", "work-order", g_variant_new_string (b->work_order));
  g_variant_builder_add (&d, "{sv}", "product", g_variant_new_string (b->product));
  g_variant_builder_add (&d, "{sv}", "profile-sha256", g_variant_new_string (b->profile_sha256));
  g_variant_builder_add (&d, "{sv}", "state", g_variant_new_string (b->state));
  g_variant_builder_add (&d, "{sv}", "created-by", g_variant_new_string (b->created_by));
  g_variant_builder_add (&d, "{sv}", "closed-by",
                         g_variant_new_string (b->closed_by != NULL ? b->closed_by : ""));
  g_variant_builder_add (&d, "{sv}", "station-id",
                         g_variant_new_string (b->station_id != NULL ? b->station_id : ""));
  g_variant_builder_add (&d, "{sv}", "quantity", g_variant_new_int64 (b->quantity));
  g_variant_builder_add (&d, "{sv}", "created-at", g_variant_new_int64 (b->created_at));
  g_variant_builder_add (&d, "{sv}", "closed-at", g_variant_new_int64 (b->closed_at));
  g_variant_builder_add (&d, "{sv}", "units", g_variant_new_int64 (b->n_units));
  g_variant_builder_add (&d, "{sv}", "done", g_variant_new_int64 (b->n_done));
  g_variant_builder_add (&d, "{sv}", "failed", g_variant_new_int64 (b->n_failed));
  g_variant_builder_add (&d, "{sv}", "live", g_variant_new_int64 (b->n_live_certs));
  g_variant_builder_add (&d, "{sv}", "voided", g_variant_new_int64 (b->n_voided));
  g_variant_builder_add (&d, "{sv}", "unconfirmed", g_variant_new_int64 (b->n_unconfirmed));
  g_variant_builder_add (&d, "{sv}", "disputed", g_variant_new_int64 (b->n_disputed));
  g_variant_builder_add (&d, "{sv}", "revoked", g_variant_new_int64 (b->n_revoked));
  g_variant_builder_add (&d, "{sv}", "matter", g_variant_new_boolean (st_profile_text_is_matter (b->profile_text)));
  return g_variant_builder_end (&d);
}

static void
st_dict_add_string (GVariantBuilder *d, const char *key, const char *value)
{
  if (value != NULL)
    g_variant_builder_add (d, "{sv}", key, g_variant_new_string (value));
}

static GVariant *
st_variant_unit (const StDbUnit *u)
{
  GVariantBuilder d;
  g_variant_builder_init (&d, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&d, "{sv}", "id", g_variant_new_int64 (u->id));
  st_dict_add_string (&d, "uid", u->uid);
  st_dict_add_string (&d, "state", u->state);
  st_dict_add_string (&d, "product-serial", u->product_serial);
  st_dict_add_string (&d, "cert-state", u->cert_state);
  st_dict_add_string (&d, "cert-serial", u->cert_serial);
  st_dict_add_string (&d, "port", u->port);
  st_dict_add_string (&d, "fail-step", u->fail_step);
  st_dict_add_string (&d, "fail-reason", u->fail_reason);
  st_dict_add_string (&d, "dispute-reason", u->dispute_reason);
  g_variant_builder_add (&d, "{sv}", "started-at", g_variant_new_int64 (u->started_at));
  g_variant_builder_add (&d, "{sv}", "finished-at", g_variant_new_int64 (u->finished_at));
  return g_variant_builder_end (&d);
}


/* The report of a check: whether it passed, its lines, and why it failed
 * (the report's last line). A check that could not run is an error. */
static gboolean
st_reply_report (StDbusStation1 *object, GDBusMethodInvocation *invocation, gboolean ok,
                 GString *report, GError *failure)
{
  if (!ok && !g_error_matches (failure, ST_ERROR, ST_ERROR_VERIFY_FAILED) && report->len == 0)
    return st_reply_error (invocation, failure);
  const char *why = !ok && failure != NULL ? failure->message : "";
  g_dbus_method_invocation_return_value (invocation,
                                         g_variant_new ("(bss)", ok, report->str, why));
  g_clear_error (&failure);
  return TRUE;
}

/* ---- files across the boundary ------------------------------------------ */

/* Opens @path read-only and adds it to @fds; returns its index or -1. */
static gint
st_fd_list_add_file (GUnixFDList *fds, const char *path, GError **error)
{
  int fd = g_open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW, 0);
  if (fd < 0)
    {
      int e = errno;
      g_set_error (error, ST_ERROR, ST_ERROR_READ, _("cannot open %s: %s"), path, g_strerror (e));
      return -1;
    }
  gint index = g_unix_fd_list_append (fds, fd, error);
  close (fd);
  return index;
}

static gint
st_compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* Folder @path as one descriptor: a station-folder-pack/1 stream
 * (st-cloud-pack.h) of its regular files, written as the folder is read
 * into an unlinked file of @tmp_dir (the service's private scratch), the
 * client getting a read-only descriptor of it. One descriptor per folder
 * whatever its size: a sendmsg carries at most 253 (SCM_MAX_FD). Only names
 * the cloud export writes pass; anything else in the folder is an error. */
static gint
st_fd_list_add_folder (GUnixFDList *fds, const char *path, const char *tmp_dir, GError **error)
{
  int fd = st_cloud_pack_folder (path, tmp_dir, error);
  if (fd < 0)
    return -1;
  gint index = g_unix_fd_list_append (fds, fd, error);
  close (fd);
  return index;
}

/* Copies the regular file behind @fd into @path (at most @max bytes). */
static gboolean
st_copy_fd_to_file (int fd, const char *name, const char *path, gsize max, GError **error)
{
  struct stat st;
  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("%s is not a regular file: give the manifest's files themselves"), name);
      return FALSE;
    }
  if ((guint64) st.st_size > max)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("%s is %" PRIu64 " bytes; at most %zu are read"),
                   name, (guint64) st.st_size, max);
      return FALSE;
    }
  int out = g_open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (out < 0)
    {
      int e = errno;
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, _("cannot write %s: %s"), path, g_strerror (e));
      return FALSE;
    }
  gboolean ok = st_fd_copy (fd, out, max, name, error);
  close (out);
  return ok;
}

/* A manifest file name as the verifier expects it: a plain name. */
static gboolean
st_plain_file_name (const char *name)
{
  return name[0] != '\0' && name[0] != '.' && strchr (name, '/') == NULL && strlen (name) <= 128;
}

static X509 *
st_root_from_pem (const char *pem, gboolean *given, GError **error)
{
  gsize len = strlen (pem);
  *given = len > 0;
  if (len == 0)
    return NULL;
  if (len > ST_SERVICE_MAX_ROOT_PEM)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, _("the root certificate is %zu"
                   " bytes; at most %d are read"), len, ST_SERVICE_MAX_ROOT_PEM);
      return NULL;
    }
  return st_verify_root_from_pem (pem, len, _("the root certificate"), error);
}

/* ---- method handlers (each on a thread of its own) ---------------------- */

static gboolean
on_status (StDbusStation1 *object, GDBusMethodInvocation *invocation, StService *service)
{
  GVariant *status = st_engine_status (service->engine);
  GVariantDict d;
  g_variant_dict_init (&d, status);
  g_variant_unref (g_variant_ref_sink (status));
  g_variant_dict_insert (&d, "sessions", "u", st_service_get_n_sessions (service));
  st_dbus_station1_complete_status (object, invocation, g_variant_dict_end (&d));
  return TRUE;
}

static gboolean
on_login (StDbusStation1 *object, GDBusMethodInvocation *invocation, const char *name,
          const char *pin, StService *service)
{
  GError *error = NULL;
  StAuthSession *auth = st_engine_login (service->engine, name, pin, &error);
  ST_REPLY_IF_FAILED (auth != NULL, invocation, error);
  g_mutex_lock (&service->lock);
  StSession *s = st_service_session_locked (service, invocation);
  st_auth_session_free (s->auth);
  s->auth = auth;
  const char *role = st_role_to_string (auth->role);
  g_mutex_unlock (&service->lock);
  st_dbus_station1_complete_login (object, invocation, role);
  return TRUE;
}

static gboolean
on_login_names (StDbusStation1 *object, GDBusMethodInvocation *invocation, StService *service)
{
  GError *error = NULL;
  g_autoptr(GPtrArray) ops = st_engine_login_names (service->engine, &error);
  ST_REPLY_IF_FAILED (ops != NULL, invocation, error);
  GVariantBuilder a;
  g_variant_builder_init (&a, G_VARIANT_TYPE ("aa{sv}"));
  for (guint i = 0; i < ops->len; i++)
    {
      StDbOperator *op = g_ptr_array_index (ops, i);
      GVariantBuilder d;
      g_variant_builder_init (&d, G_VARIANT_TYPE_VARDICT);
      g_variant_builder_add (&d, "{sv}", "name", g_variant_new_string (op->name));
      g_variant_builder_add (&d, "{sv}", "role", g_variant_new_string (op->role));
      g_variant_builder_add (&d, "{sv}", "locked", g_variant_new_boolean (op->locked));
      g_variant_builder_add_value (&a, g_variant_builder_end (&d));
    }
  st_dbus_station1_complete_login_names (object, invocation, g_variant_builder_end (&a));
  return TRUE;
}

static gboolean
on_logout (StDbusStation1 *object, GDBusMethodInvocation *invocation, StService *service)
{
  g_autofree gchar *key = st_service_caller_key (invocation);
  st_service_end_session (service, key, "logged out");
  st_dbus_station1_complete_logout (object, invocation);
  return TRUE;
}

static gboolean
on_setup_demo (StDbusStation1 *object, GDBusMethodInvocation *invocation, const char *pin,
               StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  gboolean ok = st_engine_setup_demo (service->engine, me, pin, &error);
  return st_reply_done (invocation, ok, error);
}

static gboolean
on_setup_demo_matter (StDbusStation1 *object, GDBusMethodInvocation *invocation, const char *pin,
                      StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  gboolean ok = st_engine_setup_demo_matter (service->engine, me, pin, &error);
  return st_reply_done (invocation, ok, error);
}

static gboolean
on_setup_info (StDbusStation1 *object, GDBusMethodInvocation *invocation, StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  GVariant *info = st_engine_setup_info (service->engine, me, &error);
  ST_REPLY_IF_FAILED (info != NULL, invocation, error);
  st_dbus_station1_complete_setup_info (object, invocation, info);
  return TRUE;
}

static gboolean
on_setup_show (StDbusStation1 *object, GDBusMethodInvocation *invocation, StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  g_autofree gchar *text = st_engine_setup_show (service->engine, me, &error);
  ST_REPLY_IF_FAILED (text != NULL, invocation, error);
  st_dbus_station1_complete_setup_show (object, invocation, text);
  return TRUE;
}

static gboolean
on_unlock (StDbusStation1 *object, GDBusMethodInvocation *invocation, const char *pin,
           StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  gboolean ok = st_engine_unlock (service->engine, me, pin, &error);
  return st_reply_done (invocation, ok, error);
}

static gboolean
on_lock (StDbusStation1 *object, GDBusMethodInvocation *invocation, StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  gboolean ok = st_engine_lock (service->engine, me, &error);
  return st_reply_done (invocation, ok, error);
}

static gboolean
on_operator_add (StDbusStation1 *object, GDBusMethodInvocation *invocation, const char *name,
                 const char *role, const char *pin, StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  ST_REPLY_IF_FAILED (st_engine_operator_add (service->engine, me, name, role, pin, &error),
                      invocation, error);
  st_dbus_station1_complete_operator_add (object, invocation);
  return TRUE;
}

static gboolean
on_operator_list (StDbusStation1 *object, GDBusMethodInvocation *invocation, StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  g_autoptr(GPtrArray) ops = st_engine_operator_list (service->engine, me, &error);
  ST_REPLY_IF_FAILED (ops != NULL, invocation, error);
  GVariantBuilder a;
  g_variant_builder_init (&a, G_VARIANT_TYPE ("aa{sv}"));
  for (guint i = 0; i < ops->len; i++)
    {
      StDbOperator *op = g_ptr_array_index (ops, i);
      GVariantBuilder d;
      g_variant_builder_init (&d, G_VARIANT_TYPE_VARDICT);
      g_variant_builder_add (&d, "{sv}", "name", g_variant_new_string (op->name));
      g_variant_builder_add (&d, "{sv}", "role", g_variant_new_string (op->role));
      g_variant_builder_add (&d, "{sv}", "locked", g_variant_new_boolean (op->locked));
      g_variant_builder_add (&d, "{sv}", "failed-attempts", g_variant_new_int64 (op->failed_attempts));
      g_variant_builder_add (&d, "{sv}", "created-at", g_variant_new_int64 (op->created_at));
      g_variant_builder_add_value (&a, g_variant_builder_end (&d));
    }
  st_dbus_station1_complete_operator_list (object, invocation, g_variant_builder_end (&a));
  return TRUE;
}

static gboolean
on_operator_unlock (StDbusStation1 *object, GDBusMethodInvocation *invocation, const char *name,
                    StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  gboolean ok = st_engine_operator_unlock (service->engine, me, name, &error);
  return st_reply_done (invocation, ok, error);
}

static gboolean
on_operator_set_role (StDbusStation1 *object, GDBusMethodInvocation *invocation, const char *name,
                      const char *role, StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  ST_REPLY_IF_FAILED (st_engine_operator_set_role (service->engine, me, name, role, &error),
                      invocation, error);
  st_dbus_station1_complete_operator_set_role (object, invocation);
  return TRUE;
}

static gboolean
on_admin_recover (StDbusStation1 *object, GDBusMethodInvocation *invocation, const char *name,
                  const char *so_pin, const char *new_pin, StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  const char *action = NULL;
  ST_REPLY_IF_FAILED (st_engine_admin_recover (service->engine, me, name, so_pin, new_pin, &action,
                                               &error),
                      invocation, error);
  st_dbus_station1_complete_admin_recover (object, invocation, action);
  return TRUE;
}

/* ---- the key ceremony ---- */

#define ST_SERVICE_MAX_CA_OPTION 1024

static gboolean
on_ca_init (StDbusStation1 *object, GDBusMethodInvocation *invocation, GVariant *options,
            const char *hsm_pin, const char *admin_pin, StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  const char *names[] = { "module", "token", "station-id", "admin", "curve", "subject", "matter-vid",
                          "matter-pid" };
  const char *values[G_N_ELEMENTS (names)] = { NULL };
  /* every key known and a string of a sane length; the values are then
   * borrowed from @options, which lives as long as the call */
  GVariantIter iter;
  const char *key;
  GVariant *value;
  g_variant_iter_init (&iter, options);
  while (g_variant_iter_loop (&iter, "{&sv}", &key, &value))
    if (!g_strv_contains (names, key) || !g_variant_is_of_type (value, G_VARIANT_TYPE_STRING)
        || strlen (g_variant_get_string (value, NULL)) > ST_SERVICE_MAX_CA_OPTION)
      {
        g_autofree gchar *name = g_strdup (key);
        g_variant_unref (value);
        return st_reply_error (invocation,
                               g_error_new (ST_ERROR, ST_ERROR_INVALID_DATA,
                                            "CaInit: unknown or invalid option '%s' (known: module, "
                                            "token, station-id, admin, curve, subject, matter-vid, "
                                            "matter-pid; strings of at "
                                            "most %d bytes)", name, ST_SERVICE_MAX_CA_OPTION));
      }
  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    g_variant_lookup (options, names[i], "&s", &values[i]);
  const char *curve = values[4] != NULL && *values[4] != '\0' ? values[4] : "p256";
  StCeremonyInit req = {
    .module = values[0], .token = values[1], .station_id = values[2], .subject = values[5],
    .alg = g_strcmp0 (curve, "p256") == 0 ? ST_ALG_EC_P256
         : g_strcmp0 (curve, "p384") == 0 ? ST_ALG_EC_P384 : 0,
    .pin = hsm_pin, .matter_vid = values[6], .matter_pid = values[7],
  };
  g_auto(StCeremonyKeys) keys = { 0 };
  ST_REPLY_IF_FAILED (st_engine_ca_init (service->engine, me, &req, values[3], admin_pin, &keys, &error),
                      invocation, error);
  GVariantBuilder files, info;
  g_variant_builder_init (&files, G_VARIANT_TYPE ("a(ss)"));
  g_variant_builder_add (&files, "(ss)", ST_CEREMONY_CA_CSR, keys.ca_csr_pem);
  g_variant_builder_add (&files, "(ss)", ST_CEREMONY_SIGNING_CSR, keys.signing_csr_pem);
  g_variant_builder_init (&info, G_VARIANT_TYPE ("a{ss}"));
  g_variant_builder_add (&info, "{ss}", "ca-key", keys.ca_key_uri);
  g_variant_builder_add (&info, "{ss}", "signing-key", keys.signing_key_uri);
  g_variant_builder_add (&info, "{ss}", "ca-csr-sha256", keys.ca_csr_sha256);
  g_variant_builder_add (&info, "{ss}", "signing-csr-sha256", keys.signing_csr_sha256);
  g_variant_builder_add (&info, "{ss}", "token", keys.token_description);
  st_dbus_station1_complete_ca_init (object, invocation, g_variant_builder_end (&files),
                                     g_variant_builder_end (&info));
  return TRUE;
}

static gboolean
on_ca_import (StDbusStation1 *object, GDBusMethodInvocation *invocation, const char *chain_pem,
              const char *signing_pem, const char *hsm_pin, StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  g_autoptr(GString) report = g_string_new (NULL);
  ST_REPLY_IF_FAILED (st_engine_ca_import (service->engine, me, hsm_pin, chain_pem, signing_pem,
                                           report, &error),
                      invocation, error);
  st_dbus_station1_complete_ca_import (object, invocation, report->str);
  return TRUE;
}

static gboolean
on_profile_list (StDbusStation1 *object, GDBusMethodInvocation *invocation, StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  g_autoptr(GPtrArray) paths = st_engine_profile_list (service->engine, me, &error);
  ST_REPLY_IF_FAILED (paths != NULL, invocation, error);
  GVariantBuilder a;
  g_variant_builder_init (&a, G_VARIANT_TYPE ("aa{sv}"));
  for (guint i = 0; i < paths->len; i++)
    {
      const char *path = g_ptr_array_index (paths, i);
      g_autofree gchar *name = g_path_get_basename (path);
      g_autoptr(GError) local = NULL;
      g_autoptr(StProfile) profile = st_profile_load (path, &local);
      GVariantBuilder d;
      g_variant_builder_init (&d, G_VARIANT_TYPE_VARDICT);
      g_variant_builder_add (&d, "{sv}", "name", g_variant_new_string (name));
      g_variant_builder_add (&d, "{sv}", "path", g_variant_new_string (path));
      if (profile != NULL)
        {
          g_variant_builder_add (&d, "{sv}", "product", g_variant_new_string (profile->name));
          g_variant_builder_add (&d, "{sv}", "text", g_variant_new_string (profile->text));
        }
      else
        g_variant_builder_add (&d, "{sv}", "error", g_variant_new_string (local->message));
      g_variant_builder_add_value (&a, g_variant_builder_end (&d));
    }
  st_dbus_station1_complete_profile_list (object, invocation, g_variant_builder_end (&a));
  return TRUE;
}

static gboolean
on_batch_create (StDbusStation1 *object, GDBusMethodInvocation *invocation, const char *origin,
                 const char *text, const char *work_order, gint64 quantity, StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  g_autoptr(StProfile) profile = NULL;
  g_autofree gchar *cd_note = NULL;
  gint64 id = st_engine_batch_create (service->engine, me, origin, text, work_order, quantity,
                                      &profile, &cd_note, &error);
  ST_REPLY_IF_FAILED (id > 0, invocation, error);
  GVariantBuilder d;
  g_variant_builder_init (&d, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&d, "{sv}", "product", g_variant_new_string (profile->name));
  g_variant_builder_add (&d, "{sv}", "key-mode",
                         g_variant_new_string (profile->key_mode == ST_KEY_MODE_DEVICE_CSR
                                               ? "device-csr" : "station-key"));
  g_variant_builder_add (&d, "{sv}", "algorithm", g_variant_new_string (st_alg_to_string (profile->alg)));
  /* a development Certification Declaration: one line for the lead */
  if (cd_note != NULL)
    g_variant_builder_add (&d, "{sv}", "cd-note", g_variant_new_string (cd_note));
  st_dbus_station1_complete_batch_create (object, invocation, id, g_variant_builder_end (&d));
  return TRUE;
}

static gboolean
on_batch_list (StDbusStation1 *object, GDBusMethodInvocation *invocation, StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  g_autoptr(GPtrArray) batches = st_engine_batch_list (service->engine, me, &error);
  ST_REPLY_IF_FAILED (batches != NULL, invocation, error);
  GVariantBuilder a;
  g_variant_builder_init (&a, G_VARIANT_TYPE ("aa{sv}"));
  for (guint i = 0; i < batches->len; i++)
    g_variant_builder_add_value (&a, st_variant_batch (g_ptr_array_index (batches, i)));
  st_dbus_station1_complete_batch_list (object, invocation, g_variant_builder_end (&a));
  return TRUE;
}

static gboolean
on_batch_get (StDbusStation1 *object, GDBusMethodInvocation *invocation, gint64 id,
              StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  g_autoptr(StDbBatch) b = st_engine_batch_get (service->engine, me, id, &error);
  ST_REPLY_IF_FAILED (b != NULL, invocation, error);
  st_dbus_station1_complete_batch_get (object, invocation, st_variant_batch (b));
  return TRUE;
}

static gboolean
on_batch_units (StDbusStation1 *object, GDBusMethodInvocation *invocation, gint64 id,
                StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  g_autoptr(GPtrArray) units = st_engine_batch_units (service->engine, me, id, &error);
  ST_REPLY_IF_FAILED (units != NULL, invocation, error);
  GVariantBuilder a;
  g_variant_builder_init (&a, G_VARIANT_TYPE ("aa{sv}"));
  for (guint i = 0; i < units->len; i++)
    g_variant_builder_add_value (&a, st_variant_unit (g_ptr_array_index (units, i)));
  st_dbus_station1_complete_batch_units (object, invocation, g_variant_builder_end (&a));
  return TRUE;
}

static gboolean
on_batch_units_page (StDbusStation1 *object, GDBusMethodInvocation *invocation, gint64 id,
                     gint64 after_id, guint limit, StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  g_autoptr(GPtrArray) units = st_engine_batch_units_page (service->engine, me, id, after_id, limit,
                                                           &error);
  ST_REPLY_IF_FAILED (units != NULL, invocation, error);
  GVariantBuilder a;
  g_variant_builder_init (&a, G_VARIANT_TYPE ("aa{sv}"));
  gint64 last = 0;
  for (guint i = 0; i < units->len; i++)
    {
      StDbUnit *u = g_ptr_array_index (units, i);
      g_variant_builder_add_value (&a, st_variant_unit (u));   /* "id" among the rest */
      last = u->id;
    }
  /* a short page is the last one */
  gint64 next = units->len > 0 && units->len >= CLAMP (limit, 1, ST_ENGINE_UNITS_PAGE_MAX) ? last : 0;
  st_dbus_station1_complete_batch_units_page (object, invocation, g_variant_builder_end (&a), next);
  return TRUE;
}

static gboolean
on_batch_close (StDbusStation1 *object, GDBusMethodInvocation *invocation, gint64 id,
                StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  gboolean ok = st_engine_batch_close (service->engine, me, id, &error);
  return st_reply_done (invocation, ok, error);
}

static gboolean
on_batch_allow_more_voids (StDbusStation1 *object, GDBusMethodInvocation *invocation, gint64 id,
                           StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  gint64 voided = 0, old_cap = 0, new_cap = 0;
  ST_REPLY_IF_FAILED (st_engine_batch_allow_more_voids (service->engine, me, id, &voided, &old_cap,
                                                        &new_cap, &error), invocation, error);
  st_dbus_station1_complete_batch_allow_more_voids (object, invocation, voided, old_cap, new_cap);
  return TRUE;
}

static gboolean
on_shift_stats (StDbusStation1 *object, GDBusMethodInvocation *invocation, gint64 id, guint hours,
                StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  g_autoptr(StShiftStats) s = st_engine_shift_stats (service->engine, me, id, hours, &error);
  ST_REPLY_IF_FAILED (s != NULL, invocation, error);
  st_dbus_station1_complete_shift_stats (object, invocation, st_shift_stats_to_variant (s));
  return TRUE;
}

/* ---- the line ----------------------------------------------------------- */

typedef struct {
  StService *service;
  StAuthSession *session;
  gchar *key;                  /* the starting session's */
  gint64 batch_id;
  gchar **ports;
  gchar **skip_uids;           /* parallel to ports; "" for none */
  StLineRequest request;
  /* the handler waits for the line to start or end */
  GMutex lock;
  GCond cond;
  gboolean started, finished;
  gboolean ok, nothing_to_do;
  GError *error;
  guint units;
} StLineJob;

static void
st_line_job_free (StLineJob *job)
{
  st_auth_session_free (job->session);
  g_free (job->key);
  g_strfreev (job->ports);
  g_strfreev (job->skip_uids);
  g_mutex_clear (&job->lock);
  g_cond_clear (&job->cond);
  g_clear_error (&job->error);
  g_free (job);
}

/* The per-unit signals (UnitStep, UnitResult) of a line go to each client
 * through its connection's outgoing queue, which GDBus does not bound: a
 * client that stops reading (stopped, hung, or hostile) would make the
 * service grow by a few kilobytes a unit for as long as the line runs.
 * Each connection has a gate: at most ST_SERVICE_SIGNALS_QUEUED_MAX such
 * signals not yet known to be written; beyond that they are dropped for
 * that client alone, and counted. A UnitStep is only progress that the
 * next step or result replaces: it is sent only while fewer than
 * ST_SERVICE_STEPS_QUEUED_MAX are waiting, so that a client that is slow
 * but reads (a loaded machine) loses steps, not results. What is written
 * is learnt from g_dbus_connection_flush(), started every
 * ST_SERVICE_SIGNALS_FLUSH_EVERY signals: when it completes, the signals
 * queued before it are out. LineStarted, PortFailed and LineEnded (a few
 * per line) always go: a client's final counts come from LineEnded, and
 * the CLI says how many unit lines it missed (station.c). */
#define ST_SERVICE_SIGNALS_QUEUED_MAX 1024
#define ST_SERVICE_STEPS_QUEUED_MAX 128
#define ST_SERVICE_SIGNALS_FLUSH_EVERY 64

typedef struct {
  GMutex lock;
  guint queued;          /* gated signals sent and not known written */
  guint flushing;        /* of those, queued before the flush in flight; 0: none in flight */
  guint64 dropped;       /* since the connection opened */
  gboolean dropping;     /* dropping now (logged once per episode) */
} StSignalGate;

typedef struct {
  GDBusConnection *connection;
  StSignalGate *gate;
} StSignalFlush;

static void
st_signal_gate_free (gpointer data)
{
  StSignalGate *gate = data;
  g_mutex_clear (&gate->lock);
  g_free (gate);
}

/* The gate of @connection, made on first use (under the service's lock). */
static StSignalGate *
st_signal_gate_get (StService *service, GDBusConnection *connection)
{
  g_mutex_lock (&service->lock);
  StSignalGate *gate = g_object_get_data (G_OBJECT (connection), "st-signal-gate");
  if (gate == NULL)
    {
      gate = g_new0 (StSignalGate, 1);
      g_mutex_init (&gate->lock);
      g_object_set_data_full (G_OBJECT (connection), "st-signal-gate", gate, st_signal_gate_free);
    }
  g_mutex_unlock (&service->lock);
  return gate;
}

static void
st_signal_flushed (GObject *source, GAsyncResult *res, gpointer data)
{
  StSignalFlush *f = data;
  /* an error means the connection closed: nothing more will be queued */
  g_dbus_connection_flush_finish (G_DBUS_CONNECTION (source), res, NULL);
  g_mutex_lock (&f->gate->lock);
  f->gate->queued -= f->gate->flushing;
  f->gate->flushing = 0;
  if (f->gate->dropping && f->gate->queued < ST_SERVICE_SIGNALS_QUEUED_MAX / 2)
    {
      f->gate->dropping = FALSE;
      g_message ("a client reads again; %" G_GUINT64_FORMAT " unit results were not sent to it",
                 f->gate->dropped);
    }
  g_mutex_unlock (&f->gate->lock);
  g_object_unref (f->connection);   /* the gate lives as long as the connection */
  g_free (f);
}

/* Started in the service's main context, so that its completion runs there
 * (the line's threads have no main loop). */
static gboolean
st_signal_flush_start (gpointer data)
{
  StSignalFlush *f = data;
  g_dbus_connection_flush (f->connection, NULL, st_signal_flushed, f);
  return G_SOURCE_REMOVE;
}

/* Sends the per-unit signal @member(@params) to every client whose gate is
 * open (for a @step, open below ST_SERVICE_STEPS_QUEUED_MAX); consumes a
 * floating @params. */
static void
st_service_emit_unit_signal (StService *service, const char *member, GVariant *params, gboolean step)
{
  /* One flat serialized buffer held by every queued copy, not a tree of
   * small values (a UnitResult dictionary is dozens of them). */
  g_autoptr(GVariant) tree = g_variant_ref_sink (params);
  params = g_variant_get_normal_form (tree);
  GList *connections = g_dbus_interface_skeleton_get_connections (G_DBUS_INTERFACE_SKELETON (service->skeleton));
  for (GList *l = connections; l != NULL; l = l->next)
    {
      GDBusConnection *connection = l->data;
      StSignalGate *gate = st_signal_gate_get (service, connection);
      gboolean send = FALSE, flush = FALSE;
      g_mutex_lock (&gate->lock);
      if (step && gate->queued >= ST_SERVICE_STEPS_QUEUED_MAX)
        ;   /* superseded by the unit's next step or its result */
      else if (gate->queued >= ST_SERVICE_SIGNALS_QUEUED_MAX)
        {
          gate->dropped++;
          if (!gate->dropping)
            {
              gate->dropping = TRUE;
              g_message ("a client does not read its signals: the line's unit results to it are dropped "
                         "until it reads again (its final counts still come with LineEnded)");
            }
        }
      else
        {
          send = TRUE;
          gate->queued++;
          if (gate->flushing == 0 && gate->queued >= ST_SERVICE_SIGNALS_FLUSH_EVERY)
            {
              gate->flushing = gate->queued;
              flush = TRUE;
            }
        }
      g_mutex_unlock (&gate->lock);
      if (send)
        g_dbus_connection_emit_signal (connection, NULL, ST_SERVICE_OBJECT_PATH, "org.station.Station1",
                                       member, params, NULL);
      if (flush)
        {
          StSignalFlush *f = g_new0 (StSignalFlush, 1);
          f->connection = g_object_ref (connection);
          f->gate = gate;
          g_main_context_invoke (service->context, st_signal_flush_start, f);
        }
    }
  g_list_free_full (connections, g_object_unref);
  g_variant_unref (params);
}

static void
st_line_on_step (const StUnitProgress *p, gpointer data)
{
  StLineJob *job = data;
  st_service_emit_unit_signal (job->service, "UnitStep",
                               g_variant_new ("(sssd)", p->port, p->step,
                                              p->uid_hex != NULL ? p->uid_hex : "", p->seconds),
                               TRUE);
}

static void
st_line_on_unit (const StUnitResult *r, gpointer data)
{
  StLineJob *job = data;
  st_service_emit_unit_signal (job->service, "UnitResult",
                               g_variant_new ("(@a{sv})", st_unit_result_to_variant (r, job->batch_id)),
                               FALSE);
}

static void
st_line_on_notice (const char *port, const char *uid, const char *text, gpointer data)
{
  StLineJob *job = data;
  st_dbus_station1_emit_line_notice (job->service->skeleton, port, uid != NULL ? uid : "", text);
}

static void
st_line_on_port (const char *port, const GError *error, gpointer data)
{
  StLineJob *job = data;
  /* The socket's last problem may quote its device (st-text.h). */
  g_autofree gchar *message = st_text_escape (error->message, -1, ST_TEXT_ONE_LINE);
  st_dbus_station1_emit_port_failed (job->service->skeleton, port, message);
}

static void
st_line_on_started (gint64 batch_id, const char *const *ports, const char *recovered, gpointer data)
{
  StLineJob *job = data;
  g_mutex_lock (&job->service->lock);
  g_hash_table_insert (job->service->line_owners, g_memdup2 (&batch_id, sizeof batch_id),
                       g_strdup (job->key));
  g_mutex_unlock (&job->service->lock);
  st_dbus_station1_emit_line_started (job->service->skeleton, batch_id, ports, recovered);
  g_mutex_lock (&job->lock);
  job->started = TRUE;
  g_cond_signal (&job->cond);
  g_mutex_unlock (&job->lock);
}

static gpointer
st_line_thread (gpointer data)
{
  StLineJob *job = data;
  StService *service = job->service;
  StEngineLineCallbacks callbacks = {
    .step = st_line_on_step,
    .unit = st_line_on_unit,
    .port_failed = st_line_on_port,
    .notice = st_line_on_notice,
    .started = st_line_on_started,
    .user_data = job,
  };
  StBatchRunSummary summary;
  gboolean stopped = FALSE, nothing = FALSE;
  GError *error = NULL;
  gboolean ok = st_engine_run_line (service->engine, job->session, &job->request, &callbacks,
                                    &summary, &stopped, &nothing, &error);
  g_mutex_lock (&service->lock);
  g_hash_table_remove (service->line_owners, &job->batch_id);
  g_mutex_unlock (&service->lock);

  g_mutex_lock (&job->lock);
  gboolean handler_waits = !job->started;
  g_mutex_unlock (&job->lock);
  if (!handler_waits || (ok && !nothing))
    {
      GVariantBuilder d;
      g_variant_builder_init (&d, G_VARIANT_TYPE_VARDICT);
      g_variant_builder_add (&d, "{sv}", "passed", g_variant_new_uint32 (summary.passed));
      g_variant_builder_add (&d, "{sv}", "failed", g_variant_new_uint32 (summary.failed));
      g_variant_builder_add (&d, "{sv}", "refused", g_variant_new_uint32 (summary.refused));
      g_variant_builder_add (&d, "{sv}", "resumed", g_variant_new_uint32 (summary.resumed));
      g_variant_builder_add (&d, "{sv}", "ports-failed", g_variant_new_uint32 (summary.ports_failed));
      g_variant_builder_add (&d, "{sv}", "stopped", g_variant_new_boolean (stopped));
      g_variant_builder_add (&d, "{sv}", "batch-done", g_variant_new_boolean (summary.batch_done));
      g_variant_builder_add (&d, "{sv}", "error",
                             g_variant_new_string (ok || error == NULL ? "" : error->message));
      st_dbus_station1_emit_line_ended (service->skeleton, job->batch_id, g_variant_builder_end (&d));
    }
  g_mutex_lock (&job->lock);
  job->finished = TRUE;
  job->ok = ok;
  job->nothing_to_do = nothing;
  job->error = error;
  gboolean free_it = job->started;   /* the handler no longer looks */
  g_cond_signal (&job->cond);
  g_mutex_unlock (&job->lock);
  if (free_it)
    st_line_job_free (job);
  return NULL;
}

/* LineStart's "skip-uids" (a{ss}: port -> uid): parallel to @ports, ""
 * where none is given. Each key must be one of @ports and each uid the hex
 * of a uid (at most 128 digits). */
static gchar **
st_line_skip_uids (GVariant *options, const char *const *ports, GError **error)
{
  g_autoptr(GVariant) skip = g_variant_lookup_value (options, "skip-uids", G_VARIANT_TYPE ("a{ss}"));
  guint n = g_strv_length ((gchar **) ports);
  g_auto(GStrv) out = g_new0 (gchar *, n + 1);
  for (guint i = 0; i < n; i++)
    out[i] = g_strdup ("");
  GVariantIter it;
  const char *port, *uid;
  if (skip != NULL)
    {
      g_variant_iter_init (&it, skip);
      while (g_variant_iter_next (&it, "{&s&s}", &port, &uid))
        {
          gsize len = strlen (uid);
          if (len == 0 || len > 128 || strspn (uid, "0123456789abcdefABCDEF") != len)
            {
              g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "skip-uids: the uid for a socket must be 1 to 128 hex digits");
              return NULL;
            }
          guint i = 0;
          while (i < n && g_strcmp0 (ports[i], port) != 0)
            i++;
          if (i == n)
            {
              g_autofree gchar *safe = st_text_escape (port, -1, ST_TEXT_ONE_LINE);
              g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "skip-uids names %s, which is not a socket of this line", safe);
              return NULL;
            }
          g_free (out[i]);
          out[i] = g_strdup (uid);
        }
    }
  return g_steal_pointer (&out);
}

static gboolean
on_line_start (StDbusStation1 *object, GDBusMethodInvocation *invocation, gint64 id,
               const char *const *ports, guint units, GVariant *options, StService *service)
{
  GError *skip_error = NULL;
  gchar **skip_uids = st_line_skip_uids (options, ports, &skip_error);
  if (skip_uids == NULL)
    return st_reply_error (invocation, skip_error);
  StLineJob *job = g_new0 (StLineJob, 1);
  job->service = service;
  job->session = st_service_caller (service, invocation);
  job->key = st_service_caller_key (invocation);
  job->batch_id = id;
  job->ports = g_strdupv ((gchar **) ports);
  job->skip_uids = skip_uids;
  g_mutex_init (&job->lock);
  g_cond_init (&job->cond);
  guint wait_s = 60;
  gboolean reprovision = FALSE, until_stopped = FALSE, hold_failures = FALSE;
  g_variant_lookup (options, "hold-failures", "b", &hold_failures);
  g_variant_lookup (options, "wait", "u", &wait_s);
  g_variant_lookup (options, "allow-reprovision", "b", &reprovision);
  g_variant_lookup (options, "until-stopped", "b", &until_stopped);
  job->request = (StLineRequest) {
    .batch_id = id,
    .ports = (const char *const *) job->ports,
    .units = units,
    .until_stopped = until_stopped,
    .wait_s = wait_s,
    .allow_reprovision = reprovision,
    .hold_failures = hold_failures,
    .skip_uids = (const char *const *) job->skip_uids,
  };
  GThread *thread = g_thread_new ("line", st_line_thread, job);
  g_thread_unref (thread);
  g_mutex_lock (&job->lock);
  while (!job->started && !job->finished)
    g_cond_wait (&job->cond, &job->lock);
  gboolean started = job->started;
  g_mutex_unlock (&job->lock);
  if (started)
    {
      /* the line thread frees the job when it ends */
      GVariantBuilder d;
      g_variant_builder_init (&d, G_VARIANT_TYPE_VARDICT);
      g_variant_builder_add (&d, "{sv}", "nothing-to-do", g_variant_new_boolean (FALSE));
      st_dbus_station1_complete_line_start (object, invocation, g_variant_builder_end (&d));
      return TRUE;
    }
  /* it ended before it started: refused, or nothing to do */
  gboolean ok = job->ok, nothing = job->nothing_to_do;
  GError *error = g_steal_pointer (&job->error);
  st_line_job_free (job);
  if (!ok)
    return st_reply_error (invocation, error);
  GVariantBuilder d;
  g_variant_builder_init (&d, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&d, "{sv}", "nothing-to-do", g_variant_new_boolean (nothing));
  st_dbus_station1_complete_line_start (object, invocation, g_variant_builder_end (&d));
  return TRUE;
}

static gboolean
on_line_stop (StDbusStation1 *object, GDBusMethodInvocation *invocation, gint64 id,
              StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  gboolean ok = st_engine_line_stop (service->engine, me, id, &error);
  return st_reply_done (invocation, ok, error);
}

static gboolean
st_line_port_call (StService *service, GDBusMethodInvocation *invocation, gint64 id,
                   const char *verb, const char *port, guint units)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  gboolean ok = st_engine_line_port (service->engine, me, id, verb, port, units, &error);
  return st_reply_done (invocation, ok, error);
}

static gboolean
on_line_port_start (StDbusStation1 *object, GDBusMethodInvocation *invocation, gint64 id,
                    const char *port, guint units, StService *service)
{
  return st_line_port_call (service, invocation, id, "start", port, units);
}

static gboolean
on_line_port_stop (StDbusStation1 *object, GDBusMethodInvocation *invocation, const char *port,
                   StService *service)
{
  return st_line_port_call (service, invocation, 0, "stop", port, 0);
}

static gboolean
on_line_port_retry (StDbusStation1 *object, GDBusMethodInvocation *invocation, const char *port,
                    guint units, StService *service)
{
  return st_line_port_call (service, invocation, 0, "retry", port, units);
}

/* ---- a Matter batch's codes file and labels ----------------------------- */

/* The folder "out" of the scratch folder @dir as one station-folder-pack/1
 * descriptor in @fds (its files hold setup passcodes: the scratch folder is
 * private, the pack an unlinked file of it). */
static gint
st_matter_out_pack (GUnixFDList *fds, const char *dir, GError **error)
{
  g_autofree gchar *out = g_build_filename (dir, "out", NULL);
  return st_fd_list_add_folder (fds, out, dir, error);
}

/* A scratch folder with an empty private "out" folder in it. */
static gchar *
st_matter_scratch (StService *service, const char *what, GError **error)
{
  g_autofree gchar *dir = st_engine_scratch_new (service->engine, what, error);
  if (dir == NULL)
    return NULL;
  g_autofree gchar *out = g_build_filename (dir, "out", NULL);
  if (g_mkdir (out, 0700) != 0)
    {
      int e = errno;
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, _("cannot create %s: %s"), out, g_strerror (e));
      st_engine_scratch_remove (dir);
      return NULL;
    }
  return g_steal_pointer (&dir);
}

static gboolean
on_matter_codes_export (StDbusStation1 *object, GDBusMethodInvocation *invocation,
                        GUnixFDList *in_fds, gint64 id, const char *destination, StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  g_autofree gchar *dir = st_matter_scratch (service, "matter-codes", &error);
  ST_REPLY_IF_FAILED (dir != NULL, invocation, error);
  g_autofree gchar *out = g_build_filename (dir, "out", NULL);
  g_autofree gchar *sha256 = NULL;
  guint rows = 0;
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  gboolean ok = st_engine_matter_codes_export (service->engine, me, id, out, destination, &rows, &sha256, &error);
  gint index = ok ? st_matter_out_pack (fds, dir, &error) : -1;
  st_engine_scratch_remove (dir);
  ST_REPLY_IF_FAILED (index >= 0, invocation, error);
  st_dbus_station1_complete_matter_codes_export (object, invocation, fds, g_variant_new_handle (index),
                                                 rows, sha256);
  return TRUE;
}

static gboolean
on_matter_labels_export (StDbusStation1 *object, GDBusMethodInvocation *invocation,
                         GUnixFDList *in_fds, gint64 id, const char *destination, GVariant *options,
                         StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  StLabelSize size;
  st_label_size_default (&size);
  GVariantIter oi;
  const char *key;
  GVariant *value;
  g_variant_iter_init (&oi, options);
  while (g_variant_iter_loop (&oi, "{&sv}", &key, &value))
    if (g_strcmp0 (key, "width-mm") == 0 && g_variant_is_of_type (value, G_VARIANT_TYPE_DOUBLE))
      size.width_mm = g_variant_get_double (value);
    else if (g_strcmp0 (key, "height-mm") == 0 && g_variant_is_of_type (value, G_VARIANT_TYPE_DOUBLE))
      size.height_mm = g_variant_get_double (value);
    else if (g_strcmp0 (key, "dpi") == 0 && g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32))
      size.png_dpi = g_variant_get_uint32 (value);
    else if (g_strcmp0 (key, "zpl-dpi") == 0 && g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32))
      size.zpl_dpi = g_variant_get_uint32 (value);
    else
      {
        g_set_error (&error, ST_ERROR, ST_ERROR_INVALID_DATA,
                     _("MatterLabelsExport: unknown option '%s' (known: width-mm and height-mm, doubles; "
                     "dpi and zpl-dpi, unsigned integers)"), key);
        g_variant_unref (value);
        return st_reply_error (invocation, error);
      }
  g_autofree gchar *dir = st_matter_scratch (service, "matter-labels", &error);
  ST_REPLY_IF_FAILED (dir != NULL, invocation, error);
  g_autofree gchar *out = g_build_filename (dir, "out", NULL);
  guint count = 0;
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  gboolean ok = st_engine_matter_labels_export (service->engine, me, id, &size, out, destination, &count,
                                                &error);
  gint index = ok ? st_matter_out_pack (fds, dir, &error) : -1;
  st_engine_scratch_remove (dir);
  ST_REPLY_IF_FAILED (index >= 0, invocation, error);
  st_dbus_station1_complete_matter_labels_export (object, invocation, fds, g_variant_new_handle (index),
                                                  count);
  return TRUE;
}

/* ---- manifests, units, audit, database ---------------------------------- */

static gboolean
on_manifest_export (StDbusStation1 *object, GDBusMethodInvocation *invocation,
                    GUnixFDList *in_fds, gint64 id, const char *destination, GVariant *options,
                    StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  gboolean replace = FALSE;
  g_autofree gchar *cloud = NULL;
  GVariantIter oi;
  const char *key;
  GVariant *value;
  g_variant_iter_init (&oi, options);
  while (g_variant_iter_loop (&oi, "{&sv}", &key, &value))
    if (g_strcmp0 (key, "replace") == 0 && g_variant_is_of_type (value, G_VARIANT_TYPE_BOOLEAN))
      replace = g_variant_get_boolean (value);
    else if (g_strcmp0 (key, "cloud") == 0 && g_variant_is_of_type (value, G_VARIANT_TYPE_STRING)
             && cloud == NULL)
      cloud = g_variant_dup_string (value, NULL);
    else
      {
        g_set_error (&error, ST_ERROR, ST_ERROR_INVALID_DATA,
                     _("ManifestExport: unknown option '%s' (known: replace, a boolean; cloud, a "
                     "string)"), key);
        g_variant_unref (value);
        return st_reply_error (invocation, error);
      }
  g_autofree gchar *dir = st_engine_scratch_new (service->engine, "manifest", &error);
  ST_REPLY_IF_FAILED (dir != NULL, invocation, error);
  gboolean ok = st_engine_manifest_export_cloud (service->engine, me, id, dir, destination, replace,
                                                 cloud, &error);
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  GVariantBuilder a;
  g_variant_builder_init (&a, G_VARIANT_TYPE ("a(sh)"));
  g_autoptr(GDir) d = ok ? g_dir_open (dir, 0, &error) : NULL;
  ok = ok && d != NULL;
  /* the export's own entries (a dozen) listed first: a folder's pack is
   * made in @dir while it is read */
  g_autoptr(GPtrArray) entries = g_ptr_array_new_with_free_func (g_free);
  const char *name;
  while (ok && (name = g_dir_read_name (d)) != NULL)
    g_ptr_array_add (entries, g_strdup (name));
  g_ptr_array_sort (entries, (GCompareFunc) st_compare_strings);
  for (guint e = 0; ok && e < entries->len; e++)
    {
      name = g_ptr_array_index (entries, e);
      g_autofree gchar *path = g_build_filename (dir, name, NULL);
      /* a folder of the cloud export goes as one descriptor, "NAME/" */
      gboolean folder = g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK);
      gint index = folder ? st_fd_list_add_folder (fds, path, dir, &error) : st_fd_list_add_file (fds, path, &error);
      ok = index >= 0;
      g_autofree gchar *label = folder ? g_strconcat (name, "/", NULL) : g_strdup (name);
      if (ok)
        g_variant_builder_add (&a, "(sh)", label, index);
    }
  st_engine_scratch_remove (dir);
  if (!ok)
    {
      g_variant_builder_clear (&a);
      return st_reply_error (invocation, error);
    }
  st_dbus_station1_complete_manifest_export (object, invocation, fds, g_variant_builder_end (&a));
  return TRUE;
}

static gboolean
on_ca_verification_cert (StDbusStation1 *object, GDBusMethodInvocation *invocation,
                         const char *code, StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  g_autofree gchar *pem = st_engine_ca_verification_cert (service->engine, me, code, &error);
  ST_REPLY_IF_FAILED (pem != NULL, invocation, error);
  st_dbus_station1_complete_ca_verification_cert (object, invocation, pem);
  return TRUE;
}

static gboolean
on_manifest_verify (StDbusStation1 *object, GDBusMethodInvocation *invocation,
                    GUnixFDList *in_fds, GVariant *files, const char *root_pem, const char *signer_pin,
                    const char *origin, StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  /* the role first: nothing is copied for a caller who may not verify */
  ST_REPLY_IF_FAILED (st_engine_require (service->engine, me, ST_ACTION_MANIFEST_VERIFY, &error),
                      invocation, error);
  gboolean root_given = FALSE;
  g_autoptr(X509) root = st_root_from_pem (root_pem, &root_given, &error);
  ST_REPLY_IF_FAILED (root != NULL || !root_given, invocation, error);
  if (g_variant_n_children (files) > ST_SERVICE_MAX_IN_FILES)
    return st_reply_error (invocation,
                           g_error_new (ST_ERROR, ST_ERROR_INVALID_DATA,
                                        _("a manifest has at most %d files"), ST_SERVICE_MAX_IN_FILES));
  g_autofree gchar *dir = st_engine_scratch_new (service->engine, "verify", &error);
  ST_REPLY_IF_FAILED (dir != NULL, invocation, error);
  GVariantIter it;
  const char *name;
  gint32 index;
  gboolean ok = TRUE;
  g_variant_iter_init (&it, files);
  while (ok && g_variant_iter_next (&it, "(&sh)", &name, &index))
    {
      if (!st_plain_file_name (name))
        {
          g_set_error (&error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       _("'%s' is not a manifest file name"), name);
          ok = FALSE;
          break;
        }
      int fd = in_fds != NULL ? g_unix_fd_list_get (in_fds, index, &error) : -1;
      if (fd < 0)
        {
          if (error == NULL)
            g_set_error (&error, ST_ERROR, ST_ERROR_INVALID_DATA, _("%s came without its file"), name);
          ok = FALSE;
          break;
        }
      g_autofree gchar *path = g_build_filename (dir, name, NULL);
      ok = st_copy_fd_to_file (fd, name, path, ST_SERVICE_MAX_MANIFEST_FILE, &error);
      close (fd);
    }
  g_autoptr(GString) report = g_string_new (NULL);
  GError *failure = NULL;
  gboolean verified = ok && st_engine_manifest_verify (service->engine, me, dir, root, signer_pin,
                                                       origin, report, &failure);
  st_engine_scratch_remove (dir);
  if (!ok)
    return st_reply_error (invocation, error);
  return st_reply_report (object, invocation, verified, report, failure);
}

static gboolean
on_unit_verify (StDbusStation1 *object, GDBusMethodInvocation *invocation, const char *port,
                const char *profile_text, const char *matter_code, StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  g_autoptr(GString) report = g_string_new (NULL);
  GError *failure = NULL;
  gboolean ok = st_engine_unit_verify (service->engine, me, port, profile_text, matter_code, report, &failure);
  return st_reply_report (object, invocation, ok, report, failure);
}

static gboolean
on_unit_lookup (StDbusStation1 *object, GDBusMethodInvocation *invocation, const char *code,
                StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  g_autoptr(GString) report = g_string_new (NULL);
  g_autofree gchar *work_order = NULL;
  gboolean verified = FALSE;
  GError *error = NULL;
  g_autoptr(StDbUnit) u = st_engine_unit_lookup (service->engine, me, code, &work_order, &verified,
                                                 report, &error);
  ST_REPLY_IF_FAILED (u != NULL, invocation, error);
  g_autoptr(GVariant) base = g_variant_ref_sink (st_variant_unit (u));
  GVariantDict d;
  g_variant_dict_init (&d, base);
  g_variant_dict_insert (&d, "batch-id", "x", u->batch_id);
  g_variant_dict_insert (&d, "work-order", "s", work_order != NULL ? work_order : "");
  const char *why = verified ? "" : _("The unit's record failed a check: set the unit aside for QA review.");
  st_dbus_station1_complete_unit_lookup (object, invocation, g_variant_dict_end (&d), verified, report->str,
                                         why);
  return TRUE;
}

static gboolean
on_unit_resolve (StDbusStation1 *object, GDBusMethodInvocation *invocation, const char *unit,
                 const char *decision, StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  g_autoptr(StDbUnit) u = st_engine_unit_resolve (service->engine, me, unit, decision, &error);
  ST_REPLY_IF_FAILED (u != NULL, invocation, error);
  st_dbus_station1_complete_unit_resolve (object, invocation, st_variant_unit (u));
  return TRUE;
}

#define ST_SERVICE_PROGRESS_US 250000

typedef struct {
  StDbusStation1 *skeleton;   /* a reference: the signal may outlive the check */
  gchar *what;
  gint64 done, total;
} StCheckProgress;

static void
st_check_progress_free (gpointer data)
{
  StCheckProgress *p = data;
  g_object_unref (p->skeleton);
  g_free (p->what);
  g_free (p);
}

static gboolean
st_service_emit_check_progress (gpointer data)
{
  StCheckProgress *p = data;
  st_dbus_station1_emit_check_progress (p->skeleton, p->what, p->done, p->total);
  return G_SOURCE_REMOVE;
}

/* CheckProgress, at most every ST_SERVICE_PROGRESS_US and at each step's
 * end, while DbCheck or AuditVerify runs. The check runs on its method's
 * thread (HANDLE_METHOD_INVOCATIONS_IN_THREAD): the signal is sent from the
 * service's main context, as every other signal of the interface. */
static void
st_service_on_check_progress (const char *what, gint64 done, gint64 total, gpointer user_data)
{
  StService *service = user_data;
  gint64 now = g_get_monotonic_time ();
  g_mutex_lock (&service->lock);
  gboolean send = now - service->progress_at >= ST_SERVICE_PROGRESS_US || (total > 0 && done == total);
  if (send)
    service->progress_at = now;
  g_mutex_unlock (&service->lock);
  if (!send)
    return;
  StCheckProgress *p = g_new0 (StCheckProgress, 1);
  p->skeleton = g_object_ref (service->skeleton);
  p->what = g_strdup (what);
  p->done = done;
  p->total = total;
  GSource *source = g_idle_source_new ();
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, st_service_emit_check_progress, p, st_check_progress_free);
  g_source_attach (source, service->context);
  g_source_unref (source);
}

/* One DbCheck or AuditVerify at a time: the progress hook is the
 * database's (st_db_set_progress), and two full walks of a large database
 * would only slow each other. A second one is refused, naming the first. */
static gboolean
st_service_check_begin (StService *service, const StAuthSession *me, const char *what, GError **error)
{
  g_mutex_lock (&service->lock);
  if (service->check_what != NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_BUSY,
                   _("cannot start %s: %s (asked by %s) is still running, and the station runs one "
                   "check at a time; wait for it to end (its progress shows on the terminal that "
                   "asked) and ask again"), what, service->check_what, service->check_by);
      g_mutex_unlock (&service->lock);
      return FALSE;
    }
  service->check_what = g_strdup (what);
  service->check_by = g_strdup (me != NULL ? me->name : "a client");
  service->progress_at = 0;
  g_mutex_unlock (&service->lock);
  st_engine_set_check_progress (service->engine, st_service_on_check_progress, service);
  return TRUE;
}

static void
st_service_check_end (StService *service)
{
  st_engine_set_check_progress (service->engine, NULL, NULL);
  g_mutex_lock (&service->lock);
  g_clear_pointer (&service->check_what, g_free);
  g_clear_pointer (&service->check_by, g_free);
  g_cond_broadcast (&service->check_cond);
  g_mutex_unlock (&service->lock);
}

static gboolean
on_audit_verify (StDbusStation1 *object, GDBusMethodInvocation *invocation, GUnixFDList *in_fds,
                 const char *root_pem, GVariant *manifests, StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  /* the role first: nothing is copied for a caller who may not verify */
  ST_REPLY_IF_FAILED (st_engine_require (service->engine, me, ST_ACTION_AUDIT_VERIFY, &error),
                      invocation, error);
  gboolean root_given = FALSE;
  g_autoptr(X509) root = st_root_from_pem (root_pem, &root_given, &error);
  ST_REPLY_IF_FAILED (root != NULL || !root_given, invocation, error);
  if (g_variant_n_children (manifests) > ST_SERVICE_MAX_IN_FILES)
    return st_reply_error (invocation,
                           g_error_new (ST_ERROR, ST_ERROR_INVALID_DATA,
                                        _("audit verify takes at most %d manifests at once"),
                                        ST_SERVICE_MAX_IN_FILES));
  g_autofree gchar *dir = NULL;
  g_autoptr(GPtrArray) copies = g_ptr_array_new_with_free_func ((GDestroyNotify) st_audit_manifest_free);
  GVariantIter it;
  const char *label;
  gint32 index;
  gboolean ok = TRUE;
  g_variant_iter_init (&it, manifests);
  while (ok && g_variant_iter_next (&it, "(&sh)", &label, &index))
    {
      if (dir == NULL && (dir = st_engine_scratch_new (service->engine, "audit", &error)) == NULL)
        {
          ok = FALSE;
          break;
        }
      int fd = in_fds != NULL ? g_unix_fd_list_get (in_fds, index, &error) : -1;
      if (fd < 0)
        {
          if (error == NULL)
            g_set_error (&error, ST_ERROR, ST_ERROR_INVALID_DATA, _("manifest %s came without its file"), label);
          ok = FALSE;
          break;
        }
      StAuditManifest *m = g_new0 (StAuditManifest, 1);
      m->label = g_utf8_make_valid (label, -1);
      m->path = g_strdup_printf ("%s/%u-manifest.json", dir, copies->len);
      g_ptr_array_add (copies, m);
      ok = st_copy_fd_to_file (fd, "manifest.json", m->path, ST_SERVICE_MAX_IN_FILE, &error);
      close (fd);
    }
  g_autoptr(GString) report = g_string_new (NULL);
  GError *failure = NULL;
  gboolean verified = FALSE;
  if (ok && (ok = st_service_check_begin (service, me, "audit verify", &error)))
    {
      verified = st_engine_audit_verify (service->engine, me, root, copies, report, &failure);
      st_service_check_end (service);
    }
  if (dir != NULL)
    st_engine_scratch_remove (dir);
  if (!ok)
    return st_reply_error (invocation, error);
  return st_reply_report (object, invocation, verified, report, failure);
}

/* Runs @func into a scratch file and hands the client a descriptor of it. */
static gboolean
on_unit_revoke (StDbusStation1 *object, GDBusMethodInvocation *invocation, const char *unit,
                const char *reason, StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  g_autoptr(StDbUnit) u = st_engine_unit_revoke (service->engine, me, unit, reason, &error);
  ST_REPLY_IF_FAILED (u != NULL, invocation, error);
  st_dbus_station1_complete_unit_revoke (object, invocation, st_variant_unit (u));
  return TRUE;
}

static gboolean
on_crl_issue (StDbusStation1 *object, GDBusMethodInvocation *invocation, guint days,
              StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  g_autoptr(StCrlIssued) crl = st_engine_crl_issue (service->engine, me, days, &error);
  ST_REPLY_IF_FAILED (crl != NULL, invocation, error);
  st_dbus_station1_complete_crl_issue (object, invocation, crl->number, crl->n_entries,
                                       crl->der_sha256, crl->pem);
  return TRUE;
}

static gboolean
on_audit_export (StDbusStation1 *object, GDBusMethodInvocation *invocation, GUnixFDList *in_fds,
                 const char *destination, StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  g_autofree gchar *dir = st_engine_scratch_new (service->engine, "audit", &error);
  ST_REPLY_IF_FAILED (dir != NULL, invocation, error);
  g_autofree gchar *path = g_build_filename (dir, "audit.jsonl", NULL);
  gint64 n = 0;
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  gint index = -1;
  if (st_engine_audit_export (service->engine, me, path, destination, &n, &error))
    index = st_fd_list_add_file (fds, path, &error);
  st_engine_scratch_remove (dir);
  ST_REPLY_IF_FAILED (index >= 0, invocation, error);
  st_dbus_station1_complete_audit_export (object, invocation, fds, n, g_variant_new_handle (index));
  return TRUE;
}

static gboolean
on_db_check (StDbusStation1 *object, GDBusMethodInvocation *invocation, StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  g_autoptr(GString) report = g_string_new (NULL);
  GError *failure = NULL;
  ST_REPLY_IF_FAILED (st_engine_require (service->engine, me, ST_ACTION_DB_CHECK, &failure)
                      && st_service_check_begin (service, me, "db check", &failure),
                      invocation, failure);
  gboolean ok = st_engine_db_check (service->engine, me, report, &failure);
  st_service_check_end (service);
  GError *error = NULL;
  if (!ok && report->len == 0)
    {
      error = failure;
      ST_REPLY_IF_FAILED (FALSE, invocation, error);
    }
  if (failure != NULL)
    g_string_append_printf (report, "%s\n", failure->message);
  g_clear_error (&failure);
  st_dbus_station1_complete_db_check (object, invocation, ok, report->str);
  return TRUE;
}

static gboolean
on_db_backup (StDbusStation1 *object, GDBusMethodInvocation *invocation, GUnixFDList *in_fds,
              const char *destination, StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  g_autofree gchar *dir = st_engine_scratch_new (service->engine, "backup", &error);
  ST_REPLY_IF_FAILED (dir != NULL, invocation, error);
  g_autofree gchar *path = g_build_filename (dir, "station.db", NULL);
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  gint index = -1;
  if (st_engine_db_backup (service->engine, me, path, destination, &error))
    index = st_fd_list_add_file (fds, path, &error);
  st_engine_scratch_remove (dir);
  ST_REPLY_IF_FAILED (index >= 0, invocation, error);
  st_dbus_station1_complete_db_backup (object, invocation, fds, g_variant_new_handle (index));
  return TRUE;
}

static gboolean
on_socket_names (StDbusStation1 *object, GDBusMethodInvocation *invocation, StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  g_auto(GStrv) ports = NULL;
  g_auto(GStrv) names = NULL;
  ST_REPLY_IF_FAILED (st_engine_socket_names (service->engine, me, &ports, &names, &error),
                      invocation, error);
  GVariantBuilder a;
  g_variant_builder_init (&a, G_VARIANT_TYPE ("a(ss)"));
  for (guint i = 0; ports[i] != NULL && names[i] != NULL; i++)
    g_variant_builder_add (&a, "(ss)", ports[i], names[i]);
  st_dbus_station1_complete_socket_names (object, invocation, g_variant_builder_end (&a));
  return TRUE;
}

static gboolean
on_health (StDbusStation1 *object, GDBusMethodInvocation *invocation, StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  g_autoptr(StHealth) h = st_engine_health (service->engine, me, &error);
  ST_REPLY_IF_FAILED (h != NULL, invocation, error);
  st_dbus_station1_complete_health (object, invocation, st_health_to_variant (h));
  return TRUE;
}

static gboolean
on_bench (StDbusStation1 *object, GDBusMethodInvocation *invocation, guint units, guint slots,
          StService *service)
{
  g_autoptr(StAuthSession) me = st_service_caller (service, invocation);
  GError *error = NULL;
  StBenchResult r;
  ST_REPLY_IF_FAILED (st_engine_bench (service->engine, me, units, slots, &r, &error), invocation,
                      error);
  GVariantBuilder d;
  g_variant_builder_init (&d, G_VARIANT_TYPE_VARDICT);
#define ST_U(k, v) g_variant_builder_add (&d, "{sv}", k, g_variant_new_uint32 (v))
#define ST_D(k, v) g_variant_builder_add (&d, "{sv}", k, g_variant_new_double (v))
#define ST_T(k, v) g_variant_builder_add (&d, "{sv}", k, g_variant_new_uint64 (v))
  ST_U ("units", r.units);
  ST_U ("slots", r.slots);
  ST_D ("e2e-seconds", r.e2e_seconds);
  ST_D ("e2e-units-per-s", r.e2e_units_per_s);
  ST_U ("raw-count", r.raw_count);
  ST_D ("raw-seconds", r.raw_seconds);
  ST_D ("raw-per-s", r.raw_per_s);
  ST_D ("raw-cpu-seconds", r.raw_cpu_seconds);
  ST_U ("passed", r.passed);
  ST_U ("failed", r.failed);
  ST_T ("db-writes", r.db_writes);
  ST_T ("db-commits", r.db_commits);
  ST_D ("e2e-cpu-seconds", r.e2e_cpu_seconds);
  ST_D ("device-cpu-seconds", r.device_cpu_seconds);
  ST_D ("premade-seconds", r.premade_seconds);
  ST_U ("premade-left", r.premade_left);
  ST_U ("cores", g_get_num_processors ());
  ST_U ("tenth-units", r.tenth_units);
  ST_D ("first-tenth-units-per-s", r.first_tenth_per_s);
  ST_D ("last-tenth-units-per-s", r.last_tenth_per_s);
  ST_D ("first-tenth-cpu-ms", r.first_tenth_cpu_ms);
  ST_D ("last-tenth-cpu-ms", r.last_tenth_cpu_ms);
  ST_T ("db-bytes", r.db_bytes);
  ST_T ("peak-rss-kib", r.peak_rss_kib);
#undef ST_U
#undef ST_D
#undef ST_T
  st_dbus_station1_complete_bench (object, invocation, g_variant_builder_end (&d));
  return TRUE;
}

/* ---- properties, connections -------------------------------------------- */

static gboolean
st_service_sync_properties (gpointer data)
{
  StService *service = data;
  st_dbus_station1_set_configured (service->skeleton, st_engine_is_configured (service->engine));
  st_dbus_station1_set_unlocked (service->skeleton, st_engine_is_unlocked (service->engine));
  st_dbus_station1_set_running_batch (service->skeleton,
                                      st_engine_get_running_batch (service->engine));
  g_autoptr(GVariant) status = st_engine_status (service->engine);
  g_autoptr(GVariant) running = g_variant_lookup_value (status, "running-batches", G_VARIANT_TYPE ("ax"));
  st_dbus_station1_set_running_batches (service->skeleton, running);
  return G_SOURCE_REMOVE;
}

static void
st_service_on_state (StEngine *engine, gpointer data)
{
  StService *service = data;
  g_main_context_invoke (service->context, st_service_sync_properties, service);
}

static void
st_on_connection_closed (GDBusConnection *connection, gboolean remote_peer_vanished,
                         GError *error, gpointer data)
{
  StSessionEnd *e = data;
  st_service_end_session (e->service, e->key, "its client closed the connection");
}

static void
st_session_end_notify (gpointer data, GClosure *closure)
{
  st_session_end_free (data);
}

static gboolean
st_on_new_connection (GDBusServer *server, GDBusConnection *connection, gpointer data)
{
  StService *service = data;
  g_autoptr(GError) error = NULL;
  if (!g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (service->skeleton), connection,
                                         ST_SERVICE_OBJECT_PATH, &error))
    {
      g_warning ("cannot serve a new client: %s", error->message);
      return FALSE;
    }
  g_autofree gchar *key = st_service_key (connection, NULL);
  g_signal_connect_data (connection, "closed", G_CALLBACK (st_on_connection_closed),
                         st_session_end_new (service, key), st_session_end_notify, 0);
  GCredentials *creds = g_dbus_connection_get_peer_credentials (connection);
  if (creds != NULL)
    g_debug ("client connected: uid %d, pid %d", (int) g_credentials_get_unix_user (creds, NULL),
             (int) g_credentials_get_unix_pid (creds, NULL));
  return TRUE;
}

/* Peer to peer, only EXTERNAL (the kernel's word for who connects); anyone
 * may connect: what a client can do is what its login allows. */
static gboolean
st_on_allow_mechanism (GDBusAuthObserver *observer, const char *mechanism, gpointer data)
{
  return g_strcmp0 (mechanism, "EXTERNAL") == 0;
}

StService *
st_service_new (StEngine *engine, guint idle_logout_s)
{
  st_dbus_register_errors ();
  StService *service = g_new0 (StService, 1);
  service->engine = engine;
  service->context = g_main_context_ref_thread_default ();
  g_mutex_init (&service->lock);
  g_cond_init (&service->check_cond);
  service->sessions = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, st_session_free);
  service->line_owners = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, g_free);
  StConfig *config = st_engine_get_config (engine);
  service->idle_logout_s = idle_logout_s > 0 ? idle_logout_s
                           : config != NULL ? config->idle_logout_s : ST_CONFIG_IDLE_LOGOUT_DEFAULT;
  service->skeleton = st_dbus_station1_skeleton_new ();
  g_dbus_interface_skeleton_set_flags (G_DBUS_INTERFACE_SKELETON (service->skeleton),
                                       G_DBUS_INTERFACE_SKELETON_FLAGS_HANDLE_METHOD_INVOCATIONS_IN_THREAD);
  st_dbus_station1_set_version (service->skeleton, ST_VERSION);
  st_service_sync_properties (service);
  st_engine_set_state_func (engine, st_service_on_state, service);
  struct { const char *signal; GCallback handler; } handlers[] = {
    { "handle-status", G_CALLBACK (on_status) },
    { "handle-login", G_CALLBACK (on_login) },
    { "handle-logout", G_CALLBACK (on_logout) },
    { "handle-login-names", G_CALLBACK (on_login_names) },
    { "handle-setup-demo", G_CALLBACK (on_setup_demo) },
    { "handle-setup-demo-matter", G_CALLBACK (on_setup_demo_matter) },
    { "handle-setup-show", G_CALLBACK (on_setup_show) },
    { "handle-setup-info", G_CALLBACK (on_setup_info) },
    { "handle-unlock", G_CALLBACK (on_unlock) },
    { "handle-lock", G_CALLBACK (on_lock) },
    { "handle-operator-add", G_CALLBACK (on_operator_add) },
    { "handle-operator-list", G_CALLBACK (on_operator_list) },
    { "handle-operator-unlock", G_CALLBACK (on_operator_unlock) },
    { "handle-operator-set-role", G_CALLBACK (on_operator_set_role) },
    { "handle-profile-list", G_CALLBACK (on_profile_list) },
    { "handle-batch-create", G_CALLBACK (on_batch_create) },
    { "handle-batch-list", G_CALLBACK (on_batch_list) },
    { "handle-batch-get", G_CALLBACK (on_batch_get) },
    { "handle-batch-units", G_CALLBACK (on_batch_units) },
    { "handle-batch-units-page", G_CALLBACK (on_batch_units_page) },
    { "handle-batch-close", G_CALLBACK (on_batch_close) },
    { "handle-batch-allow-more-voids", G_CALLBACK (on_batch_allow_more_voids) },
    { "handle-shift-stats", G_CALLBACK (on_shift_stats) },
    { "handle-line-start", G_CALLBACK (on_line_start) },
    { "handle-line-stop", G_CALLBACK (on_line_stop) },
    { "handle-line-port-start", G_CALLBACK (on_line_port_start) },
    { "handle-line-port-stop", G_CALLBACK (on_line_port_stop) },
    { "handle-line-port-retry", G_CALLBACK (on_line_port_retry) },
    { "handle-manifest-export", G_CALLBACK (on_manifest_export) },
    { "handle-matter-codes-export", G_CALLBACK (on_matter_codes_export) },
    { "handle-matter-labels-export", G_CALLBACK (on_matter_labels_export) },
    { "handle-manifest-verify", G_CALLBACK (on_manifest_verify) },
    { "handle-unit-verify", G_CALLBACK (on_unit_verify) },
    { "handle-unit-lookup", G_CALLBACK (on_unit_lookup) },
    { "handle-unit-resolve", G_CALLBACK (on_unit_resolve) },
    { "handle-unit-revoke", G_CALLBACK (on_unit_revoke) },
    { "handle-crl-issue", G_CALLBACK (on_crl_issue) },
    { "handle-audit-verify", G_CALLBACK (on_audit_verify) },
    { "handle-audit-export", G_CALLBACK (on_audit_export) },
    { "handle-db-check", G_CALLBACK (on_db_check) },
    { "handle-db-backup", G_CALLBACK (on_db_backup) },
    { "handle-health", G_CALLBACK (on_health) },
    { "handle-socket-names", G_CALLBACK (on_socket_names) },
    { "handle-bench", G_CALLBACK (on_bench) },
    { "handle-admin-recover", G_CALLBACK (on_admin_recover) },
    { "handle-ca-verification-cert", G_CALLBACK (on_ca_verification_cert) },
    { "handle-ca-init", G_CALLBACK (on_ca_init) },
    { "handle-ca-import", G_CALLBACK (on_ca_import) },
  };
  for (guint i = 0; i < G_N_ELEMENTS (handlers); i++)
    g_signal_connect (service->skeleton, handlers[i].signal, handlers[i].handler, service);
  service->idle_source = g_timeout_add_seconds (ST_SERVICE_IDLE_CHECK_S, st_service_check_idle,
                                                service);
  return service;
}

gboolean
st_service_listen (StService *service, const char *address, GError **error)
{
  g_autofree gchar *guid = g_dbus_generate_guid ();
  service->observer = g_dbus_auth_observer_new ();
  g_signal_connect (service->observer, "allow-mechanism", G_CALLBACK (st_on_allow_mechanism), NULL);
  g_autoptr(GError) local = NULL;
  service->server = g_dbus_server_new_sync (address, G_DBUS_SERVER_FLAGS_NONE, guid,
                                            service->observer, NULL, &local);
  if (service->server == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, _("cannot listen on %s: %s"), address,
                   local->message);
      return FALSE;
    }
  g_signal_connect (service->server, "new-connection", G_CALLBACK (st_on_new_connection), service);
  g_dbus_server_start (service->server);
  return TRUE;
}

gboolean
st_service_own_name (StService *service, GDBusConnection *bus, GCallback lost, gpointer lost_data,
                     GError **error)
{
  g_autoptr(GError) local = NULL;
  if (!g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (service->skeleton), bus,
                                         ST_SERVICE_OBJECT_PATH, &local))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL, _("cannot export the service: %s"),
                   local->message);
      return FALSE;
    }
  service->own_id = g_bus_own_name_on_connection (bus, ST_SERVICE_BUS_NAME,
                                                  G_BUS_NAME_OWNER_FLAGS_DO_NOT_QUEUE, NULL,
                                                  (GBusNameLostCallback) lost, lost_data, NULL);
  return TRUE;
}

void
st_service_free (StService *service)
{
  if (service == NULL)
    return;
  st_engine_set_state_func (service->engine, NULL, NULL);
  if (service->own_id != 0)
    g_bus_unown_name (service->own_id);
  if (service->server != NULL)
    {
      g_dbus_server_stop (service->server);
      g_clear_object (&service->server);
    }
  g_clear_object (&service->observer);
  /* a DbCheck or AuditVerify still running uses the engine: it ends first */
  g_mutex_lock (&service->lock);
  if (service->check_what != NULL)
    g_message ("waiting for %s (asked by %s) to end", service->check_what, service->check_by);
  while (service->check_what != NULL)
    g_cond_wait (&service->check_cond, &service->lock);
  g_mutex_unlock (&service->lock);
  if (service->idle_source != 0)
    g_source_remove (service->idle_source);
  g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (service->skeleton));
  g_clear_object (&service->skeleton);
  g_hash_table_unref (service->sessions);
  g_hash_table_unref (service->line_owners);
  g_mutex_clear (&service->lock);
  g_cond_clear (&service->check_cond);
  g_main_context_unref (service->context);
  g_free (service);
}
