/* Certificate issuance: the device's CSR checked as hostile input, the
 * certificate built from the profile and the device's identity (never from
 * the CSR), signed once with the CA key, verified, and linted against the
 * profile before it is recorded (docs/architecture.md, Security invariants).
 *
 * Validity rule (docs/profiles.md, Validity):
 *   - the station clock must lie inside the issuing CA's validity, else
 *     VERIFY_FAILED;
 *   - notBefore = now - backdate-minutes, raised to the CA's notBefore;
 *   - validity-days: notAfter = now + N days, and it must not pass the CA's
 *     notAfter (VERIFY_FAILED: shorten validity-days or renew the CA): the
 *     station never silently shortens a certificate;
 *   - no-expiry: notAfter = 99991231235959Z (RFC 5280 4.1.2.5), whatever the
 *     CA's notAfter (the chain stops verifying when the CA expires).
 * Times before 2050 are UTCTime, from 2050 GeneralizedTime (RFC 5280). */
#pragma once

#include <glib.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "st-profile.h"
#include "st-types.h"

G_BEGIN_DECLS

/* Hard maximum size of a CSR from a device. */
#define ST_CSR_MAX_SIZE 4096

/* The CSR is hostile input (st-csr.c): the whole buffer must be exactly one
 * DER PKCS#10 request (it parses to its last byte, and re-encoding gives the
 * same bytes, the signed part included), its signature must verify as
 * X509_REQ_verify() checks it, the key must be @alg: EC on the named curve
 * (explicit curve parameters refused) or Ed25519; RSA and other types
 * refused. The CSR's subject and extensions are ignored. Returns the public
 * key. Errors: INVALID_DATA with a reason an operator understands plus the
 * technical detail. */
EVP_PKEY *st_csr_check (GBytes *der, StAlg alg, GError **error);

/* A certificate serial: the DER INTEGER content octets (a 0x00 sign byte,
 * then 16 bytes whose top bit is set: always positive, non-zero, exactly
 * 128 bits wide, 127 of them random). */
typedef struct {
  guint8 bytes[17];
  gsize len;
} StSerial;

/* From 16 CSPRNG bytes (the HSM's C_GenerateRandom and/or RAND_priv_bytes).
 * FALSE when the 16 bytes are all equal (a stuck generator). */
gboolean st_serial_from_random (const guint8 random[16], StSerial *out);
/* Lower-case hex as in the DER INTEGER minus the sign byte: 32 digits. */
gchar *st_serial_to_hex (const StSerial *serial);

/* Builds the unsigned v3 certificate (see the validity rule above). The
 * signature algorithm in the to-be-signed part is set here from the CA
 * certificate's key (ecdsa-with-SHA256 for P-256, ecdsa-with-SHA384 for
 * P-384, Ed25519), so that st_issue_tbs_der() before signing gives the bytes
 * that get signed.
 * The subject key goes in as its SubjectPublicKeyInfo (st_spki_set_param()),
 * so the object caches no decoded key: X509_get0_pubkey() and
 * X509_verify_cert() on it fail. Use st_x509_get_pubkey(), or d2i_X509()
 * of the signed DER (what leaves the station) for chain checks. */
X509 *st_issue_build (X509 *ca_cert, const StProfile *profile, EVP_PKEY *subject_key,
                      const StSubjectInfo *info, const StSerial *serial,
                      GDateTime *now, GError **error);

/* Whether @profile can issue under @ca_cert at @now: the CA's key is one
 * the station signs with, the CA certificate is one that may issue (a
 * subject key identifier; keyCertSign when it has a key usage), @now lies
 * in its validity, and a certificate of the profile's validity-days issued
 * now ends by the CA's notAfter (validity = no-expiry, the profile's
 * explicit choice, is allowed, RFC 5280 4.1.2.5). Every refusal names the
 * fix. `batch create` and the line's start ask it, and st_issue_build()
 * applies the same rules to each certificate; VERIFY_FAILED (validity,
 * clock), INVALID_DATA (the CA certificate) or NOT_SUPPORTED (its key). */
gboolean st_issue_check_profile (X509 *ca_cert, const StProfile *profile, GDateTime *now,
                                 GError **error);

/* DER of the to-be-signed part (i2d_re_X509_tbs), recorded before signing. */
GBytes *st_issue_tbs_der (X509 *cert, GError **error);

/* Signs with @ca_key (the caller holds the HSM lock around this call), then
 * checks that the to-be-signed part did not change and verifies the
 * signature with the CA certificate's public key (X509_verify == 1).
 * Exactly one signing operation per call. */
gboolean st_issue_sign (X509 *cert, EVP_PKEY *ca_key, X509 *ca_cert, GError **error);
/* The same, calling @lock and @unlock just around the signature itself, so
 * that the checks before and after it run outside the HSM's lock (in
 * parallel across sockets). */
typedef void (*StIssueLockFunc) (gpointer data);
gboolean st_issue_sign_locked (X509 *cert, EVP_PKEY *ca_key, X509 *ca_cert, StIssueLockFunc lock,
                               StIssueLockFunc unlock, gpointer lock_data, GError **error);

/* Lints a signed certificate against the profile before it is recorded:
 * version 3, serial, issuer and AKI match the CA, the signature verifies,
 * validity as the profile says, KU critical with exactly the profile's bits,
 * basicConstraints CA:FALSE critical, SKI matches the key, subject/SAN/EKU as
 * built, no other extensions, the public key is @subject_key.
 * VERIFY_FAILED naming the rule. */
gboolean st_issue_check (X509 *cert, X509 *ca_cert, const StProfile *profile,
                         EVP_PKEY *subject_key, const StSubjectInfo *info,
                         const StSerial *serial, GError **error);

/* Station-key mode: a fresh key of @alg made on the station; the private key
 * as DER PKCS#8 (RFC 5208, RFC 8410) in @pkcs8_out, which the caller wipes
 * with st_bytes_wipe_unref(); never written anywhere by this code. */
EVP_PKEY *st_issue_station_keygen (StAlg alg, GBytes **pkcs8_out, GError **error);

/* Hex SHA-256 of the SubjectPublicKeyInfo DER of @key. */
gchar *st_pubkey_sha256_hex (EVP_PKEY *key);
/* The same of the SubjectPublicKeyInfo in @cert, as it is encoded there
 * (for a certificate from st_issue_build(), the same bytes and hash as
 * st_pubkey_sha256_hex() of its subject key, without deriving them from
 * the key again). */
gchar *st_x509_pubkey_sha256_hex (X509 *cert, GError **error);

/* The StAlg of a public key (EC named P-256/P-384, Ed25519); ST_ALG_NONE
 * for anything else. */
StAlg st_pubkey_get_alg (EVP_PKEY *key);

G_END_DECLS
