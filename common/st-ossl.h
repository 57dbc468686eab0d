/* Cleanup functions for OpenSSL types, so that g_autoptr() owns them.
 * The one header for this (docs/architecture.md, Conventions). */
#pragma once

#include <glib.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* The station-signing purpose: an extended key usage of the station's own
 * (an OID under 2.25, the UUID arc of ITU-T X.667, needing no
 * registration). Only the station signing certificate carries it; device
 * profiles refuse it (st-profile.c), so a device certificate that chains to
 * the same root can never pass for the station's signer. Checkpoints and
 * manifests are accepted only from a certificate that carries it AND whose
 * key is the one pinned in station.conf ([certificates]
 * signing-key-sha256) or given to the verifier (st_ca_check_station_signer). */
#define ST_OID_STATION_SIGNING "2.25.139898662358177256637798941297150809261"

G_DEFINE_AUTOPTR_CLEANUP_FUNC (X509, X509_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (X509_REQ, X509_REQ_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (X509_NAME, X509_NAME_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (X509_EXTENSION, X509_EXTENSION_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (X509_STORE, X509_STORE_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (X509_STORE_CTX, X509_STORE_CTX_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (X509_CRL, X509_CRL_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EVP_PKEY, EVP_PKEY_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EVP_PKEY_CTX, EVP_PKEY_CTX_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EVP_MD_CTX, EVP_MD_CTX_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BIO, BIO_free_all)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BIGNUM, BN_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ASN1_INTEGER, ASN1_INTEGER_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ASN1_OCTET_STRING, ASN1_OCTET_STRING_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ASN1_TIME, ASN1_TIME_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GENERAL_NAMES, GENERAL_NAMES_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CMS_ContentInfo, CMS_ContentInfo_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PKCS8_PRIV_KEY_INFO, PKCS8_PRIV_KEY_INFO_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (X509_PUBKEY, X509_PUBKEY_free)

/* A stack of X509 owned together with its certificates. */
typedef STACK_OF (X509) StX509Stack;
static inline void
st_x509_stack_free (StX509Stack *sk)
{
  sk_X509_pop_free (sk, X509_free);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StX509Stack, st_x509_stack_free)

/* Fills @spki (algorithm and key bits) from @key without OpenSSL 3.0's
 * encoder machinery, which X509_PUBKEY_set() and i2d_PUBKEY() go through
 * and which costs more than an ECDSA signature: for EC keys on a named
 * curve (the point always uncompressed, even for a key decoded from a
 * compressed one) and Ed25519. The DER that i2d_X509_PUBKEY() then gives is
 * the one i2d_PUBKEY() gives for the key in uncompressed form. FALSE, with
 * @spki untouched, for other keys: the caller uses X509_PUBKEY_set(). */
gboolean st_spki_set_param (X509_PUBKEY *spki, EVP_PKEY *key);
/* DER SubjectPublicKeyInfo of @key (st_spki_set_param(), else
 * i2d_PUBKEY()); NULL when OpenSSL cannot encode it. */
GBytes *st_spki_der (EVP_PKEY *key);
/* SHA-256 and SHA-384 fetched once for the process's life: handing
 * EVP_sha256() to a digest or signature call makes OpenSSL 3.0 fetch the
 * implementation again each time. */
const EVP_MD *st_md_sha256 (void);
const EVP_MD *st_md_sha384 (void);
/* A new key holding only the public half of @key, made the same way
 * (st_spki_set_param(), then st_spki_parts_to_key()); NULL when it cannot
 * be. */
EVP_PKEY *st_pkey_public_only (EVP_PKEY *key);
/* The public key of @cert, a new reference. A certificate built with
 * st_spki_set_param() has no decoded key cached: the key is then made from
 * the SPKI's curve and point (or Ed25519 bytes) with EVP_PKEY_fromdata,
 * which checks the point, instead of through the decoders. NULL when the
 * key cannot be read. */
EVP_PKEY *st_x509_get_pubkey (X509 *cert);
/* The public key a SubjectPublicKeyInfo holds, from its parts (the key's
 * algorithm identifier and its bit string) without the decoders: EC on a
 * named curve (EVP_PKEY_fromdata checks the point is on it) and Ed25519.
 * NULL for other keys, explicit curve parameters and bad points. */
EVP_PKEY *st_spki_parts_to_key (const X509_ALGOR *alg, const unsigned char *pub, int pub_len);
/* An EC public key on the named curve @group ("prime256v1", "secp384r1")
 * from its encoded point; OpenSSL checks the point is on the curve. NULL,
 * with the OpenSSL error queue set, when it is not. */
EVP_PKEY *st_ec_public_key_new (const char *group, const guint8 *point, gsize len);
/* A new EC key pair on the named curve @group ("P-256", "P-384", ...), made
 * from domain parameters kept for the process's life: building the group
 * from its name costs OpenSSL 3.0 as much again as the key. NULL, with the
 * OpenSSL error queue set, on failure. Thread-safe. */
EVP_PKEY *st_ec_keygen (const char *group);
/* @name as RFC 2253 text ("CN=...,O=..."), for messages and reports. */
gchar *st_x509_name_text (const X509_NAME *name);
/* @t as ISO 8601 UTC text, or "(invalid time)". */
gchar *st_asn1_time_text (const ASN1_TIME *t);
/* The certificate whose DER is the whole of @der; NULL when @der is not
 * one certificate or has bytes after it. */
X509 *st_x509_from_der (GBytes *der);
/* The same, @len bytes at @der, parsed for its fields only: the public key
 * is left undecoded, because OpenSSL 3.0's decoders cost ten times the rest
 * of the parse (64 against 6 microseconds a certificate). X509_get0_pubkey()
 * gives NULL; st_x509_get_pubkey() reads the key from its parts;
 * X509_verify() with the issuer's key works; X509_verify_cert() does not
 * (its strict checks need the subject's decoded key). For reading
 * thousands of recorded certificates. */
X509 *st_x509_from_der_fields (const guint8 *der, gsize len);
/* The PEM text of one DER object (@label: "CERTIFICATE", ...), as OpenSSL
 * writes it (64 base64 characters a line), without parsing @der. */
gchar *st_der_to_pem (const char *label, const guint8 *der, gsize len);
/* @cert in PEM; NULL when OpenSSL cannot encode it. */
gchar *st_x509_to_pem (X509 *cert);
/* Writes @certs (@n of them, in order) as PEM into @path, durably, 0600
 * (st_file_write_durable). */
gboolean st_x509_write_pem_file (const char *path, X509 *const *certs, guint n, GError **error);
