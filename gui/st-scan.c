#include "st-scan.h"

#include <string.h>

#include <glib/gi18n.h>

#include "st-text.h"

/* How much of a refused scan a message quotes, in characters. */
#define ST_SCAN_QUOTE 40

void
st_scan_entry_setup (GtkEntry *entry, const char *name)
{
  gtk_entry_set_max_length (entry, ST_SCAN_MAX_INPUT);
  st_gui_name (GTK_WIDGET (entry), name);
}

/* The start of @text, escaped, for a message: at most ST_SCAN_QUOTE
 * characters of it (bytes, when it is not UTF-8), then "…". */
static gchar *
st_scan_quote (const char *text)
{
  gsize len = strlen (text);
  gboolean cut = FALSE;
  if (g_utf8_validate (text, -1, NULL))
    {
      if (g_utf8_strlen (text, -1) > ST_SCAN_QUOTE)
        {
          len = (gsize) (g_utf8_offset_to_pointer (text, ST_SCAN_QUOTE) - text);
          cut = TRUE;
        }
    }
  else if (len > ST_SCAN_QUOTE)
    {
      len = ST_SCAN_QUOTE;
      cut = TRUE;
    }
  g_autofree gchar *safe = st_text_escape (text, (gssize) len, ST_TEXT_ONE_LINE);
  return cut ? g_strconcat (safe, "…", NULL) : g_steal_pointer (&safe);
}

/* A control or invisible format character, or a line or paragraph
 * separator: refused in any code. */
static gboolean
st_scan_is_control (gunichar c)
{
  return g_unichar_iscntrl (c) || g_unichar_type (c) == G_UNICODE_FORMAT || c == 0x2028 || c == 0x2029;
}

/* A Matter onboarding code encodes the setup passcode: checked as any
 * scan, but a refusal says what is wrong without quoting it. Takes @code. */
static gchar *
st_scan_read_matter (gchar *code, gchar **message)
{
  g_autofree gchar *owned = code;
  if (!g_utf8_validate (code, -1, NULL))
    {
      *message = g_strdup (_("The scanned Matter code is not valid text: check the scanner's keyboard layout "
                             "and scan the unit's Matter QR code again."));
      return NULL;
    }
  glong n = g_utf8_strlen (code, -1);
  if (n > ST_SCAN_MAX_CODE)
    {
      *message = g_strdup_printf (_("The scanned Matter code is %ld characters long, more than the %d a code "
                                    "can have: scan the unit's Matter QR code again."), n, ST_SCAN_MAX_CODE);
      return NULL;
    }
  for (const char *p = code; *p != '\0'; p = g_utf8_next_char (p))
    if (st_scan_is_control (g_utf8_get_char (p)))
      {
        *message = g_strdup (_("The scanned Matter code holds control characters: set the scanner to send "
                               "the code alone, then scan again."));
        return NULL;
      }
  return g_steal_pointer (&owned);
}

gchar *
st_scan_read (const char *text, StScanKind kind, gchar **message)
{
  g_return_val_if_fail (message != NULL && *message == NULL, NULL);
  gboolean wo = kind == ST_SCAN_WORK_ORDER;
  if (text == NULL)
    text = "";
  /* A scanner may add a blank or a carriage return before its Enter; a
   * control character anywhere else is refused, not dropped: the code
   * would not be what was printed on the label. */
  const char *start = text, *end = text + strlen (text);
  while (start < end && (*start == ' ' || *start == '\t' || *start == '\r' || *start == '\n'))
    start++;
  while (end > start && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
    end--;
  g_autofree gchar *code = g_strndup (start, (gsize) (end - start));
  if (*code == '\0')
    {
      *message = g_strdup (kind == ST_SCAN_MATTER_CODE
                           ? _("Nothing was scanned: scan the unit's Matter QR code again, or type its manual "
                               "pairing code and press Enter.")
                           : wo ? _("Nothing was scanned: scan the work order again, or type it and press Enter.")
                                : _("Nothing was scanned: scan the unit's product serial or uid again, or type "
                                    "it and press Enter."));
      return NULL;
    }
  if (kind == ST_SCAN_MATTER_CODE)
    return st_scan_read_matter (g_steal_pointer (&code), message);
  g_autofree gchar *quoted = st_scan_quote (code);
  if (!g_utf8_validate (code, -1, NULL))
    {
      *message = wo ? g_strdup_printf (_("The scanned work order '%s' is not valid text: check the scanner's "
                                         "keyboard layout and scan again."), quoted)
                    : g_strdup_printf (_("The scanned unit code '%s' is not valid text: check the scanner's "
                                         "keyboard layout and scan again."), quoted);
      return NULL;
    }
  glong n = g_utf8_strlen (code, -1);
  if (n > ST_SCAN_MAX_CODE)
    {
      *message = wo ? g_strdup_printf (_("The scanned work order '%s' is %ld characters long, more than the %d "
                                         "a code can have: scan the work order's label again."), quoted, n,
                                       ST_SCAN_MAX_CODE)
                    : g_strdup_printf (_("The scanned unit code '%s' is %ld characters long, more than the %d "
                                         "a code can have: scan the unit's label again."), quoted, n,
                                       ST_SCAN_MAX_CODE);
      return NULL;
    }
  for (const char *p = code; *p != '\0'; p = g_utf8_next_char (p))
    {
      if (st_scan_is_control (g_utf8_get_char (p)))
        {
          *message = wo ? g_strdup_printf (_("The scanned work order '%s' holds control characters: set the "
                                             "scanner to send the code alone, then scan again."), quoted)
                        : g_strdup_printf (_("The scanned unit code '%s' holds control characters: set the "
                                             "scanner to send the code alone, then scan again."), quoted);
          return NULL;
        }
    }
  return g_steal_pointer (&code);
}

StBatchInfo *
st_scan_find_batch (GPtrArray *batches, const char *work_order, gboolean closed_too)
{
  StBatchInfo *open = NULL, *closed = NULL;
  for (guint i = 0; batches != NULL && i < batches->len; i++)
    {
      StBatchInfo *b = g_ptr_array_index (batches, i);
      if (g_strcmp0 (b->work_order, work_order) != 0)
        continue;
      if (g_strcmp0 (b->state, "open") == 0)
        {
          if (open == NULL || b->id > open->id)
            open = b;
        }
      else if (closed == NULL || b->id > closed->id)
        closed = b;
    }
  return open != NULL ? open : closed_too ? closed : NULL;
}

gchar *
st_scan_no_batch_message (const char *work_order, gboolean closed_too)
{
  g_autofree gchar *quoted = st_scan_quote (work_order);
  return closed_too
         ? g_strdup_printf (_("No batch has the work order '%s': scan again, or create the batch."), quoted)
         : g_strdup_printf (_("No open batch has the work order '%s': scan again, or ask the shift "
                              "lead to create it."), quoted);
}

StBatchInfo *
st_scan_batch_from_entry (GtkEntry *entry, GPtrArray *batches, gboolean closed_too, gchar **message)
{
  g_autofree gchar *wo = st_scan_read (gtk_entry_get_text (entry), ST_SCAN_WORK_ORDER, message);
  StBatchInfo *b = wo != NULL ? st_scan_find_batch (batches, wo, closed_too) : NULL;
  if (wo != NULL && b == NULL)
    *message = st_scan_no_batch_message (wo, closed_too);
  if (b != NULL)
    gtk_entry_set_text (entry, "");
  else
    gtk_editable_select_region (GTK_EDITABLE (entry), 0, -1);
  return b;
}
