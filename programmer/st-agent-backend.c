/* The agent backend (docs/agent-protocol.md): one implementation for a
 * device on a serial port ("agent:") and for the in-process simulated device
 * ("sim:", programmer/devsim/st-sim-backend.c); only the transport differs
 * (StAgentTransportOps). */
#include <glib/gi18n.h>
#include <string.h>

#include "st-agent-link.h"
#include "st-agent.h"
#include "st-backend-private.h"
#include "st-error.h"
#include "st-frame.h"
#include "st-text.h"
#include "st-util.h"

/* identify() polls: an empty socket is normal, so it waits briefly. */
#define ST_AGENT_IDENTIFY_TIMEOUT_MS 250

typedef struct {
  StBackend parent;
  StBackendClass klass;       /* the shared vtable, with the descriptor's scheme */
  const StAgentTransportOps *ops;
  gpointer ops_data;          /* owned: ops->free */
  StAgentLink *link;          /* NULL while closed */
  guint16 max_payload;        /* from the last HELLO; 256 before any */
  guint32 extensions;         /* from the last HELLO; 0 before any */
  gchar fw_version[33];       /* from the last HELLO, for messages */
} StAgentBackend;

static void
st_put_u16 (guint8 *p, guint v)
{
  p[0] = (guint8) (v & 0xff);
  p[1] = (guint8) ((v >> 8) & 0xff);
}

static guint
st_get_u16 (const guint8 *p)
{
  return (guint) p[0] | ((guint) p[1] << 8);
}

static gboolean
st_agent_backend_check_open (StAgentBackend *self, GError **error)
{
  if (self->link == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL,
                   "%s: the port is not open", self->parent.port);
      return FALSE;
    }
  return TRUE;
}

static gboolean
st_agent_backend_check_empty (GBytes *result, const char *op, GError **error)
{
  if (g_bytes_get_size (result) != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "device answered %s with %" G_GSIZE_FORMAT " unexpected result bytes",
                   op, g_bytes_get_size (result));
      return FALSE;
    }
  return TRUE;
}

static gboolean
st_agent_backend_open (StBackend *backend, GError **error)
{
  StAgentBackend *self = (StAgentBackend *) backend;

  if (self->link != NULL)
    return TRUE;
  StTransport *transport = self->ops->open (self->ops_data, backend, error);
  if (transport == NULL)
    return FALSE;
  self->link = st_agent_link_new (transport, backend);
  self->max_payload = 256;
  self->extensions = 0;
  self->fw_version[0] = '\0';
  return TRUE;
}

static gboolean
st_agent_backend_identify (StBackend *backend, StDeviceInfo *info, GError **error)
{
  StAgentBackend *self = (StAgentBackend *) backend;
  if (!st_agent_backend_check_open (self, error))
    return FALSE;
  guint timeout = MIN (backend->params.timeout_ms, ST_AGENT_IDENTIFY_TIMEOUT_MS);
  g_autoptr(GBytes) result = st_agent_link_transact (self->link, ST_AGENT_OP_HELLO, NULL, 0,
                                                     timeout, 0, error);
  if (result == NULL)
    return FALSE;
  gsize len = 0;
  const guint8 *data = g_bytes_get_data (result, &len);
  if (!st_agent_parse_hello (data, len, info, error))
    {
      g_prefix_error (error, "device on %s: ", backend->port);
      return FALSE;
    }
  self->max_payload = info->max_payload;
  self->extensions = info->extensions;
  g_strlcpy (self->fw_version, info->fw_version, sizeof self->fw_version);
  return TRUE;
}

static GBytes *
st_agent_backend_keygen (StBackend *backend, StAlg alg, GError **error)
{
  StAgentBackend *self = (StAgentBackend *) backend;
  if (!st_agent_backend_check_open (self, error))
    return NULL;
  if (alg != ST_ALG_EC_P256 && alg != ST_ALG_EC_P384 && alg != ST_ALG_ED25519)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                   "KEYGEN: algorithm %d is not one the agent protocol knows", (int) alg);
      return NULL;
    }
  guint8 req = (guint8) alg;
  g_autoptr(GBytes) csr = st_agent_link_transact (self->link, ST_AGENT_OP_KEYGEN, &req, 1,
                                                  backend->params.keygen_timeout_ms,
                                                  backend->params.retries, error);
  if (csr == NULL)
    {
      g_prefix_error (error, "making a %s key on the device: ", st_alg_to_string (alg));
      return NULL;
    }
  if (g_bytes_get_size (csr) == 0)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "device answered KEYGEN with an empty certification request");
      return NULL;
    }
  return g_steal_pointer (&csr);
}

/* Sends @data in chunks of PUT_KEY or WRITE: @first (alg or slot), offset
 * u16, total u16, chunk. */
static gboolean
st_agent_backend_send_chunked (StAgentBackend *self, guint8 op, guint8 first,
                               const guint8 *data, gsize total, guint timeout_ms,
                               GError **error)
{
  StBackend *backend = &self->parent;
  guint8 req[ST_FRAME_MAX_PAYLOAD];
  gsize max_payload = CLAMP (self->max_payload, 256, ST_FRAME_MAX_PAYLOAD);
  gsize chunk_max = max_payload - ST_AGENT_CHUNK_HEADER;
  gsize offset = 0;
  gboolean ok = TRUE;

  do
    {
      gsize chunk = MIN (chunk_max, total - offset);
      req[0] = first;
      st_put_u16 (req + 1, (guint) offset);
      st_put_u16 (req + 3, (guint) total);
      if (chunk > 0)
        memcpy (req + ST_AGENT_CHUNK_HEADER, data + offset, chunk);
      g_autoptr(GBytes) result = st_agent_link_transact (self->link, op, req,
                                                         ST_AGENT_CHUNK_HEADER + chunk,
                                                         timeout_ms, backend->params.retries,
                                                         error);
      if (op == ST_AGENT_OP_PUT_KEY)
        st_memwipe (req, sizeof req);
      if (result == NULL || !st_agent_backend_check_empty (result, st_agent_op_to_string (op), error))
        {
          g_prefix_error (error, "at offset %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT ": ",
                          offset, total);
          ok = FALSE;
          break;
        }
      offset += chunk;
    }
  while (offset < total);
  if (op == ST_AGENT_OP_PUT_KEY)
    st_memwipe (req, sizeof req);
  return ok;
}

static gboolean
st_agent_backend_put_key (StBackend *backend, StAlg alg, GBytes *pkcs8, GError **error)
{
  StAgentBackend *self = (StAgentBackend *) backend;
  gsize len = 0;
  const guint8 *der = g_bytes_get_data (pkcs8, &len);
  if (!st_agent_backend_check_open (self, error))
    return FALSE;
  if (alg != ST_ALG_EC_P256 && alg != ST_ALG_EC_P384 && alg != ST_ALG_ED25519)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                   "PUT_KEY: algorithm %d is not one the agent protocol knows", (int) alg);
      return FALSE;
    }
  if (len == 0 || len > ST_AGENT_OBJECT_MAX)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "PUT_KEY: a key of %" G_GSIZE_FORMAT " bytes (1 to %d allowed)", len,
                   ST_AGENT_OBJECT_MAX);
      return FALSE;
    }
  if (!st_agent_backend_send_chunked (self, ST_AGENT_OP_PUT_KEY, (guint8) alg, der, len,
                                      backend->params.timeout_ms, error))
    {
      g_prefix_error (error, "sending the %s key to the device: ", st_alg_to_string (alg));
      return FALSE;
    }
  return TRUE;
}

/* Slots 1 and 2 always; 3 and 4 (extension matter-1) only on a device
 * whose last HELLO announced matter-1: nothing is sent to another. */
static gboolean
st_agent_backend_check_slot (StAgentBackend *self, StSlot slot, GError **error)
{
  if (slot == ST_SLOT_CERT || slot == ST_SLOT_CHAIN)
    return TRUE;
  if (slot != ST_SLOT_MATTER_CD && slot != ST_SLOT_MATTER_DATA)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                   "slot %d is not one the agent protocol knows", (int) slot);
      return FALSE;
    }
  if (!(self->extensions & ST_DEVICE_EXT_MATTER_1))
    {
      g_autofree gchar *fw = st_text_escape (self->fw_version[0] != '\0' ? self->fw_version : "?", -1, ST_TEXT_ONE_LINE);
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                   _("The device on %s (firmware \"%s\") does not implement the agent protocol "
                     "extension matter-1, so it cannot take Matter slot %d. Update its firmware to "
                     "one that announces matter-1 in HELLO, or use a product profile without "
                     "[matter]."),
                   self->parent.port, fw, (int) slot);
      return FALSE;
    }
  return TRUE;
}

static gboolean
st_agent_backend_write (StBackend *backend, StSlot slot, GBytes *data, GError **error)
{
  StAgentBackend *self = (StAgentBackend *) backend;
  gsize len = 0;
  const guint8 *bytes = g_bytes_get_data (data, &len);
  if (!st_agent_backend_check_open (self, error) || !st_agent_backend_check_slot (self, slot, error))
    return FALSE;
  if (len > ST_AGENT_OBJECT_MAX)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "writing slot %d: %" G_GSIZE_FORMAT " bytes is more than the %d allowed",
                   (int) slot, len, ST_AGENT_OBJECT_MAX);
      return FALSE;
    }
  if ((slot == ST_SLOT_MATTER_CD && (len == 0 || len > ST_SLOT_MATTER_CD_MAX))
      || (slot == ST_SLOT_MATTER_DATA && (len == 0 || len > ST_SLOT_MATTER_DATA_MAX)))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("Matter slot %d takes 1 to %d bytes, not %zu: check the "
                     "product's Certification Declaration file and commissioning data."),
                   (int) slot, slot == ST_SLOT_MATTER_CD ? ST_SLOT_MATTER_CD_MAX
                                                         : ST_SLOT_MATTER_DATA_MAX, len);
      return FALSE;
    }
  if (!st_agent_backend_send_chunked (self, ST_AGENT_OP_WRITE, (guint8) slot, bytes, len,
                                      backend->params.timeout_ms, error))
    {
      g_prefix_error (error, "writing slot %d: ", (int) slot);
      return FALSE;
    }
  return TRUE;
}

static GBytes *
st_agent_backend_read (StBackend *backend, StSlot slot, GError **error)
{
  StAgentBackend *self = (StAgentBackend *) backend;
  /* The response carries status and total before the bytes. */
  const gsize max = ST_FRAME_MAX_PAYLOAD - 3;
  gsize offset = 0;
  gsize total = 0;
  g_autoptr(GByteArray) out = NULL;

  if (!st_agent_backend_check_open (self, error) || !st_agent_backend_check_slot (self, slot, error))
    return NULL;
  do
    {
      guint8 req[5];
      req[0] = (guint8) slot;
      st_put_u16 (req + 1, (guint) offset);
      st_put_u16 (req + 3, (guint) max);
      g_autoptr(GBytes) result = st_agent_link_transact (self->link, ST_AGENT_OP_READ, req,
                                                         sizeof req, backend->params.timeout_ms,
                                                         backend->params.retries, error);
      if (result == NULL)
        {
          g_prefix_error (error, "reading slot %d at offset %" G_GSIZE_FORMAT ": ",
                          (int) slot, offset);
          return NULL;
        }
      gsize len = 0;
      const guint8 *res = g_bytes_get_data (result, &len);
      if (len < 2)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "reading slot %d: the device's READ result of %" G_GSIZE_FORMAT
                       " bytes has no total", (int) slot, len);
          return NULL;
        }
      gsize this_total = st_get_u16 (res);
      gsize n = len - 2;
      if (out == NULL)
        {
          if (this_total > ST_AGENT_OBJECT_MAX)
            {
              g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "reading slot %d: the device reports %" G_GSIZE_FORMAT
                           " bytes, more than the %d allowed", (int) slot, this_total,
                           ST_AGENT_OBJECT_MAX);
              return NULL;
            }
          total = this_total;
          out = g_byte_array_sized_new ((guint) total);
        }
      else if (this_total != total)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "reading slot %d: the device's total changed from %" G_GSIZE_FORMAT
                       " to %" G_GSIZE_FORMAT " bytes between chunks", (int) slot, total,
                       this_total);
          return NULL;
        }
      gsize expected = MIN (max, total - offset);
      if (n != expected)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "reading slot %d: the device sent %" G_GSIZE_FORMAT " bytes at offset %"
                       G_GSIZE_FORMAT " where %" G_GSIZE_FORMAT " were due (total %"
                       G_GSIZE_FORMAT ")", (int) slot, n, offset, expected, total);
          return NULL;
        }
      g_byte_array_append (out, res + 2, (guint) n);
      offset += n;
    }
  while (offset < total);
  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}

static GBytes *
st_agent_backend_sign (StBackend *backend, const guint8 challenge[32], GError **error)
{
  StAgentBackend *self = (StAgentBackend *) backend;
  if (!st_agent_backend_check_open (self, error))
    return NULL;
  g_autoptr(GBytes) sig = st_agent_link_transact (self->link, ST_AGENT_OP_SIGN, challenge,
                                                  ST_AGENT_CHALLENGE_LEN,
                                                  backend->params.timeout_ms,
                                                  backend->params.retries, error);
  if (sig == NULL)
    {
      g_prefix_error (error, "signing the challenge on the device: ");
      return NULL;
    }
  gsize len = g_bytes_get_size (sig);
  if (len == 0 || len > ST_AGENT_SIGNATURE_MAX)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "device answered SIGN with a signature of %" G_GSIZE_FORMAT
                   " bytes (1 to %d allowed)", len, ST_AGENT_SIGNATURE_MAX);
      return NULL;
    }
  return g_steal_pointer (&sig);
}

static gboolean
st_agent_backend_commit (StBackend *backend, gboolean lock, GError **error)
{
  StAgentBackend *self = (StAgentBackend *) backend;
  if (!st_agent_backend_check_open (self, error))
    return FALSE;
  guint8 flags = lock ? 0x01 : 0x00;
  g_autoptr(GBytes) result = st_agent_link_transact (self->link, ST_AGENT_OP_COMMIT, &flags, 1,
                                                     backend->params.commit_timeout_ms,
                                                     backend->params.retries, error);
  if (result == NULL || !st_agent_backend_check_empty (result, "COMMIT", error))
    {
      g_prefix_error (error, "committing the device%s: ", lock ? " with lock" : "");
      return FALSE;
    }
  return TRUE;
}

static gboolean
st_agent_backend_abort (StBackend *backend, GError **error)
{
  StAgentBackend *self = (StAgentBackend *) backend;
  if (!st_agent_backend_check_open (self, error))
    return FALSE;
  g_autoptr(GBytes) result = st_agent_link_transact (self->link, ST_AGENT_OP_ABORT, NULL, 0,
                                                     backend->params.timeout_ms,
                                                     backend->params.retries, error);
  if (result == NULL || !st_agent_backend_check_empty (result, "ABORT", error))
    {
      g_prefix_error (error, "aborting on the device: ");
      return FALSE;
    }
  return TRUE;
}

static void
st_agent_backend_close (StBackend *backend)
{
  StAgentBackend *self = (StAgentBackend *) backend;
  g_clear_pointer (&self->link, st_agent_link_free);
}

static void
st_agent_backend_free (StBackend *backend)
{
  StAgentBackend *self = (StAgentBackend *) backend;
  st_agent_backend_close (backend);
  if (self->ops->free != NULL)
    g_clear_pointer (&self->ops_data, self->ops->free);
  g_free (self);
}

static const StBackendClass st_agent_backend_class = {
  .name = NULL,               /* the descriptor's scheme */
  .open = st_agent_backend_open,
  .identify = st_agent_backend_identify,
  .keygen = st_agent_backend_keygen,
  .put_key = st_agent_backend_put_key,
  .write = st_agent_backend_write,
  .read = st_agent_backend_read,
  .sign = st_agent_backend_sign,
  .commit = st_agent_backend_commit,
  .abort = st_agent_backend_abort,
  .close = st_agent_backend_close,
  .free = st_agent_backend_free,
};

StBackend *
st_agent_backend_new (const char *port, const StBackendDescriptor *descriptor,
                      const StLinkParams *params, GCancellable *cancellable,
                      const StAgentTransportOps *ops, gpointer data)
{
  g_return_val_if_fail (descriptor != NULL && ops != NULL && ops->open != NULL, NULL);
  StAgentBackend *self = g_new0 (StAgentBackend, 1);
  self->klass = st_agent_backend_class;
  self->klass.name = descriptor->scheme;
  self->ops = ops;
  self->ops_data = data;
  self->max_payload = 256;
  st_backend_init (&self->parent, &self->klass, descriptor, port, params, cancellable);
  return &self->parent;
}

/* "agent:PATH" and a plain path: the serial port. */
static StTransport *
st_agent_serial_open (gpointer data, StBackend *backend, GError **error)
{
  return st_serial_open (data, backend->params.baud, ST_PARITY_NONE, error);
}

static const StAgentTransportOps st_agent_serial_ops = {
  .open = st_agent_serial_open,
  .free = g_free,
};

static StBackend *
st_agent_backend_new_serial (const char *port, const char *path, const StLinkParams *params,
                             GCancellable *cancellable, GError **error)
{
  guint speed = 0;
  g_autoptr(StBackend) backend = st_agent_backend_new (port, &st_backend_agent, params,
                                                       cancellable, &st_agent_serial_ops,
                                                       g_strdup (path));
  if (!st_serial_baud_to_speed (backend->params.baud, &speed, error))
    {
      g_prefix_error (error, "%s: ", port);
      return NULL;
    }
  return g_steal_pointer (&backend);
}

const StBackendDescriptor st_backend_agent = {
  .scheme = "agent",
  .usage = "agent:PATH",
  .description = "a device running the provisioning agent, on serial port PATH",
  .example = "agent:/dev/ttyUSB0",
  .needs_path = TRUE,
  .capabilities = ST_AGENT_BACKEND_CAPS,
  .new = st_agent_backend_new_serial,
};
