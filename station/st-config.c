#include "st-config.h"

#include <glib/gi18n.h>

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
  g_free (c->matter_vendor_id);
  g_free (c->matter_product_id);
  g_strfreev (c->socket_ports);
  g_strfreev (c->socket_names);
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

/* ---- the table: every group and key station.conf may hold --------------- */

typedef enum {
  ST_CONF_STRING,       /* any text on one line */
  ST_CONF_BOOL,         /* true or false */
  ST_CONF_UINT,         /* a decimal number within min..max */
  ST_CONF_PATH,         /* a file: absolute, or relative to HOME */
  ST_CONF_PKCS11_URI,   /* an RFC 7512 pkcs11: URI without a PIN */
  ST_CONF_PATH_OR_URI,  /* a file or a pkcs11: URI */
  ST_CONF_HEX64,        /* 64 hexadecimal digits */
  ST_CONF_MATTER_ID,    /* a Matter VID or PID: exactly 4 upper-case hex digits, not 0000 */
} StConfType;

typedef enum {
  ST_CONF_OPTIONAL,
  ST_CONF_REQUIRED,
  ST_CONF_REQUIRED_IF_DEMO,
} StConfNeed;

typedef struct {
  const char *group, *key;
  StConfNeed need;
  StConfType type;
  guint64 min, max;       /* ST_CONF_UINT */
  gsize offset;           /* the StConfig field (gchar*, gboolean or guint) */
  const char *meaning;    /* for messages and docs/setup.md */
} StConfKey;

#define ST_CONF_FIELD(f) G_STRUCT_OFFSET (StConfig, f)

static const StConfKey st_conf_keys[] = {
  { "station", "id", ST_CONF_REQUIRED, ST_CONF_STRING, 0, 0, ST_CONF_FIELD (station_id),
    "the station's stable id (made by 'setup demo' or 'ca init')" },
  { "station", "demo", ST_CONF_OPTIONAL, ST_CONF_BOOL, 0, 0, ST_CONF_FIELD (demo),
    "true only for a demo station (default false)" },
  { "station", "db", ST_CONF_OPTIONAL, ST_CONF_PATH, 0, 0, ST_CONF_FIELD (db_path),
    "the database file (default HOME/station.db)" },
  { "station", "idle-logout-s", ST_CONF_OPTIONAL, ST_CONF_UINT, 0, 24 * 3600, ST_CONF_FIELD (idle_logout_s),
    "seconds of inactivity before the GUI logs out, 0..86400 (default 300)" },
  { "hsm", "module", ST_CONF_REQUIRED, ST_CONF_PATH, 0, 0, ST_CONF_FIELD (hsm_module),
    "the PKCS#11 module of the HSM" },
  { "hsm", "token", ST_CONF_REQUIRED, ST_CONF_STRING, 0, 0, ST_CONF_FIELD (hsm_token),
    "the token's label (not a slot number)" },
  { "hsm", "softhsm2-conf", ST_CONF_REQUIRED_IF_DEMO, ST_CONF_PATH, 0, 0, ST_CONF_FIELD (softhsm2_conf),
    "the demo's own SoftHSM2 configuration (demo only)" },
  { "hsm", "ca-key", ST_CONF_REQUIRED, ST_CONF_PKCS11_URI, 0, 0, ST_CONF_FIELD (ca_key_uri),
    "the issuing CA's private key in the token (pkcs11: URI)" },
  { "hsm", "signing-key", ST_CONF_REQUIRED, ST_CONF_PKCS11_URI, 0, 0, ST_CONF_FIELD (signing_key_uri),
    "the station signing key in the token (pkcs11: URI)" },
  { "certificates", "ca-cert", ST_CONF_REQUIRED, ST_CONF_PATH_OR_URI, 0, 0, ST_CONF_FIELD (ca_cert),
    "the issuing CA certificate (PEM file or pkcs11: URI)" },
  { "certificates", "signing-cert", ST_CONF_REQUIRED, ST_CONF_PATH_OR_URI, 0, 0, ST_CONF_FIELD (signing_cert),
    "the station signing certificate (PEM file or pkcs11: URI)" },
  { "certificates", "signing-key-sha256", ST_CONF_OPTIONAL, ST_CONF_HEX64, 0, 0, ST_CONF_FIELD (signing_key_sha256),
    "the pin: SHA-256 of the signing certificate's public key, as 'station ca show' prints it" },
  { "certificates", "chain", ST_CONF_REQUIRED, ST_CONF_PATH, 0, 0, ST_CONF_FIELD (chain_file),
    "PEM: the issuing CA first, then up to and including the root" },
  { "certificates", "root", ST_CONF_REQUIRED, ST_CONF_PATH, 0, 0, ST_CONF_FIELD (root_file),
    "the trusted root (PEM)" },
  { "audit", "checkpoint-every", ST_CONF_OPTIONAL, ST_CONF_UINT, 1, 1000000, ST_CONF_FIELD (checkpoint_every),
    "a signed audit checkpoint every N entries while a line runs (default 1000)" },
  { "matter", "vendor-id", ST_CONF_OPTIONAL, ST_CONF_MATTER_ID, 0, 0, ST_CONF_FIELD (matter_vendor_id),
    "a Matter station: the Vendor ID its PAI carries, 4 upper-case hex digits (docs/matter.md)" },
  { "matter", "product-id", ST_CONF_OPTIONAL, ST_CONF_MATTER_ID, 0, 0, ST_CONF_FIELD (matter_product_id),
    "a Matter station whose PAI names one product: its Product ID, 4 upper-case hex digits" },
};

/* Keys people write by habit, with what to do instead. */
static const struct {
  const char *key, *fix;
} st_conf_hints[] = {
  { "slot", "name the token by its label with token=LABEL in [hsm]: slot numbers change when "
            "tokens are added or removed" },
  { "slot-id", "name the token by its label with token=LABEL in [hsm]" },
  { "pin", "a PIN never goes into station.conf: remove it; the PIN comes from STATION_HSM_PIN or the prompt" },
  { "user-pin", "a PIN never goes into station.conf: remove it; the PIN comes from STATION_HSM_PIN or the prompt" },
  { "so-pin", "a PIN never goes into station.conf: remove it; the SO PIN is asked only by 'admin recover'" },
  { "pin-value", "a PIN never goes into station.conf: remove it; the PIN comes from STATION_HSM_PIN or the prompt" },
  { "pin-source", "a PIN never goes into station.conf: remove it; the PIN comes from STATION_HSM_PIN or the prompt" },
};

static const char *const st_conf_groups[] = { "station", "hsm", "certificates", "audit", "sockets", "matter", NULL };

/* Edit distance, for "did you mean"; short names only. */
static guint
st_conf_distance (const char *a, const char *b)
{
  gsize la = strlen (a), lb = strlen (b);
  if (la > 63 || lb > 63)
    return G_MAXUINT;
  guint prev[64], cur[64];
  for (gsize j = 0; j <= lb; j++)
    prev[j] = (guint) j;
  for (gsize i = 1; i <= la; i++)
    {
      cur[0] = (guint) i;
      for (gsize j = 1; j <= lb; j++)
        {
          guint sub = prev[j - 1] + (g_ascii_tolower (a[i - 1]) == g_ascii_tolower (b[j - 1]) ? 0 : 1);
          cur[j] = MIN (sub, MIN (prev[j] + 1, cur[j - 1] + 1));
        }
      memcpy (prev, cur, sizeof (guint) * (lb + 1));
    }
  return prev[lb];
}

static const char *
st_conf_closest (const char *name, const char *const *candidates)
{
  const char *best = NULL;
  guint best_d = G_MAXUINT;
  for (gsize i = 0; candidates[i] != NULL; i++)
    {
      guint d = st_conf_distance (name, candidates[i]);
      if (d < best_d)
        {
          best_d = d;
          best = candidates[i];
        }
    }
  gsize len = strlen (name);
  return best != NULL && best_d <= (len <= 4 ? 1u : 2u) ? best : NULL;
}

static const StConfKey *
st_conf_find (const char *group, const char *key)
{
  for (gsize i = 0; i < G_N_ELEMENTS (st_conf_keys); i++)
    if (g_strcmp0 (st_conf_keys[i].group, group) == 0 && g_strcmp0 (st_conf_keys[i].key, key) == 0)
      return &st_conf_keys[i];
  return NULL;
}

static gchar *
st_conf_keys_of (const char *group)
{
  g_autoptr(GString) s = g_string_new (NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (st_conf_keys); i++)
    if (g_strcmp0 (st_conf_keys[i].group, group) == 0)
      g_string_append_printf (s, "%s%s", s->len > 0 ? ", " : "", st_conf_keys[i].key);
  return g_string_free (g_steal_pointer (&s), FALSE);
}

G_GNUC_PRINTF (3, 4) static void
st_conf_error (const StConfig *c, GError **error, const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  g_autofree gchar *msg = g_strdup_vprintf (format, ap);
  va_end (ap);
  g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "%s: %s", c->path, msg);
}

static void
st_conf_unknown_key (const StConfig *c, const char *group, const char *key, GError **error)
{
  for (gsize i = 0; i < G_N_ELEMENTS (st_conf_hints); i++)
    if (g_ascii_strcasecmp (key, st_conf_hints[i].key) == 0)
      {
        st_conf_error (c, error, "[%s] unknown key '%s': %s", group, key, st_conf_hints[i].fix);
        return;
      }
  g_autofree gchar *known = st_conf_keys_of (group);
  g_autoptr(GPtrArray) names = g_ptr_array_new ();
  for (gsize i = 0; i < G_N_ELEMENTS (st_conf_keys); i++)
    if (g_strcmp0 (st_conf_keys[i].group, group) == 0)
      g_ptr_array_add (names, (gpointer) st_conf_keys[i].key);
  g_ptr_array_add (names, NULL);
  const char *near = st_conf_closest (key, (const char *const *) names->pdata);
  if (near != NULL)
    {
      st_conf_error (c, error, "[%s] unknown key '%s': did you mean '%s'? (the keys of [%s] are %s)",
                     group, key, near, group, known);
      return;
    }
  /* a key of another group */
  for (gsize i = 0; i < G_N_ELEMENTS (st_conf_keys); i++)
    if (g_strcmp0 (st_conf_keys[i].key, key) == 0)
      {
        st_conf_error (c, error, "[%s] unknown key '%s': it belongs in [%s]; move it there",
                       group, key, st_conf_keys[i].group);
        return;
      }
  st_conf_error (c, error, "[%s] unknown key '%s': remove it (the keys of [%s] are %s)", group, key,
                 group, known);
}

/* GKeyFile keeps the last of a key given twice and merges a group given
 * twice: both are found in the text first, so that nothing is silently
 * overridden. The rest of the syntax is GKeyFile's. */
static gboolean
st_conf_check_lines (const StConfig *c, const char *data, gsize len, GError **error)
{
  g_autoptr(GHashTable) groups = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GHashTable) keys = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autofree gchar *text = g_strndup (data, len);
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  g_autofree gchar *group = NULL;
  for (guint i = 0; lines[i] != NULL; i++)
    {
      gchar *line = g_strstrip (lines[i]);
      if (*line == '\0' || *line == '#')
        continue;
      if (*line == '[')
        {
          gchar *close = strchr (line, ']');
          if (close == NULL)
            continue; /* GKeyFile says what is wrong */
          g_free (group);
          group = g_strndup (line + 1, (gsize) (close - line - 1));
          if (!g_hash_table_add (groups, g_strdup (group)))
            {
              st_conf_error (c, error, "line %u: the group [%s] is given twice: merge the two into one",
                             i + 1, group);
              return FALSE;
            }
          continue;
        }
      gchar *eq = strchr (line, '=');
      if (eq == NULL || group == NULL)
        continue; /* GKeyFile says what is wrong */
      g_autofree gchar *key = g_strstrip (g_strndup (line, (gsize) (eq - line)));
      if (strchr (key, '[') != NULL)
        {
          st_conf_error (c, error, "line %u: [%s] unknown key '%s': localized keys (key[locale]) are "
                         "not supported; remove it", i + 1, group, key);
          return FALSE;
        }
      g_autofree gchar *id = g_strdup_printf ("%s\n%s", group, key);
      if (!g_hash_table_add (keys, g_steal_pointer (&id)))
        {
          st_conf_error (c, error, "line %u: [%s] the key '%s' is given twice: keep one (station.conf "
                         "would otherwise silently use the last)", i + 1, group, key);
          return FALSE;
        }
    }
  return TRUE;
}

/* A pkcs11: URI (RFC 7512) without a PIN in it: "pkcs11:", then
 * attributes; pin-value and pin-source (query attributes) are refused. */
static gboolean
st_conf_check_uri (const StConfig *c, const StConfKey *k, const char *v, GError **error)
{
  if (!g_str_has_prefix (v, "pkcs11:") || v[7] == '\0')
    {
      st_conf_error (c, error, "[%s] %s must be a pkcs11: URI such as "
                     "pkcs11:token=LABEL;object=issuing-ca;type=private (%s), not '%s'",
                     k->group, k->key, k->meaning, v);
      return FALSE;
    }
  g_auto(GStrv) attrs = g_strsplit_set (v + 7, ";?&", -1);
  for (guint i = 0; attrs[i] != NULL; i++)
    {
      g_autofree gchar *name = g_ascii_strdown (attrs[i], strcspn (attrs[i], "="));
      g_strstrip (name);
      if (g_strcmp0 (name, "pin-value") == 0 || g_strcmp0 (name, "pin-source") == 0)
        {
          st_conf_error (c, error, "[%s] %s holds '%s' in its pkcs11: URI: a PIN never goes into "
                         "station.conf: remove %s from the URI; the PIN comes from "
                         "STATION_HSM_PIN or the prompt", k->group, k->key, name, name);
          return FALSE;
        }
      if (g_strcmp0 (name, "slot-id") == 0)
        {
          st_conf_error (c, error, "[%s] %s names a slot (slot-id) in its pkcs11: URI: name the token "
                         "by its label (token=LABEL) instead: slot numbers change", k->group, k->key);
          return FALSE;
        }
    }
  return TRUE;
}

/* One key's value, checked against its type and stored in @c. */
static gboolean
st_conf_take (GKeyFile *kf, StConfig *c, const StConfKey *k, GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autofree gchar *v = g_key_file_get_string (kf, k->group, k->key, &local);
  if (v == NULL)
    {
      st_conf_error (c, error, "[%s] %s: %s: write it on one line as %s=VALUE", k->group, k->key,
                     local->message, k->key);
      return FALSE;
    }
  if (*v == '\0')
    {
      st_conf_error (c, error, "[%s] %s is empty: give %s, or remove the line%s", k->group, k->key,
                     k->meaning, k->need == ST_CONF_OPTIONAL ? "" : " (and the station will say it is missing)");
      return FALSE;
    }
  gpointer field = G_STRUCT_MEMBER_P (c, k->offset);
  switch (k->type)
    {
    case ST_CONF_BOOL:
      if (g_strcmp0 (v, "true") != 0 && g_strcmp0 (v, "false") != 0)
        {
          st_conf_error (c, error, "[%s] %s must be true or false, not '%s'", k->group, k->key, v);
          return FALSE;
        }
      *(gboolean *) field = g_strcmp0 (v, "true") == 0;
      return TRUE;
    case ST_CONF_UINT:
      {
        guint64 n = 0;
        if (!g_ascii_string_to_unsigned (v, 10, k->min, k->max, &n, NULL))
          {
            st_conf_error (c, error, "[%s] %s must be a whole number from %" G_GUINT64_FORMAT " to %"
                           G_GUINT64_FORMAT " (%s), not '%s'", k->group, k->key, k->min, k->max,
                           k->meaning, v);
            return FALSE;
          }
        *(guint *) field = (guint) n;
        return TRUE;
      }
    case ST_CONF_HEX64:
      if (strlen (v) != 64 || strspn (v, "0123456789abcdefABCDEF") != 64)
        {
          st_conf_error (c, error, "[%s] %s must be 64 hex digits (%s)", k->group, k->key, k->meaning);
          return FALSE;
        }
      break;
    case ST_CONF_MATTER_ID:
      if (strlen (v) != 4 || strspn (v, "0123456789ABCDEF") != 4 || strcmp (v, "0000") == 0)
        {
          st_conf_error (c, error, "[%s] %s=%s must be exactly 4 upper-case hex digits, not 0000, "
                         "such as FFF1 (%s)", k->group, k->key, v, k->meaning);
          return FALSE;
        }
      break;
    case ST_CONF_PKCS11_URI:
      if (!st_conf_check_uri (c, k, v, error))
        return FALSE;
      break;
    case ST_CONF_PATH_OR_URI:
      if (g_str_has_prefix (v, "pkcs11:") && !st_conf_check_uri (c, k, v, error))
        return FALSE;
      break;
    case ST_CONF_PATH:
      if (g_str_has_prefix (v, "pkcs11:"))
        {
          st_conf_error (c, error, "[%s] %s must be a file (%s), not a pkcs11: URI", k->group, k->key,
                         k->meaning);
          return FALSE;
        }
      break;
    case ST_CONF_STRING:
    default:
      break;
    }
  gchar **out = field;
  g_free (*out);
  *out = k->type == ST_CONF_PATH || k->type == ST_CONF_PATH_OR_URI ? st_config_resolve (c, v)
                                                                   : g_steal_pointer (&v);
  return TRUE;
}

/* [sockets]: each key a socket's port (an absolute path), its value the
 * name the GUI shows on the socket's tile, in the file's order. Names are
 * configuration, not device input, but they are bounded here all the same
 * (ST_CONFIG_MAX_SOCKET_NAME characters, one line, no control character)
 * and escaped where they are shown. */
static gboolean
st_conf_sockets (GKeyFile *kf, StConfig *c, GError **error)
{
  if (!g_key_file_has_group (kf, "sockets"))
    return TRUE;
  gsize n = 0;
  g_auto(GStrv) ports = g_key_file_get_keys (kf, "sockets", &n, NULL);
  if (n > ST_CONFIG_MAX_SOCKETS)
    {
      st_conf_error (c, error, "[sockets] names %" G_GSIZE_FORMAT " sockets: a station has at most %d; "
                     "remove the ones this station does not use", n, ST_CONFIG_MAX_SOCKETS);
      return FALSE;
    }
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  for (gsize i = 0; i < n; i++)
    {
      const char *port = ports[i];
      if (!g_path_is_absolute (port) || strlen (port) > ST_CONFIG_MAX_SOCKET_PORT)
        {
          st_conf_error (c, error, "[sockets] '%s' is not a socket's port: each key is the absolute path "
                         "of a port (at most %d bytes), such as /dev/ttyUSB0 = Fixture A",
                         port, ST_CONFIG_MAX_SOCKET_PORT);
          return FALSE;
        }
      g_autoptr(GError) local = NULL;
      g_autofree gchar *name = g_key_file_get_string (kf, "sockets", port, &local);
      if (name == NULL)
        {
          st_conf_error (c, error, "[sockets] %s: %s: write the socket's name on one line in UTF-8",
                         port, local->message);
          return FALSE;
        }
      g_strstrip (name);
      glong chars = g_utf8_strlen (name, -1);
      if (chars == 0 || chars > ST_CONFIG_MAX_SOCKET_NAME)
        {
          st_conf_error (c, error, "[sockets] %s: the name must be 1 to %d characters long, not %ld: "
                         "give a short name such as 'Fixture A'", port, ST_CONFIG_MAX_SOCKET_NAME,
                         chars);
          return FALSE;
        }
      for (const char *p = name; *p != '\0'; p = g_utf8_next_char (p))
        if (g_unichar_iscntrl (g_utf8_get_char (p)))
          {
            st_conf_error (c, error, "[sockets] %s: the name holds a control character: write it as "
                           "plain text on one line", port);
            return FALSE;
          }
      for (guint j = 0; j < names->len; j++)
        if (g_strcmp0 (g_ptr_array_index (names, j), name) == 0)
          {
            st_conf_error (c, error, "[sockets] the name '%s' is given to %s and to %s: give each socket "
                           "a name of its own", name, ports[j], port);
            return FALSE;
          }
      g_ptr_array_add (names, g_steal_pointer (&name));
    }
  g_ptr_array_add (names, NULL);
  g_strfreev (c->socket_ports);
  g_strfreev (c->socket_names);
  c->socket_ports = g_steal_pointer (&ports);
  c->socket_names = (gchar **) g_ptr_array_free (g_steal_pointer (&names), FALSE);
  return TRUE;
}

static gboolean
st_conf_parse (StConfig *c, const char *data, gsize len, GError **error)
{
  if (!st_conf_check_lines (c, data, len, error))
    return FALSE;
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_autoptr(GError) local = NULL;
  if (!g_key_file_load_from_data (kf, data, len, G_KEY_FILE_NONE, &local))
    {
      st_conf_error (c, error, "not a valid configuration file: %s (the format is [group] lines "
                     "and key=value lines; see docs/setup.md)", local->message);
      return FALSE;
    }
  /* every group and key known */
  g_auto(GStrv) groups = g_key_file_get_groups (kf, NULL);
  for (guint i = 0; groups[i] != NULL; i++)
    {
      if (!g_strv_contains (st_conf_groups, groups[i]))
        {
          const char *near = st_conf_closest (groups[i], st_conf_groups);
          if (near != NULL)
            st_conf_error (c, error, "unknown group [%s]: did you mean [%s]? (the groups are [station], "
                           "[hsm], [certificates], [audit], [sockets] and [matter])", groups[i], near);
          else
            st_conf_error (c, error, "unknown group [%s]: remove it (the groups are [station], [hsm], "
                           "[certificates], [audit], [sockets] and [matter])", groups[i]);
          return FALSE;
        }
      if (g_strcmp0 (groups[i], "sockets") == 0)
        continue; /* its keys are ports: st_conf_sockets */
      g_auto(GStrv) keys = g_key_file_get_keys (kf, groups[i], NULL, NULL);
      for (guint j = 0; keys != NULL && keys[j] != NULL; j++)
        if (st_conf_find (groups[i], keys[j]) == NULL)
          {
            st_conf_unknown_key (c, groups[i], keys[j], error);
            return FALSE;
          }
    }
  c->awaiting_import = !g_key_file_has_group (kf, "certificates");
  /* [station] demo first: it decides whether softhsm2-conf is required */
  const StConfKey *demo = st_conf_find ("station", "demo");
  if (g_key_file_has_key (kf, "station", "demo", NULL) && !st_conf_take (kf, c, demo, error))
    return FALSE;
  for (gsize i = 0; i < G_N_ELEMENTS (st_conf_keys); i++)
    {
      const StConfKey *k = &st_conf_keys[i];
      if (k == demo)
        continue;
      if (g_key_file_has_key (kf, k->group, k->key, NULL))
        {
          if (!st_conf_take (kf, c, k, error))
            return FALSE;
          continue;
        }
      gboolean required = k->need == ST_CONF_REQUIRED || (k->need == ST_CONF_REQUIRED_IF_DEMO && c->demo);
      if (!required || (c->awaiting_import && g_strcmp0 (k->group, "certificates") == 0))
        continue;
      st_conf_error (c, error, "[%s] has no '%s' (%s): add %s=VALUE to [%s]%s", k->group, k->key,
                     k->meaning, k->key, k->group,
                     g_strcmp0 (k->group, "certificates") == 0
                       ? ", or run 'station ca import' to write [certificates]" : "");
      return FALSE;
    }
  if (!c->demo)
    g_clear_pointer (&c->softhsm2_conf, g_free);
  if (c->matter_product_id != NULL && c->matter_vendor_id == NULL)
    {
      st_conf_error (c, error, "[matter] has a product-id but no vendor-id: a Matter station's PAI "
                     "always carries a VID; add vendor-id=VVVV to [matter]");
      return FALSE;
    }
  return st_conf_sockets (kf, c, error);
}

StConfig *
st_config_load (const char *home, GError **error)
{
  return st_config_load_file (home, NULL, error);
}

StConfig *
st_config_load_data (const char *home, const char *path, const char *data, gsize len,
                     GError **error)
{
  g_autoptr(StConfig) c = st_config_new (home);
  if (path != NULL)
    {
      g_free (c->path);
      c->path = g_strdup (path);
    }
  if (len > ST_CONFIG_MAX_SIZE)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, _("%s is larger than %d bytes"), c->path,
                   ST_CONFIG_MAX_SIZE);
      return NULL;
    }
  if (!st_conf_parse (c, data, len, error))
    return NULL;
  return g_steal_pointer (&c);
}

StConfig *
st_config_load_file (const char *home, const char *path, GError **error)
{
  g_autofree gchar *conf_path = path != NULL ? g_strdup (path) : g_build_filename (home, ST_CONFIG_FILE, NULL);
  g_autofree gchar *data = NULL;
  gsize len = 0;
  GStatBuf st;
  if (g_stat (conf_path, &st) != 0)
    {
      int e = errno;
      if (e == ENOENT)
        g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                     _("%s has no station.conf: run 'station setup demo' for a demo, or "
                     "'station ca init' for a real station (docs/ceremony.md)"), home);
      else
        g_set_error (error, ST_ERROR, ST_ERROR_READ, _("cannot read %s: %s"), conf_path, g_strerror (e));
      return NULL;
    }
  if (st.st_size > ST_CONFIG_MAX_SIZE)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, _("%s is larger than %d bytes"), conf_path,
                   ST_CONFIG_MAX_SIZE);
      return NULL;
    }
  g_autoptr(GError) local = NULL;
  if (!g_file_get_contents (conf_path, &data, &len, &local))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_READ, _("cannot read %s: %s"), conf_path, local->message);
      return NULL;
    }
  return st_config_load_data (home, conf_path, data, len, error);
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
  if (!c->awaiting_import)
    {
      st_config_set (kf, "certificates", "ca-cert", c->ca_cert);
      st_config_set (kf, "certificates", "signing-cert", c->signing_cert);
      st_config_set (kf, "certificates", "signing-key-sha256", c->signing_key_sha256);
      st_config_set (kf, "certificates", "chain", c->chain_file);
      st_config_set (kf, "certificates", "root", c->root_file);
    }
  if (c->checkpoint_every > 0)
    g_key_file_set_uint64 (kf, "audit", "checkpoint-every", c->checkpoint_every);
  st_config_set (kf, "matter", "vendor-id", c->matter_vendor_id);
  st_config_set (kf, "matter", "product-id", c->matter_product_id);
  for (guint i = 0; c->socket_ports != NULL && c->socket_ports[i] != NULL; i++)
    g_key_file_set_string (kf, "sockets", c->socket_ports[i], c->socket_names[i]);
  gsize len = 0;
  g_autofree gchar *data = g_key_file_to_data (kf, &len, NULL);
  if (!st_file_write_durable (c->path, data, len, 0600, error))
    {
      g_prefix_error (error, _("cannot save %s: "), c->path);
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
