/* Types shared by every layer: key algorithms and device slots, numbered as
 * in docs/agent-protocol.md so that the wire value is the enum value. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  ST_ALG_NONE = 0,
  ST_ALG_EC_P256 = 1,
  ST_ALG_EC_P384 = 2,
  ST_ALG_ED25519 = 3,
} StAlg;

/* Profile spelling: "ec-p256", "ec-p384", "ed25519"; NULL for others. */
const char *st_alg_to_string (StAlg alg);
/* For messages: the profile spelling with the curve's names,
 * "ec-p256 (EC P-256, prime256v1)"; "none" for ST_ALG_NONE. */
const char *st_alg_describe (StAlg alg);
/* ST_ALG_NONE when @name is not one of the profile spellings. */
StAlg st_alg_from_string (const char *name);
/* The HELLO algorithms bit of @alg (bit 0 P-256, bit 1 P-384, bit 2 Ed25519). */
guint8 st_alg_to_mask_bit (StAlg alg);

typedef enum {
  ST_SLOT_CERT = 1,  /* one DER certificate */
  ST_SLOT_CHAIN = 2, /* DER certificates concatenated, issuing CA first */
  /* Extension matter-1 (docs/agent-protocol.md): only on devices whose
   * HELLO announces it. */
  ST_SLOT_MATTER_CD = 3,   /* Matter Certification Declaration, DER CMS SignedData */
  ST_SLOT_MATTER_DATA = 4, /* Matter commissioning data record (station/st-matter-data.h) */
} StSlot;

/* Sizes the station sends to slots 3 and 4 (and blob entries 0x06, 0x07):
 * 1 to these many bytes. 186 is the largest commissioning data record
 * (ST_MATTER_DATA_MAX). */
#define ST_SLOT_MATTER_CD_MAX 4096
#define ST_SLOT_MATTER_DATA_MAX 186

G_END_DECLS
