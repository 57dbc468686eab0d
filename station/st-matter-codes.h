/* Matter onboarding codes (docs/matter.md, "Onboarding codes and the
 * verifier"): the setup passcode and the discriminator a unit gets, the
 * onboarding payload packed and base38-encoded into the QR text "MT:...",
 * and the manual pairing code with its Verhoeff check digit; and the
 * parsers of both, which take a scanned or typed text as hostile input. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define ST_MATTER_PASSCODE_MIN 1u
#define ST_MATTER_PASSCODE_MAX 99999998u
#define ST_MATTER_DISCRIMINATOR_MAX 0xFFFu

/* The QR text: "MT:" and 19 base38 characters (11 bytes); the size with its NUL. */
#define ST_MATTER_QR_PREFIX "MT:"
#define ST_MATTER_QR_LEN 23
/* The manual code: 11 digits, or 21 with VID and PID (flow not standard). */
#define ST_MATTER_MANUAL_SHORT_LEN 11
#define ST_MATTER_MANUAL_LONG_LEN 21
/* The longest text the parsers look at; a longer one is refused unread. */
#define ST_MATTER_TEXT_MAX 64

/* The commissioning flow of the payload (2 bits; 3 is reserved). */
typedef enum {
  ST_MATTER_FLOW_STANDARD = 0,
  ST_MATTER_FLOW_USER_INTENT = 1,
  ST_MATTER_FLOW_CUSTOM = 2,
} StMatterFlow;

/* Discovery capabilities (a bit mask of 8 bits). */
#define ST_MATTER_DISCOVERY_SOFT_AP    0x01u
#define ST_MATTER_DISCOVERY_BLE        0x02u
#define ST_MATTER_DISCOVERY_ON_NETWORK 0x04u

/* What the QR code carries. */
typedef struct {
  guint8 version;          /* 3 bits, 0 */
  guint16 vendor_id;
  guint16 product_id;
  guint8 flow;             /* StMatterFlow */
  guint8 discovery;        /* ST_MATTER_DISCOVERY_* */
  guint16 discriminator;   /* 12 bits */
  guint32 passcode;        /* 27 bits, st_matter_passcode_valid() */
} StMatterPayload;

/* What the manual pairing code carries: only the upper 4 bits of the
 * discriminator, and VID and PID when has_vid_pid. */
typedef struct {
  guint8 short_discriminator;
  guint32 passcode;
  gboolean has_vid_pid;
  guint16 vendor_id;
  guint16 product_id;
} StMatterManualCode;

/* 1..99999998 and none of 00000000, 11111111, ..., 99999999, 12345678,
 * 87654321. */
gboolean st_matter_passcode_valid (guint32 passcode);
/* A valid passcode drawn uniformly from the CSPRNG (rejection sampling). */
gboolean st_matter_passcode_generate (guint32 *passcode, GError **error);

/* A discriminator drawn uniformly from 0..4095 (CSPRNG). */
gboolean st_matter_discriminator_random (guint16 *discriminator, GError **error);
/* The @counter-th discriminator of the range [@lo, @hi] (inclusive, at
 * most 4095), wrapping round: lo + counter mod (hi - lo + 1). The caller
 * stores the counter and passes counter + 1 for the next unit. */
gboolean st_matter_discriminator_sequential (guint lo, guint hi, guint64 counter,
                                             guint16 *discriminator, GError **error);

/* Whether @p can be encoded: version 0, flow 0..2, discriminator of 12
 * bits, a valid passcode. */
gboolean st_matter_payload_check (const StMatterPayload *p, GError **error);

/* Base38 (the Matter alphabet 0-9 A-Z - .): 3 bytes -> 5 characters, a
 * last 2 -> 4, a last 1 -> 2, little-endian. Returns the number of
 * characters written (and a NUL after them), or 0 when @out_size is too
 * small. */
gsize st_matter_base38_encode (const guint8 *in, gsize len, char *out, gsize out_size);
/* The inverse; refuses a character outside the alphabet, a length whose
 * last chunk is 1 or 3 characters, a chunk worth more than its bytes, and
 * output longer than @out_size. */
gboolean st_matter_base38_decode (const char *in, gsize len, guint8 *out, gsize out_size,
                                  gsize *out_len, GError **error);

/* "MT:" + base38 of the packed payload (ST_MATTER_QR_LEN - 1 characters). */
gchar *st_matter_qr_encode (const StMatterPayload *p, GError **error);
/* A QR text back into its fields: exactly "MT:" and 19 characters of the
 * alphabet, version 0, padding 0, flow not reserved, a valid passcode.
 * Optional TLV data and several payloads joined by '*' are refused. */
gboolean st_matter_qr_parse (const char *text, gsize len, StMatterPayload *p, GError **error);

/* The Verhoeff check digit ('0'..'9') of @len decimal digits; 0 when a
 * character is not a digit. */
char st_matter_verhoeff_digit (const char *digits, gsize len);
/* Whether the last of @len digits is the check digit of those before it. */
gboolean st_matter_verhoeff_valid (const char *digits, gsize len);

/* The manual pairing code of @p: 11 digits for the standard flow, 21
 * (with VID and PID) otherwise. */
gchar *st_matter_manual_encode (const StMatterPayload *p, GError **error);
/* A typed or scanned manual code back into its fields: 11 or 21 digits
 * ('-' and ' ' between them are skipped), the check digit right, the
 * chunks in range, a valid passcode. */
gboolean st_matter_manual_parse (const char *text, gsize len, StMatterManualCode *code,
                                 GError **error);
/* Whether a manual code is the one of @p (what the code carries). */
gboolean st_matter_manual_matches (const StMatterManualCode *code, const StMatterPayload *p);

G_END_DECLS
