#include "st-ossl.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/provider.h>

#include "st-error.h"
#include "st-util.h"

/* The public point of the EC key @key as 0x04 || X || Y, each coordinate
 * padded to the field's size. */
static gboolean
st_ec_point_uncompressed (EVP_PKEY *key, guint8 *out, gsize out_max, gsize *out_len)
{
  BIGNUM *x = NULL, *y = NULL;
  gsize field = (gsize) (EVP_PKEY_get_bits (key) + 7) / 8;
  gboolean ok = field > 0 && 1 + 2 * field <= out_max
                && EVP_PKEY_get_bn_param (key, OSSL_PKEY_PARAM_EC_PUB_X, &x) == 1
                && EVP_PKEY_get_bn_param (key, OSSL_PKEY_PARAM_EC_PUB_Y, &y) == 1
                && BN_bn2binpad (x, out + 1, (int) field) == (int) field
                && BN_bn2binpad (y, out + 1 + field, (int) field) == (int) field;
  BN_free (x);
  BN_free (y);
  if (ok)
    {
      out[0] = POINT_CONVERSION_UNCOMPRESSED;
      *out_len = 1 + 2 * field;
    }
  return ok;
}

gboolean
st_spki_set_param (X509_PUBKEY *spki, EVP_PKEY *key)
{
  guint8 pub[160];
  size_t pub_len = 0;
  ASN1_OBJECT *alg = NULL, *curve_obj = NULL;
  int ptype = V_ASN1_UNDEF;

  g_return_val_if_fail (spki != NULL && key != NULL, FALSE);
  if (EVP_PKEY_is_a (key, "ED25519"))
    {
      pub_len = sizeof pub;
      if (EVP_PKEY_get_raw_public_key (key, pub, &pub_len) != 1)
        return FALSE;
      alg = OBJ_nid2obj (NID_ED25519);
    }
  else
    {
      char group[64];
      if (!EVP_PKEY_is_a (key, "EC")
          || EVP_PKEY_get_utf8_string_param (key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                             NULL) != 1
          || EVP_PKEY_get_octet_string_param (key, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub,
                                              &pub_len) != 1)
        return FALSE;
      int curve = OBJ_txt2nid (group);
      if (curve == NID_undef)
        curve = EC_curve_nist2nid (group);
      if (curve == NID_undef)
        return FALSE;
      /* A key decoded from a compressed point hands that form back. The
       * SubjectPublicKeyInfo always carries the uncompressed point (RFC
       * 5480 makes only that one mandatory to support), so that one key
       * has one encoding, and one hash for the rule that a key is
       * certified once, however the device sent it. */
      if (pub_len > 0 && pub[0] != POINT_CONVERSION_UNCOMPRESSED
          && !st_ec_point_uncompressed (key, pub, sizeof pub, &pub_len))
        return FALSE;
      alg = OBJ_nid2obj (NID_X9_62_id_ecPublicKey);
      curve_obj = OBJ_nid2obj (curve);
      ptype = V_ASN1_OBJECT;
    }
  guint8 *copy = OPENSSL_memdup (pub, pub_len);
  if (copy == NULL || alg == NULL
      || X509_PUBKEY_set0_param (spki, alg, ptype, curve_obj, copy, (int) pub_len) != 1)
    {
      OPENSSL_free (copy);
      return FALSE;
    }
  return TRUE;
}

GBytes *
st_spki_der (EVP_PKEY *key)
{
  unsigned char *der = NULL;
  int len = -1;
  X509_PUBKEY *spki = X509_PUBKEY_new ();
  if (spki != NULL && st_spki_set_param (spki, key))
    len = i2d_X509_PUBKEY (spki, &der);
  else
    len = i2d_PUBKEY (key, &der);
  X509_PUBKEY_free (spki);
  if (len <= 0)
    {
      OPENSSL_free (der);
      return NULL;
    }
  GBytes *out = g_bytes_new (der, (gsize) len);
  OPENSSL_free (der);
  return out;
}

static gpointer
st_md_fetch (gpointer name)
{
  EVP_MD *md = EVP_MD_fetch (NULL, name, NULL);
  if (md == NULL)
    ERR_clear_error ();
  return md;
}

const EVP_MD *
st_md_sha256 (void)
{
  static GOnce once = G_ONCE_INIT;
  const EVP_MD *md = g_once (&once, st_md_fetch, (gpointer) "SHA256");
  return md != NULL ? md : EVP_sha256 ();
}

const EVP_MD *
st_md_sha384 (void)
{
  static GOnce once = G_ONCE_INIT;
  const EVP_MD *md = g_once (&once, st_md_fetch, (gpointer) "SHA384");
  return md != NULL ? md : EVP_sha384 ();
}

EVP_PKEY *
st_pkey_public_only (EVP_PKEY *key)
{
  g_return_val_if_fail (key != NULL, NULL);
  g_autoptr(X509_PUBKEY) spki = X509_PUBKEY_new ();
  const unsigned char *pub = NULL;
  int pub_len = 0;
  X509_ALGOR *alg = NULL;
  if (spki != NULL && st_spki_set_param (spki, key)
      && X509_PUBKEY_get0_param (NULL, &pub, &pub_len, &alg, spki) == 1)
    return st_spki_parts_to_key (alg, pub, pub_len);
  /* another kind of key: through OpenSSL's encoder and decoder */
  unsigned char *der = NULL;
  int len = i2d_PUBKEY (key, &der);
  const unsigned char *p = der;
  EVP_PKEY *out = len > 0 ? d2i_PUBKEY (NULL, &p, len) : NULL;
  OPENSSL_free (der);
  return out;
}

EVP_PKEY *
st_x509_get_pubkey (X509 *cert)
{
  g_return_val_if_fail (cert != NULL, NULL);
  EVP_PKEY *cached = X509_get0_pubkey (cert);
  if (cached != NULL)
    return EVP_PKEY_up_ref (cached) == 1 ? cached : NULL;
  ERR_clear_error ();

  const unsigned char *pub = NULL;
  int pub_len = 0;
  X509_ALGOR *alg = NULL;
  X509_PUBKEY *spki = X509_get_X509_PUBKEY (cert);
  if (spki == NULL || X509_PUBKEY_get0_param (NULL, &pub, &pub_len, &alg, spki) != 1)
    return NULL;
  const ASN1_OBJECT *key_oid = NULL;
  X509_ALGOR_get0 (&key_oid, NULL, NULL, alg);
  int nid = OBJ_obj2nid (key_oid);
  if (nid != NID_ED25519 && nid != NID_X9_62_id_ecPublicKey)
    return X509_get_pubkey (cert);
  return st_spki_parts_to_key (alg, pub, pub_len);
}

EVP_PKEY *
st_spki_parts_to_key (const X509_ALGOR *alg, const unsigned char *pub, int pub_len)
{
  g_return_val_if_fail (alg != NULL, NULL);
  if (pub == NULL || pub_len <= 0)
    return NULL;
  const ASN1_OBJECT *key_oid = NULL;
  int ptype = V_ASN1_UNDEF;
  const void *pval = NULL;
  X509_ALGOR_get0 (&key_oid, &ptype, &pval, alg);
  switch (OBJ_obj2nid (key_oid))
    {
    case NID_ED25519:
      if (ptype != V_ASN1_UNDEF)
        return NULL;
      return EVP_PKEY_new_raw_public_key_ex (NULL, "ED25519", NULL, pub, (size_t) pub_len);
    case NID_X9_62_id_ecPublicKey:
      {
        const char *group = ptype == V_ASN1_OBJECT ? OSSL_EC_curve_nid2name (OBJ_obj2nid (pval)) : NULL;
        return group != NULL ? st_ec_public_key_new (group, pub, (gsize) pub_len) : NULL;
      }
    default:
      return NULL;
    }
}

/* EC domain parameters by group name, made once per process. */
static EVP_PKEY *
st_ec_params (const char *group)
{
  static GMutex lock;
  static GHashTable *cache;   /* group name -> EVP_PKEY, for the process's life */
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&lock);
  if (cache == NULL)
    cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) EVP_PKEY_free);
  EVP_PKEY *params = g_hash_table_lookup (cache, group);
  if (params != NULL)
    return params;
  g_autoptr(EVP_PKEY_CTX) pctx = EVP_PKEY_CTX_new_from_name (NULL, "EC", NULL);
  if (pctx == NULL || EVP_PKEY_paramgen_init (pctx) != 1
      || EVP_PKEY_CTX_set_group_name (pctx, group) != 1
      || EVP_PKEY_paramgen (pctx, &params) != 1)
    return NULL;
  g_hash_table_insert (cache, g_strdup (group), params);
  return params;
}

/* From the group's cached domain parameters: EVP_PKEY_fromdata() builds
 * the group from its name for every key, four times the cost. */
EVP_PKEY *
st_ec_public_key_new (const char *group, const guint8 *point, gsize len)
{
  if (group == NULL || point == NULL || len == 0)
    return NULL;
  EVP_PKEY *params = st_ec_params (group);
  EVP_PKEY *key = params != NULL ? EVP_PKEY_dup (params) : NULL;
  if (key != NULL && EVP_PKEY_set1_encoded_public_key (key, point, len) != 1)
    g_clear_pointer (&key, EVP_PKEY_free);
  return key;
}

EVP_PKEY *
st_ec_keygen (const char *group)
{
  g_return_val_if_fail (group != NULL, NULL);
  EVP_PKEY *params = st_ec_params (group);
  if (params == NULL)
    return NULL;
  g_autoptr(EVP_PKEY_CTX) kctx = EVP_PKEY_CTX_new_from_pkey (NULL, params, NULL);
  EVP_PKEY *key = NULL;
  if (kctx == NULL || EVP_PKEY_keygen_init (kctx) != 1 || EVP_PKEY_keygen (kctx, &key) != 1)
    return NULL;
  return key;
}

X509 *
st_x509_from_der (GBytes *der)
{
  gsize len = 0;
  const guint8 *p = der != NULL ? g_bytes_get_data (der, &len) : NULL;
  if (p == NULL || len == 0 || len > G_MAXLONG)
    return NULL;
  const guint8 *start = p;
  X509 *cert = d2i_X509 (NULL, &p, (long) len);
  if (cert != NULL && (gsize) (p - start) != len)
    {
      X509_free (cert);
      return NULL;
    }
  return cert;
}

/* A library context with the "null" provider only: no decoder in it, so a
 * certificate parsed in it keeps its public key undecoded. */
static gpointer
st_fields_ctx_new (gpointer unused)
{
  OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new ();
  if (ctx != NULL && OSSL_PROVIDER_load (ctx, "null") == NULL)
    {
      OSSL_LIB_CTX_free (ctx);
      ctx = NULL;
    }
  return ctx;
}

X509 *
st_x509_from_der_fields (const guint8 *der, gsize len)
{
  static GOnce once = G_ONCE_INIT;
  OSSL_LIB_CTX *ctx = g_once (&once, st_fields_ctx_new, NULL);
  if (ctx == NULL || der == NULL || len == 0 || len > G_MAXLONG)
    return NULL;
  const guint8 *p = der;
  X509 *cert = (X509 *) ASN1_item_d2i_ex (NULL, &p, (long) len, ASN1_ITEM_rptr (X509), ctx, NULL);
  /* the undecoded key leaves a "decode error" behind: not ours to report */
  st_error_clear_openssl ();
  if (cert != NULL && (gsize) (p - der) != len)
    {
      X509_free (cert);
      return NULL;
    }
  return cert;
}

gchar *
st_der_to_pem (const char *label, const guint8 *der, gsize len)
{
  GString *out = g_string_sized_new (len * 4 / 3 + len / 48 + 64);
  g_string_append_printf (out, "-----BEGIN %s-----\n", label);
  for (gsize at = 0; at < len; at += 48)
    {
      gsize n = MIN (48, len - at);
      char line[65];
      int w = EVP_EncodeBlock ((unsigned char *) line, der + at, (int) n);
      g_string_append_len (out, line, w);
      g_string_append_c (out, '\n');
    }
  g_string_append_printf (out, "-----END %s-----\n", label);
  return g_string_free (out, FALSE);
}

gchar *
st_x509_to_pem (X509 *cert)
{
  g_autoptr(BIO) bio = BIO_new (BIO_s_mem ());
  if (bio == NULL || PEM_write_bio_X509 (bio, cert) != 1)
    return NULL;
  char *data = NULL;
  long len = BIO_get_mem_data (bio, &data);
  return g_strndup (data, (gsize) len);
}

gboolean
st_x509_write_pem_file (const char *path, X509 *const *certs, guint n, GError **error)
{
  g_autoptr(BIO) bio = BIO_new (BIO_s_mem ());
  for (guint i = 0; bio != NULL && i < n; i++)
    if (PEM_write_bio_X509 (bio, certs[i]) != 1)
      {
        st_error_set_openssl (error, ST_ERROR_INTERNAL, "PEM_write_bio_X509");
        return FALSE;
      }
  if (bio == NULL)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "BIO_new");
      return FALSE;
    }
  char *data = NULL;
  long len = BIO_get_mem_data (bio, &data);
  return st_file_write_durable (path, data, (gsize) len, 0600, error);
}

gchar *
st_x509_name_text (const X509_NAME *name)
{
  g_autoptr(BIO) bio = BIO_new (BIO_s_mem ());
  if (bio == NULL || X509_NAME_print_ex (bio, name, 0, XN_FLAG_RFC2253) < 0)
    return g_strdup ("(unprintable name)");
  char *p = NULL;
  long n = BIO_get_mem_data (bio, &p);
  return g_strndup (p, (gsize) MAX (n, 0));
}

gchar *
st_asn1_time_text (const ASN1_TIME *t)
{
  struct tm tm;
  if (t == NULL || ASN1_TIME_to_tm (t, &tm) != 1)
    return g_strdup ("(invalid time)");
  return st_time_iso8601_from_unix ((gint64) timegm (&tm));
}
