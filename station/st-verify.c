/* Certificate chains (st-verify.h). */
#include "st-verify.h"

#include <glib/gi18n.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
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

X509 *
st_verify_root_from_pem (const void *pem, gsize len, const char *what, GError **error)
{
  g_autoptr(StX509Stack) certs = st_chain_load_pem_data (pem, len, what, error);
  if (certs == NULL)
    return NULL;
  if (sk_X509_num (certs) != 1)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("%s holds %d certificates; a trusted root file holds exactly one: the root "
                     "CA certificate alone (not the manifest's ca-chain.pem)"),
                   what, sk_X509_num (certs));
      return NULL;
    }
  X509 *root = sk_X509_value (certs, 0);
  g_autofree gchar *subject = st_x509_name_text (X509_get_subject_name (root));
  if (X509_check_ca (root) == 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("%s is not a CA certificate (%s has no basicConstraints CA:TRUE): give the "
                     "root CA certificate that the manifest's chain ends with"), what, subject);
      return NULL;
    }
  st_error_clear_openssl ();
  if (X509_self_signed (root, 1) != 1)
    {
      st_error_clear_openssl ();
      g_autofree gchar *issuer = st_x509_name_text (X509_get_issuer_name (root));
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("%s is not a root: %s is issued by %s and does not sign itself; give the "
                     "root CA certificate that the chain ends with"), what, subject, issuer);
      return NULL;
    }
  X509_up_ref (root);
  return root;
}

/* ---- one issuing CA, many leaves ---- */

gboolean
st_verify_issuer_chain (STACK_OF (X509) *chain, X509 *root, GError **error)
{
  g_return_val_if_fail (root != NULL, FALSE);
  if (chain == NULL || sk_X509_num (chain) < 1)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED, "no issuing CA certificate");
      return FALSE;
    }
  X509 *ca = sk_X509_value (chain, 0);
  /* the issuing CA up to the root: signatures, times, trust, and the
   * strict RFC 5280 checks of each CA (X509_V_FLAG_X509_STRICT) */
  if (!st_verify_chain (ca, chain, root, error))
    return FALSE;
  /* What X509_verify_cert checks of a CA only when a leaf is below it: the
   * issuing CA is at depth 0 above, where it need not be a CA. Strict:
   * basicConstraints CA:TRUE (X509_check_ca 1, not a v1 root or a
   * keyCertSign-only certificate). */
  if (X509_check_ca (ca) != 1)
    {
      st_error_clear_openssl ();
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "the issuing CA certificate is not a CA (no basicConstraints CA:TRUE)");
      return FALSE;
    }
  /* the path lengths with a leaf below: the CA at index k (the issuing CA
   * 0) has k CA certificates below it that are not self-issued, at most
   * its pathLenConstraint */
  int plen = 0;
  for (int k = 0; k < sk_X509_num (chain); k++)
    {
      X509 *x = sk_X509_value (chain, k);
      long pathlen = X509_get_pathlen (x);
      if (k > 0 && pathlen >= 0 && plen > pathlen)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                       "the certificate chain does not verify up to the trusted root: path length "
                       "constraint exceeded (X509_V_ERR %d at depth %d)", X509_V_ERR_PATH_LENGTH_EXCEEDED,
                       k + 1);
          return FALSE;
        }
      if ((X509_get_extension_flags (x) & EXFLAG_SI) == 0)
        plen++;
    }
  /* X509_verify_cert's root may be the store's copy, not the file's */
  if (X509_check_ca (root) < 1)
    {
      st_error_clear_openssl ();
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED, "the trusted root is not a CA");
      return FALSE;
    }
  return TRUE;
}

static gboolean
st_leaf_fail (GError **error, int code, const char *what)
{
  g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
               "the certificate chain does not verify up to the trusted root: %s (X509_V_ERR %d at depth 0)",
               what, code);
  return FALSE;
}

gboolean
st_verify_leaf (X509 *leaf, X509 *issuer, STACK_OF (X509) *chain, GError **error)
{
  g_return_val_if_fail (leaf != NULL && issuer != NULL, FALSE);
  uint32_t flags = X509_get_extension_flags (leaf);
  gboolean ok = TRUE;
  /* extensions (check_extensions at depth 0) */
  if ((flags & EXFLAG_INVALID) != 0)
    ok = st_leaf_fail (error, X509_V_ERR_INVALID_EXTENSION, "invalid or inconsistent certificate extension");
  else if ((flags & EXFLAG_CRITICAL) != 0)
    ok = st_leaf_fail (error, X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION, "unhandled critical extension");
  else if ((flags & EXFLAG_PROXY) != 0)
    ok = st_leaf_fail (error, X509_V_ERR_PROXY_CERTIFICATES_NOT_ALLOWED, "proxy certificates not allowed");
  if (!ok)
    {
      st_error_clear_openssl ();
      return FALSE;
    }
  /* the strict RFC 5280 checks, as X509_V_FLAG_X509_STRICT makes them of
   * a certificate with an issuer above it */
  uint32_t ku = X509_get_key_usage (leaf);
  gboolean is_ca = (flags & EXFLAG_CA) != 0;
  const GENERAL_NAMES *san = NULL;
  int san_crit = -1;
  g_autoptr(GENERAL_NAMES) san_owned = X509_get_ext_d2i (leaf, NID_subject_alt_name, &san_crit, NULL);
  san = san_owned;
  const X509_ALGOR *outer = NULL;
  X509_get0_signature (NULL, &outer, leaf);
  const ASN1_OCTET_STRING *akid_keyid = NULL;
  const GENERAL_NAMES *akid_issuer = NULL;
  const ASN1_INTEGER *akid_serial = NULL;
  gboolean has_akid = X509_get_ext_by_NID (leaf, NID_authority_key_identifier, -1) >= 0;
  akid_keyid = X509_get0_authority_key_id (leaf);
  akid_issuer = X509_get0_authority_issuer (leaf);
  akid_serial = X509_get0_authority_serial (leaf);
  if (X509_get_pathlen (leaf) != -1 && !is_ca)
    return st_leaf_fail (error, X509_V_ERR_PATHLEN_INVALID_FOR_NON_CA, "Path length invalid for non-CA cert");
  if (X509_get_pathlen (leaf) != -1 && (ku & KU_KEY_CERT_SIGN) == 0)
    return st_leaf_fail (error, X509_V_ERR_PATHLEN_WITHOUT_KU_KEY_CERT_SIGN,
                         "Path length given without key usage keyCertSign");
  if (is_ca && (flags & EXFLAG_KUSAGE) == 0)
    return st_leaf_fail (error, X509_V_ERR_CA_CERT_MISSING_KEY_USAGE, "CA cert does not include key usage extension");
  if (!is_ca && (flags & EXFLAG_KUSAGE) != 0 && (ku & KU_KEY_CERT_SIGN) != 0)
    return st_leaf_fail (error, X509_V_ERR_KU_KEY_CERT_SIGN_INVALID_FOR_NON_CA,
                         "Key usage keyCertSign invalid for non-CA cert");
  if (X509_NAME_entry_count (X509_get_issuer_name (leaf)) == 0)
    return st_leaf_fail (error, X509_V_ERR_ISSUER_NAME_EMPTY, "Issuer name empty");
  if ((is_ca || ((flags & EXFLAG_KUSAGE) != 0 && (ku & KU_CRL_SIGN) != 0) || san == NULL)
      && X509_NAME_entry_count (X509_get_subject_name (leaf)) == 0)
    return st_leaf_fail (error, X509_V_ERR_SUBJECT_NAME_EMPTY, "Subject name empty");
  if (san_crit >= 0 && (san == NULL || sk_GENERAL_NAME_num (san) <= 0))
    return st_leaf_fail (error, X509_V_ERR_EMPTY_SUBJECT_ALT_NAME, "Subject empty and Subject Alt Name extension empty");
  if (outer == NULL || X509_ALGOR_cmp (outer, X509_get0_tbs_sigalg (leaf)) != 0)
    return st_leaf_fail (error, X509_V_ERR_SIGNATURE_ALGORITHM_INCONSISTENCY,
                         "Signature algorithm inconsistency");
  if (X509_get_version (leaf) >= X509_VERSION_3)
    {
      gboolean self_signed = (flags & EXFLAG_SS) != 0;
      if (!self_signed && !has_akid)
        return st_leaf_fail (error, X509_V_ERR_MISSING_AUTHORITY_KEY_IDENTIFIER,
                             "Missing Authority Key Identifier");
      if (!self_signed && has_akid && akid_keyid == NULL && akid_issuer == NULL && akid_serial == NULL)
        return st_leaf_fail (error, X509_V_ERR_MISSING_AUTHORITY_KEY_IDENTIFIER,
                             "Empty Authority Key Identifier");
      if (has_akid && (akid_issuer == NULL) != (akid_serial == NULL))
        return st_leaf_fail (error, X509_V_ERR_INVALID_EXTENSION,
                             "Authority Key Identifier issuer and serial not paired");
      if (is_ca && X509_get0_subject_key_id (leaf) == NULL)
        return st_leaf_fail (error, X509_V_ERR_MISSING_SUBJECT_KEY_IDENTIFIER,
                             "Missing Subject Key Identifier");
    }
  else if (X509_get_ext_count (leaf) > 0)
    return st_leaf_fail (error, X509_V_ERR_EXTENSIONS_REQUIRE_VERSION_3, "Extensions require version 3");
  /* its public key decodes (X509_get_pubkey_parameters; no explicit EC
   * parameters: check_curve) */
  g_autoptr(EVP_PKEY) key = st_x509_get_pubkey (leaf);
  if (key == NULL)
    {
      st_error_clear_openssl ();
      return st_leaf_fail (error, X509_V_ERR_UNSPECIFIED,
                           "the certificate's public key does not decode (or has explicit curve parameters)");
    }
  /* the issuer: names, AKID against the issuer's SKID or name and serial,
   * the issuer's keyUsage allows keyCertSign, signature algorithm against
   * the issuer's key type (build_chain's check_issued) */
  int issued = X509_check_issued (issuer, leaf);
  if (issued != X509_V_OK)
    {
      st_error_clear_openssl ();
      g_autofree gchar *why = g_strdup_printf ("not issued by the issuing CA of ca-chain.pem: %s",
                                               X509_verify_cert_error_string (issued));
      return st_leaf_fail (error, issued, why);
    }
  /* its signature under the issuer's key (internal_verify) */
  EVP_PKEY *issuer_key = X509_get0_pubkey (issuer);
  if (issuer_key == NULL || X509_verify (leaf, issuer_key) != 1)
    {
      st_error_clear_openssl ();
      return st_leaf_fail (error, X509_V_ERR_CERT_SIGNATURE_FAILURE, "certificate signature failure");
    }
  /* its validity at the current time (internal_verify) */
  int nb = X509_cmp_time (X509_get0_notBefore (leaf), NULL);
  if (nb == 0)
    return st_leaf_fail (error, X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD, "format error in certificate's notBefore field");
  if (nb > 0)
    return st_leaf_fail (error, X509_V_ERR_CERT_NOT_YET_VALID, "certificate is not yet valid");
  int na = X509_cmp_time (X509_get0_notAfter (leaf), NULL);
  if (na == 0)
    return st_leaf_fail (error, X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD, "format error in certificate's notAfter field");
  if (na < 0)
    return st_leaf_fail (error, X509_V_ERR_CERT_HAS_EXPIRED, "certificate has expired");
  /* name constraints of every CA above it (check_name_constraints) */
  for (int j = 0; chain != NULL && j < sk_X509_num (chain); j++)
    {
      int crit = -1;
      NAME_CONSTRAINTS *nc = X509_get_ext_d2i (sk_X509_value (chain, j), NID_name_constraints, &crit, NULL);
      if (nc == NULL)
        continue;
      int rv = NAME_CONSTRAINTS_check (leaf, nc);
      NAME_CONSTRAINTS_free (nc);
      if (rv != X509_V_OK)
        return st_leaf_fail (error, rv, X509_verify_cert_error_string (rv));
    }
  /* RFC 3779 resources: no station certificate carries them; one that
   * does is refused rather than checked against its issuers */
  if (X509_get_ext_by_NID (leaf, NID_sbgp_ipAddrBlock, -1) >= 0
      || X509_get_ext_by_NID (leaf, NID_sbgp_autonomousSysNum, -1) >= 0)
    return st_leaf_fail (error, X509_V_ERR_UNNESTED_RESOURCE, "RFC 3779 resources in a device certificate");
  st_error_clear_openssl ();
  return TRUE;
}
