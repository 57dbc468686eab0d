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
 * @report and records the result (event "qa-verify-unit"). A unit of a
 * Matter batch gets the Matter checks too (docs/matter.md, "Delivery,
 * read-back and QA"): the DAC chain to the PAA with the Matter rules
 * (matter-dac), slot 3 the profile's Certification Declaration
 * (matter-cd), slot 4 parsed and compared with the unit's record
 * (matter-data), its verifier that of the recorded passcode
 * (matter-verifier) and, when @matter_code is given (a scanned QR text
 * "MT:..." or a manual pairing code; NULL or "": none), that code the
 * unit's (matter-code). FALSE with VERIFY_FAILED when any check failed,
 * another code when the device could not be reached at all. */
gboolean st_qa_verify_unit (StDb *db, X509 *root, const char *port,
                            const StLinkParams *params, const char *matter_code,
                            const char *operator_name, GString *report, GError **error);

/* The longest onboarding code QA takes (a QR text is 22 characters, a
 * manual code 21 digits with separators at most 25). */
#define ST_QA_MATTER_CODE_MAX 64

G_END_DECLS

G_BEGIN_DECLS

/* QA's scan at the desk (issue 17): the unit that @code names (its product
 * serial, its device uid or its certificate serial, as
 * st_db_unit_find_by_name matches them) and the checks of what is on
 * record, without the device: the unit is done, its certificate is active
 * (not revoked, voided, unconfirmed or disputed), its certificate chains
 * to @root (the issuing CAs in @chain, may be NULL), its serial and key
 * are the ones recorded, and its subject and subjectAltName are what the
 * batch's profile builds for the unit's uid. When @code names several
 * units (a uid provisioned again after a void), the one whose certificate
 * is live or revoked is taken, the newest; the others are listed. Appends
 * one line per check to @report; *@work_order is the unit's batch's work
 * order. Returns the unit, with *@verified TRUE when every check passed;
 * NULL with NOT_FOUND (naming @code escaped) when no unit has it. Reads
 * only: nothing is recorded. */
StDbUnit *st_qa_lookup_unit (StDb *db, X509 *root, STACK_OF (X509) *chain, const char *code,
                             gchar **work_order, gboolean *verified, GString *report, GError **error);

G_END_DECLS
