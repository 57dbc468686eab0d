/* stationd: the station service. It alone opens the HSM, the database and
 * the device ports; `station` and `station-gui` are its clients over D-Bus
 * (stationd(8), docs/architecture.md).
 *
 *   stationd [--home DIR] [--config FILE] [--system | --bus ADDRESS | --listen ADDRESS]
 *            [--idle-logout S]
 */
#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <locale.h>
#include <sys/file.h>
#include <string.h>
#include <unistd.h>

#include "st-build-config.h"
#include "st-config.h"
#include "st-engine.h"
#include "st-error.h"
#include "st-i18n.h"
#include "st-private-files.h"
#include "st-recover.h"
#include "st-service.h"
#include "st-util.h"

#define ST_STATIOND_DEFAULT_HOME "/var/lib/station"
/* The systemd credential that unlocks an unattended line at start. */
#define ST_STATIOND_PIN_CREDENTIAL "hsm-pin"

static gboolean
st_on_quit (gpointer data)
{
  g_message ("stopping: a running line finishes its units in flight or fails them safely");
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

static gboolean st_name_lost = FALSE;

static void
st_on_name_lost (GDBusConnection *connection, const char *name, gpointer data)
{
  g_printerr (_("stationd: cannot own %s on the bus: another service runs, or the bus policy "
              "(org.station.Station1.conf) does not let this user own it\n"), name);
  st_name_lost = TRUE;
  g_main_loop_quit (data);
}

/* One service per home: an exclusive lock on HOME/stationd.lock for the
 * service's life (two services on one database would both hand out
 * serials). Returns the lock's descriptor, or -1. */
static int
st_lock_home (const char *home, GError **error)
{
  /* made 0700; one others may write to is refused (st-private-files.h) */
  if (!st_dir_ensure_private (home, error))
    return -1;
  g_autofree gchar *path = g_build_filename (home, "stationd.lock", NULL);
  int fd = g_open (path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    {
      int e = errno;
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, _("cannot open %s: %s"), path, g_strerror (e));
      return -1;
    }
  if (flock (fd, LOCK_EX | LOCK_NB) != 0)
    {
      int e = errno;
      close (fd);
      g_set_error (error, ST_ERROR, ST_ERROR_BUSY,
                   _("another stationd already serves %s (%s): stop it first, or give this one "
                   "another --home"), home, g_strerror (e));
      return -1;
    }
  return fd;
}

int
main (int argc, char **argv)
{
  st_process_setup ();
  st_i18n_init ();
  /* the service itself, run again to prove an SO PIN (st-recover.h) */
  if (argc > 1 && g_strcmp0 (argv[1], ST_RECOVER_CHECK_OPTION) == 0)
    return st_recover_check_so_pin_main (argc, argv);
  g_autofree gchar *home = NULL, *config = NULL, *bus = NULL, *listen = NULL;
  gboolean system = FALSE, version = FALSE;
  gint idle = 0;
  /* translated here: the default folder is no part of the message */
  g_autofree gchar *home_help = g_strdup_printf (_("State folder (default %s, or $STATION_HOME)"),
                                                 ST_STATIOND_DEFAULT_HOME);
  const GOptionEntry entries[] = {
    { "home", 0, 0, G_OPTION_ARG_FILENAME, &home, home_help, "DIR" },
    { "config", 0, 0, G_OPTION_ARG_FILENAME, &config, N_("Configuration file (default HOME/station.conf)"), "FILE" },
    { "system", 0, 0, G_OPTION_ARG_NONE, &system, N_("Own org.station.Station1 on the system bus"), NULL },
    { "bus", 0, 0, G_OPTION_ARG_STRING, &bus, N_("Own it on the bus at ADDRESS"), "ADDRESS" },
    { "listen", 0, 0, G_OPTION_ARG_STRING, &listen, N_("Serve peer-to-peer clients at ADDRESS (default unix:path=HOME/stationd.sock)"), "ADDRESS" },
    { "idle-logout", 0, 0, G_OPTION_ARG_INT, &idle, N_("End operator sessions after S seconds without a call (default: the station's idle-logout)"), "S" },
    { "version", 0, 0, G_OPTION_ARG_NONE, &version, N_("Print the version"), NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new (N_("- the station service"));
  g_option_context_set_translation_domain (ctx, GETTEXT_PACKAGE);
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_autoptr(GError) error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      g_printerr ("stationd: %s\n", error->message);
      return 2;
    }
  if (version)
    {
      g_print ("stationd %s\n", ST_VERSION);
      return 0;
    }
  if (idle < 0 || (system && bus != NULL))
    {
      g_printerr (_("stationd: --idle-logout takes seconds >= 0; give --system or --bus, not both\n"));
      return 2;
    }
  if (home == NULL)
    home = g_strdup (g_getenv ("STATION_HOME") != NULL ? g_getenv ("STATION_HOME")
                                                      : ST_STATIOND_DEFAULT_HOME);
  /* what the service writes is its own */
  umask (0077);
  int lock_fd = st_lock_home (home, &error);
  if (lock_fd < 0)
    {
      g_printerr ("stationd: %s\n", error->message);
      return 2;
    }
  g_autoptr(StEngine) engine = st_engine_new (home, config, &error);
  if (engine == NULL)
    {
      g_printerr ("stationd: %s\n", error->message);
      return 2;
    }
  /* an unattended line: systemd's LoadCredential=hsm-pin:FILE */
  const char *creds = g_getenv ("CREDENTIALS_DIRECTORY");
  if (creds != NULL)
    {
      g_autofree gchar *pin_path = g_build_filename (creds, ST_STATIOND_PIN_CREDENTIAL, NULL);
      if (g_file_test (pin_path, G_FILE_TEST_EXISTS)
          && !st_engine_unlock_from_file (engine, pin_path, &error))
        {
          g_printerr (_("stationd: the HSM stays locked: %s\n"), error->message);
          g_clear_error (&error);
        }
    }

  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(StService) service = st_service_new (engine, (guint) idle);
  g_autoptr(GDBusConnection) connection = NULL;
  g_autofree gchar *socket_path = NULL;
  if (system || bus != NULL)
    {
      connection = system ? g_bus_get_sync (G_BUS_TYPE_SYSTEM, NULL, &error)
                          : g_dbus_connection_new_for_address_sync (
                              bus, G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT
                                   | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                              NULL, NULL, &error);
      if (connection == NULL
          || !st_service_own_name (service, connection, G_CALLBACK (st_on_name_lost), loop, &error))
        {
          g_printerr (_("stationd: cannot reach the bus: %s\n"), error->message);
          return 2;
        }
    }
  if (listen == NULL && !system && bus == NULL)
    {
      socket_path = g_build_filename (home, ST_SERVICE_SOCKET_NAME, NULL);
      /* the home's lock is ours: a socket left there is stale */
      g_unlink (socket_path);
      listen = g_strdup_printf ("unix:path=%s", socket_path);
    }
  if (listen != NULL && !st_service_listen (service, listen, &error))
    {
      g_printerr ("stationd: %s\n", error->message);
      return 2;
    }
  /* An explicit --listen socket is for other users' clients (a test of the
   * trust boundary, a line without a system bus): anyone may connect, and
   * what a client may do is what its operator's login allows. */
  if (socket_path == NULL && listen != NULL && g_str_has_prefix (listen, "unix:path="))
    g_chmod (listen + strlen ("unix:path="), 0666);
  g_unix_signal_add (SIGTERM, st_on_quit, loop);
  g_unix_signal_add (SIGINT, st_on_quit, loop);
  g_message ("serving %s%s%s (%s, HSM %s)", home, listen != NULL ? " at " : " on the bus",
             listen != NULL ? listen : "", st_engine_is_configured (engine) ? "set up" : "not set up yet",
             st_engine_is_unlocked (engine) ? "unlocked" : "locked");
  g_main_loop_run (loop);
  g_clear_pointer (&service, st_service_free);
  g_clear_pointer (&engine, st_engine_free);
  if (socket_path != NULL)
    g_unlink (socket_path);
  close (lock_fd);
  return st_name_lost ? 2 : 0;
}
