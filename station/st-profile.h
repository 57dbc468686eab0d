/* Product profiles: what the station issues for one product, read from a
 * GKeyFile (docs/profiles.md) and validated strictly. Every error names the
 * file, the [group] key, the value and what is allowed; unknown groups and
 * keys are errors too, so that typos never pass silently.
 *
 * The pipeline stores a batch's profile text in the database and loads it
 * again with st_profile_load_from_data(), which validates identically. */
#pragma once

#include <glib.h>
#include <openssl/x509v3.h>

#include "st-backend.h"
#include "st-types.h"

G_BEGIN_DECLS

/* Hard maximum size of a profile file. */
#define ST_PROFILE_MAX_SIZE (64 * 1024)
/* Longest product serial that st_profile_format_serial() can produce. */
#define ST_PROFILE_SERIAL_MAX 64

typedef enum {
  ST_KEY_MODE_DEVICE_CSR,   /* KEYGEN on the device, the station checks its CSR */
  ST_KEY_MODE_STATION_KEY,  /* the station makes the key and sends it with PUT_KEY */
} StKeyMode;

/* [matter], optional (issue 18, docs/profiles.md and docs/matter.md). */
typedef enum {
  ST_MATTER_DISCRIMINATOR_RANDOM,      /* from the CSPRNG within the range */
  ST_MATTER_DISCRIMINATOR_SEQUENTIAL,  /* the range's values in turn */
} StMatterDiscriminatorPolicy;

typedef enum {
  ST_MATTER_PASSCODE_RANDOM,           /* from the CSPRNG, never an invalid value */
} StMatterPasscodePolicy;

typedef struct {
  gboolean enabled;                    /* the group is present */
  guint16 vendor_id;                   /* the DAC's and the PAI's VID */
  guint16 product_id;                  /* the DAC's PID, never 0 */
  StMatterDiscriminatorPolicy discriminator;
  guint16 discriminator_first;         /* 0 to 4095, first <= last */
  guint16 discriminator_last;
  StMatterPasscodePolicy passcode;
  guint32 pbkdf2_iterations;           /* 1000 to 100000 */
  guint salt_length;                   /* 16 to 32 bytes */
  gchar *certification_declaration;    /* the file, as given */
  /* per-unit factory data (docs/matter.md, "Factory data per unit") */
  guint rotating_id_length;            /* 0: none, else 16 to 32 bytes */
  guint8 commissioning_flow;           /* StMatterFlow: 0 standard, 1 user intent, 2 custom */
  guint8 discovery;                    /* ST_MATTER_DISCOVERY_* bits, never 0 */
} StProfileMatter;

typedef struct {
  gchar *path;              /* as given, or the name for messages */
  gchar *name;              /* [A-Za-z0-9._-]{1,64} */
  gchar *description;       /* "" when not given */
  gchar *model;             /* NULL: any model */
  gchar *sha256;            /* lower-case hex of the file bytes */
  gchar *text;              /* the file bytes, NUL-terminated */
  StKeyMode key_mode;
  StAlg alg;
  gchar *subject_template;  /* RFC 4514 order: "CN={uid},O=Example" */
  gchar **san_templates;    /* "URI:...", "DNS:...", "email:..."; never NULL, may be empty */
  gint validity_days;       /* 0 when no_expiry */
  gboolean no_expiry;       /* notAfter 99991231235959Z */
  guint backdate_minutes;
  guint key_usage;          /* X509v3 KU_* bits (KU_DIGITAL_SIGNATURE, ...) */
  gchar **eku;              /* canonical dotted OIDs; never NULL, may be empty */
  gboolean lock;
  StLinkParams link;
  gchar *serial_format;
  /* [firmware], optional (passive backends): an image written before the
   * credentials. firmware_image is NULL when the group is absent. */
  gchar *firmware_image;
  guint32 firmware_address;
  guint8 firmware_sha256[32];
  /* [matter]: matter.enabled is FALSE when the group is absent. */
  StProfileMatter matter;
} StProfile;

/* Hard maximum size of a firmware image. */
#define ST_PROFILE_FIRMWARE_MAX (16 * 1024 * 1024)
/* Reads the [firmware] image and checks its SHA-256 against the profile:
 * VERIFY_FAILED (nothing may be written) when it differs. */
GBytes *st_profile_load_firmware (const StProfile *profile, GError **error);

/* Hard maximum size of a Certification Declaration file. */
#define ST_PROFILE_CD_MAX 4096
/* Reads the [matter] certification-declaration: 1 to ST_PROFILE_CD_MAX
 * bytes, exactly one DER CMS SignedData (nothing after it). NOT_FOUND or
 * READ when it cannot be read, INVALID_DATA when it is no CMS SignedData. */
GBytes *st_profile_load_certification_declaration (const StProfile *profile, GError **error);

StProfile *st_profile_load (const char *path, GError **error);
StProfile *st_profile_load_from_data (const char *data, gsize len,
                                      const char *name_for_messages,
                                      GError **error);
void st_profile_free (StProfile *profile);
/* Whether a batch's recorded profile @text (one that loaded when the batch
 * was made; NULL: none) is a Matter one: it has a [matter] group, which is
 * what sets matter.enabled. A key file read, not a whole load. */
gboolean st_profile_text_is_matter (const char *text);

/* The product serial for sequence number @seq on the station's UTC date of
 * @now (the profile's [serial] format, validated at load time). */
gchar *st_profile_format_serial (const StProfile *profile, guint64 seq,
                                 GDateTime *now);

/* A subject or SAN template after placeholder substitution. */
typedef struct {
  const char *uid_hex;        /* lower-case hex of the device uid */
  const char *model;          /* the model string from HELLO */
  const char *product_serial; /* from st_profile_format_serial() */
} StSubjectInfo;

/* Expands @template_ ({uid}, {UID}, {serial}, {model}); NULL and an
 * INVALID_DATA error when a placeholder has no value. Exposed for st-issue. */
gchar *st_profile_expand (const char *template_, const StSubjectInfo *info,
                          GError **error);

/* The certificate subject from a subject template (RFC 4514 order in the
 * text, DER order in the result) and @info. Values are checked against the
 * attribute's rules (length, character set). */
X509_NAME *st_profile_build_subject (const char *subject_template,
                                     const StSubjectInfo *info, GError **error);
/* The subjectAltName names from SAN templates and @info; an empty
 * GENERAL_NAMES when @san_templates is empty. */
GENERAL_NAMES *st_profile_build_san (const char *const *san_templates,
                                     const StSubjectInfo *info, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (StProfile, st_profile_free)

G_END_DECLS
