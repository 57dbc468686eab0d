/* A minimal CMSIS-DAP v2 host over raw libusb, for the tests of the emulated
 * probe (not the station's backend): find a probe by its "CMSIS-DAP"
 * interface string and USB serial, claim it, move DAP packets over bulk. */
#pragma once

#include <glib.h>
#include <libusb.h>

G_BEGIN_DECLS

typedef struct {
  libusb_context *ctx;
  libusb_device_handle *handle;
  int iface;
  guint8 ep_out, ep_in;
} DapUsb;

/* Opens and claims the probe with USB serial @serial. Errors name the
 * libusb error; NOT_FOUND when no CMSIS-DAP probe has that serial. */
gboolean dap_usb_open (DapUsb *usb, const char *serial, GError **error);
void dap_usb_close (DapUsb *usb);
/* Serials of every CMSIS-DAP v2 probe on the bus, sorted. */
GPtrArray *dap_usb_list (GError **error);
/* One DAP command out, its answer in; 0 on a USB error. */
gsize dap_usb_xfer (gpointer usb, const guint8 *req, gsize len, guint8 *resp, gsize max);

G_END_DECLS
