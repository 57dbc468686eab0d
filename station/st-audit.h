/* The audit trail's signed checkpoints, its verification and its export
 * (docs/architecture.md, Security invariants: "The audit log is a hash chain in the same transaction as the
 * records it describes, with checkpoints signed by the station's signing
 * key"; docs/audit.md).
 *
 * db/ appends the chain inside every write. A checkpoint is an ECDSA (or
 * RSA, whatever the signing key is) SHA-256 signature by the station
 * signing key in the HSM over st_audit_checkpoint_message(seq, hash), made
 * at batch close, every N entries during a batch run, at the end of a batch
 * run and for each manifest export; stock openssl verifies it:
 *   openssl dgst -sha256 -verify signer-pub.pem -signature sig.der message.txt */
#pragma once

#include <json-glib/json-glib.h>
#include <openssl/x509.h>

#include "st-ca.h"
#include "st-config.h"
#include "st-db.h"

G_BEGIN_DECLS

#define ST_AUDIT_CHECKPOINT_EVERY_DEFAULT 1000
#define ST_AUDIT_CHECKPOINT_EVERY_MAX 1000000

/* station.conf [audit] checkpoint-every=N (1..1000000), default 1000. */
guint st_audit_checkpoint_interval (StConfig *config);

/* "station-audit-checkpoint/1\nseq=SEQ\nhash=HASH\n": what is signed. */
gchar *st_audit_checkpoint_message (gint64 seq, const char *hash);

/* Signs a checkpoint of the log's last entry with the signing key and
 * records it; a no-op (TRUE) when that entry already has one or the log is
 * empty. @reason: "batch-close", "every-n", "batch-run-end", "manifest", "shutdown". */
gboolean st_audit_checkpoint (StDb *db, StCa *ca, const char *reason, GError **error);

/* The closing checkpoint of a command that ends normally: when the log of
 * the station in @home has entries after its latest signed checkpoint, opens
 * the CA (HSM PIN from STATION_HSM_PIN only: no prompt) and signs one with
 * reason "shutdown". Without a PIN, or when anything fails, it says so on
 * stderr and the entries wait for the next checkpoint; it never fails the
 * command. */
/* @config, @db and @ca: what the command had open (any may be NULL); the
 * rest is opened here only when it is needed. */
void st_audit_checkpoint_at_exit (const char *home, StConfig *config, StDb *db, StCa *ca);

/* Makes the database call st_audit_checkpoint() every @every entries (on
 * the writing thread, after its commit). @ca must outlive the hook:
 * remove it with st_audit_remove_hook() before freeing @ca. */
void st_audit_install_hook (StDb *db, StCa *ca, guint every);
void st_audit_remove_hook (StDb *db);

/* A manifest whose checkpoint audit verify checks: @label names it in the
 * report (the folder the client gave), @path is the service's copy of its
 * manifest.json. */
typedef struct {
  gchar *label, *path;
} StAuditManifest;
void st_audit_manifest_free (StAuditManifest *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StAuditManifest, st_audit_manifest_free)

/* What audit verify trusts. */
typedef struct {
  X509 *root;                   /* each checkpoint's signer chains to it */
  STACK_OF (X509) *untrusted;   /* intermediates (may be NULL) */
  const char *signer_pin;       /* the pinned station signing key (StConfig.signing_key_sha256) */
  X509 *signer;                 /* the pinned signing certificate, for manifests' checkpoints (NULL: not checked) */
  StHsm *hsm;                   /* logged in: the anchor is checked; NULL (locked): said in the report */
  const char *station_id;       /* whose anchor */
  GPtrArray *manifests;         /* of StAuditManifest, may be NULL */
} StAuditTrust;

/* The chain (st_db_audit_verify); every checkpoint's signature, by a
 * certificate that chains to the root, carries the station-signing
 * purpose and has the pinned key (a device's certificate never passes);
 * the HSM's anchor (st_anchor_check: truncation, rewriting, rollback); and
 * each manifest's checkpoint still in the log. Appends a report;
 * VERIFY_FAILED when anything is wrong. */
gboolean st_audit_verify (StDb *db, const StAuditTrust *trust, GString *report, GError **error);

/* Writes the whole log as JSON lines, then its checkpoints, to @path
 * (durably). Returns the number of entries in *@n_entries. */
gboolean st_audit_export (StDb *db, const char *path, gint64 *n_entries, GError **error);

/* The member "audit_checkpoint" of a manifest: a fresh checkpoint of the
 * log (st_audit_checkpoint) as { seq, hash, at, message, signature (base64
 * DER), signer_cert_sha256 }. */
gboolean st_audit_add_manifest_member (JsonBuilder *b, StDb *db, StCa *ca, GError **error);

G_END_DECLS
