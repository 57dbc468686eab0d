/* Shared by the cloud export's targets (st-cloud*.c), not installed. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>
#include <openssl/x509.h>
#include <stdio.h>

#include "st-cloud.h"
#include "st-json.h"

G_BEGIN_DECLS

/* One unit with an active certificate, while it is exported: the export
 * reads the batch one unit at a time (st_db_unit_foreach) and gives each
 * to every target before the next. */
typedef struct {
  const StDbUnit *unit;   /* borrowed from the cursor */
  X509 *cert;             /* its fields (st_x509_from_der_fields): key undecoded */
  GBytes *der;            /* borrowed: unit->cert_der */
  gchar *pem;
  gchar *uid_shown;       /* the uid escaped for a person */
} StCloudUnit;

typedef struct StCloudExport StCloudExport;

/* One export target: a folder and the functions that fill it, unit by
 * unit. @begin opens its files in @dir, @unit writes one unit, @end
 * finishes them and says what it wrote (st_cloud_note); @cleanup closes
 * whatever is still open and frees the target's state, always. */
typedef struct {
  const char *folder;
  const char *what;       /* for messages and the report */
  gboolean (*begin) (StCloudExport *x, const char *dir, GError **error);
  gboolean (*unit) (StCloudExport *x, const StCloudUnit *u, GError **error);
  gboolean (*end) (StCloudExport *x, GError **error);
  void (*cleanup) (StCloudExport *x);
} StCloudTarget;

typedef struct StCloudAws StCloudAws;
typedef struct StCloudAzure StCloudAzure;
typedef struct StCloudJws StCloudJws;

#define ST_CLOUD_N_TARGETS 4

struct StCloudExport {
  StCa *ca;
  const StDbBatch *batch;
  const char *station_id;
  const char *out_dir;
  gchar *ca_pem;          /* the issuing CA */
  gchar *chain_pem;       /* issuing CA .. the certificate below the root */
  guint active, left_out;
  FILE *notes_all;        /* the report's lines about units no target takes */
  FILE *notes[ST_CLOUD_N_TARGETS]; /* each target's lines of the report */
  guint target;           /* the target being called, for st_cloud_note */
  guint targets;          /* which targets are written (ST_CLOUD_AWS, ...) */
  /* each target's own state */
  StCloudAws *aws;
  StCloudAzure *azure;
  gchar *certs_dir;
  guint certs_written;
  StCloudJws *jws;
};

/* Whether target @t (its index in the table) is written. */
#define ST_CLOUD_WANTS(x, t) (((x)->targets & (1u << (t))) != 0)

extern const StCloudTarget st_cloud_aws_target;
extern const StCloudTarget st_cloud_azure_target;
extern const StCloudTarget st_cloud_jws_target;

/* A line of the current target's part of cloud-report.txt. */
void st_cloud_note (StCloudExport *x, const char *format, ...) G_GNUC_PRINTF (2, 3);

/* @dir/@name (mode 0600) in the service's scratch folder: never replacing
 * a file, never through a link. */
gboolean st_cloud_write_file (const char *dir, const char *name, const char *data, gsize len,
                              GError **error);
/* A file of the export written as it goes: @dir/@name created (never
 * replacing, never through a link), buffered. NULL and @error. */
FILE *st_cloud_open (const char *dir, const char *name, GError **error);
/* Closes @f (if any), reporting a write error on @what. */
gboolean st_cloud_close (FILE **f, const char *what, GError **error);
/* A buffered file without a name in @dir (the report's parts). */
FILE *st_cloud_tmpfile (const char *dir, GError **error);
/* The subject CN of @cert as UTF-8; NULL when it has none or several. */
gchar *st_cloud_subject_cn (X509 *cert);

G_END_DECLS
