/* The audit anchor: the latest signed checkpoint (its entry's seq and
 * hash) kept in the HSM as well, as a private token data object
 * (st_hsm_data_replace), so that a database truncated, rewritten or
 * restored from an older copy without the HSM's knowledge is detected
 * (docs/audit.md, "The anchor in the HSM").
 *
 * The object is labelled ST_ANCHOR_LABEL and holds
 *   "station-audit-anchor/1\nstation=ID\nseq=SEQ\nhash=HASH\n"
 * The anchor only moves forward along the log it anchors: it is replaced
 * only when the log still holds its entry with its hash and the new entry
 * comes after it. A log that has lost the anchored entry therefore never
 * moves the anchor back; audit verify reports it for good. */
#pragma once

#include <glib.h>

#include "st-db.h"
#include "st-hsm.h"

G_BEGIN_DECLS

#define ST_ANCHOR_LABEL "station-audit-anchor"
/* An anchor object is small: refuse anything larger. */
#define ST_ANCHOR_MAX 512

/* "station-audit-anchor/1\nstation=ID\nseq=SEQ\nhash=HASH\n" */
gchar *st_anchor_format (const char *station_id, gint64 seq, const char *hash);
/* Parses st_anchor_format()'s text; FALSE when it is anything else. */
gboolean st_anchor_parse (const guint8 *data, gsize len, gchar **station_id, gint64 *seq,
                          gchar **hash);

/* The newest anchor of @station_id in the token (the highest seq, when a
 * replacement was cut short and left two): *@seq 0 and *@hash NULL when
 * there is none. Needs a login. */
gboolean st_anchor_read (StHsm *hsm, const char *station_id, gint64 *seq, gchar **hash,
                         GError **error);

/* Moves the anchor to the checkpointed entry @seq/@hash of @db's log when
 * it may (see above). When it may not, because the log no longer holds the
 * anchored entry, it leaves the anchor as it is and says so with
 * VERIFY_FAILED (the checkpoint itself stays recorded). */
gboolean st_anchor_advance (StHsm *hsm, StDb *db, const char *station_id, gint64 seq,
                            const char *hash, GError **error);

/* Whether @db's log still holds the anchored entry with the anchored hash;
 * appends one line to @report. FALSE with VERIFY_FAILED when it does not
 * (truncated, rewritten or rolled back), or when the token holds no anchor
 * although the log has signed checkpoints. */
gboolean st_anchor_check (StHsm *hsm, StDb *db, const char *station_id, GString *report,
                          GError **error);

G_END_DECLS
