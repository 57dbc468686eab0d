/* Integration test support: a demo station (its own SoftHSM2 token folder)
 * in a temporary folder per test, copied from one that `station setup demo`
 * made once per test program (st-test-run.c, the template), the real
 * `station` CLI, and `station-devsim` devices on real pseudo-terminals. */
#pragma once

#include <gio/gio.h>

#define ST_TEST_PIN "246810"

/* The exit codes of `station` (station(1), EXIT STATUS): the tests assert the
 * documented numbers, not the client's enum. 0 is success. */
enum {
  ST_RC_CHECK = 1,      /* a check ran and failed */
  ST_RC_ERROR = 2,      /* any other failure */
  ST_RC_USAGE = 3,      /* a wrong command line */
  ST_RC_AUTH = 4,       /* wrong PIN, locked operator, role refused */
  ST_RC_NOT_FOUND = 5,  /* no such batch, unit, file; no service */
  ST_RC_STOPPED = 6,    /* the line stopped (HSM, disk), or the service went away */
};

typedef struct {
  gchar *tmp;       /* removed at teardown */
  gchar *home;      /* tmp/home: the station home */
  GPtrArray *sims;  /* GSubprocess of running simulators */
  /* The station service (stationd --home HOME), started by the fixture and
   * again whenever a command needs it with other fault settings, or after
   * it died. Its output goes to tmp/service-N.log. */
  GSubprocess *service;
  gchar *service_env;   /* the fault settings it runs with, joined; "" for none */
  gchar *service_log;   /* its current log */
  guint service_starts;
} StFixture;

void st_fixture_setup (StFixture *f, gconstpointer data);
void st_fixture_teardown (StFixture *f, gconstpointer data);

/* g_test_init(), then the test PIN in the environment (before any thread
 * starts) for every `station` the tests run. */
void st_test_init (int *argc, char ***argv);
/* Adds a test that runs on a fresh demo station (the fixture above). */
#define st_test_add_station(path, data, func) \
  g_test_add ((path), StFixture, (data), st_fixture_setup, (func), st_fixture_teardown)

/* ---- the service ----
 * Every `station` the tests run is a client of the fixture's service. In
 * @env_extra, fault settings for the service (STATION_CRASH_AT=...,
 * ST_FAULT_*=...) restart the service with them for that command; the rest
 * goes to the client. The client gets STATION_HSM_PIN only for the commands
 * that take it (setup, unlock, demo) or when @env_extra names it: nothing
 * else needs it. When the service dies during a command (a crash point, a
 * kill), the command's status is the service's (128 + signal) and its log
 * is appended to the command's stderr; the next command starts it again,
 * unlocked by the demo admin. */

/* Starts the service (unlocked by the demo admin once set up) unless it runs
 * with the same fault settings. */
void st_service_ensure (StFixture *f, const char *const *service_env);
/* SIGTERM: it stops, signing its closing checkpoint; returns its exit status. */
int st_service_stop (StFixture *f);
/* SIGKILL, as a power cut would; returns once it is gone. */
void st_service_kill (StFixture *f);
/* Its process id (0 when it does not run). */
GPid st_service_pid (StFixture *f);
/* Its peak resident set size so far (VmHWM), KiB. */
glong st_service_peak_rss (StFixture *f);
/* The log of the service that runs now (or ran last). */
gchar *st_service_read_log (StFixture *f);

/* Runs `station --home HOME ARGS...` (NULL-terminated) and returns its exit
 * status; stdout and stderr are returned when asked and always logged. */
int st_run_station (StFixture *f, gchar **out, gchar **err, const char *first, ...) G_GNUC_NULL_TERMINATED;
/* The same as operator @who with @pin (STATION_OPERATOR_PIN) and, when not
 * NULL, one more VAR=VALUE in @env_extra; the arguments after @err. */
int st_run_station_as (StFixture *f, const char *who, const char *pin, const char *env_extra,
                       gchar **out, gchar **err, ...) G_GNUC_NULL_TERMINATED;
int st_run_stationv (StFixture *f, const char *const *env_extra, gchar **out, gchar **err,
                     const char *const *args);

/* Starts `station-devsim ARGS...` and returns its pseudo-terminal path. */
gchar *st_start_devsim (StFixture *f, const char *first, ...) G_GNUC_NULL_TERMINATED;

/* Stops every simulator started so far. */
void st_stop_devsims (StFixture *f);

/* Runs @argv (NULL-terminated) as the user nobody (setpriv, as root only),
 * in @cwd, with an environment of nothing but the sanitizers' settings and
 * @env ("NAME=value", NULL-terminated); returns its exit status. Nothing of
 * the HSM PIN may be in its command line (asserted). */
int st_run_nobody (const char *cwd, const char *const *env, gchar **out, gchar **err,
                   const char *const *argv);
/* st_run_nobody of `station ARGS...` (NULL-terminated), with @pin as the
 * operator's PIN when given and @env_extra ("NAME=value" or NULL) as well. */
int st_station_as_nobody (const char *cwd, const char *env_extra, const char *pin, gchar **out,
                          gchar **err, const char *const *args);

/* Whether /proc/@pid/@file (environ, cmdline: NUL-separated) holds @needle
 * anywhere; the file must be readable and not empty. */
gboolean st_proc_file_contains (const char *pid, const char *file, const char *needle);
/* A child setup for services the tests start: they die with the test. */
void st_child_dies_with_parent (gpointer data);

/* Runs a command (NULL-terminated argv) and returns its exit status. */
int st_run_tool (gchar **out, gchar **err, const char *first, ...) G_GNUC_NULL_TERMINATED;

/* The number of lines of @text that contain @needle. */
guint st_count_lines (const char *text, const char *needle);
/* The batch id: the last line of `batch create`. @profile: a name in
 * profiles/ or a path. */
gint64 st_create_batch (StFixture *f, const char *profile, guint quantity);
/* A closed batch of 2 units of example-device-csr, run on a simulated
 * device seeded with @seed, its manifest exported to @dir (NULL: none). */
gint64 st_closed_batch (StFixture *f, const char *dir, const char *seed);
/* Checks one certificate (@pem) with two X.509 stacks that are not ours,
 * OpenSSL's CLI and GnuTLS's certtool: the chain (@chain_path, PEM) up to
 * the demo root, CA:FALSE, and @uid in it. Returns certtool's description
 * of it for further checks. */
gchar *st_check_cert_with_stock_tools (StFixture *f, const char *pem, const char *chain_path,
                                       const char *uid);
/* A profile path in the source tree. */
gchar *st_profile_path (const char *name);

/* ---- crash, hostile and independent-device tests ---- */

/* Starts `station --home HOME ARGS...` without waiting (stdout and stderr
 * piped); st_finish_station() waits, logs and returns the exit status
 * (128 + signal when killed). */
GSubprocess *st_start_station (StFixture *f, const char *const *env_extra, const char *const *args);
int st_finish_station (GSubprocess *proc, gchar **out, gchar **err);

/* Runs the station to its end and returns its exit status; @maxrss_kb gets
 * the service's peak resident set size so far (the service runs the line). */
int st_run_station_rusage (StFixture *f, const char *const *env_extra, gchar **out,
                           const char *const *args, glong *maxrss_kb);

/* Runs SQL on the station database with the stock sqlite3 CLI; returns its
 * output, stripped. */
gchar *st_sql (StFixture *f, const char *sql);
gint64 st_sql_int (StFixture *f, const char *sql);

/* A copy of profiles/@name in the test folder with every "KEY = VALUE" line
 * of @overrides (NULL-terminated "key=value") replaced; returns its path. */
gchar *st_profile_copy (StFixture *f, const char *name, const char *const *overrides);
/* A Matter demo station (`setup demo --matter`) in a new home under a
 * scratch folder named after @prefix, its service running and unlocked.
 * Returns a copy of profiles/example-matter.profile whose Certification
 * Declaration is the demo's; *@cd (may be NULL) gets that CD's path. */
gchar *st_matter_demo_station (StFixture *f, const char *prefix, gchar **cd);

/* The invariants of docs/architecture.md over the whole database: no uid with two live
 * certificates, serials unique per issuer, PRAGMA integrity_check ok, and
 * `station db check` passes. */
void st_check_db_invariants (StFixture *f);

/* Every certificate that a simulated device (station-devsim --state files,
 * NULL-terminated) holds committed is on record for that uid and not voided
 * (active when @must_be_active). Returns the number of such devices. */
guint st_check_devices_on_record (StFixture *f, const char *const *state_files, gboolean must_be_active);

/* Starts a device program (argv NULL-terminated; it prints its pseudo-
 * terminal's path first and exits when its stdin closes) and returns the
 * path; it is stopped with the simulators. */
gchar *st_start_device_program (StFixture *f, const char *const *argv);
