/* The codes file and the labels of a Matter batch: st-matter-export.h. */
#include "st-matter-export.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>
#include <unistd.h>

#include "st-error.h"
#include "st-profile.h"
#include "st-text.h"
#include "st-util.h"

typedef gboolean (*StMatterUnitFunc) (const StDbUnit *u, const StDbUnitMatter *m, gpointer user_data,
                                      GError **error);

/* The batch's profile, which must be a Matter one. */
static StProfile *
st_matter_batch_profile (StDb *db, gint64 batch_id, GError **error)
{
  g_autoptr(StDbBatch) batch = st_db_batch_get (db, batch_id, error);
  if (batch == NULL)
    return NULL;
  g_autoptr(StProfile) profile = batch->profile_text != NULL
    ? st_profile_load_from_data (batch->profile_text, strlen (batch->profile_text), batch->product, NULL)
    : NULL;
  if (profile == NULL || !profile->matter.enabled)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("batch %" PRId64 " (profile %s) is not a Matter batch: its profile has no [matter] "
                   "group, so it has no setup codes nor labels"), batch_id, batch->product);
      return NULL;
    }
  return g_steal_pointer (&profile);
}

/* @func on each done unit of @batch_id with its Matter record, in unit
 * order; a page of units and their records at a time. */
static gboolean
st_matter_foreach_done (StDb *db, gint64 batch_id, StMatterUnitFunc func, gpointer user_data,
                        GError **error)
{
  gint64 after = 0;
  for (;;)
    {
      g_autoptr(GPtrArray) page = st_db_unit_list_page (db, batch_id, after, ST_DB_UNIT_PAGE, error);
      if (page == NULL)
        return FALSE;
      if (page->len == 0)
        return TRUE;
      gint64 first = ((const StDbUnit *) g_ptr_array_index (page, 0))->id;
      after = ((const StDbUnit *) g_ptr_array_index (page, page->len - 1))->id;
      g_autoptr(GPtrArray) recs = st_db_unit_matter_list_page (db, batch_id, first - 1, page->len, error);
      if (recs == NULL)
        return FALSE;
      guint r = 0;
      for (guint j = 0; j < page->len; j++)
        {
          const StDbUnit *u = g_ptr_array_index (page, j);
          while (r < recs->len && ((const StDbUnitMatter *) g_ptr_array_index (recs, r))->unit_id < u->id)
            r++;
          const StDbUnitMatter *m = r < recs->len
                                    && ((const StDbUnitMatter *) g_ptr_array_index (recs, r))->unit_id == u->id
                                      ? g_ptr_array_index (recs, r) : NULL;
          if (g_strcmp0 (u->state, "done") != 0)
            continue;
          if (m == NULL)
            {
              g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                           _("unit %" PRId64 " (uid %s) of Matter batch %" PRId64 " is done but has no "
                           "Matter record: run 'station db check' and 'station audit verify'"),
                           u->id, u->uid, batch_id);
              return FALSE;
            }
          if (!func (u, m, user_data, error))
            return FALSE;
        }
      if (page->len < ST_DB_UNIT_PAGE)
        return TRUE;
    }
}

/* ---- the codes file ---- */

typedef struct {
  int fd;
  const char *path;
  EVP_MD_CTX *md;
  GString *buf;      /* holds passcodes: wiped before it is reused or freed */
  guint rows;
} StCodes;

/* One RFC 4180 cell of @raw (escaped for a person and a spreadsheet first). */
static void
st_codes_cell (GString *out, const char *raw, gboolean last)
{
  g_autofree gchar *cell = st_text_escape (raw != NULL ? raw : "", -1, ST_TEXT_CSV_CELL);
  if (strpbrk (cell, ",\"\r\n") != NULL)
    {
      g_string_append_c (out, '"');
      for (const char *p = cell; *p != '\0'; p++)
        {
          if (*p == '"')
            g_string_append_c (out, '"');
          g_string_append_c (out, *p);
        }
      g_string_append_c (out, '"');
    }
  else
    g_string_append (out, cell);
  g_string_append (out, last ? "\r\n" : ",");
}

static gboolean
st_codes_flush (StCodes *c, GError **error)
{
  gsize done = 0;
  while (done < c->buf->len)
    {
      ssize_t n = write (c->fd, c->buf->str + done, c->buf->len - done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          int e = n < 0 ? errno : ENOSPC;
          g_set_error (error, ST_ERROR, ST_ERROR_WRITE, _("cannot write %s: %s"), c->path, g_strerror (e));
          return FALSE;
        }
      done += (gsize) n;
    }
  EVP_DigestUpdate (c->md, c->buf->str, c->buf->len);
  OPENSSL_cleanse (c->buf->str, c->buf->len);
  g_string_truncate (c->buf, 0);
  return TRUE;
}

static gboolean
st_codes_row (const StDbUnit *u, const StDbUnitMatter *m, gpointer user_data, GError **error)
{
  StCodes *c = user_data;
  gchar num[16], pass[16];
  g_snprintf (num, sizeof num, "%u", m->discriminator);
  g_snprintf (pass, sizeof pass, "%08u", (guint) m->passcode);
  st_codes_cell (c->buf, u->product_serial, FALSE);
  st_codes_cell (c->buf, u->uid, FALSE);
  st_codes_cell (c->buf, num, FALSE);
  st_codes_cell (c->buf, pass, FALSE);
  st_codes_cell (c->buf, m->qr_text, FALSE);
  st_codes_cell (c->buf, m->manual_code, TRUE);
  OPENSSL_cleanse (pass, sizeof pass);
  c->rows++;
  return c->buf->len < 64 * 1024 || st_codes_flush (c, error);
}

gboolean
st_matter_export_codes (StDb *db, gint64 batch_id, const char *path, gchar **sha256, guint *rows,
                        GError **error)
{
  g_autoptr(StProfile) profile = st_matter_batch_profile (db, batch_id, error);
  if (profile == NULL)
    return FALSE;
  /* new, never through a link, readable by its owner only */
  int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    {
      int e = errno;
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, _("cannot create %s: %s (it is never replaced: move "
                   "the old file away or choose another folder)"), path, g_strerror (e));
      return FALSE;
    }
  StCodes c = { .fd = fd, .path = path, .md = EVP_MD_CTX_new (), .buf = g_string_sized_new (80 * 1024) };
  gboolean ok = c.md != NULL && EVP_DigestInit_ex (c.md, EVP_sha256 (), NULL) == 1;
  if (!ok)
    g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL, _("SHA-256 is not available"));
  if (ok)
    {
      g_string_append (c.buf, ST_MATTER_CODES_HEADER "\r\n");
      ok = st_matter_foreach_done (db, batch_id, st_codes_row, &c, error) && st_codes_flush (&c, error);
    }
  if (ok && fsync (fd) != 0)
    {
      int e = errno;
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, _("cannot sync %s: %s"), path, g_strerror (e));
      ok = FALSE;
    }
  if (close (fd) != 0 && ok)
    {
      int e = errno;
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, _("cannot write %s: %s"), path, g_strerror (e));
      ok = FALSE;
    }
  guint8 digest[EVP_MAX_MD_SIZE];
  unsigned int dlen = 0;
  if (ok && EVP_DigestFinal_ex (c.md, digest, &dlen) != 1)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL, _("SHA-256 is not available"));
      ok = FALSE;
    }
  EVP_MD_CTX_free (c.md);
  OPENSSL_cleanse (c.buf->str, c.buf->allocated_len);
  g_string_free (c.buf, TRUE);
  if (!ok)
    {
      g_unlink (path);
      return FALSE;
    }
  *sha256 = st_hex_encode (digest, dlen);
  *rows = c.rows;
  return TRUE;
}

/* ---- the labels ---- */

gchar *
st_matter_label_name (const StDbUnit *u)
{
  const char *s = u->product_serial;
  gsize n = s != NULL ? strlen (s) : 0;
  gboolean ok = n >= 1 && n <= 64 && s[0] != '.';
  for (gsize i = 0; ok && i < n; i++)
    ok = g_ascii_isalnum (s[i]) || s[i] == '.' || s[i] == '_' || s[i] == '-';
  return ok ? g_strdup (s) : g_strdup_printf ("unit-%" G_GINT64_FORMAT, u->id);
}

typedef struct {
  const char *dir;
  const StLabelSize *size;
  const char *product_name;
  guint count;
} StLabels;

static gboolean
st_labels_unit (const StDbUnit *u, const StDbUnitMatter *m, gpointer user_data, GError **error)
{
  StLabels *l = user_data;
  g_autofree gchar *name = st_matter_label_name (u);
  StLabelUnit unit = {
    .qr_text = m->qr_text,
    .manual_code = m->manual_code,
    .serial = u->product_serial,
    .product_name = l->product_name,
  };
  if (!st_label_write_files (l->dir, name, &unit, l->size, error))
    {
      g_prefix_error (error, _("the label of unit %" PRId64 " (uid %s): "), u->id, u->uid);
      return FALSE;
    }
  l->count++;
  return TRUE;
}

gboolean
st_matter_export_labels (StDb *db, gint64 batch_id, const StLabelSize *size, const char *dir,
                         guint *count, GError **error)
{
  g_autoptr(StProfile) profile = st_matter_batch_profile (db, batch_id, error);
  if (profile == NULL)
    return FALSE;
  StLabels l = { .dir = dir, .size = size, .product_name = profile->name };
  if (!st_matter_foreach_done (db, batch_id, st_labels_unit, &l, error))
    return FALSE;
  *count = l.count;
  return TRUE;
}
