/* The Matter device attestation rules (docs/matter.md, Device Attestation
 * Certificates): what a Product Attestation Authority (PAA, the root), a
 * Product Attestation Intermediate (PAI, the issuing CA) and a Device
 * Attestation Certificate (DAC) must look like, after the Matter Core
 * Specification, section 6.2.2 (the DAC, PAI and PAA certificate profiles
 * and the encoding of the Vendor ID and Product ID in a subject).
 *
 * Every certificate is hostile input: each length is checked before it is
 * read, and a check fails with VERIFY_FAILED naming the certificate, the
 * rule broken and where the specification states it. The messages stay
 * English: they become a unit's stored detail (the post-signing lint) or
 * the audit log's reason (set-up and import), as docs/translations.md says
 * for st-issue.c. tests/matter/check-dac.py checks the same rules, written
 * independently from the specification's text. */
#pragma once

#include <glib.h>
#include <openssl/x509.h>

G_BEGIN_DECLS

/* The Matter subject attributes (Core spec 6.1.1, Matter-specific RDNs). */
#define ST_MATTER_OID_VID "1.3.6.1.4.1.37244.2.1"
#define ST_MATTER_OID_PID "1.3.6.1.4.1.37244.2.2"

/* The Vendor ID and Product ID a subject carries. */
typedef struct {
  gboolean has_vid;
  gboolean has_pid;
  guint16 vid;
  guint16 pid;
} StMatterIds;

/* Reads the VID and PID attributes of @name. Each that is present must be
 * a UTF8String of exactly 4 upper-case hex digits, alone in its RDN, and at
 * most once in the name. @what names the certificate in the message ("the
 * DAC"). Absence is no error: the callers decide what must be there. */
gboolean st_matter_name_ids (const X509_NAME *name, const char *what, StMatterIds *ids,
                             GError **error);

/* Appends the VID and then the PID to @name, each in an RDN of its own, a
 * UTF8String of 4 upper-case hex digits: how a DAC's subject carries them.
 * FALSE (INTERNAL) only when OpenSSL fails. */
gboolean st_matter_name_add_ids (X509_NAME *name, guint16 vid, guint16 pid, GError **error);

/* A PAA: self-signed (issuer = subject, the signature verifies with its own
 * key), a P-256 key and ecdsa-with-SHA256, basicConstraints critical
 * CA:TRUE, keyUsage critical with
 * keyCertSign and cRLSign, no PID in its subject; a VID optional (and
 * well-formed when present). */
gboolean st_matter_paa_check (X509 *paa, GError **error);

/* A PAI: basicConstraints critical CA:TRUE with pathLenConstraint 0,
 * keyUsage critical with keyCertSign and cRLSign, a subjectKeyIdentifier
 * of 20 bytes, a VID in its subject (PID optional), a P-256 key and
 * ecdsa-with-SHA256. @ids_out (may be NULL) gets its VID and PID. */
gboolean st_matter_pai_check (X509 *pai, StMatterIds *ids_out, GError **error);

/* The DAC lint against its PAI (which must itself pass
 * st_matter_pai_check()): a P-256 key and ecdsa-with-SHA256; issued by the
 * PAI (issuer = the PAI's subject, AKI = the PAI's SKI); basicConstraints
 * critical CA:FALSE; keyUsage critical, exactly digitalSignature; SKI and
 * AKI of 20 bytes; the VID equal to the PAI's; a PID, equal to the PAI's
 * when the PAI has one; the validity inside the PAI's, or notAfter
 * 99991231235959Z (no expiry). The signature is not verified here
 * (st_issue_check() does, and a chain check does). */
gboolean st_matter_dac_check (X509 *dac, X509 *pai, GError **error);

G_END_DECLS
