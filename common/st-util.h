/* Small helpers shared by every library. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* TRUE when a g_debug() from here would be printed (G_MESSAGES_DEBUG or
 * g_log_set_debug_enabled()). GLib formats a message before it drops it, so
 * the traces written for every frame ask first: formatting them cost the
 * bench 1% of its CPU with nobody reading them. */
#define ST_DEBUG_ON() (!g_log_writer_default_would_drop (G_LOG_LEVEL_DEBUG, G_LOG_DOMAIN))

/* Lower-case hex of @len bytes. */
gchar *st_hex_encode (const guint8 *data, gsize len);

/* Little-endian integers in byte buffers (wire formats, flash images). */
static inline guint16
st_get_le16 (const guint8 *p)
{
  return (guint16) (p[0] | (p[1] << 8));
}

static inline guint32
st_get_le32 (const guint8 *p)
{
  return (guint32) p[0] | (guint32) p[1] << 8 | (guint32) p[2] << 16 | (guint32) p[3] << 24;
}

static inline void
st_put_le16 (guint8 *p, guint16 v)
{
  p[0] = (guint8) v;
  p[1] = (guint8) (v >> 8);
}

static inline void
st_put_le32 (guint8 *p, guint32 v)
{
  p[0] = (guint8) v;
  p[1] = (guint8) (v >> 8);
  p[2] = (guint8) (v >> 16);
  p[3] = (guint8) (v >> 24);
}
/* Parses hex (upper or lower case, even length); NULL and an error otherwise. */
GBytes *st_hex_decode (const char *hex, GError **error);
/* Zeroes @len bytes in a way the compiler may not drop. */
void st_memwipe (void *p, gsize len);
/* Wipes and frees a GBytes that holds a secret (its data must be owned
 * by it: made with g_bytes_new() or g_bytes_new_take()). */
void st_bytes_wipe_unref (GBytes *secret);
/* The data of @bytes when it holds 1 to @max bytes, with its length in
 * *@len; otherwise NULL and INVALID_DATA: "@what is empty" or "@what is too
 * large (N bytes, at most @max)". For hostile input before any parsing. */
const guint8 *st_bytes_get_bounded (GBytes *bytes, gsize max, const char *what, gsize *len,
                                    GError **error);
/* Lower-case hex SHA-256 of @len bytes. */
gchar *st_sha256_hex (const guint8 *data, gsize len);
/* UTC time as ISO 8601 with a Z, to the second: 2026-11-23T09:00:00Z. */
gchar *st_time_iso8601_now (void);
gchar *st_time_iso8601_from_unix (gint64 unix_seconds);
/* Writes @data to @path atomically (temporary file, fsync, rename, fsync of
 * the folder) with @mode. */
gboolean st_file_write_durable (const char *path, const void *data, gsize len,
                                int mode, GError **error);
/* The same with the contents of the file open as @from (read from its
 * start). */
gboolean st_file_write_durable_from_fd (const char *path, int from, int mode, GError **error);
/* Copies the file open as @from (from its start) to @to, at most @max
 * bytes; @what names it in messages. */
gboolean st_fd_copy (int from, int to, guint64 max, const char *what, GError **error);

/* Removes @path and, when it is a folder, everything below it (symbolic
 * links are removed, never followed). Best effort: errors are ignored. */
void st_rm_rf (const char *path);

/* A secret (a PIN): the value of the environment variable @env_var if it is
 * set (1 to @max_len bytes, else INVALID_DATA naming the variable), else
 * read from /dev/tty after @prompt with echo off. NOT_FOUND "no PIN: set
 * ENV_VAR or run from a terminal" when there is neither; CANCELLED when
 * nothing was typed. Free with st_secret_free(), which wipes it. */
gchar *st_read_secret (const char *prompt, const char *env_var, gsize max_len, GError **error);
void st_secret_free (gchar *secret);

/* Process set-up every station program calls first in main():
 * - no core dumps and no ptrace by other users (PR_SET_DUMPABLE 0): the
 *   process holds the HSM PIN and, in station-key mode, device keys;
 * - freed heap memory is kept for reuse instead of being handed back to the
 *   kernel after every database transaction (M_TRIM_THRESHOLD): returning
 *   it costs an madvise and a TLB shoot-down on every core, per commit. */
void st_process_setup (void);

G_END_DECLS
