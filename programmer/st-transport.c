#include "st-transport.h"

#include "st-error.h"

void
st_transport_init (StTransport *self, const StTransportClass *klass, const char *name)
{
  self->klass = klass;
  self->name = g_strdup (name != NULL ? name : klass->name);
}

static gboolean
st_transport_check_cancelled (StTransport *self, GCancellable *cancellable, GError **error)
{
  if (cancellable != NULL && g_cancellable_is_cancelled (cancellable))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_CANCELLED,
                   "%s: the operation was cancelled", self->name);
      return FALSE;
    }
  return TRUE;
}

gboolean
st_transport_write_all (StTransport *self, const guint8 *data, gsize len,
                        gint64 deadline_us, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (self != NULL, FALSE);
  if (!st_transport_check_cancelled (self, cancellable, error))
    return FALSE;
  if (len == 0)
    return TRUE;
  return self->klass->write_all (self, data, len, deadline_us, cancellable, error);
}

gboolean
st_transport_read (StTransport *self, guint8 *buf, gsize max, gsize *n_read,
                   gint64 deadline_us, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (self != NULL, FALSE);
  g_return_val_if_fail (n_read != NULL, FALSE);
  *n_read = 0;
  if (!st_transport_check_cancelled (self, cancellable, error))
    return FALSE;
  if (max == 0)
    return TRUE;
  return self->klass->read (self, buf, max, n_read, deadline_us, cancellable, error);
}

void
st_transport_discard_input (StTransport *self)
{
  if (self != NULL && self->klass->discard_input != NULL)
    self->klass->discard_input (self);
}

void
st_transport_close (StTransport *self)
{
  if (self != NULL && self->klass->close != NULL)
    self->klass->close (self);
}

void
st_transport_free (StTransport *self)
{
  if (self == NULL)
    return;
  st_transport_close (self);
  g_free (self->name);
  self->klass->free (self);
}

const char *
st_transport_get_name (StTransport *self)
{
  return self->name;
}
