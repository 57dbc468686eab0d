/* Files the clouds import as they are, next to a batch's manifest.
 *
 * For the units of a batch whose certificate is active (not voided,
 * unconfirmed, disputed or revoked), st_cloud_export() writes one folder per
 * target into the manifest's folder (docs/cloud.md says which file goes to
 * which command):
 *
 *   aws/    bulk-registration.ndjson, provisioning-template.json, README.md
 *           (AWS IoT start-thing-registration-task), rejected.txt
 *   azure/  enrollment-group.json (a DPS enrollment group for the issuing
 *           CA), registration-ids.txt, rejected.txt
 *   certs/  UID.pem per unit: its certificate, then the chain as a device
 *           presents it (issuing CA up to, not including, the root)
 *   jws/    entries.json: one flattened JWS (RFC 7515 7.2.2) per unit in
 *           the Microchip Trust Platform manifest style, signed in the HSM
 *           by the station signing key
 *
 * and cloud-report.txt, which names every unit a target left out and why.
 * Device strings (uids, names) are hostile: a file name is made from a uid
 * only when it is in a strict set, and every uid a person reads is escaped
 * (st_text_escape). */
#pragma once

#include <glib.h>
#include <openssl/x509.h>

#include "st-ca.h"
#include "st-db.h"

G_BEGIN_DECLS

/* The folders st_cloud_export() writes, NULL-terminated. */
extern const char *const st_cloud_folders[];
/* Its report file, next to them. */
#define ST_CLOUD_REPORT "cloud-report.txt"

/* The targets, as bits of @targets below (the order of st_cloud_folders). */
#define ST_CLOUD_AWS   (1u << 0)
#define ST_CLOUD_AZURE (1u << 1)
#define ST_CLOUD_CERTS (1u << 2)
#define ST_CLOUD_JWS   (1u << 3)
#define ST_CLOUD_ALL   (ST_CLOUD_AWS | ST_CLOUD_AZURE | ST_CLOUD_CERTS | ST_CLOUD_JWS)
/* @spec as `manifest export --cloud` takes it: "all", "none", or folder
 * names joined by commas ("aws,certs"), each once. NULL or "" = all.
 * INVALID_DATA naming the word and the choices else. */
gboolean st_cloud_targets_parse (const char *spec, guint *targets, GError **error);

/* Writes the folders above that @targets asks for and the report into
 * @out_dir (which holds the manifest of batch @batch_id), reading the batch
 * one unit at a time. One HSM signature per active unit with jws/. */
gboolean st_cloud_export (StDb *db, StCa *ca, const char *station_id, gint64 batch_id,
                          guint targets, const char *out_dir, GError **error) G_GNUC_WARN_UNUSED_RESULT;

/* ---- the rules the targets impose, for the export and its tests ---- */

/* AWS IoT thing names: 1..128 of [a-zA-Z0-9:_-] (CreateThing). */
gboolean st_cloud_aws_thing_name_ok (const char *name);
/* Azure DPS registration ids as this station writes them: the device
 * certificate's subject CN, 1..64 characters (the X.509 upper bound of a
 * CN) of [A-Za-z0-9._-], first and last alphanumeric. NULL when @cn is
 * fine, else why not (static text). */
const char *st_cloud_azure_registration_id_problem (const char *cn);
/* The certs/ file name of @uid: "UID.pem" when @uid is 1..64 of
 * [A-Za-z0-9_-] (no dot, so never "." nor "..", no '/'), else
 * "uid-sha256-HEX.pem" with the SHA-256 of the uid's bytes. */
gchar *st_cloud_cert_file_name (const char *uid);
/* The certs/ file name of each of @n uids (st_cloud_cert_file_name), NULL
 * for a unit left out because another took its name; each hashed name and
 * each unit left out is a line of @report, its uid escaped. Of gchar*,
 * @n of them. */
GPtrArray *st_cloud_cert_names (const char *const *uids, guint n, GString *report);
/* Whether @name may be a file written by a client into an export folder:
 * 1..255 bytes of [A-Za-z0-9._-], not starting with '.'. */
gboolean st_cloud_file_name_ok (const char *name);

/* ---- the proof-of-possession certificate ---- */

/* A registration code as AWS (64 hex digits) and Azure (hex-like) hand
 * them out: 1..64 of [A-Za-z0-9-]. INVALID_DATA naming the rule else. */
gboolean st_cloud_check_code (const char *code, GError **error);
/* A certificate whose subject is CN=@code, signed by the issuing CA in the
 * HSM, valid for @days from now, for a cloud's proof that whoever registers
 * the CA holds its key. Its own key pair is made in memory for it and
 * thrown away: only the CA's signature counts. CA:FALSE, digitalSignature,
 * no extended key usage (never the station-signing purpose); a random
 * 128-bit serial (*@serial_hex). Verified against the chain before it is
 * returned. */
X509 *st_cloud_verification_cert (StCa *ca, const char *code, guint days, gchar **serial_hex,
                                  GError **error) G_GNUC_WARN_UNUSED_RESULT;

G_END_DECLS
