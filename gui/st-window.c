#include "st-window.h"

#include <glib/gi18n.h>

#include "st-error.h"
#include "st-kiosk.h"

#include "st-admin-view.h"
#include "st-batches-view.h"
#include "st-line-view.h"
#include "st-login-view.h"
#include "st-qa-view.h"

struct _StWindow {
  GtkApplicationWindow parent;
  GtkHeaderBar *header;
  GtkStackSwitcher *switcher;
  GtkLabel *who_label;
  GtkButton *logout_button;
  GtkStack *pages, *views;
  GtkBox *login_page;

  StLoginView *login;
  GtkWidget *line, *batches, *qa, *admin;
  StStation *station;
  StAuthSession *session;
  gint64 last_activity, last_keepalive;
  guint idle_id;
  enum { ST_AFTER_STOP_NOTHING, ST_AFTER_STOP_LOGOUT, ST_AFTER_STOP_CLOSE } after_stop;
  gchar *logout_message;
  /* Kiosk mode (st_window_set_kiosk): no way out but an admin's PIN. */
  gboolean kiosk;
  GtkWidget *leave_kiosk_button;
  gchar *target_address, *target_bus, *target_home;
  gboolean target_system;
};

G_DEFINE_TYPE (StWindow, st_window, GTK_TYPE_APPLICATION_WINDOW)

static const struct {
  const char *name, *title;
  guint roles;
  StGuiSetSession set_session;
} st_window_views[] = {
  { "line", N_("Line"), ST_ROLE_OPERATOR | ST_ROLE_LEAD, st_line_view_set_session },
  { "batches", N_("Batches"), ST_ROLE_LEAD, st_batches_view_set_session },
  { "qa", N_("QA"), ST_ROLE_QA, st_qa_view_set_session },
  { "admin", N_("Admin"), ST_ROLE_ADMIN, st_admin_view_set_session },
};

static GtkWidget *
st_window_view (StWindow *self, guint i)
{
  GtkWidget *views[] = { self->line, self->batches, self->qa, self->admin };
  return views[i];
}

void
st_window_show_login (StWindow *self, const char *message)
{
  for (guint i = 0; i < G_N_ELEMENTS (st_window_views); i++)
    st_window_views[i].set_session (st_window_view (self, i), self->station, NULL);
  /* the service's session on this connection ends with the GUI's */
  if (self->session != NULL)
    st_station_logout (self->station);
  g_clear_pointer (&self->session, st_auth_session_free);
  gtk_label_set_text (self->who_label, _("Nobody logged in"));
  gtk_widget_hide (GTK_WIDGET (self->logout_button));
  gtk_widget_hide (GTK_WIDGET (self->switcher));
  gtk_stack_set_visible_child_name (self->pages, "login");
  st_login_view_reset (self->login, self->station, message);
}

static void
st_window_on_logged_in (StLoginView *login, StAuthSession *session, StWindow *self)
{
  g_clear_pointer (&self->session, st_auth_session_free);
  self->session = st_auth_session_copy (session);
  self->last_activity = self->last_keepalive = g_get_monotonic_time ();
  g_autofree gchar *who = g_strdup_printf ("%s (%s)", session->name, st_role_to_string (session->role));
  gtk_label_set_text (self->who_label, who);
  gtk_widget_show (GTK_WIDGET (self->logout_button));
  gtk_widget_show (GTK_WIDGET (self->switcher));
  GtkWidget *first = NULL;
  for (guint i = 0; i < G_N_ELEMENTS (st_window_views); i++)
    {
      GtkWidget *view = st_window_view (self, i);
      gboolean allowed = (st_window_views[i].roles & session->role) != 0;
      gtk_widget_set_visible (view, allowed);
      st_window_views[i].set_session (view, self->station, allowed ? session : NULL);
      if (allowed && first == NULL)
        first = view;
    }
  if (first != NULL)
    gtk_stack_set_visible_child (self->views, first);
  gtk_stack_set_visible_child_name (self->pages, "main");
}

static void
st_window_do_logout (StWindow *self)
{
  g_autofree gchar *msg = g_steal_pointer (&self->logout_message);
  st_window_show_login (self, msg != NULL ? msg : _("Logged out."));
}

static void
st_window_on_line_finished (GtkWidget *line, StWindow *self)
{
  switch (self->after_stop)
    {
    case ST_AFTER_STOP_NOTHING:
      break;
    case ST_AFTER_STOP_LOGOUT:
      st_window_do_logout (self);
      break;
    case ST_AFTER_STOP_CLOSE:
      gtk_widget_destroy (GTK_WIDGET (self));
      return;
    }
  self->after_stop = ST_AFTER_STOP_NOTHING;
}

/* Asks before stopping a running line; TRUE when the caller may go on now. */
static gboolean
st_window_confirm_stop (StWindow *self, int after, const char *action)
{
  if (!st_line_view_is_running (ST_LINE_VIEW (self->line)))
    return TRUE;
  GtkWidget *dialog = gtk_message_dialog_new (GTK_WINDOW (self), GTK_DIALOG_MODAL, GTK_MESSAGE_QUESTION,
                                              GTK_BUTTONS_NONE, _("A batch is running. Stop the line and %s?"),
                                              action);
  gtk_message_dialog_format_secondary_text (GTK_MESSAGE_DIALOG (dialog),
                                            _("The devices in the sockets now finish or fail safely; nothing "
                                            "is lost. Units that fail can be run again later."));
  gtk_dialog_add_buttons (GTK_DIALOG (dialog), _("Keep running"), GTK_RESPONSE_CANCEL,
                          _("Stop the line"), GTK_RESPONSE_ACCEPT, NULL);
  gtk_window_set_title (GTK_WINDOW (dialog), _("Stop the line?"));
  int response = gtk_dialog_run (GTK_DIALOG (dialog));
  gtk_widget_destroy (dialog);
  if (response == GTK_RESPONSE_ACCEPT)
    {
      self->after_stop = after;
      st_line_view_stop (ST_LINE_VIEW (self->line));
    }
  return FALSE;
}

static void
st_window_on_logout (StWindow *self)
{
  if (st_window_confirm_stop (self, ST_AFTER_STOP_LOGOUT, _("log out")))
    st_window_do_logout (self);
}

static gboolean
st_window_on_delete (GtkWidget *widget, GdkEvent *event, gpointer data)
{
  StWindow *self = ST_WINDOW (widget);
  if (self->kiosk)
    {
      /* the close button, Alt-F4, Ctrl+Q, the window manager: all refused */
      g_message ("kiosk: closing the window refused: an admin leaves the kiosk mode first");
      return TRUE;
    }
  if (self->after_stop == ST_AFTER_STOP_CLOSE)
    return TRUE; /* already stopping: it closes once the line finished */
  return !st_window_confirm_stop (self, ST_AFTER_STOP_CLOSE, _("close the station"));
}

static gboolean
st_window_on_event (GtkWidget *widget, GdkEvent *event, gpointer data)
{
  StWindow *self = ST_WINDOW (widget);
  switch (event->type)
    {
    case GDK_KEY_PRESS:
    case GDK_BUTTON_PRESS:
    case GDK_MOTION_NOTIFY:
    case GDK_SCROLL:
    case GDK_TOUCH_BEGIN:
      self->last_activity = g_get_monotonic_time ();
      break;
    default:
      break;
    }
  return FALSE;
}

/* The service ends a session after the same idle time without a call; an
 * operator busy in the window without calling (typing, reading a report)
 * keeps theirs with a light call every half of it. A session the service
 * ended anyway (it restarted, say) shows the login screen. */
static void
st_window_on_keepalive (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(StWindow) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) list = st_station_list_batches_finish (self->station, result, &error);
  if (list != NULL || self->session == NULL || st_line_view_is_running (ST_LINE_VIEW (self->line)))
    return;
  if (g_error_matches (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED))
    {
      g_free (self->logout_message);
      self->logout_message = g_strdup_printf (_("The station service ended %s's session (%s): log in again."),
                                              self->session->name, error->message);
      st_window_do_logout (self);
    }
}

static void
st_window_keepalive (StWindow *self, guint limit)
{
  gint64 now = g_get_monotonic_time ();
  if (self->last_activity <= self->last_keepalive || now - self->last_keepalive < (gint64) limit * G_USEC_PER_SEC / 2)
    return;
  self->last_keepalive = now;
  st_station_list_batches_async (self->station, NULL, st_window_on_keepalive, g_object_ref (self));
}

/* Idle logout after the station's idle-logout seconds (the service's
 * setting); never while the line runs (the operator is watching it, and
 * stopping it is their decision). The logout ends the service's session
 * too. */
static gboolean
st_window_idle_check (gpointer data)
{
  StWindow *self = data;
  guint limit = st_station_get_idle_logout (self->station);
  if (self->session == NULL || limit == 0 || st_line_view_is_running (ST_LINE_VIEW (self->line)))
    {
      self->last_activity = g_get_monotonic_time ();
      return G_SOURCE_CONTINUE;
    }
  st_window_keepalive (self, limit);
  if (g_get_monotonic_time () - self->last_activity >= (gint64) limit * G_USEC_PER_SEC)
    {
      g_free (self->logout_message);
      self->logout_message = g_strdup_printf (_("%s was logged out after %u s without activity."),
                                              self->session->name, limit);
      st_window_do_logout (self);
    }
  return G_SOURCE_CONTINUE;
}

static void
st_window_dispose (GObject *object)
{
  StWindow *self = ST_WINDOW (object);
  if (self->idle_id != 0)
    {
      g_source_remove (self->idle_id);
      self->idle_id = 0;
    }
  G_OBJECT_CLASS (st_window_parent_class)->dispose (object);
}

static void
st_window_finalize (GObject *object)
{
  StWindow *self = ST_WINDOW (object);
  st_auth_session_free (self->session);
  g_free (self->logout_message);
  g_free (self->target_address);
  g_free (self->target_bus);
  g_free (self->target_home);
  G_OBJECT_CLASS (st_window_parent_class)->finalize (object);
}

static void
st_window_class_init (StWindowClass *klass)
{
  GtkWidgetClass *wc = GTK_WIDGET_CLASS (klass);
  G_OBJECT_CLASS (klass)->dispose = st_window_dispose;
  G_OBJECT_CLASS (klass)->finalize = st_window_finalize;
  gtk_widget_class_set_template_from_resource (wc, "/org/station/gui/st-window.ui");
#define BIND(x) gtk_widget_class_bind_template_child (wc, StWindow, x)
  BIND (header); BIND (switcher); BIND (who_label); BIND (logout_button); BIND (pages);
  BIND (views); BIND (login_page);
#undef BIND
  gtk_widget_class_bind_template_callback (wc, st_window_on_logout);
}

static void
st_window_init (StWindow *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  gtk_widget_add_events (GTK_WIDGET (self), GDK_POINTER_MOTION_MASK | GDK_KEY_PRESS_MASK |
                                            GDK_BUTTON_PRESS_MASK | GDK_SCROLL_MASK);
  g_signal_connect (self, "event", G_CALLBACK (st_window_on_event), NULL);
  g_signal_connect (self, "delete-event", G_CALLBACK (st_window_on_delete), NULL);
  st_gui_name (GTK_WIDGET (self->who_label), _("Logged in as"));
  st_gui_name (GTK_WIDGET (self->switcher), _("Views"));
  gtk_widget_hide (GTK_WIDGET (self->switcher));
}

/* Ctrl+Q: the same as the window's close button (asks first while the
 * line runs). */
static void
st_window_on_close_action (GSimpleAction *action, GVariant *parameter, gpointer data)
{
  gtk_window_close (GTK_WINDOW (data));
}

StWindow *
st_window_new (GtkApplication *app, StStation *station, const char *const *ports)
{
  StWindow *self = g_object_new (ST_TYPE_WINDOW, "application", app, NULL);
  g_autoptr(GSimpleAction) close = g_simple_action_new ("close", NULL);
  g_signal_connect (close, "activate", G_CALLBACK (st_window_on_close_action), self);
  g_action_map_add_action (G_ACTION_MAP (self), G_ACTION (close));
  const char *close_accels[] = { "<Primary>q", NULL };
  gtk_application_set_accels_for_action (app, "win.close", close_accels);
  self->station = station;
  self->login = ST_LOGIN_VIEW (st_login_view_new ());
  gtk_widget_show (GTK_WIDGET (self->login));
  gtk_box_pack_start (self->login_page, GTK_WIDGET (self->login), TRUE, TRUE, 0);
  g_signal_connect (self->login, "logged-in", G_CALLBACK (st_window_on_logged_in), self);
  self->line = st_line_view_new (ports);
  self->batches = st_batches_view_new ();
  self->qa = st_qa_view_new (ports);
  self->admin = st_admin_view_new ();
  g_signal_connect (self->line, "line-finished", G_CALLBACK (st_window_on_line_finished), self);
  for (guint i = 0; i < G_N_ELEMENTS (st_window_views); i++)
    gtk_stack_add_titled (self->views, st_window_view (self, i), st_window_views[i].name,
                          _(st_window_views[i].title));
  self->idle_id = g_timeout_add_seconds (1, st_window_idle_check, self);
  st_window_show_login (self, NULL);
  return self;
}

/* ---- kiosk mode ---- */

/* The whole screen: fullscreen for a window manager, and the monitor's
 * geometry for a kiosk session that runs none (nobody would act on the
 * fullscreen request there). */
static void
st_window_cover_screen (StWindow *self)
{
  GdkDisplay *display = gtk_widget_get_display (GTK_WIDGET (self));
  GdkMonitor *monitor = gdk_display_get_primary_monitor (display);
  if (monitor == NULL)
    monitor = gdk_display_get_monitor (display, 0);
  if (monitor != NULL)
    {
      GdkRectangle r;
      gdk_monitor_get_geometry (monitor, &r);
      gtk_window_move (GTK_WINDOW (self), r.x, r.y);
      gtk_window_resize (GTK_WINDOW (self), r.width, r.height);
    }
  gtk_window_fullscreen (GTK_WINDOW (self));
}

/* A window manager that takes the full screen away gets it back. */
static gboolean
st_window_on_state (GtkWidget *widget, GdkEventWindowState *event, gpointer data)
{
  StWindow *self = ST_WINDOW (widget);
  if (self->kiosk && (event->changed_mask & GDK_WINDOW_STATE_FULLSCREEN) != 0 &&
      (event->new_window_state & GDK_WINDOW_STATE_FULLSCREEN) == 0)
    {
      g_message ("kiosk: the window left the full screen: back to it");
      gtk_window_fullscreen (GTK_WINDOW (self));
    }
  return FALSE;
}

static void
st_window_leave_kiosk (GtkWindow *window, const char *admin)
{
  StWindow *self = ST_WINDOW (window);
  if (!self->kiosk)
    return;
  self->kiosk = FALSE;
  gtk_widget_hide (self->leave_kiosk_button);
  gtk_header_bar_set_show_close_button (self->header, TRUE);
  gtk_window_set_decorated (window, TRUE);
  gtk_window_unfullscreen (window);
  gtk_window_resize (window, 1180, 760);
  g_autofree gchar *who = g_strdup_printf (_("Kiosk mode left by admin %s."), admin);
  if (self->session == NULL)
    st_login_view_reset (self->login, self->station, who);
}

static void
st_window_on_leave_kiosk (GtkButton *button, StWindow *self)
{
  StClientTarget target = { .address = self->target_address, .bus = self->target_bus,
                            .system = self->target_system, .home = self->target_home };
  st_kiosk_ask_leave (GTK_WINDOW (self), &target, st_window_leave_kiosk);
}

void
st_window_set_kiosk (StWindow *self, const StClientTarget *target)
{
  g_return_if_fail (!gtk_widget_get_realized (GTK_WIDGET (self)));
  self->kiosk = TRUE;
  self->target_address = g_strdup (target->address);
  self->target_bus = g_strdup (target->bus);
  self->target_home = g_strdup (target->home);
  self->target_system = target->system;
  /* No title bar: the header bar (views, who is logged in, Log out) moves
   * into the window, without its close button, with Leave kiosk. */
  GtkWidget *header = g_object_ref (GTK_WIDGET (self->header));
  GtkWidget *pages = g_object_ref (GTK_WIDGET (self->pages));
  gtk_window_set_titlebar (GTK_WINDOW (self), NULL);
  gtk_container_remove (GTK_CONTAINER (self), pages);
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 0);
  gtk_box_pack_start (GTK_BOX (box), header, FALSE, FALSE, 0);
  gtk_box_pack_start (GTK_BOX (box), pages, TRUE, TRUE, 0);
  gtk_widget_show (box);
  gtk_container_add (GTK_CONTAINER (self), box);
  g_object_unref (header);
  g_object_unref (pages);
  gtk_header_bar_set_show_close_button (self->header, FALSE);
  self->leave_kiosk_button = gtk_button_new_with_label (_("Leave kiosk"));
  st_gui_name (self->leave_kiosk_button, _("Leave kiosk"));
  gtk_style_context_add_class (gtk_widget_get_style_context (self->leave_kiosk_button), "st-kiosk-leave");
  g_signal_connect (self->leave_kiosk_button, "clicked", G_CALLBACK (st_window_on_leave_kiosk), self);
  gtk_header_bar_pack_end (self->header, self->leave_kiosk_button);
  gtk_widget_show (self->leave_kiosk_button);
  gtk_window_set_decorated (GTK_WINDOW (self), FALSE);
  g_signal_connect (self, "window-state-event", G_CALLBACK (st_window_on_state), NULL);
  st_window_cover_screen (self);
}
