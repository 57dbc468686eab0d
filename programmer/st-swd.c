/* ADIv5 DP/AP and MEM-AP access over CMSIS-DAP (st-swd.h). */
#include "st-swd.h"

#include <string.h>

#include "st-error.h"
#include "st-util.h"

#define ST_SWD_WAIT_RETRIES 32        /* after the probe's own WAIT retries */
#define ST_SWD_FAULT_RETRIES 1
#define ST_SWD_POWERUP_POLLS 100
#define ST_SWD_MAX_OPS 128            /* DAP_Transfer requests per packet, our limit */
#define ST_SWD_MEM_MAX (16u * 1024 * 1024)

typedef struct {
  guint8 req;                 /* APnDP | RnW | A[3:2] */
  guint32 value;              /* for writes */
} StSwdOp;

struct _StSwd {
  StDapProbe *probe;
};

StSwd *
st_swd_new (StDapProbe *probe)
{
  StSwd *self = g_new0 (StSwd, 1);
  self->probe = probe;
  return self;
}

void
st_swd_free (StSwd *self)
{
  g_free (self);
}

/* One DAP_Transfer packet: @n requests; the values of the reads among the
 * completed ones go to @rdata in order. @done and @ack as the probe said. */
static gboolean
st_swd_transfer_once (StSwd *self, const StSwdOp *ops, guint n, guint32 *rdata, guint *done,
                      guint8 *ack, GError **error)
{
  guint8 req[3 + ST_SWD_MAX_OPS * 5], resp[ST_DAP_PACKET_MAX];
  gsize len = 3, rlen = 0;
  g_return_val_if_fail (n >= 1 && n <= ST_SWD_MAX_OPS, FALSE);
  req[0] = ST_DAP_TRANSFER;
  req[1] = 0;                 /* DAP index: ignored for SWD */
  req[2] = (guint8) n;
  for (guint i = 0; i < n; i++)
    {
      req[len++] = ops[i].req;
      if ((ops[i].req & ST_DAP_RNW) == 0)
        {
          st_put_le32 (req + len, ops[i].value);
          len += 4;
        }
    }
  if (!st_dap_probe_command (self->probe, req, len, resp, sizeof resp, &rlen, 3, error))
    {
      g_prefix_error (error, "DAP_Transfer: ");
      return FALSE;
    }
  *done = resp[1];
  *ack = resp[2];
  if (*done > n)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_READ,
                   "DAP_Transfer: the probe reports %u of %u transfers done", *done, n);
      return FALSE;
    }
  if (*done == n && (*ack & 0x7) != ST_DAP_ACK_OK)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_READ,
                   "DAP_Transfer: all %u transfers done but the last answered 0x%02x", n, *ack);
      return FALSE;
    }
  guint reads = 0;
  for (guint i = 0; i < *done; i++)
    if (ops[i].req & ST_DAP_RNW)
      reads++;
  if (rlen < 3 + 4 * (gsize) reads)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_READ,
                   "DAP_Transfer: %u reads done but only %" G_GSIZE_FORMAT " answer bytes", reads, rlen);
      return FALSE;
    }
  for (guint i = 0; i < reads; i++)
    rdata[i] = st_get_le32 (resp + 3 + 4 * i);
  return TRUE;
}

static const char *
st_swd_ack_name (guint8 ack)
{
  switch (ack & 0x7)
    {
    case ST_DAP_ACK_OK: return "OK";
    case ST_DAP_ACK_WAIT: return "WAIT";
    case ST_DAP_ACK_FAULT: return "FAULT";
    case ST_DAP_ACK_NONE: return "no acknowledge";
    default: return "an invalid acknowledge";
    }
}

/* After a FAULT: what CTRL/STAT says, then clear every sticky bit. */
static gboolean
st_swd_clear_sticky (StSwd *self, guint32 *ctrl_stat, GError **error)
{
  StSwdOp ops[2] = {
    { ST_DAP_RNW | ST_DP_CTRL_STAT, 0 },
    { ST_DP_ABORT, ST_DP_ABORT_CLEAR_ALL },
  };
  guint32 v = 0;
  guint done = 0;
  guint8 ack = 0;
  if (!st_swd_transfer_once (self, ops, 2, &v, &done, &ack, error))
    return FALSE;
  if (done != 2)
    {
      g_set_error (error, ST_ERROR, (ack & 7) == ST_DAP_ACK_NONE ? ST_ERROR_TIMED_OUT : ST_ERROR_READ,
                   "clearing the sticky errors through ABORT: the target answered %s",
                   st_swd_ack_name (ack));
      return FALSE;
    }
  *ctrl_stat = v;
  return TRUE;
}

/* Decides what to do after a transfer stopped with @ack: TRUE to retry the
 * rest, FALSE (error set) to give up. */
static gboolean
st_swd_recover (StSwd *self, guint8 ack, guint *waits, guint *faults, const char *what,
                GError **error)
{
  StDapStats *stats = st_dap_probe_get_stats (self->probe);
  if (ack & ST_DAP_PROTOCOL_ERROR)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_READ,
                   "%s: SWD protocol error (parity or framing): check the wiring, the ground "
                   "connection and the SWD clock", what);
      return FALSE;
    }
  switch (ack & 0x7)
    {
    case ST_DAP_ACK_WAIT:
      if (*waits >= ST_SWD_WAIT_RETRIES)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_BUSY,
                       "%s: the target answered WAIT %u times in a row: it is stalled (a flash "
                       "operation, a clock stopped in a low-power mode); reset it", what, *waits + 1);
          return FALSE;
        }
      (*waits)++;
      stats->n_retries++;
      g_usleep (100 * *waits);
      return TRUE;
    case ST_DAP_ACK_FAULT:
      {
        guint32 cs = 0;
        if (!st_swd_clear_sticky (self, &cs, error))
          {
            g_prefix_error (error, "%s: after FAULT: ", what);
            return FALSE;
          }
        if (*faults >= ST_SWD_FAULT_RETRIES)
          {
            g_set_error (error, ST_ERROR, ST_ERROR_READ,
                         "%s: the target answered FAULT again after its sticky errors were cleared "
                         "(CTRL/STAT 0x%08x:%s%s%s%s): the address is not accessible (a bus error) "
                         "or the debug domain lost power", what, cs,
                         cs & ST_DP_STICKYERR ? " STICKYERR" : "", cs & ST_DP_STICKYORUN ? " STICKYORUN" : "",
                         cs & ST_DP_STICKYCMP ? " STICKYCMP" : "", cs & ST_DP_WDATAERR ? " WDATAERR" : "");
            return FALSE;
          }
        g_debug ("%s: FAULT (CTRL/STAT 0x%08x); sticky errors cleared, retrying", what, cs);
        (*faults)++;
        stats->n_retries++;
        return TRUE;
      }
    case ST_DAP_ACK_NONE:
      g_set_error (error, ST_ERROR, ST_ERROR_TIMED_OUT,
                   "%s: no target answers on SWD (no acknowledge): the socket is empty, the "
                   "target has no power, or SWDIO/SWCLK are not connected", what);
      return FALSE;
    default:
      g_set_error (error, ST_ERROR, ST_ERROR_READ, "%s: the probe reports acknowledge 0x%02x",
                   what, ack);
      return FALSE;
    }
}

/* @n requests with WAIT and FAULT handling; the read values go to @rdata. */
static gboolean
st_swd_transfer (StSwd *self, const StSwdOp *ops, guint n, guint32 *rdata, const char *what,
                 GError **error)
{
  guint at = 0, reads_at = 0, waits = 0, faults = 0;
  while (at < n)
    {
      guint done = 0;
      guint8 ack = 0;
      if (!st_swd_transfer_once (self, ops + at, n - at, rdata != NULL ? rdata + reads_at : NULL,
                                 &done, &ack, error))
        {
          g_prefix_error (error, "%s: ", what);
          return FALSE;
        }
      for (guint i = at; i < at + done; i++)
        if (ops[i].req & ST_DAP_RNW)
          reads_at++;
      at += done;
      if (at == n)
        return TRUE;
      g_debug ("%s: stopped at %u of %u, ack 0x%02x", what, at, n, ack);
      if (done > 0)
        waits = faults = 0;   /* the retry budget is per access */
      if (!st_swd_recover (self, ack, &waits, &faults, what, error))
        return FALSE;
    }
  return TRUE;
}

static StSwdOp
st_op_dp (gboolean read, guint8 reg, guint32 value)
{
  StSwdOp op = { (guint8) ((read ? ST_DAP_RNW : 0) | (reg & 0xC)), value };
  return op;
}

static StSwdOp
st_op_ap (gboolean read, guint8 reg, guint32 value)
{
  StSwdOp op = { (guint8) (ST_DAP_APNDP | (read ? ST_DAP_RNW : 0) | (reg & 0xC)), value };
  return op;
}

gboolean
st_swd_attach (StSwd *self, guint32 *dpidr, GError **error)
{
  /* >= 50 ones (line reset), the JTAG-to-SWD select 0xE79E (LSB first),
   * a line reset again, then idle cycles: 136 bits. */
  static const guint8 seq[17] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x9e, 0xe7,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00,
  };
  if (!st_dap_probe_swj_sequence (self->probe, 8 * sizeof seq, seq, error))
    return FALSE;
  /* DPIDR must be read first after a line reset. */
  StSwdOp ops[4] = {
    st_op_dp (TRUE, ST_DP_DPIDR, 0),
    st_op_dp (FALSE, ST_DP_ABORT, ST_DP_ABORT_CLEAR_ALL),
    st_op_dp (FALSE, ST_DP_SELECT, 0),              /* AP 0, bank 0 */
    st_op_dp (FALSE, ST_DP_CTRL_STAT, ST_DP_CDBGPWRUPREQ | ST_DP_CSYSPWRUPREQ),
  };
  guint32 id = 0;
  if (!st_swd_transfer (self, ops, G_N_ELEMENTS (ops), &id, "reading DPIDR and powering up", error))
    return FALSE;
  *dpidr = id;
  guint32 cs = 0;
  for (guint i = 0;; i++)
    {
      StSwdOp rd = st_op_dp (TRUE, ST_DP_CTRL_STAT, 0);
      if (!st_swd_transfer (self, &rd, 1, &cs, "reading CTRL/STAT", error))
        return FALSE;
      if ((cs & (ST_DP_CDBGPWRUPACK | ST_DP_CSYSPWRUPACK)) == (ST_DP_CDBGPWRUPACK | ST_DP_CSYSPWRUPACK))
        break;
      if (i + 1 >= ST_SWD_POWERUP_POLLS)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_READ,
                       "the debug port does not acknowledge the power-up request (CTRL/STAT 0x%08x, "
                       "CDBGPWRUPACK %u, CSYSPWRUPACK %u): the target is held in reset or in a "
                       "deep low-power mode", cs, (cs >> 29) & 1, cs >> 31);
          return FALSE;
        }
      g_usleep (1000);
    }
  StSwdOp csw[2] = { st_op_ap (FALSE, ST_AP_CSW, ST_AP_CSW_VALUE), st_op_ap (TRUE, ST_AP_CSW, 0) };
  guint32 got = 0;
  if (!st_swd_transfer (self, csw, 2, &got, "setting the MEM-AP CSW", error))
    return FALSE;
  if ((got & (ST_AP_CSW_SIZE_MASK | ST_AP_CSW_ADDRINC_MASK)) !=
      (ST_AP_CSW_VALUE & (ST_AP_CSW_SIZE_MASK | ST_AP_CSW_ADDRINC_MASK)))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                   "AP 0 does not take 32-bit auto-incrementing access (CSW reads 0x%08x): it is "
                   "not an AHB-AP of a Cortex-M", got);
      return FALSE;
    }
  return TRUE;
}

gboolean
st_swd_read32 (StSwd *self, guint32 address, guint32 *value, GError **error)
{
  StSwdOp ops[2] = { st_op_ap (FALSE, ST_AP_TAR, address), st_op_ap (TRUE, ST_AP_DRW, 0) };
  g_autofree gchar *what = g_strdup_printf ("reading 0x%08x", address);
  return st_swd_transfer (self, ops, 2, value, what, error);
}

gboolean
st_swd_write32 (StSwd *self, guint32 address, guint32 value, GError **error)
{
  StSwdOp ops[2] = { st_op_ap (FALSE, ST_AP_TAR, address), st_op_ap (FALSE, ST_AP_DRW, value) };
  g_autofree gchar *what = g_strdup_printf ("writing 0x%08x", address);
  return st_swd_transfer (self, ops, 2, NULL, what, error);
}

/* Words that fit before the next 1 KiB boundary from @address. */
static guint
st_swd_words_to_boundary (guint32 address)
{
  return (ST_SWD_TAR_WRAP - (address & (ST_SWD_TAR_WRAP - 1))) / 4;
}

gboolean
st_swd_read_mem (StSwd *self, guint32 address, guint8 *buf, gsize len, GError **error)
{
  if (len == 0)
    return TRUE;
  guint64 start = address & ~3u, end = ((guint64) address + len + 3) & ~(guint64) 3;
  if (len > ST_SWD_MEM_MAX || end > G_MAXUINT32 + (guint64) 1)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "a read of %" G_GSIZE_FORMAT " bytes at 0x%08x is outside the address space",
                   len, address);
      return FALSE;
    }
  gsize words = (gsize) ((end - start) / 4);
  /* A DAP_Transfer answer holds 3 bytes and 4 per read; one request is TAR. */
  gsize per_packet = MIN ((st_dap_probe_get_packet_size (self->probe) - 3) / 4, (gsize) ST_SWD_MAX_OPS - 1);
  g_autofree guint32 *w = g_new (guint32, words);
  StSwdOp ops[ST_SWD_MAX_OPS];
  for (gsize done = 0; done < words;)
    {
      guint32 a = (guint32) (start + 4 * done);
      gsize n = MIN (MIN (words - done, per_packet), (gsize) st_swd_words_to_boundary (a));
      ops[0] = st_op_ap (FALSE, ST_AP_TAR, a);
      for (gsize i = 0; i < n; i++)
        ops[1 + i] = st_op_ap (TRUE, ST_AP_DRW, 0);
      g_autofree gchar *what = g_strdup_printf ("reading %" G_GSIZE_FORMAT " words at 0x%08x", n, a);
      if (!st_swd_transfer (self, ops, (guint) n + 1, w + done, what, error))
        return FALSE;
      done += n;
    }
  for (gsize i = 0; i < len; i++)
    {
      gsize k = i + (address - (guint32) start);
      buf[i] = (guint8) (w[k / 4] >> (8 * (k % 4)));
    }
  return TRUE;
}

/* One DAP_TransferBlock of @n word writes to DRW; @done as the probe said. */
static gboolean
st_swd_block_write_once (StSwd *self, const guint8 *data, guint n, guint *done, guint8 *ack,
                         GError **error)
{
  g_autofree guint8 *req = g_malloc (5 + 4 * (gsize) n);
  guint8 resp[8];
  gsize rlen = 0;
  req[0] = ST_DAP_TRANSFER_BLOCK;
  req[1] = 0;
  req[2] = (guint8) n;
  req[3] = (guint8) (n >> 8);
  req[4] = ST_DAP_APNDP | ST_AP_DRW;
  memcpy (req + 5, data, 4 * (gsize) n);
  if (!st_dap_probe_command (self->probe, req, 5 + 4 * (gsize) n, resp, sizeof resp, &rlen, 4, error))
    {
      g_prefix_error (error, "DAP_TransferBlock: ");
      return FALSE;
    }
  *done = (guint) resp[1] | (guint) resp[2] << 8;
  *ack = resp[3];
  if (*done > n || (*done == n && (*ack & 7) != ST_DAP_ACK_OK))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_READ,
                   "DAP_TransferBlock: the probe reports %u of %u writes done, acknowledge 0x%02x",
                   *done, n, *ack);
      return FALSE;
    }
  return TRUE;
}

gboolean
st_swd_write_mem (StSwd *self, guint32 address, const guint8 *data, gsize len, GError **error)
{
  if ((address & 3) != 0 || (len & 3) != 0 || len > ST_SWD_MEM_MAX ||
      (guint64) address + len > G_MAXUINT32 + (guint64) 1)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "a word write needs a 4-aligned address and length inside the address space "
                   "(0x%08x, %" G_GSIZE_FORMAT " bytes)", address, len);
      return FALSE;
    }
  gsize words = len / 4;
  gsize per_packet = (st_dap_probe_get_packet_size (self->probe) - 5) / 4;
  guint waits = 0, faults = 0;
  /* TAR as the last block left it, while known: one write fewer per block. */
  gboolean tar_valid = FALSE;
  guint32 tar = 0;
  for (gsize done = 0; done < words;)
    {
      guint32 a = (guint32) (address + 4 * done);
      gsize n = MIN (MIN (words - done, per_packet), (gsize) st_swd_words_to_boundary (a));
      g_autofree gchar *what = g_strdup_printf ("writing %" G_GSIZE_FORMAT " words at 0x%08x", n, a);
      if (!tar_valid || tar != a)
        {
          StSwdOp set_tar = st_op_ap (FALSE, ST_AP_TAR, a);
          if (!st_swd_transfer (self, &set_tar, 1, NULL, what, error))
            return FALSE;
        }
      guint got = 0;
      guint8 ack = 0;
      if (!st_swd_block_write_once (self, data + 4 * done, (guint) n, &got, &ack, error))
        {
          g_prefix_error (error, "%s: ", what);
          return FALSE;
        }
      done += got;
      tar = (guint32) (a + 4 * got);
      /* Past a 1 KiB boundary TAR may have wrapped: set it again. */
      tar_valid = (tar & (ST_SWD_TAR_WRAP - 1)) != 0;
      if (got > 0)
        waits = faults = 0;   /* the retry budget is per access */
      if (got == n)
        continue;
      tar_valid = FALSE;   /* recovery may have written ABORT or reset the DP */
      if (!st_swd_recover (self, ack, &waits, &faults, what, error))
        return FALSE;
    }
  return TRUE;
}
