/* The key ceremony of a real station (docs/ceremony.md): `station ca init`
 * makes the issuing CA key and the station signing key inside the HSM and
 * a PKCS#10 request for each, signed in the token; the company's root signs
 * them offline; `station ca import` checks what comes back against the
 * keys in the token and completes station.conf.
 *
 * Both run in the service, which alone holds the HSM. The engine
 * (st-engine.c) checks the roles, writes the audit entries and reloads the
 * configuration; nothing here touches the database. */
#pragma once

#include <glib.h>

#include <openssl/x509.h>

#include "st-config.h"
#include "st-types.h"

G_BEGIN_DECLS

#define ST_CEREMONY_CA_LABEL "issuing-ca"
#define ST_CEREMONY_SIGNING_LABEL "station-signing"
#define ST_CEREMONY_CA_CSR "issuing-ca.csr.pem"
#define ST_CEREMONY_SIGNING_CSR "station-signing.csr.pem"
/* A certificate that expires sooner than this is accepted with a warning. */
#define ST_CEREMONY_WARN_DAYS 30
/* The largest chain or certificate text accepted by import. */
#define ST_CEREMONY_PEM_MAX (256 * 1024)

typedef struct {
  const char *module;      /* the PKCS#11 module */
  const char *token;       /* the token's label */
  const char *station_id;  /* 1..64 printable characters */
  const char *subject;     /* "O=...,C=..." without CN (NULL or "": O=Station) */
  StAlg alg;               /* ST_ALG_EC_P256 or ST_ALG_EC_P384 */
  const char *pin;         /* the token's user PIN */
  const char *admin;       /* who runs it: recorded in the ca-init entry */
  /* A Matter station (docs/matter.md, "The PAA and the PAI"): the Vendor
   * ID its PAI carries and, optionally, the one Product ID it issues for;
   * 4 upper-case hex digits each, NULL or "" for a station that is not a
   * Matter one. The issuing CA's request carries them in its subject, the
   * curve must be p256, station.conf records them in [matter] and
   * st_ceremony_import() holds the root to the PAA rules and the issuing
   * CA to the PAI rules. */
  const char *matter_vid;
  const char *matter_pid;
} StCeremonyInit;

typedef struct {
  gchar *ca_key_uri, *signing_key_uri;     /* type=private */
  gchar *ca_csr_pem, *signing_csr_pem;
  gchar *ca_csr_sha256, *signing_csr_sha256; /* of the DER */
  gchar *token_description;
  gchar *audit_payload;                    /* JSON for the ca-init entry (without the admin) */
} StCeremonyKeys;

void st_ceremony_keys_clear (StCeremonyKeys *keys);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (StCeremonyKeys, st_ceremony_keys_clear)

/* Checks @req (NOT_SUPPORTED, INVALID_DATA naming the option) without
 * touching the token. */
gboolean st_ceremony_check_request (const StCeremonyInit *req, GError **error);

/* Parses a Matter VID or PID as station.conf and the ceremony take it:
 * exactly 4 upper-case hex digits, not 0000 (INVALID_DATA naming @option). */
gboolean st_ceremony_matter_id_parse (const char *text, const char *option, guint16 *out,
                                      GError **error);

/* Holds @paa (the root) and @pai (the issuing CA) to the Matter rules
 * (st_matter_paa_check, st_matter_pai_check) and the PAI's VID and PID to
 * @vid and @pid (@pid NULL: the PAI must name no product) as station.conf's
 * [matter] records them; a chain of a Matter station is exactly PAI, PAA
 * (@chain_len 2). VERIFY_FAILED names the certificate and the rule. */
gboolean st_ceremony_matter_check (X509 *paa, X509 *pai, int chain_len, const char *vid,
                                   const char *pid, GError **error);

/* Makes the two key pairs in the token (labels issuing-ca and
 * station-signing, suffixed -2, -3... when taken; fresh random CKA_IDs;
 * never an existing object), checks that each private key is sensitive and
 * not extractable, and signs the two requests in the token. Returns the
 * configuration for @home in the state "awaiting import" (not saved) and
 * fills @keys. Writes nothing into @home. */
StConfig *st_ceremony_init (const char *home, const StCeremonyInit *req, StCeremonyKeys *keys,
                            GError **error);

/* Checks @chain_pem (the issuing CA certificate first, then up to and
 * including the self-signed root) and @signing_pem (the station signing
 * certificate) against the keys of @config (awaiting import) in the token,
 * logged in with @pin: the keys, the CA's and the signer's extensions, the
 * chain, the validity dates. Then writes the certificates into HOME (0600)
 * and station.conf with its [certificates], and returns the new
 * configuration. Any failed check changes nothing on disk
 * (VERIFY_FAILED / INVALID_DATA saying what to fix). @report gets the
 * warnings (a certificate that expires within ST_CEREMONY_WARN_DAYS) and
 * @audit_payload the JSON of the ca-import entry. */
StConfig *st_ceremony_import (StConfig *config, const char *pin, const char *chain_pem,
                              const char *signing_pem, GString *report, gchar **audit_payload,
                              GError **error);

G_END_DECLS
