/* The CLI's --json documents (docs/cli-json.md; one JSON Schema per command
 * in docs/schema/cli/): one document on stdout, compact, ending in a
 * newline; stable member names in snake_case; counts as numbers; times as
 * ISO 8601 UTC text ("2026-12-06T17:51:40Z") or null; what a device or a
 * file sent as JSON strings, escaped by JSON alone. Every document's first
 * member is "format": "station-cli-COMMAND/1". */
#pragma once

#include <json-glib/json-glib.h>

#include "st-api.h"

G_BEGIN_DECLS

/* "station-cli-" @command "/1": the format member's value. */
#define ST_CLI_JSON_FORMAT(command) "station-cli-" command "/1"

/* Writes @node compactly on stdout (no newline). */
void st_cli_json_write (JsonNode *node);
/* Writes @node and a newline, flushed: a whole document. */
void st_cli_json_print (JsonNode *node);
/* A new builder with the object opened and its "format" member set. */
JsonBuilder *st_cli_json_begin (const char *format);
/* Closes the object @b began and prints it as the document. */
void st_cli_json_end (JsonBuilder *b);
/* (a time: st_json_add_time, st-json.h) */
/* Adds "@key": @value, or null when @value is NULL. */
void st_cli_json_add_string_or_null (JsonBuilder *b, const char *key, const char *value);
/* A batch as `batch list` and `batch show` give it. */
JsonNode *st_cli_json_batch (const StBatchInfo *batch);
/* A unit of a BatchUnitsPage answer (a{sv}). */
JsonNode *st_cli_json_unit (GVariant *unit);
/* The members every check's document has (unit verify, manifest verify,
 * audit verify): "verified", "failure" (null when verified) and "lines",
 * the report line by line, each {"status": "ok"|"fail"|"note", "text"}:
 * "ok" and "fail" for a check's line ("ok    ..." / "FAIL  ..."), the text
 * without that mark; "note" for any other line. */
void st_cli_json_add_check (JsonBuilder *b, gboolean verified, const char *failure, const char *report);
/* `unit verify --json` (station-cli-unit-verify/2): "matter", null for a
 * unit that got no Matter check, else {"code_given": @code_given,
 * "checks": [{"name": "matter-dac", "status": "ok"|"fail", "text"}, ...]},
 * the report's matter-* check lines in order. */
void st_cli_unit_verify_add_matter (JsonBuilder *b, const char *report, gboolean code_given);

/* `setup show --json`: the document of a SetupInfo answer (a{sv}). */
void st_cli_json_print_setup (GVariant *info);

G_END_DECLS
