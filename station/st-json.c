#include "st-json.h"

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
