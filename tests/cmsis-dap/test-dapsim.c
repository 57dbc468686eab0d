/* The emulated CMSIS-DAP v2 probe: the pure simulator (st-simdap.h) at the
 * level of DAP packets, then the same probe served to libusb through
 * umockdev (st-dap-testbed.h), in this process and in a child process. */
#include <glib.h>
#include <string.h>

#include "st-error.h"
#include "st-simdap.h"

#ifndef ST_DAPSIM_NO_UMOCKDEV
#include "dap-usb-host.h"
#include "st-dap-testbed.h"
#endif

/* ---- a tiny DAP host over a packet transport ---- */

typedef gsize (*HostXfer) (gpointer user, const guint8 *req, gsize len, guint8 *resp, gsize max);

typedef struct {
  HostXfer xfer;
  gpointer user;
  guint8 resp[ST_SIM_DAP_PACKET_SIZE];
  gsize resp_len;
} Host;

static gsize
direct_xfer (gpointer user, const guint8 *req, gsize len, guint8 *resp, gsize max)
{
  return st_sim_dap_process (user, req, len, resp, max);
}

static void
host_init_direct (Host *h, StSimDap *dap)
{
  memset (h, 0, sizeof *h);
  h->xfer = direct_xfer;
  h->user = dap;
}

static const guint8 *
host_cmd (Host *h, const guint8 *req, gsize len)
{
  h->resp_len = h->xfer (h->user, req, len, h->resp, sizeof h->resp);
  return h->resp;
}

static void
put32 (guint8 *p, guint32 v)
{
  p[0] = (guint8) v; p[1] = (guint8) (v >> 8); p[2] = (guint8) (v >> 16); p[3] = (guint8) (v >> 24);
}

static guint32
get32 (const guint8 *p)
{
  return (guint32) p[0] | (guint32) p[1] << 8 | (guint32) p[2] << 16 | (guint32) p[3] << 24;
}

/* One DAP_Transfer of a single request; returns the response byte. */
static guint8
host_xfer1 (Host *h, guint8 rq, guint32 *data)
{
  guint8 req[8] = { 0x05, 0x00, 0x01, rq };
  gsize len = 4;
  if (!(rq & 0x02) || (rq & 0x10))
    {
      put32 (req + 4, *data);
      len = 8;
    }
  host_cmd (h, req, len);
  g_assert_cmpuint (h->resp[0], ==, 0x05);
  if (h->resp[2] == 0x01)
    g_assert_cmpuint (h->resp[1], ==, 1);
  else
    g_assert_cmpuint (h->resp[1], ==, 0);
  if ((rq & 0x02) && !(rq & 0x10) && h->resp[2] == 0x01)
    {
      g_assert_cmpuint (h->resp_len, ==, 7);
      *data = get32 (h->resp + 3);
    }
  return h->resp[2];
}

#define DP_READ(a) (0x02 | ((a) & 0xC))
#define DP_WRITE(a) ((a) & 0xC)
#define AP_READ(a) (0x03 | ((a) & 0xC))
#define AP_WRITE(a) (0x01 | ((a) & 0xC))

static guint8
dp_read (Host *h, guint a, guint32 *v)
{
  return host_xfer1 (h, (guint8) DP_READ (a), v);
}

static guint8
dp_write (Host *h, guint a, guint32 v)
{
  return host_xfer1 (h, (guint8) DP_WRITE (a), &v);
}

static guint8
ap_read (Host *h, guint a, guint32 *v)
{
  return host_xfer1 (h, (guint8) AP_READ (a), v);
}

static guint8
ap_write (Host *h, guint a, guint32 v)
{
  return host_xfer1 (h, (guint8) AP_WRITE (a), &v);
}

static void
host_simple (Host *h, const guint8 *req, gsize len, guint8 status)
{
  host_cmd (h, req, len);
  g_assert_cmpuint (h->resp_len, ==, 2);
  g_assert_cmpuint (h->resp[0], ==, req[0]);
  g_assert_cmpuint (h->resp[1], ==, status);
}

static void
host_wait_retry (Host *h, guint16 retry)
{
  const guint8 req[] = { 0x04, 0x00, (guint8) retry, (guint8) (retry >> 8), 0x00, 0x00 };
  host_simple (h, req, sizeof req, 0x00);
}

/* DAP_Connect(SWD), JTAG-to-SWD, line reset, idle. */
static void
host_swd_switch (Host *h)
{
  const guint8 conn[] = { 0x02, 0x01 };
  host_simple (h, conn, sizeof conn, 0x01);
  const guint8 seq[] = { 0x12, 136,
                         0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                         0x9e, 0xe7,
                         0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                         0x00 };
  host_simple (h, seq, sizeof seq, 0x00);
}

static void
host_line_reset (Host *h)
{
  const guint8 seq[] = { 0x12, 64, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00 };
  host_simple (h, seq, sizeof seq, 0x00);
}

/* Connect, read DPIDR, clear errors, power up the debug domain. */
static void
host_attach (Host *h)
{
  host_swd_switch (h);
  guint32 v = 0;
  g_assert_cmphex (dp_read (h, 0x0, &v), ==, 0x01);
  g_assert_cmphex (v, ==, 0x2BA01477);
  g_assert_cmphex (dp_write (h, 0x0, 0x1E), ==, 0x01);
  g_assert_cmphex (dp_write (h, 0x8, 0), ==, 0x01);
  g_assert_cmphex (dp_write (h, 0x4, 0x50000000), ==, 0x01);
  guint polls = 0;
  do
    {
      g_assert_cmphex (dp_read (h, 0x4, &v), ==, 0x01);
      polls++;
      g_assert_cmpuint (polls, <, 10);
    }
  while ((v & 0xA0000000) != 0xA0000000);
  g_assert_cmphex (ap_write (h, 0x0, 0x23000052), ==, 0x01);   /* word, increment */
}

static guint32
mem_read (Host *h, guint32 addr)
{
  guint32 v = 0;
  g_assert_cmphex (ap_write (h, 0x4, addr), ==, 0x01);
  g_assert_cmphex (ap_read (h, 0xC, &v), ==, 0x01);
  return v;
}

static guint8
mem_write (Host *h, guint32 addr, guint32 v)
{
  g_assert_cmphex (ap_write (h, 0x4, addr), ==, 0x01);
  return ap_write (h, 0xC, v);
}

/* Writes TAR, retrying on WAIT as a host does. */
static void
set_tar (Host *h, guint32 addr)
{
  guint8 r;
  guint tries = 0;
  while ((r = ap_write (h, 0x4, addr)) == 0x02)
    g_assert_cmpuint (++tries, <, 100);
  g_assert_cmphex (r, ==, 0x01);
}

/* A TransferBlock of @n DRW reads (no splitting at 1 KiB). */
static guint8
block_read (Host *h, guint32 addr, guint n, guint32 *out, guint *done)
{
  set_tar (h, addr);
  const guint8 req[] = { 0x06, 0x00, (guint8) n, (guint8) (n >> 8), AP_READ (0xC) };
  host_cmd (h, req, sizeof req);
  g_assert_cmpuint (h->resp[0], ==, 0x06);
  *done = (guint) h->resp[1] | (guint) h->resp[2] << 8;
  g_assert_cmpuint (h->resp_len, ==, 4 + 4 * (gsize) *done);
  for (guint i = 0; i < *done; i++)
    out[i] = get32 (h->resp + 4 + 4 * i);
  return h->resp[3];
}

static guint8
block_write (Host *h, guint32 addr, guint n, const guint32 *words, guint *done)
{
  set_tar (h, addr);
  guint8 req[ST_SIM_DAP_PACKET_SIZE];
  g_assert_cmpuint (5 + 4 * (gsize) n, <=, sizeof req);
  req[0] = 0x06; req[1] = 0; req[2] = (guint8) n; req[3] = (guint8) (n >> 8);
  req[4] = AP_WRITE (0xC);
  for (guint i = 0; i < n; i++)
    put32 (req + 5 + 4 * i, words[i]);
  host_cmd (h, req, 5 + 4 * (gsize) n);
  g_assert_cmpuint (h->resp_len, ==, 4);
  *done = (guint) h->resp[1] | (guint) h->resp[2] << 8;
  return h->resp[3];
}

static StSimDap *
new_dap (guint32 seed, guint32 faults, guint units)
{
  StSimDapConfig cfg = { .units = units, .seed = seed, .faults = faults };
  g_autoptr(GError) error = NULL;
  StSimDap *dap = st_sim_dap_new (&cfg, "SIM0001", &error);
  g_assert_no_error (error);
  return dap;
}

/* ---- (1) the simulator ---- */

static void
test_info (void)
{
  g_autoptr(StSimDap) dap = new_dap (1, 0, 0);
  Host h;
  host_init_direct (&h, dap);
  const guint8 q_product[] = { 0x00, 0x02 };
  host_cmd (&h, q_product, 2);
  g_assert_cmpuint (h.resp[1], ==, h.resp_len - 2);
  g_assert_nonnull (strstr ((const char *) h.resp + 2, "CMSIS-DAP"));
  g_assert_cmpuint (h.resp[h.resp_len - 1], ==, 0);
  const guint8 q_serial[] = { 0x00, 0x03 };
  host_cmd (&h, q_serial, 2);
  g_assert_cmpstr ((const char *) h.resp + 2, ==, "SIM0001");
  const guint8 q_caps[] = { 0x00, 0xF0 };
  host_cmd (&h, q_caps, 2);
  g_assert_cmpuint (h.resp_len, ==, 3);
  g_assert_cmphex (h.resp[2] & 0x03, ==, 0x01);   /* SWD, no JTAG */
  const guint8 q_size[] = { 0x00, 0xFF };
  host_cmd (&h, q_size, 2);
  g_assert_cmpuint (h.resp_len, ==, 4);
  g_assert_cmpuint (h.resp[2] | h.resp[3] << 8, ==, 512);
  const guint8 q_count[] = { 0x00, 0xFE };
  host_cmd (&h, q_count, 2);
  g_assert_cmpuint (h.resp_len, ==, 3);
  g_assert_cmpuint (h.resp[2], >=, 1);
  const guint8 q_unknown[] = { 0x00, 0x42 };
  host_cmd (&h, q_unknown, 2);
  g_assert_cmpuint (h.resp_len, ==, 2);
  g_assert_cmpuint (h.resp[1], ==, 0);
  const guint8 unknown[] = { 0x5A, 1, 2, 3 };
  host_cmd (&h, unknown, sizeof unknown);
  g_assert_cmpuint (h.resp_len, ==, 1);
  g_assert_cmpuint (h.resp[0], ==, 0xFF);
  const guint8 abort_cmd[] = { 0x07 };
  host_cmd (&h, abort_cmd, 1);
  g_assert_cmpuint (h.resp_len, ==, 0);   /* DAP_TransferAbort has no response */
  const guint8 jtag[] = { 0x02, 0x02 };
  host_simple (&h, jtag, 2, 0x00);        /* an SWD-only probe refuses DAP_Connect(JTAG): port 0 */
}

static void
test_connect_and_line_reset (void)
{
  g_autoptr(StSimDap) dap = new_dap (2, 0, 0);
  Host h;
  host_init_direct (&h, dap);
  guint32 v = 0;
  /* Not connected: nothing is clocked out. */
  const guint8 rd[] = { 0x05, 0x00, 0x01, DP_READ (0) };
  host_cmd (&h, rd, sizeof rd);
  g_assert_cmpuint (h.resp_len, ==, 3);
  g_assert_cmpuint (h.resp[1], ==, 0);
  g_assert_cmpuint (h.resp[2], ==, 0);
  /* Connected but still in JTAG mode: a line reset alone gets no ACK. */
  const guint8 conn[] = { 0x02, 0x00 };
  host_simple (&h, conn, 2, 0x01);
  host_line_reset (&h);
  g_assert_cmphex (dp_read (&h, 0, &v), ==, 0x07);
  host_swd_switch (&h);
  /* After a line reset only a DPIDR read is answered. */
  g_assert_cmphex (dp_read (&h, 0x4, &v), ==, 0x07);
  g_assert_cmphex (dp_read (&h, 0x0, &v), ==, 0x01);
  g_assert_cmphex (v, ==, 0x2BA01477);
  g_assert_cmphex (dp_read (&h, 0x4, &v), ==, 0x01);
  host_line_reset (&h);
  g_assert_cmphex (dp_write (&h, 0x8, 0), ==, 0x07);
  g_assert_cmphex (dp_read (&h, 0x0, &v), ==, 0x01);
  g_assert_cmphex (dp_write (&h, 0x8, 0), ==, 0x01);
}

static void
test_power_up_and_sticky (void)
{
  g_autoptr(StSimDap) dap = new_dap (3, 0, 0);
  Host h;
  host_init_direct (&h, dap);
  host_swd_switch (&h);
  guint32 v = 0;
  g_assert_cmphex (dp_read (&h, 0x0, &v), ==, 0x01);
  /* No AP access before power-up: FAULT, and the error sticks. */
  g_assert_cmphex (ap_read (&h, 0x0, &v), ==, 0x04);
  g_assert_cmphex (dp_read (&h, 0x4, &v), ==, 0x01);
  g_assert_cmphex (v & 0x20, ==, 0x20);
  g_assert_cmphex (dp_read (&h, 0xC, &v), ==, 0x04);     /* RDBUFF faults too */
  g_assert_cmphex (dp_write (&h, 0x4, 0x50000000), ==, 0x01);
  g_assert_cmphex (dp_read (&h, 0x4, &v), ==, 0x01);
  g_assert_cmphex (v & 0xF0000000, ==, 0x50000000);     /* requested, not yet acknowledged */
  g_assert_cmphex (dp_read (&h, 0x4, &v), ==, 0x01);
  g_assert_cmphex (v & 0xF0000000, ==, 0xF0000000);
  g_assert_cmphex (ap_read (&h, 0x0, &v), ==, 0x04);     /* still sticky */
  const guint8 wabort[] = { 0x08, 0x00, 0x04, 0x00, 0x00, 0x00 };   /* STKERRCLR */
  host_simple (&h, wabort, sizeof wabort, 0x00);
  g_assert_cmphex (dp_read (&h, 0x4, &v), ==, 0x01);
  g_assert_cmphex (v & 0x20, ==, 0);
  g_assert_cmphex (dp_write (&h, 0x8, 0xF0), ==, 0x01);   /* bank 0xF */
  g_assert_cmphex (ap_read (&h, 0xC, &v), ==, 0x01);
  g_assert_cmphex (v, ==, 0x24770011);                    /* AHB-AP IDR */
  g_assert_cmphex (dp_write (&h, 0x8, 0), ==, 0x01);
  /* A bus error outside the map: FAULT and STICKYERR, cleared by ABORT. */
  g_assert_cmphex (ap_write (&h, 0x0, 0x23000052), ==, 0x01);
  g_assert_cmphex (ap_write (&h, 0x4, 0x30000000), ==, 0x01);
  g_assert_cmphex (ap_read (&h, 0xC, &v), ==, 0x04);
  g_assert_cmphex (ap_read (&h, 0x0, &v), ==, 0x04);
  g_assert_cmphex (dp_write (&h, 0x0, 0x04), ==, 0x01);
  g_assert_cmphex (ap_read (&h, 0x0, &v), ==, 0x01);
}

static void
test_uid_and_idcode (void)
{
  g_autoptr(StSimDap) dap = new_dap (0x11223344, 0, 0);
  Host h;
  host_init_direct (&h, dap);
  host_attach (&h);
  guint8 uid[12], peek[12];
  for (guint i = 0; i < 3; i++)
    put32 (uid + 4 * i, mem_read (&h, 0x1FFF7A10 + 4 * i));
  g_assert_true (st_sim_dap_peek (dap, 0x1FFF7A10, peek, 12));
  g_assert_cmpmem (uid, 12, peek, 12);
  g_assert_cmphex (get32 (uid), ==, 0x11223344);   /* the seed */
  g_assert_cmphex (get32 (uid + 4), ==, 1);        /* device 1 */
  g_assert_cmphex (mem_read (&h, 0xE0042000) & 0xFFF, ==, 0x413);
  g_assert_cmphex (mem_read (&h, 0x1FFF7A20) >> 16, ==, 1024);   /* flash size, KiB */
  g_assert_cmphex (mem_read (&h, 0x08000000), ==, 0xFFFFFFFF);   /* erased */
  g_assert_cmpuint (st_sim_dap_get_n_presented (dap), ==, 1);
}

static void
test_tar_wrap (void)
{
  g_autoptr(StSimDap) dap = new_dap (4, 0, 0);
  Host h;
  host_init_direct (&h, dap);
  host_attach (&h);
  guint32 words[4] = { 0x11111111, 0x22222222, 0x33333333, 0x44444444 }, got[4];
  guint done = 0;
  /* A block crossing 0x20000400 without splitting: TAR wraps in its page. */
  g_assert_cmphex (block_write (&h, 0x200003F8, 4, words, &done), ==, 0x01);
  g_assert_cmpuint (done, ==, 4);
  guint8 b[8];
  g_assert_true (st_sim_dap_peek (dap, 0x20000000, b, 8));
  g_assert_cmphex (get32 (b), ==, 0x33333333);
  g_assert_cmphex (get32 (b + 4), ==, 0x44444444);
  g_assert_true (st_sim_dap_peek (dap, 0x20000400, b, 8));
  g_assert_cmphex (get32 (b), ==, 0);
  /* The same on reads: a host that does not split reads the wrong words. */
  g_assert_cmphex (mem_write (&h, 0x20000400, 0xCAFEF00D), ==, 0x01);
  g_assert_cmphex (block_read (&h, 0x200003F8, 4, got, &done), ==, 0x01);
  g_assert_cmpuint (done, ==, 4);
  g_assert_cmphex (got[2], ==, 0x33333333);
  g_assert_cmphex (got[2], !=, 0xCAFEF00D);
  /* Split at the boundary: right. */
  g_assert_cmphex (block_read (&h, 0x20000400, 1, got, &done), ==, 0x01);
  g_assert_cmphex (got[0], ==, 0xCAFEF00D);
}

#define FLASH_SR 0x40023C0C
#define FLASH_CR 0x40023C10
#define FLASH_KEYR 0x40023C04
#define FLASH_OPTCR 0x40023C14

static void
flash_unlock (Host *h)
{
  g_assert_cmphex (mem_write (h, FLASH_KEYR, 0x45670123), ==, 0x01);
  g_assert_cmphex (mem_write (h, FLASH_KEYR, 0xCDEF89AB), ==, 0x01);
  g_assert_cmphex (mem_read (h, FLASH_CR) >> 31, ==, 0);
}

/* Polls BSY; returns SR once it clears and how many polls saw BSY. */
static guint32
flash_wait (Host *h, guint *busy_polls)
{
  guint32 sr;
  guint n = 0;
  while ((sr = mem_read (h, FLASH_SR)) & (1u << 16))
    {
      n++;
      g_assert_cmpuint (n, <, 1000);
    }
  if (busy_polls != NULL)
    *busy_polls = n;
  return sr;
}

static void
test_flash_sequence (void)
{
  g_autoptr(StSimDap) dap = new_dap (5, 0, 0);
  Host h;
  host_init_direct (&h, dap);
  host_attach (&h);
  /* Locked: CR writes are ignored; programming sets PGSERR. */
  g_assert_cmphex (mem_read (&h, FLASH_CR), ==, 0x80000000);
  g_assert_cmphex (mem_write (&h, FLASH_CR, 0x201), ==, 0x01);
  g_assert_cmphex (mem_read (&h, FLASH_CR), ==, 0x80000000);
  g_assert_cmphex (mem_write (&h, 0x0800C000, 0), ==, 0x01);
  g_assert_cmphex (mem_read (&h, FLASH_SR) & 0xF3, ==, 0x80);
  g_assert_cmphex (mem_write (&h, FLASH_SR, 0xF3), ==, 0x01);
  g_assert_cmphex (mem_read (&h, FLASH_SR), ==, 0);
  flash_unlock (&h);
  /* Program sector 3 first, so that the erase has something to erase. */
  g_assert_cmphex (mem_write (&h, FLASH_CR, 0x01000201), ==, 0x01);   /* PG, x32, EOPIE */
  g_assert_cmphex (mem_write (&h, 0x0800C000, 0x12345678), ==, 0x01);
  guint32 sr = flash_wait (&h, NULL);
  g_assert_cmphex (sr & 0xF3, ==, 0x01);   /* EOP, no errors */
  g_assert_cmphex (mem_read (&h, 0x0800C000), ==, 0x12345678);
  /* 1 -> 0 only: the cells keep the AND. */
  g_assert_cmphex (mem_write (&h, 0x0800C000, 0xFFFF0000), ==, 0x01);
  flash_wait (&h, NULL);
  g_assert_cmphex (mem_read (&h, 0x0800C000), ==, 0x12340000);
  /* Wrong width for PSIZE x8: PGPERR, nothing written. */
  g_assert_cmphex (mem_write (&h, FLASH_CR, 0x01000001), ==, 0x01);
  g_assert_cmphex (mem_write (&h, 0x0800C004, 0), ==, 0x01);
  g_assert_cmphex (mem_read (&h, FLASH_SR) & 0x40, ==, 0x40);
  g_assert_cmphex (mem_read (&h, 0x0800C004), ==, 0xFFFFFFFF);
  g_assert_cmphex (mem_write (&h, FLASH_SR, 0xF3), ==, 0x01);
  /* Sector erase: SER, SNB 3, x32, then STRT; BSY for a while, then EOP. */
  g_assert_cmphex (mem_write (&h, FLASH_CR, 0x01000200 | (3 << 3) | 0x2), ==, 0x01);
  g_assert_cmphex (mem_write (&h, FLASH_CR, 0x01010200 | (3 << 3) | 0x2), ==, 0x01);
  guint busy = 0;
  sr = flash_wait (&h, &busy);
  g_assert_cmpuint (busy, >, 0);
  g_assert_cmphex (sr & 0xF3, ==, 0x01);
  guint8 b[16];
  g_assert_true (st_sim_dap_peek (dap, 0x0800C000, b, 16));
  for (guint i = 0; i < 16; i++)
    g_assert_cmphex (b[i], ==, 0xFF);
  /* Without EOPIE there is no EOP, only BSY going away. */
  g_assert_cmphex (mem_write (&h, FLASH_SR, 0xF3), ==, 0x01);
  g_assert_cmphex (mem_write (&h, FLASH_CR, 0x201), ==, 0x01);
  guint32 words[4] = { 0xA5A5A5A5, 0x01020304, 0, 0xDEADBEEF };
  guint done = 0;
  g_assert_cmphex (block_write (&h, 0x0800C000, 4, words, &done), ==, 0x01);
  g_assert_cmpuint (done, ==, 4);
  g_assert_cmphex (flash_wait (&h, NULL) & 0xF3, ==, 0);
  g_assert_true (st_sim_dap_peek (dap, 0x0800C000, b, 16));
  for (guint i = 0; i < 4; i++)
    g_assert_cmphex (get32 (b + 4 * i), ==, words[i]);
  /* PG together with SER: a sequence error. */
  g_assert_cmphex (mem_write (&h, FLASH_CR, 0x203), ==, 0x01);
  g_assert_cmphex (mem_write (&h, FLASH_CR, 0x10203), ==, 0x01);
  g_assert_cmphex (mem_read (&h, FLASH_SR) & 0x80, ==, 0x80);
  g_assert_cmphex (mem_write (&h, FLASH_SR, 0xF3), ==, 0x01);
  /* Lock again: CR ignores writes. */
  g_assert_cmphex (mem_write (&h, FLASH_CR, 0x80000000), ==, 0x01);
  g_assert_cmphex (mem_write (&h, FLASH_CR, 0x201), ==, 0x01);
  g_assert_cmphex (mem_read (&h, FLASH_CR), ==, 0x80000000);
  /* A wrong key: bus error, and the controller stays locked up. */
  g_assert_cmphex (mem_write (&h, FLASH_KEYR, 0x12345678), ==, 0x04);
  g_assert_cmphex (dp_write (&h, 0x0, 0x04), ==, 0x01);
  g_assert_cmphex (mem_write (&h, FLASH_KEYR, 0x45670123), ==, 0x04);
  g_assert_cmphex (dp_write (&h, 0x0, 0x04), ==, 0x01);
  /* Until a system reset (AIRCR SYSRESETREQ). */
  g_assert_cmphex (mem_write (&h, 0xE000ED0C, 0x05FA0004), ==, 0x01);
  flash_unlock (&h);
}

static void
test_flash_stall (void)
{
  g_autoptr(StSimDap) dap = new_dap (6, 0, 0);
  Host h;
  host_init_direct (&h, dap);
  host_attach (&h);
  flash_unlock (&h);
  /* Erase the 128 KiB sector 5: a long BSY. With no WAIT retries in the
   * probe, a flash read during it answers WAIT; with retries it stalls. */
  host_wait_retry (&h, 0);
  g_assert_cmphex (mem_write (&h, FLASH_CR, 0x10200 | (5 << 3) | 0x2), ==, 0x01);
  guint32 v = 0;
  g_assert_cmphex (ap_write (&h, 0x4, 0x08020000), ==, 0x01);
  g_assert_cmphex (ap_read (&h, 0xC, &v), ==, 0x02);
  host_wait_retry (&h, 1000);
  g_assert_cmphex (ap_read (&h, 0xC, &v), ==, 0x01);
  g_assert_cmphex (v, ==, 0xFFFFFFFF);
  g_assert_cmphex (mem_read (&h, FLASH_SR) & (1u << 16), ==, 0);
}

static void
test_flash_error_fault (void)
{
  g_autoptr(StSimDap) dap = new_dap (7, ST_SIM_DAP_FAULT_FLASH_ERROR, 0);
  Host h;
  host_init_direct (&h, dap);
  host_attach (&h);
  g_assert_cmphex ((mem_read (&h, FLASH_OPTCR) >> 16) & 0xFFF, ==, 0x001);
  flash_unlock (&h);
  g_assert_cmphex (mem_write (&h, FLASH_CR, 0x201), ==, 0x01);
  g_assert_cmphex (mem_write (&h, 0x0800C000, 0), ==, 0x01);
  guint32 sr = flash_wait (&h, NULL);
  g_assert_cmphex (sr & 0x10, ==, 0x10);   /* WRPERR */
  g_assert_cmphex (mem_read (&h, 0x0800C000), ==, 0xFFFFFFFF);
  g_assert_cmphex (mem_write (&h, FLASH_SR, 0xF3), ==, 0x01);
  g_assert_cmphex (mem_write (&h, FLASH_CR, 0x10202 | (3 << 3)), ==, 0x01);
  g_assert_cmphex (flash_wait (&h, NULL) & 0x10, ==, 0x10);
  /* Sector 0 is not protected. */
  g_assert_cmphex (mem_write (&h, FLASH_SR, 0xF3), ==, 0x01);
  g_assert_cmphex (mem_write (&h, FLASH_CR, 0x201), ==, 0x01);
  g_assert_cmphex (mem_write (&h, 0x08000000, 0x55AA55AA), ==, 0x01);
  g_assert_cmphex (flash_wait (&h, NULL) & 0xF2, ==, 0);
  g_assert_cmphex (mem_read (&h, 0x08000000), ==, 0x55AA55AA);
}

static void
test_readback_fault (void)
{
  g_autoptr(StSimDap) dap = new_dap (8, ST_SIM_DAP_FAULT_READBACK, 0);
  Host h;
  host_init_direct (&h, dap);
  host_attach (&h);
  flash_unlock (&h);
  g_assert_cmphex (mem_write (&h, FLASH_CR, 0x201), ==, 0x01);
  g_assert_cmphex (mem_write (&h, 0x0800C000, 0x12345678), ==, 0x01);
  g_assert_cmphex (mem_write (&h, 0x0800C004, 0x9ABCDEF0), ==, 0x01);
  flash_wait (&h, NULL);
  g_assert_cmphex (mem_read (&h, 0x0800C000), ==, 0x12345679);   /* one bit flipped */
  g_assert_cmphex (mem_read (&h, 0x0800C004), ==, 0x9ABCDEF0);
  guint8 b[4];
  g_assert_true (st_sim_dap_peek (dap, 0x0800C000, b, 4));
  g_assert_cmphex (get32 (b), ==, 0x12345678);                   /* the cells are right */
}

static void
test_wait_bursts (void)
{
  g_autoptr(StSimDap) dap = new_dap (9, ST_SIM_DAP_FAULT_WAIT, 0);
  Host h;
  host_init_direct (&h, dap);
  host_attach (&h);
  host_wait_retry (&h, 2);
  guint waits = 0, ok = 0;
  for (guint i = 0; i < 400; i++)
    {
      guint32 v = 0;
      guint8 r = ap_read (&h, 0x0, &v);    /* CSW */
      if (r == 0x02)
        waits++;
      else
        {
          g_assert_cmphex (r, ==, 0x01);
          ok++;
        }
    }
  g_assert_cmpuint (waits, >, 0);
  g_assert_cmpuint (ok, >, 0);
  /* A WAIT stops a block where it happened; the host resumes from there. */
  guint32 words[64], got[64];
  for (guint i = 0; i < 64; i++)
    words[i] = 0x1000 + i;
  guint at = 0, stops = 0;
  while (at < 64)
    {
      guint done = 0;
      guint8 r = block_write (&h, 0x20000100 + 4 * at, 64 - at, words + at, &done);
      at += done;
      if (r == 0x02)
        stops++;
      else
        g_assert_cmphex (r, ==, 0x01);
      g_assert_cmpuint (stops, <, 200);
    }
  at = 0;
  while (at < 64)
    {
      guint done = 0;
      guint8 r = block_read (&h, 0x20000100 + 4 * at, 64 - at, got + at, &done);
      at += done;
      if (r != 0x01)
        g_assert_cmphex (r, ==, 0x02);
    }
  g_assert_cmpmem (words, sizeof words, got, sizeof got);
}

static void
test_fault_sticky_abort (void)
{
  g_autoptr(StSimDap) dap = new_dap (10, ST_SIM_DAP_FAULT_FAULT, 0);
  Host h;
  host_init_direct (&h, dap);
  host_attach (&h);
  guint faults = 0;
  for (guint i = 0; i < 2000; i++)
    {
      guint32 v = 0;
      guint8 r = ap_read (&h, 0x0, &v);
      if (r == 0x01)
        continue;
      g_assert_cmphex (r, ==, 0x04);
      faults++;
      /* Sticky: the next AP access faults too, CTRL/STAT says why. */
      g_assert_cmphex (ap_read (&h, 0x0, &v), ==, 0x04);
      g_assert_cmphex (dp_read (&h, 0x4, &v), ==, 0x01);
      g_assert_cmphex (v & 0x20, ==, 0x20);
      const guint8 wabort[] = { 0x08, 0x00, 0x1E, 0x00, 0x00, 0x00 };
      host_simple (&h, wabort, sizeof wabort, 0x00);
      g_assert_cmphex (dp_read (&h, 0x4, &v), ==, 0x01);
      g_assert_cmphex (v & 0xB2, ==, 0);
    }
  g_assert_cmpuint (faults, >, 0);
}

static void
test_malformed (void)
{
  g_autoptr(StSimDap) dap = new_dap (11, 0, 0);
  Host h;
  host_init_direct (&h, dap);
  host_attach (&h);
  guint8 resp[ST_SIM_DAP_PACKET_SIZE];
  g_assert_cmpuint (st_sim_dap_process (dap, NULL, 0, resp, sizeof resp), ==, 0);
  /* DAP_Info without an id; TransferConfigure, SWJ_Sequence too short. */
  const guint8 info[] = { 0x00 };
  host_cmd (&h, info, 1);
  g_assert_cmpuint (h.resp_len, ==, 2);
  g_assert_cmpuint (h.resp[1], ==, 0);
  const guint8 cfg[] = { 0x04, 0x00, 0x10 };
  host_simple (&h, cfg, sizeof cfg, 0xFF);
  const guint8 seq[] = { 0x12, 64, 0xff, 0xff };
  host_simple (&h, seq, sizeof seq, 0xFF);
  const guint8 clk[] = { 0x11, 0, 0, 0, 0 };
  host_simple (&h, clk, sizeof clk, 0xFF);
  /* A Transfer announcing three writes with one and a half in the packet:
   * the complete one runs, then it stops with the protocol error bit. */
  guint8 tr[] = { 0x05, 0x00, 0x03, AP_WRITE (0x4), 0, 0, 0, 0x20, AP_WRITE (0xC), 0x55, 0x55 };
  host_cmd (&h, tr, sizeof tr);
  g_assert_cmpuint (h.resp_len, ==, 3);
  g_assert_cmpuint (h.resp[1], ==, 1);
  g_assert_cmphex (h.resp[2], ==, 0x09);
  guint32 v = 0;
  g_assert_cmphex (ap_read (&h, 0x4, &v), ==, 0x01);
  g_assert_cmphex (v, ==, 0x20000000);
  /* A write block announcing 10 words with 2. */
  guint8 bw[] = { 0x06, 0x00, 10, 0, AP_WRITE (0xC), 1, 0, 0, 0, 2, 0, 0, 0, 3 };
  host_cmd (&h, bw, sizeof bw);
  g_assert_cmpuint (h.resp_len, ==, 4);
  g_assert_cmpuint (h.resp[1] | h.resp[2] << 8, ==, 2);
  g_assert_cmphex (h.resp[3], ==, 0x09);
  /* A read block larger than a packet: as many as fit. */
  guint32 got[200];
  guint done = 0;
  guint8 r = block_read (&h, 0x20000000, 200, got, &done);
  g_assert_cmpuint (done, ==, (ST_SIM_DAP_PACKET_SIZE - 4) / 4);
  g_assert_cmphex (r, ==, 0x09);
  g_assert_cmphex (got[0], ==, 1);
  g_assert_cmphex (got[1], ==, 2);
  /* Small answer buffers never overflow. */
  const guint8 q[] = { 0x00, 0x02 };
  for (gsize max = 0; max < 8; max++)
    {
      guint8 small[8];
      memset (small, 0xEE, sizeof small);
      gsize n = st_sim_dap_process (dap, q, sizeof q, small, max);
      g_assert_cmpuint (n, <=, max);
      for (gsize i = max; i < sizeof small; i++)
        g_assert_cmphex (small[i], ==, 0xEE);
    }
  /* Random packets: bounded answers, no reads outside (ASan watches). */
  GRand *rand = g_rand_new_with_seed (42);
  for (guint i = 0; i < 3000; i++)
    {
      gsize len = (gsize) g_rand_int_range (rand, 1, 40);
      guint8 *pkt = g_malloc (len);   /* exact size: ASan sees any overread */
      for (gsize j = 0; j < len; j++)
        pkt[j] = (guint8) g_rand_int_range (rand, 0, 256);
      if (g_rand_boolean (rand))
        pkt[0] = (guint8) g_rand_int_range (rand, 0, 0x14);
      gsize max = (gsize) g_rand_int_range (rand, 0, ST_SIM_DAP_PACKET_SIZE + 1);
      guint8 *out = g_malloc (max + 1);
      gsize n = st_sim_dap_process (dap, pkt, len, out, max);
      g_assert_cmpuint (n, <=, max);
      g_free (out);
      g_free (pkt);
    }
  g_rand_free (rand);
}

static void
read_uid (Host *h, guint8 uid[12])
{
  for (guint i = 0; i < 3; i++)
    put32 (uid + 4 * i, mem_read (h, 0x1FFF7A10 + 4 * i));
}

/* Programs a word of the credential sector, then reads the uid again: the
 * station's closing identify, after which the device is finished. */
static void
finish_unit (Host *h, guint8 uid[12])
{
  flash_unlock (h);
  g_assert_cmphex (mem_write (h, FLASH_CR, 0x201), ==, 0x01);
  g_assert_cmphex (mem_write (h, 0x0800C000, 0x0), ==, 0x01);
  flash_wait (h, NULL);
  read_uid (h, uid);
}

static StSimDapDevice
device_record (StSimDap *dap, guint index)
{
  StSimDapDevice d;
  g_assert_true (st_sim_dap_get_device (dap, index, &d));
  return d;
}

/* The device has left: no target now, the next one after the swap delay. */
static void
expect_swap (Host *h, StSimDap *dap, guint n_before)
{
  guint32 v = 0;
  g_assert_cmphex (dp_read (h, 0, &v), ==, 0x07);   /* nobody there */
  g_assert_false (st_sim_dap_is_present (dap));
  while (!st_sim_dap_is_present (dap))
    g_usleep (5000);
  g_assert_cmpuint (st_sim_dap_get_n_presented (dap), ==, n_before + 1);
  /* The next device powers up in JTAG mode with erased flash. */
  g_assert_cmphex (dp_read (h, 0, &v), ==, 0x07);
  host_attach (h);
  g_assert_cmphex (mem_read (h, 0x0800C000), ==, 0xFFFFFFFF);
}

/* The swap rule: a finished device (flash changed, then its uid read) stays
 * until GO (a system reset) or a new session (line reset, DAP_Connect). */
static void
test_device_swap (void)
{
  StSimDapConfig cfg = { .units = 4, .seed = 12, .swap_delay_ms = 30 };
  g_autoptr(GError) error = NULL;
  g_autoptr(StSimDap) dap = st_sim_dap_new (&cfg, "SWAP1", &error);
  g_assert_no_error (error);
  Host h;
  host_init_direct (&h, dap);
  host_attach (&h);
  guint8 uid1[12], uid2[12], again[12];
  /* Reading the uid without a flash change keeps the device. */
  read_uid (&h, uid1);
  read_uid (&h, again);
  g_assert_cmpmem (uid1, 12, again, 12);
  g_assert_cmpuint (st_sim_dap_get_n_presented (dap), ==, 1);
  g_assert_false (device_record (dap, 0).closed);
  finish_unit (&h, again);
  g_assert_cmpmem (uid1, 12, again, 12);
  StSimDapDevice d = device_record (dap, 0);
  g_assert_true (d.closed);
  g_assert_false (d.started);
  g_assert_cmpmem (d.uid, 12, uid1, 12);
  /* Finished, it stays and answers: a GO could follow. */
  guint32 v = 0;
  g_assert_cmphex (dp_read (&h, 0, &v), ==, 0x01);
  read_uid (&h, again);
  g_assert_cmpmem (uid1, 12, again, 12);
  g_assert_true (st_sim_dap_is_present (dap));
  g_assert_cmpuint (st_sim_dap_get_n_presented (dap), ==, 1);

  /* 1: a line reset starts a new session: the operator has swapped it. */
  host_line_reset (&h);
  expect_swap (&h, dap, 1);
  d = device_record (dap, 0);
  g_assert_false (d.started);
  g_assert_cmpuint (d.n_resets, ==, 0);
  read_uid (&h, uid2);
  g_assert_cmpmem (uid2, 4, uid1, 4);        /* same seed */
  g_assert_cmphex (get32 (uid2 + 4), ==, 2); /* next index */

  /* 2: a system reset before the closing identify restarts the device and
   * is counted; the device stays. After it, AIRCR SYSRESETREQ is GO. */
  g_assert_cmphex (mem_write (&h, 0xE000ED0C, 0x05FA0004), ==, 0x01);
  g_assert_true (st_sim_dap_is_present (dap));
  g_assert_cmpuint (device_record (dap, 1).n_resets, ==, 1);
  g_assert_false (device_record (dap, 1).started);
  /* Without the VECTKEY it is no reset request. */
  g_assert_cmphex (mem_write (&h, 0xE000ED0C, 0x00000004), ==, 0x01);
  g_assert_cmpuint (device_record (dap, 1).n_resets, ==, 1);
  finish_unit (&h, again);
  g_assert_cmpmem (uid2, 12, again, 12);
  g_assert_cmphex (mem_write (&h, 0xE000ED0C, 0x05FA0004), ==, 0x01);
  d = device_record (dap, 1);
  g_assert_true (d.closed);
  g_assert_true (d.started);
  g_assert_cmpuint (d.n_resets, ==, 2);
  expect_swap (&h, dap, 2);

  /* 3: DAP_Connect starts a new session too. */
  finish_unit (&h, again);
  const guint8 conn[] = { 0x02, 0x01 };
  host_simple (&h, conn, sizeof conn, 0x01);
  g_assert_false (device_record (dap, 2).started);
  g_assert_cmpuint (device_record (dap, 2).n_resets, ==, 0);
  expect_swap (&h, dap, 3);

  /* 4: DAP_ResetTarget after the closing identify is GO; it answers that a
   * reset sequence ran. */
  finish_unit (&h, again);
  const guint8 reset[] = { 0x0A };
  host_cmd (&h, reset, sizeof reset);
  g_assert_cmpuint (h.resp_len, ==, 3);
  g_assert_cmphex (h.resp[1], ==, 0x00);
  g_assert_cmphex (h.resp[2], ==, 0x01);
  g_assert_true (device_record (dap, 3).started);
  g_assert_cmphex (dp_read (&h, 0, &v), ==, 0x07);
  /* After the last unit: no target any more; DAP_ResetTarget runs nothing. */
  g_usleep (60000);
  host_swd_switch (&h);
  g_assert_cmphex (dp_read (&h, 0, &v), ==, 0x07);
  host_cmd (&h, reset, sizeof reset);
  g_assert_cmphex (h.resp[2], ==, 0x00);
  g_assert_cmpuint (st_sim_dap_get_n_presented (dap), ==, 4);
  g_assert_false (st_sim_dap_get_device (dap, 4, &d));
}

static void
test_no_target (void)
{
  g_autoptr(StSimDap) dap = new_dap (13, ST_SIM_DAP_FAULT_NO_TARGET, 0);
  Host h;
  host_init_direct (&h, dap);
  host_swd_switch (&h);
  guint32 v = 0;
  g_assert_cmphex (dp_read (&h, 0, &v), ==, 0x07);
  g_assert_cmpuint (st_sim_dap_fault_from_string ("no-target"), ==, ST_SIM_DAP_FAULT_NO_TARGET);
  g_assert_cmpuint (st_sim_dap_fault_from_string ("wait"), ==, ST_SIM_DAP_FAULT_WAIT);
  g_assert_cmpuint (st_sim_dap_fault_from_string ("bogus"), ==, 0);
  StSimDapConfig cfg = { 0 };
  g_autoptr(GError) error = NULL;
  g_assert_null (st_sim_dap_new (&cfg, "bad serial!", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
}


/* ---- (2) and (3) through libusb, served by umockdev ---- */

#ifndef ST_DAPSIM_NO_UMOCKDEV
static StSimDap *
add_probe (StDapTestbed *tb, const char *serial, guint32 seed)
{
  return st_dap_testbed_add_probe_checked (tb, serial, &(StSimDapConfig) { .seed = seed });
}

static void
test_usb_probes (void)
{
  g_autoptr(StDapTestbed) tb = st_dap_testbed_new_or_skip ();
  if (tb == NULL)
    return;
  StSimDap *a = add_probe (tb, "PROBE-A", 0xA0A0A0A0);
  StSimDap *b = add_probe (tb, "PROBE-B", 0xB0B0B0B0);
  g_autoptr(GError) error = NULL;
  g_assert_null (st_dap_testbed_add_probe (tb, "PROBE-A", &(StSimDapConfig) { 0 }, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  /* Enumeration finds both by their interface string and serial. */
  g_autoptr(GPtrArray) serials = dap_usb_list (&error);
  g_assert_no_error (error);
  g_assert_cmpuint (serials->len, ==, 2);
  g_assert_cmpstr (serials->pdata[0], ==, "PROBE-A");
  g_assert_cmpstr (serials->pdata[1], ==, "PROBE-B");
  DapUsb ua, ub;
  g_assert_true (dap_usb_open (&ua, "PROBE-A", &error));
  g_assert_no_error (error);
  g_assert_true (dap_usb_open (&ub, "PROBE-B", &error));
  g_assert_no_error (error);
  /* Claimed: a second opener of the same probe is refused. */
  DapUsb again;
  g_assert_false (dap_usb_open (&again, "PROBE-A", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_BUSY);
  g_clear_error (&error);
  g_assert_false (dap_usb_open (&again, "PROBE-C", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_FOUND);
  g_clear_error (&error);
  /* DAP_Info over bulk: the serial each probe reports. */
  Host ha = { .xfer = dap_usb_xfer, .user = &ua }, hb = { .xfer = dap_usb_xfer, .user = &ub };
  const guint8 q_serial[] = { 0x00, 0x03 };
  host_cmd (&ha, q_serial, 2);
  g_assert_cmpuint (ha.resp_len, ==, 2 + sizeof "PROBE-A");
  g_assert_cmpstr ((const char *) ha.resp + 2, ==, "PROBE-A");
  host_cmd (&hb, q_serial, 2);
  g_assert_cmpstr ((const char *) hb.resp + 2, ==, "PROBE-B");
  const guint8 q_size[] = { 0x00, 0xFF };
  host_cmd (&ha, q_size, 2);
  g_assert_cmpuint (ha.resp[2] | ha.resp[3] << 8, ==, 512);
  /* Each probe has its own target: the uids carry their seeds. */
  host_attach (&ha);
  host_attach (&hb);
  g_assert_cmphex (mem_read (&ha, 0x1FFF7A10), ==, 0xA0A0A0A0);
  g_assert_cmphex (mem_read (&hb, 0x1FFF7A10), ==, 0xB0B0B0B0);
  /* A full packet of reads comes back whole. */
  guint32 got[127];
  guint done = 0;
  g_assert_cmphex (block_read (&ha, 0x20000000, 127, got, &done), ==, 0x01);
  g_assert_cmpuint (done, ==, 127);
  /* Writes through USB land in the simulator. */
  g_assert_cmphex (mem_write (&hb, 0x20000010, 0x600DF00D), ==, 0x01);
  guint8 w[4];
  g_assert_true (st_sim_dap_peek (b, 0x20000010, w, 4));
  g_assert_cmphex (get32 (w), ==, 0x600DF00D);
  g_assert_true (st_sim_dap_peek (a, 0x20000010, w, 4));
  g_assert_cmphex (get32 (w), ==, 0);
  /* An IN transfer with no command pending times out; libusb discards
   * the URB and the probe stays in step. */
  guint8 small[8];
  int got_len = 0;
  g_assert_cmpint (libusb_bulk_transfer (ua.handle, ua.ep_in, small, sizeof small, &got_len, 50),
                   ==, LIBUSB_ERROR_TIMEOUT);
  host_cmd (&ha, q_serial, 2);
  g_assert_cmpstr ((const char *) ha.resp + 2, ==, "PROBE-A");
  /* An answer longer than the IN buffer: babble, as on a real bus. */
  g_assert_cmpint (libusb_bulk_transfer (ua.handle, ua.ep_out, (guint8 *) q_serial, 2, &got_len, 1000), ==, 0);
  g_assert_cmpint (libusb_bulk_transfer (ua.handle, ua.ep_in, small, 4, &got_len, 1000), ==,
                   LIBUSB_ERROR_OVERFLOW);
  /* Round trips through umockdev: a figure for the backend's budget. */
  gint64 t0 = g_get_monotonic_time ();
  for (guint i = 0; i < 200; i++)
    {
      host_cmd (&ha, q_size, 2);
      g_assert_cmpuint (ha.resp_len, ==, 4);
    }
  g_test_message ("%.0f us per DAP packet round trip through libusb and umockdev",
                  (double) (g_get_monotonic_time () - t0) / 200.0);
  dap_usb_close (&ua);
  dap_usb_close (&ub);
  /* Released on close: it can be opened again. */
  g_assert_true (dap_usb_open (&ua, "PROBE-A", &error));
  g_assert_no_error (error);
  dap_usb_close (&ua);
}

static void
test_usb_child (void)
{
  g_autoptr(StDapTestbed) tb = st_dap_testbed_new_or_skip ();
  if (tb == NULL)
    return;
  add_probe (tb, "CHILD-1", 0x12345678);
  add_probe (tb, "CHILD-2", 0x9ABCDEF0);
  const char *helper = g_getenv ("ST_DAP_PROBE_HELPER");
  g_assert_nonnull (helper);
  const char *serials[] = { "CHILD-2", "CHILD-1" };
  const char *expect[] = { "DPIDR 0x2ba01477 UID0 0x9abcdef0\n", "DPIDR 0x2ba01477 UID0 0x12345678\n" };
  for (guint i = 0; i < G_N_ELEMENTS (serials); i++)
    {
      const char *argv[] = { helper, serials[i], NULL };
      g_autofree gchar *out = NULL, *err = NULL;
      gint status = 0;
      g_autoptr(GError) error = NULL;
      /* This thread blocks: the probes are served from the testbed's own. */
      g_assert_true (g_spawn_sync (NULL, (gchar **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                                   &out, &err, &status, &error));
      g_assert_no_error (error);
      if (!g_spawn_check_wait_status (status, &error))
        g_printerr ("helper for %s failed; its stderr: %s\n", serials[i], err);
      g_assert_no_error (error);
      g_assert_cmpstr (out, ==, expect[i]);
    }
}
#endif

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cmsis-dap/sim/info", test_info);
  g_test_add_func ("/cmsis-dap/sim/connect-line-reset", test_connect_and_line_reset);
  g_test_add_func ("/cmsis-dap/sim/power-up-sticky", test_power_up_and_sticky);
  g_test_add_func ("/cmsis-dap/sim/uid-idcode", test_uid_and_idcode);
  g_test_add_func ("/cmsis-dap/sim/tar-wrap", test_tar_wrap);
  g_test_add_func ("/cmsis-dap/sim/flash-sequence", test_flash_sequence);
  g_test_add_func ("/cmsis-dap/sim/flash-stall", test_flash_stall);
  g_test_add_func ("/cmsis-dap/sim/flash-error", test_flash_error_fault);
  g_test_add_func ("/cmsis-dap/sim/readback", test_readback_fault);
  g_test_add_func ("/cmsis-dap/sim/wait", test_wait_bursts);
  g_test_add_func ("/cmsis-dap/sim/fault-sticky-abort", test_fault_sticky_abort);
  g_test_add_func ("/cmsis-dap/sim/malformed", test_malformed);
  g_test_add_func ("/cmsis-dap/sim/device-swap", test_device_swap);
  g_test_add_func ("/cmsis-dap/sim/no-target", test_no_target);
#ifndef ST_DAPSIM_NO_UMOCKDEV
  g_test_add_func ("/cmsis-dap/usb/probes", test_usb_probes);
  g_test_add_func ("/cmsis-dap/usb/child-process", test_usb_child);
#endif
  return g_test_run ();
}
