/* For backend implementations only: construction of the backends that
 * st_backend_new() dispatches to. */
#pragma once

#include "st-backend.h"

G_BEGIN_DECLS

/* Sets the common fields (@params NULL: defaults). */
void st_backend_init (StBackend *self, const StBackendClass *klass, const char *port,
                      const StLinkParams *params, GCancellable *cancellable);

/* The agent protocol over the serial port @path. */
StBackend *st_agent_backend_new_serial (const char *port, const char *path,
                                        const StLinkParams *params,
                                        GCancellable *cancellable, GError **error);
/* The same agent backend over a loopback to an in-process simulated device;
 * @spec is "NAME" or "NAME?key=value&...". */
StBackend *st_agent_backend_new_sim (const char *port, const char *spec,
                                     const StLinkParams *params,
                                     GCancellable *cancellable, GError **error);

G_END_DECLS
