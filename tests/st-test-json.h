/* A JSON file a test reads (a simulator's state file, a manifest): parsed,
 * or the test fails there and then. */
#pragma once

#include <json-glib/json-glib.h>

static inline JsonParser *
st_test_load_json (const char *path)
{
  g_autoptr(GError) error = NULL;
  JsonParser *parser = json_parser_new ();
  g_assert_true (json_parser_load_from_file (parser, path, &error));
  g_assert_no_error (error);
  return parser;
}

/* A manifest folder as one JSON object: its manifest.json and, for a
 * station-manifest/2 folder, the units of units.jsonl (one a line) added
 * as "units", the array a station-manifest/1 manifest.json holds. */
static inline JsonParser *
st_test_load_manifest (const char *dir)
{
  g_autofree gchar *json = g_build_filename (dir, "manifest.json", NULL);
  g_autofree gchar *units_path = g_build_filename (dir, "units.jsonl", NULL);
  JsonParser *parser = st_test_load_json (json);
  if (!g_file_test (units_path, G_FILE_TEST_EXISTS))
    return parser;
  g_autofree gchar *text = NULL;
  g_assert_true (g_file_get_contents (units_path, &text, NULL, NULL));
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  JsonArray *units = json_array_new ();
  for (guint i = 0; lines[i] != NULL; i++)
    {
      if (*lines[i] == '\0')
        {
          g_assert_null (lines[i + 1]);  /* only after the last line's '\n' */
          break;
        }
      g_autoptr(JsonParser) lp = json_parser_new ();
      g_autoptr(GError) error = NULL;
      g_assert_true (json_parser_load_from_data (lp, lines[i], -1, &error));
      g_assert_no_error (error);
      json_array_add_element (units, json_node_copy (json_parser_get_root (lp)));
    }
  json_object_set_array_member (json_node_get_object (json_parser_get_root (parser)), "units", units);
  return parser;
}
