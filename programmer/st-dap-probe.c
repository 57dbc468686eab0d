/* A CMSIS-DAP v2 probe over libusb (st-dap-probe.h). */
#include "st-dap-probe.h"

#include <libusb.h>
#include <string.h>

#include "st-error.h"

#define ST_DAP_CLASS_VENDOR 0xFF
#define ST_DAP_MAX_CANDIDATES 16
#define ST_DAP_INFO_CAPABILITIES 0xF0
#define ST_DAP_INFO_PACKET_COUNT 0xFE
#define ST_DAP_INFO_PACKET_SIZE 0xFF
#define ST_DAP_CAP_SWD 0x01
#define ST_DAP_PORT_SWD 1

struct _StDapProbe {
  libusb_context *ctx;
  libusb_device_handle *handle;
  int interface;
  guint8 ep_out, ep_in;
  gboolean claimed;
  gboolean connected;
  gboolean broken;           /* a transfer failed: the packet stream may be out of step */
  gchar *serial;
  gsize packet_size;
  guint timeout_ms;
  GCancellable *cancellable;
  StDapStats stats;
};

static gboolean
st_dap_usb_error (int rc, const char *what, GError **error)
{
  int code = rc == LIBUSB_ERROR_ACCESS ? ST_ERROR_PERMISSION_DENIED
             : rc == LIBUSB_ERROR_NOT_FOUND || rc == LIBUSB_ERROR_NO_DEVICE ? ST_ERROR_NOT_FOUND
             : rc == LIBUSB_ERROR_BUSY ? ST_ERROR_BUSY : ST_ERROR_READ;
  const char *hint = rc == LIBUSB_ERROR_ACCESS
                       ? ": this user may not open the probe; install the udev rule of "
                         "programmer/README-cmsis-dap.md (group plugdev) and re-plug it"
                     : rc == LIBUSB_ERROR_BUSY
                       ? ": another program (a debugger, OpenOCD, pyOCD) holds the probe; close it"
                     : rc == LIBUSB_ERROR_NO_DEVICE ? ": the probe was unplugged" : "";
  g_set_error (error, ST_ERROR, code, "%s: %s%s", what, libusb_error_name (rc), hint);
  return FALSE;
}

/* The USB string descriptor @index as UTF-8 (ASCII), "" when there is none. */
static gchar *
st_dap_usb_string (libusb_device_handle *h, guint8 index)
{
  unsigned char buf[256];
  if (index == 0)
    return g_strdup ("");
  int n = libusb_get_string_descriptor_ascii (h, index, buf, sizeof buf - 1);
  if (n < 0)
    return g_strdup ("");
  buf[n] = '\0';
  gchar *s = g_strndup ((const char *) buf, (gsize) n);
  /* Printable ASCII only: it goes into messages and the log. */
  for (gchar *p = s; *p != '\0'; p++)
    if (!g_ascii_isprint (*p))
      *p = '?';
  return s;
}

typedef struct {
  libusb_device *dev;
  int interface;
  guint8 ep_out, ep_in;
  guint8 i_interface;
} StDapCandidate;

/* The first vendor-class interface with a bulk OUT and a bulk IN endpoint
 * (CMSIS-DAP v2: OUT first, then IN, then optionally SWO). */
static gboolean
st_dap_find_interface (libusb_device *dev, StDapCandidate *c)
{
  struct libusb_config_descriptor *cfg = NULL;
  if (libusb_get_active_config_descriptor (dev, &cfg) != 0 &&
      libusb_get_config_descriptor (dev, 0, &cfg) != 0)
    return FALSE;
  gboolean found = FALSE;
  for (int i = 0; i < cfg->bNumInterfaces && !found; i++)
    {
      const struct libusb_interface *itf = &cfg->interface[i];
      if (itf->num_altsetting < 1)
        continue;
      const struct libusb_interface_descriptor *alt = &itf->altsetting[0];
      if (alt->bInterfaceClass != ST_DAP_CLASS_VENDOR || alt->bNumEndpoints < 2)
        continue;
      const struct libusb_endpoint_descriptor *e0 = &alt->endpoint[0], *e1 = &alt->endpoint[1];
      if ((e0->bmAttributes & 3) != LIBUSB_TRANSFER_TYPE_BULK ||
          (e1->bmAttributes & 3) != LIBUSB_TRANSFER_TYPE_BULK ||
          (e0->bEndpointAddress & LIBUSB_ENDPOINT_IN) != 0 ||
          (e1->bEndpointAddress & LIBUSB_ENDPOINT_IN) == 0)
        continue;
      c->dev = dev;
      c->interface = alt->bInterfaceNumber;
      c->ep_out = e0->bEndpointAddress;
      c->ep_in = e1->bEndpointAddress;
      c->i_interface = alt->iInterface;
      found = TRUE;
    }
  libusb_free_config_descriptor (cfg);
  return found;
}

/* Opens @c and checks it is a CMSIS-DAP (interface or product string);
 * returns the handle and its serial, or NULL (@access set when the node
 * could not be opened for lack of permission). */
static libusb_device_handle *
st_dap_open_candidate (const StDapCandidate *c, gchar **serial, int *open_rc)
{
  libusb_device_handle *h = NULL;
  struct libusb_device_descriptor dd;
  if (libusb_get_device_descriptor (c->dev, &dd) != 0)
    return NULL;
  int rc = libusb_open (c->dev, &h);
  if (rc != 0)
    {
      *open_rc = rc;
      return NULL;
    }
  g_autofree gchar *itf = st_dap_usb_string (h, c->i_interface);
  g_autofree gchar *product = st_dap_usb_string (h, dd.iProduct);
  if (strstr (itf, "CMSIS-DAP") == NULL && strstr (product, "CMSIS-DAP") == NULL)
    {
      libusb_close (h);
      return NULL;
    }
  *serial = st_dap_usb_string (h, dd.iSerialNumber);
  return h;
}

static gboolean st_dap_probe_init (StDapProbe *self, GError **error);

StDapProbe *
st_dap_probe_open (const char *serial, guint timeout_ms, GCancellable *cancellable, GError **error)
{
  g_autoptr(StDapProbe) self = g_new0 (StDapProbe, 1);
  self->interface = -1;
  self->timeout_ms = timeout_ms > 0 ? timeout_ms : 1000;
  self->cancellable = cancellable != NULL ? g_object_ref (cancellable) : NULL;
  int rc = libusb_init (&self->ctx);
  if (rc != 0)
    {
      st_dap_usb_error (rc, "libusb_init", error);
      return NULL;
    }
  libusb_device **list = NULL;
  ssize_t n = libusb_get_device_list (self->ctx, &list);
  if (n < 0)
    {
      st_dap_usb_error ((int) n, "listing the USB devices", error);
      return NULL;
    }
  g_autoptr(GPtrArray) serials = g_ptr_array_new_with_free_func (g_free);
  int denied = 0;
  for (ssize_t i = 0; i < n && serials->len < ST_DAP_MAX_CANDIDATES; i++)
    {
      StDapCandidate c = { 0 };
      if (!st_dap_find_interface (list[i], &c))
        continue;
      gchar *sn = NULL;
      int open_rc = 0;
      libusb_device_handle *h = st_dap_open_candidate (&c, &sn, &open_rc);
      if (h == NULL)
        {
          if (open_rc == LIBUSB_ERROR_ACCESS)
            denied++;
          continue;
        }
      gboolean want = serial == NULL || *serial == '\0' || g_strcmp0 (sn, serial) == 0;
      g_ptr_array_add (serials, sn);
      if (want && self->handle == NULL)
        {
          self->handle = h;
          self->interface = c.interface;
          self->ep_out = c.ep_out;
          self->ep_in = c.ep_in;
          self->serial = g_strdup (sn);
        }
      else
        libusb_close (h);
    }
  libusb_free_device_list (list, 1);

  g_autofree gchar *seen = NULL;
  g_ptr_array_add (serials, NULL);
  seen = g_strjoinv (", ", (gchar **) serials->pdata);
  guint n_probes = serials->len - 1;
  if (self->handle == NULL)
    {
      if (denied > 0)
        g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                     "%d USB device(s) that may be CMSIS-DAP probes cannot be opened by this user "
                     "(LIBUSB_ERROR_ACCESS): install the udev rule of programmer/README-cmsis-dap.md "
                     "(group plugdev), add the user to the group, and re-plug the probe", denied);
      else if (n_probes == 0)
        g_set_error_literal (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                             "no CMSIS-DAP v2 probe is connected (a vendor-class USB interface with "
                             "two bulk endpoints and \"CMSIS-DAP\" in its name): plug one in; v1 "
                             "(HID) probes are not supported");
      else
        g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                     "no CMSIS-DAP probe has the serial '%s'; connected: %s", serial, seen);
      return NULL;
    }
  if ((serial == NULL || *serial == '\0') && n_probes > 1)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                   "%u CMSIS-DAP probes are connected (%s): name one with --port cmsis-dap:SERIAL",
                   n_probes, seen);
      return NULL;
    }
  rc = libusb_claim_interface (self->handle, self->interface);
  if (rc != 0)
    {
      g_autofree gchar *what = g_strdup_printf ("claiming interface %d of the CMSIS-DAP probe %s",
                                                self->interface, self->serial);
      st_dap_usb_error (rc, what, error);
      return NULL;
    }
  self->claimed = TRUE;
  if (!st_dap_probe_init (self, error))
    {
      g_prefix_error (error, "CMSIS-DAP probe %s: ", self->serial);
      return NULL;
    }
  return g_steal_pointer (&self);
}

void
st_dap_probe_free (StDapProbe *self)
{
  if (self == NULL)
    return;
  if (self->connected && !self->broken)
    {
      guint8 req = ST_DAP_DISCONNECT, resp[8];
      gsize n = 0;
      g_autoptr(GError) local = NULL;
      if (!st_dap_probe_command (self, &req, 1, resp, sizeof resp, &n, 2, &local))
        g_debug ("DAP_Disconnect: %s", local->message);
    }
  if (self->claimed)
    libusb_release_interface (self->handle, self->interface);
  if (self->handle != NULL)
    libusb_close (self->handle);
  if (self->ctx != NULL)
    libusb_exit (self->ctx);
  g_clear_object (&self->cancellable);
  g_free (self->serial);
  g_free (self);
}

gsize
st_dap_probe_get_packet_size (StDapProbe *self)
{
  return self->packet_size;
}

StDapStats *
st_dap_probe_get_stats (StDapProbe *self)
{
  return &self->stats;
}

gboolean
st_dap_probe_command (StDapProbe *self, const guint8 *req, gsize req_len, guint8 *resp,
                      gsize resp_max, gsize *resp_len, gsize min_len, GError **error)
{
  g_return_val_if_fail (req_len >= 1 && resp_max >= 1, FALSE);
  if (self->cancellable != NULL && g_cancellable_is_cancelled (self->cancellable))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_CANCELLED, "cancelled before DAP command 0x%02x", req[0]);
      return FALSE;
    }
  if (self->broken)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_READ,
                   "an earlier transfer with the probe failed; it must be reopened");
      return FALSE;
    }
  gsize limit = self->packet_size > 0 ? self->packet_size : 64;
  if (req_len > limit)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL,
                   "DAP command 0x%02x of %" G_GSIZE_FORMAT " bytes exceeds the probe's packet size %"
                   G_GSIZE_FORMAT, req[0], req_len, limit);
      return FALSE;
    }
  int actual = 0;
  int rc = libusb_bulk_transfer (self->handle, self->ep_out, (unsigned char *) req, (int) req_len,
                                 &actual, self->timeout_ms);
  self->stats.n_packets++;
  if (rc == 0 && (gsize) actual != req_len)
    rc = LIBUSB_ERROR_IO;
  if (rc != 0)
    {
      self->broken = TRUE;
      g_autofree gchar *what = g_strdup_printf ("sending DAP command 0x%02x", req[0]);
      if (rc == LIBUSB_ERROR_TIMEOUT)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_READ, "%s: the probe took no packet within %u ms",
                       what, self->timeout_ms);
          return FALSE;
        }
      return st_dap_usb_error (rc, what, error);
    }
  self->stats.bytes_tx += req_len;
  /* A buffer of the largest packet we accept, a multiple of every bulk
   * max packet size, so that the device cannot overflow it. */
  guint8 in[ST_DAP_PACKET_MAX];
  rc = libusb_bulk_transfer (self->handle, self->ep_in, in, sizeof in, &actual, self->timeout_ms);
  if (rc != 0)
    {
      self->broken = TRUE;
      g_autofree gchar *what = g_strdup_printf ("the answer to DAP command 0x%02x", req[0]);
      if (rc == LIBUSB_ERROR_TIMEOUT)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_READ, "%s: none within %u ms", what, self->timeout_ms);
          return FALSE;
        }
      return st_dap_usb_error (rc, what, error);
    }
  self->stats.bytes_rx += (guint64) actual;
  if (actual < 1 || in[0] != req[0])
    {
      self->broken = TRUE;
      g_set_error (error, ST_ERROR, ST_ERROR_READ,
                   "the probe answered DAP command 0x%02x with %s0x%02x", req[0],
                   actual < 1 ? "an empty packet, not " : "command ", actual < 1 ? req[0] : in[0]);
      return FALSE;
    }
  if ((gsize) actual < min_len || (gsize) actual > resp_max)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_READ,
                   "the probe's answer to DAP command 0x%02x has %d bytes, expected %" G_GSIZE_FORMAT
                   "..%" G_GSIZE_FORMAT, req[0], actual, min_len, resp_max);
      return FALSE;
    }
  memcpy (resp, in, (gsize) actual);
  *resp_len = (gsize) actual;
  return TRUE;
}

/* A command answered by [cmd, status]. */
static gboolean
st_dap_status_command (StDapProbe *self, const guint8 *req, gsize req_len, const char *name,
                       GError **error)
{
  guint8 resp[8];
  gsize n = 0;
  if (!st_dap_probe_command (self, req, req_len, resp, sizeof resp, &n, 2, error))
    {
      g_prefix_error (error, "%s: ", name);
      return FALSE;
    }
  if (resp[1] != ST_DAP_OK)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_READ, "the probe answered %s with DAP_ERROR (0x%02x)",
                   name, resp[1]);
      return FALSE;
    }
  return TRUE;
}

gboolean
st_dap_probe_swj_clock (StDapProbe *self, guint32 hz, GError **error)
{
  guint8 req[5] = { ST_DAP_SWJ_CLOCK, (guint8) hz, (guint8) (hz >> 8), (guint8) (hz >> 16),
                    (guint8) (hz >> 24) };
  return st_dap_status_command (self, req, sizeof req, "DAP_SWJ_Clock", error);
}

gboolean
st_dap_probe_swj_sequence (StDapProbe *self, guint bits, const guint8 *data, GError **error)
{
  g_return_val_if_fail (bits >= 1 && bits <= 256, FALSE);
  guint8 req[2 + 32];
  req[0] = ST_DAP_SWJ_SEQUENCE;
  req[1] = (guint8) (bits == 256 ? 0 : bits);
  memcpy (req + 2, data, (bits + 7) / 8);
  return st_dap_status_command (self, req, 2 + (bits + 7) / 8, "DAP_SWJ_Sequence", error);
}

gboolean
st_dap_probe_transfer_configure (StDapProbe *self, guint8 idle_cycles, guint16 wait_retry,
                                 guint16 match_retry, GError **error)
{
  guint8 req[6] = { ST_DAP_TRANSFER_CONFIGURE, idle_cycles, (guint8) wait_retry,
                    (guint8) (wait_retry >> 8), (guint8) match_retry, (guint8) (match_retry >> 8) };
  return st_dap_status_command (self, req, sizeof req, "DAP_TransferConfigure", error);
}

/* DAP_Info @id: its bytes into @out (at most @max); returns the length. */
static gboolean
st_dap_info (StDapProbe *self, guint8 id, guint8 *out, gsize max, gsize *len, GError **error)
{
  guint8 req[2] = { ST_DAP_INFO, id }, resp[ST_DAP_PACKET_MAX];
  gsize n = 0;
  if (!st_dap_probe_command (self, req, sizeof req, resp, sizeof resp, &n, 2, error))
    {
      g_prefix_error (error, "DAP_Info 0x%02x: ", id);
      return FALSE;
    }
  if (resp[1] > max || (gsize) resp[1] + 2 > n)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_READ,
                   "DAP_Info 0x%02x: the probe gives %u bytes in a packet of %" G_GSIZE_FORMAT
                   " (at most %" G_GSIZE_FORMAT " expected)", id, resp[1], n, max);
      return FALSE;
    }
  memcpy (out, resp + 2, resp[1]);
  *len = resp[1];
  return TRUE;
}

static gboolean
st_dap_probe_init (StDapProbe *self, GError **error)
{
  guint8 v[4] = { 0 };
  gsize n = 0;
  if (!st_dap_info (self, ST_DAP_INFO_CAPABILITIES, v, sizeof v, &n, error))
    return FALSE;
  if (n < 1 || (v[0] & ST_DAP_CAP_SWD) == 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                   "the probe does not offer SWD (capabilities 0x%02x): use an SWD-capable probe",
                   n > 0 ? v[0] : 0);
      return FALSE;
    }
  if (!st_dap_info (self, ST_DAP_INFO_PACKET_SIZE, v, sizeof v, &n, error))
    return FALSE;
  guint size = n == 2 ? (guint) (v[0] | v[1] << 8) : 0;
  if (size < 64 || size > ST_DAP_PACKET_MAX)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                   "the probe gives a packet size of %u bytes (%" G_GSIZE_FORMAT "-byte answer); "
                   "64..%d is supported", size, n, ST_DAP_PACKET_MAX);
      return FALSE;
    }
  self->packet_size = size;
  if (!st_dap_info (self, ST_DAP_INFO_PACKET_COUNT, v, sizeof v, &n, error))
    return FALSE;
  guint packet_count = n == 1 ? v[0] : 0;   /* we keep one packet in flight */
  if (packet_count < 1)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                   "the probe gives a packet count of %u (%" G_GSIZE_FORMAT "-byte answer)",
                   packet_count, n);
      return FALSE;
    }
  guint8 req[2] = { ST_DAP_CONNECT, ST_DAP_PORT_SWD }, resp[8];
  if (!st_dap_probe_command (self, req, sizeof req, resp, sizeof resp, &n, 2, error))
    {
      g_prefix_error (error, "DAP_Connect: ");
      return FALSE;
    }
  if (resp[1] != ST_DAP_PORT_SWD)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_READ,
                   "DAP_Connect (SWD) answered port %u, not SWD (1): the probe refused SWD mode",
                   resp[1]);
      return FALSE;
    }
  self->connected = TRUE;
  return TRUE;
}
