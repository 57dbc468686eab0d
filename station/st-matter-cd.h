/* A Matter Certification Declaration (Matter Core spec 6.3.1): the
 * CSA's signed statement that a vendor's products are certified, which
 * every device carries and hands a commissioner during attestation.
 *
 * The station does not make real ones (the CSA signs those); a demo
 * station makes a test one with a CD-signing key of its own
 * (docs/matter.md, "The PAA and the PAI: set-up and ceremony"), so that
 * a Matter profile of the demo has a file to name. Two parts:
 *
 * - st_matter_cd_encode(): the CD's content, a Matter TLV structure
 *   (Core spec appendix A, Tag-length-value encoding) with the context
 *   tags 0..8 of the spec's certification-elements;
 * - st_matter_cd_sign(): that content wrapped in a CMS SignedData (DER),
 *   eContentType id-data, the content inside (not detached), one
 *   SignerInfo naming the signer by its subjectKeyIdentifier, SHA-256 and
 *   ecdsa-with-SHA256, no signed attributes, no certificates. */
#pragma once

#include <glib.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "st-profile.h"

G_BEGIN_DECLS

/* The spec's bounds: 1 to 100 product IDs, a certificate id of exactly
 * 19 characters. */
#define ST_MATTER_CD_MAX_PIDS 100
#define ST_MATTER_CD_CERT_ID_LEN 19

/* certification_type: 0 development and test, 1 provisional, 2 official. */
#define ST_MATTER_CD_TYPE_DEVELOPMENT 0

typedef struct {
  guint16 format_version;        /* [0] 1 */
  guint16 vendor_id;             /* [1] */
  const guint16 *product_ids;    /* [2] an array of 1..ST_MATTER_CD_MAX_PIDS */
  gsize n_product_ids;
  guint32 device_type_id;        /* [3] */
  const char *certificate_id;    /* [4] 19 printable ASCII characters */
  guint8 security_level;         /* [5] */
  guint16 security_information;  /* [6] */
  guint16 version_number;        /* [7] */
  guint8 certification_type;     /* [8] 0, 1 or 2 */
  /* optional: [9] and [10] come together or not at all */
  gboolean has_dac_origin;
  guint16 dac_origin_vendor_id;  /* [9] */
  guint16 dac_origin_product_id; /* [10] */
  /* [11] optional: 1..ST_MATTER_CD_MAX_PAAS subject key identifiers of
   * ST_MATTER_CD_SKID_LEN bytes each, back to back; 0: absent */
  const guint8 *authorized_paas;
  gsize n_authorized_paas;
} StMatterCd;

#define ST_MATTER_CD_MAX_PAAS 10
#define ST_MATTER_CD_SKID_LEN 20

/* The TLV of @cd: an anonymous structure holding the nine elements with
 * context tags 0..8 in that order (then 9 and 10 when has_dac_origin, 11
 * when n_authorized_paas > 0, its entries octet strings with a 1-byte
 * length), each unsigned integer in the fewest
 * bytes that hold it (1, 2 or 4), the certificate id a UTF-8 string with
 * a 1-byte length, the product IDs an array of anonymous unsigned
 * integers. INVALID_DATA names the field out of range. */
GBytes *st_matter_cd_encode (const StMatterCd *cd, GError **error);

/* The CMS SignedData (DER) of @content signed by @key, the private key of
 * @signer (which must carry a subjectKeyIdentifier and a P-256 key). @key
 * may live in a token: the caller holds the token's lock around the call.
 * The result is checked (it parses back, and its signature verifies with
 * @signer's public key) before it is returned. */
GBytes *st_matter_cd_sign (GBytes *content, X509 *signer, EVP_PKEY *key, GError **error);

/* Reading a Certification Declaration (hostile input: a profile names
 * any file).
 *
 * st_matter_cd_parse_tlv(): the strict reader of the CD's content, the
 * Matter TLV above: an anonymous structure, context tags only, in
 * ascending order, each at most once; the required 0..8, then optionally
 * 9 and 10 together and 11; unsigned integers of 1, 2, 4 or 8 bytes
 * little-endian within the field's range; strings with a 1-byte length;
 * nothing after the structure's end. @out's pointers are owned by it
 * (st_matter_cd_clear). @canonical (may be NULL) is set TRUE when every
 * integer was in the fewest bytes, i.e. when st_matter_cd_encode() writes
 * exactly the bytes read. INVALID_DATA names what is wrong and where. */
gboolean st_matter_cd_parse_tlv (const guint8 *tlv, gsize len, StMatterCd *out,
                                 gboolean *canonical, GError **error);

/* The CD's content out of its CMS: one DER ContentInfo of type
 * SignedData, nothing after it, eContentType id-data with the content
 * inside (not detached), read with st_matter_cd_parse_tlv(). The
 * signature is not verified here (the CSA's CD-signing keys are the
 * commissioner's trust). */
gboolean st_matter_cd_parse (GBytes *cms_der, StMatterCd *out, GError **error);

/* Frees what st_matter_cd_parse*() put in @cd and zeroes it. */
void st_matter_cd_clear (StMatterCd *cd);

/* The CD is for the product with Vendor ID @vid and Product ID @pid:
 * vendor_id is @vid and product_id_array holds @pid; when the CD carries
 * dac_origin_vendor_id/product_id (the DAC of another vendor's product,
 * Core spec 6.3.1), the DAC the station issues carries @vid and @pid, so
 * these must be @vid and @pid too. VERIFY_FAILED names the CD's and the
 * product's IDs; @file names the CD in the message. */
gboolean st_matter_cd_check_product (const StMatterCd *cd, const char *file, guint16 vid,
                                     guint16 pid, GError **error);

/* When the CD carries an authorized_paa_list, @paa (the station's root,
 * the PAA its DACs chain to) must be in it: its subjectKeyIdentifier one
 * of the list's. TRUE without a list. VERIFY_FAILED names the file. */
gboolean st_matter_cd_check_paa (const StMatterCd *cd, const char *file, X509 *paa, GError **error);

/* A Matter profile's Certification Declaration, loaded
 * (st_profile_load_certification_declaration), read and checked against
 * the profile's vendor-id and product-id, and against @paa
 * (st_matter_cd_check_paa) when @paa is not NULL. @development_note (may be NULL)
 * is set to one line for the operator when the CD is of certification
 * type 0, development and test (not for shipping products), else NULL. */
GBytes *st_matter_cd_load_for_profile (const StProfile *profile, X509 *paa, char **development_note,
                                       GError **error);

G_END_DECLS
