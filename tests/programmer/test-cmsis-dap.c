/* The cmsis-dap backend against emulated CMSIS-DAP v2 probes served to
 * libusb by umockdev (tests/cmsis-dap/st-dap-testbed.h): our libusb code
 * runs unchanged. Run under umockdev-wrapper; skipped (77) without it. */
#include <openssl/evp.h>
#include <string.h>

#include "st-backend.h"
#include "st-blob.h"
#include "st-cmsis-dap.h"
#include "st-dap-testbed.h"
#include "st-error.h"
#include "st-test-passive.h"

#define AREA 0x0800C000u
#define AREA_SIZE 16384u
#define UID_ADDRESS 0x1FFF7A10u

static StSimDap *
probe_add (StDapTestbed *tb, const char *serial, guint32 seed, guint32 faults, guint units)
{
  StSimDapConfig cfg = { .units = units, .seed = seed, .faults = faults, .swap_delay_ms = 50 };
  return st_dap_testbed_add_probe_checked (tb, serial, &cfg);
}

static StBackend *
backend_new (const char *serial)
{
  StLinkParams params;
  st_link_params_init_defaults (&params);
  params.blob_address = AREA;
  params.blob_area_size = AREA_SIZE;
  params.uid_address = UID_ADDRESS;
  params.uid_length = 12;
  g_autofree gchar *port = g_strdup_printf ("cmsis-dap:%s", serial);
  g_autoptr(GError) error = NULL;
  StBackend *be = st_backend_new (port, &params, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (be->klass->name, ==, "cmsis-dap");
  return be;
}

/* backend_new(), opened. */
static StBackend *
backend_open (const char *serial)
{
  StBackend *be = backend_new (serial);
  g_autoptr(GError) error = NULL;
  g_assert_true (st_backend_open (be, &error));
  g_assert_no_error (error);
  return be;
}

typedef struct {
  GBytes *key, *cert, *chain;
} Creds;

static void
creds_init (Creds *c)
{
  c->key = st_test_der_seq (0xa1, 120);
  c->cert = st_test_der_seq (0xb2, 700);
  g_autoptr(GBytes) ca1 = st_test_der_seq (0xc3, 400);
  g_autoptr(GBytes) ca2 = st_test_der_seq (0xd4, 350);
  g_autoptr(GByteArray) a = g_byte_array_new ();
  g_byte_array_append (a, g_bytes_get_data (ca1, NULL), (guint) g_bytes_get_size (ca1));
  g_byte_array_append (a, g_bytes_get_data (ca2, NULL), (guint) g_bytes_get_size (ca2));
  c->chain = g_byte_array_free_to_bytes (g_steal_pointer (&a));
}

static void
creds_clear (Creds *c)
{
  g_bytes_unref (c->key);
  g_bytes_unref (c->cert);
  g_bytes_unref (c->chain);
}

/* The credentials, after identify: key, certificate, chain, serial, commit. */
static gboolean
store (StBackend *be, const Creds *c, GError **error)
{
  g_autoptr(GError) local = NULL;
  g_assert_true (st_backend_put_key (be, ST_ALG_EC_P256, c->key, &local));
  g_assert_true (st_backend_write (be, ST_SLOT_CERT, c->cert, &local));
  g_assert_true (st_backend_write (be, ST_SLOT_CHAIN, c->chain, &local));
  g_assert_true (st_backend_set_product_serial (be, "F4-0001", &local));
  g_assert_no_error (local);
  return st_backend_commit (be, FALSE, error);
}

static gboolean
provision (StBackend *be, const Creds *c, StDeviceInfo *info, GError **error)
{
  return st_backend_identify (be, info, error) && store (be, c, error);
}

/* The blob in the simulated device's flash, parsed. */
static StBlob *
peek_blob (StSimDap *sim)
{
  g_autofree guint8 *area = g_malloc (AREA_SIZE);
  g_assert_true (st_sim_dap_peek (sim, AREA, area, AREA_SIZE));
  g_autoptr(GError) error = NULL;
  StBlob *blob = st_blob_parse (area, AREA_SIZE, &error);
  g_assert_no_error (error);
  return blob;
}

static void
test_provision (void)
{
  g_autoptr(StDapTestbed) tb = st_dap_testbed_new_or_skip ();
  if (tb == NULL)
    return;
  StSimDap *sim = probe_add (tb, "ONLY-1", 0x5eed0001, 0, 2);
  /* "cmsis-dap:" takes the only probe there is. */
  g_autoptr(StBackend) be = backend_open ("");
  g_autoptr(GError) error = NULL;
  /* GO after the closing identify: a system reset that starts the
   * application; then the simulated operator takes the device out. */
  be->params.go = TRUE;
  be->params.go_address = 0x08000000;
  Creds c;
  creds_init (&c);
  StDeviceInfo info = { 0 };
  guint64 p0 = st_cmsis_dap_backend_get_n_packets (be);
  g_assert_true (provision (be, &c, &info, &error));
  g_assert_no_error (error);
  g_assert_cmpint (st_backend_get_last_status (be), ==, ST_AGENT_STATUS_OK);
  g_assert_cmpstr (info.model, ==, "STM32 PID 0x0413");
  g_assert_cmpint (info.state, ==, ST_DEVICE_STATE_BLANK);
  g_assert_nonnull (strstr (info.fw_version, "DPIDR 0x2ba01477"));
  /* The uid is the device's, as the simulator holds it. */
  guint8 uid[12];
  g_assert_true (st_sim_dap_peek (sim, UID_ADDRESS, uid, sizeof uid));
  g_assert_cmpmem (info.uid, info.uid_len, uid, sizeof uid);

  /* The blob in flash, parsed independently of the backend. */
  g_autoptr(StBlob) got = peek_blob (sim);
  g_assert_cmpmem (g_bytes_get_data (got->uid, NULL), g_bytes_get_size (got->uid), uid, 12);
  g_assert_true (g_bytes_equal (got->key, c.key));
  g_assert_true (g_bytes_equal (got->cert, c.cert));
  g_autoptr(GBytes) chain = st_blob_dup_chain (got);
  g_assert_true (g_bytes_equal (chain, c.chain));
  g_assert_cmpstr (got->product_serial, ==, "F4-0001");
  /* READ parses the blob from flash (the buffers are gone after COMMIT). */
  g_autoptr(GBytes) cert = st_backend_read (be, ST_SLOT_CERT, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (cert, c.cert));

  /* The closing identify: the same device, provisioned. */
  StDeviceInfo after = { 0 };
  g_assert_true (st_backend_identify (be, &after, &error));
  g_assert_no_error (error);
  g_assert_cmpint (after.state, ==, ST_DEVICE_STATE_PROVISIONED);
  g_assert_cmpmem (after.uid, after.uid_len, info.uid, info.uid_len);
  StSimDapDevice dev;
  g_assert_true (st_sim_dap_get_device (sim, 0, &dev));
  g_assert_true (dev.started);
  guint64 per_unit = st_cmsis_dap_backend_get_n_packets (be) - p0;
  g_test_message ("DAP packets for one unit (identify, erase, program, read back, identify): %"
                  G_GUINT64_FORMAT, per_unit);
  g_printerr ("# cmsis-dap: %" G_GUINT64_FORMAT " DAP packets per unit\n", per_unit);

  /* The operator swaps: no target for a moment (TIMED_OUT), then the next
   * device, blank, with another uid. */
  StDeviceInfo next = { 0 };
  g_assert_true (st_test_identify_next (be, &next, 200, 10000));   /* empty for a while */
  g_assert_cmpint (next.state, ==, ST_DEVICE_STATE_BLANK);
  g_assert_true (memcmp (next.uid, info.uid, 12) != 0);

  /* Lock is refused before anything is written; ABORT wipes the buffers. */
  g_assert_true (st_backend_put_key (be, ST_ALG_EC_P256, c.key, &error));
  g_assert_false (st_backend_commit (be, TRUE, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED);
  g_assert_nonnull (strstr (error->message, "README-cmsis-dap.md"));
  g_clear_error (&error);
  g_assert_true (st_backend_abort (be, &error));
  g_assert_false (st_backend_commit (be, FALSE, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_BUSY);
  creds_clear (&c);
}

/* [link] go-address: after a unit's closing identify the backend resets the
 * device (AIRCR SYSRESETREQ) and the simulator records it; without it no
 * reset is requested and the device stays until the next session. */
static void
test_go (void)
{
  g_autoptr(StDapTestbed) tb = st_dap_testbed_new_or_skip ();
  if (tb == NULL)
    return;
  StSimDap *sim = probe_add (tb, "GO-1", 0x60600001, 0, 2);
  g_autoptr(StBackend) be = backend_open ("GO-1");
  g_autoptr(GError) error = NULL;
  Creds c;
  creds_init (&c);
  for (guint unit = 0; unit < 2; unit++)
    {
      gboolean go = unit == 0;
      be->params.go = go;
      be->params.go_address = go ? 0x08000000 : 0;
      /* The second device comes after the swap delay. */
      StDeviceInfo info = { 0 };
      gboolean ok = FALSE;
      for (guint i = 0; i < 200 && !ok; i++)
        {
          g_clear_error (&error);
          ok = provision (be, &c, &info, &error);
          if (!ok)
            {
              g_assert_error (error, ST_ERROR, ST_ERROR_TIMED_OUT);
              g_usleep (10000);
            }
        }
      g_assert_true (ok);
      g_assert_no_error (error);
      StSimDapDevice dev;
      g_assert_true (st_sim_dap_get_device (sim, unit, &dev));
      g_assert_cmpmem (dev.uid, sizeof dev.uid, info.uid, info.uid_len);
      g_assert_false (dev.closed);
      g_assert_cmpuint (dev.n_resets, ==, 0);   /* nothing before the closing identify */

      StDeviceInfo after = { 0 };
      g_assert_true (st_backend_identify (be, &after, &error));
      g_assert_no_error (error);
      g_assert_cmpint (after.state, ==, ST_DEVICE_STATE_PROVISIONED);
      g_assert_true (st_sim_dap_get_device (sim, unit, &dev));
      g_assert_true (dev.closed);
      g_assert_cmpint (dev.started, ==, go);
      g_assert_cmpuint (dev.n_resets, ==, go ? 1 : 0);
      g_assert_cmpuint (st_sim_dap_get_n_presented (sim), ==, unit + 1);
      if (!go)
        g_assert_true (st_sim_dap_is_present (sim));   /* no GO: it waits for the operator */
    }
  /* The next session takes the last device out; no more come. */
  StDeviceInfo none = { 0 };
  g_assert_false (st_backend_identify (be, &none, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_TIMED_OUT);
  g_assert_false (st_sim_dap_is_present (sim));
  StSimDapDevice last;
  g_assert_true (st_sim_dap_get_device (sim, 1, &last));
  g_assert_false (last.started);
  g_assert_cmpuint (last.n_resets, ==, 0);
  creds_clear (&c);
}

/* Flash fully erased (0xFF) over @len bytes at @address in the device now
 * behind the probe. */
static gboolean
erased (StSimDap *sim, guint32 address, gsize len)
{
  g_autofree guint8 *buf = g_malloc (len);
  g_assert_true (st_sim_dap_peek (sim, address, buf, len));
  for (gsize i = 0; i < len; i++)
    if (buf[i] != 0xff)
      return FALSE;
  return TRUE;
}

/* [firmware] over SWD: 40 KiB (not a multiple of a sector, nor of 1 KiB)
 * at the start of sector 4, written before the credentials and read back;
 * then the blob in sector 3. A wrong hash, an address that does not start a
 * sector and an image over the credential area are refused before a single
 * DAP packet goes out. */
#define FW_ADDRESS 0x08010000u
#define FW_SIZE (40u * 1024u + 3u)

static void
test_firmware (void)
{
  g_autoptr(StDapTestbed) tb = st_dap_testbed_new_or_skip ();
  if (tb == NULL)
    return;
  StSimDap *sim = probe_add (tb, "FW-1", 0xf1a50001, 0, 1);
  g_autoptr(StBackend) be = backend_open ("FW-1");
  g_autoptr(GError) error = NULL;
  /* Seeded bytes: another run of the test writes other ones. */
  guint32 seed = g_test_rand_int ();
  g_test_message ("image seed 0x%08x", seed);
  g_autofree guint8 *img = g_malloc (FW_SIZE);
  guint32 x = seed | 1;
  for (gsize i = 0; i < FW_SIZE; i++)
    {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      img[i] = (guint8) x;
    }
  g_autoptr(GBytes) image = g_bytes_new (img, FW_SIZE);
  guint8 md[32];
  unsigned int mdlen = 0;
  g_assert_cmpint (EVP_Digest (img, FW_SIZE, md, &mdlen, EVP_sha256 (), NULL), ==, 1);

  StDeviceInfo info = { 0 };
  g_assert_true (st_backend_identify (be, &info, &error));
  g_assert_no_error (error);
  guint64 p0 = st_cmsis_dap_backend_get_n_packets (be);
  /* A mismatched hash. */
  guint8 wrong[32];
  memcpy (wrong, md, 32);
  wrong[0] ^= 0x80;
  g_assert_false (st_backend_flash_image (be, FW_ADDRESS, image, wrong, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
  g_assert_nonnull (strstr (error->message, "nothing was written"));
  g_clear_error (&error);
  /* Not at a sector start. */
  g_assert_false (st_backend_flash_image (be, FW_ADDRESS + 0x400, image, md, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  /* Sectors 1 to 3: over the credential area (sector 3). */
  g_assert_false (st_backend_flash_image (be, 0x08004000, image, md, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "overlap"));
  g_clear_error (&error);
  g_assert_cmpuint (st_cmsis_dap_backend_get_n_packets (be), ==, p0);
  g_assert_true (erased (sim, 0x08000000, 0x20000));   /* sectors 0 to 4 */

  /* The image, then the credentials, as a unit does them. */
  gint64 t0 = g_get_monotonic_time ();
  g_assert_true (st_backend_flash_image (be, FW_ADDRESS, image, md, &error));
  g_assert_no_error (error);
  double fw_ms = (double) (g_get_monotonic_time () - t0) / 1000.0;
  guint64 fw_packets = st_cmsis_dap_backend_get_n_packets (be) - p0;
  g_test_message ("firmware %u bytes: %" G_GUINT64_FORMAT " DAP packets, %.0f ms", FW_SIZE, fw_packets, fw_ms);
  g_printerr ("# cmsis-dap: firmware image of %u bytes: %" G_GUINT64_FORMAT " DAP packets, %.0f ms "
              "(erase, program, read back)\n", FW_SIZE, fw_packets, fw_ms);
  Creds c;
  creds_init (&c);
  g_assert_true (store (be, &c, &error));
  g_assert_no_error (error);

  /* Byte for byte in flash; the rest of the sector still erased; the
   * sectors below the blob untouched. */
  g_autofree guint8 *got = g_malloc (FW_SIZE);
  g_assert_true (st_sim_dap_peek (sim, FW_ADDRESS, got, FW_SIZE));
  g_assert_cmpmem (got, FW_SIZE, img, FW_SIZE);
  g_assert_true (erased (sim, FW_ADDRESS + FW_SIZE, 0x10000 - FW_SIZE));
  g_assert_true (erased (sim, 0x08000000, AREA - 0x08000000));
  g_autoptr(StBlob) blob = peek_blob (sim);
  g_assert_true (g_bytes_equal (blob->cert, c.cert));
  g_assert_cmpmem (g_bytes_get_data (blob->uid, NULL), g_bytes_get_size (blob->uid), info.uid, info.uid_len);
  /* The closing identify: the same device, provisioned. */
  StDeviceInfo after = { 0 };
  g_assert_true (st_backend_identify (be, &after, &error));
  g_assert_no_error (error);
  g_assert_cmpint (after.state, ==, ST_DEVICE_STATE_PROVISIONED);
  g_assert_cmpmem (after.uid, after.uid_len, info.uid, info.uid_len);
  creds_clear (&c);
}

/* MEM-AP block transfers across 1 KiB boundaries, where TAR wraps. */
static void
test_tar_boundary (void)
{
  g_autoptr(StDapTestbed) tb = st_dap_testbed_new_or_skip ();
  if (tb == NULL)
    return;
  StSimDap *sim = probe_add (tb, "TAR-1", 0x7a7a7a7a, 0, 1);
  g_autoptr(StBackend) be = backend_open ("TAR-1");
  g_autoptr(GError) error = NULL;
  StDeviceInfo info = { 0 };
  g_assert_true (st_backend_identify (be, &info, &error));
  g_assert_no_error (error);
  StSwd *swd = st_cmsis_dap_backend_get_swd (be);
  g_assert_nonnull (swd);
  /* 3000 bytes from 8 bytes before a 1 KiB boundary: three boundaries. */
  const guint32 at = 0x20000400u - 8;
  const gsize n = 3000;
  g_autofree guint8 *data = g_malloc (n);
  for (gsize i = 0; i < n; i++)
    data[i] = (guint8) (i * 7 + (i >> 8) + 1);
  g_assert_true (st_swd_write_mem (swd, at, data, n, &error));
  g_assert_no_error (error);
  g_autofree guint8 *sim_copy = g_malloc (n);
  g_assert_true (st_sim_dap_peek (sim, at, sim_copy, n));
  g_assert_cmpmem (sim_copy, n, data, n);
  /* Read back through the probe, also at odd addresses and lengths. */
  g_autofree guint8 *back = g_malloc (n);
  g_assert_true (st_swd_read_mem (swd, at, back, n, &error));
  g_assert_cmpmem (back, n, data, n);
  g_assert_true (st_swd_read_mem (swd, at + 5, back, 1029, &error));
  g_assert_cmpmem (back, 1029, data + 5, 1029);
  /* Unaligned writes are refused. */
  g_assert_false (st_swd_write_mem (swd, at + 2, data, 8, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
}

/* WAIT bursts and FAULTs with sticky errors: the unit still passes. */
static void
test_wait_fault (void)
{
  const struct { const char *name; guint32 faults; } cases[] = {
    { "wait", ST_SIM_DAP_FAULT_WAIT },
    { "fault", ST_SIM_DAP_FAULT_FAULT },
    { "wait+fault", ST_SIM_DAP_FAULT_WAIT | ST_SIM_DAP_FAULT_FAULT },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(StDapTestbed) tb = st_dap_testbed_new_or_skip ();
      if (tb == NULL)
        return;
      g_test_message ("faults: %s", cases[i].name);
      StSimDap *sim = probe_add (tb, "FLAKY-1", 0x1000 + (guint32) i, cases[i].faults, 1);
      g_autoptr(StBackend) be = backend_open ("FLAKY-1");
      g_autoptr(GError) error = NULL;
      Creds c;
      creds_init (&c);
      StDeviceInfo info = { 0 };
      gboolean ok = FALSE;
      /* Identify may meet the faults too; the worker would retry it. */
      for (guint k = 0; k < 3 && !ok; k++)
        {
          if (error != NULL)
            g_test_message ("  attempt %u: %s", k, error->message);
          g_clear_error (&error);
          ok = provision (be, &c, &info, &error);
        }
      g_assert_no_error (error);
      g_assert_true (ok);
      g_test_message ("  %" G_GUINT64_FORMAT " retries", be->n_retries);
      if (cases[i].faults & ST_SIM_DAP_FAULT_FAULT)
        g_assert_cmpuint (be->n_retries, >, 0);
      g_autoptr(StBlob) got = peek_blob (sim);
      g_assert_true (g_bytes_equal (got->cert, c.cert));
      creds_clear (&c);
    }
}

/* A flash error bit, a read-back that differs, no target. */
static void
test_failures (void)
{
  g_autoptr(StDapTestbed) tb = st_dap_testbed_new_or_skip ();
  if (tb == NULL)
    return;
  probe_add (tb, "FLASH-ERR", 0x2001, ST_SIM_DAP_FAULT_FLASH_ERROR, 1);
  probe_add (tb, "READBACK", 0x2002, ST_SIM_DAP_FAULT_READBACK, 1);
  probe_add (tb, "EMPTY", 0x2003, ST_SIM_DAP_FAULT_NO_TARGET, 1);
  Creds c;
  creds_init (&c);
  {
    g_autoptr(StBackend) be = backend_open ("FLASH-ERR");
    g_autoptr(GError) error = NULL;
    StDeviceInfo info = { 0 };
    g_assert_false (provision (be, &c, &info, &error));
    g_test_message ("flash error: %s", error->message);
    g_assert_true (strstr (error->message, "WRPERR") != NULL || strstr (error->message, "PGSERR") != NULL);
    g_assert_cmpint (st_backend_get_last_status (be), ==, ST_AGENT_STATUS_STORAGE);
  }
  {
    g_autoptr(StBackend) be = backend_open ("READBACK");
    g_autoptr(GError) error = NULL;
    StDeviceInfo info = { 0 };
    g_assert_false (provision (be, &c, &info, &error));
    g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
    g_assert_cmpint (st_backend_get_last_status (be), ==, ST_AGENT_STATUS_STORAGE);
  }
  {
    /* The probe is there, nothing behind it: an empty socket. */
    g_autoptr(StBackend) be = backend_open ("EMPTY");
    g_autoptr(GError) error = NULL;
    StDeviceInfo info = { 0 };
    g_assert_false (st_backend_identify (be, &info, &error));
    g_assert_error (error, ST_ERROR, ST_ERROR_TIMED_OUT);
    g_assert_nonnull (strstr (error->message, "no target"));
  }
  creds_clear (&c);
}

/* Two probes: each by its serial; the empty serial is refused. */
static void
test_two_probes (void)
{
  g_autoptr(StDapTestbed) tb = st_dap_testbed_new_or_skip ();
  if (tb == NULL)
    return;
  StSimDap *a = probe_add (tb, "PRB-A", 0xaaaa0001, 0, 1);
  StSimDap *b = probe_add (tb, "PRB-B", 0xbbbb0002, 0, 1);
  const char *serials[] = { "PRB-B", "PRB-A" };
  for (gsize i = 0; i < G_N_ELEMENTS (serials); i++)
    {
      StSimDap *sim = i == 0 ? b : a;
      g_autoptr(StBackend) be = backend_open (serials[i]);
      g_autoptr(GError) error = NULL;
      StDeviceInfo info = { 0 };
      g_assert_true (st_backend_identify (be, &info, &error));
      guint8 uid[12];
      g_assert_true (st_sim_dap_peek (sim, UID_ADDRESS, uid, sizeof uid));
      g_assert_cmpmem (info.uid, info.uid_len, uid, sizeof uid);
    }
  g_autoptr(GError) error = NULL;
  g_autoptr(StBackend) any = backend_new ("");
  g_assert_false (st_backend_open (any, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "PRB-A"));
  g_assert_nonnull (strstr (error->message, "PRB-B"));
  g_clear_error (&error);
  g_autoptr(StBackend) wrong = backend_new ("PRB-C");
  g_assert_false (st_backend_open (wrong, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "PRB-C"));
  /* One probe, two backends: the second is refused while the first holds it. */
  g_clear_error (&error);
  g_autoptr(StBackend) first = backend_new ("PRB-A");
  g_autoptr(StBackend) second = backend_new ("PRB-A");
  g_assert_true (st_backend_open (first, &error));
  g_assert_false (st_backend_open (second, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_BUSY);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cmsis-dap/provision", test_provision);
  g_test_add_func ("/cmsis-dap/go", test_go);
  g_test_add_func ("/cmsis-dap/firmware", test_firmware);
  g_test_add_func ("/cmsis-dap/tar-boundary", test_tar_boundary);
  g_test_add_func ("/cmsis-dap/wait-fault", test_wait_fault);
  g_test_add_func ("/cmsis-dap/failures", test_failures);
  g_test_add_func ("/cmsis-dap/two-probes", test_two_probes);
  return g_test_run ();
}
