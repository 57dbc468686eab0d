#include "st-ceremony.h"
#include "st-json.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "st-ca.h"
#include "st-error.h"
#include "st-hsm.h"
#include "st-issue.h"
#include "st-matter-dac.h"
#include "st-ossl.h"
#include "st-private-files.h"
#include "st-util.h"

#define ST_CEREMONY_ID_LEN 16
#define ST_CEREMONY_LABEL_TRIES 100
#define ST_CEREMONY_STATION_ID_MAX 64
#define ST_CEREMONY_SUBJECT_MAX 512


void
st_ceremony_keys_clear (StCeremonyKeys *k)
{
  g_clear_pointer (&k->ca_key_uri, g_free);
  g_clear_pointer (&k->signing_key_uri, g_free);
  g_clear_pointer (&k->ca_csr_pem, g_free);
  g_clear_pointer (&k->signing_csr_pem, g_free);
  g_clear_pointer (&k->ca_csr_sha256, g_free);
  g_clear_pointer (&k->signing_csr_sha256, g_free);
  g_clear_pointer (&k->token_description, g_free);
  g_clear_pointer (&k->audit_payload, g_free);
}

static gchar *
st_ceremony_subject (X509 *cert)
{
  return st_x509_name_text (X509_get_subject_name (cert));
}

/* "O=Example GmbH,C=DE" (no CN: the station adds its own), appended to
 * @name. */
static gboolean
st_ceremony_parse_subject (const char *text, X509_NAME *name, GError **error)
{
  g_auto(GStrv) parts = g_strsplit (text, ",", -1);
  for (guint i = 0; parts[i] != NULL; i++)
    {
      gchar *part = g_strstrip (parts[i]);
      gchar *eq = strchr (part, '=');
      if (eq == NULL || eq == part || eq[1] == '\0')
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "--subject: '%s' is not ATTRIBUTE=VALUE: write it as \"O=Example GmbH,C=DE\"", part);
          return FALSE;
        }
      *eq = '\0';
      gchar *attr = g_strstrip (part), *value = g_strstrip (eq + 1);
      if (g_ascii_strcasecmp (attr, "CN") == 0 || g_ascii_strcasecmp (attr, "commonName") == 0)
        {
          g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                               "--subject: leave CN out: the station names each key itself "
                               "(Station ID Issuing CA, Station ID Signing)");
          return FALSE;
        }
      if (X509_NAME_add_entry_by_txt (name, attr, MBSTRING_UTF8, (const unsigned char *) value, -1, -1, 0) != 1)
        {
          ERR_clear_error ();
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "--subject: '%s=%s' is not a name attribute OpenSSL knows (use O, OU, C, ST, L, "
                       "or an OID), or the value does not fit it (C takes two letters)", attr, value);
          return FALSE;
        }
    }
  return TRUE;
}

gboolean
st_ceremony_matter_id_parse (const char *text, const char *option, guint16 *out, GError **error)
{
  if (text == NULL || strlen (text) != 4 || strspn (text, "0123456789ABCDEF") != 4
      || strcmp (text, "0000") == 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "%s needs exactly 4 upper-case hex digits, not 0000, as the certificate carries "
                   "it (e.g. FFF1; FFF1 to FFF4 are the test vendor IDs), not '%s'",
                   option, text != NULL ? text : "");
      return FALSE;
    }
  *out = (guint16) g_ascii_strtoull (text, NULL, 16);
  return TRUE;
}

/* The VID (and the PID when @pid is not NULL) appended to @name, each in
 * an RDN of its own, a UTF8String of 4 upper-case hex digits (Matter Core
 * spec 6.1.1). */
static gboolean
st_ceremony_add_matter_ids (X509_NAME *name, const char *vid, const char *pid, GError **error)
{
  guint16 v = 0, p = 0;
  if (!st_ceremony_matter_id_parse (vid, "--matter-vid", &v, error))
    return FALSE;
  if (pid != NULL && *pid != '\0')
    return st_ceremony_matter_id_parse (pid, "--matter-pid", &p, error)
           && st_matter_name_add_ids (name, v, p, error);
  ASN1_OBJECT *oid = OBJ_txt2obj (ST_MATTER_OID_VID, 1);
  int added = oid != NULL
              && X509_NAME_add_entry_by_OBJ (name, oid, V_ASN1_UTF8STRING, (const unsigned char *) vid, 4, -1, 0) == 1;
  ASN1_OBJECT_free (oid);
  if (!added)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "cannot add the Matter VID to the subject");
      return FALSE;
    }
  return TRUE;
}

gboolean
st_ceremony_matter_check (X509 *paa, X509 *pai, int chain_len, const char *vid, const char *pid,
                          GError **error)
{
  if (chain_len != 2)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "the chain file holds %d certificates: a Matter station's chain is exactly its "
                   "PAI (the issuing CA) and the PAA that signed it (Matter Core spec 6.2.2: PAA, PAI, "
                   "DAC); have the PAA sign issuing-ca.csr.pem itself", chain_len);
      return FALSE;
    }
  if (!st_matter_paa_check (paa, error))
    {
      g_prefix_error (error, "the root is not a Matter PAA: ");
      return FALSE;
    }
  StMatterIds ids = { 0 };
  if (!st_matter_pai_check (pai, &ids, error))
    {
      g_prefix_error (error, "the issuing CA is not a Matter PAI: ");
      g_autofree gchar *old = (*error)->message;
      (*error)->message = g_strdup_printf ("%s; have the PAA sign issuing-ca.csr.pem with the extension "
                                           "section v3_matter_pai, keeping its subject (openssl ca "
                                           "-preserveDN: docs/ceremony.md)", old);
      return FALSE;
    }
  guint16 want_vid = 0, want_pid = 0;
  gboolean has_pid = pid != NULL && *pid != '\0';
  if (!st_ceremony_matter_id_parse (vid, "[matter] vendor-id", &want_vid, error)
      || (has_pid && !st_ceremony_matter_id_parse (pid, "[matter] product-id", &want_pid, error)))
    return FALSE;
  if (ids.vid != want_vid)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "the issuing CA (the PAI) carries VID %04X, but this station was set up for VID %s "
                   "(station.conf [matter] vendor-id): have the PAA sign issuing-ca.csr.pem as it is, "
                   "with its subject", ids.vid, vid);
      return FALSE;
    }
  if (has_pid != ids.has_pid || (has_pid && ids.pid != want_pid))
    {
      g_autofree gchar *got = ids.has_pid ? g_strdup_printf ("PID %04X", ids.pid) : g_strdup ("no PID");
      g_autofree gchar *want = has_pid ? g_strdup_printf ("PID %s", pid) : g_strdup ("no PID");
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "the issuing CA (the PAI) carries %s, but this station was set up for %s "
                   "(station.conf [matter] product-id): have the PAA sign issuing-ca.csr.pem as it is, "
                   "with its subject", got, want);
      return FALSE;
    }
  return TRUE;
}

/* The module is code the service will load: a regular file that only
 * root may change (owned by root, not writable by group or others, nor its
 * folder), as the packages of HSM vendors install them. A caller of
 * CaInit (anyone, on a home without operators) names it. */
static gboolean
st_ceremony_check_module (const char *module, GError **error)
{
  g_autofree gchar *real = realpath (module, NULL);
  GStatBuf st, dir_st;
  if (real == NULL || g_stat (real, &st) != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND, "--module %s: %s: install the HSM's PKCS#11 "
                   "module and give its path", module, g_strerror (errno));
      return FALSE;
    }
  g_autofree gchar *dir = g_path_get_dirname (real);
  if (!S_ISREG (st.st_mode) || g_stat (dir, &dir_st) != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "--module %s is not a file", module);
      return FALSE;
    }
  if (st.st_uid != 0 || (st.st_mode & 022) != 0 || dir_st.st_uid != 0 || (dir_st.st_mode & 022) != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                   "--module %s: the service loads only a module that root owns and only root may "
                   "change (the file %s and its folder): install it as the HSM vendor's package does",
                   module, real);
      return FALSE;
    }
  return TRUE;
}

gboolean
st_ceremony_check_request (const StCeremonyInit *req, GError **error)
{
  if (req->module == NULL || *req->module == '\0' || !g_path_is_absolute (req->module))
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "--module needs the absolute path of the HSM's PKCS#11 module "
                           "(e.g. /usr/lib/softhsm/libsofthsm2.so)");
      return FALSE;
    }
  if (!st_ceremony_check_module (req->module, error))
    return FALSE;
  if (req->token == NULL || *req->token == '\0' || strlen (req->token) > 32)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "--token needs the token's label (1 to 32 characters), as "
                           "'pkcs11-tool --list-slots' or 'softhsm2-util --show-slots' shows it");
      return FALSE;
    }
  const char *id = req->station_id;
  gboolean id_ok = id != NULL && *id != '\0' && strlen (id) <= ST_CEREMONY_STATION_ID_MAX;
  for (const char *p = id; id_ok && *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && strchr ("-_.", *p) == NULL)
      id_ok = FALSE;
  if (!id_ok)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "--station-id needs 1 to %d letters, digits, '-', '_' or '.' (e.g. line3-station1)",
                   ST_CEREMONY_STATION_ID_MAX);
      return FALSE;
    }
  if (req->alg != ST_ALG_EC_P256 && req->alg != ST_ALG_EC_P384)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED, "--curve takes p256 or p384");
      return FALSE;
    }
  gboolean matter = req->matter_vid != NULL && *req->matter_vid != '\0';
  guint16 matter_id = 0;
  if (matter && !st_ceremony_matter_id_parse (req->matter_vid, "--matter-vid", &matter_id, error))
    return FALSE;
  if (req->matter_pid != NULL && *req->matter_pid != '\0')
    {
      if (!matter)
        {
          g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                               "--matter-pid needs --matter-vid: a Matter PAI always carries a VID");
          return FALSE;
        }
      if (!st_ceremony_matter_id_parse (req->matter_pid, "--matter-pid", &matter_id, error))
        return FALSE;
    }
  if (matter && req->alg != ST_ALG_EC_P256)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                           "--curve p384 with --matter-vid: a Matter PAI has a P-256 key (Matter Core "
                           "spec 6.2.2.4); leave --curve out or give p256");
      return FALSE;
    }
  if (req->subject != NULL && strlen (req->subject) > ST_CEREMONY_SUBJECT_MAX)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "--subject is longer than %d characters",
                   ST_CEREMONY_SUBJECT_MAX);
      return FALSE;
    }
  g_autoptr(X509_NAME) name = X509_NAME_new ();
  if (req->subject != NULL && *req->subject != '\0'
      && !st_ceremony_parse_subject (req->subject, name, error))
    return FALSE;
  if (req->pin == NULL || *req->pin == '\0' || strlen (req->pin) > ST_HSM_PIN_MAX)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_AUTH_FAILED,
                   "the token's user PIN (STATION_HSM_PIN or the prompt) must have 1 to %d characters",
                   ST_HSM_PIN_MAX);
      return FALSE;
    }
  return TRUE;
}

/* ---- ca init ---------------------------------------------------------------- */

/* @base, or @base-2, @base-3...: the first label no object of the token has. */
static gchar *
st_ceremony_free_label (StHsm *hsm, const char *base, const char *other, GError **error)
{
  for (guint i = 1; i <= ST_CEREMONY_LABEL_TRIES; i++)
    {
      g_autofree gchar *label = i == 1 ? g_strdup (base) : g_strdup_printf ("%s-%u", base, i);
      if (g_strcmp0 (label, other) == 0)
        continue;
      gboolean in_use = TRUE;
      if (!st_hsm_label_in_use (hsm, label, &in_use, error))
        return NULL;
      if (!in_use)
        return g_steal_pointer (&label);
    }
  g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
               "token '%s' already holds objects labelled %s up to %s-%d: use a token of its own "
               "for the station", st_hsm_get_token_label (hsm), base, base, ST_CEREMONY_LABEL_TRIES);
  return NULL;
}

static gboolean
st_ceremony_check_flags (StHsm *hsm, const char *what, const char *uri, GError **error)
{
  gboolean sensitive = FALSE, extractable = TRUE, never = FALSE;
  if (!st_hsm_get_key_flags (hsm, uri, &sensitive, &extractable, &never, error))
    return FALSE;
  if (!sensitive || extractable)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "the token made the %s key %s %s: a station key must be CKA_SENSITIVE and not "
                   "CKA_EXTRACTABLE; the ceremony stops here (the key stays in the token, unused): "
                   "check the token's policy with its vendor", what, uri,
                   !sensitive ? "not sensitive" : "extractable");
      return FALSE;
    }
  return TRUE;
}

static gboolean
st_ceremony_add_ext (STACK_OF (X509_EXTENSION) *exts, int nid, const char *value, GError **error)
{
  X509V3_CTX ctx;
  X509V3_set_ctx (&ctx, NULL, NULL, NULL, NULL, 0);
  X509_EXTENSION *ext = X509V3_EXT_conf_nid (NULL, &ctx, nid, value);
  if (ext == NULL || sk_X509_EXTENSION_push (exts, ext) <= 0)
    {
      X509_EXTENSION_free (ext);
      g_autofree gchar *what = g_strdup_printf ("cannot make the extension %s=%s", OBJ_nid2sn (nid), value);
      st_error_set_openssl (error, ST_ERROR_INTERNAL, what);
      return FALSE;
    }
  return TRUE;
}

static void
st_ceremony_exts_free (STACK_OF (X509_EXTENSION) *exts)
{
  sk_X509_EXTENSION_pop_free (exts, X509_EXTENSION_free);
}

/* A PKCS#10 request for the key @priv_uri of the token, signed there. */
static gboolean
st_ceremony_make_csr (StHsm *hsm, const StCeremonyInit *req, gboolean is_ca, const char *priv_uri,
                      gchar **pem_out, gchar **sha256_out, GError **error)
{
  g_autofree gchar *pub_uri = st_hsm_uri_with_type (priv_uri, "public", error);
  if (pub_uri == NULL)
    return FALSE;
  g_autoptr(EVP_PKEY) pub = st_hsm_get_public_key (hsm, pub_uri, error);
  if (pub == NULL)
    return FALSE;
  g_autoptr(X509_REQ) csr = X509_REQ_new ();
  g_autoptr(X509_NAME) name = X509_NAME_new ();
  const char *subject = req->subject != NULL && *req->subject != '\0' ? req->subject : "O=Station";
  if (!st_ceremony_parse_subject (subject, name, error))
    return FALSE;
  g_autofree gchar *cn = g_strdup_printf ("Station %s %s", req->station_id, is_ca ? "Issuing CA" : "Signing");
  if (X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_UTF8, (const unsigned char *) cn, -1, -1, 0) != 1)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "cannot build the certificate request");
      return FALSE;
    }
  /* a Matter PAI: its VID (and PID) in the subject, each in its own RDN */
  if (is_ca && req->matter_vid != NULL && *req->matter_vid != '\0'
      && !st_ceremony_add_matter_ids (name, req->matter_vid, req->matter_pid, error))
    return FALSE;
  if (X509_REQ_set_version (csr, 0) != 1 || X509_REQ_set_subject_name (csr, name) != 1
      || X509_REQ_set_pubkey (csr, pub) != 1)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "cannot build the certificate request");
      return FALSE;
    }
  STACK_OF (X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null ();
  gboolean ok;
  if (is_ca)
    ok = st_ceremony_add_ext (exts, NID_basic_constraints, "critical,CA:TRUE,pathlen:0", error)
         && st_ceremony_add_ext (exts, NID_key_usage, "critical,keyCertSign,cRLSign", error);
  else
    /* the station-signing purpose that verifiers pin, and the two that
     * stock tools check for a detached signature (openssl cms -verify asks
     * for S/MIME signing by default) */
    ok = st_ceremony_add_ext (exts, NID_basic_constraints, "critical,CA:FALSE", error)
         && st_ceremony_add_ext (exts, NID_key_usage, "critical,digitalSignature", error)
         && st_ceremony_add_ext (exts, NID_ext_key_usage,
                                 "codeSigning,emailProtection," ST_OID_STATION_SIGNING, error);
  if (ok && X509_REQ_add_extensions (csr, exts) != 1)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "cannot add the extensions to the request");
      ok = FALSE;
    }
  st_ceremony_exts_free (exts);
  if (!ok)
    return FALSE;
  g_autoptr(EVP_PKEY) priv = st_hsm_get_private_key (hsm, priv_uri, error);
  if (priv == NULL)
    return FALSE;
  const EVP_MD *md = req->alg == ST_ALG_EC_P384 ? st_md_sha384 () : st_md_sha256 ();
  st_hsm_lock (hsm);
  int signed_len = X509_REQ_sign (csr, priv, md);
  st_hsm_unlock (hsm);
  if (signed_len <= 0)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "the token could not sign the certificate request");
      return FALSE;
    }
  if (X509_REQ_verify (csr, pub) != 1)
    {
      st_error_set_openssl (error, ST_ERROR_VERIFY_FAILED,
                            "the token's signature on the certificate request does not verify");
      return FALSE;
    }
  unsigned char *der = NULL;
  int der_len = i2d_X509_REQ (csr, &der);
  g_autoptr(BIO) bio = BIO_new (BIO_s_mem ());
  if (der_len <= 0 || PEM_write_bio_X509_REQ (bio, csr) != 1)
    {
      OPENSSL_free (der);
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "cannot encode the certificate request");
      return FALSE;
    }
  *sha256_out = st_sha256_hex (der, (gsize) der_len);
  OPENSSL_free (der);
  char *p = NULL;
  long n = BIO_get_mem_data (bio, &p);
  *pem_out = g_strndup (p, (gsize) MAX (n, 0));
  return TRUE;
}

static void
st_ceremony_member (JsonBuilder *b, const char *key, const char *value)
{
  json_builder_set_member_name (b, key);
  json_builder_add_string_value (b, value != NULL ? value : "");
}

static gchar *
st_ceremony_key_id_hex (const char *uri)
{
  /* the id as the URI carries it (%XX escapes): the record names the URI too */
  const char *id = strstr (uri, "id=");
  if (id == NULL)
    return g_strdup ("");
  gsize n = strcspn (id + 3, ";?");
  g_autoptr(GString) hex = g_string_new (NULL);
  for (gsize i = 0; i < n; i++)
    if (id[3 + i] != '%')
      g_string_append_c (hex, g_ascii_tolower (id[3 + i]));
  return g_string_free (g_steal_pointer (&hex), FALSE);
}

StConfig *
st_ceremony_init (const char *home, const StCeremonyInit *req, StCeremonyKeys *keys, GError **error)
{
  if (!st_ceremony_check_request (req, error))
    return NULL;
  g_autoptr(StHsm) hsm = st_hsm_open (req->module, req->token, error);
  if (hsm == NULL || !st_hsm_login (hsm, req->pin, error))
    return NULL;
  g_autofree gchar *ca_label = st_ceremony_free_label (hsm, ST_CEREMONY_CA_LABEL, NULL, error);
  if (ca_label == NULL)
    return NULL;
  g_autofree gchar *sig_label = st_ceremony_free_label (hsm, ST_CEREMONY_SIGNING_LABEL, ca_label, error);
  if (sig_label == NULL)
    return NULL;
  guint8 ca_id[ST_CEREMONY_ID_LEN], sig_id[ST_CEREMONY_ID_LEN];
  if (!st_hsm_random (hsm, ca_id, sizeof ca_id, error) || !st_hsm_random (hsm, sig_id, sizeof sig_id, error))
    return NULL;
  keys->ca_key_uri = st_hsm_generate_key (hsm, ca_label, ca_id, sizeof ca_id, req->alg, error);
  if (keys->ca_key_uri == NULL)
    return NULL;
  keys->signing_key_uri = st_hsm_generate_key (hsm, sig_label, sig_id, sizeof sig_id, req->alg, error);
  if (keys->signing_key_uri == NULL)
    return NULL;
  if (!st_ceremony_check_flags (hsm, "issuing CA", keys->ca_key_uri, error)
      || !st_ceremony_check_flags (hsm, "station signing", keys->signing_key_uri, error))
    return NULL;
  if (!st_ceremony_make_csr (hsm, req, TRUE, keys->ca_key_uri, &keys->ca_csr_pem, &keys->ca_csr_sha256, error)
      || !st_ceremony_make_csr (hsm, req, FALSE, keys->signing_key_uri, &keys->signing_csr_pem,
                                &keys->signing_csr_sha256, error))
    return NULL;
  keys->token_description = st_hsm_get_token_description (hsm);

  g_autoptr(StConfig) config = st_config_new (home);
  g_free (config->hsm_module);
  config->hsm_module = g_strdup (req->module);
  config->hsm_token = g_strdup (req->token);
  config->station_id = g_strdup (req->station_id);
  config->ca_key_uri = g_strdup (keys->ca_key_uri);
  config->signing_key_uri = g_strdup (keys->signing_key_uri);
  config->awaiting_import = TRUE;
  if (req->matter_vid != NULL && *req->matter_vid != '\0')
    {
      config->matter_vendor_id = g_strdup (req->matter_vid);
      if (req->matter_pid != NULL && *req->matter_pid != '\0')
        config->matter_product_id = g_strdup (req->matter_pid);
    }

  g_autofree gchar *ca_id_hex = st_ceremony_key_id_hex (keys->ca_key_uri);
  g_autofree gchar *sig_id_hex = st_ceremony_key_id_hex (keys->signing_key_uri);
  g_autoptr(JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  st_ceremony_member (b, "admin", req->admin);
  st_ceremony_member (b, "station-id", req->station_id);
  st_ceremony_member (b, "token", keys->token_description);
  st_ceremony_member (b, "module", req->module);
  st_ceremony_member (b, "curve", req->alg == ST_ALG_EC_P384 ? "p384" : "p256");
  st_ceremony_member (b, "ca-key", keys->ca_key_uri);
  st_ceremony_member (b, "ca-key-id", ca_id_hex);
  st_ceremony_member (b, "signing-key", keys->signing_key_uri);
  st_ceremony_member (b, "signing-key-id", sig_id_hex);
  st_ceremony_member (b, "ca-csr-sha256", keys->ca_csr_sha256);
  st_ceremony_member (b, "signing-csr-sha256", keys->signing_csr_sha256);
  if (config->matter_vendor_id != NULL)
    {
      st_ceremony_member (b, "matter-vendor-id", config->matter_vendor_id);
      if (config->matter_product_id != NULL)
        st_ceremony_member (b, "matter-product-id", config->matter_product_id);
    }
  json_builder_end_object (b);
  keys->audit_payload = st_json_builder_text (b);
  return g_steal_pointer (&config);
}

/* ---- ca import --------------------------------------------------------------- */

static STACK_OF (X509) *
st_ceremony_parse_pem (const char *what, const char *pem, int max, GError **error)
{
  gsize len = pem != NULL ? strlen (pem) : 0;
  if (len == 0 || len > ST_CEREMONY_PEM_MAX)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "the %s is %s: give a PEM file of at most %d bytes",
                   what, len == 0 ? "empty" : "too large", ST_CEREMONY_PEM_MAX);
      return NULL;
    }
  ERR_clear_error ();
  g_autoptr(StX509Stack) certs = sk_X509_new_null ();
  g_autoptr(BIO) bio = BIO_new_mem_buf (pem, (int) len);
  for (;;)
    {
      X509 *cert = PEM_read_bio_X509 (bio, NULL, NULL, NULL);
      if (cert == NULL)
        break;
      if (sk_X509_num (certs) >= max)
        {
          X509_free (cert);
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "the %s holds more than %d certificate%s",
                       what, max, max == 1 ? "" : "s");
          return NULL;
        }
      sk_X509_push (certs, cert);
    }
  unsigned long e = ERR_peek_last_error ();
  gboolean at_end = e == 0 || ERR_GET_REASON (e) == PEM_R_NO_START_LINE;
  ERR_clear_error ();
  if (!at_end || sk_X509_num (certs) == 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "the %s is not %s: give PEM (-----BEGIN CERTIFICATE-----)", what,
                   sk_X509_num (certs) == 0 ? "a certificate" : "only well-formed certificates");
      return NULL;
    }
  return g_steal_pointer (&certs);
}

/* Within its validity now; a warning in @report when it ends within
 * ST_CEREMONY_WARN_DAYS. */
static gboolean
st_ceremony_check_dates (X509 *cert, const char *what, GString *report, GError **error)
{
  g_autofree gchar *subject = st_ceremony_subject (cert);
  g_autofree gchar *from = st_asn1_time_text (X509_get0_notBefore (cert));
  g_autofree gchar *until = st_asn1_time_text (X509_get0_notAfter (cert));
  if (X509_cmp_current_time (X509_get0_notBefore (cert)) >= 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "the %s (%s) is not valid yet: it starts on %s; check this PC's clock and the "
                   "root's, or have the root issue it again", what, subject, from);
      return FALSE;
    }
  if (X509_cmp_current_time (X509_get0_notAfter (cert)) <= 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "the %s (%s) has expired: it ended on %s; have the root issue it again", what,
                   subject, until);
      return FALSE;
    }
  int days = 0, secs = 0;
  if (ASN1_TIME_diff (&days, &secs, NULL, X509_get0_notAfter (cert)) == 1 && days < ST_CEREMONY_WARN_DAYS)
    g_string_append_printf (report, "warning: the %s (%s) expires in %d days (%s): plan its renewal\n",
                            what, subject, days, until);
  return TRUE;
}

/* The public key of @cert is the token's key @priv_uri (compared whole),
 * and the token signs for it (a test signature). */
static gboolean
st_ceremony_check_key (StHsm *hsm, X509 *cert, const char *priv_uri, const char *what,
                       const char *csr_name, GError **error)
{
  g_autofree gchar *pub_uri = st_hsm_uri_with_type (priv_uri, "public", error);
  if (pub_uri == NULL)
    return FALSE;
  g_autoptr(EVP_PKEY) pub = st_hsm_get_public_key (hsm, pub_uri, error);
  if (pub == NULL)
    return FALSE;
  g_autoptr(EVP_PKEY) cert_key = X509_get_pubkey (cert);
  if (cert_key == NULL || EVP_PKEY_eq (cert_key, pub) != 1)
    {
      ERR_clear_error ();
      g_autofree gchar *subject = st_ceremony_subject (cert);
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "the %s certificate (%s) is for another key: its public key is not the token's "
                   "%s key %s; have the root sign %s, which 'station ca init' wrote", what, subject,
                   what, priv_uri, csr_name);
      return FALSE;
    }
  g_autoptr(EVP_PKEY) priv = st_hsm_get_private_key (hsm, priv_uri, error);
  if (priv == NULL)
    return FALSE;
  return st_ca_check_key_matches (hsm, priv, cert, what, error);
}

static gboolean
st_ceremony_check_issuing (X509 *ca, GError **error)
{
  g_autofree gchar *subject = st_ceremony_subject (ca);
  uint32_t flags = X509_get_extension_flags (ca);
  if ((flags & EXFLAG_INVALID) != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "the issuing CA certificate (%s) has malformed extensions", subject);
      return FALSE;
    }
  if ((flags & EXFLAG_BCONS) == 0 || (flags & EXFLAG_CA) == 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "the issuing CA certificate (%s) is not a CA: it needs basicConstraints "
                   "critical,CA:TRUE,pathlen:0 (copy the request's extensions, or set them in the "
                   "root's extension section: docs/ceremony.md)", subject);
      return FALSE;
    }
  long pathlen = X509_get_pathlen (ca);
  if (pathlen != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "the issuing CA certificate (%s) has %s: the station's CA issues device "
                   "certificates only and needs pathlen:0 (basicConstraints critical,CA:TRUE,pathlen:0)",
                   subject, pathlen < 0 ? "no path length limit" : "a path length above 0");
      return FALSE;
    }
  uint32_t ku = X509_get_key_usage (ca);
  if ((flags & EXFLAG_KUSAGE) == 0 || (ku & KU_KEY_CERT_SIGN) == 0 || (ku & KU_CRL_SIGN) == 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "the issuing CA certificate (%s) lacks the key usage %s: it needs keyUsage "
                   "critical,keyCertSign,cRLSign", subject,
                   (flags & EXFLAG_KUSAGE) == 0 ? "extension" : (ku & KU_KEY_CERT_SIGN) == 0 ? "keyCertSign" : "cRLSign");
      return FALSE;
    }
  if (X509_get0_subject_key_id (ca) == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "the issuing CA certificate (%s) has no subjectKeyIdentifier: the device "
                   "certificates name it in their authorityKeyIdentifier; add "
                   "subjectKeyIdentifier=hash to the root's extension section", subject);
      return FALSE;
    }
  return TRUE;
}

static gboolean
st_ceremony_check_signer (X509 *signing, GError **error)
{
  g_autofree gchar *subject = st_ceremony_subject (signing);
  uint32_t flags = X509_get_extension_flags (signing);
  if ((flags & EXFLAG_CA) != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "the station signing certificate (%s) is a CA certificate: it must have "
                   "basicConstraints CA:FALSE", subject);
      return FALSE;
    }
  if ((flags & EXFLAG_KUSAGE) != 0 && (X509_get_key_usage (signing) & KU_DIGITAL_SIGNATURE) == 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "the station signing certificate (%s) lacks the key usage digitalSignature", subject);
      return FALSE;
    }
  if (!st_ca_check_station_signer (signing, NULL, error))
    {
      g_prefix_error (error, "the station signing certificate: ");
      g_autofree gchar *old = (*error)->message;
      (*error)->message = g_strdup_printf ("%s; have the root copy the request's extended key usage "
                                           "(docs/ceremony.md)", old);
      return FALSE;
    }
  return TRUE;
}

static gchar *
st_ceremony_cert_sha256 (X509 *cert)
{
  unsigned char *der = NULL;
  int n = i2d_X509 (cert, &der);
  gchar *hex = n > 0 ? st_sha256_hex (der, (gsize) n) : g_strdup ("");
  OPENSSL_free (der);
  return hex;
}

static void
st_ceremony_audit_cert (JsonBuilder *b, const char *key, X509 *cert)
{
  json_builder_set_member_name (b, key);
  json_builder_begin_object (b);
  g_autofree gchar *subject = st_ceremony_subject (cert);
  g_autofree gchar *issuer = st_x509_name_text (X509_get_issuer_name (cert));
  g_autofree gchar *from = st_asn1_time_text (X509_get0_notBefore (cert));
  g_autofree gchar *until = st_asn1_time_text (X509_get0_notAfter (cert));
  g_autofree gchar *sha = st_ceremony_cert_sha256 (cert);
  st_ceremony_member (b, "subject", subject);
  st_ceremony_member (b, "issuer", issuer);
  st_ceremony_member (b, "not-before", from);
  st_ceremony_member (b, "not-after", until);
  st_ceremony_member (b, "sha256", sha);
  json_builder_end_object (b);
}

StConfig *
st_ceremony_import (StConfig *config, const char *pin, const char *chain_pem,
                    const char *signing_pem, GString *report, gchar **audit_payload,
                    GError **error)
{
  g_return_val_if_fail (config != NULL && report != NULL && audit_payload != NULL, NULL);
  g_autoptr(StX509Stack) chain = st_ceremony_parse_pem ("chain file", chain_pem, ST_CA_CHAIN_MAX, error);
  if (chain == NULL)
    return NULL;
  g_autoptr(StX509Stack) signing_certs = st_ceremony_parse_pem ("signing certificate file", signing_pem, 1, error);
  if (signing_certs == NULL)
    return NULL;
  int n = sk_X509_num (chain);
  if (n < 2)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "the chain file holds one certificate: it lists the issuing CA certificate "
                           "first, then every certificate up to and including the root");
      return NULL;
    }
  X509 *ca = sk_X509_value (chain, 0), *root = sk_X509_value (chain, n - 1);
  X509 *signing = sk_X509_value (signing_certs, 0);
  /* the dates first: an expired certificate is the plainest reason */
  for (int i = 0; i < n; i++)
    {
      g_autofree gchar *what = i == 0 ? g_strdup ("issuing CA certificate")
                             : i == n - 1 ? g_strdup ("root certificate")
                             : g_strdup_printf ("certificate %d of the chain", i + 1);
      if (!st_ceremony_check_dates (sk_X509_value (chain, i), what, report, error))
        return NULL;
    }
  if (!st_ceremony_check_dates (signing, "station signing certificate", report, error))
    return NULL;
  if (X509_check_issued (root, root) != X509_V_OK || X509_verify (root, X509_get0_pubkey (root)) != 1)
    {
      ERR_clear_error ();
      g_autofree gchar *s = st_ceremony_subject (root);
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "the last certificate of the chain file (%s) is not a self-signed root: the chain "
                   "file ends with the root", s);
      return NULL;
    }
  /* a Matter station: the Matter rules first, so a refusal names the rule */
  if (config->matter_vendor_id != NULL
      && !st_ceremony_matter_check (root, ca, n, config->matter_vendor_id, config->matter_product_id, error))
    return NULL;
  if (!st_ceremony_check_issuing (ca, error) || !st_ceremony_check_signer (signing, error))
    return NULL;
  if (!st_ca_check_chain (chain, root, signing, error))
    {
      g_prefix_error (error, "the chain does not run to the root: ");
      return NULL;
    }
  /* the signer's issuer: the issuing CA or the root */
  if (X509_check_issued (ca, signing) != X509_V_OK && X509_check_issued (root, signing) != X509_V_OK)
    {
      g_autofree gchar *s = st_ceremony_subject (signing);
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "the station signing certificate (%s) is issued neither by the issuing CA nor by "
                   "the root", s);
      return NULL;
    }

  /* the keys in the token */
  g_autoptr(StHsm) hsm = st_hsm_open (config->hsm_module, config->hsm_token, error);
  if (hsm == NULL || !st_hsm_login (hsm, pin, error))
    return NULL;
  if (!st_ceremony_check_key (hsm, ca, config->ca_key_uri, "issuing CA", ST_CEREMONY_CA_CSR, error)
      || !st_ceremony_check_key (hsm, signing, config->signing_key_uri, "station signing",
                                 ST_CEREMONY_SIGNING_CSR, error))
    return NULL;
  g_clear_pointer (&hsm, st_hsm_free);

  /* staged in a private folder of HOME, checked as the station opens them,
   * then moved into place */
  g_autofree gchar *stage_tmpl = g_build_filename (config->home, ".ca-import-XXXXXX", NULL);
  if (g_mkdtemp_full (stage_tmpl, 0700) == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, "cannot create a folder in %s: %s", config->home,
                   g_strerror (errno));
      return NULL;
    }
  g_autofree gchar *ca_dir = g_build_filename (config->home, "ca", NULL);
  struct {
    const char *name;  /* in the stage */
    gchar *final;
  } files[] = {
    { "issuing-ca.pem", g_build_filename (ca_dir, "issuing-ca.pem", NULL) },
    { "station-signing.pem", g_build_filename (ca_dir, "station-signing.pem", NULL) },
    { "ca-chain.pem", g_build_filename (config->home, "ca-chain.pem", NULL) },
    { "root.pem", g_build_filename (config->home, "root.pem", NULL) },
  };
  gchar *staged[G_N_ELEMENTS (files)];
  for (gsize i = 0; i < G_N_ELEMENTS (files); i++)
    staged[i] = g_build_filename (stage_tmpl, files[i].name, NULL);
  X509 **chain_certs = g_new0 (X509 *, (gsize) n);
  for (int i = 0; i < n; i++)
    chain_certs[i] = sk_X509_value (chain, i);
  g_autoptr(StConfig) next = st_config_load_file (config->home, config->path, error);
  gboolean ok = next != NULL
                && st_x509_write_pem_file (staged[0], &ca, 1, error)
                && st_x509_write_pem_file (staged[1], &signing, 1, error)
                && st_x509_write_pem_file (staged[2], chain_certs, n, error)
                && st_x509_write_pem_file (staged[3], &root, 1, error);
  g_free (chain_certs);
  if (ok)
    {
      next->awaiting_import = FALSE;
      next->ca_cert = g_strdup (staged[0]);
      next->signing_cert = g_strdup (staged[1]);
      next->chain_file = g_strdup (staged[2]);
      next->root_file = g_strdup (staged[3]);
      next->signing_key_sha256 = st_x509_pubkey_sha256_hex (signing, error);
      ok = next->signing_key_sha256 != NULL;
    }
  if (ok)
    {
      g_autoptr(StCa) opened = st_ca_open (next, pin, error);
      ok = opened != NULL;
      if (!ok)
        g_prefix_error (error, "the imported set-up does not open as the station opens it: ");
    }
  if (ok)
    ok = st_dir_ensure_private (ca_dir, error);
  for (gsize i = 0; ok && i < G_N_ELEMENTS (files); i++)
    if (g_rename (staged[i], files[i].final) != 0)
      {
        g_set_error (error, ST_ERROR, ST_ERROR_WRITE, "cannot move %s to %s: %s", staged[i],
                     files[i].final, g_strerror (errno));
        ok = FALSE;
      }
  if (ok)
    {
      g_free (next->ca_cert);
      next->ca_cert = g_strdup (files[0].final);
      g_free (next->signing_cert);
      next->signing_cert = g_strdup (files[1].final);
      g_free (next->chain_file);
      next->chain_file = g_strdup (files[2].final);
      g_free (next->root_file);
      next->root_file = g_strdup (files[3].final);
      ok = st_config_save (next, error);
    }
  st_rm_rf (stage_tmpl);
  for (gsize i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_free (staged[i]);
      g_free (files[i].final);
    }
  if (!ok)
    return NULL;

  g_autoptr(JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  st_ceremony_audit_cert (b, "issuing-ca", ca);
  st_ceremony_audit_cert (b, "signing", signing);
  st_ceremony_audit_cert (b, "root", root);
  g_autofree gchar *chain_len = g_strdup_printf ("%d", n);
  st_ceremony_member (b, "chain-length", chain_len);
  st_ceremony_member (b, "signing-key-sha256", next->signing_key_sha256);
  json_builder_end_object (b);
  *audit_payload = st_json_builder_text (b);
  return g_steal_pointer (&next);
}
