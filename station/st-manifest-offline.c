/* A manifest verified off the station (st-manifest-offline.h). */
#include "st-manifest-offline.h"

#include <gio/gunixfdlist.h>
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

gboolean
st_manifest_verify_offline (const char *dir, const char *root_path, const char *signer_pin,
                            GString *report, gboolean *ok, gchar **failure, GError **error)
{
  *ok = FALSE;
  *failure = NULL;
  gsize len = 0;
  g_autofree gchar *pem = st_client_read_text (root_path, ST_MANIFEST_OFFLINE_MAX_ROOT, &len, error);
  if (pem == NULL)
    {
      g_prefix_error (error, _("cannot read the trusted root (give the root CA certificate as a PEM file): "));
      return FALSE;
    }
  g_autoptr(X509) root = st_verify_root_from_pem (pem, len, root_path, error);
  if (root == NULL)
    return FALSE;
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                   _("%s is not a folder: give the manifest folder that 'manifest export' wrote"), dir);
      return FALSE;
    }
  /* the service's rule for a folder it is given: plain files only */
  g_autoptr(GUnixFDList) fds = NULL;
  g_autoptr(GVariant) files = st_client_manifest_files (dir, &fds, error);
  if (files == NULL)
    return FALSE;
  g_variant_ref_sink (files);
  g_autoptr(GError) verify_error = NULL;
  *ok = st_manifest_verify (dir, root, signer_pin, NULL, report, &verify_error);
  if (verify_error != NULL)
    {
      if (!g_error_matches (verify_error, ST_ERROR, ST_ERROR_VERIFY_FAILED))
        {
          g_propagate_error (error, g_steal_pointer (&verify_error));
          return FALSE;
        }
      *failure = g_strdup (verify_error->message);
    }
  return TRUE;
}

static void
st_offline_verify_run (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  StOfflineVerify *v = data;
  GError *error = NULL;
  g_autoptr(GString) report = g_string_new (NULL);
  gboolean ok = FALSE;
  g_autofree gchar *failure = NULL;
  if (!st_manifest_verify_offline (v->dir, v->root_path, v->signer_pin, report, &ok, &failure, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  StReport *r = g_new0 (StReport, 1);
  r->ok = ok;
  r->text = g_string_free (g_steal_pointer (&report), FALSE);
  if (!ok)
    r->message = failure != NULL ? g_steal_pointer (&failure) : g_strdup (_("the check failed"));
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
