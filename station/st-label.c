/* Matter device labels: QR code, manual code, serial to PNG, PDF and ZPL
 * (st-label.h, docs/matter.md "Labels").
 *
 * One layout, computed once per format in that format's units (pixels,
 * points, printer dots): the QR code with its quiet zone of 4 modules on
 * the left, as high as the label allows and at most half its width; to its
 * right a column with the product name (small, top), the manual code
 * (large, middle) and the serial (small, bottom). A text never shrinks
 * below ST_LABEL_FONT_MIN_MM: one that would is refused, so a label is
 * either readable or not made. */
#include "st-label.h"

#include <cairo.h>
#include <cairo-pdf.h>
#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n.h>
#include <math.h>
#include <qrencode.h>
#include <string.h>
#include <unistd.h>

#include "st-error.h"
#include "st-text.h"

#define ST_LABEL_QUIET_MODULES 4
#define ST_LABEL_MARGIN_MM 1.0
/* The smallest module: 0.25 mm (2 dots of a 203 dpi printhead). */
#define ST_LABEL_MODULE_MIN_MM 0.25
/* The text column's least width, and the sizes of its texts (height of
 * the font, in mm). */
#define ST_LABEL_COLUMN_MIN_MM 10.0
#define ST_LABEL_FONT_MIN_MM 1.5
#define ST_LABEL_FONT_SMALL_MM 3.0
#define ST_LABEL_FONT_CODE_MM 7.0
/* ZPL's ^A0 is a proportional font: its advance is estimated per character
 * as this much of its height (digits and upper case, with room). */
#define ST_LABEL_ZPL_ADVANCE 0.62
/* The largest PNG, in pixels (a 200 x 200 mm label at 600 dpi). */
#define ST_LABEL_PNG_PIXELS_MAX (23u * 1000u * 1000u)
#define ST_LABEL_FONT "DejaVu Sans"

void
st_label_size_default (StLabelSize *size)
{
  size->width_mm = ST_LABEL_DEFAULT_WIDTH_MM;
  size->height_mm = ST_LABEL_DEFAULT_HEIGHT_MM;
  size->png_dpi = ST_LABEL_DEFAULT_PNG_DPI;
  size->zpl_dpi = ST_LABEL_DEFAULT_ZPL_DPI;
}

/* The start of a hostile text for a message: its first 32 bytes made
 * printable, an ellipsis when there was more. */
static gchar *
st_label_shown (const char *s)
{
  gsize len = strlen (s);
  g_autofree gchar *head = st_text_escape (s, MIN (len, 32), ST_TEXT_ONE_LINE);
  return g_strdup_printf ("%s%s", head, len > 32 ? "…" : "");
}

static gboolean
st_label_qr_char_ok (char c)
{
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c != '\0' && strchr (" $%*+-./:", c));
}

static gboolean
st_label_digits (const char *s, gsize *len)
{
  gsize n = 0;
  for (; s[n]; n++)
    if (s[n] < '0' || s[n] > '9' || n > 21)
      return FALSE;
  *len = n;
  return TRUE;
}

/* A serial or product name: printable UTF-8 as st_text_escape() leaves it
 * (no control, invisible or bidi characters), 1 to ST_LABEL_TEXT_MAX bytes. */
static gboolean
st_label_text_check (const char *s, gboolean is_serial, GError **error)
{
  gsize len = strnlen (s, ST_LABEL_TEXT_MAX + 1);
  g_autofree gchar *shown = st_label_shown (s);
  if (len == 0 || len > ST_LABEL_TEXT_MAX)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   is_serial ? _("The product serial '%s' is empty or longer than %d bytes: a label cannot carry it. Correct the serial in the product's profile.")
                             : _("The product name '%s' is empty or longer than %d bytes: a label cannot carry it. Shorten the name in the product's profile."),
                   shown, ST_LABEL_TEXT_MAX);
      return FALSE;
    }
  g_autofree gchar *escaped = st_text_escape (s, -1, ST_TEXT_ONE_LINE);
  if (strcmp (escaped, s) != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   is_serial ? _("The product serial '%s' holds control or invisible characters or is not valid UTF-8: a label cannot show it. Correct the serial in the product's profile.")
                             : _("The product name '%s' holds control or invisible characters or is not valid UTF-8: a label cannot show it. Correct the name in the product's profile."),
                   shown);
      return FALSE;
    }
  return TRUE;
}

gboolean
st_label_check (const StLabelUnit *unit, const StLabelSize *size, GError **error)
{
  const char *qr = unit->qr_text;
  if (qr == NULL || unit->manual_code == NULL || unit->serial == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("A label needs the QR text, the manual pairing code and the product serial; one of them is missing."));
      return FALSE;
    }
  gsize qr_len = strnlen (qr, ST_LABEL_QR_TEXT_MAX + 1);
  gboolean qr_ok = qr_len > 3 && qr_len <= ST_LABEL_QR_TEXT_MAX && g_str_has_prefix (qr, "MT:");
  for (gsize i = 0; qr_ok && i < qr_len; i++)
    qr_ok = st_label_qr_char_ok (qr[i]);
  if (!qr_ok)
    {
      g_autofree gchar *shown = st_label_shown (qr);
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("The QR text '%s' is not a Matter onboarding payload: it must start with 'MT:', hold only the characters 0-9, A-Z, space and $%%*+-./: and be at most %d characters. Make it again from the unit's setup payload."),
                   shown, ST_LABEL_QR_TEXT_MAX);
      return FALSE;
    }
  gsize digits = 0;
  if (!st_label_digits (unit->manual_code, &digits) || (digits != 11 && digits != 21))
    {
      g_autofree gchar *shown = st_label_shown (unit->manual_code);
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("The manual pairing code '%s' is not 11 or 21 digits without separators. Make it again from the unit's setup payload."),
                   shown);
      return FALSE;
    }
  if (!st_label_text_check (unit->serial, TRUE, error))
    return FALSE;
  if (unit->product_name != NULL && unit->product_name[0] != '\0'
      && !st_label_text_check (unit->product_name, FALSE, error))
    return FALSE;
  if (!(size->width_mm >= ST_LABEL_MM_MIN && size->width_mm <= ST_LABEL_MM_MAX
        && size->height_mm >= ST_LABEL_MM_MIN && size->height_mm <= ST_LABEL_MM_MAX))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("A label of %.1f x %.1f mm is outside the sizes Station makes: give a width and a height from %.0f to %.0f mm."),
                   size->width_mm, size->height_mm, ST_LABEL_MM_MIN, ST_LABEL_MM_MAX);
      return FALSE;
    }
  if (size->png_dpi < ST_LABEL_PNG_DPI_MIN || size->png_dpi > ST_LABEL_PNG_DPI_MAX)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("A PNG resolution of %u dpi is outside the range Station makes: give %d to %d dpi."),
                   size->png_dpi, ST_LABEL_PNG_DPI_MIN, ST_LABEL_PNG_DPI_MAX);
      return FALSE;
    }
  if (size->zpl_dpi != 152 && size->zpl_dpi != 203 && size->zpl_dpi != 300 && size->zpl_dpi != 600)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("A printhead of %u dpi is not one ZPL printers have: give 152, 203, 300 or 600 dpi, as the printer's configuration label shows."),
                   size->zpl_dpi);
      return FALSE;
    }
  return TRUE;
}

gchar *
st_label_manual_code_format (const char *digits)
{
  gsize len = 0;
  if (digits == NULL || !st_label_digits (digits, &len) || (len != 11 && len != 21))
    return NULL;
  if (len == 11)
    return g_strdup_printf ("%.4s-%.3s-%.4s", digits, digits + 4, digits + 7);
  return g_strdup_printf ("%.4s-%.3s-%.4s-%.5s-%.5s", digits, digits + 4, digits + 7, digits + 11,
                          digits + 16);
}

/* The QR symbol of @text at error correction level M (the text is all of
 * the alphanumeric set, so libqrencode encodes it in alphanumeric mode). */
static QRcode *
st_label_qr (const char *text, GError **error)
{
  errno = 0;
  QRcode *qr = QRcode_encodeString (text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
  if (qr == NULL)
    g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL,
                 _("Could not make the QR code of the label: %s."), g_strerror (errno));
  return qr;
}

/* The layout in a format's units (@k of them per mm). */
typedef struct {
  double k;
  double w, h;
  double margin;
  int n;          /* modules with the quiet zone */
  double module;  /* units per module */
  double qr_x, qr_y;
  double col_x, col_w;
} StLabelLayout;

/* @integral: modules of whole units (pixels, printer dots), at most 10 of
 * them (ZPL's largest magnification). */
static gboolean
st_label_layout (StLabelLayout *l, const QRcode *qr, const StLabelSize *size, double k,
                 gboolean integral, const char *format, GError **error)
{
  l->k = k;
  l->w = size->width_mm * k;
  l->h = size->height_mm * k;
  l->margin = ST_LABEL_MARGIN_MM * k;
  l->n = qr->width + 2 * ST_LABEL_QUIET_MODULES;
  double box = MIN (l->h - 2 * l->margin, l->w / 2);
  l->module = box / l->n;
  if (integral)
    l->module = MIN (floor (l->module), 10);
  if (l->module < ST_LABEL_MODULE_MIN_MM * k || l->module < 1)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("A label of %.1f x %.1f mm is too small for a QR code of %d modules in %s: each module would be under %.2f mm. Use a larger label."),
                   size->width_mm, size->height_mm, qr->width, format, ST_LABEL_MODULE_MIN_MM);
      return FALSE;
    }
  l->qr_x = l->margin;
  l->qr_y = (l->h - l->n * l->module) / 2;
  if (integral)
    {
      l->qr_x = round (l->qr_x);
      l->qr_y = round (l->qr_y);
    }
  l->col_x = l->qr_x + l->n * l->module;
  l->col_w = l->w - l->col_x - l->margin;
  if (l->col_w < ST_LABEL_COLUMN_MIN_MM * k)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("A label of %.1f x %.1f mm leaves no room beside the QR code for the manual code and the serial. Use a wider label."),
                   size->width_mm, size->height_mm);
      return FALSE;
    }
  return TRUE;
}

/* A text's size in the layout's units: @max_mm, smaller when @advance (the
 * text's width per unit of size) needs it to fit the column, refused under
 * ST_LABEL_FONT_MIN_MM. */
static gboolean
st_label_fit (const StLabelLayout *l, double advance, double max_mm, const char *text,
              double *size, GError **error)
{
  double s = max_mm * l->k;
  if (advance > 0 && s * advance > l->col_w)
    s = l->col_w / advance;
  if (s < ST_LABEL_FONT_MIN_MM * l->k)
    {
      g_autofree gchar *shown = st_label_shown (text);
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("'%s' does not fit beside the QR code at a readable size. Use a wider label or a shorter text."),
                   shown);
      return FALSE;
    }
  *size = s;
  return TRUE;
}

/* ---- cairo: PNG and PDF ---- */

static double
st_label_cairo_advance (cairo_t *cr, const char *text, gboolean bold)
{
  cairo_text_extents_t ext;
  cairo_select_font_face (cr, ST_LABEL_FONT, CAIRO_FONT_SLANT_NORMAL,
                          bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size (cr, 1.0);
  cairo_text_extents (cr, text, &ext);
  return MAX (ext.x_advance, ext.width + ext.x_bearing);
}

static void
st_label_cairo_text (cairo_t *cr, const char *text, gboolean bold, double size, double x,
                     double baseline)
{
  cairo_select_font_face (cr, ST_LABEL_FONT, CAIRO_FONT_SLANT_NORMAL,
                          bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size (cr, size);
  cairo_move_to (cr, x, baseline);
  cairo_show_text (cr, text);
}

/* Draws the label on @cr (units: @k per mm; @pixels: a raster, the QR
 * modules on whole pixels without antialiasing). */
static gboolean
st_label_draw (cairo_t *cr, const StLabelUnit *unit, const StLabelSize *size, const QRcode *qr,
               double k, gboolean pixels, const char *format, GError **error)
{
  StLabelLayout l;
  if (!st_label_layout (&l, qr, size, k, pixels, format, error))
    return FALSE;
  g_autofree gchar *code = st_label_manual_code_format (unit->manual_code);
  gboolean has_name = unit->product_name != NULL && unit->product_name[0] != '\0';

  double code_max = MIN (ST_LABEL_FONT_CODE_MM, size->height_mm * 0.3);
  double s_code = 0, s_serial = 0, s_name = 0;
  if (!st_label_fit (&l, st_label_cairo_advance (cr, code, TRUE), code_max, code, &s_code, error)
      || !st_label_fit (&l, st_label_cairo_advance (cr, unit->serial, FALSE), ST_LABEL_FONT_SMALL_MM,
                        unit->serial, &s_serial, error)
      || (has_name
          && !st_label_fit (&l, st_label_cairo_advance (cr, unit->product_name, FALSE),
                            ST_LABEL_FONT_SMALL_MM, unit->product_name, &s_name, error)))
    return FALSE;

  cairo_set_source_rgb (cr, 1, 1, 1);
  cairo_paint (cr);
  cairo_set_source_rgb (cr, 0, 0, 0);

  /* the dark modules, each row's runs as one rectangle */
  cairo_save (cr);
  if (pixels)
    cairo_set_antialias (cr, CAIRO_ANTIALIAS_NONE);
  double x0 = l.qr_x + ST_LABEL_QUIET_MODULES * l.module;
  double y0 = l.qr_y + ST_LABEL_QUIET_MODULES * l.module;
  for (int y = 0; y < qr->width; y++)
    for (int x = 0; x < qr->width;)
      {
        if (!(qr->data[y * qr->width + x] & 1))
          {
            x++;
            continue;
          }
        int run = 1;
        while (x + run < qr->width && (qr->data[y * qr->width + x + run] & 1))
          run++;
        cairo_rectangle (cr, x0 + x * l.module, y0 + y * l.module, run * l.module, l.module);
        x += run;
      }
  cairo_fill (cr);
  cairo_restore (cr);

  double top = l.margin;
  double bottom = l.h - l.margin;
  if (has_name)
    st_label_cairo_text (cr, unit->product_name, FALSE, s_name, l.col_x, top + s_name * 0.8);
  st_label_cairo_text (cr, code, TRUE, s_code, l.col_x, l.h / 2 + s_code * 0.36);
  st_label_cairo_text (cr, unit->serial, FALSE, s_serial, l.col_x, bottom - s_serial * 0.25);
  return TRUE;
}

static cairo_status_t
st_label_append (void *closure, const unsigned char *data, unsigned int length)
{
  g_byte_array_append (closure, data, length);
  return CAIRO_STATUS_SUCCESS;
}

static gboolean
st_label_cairo_ok (cairo_status_t status, const char *format, GError **error)
{
  if (status == CAIRO_STATUS_SUCCESS)
    return TRUE;
  g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL, _("Could not draw the label as %s: %s."),
               format, cairo_status_to_string (status));
  return FALSE;
}

GBytes *
st_label_render_png (const StLabelUnit *unit, const StLabelSize *size, GError **error)
{
  if (!st_label_check (unit, size, error))
    return NULL;
  double k = size->png_dpi / 25.4;
  int w = (int) lround (size->width_mm * k);
  int h = (int) lround (size->height_mm * k);
  if ((guint64) w * (guint64) h > ST_LABEL_PNG_PIXELS_MAX)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("A PNG of %.1f x %.1f mm at %u dpi would be too large. Use a lower resolution."),
                   size->width_mm, size->height_mm, size->png_dpi);
      return NULL;
    }
  QRcode *qr = st_label_qr (unit->qr_text, error);
  if (qr == NULL)
    return NULL;
  cairo_surface_t *surface = cairo_image_surface_create (CAIRO_FORMAT_RGB24, w, h);
  cairo_t *cr = cairo_create (surface);
  /* the layout in exact pixels per mm, so the QR modules are whole pixels */
  gboolean ok = st_label_draw (cr, unit, size, qr, (double) w / size->width_mm, TRUE, "PNG", error)
                && st_label_cairo_ok (cairo_status (cr), "PNG", error);
  cairo_destroy (cr);
  g_autoptr(GByteArray) out = g_byte_array_new ();
  if (ok)
    ok = st_label_cairo_ok (cairo_surface_write_to_png_stream (surface, st_label_append, out),
                            "PNG", error);
  cairo_surface_destroy (surface);
  QRcode_free (qr);
  return ok ? g_byte_array_free_to_bytes (g_steal_pointer (&out)) : NULL;
}

GBytes *
st_label_render_pdf (const StLabelUnit *unit, const StLabelSize *size, GError **error)
{
  if (!st_label_check (unit, size, error))
    return NULL;
  QRcode *qr = st_label_qr (unit->qr_text, error);
  if (qr == NULL)
    return NULL;
  double k = 72.0 / 25.4;
  g_autoptr(GByteArray) out = g_byte_array_new ();
  cairo_surface_t *surface = cairo_pdf_surface_create_for_stream (st_label_append, out,
                                                                  size->width_mm * k,
                                                                  size->height_mm * k);
  cairo_pdf_surface_set_metadata (surface, CAIRO_PDF_METADATA_CREATOR, "Station");
  cairo_t *cr = cairo_create (surface);
  gboolean ok = st_label_draw (cr, unit, size, qr, k, FALSE, "PDF", error);
  if (ok)
    cairo_show_page (cr);
  ok = ok && st_label_cairo_ok (cairo_status (cr), "PDF", error);
  cairo_destroy (cr);
  cairo_surface_finish (surface);
  ok = ok && st_label_cairo_ok (cairo_surface_status (surface), "PDF", error);
  cairo_surface_destroy (surface);
  QRcode_free (qr);
  return ok ? g_byte_array_free_to_bytes (g_steal_pointer (&out)) : NULL;
}

/* ---- ZPL ---- */

/* @text as ^FH_ field data: printable ASCII but ^ ~ _ as it is, every
 * other byte (the bytes of UTF-8 beyond ASCII) and those three as _XX. */
static void
st_label_zpl_field (GString *z, const char *text)
{
  for (const guchar *p = (const guchar *) text; *p; p++)
    {
      if (*p >= 0x20 && *p < 0x7f && *p != '^' && *p != '~' && *p != '_')
        g_string_append_c (z, (char) *p);
      else
        g_string_append_printf (z, "_%02X", *p);
    }
}

/* Where a text sits in the column: its top at, its middle at, or its
 * bottom at the given height. */
typedef enum { ST_LABEL_AT_TOP, ST_LABEL_AT_MIDDLE, ST_LABEL_AT_BOTTOM } StLabelAnchor;

static gboolean
st_label_zpl_text (GString *z, const StLabelLayout *l, const char *text, double max_mm,
                   double at, StLabelAnchor anchor, GError **error)
{
  double s = 0;
  glong chars = g_utf8_strlen (text, -1);
  if (!st_label_fit (l, chars * ST_LABEL_ZPL_ADVANCE, max_mm, text, &s, error))
    return FALSE;
  int dots = (int) floor (s);
  double top = anchor == ST_LABEL_AT_TOP ? at : anchor == ST_LABEL_AT_MIDDLE ? at - dots / 2.0 : at - dots;
  /* ^FB: one line as wide as the column, so nothing reaches the QR code */
  g_string_append_printf (z, "^FO%d,%d^A0N,%d,%d^FB%d,1,0,L,0^FH_^FD", (int) lround (l->col_x),
                          (int) lround (top), dots, dots, (int) floor (l->col_w));
  st_label_zpl_field (z, text);
  g_string_append (z, "^FS\n");
  return TRUE;
}

gchar *
st_label_zpl (const StLabelUnit *unit, const StLabelSize *size, GError **error)
{
  if (!st_label_check (unit, size, error))
    return NULL;
  QRcode *qr = st_label_qr (unit->qr_text, error);
  if (qr == NULL)
    return NULL;
  int dpmm = size->zpl_dpi == 152 ? 6 : size->zpl_dpi == 203 ? 8 : size->zpl_dpi == 300 ? 12 : 24;
  StLabelLayout l;
  gboolean ok = st_label_layout (&l, qr, size, dpmm, TRUE, "ZPL", error);
  QRcode_free (qr);
  if (!ok)
    return NULL;
  g_autofree gchar *code = st_label_manual_code_format (unit->manual_code);
  g_autoptr(GString) z = g_string_new ("^XA\n^CI28\n");
  g_string_append_printf (z, "^PW%d\n^LL%d\n^LH0,0\n", (int) lround (l.w), (int) lround (l.h));
  /* ^BQ draws no quiet zone: the field starts 4 modules in. Field data:
   * M (error correction level M), A (automatic input mode), a comma, the
   * text (checked to be of the QR alphanumeric set: nothing to escape). */
  g_string_append_printf (z, "^FO%d,%d^BQN,2,%d^FDMA,%s^FS\n",
                          (int) (l.qr_x + ST_LABEL_QUIET_MODULES * l.module),
                          (int) (l.qr_y + ST_LABEL_QUIET_MODULES * l.module), (int) l.module,
                          unit->qr_text);
  double code_max = MIN (ST_LABEL_FONT_CODE_MM, size->height_mm * 0.3);
  if (unit->product_name != NULL && unit->product_name[0] != '\0'
      && !st_label_zpl_text (z, &l, unit->product_name, ST_LABEL_FONT_SMALL_MM, l.margin,
                             ST_LABEL_AT_TOP, error))
    return NULL;
  if (!st_label_zpl_text (z, &l, code, code_max, l.h / 2, ST_LABEL_AT_MIDDLE, error)
      || !st_label_zpl_text (z, &l, unit->serial, ST_LABEL_FONT_SMALL_MM, l.h - l.margin,
                             ST_LABEL_AT_BOTTOM, error))
    return NULL;
  g_string_append (z, "^XZ\n");
  return g_string_free (g_steal_pointer (&z), FALSE);
}

/* ---- files ---- */

static gboolean
st_label_name_ok (const char *name)
{
  gsize len = name != NULL ? strlen (name) : 0;
  if (len == 0 || len > 64 || name[0] == '.')
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isalnum (name[i]) && name[i] != '.' && name[i] != '_' && name[i] != '-')
      return FALSE;
  return TRUE;
}

static gboolean
st_label_write_one (int dfd, const char *dir, const char *file, const void *data, gsize len,
                    GError **error)
{
  int fd = openat (dfd, file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  int saved = 0;
  if (fd >= 0)
    {
      gsize done = 0;
      while (done < len)
        {
          ssize_t n = write (fd, (const char *) data + done, len - done);
          if (n < 0 && errno == EINTR)
            continue;
          if (n <= 0)
            {
              saved = n == 0 ? ENOSPC : errno;
              break;
            }
          done += (gsize) n;
        }
      if (saved == 0 && fsync (fd) != 0)
        saved = errno;
      if (close (fd) != 0 && saved == 0)
        saved = errno;
      if (saved != 0)
        unlinkat (dfd, file, 0);
    }
  else
    saved = errno;
  if (saved == 0)
    return TRUE;
  g_set_error (error, ST_ERROR, ST_ERROR_WRITE,
               _("Could not write the label file %s in %s: %s. Check that the folder is writable, has room and holds no file of that name."),
               file, dir, g_strerror (saved));
  return FALSE;
}

gboolean
st_label_write_files (const char *dir, const char *name, const StLabelUnit *unit,
                      const StLabelSize *size, GError **error)
{
  if (!st_label_name_ok (name))
    {
      g_autofree gchar *shown = st_label_shown (name != NULL ? name : "");
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("'%s' cannot name label files: use 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-', not starting with '.'."),
                   shown);
      return FALSE;
    }
  g_autoptr(GBytes) png = st_label_render_png (unit, size, error);
  if (png == NULL)
    return FALSE;
  g_autoptr(GBytes) pdf = st_label_render_pdf (unit, size, error);
  if (pdf == NULL)
    return FALSE;
  g_autofree gchar *zpl = st_label_zpl (unit, size, error);
  if (zpl == NULL)
    return FALSE;

  int dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    {
      int saved = errno;
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE,
                   _("Could not open the label folder %s: %s. Create it, or give another folder."),
                   dir, g_strerror (saved));
      return FALSE;
    }
  g_autofree gchar *f_png = g_strconcat (name, ".png", NULL);
  g_autofree gchar *f_pdf = g_strconcat (name, ".pdf", NULL);
  g_autofree gchar *f_zpl = g_strconcat (name, ".zpl", NULL);
  gsize len = 0;
  const void *data = g_bytes_get_data (png, &len);
  gboolean ok = st_label_write_one (dfd, dir, f_png, data, len, error);
  if (ok)
    {
      data = g_bytes_get_data (pdf, &len);
      ok = st_label_write_one (dfd, dir, f_pdf, data, len, error);
      if (!ok)
        unlinkat (dfd, f_png, 0);
    }
  if (ok)
    {
      ok = st_label_write_one (dfd, dir, f_zpl, zpl, strlen (zpl), error);
      if (!ok)
        {
          unlinkat (dfd, f_png, 0);
          unlinkat (dfd, f_pdf, 0);
        }
    }
  if (ok && fsync (dfd) != 0)
    {
      int saved = errno;
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE,
                   _("Could not write the label folder %s to disk: %s. Check the disk, then make the labels again."),
                   dir, g_strerror (saved));
      unlinkat (dfd, f_png, 0);
      unlinkat (dfd, f_pdf, 0);
      unlinkat (dfd, f_zpl, 0);
      ok = FALSE;
    }
  close (dfd);
  return ok;
}
