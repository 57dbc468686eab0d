/* Loopback transport for the in-process `sim:` backend: what the station
 * writes goes into a simulated device socket, the device's answer bytes are
 * queued for the next reads. */
#pragma once

#include "st-transport.h"
#include "st-simdev.h"

G_BEGIN_DECLS

/* Bytes queued from the device beyond which further answer bytes are lost,
 * as a UART's receive buffer would overflow. */
#define ST_LOOPBACK_MAX_PENDING (64 * 1024)

/* @socket is borrowed and must outlive the transport. A read with nothing
 * queued fails with ST_ERROR_TIMED_OUT at once: the simulated device has
 * answered everything it will answer by the time a write returns. */
StTransport *st_loopback_new (StSimSocket *socket, const char *name);

G_END_DECLS
