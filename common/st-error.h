/* The one error domain of the station (docs/architecture.md, Conventions).
 *
 * Foreign errors (CKR_*, libusb, the OpenSSL error queue, sqlite) are
 * converted at the boundary with their names kept in the message; context
 * is added on the way up with g_prefix_error(). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define ST_ERROR (st_error_quark ())

typedef enum {
  ST_ERROR_INTERNAL,
  ST_ERROR_NOT_FOUND,
  ST_ERROR_NOT_SUPPORTED,
  ST_ERROR_INVALID_DATA,
  ST_ERROR_READ,
  ST_ERROR_WRITE,
  ST_ERROR_TIMED_OUT,
  ST_ERROR_BUSY,
  ST_ERROR_AUTH_FAILED,
  ST_ERROR_PERMISSION_DENIED,
  ST_ERROR_VERIFY_FAILED,
  ST_ERROR_CANCELLED,
  ST_ERROR_HSM_LOCKED,     /* the action needs the HSM and the station is locked */
  ST_ERROR_LAST
} StError;

GQuark st_error_quark (void);
const char *st_error_code_to_string (StError code);

/* Sets @error from the OpenSSL error queue: "@what: <reason> (<lib>)".
 * Drains the queue so that a later error does not pick up stale entries. */
void st_error_set_openssl (GError **error, StError code, const char *what);
/* Drains and discards the calling thread's OpenSSL error queue. */
void st_error_clear_openssl (void);
/* A check that failed: drains the OpenSSL error queue and sets VERIFY_FAILED
 * with the message @frame (one %s) around the formatted detail. Returns
 * FALSE, for `return st_error_verify_failed (...)`. */
gboolean st_error_verify_failed (GError **error, const char *frame, const char *fmt, ...)
  G_GNUC_PRINTF (3, 4);

G_END_DECLS
