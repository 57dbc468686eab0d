/* The cmsis-dap backend: a passive STM32F4 reached over SWD through a
 * CMSIS-DAP v2 probe (libusb bulk), with the credential blob (st-blob.h)
 * written through the STM32F4 flash controller (RM0090 section 3).
 * programmer/README-cmsis-dap.md.
 *
 * Layers: st-dap-probe.h (USB, DAP commands) -> st-swd.h (ADIv5 DP, MEM-AP)
 * -> the flash controller here -> the passive core (st-passive.h). */
#pragma once

#include "st-backend.h"
#include "st-swd.h"

G_BEGIN_DECLS

/* STM32F4 flash interface (RM0090 3.9) */
#define ST_F4_FLASH_BASE 0x40023C00u
#define ST_F4_FLASH_KEYR (ST_F4_FLASH_BASE + 0x04)
#define ST_F4_FLASH_SR (ST_F4_FLASH_BASE + 0x0C)
#define ST_F4_FLASH_CR (ST_F4_FLASH_BASE + 0x10)
#define ST_F4_FLASH_KEY1 0x45670123u
#define ST_F4_FLASH_KEY2 0xCDEF89ABu
#define ST_F4_SR_EOP (1u << 0)
#define ST_F4_SR_OPERR (1u << 1)
#define ST_F4_SR_WRPERR (1u << 4)
#define ST_F4_SR_PGAERR (1u << 5)
#define ST_F4_SR_PGPERR (1u << 6)
#define ST_F4_SR_PGSERR (1u << 7)
#define ST_F4_SR_BSY (1u << 16)
#define ST_F4_SR_ERRORS (ST_F4_SR_OPERR | ST_F4_SR_WRPERR | ST_F4_SR_PGAERR | ST_F4_SR_PGPERR | ST_F4_SR_PGSERR)
#define ST_F4_CR_PG (1u << 0)
#define ST_F4_CR_SER (1u << 1)
#define ST_F4_CR_SNB_SHIFT 3
#define ST_F4_CR_PSIZE_X32 (2u << 8)
#define ST_F4_CR_STRT (1u << 16)
#define ST_F4_CR_LOCK (1u << 31)
#define ST_F4_DBGMCU_IDCODE 0xE0042000u
#define ST_CM_AIRCR 0xE000ED0Cu
#define ST_CM_AIRCR_SYSRESETREQ 0x05FA0004u   /* VECTKEY | SYSRESETREQ */

/* Time-outs: a 128 KiB sector takes 1-2 s (4 s worst case, RM0090 / the
 * datasheet's t_ERASE128KB); a word program 16-100 us. */
#define ST_F4_SECTOR_ERASE_TIMEOUT_MS 5000
#define ST_F4_PROGRAM_TIMEOUT_MS 1000
#define ST_DAP_SWD_CLOCK_HZ 1000000

/* The backend for probe @serial ("" or NULL: the only probe there is). The
 * link parameters must name blob-address and blob-area-size (whole flash
 * sectors); uid-address/uid-length default to the target's. */
StBackend *st_cmsis_dap_backend_new (const char *port, const char *serial,
                                     const StLinkParams *params,
                                     GCancellable *cancellable, GError **error);
/* The SWD link of an open backend (tests and tools), or NULL. */
StSwd *st_cmsis_dap_backend_get_swd (StBackend *backend);
/* DAP command packets sent by @backend so far (also its n_requests). */
guint64 st_cmsis_dap_backend_get_n_packets (StBackend *backend);

G_END_DECLS
