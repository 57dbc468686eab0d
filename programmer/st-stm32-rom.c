/* The stm32-rom backend: ST AN3155 USART bootloader (st-stm32-rom.h). */
#include "st-stm32-rom.h"

#include <string.h>

#include "st-backend-private.h"
#include "st-passive.h"
#include "st-error.h"
#include "st-util.h"

#define ST_ROM_RESYNC_PAIRS 160        /* > a 256-byte WRITE data phase, in pairs */
#define ST_ROM_RESYNC_WAIT_MS 40
#define ST_ROM_MAX_COMMANDS 32

/* ---- the link ---- */

struct _StRomLink {
  StTransport *transport;
  guint timeout_ms;
  guint retries;
  GCancellable *cancellable;
  StRomLinkStats stats;
};

StRomLink *
st_rom_link_new (StTransport *transport, guint timeout_ms, guint retries, GCancellable *cancellable)
{
  g_return_val_if_fail (transport != NULL, NULL);
  StRomLink *link = g_new0 (StRomLink, 1);
  link->transport = transport;
  link->timeout_ms = timeout_ms > 0 ? timeout_ms : 1000;
  link->retries = retries;
  link->cancellable = cancellable != NULL ? g_object_ref (cancellable) : NULL;
  return link;
}

void
st_rom_link_free (StRomLink *link)
{
  if (link == NULL)
    return;
  st_transport_free (link->transport);
  g_clear_object (&link->cancellable);
  g_free (link);
}

const StRomLinkStats *
st_rom_link_get_stats (StRomLink *link)
{
  return &link->stats;
}

static gint64
st_rom_deadline (guint ms)
{
  return g_get_monotonic_time () + (gint64) ms * 1000;
}

gboolean
st_rom_link_send_raw (StRomLink *link, const guint8 *data, gsize len, GError **error)
{
  if (!st_transport_write_all (link->transport, data, len, st_rom_deadline (link->timeout_ms + len),
                               link->cancellable, error))
    return FALSE;
  link->stats.bytes_tx += len;
  return TRUE;
}

/* Exactly @len bytes before @deadline. */
static gboolean
st_rom_recv (StRomLink *link, guint8 *buf, gsize len, gint64 deadline, GError **error)
{
  gsize have = 0;
  while (have < len)
    {
      gsize n = 0;
      if (!st_transport_read (link->transport, buf + have, len - have, &n, deadline,
                              link->cancellable, error))
        {
          if (have > 0)
            g_prefix_error (error, "%" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " answer bytes: ", have, len);
          return FALSE;
        }
      have += n;
      link->stats.bytes_rx += n;
    }
  return TRUE;
}

gboolean
st_rom_link_read_byte (StRomLink *link, guint8 *byte, guint timeout_ms, GError **error)
{
  return st_rom_recv (link, byte, 1, st_rom_deadline (timeout_ms), error);
}

/* One ACK; NACK gives ST_ERROR_INVALID_DATA ("NACK"), another byte READ. */
static gboolean
st_rom_expect_ack (StRomLink *link, guint timeout_ms, const char *what, GError **error)
{
  guint8 b = 0;
  if (!st_rom_recv (link, &b, 1, st_rom_deadline (timeout_ms), error))
    {
      g_prefix_error (error, "no ACK to %s: ", what);
      return FALSE;
    }
  if (b == ST_ROM_ACK)
    return TRUE;
  if (b == ST_ROM_NACK)
    {
      link->stats.n_nacks++;
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "the bootloader answered NACK to %s", what);
      return FALSE;
    }
  g_set_error (error, ST_ERROR, ST_ERROR_READ, "the bootloader answered 0x%02x, not ACK, to %s", b, what);
  return FALSE;
}

static gboolean
st_rom_send_command (StRomLink *link, guint8 cmd, GError **error)
{
  guint8 b[2] = { cmd, (guint8) (cmd ^ 0xff) };
  g_autofree gchar *what = g_strdup_printf ("command 0x%02x", cmd);
  link->stats.n_commands++;
  return st_rom_link_send_raw (link, b, sizeof b, error) &&
         st_rom_expect_ack (link, link->timeout_ms, what, error);
}

static gboolean
st_rom_send_address (StRomLink *link, guint32 address, GError **error)
{
  guint8 b[5] = { (guint8) (address >> 24), (guint8) (address >> 16), (guint8) (address >> 8),
                  (guint8) address, 0 };
  b[4] = b[0] ^ b[1] ^ b[2] ^ b[3];
  g_autofree gchar *what = g_strdup_printf ("address 0x%08x", address);
  return st_rom_link_send_raw (link, b, sizeof b, error) &&
         st_rom_expect_ack (link, link->timeout_ms, what, error);
}

gboolean
st_rom_link_sync (StRomLink *link, gboolean *fresh, GError **error)
{
  guint8 sync = ST_ROM_SYNC, b = 0;
  *fresh = FALSE;
  st_transport_discard_input (link->transport);
  for (guint attempt = 0; attempt < 2; attempt++)
    {
      g_autoptr(GError) local = NULL;
      if (!st_rom_link_send_raw (link, &sync, 1, error))
        return FALSE;
      if (!st_rom_recv (link, &b, 1, st_rom_deadline (link->timeout_ms), &local))
        {
          if (!g_error_matches (local, ST_ERROR, ST_ERROR_TIMED_OUT))
            {
              g_propagate_error (error, g_steal_pointer (&local));
              return FALSE;
            }
          /* A synchronised bootloader took 0x7F as a command byte and waits
           * for its complement: the second 0x7F is answered NACK. */
          continue;
        }
      if (b == ST_ROM_ACK)
        {
          /* Only autobaud answers 0x7F with ACK: a fresh device, whether
           * it took the first 0x7F or (still starting) the second. */
          *fresh = TRUE;
          return TRUE;
        }
      if (b == ST_ROM_NACK)
        return TRUE;
      g_set_error (error, ST_ERROR, ST_ERROR_READ,
                   "%s: the device answered 0x%02x to the bootloader sync 0x7F: not an STM32 "
                   "ROM bootloader, or the wrong baud rate or parity",
                   st_transport_get_name (link->transport), b);
      return FALSE;
    }
  g_set_error (error, ST_ERROR, ST_ERROR_TIMED_OUT,
               "%s: no STM32 bootloader answered the sync byte 0x7F (socket empty, BOOT0 low, "
               "or TX/RX swapped)", st_transport_get_name (link->transport));
  return FALSE;
}

/* Drops what arrives until the line is quiet for a re-sync wait. */
static gboolean
st_rom_drain (StRomLink *link, GError **error)
{
  for (guint i = 0; i < 1024; i++)
    {
      guint8 b = 0;
      g_autoptr(GError) local = NULL;
      if (!st_rom_recv (link, &b, 1, st_rom_deadline (ST_ROM_RESYNC_WAIT_MS), &local))
        {
          if (g_error_matches (local, ST_ERROR, ST_ERROR_TIMED_OUT))
            return TRUE;
          g_propagate_error (error, g_steal_pointer (&local));
          return FALSE;
        }
    }
  g_set_error (error, ST_ERROR, ST_ERROR_READ, "%s: the device does not stop talking",
               st_transport_get_name (link->transport));
  return FALSE;
}

/* After the NACK that ended a re-sync the bootloader waits for a command
 * byte, or (when the NACK came on the 0xFF of a pair) it holds the pair's
 * 0x00 as a command byte and waits for its complement. One 0xFF tells them
 * apart: complementing 0x00 it runs GET (harmless, it answers), as a command
 * byte it waits, and the 0x00 that follows gets the NACK of an unknown
 * command. Either way the bootloader is back at a command boundary. */
static gboolean
st_rom_realign (StRomLink *link, GError **error)
{
  const guint8 ff = 0xff, zero = 0x00;
  if (!st_rom_drain (link, error) || !st_rom_link_send_raw (link, &ff, 1, error))
    return FALSE;
  guint8 b = 0;
  g_autoptr(GError) local = NULL;
  if (st_rom_recv (link, &b, 1, st_rom_deadline (ST_ROM_RESYNC_WAIT_MS), &local))
    return st_rom_drain (link, error);   /* it was GET's answer */
  if (!g_error_matches (local, ST_ERROR, ST_ERROR_TIMED_OUT))
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  g_clear_error (&local);
  if (!st_rom_link_send_raw (link, &zero, 1, error) ||
      !st_rom_recv (link, &b, 1, st_rom_deadline (link->timeout_ms), error))
    return FALSE;
  if (b != ST_ROM_NACK)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_READ,
                   "the bootloader answered 0x%02x, not NACK, to the re-sync command 0xFF", b);
      return FALSE;
    }
  return st_rom_drain (link, error);
}

gboolean
st_rom_link_resync (StRomLink *link, GError **error)
{
  /* Four pairs per wait: a bootloader inside a 256-byte WRITE comes back
   * within about 33 waits. */
  const guint8 pairs[8] = { 0xff, 0x00, 0xff, 0x00, 0xff, 0x00, 0xff, 0x00 };
  link->stats.n_resyncs++;
  st_transport_discard_input (link->transport);
  for (guint i = 0; i < ST_ROM_RESYNC_PAIRS; i += 4)
    {
      if (!st_rom_link_send_raw (link, pairs, sizeof pairs, error))
        return FALSE;
      /* Read what comes; a NACK means the bootloader is back at a command. */
      gint64 deadline = st_rom_deadline (ST_ROM_RESYNC_WAIT_MS);
      for (;;)
        {
          guint8 b = 0;
          g_autoptr(GError) local = NULL;
          if (!st_rom_recv (link, &b, 1, deadline, &local))
            {
              if (g_error_matches (local, ST_ERROR, ST_ERROR_TIMED_OUT))
                break;
              g_propagate_error (error, g_steal_pointer (&local));
              return FALSE;
            }
          if (b == ST_ROM_NACK)
            return st_rom_realign (link, error);
        }
    }
  g_set_error (error, ST_ERROR, ST_ERROR_TIMED_OUT,
               "%s: the bootloader did not come back to a command after %u re-sync attempts",
               st_transport_get_name (link->transport), ST_ROM_RESYNC_PAIRS);
  return FALSE;
}

/* Runs @op up to 1 + retries times, re-synchronising after every failure
 * that may be line trouble (time-out, NACK, a stray byte). */
typedef gboolean (*StRomOp) (StRomLink *link, gpointer data, GError **error);

static gboolean
st_rom_retry (StRomLink *link, StRomOp op, gpointer data, const char *what, GError **error)
{
  g_autoptr(GError) last = NULL;
  for (guint attempt = 0; attempt <= link->retries; attempt++)
    {
      g_clear_error (&last);
      if (attempt > 0)
        {
          link->stats.n_retries++;
          g_autoptr(GError) rs = NULL;
          if (!st_rom_link_resync (link, &rs))
            {
              if (g_error_matches (rs, ST_ERROR, ST_ERROR_CANCELLED))
                {
                  g_propagate_error (error, g_steal_pointer (&rs));
                  return FALSE;
                }
              g_debug ("%s: %s", what, rs->message);
            }
        }
      if (op (link, data, &last))
        return TRUE;
      if (g_error_matches (last, ST_ERROR, ST_ERROR_CANCELLED) ||
          g_error_matches (last, ST_ERROR, ST_ERROR_WRITE) ||
          (g_error_matches (last, ST_ERROR, ST_ERROR_READ) && strstr (last->message, "disconnected") != NULL))
        break;
      g_debug ("%s: attempt %u: %s", what, attempt + 1, last->message);
    }
  g_propagate_prefixed_error (error, g_steal_pointer (&last), "%s: %s: ",
                              st_transport_get_name (link->transport), what);
  return FALSE;
}

typedef struct {
  guint8 *version;
  guint8 *commands;
  gsize max;
  gsize *n;
} StRomGet;

static gboolean
st_rom_op_get (StRomLink *link, gpointer data, GError **error)
{
  StRomGet *g = data;
  guint8 n = 0;
  guint8 buf[256];
  if (!st_rom_send_command (link, ST_ROM_CMD_GET, error) ||
      !st_rom_recv (link, &n, 1, st_rom_deadline (link->timeout_ms), error) ||
      !st_rom_recv (link, buf, (gsize) n + 1, st_rom_deadline (link->timeout_ms), error) ||
      !st_rom_expect_ack (link, link->timeout_ms, "the end of GET", error))
    return FALSE;
  *g->version = buf[0];
  gsize count = MIN ((gsize) n, g->max);
  memcpy (g->commands, buf + 1, count);
  *g->n = count;
  return TRUE;
}

gboolean
st_rom_link_get (StRomLink *link, guint8 *version, guint8 *commands, gsize max_commands,
                 gsize *n_commands, GError **error)
{
  StRomGet g = { version, commands, max_commands, n_commands };
  return st_rom_retry (link, st_rom_op_get, &g, "GET", error);
}

static gboolean
st_rom_op_get_id (StRomLink *link, gpointer data, GError **error)
{
  guint16 *id = data;
  guint8 n = 0, buf[256];
  if (!st_rom_send_command (link, ST_ROM_CMD_GET_ID, error) ||
      !st_rom_recv (link, &n, 1, st_rom_deadline (link->timeout_ms), error) ||
      !st_rom_recv (link, buf, (gsize) n + 1, st_rom_deadline (link->timeout_ms), error) ||
      !st_rom_expect_ack (link, link->timeout_ms, "the end of GET ID", error))
    return FALSE;
  if (n != 1)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "GET ID gave %u bytes, not 2", n + 1u);
      return FALSE;
    }
  *id = (guint16) (buf[0] << 8 | buf[1]);
  return TRUE;
}

gboolean
st_rom_link_get_id (StRomLink *link, guint16 *device_id, GError **error)
{
  return st_rom_retry (link, st_rom_op_get_id, device_id, "GET ID", error);
}

typedef struct {
  guint32 address;
  guint8 *buf;
  const guint8 *data;
  gsize len;
  guint timeout_ms;
} StRomBlock;

static gboolean
st_rom_op_read (StRomLink *link, gpointer data, GError **error)
{
  StRomBlock *b = data;
  guint8 n[2] = { (guint8) (b->len - 1), (guint8) ((b->len - 1) ^ 0xff) };
  return st_rom_send_command (link, ST_ROM_CMD_READ, error) &&
         st_rom_send_address (link, b->address, error) &&
         st_rom_link_send_raw (link, n, sizeof n, error) &&
         st_rom_expect_ack (link, link->timeout_ms, "the READ length", error) &&
         st_rom_recv (link, b->buf, b->len, st_rom_deadline (link->timeout_ms + b->len), error);
}

gboolean
st_rom_link_read (StRomLink *link, guint32 address, guint8 *buf, gsize len, GError **error)
{
  for (gsize off = 0; off < len; off += ST_ROM_BLOCK)
    {
      StRomBlock b = { .address = (guint32) (address + off), .buf = buf + off,
                       .len = MIN ((gsize) ST_ROM_BLOCK, len - off) };
      g_autofree gchar *what = g_strdup_printf ("READ MEMORY 0x%08x (%" G_GSIZE_FORMAT " bytes)",
                                                b.address, b.len);
      if (!st_rom_retry (link, st_rom_op_read, &b, what, error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
st_rom_op_write (StRomLink *link, gpointer data, GError **error)
{
  StRomBlock *b = data;
  guint8 frame[ST_ROM_BLOCK + 2];
  frame[0] = (guint8) (b->len - 1);
  memcpy (frame + 1, b->data, b->len);
  guint8 cs = frame[0];
  for (gsize i = 0; i < b->len; i++)
    cs ^= b->data[i];
  frame[b->len + 1] = cs;
  return st_rom_send_command (link, ST_ROM_CMD_WRITE, error) &&
         st_rom_send_address (link, b->address, error) &&
         st_rom_link_send_raw (link, frame, b->len + 2, error) &&
         st_rom_expect_ack (link, ST_ROM_WRITE_TIMEOUT_MS, "the WRITE data", error);
}

gboolean
st_rom_link_write (StRomLink *link, guint32 address, const guint8 *data, gsize len, GError **error)
{
  if ((address & 3) != 0 || (len & 3) != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "WRITE MEMORY needs a 4-aligned address and length (0x%08x, %" G_GSIZE_FORMAT ")",
                   address, len);
      return FALSE;
    }
  for (gsize off = 0; off < len; off += ST_ROM_BLOCK)
    {
      StRomBlock b = { .address = (guint32) (address + off), .data = data + off,
                       .len = MIN ((gsize) ST_ROM_BLOCK, len - off) };
      g_autofree gchar *what = g_strdup_printf ("WRITE MEMORY 0x%08x (%" G_GSIZE_FORMAT " bytes)",
                                                b.address, b.len);
      if (!st_rom_retry (link, st_rom_op_write, &b, what, error))
        return FALSE;
    }
  return TRUE;
}

typedef struct {
  const guint16 *sectors;
  guint n;
} StRomErase;

static gboolean
st_rom_op_erase (StRomLink *link, gpointer data, GError **error)
{
  StRomErase *e = data;
  g_autofree guint8 *frame = g_malloc (2 + 2 * (gsize) e->n + 1);
  gsize i = 0;
  frame[i++] = (guint8) ((e->n - 1) >> 8);
  frame[i++] = (guint8) (e->n - 1);
  for (guint k = 0; k < e->n; k++)
    {
      frame[i++] = (guint8) (e->sectors[k] >> 8);
      frame[i++] = (guint8) e->sectors[k];
    }
  guint8 cs = 0;
  for (gsize k = 0; k < i; k++)
    cs ^= frame[k];
  frame[i++] = cs;
  return st_rom_send_command (link, ST_ROM_CMD_EXT_ERASE, error) &&
         st_rom_link_send_raw (link, frame, i, error) &&
         st_rom_expect_ack (link, ST_ROM_SECTOR_ERASE_TIMEOUT_MS * e->n, "EXTENDED ERASE", error);
}

gboolean
st_rom_link_erase (StRomLink *link, const guint16 *sectors, guint n, GError **error)
{
  if (n == 0 || n > 0xfff0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "cannot erase %u sectors in one command", n);
      return FALSE;
    }
  StRomErase e = { sectors, n };
  return st_rom_retry (link, st_rom_op_erase, &e, "EXTENDED ERASE", error);
}

static gboolean
st_rom_op_go (StRomLink *link, gpointer data, GError **error)
{
  guint32 *address = data;
  return st_rom_send_command (link, ST_ROM_CMD_GO, error) &&
         st_rom_send_address (link, *address, error);
}

gboolean
st_rom_link_go (StRomLink *link, guint32 address, GError **error)
{
  /* Sent once: when its ACK is lost the application may already run, and
   * a retry would reach the application's UART instead. */
  if (st_rom_op_go (link, &address, error))
    return TRUE;
  g_prefix_error (error, "%s: GO 0x%08x: ", st_transport_get_name (link->transport), address);
  return FALSE;
}

/* ---- the backend: the passive core (st-passive.h) over AN3155 ---- */

typedef struct {
  gchar *path;
  gchar *port;               /* for messages */
  StRomLink *link;
  gboolean just_synced;      /* open synchronised; identify need not */
  gboolean fresh;
} StRomPort;

static void st_rom_port_update_counters (gpointer data, StBackend *backend);

static gboolean
st_rom_port_open (gpointer data, StBackend *backend, GError **error)
{
  StRomPort *self = data;
  g_autoptr(GError) perr = NULL;
  StTransport *t = st_serial_open (self->path, backend->params.baud, ST_PARITY_EVEN, &perr);
  if (t == NULL && g_error_matches (perr, ST_ERROR, ST_ERROR_WRITE) &&
      g_str_has_prefix (self->path, "/dev/pts/"))
    {
      /* A pseudo-terminal (a simulator) has no parity bit; some kernels
       * drop PARENB silently, some refuse it once set: the bytes are the
       * same either way. */
      g_debug ("%s: %s; a pseudo-terminal carries no parity: using 8N1", backend->port, perr->message);
      g_clear_error (&perr);
      t = st_serial_open (self->path, backend->params.baud, ST_PARITY_NONE, &perr);
    }
  if (t == NULL)
    {
      g_propagate_error (error, g_steal_pointer (&perr));
      return FALSE;
    }
  self->link = st_rom_link_new (t, backend->params.timeout_ms, backend->params.retries,
                                backend->cancellable);
  /* Two attempts: the first 0x7F after power-up may meet a bootloader
   * that is still starting. */
  g_autoptr(GError) local = NULL;
  for (guint attempt = 0; attempt < 2; attempt++)
    {
      g_clear_error (&local);
      if (st_rom_link_sync (self->link, &self->fresh, &local))
        {
          self->just_synced = TRUE;
          return TRUE;
        }
      if (!g_error_matches (local, ST_ERROR, ST_ERROR_TIMED_OUT))
        break;
    }
  st_rom_port_update_counters (self, backend);
  g_clear_pointer (&self->link, st_rom_link_free);
  g_propagate_error (error, g_steal_pointer (&local));
  return FALSE;
}

static void
st_rom_port_close (gpointer data)
{
  StRomPort *self = data;
  g_clear_pointer (&self->link, st_rom_link_free);
  self->just_synced = FALSE;
}

static gboolean
st_rom_port_is_open (gpointer data)
{
  return ((StRomPort *) data)->link != NULL;
}

static gboolean
st_rom_port_identify (gpointer data, guint16 *device_id, gchar *version, gsize version_size,
                      GError **error)
{
  StRomPort *self = data;
  guint8 ver = 0, cmds[ST_ROM_MAX_COMMANDS];
  gsize n_cmds = 0;
  if (self->just_synced)
    self->just_synced = FALSE;
  else if (!st_rom_link_sync (self->link, &self->fresh, error))
    return FALSE;
  if (!st_rom_link_get (self->link, &ver, cmds, sizeof cmds, &n_cmds, error) ||
      !st_rom_link_get_id (self->link, device_id, error))
    return FALSE;
  const guint8 needed[] = { ST_ROM_CMD_READ, ST_ROM_CMD_WRITE, ST_ROM_CMD_EXT_ERASE };
  for (gsize i = 0; i < G_N_ELEMENTS (needed); i++)
    if (memchr (cmds, needed[i], n_cmds) == NULL)
      {
        g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                     "%s: the bootloader (version %u.%u) lacks command 0x%02x; it needs READ, "
                     "WRITE and EXTENDED ERASE (AN3155 v3.x)", self->port, ver >> 4,
                     ver & 0xf, needed[i]);
        return FALSE;
      }
  g_snprintf (version, version_size, "bootloader %u.%u", ver >> 4, ver & 0xf);
  return TRUE;
}

static gboolean
st_rom_port_read (gpointer data, guint32 address, guint8 *buf, gsize len, GError **error)
{
  return st_rom_link_read (((StRomPort *) data)->link, address, buf, len, error);
}

static gboolean
st_rom_port_program (gpointer data, const StTarget *target, guint first, guint count,
                     guint32 address, const guint8 *buf, gsize len, GError **error)
{
  StRomLink *link = ((StRomPort *) data)->link;
  guint16 sectors[ST_TARGET_MAX_SECTORS];
  g_return_val_if_fail (count <= G_N_ELEMENTS (sectors), FALSE);
  (void) target;
  for (guint i = 0; i < count; i++)
    sectors[i] = (guint16) (first + i);
  return st_rom_link_erase (link, sectors, count, error) &&
         st_rom_link_write (link, address, buf, len, error);
}

static gboolean
st_rom_port_go (gpointer data, guint32 address, GError **error)
{
  return st_rom_link_go (((StRomPort *) data)->link, address, error);
}

static void
st_rom_port_update_counters (gpointer data, StBackend *backend)
{
  StRomPort *self = data;
  if (self->link == NULL)
    return;
  const StRomLinkStats *s = st_rom_link_get_stats (self->link);
  backend->bytes_tx = s->bytes_tx;
  backend->bytes_rx = s->bytes_rx;
  backend->n_requests = s->n_commands;
  backend->n_retries = s->n_retries;
}

static void
st_rom_port_free (gpointer data)
{
  StRomPort *self = data;
  g_clear_pointer (&self->link, st_rom_link_free);
  g_free (self->port);
  g_free (self->path);
  g_free (self);
}

static const StPassiveOps st_rom_ops = {
  .descriptor = &st_backend_stm32_rom,
  .max_payload = ST_ROM_BLOCK,
  .open = st_rom_port_open,
  .close = st_rom_port_close,
  .is_open = st_rom_port_is_open,
  .identify = st_rom_port_identify,
  .read = st_rom_port_read,
  .program = st_rom_port_program,
  .go = st_rom_port_go,
  .update_counters = st_rom_port_update_counters,
  .free = st_rom_port_free,
};

StBackend *
st_stm32_rom_backend_new (const char *port, const char *path, const StLinkParams *params,
                          GCancellable *cancellable, GError **error)
{
  guint speed = 0;
  StLinkParams p;
  if (params != NULL)
    p = *params;
  else
    st_link_params_init_defaults (&p);
  if (!st_serial_baud_to_speed (p.baud != 0 ? p.baud : 115200, &speed, error))
    return NULL;
  StRomPort *self = g_new0 (StRomPort, 1);
  self->path = g_strdup (path);
  self->port = g_strdup (port);
  return st_passive_backend_new (port, &p, cancellable, &st_rom_ops, self);
}

const StBackendDescriptor st_backend_stm32_rom = {
  .scheme = "stm32-rom",
  .usage = "stm32-rom:PATH",
  .description = "a passive STM32 through its ROM bootloader (AN3155), on serial port PATH",
  .example = "stm32-rom:/dev/ttyUSB0",
  .needs_path = TRUE,
  .capabilities = ST_PASSIVE_BACKEND_CAPS,
  .new = st_stm32_rom_backend_new,
};

gboolean
st_stm32_rom_backend_was_fresh (StBackend *backend)
{
  StRomPort *self = st_passive_backend_get_link (backend, &st_rom_ops);
  g_return_val_if_fail (self != NULL, FALSE);
  return self->fresh;
}

StRomLink *
st_stm32_rom_backend_get_link (StBackend *backend)
{
  StRomPort *self = st_passive_backend_get_link (backend, &st_rom_ops);
  g_return_val_if_fail (self != NULL, NULL);
  return self->link;
}
