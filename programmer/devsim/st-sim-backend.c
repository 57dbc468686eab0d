/* The 'sim' backend: the agent backend (st-agent-backend.c) over a
 * loopback transport into an in-process simulated device socket
 * (st-simdev.h), for `station bench`, the demo and the tests. Built only
 * with meson -Dsimulator=true (the default); a station built without it
 * has no 'sim' scheme (st-backend.c). */
#include <string.h>

#include "st-backend-private.h"
#include "st-error.h"
#include "st-loopback.h"
#include "st-simdev.h"

/* The socket lives as long as the backend, so that a close and a re-open
 * see the same device (as a real socket would). */
typedef struct {
  StSimSocketConfig config;
  gchar *model;
  gchar *state_file;
  StSimSocket *socket;        /* made at the first open */
} StSimBackendData;

static void
st_sim_backend_data_free (gpointer data)
{
  StSimBackendData *self = data;
  g_clear_pointer (&self->socket, st_sim_socket_free);
  g_free (self->model);
  g_free (self->state_file);
  g_free (self);
}

static StTransport *
st_sim_backend_open (gpointer data, StBackend *backend, GError **error)
{
  StSimBackendData *self = data;
  if (self->socket == NULL)
    {
      self->socket = st_sim_socket_new (&self->config, error);
      if (self->socket == NULL)
        {
          g_prefix_error (error, "%s: ", backend->port);
          return NULL;
        }
    }
  return st_loopback_new (self->socket, backend->port);
}

static const StAgentTransportOps st_sim_backend_ops = {
  .open = st_sim_backend_open,
  .free = st_sim_backend_data_free,
};

static gboolean
st_sim_parse_uint (const char *key, const char *value, guint64 max, guint64 *out,
                   GError **error)
{
  g_autoptr(GError) local = NULL;
  if (!g_ascii_string_to_unsigned (value, 10, 0, max, out, &local))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "sim option %s: %s", key,
                   local->message);
      return FALSE;
    }
  return TRUE;
}

static gboolean
st_sim_parse_option (StSimBackendData *self, const char *key, const char *value, GError **error)
{
  guint64 v = 0;
  StSimSocketConfig *config = &self->config;

  if (g_strcmp0 (key, "units") == 0)
    {
      if (!st_sim_parse_uint (key, value, G_MAXUINT, &v, error))
        return FALSE;
      config->units = (guint) v;
    }
  else if (g_strcmp0 (key, "seed") == 0)
    {
      if (!st_sim_parse_uint (key, value, G_MAXUINT32, &v, error))
        return FALSE;
      config->seed = (guint32) v;
    }
  else if (g_strcmp0 (key, "algorithms") == 0)
    {
      if (!st_sim_parse_uint (key, value, 0x07, &v, error))
        return FALSE;
      config->algorithms = (guint8) v;
    }
  else if (g_strcmp0 (key, "matter") == 0)
    {
      /* matter=0: an older firmware without extension matter-1. */
      if (!st_sim_parse_uint (key, value, 1, &v, error))
        return FALSE;
      config->no_matter = v == 0;
    }
  else if (g_strcmp0 (key, "fault_unit") == 0 || g_strcmp0 (key, "fault-unit") == 0)
    {
      if (!st_sim_parse_uint (key, value, G_MAXUINT, &v, error))
        return FALSE;
      config->fault_unit = (guint) v;
    }
  else if (g_strcmp0 (key, "swap_delay_ms") == 0 || g_strcmp0 (key, "swap-delay-ms") == 0)
    {
      if (!st_sim_parse_uint (key, value, 3600 * 1000, &v, error))
        return FALSE;
      config->swap_delay_ms = (guint) v;
    }
  else if (g_strcmp0 (key, "model") == 0)
    {
      if (*value == '\0' || strlen (value) > 64 || !g_utf8_validate (value, -1, NULL))
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "sim option model: '%s' is not 1 to 64 bytes of UTF-8", value);
          return FALSE;
        }
      g_free (self->model);
      self->model = g_strdup (value);
      config->model = self->model;
    }
  else if (g_strcmp0 (key, "state_file") == 0 || g_strcmp0 (key, "state-file") == 0
           || g_strcmp0 (key, "state") == 0)
    {
      g_free (self->state_file);
      self->state_file = g_strdup (value);
      config->state_file = self->state_file;
    }
  else if (g_strcmp0 (key, "faults") == 0 || g_strcmp0 (key, "fault") == 0)
    {
      g_auto(GStrv) names = g_strsplit (value, ",", -1);
      for (guint i = 0; names[i] != NULL; i++)
        {
          if (names[i][0] == '\0')
            continue;
          guint32 bit = st_sim_fault_from_string (names[i]);
          if (bit == 0)
            {
              g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "sim option faults: unknown fault '%s'", names[i]);
              return FALSE;
            }
          config->faults |= bit;
        }
    }
  else
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "unknown sim option '%s' (known: units, seed, model, algorithms, matter, "
                   "faults, fault_unit, swap_delay_ms, state_file)", key);
      return FALSE;
    }
  return TRUE;
}

/* "sim:NAME" or "sim:NAME?key=value&...". */
static StBackend *
st_sim_backend_new (const char *port, const char *spec, const StLinkParams *params,
                    GCancellable *cancellable, GError **error)
{
  StSimBackendData *self = g_new0 (StSimBackendData, 1);
  g_autoptr(StBackend) backend = st_agent_backend_new (port, &st_backend_sim, params,
                                                       cancellable, &st_sim_backend_ops, self);
  const char *query = strchr (spec, '?');
  g_autofree gchar *name = query != NULL ? g_strndup (spec, (gsize) (query - spec))
                                         : g_strdup (spec);
  /* Different names give different devices unless a seed is given. */
  self->config.seed = g_str_hash (name);
  if (query != NULL && query[1] != '\0')
    {
      g_auto(GStrv) pairs = g_strsplit (query + 1, "&", -1);
      for (guint i = 0; pairs[i] != NULL; i++)
        {
          if (pairs[i][0] == '\0')
            continue;
          const char *eq = strchr (pairs[i], '=');
          if (eq == NULL)
            {
              g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "sim option '%s' has no value; use key=value", pairs[i]);
              g_prefix_error (error, "port '%s': ", port);
              return NULL;
            }
          g_autofree gchar *key = g_strndup (pairs[i], (gsize) (eq - pairs[i]));
          if (!st_sim_parse_option (self, key, eq + 1, error))
            {
              g_prefix_error (error, "port '%s': ", port);
              return NULL;
            }
        }
    }
  return g_steal_pointer (&backend);
}

const StBackendDescriptor st_backend_sim = {
  .scheme = "sim",
  .usage = "sim:NAME[?OPTIONS]",
  .description = "an in-process simulated agent device (bench, demo, tests)",
  .example = "sim:demo",
  .needs_path = FALSE,
  .capabilities = ST_AGENT_BACKEND_CAPS,
  .new = st_sim_backend_new,
};
