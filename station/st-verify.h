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

G_END_DECLS
