/* Matter device labels (docs/matter.md, "Labels"): the onboarding QR code,
 * the manual pairing code and the product serial, optionally the product
 * name, rendered to PNG and PDF through cairo and to ZPL for thermal label
 * printers.
 *
 * The texts come in as strings (the onboarding payload encoder makes the
 * QR text and the manual code; the serial comes from the unit, the name
 * from the profile): every one is checked here before it is drawn or
 * written into ZPL, and a text that cannot go onto a label as it is
 * (control or invisible characters, invalid UTF-8, too long) is refused,
 * never cut. What may reach ZPL besides is escaped with ^FH hex escapes. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The longest QR text accepted (a Matter payload with its optional TLV
 * data stays well below it). */
#define ST_LABEL_QR_TEXT_MAX 256
/* The longest serial or product name, in bytes of UTF-8. */
#define ST_LABEL_TEXT_MAX 64

/* The label's size and resolutions. */
#define ST_LABEL_MM_MIN 15.0
#define ST_LABEL_MM_MAX 200.0
#define ST_LABEL_PNG_DPI_MIN 150
#define ST_LABEL_PNG_DPI_MAX 1200
#define ST_LABEL_DEFAULT_WIDTH_MM 50.0
#define ST_LABEL_DEFAULT_HEIGHT_MM 25.0
#define ST_LABEL_DEFAULT_PNG_DPI 300
#define ST_LABEL_DEFAULT_ZPL_DPI 203

/* What goes onto one unit's label. */
typedef struct {
  /* The onboarding QR text, "MT:" and the base-38 payload: only characters
   * of the QR alphanumeric set (0-9, A-Z, space, $ % * + - . / :). */
  const char *qr_text;
  /* The manual pairing code: 11 or 21 decimal digits, no separators. */
  const char *manual_code;
  /* The product serial: printable UTF-8, at most ST_LABEL_TEXT_MAX bytes. */
  const char *serial;
  /* The product name, or NULL for none: as the serial. */
  const char *product_name;
} StLabelUnit;

/* The label's size in millimetres, the PNG's resolution, and the
 * printhead's resolution the ZPL is laid out for (152, 203, 300 or 600
 * dpi: 6, 8, 12 or 24 dots per millimetre). */
typedef struct {
  double width_mm;
  double height_mm;
  guint png_dpi;
  guint zpl_dpi;
} StLabelSize;

/* The default size: 50 x 25 mm, PNG at 300 dpi, ZPL for 203 dpi. */
void st_label_size_default (StLabelSize *size);

/* TRUE when every text of @unit may go onto a label and @size is within
 * its bounds; otherwise an error (ST_ERROR_INVALID_DATA) naming the field
 * and what to do. Every function below checks the same first. */
gboolean st_label_check (const StLabelUnit *unit, const StLabelSize *size, GError **error);

/* The manual code as the Matter spec prints it for people: 11 digits as
 * 4-3-4 ("3497-011-2332"), 21 digits as 4-3-4-5-5. NULL when @digits is
 * not 11 or 21 decimal digits. */
gchar *st_label_manual_code_format (const char *digits);

/* The label as a PNG image (@size->png_dpi) and as a one-page PDF (vector
 * QR modules, the page the label's size). */
GBytes *st_label_render_png (const StLabelUnit *unit, const StLabelSize *size, GError **error);
GBytes *st_label_render_pdf (const StLabelUnit *unit, const StLabelSize *size, GError **error);

/* The label as one ZPL II format, ^XA to ^XZ, for a printer of
 * @size->zpl_dpi: the QR code as ^BQN,2,<magnification> with the field
 * data "MA," (error correction M, automatic input mode) and the QR text;
 * the texts as ^A0 fields, each with ^FH_ and every byte outside printable
 * ASCII, and ^ ~ _, as _XX; ^CI28 (UTF-8). */
gchar *st_label_zpl (const StLabelUnit *unit, const StLabelSize *size, GError **error);

/* The API a batch will call per unit (labels are not wired into the batch
 * pipeline nor the manifest yet: docs/matter.md): writes @name.png,
 * @name.pdf and @name.zpl for @unit into the existing folder @dir, each
 * created new (never replacing a file nor following a link), mode 0600
 * since the QR text holds the setup passcode, and synced. @name: 1 to 64
 * characters of A-Z a-z 0-9 . _ -, not starting with '.'. On an error no
 * file of the three is left behind. */
gboolean st_label_write_files (const char *dir, const char *name, const StLabelUnit *unit,
                               const StLabelSize *size, GError **error);

G_END_DECLS
