/* The memory of a simulated STM32F4 (st-simmcu.h). */
#include "st-simmcu.h"

#include <string.h>

#define SYSMEM_FILL 0xA5

struct _StSimMcu {
  const StTarget *t;
  guint8 *flash;
  guint8 *sram;
  guint8 *otp;              /* otp_base .. otp_base + otp_size */
  guint32 changed;
};

StSimMcu *
st_sim_mcu_new (const StTarget *target)
{
  g_return_val_if_fail (target != NULL, NULL);
  g_return_val_if_fail (target->n_sectors <= 32, NULL);
  g_return_val_if_fail (target->uid_length == ST_SIM_MCU_UID_LEN, NULL);
  StSimMcu *self = g_new0 (StSimMcu, 1);
  self->t = target;
  self->flash = g_malloc (target->flash_size);
  self->sram = g_malloc (target->sram_size);
  self->otp = g_malloc (target->otp_size);
  guint8 zero[ST_SIM_MCU_UID_LEN] = { 0 };
  st_sim_mcu_reset (self, zero);
  return self;
}

void
st_sim_mcu_free (StSimMcu *self)
{
  if (self == NULL)
    return;
  g_free (self->flash);
  g_free (self->sram);
  g_free (self->otp);
  g_free (self);
}

gboolean
st_sim_slot_may_present (const StSimSlot *slot, guint units)
{
  if (slot->present || (units > 0 && slot->n_presented >= units))
    return FALSE;
  return g_get_monotonic_time () >= slot->empty_until;
}

guint
st_sim_slot_enter (StSimSlot *slot)
{
  slot->present = TRUE;
  return slot->n_presented++;
}

void
st_sim_slot_leave (StSimSlot *slot, guint swap_delay_ms)
{
  slot->present = FALSE;
  slot->empty_until = g_get_monotonic_time () + (gint64) swap_delay_ms * 1000;
}

void
st_sim_mcu_make_uid (guint32 seed, guint index, GRand *rand, guint8 uid[ST_SIM_MCU_UID_LEN])
{
  /* Lot/wafer-like bytes: the seed, the index, and seeded noise. */
  guint32 idx = index + 1;
  uid[0] = (guint8) seed; uid[1] = (guint8) (seed >> 8);
  uid[2] = (guint8) (seed >> 16); uid[3] = (guint8) (seed >> 24);
  uid[4] = (guint8) idx; uid[5] = (guint8) (idx >> 8);
  uid[6] = (guint8) (idx >> 16); uid[7] = (guint8) (idx >> 24);
  for (guint i = 8; i < ST_SIM_MCU_UID_LEN; i++)
    uid[i] = (guint8) g_rand_int_range (rand, 0, 256);
}

void
st_sim_mcu_reset (StSimMcu *self, const guint8 uid[ST_SIM_MCU_UID_LEN])
{
  const StTarget *t = self->t;
  memset (self->flash, 0xff, t->flash_size);
  memset (self->sram, 0, t->sram_size);
  memset (self->otp, 0xff, t->otp_size);
  memcpy (self->otp + (t->uid_address - t->otp_base), uid, t->uid_length);
  guint16 kib = (guint16) (t->flash_size / 1024);
  self->otp[t->flash_size_address - t->otp_base] = (guint8) kib;
  self->otp[t->flash_size_address - t->otp_base + 1] = (guint8) (kib >> 8);
  self->changed = 0;
}

static gboolean
st_mcu_inside (guint32 address, gsize len, guint32 base, guint32 size)
{
  return address >= base && (guint64) address - base + len <= size;
}

StSimMcuRegion
st_sim_mcu_region (StSimMcu *self, guint32 address, gsize len)
{
  const StTarget *t = self->t;
  if (len == 0)
    return ST_SIM_MCU_NONE;
  if (st_target_in_flash (t, address, len))
    return ST_SIM_MCU_FLASH;
  if (st_mcu_inside (address, len, t->sram_base, t->sram_size))
    return ST_SIM_MCU_SRAM;
  if (st_mcu_inside (address, len, t->otp_base, t->otp_size))
    return ST_SIM_MCU_OTP;
  if (st_mcu_inside (address, len, t->sysmem_base, t->sysmem_size))
    return ST_SIM_MCU_SYSMEM;
  return ST_SIM_MCU_NONE;
}

gboolean
st_sim_mcu_read (StSimMcu *self, guint32 address, guint8 *buf, gsize len)
{
  const StTarget *t = self->t;
  switch (st_sim_mcu_region (self, address, len))
    {
    case ST_SIM_MCU_FLASH:
      memcpy (buf, self->flash + (address - t->flash_base), len);
      return TRUE;
    case ST_SIM_MCU_SRAM:
      memcpy (buf, self->sram + (address - t->sram_base), len);
      return TRUE;
    case ST_SIM_MCU_OTP:
      memcpy (buf, self->otp + (address - t->otp_base), len);
      return TRUE;
    case ST_SIM_MCU_SYSMEM:
      /* The bootloader's own code: a constant pattern. */
      memset (buf, SYSMEM_FILL, len);
      return TRUE;
    case ST_SIM_MCU_NONE:
    default:
      return FALSE;
    }
}

gboolean
st_sim_mcu_write_sram (StSimMcu *self, guint32 address, const guint8 *data, gsize len)
{
  if (st_sim_mcu_region (self, address, len) != ST_SIM_MCU_SRAM)
    return FALSE;
  memcpy (self->sram + (address - self->t->sram_base), data, len);
  return TRUE;
}

static void
st_mcu_mark (StSimMcu *self, guint32 address, gsize len)
{
  gint a = st_target_sector_at (self->t, address);
  gint b = st_target_sector_at (self->t, (guint32) (address + len - 1));
  for (gint i = a; i >= 0 && i <= b; i++)
    self->changed |= 1u << i;
}

gboolean
st_sim_mcu_program (StSimMcu *self, guint32 address, const guint8 *data, gsize len,
                    gboolean *verified)
{
  if (st_sim_mcu_region (self, address, len) != ST_SIM_MCU_FLASH)
    return FALSE;
  guint8 *p = self->flash + (address - self->t->flash_base);
  gboolean ok = TRUE;
  for (gsize i = 0; i < len; i++)
    {
      p[i] &= data[i];            /* flash programs 1 -> 0 only */
      ok = ok && p[i] == data[i];
    }
  st_mcu_mark (self, address, len);
  if (verified != NULL)
    *verified = ok;
  return TRUE;
}

gboolean
st_sim_mcu_erase_sector (StSimMcu *self, guint index)
{
  if (index >= self->t->n_sectors)
    return FALSE;
  const StFlashSector *s = &self->t->sectors[index];
  memset (self->flash + (s->address - self->t->flash_base), 0xff, s->size);
  self->changed |= 1u << index;
  return TRUE;
}

guint32
st_sim_mcu_get_changed (StSimMcu *self)
{
  return self->changed;
}

const guint8 *
st_sim_mcu_get_sector (StSimMcu *self, guint index, gsize *len)
{
  if (index >= self->t->n_sectors)
    return NULL;
  const StFlashSector *s = &self->t->sectors[index];
  if (len != NULL)
    *len = s->size;
  return self->flash + (s->address - self->t->flash_base);
}

gboolean
st_sim_mcu_restore_sector (StSimMcu *self, guint index, const guint8 *data, gsize len)
{
  if (index >= self->t->n_sectors || len > self->t->sectors[index].size)
    return FALSE;
  const StFlashSector *s = &self->t->sectors[index];
  memcpy (self->flash + (s->address - self->t->flash_base), data, len);
  return TRUE;
}
