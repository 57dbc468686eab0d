/* Emulated CMSIS-DAP v2 probes served to libusb through umockdev
 * (st-dap-testbed.h).
 *
 * How it works (umockdev 0.17, libusb 1.0.26 Linux backend):
 * - Each probe is a USB device in the mocked sysfs (/sys/devices/1-N, with
 *   /sys/bus/usb/devices/1-N): busnum, devnum, speed, bConfigurationValue,
 *   idVendor/idProduct, manufacturer/product/serial and the binary
 *   `descriptors` file libusb parses (device descriptor, one configuration
 *   with one vendor-class interface, iInterface "CMSIS-DAP v2", bulk OUT 0x01
 *   and IN 0x81 of 512 bytes); the uevent has DEVTYPE=usb_device and
 *   DEVNAME=bus/usb/001/NNN, so libudev enumerates it and umockdev creates
 *   the node /dev/bus/usb/001/NNN (a plain file in the testbed).
 * - umockdev_testbed_attach_ioctl() puts a UNIX socket behind that node: the
 *   preload library forwards every ioctl() on an fd of the node to it, and
 *   umockdev emits UMockdevIoctlBase::handle-ioctl on the testbed's own
 *   worker thread (its private GMainContext). So the calling thread may
 *   block (g_spawn_sync) while a child process uses the probes.
 * - The usbdevfs ioctls libusb issues are answered here: GET_CAPABILITIES,
 *   CLAIMINTERFACE/RELEASEINTERFACE (one claimer at a time: EBUSY),
 *   DISCONNECT_CLAIM, GETDRIVER (ENODATA: no kernel driver), IOCTL
 *   (DISCONNECT: ENODATA), SETINTERFACE, SETCONFIGURATION, CLEAR_HALT,
 *   RESETEP, RESET, SUBMITURB, DISCARDURB, REAPURB/REAPURBNDELAY; anything
 *   else ENOTTY.
 * - URBs: SUBMITURB resolves the client's usbdevfs_urb and its buffer
 *   (umockdev_ioctl_data_resolve reads the client's memory) and keeps them.
 *   A control URB (GET_DESCRIPTOR device/configuration/string, GET_STATUS,
 *   GET_CONFIGURATION; anything else stalls with -EPIPE) and a bulk OUT URB
 *   complete at once; the OUT data is cut into 512-byte packets, each one
 *   DAP command for st_sim_dap_process(); the answers queue up. A bulk IN
 *   URB waits until an answer is there. A completed URB goes on its
 *   client's reap list; REAPURB(NDELAY) hands it back with
 *   umockdev_ioctl_data_set_ptr(), and umockdev writes the modified URB
 *   (status, actual_length) and IN buffer back into the client's memory
 *   when the ioctl completes. Nothing ready: EAGAIN.
 * - Completion signal: the device node is a plain file, so poll() on it is
 *   always ready (POLLOUT); libusb's event loop therefore calls
 *   REAPURBNDELAY, gets EAGAIN until an URB is done, and polls again. The
 *   IN answer is ready as soon as the OUT URB was processed, so a transfer
 *   costs a few socket round trips, not a timeout. */
#include "st-dap-testbed.h"

#include <errno.h>
#include <sys/ioctl.h>
#include <linux/usb/ch9.h>
#include <linux/usbdevice_fs.h>
#include <string.h>
#include <umockdev.h>

#include "st-error.h"

#define DAP_EP_OUT 0x01
#define DAP_EP_IN 0x81
#define DAP_MAX_URB (64 * 1024)
#define DAP_MAX_QUEUED 64

typedef struct {
  UMockdevIoctlClient *client;
  UMockdevIoctlData *urb;   /* the client's struct usbdevfs_urb */
  UMockdevIoctlData *buf;   /* its buffer (a child of urb), or NULL */
} StDapUrb;

typedef struct {
  StDapTestbed *tb;
  StSimDap *sim;
  gchar *serial;
  guint16 vid, pid;
  guint devnum;
  gchar *syspath;
  gchar *devnode;
  UMockdevIoctlBase *handler;
  gulong handler_id;
  /* Touched on umockdev's worker thread only. */
  UMockdevIoctlClient *claimer;   /* holds interface 0 */
  GQueue answers;                 /* GBytes, DAP responses not yet read */
  GQueue in_urbs;                 /* StDapUrb*, bulk IN waiting for an answer */
  GQueue done;                    /* StDapUrb*, to reap */
} StDapProbe;

struct _StDapTestbed {
  UMockdevTestbed *testbed;
  GPtrArray *probes;   /* StDapProbe* */
};

static void
st_dap_urb_free (StDapUrb *u)
{
  if (u == NULL)
    return;
  g_clear_object (&u->client);
  g_clear_object (&u->urb);
  g_free (u);
}

static void
st_dap_probe_free (StDapProbe *p)
{
  if (p == NULL)
    return;
  if (p->handler != NULL)
    {
      if (p->handler_id != 0)
        g_signal_handler_disconnect (p->handler, p->handler_id);
      g_object_unref (p->handler);
    }
  g_queue_clear_full (&p->answers, (GDestroyNotify) g_bytes_unref);
  g_queue_clear_full (&p->in_urbs, (GDestroyNotify) st_dap_urb_free);
  g_queue_clear_full (&p->done, (GDestroyNotify) st_dap_urb_free);
  g_clear_object (&p->claimer);
  st_sim_dap_free (p->sim);
  g_free (p->serial);
  g_free (p->syspath);
  g_free (p->devnode);
  g_free (p);
}

/* ---- descriptors ---- */

static const char *const st_dap_strings[] = { NULL, "Station", "Station CMSIS-DAP", NULL, "CMSIS-DAP v2" };
#define STR_SERIAL 3

static gsize
st_dap_device_descriptor (StDapProbe *p, guint8 *d)
{
  const guint8 desc[18] = {
    18, USB_DT_DEVICE, 0x00, 0x02,   /* USB 2.0 */
    0x00, 0x00, 0x00, 64,            /* class in the interface; ep0 64 bytes */
    (guint8) p->vid, (guint8) (p->vid >> 8), (guint8) p->pid, (guint8) (p->pid >> 8),
    0x00, 0x01,                      /* bcdDevice 1.00 */
    1, 2, STR_SERIAL, 1,             /* strings; one configuration */
  };
  memcpy (d, desc, sizeof desc);
  return sizeof desc;
}

static gsize
st_dap_config_descriptor (guint8 *d)
{
  const guint8 desc[32] = {
    9, USB_DT_CONFIG, 32, 0, 1, 1, 0, 0x80, 50,           /* 1 interface, config 1, 100 mA */
    9, USB_DT_INTERFACE, 0, 0, 2, 0xFF, 0x00, 0x00, 4,     /* vendor class, "CMSIS-DAP v2" */
    7, USB_DT_ENDPOINT, DAP_EP_OUT, USB_ENDPOINT_XFER_BULK, 0x00, 0x02, 0,
    7, USB_DT_ENDPOINT, DAP_EP_IN, USB_ENDPOINT_XFER_BULK, 0x00, 0x02, 0,
  };
  memcpy (d, desc, sizeof desc);
  return sizeof desc;
}

/* A string descriptor into @d (at most 255 bytes); 0 when there is none. */
static gsize
st_dap_string_descriptor (StDapProbe *p, guint index, guint8 *d)
{
  if (index == 0)
    {
      const guint8 langs[4] = { 4, USB_DT_STRING, 0x09, 0x04 };   /* en-US */
      memcpy (d, langs, sizeof langs);
      return sizeof langs;
    }
  if (index >= G_N_ELEMENTS (st_dap_strings))
    return 0;
  const char *s = index == STR_SERIAL ? p->serial : st_dap_strings[index];
  gsize n = MIN (strlen (s), 126u);
  d[0] = (guint8) (2 + 2 * n);
  d[1] = USB_DT_STRING;
  for (gsize i = 0; i < n; i++)
    {
      d[2 + 2 * i] = (guint8) s[i];
      d[3 + 2 * i] = 0;
    }
  return 2 + 2 * n;
}

/* ---- URBs ---- */

static struct usbdevfs_urb *
st_dap_urb_struct (StDapUrb *u)
{
  return (struct usbdevfs_urb *) u->urb->data;
}

static void
st_dap_finish (StDapProbe *p, StDapUrb *u, int status, int actual)
{
  struct usbdevfs_urb *urb = st_dap_urb_struct (u);
  urb->status = status;
  urb->actual_length = actual;
  g_queue_push_tail (&p->done, u);
}

/* Drops the URBs of clients that closed their fd. */
static void
st_dap_forget_closed (StDapProbe *p)
{
  GQueue *queues[] = { &p->in_urbs, &p->done };
  for (gsize q = 0; q < G_N_ELEMENTS (queues); q++)
    for (GList *l = queues[q]->head; l != NULL;)
      {
        GList *next = l->next;
        StDapUrb *u = l->data;
        if (!umockdev_ioctl_client_get_connected (u->client))
          {
            g_queue_delete_link (queues[q], l);
            st_dap_urb_free (u);
          }
        l = next;
      }
}

/* Pairs waiting bulk IN URBs with queued answers. */
static void
st_dap_pump (StDapProbe *p)
{
  while (!g_queue_is_empty (&p->in_urbs) && !g_queue_is_empty (&p->answers))
    {
      StDapUrb *u = g_queue_pop_head (&p->in_urbs);
      g_autoptr(GBytes) answer = g_queue_pop_head (&p->answers);
      gsize n = 0;
      const guint8 *d = g_bytes_get_data (answer, &n);
      struct usbdevfs_urb *urb = st_dap_urb_struct (u);
      gsize room = (gsize) urb->buffer_length;
      if (u->buf != NULL)
        memcpy (u->buf->data, d, MIN (n, room));
      if (n > room)
        st_dap_finish (p, u, -EOVERFLOW, (int) room);   /* babble */
      else
        st_dap_finish (p, u, 0, (int) n);
    }
}

static void
st_dap_bulk_out (StDapProbe *p, const guint8 *d, gsize len)
{
  for (gsize off = 0; off < len; off += ST_SIM_DAP_PACKET_SIZE)
    {
      gsize n = MIN (len - off, (gsize) ST_SIM_DAP_PACKET_SIZE);
      guint8 resp[ST_SIM_DAP_PACKET_SIZE];
      gsize r = st_sim_dap_process (p->sim, d + off, n, resp, sizeof resp);
      if (r == 0)
        continue;
      if (g_queue_get_length (&p->answers) >= DAP_MAX_QUEUED)
        {
          /* A host that never reads: the probe drops the oldest answer. */
          g_bytes_unref (g_queue_pop_head (&p->answers));
        }
      g_queue_push_tail (&p->answers, g_bytes_new (resp, r));
    }
}

/* A control transfer on endpoint 0: returns the data length, or -EPIPE. */
static int
st_dap_control (StDapProbe *p, guint8 *buf, gsize len)
{
  if (len < 8)
    return -EPIPE;
  guint8 type = buf[0], request = buf[1];
  guint value = (guint) buf[2] | (guint) buf[3] << 8;
  guint want = (guint) buf[6] | (guint) buf[7] << 8;
  guint8 *data = buf + 8;
  gsize room = MIN ((gsize) want, len - 8);
  guint8 reply[256];
  gsize n = 0;
  if (type == (USB_DIR_IN | USB_TYPE_STANDARD | USB_RECIP_DEVICE) && request == USB_REQ_GET_DESCRIPTOR)
    {
      switch (value >> 8)
        {
        case USB_DT_DEVICE:
          n = st_dap_device_descriptor (p, reply);
          break;
        case USB_DT_CONFIG:
          if ((value & 0xFF) != 0)
            return -EPIPE;
          n = st_dap_config_descriptor (reply);
          break;
        case USB_DT_STRING:
          n = st_dap_string_descriptor (p, value & 0xFF, reply);
          if (n == 0)
            return -EPIPE;
          break;
        default:
          return -EPIPE;
        }
    }
  else if (type == (USB_DIR_IN | USB_TYPE_STANDARD | USB_RECIP_DEVICE) && request == USB_REQ_GET_STATUS)
    {
      reply[0] = 0;
      reply[1] = 0;
      n = 2;
    }
  else if (type == (USB_DIR_IN | USB_TYPE_STANDARD | USB_RECIP_DEVICE) && request == USB_REQ_GET_CONFIGURATION)
    {
      reply[0] = 1;
      n = 1;
    }
  else
    return -EPIPE;
  n = MIN (n, room);
  memcpy (data, reply, n);
  return (int) n;
}

static void
st_dap_complete (UMockdevIoctlClient *client, long result, int err)
{
  umockdev_ioctl_client_complete (client, result, err);
}

static void
st_dap_submit (StDapProbe *p, UMockdevIoctlClient *client, UMockdevIoctlData *arg)
{
  g_autoptr(GError) error = NULL;
  UMockdevIoctlData *urbd = umockdev_ioctl_data_resolve (arg, 0, sizeof (struct usbdevfs_urb), &error);
  if (urbd == NULL)
    {
      st_dap_complete (client, -1, EFAULT);
      return;
    }
  struct usbdevfs_urb *urb = (struct usbdevfs_urb *) urbd->data;
  if (urb->buffer_length < 0 || urb->buffer_length > DAP_MAX_URB)
    {
      g_object_unref (urbd);
      st_dap_complete (client, -1, EINVAL);
      return;
    }
  UMockdevIoctlData *bufd = NULL;   /* owned by urbd (a child of it) */
  if (urb->buffer_length > 0)
    {
      UMockdevIoctlData *b = umockdev_ioctl_data_resolve (urbd, G_STRUCT_OFFSET (struct usbdevfs_urb, buffer),
                                                          (gsize) urb->buffer_length, &error);
      if (b == NULL)
        {
          g_object_unref (urbd);
          st_dap_complete (client, -1, EFAULT);
          return;
        }
      bufd = b;
      g_object_unref (b);
    }
  /* The URB is not a claimed interface's: usbfs claims it on the fly. */
  if (urb->type == USBDEVFS_URB_TYPE_BULK && p->claimer != NULL && p->claimer != client &&
      umockdev_ioctl_client_get_connected (p->claimer))
    {
      g_object_unref (urbd);
      st_dap_complete (client, -1, EBUSY);
      return;
    }
  StDapUrb *u = g_new0 (StDapUrb, 1);
  u->client = g_object_ref (client);
  u->urb = urbd;   /* the reference resolve() returned */
  u->buf = bufd;
  if (urb->type == USBDEVFS_URB_TYPE_CONTROL && (urb->endpoint & 0x7F) == 0)
    {
      int r = st_dap_control (p, bufd != NULL ? bufd->data : NULL, (gsize) urb->buffer_length);
      st_dap_finish (p, u, r < 0 ? r : 0, r < 0 ? 0 : r);
    }
  else if (urb->type == USBDEVFS_URB_TYPE_BULK && urb->endpoint == DAP_EP_OUT)
    {
      if (bufd != NULL)
        st_dap_bulk_out (p, bufd->data, (gsize) urb->buffer_length);
      st_dap_finish (p, u, 0, urb->buffer_length);
    }
  else if (urb->type == USBDEVFS_URB_TYPE_BULK && urb->endpoint == DAP_EP_IN)
    g_queue_push_tail (&p->in_urbs, u);
  else
    {
      st_dap_urb_free (u);
      st_dap_complete (client, -1, ENOENT);   /* no such endpoint */
      return;
    }
  st_dap_pump (p);
  st_dap_complete (client, 0, 0);
}

static void
st_dap_discard (StDapProbe *p, UMockdevIoctlClient *client, UMockdevIoctlData *arg)
{
  gulong addr = 0;
  if (arg->data_len >= (gint) sizeof addr)
    memcpy (&addr, arg->data, sizeof addr);
  for (GList *l = p->in_urbs.head; l != NULL; l = l->next)
    {
      StDapUrb *u = l->data;
      if (u->client == client && u->urb->client_addr == addr)
        {
          g_queue_delete_link (&p->in_urbs, l);
          st_dap_finish (p, u, -ENOENT, 0);
          st_dap_complete (client, 0, 0);
          return;
        }
    }
  st_dap_complete (client, -1, EINVAL);   /* already done, or unknown */
}

static void
st_dap_reap (StDapProbe *p, UMockdevIoctlClient *client, UMockdevIoctlData *arg)
{
  for (GList *l = p->done.head; l != NULL; l = l->next)
    {
      StDapUrb *u = l->data;
      if (u->client != client)
        continue;
      g_autoptr(GError) error = NULL;
      g_autoptr(UMockdevIoctlData) ptr = umockdev_ioctl_data_resolve (arg, 0, sizeof (gpointer), &error);
      if (ptr == NULL)
        {
          st_dap_complete (client, -1, EFAULT);
          return;
        }
      g_queue_delete_link (&p->done, l);
      umockdev_ioctl_data_set_ptr (ptr, 0, u->urb);
      st_dap_urb_free (u);
      st_dap_complete (client, 0, 0);
      return;
    }
  st_dap_complete (client, -1, EAGAIN);
}

static guint
st_dap_arg_uint (UMockdevIoctlData *arg, gboolean *ok)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(UMockdevIoctlData) d = umockdev_ioctl_data_resolve (arg, 0, sizeof (guint), &error);
  *ok = d != NULL;
  guint v = 0;
  if (d != NULL)
    memcpy (&v, d->data, sizeof v);
  return v;
}

static gboolean
st_dap_handle_ioctl (UMockdevIoctlBase *handler, UMockdevIoctlClient *client, gpointer user_data)
{
  StDapProbe *p = user_data;
  gulong request = umockdev_ioctl_client_get_request (client);
  UMockdevIoctlData *arg = umockdev_ioctl_client_get_arg (client);
  gboolean ok = TRUE;
  st_dap_forget_closed (p);
  if (p->claimer != NULL && !umockdev_ioctl_client_get_connected (p->claimer))
    g_clear_object (&p->claimer);
  switch (request)
    {
    case USBDEVFS_GET_CAPABILITIES:
      {
        g_autoptr(GError) error = NULL;
        g_autoptr(UMockdevIoctlData) d = umockdev_ioctl_data_resolve (arg, 0, sizeof (guint32), &error);
        if (d == NULL)
          {
            st_dap_complete (client, -1, EFAULT);
            break;
          }
        guint32 caps = USBDEVFS_CAP_ZERO_PACKET | USBDEVFS_CAP_BULK_CONTINUATION |
                       USBDEVFS_CAP_NO_PACKET_SIZE_LIM | USBDEVFS_CAP_REAP_AFTER_DISCONNECT;
        memcpy (d->data, &caps, sizeof caps);
        st_dap_complete (client, 0, 0);
        break;
      }
    case USBDEVFS_CLAIMINTERFACE:
    case USBDEVFS_DISCONNECT_CLAIM:
      {
        guint ifnum = st_dap_arg_uint (arg, &ok);
        if (!ok)
          st_dap_complete (client, -1, EFAULT);
        else if (ifnum != 0)
          st_dap_complete (client, -1, ENOENT);
        else if (p->claimer != NULL && p->claimer != client)
          st_dap_complete (client, -1, EBUSY);
        else
          {
            if (p->claimer == NULL)
              p->claimer = g_object_ref (client);
            st_dap_complete (client, 0, 0);
          }
        break;
      }
    case USBDEVFS_RELEASEINTERFACE:
      {
        guint ifnum = st_dap_arg_uint (arg, &ok);
        if (!ok)
          st_dap_complete (client, -1, EFAULT);
        else if (ifnum != 0 || p->claimer != client)
          st_dap_complete (client, -1, EINVAL);
        else
          {
            g_clear_object (&p->claimer);
            st_dap_complete (client, 0, 0);
          }
        break;
      }
    case USBDEVFS_SETINTERFACE:
      {
        g_autoptr(GError) error = NULL;
        g_autoptr(UMockdevIoctlData) d = umockdev_ioctl_data_resolve (arg, 0, sizeof (struct usbdevfs_setinterface), &error);
        struct usbdevfs_setinterface si = { 0 };
        if (d != NULL)
          memcpy (&si, d->data, sizeof si);
        st_dap_complete (client, d != NULL && si.interface == 0 && si.altsetting == 0 ? 0 : -1,
                         d == NULL ? EFAULT : (si.interface == 0 && si.altsetting == 0 ? 0 : EINVAL));
        break;
      }
    case USBDEVFS_SETCONFIGURATION:
      {
        guint cfg = st_dap_arg_uint (arg, &ok);
        if (ok && (cfg == 1 || cfg == (guint) -1))
          st_dap_complete (client, 0, 0);
        else
          st_dap_complete (client, -1, ok ? EINVAL : EFAULT);
        break;
      }
    case USBDEVFS_GETDRIVER:
    case USBDEVFS_IOCTL:
      st_dap_complete (client, -1, ENODATA);   /* no kernel driver bound */
      break;
    case USBDEVFS_CLEAR_HALT:
    case USBDEVFS_RESETEP:
    case USBDEVFS_RESET:
      st_dap_complete (client, 0, 0);
      break;
    case USBDEVFS_SUBMITURB:
      st_dap_submit (p, client, arg);
      break;
    case USBDEVFS_DISCARDURB:
      st_dap_discard (p, client, arg);
      break;
    case USBDEVFS_REAPURB:
    case USBDEVFS_REAPURBNDELAY:
      st_dap_reap (p, client, arg);
      break;
    default:
      g_debug ("cmsis-dap testbed: ioctl 0x%lx not emulated", request);
      st_dap_complete (client, -1, ENOTTY);
      break;
    }
  return TRUE;
}

/* ---- the testbed ---- */

StDapTestbed *
st_dap_testbed_new (GError **error)
{
  /* The preload library answers only once a testbed ($UMOCKDEV_DIR) exists. */
  g_autoptr(UMockdevTestbed) testbed = umockdev_testbed_new ();
  if (!umockdev_in_mock_environment ())
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                           "not running under umockdev's preload library: "
                           "run the program through umockdev-wrapper");
      return NULL;
    }
  StDapTestbed *tb = g_new0 (StDapTestbed, 1);
  tb->testbed = g_steal_pointer (&testbed);
  tb->probes = g_ptr_array_new_with_free_func ((GDestroyNotify) st_dap_probe_free);
  return tb;
}

StSimDap *
st_dap_testbed_add_probe (StDapTestbed *tb, const char *serial, const StSimDapConfig *config,
                          GError **error)
{
  g_return_val_if_fail (tb != NULL && config != NULL, NULL);
  for (guint i = 0; i < tb->probes->len; i++)
    {
      StDapProbe *o = tb->probes->pdata[i];
      if (g_strcmp0 (o->serial, serial) == 0)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "a probe with serial %s is already in the testbed", serial);
          return NULL;
        }
    }
  if (tb->probes->len >= 120)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED, "at most 120 probes on the bus");
      return NULL;
    }
  StSimDap *sim = st_sim_dap_new (config, serial, error);
  if (sim == NULL)
    return NULL;
  StDapProbe *p = g_new0 (StDapProbe, 1);
  p->tb = tb;
  p->sim = sim;
  p->serial = g_strdup (serial);
  st_sim_dap_get_ids (sim, &p->vid, &p->pid);
  p->devnum = tb->probes->len + 2;   /* 1 would be the root hub */
  g_queue_init (&p->answers);
  g_queue_init (&p->in_urbs);
  g_queue_init (&p->done);

  g_autofree gchar *name = g_strdup_printf ("1-%u", tb->probes->len + 1);
  /* sysfs attributes end with a newline, as the kernel's do. */
  g_autofree gchar *devnum = g_strdup_printf ("%u\n", p->devnum);
  g_autofree gchar *minor = g_strdup_printf ("%u", p->devnum - 1);
  g_autofree gchar *dev = g_strdup_printf ("189:%u\n", p->devnum - 1);
  g_autofree gchar *vid = g_strdup_printf ("%04x\n", p->vid);
  g_autofree gchar *pid = g_strdup_printf ("%04x\n", p->pid);
  g_autofree gchar *manufacturer = g_strconcat (st_dap_strings[1], "\n", NULL);
  g_autofree gchar *product_name = g_strconcat (st_dap_strings[2], "\n", NULL);
  g_autofree gchar *serial_line = g_strconcat (serial, "\n", NULL);
  g_autofree gchar *devname = g_strdup_printf ("/dev/bus/usb/001/%03u", p->devnum);
  g_autofree gchar *devnum3 = g_strdup_printf ("%03u", p->devnum);
  g_autofree gchar *product = g_strdup_printf ("%x/%x/100", p->vid, p->pid);
  p->syspath = umockdev_testbed_add_device (tb->testbed, "usb", name, NULL,
      /* attributes */
      "busnum", "1\n", "devnum", devnum, "dev", dev, "speed", "480\n",
      "idVendor", vid, "idProduct", pid, "bcdDevice", "0100\n",
      "bConfigurationValue", "1\n", "bNumConfigurations", "1\n", "bNumInterfaces", " 1\n",
      "bDeviceClass", "00\n", "bMaxPacketSize0", "64\n", "version", " 2.00\n",
      "manufacturer", manufacturer, "product", product_name, "serial", serial_line,
      NULL,
      /* properties */
      "DEVTYPE", "usb_device", "DEVNAME", devname, "BUSNUM", "001", "DEVNUM", devnum3,
      "PRODUCT", product, "TYPE", "0/0/0", "MAJOR", "189", "MINOR", minor,
      NULL);
  if (p->syspath == NULL)
    {
      st_dap_probe_free (p);
      g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL, "umockdev could not add the USB device %s", name);
      return NULL;
    }
  guint8 desc[18 + 32];
  gsize n = st_dap_device_descriptor (p, desc);
  n += st_dap_config_descriptor (desc + n);
  umockdev_testbed_set_attribute_binary (tb->testbed, p->syspath, "descriptors", desc, (gint) n);
  p->devnode = g_strdup (devname);
  /* The node itself: a plain file in the testbed; umockdev's preload opens
   * it for /dev/bus/usb/001/NNN and sends its ioctls to the handler. */
  g_autofree gchar *root = umockdev_testbed_get_root_dir (tb->testbed);
  g_autofree gchar *node = g_build_filename (root, devname, NULL);
  g_autofree gchar *node_dir = g_path_get_dirname (node);
  if (g_mkdir_with_parents (node_dir, 0755) != 0 ||
      !g_file_set_contents (node, "", 0, error))
    {
      if (error != NULL && *error == NULL)
        g_set_error (error, ST_ERROR, ST_ERROR_WRITE, "creating %s: %s", node_dir, g_strerror (errno));
      st_dap_probe_free (p);
      return NULL;
    }
  p->handler = umockdev_ioctl_base_new ();
  p->handler_id = g_signal_connect (p->handler, "handle-ioctl", G_CALLBACK (st_dap_handle_ioctl), p);
  if (!umockdev_testbed_attach_ioctl (tb->testbed, p->devnode, p->handler, error))
    {
      g_prefix_error (error, "serving %s: ", p->devnode);
      st_dap_probe_free (p);
      return NULL;
    }
  g_ptr_array_add (tb->probes, p);
  return sim;
}

StDapTestbed *
st_dap_testbed_new_or_skip (void)
{
  g_autoptr(GError) error = NULL;
  StDapTestbed *tb = st_dap_testbed_new (&error);
  if (tb == NULL)
    {
      g_assert_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED);
      g_test_skip (error->message);
    }
  return tb;
}

StSimDap *
st_dap_testbed_add_probe_checked (StDapTestbed *tb, const char *serial, const StSimDapConfig *config)
{
  g_autoptr(GError) error = NULL;
  StSimDap *sim = st_dap_testbed_add_probe (tb, serial, config, &error);
  g_assert_no_error (error);
  g_assert_nonnull (sim);
  return sim;
}

void
st_dap_testbed_free (StDapTestbed *tb)
{
  if (tb == NULL)
    return;
  for (guint i = 0; i < tb->probes->len; i++)
    {
      StDapProbe *p = tb->probes->pdata[i];
      umockdev_testbed_detach_ioctl (tb->testbed, p->devnode, NULL);
    }
  /* Stops umockdev's worker thread; after it nobody touches the probes. */
  g_clear_object (&tb->testbed);
  g_ptr_array_unref (tb->probes);
  g_free (tb);
}
