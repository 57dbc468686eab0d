/* Operators and roles (docs/architecture.md, Security invariants: "Roles: operator,
 * lead, qa, admin, each with a PIN (salted, slow hash); every action checks
 * the role and is audited").
 *
 * A PIN is stored as PBKDF2-HMAC-SHA256 with a random 16-byte salt and its
 * parameters: "pbkdf2-sha256$ITERATIONS$SALT_HEX$HASH_HEX". Five wrong PINs
 * in a row lock the operator until an admin unlocks them. */
#pragma once

#include <glib.h>

#include "st-api.h"
#include "st-db.h"

G_BEGIN_DECLS


#define ST_AUTH_MAX_ATTEMPTS 5
#define ST_AUTH_PIN_MIN 4
#define ST_AUTH_PIN_MAX 64
#define ST_AUTH_PBKDF2_ITERATIONS 210000
#define ST_AUTH_SALT_LEN 16
/* The PIN comes from this variable, else a no-echo prompt. */
#define ST_AUTH_PIN_ENV "STATION_OPERATOR_PIN"


/* The stored form of a new PIN (4 to 64 characters). */
gchar *st_auth_hash_pin (const char *pin, GError **error);
/* Whether @pin matches @stored (constant-time comparison); INVALID_DATA
 * when @stored is not a form this station knows. */
gboolean st_auth_check_pin (const char *stored, const char *pin, gboolean *match, GError **error);
/* STATION_OPERATOR_PIN, else a no-echo prompt (st_read_secret). Free with
 * st_secret_free(). */
gchar *st_auth_read_pin (const char *prompt, GError **error);


/* Checks @name's PIN. The attempt is counted, and the lock checked, in one
 * transaction before the slow hash (st_db_operator_login_reserve), so that
 * attempts made at once get no more hashes than ST_AUTH_MAX_ATTEMPTS.
 * Unknown operator or wrong PIN: AUTH_FAILED (a wrong PIN is audited, and
 * says how many attempts are left); a locked operator, or one whose last
 * attempts are being checked: PERMISSION_DENIED naming the unlock command
 * (the right PIN too). On success
 * the failed attempts go back to 0 and the database's actor becomes @name
 * (st_db_set_actor). */
StAuthSession *st_auth_login (StDb *db, const char *name, const char *pin, GError **error);

/* PERMISSION_DENIED "WHAT needs the role R (NAME is ROLE)" unless the
 * session's role is in @roles; the refusal is audited. */
gboolean st_auth_require (StDb *db, const StAuthSession *session, guint roles, const char *what,
                          GError **error);

/* Adds an operator with the PIN @pin: by @admin (who must be an admin), or,
 * with @admin NULL, the very first operator of the station, which must be
 * an admin. */
gboolean st_auth_add_operator (StDb *db, const StAuthSession *admin, const char *name,
                               StRole role, const char *pin, GError **error);

/* Creates those of the demo operators that do not exist yet (the admin
 * first, as the station's first operator when there is none). */
gboolean st_auth_ensure_demo_operators (StDb *db, GError **error);

G_END_DECLS
