#include "st-qa.h"

#include <glib/gi18n.h>

#include <json-glib/json-glib.h>
#include <openssl/rand.h>

#include "st-error.h"
#include "st-ossl.h"
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

gboolean
st_qa_verify_unit (StDb *db, X509 *root, const char *port, const StLinkParams *params,
                   const char *operator_name, GString *report, GError **error)
{
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
    }

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
