/* A manifest's signer pin, audit checkpoint and units' uids (st-manifest-check.h). */
#include "st-manifest-check.h"

#include <glib/gi18n.h>
#include <inttypes.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <string.h>

#include "st-audit.h"
#include "st-ca.h"
#include "st-error.h"
#include "st-issue.h"
#include "st-matter-dac.h"
#include "st-ossl.h"
#include "st-profile.h"
#include "st-text.h"
#include "st-util.h"

void
st_manifest_check (StManifestCheck *c, gboolean ok, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree gchar *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  /* One line per check: what the manifest brought into the message (a uid,
   * the text a parse error quotes) is escaped, so that no manifest adds
   * lines ("ok ...") to its own report (found by fuzz-manifest). */
  g_autofree gchar *shown = st_text_escape (msg, -1, ST_TEXT_ONE_LINE);
  g_string_append_printf (c->report, "%s  %s\n", ok ? "ok  " : "FAIL", shown);
  if (!ok)
    c->failures++;
}

static const char *
st_member_string (JsonObject *o, const char *name)
{
  JsonNode *n = o != NULL ? json_object_get_member (o, name) : NULL;
  if (n == NULL || JSON_NODE_TYPE (n) != JSON_NODE_VALUE || json_node_get_value_type (n) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (n);
}

static JsonObject *
st_member_object (JsonObject *o, const char *name)
{
  JsonNode *n = o != NULL ? json_object_get_member (o, name) : NULL;
  return n != NULL && JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
}

/* Hex digits only (@lower: lower-case only), @len of them (0: any, at least one). */
static gboolean
st_is_hex (const char *s, gsize len, gboolean lower)
{
  const char *digits = lower ? "0123456789abcdef" : "0123456789abcdefABCDEF";
  gsize n = s != NULL ? strlen (s) : 0;
  return n > 0 && (len == 0 || n == len) && strspn (s, digits) == n;
}

static gchar *
st_name_text (const X509_NAME *name)
{
  /* every name a person reads in one form, RFC 4514 (st_x509_name_text) */
  return st_x509_name_text (name);
}

/* ---- the signer ---- */

void
st_manifest_check_signer (StManifestCheck *c, X509 *signer, const char *pin_hex, JsonObject *top)
{
  JsonNode *claim_node = top != NULL ? json_object_get_member (top, "signer_key_sha256") : NULL;
  const char *claim = st_member_string (top, "signer_key_sha256");
  g_autofree gchar *key = NULL;
  if (signer != NULL)
    {
      g_autofree gchar *who = st_name_text (X509_get_subject_name (signer));
      g_autoptr(GError) error = NULL;
      key = st_x509_pubkey_sha256_hex (signer, &error);
      if (key == NULL)
        st_manifest_check (c, FALSE, _("signer: %s: %s"), who, error->message);
      else if (pin_hex == NULL)
        st_manifest_check (c, FALSE, _("signer: no pin to hold %s against: give the pin of the station that "
                           "signed the manifest (--signer-pin HEX: the SHA-256 of its "
                           "signing key, from that station's key ceremony record or 'station setup "
                           "show' there); the signer's key is %s%s%s"), who, key,
                           claim != NULL ? _(", the manifest records ") : "", claim != NULL ? claim : "");
      else if (!st_ca_check_station_signer (signer, pin_hex, &error))
        st_manifest_check (c, FALSE, _("signer: %s"), error->message);
      else
        st_manifest_check (c, TRUE, _("signer: %s is the pinned station signer (station-signing "
                           "purpose, key %s)"), who, key);
    }
  if (claim_node == NULL)
    st_manifest_check (c, TRUE, _("signer pin: no signer pin recorded in the manifest (a manifest of an "
                       "older station): the pin held against its signer is %s"),
                       pin_hex != NULL ? pin_hex : "none");
  else if (!st_is_hex (claim, 64, FALSE))
    st_manifest_check (c, FALSE, _("signer pin: signer_key_sha256 is not 64 hex digits"));
  else if (key != NULL && g_ascii_strcasecmp (claim, key) != 0)
    st_manifest_check (c, FALSE, _("signer pin: the manifest records %s, but its signer's key is %s"),
                       claim, key);
  else if (key != NULL)
    st_manifest_check (c, TRUE, _("signer pin: the manifest records the same pin"));
}

/* ---- the audit checkpoint ---- */

void
st_manifest_check_checkpoint (StManifestCheck *c, JsonObject *top, X509 *signer)
{
  JsonNode *node = json_object_get_member (top, "audit_checkpoint");
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    {
      st_manifest_check (c, TRUE, _("audit checkpoint: none recorded (a manifest of an older station, "
                         "or of an empty audit log)"));
      return;
    }
  JsonObject *cp = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
  JsonNode *seq_node = cp != NULL ? json_object_get_member (cp, "seq") : NULL;
  const char *hash = st_member_string (cp, "hash");
  const char *message = st_member_string (cp, "message");
  const char *signature = st_member_string (cp, "signature");
  const char *cert_sha256 = st_member_string (cp, "signer_cert_sha256");
  if (seq_node == NULL || JSON_NODE_TYPE (seq_node) != JSON_NODE_VALUE
      || json_node_get_value_type (seq_node) != G_TYPE_INT64 || json_node_get_int (seq_node) < 1
      || !st_is_hex (hash, 64, FALSE) || message == NULL || signature == NULL)
    {
      st_manifest_check (c, FALSE, _("audit checkpoint: lacks a seq, a hash (64 hex digits), its "
                         "message or its signature"));
      return;
    }
  gint64 seq = json_node_get_int (seq_node);
  g_autofree gchar *expected = st_audit_checkpoint_message (seq, hash);
  if (strcmp (message, expected) != 0)
    st_manifest_check (c, FALSE, _("audit checkpoint: its message is not the one of its seq and hash "
                       "(seq %" PRId64 ", hash %s)"), seq, hash);
  if (signer == NULL)
    return;
  gsize sig_len = 0;
  g_autofree guchar *sig = g_base64_decode (signature, &sig_len);
  EVP_PKEY *pub = X509_get0_pubkey (signer);
  g_autoptr(EVP_MD_CTX) md = EVP_MD_CTX_new ();
  /* over the message of seq and hash: what the station signs */
  gboolean ok = pub != NULL && md != NULL && sig_len > 0
                && EVP_DigestVerifyInit (md, NULL, EVP_sha256 (), NULL, pub) == 1
                && EVP_DigestVerify (md, sig, sig_len, (const guint8 *) expected, strlen (expected)) == 1;
  ERR_clear_error ();
  if (!ok)
    {
      st_manifest_check (c, FALSE, _("audit checkpoint: entry %" PRId64 ": its signature does "
                         "not verify under the manifest's signer's key"), seq);
      return;
    }
  guint8 *der = NULL;
  int der_len = i2d_X509 (signer, &der);
  g_autofree gchar *signer_sha256 = der_len > 0 ? st_sha256_hex (der, (gsize) der_len) : NULL;
  OPENSSL_free (der);
  gboolean same_cert = cert_sha256 != NULL && signer_sha256 != NULL
                       && g_ascii_strcasecmp (cert_sha256, signer_sha256) == 0;
  st_manifest_check (c, TRUE, _("audit checkpoint: entry %" PRId64 " (hash %.16s...) signed by "
                     "the manifest's signer%s"), seq, hash,
                     same_cert ? "" : _(" (its key; the checkpoint names another certificate of it)"));
}

/* ---- the units' uids ---- */

struct _StManifestProfile {
  gchar *subject;   /* the subject template */
  gchar **san;      /* the SAN templates; never NULL */
  gchar *model;     /* the model the profile requires, or NULL */
  /* a Matter profile's VID and PID, which follow the template's attributes
   * in a DAC's subject (st_matter_name_add_ids); matter FALSE: none */
  gboolean matter;
  guint16 matter_vid, matter_pid;
};

/* batch.matter's vendor_id or product_id: 4 upper-case hex digits, not 0. */
static gboolean
st_matter_id_of (JsonObject *m, const char *name, guint16 *out)
{
  const char *s = st_member_string (m, name);
  guint v = 0;
  if (s == NULL || strlen (s) != 4)
    return FALSE;
  for (int k = 0; k < 4; k++)
    {
      if (!g_ascii_isdigit (s[k]) && !(s[k] >= 'A' && s[k] <= 'F'))
        return FALSE;
      v = v * 16 + (guint) g_ascii_xdigit_value (s[k]);
    }
  *out = (guint16) v;
  return v != 0;
}

void
st_manifest_profile_free (StManifestProfile *p)
{
  if (p == NULL)
    return;
  g_free (p->subject);
  g_strfreev (p->san);
  g_free (p->model);
  g_free (p);
}

/* The SAN templates batch.profile.san records; NULL when it is not a list
 * of strings. */
static GStrv
st_recorded_san (JsonObject *profile)
{
  JsonNode *n = json_object_get_member (profile, "san");
  if (n == NULL || !JSON_NODE_HOLDS_ARRAY (n))
    return NULL;
  JsonArray *a = json_node_get_array (n);
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
  for (guint i = 0; i < json_array_get_length (a); i++)
    {
      JsonNode *e = json_array_get_element (a, i);
      if (JSON_NODE_TYPE (e) != JSON_NODE_VALUE || json_node_get_value_type (e) != G_TYPE_STRING)
        return NULL;
      g_strv_builder_add (b, json_node_get_string (e));
    }
  return g_strv_builder_end (b);
}

/* The batch profile of SHA-256 @sha256 in @db, parsed; its batch id in *@batch_id. */
static StProfile *
st_station_profile (StDb *db, const char *sha256, gint64 *batch_id)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) batches = st_db_batch_list (db, &error);
  for (guint i = 0; batches != NULL && i < batches->len; i++)
    {
      StDbBatch *b = g_ptr_array_index (batches, i);
      if (b->profile_text == NULL || g_ascii_strcasecmp (b->profile_sha256, sha256) != 0)
        continue;
      g_autoptr(GError) parse_error = NULL;
      StProfile *p = st_profile_load_from_data (b->profile_text, strlen (b->profile_text),
                                                b->product, &parse_error);
      if (p != NULL)
        {
          *batch_id = b->id;
          return p;
        }
    }
  return NULL;
}

StManifestProfile *
st_manifest_profile_find (StManifestCheck *c, JsonObject *batch, StDb *db)
{
  JsonObject *profile = st_member_object (batch, "profile");
  const char *name = st_member_string (profile, "name");
  const char *sha256 = st_member_string (profile, "sha256");
  const char *subject = st_member_string (profile, "subject");
  g_auto(GStrv) san = profile != NULL ? st_recorded_san (profile) : NULL;
  gboolean recorded = subject != NULL || (profile != NULL && json_object_has_member (profile, "san"));
  if (recorded && (subject == NULL || san == NULL))
    {
      st_manifest_check (c, FALSE, _("profile: batch.profile records a subject template without a "
                         "list of SAN templates, or the reverse"));
      recorded = FALSE;
    }
  gint64 batch_id = 0;
  g_autoptr(StProfile) own = db != NULL && sha256 != NULL ? st_station_profile (db, sha256, &batch_id) : NULL;
  StManifestProfile *p = g_new0 (StManifestProfile, 1);
  if (own != NULL)
    {
      if (recorded && (strcmp (own->subject_template, subject) != 0
                       || !g_strv_equal ((const gchar *const *) own->san_templates,
                                         (const gchar *const *) san)))
        st_manifest_check (c, FALSE, _("profile: the subject and SAN templates the manifest records are "
                           "not those of profile %s (sha256 %s) as this station recorded it"),
                           name != NULL ? name : "?", sha256);
      else
        st_manifest_check (c, TRUE, _("profile: %s (sha256 %.16s...) as this station recorded it for "
                           "batch %" PRId64 "%s"), name != NULL ? name : "?", sha256, batch_id,
                           recorded ? _("; the manifest records the same templates") : "");
      g_free (p);
      return st_manifest_profile_of (own);
    }
  if (recorded)
    {
      st_manifest_check (c, TRUE, _("profile: %s, its subject and SAN templates as the manifest records "
                         "them (this station has no profile of sha256 %s)"),
                         name != NULL ? name : "?", sha256 != NULL ? sha256 : "?");
      p->subject = g_strdup (subject);
      p->san = g_steal_pointer (&san);
      /* a Matter batch's DACs carry the VID and PID the header names
       * (checked there: st_manifest_matter_batch_read) */
      JsonObject *m = st_member_object (batch, "matter");
      guint16 vid = 0, pid = 0;
      if (m != NULL && st_matter_id_of (m, "vendor_id", &vid) && st_matter_id_of (m, "product_id", &pid))
        st_manifest_profile_set_matter (p, vid, pid);
      return p;
    }
  g_free (p);
  st_manifest_check (c, TRUE, _("uids: not checked against the certificates: this station has no "
                     "profile of sha256 %s and the manifest records no subject template (a manifest "
                     "of an older station)"), sha256 != NULL ? sha256 : "?");
  return NULL;
}

static gboolean
st_der_equal_name (const X509_NAME *a, const X509_NAME *b)
{
  guint8 *da = NULL, *db = NULL;
  int la = i2d_X509_NAME (a, &da), lb = i2d_X509_NAME (b, &db);
  gboolean eq = la > 0 && la == lb && memcmp (da, db, (gsize) la) == 0;
  OPENSSL_free (da);
  OPENSSL_free (db);
  return eq;
}

static gboolean
st_der_equal_names (GENERAL_NAMES *a, GENERAL_NAMES *b)
{
  guint8 *da = NULL, *db = NULL;
  int la = i2d_GENERAL_NAMES (a, &da), lb = i2d_GENERAL_NAMES (b, &db);
  gboolean eq = la > 0 && la == lb && memcmp (da, db, (gsize) la) == 0;
  OPENSSL_free (da);
  OPENSSL_free (db);
  return eq;
}

static gboolean
st_profile_uses (const StManifestProfile *p, const char *placeholder)
{
  if (strstr (p->subject, placeholder) != NULL)
    return TRUE;
  for (guint i = 0; p->san[i] != NULL; i++)
    if (strstr (p->san[i], placeholder) != NULL)
      return TRUE;
  return FALSE;
}

StManifestProfile *
st_manifest_profile_new (const char *subject, const char *const *san, const char *model)
{
  StManifestProfile *p = g_new0 (StManifestProfile, 1);
  p->subject = g_strdup (subject);
  p->san = san != NULL ? g_strdupv ((gchar **) san) : g_new0 (gchar *, 1);
  p->model = g_strdup (model);
  return p;
}

StManifestProfile *
st_manifest_profile_of (const StProfile *profile)
{
  StManifestProfile *p = st_manifest_profile_new (profile->subject_template,
                                                  (const char *const *) profile->san_templates,
                                                  profile->model);
  if (profile->matter.enabled)
    st_manifest_profile_set_matter (p, profile->matter.vendor_id, profile->matter.product_id);
  return p;
}

void
st_manifest_profile_set_matter (StManifestProfile *p, guint16 vid, guint16 pid)
{
  p->matter = TRUE;
  p->matter_vid = vid;
  p->matter_pid = pid;
}

gboolean
st_manifest_check_uid (StManifestCheck *c, const StManifestProfile *p, guint index,
                       JsonObject *unit, const char *uid, X509 *cert, gboolean *checked)
{
  return st_manifest_check_uid_of (c, p, index, uid, st_member_string (unit, "model"),
                                   st_member_string (unit, "serial"), cert, checked);
}

gboolean
st_manifest_check_uid_of (StManifestCheck *c, const StManifestProfile *p, guint index, const char *uid,
                          const char *model, const char *product_serial, X509 *cert, gboolean *checked)
{
  *checked = FALSE;
  if (!st_is_hex (uid, 0, TRUE))
    {
      st_manifest_check (c, FALSE, _("unit %u: uid %s is not lower-case hex"), index, uid);
      return FALSE;
    }
  if (p == NULL)
    return TRUE;
  if (model == NULL)
    model = p->model;
  if (model == NULL && st_profile_uses (p, "{model}"))
    {
      st_manifest_check (c, TRUE, _("unit %u (uid %s): not checked against its certificate: the "
                         "profile's names use {model} and the manifest records no model for it"),
                         index, uid);
      return TRUE;
    }
  StSubjectInfo info = { .uid_hex = uid, .model = model,
                         .product_serial = product_serial };
  *checked = TRUE;
  g_autoptr(GError) error = NULL;
  g_autoptr(X509_NAME) want = st_profile_build_subject (p->subject, &info, &error);
  if (want != NULL && p->matter && !st_matter_name_add_ids (want, p->matter_vid, p->matter_pid, &error))
    g_clear_pointer (&want, X509_NAME_free);
  if (want == NULL)
    {
      st_manifest_check (c, FALSE, _("unit %u: uid %s does not match its certificate: the profile's "
                         "subject cannot be built for it (%s)"), index, uid, error->message);
      return FALSE;
    }
  if (!st_der_equal_name (want, X509_get_subject_name (cert)))
    {
      g_autofree gchar *have_text = st_name_text (X509_get_subject_name (cert));
      g_autofree gchar *want_text = st_name_text (want);
      st_manifest_check (c, FALSE, _("unit %u: uid %s does not match its certificate: its subject is %s, "
                         "the profile gives %s for this uid"), index, uid, have_text, want_text);
      return FALSE;
    }
  int crit = -1;
  g_autoptr(GENERAL_NAMES) have_san = X509_get_ext_d2i (cert, NID_subject_alt_name, &crit, NULL);
  gboolean san_ok;
  if (p->san[0] == NULL)
    san_ok = have_san == NULL && crit == -1;
  else
    {
      g_autoptr(GENERAL_NAMES) want_san = st_profile_build_san ((const char *const *) p->san, &info,
                                                                &error);
      if (want_san == NULL)
        {
          st_manifest_check (c, FALSE, _("unit %u: uid %s does not match its certificate: the profile's "
                             "subjectAltName cannot be built for it (%s)"), index, uid, error->message);
          return FALSE;
        }
      san_ok = have_san != NULL && st_der_equal_names (want_san, have_san);
    }
  ERR_clear_error ();
  if (!san_ok)
    {
      st_manifest_check (c, FALSE, _("unit %u: uid %s does not match its certificate: its "
                         "subjectAltName is not the profile's for this uid"), index, uid);
      return FALSE;
    }
  return TRUE;
}
