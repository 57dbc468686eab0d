/* libFuzzer: the station.conf reader (station/st-config.c), through its
 * real entry point st_config_load_file() on a file that lives in memory: a
 * memfd made once, rewritten for each input and read back by its
 * /proc/self/fd/N path (no disk I/O, no change to the reader).
 *
 * Beyond memory errors it checks:
 *   - NULL exactly when an error is set, and a refusal is an ST_ERROR;
 *   - an accepted file has every required value, paths made absolute
 *     against HOME (a pkcs11: URI as it is), idle-logout-s within 0..86400,
 *     and softhsm2-conf only on a demo station; a file without
 *     [certificates] (awaiting 'ca import') has no certificate paths;
 *   - round trip: what st_config_save() writes of an accepted file (into a
 *     tmpfs folder) loads back to the same values. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "st-fuzz.h"
#include "st-config.h"
#include "st-error.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define ST_FUZZ_HOME "/fuzz-home"

static int st_fuzz_fd = -1;
static gchar *st_fuzz_path;   /* /proc/self/fd/N of the memfd */
static gchar *st_fuzz_dir;    /* a tmpfs folder for the round trip */

static void
st_fuzz_check (gboolean ok)
{
  if (!ok)
    abort ();
}

static void
st_fuzz_cleanup (void)
{
  if (st_fuzz_dir != NULL)
    st_rm_rf (st_fuzz_dir);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  st_fuzz_silence_logs ();
  st_fuzz_fd = memfd_create ("station.conf", MFD_CLOEXEC);
  if (st_fuzz_fd < 0)
    abort ();
  st_fuzz_path = g_strdup_printf ("/proc/self/fd/%d", st_fuzz_fd);
  st_fuzz_dir = st_fuzz_make_tmp_dir ("st-fuzz-config-XXXXXX");
  atexit (st_fuzz_cleanup);
  return 0;
}

static gboolean
st_fuzz_path_ok (const char *v)
{
  return v != NULL && (g_str_has_prefix (v, "pkcs11:") || g_path_is_absolute (v));
}

static void
st_fuzz_check_accepted (const StConfig *c)
{
  st_fuzz_check (c->station_id != NULL && *c->station_id != '\0');
  st_fuzz_check (c->hsm_token != NULL && *c->hsm_token != '\0');
  st_fuzz_check (c->ca_key_uri != NULL && *c->ca_key_uri != '\0');
  st_fuzz_check (c->signing_key_uri != NULL && *c->signing_key_uri != '\0');
  st_fuzz_check (st_fuzz_path_ok (c->hsm_module) && st_fuzz_path_ok (c->db_path));
  if (c->awaiting_import)
    st_fuzz_check (c->ca_cert == NULL && c->signing_cert == NULL && c->chain_file == NULL
                   && c->root_file == NULL && c->signing_key_sha256 == NULL);
  else
    st_fuzz_check (st_fuzz_path_ok (c->ca_cert) && st_fuzz_path_ok (c->signing_cert)
                   && st_fuzz_path_ok (c->chain_file) && st_fuzz_path_ok (c->root_file));
  st_fuzz_check (c->checkpoint_every <= 1000000);
  st_fuzz_check (c->idle_logout_s <= 24 * 3600);
  st_fuzz_check (c->demo ? st_fuzz_path_ok (c->softhsm2_conf) : c->softhsm2_conf == NULL);
}

static void
st_fuzz_round_trip (StConfig *c)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *saved = g_build_filename (st_fuzz_dir, ST_CONFIG_FILE, NULL);
  g_autofree gchar *loaded_path = g_steal_pointer (&c->path);
  c->path = g_strdup (saved);
  st_fuzz_check (st_config_save (c, &error));
  g_autoptr(StConfig) again = st_config_load_file (ST_FUZZ_HOME, saved, &error);
  st_fuzz_check (again != NULL);
  st_fuzz_check (g_strcmp0 (c->station_id, again->station_id) == 0);
  st_fuzz_check (c->demo == again->demo && c->idle_logout_s == again->idle_logout_s);
  st_fuzz_check (g_strcmp0 (c->db_path, again->db_path) == 0);
  st_fuzz_check (g_strcmp0 (c->hsm_module, again->hsm_module) == 0);
  st_fuzz_check (g_strcmp0 (c->hsm_token, again->hsm_token) == 0);
  st_fuzz_check (g_strcmp0 (c->softhsm2_conf, again->softhsm2_conf) == 0);
  st_fuzz_check (g_strcmp0 (c->ca_key_uri, again->ca_key_uri) == 0);
  st_fuzz_check (g_strcmp0 (c->signing_key_uri, again->signing_key_uri) == 0);
  st_fuzz_check (g_strcmp0 (c->ca_cert, again->ca_cert) == 0);
  st_fuzz_check (g_strcmp0 (c->signing_cert, again->signing_cert) == 0);
  st_fuzz_check (g_strcmp0 (c->chain_file, again->chain_file) == 0);
  st_fuzz_check (g_strcmp0 (c->root_file, again->root_file) == 0);
  st_fuzz_check (c->awaiting_import == again->awaiting_import);
  st_fuzz_check (c->checkpoint_every == again->checkpoint_every);
  g_free (c->path);
  c->path = g_steal_pointer (&loaded_path);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (ftruncate (st_fuzz_fd, 0) != 0 || (size > 0 && pwrite (st_fuzz_fd, data, size, 0) != (ssize_t) size))
    abort ();
  g_autoptr(GError) error = NULL;
  g_autoptr(StConfig) c = st_config_load_file (ST_FUZZ_HOME, st_fuzz_path, &error);
  st_fuzz_check ((c == NULL) == (error != NULL));
  if (c == NULL)
    {
      st_fuzz_check (error->domain == ST_ERROR && error->message != NULL);
      return 0;
    }
  st_fuzz_check (g_strcmp0 (c->path, st_fuzz_path) == 0 && g_strcmp0 (c->home, ST_FUZZ_HOME) == 0);
  st_fuzz_check_accepted (c);
  st_fuzz_round_trip (c);
  return 0;
}
