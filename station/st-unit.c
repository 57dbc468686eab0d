/* The unit pipeline (docs/architecture.md, The unit pipeline):
 *
 *   identify -> key (KEYGEN + CSR check | station keygen + PUT_KEY)
 *   -> draw the product's {seq}
 *   -> reserve serial + record the to-be-signed certificate   (ISSUING)
 *      and the product serial (unique per product)
 *   -> sign in the HSM, verify, lint                          
 *   -> record the certificate                                  (ISSUED)
 *   -> WRITE slot 1, slot 2 (a Matter unit: slots 3 and 4, or the
 *      backend's blob for a passive device) -> proof of possession
 *   -> READ back, compare
 *   -> COMMIT -> HELLO sees the committed state -> record      (DONE)
 *
 * Every database call blocks until its COMMIT returned OK; nothing reaches the
 * device (the certificate) or the operator (PASSED) before. A failure records
 * FAILED(step, reason): the certificate is voided when it is known not to be
 * on the device (COMMIT never sent, or refused by the device), else it stays
 * unconfirmed until the device is seen again. An unconfirmed certificate is
 * never voided on the word of a device that has not proved it holds its key:
 * that device may be a clone of the one that holds it. The certificate
 * becomes disputed and a lead decides (st_db_cert_resolve_dispute). */
#include "st-unit.h"

#include <glib/gi18n.h>
#include <inttypes.h>
#include <openssl/rand.h>
#include <signal.h>
#include <string.h>

#include "st-error.h"
#include "st-hsm.h"
#include "st-issue.h"
#include "st-line-private.h"
#include "st-matter-data.h"
#include "st-matter-factory.h"
#include "st-ossl.h"
#include "st-pop.h"
#include "st-text.h"
#include "st-util.h"
#include "st-verify.h"

#define ST_SERIAL_ATTEMPTS 3

/* Test fault points: STATION_CRASH_AT=<point> kills the process there with
 * SIGKILL, as a power cut would (the crash-recovery tests use it). */
static void
st_fault_point (const char *point)
{
  static gsize once = 0;
  static const char *crash_at = NULL;
  if (g_once_init_enter (&once))
    {
      crash_at = g_getenv ("STATION_CRASH_AT");
      g_once_init_leave (&once, 1);
    }
  if (crash_at != NULL && g_strcmp0 (crash_at, point) == 0)
    {
      g_printerr ("station: fault point %s reached: killing myself\n", point);
      raise (SIGKILL);
    }
}

typedef struct {
  StLine *line;
  StBackend *backend;
  const StDeviceInfo *info;
  StUnitResult *result;
  gint64 unit_id;
  gboolean device_touched;   /* KEYGEN, PUT_KEY or WRITE was sent */
  gboolean commit_sent;
  gint64 started;
  /* Resuming a unit an earlier run recorded as failed with its certificate
   * unconfirmed: its outcome goes to the certificate (st_db_cert_set_state),
   * the unit record stays failed unless the certificate becomes active. */
  gboolean reopened;
  gint64 cert_id;
  /* A resumed unit's device proved it holds the key of the certificate on
   * record: only then may what it says void that certificate. */
  gboolean proved;
  /* A Matter profile's factory data of this unit (docs/matter.md, "Factory
   * data per unit"): made at the reserve step and recorded with the
   * reservation, or read back from the record for a resumed unit; for the
   * delivery to the device. Wiped and freed when the unit ends. */
  StMatterUnitData *matter;
} StUnit;

/* The stored names of the steps (st-unit.h): never change one. */
static const char *const st_unit_step_names[ST_UNIT_STEP_COUNT] = {
  [ST_UNIT_STEP_IDENTIFY] = "identify",
  [ST_UNIT_STEP_FIRMWARE] = "firmware",
  [ST_UNIT_STEP_KEYGEN] = "keygen",
  [ST_UNIT_STEP_CSR] = "csr",
  [ST_UNIT_STEP_PUT_KEY] = "put-key",
  [ST_UNIT_STEP_RESERVE] = "reserve",
  [ST_UNIT_STEP_ISSUE] = "issue",
  [ST_UNIT_STEP_SIGN] = "sign",
  [ST_UNIT_STEP_WRITE] = "write",
  [ST_UNIT_STEP_WRITE_CHAIN] = "write-chain",
  [ST_UNIT_STEP_PROOF_OF_POSSESSION] = "proof-of-possession",
  [ST_UNIT_STEP_READ_BACK] = "read-back",
  [ST_UNIT_STEP_COMMIT] = "commit",
  [ST_UNIT_STEP_CONFIRM] = "confirm",
  [ST_UNIT_STEP_DONE] = "done",
  [ST_UNIT_STEP_RESUME] = "resume",
  [ST_UNIT_STEP_INTERRUPTED] = "interrupted",
  [ST_UNIT_STEP_WRITE_MATTER] = "write-matter",
};

const char *
st_unit_step_to_string (StUnitStep step)
{
  g_return_val_if_fail ((guint) step < G_N_ELEMENTS (st_unit_step_names), NULL);
  return st_unit_step_names[step];
}

static void
st_unit_step (StUnit *u, StUnitStep step)
{
  if (u->line->step_func != NULL)
    {
      StUnitProgress progress = {
        .port = u->backend->port,
        .step = st_unit_step_to_string (step),
        .uid_hex = u->result->uid_hex,
        .seconds = (gdouble) (g_get_monotonic_time () - u->started) / G_USEC_PER_SEC,
      };
      u->line->step_func (&progress, u->line->step_data);
    }
}

static void
st_unit_set_outcome (StUnit *u, StUnitOutcome outcome, StUnitStep step,
                     const char *reason, const GError *cause)
{
  StUnitResult *r = u->result;
  r->outcome = outcome;
  g_free (r->step);
  r->step = g_strdup (st_unit_step_to_string (step));
  g_free (r->reason);
  /* the operator reads the reason in the station's language; the record
   * (the database, the manifest) keeps it as given, in English */
  r->reason = g_strdup (reason != NULL && *reason != '\0' ? _(reason) : reason);
  g_free (r->detail);
  /* The protocol detail may quote the device (st-text.h): it reaches the
   * operator's screen, the log and the record escaped. */
  r->detail = cause != NULL ? st_text_escape (cause->message, -1, ST_TEXT_ONE_LINE) : NULL;
}

static StDbUnitNew
st_unit_new_record (StUnit *u)
{
  return (StDbUnitNew) {
    .batch_id = u->line->batch->id,
    .port = u->backend->port,
    .uid_hex = u->result->uid_hex,
    .model = u->info->model,
    .fw_version = u->info->fw_version,
    .operator_name = u->line->operator_name,
  };
}

/* A resumed unit's device that has not proved it holds the key of the
 * unconfirmed certificate on record failed @step (@what: what happened).
 * That certificate may be committed on the genuine device, and this one may
 * be a clone answering with its uid: the certificate is not voided, it
 * becomes disputed, and the device is refused with what the operator does.
 * FALSE only when the database refused the record (the line stops). */
static gboolean
st_unit_dispute (StUnit *u, StUnitStep step, const char *what, const GError *cause,
                 GError **error)
{
  const char *uid = u->result->uid_hex;
#define ST_UNIT_DISPUTED N_("%s: its certificate %s (unit %" PRId64 ") was " \
                            "NOT voided and the unit is disputed; set this device aside " \
                            "and ask a lead to decide (station unit resolve %s --keep " \
                            "or --void)")
  /* recorded in English, shown in the station's language */
  g_autofree gchar *reason = g_strdup_printf (ST_UNIT_DISPUTED, what, u->result->cert_serial, u->unit_id, uid);
  g_autofree gchar *shown = g_strdup_printf (_(ST_UNIT_DISPUTED), _(what), u->result->cert_serial,
                                             u->unit_id, uid);
  st_unit_set_outcome (u, ST_UNIT_REFUSED, step, reason, cause);
  g_free (u->result->reason);
  u->result->reason = g_strdup (shown);
  g_message ("%s: uid %s: %s%s%s", u->backend->port, uid, reason, cause != NULL ? " — " : "",
             cause != NULL ? cause->message : "");
  if (u->line->notice_func != NULL)
    u->line->notice_func (u->backend->port, uid, shown, u->line->step_data);
  /* what the device holds uncommitted is discarded; it also ends its unit */
  if (!u->commit_sent)
    {
      g_autoptr(GError) abort_error = NULL;
      if (!st_backend_abort (u->backend, &abort_error))
        g_debug ("%s: ABORT after the dispute: %s", u->backend->port, abort_error->message);
    }
  if (!st_db_cert_dispute (u->line->db, u->cert_id, st_unit_step_to_string (step), reason,
                           cause != NULL ? cause->message : NULL, u->backend->port,
                           u->line->operator_name, error))
    {
      st_line_stop (u->line, *error);
      return FALSE;
    }
  return TRUE;
}

/* Records the failure (or refusal) of the unit. Returns FALSE only when the
 * database refused the record: then the line stops. */
static gboolean
st_unit_fail (StUnit *u, StUnitOutcome outcome, StUnitStep step,
              const char *reason, const GError *cause,
              StDbCertDisposition disposition, GError **error)
{
  /* a resumed unit's certificate is voided only on the word of a device
   * that proved it holds its key */
  if (disposition == ST_DB_CERT_VOID && u->result->resumed && !u->proved && u->cert_id > 0)
    return st_unit_dispute (u, step, reason, cause, error);
  st_unit_set_outcome (u, outcome, step, reason, cause);
  g_info ("%s: unit %s %s at %s: %s%s%s", u->backend->port,
             u->result->uid_hex, st_unit_outcome_to_string (outcome), st_unit_step_to_string (step),
             reason, u->result->detail != NULL ? " — " : "", u->result->detail != NULL ? u->result->detail : "");

  /* Discard whatever the device holds uncommitted; it also tells the device
   * (and the simulator) that this unit is over. Best effort: the device may
   * be gone. Not after a COMMIT whose outcome is unknown. */
  if (!(u->commit_sent && disposition == ST_DB_CERT_UNCONFIRMED))
    {
      g_autoptr(GError) abort_error = NULL;
      if (!st_backend_abort (u->backend, &abort_error))
        g_debug ("%s: ABORT after failure: %s", u->backend->port, abort_error->message);
    }

  g_autofree gchar *detail = g_strdup (u->result->detail);
  if (u->unit_id <= 0)
    {
      /* Nothing recorded yet: the unit and its failure in one write. */
      StDbUnitNew unit = st_unit_new_record (u);
      u->unit_id = st_db_unit_add_failed (u->line->db, &unit, st_unit_step_to_string (step),
                                           reason, detail, error);
      u->result->unit_id = u->unit_id;
      if (u->unit_id <= 0)
        {
          st_line_stop (u->line, *error);
          return FALSE;
        }
      return TRUE;
    }
  if (u->reopened)
    {
      /* Its failure is on record already; only a certificate known not to
       * be on the device changes (unconfirmed -> voided). */
      if (disposition == ST_DB_CERT_VOID &&
          !st_db_cert_set_state (u->line->db, u->cert_id, "voided", reason, error))
        {
          g_prefix_error (error, _("cannot void the certificate of unit %s: "), u->result->uid_hex);
          st_line_stop (u->line, *error);
          return FALSE;
        }
      return TRUE;
    }
  if (!st_db_unit_fail (u->line->db, u->unit_id, st_unit_step_to_string (step), reason, detail,
                        disposition, error))
    {
      g_prefix_error (error, _("cannot record the failure of unit %s: "), u->result->uid_hex);
      st_line_stop (u->line, *error);
      return FALSE;
    }
  return TRUE;
}

/* A database write failed in the middle of a unit: stop the line. */
static gboolean
st_unit_db_failed (StUnit *u, GError **error, const char *what)
{
  g_prefix_error (error, _("%s: cannot record %s for unit %s: "), u->backend->port,
                  what, u->result->uid_hex);
  st_line_stop (u->line, *error);
  /* The device gets no acknowledgement: discard what it holds uncommitted. */
  if (!u->commit_sent)
    st_backend_abort (u->backend, NULL);
  return FALSE;
}

/* 128 random bits for a certificate serial: the HSM's generator and
 * OpenSSL's private DRBG, XORed, so that either alone suffices. */
gboolean
st_draw_serial (StCa *ca, StSerial *serial, GError **error)
{
  guint8 a[16], b[16];
  if (!st_hsm_random (ca->hsm, a, sizeof a, error))
    {
      g_prefix_error (error, _("cannot draw a serial number from the HSM: "));
      return FALSE;
    }
  if (RAND_priv_bytes (b, sizeof b) != 1)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "RAND_priv_bytes");
      return FALSE;
    }
  for (gsize i = 0; i < sizeof a; i++)
    a[i] ^= b[i];
  gboolean ok = st_serial_from_random (a, serial);
  st_memwipe (a, sizeof a);
  st_memwipe (b, sizeof b);
  if (!ok)
    g_set_error_literal (error, ST_ERROR, ST_ERROR_INTERNAL, _("cannot make a serial number"));
  return ok;
}

static gboolean
st_bytes_equal0 (GBytes *a, GBytes *b)
{
  return a != NULL && b != NULL && g_bytes_equal (a, b);
}

/* Asks the device to sign a fresh challenge and checks the signature with
 * the certificate's key: @key when the caller holds it, else read from
 * @cert (one of the two is given). FALSE
 * with the reason when it does not prove possession; @error (not
 * @dev_error) only when the station itself failed. */
static gboolean
st_unit_prove (StUnit *u, X509 *cert, EVP_PKEY *key, GBytes **sig_out, gboolean *proved,
               GError **dev_error, GError **error)
{
  g_return_val_if_fail (cert != NULL || key != NULL, FALSE);
  guint8 challenge[32];
  *proved = FALSE;
  if (RAND_bytes (challenge, sizeof challenge) != 1)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "RAND_bytes");
      return FALSE;
    }
  g_autoptr(GBytes) sig = st_backend_sign (u->backend, challenge, dev_error);
  if (sig != NULL)
    *proved = key != NULL ? st_pop_verify_key (key, challenge, sig, dev_error)
                          : st_pop_verify (cert, challenge, sig, dev_error);
  if (sig_out != NULL)
    *sig_out = g_steal_pointer (&sig);
  return TRUE;
}

/* DONE: the unit's certificate becomes active. A reopened unit (failed,
 * its certificate unconfirmed) is done through its certificate. */
static gboolean
st_unit_record_done (StUnit *u, GError **error)
{
  if (u->reopened)
    return st_db_cert_set_state (u->line->db, u->cert_id, "active",
                                 "its device was seen again and holds it: the interrupted unit is done", error);
  return st_db_unit_done (u->line->db, u->unit_id, error);
}

/* The commissioning data record of a Matter unit (slot 4, blob entry
 * 0x07; station/st-matter-data.h): the fields of its factory data, never
 * the passcode. */
static GBytes *
st_unit_matter_commissioning (const StMatterUnitData *d, GError **error)
{
  StMatterCommissioning c = { 0 };
  G_STATIC_ASSERT (sizeof c.verifier == sizeof d->verifier);
  G_STATIC_ASSERT (sizeof c.salt >= sizeof d->salt);
  G_STATIC_ASSERT (sizeof c.rdid_unique_id >= sizeof d->unique_id);
  c.vendor_id = d->vendor_id;
  c.product_id = d->product_id;
  c.discriminator = d->discriminator;
  c.iterations = d->iterations;
  memcpy (c.salt, d->salt, d->salt_len);
  c.salt_len = d->salt_len;
  memcpy (c.verifier, d->verifier, sizeof c.verifier);
  memcpy (c.rdid_unique_id, d->unique_id, d->unique_id_len);
  c.rdid_unique_id_len = d->unique_id_len;
  GBytes *record = st_matter_commissioning_encode (&c, error);
  st_memwipe (&c, sizeof c);
  return record;
}

/* Reads slots 3 and 4 of a Matter unit's device and compares them with
 * the line's Certification Declaration and @record. FALSE with @dev_error
 * set and *@reason the operator's reason when they differ or cannot be
 * read. */
static gboolean
st_unit_matter_read_back (StUnit *u, GBytes *record, const char **reason, GError **dev_error)
{
  g_autoptr(GBytes) back_cd = st_backend_read (u->backend, ST_SLOT_MATTER_CD, dev_error);
  if (back_cd == NULL)
    {
      *reason = N_("reading the Matter Certification Declaration back failed: check the connection and retry");
      return FALSE;
    }
  if (!st_bytes_equal0 (back_cd, u->line->matter_cd))
    {
      g_set_error (dev_error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "slot 3 read back %" G_GSIZE_FORMAT " bytes that differ from the %" G_GSIZE_FORMAT
                   " bytes of the Certification Declaration",
                   g_bytes_get_size (back_cd), g_bytes_get_size (u->line->matter_cd));
      *reason = N_("the device holds a different Matter Certification Declaration than it was sent: put it aside for QA");
      return FALSE;
    }
  g_autoptr(GBytes) back_data = st_backend_read (u->backend, ST_SLOT_MATTER_DATA, dev_error);
  if (back_data == NULL)
    {
      *reason = N_("reading the Matter commissioning data back failed: check the connection and retry");
      return FALSE;
    }
  if (!st_bytes_equal0 (back_data, record))
    {
      g_set_error (dev_error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "slot 4 read back %" G_GSIZE_FORMAT " bytes that differ from the %" G_GSIZE_FORMAT
                   " bytes of the unit's commissioning data record",
                   g_bytes_get_size (back_data), g_bytes_get_size (record));
      *reason = N_("the device holds different Matter commissioning data than it was sent: put it aside for QA");
      return FALSE;
    }
  return TRUE;
}

/* The tail of the pipeline, shared by new and resumed units: from the
 * certificate on record (@cert_der) to DONE. @write_cert is FALSE when the
 * device already holds the certificate in slot 1. @key: the certificate's
 * public key when the caller has it (a new unit), else NULL and @cert, the
 * parsed certificate (a resumed unit), gives it. */
static gboolean
st_unit_deliver (StUnit *u, X509 *cert, EVP_PKEY *key, GBytes *cert_der, gboolean write_cert,
                 GError **error)
{
  StLine *line = u->line;
  StBackend *be = u->backend;
  g_autoptr(GError) dev_error = NULL;

  if (write_cert)
    {
      st_unit_step (u, ST_UNIT_STEP_WRITE);
      u->device_touched = TRUE;
      if (!st_backend_write (be, ST_SLOT_CERT, cert_der, &dev_error))
        return st_unit_fail (u, ST_UNIT_FAILED, ST_UNIT_STEP_WRITE,
                             N_("writing the certificate to the device failed: check the connection and retry"),
                             dev_error, ST_DB_CERT_VOID, error);
      st_fault_point ("after-write-cert");
    }
  st_unit_step (u, ST_UNIT_STEP_WRITE_CHAIN);
  u->device_touched = TRUE;
  if (!st_backend_write (be, ST_SLOT_CHAIN, line->chain_der, &dev_error))
    return st_unit_fail (u, ST_UNIT_FAILED, ST_UNIT_STEP_WRITE,
                         N_("writing the CA chain to the device failed: check the connection and retry"),
                         dev_error, ST_DB_CERT_VOID, error);

  /* A Matter unit: the Certification Declaration (slot 3) and the
   * commissioning data record (slot 4), never the passcode. A passive
   * device gets them in its credential blob (version 2) at COMMIT, which
   * reads the whole blob back and compares it. */
  g_autoptr(GBytes) matter_record = NULL;
  if (u->matter != NULL)
    {
      st_unit_step (u, ST_UNIT_STEP_WRITE_MATTER);
      matter_record = st_unit_matter_commissioning (u->matter, &dev_error);
      if (matter_record == NULL)
        return st_unit_fail (u, ST_UNIT_FAILED, ST_UNIT_STEP_WRITE_MATTER,
                             N_("the unit's Matter commissioning data could not be encoded: call the shift lead"),
                             dev_error, ST_DB_CERT_VOID, error);
      if (st_backend_has_capability (be, ST_BACKEND_CAP_PASSIVE))
        {
          if (!st_backend_set_matter_data (be, line->matter_cd, matter_record, &dev_error))
            return st_unit_fail (u, ST_UNIT_FAILED, ST_UNIT_STEP_WRITE_MATTER,
                                 N_("the Matter factory data could not be staged for the device: call the shift lead"),
                                 dev_error, ST_DB_CERT_VOID, error);
        }
      else if (!st_backend_write (be, ST_SLOT_MATTER_CD, line->matter_cd, &dev_error))
        return st_unit_fail (u, ST_UNIT_FAILED, ST_UNIT_STEP_WRITE_MATTER,
                             N_("writing the Matter Certification Declaration to the device failed: check the connection and retry"),
                             dev_error, ST_DB_CERT_VOID, error);
      else if (!st_backend_write (be, ST_SLOT_MATTER_DATA, matter_record, &dev_error))
        return st_unit_fail (u, ST_UNIT_FAILED, ST_UNIT_STEP_WRITE_MATTER,
                             N_("writing the Matter commissioning data to the device failed: check the connection and retry"),
                             dev_error, ST_DB_CERT_VOID, error);
    }

  /* Proof of possession with a fresh challenge. A passive device (ROM
   * bootloader, SWD: its backend declares no SIGN) cannot sign: the station
   * made the key, and the backend's COMMIT reads the whole credential blob
   * back and compares it byte for byte. */
  st_unit_step (u, ST_UNIT_STEP_PROOF_OF_POSSESSION);
  g_autoptr(GBytes) sig = NULL;
  gboolean proved = FALSE;
  gboolean passive = !st_backend_has_capability (be, ST_BACKEND_CAP_SIGN) &&
                     line->profile->key_mode == ST_KEY_MODE_STATION_KEY;
  if (!passive && !st_unit_prove (u, cert, key, &sig, &proved, &dev_error, error))
    return FALSE;
  if (passive)
    g_debug ("%s: no proof of possession (the %s backend cannot sign); the key is the station's",
             be->port, be->descriptor->scheme);
  else if (sig == NULL)
    return st_unit_fail (u, ST_UNIT_FAILED, ST_UNIT_STEP_PROOF_OF_POSSESSION,
                         N_("the device did not answer the proof-of-possession challenge: retry, then put it aside"),
                         dev_error, ST_DB_CERT_VOID, error);
  else if (!proved)
    return st_unit_fail (u, ST_UNIT_FAILED, ST_UNIT_STEP_PROOF_OF_POSSESSION,
                         N_("the device could not prove it holds the key of its certificate: put it aside for QA"),
                         dev_error, ST_DB_CERT_VOID, error);
  u->proved = u->proved || proved;

  /* Read back and compare. */
  st_unit_step (u, ST_UNIT_STEP_READ_BACK);
  g_autoptr(GBytes) back_cert = st_backend_read (be, ST_SLOT_CERT, &dev_error);
  if (back_cert == NULL)
    return st_unit_fail (u, ST_UNIT_FAILED, ST_UNIT_STEP_READ_BACK,
                         N_("reading the certificate back failed: check the connection and retry"),
                         dev_error, ST_DB_CERT_VOID, error);
  if (!st_bytes_equal0 (back_cert, cert_der))
    {
      g_set_error (&dev_error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "slot 1 read back %" G_GSIZE_FORMAT " bytes that differ from the %" G_GSIZE_FORMAT " written",
                   g_bytes_get_size (back_cert), g_bytes_get_size (cert_der));
      return st_unit_fail (u, ST_UNIT_FAILED, ST_UNIT_STEP_READ_BACK,
                           N_("the device stored a different certificate than it was sent (memory fault?): put it aside for QA"),
                           dev_error, ST_DB_CERT_VOID, error);
    }
  g_autoptr(GBytes) back_chain = st_backend_read (be, ST_SLOT_CHAIN, &dev_error);
  if (back_chain == NULL)
    return st_unit_fail (u, ST_UNIT_FAILED, ST_UNIT_STEP_READ_BACK,
                         N_("reading the CA chain back failed: check the connection and retry"),
                         dev_error, ST_DB_CERT_VOID, error);
  if (!st_bytes_equal0 (back_chain, line->chain_der))
    {
      g_set_error (&dev_error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "slot 2 read back %" G_GSIZE_FORMAT " bytes that differ from the %" G_GSIZE_FORMAT " written",
                   g_bytes_get_size (back_chain), g_bytes_get_size (line->chain_der));
      return st_unit_fail (u, ST_UNIT_FAILED, ST_UNIT_STEP_READ_BACK,
                           N_("the device stored a different CA chain than it was sent (memory fault?): put it aside for QA"),
                           dev_error, ST_DB_CERT_VOID, error);
    }
  const char *matter_reason = NULL;
  if (matter_record != NULL && !st_unit_matter_read_back (u, matter_record, &matter_reason, &dev_error))
    return st_unit_fail (u, ST_UNIT_FAILED, ST_UNIT_STEP_READ_BACK, matter_reason, dev_error,
                         ST_DB_CERT_VOID, error);

  /* Commit. An error status means the device kept its old state (the
   * protocol's commit is atomic); no answer at all leaves it unknown. */
  st_unit_step (u, ST_UNIT_STEP_COMMIT);
  u->commit_sent = TRUE;
  if (!st_backend_commit (be, line->profile->lock, &dev_error))
    {
      if (st_backend_get_last_status (be) != ST_AGENT_STATUS_NONE &&
          st_backend_get_last_status (be) != ST_AGENT_STATUS_OK)
        return st_unit_fail (u, ST_UNIT_FAILED, ST_UNIT_STEP_COMMIT,
                             N_("the device refused to store its credentials: put it aside for QA"),
                             dev_error, ST_DB_CERT_VOID, error);
      return st_unit_fail (u, ST_UNIT_FAILED, ST_UNIT_STEP_COMMIT,
                           N_("the device did not confirm storing its credentials; its certificate stays unconfirmed until the device is seen again: retry it"),
                           dev_error, ST_DB_CERT_UNCONFIRMED, error);
    }
  st_fault_point ("after-commit");

  /* HELLO again: the device must show the committed state. */
  st_unit_step (u, ST_UNIT_STEP_CONFIRM);
  StDeviceInfo after = { 0 };
  gboolean seen = FALSE;
  for (guint attempt = 0; attempt < 3 && !seen; attempt++)
    {
      g_clear_error (&dev_error);
      seen = st_backend_identify (be, &after, &dev_error);
    }
  if (!seen)
    return st_unit_fail (u, ST_UNIT_FAILED, ST_UNIT_STEP_CONFIRM,
                         N_("the device stopped answering after storing its credentials; its certificate stays unconfirmed until the device is seen again"),
                         dev_error, ST_DB_CERT_UNCONFIRMED, error);
  /* The state TLV is optional: a device that does not report it has
   * confirmed by answering COMMIT with OK. */
  gboolean state_known = after.state != ST_DEVICE_STATE_UNKNOWN;
  gboolean committed_state = !state_known || after.state == ST_DEVICE_STATE_PROVISIONED ||
                             after.state == ST_DEVICE_STATE_LOCKED;
  if (after.uid_len != u->info->uid_len ||
      memcmp (after.uid, u->info->uid, after.uid_len) != 0 || !committed_state ||
      (line->profile->lock && state_known && after.state != ST_DEVICE_STATE_LOCKED))
    {
      g_autofree gchar *uid = st_device_info_uid_hex (&after);
      g_set_error (&dev_error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   _("after COMMIT the device reports uid %s, state %d"), uid, (int) after.state);
      return st_unit_fail (u, ST_UNIT_FAILED, ST_UNIT_STEP_CONFIRM,
                           N_("the device does not report its new credentials as stored; its certificate stays unconfirmed: put it aside for QA"),
                           dev_error, ST_DB_CERT_UNCONFIRMED, error);
    }

  st_fault_point ("before-done");
  if (!st_unit_record_done (u, error))
    return st_unit_db_failed (u, error, "DONE");
  st_unit_set_outcome (u, ST_UNIT_PASSED, ST_UNIT_STEP_DONE, "provisioned", NULL);
  return TRUE;
}

/* Issue: build, reserve (ISSUING), sign, check, record (ISSUED). @der_out
 * is the certificate when it was issued, NULL when the unit failed or was
 * refused (recorded). */
/* ---------- Matter factory data (docs/matter.md, "Factory data per unit") ---------- */

/* Makes this unit's Matter data anew (u->matter), drawing the batch's next
 * sequential discriminator counter when the profile asks for one. */
static gboolean
st_unit_matter_make (StUnit *u, GError **error)
{
  const StProfileMatter *m = &u->line->profile->matter;
  g_clear_pointer (&u->matter, st_matter_unit_data_free);
  gint64 counter = 0;
  if (m->discriminator == ST_MATTER_DISCRIMINATOR_SEQUENTIAL)
    {
      counter = st_db_matter_counter_draw (u->line->db, u->line->batch->id, error);
      if (counter < 0)
        return FALSE;
    }
  u->matter = st_matter_unit_data_new ();
  if (!st_matter_unit_data_generate (m, (guint64) counter, u->matter, error))
    {
      g_clear_pointer (&u->matter, st_matter_unit_data_free);
      return FALSE;
    }
  return TRUE;
}

/* The database's record of @d (borrowing its strings; the GBytes are
 * copies, freed by st_unit_matter_record_clear). */
static void
st_unit_matter_record (const StMatterUnitData *d, StDbUnitMatter *r)
{
  memset (r, 0, sizeof *r);
  r->vendor_id = d->vendor_id;
  r->product_id = d->product_id;
  r->discriminator = d->discriminator;
  r->counter = d->sequential ? (gint64) d->counter : -1;
  r->passcode = d->passcode;
  r->iterations = d->iterations;
  r->salt = g_bytes_new (d->salt, d->salt_len);
  r->verifier = g_bytes_new (d->verifier, sizeof d->verifier);
  r->unique_id = d->unique_id_len > 0 ? g_bytes_new (d->unique_id, d->unique_id_len) : NULL;
  r->flow = d->flow;
  r->discovery = d->discovery;
  r->qr_text = d->qr_text;
  r->manual_code = d->manual_code;
}

static void
st_unit_matter_record_clear (StDbUnitMatter *r)
{
  g_clear_pointer (&r->salt, g_bytes_unref);
  g_clear_pointer (&r->verifier, g_bytes_unref);
  g_clear_pointer (&r->unique_id, g_bytes_unref);
  st_memwipe (r, sizeof *r);
}

/* A resumed unit of a Matter batch keeps the data it was recorded with:
 * read back into u->matter and checked (the verifier that of the
 * passcode, the codes those of the fields). A record missing or not
 * holding together stops the line: the database was changed. */
static gboolean
st_unit_matter_load (StUnit *u, GError **error)
{
  if (!u->line->profile->matter.enabled)
    return TRUE;
  g_autoptr(GError) local = NULL;
  g_autoptr(StDbUnitMatter) r = st_db_unit_matter_get (u->line->db, u->unit_id, &local);
  g_autoptr(StMatterUnitData) d = st_matter_unit_data_new ();
  if (r != NULL)
    {
      gsize salt_len = 0, verifier_len = 0, uid_len = 0;
      const guint8 *salt = g_bytes_get_data (r->salt, &salt_len);
      const guint8 *verifier = g_bytes_get_data (r->verifier, &verifier_len);
      const guint8 *uid = r->unique_id != NULL ? g_bytes_get_data (r->unique_id, &uid_len) : NULL;
      if (salt_len > sizeof d->salt || verifier_len != sizeof d->verifier || uid_len > sizeof d->unique_id)
        g_set_error_literal (&local, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                             _("a field of the record has the wrong length"));
      else
        {
          d->vendor_id = (guint16) r->vendor_id;
          d->product_id = (guint16) r->product_id;
          d->discriminator = (guint16) r->discriminator;
          d->sequential = r->counter >= 0;
          d->counter = r->counter >= 0 ? (guint64) r->counter : 0;
          d->passcode = r->passcode;
          d->iterations = r->iterations;
          memcpy (d->salt, salt, salt_len);
          d->salt_len = salt_len;
          memcpy (d->verifier, verifier, verifier_len);
          if (uid_len > 0)
            memcpy (d->unique_id, uid, uid_len);
          d->unique_id_len = uid_len;
          d->flow = (guint8) r->flow;
          d->discovery = (guint8) r->discovery;
          d->qr_text = g_strdup (r->qr_text);
          d->manual_code = g_strdup (r->manual_code);
          st_matter_unit_data_check (d, &local);
        }
    }
  if (local != NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   _("%s: unit %" PRId64 " (uid %s) cannot be resumed: its Matter record is not "
                     "usable (%s). The line stops: run 'station db check' and have the database "
                     "examined before going on."),
                   u->backend->port, u->unit_id, u->result->uid_hex, local->message);
      st_line_stop (u->line, *error);
      st_backend_abort (u->backend, NULL);
      return FALSE;
    }
  u->matter = g_steal_pointer (&d);
  return TRUE;
}

static gboolean
st_unit_issue (StUnit *u, EVP_PKEY *pubkey, GBytes **der_out, GError **error)
{
  StLine *line = u->line;
  g_autoptr(GError) local = NULL;
  g_autoptr(X509) cert = NULL;
  g_autofree gchar *pub_hash = NULL;
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  g_autofree gchar *product_serial = NULL;
  StSubjectInfo subject = {
    .uid_hex = u->result->uid_hex,
    .model = u->info->model,
  };
  StSerial serial = { 0 };
  gint64 cert_id = 0;

  st_unit_step (u, ST_UNIT_STEP_RESERVE);
  for (guint attempt = 0; cert_id <= 0; attempt++)
    {
      g_clear_error (&local);
      g_clear_pointer (&cert, X509_free);
      /* the unit's Matter data, made once (again only after a collision
       * of its discriminator counter), before anything is recorded */
      if (line->profile->matter.enabled && u->matter == NULL && !st_unit_matter_make (u, &local))
        return st_unit_fail (u, ST_UNIT_FAILED, ST_UNIT_STEP_RESERVE,
                             N_("the Matter factory data could not be made: call the shift lead"),
                             local, ST_DB_CERT_VOID, error);
      /* The {seq} of the product serial: from the product's sequence,
       * shared by every batch of the product (one running beside this one
       * too). The reservation records the serial, unique per product,
       * before anything is signed; a collision (another process drew the
       * same number) draws again. */
      gint64 seq = st_db_product_seq_draw (line->db, line->batch->product, error);
      if (seq <= 0)
        return st_unit_db_failed (u, error, "the product serial's number");
      g_free (product_serial);
      product_serial = st_profile_format_serial (line->profile, (guint64) seq, now);
      subject.product_serial = product_serial;
      if (!st_draw_serial (line->ca, &serial, error))
        {
          st_line_stop (line, *error);
          st_backend_abort (u->backend, NULL);
          return FALSE;
        }
      cert = st_issue_build (line->ca->ca_cert, line->profile, pubkey, &subject,
                             &serial, now, &local);
      if (cert == NULL)
        {
          /* The profile cannot issue under this CA now (its validity
           * outlives the CA's notAfter, the clock left the CA's
           * validity...): no unit of the batch can pass, so the line stops
           * with what to fix, instead of failing unit after unit. */
          g_autoptr(GError) batch_error = NULL;
          if (!st_issue_check_profile (line->ca->ca_cert, line->profile, now, &batch_error))
            {
              gboolean recorded = st_unit_fail (u, ST_UNIT_FAILED, ST_UNIT_STEP_ISSUE,
                                                N_("this batch's profile cannot issue under the station's CA: "
                                                "the line stops; the shift lead fixes the profile or renews the CA"),
                                                batch_error, ST_DB_CERT_VOID, error);
              st_line_stop (line, batch_error);
              return recorded;
            }
          return st_unit_fail (u, ST_UNIT_FAILED, ST_UNIT_STEP_ISSUE,
                               N_("the certificate could not be built: call the shift lead (profile or CA problem)"),
                               local, ST_DB_CERT_VOID, error);
        }
      g_autoptr(GBytes) tbs = st_issue_tbs_der (cert, &local);
      /* The key as the certificate carries it, hashed for the rule that a
       * key is certified once: the bytes st_issue_build() wrote from the
       * key, which st_issue_check() compares with the key again before
       * anything is recorded as issued. */
      if (tbs != NULL && pub_hash == NULL)
        pub_hash = st_x509_pubkey_sha256_hex (cert, &local);
      if (tbs == NULL || pub_hash == NULL)
        return st_unit_fail (u, ST_UNIT_FAILED, ST_UNIT_STEP_ISSUE,
                             N_("the certificate could not be encoded: call the shift lead"),
                             local, ST_DB_CERT_VOID, error);
      g_autofree gchar *serial_hex = st_serial_to_hex (&serial);
      /* The unit's first record: ISSUING, with the serial and the
       * to-be-signed certificate, before anything is signed. */
      StDbUnitNew unit = st_unit_new_record (u);
      /* a Matter unit's factory data in the same transaction */
      StDbUnitMatter matter_record;
      if (u->matter != NULL)
        st_unit_matter_record (u->matter, &matter_record);
      cert_id = st_db_unit_begin_reserve_matter (line->db, &unit, line->issuer_hash, serial_hex,
                                                 pub_hash, tbs, product_serial, seq,
                                                 line->allow_reprovision,
                                                 u->matter != NULL ? &matter_record : NULL,
                                                 &u->unit_id, &local);
      if (u->matter != NULL)
        st_unit_matter_record_clear (&matter_record);
      if (cert_id > 0)
        {
          u->result->unit_id = u->unit_id;
          g_free (u->result->cert_serial);
          u->result->cert_serial = g_steal_pointer (&serial_hex);
          break;
        }
      if (g_error_matches (local, ST_ERROR, ST_ERROR_INTERNAL) && attempt + 1 < ST_SERIAL_ATTEMPTS)
        {
          /* serial or product serial collision: draw again, past what the
           * database recorded meanwhile */
          if (!st_db_product_seq_resync (line->db, line->batch->product, error))
            return st_unit_db_failed (u, error, "the product serial's number");
          /* a discriminator counter another process recorded: new data */
          if (u->matter != NULL && u->matter->sequential
              && strstr (local->message, "discriminator counter collision") != NULL)
            {
              if (!st_db_matter_counter_resync (line->db, line->batch->id, error))
                return st_unit_db_failed (u, error, "the discriminator counter");
              g_clear_pointer (&u->matter, st_matter_unit_data_free);
            }
          continue;
        }
      if (g_error_matches (local, ST_ERROR, ST_ERROR_BUSY))
        return st_unit_fail (u, ST_UNIT_REFUSED, ST_UNIT_STEP_RESERVE,
                             N_("the batch has all the certificates it may issue: ask the shift lead"),
                             local, ST_DB_CERT_VOID, error);
      if (g_error_matches (local, ST_ERROR, ST_ERROR_PERMISSION_DENIED)
          && st_db_batch_over_void_cap (line->db, line->batch->id, NULL, NULL))
        {
          /* too many voided certificates: the line stops for a lead */
          g_propagate_error (error, g_steal_pointer (&local));
          st_line_stop (line, *error);
          st_backend_abort (u->backend, NULL);
          return FALSE;
        }
      if (g_error_matches (local, ST_ERROR, ST_ERROR_PERMISSION_DENIED))
        return st_unit_fail (u, ST_UNIT_REFUSED, ST_UNIT_STEP_RESERVE,
                             N_("this device already holds a certificate from this station: put it aside, or ask a lead to allow re-provisioning"),
                             local, ST_DB_CERT_VOID, error);
      if (g_error_matches (local, ST_ERROR, ST_ERROR_VERIFY_FAILED))
        return st_unit_fail (u, ST_UNIT_FAILED, ST_UNIT_STEP_RESERVE,
                             N_("the device offered a key that was certified before (cloned or replaying device): put it aside for QA"),
                             local, ST_DB_CERT_VOID, error);
      g_propagate_error (error, g_steal_pointer (&local));
      return st_unit_db_failed (u, error, "the reserved serial");
    }
  g_free (u->result->product_serial);
  u->result->product_serial = g_strdup (product_serial);
  st_fault_point ("after-reserve");
  /* Passive backends put the product serial into the credential blob. */
  if (st_backend_has_capability (u->backend, ST_BACKEND_CAP_PASSIVE) &&
      !st_backend_set_product_serial (u->backend, product_serial, &local))
    return st_unit_fail (u, ST_UNIT_FAILED, ST_UNIT_STEP_ISSUE, N_("the product serial could not be staged"),
                         local, ST_DB_CERT_VOID, error);

  st_unit_step (u, ST_UNIT_STEP_SIGN);
  /* A lost HSM session is recovered there (new login, keys taken anew,
   * one more try). An HSM that still cannot sign stops the line: this
   * unit fails with its reserved certificate voided, and nothing else
   * is signed until someone looks at the HSM. */
  gboolean hsm_failed = FALSE;
  if (!st_ca_sign_cert (line->ca, cert, &hsm_failed, &local))
    {
      if (!hsm_failed)
        return st_unit_fail (u, ST_UNIT_FAILED, ST_UNIT_STEP_SIGN,
                             N_("the HSM did not sign the certificate: call the shift lead (HSM problem)"),
                             local, ST_DB_CERT_VOID, error);
      if (!st_unit_fail (u, ST_UNIT_FAILED, ST_UNIT_STEP_SIGN,
                         N_("the HSM cannot sign: the line stopped; the shift lead checks the HSM, then runs the batch again"),
                         local, ST_DB_CERT_VOID, error))
        return FALSE;
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE,
                   _("%s: the HSM cannot sign (unit %s failed, its reserved certificate voided): %s. "
                   "Check the HSM (plugged in, PIN, its log), then run the batch again"),
                   u->backend->port, u->result->uid_hex, local->message);
      st_line_stop (line, *error);
      return FALSE;
    }
  if (!st_issue_check (cert, line->ca->ca_cert, line->profile, pubkey, &subject, &serial, &local))
    return st_unit_fail (u, ST_UNIT_FAILED, ST_UNIT_STEP_SIGN,
                         N_("the signed certificate failed its checks and was not used: call the shift lead"),
                         local, ST_DB_CERT_VOID, error);
  st_fault_point ("after-sign");

  guint8 *der = NULL;
  int der_len = i2d_X509 (cert, &der);
  if (der_len <= 0)
    {
      st_error_set_openssl (&local, ST_ERROR_INTERNAL, "i2d_X509");
      return st_unit_fail (u, ST_UNIT_FAILED, ST_UNIT_STEP_SIGN, N_("the certificate could not be encoded"),
                           local, ST_DB_CERT_VOID, error);
    }
  g_autoptr(GBytes) cert_der = g_bytes_new (der, (gsize) der_len);
  OPENSSL_free (der);
  /* From here on the unit needs only the DER and the key. Freed now, the
   * certificate's hundred-odd allocations are still in the cache; after
   * the commit wait, freeing them cost the bench 2% of its CPU. */
  g_clear_pointer (&cert, X509_free);

  if (!st_db_cert_issued (line->db, cert_id, cert_der, error))
    return st_unit_db_failed (u, error, "the issued certificate");
  st_fault_point ("after-issued");

  *der_out = g_steal_pointer (&cert_der);
  return TRUE;
}

/* Where the unit of @pending was interrupted, for messages. */
static gchar *
st_unit_interrupted_at (const StDbUnit *pending)
{
  if (g_strcmp0 (pending->state, "failed") == 0 && pending->fail_step != NULL)
    return g_strdup_printf ("'%s' (%s)", pending->fail_step,
                            pending->fail_reason != NULL ? pending->fail_reason : "no reason recorded");
  return g_strdup ("'issued' (the station stopped after recording its certificate)");
}

/* A unit whose certificate may be on its device, and whose device is back:
 * one an earlier run left in ISSUED (the station stopped), or one recorded
 * FAILED with its certificate unconfirmed (the device vanished between the
 * write and the confirmation). Reads slot 1: the unit is finished when the
 * device holds the recorded certificate and proves it holds its key, or
 * still holds the key and takes the certificate. A device that proves
 * neither may be a clone answering with the uid while the genuine device
 * holds the certificate committed: the certificate is not voided, the unit
 * is disputed (st_unit_dispute) and a lead decides. */
static gboolean
st_unit_resume (StUnit *u, StDbUnit *pending, GError **error)
{
  g_autoptr(GError) dev_error = NULL;

  u->unit_id = pending->id;
  u->cert_id = pending->cert_id;
  u->reopened = g_strcmp0 (pending->state, "failed") == 0;
  /* its recorded Matter data, never new data */
  if (!st_unit_matter_load (u, error))
    return FALSE;
  u->result->unit_id = pending->id;
  u->result->resumed = TRUE;
  g_free (u->result->cert_serial);
  u->result->cert_serial = g_strdup (pending->cert_serial);
  g_free (u->result->product_serial);
  u->result->product_serial = g_strdup (pending->product_serial);
  g_autofree gchar *at = st_unit_interrupted_at (pending);
  g_info ("%s: uid %s belongs to unit %" G_GINT64_FORMAT " (certificate %s, unconfirmed), interrupted at %s: "
          "reading the device to finish it", u->backend->port, u->result->uid_hex, pending->id,
          pending->cert_serial, at);

  st_unit_step (u, ST_UNIT_STEP_RESUME);
  g_autoptr(GBytes) slot1 = st_backend_read (u->backend, ST_SLOT_CERT, &dev_error);
  if (slot1 == NULL || pending->cert_der == NULL)
    {
      /* Not decided: the unit stays pending for the next time. */
      st_unit_set_outcome (u, ST_UNIT_FAILED, ST_UNIT_STEP_RESUME,
                           N_("the device of an interrupted unit did not answer READ: retry it"), dev_error);
      return TRUE;
    }
  const guint8 *p = g_bytes_get_data (pending->cert_der, NULL);
  g_autoptr(X509) cert = d2i_X509 (NULL, &p, (long) g_bytes_get_size (pending->cert_der));
  if (cert == NULL)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "the recorded certificate does not parse");
      return FALSE;
    }
  g_autofree gchar *done_reason = g_strdup_printf (_("provisioned: completed the unit interrupted at %s "
                                                   "(resumed after an interruption)"), at);
  gboolean holds_cert = g_bytes_equal (slot1, pending->cert_der);
  if (!holds_cert)
    {
      /* Interrupted between ISSUED and the write, or the write never stuck.
       * If the device still holds the key the certificate was made for,
       * deliver that certificate. */
      gboolean proved = FALSE;
      if (!st_unit_prove (u, cert, NULL, NULL, &proved, &dev_error, error))
        return FALSE;
      if (!proved)
        {
          /* It does not: it lost its credentials, or it is not the device
           * the certificate was made for. Disputed, not voided. */
          g_autoptr(GError) why = g_error_new (ST_ERROR, ST_ERROR_NOT_FOUND,
                                               "slot 1 holds %" G_GSIZE_FORMAT " bytes, not the recorded certificate %s, "
                                               "and the device does not hold its key (%s)",
                                               g_bytes_get_size (slot1), pending->cert_serial,
                                               dev_error != NULL ? dev_error->message : "?");
          return st_unit_dispute (u, ST_UNIT_STEP_RESUME,
                                  N_("this device answers with the uid of an earlier unit but holds neither its "
                                  "certificate nor its key (a cloned uid, or a device that lost its credentials)"),
                                  why, error);
        }
      u->proved = TRUE;
      g_clear_error (&dev_error);
    }
  if (holds_cert &&
      (u->info->state == ST_DEVICE_STATE_PROVISIONED || u->info->state == ST_DEVICE_STATE_LOCKED))
    {
      /* Committed before the interruption: confirm and record DONE. */
      gboolean proved = FALSE;
      if (!st_unit_prove (u, cert, NULL, NULL, &proved, &dev_error, error))
        return FALSE;
      if (!proved)
        return st_unit_dispute (u, ST_UNIT_STEP_PROOF_OF_POSSESSION,
                                N_("this device holds the certificate of its uid but cannot prove it holds its "
                                "key (a copied certificate?)"), dev_error, error);
      u->proved = TRUE;
      /* a Matter unit's device holds the data of its record, or it fails */
      if (u->matter != NULL)
        {
          g_autoptr(GBytes) record = st_unit_matter_commissioning (u->matter, &dev_error);
          if (record == NULL)
            return st_unit_fail (u, ST_UNIT_FAILED, ST_UNIT_STEP_RESUME,
                                 N_("the unit's Matter commissioning data could not be encoded: call the shift lead"),
                                 dev_error, ST_DB_CERT_UNCONFIRMED, error);
          const char *matter_reason = NULL;
          if (!st_unit_matter_read_back (u, record, &matter_reason, &dev_error))
            return st_unit_fail (u, ST_UNIT_FAILED, ST_UNIT_STEP_RESUME, matter_reason, dev_error,
                                 ST_DB_CERT_VOID, error);
        }
      if (!st_unit_record_done (u, error))
        return st_unit_db_failed (u, error, "DONE");
      st_unit_set_outcome (u, ST_UNIT_PASSED, ST_UNIT_STEP_DONE, done_reason, NULL);
      return TRUE;
    }
  /* The device holds the key, and maybe the certificate, uncommitted:
   * finish the pipeline. */
  u->device_touched = TRUE;
  if (!st_unit_deliver (u, cert, NULL, pending->cert_der, !holds_cert, error))
    return FALSE;
  if (u->result->outcome == ST_UNIT_PASSED)
    {
      g_free (u->result->reason);
      u->result->reason = g_steal_pointer (&done_reason);
    }
  return TRUE;
}

/* Checks before anything is recorded: what makes a device one to refuse.
 * @looked: st_line_take_pending() already looked up the uid's live unit,
 * @live (NULL: none), so it is not looked up again. */
static gboolean
st_unit_check_device (StUnit *u, const StDbUnit *live, gboolean looked, gboolean *refused,
                      GError **error)
{
  StLine *line = u->line;
  const StDeviceInfo *info = u->info;
  g_autoptr(GError) why = NULL;
  const char *reason = NULL;
  g_autofree gchar *owned = NULL, *shown = NULL;

  *refused = TRUE;
  if (line->profile->model != NULL && g_strcmp0 (line->profile->model, info->model) != 0)
    {
      g_autofree gchar *model = st_text_escape (info->model, -1, ST_TEXT_ONE_LINE);
      why = g_error_new (ST_ERROR, ST_ERROR_INVALID_DATA, "HELLO model '%s', profile model '%s'",
                         model, line->profile->model);
      reason = N_("this device is another model than the batch's product: put it aside");
    }
  else if (info->state == ST_DEVICE_STATE_LOCKED)
    {
      why = g_error_new_literal (ST_ERROR, ST_ERROR_PERMISSION_DENIED, "HELLO state 3 (locked)");
      reason = N_("this device is locked (already provisioned): put it aside for QA");
    }
  else if (info->algorithms != 0 &&
           (info->algorithms & st_alg_to_mask_bit (line->profile->alg)) == 0)
    {
      why = g_error_new (ST_ERROR, ST_ERROR_NOT_SUPPORTED, "HELLO algorithms 0x%02x lack %s",
                         info->algorithms, st_alg_to_string (line->profile->alg));
      reason = N_("this device's firmware cannot make the product's key type: check the firmware version");
    }
  else if (line->profile->matter.enabled && !st_backend_has_capability (u->backend, ST_BACKEND_CAP_PASSIVE)
           && (info->extensions & ST_DEVICE_EXT_MATTER_1) == 0)
    {
      g_autofree gchar *fw = st_text_escape (info->fw_version, -1, ST_TEXT_ONE_LINE);
      why = g_error_new (ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                         "HELLO extensions 0x%08x lack matter-1 (firmware '%s')", info->extensions, fw);
      reason = N_("this device's firmware cannot take Matter factory data (it does not announce the agent "
                  "protocol extension matter-1) and nothing was written: update it to a firmware with "
                  "matter-1, or put it aside");
    }
  else
    {
      g_autoptr(GError) local = NULL;
      g_autoptr(StDbUnit) found = looked ? NULL : st_db_unit_find_live_by_uid (line->db, u->result->uid_hex, &local);
      const StDbUnit *known = looked ? live : found;
      if (known != NULL && g_strcmp0 (known->cert_state, "disputed") == 0)
        {
          /* only a lead's decision ends a dispute, re-provisioning too */
          why = g_error_new (ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                             "uid has the disputed certificate serial %s (batch %" G_GINT64_FORMAT ", unit %" G_GINT64_FORMAT ")",
                             known->cert_serial, known->batch_id, known->id);
#define ST_UNIT_UID_DISPUTED N_("the unit of this uid is disputed (a device with this uid did not " \
                                "hold its certificate): set this device aside and ask a lead to " \
                                "decide (station unit resolve %s --keep or --void)")
          /* recorded in English, shown in the station's language */
          reason = owned = g_strdup_printf (ST_UNIT_UID_DISPUTED, u->result->uid_hex);
          shown = g_strdup_printf (_(ST_UNIT_UID_DISPUTED), u->result->uid_hex);
        }
      else if (known != NULL && !line->allow_reprovision)
        {
          why = g_error_new (ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                             "uid has live certificate serial %s (batch %" G_GINT64_FORMAT ", unit %" G_GINT64_FORMAT ")",
                             known->cert_serial, known->batch_id, known->id);
          reason = N_("this device was already provisioned: put it aside, or ask a lead to allow re-provisioning");
        }
      else if (!looked && known == NULL && !g_error_matches (local, ST_ERROR, ST_ERROR_NOT_FOUND))
        {
          g_propagate_error (error, g_steal_pointer (&local));
          return FALSE;
        }
    }
  if (reason == NULL)
    {
      *refused = FALSE;
      return TRUE;
    }
  if (!st_unit_fail (u, ST_UNIT_REFUSED, ST_UNIT_STEP_IDENTIFY, reason, why, ST_DB_CERT_VOID, error))
    return FALSE;
  if (shown != NULL && u->result->outcome == ST_UNIT_REFUSED && g_strcmp0 (u->result->reason, reason) == 0)
    {
      g_free (u->result->reason);
      u->result->reason = g_steal_pointer (&shown);
    }
  return TRUE;
}

/* The steps of one unit; FALSE only when the line must stop. */
static gboolean
st_unit_run_steps (StUnit *u, GError **error)
{
  StLine *line = u->line;
  StBackend *backend = u->backend;
  StUnitResult *result = u->result;
  g_autoptr(GError) dev_error = NULL;

  /* A unit whose certificate may be on this device (interrupted in an
   * earlier run, or in this one)? */
  StDbUnit *pending = NULL;
  g_autoptr(StDbUnit) live = NULL;
  gboolean busy = FALSE, looked = FALSE;
  if (!st_line_take_pending (line, result->uid_hex, &pending, &busy, &live, &looked, error))
    {
      g_prefix_error (error, "%s: ", backend->port);
      st_line_stop (line, *error);
      return FALSE;
    }
  if (busy)
    {
      g_autoptr(GError) why = g_error_new (ST_ERROR, ST_ERROR_BUSY,
                                           "uid %s is being resumed on another socket", result->uid_hex);
      return st_unit_fail (u, ST_UNIT_REFUSED, ST_UNIT_STEP_IDENTIFY,
                           N_("another socket is finishing the unit of a device with this uid (a cloned uid?): put it aside for QA"),
                           why, ST_DB_CERT_VOID, error);
    }
  if (pending != NULL)
    {
      /* finished, disputed, or left for the next time: never issued anew
       * here (a device that cannot show it is the one the certificate was
       * made for does not get a new one while that one is live) */
      gboolean ok = st_unit_resume (u, pending, error);
      st_line_release_pending (line, result->uid_hex);
      st_db_unit_free (pending);
      return ok;
    }

  /* Nothing is recorded before the reservation: until then nothing has
   * happened that cannot be undone (the device's new key is uncommitted).
   * A unit that ends earlier is recorded with its failure in one write. */
  st_unit_step (u, ST_UNIT_STEP_IDENTIFY);
  gboolean refused = FALSE;
  if (!st_unit_check_device (u, live, looked, &refused, error))
    return FALSE;
  if (refused)
    return TRUE;

  /* The firmware image, when the profile has one: written and verified by
   * reading it back and hashing, before any key exists. */
  if (line->firmware != NULL)
    {
      st_unit_step (u, ST_UNIT_STEP_FIRMWARE);
      u->device_touched = TRUE;
      if (!st_backend_flash_image (backend, line->profile->firmware_address, line->firmware,
                                   line->profile->firmware_sha256, &dev_error))
        return st_unit_fail (u, ST_UNIT_FAILED, ST_UNIT_STEP_FIRMWARE,
                             N_("writing the firmware image failed: check the connection and retry"),
                             dev_error, ST_DB_CERT_VOID, error);
    }

  /* The key. */
  g_autoptr(EVP_PKEY) pubkey = NULL;
  if (line->profile->key_mode == ST_KEY_MODE_DEVICE_CSR)
    {
      st_unit_step (u, ST_UNIT_STEP_KEYGEN);
      u->device_touched = TRUE;
      g_autoptr(GBytes) csr = st_backend_keygen (backend, line->profile->alg, &dev_error);
      if (csr == NULL)
        return st_unit_fail (u, ST_UNIT_FAILED, ST_UNIT_STEP_KEYGEN,
                             N_("the device did not make its key: retry, then put it aside"),
                             dev_error, ST_DB_CERT_VOID, error);
      pubkey = st_csr_check (csr, line->profile->alg, &dev_error);
      if (pubkey == NULL)
        return st_unit_fail (u, ST_UNIT_FAILED, ST_UNIT_STEP_CSR,
                             N_("the device's key request was refused and nothing was issued: put it aside for QA"),
                             dev_error, ST_DB_CERT_VOID, error);
    }
  else
    {
      st_unit_step (u, ST_UNIT_STEP_KEYGEN);
      GBytes *pkcs8 = NULL;
      g_autoptr(EVP_PKEY) keypair = st_issue_station_keygen (line->profile->alg, &pkcs8, &dev_error);
      if (keypair == NULL)
        return st_unit_fail (u, ST_UNIT_FAILED, ST_UNIT_STEP_KEYGEN,
                             N_("the station could not make the device key: call the shift lead"),
                             dev_error, ST_DB_CERT_VOID, error);
      /* Keep only the public half beyond this point. */
      pubkey = st_pkey_public_only (keypair);
      g_clear_pointer (&keypair, EVP_PKEY_free);
      u->device_touched = TRUE;
      gboolean put = pubkey != NULL &&
                     st_backend_put_key (backend, line->profile->alg, pkcs8, &dev_error);
      /* The station's copy of the key is wiped as soon as the device has it. */
      st_bytes_wipe_unref (pkcs8);
      if (!put)
        return st_unit_fail (u, ST_UNIT_FAILED, ST_UNIT_STEP_PUT_KEY,
                             N_("sending the key to the device failed: check the connection and retry"),
                             dev_error, ST_DB_CERT_VOID, error);
    }

  g_autoptr(GBytes) cert_der = NULL;
  if (!st_unit_issue (u, pubkey, &cert_der, error))
    return FALSE;
  if (cert_der == NULL)
    return TRUE; /* failed or refused, and recorded */
  return st_unit_deliver (u, NULL, pubkey, cert_der, TRUE, error);
}

StUnitResult *
st_unit_run (StLine *line, StBackend *backend, const StDeviceInfo *info, GError **error)
{
  g_autoptr(StUnitResult) result = g_new0 (StUnitResult, 1);
  StUnit unit = {
    .line = line,
    .backend = backend,
    .info = info,
    .result = result,
    .started = g_get_monotonic_time (),
  };

  result->port = g_strdup (backend->port);
  result->uid_hex = st_device_info_uid_hex (info);
  gboolean ok = st_unit_run_steps (&unit, error);
  g_clear_pointer (&unit.matter, st_matter_unit_data_free);
  result->seconds = (gdouble) (g_get_monotonic_time () - unit.started) / G_USEC_PER_SEC;
  if (!ok)
    return NULL;
  return g_steal_pointer (&result);
}
