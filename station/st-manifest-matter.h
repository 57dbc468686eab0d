/* The Matter members of a station-manifest/2 folder (docs/matter.md, "The
 * manifest and the lead's codes file"; README, Manifest format): the
 * header's batch.matter (VID, PID, the Certification Declaration's
 * SHA-256) and each unit's "matter" object, the onboarding payload without
 * the passcode (version, VID, PID, commissioning flow, discovery
 * capabilities, discriminator). Never the passcode, the QR text or the
 * manual code (both carry it), the salt or the verifier (with the salt and
 * iterations it lets anyone test all 2^27 passcodes offline). */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>
#include <openssl/x509.h>

#include "st-db.h"
#include "st-manifest-check.h"
#include "st-profile.h"

G_BEGIN_DECLS

/* ---- export ---- */

/* Appends ,"matter":{...} of record @m to the unit line @l. */
void st_manifest_matter_unit_member (GString *l, const StDbUnitMatter *m);

/* Adds the member "matter" (vendor_id, product_id,
 * certification_declaration_sha256) to the batch object being built in
 * @b, for the Matter profile @profile (profile->matter.enabled). FALSE
 * when its Certification Declaration file cannot be read. */
gboolean st_manifest_matter_header (JsonBuilder *b, const StProfile *profile, GError **error);

/* ---- verify ---- */

typedef struct {
  gboolean matter;      /* batch.matter is present and well-formed */
  gboolean malformed;   /* present but not well-formed (reported) */
  guint16 vendor_id, product_id;
} StManifestMatterBatch;

/* Reads and checks batch.matter of the header @batch into @out
 * (reported). */
void st_manifest_matter_batch_read (StManifestCheck *c, JsonObject *batch, StManifestMatterBatch *out);

/* What a unit's "matter" member said, for the comparison with the
 * station's records. */
typedef struct {
  gboolean present;
  guint16 vendor_id, product_id, discriminator;
  guint8 flow, discovery;
} StManifestMatterUnit;

/* Unit @i (uid @uid, @cert its certificate or NULL) of the manifest: its
 * "matter" member well-formed, only the members of the payload without
 * the passcode, its VID and PID those of the batch and of the DAC's
 * subject; a Matter batch's unit with a certificate must have one, a unit
 * of another batch none. Reported; FALSE when a check failed. */
gboolean st_manifest_matter_unit_check (StManifestCheck *c, const StManifestMatterBatch *b, guint i,
                                        const char *uid, JsonObject *u, X509 *cert,
                                        StManifestMatterUnit *out);

/* The station's records of the batch, read in pages alongside the units of
 * the manifest (unit id order, as the export wrote them): memory does not
 * grow with the batch. */
typedef struct _StManifestMatterCursor StManifestMatterCursor;

/* NULL (reported when @db is given) when there is nothing to compare
 * with: no database, not a Matter batch, or not a batch of this station
 * (its id, work order or profile differ). */
StManifestMatterCursor *st_manifest_matter_cursor_new (StManifestCheck *c, StDb *db, JsonObject *batch,
                                                       const StManifestMatterBatch *mb);
/* Unit @i of the manifest with uid @uid and Matter member @mu, against the
 * next unit of the station's batch and its record. Reported when they
 * differ (at most 20 lines, then a count). */
void st_manifest_matter_cursor_next (StManifestMatterCursor *cur, StManifestCheck *c, guint i,
                                     const char *uid, const StManifestMatterUnit *mu);
/* The summary line; frees @cur. */
void st_manifest_matter_cursor_finish (StManifestMatterCursor *cur, StManifestCheck *c);

G_END_DECLS
