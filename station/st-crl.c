/* Building, signing and checking the CRL (st-crl.h). */
#include "st-crl.h"

#include <glib/gi18n.h>
#include <inttypes.h>

#include <errno.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "st-error.h"
#include "st-issue.h"
#include "st-ossl.h"
#include "st-util.h"

/* ---- reasons ---- */

static const struct {
  int code;
  const char *name;
  gboolean for_devices;  /* a lead may give it to `unit revoke` */
} st_crl_reasons[] = {
  { 0, "unspecified", TRUE },
  { 1, "keyCompromise", TRUE },
  { 2, "cACompromise", FALSE },
  { 3, "affiliationChanged", TRUE },
  { 4, "superseded", TRUE },
  { 5, "cessationOfOperation", TRUE },
  { 6, "certificateHold", FALSE },
  { 8, "removeFromCRL", FALSE },
  { 9, "privilegeWithdrawn", TRUE },
  { 10, "aACompromise", FALSE },
};

/* The reason every voided certificate carries: a voided certificate was
 * never in service (known not to be on its device, or a lead's decision),
 * whether or not a new one followed for the uid. */
#define ST_CRL_REASON_VOIDED 5  /* cessationOfOperation */

int
st_crl_reason_code (const char *name)
{
  for (gsize i = 0; i < G_N_ELEMENTS (st_crl_reasons); i++)
    if (st_crl_reasons[i].for_devices && g_strcmp0 (st_crl_reasons[i].name, name) == 0)
      return st_crl_reasons[i].code;
  return -1;
}

const char *
st_crl_reason_list (void)
{
  return "unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation, "
         "privilegeWithdrawn";
}

const char *
st_crl_reason_name (int code)
{
  for (gsize i = 0; i < G_N_ELEMENTS (st_crl_reasons); i++)
    if (st_crl_reasons[i].code == code)
      return st_crl_reasons[i].name;
  return NULL;
}

void
st_crl_issued_free (StCrlIssued *c)
{
  if (c == NULL)
    return;
  g_free (c->pem);
  g_free (c->der_sha256);
  g_free (c);
}

/* ---- building ---- */

static gboolean
st_crl_add_entry (X509_CRL *crl, const StDbCrlEntry *e, GError **error)
{
  BIGNUM *bn_raw = NULL;
  if (e->serial == NULL || BN_hex2bn (&bn_raw, e->serial) != (int) strlen (e->serial))
    {
      BN_free (bn_raw);
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("the database's certificate serial '%s' is not hex"), e->serial != NULL ? e->serial : "");
      return FALSE;
    }
  g_autoptr(BIGNUM) bn = bn_raw;
  g_autoptr(ASN1_INTEGER) serial = BN_to_ASN1_INTEGER (bn, NULL);
  g_autoptr(ASN1_TIME) when = ASN1_TIME_set (NULL, (time_t) e->when);
  int code = e->reason != NULL ? st_crl_reason_code (e->reason) : ST_CRL_REASON_VOIDED;
  if (code < 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("certificate %s is revoked with the reason '%s', which is not one of %s"),
                   e->serial, e->reason, st_crl_reason_list ());
      return FALSE;
    }
  ASN1_ENUMERATED *reason = ASN1_ENUMERATED_new ();
  X509_REVOKED *r = X509_REVOKED_new ();
  gboolean ok = serial != NULL && when != NULL && reason != NULL && r != NULL
                && ASN1_ENUMERATED_set (reason, code) == 1
                && X509_REVOKED_set_serialNumber (r, serial) == 1
                && X509_REVOKED_set_revocationDate (r, when) == 1
                && X509_REVOKED_add1_ext_i2d (r, NID_crl_reason, reason, 0, 0) == 1
                && X509_CRL_add0_revoked (crl, r) == 1;
  ASN1_ENUMERATED_free (reason);
  if (!ok)
    {
      X509_REVOKED_free (r);
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "cannot add an entry to the CRL");
      return FALSE;
    }
  return TRUE;
}

static X509_CRL *
st_crl_build (StCa *ca, GPtrArray *entries, const char *issuer_hash, gint64 number, gint64 this_update,
              gint64 next_update, guint *n_listed, GError **error)
{
  g_autoptr(X509_CRL) crl = X509_CRL_new ();
  g_autoptr(ASN1_TIME) t_this = ASN1_TIME_set (NULL, (time_t) this_update);
  g_autoptr(ASN1_TIME) t_next = ASN1_TIME_set (NULL, (time_t) next_update);
  g_autoptr(ASN1_INTEGER) n = ASN1_INTEGER_new ();
  const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id (ca->ca_cert);
  if (ski == NULL)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           _("the issuing CA certificate has no subjectKeyIdentifier: the CRL's "
                           "authorityKeyIdentifier needs it (re-issue the CA certificate with one)"));
      return NULL;
    }
  AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new ();
  gboolean ok = crl != NULL && t_this != NULL && t_next != NULL && n != NULL && akid != NULL
                && (akid->keyid = ASN1_OCTET_STRING_dup (ski)) != NULL
                && X509_CRL_set_version (crl, X509_CRL_VERSION_2) == 1
                && X509_CRL_set_issuer_name (crl, X509_get_subject_name (ca->ca_cert)) == 1
                && X509_CRL_set1_lastUpdate (crl, t_this) == 1
                && X509_CRL_set1_nextUpdate (crl, t_next) == 1
                && ASN1_INTEGER_set_int64 (n, number) == 1
                && X509_CRL_add1_ext_i2d (crl, NID_authority_key_identifier, akid, 0, 0) == 1
                && X509_CRL_add1_ext_i2d (crl, NID_crl_number, n, 0, 0) == 1;
  AUTHORITY_KEYID_free (akid);
  if (!ok)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "cannot build the CRL");
      return NULL;
    }
  *n_listed = 0;
  for (guint i = 0; i < entries->len; i++)
    {
      const StDbCrlEntry *e = g_ptr_array_index (entries, i);
      /* a CRL speaks for one CA: certificates of an earlier issuing CA
       * certificate are that one's to list */
      if (g_strcmp0 (e->issuer, issuer_hash) != 0)
        continue;
      if (!st_crl_add_entry (crl, e, error))
        return NULL;
      (*n_listed)++;
    }
  if (X509_CRL_sort (crl) != 1)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "cannot sort the CRL's entries");
      return NULL;
    }
  return g_steal_pointer (&crl);
}

typedef struct {
  X509_CRL *crl;
  const EVP_MD *md;
} StCrlSign;

static gboolean
st_crl_sign_func (EVP_PKEY *key, StCaToken *token, gpointer user_data, GError **error)
{
  StCrlSign *s = user_data;
  st_ca_token_enter (token);
  int len = X509_CRL_sign (s->crl, key, s->md);
  st_ca_token_leave (token);
  if (len <= 0)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "signing the CRL with the issuing CA key failed");
      return FALSE;
    }
  return TRUE;
}

StCrlIssued *
st_crl_issue (StDb *db, StCa *ca, guint days, const char *by, GError **error)
{
  g_return_val_if_fail (db != NULL && ca != NULL, NULL);
  if (days < 1 || days > ST_CRL_DAYS_MAX)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("a CRL's next update is 1 to %d days away, not %u"), ST_CRL_DAYS_MAX, days);
      return NULL;
    }
  EVP_PKEY *ca_pub = X509_get0_pubkey (ca->ca_cert);
  const EVP_MD *md = NULL;
  switch (st_pubkey_get_alg (ca_pub))
    {
    case ST_ALG_EC_P256: md = EVP_sha256 (); break;
    case ST_ALG_EC_P384: md = EVP_sha384 (); break;
    case ST_ALG_ED25519: md = NULL; break;
    case ST_ALG_NONE:
    default:
      g_set_error_literal (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                           _("the issuing CA's key is not EC P-256, EC P-384 or Ed25519: the station "
                           "cannot sign a CRL with it"));
      return NULL;
    }
  guint8 *ca_der = NULL;
  int ca_der_len = i2d_X509 (ca->ca_cert, &ca_der);
  if (ca_der_len <= 0)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "cannot encode the issuing CA certificate");
      return NULL;
    }
  g_autofree gchar *issuer_hash = st_sha256_hex (ca_der, (gsize) ca_der_len);
  OPENSSL_free (ca_der);

  gint64 this_update = g_get_real_time () / G_USEC_PER_SEC;
  gint64 next_update = this_update + (gint64) days * 86400;
  gint64 number = 0;
  if (!st_db_crl_reserve (db, this_update, next_update, by, &number, error))
    return NULL;
  /* from here on the number is taken, whatever follows */
  g_autoptr(GPtrArray) entries = st_db_crl_entries (db, error);
  if (entries == NULL)
    {
      g_prefix_error (error, _("CRL number %" PRId64 ": "), number);
      return NULL;
    }
  guint n_listed = 0;
  g_autoptr(X509_CRL) crl = st_crl_build (ca, entries, issuer_hash, number, this_update, next_update,
                                          &n_listed, error);
  if (crl == NULL)
    {
      g_prefix_error (error, _("CRL number %" PRId64 ": "), number);
      return NULL;
    }
  StCrlSign s = { .crl = crl, .md = md };
  if (!st_ca_sign_with (ca, ST_CA_KEY_ISSUING, "the CRL", st_crl_sign_func, &s, NULL, error))
    {
      g_prefix_error (error, _("CRL number %" PRId64 " (taken, not issued): "), number);
      return NULL;
    }
  st_error_clear_openssl ();
  if (X509_CRL_verify (crl, ca_pub) != 1)
    {
      st_error_set_openssl (error, ST_ERROR_VERIFY_FAILED,
                            "the signed CRL does not verify with the issuing CA certificate's key "
                            "(the HSM key and the certificate differ)");
      g_prefix_error (error, _("CRL number %" PRId64 ": "), number);
      return NULL;
    }
  guint8 *der = NULL;
  int der_len = i2d_X509_CRL (crl, &der);
  if (der_len <= 0)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "cannot encode the CRL");
      return NULL;
    }
  g_autoptr(StCrlIssued) out = g_new0 (StCrlIssued, 1);
  out->number = number;
  out->n_entries = n_listed;
  out->der_sha256 = st_sha256_hex (der, (gsize) der_len);
  OPENSSL_free (der);
  g_autoptr(BIO) bio = BIO_new (BIO_s_mem ());
  char *data = NULL;
  long len = 0;
  if (bio == NULL || PEM_write_bio_X509_CRL (bio, crl) != 1 || (len = BIO_get_mem_data (bio, &data)) <= 0)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "cannot write the CRL as PEM");
      return NULL;
    }
  out->pem = g_strndup (data, (gsize) len);
  if (!st_db_crl_complete (db, number, n_listed, out->der_sha256, by, error))
    return NULL;
  return g_steal_pointer (&out);
}

/* ---- checking a manifest's crl.pem ---- */

static gchar *
st_crl_serial_hex (const ASN1_INTEGER *serial)
{
  g_autoptr(BIGNUM) bn = ASN1_INTEGER_to_BN (serial, NULL);
  char *hex = bn != NULL ? BN_bn2hex (bn) : NULL;
  if (hex == NULL)
    return NULL;
  gchar *out = g_ascii_strdown (hex, -1);
  OPENSSL_free (hex);
  return out;
}

/* A serial as the manifest spells it (hex, maybe with leading zeros or
 * upper case) as BN_bn2hex spells it, lower-cased. */
static gchar *
st_crl_serial_norm (const char *hex)
{
  BIGNUM *bn = NULL;
  if (hex == NULL || BN_hex2bn (&bn, hex) != (int) strlen (hex))
    {
      BN_free (bn);
      return NULL;
    }
  char *s = BN_bn2hex (bn);
  BN_free (bn);
  if (s == NULL)
    return NULL;
  gchar *out = g_ascii_strdown (s, -1);
  OPENSSL_free (s);
  return out;
}

void
st_crl_check_file (StManifestCheck *c, const char *path, STACK_OF (X509) *chain, GHashTable *must_list)
{
  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    {
      st_manifest_check (c, TRUE, _("crl.pem: none (a manifest exported before CRLs; "
                         "'station crl issue' makes one)"));
      return;
    }
  g_autofree gchar *pem = NULL;
  gsize len = 0;
  g_autoptr(GError) read_error = NULL;
  GStatBuf st;
  if (g_stat (path, &st) != 0 || !S_ISREG (st.st_mode) || st.st_size > ST_CRL_PEM_MAX
      || !g_file_get_contents (path, &pem, &len, &read_error) || len > ST_CRL_PEM_MAX)
    {
      st_manifest_check (c, FALSE, _("crl.pem: cannot be read: %s"),
                         read_error != NULL ? read_error->message
                                            : "not a regular file of at most 16 MiB");
      return;
    }
  g_autoptr(BIO) bio = BIO_new_mem_buf (pem, (int) len);
  g_autoptr(X509_CRL) crl = bio != NULL ? PEM_read_bio_X509_CRL (bio, NULL, NULL, NULL) : NULL;
  st_error_clear_openssl ();
  if (crl == NULL)
    {
      st_manifest_check (c, FALSE, _("crl.pem: not a PEM CRL"));
      return;
    }
  X509 *ca = chain != NULL && sk_X509_num (chain) >= 1 ? sk_X509_value (chain, 0) : NULL;
  if (ca == NULL)
    {
      st_manifest_check (c, FALSE, _("crl.pem: no issuing CA in ca-chain.pem to check it against"));
      return;
    }
  st_manifest_check (c, X509_NAME_cmp (X509_CRL_get_issuer (crl), X509_get_subject_name (ca)) == 0
                        && X509_CRL_verify (crl, X509_get0_pubkey (ca)) == 1
                        && X509_CRL_get_version (crl) == X509_CRL_VERSION_2,
                     _("crl.pem: a CRLv2 issued and signed by the issuing CA of ca-chain.pem"));
  st_error_clear_openssl ();
  int crit = 0;
  g_autoptr(ASN1_INTEGER) number = X509_CRL_get_ext_d2i (crl, NID_crl_number, &crit, NULL);
  g_autoptr(BIGNUM) number_bn = number != NULL ? ASN1_INTEGER_to_BN (number, NULL) : NULL;
  char *number_dec = number_bn != NULL ? BN_bn2dec (number_bn) : NULL;
  st_manifest_check (c, number_dec != NULL && !BN_is_negative (number_bn),
                     _("crl.pem: CRL number %s"), number_dec != NULL ? number_dec : "missing");
  OPENSSL_free (number_dec);
  const ASN1_TIME *this_update = X509_CRL_get0_lastUpdate (crl);
  const ASN1_TIME *next_update = X509_CRL_get0_nextUpdate (crl);
  st_manifest_check (c, this_update != NULL && X509_cmp_current_time (this_update) < 0,
                     _("crl.pem: thisUpdate is not in the future"));
  st_manifest_check (c, next_update != NULL && ASN1_TIME_compare (this_update, next_update) < 0,
                     _("crl.pem: nextUpdate comes after thisUpdate"));
  st_error_clear_openssl ();
  g_autoptr(GHashTable) listed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  STACK_OF (X509_REVOKED) *revoked = X509_CRL_get_REVOKED (crl);
  for (int i = 0; i < sk_X509_REVOKED_num (revoked); i++)
    {
      gchar *hex = st_crl_serial_hex (X509_REVOKED_get0_serialNumber (sk_X509_REVOKED_value (revoked, i)));
      if (hex != NULL)
        g_hash_table_add (listed, hex);
    }
  guint missing = 0;
  g_autoptr(GString) names = g_string_new (NULL);
  GHashTableIter it;
  gpointer key;
  g_hash_table_iter_init (&it, must_list);
  while (g_hash_table_iter_next (&it, &key, NULL))
    {
      g_autofree gchar *norm = st_crl_serial_norm (key);
      if (norm != NULL && g_hash_table_contains (listed, norm))
        continue;
      if (missing++ < 5)
        g_string_append_printf (names, " %s", (const char *) key);
    }
  if (missing == 0)
    st_manifest_check (c, TRUE, _("crl.pem: lists all %u voided or revoked certificate(s) of the "
                       "manifest (%d entries in all)"), g_hash_table_size (must_list),
                       sk_X509_REVOKED_num (revoked));
  else
    st_manifest_check (c, FALSE, _("crl.pem: %u voided or revoked certificate(s) of the manifest are "
                       "not on it:%s%s"), missing, names->str, missing > 5 ? " ..." : "");
}
