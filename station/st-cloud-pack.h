/* A folder of the cloud export as one stream: "station-folder-pack/1".
 *
 * The service sends each folder of the export (aws/, azure/, certs/, jws/)
 * to its client as one descriptor, whatever the number of files: a sendmsg
 * carries at most 253 descriptors (SCM_MAX_FD), and certs/ holds a file per
 * unit. Neither side holds the folder in memory: the service writes the
 * pack into an unlinked file of its private scratch folder and hands out a
 * read-only descriptor of it (the only writable one is closed first); the
 * client reads it record by record with bounded names and writes each file
 * as it comes (docs/cloud.md, "The folders over D-Bus").
 *
 * The format, all integers big-endian:
 *
 *   "station-folder-pack/1\n"                       22 bytes
 *   per file:  u16 name length (1..255), the name (st_cloud_pack_name_ok),
 *              u64 data length (at most ST_CLOUD_PACK_FILE_MAX), the data
 *   the end:   u16 0, u64 the number of files, then nothing
 *
 * A reader refuses anything else: another header, a name outside the rule,
 * a length past the end, a count that differs, a byte after the end. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define ST_CLOUD_PACK_MAGIC "station-folder-pack/1\n"
/* A file in a pack: at most 16 GiB (jws/entries.json at 1,000,000 units
 * is about 2.5 GB). */
#define ST_CLOUD_PACK_FILE_MAX ((guint64) 16 << 30)
/* Files in a pack: at most 2^24. */
#define ST_CLOUD_PACK_FILES_MAX ((guint64) 1 << 24)

/* 1..255 bytes of A-Z a-z 0-9 . _ -, not starting with '.' (so never ".",
 * "..", a hidden file or a path). */
gboolean st_cloud_pack_name_ok (const char *name, gsize len);

/* ---- writing (the service) ---- */

typedef struct StCloudPack StCloudPack;

/* A new pack in an unlinked file of @tmp_dir (a private folder). */
StCloudPack *st_cloud_pack_new (const char *tmp_dir, GError **error);
/* Adds @len bytes of @data as @name. */
gboolean st_cloud_pack_add_data (StCloudPack *pack, const char *name, const void *data, gsize len,
                                 GError **error);
/* Adds the regular file open as @fd (from its current offset, @len bytes). */
gboolean st_cloud_pack_add_fd (StCloudPack *pack, const char *name, int fd, guint64 len,
                               GError **error);
/* Ends the pack and frees it: a read-only descriptor of it at offset 0
 * (the caller closes it), or -1 and @error. */
int st_cloud_pack_finish (StCloudPack *pack, GError **error);
void st_cloud_pack_free (StCloudPack *pack);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StCloudPack, st_cloud_pack_free)

/* Folder @path as a pack (in @tmp_dir): each entry read as it comes
 * (nothing of the folder is kept), each a plain file (never a link) named
 * by the rule above. A read-only descriptor, or -1 and @error. */
int st_cloud_pack_folder (const char *path, const char *tmp_dir, GError **error);

/* ---- reading (the client) ---- */

/* One file of a pack: its name, and @len bytes at @offset of @fd. */
typedef gboolean (*StCloudPackFunc) (const char *name, int fd, guint64 offset, guint64 len,
                                     gpointer user_data, GError **error);

/* Reads the pack behind @fd (a regular file, read with pread: its offset
 * is not moved) from its start, calling @func (may be NULL: only checks)
 * on each file in order; @label names it in errors ("certs/"). Checks
 * everything the format says. INVALID_DATA naming the folder and what is
 * wrong; the number of files in *@n_files. Memory: a name at a time. */
gboolean st_cloud_pack_read (int fd, const char *label, StCloudPackFunc func, gpointer user_data,
                             guint64 *n_files, GError **error);

G_END_DECLS
