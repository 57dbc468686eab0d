/* The station configuration: HOME/station.conf (a GKeyFile).
 *
 * Also brings in the build configuration (st-build-config.h: ST_VERSION,
 * ST_SOFTHSM_MODULE, ...), so that "st-config.h" is the one configuration
 * header station/ includes. */
#pragma once

#include <glib.h>

#include "st-build-config.h"

G_BEGIN_DECLS

#define ST_CONFIG_FILE "station.conf"
#define ST_CONFIG_IDLE_LOGOUT_DEFAULT 300
/* station.conf is small: refuse anything larger. */
#define ST_CONFIG_MAX_SIZE (64 * 1024)

typedef struct {
  gchar *home, *path;          /* HOME and HOME/station.conf */
  gchar *station_id;           /* stable id, made at setup */
  gboolean demo;
  gchar *hsm_module, *hsm_token, *softhsm2_conf; /* softhsm2_conf NULL unless the demo; set SOFTHSM2_CONF from it before loading the module */
  gchar *ca_key_uri, *signing_key_uri;           /* pkcs11: URIs */
  gchar *ca_cert, *signing_cert;                 /* a file path (PEM) or a pkcs11: URI */
  gchar *signing_key_sha256;   /* hex SHA-256 of the signing certificate's SubjectPublicKeyInfo: the pin */
  gchar *chain_file;           /* PEM: issuing CA first, then up to and including the root */
  gchar *root_file;            /* the trusted root (PEM) */
  gchar *db_path;              /* HOME/station.db */
  guint idle_logout_s;         /* GUI, default 300 */
} StConfig;

/* STATION_HOME, else ~/.local/share/station */
const char *st_config_default_home (void);
/* An empty configuration for @home (paths filled in with their defaults). */
StConfig *st_config_new (const char *home);
/* NOT_FOUND "HOME has no station.conf: run 'station setup demo' or see
 * docs/setup.md"; INVALID_DATA names the missing key. Relative paths in the
 * file are taken relative to HOME. */
StConfig *st_config_load (const char *home, GError **error);
/* The same with the configuration in @path (NULL: HOME/station.conf), as
 * stationd --config reads /etc/station/station.conf; paths in it are still
 * relative to HOME. */
StConfig *st_config_load_file (const char *home, const char *path, GError **error);
/* Durable write of HOME/station.conf (0600). */
gboolean st_config_save (StConfig *config, GError **error);
/* Sets SOFTHSM2_CONF for a demo station (before the module is loaded). */
void st_config_apply_env (StConfig *config);
void st_config_free (StConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StConfig, st_config_free)

G_END_DECLS
