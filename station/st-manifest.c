#include "st-manifest.h"
#include "st-issue.h"
#include "st-audit.h"
#include "st-manifest-check.h"
#include "st-crl.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <openssl/cms.h>
#include <openssl/pem.h>
#include <string.h>

#include "st-error.h"
#include "st-hsm.h"
#include "st-ossl.h"
#include "st-text.h"
#include "st-util.h"
#include "st-verify.h"

/* ---- export ---------------------------------------------------------- */

static void
st_json_add_time (JsonBuilder *b, const char *name, gint64 t)
{
  json_builder_set_member_name (b, name);
  if (t <= 0)
    {
      json_builder_add_null_value (b);
      return;
    }
  g_autofree gchar *s = st_time_iso8601_from_unix (t);
  json_builder_add_string_value (b, s);
}

static void
st_json_add_string (JsonBuilder *b, const char *name, const char *value)
{
  json_builder_set_member_name (b, name);
  if (value == NULL)
    json_builder_add_null_value (b);
  else
    json_builder_add_string_value (b, value);
}

static void
st_json_add_int (JsonBuilder *b, const char *name, gint64 value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_int_value (b, value);
}

/* The manifest's view of a unit: 'done' or 'failed'. A unit still in the
 * pipeline (interrupted, not yet resolved) is reported as failed, with its
 * certificate unconfirmed: never as done; a disputed one (a lead decides)
 * as failed with its certificate disputed. */
static const char *
st_manifest_unit_state (const StDbUnit *u)
{
  return g_strcmp0 (u->state, "done") == 0 ? "done" : "failed";
}

static const char *
st_manifest_cert_status (const StDbUnit *u)
{
  if (g_strcmp0 (u->cert_state, "active") == 0)
    return "active";
  if (g_strcmp0 (u->cert_state, "voided") == 0)
    return "voided";
  if (g_strcmp0 (u->cert_state, "disputed") == 0)
    return "disputed";
  if (g_strcmp0 (u->cert_state, "revoked") == 0)
    return "revoked";
  return "unconfirmed";
}

/* One cell: escaped as any text a person sees (st-text.h), and one that a
 * spreadsheet would take for a formula (= + - @ tab CR first) starts with
 * a "'" (ST_TEXT_CSV_CELL); then quoted as RFC 4180 wants. */
static void
st_csv_field (GString *out, const char *raw, gboolean last)
{
  g_autofree gchar *value = st_text_escape (raw, -1, ST_TEXT_CSV_CELL);
  if (value != NULL)
    {
      gboolean quote = strpbrk (value, ",\"\r\n") != NULL;
      if (quote)
        g_string_append_c (out, '"');
      for (const char *p = value; *p != '\0'; p++)
        {
          if (*p == '"')
            g_string_append_c (out, '"');
          g_string_append_c (out, *p);
        }
      if (quote)
        g_string_append_c (out, '"');
    }
  g_string_append (out, last ? "\r\n" : ",");
}

/* batch.profile.subject and .san: the templates that built the units'
 * names, for verifiers without the profile. FALSE (nothing added) when the
 * recorded profile text does not load any more. */
static gboolean
st_manifest_add_profile_names (JsonBuilder *b, const StDbBatch *batch)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StProfile) profile = batch->profile_text != NULL
    ? st_profile_load_from_data (batch->profile_text, strlen (batch->profile_text), batch->product, &error)
    : NULL;
  if (profile == NULL)
    return FALSE;
  st_json_add_string (b, "subject", profile->subject_template);
  json_builder_set_member_name (b, "san");
  json_builder_begin_array (b);
  for (guint i = 0; profile->san_templates[i] != NULL; i++)
    json_builder_add_string_value (b, profile->san_templates[i]);
  json_builder_end_array (b);
  return TRUE;
}

#define ST_CSV_HEADER "uid,serial,state,failure_step,failure_reason,cert_serial,certificate_status,issued_at,certificate_sha256"

typedef struct {
  StCa *ca;
  const gchar *json;
  gsize len;
  STACK_OF (X509) *extra;
  CMS_ContentInfo *cms;
} StManifestSign;

static gboolean
st_manifest_sign_func (EVP_PKEY *key, StCaToken *token, gpointer user_data, GError **error)
{
  StManifestSign *s = user_data;
  g_autoptr(BIO) in = BIO_new_mem_buf (s->json, (int) s->len);
  st_ca_token_enter (token);
  s->cms = in != NULL ? CMS_sign (s->ca->signing_cert, key, s->extra, in, CMS_DETACHED | CMS_BINARY) : NULL;
  st_ca_token_leave (token);
  if (s->cms == NULL)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "cannot sign the manifest (CMS_sign)");
      return FALSE;
    }
  return TRUE;
}

static GBytes *
st_manifest_sign (StCa *ca, const gchar *json, gsize len, GError **error)
{
  if (len > G_MAXINT)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "the manifest is too large to sign");
      return NULL;
    }
  g_autoptr(StX509Stack) extra = sk_X509_new_null ();
  /* Intermediates only: the root is the verifier's trust anchor. */
  for (int i = 0; i + 1 < sk_X509_num (ca->chain); i++)
    {
      X509 *c = sk_X509_value (ca->chain, i);
      X509_up_ref (c);
      sk_X509_push (extra, c);
    }
  /* A lost HSM session is recovered there, as for certificates. */
  StManifestSign s = { .ca = ca, .json = json, .len = len, .extra = extra };
  if (!st_ca_sign_with (ca, ST_CA_KEY_SIGNING, "the manifest", st_manifest_sign_func, &s, NULL, error))
    return NULL;
  g_autoptr(CMS_ContentInfo) cms = s.cms;
  guint8 *der = NULL;
  int der_len = i2d_CMS_ContentInfo (cms, &der);
  if (der_len <= 0)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "cannot encode the manifest signature");
      return NULL;
    }
  GBytes *out = g_bytes_new (der, (gsize) der_len);
  OPENSSL_free (der);
  return out;
}

gboolean
st_manifest_export (StDb *db, StCa *ca, const char *station_id, gint64 batch_id,
                    const char *out_dir, GError **error)
{
  g_autoptr(StDbBatch) batch = st_db_batch_get (db, batch_id, error);
  if (batch == NULL)
    return FALSE;
  g_autoptr(GPtrArray) units = st_db_unit_list (db, batch_id, error);
  if (units == NULL)
    return FALSE;
  if (g_mkdir_with_parents (out_dir, 0700) != 0)
    {
      int e = errno;
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, "cannot create %s: %s", out_dir, g_strerror (e));
      return FALSE;
    }

  guint8 *ca_der = NULL;
  int ca_der_len = i2d_X509 (ca->ca_cert, &ca_der);
  g_autofree gchar *issuer_hash = ca_der_len > 0 ? st_sha256_hex (ca_der, (gsize) ca_der_len) : NULL;
  OPENSSL_free (ca_der);

  g_autoptr(JsonBuilder) ub = json_builder_new ();
  JsonBuilder *b = ub;
  g_autoptr(GString) csv = g_string_new (ST_CSV_HEADER "\r\n");
  gint64 n_done = 0, n_failed = 0, n_active = 0, n_voided = 0, n_unconfirmed = 0, n_disputed = 0;
  gint64 n_revoked = 0;

  json_builder_begin_array (b);
  for (guint i = 0; i < units->len; i++)
    {
      StDbUnit *u = g_ptr_array_index (units, i);
      const char *state = st_manifest_unit_state (u);
      gboolean done = g_strcmp0 (state, "done") == 0;
      gboolean has_cert = u->cert_id > 0 && u->cert_der != NULL;
      g_autofree gchar *pem = NULL;
      g_autofree gchar *fingerprint = NULL;
      const char *status = NULL;
      done ? n_done++ : n_failed++;

      json_builder_begin_object (b);
      st_json_add_string (b, "uid", u->uid);
      st_json_add_string (b, "serial", u->product_serial);
      /* for a profile whose names use {model} (manifest verify) */
      st_json_add_string (b, "model", u->model);
      st_json_add_string (b, "state", state);
      if (!done)
        {
          json_builder_set_member_name (b, "failure");
          json_builder_begin_object (b);
          st_json_add_string (b, "step", u->fail_step != NULL ? u->fail_step : u->state);
          st_json_add_string (b, "reason", u->fail_reason != NULL ? u->fail_reason
                                           : "interrupted; not resolved yet");
          json_builder_end_object (b);
        }
      if (has_cert)
        {
          g_autoptr(X509) cert = st_x509_from_der (u->cert_der);
          if (cert == NULL)
            {
              g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL,
                           "the recorded certificate of unit %" G_GINT64_FORMAT " does not parse", u->id);
              return FALSE;
            }
          pem = st_x509_to_pem (cert);
          fingerprint = st_sha256_hex (g_bytes_get_data (u->cert_der, NULL),
                                       g_bytes_get_size (u->cert_der));
          status = st_manifest_cert_status (u);
          if (g_strcmp0 (status, "active") == 0)
            n_active++;
          else if (g_strcmp0 (status, "voided") == 0)
            n_voided++;
          else if (g_strcmp0 (status, "disputed") == 0)
            n_disputed++;
          else if (g_strcmp0 (status, "revoked") == 0)
            n_revoked++;
          else
            n_unconfirmed++;
          st_json_add_string (b, "certificate", pem);
          st_json_add_string (b, "cert_serial", u->cert_serial);
          st_json_add_string (b, "certificate_status", status);
          st_json_add_time (b, "issued_at", u->issued_at);
          if (u->void_reason != NULL && g_strcmp0 (status, "active") != 0)
            st_json_add_string (b, "certificate_note", u->void_reason);
        }
      json_builder_end_object (b);

      g_autofree gchar *issued = has_cert ? st_time_iso8601_from_unix (u->issued_at) : NULL;
      st_csv_field (csv, u->uid, FALSE);
      st_csv_field (csv, u->product_serial, FALSE);
      st_csv_field (csv, state, FALSE);
      st_csv_field (csv, done ? NULL : (u->fail_step != NULL ? u->fail_step : u->state), FALSE);
      st_csv_field (csv, done ? NULL : (u->fail_reason != NULL ? u->fail_reason : "interrupted; not resolved yet"), FALSE);
      st_csv_field (csv, has_cert ? u->cert_serial : NULL, FALSE);
      st_csv_field (csv, status, FALSE);
      st_csv_field (csv, issued, FALSE);
      st_csv_field (csv, fingerprint, TRUE);
    }
  json_builder_end_array (b);
  g_autoptr(JsonNode) units_node = json_builder_get_root (ub);

  g_autoptr(JsonBuilder) top = json_builder_new ();
  b = top;
  json_builder_begin_object (b);
  st_json_add_string (b, "format", ST_MANIFEST_FORMAT);
  json_builder_set_member_name (b, "batch");
  json_builder_begin_object (b);
  st_json_add_int (b, "id", batch->id);
  st_json_add_string (b, "work_order", batch->work_order);
  json_builder_set_member_name (b, "profile");
  json_builder_begin_object (b);
  st_json_add_string (b, "name", batch->product);
  st_json_add_string (b, "sha256", batch->profile_sha256);
  if (!st_manifest_add_profile_names (b, batch))
    g_warning ("batch %" G_GINT64_FORMAT ": its profile no longer loads: the manifest records no "
               "subject template, its verifiers check the uids with this station's copy only", batch->id);
  json_builder_end_object (b);
  st_json_add_string (b, "station_id", batch->station_id != NULL ? batch->station_id : station_id);
  st_json_add_time (b, "created_at", batch->created_at);
  st_json_add_time (b, "closed_at", batch->closed_at);
  st_json_add_string (b, "created_by", batch->created_by);
  st_json_add_string (b, "closed_by", batch->closed_by);
  st_json_add_string (b, "state", batch->state);
  json_builder_set_member_name (b, "counts");
  json_builder_begin_object (b);
  st_json_add_int (b, "quantity", batch->quantity);
  st_json_add_int (b, "units", (gint64) units->len);
  st_json_add_int (b, "done", n_done);
  st_json_add_int (b, "failed", n_failed);
  st_json_add_int (b, "certificates_active", n_active);
  st_json_add_int (b, "certificates_voided", n_voided);
  st_json_add_int (b, "certificates_unconfirmed", n_unconfirmed);
  st_json_add_int (b, "certificates_disputed", n_disputed);
  st_json_add_int (b, "certificates_revoked", n_revoked);
  json_builder_end_object (b);
  json_builder_end_object (b);

  json_builder_set_member_name (b, "issuer");
  json_builder_begin_object (b);
  g_autofree gchar *issuer_subject = X509_NAME_oneline (X509_get_subject_name (ca->ca_cert), NULL, 0);
  st_json_add_string (b, "subject", issuer_subject);
  st_json_add_string (b, "sha256", issuer_hash);
  json_builder_end_object (b);
  /* the signer's pin, cross-checked by verifiers (who hold their own) */
  g_autofree gchar *signer_pin = st_x509_pubkey_sha256_hex (ca->signing_cert, error);
  if (signer_pin == NULL)
    return FALSE;
  st_json_add_string (b, "signer_key_sha256", signer_pin);
  if (!st_audit_add_manifest_member (b, db, ca, error))
    return FALSE;
  g_autofree gchar *exported = st_time_iso8601_now ();
  st_json_add_string (b, "exported_at", exported);
  json_builder_set_member_name (b, "units");
  json_builder_add_value (b, g_steal_pointer (&units_node));
  json_builder_end_object (b);

  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  gsize json_len = 0;
  g_autofree gchar *json = json_generator_to_data (gen, &json_len);

  /* The chain file: issuing CA first, then up to the root. */
  g_autoptr(GString) chain = g_string_new (NULL);
  for (int i = 0; i < sk_X509_num (ca->chain); i++)
    {
      g_autofree gchar *pem = st_x509_to_pem (sk_X509_value (ca->chain, i));
      g_string_append (chain, pem);
    }

  g_autoptr(GBytes) sig = st_manifest_sign (ca, json, json_len, error);
  if (sig == NULL)
    return FALSE;

  g_autofree gchar *p_json = g_build_filename (out_dir, "manifest.json", NULL);
  g_autofree gchar *p_csv = g_build_filename (out_dir, "manifest.csv", NULL);
  g_autofree gchar *p_chain = g_build_filename (out_dir, "ca-chain.pem", NULL);
  g_autofree gchar *p_sig = g_build_filename (out_dir, "manifest.json.p7s", NULL);
  /* The signature goes last: a folder with a signature is complete. */
  g_unlink (p_sig);
  if (!st_file_write_durable (p_json, json, json_len, 0600, error) ||
      !st_file_write_durable (p_csv, csv->str, csv->len, 0600, error) ||
      !st_file_write_durable (p_chain, chain->str, chain->len, 0600, error) ||
      !st_file_write_durable (p_sig, g_bytes_get_data (sig, NULL), g_bytes_get_size (sig), 0600, error))
    return FALSE;
  return TRUE;
}

/* ---- verify ---------------------------------------------------------- */

typedef StManifestCheck StCheck;
#define st_check st_manifest_check

static gboolean
st_check_result (StCheck *c, const char *dir, GError **error)
{
  if (c->failures == 0)
    return TRUE;
  g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED, "the manifest in %s failed %u check(s)",
               dir, c->failures);
  return FALSE;
}

static gboolean
st_read_bounded (const char *path, gsize max, gchar **data, gsize *len, GError **error)
{
  GStatBuf st;
  if (g_stat (path, &st) != 0)
    {
      int e = errno;
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND, "cannot read %s: %s", path, g_strerror (e));
      return FALSE;
    }
  if ((guint64) st.st_size > max)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "%s is %" G_GUINT64_FORMAT " bytes, more than the %" G_GSIZE_FORMAT " allowed",
                   path, (guint64) st.st_size, max);
      return FALSE;
    }
  if (!g_file_get_contents (path, data, len, error))
    return FALSE;
  if (*len > max)
    {
      g_clear_pointer (data, g_free);
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "%s grew past %" G_GSIZE_FORMAT " bytes", path, max);
      return FALSE;
    }
  return TRUE;
}

/* *@signer: the signer's certificate when the signature verified (one
 * signer only), else NULL. */
static gboolean
st_manifest_verify_signature (StCheck *c, const char *dir, const gchar *json, gsize json_len,
                              X509 *root, X509 **signer, GError **error)
{
  *signer = NULL;
  g_autofree gchar *p_sig = g_build_filename (dir, "manifest.json.p7s", NULL);
  g_autofree gchar *sig = NULL;
  gsize sig_len = 0;
  if (!st_read_bounded (p_sig, ST_MANIFEST_MAX_P7S, &sig, &sig_len, error))
    return FALSE;
  const guint8 *p = (const guint8 *) sig;
  g_autoptr(CMS_ContentInfo) cms = d2i_CMS_ContentInfo (NULL, &p, (long) sig_len);
  if (cms == NULL || p != (const guint8 *) sig + sig_len)
    {
      st_error_clear_openssl ();
      st_check (c, FALSE, "signature: manifest.json.p7s is not one DER CMS structure");
      return TRUE;
    }
  g_autoptr(X509_STORE) store = X509_STORE_new ();
  X509_STORE_add_cert (store, root);
  g_autoptr(BIO) content = BIO_new_mem_buf (json, (int) json_len);
  if (CMS_verify (cms, NULL, store, content, NULL, CMS_BINARY | CMS_DETACHED) != 1)
    {
      g_autoptr(GError) why = NULL;
      st_error_set_openssl (&why, ST_ERROR_VERIFY_FAILED, "CMS_verify");
      st_check (c, FALSE, "signature: does not verify against the trusted root (%s)", why->message);
      return TRUE;
    }
  g_autoptr(StX509Stack) signers = CMS_get0_signers (cms);
  g_autofree gchar *who = NULL;
  if (signers != NULL && sk_X509_num (signers) > 0)
    who = X509_NAME_oneline (X509_get_subject_name (sk_X509_value (signers, 0)), NULL, 0);
  /* one signer, the one the pin is held against */
  if (signers != NULL && sk_X509_num (signers) == 1)
    {
      *signer = sk_X509_value (signers, 0);
      X509_up_ref (*signer);
    }
  int n_signers = signers != NULL ? sk_X509_num (signers) : 0;
  /* CMS_get0_signers returns borrowed certificates in a new stack. */
  if (signers != NULL)
    {
      sk_X509_free (signers);
      signers = NULL;
    }
  if (n_signers != 1)
    {
      st_check (c, FALSE, "signature: %d signers; a manifest has one, the station's", n_signers);
      return TRUE;
    }
  g_autofree gchar *anchor = X509_NAME_oneline (X509_get_subject_name (root), NULL, 0);
  st_check (c, TRUE, "signature: valid, signed by %s, chains to %s", who != NULL ? who : "?", anchor);
  return TRUE;
}

static const char *
st_json_get_string (JsonObject *o, const char *name)
{
  JsonNode *n = json_object_get_member (o, name);
  if (n == NULL || JSON_NODE_TYPE (n) != JSON_NODE_VALUE || json_node_get_value_type (n) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (n);
}

static gboolean
st_json_get_int (JsonObject *o, const char *name, gint64 *out)
{
  JsonNode *n = json_object_get_member (o, name);
  if (n == NULL || JSON_NODE_TYPE (n) != JSON_NODE_VALUE || json_node_get_value_type (n) != G_TYPE_INT64)
    return FALSE;
  *out = json_node_get_int (n);
  return TRUE;
}

static X509 *
st_x509_from_pem (const char *pem)
{
  g_autoptr(BIO) bio = BIO_new_mem_buf (pem, -1);
  return PEM_read_bio_X509 (bio, NULL, NULL, NULL);
}

static gchar *
st_x509_serial_hex (X509 *cert)
{
  g_autoptr(BIGNUM) bn = ASN1_INTEGER_to_BN (X509_get0_serialNumber (cert), NULL);
  if (bn == NULL)
    return NULL;
  char *hex = BN_bn2hex (bn);
  gchar *out = g_ascii_strdown (hex, -1);
  OPENSSL_free (hex);
  return out;
}

static gboolean
st_serial_hex_equal (const char *a, const char *b)
{
  if (a == NULL || b == NULL)
    return FALSE;
  while (*a == '0' && a[1] != '\0')
    a++;
  while (*b == '0' && b[1] != '\0')
    b++;
  return g_ascii_strcasecmp (a, b) == 0;
}

gboolean
st_manifest_verify (const char *dir, X509 *root, const char *signer_pin, StDb *db, GString *report,
                    GError **error)
{
  StCheck c = { .report = report };
  g_autofree gchar *p_json = g_build_filename (dir, "manifest.json", NULL);
  g_autofree gchar *p_csv = g_build_filename (dir, "manifest.csv", NULL);
  g_autofree gchar *p_chain = g_build_filename (dir, "ca-chain.pem", NULL);
  g_autofree gchar *json = NULL;
  gsize json_len = 0;

  if (!st_read_bounded (p_json, ST_MANIFEST_MAX_JSON, &json, &json_len, error))
    return FALSE;
  g_autoptr(X509) signer = NULL;
  if (!st_manifest_verify_signature (&c, dir, json, json_len, root, &signer, error))
    return FALSE;

  /* The chain of the folder: untrusted intermediates. */
  g_autoptr(StX509Stack) chain = st_chain_load_pem (p_chain, NULL);
  st_check (&c, chain != NULL && sk_X509_num (chain) >= 1, "ca-chain.pem: %d certificate(s)",
            chain != NULL ? sk_X509_num (chain) : 0);
  if (chain != NULL && sk_X509_num (chain) >= 1)
    {
      X509 *last = sk_X509_value (chain, sk_X509_num (chain) - 1);
      st_check (&c, X509_cmp (last, root) == 0, "ca-chain.pem ends with the trusted root");
    }

  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) parse_error = NULL;
  if (!json_parser_load_from_data (parser, json, (gssize) json_len, &parse_error))
    {
      st_check (&c, FALSE, "manifest.json does not parse: %s", parse_error->message);
      return st_check_result (&c, dir, error);
    }
  JsonNode *rootnode = json_parser_get_root (parser);
  JsonObject *top = JSON_NODE_HOLDS_OBJECT (rootnode) ? json_node_get_object (rootnode) : NULL;
  JsonObject *batch = top != NULL && json_object_has_member (top, "batch") &&
                      JSON_NODE_HOLDS_OBJECT (json_object_get_member (top, "batch"))
                        ? json_object_get_object_member (top, "batch") : NULL;
  JsonArray *units = top != NULL && json_object_has_member (top, "units") &&
                     JSON_NODE_HOLDS_ARRAY (json_object_get_member (top, "units"))
                       ? json_object_get_array_member (top, "units") : NULL;
  st_check (&c, top != NULL && g_strcmp0 (st_json_get_string (top, "format"), ST_MANIFEST_FORMAT) == 0,
            "format is %s", ST_MANIFEST_FORMAT);
  /* the signer must be the pinned station signer, whatever the manifest claims */
  st_manifest_check_signer (&c, signer, signer_pin, top);
  if (top != NULL)
    st_manifest_check_checkpoint (&c, top, signer);
  if (batch == NULL || units == NULL)
    {
      st_check (&c, FALSE, "manifest.json lacks its batch object or its units array");
      return st_check_result (&c, dir, error);
    }
  gint64 batch_id = 0, quantity = -1;
  st_json_get_int (batch, "id", &batch_id);
  JsonObject *counts = json_object_has_member (batch, "counts") &&
                       JSON_NODE_HOLDS_OBJECT (json_object_get_member (batch, "counts"))
                         ? json_object_get_object_member (batch, "counts") : NULL;
  if (counts != NULL)
    st_json_get_int (counts, "quantity", &quantity);
  st_check (&c, st_json_get_string (batch, "work_order") != NULL && quantity >= 0,
            "batch %" G_GINT64_FORMAT ": work order %s, quantity %" G_GINT64_FORMAT, batch_id,
            st_json_get_string (batch, "work_order"), quantity);

  g_autoptr(GHashTable) live_uids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GHashTable) serials = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GHashTable) keys = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GHashTable) on_crl = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  gint64 n_done = 0, n_failed = 0, n_active = 0, n_voided = 0, n_unconfirmed = 0, n_disputed = 0;
  gint64 n_revoked = 0;
  guint bad_units = 0, chain_ok = 0;
  g_autoptr(GString) expect_csv = g_string_new (ST_CSV_HEADER "\r\n");
  g_autoptr(StManifestProfile) profile = st_manifest_profile_find (&c, batch, db);
  guint uid_checked = 0, uid_bad = 0;

  for (guint i = 0; i < json_array_get_length (units); i++)
    {
      JsonNode *node = json_array_get_element (units, i);
      JsonObject *u = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
      const char *uid = u != NULL ? st_json_get_string (u, "uid") : NULL;
      const char *state = u != NULL ? st_json_get_string (u, "state") : NULL;
      if (u == NULL || uid == NULL || state == NULL ||
          (g_strcmp0 (state, "done") != 0 && g_strcmp0 (state, "failed") != 0))
        {
          st_check (&c, FALSE, "unit %u: lacks uid or a state of done/failed", i + 1);
          bad_units++;
          continue;
        }
      gboolean done = g_strcmp0 (state, "done") == 0;
      done ? n_done++ : n_failed++;
      JsonObject *failure = json_object_has_member (u, "failure") &&
                            JSON_NODE_HOLDS_OBJECT (json_object_get_member (u, "failure"))
                              ? json_object_get_object_member (u, "failure") : NULL;
      if (!done && (failure == NULL || st_json_get_string (failure, "step") == NULL))
        {
          st_check (&c, FALSE, "unit %u (uid %s): failed without a failure step", i + 1, uid);
          bad_units++;
        }
      const char *pem = st_json_get_string (u, "certificate");
      const char *cert_serial = st_json_get_string (u, "cert_serial");
      const char *status = st_json_get_string (u, "certificate_status");
      g_autofree gchar *fingerprint = NULL;
      if (pem != NULL)
        {
          g_autoptr(X509) cert = st_x509_from_pem (pem);
          st_error_clear_openssl ();
          if (cert == NULL)
            {
              st_check (&c, FALSE, "unit %u (uid %s): certificate does not parse", i + 1, uid);
              bad_units++;
              continue;
            }
          guint8 *der = NULL;
          int der_len = i2d_X509 (cert, &der);
          fingerprint = st_sha256_hex (der, (gsize) der_len);
          OPENSSL_free (der);
          g_autoptr(GError) chain_error = NULL;
          if (chain == NULL || !st_verify_chain (cert, chain, root, &chain_error))
            {
              st_check (&c, FALSE, "unit %u (uid %s): certificate does not chain to the root: %s",
                        i + 1, uid, chain_error != NULL ? chain_error->message : "no chain");
              bad_units++;
            }
          else
            chain_ok++;
          gboolean uid_compared = FALSE;
          if (!st_manifest_check_uid (&c, profile, i + 1, u, uid, cert, &uid_compared))
            uid_bad++;
          else if (uid_compared)
            uid_checked++;
          g_autofree gchar *real_serial = st_x509_serial_hex (cert);
          if (!st_serial_hex_equal (real_serial, cert_serial))
            {
              st_check (&c, FALSE, "unit %u (uid %s): cert_serial %s is not the certificate's serial %s",
                        i + 1, uid, cert_serial, real_serial);
              bad_units++;
            }
          if (real_serial != NULL && !g_hash_table_add (serials, g_strdup (real_serial)))
            {
              st_check (&c, FALSE, "unit %u (uid %s): serial %s appears twice", i + 1, uid, real_serial);
              bad_units++;
            }
          EVP_PKEY *cert_key = X509_get0_pubkey (cert);
          g_autofree gchar *key_hash = cert_key != NULL ? st_pubkey_sha256_hex (cert_key) : NULL;
          if (key_hash != NULL && !g_hash_table_add (keys, g_steal_pointer (&key_hash)))
            {
              st_check (&c, FALSE, "unit %u (uid %s): its public key is certified twice", i + 1, uid);
              bad_units++;
            }
          if (g_strcmp0 (status, "active") == 0)
            n_active++;
          else if (g_strcmp0 (status, "voided") == 0)
            n_voided++;
          else if (g_strcmp0 (status, "unconfirmed") == 0)
            n_unconfirmed++;
          else if (g_strcmp0 (status, "disputed") == 0)
            n_disputed++;
          else if (g_strcmp0 (status, "revoked") == 0)
            n_revoked++;
          else
            {
              st_check (&c, FALSE, "unit %u (uid %s): certificate_status '%s' is not active, voided, unconfirmed, disputed or revoked",
                        i + 1, uid, status);
              bad_units++;
            }
          /* what a CRL beside the manifest must list */
          if ((g_strcmp0 (status, "voided") == 0 || g_strcmp0 (status, "revoked") == 0) && real_serial != NULL)
            g_hash_table_add (on_crl, g_strdup (real_serial));
          /* a revoked certificate's unit was done: its device shipped */
          if (done != (g_strcmp0 (status, "active") == 0 || g_strcmp0 (status, "revoked") == 0))
            {
              st_check (&c, FALSE, "unit %u (uid %s): state %s with certificate %s", i + 1, uid, state, status);
              bad_units++;
            }
          if (g_strcmp0 (status, "voided") != 0 && g_strcmp0 (status, "revoked") != 0
              && !g_hash_table_add (live_uids, g_strdup (uid)))
            {
              st_check (&c, FALSE, "uid %s has two live certificates", uid);
              bad_units++;
            }
        }
      else if (done)
        {
          st_check (&c, FALSE, "unit %u (uid %s): done without a certificate", i + 1, uid);
          bad_units++;
        }
      const char *issued_at = pem != NULL ? st_json_get_string (u, "issued_at") : NULL;
      st_csv_field (expect_csv, uid, FALSE);
      st_csv_field (expect_csv, st_json_get_string (u, "serial"), FALSE);
      st_csv_field (expect_csv, state, FALSE);
      st_csv_field (expect_csv, failure != NULL ? st_json_get_string (failure, "step") : NULL, FALSE);
      st_csv_field (expect_csv, failure != NULL ? st_json_get_string (failure, "reason") : NULL, FALSE);
      st_csv_field (expect_csv, pem != NULL ? cert_serial : NULL, FALSE);
      st_csv_field (expect_csv, pem != NULL ? status : NULL, FALSE);
      st_csv_field (expect_csv, issued_at, FALSE);
      st_csv_field (expect_csv, fingerprint, TRUE);
    }
  guint n_units = json_array_get_length (units);
  st_check (&c, bad_units == 0, "%u units: %" G_GINT64_FORMAT " done, %" G_GINT64_FORMAT " failed",
            n_units, n_done, n_failed);
  st_check (&c, bad_units == 0, "%u certificate(s) chain to the trusted root; %" G_GINT64_FORMAT " active, %"
            G_GINT64_FORMAT " voided, %" G_GINT64_FORMAT " unconfirmed, %" G_GINT64_FORMAT " disputed",
            chain_ok, n_active, n_voided, n_unconfirmed, n_disputed);
  if (profile != NULL && uid_bad == 0)
    st_check (&c, TRUE, "uids: %u certificate(s) checked, each with the subject and subjectAltName "
              "the profile builds for its unit's uid", uid_checked);
  else if (profile != NULL)
    st_check (&c, FALSE, "uids: %u certificate(s) do not match their unit's uid", uid_bad);
  gint64 c_units = -1, c_done = -1, c_failed = -1, c_active = -1, c_voided = -1, c_unconfirmed = -1;
  gint64 c_disputed = 0;  /* manifests from before disputes have no such count */
  gint64 c_revoked = 0;   /* nor those from before revocation */
  if (counts != NULL)
    {
      st_json_get_int (counts, "units", &c_units);
      st_json_get_int (counts, "done", &c_done);
      st_json_get_int (counts, "failed", &c_failed);
      st_json_get_int (counts, "certificates_active", &c_active);
      st_json_get_int (counts, "certificates_voided", &c_voided);
      st_json_get_int (counts, "certificates_unconfirmed", &c_unconfirmed);
      if (json_object_has_member (counts, "certificates_disputed")
          && !st_json_get_int (counts, "certificates_disputed", &c_disputed))
        c_disputed = -1;
      if (json_object_has_member (counts, "certificates_revoked")
          && !st_json_get_int (counts, "certificates_revoked", &c_revoked))
        c_revoked = -1;
    }
  st_check (&c, c_units == n_units && c_done == n_done && c_failed == n_failed &&
                c_active == n_active && c_voided == n_voided && c_unconfirmed == n_unconfirmed &&
                c_disputed == n_disputed && c_revoked == n_revoked,
            "the batch counts agree with the units");
  st_check (&c, n_active + n_unconfirmed + n_disputed <= quantity,
            "live certificates (%" G_GINT64_FORMAT ") within the quantity (%" G_GINT64_FORMAT ")",
            n_active + n_unconfirmed + n_disputed, quantity);

  g_autofree gchar *csv = NULL;
  gsize csv_len = 0;
  g_autoptr(GError) csv_error = NULL;
  if (!st_read_bounded (p_csv, ST_MANIFEST_MAX_JSON, &csv, &csv_len, &csv_error))
    st_check (&c, FALSE, "manifest.csv: %s", csv_error->message);
  else
    st_check (&c, csv_len == expect_csv->len && memcmp (csv, expect_csv->str, csv_len) == 0,
              "manifest.csv has the same %u units as manifest.json", n_units);

  g_autofree gchar *p_crl = g_build_filename (dir, "crl.pem", NULL);
  st_crl_check_file (&c, p_crl, chain, on_crl);
  return st_check_result (&c, dir, error);
}
