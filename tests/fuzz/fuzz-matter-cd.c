/* libFuzzer: the reader of a Matter Certification Declaration
 * (station/st-matter-cd.h), whose file a profile names (any bytes). An
 * input starting with 0x30 (a DER SEQUENCE, which no CD's TLV starts with)
 * is read as the whole CMS (st_matter_cd_parse), any other as the TLV
 * content (st_matter_cd_parse_tlv). Whatever is accepted must hold its
 * fields in range and be written back by st_matter_cd_encode(): byte for
 * byte when every integer was in its fewest bytes, else as bytes that read
 * back to the same fields. */
#include <stdint.h>
#include <string.h>

#include "st-fuzz.h"
#include "st-matter-cd.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
check_fields (const StMatterCd *cd)
{
  if (cd->format_version != 1 || cd->n_product_ids < 1 || cd->n_product_ids > ST_MATTER_CD_MAX_PIDS
      || cd->product_ids == NULL || cd->certificate_id == NULL
      || strlen (cd->certificate_id) != ST_MATTER_CD_CERT_ID_LEN || cd->certification_type > 2
      || cd->n_authorized_paas > ST_MATTER_CD_MAX_PAAS
      || (cd->n_authorized_paas == 0) != (cd->authorized_paas == NULL))
    abort ();
  for (gsize i = 0; i < ST_MATTER_CD_CERT_ID_LEN; i++)
    if (!g_ascii_isprint (cd->certificate_id[i]))
      abort ();
}

static gboolean
same_fields (const StMatterCd *a, const StMatterCd *b)
{
  return a->format_version == b->format_version && a->vendor_id == b->vendor_id
         && a->n_product_ids == b->n_product_ids
         && memcmp (a->product_ids, b->product_ids, a->n_product_ids * sizeof a->product_ids[0]) == 0
         && a->device_type_id == b->device_type_id && strcmp (a->certificate_id, b->certificate_id) == 0
         && a->security_level == b->security_level && a->security_information == b->security_information
         && a->version_number == b->version_number && a->certification_type == b->certification_type
         && a->has_dac_origin == b->has_dac_origin && a->dac_origin_vendor_id == b->dac_origin_vendor_id
         && a->dac_origin_product_id == b->dac_origin_product_id
         && a->n_authorized_paas == b->n_authorized_paas
         && (a->n_authorized_paas == 0
             || memcmp (a->authorized_paas, b->authorized_paas, a->n_authorized_paas * ST_MATTER_CD_SKID_LEN) == 0);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  StMatterCd cd;
  GError *error = NULL;
  gboolean canonical = FALSE;
  gboolean ok;

  st_fuzz_silence_logs ();
  if (size > 0 && data[0] == 0x30)
    {
      GBytes *der = g_bytes_new (data, size);
      ok = st_matter_cd_parse (der, &cd, &error);
      g_bytes_unref (der);
    }
  else
    ok = st_matter_cd_parse_tlv (data, size, &cd, &canonical, &error);
  if (!ok)
    {
      if (error == NULL || cd.product_ids != NULL || cd.certificate_id != NULL || cd.authorized_paas != NULL)
        abort ();
      g_error_free (error);
      return 0;
    }
  check_fields (&cd);
  GBytes *again = st_matter_cd_encode (&cd, NULL);
  if (again == NULL)
    abort ();
  gsize n = 0;
  const guint8 *d = g_bytes_get_data (again, &n);
  if (canonical && (n != size || memcmp (d, data, size) != 0))
    abort ();
  /* the encoder's bytes are canonical and read back to the same fields */
  StMatterCd back;
  gboolean back_canonical = FALSE;
  if (!st_matter_cd_parse_tlv (d, n, &back, &back_canonical, NULL) || !back_canonical
      || !same_fields (&cd, &back))
    abort ();
  st_matter_cd_clear (&back);
  st_matter_cd_clear (&cd);
  g_bytes_unref (again);
  return 0;
}
