/* The agent backend (docs/agent-protocol.md): one implementation for a
 * device on a serial port ("agent:") and for the in-process simulated device
 * ("sim:"); only the transport differs. */
#include <string.h>

#include "st-agent-link.h"
#include "st-agent.h"
#include "st-backend-private.h"
#include "st-error.h"
#include "st-frame.h"
#include "st-loopback.h"
#include "st-simdev.h"
#include "st-util.h"

/* identify() polls: an empty socket is normal, so it waits briefly. */
#define ST_AGENT_IDENTIFY_TIMEOUT_MS 250

typedef struct {
  StBackend parent;
  gchar *path;                /* serial device; NULL for sim */
  /* sim: the socket lives as long as the backend, so that a close and a
   * re-open see the same device (as a real socket would). */
  gboolean is_sim;
  StSimSocketConfig sim_config;
  gchar *sim_model;
  gchar *sim_state_file;
  StSimSocket *sim_socket;
  StAgentLink *link;          /* NULL while closed */
  guint16 max_payload;        /* from the last HELLO; 256 before any */
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
  StTransport *transport = NULL;

  if (self->link != NULL)
    return TRUE;
  if (self->is_sim)
    {
      if (self->sim_socket == NULL)
        {
          self->sim_socket = st_sim_socket_new (&self->sim_config, error);
          if (self->sim_socket == NULL)
            {
              g_prefix_error (error, "%s: ", backend->port);
              return FALSE;
            }
        }
      transport = st_loopback_new (self->sim_socket, backend->port);
    }
  else
    {
      transport = st_serial_open (self->path, backend->params.baud, ST_PARITY_NONE, error);
      if (transport == NULL)
        return FALSE;
    }
  self->link = st_agent_link_new (transport, backend);
  self->max_payload = 256;
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

static gboolean
st_agent_backend_check_slot (StSlot slot, GError **error)
{
  if (slot != ST_SLOT_CERT && slot != ST_SLOT_CHAIN)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                   "slot %d is not one the agent protocol knows", (int) slot);
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
  if (!st_agent_backend_check_open (self, error) || !st_agent_backend_check_slot (slot, error))
    return FALSE;
  if (len > ST_AGENT_OBJECT_MAX)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "writing slot %d: %" G_GSIZE_FORMAT " bytes is more than the %d allowed",
                   (int) slot, len, ST_AGENT_OBJECT_MAX);
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

  if (!st_agent_backend_check_open (self, error) || !st_agent_backend_check_slot (slot, error))
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
  g_clear_pointer (&self->sim_socket, st_sim_socket_free);
  g_free (self->path);
  g_free (self->sim_model);
  g_free (self->sim_state_file);
  g_free (self);
}

static const StBackendClass st_agent_backend_class = {
  .name = "agent",
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

static const StBackendClass st_sim_backend_class = {
  .name = "sim",
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
st_agent_backend_new_serial (const char *port, const char *path, const StLinkParams *params,
                             GCancellable *cancellable, GError **error)
{
  guint speed = 0;
  StAgentBackend *self = g_new0 (StAgentBackend, 1);
  st_backend_init (&self->parent, &st_agent_backend_class, port, params, cancellable);
  g_autoptr(StBackend) backend = &self->parent;
  self->path = g_strdup (path);
  self->max_payload = 256;
  if (!st_serial_baud_to_speed (backend->params.baud, &speed, error))
    {
      g_prefix_error (error, "%s: ", port);
      return NULL;
    }
  return g_steal_pointer (&backend);
}

static gboolean
st_sim_parse_uint (const char *key, const char *value, guint64 max, guint64 *out,
                   GError **error)
{
  g_autoptr(GError) local = NULL;
  if (!g_ascii_string_to_unsigned (value, 10, 0, max, out, &local))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "sim option %s: %s", key,
                   local->message);
      return FALSE;
    }
  return TRUE;
}

static gboolean
st_sim_parse_option (StAgentBackend *self, const char *key, const char *value, GError **error)
{
  guint64 v = 0;
  StSimSocketConfig *config = &self->sim_config;

  if (g_strcmp0 (key, "units") == 0)
    {
      if (!st_sim_parse_uint (key, value, G_MAXUINT, &v, error))
        return FALSE;
      config->units = (guint) v;
    }
  else if (g_strcmp0 (key, "seed") == 0)
    {
      if (!st_sim_parse_uint (key, value, G_MAXUINT32, &v, error))
        return FALSE;
      config->seed = (guint32) v;
    }
  else if (g_strcmp0 (key, "algorithms") == 0)
    {
      if (!st_sim_parse_uint (key, value, 0x07, &v, error))
        return FALSE;
      config->algorithms = (guint8) v;
    }
  else if (g_strcmp0 (key, "fault_unit") == 0 || g_strcmp0 (key, "fault-unit") == 0)
    {
      if (!st_sim_parse_uint (key, value, G_MAXUINT, &v, error))
        return FALSE;
      config->fault_unit = (guint) v;
    }
  else if (g_strcmp0 (key, "swap_delay_ms") == 0 || g_strcmp0 (key, "swap-delay-ms") == 0)
    {
      if (!st_sim_parse_uint (key, value, 3600 * 1000, &v, error))
        return FALSE;
      config->swap_delay_ms = (guint) v;
    }
  else if (g_strcmp0 (key, "model") == 0)
    {
      if (*value == '\0' || strlen (value) > 64 || !g_utf8_validate (value, -1, NULL))
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "sim option model: '%s' is not 1 to 64 bytes of UTF-8", value);
          return FALSE;
        }
      g_free (self->sim_model);
      self->sim_model = g_strdup (value);
      config->model = self->sim_model;
    }
  else if (g_strcmp0 (key, "state_file") == 0 || g_strcmp0 (key, "state-file") == 0
           || g_strcmp0 (key, "state") == 0)
    {
      g_free (self->sim_state_file);
      self->sim_state_file = g_strdup (value);
      config->state_file = self->sim_state_file;
    }
  else if (g_strcmp0 (key, "faults") == 0 || g_strcmp0 (key, "fault") == 0)
    {
      g_auto(GStrv) names = g_strsplit (value, ",", -1);
      for (guint i = 0; names[i] != NULL; i++)
        {
          if (names[i][0] == '\0')
            continue;
          guint32 bit = st_sim_fault_from_string (names[i]);
          if (bit == 0)
            {
              g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "sim option faults: unknown fault '%s'", names[i]);
              return FALSE;
            }
          config->faults |= bit;
        }
    }
  else
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "unknown sim option '%s' (known: units, seed, model, algorithms, faults, "
                   "fault_unit, swap_delay_ms, state_file)", key);
      return FALSE;
    }
  return TRUE;
}

StBackend *
st_agent_backend_new_sim (const char *port, const char *spec, const StLinkParams *params,
                          GCancellable *cancellable, GError **error)
{
  StAgentBackend *self = g_new0 (StAgentBackend, 1);
  st_backend_init (&self->parent, &st_sim_backend_class, port, params, cancellable);
  g_autoptr(StBackend) backend = &self->parent;
  self->is_sim = TRUE;
  self->max_payload = 256;

  const char *query = strchr (spec, '?');
  g_autofree gchar *name = query != NULL ? g_strndup (spec, (gsize) (query - spec))
                                         : g_strdup (spec);
  /* Different names give different devices unless a seed is given. */
  self->sim_config.seed = g_str_hash (name);
  if (query != NULL && query[1] != '\0')
    {
      g_auto(GStrv) pairs = g_strsplit (query + 1, "&", -1);
      for (guint i = 0; pairs[i] != NULL; i++)
        {
          if (pairs[i][0] == '\0')
            continue;
          const char *eq = strchr (pairs[i], '=');
          if (eq == NULL)
            {
              g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "sim option '%s' has no value; use key=value", pairs[i]);
              g_prefix_error (error, "port '%s': ", port);
              return NULL;
            }
          g_autofree gchar *key = g_strndup (pairs[i], (gsize) (eq - pairs[i]));
          if (!st_sim_parse_option (self, key, eq + 1, error))
            {
              g_prefix_error (error, "port '%s': ", port);
              return NULL;
            }
        }
    }
  return g_steal_pointer (&backend);
}
