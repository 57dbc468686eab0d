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
} StMatterCd;

/* The TLV of @cd: an anonymous structure holding the nine elements with
 * context tags 0..8 in that order, each unsigned integer in the fewest
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

G_END_DECLS
