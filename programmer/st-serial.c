/* Serial port transport: raw termios, non-blocking I/O with poll(). */
#include "st-transport.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "st-error.h"

typedef struct {
  StTransport parent;
  int fd;
} StSerial;

gboolean
st_serial_baud_to_speed (guint baud, guint *speed, GError **error)
{
  static const struct { guint baud; speed_t speed; } rates[] = {
    { 1200, B1200 }, { 2400, B2400 }, { 4800, B4800 }, { 9600, B9600 },
    { 19200, B19200 }, { 38400, B38400 }, { 57600, B57600 },
    { 115200, B115200 }, { 230400, B230400 }, { 460800, B460800 },
    { 500000, B500000 }, { 576000, B576000 }, { 921600, B921600 },
    { 1000000, B1000000 }, { 1152000, B1152000 }, { 1500000, B1500000 },
    { 2000000, B2000000 }, { 3000000, B3000000 }, { 4000000, B4000000 },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (rates); i++)
    {
      if (rates[i].baud == baud)
        {
          *speed = rates[i].speed;
          return TRUE;
        }
    }
  g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
               "baud rate %u is not a standard serial rate; use e.g. 115200", baud);
  return FALSE;
}

/* Milliseconds left until @deadline_us, rounded up, at least 0. */
static int
st_serial_ms_left (gint64 deadline_us)
{
  gint64 left = deadline_us - g_get_monotonic_time ();
  if (left <= 0)
    return 0;
  left = (left + 999) / 1000;
  return left > G_MAXINT ? G_MAXINT : (int) left;
}

/* Waits for @events on the port or for the cancellable. Returns 1 when the
 * port is ready, 0 on time-out, -1 with @error set otherwise. */
static int
st_serial_wait (StSerial *self, short events, gint64 deadline_us,
                GCancellable *cancellable, short *revents, GError **error)
{
  StError code = (events & POLLOUT) ? ST_ERROR_WRITE : ST_ERROR_READ;
  for (;;)
    {
      struct pollfd pfd[2] = { { .fd = self->fd, .events = events } };
      nfds_t nfds = 1;
      GPollFD cancel_fd = { .fd = -1 };
      if (cancellable != NULL && g_cancellable_make_pollfd (cancellable, &cancel_fd))
        {
          pfd[1].fd = cancel_fd.fd;
          pfd[1].events = POLLIN;
          nfds = 2;
        }
      int rc = poll (pfd, nfds, st_serial_ms_left (deadline_us));
      int saved = errno;
      if (nfds == 2)
        g_cancellable_release_fd (cancellable);
      if (cancellable != NULL && g_cancellable_is_cancelled (cancellable))
        {
          g_set_error (error, ST_ERROR, ST_ERROR_CANCELLED,
                       "%s: the operation was cancelled", self->parent.name);
          return -1;
        }
      if (rc < 0)
        {
          if (saved == EINTR)
            continue;
          g_set_error (error, ST_ERROR, code, "%s: poll failed: %s",
                       self->parent.name, g_strerror (saved));
          return -1;
        }
      if (rc == 0 || pfd[0].revents == 0)
        {
          if (st_serial_ms_left (deadline_us) > 0)
            continue;
          return 0;
        }
      *revents = pfd[0].revents;
      if (pfd[0].revents & POLLNVAL)
        {
          g_set_error (error, ST_ERROR, code, "%s: the port is not open",
                       self->parent.name);
          return -1;
        }
      return 1;
    }
}

static gboolean
st_serial_write_all (StTransport *transport, const guint8 *data, gsize len,
                     gint64 deadline_us, GCancellable *cancellable, GError **error)
{
  StSerial *self = (StSerial *) transport;
  gsize done = 0;
  if (self->fd < 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, "%s: the port is closed", transport->name);
      return FALSE;
    }
  while (done < len)
    {
      ssize_t n = write (self->fd, data + done, len - done);
      if (n > 0)
        {
          done += (gsize) n;
          continue;
        }
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
        {
          int saved = errno;
          g_set_error (error, ST_ERROR, ST_ERROR_WRITE,
                       "%s: writing to the device failed: %s; check that it is still connected",
                       transport->name, g_strerror (saved));
          return FALSE;
        }
      short revents = 0;
      int rc = st_serial_wait (self, POLLOUT, deadline_us, cancellable, &revents, error);
      if (rc < 0)
        return FALSE;
      if (rc == 0)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_TIMED_OUT,
                       "%s: timed out writing to the device (%" G_GSIZE_FORMAT " of %"
                       G_GSIZE_FORMAT " bytes sent)", transport->name, done, len);
          return FALSE;
        }
      if ((revents & (POLLERR | POLLHUP)) && !(revents & POLLOUT))
        {
          g_set_error (error, ST_ERROR, ST_ERROR_WRITE,
                       "%s: the device was disconnected while writing", transport->name);
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
st_serial_read (StTransport *transport, guint8 *buf, gsize max, gsize *n_read,
                gint64 deadline_us, GCancellable *cancellable, GError **error)
{
  StSerial *self = (StSerial *) transport;
  if (self->fd < 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_READ, "%s: the port is closed", transport->name);
      return FALSE;
    }
  short revents = 0;
  for (;;)
    {
      ssize_t n = read (self->fd, buf, max);
      if (n > 0)
        {
          *n_read = (gsize) n;
          return TRUE;
        }
      /* With VMIN = VTIME = 0 a terminal reads 0 bytes when nothing is
       * waiting; only after poll() said readable or hung up does 0 mean
       * that the device went away. */
      if (n == 0 && (revents & (POLLIN | POLLHUP | POLLERR)))
        {
          g_set_error (error, ST_ERROR, ST_ERROR_READ,
                       "%s: the device was disconnected; check the cable and the port",
                       transport->name);
          return FALSE;
        }
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
        {
          int saved = errno;
          g_set_error (error, ST_ERROR, ST_ERROR_READ,
                       "%s: reading from the device failed: %s; check that it is still connected",
                       transport->name, g_strerror (saved));
          return FALSE;
        }
      revents = 0;
      int rc = st_serial_wait (self, POLLIN, deadline_us, cancellable, &revents, error);
      if (rc < 0)
        return FALSE;
      if (rc == 0)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_TIMED_OUT,
                       "%s: no data from the device in time", transport->name);
          return FALSE;
        }
      /* POLLIN, POLLHUP or POLLERR: the next read() tells which. */
    }
}

static void
st_serial_discard_input (StTransport *transport)
{
  StSerial *self = (StSerial *) transport;
  if (self->fd >= 0)
    tcflush (self->fd, TCIFLUSH);
}

static void
st_serial_close (StTransport *transport)
{
  StSerial *self = (StSerial *) transport;
  if (self->fd >= 0)
    {
      ioctl (self->fd, TIOCNXCL);
      close (self->fd);
      self->fd = -1;
    }
}

static void
st_serial_free (StTransport *transport)
{
  g_free (transport);
}

static const StTransportClass st_serial_class = {
  .name = "serial",
  .write_all = st_serial_write_all,
  .read = st_serial_read,
  .discard_input = st_serial_discard_input,
  .close = st_serial_close,
  .free = st_serial_free,
};

StTransport *
st_serial_open (const char *path, guint baud, StParity parity, GError **error)
{
  guint speed = 0;
  struct termios tio;

  if (path == NULL || *path == '\0')
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA, "no serial port given");
      return NULL;
    }
  if (!st_serial_baud_to_speed (baud, &speed, error))
    {
      g_prefix_error (error, "%s: ", path);
      return NULL;
    }

  int fd = open (path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    {
      int saved = errno;
      StError code = ST_ERROR_READ;
      if (saved == ENOENT || saved == ENODEV || saved == ENXIO)
        code = ST_ERROR_NOT_FOUND;
      else if (saved == EACCES || saved == EPERM)
        code = ST_ERROR_PERMISSION_DENIED;
      else if (saved == EBUSY)
        code = ST_ERROR_BUSY;
      g_set_error (error, ST_ERROR, code, "cannot open serial port %s: %s%s", path,
                   g_strerror (saved),
                   code == ST_ERROR_PERMISSION_DENIED
                     ? " (is the user in the dialout group?)"
                     : code == ST_ERROR_NOT_FOUND ? " (is the programmer plugged in?)" : "");
      return NULL;
    }

  StSerial *self = g_new0 (StSerial, 1);
  self->fd = fd;
  st_transport_init (&self->parent, &st_serial_class, path);
  g_autoptr(StTransport) transport = &self->parent;

  if (!isatty (fd))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                   "%s is not a serial port", path);
      return NULL;
    }
  if (ioctl (fd, TIOCEXCL) != 0)
    {
      int saved = errno;
      g_set_error (error, ST_ERROR, ST_ERROR_BUSY,
                   "%s: cannot get exclusive use of the port: %s", path, g_strerror (saved));
      return NULL;
    }
  if (tcgetattr (fd, &tio) != 0)
    {
      int saved = errno;
      g_set_error (error, ST_ERROR, ST_ERROR_READ, "%s: tcgetattr failed: %s",
                   path, g_strerror (saved));
      return NULL;
    }
  cfmakeraw (&tio);
  tio.c_cflag &= ~(tcflag_t) (CSIZE | PARENB | PARODD | CSTOPB | CRTSCTS);
  tio.c_cflag |= CS8 | CLOCAL | CREAD;
  tio.c_iflag &= ~(tcflag_t) (IXON | IXOFF | IXANY | INPCK | ISTRIP);
  if (parity != ST_PARITY_NONE)
    {
      tio.c_cflag |= PARENB;
      if (parity == ST_PARITY_ODD)
        tio.c_cflag |= PARODD;
      tio.c_iflag |= INPCK;
    }
  tio.c_cc[VMIN] = 0;
  tio.c_cc[VTIME] = 0;
  cfsetispeed (&tio, (speed_t) speed);
  cfsetospeed (&tio, (speed_t) speed);
  if (tcsetattr (fd, TCSANOW, &tio) != 0)
    {
      int saved = errno;
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, "%s: cannot configure the port: %s",
                   path, g_strerror (saved));
      return NULL;
    }
  tcflush (fd, TCIOFLUSH);
  g_debug ("%s: opened at %u baud, 8%c1", path, baud,
           parity == ST_PARITY_NONE ? 'N' : parity == ST_PARITY_EVEN ? 'E' : 'O');
  return g_steal_pointer (&transport);
}
