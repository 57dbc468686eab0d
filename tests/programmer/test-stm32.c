/* The stm32-rom work: the credential blob, the STM32F4 flash map, the
 * AN3155 link and backend against `station-devsim --mode stm32-rom` on a
 * real pseudo-terminal, the stock stm32flash against the same simulator,
 * and a batch on two simulated STM32 sockets whose blobs an independent
 * parser (stm32-blob-check.py) verifies. */
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <openssl/evp.h>
#include <signal.h>
#include <string.h>

#include "st-backend.h"
#include "st-blob.h"
#include "st-error.h"
#include "st-frame.h"
#include "st-profile.h"
#include "st-stm32-rom.h"
#include "st-stm32-target.h"
#include "st-util.h"
#include "st-test-run.h"
#include "st-test-tmp.h"
#include "st-test-json.h"
#include "st-test-passive.h"

#define AREA 0x0800C000u
#define AREA_SIZE 16384u

/* ---- helpers ---- */

typedef struct {
  GSubprocess *proc;
  gchar *path;
} Sim;

static Sim *
sim_start (const char *first, ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_ptr_array_add (argv, (gpointer) g_getenv ("ST_DEVSIM"));
  g_ptr_array_add (argv, (gpointer) "--mode");
  g_ptr_array_add (argv, (gpointer) "stm32-rom");
  g_ptr_array_add (argv, (gpointer) "--swap-delay-ms");
  g_ptr_array_add (argv, (gpointer) "50");
  g_ptr_array_add (argv, (gpointer) "--exit-on-stdin-eof");   /* dies with the test */
  va_list ap;
  va_start (ap, first);
  for (const char *a = first; a != NULL; a = va_arg (ap, const char *))
    g_ptr_array_add (argv, (gpointer) a);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  g_autoptr(GError) error = NULL;
  Sim *s = g_new0 (Sim, 1);
  s->proc = g_subprocess_newv ((const char *const *) argv->pdata, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDIN_PIPE, &error);
  g_assert_no_error (error);
  g_autoptr(GDataInputStream) in = g_data_input_stream_new (g_subprocess_get_stdout_pipe (s->proc));
  s->path = g_data_input_stream_read_line (in, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (s->path);
  return s;
}

static void
sim_stop (Sim *s)
{
  g_subprocess_send_signal (s->proc, SIGTERM);
  g_subprocess_wait (s->proc, NULL, NULL);
  g_object_unref (s->proc);
  g_free (s->path);
  g_free (s);
}

static StRomLink *
link_open (const char *path, guint retries)
{
  g_autoptr(GError) error = NULL;
  StTransport *t = st_serial_open (path, 115200, ST_PARITY_EVEN, &error);
  if (t == NULL && g_error_matches (error, ST_ERROR, ST_ERROR_WRITE))
    {
      /* Some kernels refuse PARENB on a pty that had it: no parity there. */
      g_clear_error (&error);
      t = st_serial_open (path, 115200, ST_PARITY_NONE, &error);
    }
  g_assert_no_error (error);
  return st_rom_link_new (t, 300, retries, NULL);
}

static void
expect_byte (StRomLink *link, guint8 want)
{
  g_autoptr(GError) error = NULL;
  guint8 b = 0;
  g_assert_true (st_rom_link_read_byte (link, &b, 1000, &error));
  g_assert_no_error (error);
  g_assert_cmphex (b, ==, want);
}

static void
send_raw (StRomLink *link, const guint8 *d, gsize n)
{
  g_autoptr(GError) error = NULL;
  g_assert_true (st_rom_link_send_raw (link, d, n, &error));
  g_assert_no_error (error);
}

static StBlob *
sample_blob (void)
{
  StBlob *b = st_blob_new ();
  const guint8 uid[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
  b->uid = g_bytes_new (uid, sizeof uid);
  b->key = st_test_der_seq (0x22, 100);
  b->cert = st_test_der_seq (0x33, 300);
  g_ptr_array_add (b->ca_certs, st_test_der_seq (0x44, 200));
  g_ptr_array_add (b->ca_certs, st_test_der_seq (0x55, 150));
  b->product_serial = g_strdup ("F4-2611-000001");
  return b;
}

/* ---- the blob ---- */

static void
test_blob_round_trip (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StBlob) b = sample_blob ();
  g_autoptr(GBytes) enc = st_blob_build (b, 4, AREA_SIZE, &error);
  g_assert_no_error (error);
  gsize n = 0;
  const guint8 *d = g_bytes_get_data (enc, &n);
  g_assert_cmpuint (n % 4, ==, 0);
  g_assert_cmpmem (d, 4, "PCB1", 4);
  guint32 total = d[8] | d[9] << 8 | d[10] << 16 | (guint32) d[11] << 24;
  g_assert_cmpuint (total, <=, n);
  g_assert_cmpuint (n - total, <, 4);
  g_assert_cmpuint (d[6] | d[7] << 8, ==, 6);
  for (gsize i = total; i < n; i++)
    g_assert_cmphex (d[i], ==, 0xff);
  guint32 crc = d[total - 4] | d[total - 3] << 8 | d[total - 2] << 16 | (guint32) d[total - 1] << 24;
  g_assert_cmphex (crc, ==, st_crc32 (0, d, total - 4));
  g_assert_cmpuint (st_blob_peek_length (d, n), ==, total);

  /* As in flash: the blob, then erased bytes. */
  g_autofree guint8 *area = g_malloc (AREA_SIZE);
  memset (area, 0xff, AREA_SIZE);
  memcpy (area, d, n);
  g_autoptr(StBlob) p = st_blob_parse (area, AREA_SIZE, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (p->uid, b->uid));
  g_assert_true (g_bytes_equal (p->key, b->key));
  g_assert_true (g_bytes_equal (p->cert, b->cert));
  g_assert_cmpuint (p->ca_certs->len, ==, 2);
  g_assert_cmpstr (p->product_serial, ==, "F4-2611-000001");
  g_autoptr(GBytes) c1 = st_blob_dup_chain (b);
  g_autoptr(GBytes) c2 = st_blob_dup_chain (p);
  g_assert_true (g_bytes_equal (c1, c2));

  /* The chain splitter refuses a truncated certificate. */
  g_autoptr(StBlob) q = st_blob_new ();
  g_autoptr(GBytes) cut = g_bytes_new_from_bytes (c1, 0, g_bytes_get_size (c1) - 1);
  g_assert_false (st_blob_set_chain (q, cut, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_assert_true (st_blob_set_chain (q, c1, &error));
  g_assert_cmpuint (q->ca_certs->len, ==, 2);

  /* The writer's limits: missing key, oversize for the area. */
  g_clear_pointer (&q->ca_certs, g_ptr_array_unref);
  q->ca_certs = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  q->uid = g_bytes_ref (b->uid);
  q->cert = g_bytes_ref (b->cert);
  g_assert_null (st_blob_build (q, 4, AREA_SIZE, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_assert_null (st_blob_build (b, 4, 256, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
}

static void
put32 (guint8 *p, guint32 v)
{
  p[0] = (guint8) v; p[1] = (guint8) (v >> 8); p[2] = (guint8) (v >> 16); p[3] = (guint8) (v >> 24);
}

/* Recomputes the CRC after a deliberate change, so that the parser's other
 * checks are what refuses it. */
static void
fix_crc (guint8 *d)
{
  guint32 total = d[8] | d[9] << 8 | d[10] << 16 | (guint32) d[11] << 24;
  put32 (d + total - 4, st_crc32 (0, d, total - 4));
}

static void
test_blob_malformed (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StBlob) b = sample_blob ();
  g_autoptr(GBytes) enc = st_blob_build (b, 1, AREA_SIZE, &error);
  g_assert_no_error (error);
  gsize n = g_bytes_get_size (enc);
  const guint8 *good = g_bytes_get_data (enc, NULL);
  /* Offsets: header 12, uid entry at 12 (4 + 12), key entry at 28. */
  enum { BAD_MAGIC, BAD_VERSION, LEN_PAST_END, LEN_TOO_SMALL, BAD_CRC, ENTRY_PAST_END,
         COUNT_LOW, COUNT_HIGH, RESERVED, UNKNOWN_TYPE, TWO_UIDS, ZERO_LEN, OVERSIZE,
         TRUNCATED, UID_TOO_LONG, N_CASES };
  static const struct { int which; int code; const char *name; } cases[] = {
    { BAD_MAGIC, ST_ERROR_NOT_FOUND, "bad magic" },
    { BAD_VERSION, ST_ERROR_INVALID_DATA, "version 2" },
    { LEN_PAST_END, ST_ERROR_INVALID_DATA, "total length past the end" },
    { LEN_TOO_SMALL, ST_ERROR_INVALID_DATA, "total length below 16" },
    { BAD_CRC, ST_ERROR_INVALID_DATA, "bad CRC" },
    { ENTRY_PAST_END, ST_ERROR_INVALID_DATA, "entry length past the end" },
    { COUNT_LOW, ST_ERROR_INVALID_DATA, "count lower than the entries" },
    { COUNT_HIGH, ST_ERROR_INVALID_DATA, "count higher than the entries" },
    { RESERVED, ST_ERROR_INVALID_DATA, "reserved byte set" },
    { UNKNOWN_TYPE, ST_ERROR_INVALID_DATA, "unknown entry type" },
    { TWO_UIDS, ST_ERROR_INVALID_DATA, "a second device certificate" },
    { ZERO_LEN, ST_ERROR_INVALID_DATA, "zero-length entry" },
    { OVERSIZE, ST_ERROR_INVALID_DATA, "total length above the maximum" },
    { TRUNCATED, ST_ERROR_INVALID_DATA, "area shorter than the header" },
    { UID_TOO_LONG, ST_ERROR_INVALID_DATA, "uid longer than 32" },
  };
  G_STATIC_ASSERT (G_N_ELEMENTS (cases) == N_CASES);
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree guint8 *d = g_malloc (n + 64);
      memset (d, 0xff, n + 64);
      memcpy (d, good, n);
      gsize len = n;
      g_test_message ("malformed blob: %s", cases[i].name);
      switch (cases[i].which)
        {
        case BAD_MAGIC: d[0] = 'X'; break;
        case BAD_VERSION: d[4] = 2; fix_crc (d); break;
        case LEN_PAST_END: put32 (d + 8, (guint32) n + 100); break;
        case LEN_TOO_SMALL: put32 (d + 8, 8); break;
        case BAD_CRC: d[40] ^= 0x10; break;
        case ENTRY_PAST_END: d[12 + 2] = 0xff; d[12 + 3] = 0x7f; fix_crc (d); break;
        case COUNT_LOW: d[6] = 5; fix_crc (d); break;
        case COUNT_HIGH: d[6] = 7; fix_crc (d); break;
        case RESERVED: d[13] = 1; fix_crc (d); break;
        case UNKNOWN_TYPE: d[12] = 0x09; fix_crc (d); break;
        case TWO_UIDS: d[28] = 0x03; fix_crc (d); break;
        case ZERO_LEN: d[14] = 0; d[15] = 0; fix_crc (d); break;
        case OVERSIZE: put32 (d + 8, ST_BLOB_MAX_SIZE + 4); break;
        case TRUNCATED: len = 10; break;
        case UID_TOO_LONG:
          {
            /* A blob whose only difference is a 33-byte uid. */
            g_autoptr(StBlob) c = sample_blob ();
            g_autoptr(StBlob) parsed = NULL;
            guint8 big[33] = { 0 };
            g_clear_pointer (&c->uid, g_bytes_unref);
            c->uid = g_bytes_new (big, 12);
            g_autoptr(GBytes) e2 = st_blob_build (c, 1, AREA_SIZE, &error);
            g_assert_no_error (error);
            gsize n2 = g_bytes_get_size (e2);
            g_autofree guint8 *d2 = g_malloc (n2 + 21);
            const guint8 *s2 = g_bytes_get_data (e2, NULL);
            /* header, a 33-byte uid entry, the rest of the entries, CRC. */
            memcpy (d2, s2, 12);
            d2[12] = 1; d2[13] = 0; d2[14] = 33; d2[15] = 0;
            memcpy (d2 + 16, big, 33);
            memcpy (d2 + 49, s2 + 28, n2 - 28);
            put32 (d2 + 8, (guint32) (n2 + 21));
            fix_crc (d2);
            parsed = st_blob_parse (d2, n2 + 21, &error);
            g_assert_null (parsed);
            g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
            g_clear_error (&error);
            continue;
          }
        default: break;
        }
      g_autoptr(StBlob) p = st_blob_parse (d, len, &error);
      g_assert_null (p);
      g_assert_error (error, ST_ERROR, cases[i].code);
      g_test_message ("  -> %s", error->message);
      g_clear_error (&error);
    }
  /* And the unchanged blob still parses (the table's damage is what failed). */
  g_autoptr(StBlob) ok = st_blob_parse (good, n, &error);
  g_assert_no_error (error);
  g_assert_nonnull (ok);
}

/* ---- the flash map ---- */

static void
test_target_map (void)
{
  g_autoptr(GError) error = NULL;
  const StTarget *t = st_target_find (0x413, &error);
  g_assert_no_error (error);
  g_assert_true (t == st_target_stm32f4 ());
  guint64 sum = 0;
  for (guint i = 0; i < t->n_sectors; i++)
    {
      g_assert_cmphex (t->sectors[i].address, ==, t->flash_base + sum);
      sum += t->sectors[i].size;
    }
  g_assert_cmpuint (sum, ==, t->flash_size);
  g_assert_cmphex (t->uid_address, ==, 0x1FFF7A10);
  g_assert_cmpint (st_target_sector_at (t, 0x0800C000), ==, 3);
  g_assert_cmpint (st_target_sector_at (t, 0x0801FFFF), ==, 4);
  g_assert_cmpint (st_target_sector_at (t, 0x08100000), ==, -1);
  guint first = 0, count = 0;
  g_assert_true (st_target_sectors_for_range (t, 0x0800C000, 16384, TRUE, &first, &count, &error));
  g_assert_cmpuint (first, ==, 3);
  g_assert_cmpuint (count, ==, 1);
  g_assert_true (st_target_sectors_for_range (t, 0x08008000, 0x18000, TRUE, &first, &count, &error));
  g_assert_cmpuint (first, ==, 2);
  g_assert_cmpuint (count, ==, 3);
  g_assert_false (st_target_sectors_for_range (t, 0x0800C000, 8192, TRUE, &first, &count, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_assert_false (st_target_sectors_for_range (t, 0x080FC000, 0x8000, FALSE, &first, &count, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_assert_null (st_target_find (0x410, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED);
}

/* ---- AN3155 conversation over a pty ---- */

static void
test_link_conversation (void)
{
  g_autoptr(GError) error = NULL;
  Sim *sim = sim_start ("--units", "1", "--seed", "77", NULL);
  g_autoptr(StRomLink) link = link_open (sim->path, 2);

  /* Before the sync a command is ignored (autobaud not done): time-out. */
  const guint8 get[2] = { 0x00, 0xff };
  send_raw (link, get, 2);
  guint8 b = 0;
  g_assert_false (st_rom_link_read_byte (link, &b, 200, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_TIMED_OUT);
  g_clear_error (&error);

  gboolean fresh = FALSE;
  g_assert_true (st_rom_link_sync (link, &fresh, &error));
  g_assert_no_error (error);
  g_assert_true (fresh);
  g_assert_true (st_rom_link_sync (link, &fresh, &error));
  g_assert_false (fresh);   /* already synchronised: NACK */

  guint8 version = 0, cmds[32];
  gsize n_cmds = 0;
  g_assert_true (st_rom_link_get (link, &version, cmds, sizeof cmds, &n_cmds, &error));
  g_assert_no_error (error);
  g_assert_cmphex (version, ==, 0x31);
  g_assert_nonnull (memchr (cmds, ST_ROM_CMD_EXT_ERASE, n_cmds));
  guint16 pid = 0;
  g_assert_true (st_rom_link_get_id (link, &pid, &error));
  g_assert_cmphex (pid, ==, 0x413);

  /* Checksum errors: a wrong complement, a wrong address XOR, a wrong
   * length complement, a wrong data checksum: NACK each time. */
  const guint8 bad_cmd[2] = { 0x11, 0xef };
  send_raw (link, bad_cmd, 2);
  expect_byte (link, ST_ROM_NACK);
  const guint8 read_cmd[2] = { 0x11, 0xee };
  const guint8 bad_addr[5] = { 0x08, 0x00, 0xC0, 0x00, 0x00 };
  send_raw (link, read_cmd, 2);
  expect_byte (link, ST_ROM_ACK);
  send_raw (link, bad_addr, 5);
  expect_byte (link, ST_ROM_NACK);
  const guint8 addr[5] = { 0x08, 0x00, 0xC0, 0x00, 0x08 ^ 0xC0 };
  const guint8 bad_n[2] = { 0x0f, 0x0f };
  send_raw (link, read_cmd, 2);
  expect_byte (link, ST_ROM_ACK);
  send_raw (link, addr, 5);
  expect_byte (link, ST_ROM_ACK);
  send_raw (link, bad_n, 2);
  expect_byte (link, ST_ROM_NACK);
  const guint8 write_cmd[2] = { 0x31, 0xce };
  const guint8 bad_data[7] = { 0x03, 1, 2, 3, 4, 0x00 /* should be 0x03^1^2^3^4 = 7 */ };
  send_raw (link, write_cmd, 2);
  expect_byte (link, ST_ROM_ACK);
  send_raw (link, addr, 5);
  expect_byte (link, ST_ROM_ACK);
  send_raw (link, bad_data, 6);
  expect_byte (link, ST_ROM_NACK);
  /* An address outside every region. */
  const guint8 nowhere[5] = { 0x30, 0x00, 0x00, 0x00, 0x30 };
  send_raw (link, read_cmd, 2);
  expect_byte (link, ST_ROM_ACK);
  send_raw (link, nowhere, 5);
  expect_byte (link, ST_ROM_NACK);

  /* A command left half-way (WRITE waiting for 256 data bytes): the link
   * re-synchronises and the bootloader answers commands again. */
  send_raw (link, write_cmd, 2);
  expect_byte (link, ST_ROM_ACK);
  send_raw (link, addr, 5);
  expect_byte (link, ST_ROM_ACK);
  const guint8 start[3] = { 0xff, 0x12, 0x34 };
  send_raw (link, start, 3);
  g_assert_false (st_rom_link_read_byte (link, &b, 200, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_TIMED_OUT);
  g_clear_error (&error);
  g_assert_true (st_rom_link_resync (link, &error));
  g_assert_no_error (error);
  st_rom_link_get_id (link, &pid, &error);
  g_assert_no_error (error);

  /* Flash: erased 0xFF, written 1 -> 0 only, erased by sectors. */
  guint8 buf[64];
  g_assert_true (st_rom_link_read (link, AREA, buf, sizeof buf, &error));
  for (gsize i = 0; i < sizeof buf; i++)
    g_assert_cmphex (buf[i], ==, 0xff);
  /* The resync bytes may have landed as data (0xFF/0x00 pattern) in the
   * half-written block: erase first, as the backend does. */
  const guint16 sec3 = 3;
  g_assert_true (st_rom_link_erase (link, &sec3, 1, &error));
  g_assert_no_error (error);
  guint8 data[300];
  for (gsize i = 0; i < sizeof data; i++)
    data[i] = (guint8) (i * 7 + 1);
  g_assert_true (st_rom_link_write (link, AREA, data, sizeof data, &error));
  g_assert_no_error (error);
  guint8 back[300];
  g_assert_true (st_rom_link_read (link, AREA, back, sizeof back, &error));
  g_assert_cmpmem (back, sizeof back, data, sizeof data);
  /* 0 -> 1 needs an erase: NACK, after the retries. */
  guint8 ones[4] = { 0xff, 0xff, 0xff, 0xff };
  g_assert_false (st_rom_link_write (link, AREA, ones, 4, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "NACK"));
  g_clear_error (&error);
  g_assert_cmpuint (st_rom_link_get_stats (link)->n_retries, >=, 2);
  /* An unaligned write is refused before anything is sent. */
  g_assert_false (st_rom_link_write (link, AREA + 2, ones, 4, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_assert_true (st_rom_link_erase (link, &sec3, 1, &error));
  g_assert_true (st_rom_link_read (link, AREA, back, sizeof back, &error));
  for (gsize i = 0; i < sizeof back; i++)
    g_assert_cmphex (back[i], ==, 0xff);
  const guint16 bad_sector = 12;
  g_assert_false (st_rom_link_erase (link, &bad_sector, 1, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);

  /* GO: the device leaves the bootloader; nothing answers any more. */
  g_assert_true (st_rom_link_go (link, 0x08000000, &error));
  g_assert_no_error (error);
  g_assert_false (st_rom_link_sync (link, &fresh, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_TIMED_OUT);
  sim_stop (sim);
}

/* ---- the backend ---- */

static StBackend *
backend_new (const char *path, guint retries)
{
  StLinkParams params;
  st_link_params_init_defaults (&params);
  params.timeout_ms = 300;
  params.retries = retries;
  params.blob_address = AREA;
  params.blob_area_size = AREA_SIZE;
  params.uid_address = 0x1FFF7A10;
  params.uid_length = 12;
  g_autofree gchar *port = g_strdup_printf ("stm32-rom:%s", path);
  g_autoptr(GError) error = NULL;
  StBackend *be = st_backend_new (port, &params, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (be->klass->name, ==, "stm32-rom");
  return be;
}

/* identify, put key, cert, chain, commit; returns the commit's result. */
static gboolean
provision (StBackend *be, StDeviceInfo *info, StBlob *want, GError **error)
{
  g_autoptr(GError) local = NULL;
  g_assert_true (st_backend_identify (be, info, &local));
  g_assert_no_error (local);
  g_assert_cmpuint (info->uid_len, ==, 12);
  g_assert_cmpstr (info->model, ==, "STM32 PID 0x0413");
  g_assert_cmpint (info->state, ==, ST_DEVICE_STATE_BLANK);
  g_assert_null (st_backend_keygen (be, ST_ALG_EC_P256, &local));
  g_assert_error (local, ST_ERROR, ST_ERROR_NOT_SUPPORTED);
  g_clear_error (&local);
  guint8 ch[32] = { 0 };
  g_assert_null (st_backend_sign (be, ch, &local));
  g_assert_error (local, ST_ERROR, ST_ERROR_NOT_SUPPORTED);
  g_clear_error (&local);
  g_assert_true (st_backend_put_key (be, ST_ALG_EC_P256, want->key, &local));
  g_assert_true (st_backend_write (be, ST_SLOT_CERT, want->cert, &local));
  g_autoptr(GBytes) chain = st_blob_dup_chain (want);
  g_assert_true (st_backend_write (be, ST_SLOT_CHAIN, chain, &local));
  g_assert_true (st_backend_set_product_serial (be, want->product_serial, &local));
  g_assert_no_error (local);
  return st_backend_commit (be, FALSE, error);
}

static void
test_backend_provision (void)
{
  g_autoptr(GError) error = NULL;
  Sim *sim = sim_start ("--units", "2", "--seed", "88", NULL);
  g_autoptr(StBackend) be = backend_new (sim->path, 3);
  g_autoptr(StBlob) want = sample_blob ();
  st_backend_open (be, &error);
  g_assert_no_error (error);
  StDeviceInfo info = { 0 };
  g_assert_true (provision (be, &info, want, &error));
  g_assert_no_error (error);
  g_assert_true (st_stm32_rom_backend_was_fresh (be));
  g_assert_cmpint (st_backend_get_last_status (be), ==, ST_AGENT_STATUS_OK);

  /* After COMMIT the buffers are gone: READ parses the blob from flash. */
  g_autoptr(GBytes) cert = st_backend_read (be, ST_SLOT_CERT, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (cert, want->cert));
  g_autoptr(GBytes) chain = st_backend_read (be, ST_SLOT_CHAIN, &error);
  g_autoptr(GBytes) want_chain = st_blob_dup_chain (want);
  g_assert_true (g_bytes_equal (chain, want_chain));
  /* The blob as the device holds it, parsed independently of the backend. */
  g_autofree guint8 *area = g_malloc (AREA_SIZE);
  g_assert_true (st_rom_link_read (st_stm32_rom_backend_get_link (be), AREA, area, 1024, &error));
  g_autoptr(StBlob) got = st_blob_parse (area, 1024, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (g_bytes_get_data (got->uid, NULL), 12, info.uid, 12);
  g_assert_cmpstr (got->product_serial, ==, want->product_serial);

  /* The closing identify: the same device, synchronised (NACK), now
   * provisioned. Then the operator swaps it. */
  StDeviceInfo after = { 0 };
  g_assert_true (st_backend_identify (be, &after, &error));
  g_assert_no_error (error);
  g_assert_false (st_stm32_rom_backend_was_fresh (be));
  g_assert_cmpint (after.state, ==, ST_DEVICE_STATE_PROVISIONED);
  g_assert_cmpmem (after.uid, after.uid_len, info.uid, info.uid_len);

  /* The next device: fresh (ACK), another uid, blank. */
  StDeviceInfo next = { 0 };
  st_test_identify_next (be, &next, 20, 0);
  g_assert_true (st_stm32_rom_backend_was_fresh (be));
  g_assert_cmpint (next.state, ==, ST_DEVICE_STATE_BLANK);
  g_assert_true (memcmp (next.uid, info.uid, 12) != 0);

  /* ABORT wipes what was buffered: COMMIT then has nothing to write. */
  g_assert_true (st_backend_put_key (be, ST_ALG_EC_P256, want->key, &error));
  g_assert_true (st_backend_abort (be, &error));
  g_assert_false (st_backend_commit (be, FALSE, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_BUSY);
  g_clear_error (&error);
  /* Lock is refused before anything is written. */
  g_assert_false (st_backend_commit (be, TRUE, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED);
  g_assert_cmpint (st_backend_get_last_status (be), ==, ST_AGENT_STATUS_UNSUPPORTED);
  sim_stop (sim);
}

static void
test_backend_faults (void)
{
  g_autoptr(StBlob) want = sample_blob ();
  static const struct { const char *fault; int code; StAgentStatus status; } cases[] = {
    { "drop", -1, ST_AGENT_STATUS_OK },
    { "readback-differs", ST_ERROR_VERIFY_FAILED, ST_AGENT_STATUS_STORAGE },
    { "write-fail", ST_ERROR_INVALID_DATA, ST_AGENT_STATUS_STORAGE },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_test_message ("fault %s", cases[i].fault);
      Sim *sim = sim_start ("--units", "1", "--seed", "99", "--fault", cases[i].fault, NULL);
      g_autoptr(StBackend) be = backend_new (sim->path, 5);
      StDeviceInfo info = { 0 };
      gboolean opened = FALSE;
      for (guint k = 0; k < 5 && !opened; k++)
        {
          g_clear_error (&error);
          opened = st_backend_open (be, &error);
        }
      g_assert_true (opened);
      gboolean ok = provision (be, &info, want, &error);
      if (cases[i].code < 0)
        {
          g_assert_no_error (error);
          g_assert_true (ok);
          g_assert_cmpuint (be->n_retries, >, 0);   /* dropped answers were retried */
        }
      else
        {
          g_assert_false (ok);
          g_assert_error (error, ST_ERROR, cases[i].code);
        }
      g_test_message ("  retries %" G_GUINT64_FORMAT "%s%s", be->n_retries, error ? ": " : "",
                      error ? error->message : "");
      g_assert_cmpint (st_backend_get_last_status (be), ==, cases[i].status);
      sim_stop (sim);
    }

  /* Readout protection: the device refuses READ; identify says so. */
  g_autoptr(GError) error = NULL;
  Sim *sim = sim_start ("--units", "1", "--fault", "rdp", NULL);
  g_autoptr(StBackend) be = backend_new (sim->path, 1);
  g_assert_true (st_backend_open (be, &error));
  StDeviceInfo info = { 0 };
  g_assert_false (st_backend_identify (be, &info, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "NACK"));
  sim_stop (sim);

  /* An empty socket: open times out. */
  Sim *empty = sim_start ("--units", "1", NULL);
  g_autoptr(GError) e2 = NULL;
  g_autoptr(StBackend) b2 = backend_new (empty->path, 0);
  /* The first device is there: take it out with GO, then nothing answers. */
  g_assert_true (st_backend_open (b2, &e2));
  g_assert_true (st_rom_link_go (st_stm32_rom_backend_get_link (b2), 0x08000000, &e2));
  st_backend_close (b2);
  g_assert_false (st_backend_open (b2, &e2));
  g_assert_error (e2, ST_ERROR, ST_ERROR_TIMED_OUT);
  sim_stop (empty);
}

/* [link] go-address: after each unit's closing identify the backend sends
 * GO, and the simulator's state file records the address for every device;
 * without it none is sent, and each device stays until the next session's
 * sync takes it out. */
static void
test_backend_go (void)
{
  g_autoptr(StBlob) want = sample_blob ();
  for (guint round = 0; round < 2; round++)
    {
      gboolean go = round == 0;
      g_autoptr(GError) error = NULL;
      g_test_message ("%s go-address", go ? "with" : "without");
      g_autofree gchar *dir = st_test_tmpdir ("st-go");
      g_autofree gchar *state = g_build_filename (dir, "rom.json", NULL);
      Sim *sim = sim_start ("--units", "2", "--seed", go ? "4401" : "4402", "--state", state, NULL);
      g_autoptr(StBackend) be = backend_new (sim->path, 2);
      be->params.go = go;
      be->params.go_address = go ? 0x08010000 : 0;
      g_assert_true (st_backend_open (be, &error));
      g_assert_no_error (error);
      guint8 first_uid[12] = { 0 };
      for (guint unit = 0; unit < 2; unit++)
        {
          /* The second device answers after the swap. */
          StDeviceInfo info = { 0 };
          st_test_identify_next (be, &info, 20, 0);
          g_assert_true (provision (be, &info, want, &error));
          g_assert_no_error (error);
          if (unit == 0)
            memcpy (first_uid, info.uid, sizeof first_uid);
          else
            g_assert_true (memcmp (info.uid, first_uid, sizeof first_uid) != 0);
          /* The closing identify (GO follows it when configured). */
          StDeviceInfo after = { 0 };
          g_assert_true (st_backend_identify (be, &after, &error));
          g_assert_no_error (error);
          g_assert_cmpint (after.state, ==, ST_DEVICE_STATE_PROVISIONED);
          g_assert_cmpmem (after.uid, after.uid_len, info.uid, info.uid_len);
        }
      st_backend_close (be);
      sim_stop (sim);   /* writes the state file */

      g_autoptr(JsonParser) parser = st_test_load_json (state);
      JsonArray *devs = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)),
                                                      "devices");
      g_assert_cmpuint (json_array_get_length (devs), ==, 2);
      for (guint i = 0; i < 2; i++)
        {
          JsonObject *d = json_array_get_object_element (devs, i);
          g_assert_cmpint (json_object_get_int_member (d, "writes"), >, 0);
          JsonNode *addr = json_object_get_member (d, "go_address");
          g_assert_nonnull (addr);
          if (go)
            {
              g_assert_false (JSON_NODE_HOLDS_NULL (addr));
              g_assert_cmphex (json_node_get_int (addr), ==, 0x08010000);
            }
          else
            g_assert_true (JSON_NODE_HOLDS_NULL (addr));
        }
      if (go)
        {
          /* The record survives putting the device back (a QA socket), which
           * loads the file and writes it again. */
          Sim *qa = sim_start ("--state", state, "--present", "2", NULL);
          sim_stop (qa);
          g_autoptr(JsonParser) again = st_test_load_json (state);
          JsonArray *devs2 = json_object_get_array_member (json_node_get_object (json_parser_get_root (again)),
                                                           "devices");
          JsonObject *d2 = json_array_get_object_element (devs2, 1);
          g_assert_cmphex (json_object_get_int_member (d2, "go_address"), ==, 0x08010000);
        }
      g_unlink (state);
      g_rmdir (dir);
    }
}

static void
test_backend_firmware (void)
{
  g_autoptr(GError) error = NULL;
  Sim *sim = sim_start ("--units", "1", NULL);
  g_autoptr(StBackend) be = backend_new (sim->path, 2);
  g_assert_true (st_backend_open (be, &error));
  StDeviceInfo info = { 0 };
  g_assert_true (st_backend_identify (be, &info, &error));
  g_autofree guint8 *img = g_malloc (70001);
  for (gsize i = 0; i < 70001; i++)
    img[i] = (guint8) (i ^ (i >> 8));
  g_autoptr(GBytes) image = g_bytes_new (img, 70001);
  guint8 md[32];
  unsigned int mdlen = 0;
  g_assert_cmpint (EVP_Digest (img, 70001, md, &mdlen, EVP_sha256 (), NULL), ==, 1);
  guint64 tx_before = be->bytes_tx;

  /* A mismatched hash: refused, and nothing went to the device. */
  guint8 wrong[32];
  memcpy (wrong, md, 32);
  wrong[31] ^= 1;
  g_assert_false (st_backend_flash_image (be, 0x08010000, image, wrong, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
  g_clear_error (&error);
  g_assert_cmpuint (be->bytes_tx, ==, tx_before);
  /* Not at a sector start, or over the credential area: refused. */
  g_assert_false (st_backend_flash_image (be, 0x08010100, image, md, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_assert_false (st_backend_flash_image (be, 0x08000000, image, md, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);

  g_assert_true (st_backend_flash_image (be, 0x08010000, image, md, &error));
  g_assert_no_error (error);
  g_autofree guint8 *back = g_malloc (70001);
  g_assert_true (st_rom_link_read (st_stm32_rom_backend_get_link (be), 0x08010000, back, 70001, &error));
  g_assert_cmpmem (back, 70001, img, 70001);
  sim_stop (sim);
}

/* ---- the stock stm32flash against the simulator ---- */

static void
test_stm32flash (void)
{
  g_autofree gchar *tool = g_find_program_in_path ("stm32flash");
  if (tool == NULL)
    {
      g_test_skip ("stm32flash is not installed (make test installs it)");
      return;
    }
  g_autoptr(GError) error = NULL;
  g_autofree gchar *dir = st_test_tmpdir ("st-stm32");
  Sim *sim = sim_start ("--units", "1", "--seed", "4242", NULL);
  /* A pty keeps only 8N1 (Linux clears PARENB), and stm32flash checks the
   * flags it set: tell it 8n1; the bytes are the same. */
  g_autofree gchar *out = NULL;
  g_assert_cmpint (st_run_tool (&out, NULL, "stm32flash", "-m", "8n1", "-b", "115200", sim->path, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "Device ID    : 0x0413"));
  g_assert_nonnull (strstr (out, "Version      : 0x31"));

  g_autofree gchar *img = g_build_filename (dir, "image.bin", NULL);
  g_autofree gchar *rd = g_build_filename (dir, "read.bin", NULL);
  g_autofree gchar *uidf = g_build_filename (dir, "uid.bin", NULL);
  /* The uid first: the simulated operator swaps a device whose flash
   * changed once its uid is read again. */
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_tool (&out, NULL, "stm32flash", "-m", "8n1", "-b", "115200", "-r", uidf,
                                "-S", "0x1FFF7A10:12", sim->path, NULL), ==, 0);
  g_autofree gchar *uid = NULL;
  gsize n = 0;
  g_assert_true (g_file_get_contents (uidf, &uid, &n, NULL));
  g_assert_cmpuint (n, ==, 12);

  g_autofree guint8 *data = g_malloc (20000);
  for (gsize i = 0; i < 20000; i++)
    data[i] = (guint8) g_test_rand_int ();
  g_assert_true (g_file_set_contents (img, (const char *) data, 20000, NULL));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_tool (&out, NULL, "stm32flash", "-m", "8n1", "-b", "115200", "-w", img, "-v",
                                "-S", "0x08004000", sim->path, NULL), ==, 0);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_tool (&out, NULL, "stm32flash", "-m", "8n1", "-b", "115200", "-r", rd,
                                "-S", "0x08004000:20000", sim->path, NULL), ==, 0);
  g_autofree gchar *got = NULL;
  g_assert_true (g_file_get_contents (rd, &got, &n, NULL));
  g_assert_cmpmem (got, n, data, 20000);
  /* Our backend agrees with stm32flash: the same flash, the same uid. */
  g_autoptr(StBackend) be = backend_new (sim->path, 2);
  st_backend_open (be, &error);
  g_assert_no_error (error);
  g_assert_false (st_stm32_rom_backend_was_fresh (be));   /* stm32flash synced it */
  g_autofree guint8 *ours = g_malloc (20000);
  g_assert_true (st_rom_link_read (st_stm32_rom_backend_get_link (be), 0x08004000, ours, 20000, &error));
  g_assert_cmpmem (ours, 20000, data, 20000);
  StDeviceInfo info = { 0 };
  g_assert_true (st_backend_identify (be, &info, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (info.uid, info.uid_len, uid, 12);
  st_backend_close (be);
  sim_stop (sim);
  g_unlink (img);
  g_unlink (rd);
  g_unlink (uidf);
  g_rmdir (dir);
}

/* ---- a batch on two simulated STM32 sockets ---- */

static guint
check_state_file (StFixture *f, const char *state, const char *out, guint *n_units,
                  double *wire_s)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonParser) parser = st_test_load_json (state);
  JsonArray *devs = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)), "devices");
  guint checked = 0;
  g_autofree gchar *root = g_build_filename (f->home, "demo-root.pem", NULL);
  g_autofree gchar *script = g_build_filename (g_getenv ("ST_SOURCE_DIR"), "tests", "programmer",
                                               "stm32-blob-check.py", NULL);
  for (guint i = 0; i < json_array_get_length (devs); i++)
    {
      JsonObject *d = json_array_get_object_element (devs, i);
      const char *uid = json_object_get_string_member (d, "uid");
      if (json_object_get_int_member (d, "writes") == 0)
        continue;    /* presented but never provisioned */
      g_assert_nonnull (strstr (out, uid));
      guint64 bytes = (guint64) json_object_get_int_member (d, "bytes_rx") +
                      (guint64) json_object_get_int_member (d, "bytes_tx");
      *wire_s += (double) bytes * 11.0 / 115200.0;   /* 8E1: start, 8 data, parity, stop */
      (*n_units)++;

      /* Put the device back into a socket and read it with stm32flash. */
      g_autofree gchar *idx = g_strdup_printf ("%u", i + 1);
      g_autofree gchar *pty = st_start_devsim (f, "--mode", "stm32-rom", "--state", state,
                                               "--present", idx, NULL);
      g_autofree gchar *area = g_build_filename (f->tmp, "area.bin", NULL);
      g_autofree gchar *uidf = g_build_filename (f->tmp, "uid.bin", NULL);
      g_assert_cmpint (st_run_tool (NULL, NULL, "stm32flash", "-m", "8n1", "-b", "115200", "-r", area,
                                    "-S", "0x0800C000:16384", pty, NULL), ==, 0);
      g_assert_cmpint (st_run_tool (NULL, NULL, "stm32flash", "-m", "8n1", "-b", "115200", "-r", uidf,
                                    "-S", "0x1FFF7A10:12", pty, NULL), ==, 0);
      g_autofree gchar *report = NULL;
      int rc = st_run_tool (&report, NULL, "python3", script, area, uidf, root, NULL);
      g_test_message ("%s", report);
      g_assert_cmpint (rc, ==, 0);
      g_assert_nonnull (strstr (report, "ok   chain"));
      g_assert_nonnull (strstr (report, "ok   key"));
      g_assert_nonnull (strstr (report, "ok   uid"));
      st_stop_devsims (f);
      checked++;
    }
  return checked;
}

static void
test_batch (StFixture *f, gconstpointer data)
{
  g_autofree gchar *tool = g_find_program_in_path ("stm32flash");
  if (tool == NULL)
    {
      g_test_skip ("stm32flash is not installed (make test installs it)");
      return;
    }
  g_autofree gchar *s1 = g_build_filename (f->tmp, "rom1.json", NULL);
  g_autofree gchar *s2 = g_build_filename (f->tmp, "rom2.json", NULL);
  gint64 batch = st_create_batch (f, "example-stm32-rom.profile", 4);
  g_autofree gchar *p1 = st_start_devsim (f, "--mode", "stm32-rom", "--units", "2", "--seed", "5101",
                                          "--state", s1, "--swap-delay-ms", "100", NULL);
  g_autofree gchar *p2 = st_start_devsim (f, "--mode", "stm32-rom", "--units", "2", "--seed", "5202",
                                          "--state", s2, "--swap-delay-ms", "100", NULL);
  g_autofree gchar *port1 = g_strdup_printf ("stm32-rom:%s", p1);
  g_autofree gchar *port2 = g_strdup_printf ("stm32-rom:%s", p2);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  g_autofree gchar *out = NULL;
  gint64 t0 = g_get_monotonic_time ();
  int rc = st_run_station (f, &out, NULL, "batch", "run", id, "--port", port1, "--port", port2,
                           "--units", "2", "--wait", "30", NULL);
  double run_s = (double) (g_get_monotonic_time () - t0) / G_USEC_PER_SEC;
  g_assert_cmpint (rc, ==, 0);
  g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, 4);
  st_stop_devsims (f);   /* the simulators write their state files */
  g_autofree gchar *show = NULL;
  g_assert_cmpint (st_run_station (f, &show, NULL, "batch", "show", id, NULL), ==, 0);
  g_assert_cmpuint (st_count_lines (show, " done "), ==, 4);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "db", "check", NULL), ==, 0);

  /* Time per unit, as the station measured it. */
  double unit_s = 0;
  guint n_lines = 0;
  gchar **lines = g_strsplit (out, "\n", -1);
  for (gchar **l = lines; *l != NULL; l++)
    {
      const char *p = strstr (*l, " PASSED ");
      if (p == NULL)
        continue;
      unit_s += g_ascii_strtod (p + 8, NULL);
      n_lines++;
    }
  g_strfreev (lines);

  guint n_units = 0;
  double wire_s = 0;
  guint checked = check_state_file (f, s1, out, &n_units, &wire_s) +
                  check_state_file (f, s2, out, &n_units, &wire_s);
  g_assert_cmpuint (checked, ==, 4);
  g_assert_cmpuint (n_lines, ==, 4);
  /* Figures for the notes; measured, never asserted. */
  g_printerr ("# stm32-rom batch: %u units on 2 sockets in %.2f s; per unit %.3f s on a pty, "
              "bytes on the wire per unit %.0f -> %.3f s at 115200 8E1\n",
              n_units, run_s, unit_s / n_lines, wire_s / n_units * 115200.0 / 11.0, wire_s / n_units);
}

/* [firmware] in a profile: parsed strictly; an image whose SHA-256 differs
 * from the profile's is refused before anything can be written. */
static void
test_profile_firmware (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *src = g_build_filename (g_getenv ("ST_SOURCE_DIR"), "profiles",
                                            "example-stm32-rom.profile", NULL);
  g_autofree gchar *text = NULL;
  g_assert_true (g_file_get_contents (src, &text, NULL, &error));
  g_autoptr(StProfile) plain = st_profile_load_from_data (text, strlen (text), "example", &error);
  g_assert_no_error (error);
  g_assert_null (plain->firmware_image);
  g_assert_cmphex (plain->link.blob_address, ==, AREA);
  g_assert_cmpuint (plain->link.blob_area_size, ==, AREA_SIZE);
  g_assert_cmpint (plain->key_mode, ==, ST_KEY_MODE_STATION_KEY);
  g_assert_false (plain->link.go);

  /* [link] go-address: GO after the commit; a 4-aligned address. */
  g_autofree gchar *go = g_strconcat (text, "", NULL);
  gchar *at = strstr (go, "uid-length = 12\n");
  g_assert_nonnull (at);
  for (guint round = 0; round < 2; round++)
    {
      g_autofree gchar *with = g_strdup_printf ("%.*sgo-address = %s\n%s", (int) (at - go), go,
                                                round == 0 ? "0x08000000" : "0x08000002", at);
      g_autoptr(StProfile) p = st_profile_load_from_data (with, strlen (with), "go", &error);
      if (round == 0)
        {
          g_assert_no_error (error);
          g_assert_true (p->link.go);
          g_assert_cmphex (p->link.go_address, ==, 0x08000000);
        }
      else
        {
          g_assert_null (p);
          g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
          g_assert_nonnull (strstr (error->message, "go-address"));
          g_clear_error (&error);
        }
    }

  g_autofree gchar *dir = st_test_tmpdir ("st-fw");
  g_autofree gchar *img = g_build_filename (dir, "fw.bin", NULL);
  const char content[] = "firmware image bytes";
  g_assert_true (g_file_set_contents (img, content, sizeof content, &error));
  g_autofree gchar *hash = st_sha256_hex ((const guint8 *) content, sizeof content);
  for (guint round = 0; round < 2; round++)
    {
      gchar *bad = g_strdup (hash);
      if (round == 1)
        bad[0] = bad[0] == '0' ? '1' : '0';
      g_autofree gchar *with = g_strdup_printf ("%s\n[firmware]\nimage = %s\naddress = 0x08010000\nsha256 = %s\n",
                                                text, img, bad);
      g_free (bad);
      g_autoptr(StProfile) p = st_profile_load_from_data (with, strlen (with), "fw", &error);
      g_assert_no_error (error);
      g_assert_cmpstr (p->firmware_image, ==, img);
      g_assert_cmphex (p->firmware_address, ==, 0x08010000);
      g_autoptr(GBytes) b = st_profile_load_firmware (p, &error);
      if (round == 0)
        {
          g_assert_no_error (error);
          g_assert_cmpuint (g_bytes_get_size (b), ==, sizeof content);
        }
      else
        {
          g_assert_null (b);
          g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
          g_clear_error (&error);
        }
    }
  /* A malformed hash and an unknown key are refused at load. */
  const char *bad_groups[] = {
    "\n[firmware]\nimage = x\naddress = 0x08010000\nsha256 = 1234\n",
    "\n[firmware]\nimage = x\naddress = 0x08010000\nsha256 = 1234\nsize = 3\n",
    "\n[firmware]\naddress = 0x08010000\n",
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad_groups); i++)
    {
      g_autofree gchar *with = g_strconcat (text, bad_groups[i], NULL);
      g_autoptr(StProfile) p = st_profile_load_from_data (with, strlen (with), "fw", &error);
      g_assert_null (p);
      g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
      g_clear_error (&error);
    }
  g_unlink (img);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  st_test_init (&argc, &argv);
  g_test_add_func ("/stm32/unit/blob-round-trip", test_blob_round_trip);
  g_test_add_func ("/stm32/unit/blob-malformed", test_blob_malformed);
  g_test_add_func ("/stm32/unit/target-map", test_target_map);
  g_test_add_func ("/stm32/unit/profile-firmware", test_profile_firmware);
  g_test_add_func ("/stm32/link/conversation", test_link_conversation);
  g_test_add_func ("/stm32/backend/provision", test_backend_provision);
  g_test_add_func ("/stm32/backend/faults", test_backend_faults);
  g_test_add_func ("/stm32/backend/go", test_backend_go);
  g_test_add_func ("/stm32/backend/firmware", test_backend_firmware);
  g_test_add_func ("/stm32/stm32flash", test_stm32flash);
  st_test_add_station ("/stm32/batch", NULL, test_batch);
  return g_test_run ();
}
