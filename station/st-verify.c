/* Certificate chains (st-verify.h). */
#include "st-verify.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <string.h>

#include "st-error.h"
#include "st-util.h"
#include "st-ossl.h"

gboolean
st_verify_chain (X509 *leaf, STACK_OF (X509) *untrusted, X509 *root, GError **error)
{
  g_return_val_if_fail (leaf != NULL && root != NULL, FALSE);
  g_autoptr(X509_STORE) store = X509_STORE_new ();
  g_autoptr(X509_STORE_CTX) ctx = X509_STORE_CTX_new ();
  if (store == NULL || ctx == NULL || X509_STORE_add_cert (store, root) != 1
      || X509_STORE_CTX_init (ctx, store, leaf, untrusted) != 1)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "setting up the chain verification");
      return FALSE;
    }
  X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param (ctx);
  X509_VERIFY_PARAM_set_flags (param, X509_V_FLAG_X509_STRICT);
  X509_VERIFY_PARAM_clear_flags (param, X509_V_FLAG_PARTIAL_CHAIN);

  int rc = X509_verify_cert (ctx);
  if (rc != 1)
    {
      int err = X509_STORE_CTX_get_error (ctx);
      int depth = X509_STORE_CTX_get_error_depth (ctx);
      st_error_clear_openssl ();
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "the certificate chain does not verify up to the trusted root: %s (X509_V_ERR %d at depth %d)",
                   X509_verify_cert_error_string (err), err, depth);
      return FALSE;
    }
  return TRUE;
}

GBytes *
st_chain_der_concat (STACK_OF (X509) *chain)
{
  g_return_val_if_fail (chain != NULL, NULL);
  g_autoptr(GByteArray) out = g_byte_array_new ();
  for (int i = 0; i < sk_X509_num (chain); i++)
    {
      unsigned char *der = NULL;
      int len = i2d_X509 (sk_X509_value (chain, i), &der);
      if (len <= 0)
        {
          st_error_clear_openssl ();
          return NULL;
        }
      g_byte_array_append (out, der, (guint) len);
      OPENSSL_free (der);
    }
  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}

STACK_OF (X509) *
st_chain_der_split (GBytes *der, guint max_certs, GError **error)
{
  g_return_val_if_fail (der != NULL, NULL);
  gsize len = 0;
  const guint8 *data = st_bytes_get_bounded (der, ST_CHAIN_MAX_SIZE, "the certificate chain", &len, error);
  if (data == NULL)
    return NULL;
  g_autoptr(StX509Stack) chain = sk_X509_new_null ();
  if (chain == NULL)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "sk_X509_new_null");
      return NULL;
    }
  const unsigned char *p = data;
  const unsigned char *end = data + len;
  while (p < end)
    {
      if ((guint) sk_X509_num (chain) >= max_certs)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "the certificate chain has more than %u certificates", max_certs);
          return NULL;
        }
      const unsigned char *start = p;
      g_autoptr(X509) cert = d2i_X509 (NULL, &p, (long) (end - p));
      if (cert == NULL || p <= start)
        {
          g_autofree gchar *what = g_strdup_printf (
              "the certificate chain has bytes that are not a DER certificate at offset %" G_GSIZE_FORMAT,
              (gsize) (start - data));
          st_error_set_openssl (error, ST_ERROR_INVALID_DATA, what);
          return NULL;
        }
      unsigned char *re = NULL;
      int relen = i2d_X509 (cert, &re);
      gboolean same = relen > 0 && relen == p - start && memcmp (re, start, (size_t) relen) == 0;
      OPENSSL_free (re);
      if (!same)
        {
          st_error_clear_openssl ();
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "certificate %d of the chain is not in canonical DER", sk_X509_num (chain) + 1);
          return NULL;
        }
      if (sk_X509_push (chain, cert) <= 0)
        {
          st_error_set_openssl (error, ST_ERROR_INTERNAL, "sk_X509_push");
          return NULL;
        }
      cert = NULL; /* owned by the stack */
    }
  return g_steal_pointer (&chain);
}

STACK_OF (X509) *
st_chain_load_pem (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_autoptr(GError) local = NULL;
  g_autoptr(GMappedFile) mf = g_mapped_file_new (path, FALSE, &local);
  if (mf == NULL)
    {
      g_set_error (error, ST_ERROR,
                   g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT) ? ST_ERROR_NOT_FOUND : ST_ERROR_READ,
                   "%s: cannot read the certificates: %s", path, local->message);
      return NULL;
    }
  return st_chain_load_pem_data (g_mapped_file_get_contents (mf), g_mapped_file_get_length (mf),
                                 path, error);
}

STACK_OF (X509) *
st_chain_load_pem_data (const void *data, gsize len, const char *path, GError **error)
{
  if (len == 0 || len > ST_CHAIN_MAX_SIZE)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "%s: %" G_GSIZE_FORMAT " bytes; a certificate file is 1 to %d bytes",
                   path, len, ST_CHAIN_MAX_SIZE);
      return NULL;
    }
  g_autoptr(BIO) bio = BIO_new_mem_buf (data, (int) len);
  g_autoptr(StX509Stack) chain = sk_X509_new_null ();
  if (bio == NULL || chain == NULL)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "BIO_new_mem_buf");
      return NULL;
    }
  st_error_clear_openssl ();
  while (TRUE)
    {
      X509 *cert = PEM_read_bio_X509 (bio, NULL, NULL, NULL);
      if (cert == NULL)
        {
          unsigned long e = ERR_peek_last_error ();
          if (ERR_GET_LIB (e) == ERR_LIB_PEM && ERR_GET_REASON (e) == PEM_R_NO_START_LINE)
            {
              st_error_clear_openssl ();
              break;
            }
          g_autofree gchar *what = g_strdup_printf ("%s: certificate %d is not a valid PEM certificate",
                                                    path, sk_X509_num (chain) + 1);
          st_error_set_openssl (error, ST_ERROR_INVALID_DATA, what);
          return NULL;
        }
      if (sk_X509_num (chain) >= ST_CHAIN_MAX_CERTS)
        {
          X509_free (cert);
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "%s: more than %d certificates", path, ST_CHAIN_MAX_CERTS);
          return NULL;
        }
      if (sk_X509_push (chain, cert) <= 0)
        {
          X509_free (cert);
          st_error_set_openssl (error, ST_ERROR_INTERNAL, "sk_X509_push");
          return NULL;
        }
    }
  if (sk_X509_num (chain) == 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "%s: no PEM certificate (-----BEGIN CERTIFICATE-----) in the file", path);
      return NULL;
    }
  return g_steal_pointer (&chain);
}
