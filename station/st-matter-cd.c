#include "st-matter-cd.h"

#include <glib/gi18n.h>
#include <inttypes.h>
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
#define ST_TLV_UINT64 0x07
#define ST_TLV_UTF8_1 0x0c   /* UTF-8 string, 1-byte length */
#define ST_TLV_OCTETS_1 0x10 /* octet string, 1-byte length */
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
  if (cd->n_authorized_paas > ST_MATTER_CD_MAX_PAAS || (cd->n_authorized_paas > 0 && cd->authorized_paas == NULL))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "a Certification Declaration's authorized_paa_list holds 1 to %d PAA key identifiers, not %"
                   G_GSIZE_FORMAT, ST_MATTER_CD_MAX_PAAS, cd->n_authorized_paas);
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
  if (cd->has_dac_origin)
    {
      st_tlv_uint (out, 9, cd->dac_origin_vendor_id);
      st_tlv_uint (out, 10, cd->dac_origin_product_id);
    }
  if (cd->n_authorized_paas > 0)
    {
      st_tlv_head (out, 11, ST_TLV_ARRAY);
      for (gsize i = 0; i < cd->n_authorized_paas; i++)
        {
          guint8 h[2] = { ST_TLV_TAG_ANONYMOUS | ST_TLV_OCTETS_1, ST_MATTER_CD_SKID_LEN };
          g_byte_array_append (out, h, 2);
          g_byte_array_append (out, cd->authorized_paas + i * ST_MATTER_CD_SKID_LEN, ST_MATTER_CD_SKID_LEN);
        }
      st_tlv_end (out);
    }
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

/* ---- reading ---------------------------------------------------------- */

/* The CD's elements by context tag (Core spec 6.3.1, the names of the
 * spec's certification-elements; protocol names, not translated). */
static const char *const st_cd_field[] = {
  "format_version", "vendor_id", "product_id_array", "device_type_id", "certificate_id",
  "security_level", "security_information", "version_number", "certification_type",
  "dac_origin_vendor_id", "dac_origin_product_id", "authorized_paa_list",
};
#define ST_CD_LAST_TAG 11
#define ST_CD_REQUIRED 0x1ffu /* tags 0..8 */

/* A cursor over the TLV: every read is checked against what is left. */
typedef struct {
  const guint8 *start;
  const guint8 *p;
  gsize left;
  gboolean canonical;
} StTlvReader;

static gboolean st_cd_fail (GError **error, const StTlvReader *r, const char *format, ...) G_GNUC_PRINTF (3, 4);

static gboolean
st_cd_fail (GError **error, const StTlvReader *r, const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  g_autofree gchar *what = g_strdup_vprintf (format, ap);
  va_end (ap);
  g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
               _("the Certification Declaration's content (Matter TLV) is malformed at byte %zu: %s"), (gsize) (r->p - r->start), what);
  return FALSE;
}

static void
st_tlv_skip (StTlvReader *r, gsize n)
{
  r->p += n;
  r->left -= n;
}

/* A control byte and its tag: *tag -1 for an anonymous one, else the
 * context tag (0..255). Other tag forms have no place in a CD. */
static gboolean
st_tlv_read_head (StTlvReader *r, int *tag, guint8 *type, GError **error)
{
  if (r->left < 1)
    return st_cd_fail (error, r, _("the content ends before its structure is closed"));
  guint8 c = r->p[0];
  guint8 tag_control = c & 0xe0;
  *type = c & 0x1f;
  if (*type > ST_TLV_END)
    return st_cd_fail (error, r, _("element type 0x%02X does not exist"), *type);
  if (tag_control == ST_TLV_TAG_ANONYMOUS)
    {
      *tag = -1;
      st_tlv_skip (r, 1);
      return TRUE;
    }
  if (tag_control != ST_TLV_TAG_CONTEXT)
    return st_cd_fail (error, r, _("control byte 0x%02X has a tag form other than anonymous or "
                                   "context-specific"), c);
  if (r->left < 2)
    return st_cd_fail (error, r, _("the content ends inside a tag"));
  *tag = r->p[1];
  st_tlv_skip (r, 2);
  return TRUE;
}

/* An unsigned integer of 1, 2, 4 or 8 bytes, little-endian, at most @max. */
static gboolean
st_tlv_read_uint (StTlvReader *r, guint8 type, guint64 max, const char *field, guint64 *v,
                  GError **error)
{
  if (type < ST_TLV_UINT8 || type > ST_TLV_UINT64)
    return st_cd_fail (error, r, _("%s is not an unsigned integer (element type 0x%02X)"), field, type);
  gsize n = (gsize) 1 << (type - ST_TLV_UINT8);
  if (r->left < n)
    return st_cd_fail (error, r, _("%s is cut short"), field);
  guint64 x = 0;
  for (gsize i = 0; i < n; i++)
    x |= (guint64) r->p[i] << (8 * i);
  if (x > max)
    return st_cd_fail (error, r, _("%s is %" PRIu64 ", more than its maximum %" PRIu64),
                       field, x, max);
  /* the fewest bytes: what st_tlv_uint() writes */
  if (n > 1 && x <= (G_MAXUINT64 >> (64 - 4 * n)))
    r->canonical = FALSE;
  st_tlv_skip (r, n);
  *v = x;
  return TRUE;
}

/* The next element of an array: FALSE with no error at its end. */
static gboolean
st_tlv_array_next (StTlvReader *r, const char *field, guint8 *type, gboolean *end, GError **error)
{
  int tag;
  if (!st_tlv_read_head (r, &tag, type, error))
    return FALSE;
  if (tag >= 0)
    return st_cd_fail (error, r, _("an element of %s has a tag (an array's elements are anonymous)"), field);
  *end = *type == ST_TLV_END;
  return TRUE;
}

static gboolean
st_cd_read_pids (StTlvReader *r, guint16 *pids, gsize *n, GError **error)
{
  const char *field = st_cd_field[2];
  *n = 0;
  for (;;)
    {
      guint8 type;
      gboolean end;
      if (!st_tlv_array_next (r, field, &type, &end, error))
        return FALSE;
      if (end)
        break;
      if (*n == ST_MATTER_CD_MAX_PIDS)
        return st_cd_fail (error, r, _("product_id_array holds more than %d product IDs"), ST_MATTER_CD_MAX_PIDS);
      guint64 v;
      if (!st_tlv_read_uint (r, type, G_MAXUINT16, field, &v, error))
        return FALSE;
      pids[(*n)++] = (guint16) v;
    }
  if (*n == 0)
    return st_cd_fail (error, r, _("product_id_array is empty; it holds 1 to %d product IDs"), ST_MATTER_CD_MAX_PIDS);
  return TRUE;
}

static gboolean
st_cd_read_paas (StTlvReader *r, guint8 *paas, gsize *n, GError **error)
{
  const char *field = st_cd_field[11];
  *n = 0;
  for (;;)
    {
      guint8 type;
      gboolean end;
      if (!st_tlv_array_next (r, field, &type, &end, error))
        return FALSE;
      if (end)
        break;
      if (*n == ST_MATTER_CD_MAX_PAAS)
        return st_cd_fail (error, r, _("authorized_paa_list holds more than %d PAA key identifiers"),
                           ST_MATTER_CD_MAX_PAAS);
      if (type != ST_TLV_OCTETS_1)
        return st_cd_fail (error, r, _("an entry of authorized_paa_list is not an octet string with a 1-byte "
                                       "length (element type 0x%02X)"), type);
      if (r->left < 1 || r->p[0] != ST_MATTER_CD_SKID_LEN)
        return st_cd_fail (error, r, _("an entry of authorized_paa_list is not a key identifier of %d bytes"),
                           ST_MATTER_CD_SKID_LEN);
      st_tlv_skip (r, 1);
      if (r->left < ST_MATTER_CD_SKID_LEN)
        return st_cd_fail (error, r, _("an entry of authorized_paa_list is cut short"));
      memcpy (paas + *n * ST_MATTER_CD_SKID_LEN, r->p, ST_MATTER_CD_SKID_LEN);
      st_tlv_skip (r, ST_MATTER_CD_SKID_LEN);
      (*n)++;
    }
  if (*n == 0)
    return st_cd_fail (error, r, _("authorized_paa_list is empty; when present it holds 1 to %d PAA key "
                                   "identifiers"), ST_MATTER_CD_MAX_PAAS);
  return TRUE;
}

static gboolean
st_cd_read_cert_id (StTlvReader *r, guint8 type, char *id, GError **error)
{
  if (type != ST_TLV_UTF8_1)
    return st_cd_fail (error, r, _("certificate_id is not a UTF-8 string with a 1-byte length (element type 0x%02X)"),
                       type);
  if (r->left < 1)
    return st_cd_fail (error, r, _("certificate_id is cut short"));
  gsize n = r->p[0];
  if (n != ST_MATTER_CD_CERT_ID_LEN)
    return st_cd_fail (error, r, _("certificate_id is %zu characters; it is exactly %d"),
                       n, ST_MATTER_CD_CERT_ID_LEN);
  st_tlv_skip (r, 1);
  if (r->left < n)
    return st_cd_fail (error, r, _("certificate_id is cut short"));
  for (gsize i = 0; i < n; i++)
    if (!g_ascii_isprint (r->p[i]))
      return st_cd_fail (error, r, _("certificate_id holds a byte that is no printable ASCII character"));
  memcpy (id, r->p, n);
  id[n] = '\0';
  st_tlv_skip (r, n);
  return TRUE;
}

gboolean
st_matter_cd_parse_tlv (const guint8 *tlv, gsize len, StMatterCd *out, gboolean *canonical, GError **error)
{
  g_return_val_if_fail ((tlv != NULL || len == 0) && out != NULL, FALSE);
  memset (out, 0, sizeof *out);
  if (canonical != NULL)
    *canonical = FALSE;
  StTlvReader r = { tlv, tlv, len, TRUE };
  int tag;
  guint8 type;
  if (!st_tlv_read_head (&r, &tag, &type, error))
    return FALSE;
  if (tag != -1 || type != ST_TLV_STRUCTURE)
    return st_cd_fail (error, &r, _("the content is not an anonymous structure"));

  g_autofree guint16 *pids = g_new0 (guint16, ST_MATTER_CD_MAX_PIDS);
  g_autofree guint8 *paas = g_malloc0 (ST_MATTER_CD_MAX_PAAS * ST_MATTER_CD_SKID_LEN);
  g_autofree char *cert_id = g_malloc0 (ST_MATTER_CD_CERT_ID_LEN + 1);
  gsize n_pids = 0, n_paas = 0;
  guint64 v[ST_CD_LAST_TAG + 1] = { 0 };
  guint32 seen = 0;
  int last = -1;
  /* the maximum of each integer element (0: not an integer) */
  static const guint64 max[ST_CD_LAST_TAG + 1] = {
    G_MAXUINT16, G_MAXUINT16, 0, G_MAXUINT32, 0, G_MAXUINT8,
    G_MAXUINT16, G_MAXUINT16, 2, G_MAXUINT16, G_MAXUINT16, 0,
  };
  for (;;)
    {
      if (!st_tlv_read_head (&r, &tag, &type, error))
        return FALSE;
      if (type == ST_TLV_END && tag == -1)
        break;
      if (type == ST_TLV_END)
        return st_cd_fail (error, &r, _("an end of container with a tag (0x%02X)"), (guint) tag);
      if (tag < 0)
        return st_cd_fail (error, &r, _("an element of the structure has no context tag"));
      if (tag > ST_CD_LAST_TAG)
        return st_cd_fail (error, &r, _("tag %d is no element of a Certification Declaration"), tag);
      if ((seen & (1u << tag)) != 0)
        return st_cd_fail (error, &r, _("%s (tag %d) appears twice"), st_cd_field[tag], tag);
      if (tag < last)
        return st_cd_fail (error, &r, _("%s (tag %d) comes after tag %d: the elements are in ascending order"),
                           st_cd_field[tag], tag, last);
      seen |= 1u << tag;
      last = tag;
      gboolean ok;
      if (tag == 2 || tag == 11)
        {
          if (type != ST_TLV_ARRAY)
            return st_cd_fail (error, &r, _("%s is not an array (element type 0x%02X)"), st_cd_field[tag], type);
          ok = tag == 2 ? st_cd_read_pids (&r, pids, &n_pids, error) : st_cd_read_paas (&r, paas, &n_paas, error);
        }
      else if (tag == 4)
        ok = st_cd_read_cert_id (&r, type, cert_id, error);
      else
        ok = st_tlv_read_uint (&r, type, max[tag], st_cd_field[tag], &v[tag], error);
      if (!ok)
        return FALSE;
    }
  if (r.left != 0)
    return st_cd_fail (error, &r, _("there are trailing bytes after the end of the structure (%zu)"), r.left);
  for (int t = 0; t <= 8; t++)
    if ((seen & (1u << t)) == 0)
      return st_cd_fail (error, &r, _("the required element %s (tag %d) is missing"), st_cd_field[t], t);
  if (((seen >> 9) & 1u) != ((seen >> 10) & 1u))
    return st_cd_fail (error, &r, _("dac_origin_vendor_id and dac_origin_product_id come together or not at all"));
  if (v[0] != 1)
    return st_cd_fail (error, &r, _("format_version is %" PRIu64 "; this station reads version 1"), v[0]);

  out->format_version = (guint16) v[0];
  out->vendor_id = (guint16) v[1];
  out->n_product_ids = n_pids;
  out->product_ids = g_steal_pointer (&pids);
  out->device_type_id = (guint32) v[3];
  out->certificate_id = g_steal_pointer (&cert_id);
  out->security_level = (guint8) v[5];
  out->security_information = (guint16) v[6];
  out->version_number = (guint16) v[7];
  out->certification_type = (guint8) v[8];
  out->has_dac_origin = (seen & (1u << 9)) != 0;
  out->dac_origin_vendor_id = (guint16) v[9];
  out->dac_origin_product_id = (guint16) v[10];
  out->n_authorized_paas = n_paas;
  if (n_paas > 0)
    out->authorized_paas = g_steal_pointer (&paas);
  if (canonical != NULL)
    *canonical = r.canonical;
  return TRUE;
}

gboolean
st_matter_cd_parse (GBytes *cms_der, StMatterCd *out, GError **error)
{
  g_return_val_if_fail (cms_der != NULL && out != NULL, FALSE);
  memset (out, 0, sizeof *out);
  gsize len = 0;
  const unsigned char *data = g_bytes_get_data (cms_der, &len);
  if (len == 0 || len > G_MAXINT32)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("the Certification Declaration is %zu bytes: no CMS SignedData"), len);
      return FALSE;
    }
  ERR_clear_error ();
  const unsigned char *q = data;
  CMS_ContentInfo *cms = d2i_CMS_ContentInfo (NULL, &q, (long) len);
  const char *problem = NULL;
  if (cms == NULL || q != data + len || OBJ_obj2nid (CMS_get0_type (cms)) != NID_pkcs7_signed)
    problem = _("the Certification Declaration is not one DER CMS SignedData");
  else if (OBJ_obj2nid (CMS_get0_eContentType (cms)) != NID_pkcs7_data)
    problem = _("the Certification Declaration's encapsulated content is not of type id-data");
  ASN1_OCTET_STRING **content = problem == NULL ? CMS_get0_content (cms) : NULL;
  if (problem == NULL && (content == NULL || *content == NULL))
    problem = _("the Certification Declaration's CMS has no content inside (detached); a CD carries its content");
  g_autoptr(GBytes) tlv = NULL;
  if (problem == NULL)
    tlv = g_bytes_new (ASN1_STRING_get0_data (*content), (gsize) ASN1_STRING_length (*content));
  CMS_ContentInfo_free (cms);
  ERR_clear_error ();
  if (problem != NULL)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA, problem);
      return FALSE;
    }
  gsize tlv_len = 0;
  const guint8 *tlv_data = g_bytes_get_data (tlv, &tlv_len);
  return st_matter_cd_parse_tlv (tlv_data, tlv_len, out, NULL, error);
}

void
st_matter_cd_clear (StMatterCd *cd)
{
  if (cd == NULL)
    return;
  g_free ((gpointer) cd->product_ids);
  g_free ((gpointer) cd->certificate_id);
  g_free ((gpointer) cd->authorized_paas);
  memset (cd, 0, sizeof *cd);
}

gboolean
st_matter_cd_check_product (const StMatterCd *cd, const char *file, guint16 vid, guint16 pid, GError **error)
{
  g_return_val_if_fail (cd != NULL && file != NULL, FALSE);
  gboolean has_pid = FALSE;
  g_autoptr(GString) pids = g_string_new (NULL);
  for (gsize i = 0; i < cd->n_product_ids; i++)
    {
      has_pid = has_pid || cd->product_ids[i] == pid;
      g_string_append_printf (pids, "%s%04X", i > 0 ? ", " : "", cd->product_ids[i]);
    }
  if (cd->vendor_id != vid || !has_pid)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   _("the Certification Declaration %s is for VID %04X and PID %s, not for this profile's "
                     "product (VID %04X, PID %04X): every commissioner would refuse the devices. Name in "
                     "[matter] certification-declaration the CD the CSA issued for this product"),
                   file, cd->vendor_id, pids->str, vid, pid);
      return FALSE;
    }
  if (cd->has_dac_origin && (cd->dac_origin_vendor_id != vid || cd->dac_origin_product_id != pid))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   _("the Certification Declaration %s names DACs of another product (dac_origin VID %04X, "
                     "PID %04X) while the station issues this profile's DACs with VID %04X and PID %04X: "
                     "every commissioner would refuse the devices. Name in [matter] "
                     "certification-declaration the CD the CSA issued for this product"),
                   file, cd->dac_origin_vendor_id, cd->dac_origin_product_id, vid, pid);
      return FALSE;
    }
  return TRUE;
}

gboolean
st_matter_cd_check_paa (const StMatterCd *cd, const char *file, X509 *paa, GError **error)
{
  g_return_val_if_fail (cd != NULL && file != NULL && paa != NULL, FALSE);
  if (cd->n_authorized_paas == 0)
    return TRUE;
  const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id (paa);
  if (skid != NULL && ASN1_STRING_length (skid) == ST_MATTER_CD_SKID_LEN)
    for (gsize i = 0; i < cd->n_authorized_paas; i++)
      if (memcmp (cd->authorized_paas + i * ST_MATTER_CD_SKID_LEN, ASN1_STRING_get0_data (skid),
                  ST_MATTER_CD_SKID_LEN) == 0)
        return TRUE;
  g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
               _("the Certification Declaration %s allows only the PAAs its authorized_paa_list names, and "
                 "the station's PAA is not one of them: every commissioner would refuse the devices. Name in "
                 "[matter] certification-declaration a CD that authorizes this station's PAA, or issue under "
                 "a PAA it lists"), file);
  return FALSE;
}

GBytes *
st_matter_cd_load_for_profile (const StProfile *profile, X509 *paa, char **development_note, GError **error)
{
  g_return_val_if_fail (profile != NULL && profile->matter.enabled, NULL);
  if (development_note != NULL)
    *development_note = NULL;
  const char *file = profile->matter.certification_declaration;
  g_autoptr(GBytes) der = st_profile_load_certification_declaration (profile, error);
  if (der == NULL)
    return NULL;
  StMatterCd cd;
  g_autoptr(GError) local = NULL;
  if (!st_matter_cd_parse (der, &cd, &local))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("%s: [matter] certification-declaration %s cannot be read: %s. Give the Certification "
                     "Declaration file as the CSA issued it"), profile->path, file, local->message);
      return NULL;
    }
  gboolean ok = st_matter_cd_check_product (&cd, file, profile->matter.vendor_id, profile->matter.product_id, &local)
                && (paa == NULL || st_matter_cd_check_paa (&cd, file, paa, &local));
  gboolean development = cd.certification_type == ST_MATTER_CD_TYPE_DEVELOPMENT;
  st_matter_cd_clear (&cd);
  if (!ok)
    {
      g_set_error (error, ST_ERROR, local->code, "%s: [matter] %s", profile->path, local->message);
      return NULL;
    }
  if (development && development_note != NULL)
    *development_note = g_strdup_printf (_("The Certification Declaration %s is a development and test CD "
                                           "(certification type 0): fine for trials, not for shipping products."),
                                         file);
  return g_steal_pointer (&der);
}
