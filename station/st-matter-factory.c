/* The per-unit factory data of a Matter product (st-matter-factory.h;
 * docs/matter.md, "Factory data per unit"). */
#include "st-matter-factory.h"

#include <glib/gi18n.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <string.h>

#include "st-error.h"

#define ST_MATTER_FACTORY_DRAWS_MAX 64

StMatterUnitData *
st_matter_unit_data_new (void)
{
  return g_new0 (StMatterUnitData, 1);
}

static void
st_matter_wipe_string (gchar *s)
{
  if (s != NULL)
    OPENSSL_cleanse (s, strlen (s));
  g_free (s);
}

void
st_matter_unit_data_free (StMatterUnitData *data)
{
  if (data == NULL)
    return;
  st_matter_wipe_string (data->qr_text);
  st_matter_wipe_string (data->manual_code);
  OPENSSL_cleanse (data, sizeof *data);
  g_free (data);
}

void
st_matter_unit_data_payload (const StMatterUnitData *data, StMatterPayload *payload)
{
  memset (payload, 0, sizeof *payload);
  payload->version = 0;
  payload->vendor_id = data->vendor_id;
  payload->product_id = data->product_id;
  payload->flow = data->flow;
  payload->discovery = data->discovery;
  payload->discriminator = data->discriminator;
  payload->passcode = data->passcode;
}

/* A discriminator drawn uniformly from [@lo, @hi] with the CSPRNG: 16
 * bits, those at or above the largest multiple of the span drawn again,
 * so no value of the range is favoured. */
static gboolean
st_matter_discriminator_in_range (guint lo, guint hi, guint16 *out, GError **error)
{
  guint32 span = hi - lo + 1;
  guint32 limit = 65536u - 65536u % span;
  for (guint tries = 0; tries < ST_MATTER_FACTORY_DRAWS_MAX; tries++)
    {
      guint8 b[2];
      if (RAND_bytes (b, sizeof b) != 1)
        {
          st_error_set_openssl (error, ST_ERROR_INTERNAL,
                                _("Cannot draw a discriminator from the random generator"));
          return FALSE;
        }
      guint32 v = (guint32) b[0] | (guint32) b[1] << 8;
      if (v < limit)
        {
          *out = (guint16) (lo + v % span);
          return TRUE;
        }
    }
  g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL,
               _("The random generator gave %u discriminators out of range in a row: it is not "
                 "working; check the system's entropy source before going on."),
               ST_MATTER_FACTORY_DRAWS_MAX);
  return FALSE;
}

static gboolean
st_matter_factory_fill (const StProfileMatter *m, guint64 counter, StMatterUnitData *out,
                        GError **error)
{
  if (!m->enabled)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           _("The profile has no [matter] group, so its units get no Matter "
                             "factory data."));
      return FALSE;
    }
  if (m->discriminator_first > m->discriminator_last
      || m->discriminator_last > ST_MATTER_DISCRIMINATOR_MAX)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("The profile's [matter] discriminator-range %u-%u is not valid: give FIRST-LAST "
                     "from 0 to 4095, FIRST not above LAST."),
                   m->discriminator_first, m->discriminator_last);
      return FALSE;
    }
  if (m->rotating_id_length != 0 && (m->rotating_id_length < ST_MATTER_UNIQUE_ID_MIN
                                     || m->rotating_id_length > ST_MATTER_UNIQUE_ID_MAX))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("The profile's [matter] rotating-id-length %u is not valid: give 0 or 16 to 32."),
                   m->rotating_id_length);
      return FALSE;
    }
  if (!st_matter_spake2p_params_check (m->salt_length, m->pbkdf2_iterations, error))
    return FALSE;

  out->vendor_id = m->vendor_id;
  out->product_id = m->product_id;
  out->flow = m->commissioning_flow;
  out->discovery = m->discovery;
  out->iterations = m->pbkdf2_iterations;
  out->salt_len = m->salt_length;
  out->unique_id_len = m->rotating_id_length;

  if (m->discriminator == ST_MATTER_DISCRIMINATOR_SEQUENTIAL)
    {
      out->sequential = TRUE;
      out->counter = counter;
      if (!st_matter_discriminator_sequential (m->discriminator_first, m->discriminator_last,
                                               counter, &out->discriminator, error))
        return FALSE;
    }
  else if (!st_matter_discriminator_in_range (m->discriminator_first, m->discriminator_last,
                                              &out->discriminator, error))
    return FALSE;

  if (!st_matter_passcode_generate (&out->passcode, error)
      || !st_matter_spake2p_salt_generate (out->salt, out->salt_len, error)
      || !st_matter_spake2p_verifier (out->passcode, out->salt, out->salt_len, out->iterations,
                                      out->verifier, error))
    return FALSE;
  if (out->unique_id_len > 0 && RAND_bytes (out->unique_id, (int) out->unique_id_len) != 1)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL,
                            _("Cannot draw the rotating device id's unique id from the random generator"));
      return FALSE;
    }

  StMatterPayload payload;
  st_matter_unit_data_payload (out, &payload);
  out->qr_text = st_matter_qr_encode (&payload, error);
  if (out->qr_text != NULL)
    out->manual_code = st_matter_manual_encode (&payload, error);
  OPENSSL_cleanse (&payload, sizeof payload);
  return out->qr_text != NULL && out->manual_code != NULL;
}

gboolean
st_matter_unit_data_generate (const StProfileMatter *m, guint64 discriminator_counter,
                              StMatterUnitData *out, GError **error)
{
  g_return_val_if_fail (m != NULL && out != NULL, FALSE);
  if (st_matter_factory_fill (m, discriminator_counter, out, error))
    return TRUE;
  /* nothing secret stays behind a failure */
  st_matter_wipe_string (out->qr_text);
  st_matter_wipe_string (out->manual_code);
  OPENSSL_cleanse (out, sizeof *out);
  g_prefix_error (error, _("Cannot make the Matter factory data of the unit: "));
  return FALSE;
}

static gboolean
st_matter_payload_equal (const StMatterPayload *a, const StMatterPayload *b)
{
  return a->version == b->version && a->vendor_id == b->vendor_id
         && a->product_id == b->product_id && a->flow == b->flow
         && a->discovery == b->discovery && a->discriminator == b->discriminator
         && a->passcode == b->passcode;
}

gboolean
st_matter_unit_data_check (const StMatterUnitData *data, GError **error)
{
  if (data->discriminator > ST_MATTER_DISCRIMINATOR_MAX || data->flow > ST_MATTER_FLOW_CUSTOM
      || data->discovery == 0 || (data->discovery & ~0x07u) != 0
      || (data->unique_id_len != 0 && (data->unique_id_len < ST_MATTER_UNIQUE_ID_MIN
                                       || data->unique_id_len > ST_MATTER_UNIQUE_ID_MAX)))
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                           _("The Matter record has a field out of range (discriminator, commissioning "
                             "flow, discovery or unique id length): it was not written by this station."));
      return FALSE;
    }
  g_autoptr(GError) local = NULL;
  if (!st_matter_spake2p_verifier_matches (data->verifier, sizeof data->verifier, data->passcode,
                                           data->salt, data->salt_len, data->iterations, &local))
    {
      if (local != NULL)
        g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                     _("The Matter record's verifier cannot be checked: %s"), local->message);
      else
        g_set_error_literal (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                             _("The Matter record's SPAKE2+ verifier is not the one of its passcode, salt "
                               "and iterations."));
      return FALSE;
    }
  StMatterPayload p, parsed;
  StMatterManualCode manual;
  st_matter_unit_data_payload (data, &p);
  gboolean qr_ok = data->qr_text != NULL
                   && st_matter_qr_parse (data->qr_text, strlen (data->qr_text), &parsed, NULL)
                   && st_matter_payload_equal (&parsed, &p);
  gboolean manual_ok = data->manual_code != NULL
                       && st_matter_manual_parse (data->manual_code, strlen (data->manual_code),
                                                  &manual, NULL)
                       && st_matter_manual_matches (&manual, &p)
                       && manual.has_vid_pid == (data->flow != ST_MATTER_FLOW_STANDARD);
  OPENSSL_cleanse (&p, sizeof p);
  OPENSSL_cleanse (&parsed, sizeof parsed);
  OPENSSL_cleanse (&manual, sizeof manual);
  if (!qr_ok || !manual_ok)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                           qr_ok ? _("The Matter record's manual pairing code does not carry its passcode and discriminator.")
                                 : _("The Matter record's QR text does not carry its fields."));
      return FALSE;
    }
  return TRUE;
}
