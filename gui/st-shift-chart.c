#include "st-shift-chart.h"

#include <glib/gi18n.h>

struct _StShiftChart {
  GtkDrawingArea parent;
  StShiftStats *stats;
};

G_DEFINE_TYPE (StShiftChart, st_shift_chart, GTK_TYPE_DRAWING_AREA)

static void
st_chart_text (cairo_t *cr, double x, double y, const char *text)
{
  cairo_move_to (cr, x, y);
  cairo_show_text (cr, text);
}

static gboolean
st_shift_chart_draw (GtkWidget *widget, cairo_t *cr)
{
  StShiftChart *self = ST_SHIFT_CHART (widget);
  double w = gtk_widget_get_allocated_width (widget), h = gtk_widget_get_allocated_height (widget);
  cairo_set_source_rgb (cr, 1, 1, 1);
  cairo_paint (cr);
  cairo_select_font_face (cr, "Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size (cr, 12);
  cairo_set_source_rgb (cr, 0.1, 0.1, 0.1);
  StShiftStats *s = self->stats;
  if (s == NULL)
    {
      st_chart_text (cr, 10, 20, _("Choose a batch to see its shift."));
      return FALSE;
    }
  /* Top half: units per hour, stacked passed (green) and failed (red). */
  double top = 24, chart_h = h / 2 - 40, left = 34, bar_w = (w - left - 10) / MAX (s->n_hours, 1);
  guint max = 1;
  for (guint i = 0; i < s->n_hours; i++)
    max = MAX (max, s->passed_per_hour[i] + s->failed_per_hour[i]);
  g_autofree gchar *title = g_strdup_printf (_("Units per hour (last %u h): %u done, %u failed"),
                                             s->n_hours, s->done, s->failed);
  st_chart_text (cr, 4, 14, title);
  g_autofree gchar *max_s = g_strdup_printf ("%u", max);
  st_chart_text (cr, 4, top + 10, max_s);
  st_chart_text (cr, 4, top + chart_h, "0");
  for (guint i = 0; i < s->n_hours; i++)
    {
      double x = left + i * bar_w + 2;
      double ph = chart_h * s->passed_per_hour[i] / max, fh = chart_h * s->failed_per_hour[i] / max;
      cairo_set_source_rgb (cr, 0.18, 0.55, 0.18);
      cairo_rectangle (cr, x, top + chart_h - ph, bar_w - 4, ph);
      cairo_fill (cr);
      cairo_set_source_rgb (cr, 0.7, 0.13, 0.13);
      cairo_rectangle (cr, x, top + chart_h - ph - fh, bar_w - 4, fh);
      cairo_fill (cr);
      if (i % 2 == 0 || s->n_hours <= 12)
        {
          g_autoptr(GDateTime) t = g_date_time_new_from_unix_local (s->first_hour + (gint64) i * 3600);
          g_autofree gchar *label = g_date_time_format (t, "%H");
          cairo_set_source_rgb (cr, 0.1, 0.1, 0.1);
          st_chart_text (cr, x, top + chart_h + 14, label);
        }
    }
  /* Bottom half: failures by step, horizontal bars. */
  double y = h / 2 + 10;
  cairo_set_source_rgb (cr, 0.1, 0.1, 0.1);
  st_chart_text (cr, 4, y, _("Failures by step"));
  g_autoptr(GList) steps = g_hash_table_get_keys (s->failures_by_step);
  steps = g_list_sort (steps, (GCompareFunc) g_strcmp0);
  guint fmax = 1;
  for (GList *l = steps; l != NULL; l = l->next)
    fmax = MAX (fmax, GPOINTER_TO_UINT (g_hash_table_lookup (s->failures_by_step, l->data)));
  if (steps == NULL)
    st_chart_text (cr, 14, y + 20, "none");
  for (GList *l = steps; l != NULL && y < h - 20; l = l->next)
    {
      y += 20;
      guint n = GPOINTER_TO_UINT (g_hash_table_lookup (s->failures_by_step, l->data));
      g_autofree gchar *label = g_strdup_printf ("%s: %u", (const char *) l->data, n);
      cairo_set_source_rgb (cr, 0.1, 0.1, 0.1);
      st_chart_text (cr, 4, y + 12, label);
      cairo_set_source_rgb (cr, 0.7, 0.13, 0.13);
      cairo_rectangle (cr, 170, y, (w - 180) * n / fmax, 14);
      cairo_fill (cr);
    }
  return FALSE;
}

static void
st_shift_chart_finalize (GObject *object)
{
  st_shift_stats_free (ST_SHIFT_CHART (object)->stats);
  G_OBJECT_CLASS (st_shift_chart_parent_class)->finalize (object);
}

static void
st_shift_chart_class_init (StShiftChartClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = st_shift_chart_finalize;
  GTK_WIDGET_CLASS (klass)->draw = st_shift_chart_draw;
}

static void
st_shift_chart_init (StShiftChart *self)
{
  gtk_widget_set_size_request (GTK_WIDGET (self), 380, 300);
  st_gui_name (GTK_WIDGET (self), _("Shift chart"));
}

GtkWidget *
st_shift_chart_new (void)
{
  return g_object_new (ST_TYPE_SHIFT_CHART, NULL);
}

void
st_shift_chart_set_stats (StShiftChart *self, StShiftStats *stats)
{
  st_shift_stats_free (self->stats);
  self->stats = stats;
  gtk_widget_queue_draw (GTK_WIDGET (self));
  if (stats != NULL)
    {
      g_autofree gchar *desc = g_strdup_printf (_("%u done, %u failed"), stats->done, stats->failed);
      atk_object_set_description (gtk_widget_get_accessible (GTK_WIDGET (self)), desc);
    }
}
