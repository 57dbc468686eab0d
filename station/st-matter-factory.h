/* The per-unit factory data of a Matter product (docs/matter.md, "Factory
 * data per unit"): the setup passcode and the discriminator a unit gets,
 * its SPAKE2+ verifier with a fresh salt, the rotating device id's unique
 * id when the profile asks for one, and the onboarding codes (QR text and
 * manual pairing code) made from them. Generated at the unit's reserve
 * step and recorded in the same transaction (st_db_unit_begin_reserve_matter). */
#pragma once

#include <glib.h>

#include "st-matter-codes.h"
#include "st-matter-spake2p.h"
#include "st-profile.h"

G_BEGIN_DECLS

#define ST_MATTER_UNIQUE_ID_MIN 16
#define ST_MATTER_UNIQUE_ID_MAX 32

typedef struct {
  guint16 vendor_id;
  guint16 product_id;
  guint16 discriminator;                    /* 12 bits */
  guint32 passcode;                         /* a secret: wiped by st_matter_unit_data_free */
  guint32 iterations;                       /* PBKDF2, 1000 to 100000 */
  guint8 salt[ST_MATTER_SALT_MAX];
  gsize salt_len;                           /* 16 to 32 */
  guint8 verifier[ST_MATTER_VERIFIER_LEN];  /* w0 || L */
  guint8 unique_id[ST_MATTER_UNIQUE_ID_MAX];
  gsize unique_id_len;                      /* 0: none, else 16 to 32 */
  guint8 flow;                              /* StMatterFlow */
  guint8 discovery;                         /* ST_MATTER_DISCOVERY_* */
  gboolean sequential;                      /* the discriminator came from the counter */
  guint64 counter;                          /* the batch's counter it came from (sequential) */
  gchar *qr_text;                           /* "MT:..." (holds the passcode) */
  gchar *manual_code;                       /* 11 or 21 digits (holds the passcode) */
} StMatterUnitData;

StMatterUnitData *st_matter_unit_data_new (void);
/* Wipes the passcode, the codes that carry it, the verifier, the salt and
 * the unique id, then frees. NULL is allowed. */
void st_matter_unit_data_free (StMatterUnitData *data);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StMatterUnitData, st_matter_unit_data_free)

/* Makes one unit's data for the [matter] group @m (m->enabled): a CSPRNG
 * passcode (never an invalid value); the discriminator from the CSPRNG
 * within the profile's range (random policy) or the
 * @discriminator_counter-th value of the range, wrapping round
 * (sequential); a random salt of the profile's length; the verifier; a
 * unique id of rotating-id-length bytes when not 0; the QR text and the
 * manual code. Fills @out (which must be fresh, from
 * st_matter_unit_data_new()); on failure @out holds nothing secret. */
gboolean st_matter_unit_data_generate (const StProfileMatter *m, guint64 discriminator_counter,
                                       StMatterUnitData *out, GError **error);

/* Whether @data is consistent: the fields in range, the verifier that of
 * the passcode with the salt and the iterations, the QR text and the
 * manual code those of the fields. What QA and the recovery of a resumed
 * unit check a record read back with. */
gboolean st_matter_unit_data_check (const StMatterUnitData *data, GError **error);

/* The payload the codes carry (version 0). */
void st_matter_unit_data_payload (const StMatterUnitData *data, StMatterPayload *payload);

G_END_DECLS
