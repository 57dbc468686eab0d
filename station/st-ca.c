#include "st-ca.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "st-error.h"
#include "st-issue.h"
#include "st-ossl.h"

/* CKR_OK without the PKCS#11 header (hsm/ is the only code that has it). */
#define CKR_OK_VALUE 0UL

static GBytes *
st_ca_read_file (const char *path, GError **error)
{
  GStatBuf st;
  if (g_stat (path, &st) != 0)
    {
      int e = errno;
      g_set_error (error, ST_ERROR, e == ENOENT ? ST_ERROR_NOT_FOUND : ST_ERROR_READ,
                   "cannot read %s: %s", path, g_strerror (e));
      return NULL;
    }
  if (st.st_size > ST_CA_PEM_MAX)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "%s is larger than %d bytes", path,
                   ST_CA_PEM_MAX);
      return NULL;
    }
  g_autofree gchar *data = NULL;
  gsize len = 0;
  g_autoptr(GError) local = NULL;
  if (!g_file_get_contents (path, &data, &len, &local))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_READ, "cannot read %s: %s", path, local->message);
      return NULL;
    }
  if (len > ST_CA_PEM_MAX)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "%s is larger than %d bytes", path,
                   ST_CA_PEM_MAX);
      return NULL;
    }
  return g_bytes_new_take (g_steal_pointer (&data), len);
}

STACK_OF (X509) *
st_ca_load_chain_file (const char *path, GError **error)
{
  g_autoptr(GBytes) data = st_ca_read_file (path, error);
  if (data == NULL)
    return NULL;
  gsize len = 0;
  const void *p = g_bytes_get_data (data, &len);
  g_autoptr(BIO) bio = BIO_new_mem_buf (p, (int) len);
  g_autoptr(StX509Stack) sk = sk_X509_new_null ();
  for (;;)
    {
      X509 *cert = PEM_read_bio_X509 (bio, NULL, NULL, NULL);
      if (cert == NULL)
        break;
      if (sk_X509_num (sk) >= ST_CA_CHAIN_MAX)
        {
          X509_free (cert);
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "%s holds more than %d certificates",
                       path, ST_CA_CHAIN_MAX);
          return NULL;
        }
      sk_X509_push (sk, cert);
    }
  /* The end of the file ends the loop with PEM_R_NO_START_LINE; anything
   * else is a broken PEM block. */
  unsigned long e = ERR_peek_last_error ();
  if (e != 0 && !(ERR_GET_LIB (e) == ERR_LIB_PEM && ERR_GET_REASON (e) == PEM_R_NO_START_LINE))
    {
      g_autofree gchar *what = g_strdup_printf ("%s is not valid PEM", path);
      st_error_set_openssl (error, ST_ERROR_INVALID_DATA, what);
      return NULL;
    }
  ERR_clear_error ();
  if (sk_X509_num (sk) == 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "%s holds no PEM certificate", path);
      return NULL;
    }
  return g_steal_pointer (&sk);
}

X509 *
st_ca_load_cert_file (const char *path, GError **error)
{
  g_autoptr(StX509Stack) sk = st_ca_load_chain_file (path, error);
  if (sk == NULL)
    return NULL;
  X509 *cert = sk_X509_value (sk, 0);
  X509_up_ref (cert);
  return cert;
}

X509 *
st_ca_load_cert (StHsm *hsm, const char *path_or_uri, GError **error)
{
  if (g_str_has_prefix (path_or_uri, "pkcs11:"))
    {
      if (hsm == NULL)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                       "%s is in the token, which is not open here", path_or_uri);
          return NULL;
        }
      return st_hsm_get_certificate (hsm, path_or_uri, error);
    }
  return st_ca_load_cert_file (path_or_uri, error);
}

static gchar *
st_ca_subject (X509 *cert)
{
  return st_x509_name_text (X509_get_subject_name (cert));
}

gboolean
st_ca_check_key_matches (StHsm *hsm, EVP_PKEY *key, X509 *cert, const char *what, GError **error)
{
  guint8 msg[32];
  if (RAND_bytes (msg, sizeof msg) != 1)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "RAND_bytes");
      return FALSE;
    }
  guint8 sig[512];
  size_t siglen = sizeof sig;
  g_autoptr(EVP_MD_CTX) mctx = EVP_MD_CTX_new ();
  st_hsm_lock (hsm);
  int ok = EVP_DigestSignInit (mctx, NULL, EVP_sha256 (), NULL, key) == 1 &&
           EVP_DigestSign (mctx, sig, &siglen, msg, sizeof msg) == 1;
  st_hsm_unlock (hsm);
  if (!ok)
    {
      g_autofree gchar *w = g_strdup_printf ("cannot sign with the %s key in the token", what);
      st_error_set_openssl (error, ST_ERROR_INTERNAL, w);
      return FALSE;
    }
  g_autoptr(EVP_MD_CTX) vctx = EVP_MD_CTX_new ();
  if (EVP_DigestVerifyInit (vctx, NULL, EVP_sha256 (), NULL, X509_get0_pubkey (cert)) != 1 ||
      EVP_DigestVerify (vctx, sig, siglen, msg, sizeof msg) != 1)
    {
      ERR_clear_error ();
      g_autofree gchar *subject = st_ca_subject (cert);
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "the %s key in the token does not belong to the certificate %s: "
                   "fix the key URI or the certificate in station.conf", what, subject);
      return FALSE;
    }
  return TRUE;
}

gboolean
st_ca_check_station_signer (X509 *cert, const char *pin_hex, GError **error)
{
  g_autofree gchar *subject = st_ca_subject (cert);
  ASN1_OBJECT *purpose = OBJ_txt2obj (ST_OID_STATION_SIGNING, 1);
  EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i (cert, NID_ext_key_usage, NULL, NULL);
  gboolean has_purpose = FALSE;
  for (int i = 0; eku != NULL && purpose != NULL && i < sk_ASN1_OBJECT_num (eku); i++)
    if (OBJ_cmp (sk_ASN1_OBJECT_value (eku, i), purpose) == 0)
      has_purpose = TRUE;
  sk_ASN1_OBJECT_pop_free (eku, ASN1_OBJECT_free);
  ASN1_OBJECT_free (purpose);
  ERR_clear_error ();
  if (!has_purpose)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "%s is not a station signing certificate: it lacks the station-signing extended "
                   "key usage %s (a device certificate never carries it)", subject, ST_OID_STATION_SIGNING);
      return FALSE;
    }
  if (pin_hex == NULL)
    return TRUE;
  g_autofree gchar *spki = st_x509_pubkey_sha256_hex (cert, error);
  if (spki == NULL)
    return FALSE;
  if (g_ascii_strcasecmp (spki, pin_hex) != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "%s is not the pinned station signing key: its key's SHA-256 is %s, the pin is %s",
                   subject, spki, pin_hex);
      return FALSE;
    }
  return TRUE;
}

gboolean
st_ca_check_chain (STACK_OF (X509) *chain, X509 *root, X509 *leaf, GError **error)
{
  int n = sk_X509_num (chain);
  if (n < 1)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "the chain is empty");
      return FALSE;
    }
  for (int i = 0; i + 1 < n; i++)
    {
      X509 *c = sk_X509_value (chain, i), *up = sk_X509_value (chain, i + 1);
      if (X509_check_issued (up, c) != X509_V_OK || X509_verify (c, X509_get0_pubkey (up)) != 1)
        {
          ERR_clear_error ();
          g_autofree gchar *s = st_ca_subject (c);
          g_autofree gchar *u = st_ca_subject (up);
          g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                       "chain out of order: certificate %d (%s) is not signed by certificate %d (%s); "
                       "the chain file lists the issuing CA first and the root last", i, s, i + 1, u);
          return FALSE;
        }
    }
  X509 *last = sk_X509_value (chain, n - 1);
  if (X509_cmp (last, root) != 0)
    {
      g_autofree gchar *s = st_ca_subject (last);
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "the chain does not end with the trusted root (it ends with %s)", s);
      return FALSE;
    }
  if (X509_check_issued (root, root) != X509_V_OK || X509_verify (root, X509_get0_pubkey (root)) != 1)
    {
      ERR_clear_error ();
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED, "the trusted root is not self-signed");
      return FALSE;
    }
  /* And the stock path validation, at the current time. */
  g_autoptr(X509_STORE) store = X509_STORE_new ();
  X509_STORE_add_cert (store, root);
  g_autoptr(StX509Stack) untrusted = sk_X509_new_null ();
  for (int i = 0; i + 1 < n; i++)
    {
      X509_up_ref (sk_X509_value (chain, i));
      sk_X509_push (untrusted, sk_X509_value (chain, i));
    }
  X509 *targets[2] = { sk_X509_value (chain, 0), leaf };
  for (int t = 0; t < 2; t++)
    {
      if (targets[t] == NULL)
        continue;
      g_autoptr(X509_STORE_CTX) ctx = X509_STORE_CTX_new ();
      if (X509_STORE_CTX_init (ctx, store, targets[t], untrusted) != 1)
        {
          st_error_set_openssl (error, ST_ERROR_INTERNAL, "X509_STORE_CTX_init");
          return FALSE;
        }
      X509_STORE_CTX_set_flags (ctx, X509_V_FLAG_X509_STRICT);
      if (X509_verify_cert (ctx) != 1)
        {
          int err = X509_STORE_CTX_get_error (ctx);
          ERR_clear_error ();
          g_autofree gchar *s = st_ca_subject (targets[t]);
          g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                       "%s does not verify against the trusted root: %s", s,
                       X509_verify_cert_error_string (err));
          return FALSE;
        }
    }
  return TRUE;
}

StCa *
st_ca_open (StConfig *config, const char *pin, GError **error)
{
  g_return_val_if_fail (config != NULL, NULL);
  if (pin == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_AUTH_FAILED,
                   "the CA needs the HSM PIN: set STATION_HSM_PIN or run from a terminal");
      return NULL;
    }
  g_autoptr(StCa) ca = g_new0 (StCa, 1);
  ca->config = config;
  st_config_apply_env (config);
  ca->hsm = st_hsm_open (config->hsm_module, config->hsm_token, error);
  if (ca->hsm == NULL)
    return NULL;
  if (!st_hsm_login (ca->hsm, pin, error))
    return NULL;
  ca->ca_key = st_hsm_get_private_key (ca->hsm, config->ca_key_uri, error);
  if (ca->ca_key == NULL)
    {
      g_prefix_error (error, "the issuing CA key: ");
      return NULL;
    }
  ca->signing_key = st_hsm_get_private_key (ca->hsm, config->signing_key_uri, error);
  if (ca->signing_key == NULL)
    {
      g_prefix_error (error, "the station signing key: ");
      return NULL;
    }
  ca->ca_cert = st_ca_load_cert (ca->hsm, config->ca_cert, error);
  if (ca->ca_cert == NULL)
    {
      g_prefix_error (error, "the issuing CA certificate: ");
      return NULL;
    }
  ca->signing_cert = st_ca_load_cert (ca->hsm, config->signing_cert, error);
  if (ca->signing_cert == NULL)
    {
      g_prefix_error (error, "the station signing certificate: ");
      return NULL;
    }
  ca->root = st_ca_load_cert_file (config->root_file, error);
  if (ca->root == NULL)
    {
      g_prefix_error (error, "the trusted root: ");
      return NULL;
    }
  ca->chain = st_ca_load_chain_file (config->chain_file, error);
  if (ca->chain == NULL)
    {
      g_prefix_error (error, "the CA chain: ");
      return NULL;
    }
  if (X509_cmp (sk_X509_value (ca->chain, 0), ca->ca_cert) != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "%s does not start with the issuing CA certificate (%s)", config->chain_file,
                   config->ca_cert);
      return NULL;
    }
  if (!st_ca_check_chain (ca->chain, ca->root, ca->signing_cert, error))
    {
      g_prefix_error (error, "%s: ", config->chain_file);
      return NULL;
    }
  if (config->signing_key_sha256 == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "%s has no [certificates] signing-key-sha256 (the pin of the station signing key): "
                   "add the value 'station setup show' prints, after checking it against the "
                   "ceremony's record", config->path);
      return NULL;
    }
  if (!st_ca_check_station_signer (ca->signing_cert, config->signing_key_sha256, error))
    {
      g_prefix_error (error, "%s: ", config->signing_cert);
      return NULL;
    }
  if (!st_ca_check_key_matches (ca->hsm, ca->ca_key, ca->ca_cert, "issuing CA", error) ||
      !st_ca_check_key_matches (ca->hsm, ca->signing_key, ca->signing_cert, "station signing", error))
    return NULL;
  ca->login_generation = st_hsm_get_login_generation (ca->hsm);
  return g_steal_pointer (&ca);
}

/* Checks the session (logging in again when it was lost) and takes the
 * keys anew after a new login, or always with @force; with @key_out, a
 * reference to the key of @role, taken under the same lock. */
static gboolean
st_ca_take_keys (StCa *ca, gboolean force, StCaKeyRole role, EVP_PKEY **key_out, GError **error)
{
  st_hsm_lock (ca->hsm);
  gboolean ok = st_hsm_ensure_login (ca->hsm, error);
  if (ok && (force || st_hsm_get_login_generation (ca->hsm) != ca->login_generation))
    {
      EVP_PKEY *ca_key = st_hsm_get_private_key (ca->hsm, ca->config->ca_key_uri, error);
      EVP_PKEY *signing_key = ca_key != NULL ? st_hsm_get_private_key (ca->hsm, ca->config->signing_key_uri, error) : NULL;
      if (signing_key != NULL)
        {
          EVP_PKEY_free (ca->ca_key);
          EVP_PKEY_free (ca->signing_key);
          ca->ca_key = ca_key;
          ca->signing_key = signing_key;
          ca->login_generation = st_hsm_get_login_generation (ca->hsm);
        }
      else
        {
          EVP_PKEY_free (ca_key);
          g_prefix_error (error, "taking the CA keys again after a new login: ");
          ok = FALSE;
        }
    }
  /* under the same lock: another thread may take the keys anew afterwards */
  if (ok && key_out != NULL)
    {
      *key_out = role == ST_CA_KEY_ISSUING ? ca->ca_key : ca->signing_key;
      EVP_PKEY_up_ref (*key_out);
    }
  st_hsm_unlock (ca->hsm);
  return ok;
}

gboolean
st_ca_ensure_keys (StCa *ca, GError **error)
{
  return st_ca_take_keys (ca, FALSE, ST_CA_KEY_ISSUING, NULL, error);
}

struct _StCaToken {
  StHsm *hsm;
  gulong ckr; /* what the token answered, read right after the signature */
};

void
st_ca_token_enter (gpointer token)
{
  StCaToken *t = token;
  st_hsm_lock (t->hsm);
  /* Only what this signature raises may name its CKR. */
  ERR_clear_error ();
}

void
st_ca_token_leave (gpointer token)
{
  StCaToken *t = token;
  t->ckr = st_hsm_peek_error_ckr ();
  st_hsm_unlock (t->hsm);
}

gboolean
st_ca_sign_with (StCa *ca, StCaKeyRole role, const char *what, StCaSignFunc func,
                 gpointer user_data, gboolean *hsm_failed, GError **error)
{
  g_return_val_if_fail (ca != NULL && what != NULL && func != NULL, FALSE);
  gboolean failed_dummy = FALSE;
  if (hsm_failed == NULL)
    hsm_failed = &failed_dummy;
  *hsm_failed = FALSE;
  for (guint attempt = 0;; attempt++)
    {
      g_autoptr(GError) local = NULL;
      /* A lost session shows here first (an idle pause, a token reset):
       * log in again and take the keys anew before signing. On the retry
       * the keys are taken anew even when the session looks fine (a key
       * handle the token forgot). Another thread may take the keys anew
       * meanwhile: sign with a reference of our own. */
      g_autoptr(EVP_PKEY) key = NULL;
      if (!st_ca_take_keys (ca, attempt > 0, role, &key, &local))
        {
          *hsm_failed = TRUE;
          g_propagate_prefixed_error (error, g_steal_pointer (&local),
                                      "cannot sign %s: the HSM session is lost and could not be opened again: ",
                                      what);
          return FALSE;
        }
      StCaToken token = { .hsm = ca->hsm, .ckr = CKR_OK_VALUE };
      if (func (key, &token, user_data, &local))
        {
          if (attempt > 0)
            g_message ("the HSM session was lost and is back: %s is signed", what);
          return TRUE;
        }
      if (token.ckr == CKR_OK_VALUE)
        {
          /* Not the token: the data or the CA configuration. */
          g_propagate_error (error, g_steal_pointer (&local));
          return FALSE;
        }
      if (attempt == 0 && st_hsm_ckr_is_session_lost (token.ckr))
        {
          g_message ("the HSM answered %s while signing %s: logging in again and signing once more (%s)",
                     st_hsm_ckr_to_string (token.ckr), what, local->message);
          continue;
        }
      *hsm_failed = TRUE;
      g_propagate_prefixed_error (error, g_steal_pointer (&local), "the HSM answered %s%s: ",
                                  st_hsm_ckr_to_string (token.ckr),
                                  attempt > 0 ? " again after a new login" : "");
      return FALSE;
    }
}

typedef struct {
  X509 *cert;
  X509 *ca_cert;
} StCaCertSign;

static gboolean
st_ca_cert_sign_func (EVP_PKEY *key, StCaToken *token, gpointer user_data, GError **error)
{
  StCaCertSign *s = user_data;
  return st_issue_sign_locked (s->cert, key, s->ca_cert, st_ca_token_enter, st_ca_token_leave,
                               token, error);
}

gboolean
st_ca_sign_cert (StCa *ca, X509 *cert, gboolean *hsm_failed, GError **error)
{
  g_return_val_if_fail (ca != NULL && cert != NULL && hsm_failed != NULL, FALSE);
  StCaCertSign s = { .cert = cert, .ca_cert = ca->ca_cert };
  return st_ca_sign_with (ca, ST_CA_KEY_ISSUING, "the certificate", st_ca_cert_sign_func, &s,
                          hsm_failed, error);
}

void
st_ca_free (StCa *ca)
{
  if (ca == NULL)
    return;
  /* The keys refer to the token: free them before the StHsm. */
  EVP_PKEY_free (ca->ca_key);
  EVP_PKEY_free (ca->signing_key);
  X509_free (ca->ca_cert);
  X509_free (ca->signing_cert);
  X509_free (ca->root);
  if (ca->chain != NULL)
    sk_X509_pop_free (ca->chain, X509_free);
  st_hsm_free (ca->hsm);
  g_free (ca);
}
