/* A scratch folder for a test: made under the system's temporary folder,
 * or the test fails there and then (a NULL path would only fail later, far
 * from the cause). Remove it with st_rm_rf() (st-util.h). */
#pragma once

#include <glib.h>

static inline gchar *
st_test_tmpdir (const char *prefix)
{
  g_autoptr(GError) error = NULL;
  /* g_dir_make_tmp() replaces the six X with a unique name */
  g_autofree gchar *tmpl = g_strdup_printf ("%s-XXXXXX", prefix);
  gchar *dir = g_dir_make_tmp (tmpl, &error);
  g_assert_no_error (error);
  g_assert_nonnull (dir);
  return dir;
}
