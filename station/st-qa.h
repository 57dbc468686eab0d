/* QA re-verification of a flashed unit (docs/agent-protocol.md, The station's
 * sequence): HELLO, READ slots 1 and 2, the chain up to the trusted root, a
 * proof of possession with a fresh challenge, and the comparison of uid,
 * serial and certificate bytes with the station's record. */
#pragma once

#include "st-backend.h"
#include "st-db.h"

#include <openssl/x509.h>

G_BEGIN_DECLS

/* Verifies the unit in the socket @port. Appends one line per check to
 * @report and records the result (event "qa-verify-unit"). FALSE with
 * VERIFY_FAILED when any check failed, another code when the device could
 * not be reached at all. */
gboolean st_qa_verify_unit (StDb *db, X509 *root, const char *port,
                            const StLinkParams *params, const char *operator_name,
                            GString *report, GError **error);

G_END_DECLS
