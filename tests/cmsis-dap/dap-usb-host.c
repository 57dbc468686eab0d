/* A minimal CMSIS-DAP v2 host over raw libusb (dap-usb-host.h). */
#include "dap-usb-host.h"

#include <string.h>

#include "st-error.h"

#define DAP_USB_TIMEOUT_MS 2000

/* The CMSIS-DAP v2 interface of @dev: vendor class, "CMSIS-DAP" in its
 * string, a bulk OUT and a bulk IN endpoint. Fills @usb's endpoints. */
static gboolean
dap_usb_probe_iface (libusb_device_handle *h, libusb_device *dev, DapUsb *usb)
{
  struct libusb_config_descriptor *cfg = NULL;
  if (libusb_get_active_config_descriptor (dev, &cfg) != 0)
    return FALSE;
  gboolean found = FALSE;
  for (int i = 0; i < cfg->bNumInterfaces && !found; i++)
    {
      if (cfg->interface[i].num_altsetting < 1)
        continue;
      const struct libusb_interface_descriptor *id = &cfg->interface[i].altsetting[0];
      if (id->bInterfaceClass != LIBUSB_CLASS_VENDOR_SPEC || id->iInterface == 0)
        continue;
      unsigned char name[256];
      int n = libusb_get_string_descriptor_ascii (h, id->iInterface, name, sizeof name);
      if (n <= 0 || g_strstr_len ((const char *) name, n, "CMSIS-DAP") == NULL)
        continue;
      guint8 out = 0, in = 0;
      for (int e = 0; e < id->bNumEndpoints; e++)
        {
          const struct libusb_endpoint_descriptor *ed = &id->endpoint[e];
          if ((ed->bmAttributes & 3) != LIBUSB_TRANSFER_TYPE_BULK)
            continue;
          if ((ed->bEndpointAddress & 0x80) && in == 0)
            in = ed->bEndpointAddress;
          else if (!(ed->bEndpointAddress & 0x80) && out == 0)
            out = ed->bEndpointAddress;
        }
      if (in != 0 && out != 0)
        {
          usb->iface = id->bInterfaceNumber;
          usb->ep_in = in;
          usb->ep_out = out;
          found = TRUE;
        }
    }
  libusb_free_config_descriptor (cfg);
  return found;
}

/* Walks the bus: calls @visit with each CMSIS-DAP probe opened; @visit
 * returns TRUE to keep the handle (and stop). */
static gboolean
dap_usb_walk (libusb_context *ctx, DapUsb *usb,
              gboolean (*visit) (DapUsb *usb, const char *serial, gpointer data), gpointer data)
{
  libusb_device **list = NULL;
  ssize_t n = libusb_get_device_list (ctx, &list);
  gboolean kept = FALSE;
  for (ssize_t i = 0; i < n && !kept; i++)
    {
      struct libusb_device_descriptor dd;
      libusb_device_handle *h = NULL;
      if (libusb_get_device_descriptor (list[i], &dd) != 0 || dd.iSerialNumber == 0 ||
          libusb_open (list[i], &h) != 0)
        continue;
      unsigned char serial[128];
      int sl = libusb_get_string_descriptor_ascii (h, dd.iSerialNumber, serial, sizeof serial);
      if (sl > 0 && dap_usb_probe_iface (h, list[i], usb))
        {
          usb->handle = h;
          kept = visit (usb, (const char *) serial, data);
        }
      if (!kept)
        {
          usb->handle = NULL;
          libusb_close (h);
        }
    }
  libusb_free_device_list (list, 1);
  return kept;
}

static gboolean
dap_usb_match (DapUsb *usb, const char *serial, gpointer data)
{
  return g_strcmp0 (serial, data) == 0;
}

gboolean
dap_usb_open (DapUsb *usb, const char *serial, GError **error)
{
  memset (usb, 0, sizeof *usb);
  int r = libusb_init (&usb->ctx);
  if (r != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED, "libusb_init: %s", libusb_strerror (r));
      return FALSE;
    }
  if (!dap_usb_walk (usb->ctx, usb, dap_usb_match, (gpointer) serial))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND, "no CMSIS-DAP probe with serial %s", serial);
      dap_usb_close (usb);
      return FALSE;
    }
  r = libusb_claim_interface (usb->handle, usb->iface);
  if (r != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_BUSY, "claiming probe %s: %s (%s)", serial,
                   libusb_strerror (r), libusb_error_name (r));
      dap_usb_close (usb);
      return FALSE;
    }
  return TRUE;
}

void
dap_usb_close (DapUsb *usb)
{
  if (usb->handle != NULL)
    {
      libusb_release_interface (usb->handle, usb->iface);
      libusb_close (usb->handle);
    }
  if (usb->ctx != NULL)
    libusb_exit (usb->ctx);
  memset (usb, 0, sizeof *usb);
}

static gboolean
dap_usb_collect (DapUsb *usb, const char *serial, gpointer data)
{
  g_ptr_array_add (data, g_strdup (serial));
  return FALSE;
}

static gint
dap_usb_cmp (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(char *const *) a, *(char *const *) b);
}

GPtrArray *
dap_usb_list (GError **error)
{
  libusb_context *ctx = NULL;
  int r = libusb_init (&ctx);
  if (r != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED, "libusb_init: %s", libusb_strerror (r));
      return NULL;
    }
  GPtrArray *serials = g_ptr_array_new_with_free_func (g_free);
  DapUsb usb = { 0 };
  dap_usb_walk (ctx, &usb, dap_usb_collect, serials);
  libusb_exit (ctx);
  g_ptr_array_sort (serials, dap_usb_cmp);
  return serials;
}

gsize
dap_usb_xfer (gpointer user, const guint8 *req, gsize len, guint8 *resp, gsize max)
{
  DapUsb *usb = user;
  int done = 0;
  int r = libusb_bulk_transfer (usb->handle, usb->ep_out, (unsigned char *) req, (int) len, &done,
                                DAP_USB_TIMEOUT_MS);
  if (r != 0 || done != (int) len)
    {
      g_printerr ("bulk OUT: %s\n", libusb_error_name (r));
      return 0;
    }
  r = libusb_bulk_transfer (usb->handle, usb->ep_in, resp, (int) max, &done, DAP_USB_TIMEOUT_MS);
  if (r != 0)
    {
      g_printerr ("bulk IN: %s\n", libusb_error_name (r));
      return 0;
    }
  return (gsize) done;
}
