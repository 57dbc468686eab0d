/* The line: what every socket of one batch run shares (docs/architecture.md, The unit
 * pipeline).
 *
 * One StLine per `batch run`: the CA (its HSM session is serialised by the
 * HSM lock), the database (its single writer serialises and group-commits),
 * the batch and its profile. Each socket's worker runs the unit pipeline
 * (st-unit.h) on it for every device it finds. The line is opaque: its
 * fields are the pipeline's (st-line-private.h). */
#pragma once

#include <gio/gio.h>

#include "st-ca.h"
#include "st-config.h"
#include "st-db.h"
#include "st-profile.h"
#include "st-unit.h"

G_BEGIN_DECLS

typedef struct _StLine StLine;

/* Opens the line for @batch_id: loads the batch and its profile from the
 * database, checks the batch is open, and gathers units left mid-pipeline
 * by an earlier run (st_line_recover). @config, @ca and @db are borrowed:
 * they outlive the line. */
StLine *st_line_new (StConfig *config, StCa *ca, StDb *db, gint64 batch_id,
                     const char *operator_name, GError **error);
void st_line_free (StLine *line);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StLine, st_line_free)

/* Set before the line runs (st_batch_run), not while it runs. */

/* The line's cancellable (borrowed; NULL: none): cancelled when the line
 * must stop, and watched by every socket. */
void st_line_set_cancellable (StLine *line, GCancellable *cancellable);
GCancellable *st_line_get_cancellable (StLine *line);
/* A device that already holds a live certificate is provisioned again
 * instead of refused (needs ST_ACTION_LINE_REPROVISION). */
void st_line_set_allow_reprovision (StLine *line, gboolean allow_reprovision);
gboolean st_line_get_allow_reprovision (StLine *line);
/* Called on the worker threads as each unit enters a step (@step_func) and
 * with notes for the operator (@notice_func), both with @user_data. Either
 * may be NULL. */
void st_line_set_callbacks (StLine *line, StUnitStepFunc step_func,
                            StUnitNoticeFunc notice_func, gpointer user_data);

/* The batch's profile (owned by the line). */
const StProfile *st_line_get_profile (StLine *line);
/* The batch's id. */
gint64 st_line_get_batch_id (StLine *line);
/* One line for the operator when the batch's Certification Declaration is
 * a development and test one (not for shipping products); else NULL. */
const char *st_line_get_matter_cd_note (StLine *line);

/* Resolves what can be resolved without the device: a unit left 'started'
 * fails, a unit left 'issuing' fails and its certificate is voided (it was
 * never written: writing starts only after 'issued'). A unit left 'issued'
 * may hold its certificate: the certificate becomes 'unconfirmed' and the
 * unit waits for its device (st_unit_run resumes it when the uid shows up).
 * Appends one line per resolved unit to @report when given. */
gboolean st_line_recover (StLine *line, GString *report, GError **error);

/* The line stopped (database failure): the message, or NULL. */
gchar *st_line_dup_stop_reason (StLine *line);

G_END_DECLS
