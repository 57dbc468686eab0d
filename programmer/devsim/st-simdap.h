/* A simulated CMSIS-DAP v2 probe with an STM32F4 behind it, at the level of
 * DAP command packets (ARM CMSIS-DAP v2 specification): one request packet
 * in, one response packet out. No USB here: tests/cmsis-dap/ serves it to
 * libusb through umockdev.
 *
 * Probe: DAP_Info (vendor, product "CMSIS-DAP", serial, firmware version,
 * capabilities SWD, packet count and size), DAP_Connect (SWD), DAP_Disconnect,
 * DAP_HostStatus, DAP_SWJ_Clock, DAP_SWJ_Sequence (line reset, JTAG-to-SWD),
 * DAP_SWD_Configure, DAP_TransferConfigure, DAP_Transfer (with match
 * value/mask), DAP_TransferBlock, DAP_TransferAbort, DAP_WriteABORT,
 * DAP_ResetTarget; unknown commands answer 0xFF.
 *
 * Target (ADIv5 SWD-DP v1, AHB-AP with CSW, TAR auto-increment that wraps
 * inside 1 KiB as the architecture allows, DRW, BD0-3, IDR): DPIDR
 * 0x2BA01477, CTRL/STAT power-up request/acknowledge, sticky errors
 * (STICKYERR, STICKYORUN, STICKYCMP, WDATAERR) cleared through ABORT, no
 * memory access until the debug domain is powered up. Memory: the STM32F4
 * map of st-stm32-target.h (flash erased to 0xFF and programmed 1 -> 0,
 * SRAM, the uid at 0x1FFF7A10, the flash size register, DBGMCU_IDCODE at
 * 0xE0042000 with DEV_ID 0x413), and the flash interface at 0x40023C00
 * (ACR, KEYR, OPTKEYR, SR, CR, OPTCR: the unlock key sequence, LOCK, SER
 * and SNB sector erase, PG with PSIZE, STRT, BSY for a number of polls, EOP,
 * and the error bits WRPERR, PGAERR, PGPERR, PGSERR; a wrong key sequence
 * locks the controller until the next device).
 *
 * Details a host must get right, as on the real parts (chosen where the
 * specifications leave room; see st-simdap.c):
 * - Probe: DAP_Transfer/TransferBlock before DAP_Connect(SWD) answer count 0,
 *   response 0 (nothing is clocked out). SWJ sequences reach the target only
 *   while connected. DAP_TransferAbort has no response. WAIT is retried by
 *   the probe up to the TransferConfigure WAIT retry count (default 100);
 *   only then does the host see WAIT. A packet that ends before the transfers
 *   it announces (or whose reads would not fit the 512-byte answer) runs the
 *   complete transfers, then stops: the count says how many ran and the
 *   response has bit 3 (protocol error) set. TD_TimeStamp is ignored (no
 *   timer); DAP_Info 0xF1 answers length 0. Packet count 4.
 * - SWJ-DP: it powers up in JTAG mode: SWD transfers get no ACK until the
 *   JTAG-to-SWD sequence (>= 50 ones, 0xE79E LSB first) and a line reset
 *   (>= 50 ones); after every line reset only a DPIDR read is answered.
 *   CTRL/STAT power-up acknowledges follow the requests one CTRL/STAT read
 *   later (poll them). With ORUNDETECT set a WAIT sets STICKYORUN. With a
 *   sticky flag set AP accesses and RDBUFF reads answer FAULT; DPIDR,
 *   CTRL/STAT, SELECT and ABORT still work. An access outside the map is a
 *   bus error: FAULT and STICKYERR.
 * - MEM-AP: CSW size 8/16/32 (data on its byte lanes), AddrInc single
 *   (packed behaves as single); TAR increments inside its 1 KiB page only:
 *   a block crossing 0x...400 wraps to the start of the page, so a host
 *   must split its blocks at 1 KiB boundaries.
 * - Flash interface: time counts in SWD transactions; a sector erase keeps
 *   BSY for 8 transactions per 16 KiB, a program for 1. While BSY, accesses
 *   to flash memory and writes to FLASH_CR stall the AHB: the AP answers
 *   WAIT. EOP is set only with EOPIE set (RM0090): poll BSY, then check the
 *   error bits. Programming needs PG (and no SER/MER; else PGSERR), an
 *   access of the PSIZE width (else PGPERR), aligned (else PGAERR). Writing
 *   KEYR while unlocked, or a wrong key, is a bus error and locks FLASH_CR
 *   up until a system reset (AIRCR SYSRESETREQ, nRESET through
 *   DAP_SWJ_Pins) or the next device. The flash-error fault write-protects
 *   every sector but sector 0 (OPTCR nWRP shows it): erase or program there
 *   sets WRPERR and changes nothing. The readback fault flips bit 0 of the
 *   first word programmed in the sector programmed last, on every read.
 * - Also mapped: the boot alias of flash at 0, DBGMCU (IDCODE, CR), CPUID,
 *   DHCSR (halt), DEMCR, AIRCR; other system and peripheral registers read
 *   as zero.
 *
 * Devices are swapped like the other simulators: a device is finished once
 * its flash was changed and the host then read its uid again (the word at
 * 0x1FFF7A18, the last one of the uid). A finished device stays behind the
 * probe, answering as before, until either
 * - the host starts its application (GO): a write of AIRCR with
 *   SYSRESETREQ, DAP_ResetTarget (which answers Execute 1) or an nRESET
 *   pulse through DAP_SWJ_Pins; the device records it (st_sim_dap_get_device:
 *   started) and leaves after that command; or
 * - the host starts a new session with it: DAP_Connect, or an SWJ sequence
 *   holding a line reset (>= 50 ones): the operator has swapped it already,
 *   so it leaves before that command, which reaches what is in the socket.
 * Once a device has left the probe sees no target (SWD answers no ACK) for
 * swap_delay_ms, then the next device (new uid from the seed, erased flash).
 * After @units devices there is no target. A reset before the closing
 * identify restarts the device, as on the real part, and is only counted. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define ST_SIM_DAP_PACKET_SIZE 512   /* the probe's packet size (DAP_Info 0xFF) */

typedef enum {
  ST_SIM_DAP_FAULT_NONE = 0,
  ST_SIM_DAP_FAULT_WAIT = 1 << 0,       /* bursts of WAIT acknowledges (seeded): 1 AP access in 16
                                         * starts one of 1 .. 2 x (WAIT retry) + 3 WAITs */
  ST_SIM_DAP_FAULT_FAULT = 1 << 1,      /* an AP access now and then answers FAULT and sets STICKYERR
                                         * (about 1 in 128, never twice within 256 AP accesses) */
  ST_SIM_DAP_FAULT_FLASH_ERROR = 1 << 2,/* programming the credential sectors sets PGSERR/WRPERR */
  ST_SIM_DAP_FAULT_READBACK = 1 << 3,   /* reads of written flash return one flipped bit */
  ST_SIM_DAP_FAULT_NO_TARGET = 1 << 4,  /* nothing behind the probe: no ACK */
} StSimDapFault;

typedef struct {
  guint units;              /* devices presented one after another; 0 = unlimited */
  guint32 seed;             /* uids and fault timing derive from it */
  guint32 faults;           /* StSimDapFault bits */
  guint fault_unit;         /* 0: every device has the faults; N: only the N-th (1-based) */
  guint swap_delay_ms;      /* no target between two devices */
  guint16 vid, pid;         /* 0: c251:f00a */
} StSimDapConfig;

typedef struct _StSimDap StSimDap;

/* What a presented device saw, for tests. */
typedef struct {
  guint8 uid[12];
  gboolean closed;          /* its flash changed, then the host read its uid again */
  guint n_resets;           /* system resets requested (AIRCR SYSRESETREQ, DAP_ResetTarget, nRESET) */
  gboolean started;         /* a reset after the closing identify started its application (GO) */
} StSimDapDevice;

StSimDap *st_sim_dap_new (const StSimDapConfig *config, const char *serial, GError **error);
void st_sim_dap_free (StSimDap *dap);
/* One DAP command packet in @req (@len bytes); writes the response to @resp
 * and returns its length (at most @resp_max, <= ST_SIM_DAP_PACKET_SIZE).
 * Thread-safe. */
gsize st_sim_dap_process (StSimDap *dap, const guint8 *req, gsize len,
                          guint8 *resp, gsize resp_max);
/* For tests: devices presented so far, and a copy of @len bytes of the
 * current device's memory at @address (FALSE outside the map). */
guint st_sim_dap_get_n_presented (StSimDap *dap);
/* A copy of the record of device @index (0-based, in the order presented);
 * FALSE when fewer devices were presented. */
gboolean st_sim_dap_get_device (StSimDap *dap, guint index, StSimDapDevice *device);
gboolean st_sim_dap_peek (StSimDap *dap, guint32 address, guint8 *buf, gsize len);
/* "wait", "fault", "flash-error", "readback-differs", "no-target"; 0 when unknown. */
guint32 st_sim_dap_fault_from_string (const char *name);
/* The probe's USB ids (the defaults filled in). */
void st_sim_dap_get_ids (StSimDap *dap, guint16 *vid, guint16 *pid);
/* Whether a device is behind the probe now (lets a swap delay pass). */
gboolean st_sim_dap_is_present (StSimDap *dap);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (StSimDap, st_sim_dap_free)

G_END_DECLS
