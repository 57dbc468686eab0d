/* The Matter members of a manifest: st-manifest-matter.h. */
#include "st-manifest-matter.h"

#include <glib/gi18n.h>
#include <inttypes.h>
#include <string.h>

#include "st-error.h"
#include "st-json.h"
#include "st-matter-codes.h"
#include "st-matter-dac.h"
#include "st-text.h"
#include "st-util.h"

/* The members a unit's "matter" object may have: the onboarding payload
 * without the passcode. Anything else (a passcode, a QR text, a salt ...)
 * fails verify: a manifest is public. */
static const char *const st_unit_members[] = {
  "version", "vendor_id", "product_id", "commissioning_flow", "discovery", "discriminator", NULL
};

void
st_manifest_matter_unit_member (GString *l, const StDbUnitMatter *m)
{
  g_string_append_printf (l, ",\"matter\":{\"version\":0,\"vendor_id\":\"%04X\",\"product_id\":\"%04X\","
                          "\"commissioning_flow\":%u,\"discovery\":%u,\"discriminator\":%u}",
                          m->vendor_id & 0xFFFF, m->product_id & 0xFFFF, m->flow, m->discovery,
                          m->discriminator);
}

gboolean
st_manifest_matter_header (JsonBuilder *b, const StProfile *profile, GError **error)
{
  g_autoptr(GBytes) cd = st_profile_load_certification_declaration (profile, error);
  if (cd == NULL)
    {
      g_prefix_error (error, _("the manifest of a Matter batch records its Certification Declaration's "
                      "SHA-256, and profile %s's file cannot be used (put back the file the profile's "
                      "[matter] certification-declaration names): "), profile->name);
      return FALSE;
    }
  gsize len = 0;
  const guint8 *data = g_bytes_get_data (cd, &len);
  g_autofree gchar *sha = st_sha256_hex (data, len);
  g_autofree gchar *vid = g_strdup_printf ("%04X", profile->matter.vendor_id);
  g_autofree gchar *pid = g_strdup_printf ("%04X", profile->matter.product_id);
  json_builder_set_member_name (b, "matter");
  json_builder_begin_object (b);
  st_json_add_string (b, "vendor_id", vid);
  st_json_add_string (b, "product_id", pid);
  st_json_add_string (b, "certification_declaration_sha256", sha);
  json_builder_end_object (b);
  return TRUE;
}

/* ---- verify ---- */

static const char *
st_get_string (JsonObject *o, const char *name)
{
  JsonNode *n = json_object_get_member (o, name);
  if (n == NULL || JSON_NODE_TYPE (n) != JSON_NODE_VALUE || json_node_get_value_type (n) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (n);
}

static gboolean
st_get_uint (JsonObject *o, const char *name, guint max, guint *out)
{
  JsonNode *n = json_object_get_member (o, name);
  if (n == NULL || JSON_NODE_TYPE (n) != JSON_NODE_VALUE || json_node_get_value_type (n) != G_TYPE_INT64)
    return FALSE;
  gint64 v = json_node_get_int (n);
  if (v < 0 || v > (gint64) max)
    return FALSE;
  *out = (guint) v;
  return TRUE;
}

/* 4 upper-case hex digits, as in the DAC's subject. */
static gboolean
st_get_id (JsonObject *o, const char *name, guint16 *out)
{
  const char *s = st_get_string (o, name);
  if (s == NULL || strlen (s) != 4)
    return FALSE;
  guint v = 0;
  for (int k = 0; k < 4; k++)
    {
      char ch = s[k];
      if (!g_ascii_isdigit (ch) && !(ch >= 'A' && ch <= 'F'))
        return FALSE;
      v = v * 16 + (guint) g_ascii_xdigit_value (ch);
    }
  *out = (guint16) v;
  return TRUE;
}

static gboolean
st_is_sha256_hex (const char *s)
{
  if (s == NULL || strlen (s) != 64)
    return FALSE;
  for (const char *p = s; *p != '\0'; p++)
    if (!g_ascii_isdigit (*p) && !(*p >= 'a' && *p <= 'f'))
      return FALSE;
  return TRUE;
}

void
st_manifest_matter_batch_read (StManifestCheck *c, JsonObject *batch, StManifestMatterBatch *out)
{
  *out = (StManifestMatterBatch) { 0 };
  if (batch == NULL || !json_object_has_member (batch, "matter"))
    return;
  JsonNode *n = json_object_get_member (batch, "matter");
  JsonObject *m = JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
  const char *cd = m != NULL ? st_get_string (m, "certification_declaration_sha256") : NULL;
  if (m == NULL || !st_get_id (m, "vendor_id", &out->vendor_id) || !st_get_id (m, "product_id", &out->product_id)
      || out->vendor_id == 0 || out->product_id == 0 || !st_is_sha256_hex (cd))
    {
      out->malformed = TRUE;
      st_manifest_check (c, FALSE, _("batch.matter is not an object with vendor_id and product_id (4 "
                         "upper-case hex digits, not 0000) and certification_declaration_sha256 (64 "
                         "lower-case hex digits)"));
      return;
    }
  out->matter = TRUE;
  st_manifest_check (c, TRUE, _("a Matter batch: VID %04X, PID %04X, Certification Declaration SHA-256 %s"),
                     out->vendor_id, out->product_id, cd);
}

gboolean
st_manifest_matter_unit_check (StManifestCheck *c, const StManifestMatterBatch *b, guint i,
                               const char *uid, JsonObject *u, X509 *cert, StManifestMatterUnit *out)
{
  *out = (StManifestMatterUnit) { 0 };
  gboolean has = json_object_has_member (u, "matter");
  if (!b->matter && !b->malformed)
    {
      if (has)
        st_manifest_check (c, FALSE, _("unit %u (uid %s): has Matter data, but the batch is not a Matter "
                           "batch (no batch.matter)"), i, uid);
      return !has;
    }
  if (!has)
    {
      if (cert == NULL)
        return TRUE;
      st_manifest_check (c, FALSE, _("unit %u (uid %s): a unit of a Matter batch with a certificate "
                         "lacks its matter member"), i, uid);
      return FALSE;
    }
  JsonNode *n = json_object_get_member (u, "matter");
  JsonObject *m = JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
  if (m == NULL)
    {
      st_manifest_check (c, FALSE, _("unit %u (uid %s): its matter member is not an object"), i, uid);
      return FALSE;
    }
  /* only the payload without the passcode: a secret here is a leak */
  g_autoptr(GList) names = json_object_get_members (m);
  for (GList *l = names; l != NULL; l = l->next)
    if (!g_strv_contains (st_unit_members, l->data))
      {
        g_autofree gchar *name = st_text_escape (l->data, -1, 0);
        st_manifest_check (c, FALSE, _("unit %u (uid %s): its matter member has '%s', which a manifest "
                           "must never carry (only version, vendor_id, product_id, commissioning_flow, "
                           "discovery and discriminator: the passcode and the codes that hold it go "
                           "to the lead's codes file only)"), i, uid, name);
        return FALSE;
      }
  guint version = 99, flow = 0, discovery = 0, discriminator = 0;
  if (!st_get_uint (m, "version", 7, &version) || version != 0 || !st_get_id (m, "vendor_id", &out->vendor_id)
      || !st_get_id (m, "product_id", &out->product_id)
      || !st_get_uint (m, "commissioning_flow", 2, &flow)
      || !st_get_uint (m, "discovery", 7, &discovery) || discovery == 0
      || !st_get_uint (m, "discriminator", 4095, &discriminator))
    {
      st_manifest_check (c, FALSE, _("unit %u (uid %s): its matter member is not well-formed (version 0; "
                         "vendor_id and product_id 4 upper-case hex digits; commissioning_flow 0 to 2; "
                         "discovery 1 to 7; discriminator 0 to 4095)"), i, uid);
      return FALSE;
    }
  out->present = TRUE;
  out->flow = (guint8) flow;
  out->discovery = (guint8) discovery;
  out->discriminator = (guint16) discriminator;
  if (b->matter && (out->vendor_id != b->vendor_id || out->product_id != b->product_id))
    {
      st_manifest_check (c, FALSE, _("unit %u (uid %s): VID %04X and PID %04X, but the batch's are %04X "
                         "and %04X"), i, uid, out->vendor_id, out->product_id, b->vendor_id, b->product_id);
      return FALSE;
    }
  if (cert != NULL)
    {
      StMatterIds ids = { 0 };
      g_autoptr(GError) error = NULL;
      if (!st_matter_name_ids (X509_get_subject_name (cert), "the DAC", &ids, &error))
        {
          st_manifest_check (c, FALSE, _("unit %u (uid %s): %s"), i, uid, error->message);
          return FALSE;
        }
      if (!ids.has_vid || !ids.has_pid || ids.vid != out->vendor_id || ids.pid != out->product_id)
        {
          st_manifest_check (c, FALSE, _("unit %u (uid %s): its certificate's subject does not carry the "
                             "VID %04X and PID %04X of its matter member"), i, uid, out->vendor_id,
                             out->product_id);
          return FALSE;
        }
    }
  return TRUE;
}

/* ---- the station's records, alongside ---- */

struct _StManifestMatterCursor {
  StDb *db;
  gint64 batch_id;
  GPtrArray *units;     /* StDbUnit, the page */
  guint at;
  gint64 after;         /* the last unit id read */
  gboolean more;
  GPtrArray *records;   /* StDbUnitMatter, the page */
  guint rec_at;
  gint64 rec_after;
  gboolean rec_more;
  guint compared, differ;
  gboolean failed;      /* the database could not be read */
};

StManifestMatterCursor *
st_manifest_matter_cursor_new (StManifestCheck *c, StDb *db, JsonObject *batch,
                               const StManifestMatterBatch *mb)
{
  if (db == NULL || batch == NULL || !mb->matter)
    return NULL;
  gint64 id = 0;
  JsonNode *n = json_object_get_member (batch, "id");
  if (n != NULL && JSON_NODE_TYPE (n) == JSON_NODE_VALUE && json_node_get_value_type (n) == G_TYPE_INT64)
    id = json_node_get_int (n);
  JsonNode *pn = json_object_get_member (batch, "profile");
  JsonObject *profile = pn != NULL && JSON_NODE_HOLDS_OBJECT (pn) ? json_node_get_object (pn) : NULL;
  const char *sha = profile != NULL ? st_get_string (profile, "sha256") : NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(StDbBatch) own = id > 0 ? st_db_batch_get (db, id, &error) : NULL;
  if (own == NULL || g_strcmp0 (own->profile_sha256, sha) != 0
      || g_strcmp0 (own->work_order, st_get_string (batch, "work_order")) != 0)
    {
      st_manifest_check (c, TRUE, _("Matter records: not compared (the batch is not one of this "
                         "station's)"));
      return NULL;
    }
  StManifestMatterCursor *cur = g_new0 (StManifestMatterCursor, 1);
  cur->db = db;
  cur->batch_id = id;
  cur->more = TRUE;
  cur->rec_more = TRUE;
  return cur;
}

static const StDbUnit *
st_cursor_unit (StManifestMatterCursor *cur)
{
  if (cur->units != NULL && cur->at < cur->units->len)
    return g_ptr_array_index (cur->units, cur->at++);
  g_clear_pointer (&cur->units, g_ptr_array_unref);
  if (!cur->more || cur->failed)
    return NULL;
  g_autoptr(GError) error = NULL;
  cur->units = st_db_unit_list_page (cur->db, cur->batch_id, cur->after, ST_DB_UNIT_PAGE, &error);
  if (cur->units == NULL)
    {
      cur->failed = TRUE;
      return NULL;
    }
  cur->more = cur->units->len == ST_DB_UNIT_PAGE;
  cur->at = 0;
  if (cur->units->len == 0)
    return NULL;
  cur->after = ((const StDbUnit *) g_ptr_array_index (cur->units, cur->units->len - 1))->id;
  return g_ptr_array_index (cur->units, cur->at++);
}

/* The record of unit @unit_id, or NULL: the records come in unit id order. */
static const StDbUnitMatter *
st_cursor_record (StManifestMatterCursor *cur, gint64 unit_id)
{
  for (;;)
    {
      if (cur->records != NULL && cur->rec_at < cur->records->len)
        {
          const StDbUnitMatter *m = g_ptr_array_index (cur->records, cur->rec_at);
          if (m->unit_id > unit_id)
            return NULL;
          cur->rec_at++;
          if (m->unit_id == unit_id)
            return m;
          continue;
        }
      g_clear_pointer (&cur->records, g_ptr_array_unref);
      if (!cur->rec_more || cur->failed)
        return NULL;
      g_autoptr(GError) error = NULL;
      cur->records = st_db_unit_matter_list_page (cur->db, cur->batch_id, cur->rec_after, ST_DB_UNIT_PAGE,
                                                  &error);
      if (cur->records == NULL)
        {
          cur->failed = TRUE;
          return NULL;
        }
      cur->rec_more = cur->records->len == ST_DB_UNIT_PAGE;
      cur->rec_at = 0;
      if (cur->records->len == 0)
        return NULL;
      cur->rec_after = ((const StDbUnitMatter *) g_ptr_array_index (cur->records, cur->records->len - 1))->unit_id;
    }
}

G_GNUC_PRINTF (3, 4)
static void
st_cursor_differs (StManifestMatterCursor *cur, StManifestCheck *c, const char *fmt, ...)
{
  if (cur->differ++ >= 20)
    return;
  va_list ap;
  va_start (ap, fmt);
  g_autofree gchar *text = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  st_manifest_check (c, FALSE, "%s", text);
}

void
st_manifest_matter_cursor_next (StManifestMatterCursor *cur, StManifestCheck *c, guint i,
                                const char *uid, const StManifestMatterUnit *mu)
{
  if (cur == NULL || cur->failed)
    return;
  const StDbUnit *u = st_cursor_unit (cur);
  if (u == NULL)
    {
      if (!cur->failed)
        st_cursor_differs (cur, c, _("unit %u (uid %s): the station's batch has no unit %u"), i,
                           uid != NULL ? uid : "?", i);
      return;
    }
  if (g_strcmp0 (u->uid, uid) != 0)
    {
      st_cursor_differs (cur, c, _("unit %u (uid %s): the station's unit %u has uid %s"), i,
                         uid != NULL ? uid : "?", i, u->uid);
      return;
    }
  const StDbUnitMatter *m = st_cursor_record (cur, u->id);
  if (m == NULL && !mu->present)
    return;
  cur->compared++;
  if (m == NULL || !mu->present)
    {
      st_cursor_differs (cur, c, m == NULL ? _("unit %u (uid %s): has Matter data, the station records none")
                                           : _("unit %u (uid %s): the station records Matter data the "
                                             "manifest lacks"), i, uid);
      return;
    }
  if (m->vendor_id != mu->vendor_id || m->product_id != mu->product_id || m->discriminator != mu->discriminator
      || m->flow != mu->flow || m->discovery != mu->discovery)
    st_cursor_differs (cur, c, _("unit %u (uid %s): its Matter data is not the station's record (VID %04X, "
                       "PID %04X, discriminator %u, flow %u, discovery %u recorded)"), i, uid,
                       m->vendor_id, m->product_id, m->discriminator, m->flow, m->discovery);
}

void
st_manifest_matter_cursor_finish (StManifestMatterCursor *cur, StManifestCheck *c)
{
  if (cur == NULL)
    return;
  if (cur->failed)
    st_manifest_check (c, FALSE, _("Matter records: the station's database could not be read; run "
                       "'station db check'"));
  else if (cur->differ > 0)
    st_manifest_check (c, FALSE, _("Matter records: %u unit(s) differ from the station's records"),
                       cur->differ);
  else
    st_manifest_check (c, TRUE, _("Matter records: %u unit(s), each the station's record (VID, PID, "
                       "discriminator, flow, discovery)"), cur->compared);
  /* units made after the export (a batch still open then) are no fault of
   * the manifest: said, not compared */
  if (!cur->failed && st_cursor_unit (cur) != NULL)
    st_manifest_check (c, TRUE, _("Matter records: the station's batch has units made after this export "
                       "(not in the manifest, not compared)"));
  g_clear_pointer (&cur->units, g_ptr_array_unref);
  g_clear_pointer (&cur->records, g_ptr_array_unref);
  g_free (cur);
}
