/* Host side of the agent protocol (docs/agent-protocol.md): framing,
 * sequence numbers, time-outs, retries and status codes over a transport. */
#pragma once

#include "st-backend.h"
#include "st-error.h"
#include "st-transport.h"

G_BEGIN_DECLS

/* Largest object the station writes or reads in one slot or key. */
#define ST_AGENT_OBJECT_MAX (16 * 1024)
/* Largest signature SIGN may return. */
#define ST_AGENT_SIGNATURE_MAX 512
/* Bytes before the chunk in PUT_KEY and WRITE requests. */
#define ST_AGENT_CHUNK_HEADER 5

typedef struct _StAgentLink StAgentLink;

/* @transport is owned by the link. @backend is borrowed: its params (for
 * the retries), cancellable, counters and last_status are used. */
StAgentLink *st_agent_link_new (StTransport *transport, StBackend *backend);
void st_agent_link_free (StAgentLink *link);

/* Sends one request and waits for its response, resending the same body
 * (same seq) on time-out or damage up to @retries times, each attempt
 * waiting @timeout_ms. On status OK returns the result (the payload after
 * the status byte, possibly empty); on another status fails with the
 * mapped ST_ERROR and the status and op names in the message. */
GBytes *st_agent_link_transact (StAgentLink *link, guint8 op, const guint8 *payload,
                                gsize len, guint timeout_ms, guint retries,
                                GError **error);

/* Parses a HELLO result (the TLV list). Unknown types are ignored; uid and
 * model are required; on failure @info is left in an unspecified state. */
gboolean st_agent_parse_hello (const guint8 *data, gsize len, StDeviceInfo *info,
                               GError **error);

/* "HELLO", "KEYGEN", ...; NULL for unknown ops. */
const char *st_agent_op_to_string (guint8 op);
/* "OK", "BAD_REQUEST", ...; NULL for unknown codes. */
const char *st_agent_status_to_string (guint8 status);
/* The ST_ERROR code that a non-OK status maps to (st-backend.h). */
StError st_agent_status_to_error (guint8 status);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (StAgentLink, st_agent_link_free)

G_END_DECLS
