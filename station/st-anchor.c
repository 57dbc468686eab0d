/* The audit anchor in the HSM (st-anchor.h). */
#include "st-anchor.h"

#include <glib/gi18n.h>
#include <inttypes.h>

#include <stdlib.h>
#include <string.h>

#include "st-error.h"

gchar *
st_anchor_format (const char *station_id, gint64 seq, const char *hash)
{
  return g_strdup_printf ("station-audit-anchor/1\nstation=%s\nseq=%" G_GINT64_FORMAT "\nhash=%s\n",
                          station_id, seq, hash);
}

gboolean
st_anchor_parse (const guint8 *data, gsize len, gchar **station_id, gint64 *seq, gchar **hash)
{
  if (data == NULL || len == 0 || len > ST_ANCHOR_MAX || memchr (data, '\0', len) != NULL)
    return FALSE;
  g_autofree gchar *text = g_strndup ((const char *) data, len);
  if (!g_str_has_suffix (text, "\n"))
    return FALSE;
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  /* four lines and the empty string after the last newline */
  if (g_strv_length (lines) != 5 || strcmp (lines[0], "station-audit-anchor/1") != 0
      || !g_str_has_prefix (lines[1], "station=") || !g_str_has_prefix (lines[2], "seq=")
      || !g_str_has_prefix (lines[3], "hash=") || lines[4][0] != '\0')
    return FALSE;
  const char *seq_s = lines[2] + 4, *hash_s = lines[3] + 5;
  gchar *end = NULL;
  guint64 v = g_ascii_strtoull (seq_s, &end, 10);
  if (*seq_s == '\0' || *end != '\0' || v == 0 || v > G_MAXINT64 || strlen (hash_s) != 64
      || strspn (hash_s, "0123456789abcdef") != 64)
    return FALSE;
  *station_id = g_strdup (lines[1] + 8);
  *seq = (gint64) v;
  *hash = g_strdup (hash_s);
  return TRUE;
}

gboolean
st_anchor_read (StHsm *hsm, const char *station_id, gint64 *seq, gchar **hash, GError **error)
{
  *seq = 0;
  *hash = NULL;
  g_autoptr(GPtrArray) values = st_hsm_data_read (hsm, ST_ANCHOR_LABEL, ST_ANCHOR_MAX, error);
  if (values == NULL)
    {
      g_prefix_error (error, _("cannot read the audit anchor from the HSM: "));
      return FALSE;
    }
  for (guint i = 0; i < values->len; i++)
    {
      gsize len = 0;
      const guint8 *data = g_bytes_get_data (g_ptr_array_index (values, i), &len);
      g_autofree gchar *id = NULL, *h = NULL;
      gint64 s = 0;
      if (!st_anchor_parse (data, len, &id, &s, &h))
        {
          g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                       _("the HSM holds an audit anchor object that is not one the station wrote"));
          return FALSE;
        }
      if (g_strcmp0 (id, station_id) == 0 && s > *seq)
        {
          *seq = s;
          g_free (*hash);
          *hash = g_steal_pointer (&h);
        }
    }
  return TRUE;
}

/* Whether the log holds entry @seq with @hash; *@found_hash is what it
 * holds there (NULL: no such entry). */
static gboolean
st_anchor_log_has (StDb *db, gint64 seq, const char *hash, gchar **found_hash, gboolean *holds,
                   GError **error)
{
  *holds = FALSE;
  g_autoptr(GError) local = NULL;
  g_autoptr(StDbAuditEntry) e = st_db_audit_get (db, seq, &local);
  if (e == NULL)
    {
      if (!g_error_matches (local, ST_ERROR, ST_ERROR_NOT_FOUND))
        {
          g_propagate_error (error, g_steal_pointer (&local));
          return FALSE;
        }
      return TRUE;
    }
  *holds = g_strcmp0 (e->hash, hash) == 0;
  if (found_hash != NULL)
    *found_hash = g_strdup (e->hash);
  return TRUE;
}

gboolean
st_anchor_advance (StHsm *hsm, StDb *db, const char *station_id, gint64 seq, const char *hash,
                   GError **error)
{
  gint64 at = 0;
  g_autofree gchar *anchored = NULL;
  if (!st_anchor_read (hsm, station_id, &at, &anchored, error))
    return FALSE;
  if (at == seq && g_strcmp0 (anchored, hash) == 0)
    return TRUE;
  if (at > 0)
    {
      gboolean holds = FALSE;
      if (!st_anchor_log_has (db, at, anchored, NULL, &holds, error))
        return FALSE;
      if (!holds || at > seq)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                       _("the audit log no longer holds entry %" PRId64 " as the HSM anchored "
                       "it: the database was truncated, rewritten or restored from an older copy; the "
                       "anchor stays where it is: run 'station audit verify' and call the auditor"), at);
          return FALSE;
        }
    }
  g_autofree gchar *text = st_anchor_format (station_id, seq, hash);
  g_autoptr(GBytes) value = g_bytes_new (text, strlen (text));
  if (!st_hsm_data_replace (hsm, ST_ANCHOR_LABEL, value, error))
    {
      g_prefix_error (error, _("cannot write the audit anchor into the HSM: "));
      return FALSE;
    }
  return TRUE;
}

gboolean
st_anchor_check (StHsm *hsm, StDb *db, const char *station_id, GString *report, GError **error)
{
  gint64 at = 0;
  g_autofree gchar *anchored = NULL;
  if (!st_anchor_read (hsm, station_id, &at, &anchored, error))
    return FALSE;
  if (at == 0)
    {
      g_autoptr(GError) local = NULL;
      g_autoptr(StDbAuditCheckpoint) cp = st_db_audit_checkpoint_latest (db, &local);
      if (cp == NULL && g_error_matches (local, ST_ERROR, ST_ERROR_NOT_FOUND))
        {
          g_string_append (report, _("HSM anchor: none yet (the log has no signed checkpoint)\n"));
          return TRUE;
        }
      if (cp == NULL)
        {
          g_propagate_error (error, g_steal_pointer (&local));
          return FALSE;
        }
      g_string_append (report, _("HSM anchor: FAILED: the HSM holds no anchor although the log has signed "
                               "checkpoints (a station older than the anchor writes one at its next "
                               "checkpoint)\n"));
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED, _("the HSM holds no audit anchor"));
      return FALSE;
    }
  gboolean holds = FALSE;
  g_autofree gchar *found = NULL;
  if (!st_anchor_log_has (db, at, anchored, &found, &holds, error))
    return FALSE;
  if (holds)
    {
      g_string_append_printf (report, _("HSM anchor: ok (the log holds entry %" PRId64
                              ", the latest the HSM anchored)\n"), at);
      return TRUE;
    }
  gint64 head = 0;
  g_autofree gchar *head_hash = NULL;
  if (!st_db_audit_head (db, &head, &head_hash, error))
    return FALSE;
  if (found == NULL)
    g_string_append_printf (report, _("HSM anchor: FAILED: the HSM anchored entry %" PRId64
                            ", but the log ends at entry %" PRId64 ": it was truncated or "
                            "restored from an older copy\n"), at, head);
  else
    g_string_append_printf (report, _("HSM anchor: FAILED: entry %" PRId64 " is not the one the "
                            "HSM anchored (hash %.16s…, the HSM says %.16s…): the log was rewritten or "
                            "restored from an older copy and continued\n"), at, found, anchored);
  g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
               _("the audit log does not hold the entry the HSM anchored"));
  return FALSE;
}
