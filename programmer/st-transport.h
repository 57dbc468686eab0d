/* Transports: a byte pipe with deadlines under the link protocols
 * (docs/architecture.md, Programmer backends).
 *
 * Deadlines are absolute times of g_get_monotonic_time() (microseconds).
 * Every call honours @cancellable (ST_ERROR_CANCELLED). A read that sees no
 * byte before its deadline fails with ST_ERROR_TIMED_OUT and *n_read = 0;
 * a device that went away fails with ST_ERROR_READ / ST_ERROR_WRITE, the
 * port named in the message. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _StTransport StTransport;

typedef struct {
  const char *name;
  gboolean (*write_all) (StTransport *self, const guint8 *data, gsize len,
                         gint64 deadline_us, GCancellable *cancellable, GError **error);
  gboolean (*read) (StTransport *self, guint8 *buf, gsize max, gsize *n_read,
                    gint64 deadline_us, GCancellable *cancellable, GError **error);
  /* Drops input that was received but not read yet. */
  void (*discard_input) (StTransport *self);
  void (*close) (StTransport *self);
  void (*free) (StTransport *self);
} StTransportClass;

struct _StTransport {
  const StTransportClass *klass;
  gchar *name;                /* the port, for messages */
};

typedef enum {
  ST_PARITY_NONE,
  ST_PARITY_EVEN,
  ST_PARITY_ODD,
} StParity;

/* Writes all of @data before @deadline_us. */
gboolean st_transport_write_all (StTransport *self, const guint8 *data, gsize len,
                                 gint64 deadline_us, GCancellable *cancellable,
                                 GError **error);
/* Reads what is available, 1..@max bytes, waiting until @deadline_us for
 * the first byte. */
gboolean st_transport_read (StTransport *self, guint8 *buf, gsize max, gsize *n_read,
                            gint64 deadline_us, GCancellable *cancellable,
                            GError **error);
void st_transport_discard_input (StTransport *self);
void st_transport_close (StTransport *self);
void st_transport_free (StTransport *self);
const char *st_transport_get_name (StTransport *self);

/* For implementations: sets the common fields. */
void st_transport_init (StTransport *self, const StTransportClass *klass, const char *name);

/* A serial port in raw mode: 8 data bits, @parity, 1 stop bit, no flow
 * control, CLOCAL|CREAD, opened exclusively (TIOCEXCL) and close-on-exec. */
StTransport *st_serial_open (const char *path, guint baud, StParity parity, GError **error);
/* termios speed constant for @baud; FALSE and an error naming the rate when
 * it is not a standard rate. */
gboolean st_serial_baud_to_speed (guint baud, guint *speed, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (StTransport, st_transport_free)

G_END_DECLS
