/* The device's CSR, checked as hostile input (st-issue.h, st_csr_check).
 *
 * Why a template of our own instead of d2i_X509_REQ(): OpenSSL 3.0 decodes
 * the SubjectPublicKeyInfo of every request it parses through its provider
 * decoders, and sets up a decoder context for each one. On the station that
 * cost two thirds of the whole CSR check, more than the signature check
 * itself (docs/testing.md, Benchmarks). The template below reads the same
 * PKCS#10 structure (RFC 2986) with the SubjectPublicKeyInfo as its two raw
 * parts; the key is then made from its curve and point (st_spki_parts_to_key)
 * and the signature checked with ASN1_item_verify_ex() over the
 * CertificationRequestInfo exactly as received, which is what
 * X509_REQ_verify() does. tests/station/test-issue.c (/issue/csr/openssl)
 * and tests/fuzz/fuzz-csr.c hold every request this accepts against
 * d2i_X509_REQ() and X509_REQ_verify(). */
#include "st-issue.h"

#include <openssl/asn1t.h>
#include <openssl/objects.h>
#include <string.h>

#include "st-error.h"
#include "st-ossl.h"
#include "st-util.h"

typedef struct {
  X509_ALGOR *algorithm;
  ASN1_BIT_STRING *key;
} StCsrSpki;

typedef struct {
  ASN1_ENCODING enc; /* the bytes as received: what the signature covers */
  ASN1_INTEGER *version;
  X509_NAME *subject;
  StCsrSpki *spki;
  STACK_OF (X509_ATTRIBUTE) *attributes;
} StCsrInfo;

typedef struct {
  StCsrInfo *info;
  X509_ALGOR *sig_alg;
  ASN1_BIT_STRING *signature;
} StCsr;

ASN1_SEQUENCE (StCsrSpki) = {
  ASN1_SIMPLE (StCsrSpki, algorithm, X509_ALGOR),
  ASN1_SIMPLE (StCsrSpki, key, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END (StCsrSpki)

/* As X509_REQ_INFO: the attributes are [0] IMPLICIT SET OF, and optional
 * as OpenSSL has them (some encoders leave the empty set out). */
ASN1_SEQUENCE_enc (StCsrInfo, enc, NULL) = {
  ASN1_SIMPLE (StCsrInfo, version, ASN1_INTEGER),
  ASN1_SIMPLE (StCsrInfo, subject, X509_NAME),
  ASN1_SIMPLE (StCsrInfo, spki, StCsrSpki),
  ASN1_IMP_SET_OF_OPT (StCsrInfo, attributes, X509_ATTRIBUTE, 0),
} static_ASN1_SEQUENCE_END_ref (StCsrInfo, StCsrInfo)

ASN1_SEQUENCE (StCsr) = {
  ASN1_SIMPLE (StCsr, info, StCsrInfo),
  ASN1_SIMPLE (StCsr, sig_alg, X509_ALGOR),
  ASN1_SIMPLE (StCsr, signature, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END (StCsr)

static void
st_csr_free (StCsr *csr)
{
  ASN1_item_free ((ASN1_VALUE *) csr, ASN1_ITEM_rptr (StCsr));
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StCsr, st_csr_free)

/* Encodes @val as @it and compares with @want; TRUE when equal. */
static gboolean
encodes_to (const void *val, const ASN1_ITEM *it, const unsigned char *want, gsize want_len)
{
  unsigned char *re = NULL;
  int relen = ASN1_item_i2d ((const ASN1_VALUE *) val, &re, it);
  gboolean same = relen > 0 && (gsize) relen == want_len && memcmp (re, want, want_len) == 0;
  OPENSSL_free (re);
  return same;
}

static const char *
oid_text (const void *obj, char *buf, int size)
{
  OBJ_obj2txt (buf, size, obj, 0);
  return buf;
}

/* The key's algorithm against the profile's @alg. */
static gboolean
check_key_algorithm (const X509_ALGOR *key_alg, StAlg alg, GError **error)
{
  const ASN1_OBJECT *key_oid = NULL;
  int ptype = V_ASN1_UNDEF;
  const void *pval = NULL;
  X509_ALGOR_get0 (&key_oid, &ptype, &pval, key_alg);
  int key_nid = OBJ_obj2nid (key_oid);

  if (key_nid == NID_X9_62_id_ecPublicKey)
    {
      if (alg != ST_ALG_EC_P256 && alg != ST_ALG_EC_P384)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "the device made an EC key, but the profile asks for %s", st_alg_describe (alg));
          return FALSE;
        }
      if (ptype != V_ASN1_OBJECT)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "the device's key request uses explicit EC curve parameters, which are refused; the device must name the curve (%s)",
                       st_alg_describe (alg));
          return FALSE;
        }
      int curve = OBJ_obj2nid (pval);
      int want = alg == ST_ALG_EC_P256 ? NID_X9_62_prime256v1 : NID_secp384r1;
      char txt[80] = "";
      if (curve != want)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "the device made a key on the curve %s, but the profile asks for %s",
                       oid_text (pval, txt, sizeof txt), st_alg_describe (alg));
          return FALSE;
        }
      return TRUE;
    }
  if (key_nid == NID_ED25519)
    {
      if (alg != ST_ALG_ED25519)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "the device made an Ed25519 key, but the profile asks for %s", st_alg_describe (alg));
          return FALSE;
        }
      if (ptype != V_ASN1_UNDEF)
        {
          g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                               "the device's Ed25519 key has algorithm parameters, which RFC 8410 forbids");
          return FALSE;
        }
      return TRUE;
    }
  char txt[80] = "";
  g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
               "the device made a key of type %s, which is refused; the profile asks for %s",
               oid_text (key_oid, txt, sizeof txt), st_alg_describe (alg));
  return FALSE;
}

/* The request's signature algorithm: SHA-256 or stronger. A device that
 * signs its request with SHA-1 (or MD5, or anything else) is refused before
 * the signature is even checked: a collision in a weak digest would let a
 * request signed for one key pass for another. ECDSA and RSA with SHA-256,
 * SHA-384 or SHA-512; Ed25519 is its own scheme (SHA-512 inside). Only the
 * algorithm is named, never anything else from the device. */
static gboolean
check_signature_algorithm (const X509_ALGOR *sig_alg, GError **error)
{
  const ASN1_OBJECT *oid = NULL;
  X509_ALGOR_get0 (&oid, NULL, NULL, sig_alg);
  switch (OBJ_obj2nid (oid))
    {
    case NID_ecdsa_with_SHA256:
    case NID_ecdsa_with_SHA384:
    case NID_ecdsa_with_SHA512:
    case NID_sha256WithRSAEncryption:
    case NID_sha384WithRSAEncryption:
    case NID_sha512WithRSAEncryption:
    case NID_ED25519:
      return TRUE;
    default:
      break;
    }
  char txt[80] = "";
  g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
               "the device signed its key request with %s, which is refused: SHA-256 or stronger "
               "is required (ECDSA or RSA with SHA-256, SHA-384 or SHA-512, or Ed25519); "
               "the device's firmware must sign its CSR with SHA-256",
               oid_text (oid, txt, sizeof txt));
  return FALSE;
}

EVP_PKEY *
st_csr_check (GBytes *der, StAlg alg, GError **error)
{
  g_return_val_if_fail (der != NULL, NULL);
  gsize len = 0;
  const guint8 *data = st_bytes_get_bounded (der, ST_CSR_MAX_SIZE, "the device's key request (CSR)", &len, error);
  if (data == NULL)
    return NULL;
  const unsigned char *p = data;
  g_autoptr(StCsr) csr = (StCsr *) ASN1_item_d2i (NULL, &p, (long) len, ASN1_ITEM_rptr (StCsr));
  if (csr == NULL)
    {
      st_error_set_openssl (error, ST_ERROR_INVALID_DATA,
                            "the device's key request is not a DER PKCS#10 request (it does not parse)");
      return NULL;
    }
  if (p != data + len)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "the device's key request has %" G_GSIZE_FORMAT " bytes of garbage after it (%" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes parsed)",
                   (gsize) (data + len - p), (gsize) (p - data), len);
      return NULL;
    }
  /* Canonical DER, the signed part included: the whole request re-encodes
   * to the bytes received, and so do the signed part's own fields (marked
   * modified, it is encoded afresh instead of from the bytes kept at
   * parsing, which the signature check then uses). The subject name is the
   * exception: OpenSSL keeps a name as it was received and encodes it so;
   * the station ignores it. */
  StCsrInfo *info = csr->info;
  gboolean canonical = info->enc.enc != NULL && encodes_to (csr, ASN1_ITEM_rptr (StCsr), data, len);
  if (canonical)
    {
      info->enc.modified = 1;
      canonical = encodes_to (info, ASN1_ITEM_rptr (StCsrInfo), info->enc.enc, (gsize) info->enc.len);
      info->enc.modified = 0;
    }
  if (!canonical)
    {
      st_error_clear_openssl ();
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "the device's key request is not in canonical DER (re-encoding gives other bytes)");
      return NULL;
    }
  long version = ASN1_INTEGER_get (info->version);
  if (version != X509_REQ_VERSION_1)
    {
      st_error_clear_openssl ();
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "the device's key request has version %ld; PKCS#10 version 1 (0) is required", version);
      return NULL;
    }

  const StCsrSpki *spki = info->spki;
  if (!check_key_algorithm (spki->algorithm, alg, error))
    return NULL;
  /* The key is whole octets: a BIT STRING with unused bits is no key. */
  if ((spki->key->flags & ASN1_STRING_FLAG_BITS_LEFT) != 0 && (spki->key->flags & 0x07) != 0)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "the device's public key is not a whole number of bytes (its BIT STRING has unused bits)");
      return NULL;
    }
  g_autoptr(EVP_PKEY) key = st_spki_parts_to_key (spki->algorithm, ASN1_STRING_get0_data (spki->key),
                                                  ASN1_STRING_length (spki->key));
  if (key == NULL)
    {
      st_error_set_openssl (error, ST_ERROR_INVALID_DATA,
                            "the device's public key cannot be decoded (not a point on the curve, or not an Ed25519 key)");
      return NULL;
    }
  /* EVP_PKEY_fromdata already refused a point off the curve; the check
   * adds the range and infinity tests. P-256 and P-384 have cofactor 1, so
   * every such point has the group's order, and the full check's extra
   * n*Q = O multiplication proves nothing more (SP 800-56A 5.6.2.3.3). */
  g_autoptr(EVP_PKEY_CTX) pctx = EVP_PKEY_CTX_new_from_pkey (NULL, key, NULL);
  int valid = pctx == NULL ? 0
              : alg == ST_ALG_ED25519 ? EVP_PKEY_public_check (pctx)
                                      : EVP_PKEY_public_check_quick (pctx);
  if (valid != 1)
    {
      st_error_set_openssl (error, ST_ERROR_INVALID_DATA,
                            "the device's public key is not a valid point (EVP_PKEY_public_check)");
      return NULL;
    }

  if (!check_signature_algorithm (csr->sig_alg, error))
    return NULL;

  /* What X509_REQ_verify() does: the signature over the
   * CertificationRequestInfo as received, with the request's own key. */
  int rc = ASN1_item_verify_ex (ASN1_ITEM_rptr (StCsrInfo), csr->sig_alg, csr->signature,
                                csr->info, NULL, key, NULL, NULL);
  if (rc != 1)
    {
      g_autofree gchar *what = g_strdup_printf (
          "the device's key request is not validly signed (signature check returned %d)", rc);
      st_error_set_openssl (error, ST_ERROR_INVALID_DATA, what);
      return NULL;
    }
  return g_steal_pointer (&key);
}
