#include "st-config.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

#include "st-error.h"
#include "st-util.h"

const char *
st_config_default_home (void)
{
  static gchar *home;
  const char *env = g_getenv ("STATION_HOME");
  if (env != NULL && *env != '\0')
    return env;
  if (g_once_init_enter (&home))
    g_once_init_leave (&home, g_build_filename (g_get_user_data_dir (), "station", NULL));
  return home;
}

StConfig *
st_config_new (const char *home)
{
  StConfig *c = g_new0 (StConfig, 1);
  c->home = g_strdup (home);
  c->path = g_build_filename (home, ST_CONFIG_FILE, NULL);
  c->db_path = g_build_filename (home, "station.db", NULL);
  c->hsm_module = g_strdup (ST_SOFTHSM_MODULE);
  c->idle_logout_s = ST_CONFIG_IDLE_LOGOUT_DEFAULT;
  return c;
}

void
st_config_free (StConfig *c)
{
  if (c == NULL)
    return;
  g_free (c->home);
  g_free (c->path);
  g_free (c->station_id);
  g_free (c->hsm_module);
  g_free (c->hsm_token);
  g_free (c->softhsm2_conf);
  g_free (c->ca_key_uri);
  g_free (c->signing_key_uri);
  g_free (c->ca_cert);
  g_free (c->signing_cert);
  g_free (c->signing_key_sha256);
  g_free (c->chain_file);
  g_free (c->root_file);
  g_free (c->db_path);
  g_free (c);
}

/* A path from the file: absolute as it is, relative to HOME otherwise;
 * a pkcs11: URI as it is. */
static gchar *
st_config_resolve (StConfig *c, const char *value)
{
  if (g_str_has_prefix (value, "pkcs11:") || g_path_is_absolute (value))
    return g_strdup (value);
  return g_build_filename (c->home, value, NULL);
}

static gboolean
st_config_get (GKeyFile *kf, StConfig *c, const char *group, const char *key, gboolean required,
               gboolean is_path, gchar **out, GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autofree gchar *v = g_key_file_get_string (kf, group, key, &local);
  if (v == NULL || *v == '\0')
    {
      if (!required)
        return TRUE;
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "%s has no '%s' in [%s]: fix the file or run 'station setup demo' in a new HOME",
                   c->path, key, group);
      return FALSE;
    }
  g_free (*out);
  *out = is_path ? st_config_resolve (c, v) : g_steal_pointer (&v);
  return TRUE;
}

StConfig *
st_config_load (const char *home, GError **error)
{
  return st_config_load_file (home, NULL, error);
}

StConfig *
st_config_load_file (const char *home, const char *path, GError **error)
{
  g_autoptr(StConfig) c = st_config_new (home);
  if (path != NULL)
    {
      g_free (c->path);
      c->path = g_strdup (path);
    }
  g_autofree gchar *data = NULL;
  gsize len = 0;
  GStatBuf st;
  if (g_stat (c->path, &st) != 0)
    {
      int e = errno;
      if (e == ENOENT)
        g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                     "%s has no station.conf: run 'station setup demo' or see docs/setup.md", home);
      else
        g_set_error (error, ST_ERROR, ST_ERROR_READ, "cannot read %s: %s", c->path, g_strerror (e));
      return NULL;
    }
  if (st.st_size > ST_CONFIG_MAX_SIZE)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "%s is larger than %d bytes", c->path,
                   ST_CONFIG_MAX_SIZE);
      return NULL;
    }
  g_autoptr(GError) local = NULL;
  if (!g_file_get_contents (c->path, &data, &len, &local))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_READ, "cannot read %s: %s", c->path, local->message);
      return NULL;
    }
  if (len > ST_CONFIG_MAX_SIZE)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "%s is larger than %d bytes", c->path,
                   ST_CONFIG_MAX_SIZE);
      return NULL;
    }
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  if (!g_key_file_load_from_data (kf, data, len, G_KEY_FILE_NONE, &local))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "%s is not a valid configuration file: %s",
                   c->path, local->message);
      return NULL;
    }
  if (!st_config_get (kf, c, "station", "id", TRUE, FALSE, &c->station_id, error))
    return NULL;
  c->demo = g_key_file_get_boolean (kf, "station", "demo", &local);
  if (local != NULL && !g_error_matches (local, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "%s: [station] demo: %s", c->path,
                   local->message);
      return NULL;
    }
  g_clear_error (&local);
  if (!st_config_get (kf, c, "station", "db", FALSE, TRUE, &c->db_path, error))
    return NULL;
  if (g_key_file_has_key (kf, "station", "idle-logout-s", NULL))
    {
      guint64 v = g_key_file_get_uint64 (kf, "station", "idle-logout-s", &local);
      if (local != NULL || v > 24 * 3600)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "%s: [station] idle-logout-s must be 0..86400 seconds", c->path);
          return NULL;
        }
      c->idle_logout_s = (guint) v;
    }
  if (!st_config_get (kf, c, "hsm", "module", TRUE, TRUE, &c->hsm_module, error) ||
      !st_config_get (kf, c, "hsm", "token", TRUE, FALSE, &c->hsm_token, error) ||
      !st_config_get (kf, c, "hsm", "softhsm2-conf", c->demo, TRUE, &c->softhsm2_conf, error) ||
      !st_config_get (kf, c, "hsm", "ca-key", TRUE, FALSE, &c->ca_key_uri, error) ||
      !st_config_get (kf, c, "hsm", "signing-key", TRUE, FALSE, &c->signing_key_uri, error) ||
      !st_config_get (kf, c, "certificates", "ca-cert", TRUE, TRUE, &c->ca_cert, error) ||
      !st_config_get (kf, c, "certificates", "signing-cert", TRUE, TRUE, &c->signing_cert, error) ||
      !st_config_get (kf, c, "certificates", "signing-key-sha256", FALSE, FALSE, &c->signing_key_sha256, error) ||
      !st_config_get (kf, c, "certificates", "chain", TRUE, TRUE, &c->chain_file, error) ||
      !st_config_get (kf, c, "certificates", "root", TRUE, TRUE, &c->root_file, error))
    return NULL;
  if (c->signing_key_sha256 != NULL
      && (strlen (c->signing_key_sha256) != 64
          || strspn (c->signing_key_sha256, "0123456789abcdefABCDEF") != 64))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "%s: [certificates] signing-key-sha256 must be 64 hex digits (the SHA-256 of the "
                   "signing certificate's public key, as 'station setup show' prints it)", c->path);
      return NULL;
    }
  if (!c->demo)
    g_clear_pointer (&c->softhsm2_conf, g_free);
  return g_steal_pointer (&c);
}

static void
st_config_set (GKeyFile *kf, const char *group, const char *key, const char *value)
{
  if (value != NULL)
    g_key_file_set_string (kf, group, key, value);
}

gboolean
st_config_save (StConfig *c, GError **error)
{
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_key_file_set_comment (kf, NULL, NULL,
                          " Station configuration (see docs/setup.md). No PIN is ever stored here.", NULL);
  st_config_set (kf, "station", "id", c->station_id);
  g_key_file_set_boolean (kf, "station", "demo", c->demo);
  st_config_set (kf, "station", "db", c->db_path);
  g_key_file_set_uint64 (kf, "station", "idle-logout-s", c->idle_logout_s);
  st_config_set (kf, "hsm", "module", c->hsm_module);
  st_config_set (kf, "hsm", "token", c->hsm_token);
  if (c->demo)
    st_config_set (kf, "hsm", "softhsm2-conf", c->softhsm2_conf);
  st_config_set (kf, "hsm", "ca-key", c->ca_key_uri);
  st_config_set (kf, "hsm", "signing-key", c->signing_key_uri);
  st_config_set (kf, "certificates", "ca-cert", c->ca_cert);
  st_config_set (kf, "certificates", "signing-cert", c->signing_cert);
  st_config_set (kf, "certificates", "signing-key-sha256", c->signing_key_sha256);
  st_config_set (kf, "certificates", "chain", c->chain_file);
  st_config_set (kf, "certificates", "root", c->root_file);
  gsize len = 0;
  g_autofree gchar *data = g_key_file_to_data (kf, &len, NULL);
  if (!st_file_write_durable (c->path, data, len, 0600, error))
    {
      g_prefix_error (error, "cannot save %s: ", c->path);
      return FALSE;
    }
  return TRUE;
}

void
st_config_apply_env (StConfig *c)
{
  if (c->demo && c->softhsm2_conf != NULL)
    g_setenv ("SOFTHSM2_CONF", c->softhsm2_conf, TRUE);
}
