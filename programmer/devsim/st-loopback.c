#include "st-loopback.h"

#include <string.h>

#include "st-error.h"

typedef struct {
  StTransport parent;
  StSimSocket *socket;        /* borrowed; NULL once closed */
  GByteArray *pending;        /* answer bytes not read yet */
  GByteArray *scratch;        /* st_sim_socket_receive() output */
  gsize read_pos;
} StLoopback;

/* Feeds @data to the device and queues its answer within the bound. */
static void
st_loopback_queue (StLoopback *self, const guint8 *data, gsize len)
{
  static const guint8 nothing = 0;
  g_byte_array_set_size (self->scratch, 0);
  st_sim_socket_receive (self->socket, data != NULL ? data : &nothing, len, self->scratch);
  if (self->scratch->len == 0)
    return;
  /* Compact what was read, then queue the answer within the bound. */
  if (self->read_pos > 0)
    {
      g_byte_array_remove_range (self->pending, 0, (guint) self->read_pos);
      self->read_pos = 0;
    }
  gsize room = ST_LOOPBACK_MAX_PENDING - MIN (self->pending->len, ST_LOOPBACK_MAX_PENDING);
  gsize n = MIN (room, self->scratch->len);
  if (n < self->scratch->len)
    g_debug ("%s: receive buffer full, %u bytes from the device lost", self->parent.name,
             (guint) (self->scratch->len - n));
  g_byte_array_append (self->pending, self->scratch->data, (guint) n);
  g_byte_array_set_size (self->scratch, 0);
}

static gboolean
st_loopback_write_all (StTransport *transport, const guint8 *data, gsize len,
                       gint64 deadline_us, GCancellable *cancellable, GError **error)
{
  StLoopback *self = (StLoopback *) transport;
  if (self->socket == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, "%s: the port is closed", transport->name);
      return FALSE;
    }
  st_loopback_queue (self, data, len);
  return TRUE;
}

static gboolean
st_loopback_read (StTransport *transport, guint8 *buf, gsize max, gsize *n_read,
                  gint64 deadline_us, GCancellable *cancellable, GError **error)
{
  StLoopback *self = (StLoopback *) transport;
  if (self->socket == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_READ, "%s: the port is closed", transport->name);
      return FALSE;
    }
  gsize avail = self->pending->len - self->read_pos;
  if (avail == 0)
    {
      /* Lets time pass for the device: one that streams keeps talking. */
      st_loopback_queue (self, NULL, 0);
      avail = self->pending->len - self->read_pos;
    }
  if (avail == 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_TIMED_OUT,
                   "%s: no data from the device in time", transport->name);
      return FALSE;
    }
  gsize n = MIN (avail, max);
  memcpy (buf, self->pending->data + self->read_pos, n);
  self->read_pos += n;
  if (self->read_pos == self->pending->len)
    {
      g_byte_array_set_size (self->pending, 0);
      self->read_pos = 0;
    }
  *n_read = n;
  return TRUE;
}

static void
st_loopback_discard_input (StTransport *transport)
{
  StLoopback *self = (StLoopback *) transport;
  g_byte_array_set_size (self->pending, 0);
  self->read_pos = 0;
}

static void
st_loopback_close (StTransport *transport)
{
  StLoopback *self = (StLoopback *) transport;
  st_loopback_discard_input (transport);
  self->socket = NULL;
}

static void
st_loopback_free (StTransport *transport)
{
  StLoopback *self = (StLoopback *) transport;
  g_byte_array_unref (self->pending);
  g_byte_array_unref (self->scratch);
  g_free (self);
}

static const StTransportClass st_loopback_class = {
  .name = "loopback",
  .write_all = st_loopback_write_all,
  .read = st_loopback_read,
  .discard_input = st_loopback_discard_input,
  .close = st_loopback_close,
  .free = st_loopback_free,
};

StTransport *
st_loopback_new (StSimSocket *socket, const char *name)
{
  StLoopback *self = g_new0 (StLoopback, 1);
  st_transport_init (&self->parent, &st_loopback_class, name);
  self->socket = socket;
  self->pending = g_byte_array_new ();
  self->scratch = g_byte_array_new ();
  return &self->parent;
}
