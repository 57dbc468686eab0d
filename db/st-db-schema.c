/* The schema, as numbered migrations (PRAGMA user_version). Each migration
 * runs in its own transaction and ends by setting user_version; the numbers
 * are constants of the script, never formatted in. */
#include "st-db-schema.h"

/* as migrations 1 and 3 wrote it; migration 4 writes it state <> 'voided' */
#define ST_DB_LIVE "('issuing','issued','active','unconfirmed')"
#define ST_DB_HEX(col) "(" col " <> '' AND " col " NOT GLOB '*[^0-9a-f]*')"

static const char *const migrations[] = {
  /* 1: batches, units, certificates, events */
  "CREATE TABLE batches ("
  "  id INTEGER PRIMARY KEY,"
  "  work_order TEXT NOT NULL CHECK (work_order <> ''),"
  "  product TEXT NOT NULL CHECK (product <> ''),"
  "  profile_sha256 TEXT NOT NULL CHECK (length(profile_sha256) = 64 AND " ST_DB_HEX ("profile_sha256") "),"
  "  profile_text TEXT NOT NULL,"
  "  quantity INTEGER NOT NULL CHECK (quantity > 0),"
  "  state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open','closed')),"
  "  created_at INTEGER NOT NULL,"
  "  closed_at INTEGER,"
  "  created_by TEXT NOT NULL,"
  "  closed_by TEXT,"
  "  station_id TEXT NOT NULL,"
  "  CHECK ((state = 'open') = (closed_at IS NULL))"
  ");"
  "CREATE INDEX batches_product ON batches (product);"
  "CREATE TABLE units ("
  "  id INTEGER PRIMARY KEY,"
  "  batch_id INTEGER NOT NULL REFERENCES batches (id),"
  "  port TEXT NOT NULL,"
  "  uid TEXT NOT NULL CHECK (" ST_DB_HEX ("uid") "),"
  "  model TEXT,"
  "  fw_version TEXT,"
  "  product_serial TEXT,"
  "  product_seq INTEGER,"
  "  state TEXT NOT NULL CHECK (state IN ('started','issuing','issued','done','failed')),"
  "  fail_step TEXT,"
  "  fail_reason TEXT,"
  "  fail_detail TEXT,"
  "  started_at INTEGER NOT NULL,"
  "  finished_at INTEGER,"
  "  operator TEXT NOT NULL"
  ");"
  "CREATE INDEX units_batch ON units (batch_id, state);"
  "CREATE INDEX units_uid ON units (uid);"
  "CREATE INDEX units_unfinished ON units (state) WHERE state IN ('started','issuing','issued');"
  "CREATE TABLE certificates ("
  "  id INTEGER PRIMARY KEY,"
  "  unit_id INTEGER NOT NULL UNIQUE REFERENCES units (id),"
  "  batch_id INTEGER NOT NULL REFERENCES batches (id),"
  "  uid TEXT NOT NULL CHECK (" ST_DB_HEX ("uid") "),"
  "  issuer TEXT NOT NULL CHECK (length(issuer) = 64 AND " ST_DB_HEX ("issuer") "),"
  "  serial TEXT NOT NULL CHECK (length(serial) % 2 = 0 AND " ST_DB_HEX ("serial") "),"
  "  pubkey_sha256 TEXT NOT NULL CHECK (length(pubkey_sha256) = 64 AND " ST_DB_HEX ("pubkey_sha256") "),"
  "  tbs BLOB NOT NULL CHECK (length(tbs) > 0),"
  "  der BLOB,"
  "  state TEXT NOT NULL CHECK (state IN ('issuing','issued','active','voided','unconfirmed')),"
  "  reserved_at INTEGER NOT NULL,"
  "  issued_at INTEGER,"
  "  void_reason TEXT,"
  "  voided_at INTEGER,"
  "  UNIQUE (issuer, serial),"
  "  UNIQUE (pubkey_sha256),"
  "  CHECK (state NOT IN ('issued','active') OR der IS NOT NULL)"
  ");"
  "CREATE INDEX certificates_batch ON certificates (batch_id, state);"
  /* one live certificate per uid, whatever the batch */
  "CREATE UNIQUE INDEX certificates_live_uid ON certificates (uid) WHERE state IN " ST_DB_LIVE ";"
  "CREATE TRIGGER certificates_der_immutable BEFORE UPDATE OF der ON certificates"
  "  WHEN OLD.der IS NOT NULL AND NEW.der IS NOT OLD.der"
  "  BEGIN SELECT RAISE (ABORT, 'a certificate''s der cannot be changed once it is set'); END;"
  "CREATE TRIGGER certificates_identity_immutable"
  "  BEFORE UPDATE OF unit_id, batch_id, uid, issuer, serial, pubkey_sha256, tbs ON certificates"
  "  WHEN NEW.unit_id IS NOT OLD.unit_id OR NEW.batch_id IS NOT OLD.batch_id"
  "    OR NEW.uid IS NOT OLD.uid OR NEW.issuer IS NOT OLD.issuer OR NEW.serial IS NOT OLD.serial"
  "    OR NEW.pubkey_sha256 IS NOT OLD.pubkey_sha256 OR NEW.tbs IS NOT OLD.tbs"
  "  BEGIN SELECT RAISE (ABORT, 'a certificate''s identity cannot be changed'); END;"
  "CREATE TRIGGER certificates_state_moves BEFORE UPDATE OF state ON certificates"
  "  WHEN NEW.state IS NOT OLD.state AND NOT ("
  "       (OLD.state = 'issuing' AND NEW.state IN ('issued','voided','unconfirmed'))"
  "    OR (OLD.state = 'issued' AND NEW.state IN ('active','voided','unconfirmed'))"
  "    OR (OLD.state = 'active' AND NEW.state IN ('voided','unconfirmed'))"
  "    OR (OLD.state = 'unconfirmed' AND NEW.state IN ('active','voided')))"
  "  BEGIN SELECT RAISE (ABORT, 'this certificate state change is not allowed'); END;"
  "CREATE TRIGGER certificates_no_delete BEFORE DELETE ON certificates"
  "  BEGIN SELECT RAISE (ABORT, 'certificates are never deleted: void them'); END;"
  "CREATE TABLE events ("
  "  id INTEGER PRIMARY KEY,"
  "  at INTEGER NOT NULL,"
  "  operator TEXT NOT NULL,"
  "  event TEXT NOT NULL CHECK (event <> ''),"
  "  payload TEXT"
  ");"
  "PRAGMA user_version = 1;",

  /* 2: operators and roles, the audit hash chain and its signed
   * checkpoints, the batches' allowance of voided certificates */
  "CREATE TABLE operators ("
  "  id INTEGER PRIMARY KEY,"
  "  name TEXT NOT NULL UNIQUE CHECK (name <> '' AND length(name) <= 64),"
  "  role TEXT NOT NULL CHECK (role IN ('operator','lead','qa','admin')),"
  "  pin_hash TEXT NOT NULL CHECK (pin_hash <> ''),"
  "  failed_attempts INTEGER NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0),"
  "  locked INTEGER NOT NULL DEFAULT 0 CHECK (locked IN (0, 1)),"
  "  created_at INTEGER NOT NULL,"
  "  updated_at INTEGER NOT NULL"
  ");"
  "CREATE TRIGGER operators_no_delete BEFORE DELETE ON operators"
  "  BEGIN SELECT RAISE (ABORT, 'operators are never deleted: lock them'); END;"
  /* hash = SHA-256 of the canonical encoding of (seq, at, operator, event,
   * payload, prev_hash): see st_db_audit_hash() and docs/audit.md */
  "CREATE TABLE audit ("
  "  seq INTEGER PRIMARY KEY CHECK (seq > 0),"
  "  at INTEGER NOT NULL,"
  "  operator TEXT NOT NULL,"
  "  event TEXT NOT NULL CHECK (event <> ''),"
  "  payload TEXT NOT NULL,"
  "  prev_hash TEXT NOT NULL CHECK (length(prev_hash) = 64),"
  "  hash TEXT NOT NULL CHECK (length(hash) = 64)"
  ");"
  "CREATE TRIGGER audit_append_only BEFORE UPDATE ON audit"
  "  BEGIN SELECT RAISE (ABORT, 'the audit log is append-only'); END;"
  "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
  "  BEGIN SELECT RAISE (ABORT, 'the audit log is append-only'); END;"
  "CREATE TABLE audit_checkpoints ("
  "  id INTEGER PRIMARY KEY,"
  "  seq INTEGER NOT NULL CHECK (seq > 0),"
  "  hash TEXT NOT NULL CHECK (length(hash) = 64),"
  "  at INTEGER NOT NULL,"
  "  reason TEXT NOT NULL,"
  "  signature BLOB NOT NULL CHECK (length(signature) > 0),"
  "  signer_cert BLOB NOT NULL CHECK (length(signer_cert) > 0)"
  ");"
  "CREATE INDEX audit_checkpoints_seq ON audit_checkpoints (seq);"
  "CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE ON audit_checkpoints"
  "  BEGIN SELECT RAISE (ABORT, 'audit checkpoints are append-only'); END;"
  "CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints"
  "  BEGIN SELECT RAISE (ABORT, 'audit checkpoints are append-only'); END;"
  "ALTER TABLE batches ADD COLUMN void_allowance INTEGER NOT NULL DEFAULT 0 CHECK (void_allowance >= 0);"
  "PRAGMA user_version = 2;",

  /* 3: each batch's count of live certificates, kept by triggers in the
   * transaction that changes a certificate, so that the quota check before
   * every signature is one row read instead of a scan of the batch */
  "ALTER TABLE batches ADD COLUMN live_certs INTEGER NOT NULL DEFAULT 0 CHECK (live_certs >= 0);"
  "UPDATE batches SET live_certs = (SELECT count(*) FROM certificates c"
  "  WHERE c.batch_id = batches.id AND c.state IN " ST_DB_LIVE ");"
  "CREATE TRIGGER certificates_live_insert AFTER INSERT ON certificates"
  "  WHEN NEW.state IN " ST_DB_LIVE
  "  BEGIN UPDATE batches SET live_certs = live_certs + 1 WHERE id = NEW.batch_id; END;"
  "CREATE TRIGGER certificates_live_update AFTER UPDATE OF state ON certificates"
  "  WHEN (OLD.state IN " ST_DB_LIVE ") <> (NEW.state IN " ST_DB_LIVE ")"
  "  BEGIN UPDATE batches SET live_certs = live_certs"
  "    + CASE WHEN NEW.state IN " ST_DB_LIVE " THEN 1 ELSE -1 END WHERE id = NEW.batch_id; END;"
  "PRAGMA user_version = 3;",

  /* 4: the same rules, written without lists of three or more constants.
   * SQLite evaluates `x IN (a, b, c)` by building a temporary b-tree of the
   * list each time a statement runs, and every unit's writes ran about a
   * dozen of them through these triggers and partial indexes. The CHECK
   * constraints keep the state column to its five values, so a live
   * certificate is one that is not voided and an unfinished unit one that
   * is neither done nor failed. */
  "DROP INDEX units_unfinished;"
  "CREATE INDEX units_unfinished ON units (state) WHERE state NOT IN ('done','failed');"
  "DROP INDEX certificates_live_uid;"
  "CREATE UNIQUE INDEX certificates_live_uid ON certificates (uid) WHERE state <> 'voided';"
  "DROP TRIGGER certificates_state_moves;"
  "CREATE TRIGGER certificates_state_moves BEFORE UPDATE OF state ON certificates"
  "  WHEN NEW.state IS NOT OLD.state AND NOT ("
  "       (OLD.state = 'issuing' AND NEW.state <> 'active')"        /* issued, voided, unconfirmed */
  "    OR (OLD.state = 'issued' AND NEW.state <> 'issuing')"        /* active, voided, unconfirmed */
  "    OR (OLD.state = 'active' AND NEW.state IN ('voided','unconfirmed'))"
  "    OR (OLD.state = 'unconfirmed' AND NEW.state IN ('active','voided')))"
  "  BEGIN SELECT RAISE (ABORT, 'this certificate state change is not allowed'); END;"
  "DROP TRIGGER certificates_live_insert;"
  "CREATE TRIGGER certificates_live_insert AFTER INSERT ON certificates"
  "  WHEN NEW.state <> 'voided'"
  "  BEGIN UPDATE batches SET live_certs = live_certs + 1 WHERE id = NEW.batch_id; END;"
  "DROP TRIGGER certificates_live_update;"
  "CREATE TRIGGER certificates_live_update AFTER UPDATE OF state ON certificates"
  "  WHEN (OLD.state = 'voided') <> (NEW.state = 'voided')"
  "  BEGIN UPDATE batches SET live_certs = live_certs"
  "    + CASE WHEN NEW.state <> 'voided' THEN 1 ELSE -1 END WHERE id = NEW.batch_id; END;"
  "PRAGMA user_version = 4;",

  /* 5: product serials that never repeat. The {seq} of a profile's serial
   * format is drawn from one sequence per product (the batches' product
   * name), whatever the batch: product_sequences.next is the next number to
   * draw (st_db_product_seq_draw), and every reservation moves it past the
   * number it records. product_serials registers each product serial given
   * to a unit, UNIQUE per product (its primary key), so that no two units
   * of a product can carry the same one, even if a sequence went wrong.
   * Both are WITHOUT ROWID, one b-tree each: every reservation writes a
   * page of each, and a unit's commits stay as small as they can (the
   * disk-full test counts on a unit's bytes).
   *
   * A database from before holds whatever earlier stations gave, and two
   * batches of one product made in the same month gave the same serials
   * (their {seq} restarted with every batch). Those cannot be made unique
   * after the fact: the register takes the first unit (lowest id) of each
   * (product, serial) and leaves the later ones out, so that its unique
   * key holds for every row from here on and no new serial can repeat an
   * old one; the duplicates stay in units, and `db check` ("product serials
   * unique per product") and the migration's warning name them. The
   * sequences start after the highest number each product used. */
  "CREATE TABLE product_sequences ("
  "  product TEXT PRIMARY KEY CHECK (product <> ''),"
  "  next INTEGER NOT NULL CHECK (next > 0)"
  ") WITHOUT ROWID;"
  "INSERT INTO product_sequences (product, next)"
  "  SELECT b.product, max (u.product_seq) + 1 FROM units u JOIN batches b ON b.id = u.batch_id"
  "  WHERE u.product_seq > 0 GROUP BY b.product;"
  "CREATE TABLE product_serials ("
  "  product TEXT NOT NULL CHECK (product <> ''),"
  "  serial TEXT NOT NULL CHECK (serial <> ''),"
  "  unit_id INTEGER NOT NULL REFERENCES units (id),"
  "  PRIMARY KEY (product, serial)"
  ") WITHOUT ROWID;"
  "INSERT OR IGNORE INTO product_serials (product, serial, unit_id)"
  "  SELECT b.product, u.product_serial, u.id FROM units u JOIN batches b ON b.id = u.batch_id"
  "  WHERE u.product_serial IS NOT NULL AND u.product_serial <> '' ORDER BY u.id;"
  "CREATE TRIGGER product_serials_append_only BEFORE UPDATE ON product_serials"
  "  BEGIN SELECT RAISE (ABORT, 'a product serial once given stays given'); END;"
  "CREATE TRIGGER product_serials_no_delete BEFORE DELETE ON product_serials"
  "  BEGIN SELECT RAISE (ABORT, 'a product serial once given stays given'); END;"
  "PRAGMA user_version = 5;",

  /* 6: disputed certificates. An unconfirmed certificate (it may be on its
   * device) is never voided because a device answering with its uid lacks
   * it: that device may be a clone. The certificate becomes 'disputed',
   * with why and when, until a lead decides: 'unconfirmed' again (keep:
   * the device that holds it completes its unit) or 'voided' (void: the
   * next device with the uid is provisioned anew). A disputed certificate
   * is live: it keeps its uid, and counts against the batch's quantity.
   *
   * The state's CHECK constraint is part of the table, so the table is
   * made anew as SQLite's documentation describes: the rows copied in id
   * order, the old table dropped (no other table refers to it), the new
   * one renamed, and its indexes and triggers made again as schema 4
   * left them (no lists of three or more constants), with the moves to
   * and from 'disputed' added: unconfirmed -> disputed -> unconfirmed or
   * voided, nothing else. */
  "CREATE TABLE certificates_v6 ("
  "  id INTEGER PRIMARY KEY,"
  "  unit_id INTEGER NOT NULL UNIQUE REFERENCES units (id),"
  "  batch_id INTEGER NOT NULL REFERENCES batches (id),"
  "  uid TEXT NOT NULL CHECK (" ST_DB_HEX ("uid") "),"
  "  issuer TEXT NOT NULL CHECK (length(issuer) = 64 AND " ST_DB_HEX ("issuer") "),"
  "  serial TEXT NOT NULL CHECK (length(serial) % 2 = 0 AND " ST_DB_HEX ("serial") "),"
  "  pubkey_sha256 TEXT NOT NULL CHECK (length(pubkey_sha256) = 64 AND " ST_DB_HEX ("pubkey_sha256") "),"
  "  tbs BLOB NOT NULL CHECK (length(tbs) > 0),"
  "  der BLOB,"
  "  state TEXT NOT NULL CHECK (state IN ('issuing','issued','active','voided','unconfirmed','disputed')),"
  "  reserved_at INTEGER NOT NULL,"
  "  issued_at INTEGER,"
  "  void_reason TEXT,"
  "  voided_at INTEGER,"
  "  dispute_reason TEXT,"
  "  disputed_at INTEGER,"
  "  UNIQUE (issuer, serial),"
  "  UNIQUE (pubkey_sha256),"
  "  CHECK ((state <> 'issued' AND state <> 'active' AND state <> 'disputed') OR der IS NOT NULL),"
  "  CHECK (state <> 'disputed' OR (dispute_reason IS NOT NULL AND disputed_at IS NOT NULL))"
  ");"
  "INSERT INTO certificates_v6 (id, unit_id, batch_id, uid, issuer, serial, pubkey_sha256, tbs, der,"
  "  state, reserved_at, issued_at, void_reason, voided_at)"
  "  SELECT id, unit_id, batch_id, uid, issuer, serial, pubkey_sha256, tbs, der,"
  "  state, reserved_at, issued_at, void_reason, voided_at FROM certificates ORDER BY id;"
  "DROP TABLE certificates;"
  "ALTER TABLE certificates_v6 RENAME TO certificates;"
  "CREATE INDEX certificates_batch ON certificates (batch_id, state);"
  "CREATE UNIQUE INDEX certificates_live_uid ON certificates (uid) WHERE state <> 'voided';"
  "CREATE TRIGGER certificates_der_immutable BEFORE UPDATE OF der ON certificates"
  "  WHEN OLD.der IS NOT NULL AND NEW.der IS NOT OLD.der"
  "  BEGIN SELECT RAISE (ABORT, 'a certificate''s der cannot be changed once it is set'); END;"
  "CREATE TRIGGER certificates_identity_immutable"
  "  BEFORE UPDATE OF unit_id, batch_id, uid, issuer, serial, pubkey_sha256, tbs ON certificates"
  "  WHEN NEW.unit_id IS NOT OLD.unit_id OR NEW.batch_id IS NOT OLD.batch_id"
  "    OR NEW.uid IS NOT OLD.uid OR NEW.issuer IS NOT OLD.issuer OR NEW.serial IS NOT OLD.serial"
  "    OR NEW.pubkey_sha256 IS NOT OLD.pubkey_sha256 OR NEW.tbs IS NOT OLD.tbs"
  "  BEGIN SELECT RAISE (ABORT, 'a certificate''s identity cannot be changed'); END;"
  "CREATE TRIGGER certificates_state_moves BEFORE UPDATE OF state ON certificates"
  "  WHEN NEW.state IS NOT OLD.state AND NOT ("
  "       (OLD.state = 'issuing' AND NEW.state <> 'active' AND NEW.state <> 'disputed')"  /* issued, voided, unconfirmed */
  "    OR (OLD.state = 'issued' AND NEW.state <> 'issuing' AND NEW.state <> 'disputed')"  /* active, voided, unconfirmed */
  "    OR (OLD.state = 'active' AND NEW.state IN ('voided','unconfirmed'))"
  "    OR (OLD.state = 'unconfirmed' AND NEW.state <> 'issuing' AND NEW.state <> 'issued')"  /* active, voided, disputed */
  "    OR (OLD.state = 'disputed' AND NEW.state IN ('unconfirmed','voided')))"
  "  BEGIN SELECT RAISE (ABORT, 'this certificate state change is not allowed'); END;"
  "CREATE TRIGGER certificates_no_delete BEFORE DELETE ON certificates"
  "  BEGIN SELECT RAISE (ABORT, 'certificates are never deleted: void them'); END;"
  "CREATE TRIGGER certificates_live_insert AFTER INSERT ON certificates"
  "  WHEN NEW.state <> 'voided'"
  "  BEGIN UPDATE batches SET live_certs = live_certs + 1 WHERE id = NEW.batch_id; END;"
  "CREATE TRIGGER certificates_live_update AFTER UPDATE OF state ON certificates"
  "  WHEN (OLD.state = 'voided') <> (NEW.state = 'voided')"
  "  BEGIN UPDATE batches SET live_certs = live_certs"
  "    + CASE WHEN NEW.state <> 'voided' THEN 1 ELSE -1 END WHERE id = NEW.batch_id; END;"
  "PRAGMA user_version = 6;",

  /* 7: login attempts being checked (st_db_operator_login_reserve) apart
   * from those checked: a service that stops while it checks a PIN leaves
   * them reserved, and the next one releases them
   * (st_db_operator_release_attempts) instead of leaving the operator
   * without an attempt and without a lock */
  "ALTER TABLE operators ADD COLUMN attempts_in_flight INTEGER NOT NULL DEFAULT 0"
  "  CHECK (attempts_in_flight >= 0);"
  "PRAGMA user_version = 7;",

  /* 8: revocation and CRLs (docs/revocation.md). A certificate that was
   * active (its device shipped) may be revoked by a lead: 'revoked', with
   * the RFC 5280 reason, the time and the lead. A revoked certificate is
   * not live: it frees its uid (a replacement device, or the same one
   * provisioned anew, gets a new certificate) and its place in the batch's
   * quantity, as a voided one does. active -> revoked is the only move in,
   * and none leads out.
   *
   * crls numbers every CRL the station signs. A number is taken (a row
   * with no der_sha256) before the HSM signs, and the row completed after:
   * an issue that fails after taking its number leaves the row as it is,
   * so a number is never given twice, and the next issue takes the next
   * one (max + 1 over every row, rows never deleted). */
  "CREATE TABLE certificates_v8 ("
  "  id INTEGER PRIMARY KEY,"
  "  unit_id INTEGER NOT NULL UNIQUE REFERENCES units (id),"
  "  batch_id INTEGER NOT NULL REFERENCES batches (id),"
  "  uid TEXT NOT NULL CHECK (" ST_DB_HEX ("uid") "),"
  "  issuer TEXT NOT NULL CHECK (length(issuer) = 64 AND " ST_DB_HEX ("issuer") "),"
  "  serial TEXT NOT NULL CHECK (length(serial) % 2 = 0 AND " ST_DB_HEX ("serial") "),"
  "  pubkey_sha256 TEXT NOT NULL CHECK (length(pubkey_sha256) = 64 AND " ST_DB_HEX ("pubkey_sha256") "),"
  "  tbs BLOB NOT NULL CHECK (length(tbs) > 0),"
  "  der BLOB,"
  "  state TEXT NOT NULL CHECK (state IN ('issuing','issued','active','voided','unconfirmed','disputed',"
  "    'revoked')),"
  "  reserved_at INTEGER NOT NULL,"
  "  issued_at INTEGER,"
  "  void_reason TEXT,"
  "  voided_at INTEGER,"
  "  dispute_reason TEXT,"
  "  disputed_at INTEGER,"
  "  revoke_reason TEXT,"
  "  revoked_at INTEGER,"
  "  revoked_by TEXT,"
  "  UNIQUE (issuer, serial),"
  "  UNIQUE (pubkey_sha256),"
  "  CHECK ((state <> 'issued' AND state <> 'active' AND state <> 'disputed' AND state <> 'revoked')"
  "    OR der IS NOT NULL),"
  "  CHECK (state <> 'disputed' OR (dispute_reason IS NOT NULL AND disputed_at IS NOT NULL)),"
  "  CHECK (state <> 'revoked' OR (revoke_reason IS NOT NULL AND revoked_at IS NOT NULL"
  "    AND revoked_by IS NOT NULL))"
  ");"
  "INSERT INTO certificates_v8 (id, unit_id, batch_id, uid, issuer, serial, pubkey_sha256, tbs, der,"
  "  state, reserved_at, issued_at, void_reason, voided_at, dispute_reason, disputed_at)"
  "  SELECT id, unit_id, batch_id, uid, issuer, serial, pubkey_sha256, tbs, der,"
  "  state, reserved_at, issued_at, void_reason, voided_at, dispute_reason, disputed_at"
  "  FROM certificates ORDER BY id;"
  "DROP TABLE certificates;"
  "ALTER TABLE certificates_v8 RENAME TO certificates;"
  "CREATE INDEX certificates_batch ON certificates (batch_id, state);"
  "CREATE UNIQUE INDEX certificates_live_uid ON certificates (uid)"
  "  WHERE state NOT IN ('voided','revoked');"
  "CREATE TRIGGER certificates_der_immutable BEFORE UPDATE OF der ON certificates"
  "  WHEN OLD.der IS NOT NULL AND NEW.der IS NOT OLD.der"
  "  BEGIN SELECT RAISE (ABORT, 'a certificate''s der cannot be changed once it is set'); END;"
  "CREATE TRIGGER certificates_identity_immutable"
  "  BEFORE UPDATE OF unit_id, batch_id, uid, issuer, serial, pubkey_sha256, tbs ON certificates"
  "  WHEN NEW.unit_id IS NOT OLD.unit_id OR NEW.batch_id IS NOT OLD.batch_id"
  "    OR NEW.uid IS NOT OLD.uid OR NEW.issuer IS NOT OLD.issuer OR NEW.serial IS NOT OLD.serial"
  "    OR NEW.pubkey_sha256 IS NOT OLD.pubkey_sha256 OR NEW.tbs IS NOT OLD.tbs"
  "  BEGIN SELECT RAISE (ABORT, 'a certificate''s identity cannot be changed'); END;"
  "CREATE TRIGGER certificates_state_moves BEFORE UPDATE OF state ON certificates"
  "  WHEN NEW.state IS NOT OLD.state AND NOT ("
  "       (OLD.state = 'issuing' AND NEW.state IN ('issued','voided','unconfirmed'))"
  "    OR (OLD.state = 'issued' AND NEW.state IN ('active','voided','unconfirmed'))"
  "    OR (OLD.state = 'active' AND NEW.state IN ('voided','unconfirmed','revoked'))"
  "    OR (OLD.state = 'unconfirmed' AND NEW.state IN ('active','voided','disputed'))"
  "    OR (OLD.state = 'disputed' AND NEW.state IN ('unconfirmed','voided')))"
  "  BEGIN SELECT RAISE (ABORT, 'this certificate state change is not allowed'); END;"
  "CREATE TRIGGER certificates_no_delete BEFORE DELETE ON certificates"
  "  BEGIN SELECT RAISE (ABORT, 'certificates are never deleted: void them'); END;"
  "CREATE TRIGGER certificates_live_insert AFTER INSERT ON certificates"
  "  WHEN NEW.state NOT IN ('voided','revoked')"
  "  BEGIN UPDATE batches SET live_certs = live_certs + 1 WHERE id = NEW.batch_id; END;"
  "CREATE TRIGGER certificates_live_update AFTER UPDATE OF state ON certificates"
  "  WHEN (OLD.state NOT IN ('voided','revoked')) <> (NEW.state NOT IN ('voided','revoked'))"
  "  BEGIN UPDATE batches SET live_certs = live_certs"
  "    + CASE WHEN NEW.state NOT IN ('voided','revoked') THEN 1 ELSE -1 END WHERE id = NEW.batch_id; END;"
  "CREATE TABLE crls ("
  "  number INTEGER PRIMARY KEY CHECK (number >= 1),"
  "  this_update INTEGER NOT NULL,"
  "  next_update INTEGER NOT NULL CHECK (next_update > this_update),"
  "  issued_by TEXT NOT NULL,"
  "  entries INTEGER CHECK (entries IS NULL OR entries >= 0),"
  "  der_sha256 TEXT CHECK (der_sha256 IS NULL OR (length(der_sha256) = 64 AND " ST_DB_HEX ("der_sha256") ")),"
  "  CHECK ((entries IS NULL) = (der_sha256 IS NULL))"
  ");"
  "CREATE TRIGGER crls_complete_once BEFORE UPDATE ON crls"
  "  WHEN OLD.der_sha256 IS NOT NULL OR NEW.number IS NOT OLD.number"
  "    OR NEW.this_update IS NOT OLD.this_update OR NEW.next_update IS NOT OLD.next_update"
  "    OR NEW.issued_by IS NOT OLD.issued_by"
  "  BEGIN SELECT RAISE (ABORT, 'a CRL''s record is written once: its number is never reused'); END;"
  "CREATE TRIGGER crls_no_delete BEFORE DELETE ON crls"
  "  BEGIN SELECT RAISE (ABORT, 'a CRL number once taken stays taken'); END;"
  "PRAGMA user_version = 8;",

  /* 9: each batch's units per state and certificates per state, kept by
   * triggers in the transaction that changes a unit or a certificate, so
   * that `batch show` and `batch list` read one row per batch instead of
   * counting a million units (issue 16). The counts are filled here from
   * the rows of earlier schemas; `db check` ("batch counts agree with the
   * units and certificates") compares them with a count of the rows. A
   * unit's batch or state that changes moves it from one count to the
   * other (a unit's batch is not meant to change, but a count that
   * followed only the state would go wrong if it did); a deleted unit
   * leaves its count. Certificates are never deleted and never change
   * batch (certificates_no_delete, certificates_identity_immutable).
   * live_certs (schema 3) stays as it is: the quota check reads it.
   * units_batch_order lets a page of a batch's units (BatchUnitsPage) be
   * one range of an index, in id order, whatever the batches around it. */
  "ALTER TABLE batches ADD COLUMN units_started INTEGER NOT NULL DEFAULT 0 CHECK (units_started >= 0);"
  "ALTER TABLE batches ADD COLUMN units_issuing INTEGER NOT NULL DEFAULT 0 CHECK (units_issuing >= 0);"
  "ALTER TABLE batches ADD COLUMN units_issued INTEGER NOT NULL DEFAULT 0 CHECK (units_issued >= 0);"
  "ALTER TABLE batches ADD COLUMN units_done INTEGER NOT NULL DEFAULT 0 CHECK (units_done >= 0);"
  "ALTER TABLE batches ADD COLUMN units_failed INTEGER NOT NULL DEFAULT 0 CHECK (units_failed >= 0);"
  "ALTER TABLE batches ADD COLUMN certs_issuing INTEGER NOT NULL DEFAULT 0 CHECK (certs_issuing >= 0);"
  "ALTER TABLE batches ADD COLUMN certs_issued INTEGER NOT NULL DEFAULT 0 CHECK (certs_issued >= 0);"
  "ALTER TABLE batches ADD COLUMN certs_active INTEGER NOT NULL DEFAULT 0 CHECK (certs_active >= 0);"
  "ALTER TABLE batches ADD COLUMN certs_voided INTEGER NOT NULL DEFAULT 0 CHECK (certs_voided >= 0);"
  "ALTER TABLE batches ADD COLUMN certs_unconfirmed INTEGER NOT NULL DEFAULT 0 CHECK (certs_unconfirmed >= 0);"
  "ALTER TABLE batches ADD COLUMN certs_disputed INTEGER NOT NULL DEFAULT 0 CHECK (certs_disputed >= 0);"
  "ALTER TABLE batches ADD COLUMN certs_revoked INTEGER NOT NULL DEFAULT 0 CHECK (certs_revoked >= 0);"
  "UPDATE batches SET"
  "  units_started = (SELECT count(*) FROM units u WHERE u.batch_id = batches.id AND u.state = 'started'),"
  "  units_issuing = (SELECT count(*) FROM units u WHERE u.batch_id = batches.id AND u.state = 'issuing'),"
  "  units_issued = (SELECT count(*) FROM units u WHERE u.batch_id = batches.id AND u.state = 'issued'),"
  "  units_done = (SELECT count(*) FROM units u WHERE u.batch_id = batches.id AND u.state = 'done'),"
  "  units_failed = (SELECT count(*) FROM units u WHERE u.batch_id = batches.id AND u.state = 'failed'),"
  "  certs_issuing = (SELECT count(*) FROM certificates c WHERE c.batch_id = batches.id AND c.state = 'issuing'),"
  "  certs_issued = (SELECT count(*) FROM certificates c WHERE c.batch_id = batches.id AND c.state = 'issued'),"
  "  certs_active = (SELECT count(*) FROM certificates c WHERE c.batch_id = batches.id AND c.state = 'active'),"
  "  certs_voided = (SELECT count(*) FROM certificates c WHERE c.batch_id = batches.id AND c.state = 'voided'),"
  "  certs_unconfirmed = (SELECT count(*) FROM certificates c WHERE c.batch_id = batches.id AND c.state = 'unconfirmed'),"
  "  certs_disputed = (SELECT count(*) FROM certificates c WHERE c.batch_id = batches.id AND c.state = 'disputed'),"
  "  certs_revoked = (SELECT count(*) FROM certificates c WHERE c.batch_id = batches.id AND c.state = 'revoked');"
  "CREATE TRIGGER units_count_insert AFTER INSERT ON units"
  "  BEGIN UPDATE batches SET"
  "    units_started = units_started + (NEW.state = 'started'),"
  "    units_issuing = units_issuing + (NEW.state = 'issuing'),"
  "    units_issued = units_issued + (NEW.state = 'issued'),"
  "    units_done = units_done + (NEW.state = 'done'),"
  "    units_failed = units_failed + (NEW.state = 'failed')"
  "  WHERE id = NEW.batch_id; END;"
  "CREATE TRIGGER units_count_update AFTER UPDATE OF state, batch_id ON units"
  "  WHEN NEW.state IS NOT OLD.state OR NEW.batch_id IS NOT OLD.batch_id"
  "  BEGIN UPDATE batches SET"
  "    units_started = units_started - (OLD.state = 'started'),"
  "    units_issuing = units_issuing - (OLD.state = 'issuing'),"
  "    units_issued = units_issued - (OLD.state = 'issued'),"
  "    units_done = units_done - (OLD.state = 'done'),"
  "    units_failed = units_failed - (OLD.state = 'failed')"
  "  WHERE id = OLD.batch_id;"
  "  UPDATE batches SET"
  "    units_started = units_started + (NEW.state = 'started'),"
  "    units_issuing = units_issuing + (NEW.state = 'issuing'),"
  "    units_issued = units_issued + (NEW.state = 'issued'),"
  "    units_done = units_done + (NEW.state = 'done'),"
  "    units_failed = units_failed + (NEW.state = 'failed')"
  "  WHERE id = NEW.batch_id; END;"
  "CREATE TRIGGER units_count_delete AFTER DELETE ON units"
  "  BEGIN UPDATE batches SET"
  "    units_started = units_started - (OLD.state = 'started'),"
  "    units_issuing = units_issuing - (OLD.state = 'issuing'),"
  "    units_issued = units_issued - (OLD.state = 'issued'),"
  "    units_done = units_done - (OLD.state = 'done'),"
  "    units_failed = units_failed - (OLD.state = 'failed')"
  "  WHERE id = OLD.batch_id; END;"
  "CREATE TRIGGER certificates_count_insert AFTER INSERT ON certificates"
  "  BEGIN UPDATE batches SET"
  "    certs_issuing = certs_issuing + (NEW.state = 'issuing'),"
  "    certs_issued = certs_issued + (NEW.state = 'issued'),"
  "    certs_active = certs_active + (NEW.state = 'active'),"
  "    certs_voided = certs_voided + (NEW.state = 'voided'),"
  "    certs_unconfirmed = certs_unconfirmed + (NEW.state = 'unconfirmed'),"
  "    certs_disputed = certs_disputed + (NEW.state = 'disputed'),"
  "    certs_revoked = certs_revoked + (NEW.state = 'revoked')"
  "  WHERE id = NEW.batch_id; END;"
  "CREATE TRIGGER certificates_count_update AFTER UPDATE OF state ON certificates"
  "  WHEN NEW.state IS NOT OLD.state"
  "  BEGIN UPDATE batches SET"
  "    certs_issuing = certs_issuing + (NEW.state = 'issuing') - (OLD.state = 'issuing'),"
  "    certs_issued = certs_issued + (NEW.state = 'issued') - (OLD.state = 'issued'),"
  "    certs_active = certs_active + (NEW.state = 'active') - (OLD.state = 'active'),"
  "    certs_voided = certs_voided + (NEW.state = 'voided') - (OLD.state = 'voided'),"
  "    certs_unconfirmed = certs_unconfirmed + (NEW.state = 'unconfirmed') - (OLD.state = 'unconfirmed'),"
  "    certs_disputed = certs_disputed + (NEW.state = 'disputed') - (OLD.state = 'disputed'),"
  "    certs_revoked = certs_revoked + (NEW.state = 'revoked') - (OLD.state = 'revoked')"
  "  WHERE id = NEW.batch_id; END;"
  "CREATE INDEX units_batch_order ON units (batch_id, id);"
  "PRAGMA user_version = 9;",

  /* 10: the Matter factory data of a unit (issue 18; docs/matter.md,
   * "Factory data per unit"), written in the transaction that reserves the
   * unit's certificate, before anything is signed or written to the
   * device, and never changed afterwards. counter is the batch's
   * sequential discriminator counter the discriminator came from (NULL for
   * a random one): unique per batch, so a value is not handed out twice
   * before the range wraps. The audit entry unit-matter carries the
   * record's digest (st_db_unit_matter_digest), which `audit verify` and
   * `db check` compare with the row. */
  "CREATE TABLE unit_matter ("
  "  unit_id INTEGER PRIMARY KEY REFERENCES units (id),"
  "  batch_id INTEGER NOT NULL REFERENCES batches (id),"
  "  vendor_id INTEGER NOT NULL CHECK (vendor_id BETWEEN 0 AND 65535),"
  "  product_id INTEGER NOT NULL CHECK (product_id BETWEEN 1 AND 65535),"
  "  discriminator INTEGER NOT NULL CHECK (discriminator BETWEEN 0 AND 4095),"
  "  counter INTEGER CHECK (counter IS NULL OR counter >= 0),"
  "  passcode INTEGER NOT NULL CHECK (passcode BETWEEN 1 AND 99999998),"
  "  iterations INTEGER NOT NULL CHECK (iterations BETWEEN 1000 AND 100000),"
  "  salt BLOB NOT NULL CHECK (typeof (salt) = 'blob' AND length (salt) BETWEEN 16 AND 32),"
  "  verifier BLOB NOT NULL CHECK (typeof (verifier) = 'blob' AND length (verifier) = 97),"
  "  unique_id BLOB CHECK (unique_id IS NULL OR (typeof (unique_id) = 'blob'"
  "    AND length (unique_id) BETWEEN 16 AND 32)),"
  "  flow INTEGER NOT NULL CHECK (flow IN (0, 1, 2)),"
  "  discovery INTEGER NOT NULL CHECK (discovery BETWEEN 1 AND 7),"
  "  qr_text TEXT NOT NULL CHECK (length (qr_text) = 22 AND qr_text GLOB 'MT:*'),"
  "  manual_code TEXT NOT NULL CHECK (length (manual_code) IN (11, 21)"
  "    AND manual_code NOT GLOB '*[^0-9]*'),"
  "  created_at INTEGER NOT NULL"
  ");"
  "CREATE UNIQUE INDEX unit_matter_counter ON unit_matter (batch_id, counter)"
  "  WHERE counter IS NOT NULL;"
  "CREATE TRIGGER unit_matter_immutable BEFORE UPDATE ON unit_matter"
  "  BEGIN SELECT RAISE (ABORT, 'a unit''s Matter record is written once, before its certificate is signed'); END;"
  "CREATE TRIGGER unit_matter_no_delete BEFORE DELETE ON unit_matter"
  "  BEGIN SELECT RAISE (ABORT, 'a unit''s Matter record is kept: its label and device carry it'); END;"
  "PRAGMA user_version = 10;",
};

gint
st_db_schema_version (void)
{
  return (gint) G_N_ELEMENTS (migrations);
}

const char *
st_db_schema_migration (gint to_version)
{
  g_return_val_if_fail (to_version >= 1 && to_version <= st_db_schema_version (), NULL);
  return migrations[to_version - 1];
}
