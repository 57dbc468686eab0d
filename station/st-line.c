#include "st-line-private.h"

#include <glib/gi18n.h>
#include <inttypes.h>

#include "st-error.h"
#include "st-ossl.h"
#include "st-util.h"
#include "st-matter-cd.h"
#include "st-verify.h"

StLine *
st_line_new (StConfig *config, StCa *ca, StDb *db, gint64 batch_id,
             const char *operator_name, GError **error)
{
  g_autoptr(StLine) line = g_new0 (StLine, 1);
  g_mutex_init (&line->lock);
  line->config = config;
  line->ca = ca;
  line->db = db;
  line->operator_name = g_strdup (operator_name);
  line->pending = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  line->batch = st_db_batch_get (db, batch_id, error);
  if (line->batch == NULL)
    return NULL;
  if (g_strcmp0 (line->batch->state, "open") != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                   _("batch %" PRId64 " (%s) is closed: ask the shift lead for an open batch"),
                   batch_id, line->batch->work_order);
      return NULL;
    }
  g_autofree gchar *name = g_strdup_printf (_("batch %" PRId64 " profile (%s)"),
                                            batch_id, line->batch->product);
  line->profile = st_profile_load_from_data (line->batch->profile_text,
                                             strlen (line->batch->profile_text), name, error);
  if (line->profile == NULL)
    return NULL;

  guint8 *der = NULL;
  int der_len = i2d_X509 (ca->ca_cert, &der);
  if (der_len <= 0)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "cannot encode the issuing CA certificate");
      return NULL;
    }
  line->issuer_hash = st_sha256_hex (der, (gsize) der_len);
  OPENSSL_free (der);
  line->chain_der = st_chain_der_concat (ca->chain);
  if (line->chain_der == NULL)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INTERNAL, _("cannot encode the CA chain"));
      return NULL;
    }

  /* A mismatched firmware image is refused before any device is touched. */
  if (line->profile->firmware_image != NULL)
    {
      line->firmware = st_profile_load_firmware (line->profile, error);
      if (line->firmware == NULL)
        return NULL;
    }
  /* A Matter product's Certification Declaration, read once for the
   * line: a file that is missing, no CMS SignedData, unreadable as a CD or
   * a CD of another vendor or product stops the line before any device is
   * touched (st_matter_cd_load_for_profile). */
  if (line->profile->matter.enabled)
    {
      g_autoptr(GError) local = NULL;
      line->matter_cd = st_matter_cd_load_for_profile (line->profile, line->ca->root, &line->matter_cd_note, &local);
      if (line->matter_cd == NULL && local->domain == ST_ERROR && local->code != ST_ERROR_NOT_FOUND
          && local->code != ST_ERROR_READ)
        {
          /* the batch's set-up, not a unit's check */
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, _("the line cannot start: %s"), local->message);
          return NULL;
        }
      if (line->matter_cd == NULL)
        {
          g_set_error (error, ST_ERROR, local->code,
                       _("the line cannot start: %s. Put the Certification Declaration file back where "
                         "the batch's profile names it, readable by the station service (a relative "
                         "path is taken from the service's working directory)"), local->message);
          return NULL;
        }
    }
  return g_steal_pointer (&line);
}

void
st_line_free (StLine *line)
{
  if (line == NULL)
    return;
  st_db_batch_free (line->batch);
  st_profile_free (line->profile);
  g_free (line->operator_name);
  g_free (line->issuer_hash);
  g_clear_pointer (&line->chain_der, g_bytes_unref);
  g_clear_pointer (&line->firmware, g_bytes_unref);
  g_clear_pointer (&line->matter_cd, g_bytes_unref);
  g_free (line->matter_cd_note);
  g_clear_pointer (&line->pending, g_hash_table_unref);
  g_free (line->stop_reason);
  g_mutex_clear (&line->lock);
  g_free (line);
}

void
st_line_set_cancellable (StLine *line, GCancellable *cancellable)
{
  line->cancellable = cancellable;
}

GCancellable *
st_line_get_cancellable (StLine *line)
{
  return line->cancellable;
}

void
st_line_set_allow_reprovision (StLine *line, gboolean allow_reprovision)
{
  line->allow_reprovision = allow_reprovision;
}

gboolean
st_line_get_allow_reprovision (StLine *line)
{
  return line->allow_reprovision;
}

void
st_line_set_callbacks (StLine *line, StUnitStepFunc step_func, StUnitNoticeFunc notice_func,
                       gpointer user_data)
{
  line->step_func = step_func;
  line->notice_func = notice_func;
  line->step_data = user_data;
}

const StProfile *
st_line_get_profile (StLine *line)
{
  return line->profile;
}

gint64
st_line_get_batch_id (StLine *line)
{
  return line->batch->id;
}

void
st_line_stop (StLine *line, const GError *error)
{
  g_mutex_lock (&line->lock);
  if (line->stop_reason == NULL)
    line->stop_reason = g_strdup (error->message);
  g_mutex_unlock (&line->lock);
  if (line->cancellable != NULL)
    g_cancellable_cancel (line->cancellable);
}

gchar *
st_line_dup_stop_reason (StLine *line)
{
  g_mutex_lock (&line->lock);
  gchar *r = g_strdup (line->stop_reason);
  g_mutex_unlock (&line->lock);
  return r;
}

gboolean
st_line_recover (StLine *line, GString *report, GError **error)
{
  g_autoptr(GPtrArray) units = st_db_unit_list_unfinished (line->db, error);
  if (units == NULL)
    return FALSE;
  for (guint i = 0; i < units->len; i++)
    {
      StDbUnit *unit = g_ptr_array_index (units, i);
      if (g_strcmp0 (unit->state, "issued") == 0)
        {
          /* The certificate may be on the device: keep it, unconfirmed,
           * until the device is seen again. */
          if (g_strcmp0 (unit->cert_state, "unconfirmed") != 0 &&
              !st_db_cert_set_state (line->db, unit->cert_id, "unconfirmed",
                                     "interrupted after issuance; waiting for the device", error))
            return FALSE;
          if (report != NULL)
            g_string_append_printf (report,
                                    _("unit %" PRId64 " (uid %s, serial %s) was interrupted after its certificate was issued: "
                                    "it stays unconfirmed until the device is seen again\n"),
                                    unit->id, unit->uid, unit->cert_serial);
          /* its device finishes it when it comes (st_line_take_pending) */
          continue;
        }
      /* 'started' or 'issuing': the certificate, if any, was never written
       * (writing starts only once it is recorded as issued). */
      const char *reason = g_strcmp0 (unit->state, "issuing") == 0
                             ? "interrupted before its certificate was recorded; the reserved certificate is voided"
                             : "interrupted before a certificate was issued";
      if (!st_db_unit_fail (line->db, unit->id, st_unit_step_to_string (ST_UNIT_STEP_INTERRUPTED),
                            reason, NULL, ST_DB_CERT_VOID, error))
        return FALSE;
      if (report != NULL)
        g_string_append_printf (report, _("unit %" PRId64 " (uid %s): %s\n"),
                                unit->id, unit->uid, reason);
    }
  return TRUE;
}

gboolean
st_line_take_pending (StLine *line, const char *uid_hex, StDbUnit **out, gboolean *busy,
                      StDbUnit **live, gboolean *looked, GError **error)
{
  *out = NULL;
  *live = NULL;
  *looked = FALSE;
  g_mutex_lock (&line->lock);
  *busy = g_hash_table_contains (line->pending, uid_hex);
  g_mutex_unlock (&line->lock);
  if (*busy)
    return TRUE;

  g_autoptr(GError) local = NULL;
  g_autoptr(StDbUnit) known = st_db_unit_find_live_by_uid (line->db, uid_hex, &local);
  if (known == NULL)
    {
      *looked = g_error_matches (local, ST_ERROR, ST_ERROR_NOT_FOUND);
      if (*looked)
        return TRUE;
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  if (known->batch_id != line->batch->id || g_strcmp0 (known->cert_state, "unconfirmed") != 0 ||
      (g_strcmp0 (known->state, "failed") != 0 && g_strcmp0 (known->state, "issued") != 0))
    {
      /* not one to resume: the identify check uses what was found */
      *looked = TRUE;
      *live = g_steal_pointer (&known);
      return TRUE;
    }
  g_mutex_lock (&line->lock);
  *busy = !g_hash_table_add (line->pending, g_strdup (uid_hex));
  g_mutex_unlock (&line->lock);
  if (!*busy)
    *out = g_steal_pointer (&known);
  return TRUE;
}

void
st_line_release_pending (StLine *line, const char *uid_hex)
{
  g_mutex_lock (&line->lock);
  g_hash_table_remove (line->pending, uid_hex);
  g_mutex_unlock (&line->lock);
}

const char *
st_line_get_matter_cd_note (StLine *line)
{
  g_return_val_if_fail (line != NULL, NULL);
  return line->matter_cd_note;
}
