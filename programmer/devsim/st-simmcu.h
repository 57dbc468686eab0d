/* The memory of a simulated STM32F4 (the map of st-stm32-target.h), shared by
 * the ROM bootloader simulator (st-simrom.c) and the CMSIS-DAP probe
 * simulator (st-simdap.c), so that both program and read the same model:
 *
 * - main flash: erased to 0xFF by whole sectors, programmed 1 -> 0 only (a
 *   program leaves the AND of old and new data, as real flash does);
 * - SRAM: plain read/write memory, zeroed at reset;
 * - the OTP area with the 96-bit uid and the flash size register (u16 KiB)
 *   after it: read-only, 0xFF where nothing is defined;
 * - system memory (the ROM bootloader's code): reads give 0xA5.
 *
 * Not thread-safe: each simulator serialises access to its own model. */
#pragma once

#include <glib.h>

#include "st-stm32-target.h"

G_BEGIN_DECLS

#define ST_SIM_MCU_UID_LEN 12

typedef enum {
  ST_SIM_MCU_NONE = 0,
  ST_SIM_MCU_FLASH = 'f',
  ST_SIM_MCU_SRAM = 's',
  ST_SIM_MCU_OTP = 'o',     /* OTP, uid and flash size register */
  ST_SIM_MCU_SYSMEM = 'r',  /* the ROM bootloader */
} StSimMcuRegion;

typedef struct _StSimMcu StSimMcu;

/* The socket a simulated passive device sits in: whether one is there, how
 * many have been, and when the next may come after a swap. */
typedef struct {
  gboolean present;
  guint n_presented;
  gint64 empty_until;       /* monotonic time, us */
} StSimSlot;

/* Whether a new device may come: none is there, fewer than @units have been
 * (0: no limit), and the swap time is over. */
gboolean st_sim_slot_may_present (const StSimSlot *slot, guint units);
/* A device comes in; its 0-based index. */
guint st_sim_slot_enter (StSimSlot *slot);
/* The device leaves; the next may come @swap_delay_ms later. */
void st_sim_slot_leave (StSimSlot *slot, guint swap_delay_ms);

StSimMcu *st_sim_mcu_new (const StTarget *target);
void st_sim_mcu_free (StSimMcu *mcu);

/* The uid of device @index (0-based) of a run seeded with @seed: the seed
 * and index+1 (little endian), then four bytes drawn from @rand. */
void st_sim_mcu_make_uid (guint32 seed, guint index, GRand *rand, guint8 uid[ST_SIM_MCU_UID_LEN]);
/* A fresh device: erased flash, zeroed SRAM, the uid and the flash size
 * register; no sector changed. */
void st_sim_mcu_reset (StSimMcu *mcu, const guint8 uid[ST_SIM_MCU_UID_LEN]);

/* The region holding all of [address, address + len), or NONE. */
StSimMcuRegion st_sim_mcu_region (StSimMcu *mcu, guint32 address, gsize len);
/* Copies @len bytes at @address; FALSE (and nothing copied) when the range
 * is not inside one mapped region. */
gboolean st_sim_mcu_read (StSimMcu *mcu, guint32 address, guint8 *buf, gsize len);
/* Writes SRAM; FALSE outside SRAM. */
gboolean st_sim_mcu_write_sram (StSimMcu *mcu, guint32 address, const guint8 *data, gsize len);
/* Programs flash (1 -> 0: the cells keep the AND of old and new data) and
 * marks the sectors changed. Returns FALSE outside flash. *@verified
 * (optional) says whether the cells now hold @data. */
gboolean st_sim_mcu_program (StSimMcu *mcu, guint32 address, const guint8 *data, gsize len,
                             gboolean *verified);
/* Erases sector @index to 0xFF and marks it changed; FALSE when no such sector. */
gboolean st_sim_mcu_erase_sector (StSimMcu *mcu, guint index);
/* Bit i set: sector i was erased or programmed since the reset. */
guint32 st_sim_mcu_get_changed (StSimMcu *mcu);
/* The cells of sector @index (its full size in *@len), or NULL. */
const guint8 *st_sim_mcu_get_sector (StSimMcu *mcu, guint index, gsize *len);
/* Puts saved contents back into sector @index (@len <= its size; the rest
 * stays as it is) without marking it changed. FALSE when it does not fit. */
gboolean st_sim_mcu_restore_sector (StSimMcu *mcu, guint index, const guint8 *data, gsize len);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (StSimMcu, st_sim_mcu_free)

G_END_DECLS
