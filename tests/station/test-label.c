/* Matter device labels (station/st-label.c): each label rendered by the real
 * libqrencode and cairo, and read back by independent tools: zbarimg
 * (zbar-tools) decodes the QR code of the PNG and of the PDF page that
 * pdftoppm (poppler-utils) rasterised; pdftotext and pdfinfo read the PDF's
 * texts and page size. The ZPL is parsed here, command by command, with a
 * ^FH decoder of its own. Vectors: the Matter spec's onboarding payload
 * (VID 0xFFF1, PID 0x8000, discriminator 3840, passcode 20202021). */
#include <cairo.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "st-error.h"
#include "st-label.h"
#include "st-test-tmp.h"
#include "st-util.h"

#define VECTOR_QR "MT:Y.K9042C00KA0648G00"
#define VECTOR_CODE "34970112332"
#define VECTOR_SERIAL "EX-2612-000001"

static gchar *tmp;

static StLabelUnit
vector_unit (void)
{
  StLabelUnit u = {
    .qr_text = VECTOR_QR,
    .manual_code = VECTOR_CODE,
    .serial = VECTOR_SERIAL,
    .product_name = "Example Lamp",
  };
  return u;
}

/* Runs @argv, which must exit 0; its standard output. */
static gchar *
run (const char *const *argv)
{
  g_autoptr(GError) error = NULL;
  gchar *out = NULL;
  g_autofree gchar *err = NULL;
  int status = 0;
  g_spawn_sync (NULL, (gchar **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err, &status,
                &error);
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("%s failed: %s", argv[0], err);
  return out;
}

static gchar *
write_tmp (const char *name, GBytes *bytes)
{
  gchar *path = g_build_filename (tmp, name, NULL);
  g_autoptr(GError) error = NULL;
  gsize len = 0;
  const gchar *data = g_bytes_get_data (bytes, &len);
  g_file_set_contents (path, data, (gssize) len, &error);
  g_assert_no_error (error);
  return path;
}

/* What zbarimg reads in the image @path: every symbol's text, one a line. */
static gchar *
zbar (const char *path)
{
  const char *argv[] = { "zbarimg", "--raw", "-q", path, NULL };
  return run (argv);
}

static void
assert_png_decodes (const StLabelUnit *u, const StLabelSize *size, const char *name)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) png = st_label_render_png (u, size, &error);
  g_assert_no_error (error);
  g_autofree gchar *path = write_tmp (name, png);
  g_autofree gchar *read = zbar (path);
  g_autofree gchar *want = g_strconcat (u->qr_text, "\n", NULL);
  g_assert_cmpstr (read, ==, want);
}

static void
test_manual_code (void)
{
  g_autofree gchar *a = st_label_manual_code_format (VECTOR_CODE);
  g_assert_cmpstr (a, ==, "3497-011-2332");
  g_autofree gchar *b = st_label_manual_code_format ("749701123365521327694");
  g_assert_cmpstr (b, ==, "7497-011-2336-55213-27694");
  const char *bad[] = { "", "3497011233", "349701123321", "3497-011-2332", "3497011233a", "34970112332 " };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    g_assert_null (st_label_manual_code_format (bad[i]));
  g_assert_null (st_label_manual_code_format (NULL));
}

static void
test_png_vector (void)
{
  StLabelUnit u = vector_unit ();
  StLabelSize size;
  st_label_size_default (&size);
  assert_png_decodes (&u, &size, "vector.png");
  /* the PNG has the label's size at its resolution: 50 x 25 mm at 300 dpi */
  g_autofree gchar *path = g_build_filename (tmp, "vector.png", NULL);
  const char *argv[] = { "identify", "-format", "%w %h", path, NULL };
  g_autofree gchar *dims = run (argv);
  g_assert_cmpstr (dims, ==, "591 295");
  /* without a product name, a larger and a smaller resolution */
  u.product_name = NULL;
  size.png_dpi = 600;
  assert_png_decodes (&u, &size, "vector-600.png");
  size.png_dpi = 203;
  assert_png_decodes (&u, &size, "vector-203.png");
  /* a 21-digit manual code (VID and PID included) on a wider label */
  u.manual_code = "749701123365521327694";
  size.width_mm = 70;
  assert_png_decodes (&u, &size, "vector-21.png");
}

static void
test_pdf_vector (void)
{
  g_autoptr(GError) error = NULL;
  StLabelUnit u = vector_unit ();
  StLabelSize size;
  st_label_size_default (&size);
  g_autoptr(GBytes) pdf = st_label_render_pdf (&u, &size, &error);
  g_assert_no_error (error);
  g_autofree gchar *path = write_tmp ("vector.pdf", pdf);

  const char *info[] = { "pdfinfo", path, NULL };
  g_autofree gchar *text = run (info);
  g_assert_nonnull (strstr (text, "Pages:           1\n"));
  /* 50 x 25 mm in points */
  const char *page = strstr (text, "Page size:");
  g_assert_nonnull (page);
  double w = 0, h = 0;
  g_assert_cmpint (sscanf (page, "Page size: %lf x %lf pts", &w, &h), ==, 2);
  g_assert_cmpfloat_with_epsilon (w, 50 / 25.4 * 72, 0.01);
  g_assert_cmpfloat_with_epsilon (h, 25 / 25.4 * 72, 0.01);

  g_autofree gchar *prefix = g_build_filename (tmp, "vector-pdf", NULL);
  const char *raster[] = { "pdftoppm", "-r", "300", "-png", "-singlefile", path, prefix, NULL };
  g_autofree gchar *ignored = run (raster);
  g_autofree gchar *png = g_strconcat (prefix, ".png", NULL);
  g_autofree gchar *read = zbar (png);
  g_assert_cmpstr (read, ==, VECTOR_QR "\n");

  const char *totext[] = { "pdftotext", path, "-", NULL };
  g_autofree gchar *words = run (totext);
  g_assert_nonnull (strstr (words, "3497-011-2332"));
  g_assert_nonnull (strstr (words, VECTOR_SERIAL));
  g_assert_nonnull (strstr (words, "Example Lamp"));
}

/* One ZPL command: its two letters and its parameters up to the next ^. */
typedef struct {
  gchar name[3];
  gchar *args;
} Cmd;

static void
cmd_clear (gpointer p)
{
  g_free (((Cmd *) p)->args);
}

/* @zpl as its commands; a ^ never inside a field's data (the parser fails
 * the test at a ^ it does not know). */
static GArray *
zpl_parse (const char *zpl)
{
  GArray *cmds = g_array_new (FALSE, TRUE, sizeof (Cmd));
  g_array_set_clear_func (cmds, cmd_clear);
  g_assert_true (zpl[0] == '^');
  g_assert_null (strchr (zpl, '~'));
  const char *known = "XA CI PW LL LH FO BQ FD FS A0 FB FH XZ";
  for (const char *p = zpl; *p;)
    {
      g_assert_cmpint (*p, ==, '^');
      const char *end = strchr (p + 1, '^');
      if (end == NULL)
        end = p + strlen (p);
      Cmd c = { { p[1], p[2], '\0' }, NULL };
      g_assert_nonnull (strstr (known, c.name));
      c.args = g_strstrip (g_strndup (p + 3, (gsize) (end - p - 3)));
      g_array_append_val (cmds, c);
      p = end;
    }
  return cmds;
}

/* ^FH_ field data decoded: _XX is the byte XX. */
static gchar *
fh_decode (const char *s)
{
  GString *out = g_string_new (NULL);
  for (const char *p = s; *p; p++)
    {
      if (*p == '_')
        {
          g_assert_true (g_ascii_isxdigit (p[1]) && g_ascii_isxdigit (p[2]));
          g_string_append_c (out, (char) (g_ascii_xdigit_value (p[1]) * 16 + g_ascii_xdigit_value (p[2])));
          p += 2;
        }
      else
        {
          g_assert_true (*p >= 0x20 && *p < 0x7f && *p != '^' && *p != '~');
          g_string_append_c (out, *p);
        }
    }
  return g_string_free (out, FALSE);
}

/* The ZPL of @u: one format, ^XA first and ^XZ last, the QR field's data
 * "MA," and the exact QR text, and the texts of the fields, decoded, in
 * order (name, code, serial). */
static GPtrArray *
zpl_check (const StLabelUnit *u, const StLabelSize *size)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *zpl = st_label_zpl (u, size, &error);
  g_assert_no_error (error);
  g_autoptr(GArray) cmds = zpl_parse (zpl);
  g_assert_cmpstr (g_array_index (cmds, Cmd, 0).name, ==, "XA");
  g_assert_cmpstr (g_array_index (cmds, Cmd, cmds->len - 1).name, ==, "XZ");
  g_assert_cmpstr (g_array_index (cmds, Cmd, 1).name, ==, "CI");
  g_assert_cmpstr (g_array_index (cmds, Cmd, 1).args, ==, "28");
  GPtrArray *texts = g_ptr_array_new_with_free_func (g_free);
  guint n_qr = 0;
  for (guint i = 1; i + 1 < cmds->len; i++)
    {
      Cmd *c = &g_array_index (cmds, Cmd, i);
      g_assert_cmpstr (c->name, !=, "XA");
      g_assert_cmpstr (c->name, !=, "XZ");
      if (strcmp (c->name, "BQ") == 0)
        {
          /* normal orientation, model 2, a magnification of 1 to 10 */
          g_auto(GStrv) p = g_strsplit (c->args, ",", -1);
          g_assert_cmpuint (g_strv_length (p), ==, 3);
          g_assert_cmpstr (p[0], ==, "N");
          g_assert_cmpstr (p[1], ==, "2");
          int mag = atoi (p[2]);
          g_assert_cmpint (mag, >=, 1);
          g_assert_cmpint (mag, <=, 10);
          Cmd *fd = &g_array_index (cmds, Cmd, i + 1);
          g_assert_cmpstr (fd->name, ==, "FD");
          g_autofree gchar *want = g_strconcat ("MA,", u->qr_text, NULL);
          g_assert_cmpstr (fd->args, ==, want);
          g_assert_cmpstr (g_array_index (cmds, Cmd, i + 2).name, ==, "FS");
          n_qr++;
        }
      if (strcmp (c->name, "FH") == 0)
        {
          g_assert_cmpstr (c->args, ==, "_");
          Cmd *fd = &g_array_index (cmds, Cmd, i + 1);
          g_assert_cmpstr (fd->name, ==, "FD");
          g_assert_cmpstr (g_array_index (cmds, Cmd, i + 2).name, ==, "FS");
          g_ptr_array_add (texts, fh_decode (fd->args));
        }
      /* every field data is preceded by ^BQ or ^FH */
      if (strcmp (c->name, "FD") == 0)
        {
          const char *before = g_array_index (cmds, Cmd, i - 1).name;
          g_assert_true (strcmp (before, "BQ") == 0 || strcmp (before, "FH") == 0);
        }
    }
  g_assert_cmpuint (n_qr, ==, 1);
  return texts;
}

static void
test_zpl_vector (void)
{
  StLabelUnit u = vector_unit ();
  StLabelSize size;
  st_label_size_default (&size);
  g_autoptr(GPtrArray) t = zpl_check (&u, &size);
  g_assert_cmpuint (t->len, ==, 3);
  g_assert_cmpstr (t->pdata[0], ==, "Example Lamp");
  g_assert_cmpstr (t->pdata[1], ==, "3497-011-2332");
  g_assert_cmpstr (t->pdata[2], ==, VECTOR_SERIAL);

  g_autoptr(GError) error = NULL;
  g_autofree gchar *zpl = st_label_zpl (&u, &size, &error);
  g_assert_no_error (error);
  /* 50 x 25 mm at 8 dots per mm */
  g_assert_nonnull (strstr (zpl, "^PW400\n^LL200\n"));

  u.manual_code = "749701123365521327694";
  size.width_mm = 70;
  g_autoptr(GPtrArray) t21 = zpl_check (&u, &size);
  g_assert_cmpstr (t21->pdata[1], ==, "7497-011-2336-55213-27694");

  u.manual_code = VECTOR_CODE;
  size.width_mm = 50;
  u.product_name = NULL;
  size.zpl_dpi = 300;
  g_autoptr(GPtrArray) t2 = zpl_check (&u, &size);
  g_assert_cmpuint (t2->len, ==, 2);
  g_assert_cmpstr (t2->pdata[1], ==, VECTOR_SERIAL);
}

/* Texts with ZPL's own characters reach the printer only as hex escapes:
 * a serial that tries to end the format and start another, tilde commands,
 * the escape character itself, UTF-8 beyond ASCII. */
static void
test_zpl_escaped (void)
{
  const char *serials[] = {
    "EX^FS^XZ^XA^FO0,0^FDX",
    "~JR~DGR:X.GRF",
    "EX_5E_7E",
    "Küche-€-42",
  };
  StLabelSize size;
  st_label_size_default (&size);
  size.width_mm = 100;
  for (gsize i = 0; i < G_N_ELEMENTS (serials); i++)
    {
      StLabelUnit u = vector_unit ();
      u.serial = serials[i];
      u.product_name = "Lamp ^XZ ~JA _";
      g_autoptr(GPtrArray) t = zpl_check (&u, &size);
      g_assert_cmpuint (t->len, ==, 3);
      g_assert_cmpstr (t->pdata[0], ==, "Lamp ^XZ ~JA _");
      g_assert_cmpstr (t->pdata[2], ==, serials[i]);
    }
  /* the bytes as escaped, for one */
  StLabelUnit u = vector_unit ();
  u.serial = "A^B~C_D";
  g_autoptr(GError) error = NULL;
  g_autofree gchar *zpl = st_label_zpl (&u, &size, &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (zpl, "^FH_^FDA_5EB_7EC_5FD^FS"));
}

/* Everything a label cannot carry is refused, by every format and by the
 * file writer, with INVALID_DATA and nothing written. */
static void
test_refused (void)
{
  g_autofree gchar *long_serial = g_strnfill (4096, 'A');
  struct {
    const char *qr, *code, *serial, *name;
  } bad[] = {
    { VECTOR_QR, VECTOR_CODE, "EX\n^XZ^XA", NULL },
    { VECTOR_QR, VECTOR_CODE, "EX\r\n", NULL },
    { VECTOR_QR, VECTOR_CODE, "EX\x1b[2J", NULL },
    { VECTOR_QR, VECTOR_CODE, "EX\x7f", NULL },
    { VECTOR_QR, VECTOR_CODE, "EX\xc2\x9b" "1", NULL },
    { VECTOR_QR, VECTOR_CODE, "EX\xff\xfe", NULL },
    { VECTOR_QR, VECTOR_CODE, "EX\xc3", NULL },
    { VECTOR_QR, VECTOR_CODE, "EX\xe2\x80\xae" "1000", NULL },
    { VECTOR_QR, VECTOR_CODE, "EX\xe2\x80\x8b", NULL },
    { VECTOR_QR, VECTOR_CODE, long_serial, NULL },
    { VECTOR_QR, VECTOR_CODE, "", NULL },
    { VECTOR_QR, VECTOR_CODE, VECTOR_SERIAL, "Lamp\t2" },
    { VECTOR_QR, VECTOR_CODE, VECTOR_SERIAL, long_serial },
    { "mt:Y.K9042C00KA0648G00", VECTOR_CODE, VECTOR_SERIAL, NULL },
    { "Y.K9042C00KA0648G00", VECTOR_CODE, VECTOR_SERIAL, NULL },
    { "MT:", VECTOR_CODE, VECTOR_SERIAL, NULL },
    { "MT:Y.K9042^XZ", VECTOR_CODE, VECTOR_SERIAL, NULL },
    { "MT:Y.K9042~JR", VECTOR_CODE, VECTOR_SERIAL, NULL },
    { "MT:Y.K9042\n", VECTOR_CODE, VECTOR_SERIAL, NULL },
    { "MT:y.k9042c00ka0648g00", VECTOR_CODE, VECTOR_SERIAL, NULL },
    { VECTOR_QR, "3497-011-2332", VECTOR_SERIAL, NULL },
    { VECTOR_QR, "3497011233", VECTOR_SERIAL, NULL },
    { VECTOR_QR, "349701123320", VECTOR_SERIAL, NULL },
    { VECTOR_QR, "", VECTOR_SERIAL, NULL },
    { VECTOR_QR, "3497011233^", VECTOR_SERIAL, NULL },
    { NULL, VECTOR_CODE, VECTOR_SERIAL, NULL },
    { VECTOR_QR, NULL, VECTOR_SERIAL, NULL },
    { VECTOR_QR, VECTOR_CODE, NULL, NULL },
  };
  g_autofree gchar *long_qr = g_strconcat ("MT:", long_serial, NULL);
  StLabelSize size;
  st_label_size_default (&size);
  for (gsize i = 0; i < G_N_ELEMENTS (bad) + 1; i++)
    {
      StLabelUnit u = { VECTOR_QR, VECTOR_CODE, VECTOR_SERIAL, NULL };
      if (i < G_N_ELEMENTS (bad))
        u = (StLabelUnit) { bad[i].qr, bad[i].code, bad[i].serial, bad[i].name };
      else
        u.qr_text = long_qr;
      g_autoptr(GError) e1 = NULL, e2 = NULL, e3 = NULL, e4 = NULL;
      g_autoptr(GBytes) png = st_label_render_png (&u, &size, &e1);
      g_autoptr(GBytes) pdf = st_label_render_pdf (&u, &size, &e2);
      g_autofree gchar *zpl = st_label_zpl (&u, &size, &e3);
      g_assert_null (png);
      g_assert_null (pdf);
      g_assert_null (zpl);
      g_assert_error (e1, ST_ERROR, ST_ERROR_INVALID_DATA);
      g_assert_error (e2, ST_ERROR, ST_ERROR_INVALID_DATA);
      g_assert_error (e3, ST_ERROR, ST_ERROR_INVALID_DATA);
      /* the message shows no control character and stays short */
      for (const char *p = e3->message; *p; p++)
        g_assert_true ((guchar) *p >= 0x20 && *p != 0x7f);
      g_assert_cmpuint (strlen (e3->message), <, 512);
      g_autofree gchar *dir = g_build_filename (tmp, "refused", NULL);
      g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
      g_assert_false (st_label_write_files (dir, "unit", &u, &size, &e4));
      g_assert_error (e4, ST_ERROR, ST_ERROR_INVALID_DATA);
      g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
      g_assert_null (g_dir_read_name (d));
    }

  /* sizes: too small for the QR code, no room for the text column, out of
   * bounds, not a number, resolutions that are not */
  StLabelUnit u = vector_unit ();
  StLabelSize sizes[] = {
    { 15, 15, 300, 203 }, { 20, 15, 300, 203 }, { 14, 25, 300, 203 }, { 50, 201, 300, 203 },
    { NAN, 25, 300, 203 }, { 50, 25, 100, 203 }, { 50, 25, 2400, 203 }, { 50, 25, 300, 250 },
    { 200, 200, 1200, 203 },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      g_autoptr(GError) e1 = NULL;
      g_autoptr(GBytes) png = st_label_render_png (&u, &sizes[i], &e1);
      g_assert_null (png);
      g_assert_error (e1, ST_ERROR, ST_ERROR_INVALID_DATA);
    }
  /* a serial too long for the column of a narrow label, but for a wide one */
  StLabelSize narrow = { 40, 20, 300, 203 };
  u.serial = "EX-2612-000001-WITH-A-VERY-LONG-SUFFIX-ABCDEFGHIJKLMNOP";
  g_autoptr(GError) e5 = NULL;
  g_autofree gchar *zpl = st_label_zpl (&u, &narrow, &e5);
  g_assert_null (zpl);
  g_assert_error (e5, ST_ERROR, ST_ERROR_INVALID_DATA);
  StLabelSize wide = { 150, 25, 300, 203 };
  assert_png_decodes (&u, &wide, "wide.png");
}

/* Three random texts of the Matter payload's alphabet (base-38: 0-9 A-Z -
 * .), each decoded from its PNG as it was asked; one from its PDF too. */
static void
test_random (void)
{
  const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-.";
  StLabelSize size;
  st_label_size_default (&size);
  for (int i = 0; i < 3; i++)
    {
      GString *s = g_string_new ("MT:");
      guint len = (guint) g_test_rand_int_range (19, 60);
      for (guint j = 0; j < len; j++)
        g_string_append_c (s, alphabet[g_test_rand_int_range (0, 38)]);
      g_autofree gchar *text = g_string_free (s, FALSE);
      g_test_message ("QR text %s", text);
      StLabelUnit u = vector_unit ();
      u.qr_text = text;
      g_autofree gchar *name = g_strdup_printf ("random-%d.png", i);
      assert_png_decodes (&u, &size, name);
      if (i == 0)
        {
          g_autoptr(GError) error = NULL;
          g_autoptr(GBytes) pdf = st_label_render_pdf (&u, &size, &error);
          g_assert_no_error (error);
          g_autofree gchar *path = write_tmp ("random.pdf", pdf);
          g_autofree gchar *prefix = g_build_filename (tmp, "random-pdf", NULL);
          const char *raster[] = { "pdftoppm", "-r", "300", "-png", "-singlefile", path, prefix, NULL };
          g_autofree gchar *ignored = run (raster);
          g_autofree gchar *png = g_strconcat (prefix, ".png", NULL);
          g_autofree gchar *read = zbar (png);
          g_autofree gchar *want = g_strconcat (text, "\n", NULL);
          g_assert_cmpstr (read, ==, want);
        }
    }
}

static void
test_write_files (void)
{
  g_autofree gchar *dir = g_build_filename (tmp, "files", NULL);
  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  StLabelUnit u = vector_unit ();
  StLabelSize size;
  st_label_size_default (&size);
  g_autoptr(GError) error = NULL;
  g_assert_true (st_label_write_files (dir, VECTOR_SERIAL, &u, &size, &error));
  g_assert_no_error (error);
  const char *ext[] = { ".png", ".pdf", ".zpl" };
  for (gsize i = 0; i < 3; i++)
    {
      g_autofree gchar *path = g_strconcat (dir, "/" VECTOR_SERIAL, ext[i], NULL);
      GStatBuf st;
      g_assert_cmpint (g_lstat (path, &st), ==, 0);
      g_assert_true (S_ISREG (st.st_mode));
      g_assert_cmpint (st.st_mode & 07777, ==, 0600);
      g_assert_cmpint (st.st_size, >, 0);
    }
  g_autofree gchar *png = g_build_filename (dir, VECTOR_SERIAL ".png", NULL);
  g_autofree gchar *read = zbar (png);
  g_assert_cmpstr (read, ==, VECTOR_QR "\n");

  /* a second time: refused, the files of the first kept */
  g_assert_false (st_label_write_files (dir, VECTOR_SERIAL, &u, &size, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_WRITE);
  g_clear_error (&error);
  g_autofree gchar *read2 = zbar (png);
  g_assert_cmpstr (read2, ==, VECTOR_QR "\n");

  /* a link where the PDF goes: not followed, the PNG made before it removed */
  g_autofree gchar *target = g_build_filename (tmp, "target", NULL);
  g_autofree gchar *link = g_build_filename (dir, "linked.pdf", NULL);
  g_assert_cmpint (symlink (target, link), ==, 0);
  g_assert_false (st_label_write_files (dir, "linked", &u, &size, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_WRITE);
  g_clear_error (&error);
  g_assert_false (g_file_test (target, G_FILE_TEST_EXISTS));
  g_autofree gchar *linked_png = g_build_filename (dir, "linked.png", NULL);
  g_assert_false (g_file_test (linked_png, G_FILE_TEST_EXISTS));

  /* names that are not file names of the folder */
  const char *names[] = { NULL, "", "../x", "a/b", ".hidden", "x\n", "A B" };
  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_assert_false (st_label_write_files (dir, names[i], &u, &size, &error));
      g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
      g_clear_error (&error);
    }
  /* a folder that is not there */
  g_autofree gchar *missing = g_build_filename (tmp, "missing", NULL);
  g_assert_false (st_label_write_files (missing, "unit", &u, &size, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_WRITE);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  tmp = st_test_tmpdir ("st-label");
  g_test_add_func ("/label/manual-code", test_manual_code);
  g_test_add_func ("/label/png-vector", test_png_vector);
  g_test_add_func ("/label/pdf-vector", test_pdf_vector);
  g_test_add_func ("/label/zpl-vector", test_zpl_vector);
  g_test_add_func ("/label/zpl-escaped", test_zpl_escaped);
  g_test_add_func ("/label/refused", test_refused);
  g_test_add_func ("/label/random", test_random);
  g_test_add_func ("/label/write-files", test_write_files);
  int rc = g_test_run ();
  /* cairo's caches of font faces hold fontconfig patterns for the process'
   * life: released here so LeakSanitizer sees only what the label code
   * itself leaves */
  cairo_debug_reset_static_data ();
  st_rm_rf (tmp);
  g_free (tmp);
  return rc;
}
