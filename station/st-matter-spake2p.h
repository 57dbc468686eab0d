/* The SPAKE2+ verifier of a Matter setup passcode (docs/matter.md,
 * "Onboarding codes and the verifier"): what the device stores instead of
 * the passcode. PBKDF2-HMAC-SHA256 over the passcode as 4 bytes
 * little-endian, with the salt and the iteration count, gives 80 bytes:
 * w0s and w1s of 40 each; w0 = w0s mod n, w1 = w1s mod n over P-256's order
 * n; the verifier is w0 (32 bytes, big-endian) followed by L = w1*G
 * uncompressed (65 bytes). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define ST_MATTER_VERIFIER_LEN 97
#define ST_MATTER_SALT_MIN 16
#define ST_MATTER_SALT_MAX 32
#define ST_MATTER_ITERATIONS_MIN 1000
#define ST_MATTER_ITERATIONS_MAX 100000

/* Whether @salt_len and @iterations are within what Matter allows
 * (16..32 bytes, 1000..100000); sets @error saying which is not. */
gboolean st_matter_spake2p_params_check (gsize salt_len, guint32 iterations, GError **error);

/* A salt of @len (16..32) bytes from the CSPRNG. */
gboolean st_matter_spake2p_salt_generate (guint8 *salt, gsize len, GError **error);

/* The verifier of @passcode (st_matter_passcode_valid()) into @verifier. */
gboolean st_matter_spake2p_verifier (guint32 passcode, const guint8 *salt, gsize salt_len,
                                     guint32 iterations, guint8 verifier[ST_MATTER_VERIFIER_LEN],
                                     GError **error);

/* Whether @verifier (read from a device, @len bytes) is the verifier of
 * @passcode with @salt and @iterations; compared in constant time. FALSE
 * with @error set when it cannot be computed; FALSE without @error when
 * it differs. */
gboolean st_matter_spake2p_verifier_matches (const guint8 *verifier, gsize len, guint32 passcode,
                                             const guint8 *salt, gsize salt_len,
                                             guint32 iterations, GError **error);

G_END_DECLS
