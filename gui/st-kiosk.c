#include "st-kiosk.h"

#include <glib/gi18n.h>
#include <string.h>

/* One question; shared by the dialog and the calls in flight (the calls
 * hold a reference each, and see dialog NULL once it is gone). */
typedef struct {
  gint ref;
  GtkWindow *window;           /* a reference */
  GtkWidget *dialog;           /* NULL once destroyed */
  GtkEntry *name_entry, *pin_entry;
  GtkLabel *status;
  GtkWidget *leave_button;
  gchar *address, *bus, *home;
  gboolean system;
  gchar *name, *pin;           /* of the check in flight; the PIN wiped after the call */
  StStation *check;            /* the connection of the check */
  StKioskLeaveFunc leave;
} StKioskAsk;

static StKioskAsk *
st_kiosk_ask_ref (StKioskAsk *ask)
{
  ask->ref++;
  return ask;
}

static void
st_kiosk_forget_pin (StKioskAsk *ask)
{
  if (ask->pin != NULL)
    {
      memset (ask->pin, 0, strlen (ask->pin));
      g_clear_pointer (&ask->pin, g_free);
    }
}

static void
st_kiosk_ask_unref (StKioskAsk *ask)
{
  if (--ask->ref > 0)
    return;
  st_kiosk_forget_pin (ask);
  g_free (ask->name);
  g_free (ask->address);
  g_free (ask->bus);
  g_free (ask->home);
  st_station_free (ask->check);
  g_object_unref (ask->window);
  g_free (ask);
}

/* The check ended: the dialog can ask again (after @message). */
static void
st_kiosk_ask_done (StKioskAsk *ask, const char *message)
{
  st_kiosk_forget_pin (ask);
  if (ask->check != NULL)
    {
      st_station_logout (ask->check);   /* the check's session ends with its connection too */
      g_clear_pointer (&ask->check, st_station_free);
    }
  if (ask->dialog == NULL)
    return;
  gtk_widget_set_sensitive (ask->leave_button, TRUE);
  gtk_widget_set_sensitive (GTK_WIDGET (ask->name_entry), TRUE);
  gtk_widget_set_sensitive (GTK_WIDGET (ask->pin_entry), TRUE);
  st_gui_status (ask->status, message, TRUE);
  gtk_widget_grab_focus (GTK_WIDGET (ask->pin_entry));
}

static void
st_kiosk_on_login (GObject *source, GAsyncResult *result, gpointer data)
{
  StKioskAsk *ask = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(StAuthSession) session = st_station_login_finish (ask->check, result, &error);
  if (session != NULL && (session->role & ST_ROLE_ADMIN) != 0)
    {
      g_message ("kiosk: admin '%s' left the kiosk mode", session->name);
      g_autofree gchar *admin = g_strdup (session->name);
      st_kiosk_ask_done (ask, "");
      if (ask->dialog != NULL)
        gtk_widget_destroy (ask->dialog);
      ask->leave (ask->window, admin);
    }
  else if (session != NULL)
    {
      g_message ("kiosk: '%s' (%s) is not an admin: the kiosk mode stays", session->name,
                 st_role_to_string (session->role));
      g_autofree gchar *msg = g_strdup_printf (_("%s is %s: only an admin leaves the kiosk mode."),
                                               session->name, st_role_to_string (session->role));
      st_kiosk_ask_done (ask, msg);
    }
  else
    {
      g_message ("kiosk: the admin check was refused: %s", error->message);
      g_autofree gchar *msg = g_strdup_printf (_("Not left: %s"), error->message);
      st_kiosk_ask_done (ask, msg);
    }
  st_kiosk_ask_unref (ask);
}

static void
st_kiosk_on_open (GObject *source, GAsyncResult *result, gpointer data)
{
  StKioskAsk *ask = data;
  g_autoptr(GError) error = NULL;
  ask->check = st_station_open_finish (result, &error);
  if (ask->check == NULL)
    {
      g_autofree gchar *msg = g_strdup_printf (_("The station service does not answer: %s"), error->message);
      st_kiosk_ask_done (ask, msg);
      st_kiosk_ask_unref (ask);
      return;
    }
  /* the reference goes on to the login */
  st_station_login_async (ask->check, ask->name, ask->pin, NULL, st_kiosk_on_login, ask);
  st_kiosk_forget_pin (ask);
}

static void
st_kiosk_on_response (GtkDialog *dialog, int response, StKioskAsk *ask)
{
  if (response != GTK_RESPONSE_ACCEPT)
    {
      gtk_widget_destroy (GTK_WIDGET (dialog));
      return;
    }
  const char *name = gtk_entry_get_text (ask->name_entry);
  const char *pin = gtk_entry_get_text (ask->pin_entry);
  if (*name == '\0' || *pin == '\0')
    {
      st_gui_status (ask->status, _("Give an admin's name and PIN."), TRUE);
      return;
    }
  if (ask->check != NULL || ask->pin != NULL)
    return; /* a check is in flight */
  g_free (ask->name);
  ask->name = g_strdup (name);
  ask->pin = g_strdup (pin);
  gtk_entry_set_text (ask->pin_entry, "");
  gtk_widget_set_sensitive (ask->leave_button, FALSE);
  gtk_widget_set_sensitive (GTK_WIDGET (ask->name_entry), FALSE);
  gtk_widget_set_sensitive (GTK_WIDGET (ask->pin_entry), FALSE);
  st_gui_status (ask->status, _("Checking with the station service…"), FALSE);
  StClientTarget target = { .address = ask->address, .bus = ask->bus, .system = ask->system,
                            .home = ask->home };
  st_station_open_async (&target, NULL, st_kiosk_on_open, st_kiosk_ask_ref (ask));
}

static void
st_kiosk_on_destroy (GtkWidget *dialog, StKioskAsk *ask)
{
  ask->dialog = NULL;
  st_kiosk_ask_unref (ask);
}

static GtkWidget *
st_kiosk_label (const char *text)
{
  GtkWidget *l = gtk_label_new (text);
  gtk_label_set_xalign (GTK_LABEL (l), 0);
  gtk_label_set_line_wrap (GTK_LABEL (l), TRUE);
  gtk_label_set_max_width_chars (GTK_LABEL (l), 50);
  return l;
}

void
st_kiosk_ask_leave (GtkWindow *window, const StClientTarget *target, StKioskLeaveFunc leave)
{
  StKioskAsk *ask = g_new0 (StKioskAsk, 1);
  ask->ref = 1;
  ask->window = g_object_ref (window);
  ask->leave = leave;
  ask->address = g_strdup (target->address);
  ask->bus = g_strdup (target->bus);
  ask->home = g_strdup (target->home);
  ask->system = target->system;

  ask->dialog = gtk_dialog_new_with_buttons (_("Leave kiosk mode"), window,
                                             GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT,
                                             _("Cancel"), GTK_RESPONSE_CANCEL, NULL);
  ask->leave_button = gtk_dialog_add_button (GTK_DIALOG (ask->dialog), _("Leave kiosk"), GTK_RESPONSE_ACCEPT);
  st_gui_name (ask->leave_button, _("Leave kiosk now"));
  GtkWidget *area = gtk_dialog_get_content_area (GTK_DIALOG (ask->dialog));
  gtk_box_set_spacing (GTK_BOX (area), 8);
  gtk_container_set_border_width (GTK_CONTAINER (area), 16);
  gtk_container_add (GTK_CONTAINER (area),
                     st_kiosk_label (_("Only an admin leaves the kiosk mode: give an admin's name and PIN. "
                                       "The station service checks them as a login, and a wrong PIN counts "
                                       "towards the lockout.")));
  ask->name_entry = GTK_ENTRY (gtk_entry_new ());
  gtk_entry_set_placeholder_text (ask->name_entry, _("admin name"));
  st_gui_name (GTK_WIDGET (ask->name_entry), _("Admin name"));
  gtk_container_add (GTK_CONTAINER (area), GTK_WIDGET (ask->name_entry));
  ask->pin_entry = GTK_ENTRY (gtk_entry_new ());
  gtk_entry_set_visibility (ask->pin_entry, FALSE);
  gtk_entry_set_input_purpose (ask->pin_entry, GTK_INPUT_PURPOSE_PIN);
  gtk_entry_set_placeholder_text (ask->pin_entry, _("PIN"));
  gtk_entry_set_activates_default (ask->pin_entry, TRUE);
  st_gui_name (GTK_WIDGET (ask->pin_entry), _("Admin PIN"));
  gtk_container_add (GTK_CONTAINER (area), GTK_WIDGET (ask->pin_entry));
  ask->status = GTK_LABEL (st_kiosk_label (""));
  st_gui_name (GTK_WIDGET (ask->status), _("Kiosk status"));
  gtk_container_add (GTK_CONTAINER (area), GTK_WIDGET (ask->status));
  gtk_dialog_set_default_response (GTK_DIALOG (ask->dialog), GTK_RESPONSE_ACCEPT);
  g_signal_connect (ask->dialog, "response", G_CALLBACK (st_kiosk_on_response), ask);
  g_signal_connect (ask->dialog, "destroy", G_CALLBACK (st_kiosk_on_destroy), ask);
  gtk_widget_show_all (ask->dialog);
}
