#include "st-test-home.h"
#include "st-util.h"

#include <errno.h>
#include <glib/gstdio.h>

#include "st-setup.h"
#include "st-test-tmp.h"

void
st_test_rm_rf (const char *path)
{
  st_rm_rf (path);
}

const char *
st_test_softhsm_module (void)
{
  const char *env = g_getenv ("ST_SOFTHSM_MODULE");
  return env != NULL && *env != '\0' ? env : ST_SOFTHSM_MODULE;
}

StTestHome *
st_test_home_new (void)
{
  g_autoptr(GError) error = NULL;
  StTestHome *h = g_new0 (StTestHome, 1);
  h->tmpdir = st_test_tmpdir ("station-test");
  h->home = g_build_filename (h->tmpdir, "home", NULL);
  gboolean ok = st_setup_demo (h->home, ST_TEST_PIN, &error);
  g_assert_no_error (error);
  g_assert_true (ok);
  h->config = st_config_load (h->home, &error);
  g_assert_no_error (error);
  g_assert_nonnull (h->config);
  return h;
}

void
st_test_home_free (StTestHome *h)
{
  if (h == NULL)
    return;
  st_config_free (h->config);
  if (h->tmpdir != NULL)
    st_test_rm_rf (h->tmpdir);
  g_free (h->home);
  g_free (h->tmpdir);
  g_free (h);
}
