/* The stm32-rom backend: a passive STM32 reached through its ROM USART
 * bootloader (ST AN3155), 8E1, and the credential blob (st-blob.h) written
 * into its flash (programmer/README-stm32-rom.md).
 *
 * Two layers: StRomLink speaks AN3155 (sync, GET, GET ID, READ, WRITE,
 * EXTENDED ERASE, GO; checksums, ACK/NACK, re-sync, time-outs) over a
 * transport; the backend maps the vtable of st-backend.h onto it with a
 * target flash map (st-stm32-target.h). */
#pragma once

#include "st-backend.h"
#include "st-stm32-target.h"
#include "st-transport.h"

G_BEGIN_DECLS

#define ST_ROM_ACK 0x79
#define ST_ROM_NACK 0x1F
#define ST_ROM_SYNC 0x7F
#define ST_ROM_CMD_GET 0x00
#define ST_ROM_CMD_GET_VERSION 0x01
#define ST_ROM_CMD_GET_ID 0x02
#define ST_ROM_CMD_READ 0x11
#define ST_ROM_CMD_GO 0x21
#define ST_ROM_CMD_WRITE 0x31
#define ST_ROM_CMD_EXT_ERASE 0x44
#define ST_ROM_BLOCK 256          /* READ and WRITE move at most 256 bytes */

/* Time-outs (stm32flash's figures; AN3155 leaves them to the host):
 * the per-byte answer time-out is the profile's timeout-ms (default 1 s);
 * WRITE MEMORY of a block 1 s; EXTENDED ERASE 5 s per sector (an F4 128 KiB
 * sector takes 1-2 s, 4 s worst case), mass erase 35 s. */
#define ST_ROM_WRITE_TIMEOUT_MS 1000
#define ST_ROM_SECTOR_ERASE_TIMEOUT_MS 5000
#define ST_ROM_MASS_ERASE_TIMEOUT_MS 35000

typedef struct _StRomLink StRomLink;

typedef struct {
  guint64 bytes_tx, bytes_rx;
  guint64 n_commands, n_retries, n_resyncs, n_nacks;
} StRomLinkStats;

/* Takes ownership of @transport. @retries: attempts after the first for
 * each command that got no answer, a NACK or a damaged answer. */
StRomLink *st_rom_link_new (StTransport *transport, guint timeout_ms, guint retries,
                            GCancellable *cancellable);
void st_rom_link_free (StRomLink *link);
const StRomLinkStats *st_rom_link_get_stats (StRomLink *link);

/* 0x7F: @fresh TRUE when the device answered ACK (it had just been reset:
 * a device the station has not talked to), FALSE when it answered NACK (it
 * was synchronised already). A device that sits inside a command (the
 * first 0x7F was taken as its command byte) answers the second 0x7F with
 * NACK. TIMED_OUT when nothing answers: an empty socket. */
gboolean st_rom_link_sync (StRomLink *link, gboolean *fresh, GError **error);
/* Sends 0xFF 0x00 pairs until a NACK comes back, bounded in time. */
gboolean st_rom_link_resync (StRomLink *link, GError **error);
/* GET: bootloader version and the command codes it supports. */
gboolean st_rom_link_get (StRomLink *link, guint8 *version, guint8 *commands,
                          gsize max_commands, gsize *n_commands, GError **error);
gboolean st_rom_link_get_id (StRomLink *link, guint16 *device_id, GError **error);
/* Any length; split into blocks of 256. */
gboolean st_rom_link_read (StRomLink *link, guint32 address, guint8 *buf, gsize len,
                           GError **error);
/* Any length that is a multiple of 4, at a 4-aligned address. */
gboolean st_rom_link_write (StRomLink *link, guint32 address, const guint8 *data, gsize len,
                            GError **error);
/* Extended erase of flash sectors (page numbers as the device numbers them). */
gboolean st_rom_link_erase (StRomLink *link, const guint16 *sectors, guint n, GError **error);
/* GO: the device leaves the bootloader and runs the code at @address. */
gboolean st_rom_link_go (StRomLink *link, guint32 address, GError **error);
/* Sends raw bytes (tests: damaged commands). */
gboolean st_rom_link_send_raw (StRomLink *link, const guint8 *data, gsize len, GError **error);
/* Reads one raw byte within the time-out (tests). */
gboolean st_rom_link_read_byte (StRomLink *link, guint8 *byte, guint timeout_ms, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (StRomLink, st_rom_link_free)

/* The backend on serial port @path (8E1 at the profile's baud). The link
 * parameters must name blob-address and blob-area-size (whole flash
 * sectors); uid-address/uid-length default to the target's. */
StBackend *st_stm32_rom_backend_new (const char *port, const char *path,
                                     const StLinkParams *params,
                                     GCancellable *cancellable, GError **error);
/* Whether the last identify met a fresh device (sync answered ACK). */
gboolean st_stm32_rom_backend_was_fresh (StBackend *backend);
/* The link of an open backend (tests and tools), or NULL. */
StRomLink *st_stm32_rom_backend_get_link (StBackend *backend);

G_END_DECLS
