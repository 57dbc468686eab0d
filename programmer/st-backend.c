/* The backend table, the one list of backends (st-backend.h), and what
 * is read from it: port parsing, the port syntax help, the capabilities.
 * The vtable dispatch is st-backend-dispatch.c. */
#include "st-backend.h"

#include <string.h>

#include "st-backend-private.h"
#include "st-error.h"

/* The table: the one list of backends. A port with no scheme is a serial
 * device path for the first entry, the agent backend. A station built
 * without the simulator (meson -Dsimulator=false) has no 'sim' entry. */
static const StBackendDescriptor *const st_backends[] = {
  &st_backend_agent,
#ifdef ST_HAVE_SIMULATOR
  &st_backend_sim,
#endif
  &st_backend_stm32_rom,
  &st_backend_cmsis_dap,
  NULL,
};

/* The scheme of the backend left out of a build without the simulator. */
#define ST_BACKEND_SIM_SCHEME "sim"

const StBackendDescriptor *const *
st_backend_get_descriptors (void)
{
  return st_backends;
}

const StBackendDescriptor *
st_backend_lookup_scheme (const char *scheme)
{
  g_return_val_if_fail (scheme != NULL, NULL);
  for (gsize i = 0; st_backends[i] != NULL; i++)
    {
      if (g_strcmp0 (st_backends[i]->scheme, scheme) == 0)
        return st_backends[i];
    }
  return NULL;
}

gchar *
st_backend_get_port_help (void)
{
  GString *help = g_string_new (NULL);
  int width = (int) strlen ("PATH");
  for (gsize i = 0; st_backends[i] != NULL; i++)
    width = MAX (width, (int) strlen (st_backends[i]->usage));
  for (gsize i = 0; st_backends[i] != NULL; i++)
    g_string_append_printf (help, "  %-*s  %s\n", width, st_backends[i]->usage,
                            st_backends[i]->description);
  g_string_append_printf (help, "  %-*s  a serial device: the same as %s:PATH\n", width, "PATH",
                          st_backends[0]->scheme);
  return g_string_free (help, FALSE);
}

/* "agent:PATH, stm32-rom:PATH, ... or a serial device path". */
static gchar *
st_backend_usage_list (void)
{
  GString *list = g_string_new (NULL);
  for (gsize i = 0; st_backends[i] != NULL; i++)
    g_string_append_printf (list, "%s, ", st_backends[i]->usage);
  g_string_append (list, "or a serial device path");
  return g_string_free (list, FALSE);
}

/* "scheme" of "scheme:rest" when the scheme looks like one (letters,
 * digits, '-'), else NULL. */
static gchar *
st_backend_port_scheme (const char *port, const char **rest)
{
  const char *colon = strchr (port, ':');
  if (colon == NULL || colon == port)
    return NULL;
  for (const char *p = port; p < colon; p++)
    {
      if (!g_ascii_isalnum (*p) && *p != '-' && *p != '_')
        return NULL;
    }
  *rest = colon + 1;
  return g_strndup (port, (gsize) (colon - port));
}

StBackend *
st_backend_new (const char *port, const StLinkParams *params, GCancellable *cancellable,
                GError **error)
{
  const char *rest = NULL;

  if (port == NULL || *port == '\0')
    {
      g_autofree gchar *list = st_backend_usage_list ();
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "no programmer port given; use %s", list);
      return NULL;
    }
  g_autofree gchar *scheme = st_backend_port_scheme (port, &rest);
  if (scheme == NULL)
    return st_backends[0]->new (port, port, params, cancellable, error);
  const StBackendDescriptor *d = st_backend_lookup_scheme (scheme);
  if (d == NULL && g_strcmp0 (scheme, ST_BACKEND_SIM_SCHEME) == 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                   "port '%s': this station was built without the simulator "
                   "(meson -Dsimulator=true builds it)", port);
      return NULL;
    }
  if (d == NULL)
    {
      g_autofree gchar *list = st_backend_usage_list ();
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                   "unknown programmer backend '%s' in port '%s'; use %s", scheme, port, list);
      return NULL;
    }
  if (d->needs_path && *rest == '\0')
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "port '%s' names nothing after '%s:'; use e.g. %s", port, d->scheme,
                   d->example);
      return NULL;
    }
  return d->new (port, rest, params, cancellable, error);
}

StBackendCaps
st_backend_get_capabilities (StBackend *self)
{
  g_return_val_if_fail (self != NULL && self->descriptor != NULL, 0);
  return self->descriptor->capabilities;
}

gboolean
st_backend_has_capability (StBackend *self, StBackendCaps caps)
{
  g_return_val_if_fail (caps != 0, FALSE);
  return (st_backend_get_capabilities (self) & caps) == caps;
}
