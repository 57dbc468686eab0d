/* A CMSIS-DAP v2 probe over libusb bulk transfers (ARM CMSIS-DAP
 * specification, v2 "bulk" interface): finding the probe, and its commands,
 * one request packet out and one response packet in. Every response is
 * checked (command echo, length, status); device input is hostile.
 * programmer/README-cmsis-dap.md. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define ST_DAP_INFO 0x00
#define ST_DAP_CONNECT 0x02
#define ST_DAP_DISCONNECT 0x03
#define ST_DAP_TRANSFER_CONFIGURE 0x04
#define ST_DAP_TRANSFER 0x05
#define ST_DAP_TRANSFER_BLOCK 0x06
#define ST_DAP_SWJ_CLOCK 0x11
#define ST_DAP_SWJ_SEQUENCE 0x12

#define ST_DAP_OK 0x00
#define ST_DAP_ERROR 0xFF

/* Transfer request bits. */
#define ST_DAP_APNDP 0x01
#define ST_DAP_RNW 0x02
/* Transfer response: ACK in bits 0-2, protocol (parity) error in bit 3. */
#define ST_DAP_ACK_OK 1
#define ST_DAP_ACK_WAIT 2
#define ST_DAP_ACK_FAULT 4
#define ST_DAP_ACK_NONE 7
#define ST_DAP_PROTOCOL_ERROR 0x08

#define ST_DAP_PACKET_MAX 2048     /* hard maximum of what we accept from DAP_Info */
#define ST_DAP_SERIAL_MAX 127

typedef struct _StDapProbe StDapProbe;

typedef struct {
  guint64 n_packets;         /* request packets sent */
  guint64 bytes_tx, bytes_rx;
  guint64 n_retries;         /* transfers repeated after WAIT or FAULT */
} StDapStats;

/* Opens the probe with USB serial @serial; NULL or "" takes the only one
 * there is and refuses (NOT_FOUND, listing their serials) when there are
 * several. NOT_FOUND when none matches; PERMISSION_DENIED when the device
 * node may not be opened (udev rules, README-cmsis-dap.md). Reads DAP_Info
 * (packet size and count, SWD capability) and connects in SWD mode. */
StDapProbe *st_dap_probe_open (const char *serial, guint timeout_ms, GCancellable *cancellable,
                               GError **error);
void st_dap_probe_free (StDapProbe *probe);
gsize st_dap_probe_get_packet_size (StDapProbe *probe);
StDapStats *st_dap_probe_get_stats (StDapProbe *probe);

/* One command: @req (@req_len bytes, req[0] the command) out, the response
 * into @resp (at most @resp_max bytes); checks that it echoes the command
 * and is at least @min_len bytes long. */
gboolean st_dap_probe_command (StDapProbe *probe, const guint8 *req, gsize req_len,
                               guint8 *resp, gsize resp_max, gsize *resp_len, gsize min_len,
                               GError **error);
/* Commands whose answer is one status byte (DAP_OK). */
gboolean st_dap_probe_swj_clock (StDapProbe *probe, guint32 hz, GError **error);
/* @bits ones/zeros from @data, LSB first (1..256 bits). */
gboolean st_dap_probe_swj_sequence (StDapProbe *probe, guint bits, const guint8 *data, GError **error);
gboolean st_dap_probe_transfer_configure (StDapProbe *probe, guint8 idle_cycles, guint16 wait_retry,
                                          guint16 match_retry, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (StDapProbe, st_dap_probe_free)

G_END_DECLS
