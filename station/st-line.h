/* The line: what every socket of one batch run shares, and the unit pipeline
 * (DESIGN.md, The unit pipeline).
 *
 * One StLine per `batch run`: the CA (its HSM session is serialised by the
 * HSM lock), the database (its single writer serialises and group-commits),
 * the batch and its profile. Each socket's worker calls st_unit_run() for
 * every device it finds; the pipeline records each step's outcome before the
 * next step starts, so a crash anywhere can be resumed. */
#pragma once

#include <gio/gio.h>

#include "st-api.h"
#include "st-backend.h"
#include "st-ca.h"
#include "st-config.h"
#include "st-db.h"
#include "st-issue.h"
#include "st-profile.h"

G_BEGIN_DECLS

typedef void (*StUnitStepFunc) (const StUnitProgress *progress, gpointer user_data);

/* A note for the operator about the unit on @port (uid @uid_hex), as it
 * happens (a certificate voided on resume); on the worker thread. */
typedef void (*StUnitNoticeFunc) (const char *port, const char *uid_hex, const char *text,
                                  gpointer user_data);

typedef struct _StLine StLine;

struct _StLine {
  StConfig *config;        /* borrowed */
  StCa *ca;                /* borrowed */
  StDb *db;                /* borrowed */
  StDbBatch *batch;
  StProfile *profile;      /* from the batch's stored profile text */
  gchar *operator_name;
  gchar *issuer_hash;      /* SHA-256 of the issuing CA certificate DER */
  GBytes *chain_der;       /* slot 2: issuing CA first, root last */
  GBytes *firmware;        /* the profile's [firmware] image, hash checked; NULL without one */
  gboolean allow_reprovision;
  GCancellable *cancellable;
  StUnitStepFunc step_func;
  StUnitNoticeFunc notice_func;  /* called with step_data */
  gpointer step_data;

  /* Private: under lock. */
  GMutex lock;
  GHashTable *pending;     /* uid hex set: the uids a socket is resuming now */
  gchar *stop_reason;      /* set when the line must stop (database failure) */
};

/* Opens the line for @batch_id: loads the batch and its profile from the
 * database, checks the batch is open, and gathers units left mid-pipeline
 * by an earlier run (st_line_recover). */
StLine *st_line_new (StConfig *config, StCa *ca, StDb *db, gint64 batch_id,
                     const char *operator_name, GError **error);
void st_line_free (StLine *line);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StLine, st_line_free)

/* Resolves what can be resolved without the device: a unit left 'started'
 * fails, a unit left 'issuing' fails and its certificate is voided (it was
 * never written: writing starts only after 'issued'). A unit left 'issued'
 * may hold its certificate: the certificate becomes 'unconfirmed' and the
 * unit waits for its device (st_unit_run resumes it when the uid shows up).
 * Appends one line per resolved unit to @report when given. */
gboolean st_line_recover (StLine *line, GString *report, GError **error);

/* The line stopped (database failure): the message, or NULL. */
gchar *st_line_dup_stop_reason (StLine *line);

/* Runs one unit on a device that st_backend_identify() just described.
 * Device failures are outcomes in the result; a FALSE return means the line
 * must stop (the database refused a write: nothing was acknowledged). */
StUnitResult *st_unit_run (StLine *line, StBackend *backend,
                           const StDeviceInfo *info, GError **error);

/* 128 random bits for a certificate serial: the HSM's generator and OpenSSL's
 * private DRBG, XORed, so that either alone suffices. */
gboolean st_draw_serial (StCa *ca, StSerial *serial, GError **error);

G_END_DECLS
