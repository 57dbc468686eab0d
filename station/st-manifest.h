/* Signed batch manifests: what the cloud side imports (README, Manifest format).
 *
 * A manifest folder holds manifest.json, manifest.csv, manifest.json.p7s (a
 * detached CMS signature in DER over manifest.json by the station signing
 * key, signer certificate included) and ca-chain.pem (issuing CA first, then
 * up to the root). */
#pragma once

#include <glib.h>
#include <openssl/x509.h>

#include "st-ca.h"
#include "st-db.h"

G_BEGIN_DECLS

#define ST_MANIFEST_FORMAT "station-manifest/1"
#define ST_MANIFEST_MAX_JSON (64 * 1024 * 1024)
#define ST_MANIFEST_MAX_P7S (1024 * 1024)
#define ST_MANIFEST_MAX_CHAIN (1024 * 1024)

/* Writes the manifest of @batch_id into @out_dir (created if missing; the
 * four files are replaced atomically, the signature last). */
gboolean st_manifest_export (StDb *db, StCa *ca, const char *station_id,
                             gint64 batch_id, const char *out_dir, GError **error);

/* Verifies a manifest folder against the trusted @root: the CMS signature,
 * every certificate's chain, internal consistency, and the CSV against the
 * JSON. Appends a readable report (one line per check, "ok"/"FAIL") to
 * @report. FALSE with VERIFY_FAILED when any check failed. */
gboolean st_manifest_verify (const char *dir, X509 *root, GString *report,
                             GError **error);

G_END_DECLS
