/* The proof-of-possession certificate a cloud asks for when a CA is
 * registered (AWS IoT's registration code, Azure DPS's verification code):
 * subject CN = the code, signed by the issuing CA in the HSM. */
#include "st-cloud-private.h"

#include <openssl/err.h>
#include <openssl/rand.h>
#include <string.h>

#include "st-error.h"
#include "st-issue.h"
#include "st-ossl.h"

gboolean
st_cloud_check_code (const char *code, GError **error)
{
  gsize n = code != NULL ? strlen (code) : 0;
  gboolean ok = n >= 1 && n <= 64;
  for (gsize i = 0; ok && i < n; i++)
    ok = g_ascii_isalnum (code[i]) || code[i] == '-';
  if (!ok)
    g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                 "the registration code must be 1 to 64 characters of A-Z a-z 0-9 and '-' "
                 "(AWS: the 64 hex digits of 'aws iot get-registration-code'; Azure DPS: the "
                 "verificationCode of 'az iot dps certificate generate-verification-code')");
  return ok;
}

static gboolean
st_vcert_add_ext (X509 *cert, X509 *issuer, int nid, const char *value, GError **error)
{
  X509V3_CTX ctx;
  X509V3_set_ctx (&ctx, issuer, cert, NULL, NULL, 0);
  g_autoptr(X509_EXTENSION) ext = X509V3_EXT_conf_nid (NULL, &ctx, nid, value);
  if (ext == NULL || X509_add_ext (cert, ext, -1) != 1)
    {
      g_autofree gchar *what = g_strdup_printf ("cannot add the extension %s", OBJ_nid2sn (nid));
      st_error_set_openssl (error, ST_ERROR_INTERNAL, what);
      return FALSE;
    }
  return TRUE;
}

X509 *
st_cloud_verification_cert (StCa *ca, const char *code, guint days, gchar **serial_hex,
                            GError **error)
{
  if (!st_cloud_check_code (code, error))
    return NULL;
  int sig_nid = NID_undef;
  switch (st_pubkey_get_alg (X509_get0_pubkey (ca->ca_cert)))
    {
    case ST_ALG_EC_P256:
      sig_nid = NID_ecdsa_with_SHA256;
      break;
    case ST_ALG_EC_P384:
      sig_nid = NID_ecdsa_with_SHA384;
      break;
    case ST_ALG_ED25519:
      sig_nid = NID_ED25519;
      break;
    case ST_ALG_NONE:
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                   "the issuing CA's key is of a kind the station does not sign with");
      return NULL;
    }
  guint8 random[16];
  StSerial serial;
  if (RAND_priv_bytes (random, sizeof random) != 1 || !st_serial_from_random (random, &serial))
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "no random serial (RAND_priv_bytes)");
      return NULL;
    }
  /* Decision: the verification certificate's own key pair is made here, in
   * memory, and dropped with this function: the cloud checks only the CA's
   * signature over the code, nobody ever signs with this key. */
  g_autoptr(EVP_PKEY) key = EVP_EC_gen ("P-256");
  g_autoptr(X509) cert = X509_new ();
  g_autoptr(BIGNUM) bn = BN_bin2bn (serial.bytes, (int) serial.len, NULL);
  g_autoptr(ASN1_INTEGER) sn = bn != NULL ? BN_to_ASN1_INTEGER (bn, NULL) : NULL;
  g_autoptr(X509_NAME) subject = X509_NAME_new ();
  gboolean ok = key != NULL && cert != NULL && sn != NULL && subject != NULL
    && X509_set_version (cert, X509_VERSION_3) == 1
    && X509_set_serialNumber (cert, sn) == 1
    && X509_set_issuer_name (cert, X509_get_subject_name (ca->ca_cert)) == 1
    && X509_NAME_add_entry_by_NID (subject, NID_commonName, MBSTRING_ASC, (const guint8 *) code, -1, -1, 0) == 1
    && X509_set_subject_name (cert, subject) == 1
    && X509_gmtime_adj (X509_getm_notBefore (cert), 0) != NULL
    && X509_gmtime_adj (X509_getm_notAfter (cert), (long) days * 86400) != NULL
    && X509_set_pubkey (cert, key) == 1;
  if (!ok)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "cannot build the verification certificate");
      return NULL;
    }
  /* Not a device certificate and not the station's signer: CA:FALSE, a
   * signature key usage only, no extended key usage at all. */
  if (!st_vcert_add_ext (cert, ca->ca_cert, NID_basic_constraints, "critical,CA:FALSE", error)
      || !st_vcert_add_ext (cert, ca->ca_cert, NID_key_usage, "critical,digitalSignature", error)
      || !st_vcert_add_ext (cert, ca->ca_cert, NID_subject_key_identifier, "hash", error)
      || !st_vcert_add_ext (cert, ca->ca_cert, NID_authority_key_identifier, "keyid:always", error))
    return NULL;
  X509_ALGOR *tbs_alg = (X509_ALGOR *) X509_get0_tbs_sigalg (cert);
  if (X509_ALGOR_set0 (tbs_alg, OBJ_nid2obj (sig_nid), V_ASN1_UNDEF, NULL) != 1)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "X509_ALGOR_set0");
      return NULL;
    }
  gboolean hsm_failed = FALSE;
  if (!st_ca_sign_cert (ca, cert, &hsm_failed, error))
    return NULL;
  /* what leaves the station is checked as a verifier checks it */
  guint8 *der = NULL;
  int len = i2d_X509 (cert, &der);
  const guint8 *p = der;
  g_autoptr(X509) back = len > 0 ? d2i_X509 (NULL, &p, len) : NULL;
  OPENSSL_free (der);
  if (back == NULL || !st_ca_check_chain (ca->chain, ca->root, back, error))
    {
      if (back == NULL)
        st_error_set_openssl (error, ST_ERROR_INTERNAL, "the verification certificate does not encode");
      return NULL;
    }
  if (serial_hex != NULL)
    *serial_hex = st_serial_to_hex (&serial);
  return g_steal_pointer (&cert);
}
