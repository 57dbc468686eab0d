/* The cmsis-dap backend (st-cmsis-dap.h): the STM32F4 flash controller
 * over SWD, under the passive core. */
#include "st-cmsis-dap.h"

#include <string.h>

#include "st-backend-private.h"
#include "st-error.h"
#include "st-passive.h"

typedef struct {
  gchar *serial;
  gchar *port;               /* for messages */
  StDapProbe *probe;
  StSwd *swd;
  StDapStats before;         /* the counters of probes closed earlier */
} StDapLink;

/* ---- the STM32F4 flash controller (RM0090 3.5-3.6) ---- */

/* What an error bit means and what to do. */
static gboolean
st_f4_check_errors (guint32 sr, const char *what, GError **error)
{
  static const struct { guint32 bit; const char *name; int code; const char *meaning; } bits[] = {
    { ST_F4_SR_WRPERR, "WRPERR", ST_ERROR_PERMISSION_DENIED,
      "write protection error: the sector is write-protected by the option bytes (nWRP); "
      "remove the protection with STM32CubeProgrammer before provisioning" },
    { ST_F4_SR_PGAERR, "PGAERR", ST_ERROR_INVALID_DATA,
      "programming alignment error: a write did not fit the flash programming width" },
    { ST_F4_SR_PGPERR, "PGPERR", ST_ERROR_INVALID_DATA,
      "programming parallelism error: the write size differs from PSIZE (x32 needs a 2.7-3.6 V supply)" },
    { ST_F4_SR_PGSERR, "PGSERR", ST_ERROR_INVALID_DATA,
      "programming sequence error: flash was written without PG set or erased without SER" },
    { ST_F4_SR_OPERR, "OPERR", ST_ERROR_INVALID_DATA, "operation error" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bits); i++)
    if (sr & bits[i].bit)
      {
        g_set_error (error, ST_ERROR, bits[i].code,
                     "%s: the flash controller set %s (FLASH_SR 0x%08x), a %s; put the device "
                     "aside if it happens again", what, bits[i].name, sr, bits[i].meaning);
        return FALSE;
      }
  return TRUE;
}

/* Polls FLASH_SR until BSY clears, within @timeout_ms. */
static gboolean
st_f4_wait_idle (StDapLink *self, guint timeout_ms, guint32 *sr, const char *what, GError **error)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  for (guint polls = 0;; polls++)
    {
      if (!st_swd_read32 (self->swd, ST_F4_FLASH_SR, sr, error))
        return FALSE;
      if ((*sr & ST_F4_SR_BSY) == 0)
        return TRUE;
      if (g_get_monotonic_time () > deadline)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_BUSY,
                       "%s: the flash controller stayed busy (BSY) for %u ms: reset the device",
                       what, timeout_ms);
          return FALSE;
        }
      if (polls >= 8)
        g_usleep (1000);
    }
}

/* Waits for !BSY, unlocks FLASH_CR with the key sequence, clears old error bits. */
static gboolean
st_f4_unlock (StDapLink *self, GError **error)
{
  guint32 sr = 0, cr = 0;
  if (!st_f4_wait_idle (self, ST_F4_PROGRAM_TIMEOUT_MS, &sr, "before unlocking", error) ||
      !st_swd_read32 (self->swd, ST_F4_FLASH_CR, &cr, error))
    return FALSE;
  if (cr & ST_F4_CR_LOCK)
    {
      if (!st_swd_write32 (self->swd, ST_F4_FLASH_KEYR, ST_F4_FLASH_KEY1, error) ||
          !st_swd_write32 (self->swd, ST_F4_FLASH_KEYR, ST_F4_FLASH_KEY2, error) ||
          !st_swd_read32 (self->swd, ST_F4_FLASH_CR, &cr, error))
        return FALSE;
      if (cr & ST_F4_CR_LOCK)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                       "the flash controller stays locked after the key sequence (FLASH_CR "
                       "0x%08x): a wrong key locks it until the next reset; power-cycle the device",
                       cr);
          return FALSE;
        }
    }
  if (sr & (ST_F4_SR_ERRORS | ST_F4_SR_EOP))
    return st_swd_write32 (self->swd, ST_F4_FLASH_SR, sr & (ST_F4_SR_ERRORS | ST_F4_SR_EOP), error);
  return TRUE;
}

/* LOCK again, also after an error (whose bits are cleared first). */
static void
st_f4_lock (StDapLink *self)
{
  g_autoptr(GError) local = NULL;
  guint32 sr = 0;
  if (st_swd_read32 (self->swd, ST_F4_FLASH_SR, &sr, &local) &&
      (sr & ST_F4_SR_ERRORS) != 0)
    st_swd_write32 (self->swd, ST_F4_FLASH_SR, sr & ST_F4_SR_ERRORS, &local);
  g_clear_error (&local);
  if (!st_swd_write32 (self->swd, ST_F4_FLASH_CR, ST_F4_CR_LOCK, &local))
    g_debug ("locking the flash controller: %s", local->message);
}

/* Erases sectors [first, first + count): FLASH_CR unlocked. */
static gboolean
st_f4_erase (StDapLink *self, const StTarget *target, guint first, guint count, GError **error)
{
  gboolean ok = TRUE;
  for (guint s = first; ok && s < first + count; s++)
    {
      g_autofree gchar *what = g_strdup_printf ("erasing sector %u (0x%08x)", s,
                                                s < target->n_sectors ? target->sectors[s].address : 0);
      guint32 cr = ST_F4_CR_PSIZE_X32 | ST_F4_CR_SER | (s << ST_F4_CR_SNB_SHIFT), sr = 0;
      if (s >= target->n_sectors || s > 11)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "%s: no such sector", what);
          return FALSE;
        }
      ok = st_swd_write32 (self->swd, ST_F4_FLASH_CR, cr, error) &&
           st_swd_write32 (self->swd, ST_F4_FLASH_CR, cr | ST_F4_CR_STRT, error) &&
           st_f4_wait_idle (self, ST_F4_SECTOR_ERASE_TIMEOUT_MS, &sr, what, error) &&
           st_f4_check_errors (sr, what, error);
    }
  return ok;
}

/* Programs @data at @address, 32 bits at a time: FLASH_CR unlocked. */
static gboolean
st_f4_program (StDapLink *self, guint32 address, const guint8 *data, gsize len, GError **error)
{
  gboolean ok = st_swd_write32 (self->swd, ST_F4_FLASH_CR, ST_F4_CR_PSIZE_X32 | ST_F4_CR_PG, error);
  /* 1 KiB at a time, checking the status after each. */
  for (gsize off = 0; ok && off < len; off += ST_SWD_TAR_WRAP)
    {
      gsize n = MIN ((gsize) ST_SWD_TAR_WRAP, len - off);
      guint32 sr = 0;
      g_autofree gchar *what = g_strdup_printf ("programming %" G_GSIZE_FORMAT " bytes at 0x%08x",
                                                n, (guint32) (address + off));
      ok = st_swd_write_mem (self->swd, (guint32) (address + off), data + off, n, error) &&
           st_f4_wait_idle (self, ST_F4_PROGRAM_TIMEOUT_MS, &sr, what, error) &&
           st_f4_check_errors (sr, what, error);
    }
  return ok;
}

/* ---- the passive ops ---- */

static StDapLink *
st_dap_self (gpointer data)
{
  return data;
}

static void
st_dap_link_close (gpointer data)
{
  StDapLink *self = st_dap_self (data);
  if (self->probe != NULL)
    {
      StDapStats *s = st_dap_probe_get_stats (self->probe);
      self->before.n_packets += s->n_packets;
      self->before.n_retries += s->n_retries;
      self->before.bytes_tx += s->bytes_tx;
      self->before.bytes_rx += s->bytes_rx;
    }
  g_clear_pointer (&self->swd, st_swd_free);
  g_clear_pointer (&self->probe, st_dap_probe_free);
}

static gboolean
st_dap_link_open (gpointer data, StBackend *backend, GError **error)
{
  StDapLink *self = st_dap_self (data);
  self->probe = st_dap_probe_open (self->serial, backend->params.timeout_ms, backend->cancellable, error);
  if (self->probe == NULL)
    {
      g_prefix_error (error, "%s: ", self->port);
      return FALSE;
    }
  /* 2 idle cycles after a transfer, the probe retries WAIT 80 times. */
  if (!st_dap_probe_swj_clock (self->probe, ST_DAP_SWD_CLOCK_HZ, error) ||
      !st_dap_probe_transfer_configure (self->probe, 2, 80, 0, error))
    {
      g_prefix_error (error, "%s: ", self->port);
      st_dap_link_close (self);
      return FALSE;
    }
  self->swd = st_swd_new (self->probe);
  return TRUE;
}

static gboolean
st_dap_link_is_open (gpointer data)
{
  return st_dap_self (data)->swd != NULL;
}

static gboolean
st_dap_link_identify (gpointer data, guint16 *device_id, gchar *version, gsize version_size,
                      GError **error)
{
  StDapLink *self = st_dap_self (data);
  guint32 dpidr = 0, idcode = 0;
  if (!st_swd_attach (self->swd, &dpidr, error) ||
      !st_swd_read32 (self->swd, ST_F4_DBGMCU_IDCODE, &idcode, error))
    {
      g_prefix_error (error, "%s: ", self->port);
      return FALSE;
    }
  *device_id = (guint16) (idcode & 0xfff);
  g_snprintf (version, version_size, "SWD DPIDR 0x%08x rev 0x%04x", dpidr, idcode >> 16);
  return TRUE;
}

static gboolean
st_dap_link_read (gpointer data, guint32 address, guint8 *buf, gsize len, GError **error)
{
  StDapLink *self = st_dap_self (data);
  if (st_swd_read_mem (self->swd, address, buf, len, error))
    return TRUE;
  g_prefix_error (error, "%s: ", self->port);
  return FALSE;
}

/* Unlocks FLASH_CR once, erases, programs, and locks it again (also after
 * an error). */
static gboolean
st_dap_link_program (gpointer data, const StTarget *target, guint first, guint count,
                     guint32 address, const guint8 *buf, gsize len, GError **error)
{
  StDapLink *self = st_dap_self (data);
  gboolean ok = st_f4_unlock (self, error) && st_f4_erase (self, target, first, count, error) &&
                st_f4_program (self, address, buf, len, error);
  st_f4_lock (self);
  if (!ok)
    g_prefix_error (error, "%s: ", self->port);
  return ok;
}

/* The application starts from the reset vector (BOOT0 low: flash at 0):
 * a system reset through AIRCR; the debug domain keeps its power. */
static gboolean
st_dap_link_go (gpointer data, guint32 address, GError **error)
{
  StDapLink *self = st_dap_self (data);
  (void) address;
  if (st_swd_write32 (self->swd, ST_CM_AIRCR, ST_CM_AIRCR_SYSRESETREQ, error))
    return TRUE;
  g_prefix_error (error, "%s: system reset (AIRCR SYSRESETREQ): ", self->port);
  return FALSE;
}

static void
st_dap_link_update_counters (gpointer data, StBackend *backend)
{
  StDapLink *self = st_dap_self (data);
  StDapStats all = self->before;
  if (self->probe != NULL)
    {
      StDapStats *s = st_dap_probe_get_stats (self->probe);
      all.n_packets += s->n_packets;
      all.n_retries += s->n_retries;
      all.bytes_tx += s->bytes_tx;
      all.bytes_rx += s->bytes_rx;
    }
  backend->n_requests = all.n_packets;
  backend->n_retries = all.n_retries;
  backend->bytes_tx = all.bytes_tx;
  backend->bytes_rx = all.bytes_rx;
}

static void
st_dap_link_free (gpointer data)
{
  StDapLink *self = st_dap_self (data);
  st_dap_link_close (self);
  g_free (self->serial);
  g_free (self->port);
  g_free (self);
}

static const StPassiveOps st_dap_ops = {
  .descriptor = &st_backend_cmsis_dap,
  .max_payload = 1024,
  .open = st_dap_link_open,
  .close = st_dap_link_close,
  .is_open = st_dap_link_is_open,
  .identify = st_dap_link_identify,
  .read = st_dap_link_read,
  .program = st_dap_link_program,
  .go = st_dap_link_go,
  .update_counters = st_dap_link_update_counters,
  .free = st_dap_link_free,
};

StBackend *
st_cmsis_dap_backend_new (const char *port, const char *serial, const StLinkParams *params,
                          GCancellable *cancellable, GError **error)
{
  if (serial != NULL && (strlen (serial) > ST_DAP_SERIAL_MAX || !g_utf8_validate (serial, -1, NULL)))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "port '%s': a probe serial is at most %d characters of text", port,
                   ST_DAP_SERIAL_MAX);
      return NULL;
    }
  StDapLink *link = g_new0 (StDapLink, 1);
  link->serial = g_strdup (serial != NULL ? serial : "");
  link->port = g_strdup (port);
  return st_passive_backend_new (port, params, cancellable, &st_dap_ops, link);
}

const StBackendDescriptor st_backend_cmsis_dap = {
  .scheme = "cmsis-dap",
  .usage = "cmsis-dap:SERIAL",
  .description = "a passive STM32F4 over SWD through the CMSIS-DAP v2 probe SERIAL "
                 "(empty: the only probe)",
  .example = "cmsis-dap:0123456789",
  .needs_path = FALSE,
  .capabilities = ST_PASSIVE_BACKEND_CAPS,
  .new = st_cmsis_dap_backend_new,
};

StSwd *
st_cmsis_dap_backend_get_swd (StBackend *backend)
{
  StDapLink *self = st_passive_backend_get_link (backend, &st_dap_ops);
  g_return_val_if_fail (self != NULL, NULL);
  return self->swd;
}

guint64
st_cmsis_dap_backend_get_n_packets (StBackend *backend)
{
  StDapLink *self = st_passive_backend_get_link (backend, &st_dap_ops);
  g_return_val_if_fail (self != NULL, 0);
  st_dap_link_update_counters (self, backend);
  return backend->n_requests;
}
