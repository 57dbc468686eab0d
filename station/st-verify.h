/* Certificate chains: verification up to a trusted root, and the DER form of
 * the device's slot 2 (DER certificates concatenated, the issuing CA first,
 * the root last). */
#pragma once

#include <glib.h>
#include <openssl/x509.h>

G_BEGIN_DECLS

/* Hard maximum size of a chain file (PEM) and of a DER chain. */
#define ST_CHAIN_MAX_SIZE (256 * 1024)
#define ST_CHAIN_MAX_CERTS 8

/* Verifies @leaf up to @root, the only trust anchor, with the issuing CA(s)
 * in @untrusted (may be NULL), X509_V_FLAG_X509_STRICT, no partial chains,
 * at the current time. VERIFY_FAILED with the X509_verify_cert error string
 * and the depth. */
gboolean st_verify_chain (X509 *leaf, STACK_OF (X509) *untrusted, X509 *root,
                          GError **error);

/* The chain of many leaves, checked once (station-manifest/2 verify;
 * docs/manifest-format.md lists what is checked where): the issuing CA,
 * @chain's first certificate, up to @root as st_verify_chain() verifies it,
 * and what X509_verify_cert checks of it only with a leaf below: it is a
 * CA (strict: basicConstraints CA:TRUE) and every path length constraint
 * above it allows one more CA. VERIFY_FAILED, saying which. */
gboolean st_verify_issuer_chain (STACK_OF (X509) *chain, X509 *root, GError **error);

/* One leaf under @issuer (the first certificate of @chain, which
 * st_verify_issuer_chain() accepted): the checks the strict
 * X509_verify_cert() makes of the certificate at depth 0 (extensions that
 * parse, no unhandled critical one, no proxy, RFC 5280 strict rules, a
 * public key that decodes on a named curve, X509_check_issued by @issuer,
 * its signature under @issuer's key, its validity now, the name
 * constraints of @chain). @leaf may come from st_x509_from_der_fields().
 * VERIFY_FAILED with the X509_V_ERR code and text of the first check that
 * fails. Thread-safe for distinct leaves. */
gboolean st_verify_leaf (X509 *leaf, X509 *issuer, STACK_OF (X509) *chain, GError **error);

/* DER certificates concatenated in the order of @chain. */
GBytes *st_chain_der_concat (STACK_OF (X509) *chain);

/* Splits concatenated DER certificates: the whole buffer is consumed, each
 * certificate re-encodes to its bytes, 1 to @max_certs certificates. */
STACK_OF (X509) *st_chain_der_split (GBytes *der, guint max_certs, GError **error);

/* Reads every certificate of a PEM file (at most ST_CHAIN_MAX_CERTS, at
 * least one), in file order. */
STACK_OF (X509) *st_chain_load_pem (const char *path, GError **error);
/* The same from @len bytes of PEM (@path names them in messages). */
STACK_OF (X509) *st_chain_load_pem_data (const void *data, gsize len, const char *path,
                                         GError **error);

/* The trusted root a verifier names (`manifest verify --root FILE`, done by
 * the CLI in its own process or by the service; the GUI QA view's root; the root a ManifestVerify
 * or AuditVerify call carries): @len bytes of PEM (@what names them in
 * messages) holding exactly one certificate, and that one a root: a CA
 * (basicConstraints CA:TRUE, or a self-signed v1 certificate) that signed
 * itself. Other PEM blocks (a key) are skipped, as OpenSSL's reader does.
 * INVALID_DATA, saying what the file holds and what to give instead. The
 * one place that loads and checks a verifier's root. */
X509 *st_verify_root_from_pem (const void *pem, gsize len, const char *what, GError **error);

G_END_DECLS
