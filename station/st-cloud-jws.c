/* jws/entries.json: one signed entry per unit in the style of Microchip's
 * Trust Platform manifest: a JSON array of flattened JWS objects (RFC 7515
 * 7.2.2) whose payload names the device (uniqueId) and its public key as a
 * JWK (RFC 7517) with the certificate chain in x5c, signed with ES256 (or
 * ES384 for a P-384 key) by the station signing key in the HSM. */
#include "st-cloud-private.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <string.h>

#include "st-error.h"
#include "st-issue.h"
#include "st-ossl.h"
#include "st-text.h"

/* base64url without padding (RFC 7515 2). */
static gchar *
st_b64url (const guint8 *data, gsize len)
{
  gchar *s = g_base64_encode (data, len);
  gsize n = strlen (s);
  while (n > 0 && s[n - 1] == '=')
    s[--n] = '\0';
  for (gchar *p = s; *p != '\0'; p++)
    if (*p == '+')
      *p = '-';
    else if (*p == '/')
      *p = '_';
  return s;
}

static gchar *
st_b64url_text (const gchar *text, gsize len)
{
  return st_b64url ((const guint8 *) text, len);
}

typedef struct {
  const char *alg;     /* "ES256", "ES384" */
  const EVP_MD *md;
  gsize half;          /* bytes of r and of s */
} StJwsAlg;

static gboolean
st_jws_alg_of (X509 *signer, StJwsAlg *alg, GError **error)
{
  EVP_PKEY *key = X509_get0_pubkey (signer);
  int bits = key != NULL && EVP_PKEY_get_base_id (key) == EVP_PKEY_EC ? EVP_PKEY_get_bits (key) : 0;
  if (bits == 256)
    *alg = (StJwsAlg) { "ES256", st_md_sha256 (), 32 };
  else if (bits == 384)
    *alg = (StJwsAlg) { "ES384", st_md_sha384 (), 48 };
  else
    {
      ERR_clear_error ();
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                   "the station signing key is not EC P-256 or P-384: JWS entries need ES256 or "
                   "ES384 (make the signing key on one of these curves)");
      return FALSE;
    }
  return TRUE;
}

typedef struct {
  const StJwsAlg *alg;
  const char *input;
  gsize input_len;
  guint8 der[160];
  size_t der_len;
} StJwsSign;

static gboolean
st_jws_sign_func (EVP_PKEY *key, StCaToken *token, gpointer user_data, GError **error)
{
  StJwsSign *s = user_data;
  g_autoptr(EVP_MD_CTX) ctx = EVP_MD_CTX_new ();
  s->der_len = sizeof s->der;
  st_ca_token_enter (token);
  int ok = ctx != NULL && EVP_DigestSignInit (ctx, NULL, s->alg->md, NULL, key) == 1
           && EVP_DigestSign (ctx, s->der, &s->der_len, (const guint8 *) s->input, s->input_len) == 1;
  st_ca_token_leave (token);
  if (!ok)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "cannot sign a JWS entry with the station signing key");
      return FALSE;
    }
  return TRUE;
}

/* The DER ECDSA-Sig-Value as JWS wants it: r then s, each @half bytes. */
static gboolean
st_jws_raw_signature (const guint8 *der, gsize der_len, gsize half, guint8 *raw, GError **error)
{
  const guint8 *p = der;
  ECDSA_SIG *sig = d2i_ECDSA_SIG (NULL, &p, (long) der_len);
  gboolean ok = sig != NULL && (gsize) (p - der) == der_len
                && BN_bn2binpad (ECDSA_SIG_get0_r (sig), raw, (int) half) == (int) half
                && BN_bn2binpad (ECDSA_SIG_get0_s (sig), raw + half, (int) half) == (int) half;
  ECDSA_SIG_free (sig);
  if (!ok)
    st_error_set_openssl (error, ST_ERROR_INTERNAL, "the HSM's ECDSA signature does not decode");
  return ok;
}

static gboolean
st_jws_verify (X509 *signer, const StJwsAlg *alg, const char *input, gsize len, const guint8 *der,
               gsize der_len, GError **error)
{
  g_autoptr(EVP_MD_CTX) ctx = EVP_MD_CTX_new ();
  if (ctx == NULL || EVP_DigestVerifyInit (ctx, NULL, alg->md, NULL, X509_get0_pubkey (signer)) != 1
      || EVP_DigestVerify (ctx, der, der_len, (const guint8 *) input, len) != 1)
    {
      ERR_clear_error ();
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "a JWS entry's signature does not verify with the station signing certificate: "
                   "check 'station setup show'");
      return FALSE;
    }
  return TRUE;
}

static void
st_jws_add_bn (JsonBuilder *b, const char *member, EVP_PKEY *key, const char *param, gsize size,
               gboolean *ok)
{
  BIGNUM *bn = NULL;
  guint8 buf[66];
  if (!*ok || size > sizeof buf || EVP_PKEY_get_bn_param (key, param, &bn) != 1
      || BN_bn2binpad (bn, buf, (int) size) != (int) size)
    *ok = FALSE;
  BN_free (bn);
  if (!*ok)
    return;
  g_autofree gchar *s = st_b64url (buf, size);
  json_builder_set_member_name (b, member);
  json_builder_add_string_value (b, s);
}

/* The device key as a JWK (RFC 7518 6.2 for EC, RFC 8037 for Ed25519),
 * with x5c: the device certificate, then the signer's. */
static gboolean
st_jws_add_jwk (JsonBuilder *b, X509 *cert, GBytes *der, const char *x5c_signer, GError **error)
{
  g_autoptr(EVP_PKEY) key = st_x509_get_pubkey (cert);
  gboolean ok = key != NULL;
  json_builder_begin_object (b);
  if (ok && EVP_PKEY_get_base_id (key) == EVP_PKEY_EC)
    {
      char group[32] = "";
      ok = EVP_PKEY_get_utf8_string_param (key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, NULL) == 1;
      const char *crv = NULL;
      gsize size = 0;
      if (ok && strcmp (group, "prime256v1") == 0)
        crv = "P-256", size = 32;
      else if (ok && strcmp (group, "secp384r1") == 0)
        crv = "P-384", size = 48;
      else if (ok && strcmp (group, "secp521r1") == 0)
        crv = "P-521", size = 66;
      ok = crv != NULL;
      if (ok)
        {
          json_builder_set_member_name (b, "kty");
          json_builder_add_string_value (b, "EC");
          json_builder_set_member_name (b, "crv");
          json_builder_add_string_value (b, crv);
          st_jws_add_bn (b, "x", key, OSSL_PKEY_PARAM_EC_PUB_X, size, &ok);
          st_jws_add_bn (b, "y", key, OSSL_PKEY_PARAM_EC_PUB_Y, size, &ok);
        }
    }
  else if (ok && EVP_PKEY_get_base_id (key) == EVP_PKEY_ED25519)
    {
      guint8 raw[32];
      size_t len = sizeof raw;
      ok = EVP_PKEY_get_raw_public_key (key, raw, &len) == 1 && len == sizeof raw;
      if (ok)
        {
          g_autofree gchar *x = st_b64url (raw, len);
          json_builder_set_member_name (b, "kty");
          json_builder_add_string_value (b, "OKP");
          json_builder_set_member_name (b, "crv");
          json_builder_add_string_value (b, "Ed25519");
          json_builder_set_member_name (b, "x");
          json_builder_add_string_value (b, x);
        }
    }
  else
    ok = FALSE;
  g_autofree gchar *x5c_device = ok ? g_base64_encode (g_bytes_get_data (der, NULL), g_bytes_get_size (der)) : NULL;
  ok = ok && x5c_device != NULL;
  if (ok)
    {
      json_builder_set_member_name (b, "x5c");
      json_builder_begin_array (b);
      json_builder_add_string_value (b, x5c_device);
      json_builder_add_string_value (b, x5c_signer);
      json_builder_end_array (b);
    }
  json_builder_end_object (b);
  if (!ok)
    {
      ERR_clear_error ();
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                   "a device key is neither EC (P-256, P-384, P-521) nor Ed25519: no JWK for it");
    }
  return ok;
}

/* The first O (or NULL) of @name, as UTF-8. */
static gchar *
st_jws_org (X509_NAME *name)
{
  int at = X509_NAME_get_index_by_NID (name, NID_organizationName, -1);
  unsigned char *utf8 = NULL;
  int len = at >= 0 ? ASN1_STRING_to_UTF8 (&utf8, X509_NAME_ENTRY_get_data (X509_NAME_get_entry (name, at))) : -1;
  if (len < 0)
    return NULL;
  gchar *s = st_text_escape ((const char *) utf8, len, ST_TEXT_ONE_LINE);
  OPENSSL_free (utf8);
  return s;
}

static void
st_jws_add_string (JsonBuilder *b, const char *member, const char *value)
{
  if (value == NULL)
    return;
  /* a string a device or a profile gave: kept as it is when it is UTF-8 */
  g_autofree gchar *safe = g_utf8_validate (value, -1, NULL) ? g_strdup (value)
                                                             : st_text_escape (value, -1, ST_TEXT_ONE_LINE);
  json_builder_set_member_name (b, member);
  json_builder_add_string_value (b, safe);
}

struct StCloudJws {
  gboolean off;           /* the signer cannot sign entries: jws/ stays empty */
  StJwsAlg alg;
  gchar *kid, *protected_, *x5c_signer, *manufacturer, *group;
  FILE *entries;
  guint n;
};

static gboolean
st_cloud_jws_begin (StCloudExport *x, const char *dir, GError **error)
{
  StCloudJws *j = x->jws = g_new0 (StCloudJws, 1);
  X509 *signer = x->ca->signing_cert;
  g_autoptr(GError) unusable = NULL;
  const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id (signer);
  if (st_jws_alg_of (signer, &j->alg, &unusable) && ski == NULL)
    g_set_error (&unusable, ST_ERROR, ST_ERROR_INVALID_DATA,
                 "the station signing certificate has no subject key identifier, which is the "
                 "entries' kid (issue it with subjectKeyIdentifier=hash)");
  if (unusable != NULL)
    {
      /* Decision: a signer the entries cannot name leaves jws/ empty and
       * says why; the manifest and the other targets are still exported. */
      st_cloud_note (x, "jws: no entries written: %s\n", unusable->message);
      j->off = TRUE;
      return TRUE;
    }
  guint8 *signer_der = NULL;
  int signer_len = i2d_X509 (signer, &signer_der);
  if (signer_len <= 0)
    {
      OPENSSL_free (signer_der);
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "cannot encode the station signing certificate");
      return FALSE;
    }
  j->kid = st_b64url (ASN1_STRING_get0_data (ski), (gsize) ASN1_STRING_length (ski));
  guint8 thumb[32];
  gsize thumb_len = sizeof thumb;
  g_autoptr(GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  g_checksum_update (sum, signer_der, (gsize) signer_len);
  g_checksum_get_digest (sum, thumb, &thumb_len);
  g_autofree gchar *x5t = st_b64url (thumb, thumb_len);
  j->x5c_signer = g_base64_encode (signer_der, (gsize) signer_len);
  OPENSSL_free (signer_der);

  /* the protected header: the same for every entry */
  g_autoptr(JsonBuilder) hb = json_builder_new ();
  json_builder_begin_object (hb);
  json_builder_set_member_name (hb, "typ");
  json_builder_add_string_value (hb, "JWT");
  json_builder_set_member_name (hb, "alg");
  json_builder_add_string_value (hb, j->alg.alg);
  json_builder_set_member_name (hb, "kid");
  json_builder_add_string_value (hb, j->kid);
  json_builder_set_member_name (hb, "x5t#S256");
  json_builder_add_string_value (hb, x5t);
  json_builder_end_object (hb);
  g_autoptr(JsonNode) hnode = json_builder_get_root (hb);
  gsize hlen = 0;
  g_autofree gchar *htext = st_json_text (hnode, FALSE, &hlen);
  j->protected_ = st_b64url_text (htext, hlen);
  j->manufacturer = st_jws_org (X509_get_subject_name (x->ca->ca_cert));
  j->group = g_strdup_printf ("batch-%" G_GINT64_FORMAT, x->batch->id);

  g_autofree gchar *pem = st_x509_to_pem (signer);
  if (pem == NULL || !st_cloud_write_file (dir, "signer.pem", pem, strlen (pem), error))
    {
      if (pem == NULL)
        st_error_set_openssl (error, ST_ERROR_INTERNAL, "cannot encode the station signing certificate");
      return FALSE;
    }
  /* a JSON array written an entry at a time, one entry a line */
  j->entries = st_cloud_open (dir, "entries.json", error);
  if (j->entries == NULL)
    return FALSE;
  fputs ("[", j->entries);
  return TRUE;
}

/* One entry: its payload, signed in the HSM, verified, then written. */
static gboolean
st_cloud_jws_unit (StCloudExport *x, const StCloudUnit *u, GError **error)
{
  StCloudJws *j = x->jws;
  if (j->off)
    return TRUE;
  g_autoptr(JsonBuilder) pb = json_builder_new ();
  json_builder_begin_object (pb);
  json_builder_set_member_name (pb, "version");
  json_builder_add_int_value (pb, 1);
  st_jws_add_string (pb, "model", u->unit->model);
  st_jws_add_string (pb, "partNumber", x->batch->product);
  if (j->manufacturer != NULL)
    {
      json_builder_set_member_name (pb, "manufacturer");
      json_builder_begin_object (pb);
      json_builder_set_member_name (pb, "organizationName");
      json_builder_add_string_value (pb, j->manufacturer);
      json_builder_end_object (pb);
    }
  json_builder_set_member_name (pb, "provisioner");
  json_builder_begin_object (pb);
  st_jws_add_string (pb, "organizationName", j->manufacturer);
  st_jws_add_string (pb, "organizationalUnitName", x->station_id);
  json_builder_end_object (pb);
  st_jws_add_string (pb, "groupId", j->group);
  st_jws_add_string (pb, "uniqueId", u->unit->uid);
  json_builder_set_member_name (pb, "publicKeySet");
  json_builder_begin_object (pb);
  json_builder_set_member_name (pb, "keys");
  json_builder_begin_array (pb);
  if (!st_jws_add_jwk (pb, u->cert, u->der, j->x5c_signer, error))
    {
      g_prefix_error (error, "unit %s: ", u->uid_shown);
      return FALSE;
    }
  json_builder_end_array (pb);
  json_builder_end_object (pb);
  json_builder_end_object (pb);
  g_autoptr(JsonNode) pnode = json_builder_get_root (pb);
  gsize plen = 0;
  g_autofree gchar *ptext = st_json_text (pnode, FALSE, &plen);
  g_autofree gchar *payload = st_b64url_text (ptext, plen);

  g_autofree gchar *input = g_strconcat (j->protected_, ".", payload, NULL);
  StJwsSign sig = { .alg = &j->alg, .input = input, .input_len = strlen (input) };
  guint8 raw[96];
  if (!st_ca_sign_with (x->ca, ST_CA_KEY_SIGNING, "a JWS entry", st_jws_sign_func, &sig, NULL, error)
      || !st_jws_verify (x->ca->signing_cert, &j->alg, input, sig.input_len, sig.der, sig.der_len, error)
      || !st_jws_raw_signature (sig.der, sig.der_len, j->alg.half, raw, error))
    {
      g_prefix_error (error, "unit %s: ", u->uid_shown);
      return FALSE;
    }
  g_autofree gchar *signature = st_b64url (raw, 2 * j->alg.half);

  g_autoptr(JsonBuilder) out = json_builder_new ();
  json_builder_begin_object (out);
  json_builder_set_member_name (out, "payload");
  json_builder_add_string_value (out, payload);
  json_builder_set_member_name (out, "protected");
  json_builder_add_string_value (out, j->protected_);
  /* unprotected, for finding an entry without decoding it */
  json_builder_set_member_name (out, "header");
  json_builder_begin_object (out);
  st_jws_add_string (out, "uniqueId", u->unit->uid);
  json_builder_end_object (out);
  json_builder_set_member_name (out, "signature");
  json_builder_add_string_value (out, signature);
  json_builder_end_object (out);
  g_autoptr(JsonNode) root = json_builder_get_root (out);
  gsize len = 0;
  g_autofree gchar *text = st_json_text (root, FALSE, &len);
  fputs (j->n == 0 ? "\n  " : ",\n  ", j->entries);
  fwrite (text, 1, len, j->entries);
  j->n++;
  return TRUE;
}

static gboolean
st_cloud_jws_end (StCloudExport *x, GError **error)
{
  StCloudJws *j = x->jws;
  if (j->off)
    return TRUE;
  fputs (j->n == 0 ? "]\n" : "\n]\n", j->entries);
  if (!st_cloud_close (&j->entries, "jws/entries.json", error))
    return FALSE;
  st_cloud_note (x, "jws: %u entr%s in jws/entries.json, signed %s by the station signing key "
                 "(kid %s)\n", j->n, j->n == 1 ? "y" : "ies", j->alg.alg, j->kid);
  return TRUE;
}

static void
st_cloud_jws_cleanup (StCloudExport *x)
{
  StCloudJws *j = x->jws;
  if (j == NULL)
    return;
  st_cloud_close (&j->entries, "jws/entries.json", NULL);
  g_free (j->kid);
  g_free (j->protected_);
  g_free (j->x5c_signer);
  g_free (j->manufacturer);
  g_free (j->group);
  g_clear_pointer (&x->jws, g_free);
}

const StCloudTarget st_cloud_jws_target = {
  "jws", "signed per-device entries (JWS)", st_cloud_jws_begin, st_cloud_jws_unit, st_cloud_jws_end,
  st_cloud_jws_cleanup,
};
