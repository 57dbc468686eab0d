#include "st-matter-cd.h"

#include <openssl/cms.h>
#include <openssl/err.h>
#include <string.h>

#include "st-error.h"
#include "st-ossl.h"

/* Matter TLV (Core spec appendix A): a control byte, the tag control in
 * its upper 3 bits and the element type in its lower 5, then the tag,
 * then the value; integers little-endian. */
#define ST_TLV_TAG_ANONYMOUS 0x00
#define ST_TLV_TAG_CONTEXT 0x20
#define ST_TLV_UINT8 0x04
#define ST_TLV_UINT16 0x05
#define ST_TLV_UINT32 0x06
#define ST_TLV_UTF8_1 0x0c   /* UTF-8 string, 1-byte length */
#define ST_TLV_STRUCTURE 0x15
#define ST_TLV_ARRAY 0x16
#define ST_TLV_END 0x18

/* The control byte and, for a context tag, the tag number. */
static void
st_tlv_head (GByteArray *out, int tag, guint8 type)
{
  if (tag < 0)
    {
      guint8 c = ST_TLV_TAG_ANONYMOUS | type;
      g_byte_array_append (out, &c, 1);
      return;
    }
  guint8 b[2] = { ST_TLV_TAG_CONTEXT | type, (guint8) tag };
  g_byte_array_append (out, b, 2);
}

/* An unsigned integer in the fewest of 1, 2 or 4 bytes; @tag < 0: anonymous. */
static void
st_tlv_uint (GByteArray *out, int tag, guint32 v)
{
  guint8 le[4] = { (guint8) v, (guint8) (v >> 8), (guint8) (v >> 16), (guint8) (v >> 24) };
  if (v <= 0xff)
    {
      st_tlv_head (out, tag, ST_TLV_UINT8);
      g_byte_array_append (out, le, 1);
    }
  else if (v <= 0xffff)
    {
      st_tlv_head (out, tag, ST_TLV_UINT16);
      g_byte_array_append (out, le, 2);
    }
  else
    {
      st_tlv_head (out, tag, ST_TLV_UINT32);
      g_byte_array_append (out, le, 4);
    }
}

static void
st_tlv_end (GByteArray *out)
{
  guint8 e = ST_TLV_END;
  g_byte_array_append (out, &e, 1);
}

GBytes *
st_matter_cd_encode (const StMatterCd *cd, GError **error)
{
  g_return_val_if_fail (cd != NULL, NULL);
  if (cd->n_product_ids == 0 || cd->n_product_ids > ST_MATTER_CD_MAX_PIDS || cd->product_ids == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "a Certification Declaration names 1 to %d product IDs (product_id_array), not %"
                   G_GSIZE_FORMAT, ST_MATTER_CD_MAX_PIDS, cd->n_product_ids);
      return NULL;
    }
  gsize id_len = cd->certificate_id != NULL ? strlen (cd->certificate_id) : 0;
  gboolean id_ok = id_len == ST_MATTER_CD_CERT_ID_LEN;
  for (gsize i = 0; id_ok && i < id_len; i++)
    id_ok = g_ascii_isprint (cd->certificate_id[i]);
  if (!id_ok)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "a Certification Declaration's certificate_id is exactly %d printable ASCII "
                   "characters (e.g. ZIG20142ZB330003-24)", ST_MATTER_CD_CERT_ID_LEN);
      return NULL;
    }
  if (cd->certification_type > 2)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "a Certification Declaration's certification_type is 0 (development and test), "
                   "1 (provisional) or 2 (official), not %u", cd->certification_type);
      return NULL;
    }
  g_autoptr(GByteArray) out = g_byte_array_new ();
  st_tlv_head (out, -1, ST_TLV_STRUCTURE);
  st_tlv_uint (out, 0, cd->format_version);
  st_tlv_uint (out, 1, cd->vendor_id);
  st_tlv_head (out, 2, ST_TLV_ARRAY);
  for (gsize i = 0; i < cd->n_product_ids; i++)
    st_tlv_uint (out, -1, cd->product_ids[i]);
  st_tlv_end (out);
  st_tlv_uint (out, 3, cd->device_type_id);
  st_tlv_head (out, 4, ST_TLV_UTF8_1);
  guint8 len = (guint8) id_len;
  g_byte_array_append (out, &len, 1);
  g_byte_array_append (out, (const guint8 *) cd->certificate_id, (guint) id_len);
  st_tlv_uint (out, 5, cd->security_level);
  st_tlv_uint (out, 6, cd->security_information);
  st_tlv_uint (out, 7, cd->version_number);
  st_tlv_uint (out, 8, cd->certification_type);
  st_tlv_end (out);
  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}

GBytes *
st_matter_cd_sign (GBytes *content, X509 *signer, EVP_PKEY *key, GError **error)
{
  g_return_val_if_fail (content != NULL && signer != NULL && key != NULL, NULL);
  if (X509_get0_subject_key_id (signer) == NULL)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "the Certification Declaration's signer has no subjectKeyIdentifier: the "
                           "CMS names its signer by it (Matter Core spec 6.3.1)");
      return NULL;
    }
  gsize len = 0;
  const void *data = g_bytes_get_data (content, &len);
  const unsigned int flags = CMS_BINARY | CMS_NOCERTS | CMS_NOATTR | CMS_USE_KEYID | CMS_NOSMIMECAP;
  ERR_clear_error ();
  g_autoptr(BIO) in = BIO_new_mem_buf (data, (int) len);
  CMS_ContentInfo *cms = in != NULL ? CMS_sign (NULL, NULL, NULL, NULL, flags | CMS_PARTIAL) : NULL;
  gboolean ok = cms != NULL && CMS_add1_signer (cms, signer, key, EVP_sha256 (), flags) != NULL
                && CMS_final (cms, in, NULL, flags) == 1;
  unsigned char *der = NULL;
  int der_len = ok ? i2d_CMS_ContentInfo (cms, &der) : 0;
  CMS_ContentInfo_free (cms);
  if (der_len <= 0)
    {
      OPENSSL_free (der);
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "cannot sign the Certification Declaration (CMS)");
      return NULL;
    }
  g_autoptr(GBytes) result = g_bytes_new (der, (gsize) der_len);
  OPENSSL_free (der);

  /* read back: one SignedData, the signer named by its key id, the
   * signature good, the content what was signed */
  const unsigned char *q = g_bytes_get_data (result, NULL);
  CMS_ContentInfo *back = d2i_CMS_ContentInfo (NULL, &q, der_len);
  STACK_OF (CMS_SignerInfo) *sis = back != NULL ? CMS_get0_SignerInfos (back) : NULL;
  ASN1_OCTET_STRING *keyid = NULL;
  ok = sis != NULL && sk_CMS_SignerInfo_num (sis) == 1
       && CMS_SignerInfo_get0_signer_id (sk_CMS_SignerInfo_value (sis, 0), &keyid, NULL, NULL) == 1
       && keyid != NULL && ASN1_OCTET_STRING_cmp (keyid, X509_get0_subject_key_id (signer)) == 0;
  g_autoptr(BIO) out = BIO_new (BIO_s_mem ());
  STACK_OF (X509) *certs = sk_X509_new_null ();
  if (ok && certs != NULL && sk_X509_push (certs, signer) > 0)
    ok = CMS_verify (back, certs, NULL, NULL, out, CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY) == 1;
  else
    ok = FALSE;
  sk_X509_free (certs);
  CMS_ContentInfo_free (back);
  char *got = NULL;
  long got_len = ok ? BIO_get_mem_data (out, &got) : 0;
  if (!ok || got_len != (long) len || memcmp (got, data, len) != 0)
    {
      st_error_set_openssl (error, ST_ERROR_VERIFY_FAILED,
                            "the signed Certification Declaration does not verify with its signer");
      return NULL;
    }
  return g_steal_pointer (&result);
}
