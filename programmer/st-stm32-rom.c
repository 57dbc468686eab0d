/* The stm32-rom backend: ST AN3155 USART bootloader (st-stm32-rom.h). */
#include "st-stm32-rom.h"

#include <openssl/evp.h>
#include <string.h>

#include "st-backend-private.h"
#include "st-blob.h"
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
  return st_rom_retry (link, st_rom_op_go, &address, "GO", error);
}

/* ---- the backend ---- */

typedef struct {
  StBackend parent;
  gchar *path;
  StRomLink *link;
  const StTarget *target;
  gboolean just_synced;      /* open synchronised; identify need not */
  gboolean fresh;
  gboolean identified;
  guint8 uid[ST_UID_MAX];
  gsize uid_len;
  /* Buffered until COMMIT; wiped on ABORT, COMMIT and free. */
  GBytes *key;
  GBytes *cert;
  GBytes *chain;
  gchar *product_serial;
} StRomBackend;

static StRomBackend *
st_rom_self (StBackend *b)
{
  return (StRomBackend *) b;
}

static void
st_rom_update_counters (StRomBackend *self)
{
  if (self->link == NULL)
    return;
  const StRomLinkStats *s = st_rom_link_get_stats (self->link);
  self->parent.bytes_tx = s->bytes_tx;
  self->parent.bytes_rx = s->bytes_rx;
  self->parent.n_requests = s->n_commands;
  self->parent.n_retries = s->n_retries;
}

static void
st_rom_wipe (StRomBackend *self)
{
  if (self->key != NULL)
    st_bytes_wipe_unref (g_steal_pointer (&self->key));
  g_clear_pointer (&self->cert, g_bytes_unref);
  g_clear_pointer (&self->chain, g_bytes_unref);
}

static guint32
st_rom_uid_address (StRomBackend *self)
{
  return self->parent.params.uid_address != 0 ? self->parent.params.uid_address
                                              : self->target->uid_address;
}

static guint
st_rom_uid_length (StRomBackend *self)
{
  return self->parent.params.uid_length != 0 ? self->parent.params.uid_length
                                             : self->target->uid_length;
}

static gboolean
st_rom_check_area (StRomBackend *self, guint *first, guint *count, GError **error)
{
  const StLinkParams *p = &self->parent.params;
  if (p->blob_area_size == 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "%s: the profile names no credential area: set [link] blob-address and "
                   "blob-area-size (whole flash sectors, e.g. 0x0800C000 and 16384)", self->parent.port);
      return FALSE;
    }
  if (!st_target_sectors_for_range (self->target, p->blob_address, p->blob_area_size, TRUE,
                                    first, count, error))
    {
      g_prefix_error (error, "%s: [link] blob-address/blob-area-size: ", self->parent.port);
      return FALSE;
    }
  return TRUE;
}

static gboolean
st_rom_open (StBackend *backend, GError **error)
{
  StRomBackend *self = st_rom_self (backend);
  if (self->link != NULL)
    return TRUE;
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
          st_rom_update_counters (self);
          return TRUE;
        }
      if (!g_error_matches (local, ST_ERROR, ST_ERROR_TIMED_OUT))
        break;
    }
  st_rom_update_counters (self);
  g_clear_pointer (&self->link, st_rom_link_free);
  g_propagate_error (error, g_steal_pointer (&local));
  return FALSE;
}

static void
st_rom_close (StBackend *backend)
{
  StRomBackend *self = st_rom_self (backend);
  st_rom_update_counters (self);
  g_clear_pointer (&self->link, st_rom_link_free);
  self->just_synced = FALSE;
}

static gboolean
st_rom_need_link (StRomBackend *self, GError **error)
{
  if (self->link != NULL)
    return TRUE;
  g_set_error (error, ST_ERROR, ST_ERROR_READ, "%s: the port is not open", self->parent.port);
  return FALSE;
}

/* The blob in the credential area, or NULL (NOT_FOUND: none; INVALID_DATA:
 * damaged; other codes: the link failed). */
static StBlob *
st_rom_read_blob (StRomBackend *self, GError **error)
{
  const StLinkParams *p = &self->parent.params;
  guint8 hdr[ST_BLOB_HEADER_SIZE];
  if (!st_rom_link_read (self->link, p->blob_address, hdr, sizeof hdr, error))
    return NULL;
  gsize total = st_blob_peek_length (hdr, sizeof hdr);
  if (total == 0 || total > p->blob_area_size)
    {
      gboolean erased = TRUE;
      for (gsize i = 0; i < sizeof hdr; i++)
        erased = erased && hdr[i] == 0xff;
      g_set_error (error, ST_ERROR, erased || memcmp (hdr, ST_BLOB_MAGIC, 4) != 0 ? ST_ERROR_NOT_FOUND
                                                                          : ST_ERROR_INVALID_DATA,
                   "the credential area at 0x%08x holds %s", p->blob_address,
                   erased ? "no blob (erased)" : "no valid blob header");
      return NULL;
    }
  g_autofree guint8 *buf = g_malloc (total);
  memcpy (buf, hdr, sizeof hdr);
  gboolean ok = st_rom_link_read (self->link, p->blob_address + (guint32) sizeof hdr,
                                  buf + sizeof hdr, total - sizeof hdr, error);
  StBlob *blob = ok ? st_blob_parse (buf, total, error) : NULL;
  st_memwipe (buf, total);
  return blob;
}

static gboolean
st_rom_identify (StBackend *backend, StDeviceInfo *info, GError **error)
{
  StRomBackend *self = st_rom_self (backend);
  memset (info, 0, sizeof *info);
  if (!st_rom_need_link (self, error))
    return FALSE;
  gboolean ok = FALSE;
  g_autoptr(GError) local = NULL;
  g_autoptr(StBlob) blob = NULL;
  guint16 pid = 0;
  guint8 version = 0, cmds[ST_ROM_MAX_COMMANDS];
  gsize n_cmds = 0;
  self->identified = FALSE;
  backend->last_status = ST_AGENT_STATUS_NONE;

  if (self->just_synced)
    self->just_synced = FALSE;
  else if (!st_rom_link_sync (self->link, &self->fresh, error))
    {
      st_rom_update_counters (self);
      return FALSE;
    }
  if (!st_rom_link_get (self->link, &version, cmds, sizeof cmds, &n_cmds, error) ||
      !st_rom_link_get_id (self->link, &pid, error))
    {
      st_rom_update_counters (self);
      return FALSE;
    }
  const guint8 needed[] = { ST_ROM_CMD_READ, ST_ROM_CMD_WRITE, ST_ROM_CMD_EXT_ERASE };
  for (gsize i = 0; i < G_N_ELEMENTS (needed); i++)
    if (memchr (cmds, needed[i], n_cmds) == NULL)
      {
        g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                     "%s: the bootloader (version %u.%u) lacks command 0x%02x; it needs READ, "
                     "WRITE and EXTENDED ERASE (AN3155 v3.x)", backend->port, version >> 4,
                     version & 0xf, needed[i]);
        return FALSE;
      }
  self->target = st_target_find (pid, error);
  if (self->target == NULL)
    {
      g_prefix_error (error, "%s: ", backend->port);
      return FALSE;
    }
  guint first = 0, count = 0;
  if (!st_rom_check_area (self, &first, &count, error))
    return FALSE;
  guint uid_len = st_rom_uid_length (self);
  if (uid_len == 0 || uid_len > ST_UID_MAX)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "uid length %u is outside 1..%d",
                   uid_len, ST_UID_MAX);
      return FALSE;
    }
  /* The blob first, the uid last (a simulated operator swaps the device
   * after the closing uid read of a unit). */
  blob = st_rom_read_blob (self, &local);
  if (blob == NULL && !g_error_matches (local, ST_ERROR, ST_ERROR_NOT_FOUND) &&
      !g_error_matches (local, ST_ERROR, ST_ERROR_INVALID_DATA))
    {
      g_propagate_prefixed_error (error, g_steal_pointer (&local), "reading the credential area: ");
      st_rom_update_counters (self);
      return FALSE;
    }
  if (local != NULL)
    g_debug ("%s: %s", backend->port, local->message);
  ok = st_rom_link_read (self->link, st_rom_uid_address (self), info->uid, uid_len, error);
  st_rom_update_counters (self);
  if (!ok)
    {
      g_prefix_error (error, "reading the uid: ");
      return FALSE;
    }
  info->uid_len = uid_len;
  memcpy (self->uid, info->uid, uid_len);
  self->uid_len = uid_len;
  g_snprintf (info->model, sizeof info->model, "STM32 PID 0x%04X", pid);
  g_snprintf (info->fw_version, sizeof info->fw_version, "bootloader %u.%u", version >> 4, version & 0xf);
  info->algorithms = 0;           /* the station makes the key: any algorithm */
  info->max_payload = ST_ROM_BLOCK;
  info->state = ST_DEVICE_STATE_BLANK;
  if (blob != NULL)
    {
      gsize n = 0;
      const guint8 *u = g_bytes_get_data (blob->uid, &n);
      if (n == uid_len && memcmp (u, info->uid, n) == 0)
        info->state = ST_DEVICE_STATE_PROVISIONED;
      else
        g_debug ("%s: the credential blob names another uid: treated as blank", backend->port);
    }
  self->identified = TRUE;
  backend->last_status = ST_AGENT_STATUS_OK;
  return TRUE;
}

static gboolean
st_rom_put_key (StBackend *backend, StAlg alg, GBytes *pkcs8, GError **error)
{
  StRomBackend *self = st_rom_self (backend);
  gsize n = g_bytes_get_size (pkcs8);
  if (n == 0 || n > G_MAXUINT16)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "a key of %" G_GSIZE_FORMAT " bytes", n);
      return FALSE;
    }
  (void) alg;
  if (self->key != NULL)
    st_bytes_wipe_unref (g_steal_pointer (&self->key));
  /* Our own copy, so that the caller can wipe its one at once. */
  self->key = g_bytes_new (g_bytes_get_data (pkcs8, NULL), n);
  backend->last_status = ST_AGENT_STATUS_OK;
  return TRUE;
}

static gboolean
st_rom_write (StBackend *backend, StSlot slot, GBytes *data, GError **error)
{
  StRomBackend *self = st_rom_self (backend);
  gsize n = g_bytes_get_size (data);
  if (n == 0 || n > backend->params.blob_area_size)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "slot %d: %" G_GSIZE_FORMAT " bytes do not fit the credential area", slot, n);
      return FALSE;
    }
  if (slot == ST_SLOT_CERT)
    {
      if (self->key == NULL)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_BUSY, "no key was sent before the certificate");
          return FALSE;
        }
      g_clear_pointer (&self->cert, g_bytes_unref);
      self->cert = g_bytes_ref (data);
    }
  else if (slot == ST_SLOT_CHAIN)
    {
      g_clear_pointer (&self->chain, g_bytes_unref);
      self->chain = g_bytes_ref (data);
    }
  else
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED, "no slot %d", slot);
      return FALSE;
    }
  backend->last_status = ST_AGENT_STATUS_OK;
  return TRUE;
}

static GBytes *
st_rom_read (StBackend *backend, StSlot slot, GError **error)
{
  StRomBackend *self = st_rom_self (backend);
  if (slot != ST_SLOT_CERT && slot != ST_SLOT_CHAIN)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED, "no slot %d", slot);
      return NULL;
    }
  /* Uncommitted contents first, as an agent's READ gives them. */
  if (slot == ST_SLOT_CERT && self->cert != NULL)
    return g_bytes_ref (self->cert);
  if (slot == ST_SLOT_CHAIN && self->chain != NULL)
    return g_bytes_ref (self->chain);
  if (!st_rom_need_link (self, error))
    return NULL;
  if (self->target == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_BUSY, "%s: identify the device before reading", backend->port);
      return NULL;
    }
  g_autoptr(GError) local = NULL;
  g_autoptr(StBlob) blob = st_rom_read_blob (self, &local);
  st_rom_update_counters (self);
  if (blob == NULL)
    {
      if (g_error_matches (local, ST_ERROR, ST_ERROR_NOT_FOUND))
        return g_bytes_new (NULL, 0);
      g_propagate_prefixed_error (error, g_steal_pointer (&local), "%s: ", backend->port);
      return NULL;
    }
  return slot == ST_SLOT_CERT ? g_bytes_ref (blob->cert) : st_blob_dup_chain (blob);
}

/* Erases the sectors holding [address, address + len) and writes @data. */
static gboolean
st_rom_program (StRomBackend *self, guint first, guint count, guint32 address,
                const guint8 *data, gsize len, GError **error)
{
  guint16 sectors[ST_TARGET_MAX_SECTORS];
  for (guint i = 0; i < count && i < G_N_ELEMENTS (sectors); i++)
    sectors[i] = (guint16) (first + i);
  if (!st_rom_link_erase (self->link, sectors, MIN (count, (guint) G_N_ELEMENTS (sectors)), error))
    return FALSE;
  return st_rom_link_write (self->link, address, data, len, error);
}

/* NONE when the device went silent (its flash state unknown), STORAGE when
 * it answered but refused or stored something else. */
static void
st_rom_set_failure_status (StBackend *backend, const GError *error)
{
  backend->last_status = g_error_matches (error, ST_ERROR, ST_ERROR_TIMED_OUT) ||
                         g_error_matches (error, ST_ERROR, ST_ERROR_READ) ||
                         g_error_matches (error, ST_ERROR, ST_ERROR_WRITE) ||
                         g_error_matches (error, ST_ERROR, ST_ERROR_CANCELLED)
                           ? ST_AGENT_STATUS_NONE : ST_AGENT_STATUS_STORAGE;
}

static gboolean
st_rom_commit (StBackend *backend, gboolean lock, GError **error)
{
  StRomBackend *self = st_rom_self (backend);
  const StLinkParams *p = &backend->params;
  backend->last_status = ST_AGENT_STATUS_BAD_STATE;
  if (lock)
    {
      backend->last_status = ST_AGENT_STATUS_UNSUPPORTED;
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                   "%s: the stm32-rom backend cannot lock a device; set [device] lock = false "
                   "and enable readout protection in a later step (see README-stm32-rom.md)",
                   backend->port);
      return FALSE;
    }
  if (!st_rom_need_link (self, error))
    return FALSE;
  if (!self->identified || self->key == NULL || self->cert == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_BUSY, "%s: COMMIT without %s", backend->port,
                   !self->identified ? "an identified device" : self->key == NULL ? "a key" : "a certificate");
      return FALSE;
    }
  guint first = 0, count = 0;
  if (!st_rom_check_area (self, &first, &count, error))
    return FALSE;

  g_autoptr(StBlob) blob = st_blob_new ();
  blob->uid = g_bytes_new (self->uid, self->uid_len);
  blob->key = g_bytes_ref (self->key);
  blob->cert = g_bytes_ref (self->cert);
  blob->product_serial = g_strdup (self->product_serial);
  if (self->chain != NULL && !st_blob_set_chain (blob, self->chain, error))
    {
      g_prefix_error (error, "%s: ", backend->port);
      return FALSE;
    }
  g_autoptr(GBytes) image = st_blob_build (blob, self->target->write_granularity,
                                           p->blob_area_size, error);
  if (image == NULL)
    {
      g_prefix_error (error, "%s: ", backend->port);
      return FALSE;
    }
  gsize len = 0;
  const guint8 *data = g_bytes_get_data (image, &len);
  g_autoptr(GError) local = NULL;
  gboolean ok = st_rom_program (self, first, count, p->blob_address, data, len, &local);
  g_autofree guint8 *back = g_malloc (len);
  if (ok)
    ok = st_rom_link_read (self->link, p->blob_address, back, len, &local);
  st_rom_update_counters (self);
  if (!ok)
    {
      st_memwipe (back, len);
      st_rom_set_failure_status (backend, local);
      g_propagate_prefixed_error (error, g_steal_pointer (&local),
                                  "writing the credential blob (%" G_GSIZE_FORMAT " bytes at 0x%08x): ",
                                  len, p->blob_address);
      /* The blob image holds the key: wiped when @image goes (last ref). */
      st_memwipe ((guint8 *) data, len);
      return FALSE;
    }
  gboolean same = memcmp (back, data, len) == 0;
  gsize at = 0;
  while (!same && at < len && back[at] == data[at])
    at++;
  st_memwipe (back, len);
  st_memwipe ((guint8 *) data, len);
  if (!same)
    {
      backend->last_status = ST_AGENT_STATUS_STORAGE;
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "%s: the credential blob read back from 0x%08x differs from what was written "
                   "at byte %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT, backend->port,
                   p->blob_address, at, len);
      return FALSE;
    }
  st_rom_wipe (self);
  backend->last_status = ST_AGENT_STATUS_OK;
  return TRUE;
}

static gboolean
st_rom_abort (StBackend *backend, GError **error)
{
  (void) error;
  st_rom_wipe (st_rom_self (backend));
  backend->last_status = ST_AGENT_STATUS_OK;
  return TRUE;
}

static gboolean
st_rom_flash_image (StBackend *backend, guint32 address, GBytes *image, const guint8 sha256[32],
                    GError **error)
{
  StRomBackend *self = st_rom_self (backend);
  const StLinkParams *p = &backend->params;
  gsize len = 0;
  const guint8 *data = g_bytes_get_data (image, &len);
  guint8 md[EVP_MAX_MD_SIZE] = { 0 };
  unsigned int mdlen = 0;
  if (len == 0 || EVP_Digest (data, len, md, &mdlen, EVP_sha256 (), NULL) != 1 ||
      mdlen != 32 || memcmp (md, sha256, 32) != 0)
    {
      g_autofree gchar *want = st_hex_encode (sha256, 32);
      g_autofree gchar *got = st_hex_encode (md, 32);
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "%s: the firmware image (%" G_GSIZE_FORMAT " bytes) has SHA-256 %s, the profile "
                   "says %s: nothing was written; fix [firmware] sha256 or the image file",
                   backend->port, len, len == 0 ? "(empty)" : got, want);
      return FALSE;
    }
  if (!st_rom_need_link (self, error))
    return FALSE;
  if (self->target == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_BUSY, "%s: identify the device before flashing", backend->port);
      return FALSE;
    }
  gsize padded = (len + 3) & ~(gsize) 3;
  guint first = 0, count = 0;
  if (!st_target_sectors_for_range (self->target, address, padded, FALSE, &first, &count, error))
    {
      g_prefix_error (error, "%s: [firmware] address: ", backend->port);
      return FALSE;
    }
  if (self->target->sectors[first].address != address)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "%s: [firmware] address 0x%08x is not the start of a flash sector (sector %u "
                   "starts at 0x%08x)", backend->port, address, first, self->target->sectors[first].address);
      return FALSE;
    }
  const StFlashSector *last = &self->target->sectors[first + count - 1];
  guint64 end = (guint64) last->address + last->size;
  if (p->blob_area_size != 0 && p->blob_address < end && (guint64) p->blob_address + p->blob_area_size > address)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "%s: the firmware image's sectors (0x%08x..0x%08" G_GINT64_MODIFIER "x) overlap the "
                   "credential area at 0x%08x", backend->port, address, end, p->blob_address);
      return FALSE;
    }
  g_autofree guint8 *buf = g_malloc (padded);
  memset (buf, 0xff, padded);
  memcpy (buf, data, len);
  gboolean ok = st_rom_program (self, first, count, address, buf, padded, error);
  if (ok)
    ok = st_rom_link_read (self->link, address, buf, len, error);
  st_rom_update_counters (self);
  if (!ok)
    {
      g_prefix_error (error, "%s: writing the firmware image: ", backend->port);
      return FALSE;
    }
  if (EVP_Digest (buf, len, md, &mdlen, EVP_sha256 (), NULL) != 1 || memcmp (md, sha256, 32) != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "%s: the firmware image read back from 0x%08x has another SHA-256 than the one "
                   "written: the flash is faulty, put the device aside", backend->port, address);
      return FALSE;
    }
  return TRUE;
}

static gboolean
st_rom_set_product_serial (StBackend *backend, const char *serial, GError **error)
{
  StRomBackend *self = st_rom_self (backend);
  if (serial != NULL && (strlen (serial) == 0 || strlen (serial) > ST_BLOB_SERIAL_MAX ||
                         !g_utf8_validate (serial, -1, NULL)))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "a product serial must be UTF-8 of 1 to %d bytes", ST_BLOB_SERIAL_MAX);
      return FALSE;
    }
  g_free (self->product_serial);
  self->product_serial = g_strdup (serial);
  return TRUE;
}

static void
st_rom_free (StBackend *backend)
{
  StRomBackend *self = st_rom_self (backend);
  st_rom_wipe (self);
  g_clear_pointer (&self->link, st_rom_link_free);
  g_free (self->product_serial);
  g_free (self->path);
  g_free (self);
}

static const StBackendClass st_rom_class = {
  .name = "stm32-rom",
  .open = st_rom_open,
  .identify = st_rom_identify,
  .keygen = NULL,          /* passive: the station makes the key */
  .put_key = st_rom_put_key,
  .write = st_rom_write,
  .read = st_rom_read,
  .sign = NULL,            /* passive: the read-back in COMMIT is the proof */
  .commit = st_rom_commit,
  .abort = st_rom_abort,
  .close = st_rom_close,
  .free = st_rom_free,
  .flash_image = st_rom_flash_image,
  .set_product_serial = st_rom_set_product_serial,
};

StBackend *
st_stm32_rom_backend_new (const char *port, const char *path, const StLinkParams *params,
                          GCancellable *cancellable, GError **error)
{
  guint speed = 0;
  StRomBackend *self = NULL;
  StLinkParams p;
  if (params != NULL)
    p = *params;
  else
    st_link_params_init_defaults (&p);
  if (!st_serial_baud_to_speed (p.baud != 0 ? p.baud : 115200, &speed, error))
    return NULL;
  self = g_new0 (StRomBackend, 1);
  st_backend_init (&self->parent, &st_rom_class, port, &p, cancellable);
  self->path = g_strdup (path);
  return &self->parent;
}

gboolean
st_stm32_rom_backend_was_fresh (StBackend *backend)
{
  g_return_val_if_fail (backend != NULL && backend->klass == &st_rom_class, FALSE);
  return st_rom_self (backend)->fresh;
}

StRomLink *
st_stm32_rom_backend_get_link (StBackend *backend)
{
  g_return_val_if_fail (backend != NULL && backend->klass == &st_rom_class, NULL);
  return st_rom_self (backend)->link;
}
