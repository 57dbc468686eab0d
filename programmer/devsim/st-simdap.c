/* A simulated CMSIS-DAP v2 probe with an STM32F4 behind it (st-simdap.h). */
#include "st-simdap.h"

#include <string.h>

#include "st-error.h"
#include "st-simmcu.h"
#include "st-stm32-target.h"
#include "st-util.h"

/* ---- CMSIS-DAP ---- */
#define DAP_INFO 0x00
#define DAP_HOST_STATUS 0x01
#define DAP_CONNECT 0x02
#define DAP_DISCONNECT 0x03
#define DAP_TRANSFER_CONFIGURE 0x04
#define DAP_TRANSFER 0x05
#define DAP_TRANSFER_BLOCK 0x06
#define DAP_TRANSFER_ABORT 0x07
#define DAP_WRITE_ABORT 0x08
#define DAP_DELAY 0x09
#define DAP_RESET_TARGET 0x0A
#define DAP_SWJ_PINS 0x10
#define DAP_SWJ_CLOCK 0x11
#define DAP_SWJ_SEQUENCE 0x12
#define DAP_SWD_CONFIGURE 0x13
#define DAP_INVALID 0xFF

#define DAP_OK 0x00
#define DAP_ERROR 0xFF

#define REQ_APNDP 0x01
#define REQ_RNW 0x02
#define REQ_A32 0x0C
#define REQ_MATCH_VALUE 0x10
#define REQ_MATCH_MASK 0x20

#define ACK_OK 0x01
#define ACK_WAIT 0x02
#define ACK_FAULT 0x04
#define ACK_NONE 0x07
#define RESP_PROTOCOL_ERROR 0x08
#define RESP_MISMATCH 0x10

/* ---- ADIv5 SW-DP ---- */
#define DPIDR_VALUE 0x2BA01477u
#define CS_ORUNDETECT (1u << 0)
#define CS_STICKYORUN (1u << 1)
#define CS_STICKYCMP (1u << 4)
#define CS_STICKYERR (1u << 5)
#define CS_WDATAERR (1u << 7)
#define CS_CDBGPWRUPREQ (1u << 28)
#define CS_CDBGPWRUPACK (1u << 29)
#define CS_CSYSPWRUPREQ (1u << 30)
#define CS_CSYSPWRUPACK (1u << 31)
#define CS_STICKY (CS_STICKYORUN | CS_STICKYCMP | CS_STICKYERR | CS_WDATAERR)
#define CS_WRITABLE (CS_ORUNDETECT | 0x0C | 0xF00 | (1u << 26) | CS_CDBGPWRUPREQ | CS_CSYSPWRUPREQ)
#define ABORT_DAPABORT (1u << 0)
#define ABORT_STKCMPCLR (1u << 1)
#define ABORT_STKERRCLR (1u << 2)
#define ABORT_WDERRCLR (1u << 3)
#define ABORT_ORUNERRCLR (1u << 4)

/* ---- AHB-AP (Cortex-M4) ---- */
#define AP_CSW 0x00
#define AP_TAR 0x04
#define AP_DRW 0x0C
#define AP_BD0 0x10
#define AP_CFG 0xF4
#define AP_BASE 0xF8
#define AP_IDR 0xFC
#define AHB_AP_IDR 0x24770011u
#define AHB_AP_BASE 0xE00FF003u
#define CSW_DEVICEEN (1u << 6)
#define CSW_WRITABLE 0xFF000F37u
#define CSW_RESET (0x03000000u | CSW_DEVICEEN | 0x02 | 0x10)
#define TAR_PAGE 0x3FFu   /* auto-increment wraps inside 1 KiB */

/* ---- STM32F4 ---- */
#define FLASH_IF 0x40023C00u
#define FLASH_ACR 0x00
#define FLASH_KEYR 0x04
#define FLASH_OPTKEYR 0x08
#define FLASH_SR 0x0C
#define FLASH_CR 0x10
#define FLASH_OPTCR 0x14
#define FLASH_KEY1 0x45670123u
#define FLASH_KEY2 0xCDEF89ABu
#define SR_EOP (1u << 0)
#define SR_OPERR (1u << 1)
#define SR_WRPERR (1u << 4)
#define SR_PGAERR (1u << 5)
#define SR_PGPERR (1u << 6)
#define SR_PGSERR (1u << 7)
#define SR_BSY (1u << 16)
#define SR_W1C (SR_EOP | SR_OPERR | SR_WRPERR | SR_PGAERR | SR_PGPERR | SR_PGSERR)
#define CR_PG (1u << 0)
#define CR_SER (1u << 1)
#define CR_MER (1u << 2)
#define CR_SNB_SHIFT 3
#define CR_SNB_MASK (0xFu << CR_SNB_SHIFT)
#define CR_PSIZE_SHIFT 8
#define CR_PSIZE_MASK (3u << CR_PSIZE_SHIFT)
#define CR_STRT (1u << 16)
#define CR_EOPIE (1u << 24)
#define CR_ERRIE (1u << 25)
#define CR_LOCK (1u << 31)
#define CR_WRITABLE (CR_PG | CR_SER | CR_MER | CR_SNB_MASK | CR_PSIZE_MASK | CR_EOPIE | CR_ERRIE)
#define OPTCR_RESET 0x0FFFAAEDu
#define DBGMCU_IDCODE 0xE0042000u
#define DBGMCU_IDCODE_VALUE 0x10076413u   /* REV_ID 0x1007, DEV_ID 0x413 */
#define SCS_CPUID 0xE000ED00u
#define SCS_AIRCR 0xE000ED0Cu
#define SCS_DHCSR 0xE000EDF0u
#define SCS_DEMCR 0xE000EDFCu
#define CPUID_VALUE 0x410FC241u

/* Time is counted in SWD transactions ("ticks"). */
#define PROGRAM_TICKS 1
#define ERASE_TICKS_PER_16K 8
#define MASS_ERASE_TICKS 512
#define WAIT_BURST_MAX 1000
#define FAULT_ONE_IN 128
#define FAULT_HOLDOFF 256

struct _StSimDap {
  GMutex lock;
  StSimDapConfig config;
  gchar *serial;
  const StTarget *t;
  StSimMcu *mcu;
  GRand *rand_uid;
  GRand *rand_fault;

  /* The probe. */
  gboolean connected;
  gboolean nreset_low;      /* DAP_SWJ_Pins holds nRESET low */
  guint16 wait_retry;
  guint16 match_retry;
  guint32 match_mask;

  /* The socket. */
  StSimSlot slot;
  gboolean leaving;         /* leaves after the current command */
  gboolean faulty;
  GArray *devices;          /* StSimDapDevice, one per device presented */

  /* SWJ-DP */
  gboolean swd;             /* switched to SWD by the JTAG-to-SWD sequence */
  gboolean line_reset;      /* after a line reset only a DPIDR read is answered */
  guint ones;
  gboolean collecting;
  guint16 seq;
  guint seq_n;
  guint32 ctrl_stat;
  guint32 pwr_ack;
  guint32 select;
  guint32 rdbuff;
  guint wait_left;          /* WAIT burst */
  guint fault_holdoff;      /* AP accesses before the next injected FAULT may come */

  /* AHB-AP */
  guint32 csw;
  guint32 tar;

  /* Core debug and DBGMCU */
  guint32 dhcsr, demcr, dbgmcu[3];

  /* Flash interface */
  guint32 flash_acr, flash_sr, flash_cr;
  gboolean flash_lockup;    /* a wrong key sequence: until reset */
  guint key_step;
  guint busy;               /* ticks until the current operation ends */
  gint flip_sector;         /* readback fault: the sector and word */
  guint32 flip_address;
};

guint32
st_sim_dap_fault_from_string (const char *name)
{
  static const struct { const char *name; guint32 bit; } names[] = {
    { "wait", ST_SIM_DAP_FAULT_WAIT },
    { "fault", ST_SIM_DAP_FAULT_FAULT },
    { "flash-error", ST_SIM_DAP_FAULT_FLASH_ERROR },
    { "readback-differs", ST_SIM_DAP_FAULT_READBACK },
    { "no-target", ST_SIM_DAP_FAULT_NO_TARGET },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    if (g_strcmp0 (name, names[i].name) == 0)
      return names[i].bit;
  return 0;
}

static gboolean
st_dap_has (StSimDap *self, guint32 fault)
{
  return self->faulty && (self->config.faults & fault) != 0;
}

/* ---- the target's reset and the socket ---- */

static void
st_dap_system_reset (StSimDap *self)
{
  self->flash_acr = 0;
  self->flash_sr = 0;
  self->flash_cr = CR_LOCK;
  self->flash_lockup = FALSE;
  self->key_step = 0;
  self->busy = 0;
  self->dhcsr = 0;
  self->demcr = 0;
  memset (self->dbgmcu, 0, sizeof self->dbgmcu);
}

/* The record of the device in the socket (NULL when none). */
static StSimDapDevice *
st_dap_device (StSimDap *self)
{
  if (!self->slot.present || self->devices->len == 0)
    return NULL;
  return &g_array_index (self->devices, StSimDapDevice, self->devices->len - 1);
}

/* A system reset the host asked for (AIRCR SYSRESETREQ, DAP_ResetTarget,
 * nRESET): counted; after the closing identify it starts the application
 * and the operator takes the device out. */
static void
st_dap_reset_requested (StSimDap *self)
{
  StSimDapDevice *d = st_dap_device (self);
  st_dap_system_reset (self);
  if (d == NULL)
    return;
  d->n_resets++;
  if (d->closed && !d->started)
    {
      d->started = TRUE;
      self->leaving = TRUE;
      g_debug ("cmsis-dap %s: device %u reset after its closing identify: its application runs",
               self->serial, self->slot.n_presented);
    }
}

static void
st_dap_present (StSimDap *self)
{
  guint index = st_sim_slot_enter (&self->slot);
  guint8 uid[ST_SIM_MCU_UID_LEN];
  st_sim_mcu_make_uid (self->config.seed, index, self->rand_uid, uid);
  st_sim_mcu_reset (self->mcu, uid);
  StSimDapDevice rec = { 0 };
  memcpy (rec.uid, uid, sizeof rec.uid);
  g_array_append_val (self->devices, rec);
  self->leaving = FALSE;
  self->faulty = self->config.fault_unit == 0 || self->config.fault_unit == index + 1;
  /* Power-on: the SWJ-DP is in JTAG mode, the debug domain is off. */
  self->swd = FALSE;
  self->line_reset = FALSE;
  self->ones = 0;
  self->collecting = FALSE;
  self->ctrl_stat = 0;
  self->pwr_ack = 0;
  self->select = 0;
  self->rdbuff = 0;
  self->wait_left = 0;
  self->fault_holdoff = 0;
  self->csw = CSW_RESET;
  self->tar = 0;
  self->flip_sector = -1;
  self->flip_address = 0;
  st_dap_system_reset (self);
  g_debug ("cmsis-dap %s: device %u behind the probe", self->serial, self->slot.n_presented);
}

static void
st_dap_update_socket (StSimDap *self)
{
  if (st_sim_slot_may_present (&self->slot, self->config.units))
    st_dap_present (self);
}

static void
st_dap_leave (StSimDap *self)
{
  st_sim_slot_leave (&self->slot, self->config.swap_delay_ms);
  self->leaving = FALSE;
  g_debug ("cmsis-dap %s: device %u finished, swapping", self->serial, self->slot.n_presented);
}

/* ---- the flash interface ---- */

static void
st_dap_tick (StSimDap *self)
{
  if (self->busy > 0 && --self->busy == 0)
    {
      self->flash_cr &= ~CR_STRT;
      /* EOP is set only with the end-of-operation interrupt enabled (RM0090). */
      if (self->flash_cr & CR_EOPIE)
        self->flash_sr |= SR_EOP;
    }
}

static gboolean
st_dap_write_protected (StSimDap *self, guint sector)
{
  /* The flash-error fault: nWRP cleared for every sector but sector 0. */
  return sector > 0 && st_dap_has (self, ST_SIM_DAP_FAULT_FLASH_ERROR);
}

static void
st_dap_flash_start (StSimDap *self)
{
  guint32 cr = self->flash_cr;
  const StTarget *t = self->t;
  if ((cr & CR_PG) && (cr & (CR_SER | CR_MER)))
    {
      self->flash_sr |= SR_PGSERR;
      return;
    }
  if (cr & CR_MER)
    {
      for (guint i = 0; i < t->n_sectors; i++)
        if (st_dap_write_protected (self, i))
          {
            self->flash_sr |= SR_WRPERR;
            return;
          }
      for (guint i = 0; i < t->n_sectors; i++)
        st_sim_mcu_erase_sector (self->mcu, i);
      self->flip_sector = -1;
      self->busy = MASS_ERASE_TICKS;
    }
  else if (cr & CR_SER)
    {
      guint snb = (cr & CR_SNB_MASK) >> CR_SNB_SHIFT;
      if (snb >= t->n_sectors)
        {
          self->flash_sr |= SR_PGSERR;   /* no such sector on a 1 MiB part */
          return;
        }
      if (st_dap_write_protected (self, snb))
        {
          self->flash_sr |= SR_WRPERR;
          return;
        }
      st_sim_mcu_erase_sector (self->mcu, snb);
      if (self->flip_sector == (gint) snb)
        self->flip_sector = -1;
      self->busy = MAX (1u, t->sectors[snb].size / (16 * 1024)) * ERASE_TICKS_PER_16K;
    }
  else
    return;
  self->flash_cr |= CR_STRT;
}

/* A write of @size bytes into main flash: programming, or an error bit. */
static void
st_dap_flash_program (StSimDap *self, guint32 addr, const guint8 *d, guint size)
{
  guint32 cr = self->flash_cr;
  if ((cr & CR_LOCK) || !(cr & CR_PG) || (cr & (CR_SER | CR_MER)))
    {
      self->flash_sr |= SR_PGSERR;
      return;
    }
  guint psize = 1u << ((cr & CR_PSIZE_MASK) >> CR_PSIZE_SHIFT);
  if (psize != size)
    {
      self->flash_sr |= SR_PGPERR;   /* access size differs from PSIZE */
      return;
    }
  if (addr % size != 0)
    {
      self->flash_sr |= SR_PGAERR;
      return;
    }
  gint sector = st_target_sector_at (self->t, addr);
  if (sector < 0 || st_dap_write_protected (self, (guint) sector))
    {
      self->flash_sr |= SR_WRPERR;
      return;
    }
  st_sim_mcu_program (self->mcu, addr, d, size, NULL);
  if (sector != self->flip_sector)
    {
      self->flip_sector = sector;
      self->flip_address = addr & ~3u;
    }
  self->busy = PROGRAM_TICKS;
}

/* FALSE: bus error. */
static gboolean
st_dap_flash_if_write (StSimDap *self, guint32 reg, guint32 v)
{
  switch (reg)
    {
    case FLASH_ACR:
      self->flash_acr = v & 0x1F0Fu;
      return TRUE;
    case FLASH_KEYR:
      if (self->flash_lockup || !(self->flash_cr & CR_LOCK) ||
          (self->key_step == 0 && v != FLASH_KEY1) || (self->key_step == 1 && v != FLASH_KEY2))
        {
          /* RM0090: a wrong sequence returns a bus error and locks FLASH_CR up until reset. */
          self->flash_lockup = TRUE;
          self->flash_cr |= CR_LOCK;
          return FALSE;
        }
      if (++self->key_step == 2)
        {
          self->key_step = 0;
          self->flash_cr &= ~CR_LOCK;
        }
      return TRUE;
    case FLASH_OPTKEYR:
    case FLASH_OPTCR:
      return TRUE;   /* option bytes stay locked */
    case FLASH_SR:
      self->flash_sr &= ~(v & SR_W1C);
      return TRUE;
    case FLASH_CR:
      if (self->flash_cr & CR_LOCK)
        return TRUE;   /* ignored while locked */
      self->flash_cr = (self->flash_cr & CR_STRT) | (v & CR_WRITABLE);
      if (v & CR_LOCK)
        {
          self->flash_cr |= CR_LOCK;
          return TRUE;
        }
      if ((v & CR_STRT) && self->busy == 0)
        st_dap_flash_start (self);
      return TRUE;
    default:
      return TRUE;
    }
}

static guint32
st_dap_flash_if_read (StSimDap *self, guint32 reg)
{
  switch (reg)
    {
    case FLASH_ACR:
      return self->flash_acr;
    case FLASH_SR:
      return self->flash_sr | (self->busy > 0 ? SR_BSY : 0);
    case FLASH_CR:
      return self->flash_cr;
    case FLASH_OPTCR:
      if (st_dap_has (self, ST_SIM_DAP_FAULT_FLASH_ERROR))
        return (OPTCR_RESET & ~0x0FFF0000u) | (1u << 16);   /* only sector 0 writable */
      return OPTCR_RESET;
    default:
      return 0;
    }
}

/* ---- the AHB bus ---- */

/* Does an access at @addr stall while the flash is busy (RM0090: flash
 * memory and FLASH_CR accesses stall the bus until BSY clears)? */
static gboolean
st_dap_stalls (StSimDap *self, guint32 addr)
{
  if (self->busy == 0)
    return FALSE;
  return st_target_in_flash (self->t, addr, 1) || addr < self->t->flash_size ||
         (addr & ~3u) == FLASH_IF + FLASH_CR;
}

static gboolean
st_dap_in_ppb (guint32 addr)
{
  return addr >= 0xE0000000u && addr < 0xE0100000u;
}

/* Address 0 up maps the main flash (the boot alias, BOOT0 low). */
static guint32
st_dap_unalias (const StTarget *t, guint32 addr)
{
  return addr < t->flash_size ? addr + t->flash_base : addr;
}

/* A 32-bit read of the word holding @addr; FALSE: bus error. */
static gboolean
st_dap_bus_read (StSimDap *self, guint32 addr, guint32 *value)
{
  const StTarget *t = self->t;
  guint32 w = st_dap_unalias (t, addr & ~3u);
  guint8 b[4];
  if (st_sim_mcu_read (self->mcu, w, b, 4))
    {
      *value = st_get_le32 (b);
      if (st_dap_has (self, ST_SIM_DAP_FAULT_READBACK) && self->flip_sector >= 0 &&
          w == self->flip_address)
        *value ^= 1;
      if (w == t->uid_address + t->uid_length - 4 && st_sim_mcu_get_changed (self->mcu) != 0)
        {
          StSimDapDevice *d = st_dap_device (self);
          if (d != NULL)
            d->closed = TRUE;   /* the station's closing identify: GO or a swap next */
        }
      return TRUE;
    }
  if (w >= FLASH_IF && w < FLASH_IF + 0x400)
    {
      *value = st_dap_flash_if_read (self, w - FLASH_IF);
      return TRUE;
    }
  if (w >= DBGMCU_IDCODE && w < DBGMCU_IDCODE + 0x10)
    {
      *value = w == DBGMCU_IDCODE ? DBGMCU_IDCODE_VALUE : self->dbgmcu[(w - DBGMCU_IDCODE) / 4 - 1];
      return TRUE;
    }
  switch (w)
    {
    case SCS_CPUID:
      *value = CPUID_VALUE;
      return TRUE;
    case SCS_AIRCR:
      *value = 0xFA050000u;
      return TRUE;
    case SCS_DHCSR:
      /* S_REGRDY, S_HALT when halted with debug enabled, the C_ bits. */
      *value = (1u << 16) | (self->dhcsr & 0x2Fu) |
               ((self->dhcsr & 3u) == 3u ? (1u << 17) : 0);
      return TRUE;
    case SCS_DEMCR:
      *value = self->demcr;
      return TRUE;
    default:
      break;
    }
  if (st_dap_in_ppb (w) || (w >= 0x40000000u && w < 0x60000000u))
    {
      *value = 0;   /* other system and peripheral registers: read as zero */
      return TRUE;
    }
  return FALSE;
}

/* A write of @size (1, 2, 4) bytes at @addr, data on its byte lanes of @v;
 * FALSE: bus error. */
static gboolean
st_dap_bus_write (StSimDap *self, guint32 addr, guint32 v, guint size)
{
  const StTarget *t = self->t;
  guint8 b[4];
  guint lane = addr & 3u;
  st_put_le32 (b, v);
  guint32 a = st_dap_unalias (t, addr);
  switch (st_sim_mcu_region (self->mcu, a, size))
    {
    case ST_SIM_MCU_FLASH:
      st_dap_flash_program (self, a, b + lane, size);
      return TRUE;
    case ST_SIM_MCU_SRAM:
      st_sim_mcu_write_sram (self->mcu, a, b + lane, size);
      return TRUE;
    case ST_SIM_MCU_OTP:
    case ST_SIM_MCU_SYSMEM:
      return TRUE;   /* read-only: writes are ignored */
    case ST_SIM_MCU_NONE:
    default:
      break;
    }
  guint32 w = addr & ~3u;
  if (w >= FLASH_IF && w < FLASH_IF + 0x400)
    return size != 4 || st_dap_flash_if_write (self, w - FLASH_IF, v);
  if (w > DBGMCU_IDCODE && w < DBGMCU_IDCODE + 0x10)
    {
      self->dbgmcu[(w - DBGMCU_IDCODE) / 4 - 1] = v;
      return TRUE;
    }
  if (w == SCS_DHCSR && size == 4)
    {
      if ((v >> 16) == 0xA05Fu)
        self->dhcsr = v & 0x2Fu;
      return TRUE;
    }
  if (w == SCS_DEMCR && size == 4)
    {
      self->demcr = v & 0x010F07F1u;
      return TRUE;
    }
  if (w == SCS_AIRCR && size == 4)
    {
      if ((v >> 16) == 0x05FAu && (v & (1u << 2)))
        st_dap_reset_requested (self);   /* SYSRESETREQ */
      return TRUE;
    }
  if (st_dap_in_ppb (w) || (w >= 0x40000000u && w < 0x60000000u))
    return TRUE;
  return FALSE;
}

/* ---- the debug port ---- */

static gboolean
st_dap_powered (StSimDap *self)
{
  return (self->pwr_ack & (CS_CDBGPWRUPACK | CS_CSYSPWRUPACK)) ==
         (CS_CDBGPWRUPACK | CS_CSYSPWRUPACK);
}

static guint8
st_dap_dp (StSimDap *self, gboolean rnw, guint a, guint32 *data)
{
  gboolean sticky = (self->ctrl_stat & CS_STICKY) != 0;
  switch (a)
    {
    case 0x0:
      if (rnw)
        *data = DPIDR_VALUE;
      else
        {
          guint32 v = *data;
          if (v & ABORT_DAPABORT)
            self->wait_left = 0;
          if (v & ABORT_STKCMPCLR)
            self->ctrl_stat &= ~CS_STICKYCMP;
          if (v & ABORT_STKERRCLR)
            self->ctrl_stat &= ~CS_STICKYERR;
          if (v & ABORT_WDERRCLR)
            self->ctrl_stat &= ~CS_WDATAERR;
          if (v & ABORT_ORUNERRCLR)
            self->ctrl_stat &= ~CS_STICKYORUN;
        }
      return ACK_OK;
    case 0x4:
      if ((self->select & 0xF) != 0)
        {
          if (rnw)
            *data = 0;   /* DLCR and friends */
          return ACK_OK;
        }
      if (rnw)
        {
          *data = (self->ctrl_stat & ~(CS_CDBGPWRUPACK | CS_CSYSPWRUPACK)) | self->pwr_ack;
          /* The acknowledges follow the requests one read later. */
          self->pwr_ack = (self->ctrl_stat & CS_CDBGPWRUPREQ ? CS_CDBGPWRUPACK : 0) |
                          (self->ctrl_stat & CS_CSYSPWRUPREQ ? CS_CSYSPWRUPACK : 0);
        }
      else
        self->ctrl_stat = (self->ctrl_stat & CS_STICKY) | (*data & CS_WRITABLE);
      return ACK_OK;
    case 0x8:
      if (rnw)
        *data = self->rdbuff;   /* RESEND */
      else
        self->select = *data;
      return ACK_OK;
    default:
      if (!rnw)
        return ACK_OK;
      if (sticky)
        return ACK_FAULT;
      *data = self->rdbuff;     /* RDBUFF */
      return ACK_OK;
    }
}

/* The address a MEM-AP access at @reg goes to (DRW, BD0-3), or FALSE. */
static gboolean
st_dap_ap_address (StSimDap *self, guint reg, guint32 *addr)
{
  if ((self->select >> 24) != 0)
    return FALSE;
  if (reg == AP_DRW)
    *addr = self->tar;
  else if (reg >= AP_BD0 && reg < AP_BD0 + 0x10)
    *addr = (self->tar & ~0xFu) | (reg - AP_BD0);
  else
    return FALSE;
  return TRUE;
}

static guint8
st_dap_wait (StSimDap *self)
{
  if (self->ctrl_stat & CS_ORUNDETECT)
    self->ctrl_stat |= CS_STICKYORUN;
  return ACK_WAIT;
}

static guint8
st_dap_bus_error (StSimDap *self)
{
  self->ctrl_stat |= CS_STICKYERR;
  return ACK_FAULT;
}

static guint8
st_dap_ap (StSimDap *self, gboolean rnw, guint a, guint32 *data)
{
  guint reg = (self->select & 0xF0) | a;
  if ((self->select >> 24) != 0)
    {
      /* Only AP 0 exists: other APs read as zero (IDR 0: no AP). */
      if (rnw)
        *data = 0;
      return ACK_OK;
    }
  guint32 addr = 0;
  if (st_dap_ap_address (self, reg, &addr))
    {
      if (st_dap_stalls (self, addr))
        return st_dap_wait (self);
      guint size_code = self->csw & 7u;
      if (size_code > 2)
        return st_dap_bus_error (self);
      guint size = 1u << size_code;
      if (reg != AP_DRW)
        size = 4;
      if (rnw)
        {
          guint32 v = 0;
          if (!st_dap_bus_read (self, addr, &v))
            return st_dap_bus_error (self);
          *data = v;   /* the whole word: the byte lanes hold the data */
        }
      else if (!st_dap_bus_write (self, addr & ~(size - 1u), *data, size))
        return st_dap_bus_error (self);
      if (reg == AP_DRW && (self->csw & 0x30u) != 0)
        self->tar = (self->tar & ~TAR_PAGE) | ((self->tar + size) & TAR_PAGE);
      return ACK_OK;
    }
  switch (reg)
    {
    case AP_CSW:
      if (rnw)
        *data = (self->csw & CSW_WRITABLE) | CSW_DEVICEEN;
      else
        self->csw = *data & CSW_WRITABLE;
      return ACK_OK;
    case AP_TAR:
      if (rnw)
        *data = self->tar;
      else
        self->tar = *data;
      return ACK_OK;
    case AP_CFG:
      if (rnw)
        *data = 0;
      return ACK_OK;
    case AP_BASE:
      if (rnw)
        *data = AHB_AP_BASE;
      return ACK_OK;
    case AP_IDR:
      if (rnw)
        *data = AHB_AP_IDR;
      return ACK_OK;
    default:
      if (rnw)
        *data = 0;
      return ACK_OK;
    }
}

/* One SWD transaction as the target answers it. */
static guint8
st_dap_swd_once (StSimDap *self, guint8 req, guint32 *data)
{
  st_dap_tick (self);
  if (!self->slot.present || !self->swd || st_dap_has (self, ST_SIM_DAP_FAULT_NO_TARGET))
    return ACK_NONE;
  gboolean ap = (req & REQ_APNDP) != 0;
  gboolean rnw = (req & REQ_RNW) != 0;
  guint a = req & REQ_A32;
  if (self->line_reset)
    {
      /* After a line reset the DP answers nothing but a DPIDR read. */
      if (ap || !rnw || a != 0)
        return ACK_NONE;
      self->line_reset = FALSE;
    }
  if (!ap)
    return st_dap_dp (self, rnw, a, data);
  if (self->ctrl_stat & CS_STICKY)
    return ACK_FAULT;
  if (self->wait_left > 0)
    {
      self->wait_left--;
      return st_dap_wait (self);
    }
  if (st_dap_has (self, ST_SIM_DAP_FAULT_WAIT) && g_rand_int_range (self->rand_fault, 0, 16) == 0)
    {
      guint max = MIN ((guint) self->wait_retry * 2 + 3, WAIT_BURST_MAX);
      self->wait_left = (guint) g_rand_int_range (self->rand_fault, 1, (gint32) max + 1) - 1;
      return st_dap_wait (self);
    }
  if (self->fault_holdoff > 0)
    self->fault_holdoff--;
  else if (st_dap_has (self, ST_SIM_DAP_FAULT_FAULT) &&
           g_rand_int_range (self->rand_fault, 0, FAULT_ONE_IN) == 0)
    {
      /* Now and then: never again within FAULT_HOLDOFF accesses. */
      self->fault_holdoff = FAULT_HOLDOFF;
      return st_dap_bus_error (self);
    }
  if (!st_dap_powered (self))
    return st_dap_bus_error (self);   /* no access until the debug domain is powered */
  guint8 ack = st_dap_ap (self, rnw, a, data);
  if (ack == ACK_OK && rnw)
    self->rdbuff = *data;
  return ack;
}

/* One transfer as the probe runs it: WAIT is retried wait_retry times. */
static guint8
st_dap_swd (StSimDap *self, guint8 req, guint32 *data)
{
  for (guint attempt = 0;; attempt++)
    {
      guint32 d = *data;
      guint8 ack = st_dap_swd_once (self, req, &d);
      if (ack != ACK_WAIT || attempt >= self->wait_retry)
        {
          *data = d;
          return ack;
        }
    }
}

/* ---- SWJ sequences ---- */

static void
st_dap_seq_bit (StSimDap *self, guint bit)
{
  self->seq |= (guint16) (bit << self->seq_n);
  if (++self->seq_n < 16)
    return;
  self->collecting = FALSE;
  if (self->seq == 0xE79E)
    {
      self->swd = TRUE;          /* JTAG-to-SWD; a line reset must follow */
      self->line_reset = FALSE;
    }
  else if (self->seq == 0xE73C)
    self->swd = FALSE;           /* SWD-to-JTAG */
}

static void
st_dap_swj_bit (StSimDap *self, guint bit)
{
  if (bit)
    {
      if (self->collecting)
        st_dap_seq_bit (self, 1);
      if (++self->ones == 50)
        {
          self->collecting = FALSE;
          if (self->swd)
            self->line_reset = TRUE;
        }
      return;
    }
  if (self->ones >= 50)
    {
      self->collecting = TRUE;
      self->seq = 0;
      self->seq_n = 0;
    }
  self->ones = 0;
  if (self->collecting)
    st_dap_seq_bit (self, 0);
}

/* ---- commands ---- */

typedef struct {
  const guint8 *req;
  gsize len;
  guint8 *resp;
  gsize max;
} StDapPacket;

/* DAP_SWJ_Sequence: its bit count (0 means 256), FALSE when the packet is
 * shorter than the bits it announces; then bit @b, LSB first. */
static gboolean
st_dap_swj_bits (const StDapPacket *p, guint *bits)
{
  if (p->len < 2)
    return FALSE;
  *bits = p->req[1] == 0 ? 256 : p->req[1];
  return p->len >= 2 + (gsize) (*bits + 7) / 8;
}

static guint
st_dap_swj_value (const StDapPacket *p, guint b)
{
  return (p->req[2 + b / 8] >> (b % 8)) & 1u;
}

static gsize
st_dap_status (StDapPacket *p, guint8 status)
{
  if (p->max < 2)
    return 0;
  p->resp[0] = p->req[0];
  p->resp[1] = status;
  return 2;
}

static gsize
st_dap_info (StSimDap *self, StDapPacket *p)
{
  const char *s = NULL;
  guint8 v[4];
  gsize vlen = 0;
  if (p->max < 2)
    return 0;
  p->resp[0] = DAP_INFO;
  p->resp[1] = 0;
  if (p->len < 2)
    return 2;
  switch (p->req[1])
    {
    case 0x01: s = "Station"; break;
    case 0x02: s = "Station CMSIS-DAP"; break;
    case 0x03: s = self->serial; break;
    case 0x04: s = "2.1.0"; break;
    case 0x05: s = "STMicroelectronics"; break;
    case 0x06: s = "STM32F407VG"; break;
    case 0x09: s = "0.1.0"; break;
    case 0xF0: v[0] = 0x01; vlen = 1; break;               /* SWD only */
    case 0xFE: v[0] = 4; vlen = 1; break;                  /* packet count */
    case 0xFF: v[0] = (guint8) ST_SIM_DAP_PACKET_SIZE;     /* packet size */
               v[1] = (guint8) (ST_SIM_DAP_PACKET_SIZE >> 8); vlen = 2; break;
    default: break;
    }
  if (s != NULL)
    {
      gsize n = strlen (s) + 1;
      if (n + 2 > p->max || n > 255)
        return 2;
      memcpy (p->resp + 2, s, n);
      p->resp[1] = (guint8) n;
      return 2 + n;
    }
  if (vlen > 0 && vlen + 2 <= p->max)
    {
      memcpy (p->resp + 2, v, vlen);
      p->resp[1] = (guint8) vlen;
      return 2 + vlen;
    }
  return 2;
}

/* The data word of a transfer at *@i of the request; FALSE when the packet
 * ends before it. */
static gboolean
st_dap_take32 (const StDapPacket *p, gsize *i, guint32 *word)
{
  if (*i + 4 > p->len)
    return FALSE;
  *word = st_get_le32 (p->req + *i);
  *i += 4;
  return TRUE;
}

/* One plain register transfer of DAP_Transfer or DAP_TransferBlock (@word:
 * a write's data): the SWD access, a read's word appended to the answer at
 * *@o. FALSE ends the packet, with *@response saying why. */
static gboolean
st_dap_transfer_word (StSimDap *self, StDapPacket *p, guint8 rq, guint32 word, gsize *o,
                      guint8 *response)
{
  gboolean rnw = (rq & REQ_RNW) != 0;
  if (rnw && *o + 4 > p->max)
    {
      *response |= RESP_PROTOCOL_ERROR;   /* the answer would not fit */
      return FALSE;
    }
  guint8 ack = st_dap_swd (self, rq & (REQ_APNDP | REQ_RNW | REQ_A32), &word);
  *response = ack;
  if (ack != ACK_OK)
    return FALSE;
  if (rnw)
    {
      st_put_le32 (p->resp + *o, word);
      *o += 4;
    }
  return TRUE;
}

/* The answer header of DAP_Transfer (@head 3 bytes) or DAP_TransferBlock
 * (4): the command, then zeros; *@o its length. FALSE ends the command: no
 * room for the header (*@o 0), or a request shorter than its own header
 * (@need bytes; the response byte, the header's last, says protocol error). */
static gboolean
st_dap_transfer_head (StDapPacket *p, guint8 cmd, gsize head, gsize need, gsize *o)
{
  *o = 0;
  if (p->max < head)
    return FALSE;
  memset (p->resp, 0, head);
  p->resp[0] = cmd;
  *o = head;
  if (p->len < need)
    {
      p->resp[head - 1] = RESP_PROTOCOL_ERROR;
      return FALSE;
    }
  return TRUE;
}

static gsize
st_dap_transfer (StSimDap *self, StDapPacket *p)
{
  gsize o = 0;
  if (!st_dap_transfer_head (p, DAP_TRANSFER, 3, 3, &o))
    return o;
  guint8 *out = p->resp;
  guint count = p->req[2];
  gsize i = 3;
  guint done = 0;
  guint8 response = 0;
  for (guint n = 0; n < count; n++)
    {
      if (!self->connected)
        return o;   /* no port: nothing is clocked out (count 0, response 0) */
      if (i >= p->len)
        {
          response |= RESP_PROTOCOL_ERROR;   /* the packet ends early */
          break;
        }
      guint8 rq = p->req[i++];
      gboolean rnw = (rq & REQ_RNW) != 0;
      gboolean has_data = !rnw || (rq & REQ_MATCH_VALUE);
      guint32 word = 0;
      if (has_data && !st_dap_take32 (p, &i, &word))
        {
          response |= RESP_PROTOCOL_ERROR;
          break;
        }
      guint8 swd_req = rq & (REQ_APNDP | REQ_RNW | REQ_A32);
      if (!rnw && (rq & REQ_MATCH_MASK))
        {
          self->match_mask = word;
          response = ACK_OK;
          done++;
          continue;
        }
      if (rnw && (rq & REQ_MATCH_VALUE))
        {
          guint8 ack = ACK_OK;
          gboolean matched = FALSE;
          for (guint r = 0; r <= self->match_retry && ack == ACK_OK && !matched; r++)
            {
              guint32 v = 0;
              ack = st_dap_swd (self, swd_req, &v);
              matched = ack == ACK_OK && (v & self->match_mask) == word;
            }
          response = ack;
          if (ack != ACK_OK)
            break;
          if (!matched)
            {
              response |= RESP_MISMATCH;
              break;
            }
          done++;
          continue;
        }
      if (!st_dap_transfer_word (self, p, rq, word, &o, &response))
        break;
      done++;
    }
  out[1] = (guint8) done;
  out[2] = response;
  return o;
}

static gsize
st_dap_transfer_block (StSimDap *self, StDapPacket *p)
{
  gsize o = 0;
  if (!st_dap_transfer_head (p, DAP_TRANSFER_BLOCK, 4, 5, &o))
    return o;
  guint8 *out = p->resp;
  guint count = (guint) p->req[2] | (guint) p->req[3] << 8;
  guint8 rq = p->req[4];
  gboolean rnw = (rq & REQ_RNW) != 0;
  gsize i = 5;
  guint done = 0;
  guint8 response = 0;
  if (!self->connected)
    return o;
  for (guint n = 0; n < count; n++)
    {
      guint32 word = 0;
      if (!rnw && !st_dap_take32 (p, &i, &word))
        {
          response |= RESP_PROTOCOL_ERROR;   /* fewer words than announced */
          break;
        }
      if (!st_dap_transfer_word (self, p, rq, word, &o, &response))
        break;
      done++;
    }
  out[1] = (guint8) done;
  out[2] = (guint8) (done >> 8);
  out[3] = response;
  return o;
}

static gsize
st_dap_command (StSimDap *self, StDapPacket *p)
{
  const guint8 *r = p->req;
  switch (r[0])
    {
    case DAP_INFO:
      return st_dap_info (self, p);
    case DAP_HOST_STATUS:
    case DAP_DELAY:
    case DAP_SWD_CONFIGURE:
      return st_dap_status (p, p->len >= (r[0] == DAP_HOST_STATUS || r[0] == DAP_DELAY ? 3u : 2u)
                                 ? DAP_OK : DAP_ERROR);
    case DAP_CONNECT:
      {
        guint8 port = p->len >= 2 ? r[1] : 0xFF;
        self->connected = port == 0 || port == 1;   /* default and SWD; no JTAG */
        return st_dap_status (p, self->connected ? 1 : 0);
      }
    case DAP_DISCONNECT:
      self->connected = FALSE;
      return st_dap_status (p, DAP_OK);
    case DAP_TRANSFER_CONFIGURE:
      if (p->len < 6)
        return st_dap_status (p, DAP_ERROR);
      self->wait_retry = (guint16) (r[2] | r[3] << 8);
      self->match_retry = (guint16) (r[4] | r[5] << 8);
      return st_dap_status (p, DAP_OK);
    case DAP_TRANSFER:
      return st_dap_transfer (self, p);
    case DAP_TRANSFER_BLOCK:
      return st_dap_transfer_block (self, p);
    case DAP_TRANSFER_ABORT:
      return 0;   /* no response */
    case DAP_WRITE_ABORT:
      {
        if (p->len < 6 || !self->connected)
          return st_dap_status (p, DAP_ERROR);
        guint32 v = st_get_le32 (r + 2);
        st_dap_swd (self, 0x00, &v);   /* DP write, A 0x0: ABORT */
        return st_dap_status (p, DAP_OK);
      }
    case DAP_RESET_TARGET:
      {
        if (p->max < 3)
          return 0;
        /* The probe's reset sequence: nRESET pulsed, the target restarts. */
        gboolean target = self->slot.present && !st_dap_has (self, ST_SIM_DAP_FAULT_NO_TARGET);
        if (target)
          st_dap_reset_requested (self);
        p->resp[0] = DAP_RESET_TARGET;
        p->resp[1] = DAP_OK;
        p->resp[2] = target ? 1 : 0;   /* Execute: a reset sequence ran */
        return 3;
      }
    case DAP_SWJ_PINS:
      {
        if (p->len < 7)
          return st_dap_status (p, DAP_ERROR);
        guint8 out = r[1], sel = r[2];
        if ((sel & 0x80) && !(out & 0x80))
          self->nreset_low = TRUE;
        else if ((sel & 0x80) && self->nreset_low)
          {
            self->nreset_low = FALSE;
            if (self->slot.present)
              st_dap_reset_requested (self);   /* nRESET pulsed: the target restarts */
          }
        guint8 in = 0x80 | 0x02 | (sel & 0x01 ? (out & 0x01) : 0);
        return st_dap_status (p, in);
      }
    case DAP_SWJ_CLOCK:
      if (p->len < 5 || st_get_le32 (r + 1) == 0)
        return st_dap_status (p, DAP_ERROR);
      return st_dap_status (p, DAP_OK);
    case DAP_SWJ_SEQUENCE:
      {
        guint bits = 0;
        if (!st_dap_swj_bits (p, &bits))
          return st_dap_status (p, DAP_ERROR);
        if (self->connected && self->slot.present)
          for (guint b = 0; b < bits; b++)
            st_dap_swj_bit (self, st_dap_swj_value (p, b));
        return st_dap_status (p, DAP_OK);
      }
    default:
      if (p->max < 1)
        return 0;
      p->resp[0] = DAP_INVALID;
      return 1;
    }
}

/* Whether @p starts a new session with a finished device in the socket:
 * DAP_Connect, or an SWJ sequence holding a line reset (>= 50 ones,
 * counting those already clocked). */
static gboolean
st_dap_starts_session (StSimDap *self, const StDapPacket *p)
{
  StSimDapDevice *d = st_dap_device (self);
  if (d == NULL || !d->closed || d->started || p->len < 1)
    return FALSE;
  if (p->req[0] == DAP_CONNECT)
    return TRUE;
  guint bits = 0;
  if (p->req[0] != DAP_SWJ_SEQUENCE || !self->connected || !st_dap_swj_bits (p, &bits))
    return FALSE;   /* refused: not clocked out */
  guint ones = self->ones;
  for (guint b = 0; b < bits; b++)
    {
      if (!st_dap_swj_value (p, b))
        ones = 0;
      else if (++ones == 50)
        return TRUE;   /* as st_dap_swj_bit counts a line reset */
    }
  return FALSE;
}

gsize
st_sim_dap_process (StSimDap *self, const guint8 *req, gsize len, guint8 *resp, gsize resp_max)
{
  g_return_val_if_fail (self != NULL && (req != NULL || len == 0) && resp != NULL, 0);
  if (len == 0)
    return 0;
  StDapPacket p = {
    .req = req,
    .len = MIN (len, (gsize) ST_SIM_DAP_PACKET_SIZE),
    .resp = resp,
    .max = MIN (resp_max, (gsize) ST_SIM_DAP_PACKET_SIZE),
  };
  g_mutex_lock (&self->lock);
  if (st_dap_starts_session (self, &p))
    {
      /* A new session with a finished device: the operator has swapped it
       * already; the packet reaches what is in the socket now. */
      st_dap_leave (self);
    }
  st_dap_update_socket (self);
  gsize n = st_dap_command (self, &p);
  if (self->leaving)
    st_dap_leave (self);
  g_mutex_unlock (&self->lock);
  return n;
}

/* ---- life cycle ---- */

static gboolean
st_dap_serial_ok (const char *s)
{
  gsize n = strlen (s);
  if (n == 0 || n > 64)
    return FALSE;
  for (gsize i = 0; i < n; i++)
    if (!g_ascii_isalnum (s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
      return FALSE;
  return TRUE;
}

StSimDap *
st_sim_dap_new (const StSimDapConfig *config, const char *serial, GError **error)
{
  g_return_val_if_fail (config != NULL, NULL);
  if (serial == NULL || !st_dap_serial_ok (serial))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "probe serial \"%s\" is not 1 to 64 letters, digits, '-', '_' or '.'",
                   serial != NULL ? serial : "(null)");
      return NULL;
    }
  StSimDap *self = g_new0 (StSimDap, 1);
  g_mutex_init (&self->lock);
  self->config = *config;
  if (self->config.vid == 0 && self->config.pid == 0)
    {
      self->config.vid = 0xc251;
      self->config.pid = 0xf00a;
    }
  self->serial = g_strdup (serial);
  self->t = st_target_stm32f4 ();
  self->mcu = st_sim_mcu_new (self->t);
  self->rand_uid = g_rand_new_with_seed (config->seed);
  self->rand_fault = g_rand_new_with_seed (config->seed ^ 0x9E3779B9u);
  self->devices = g_array_new (FALSE, TRUE, sizeof (StSimDapDevice));
  self->wait_retry = 100;
  self->match_retry = 0;
  self->match_mask = 0xFFFFFFFFu;
  st_dap_update_socket (self);
  return self;
}

void
st_sim_dap_free (StSimDap *self)
{
  if (self == NULL)
    return;
  st_sim_mcu_free (self->mcu);
  g_rand_free (self->rand_uid);
  g_rand_free (self->rand_fault);
  g_array_unref (self->devices);
  g_free (self->serial);
  g_mutex_clear (&self->lock);
  g_free (self);
}

guint
st_sim_dap_get_n_presented (StSimDap *self)
{
  g_return_val_if_fail (self != NULL, 0);
  g_mutex_lock (&self->lock);
  guint n = self->slot.n_presented;
  g_mutex_unlock (&self->lock);
  return n;
}

gboolean
st_sim_dap_peek (StSimDap *self, guint32 address, guint8 *buf, gsize len)
{
  g_return_val_if_fail (self != NULL && buf != NULL, FALSE);
  g_mutex_lock (&self->lock);
  gboolean ok = st_sim_mcu_read (self->mcu, address, buf, len);
  g_mutex_unlock (&self->lock);
  return ok;
}

void
st_sim_dap_get_ids (StSimDap *self, guint16 *vid, guint16 *pid)
{
  *vid = self->config.vid;
  *pid = self->config.pid;
}

gboolean
st_sim_dap_is_present (StSimDap *self)
{
  g_return_val_if_fail (self != NULL, FALSE);
  g_mutex_lock (&self->lock);
  st_dap_update_socket (self);
  gboolean present = self->slot.present;
  g_mutex_unlock (&self->lock);
  return present;
}

gboolean
st_sim_dap_get_device (StSimDap *self, guint index, StSimDapDevice *device)
{
  g_return_val_if_fail (self != NULL && device != NULL, FALSE);
  g_mutex_lock (&self->lock);
  gboolean ok = index < self->devices->len;
  if (ok)
    *device = g_array_index (self->devices, StSimDapDevice, index);
  g_mutex_unlock (&self->lock);
  return ok;
}
