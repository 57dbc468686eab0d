/* A batch through two emulated CMSIS-DAP v2 probes (tests/cmsis-dap/, served
 * to libusb by umockdev): `station batch run --port cmsis-dap:A --port
 * cmsis-dap:B` as a child process of this test, which serves the probes.
 * Every device's credential area, taken from the simulated flash while it
 * is still in its socket, is verified by the independent parser
 * tests/programmer/stm32-blob-check.py: the chain reaches the root, the key
 * matches the certificate, the uid matches. The profile has a [firmware]
 * image, and every device holds it byte for byte next to its blob. Runs
 * under umockdev-wrapper. */
#include <string.h>

#include "st-blob.h"
#include "st-dap-testbed.h"
#include "st-error.h"
#include "st-test-run.h"
#include "st-util.h"

#define AREA 0x0800C000u
#define AREA_SIZE 16384u
#define UID_ADDRESS 0x1FFF7A10u
#define UNITS_PER_PROBE 3
/* [firmware]: 12 KiB at the start of sector 4, written before the blob (the
 * backend test writes 40 KiB; here it is kept small: a packet costs ~3 ms). */
#define FW_ADDRESS 0x08010000u
#define FW_SIZE (12u * 1024u)

typedef struct {
  GSubprocess *proc;
  gchar *out;
  int rc;
  gint done;
} StationRun;

static gpointer
station_wait (gpointer data)
{
  StationRun *r = data;
  r->rc = st_finish_station (r->proc, &r->out, NULL);
  g_atomic_int_set (&r->done, 1);
  return NULL;
}

typedef struct {
  StSimDap *sim;
  GHashTable *seen;          /* uid hex -> area file */
  GBytes *image;             /* the firmware image every device must hold */
  guint n_image_ok;          /* devices seen with the image in flash, byte for byte */
} Socket;

/* A complete blob in the device's flash, with the uid read before and after
 * it (a swap in between would change the uid): saved once per device. */
static void
capture (StFixture *f, Socket *s)
{
  guint8 uid[12], uid2[12];
  if (!st_sim_dap_peek (s->sim, UID_ADDRESS, uid, sizeof uid))
    return;
  g_autofree gchar *hex = st_hex_encode (uid, sizeof uid);
  if (g_hash_table_contains (s->seen, hex))
    return;   /* captured already: no copy on every poll */
  g_autofree guint8 *area = g_malloc (AREA_SIZE);
  g_autofree guint8 *image = g_malloc (FW_SIZE);
  if (!st_sim_dap_peek (s->sim, AREA, area, AREA_SIZE) ||
      !st_sim_dap_peek (s->sim, FW_ADDRESS, image, FW_SIZE) ||
      !st_sim_dap_peek (s->sim, UID_ADDRESS, uid2, sizeof uid2) ||
      memcmp (uid, uid2, sizeof uid) != 0)
    return;
  g_autoptr(GError) error = NULL;
  g_autoptr(StBlob) blob = st_blob_parse (area, AREA_SIZE, &error);
  if (blob == NULL)
    return;   /* erased, or being written */
  g_autofree gchar *area_path = g_strdup_printf ("%s/area-%s.bin", f->tmp, hex);
  g_autofree gchar *uid_path = g_strdup_printf ("%s/uid-%s.bin", f->tmp, hex);
  g_assert_true (g_file_set_contents (area_path, (const gchar *) area, AREA_SIZE, &error));
  g_assert_true (g_file_set_contents (uid_path, (const gchar *) uid, sizeof uid, &error));
  g_hash_table_insert (s->seen, g_steal_pointer (&hex), g_steal_pointer (&area_path));
  /* The image goes in before the blob: with the blob there, it is complete. */
  if (memcmp (image, g_bytes_get_data (s->image, NULL), FW_SIZE) == 0)
    s->n_image_ok++;
}

/* A copy of the example profile with a [firmware] group: a seeded image in
 * the test folder, its SHA-256 as sha256sum prints it. */
static gchar *
profile_with_firmware (StFixture *f, GBytes **image)
{
  g_autofree guint8 *img = g_malloc (FW_SIZE);
  guint32 x = g_test_rand_int () | 1;
  for (gsize i = 0; i < FW_SIZE; i++)
    {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      img[i] = (guint8) x;
    }
  g_autofree gchar *img_path = g_build_filename (f->tmp, "sensor-fw.bin", NULL);
  g_autoptr(GError) error = NULL;
  g_assert_true (g_file_set_contents (img_path, (const gchar *) img, FW_SIZE, &error));
  g_autofree gchar *sha = g_compute_checksum_for_data (G_CHECKSUM_SHA256, img, FW_SIZE);
  gchar *path = st_profile_copy (f, "example-cmsis-dap.profile", NULL);
  g_autofree gchar *text = NULL;
  g_assert_true (g_file_get_contents (path, &text, NULL, &error));
  g_autofree gchar *with = g_strdup_printf ("%s\n[firmware]\nimage = %s\naddress = 0x%08x\nsha256 = %s\n",
                                            text, img_path, FW_ADDRESS, sha);
  g_assert_true (g_file_set_contents (path, with, -1, &error));
  *image = g_bytes_new_take (g_steal_pointer (&img), FW_SIZE);
  return path;
}

static void
test_batch (StFixture *f, gconstpointer data)
{
  g_autoptr(StDapTestbed) tb = st_dap_testbed_new_or_skip ();
  if (tb == NULL)
    return;
  g_autoptr(GBytes) image = NULL;
  g_autofree gchar *profile = profile_with_firmware (f, &image);
  Socket sockets[2] = { 0 };
  const char *serials[2] = { "DAP-A", "DAP-B" };
  for (guint i = 0; i < 2; i++)
    {
      StSimDapConfig cfg = { .units = UNITS_PER_PROBE, .seed = 0xda900000u + i, .swap_delay_ms = 150 };
      sockets[i].sim = st_dap_testbed_add_probe_checked (tb, serials[i], &cfg);
      sockets[i].seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
      sockets[i].image = image;
    }
  /* The service opens the probes: it must see the test bed, whose
   * environment (UMOCKDEV_DIR) exists only now; the next command starts it
   * again with it. */
  st_service_stop (f);
  gint64 batch = st_create_batch (f, profile, 2 * UNITS_PER_PROBE);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  g_autofree gchar *units = g_strdup_printf ("%u", UNITS_PER_PROBE);
  const char *args[] = { "batch", "run", id, "--port", "cmsis-dap:DAP-A", "--port", "cmsis-dap:DAP-B",
                         "--units", units, "--wait", "30", NULL };
  gint64 t0 = g_get_monotonic_time ();
  StationRun run = { .proc = st_start_station (f, NULL, args) };
  GThread *waiter = g_thread_new ("station", station_wait, &run);
  while (!g_atomic_int_get (&run.done))
    {
      for (guint i = 0; i < 2; i++)
        capture (f, &sockets[i]);
      g_usleep (5000);
    }
  g_thread_join (waiter);
  double run_s = (double) (g_get_monotonic_time () - t0) / G_USEC_PER_SEC;
  g_object_unref (run.proc);
  g_autofree gchar *out = run.out;
  g_assert_cmpint (run.rc, ==, 0);
  g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, 2 * UNITS_PER_PROBE);
  g_autofree gchar *show = NULL;
  g_assert_cmpint (st_run_station (f, &show, NULL, "batch", "show", id, NULL), ==, 0);
  g_assert_cmpuint (st_count_lines (show, " done "), ==, 2 * UNITS_PER_PROBE);
  st_check_db_invariants (f);

  /* Every device, checked by the independent parser. */
  g_autofree gchar *root = g_build_filename (f->home, "demo-root.pem", NULL);
  g_autofree gchar *script = g_build_filename (g_getenv ("ST_SOURCE_DIR"), "tests", "programmer",
                                               "stm32-blob-check.py", NULL);
  guint checked = 0;
  for (guint i = 0; i < 2; i++)
    {
      g_assert_cmpuint (g_hash_table_size (sockets[i].seen), ==, UNITS_PER_PROBE);
      g_assert_cmpuint (sockets[i].n_image_ok, ==, UNITS_PER_PROBE);
      g_assert_cmpuint (st_sim_dap_get_n_presented (sockets[i].sim), ==, UNITS_PER_PROBE);
      GHashTableIter it;
      gpointer key, value;
      g_hash_table_iter_init (&it, sockets[i].seen);
      while (g_hash_table_iter_next (&it, &key, &value))
        {
          g_assert_nonnull (strstr (out, key));   /* the station reported this uid */
          g_autofree gchar *uid_path = g_strdup_printf ("%s/uid-%s.bin", f->tmp, (const char *) key);
          g_autofree gchar *report = NULL;
          int rc = st_run_tool (&report, NULL, "python3", script, value, uid_path, root, NULL);
          g_test_message ("%s", report);
          g_assert_cmpint (rc, ==, 0);
          g_assert_nonnull (strstr (report, "ok   chain"));
          g_assert_nonnull (strstr (report, "ok   key"));
          g_assert_nonnull (strstr (report, "ok   uid"));
          checked++;
        }
      g_hash_table_unref (sockets[i].seen);
    }
  g_assert_cmpuint (checked, ==, 2 * UNITS_PER_PROBE);

  /* Time per unit, as the station measured it; measured, never asserted. */
  double unit_s = 0;
  guint n = 0;
  g_auto(GStrv) lines = g_strsplit (out, "\n", -1);
  for (gchar **l = lines; *l != NULL; l++)
    {
      const char *p = strstr (*l, " PASSED ");
      if (p != NULL)
        {
          unit_s += g_ascii_strtod (p + 8, NULL);
          n++;
        }
    }
  g_printerr ("# cmsis-dap batch: %u units on 2 emulated probes in %.2f s; per unit %.3f s "
              "(station's figure, with a %u-byte firmware image; swap delay 150 ms not included)\n",
              n, run_s, n > 0 ? unit_s / n : 0, FW_SIZE);
}

int
main (int argc, char **argv)
{
  st_test_init (&argc, &argv);
  st_test_add_station ("/cmsis-dap/batch", NULL, test_batch);
  return g_test_run ();
}
