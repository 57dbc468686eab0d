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
