/* Signed batch manifests: what the cloud side imports (README, Manifest format).
 *
 * A station-manifest/2 folder holds manifest.json (the header), units.jsonl
 * (one unit per line), manifest.csv, ca-chain.pem (issuing CA first, then up
 * to the root), SHA256SUMS (the SHA-256 of those four, as sha256sum writes
 * them) and SHA256SUMS.p7s (a detached CMS signature in DER over SHA256SUMS
 * by the station signing key, signer certificate included). Export writes
 * them while reading the units one page at a time; verify reads each file
 * once, a line at a time. A station-manifest/1 folder (manifest.json with
 * every unit, manifest.json.p7s over it) is still verified. */
#pragma once

#include <glib.h>
#include <openssl/x509.h>

#include "st-ca.h"
#include "st-db.h"

G_BEGIN_DECLS

#define ST_MANIFEST_FORMAT "station-manifest/1"
/* The streaming format (README, Manifest format): manifest.json is a small
 * header, the units are the lines of units.jsonl, and SHA256SUMS (signed in
 * SHA256SUMS.p7s) holds the SHA-256 of every other file the signature
 * covers. No bound on a file grows with the batch: a line has one. */
#define ST_MANIFEST_FORMAT_2 "station-manifest/2"
#define ST_MANIFEST_UNITS_FILE "units.jsonl"
#define ST_MANIFEST_SUMS "SHA256SUMS"
#define ST_MANIFEST_SUMS_SIG "SHA256SUMS.p7s"
#define ST_MANIFEST_MAX_HEADER (1024 * 1024)
#define ST_MANIFEST_MAX_SUMS (64 * 1024)
/* one unit's line of units.jsonl, or one row of manifest.csv */
#define ST_MANIFEST_MAX_LINE (256 * 1024)
/* station-manifest/1 only: its one document is read whole */
#define ST_MANIFEST_MAX_JSON (64 * 1024 * 1024)
#define ST_MANIFEST_MAX_P7S (1024 * 1024)
#define ST_MANIFEST_MAX_CHAIN (1024 * 1024)

/* Writes the station-manifest/2 manifest of @batch_id into @out_dir
 * (created if missing; each file is replaced atomically, the signature
 * removed first and written last; a manifest.json.p7s of an older export
 * is removed). */
gboolean st_manifest_export (StDb *db, StCa *ca, const char *station_id,
                             gint64 batch_id, const char *out_dir, GError **error);

/* Appends @s as a JSON string (RFC 8259) to @out: quoted, '"' and '\\'
 * escaped, every control character (U+0000 to U+001F, and DEL) as \b \f
 * \n \r \t or \u00XX, valid UTF-8 as it is, each byte that is not part
 * of valid UTF-8 as U+FFFD; NULL as null. How the export writes the lines
 * of units.jsonl. */
void st_manifest_json_string (GString *out, const char *s);

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

/* What the service checks of a station-manifest/2 folder it has just
 * written (docs/manifest-format.md, The export's self-check): the
 * signature over SHA256SUMS by the station signer pinned by @signer_pin,
 * SHA256SUMS's form, every file's SHA-256 against it, the chain (ends with
 * @root; the issuing CA verified once), the header (format, signer pin,
 * audit checkpoint, batch) and units.jsonl's line count, size and hash
 * against the header and manifest.csv's lines (a header and one row a
 * unit). Not each unit's certificate: those came from the database the
 * export read (st_db_check). Appends a report; FALSE with VERIFY_FAILED
 * when any check failed. */
gboolean st_manifest_check_written (const char *dir, X509 *root, const char *signer_pin,
                                    GString *report, GError **error);

G_END_DECLS
