#include "st-sound.h"

#include <canberra-gtk.h>
#include <glib/gi18n.h>

static gint st_sound_muted;   /* atomic */
static guint32 st_sound_next_id = 1;

static const struct {
  const char *event_id;
  const char *description;    /* for the sound server's list of what plays */
} st_sounds[] = {
  [ST_SOUND_PASS] = { "complete", N_("A unit passed") },
  [ST_SOUND_FAIL] = { "dialog-error", N_("A unit failed") },
};

const char *
st_sound_event_id (StSound sound)
{
  g_return_val_if_fail ((guint) sound < G_N_ELEMENTS (st_sounds), NULL);
  return st_sounds[sound].event_id;
}

void
st_sound_set_muted (gboolean muted)
{
  g_atomic_int_set (&st_sound_muted, muted ? 1 : 0);
}

gboolean
st_sound_get_muted (void)
{
  return g_atomic_int_get (&st_sound_muted) != 0;
}

/* libcanberra's answer once the sound ended (on its own thread). */
static void
st_sound_finished (ca_context *context, uint32_t id, int code, void *data)
{
  const char *event_id = data;
  if (code == CA_SUCCESS)
    g_message ("sound: %s: played", event_id);
  else
    g_message ("sound: %s: not played: %s", event_id, ca_strerror (code));
}

void
st_sound_play (GtkWidget *widget, StSound sound)
{
  g_return_if_fail ((guint) sound < G_N_ELEMENTS (st_sounds));
  const char *event_id = st_sounds[sound].event_id;
  if (st_sound_get_muted ())
    {
      g_message ("sound: %s: muted", event_id);
      return;
    }
  ca_context *context = ca_gtk_context_get_for_screen (gtk_widget_get_screen (widget));
  if (context == NULL)
    {
      g_message ("sound: %s: not played: no sound context", event_id);
      return;
    }
  ca_proplist *props = NULL;
  int r = ca_proplist_create (&props);
  if (r == CA_SUCCESS)
    r = ca_gtk_proplist_set_for_widget (props, widget);
  if (r == CA_SUCCESS)
    r = ca_proplist_sets (props, CA_PROP_EVENT_ID, event_id);
  if (r == CA_SUCCESS)
    r = ca_proplist_sets (props, CA_PROP_EVENT_DESCRIPTION, _(st_sounds[sound].description));
  if (r == CA_SUCCESS)
    r = ca_context_play_full (context, st_sound_next_id++, props, st_sound_finished,
                              (void *) event_id);
  if (props != NULL)
    ca_proplist_destroy (props);
  /* the finish callback does not run for a play that did not start */
  if (r != CA_SUCCESS)
    g_message ("sound: %s: not played: %s", event_id, ca_strerror (r));
}
