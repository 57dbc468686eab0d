/* Station set-up: the demo station (a SoftHSM2 token of its own in HOME,
 * a demo root, the issuing CA and the station signing certificate, all
 * keys made and used inside the token) and `setup show`. */
#pragma once

#include <glib.h>

#include "st-ca.h"
#include "st-config.h"

G_BEGIN_DECLS

#define ST_SETUP_DEMO_TOKEN "station-demo"
#define ST_SETUP_ROOT_LABEL "demo-root-ca"
#define ST_SETUP_CA_LABEL "issuing-ca"
#define ST_SETUP_SIGNING_LABEL "station-signing"

/* A Matter demo (st_setup_demo_matter, docs/matter.md): the test vendor
 * FFF1 in the PAA and the PAI (which names no product), a test
 * Certification Declaration for PID 8000 (an On/Off Light, 0x0100) signed
 * by a CD-signing key of the token. */
#define ST_SETUP_CD_LABEL "demo-cd-signing"
#define ST_SETUP_MATTER_VID 0xFFF1
#define ST_SETUP_MATTER_VID_TEXT "FFF1"
#define ST_SETUP_MATTER_PID 0x8000
#define ST_SETUP_MATTER_DEVICE_TYPE 0x0100
#define ST_SETUP_MATTER_CERT_ID "ZIG20142ZB330003-24"
#define ST_SETUP_MATTER_CD_FILE "matter/cd-FFF1-8000.der"
#define ST_SETUP_MATTER_CD_SIGNER_FILE "matter/cd-signing.pem"

/* Makes a demo station in @home (created 0700) with its own
 * HOME/softhsm2.conf and token directory; nothing global changes except
 * SOFTHSM2_CONF in this process's environment. The user PIN is @pin; the
 * SO PIN is random, printed once on standard output and never stored.
 *
 * Idempotent: a HOME that holds a complete demo is checked (opened with
 * @pin, keys and certificates present, chain verified) and left as it is.
 * A HOME that holds a non-demo station.conf or unrelated files is refused
 * (PERMISSION_DENIED). A half-made demo (a set-up that stopped before
 * writing station.conf) is removed and made again.
 *
 * No StHsm of the same module may be open in the process meanwhile (the
 * module must read the new SOFTHSM2_CONF). */
gboolean st_setup_demo (const char *home, const char *pin, GError **error);

/* The same, a Matter demo: the root is "Station Demo Matter PAA" (VID
 * FFF1, no PID), the issuing CA "Station Demo Matter PAI" (VID FFF1, no
 * PID), both passing the Matter rules; station.conf records [matter]
 * vendor-id=FFF1; HOME/matter/ holds the test Certification Declaration
 * (ST_SETUP_MATTER_CD_FILE) and its signer's certificate. A home holding
 * a plain demo is refused, as st_setup_demo() refuses a Matter demo. */
gboolean st_setup_demo_matter (const char *home, const char *pin, GError **error);

/* What the station is set up with (`station ca show`, `setup show`): the
 * state of its key ceremony (awaiting 'ca import', complete, or the
 * demo's); module, token, key URIs (with their
 * sensitive/extractable flags when @pin is given and the login works),
 * the chain's subjects, issuers, validity and days left, the station
 * signing certificate and the database path. Without @pin, what the
 * files tell. Appends to @out even when it fails. */
gboolean st_setup_show (StConfig *config, StCa *ca, GString *out, GError **error);

/* The same as values (D-Bus SetupInfo, `setup show --json`; the members in
 * org.station.Station1.xml): an a{sv} floating reference. A certificate
 * that cannot be read has its "error" instead of its fields; nothing fails. */
GVariant *st_setup_info (StConfig *config, StCa *ca);

G_END_DECLS
