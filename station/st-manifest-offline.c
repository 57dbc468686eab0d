/* A manifest verified off the station (st-manifest-offline.h). */
#include "st-manifest-offline.h"

#include <glib/gi18n.h>

#include "st-error.h"
#include "st-manifest.h"
#include "st-ossl.h"
#include "st-verify.h"

typedef struct {
  gchar *dir, *root_path, *signer_pin;
} StOfflineVerify;

static void
st_offline_verify_free (StOfflineVerify *v)
{
  g_free (v->dir);
  g_free (v->root_path);
  g_free (v->signer_pin);
  g_free (v);
}

static void
st_offline_verify_run (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  StOfflineVerify *v = data;
  GError *error = NULL;
  gsize len = 0;
  g_autofree gchar *pem = st_client_read_text (v->root_path, ST_MANIFEST_OFFLINE_MAX_ROOT, &len, &error);
  if (pem == NULL)
    {
      g_prefix_error (&error, _("The trusted root cannot be read: "));
      g_task_return_error (task, error);
      return;
    }
  g_autoptr(X509) root = st_verify_root_from_pem (pem, len, v->root_path, &error);
  if (root == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  g_autoptr(GString) report = g_string_new (NULL);
  gboolean ok = st_manifest_verify (v->dir, root, v->signer_pin, NULL, report, &error);
  StReport *r = g_new0 (StReport, 1);
  r->ok = ok;
  r->text = g_string_free (g_steal_pointer (&report), FALSE);
  if (!ok)
    r->message = g_strdup (error != NULL ? error->message : _("the check failed"));
  g_clear_error (&error);
  g_task_return_pointer (task, r, (GDestroyNotify) st_report_free);
}

void
st_manifest_verify_offline_async (const char *dir, const char *root_path, const char *signer_pin,
                                  GCancellable *cancellable, GAsyncReadyCallback callback,
                                  gpointer user_data)
{
  StOfflineVerify *v = g_new0 (StOfflineVerify, 1);
  v->dir = g_strdup (dir);
  v->root_path = g_strdup (root_path);
  v->signer_pin = signer_pin != NULL && *signer_pin != '\0' ? g_strdup (signer_pin) : NULL;
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, st_manifest_verify_offline_async);
  g_task_set_task_data (task, v, (GDestroyNotify) st_offline_verify_free);
  g_task_run_in_thread (task, st_offline_verify_run);
  g_object_unref (task);
}

StReport *
st_manifest_verify_offline_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
