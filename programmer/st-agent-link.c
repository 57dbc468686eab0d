#include "st-agent-link.h"

#include <glib/gi18n.h>
#include <string.h>

#include "st-agent.h"
#include "st-frame.h"
#include "st-util.h"

/* After a damaged frame, how long to wait for a good one before resending. */
#define ST_AGENT_DAMAGE_GRACE_MS 100

struct _StAgentLink {
  StTransport *transport;
  StBackend *backend;
  guint16 next_seq;
  gboolean synced;            /* the 0x00 before the first request was sent */
  StFrameRx rx;
  guint8 body[ST_FRAME_MAX_BODY];
  guint8 wire[1 + ST_FRAME_MAX_WIRE];
};

const char *
st_agent_op_to_string (guint8 op)
{
  static const char *const names[] = {
    NULL, "HELLO", "KEYGEN", "PUT_KEY", "WRITE", "READ", "SIGN", "COMMIT", "ABORT",
  };
  if (op >= G_N_ELEMENTS (names))
    return NULL;
  return names[op];
}

const char *
st_agent_status_to_string (guint8 status)
{
  static const char *const names[] = {
    "OK", "BAD_REQUEST", "UNKNOWN_OP", "BAD_STATE", "LOCKED", "UNSUPPORTED",
    "STORAGE", "TOO_LARGE", "INTERNAL",
  };
  if (status >= G_N_ELEMENTS (names))
    return NULL;
  return names[status];
}

StError
st_agent_status_to_error (guint8 status)
{
  switch (status)
    {
    case ST_AGENT_STATUS_BAD_REQUEST:
    case ST_AGENT_STATUS_TOO_LARGE:
      return ST_ERROR_INVALID_DATA;
    case ST_AGENT_STATUS_UNKNOWN_OP:
    case ST_AGENT_STATUS_UNSUPPORTED:
      return ST_ERROR_NOT_SUPPORTED;
    case ST_AGENT_STATUS_BAD_STATE:
      return ST_ERROR_BUSY;
    case ST_AGENT_STATUS_LOCKED:
      return ST_ERROR_PERMISSION_DENIED;
    case ST_AGENT_STATUS_STORAGE:
      return ST_ERROR_WRITE;
    case ST_AGENT_STATUS_INTERNAL:
    default:
      return ST_ERROR_INTERNAL;
    }
}

static const char *
st_agent_status_hint (guint8 status)
{
  switch (status)
    {
    case ST_AGENT_STATUS_BAD_REQUEST:
      return "the device did not accept the request; check that its agent matches protocol version 1";
    case ST_AGENT_STATUS_UNKNOWN_OP:
      return "the device's agent does not know this operation; update its firmware";
    case ST_AGENT_STATUS_BAD_STATE:
      return "the device is not in the state this step needs";
    case ST_AGENT_STATUS_LOCKED:
      return "the device is locked and cannot be provisioned again";
    case ST_AGENT_STATUS_UNSUPPORTED:
      return "the device does not support this algorithm or slot; check the product profile";
    case ST_AGENT_STATUS_STORAGE:
      return "the device's storage failed; set the device aside";
    case ST_AGENT_STATUS_TOO_LARGE:
      return "the object is larger than the device can hold; check the product profile";
    default:
      return "the device reported an internal failure; retry, then set the device aside";
    }
}

StAgentLink *
st_agent_link_new (StTransport *transport, StBackend *backend)
{
  StAgentLink *link = g_new0 (StAgentLink, 1);
  link->transport = transport;
  link->backend = backend;
  /* A fresh starting point, so that a restarted station does not send the
   * very body the device executed last (it would get the stored response). */
  link->next_seq = (guint16) g_random_int_range (0, 65536);
  st_frame_rx_init (&link->rx);
  return link;
}

void
st_agent_link_free (StAgentLink *link)
{
  if (link == NULL)
    return;
  st_transport_free (link->transport);
  st_memwipe (link->wire, sizeof link->wire);
  g_free (link);
}

typedef enum {
  ST_RX_NONE,
  ST_RX_MATCH,
  ST_RX_DAMAGED,
} StRxOutcome;

/* Feeds @data up to and with its first 0x00 (all of it when it has none),
 * the bytes before the 0x00 in one copy; *@taken says how many. On
 * ST_RX_MATCH @frame holds the response. */
static StRxOutcome
st_agent_link_push (StAgentLink *link, const guint8 *data, gsize len, gsize *taken, guint8 op,
                    guint16 seq, StFrame *frame)
{
  int was_discarding = link->rx.discarding;
  gsize run = st_frame_rx_take_run (&link->rx, data, len);
  if (!was_discarding && link->rx.discarding)
    g_debug ("%s: <- more than %d bytes without a frame end, discarding",
             link->transport->name, ST_FRAME_MAX_WIRE);
  *taken = run;
  if (run == len)
    return ST_RX_NONE;
  /* data[run] is the 0x00 that ends a frame */
  *taken = run + 1;
  gsize pending = link->rx.n;
  was_discarding = link->rx.discarding;
  size_t body_len = 0;
  if (st_frame_rx_push (&link->rx, 0x00, link->body, sizeof link->body, &body_len) != 1)
    {
      if (pending > 0 && !was_discarding)
        {
          g_debug ("%s: <- frame that does not COBS-decode (%" G_GSIZE_FORMAT " bytes), dropped",
                   link->transport->name, pending);
          return ST_RX_DAMAGED;
        }
      return ST_RX_NONE;
    }
  if (st_frame_parse_body (link->body, body_len, frame) != 0)
    {
      g_debug ("%s: <- damaged frame (%" G_GSIZE_FORMAT " bytes: CRC, length or version), dropped",
               link->transport->name, (gsize) body_len);
      return ST_RX_DAMAGED;
    }
  if (frame->seq != seq)
    {
      g_debug ("%s: <- stale response op 0x%02x seq %u (waiting for seq %u), skipped",
               link->transport->name, frame->op, frame->seq, seq);
      return ST_RX_NONE;
    }
  if (frame->op != (guint8) (op | ST_AGENT_OP_RESPONSE))
    {
      g_debug ("%s: <- frame op 0x%02x seq %u is not a response to %s, skipped",
               link->transport->name, frame->op, frame->seq,
               st_agent_op_to_string (op));
      return ST_RX_NONE;
    }
  return ST_RX_MATCH;
}

GBytes *
st_agent_link_transact (StAgentLink *link, guint8 op, const guint8 *payload, gsize len,
                        guint timeout_ms, guint retries, GError **error)
{
  StBackend *backend = link->backend;
  StTransport *transport = link->transport;
  const char *op_name = st_agent_op_to_string (op);
  guint64 rx_total = 0;
  guint n_damaged = 0;
  guint attempt;

  if (op_name == NULL || len > ST_FRAME_MAX_PAYLOAD || (len > 0 && payload == NULL))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL,
                   "invalid agent request (op 0x%02x, %" G_GSIZE_FORMAT " bytes)", op, len);
      return NULL;
    }
  if (timeout_ms == 0)
    timeout_ms = 1;

  guint16 seq = link->next_seq;
  link->next_seq = (guint16) (link->next_seq + 1);   /* wraps 65535 -> 0 */
  gsize start = 0;
  if (!link->synced)
    link->wire[start++] = 0x00;
  gsize n = st_frame_encode (op, seq, payload, (guint16) len, link->wire + start,
                             sizeof link->wire - start);
  if (n == 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL, "cannot encode the %s request", op_name);
      return NULL;
    }
  gsize wire_len = start + n;

  backend->n_requests++;
  if (op == ST_AGENT_OP_KEYGEN)
    backend->n_keygen++;
  backend->last_status = ST_AGENT_STATUS_NONE;
  /* Whatever is waiting now answers nothing we will send. */
  st_transport_discard_input (transport);
  st_frame_rx_init (&link->rx);
  if (ST_DEBUG_ON ())
    g_debug ("%s: -> %s seq %u, %" G_GSIZE_FORMAT " bytes%s", transport->name, op_name, seq, len,
             op == ST_AGENT_OP_PUT_KEY ? " (payload not logged)" : "");

  gint64 t0 = g_get_monotonic_time ();
  gint64 overall = t0 + ((gint64) retries + 1) * (gint64) timeout_ms * 1000 + G_USEC_PER_SEC;
  const guint8 *send = link->wire;
  gsize send_len = wire_len;
  g_autoptr(GBytes) result = NULL;

  for (attempt = 0; attempt <= retries && result == NULL; attempt++)
    {
      gint64 now = g_get_monotonic_time ();
      if (now >= overall)
        break;
      if (attempt > 0)
        {
          backend->n_retries++;
          g_debug ("%s: -> %s seq %u again (retry %u of %u)", transport->name, op_name,
                   seq, attempt, retries);
        }
      gint64 deadline = MIN (now + (gint64) timeout_ms * 1000, overall);
      g_autoptr(GError) local = NULL;
      if (!st_transport_write_all (transport, send, send_len, deadline,
                                   backend->cancellable, &local))
        {
          if (op == ST_AGENT_OP_PUT_KEY)
            st_memwipe (link->wire, sizeof link->wire);
          g_propagate_prefixed_error (error, g_steal_pointer (&local), "sending %s: ", op_name);
          return NULL;
        }
      backend->bytes_tx += send_len;
      if (!link->synced)
        {
          /* The 0x00 goes once per opened port, not with every resend. */
          link->synced = TRUE;
          send = link->wire + 1;
          send_len = wire_len - 1;
        }

      for (;;)
        {
          guint8 buf[512];
          gsize got = 0;
          g_clear_error (&local);
          if (!st_transport_read (transport, buf, sizeof buf, &got, deadline,
                                  backend->cancellable, &local))
            {
              if (g_error_matches (local, ST_ERROR, ST_ERROR_TIMED_OUT))
                break;
              if (op == ST_AGENT_OP_PUT_KEY)
                st_memwipe (link->wire, sizeof link->wire);
              g_propagate_prefixed_error (error, g_steal_pointer (&local),
                                          "waiting for the %s response: ", op_name);
              return NULL;
            }
          backend->bytes_rx += got;
          rx_total += got;
          for (gsize i = 0, taken = 0; i < got; i += taken)
            {
              StFrame frame;
              StRxOutcome outcome = st_agent_link_push (link, buf + i, got - i, &taken, op, seq, &frame);
              if (outcome == ST_RX_DAMAGED)
                {
                  n_damaged++;
                  deadline = MIN (deadline, g_get_monotonic_time ()
                                  + (gint64) MIN (timeout_ms, ST_AGENT_DAMAGE_GRACE_MS) * 1000);
                }
              else if (outcome == ST_RX_MATCH)
                {
                  if (frame.len == 0)
                    {
                      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                                   "device on %s sent a %s response without a status byte",
                                   transport->name, op_name);
                      return NULL;
                    }
                  result = g_bytes_new (frame.payload, frame.len);
                  break;
                }
            }
          if (result != NULL || g_get_monotonic_time () >= deadline)
            break;
        }
    }
  if (op == ST_AGENT_OP_PUT_KEY)
    st_memwipe (link->wire, sizeof link->wire);

  if (result == NULL)
    {
      if (rx_total > 0)
        g_set_error (error, ST_ERROR, ST_ERROR_TIMED_OUT,
                     "device on %s sent only garbage in answer to %s (%" G_GUINT64_FORMAT
                     " bytes, %u damaged frames, no valid response after %u attempts); "
                     "check the baud rate and the cable",
                     transport->name, op_name, rx_total, n_damaged, attempt);
      else
        g_set_error (error, ST_ERROR, ST_ERROR_TIMED_OUT,
                     "no response from the device on %s to %s after %u attempts; check that "
                     "the device is connected, powered and runs the provisioning agent",
                     transport->name, op_name, attempt);
      return NULL;
    }

  gsize res_len = 0;
  const guint8 *res = g_bytes_get_data (result, &res_len);
  guint8 status = res[0];
  backend->last_status = (StAgentStatus) status;
  if (ST_DEBUG_ON ())
    g_debug ("%s: <- %s seq %u status %s, %" G_GSIZE_FORMAT " bytes of result", transport->name,
             op_name, seq, st_agent_status_to_string (status) ? st_agent_status_to_string (status) : "?",
             res_len - 1);
  if (status != ST_AGENT_STATUS_OK)
    {
      const char *status_name = st_agent_status_to_string (status);
      if (status_name != NULL)
        g_set_error (error, ST_ERROR, st_agent_status_to_error (status),
                     "device on %s answered %s to %s: %s", transport->name, status_name,
                     op_name, st_agent_status_hint (status));
      else
        g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL,
                     "device on %s answered unknown status 0x%02x to %s: %s", transport->name,
                     status, op_name, st_agent_status_hint (status));
      return NULL;
    }
  return g_bytes_new_from_bytes (result, 1, res_len - 1);
}

gboolean
st_agent_parse_hello (const guint8 *data, gsize len, StDeviceInfo *info, GError **error)
{
  guint32 seen = 0;
  gsize pos = 0;

  g_return_val_if_fail (info != NULL, FALSE);
  memset (info, 0, sizeof *info);
  info->state = ST_DEVICE_STATE_UNKNOWN;
  info->max_payload = 256;
  if (len > 0 && data == NULL)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA, "HELLO: no data");
      return FALSE;
    }

  while (pos < len)
    {
      if (len - pos < 2)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "HELLO: truncated TLV header at offset %" G_GSIZE_FORMAT, pos);
          return FALSE;
        }
      guint8 type = data[pos];
      gsize vlen = data[pos + 1];
      const guint8 *v = data + pos + 2;
      if (vlen > len - pos - 2)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "HELLO: TLV type 0x%02x at offset %" G_GSIZE_FORMAT
                       " runs past the end (%" G_GSIZE_FORMAT " bytes, %" G_GSIZE_FORMAT " left)",
                       type, pos, vlen, len - pos - 2);
          return FALSE;
        }
      pos += 2 + vlen;
      if (type < ST_AGENT_TLV_UID || type > ST_AGENT_TLV_EXTENSIONS)
        continue;   /* unknown types are ignored */
      if (seen & (1u << type))
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "HELLO: TLV type 0x%02x appears twice", type);
          return FALSE;
        }
      seen |= 1u << type;
      switch (type)
        {
        case ST_AGENT_TLV_UID:
          if (vlen < 1 || vlen > ST_UID_MAX)
            {
              g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "HELLO: uid of %" G_GSIZE_FORMAT " bytes (1 to %d allowed)",
                           vlen, ST_UID_MAX);
              return FALSE;
            }
          memcpy (info->uid, v, vlen);
          info->uid_len = vlen;
          break;
        case ST_AGENT_TLV_MODEL:
          if (vlen < 1 || vlen > sizeof info->model - 1)
            {
              g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "HELLO: model of %" G_GSIZE_FORMAT " bytes (1 to 64 allowed)", vlen);
              return FALSE;
            }
          if (!g_utf8_validate ((const char *) v, (gssize) vlen, NULL))
            {
              g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                                   "HELLO: model is not valid UTF-8");
              return FALSE;
            }
          memcpy (info->model, v, vlen);
          info->model[vlen] = '\0';
          break;
        case ST_AGENT_TLV_FW_VERSION:
          if (vlen > sizeof info->fw_version - 1)
            {
              g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "HELLO: firmware version of %" G_GSIZE_FORMAT
                           " bytes (up to 32 allowed)", vlen);
              return FALSE;
            }
          if (vlen > 0 && !g_utf8_validate ((const char *) v, (gssize) vlen, NULL))
            {
              g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                                   "HELLO: firmware version is not valid UTF-8");
              return FALSE;
            }
          memcpy (info->fw_version, v, vlen);
          info->fw_version[vlen] = '\0';
          break;
        case ST_AGENT_TLV_ALGORITHMS:
          if (vlen != 1)
            {
              g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "HELLO: algorithms TLV of %" G_GSIZE_FORMAT " bytes (1 expected)", vlen);
              return FALSE;
            }
          info->algorithms = v[0];
          break;
        case ST_AGENT_TLV_STATE:
          if (vlen != 1 || v[0] > ST_DEVICE_STATE_LOCKED)
            {
              g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "HELLO: invalid state TLV (%" G_GSIZE_FORMAT " bytes, value %u)",
                           vlen, vlen > 0 ? v[0] : 0);
              return FALSE;
            }
          info->state = (StDeviceState) v[0];
          break;
        case ST_AGENT_TLV_MAX_PAYLOAD:
          {
            if (vlen != 2)
              {
                g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                             "HELLO: max payload TLV of %" G_GSIZE_FORMAT " bytes (2 expected)",
                             vlen);
                return FALSE;
              }
            guint mp = (guint) v[0] | ((guint) v[1] << 8);
            if (mp < 256 || mp > ST_FRAME_MAX_PAYLOAD)
              {
                g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                             "HELLO: max payload %u out of range (256 to %d)", mp,
                             ST_FRAME_MAX_PAYLOAD);
                return FALSE;
              }
            info->max_payload = (guint16) mp;
          }
          break;
        case ST_AGENT_TLV_EXTENSIONS:
          /* 1 to 4 bytes, little-endian; unknown bits are kept and never
           * acted on. */
          if (vlen < 1 || vlen > 4)
            {
              g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           _("HELLO: the extensions TLV is %zu bytes long (1 to 4 allowed)."),
                           vlen);
              return FALSE;
            }
          for (gsize i = 0; i < vlen; i++)
            info->extensions |= (guint32) v[i] << (8 * i);
          break;
        default:
          break;
        }
    }

  if (!(seen & (1u << ST_AGENT_TLV_UID)))
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "HELLO: the device did not send its uid");
      return FALSE;
    }
  if (!(seen & (1u << ST_AGENT_TLV_MODEL)))
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "HELLO: the device did not send its model");
      return FALSE;
    }
  return TRUE;
}
