#include "st-qa-view.h"

#include <glib/gi18n.h>

#include "st-text.h"

struct _StQaView {
  GtkBox parent;
  GtkComboBoxText *port_combo;
  GtkButton *verify_unit_button, *verify_manifest_button;
  GtkBox *unit_card, *manifest_card;
  GtkLabel *unit_title, *manifest_title;
  GtkTextView *unit_text, *manifest_text;
  GtkEntry *manifest_entry;
  StGuiContext ctx;            /* station, session, cancellable */
};

G_DEFINE_TYPE (StQaView, st_qa_view, GTK_TYPE_BOX)

static void
st_qa_view_show (GtkBox *card, GtkLabel *title, GtkTextView *text, const char *headline,
                 const char *body, int verdict /* -1 none, 0 fail, 1 pass */)
{
  GtkStyleContext *style = gtk_widget_get_style_context (GTK_WIDGET (card));
  gtk_style_context_remove_class (style, "st-card-pass");
  gtk_style_context_remove_class (style, "st-card-fail");
  if (verdict >= 0)
    gtk_style_context_add_class (style, verdict ? "st-card-pass" : "st-card-fail");
  gtk_label_set_text (title, headline);
  /* A report quotes the device (its model, its answers): escaped. */
  g_autofree gchar *safe = st_text_escape (body != NULL ? body : "", -1, ST_TEXT_KEEP_NEWLINES);
  gtk_text_buffer_set_text (gtk_text_view_get_buffer (text), safe, -1);
}

/* A report's text, with its message under it when it has one. */
static gchar *
st_qa_report_body (const StReport *report)
{
  return report->message != NULL ? g_strdup_printf ("%s\n%s", report->text, report->message)
                                 : g_strdup (report->text);
}

static void
st_qa_view_on_unit (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(StQaView) self = user_data;
  g_autoptr(GError) error = NULL;
  gtk_widget_set_sensitive (GTK_WIDGET (self->verify_unit_button), TRUE);
  g_autoptr(StReport) r = st_station_verify_unit_finish (self->ctx.station, result, &error);
  if (r == NULL)
    {
      g_autofree gchar *body = g_strdup_printf (_("%s\n\nCheck the unit sits in the socket and the cable, then "
                                                "try again."), error->message);
      st_qa_view_show (self->unit_card, self->unit_title, self->unit_text, _("NO ANSWER: the unit could not be checked"),
                       body, 0);
      return;
    }
  g_autofree gchar *body = st_qa_report_body (r);
  st_qa_view_show (self->unit_card, self->unit_title, self->unit_text,
                   r->ok ? _("UNIT VERIFIED: chain, proof of possession and record agree")
                         : _("UNIT REJECTED: set it aside for QA review"),
                   body, r->ok);
}

static void
st_qa_view_on_verify_unit (StQaView *self)
{
  g_autofree gchar *port = gtk_combo_box_text_get_active_text (self->port_combo);
  if (port == NULL || *port == '\0')
    {
      st_qa_view_show (self->unit_card, self->unit_title, self->unit_text, _("Choose the socket of the unit first."), NULL, -1);
      return;
    }
  gtk_widget_set_sensitive (GTK_WIDGET (self->verify_unit_button), FALSE);
  st_qa_view_show (self->unit_card, self->unit_title, self->unit_text, "Verifying…", NULL, -1);
  st_station_verify_unit_async (self->ctx.station, port, NULL, self->ctx.cancellable,
                                st_qa_view_on_unit, g_object_ref (self));
}

static void
st_qa_view_on_manifest (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(StQaView) self = user_data;
  g_autoptr(GError) error = NULL;
  gtk_widget_set_sensitive (GTK_WIDGET (self->verify_manifest_button), TRUE);
  g_autoptr(StReport) r = st_station_verify_manifest_finish (self->ctx.station, result, &error);
  if (r == NULL)
    {
      st_qa_view_show (self->manifest_card, self->manifest_title, self->manifest_text,
                       _("The manifest could not be checked"), error->message, 0);
      return;
    }
  g_autofree gchar *body = st_qa_report_body (r);
  st_qa_view_show (self->manifest_card, self->manifest_title, self->manifest_text,
                   r->ok ? _("MANIFEST VERIFIED") : _("MANIFEST REJECTED: do not ship it"), body, r->ok);
}

static void
st_qa_view_on_verify_manifest (StQaView *self)
{
  const char *dir = gtk_entry_get_text (self->manifest_entry);
  if (*dir == '\0')
    {
      st_qa_view_show (self->manifest_card, self->manifest_title, self->manifest_text,
                       _("Choose the manifest folder first."), NULL, -1);
      return;
    }
  gtk_widget_set_sensitive (GTK_WIDGET (self->verify_manifest_button), FALSE);
  st_station_verify_manifest_async (self->ctx.station, dir, self->ctx.cancellable,
                                    st_qa_view_on_manifest, g_object_ref (self));
}

static void
st_qa_view_on_browse (StQaView *self)
{
  GtkWidget *toplevel = gtk_widget_get_toplevel (GTK_WIDGET (self));
  GtkFileChooserNative *chooser =
    gtk_file_chooser_native_new (_("Manifest folder"), GTK_WINDOW (toplevel),
                                 GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER, _("Choose"), _("Cancel"));
  if (gtk_native_dialog_run (GTK_NATIVE_DIALOG (chooser)) == GTK_RESPONSE_ACCEPT)
    {
      g_autofree gchar *dir = gtk_file_chooser_get_filename (GTK_FILE_CHOOSER (chooser));
      if (dir != NULL)
        gtk_entry_set_text (self->manifest_entry, dir);
    }
  g_object_unref (chooser);
}

static void
st_qa_view_dispose (GObject *object)
{
  StQaView *self = ST_QA_VIEW (object);
  st_gui_context_clear (&self->ctx);
  G_OBJECT_CLASS (st_qa_view_parent_class)->dispose (object);
}

static void
st_qa_view_class_init (StQaViewClass *klass)
{
  GtkWidgetClass *wc = GTK_WIDGET_CLASS (klass);
  G_OBJECT_CLASS (klass)->dispose = st_qa_view_dispose;
  gtk_widget_class_set_template_from_resource (wc, "/org/station/gui/st-qa-view.ui");
#define BIND(x) gtk_widget_class_bind_template_child (wc, StQaView, x)
  BIND (port_combo); BIND (verify_unit_button); BIND (verify_manifest_button); BIND (unit_card);
  BIND (manifest_card); BIND (unit_title); BIND (manifest_title); BIND (unit_text); BIND (manifest_text);
  BIND (manifest_entry);
#undef BIND
  gtk_widget_class_bind_template_callback (wc, st_qa_view_on_verify_unit);
  gtk_widget_class_bind_template_callback (wc, st_qa_view_on_verify_manifest);
  gtk_widget_class_bind_template_callback (wc, st_qa_view_on_browse);
}

static void
st_qa_view_init (StQaView *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  st_gui_context_init (&self->ctx);
  st_gui_name (GTK_WIDGET (self->port_combo), _("Unit socket"));
  st_gui_name (gtk_bin_get_child (GTK_BIN (self->port_combo)), _("Unit socket path"));
  st_gui_name (GTK_WIDGET (self->unit_title), _("Unit result"));
  st_gui_name (GTK_WIDGET (self->unit_text), _("Unit checks"));
  st_gui_name (GTK_WIDGET (self->manifest_entry), _("Manifest folder"));
  st_gui_name (GTK_WIDGET (self->manifest_title), _("Manifest result"));
  st_gui_name (GTK_WIDGET (self->manifest_text), _("Manifest report"));
}

GtkWidget *
st_qa_view_new (const char *const *ports)
{
  StQaView *self = g_object_new (ST_TYPE_QA_VIEW, NULL);
  for (guint i = 0; ports != NULL && ports[i] != NULL; i++)
    gtk_combo_box_text_append_text (self->port_combo, ports[i]);
  return GTK_WIDGET (self);
}

void
st_qa_view_set_session (GtkWidget *view, StStation *station, const StAuthSession *session)
{
  StQaView *self = ST_QA_VIEW (view);
  if (!st_gui_context_set (&self->ctx, station, session))
    {
      st_qa_view_show (self->unit_card, self->unit_title, self->unit_text,
                       _("Put the unit in the socket and press Verify unit."), NULL, -1);
      st_qa_view_show (self->manifest_card, self->manifest_title, self->manifest_text, "", NULL, -1);
    }
}
