/* The checks of a manifest that go beyond its CMS signature (README,
 * Manifest format; docs/architecture.md, Security invariants): its signer is
 * the pinned station signer, its audit checkpoint is signed by that signer
 * for its seq and hash, and each unit's certificate is the one the batch's
 * profile builds for the unit's uid. st_manifest_verify() runs them. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>
#include <openssl/x509.h>

#include "st-db.h"
#include "st-profile.h"

G_BEGIN_DECLS

/* A verification report: one line per check, "ok" or "FAIL". */
typedef struct {
  GString *report;
  guint failures;
} StManifestCheck;

G_GNUC_PRINTF (3, 4)
void st_manifest_check (StManifestCheck *c, gboolean ok, const char *fmt, ...);

/* The CMS @signer (whose signature verified) against @pin_hex, the SHA-256
 * of the pinned station signing key's SubjectPublicKeyInfo
 * (st_ca_check_station_signer: the station-signing purpose and that key).
 * @pin_hex NULL: no pin was given, which fails, naming the signer's key and
 * what the manifest claims. The manifest's own "signer_key_sha256" (@top)
 * is only cross-checked against the signer: a different one fails, a
 * missing one (a manifest of an older station) is reported. */
void st_manifest_check_signer (StManifestCheck *c, X509 *signer, const char *pin_hex,
                               JsonObject *top);

/* The member "audit_checkpoint" of @top (st_audit_add_manifest_member): its
 * message is st_audit_checkpoint_message (seq, hash) and its signature
 * verifies under @signer's key (the pinned signer). A manifest without one
 * (older stations) is reported, not failed. @signer NULL (the signature
 * already failed): only the message is checked. */
void st_manifest_check_checkpoint (StManifestCheck *c, JsonObject *top, X509 *signer);

/* What builds a unit's subject and subjectAltName: the batch's profile as
 * this station recorded it (@db, by the profile's SHA-256 in the manifest)
 * or else as the manifest records it ("subject", "san" of batch.profile). */
typedef struct _StManifestProfile StManifestProfile;
/* Reports which it is; NULL (reported) when neither is there: the uids are
 * then not checked. A manifest whose record differs from this station's
 * profile of the same SHA-256 fails. @db may be NULL. */
StManifestProfile *st_manifest_profile_find (StManifestCheck *c, JsonObject *batch, StDb *db);
void st_manifest_profile_free (StManifestProfile *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StManifestProfile, st_manifest_profile_free)

/* Whether unit @index's @cert has exactly the subject and subjectAltName
 * that @p builds from @uid and the unit's "serial" and "model" (@unit):
 * FALSE, reported, when not; *@checked TRUE when it was compared. A unit
 * without a recorded model, when the profile's names use {model} and fix
 * none, is reported as not checked, as are all without @p. */
gboolean st_manifest_check_uid (StManifestCheck *c, const StManifestProfile *p, guint index,
                                JsonObject *unit, const char *uid, X509 *cert, gboolean *checked);

/* The same with the unit's @model and @product_serial given (NULL: none). */
gboolean st_manifest_check_uid_of (StManifestCheck *c, const StManifestProfile *p, guint index,
                                   const char *uid, const char *model, const char *product_serial,
                                   X509 *cert, gboolean *checked);

/* A profile's names as given: the subject template, the SAN templates
 * (NULL: none) and the model the profile fixes (or NULL). */
StManifestProfile *st_manifest_profile_new (const char *subject, const char *const *san, const char *model);
/* The names @profile builds: its templates, its model and, for a Matter
 * profile, the VID and PID its DACs' subjects carry after them. */
StManifestProfile *st_manifest_profile_of (const StProfile *profile);
/* A Matter profile's VID and PID (a manifest read off the station). */
void st_manifest_profile_set_matter (StManifestProfile *p, guint16 vid, guint16 pid);

G_END_DECLS
