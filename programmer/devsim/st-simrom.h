/* A simulated STM32F4 in its ROM USART bootloader (ST AN3155), for
 * `station-devsim --mode stm32-rom` and the stm32-rom backend's tests.
 *
 * The device: an STM32F40x (device id 0x413) with the flash map of
 * st-stm32-target.h: 1 MiB of flash, erased to 0xFF, erased by sectors,
 * programmed 1 -> 0 only (a write that would need a 0 -> 1 transition is
 * answered NACK, and leaves the AND of old and new data, as real flash does);
 * 128 KiB of SRAM; a 12-byte uid at 0x1FFF7A10 derived from the seed; the
 * flash size register at 0x1FFF7A22.
 *
 * The bootloader speaks AN3155 byte by byte: 0x7F autobaud (ACK), then
 * commands as byte + complement: GET (0x00), GET VERSION (0x01), GET ID
 * (0x02), READ MEMORY (0x11), GO (0x21), WRITE MEMORY (0x31), EXTENDED
 * ERASE (0x44). Every checksum is checked (NACK). A 0x7F where a command
 * byte is expected is answered NACK at once: an already synchronised device
 * (the station tells a device it has talked to from a fresh one by it).
 * There is no time-out on the device side (as on the real part): a station
 * that lost its place re-synchronises by sending bytes until a NACK comes.
 * Parity: a pseudo-terminal carries 8 bits and drops the 8E1 setting, so
 * the simulator reads plain bytes; no parity errors are modelled.
 *
 * The socket presents devices one after another. A device is finished once
 * its flash was changed (ERASE or WRITE executed) and then the station read
 * its uid again (the station's closing identify). A finished device stays in
 * the socket, answering commands, until either
 * - GO arrives (a valid GO command, ACKed): the application starts, the
 *   device records the address (state file: "go_address") and leaves; or
 * - a 0x7F sync byte arrives where a command is expected: the station
 *   starts a new session, so the operator has swapped the device already;
 *   it leaves and the byte reaches the empty socket (no answer).
 * GO also takes out a device that is not finished. After a device leaves
 * the socket is silent for swap_delay_ms, then the next device (fresh uid,
 * erased flash, not synchronised) is there. After @units devices the
 * socket stays silent. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  ST_SIM_ROM_FAULT_NONE = 0,
  ST_SIM_ROM_FAULT_DROP = 1 << 0,      /* drop the last reply byte of 1 in 4 commands (seeded); the command was executed */
  ST_SIM_ROM_FAULT_READBACK = 1 << 1,  /* READ MEMORY returns one flipped bit inside written flash */
  ST_SIM_ROM_FAULT_RDP = 1 << 2,       /* readout protection level 1: READ, WRITE, ERASE and GO answer NACK */
  ST_SIM_ROM_FAULT_WRITE_FAIL = 1 << 3,/* every WRITE MEMORY to flash is answered NACK (worn or write-protected sector) */
} StSimRomFault;

typedef struct {
  guint units;              /* devices presented one after another; 0 = unlimited */
  guint32 seed;             /* uids derive from it */
  guint32 faults;           /* StSimRomFault bits */
  guint fault_unit;         /* 0: every device has the faults; N: only the N-th (1-based) */
  guint swap_delay_ms;      /* silence between two devices */
  const char *state_file;   /* NULL, or JSON rewritten when a device is finished (its
                             * closing identify), when it leaves, and at the end:
                             * per device the uid, bytes received and sent, syncs, writes,
                             * erases, "go_address" (the GO it executed, or null) and
                             * the contents of every flash sector it changed */
  guint present;            /* with state_file: put device N (1-based) of the file back,
                             * with its flash, and no device after it */
} StSimRomConfig;

typedef struct _StSimRom StSimRom;

StSimRom *st_sim_rom_new (const StSimRomConfig *config, GError **error);
/* Writes the state file (when configured) and frees. */
void st_sim_rom_free (StSimRom *rom);
/* Feeds bytes from the station; appends the device's answer to @out. @len
 * may be 0: lets time pass (swaps). */
void st_sim_rom_receive (StSimRom *rom, const guint8 *data, gsize len, GByteArray *out);
/* Writes the state file now (when configured). */
gboolean st_sim_rom_save (StSimRom *rom, GError **error);
guint st_sim_rom_get_n_presented (StSimRom *rom);
/* "drop", "readback-differs", "rdp", "write-fail"; 0 when unknown. */
guint32 st_sim_rom_fault_from_string (const char *name);
/* Those names, NULL-terminated. */
const char *const *st_sim_rom_fault_list (void);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (StSimRom, st_sim_rom_free)

G_END_DECLS
