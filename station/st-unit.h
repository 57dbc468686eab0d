/* The unit pipeline (docs/architecture.md, The unit pipeline): one device, from
 * identify to done, on a line (st-line.h).
 *
 * Each socket's worker calls st_unit_run() for every device it finds; the
 * pipeline records each step's outcome before the next step starts, so a
 * crash anywhere can be resumed. */
#pragma once

#include <gio/gio.h>

#include "st-api.h"
#include "st-backend.h"
#include "st-ca.h"
#include "st-issue.h"

G_BEGIN_DECLS

/* The line a unit runs on (st-line.h); declared here too so that either
 * header can come first. */
typedef struct _StLine StLine;

/* The pipeline's steps. Their names (st_unit_step_to_string) are stored in
 * the database as a failed unit's fail_step, shown in the GUI and the
 * manifest, and sent to clients as StUnitProgress.step and StUnitResult.step:
 * they never change. */
typedef enum {
  ST_UNIT_STEP_IDENTIFY,             /* "identify": the device checks before anything is recorded */
  ST_UNIT_STEP_FIRMWARE,             /* "firmware": the profile's firmware image */
  ST_UNIT_STEP_KEYGEN,               /* "keygen": the device (or the station) makes the key */
  ST_UNIT_STEP_CSR,                  /* "csr": the device's key request is checked */
  ST_UNIT_STEP_PUT_KEY,              /* "put-key": the station's key goes to the device */
  ST_UNIT_STEP_RESERVE,              /* "reserve": serial and product serial reserved (ISSUING) */
  ST_UNIT_STEP_ISSUE,                /* "issue": the certificate is built */
  ST_UNIT_STEP_SIGN,                 /* "sign": signed in the HSM and checked */
  ST_UNIT_STEP_WRITE,                /* "write": slot 1 (and a failed slot 2 write) */
  ST_UNIT_STEP_WRITE_CHAIN,          /* "write-chain": slot 2 (progress only) */
  ST_UNIT_STEP_PROOF_OF_POSSESSION,  /* "proof-of-possession" */
  ST_UNIT_STEP_READ_BACK,            /* "read-back": slots 1 and 2 compared */
  ST_UNIT_STEP_COMMIT,               /* "commit" */
  ST_UNIT_STEP_CONFIRM,              /* "confirm": HELLO shows the committed state */
  ST_UNIT_STEP_DONE,                 /* "done": the step of a passed unit */
  ST_UNIT_STEP_RESUME,               /* "resume": a unit interrupted earlier, its device back */
  ST_UNIT_STEP_INTERRUPTED,          /* "interrupted": failed by recovery (st_line_recover) */
  ST_UNIT_STEP_WRITE_MATTER,         /* "write-matter": a Matter unit's slots 3 and 4 (the
                                      * Certification Declaration, the commissioning data) */
} StUnitStep;

#define ST_UNIT_STEP_COUNT (ST_UNIT_STEP_WRITE_MATTER + 1)

/* The step's stored name; never NULL for a step of the enum. */
const char *st_unit_step_to_string (StUnitStep step);

/* Called as the unit enters each step (on the worker thread). */
typedef void (*StUnitStepFunc) (const StUnitProgress *progress, gpointer user_data);

/* A note for the operator about the unit on @port (uid @uid_hex), as it
 * happens (a unit disputed on resume); on the worker thread. */
typedef void (*StUnitNoticeFunc) (const char *port, const char *uid_hex, const char *text,
                                  gpointer user_data);

/* Runs one unit on a device that st_backend_identify() just described.
 * Device failures are outcomes in the result; a FALSE return means the line
 * must stop (the database refused a write: nothing was acknowledged). */
StUnitResult *st_unit_run (StLine *line, StBackend *backend,
                           const StDeviceInfo *info, GError **error);

/* 128 random bits for a certificate serial: the HSM's generator and OpenSSL's
 * private DRBG, XORed, so that either alone suffices. */
gboolean st_draw_serial (StCa *ca, StSerial *serial, GError **error);

G_END_DECLS
