/* The backend vtable dispatch (st-backend.h) and what every backend's
 * constructor shares (st-backend-private.h). */
#include "st-backend.h"

#include <string.h>

#include "st-backend-private.h"
#include "st-error.h"
#include "st-util.h"

void
st_link_params_init_defaults (StLinkParams *params)
{
  g_return_if_fail (params != NULL);
  memset (params, 0, sizeof *params);
  params->baud = 115200;
  params->timeout_ms = 1000;
  params->keygen_timeout_ms = 30000;
  params->commit_timeout_ms = 10000;
  params->retries = 3;
}

void
st_backend_init (StBackend *self, const StBackendClass *klass,
                 const StBackendDescriptor *descriptor, const char *port,
                 const StLinkParams *params, GCancellable *cancellable)
{
  StLinkParams defaults;
  st_link_params_init_defaults (&defaults);
  self->klass = klass;
  self->descriptor = descriptor;
  self->port = g_strdup (port);
  if (params != NULL)
    {
      self->params = *params;
      /* A zero time-out or rate is a profile that did not say. */
      if (self->params.baud == 0)
        self->params.baud = defaults.baud;
      if (self->params.timeout_ms == 0)
        self->params.timeout_ms = defaults.timeout_ms;
      if (self->params.keygen_timeout_ms == 0)
        self->params.keygen_timeout_ms = defaults.keygen_timeout_ms;
      if (self->params.commit_timeout_ms == 0)
        self->params.commit_timeout_ms = defaults.commit_timeout_ms;
    }
  else
    {
      self->params = defaults;
    }
  self->cancellable = cancellable != NULL ? g_object_ref (cancellable) : NULL;
  self->last_status = ST_AGENT_STATUS_NONE;
}

static gboolean
st_backend_check (StBackend *self, gboolean has_fn, const char *what, GError **error)
{
  if (self == NULL || self->klass == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL, "no backend to %s", what);
      return FALSE;
    }
  if (!has_fn)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                   "the %s backend cannot %s", self->klass->name, what);
      return FALSE;
    }
  if (self->cancellable != NULL && g_cancellable_is_cancelled (self->cancellable))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_CANCELLED, "%s: cancelled before %s",
                   self->port, what);
      return FALSE;
    }
  return TRUE;
}

gboolean
st_backend_open (StBackend *self, GError **error)
{
  if (!st_backend_check (self, self != NULL && self->klass->open != NULL, "open the port", error))
    return FALSE;
  return self->klass->open (self, error);
}

gboolean
st_backend_identify (StBackend *self, StDeviceInfo *info, GError **error)
{
  g_return_val_if_fail (info != NULL, FALSE);
  if (!st_backend_check (self, self != NULL && self->klass->identify != NULL,
                         "identify the device", error))
    return FALSE;
  return self->klass->identify (self, info, error);
}

GBytes *
st_backend_keygen (StBackend *self, StAlg alg, GError **error)
{
  if (!st_backend_check (self, self != NULL && self->klass->keygen != NULL,
                         "make a key on the device", error))
    return NULL;
  return self->klass->keygen (self, alg, error);
}

gboolean
st_backend_put_key (StBackend *self, StAlg alg, GBytes *pkcs8, GError **error)
{
  g_return_val_if_fail (pkcs8 != NULL, FALSE);
  if (!st_backend_check (self, self != NULL && self->klass->put_key != NULL,
                         "send a key to the device", error))
    return FALSE;
  return self->klass->put_key (self, alg, pkcs8, error);
}

gboolean
st_backend_write (StBackend *self, StSlot slot, GBytes *data, GError **error)
{
  g_return_val_if_fail (data != NULL, FALSE);
  if (!st_backend_check (self, self != NULL && self->klass->write != NULL,
                         "write a slot", error))
    return FALSE;
  return self->klass->write (self, slot, data, error);
}

GBytes *
st_backend_read (StBackend *self, StSlot slot, GError **error)
{
  if (!st_backend_check (self, self != NULL && self->klass->read != NULL,
                         "read a slot", error))
    return NULL;
  return self->klass->read (self, slot, error);
}

GBytes *
st_backend_sign (StBackend *self, const guint8 challenge[32], GError **error)
{
  g_return_val_if_fail (challenge != NULL, NULL);
  if (!st_backend_check (self, self != NULL && self->klass->sign != NULL,
                         "sign a challenge", error))
    return NULL;
  return self->klass->sign (self, challenge, error);
}

gboolean
st_backend_commit (StBackend *self, gboolean lock, GError **error)
{
  if (!st_backend_check (self, self != NULL && self->klass->commit != NULL,
                         "commit the device", error))
    return FALSE;
  return self->klass->commit (self, lock, error);
}

gboolean
st_backend_abort (StBackend *self, GError **error)
{
  if (!st_backend_check (self, self != NULL && self->klass->abort != NULL,
                         "abort on the device", error))
    return FALSE;
  return self->klass->abort (self, error);
}

void
st_backend_close (StBackend *self)
{
  if (self != NULL && self->klass != NULL && self->klass->close != NULL)
    self->klass->close (self);
}

void
st_backend_free (StBackend *self)
{
  if (self == NULL)
    return;
  st_backend_close (self);
  g_clear_pointer (&self->port, g_free);
  g_clear_object (&self->cancellable);
  self->klass->free (self);
}

gboolean
st_backend_flash_image (StBackend *self, guint32 address, GBytes *image,
                        const guint8 sha256[32], GError **error)
{
  g_return_val_if_fail (image != NULL && sha256 != NULL, FALSE);
  if (!st_backend_check (self, self != NULL && self->klass->flash_image != NULL,
                         "write a firmware image", error))
    return FALSE;
  return self->klass->flash_image (self, address, image, sha256, error);
}

gboolean
st_backend_set_product_serial (StBackend *self, const char *serial, GError **error)
{
  if (!st_backend_check (self, self != NULL && self->klass->set_product_serial != NULL,
                         "store a product serial", error))
    return FALSE;
  return self->klass->set_product_serial (self, serial, error);
}

StAgentStatus
st_backend_get_last_status (StBackend *self)
{
  g_return_val_if_fail (self != NULL, ST_AGENT_STATUS_NONE);
  return self->last_status;
}

gchar *
st_device_info_uid_hex (const StDeviceInfo *info)
{
  g_return_val_if_fail (info != NULL, NULL);
  return st_hex_encode (info->uid, MIN (info->uid_len, (gsize) ST_UID_MAX));
}

gboolean
st_backend_set_matter_data (StBackend *self, GBytes *cd, GBytes *commissioning, GError **error)
{
  if (!st_backend_check (self, self != NULL && self->klass->set_matter_data != NULL,
                         "take Matter data for a credential blob", error))
    return FALSE;
  return self->klass->set_matter_data (self, cd, commissioning, error);
}
