/* The line's pass and fail sounds, through libcanberra.
 *
 * Each verdict plays an event of the freedesktop sound naming
 * specification from the desktop's sound theme (GTK's
 * gtk-sound-theme-name, "freedesktop" when none is set), so a site changes
 * the sounds by installing a theme of its own, never in this program:
 *
 *   a unit passed              "complete"
 *   a unit failed or refused   "dialog-error"
 *
 * Every request is logged (G_LOG_DOMAIN station-gui, g_message) as
 * "sound: EVENT: played", "sound: EVENT: not played: REASON" (libcanberra's
 * own answer, when it has one) or "sound: EVENT: muted": the GUI test
 * reads these lines. */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

typedef enum {
  ST_SOUND_PASS,
  ST_SOUND_FAIL,
} StSound;

/* The event id of @sound ("complete", "dialog-error"). */
const char *st_sound_event_id (StSound sound);
/* Plays @sound for @widget (its screen's sound context) unless muted.
 * Never blocks: libcanberra plays on a thread of its own. */
void st_sound_play (GtkWidget *widget, StSound sound);
/* Muted: nothing plays (station-gui --mute, the line view's Sound switch). */
void st_sound_set_muted (gboolean muted);
gboolean st_sound_get_muted (void);

G_END_DECLS
