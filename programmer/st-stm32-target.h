/* Target flash maps: what a passive backend (stm32-rom, cmsis-dap) and the
 * simulators need to know about an MCU's memory, independent of how it is
 * reached. Only data and pure functions; no I/O.
 *
 * STM32F405/407/415/417 (device id 0x413, RM0090): 1 MiB of flash at
 * 0x08000000 in 12 sectors (4 x 16 KiB, 64 KiB, 7 x 128 KiB), erased to
 * 0xFF, programmed 1 -> 0 only; the 96-bit unique id at 0x1FFF7A10; the
 * flash size in KiB (u16) at 0x1FFF7A22. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define ST_TARGET_MAX_SECTORS 24

typedef struct {
  guint32 address;
  guint32 size;
} StFlashSector;

typedef struct {
  const char *name;             /* "STM32F40x/41x" */
  guint16 device_id;            /* AN3155 GID / DBGMCU_IDCODE DEV_ID: 0x413 */
  guint32 flash_base;
  guint32 flash_size;
  guint n_sectors;
  StFlashSector sectors[ST_TARGET_MAX_SECTORS];
  guint32 write_granularity;    /* bytes; the blob is padded to it */
  guint32 uid_address;
  guint uid_length;
  guint32 flash_size_address;   /* u16 KiB */
  guint32 sysmem_base, sysmem_size;   /* the ROM bootloader */
  guint32 otp_base, otp_size;         /* OTP area and the uid/size registers after it */
  guint32 sram_base, sram_size;
} StTarget;

/* The STM32F4 (0x413) map. */
const StTarget *st_target_stm32f4 (void);
/* The map for a device id, or NULL and NOT_SUPPORTED naming the id. */
const StTarget *st_target_find (guint16 device_id, GError **error);

/* TRUE when [address, address + len) lies inside the main flash. */
gboolean st_target_in_flash (const StTarget *target, guint32 address, gsize len);
/* The sector holding @address, or -1. */
gint st_target_sector_at (const StTarget *target, guint32 address);
/* The sectors [*first, *first + *count) that hold [address, address + len).
 * With @exact, the range must start and end on sector boundaries (erasing
 * it then touches nothing else); otherwise an INVALID_DATA error says which
 * boundaries would fit. */
gboolean st_target_sectors_for_range (const StTarget *target, guint32 address, gsize len,
                                      gboolean exact, guint *first, guint *count,
                                      GError **error);

G_END_DECLS
