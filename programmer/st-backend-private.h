/* For backend implementations only: the descriptors that the table of
 * st-backend.c lists, and what their constructors share. */
#pragma once

#include "st-backend.h"
#include "st-transport.h"

G_BEGIN_DECLS

/* Each backend exports one descriptor (st-backend.h); st-backend.c lists
 * them in its table, the one list of backends. */
extern const StBackendDescriptor st_backend_agent;       /* st-agent-backend.c */
extern const StBackendDescriptor st_backend_stm32_rom;   /* st-stm32-rom.c */
extern const StBackendDescriptor st_backend_cmsis_dap;   /* st-cmsis-dap.c */
#ifdef ST_HAVE_SIMULATOR
extern const StBackendDescriptor st_backend_sim;         /* devsim/st-sim-backend.c */
#endif

/* Sets the common fields (@params NULL: defaults). */
void st_backend_init (StBackend *self, const StBackendClass *klass,
                      const StBackendDescriptor *descriptor, const char *port,
                      const StLinkParams *params, GCancellable *cancellable);

/* What every agent backend does (agent:, sim:): st_agent_backend_new()'s
 * vtable. */
#define ST_AGENT_BACKEND_CAPS \
  (ST_BACKEND_CAP_KEYGEN | ST_BACKEND_CAP_PUT_KEY | ST_BACKEND_CAP_SIGN \
   | ST_BACKEND_CAP_COMMIT | ST_BACKEND_CAP_READ_BACK)

/* Where the agent backend's bytes go: @open makes a transport (owned by the
 * backend until it closes) for each open of the port; @free frees @data
 * with the backend (may be NULL). */
typedef struct {
  StTransport *(*open) (gpointer data, StBackend *backend, GError **error);
  void (*free) (gpointer data);
} StAgentTransportOps;

/* The agent protocol (docs/agent-protocol.md) over the transports that
 * @ops makes from @data (owned). */
StBackend *st_agent_backend_new (const char *port, const StBackendDescriptor *descriptor,
                                 const StLinkParams *params, GCancellable *cancellable,
                                 const StAgentTransportOps *ops, gpointer data);

G_END_DECLS
