/* Barcode scanners at the station (issue 17). A hand scanner types like a
 * keyboard and ends with Enter, so a scan is the text of a GtkEntry when it
 * is activated. Whatever a scanner sends is hostile: a code is taken only
 * when it is short, printable, valid UTF-8 and not empty; anything else is
 * refused with a message that quotes it escaped (st_text_escape). The
 * entry holds at most ST_SCAN_MAX_INPUT characters, so a scanner that never
 * sends Enter cannot make it grow. */
#pragma once

#include "st-gui.h"

G_BEGIN_DECLS

/* The longest code taken, in characters: work orders, product serials,
 * uids (64 hex digits at most) and certificate serials fit. */
#define ST_SCAN_MAX_CODE 128
/* What an entry set up with st_scan_entry_setup holds at most. */
#define ST_SCAN_MAX_INPUT 1024

/* Bounds @entry (ST_SCAN_MAX_INPUT characters) and names it @name for
 * AT-SPI. */
void st_scan_entry_setup (GtkEntry *entry, const char *name);

typedef enum {
  ST_SCAN_WORK_ORDER,
  ST_SCAN_UNIT,        /* a product serial, a device uid or a certificate serial */
  ST_SCAN_MATTER_CODE, /* a Matter onboarding code (QR text "MT:..." or manual code): it encodes the
                        * setup passcode, so a refusal never quotes it */
} StScanKind;

/* Checks the scanned @text, a code of @kind: surrounding blanks are
 * dropped; returns the code, or NULL with *@message set to what to tell
 * the user (the text quoted escaped, cut after 40 characters). */
gchar *st_scan_read (const char *text, StScanKind kind, gchar **message);

/* The batch a scanned @work_order selects among @batches (StBatchInfo*):
 * the open batch with that work order, the newest (highest id) when
 * several are open; with no open one, the newest closed one when
 * @closed_too. NULL when none. */
StBatchInfo *st_scan_find_batch (GPtrArray *batches, const char *work_order, gboolean closed_too);

/* What to tell the user when no batch (@closed_too) or no open batch has
 * the scanned @work_order, the code quoted escaped. */
gchar *st_scan_no_batch_message (const char *work_order, gboolean closed_too);

/* The one call for a batch picker (the Batches view, the line view's
 * "Scan or type the work order" entry): reads the work order scanned into
 * @entry, finds its batch in @batches (open batches only unless
 * @closed_too), and returns it (owned by @batches), clearing the entry.
 * NULL when the code is refused or no batch has it: *@message then says
 * so, naming the scanned text escaped, and the entry keeps it selected, so
 * that the next scan replaces it. */
StBatchInfo *st_scan_batch_from_entry (GtkEntry *entry, GPtrArray *batches, gboolean closed_too,
                                       gchar **message);

G_END_DECLS
