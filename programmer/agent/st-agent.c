/* Device side of the agent protocol (portable C99, no heap, no OS). */
#include "st-agent.h"

#include <string.h>

/* memset called through a volatile pointer: the compiler cannot know what
 * it calls, so it cannot drop a wipe of memory that is not read again (as it
 * may drop a plain memset), and the wipe still runs at memset's speed, where
 * a loop of volatile byte stores takes a cycle or more per byte (the agent's
 * state is some 17 KiB, wiped for every device). */
static void *(*const volatile st_agent_memset) (void *, int, size_t) = memset;

static void
st_agent_wipe (void *p, size_t len)
{
  st_agent_memset (p, 0, len);
}

static uint16_t
st_get_le16 (const uint8_t *p)
{
  return (uint16_t) (p[0] | (p[1] << 8));
}

static void
st_xfer_reset (StAgentXfer *x)
{
  x->total = 0;
  x->received = 0;
  x->active = 0;
}

static void
st_agent_reset_key_xfer (StAgent *a)
{
  st_xfer_reset (&a->key_xfer);
  st_agent_wipe (a->staged_key, sizeof a->staged_key);
}

/* Discards uncommitted slot contents: reloads the committed ones. */
static uint8_t
st_agent_reload (StAgent *a)
{
  size_t l1 = 0, l2 = 0, l3 = 0, l4 = 0;
  int has_key = 0, locked = 0, rc;

  st_xfer_reset (&a->slot1_xfer);
  st_xfer_reset (&a->slot2_xfer);
  st_xfer_reset (&a->slot3_xfer);
  st_xfer_reset (&a->slot4_xfer);
  if (a->info.extensions & ST_AGENT_EXT_MATTER_1)
    rc = a->hooks.load_matter (a->hooks.user_data, a->slot1, &l1, a->slot2, &l2, a->slot3, &l3,
                               a->slot4, &l4, &has_key, &locked);
  else
    rc = a->hooks.load (a->hooks.user_data, a->slot1, &l1, a->slot2, &l2, &has_key, &locked);
  if (rc != 0 || l1 > sizeof a->slot1 || l2 > sizeof a->slot2 || l3 > sizeof a->slot3
      || l4 > sizeof a->slot4)
    {
      a->slot1_len = 0;
      a->slot2_len = 0;
      a->slot3_len = 0;
      a->slot4_len = 0;
      return ST_AGENT_RC_STORAGE;
    }
  a->slot1_len = l1;
  a->slot2_len = l2;
  a->slot3_len = l3;
  a->slot4_len = l4;
  a->committed_key = has_key != 0;
  a->locked = locked != 0;
  return ST_AGENT_RC_OK;
}

int
st_agent_init (StAgent *agent, const StAgentInfo *info, const StAgentHooks *hooks)
{
  if (agent == NULL || info == NULL || hooks == NULL)
    return -1;
  memset (agent, 0, sizeof *agent);
  agent->hooks = *hooks;
  agent->info = *info;
  agent->info.model[sizeof agent->info.model - 1] = '\0';
  agent->info.fw_version[sizeof agent->info.fw_version - 1] = '\0';
  if (agent->info.uid_len > sizeof agent->info.uid)
    agent->info.uid_len = sizeof agent->info.uid;
  /* Only the extensions implemented here are announced. */
  agent->info.extensions &= ST_AGENT_EXT_MATTER_1;
  st_frame_rx_init (&agent->rx);
  if (hooks->output == NULL || hooks->keygen == NULL || hooks->put_key == NULL
      || hooks->sign == NULL || hooks->abort == NULL)
    return -1;
  if (agent->info.extensions & ST_AGENT_EXT_MATTER_1)
    {
      if (hooks->commit_matter == NULL || hooks->load_matter == NULL)
        return -1;
    }
  else if (hooks->commit == NULL || hooks->load == NULL)
    return -1;
  if (st_agent_reload (agent) != ST_AGENT_RC_OK)
    return -1;
  agent->storage_ok = 1;
  return 0;
}

void
st_agent_clear (StAgent *agent)
{
  if (agent != NULL)
    st_agent_wipe (agent, sizeof *agent);
}

uint8_t
st_agent_get_state (const StAgent *agent)
{
  if (agent->locked)
    return ST_AGENT_STATE_LOCKED;
  if (agent->pending_key)
    return ST_AGENT_STATE_KEY_PRESENT;
  if (agent->committed_key)
    return ST_AGENT_STATE_PROVISIONED;
  return ST_AGENT_STATE_BLANK;
}

static int
st_agent_alg_supported (const StAgent *a, uint8_t alg)
{
  if (alg < 1 || alg > 3)
    return 0;
  return (a->info.algorithms >> (alg - 1)) & 1;
}

/* One chunk of a PUT_KEY or WRITE transfer: offset = bytes received so far,
 * offset 0 restarts. Everything is checked before anything changes.
 * *@complete is set when the last byte arrived. */
static uint8_t
st_agent_xfer_chunk (StAgentXfer *x, uint8_t *buf, size_t cap, uint16_t offset,
                     uint16_t total, const uint8_t *chunk, size_t chunk_len,
                     int *restarted, int *complete)
{
  *restarted = 0;
  *complete = 0;
  if (total > cap)
    return ST_AGENT_RC_TOO_LARGE;
  if (offset != 0 && (!x->active || offset != x->received || total != x->total))
    return ST_AGENT_RC_BAD_REQUEST;
  if (chunk_len > (size_t) (total - offset))
    return ST_AGENT_RC_BAD_REQUEST;
  if (offset == 0)
    {
      x->active = 1;
      x->total = total;
      x->received = 0;
      *restarted = 1;
    }
  if (chunk_len > 0)
    memcpy (buf + offset, chunk, chunk_len);
  x->received = (uint16_t) (x->received + chunk_len);
  if (x->received == x->total)
    {
      x->active = 0;
      *complete = 1;
    }
  return ST_AGENT_RC_OK;
}

static void
st_agent_tlv (uint8_t *out, size_t *n, uint8_t type, const void *value, size_t len)
{
  out[(*n)++] = type;
  out[(*n)++] = (uint8_t) len;
  memcpy (out + *n, value, len);
  *n += len;
}

static uint8_t
st_agent_do_hello (StAgent *a, const StFrame *req, size_t *res_len)
{
  size_t n = 0;
  size_t model_len = strlen (a->info.model);
  size_t fw_len = strlen (a->info.fw_version);
  uint8_t state = st_agent_get_state (a);
  uint8_t maxp[2] = { (uint8_t) (ST_AGENT_MAX_PAYLOAD & 0xFF), (uint8_t) (ST_AGENT_MAX_PAYLOAD >> 8) };
  uint8_t ext[4];
  size_t ext_len = 0;

  if (req->len != 0)
    return ST_AGENT_RC_BAD_REQUEST;
  if (a->info.uid_len == 0 || model_len == 0)
    return ST_AGENT_RC_INTERNAL;
  /* At most 2+32 + 2+64 + 2+32 + 3 + 3 + 4 + 6 bytes: always fits. */
  st_agent_tlv (a->scratch, &n, ST_AGENT_TLV_UID, a->info.uid, a->info.uid_len);
  st_agent_tlv (a->scratch, &n, ST_AGENT_TLV_MODEL, a->info.model, model_len);
  if (fw_len > 0)
    st_agent_tlv (a->scratch, &n, ST_AGENT_TLV_FW_VERSION, a->info.fw_version, fw_len);
  st_agent_tlv (a->scratch, &n, ST_AGENT_TLV_ALGORITHMS, &a->info.algorithms, 1);
  st_agent_tlv (a->scratch, &n, ST_AGENT_TLV_STATE, &state, 1);
  st_agent_tlv (a->scratch, &n, ST_AGENT_TLV_MAX_PAYLOAD, maxp, 2);
  /* The extensions TLV, as short as its highest set byte; left out when
   * none is implemented, so that such a device is a version 1 device. */
  for (size_t i = 0; i < 4; i++)
    {
      ext[i] = (uint8_t) (a->info.extensions >> (8 * i));
      if (ext[i] != 0)
        ext_len = i + 1;
    }
  if (ext_len > 0)
    st_agent_tlv (a->scratch, &n, ST_AGENT_TLV_EXTENSIONS, ext, ext_len);
  *res_len = n;
  return ST_AGENT_RC_OK;
}

static uint8_t
st_agent_do_keygen (StAgent *a, const StFrame *req, size_t *res_len)
{
  uint8_t alg;
  uint8_t st;
  size_t csr_len = 0;

  if (req->len != 1)
    return ST_AGENT_RC_BAD_REQUEST;
  if (a->locked)
    return ST_AGENT_RC_LOCKED;
  alg = req->payload[0];
  if (!st_agent_alg_supported (a, alg))
    return ST_AGENT_RC_UNSUPPORTED;
  /* A fresh key: uncommitted slot contents and any staged key go. */
  st_agent_reset_key_xfer (a);
  st = st_agent_reload (a);
  if (st != ST_AGENT_RC_OK)
    return st;
  st = a->hooks.keygen (a->hooks.user_data, alg, a->scratch, sizeof a->scratch - 1, &csr_len);
  if (st == ST_AGENT_RC_OK && (csr_len == 0 || csr_len > sizeof a->scratch - 1))
    {
      a->hooks.abort (a->hooks.user_data);
      st = ST_AGENT_RC_INTERNAL;
    }
  if (st != ST_AGENT_RC_OK)
    {
      a->pending_key = 0;
      return st;
    }
  a->pending_key = 1;
  a->key_alg = alg;
  *res_len = csr_len;
  return ST_AGENT_RC_OK;
}

static uint8_t
st_agent_do_put_key (StAgent *a, const StFrame *req)
{
  uint8_t alg;
  uint16_t offset, total;
  int restarted, complete;
  uint8_t st;

  if (req->len < 5)
    return ST_AGENT_RC_BAD_REQUEST;
  if (a->locked)
    return ST_AGENT_RC_LOCKED;
  alg = req->payload[0];
  offset = st_get_le16 (req->payload + 1);
  total = st_get_le16 (req->payload + 3);
  if (!st_agent_alg_supported (a, alg))
    return ST_AGENT_RC_UNSUPPORTED;
  if (offset != 0 && a->key_xfer.active && alg != a->key_alg)
    return ST_AGENT_RC_BAD_REQUEST;
  st = st_agent_xfer_chunk (&a->key_xfer, a->staged_key, sizeof a->staged_key, offset, total,
                            req->payload + 5, (size_t) req->len - 5, &restarted, &complete);
  if (st != ST_AGENT_RC_OK)
    return st;
  if (restarted)
    a->key_alg = alg;
  if (!complete)
    return ST_AGENT_RC_OK;
  if (total == 0)
    st = ST_AGENT_RC_BAD_REQUEST;
  else
    st = a->hooks.put_key (a->hooks.user_data, alg, a->staged_key, total);
  st_agent_reset_key_xfer (a);
  if (st == ST_AGENT_RC_OK)
    a->pending_key = 1;
  return st;
}

static uint8_t
st_agent_do_write (StAgent *a, const StFrame *req)
{
  uint8_t slot;
  uint16_t offset, total;
  int restarted, complete;
  uint8_t st;
  StAgentXfer *x;
  uint8_t *buf;
  size_t cap;
  size_t *len;

  if (req->len < 5)
    return ST_AGENT_RC_BAD_REQUEST;
  if (a->locked)
    return ST_AGENT_RC_LOCKED;
  slot = req->payload[0];
  offset = st_get_le16 (req->payload + 1);
  total = st_get_le16 (req->payload + 3);
  if (slot == 1)
    {
      if (!a->pending_key && !a->committed_key)
        return ST_AGENT_RC_BAD_STATE;
      x = &a->slot1_xfer;
      buf = a->slot1;
      cap = sizeof a->slot1;
      len = &a->slot1_len;
    }
  else if (slot == 2)
    {
      x = &a->slot2_xfer;
      buf = a->slot2;
      cap = sizeof a->slot2;
      len = &a->slot2_len;
    }
  else if (slot == 3 && (a->info.extensions & ST_AGENT_EXT_MATTER_1))
    {
      x = &a->slot3_xfer;
      buf = a->slot3;
      cap = sizeof a->slot3;
      len = &a->slot3_len;
    }
  else if (slot == 4 && (a->info.extensions & ST_AGENT_EXT_MATTER_1))
    {
      x = &a->slot4_xfer;
      buf = a->slot4;
      cap = sizeof a->slot4;
      len = &a->slot4_len;
    }
  else
    return ST_AGENT_RC_UNSUPPORTED;
  st = st_agent_xfer_chunk (x, buf, cap, offset, total, req->payload + 5,
                            (size_t) req->len - 5, &restarted, &complete);
  if (st != ST_AGENT_RC_OK)
    return st;
  /* The slot's value is being replaced: empty until the last chunk. */
  if (restarted)
    *len = 0;
  if (complete)
    *len = total;
  return ST_AGENT_RC_OK;
}

static uint8_t
st_agent_do_read (StAgent *a, const StFrame *req, size_t *res_len)
{
  uint8_t slot;
  uint16_t offset, max;
  const uint8_t *buf;
  size_t total, n;

  if (req->len != 5)
    return ST_AGENT_RC_BAD_REQUEST;
  slot = req->payload[0];
  offset = st_get_le16 (req->payload + 1);
  max = st_get_le16 (req->payload + 3);
  if (slot == 1)
    {
      buf = a->slot1;
      total = a->slot1_len;
    }
  else if (slot == 2)
    {
      buf = a->slot2;
      total = a->slot2_len;
    }
  else if (slot == 3 && (a->info.extensions & ST_AGENT_EXT_MATTER_1))
    {
      buf = a->slot3;
      total = a->slot3_len;
    }
  else if (slot == 4 && (a->info.extensions & ST_AGENT_EXT_MATTER_1))
    {
      buf = a->slot4;
      total = a->slot4_len;
    }
  else
    return ST_AGENT_RC_UNSUPPORTED;
  if (offset > total)
    return ST_AGENT_RC_BAD_REQUEST;
  n = total - offset;
  if (n > max)
    n = max;
  /* status + total + data must fit in one response payload. */
  if (n > sizeof a->scratch - 3)
    n = sizeof a->scratch - 3;
  a->scratch[0] = (uint8_t) (total & 0xFF);
  a->scratch[1] = (uint8_t) (total >> 8);
  if (n > 0)
    memcpy (a->scratch + 2, buf + offset, n);
  *res_len = 2 + n;
  return ST_AGENT_RC_OK;
}

static uint8_t
st_agent_do_sign (StAgent *a, const StFrame *req, size_t *res_len)
{
  uint8_t msg[ST_AGENT_SIGN_PREFIX_LEN + ST_AGENT_CHALLENGE_LEN];
  size_t sig_len = 0;
  uint8_t st;

  if (req->len != ST_AGENT_CHALLENGE_LEN)
    return ST_AGENT_RC_BAD_REQUEST;
  if (!a->pending_key && !a->committed_key)
    return ST_AGENT_RC_BAD_STATE;
  memcpy (msg, ST_AGENT_SIGN_PREFIX, ST_AGENT_SIGN_PREFIX_LEN);
  memcpy (msg + ST_AGENT_SIGN_PREFIX_LEN, req->payload, ST_AGENT_CHALLENGE_LEN);
  st = a->hooks.sign (a->hooks.user_data, msg, sizeof msg, a->scratch, sizeof a->scratch - 1,
                      &sig_len);
  if (st != ST_AGENT_RC_OK)
    return st;
  if (sig_len == 0 || sig_len > sizeof a->scratch - 1)
    return ST_AGENT_RC_INTERNAL;
  *res_len = sig_len;
  return ST_AGENT_RC_OK;
}

static uint8_t
st_agent_do_commit (StAgent *a, const StFrame *req)
{
  int lock;
  uint8_t st;

  if (req->len != 1)
    return ST_AGENT_RC_BAD_REQUEST;
  lock = req->payload[0] & 0x01;
  if (!a->pending_key && !a->committed_key)
    return ST_AGENT_RC_BAD_STATE;
  if (a->slot1_len == 0 || a->slot1_xfer.active || a->slot2_xfer.active
      || a->slot3_xfer.active || a->slot4_xfer.active)
    return ST_AGENT_RC_BAD_STATE;
  if (a->locked)
    {
      /* Nothing can be uncommitted on a locked device, and the lock stays. */
      return ST_AGENT_RC_OK;
    }
  if (a->info.extensions & ST_AGENT_EXT_MATTER_1)
    st = a->hooks.commit_matter (a->hooks.user_data, a->slot1, a->slot1_len, a->slot2,
                                 a->slot2_len, a->slot3, a->slot3_len, a->slot4, a->slot4_len,
                                 lock);
  else
    st = a->hooks.commit (a->hooks.user_data, a->slot1, a->slot1_len, a->slot2, a->slot2_len,
                          lock);
  if (st != ST_AGENT_RC_OK)
    return st;
  a->committed_key = 1;
  a->pending_key = 0;
  a->locked = lock;
  st_agent_reset_key_xfer (a);
  return ST_AGENT_RC_OK;
}

static uint8_t
st_agent_do_abort (StAgent *a, const StFrame *req)
{
  if (req->len != 0)
    return ST_AGENT_RC_BAD_REQUEST;
  a->hooks.abort (a->hooks.user_data);
  a->pending_key = 0;
  st_agent_reset_key_xfer (a);
  return st_agent_reload (a);
}

static void
st_agent_handle (StAgent *a, const StFrame *req)
{
  uint8_t status;
  size_t res_len = 0;
  size_t n;

  if (a->hooks.observe != NULL)
    a->hooks.observe (a->hooks.user_data, req, 0);

  if (req->op < ST_AGENT_OP_HELLO || req->op > ST_AGENT_OP_ABORT)
    status = ST_AGENT_RC_UNKNOWN_OP;
  else if (req->len > ST_AGENT_MAX_PAYLOAD)
    status = ST_AGENT_RC_TOO_LARGE;
  else if (!a->storage_ok && req->op != ST_AGENT_OP_HELLO)
    status = ST_AGENT_RC_STORAGE;
  else
    switch (req->op)
      {
      case ST_AGENT_OP_HELLO:
        status = st_agent_do_hello (a, req, &res_len);
        break;
      case ST_AGENT_OP_KEYGEN:
        status = st_agent_do_keygen (a, req, &res_len);
        break;
      case ST_AGENT_OP_PUT_KEY:
        status = st_agent_do_put_key (a, req);
        break;
      case ST_AGENT_OP_WRITE:
        status = st_agent_do_write (a, req);
        break;
      case ST_AGENT_OP_READ:
        status = st_agent_do_read (a, req, &res_len);
        break;
      case ST_AGENT_OP_SIGN:
        status = st_agent_do_sign (a, req, &res_len);
        break;
      case ST_AGENT_OP_COMMIT:
        status = st_agent_do_commit (a, req);
        break;
      case ST_AGENT_OP_ABORT:
        status = st_agent_do_abort (a, req);
        break;
      default:
        status = ST_AGENT_RC_UNKNOWN_OP;
        break;
      }
  if (status != ST_AGENT_RC_OK || res_len > sizeof a->scratch - 1)
    res_len = 0;

  n = st_frame_encode2 ((uint8_t) (req->op | ST_AGENT_OP_RESPONSE), req->seq, &status, 1,
                        a->scratch, (uint16_t) res_len, a->last_resp, sizeof a->last_resp);
  st_agent_wipe (a->scratch, res_len);
  a->last_resp_len = n;
  /* req->payload points into a->body: copy the request last. */
  a->last_req_len = (size_t) req->len + ST_FRAME_MIN_BODY;
  memcpy (a->last_req, a->body, a->last_req_len);
  if (n > 0)
    a->hooks.output (a->hooks.user_data, a->last_resp, n);
}

void
st_agent_receive (StAgent *agent, const uint8_t *data, size_t len)
{
  if (agent == NULL || data == NULL || agent->hooks.output == NULL)
    return;
  for (size_t i = 0; i < len; i++)
    {
      size_t body_len = 0;
      StFrame req;

      /* a frame's bytes in one copy, up to its 0x00 */
      i += st_frame_rx_take_run (&agent->rx, data + i, len - i);
      if (i >= len)
        break;
      if (!st_frame_rx_push (&agent->rx, data[i], agent->body, sizeof agent->body, &body_len))
        continue;
      if (st_frame_parse_body (agent->body, body_len, &req) != 0)
        continue;
      if (agent->last_req_len == body_len && agent->last_resp_len > 0
          && memcmp (agent->last_req, agent->body, body_len) == 0)
        {
          /* A retry: the stored response again, nothing executed. */
          if (agent->hooks.observe != NULL)
            agent->hooks.observe (agent->hooks.user_data, &req, 1);
          agent->hooks.output (agent->hooks.user_data, agent->last_resp, agent->last_resp_len);
          continue;
        }
      st_agent_handle (agent, &req);
    }
}
