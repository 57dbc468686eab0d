/* A manifest verified off the station (issue 17): in the verifier's own
 * process, against a root certificate file it chose and a signer pin it
 * gives, with no home, no database and no service. The GUI's QA view calls
 * this when QA chooses a trusted root, the CLI for `manifest verify --root`; the work (st_manifest_verify, db
 * NULL) runs in a worker thread, so the caller's main loop never waits.
 * Only GIO and the client's report type here: a client includes this
 * without the engine's headers. */
#pragma once

#include <gio/gio.h>

#include "st-client.h"

G_BEGIN_DECLS

/* The largest root file read (a root certificate in PEM). */
#define ST_MANIFEST_OFFLINE_MAX_ROOT (64 * 1024)

/* Verifies the manifest folder @dir against the root in the PEM file
 * @root_path (exactly one self-signed CA certificate:
 * st_verify_root_from_pem), its signer pinned by @signer_pin (64 hex
 * digits: the SHA-256 of the station signing key; NULL or "": none, which
 * fails, reporting the pin the manifest claims and the signer's key). */
void st_manifest_verify_offline_async (const char *dir, const char *root_path, const char *signer_pin,
                                       GCancellable *cancellable, GAsyncReadyCallback callback,
                                       gpointer user_data);
/* The report (ok, the checks, why it failed), or NULL when the check could
 * not run (the root file unreadable or not a root, the folder not a folder
 * of plain files), with @error saying so. */
StReport *st_manifest_verify_offline_finish (GAsyncResult *result, GError **error);

/* The same, synchronously (`station manifest verify DIR --root FILE`):
 * FALSE with @error when the check could not run; else TRUE, with *@ok the
 * verdict, the checks appended to @report and, when it failed, why in
 * *@failure (free it). */
gboolean st_manifest_verify_offline (const char *dir, const char *root_path, const char *signer_pin,
                                     GString *report, gboolean *ok, gchar **failure, GError **error);

G_END_DECLS
