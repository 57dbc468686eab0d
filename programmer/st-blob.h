/* The credential blob, versions 1 and 2 (docs/agent-protocol.md, Credential blob):
 * what passive backends (stm32-rom, cmsis-dap) write into the device's
 * flash and read back.
 *
 *   offset 0   magic "PCB1"
 *          4   version u16 = 1
 *          6   entry count u16
 *          8   total length u32 (header and trailing CRC included)
 *         12   entries: type u8, reserved u8 (0), length u16, value
 *   total - 4  CRC-32 (ISO-HDLC) over every preceding byte
 *
 * Integers are little-endian. The writer pads with 0xFF to the flash
 * programming granularity. The parser is strict: every length is checked
 * against the bytes that are there, the count must match the entries
 * exactly, reserved bytes must be 0, unknown types, missing or repeated
 * single entries are refused. Flash contents are hostile input.
 *
 * Version 2 (extension matter-1) is version 1 with two more entry types,
 * 0x06 Matter Certification Declaration and 0x07 Matter commissioning
 * data, exactly one of each. The writer makes version 1, byte for byte as
 * before, when the blob has no Matter data, and version 2 only with it;
 * the parser accepts both and refuses 0x06/0x07 in a version 1 blob. */
#pragma once

#include <glib.h>

#include "st-types.h"

G_BEGIN_DECLS

#define ST_BLOB_MAGIC "PCB1"
#define ST_BLOB_VERSION 1
#define ST_BLOB_VERSION_MATTER 2
#define ST_BLOB_HEADER_SIZE 12
#define ST_BLOB_CRC_SIZE 4
#define ST_BLOB_ENTRY_HEADER_SIZE 4
/* Hard maxima: the profile's largest credential area, and entries. */
#define ST_BLOB_MAX_SIZE (1024 * 1024)
#define ST_BLOB_MAX_CA_CERTS 8
#define ST_BLOB_UID_MAX 32
#define ST_BLOB_SERIAL_MAX 64
/* Version 2: the Certification Declaration, and the commissioning data
 * record (ST_MATTER_DATA_MAX in station/st-matter-data.h). */
#define ST_BLOB_MATTER_CD_MAX ST_SLOT_MATTER_CD_MAX
#define ST_BLOB_MATTER_DATA_MAX ST_SLOT_MATTER_DATA_MAX

typedef enum {
  ST_BLOB_ENTRY_UID = 0x01,      /* as read from the device */
  ST_BLOB_ENTRY_KEY = 0x02,      /* DER PKCS#8 */
  ST_BLOB_ENTRY_CERT = 0x03,     /* DER */
  ST_BLOB_ENTRY_CA_CERT = 0x04,  /* DER, repeated, the issuing CA first */
  ST_BLOB_ENTRY_SERIAL = 0x05,   /* UTF-8 product serial */
  ST_BLOB_ENTRY_MATTER_CD = 0x06,   /* version 2: Matter Certification Declaration, DER CMS */
  ST_BLOB_ENTRY_MATTER_DATA = 0x07, /* version 2: Matter commissioning data record */
} StBlobEntryType;

typedef struct {
  GBytes *uid;              /* required, 1..32 bytes */
  GBytes *key;              /* required; a secret: wiped on free */
  GBytes *cert;             /* required */
  GPtrArray *ca_certs;      /* of GBytes*, 0..ST_BLOB_MAX_CA_CERTS; never NULL */
  gchar *product_serial;    /* NULL when not given */
  /* Version 2: both or neither (NULL). */
  GBytes *matter_cd;        /* 1..ST_BLOB_MATTER_CD_MAX bytes */
  GBytes *matter_data;      /* 1..ST_BLOB_MATTER_DATA_MAX bytes */
  guint version;            /* st_blob_parse(): the version read; ignored by st_blob_build() */
} StBlob;

StBlob *st_blob_new (void);
/* Wipes the key bytes it holds the last reference to. */
void st_blob_free (StBlob *blob);

/* Splits @chain (DER certificates concatenated, as slot 2 carries them)
 * into @blob's CA certificates. Each certificate must be one complete DER
 * SEQUENCE. */
gboolean st_blob_set_chain (StBlob *blob, GBytes *chain, GError **error);
/* The CA certificates concatenated (slot 2), empty when there are none. */
GBytes *st_blob_dup_chain (const StBlob *blob);

/* Encodes @blob, padded with 0xFF to a multiple of @granularity (1, 2, 4,
 * 8, ... up to 256); fails with INVALID_DATA when a required entry is
 * missing, an entry exceeds its limit, only one of the two Matter entries
 * is given, or the padded blob exceeds @max_size. Version 2 when the blob
 * has Matter data, else version 1. */
GBytes *st_blob_build (const StBlob *blob, gsize granularity, gsize max_size, GError **error);

/* Parses the blob at the start of @data (@len bytes, e.g. a whole
 * credential area: bytes after the blob's total length are not looked at).
 * INVALID_DATA with the reason when anything is wrong; NOT_FOUND when the
 * area holds no blob (it does not start with the magic: erased or foreign). */
StBlob *st_blob_parse (const guint8 *data, gsize len, GError **error);

/* The blob's total length from its header, or 0 when @data does not start
 * with a plausible header (magic, version, length 16..ST_BLOB_MAX_SIZE). */
gsize st_blob_peek_length (const guint8 *data, gsize len);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (StBlob, st_blob_free)

G_END_DECLS
