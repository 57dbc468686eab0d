/* The HSM: a PKCS#11 token reached through libp11 (docs/architecture.md, Layout).
 *
 * hsm/ is the only code that includes libp11.h and the raw PKCS#11 header.
 * Keys are named by RFC 7512 pkcs11: URIs ("pkcs11:token=...;object=...;
 * id=%01;type=private"); the private keys never leave the token: the
 * EVP_PKEY that st_hsm_get_private_key() returns signs through the token
 * with ordinary OpenSSL calls (X509_sign, CMS_sign, EVP_DigestSign).
 *
 * Threads: one lock per StHsm (st_hsm_lock/st_hsm_unlock, recursive).
 * Every function here takes it itself; callers MUST also hold it around any
 * OpenSSL call that signs with a key from this HSM, because such a call goes
 * to the token outside of these functions. Holding it while calling the
 * functions below is fine (the lock is recursive).
 *
 * Lifetime: every EVP_PKEY returned for a private key refers to the token
 * through this StHsm: free them all before st_hsm_free().
 *
 * Within one process all StHsm of one module share the loaded module (it is
 * initialised once and finalised when the last one is freed) and libp11's
 * view of its slots. Two StHsm on the same token share its login state
 * (PKCS#11 logs in per application); freeing one leaves the other as it
 * is.
 *
 * Every CKR_* failure keeps the CKR_ name in the message. */
#pragma once

#include <glib.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "st-types.h"

G_BEGIN_DECLS

/* The longest PIN accepted (bytes). */
#define ST_HSM_PIN_MAX 128

typedef struct _StHsm StHsm;

/* Loads @module_path and finds the initialised token labelled @token_label;
 * NOT_FOUND lists the labels seen. */
StHsm *st_hsm_open (const char *module_path, const char *token_label, GError **error);
/* Logs the user in. AUTH_FAILED on CKR_PIN_INCORRECT / CKR_PIN_LEN_RANGE,
 * PERMISSION_DENIED on CKR_PIN_LOCKED. Keeps a copy of the PIN in locked
 * memory (wiped by st_hsm_free) so that st_hsm_ensure_login() can log in
 * again after a lost session. */
gboolean st_hsm_login (StHsm *hsm, const char *pin, GError **error);
/* Checks that the session is alive and logged in; opens a new session and
 * logs in again with the kept PIN if not (after a token reset or a closed
 * session). A no-op when everything is fine. Every function here does this
 * itself before it uses the token.
 *
 * After such a new login the token may have forgotten the object handles
 * of private keys (SoftHSM2 does): an EVP_PKEY taken before then fails
 * with CKR_OBJECT_HANDLE_INVALID. st_hsm_get_login_generation() counts the
 * new logins: when it changed, take the private keys again
 * (st_ca_ensure_keys() does that for the CA). */
gboolean st_hsm_ensure_login (StHsm *hsm, GError **error);
guint st_hsm_get_login_generation (StHsm *hsm);
/* C_CloseAllSessions on the token: what a token reset does to this
 * process (every session gone, logged out). The next use opens a new
 * session and logs in again with the kept PIN. For tests of that path. */
void st_hsm_close_all_sessions (StHsm *hsm);
/* RFC 7512 pkcs11: URI with object= and/or id= (percent-encoded); type=
 * must be absent or match; token= must be absent or name this token.
 * Returns a new reference; NOT_FOUND names the URI. */
EVP_PKEY *st_hsm_get_private_key (StHsm *hsm, const char *uri, GError **error);
EVP_PKEY *st_hsm_get_public_key (StHsm *hsm, const char *uri, GError **error);
X509 *st_hsm_get_certificate (StHsm *hsm, const char *uri, GError **error);
/* C_GenerateRandom through the token. */
gboolean st_hsm_random (StHsm *hsm, guint8 *buf, gsize len, GError **error);
/* Serialises every use of the token across worker threads: callers take it
 * around any signing with a key from this HSM. Recursive. */
void st_hsm_lock (StHsm *hsm);
void st_hsm_unlock (StHsm *hsm);
/* Key ceremony: an EC key pair made inside the token (CKA_TOKEN,
 * CKA_PRIVATE, CKA_SENSITIVE, not CKA_EXTRACTABLE, CKA_SIGN) with @label and
 * @id; @alg is ST_ALG_EC_P256 or ST_ALG_EC_P384. Returns the pkcs11: URI of
 * the private key (the public key has the same URI with type=public).
 * Needs a login. */
gchar *st_hsm_generate_key (StHsm *hsm, const char *label, const guint8 *id, gsize id_len,
                            StAlg alg, GError **error);
/* Whether any key or certificate object of the token carries @label
 * (private objects are seen only when logged in): the key ceremony picks
 * labels that are free. */
gboolean st_hsm_label_in_use (StHsm *hsm, const char *label, gboolean *in_use, GError **error);
/* Stores @cert as a token object (CKO_CERTIFICATE, CKC_X_509) with @label
 * and @id. Needs a login. */
gboolean st_hsm_store_certificate (StHsm *hsm, const char *label, const guint8 *id, gsize id_len,
                                   X509 *cert, GError **error);
/* Private token data objects (CKO_DATA, CKA_TOKEN, CKA_PRIVATE,
 * CKA_APPLICATION "station"): small records kept in the HSM, such as the
 * audit anchor. st_hsm_data_replace() creates a new object labelled @label
 * holding @value and then destroys the older ones of that label: a failure
 * in between leaves two, never none. Needs a login. */
gboolean st_hsm_data_replace (StHsm *hsm, const char *label, GBytes *value, GError **error);
/* The values (GBytes) of every such object labelled @label, each at most
 * @max bytes; an empty array when there is none. Private objects are seen
 * only when logged in. */
GPtrArray *st_hsm_data_read (StHsm *hsm, const char *label, gsize max, GError **error);
/* CKA_SENSITIVE / CKA_EXTRACTABLE / CKA_NEVER_EXTRACTABLE of a private key. */
gboolean st_hsm_get_key_flags (StHsm *hsm, const char *uri, gboolean *sensitive,
                               gboolean *extractable, gboolean *never_extractable,
                               GError **error);
/* After a failed OpenSSL call that used a key of the token (X509_sign,
 * EVP_DigestSign): the CKR_* value that libp11 left in this thread's
 * OpenSSL error queue (the newest), or 0 (CKR_OK) when there is none. The
 * queue keeps the same errors, in order. Messages built from the queue
 * name the CKR (CKR_DEVICE_ERROR, ...) once a module is loaded. */
gulong st_hsm_peek_error_ckr (void);
/* Whether the token answered @ckr because this process lost its session,
 * its login or its object handles (CKR_SESSION_HANDLE_INVALID,
 * CKR_SESSION_CLOSED, CKR_USER_NOT_LOGGED_IN, CKR_OBJECT_HANDLE_INVALID,
 * CKR_KEY_HANDLE_INVALID, CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT): a new
 * session, a new login and the keys taken again may cure it. */
gboolean st_hsm_ckr_is_session_lost (gulong ckr);
/* "CKR_DEVICE_ERROR" */
const char *st_hsm_ckr_to_string (gulong ckr);
/* "label (manufacturer model, serial)" */
gchar *st_hsm_get_token_description (StHsm *hsm);
const char *st_hsm_get_token_label (StHsm *hsm);
void st_hsm_free (StHsm *hsm);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StHsm, st_hsm_free)

/* Whether @module_path is loaded in this process (an StHsm or a token
 * creation holds it). SoftHSM2 reads SOFTHSM2_CONF only when it is
 * loaded: a demo set-up with a new configuration needs it unloaded. */
gboolean st_hsm_module_in_use (const char *module_path);

/* Token creation for the demo: initialises a free (uninitialised) token
 * slot of the module with @label, the SO PIN and the user PIN. */
gboolean st_hsm_init_token (const char *module_path, const char *label, const char *so_pin,
                            const char *user_pin, GError **error);

/* The PIN: STATION_HSM_PIN if set, else a no-echo prompt on /dev/tty;
 * NOT_FOUND "no PIN: set STATION_HSM_PIN or run from a terminal" when
 * neither. Never logged. Free with st_hsm_pin_free(), which wipes it. */
gchar *st_hsm_read_pin (const char *prompt, GError **error);
void st_hsm_pin_free (gchar *pin);

/* pkcs11: URI helpers. st_hsm_uri_build() percent-encodes @object and
 * @id; @type is "private", "public" or "cert" (NULL: none). */
gchar *st_hsm_uri_build (const char *token, const char *object, const guint8 *id,
                         gsize id_len, const char *type);
/* The same URI with type= set to @type (replacing any type=). */
gchar *st_hsm_uri_with_type (const char *uri, const char *type, GError **error);

/* Break-glass recovery: whether @so_pin is the SO PIN of the token
 * @token_label of @module_path (C_Login(CKU_SO) on a session of its own,
 * then C_Logout). PKCS#11 keeps one login state per process: call it in a
 * process that has no user login on the token (the service runs it in a
 * child of its own, 'stationd --check-so-pin'). A wrong PIN is AUTH_FAILED
 * (counted by the token), a locked one PERMISSION_DENIED, with the CKR name
 * and what the token's flags say of its count. */
gboolean st_hsm_check_so_pin (const char *module_path, const char *token_label,
                              const char *so_pin, GError **error);

G_END_DECLS
