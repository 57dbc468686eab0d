/* gui/st-scan.c: what a barcode scanner's input may be, and which batch a
 * scanned work order selects (docs/gui.md, "Barcode scanners"). The GUI
 * test drives the same code through AT-SPI with keystrokes; here the
 * inputs no keyboard types: invalid UTF-8, invisible format characters,
 * the exact length bounds, and batches whose work orders repeat. */
#include <string.h>

#include "st-scan.h"

static gchar *
read_code (const char *text, gchar **message)
{
  *message = NULL;
  return st_scan_read (text, ST_SCAN_UNIT, message);
}

static void
test_read (void)
{
  g_autofree gchar *msg = NULL;
  g_autofree gchar *code = read_code ("  EX-2612-000001\r\n", &msg);
  g_assert_cmpstr (code, ==, "EX-2612-000001");
  g_assert_null (msg);

  const char *refused[] = {
    "", "   \t\r\n",
    "EX-\x1d" "0001",          /* a GS1 group separator */
    "EX-\x1b[2J",              /* an escape sequence */
    "EX-\xe2\x80\xae" "1000",  /* U+202E RIGHT-TO-LEFT OVERRIDE */
    "EX-\xe2\x80\x8b" "1",     /* U+200B ZERO WIDTH SPACE */
    "EX-\xc2\x9b" "1",         /* U+009B, a C1 control */
    "EX-\xff\xfe",             /* not UTF-8 */
  };
  for (guint i = 0; i < G_N_ELEMENTS (refused); i++)
    {
      g_autofree gchar *m = NULL;
      g_autofree gchar *c = read_code (refused[i], &m);
      g_assert_null (c);
      g_assert_nonnull (m);
      g_test_message ("%s", m);
      /* the message quotes the scan escaped: no control byte, valid UTF-8 */
      g_assert_true (g_utf8_validate (m, -1, NULL));
      for (const char *p = m; *p != '\0'; p++)
        g_assert_cmpint ((guchar) *p, >=, 0x20);
      g_assert_null (strstr (m, "\xe2\x80\xae"));
      g_assert_null (strstr (m, "\xe2\x80\x8b"));
    }

  /* the bound: 128 characters pass (multi-byte ones count once), 129 do not */
  g_autoptr(GString) s = g_string_new (NULL);
  for (guint i = 0; i < ST_SCAN_MAX_CODE; i++)
    g_string_append (s, "\xc3\xa9");
  g_clear_pointer (&msg, g_free);
  g_clear_pointer (&code, g_free);
  code = read_code (s->str, &msg);
  g_assert_cmpstr (code, ==, s->str);
  g_string_append_c (s, 'x');
  g_clear_pointer (&code, g_free);
  code = read_code (s->str, &msg);
  g_assert_null (code);
  g_assert_nonnull (strstr (msg, "129 characters long, more than the 128"));
  /* the quote is cut after 40 characters */
  g_assert_nonnull (strstr (msg, "…'"));
  g_assert_cmpuint (strlen (msg), <, 400);
}

static StBatchInfo *
batch (gint64 id, const char *wo, const char *state)
{
  StBatchInfo *b = g_new0 (StBatchInfo, 1);
  b->id = id;
  b->work_order = g_strdup (wo);
  b->state = g_strdup (state);
  return b;
}

/* Issue 18: a Matter onboarding code (the QA desk's field) is read as any
 * scan, but a refusal never quotes it: it encodes the setup passcode. */
static void
test_read_matter (void)
{
  g_autofree gchar *msg = NULL;
  g_autofree gchar *code = st_scan_read ("  MT:Y.K9042C00KA0648G00\r\n", ST_SCAN_MATTER_CODE, &msg);
  g_assert_cmpstr (code, ==, "MT:Y.K9042C00KA0648G00");
  g_assert_null (msg);
  g_clear_pointer (&code, g_free);
  code = st_scan_read ("3497-0112-332", ST_SCAN_MATTER_CODE, &msg);
  g_assert_cmpstr (code, ==, "3497-0112-332");

  g_autoptr(GString) longer = g_string_new ("MT:");
  for (guint i = 0; i < ST_SCAN_MAX_CODE; i++)
    g_string_append_c (longer, '7');
  const char *refused[] = {
    "", " \r\n",
    "MT:Y.K9042\x1d" "C00KA0648G00",     /* a GS1 group separator */
    "34970\x1b[2J112332",               /* an escape sequence */
    "MT:Y.K90\xe2\x80\x8b" "42C00KA0", /* U+200B ZERO WIDTH SPACE */
    "34970112\xff\xfe",                 /* not UTF-8 */
    longer->str,
  };
  for (guint i = 0; i < G_N_ELEMENTS (refused); i++)
    {
      g_autofree gchar *m = NULL;
      g_autofree gchar *c = st_scan_read (refused[i], ST_SCAN_MATTER_CODE, &m);
      g_assert_null (c);
      g_assert_nonnull (m);
      g_test_message ("%s", m);
      g_assert_true (g_utf8_validate (m, -1, NULL));
      g_assert_nonnull (strstr (m, "Matter"));
      /* nothing of the code is quoted */
      g_assert_null (strstr (m, "K9042"));
      g_assert_null (strstr (m, "34970"));
      g_assert_null (strstr (m, "777"));
    }
}

static void
test_find_batch (void)
{
  g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func ((GDestroyNotify) st_batch_info_free);
  g_ptr_array_add (list, batch (1, "WO-1", "closed"));
  g_ptr_array_add (list, batch (2, "WO-1", "open"));
  g_ptr_array_add (list, batch (7, "WO-1", "open"));
  g_ptr_array_add (list, batch (5, "WO-1", "open"));
  g_ptr_array_add (list, batch (9, "WO-1", "closed"));
  g_ptr_array_add (list, batch (3, "WO-2", "closed"));
  g_ptr_array_add (list, batch (4, "WO-2", "closed"));
  g_ptr_array_add (list, batch (6, "wo-3", "open"));
  /* open first, the newest open, whatever the order of the list */
  g_assert_cmpint (st_scan_find_batch (list, "WO-1", TRUE)->id, ==, 7);
  g_assert_cmpint (st_scan_find_batch (list, "WO-1", FALSE)->id, ==, 7);
  /* none open: the newest closed, only when asked for */
  g_assert_cmpint (st_scan_find_batch (list, "WO-2", TRUE)->id, ==, 4);
  g_assert_null (st_scan_find_batch (list, "WO-2", FALSE));
  /* exact: no case folding, no prefix */
  g_assert_null (st_scan_find_batch (list, "WO-3", TRUE));
  g_assert_null (st_scan_find_batch (list, "WO-", TRUE));
  g_assert_null (st_scan_find_batch (NULL, "WO-1", TRUE));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/scan/read", test_read);
  g_test_add_func ("/scan/find-batch", test_find_batch);
  g_test_add_func ("/scan/read-matter", test_read_matter);
  return g_test_run ();
}
