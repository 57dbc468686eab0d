#include "st-json.h"

#include "st-util.h"

gchar *
st_json_text (JsonNode *node, gboolean pretty, gsize *len)
{
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  json_generator_set_root (gen, node);
  json_generator_set_pretty (gen, pretty);
  return json_generator_to_data (gen, len);
}

gchar *
st_json_builder_text (JsonBuilder *b)
{
  g_autoptr(JsonNode) root = json_builder_get_root (b);
  return st_json_text (root, FALSE, NULL);
}

void
st_json_add_string (JsonBuilder *b, const char *name, const char *value)
{
  json_builder_set_member_name (b, name);
  if (value == NULL)
    json_builder_add_null_value (b);
  else
    json_builder_add_string_value (b, value);
}

void
st_json_add_int (JsonBuilder *b, const char *name, gint64 value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_int_value (b, value);
}

void
st_json_add_time (JsonBuilder *b, const char *name, gint64 t)
{
  json_builder_set_member_name (b, name);
  if (t <= 0)
    {
      json_builder_add_null_value (b);
      return;
    }
  g_autofree gchar *s = st_time_iso8601_from_unix (t);
  json_builder_add_string_value (b, s);
}
