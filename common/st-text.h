/* Text from a device, made safe to show a person.
 *
 * A device names itself (HELLO's model and firmware version, a passive
 * device's blob, what it answers), and whatever it sends reaches a
 * terminal, a GUI label, a log line or a spreadsheet. st_text_escape() is
 * the one function that turns such a string into printable text: every
 * place that shows a device string to a person passes it through here
 * first. The database keeps the bytes as the device sent them. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  /* One line: every control character is escaped, the newline too. */
  ST_TEXT_ONE_LINE = 0,
  /* A text of several lines the station wrote (a QA report): '\n' stays a
   * line break, every other control character is escaped. */
  ST_TEXT_KEEP_NEWLINES = 1 << 0,
  /* A spreadsheet cell: as ST_TEXT_ONE_LINE, and a cell that would start
   * with '=', '+', '-', '@', a tab or a carriage return (a formula to
   * Excel or LibreOffice) starts with a "'" instead. */
  ST_TEXT_CSV_CELL = 1 << 1,
} StTextFlags;

/* @s (@len bytes, or up to its NUL when @len < 0) as printable UTF-8:
 * C0 controls, DEL and C1 controls as \xNN of their bytes (ESC is \x1b,
 * U+009B is \xc2\x9b), each byte that is not part of valid UTF-8 as \xNN,
 * invisible format characters that reorder or hide text (bidi overrides,
 * zero-width characters) and the Unicode line and paragraph separators as
 * \uNNNN; printable UTF-8 stays as it is. A backslash is not doubled: the
 * result is meant for a person, not to be parsed back, and escaping it
 * again changes nothing, so the service and its clients can both apply it.
 * NULL for NULL. */
gchar *st_text_escape (const char *s, gssize len, StTextFlags flags) G_GNUC_MALLOC;

G_END_DECLS
