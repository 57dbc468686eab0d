#include "st-qa.h"

#include <inttypes.h>
#include <string.h>

#include <glib/gi18n.h>
#include <json-glib/json-glib.h>
#include <openssl/bn.h>
#include <openssl/rand.h>

#include "st-error.h"
#include "st-issue.h"
#include "st-manifest-check.h"
#include "st-matter-codes.h"
#include "st-matter-dac.h"
#include "st-matter-data.h"
#include "st-matter-spake2p.h"
#include "st-ossl.h"
#include "st-profile.h"
#include "st-pop.h"
#include "st-text.h"
#include "st-util.h"
#include "st-verify.h"

#define ST_QA_MAX_CHAIN 8

typedef struct {
  GString *report;
  JsonBuilder *json;
  guint failures;
} StQa;

G_GNUC_PRINTF (4, 5) static void
st_qa_check (StQa *qa, const char *name, gboolean ok, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree gchar *raw = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  /* A check's message may quote the device (its certificate's names, an
   * error it caused): escaped for the report and the audit payload. */
  g_autofree gchar *msg = st_text_escape (raw, -1, ST_TEXT_ONE_LINE);
  g_string_append_printf (qa->report, "%s  %-20s %s\n", ok ? "ok  " : "FAIL", name, msg);
  json_builder_set_member_name (qa->json, name);
  json_builder_add_string_value (qa->json, ok ? "ok" : msg);
  if (!ok)
    qa->failures++;
}

/* ---- a Matter unit (docs/matter.md, "Delivery, read-back and QA") ----
 * The check messages stay English, as the other checks' do: they are the
 * audit record's payload too (docs/translations.md). None carries the
 * passcode or a code that holds it. */

/* The fields in which the record @c read from the device differs from
 * the unit's record @m, comma-separated; "" when none. */
static gchar *
st_qa_matter_data_diff (const StMatterCommissioning *c, const StDbUnitMatter *m)
{
  g_autoptr(GString) diff = g_string_new (NULL);
#define ST_QA_DIFF(cond, what) \
  do { if (cond) g_string_append_printf (diff, "%s%s", diff->len > 0 ? ", " : "", (what)); } while (0)
  gsize salt_len = 0, uid_len = 0;
  const guint8 *salt = g_bytes_get_data (m->salt, &salt_len);
  const guint8 *uid = m->unique_id != NULL ? g_bytes_get_data (m->unique_id, &uid_len) : NULL;
  ST_QA_DIFF (c->vendor_id != m->vendor_id, "vendor id");
  ST_QA_DIFF (c->product_id != m->product_id, "product id");
  if (c->discriminator != m->discriminator)
    g_string_append_printf (diff, "%sdiscriminator (device %u, record %u)", diff->len > 0 ? ", " : "",
                            c->discriminator, m->discriminator);
  if (c->iterations != m->iterations)
    g_string_append_printf (diff, "%sPBKDF2 iterations (device %u, record %u)", diff->len > 0 ? ", " : "",
                            c->iterations, m->iterations);
  ST_QA_DIFF (c->salt_len != salt_len || memcmp (c->salt, salt, salt_len) != 0, "salt");
  ST_QA_DIFF (c->rdid_unique_id_len != uid_len
              || (uid_len > 0 && memcmp (c->rdid_unique_id, uid, uid_len) != 0),
              "rotating device id unique id");
#undef ST_QA_DIFF
  return g_string_free (g_steal_pointer (&diff), FALSE);
}

/* The fields in which a scanned onboarding code @code differs from the
 * unit's record @m; "" when none. FALSE with @error when @code is no
 * onboarding code at all (its check digit wrong, ...). */
static gboolean
st_qa_matter_code_diff (const char *code, const StDbUnitMatter *m, gchar **diff_out, const char **kind,
                        GError **error)
{
  g_autoptr(GString) diff = g_string_new (NULL);
#define ST_QA_DIFF(cond, what) \
  do { if (cond) g_string_append_printf (diff, "%s%s", diff->len > 0 ? ", " : "", (what)); } while (0)
  gsize len = strlen (code);
  if (g_str_has_prefix (code, "MT:"))
    {
      *kind = "QR text";
      StMatterPayload p;
      if (!st_matter_qr_parse (code, len, &p, error))
        return FALSE;
      ST_QA_DIFF (p.vendor_id != m->vendor_id, "vendor id");
      ST_QA_DIFF (p.product_id != m->product_id, "product id");
      if (p.discriminator != m->discriminator)
        g_string_append_printf (diff, "%sdiscriminator (code %u, record %u)", diff->len > 0 ? ", " : "",
                                p.discriminator, m->discriminator);
      ST_QA_DIFF (p.passcode != m->passcode, "setup passcode");
      ST_QA_DIFF (p.flow != m->flow, "commissioning flow");
      ST_QA_DIFF (p.discovery != m->discovery, "discovery capabilities");
    }
  else
    {
      *kind = "manual pairing code";
      StMatterManualCode mc;
      if (!st_matter_manual_parse (code, len, &mc, error))
        return FALSE;
      if (mc.short_discriminator != (m->discriminator >> 8))
        g_string_append_printf (diff, "%sshort discriminator (code %u, record %u)", diff->len > 0 ? ", " : "",
                                mc.short_discriminator, m->discriminator >> 8);
      ST_QA_DIFF (mc.passcode != m->passcode, "setup passcode");
      ST_QA_DIFF (mc.has_vid_pid && mc.vendor_id != m->vendor_id, "vendor id");
      ST_QA_DIFF (mc.has_vid_pid && mc.product_id != m->product_id, "product id");
      ST_QA_DIFF (mc.has_vid_pid != (m->flow != 0), "length (11 or 21 digits for the flow)");
    }
#undef ST_QA_DIFF
  *diff_out = g_string_free (g_steal_pointer (&diff), FALSE);
  return TRUE;
}

/* The Matter checks of @unit, whose device is @be; @cert is its slot 1
 * (NULL when unreadable), @chain its slot 2 (the PAI first). */
static void
st_qa_matter (StQa *qa, StDb *db, StBackend *be, const StDbUnit *unit, X509 *cert,
              StX509Stack *chain, X509 *root, const char *code)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(StDbBatch) batch = st_db_batch_get (db, unit->batch_id, &local);
  g_autoptr(StProfile) profile = NULL;
  if (batch != NULL && batch->profile_text != NULL)
    profile = st_profile_load_from_data (batch->profile_text, strlen (batch->profile_text),
                                         batch->product, &local);
  if (profile == NULL)
    {
      /* only a Matter batch's profile matters here: the other checks do
       * not need it */
      gboolean matter = batch != NULL && batch->profile_text != NULL
                        && (g_str_has_prefix (batch->profile_text, "[matter]")
                            || strstr (batch->profile_text, "\n[matter]") != NULL);
      if (matter || code != NULL)
        st_qa_check (qa, "matter", FALSE, "the unit's batch profile does not load: %s",
                     local != NULL ? local->message : "the batch records none");
      return;
    }
  if (!profile->matter.enabled)
    {
      if (code != NULL)
        st_qa_check (qa, "matter-code", FALSE, "an onboarding code was given, but batch %" G_GINT64_FORMAT
                     " (%s) is not a Matter product", unit->batch_id, batch->product);
      return;
    }
  const StProfileMatter *pm = &profile->matter;

  /* The DAC chain to the PAA with the Matter rules: the root a PAA, slot
   * 2's first certificate a PAI, slot 1 a DAC of that PAI with the
   * profile's VID and PID. The signatures were checked by "chain". */
  X509 *pai = chain != NULL && sk_X509_num (chain) > 0 ? sk_X509_value (chain, 0) : NULL;
  g_clear_error (&local);
  StMatterIds ids = { 0 };
  if (cert == NULL || pai == NULL)
    st_qa_check (qa, "matter-dac", FALSE, "no DAC and PAI to check (slots 1 and 2 above)");
  else if (!st_matter_paa_check (root, &local) || !st_matter_pai_check (pai, NULL, &local)
           || !st_matter_dac_check (cert, pai, &local)
           || !st_matter_name_ids (X509_get_subject_name (cert), "the DAC", &ids, &local))
    st_qa_check (qa, "matter-dac", FALSE, "%s", local->message);
  else if (!ids.has_vid || !ids.has_pid || ids.vid != pm->vendor_id || ids.pid != pm->product_id)
    st_qa_check (qa, "matter-dac", FALSE, "the DAC carries VID %04X PID %04X, the profile VID %04X PID %04X",
                 ids.vid, ids.pid, pm->vendor_id, pm->product_id);
  else
    st_qa_check (qa, "matter-dac", TRUE, "DAC of VID %04X PID %04X, PAI and PAA keep the Matter rules",
                 ids.vid, ids.pid);

  /* Slot 3: the profile's Certification Declaration. */
  g_clear_error (&local);
  g_autoptr(GBytes) slot3 = st_backend_read (be, ST_SLOT_MATTER_CD, &local);
  if (slot3 == NULL)
    st_qa_check (qa, "matter-cd", FALSE, "READ slot 3 failed: %s", local->message);
  else
    {
      g_clear_error (&local);
      g_autoptr(GBytes) cd = st_profile_load_certification_declaration (profile, &local);
      if (cd == NULL)
        st_qa_check (qa, "matter-cd", FALSE, "the profile's Certification Declaration cannot be read to "
                     "compare (%s): put the file back where the profile names it", local->message);
      else if (g_bytes_equal (slot3, cd))
        st_qa_check (qa, "matter-cd", TRUE, "slot 3 is the profile's Certification Declaration (%"
                     G_GSIZE_FORMAT " bytes)", g_bytes_get_size (slot3));
      else
        st_qa_check (qa, "matter-cd", FALSE, "slot 3 holds %" G_GSIZE_FORMAT " bytes that are not the "
                     "profile's Certification Declaration (%" G_GSIZE_FORMAT " bytes)",
                     g_bytes_get_size (slot3), g_bytes_get_size (cd));
    }

  /* Slot 4: the commissioning data record, parsed (the device's bytes are
   * hostile) and compared with the unit's record. */
  g_clear_error (&local);
  g_autoptr(StDbUnitMatter) rec = st_db_unit_matter_get (db, unit->id, &local);
  if (rec == NULL)
    {
      st_qa_check (qa, "matter-data", FALSE, "unit %" G_GINT64_FORMAT " has no Matter record: %s",
                   unit->id, local->message);
      if (code != NULL)
        st_qa_check (qa, "matter-code", FALSE, "no Matter record to compare the code with");
      return;
    }
  g_clear_error (&local);
  g_autoptr(GBytes) slot4 = st_backend_read (be, ST_SLOT_MATTER_DATA, &local);
  StMatterCommissioning c;
  gboolean parsed = FALSE;
  if (slot4 == NULL)
    st_qa_check (qa, "matter-data", FALSE, "READ slot 4 failed: %s", local->message);
  else
    {
      gsize len = 0;
      const guint8 *p = g_bytes_get_data (slot4, &len);
      g_clear_error (&local);
      parsed = st_matter_commissioning_parse (p, len, &c, &local);
      if (!parsed)
        st_qa_check (qa, "matter-data", FALSE, "slot 4 is no commissioning data record: %s", local->message);
      else
        {
          g_autofree gchar *diff = st_qa_matter_data_diff (&c, rec);
          if (*diff == '\0')
            st_qa_check (qa, "matter-data", TRUE, "discriminator %u, %u iterations, salt of %" G_GSIZE_FORMAT
                         " bytes%s: the unit's record", rec->discriminator, rec->iterations, c.salt_len,
                         c.rdid_unique_id_len > 0 ? ", rotating device id unique id" : "");
          else
            st_qa_check (qa, "matter-data", FALSE, "slot 4 differs from the unit's record in: %s", diff);
        }
    }
  /* The verifier the device holds is that of the recorded passcode (with
   * the device's salt and iterations, as a commissioner will use them). */
  if (!parsed)
    st_qa_check (qa, "matter-verifier", FALSE, "no verifier read from the device (slot 4 above)");
  else
    {
      g_clear_error (&local);
      gboolean ok = st_matter_spake2p_verifier_matches (c.verifier, sizeof c.verifier, rec->passcode, c.salt,
                                                        c.salt_len, c.iterations, &local);
      st_qa_check (qa, "matter-verifier", ok, "%s",
                   ok ? "the SPAKE2+ verifier on the device is that of the recorded setup passcode"
                      : local != NULL ? local->message
                                      : "the SPAKE2+ verifier on the device is NOT that of the recorded setup "
                                        "passcode: the label will not commission this device");
    }
  if (parsed)
    st_memwipe (&c, sizeof c);

  /* A scanned onboarding code: the unit's, field by field. */
  if (code != NULL)
    {
      g_autofree gchar *diff = NULL;
      const char *kind = "code";
      g_clear_error (&local);
      if (strlen (code) > ST_QA_MATTER_CODE_MAX)
        st_qa_check (qa, "matter-code", FALSE, "the code is longer than %d characters: no onboarding code",
                     ST_QA_MATTER_CODE_MAX);
      else if (!st_qa_matter_code_diff (code, rec, &diff, &kind, &local))
        st_qa_check (qa, "matter-code", FALSE, "the scanned %s is refused: %s", kind, local->message);
      else if (*diff == '\0')
        st_qa_check (qa, "matter-code", TRUE, "the scanned %s is this unit's", kind);
      else
        st_qa_check (qa, "matter-code", FALSE, "the scanned %s is not this unit's: it differs in %s", kind, diff);
    }
}

gboolean
st_qa_verify_unit (StDb *db, X509 *root, const char *port, const StLinkParams *params,
                   const char *matter_code, const char *operator_name, GString *report, GError **error)
{
  if (matter_code != NULL && *matter_code == '\0')
    matter_code = NULL;
  g_autoptr(StBackend) be = st_backend_new (port, params, NULL, error);
  if (be == NULL || !st_backend_open (be, error))
    return FALSE;
  StDeviceInfo info = { 0 };
  if (!st_backend_identify (be, &info, error))
    {
      g_prefix_error (error, _("no device answered on %s: "), port);
      return FALSE;
    }
  g_autofree gchar *uid = st_device_info_uid_hex (&info);
  g_autoptr(JsonBuilder) json = json_builder_new ();
  StQa qa = { .report = report, .json = json };
  json_builder_begin_object (json);
  json_builder_set_member_name (json, "port");
  json_builder_add_string_value (json, port);
  json_builder_set_member_name (json, "uid");
  json_builder_add_string_value (json, uid);

  /* The device names itself: its model and firmware reach the QA person
   * escaped (a model "X\nPASS" must not print a verdict of its own). */
  g_autofree gchar *model = st_text_escape (info.model, -1, ST_TEXT_ONE_LINE);
  g_autofree gchar *firmware = st_text_escape (info.fw_version[0] ? info.fw_version : "?", -1, ST_TEXT_ONE_LINE);
  g_string_append_printf (report, _("unit on %s: uid %s, model %s, firmware %s, state %d\n"),
                          port, uid, model, firmware, (int) info.state);
  /* The state TLV is optional; without it the slots and the record decide. */
  st_qa_check (&qa, "committed", info.state == ST_DEVICE_STATE_PROVISIONED ||
                                 info.state == ST_DEVICE_STATE_LOCKED ||
                                 info.state == ST_DEVICE_STATE_UNKNOWN,
               "device state %d (%s)", (int) info.state,
               info.state == ST_DEVICE_STATE_LOCKED ? "locked" :
               info.state == ST_DEVICE_STATE_PROVISIONED ? "provisioned" :
               info.state == ST_DEVICE_STATE_UNKNOWN ? "not reported by the device" : "not provisioned");

  g_autoptr(GError) local = NULL;
  g_autoptr(GBytes) slot1 = st_backend_read (be, ST_SLOT_CERT, &local);
  g_autoptr(X509) cert = NULL;
  if (slot1 == NULL)
    st_qa_check (&qa, "certificate", FALSE, "READ slot 1 failed: %s", local->message);
  else
    {
      gsize len = 0;
      const guint8 *p = g_bytes_get_data (slot1, &len);
      const guint8 *start = p;
      cert = len > 0 ? d2i_X509 (NULL, &p, (long) len) : NULL;
      if (cert != NULL && (gsize) (p - start) != len)
        g_clear_pointer (&cert, X509_free);
      st_error_clear_openssl ();
      g_autofree gchar *subject = cert != NULL ? st_x509_name_text (X509_get_subject_name (cert)) : NULL;
      st_qa_check (&qa, "certificate", cert != NULL, "%s", cert != NULL ? subject
                   : "slot 1 does not hold exactly one DER certificate");
    }
  g_clear_error (&local);
  g_autoptr(GBytes) slot2 = st_backend_read (be, ST_SLOT_CHAIN, &local);
  g_autoptr(StX509Stack) chain = NULL;
  if (slot2 == NULL)
    st_qa_check (&qa, "chain", FALSE, "READ slot 2 failed: %s", local->message);
  else
    {
      g_clear_error (&local);
      chain = st_chain_der_split (slot2, ST_QA_MAX_CHAIN, &local);
      if (chain == NULL)
        st_qa_check (&qa, "chain", FALSE, "slot 2: %s", local->message);
      else if (cert != NULL)
        {
          g_clear_error (&local);
          gboolean ok = st_verify_chain (cert, chain, root, &local);
          g_autofree gchar *anchor = st_x509_name_text (X509_get_subject_name (root));
          st_qa_check (&qa, "chain", ok, "%s", ok ? anchor : local->message);
        }
    }

  if (cert != NULL)
    {
      guint8 challenge[32];
      g_clear_error (&local);
      if (RAND_bytes (challenge, sizeof challenge) != 1)
        {
          st_error_set_openssl (error, ST_ERROR_INTERNAL, "RAND_bytes");
          return FALSE;
        }
      g_autoptr(GBytes) sig = st_backend_sign (be, challenge, &local);
      gboolean ok = sig != NULL && st_pop_verify (cert, challenge, sig, &local);
      st_qa_check (&qa, "proof-of-possession", ok, "%s",
                   ok ? "the device holds the certificate's key" : local->message);
    }

  /* The record. */
  g_clear_error (&local);
  g_autoptr(StDbUnit) unit = st_db_unit_find_live_by_uid (db, uid, &local);
  if (unit == NULL)
    st_qa_check (&qa, "record", FALSE, "no live certificate on record for uid %s", uid);
  else
    {
      gboolean same = slot1 != NULL && unit->cert_der != NULL && g_bytes_equal (slot1, unit->cert_der);
      gboolean disputed = g_strcmp0 (unit->cert_state, "disputed") == 0;
      st_qa_check (&qa, "record", same && g_strcmp0 (unit->state, "done") == 0,
                   "unit %" G_GINT64_FORMAT " of batch %" G_GINT64_FORMAT ", product serial %s, cert serial %s, state %s, "
                   "certificate %s%s%s",
                   unit->id, unit->batch_id, unit->product_serial, unit->cert_serial, unit->state,
                   unit->cert_state, same ? ", certificate bytes identical" : ", certificate bytes DIFFER",
                   disputed ? " (DISPUTED: a device with this uid did not hold it; a lead decides with "
                              "'station unit resolve')" : "");
      st_qa_matter (&qa, db, be, unit, cert, chain, root, matter_code);
    }
  if (unit == NULL && matter_code != NULL)
    st_qa_check (&qa, "matter-code", FALSE, "no unit on record to compare the code with");

  json_builder_set_member_name (json, "result");
  json_builder_add_string_value (json, qa.failures == 0 ? "pass" : "fail");
  json_builder_end_object (json);
  g_autoptr(JsonNode) node = json_builder_get_root (json);
  g_autofree gchar *payload = json_to_string (node, FALSE);
  if (!st_db_event_add (db, operator_name, "qa-verify-unit", payload, error))
    return FALSE;
  g_string_append_printf (report, "%s\n", qa.failures == 0 ? "PASS" : "FAIL");
  if (qa.failures > 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   ngettext ("unit %s failed %u QA check(s)", "unit %s failed %u QA check(s)", qa.failures),
                   uid, qa.failures);
      return FALSE;
    }
  return TRUE;
}

/* ---- QA's scan: a unit found by its code, checked on record ---- */

/* Which of the units a code names is the one QA holds: a live or revoked
 * certificate first, then any certificate, then the newest unit. */
static int
st_qa_unit_rank (const StDbUnit *u)
{
  const char *s = u->cert_state;
  if (g_strcmp0 (s, "active") == 0 || g_strcmp0 (s, "revoked") == 0 || g_strcmp0 (s, "unconfirmed") == 0
      || g_strcmp0 (s, "disputed") == 0 || g_strcmp0 (s, "issued") == 0 || g_strcmp0 (s, "issuing") == 0)
    return 2;
  return s != NULL ? 1 : 0;
}

static gboolean
st_qa_serial_equal (X509 *cert, const char *recorded)
{
  g_autoptr(BIGNUM) bn = ASN1_INTEGER_to_BN (X509_get0_serialNumber (cert), NULL);
  if (bn == NULL || recorded == NULL)
    return FALSE;
  char *hex = BN_bn2hex (bn);
  const char *a = hex, *b = recorded;
  while (*a == '0' && a[1] != '\0')
    a++;
  while (*b == '0' && b[1] != '\0')
    b++;
  gboolean same = g_ascii_strcasecmp (a, b) == 0;
  OPENSSL_free (hex);
  return same;
}

/* What the certificate's state means for the unit, for QA. */
static const char *
st_qa_cert_state_text (const char *state)
{
  if (g_strcmp0 (state, "active") == 0)
    return _("active");
  if (g_strcmp0 (state, "revoked") == 0)
    return _("REVOKED: the unit must not ship");
  if (g_strcmp0 (state, "unconfirmed") == 0)
    return _("unconfirmed: the device's commit went unanswered; put the unit in the QA socket and "
             "verify it");
  if (g_strcmp0 (state, "disputed") == 0)
    return _("disputed: a device with this uid did not hold it; a lead decides with 'station unit "
             "resolve'");
  if (g_strcmp0 (state, "voided") == 0)
    return _("voided: this certificate is not on any device; the unit was not provisioned with it");
  return _("not finished: the unit is still in the line or was interrupted");
}

StDbUnit *
st_qa_lookup_unit (StDb *db, X509 *root, STACK_OF (X509) *chain, const char *code,
                   gchar **work_order, gboolean *verified, GString *report, GError **error)
{
  *verified = FALSE;
  *work_order = NULL;
  g_autoptr(GPtrArray) units = st_db_unit_find_by_name (db, code, error);
  if (units == NULL)
    return NULL;
  const StDbUnit *u = NULL;
  for (guint i = 0; i < units->len; i++)
    {
      const StDbUnit *c = g_ptr_array_index (units, i);
      if (u == NULL || st_qa_unit_rank (c) >= st_qa_unit_rank (u))
        u = c; /* in id order: the newest of the best rank */
    }
  if (u == NULL)
    {
      g_autofree gchar *shown = st_text_escape (code != NULL ? code : "", -1, ST_TEXT_ONE_LINE);
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                   _("No unit on record has the product serial, uid or certificate serial '%s': check "
                     "the label and scan again."), shown);
      return NULL;
    }
  StManifestCheck c = { .report = report };
  g_autoptr(GError) local = NULL;
  g_autoptr(StDbBatch) batch = st_db_batch_get (db, u->batch_id, &local);
  *work_order = g_strdup (batch != NULL ? batch->work_order : "");
  g_string_append_printf (report, _("on record: unit %" PRId64 " of batch %" PRId64
                                    ", work order %s, uid %s, product serial %s\n"),
                          u->id, u->batch_id, batch != NULL ? batch->work_order : "?", u->uid,
                          u->product_serial != NULL ? u->product_serial : "-");
  if (batch == NULL)
    st_manifest_check (&c, FALSE, _("batch: %s"), local->message);
  st_manifest_check (&c, g_strcmp0 (u->state, "done") == 0, _("unit state: %s%s%s"), u->state,
                     u->fail_reason != NULL ? ", " : "", u->fail_reason != NULL ? u->fail_reason : "");
  if (u->cert_id == 0)
    st_manifest_check (&c, FALSE, _("certificate: none on record"));
  else
    st_manifest_check (&c, g_strcmp0 (u->cert_state, "active") == 0, _("certificate: serial %s, %s"),
                       u->cert_serial != NULL ? u->cert_serial : "?", st_qa_cert_state_text (u->cert_state));

  g_autoptr(X509) cert = NULL;
  if (u->cert_der != NULL)
    {
      gsize len = 0;
      const guint8 *p = g_bytes_get_data (u->cert_der, &len), *start = p;
      cert = len > 0 ? d2i_X509 (NULL, &p, (long) len) : NULL;
      if (cert != NULL && (gsize) (p - start) != len)
        g_clear_pointer (&cert, X509_free);
      st_error_clear_openssl ();
    }
  if (u->cert_id != 0 && cert == NULL)
    st_manifest_check (&c, FALSE, _("chain: the recorded certificate is not one DER certificate"));
  if (cert != NULL)
    {
      g_clear_error (&local);
      gboolean ok = st_verify_chain (cert, chain, root, &local);
      g_autofree gchar *anchor = st_x509_name_text (X509_get_subject_name (root));
      st_manifest_check (&c, ok, _("chain: %s"), ok ? anchor : local->message);
      const char *serial = u->cert_serial != NULL ? u->cert_serial : "?";
      if (st_qa_serial_equal (cert, u->cert_serial))
        st_manifest_check (&c, TRUE, _("serial: the certificate's serial is the recorded %s"), serial);
      else
        st_manifest_check (&c, FALSE, _("serial: the certificate's serial is not the recorded %s: the "
                                        "record was changed"), serial);
      g_clear_error (&local);
      g_autofree gchar *key = st_x509_pubkey_sha256_hex (cert, &local);
      const char *recorded = u->pubkey_sha256 != NULL ? u->pubkey_sha256 : "?";
      if (key != NULL && g_ascii_strcasecmp (key, recorded) == 0)
        st_manifest_check (&c, TRUE, _("key: the certificate's key is the one recorded (sha256 %.16s...)"),
                           recorded);
      else
        st_manifest_check (&c, FALSE, _("key: the certificate's key (sha256 %.16s...) is not the one "
                                        "recorded (sha256 %.16s...): the record was changed"),
                           key != NULL ? key : "?", recorded);
      g_autoptr(StProfile) profile = NULL;
      g_clear_error (&local);
      if (batch != NULL && batch->profile_text != NULL)
        profile = st_profile_load_from_data (batch->profile_text, strlen (batch->profile_text),
                                             batch->product, &local);
      if (profile == NULL)
        st_manifest_check (&c, FALSE, _("uid: the batch's profile does not load: %s"),
                           local != NULL ? local->message : _("the batch records none"));
      else
        {
          g_autoptr(StManifestProfile) names = st_manifest_profile_of (profile);
          gboolean checked = FALSE;
          guint before = c.failures;
          st_manifest_check_uid_of (&c, names, 0, u->uid, u->model, u->product_serial, cert, &checked);
          if (checked && c.failures == before)
            st_manifest_check (&c, TRUE, _("uid: the certificate's subject and subjectAltName are the "
                                           "profile's for uid %s"), u->uid);
        }
    }
  for (guint i = 0; i < units->len; i++)
    {
      const StDbUnit *o = g_ptr_array_index (units, i);
      if (o != u)
        g_string_append_printf (report, _("also on record with this code: unit %" PRId64 " of batch %"
                                          PRId64 ", %s, certificate %s\n"),
                                o->id, o->batch_id, o->state, o->cert_state != NULL ? o->cert_state : "none");
    }
  *verified = c.failures == 0;
  g_string_append_printf (report, "%s\n", *verified ? "PASS" : "FAIL");
  guint index = 0;
  g_ptr_array_find (units, u, &index);
  return g_ptr_array_steal_index (units, index);
}
