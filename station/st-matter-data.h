/* The Matter commissioning data record (docs/agent-protocol.md,
 * "Extension matter-1"): what a device needs to be commissioned besides
 * its DAC, its chain and its Certification Declaration. The station writes
 * it to agent slot 4 and into entry 0x07 of a version 2 credential blob;
 * QA reads it back from devices, so the parser takes hostile input.
 *
 * Record version 1: byte 0 = 0x01, then entries type u8, length u8,
 * value, each exactly once and in this order:
 *   0x01 vendor id u16 LE           0x02 product id u16 LE
 *   0x03 discriminator u16 LE, 0..4095
 *   0x04 PBKDF2 iteration count u32 LE, 1000..100000
 *   0x05 salt, 16..32 bytes         0x06 SPAKE2+ verifier, 97 bytes
 *                                        (w0 32 bytes, L 65 bytes 04 X Y)
 *   0x07 rotating device id unique id, 16..32 bytes (optional)
 * The setup passcode is never in it. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define ST_MATTER_DATA_VERSION 0x01
/* The largest record: 1 + 4 + 4 + 4 + 6 + (2 + 32) + (2 + 97) + (2 + 32). */
#define ST_MATTER_DATA_MAX 186
#define ST_MATTER_DATA_VERIFIER_LEN 97
#define ST_MATTER_DATA_SALT_MIN 16
#define ST_MATTER_DATA_SALT_MAX 32
#define ST_MATTER_DATA_RDID_MIN 16
#define ST_MATTER_DATA_RDID_MAX 32

typedef enum {
  ST_MATTER_DATA_VENDOR_ID = 0x01,
  ST_MATTER_DATA_PRODUCT_ID = 0x02,
  ST_MATTER_DATA_DISCRIMINATOR = 0x03,
  ST_MATTER_DATA_ITERATIONS = 0x04,
  ST_MATTER_DATA_SALT = 0x05,
  ST_MATTER_DATA_VERIFIER = 0x06,
  ST_MATTER_DATA_RDID_UNIQUE_ID = 0x07,
} StMatterDataType;

typedef struct {
  guint16 vendor_id;
  guint16 product_id;
  guint16 discriminator;          /* 0..4095 */
  guint32 iterations;             /* 1000..100000 */
  guint8 salt[ST_MATTER_DATA_SALT_MAX];
  gsize salt_len;                 /* 16..32 */
  guint8 verifier[ST_MATTER_DATA_VERIFIER_LEN];
  guint8 rdid_unique_id[ST_MATTER_DATA_RDID_MAX];
  gsize rdid_unique_id_len;       /* 0 (absent) or 16..32 */
} StMatterCommissioning;

/* Checks every field of @c against the ranges above; the error
 * (ST_ERROR_INVALID_DATA) names the field. */
gboolean st_matter_commissioning_check (const StMatterCommissioning *c, GError **error);

/* The record of @c (checked first). */
GBytes *st_matter_commissioning_encode (const StMatterCommissioning *c, GError **error);

/* Parses a record of @len bytes into @c (zeroed first). Refuses, with the
 * reason and the offset: another version, an unknown type, a type twice or
 * out of order, a missing mandatory entry, a wrong length, a value out of
 * range, a verifier whose L does not start with 0x04, bytes after the last
 * entry. */
gboolean st_matter_commissioning_parse (const guint8 *data, gsize len, StMatterCommissioning *c,
                                        GError **error);

G_END_DECLS
