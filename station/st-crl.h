/* The certificate revocation list (docs/revocation.md): a CRLv2 signed in
 * the HSM by the issuing CA key, listing every certificate of that CA
 * that was voided after it was signed (cessationOfOperation) and every
 * revoked one (the reason the lead gave), numbered from the database. */
#pragma once

#include <glib.h>
#include <openssl/x509.h>

#include "st-ca.h"
#include "st-db.h"
#include "st-manifest-check.h"

G_BEGIN_DECLS

#define ST_CRL_DAYS_DEFAULT 7
#define ST_CRL_DAYS_MAX 365
#define ST_CRL_PEM_MAX (16 * 1024 * 1024)

/* The RFC 5280 CRLReason code of a reason name a lead may give to
 * `unit revoke` (those that make sense for a device: unspecified,
 * keyCompromise, affiliationChanged, superseded, cessationOfOperation,
 * privilegeWithdrawn); -1 for any other. */
int st_crl_reason_code (const char *name);
/* The names st_crl_reason_code() accepts, comma-separated, for messages. */
const char *st_crl_reason_list (void);
/* The name of CRLReason @code (any RFC 5280 code), or NULL. */
const char *st_crl_reason_name (int code);

/* What one issue produced. */
typedef struct {
  gint64 number;
  guint n_entries;
  gchar *pem;
  gchar *der_sha256;
} StCrlIssued;
void st_crl_issued_free (StCrlIssued *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StCrlIssued, st_crl_issued_free)

/* Takes the next CRL number (st_db_crl_reserve, audited), builds the CRL
 * from the database's voided and revoked certificates of @ca's issuing CA,
 * valid for @days (1..ST_CRL_DAYS_MAX) from now, signs it with the issuing
 * CA key (st_ca_sign_with), verifies the signature with the CA
 * certificate, and records it (st_db_crl_complete, audited). A failure
 * after the number was taken leaves the number used. @by: the operator. */
StCrlIssued *st_crl_issue (StDb *db, StCa *ca, guint days, const char *by, GError **error);

/* The manifest's crl.pem (@path) against the folder's @chain (issuing CA
 * first): one PEM CRL, signed by the issuing CA (its key, and its subject
 * as the issuer), version 2, with a CRL number, thisUpdate not in the
 * future, and every serial of @must_list (lower-case hex, as the manifest
 * records them) on it. Each check is a line of @c. A folder without
 * crl.pem (a manifest exported before CRLs) is reported, not failed. */
void st_crl_check_file (StManifestCheck *c, const char *path, STACK_OF (X509) *chain,
                        GHashTable *must_list);

G_END_DECLS
