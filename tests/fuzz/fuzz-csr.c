/* libFuzzer: the CSR checker, for every algorithm a profile may ask for,
 * held against OpenSSL's own reading of the request (st-csr-oracle.h). */
#include <stdint.h>
#include "st-error.h"
#include "st-csr-oracle.h"
#include "st-issue.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  GBytes *der = g_bytes_new_static (data, size);
  for (StAlg alg = ST_ALG_EC_P256; alg <= ST_ALG_ED25519; alg++)
    {
      GError *error = NULL;
      EVP_PKEY *key = st_csr_check (der, alg, &error);
      if ((key == NULL) == (error == NULL))
        abort ();
      /* Whatever we accept, OpenSSL's d2i_X509_REQ and X509_REQ_verify
       * accept too, with the same key. */
      if (key != NULL)
        {
          EVP_PKEY *theirs = st_csr_oracle (data, size, alg);
          if (theirs == NULL || EVP_PKEY_eq (key, theirs) != 1)
            abort ();
          EVP_PKEY_free (theirs);
        }
      EVP_PKEY_free (key);
      g_clear_error (&error);
    }
  g_bytes_unref (der);
  st_error_clear_openssl ();
  return 0;
}
