#include "st-socket-tile.h"

#include <glib/gi18n.h>

#include "st-text.h"

struct _StSocketTile {
  GtkBox parent;
  GtkLabel *title, *port_label, *state_label, *step_label, *uid_label, *elapsed_label, *reason_label;
  GtkProgressBar *progress;
  GtkButton *start_button, *stop_button, *retry_button, *ack_button;
  guint index;
  gchar *port;
  gchar *failed_uid; /* the device of the last FAIL (until a pass or Retry): a new line skips it */
  gchar *name;      /* the configured name ([sockets] of station.conf), escaped; else the port */
  StTileState state;
  gboolean enabled;
  gboolean held;    /* a FAIL not acknowledged yet: the socket takes no device */
  gboolean resume;  /* held: the acknowledgement starts the socket again */
  gint64 started;   /* monotonic usec of the unit in progress */
};

G_DEFINE_TYPE (StSocketTile, st_socket_tile, GTK_TYPE_BOX)

enum { SIG_START, SIG_STOP, SIG_RETRY, SIG_ACKNOWLEDGE, N_SIGNALS };
static guint st_tile_signals[N_SIGNALS];

/* The pipeline's steps in order, with what they mean for an operator. */
static const struct { const char *step, *words; } st_tile_steps[] = {
  { "identify", N_("Identifying the device") },
  { "resume", N_("Resuming an interrupted unit") },
  { "firmware", N_("Writing the firmware image") },
  { "keygen", N_("The device makes its key") },
  { "reserve", N_("Recording the unit") },
  { "sign", N_("Signing the certificate in the HSM") },
  { "write", N_("Writing the certificate") },
  { "write-chain", N_("Writing the CA chain") },
  { "write-matter", N_("Writing the Matter factory data") },
  { "proof-of-possession", N_("Checking the device holds its key") },
  { "read-back", N_("Reading back what was written") },
  { "commit", N_("Locking in the credentials") },
  { "confirm", N_("Confirming the device state") },
};

static void
st_socket_tile_on_start (StSocketTile *self)
{
  g_signal_emit (self, st_tile_signals[SIG_START], 0);
}

static void
st_socket_tile_on_stop (StSocketTile *self)
{
  g_signal_emit (self, st_tile_signals[SIG_STOP], 0);
}

static void
st_socket_tile_on_retry (StSocketTile *self)
{
  g_signal_emit (self, st_tile_signals[SIG_RETRY], 0);
}

static void
st_socket_tile_on_ack (StSocketTile *self)
{
  g_signal_emit (self, st_tile_signals[SIG_ACKNOWLEDGE], 0);
}

static void
st_socket_tile_finalize (GObject *object)
{
  StSocketTile *self = ST_SOCKET_TILE (object);
  g_free (self->port);
  g_free (self->name);
  g_free (self->failed_uid);
  G_OBJECT_CLASS (st_socket_tile_parent_class)->finalize (object);
}

static void
st_socket_tile_class_init (StSocketTileClass *klass)
{
  GtkWidgetClass *wc = GTK_WIDGET_CLASS (klass);
  G_OBJECT_CLASS (klass)->finalize = st_socket_tile_finalize;
  gtk_widget_class_set_template_from_resource (wc, "/org/station/gui/st-socket-tile.ui");
  gtk_widget_class_bind_template_child (wc, StSocketTile, title);
  gtk_widget_class_bind_template_child (wc, StSocketTile, port_label);
  gtk_widget_class_bind_template_child (wc, StSocketTile, state_label);
  gtk_widget_class_bind_template_child (wc, StSocketTile, step_label);
  gtk_widget_class_bind_template_child (wc, StSocketTile, uid_label);
  gtk_widget_class_bind_template_child (wc, StSocketTile, elapsed_label);
  gtk_widget_class_bind_template_child (wc, StSocketTile, reason_label);
  gtk_widget_class_bind_template_child (wc, StSocketTile, progress);
  gtk_widget_class_bind_template_child (wc, StSocketTile, start_button);
  gtk_widget_class_bind_template_child (wc, StSocketTile, stop_button);
  gtk_widget_class_bind_template_child (wc, StSocketTile, retry_button);
  gtk_widget_class_bind_template_child (wc, StSocketTile, ack_button);
  gtk_widget_class_bind_template_callback (wc, st_socket_tile_on_start);
  gtk_widget_class_bind_template_callback (wc, st_socket_tile_on_stop);
  gtk_widget_class_bind_template_callback (wc, st_socket_tile_on_retry);
  gtk_widget_class_bind_template_callback (wc, st_socket_tile_on_ack);
  const char *names[N_SIGNALS] = { "start", "stop", "retry", "acknowledge" };
  for (guint i = 0; i < N_SIGNALS; i++)
    st_tile_signals[i] = g_signal_new (names[i], G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                       NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
st_socket_tile_init (StSocketTile *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
}

static void
st_socket_tile_set_state (StSocketTile *self, StTileState state)
{
  static const char *classes[] = { "st-tile-idle", "st-tile-working", "st-tile-pass", "st-tile-fail" };
  static const char *words[] = { N_("IDLE"), N_("WORKING"), N_("PASS"), N_("FAIL") };
  GtkStyleContext *style = gtk_widget_get_style_context (GTK_WIDGET (self));
  for (guint i = 0; i < G_N_ELEMENTS (classes); i++)
    gtk_style_context_remove_class (style, classes[i]);
  gtk_style_context_add_class (style, classes[state]);
  self->state = state;
  gtk_label_set_text (self->state_label, _(words[state]));
  gtk_widget_set_sensitive (GTK_WIDGET (self->retry_button), state == ST_TILE_FAIL);
}

StSocketTile *
st_socket_tile_new (guint index, const char *port, const char *name)
{
  StSocketTile *self = g_object_new (ST_TYPE_SOCKET_TILE, NULL);
  self->index = index;
  self->port = g_strdup (port);
  /* The name is the station's configuration, the port a path: both shown
   * escaped all the same (st-text.h). */
  g_autofree gchar *safe_port = st_text_escape (port, -1, ST_TEXT_ONE_LINE);
  self->name = name != NULL && *name != '\0' ? st_text_escape (name, -1, ST_TEXT_ONE_LINE)
                                             : g_strdup (safe_port);
  if (name != NULL && *name != '\0')
    gtk_label_set_text (self->title, self->name);
  else
    {
      g_autofree gchar *title = g_strdup_printf (_("Socket %u"), index);
      gtk_label_set_text (self->title, title);
    }
  gtk_label_set_text (self->port_label, safe_port);
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->title), safe_port);
  g_autofree gchar *n = NULL;
  n = g_strdup_printf (_("Socket %u name"), index);
  st_gui_name (GTK_WIDGET (self->title), n);
  g_free (n);
  n = g_strdup_printf (_("Socket %u port"), index);
  st_gui_name (GTK_WIDGET (self->port_label), n);
  g_free (n);
  n = g_strdup_printf (_("Socket %u state"), index);
  st_gui_name (GTK_WIDGET (self->state_label), n);
  g_free (n);
  n = g_strdup_printf (_("Socket %u step"), index);
  st_gui_name (GTK_WIDGET (self->step_label), n);
  g_free (n);
  n = g_strdup_printf (_("Socket %u uid"), index);
  st_gui_name (GTK_WIDGET (self->uid_label), n);
  g_free (n);
  n = g_strdup_printf (_("Socket %u elapsed time"), index);
  st_gui_name (GTK_WIDGET (self->elapsed_label), n);
  g_free (n);
  n = g_strdup_printf (_("Socket %u progress"), index);
  st_gui_name (GTK_WIDGET (self->progress), n);
  g_free (n);
  n = g_strdup_printf (_("Socket %u what to do"), index);
  st_gui_name (GTK_WIDGET (self->reason_label), n);
  g_free (n);
  n = g_strdup_printf (_("Start socket %u"), index);
  st_gui_name (GTK_WIDGET (self->start_button), n);
  g_free (n);
  n = g_strdup_printf (_("Stop socket %u"), index);
  st_gui_name (GTK_WIDGET (self->stop_button), n);
  g_free (n);
  n = g_strdup_printf (_("Retry socket %u"), index);
  st_gui_name (GTK_WIDGET (self->retry_button), n);
  g_free (n);
  n = g_strdup_printf (_("Acknowledge socket %u"), index);
  st_gui_name (GTK_WIDGET (self->ack_button), n);
  g_free (n);
  n = g_strdup_printf (_("Socket %u"), index);
  /* the tile's own name (no tooltip over the whole tile) */
  AtkObject *acc = gtk_widget_get_accessible (GTK_WIDGET (self));
  if (acc != NULL)
    atk_object_set_name (acc, n);
  st_socket_tile_set_state (self, ST_TILE_IDLE);
  return self;
}

const char *
st_socket_tile_get_port (StSocketTile *self)
{
  return self->port;
}

const char *
st_socket_tile_get_name (StSocketTile *self)
{
  return self->name;
}

const char *
st_socket_tile_get_failed_uid (StSocketTile *self)
{
  return self->failed_uid;
}

void
st_socket_tile_forget_failed_uid (StSocketTile *self)
{
  g_clear_pointer (&self->failed_uid, g_free);
}

gboolean
st_socket_tile_get_enabled (StSocketTile *self)
{
  return self->enabled;
}

void
st_socket_tile_set_enabled (StSocketTile *self, gboolean enabled)
{
  self->enabled = enabled;
  /* A held socket starts only through Acknowledge (or Retry). */
  gtk_widget_set_sensitive (GTK_WIDGET (self->start_button), !enabled && !self->held);
  gtk_widget_set_sensitive (GTK_WIDGET (self->stop_button), enabled);
}

gboolean
st_socket_tile_get_held (StSocketTile *self)
{
  return self->held;
}

void
st_socket_tile_hold (StSocketTile *self)
{
  self->held = TRUE;
  self->resume = TRUE;
  st_socket_tile_set_enabled (self, FALSE);
  gtk_widget_set_sensitive (GTK_WIDGET (self->ack_button), TRUE);
  gtk_style_context_add_class (gtk_widget_get_style_context (GTK_WIDGET (self->ack_button)),
                               "destructive-action");
  gtk_label_set_text (self->reason_label, self->state == ST_TILE_FAIL
                      ? _("Press Acknowledge, take the device out and put in the next one: this socket "
                          "takes no device before, and never this one again. Retry runs it again.")
                      : _("Press Acknowledge: this socket takes no device before."));
}

void
st_socket_tile_forget_resume (StSocketTile *self)
{
  self->resume = FALSE;
}

gboolean
st_socket_tile_acknowledge (StSocketTile *self)
{
  gboolean resume = self->held && self->resume;
  self->held = FALSE;
  self->resume = FALSE;
  gtk_widget_set_sensitive (GTK_WIDGET (self->ack_button), FALSE);
  gtk_style_context_remove_class (gtk_widget_get_style_context (GTK_WIDGET (self->ack_button)),
                                  "destructive-action");
  st_socket_tile_set_enabled (self, self->enabled);
  if (self->state == ST_TILE_FAIL)
    {
      st_socket_tile_set_state (self, ST_TILE_IDLE);
      gtk_label_set_text (self->step_label, _("Not running"));
      gtk_label_set_text (self->reason_label, "");
      gtk_progress_bar_set_fraction (self->progress, 0.0);
    }
  return resume;
}

/* What the service reports of a unit may quote its device: the tile shows
 * it through st_text_escape() (st-text.h). */
static void
st_socket_tile_set_uid (StSocketTile *self, const char *uid_hex)
{
  g_autofree gchar *safe = st_text_escape (uid_hex != NULL ? uid_hex : "–", -1, ST_TEXT_ONE_LINE);
  g_autofree gchar *uid = g_strdup_printf (_("uid %s"), safe);
  gtk_label_set_text (self->uid_label, uid);
}

/* The large text of a failure: @what and the service's reason, which may
 * quote the device (escaped). */
static void
st_socket_tile_set_failure (StSocketTile *self, const char *what, const char *reason)
{
  g_autofree gchar *safe = st_text_escape (reason != NULL && *reason != '\0' ? reason : _("no reason given"),
                                           -1, ST_TEXT_ONE_LINE);
  g_autofree gchar *text = g_strdup_printf ("%s: %s", what, safe);
  gtk_label_set_text (self->step_label, text);
}

void
st_socket_tile_set_progress (StSocketTile *self, const StUnitProgress *progress)
{
  gboolean new_unit = self->state != ST_TILE_WORKING || g_strcmp0 (progress->step, "identify") == 0 ||
                      g_strcmp0 (progress->step, "resume") == 0;
  if (new_unit)
    gtk_label_set_text (self->reason_label, "");
  /* The unit's own clock: the tile ticks on from it. */
  self->started = g_get_monotonic_time () - (gint64) (progress->seconds * G_USEC_PER_SEC);
  st_socket_tile_set_uid (self, progress->uid_hex);
  st_socket_tile_set_state (self, ST_TILE_WORKING);
  const char *words = progress->step;
  guint n = G_N_ELEMENTS (st_tile_steps);
  double fraction = 0.05;
  for (guint i = 0; i < n; i++)
    if (g_strcmp0 (st_tile_steps[i].step, progress->step) == 0)
      {
        words = _(st_tile_steps[i].words);
        fraction = (double) (i + 1) / (double) (n + 1);
      }
  gtk_label_set_text (self->step_label, words);
  gtk_progress_bar_set_fraction (self->progress, fraction);
  st_socket_tile_tick (self);
}

void
st_socket_tile_set_result (StSocketTile *self, const StUnitResult *r)
{
  gboolean passed = r->outcome == ST_UNIT_PASSED;
  g_free (self->failed_uid);
  self->failed_uid = passed || r->uid_hex == NULL ? NULL : g_strdup (r->uid_hex);
  st_socket_tile_set_state (self, passed ? ST_TILE_PASS : ST_TILE_FAIL);
  st_socket_tile_set_uid (self, r->uid_hex);
  g_autofree gchar *elapsed = g_strdup_printf ("%.2f s", r->seconds);
  gtk_label_set_text (self->elapsed_label, elapsed);
  gtk_progress_bar_set_fraction (self->progress, passed ? 1.0 : 0.0);
  if (passed)
    {
      g_autofree gchar *serial = st_text_escape (r->product_serial != NULL ? r->product_serial : "–", -1,
                                                 ST_TEXT_ONE_LINE);
      g_autofree gchar *text = g_strdup_printf (_("Provisioned: serial %s. Swap in the next device."), serial);
      gtk_label_set_text (self->step_label, text);
      gtk_label_set_text (self->reason_label, "");
    }
  else
    {
      st_socket_tile_set_failure (self, r->outcome == ST_UNIT_REFUSED ? _("Refused") : _("Failed"), r->reason);
      gtk_label_set_text (self->reason_label, r->outcome == ST_UNIT_REFUSED
                          ? _("Take the device out.")
                          : _("Take the device out, or press Retry to run it again."));
    }
  self->started = 0;
}

void
st_socket_tile_set_problem (StSocketTile *self, const char *message)
{
  st_socket_tile_set_state (self, ST_TILE_FAIL);
  st_socket_tile_set_failure (self, _("This socket stopped"), message);
  gtk_label_set_text (self->reason_label, _("Check the socket and its cable, then press Start."));
  self->started = 0;
}

void
st_socket_tile_set_waiting (StSocketTile *self, gboolean running)
{
  /* Starting clears the last unit's verdict; stopping keeps it in view. */
  if (self->state == ST_TILE_WORKING || running)
    {
      st_socket_tile_set_state (self, ST_TILE_IDLE);
      gtk_label_set_text (self->reason_label, "");
      gtk_progress_bar_set_fraction (self->progress, 0.0);
    }
  if (self->state == ST_TILE_IDLE)
    gtk_label_set_text (self->step_label, running ? _("Waiting for a device") : _("Not running"));
  self->started = 0;
}

void
st_socket_tile_tick (StSocketTile *self)
{
  if (self->started == 0)
    return;
  g_autofree gchar *t = st_gui_format_elapsed (g_get_monotonic_time () - self->started);
  gtk_label_set_text (self->elapsed_label, t);
}
