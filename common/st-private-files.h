/* The station's files are its own, whatever the umask and wherever they
 * live: a folder it creates is 0700, a file 0600, and a folder it is given
 * that other users may write to is refused (they could replace or remove
 * the station's files in it). The database (st_db_open), the service's home
 * (stationd) and what the service writes ask here. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* @dir, made (with its missing parents) 0700 when it does not exist. An
 * existing @dir must be a folder that neither its group nor others may
 * write to: otherwise PERMISSION_DENIED, naming the fix. */
gboolean st_dir_ensure_private (const char *dir, GError **error) G_GNUC_WARN_UNUSED_RESULT;
/* @path, created empty with mode 0600 when it does not exist (before a
 * library such as SQLite creates it with its own mode); an existing regular
 * file with more than 0600 is set to 0600. A link or anything but a regular
 * file is refused (INVALID_DATA). With @create FALSE and @path missing,
 * nothing is created and TRUE is returned (for files others create). */
gboolean st_file_ensure_private (const char *path, gboolean create, GError **error) G_GNUC_WARN_UNUSED_RESULT;

G_END_DECLS
