/* Proof of possession (st-pop.h). */
#include "st-pop.h"

#include <openssl/ec.h>
#include <string.h>

#include "st-error.h"
#include "st-issue.h"
#include "st-ossl.h"

#define pop_fail(error, ...) \
  st_error_verify_failed ((error), \
                          "the device could not prove it holds the key of its certificate (%s)", \
                          __VA_ARGS__)

gboolean
st_pop_verify (X509 *cert, const guint8 challenge[32], GBytes *signature, GError **error)
{
  g_return_val_if_fail (cert != NULL, FALSE);
  g_autoptr(EVP_PKEY) key = st_x509_get_pubkey (cert);
  if (key == NULL)
    {
      st_error_clear_openssl ();
      return pop_fail (error, "the certificate's public key cannot be read");
    }
  return st_pop_verify_key (key, challenge, signature, error);
}

gboolean
st_pop_verify_key (EVP_PKEY *key, const guint8 challenge[32], GBytes *signature, GError **error)
{
  g_return_val_if_fail (key != NULL && challenge != NULL && signature != NULL, FALSE);

  gsize sig_len = 0;
  const guint8 *sig = g_bytes_get_data (signature, &sig_len);
  if (sig_len == 0 || sig == NULL)
    return pop_fail (error, "empty signature");
  if (sig_len > ST_POP_SIGNATURE_MAX)
    return pop_fail (error, "signature of %" G_GSIZE_FORMAT " bytes; at most %d", sig_len,
                     ST_POP_SIGNATURE_MAX);

  const EVP_MD *md = NULL;
  switch (st_pubkey_get_alg (key))
    {
    case ST_ALG_EC_P256:
      md = st_md_sha256 ();
      break;
    case ST_ALG_EC_P384:
      md = st_md_sha384 ();
      break;
    case ST_ALG_ED25519:
      if (sig_len != 64)
        return pop_fail (error, "an Ed25519 signature is 64 bytes, the device sent %" G_GSIZE_FORMAT,
                         sig_len);
      break;
    case ST_ALG_NONE:
    default:
      return pop_fail (error, "the certificate's key is not EC P-256, EC P-384 or Ed25519");
    }

  if (md != NULL)
    {
      /* Strict DER: one ECDSA-Sig-Value, the whole buffer, canonical. */
      const unsigned char *p = sig;
      ECDSA_SIG *es = d2i_ECDSA_SIG (NULL, &p, (long) sig_len);
      if (es == NULL)
        return pop_fail (error, "the signature is not a DER ECDSA-Sig-Value");
      unsigned char *re = NULL;
      int relen = i2d_ECDSA_SIG (es, &re);
      gboolean strict = p == sig + sig_len && relen > 0 && (gsize) relen == sig_len
                        && memcmp (re, sig, sig_len) == 0;
      OPENSSL_free (re);
      ECDSA_SIG_free (es);
      if (!strict)
        return pop_fail (error, "the ECDSA signature is not exactly one canonical DER value (%"
                         G_GSIZE_FORMAT " bytes, %" G_GSIZE_FORMAT " parsed)",
                         sig_len, (gsize) (p - sig));
    }

  guint8 msg[16 + ST_POP_CHALLENGE_SIZE];
  memcpy (msg, ST_POP_CONTEXT, 16);
  memcpy (msg + 16, challenge, ST_POP_CHALLENGE_SIZE);

  g_autoptr(EVP_MD_CTX) ctx = EVP_MD_CTX_new ();
  if (ctx == NULL || EVP_DigestVerifyInit (ctx, NULL, md, NULL, key) != 1)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "EVP_DigestVerifyInit");
      return FALSE;
    }
  int rc = EVP_DigestVerify (ctx, sig, sig_len, msg, sizeof msg);
  if (rc != 1)
    return pop_fail (error, "the signature over the challenge does not verify with the certificate's key; EVP_DigestVerify returned %d",
                     rc);
  return TRUE;
}
