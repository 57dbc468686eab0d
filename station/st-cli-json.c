/* The CLI's --json documents (st-cli-json.h, docs/cli-json.md). */
#include "st-cli-json.h"

#include <stdio.h>
#include <string.h>

#include "st-json.h"
#include "st-manifest.h"
#include "st-util.h"

/* @node as compact JSON text. Not json_generator_to_data(): json-glib 1.6
 * leaves U+001F unescaped (it escapes below 0x1f only), which makes the
 * document invalid JSON for any strict reader; a device's text may hold
 * it. Strings go through st_manifest_json_string, the escaper of the
 * manifest export: every control character and DEL escaped, invalid UTF-8
 * as U+FFFD. Members in the order they were added. */
static void
st_cli_json_serialize (GString *out, JsonNode *node)
{
  switch (JSON_NODE_TYPE (node))
    {
    case JSON_NODE_OBJECT:
      {
        JsonObjectIter it;
        const char *name;
        JsonNode *member;
        gboolean first = TRUE;
        g_string_append_c (out, '{');
        json_object_iter_init_ordered (&it, json_node_get_object (node));
        while (json_object_iter_next_ordered (&it, &name, &member))
          {
            if (!first)
              g_string_append_c (out, ',');
            first = FALSE;
            st_manifest_json_string (out, name);
            g_string_append_c (out, ':');
            st_cli_json_serialize (out, member);
          }
        g_string_append_c (out, '}');
        return;
      }
    case JSON_NODE_ARRAY:
      {
        JsonArray *a = json_node_get_array (node);
        g_string_append_c (out, '[');
        for (guint i = 0; i < json_array_get_length (a); i++)
          {
            if (i > 0)
              g_string_append_c (out, ',');
            st_cli_json_serialize (out, json_array_get_element (a, i));
          }
        g_string_append_c (out, ']');
        return;
      }
    case JSON_NODE_NULL:
      g_string_append (out, "null");
      return;
    case JSON_NODE_VALUE:
      break;
    }
  GType type = json_node_get_value_type (node);
  if (type == G_TYPE_INT64)
    g_string_append_printf (out, "%" G_GINT64_FORMAT, json_node_get_int (node));
  else if (type == G_TYPE_BOOLEAN)
    g_string_append (out, json_node_get_boolean (node) ? "true" : "false");
  else if (type == G_TYPE_DOUBLE)
    {
      char buf[G_ASCII_DTOSTR_BUF_SIZE];
      g_string_append (out, g_ascii_dtostr (buf, sizeof buf, json_node_get_double (node)));
    }
  else
    st_manifest_json_string (out, json_node_get_string (node));
}

void
st_cli_json_write (JsonNode *node)
{
  g_autoptr(GString) text = g_string_new (NULL);
  st_cli_json_serialize (text, node);
  fwrite (text->str, 1, text->len, stdout);
}

void
st_cli_json_print (JsonNode *node)
{
  st_cli_json_write (node);
  fputc ('\n', stdout);
  fflush (stdout);
}

JsonBuilder *
st_cli_json_begin (const char *format)
{
  JsonBuilder *b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "format");
  json_builder_add_string_value (b, format);
  return b;
}

void
st_cli_json_end (JsonBuilder *b)
{
  json_builder_end_object (b);
  g_autoptr(JsonNode) root = json_builder_get_root (b);
  st_cli_json_print (root);
  g_object_unref (b);
}

/* Adds @value as a JSON string: JSON text is UTF-8, so what is not (a
 * folder's name the user gave, bytes a message quotes) has each invalid
 * byte replaced by U+FFFD; D-Bus strings are valid already. */
static void
st_cli_json_add_text (JsonBuilder *b, const char *value)
{
  if (g_utf8_validate (value, -1, NULL))
    {
      json_builder_add_string_value (b, value);
      return;
    }
  g_autofree gchar *valid = g_utf8_make_valid (value, -1);
  json_builder_add_string_value (b, valid);
}

void
st_cli_json_add_string_or_null (JsonBuilder *b, const char *key, const char *value)
{
  json_builder_set_member_name (b, key);
  if (value != NULL)
    st_cli_json_add_text (b, value);
  else
    json_builder_add_null_value (b);
}

JsonNode *
st_cli_json_batch (const StBatchInfo *batch)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  st_json_add_int (b, "id", batch->id);
  st_cli_json_add_string_or_null (b, "state", batch->state);
  st_cli_json_add_string_or_null (b, "work_order", batch->work_order);
  st_cli_json_add_string_or_null (b, "product", batch->product);
  st_cli_json_add_string_or_null (b, "profile_sha256", batch->profile_sha256);
  st_cli_json_add_string_or_null (b, "station_id", batch->station_id);
  st_json_add_int (b, "quantity", batch->quantity);
  st_json_add_int (b, "units", batch->n_units);
  st_json_add_int (b, "done", batch->n_done);
  st_json_add_int (b, "failed", batch->n_failed);
  json_builder_set_member_name (b, "certificates");
  json_builder_begin_object (b);
  st_json_add_int (b, "live", batch->n_live_certs);
  st_json_add_int (b, "voided", batch->n_voided);
  st_json_add_int (b, "unconfirmed", batch->n_unconfirmed);
  st_json_add_int (b, "disputed", batch->n_disputed);
  st_json_add_int (b, "revoked", batch->n_revoked);
  json_builder_end_object (b);
  st_json_add_time (b, "created_at", batch->created_at);
  st_cli_json_add_string_or_null (b, "created_by", batch->created_by);
  st_json_add_time (b, "closed_at", batch->closed_at);
  st_cli_json_add_string_or_null (b, "closed_by", batch->closed_by);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

/* A string of a{sv} @d, or NULL when it is not there (or empty: the
 * service leaves out what is not set, and "" means the same). */
static const char *
st_cli_json_dict_string (GVariant *d, const char *key)
{
  const char *v = NULL;
  if (!g_variant_lookup (d, key, "&s", &v) || *v == '\0')
    return NULL;
  return v;
}

JsonNode *
st_cli_json_unit (GVariant *unit)
{
  static const struct {
    const char *json, *dbus;
  } strings[] = {
    { "uid", "uid" },
    { "state", "state" },
    { "product_serial", "product-serial" },
    { "cert_state", "cert-state" },
    { "cert_serial", "cert-serial" },
    { "port", "port" },
    { "fail_step", "fail-step" },
    { "fail_reason", "fail-reason" },
    { "dispute_reason", "dispute-reason" },
  };
  g_autoptr(JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  gint64 v = 0;
  g_variant_lookup (unit, "id", "x", &v);
  st_json_add_int (b, "id", v);
  for (guint i = 0; i < G_N_ELEMENTS (strings); i++)
    st_cli_json_add_string_or_null (b, strings[i].json, st_cli_json_dict_string (unit, strings[i].dbus));
  v = 0;
  g_variant_lookup (unit, "started-at", "x", &v);
  st_json_add_time (b, "started_at", v);
  v = 0;
  g_variant_lookup (unit, "finished-at", "x", &v);
  st_json_add_time (b, "finished_at", v);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

void
st_cli_json_add_check (JsonBuilder *b, gboolean verified, const char *failure, const char *report)
{
  json_builder_set_member_name (b, "verified");
  json_builder_add_boolean_value (b, verified);
  st_cli_json_add_string_or_null (b, "failure",
                                  !verified ? (failure != NULL && *failure != '\0' ? failure
                                                                                 : "the check failed")
                                            : NULL);
  json_builder_set_member_name (b, "lines");
  json_builder_begin_array (b);
  g_auto(GStrv) lines = g_strsplit (report != NULL ? report : "", "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      const char *line = lines[i];
      if (*line == '\0' && lines[i + 1] == NULL)
        break;  /* after the last newline */
      const char *status = "note";
      if (g_str_has_prefix (line, "ok    "))
        status = "ok";
      else if (g_str_has_prefix (line, "FAIL  "))
        status = "fail";
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "status");
      json_builder_add_string_value (b, status);
      json_builder_set_member_name (b, "text");
      st_cli_json_add_text (b, strcmp (status, "note") == 0 ? line : line + 6);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
}

/* ---- setup show ---- */

static void
st_cli_json_add_dict_string (JsonBuilder *b, const char *key, GVariant *d, const char *dbus_key)
{
  const char *v = NULL;
  st_cli_json_add_string_or_null (b, key, d != NULL && g_variant_lookup (d, dbus_key, "&s", &v) ? v : NULL);
}

static void
st_cli_json_add_dict_bool (JsonBuilder *b, const char *key, GVariant *d, const char *dbus_key)
{
  gboolean v = FALSE;
  json_builder_set_member_name (b, key);
  if (d != NULL && g_variant_lookup (d, dbus_key, "b", &v))
    json_builder_add_boolean_value (b, v);
  else
    json_builder_add_null_value (b);
}

static void
st_cli_json_add_key (JsonBuilder *b, const char *key, GVariant *info, const char *dbus_key)
{
  g_autoptr(GVariant) k = g_variant_lookup_value (info, dbus_key, G_VARIANT_TYPE_VARDICT);
  json_builder_set_member_name (b, key);
  json_builder_begin_object (b);
  st_cli_json_add_dict_string (b, "uri", k, "uri");
  st_cli_json_add_dict_bool (b, "sensitive", k, "sensitive");
  st_cli_json_add_dict_bool (b, "extractable", k, "extractable");
  st_cli_json_add_dict_bool (b, "never_extractable", k, "never-extractable");
  st_cli_json_add_dict_string (b, "error", k, "error");
  json_builder_end_object (b);
}

/* A certificate of SetupInfo (or null when the answer has none). */
static void
st_cli_json_add_cert_value (JsonBuilder *b, GVariant *c)
{
  if (c == NULL)
    {
      json_builder_add_null_value (b);
      return;
    }
  json_builder_begin_object (b);
  st_cli_json_add_dict_string (b, "file", c, "file");
  st_cli_json_add_dict_string (b, "subject", c, "subject");
  st_cli_json_add_dict_string (b, "issuer", c, "issuer");
  st_cli_json_add_dict_string (b, "serial", c, "serial");
  gint64 t = 0;
  gboolean has = g_variant_lookup (c, "not-before", "x", &t);
  st_json_add_time (b, "not_before", has ? t : 0);
  t = 0;
  has = g_variant_lookup (c, "not-after", "x", &t);
  st_json_add_time (b, "not_after", has ? t : 0);
  gint32 days = 0;
  json_builder_set_member_name (b, "days_left");
  if (g_variant_lookup (c, "days-left", "i", &days))
    json_builder_add_int_value (b, days);
  else
    json_builder_add_null_value (b);
  st_cli_json_add_dict_string (b, "error", c, "error");
  json_builder_end_object (b);
}

void
st_cli_json_print_setup (GVariant *info)
{
  JsonBuilder *b = st_cli_json_begin ("station-cli-setup-show/2");
  st_cli_json_add_dict_string (b, "station_id", info, "station-id");
  st_cli_json_add_dict_bool (b, "demo", info, "demo");
  st_cli_json_add_dict_string (b, "home", info, "home");
  st_cli_json_add_dict_string (b, "configuration", info, "configuration");
  json_builder_set_member_name (b, "hsm");
  json_builder_begin_object (b);
  st_cli_json_add_dict_string (b, "module", info, "hsm-module");
  st_cli_json_add_dict_string (b, "softhsm2_conf", info, "softhsm2-conf");
  st_cli_json_add_dict_string (b, "token", info, "hsm-token");
  st_cli_json_add_dict_bool (b, "unlocked", info, "unlocked");
  st_cli_json_add_dict_string (b, "token_description", info, "token-description");
  json_builder_end_object (b);
  json_builder_set_member_name (b, "keys");
  json_builder_begin_object (b);
  st_cli_json_add_key (b, "issuing_ca", info, "ca-key");
  st_cli_json_add_key (b, "station_signing", info, "signing-key");
  json_builder_end_object (b);
  st_cli_json_add_dict_string (b, "ceremony", info, "ceremony");
  json_builder_set_member_name (b, "chain");
  json_builder_begin_object (b);
  st_cli_json_add_dict_string (b, "file", info, "chain-file");
  g_autoptr(GVariant) chain = g_variant_lookup_value (info, "chain", G_VARIANT_TYPE ("aa{sv}"));
  json_builder_set_member_name (b, "certificates");
  if (chain != NULL)
    {
      json_builder_begin_array (b);
      for (gsize i = 0; i < g_variant_n_children (chain); i++)
        {
          g_autoptr(GVariant) c = g_variant_get_child_value (chain, i);
          st_cli_json_add_cert_value (b, c);
        }
      json_builder_end_array (b);
    }
  else
    json_builder_add_null_value (b);
  st_cli_json_add_dict_string (b, "error", info, "chain-error");
  json_builder_end_object (b);
  g_autoptr(GVariant) root = g_variant_lookup_value (info, "root", G_VARIANT_TYPE_VARDICT);
  json_builder_set_member_name (b, "root");
  st_cli_json_add_cert_value (b, root);
  g_autoptr(GVariant) signing = g_variant_lookup_value (info, "signing-cert", G_VARIANT_TYPE_VARDICT);
  json_builder_set_member_name (b, "signing_certificate");
  st_cli_json_add_cert_value (b, signing);
  st_cli_json_add_dict_string (b, "signer_pin", info, "signing-key-sha256");
  st_cli_json_add_dict_bool (b, "signer_pin_ok", info, "signer-pin-ok");
  st_cli_json_add_dict_string (b, "signer_pin_error", info, "signer-pin-error");
  g_autoptr(GVariant) db = g_variant_lookup_value (info, "database", G_VARIANT_TYPE_VARDICT);
  json_builder_set_member_name (b, "database");
  json_builder_begin_object (b);
  st_cli_json_add_dict_string (b, "file", db, "file");
  st_cli_json_add_dict_bool (b, "present", db, "present");
  json_builder_end_object (b);
  /* setup-show/2: a Matter station's VID and PID, null for any other */
  json_builder_set_member_name (b, "matter");
  const char *vid = NULL;
  if (g_variant_lookup (info, "matter-vendor-id", "&s", &vid))
    {
      json_builder_begin_object (b);
      st_cli_json_add_string_or_null (b, "vendor_id", vid);
      st_cli_json_add_dict_string (b, "product_id", info, "matter-product-id");
      json_builder_end_object (b);
    }
  else
    json_builder_add_null_value (b);
  st_cli_json_end (b);
}

void
st_cli_unit_verify_add_matter (JsonBuilder *b, const char *report, gboolean code_given)
{
  json_builder_set_member_name (b, "matter");
  g_auto(GStrv) lines = g_strsplit (report != NULL ? report : "", "\n", -1);
  gboolean any = FALSE;
  for (guint i = 0; lines[i] != NULL; i++)
    {
      const char *line = lines[i];
      gboolean ok = g_str_has_prefix (line, "ok    matter");
      if (!ok && !g_str_has_prefix (line, "FAIL  matter"))
        continue;
      const char *name = line + 6;
      const char *end = strchr (name, ' ');
      if (end == NULL)
        continue;
      if (!any)
        {
          json_builder_begin_object (b);
          json_builder_set_member_name (b, "code_given");
          json_builder_add_boolean_value (b, code_given);
          json_builder_set_member_name (b, "checks");
          json_builder_begin_array (b);
          any = TRUE;
        }
      const char *text = end;
      while (*text == ' ')
        text++;
      g_autofree gchar *n = g_strndup (name, (gsize) (end - name));
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "name");
      json_builder_add_string_value (b, n);
      json_builder_set_member_name (b, "status");
      json_builder_add_string_value (b, ok ? "ok" : "fail");
      json_builder_set_member_name (b, "text");
      st_cli_json_add_text (b, text);
      json_builder_end_object (b);
    }
  if (any)
    {
      json_builder_end_array (b);
      json_builder_end_object (b);
    }
  else
    json_builder_add_null_value (b);
}
