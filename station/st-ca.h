/* The CA material that the issuer and the manifest signer need, opened
 * once per command: the token (logged in), the issuing CA key and the
 * station signing key (both inside the token), their certificates, the
 * chain and the trusted root, all checked against each other.
 *
 * Signing with ca_key or signing_key goes to the token: hold
 * st_hsm_lock (ca->hsm) around it. When a signature fails with a CKR_*
 * error, call st_ca_ensure_keys() and try once more. */
#pragma once

#include <glib.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "st-config.h"
#include "st-hsm.h"
#include "st-ossl.h" /* ST_OID_STATION_SIGNING */

G_BEGIN_DECLS

/* Hard limits for the PEM files read here. */
#define ST_CA_PEM_MAX (1024 * 1024)
#define ST_CA_CHAIN_MAX 8

typedef struct {
  StConfig *config;                /* borrowed */
  StHsm *hsm;
  EVP_PKEY *ca_key, *signing_key;  /* in the token */
  X509 *ca_cert, *signing_cert, *root;
  STACK_OF (X509) *chain;          /* issuing CA first, root last */
  guint login_generation;          /* of the keys above (st_hsm_get_login_generation) */
} StCa;

/* Sets SOFTHSM2_CONF for the demo, opens the token, logs in with @pin,
 * loads the keys and certificates, and checks that ca_cert's public key
 * is ca_key's (a test signature through the token), the same for the
 * signing key, and that the chain runs from ca_cert to the root (each
 * certificate signed by the next, the root self-signed and equal to
 * root_file) and that ca_cert and signing_cert verify against the root. */
StCa *st_ca_open (StConfig *config, const char *pin, GError **error);
/* Whether @cert may sign for the station: it carries the station-signing
 * extended key usage (ST_OID_STATION_SIGNING) and, when @pin_hex is not
 * NULL, the SHA-256 of its SubjectPublicKeyInfo is @pin_hex (lower- or
 * upper-case hex). VERIFY_FAILED says which check failed. */
gboolean st_ca_check_station_signer (X509 *cert, const char *pin_hex, GError **error);
/* After a lost session (a failed signature, a token reset): logs in again
 * if needed and then takes ca_key and signing_key anew, replacing (and
 * freeing) the old ones. Call it with or without st_hsm_lock held; threads
 * must read ca->ca_key / ca->signing_key only under that lock. A no-op
 * when the session is fine. */
gboolean st_ca_ensure_keys (StCa *ca, GError **error);
/* Signs @cert with the issuing CA key (st_issue_sign_locked, under the
 * HSM lock). Before the signature it checks the session (an idle pause
 * may have lost it: st_ca_ensure_keys). When the token answers with a
 * lost session, login or key handle (st_hsm_ckr_is_session_lost), it
 * logs in again with the PIN kept in memory, takes the keys anew and
 * signs once more, once. *@hsm_failed is TRUE when the failure is the
 * HSM's (a CKR_* from the token, or no way back to a working session):
 * nothing more can be signed until someone looks at the HSM. The message
 * names the CKR. */
gboolean st_ca_sign_cert (StCa *ca, X509 *cert, gboolean *hsm_failed, GError **error);

/* Which of the CA's keys in the token a signature uses. */
typedef enum {
  ST_CA_KEY_ISSUING,  /* ca_key: device certificates */
  ST_CA_KEY_SIGNING,  /* signing_key: manifests, audit checkpoints */
} StCaKeyRole;

/* The token's part of one signature. st_ca_token_enter() takes the HSM
 * lock (and clears stale OpenSSL errors); st_ca_token_leave() notes the
 * CKR the token answered, from the error queue, and releases the lock.
 * Both fit StIssueLockFunc. */
typedef struct _StCaToken StCaToken;
void st_ca_token_enter (gpointer token);
void st_ca_token_leave (gpointer token);

/* Makes one signature with @key (a reference of the caller's, valid during
 * the call), calling st_ca_token_enter/leave around every use of the token.
 * FALSE with @error (the OpenSSL queue) when it fails. */
typedef gboolean (*StCaSignFunc) (EVP_PKEY *key, StCaToken *token, gpointer user_data,
                                  GError **error);

/* The one path by which the station signs with its token, with the same
 * recovery for every key: the session is checked first (st_ca_ensure_keys),
 * and when the token answers with a lost session, login or key handle
 * (st_hsm_ckr_is_session_lost) it logs in again with the PIN kept in
 * memory, takes the keys anew and calls @func once more, once. @what names
 * the signature in messages ("the certificate", "the manifest").
 * *@hsm_failed (may be NULL) is TRUE when the failure is the HSM's. */
gboolean st_ca_sign_with (StCa *ca, StCaKeyRole role, const char *what, StCaSignFunc func,
                          gpointer user_data, gboolean *hsm_failed, GError **error);
void st_ca_free (StCa *ca);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StCa, st_ca_free)

/* One certificate from a PEM file (the first; at most ST_CA_PEM_MAX bytes). */
X509 *st_ca_load_cert_file (const char *path, GError **error);
/* Every certificate of a PEM file, in order (1..ST_CA_CHAIN_MAX). */
STACK_OF (X509) *st_ca_load_chain_file (const char *path, GError **error);
/* A certificate named in station.conf: a PEM file or a pkcs11: URI
 * (read from @hsm, which may be NULL for a file). */
X509 *st_ca_load_cert (StHsm *hsm, const char *path_or_uri, GError **error);
/* Proves that @key (in the token) and @cert belong together: signs a
 * random message with @key under the HSM lock and verifies it with the
 * certificate's public key. VERIFY_FAILED names @what. */
gboolean st_ca_check_key_matches (StHsm *hsm, EVP_PKEY *key, X509 *cert, const char *what,
                                  GError **error);
/* Checks @chain (issuing CA first, root last) against @root and verifies
 * @leaf (may be NULL) through it. */
gboolean st_ca_check_chain (STACK_OF (X509) *chain, X509 *root, X509 *leaf, GError **error);

G_END_DECLS
