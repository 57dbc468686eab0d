/* A simulated STM32F4 ROM bootloader, AN3155 over USART (st-simrom.h). */
#include "st-simrom.h"

#include <json-glib/json-glib.h>
#include <string.h>

#include "st-error.h"
#include "st-simmcu.h"
#include "st-stm32-target.h"
#include "st-util.h"

#define ACK 0x79
#define NACK 0x1F
#define BL_VERSION 0x31
#define MAX_ERASE_PAGES 256

typedef enum {
  S_AUTOBAUD,      /* after reset: waiting for 0x7F */
  S_CMD,           /* waiting for a command byte */
  S_CMD_COMPL,     /* waiting for its complement */
  S_ADDR,          /* 4 address bytes + XOR */
  S_READ_N,        /* N, ~N */
  S_WRITE_DATA,    /* N, N+1 bytes, checksum */
  S_ERASE_HDR,     /* 2 bytes: pages - 1, or 0xFFFx */
  S_ERASE_SPECIAL, /* checksum of a special erase */
  S_ERASE_BODY,    /* page numbers, checksum */
  S_GONE,          /* jumped to the application: the bootloader is silent */
} StRomState;

static const guint8 st_rom_commands[] = { 0x00, 0x01, 0x02, 0x11, 0x21, 0x31, 0x44 };

typedef struct {
  gchar *uid_hex;
  guint64 bytes_rx, bytes_tx;
  guint syncs, writes, erases;
  gboolean went;            /* GO executed: the application was started */
  guint32 go_address;       /* its address */
  GHashTable *sectors;      /* sector index -> GBytes, trailing 0xFF trimmed */
} StRomRecord;

struct _StSimRom {
  StSimRomConfig config;
  gchar *state_file;
  const StTarget *t;
  GRand *rand;
  GPtrArray *records;       /* StRomRecord*, one per device presented */

  /* The socket. */
  StSimSlot slot;

  /* The device in the socket. */
  StRomRecord *rec;
  gboolean faulty;
  StSimMcu *mcu;            /* flash, SRAM, OTP/uid, system memory */
  gboolean closed;          /* flash changed, then the uid read: done, GO or a new session next */
  gboolean leaving;

  /* The bootloader. */
  StRomState st;
  guint8 cmd;
  guint8 buf[2 + 2 * MAX_ERASE_PAGES + 1];
  gsize have;
  guint32 addr;
  guint n_pages;
};

static void
st_rom_record_free (StRomRecord *r)
{
  if (r == NULL)
    return;
  g_free (r->uid_hex);
  g_hash_table_unref (r->sectors);
  g_free (r);
}

static const char *const st_sim_rom_fault_names[] = { "drop", "readback-differs", "rdp", "write-fail", NULL };
static const guint32 st_sim_rom_fault_bits[] = {
  ST_SIM_ROM_FAULT_DROP, ST_SIM_ROM_FAULT_READBACK, ST_SIM_ROM_FAULT_RDP, ST_SIM_ROM_FAULT_WRITE_FAIL,
};

const char *const *
st_sim_rom_fault_list (void)
{
  return st_sim_rom_fault_names;
}

guint32
st_sim_rom_fault_from_string (const char *name)
{
  for (gsize i = 0; name != NULL && i < G_N_ELEMENTS (st_sim_rom_fault_bits); i++)
    if (strcmp (name, st_sim_rom_fault_names[i]) == 0)
      return st_sim_rom_fault_bits[i];
  return 0;
}

/* ---- memory ---- */

static gchar *
st_rom_hex (const guint8 *d, gsize n)
{
  return st_hex_encode (d, n);
}

static void
st_rom_snapshot (StSimRom *self)
{
  if (self->rec == NULL || self->mcu == NULL)
    return;
  guint32 changed = st_sim_mcu_get_changed (self->mcu);
  for (guint i = 0; i < self->t->n_sectors; i++)
    {
      if (!(changed & (1u << i)))
        continue;
      gsize n = 0;
      const guint8 *d = st_sim_mcu_get_sector (self->mcu, i, &n);
      while (n > 0 && d[n - 1] == 0xff)
        n--;
      g_hash_table_replace (self->rec->sectors, GUINT_TO_POINTER (i), g_bytes_new (d, n));
    }
}

/* ---- the socket ---- */

static void
st_rom_present (StSimRom *self, StRomRecord *from)
{
  guint index = st_sim_slot_enter (&self->slot);
  self->closed = FALSE;
  self->leaving = FALSE;
  self->st = S_AUTOBAUD;
  self->have = 0;
  self->faulty = self->config.fault_unit == 0 || self->config.fault_unit == index + 1;
  guint8 uid[ST_SIM_MCU_UID_LEN];
  if (from != NULL)
    {
      gsize n = 0;
      g_autofree guchar *raw = NULL;
      /* uid_hex was checked at load: 24 hex digits. */
      raw = g_malloc0 (12);
      for (gsize i = 0; i < 12 && from->uid_hex[2 * i] != '\0'; i++, n++)
        raw[i] = (guint8) (g_ascii_xdigit_value (from->uid_hex[2 * i]) << 4 |
                           g_ascii_xdigit_value (from->uid_hex[2 * i + 1]));
      memcpy (uid, raw, sizeof uid);
      st_sim_mcu_reset (self->mcu, uid);
      GHashTableIter it;
      gpointer k, v;
      g_hash_table_iter_init (&it, from->sectors);
      while (g_hash_table_iter_next (&it, &k, &v))
        {
          guint i = GPOINTER_TO_UINT (k);
          gsize len = 0;
          const guint8 *d = g_bytes_get_data (v, &len);
          /* Sizes were checked at load. */
          st_sim_mcu_restore_sector (self->mcu, i, d, len);
        }
      self->rec = from;
    }
  else
    {
      st_sim_mcu_make_uid (self->config.seed, index, self->rand, uid);
      st_sim_mcu_reset (self->mcu, uid);
      StRomRecord *r = g_new0 (StRomRecord, 1);
      r->uid_hex = st_rom_hex (uid, sizeof uid);
      r->sectors = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL,
                                          (GDestroyNotify) g_bytes_unref);
      g_ptr_array_add (self->records, r);
      self->rec = r;
    }
  g_debug ("stm32-rom: device %u (uid %s) in the socket", self->slot.n_presented, self->rec->uid_hex);
}

static void
st_rom_leave (StSimRom *self)
{
  st_rom_snapshot (self);
  st_sim_slot_leave (&self->slot, self->config.swap_delay_ms);
  self->rec = NULL;
  g_autoptr(GError) error = NULL;
  if (!st_sim_rom_save (self, &error))
    g_warning ("stm32-rom: %s", error->message);
}

static gboolean
st_rom_may_present (StSimRom *self)
{
  if (self->config.present > 0)
    return FALSE;   /* a QA socket: the one device left, nothing after it */
  return st_sim_slot_may_present (&self->slot, self->config.units);
}

/* ---- the bootloader ---- */

static void
st_rom_send (StSimRom *self, GByteArray *out, const guint8 *d, gsize n)
{
  g_byte_array_append (out, d, (guint) n);
  self->rec->bytes_tx += n;
}

static void
st_rom_byte (StSimRom *self, GByteArray *out, guint8 b)
{
  st_rom_send (self, out, &b, 1);
}

/* The last byte of a command's answer: the drop fault may lose it. */
static void
st_rom_final (StSimRom *self, GByteArray *out, guint8 b)
{
  if (self->faulty && (self->config.faults & ST_SIM_ROM_FAULT_DROP) &&
      g_rand_int_range (self->rand, 0, 4) == 0)
    {
      g_debug ("stm32-rom: dropping the answer 0x%02x to command 0x%02x", b, self->cmd);
      return;
    }
  st_rom_byte (self, out, b);
}

static void
st_rom_nack (StSimRom *self, GByteArray *out)
{
  st_rom_byte (self, out, NACK);
  self->st = S_CMD;
  self->have = 0;
}

static guint8
st_rom_xor (const guint8 *d, gsize n)
{
  guint8 x = 0;
  for (gsize i = 0; i < n; i++)
    x ^= d[i];
  return x;
}

static void
st_rom_command (StSimRom *self, GByteArray *out)
{
  gboolean known = memchr (st_rom_commands, self->cmd, sizeof st_rom_commands) != NULL;
  gboolean rdp = self->faulty && (self->config.faults & ST_SIM_ROM_FAULT_RDP);
  if (!known || (rdp && (self->cmd == 0x11 || self->cmd == 0x21 || self->cmd == 0x31 ||
                         self->cmd == 0x44)))
    {
      st_rom_nack (self, out);
      return;
    }
  st_rom_byte (self, out, ACK);
  self->have = 0;
  self->st = S_CMD;
  switch (self->cmd)
    {
    case 0x00:
      {
        guint8 reply[2 + sizeof st_rom_commands];
        reply[0] = (guint8) sizeof st_rom_commands;   /* bytes that follow - 1 */
        reply[1] = BL_VERSION;
        memcpy (reply + 2, st_rom_commands, sizeof st_rom_commands);
        st_rom_send (self, out, reply, sizeof reply);
        st_rom_final (self, out, ACK);
        break;
      }
    case 0x01:
      {
        const guint8 reply[] = { BL_VERSION, 0x00, 0x00 };
        st_rom_send (self, out, reply, sizeof reply);
        st_rom_final (self, out, ACK);
        break;
      }
    case 0x02:
      {
        const guint8 reply[] = { 0x01, (guint8) (self->t->device_id >> 8), (guint8) self->t->device_id };
        st_rom_send (self, out, reply, sizeof reply);
        st_rom_final (self, out, ACK);
        break;
      }
    case 0x11: case 0x21: case 0x31:
      self->st = S_ADDR;
      break;
    case 0x44:
      self->st = S_ERASE_HDR;
      break;
    default:
      break;
    }
}

static void
st_rom_address (StSimRom *self, GByteArray *out)
{
  if (st_rom_xor (self->buf, 4) != self->buf[4])
    {
      st_rom_nack (self, out);
      return;
    }
  self->addr = (guint32) self->buf[0] << 24 | (guint32) self->buf[1] << 16 |
               (guint32) self->buf[2] << 8 | self->buf[3];
  StSimMcuRegion region = st_sim_mcu_region (self->mcu, self->addr, 1);
  gboolean ok = region != ST_SIM_MCU_NONE;
  if (self->cmd == 0x31 || self->cmd == 0x21)
    ok = ok && (region == ST_SIM_MCU_FLASH || region == ST_SIM_MCU_SRAM);
  if (!ok)
    {
      st_rom_nack (self, out);
      return;
    }
  self->have = 0;
  if (self->cmd == 0x11)
    {
      st_rom_byte (self, out, ACK);
      self->st = S_READ_N;
    }
  else if (self->cmd == 0x31)
    {
      st_rom_byte (self, out, ACK);
      self->st = S_WRITE_DATA;
    }
  else
    {
      /* GO: the application starts; the bootloader is gone until reset,
       * and the operator takes the device out. */
      st_rom_final (self, out, ACK);
      self->rec->went = TRUE;
      self->rec->go_address = self->addr;
      g_debug ("stm32-rom: device %u (uid %s) jumps to 0x%08x", self->slot.n_presented,
               self->rec->uid_hex, self->addr);
      self->st = S_GONE;
      self->leaving = TRUE;
    }
}

static void
st_rom_read (StSimRom *self, GByteArray *out)
{
  if ((self->buf[0] ^ self->buf[1]) != 0xff)
    {
      st_rom_nack (self, out);
      return;
    }
  gsize n = (gsize) self->buf[0] + 1;
  guint8 copy[256];
  if (!st_sim_mcu_read (self->mcu, self->addr, copy, n))
    {
      st_rom_nack (self, out);
      return;
    }
  st_rom_byte (self, out, ACK);
  StSimMcuRegion region = st_sim_mcu_region (self->mcu, self->addr, n);
  if (region == ST_SIM_MCU_FLASH && self->faulty && (self->config.faults & ST_SIM_ROM_FAULT_READBACK))
    {
      /* One flipped bit in the first byte that was programmed. */
      for (gsize i = 0; i < n; i++)
        if (copy[i] != 0xff)
          {
            copy[i] ^= 0x01;
            break;
          }
    }
  st_rom_send (self, out, copy, n - 1);
  st_rom_final (self, out, copy[n - 1]);
  self->st = S_CMD;
  const StTarget *t = self->t;
  if (st_sim_mcu_get_changed (self->mcu) != 0 && self->addr <= t->uid_address &&
      (guint64) self->addr + n >= (guint64) t->uid_address + t->uid_length)
    {
      /* The station's closing identify: GO or a swap next. The unit's flash
       * is final: on disk now, whatever ends this process. */
      gboolean first = !self->closed;
      self->closed = TRUE;
      g_autoptr(GError) error = NULL;
      if (first && !st_sim_rom_save (self, &error))
        g_warning ("stm32-rom: %s", error->message);
    }
}

static void
st_rom_write (StSimRom *self, GByteArray *out)
{
  gsize n = (gsize) self->buf[0] + 1;
  if (st_rom_xor (self->buf, n + 1) != self->buf[n + 1])
    {
      st_rom_nack (self, out);
      return;
    }
  StSimMcuRegion region = st_sim_mcu_region (self->mcu, self->addr, n);
  if ((region != ST_SIM_MCU_FLASH && region != ST_SIM_MCU_SRAM) ||
      (self->addr & 3) != 0 || (n & 3) != 0)
    {
      st_rom_nack (self, out);
      return;
    }
  const guint8 *d = self->buf + 1;
  self->st = S_CMD;
  if (region == ST_SIM_MCU_SRAM)
    {
      st_sim_mcu_write_sram (self->mcu, self->addr, d, n);
      st_rom_final (self, out, ACK);
      return;
    }
  if (self->faulty && (self->config.faults & ST_SIM_ROM_FAULT_WRITE_FAIL))
    {
      st_rom_nack (self, out);
      return;
    }
  gboolean ok = FALSE;
  st_sim_mcu_program (self->mcu, self->addr, d, n, &ok);   /* 1 -> 0 only */
  self->rec->writes++;
  if (ok)
    st_rom_final (self, out, ACK);
  else
    st_rom_nack (self, out);   /* the bootloader's verify after programming failed */
}

static void
st_rom_erase_sectors (StSimRom *self, guint first, guint count)
{
  for (guint i = first; i < first + count && i < self->t->n_sectors; i++)
    st_sim_mcu_erase_sector (self->mcu, i);
  self->rec->erases++;
}

static void
st_rom_erase (StSimRom *self, GByteArray *out)
{
  gsize len = 2 + 2 * (gsize) self->n_pages + 1;
  if (st_rom_xor (self->buf, len - 1) != self->buf[len - 1])
    {
      st_rom_nack (self, out);
      return;
    }
  for (guint i = 0; i < self->n_pages; i++)
    {
      guint page = (guint) self->buf[2 + 2 * i] << 8 | self->buf[3 + 2 * i];
      if (page >= self->t->n_sectors)
        {
          st_rom_nack (self, out);
          return;
        }
    }
  for (guint i = 0; i < self->n_pages; i++)
    st_rom_erase_sectors (self, (guint) self->buf[2 + 2 * i] << 8 | self->buf[3 + 2 * i], 1);
  self->st = S_CMD;
  st_rom_final (self, out, ACK);
}

static void
st_rom_push (StSimRom *self, guint8 b, GByteArray *out)
{
  if (self->closed && self->st == S_CMD && b == 0x7f)
    {
      /* A new session with a finished device: the operator has swapped it
       * already; the byte reaches an empty socket. */
      self->leaving = TRUE;
      return;
    }
  self->rec->bytes_rx++;
  switch (self->st)
    {
    case S_GONE:
      return;
    case S_AUTOBAUD:
      if (b == 0x7f)
        {
          self->rec->syncs++;
          st_rom_byte (self, out, ACK);
          self->st = S_CMD;
        }
      return;
    case S_CMD:
      if (b == 0x7f)
        {
          /* Already synchronised: a second autobaud byte is refused. */
          self->rec->syncs++;
          st_rom_byte (self, out, NACK);
          return;
        }
      self->cmd = b;
      self->st = S_CMD_COMPL;
      return;
    case S_CMD_COMPL:
      if ((self->cmd ^ b) != 0xff)
        st_rom_nack (self, out);
      else
        st_rom_command (self, out);
      return;
    default:
      break;
    }
  if (self->have >= sizeof self->buf)
    {
      st_rom_nack (self, out);
      return;
    }
  self->buf[self->have++] = b;
  switch (self->st)
    {
    case S_ADDR:
      if (self->have == 5)
        st_rom_address (self, out);
      break;
    case S_READ_N:
      if (self->have == 2)
        st_rom_read (self, out);
      break;
    case S_WRITE_DATA:
      if (self->have == (gsize) self->buf[0] + 3)
        st_rom_write (self, out);
      break;
    case S_ERASE_HDR:
      if (self->have == 2)
        {
          guint n = (guint) self->buf[0] << 8 | self->buf[1];
          if (n >= 0xfff0)
            self->st = S_ERASE_SPECIAL;
          else if (n + 1 > MAX_ERASE_PAGES)
            st_rom_nack (self, out);
          else
            {
              self->n_pages = n + 1;
              self->st = S_ERASE_BODY;
            }
        }
      break;
    case S_ERASE_SPECIAL:
      {
        guint n = (guint) self->buf[0] << 8 | self->buf[1];
        /* Mass erase only: an F40x has one bank, so no bank erase. */
        if (n != 0xffff || st_rom_xor (self->buf, 2) != self->buf[2])
          {
            st_rom_nack (self, out);
            break;
          }
        st_rom_erase_sectors (self, 0, self->t->n_sectors);
        self->st = S_CMD;
        st_rom_final (self, out, ACK);
        break;
      }
    case S_ERASE_BODY:
      if (self->have == 2 + 2 * (gsize) self->n_pages + 1)
        st_rom_erase (self, out);
      break;
    default:
      st_rom_nack (self, out);
      break;
    }
}

void
st_sim_rom_receive (StSimRom *self, const guint8 *data, gsize len, GByteArray *out)
{
  g_return_if_fail (self != NULL && out != NULL);
  if (st_rom_may_present (self))
    st_rom_present (self, NULL);
  for (gsize i = 0; i < len; i++)
    {
      if (!self->slot.present)
        {
          if (st_rom_may_present (self))
            st_rom_present (self, NULL);
          else
            continue;   /* an empty socket: the bytes go nowhere */
        }
      st_rom_push (self, data[i], out);
      if (self->leaving)
        {
          st_rom_leave (self);
          break;         /* the rest arrives at an empty socket */
        }
    }
}

/* ---- state file ---- */

gboolean
st_sim_rom_save (StSimRom *self, GError **error)
{
  g_return_val_if_fail (self != NULL, FALSE);
  if (self->state_file == NULL)
    return TRUE;
  if (self->slot.present)
    st_rom_snapshot (self);
  g_autoptr(JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "format");
  json_builder_add_string_value (b, "station-devsim-stm32-rom/1");
  json_builder_set_member_name (b, "devices");
  json_builder_begin_array (b);
  for (guint i = 0; i < self->records->len; i++)
    {
      StRomRecord *r = self->records->pdata[i];
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "uid");
      json_builder_add_string_value (b, r->uid_hex);
      json_builder_set_member_name (b, "bytes_rx");
      json_builder_add_int_value (b, (gint64) r->bytes_rx);
      json_builder_set_member_name (b, "bytes_tx");
      json_builder_add_int_value (b, (gint64) r->bytes_tx);
      json_builder_set_member_name (b, "syncs");
      json_builder_add_int_value (b, r->syncs);
      json_builder_set_member_name (b, "writes");
      json_builder_add_int_value (b, r->writes);
      json_builder_set_member_name (b, "erases");
      json_builder_add_int_value (b, r->erases);
      json_builder_set_member_name (b, "go_address");
      if (r->went)
        json_builder_add_int_value (b, r->go_address);
      else
        json_builder_add_null_value (b);
      json_builder_set_member_name (b, "sectors");
      json_builder_begin_array (b);
      for (guint s = 0; s < self->t->n_sectors; s++)
        {
          GBytes *d = g_hash_table_lookup (r->sectors, GUINT_TO_POINTER (s));
          if (d == NULL)
            continue;
          json_builder_begin_object (b);
          json_builder_set_member_name (b, "index");
          json_builder_add_int_value (b, s);
          json_builder_set_member_name (b, "data");
          gsize n = 0;
          const guint8 *p = g_bytes_get_data (d, &n);
          g_autofree gchar *b64 = g_base64_encode (p, n);
          json_builder_add_string_value (b, b64);
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  gsize len = 0;
  g_autofree gchar *text = json_generator_to_data (gen, &len);
  return st_file_write_durable (self->state_file, text, len, 0644, error);
}

static gboolean
st_rom_load (StSimRom *self, GError **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  if (!json_parser_load_from_file (parser, self->state_file, error))
    return FALSE;
  JsonNode *root = json_parser_get_root (parser);
  JsonObject *o = root != NULL && JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
  JsonArray *devs = o != NULL && json_object_has_member (o, "devices")
                      ? json_object_get_array_member (o, "devices") : NULL;
  if (devs == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "%s: no devices array", self->state_file);
      return FALSE;
    }
  for (guint i = 0; i < json_array_get_length (devs); i++)
    {
      JsonObject *d = json_array_get_object_element (devs, i);
      const char *uid = d != NULL ? json_object_get_string_member_with_default (d, "uid", NULL) : NULL;
      if (uid == NULL || strlen (uid) != 24 || strspn (uid, "0123456789abcdef") != 24)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "%s: device %u has no 24-digit uid",
                       self->state_file, i + 1);
          return FALSE;
        }
      StRomRecord *r = g_new0 (StRomRecord, 1);
      r->uid_hex = g_strdup (uid);
      r->sectors = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL,
                                          (GDestroyNotify) g_bytes_unref);
      r->bytes_rx = (guint64) json_object_get_int_member_with_default (d, "bytes_rx", 0);
      r->bytes_tx = (guint64) json_object_get_int_member_with_default (d, "bytes_tx", 0);
      r->syncs = (guint) json_object_get_int_member_with_default (d, "syncs", 0);
      r->writes = (guint) json_object_get_int_member_with_default (d, "writes", 0);
      r->erases = (guint) json_object_get_int_member_with_default (d, "erases", 0);
      JsonNode *go = json_object_get_member (d, "go_address");
      if (go != NULL && !JSON_NODE_HOLDS_NULL (go))
        {
          gint64 a = JSON_NODE_HOLDS_VALUE (go) && json_node_get_value_type (go) == G_TYPE_INT64
                       ? json_node_get_int (go) : -1;
          if (a < 0 || a > G_MAXUINT32)
            {
              st_rom_record_free (r);
              g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "%s: device %u has a go_address that is not a 32-bit address or null",
                           self->state_file, i + 1);
              return FALSE;
            }
          r->went = TRUE;
          r->go_address = (guint32) a;
        }
      g_ptr_array_add (self->records, r);
      JsonArray *secs = json_object_has_member (d, "sectors") ? json_object_get_array_member (d, "sectors") : NULL;
      for (guint s = 0; secs != NULL && s < json_array_get_length (secs); s++)
        {
          JsonObject *so = json_array_get_object_element (secs, s);
          gint64 idx = so != NULL ? json_object_get_int_member_with_default (so, "index", -1) : -1;
          const char *b64 = so != NULL ? json_object_get_string_member_with_default (so, "data", NULL) : NULL;
          if (idx < 0 || idx >= self->t->n_sectors || b64 == NULL)
            {
              g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "%s: device %u has a bad sector entry",
                           self->state_file, i + 1);
              return FALSE;
            }
          gsize n = 0;
          guchar *raw = g_base64_decode (b64, &n);
          if (n > self->t->sectors[idx].size)
            {
              g_free (raw);
              g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "%s: sector %" G_GINT64_FORMAT " too large",
                           self->state_file, idx);
              return FALSE;
            }
          g_hash_table_replace (r->sectors, GUINT_TO_POINTER ((guint) idx), g_bytes_new_take (raw, n));
        }
    }
  return TRUE;
}

StSimRom *
st_sim_rom_new (const StSimRomConfig *config, GError **error)
{
  g_return_val_if_fail (config != NULL, NULL);
  g_autoptr(StSimRom) self = g_new0 (StSimRom, 1);
  self->config = *config;
  self->state_file = g_strdup (config->state_file);
  self->config.state_file = self->state_file;
  self->t = st_target_stm32f4 ();
  self->rand = g_rand_new_with_seed (config->seed);
  self->records = g_ptr_array_new_with_free_func ((GDestroyNotify) st_rom_record_free);
  self->mcu = st_sim_mcu_new (self->t);
  if (config->present > 0)
    {
      if (self->state_file == NULL || !g_file_test (self->state_file, G_FILE_TEST_EXISTS))
        {
          g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                               "--present needs an existing --state file");
          return NULL;
        }
      if (!st_rom_load (self, error))
        return NULL;
      if (config->present > self->records->len)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND, "%s holds %u devices, not %u",
                       self->state_file, self->records->len, config->present);
          return NULL;
        }
      self->slot.n_presented = config->present - 1;
      st_rom_present (self, self->records->pdata[config->present - 1]);
    }
  else if (self->state_file != NULL && g_file_test (self->state_file, G_FILE_TEST_EXISTS))
    {
      /* Keep the devices of an earlier run in the file; new ones follow. */
      if (!st_rom_load (self, error))
        return NULL;
      self->slot.n_presented = self->records->len;
      for (guint i = 0; i < self->slot.n_presented; i++)
        g_rand_int (self->rand);
    }
  return g_steal_pointer (&self);
}

void
st_sim_rom_free (StSimRom *self)
{
  if (self == NULL)
    return;
  if (self->records != NULL)
    {
      g_autoptr(GError) error = NULL;
      if (!st_sim_rom_save (self, &error))
        g_warning ("stm32-rom: %s", error->message);
    }
  g_clear_pointer (&self->records, g_ptr_array_unref);
  g_clear_pointer (&self->rand, g_rand_free);
  g_clear_pointer (&self->mcu, st_sim_mcu_free);
  g_free (self->state_file);
  g_free (self);
}

guint
st_sim_rom_get_n_presented (StSimRom *self)
{
  g_return_val_if_fail (self != NULL, 0);
  return self->slot.n_presented;
}
