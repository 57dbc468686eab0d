#include "st-dbus.h"

#include "st-error.h"

static const char *const st_dbus_error_names[ST_ERROR_LAST] = {
  [ST_ERROR_INTERNAL] = "Internal",
  [ST_ERROR_NOT_FOUND] = "NotFound",
  [ST_ERROR_NOT_SUPPORTED] = "NotSupported",
  [ST_ERROR_INVALID_DATA] = "InvalidData",
  [ST_ERROR_READ] = "Read",
  [ST_ERROR_WRITE] = "Write",
  [ST_ERROR_TIMED_OUT] = "TimedOut",
  [ST_ERROR_BUSY] = "Busy",
  [ST_ERROR_AUTH_FAILED] = "AuthFailed",
  [ST_ERROR_PERMISSION_DENIED] = "PermissionDenied",
  [ST_ERROR_VERIFY_FAILED] = "VerifyFailed",
  [ST_ERROR_CANCELLED] = "Cancelled",
  [ST_ERROR_HSM_LOCKED] = "HsmLocked",
};

void
st_dbus_register_errors (void)
{
  static gsize once = 0;
  if (!g_once_init_enter (&once))
    return;
  for (guint code = 0; code < ST_ERROR_LAST; code++)
    {
      if (st_dbus_error_names[code] == NULL)
        continue;
      g_autofree gchar *name = g_strconcat (ST_DBUS_ERROR_PREFIX, st_dbus_error_names[code], NULL);
      g_dbus_error_register_error (ST_ERROR, (gint) code, name);
    }
  g_once_init_leave (&once, 1);
}

void
st_dbus_error_clean (GError *error)
{
  if (error == NULL)
    return;
  g_dbus_error_strip_remote_error (error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CLOSED)
      || g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_NO_REPLY)
      || g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_DISCONNECTED))
    {
      gchar *message = g_strdup_printf ("the station service went away (%s): see its log "
                                        "(journalctl -u stationd, or the demo's terminal); "
                                        "what it recorded is kept", error->message);
      g_free (error->message);
      error->message = message;
    }
}
