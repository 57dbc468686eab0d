#include "st-bench.h"

#include <glib/gstdio.h>
#include <sys/resource.h>
#include <string.h>

#include "st-batch.h"
#include "st-error.h"
#include "st-hsm.h"
#include "st-issue.h"
#include "st-ossl.h"
#include "st-unit.h"
#include "st-util.h"
#ifdef ST_HAVE_SIMULATOR
#include "st-simdev.h"
#endif

/* The benchmark's product: device-made P-256 keys, as most lines run. */
static const char st_bench_profile[] =
  "[profile]\n"
  "name=bench-device-csr\n"
  "description=Benchmark product: device-made P-256 key\n"
  "[key]\n"
  "mode=device-csr\n"
  "algorithm=ec-p256\n"
  "[certificate]\n"
  "subject=CN={uid},O=Station Bench,serialNumber={serial}\n"
  "san=URI:urn:station-bench:device:{uid}\n"
  "validity-days=3650\n"
  "key-usage=digitalSignature\n"
  "extended-key-usage=clientAuth\n"
  "[serial]\n"
  "format=BENCH-{seq:08}\n"
  "[device]\n"
  "lock=false\n";

gboolean
st_bench_raw_issuance (StCa *ca, const char *profile_text, guint count,
                       gdouble *seconds, GError **error)
{
  const char *text = profile_text != NULL ? profile_text : st_bench_profile;
  g_autoptr(StProfile) profile = st_profile_load_from_data (text, strlen (text), "bench profile", error);
  if (profile == NULL)
    return FALSE;
  GBytes *pkcs8 = NULL;
  g_autoptr(EVP_PKEY) key = st_issue_station_keygen (profile->alg, &pkcs8, error);
  if (key == NULL)
    return FALSE;
  st_bytes_wipe_unref (pkcs8);

  gint64 start = g_get_monotonic_time ();
  for (guint i = 0; i < count; i++)
    {
      g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
      g_autofree gchar *product_serial = st_profile_format_serial (profile, i + 1, now);
      StSubjectInfo info = { .uid_hex = "00112233445566778899aabb", .model = "BENCH",
                             .product_serial = product_serial };
      StSerial serial;
      if (!st_draw_serial (ca, &serial, error))
        return FALSE;
      g_autoptr(X509) cert = st_issue_build (ca->ca_cert, profile, key, &info, &serial, now, error);
      if (cert == NULL)
        return FALSE;
      g_autoptr(GBytes) tbs = st_issue_tbs_der (cert, error);
      if (tbs == NULL)
        return FALSE;
      st_hsm_lock (ca->hsm);
      gboolean ok = st_issue_sign (cert, ca->ca_key, ca->ca_cert, error);
      st_hsm_unlock (ca->hsm);
      if (!ok || !st_issue_check (cert, ca->ca_cert, profile, key, &info, &serial, error))
        return FALSE;
    }
  *seconds = (gdouble) (g_get_monotonic_time () - start) / G_USEC_PER_SEC;
  return TRUE;
}

static gdouble
st_bench_process_cpu (void)
{
  struct rusage ru;
  if (getrusage (RUSAGE_SELF, &ru) != 0)
    return 0;
  return (gdouble) ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
         (gdouble) ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* @count raw certificates, their time and CPU added to @result's. */
static gboolean
st_bench_raw_part (StCa *ca, const char *text, guint count, StBenchResult *result, GError **error)
{
  gdouble seconds = 0, cpu0 = st_bench_process_cpu ();
  if (!st_bench_raw_issuance (ca, text, count, &seconds, error))
    return FALSE;
  result->raw_cpu_seconds += st_bench_process_cpu () - cpu0;
  result->raw_seconds += seconds;
  return TRUE;
}

/* The process's peak resident set (VmHWM), KiB; 0 when unknown. */
static guint64
st_bench_peak_rss_kib (void)
{
  g_autofree gchar *text = NULL;
  if (!g_file_get_contents ("/proc/self/status", &text, NULL, NULL))
    return 0;
  const char *hwm = strstr (text, "VmHWM:");
  return hwm != NULL ? g_ascii_strtoull (hwm + 6, NULL, 10) : 0;
}

#ifdef ST_HAVE_SIMULATOR
/* The simulated devices' key pairs and CSRs are made before the clock
 * starts, at most this many at a time: the run goes in rounds of about as
 * many units (each on sockets of its own names, so its devices are new),
 * and the memory they take does not grow with --units. */
#define ST_BENCH_ROUND_UNITS 2048

/* The clock of the measured run (rounds only, not the premaking between
 * them) and when the first and the last tenth of the units were done. */
typedef struct {
  GMutex lock;
  gint64 round_start;      /* monotonic µs */
  gdouble before_round;    /* measured seconds of the rounds done */
  guint done, tenth, total;
  gdouble first_tenth_at, last_tenth_from;
  /* the same for the process's CPU time (seconds) */
  gdouble cpu_round_start, cpu_before_round;
  gdouble first_tenth_cpu, last_tenth_cpu_from;
} StBenchClock;

static gdouble
st_bench_clock_now (StBenchClock *c)
{
  return c->before_round + (gdouble) (g_get_monotonic_time () - c->round_start) / G_USEC_PER_SEC;
}

static gdouble
st_bench_clock_cpu (StBenchClock *c)
{
  return c->cpu_before_round + st_bench_process_cpu () - c->cpu_round_start;
}

static void
st_bench_on_unit (const StUnitResult *r, gpointer data)
{
  StBenchClock *c = data;
  g_mutex_lock (&c->lock);
  c->done++;
  if (c->done == c->tenth)
    {
      c->first_tenth_at = st_bench_clock_now (c);
      c->first_tenth_cpu = st_bench_clock_cpu (c);
    }
  if (c->done == c->total - c->tenth)
    {
      c->last_tenth_from = st_bench_clock_now (c);
      c->last_tenth_cpu_from = st_bench_clock_cpu (c);
    }
  g_mutex_unlock (&c->lock);
}

static guint64
st_bench_file_size (const char *path)
{
  GStatBuf st;
  return g_stat (path, &st) == 0 ? (guint64) st.st_size : 0;
}

static gboolean
st_bench_e2e (StConfig *config, StCa *ca, const char *db_path, const char *text,
              guint per_slot, StBenchResult *result, GError **error)
{
  g_autoptr(StDb) db = st_db_open (db_path, error);
  if (db == NULL)
    return FALSE;
  g_autoptr(StProfile) profile = st_profile_load_from_data (text, strlen (text), "bench profile", error);
  if (profile == NULL)
    return FALSE;
  gint64 batch_id = st_db_batch_create (db, "BENCH", profile->name, profile->sha256, text,
                                        result->units, config->station_id, "bench", error);
  if (batch_id <= 0)
    return FALSE;
  g_autoptr(StLine) line = st_line_new (config, ca, db, batch_id, "bench", error);
  if (line == NULL)
    return FALSE;

  StBenchClock clock = { .total = result->units, .tenth = MAX (result->units / 10, 1) };
  g_mutex_init (&clock.lock);
  guint round_per_slot = MAX (ST_BENCH_ROUND_UNITS / result->slots, 1);
  gboolean ok = TRUE;
  gint64 dev0 = st_sim_get_crypto_cpu_ns ();
  for (guint done_per_slot = 0, round = 0; ok && done_per_slot < per_slot; round++)
    {
      guint n = MIN (round_per_slot, per_slot - done_per_slot);
      g_autoptr(GPtrArray) ports = g_ptr_array_new_with_free_func (g_free);
      for (guint i = 0; i < result->slots; i++)
        g_ptr_array_add (ports, g_strdup_printf ("sim:bench-%u-%u?units=%u", round, i, n));
      g_ptr_array_add (ports, NULL);
      StBatchRunOptions options = {
        .ports = (const char *const *) ports->pdata,
        .units_per_port = n,
        .idle_timeout_s = 30,
        .unit_func = st_bench_on_unit,
        .user_data = &clock,
      };
      /* The simulated devices' key pairs and CSRs, made before the clock
       * starts: a real device makes them on its own processor, and on the
       * station's cores they would only stand in the station's way. What
       * the devices still do in the run (proofs of possession) is counted
       * below. */
      gint64 pre0 = g_get_monotonic_time ();
      ok = st_sim_premake_keys ((guint8) profile->alg, n * result->slots, error);
      result->premade_seconds += (gdouble) (g_get_monotonic_time () - pre0) / G_USEC_PER_SEC;
      if (!ok)
        break;
      StBatchRunSummary summary;
      gdouble cpu0 = st_bench_process_cpu ();
      g_mutex_lock (&clock.lock);
      clock.round_start = g_get_monotonic_time ();
      clock.cpu_round_start = st_bench_process_cpu ();
      g_mutex_unlock (&clock.lock);
      ok = st_batch_run (line, &options, &summary, error);
      g_mutex_lock (&clock.lock);
      clock.before_round = st_bench_clock_now (&clock);
      clock.cpu_before_round = st_bench_clock_cpu (&clock);
      g_mutex_unlock (&clock.lock);
      result->e2e_cpu_seconds += st_bench_process_cpu () - cpu0;
      result->premade_left += st_sim_premade_count ((guint8) profile->alg);
      st_sim_premade_clear ();
      result->passed += summary.passed;
      result->failed += summary.failed + summary.refused;
      if (ok && summary.ports_failed > 0)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                       "bench: %u sockets gave up in round %u", summary.ports_failed, round + 1);
          ok = FALSE;
        }
      done_per_slot += n;
    }
  g_mutex_clear (&clock.lock);
  result->e2e_seconds = clock.before_round;
  result->device_cpu_seconds = (gdouble) (st_sim_get_crypto_cpu_ns () - dev0) / 1e9;
  if (!ok)
    return FALSE;
  result->e2e_units_per_s = result->passed / MAX (result->e2e_seconds, 1e-9);
  result->tenth_units = clock.tenth;
  result->first_tenth_per_s = clock.tenth / MAX (clock.first_tenth_at, 1e-9);
  result->last_tenth_per_s = clock.tenth / MAX (clock.before_round - clock.last_tenth_from, 1e-9);
  result->first_tenth_cpu_ms = 1e3 * clock.first_tenth_cpu / clock.tenth;
  result->last_tenth_cpu_ms = 1e3 * (clock.cpu_before_round - clock.last_tenth_cpu_from) / clock.tenth;
  st_db_get_write_stats (db, &result->db_writes, &result->db_commits);
  if (result->passed != result->units)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "bench: %u of %u units passed", result->passed, result->units);
      return FALSE;
    }
  /* The records as they lie on disk: the database and its write-ahead log. */
  g_autofree gchar *wal = g_strconcat (db_path, "-wal", NULL);
  result->db_bytes = st_bench_file_size (db_path) + st_bench_file_size (wal);
  g_autoptr(GString) report = g_string_new (NULL);
  if (!st_db_check (db, report, error))
    {
      g_prefix_error (error, "bench database check: ");
      return FALSE;
    }
  return TRUE;
}
#else
/* Built without the simulator: st_bench_run() refuses first. */
static gboolean
st_bench_e2e (StConfig *config, StCa *ca, const char *db_path, const char *text,
              guint per_slot, StBenchResult *result, GError **error)
{
  g_set_error_literal (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                       "this station was built without the simulator");
  return FALSE;
}
#endif

/* The raw issuance loop's length, at most. */
#define ST_BENCH_RAW_MAX 20000

gboolean
st_bench_run (StConfig *config, StCa *ca, guint units, guint slots,
              const char *profile_text, StBenchResult *result, GError **error)
{
  const char *text = profile_text != NULL ? profile_text : st_bench_profile;
  memset (result, 0, sizeof *result);
  if (slots == 0 || units == 0)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA, "--units and --slots must be at least 1");
      return FALSE;
    }
  if (st_backend_lookup_scheme ("sim") == NULL)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                           "station bench runs simulated devices: this station was built "
                           "without the simulator (meson -Dsimulator=true)");
      return FALSE;
    }
  guint per_slot = (units + slots - 1) / slots;
  result->units = per_slot * slots;
  result->slots = slots;

  /* Raw issuance of as many certificates, half before the end-to-end run
   * and half after it: on a machine whose speed drifts (a shared VM, a CPU
   * that warms up and clocks down) both figures then see the same
   * conditions, and their ratio does not depend on which came first. */
  /* The raw rate does not depend on how many: at most ST_BENCH_RAW_MAX,
   * so that a long run is not twice as long. */
  result->raw_count = MIN (result->units, ST_BENCH_RAW_MAX);
  guint first_half = result->raw_count / 2;
  if (!st_bench_raw_part (ca, text, first_half, result, error))
    return FALSE;

  g_autofree gchar *tmpl = g_build_filename (config->home, "bench-XXXXXX", NULL);
  g_autofree gchar *dir = g_mkdtemp (g_strdup (tmpl));
  if (dir == NULL)
    {
      int e = errno;
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, "cannot make a scratch folder in %s: %s",
                   config->home, g_strerror (e));
      return FALSE;
    }
  g_autofree gchar *db_path = g_build_filename (dir, "bench.db", NULL);
  gboolean ok = st_bench_e2e (config, ca, db_path, text, per_slot, result, error);
  st_rm_rf (dir);
  if (!ok || !st_bench_raw_part (ca, text, result->raw_count - first_half, result, error))
    return FALSE;
  result->raw_per_s = result->raw_count / MAX (result->raw_seconds, 1e-9);
  result->peak_rss_kib = st_bench_peak_rss_kib ();
  return TRUE;
}
