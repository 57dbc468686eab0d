/* The Certification Declaration reader and its check (issue 18;
 * docs/matter.md, "What the station checks in the Certification
 * Declaration"):
 *
 * /matter-cd/tlv-vectors: hand-derived TLV vectors (the demo's CD, one
 *   with two PIDs, dac_origin and an authorized_paa_list, one with
 *   integers wider than needed) read field by field, and the encoder
 *   writing the canonical ones back byte for byte;
 * /matter-cd/tlv-refusals: trailing bytes, a duplicate tag, tags out of
 *   order, an unknown tag, a missing element, each field out of range or
 *   of the wrong type, other tag forms, every truncation of a good vector;
 *   each refusal naming what is wrong;
 * /matter-cd/cms: the CMS around it: a CD signed by st_matter_cd_sign and
 *   one by stock `openssl cms` read back; detached content, another
 *   eContentType, trailing bytes after the DER and no CMS refused;
 * /matter-cd/product: the check against a profile's VID and PID (another
 *   PID, another VID, dac_origin equal and different), and
 *   st_matter_cd_load_for_profile on files: the development note for type
 *   0 and none for type 2, the refusal naming the profile, the file and
 *   both sets of IDs; an authorized_paa_list with and without the PAA. */
#include <glib/gstdio.h>
#include <openssl/cms.h>
#include <openssl/ec.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "st-error.h"
#include "st-matter-cd.h"
#include "st-profile.h"

/* The demo's CD: control byte = tag control (000 anonymous, 001
 * context-specific: 0x20) | element type (0x04 uint8, 0x05 uint16, 0x06
 * uint32, 0x07 uint64, 0x0C UTF-8 string with a 1-byte length, 0x10
 * octet string with a 1-byte length, 0x15 structure, 0x16 array, 0x18 end
 * of container); integers little-endian. */
static const guint8 demo_tlv[] = {
  0x15,                         /* anonymous structure */
  0x24, 0x00, 0x01,             /* [0] format_version 1 (uint8) */
  0x25, 0x01, 0xf1, 0xff,       /* [1] vendor_id 0xFFF1 (uint16) */
  0x36, 0x02,                   /* [2] product_id_array (array) */
  0x05, 0x00, 0x80,             /*     0x8000 (anonymous uint16) */
  0x18,                         /*     end of the array */
  0x25, 0x03, 0x00, 0x01,       /* [3] device_type_id 0x0100 (uint16) */
  0x2c, 0x04, 0x13,             /* [4] certificate_id, UTF-8, 19 bytes */
  'Z', 'I', 'G', '2', '0', '1', '4', '2', 'Z', 'B', '3', '3', '0', '0', '0', '3', '-', '2', '4',
  0x24, 0x05, 0x00,             /* [5] security_level 0 */
  0x24, 0x06, 0x00,             /* [6] security_information 0 */
  0x24, 0x07, 0x01,             /* [7] version_number 1 */
  0x24, 0x08, 0x00,             /* [8] certification_type 0 (development) */
  0x18,                         /* end of the structure */
};

/* Two PIDs, an official CD with dac_origin and one authorized PAA. */
static const guint8 full_tlv[] = {
  0x15,                               /* anonymous structure */
  0x24, 0x00, 0x01,                   /* [0] format_version 1 */
  0x25, 0x01, 0xf2, 0xff,             /* [1] vendor_id 0xFFF2 */
  0x36, 0x02,                         /* [2] product_id_array */
  0x05, 0x01, 0x80,                   /*     0x8001 */
  0x05, 0x02, 0x80,                   /*     0x8002 */
  0x18,                               /*     end */
  0x26, 0x03, 0x01, 0x00, 0x01, 0x00, /* [3] device_type_id 0x00010001 (uint32) */
  0x2c, 0x04, 0x13,                   /* [4] certificate_id, 19 bytes */
  'C', 'S', 'A', '0', '0', '0', '0', '0', 'S', 'W', 'C', '0', '0', '0', '0', '0', '-', '0', '1',
  0x24, 0x05, 0x00,                   /* [5] security_level 0 */
  0x24, 0x06, 0x00,                   /* [6] security_information 0 */
  0x25, 0x07, 0x94, 0x26,             /* [7] version_number 0x2694 (uint16) */
  0x24, 0x08, 0x02,                   /* [8] certification_type 2 (official) */
  0x25, 0x09, 0xf1, 0xff,             /* [9] dac_origin_vendor_id 0xFFF1 */
  0x25, 0x0a, 0x00, 0x80,             /* [10] dac_origin_product_id 0x8000 */
  0x36, 0x0b,                         /* [11] authorized_paa_list (array) */
  0x10, 0x14,                         /*     octet string, 20 bytes: a PAA's key id */
  0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
  0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14,
  0x18,                               /*     end */
  0x18,                               /* end of the structure */
};

/* The demo's CD with its integers wider than needed: still a CD, but not
 * the encoder's spelling. */
static const guint8 wide_tlv[] = {
  0x15,
  0x25, 0x00, 0x01, 0x00,                               /* [0] 1 as uint16 */
  0x26, 0x01, 0xf1, 0xff, 0x00, 0x00,                   /* [1] 0xFFF1 as uint32 */
  0x36, 0x02, 0x07, 0x00, 0x80, 0, 0, 0, 0, 0, 0, 0x18, /* [2] 0x8000 as uint64 */
  0x25, 0x03, 0x00, 0x01,
  0x2c, 0x04, 0x13,
  'Z', 'I', 'G', '2', '0', '1', '4', '2', 'Z', 'B', '3', '3', '0', '0', '0', '3', '-', '2', '4',
  0x24, 0x05, 0x00, 0x24, 0x06, 0x00, 0x24, 0x07, 0x01,
  0x25, 0x08, 0x00, 0x00,                               /* [8] 0 as uint16 */
  0x18,
};

/* The offset of the first element with context tag @tag in demo_tlv. */
static gsize
demo_offset (guint8 tag)
{
  for (gsize i = 1; i + 1 < sizeof demo_tlv; i++)
    if ((demo_tlv[i] & 0xe0) == 0x20 && demo_tlv[i + 1] == tag)
      return i;
  g_assert_not_reached ();
}

static void
assert_same (GBytes *b, const guint8 *want, gsize want_len)
{
  gsize n = 0;
  const guint8 *d = g_bytes_get_data (b, &n);
  g_assert_cmpmem (d, n, want, want_len);
}

static void
test_tlv_vectors (void)
{
  g_autoptr(GError) error = NULL;
  StMatterCd cd;
  gboolean canonical = FALSE;

  g_assert_true (st_matter_cd_parse_tlv (demo_tlv, sizeof demo_tlv, &cd, &canonical, &error));
  g_assert_no_error (error);
  g_assert_true (canonical);
  g_assert_cmpuint (cd.format_version, ==, 1);
  g_assert_cmphex (cd.vendor_id, ==, 0xFFF1);
  g_assert_cmpuint (cd.n_product_ids, ==, 1);
  g_assert_cmphex (cd.product_ids[0], ==, 0x8000);
  g_assert_cmphex (cd.device_type_id, ==, 0x0100);
  g_assert_cmpstr (cd.certificate_id, ==, "ZIG20142ZB330003-24");
  g_assert_cmpuint (cd.security_level, ==, 0);
  g_assert_cmpuint (cd.security_information, ==, 0);
  g_assert_cmpuint (cd.version_number, ==, 1);
  g_assert_cmpuint (cd.certification_type, ==, ST_MATTER_CD_TYPE_DEVELOPMENT);
  g_assert_false (cd.has_dac_origin);
  g_assert_cmpuint (cd.n_authorized_paas, ==, 0);
  g_assert_null (cd.authorized_paas);
  g_autoptr(GBytes) again = st_matter_cd_encode (&cd, &error);
  g_assert_no_error (error);
  assert_same (again, demo_tlv, sizeof demo_tlv);
  st_matter_cd_clear (&cd);
  g_assert_null (cd.product_ids);

  g_assert_true (st_matter_cd_parse_tlv (full_tlv, sizeof full_tlv, &cd, &canonical, &error));
  g_assert_no_error (error);
  g_assert_true (canonical);
  g_assert_cmphex (cd.vendor_id, ==, 0xFFF2);
  g_assert_cmpuint (cd.n_product_ids, ==, 2);
  g_assert_cmphex (cd.product_ids[0], ==, 0x8001);
  g_assert_cmphex (cd.product_ids[1], ==, 0x8002);
  g_assert_cmphex (cd.device_type_id, ==, 0x00010001);
  g_assert_cmpstr (cd.certificate_id, ==, "CSA00000SWC00000-01");
  g_assert_cmphex (cd.version_number, ==, 0x2694);
  g_assert_cmpuint (cd.certification_type, ==, 2);
  g_assert_true (cd.has_dac_origin);
  g_assert_cmphex (cd.dac_origin_vendor_id, ==, 0xFFF1);
  g_assert_cmphex (cd.dac_origin_product_id, ==, 0x8000);
  g_assert_cmpuint (cd.n_authorized_paas, ==, 1);
  g_assert_cmpmem (cd.authorized_paas, ST_MATTER_CD_SKID_LEN, full_tlv + sizeof full_tlv - 22, 20);
  g_autoptr(GBytes) again_full = st_matter_cd_encode (&cd, &error);
  g_assert_no_error (error);
  assert_same (again_full, full_tlv, sizeof full_tlv);
  st_matter_cd_clear (&cd);

  /* wider integers: read, the same fields, not canonical; the encoder
   * writes the demo's bytes for them */
  g_assert_true (st_matter_cd_parse_tlv (wide_tlv, sizeof wide_tlv, &cd, &canonical, &error));
  g_assert_no_error (error);
  g_assert_false (canonical);
  g_assert_cmphex (cd.vendor_id, ==, 0xFFF1);
  g_assert_cmphex (cd.product_ids[0], ==, 0x8000);
  g_autoptr(GBytes) narrow = st_matter_cd_encode (&cd, &error);
  g_assert_no_error (error);
  assert_same (narrow, demo_tlv, sizeof demo_tlv);
  st_matter_cd_clear (&cd);

  /* 100 PIDs is the most: encoded, read back the same */
  guint16 many[ST_MATTER_CD_MAX_PIDS];
  for (guint i = 0; i < G_N_ELEMENTS (many); i++)
    many[i] = (guint16) (0x8000 + i);
  StMatterCd big = { .format_version = 1, .vendor_id = 0xFFF1, .product_ids = many,
                     .n_product_ids = G_N_ELEMENTS (many), .certificate_id = "ZIG20142ZB330003-24" };
  g_autoptr(GBytes) big_tlv = st_matter_cd_encode (&big, &error);
  g_assert_no_error (error);
  g_assert_true (st_matter_cd_parse_tlv (g_bytes_get_data (big_tlv, NULL), g_bytes_get_size (big_tlv), &cd,
                                         &canonical, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (cd.n_product_ids, ==, ST_MATTER_CD_MAX_PIDS);
  g_assert_cmpmem (cd.product_ids, sizeof many, many, sizeof many);
  st_matter_cd_clear (&cd);
}

/* @tlv is refused, the message holding @want. */
static void
assert_refused (const guint8 *tlv, gsize len, const char *want)
{
  g_autoptr(GError) error = NULL;
  StMatterCd cd;
  gboolean canonical = TRUE;
  g_assert_false (st_matter_cd_parse_tlv (tlv, len, &cd, &canonical, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  if (strstr (error->message, want) == NULL)
    g_error ("refusal \"%s\" lacks \"%s\"", error->message, want);
  g_assert_false (canonical);
  g_assert_null (cd.product_ids);
  g_assert_null (cd.certificate_id);
}

/* The demo's TLV with @n bytes at @at replaced by @with (@with_len bytes). */
static GByteArray *
demo_edit (gsize at, gsize n, const guint8 *with, gsize with_len)
{
  GByteArray *b = g_byte_array_new ();
  g_byte_array_append (b, demo_tlv, (guint) at);
  g_byte_array_append (b, with, (guint) with_len);
  g_byte_array_append (b, demo_tlv + at + n, (guint) (sizeof demo_tlv - at - n));
  return b;
}

static void
assert_edit_refused (gsize at, gsize n, const guint8 *with, gsize with_len, const char *want)
{
  g_autoptr(GByteArray) b = demo_edit (at, n, with, with_len);
  assert_refused (b->data, b->len, want);
}

static void
test_tlv_refusals (void)
{
  gsize end = sizeof demo_tlv - 1;  /* the structure's end */

  /* one byte after the end; a second structure */
  static const guint8 extra[] = { 0x00 };
  assert_edit_refused (sizeof demo_tlv, 0, extra, 1, "trailing bytes after the end of the structure (1)");
  static const guint8 second[] = { 0x15, 0x18 };
  assert_edit_refused (sizeof demo_tlv, 0, second, 2, "trailing bytes after the end of the structure (2)");

  /* vendor_id again after certification_type; a tag out of order */
  static const guint8 dup[] = { 0x25, 0x01, 0xf1, 0xff };
  assert_edit_refused (end, 0, dup, sizeof dup, "vendor_id (tag 1) appears twice");
  static const guint8 dup8[] = { 0x24, 0x08, 0x00 };
  assert_edit_refused (end, 0, dup8, sizeof dup8, "certification_type (tag 8) appears twice");
  {
    /* [5] and [6] swapped */
    g_autoptr(GByteArray) b = g_byte_array_new ();
    gsize at5 = demo_offset (5);
    g_byte_array_append (b, demo_tlv, (guint) at5);
    static const guint8 swapped[] = { 0x24, 0x06, 0x00, 0x24, 0x05, 0x00 };
    g_byte_array_append (b, swapped, sizeof swapped);
    g_byte_array_append (b, demo_tlv + at5 + 6, (guint) (sizeof demo_tlv - at5 - 6));
    assert_refused (b->data, b->len, "security_level (tag 5) comes after tag 6");
  }
  /* unknown tags, missing elements, the optional pair alone */
  static const guint8 tag12[] = { 0x24, 0x0c, 0x00 };
  assert_edit_refused (end, 0, tag12, sizeof tag12, "tag 12 is no element");
  static const guint8 tag200[] = { 0x24, 0xc8, 0x00 };
  assert_edit_refused (end, 0, tag200, sizeof tag200, "tag 200 is no element");
  assert_edit_refused (demo_offset (8), 3, NULL, 0, "certification_type (tag 8) is missing");
  assert_edit_refused (demo_offset (0), 3, NULL, 0, "format_version (tag 0) is missing");
  static const guint8 origin_vid[] = { 0x25, 0x09, 0xf1, 0xff };
  assert_edit_refused (end, 0, origin_vid, sizeof origin_vid, "come together");
  static const guint8 origin_pid[] = { 0x25, 0x0a, 0x00, 0x80 };
  assert_edit_refused (end, 0, origin_pid, sizeof origin_pid, "come together");

  /* values out of range, wrong types */
  static const guint8 fv2[] = { 0x24, 0x00, 0x02 };
  assert_edit_refused (demo_offset (0), 3, fv2, 3, "format_version is 2");
  static const guint8 type3[] = { 0x24, 0x08, 0x03 };
  assert_edit_refused (demo_offset (8), 3, type3, 3, "certification_type is 3, more than its maximum 2");
  static const guint8 vid32[] = { 0x26, 0x01, 0x00, 0x00, 0x01, 0x00 };
  assert_edit_refused (demo_offset (1), 4, vid32, sizeof vid32, "vendor_id is 65536");
  static const guint8 level16[] = { 0x25, 0x05, 0x00, 0x01 };
  assert_edit_refused (demo_offset (5), 3, level16, sizeof level16, "security_level is 256");
  static const guint8 vid_signed[] = { 0x21, 0x01, 0xf1, 0xff };
  assert_edit_refused (demo_offset (1), 4, vid_signed, sizeof vid_signed, "vendor_id is not an unsigned integer");
  static const guint8 vid_bool[] = { 0x28, 0x01 };
  assert_edit_refused (demo_offset (1), 4, vid_bool, sizeof vid_bool, "element type 0x08");
  static const guint8 bad_type[] = { 0x39, 0x01 };
  assert_edit_refused (demo_offset (1), 4, bad_type, sizeof bad_type, "element type 0x19 does not exist");
  static const guint8 pids_struct[] = { 0x35, 0x02, 0x05, 0x00, 0x80, 0x18 };
  assert_edit_refused (demo_offset (2), 6, pids_struct, sizeof pids_struct, "product_id_array is not an array");
  static const guint8 pids_empty[] = { 0x36, 0x02, 0x18 };
  assert_edit_refused (demo_offset (2), 6, pids_empty, sizeof pids_empty, "product_id_array is empty");
  static const guint8 pid_tagged[] = { 0x36, 0x02, 0x25, 0x00, 0x00, 0x80, 0x18 };
  assert_edit_refused (demo_offset (2), 6, pid_tagged, sizeof pid_tagged, "has a tag");
  static const guint8 pid_nested[] = { 0x36, 0x02, 0x16, 0x18, 0x18 };
  assert_edit_refused (demo_offset (2), 6, pid_nested, sizeof pid_nested, "product_id_array is not an unsigned");
  {
    /* 101 PIDs */
    g_autoptr(GByteArray) pids = g_byte_array_new ();
    static const guint8 open[] = { 0x36, 0x02 }, one[] = { 0x05, 0x00, 0x80 }, close[] = { 0x18 };
    g_byte_array_append (pids, open, 2);
    for (int i = 0; i < ST_MATTER_CD_MAX_PIDS + 1; i++)
      g_byte_array_append (pids, one, 3);
    g_byte_array_append (pids, close, 1);
    assert_edit_refused (demo_offset (2), 6, pids->data, pids->len, "more than 100 product IDs");
  }
  static const guint8 id18[] = { 0x2c, 0x04, 0x12 };
  assert_edit_refused (demo_offset (4), 3, id18, 3, "certificate_id is 18 characters");
  static const guint8 id_octets[] = { 0x30, 0x04, 0x13 };
  assert_edit_refused (demo_offset (4), 3, id_octets, 3, "certificate_id is not a UTF-8 string");
  {
    g_autoptr(GByteArray) b = demo_edit (0, 0, NULL, 0);
    b->data[demo_offset (4) + 3 + 5] = 0x07;
    assert_refused (b->data, b->len, "no printable ASCII");
  }
  static const guint8 paa_short[] = { 0x36, 0x0b, 0x10, 0x13, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
                                      11, 12, 13, 14, 15, 16, 17, 18, 19, 0x18 };
  assert_edit_refused (end, 0, paa_short, sizeof paa_short, "not a key identifier of 20 bytes");
  static const guint8 paa_empty[] = { 0x36, 0x0b, 0x18 };
  assert_edit_refused (end, 0, paa_empty, sizeof paa_empty, "authorized_paa_list is empty");

  /* other tag forms and an outer element that is no structure */
  static const guint8 common[] = { 0x44, 0x01, 0x00, 0x01 };  /* common profile, 2-byte tag */
  assert_edit_refused (demo_offset (0), 3, common, sizeof common, "tag form other than anonymous");
  static const guint8 anon[] = { 0x04, 0x01 };
  assert_edit_refused (demo_offset (0), 3, anon, sizeof anon, "has no context tag");
  static const guint8 tagged_end[] = { 0x38, 0x08 };
  assert_edit_refused (end, 1, tagged_end, sizeof tagged_end, "an end of container with a tag");
  static const guint8 array[] = { 0x16 };
  assert_edit_refused (0, 1, array, 1, "not an anonymous structure");
  static const guint8 list[] = { 0x17 };
  assert_edit_refused (0, 1, list, 1, "not an anonymous structure");
  assert_refused (NULL, 0, "ends before");

  /* every cut of the demo's vector, and of the full one, is refused */
  for (gsize n = 0; n < sizeof demo_tlv; n++)
    {
      g_autoptr(GError) error = NULL;
      StMatterCd cd;
      g_assert_false (st_matter_cd_parse_tlv (demo_tlv, n, &cd, NULL, &error));
      g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
    }
  for (gsize n = 0; n < sizeof full_tlv; n++)
    {
      g_autoptr(GError) error = NULL;
      StMatterCd cd;
      g_assert_false (st_matter_cd_parse_tlv (full_tlv, n, &cd, NULL, &error));
      g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
    }
}

/* A P-256 key and a self-signed certificate with a subjectKeyIdentifier,
 * as a CD signer. */
static X509 *
make_signer (EVP_PKEY **key_out)
{
  EVP_PKEY *key = EVP_EC_gen ("P-256");
  g_assert_nonnull (key);
  X509 *x = X509_new ();
  X509_set_version (x, 2);
  ASN1_INTEGER_set (X509_get_serialNumber (x), 1);
  X509_gmtime_adj (X509_getm_notBefore (x), 0);
  X509_gmtime_adj (X509_getm_notAfter (x), 3600);
  X509_NAME *name = X509_NAME_new ();
  X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_UTF8, (const guint8 *) "Test CD Signer", -1, -1, 0);
  X509_set_subject_name (x, name);
  X509_set_issuer_name (x, name);
  X509_NAME_free (name);
  X509_set_pubkey (x, key);
  X509V3_CTX ctx;
  X509V3_set_ctx (&ctx, x, x, NULL, NULL, 0);
  X509_EXTENSION *ext = X509V3_EXT_conf_nid (NULL, &ctx, NID_subject_key_identifier, "hash");
  g_assert_nonnull (ext);
  X509_add_ext (x, ext, -1);
  X509_EXTENSION_free (ext);
  g_assert_cmpint (X509_sign (x, key, EVP_sha256 ()), >, 0);
  *key_out = key;
  return x;
}

/* A CMS SignedData of @tlv by @signer, made with @flags and, when
 * @content_type is not NID_undef, that eContentType. */
static GBytes *
cms_of (const guint8 *tlv, gsize len, X509 *signer, EVP_PKEY *key, unsigned int flags, int content_type)
{
  BIO *in = BIO_new_mem_buf (tlv, (int) len);
  flags |= CMS_BINARY | CMS_NOCERTS | CMS_PARTIAL;
  CMS_ContentInfo *cms = CMS_sign (NULL, NULL, NULL, NULL, flags);
  g_assert_nonnull (cms);
  if (content_type != NID_undef)
    g_assert_cmpint (CMS_set1_eContentType (cms, OBJ_nid2obj (content_type)), ==, 1);
  g_assert_nonnull (CMS_add1_signer (cms, signer, key, EVP_sha256 (), flags));
  g_assert_cmpint (CMS_final (cms, in, NULL, flags), ==, 1);
  unsigned char *der = NULL;
  int n = i2d_CMS_ContentInfo (cms, &der);
  g_assert_cmpint (n, >, 0);
  GBytes *b = g_bytes_new (der, (gsize) n);
  OPENSSL_free (der);
  CMS_ContentInfo_free (cms);
  BIO_free (in);
  return b;
}

static void
assert_cms_refused (GBytes *der, const char *want)
{
  g_autoptr(GError) error = NULL;
  StMatterCd cd;
  g_assert_false (st_matter_cd_parse (der, &cd, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  if (strstr (error->message, want) == NULL)
    g_error ("refusal \"%s\" lacks \"%s\"", error->message, want);
}

static gchar *tmpdir;

static void
test_cms (void)
{
  g_autoptr(GError) error = NULL;
  EVP_PKEY *key = NULL;
  X509 *signer = make_signer (&key);
  g_autoptr(GBytes) tlv = g_bytes_new_static (full_tlv, sizeof full_tlv);
  g_autoptr(GBytes) signed_cd = st_matter_cd_sign (tlv, signer, key, &error);
  g_assert_no_error (error);
  StMatterCd cd;
  g_assert_true (st_matter_cd_parse (signed_cd, &cd, &error));
  g_assert_no_error (error);
  g_autoptr(GBytes) again = st_matter_cd_encode (&cd, &error);
  g_assert_no_error (error);
  assert_same (again, full_tlv, sizeof full_tlv);
  st_matter_cd_clear (&cd);

  /* stock openssl cms makes one the reader takes too */
  g_autofree gchar *tlv_path = g_build_filename (tmpdir, "cd.tlv", NULL);
  g_autofree gchar *key_path = g_build_filename (tmpdir, "cd.key", NULL);
  g_autofree gchar *cert_path = g_build_filename (tmpdir, "cd.pem", NULL);
  g_autofree gchar *der_path = g_build_filename (tmpdir, "cd.der", NULL);
  g_assert_true (g_file_set_contents (tlv_path, (const char *) demo_tlv, sizeof demo_tlv, NULL));
  const char *req[] = { "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", key_path, "-subj", "/CN=CD", "-out", cert_path, NULL };
  gint status = -1;
  g_assert_true (g_spawn_sync (NULL, (gchar **) req, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL
                               | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, NULL, NULL, &status, NULL));
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  const char *sign[] = { "openssl", "cms", "-sign", "-binary", "-nodetach", "-in", tlv_path, "-signer",
                         cert_path, "-inkey", key_path, "-outform", "DER", "-out", der_path, NULL };
  g_assert_true (g_spawn_sync (NULL, (gchar **) sign, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
                               &status, NULL));
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  gchar *text = NULL;
  gsize len = 0;
  g_assert_true (g_file_get_contents (der_path, &text, &len, NULL));
  g_autoptr(GBytes) stock = g_bytes_new_take (text, len);
  g_assert_true (st_matter_cd_parse (stock, &cd, &error));
  g_assert_no_error (error);
  g_assert_cmphex (cd.vendor_id, ==, 0xFFF1);
  g_assert_cmphex (cd.product_ids[0], ==, 0x8000);
  st_matter_cd_clear (&cd);

  /* detached; another eContentType; a byte after the DER; no CMS; a
   * good CMS around a bad TLV */
  g_autoptr(GBytes) detached = cms_of (demo_tlv, sizeof demo_tlv, signer, key, CMS_DETACHED, NID_undef);
  assert_cms_refused (detached, "detached");
  g_autoptr(GBytes) other = cms_of (demo_tlv, sizeof demo_tlv, signer, key, 0, NID_id_smime_ct_TSTInfo);
  assert_cms_refused (other, "not of type id-data");
  g_autoptr(GBytes) good = cms_of (demo_tlv, sizeof demo_tlv, signer, key, 0, NID_undef);
  g_assert_true (st_matter_cd_parse (good, &cd, &error));
  g_assert_no_error (error);
  st_matter_cd_clear (&cd);
  g_autoptr(GByteArray) tail = g_byte_array_new ();
  g_byte_array_append (tail, g_bytes_get_data (good, NULL), (guint) g_bytes_get_size (good));
  g_byte_array_append (tail, (const guint8 *) "\0", 1);
  g_autoptr(GBytes) tailed = g_bytes_new (tail->data, tail->len);
  assert_cms_refused (tailed, "not one DER CMS SignedData");
  g_autoptr(GBytes) raw = g_bytes_new_static (demo_tlv, sizeof demo_tlv);
  assert_cms_refused (raw, "not one DER CMS SignedData");
  static const guint8 cut[] = { 0x15, 0x24, 0x00, 0x01 };
  g_autoptr(GBytes) cut_cms = cms_of (cut, sizeof cut, signer, key, 0, NID_undef);
  assert_cms_refused (cut_cms, "ends before its structure is closed");
  X509_free (signer);
  EVP_PKEY_free (key);
}

/* A profile naming @cd_path, for VID FFF1 and PID 8000. */
static StProfile *
profile_for (const char *cd_path)
{
  g_autofree gchar *text = g_strdup_printf (
    "[profile]\nname = cd-test\n"
    "[key]\nmode = device-csr\nalgorithm = ec-p256\n"
    "[certificate]\nsubject = CN={uid},O=Station Test\nvalidity = no-expiry\n"
    "key-usage = digitalSignature\n"
    "[serial]\nformat = CD-{seq:06}\n[device]\nlock = false\n"
    "[matter]\nvendor-id = FFF1\nproduct-id = 8000\ncertification-declaration = %s\n", cd_path);
  g_autoptr(GError) error = NULL;
  StProfile *p = st_profile_load_from_data (text, strlen (text), "cd-test.profile", &error);
  g_assert_no_error (error);
  return p;
}

/* The demo's TLV with another VID, PID and certification type, signed. */
static gchar *
write_cd (const char *name, guint16 vid, guint16 pid, guint8 type, gboolean origin, guint16 origin_pid)
{
  static const guint8 cert_id[] = "ZIG20142ZB330003-24";
  const guint16 pids[] = { 0x7fff, pid };
  StMatterCd cd = { .format_version = 1, .vendor_id = vid, .product_ids = pids, .n_product_ids = 2,
                    .device_type_id = 0x0100, .certificate_id = (const char *) cert_id,
                    .version_number = 1, .certification_type = type, .has_dac_origin = origin,
                    .dac_origin_vendor_id = 0xFFF1, .dac_origin_product_id = origin_pid };
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) tlv = st_matter_cd_encode (&cd, &error);
  g_assert_no_error (error);
  EVP_PKEY *key = NULL;
  X509 *signer = make_signer (&key);
  g_autoptr(GBytes) der = st_matter_cd_sign (tlv, signer, key, &error);
  g_assert_no_error (error);
  X509_free (signer);
  EVP_PKEY_free (key);
  gchar *path = g_build_filename (tmpdir, name, NULL);
  g_assert_true (g_file_set_contents (path, g_bytes_get_data (der, NULL), (gssize) g_bytes_get_size (der), NULL));
  return path;
}

static void
assert_load_refused (const char *path, const char *const *want)
{
  g_autoptr(StProfile) p = profile_for (path);
  g_autoptr(GError) error = NULL;
  gchar *note = (gchar *) "unset";
  g_assert_null (st_matter_cd_load_for_profile (p, NULL, &note, &error));
  g_assert_null (note);
  g_assert_nonnull (error);
  for (guint i = 0; want[i] != NULL; i++)
    if (strstr (error->message, want[i]) == NULL)
      g_error ("refusal \"%s\" lacks \"%s\"", error->message, want[i]);
}

static void
test_product (void)
{
  g_autoptr(GError) error = NULL;
  static const guint16 pids[] = { 0x8000, 0x8001 };
  StMatterCd cd = { .format_version = 1, .vendor_id = 0xFFF1, .product_ids = pids, .n_product_ids = 2,
                    .certificate_id = "ZIG20142ZB330003-24" };
  g_assert_true (st_matter_cd_check_product (&cd, "cd.der", 0xFFF1, 0x8000, &error));
  g_assert_true (st_matter_cd_check_product (&cd, "cd.der", 0xFFF1, 0x8001, &error));
  g_assert_no_error (error);
  g_assert_false (st_matter_cd_check_product (&cd, "cd.der", 0xFFF1, 0x8002, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
  g_assert_nonnull (strstr (error->message, "cd.der is for VID FFF1 and PID 8000, 8001"));
  g_assert_nonnull (strstr (error->message, "(VID FFF1, PID 8002)"));
  g_clear_error (&error);
  g_assert_false (st_matter_cd_check_product (&cd, "cd.der", 0xFFF2, 0x8000, &error));
  g_assert_nonnull (strstr (error->message, "(VID FFF2, PID 8000)"));
  g_clear_error (&error);
  /* dac_origin: the DACs the station issues carry the profile's IDs */
  cd.has_dac_origin = TRUE;
  cd.dac_origin_vendor_id = 0xFFF1;
  cd.dac_origin_product_id = 0x8000;
  g_assert_true (st_matter_cd_check_product (&cd, "cd.der", 0xFFF1, 0x8000, &error));
  g_assert_no_error (error);
  g_assert_false (st_matter_cd_check_product (&cd, "cd.der", 0xFFF1, 0x8001, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
  g_assert_nonnull (strstr (error->message, "dac_origin VID FFF1, PID 8000"));
  g_clear_error (&error);

  /* authorized_paa_list: the station's PAA must be in it */
  EVP_PKEY *paa_key = NULL;
  X509 *paa = make_signer (&paa_key);
  const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id (paa);
  g_assert_cmpint (ASN1_STRING_length (skid), ==, ST_MATTER_CD_SKID_LEN);
  guint8 paas[2 * ST_MATTER_CD_SKID_LEN];
  memset (paas, 0x5a, sizeof paas);
  cd.has_dac_origin = FALSE;
  g_assert_true (st_matter_cd_check_paa (&cd, "cd.der", paa, &error));  /* no list */
  cd.authorized_paas = paas;
  cd.n_authorized_paas = 1;
  g_assert_false (st_matter_cd_check_paa (&cd, "cd.der", paa, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
  g_assert_nonnull (strstr (error->message, "cd.der allows only the PAAs its authorized_paa_list names"));
  g_clear_error (&error);
  memcpy (paas + ST_MATTER_CD_SKID_LEN, ASN1_STRING_get0_data (skid), ST_MATTER_CD_SKID_LEN);
  cd.n_authorized_paas = 2;
  g_assert_true (st_matter_cd_check_paa (&cd, "cd.der", paa, &error));
  g_assert_no_error (error);
  /* a PAA listed by a CD file, through a profile */
  {
    cd.product_ids = pids;
    cd.n_product_ids = 1;
    g_autoptr(GBytes) tlv = st_matter_cd_encode (&cd, &error);
    g_assert_no_error (error);
    g_autoptr(GBytes) der = st_matter_cd_sign (tlv, paa, paa_key, &error);
    g_assert_no_error (error);
    g_autofree gchar *listed = g_build_filename (tmpdir, "listed.der", NULL);
    g_assert_true (g_file_set_contents (listed, g_bytes_get_data (der, NULL), (gssize) g_bytes_get_size (der), NULL));
    g_autoptr(StProfile) lp = profile_for (listed);
    g_autoptr(GBytes) ok_cd = st_matter_cd_load_for_profile (lp, paa, NULL, &error);
    g_assert_no_error (error);
    g_assert_nonnull (ok_cd);
    EVP_PKEY *other_key = NULL;
    X509 *other = make_signer (&other_key);
    g_assert_null (st_matter_cd_load_for_profile (lp, other, NULL, &error));
    g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
    g_assert_nonnull (strstr (error->message, "listed.der allows only the PAAs"));
    g_assert_nonnull (strstr (error->message, "cd-test.profile"));
    g_clear_error (&error);
    X509_free (other);
    EVP_PKEY_free (other_key);
  }
  X509_free (paa);
  EVP_PKEY_free (paa_key);

  /* on files, through a profile */
  g_autofree gchar *dev = write_cd ("dev.der", 0xFFF1, 0x8000, 0, FALSE, 0);
  g_autoptr(StProfile) p = profile_for (dev);
  gchar *note = NULL;
  g_autoptr(GBytes) loaded = st_matter_cd_load_for_profile (p, NULL, &note, &error);
  g_assert_no_error (error);
  g_assert_nonnull (loaded);
  g_assert_nonnull (note);
  g_assert_nonnull (strstr (note, "development and test"));
  g_assert_nonnull (strstr (note, "dev.der"));
  g_free (note);
  g_autofree gchar *official = write_cd ("official.der", 0xFFF1, 0x8000, 2, TRUE, 0x8000);
  g_autoptr(StProfile) p2 = profile_for (official);
  g_autoptr(GBytes) loaded2 = st_matter_cd_load_for_profile (p2, NULL, &note, &error);
  g_assert_no_error (error);
  g_assert_nonnull (loaded2);
  g_assert_null (note);

  g_autofree gchar *pid8001 = write_cd ("pid-8001.der", 0xFFF1, 0x8001, 2, FALSE, 0);
  const char *want_pid[] = { "cd-test.profile", "pid-8001.der", "VID FFF1 and PID 7FFF, 8001",
                             "(VID FFF1, PID 8000)", "the CD the CSA issued for this product", NULL };
  assert_load_refused (pid8001, want_pid);
  g_autofree gchar *vid2 = write_cd ("vid-fff2.der", 0xFFF2, 0x8000, 2, FALSE, 0);
  const char *want_vid[] = { "vid-fff2.der", "VID FFF2 and PID 7FFF, 8000", "(VID FFF1, PID 8000)", NULL };
  assert_load_refused (vid2, want_vid);
  g_autofree gchar *origin = write_cd ("origin.der", 0xFFF1, 0x8000, 2, TRUE, 0x8001);
  const char *want_origin[] = { "origin.der", "dac_origin VID FFF1, PID 8001", NULL };
  assert_load_refused (origin, want_origin);
  g_autofree gchar *missing = g_build_filename (tmpdir, "none.der", NULL);
  const char *want_missing[] = { "none.der", "certification-declaration", NULL };
  assert_load_refused (missing, want_missing);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  tmpdir = g_dir_make_tmp ("st-matter-cd-XXXXXX", NULL);
  g_assert_nonnull (tmpdir);
  g_test_add_func ("/matter-cd/tlv-vectors", test_tlv_vectors);
  g_test_add_func ("/matter-cd/tlv-refusals", test_tlv_refusals);
  g_test_add_func ("/matter-cd/cms", test_cms);
  g_test_add_func ("/matter-cd/product", test_product);
  int rc = g_test_run ();
  const char *names[] = { "cd.tlv", "cd.key", "cd.pem", "cd.der", "dev.der", "official.der", "pid-8001.der",
                          "vid-fff2.der", "origin.der", "listed.der" };
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree gchar *p = g_build_filename (tmpdir, names[i], NULL);
      g_unlink (p);
    }
  g_rmdir (tmpdir);
  g_free (tmpdir);
  return rc;
}
