/* Integration test support: a fresh demo station (its own SoftHSM2 token) in
 * a temporary folder per test, the real `station` CLI, and `station-devsim`
 * devices on real pseudo-terminals. */
#pragma once

#include <gio/gio.h>

#define ST_TEST_PIN "246810"

typedef struct {
  gchar *tmp;       /* removed at teardown */
  gchar *home;      /* tmp/home: the station home */
  GPtrArray *sims;  /* GSubprocess of running simulators */
} StFixture;

void st_fixture_setup (StFixture *f, gconstpointer data);
void st_fixture_teardown (StFixture *f, gconstpointer data);

/* Runs `station --home HOME ARGS...` (NULL-terminated) and returns its exit
 * status; stdout and stderr are returned when asked and always logged. */
int st_run_station (StFixture *f, gchar **out, gchar **err, const char *first, ...) G_GNUC_NULL_TERMINATED;
int st_run_stationv (StFixture *f, const char *const *env_extra, gchar **out, gchar **err,
                     const char *const *args);

/* Starts `station-devsim ARGS...` and returns its pseudo-terminal path. */
gchar *st_start_devsim (StFixture *f, const char *first, ...) G_GNUC_NULL_TERMINATED;

/* Stops every simulator started so far. */
void st_stop_devsims (StFixture *f);

/* Runs a command (NULL-terminated argv) and returns its exit status. */
int st_run_tool (gchar **out, gchar **err, const char *first, ...) G_GNUC_NULL_TERMINATED;

/* The number of lines of @text that contain @needle. */
guint st_count_lines (const char *text, const char *needle);
/* The batch id: the last line of `batch create`. */
gint64 st_create_batch (StFixture *f, const char *profile, guint quantity);
/* A profile path in the source tree. */
gchar *st_profile_path (const char *name);
