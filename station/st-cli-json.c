/* The CLI's --json documents (st-cli-json.h, docs/cli-json.md). */
#include "st-cli-json.h"

#include <stdio.h>
#include <string.h>

#include "st-util.h"

void
st_cli_json_write (JsonNode *node)
{
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  json_generator_set_root (gen, node);
  gsize len = 0;
  g_autofree gchar *text = json_generator_to_data (gen, &len);
  fwrite (text, 1, len, stdout);
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

void
st_cli_json_add_time (JsonBuilder *b, const char *key, gint64 unix_seconds)
{
  json_builder_set_member_name (b, key);
  if (unix_seconds == 0)
    {
      json_builder_add_null_value (b);
      return;
    }
  g_autofree gchar *text = st_time_iso8601_from_unix (unix_seconds);
  json_builder_add_string_value (b, text);
}

void
st_cli_json_add_string_or_null (JsonBuilder *b, const char *key, const char *value)
{
  json_builder_set_member_name (b, key);
  if (value != NULL)
    json_builder_add_string_value (b, value);
  else
    json_builder_add_null_value (b);
}

static void
st_cli_json_add_int (JsonBuilder *b, const char *key, gint64 value)
{
  json_builder_set_member_name (b, key);
  json_builder_add_int_value (b, value);
}

JsonNode *
st_cli_json_batch (const StBatchInfo *batch)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  st_cli_json_add_int (b, "id", batch->id);
  st_cli_json_add_string_or_null (b, "state", batch->state);
  st_cli_json_add_string_or_null (b, "work_order", batch->work_order);
  st_cli_json_add_string_or_null (b, "product", batch->product);
  st_cli_json_add_string_or_null (b, "profile_sha256", batch->profile_sha256);
  st_cli_json_add_string_or_null (b, "station_id", batch->station_id);
  st_cli_json_add_int (b, "quantity", batch->quantity);
  st_cli_json_add_int (b, "units", batch->n_units);
  st_cli_json_add_int (b, "done", batch->n_done);
  st_cli_json_add_int (b, "failed", batch->n_failed);
  json_builder_set_member_name (b, "certificates");
  json_builder_begin_object (b);
  st_cli_json_add_int (b, "live", batch->n_live_certs);
  st_cli_json_add_int (b, "voided", batch->n_voided);
  st_cli_json_add_int (b, "unconfirmed", batch->n_unconfirmed);
  st_cli_json_add_int (b, "disputed", batch->n_disputed);
  st_cli_json_add_int (b, "revoked", batch->n_revoked);
  json_builder_end_object (b);
  st_cli_json_add_time (b, "created_at", batch->created_at);
  st_cli_json_add_string_or_null (b, "created_by", batch->created_by);
  st_cli_json_add_time (b, "closed_at", batch->closed_at);
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
  st_cli_json_add_int (b, "id", v);
  for (guint i = 0; i < G_N_ELEMENTS (strings); i++)
    st_cli_json_add_string_or_null (b, strings[i].json, st_cli_json_dict_string (unit, strings[i].dbus));
  v = 0;
  g_variant_lookup (unit, "started-at", "x", &v);
  st_cli_json_add_time (b, "started_at", v);
  v = 0;
  g_variant_lookup (unit, "finished-at", "x", &v);
  st_cli_json_add_time (b, "finished_at", v);
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
      json_builder_add_string_value (b, strcmp (status, "note") == 0 ? line : line + 6);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
}
