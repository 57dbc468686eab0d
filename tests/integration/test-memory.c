/* The service's memory does not grow with the number of units a line runs
 * (issue 16), through the real service and CLI on in-process simulated
 * sockets.
 *
 * /memory/rss-bounded: one line of 4N units on ST_MEM_SOCKETS sockets, the
 * service's resident set (VmRSS) read once N units are done and again when
 * the line has ended, compared. (One line: each further `batch run` adds
 * its own threads, connection and login, and under ASan the service's
 * resident set also moved by 70 to 400 KiB from one short line to the next;
 * that is not what this test is about, see docs/testing.md.)
 * /memory/stalled-client: a `batch run` client stopped (SIGSTOP) while its
 * line runs 3N' units: the service keeps at most a bounded queue of unit
 * signals for it (st-service.c, the signal gate), and the client, once it
 * runs again, has the right final counts and says how many unit lines it
 * missed.
 *
 * What may grow with the units by design, and is pinned here:
 *  - SQLite's page caches (the writer keeps up to 32 MB of pages, the reader
 *    2 MB), which fill as the database grows, as fast as a leak would. This
 *    program caps both at 256 KiB (ST_TEST_DB_CACHE_KIB, a knob of sanitizer
 *    builds only, db/st-db.c): the demo station's database alone is bigger,
 *    so they are full after the first units.
 *  - The simulated sockets keep their last 64 devices (st-simdev.c): full
 *    after the first N units (N / ST_MEM_SOCKETS > 64 each).
 *  - AddressSanitizer's own bookkeeping. Every free goes to a quarantine of
 *    up to 256 MB first, so the resident set would grow with everything
 *    freed; and every allocation's stack is stored once in a stack depot
 *    that never shrinks, which grew by 0.5 to 1 KB a unit on 6,000 units
 *    (docs/testing.md, "The line's memory"). This program runs its service
 *    with quarantine_size_mb=0, thread_local_quarantine_size_kb=0 and
 *    malloc_context_size=0: it measures what stays allocated. Use-after-free
 *    and leaks are still checked by every other suite with the defaults
 *    (here, ASan's reports lose their allocation stacks).
 * What may still move is the allocator's state at the moment of reading: a
 * fixed slack of ST_MEM_SLACK_KIB (from N to 4N the service moved by -700
 * to +500 KiB in the runs of docs/testing.md). What must not grow: anything
 * kept per unit. 3N = 3,000 units that each kept 1 KiB would add 3,000 KiB,
 * three times the slack. */
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>

#include "st-test-run.h"

#define ST_MEM_SOCKETS 8
#define ST_MEM_N 1000
#define ST_MEM_SLACK_KIB 1024
/* The stalled client's line: fewer units (it only needs the gate to fill). */
#define ST_MEM_STALL_N 600
/* The stalled client: the gate keeps at most 1024 results and 128 steps
 * queued for it, 12 to 16 KiB each under ASan: the service grew by 14 to
 * 16 MB. Without the gate every unit queued its result and its steps: the
 * same 1,800 units grew it by 110 MB (docs/testing.md). */
#define ST_MEM_STALL_KIB (32 * 1024)

/* The service's current resident set (VmRSS), KiB. */
static glong
st_service_rss (StFixture *f)
{
  g_autofree gchar *path = g_strdup_printf ("/proc/%d/status", (int) st_service_pid (f));
  g_autofree gchar *text = NULL;
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  const char *rss = strstr (text, "VmRSS:");
  g_assert_nonnull (rss);
  return (glong) g_ascii_strtoll (rss + 6, NULL, 10);
}

/* `batch run ID` of @units units on ST_MEM_SOCKETS simulated sockets named
 * after @round (new devices each round). */
static GPtrArray *
st_run_args (const char *id, const char *round, guint units)
{
  guint per = units / ST_MEM_SOCKETS;
  GPtrArray *args = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (args, g_strdup ("batch"));
  g_ptr_array_add (args, g_strdup ("run"));
  g_ptr_array_add (args, g_strdup (id));
  for (guint i = 0; i < ST_MEM_SOCKETS; i++)
    {
      g_ptr_array_add (args, g_strdup ("--port"));
      g_ptr_array_add (args, g_strdup_printf ("sim:mem-%s-%u?units=%u", round, i, per));
    }
  g_ptr_array_add (args, g_strdup ("--units"));
  g_ptr_array_add (args, g_strdup_printf ("%u", per));
  g_ptr_array_add (args, NULL);
  return args;
}

/* Runs @units units to their end; all pass, and every unit line is shown. */
static void
st_run_units (StFixture *f, const char *id, const char *round, guint units)
{
  g_autoptr(GPtrArray) args = st_run_args (id, round, units);
  g_autofree gchar *out = NULL, *err = NULL;
  g_assert_cmpint (st_run_stationv (f, NULL, &out, &err, (const char *const *) args->pdata), ==, 0);
  g_autofree gchar *summary = g_strdup_printf ("%u passed, 0 failed, 0 refused", units);
  g_assert_nonnull (strstr (out, summary));
  g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, units);
  g_assert_null (strstr (err, "were not shown"));
}

static gint64
st_units_done (StFixture *f)
{
  return st_sql_int (f, "SELECT count(*) FROM units WHERE state = 'done'");
}

static void
test_rss_bounded (StFixture *f, gconstpointer data)
{
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 4 * ST_MEM_N);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  g_autoptr(GPtrArray) args = st_run_args (id, "a", 4 * ST_MEM_N);
  g_autoptr(GSubprocess) cli = st_start_station (f, NULL, (const char *const *) args->pdata);
  /* the resident set once N units are done; the line goes on */
  while (st_units_done (f) < ST_MEM_N)
    g_usleep (20 * 1000);
  glong rss_n = st_service_rss (f);
  g_autofree gchar *out = NULL, *err = NULL;
  g_assert_cmpint (st_finish_station (cli, &out, &err), ==, 0);
  glong rss_4n = st_service_rss (f);

  g_test_message ("service RSS after %u units: %ld KiB; after %u: %ld KiB (%+ld KiB; allowed +%d KiB)",
                  ST_MEM_N, rss_n, 4 * ST_MEM_N, rss_4n, rss_4n - rss_n, ST_MEM_SLACK_KIB);
  g_autofree gchar *summary = g_strdup_printf ("%u passed, 0 failed, 0 refused", 4 * ST_MEM_N);
  g_assert_nonnull (strstr (out, summary));
  g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, 4 * ST_MEM_N);
  g_assert_null (strstr (err, "were not shown"));
  g_assert_cmpint (st_units_done (f), ==, 4 * ST_MEM_N);
  g_assert_cmpint (rss_4n - rss_n, <=, ST_MEM_SLACK_KIB);
}

static void
test_stalled_client (StFixture *f, gconstpointer data)
{
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 4 * ST_MEM_STALL_N);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  /* warm up as above, with a client that reads */
  st_run_units (f, id, "a", ST_MEM_STALL_N);

  g_autoptr(GPtrArray) args = st_run_args (id, "b", 3 * ST_MEM_STALL_N);
  g_autoptr(GSubprocess) cli = st_start_station (f, NULL, (const char *const *) args->pdata);
  /* stop the client once its line runs; it never reads again until the
   * line has ended */
  while (st_units_done (f) < ST_MEM_STALL_N + 8)
    g_usleep (20 * 1000);
  g_subprocess_send_signal (cli, SIGSTOP);
  glong rss_0 = st_service_rss (f), rss_max = rss_0;
  gint64 done;
  while ((done = st_units_done (f)) < 4 * ST_MEM_STALL_N)
    {
      rss_max = MAX (rss_max, st_service_rss (f));
      g_usleep (100 * 1000);
    }
  /* the line's last signals are out once it has ended */
  g_usleep (500 * 1000);
  rss_max = MAX (rss_max, st_service_rss (f));
  g_subprocess_send_signal (cli, SIGCONT);

  g_autofree gchar *out = NULL, *err = NULL;
  g_assert_cmpint (st_finish_station (cli, &out, &err), ==, 0);
  g_autofree gchar *summary = g_strdup_printf ("%u passed, 0 failed, 0 refused", 3 * ST_MEM_STALL_N);
  g_assert_nonnull (strstr (out, summary));
  /* some unit lines were dropped for it, and it says how many */
  guint shown = st_count_lines (out, " PASSED ");
  g_test_message ("stopped client: service RSS %ld KiB, at most %ld KiB (%+ld KiB, allowed +%d KiB) "
                  "while %" G_GINT64_FORMAT " units ran; it showed %u of %u unit lines",
                  rss_0, rss_max, rss_max - rss_0, ST_MEM_STALL_KIB, done - ST_MEM_STALL_N - 8, shown,
                  3 * ST_MEM_STALL_N);
  g_assert_cmpint (rss_max - rss_0, <=, ST_MEM_STALL_KIB);
  g_assert_cmpuint (shown, <, 3 * ST_MEM_STALL_N);
  g_autofree gchar *missed = g_strdup_printf ("%u of the %u unit lines were not shown", 3 * ST_MEM_STALL_N - shown,
                                              3 * ST_MEM_STALL_N);
  g_assert_nonnull (strstr (err, missed));
  g_autofree gchar *log = st_service_read_log (f);
  g_assert_nonnull (strstr (log, "a client does not read its signals"));
}

int
main (int argc, char **argv)
{
  /* See above: no quarantine and no allocation stacks for this program's
   * service (and clients). */
  const char *asan = g_getenv ("ASAN_OPTIONS");
  g_autofree gchar *options =
    g_strdup_printf ("%s%squarantine_size_mb=0:thread_local_quarantine_size_kb=0:malloc_context_size=0",
                     asan != NULL ? asan : "", asan != NULL && *asan != '\0' ? ":" : "");
  g_setenv ("ASAN_OPTIONS", options, TRUE);
  g_setenv ("ST_TEST_DB_CACHE_KIB", "256", TRUE);
  st_test_init (&argc, &argv);
  st_test_add_station ("/memory/rss-bounded", NULL, test_rss_bounded);
  st_test_add_station ("/memory/stalled-client", NULL, test_stalled_client);
  return g_test_run ();
}
