/* A temporary demo station for tests: a fresh SoftHSM2 token in a
 * temporary HOME made by st_setup_demo() with a fixed test PIN, removed
 * again by st_test_home_free(). Used by the hsm and the integration tests
 * (st_test_home_dep in tests/hsm/meson.build). */
#pragma once

#include <glib.h>

#include "st-config.h"
#include "st-test-tmp.h"

G_BEGIN_DECLS

#define ST_TEST_PIN "314159"

typedef struct {
  gchar *tmpdir;     /* the temporary folder, removed on free */
  gchar *home;       /* tmpdir/home, the station HOME */
  StConfig *config;  /* HOME/station.conf, loaded */
} StTestHome;

/* Makes the demo station (asserts on failure). */
StTestHome *st_test_home_new (void);
void st_test_home_free (StTestHome *home);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StTestHome, st_test_home_free)

/* Removes @path and everything under it (no symbolic links followed). */
void st_test_rm_rf (const char *path);
/* The module the tests use: $ST_SOFTHSM_MODULE, else the build's. */
const char *st_test_softhsm_module (void);

G_END_DECLS
