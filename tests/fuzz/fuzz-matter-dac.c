/* libFuzzer: the Matter PAA, PAI and DAC rules (st-matter-dac.c) on hostile
 * certificates. Input: a 2-byte big-endian length N, N bytes of a PAI's
 * DER, then a DAC's DER (a short input is one certificate, tried in every
 * role). Every rule must answer TRUE without an error or FALSE with one,
 * and never read out of bounds. */
#include <stdint.h>
#include <stdlib.h>

#include <openssl/x509.h>

#include "st-error.h"
#include "st-matter-dac.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static X509 *
parse (const uint8_t *data, size_t size)
{
  const unsigned char *p = data;
  return size > 0 && size < 65536 ? d2i_X509 (NULL, &p, (long) size) : NULL;
}

static void
agree (gboolean ok, GError **error)
{
  if (ok == (*error != NULL))
    abort ();
  g_clear_error (error);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  X509 *pai = NULL, *dac = NULL;
  if (size >= 2 && (size_t) ((data[0] << 8) | data[1]) <= size - 2)
    {
      size_t n = (size_t) ((data[0] << 8) | data[1]);
      pai = parse (data + 2, n);
      dac = parse (data + 2 + n, size - 2 - n);
    }
  else
    pai = parse (data, size);

  GError *error = NULL;
  X509 *certs[2] = { pai, dac };
  for (int i = 0; i < 2; i++)
    if (certs[i] != NULL)
      {
        StMatterIds ids;
        agree (st_matter_paa_check (certs[i], &error), &error);
        agree (st_matter_pai_check (certs[i], &ids, &error), &error);
        agree (st_matter_name_ids (X509_get_subject_name (certs[i]), "the certificate", &ids, &error), &error);
      }
  if (pai != NULL && dac != NULL)
    agree (st_matter_dac_check (dac, pai, &error), &error);
  if (pai != NULL)
    agree (st_matter_dac_check (pai, pai, &error), &error);
  X509_free (pai);
  X509_free (dac);
  st_error_clear_openssl ();
  return 0;
}
