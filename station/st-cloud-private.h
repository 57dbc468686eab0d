/* Shared by the cloud export's targets (st-cloud*.c), not installed. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>
#include <openssl/x509.h>

#include "st-cloud.h"
#include "st-json.h"

G_BEGIN_DECLS

/* One unit with an active certificate. */
typedef struct {
  const StDbUnit *unit;   /* borrowed from the export's list */
  X509 *cert;
  GBytes *der;            /* borrowed: unit->cert_der */
  gchar *pem;
  gchar *uid_shown;       /* the uid escaped for a person */
} StCloudUnit;

typedef struct {
  StCa *ca;
  const StDbBatch *batch;
  const char *station_id;
  GPtrArray *units;       /* StCloudUnit*, active only, in unit order */
  gchar *ca_pem;          /* the issuing CA */
  gchar *chain_pem;       /* issuing CA .. the certificate below the root */
  GString *report;        /* cloud-report.txt */
} StCloudExport;

/* One export target: a folder and the function that fills it. */
typedef struct {
  const char *folder;
  const char *what;       /* for messages and the report */
  gboolean (*write) (StCloudExport *x, const char *dir, GError **error);
} StCloudTarget;

gboolean st_cloud_aws_write (StCloudExport *x, const char *dir, GError **error);
gboolean st_cloud_azure_write (StCloudExport *x, const char *dir, GError **error);
gboolean st_cloud_jws_write (StCloudExport *x, const char *dir, GError **error);

/* @dir/@name (mode 0600, written durably). */
gboolean st_cloud_write_file (const char *dir, const char *name, const char *data, gsize len,
                              GError **error);
/* The subject CN of @cert as UTF-8; NULL when it has none or several. */
gchar *st_cloud_subject_cn (X509 *cert);

G_END_DECLS
