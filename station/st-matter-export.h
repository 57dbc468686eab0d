/* What a lead takes away from a Matter batch (docs/matter.md, "The
 * manifest and the lead's codes file", "Labels of a batch"): the codes
 * file, one row per done unit with its setup passcode, QR text and manual
 * code, and the labels of the done units. Both hold the passcode: neither
 * goes into the public manifest. Read from the records a page of units at a
 * time (memory does not grow with the batch). */
#pragma once

#include <glib.h>

#include "st-db.h"
#include "st-label.h"

G_BEGIN_DECLS

#define ST_MATTER_CODES_FILE "matter-codes.csv"
#define ST_MATTER_CODES_HEADER "serial,uid,discriminator,passcode,qr,manual"

/* Writes the codes file of batch @batch_id to @path: created new (an
 * existing file or a link at @path is an error, never replaced nor
 * followed), mode 0600, synced; the header ST_MATTER_CODES_HEADER, then one
 * row per done unit with a Matter record in unit order, RFC 4180 (CRLF,
 * a cell holding a comma, quote, CR or LF quoted, quotes doubled; each cell
 * escaped with st_text_escape as a spreadsheet cell first); the passcode as
 * 8 digits. *@sha256 the lower-case hex SHA-256 of the file's bytes, *@rows
 * the rows written. INVALID_DATA when the batch is not a Matter batch. On
 * an error no file is left. */
gboolean st_matter_export_codes (StDb *db, gint64 batch_id, const char *path, gchar **sha256,
                                 guint *rows, GError **error);

/* The file name of a unit's labels: its product serial when that is 1 to
 * 64 characters of A-Z a-z 0-9 . _ - not starting with '.', else
 * "unit-ID". */
gchar *st_matter_label_name (const StDbUnit *u);

/* Writes the labels (PNG, PDF, ZPL: st_label_write_files) of every done
 * unit of batch @batch_id with a Matter record into the existing folder
 * @dir, named by st_matter_label_name, with the batch profile's name as
 * the product name; *@count the units labelled. INVALID_DATA when the batch
 * is not a Matter batch or a label cannot be made (naming the unit). */
gboolean st_matter_export_labels (StDb *db, gint64 batch_id, const StLabelSize *size, const char *dir,
                                  guint *count, GError **error);

G_END_DECLS
