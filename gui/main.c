/* station-gui: the line's GTK3 front end, a client of the station service
 * (stationd) over station/st-client.h.
 *
 *   station-gui [--home DIR | --address ADDR | --system] [--port PATH]...
 *
 * The service is found as the CLI finds it: --address (or $STATION_ADDRESS),
 * --system, the private service of --home DIR (or $STATION_HOME), else the
 * system's. The GUI never holds the HSM PIN: an admin unlocks the station
 * in the Admin view (or with 'station unlock'). */
#include <locale.h>
#include <signal.h>
#include <time.h>

#include <glib-unix.h>
#include <glib/gi18n.h>

#include "st-build-config.h"
#include "st-gui.h"
#include "st-i18n.h"
#include "st-sound.h"
#include "st-util.h"
#include "st-window.h"

typedef struct {
  gchar *home, *address;
  gboolean system, mute, kiosk;
  gchar **ports;
  StStation *station;
  GtkApplication *app;
} StGuiApp;

static void
st_gui_on_open (GObject *source, GAsyncResult *result, gpointer user_data)
{
  StGuiApp *a = user_data;
  g_autoptr(GError) error = NULL;
  a->station = st_station_open_finish (result, &error);
  if (a->station == NULL)
    {
      GtkWidget *dialog = gtk_message_dialog_new (NULL, 0, GTK_MESSAGE_ERROR, GTK_BUTTONS_CLOSE,
                                                  _("The station service does not answer"));
      gtk_message_dialog_format_secondary_text (GTK_MESSAGE_DIALOG (dialog), "%s", error->message);
      gtk_window_set_application (GTK_WINDOW (dialog), a->app);
      g_signal_connect (dialog, "response", G_CALLBACK (gtk_widget_destroy), NULL);
      gtk_widget_show (dialog);
      g_application_release (G_APPLICATION (a->app));
      return;
    }
  StWindow *win = st_window_new (a->app, a->station, (const char *const *) a->ports);
  if (a->kiosk)
    {
      StClientTarget target = { .address = a->address, .system = a->system, .home = a->home };
      if (a->address == NULL && !a->system && a->home == NULL)
        st_client_target_from_env (&target);
      st_window_set_kiosk (win, &target);
    }
  gtk_window_present (GTK_WINDOW (win));
  g_application_release (G_APPLICATION (a->app));
}

static void
st_gui_activate (GtkApplication *app, gpointer user_data)
{
  StGuiApp *a = user_data;
  if (a->station != NULL || gtk_application_get_active_window (app) != NULL)
    return;
  g_autoptr(GtkCssProvider) css = gtk_css_provider_new ();
  gtk_css_provider_load_from_resource (css, "/org/station/gui/style.css");
  gtk_style_context_add_provider_for_screen (gdk_screen_get_default (), GTK_STYLE_PROVIDER (css),
                                             GTK_STYLE_PROVIDER_PRIORITY_APPLICATION);
  g_application_hold (G_APPLICATION (app));
  StClientTarget target = { .address = a->address, .system = a->system, .home = a->home };
  /* the command line wins over the environment */
  if (a->address == NULL && !a->system && a->home == NULL)
    st_client_target_from_env (&target);
  st_station_open_async (&target, NULL, st_gui_on_open, a);
}

/* With STATION_GUI_STALL_REPORT set, a 20 ms tick on the main loop records
 * the longest pause between two ticks, printed at exit: the figure behind
 * "a long batch never freezes the window" (the GUI test prints it). The
 * views print their figures too (st_gui_figure: start-up, replies), and
 * SIGUSR1 prints the pause of a phase (tests/bench/gui-scale, issue 16). */
typedef struct {
  gint64 started, last, longest, first;
  gint64 last_cpu, mark_cpu;  /* the main thread's CPU time; the most spent between two ticks */
  guint ticks;
  /* since the last SIGUSR1: the test and the bench mark their phases
   * (start-up, browsing the batches, a line running) with it */
  gint64 mark_at, mark_longest;
  guint marks;
} StStallWatch;

/* The CPU time of the calling thread: the main loop's own work, which the
 * machine's load does not stretch (a wall-clock pause also counts the time
 * the thread waited for a core). */
static gint64
st_thread_cpu_us (void)
{
  struct timespec ts;
  if (clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
    return 0;
  return (gint64) ts.tv_sec * G_USEC_PER_SEC + ts.tv_nsec / 1000;
}

static gboolean
st_stall_tick (gpointer data)
{
  StStallWatch *w = data;
  gint64 now = g_get_monotonic_time ();
  gint64 cpu = st_thread_cpu_us ();
  if (w->ticks > 0)
    w->mark_cpu = MAX (w->mark_cpu, cpu - w->last_cpu);
  w->last_cpu = cpu;
  if (w->ticks == 0)
    w->first = now - w->started;      /* start-up: GTK, the views, the AT-SPI bridge */
  else
    {
      w->longest = MAX (w->longest, now - w->last);
      w->mark_longest = MAX (w->mark_longest, now - w->last);
    }
  w->last = now;
  w->ticks++;
  return G_SOURCE_CONTINUE;
}

/* SIGUSR1 (dispatched by the main loop): prints the longest pause since
 * the previous mark (or the start), and the most CPU time the main thread
 * spent between two ticks in that time, and starts a new phase. */
static gboolean
st_stall_mark (gpointer data)
{
  StStallWatch *w = data;
  gint64 now = g_get_monotonic_time ();
  gint64 from = w->mark_at != 0 ? w->mark_at : w->started;
  w->marks++;
  g_printerr ("station-gui: main loop: mark %u: the longest pause between 20 ms ticks %.0f ms, over %.1f s; "
              "the most CPU the main thread spent between two ticks %.1f ms\n",
              w->marks, MAX (w->mark_longest, now - w->last) / 1000.0, (now - from) / 1e6, w->mark_cpu / 1000.0);
  w->mark_at = now;
  w->mark_longest = 0;
  w->mark_cpu = 0;
  return G_SOURCE_CONTINUE;
}

int
main (int argc, char **argv)
{
  st_process_setup ();
  /* the locale is set here, once: GTK would set it again from the
   * environment and undo what st_i18n_init does for LANGUAGE under "C" */
  gtk_disable_setlocale ();
  st_i18n_init ();
  StGuiApp a = { 0 };
  const GOptionEntry entries[] = {
    { "home", 0, 0, G_OPTION_ARG_FILENAME, &a.home, N_("The private service of this station home (HOME/stationd.sock; else $STATION_HOME)"), "DIR" },
    { "address", 0, 0, G_OPTION_ARG_STRING, &a.address, N_("The service's D-Bus address (else $STATION_ADDRESS)"), "ADDR" },
    { "system", 0, 0, G_OPTION_ARG_NONE, &a.system, N_("The system's station service (system bus)"), NULL },
    { "port", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &a.ports, N_("A socket of the line (repeat for each)"), "PATH" },
    { "kiosk", 0, 0, G_OPTION_ARG_NONE, &a.kiosk, N_("Kiosk mode: full screen, no window decoration, no way out but an admin's PIN (Leave kiosk)"), NULL },
    { "mute", 0, 0, G_OPTION_ARG_NONE, &a.mute, N_("No pass and fail sounds (the line view's Sound switch starts off)"), NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new (N_("- the station's line GUI"));
  g_option_context_set_translation_domain (ctx, GETTEXT_PACKAGE);
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_add_group (ctx, gtk_get_option_group (FALSE));
  g_autoptr(GError) error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      g_printerr ("station-gui: %s\n", error->message);
      return 2;
    }
  st_sound_set_muted (a.mute);
  a.app = gtk_application_new ("org.station.Gui", G_APPLICATION_NON_UNIQUE);
  g_signal_connect (a.app, "activate", G_CALLBACK (st_gui_activate), &a);
  char *args[] = { argv[0], NULL };
  StStallWatch watch = { 0 };
  guint watch_id = 0, mark_id = 0;
  if (g_getenv ("STATION_GUI_STALL_REPORT") != NULL)
    {
      watch.started = watch.last = g_get_monotonic_time ();
      st_gui_figures_start (watch.started);
      watch_id = g_timeout_add (20, st_stall_tick, &watch);
      mark_id = g_unix_signal_add (SIGUSR1, st_stall_mark, &watch);
    }
  int rc = g_application_run (G_APPLICATION (a.app), 1, args);
  if (watch_id != 0)
    {
      g_source_remove (watch_id);
      g_source_remove (mark_id);
      g_printerr ("station-gui: main loop: first tick %.0f ms after start; then the longest pause "
                  "between 20 ms ticks %.0f ms, over %.0f s (%u ticks)\n", watch.first / 1000.0,
                  watch.longest / 1000.0, (g_get_monotonic_time () - watch.started) / 1e6, watch.ticks);
    }
  g_object_unref (a.app);
  st_station_free (a.station);
  g_free (a.home);
  g_free (a.address);
  g_strfreev (a.ports);
  return rc;
}
