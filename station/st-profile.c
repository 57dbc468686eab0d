/* Product profiles (docs/profiles.md). */
#include "st-profile.h"

#include <openssl/cms.h>
#include <openssl/objects.h>
#include <string.h>

#include "st-error.h"
#include "st-ossl.h"
#include "st-util.h"

#define MAX_DESCRIPTION 256
#define MAX_MODEL 64
#define MAX_LIST_ITEMS 16
#define MAX_TEMPLATE 512

/* ---- the allowed groups and keys ---- */

typedef struct {
  const char *group;
  gboolean required;
  const char *const *keys;
} GroupSpec;

static const char *const keys_profile[] = { "name", "description", "model", NULL };
static const char *const keys_key[] = { "mode", "algorithm", NULL };
static const char *const keys_certificate[] = {
  "subject", "san", "validity-days", "validity", "backdate-minutes",
  "key-usage", "extended-key-usage", NULL
};
static const char *const keys_serial[] = { "format", NULL };
static const char *const keys_device[] = { "lock", NULL };
static const char *const keys_link[] = {
  "baud", "timeout-ms", "keygen-timeout-ms", "commit-timeout-ms", "retries",
  "blob-address", "blob-area-size", "uid-address", "uid-length", "go-address", NULL
};
static const char *const keys_firmware[] = { "image", "address", "sha256", NULL };
static const char *const keys_matter[] = {
  "vendor-id", "product-id", "discriminator", "discriminator-range", "passcode",
  "pbkdf2-iterations", "salt-length", "certification-declaration",
  "rotating-id-length", "commissioning-flow", "discovery", NULL
};

static const GroupSpec groups[] = {
  { "profile", TRUE, keys_profile },
  { "key", TRUE, keys_key },
  { "certificate", TRUE, keys_certificate },
  { "serial", TRUE, keys_serial },
  { "device", TRUE, keys_device },
  { "link", FALSE, keys_link },
  { "firmware", FALSE, keys_firmware },
  { "matter", FALSE, keys_matter },
};

/* ---- errors ---- */

typedef struct {
  const char *file;
  GKeyFile *kf;
} Ctx;

static void G_GNUC_PRINTF (3, 4)
ctx_error (const Ctx *ctx, GError **error, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree gchar *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "%s: %s", ctx->file, msg);
}

static gchar *
join_allowed (const char *const *items, const char *prefix, const char *suffix)
{
  g_autoptr(GString) s = g_string_new (NULL);
  guint n = g_strv_length ((gchar **) items);
  for (guint i = 0; i < n; i++)
    {
      if (i > 0)
        g_string_append (s, i + 1 == n ? " or " : ", ");
      g_string_append_printf (s, "%s%s%s", prefix, items[i], suffix);
    }
  return g_string_free (g_steal_pointer (&s), FALSE);
}

/* ---- templates: {uid}, {UID}, {serial}, {model} ---- */

static const char *const subject_placeholders[] = { "uid", "UID", "serial", "model", NULL };

/* Checks the placeholder syntax of @t; with @info, expands it. */
static gchar *
expand_template (const char *t, const StSubjectInfo *info, GError **error)
{
  g_autoptr(GString) out = g_string_new (NULL);
  for (const char *p = t; *p != '\0'; p++)
    {
      if (*p == '}')
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "'}' without '{' in '%s'; braces are only for placeholders", t);
          return NULL;
        }
      if (*p != '{')
        {
          g_string_append_c (out, *p);
          continue;
        }
      const char *end = strchr (p, '}');
      if (end == NULL)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "'{' without '}' in '%s'", t);
          return NULL;
        }
      g_autofree gchar *name = g_strndup (p + 1, (gsize) (end - p - 1));
      if (!g_strv_contains (subject_placeholders, name))
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "unknown placeholder {%s} in '%s'; use {uid}, {UID}, {serial} or {model}",
                       name, t);
          return NULL;
        }
      if (info != NULL)
        {
          const char *v = NULL;
          g_autofree gchar *up = NULL;
          if (strcmp (name, "uid") == 0 || strcmp (name, "UID") == 0)
            {
              v = info->uid_hex;
              if (v != NULL && strcmp (name, "UID") == 0)
                v = up = g_ascii_strup (v, -1);
              else if (v != NULL)
                v = up = g_ascii_strdown (v, -1);
            }
          else if (strcmp (name, "serial") == 0)
            v = info->product_serial;
          else
            v = info->model;
          if (v == NULL || *v == '\0')
            {
              g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "no value for the placeholder {%s} in '%s'", name, t);
              return NULL;
            }
          g_string_append (out, v);
        }
      else
        g_string_append_printf (out, "{%s}", name);
      p = end;
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

gchar *
st_profile_expand (const char *template_, const StSubjectInfo *info, GError **error)
{
  g_return_val_if_fail (template_ != NULL, NULL);
  g_return_val_if_fail (info != NULL, NULL);
  return expand_template (template_, info, error);
}

/* ---- the subject ---- */

typedef struct {
  const char *name;
  int nid;
  guint max_len;
} AttrSpec;

static const AttrSpec attr_specs[] = {
  { "CN", NID_commonName, 64 },
  { "O", NID_organizationName, 64 },
  { "OU", NID_organizationalUnitName, 64 },
  { "C", NID_countryName, 2 },
  { "ST", NID_stateOrProvinceName, 128 },
  { "L", NID_localityName, 128 },
  { "serialNumber", NID_serialNumber, 64 },
  { "DC", NID_domainComponent, 63 },
};

static const char *const attr_names[] = { "CN", "O", "OU", "C", "ST", "L", "serialNumber", "DC", NULL };

typedef struct {
  const AttrSpec *spec;
  gchar *value;   /* template, unescaped */
} Rdn;

static void
rdn_free (gpointer p)
{
  Rdn *r = p;
  g_free (r->value);
  g_free (r);
}

/* Splits @t at unescaped ',' into "attr=value" pieces and parses each;
 * returns the RDNs in DER order (the reverse of the text). */
static GPtrArray *
parse_subject (const char *t, GError **error)
{
  g_autoptr(GPtrArray) rdns = g_ptr_array_new_with_free_func (rdn_free);
  const char *p = t;
  gboolean have_cn = FALSE, have_c = FALSE;

  if (*t == '\0')
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "the subject is empty; give at least CN=...");
      return NULL;
    }
  while (TRUE)
    {
      g_autoptr(GString) attr = g_string_new (NULL);
      g_autoptr(GString) value = g_string_new (NULL);
      gboolean in_value = FALSE;

      for (; *p != '\0' && !(*p == ',' ); p++)
        {
          if (*p == '\\')
            {
              if (!in_value)
                {
                  g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                               "'\\' in an attribute name of '%s'", t);
                  return NULL;
                }
              char c = p[1];
              if (c == '\0' || strchr (",=+\\\"<>;#", c) == NULL)
                {
                  g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                               "bad escape '\\%c' in '%s'; only \\, \\= \\+ \\\\ \\\" \\< \\> \\; and \\# are allowed",
                               c == '\0' ? ' ' : c, t);
                  return NULL;
                }
              g_string_append_c (value, c);
              p++;
              continue;
            }
          if (*p == '=' && !in_value)
            {
              in_value = TRUE;
              continue;
            }
          if (*p == '=')
            {
              g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "unescaped '=' in a value of '%s'; write it as \\=", t);
              return NULL;
            }
          if (*p == '+')
            {
              g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "multi-valued RDNs are not supported in '%s'; write a literal '+' as \\+", t);
              return NULL;
            }
          if ((guchar) *p < 0x20 || *p == 0x7f)
            {
              g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "control character in '%s'", t);
              return NULL;
            }
          g_string_append_c (in_value ? value : attr, *p);
        }

      g_autofree gchar *a = g_strstrip (g_strdup (attr->str));
      if (!in_value || *a == '\0')
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "'%s' is not a list of attribute=value separated by ',' (write a literal ',' as \\,)", t);
          return NULL;
        }
      const AttrSpec *spec = NULL;
      for (guint i = 0; i < G_N_ELEMENTS (attr_specs); i++)
        if (g_ascii_strcasecmp (a, attr_specs[i].name) == 0)
          spec = &attr_specs[i];
      if (spec == NULL)
        {
          g_autofree gchar *allowed = join_allowed (attr_names, "", "");
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "attribute '%s' is not allowed in a subject; use %s", a, allowed);
          return NULL;
        }
      /* Spaces around the value are not significant. */
      g_autofree gchar *v = g_strstrip (g_strdup (value->str));
      if (*v == '\0')
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "%s has an empty value in '%s'", spec->name, t);
          return NULL;
        }
      g_autofree gchar *checked = expand_template (v, NULL, error);
      if (checked == NULL)
        return NULL;
      if (spec->nid == NID_commonName)
        {
          if (have_cn)
            {
              g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "CN is given twice in '%s'", t);
              return NULL;
            }
          have_cn = TRUE;
        }
      if (spec->nid == NID_countryName)
        {
          if (have_c || strlen (v) != 2 || !g_ascii_isupper (v[0]) || !g_ascii_isupper (v[1]))
            {
              g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "C=%s in '%s': C must be given once, as a two-letter upper-case country code (ISO 3166)",
                           v, t);
              return NULL;
            }
          have_c = TRUE;
        }
      Rdn *rdn = g_new0 (Rdn, 1);
      rdn->spec = spec;
      rdn->value = g_steal_pointer (&v);
      g_ptr_array_insert (rdns, 0, rdn);

      if (*p == '\0')
        break;
      p++; /* the ',' */
    }
  return g_steal_pointer (&rdns);
}

static gboolean
check_printable (const char *v)
{
  for (const char *p = v; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && strchr (" '()+,-./:=?", *p) == NULL)
      return FALSE;
  return TRUE;
}

static gboolean
check_ia5_dns_label (const char *v)
{
  for (const char *p = v; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && *p != '-')
      return FALSE;
  return TRUE;
}

X509_NAME *
st_profile_build_subject (const char *subject_template, const StSubjectInfo *info,
                          GError **error)
{
  g_autoptr(GPtrArray) rdns = parse_subject (subject_template, error);
  if (rdns == NULL)
    return NULL;
  g_autoptr(X509_NAME) name = X509_NAME_new ();
  if (name == NULL)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "X509_NAME_new");
      return NULL;
    }
  for (guint i = 0; i < rdns->len; i++)
    {
      const Rdn *rdn = g_ptr_array_index (rdns, i);
      g_autofree gchar *v = expand_template (rdn->value, info, error);
      if (v == NULL)
        return NULL;
      if (!g_utf8_validate (v, -1, NULL))
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "subject %s: the value is not valid UTF-8", rdn->spec->name);
          return NULL;
        }
      for (const char *c = v; *c != '\0'; c++)
        if ((guchar) *c < 0x20 || *c == 0x7f)
          {
            g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                         "subject %s: the value has a control character", rdn->spec->name);
            return NULL;
          }
      glong chars = g_utf8_strlen (v, -1);
      if (chars < 1 || (guint) chars > rdn->spec->max_len)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "subject %s=%s is %ld characters long; at most %u are allowed",
                       rdn->spec->name, v, chars, rdn->spec->max_len);
          return NULL;
        }
      if ((rdn->spec->nid == NID_serialNumber || rdn->spec->nid == NID_countryName)
          && !check_printable (v))
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "subject %s=%s: only letters, digits, space and ' ( ) + , - . / : = ? are allowed (PrintableString)",
                       rdn->spec->name, v);
          return NULL;
        }
      if (rdn->spec->nid == NID_domainComponent && !check_ia5_dns_label (v))
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "subject DC=%s: a domain component is letters, digits and '-'", v);
          return NULL;
        }
      if (X509_NAME_add_entry_by_NID (name, rdn->spec->nid, MBSTRING_UTF8,
                                      (const unsigned char *) v, -1, -1, 0) != 1)
        {
          g_autofree gchar *what = g_strdup_printf ("subject %s=%s", rdn->spec->name, v);
          st_error_set_openssl (error, ST_ERROR_INVALID_DATA, what);
          return NULL;
        }
    }
  return g_steal_pointer (&name);
}

/* ---- subjectAltName ---- */

static gboolean
check_dns_name (const char *v)
{
  gsize n = strlen (v);
  if (n == 0 || n > 253)
    return FALSE;
  g_auto(GStrv) labels = g_strsplit (v, ".", -1);
  for (guint i = 0; labels[i] != NULL; i++)
    {
      gsize l = strlen (labels[i]);
      if (l == 0 || l > 63 || labels[i][0] == '-' || labels[i][l - 1] == '-'
          || !check_ia5_dns_label (labels[i]))
        return FALSE;
    }
  return TRUE;
}

static gboolean
check_email (const char *v)
{
  const char *at = strchr (v, '@');
  if (at == NULL || at == v || strchr (at + 1, '@') != NULL || strlen (v) > 254)
    return FALSE;
  for (const char *p = v; p < at; p++)
    if ((guchar) *p <= 0x20 || (guchar) *p >= 0x7f || strchr ("\"(),:;<>[\\]", *p) != NULL)
      return FALSE;
  return check_dns_name (at + 1);
}

static gboolean
check_uri (const char *v)
{
  for (const char *p = v; *p != '\0'; p++)
    if ((guchar) *p <= 0x20 || (guchar) *p >= 0x7f)
      return FALSE;
  return g_uri_is_valid (v, G_URI_FLAGS_NONE, NULL);
}

static gboolean
split_san (const char *item, int *type, const char **rest)
{
  static const struct { const char *prefix; int type; } kinds[] = {
    { "URI:", GEN_URI }, { "DNS:", GEN_DNS }, { "email:", GEN_EMAIL },
  };
  for (guint i = 0; i < G_N_ELEMENTS (kinds); i++)
    if (g_ascii_strncasecmp (item, kinds[i].prefix, strlen (kinds[i].prefix)) == 0)
      {
        *type = kinds[i].type;
        *rest = item + strlen (kinds[i].prefix);
        return TRUE;
      }
  return FALSE;
}

GENERAL_NAMES *
st_profile_build_san (const char *const *san_templates, const StSubjectInfo *info,
                      GError **error)
{
  g_autoptr(GENERAL_NAMES) names = GENERAL_NAMES_new ();
  if (names == NULL)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "GENERAL_NAMES_new");
      return NULL;
    }
  for (guint i = 0; san_templates != NULL && san_templates[i] != NULL; i++)
    {
      int type = 0;
      const char *rest = NULL;
      if (!split_san (san_templates[i], &type, &rest))
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "SAN '%s' does not start with URI:, DNS: or email:", san_templates[i]);
          return NULL;
        }
      g_autofree gchar *v = expand_template (rest, info, error);
      if (v == NULL)
        return NULL;
      gboolean ok = type == GEN_URI ? check_uri (v)
                  : type == GEN_DNS ? check_dns_name (v)
                  : check_email (v);
      if (!ok)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "SAN %s%s is not a valid %s", type == GEN_URI ? "URI:" : type == GEN_DNS ? "DNS:" : "email:",
                       v, type == GEN_URI ? "absolute URI (RFC 3986, ASCII)"
                          : type == GEN_DNS ? "DNS name (letters, digits, '-', dots; no wildcards)"
                          : "e-mail address (local@domain, ASCII)");
          return NULL;
        }
      ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new ();
      GENERAL_NAME *gn = GENERAL_NAME_new ();
      if (ia5 == NULL || gn == NULL || ASN1_STRING_set (ia5, v, -1) != 1)
        {
          ASN1_IA5STRING_free (ia5);
          GENERAL_NAME_free (gn);
          st_error_set_openssl (error, ST_ERROR_INTERNAL, "GENERAL_NAME");
          return NULL;
        }
      GENERAL_NAME_set0_value (gn, type, ia5);
      if (sk_GENERAL_NAME_push (names, gn) <= 0)
        {
          GENERAL_NAME_free (gn);
          st_error_set_openssl (error, ST_ERROR_INTERNAL, "sk_GENERAL_NAME_push");
          return NULL;
        }
    }
  return g_steal_pointer (&names);
}

/* ---- the serial format ---- */

/* Walks the format; with @out, appends the expansion. Returns FALSE with an
 * explanation in @why. */
static gboolean
walk_serial_format (const char *fmt, guint64 seq, GDateTime *utc, GString *out,
                    guint *n_seq, gchar **why)
{
  *n_seq = 0;
  for (const char *p = fmt; *p != '\0'; p++)
    {
      if (*p == '{')
        {
          const char *end = strchr (p, '}');
          if (end == NULL)
            {
              *why = g_strdup ("'{' without '}'");
              return FALSE;
            }
          g_autofree gchar *name = g_strndup (p + 1, (gsize) (end - p - 1));
          if (strcmp (name, "seq") == 0)
            {
              (*n_seq)++;
              if (out != NULL)
                g_string_append_printf (out, "%" G_GUINT64_FORMAT, seq);
            }
          else if (g_str_has_prefix (name, "seq:"))
            {
              guint64 width = 0;
              if (!g_ascii_string_to_unsigned (name + 4, 10, 1, 20, &width, NULL))
                {
                  *why = g_strdup_printf ("{%s}: the width after seq: must be 1 to 20", name);
                  return FALSE;
                }
              (*n_seq)++;
              if (out != NULL)
                g_string_append_printf (out, "%0*" G_GUINT64_FORMAT, (int) width, seq);
            }
          else if (strcmp (name, "yyyy") == 0)
            {
              if (out != NULL)
                g_string_append_printf (out, "%04d", g_date_time_get_year (utc));
            }
          else if (strcmp (name, "yy") == 0)
            {
              if (out != NULL)
                g_string_append_printf (out, "%02d", g_date_time_get_year (utc) % 100);
            }
          else if (strcmp (name, "mm") == 0)
            {
              if (out != NULL)
                g_string_append_printf (out, "%02d", g_date_time_get_month (utc));
            }
          else if (strcmp (name, "dd") == 0)
            {
              if (out != NULL)
                g_string_append_printf (out, "%02d", g_date_time_get_day_of_month (utc));
            }
          else
            {
              *why = g_strdup_printf ("unknown placeholder {%s}; use {seq}, {seq:N}, {yyyy}, {yy}, {mm} or {dd}", name);
              return FALSE;
            }
          p = end;
          continue;
        }
      if (!g_ascii_isalnum (*p) && strchr ("-./:+", *p) == NULL)
        {
          *why = g_strdup_printf ("the character '%c' is not allowed; literal text is letters, digits and - . / : +",
                                  g_ascii_isprint (*p) ? *p : '?');
          return FALSE;
        }
      if (out != NULL)
        g_string_append_c (out, *p);
    }
  return TRUE;
}

gchar *
st_profile_format_serial (const StProfile *profile, guint64 seq, GDateTime *now)
{
  g_return_val_if_fail (profile != NULL && now != NULL, NULL);
  g_autoptr(GDateTime) utc = g_date_time_to_utc (now);
  g_autoptr(GString) out = g_string_new (NULL);
  g_autofree gchar *why = NULL;
  guint n_seq = 0;
  if (!walk_serial_format (profile->serial_format, seq, utc, out, &n_seq, &why))
    return NULL; /* validated at load time: not reached */
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/* ---- loading ---- */

/* GKeyFile keeps the last of duplicate keys and merges repeated groups:
 * find both in the text first, so that nothing is silently overridden. */
static gboolean
check_duplicates (const Ctx *ctx, const char *text, GError **error)
{
  g_autoptr(GHashTable) seen_groups = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GHashTable) seen_keys = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  g_autofree gchar *group = NULL;

  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_autofree gchar *line = g_strstrip (g_strdup (lines[i]));
      if (*line == '\0' || *line == '#')
        continue;
      if (*line == '[')
        {
          gchar *close = strchr (line, ']');
          if (close == NULL)
            continue; /* GKeyFile reports it */
          g_free (group);
          group = g_strndup (line + 1, (gsize) (close - line - 1));
          if (!g_hash_table_add (seen_groups, g_strdup (group)))
            {
              ctx_error (ctx, error, "the group [%s] appears twice (line %u); merge them", group, i + 1);
              return FALSE;
            }
          continue;
        }
      gchar *eq = strchr (line, '=');
      if (eq == NULL || group == NULL)
        continue; /* GKeyFile reports it */
      g_autofree gchar *key = g_strstrip (g_strndup (line, (gsize) (eq - line)));
      if (strchr (key, '[') != NULL)
        {
          /* GKeyFile hides localized keys from g_key_file_get_keys(). */
          ctx_error (ctx, error, "[%s] unknown key %s=%s; localized keys (key[locale]) are not supported",
                     group, key, g_strstrip (eq + 1));
          return FALSE;
        }
      g_autofree gchar *id = g_strdup_printf ("%s\n%s", group, key);
      if (!g_hash_table_add (seen_keys, g_steal_pointer (&id)))
        {
          ctx_error (ctx, error, "[%s] %s is given twice (line %u); keep one", group, key, i + 1);
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
check_known (const Ctx *ctx, GError **error)
{
  g_auto(GStrv) found = g_key_file_get_groups (ctx->kf, NULL);
  g_autoptr(GPtrArray) names = g_ptr_array_new ();
  for (guint i = 0; i < G_N_ELEMENTS (groups); i++)
    g_ptr_array_add (names, (gpointer) groups[i].group);
  g_ptr_array_add (names, NULL);

  for (guint i = 0; found[i] != NULL; i++)
    {
      const GroupSpec *spec = NULL;
      for (guint j = 0; j < G_N_ELEMENTS (groups); j++)
        if (strcmp (found[i], groups[j].group) == 0)
          spec = &groups[j];
      if (spec == NULL)
        {
          g_autofree gchar *allowed = join_allowed ((const char *const *) names->pdata, "[", "]");
          ctx_error (ctx, error, "unknown group [%s]; the groups are %s", found[i], allowed);
          return FALSE;
        }
      g_auto(GStrv) keys = g_key_file_get_keys (ctx->kf, found[i], NULL, NULL);
      for (guint k = 0; keys != NULL && keys[k] != NULL; k++)
        if (!g_strv_contains (spec->keys, keys[k]))
          {
            g_autofree gchar *allowed = join_allowed (spec->keys, "", "");
            g_autofree gchar *value = g_key_file_get_value (ctx->kf, found[i], keys[k], NULL);
            ctx_error (ctx, error, "[%s] unknown key %s=%s; the keys of [%s] are %s",
                       found[i], keys[k], value != NULL ? value : "", found[i], allowed);
            return FALSE;
          }
    }
  for (guint j = 0; j < G_N_ELEMENTS (groups); j++)
    if (groups[j].required && !g_key_file_has_group (ctx->kf, groups[j].group))
      {
        ctx_error (ctx, error, "the group [%s] is missing; see docs/profiles.md", groups[j].group);
        return FALSE;
      }
  return TRUE;
}

/* A string value, or NULL (no error) when absent and optional. */
static gchar *
get_string (const Ctx *ctx, const char *group, const char *key, gboolean required,
            const char *what_allowed, GError **error)
{
  if (!g_key_file_has_key (ctx->kf, group, key, NULL))
    {
      if (required)
        ctx_error (ctx, error, "[%s] %s is missing; %s", group, key, what_allowed);
      return NULL;
    }
  g_autoptr(GError) local = NULL;
  g_autofree gchar *v = g_key_file_get_string (ctx->kf, group, key, &local);
  if (v == NULL)
    {
      g_autofree gchar *raw = g_key_file_get_value (ctx->kf, group, key, NULL);
      ctx_error (ctx, error, "[%s] %s=%s cannot be read (%s); %s", group, key,
                 raw != NULL ? raw : "", local->message, what_allowed);
      return NULL;
    }
  g_strstrip (v);
  if (*v == '\0')
    {
      ctx_error (ctx, error, "[%s] %s is empty; %s", group, key, what_allowed);
      return NULL;
    }
  return g_steal_pointer (&v);
}

static gboolean
has_key (const Ctx *ctx, const char *group, const char *key)
{
  return g_key_file_has_key (ctx->kf, group, key, NULL);
}

/* An unsigned number in [min, max]; @hex_ok allows 0x... */
static gboolean
get_uint (const Ctx *ctx, const char *group, const char *key, guint64 min, guint64 max,
          gboolean hex_ok, guint64 *out, GError **error)
{
  g_autofree gchar *allowed = g_strdup_printf ("use a whole number from %" G_GUINT64_FORMAT
                                               " to %" G_GUINT64_FORMAT "%s", min, max,
                                               hex_ok ? " (decimal or 0x hex)" : "");
  g_autofree gchar *v = get_string (ctx, group, key, TRUE, allowed, error);
  if (v == NULL)
    return FALSE;
  const char *digits = v;
  guint base = 10;
  if (hex_ok && (g_str_has_prefix (v, "0x") || g_str_has_prefix (v, "0X")))
    {
      digits = v + 2;
      base = 16;
    }
  if (*digits == '\0' || *digits == '+' || *digits == '-'
      || !g_ascii_string_to_unsigned (digits, base, min, max, out, NULL))
    {
      ctx_error (ctx, error, "[%s] %s=%s is not allowed; %s", group, key, v, allowed);
      return FALSE;
    }
  return TRUE;
}

/* A ';'-separated list (GKeyFile), items trimmed, none empty, no duplicates. */
static gchar **
get_list (const Ctx *ctx, const char *group, const char *key, const char *what_allowed,
          GError **error)
{
  g_autoptr(GError) local = NULL;
  gsize n = 0;
  g_auto(GStrv) items = g_key_file_get_string_list (ctx->kf, group, key, &n, &local);
  g_autofree gchar *raw = g_key_file_get_value (ctx->kf, group, key, NULL);
  if (items == NULL)
    {
      ctx_error (ctx, error, "[%s] %s=%s cannot be read (%s); %s", group, key,
                 raw != NULL ? raw : "", local->message, what_allowed);
      return NULL;
    }
  if (n == 0 || n > MAX_LIST_ITEMS)
    {
      ctx_error (ctx, error, "[%s] %s=%s must list 1 to %d items separated by ';'; %s",
                 group, key, raw, MAX_LIST_ITEMS, what_allowed);
      return NULL;
    }
  for (gsize i = 0; i < n; i++)
    {
      g_strstrip (items[i]);
      if (*items[i] == '\0')
        {
          ctx_error (ctx, error, "[%s] %s=%s has an empty item; %s", group, key, raw, what_allowed);
          return NULL;
        }
      for (gsize j = 0; j < i; j++)
        if (strcmp (items[i], items[j]) == 0)
          {
            ctx_error (ctx, error, "[%s] %s=%s lists %s twice", group, key, raw, items[i]);
            return NULL;
          }
    }
  return g_steal_pointer (&items);
}

static gboolean
parse_profile_group (const Ctx *ctx, StProfile *p, GError **error)
{
  p->name = get_string (ctx, "profile", "name", TRUE,
                        "give 1 to 64 of A-Z a-z 0-9 . _ -", error);
  if (p->name == NULL)
    return FALSE;
  gsize n = strlen (p->name);
  gboolean ok = n >= 1 && n <= 64;
  for (const char *c = p->name; ok && *c != '\0'; c++)
    ok = g_ascii_isalnum (*c) || *c == '.' || *c == '_' || *c == '-';
  if (!ok)
    {
      ctx_error (ctx, error, "[profile] name=%s is not allowed; use 1 to 64 of A-Z a-z 0-9 . _ -", p->name);
      return FALSE;
    }

  if (has_key (ctx, "profile", "description"))
    {
      p->description = get_string (ctx, "profile", "description", TRUE,
                                   "give one line of text or remove the key", error);
      if (p->description == NULL)
        return FALSE;
      if (g_utf8_strlen (p->description, -1) > MAX_DESCRIPTION
          || strchr (p->description, '\n') != NULL || strchr (p->description, '\r') != NULL)
        {
          ctx_error (ctx, error, "[profile] description=%s is not allowed; use one line of at most %d characters",
                     p->description, MAX_DESCRIPTION);
          return FALSE;
        }
    }
  else
    p->description = g_strdup ("");

  if (has_key (ctx, "profile", "model"))
    {
      p->model = get_string (ctx, "profile", "model", TRUE,
                             "give the model string the device reports in HELLO, or remove the key", error);
      if (p->model == NULL)
        return FALSE;
      gboolean model_ok = strlen (p->model) <= MAX_MODEL;
      for (const char *c = p->model; model_ok && *c != '\0'; c++)
        model_ok = (guchar) *c >= 0x20 && *c != 0x7f;
      if (!model_ok)
        {
          ctx_error (ctx, error, "[profile] model=%s is not allowed; use 1 to %d bytes of UTF-8 text without control characters, as the device reports it in HELLO",
                     p->model, MAX_MODEL);
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
parse_key_group (const Ctx *ctx, StProfile *p, GError **error)
{
  g_autofree gchar *mode = get_string (ctx, "key", "mode", TRUE, "use device-csr or station-key", error);
  if (mode == NULL)
    return FALSE;
  if (strcmp (mode, "device-csr") == 0)
    p->key_mode = ST_KEY_MODE_DEVICE_CSR;
  else if (strcmp (mode, "station-key") == 0)
    p->key_mode = ST_KEY_MODE_STATION_KEY;
  else
    {
      ctx_error (ctx, error, "[key] mode=%s is not allowed; use device-csr or station-key", mode);
      return FALSE;
    }

  const char *algs = "use ec-p256, ec-p384 or ed25519";
  g_autofree gchar *alg = get_string (ctx, "key", "algorithm", TRUE, algs, error);
  if (alg == NULL)
    return FALSE;
  p->alg = st_alg_from_string (alg);
  if (p->alg == ST_ALG_NONE)
    {
      ctx_error (ctx, error, "[key] algorithm=%s is not allowed; %s", alg, algs);
      return FALSE;
    }
  return TRUE;
}

static const struct { const char *name; guint bit; } ku_names[] = {
  { "digitalSignature", KU_DIGITAL_SIGNATURE },
  { "nonRepudiation", KU_NON_REPUDIATION },
  { "keyEncipherment", KU_KEY_ENCIPHERMENT },
  { "keyAgreement", KU_KEY_AGREEMENT },
};

static const struct { const char *name; int nid; } eku_names[] = {
  { "clientAuth", NID_client_auth },
  { "serverAuth", NID_server_auth },
  { "codeSigning", NID_code_sign },
  { "emailProtection", NID_email_protect },
};

/* A dotted OID: at least two arcs, the first 0..2, decimal arcs without
 * leading zeros. */
static gboolean
is_dotted_oid (const char *s)
{
  g_auto(GStrv) arcs = g_strsplit (s, ".", -1);
  guint n = g_strv_length (arcs);
  if (n < 2 || n > 32)
    return FALSE;
  for (guint i = 0; i < n; i++)
    {
      gsize l = strlen (arcs[i]);
      if (l == 0 || l > 18 || (l > 1 && arcs[i][0] == '0'))
        return FALSE;
      for (gsize k = 0; k < l; k++)
        if (!g_ascii_isdigit (arcs[i][k]))
          return FALSE;
    }
  if (strlen (arcs[0]) != 1 || arcs[0][0] > '2')
    return FALSE;
  if (arcs[0][0] < '2' && (strlen (arcs[1]) > 2 || atoi (arcs[1]) > 39))
    return FALSE;
  return TRUE;
}

static gboolean
parse_certificate_group (const Ctx *ctx, StProfile *p, GError **error)
{
  const StSubjectInfo sample = { "0123456789abcdef", "model", "SERIAL-0001" };
  g_autoptr(GError) local = NULL;

  /* subject */
  p->subject_template = get_string (ctx, "certificate", "subject", TRUE,
                                    "give a template such as CN={uid},O=Example Devices Ltd,serialNumber={serial}",
                                    error);
  if (p->subject_template == NULL)
    return FALSE;
  if (strlen (p->subject_template) > MAX_TEMPLATE)
    {
      ctx_error (ctx, error, "[certificate] subject=%s is longer than %d bytes", p->subject_template, MAX_TEMPLATE);
      return FALSE;
    }
  g_autoptr(X509_NAME) trial = st_profile_build_subject (p->subject_template, &sample, &local);
  if (trial == NULL)
    {
      ctx_error (ctx, error, "[certificate] subject=%s is not allowed: %s", p->subject_template, local->message);
      return FALSE;
    }

  /* san */
  if (has_key (ctx, "certificate", "san"))
    {
      const char *allowed = "use URI:..., DNS:... or email:... items separated by ';' with placeholders {uid}, {UID}, {serial}, {model}";
      p->san_templates = get_list (ctx, "certificate", "san", allowed, error);
      if (p->san_templates == NULL)
        return FALSE;
      for (guint i = 0; p->san_templates[i] != NULL; i++)
        {
          const char *one[] = { p->san_templates[i], NULL };
          int type;
          const char *rest;
          if (strlen (p->san_templates[i]) > MAX_TEMPLATE || !split_san (p->san_templates[i], &type, &rest))
            {
              ctx_error (ctx, error, "[certificate] san=%s is not allowed; %s", p->san_templates[i], allowed);
              return FALSE;
            }
          g_autoptr(GENERAL_NAMES) gn = st_profile_build_san (one, &sample, &local);
          if (gn == NULL)
            {
              ctx_error (ctx, error, "[certificate] san=%s is not allowed: %s", p->san_templates[i], local->message);
              return FALSE;
            }
        }
    }
  else
    p->san_templates = g_new0 (gchar *, 1);

  /* validity */
  gboolean has_days = has_key (ctx, "certificate", "validity-days");
  gboolean has_validity = has_key (ctx, "certificate", "validity");
  if (has_days == has_validity)
    {
      ctx_error (ctx, error, "[certificate] give exactly one of validity-days=N (1 to 36500) or validity=no-expiry%s",
                 has_days ? " (both are given)" : "");
      return FALSE;
    }
  if (has_days)
    {
      guint64 days = 0;
      if (!get_uint (ctx, "certificate", "validity-days", 1, 36500, FALSE, &days, error))
        return FALSE;
      p->validity_days = (gint) days;
    }
  else
    {
      g_autofree gchar *v = get_string (ctx, "certificate", "validity", TRUE,
                                        "use validity=no-expiry or validity-days=N", error);
      if (v == NULL)
        return FALSE;
      if (strcmp (v, "no-expiry") != 0)
        {
          ctx_error (ctx, error, "[certificate] validity=%s is not allowed; use validity=no-expiry, or validity-days=N for a finite validity", v);
          return FALSE;
        }
      p->no_expiry = TRUE;
    }

  /* backdate */
  p->backdate_minutes = 60;
  if (has_key (ctx, "certificate", "backdate-minutes"))
    {
      guint64 m = 0;
      if (!get_uint (ctx, "certificate", "backdate-minutes", 0, 1440, FALSE, &m, error))
        return FALSE;
      p->backdate_minutes = (guint) m;
    }

  /* key usage */
  const char *ku_allowed = "use digitalSignature, keyAgreement or nonRepudiation separated by ';'";
  if (!has_key (ctx, "certificate", "key-usage"))
    {
      ctx_error (ctx, error, "[certificate] key-usage is missing; %s", ku_allowed);
      return FALSE;
    }
  g_auto(GStrv) ku = get_list (ctx, "certificate", "key-usage", ku_allowed, error);
  if (ku == NULL)
    return FALSE;
  for (guint i = 0; ku[i] != NULL; i++)
    {
      guint bit = 0;
      for (guint k = 0; k < G_N_ELEMENTS (ku_names); k++)
        if (strcmp (ku[i], ku_names[k].name) == 0)
          bit = ku_names[k].bit;
      if (bit == 0)
        {
          gboolean ca = strcmp (ku[i], "keyCertSign") == 0 || strcmp (ku[i], "cRLSign") == 0;
          ctx_error (ctx, error, "[certificate] key-usage=%s is not allowed%s; %s%s", ku[i],
                     ca ? " (device certificates are CA:FALSE)" : "", ku_allowed,
                     strchr (ku[i], ',') != NULL ? " (separate items with ';')" : "");
          return FALSE;
        }
      if (bit == KU_KEY_ENCIPHERMENT)
        {
          ctx_error (ctx, error, "[certificate] key-usage=keyEncipherment is not allowed with algorithm=%s: only RSA keys encipher keys; use keyAgreement for ECDH",
                     st_alg_to_string (p->alg));
          return FALSE;
        }
      if (bit == KU_KEY_AGREEMENT && p->alg == ST_ALG_ED25519)
        {
          ctx_error (ctx, error, "[certificate] key-usage=keyAgreement is not allowed with algorithm=ed25519: Ed25519 keys only sign (RFC 8410); use digitalSignature or nonRepudiation");
          return FALSE;
        }
      p->key_usage |= bit;
    }

  /* extended key usage */
  g_autoptr(GPtrArray) eku = g_ptr_array_new_with_free_func (g_free);
  if (has_key (ctx, "certificate", "extended-key-usage"))
    {
      const char *allowed = "use clientAuth, serverAuth, codeSigning, emailProtection or dotted OIDs, separated by ';'";
      g_auto(GStrv) items = get_list (ctx, "certificate", "extended-key-usage", allowed, error);
      if (items == NULL)
        return FALSE;
      for (guint i = 0; items[i] != NULL; i++)
        {
          int nid = NID_undef;
          char oid[128];
          /* (its 39-digit arc is beyond what is_dotted_oid takes anyway) */
          if (strcmp (items[i], ST_OID_STATION_SIGNING) == 0)
            {
              ctx_error (ctx, error, "[certificate] extended-key-usage=%s is not allowed: it is the station's "
                         "own signing purpose, which no device certificate may carry", items[i]);
              return FALSE;
            }
          for (guint k = 0; k < G_N_ELEMENTS (eku_names); k++)
            if (strcmp (items[i], eku_names[k].name) == 0)
              nid = eku_names[k].nid;
          if (nid != NID_undef)
            {
              if (OBJ_obj2txt (oid, sizeof oid, OBJ_nid2obj (nid), 1) <= 0)
                {
                  st_error_set_openssl (error, ST_ERROR_INTERNAL, "OBJ_obj2txt");
                  return FALSE;
                }
            }
          else if (is_dotted_oid (items[i]) && strlen (items[i]) < sizeof oid)
            g_strlcpy (oid, items[i], sizeof oid);
          else
            {
              ctx_error (ctx, error, "[certificate] extended-key-usage=%s is not allowed; %s%s", items[i], allowed,
                         strchr (items[i], ',') != NULL ? " (separate items with ';')" : "");
              return FALSE;
            }
          if (strcmp (oid, "2.5.29.37.0") == 0)
            {
              ctx_error (ctx, error, "[certificate] extended-key-usage=%s is not allowed: anyExtendedKeyUsage would allow every use; list the uses", items[i]);
              return FALSE;
            }
          for (guint k = 0; k < eku->len; k++)
            if (strcmp (g_ptr_array_index (eku, k), oid) == 0)
              {
                ctx_error (ctx, error, "[certificate] extended-key-usage=%s names the usage %s twice", items[i], oid);
                return FALSE;
              }
          g_ptr_array_add (eku, g_strdup (oid));
        }
    }
  g_ptr_array_add (eku, NULL);
  p->eku = (gchar **) g_ptr_array_free (g_steal_pointer (&eku), FALSE);
  return TRUE;
}

static gboolean
parse_serial_group (const Ctx *ctx, StProfile *p, GError **error)
{
  const char *allowed = "give a template such as EX-{yy}{mm}-{seq:06}: exactly one {seq} or {seq:N}, {yyyy} {yy} {mm} {dd}, and literal letters, digits, - . / : +";
  p->serial_format = get_string (ctx, "serial", "format", TRUE, allowed, error);
  if (p->serial_format == NULL)
    return FALSE;
  g_autofree gchar *why = NULL;
  guint n_seq = 0;
  g_autoptr(GDateTime) sample = g_date_time_new_utc (2099, 12, 31, 0, 0, 0);
  g_autoptr(GString) longest = g_string_new (NULL);
  if (!walk_serial_format (p->serial_format, G_MAXUINT64, sample, longest, &n_seq, &why))
    {
      ctx_error (ctx, error, "[serial] format=%s is not allowed: %s", p->serial_format, why);
      return FALSE;
    }
  if (n_seq != 1)
    {
      ctx_error (ctx, error, "[serial] format=%s has %u {seq} placeholders; %s", p->serial_format, n_seq, allowed);
      return FALSE;
    }
  if (longest->len > ST_PROFILE_SERIAL_MAX)
    {
      ctx_error (ctx, error, "[serial] format=%s can make serials of %" G_GSIZE_FORMAT " characters; at most %d are allowed",
                 p->serial_format, longest->len, ST_PROFILE_SERIAL_MAX);
      return FALSE;
    }
  return TRUE;
}

static gboolean
parse_device_group (const Ctx *ctx, StProfile *p, GError **error)
{
  g_autofree gchar *lock = get_string (ctx, "device", "lock", TRUE, "use true or false", error);
  if (lock == NULL)
    return FALSE;
  if (strcmp (lock, "true") == 0)
    p->lock = TRUE;
  else if (strcmp (lock, "false") == 0)
    p->lock = FALSE;
  else
    {
      ctx_error (ctx, error, "[device] lock=%s is not allowed; use true or false", lock);
      return FALSE;
    }
  return TRUE;
}

static gboolean
parse_link_group (const Ctx *ctx, StProfile *p, GError **error)
{
  static const guint bauds[] = {
    1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800,
    500000, 576000, 921600, 1000000, 1152000, 1500000, 2000000, 2500000,
    3000000, 3500000, 4000000,
  };
  static const struct { const char *key; guint64 min, max; gboolean hex; gsize offset; gboolean u32; } nums[] = {
    { "timeout-ms", 10, 60000, FALSE, G_STRUCT_OFFSET (StLinkParams, timeout_ms), FALSE },
    { "keygen-timeout-ms", 100, 600000, FALSE, G_STRUCT_OFFSET (StLinkParams, keygen_timeout_ms), FALSE },
    { "commit-timeout-ms", 100, 600000, FALSE, G_STRUCT_OFFSET (StLinkParams, commit_timeout_ms), FALSE },
    { "retries", 0, 10, FALSE, G_STRUCT_OFFSET (StLinkParams, retries), FALSE },
    { "blob-address", 0, G_MAXUINT32, TRUE, G_STRUCT_OFFSET (StLinkParams, blob_address), TRUE },
    { "blob-area-size", 64, 1024 * 1024, TRUE, G_STRUCT_OFFSET (StLinkParams, blob_area_size), TRUE },
    { "uid-address", 0, G_MAXUINT32, TRUE, G_STRUCT_OFFSET (StLinkParams, uid_address), TRUE },
    { "uid-length", 1, ST_UID_MAX, FALSE, G_STRUCT_OFFSET (StLinkParams, uid_length), FALSE },
  };

  st_link_params_init_defaults (&p->link);
  if (!g_key_file_has_group (ctx->kf, "link"))
    return TRUE;

  if (has_key (ctx, "link", "baud"))
    {
      g_autoptr(GString) list = g_string_new (NULL);
      for (guint i = 0; i < G_N_ELEMENTS (bauds); i++)
        g_string_append_printf (list, "%s%u", i == 0 ? "" : " ", bauds[i]);
      g_autofree gchar *allowed = g_strdup_printf ("use a standard rate: %s", list->str);
      g_autofree gchar *v = get_string (ctx, "link", "baud", TRUE, allowed, error);
      if (v == NULL)
        return FALSE;
      guint64 baud = 0;
      gboolean ok = g_ascii_string_to_unsigned (v, 10, 1, G_MAXUINT32, &baud, NULL);
      gboolean standard = FALSE;
      for (guint i = 0; ok && i < G_N_ELEMENTS (bauds); i++)
        standard = standard || bauds[i] == baud;
      if (!standard)
        {
          ctx_error (ctx, error, "[link] baud=%s is not allowed; %s", v, allowed);
          return FALSE;
        }
      p->link.baud = (guint) baud;
    }
  for (guint i = 0; i < G_N_ELEMENTS (nums); i++)
    {
      if (!has_key (ctx, "link", nums[i].key))
        continue;
      guint64 v = 0;
      if (!get_uint (ctx, "link", nums[i].key, nums[i].min, nums[i].max, nums[i].hex, &v, error))
        return FALSE;
      guint8 *field = (guint8 *) &p->link + nums[i].offset;
      if (nums[i].u32)
        *(guint32 *) (void *) field = (guint32) v;
      else
        *(guint *) (void *) field = (guint) v;
    }
  /* Passive backends: start the application after the commit. */
  if (has_key (ctx, "link", "go-address"))
    {
      guint64 v = 0;
      if (!get_uint (ctx, "link", "go-address", 0, G_MAXUINT32, TRUE, &v, error))
        return FALSE;
      if ((v & 3) != 0)
        {
          ctx_error (ctx, error, "[link] go-address=0x%08" G_GINT64_MODIFIER "x is not allowed; give "
                     "the application's vector table, a 4-aligned flash address such as 0x08000000",
                     v);
          return FALSE;
        }
      p->link.go = TRUE;
      p->link.go_address = (guint32) v;
    }
  return TRUE;
}

/* [firmware]: image (a path), address (a flash sector start), sha256 (64
 * hex digits). The image itself is read by st_profile_load_firmware(). */
static gboolean
parse_firmware_group (const Ctx *ctx, StProfile *p, GError **error)
{
  if (!g_key_file_has_group (ctx->kf, "firmware"))
    return TRUE;
  guint64 address = 0;
  g_autofree gchar *image = get_string (ctx, "firmware", "image", TRUE,
                                        "give the image file's path", error);
  if (image == NULL || !get_uint (ctx, "firmware", "address", 0, G_MAXUINT32, TRUE, &address, error))
    return FALSE;
  g_autofree gchar *hex = get_string (ctx, "firmware", "sha256", TRUE,
                                      "give the image's SHA-256 as 64 hex digits", error);
  if (hex == NULL)
    return FALSE;
  if (strlen (hex) != 64 || strspn (hex, "0123456789abcdefABCDEF") != 64)
    {
      ctx_error (ctx, error, "[firmware] sha256=%s is not allowed; give 64 hex digits (sha256sum IMAGE)", hex);
      return FALSE;
    }
  for (guint i = 0; i < 32; i++)
    p->firmware_sha256[i] = (guint8) (g_ascii_xdigit_value (hex[2 * i]) << 4 |
                                      g_ascii_xdigit_value (hex[2 * i + 1]));
  p->firmware_address = (guint32) address;
  p->firmware_image = g_steal_pointer (&image);
  return TRUE;
}

GBytes *
st_profile_load_firmware (const StProfile *profile, GError **error)
{
  g_return_val_if_fail (profile != NULL && profile->firmware_image != NULL, NULL);
  g_autoptr(GError) local = NULL;
  g_autoptr(GMappedFile) mf = g_mapped_file_new (profile->firmware_image, FALSE, &local);
  if (mf == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND, "%s: [firmware] image: %s",
                   profile->path, local->message);
      return NULL;
    }
  gsize len = g_mapped_file_get_length (mf);
  if (len == 0 || len > ST_PROFILE_FIRMWARE_MAX)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "%s: [firmware] image %s is %" G_GSIZE_FORMAT " bytes; 1 to %d are allowed",
                   profile->path, profile->firmware_image, len, ST_PROFILE_FIRMWARE_MAX);
      return NULL;
    }
  g_autoptr(GBytes) bytes = g_bytes_new (g_mapped_file_get_contents (mf), len);
  g_autofree gchar *got = st_sha256_hex (g_bytes_get_data (bytes, NULL), len);
  g_autofree gchar *want = st_hex_encode (profile->firmware_sha256, 32);
  if (g_ascii_strcasecmp (got, want) != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "%s: [firmware] image %s has SHA-256 %s, the profile says %s: refusing to "
                   "write it; fix the profile or the image", profile->path, profile->firmware_image,
                   got, want);
      return NULL;
    }
  return g_steal_pointer (&bytes);
}

/* ---- [matter] (issue 18) ---- */

/* A Matter VID or PID: exactly 4 upper-case hex digits, as the certificate
 * subject carries it (docs/matter.md). */
static gboolean
get_matter_id (const Ctx *ctx, const char *key, guint16 *out, GError **error)
{
  static const char allowed[] = "give exactly 4 upper-case hex digits, as the certificate carries it (FFF1)";
  g_autofree gchar *v = get_string (ctx, "matter", key, TRUE, allowed, error);
  if (v == NULL)
    return FALSE;
  guint value = 0;
  gboolean ok = strlen (v) == 4;
  for (int i = 0; ok && i < 4; i++)
    {
      char c = v[i];
      if (c >= '0' && c <= '9')
        value = value * 16 + (guint) (c - '0');
      else if (c >= 'A' && c <= 'F')
        value = value * 16 + (guint) (c - 'A' + 10);
      else
        ok = FALSE;
    }
  if (!ok)
    {
      ctx_error (ctx, error, "[matter] %s=%s is not allowed; %s", key, v, allowed);
      return FALSE;
    }
  *out = (guint16) value;
  return TRUE;
}

/* The [matter] keys of the per-unit factory data (docs/profiles.md):
 * rotating-id-length, commissioning-flow, discovery. */
static gboolean
parse_matter_factory_keys (const Ctx *ctx, StProfileMatter *m, GError **error)
{
  guint64 v = 0;
  if (has_key (ctx, "matter", "rotating-id-length"))
    {
      static const char allowed[] = "give 0 (no rotating device id) or a length from 16 to 32 bytes";
      g_autofree gchar *s = get_string (ctx, "matter", "rotating-id-length", TRUE, allowed, error);
      if (s == NULL)
        return FALSE;
      if (!g_ascii_string_to_unsigned (s, 10, 0, 32, &v, NULL) || (v != 0 && v < 16))
        {
          ctx_error (ctx, error, "[matter] rotating-id-length=%s is not allowed; %s", s, allowed);
          return FALSE;
        }
    }
  m->rotating_id_length = (guint) v;

  m->commissioning_flow = 0;
  if (has_key (ctx, "matter", "commissioning-flow"))
    {
      static const char allowed[] = "use standard, user-intent or custom";
      g_autofree gchar *s = get_string (ctx, "matter", "commissioning-flow", TRUE, allowed, error);
      if (s == NULL)
        return FALSE;
      if (strcmp (s, "standard") == 0)
        m->commissioning_flow = 0;
      else if (strcmp (s, "user-intent") == 0)
        m->commissioning_flow = 1;
      else if (strcmp (s, "custom") == 0)
        m->commissioning_flow = 2;
      else
        {
          ctx_error (ctx, error, "[matter] commissioning-flow=%s is not allowed; %s", s, allowed);
          return FALSE;
        }
    }

  /* the bits of the onboarding payload: SoftAP 0x01, BLE 0x02, on network 0x04 */
  m->discovery = 0x02;
  if (has_key (ctx, "matter", "discovery"))
    {
      static const char allowed[] = "give a list of one to three of ble, soft-ap and on-network, each once (ble;on-network)";
      gsize n = 0;
      g_auto(GStrv) list = g_key_file_get_string_list (ctx->kf, "matter", "discovery", &n, NULL);
      guint8 bits = 0;
      gboolean ok = list != NULL && n > 0;
      for (gsize i = 0; ok && i < n; i++)
        {
          const char *item = g_strstrip (list[i]);
          guint8 bit = strcmp (item, "ble") == 0 ? 0x02
                       : strcmp (item, "soft-ap") == 0 ? 0x01
                       : strcmp (item, "on-network") == 0 ? 0x04 : 0;
          if (bit == 0 || (bits & bit) != 0)
            ok = FALSE;
          bits |= bit;
        }
      if (!ok)
        {
          g_autofree gchar *s = g_key_file_get_value (ctx->kf, "matter", "discovery", NULL);
          ctx_error (ctx, error, "[matter] discovery=%s is not allowed; %s", s != NULL ? s : "", allowed);
          return FALSE;
        }
      m->discovery = bits;
    }
  return TRUE;
}

/* [matter]: the Matter product (docs/profiles.md). Its DACs must keep the
 * Matter rules, so the group also constrains [key] and [certificate]. */
static gboolean
parse_matter_group (const Ctx *ctx, StProfile *p, GError **error)
{
  if (!g_key_file_has_group (ctx->kf, "matter"))
    return TRUE;
  StProfileMatter *m = &p->matter;
  if (!get_matter_id (ctx, "vendor-id", &m->vendor_id, error)
      || !get_matter_id (ctx, "product-id", &m->product_id, error))
    return FALSE;
  if (m->product_id == 0)
    {
      ctx_error (ctx, error, "[matter] product-id=0000 is not allowed; a Matter product ID is never 0, give the product's PID");
      return FALSE;
    }

  m->discriminator = ST_MATTER_DISCRIMINATOR_RANDOM;
  if (has_key (ctx, "matter", "discriminator"))
    {
      static const char allowed[] = "use random or sequential";
      g_autofree gchar *v = get_string (ctx, "matter", "discriminator", TRUE, allowed, error);
      if (v == NULL)
        return FALSE;
      if (strcmp (v, "random") == 0)
        m->discriminator = ST_MATTER_DISCRIMINATOR_RANDOM;
      else if (strcmp (v, "sequential") == 0)
        m->discriminator = ST_MATTER_DISCRIMINATOR_SEQUENTIAL;
      else
        {
          ctx_error (ctx, error, "[matter] discriminator=%s is not allowed; %s", v, allowed);
          return FALSE;
        }
    }
  m->discriminator_first = 0;
  m->discriminator_last = 4095;
  if (has_key (ctx, "matter", "discriminator-range"))
    {
      static const char allowed[] = "give FIRST-LAST, whole numbers from 0 to 4095 (12 bits), FIRST not above LAST (0-4095)";
      g_autofree gchar *v = get_string (ctx, "matter", "discriminator-range", TRUE, allowed, error);
      if (v == NULL)
        return FALSE;
      g_auto(GStrv) parts = g_strsplit (v, "-", -1);
      guint64 first = 0, last = 0;
      if (g_strv_length (parts) != 2
          || !g_ascii_string_to_unsigned (g_strstrip (parts[0]), 10, 0, 4095, &first, NULL)
          || !g_ascii_string_to_unsigned (g_strstrip (parts[1]), 10, 0, 4095, &last, NULL)
          || first > last)
        {
          ctx_error (ctx, error, "[matter] discriminator-range=%s is not allowed; %s", v, allowed);
          return FALSE;
        }
      m->discriminator_first = (guint16) first;
      m->discriminator_last = (guint16) last;
    }

  m->passcode = ST_MATTER_PASSCODE_RANDOM;
  if (has_key (ctx, "matter", "passcode"))
    {
      static const char allowed[] = "use random (a setup passcode from the CSPRNG per unit, never one of the invalid values); fixed passcodes are not offered";
      g_autofree gchar *v = get_string (ctx, "matter", "passcode", TRUE, allowed, error);
      if (v == NULL)
        return FALSE;
      if (strcmp (v, "random") != 0)
        {
          ctx_error (ctx, error, "[matter] passcode=%s is not allowed; %s", v, allowed);
          return FALSE;
        }
    }

  guint64 v = 10000;
  if (has_key (ctx, "matter", "pbkdf2-iterations")
      && !get_uint (ctx, "matter", "pbkdf2-iterations", 1000, 100000, FALSE, &v, error))
    return FALSE;
  m->pbkdf2_iterations = (guint32) v;
  v = 32;
  if (has_key (ctx, "matter", "salt-length")
      && !get_uint (ctx, "matter", "salt-length", 16, 32, FALSE, &v, error))
    return FALSE;
  m->salt_length = (guint) v;

  if (!parse_matter_factory_keys (ctx, m, error))
    return FALSE;

  m->certification_declaration = get_string (ctx, "matter", "certification-declaration", TRUE,
                                             "give the Certification Declaration file (DER CMS, from the CSA)", error);
  if (m->certification_declaration == NULL)
    return FALSE;

  /* what a DAC must be (docs/matter.md) */
  if (p->alg != ST_ALG_EC_P256)
    {
      ctx_error (ctx, error, "[key] algorithm must be ec-p256 with [matter]; a DAC's key is P-256 (Matter Core spec 6.2.2.3)");
      return FALSE;
    }
  if (p->key_usage != KU_DIGITAL_SIGNATURE)
    {
      ctx_error (ctx, error, "[certificate] key-usage must be exactly digitalSignature with [matter] (Matter Core spec 6.2.2.3)");
      return FALSE;
    }
  m->enabled = TRUE;
  return TRUE;
}

GBytes *
st_profile_load_certification_declaration (const StProfile *profile, GError **error)
{
  g_return_val_if_fail (profile != NULL && profile->matter.enabled, NULL);
  const char *file = profile->matter.certification_declaration;
  g_autoptr(GError) local = NULL;
  g_autoptr(GMappedFile) mf = g_mapped_file_new (file, FALSE, &local);
  if (mf == NULL)
    {
      g_set_error (error, ST_ERROR,
                   g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT) ? ST_ERROR_NOT_FOUND : ST_ERROR_READ,
                   "%s: [matter] certification-declaration: %s", profile->path, local->message);
      return NULL;
    }
  gsize len = g_mapped_file_get_length (mf);
  if (len == 0 || len > ST_PROFILE_CD_MAX)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "%s: [matter] certification-declaration %s is %" G_GSIZE_FORMAT " bytes; 1 to %d are allowed",
                   profile->path, file, len, ST_PROFILE_CD_MAX);
      return NULL;
    }
  const unsigned char *data = (const unsigned char *) g_mapped_file_get_contents (mf);
  const unsigned char *q = data;
  CMS_ContentInfo *cms = d2i_CMS_ContentInfo (NULL, &q, (long) len);
  gboolean ok = cms != NULL && q == data + len && OBJ_obj2nid (CMS_get0_type (cms)) == NID_pkcs7_signed;
  CMS_ContentInfo_free (cms);
  if (!ok)
    {
      st_error_clear_openssl ();
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "%s: [matter] certification-declaration %s is not one DER CMS SignedData; give the Certification Declaration file as the CSA issued it",
                   profile->path, file);
      return NULL;
    }
  return g_bytes_new (data, len);
}

StProfile *
st_profile_load_from_data (const char *data, gsize len, const char *name_for_messages,
                           GError **error)
{
  g_return_val_if_fail (data != NULL || len == 0, NULL);
  Ctx ctx = { name_for_messages != NULL ? name_for_messages : "profile", NULL };

  if (len > ST_PROFILE_MAX_SIZE)
    {
      ctx_error (&ctx, error, "the profile is %" G_GSIZE_FORMAT " bytes; at most %d are allowed",
                 len, ST_PROFILE_MAX_SIZE);
      return NULL;
    }
  if (len == 0)
    {
      ctx_error (&ctx, error, "the profile is empty; see docs/profiles.md");
      return NULL;
    }
  if (memchr (data, '\0', len) != NULL || !g_utf8_validate_len (data, len, NULL))
    {
      ctx_error (&ctx, error, "the profile is not UTF-8 text (NUL byte or invalid UTF-8)");
      return NULL;
    }
  g_autoptr(StProfile) p = g_new0 (StProfile, 1);
  p->path = g_strdup (ctx.file);
  p->text = g_strndup (data, len);
  p->sha256 = st_sha256_hex ((const guint8 *) data, len);

  if (!check_duplicates (&ctx, p->text, error))
    return NULL;

  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_autoptr(GError) local = NULL;
  if (!g_key_file_load_from_data (kf, p->text, len, G_KEY_FILE_NONE, &local))
    {
      ctx_error (&ctx, error, "not a valid key file: %s", local->message);
      return NULL;
    }
  ctx.kf = kf;
  if (!check_known (&ctx, error)
      || !parse_profile_group (&ctx, p, error)
      || !parse_key_group (&ctx, p, error)
      || !parse_certificate_group (&ctx, p, error)
      || !parse_serial_group (&ctx, p, error)
      || !parse_device_group (&ctx, p, error)
      || !parse_link_group (&ctx, p, error)
      || !parse_firmware_group (&ctx, p, error)
      || !parse_matter_group (&ctx, p, error))
    return NULL;
  return g_steal_pointer (&p);
}

StProfile *
st_profile_load (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_autoptr(GError) local = NULL;
  g_autoptr(GMappedFile) mf = g_mapped_file_new (path, FALSE, &local);
  if (mf == NULL)
    {
      g_set_error (error, ST_ERROR,
                   g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT) ? ST_ERROR_NOT_FOUND : ST_ERROR_READ,
                   "%s: cannot read the profile: %s", path, local->message);
      return NULL;
    }
  gsize len = g_mapped_file_get_length (mf);
  const char *data = g_mapped_file_get_contents (mf);
  return st_profile_load_from_data (data != NULL ? data : "", len, path, error);
}

void
st_profile_free (StProfile *p)
{
  if (p == NULL)
    return;
  g_free (p->path);
  g_free (p->name);
  g_free (p->description);
  g_free (p->model);
  g_free (p->sha256);
  g_free (p->text);
  g_free (p->subject_template);
  g_strfreev (p->san_templates);
  g_strfreev (p->eku);
  g_free (p->serial_format);
  g_free (p->firmware_image);
  g_free (p->matter.certification_declaration);
  g_free (p);
}

gboolean
st_profile_text_is_matter (const char *text)
{
  if (text == NULL)
    return FALSE;
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  return g_key_file_load_from_data (kf, text, (gsize) -1, G_KEY_FILE_NONE, NULL)
         && g_key_file_has_group (kf, "matter");
}
