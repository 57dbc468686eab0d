/* The passive backend core: a device with no provisioning agent whose flash
 * the station writes directly (stm32-rom through the ROM bootloader,
 * cmsis-dap over SWD). One implementation of the backend vtable on top of a
 * small table of memory operations (StPassiveOps):
 *
 *   identify  the link's chip identification -> target flash map
 *             (st-stm32-target.h), the credential blob (if any) and the uid
 *             (read last: a simulated operator swaps after it)
 *   put_key, write   buffered (the key wiped on ABORT, COMMIT and free)
 *   commit    builds the credential blob (st-blob.h), erases the credential
 *             area's sectors, writes, reads back, compares, wipes
 *   read      the buffered slot, else the blob parsed from flash
 *   flash_image, set_product_serial
 *   GO        with [link] go-address, after a commit the closing identify
 *             starts the application (ops->go), once, best effort.
 *
 * Failure status (st_backend_get_last_status): NONE when the link failed
 * (TIMED_OUT, READ, WRITE, CANCELLED: the flash state is unknown), STORAGE
 * when the device answered but refused or stored something else. */
#pragma once

#include "st-backend.h"
#include "st-stm32-target.h"

G_BEGIN_DECLS

typedef struct {
  const StBackendDescriptor *descriptor;   /* its scheme names the backend */
  guint16 max_payload;        /* reported in StDeviceInfo */
  /* Opens the link (port, probe). TIMED_OUT: nothing answers (an empty socket). */
  gboolean (*open) (gpointer link, StBackend *backend, GError **error);
  void (*close) (gpointer link);
  gboolean (*is_open) (gpointer link);
  /* Identifies the chip: its device id (AN3155 GET ID, DBGMCU_IDCODE DEV_ID)
   * and a short description for StDeviceInfo.fw_version. TIMED_OUT when
   * no device answers. */
  gboolean (*identify) (gpointer link, guint16 *device_id, gchar *version, gsize version_size,
                        GError **error);
  gboolean (*read) (gpointer link, guint32 address, guint8 *buf, gsize len, GError **error);
  /* Erases sectors [first, first + count) of @target, then writes @data at
   * @address, inside them; @address and @len are multiples of the target's
   * write granularity. One operation, so that a link unlocks its flash
   * controller once. */
  gboolean (*program) (gpointer link, const StTarget *target, guint first, guint count,
                       guint32 address, const guint8 *data, gsize len, GError **error);
  /* Starts the application at @address (the vector table); NULL: cannot. */
  gboolean (*go) (gpointer link, guint32 address, GError **error);
  /* Copies the link's counters into the backend's. */
  void (*update_counters) (gpointer link, StBackend *backend);
  void (*free) (gpointer link);
} StPassiveOps;

/* What every passive backend does: st_passive_backend_new()'s vtable
 * (no KEYGEN, no SIGN). */
#define ST_PASSIVE_BACKEND_CAPS \
  (ST_BACKEND_CAP_PUT_KEY | ST_BACKEND_CAP_COMMIT | ST_BACKEND_CAP_READ_BACK \
   | ST_BACKEND_CAP_FIRMWARE | ST_BACKEND_CAP_PASSIVE)

/* A passive backend over @link (owned: freed with ops->free). */
StBackend *st_passive_backend_new (const char *port, const StLinkParams *params,
                                   GCancellable *cancellable, const StPassiveOps *ops,
                                   gpointer link);
/* The link of @backend when it is a passive backend with @ops, else NULL. */
gpointer st_passive_backend_get_link (StBackend *backend, const StPassiveOps *ops);

G_END_DECLS
