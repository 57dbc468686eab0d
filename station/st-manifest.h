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

/* Verifies a manifest folder against the trusted @root: the CMS signature
 * by one signer, who must be the station signer pinned by @signer_pin (hex
 * SHA-256 of its SubjectPublicKeyInfo; NULL fails: no pin, no trust), the
 * manifest's claim of that pin and its audit checkpoint's signature, every
 * certificate's chain and its subject and SAN against the unit's uid (the
 * profile from @db by its SHA-256 when this station has it, may be NULL;
 * else as the manifest records it), internal consistency, and the CSV
 * against the JSON. Appends a readable report (one line per check,
 * "ok"/"FAIL") to @report. FALSE with VERIFY_FAILED when any check failed. */
gboolean st_manifest_verify (const char *dir, X509 *root, const char *signer_pin, StDb *db,
                             GString *report, GError **error);

G_END_DECLS
