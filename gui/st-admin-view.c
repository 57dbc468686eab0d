#include "st-admin-view.h"

#include <glib/gi18n.h>

struct _StAdminView {
  GtkBox parent;
  GtkLabel *hsm_label, *chain_label, *db_label, *audit_label, *status_label;
  GtkTextView *setup_text;
  GtkListBox *operator_list;
  GtkComboBoxText *role_combo;
  GtkEntry *name_entry, *pin_entry, *hsm_entry;
  GtkBox *hsm_box;
  GtkButton *unlock_hsm_button;
  StGuiContext ctx;            /* station, session, cancellable */
  StStation *watched;          /* whose proxy's notify::unlocked we follow */
  gulong unlocked_id;
  gchar *token;                /* the token, as the last health report named it */
};

G_DEFINE_TYPE (StAdminView, st_admin_view, GTK_TYPE_BOX)

void st_admin_view_refresh (StAdminView *self);

/* The HSM's state as the service's "Unlocked" property says it (it
 * changes when any admin unlocks or locks the station, here or with the
 * CLI); the PIN box shows while it is locked. */
static void
st_admin_view_show_hsm (StAdminView *self)
{
  gboolean unlocked = self->ctx.station != NULL && st_station_hsm_is_open (self->ctx.station);
  g_autofree gchar *hsm = !unlocked
    ? g_strdup (_("HSM: locked. The station signs nothing until an admin unlocks it: type the HSM PIN "
                "and press Unlock HSM."))
    : self->token != NULL ? g_strdup_printf (_("HSM: unlocked; %s, logged in"), self->token)
                          : g_strdup ("HSM: unlocked");
  gtk_label_set_text (self->hsm_label, hsm);
  gtk_widget_set_visible (GTK_WIDGET (self->hsm_box), !unlocked && self->ctx.session != NULL);
}

static void
st_admin_view_on_health (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(StAdminView) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(StHealth) h = st_station_health_finish (self->ctx.station, result, &error);
  if (st_gui_failed (error, self->status_label))
    return;
  g_free (self->token);
  self->token = g_strdup (h->token != NULL && h->logged_in ? h->token : NULL);
  st_admin_view_show_hsm (self);
  g_autofree gchar *chain = h->min_days_left == G_MAXINT
    ? g_strdup_printf (_("CA chain:\n%s"), h->chain)
    : g_strdup_printf (_("CA chain (soonest expiry in %d days):\n%s"), h->min_days_left, h->chain);
  gtk_label_set_text (self->chain_label, chain);
  g_autofree gchar *size = g_format_size (h->db_size), *free_s = g_format_size (h->disk_free);
  g_autofree gchar *db = g_strdup_printf (_("Database: %s, %s; %s free on its disk%s"), h->db_path, size, free_s,
                                          h->disk_free < 1024ull * 1024 * 1024 ? _(" (LOW: free some space)") : "");
  gtk_label_set_text (self->db_label, db);
  g_autofree gchar *audit = g_strdup_printf (_("Audit chain: %s\n%s"), h->audit_ok ? _("intact") : _("PROBLEM"), h->audit);
  gtk_label_set_text (self->audit_label, audit);
  gtk_text_buffer_set_text (gtk_text_view_get_buffer (self->setup_text), h->setup_text, -1);
}

static void
st_admin_view_on_operators (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(StAdminView) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) ops = st_station_list_operators_finish (self->ctx.station, result, &error);
  if (ops == NULL)
    return;
  st_gui_list_clear (self->operator_list);
  for (guint i = 0; i < ops->len; i++)
    {
      StOperatorInfo *op = g_ptr_array_index (ops, i);
      g_autofree gchar *text = g_strdup_printf ("%s  %s%s", op->name, op->role, op->locked ? "  LOCKED" : "");
      g_autofree gchar *name = g_strdup_printf (_("Operator %s"), op->name);
      st_gui_list_add (self->operator_list, text, name, 0, "st-name", g_strdup (op->name), g_free);
    }
}

void
st_admin_view_refresh (StAdminView *self)
{
  if (self->ctx.session == NULL)
    return;
  st_admin_view_show_hsm (self);
  st_station_health_async (self->ctx.station, self->ctx.cancellable, st_admin_view_on_health,
                           g_object_ref (self));
  st_station_list_operators_async (self->ctx.station, self->ctx.cancellable, st_admin_view_on_operators,
                                   g_object_ref (self));
}

static void
st_admin_view_on_changed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(StAdminView) self = user_data;
  g_autoptr(GError) error = NULL;
  if (!st_station_change_operator_finish (self->ctx.station, result, &error))
    st_gui_status (self->status_label, error->message, TRUE);
  else
    st_gui_status (self->status_label, "Done.", FALSE);
  st_admin_view_refresh (self);
}

static void
st_admin_view_change (StAdminView *self, StOperatorChange change, const char *name, const char *pin)
{
  StRole role = ST_ROLE_OPERATOR;
  const char *role_id = gtk_combo_box_get_active_id (GTK_COMBO_BOX (self->role_combo));
  if (role_id != NULL)
    st_role_from_string (role_id, &role, NULL);
  st_station_change_operator_async (self->ctx.station, change, name, role, pin,
                                    self->ctx.cancellable, st_admin_view_on_changed, g_object_ref (self));
}

static const char *
st_admin_view_selected (StAdminView *self)
{
  GtkListBoxRow *row = gtk_list_box_get_selected_row (self->operator_list);
  const char *name = row != NULL ? g_object_get_data (G_OBJECT (row), "st-name") : NULL;
  if (name == NULL)
    st_gui_status (self->status_label, _("Choose an operator in the list first."), TRUE);
  return name;
}

static void
st_admin_view_on_unlock (StAdminView *self)
{
  const char *name = st_admin_view_selected (self);
  if (name != NULL)
    st_admin_view_change (self, ST_OPERATOR_UNLOCK, name, NULL);
}

static void
st_admin_view_on_set_role (StAdminView *self)
{
  const char *name = st_admin_view_selected (self);
  if (name != NULL)
    st_admin_view_change (self, ST_OPERATOR_SET_ROLE, name, NULL);
}

static void
st_admin_view_on_add (StAdminView *self)
{
  st_admin_view_change (self, ST_OPERATOR_ADD, gtk_entry_get_text (self->name_entry),
                        gtk_entry_get_text (self->pin_entry));
  gtk_entry_set_text (self->pin_entry, "");
}

static void
st_admin_view_on_hsm_unlocked (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(StAdminView) self = user_data;
  g_autoptr(GError) error = NULL;
  gtk_widget_set_sensitive (GTK_WIDGET (self->unlock_hsm_button), TRUE);
  if (!st_station_unlock_hsm_finish (self->ctx.station, result, &error))
    {
      st_gui_failed (error, self->status_label);
      return;
    }
  st_gui_status (self->status_label, _("The HSM is unlocked: the station signs until it stops or an admin "
                 "locks it."), FALSE);
  st_admin_view_refresh (self);
}

/* The PIN goes to the service, which keeps it; the entry is emptied at once. */
static void
st_admin_view_on_unlock_hsm (StAdminView *self)
{
  const char *pin = gtk_entry_get_text (self->hsm_entry);
  if (self->ctx.session == NULL)
    return;
  if (*pin == '\0')
    {
      st_gui_status (self->status_label, _("Type the HSM PIN first."), TRUE);
      return;
    }
  gtk_widget_set_sensitive (GTK_WIDGET (self->unlock_hsm_button), FALSE);
  st_gui_status (self->status_label, _("Unlocking the HSM…"), FALSE);
  st_station_unlock_hsm_async (self->ctx.station, pin, self->ctx.cancellable, st_admin_view_on_hsm_unlocked,
                               g_object_ref (self));
  gtk_entry_set_text (self->hsm_entry, "");
}

static void
st_admin_view_on_unlocked_changed (GObject *proxy, GParamSpec *pspec, StAdminView *self)
{
  if (self->ctx.session == NULL)
    return;
  if (!st_station_hsm_is_open (self->ctx.station))
    g_clear_pointer (&self->token, g_free);
  st_admin_view_refresh (self);
}

static void
st_admin_view_unwatch (StAdminView *self)
{
  if (self->unlocked_id != 0)
    g_signal_handler_disconnect (st_station_get_proxy (self->watched), self->unlocked_id);
  self->unlocked_id = 0;
  self->watched = NULL;
}

static void
st_admin_view_dispose (GObject *object)
{
  StAdminView *self = ST_ADMIN_VIEW (object);
  st_admin_view_unwatch (self);
  g_clear_pointer (&self->token, g_free);
  st_gui_context_clear (&self->ctx);
  G_OBJECT_CLASS (st_admin_view_parent_class)->dispose (object);
}

static void
st_admin_view_class_init (StAdminViewClass *klass)
{
  GtkWidgetClass *wc = GTK_WIDGET_CLASS (klass);
  G_OBJECT_CLASS (klass)->dispose = st_admin_view_dispose;
  gtk_widget_class_set_template_from_resource (wc, "/org/station/gui/st-admin-view.ui");
#define BIND(x) gtk_widget_class_bind_template_child (wc, StAdminView, x)
  BIND (hsm_label); BIND (chain_label); BIND (db_label); BIND (audit_label); BIND (status_label);
  BIND (setup_text); BIND (operator_list); BIND (role_combo); BIND (name_entry); BIND (pin_entry);
  BIND (hsm_entry); BIND (hsm_box); BIND (unlock_hsm_button);
#undef BIND
  gtk_widget_class_bind_template_callback (wc, st_admin_view_refresh);
  gtk_widget_class_bind_template_callback (wc, st_admin_view_on_unlock);
  gtk_widget_class_bind_template_callback (wc, st_admin_view_on_set_role);
  gtk_widget_class_bind_template_callback (wc, st_admin_view_on_add);
  gtk_widget_class_bind_template_callback (wc, st_admin_view_on_unlock_hsm);
}

static void
st_admin_view_init (StAdminView *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  st_gui_context_init (&self->ctx);
  st_gui_name (GTK_WIDGET (self->hsm_label), _("HSM state"));
  st_gui_name (GTK_WIDGET (self->chain_label), _("CA chain"));
  st_gui_name (GTK_WIDGET (self->db_label), _("Database"));
  st_gui_name (GTK_WIDGET (self->audit_label), _("Audit chain"));
  st_gui_name (GTK_WIDGET (self->setup_text), _("Set-up details"));
  st_gui_name (GTK_WIDGET (self->operator_list), _("Operator list"));
  st_gui_name (GTK_WIDGET (self->role_combo), _("Role"));
  st_gui_name (GTK_WIDGET (self->name_entry), _("New operator name"));
  st_gui_name (GTK_WIDGET (self->pin_entry), _("New operator PIN"));
  st_gui_name (GTK_WIDGET (self->status_label), _("Admin status"));
  st_gui_name (GTK_WIDGET (self->hsm_entry), _("HSM PIN"));
}

GtkWidget *
st_admin_view_new (void)
{
  return g_object_new (ST_TYPE_ADMIN_VIEW, NULL);
}

void
st_admin_view_set_session (GtkWidget *view, StStation *station, const StAuthSession *session)
{
  StAdminView *self = ST_ADMIN_VIEW (view);
  if (station != self->watched)
    {
      st_admin_view_unwatch (self);
      self->watched = station;
      self->unlocked_id = g_signal_connect (st_station_get_proxy (station), "notify::unlocked",
                                            G_CALLBACK (st_admin_view_on_unlocked_changed), self);
    }
  if (!st_gui_context_set (&self->ctx, station, session))
    {
      gtk_entry_set_text (self->hsm_entry, "");
      gtk_label_set_text (self->status_label, "");
      st_admin_view_show_hsm (self);
      return;
    }
  st_admin_view_refresh (self);
}
