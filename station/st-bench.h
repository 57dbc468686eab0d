/* `station bench`: end-to-end units per second on in-process simulated
 * devices with real HSM signing and durable records, beside the raw issuance
 * rate of the same HSM key in the same run. */
#pragma once

#include "st-ca.h"
#include "st-config.h"

G_BEGIN_DECLS

typedef struct {
  guint units;                 /* end-to-end units (rounded up to a multiple of slots) */
  guint slots;                 /* simulated sockets running at once */
  gdouble e2e_seconds, e2e_units_per_s;
  guint raw_count;
  gdouble raw_seconds, raw_per_s;
  gdouble raw_cpu_seconds;        /* CPU of the whole process during the raw loop (one thread) */
  guint passed, failed;
  guint64 db_writes, db_commits;
  gdouble e2e_cpu_seconds;        /* CPU of the whole process during the end-to-end run */
  gdouble device_cpu_seconds;     /* of which the simulated devices' own work */
  gdouble premade_seconds;        /* the devices' key pairs and CSRs, made before the run */
  guint premade_left;             /* of those, not asked for (devices that made their own) */
  guint tenth_units;              /* a tenth of the units (at least 1) */
  gdouble first_tenth_per_s;      /* units/s of the first tenth of the end-to-end run */
  gdouble last_tenth_per_s;       /* and of the last */
  gdouble first_tenth_cpu_ms;     /* the process's CPU per unit over the first tenth, ms */
  gdouble last_tenth_cpu_ms;      /* and over the last: flatness that a loaded machine does not blur */
  guint64 db_bytes;               /* the scratch database and its WAL after the run */
  guint64 peak_rss_kib;           /* the process's peak RSS (VmHWM) at the end */
} StBenchResult;

/* Runs both measurements; the end-to-end records go to a scratch database
 * under HOME/bench-* (removed afterwards) with the same settings as the
 * station's own. @profile_text NULL uses the built-in device-csr profile. */
gboolean st_bench_run (StConfig *config, StCa *ca, guint units, guint slots,
                       const char *profile_text, StBenchResult *result, GError **error);

/* The issuance the pipeline does, alone: draw a serial, build, sign in the
 * HSM, verify and lint, @count times with one software key. */
gboolean st_bench_raw_issuance (StCa *ca, const char *profile_text, guint count,
                                gdouble *seconds, GError **error);

G_END_DECLS
