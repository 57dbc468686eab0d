/* JSON as text: the one place the engine turns json-glib trees into the
 * strings it writes (audit payloads, export files). */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* @node as text, pretty-printed or on one line; *@len (may be NULL) its length. */
gchar *st_json_text (JsonNode *node, gboolean pretty, gsize *len);
/* The tree @b has built, on one line (an audit payload). */
gchar *st_json_builder_text (JsonBuilder *b);

/* A member @name of the object @b is building: the string @value, or null
 * when NULL; the integer @value. */
void st_json_add_string (JsonBuilder *b, const char *name, const char *value);
void st_json_add_int (JsonBuilder *b, const char *name, gint64 value);
/* A member @name: the time @t (seconds since 1970) in ISO 8601 UTC, or
 * null when @t is 0 (not yet: a batch not closed). */
void st_json_add_time (JsonBuilder *b, const char *name, gint64 t);

G_END_DECLS
