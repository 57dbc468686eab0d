/* A child process for test-dapsim: opens the CMSIS-DAP probe with the serial
 * given through libusb, switches the target to SWD and prints its DPIDR and
 * the first word of its uid. Exit 1 on any error. */
#include <glib.h>
#include <stdio.h>

#include "dap-usb-host.h"

static gboolean
cmd (DapUsb *usb, const guint8 *req, gsize len, guint8 *resp, gsize need)
{
  gsize n = dap_usb_xfer (usb, req, len, resp, 512);
  return n >= need && resp[0] == req[0];
}

static guint32
word (const guint8 *p)
{
  return (guint32) p[0] | (guint32) p[1] << 8 | (guint32) p[2] << 16 | (guint32) p[3] << 24;
}

int
main (int argc, char **argv)
{
  if (argc != 2)
    {
      g_printerr ("usage: %s SERIAL\n", argv[0]);
      return 2;
    }
  g_autoptr(GError) error = NULL;
  DapUsb usb;
  if (!dap_usb_open (&usb, argv[1], &error))
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }
  guint8 resp[512];
  const guint8 connect[] = { 0x02, 0x01 };
  const guint8 seq[] = { 0x12, 136, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x9e, 0xe7,
                         0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00 };
  /* DPIDR; ABORT; SELECT 0; power-up; CTRL/STAT twice; CSW; TAR uid; DRW. */
  const guint8 xfer[] = { 0x05, 0x00, 9,
                          0x02,
                          0x00, 0x1e, 0, 0, 0,
                          0x08, 0, 0, 0, 0,
                          0x04, 0, 0, 0, 0x50,
                          0x06, 0x06,
                          0x01, 0x52, 0x00, 0x00, 0x23,
                          0x05, 0x10, 0x7a, 0xff, 0x1f,
                          0x0f };
  gboolean ok = cmd (&usb, connect, sizeof connect, resp, 2) && resp[1] == 1 &&
                cmd (&usb, seq, sizeof seq, resp, 2) && resp[1] == 0 &&
                cmd (&usb, xfer, sizeof xfer, resp, 3 + 4 * 4) && resp[1] == 9 && resp[2] == 1;
  if (ok)
    printf ("DPIDR 0x%08x UID0 0x%08x\n", word (resp + 3), word (resp + 15));
  else
    g_printerr ("the probe did not answer as a CMSIS-DAP probe with a target\n");
  dap_usb_close (&usb);
  return ok ? 0 : 1;
}
