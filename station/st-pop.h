/* Proof of possession (docs/agent-protocol.md, 0x06 SIGN): the device signs
 * "PROVISION-POP-V1" (16 ASCII bytes) followed by a fresh 32-byte challenge
 * with the key of its certificate. */
#pragma once

#include <glib.h>
#include <openssl/x509.h>

G_BEGIN_DECLS

#define ST_POP_CONTEXT "PROVISION-POP-V1"
#define ST_POP_CHALLENGE_SIZE 32
/* Hard maximum size of a signature from a device. */
#define ST_POP_SIGNATURE_MAX 256

/* Verifies @signature over "PROVISION-POP-V1" || @challenge with the public
 * key of @cert: ECDSA with SHA-256 for P-256 keys and SHA-384 for P-384 (DER
 * ECDSA-Sig-Value, parsed strictly: the whole buffer, canonical DER), pure
 * Ed25519 (exactly 64 bytes). VERIFY_FAILED "the device could not prove it
 * holds the key of its certificate (...)". */
gboolean st_pop_verify (X509 *cert, const guint8 challenge[32], GBytes *signature,
                        GError **error);
/* The same with the certificate's public key at hand (the one it was
 * issued for), instead of reading it from the certificate again. */
gboolean st_pop_verify_key (EVP_PKEY *key, const guint8 challenge[32], GBytes *signature,
                            GError **error);

G_END_DECLS
