/* ADIv5 over SWD through a CMSIS-DAP probe (st-dap-probe.h): the debug
 * port (DPIDR, ABORT, CTRL/STAT power-up, SELECT) and 32-bit memory access
 * through the MEM-AP (AHB-AP 0: CSW, TAR, DRW).
 *
 * WAIT answers are retried (bounded); a FAULT reads CTRL/STAT, clears the
 * sticky bits through ABORT and retries once; no acknowledge at all is
 * TIMED_OUT (no target: an empty socket). Block transfers never cross a
 * 1 KiB boundary, where TAR's auto-increment may wrap. */
#pragma once

#include "st-dap-probe.h"

G_BEGIN_DECLS

/* DP registers (A[3:2]) */
#define ST_DP_DPIDR 0x0        /* read */
#define ST_DP_ABORT 0x0        /* write */
#define ST_DP_CTRL_STAT 0x4
#define ST_DP_SELECT 0x8       /* write */
/* ABORT bits */
#define ST_DP_ABORT_STKCMPCLR (1u << 1)
#define ST_DP_ABORT_STKERRCLR (1u << 2)
#define ST_DP_ABORT_WDERRCLR (1u << 3)
#define ST_DP_ABORT_ORUNERRCLR (1u << 4)
#define ST_DP_ABORT_CLEAR_ALL 0x1Eu
/* CTRL/STAT bits */
#define ST_DP_STICKYORUN (1u << 1)
#define ST_DP_STICKYCMP (1u << 4)
#define ST_DP_STICKYERR (1u << 5)
#define ST_DP_WDATAERR (1u << 7)
#define ST_DP_CDBGPWRUPREQ (1u << 28)
#define ST_DP_CDBGPWRUPACK (1u << 29)
#define ST_DP_CSYSPWRUPREQ (1u << 30)
#define ST_DP_CSYSPWRUPACK (1u << 31)
/* MEM-AP registers (bank 0) */
#define ST_AP_CSW 0x00
#define ST_AP_TAR 0x04
#define ST_AP_DRW 0x0C
/* CSW: 32-bit, single auto-increment, HPROT privileged data, DbgSwEnable */
#define ST_AP_CSW_VALUE 0x23000012u
#define ST_AP_CSW_SIZE_MASK 0x7u
#define ST_AP_CSW_ADDRINC_MASK 0x30u

#define ST_SWD_TAR_WRAP 1024   /* TAR auto-increment is only guaranteed inside 1 KiB */

typedef struct _StSwd StSwd;

/* @probe stays the caller's. */
StSwd *st_swd_new (StDapProbe *probe);
void st_swd_free (StSwd *swd);

/* Line reset, JTAG-to-SWD, line reset, idle; reads DPIDR, clears sticky
 * errors, powers the debug and system domains up (waits for both
 * acknowledges), selects AP 0 and sets CSW. TIMED_OUT when nothing
 * acknowledges (no target). */
gboolean st_swd_attach (StSwd *swd, guint32 *dpidr, GError **error);

gboolean st_swd_read32 (StSwd *swd, guint32 address, guint32 *value, GError **error);
gboolean st_swd_write32 (StSwd *swd, guint32 address, guint32 value, GError **error);
/* Any address and length. */
gboolean st_swd_read_mem (StSwd *swd, guint32 address, guint8 *buf, gsize len, GError **error);
/* A 4-aligned address and a length that is a multiple of 4 (word writes
 * with DAP_TransferBlock). */
gboolean st_swd_write_mem (StSwd *swd, guint32 address, const guint8 *data, gsize len, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (StSwd, st_swd_free)

G_END_DECLS
