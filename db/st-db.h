/* The station's records: batches, units, certificates and events in one
 * SQLite database (DESIGN.md, "The unit pipeline").
 *
 * Every write function blocks until its own transaction has been committed
 * (WAL, synchronous=FULL): nothing is acknowledged before COMMIT returned OK.
 * Writes from many threads go to one writer thread that commits them in
 * groups; reads use a separate read-only connection. All functions are
 * thread-safe. Time values are unix seconds (UTC). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _StDb StDb;

/* Opens (creating if needed) and migrates the database at @path. A database
 * written by a newer station is refused with ST_ERROR_NOT_SUPPORTED. */
StDb *st_db_open (const char *path, GError **error);
void st_db_close (StDb *db);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StDb, st_db_close)

const char *st_db_get_path (StDb *db);
/* The schema version this code writes (PRAGMA user_version). */
gint st_db_schema_version (void);
/* How many write requests the writer completed and in how many commits
 * (group commit makes the second smaller under load). */
void st_db_get_write_stats (StDb *db, guint64 *n_writes, guint64 *n_commits);

/* --- batches --- */
typedef struct {
  gint64 id;
  gchar *work_order, *product, *profile_sha256, *profile_text, *state,
        *created_by, *closed_by, *station_id;
  gint64 quantity, created_at, closed_at /* 0 if open */;
  gint64 n_units, n_done, n_failed, n_live_certs, n_voided, n_unconfirmed;  /* computed when read */
} StDbBatch;
void st_db_batch_free (StDbBatch *batch);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StDbBatch, st_db_batch_free)

/* Returns the new batch's id (> 0), or 0 and @error. */
gint64 st_db_batch_create (StDb *db, const char *work_order, const char *product,
                           const char *profile_sha256, const char *profile_text,
                           gint64 quantity, const char *station_id,
                           const char *operator_name, GError **error);
/* ST_ERROR_NOT_FOUND naming the id when there is no such batch. */
StDbBatch *st_db_batch_get (StDb *db, gint64 id, GError **error);
/* Of StDbBatch*, newest first. */
GPtrArray *st_db_batch_list (StDb *db, GError **error);
/* ST_ERROR_BUSY while units are still in issuing/issued; an already closed
 * batch is ST_ERROR_INVALID_DATA. */
gboolean st_db_batch_close (StDb *db, gint64 id, const char *operator_name, GError **error);

/* --- the unit life cycle ---
 * unit:  started -> issuing -> issued -> done, or failed from any state
 * cert:  issuing -> issued -> active; voided / unconfirmed on failure;
 *        "live" = issuing, issued, active, unconfirmed */

/* A new unit in state 'started'; returns its id (> 0), or 0 and @error.
 * ST_ERROR_PERMISSION_DENIED when the batch is closed. @uid_hex is lower-case hex. */
gint64 st_db_unit_begin (StDb *db, gint64 batch_id, const char *port, const char *uid_hex,
                         const char *model, const char *fw_version,
                         const char *operator_name, GError **error);

/* In one transaction: the unit must be 'started' and its batch open; the
 * batch's live certificates must be fewer than its quantity (else BUSY
 * "batch quantity N reached"); the unit's uid must hold no live certificate in
 * any batch (else PERMISSION_DENIED) unless @allow_reprovision, in which case
 * that certificate is voided with reason "re-provisioned". Records the
 * certificate in state 'issuing' (serial, public key hash, @tbs) and sets the
 * unit's product serial/seq and state 'issuing'.
 * Errors: a public key already certified -> VERIFY_FAILED "this public key was
 * already certified (serial ...)"; (issuer, serial) taken -> INTERNAL
 * "serial collision" (draw a new serial and call again).
 * @issuer: lower-case hex SHA-256 of the issuing CA certificate's DER;
 * @serial_hex: lower-case hex of the DER INTEGER's content octets (positive,
 * no leading 00 unless the next octet is >= 0x80);
 * @pubkey_sha256: lower-case hex SHA-256 of the SubjectPublicKeyInfo DER.
 * Returns the certificate id (> 0), or 0 and @error. */
gint64 st_db_cert_reserve (StDb *db, gint64 unit_id, const char *issuer, const char *serial_hex,
                           const char *pubkey_sha256, GBytes *tbs,
                           const char *product_serial, gint64 product_seq,
                           gboolean allow_reprovision, GError **error);
/* Certificate 'issuing' -> 'issued' with its signed @der (which can never be
 * changed afterwards); its unit 'issuing' -> 'issued'. */
/* A unit as the pipeline knows it before anything about it is recorded. */
typedef struct {
  gint64 batch_id;
  const char *port, *uid_hex, *model, *fw_version, *operator_name;
} StDbUnitNew;

/* st_db_unit_begin and st_db_cert_reserve in ONE transaction (one fsync): the
 * unit's first durable state is 'issuing' (DESIGN.md: the pipeline's durable
 * states are ISSUING, ISSUED, DONE and FAILED). When the reservation is
 * refused, nothing at all is recorded: record the refusal with
 * st_db_unit_add_failed. Same errors as st_db_cert_reserve. Returns the
 * certificate id and sets *@unit_id. */
gint64 st_db_unit_begin_reserve (StDb *db, const StDbUnitNew *unit, const char *issuer,
                                 const char *serial_hex, const char *pubkey_sha256, GBytes *tbs,
                                 const char *product_serial, gint64 product_seq,
                                 gboolean allow_reprovision, gint64 *unit_id, GError **error);
/* Records a unit that failed (or was refused) before any certificate was
 * reserved, in one write. Returns the unit id. */
gint64 st_db_unit_add_failed (StDb *db, const StDbUnitNew *unit, const char *step,
                              const char *reason, const char *detail, GError **error);

gboolean st_db_cert_issued (StDb *db, gint64 cert_id, GBytes *der, GError **error);
/* Unit 'issued' -> 'done', its certificate 'issued' -> 'active'. */
gboolean st_db_unit_done (StDb *db, gint64 unit_id, GError **error);

typedef enum { ST_DB_CERT_VOID, ST_DB_CERT_UNCONFIRMED } StDbCertDisposition;
/* Unit -> 'failed' with @step/@reason/@detail (from any state but 'failed');
 * its live certificate, if any, becomes 'voided' (void_reason @reason) or
 * 'unconfirmed'. */
gboolean st_db_unit_fail (StDb *db, gint64 unit_id, const char *step, const char *reason,
                          const char *detail, StDbCertDisposition disposition, GError **error);

/* Recovery of a unit left in issuing/issued, or of an unconfirmed certificate
 * seen again. @state is 'voided', 'unconfirmed' or 'active'. Allowed moves:
 * issuing -> voided|unconfirmed; issued -> active|voided|unconfirmed;
 * unconfirmed -> active|voided; active -> voided. With 'active' the unit
 * becomes 'done'; with 'voided' a unit still in started/issuing/issued
 * becomes 'failed' (step "recovery", @reason); with 'unconfirmed' a unit in
 * 'issued' stays 'issued' (it waits for its device, and st_db_unit_done or
 * st_db_unit_fail ends it later), one in started/issuing becomes 'failed'. */
gboolean st_db_cert_set_state (StDb *db, gint64 cert_id, const char *state,
                               const char *reason, GError **error);
/* Highest product_seq used for @product (the batches' product name), 0 if
 * none, -1 and @error on failure. */
gint64 st_db_product_seq_max (StDb *db, const char *product, GError **error);

typedef struct {
  gint64 id, batch_id, product_seq, started_at, finished_at;
  gchar *port, *uid, *model, *fw_version, *product_serial, *state,
        *fail_step, *fail_reason, *fail_detail, *operator_name;
  /* the unit's certificate, if any (cert_id 0 if none) */
  gint64 cert_id, issued_at;
  gchar *cert_serial, *cert_state, *cert_issuer, *pubkey_sha256, *void_reason;
  GBytes *cert_der /* NULL until issued */;
  GBytes *tbs;
} StDbUnit;
void st_db_unit_free (StDbUnit *unit);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StDbUnit, st_db_unit_free)

/* Of StDbUnit*, in id order. */
GPtrArray *st_db_unit_list (StDb *db, gint64 batch_id, GError **error);
/* Units in 'started', 'issuing', 'issued', any batch, in id order. */
GPtrArray *st_db_unit_list_unfinished (StDb *db, GError **error);
/* The unit holding @uid_hex's live certificate; NULL and NOT_FOUND if none. */
StDbUnit *st_db_unit_find_live_by_uid (StDb *db, const char *uid_hex, GError **error);
/* NULL and NOT_FOUND naming the id if there is no such unit. */
StDbUnit *st_db_unit_get (StDb *db, gint64 unit_id, GError **error);

/* Generic event log (QA results and the like); @payload_json may be NULL,
 * otherwise it must be valid JSON (INVALID_DATA). */
gboolean st_db_event_add (StDb *db, const char *operator_name, const char *event,
                          const char *payload_json, GError **error);

/* PRAGMA integrity_check and foreign_key_check, plus: serials unique per
 * issuer, public keys certified once, no uid with two live certificates,
 * every issued/active certificate has its DER, unit and certificate states
 * agree. Appends one line per check to @report (may be NULL); FALSE and
 * ST_ERROR_VERIFY_FAILED when anything is wrong. */
gboolean st_db_check (StDb *db, GString *report, GError **error);

G_END_DECLS
