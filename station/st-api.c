#include "st-api.h"

#include "st-error.h"

static const struct {
  StRole role;
  const char *name;
} st_roles[] = {
  { ST_ROLE_OPERATOR, "operator" },
  { ST_ROLE_LEAD, "lead" },
  { ST_ROLE_QA, "qa" },
  { ST_ROLE_ADMIN, "admin" },
};

static const struct {
  StRole role;
  const char *name, *pin;
} st_demo_operators[] = {
  { ST_ROLE_ADMIN, "admin", "4444" },
  { ST_ROLE_OPERATOR, "op", "1111" },
  { ST_ROLE_LEAD, "lead", "2222" },
  { ST_ROLE_QA, "qa", "3333" },
};

guint
st_demo_operator_count (void)
{
  return G_N_ELEMENTS (st_demo_operators);
}

void
st_demo_operator_nth (guint i, StRole *role, const char **name, const char **pin)
{
  g_return_if_fail (i < G_N_ELEMENTS (st_demo_operators));
  *role = st_demo_operators[i].role;
  *name = st_demo_operators[i].name;
  *pin = st_demo_operators[i].pin;
}

gboolean
st_demo_operator (StRole role, const char **name, const char **pin)
{
  for (guint i = 0; i < G_N_ELEMENTS (st_demo_operators); i++)
    if (st_demo_operators[i].role == role)
      {
        *name = st_demo_operators[i].name;
        *pin = st_demo_operators[i].pin;
        return TRUE;
      }
  return FALSE;
}

gboolean
st_role_from_string (const char *text, StRole *role, GError **error)
{
  for (gsize i = 0; i < G_N_ELEMENTS (st_roles); i++)
    if (g_strcmp0 (text, st_roles[i].name) == 0)
      {
        *role = st_roles[i].role;
        return TRUE;
      }
  g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
               "'%s' is not a role: use operator, lead, qa or admin", text != NULL ? text : "");
  return FALSE;
}

const char *
st_role_to_string (StRole role)
{
  for (gsize i = 0; i < G_N_ELEMENTS (st_roles); i++)
    if (st_roles[i].role == role)
      return st_roles[i].name;
  return "unknown";
}

gchar *
st_role_mask_to_string (guint mask)
{
  g_autoptr(GPtrArray) names = g_ptr_array_new ();
  for (gsize i = 0; i < G_N_ELEMENTS (st_roles); i++)
    if (mask & st_roles[i].role)
      g_ptr_array_add (names, (gpointer) st_roles[i].name);
  GString *out = g_string_new (NULL);
  for (guint i = 0; i < names->len; i++)
    {
      if (i > 0)
        g_string_append (out, i + 1 == names->len ? " or " : ", ");
      g_string_append (out, g_ptr_array_index (names, i));
    }
  return g_string_free (out, FALSE);
}


void
st_auth_session_free (StAuthSession *session)
{
  if (session == NULL)
    return;
  g_free (session->name);
  g_free (session);
}

StAuthSession *
st_auth_session_copy (const StAuthSession *session)
{
  if (session == NULL)
    return NULL;
  StAuthSession *copy = g_new0 (StAuthSession, 1);
  copy->name = g_strdup (session->name);
  copy->role = session->role;
  return copy;
}

const char *
st_unit_outcome_to_string (StUnitOutcome outcome)
{
  switch (outcome)
    {
    case ST_UNIT_PASSED: return "PASSED";
    case ST_UNIT_FAILED: return "FAILED";
    case ST_UNIT_REFUSED: return "REFUSED";
    }
  return "?";
}

void
st_unit_result_free (StUnitResult *r)
{
  if (r == NULL)
    return;
  g_free (r->port);
  g_free (r->uid_hex);
  g_free (r->step);
  g_free (r->reason);
  g_free (r->detail);
  g_free (r->product_serial);
  g_free (r->cert_serial);
  g_free (r);
}


StUnitResult *
st_unit_result_copy (const StUnitResult *r)
{
  StUnitResult *c = g_new0 (StUnitResult, 1);
  *c = *r;
  c->port = g_strdup (r->port);
  c->uid_hex = g_strdup (r->uid_hex);
  c->step = g_strdup (r->step);
  c->reason = g_strdup (r->reason);
  c->detail = g_strdup (r->detail);
  c->product_serial = g_strdup (r->product_serial);
  c->cert_serial = g_strdup (r->cert_serial);
  return c;
}

/* ---- dictionaries ------------------------------------------------------- */

const char *
st_dict_get_string (GVariant *dict, const char *key)
{
  const char *value = NULL;
  if (dict == NULL || !g_variant_lookup (dict, key, "&s", &value))
    return "";
  return value;
}

gint64
st_dict_get_int64 (GVariant *dict, const char *key)
{
  gint64 value = 0;
  if (dict != NULL && g_variant_lookup (dict, key, "x", &value))
    return value;
  return 0;
}

static gchar *
st_dict_dup_string_or_null (GVariant *dict, const char *key)
{
  const char *value = NULL;
  if (!g_variant_lookup (dict, key, "&s", &value) || *value == '\0')
    return NULL;
  return g_strdup (value);
}

static void
st_dict_add (GVariantBuilder *d, const char *key, const char *value)
{
  if (value != NULL)
    g_variant_builder_add (d, "{sv}", key, g_variant_new_string (value));
}

GVariant *
st_unit_result_to_variant (const StUnitResult *r, gint64 batch_id)
{
  GVariantBuilder d;
  g_variant_builder_init (&d, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&d, "{sv}", "batch", g_variant_new_int64 (batch_id));
  st_dict_add (&d, "outcome", st_unit_outcome_to_string (r->outcome));
  st_dict_add (&d, "port", r->port);
  st_dict_add (&d, "uid", r->uid_hex);
  st_dict_add (&d, "step", r->step);
  st_dict_add (&d, "reason", r->reason);
  st_dict_add (&d, "detail", r->detail);
  st_dict_add (&d, "product-serial", r->product_serial);
  st_dict_add (&d, "cert-serial", r->cert_serial);
  g_variant_builder_add (&d, "{sv}", "unit-id", g_variant_new_int64 (r->unit_id));
  g_variant_builder_add (&d, "{sv}", "resumed", g_variant_new_boolean (r->resumed));
  g_variant_builder_add (&d, "{sv}", "seconds", g_variant_new_double (r->seconds));
  return g_variant_builder_end (&d);
}

StUnitResult *
st_unit_result_from_variant (GVariant *dict, gint64 *batch_id)
{
  StUnitResult *r = g_new0 (StUnitResult, 1);
  const char *outcome = st_dict_get_string (dict, "outcome");
  r->outcome = g_strcmp0 (outcome, "PASSED") == 0 ? ST_UNIT_PASSED
               : g_strcmp0 (outcome, "REFUSED") == 0 ? ST_UNIT_REFUSED : ST_UNIT_FAILED;
  r->port = g_strdup (st_dict_get_string (dict, "port"));
  r->uid_hex = g_strdup (st_dict_get_string (dict, "uid"));
  r->step = g_strdup (st_dict_get_string (dict, "step"));
  r->reason = g_strdup (st_dict_get_string (dict, "reason"));
  r->detail = st_dict_dup_string_or_null (dict, "detail");
  r->product_serial = st_dict_dup_string_or_null (dict, "product-serial");
  r->cert_serial = st_dict_dup_string_or_null (dict, "cert-serial");
  r->unit_id = st_dict_get_int64 (dict, "unit-id");
  g_variant_lookup (dict, "resumed", "b", &r->resumed);
  g_variant_lookup (dict, "seconds", "d", &r->seconds);
  if (batch_id != NULL)
    *batch_id = st_dict_get_int64 (dict, "batch");
  return r;
}

/* ---- the shift chart ----------------------------------------------------- */

void
st_shift_stats_free (StShiftStats *stats)
{
  if (stats == NULL)
    return;
  g_free (stats->passed_per_hour);
  g_free (stats->failed_per_hour);
  g_clear_pointer (&stats->failures_by_step, g_hash_table_unref);
  g_free (stats);
}

GVariant *
st_shift_stats_to_variant (const StShiftStats *s)
{
  GVariantBuilder d;
  g_variant_builder_init (&d, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&d, "{sv}", "first-hour", g_variant_new_int64 (s->first_hour));
  g_variant_builder_add (&d, "{sv}", "passed",
                         g_variant_new_fixed_array (G_VARIANT_TYPE_UINT32, s->passed_per_hour,
                                                    s->n_hours, sizeof (guint32)));
  g_variant_builder_add (&d, "{sv}", "failed",
                         g_variant_new_fixed_array (G_VARIANT_TYPE_UINT32, s->failed_per_hour,
                                                    s->n_hours, sizeof (guint32)));
  GVariantBuilder steps;
  g_variant_builder_init (&steps, G_VARIANT_TYPE ("a{su}"));
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, s->failures_by_step);
  while (g_hash_table_iter_next (&it, &k, &v))
    g_variant_builder_add (&steps, "{su}", (const char *) k, GPOINTER_TO_UINT (v));
  g_variant_builder_add (&d, "{sv}", "failures-by-step", g_variant_builder_end (&steps));
  g_variant_builder_add (&d, "{sv}", "done", g_variant_new_uint32 (s->done));
  g_variant_builder_add (&d, "{sv}", "failed-total", g_variant_new_uint32 (s->failed));
  return g_variant_builder_end (&d);
}

/* A "au" member as @n counts (missing or short: zeros). */
static guint *
st_dict_get_counts (GVariant *dict, const char *key, guint n)
{
  guint *out = g_new0 (guint, MAX (n, 1));
  g_autoptr(GVariant) v = g_variant_lookup_value (dict, key, G_VARIANT_TYPE ("au"));
  gsize len = 0;
  const guint32 *values = v != NULL ? g_variant_get_fixed_array (v, &len, sizeof (guint32)) : NULL;
  for (gsize i = 0; i < MIN (len, (gsize) n); i++)
    out[i] = values[i];
  return out;
}

StShiftStats *
st_shift_stats_from_variant (GVariant *dict)
{
  StShiftStats *s = g_new0 (StShiftStats, 1);
  s->first_hour = st_dict_get_int64 (dict, "first-hour");
  g_autoptr(GVariant) passed = g_variant_lookup_value (dict, "passed", G_VARIANT_TYPE ("au"));
  s->n_hours = passed != NULL ? (guint) g_variant_n_children (passed) : 0;
  s->passed_per_hour = st_dict_get_counts (dict, "passed", s->n_hours);
  s->failed_per_hour = st_dict_get_counts (dict, "failed", s->n_hours);
  s->failures_by_step = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GVariant) steps = g_variant_lookup_value (dict, "failures-by-step", G_VARIANT_TYPE ("a{su}"));
  if (steps != NULL)
    {
      GVariantIter it;
      const char *step;
      guint32 count;
      g_variant_iter_init (&it, steps);
      while (g_variant_iter_next (&it, "{&su}", &step, &count))
        g_hash_table_insert (s->failures_by_step, g_strdup (step), GUINT_TO_POINTER (count));
    }
  g_variant_lookup (dict, "done", "u", &s->done);
  g_variant_lookup (dict, "failed-total", "u", &s->failed);
  return s;
}

/* ---- health -------------------------------------------------------------- */

void
st_health_free (StHealth *h)
{
  if (h == NULL)
    return;
  g_free (h->token);
  g_free (h->chain);
  g_free (h->db_path);
  g_free (h->audit);
  g_free (h->setup_text);
  g_free (h);
}

GVariant *
st_health_to_variant (const StHealth *h)
{
  GVariantBuilder d;
  g_variant_builder_init (&d, G_VARIANT_TYPE_VARDICT);
  st_dict_add (&d, "token", h->token);
  g_variant_builder_add (&d, "{sv}", "logged-in", g_variant_new_boolean (h->logged_in));
  st_dict_add (&d, "chain", h->chain);
  g_variant_builder_add (&d, "{sv}", "min-days-left", g_variant_new_int32 (h->min_days_left));
  st_dict_add (&d, "db-path", h->db_path);
  g_variant_builder_add (&d, "{sv}", "db-size", g_variant_new_uint64 (h->db_size));
  g_variant_builder_add (&d, "{sv}", "disk-free", g_variant_new_uint64 (h->disk_free));
  st_dict_add (&d, "audit", h->audit);
  g_variant_builder_add (&d, "{sv}", "audit-ok", g_variant_new_boolean (h->audit_ok));
  st_dict_add (&d, "setup", h->setup_text);
  return g_variant_builder_end (&d);
}

StHealth *
st_health_from_variant (GVariant *dict)
{
  StHealth *h = g_new0 (StHealth, 1);
  h->token = st_dict_dup_string_or_null (dict, "token");
  g_variant_lookup (dict, "logged-in", "b", &h->logged_in);
  h->chain = g_strdup (st_dict_get_string (dict, "chain"));
  h->min_days_left = G_MAXINT;
  g_variant_lookup (dict, "min-days-left", "i", &h->min_days_left);
  h->db_path = g_strdup (st_dict_get_string (dict, "db-path"));
  g_variant_lookup (dict, "db-size", "t", &h->db_size);
  g_variant_lookup (dict, "disk-free", "t", &h->disk_free);
  h->audit = g_strdup (st_dict_get_string (dict, "audit"));
  g_variant_lookup (dict, "audit-ok", "b", &h->audit_ok);
  h->setup_text = g_strdup (st_dict_get_string (dict, "setup"));
  return h;
}

/* ---- batches and operators, as clients see them --------------------------- */

void
st_batch_info_free (StBatchInfo *b)
{
  if (b == NULL)
    return;
  g_free (b->work_order);
  g_free (b->product);
  g_free (b->profile_sha256);
  g_free (b->state);
  g_free (b->created_by);
  g_free (b->closed_by);
  g_free (b->station_id);
  g_free (b);
}

StBatchInfo *
st_batch_info_from_variant (GVariant *dict)
{
  StBatchInfo *b = g_new0 (StBatchInfo, 1);
  b->id = st_dict_get_int64 (dict, "id");
  b->work_order = g_strdup (st_dict_get_string (dict, "work-order"));
  b->product = g_strdup (st_dict_get_string (dict, "product"));
  b->profile_sha256 = g_strdup (st_dict_get_string (dict, "profile-sha256"));
  b->state = g_strdup (st_dict_get_string (dict, "state"));
  b->created_by = g_strdup (st_dict_get_string (dict, "created-by"));
  b->closed_by = st_dict_dup_string_or_null (dict, "closed-by");
  b->station_id = g_strdup (st_dict_get_string (dict, "station-id"));
  b->quantity = st_dict_get_int64 (dict, "quantity");
  b->created_at = st_dict_get_int64 (dict, "created-at");
  b->closed_at = st_dict_get_int64 (dict, "closed-at");
  b->n_units = st_dict_get_int64 (dict, "units");
  b->n_done = st_dict_get_int64 (dict, "done");
  b->n_failed = st_dict_get_int64 (dict, "failed");
  b->n_live_certs = st_dict_get_int64 (dict, "live");
  b->n_voided = st_dict_get_int64 (dict, "voided");
  b->n_unconfirmed = st_dict_get_int64 (dict, "unconfirmed");
  b->n_disputed = st_dict_get_int64 (dict, "disputed");
  b->n_revoked = st_dict_get_int64 (dict, "revoked");
  gboolean matter = FALSE;
  b->matter = g_variant_lookup (dict, "matter", "b", &matter) && matter;
  return b;
}

void
st_operator_info_free (StOperatorInfo *op)
{
  if (op == NULL)
    return;
  g_free (op->name);
  g_free (op->role);
  g_free (op);
}

StOperatorInfo *
st_operator_info_from_variant (GVariant *dict)
{
  StOperatorInfo *op = g_new0 (StOperatorInfo, 1);
  op->name = g_strdup (st_dict_get_string (dict, "name"));
  op->role = g_strdup (st_dict_get_string (dict, "role"));
  op->failed_attempts = st_dict_get_int64 (dict, "failed-attempts");
  op->created_at = st_dict_get_int64 (dict, "created-at");
  g_variant_lookup (dict, "locked", "b", &op->locked);
  return op;
}
