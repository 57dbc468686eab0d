/* The station's records: batches, units, certificates and events in one
 * SQLite database (docs/architecture.md, The unit pipeline).
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
/* Progress of the long reads, `db check` and `audit verify`
 * (st_db_check, st_db_audit_verify, st_db_audit_explain): @what names the
 * step ("integrity", "checks", "audit chain", "replay", "units",
 * "certificates"), @done of @total rows or entries (@total 0: not known).
 * Called from the thread that runs the check, every few thousand rows and
 * at each step's start: the receiver throttles what it shows. NULL stops
 * it. Set it from the thread that runs the check, around the call. */
typedef void (*StDbProgressFunc) (const char *what, gint64 done, gint64 total, gpointer user_data);
void st_db_set_progress (StDb *db, StDbProgressFunc func, gpointer user_data);
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
  /* counts kept by triggers in the batches table (schemas 3 and 9), never a scan */
  gint64 n_units, n_done, n_failed, n_live_certs, n_voided, n_unconfirmed;
  gint64 n_disputed;
  gint64 n_revoked;
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
/* ST_ERROR_BUSY while units are still in issuing/issued or a certificate is
 * disputed (a lead decides it first); an already closed
 * batch is ST_ERROR_INVALID_DATA. */
gboolean st_db_batch_close (StDb *db, gint64 id, const char *operator_name, GError **error);

/* --- the unit life cycle ---
 * unit:  started -> issuing -> issued -> done, or failed from any state
 * cert:  issuing -> issued -> active; voided / unconfirmed on failure;
 *        unconfirmed -> disputed -> unconfirmed | voided (a lead decides);
 *        "live" = issuing, issued, active, unconfirmed, disputed */

/* A new unit in state 'started'; returns its id (> 0), or 0 and @error.
 * ST_ERROR_PERMISSION_DENIED when the batch is closed. @uid_hex is lower-case hex. */
gint64 st_db_unit_begin (StDb *db, gint64 batch_id, const char *port, const char *uid_hex,
                         const char *model, const char *fw_version,
                         const char *operator_name, GError **error);

/* In one transaction: the unit must be 'started' and its batch open; the
 * batch's live certificates must be fewer than its quantity (else BUSY
 * "batch quantity N reached"); the unit's uid must hold no live certificate in
 * any batch (else PERMISSION_DENIED) unless @allow_reprovision, in which case
 * that certificate is voided with reason "re-provisioned" (never a disputed
 * one: PERMISSION_DENIED, a lead decides it first). Records the
 * certificate in state 'issuing' (serial, public key hash, @tbs) and sets the
 * unit's product serial/seq and state 'issuing'.
 * Errors: a public key already certified -> VERIFY_FAILED "this public key was
 * already certified (serial ...)"; (issuer, serial) taken -> INTERNAL
 * "serial collision" (draw a new serial and call again); @product_serial
 * already given to a unit of the batch's product -> INTERNAL "product serial
 * collision" (draw a new number and call again: product serials never
 * repeat, the database registers each one, unique per product). A
 * @product_seq > 0 moves the product's sequence (st_db_product_seq_draw)
 * past it.
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
 * unit's first durable state is 'issuing' (docs/architecture.md: the pipeline's durable
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
/* Draws the next number of @product's sequence (the batches' product name)
 * for the {seq} of a product serial: 1, 2, ... per product, whatever the
 * batch. Within this process a number is handed out once, under a lock,
 * however many batches of the product run at once; it goes on from the
 * database's sequence, which every reservation moves past the number it
 * records (st_db_cert_reserve). The draw writes nothing (a unit's durable
 * writes stay three): a number drawn but never recorded (the unit failed
 * before its reservation) is a gap, and may be drawn again after a restart,
 * as it was never used. Another process drawing for the same product at the
 * same time may draw the same number: the later reservation is refused as
 * a product serial collision (INTERNAL) and the caller draws again. Returns
 * the number (> 0), or 0 and @error. */
gint64 st_db_product_seq_draw (StDb *db, const char *product, GError **error);
/* After a reservation refused as a product serial collision (another
 * process drew the same number): the next draw goes past what the database
 * recorded meanwhile. */
gboolean st_db_product_seq_resync (StDb *db, const char *product, GError **error);

typedef struct {
  gint64 id, batch_id, product_seq, started_at, finished_at;
  gchar *port, *uid, *model, *fw_version, *product_serial, *state,
        *fail_step, *fail_reason, *fail_detail, *operator_name;
  /* the unit's certificate, if any (cert_id 0 if none) */
  gint64 cert_id, issued_at;
  gchar *cert_serial, *cert_state, *cert_issuer, *pubkey_sha256, *void_reason;
  GBytes *cert_der /* NULL until issued */;
  GBytes *tbs;
  gchar *dispute_reason;  /* why its certificate was last disputed, or NULL */
} StDbUnit;
void st_db_unit_free (StDbUnit *unit);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StDbUnit, st_db_unit_free)

/* Of StDbUnit*, in id order. */
GPtrArray *st_db_unit_list (StDb *db, gint64 batch_id, GError **error);
/* At most @limit of the batch's units with an id above @after_id, in id
 * order (paging: pass the last id of a page to get the next). */
GPtrArray *st_db_unit_list_page (StDb *db, gint64 batch_id, gint64 after_id, guint limit,
                                 GError **error);
/* Calls @func on each unit of @batch_id in id order, one at a time, read
 * in pages of ST_DB_UNIT_PAGE (the reader's lock is released between
 * pages): the memory it takes does not grow with the batch. @func returns
 * FALSE (and sets its error) to stop; st_db_unit_foreach then returns
 * FALSE. The unit is freed after @func returns. */
#define ST_DB_UNIT_PAGE 256
typedef gboolean (*StDbUnitFunc) (const StDbUnit *unit, gpointer user_data, GError **error);
gboolean st_db_unit_foreach (StDb *db, gint64 batch_id, StDbUnitFunc func, gpointer user_data,
                             GError **error);
/* The shift chart of @batch_id: its finished units counted per hour from
 * @first_hour (@n_hours entries of @passed_per_hour and @failed_per_hour,
 * zeroed by the caller), in all (@n_done, @n_failed), and its failures by
 * step into @failures_by_step (gchar* owned by the table -> count). Walks
 * the batch in chunks holding no unit: memory does not grow with it. */
gboolean st_db_unit_shift_counts (StDb *db, gint64 batch_id, gint64 first_hour, guint n_hours,
                                  guint *passed_per_hour, guint *failed_per_hour, guint *n_done,
                                  guint *n_failed, GHashTable *failures_by_step, GError **error);
/* Units in 'started', 'issuing', 'issued', any batch, in id order. */
GPtrArray *st_db_unit_list_unfinished (StDb *db, GError **error);
/* The unit holding @uid_hex's live certificate; NULL and NOT_FOUND if none. */
StDbUnit *st_db_unit_find_live_by_uid (StDb *db, const char *uid_hex, GError **error);
/* NULL and NOT_FOUND naming the id if there is no such unit. */
StDbUnit *st_db_unit_get (StDb *db, gint64 unit_id, GError **error);
/* The units whose device uid, certificate serial (both lower-case hex,
 * matched whatever the case of @name) or product serial is @name, any
 * state, in id order (of StDbUnit*; empty when none). */
GPtrArray *st_db_unit_find_by_name (StDb *db, const char *name, GError **error);

/* --- the Matter factory data of a unit (schema 10; docs/matter.md,
 * "Factory data per unit") ---
 * One record per unit of a Matter batch, written in the transaction that
 * reserves the unit's certificate and never changed. The passcode is a
 * secret: st_db_unit_matter_free wipes it and the codes that carry it. */
typedef struct {
  gint64 unit_id, batch_id;     /* set by the database (ignored when writing) */
  guint vendor_id, product_id;  /* 16 bits each, product_id never 0 */
  guint discriminator;          /* 12 bits */
  gint64 counter;               /* the batch's sequential counter it came from; -1: random */
  guint32 passcode;             /* 1 to 99999998 */
  guint32 iterations;           /* PBKDF2, 1000 to 100000 */
  GBytes *salt;                 /* 16 to 32 bytes */
  GBytes *verifier;             /* 97 bytes: w0 || L */
  GBytes *unique_id;            /* NULL, or 16 to 32 bytes */
  guint flow;                   /* 0 standard, 1 user intent, 2 custom */
  guint discovery;              /* bits: 1 SoftAP, 2 BLE, 4 on network; 1 to 7 */
  gchar *qr_text;               /* "MT:" and 19 characters */
  gchar *manual_code;           /* 11 or 21 digits */
  gint64 created_at;            /* set by the database */
} StDbUnitMatter;
void st_db_unit_matter_free (StDbUnitMatter *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StDbUnitMatter, st_db_unit_matter_free)

/* Lower-case hex SHA-256 of the record's canonical encoding (every field
 * but unit_id, batch_id and created_at; "station-matter/1\n" then one
 * "name=value\n" per field, numbers in decimal, bytes in lower-case hex,
 * a missing unique id empty, counter -1 for a random discriminator): what
 * the audit entry unit-matter carries and the replay compares. */
gchar *st_db_unit_matter_digest (const StDbUnitMatter *m);

/* st_db_unit_begin_reserve, and in the same transaction the unit's Matter
 * record @matter (NULL: none, as st_db_unit_begin_reserve), audited as
 * unit-matter (unit, batch, discriminator, counter, matter_sha256; never
 * the passcode). A counter the batch already recorded is refused as
 * INTERNAL "discriminator counter collision" (draw again after
 * st_db_matter_counter_resync). Nothing is recorded when any part is
 * refused. */
gint64 st_db_unit_begin_reserve_matter (StDb *db, const StDbUnitNew *unit, const char *issuer,
                                        const char *serial_hex, const char *pubkey_sha256,
                                        GBytes *tbs, const char *product_serial,
                                        gint64 product_seq, gboolean allow_reprovision,
                                        const StDbUnitMatter *matter, gint64 *unit_id,
                                        GError **error);

/* The Matter record of @unit_id; NULL and NOT_FOUND naming the unit when
 * it has none. */
StDbUnitMatter *st_db_unit_matter_get (StDb *db, gint64 unit_id, GError **error);
/* At most @limit Matter records of @batch_id's units with a unit id above
 * @after_unit_id, in unit id order (of StDbUnitMatter*). */
GPtrArray *st_db_unit_matter_list_page (StDb *db, gint64 batch_id, gint64 after_unit_id,
                                        guint limit, GError **error);
/* Calls @func on each Matter record of @batch_id in unit id order, read in
 * pages of ST_DB_UNIT_PAGE (memory does not grow with the batch); the
 * record is freed (and wiped) after @func returns; @func returns FALSE
 * (with its error) to stop. */
typedef gboolean (*StDbUnitMatterFunc) (const StDbUnitMatter *m, gpointer user_data, GError **error);
gboolean st_db_unit_matter_foreach (StDb *db, gint64 batch_id, StDbUnitMatterFunc func,
                                    gpointer user_data, GError **error);

/* The next sequential discriminator counter of @batch_id: 0, 1, 2, ...
 * per batch, going on from the highest counter the batch recorded (read
 * the first time), handed out once within this process under a lock. The
 * draw writes nothing: a counter drawn by a unit that fails before its
 * reservation is a gap, never a repeat. Returns the counter (>= 0), or -1
 * and @error. */
gint64 st_db_matter_counter_draw (StDb *db, gint64 batch_id, GError **error);
/* After a collision (another process recorded the counter): the next draw
 * goes past what the database recorded. */
gboolean st_db_matter_counter_resync (StDb *db, gint64 batch_id, GError **error);

/* --- disputed certificates (schema 6) ---
 * An 'unconfirmed' certificate may be on its device. When a device
 * answering with its uid holds neither it nor its key, that device may be a
 * clone: the certificate is not voided on its word, it becomes 'disputed'
 * (still live) until a lead decides. */

/* Certificate 'unconfirmed' -> 'disputed' with @reason (and when); a unit
 * still unfinished ('issued', left by an interruption) becomes 'failed' at
 * @step with @reason and @detail, a failed one keeps its failure. Audited
 * ("cert-dispute": the certificate, its unit, uid and serial, @port, @step,
 * @reason) as @operator_name. INVALID_DATA when the certificate is not
 * 'unconfirmed'. */
gboolean st_db_cert_dispute (StDb *db, gint64 cert_id, const char *step, const char *reason,
                             const char *detail, const char *port, const char *operator_name,
                             GError **error);

typedef enum {
  ST_DB_DISPUTE_KEEP,  /* 'unconfirmed' again: the device that holds it completes its unit */
  ST_DB_DISPUTE_VOID,  /* 'voided': the next device with the uid is provisioned anew */
} StDbDisputeDecision;
/* "keep", "void"; NULL for anything else. */
const char *st_db_dispute_decision_to_string (StDbDisputeDecision decision);
/* A lead's decision (@by) on a 'disputed' certificate; INVALID_DATA saying
 * what it is when it is not disputed. Audited ("unit-resolve": the unit,
 * certificate, uid, serials, decision, from and to) as @by. */
gboolean st_db_cert_resolve_dispute (StDb *db, gint64 cert_id, StDbDisputeDecision decision,
                                     const char *by, GError **error);

/* Revokes the 'active' certificate @cert_id (its device shipped) with the
 * RFC 5280 reason name @reason (the engine checks it against its list):
 * 'revoked', with the reason, the time and @by. INVALID_DATA when it is
 * already revoked (saying when, by whom, why) or not active (its state).
 * Audited ("unit-revoke": unit, cert, uid, serials, reason) as @by. */
gboolean st_db_cert_revoke (StDb *db, gint64 cert_id, const char *reason, const char *by,
                            GError **error) G_GNUC_WARN_UNUSED_RESULT;

/* Takes the next CRL number (max + 1 over every number ever taken) for a
 * CRL valid from @this_update to @next_update (Unix seconds), audited
 * ("crl-reserve") as @by. The number stays taken whatever follows. */
gboolean st_db_crl_reserve (StDb *db, gint64 this_update, gint64 next_update, const char *by,
                            gint64 *number, GError **error) G_GNUC_WARN_UNUSED_RESULT;
/* Records that CRL @number was signed: its @entries and the SHA-256 of its
 * DER (lower-case hex), audited ("crl-issue") as @by. Once per number. */
gboolean st_db_crl_complete (StDb *db, gint64 number, gint64 entries, const char *der_sha256,
                             const char *by, GError **error) G_GNUC_WARN_UNUSED_RESULT;
/* The highest CRL number taken, 0 if none. */
gboolean st_db_crl_last_number (StDb *db, gint64 *number, GError **error) G_GNUC_WARN_UNUSED_RESULT;

/* One certificate a CRL lists: voided after it was signed, or revoked. */
typedef struct {
  gchar *serial;   /* lower-case hex, as the certificates table keeps it */
  gchar *issuer;   /* SHA-256 of the issuer, hex */
  gchar *state;    /* "voided" or "revoked" */
  gchar *reason;   /* the RFC 5280 reason name of a revoked one; NULL for voided */
  gint64 when;     /* voided_at or revoked_at (Unix seconds) */
} StDbCrlEntry;
void st_db_crl_entry_free (StDbCrlEntry *e);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StDbCrlEntry, st_db_crl_entry_free)
/* Of StDbCrlEntry*, in certificate id order: every certificate voided that
 * has a DER (a certificate voided while 'issuing' was never signed) and
 * every revoked one. */
GPtrArray *st_db_crl_entries (StDb *db, GError **error);

/* Generic event log (QA results and the like); @payload_json may be NULL,
 * otherwise it must be valid JSON (INVALID_DATA). */
gboolean st_db_event_add (StDb *db, const char *operator_name, const char *event,
                          const char *payload_json, GError **error);

/* PRAGMA integrity_check and foreign_key_check, plus: serials unique per
 * issuer, public keys certified once, no uid with two live certificates,
 * every issued/active certificate has its DER, unit and certificate states
 * agree, product serials unique per product (a database from before schema
 * 5 may hold duplicates: they stay, and this names them), each product's
 * sequence ahead of the numbers its units carry. Appends one line per check to @report (may be NULL); FALSE and
 * ST_ERROR_VERIFY_FAILED when anything is wrong. */
gboolean st_db_check (StDb *db, GString *report, GError **error);

/* --- who does it ---
 * Every write appends an audit entry naming an operator: the function's
 * @operator_name when it takes one, else this actor (the operator logged in
 * for this process; "station" until set). Thread-safe; copied per write. */
void st_db_set_actor (StDb *db, const char *operator_name);

/* --- operators and roles --- */
#define ST_DB_OPERATOR_NAME_MAX 64
typedef struct {
  gint64 id;
  gchar *name, *role, *pin_hash;
  gint64 failed_attempts, created_at, updated_at;
  gboolean locked;
} StDbOperator;
void st_db_operator_free (StDbOperator *op);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StDbOperator, st_db_operator_free)

/* How many operators exist; -1 and @error on failure. */
gint64 st_db_operator_count (StDb *db, GError **error);
/* NOT_FOUND naming @name when there is none. */
StDbOperator *st_db_operator_get (StDb *db, const char *name, GError **error);
/* Of StDbOperator*, by name. */
GPtrArray *st_db_operator_list (StDb *db, GError **error);
/* Adds an operator (@role: operator, lead, qa or admin; @pin_hash as
 * st_auth_hash_pin() makes it). @by is the admin who does it; @by NULL is
 * the bootstrap: allowed only while there is no operator at all, and only
 * for an admin (PERMISSION_DENIED otherwise, checked in the same
 * transaction). A name taken is INVALID_DATA. Audited. */
gboolean st_db_operator_add (StDb *db, const char *name, const char *role,
                             const char *pin_hash, const char *by, GError **error);
/* Audited; NOT_FOUND when there is no such operator. PERMISSION_DENIED,
 * saying what to do, when it would leave the station without an unlocked
 * admin (checked in the same transaction). */
gboolean st_db_operator_set_role (StDb *db, const char *name, const char *role,
                                  const char *by, GError **error);
gboolean st_db_operator_unlock (StDb *db, const char *name, const char *by, GError **error);
/* A login attempt, reserved before its PIN is checked (st_auth_login): in
 * one transaction, the operator's lock is read and the attempt counted
 * (failed_attempts + 1), so that attempts made at once never get more
 * hashes than @max_attempts. Returns the operator as it was (with its PIN
 * hash); *@attempt is this attempt's number (1 .. @max_attempts), or 0 when
 * none may be made: the operator is locked, or its last attempts are being
 * checked now. NOT_FOUND when there is no such operator. Not audited: the
 * outcome is. */
StDbOperator *st_db_operator_login_reserve (StDb *db, const char *name, gint64 max_attempts,
                                            gint64 *attempt, GError **error);
/* Reserved attempt @attempt had a wrong PIN (already counted): the
 * operator is locked once @attempt reaches @max_attempts. Audited
 * (login-failed or operator-locked, with the attempt's number). */
gboolean st_db_operator_login_wrong (StDb *db, const char *name, gint64 attempt,
                                     gint64 max_attempts, gboolean *locked, GError **error);
/* Reserved attempt @attempt had the right PIN: PERMISSION_DENIED when the
 * operator was locked meanwhile (by attempts checked at the same time);
 * else failed_attempts back to 0, audited (login-attempts-reset, with the
 * attempt's number) unless it was the first attempt. */
gboolean st_db_operator_login_right (StDb *db, const char *name, gint64 attempt, GError **error);
/* At a service's start, nothing checks a PIN: the attempts reserved by a
 * service that stopped while it checked them are released (each operator
 * not locked gets them back), audited once per operator
 * (login-attempts-released). *@n_released: how many operators. */
gboolean st_db_operator_release_attempts (StDb *db, guint *n_released, GError **error);
/* Break-glass recovery (station/st-recover.h), once the HSM token's SO PIN
 * was proved: with @pin_hash NULL, unlocks @name, which must be an admin
 * (PERMISSION_DENIED naming its role otherwise, NOT_FOUND when there is
 * none); else adds @name as a new admin with @pin_hash (a name taken is
 * INVALID_DATA). Audited as admin-recover by @by; *@action is "unlocked" or
 * "added". */
gboolean st_db_operator_recover (StDb *db, const char *name, const char *pin_hash,
                                 const char *by, const char **action, GError **error);

/* --- quota of voided certificates ---
 * A batch may void up to quantity / 10 + 5 certificates, plus the
 * allowances a lead granted; past that, st_db_cert_reserve and
 * st_db_unit_begin_reserve refuse with PERMISSION_DENIED ("batch N has
 * voided M certificates, more than the cap of K: ...") and the line stops. */
gint64 st_db_void_cap_base (gint64 quantity);
/* Whether @batch_id has more voided certificates than its cap (FALSE on
 * any error); sets *@voided and *@cap when given. */
gboolean st_db_batch_over_void_cap (StDb *db, gint64 batch_id, gint64 *voided, gint64 *cap);
/* Raises the batch's cap by st_db_void_cap_base() once more; returns the
 * new cap in *@new_cap. Audited with @by. */
gboolean st_db_batch_allow_more_voids (StDb *db, gint64 batch_id, const char *by,
                                       gint64 *new_cap, GError **error);

/* --- the audit trail ---
 * Every write function above appends one entry in its own transaction:
 * seq (1, 2, ...), time, operator, event, payload (compact JSON), prev_hash
 * (64 zeros for the first) and hash = SHA-256 over the canonical encoding
 * of the other six (st_db_audit_hash, docs/audit.md). */
typedef struct {
  gint64 seq, at;
  gchar *operator_name, *event, *payload, *prev_hash, *hash;
} StDbAuditEntry;
void st_db_audit_entry_free (StDbAuditEntry *e);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StDbAuditEntry, st_db_audit_entry_free)

#define ST_DB_AUDIT_GENESIS "0000000000000000000000000000000000000000000000000000000000000000"
/* Lower-case hex SHA-256 of "station-audit/1\n" followed, for each field
 * in order, by its byte length in decimal, ':', the bytes and '\n'
 * (seq and at in decimal). */
gchar *st_db_audit_hash (gint64 seq, gint64 at, const char *operator_name, const char *event,
                         const char *payload, const char *prev_hash);
/* The last entry's seq and hash (0 and the genesis hash when empty). */
gboolean st_db_audit_head (StDb *db, gint64 *seq, gchar **hash, GError **error);
/* Calls @func for every entry in seq order; stops (FALSE) when it returns FALSE. */
typedef gboolean (*StDbAuditFunc) (const StDbAuditEntry *entry, gpointer user_data, GError **error);
gboolean st_db_audit_foreach (StDb *db, StDbAuditFunc func, gpointer user_data, GError **error);
/* One entry; NOT_FOUND if there is none with @seq. */
StDbAuditEntry *st_db_audit_get (StDb *db, gint64 seq, GError **error);

/* An event that changes nothing else (a manifest export, a QA result, a
 * refusal): the audit entry alone. @payload_json NULL = {}. */
gboolean st_db_audit_add (StDb *db, const char *operator_name, const char *event,
                          const char *payload_json, GError **error);

typedef struct {
  gint64 id, seq, at;
  gchar *hash, *reason;
  GBytes *signature;    /* ECDSA (DER) over st_audit_checkpoint_message() */
  GBytes *signer_cert;  /* DER */
} StDbAuditCheckpoint;
void st_db_audit_checkpoint_free (StDbAuditCheckpoint *cp);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StDbAuditCheckpoint, st_db_audit_checkpoint_free)

/* Records a signed checkpoint of entry @seq, whose hash must be @hash
 * (VERIFY_FAILED otherwise). */
gboolean st_db_audit_checkpoint_add (StDb *db, gint64 seq, const char *hash, const char *reason,
                                     GBytes *signature, GBytes *signer_cert, GError **error);
/* Of StDbAuditCheckpoint*, in id order. */
GPtrArray *st_db_audit_checkpoint_list (StDb *db, GError **error);
/* The newest; NULL and NOT_FOUND when there is none. */
StDbAuditCheckpoint *st_db_audit_checkpoint_latest (StDb *db, GError **error);

/* Recomputes the chain: seqs 1..N without a gap, each prev_hash the hash
 * before it, each hash its contents' hash; and every checkpoint's entry
 * present with the signed hash (an entry missing behind a checkpoint is a
 * truncation). Signatures are checked by station/ (st_audit_verify).
 * Appends what it found to @report; VERIFY_FAILED when anything is wrong.
 * *@n_entries: how many entries there are. */
gboolean st_db_audit_verify (StDb *db, GString *report, gint64 *n_entries, GError **error);

/* Binds the records to the log: rebuilds from the log's payloads what
 * every operator (name, role, locked, a commitment to its PIN hash), batch
 * (work order, product, profile, quantity, state, void allowance), unit
 * (batch, uid, state, product serial) and certificate (unit, serial, public
 * key, issuer and to-be-signed hash, DER hash, state) must be, reads the
 * tables in the same snapshot, and appends to @report (may be NULL) each row
 * the log does not explain (changed, added or deleted behind the station's
 * back), at most 20 lines, and a verdict line. *@n_unexplained: how many
 * rows or fields it found (0: the log explains every row). FALSE and
 * @error only when the database cannot be read (docs/audit.md). */
gboolean st_db_audit_explain (StDb *db, GString *report, guint *n_unexplained, GError **error);

/* Called after a write (on the writer's caller thread, never two at once)
 * once @every entries were appended since the last checkpoint: the station
 * signs a checkpoint there (st_audit_checkpoint). @every 0 switches it off. */
typedef void (*StDbCheckpointFunc) (StDb *db, gpointer user_data);
void st_db_set_checkpoint_hook (StDb *db, guint every, StDbCheckpointFunc func, gpointer user_data);

/* --- backup (st-db-backup.c) --- */

/* An online copy of the database at @db_path into @dest with SQLite's
 * backup API (a running station keeps writing meanwhile): written to a
 * temporary file beside @dest, quick-checked, fsynced, moved in place, and
 * the folder fsynced. The copy is one standalone file (rollback journal).
 * An existing @dest is refused (PERMISSION_DENIED) unless @force. */
gboolean st_db_backup (const char *db_path, const char *dest, gboolean force, GError **error);

G_END_DECLS
