/* Break-glass recovery of an admin (`station admin recover NAME`): the way
 * back when the station's admins are locked out. Whoever holds the HSM
 * token's SO PIN controls the token and with it the station's keys; proving
 * it unlocks an admin, or adds one, without any operator login.
 *
 * PKCS#11 keeps one login state per process, and the service is logged in
 * as the token's user once unlocked (C_Login(CKU_SO) would fail with
 * CKR_USER_ANOTHER_ALREADY_LOGGED_IN). So the proof runs in a process of
 * its own: the service runs itself again ('/proc/self/exe --check-so-pin
 * MODULE TOKEN'), handing the SO PIN over a pipe (never argv, never the
 * environment); that process logs the SO in and out and says how it went
 * in its exit status and on its standard error. */
#pragma once

#include <glib.h>

#include "st-config.h"

G_BEGIN_DECLS

/* The hidden option of stationd that runs st_recover_check_so_pin_main(). */
#define ST_RECOVER_CHECK_OPTION "--check-so-pin"

/* Whether @so_pin is the SO PIN of @config's token, checked in a child
 * process (see above). AUTH_FAILED for a wrong one (the token counts it),
 * PERMISSION_DENIED when the token has locked it; the child's message is
 * kept. */
gboolean st_recover_check_so_pin (const StConfig *config, const char *so_pin, GError **error);

/* The child: `stationd --check-so-pin MODULE TOKEN`, the SO PIN on standard
 * input (one line). Exit status 0 when it is right, else 10 + the ST_ERROR
 * code, with the message on standard error. */
int st_recover_check_so_pin_main (int argc, char **argv);

G_END_DECLS
