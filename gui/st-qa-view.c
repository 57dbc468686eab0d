#include "st-qa-view.h"

#include <inttypes.h>
#include <string.h>

#include <glib/gi18n.h>

#include "st-error.h"
#include "st-manifest-offline.h"
#include "st-scan.h"
#include "st-text.h"

struct _StQaView {
  GtkBox parent;
  GtkComboBoxText *port_combo;
  GtkButton *verify_unit_button, *verify_manifest_button;
  GtkBox *unit_card, *manifest_card;
  GtkLabel *unit_title, *manifest_title, *unit_checked;
  GtkEntry *scan_entry, *root_entry, *pin_entry;
  GtkEntry *matter_entry;      /* issue 18: a Matter onboarding code for UnitVerify */
  gchar *scanned_matter;       /* the Matter code read with the scan, for its device's verify */
  gboolean verify_with_code;   /* the running Verify unit sent a Matter code */
  GtkLabel *manifest_checked;
  guint scan_seq;              /* the scan shown; a reply to an older one is dropped */
  StUnitLookup *scanned;       /* the record of the scan whose device is being verified */
  gchar *scanned_port;
  gboolean verifying;          /* Verify unit runs: a scan waits for it */
  guint focus_idle;            /* the scan field takes the focus once the view is up */
  GtkTextView *unit_text, *manifest_text;
  GtkEntry *manifest_entry;
  StGuiContext ctx;            /* station, session, cancellable */
};

G_DEFINE_TYPE (StQaView, st_qa_view, GTK_TYPE_BOX)

static void st_qa_view_show_checked (StQaView *self, const char *text);

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

/* Issue 18: the Matter onboarding code in its field (a scanner types the
 * QR text "MT:..." and Enter; the manual code is typed), read as any scan
 * (st-scan.h: control characters, invalid text and over-long codes are
 * refused before anything is sent). TRUE with *@code NULL when the field is
 * empty; FALSE when refused: the card says why. A code taken is cleared
 * from the field: it encodes the setup passcode, and the card shows only
 * what the service's report says of it. */
static gboolean
st_qa_view_matter_code (StQaView *self, gchar **code)
{
  const char *text = gtk_entry_get_text (self->matter_entry);
  *code = NULL;
  if (*text == '\0')
    return TRUE;
  g_autofree gchar *message = NULL;
  gchar *read = st_scan_read (text, ST_SCAN_MATTER_CODE, &message);
  if (read == NULL)
    {
      st_qa_view_show_checked (self, _("Checked: nothing (the Matter code was refused)."));
      st_qa_view_show (self->unit_card, self->unit_title, self->unit_text,
                       _("MATTER CODE REFUSED: scan the unit's Matter QR code again"), message, -1);
      gtk_editable_select_region (GTK_EDITABLE (self->matter_entry), 0, -1);
      return FALSE;
    }
  gtk_entry_set_text (self->matter_entry, "");
  *code = read;
  return TRUE;
}

static void
st_qa_view_on_unit (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(StQaView) self = user_data;
  g_autoptr(GError) error = NULL;
  gtk_widget_set_sensitive (GTK_WIDGET (self->verify_unit_button), TRUE);
  self->verifying = FALSE;
  g_autoptr(StReport) r = st_station_verify_unit_finish (self->ctx.station, result, &error);
  gboolean with_code = self->verify_with_code;
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
                   !r->ok ? _("UNIT REJECTED: set it aside for QA review")
                   : with_code ? _("UNIT VERIFIED: chain, proof of possession, record and Matter code agree")
                               : _("UNIT VERIFIED: chain, proof of possession and record agree"),
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
  if (self->verifying || !gtk_widget_get_sensitive (GTK_WIDGET (self->verify_unit_button)))
    return; /* Enter in the Matter field while a verify or a scan runs: the code stays for the next */
  g_autofree gchar *matter_code = NULL;
  if (!st_qa_view_matter_code (self, &matter_code))
    return;
  self->verify_with_code = matter_code != NULL;
  gtk_widget_set_sensitive (GTK_WIDGET (self->verify_unit_button), FALSE);
  self->verifying = TRUE;
  self->scan_seq++; /* a scan's reply still on its way is no longer shown */
  g_clear_pointer (&self->scanned, st_unit_lookup_free);
  g_clear_pointer (&self->scanned_port, g_free);
  g_autofree gchar *shown_port = st_text_escape (port, -1, ST_TEXT_ONE_LINE);
  g_autofree gchar *checked = matter_code != NULL
    ? g_strdup_printf (_("Checked: the device in the socket %s, its record, and the Matter code scanned."),
                       shown_port)
    : g_strdup_printf (_("Checked: the device in the socket %s, and its record."), shown_port);
  gtk_label_set_text (self->unit_checked, checked);
  st_qa_view_show (self->unit_card, self->unit_title, self->unit_text, _("Verifying…"), NULL, -1);
  st_station_verify_unit_code_async (self->ctx.station, port, NULL, matter_code, self->ctx.cancellable,
                                     st_qa_view_on_unit, g_object_ref (self));
}

/* ---- QA's scan (issue 17): a unit found by its product serial or uid ----
 *
 * The service looks the code up and checks the record (UnitLookup: the
 * unit done, its certificate active and chaining to the station's root,
 * its serial, key and names the recorded ones). With a socket chosen, the
 * device in it is verified too (UnitVerify) and must be the scanned unit;
 * "Unit checked" says which of the two was checked. */

typedef struct {
  StQaView *self;
  guint seq;
} StQaScanCall;

static StQaScanCall *
st_qa_scan_call_new (StQaView *self)
{
  StQaScanCall *call = g_new0 (StQaScanCall, 1);
  call->self = g_object_ref (self);
  call->seq = self->scan_seq;
  return call;
}

static void
st_qa_scan_call_free (StQaScanCall *call)
{
  g_object_unref (call->self);
  g_free (call);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StQaScanCall, st_qa_scan_call_free)

/* What the record says, at the top of the card's text. */
static gchar *
st_qa_lookup_summary (const StUnitLookup *l)
{
  return g_strdup_printf (_("Unit %" PRId64 " of batch %" PRId64 ", work order %s\n"
                            "State: %s\nProduct serial: %s\nUid: %s\nCertificate: serial %s, %s\n"),
                          l->unit_id, l->batch_id, l->work_order, l->state,
                          *l->product_serial != '\0' ? l->product_serial : "-", l->uid,
                          *l->cert_serial != '\0' ? l->cert_serial : "-",
                          *l->cert_state != '\0' ? l->cert_state : _("none"));
}

/* The uid UnitVerify's report names for the device on @port (its first
 * line: "unit on PORT: uid HEX, ..."), or NULL. */
static gchar *
st_qa_report_uid (const char *report, const char *port)
{
  g_autofree gchar *prefix = g_strdup_printf ("unit on %s: uid ", port);
  if (report == NULL || !g_str_has_prefix (report, prefix))
    return NULL;
  const char *p = report + strlen (prefix), *end = p;
  while (g_ascii_isxdigit (*end))
    end++;
  return end > p && (*end == ',' || *end == '\n') ? g_strndup (p, (gsize) (end - p)) : NULL;
}

static void
st_qa_view_show_checked (StQaView *self, const char *text)
{
  gtk_label_set_text (self->unit_checked, text);
}

static void
st_qa_view_show_record (StQaView *self, const StUnitLookup *l, const char *device_text, gboolean device_ok,
                        gboolean device_checked)
{
  g_autofree gchar *summary = st_qa_lookup_summary (l);
  g_autofree gchar *record = st_qa_report_body (l->report);
  g_autofree gchar *body = device_text != NULL
                           ? g_strdup_printf (_("%s\nThe record:\n%s\nThe device:\n%s"), summary, record, device_text)
                           : g_strdup_printf (_("%s\nThe record:\n%s"), summary, record);
  g_autofree gchar *serial = st_text_escape (*l->product_serial != '\0' ? l->product_serial : l->uid, -1,
                                             ST_TEXT_ONE_LINE);
  gboolean ok = l->report->ok && (!device_checked || device_ok);
  g_autofree gchar *title = NULL;
  if (!l->report->ok && g_strcmp0 (l->cert_state, "revoked") == 0)
    title = g_strdup_printf (_("UNIT REVOKED: %s must not ship; set it aside"), serial);
  else if (!ok)
    title = g_strdup_printf (_("UNIT REJECTED: %s; set it aside for QA review"), serial);
  else if (device_checked)
    title = g_strdup_printf (_("UNIT VERIFIED: %s, its record and the device agree"), serial);
  else
    title = g_strdup_printf (_("RECORD VERIFIED: %s is on record as shipped and its certificate checks"), serial);
  st_qa_view_show (self->unit_card, self->unit_title, self->unit_text, title, body, ok);
}

static void
st_qa_view_on_scan_device (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(StQaScanCall) call = user_data;
  StQaView *self = call->self;
  g_autoptr(GError) error = NULL;
  g_autoptr(StReport) r = st_station_verify_unit_finish (self->ctx.station, result, &error);
  if (call->seq != self->scan_seq || self->scanned == NULL)
    return;
  g_autoptr(StUnitLookup) l = g_steal_pointer (&self->scanned);
  g_autofree gchar *port = g_steal_pointer (&self->scanned_port);
  gtk_widget_set_sensitive (GTK_WIDGET (self->verify_unit_button), TRUE);
  g_autofree gchar *shown_port = st_text_escape (port, -1, ST_TEXT_ONE_LINE);
  if (r == NULL)
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
      /* nothing answered in the socket: the record alone was checked */
      g_autofree gchar *checked = g_strdup_printf (_("Checked: the record only. No device answered in the "
                                                     "socket %s: %s"), shown_port, error->message);
      st_qa_view_show_checked (self, checked);
      st_qa_view_show_record (self, l, NULL, FALSE, FALSE);
      return;
    }
  g_autofree gchar *uid = st_qa_report_uid (r->text, port);
  g_autofree gchar *device = st_qa_report_body (r);
  gboolean same = uid != NULL && g_ascii_strcasecmp (uid, l->uid) == 0;
  if (!same)
    {
      g_autofree gchar *shown_uid = st_text_escape (uid != NULL ? uid : "?", -1, ST_TEXT_ONE_LINE);
      g_autofree gchar *checked = g_strdup_printf (_("Checked: the record, and the device in the socket %s, "
                                                     "which is another unit (uid %s): put the scanned unit "
                                                     "in the socket and scan it again."), shown_port, shown_uid);
      st_qa_view_show_checked (self, checked);
      st_qa_view_show_record (self, l, device, FALSE, TRUE);
      return;
    }
  g_autofree gchar *checked = g_strdup_printf (_("Checked: the record and the device in the socket %s."),
                                               shown_port);
  st_qa_view_show_checked (self, checked);
  st_qa_view_show_record (self, l, device, r->ok, TRUE);
}

static void
st_qa_view_on_lookup (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(StQaScanCall) call = user_data;
  StQaView *self = call->self;
  g_autoptr(GError) error = NULL;
  g_autoptr(StUnitLookup) l = st_station_lookup_unit_finish (self->ctx.station, result, &error);
  if (call->seq != self->scan_seq)
    return;
  if (l == NULL)
    {
      gtk_widget_set_sensitive (GTK_WIDGET (self->verify_unit_button), TRUE);
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
      gboolean unknown = g_error_matches (error, ST_ERROR, ST_ERROR_NOT_FOUND);
      st_qa_view_show_checked (self, _("Checked: nothing (no record found)."));
      st_qa_view_show (self->unit_card, self->unit_title, self->unit_text,
                       unknown ? _("NOT ON RECORD: set the unit aside for QA review")
                               : _("The unit could not be looked up"), error->message, 0);
      return;
    }
  g_autofree gchar *port = gtk_combo_box_text_get_active_text (self->port_combo);
  if (port == NULL || *port == '\0')
    {
      gtk_widget_set_sensitive (GTK_WIDGET (self->verify_unit_button), TRUE);
      st_qa_view_show_checked (self, _("Checked: the record only (no socket chosen for the device)."));
      st_qa_view_show_record (self, l, NULL, FALSE, FALSE);
      return;
    }
  g_clear_pointer (&self->scanned, st_unit_lookup_free);
  g_free (self->scanned_port);
  self->scanned = g_steal_pointer (&l);
  self->scanned_port = g_strdup (port);
  g_autofree gchar *matter_code = g_steal_pointer (&self->scanned_matter);
  st_station_verify_unit_code_async (self->ctx.station, port, NULL, matter_code, self->ctx.cancellable,
                                     st_qa_view_on_scan_device, st_qa_scan_call_new (self));
}

static void
st_qa_view_on_scan (StQaView *self)
{
  if (self->ctx.session == NULL)
    return;
  if (self->verifying)
    {
      /* the scan stays in the field, selected: Enter again once the verify ended */
      gtk_editable_select_region (GTK_EDITABLE (self->scan_entry), 0, -1);
      gtk_label_set_text (self->unit_checked, _("A unit is being verified: press Enter in the scan field "
                                                "again when its result shows."));
      return;
    }
  g_autofree gchar *message = NULL;
  g_autofree gchar *code = st_scan_read (gtk_entry_get_text (self->scan_entry), ST_SCAN_UNIT, &message);
  self->scan_seq++;
  g_clear_pointer (&self->scanned, st_unit_lookup_free);
  g_clear_pointer (&self->scanned_port, g_free);
  g_clear_pointer (&self->scanned_matter, g_free);
  /* a Matter code in its field goes with the device's verify (issue 18) */
  g_autofree gchar *scan_port = gtk_combo_box_text_get_active_text (self->port_combo);
  if (code != NULL && scan_port != NULL && *scan_port != '\0'
      && !st_qa_view_matter_code (self, &self->scanned_matter))
    {
      gtk_widget_set_sensitive (GTK_WIDGET (self->verify_unit_button), TRUE);
      return;
    }
  if (code == NULL)
    {
      gtk_widget_set_sensitive (GTK_WIDGET (self->verify_unit_button), TRUE);
      st_qa_view_show_checked (self, _("Checked: nothing (the scan was refused)."));
      st_qa_view_show (self->unit_card, self->unit_title, self->unit_text, _("SCAN REFUSED: scan again"),
                       message, -1);
      gtk_editable_select_region (GTK_EDITABLE (self->scan_entry), 0, -1);
      return;
    }
  gtk_entry_set_text (self->scan_entry, "");
  gtk_widget_set_sensitive (GTK_WIDGET (self->verify_unit_button), FALSE);
  g_autofree gchar *shown = st_text_escape (code, -1, ST_TEXT_ONE_LINE);
  g_autofree gchar *title = g_strdup_printf (_("Looking up %s…"), shown);
  st_qa_view_show_checked (self, "");
  st_qa_view_show (self->unit_card, self->unit_title, self->unit_text, title, NULL, -1);
  st_station_lookup_unit_async (self->ctx.station, code, self->ctx.cancellable, st_qa_view_on_lookup,
                                st_qa_scan_call_new (self));
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

/* Issue 17: with a trusted root chosen, the manifest is verified here, in
 * this process (st-manifest-offline.h: no service, no database), against
 * that root and the signer pin given; without one, by the service against
 * the station's own root. "Manifest checked" says which. */
static void
st_qa_view_on_manifest_offline (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(StQaView) self = user_data;
  g_autoptr(GError) error = NULL;
  gtk_widget_set_sensitive (GTK_WIDGET (self->verify_manifest_button), TRUE);
  g_autoptr(StReport) r = st_manifest_verify_offline_finish (result, &error);
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

static gboolean
st_qa_view_pin_ok (const char *pin)
{
  gsize n = strlen (pin);
  if (n == 0)
    return TRUE; /* none: the verify fails, naming the pin the manifest claims */
  if (n != 64)
    return FALSE;
  for (gsize i = 0; i < n; i++)
    if (!g_ascii_isxdigit (pin[i]))
      return FALSE;
  return TRUE;
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
  const char *root = gtk_entry_get_text (self->root_entry);
  if (*root != '\0')
    {
      g_autofree gchar *pin = g_strstrip (g_ascii_strdown (gtk_entry_get_text (self->pin_entry), -1));
      if (!st_qa_view_pin_ok (pin))
        {
          gtk_label_set_text (self->manifest_checked, "");
          st_qa_view_show (self->manifest_card, self->manifest_title, self->manifest_text,
                           _("The signer pin is 64 hex digits: the SHA-256 of the station signing key, as "
                             "the key ceremony's record or the station's [certificates] signing-key-sha256 "
                             "gives it."), NULL, -1);
          return;
        }
      g_autofree gchar *shown = st_text_escape (root, -1, ST_TEXT_ONE_LINE);
      g_autofree gchar *checked = g_strdup_printf (_("Checked here, against the trusted root %s (not by the "
                                                     "station service)."), shown);
      gtk_label_set_text (self->manifest_checked, checked);
      gtk_widget_set_sensitive (GTK_WIDGET (self->verify_manifest_button), FALSE);
      st_qa_view_show (self->manifest_card, self->manifest_title, self->manifest_text, _("Verifying…"), NULL, -1);
      st_manifest_verify_offline_async (dir, root, pin, self->ctx.cancellable, st_qa_view_on_manifest_offline,
                                        g_object_ref (self));
      return;
    }
  gtk_label_set_text (self->manifest_checked,
                      _("Checked by the station service, against the station's own root."));
  gtk_widget_set_sensitive (GTK_WIDGET (self->verify_manifest_button), FALSE);
  st_station_verify_manifest_async (self->ctx.station, dir, self->ctx.cancellable,
                                    st_qa_view_on_manifest, g_object_ref (self));
}

static void
st_qa_view_on_browse (StQaView *self)
{
  g_autofree gchar *dir = st_gui_choose (GTK_WIDGET (self), _("Manifest folder"),
                                         GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER, _("Choose"), FALSE, NULL, NULL);
  if (dir != NULL)
    gtk_entry_set_text (self->manifest_entry, dir);
}

static void
st_qa_view_on_browse_root (StQaView *self)
{
  GtkFileFilter *filter = gtk_file_filter_new ();
  gtk_file_filter_set_name (filter, _("Certificates (PEM)"));
  gtk_file_filter_add_pattern (filter, "*.pem");
  gtk_file_filter_add_pattern (filter, "*.crt");
  g_autofree gchar *path = st_gui_choose (GTK_WIDGET (self), _("Trusted root certificate"),
                                          GTK_FILE_CHOOSER_ACTION_OPEN, _("Choose"), FALSE, NULL, filter);
  if (path != NULL)
    gtk_entry_set_text (self->root_entry, path);
}

/* A hand scanner types into the widget that has the focus: when the QA
 * view comes up, that is the scan field. Taken when the main loop is idle:
 * the stack that shows the view moves the focus into it after mapping it. */
static gboolean
st_qa_view_focus_idle (gpointer data)
{
  StQaView *self = data;
  self->focus_idle = 0;
  if (gtk_widget_get_mapped (GTK_WIDGET (self)))
    gtk_widget_grab_focus (GTK_WIDGET (self->scan_entry));
  return G_SOURCE_REMOVE;
}

static void
st_qa_view_map (GtkWidget *widget)
{
  StQaView *self = ST_QA_VIEW (widget);
  GTK_WIDGET_CLASS (st_qa_view_parent_class)->map (widget);
  if (self->focus_idle == 0)
    self->focus_idle = g_idle_add (st_qa_view_focus_idle, self);
}

static void
st_qa_view_dispose (GObject *object)
{
  StQaView *self = ST_QA_VIEW (object);
  st_gui_context_clear (&self->ctx);
  g_clear_pointer (&self->scanned, st_unit_lookup_free);
  g_clear_pointer (&self->scanned_port, g_free);
  g_clear_pointer (&self->scanned_matter, g_free);
  g_clear_handle_id (&self->focus_idle, g_source_remove);
  G_OBJECT_CLASS (st_qa_view_parent_class)->dispose (object);
}

static void
st_qa_view_class_init (StQaViewClass *klass)
{
  GtkWidgetClass *wc = GTK_WIDGET_CLASS (klass);
  G_OBJECT_CLASS (klass)->dispose = st_qa_view_dispose;
  wc->map = st_qa_view_map;
  gtk_widget_class_set_template_from_resource (wc, "/org/station/gui/st-qa-view.ui");
#define BIND(x) gtk_widget_class_bind_template_child (wc, StQaView, x)
  BIND (port_combo); BIND (verify_unit_button); BIND (verify_manifest_button); BIND (unit_card);
  BIND (manifest_card); BIND (unit_title); BIND (manifest_title); BIND (unit_text); BIND (manifest_text);
  BIND (manifest_entry); BIND (scan_entry); BIND (unit_checked); BIND (root_entry); BIND (pin_entry);
  BIND (manifest_checked); BIND (matter_entry);
#undef BIND
  gtk_widget_class_bind_template_callback (wc, st_qa_view_on_verify_unit);
  gtk_widget_class_bind_template_callback (wc, st_qa_view_on_verify_manifest);
  gtk_widget_class_bind_template_callback (wc, st_qa_view_on_browse);
  gtk_widget_class_bind_template_callback (wc, st_qa_view_on_scan);
  gtk_widget_class_bind_template_callback (wc, st_qa_view_on_browse_root);
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
  st_scan_entry_setup (self->scan_entry, _("Scan unit"));
  st_gui_name (GTK_WIDGET (self->unit_checked), _("Unit checked"));
  st_gui_name (GTK_WIDGET (self->root_entry), _("Trusted root"));
  st_gui_name (GTK_WIDGET (self->pin_entry), _("Signer pin"));
  st_gui_name (GTK_WIDGET (self->manifest_checked), _("Manifest checked"));
  st_scan_entry_setup (self->matter_entry, _("Matter onboarding code"));
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
  self->scan_seq++;
  self->verifying = FALSE;
  g_clear_pointer (&self->scanned, st_unit_lookup_free);
  g_clear_pointer (&self->scanned_port, g_free);
  gtk_label_set_text (self->unit_checked, "");
  gtk_entry_set_text (self->scan_entry, "");
  gtk_entry_set_text (self->matter_entry, "");
  g_clear_pointer (&self->scanned_matter, g_free);
  gtk_widget_set_sensitive (GTK_WIDGET (self->verify_unit_button), TRUE);
  if (!st_gui_context_set (&self->ctx, station, session))
    {
      st_qa_view_show (self->unit_card, self->unit_title, self->unit_text,
                       _("Put the unit in the socket and press Verify unit."), NULL, -1);
      st_qa_view_show (self->manifest_card, self->manifest_title, self->manifest_text, "", NULL, -1);
    }
}
