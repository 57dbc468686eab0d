/* The programmer backend that station/ sees (docs/architecture.md, Programmer backends).
 *
 * A backend is one socket: one port, one device at a time. Every call blocks
 * the calling worker thread, is bounded in time, honours the backend's
 * GCancellable, and sets a GError in ST_ERROR on failure. An operation that a
 * backend cannot do fails with ST_ERROR_NOT_SUPPORTED.
 *
 * Device status codes are mapped as follows, the status name always kept in
 * the message ("device answered LOCKED to WRITE slot 1"):
 *   BAD_REQUEST -> INVALID_DATA   UNKNOWN_OP, UNSUPPORTED -> NOT_SUPPORTED
 *   BAD_STATE   -> BUSY           LOCKED -> PERMISSION_DENIED
 *   STORAGE     -> WRITE          TOO_LARGE -> INVALID_DATA
 *   INTERNAL    -> INTERNAL       no answer after the retries -> TIMED_OUT
 * st_backend_get_last_status() gives the raw status of the last response. */
#pragma once

#include <gio/gio.h>
#include "st-types.h"

G_BEGIN_DECLS

#define ST_UID_MAX 32

typedef enum {
  ST_DEVICE_STATE_BLANK = 0,
  ST_DEVICE_STATE_KEY_PRESENT = 1,   /* key present, uncommitted */
  ST_DEVICE_STATE_PROVISIONED = 2,   /* committed, unlocked */
  ST_DEVICE_STATE_LOCKED = 3,
  ST_DEVICE_STATE_UNKNOWN = 0xff,    /* the device did not say */
} StDeviceState;

/* Raw agent status codes (docs/agent-protocol.md, Status codes). */
typedef enum {
  ST_AGENT_STATUS_OK = 0x00,
  ST_AGENT_STATUS_BAD_REQUEST = 0x01,
  ST_AGENT_STATUS_UNKNOWN_OP = 0x02,
  ST_AGENT_STATUS_BAD_STATE = 0x03,
  ST_AGENT_STATUS_LOCKED = 0x04,
  ST_AGENT_STATUS_UNSUPPORTED = 0x05,
  ST_AGENT_STATUS_STORAGE = 0x06,
  ST_AGENT_STATUS_TOO_LARGE = 0x07,
  ST_AGENT_STATUS_INTERNAL = 0x08,
  ST_AGENT_STATUS_NONE = 0xff,       /* no response was decoded */
} StAgentStatus;

typedef struct {
  guint8 uid[ST_UID_MAX];
  gsize uid_len;              /* 1..32 */
  gchar model[65];            /* NUL-terminated, UTF-8 checked */
  gchar fw_version[33];       /* "" when not given */
  guint8 algorithms;          /* bit 0 P-256, bit 1 P-384, bit 2 Ed25519; 0 when not given */
  StDeviceState state;
  guint16 max_payload;        /* 256..2048; 256 when not given */
  guint32 extensions;         /* HELLO TLV 0x07, ST_DEVICE_EXT_* bits (unknown ones kept); 0 when not given */
} StDeviceInfo;

/* Bits of StDeviceInfo.extensions (docs/agent-protocol.md, Extensions). */
#define ST_DEVICE_EXT_MATTER_1 (1u << 0)  /* slots 3 and 4: Matter CD and commissioning data */

/* Link parameters, from the product profile. */
typedef struct {
  guint baud;                 /* default 115200 */
  guint timeout_ms;           /* per request, default 1000 */
  guint keygen_timeout_ms;    /* default 30000 */
  guint commit_timeout_ms;    /* default 10000 */
  guint retries;              /* default 3 */
  /* Passive backends (stm32-rom, cmsis-dap): where the credential blob goes. */
  guint32 blob_address;
  guint32 blob_area_size;
  guint32 uid_address;
  guint uid_length;
  /* [link] go-address: after a commit and the closing identify, start the
   * application whose vector table is at @go_address (stm32-rom: GO;
   * cmsis-dap: a system reset through AIRCR). */
  gboolean go;
  guint32 go_address;
} StLinkParams;

void st_link_params_init_defaults (StLinkParams *params);

typedef struct _StBackend StBackend;

/* What a backend can do, as its descriptor declares it (curl's vtls style:
 * the pipeline asks st_backend_has_capability() instead of trying an
 * operation and reading NOT_SUPPORTED). An operation whose capability a
 * backend does not declare fails with ST_ERROR_NOT_SUPPORTED. */
typedef enum {
  ST_BACKEND_CAP_KEYGEN = 1 << 0,     /* KEYGEN: the device makes its key and a CSR */
  ST_BACKEND_CAP_PUT_KEY = 1 << 1,    /* PUT_KEY: the station's key goes to the device */
  ST_BACKEND_CAP_SIGN = 1 << 2,       /* SIGN: proof of possession of the device's key */
  ST_BACKEND_CAP_COMMIT = 1 << 3,     /* COMMIT and ABORT */
  ST_BACKEND_CAP_READ_BACK = 1 << 4,  /* READ of the slots (read-back, QA) */
  ST_BACKEND_CAP_FIRMWARE = 1 << 5,   /* st_backend_flash_image() */
  /* No agent on the device: the station makes the key (station-key
   * profiles only), COMMIT writes a credential blob with the product
   * serial (st_backend_set_product_serial()) and reads it back whole, in
   * place of a proof of possession. */
  ST_BACKEND_CAP_PASSIVE = 1 << 6,
} StBackendCaps;

/* One backend: each exports one const descriptor, and the table in
 * st-backend.c lists them all (the one list of backends). */
typedef struct {
  const char *scheme;         /* "agent" in "agent:/dev/ttyUSB0" */
  const char *usage;          /* "agent:PATH", for the port syntax help */
  const char *description;    /* one line, for the same help */
  const char *example;        /* a port, for error messages */
  gboolean needs_path;        /* TRUE: "scheme:" with nothing after it is refused */
  StBackendCaps capabilities;
  /* Creates the backend (not yet opened); @rest is the port after "scheme:". */
  StBackend *(*new) (const char *port, const char *rest, const StLinkParams *params,
                     GCancellable *cancellable, GError **error);
} StBackendDescriptor;

typedef struct {
  const char *name;           /* "agent", "sim", "stm32-rom", "cmsis-dap" */
  gboolean (*open) (StBackend *self, GError **error);
  /* HELLO (or the passive equivalent); fills @info. */
  gboolean (*identify) (StBackend *self, StDeviceInfo *info, GError **error);
  /* KEYGEN: returns the DER CSR exactly as the device sent it. */
  GBytes *(*keygen) (StBackend *self, StAlg alg, GError **error);
  /* PUT_KEY: @pkcs8 is a secret; the backend wipes its own copies. */
  gboolean (*put_key) (StBackend *self, StAlg alg, GBytes *pkcs8, GError **error);
  gboolean (*write) (StBackend *self, StSlot slot, GBytes *data, GError **error);
  /* READ the whole slot; an empty slot gives an empty GBytes. */
  GBytes *(*read) (StBackend *self, StSlot slot, GError **error);
  /* SIGN a 32-byte challenge; returns the raw signature as the device sent it. */
  GBytes *(*sign) (StBackend *self, const guint8 challenge[32], GError **error);
  gboolean (*commit) (StBackend *self, gboolean lock, GError **error);
  gboolean (*abort) (StBackend *self, GError **error);
  void (*close) (StBackend *self);
  void (*free) (StBackend *self);
  /* Passive backends (stm32-rom, cmsis-dap); NULL elsewhere. */
  /* Writes a firmware image at @address (a flash sector start), reads it
   * back and checks its SHA-256 against @sha256; refuses an image whose
   * hash differs before writing anything. Before PUT_KEY. */
  gboolean (*flash_image) (StBackend *self, guint32 address, GBytes *image,
                           const guint8 sha256[32], GError **error);
  /* The product serial that COMMIT puts into the credential blob. */
  gboolean (*set_product_serial) (StBackend *self, const char *serial, GError **error);
  /* Extension matter-1 on a passive device: the Matter Certification
   * Declaration and commissioning data record that COMMIT puts into a
   * version 2 credential blob (NULL and NULL: none, version 1). */
  gboolean (*set_matter_data) (StBackend *self, GBytes *cd, GBytes *commissioning,
                               GError **error);
} StBackendClass;

struct _StBackend {
  const StBackendClass *klass;
  const StBackendDescriptor *descriptor;
  gchar *port;                /* as given by the user */
  StLinkParams params;
  GCancellable *cancellable;  /* may be NULL */
  StAgentStatus last_status;
  /* Counters for tests and the log: requests sent, retries, bytes each way. */
  guint64 n_requests, n_retries, bytes_tx, bytes_rx;
  guint64 n_keygen;           /* KEYGEN requests sent (retries excluded) */
};

/* Creates the backend for @port (not yet opened): "SCHEME:REST" for a
 * scheme of the table (st_backend_get_port_help() lists them), or a plain
 * serial device path for the agent protocol. A station built without the
 * simulator (-Dsimulator=false) has no "sim" scheme and says so.
 * @cancellable, when given, aborts blocking I/O promptly. */
StBackend *st_backend_new (const char *port, const StLinkParams *params,
                           GCancellable *cancellable, GError **error);

/* The descriptor table, NULL-terminated, in the order the help lists it. */
const StBackendDescriptor *const *st_backend_get_descriptors (void);
/* The descriptor of @scheme, or NULL. */
const StBackendDescriptor *st_backend_lookup_scheme (const char *scheme);
/* The port syntax, one line per backend ("  agent:PATH   the agent ..."),
 * and a plain path; for --port help. Free with g_free(). */
gchar *st_backend_get_port_help (void);
StBackendCaps st_backend_get_capabilities (StBackend *self);
/* TRUE when @self declares every bit of @caps. */
gboolean st_backend_has_capability (StBackend *self, StBackendCaps caps);

gboolean st_backend_open (StBackend *self, GError **error);
gboolean st_backend_identify (StBackend *self, StDeviceInfo *info, GError **error);
GBytes *st_backend_keygen (StBackend *self, StAlg alg, GError **error);
gboolean st_backend_put_key (StBackend *self, StAlg alg, GBytes *pkcs8, GError **error);
gboolean st_backend_write (StBackend *self, StSlot slot, GBytes *data, GError **error);
GBytes *st_backend_read (StBackend *self, StSlot slot, GError **error);
GBytes *st_backend_sign (StBackend *self, const guint8 challenge[32], GError **error);
gboolean st_backend_commit (StBackend *self, gboolean lock, GError **error);
gboolean st_backend_abort (StBackend *self, GError **error);
void st_backend_close (StBackend *self);
void st_backend_free (StBackend *self);
StAgentStatus st_backend_get_last_status (StBackend *self);
/* Passive backends only (NOT_SUPPORTED elsewhere): see StBackendClass. */
gboolean st_backend_flash_image (StBackend *self, guint32 address, GBytes *image,
                                 const guint8 sha256[32], GError **error);
gboolean st_backend_set_product_serial (StBackend *self, const char *serial, GError **error);
/* Passive backends only (NOT_SUPPORTED elsewhere: an agent device takes
 * them as slots 3 and 4 with st_backend_write()). Both or neither; kept
 * until the next COMMIT or ABORT, so set them for every unit before its
 * COMMIT, which compares them in its whole-blob read-back. */
gboolean st_backend_set_matter_data (StBackend *self, GBytes *cd, GBytes *commissioning,
                                     GError **error);

/* Hex of the uid, lower case. */
gchar *st_device_info_uid_hex (const StDeviceInfo *info);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (StBackend, st_backend_free)

G_END_DECLS
