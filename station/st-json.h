/* JSON as text: the one place the engine turns json-glib trees into the
 * strings it writes (audit payloads, export files). */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* @node as text, pretty-printed or on one line; *@len (may be NULL) its length. */
gchar *st_json_text (JsonNode *node, gboolean pretty, gsize *len);
/* The tree @b has built, on one line (an audit payload). */
gchar *st_json_builder_text (JsonBuilder *b);

G_END_DECLS
