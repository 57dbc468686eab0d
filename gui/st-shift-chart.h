/* The shift chart, drawn with cairo: units per hour (passed and failed)
 * and failures by step. A plain GtkDrawingArea (nothing to compose). */
#pragma once

#include "st-gui.h"

G_BEGIN_DECLS

#define ST_TYPE_SHIFT_CHART (st_shift_chart_get_type ())
G_DECLARE_FINAL_TYPE (StShiftChart, st_shift_chart, ST, SHIFT_CHART, GtkDrawingArea)

GtkWidget *st_shift_chart_new (void);
/* Takes @stats (may be NULL: an empty chart). */
void st_shift_chart_set_stats (StShiftChart *self, StShiftStats *stats);

G_END_DECLS
