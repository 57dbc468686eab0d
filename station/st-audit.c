/* Signed checkpoints of the audit chain, verification and export. */
#include "st-audit.h"

#include <glib/gi18n.h>
#include <inttypes.h>
#include "st-json.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <string.h>

#include "st-anchor.h"
#include "st-error.h"
#include "st-ossl.h"
#include "st-util.h"


guint
st_audit_checkpoint_interval (StConfig *config)
{
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  if (config == NULL || config->path == NULL || !g_key_file_load_from_file (kf, config->path, 0, NULL))
    return ST_AUDIT_CHECKPOINT_EVERY_DEFAULT;
  g_autoptr(GError) error = NULL;
  gint64 n = g_key_file_get_int64 (kf, "audit", "checkpoint-every", &error);
  if (error != NULL)
    return ST_AUDIT_CHECKPOINT_EVERY_DEFAULT;
  if (n < 1 || n > ST_AUDIT_CHECKPOINT_EVERY_MAX)
    {
      g_warning ("%s: [audit] checkpoint-every=%" G_GINT64_FORMAT " is not in 1..%d: using %d",
                 config->path, n, ST_AUDIT_CHECKPOINT_EVERY_MAX, ST_AUDIT_CHECKPOINT_EVERY_DEFAULT);
      return ST_AUDIT_CHECKPOINT_EVERY_DEFAULT;
    }
  return (guint) n;
}

gchar *
st_audit_checkpoint_message (gint64 seq, const char *hash)
{
  return g_strdup_printf ("station-audit-checkpoint/1\nseq=%" G_GINT64_FORMAT "\nhash=%s\n", seq, hash);
}

typedef struct {
  const char *message;
  GBytes *sig;
} StAuditSign;

/* One signature by the signing key (st_ca_sign_with). */
static gboolean
st_audit_sign_func (EVP_PKEY *key, StCaToken *token, gpointer user_data, GError **error)
{
  StAuditSign *s = user_data;
  gsize message_len = strlen (s->message);
  g_autoptr(EVP_MD_CTX) md = EVP_MD_CTX_new ();
  size_t len = 0;
  st_ca_token_enter (token);
  if (md != NULL && EVP_DigestSignInit (md, NULL, EVP_sha256 (), NULL, key) == 1
      && EVP_DigestSign (md, NULL, &len, (const guint8 *) s->message, message_len) == 1 && len > 0)
    {
      guint8 *sig = g_malloc (len);
      if (EVP_DigestSign (md, sig, &len, (const guint8 *) s->message, message_len) == 1)
        s->sig = g_bytes_new_take (sig, len);
      else
        g_free (sig);
    }
  st_ca_token_leave (token);
  if (s->sig == NULL)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL,
                            "cannot sign the audit checkpoint with the station signing key (EVP_DigestSign)");
      return FALSE;
    }
  return TRUE;
}

/* The signature of @message, with the HSM session recovery of every
 * signature the station makes. */
static GBytes *
st_audit_sign (StCa *ca, const char *message, GError **error)
{
  StAuditSign s = { .message = message };
  if (!st_ca_sign_with (ca, ST_CA_KEY_SIGNING, "the audit checkpoint", st_audit_sign_func, &s,
                        NULL, error))
    {
      g_clear_pointer (&s.sig, g_bytes_unref);
      return NULL;
    }
  return s.sig;
}

/* The log's last entry when it has no checkpoint yet (*@seq 0 when the
 * log is empty or its last entry is covered). */
static gboolean
st_audit_uncovered_head (StDb *db, gint64 *seq, gchar **hash, GError **error)
{
  *seq = 0;
  *hash = NULL;
  if (!st_db_audit_head (db, seq, hash, error))
    return FALSE;
  if (*seq == 0)
    return TRUE;
  g_autoptr(GError) local = NULL;
  g_autoptr(StDbAuditCheckpoint) latest = st_db_audit_checkpoint_latest (db, &local);
  if (latest == NULL && !g_error_matches (local, ST_ERROR, ST_ERROR_NOT_FOUND))
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  /* NOT_FOUND: no checkpoint yet */
  if (latest != NULL && latest->seq == *seq && g_strcmp0 (latest->hash, *hash) == 0)
    {
      *seq = 0;
      g_clear_pointer (hash, g_free);
    }
  return TRUE;
}

static gboolean st_audit_anchor (StDb *db, StCa *ca, gint64 seq, const char *hash, GError **error);

/* Signs the checkpoint of the head @seq/@hash and records it. */
static gboolean
st_audit_sign_head (StDb *db, StCa *ca, gint64 seq, const char *hash, const char *reason,
                    GError **error)
{
  g_autofree gchar *message = st_audit_checkpoint_message (seq, hash);
  g_autoptr(GBytes) sig = st_audit_sign (ca, message, error);
  if (sig == NULL)
    return FALSE;
  guint8 *der = NULL;
  int der_len = i2d_X509 (ca->signing_cert, &der);
  if (der_len <= 0)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "cannot encode the signing certificate");
      return FALSE;
    }
  g_autoptr(GBytes) cert = g_bytes_new (der, (gsize) der_len);
  OPENSSL_free (der);
  return st_db_audit_checkpoint_add (db, seq, hash, reason, sig, cert, error)
         && st_audit_anchor (db, ca, seq, hash, error);
}

/* Moves the HSM's anchor to the checkpoint @seq/@hash. A log that lost the
 * anchored entry keeps the anchor where it is and is reported (the
 * checkpoint stays recorded: the station goes on, audit verify fails). */
static gboolean
st_audit_anchor (StDb *db, StCa *ca, gint64 seq, const char *hash, GError **error)
{
  g_autoptr(GError) local = NULL;
  if (st_anchor_advance (ca->hsm, db, ca->config->station_id, seq, hash, &local))
    return TRUE;
  if (g_error_matches (local, ST_ERROR, ST_ERROR_VERIFY_FAILED))
    {
      g_warning ("%s", local->message);
      return TRUE;
    }
  g_propagate_error (error, g_steal_pointer (&local));
  return FALSE;
}

gboolean
st_audit_checkpoint (StDb *db, StCa *ca, const char *reason, GError **error)
{
  gint64 seq = 0;
  g_autofree gchar *hash = NULL;
  if (!st_audit_uncovered_head (db, &seq, &hash, error))
    return FALSE;
  if (seq != 0)
    return st_audit_sign_head (db, ca, seq, hash, reason, error);
  /* The head is covered: the anchor follows the latest checkpoint (a
   * station older than the anchor, or a write cut short, left it behind). */
  g_autoptr(GError) local = NULL;
  g_autoptr(StDbAuditCheckpoint) cp = st_db_audit_checkpoint_latest (db, &local);
  if (cp == NULL)
    {
      if (g_error_matches (local, ST_ERROR, ST_ERROR_NOT_FOUND))
        return TRUE;
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  return st_audit_anchor (db, ca, cp->seq, cp->hash, error);
}

void
st_audit_checkpoint_at_exit (const char *home, StConfig *config, StDb *db, StCa *ca)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StConfig) own_config = NULL;
  g_autoptr(StDb) own_db = NULL;
  g_autoptr(StCa) own_ca = NULL;
  if (db == NULL)
    {
      if (config == NULL)
        config = own_config = st_config_load (home, &error);
      /* No station here (yet), or no database: nothing was audited. */
      if (config == NULL || !g_file_test (config->db_path, G_FILE_TEST_EXISTS))
        return;
      db = own_db = st_db_open (config->db_path, &error);
    }
  gint64 seq = 0;
  g_autofree gchar *hash = NULL;
  if (db == NULL || !st_audit_uncovered_head (db, &seq, &hash, &error))
    {
      g_printerr (_("station: cannot read the audit log for its closing checkpoint: %s\n"),
                  error->message);
      return;
    }
  if (seq == 0)
    return;
  if (ca == NULL)
    {
      /* Only a PIN given for this run: a command that needs no HSM does not
       * prompt for it just to sign. */
      if (g_getenv ("STATION_HSM_PIN") == NULL)
        {
          g_printerr (_("station: audit entries up to %" PRId64 " wait for a signed "
                      "checkpoint: the next command that opens the HSM (batch run, batch close, "
                      "manifest export) signs one\n"), seq);
          return;
        }
      gchar *pin = st_hsm_read_pin (NULL, &error);
      if (pin != NULL && config != NULL)
        ca = own_ca = st_ca_open (config, pin, &error);
      st_hsm_pin_free (pin);
    }
  if (ca == NULL || !st_audit_sign_head (db, ca, seq, hash, "shutdown", &error))
    g_printerr (_("station: the audit checkpoint at exit failed (entries up to %" PRId64
                " wait for the next one): %s\n"), seq,
                error != NULL ? error->message : "no station configuration");
}

static void
st_audit_hook (StDb *db, gpointer user_data)
{
  g_autoptr(GError) error = NULL;
  if (!st_audit_checkpoint (db, user_data, "every-n", &error))
    g_warning ("audit checkpoint: %s", error->message);
}

void
st_audit_install_hook (StDb *db, StCa *ca, guint every)
{
  st_db_set_checkpoint_hook (db, every, st_audit_hook, ca);
}

void
st_audit_remove_hook (StDb *db)
{
  st_db_set_checkpoint_hook (db, 0, NULL, NULL);
}

/* ---- verify ---- */

static gboolean
st_audit_check_signer (X509 *cert, X509 *root, STACK_OF (X509) *untrusted)
{
  g_autoptr(X509_STORE) store = X509_STORE_new ();
  g_autoptr(X509_STORE_CTX) ctx = X509_STORE_CTX_new ();
  if (store == NULL || ctx == NULL || X509_STORE_add_cert (store, root) != 1
      || X509_STORE_CTX_init (ctx, store, cert, untrusted) != 1)
    return FALSE;
  return X509_verify_cert (ctx) == 1;
}

/* Whether @sig is @cert's SHA-256 signature of @message. */
static gboolean
st_audit_signature_ok (X509 *cert, GBytes *sig, const char *message)
{
  EVP_PKEY *pub = X509_get0_pubkey (cert);
  g_autoptr(EVP_MD_CTX) md = EVP_MD_CTX_new ();
  gsize sig_len = 0;
  const guint8 *sig_data = g_bytes_get_data (sig, &sig_len);
  gboolean ok = pub != NULL && md != NULL
                && EVP_DigestVerifyInit (md, NULL, EVP_sha256 (), NULL, pub) == 1
                && EVP_DigestVerify (md, sig_data, sig_len, (const guint8 *) message, strlen (message)) == 1;
  ERR_clear_error ();
  return ok;
}

void
st_audit_manifest_free (StAuditManifest *m)
{
  if (m == NULL)
    return;
  g_free (m->label);
  g_free (m->path);
  g_free (m);
}

/* One manifest's "audit_checkpoint": signed by the pinned station key (when
 * trust->signer is given) and still in the log. FALSE with @error unset
 * when it is not (the report says why); with @error set when the file
 * cannot be read at all. */
static gboolean
st_audit_check_manifest (StDb *db, const StAuditTrust *trust, const StAuditManifest *m,
                         GString *report, GError **error)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  g_autoptr(GError) local = NULL;
  const char *problem = NULL;
  g_autofree gchar *problem_buf = NULL;
  JsonObject *cp = NULL;
  if (!json_parser_load_from_mapped_file (parser, m->path, &local))
    problem = problem_buf = g_strdup_printf (_("its manifest.json is not JSON (%s)"), local->message);
  else
    {
      JsonNode *root = json_parser_get_root (parser);
      JsonObject *top = root != NULL && JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
      JsonNode *n = top != NULL ? json_object_get_member (top, "audit_checkpoint") : NULL;
      cp = n != NULL && JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
      if (cp == NULL)
        problem = _("it carries no audit checkpoint");
    }
  gint64 seq = 0;
  const char *hash = NULL, *sig_b64 = NULL;
  if (problem == NULL)
    {
      JsonNode *seq_n = json_object_get_member (cp, "seq");
      JsonNode *hash_n = json_object_get_member (cp, "hash");
      JsonNode *sig_n = json_object_get_member (cp, "signature");
      if (seq_n == NULL || json_node_get_value_type (seq_n) != G_TYPE_INT64
          || hash_n == NULL || json_node_get_value_type (hash_n) != G_TYPE_STRING
          || sig_n == NULL || json_node_get_value_type (sig_n) != G_TYPE_STRING)
        problem = _("its audit checkpoint lacks seq, hash or signature");
      else
        {
          seq = json_node_get_int (seq_n);
          hash = json_node_get_string (hash_n);
          sig_b64 = json_node_get_string (sig_n);
          if (seq <= 0 || strlen (hash) != 64 || strspn (hash, "0123456789abcdef") != 64)
            problem = _("its audit checkpoint names no entry of a log");
        }
    }
  if (problem == NULL && trust->signer != NULL)
    {
      gsize sig_len = 0;
      g_autofree guchar *sig = g_base64_decode (sig_b64, &sig_len);
      g_autoptr(GBytes) sig_bytes = g_bytes_new (sig, sig_len);
      g_autofree gchar *message = st_audit_checkpoint_message (seq, hash);
      if (sig_len == 0 || !st_audit_signature_ok (trust->signer, sig_bytes, message))
        problem = _("its audit checkpoint is not signed by the pinned station signing key: the manifest "
                  "is not this station's");
    }
  if (problem == NULL)
    {
      g_autoptr(StDbAuditEntry) e = st_db_audit_get (db, seq, &local);
      if (e == NULL && !g_error_matches (local, ST_ERROR, ST_ERROR_NOT_FOUND))
        {
          g_propagate_error (error, g_steal_pointer (&local));
          return FALSE;
        }
      if (e == NULL)
        problem = problem_buf = g_strdup_printf (_("the log has no entry %" PRId64 ", which this "
                                                 "signed checkpoint covers: the log was truncated or "
                                                 "restored from an older copy"), seq);
      else if (strcmp (e->hash, hash) != 0)
        problem = problem_buf = g_strdup_printf (_("the log's entry %" PRId64 " is not the one this "
                                                 "signed checkpoint covers: the log was rewritten"), seq);
    }
  if (problem != NULL)
    {
      g_string_append_printf (report, _("manifest %s: FAILED: %s\n"), m->label, problem);
      return FALSE;
    }
  g_string_append_printf (report, _("manifest %s: ok (its checkpoint of entry %" PRId64
                          " is in the log)\n"), m->label, seq);
  return TRUE;
}

gboolean
st_audit_verify (StDb *db, const StAuditTrust *trust, GString *report, GError **error)
{
  g_autoptr(GError) chain_error = NULL;
  gint64 n = 0;
  if (!st_db_audit_verify (db, report, &n, &chain_error)
      && !g_error_matches (chain_error, ST_ERROR, ST_ERROR_VERIFY_FAILED))
    {
      g_propagate_error (error, g_steal_pointer (&chain_error));
      return FALSE;
    }
  g_autoptr(GPtrArray) cps = st_db_audit_checkpoint_list (db, error);
  if (cps == NULL)
    return FALSE;
  guint bad = 0;
  for (guint i = 0; i < cps->len; i++)
    {
      StDbAuditCheckpoint *cp = g_ptr_array_index (cps, i);
      g_autoptr(X509) cert = st_x509_from_der (cp->signer_cert);
      g_autofree gchar *message = st_audit_checkpoint_message (cp->seq, cp->hash);
      g_autoptr(GError) signer_error = NULL;
      const char *problem = NULL;
      if (cert == NULL)
        problem = _("its signer certificate cannot be read");
      else if (trust->root != NULL && !st_audit_check_signer (cert, trust->root, trust->untrusted))
        problem = _("its signer certificate does not chain to the trusted root");
      else if (trust->signer_pin == NULL)
        problem = _("no station signing key is pinned ([certificates] signing-key-sha256)");
      else if (!st_ca_check_station_signer (cert, trust->signer_pin, &signer_error))
        problem = signer_error->message;
      else if (!st_audit_signature_ok (cert, cp->signature, message))
        problem = _("its signature does not verify");
      if (problem != NULL)
        {
          bad++;
          g_string_append_printf (report, _("checkpoint %" PRId64 " (entry %" PRId64
                                  ", %s): FAILED: %s\n"), cp->id, cp->seq, cp->reason, problem);
        }
    }
  /* the OpenSSL queue may hold verification noise */
  ERR_clear_error ();
  if (bad == 0)
    g_string_append_printf (report, ngettext ("checkpoint signatures: ok (%u checkpoint(s) signed by the "
                                              "pinned station signing key)\n",
                                              "checkpoint signatures: ok (%u checkpoint(s) signed by the "
                                              "pinned station signing key)\n", cps->len), cps->len);
  guint unexplained = 0;   /* rows the log does not explain (db/st-db-replay.c) */
  if (!st_db_audit_explain (db, report, &unexplained, error))
    return FALSE;
  /* The anchor in the HSM: what the database alone cannot prove. */
  g_autoptr(GError) anchor_error = NULL;
  gboolean anchor_ok = TRUE;
  if (trust->hsm == NULL)
    g_string_append (report, _("HSM anchor: not checked (the HSM is locked: unlock it and verify "
                             "again)\n"));
  else if (!st_anchor_check (trust->hsm, db, trust->station_id, report, &anchor_error))
    {
      if (!g_error_matches (anchor_error, ST_ERROR, ST_ERROR_VERIFY_FAILED))
        {
          g_propagate_error (error, g_steal_pointer (&anchor_error));
          return FALSE;
        }
      anchor_ok = FALSE;
    }
  /* The checkpoints that left the station in manifests. */
  guint lost = 0;
  for (guint i = 0; trust->manifests != NULL && i < trust->manifests->len; i++)
    if (!st_audit_check_manifest (db, trust, g_ptr_array_index (trust->manifests, i), report, error))
      {
        if (error != NULL && *error != NULL)
          return FALSE;
        lost++;
      }
  if (chain_error != NULL || bad > 0 || unexplained > 0 || !anchor_ok || lost > 0)
    {
      g_autoptr(GString) what = g_string_new (NULL);
      if (chain_error != NULL)
        g_string_append (what, _("the chain is broken"));
      if (bad > 0)
        g_string_append_printf (what, _("%sbad checkpoint signatures"), what->len > 0 ? ", " : "");
      if (unexplained > 0)
        g_string_append_printf (what, _("%srecords the log does not explain"), what->len > 0 ? ", " : "");
      if (!anchor_ok)
        g_string_append_printf (what, _("%sthe HSM's anchor is not in the log"), what->len > 0 ? ", " : "");
      if (lost > 0)
        g_string_append_printf (what, ngettext ("%s%u manifest checkpoint(s) not in the log",
                                                "%s%u manifest checkpoint(s) not in the log", lost),
                                what->len > 0 ? ", " : "", lost);
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   _("the audit log does not verify (%s): keep the database as it is and call "
                   "the auditor; see the report"), what->str);
      return FALSE;
    }
  return TRUE;
}

/* ---- export ---- */

static gboolean
st_audit_export_entry (const StDbAuditEntry *e, gpointer user_data, GError **error)
{
  GString *out = ((gpointer *) user_data)[0];
  gint64 *n = ((gpointer *) user_data)[1];
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autofree gchar *time = st_time_iso8601_from_unix (e->at);
  json_builder_begin_object (b);
  st_json_add_string (b, "type", "entry");
  st_json_add_int (b, "seq", e->seq);
  st_json_add_int (b, "at", e->at);
  st_json_add_string (b, "time", time);
  st_json_add_string (b, "operator", e->operator_name);
  st_json_add_string (b, "event", e->event);
  /* the exact bytes that were hashed */
  st_json_add_string (b, "payload", e->payload);
  st_json_add_string (b, "prev_hash", e->prev_hash);
  st_json_add_string (b, "hash", e->hash);
  json_builder_end_object (b);
  g_autofree gchar *line = st_json_builder_text (b);
  g_string_append (out, line);
  g_string_append_c (out, '\n');
  (*n)++;
  return TRUE;
}

static void
st_audit_checkpoint_members (JsonBuilder *b, const StDbAuditCheckpoint *cp)
{
  g_autofree gchar *time = st_time_iso8601_from_unix (cp->at);
  g_autofree gchar *message = st_audit_checkpoint_message (cp->seq, cp->hash);
  gsize sig_len = 0, cert_len = 0;
  const guint8 *sig = g_bytes_get_data (cp->signature, &sig_len);
  const guint8 *cert = g_bytes_get_data (cp->signer_cert, &cert_len);
  g_autofree gchar *sig_b64 = g_base64_encode (sig, sig_len);
  g_autofree gchar *cert_hash = st_sha256_hex (cert, cert_len);
  st_json_add_int (b, "seq", cp->seq);
  st_json_add_string (b, "hash", cp->hash);
  st_json_add_string (b, "at", time);
  st_json_add_string (b, "reason", cp->reason);
  st_json_add_string (b, "message", message);
  st_json_add_string (b, "signature", sig_b64);
  st_json_add_string (b, "signer_cert_sha256", cert_hash);
}

gboolean
st_audit_export (StDb *db, const char *path, gint64 *n_entries, GError **error)
{
  g_autoptr(GString) out = g_string_new (NULL);
  gint64 n = 0;
  gpointer ctx[2] = { out, &n };
  if (!st_db_audit_foreach (db, st_audit_export_entry, ctx, error))
    return FALSE;
  g_autoptr(GPtrArray) cps = st_db_audit_checkpoint_list (db, error);
  if (cps == NULL)
    return FALSE;
  for (guint i = 0; i < cps->len; i++)
    {
      StDbAuditCheckpoint *cp = g_ptr_array_index (cps, i);
      g_autoptr(X509) cert = st_x509_from_der (cp->signer_cert);
      g_autofree gchar *pem = NULL;
      if (cert != NULL)
        {
          g_autoptr(BIO) bio = BIO_new (BIO_s_mem ());
          char *data = NULL;
          if (bio != NULL && PEM_write_bio_X509 (bio, cert) == 1)
            {
              long len = BIO_get_mem_data (bio, &data);
              pem = g_strndup (data, (gsize) MAX (len, 0));
            }
        }
      g_autoptr(JsonBuilder) b = json_builder_new ();
      json_builder_begin_object (b);
      st_json_add_string (b, "type", "checkpoint");
      st_json_add_int (b, "id", cp->id);
      st_audit_checkpoint_members (b, cp);
      st_json_add_string (b, "signer_cert", pem);
      json_builder_end_object (b);
      g_autofree gchar *line = st_json_builder_text (b);
      g_string_append (out, line);
      g_string_append_c (out, '\n');
    }
  if (!st_file_write_durable (path, out->str, out->len, 0600, error))
    {
      g_prefix_error (error, _("cannot write the audit export %s: "), path);
      return FALSE;
    }
  if (n_entries != NULL)
    *n_entries = n;
  return TRUE;
}

gboolean
st_audit_add_manifest_member (JsonBuilder *b, StDb *db, StCa *ca, GError **error)
{
  if (!st_audit_checkpoint (db, ca, "manifest", error))
    {
      g_prefix_error (error, _("cannot checkpoint the audit log for the manifest: "));
      return FALSE;
    }
  g_autoptr(GError) local = NULL;
  g_autoptr(StDbAuditCheckpoint) cp = st_db_audit_checkpoint_latest (db, &local);
  json_builder_set_member_name (b, "audit_checkpoint");
  if (cp == NULL)
    {
      if (!g_error_matches (local, ST_ERROR, ST_ERROR_NOT_FOUND))
        {
          g_propagate_error (error, g_steal_pointer (&local));
          return FALSE;
        }
      json_builder_add_null_value (b);
      return TRUE;
    }
  json_builder_begin_object (b);
  st_audit_checkpoint_members (b, cp);
  json_builder_end_object (b);
  return TRUE;
}
