/* OpenSSL's own verdict on a CSR, for holding st_csr_check() against it
 * (tests/station/test-issue.c and tests/fuzz/fuzz-csr.c): d2i_X509_REQ()
 * reads the whole buffer, i2d_X509_REQ() gives it back, version 1, the key
 * is @alg, and X509_REQ_verify() returns 1. Returns the request's key, or
 * NULL when OpenSSL's reading refuses the request. */
#pragma once

#include <openssl/err.h>
#include <openssl/x509.h>
#include <string.h>

#include "st-issue.h"

static inline EVP_PKEY *
st_csr_oracle (const guint8 *data, gsize len, StAlg alg)
{
  const unsigned char *p = data;
  X509_REQ *req = len > 0 && len <= ST_CSR_MAX_SIZE ? d2i_X509_REQ (NULL, &p, (long) len) : NULL;
  EVP_PKEY *key = NULL;
  if (req != NULL && p == data + len)
    {
      unsigned char *re = NULL;
      int relen = i2d_X509_REQ (req, &re);
      EVP_PKEY *pub = X509_REQ_get0_pubkey (req);
      if (relen > 0 && (gsize) relen == len && memcmp (re, data, len) == 0
          && X509_REQ_get_version (req) == X509_REQ_VERSION_1 && pub != NULL
          && st_pubkey_get_alg (pub) == alg && X509_REQ_verify (req, pub) == 1)
        key = EVP_PKEY_dup (pub);
      OPENSSL_free (re);
    }
  X509_REQ_free (req);
  ERR_clear_error ();
  return key;
}
