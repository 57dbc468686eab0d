/* Certificate issuance (st-issue.h). */
#include "st-issue.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/objects.h>
#include <string.h>
#include <time.h>

#include "st-error.h"
#include "st-matter-dac.h"
#include "st-ossl.h"
#include "st-util.h"

#define NO_EXPIRY "99991231235959Z"

/* ---- keys ---- */

StAlg
st_pubkey_get_alg (EVP_PKEY *key)
{
  if (key == NULL)
    return ST_ALG_NONE;
  switch (EVP_PKEY_get_base_id (key))
    {
    case EVP_PKEY_ED25519:
      return ST_ALG_ED25519;
    case EVP_PKEY_EC:
      {
        char group[64] = "";
        char encoding[32] = "";
        if (EVP_PKEY_get_group_name (key, group, sizeof group, NULL) != 1)
          break;
        /* Explicit parameters that happen to equal a named curve are still
         * refused. */
        if (EVP_PKEY_get_utf8_string_param (key, OSSL_PKEY_PARAM_EC_ENCODING,
                                            encoding, sizeof encoding, NULL) == 1
            && strcmp (encoding, OSSL_PKEY_EC_ENCODING_GROUP) != 0)
          break;
        int nid = OBJ_txt2nid (group);
        if (nid == NID_undef)
          nid = EC_curve_nist2nid (group);
        if (nid == NID_X9_62_prime256v1)
          return ST_ALG_EC_P256;
        if (nid == NID_secp384r1)
          return ST_ALG_EC_P384;
        break;
      }
    default:
      break;
    }
  st_error_clear_openssl ();
  return ST_ALG_NONE;
}

gchar *
st_pubkey_sha256_hex (EVP_PKEY *key)
{
  g_return_val_if_fail (key != NULL, NULL);
  g_autoptr(GBytes) der = st_spki_der (key);
  if (der == NULL)
    {
      st_error_clear_openssl ();
      return NULL;
    }
  gsize len = 0;
  const guint8 *d = g_bytes_get_data (der, &len);
  return st_sha256_hex (d, len);
}

gchar *
st_x509_pubkey_sha256_hex (X509 *cert, GError **error)
{
  g_return_val_if_fail (cert != NULL, NULL);
  unsigned char *der = NULL;
  int len = i2d_X509_PUBKEY (X509_get_X509_PUBKEY (cert), &der);
  if (len <= 0)
    {
      OPENSSL_free (der);
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "encoding the certificate's public key");
      return NULL;
    }
  gchar *hex = st_sha256_hex (der, (gsize) len);
  OPENSSL_free (der);
  return hex;
}

/* ---- serials ---- */

gboolean
st_serial_from_random (const guint8 random[16], StSerial *out)
{
  g_return_val_if_fail (random != NULL && out != NULL, FALSE);
  gboolean all_same = TRUE;
  for (guint i = 1; i < 16; i++)
    all_same = all_same && random[i] == random[0];
  if (all_same)
    return FALSE;
  memset (out, 0, sizeof *out);
  out->bytes[0] = 0x00;
  memcpy (out->bytes + 1, random, 16);
  out->bytes[1] |= 0x80;
  out->len = 17;
  return TRUE;
}

gchar *
st_serial_to_hex (const StSerial *serial)
{
  g_return_val_if_fail (serial != NULL && serial->len <= sizeof serial->bytes, NULL);
  gsize skip = 0;
  while (skip + 1 < serial->len && serial->bytes[skip] == 0x00)
    skip++;
  return st_hex_encode (serial->bytes + skip, serial->len - skip);
}

static ASN1_INTEGER *
serial_to_asn1 (const StSerial *serial, GError **error)
{
  if (serial->len == 0 || serial->len > sizeof serial->bytes)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INTERNAL, "bad serial length");
      return NULL;
    }
  g_autoptr(BIGNUM) bn = BN_bin2bn (serial->bytes, (int) serial->len, NULL);
  if (bn == NULL || BN_is_zero (bn))
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INTERNAL, "the serial is zero");
      return NULL;
    }
  ASN1_INTEGER *ai = BN_to_ASN1_INTEGER (bn, NULL);
  if (ai == NULL)
    st_error_set_openssl (error, ST_ERROR_INTERNAL, "BN_to_ASN1_INTEGER");
  return ai;
}

/* ---- times ---- */

static gboolean
asn1_time_to_unix (const ASN1_TIME *t, gint64 *out)
{
  struct tm tm = { 0 };
  if (t == NULL || ASN1_TIME_to_tm (t, &tm) != 1)
    return FALSE;
  *out = (gint64) timegm (&tm);
  return TRUE;
}

static gchar *
unix_to_text (gint64 t)
{
  if (t >= 253402300799) /* 9999-12-31T23:59:59Z */
    return g_strdup ("9999-12-31T23:59:59Z (no expiry)");
  return st_time_iso8601_from_unix (t);
}

static ASN1_TIME *
time_for_cert (gint64 t)
{
  return ASN1_TIME_set (NULL, (time_t) t);
}

static ASN1_TIME *
time_no_expiry (void)
{
  ASN1_TIME *t = ASN1_TIME_new ();
  if (t != NULL && ASN1_TIME_set_string_X509 (t, NO_EXPIRY) != 1)
    {
      ASN1_TIME_free (t);
      return NULL;
    }
  return t;
}

typedef struct {
  gint64 not_before, not_after;
} CaValidity;

static gboolean
ca_validity (X509 *ca_cert, CaValidity *v, GError **error)
{
  if (!asn1_time_to_unix (X509_get0_notBefore (ca_cert), &v->not_before)
      || !asn1_time_to_unix (X509_get0_notAfter (ca_cert), &v->not_after))
    {
      st_error_set_openssl (error, ST_ERROR_INVALID_DATA,
                            "the issuing CA certificate's validity cannot be read");
      return FALSE;
    }
  return TRUE;
}

/* ---- signature algorithm from the CA ---- */

static gboolean
ca_sig_params (X509 *ca_cert, const EVP_MD **md, int *sig_nid, GError **error)
{
  EVP_PKEY *ca_pub = X509_get0_pubkey (ca_cert);
  switch (st_pubkey_get_alg (ca_pub))
    {
    case ST_ALG_EC_P256:
      *md = EVP_sha256 ();
      *sig_nid = NID_ecdsa_with_SHA256;
      return TRUE;
    case ST_ALG_EC_P384:
      *md = EVP_sha384 ();
      *sig_nid = NID_ecdsa_with_SHA384;
      return TRUE;
    case ST_ALG_ED25519:
      *md = NULL;
      *sig_nid = NID_ED25519;
      return TRUE;
    case ST_ALG_NONE:
      break;
    }
  st_error_clear_openssl ();
  g_set_error_literal (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                       "the issuing CA's key is not EC P-256, EC P-384 or Ed25519; the station cannot sign with it");
  return FALSE;
}

/* ---- SKI ---- */

static ASN1_OCTET_STRING *
key_identifier (X509_PUBKEY *xpk, GError **error)
{
  const unsigned char *bits = NULL;
  int bits_len = 0;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (xpk == NULL || X509_PUBKEY_get0_param (NULL, &bits, &bits_len, NULL, xpk) != 1
      || EVP_Digest (bits, (size_t) bits_len, md, &md_len, EVP_sha1 (), NULL) != 1)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "computing the subject key identifier");
      return NULL;
    }
  ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new ();
  if (os == NULL || ASN1_OCTET_STRING_set (os, md, (int) md_len) != 1)
    {
      ASN1_OCTET_STRING_free (os);
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "ASN1_OCTET_STRING_set");
      return NULL;
    }
  return os;
}

/* ---- building ---- */

static const struct { guint ku; int bit; } ku_bits[] = {
  { KU_DIGITAL_SIGNATURE, 0 },
  { KU_NON_REPUDIATION, 1 },
  { KU_KEY_ENCIPHERMENT, 2 },
  { KU_DATA_ENCIPHERMENT, 3 },
  { KU_KEY_AGREEMENT, 4 },
};

static gboolean
add_ext (X509 *cert, int nid, void *value, gboolean critical, GError **error)
{
  if (X509_add1_ext_i2d (cert, nid, value, critical ? 1 : 0, X509V3_ADD_DEFAULT) != 1)
    {
      g_autofree gchar *what = g_strdup_printf ("adding the %s extension", OBJ_nid2sn (nid));
      st_error_set_openssl (error, ST_ERROR_INTERNAL, what);
      return FALSE;
    }
  return TRUE;
}

gboolean
st_issue_check_profile (X509 *ca_cert, const StProfile *profile, GDateTime *now, GError **error)
{
  g_return_val_if_fail (ca_cert != NULL && profile != NULL && now != NULL, FALSE);
  const EVP_MD *md = NULL;
  int sig_nid = NID_undef;
  if (!ca_sig_params (ca_cert, &md, &sig_nid, error))
    return FALSE;
  if (X509_get0_subject_key_id (ca_cert) == NULL)
    {
      st_error_clear_openssl ();
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "the issuing CA certificate has no subject key identifier; issue the CA certificate with one (RFC 5280 4.2.1.2)");
      return FALSE;
    }
  if ((X509_get_extension_flags (ca_cert) & EXFLAG_KUSAGE) != 0
      && (X509_get_key_usage (ca_cert) & KU_KEY_CERT_SIGN) == 0)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "the issuing CA certificate's key usage lacks keyCertSign: it may not sign "
                           "certificates; issue the CA certificate anew with keyCertSign");
      return FALSE;
    }
  /* a Matter profile: the issuing CA is its PAI, of the profile's vendor
   * (and product, when the PAI names one) */
  if (profile->matter.enabled)
    {
      StMatterIds pai;
      if (!st_matter_pai_check (ca_cert, &pai, error))
        {
          g_prefix_error (error, "profile %s needs the issuing CA to be a Matter PAI: ", profile->name);
          return FALSE;
        }
      if (pai.vid != profile->matter.vendor_id || (pai.has_pid && pai.pid != profile->matter.product_id))
        {
          g_autofree gchar *pid = pai.has_pid ? g_strdup_printf ("PID %04X", pai.pid) : g_strdup ("no PID");
          g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                       "profile %s: [matter] vendor-id=%04X product-id=%04X does not match the issuing CA (the PAI: VID %04X, %s); fix the profile or issue under the product's PAI",
                       profile->name, profile->matter.vendor_id, profile->matter.product_id, pai.vid, pid);
          return FALSE;
        }
    }
  CaValidity ca;
  if (!ca_validity (ca_cert, &ca, error))
    return FALSE;
  gint64 t_now = g_date_time_to_unix (now);
  if (t_now < ca.not_before || t_now > ca.not_after)
    {
      g_autofree gchar *s_now = unix_to_text (t_now);
      g_autofree gchar *s_nb = unix_to_text (ca.not_before);
      g_autofree gchar *s_na = unix_to_text (ca.not_after);
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "the station clock (%s) is outside the issuing CA's validity (%s to %s); set the station's clock right, or renew the CA",
                   s_now, s_nb, s_na);
      return FALSE;
    }
  if (!profile->no_expiry)
    {
      gint64 na = t_now + (gint64) profile->validity_days * 86400;
      if (na > ca.not_after)
        {
          g_autofree gchar *s_na = unix_to_text (na);
          g_autofree gchar *s_ca = unix_to_text (ca.not_after);
          gint64 max_days = (ca.not_after - t_now) / 86400;
          g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                       "profile %s: a certificate of validity-days=%d issued now would be valid until %s, "
                       "after the issuing CA's notAfter (%s); set validity-days to at most %" G_GINT64_FORMAT
                       " in the profile (less, for a batch that runs for days), or renew the CA",
                       profile->name, profile->validity_days, s_na, s_ca, max_days);
          return FALSE;
        }
    }
  return TRUE;
}

X509 *
st_issue_build (X509 *ca_cert, const StProfile *profile, EVP_PKEY *subject_key,
                const StSubjectInfo *info, const StSerial *serial, GDateTime *now,
                GError **error)
{
  g_return_val_if_fail (ca_cert != NULL && profile != NULL && subject_key != NULL, NULL);
  g_return_val_if_fail (info != NULL && serial != NULL && now != NULL, NULL);

  if (st_pubkey_get_alg (subject_key) != profile->alg)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "the key to certify is not %s as profile %s asks",
                   st_alg_describe (profile->alg), profile->name);
      return NULL;
    }
  /* The CA and the profile: the same rules as at `batch create`. */
  if (!st_issue_check_profile (ca_cert, profile, now, error))
    return NULL;
  const EVP_MD *md = NULL;
  int sig_nid = NID_undef;
  if (!ca_sig_params (ca_cert, &md, &sig_nid, error))
    return NULL;
  const ASN1_OCTET_STRING *ca_ski = X509_get0_subject_key_id (ca_cert);

  /* Validity (checked above: within the CA's). */
  CaValidity ca;
  if (!ca_validity (ca_cert, &ca, error))
    return NULL;
  gint64 t_now = g_date_time_to_unix (now);
  gint64 nb = MAX (t_now - (gint64) profile->backdate_minutes * 60, ca.not_before);
  g_autoptr(ASN1_TIME) not_before = time_for_cert (nb);
  g_autoptr(ASN1_TIME) not_after = NULL;
  if (profile->no_expiry)
    not_after = time_no_expiry ();
  else
    not_after = time_for_cert (t_now + (gint64) profile->validity_days * 86400);
  if (not_before == NULL || not_after == NULL)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "ASN1_TIME_set");
      return NULL;
    }

  g_autoptr(X509) cert = X509_new ();
  g_autoptr(ASN1_INTEGER) sn = serial_to_asn1 (serial, error);
  if (sn == NULL)
    return NULL;
  g_autoptr(X509_NAME) subject = st_profile_build_subject (profile->subject_template, info, error);
  if (subject == NULL)
    {
      g_prefix_error (error, "profile %s: ", profile->name);
      return NULL;
    }
  /* a Matter DAC: the [matter] VID and PID after the template's attributes */
  if (profile->matter.enabled
      && !st_matter_name_add_ids (subject, profile->matter.vendor_id, profile->matter.product_id, error))
    return NULL;
  if (cert == NULL
      || X509_set_version (cert, X509_VERSION_3) != 1
      || X509_set_serialNumber (cert, sn) != 1
      || X509_set_issuer_name (cert, X509_get_subject_name (ca_cert)) != 1
      || X509_set_subject_name (cert, subject) != 1
      || X509_set1_notBefore (cert, not_before) != 1
      || X509_set1_notAfter (cert, not_after) != 1
      /* the key without OpenSSL 3.0's encoders (st-ossl.h) */
      || (!st_spki_set_param (X509_get_X509_PUBKEY (cert), subject_key)
          && X509_set_pubkey (cert, subject_key) != 1))
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "building the certificate");
      return NULL;
    }

  /* The signature algorithm of the to-be-signed part, as X509_sign() will
   * set it (no parameters for ECDSA and Ed25519: RFC 5758, RFC 8410). */
  X509_ALGOR *tbs_alg = (X509_ALGOR *) X509_get0_tbs_sigalg (cert);
  if (X509_ALGOR_set0 (tbs_alg, OBJ_nid2obj (sig_nid), V_ASN1_UNDEF, NULL) != 1)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "X509_ALGOR_set0");
      return NULL;
    }

  /* basicConstraints CA:FALSE, critical. */
  BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new ();
  if (bc == NULL)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "BASIC_CONSTRAINTS_new");
      return NULL;
    }
  bc->ca = 0;
  gboolean ok = add_ext (cert, NID_basic_constraints, bc, TRUE, error);
  BASIC_CONSTRAINTS_free (bc);
  if (!ok)
    return NULL;

  /* keyUsage, critical. */
  ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new ();
  ok = ku != NULL;
  for (guint i = 0; ok && i < G_N_ELEMENTS (ku_bits); i++)
    if (profile->key_usage & ku_bits[i].ku)
      ok = ASN1_BIT_STRING_set_bit (ku, ku_bits[i].bit, 1) == 1;
  ok = ok ? add_ext (cert, NID_key_usage, ku, TRUE, error)
          : (st_error_set_openssl (error, ST_ERROR_INTERNAL, "keyUsage"), FALSE);
  ASN1_BIT_STRING_free (ku);
  if (!ok)
    return NULL;

  /* extendedKeyUsage. */
  if (profile->eku != NULL && profile->eku[0] != NULL)
    {
      EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null ();
      ok = eku != NULL;
      for (guint i = 0; ok && profile->eku[i] != NULL; i++)
        {
          ASN1_OBJECT *o = OBJ_txt2obj (profile->eku[i], 1);
          ok = o != NULL && sk_ASN1_OBJECT_push (eku, o) > 0;
          if (!ok)
            ASN1_OBJECT_free (o);
        }
      ok = ok ? add_ext (cert, NID_ext_key_usage, eku, FALSE, error)
              : (st_error_set_openssl (error, ST_ERROR_INTERNAL, "extendedKeyUsage"), FALSE);
      sk_ASN1_OBJECT_pop_free (eku, ASN1_OBJECT_free);
      if (!ok)
        return NULL;
    }

  /* subjectKeyIdentifier (RFC 5280 4.2.1.2 method 1). */
  g_autoptr(ASN1_OCTET_STRING) ski = key_identifier (X509_get_X509_PUBKEY (cert), error);
  if (ski == NULL || !add_ext (cert, NID_subject_key_identifier, ski, FALSE, error))
    return NULL;

  /* authorityKeyIdentifier: the CA's SKI. */
  AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new ();
  if (akid == NULL || (akid->keyid = ASN1_OCTET_STRING_dup (ca_ski)) == NULL)
    {
      AUTHORITY_KEYID_free (akid);
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "AUTHORITY_KEYID");
      return NULL;
    }
  ok = add_ext (cert, NID_authority_key_identifier, akid, FALSE, error);
  AUTHORITY_KEYID_free (akid);
  if (!ok)
    return NULL;

  /* subjectAltName. */
  if (profile->san_templates != NULL && profile->san_templates[0] != NULL)
    {
      g_autoptr(GENERAL_NAMES) san = st_profile_build_san ((const char *const *) profile->san_templates,
                                                           info, error);
      if (san == NULL)
        {
          g_prefix_error (error, "profile %s: ", profile->name);
          return NULL;
        }
      if (!add_ext (cert, NID_subject_alt_name, san, FALSE, error))
        return NULL;
    }
  return g_steal_pointer (&cert);
}

GBytes *
st_issue_tbs_der (X509 *cert, GError **error)
{
  g_return_val_if_fail (cert != NULL, NULL);
  unsigned char *der = NULL;
  int len = i2d_re_X509_tbs (cert, &der);
  if (len <= 0)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "encoding the to-be-signed certificate");
      return NULL;
    }
  GBytes *out = g_bytes_new (der, (gsize) len);
  OPENSSL_free (der);
  return out;
}

gboolean
st_issue_sign (X509 *cert, EVP_PKEY *ca_key, X509 *ca_cert, GError **error)
{
  return st_issue_sign_locked (cert, ca_key, ca_cert, NULL, NULL, NULL, error);
}

gboolean
st_issue_sign_locked (X509 *cert, EVP_PKEY *ca_key, X509 *ca_cert, StIssueLockFunc lock,
                      StIssueLockFunc unlock, gpointer lock_data, GError **error)
{
  g_return_val_if_fail (cert != NULL && ca_key != NULL && ca_cert != NULL, FALSE);
  const EVP_MD *md = NULL;
  int sig_nid = NID_undef;
  if (!ca_sig_params (ca_cert, &md, &sig_nid, error))
    return FALSE;
  g_autoptr(GBytes) before = st_issue_tbs_der (cert, error);
  if (before == NULL)
    return FALSE;

  st_error_clear_openssl ();
  if (lock != NULL)
    lock (lock_data);
  int signed_len = X509_sign (cert, ca_key, md);
  if (unlock != NULL)
    unlock (lock_data);
  if (signed_len <= 0)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "signing the certificate with the CA key failed");
      return FALSE;
    }

  g_autoptr(GBytes) after = st_issue_tbs_der (cert, error);
  if (after == NULL)
    return FALSE;
  if (!g_bytes_equal (before, after))
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                           "signing changed the to-be-signed certificate (the CA key's signature algorithm differs from the CA certificate's key); the recorded certificate is not the signed one");
      return FALSE;
    }
  int rc = X509_verify (cert, X509_get0_pubkey (ca_cert));
  if (rc != 1)
    {
      g_autofree gchar *what = g_strdup_printf (
          "the new certificate's signature does not verify with the CA certificate's key (X509_verify returned %d): the CA key does not belong to the CA certificate",
          rc);
      st_error_set_openssl (error, ST_ERROR_VERIFY_FAILED, what);
      return FALSE;
    }
  return TRUE;
}

/* ---- lint ---- */

#define lint_fail(error, ...) \
  st_error_verify_failed ((error), "the issued certificate breaks the rule: %s", __VA_ARGS__)

static gboolean
der_equal (const void *a, int (*i2d) (const void *, unsigned char **), const void *b)
{
  unsigned char *da = NULL, *db = NULL;
  int la = i2d (a, &da);
  int lb = i2d (b, &db);
  gboolean same = la > 0 && la == lb && memcmp (da, db, (size_t) la) == 0;
  OPENSSL_free (da);
  OPENSSL_free (db);
  return same;
}

static int
i2d_name (const void *n, unsigned char **out)
{
  return i2d_X509_NAME ((const X509_NAME *) n, out);
}

static int
i2d_names (const void *n, unsigned char **out)
{
  return i2d_GENERAL_NAMES ((const GENERAL_NAMES *) n, out);
}

static gboolean
time_equal (const ASN1_TIME *a, const ASN1_TIME *b)
{
  return a != NULL && b != NULL && ASN1_STRING_type (a) == ASN1_STRING_type (b)
         && ASN1_STRING_cmp (a, b) == 0;
}

gboolean
st_issue_check (X509 *cert, X509 *ca_cert, const StProfile *profile, EVP_PKEY *subject_key,
                const StSubjectInfo *info, const StSerial *serial, GError **error)
{
  g_return_val_if_fail (cert != NULL && ca_cert != NULL && profile != NULL, FALSE);
  g_return_val_if_fail (subject_key != NULL && info != NULL && serial != NULL, FALSE);

  /* Decoding the extensions; duplicates make OpenSSL flag the certificate. */
  guint32 exflags = X509_get_extension_flags (cert);
  if (exflags & EXFLAG_INVALID)
    return lint_fail (error, "extensions must decode and appear once each");

  if (X509_get_version (cert) != X509_VERSION_3)
    return lint_fail (error, "version must be 3 (is %ld)", X509_get_version (cert) + 1);

  g_autoptr(ASN1_INTEGER) want_sn = serial_to_asn1 (serial, error);
  if (want_sn == NULL)
    return FALSE;
  if (ASN1_INTEGER_cmp (X509_get0_serialNumber (cert), want_sn) != 0)
    return lint_fail (error, "serial number must be the reserved one");

  if (X509_NAME_cmp (X509_get_issuer_name (cert), X509_get_subject_name (ca_cert)) != 0)
    return lint_fail (error, "issuer must be the CA certificate's subject");

  const ASN1_BIT_STRING *iuid = NULL, *suid = NULL;
  X509_get0_uids (cert, &iuid, &suid);
  if (iuid != NULL || suid != NULL)
    return lint_fail (error, "no issuerUniqueID or subjectUniqueID");

  /* Signature. */
  const EVP_MD *md = NULL;
  int sig_nid = NID_undef;
  if (!ca_sig_params (ca_cert, &md, &sig_nid, error))
    return FALSE;
  const ASN1_BIT_STRING *sig = NULL;
  const X509_ALGOR *outer = NULL;
  X509_get0_signature (&sig, &outer, cert);
  const X509_ALGOR *inner = X509_get0_tbs_sigalg (cert);
  const ASN1_OBJECT *inner_oid = NULL;
  int inner_ptype = 0;
  X509_ALGOR_get0 (&inner_oid, &inner_ptype, NULL, inner);
  if (outer == NULL || X509_ALGOR_cmp (outer, inner) != 0
      || OBJ_obj2nid (inner_oid) != sig_nid || inner_ptype != V_ASN1_UNDEF)
    return lint_fail (error, "signature algorithm must be %s without parameters, in both places",
                      OBJ_nid2sn (sig_nid));
  if (X509_verify (cert, X509_get0_pubkey (ca_cert)) != 1)
    return lint_fail (error, "signature must verify with the CA certificate's key");

  /* Validity. */
  CaValidity ca;
  if (!ca_validity (ca_cert, &ca, error))
    return FALSE;
  gint64 nb = 0, na = 0;
  if (!asn1_time_to_unix (X509_get0_notBefore (cert), &nb)
      || !asn1_time_to_unix (X509_get0_notAfter (cert), &na))
    return lint_fail (error, "validity times must be readable");
  g_autoptr(ASN1_TIME) nb_canon = time_for_cert (nb);
  if (!time_equal (nb_canon, X509_get0_notBefore (cert)))
    return lint_fail (error, "notBefore must be encoded as RFC 5280 says (UTCTime before 2050, YYMMDDHHMMSSZ)");
  if (nb < ca.not_before)
    return lint_fail (error, "notBefore must not be before the CA's notBefore");
  if (profile->no_expiry)
    {
      g_autoptr(ASN1_TIME) forever = time_no_expiry ();
      if (!time_equal (forever, X509_get0_notAfter (cert)))
        return lint_fail (error, "notAfter must be 99991231235959Z (GeneralizedTime) for validity=no-expiry");
    }
  else
    {
      g_autoptr(ASN1_TIME) na_canon = time_for_cert (na);
      gint64 span = na - nb;
      gint64 days = (gint64) profile->validity_days * 86400;
      if (!time_equal (na_canon, X509_get0_notAfter (cert)))
        return lint_fail (error, "notAfter must be encoded as RFC 5280 says");
      if (na > ca.not_after)
        return lint_fail (error, "notAfter must not be after the CA's notAfter");
      if (span < days || span > days + (gint64) profile->backdate_minutes * 60)
        return lint_fail (error, "validity must be validity-days=%d after the issuing time (backdate-minutes=%u)",
                          profile->validity_days, profile->backdate_minutes);
    }

  /* Extensions: exactly the expected set. */
  gboolean want_eku = profile->eku != NULL && profile->eku[0] != NULL;
  gboolean want_san = profile->san_templates != NULL && profile->san_templates[0] != NULL;
  int n_ext = X509_get_ext_count (cert);
  int expected = 4 + (want_eku ? 1 : 0) + (want_san ? 1 : 0);
  for (int i = 0; i < n_ext; i++)
    {
      int nid = OBJ_obj2nid (X509_EXTENSION_get_object (X509_get_ext (cert, i)));
      gboolean allowed = nid == NID_basic_constraints || nid == NID_key_usage
                         || nid == NID_subject_key_identifier || nid == NID_authority_key_identifier
                         || (want_eku && nid == NID_ext_key_usage)
                         || (want_san && nid == NID_subject_alt_name);
      if (!allowed)
        {
          char oid[80] = "";
          OBJ_obj2txt (oid, sizeof oid, X509_EXTENSION_get_object (X509_get_ext (cert, i)), 0);
          return lint_fail (error, "no extensions but those of the profile (found %s)", oid);
        }
    }
  if (n_ext != expected)
    return lint_fail (error, "exactly %d extensions, once each (found %d)", expected, n_ext);

  int crit = -1;
  BASIC_CONSTRAINTS *bc = X509_get_ext_d2i (cert, NID_basic_constraints, &crit, NULL);
  gboolean bc_ok = bc != NULL && crit == 1 && bc->ca == 0 && bc->pathlen == NULL;
  BASIC_CONSTRAINTS_free (bc);
  if (!bc_ok || (exflags & EXFLAG_CA))
    return lint_fail (error, "basicConstraints must be present, critical, CA:FALSE without pathLen");

  crit = -1;
  ASN1_BIT_STRING *ku = X509_get_ext_d2i (cert, NID_key_usage, &crit, NULL);
  gboolean ku_present = ku != NULL;
  ASN1_BIT_STRING_free (ku);
  if (!ku_present || crit != 1 || X509_get_key_usage (cert) != profile->key_usage)
    return lint_fail (error, "keyUsage must be critical with exactly the profile's bits");

  if (want_eku)
    {
      crit = -1;
      EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i (cert, NID_ext_key_usage, &crit, NULL);
      gboolean eku_ok = eku != NULL && crit == 0
                        && sk_ASN1_OBJECT_num (eku) == (int) g_strv_length (profile->eku);
      for (int i = 0; eku_ok && i < sk_ASN1_OBJECT_num (eku); i++)
        {
          char oid[128] = "";
          OBJ_obj2txt (oid, sizeof oid, sk_ASN1_OBJECT_value (eku, i), 1);
          eku_ok = strcmp (oid, profile->eku[i]) == 0;
        }
      sk_ASN1_OBJECT_pop_free (eku, ASN1_OBJECT_free);
      if (!eku_ok)
        return lint_fail (error, "extendedKeyUsage must be non-critical with exactly the profile's usages");
    }

  crit = -1;
  ASN1_OCTET_STRING *ski = X509_get_ext_d2i (cert, NID_subject_key_identifier, &crit, NULL);
  g_autoptr(ASN1_OCTET_STRING) want_ski = key_identifier (X509_get_X509_PUBKEY (cert), NULL);
  gboolean ski_ok = ski != NULL && crit == 0 && want_ski != NULL
                    && ASN1_OCTET_STRING_cmp (ski, want_ski) == 0;
  ASN1_OCTET_STRING_free (ski);
  if (!ski_ok)
    return lint_fail (error, "subjectKeyIdentifier must be non-critical, the SHA-1 of the public key (RFC 5280 method 1)");

  crit = -1;
  AUTHORITY_KEYID *akid = X509_get_ext_d2i (cert, NID_authority_key_identifier, &crit, NULL);
  const ASN1_OCTET_STRING *ca_ski = X509_get0_subject_key_id (ca_cert);
  gboolean akid_ok = akid != NULL && crit == 0 && akid->keyid != NULL && akid->issuer == NULL
                     && akid->serial == NULL && ca_ski != NULL
                     && ASN1_OCTET_STRING_cmp (akid->keyid, ca_ski) == 0;
  AUTHORITY_KEYID_free (akid);
  if (!akid_ok)
    return lint_fail (error, "authorityKeyIdentifier must be non-critical, the CA's subjectKeyIdentifier only");

  g_autoptr(GError) local = NULL;
  g_autoptr(X509_NAME) want_subject = st_profile_build_subject (profile->subject_template, info, &local);
  if (want_subject == NULL)
    return lint_fail (error, "subject must follow the profile (%s)", local->message);
  if (profile->matter.enabled
      && !st_matter_name_add_ids (want_subject, profile->matter.vendor_id, profile->matter.product_id, error))
    return FALSE;
  if (!der_equal (want_subject, i2d_name, X509_get_subject_name (cert)))
    return lint_fail (error, "subject must be exactly the profile's subject for this device");

  if (want_san)
    {
      g_autoptr(GENERAL_NAMES) want = st_profile_build_san ((const char *const *) profile->san_templates,
                                                            info, &local);
      if (want == NULL)
        return lint_fail (error, "subjectAltName must follow the profile (%s)", local->message);
      crit = -1;
      g_autoptr(GENERAL_NAMES) have = X509_get_ext_d2i (cert, NID_subject_alt_name, &crit, NULL);
      if (have == NULL || crit != 0 || !der_equal (want, i2d_names, have))
        return lint_fail (error, "subjectAltName must be non-critical and exactly the profile's names for this device");
    }

  {
    /* byte for byte the device's SubjectPublicKeyInfo */
    g_autoptr(GBytes) want_spki = st_spki_der (subject_key);
    unsigned char *have = NULL;
    int have_len = i2d_X509_PUBKEY (X509_get_X509_PUBKEY (cert), &have);
    gboolean same = want_spki != NULL && have_len > 0
                    && (gsize) have_len == g_bytes_get_size (want_spki)
                    && memcmp (have, g_bytes_get_data (want_spki, NULL), (gsize) have_len) == 0;
    OPENSSL_free (have);
    if (!same)
      return lint_fail (error, "the public key must be the device's key");
  }
  if (st_pubkey_get_alg (subject_key) != profile->alg)
    return lint_fail (error, "the key must be %s", st_alg_describe (profile->alg));
  /* a Matter profile: the DAC rules, the issuing CA as the PAI (docs/matter.md) */
  if (profile->matter.enabled && !st_matter_dac_check (cert, ca_cert, error))
    return FALSE;
  return TRUE;
}

/* ---- station keys ---- */

EVP_PKEY *
st_issue_station_keygen (StAlg alg, GBytes **pkcs8_out, GError **error)
{
  g_return_val_if_fail (pkcs8_out != NULL && *pkcs8_out == NULL, NULL);
  g_autoptr(EVP_PKEY) key = NULL;
  switch (alg)
    {
    case ST_ALG_EC_P256:
      key = st_ec_keygen ("P-256");
      break;
    case ST_ALG_EC_P384:
      key = st_ec_keygen ("P-384");
      break;
    case ST_ALG_ED25519:
      key = EVP_PKEY_Q_keygen (NULL, NULL, "ED25519");
      break;
    case ST_ALG_NONE:
    default:
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                   "cannot make a station key of algorithm %d", (int) alg);
      return NULL;
    }
  if (key == NULL)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "making the station key");
      return NULL;
    }
  g_autoptr(PKCS8_PRIV_KEY_INFO) p8 = EVP_PKEY2PKCS8 (key);
  unsigned char *der = NULL;
  int len = p8 != NULL ? i2d_PKCS8_PRIV_KEY_INFO (p8, &der) : -1;
  if (len <= 0)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "encoding the station key as PKCS#8");
      return NULL;
    }
  guint8 *copy = g_malloc ((gsize) len);
  memcpy (copy, der, (gsize) len);
  OPENSSL_clear_free (der, (size_t) len);
  *pkcs8_out = g_bytes_new_take (copy, (gsize) len);
  return g_steal_pointer (&key);
}
