/* Matter test material for the integration tests (issue 18): a test PAA
 * and PAI made with the OpenSSL API, and a test Certification Declaration
 * file, so that a Matter line can run on the demo station's issuing key. */
#pragma once

#include <glib.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

G_BEGIN_DECLS

/* A Matter CA certificate for @key, VID FFF1 as a UTF8String in its own
 * RDN: a PAA (self-signed when @issuer is NULL, pathlen 1) or, with
 * @pai, a PAI (pathlen 0) issued by @issuer with @issuer_key. */
X509 *st_test_matter_ca (const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
                         gboolean pai);

/* Writes a test Certification Declaration (CMS SignedData over the CD's
 * TLV, VID FFF1, PID @product_id, signed by a fresh key) to DIR/@name and
 * returns its path. */
gchar *st_test_matter_write_cd (const char *dir, const char *name, guint16 product_id);

/* @text with every "@CD@" replaced by @cd_path. */
gchar *st_test_matter_profile (const char *text, const char *cd_path);

G_END_DECLS
