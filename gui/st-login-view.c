#include "st-login-view.h"

#include <glib/gi18n.h>

struct _StLoginView {
  GtkBox parent;
  GtkListBox *operator_list;
  GtkEntry *pin_entry;
  GtkButton *login_button;
  GtkLabel *who_label, *status_label;
  StGuiContext ctx;            /* station, (no session), cancellable */
  gboolean busy;
};

G_DEFINE_TYPE (StLoginView, st_login_view, GTK_TYPE_BOX)

enum { SIG_LOGGED_IN, N_SIGNALS };
static guint st_login_signals[N_SIGNALS];

static const char *
st_login_view_selected (StLoginView *self)
{
  GtkListBoxRow *row = gtk_list_box_get_selected_row (self->operator_list);
  return row != NULL ? g_object_get_data (G_OBJECT (row), "st-name") : NULL;
}

static void
st_login_view_on_row_selected (StLoginView *self)
{
  const char *name = st_login_view_selected (self);
  g_autofree gchar *text = name != NULL ? g_strdup_printf (_("%s: type your PIN"), name)
                                        : g_strdup (_("Choose your name, then type your PIN"));
  gtk_label_set_text (self->who_label, text);
  gtk_entry_set_text (self->pin_entry, "");
  gtk_widget_grab_focus (GTK_WIDGET (self->pin_entry));
}

static void
st_login_view_on_digit (StLoginView *self, GtkButton *button)
{
  gint pos = gtk_entry_get_text_length (self->pin_entry);
  gtk_editable_insert_text (GTK_EDITABLE (self->pin_entry), gtk_button_get_label (button), -1, &pos);
}

static void
st_login_view_on_clear (StLoginView *self)
{
  gtk_entry_set_text (self->pin_entry, "");
}

static void
st_login_view_on_login (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(StLoginView) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(StAuthSession) session = st_station_login_finish (self->ctx.station, result, &error);
  self->busy = FALSE;
  gtk_widget_set_sensitive (GTK_WIDGET (self->login_button), TRUE);
  gtk_entry_set_text (self->pin_entry, "");
  if (st_gui_failed (error, self->status_label))
    return;
  st_gui_status (self->status_label, "", FALSE);
  g_signal_emit (self, st_login_signals[SIG_LOGGED_IN], 0, session);
}

static void
st_login_view_on_ok (StLoginView *self)
{
  const char *name = st_login_view_selected (self);
  if (self->busy || self->ctx.station == NULL)
    return;
  if (name == NULL)
    {
      st_gui_status (self->status_label, _("Choose your name in the list first."), TRUE);
      return;
    }
  self->busy = TRUE;
  gtk_widget_set_sensitive (GTK_WIDGET (self->login_button), FALSE);
  st_gui_status (self->status_label, _("Checking your PIN…"), FALSE);
  st_station_login_async (self->ctx.station, name, gtk_entry_get_text (self->pin_entry), self->ctx.cancellable,
                          st_login_view_on_login, g_object_ref (self));
}

/* The numeric keypad and the digit row type into the PIN wherever the focus is. */
static gboolean
st_login_view_on_key (GtkWidget *widget, GdkEventKey *event, gpointer data)
{
  StLoginView *self = ST_LOGIN_VIEW (widget);
  if (gtk_widget_has_focus (GTK_WIDGET (self->pin_entry)))
    return FALSE;
  guint kv = event->keyval;
  gunichar c = gdk_keyval_to_unicode (kv);
  if (c >= '0' && c <= '9')
    {
      char s[2] = { (char) c, 0 };
      gint pos = gtk_entry_get_text_length (self->pin_entry);
      gtk_editable_insert_text (GTK_EDITABLE (self->pin_entry), s, 1, &pos);
      return TRUE;
    }
  if (kv == GDK_KEY_Return || kv == GDK_KEY_KP_Enter)
    {
      st_login_view_on_ok (self);
      return TRUE;
    }
  if (kv == GDK_KEY_BackSpace)
    {
      gint n = gtk_entry_get_text_length (self->pin_entry);
      if (n > 0)
        gtk_editable_delete_text (GTK_EDITABLE (self->pin_entry), n - 1, n);
      return TRUE;
    }
  return FALSE;
}

static void
st_login_view_on_operators (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(StLoginView) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) ops = st_station_list_operators_finish (self->ctx.station, result, &error);
  if (st_gui_failed (error, self->status_label))
    return;
  if (ops->len == 0)
    st_gui_status (self->status_label, _("This station has no operators yet: an admin adds the first one "
                   "with 'station operator add NAME --role admin'."), TRUE);
  for (guint i = 0; i < ops->len; i++)
    {
      StOperatorInfo *op = g_ptr_array_index (ops, i);
      g_autofree gchar *text = g_strdup_printf ("%s  (%s%s)", op->name, op->role, op->locked ? ", locked" : "");
      st_gui_list_add (self->operator_list, text, op->name, 12, "st-name", g_strdup (op->name), g_free);
    }
  /* start-up: the first window a user can act on, operators listed */
  st_gui_figure_once ("start-up: the login screen lists the operators", 0);
}

void
st_login_view_reset (StLoginView *self, StStation *station, const char *message)
{
  self->ctx.station = station;
  st_gui_list_clear (self->operator_list);
  gtk_entry_set_text (self->pin_entry, "");
  st_gui_status (self->status_label, message, FALSE);
  st_login_view_on_row_selected (self);
  st_station_list_operators_async (station, self->ctx.cancellable, st_login_view_on_operators,
                                   g_object_ref (self));
}

static void
st_login_view_dispose (GObject *object)
{
  StLoginView *self = ST_LOGIN_VIEW (object);
  st_gui_context_clear (&self->ctx);
  G_OBJECT_CLASS (st_login_view_parent_class)->dispose (object);
}

static void
st_login_view_class_init (StLoginViewClass *klass)
{
  GtkWidgetClass *wc = GTK_WIDGET_CLASS (klass);
  G_OBJECT_CLASS (klass)->dispose = st_login_view_dispose;
  gtk_widget_class_set_template_from_resource (wc, "/org/station/gui/st-login-view.ui");
#define BIND(x) gtk_widget_class_bind_template_child (wc, StLoginView, x)
  BIND (operator_list); BIND (pin_entry); BIND (login_button); BIND (who_label); BIND (status_label);
#undef BIND
  gtk_widget_class_bind_template_callback (wc, st_login_view_on_row_selected);
  gtk_widget_class_bind_template_callback (wc, st_login_view_on_digit);
  gtk_widget_class_bind_template_callback (wc, st_login_view_on_clear);
  gtk_widget_class_bind_template_callback (wc, st_login_view_on_ok);
  st_login_signals[SIG_LOGGED_IN] =
    g_signal_new ("logged-in", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, G_TYPE_POINTER);
}

static void
st_login_view_init (StLoginView *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  st_gui_context_init (&self->ctx);
  st_gui_name (GTK_WIDGET (self->operator_list), _("Operators"));
  st_gui_name (GTK_WIDGET (self->pin_entry), _("PIN"));
  st_gui_name (GTK_WIDGET (self->status_label), _("Login status"));
  g_signal_connect (self, "key-press-event", G_CALLBACK (st_login_view_on_key), NULL);
}

GtkWidget *
st_login_view_new (void)
{
  return g_object_new (ST_TYPE_LOGIN_VIEW, NULL);
}
