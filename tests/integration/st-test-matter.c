/* Matter test material for the integration tests: st-test-matter.h. */
#include "st-test-matter.h"

#include <openssl/x509v3.h>

#include "st-matter-cd.h"

static void
add_ext (X509 *cert, X509 *issuer, int nid, const char *value)
{
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb (&ctx);
  X509V3_set_ctx (&ctx, issuer != NULL ? issuer : cert, cert, NULL, NULL, 0);
  X509_EXTENSION *ext = X509V3_EXT_conf_nid (NULL, &ctx, nid, value);
  g_assert_nonnull (ext);
  g_assert_cmpint (X509_add_ext (cert, ext, -1), ==, 1);
  X509_EXTENSION_free (ext);
}

X509 *
st_test_matter_ca (const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, gboolean pai)
{
  X509 *cert = X509_new ();
  X509_set_version (cert, 2);
  ASN1_INTEGER_set (X509_get_serialNumber (cert), pai ? 2 : 1);
  X509_gmtime_adj (X509_getm_notBefore (cert), -86400);
  X509_gmtime_adj (X509_getm_notAfter (cert), 86400L * 3650);
  X509_NAME *name = X509_NAME_new ();
  X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_UTF8, (const guint8 *) cn, -1, -1, 0);
  X509_NAME_add_entry_by_txt (name, "1.3.6.1.4.1.37244.2.1", V_ASN1_UTF8STRING,
                              (const guint8 *) "FFF1", -1, -1, 0);
  X509_set_subject_name (cert, name);
  X509_set_issuer_name (cert, issuer != NULL ? X509_get_subject_name (issuer) : name);
  X509_NAME_free (name);
  X509_set_pubkey (cert, key);
  add_ext (cert, issuer, NID_basic_constraints, pai ? "critical,CA:TRUE,pathlen:0" : "critical,CA:TRUE,pathlen:1");
  add_ext (cert, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
  add_ext (cert, issuer, NID_subject_key_identifier, "hash");
  add_ext (cert, issuer, NID_authority_key_identifier, "keyid:always");
  g_assert_cmpint (X509_sign (cert, issuer_key, EVP_sha256 ()), >, 0);
  return cert;
}

gchar *
st_test_matter_write_cd (const char *dir, const char *name, guint16 product_id)
{
  g_autoptr(GError) error = NULL;
  EVP_PKEY *key = EVP_EC_gen ("P-256");
  g_assert_nonnull (key);
  X509 *signer = X509_new ();
  X509_set_version (signer, 2);
  ASN1_INTEGER_set (X509_get_serialNumber (signer), 7);
  X509_gmtime_adj (X509_getm_notBefore (signer), -86400);
  X509_gmtime_adj (X509_getm_notAfter (signer), 86400L * 365);
  X509_NAME *subject = X509_NAME_new ();
  X509_NAME_add_entry_by_txt (subject, "CN", MBSTRING_UTF8, (const guint8 *) "Station Test CD Signer",
                              -1, -1, 0);
  X509_set_subject_name (signer, subject);
  X509_set_issuer_name (signer, subject);
  X509_NAME_free (subject);
  X509_set_pubkey (signer, key);
  add_ext (signer, NULL, NID_basic_constraints, "critical,CA:FALSE");
  add_ext (signer, NULL, NID_key_usage, "critical,digitalSignature");
  add_ext (signer, NULL, NID_subject_key_identifier, "hash");
  g_assert_cmpint (X509_sign (signer, key, EVP_sha256 ()), >, 0);

  const guint16 pids[] = { product_id };
  StMatterCd cd = {
    .format_version = 1,
    .vendor_id = 0xFFF1,
    .product_ids = pids,
    .n_product_ids = 1,
    .device_type_id = 0x0100,
    .certificate_id = "ZIG20142ZB330003-24",
    .version_number = 1,
    .certification_type = ST_MATTER_CD_TYPE_DEVELOPMENT,
  };
  g_autoptr(GBytes) tlv = st_matter_cd_encode (&cd, &error);
  g_assert_no_error (error);
  g_autoptr(GBytes) cms = st_matter_cd_sign (tlv, signer, key, &error);
  g_assert_no_error (error);
  X509_free (signer);
  EVP_PKEY_free (key);
  gchar *path = g_build_filename (dir, name, NULL);
  gsize len = 0;
  const char *data = g_bytes_get_data (cms, &len);
  g_assert_true (g_file_set_contents (path, data, (gssize) len, &error));
  g_assert_no_error (error);
  return path;
}

gchar *
st_test_matter_profile (const char *text, const char *cd_path)
{
  g_auto(GStrv) parts = g_strsplit (text, "@CD@", -1);
  return g_strjoinv (cd_path, parts);
}
