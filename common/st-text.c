#include "st-text.h"

#include <string.h>

/* Characters that print nothing, or that move or hide the text around them:
 * controls (C0, DEL, C1: Cc), format characters (Cf: bidi embeddings and
 * overrides, zero-width joiners and spaces, the BOM), and the Unicode line
 * and paragraph separators. */
static gboolean
st_text_is_hidden (gunichar ch)
{
  switch (g_unichar_type (ch))
    {
    case G_UNICODE_CONTROL:
    case G_UNICODE_FORMAT:
    case G_UNICODE_LINE_SEPARATOR:
    case G_UNICODE_PARAGRAPH_SEPARATOR:
      return TRUE;
    default:
      return FALSE;
    }
}

static void
st_text_append_bytes (GString *out, const char *p, gsize n)
{
  for (gsize i = 0; i < n; i++)
    g_string_append_printf (out, "\\x%02x", (guchar) p[i]);
}

gchar *
st_text_escape (const char *s, gssize len, StTextFlags flags)
{
  if (s == NULL)
    return NULL;
  gsize n = len < 0 ? strlen (s) : (gsize) len;
  GString *out = g_string_sized_new (n + 1);
  static const char formula[] = { '=', '+', '-', '@', '\t', '\r' };
  if ((flags & ST_TEXT_CSV_CELL) != 0 && n > 0 && memchr (formula, s[0], sizeof formula) != NULL)
    g_string_append_c (out, '\'');

  const char *p = s, *end = s + n;
  while (p < end)
    {
      guchar c = (guchar) *p;
      if (c < 0x80)
        {
          if (c == '\n' && (flags & ST_TEXT_KEEP_NEWLINES) != 0 && (flags & ST_TEXT_CSV_CELL) == 0)
            g_string_append_c (out, '\n');
          else if (c < 0x20 || c == 0x7f)
            st_text_append_bytes (out, p, 1);
          else
            g_string_append_c (out, (gchar) c);
          p++;
          continue;
        }
      gunichar ch = g_utf8_get_char_validated (p, end - p);
      if (ch == (gunichar) -1 || ch == (gunichar) -2)
        {
          st_text_append_bytes (out, p, 1);
          p++;
          continue;
        }
      const char *next = g_utf8_next_char (p);
      if (!st_text_is_hidden (ch))
        g_string_append_len (out, p, next - p);
      else if (g_unichar_type (ch) == G_UNICODE_CONTROL)
        st_text_append_bytes (out, p, (gsize) (next - p));
      else if (ch <= 0xffff)
        g_string_append_printf (out, "\\u%04x", ch);
      else
        g_string_append_printf (out, "\\U%08x", ch);
      p = next;
    }
  return g_string_free (out, FALSE);
}
