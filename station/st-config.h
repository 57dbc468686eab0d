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
/* [sockets]: at most this many, a name of at most this many characters,
 * a port path of at most this many bytes. */
#define ST_CONFIG_MAX_SOCKETS 64
#define ST_CONFIG_MAX_SOCKET_NAME 64
#define ST_CONFIG_MAX_SOCKET_PORT 255
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
  guint checkpoint_every;      /* [audit] checkpoint-every; 0: not set (st-audit.c's default) */
  /* No [certificates] group: 'station ca init' made the keys and the
   * requests, and 'station ca import' has not given the certificates yet.
   * The certificate fields above are NULL; the HSM cannot be unlocked. */
  gboolean awaiting_import;
  /* [matter]: a Matter station (docs/matter.md, "The PAA and the PAI"):
   * its root is a PAA and its issuing CA a PAI of this Vendor ID (and
   * Product ID, when set), 4 upper-case hex digits each; NULL otherwise. */
  gchar *matter_vendor_id, *matter_product_id;
  /* [sockets]: PORT = NAME, in the order the fixtures stand (the file's
   * order); both NULL-terminated and as long, NULL when the group is absent. */
  gchar **socket_ports;
  gchar **socket_names;
} StConfig;

/* STATION_HOME, else ~/.local/share/station */
const char *st_config_default_home (void);
/* An empty configuration for @home (paths filled in with their defaults). */
StConfig *st_config_new (const char *home);
/* NOT_FOUND "HOME has no station.conf: run 'station setup demo' or see
 * docs/setup.md". The file is read strictly (the table in st-config.c,
 * docs/setup.md): an unknown group or key, a key given twice, a value of
 * the wrong type, a PIN inside a pkcs11: URI or a missing required key is
 * INVALID_DATA naming the file, the group, the key and the fix. Relative
 * paths in the file are taken relative to HOME. A file without a
 * [certificates] group loads with awaiting_import set. */
StConfig *st_config_load (const char *home, GError **error);
/* The same with the configuration in @path (NULL: HOME/station.conf), as
 * stationd --config reads /etc/station/station.conf; paths in it are still
 * relative to HOME. */
StConfig *st_config_load_file (const char *home, const char *path, GError **error);
/* Durable write of HOME/station.conf (0600); with awaiting_import, no
 * [certificates] group. */
gboolean st_config_save (StConfig *config, GError **error);
/* Sets SOFTHSM2_CONF for a demo station (before the module is loaded). */
void st_config_apply_env (StConfig *config);
/* The same strict reading of @data (@len bytes) as if it were the file
 * @path of @home (for tests and the fuzzer). */
StConfig *st_config_load_data (const char *home, const char *path, const char *data, gsize len,
                               GError **error);
void st_config_free (StConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StConfig, st_config_free)

G_END_DECLS
