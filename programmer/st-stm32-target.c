/* Target flash maps (st-stm32-target.h). */
#include "st-stm32-target.h"

#include "st-error.h"

static const StTarget st_target_f4 = {
  .name = "STM32F40x/41x",
  .device_id = 0x413,
  .flash_base = 0x08000000,
  .flash_size = 1024 * 1024,
  .n_sectors = 12,
  .sectors = {
    { 0x08000000, 16 * 1024 }, { 0x08004000, 16 * 1024 },
    { 0x08008000, 16 * 1024 }, { 0x0800C000, 16 * 1024 },
    { 0x08010000, 64 * 1024 },
    { 0x08020000, 128 * 1024 }, { 0x08040000, 128 * 1024 },
    { 0x08060000, 128 * 1024 }, { 0x08080000, 128 * 1024 },
    { 0x080A0000, 128 * 1024 }, { 0x080C0000, 128 * 1024 },
    { 0x080E0000, 128 * 1024 },
  },
  .write_granularity = 4,
  .uid_address = 0x1FFF7A10,
  .uid_length = 12,
  .flash_size_address = 0x1FFF7A22,
  .sysmem_base = 0x1FFF0000,
  .sysmem_size = 30 * 1024,
  .otp_base = 0x1FFF7800,
  .otp_size = 0x1FFF7A24 - 0x1FFF7800,
  .sram_base = 0x20000000,
  .sram_size = 128 * 1024,
};

const StTarget *
st_target_stm32f4 (void)
{
  return &st_target_f4;
}

const StTarget *
st_target_find (guint16 device_id, GError **error)
{
  if (device_id == st_target_f4.device_id)
    return &st_target_f4;
  g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
               "device id 0x%03x is not a supported target (supported: 0x%03x %s)",
               device_id, st_target_f4.device_id, st_target_f4.name);
  return NULL;
}

gboolean
st_target_in_flash (const StTarget *target, guint32 address, gsize len)
{
  g_return_val_if_fail (target != NULL, FALSE);
  if (address < target->flash_base)
    return FALSE;
  guint64 off = (guint64) address - target->flash_base;
  return off <= target->flash_size && len <= target->flash_size - off;
}

gint
st_target_sector_at (const StTarget *target, guint32 address)
{
  g_return_val_if_fail (target != NULL, -1);
  for (guint i = 0; i < target->n_sectors; i++)
    {
      const StFlashSector *s = &target->sectors[i];
      if (address >= s->address && (guint64) address < (guint64) s->address + s->size)
        return (gint) i;
    }
  return -1;
}

gboolean
st_target_sectors_for_range (const StTarget *target, guint32 address, gsize len,
                             gboolean exact, guint *first, guint *count, GError **error)
{
  g_return_val_if_fail (target != NULL && first != NULL && count != NULL, FALSE);
  if (len == 0 || !st_target_in_flash (target, address, len))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "0x%08x..0x%08" G_GINT64_MODIFIER "x (%" G_GSIZE_FORMAT " bytes) is not inside the %s flash "
                   "(0x%08x..0x%08x)", address, (guint64) address + len, len, target->name,
                   target->flash_base, target->flash_base + target->flash_size);
      return FALSE;
    }
  gint a = st_target_sector_at (target, address);
  gint b = st_target_sector_at (target, (guint32) (address + len - 1));
  if (a < 0 || b < a)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL, "the %s sector table has a gap at 0x%08x",
                   target->name, address);
      return FALSE;
    }
  const StFlashSector *sa = &target->sectors[a], *sb = &target->sectors[b];
  if (exact && (sa->address != address || (guint64) sb->address + sb->size != (guint64) address + len))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "0x%08x..0x%08" G_GINT64_MODIFIER "x does not fill whole flash sectors: erasing it would "
                   "also erase 0x%08x..0x%08" G_GINT64_MODIFIER "x; use a sector-aligned address and size "
                   "(sector %d starts at 0x%08x with %u bytes)", address, (guint64) address + len,
                   sa->address, (guint64) sb->address + sb->size, a, sa->address, sa->size);
      return FALSE;
    }
  *first = (guint) a;
  *count = (guint) (b - a + 1);
  return TRUE;
}
