/* The production path: the service on a message bus, as on the system bus.
 * A private dbus-daemon runs with the system bus's default policy (Debian's
 * system.conf: deny own, deny method calls) plus the station's own policy
 * file (station/data/org.station.Station1.conf), as installed. stationd
 * owns org.station.Station1 there; clients run as nobody and reach it by
 * name. A client that leaves the bus ends its session (the bus tells the
 * service), and its line stops. Skipped when not root (setpriv). */
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "st-test-run.h"

typedef struct {
  gchar *dir;          /* nobody's folder */
  gchar *bus;          /* the bus address */
  GSubprocess *daemon, *service;
} StBus;

/* `station ARGS...` as nobody on the bus, with the operator's PIN. */
G_GNUC_NULL_TERMINATED static int
st_bus_station (StBus *b, const char *pin, gchar **out, gchar **err, ...)
{
  g_autoptr(GPtrArray) args = g_ptr_array_new ();
  g_autofree gchar *bus_env = g_strdup_printf ("STATION_BUS=%s", b->bus);
  va_list ap;
  va_start (ap, err);
  for (const char *a = va_arg (ap, const char *); a != NULL; a = va_arg (ap, const char *))
    g_ptr_array_add (args, (gpointer) a);
  va_end (ap);
  g_ptr_array_add (args, NULL);
  return st_station_as_nobody (b->dir, bus_env, pin, out, err, (const char *const *) args->pdata);
}

static void
st_bus_start (StFixture *f, StBus *b)
{
  g_assert_cmpint (g_chmod (f->tmp, 0711), ==, 0);
  b->dir = g_build_filename (f->tmp, "nobody", NULL);
  g_assert_cmpint (g_mkdir (b->dir, 0755), ==, 0);
  g_assert_cmpint (chown (b->dir, 65534, 65534), ==, 0);
  g_autofree gchar *sockdir = g_build_filename (f->tmp, "bus", NULL);
  g_assert_cmpint (g_mkdir (sockdir, 0755), ==, 0);
  g_autofree gchar *policy = g_build_filename (g_getenv ("ST_SOURCE_DIR"), "station", "data",
                                               "org.station.Station1.conf", NULL);
  g_autofree gchar *conf = g_strdup_printf (
    "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN\"\n"
    " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
    "<busconfig>\n"
    "  <type>system</type>\n"
    "  <listen>unix:path=%s/socket</listen>\n"
    "  <auth>EXTERNAL</auth>\n"
    "  <policy context=\"default\">\n"
    "    <allow user=\"*\"/>\n"
    "    <deny own=\"*\"/>\n"
    "    <deny send_type=\"method_call\"/>\n"
    "    <allow send_type=\"signal\"/>\n"
    "    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
    "    <allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
    "    <allow receive_type=\"method_call\"/>\n"
    "    <allow receive_type=\"method_return\"/>\n"
    "    <allow receive_type=\"error\"/>\n"
    "    <allow receive_type=\"signal\"/>\n"
    "    <allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus\"/>\n"
    "  </policy>\n"
    "  <include>%s</include>\n"
    "</busconfig>\n", sockdir, policy);
  g_autofree gchar *conf_path = g_build_filename (f->tmp, "bus.conf", NULL);
  g_assert_true (g_file_set_contents (conf_path, conf, -1, NULL));
  g_autoptr(GSubprocessLauncher) dl = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_SILENCE);
  g_subprocess_launcher_set_child_setup (dl, st_child_dies_with_parent, NULL, NULL);
  g_autofree gchar *config_arg = g_strdup_printf ("--config-file=%s", conf_path);
  g_autoptr(GError) error = NULL;
  b->daemon = g_subprocess_launcher_spawn (dl, &error, "dbus-daemon", config_arg, "--nofork",
                                           "--nopidfile", NULL);
  g_assert_no_error (error);
  b->bus = g_strdup_printf ("unix:path=%s/socket", sockdir);
  g_autofree gchar *sock = g_build_filename (sockdir, "socket", NULL);
  for (guint i = 0; i < 400 && !g_file_test (sock, G_FILE_TEST_EXISTS); i++)
    g_usleep (25 * 1000);
  g_assert_true (g_file_test (sock, G_FILE_TEST_EXISTS));

  /* the fixture's private service goes; this one serves the home on the bus */
  st_service_stop (f);
  g_autofree gchar *log = g_build_filename (f->tmp, "service-bus.log", NULL);
  g_autoptr(GSubprocessLauncher) sl = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_MERGE);
  g_subprocess_launcher_set_stdout_file_path (sl, log);
  g_subprocess_launcher_set_child_setup (sl, st_child_dies_with_parent, NULL, NULL);
  g_subprocess_launcher_unsetenv (sl, "STATION_HSM_PIN");
  b->service = g_subprocess_launcher_spawn (sl, &error, g_getenv ("ST_STATIOND"), "--home",
                                            f->home, "--bus", b->bus, NULL);
  g_assert_no_error (error);
  /* it answers by name once it owns it */
  gboolean up = FALSE;
  for (guint i = 0; i < 200 && !up; i++)
    {
      g_usleep (50 * 1000);
      up = st_bus_station (b, NULL, NULL, NULL, "status", NULL) == 0;
    }
  g_assert_true (up);
}

static void
st_bus_stop (StBus *b)
{
  g_subprocess_send_signal (b->service, SIGTERM);
  g_assert_true (g_subprocess_wait (b->service, NULL, NULL));
  g_assert_cmpint (g_subprocess_get_exit_status (b->service), ==, 0);
  g_subprocess_send_signal (b->daemon, SIGTERM);
  g_subprocess_wait (b->daemon, NULL, NULL);
  g_clear_object (&b->service);
  g_clear_object (&b->daemon);
  g_free (b->dir);
  g_free (b->bus);
}

static void
test_system_bus (StFixture *f, gconstpointer data)
{
  if (getuid () != 0)
    {
      g_test_skip ("changing to the user nobody needs root");
      return;
    }
  g_autofree gchar *daemon = g_find_program_in_path ("dbus-daemon");
  if (daemon == NULL)
    {
      g_test_skip ("dbus-daemon is not installed (make test-deps installs it)");
      return;
    }
  StBus b = { 0 };
  st_bus_start (f, &b);

  /* nobody may not own the service's name */
  g_autofree gchar *own_out = NULL;
  const char *own[] = { g_getenv ("ST_STATIOND"), "--home", b.dir, "--bus", b.bus, NULL };
  g_assert_cmpint (st_run_nobody (b.dir, NULL, NULL, &own_out, own), !=, 0);
  g_assert_nonnull (strstr (own_out, "cannot own org.station.Station1"));

  /* the admin unlocks it (as root here: the station's own side) */
  g_autofree gchar *bus_env = g_strdup_printf ("STATION_BUS=%s", b.bus);
  g_autofree gchar *pin_env = g_strdup_printf ("STATION_HSM_PIN=%s", ST_TEST_PIN);
  g_assert_cmpint (st_run_tool (NULL, NULL, "env", bus_env, pin_env, "STATION_OPERATOR_PIN=4444",
                                g_getenv ("ST_STATION"), "--operator", "admin", "unlock", NULL), ==, 0);

  /* nobody runs a batch by name on the bus */
  g_autofree gchar *profile = st_profile_path ("example-device-csr.profile");
  g_autofree gchar *out = NULL, *err = NULL;
  g_assert_cmpint (st_bus_station (&b, "2222", &out, NULL, "--operator", "lead", "batch", "create",
                                   "--profile", profile, "--work-order", "WO-BUS", "--quantity", "6",
                                   NULL), ==, 0);
  g_auto(GStrv) lines = g_strsplit (g_strstrip (out), "\n", -1);
  g_autofree gchar *id = g_strdup (lines[g_strv_length (lines) - 1]);
  g_autofree gchar *port = st_start_devsim (f, "--units", "2", "--seed", "401", NULL);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_bus_station (&b, "1111", &out, NULL, "--operator", "op", "batch", "run", id,
                                   "--port", port, "--units", "2", NULL), ==, 0);
  g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, 2);
  /* refused without a login, naming the role */
  g_assert_cmpint (st_bus_station (&b, NULL, NULL, &err, "batch", "close", id, NULL), ==, ST_RC_AUTH);
  g_assert_nonnull (strstr (err, "needs the role lead"));

  /* A client that leaves the bus mid-line: the bus tells the service, the
   * session ends and its line stops. */
  g_autofree gchar *port2 = st_start_devsim (f, "--units", "1", "--seed", "402", NULL);
  g_autofree gchar *run = g_strdup_printf ("exec env STATION_BUS=%s STATION_OPERATOR_PIN=1111 "
                                           "%s --operator op batch run %s --port %s --units 4 "
                                           "--wait 60", b.bus, g_getenv ("ST_STATION"), id, port2);
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) client = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE
                                                    | G_SUBPROCESS_FLAGS_STDERR_SILENCE, &error,
                                                    "setpriv", "--reuid=nobody", "--regid=nogroup",
                                                    "--clear-groups", "sh", "-c", run, NULL);
  g_assert_no_error (error);
  gboolean running = FALSE;
  for (guint i = 0; i < 200 && !running; i++)
    {
      g_usleep (50 * 1000);
      g_clear_pointer (&out, g_free);
      g_assert_cmpint (st_bus_station (&b, NULL, &out, NULL, "status", NULL), ==, 0);
      running = strstr (out, "running batch") != NULL;
    }
  g_assert_true (running);
  g_subprocess_force_exit (client);
  g_subprocess_wait (client, NULL, NULL);
  gboolean idle = FALSE;
  for (guint i = 0; i < 200 && !idle; i++)
    {
      g_usleep (50 * 1000);
      g_clear_pointer (&out, g_free);
      g_assert_cmpint (st_bus_station (&b, NULL, &out, NULL, "status", NULL), ==, 0);
      idle = strstr (out, "line        idle") != NULL;
    }
  g_assert_true (idle);
  st_bus_stop (&b);
  st_check_db_invariants (f);
}

int
main (int argc, char **argv)
{
  st_test_init (&argc, &argv);
  st_test_add_station ("/bus/system-bus", NULL, test_system_bus);
  return g_test_run ();
}
