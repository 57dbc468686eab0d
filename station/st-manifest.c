#include "st-manifest.h"

#include <glib/gi18n.h>
#include <inttypes.h>
#include "st-json.h"
#include "st-issue.h"
#include "st-audit.h"
#include "st-manifest-check.h"
#include "st-manifest-matter.h"
#include "st-crl.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include "st-error.h"
#include "st-hsm.h"
#include "st-ossl.h"
#include "st-text.h"
#include "st-util.h"
#include "st-verify.h"

/* ---- export ---------------------------------------------------------- */

/* The manifest's view of a unit: 'done' or 'failed'. A unit still in the
 * pipeline (interrupted, not yet resolved) is reported as failed, with its
 * certificate unconfirmed: never as done; a disputed one (a lead decides)
 * as failed with its certificate disputed. */
static const char *
st_manifest_unit_state (const StDbUnit *u)
{
  return g_strcmp0 (u->state, "done") == 0 ? "done" : "failed";
}

static const char *
st_manifest_cert_status (const StDbUnit *u)
{
  if (g_strcmp0 (u->cert_state, "active") == 0)
    return "active";
  if (g_strcmp0 (u->cert_state, "voided") == 0)
    return "voided";
  if (g_strcmp0 (u->cert_state, "disputed") == 0)
    return "disputed";
  if (g_strcmp0 (u->cert_state, "revoked") == 0)
    return "revoked";
  return "unconfirmed";
}

/* One cell: escaped as any text a person sees (st-text.h), and one that a
 * spreadsheet would take for a formula (= + - @ tab CR first) starts with
 * a "'" (ST_TEXT_CSV_CELL); then quoted as RFC 4180 wants. */
static void
st_csv_field (GString *out, const char *raw, gboolean last)
{
  /* the common cell (hex, a time, a word): printable ASCII that neither
   * st_text_escape nor a spreadsheet changes, nor needs quotes */
  if (raw != NULL && *raw != '=' && *raw != '+' && *raw != '-' && *raw != '@')
    {
      const char *p = raw;
      while ((guchar) *p >= 0x20 && (guchar) *p < 0x7f && *p != ',' && *p != '"')
        p++;
      if (*p == '\0')
        {
          g_string_append_len (out, raw, p - raw);
          g_string_append (out, last ? "\r\n" : ",");
          return;
        }
    }
  g_autofree gchar *value = st_text_escape (raw, -1, ST_TEXT_CSV_CELL);
  if (value != NULL)
    {
      gboolean quote = strpbrk (value, ",\"\r\n") != NULL;
      if (quote)
        g_string_append_c (out, '"');
      for (const char *p = value; *p != '\0'; p++)
        {
          if (*p == '"')
            g_string_append_c (out, '"');
          g_string_append_c (out, *p);
        }
      if (quote)
        g_string_append_c (out, '"');
    }
  g_string_append (out, last ? "\r\n" : ",");
}

/* batch.profile.subject and .san: the templates that built the units'
 * names, for verifiers without the profile. FALSE (nothing added) when the
 * recorded profile text does not load any more. */
static gboolean
st_manifest_add_profile_names (JsonBuilder *b, const StDbBatch *batch)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StProfile) profile = batch->profile_text != NULL
    ? st_profile_load_from_data (batch->profile_text, strlen (batch->profile_text), batch->product, &error)
    : NULL;
  if (profile == NULL)
    return FALSE;
  st_json_add_string (b, "subject", profile->subject_template);
  json_builder_set_member_name (b, "san");
  json_builder_begin_array (b);
  for (guint i = 0; profile->san_templates[i] != NULL; i++)
    json_builder_add_string_value (b, profile->san_templates[i]);
  json_builder_end_array (b);
  return TRUE;
}

#define ST_CSV_HEADER "uid,serial,state,failure_step,failure_reason,cert_serial,certificate_status,issued_at,certificate_sha256"

typedef struct {
  StCa *ca;
  const gchar *json;
  gsize len;
  STACK_OF (X509) *extra;
  CMS_ContentInfo *cms;
} StManifestSign;

static gboolean
st_manifest_sign_func (EVP_PKEY *key, StCaToken *token, gpointer user_data, GError **error)
{
  StManifestSign *s = user_data;
  g_autoptr(BIO) in = BIO_new_mem_buf (s->json, (int) s->len);
  st_ca_token_enter (token);
  s->cms = in != NULL ? CMS_sign (s->ca->signing_cert, key, s->extra, in, CMS_DETACHED | CMS_BINARY) : NULL;
  st_ca_token_leave (token);
  if (s->cms == NULL)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "cannot sign the manifest (CMS_sign)");
      return FALSE;
    }
  return TRUE;
}

static GBytes *
st_manifest_sign (StCa *ca, const gchar *json, gsize len, GError **error)
{
  if (len > G_MAXINT)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, _("the manifest is too large to sign"));
      return NULL;
    }
  g_autoptr(StX509Stack) extra = sk_X509_new_null ();
  /* Intermediates only: the root is the verifier's trust anchor. */
  for (int i = 0; i + 1 < sk_X509_num (ca->chain); i++)
    {
      X509 *c = sk_X509_value (ca->chain, i);
      X509_up_ref (c);
      sk_X509_push (extra, c);
    }
  /* A lost HSM session is recovered there, as for certificates. */
  StManifestSign s = { .ca = ca, .json = json, .len = len, .extra = extra };
  if (!st_ca_sign_with (ca, ST_CA_KEY_SIGNING, "the manifest", st_manifest_sign_func, &s, NULL, error))
    return NULL;
  g_autoptr(CMS_ContentInfo) cms = s.cms;
  guint8 *der = NULL;
  int der_len = i2d_CMS_ContentInfo (cms, &der);
  if (der_len <= 0)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "cannot encode the manifest signature");
      return NULL;
    }
  GBytes *out = g_bytes_new (der, (gsize) der_len);
  OPENSSL_free (der);
  return out;
}

/* A file written as it goes, hashed as it goes: a temporary file renamed
 * into place, fsynced, when it is complete (st_out_finish). */
typedef struct {
  gchar *path, *tmp;
  FILE *f;
  EVP_MD_CTX *md;
  gsize size;
  guint64 lines;
  gchar *sha256;  /* hex, once finished */
} StOut;

static gboolean
st_out_open (StOut *o, const char *dir, const char *name, GError **error)
{
  o->path = g_build_filename (dir, name, NULL);
  o->tmp = g_strdup_printf ("%s.tmp-XXXXXX", o->path);
  int fd = g_mkstemp_full (o->tmp, O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0 || (o->f = fdopen (fd, "wb")) == NULL)
    {
      int e = errno;
      if (fd >= 0)
        close (fd);
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, _("cannot create %s: %s"), o->tmp, g_strerror (e));
      g_clear_pointer (&o->tmp, g_free);
      return FALSE;
    }
  o->md = EVP_MD_CTX_new ();
  if (o->md == NULL || EVP_DigestInit_ex (o->md, EVP_sha256 (), NULL) != 1)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "cannot hash a manifest file");
      return FALSE;
    }
  return TRUE;
}

static gboolean
st_out_write (StOut *o, const char *data, gsize len, GError **error)
{
  if (len > 0 && (fwrite (data, 1, len, o->f) != len || EVP_DigestUpdate (o->md, data, len) != 1))
    {
      int e = errno;
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, _("cannot write %s: %s"), o->tmp, g_strerror (e));
      return FALSE;
    }
  o->size += len;
  for (gsize i = 0; i < len; i++)
    if (data[i] == '\n')
      o->lines++;
  return TRUE;
}

static gboolean
st_out_finish (StOut *o, GError **error)
{
  guint8 digest[EVP_MAX_MD_SIZE];
  unsigned int dlen = 0;
  if (EVP_DigestFinal_ex (o->md, digest, &dlen) != 1)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "cannot hash a manifest file");
      return FALSE;
    }
  o->sha256 = st_hex_encode (digest, dlen);
  int fail = fflush (o->f) != 0 || fsync (fileno (o->f)) != 0;
  int e = errno;
  fail |= fclose (o->f) != 0;
  o->f = NULL;
  if (fail || g_rename (o->tmp, o->path) != 0)
    {
      e = fail ? e : errno;
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, _("cannot write %s: %s"), o->path, g_strerror (e));
      return FALSE;
    }
  g_clear_pointer (&o->tmp, g_free);
  return TRUE;
}

static void
st_out_clear (StOut *o)
{
  if (o->f != NULL)
    fclose (o->f);
  if (o->tmp != NULL)
    g_unlink (o->tmp);
  g_free (o->tmp);
  g_free (o->path);
  g_free (o->sha256);
  EVP_MD_CTX_free (o->md);
  memset (o, 0, sizeof *o);
}

/* An export under way: the two unit files and the counts. */
typedef struct {
  gint64 n_units, n_done, n_failed, n_active, n_voided, n_unconfirmed, n_disputed, n_revoked;
} StExportCounts;

typedef struct {
  StOut jsonl, csv;
  StExportCounts n;
  /* the batch's profile names: each unit's certificate is held against
   * its uid as it is written (NULL: the profile no longer loads) */
  StManifestProfile *profile;
  /* a Matter batch: each unit gets its record's public part */
  gboolean matter;
} StExport;

void
st_manifest_json_string (GString *out, const char *s)
{
  if (s == NULL)
    {
      g_string_append (out, "null");
      return;
    }
  static const char hex[] = "0123456789abcdef";
  g_string_append_c (out, '"');
  const char *p = s;
  while (*p != '\0')
    {
      /* a run of bytes that need nothing: printable ASCII but '"' and '\\' */
      const char *run = p;
      while ((guchar) *p >= 0x20 && (guchar) *p < 0x7f && *p != '"' && *p != '\\')
        p++;
      if (p > run)
        g_string_append_len (out, run, p - run);
      guchar c = (guchar) *p;
      if (c == '\0')
        break;
      if (c == '"' || c == '\\')
        {
          g_string_append_c (out, '\\');
          g_string_append_c (out, (char) c);
          p++;
        }
      else if (c < 0x20 || c == 0x7f)
        {
          const char *shortform = c == '\b' ? "\\b" : c == '\f' ? "\\f" : c == '\n' ? "\\n"
                                  : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
          if (shortform != NULL)
            g_string_append (out, shortform);
          else
            {
              char u[7] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf], '\0' };
              g_string_append (out, u);
            }
          p++;
        }
      else
        {
          /* UTF-8 as it is; a byte that is no part of valid UTF-8 is U+FFFD
           * (a JSON text is UTF-8: a parser refuses the raw byte) */
          gunichar ch = g_utf8_get_char_validated (p, -1);
          if (ch == (gunichar) -1 || ch == (gunichar) -2)
            {
              g_string_append (out, "\xef\xbf\xbd");
              p++;
            }
          else
            {
              const char *next = g_utf8_next_char (p);
              g_string_append_len (out, p, next - p);
              p = next;
            }
        }
    }
  g_string_append_c (out, '"');
}

/* ,"name":value (@first: without the comma) */
static void
st_line_member (GString *l, const char *name, const char *value, gboolean first)
{
  if (!first)
    g_string_append_c (l, ',');
  g_string_append_c (l, '"');
  g_string_append (l, name);
  g_string_append (l, "\":");
  st_manifest_json_string (l, value);
}

/* One unit: a line of units.jsonl (the unit object of station-manifest/1,
 * its members in the same order, as json-glib wrote it before: no spaces)
 * and a row of manifest.csv. Written directly, without a JSON tree: the
 * export's cost a unit was json-glib's allocations and, before that, the
 * certificate's parse (d2i_X509) only to print it as PEM; the PEM now comes
 * from the recorded DER (st_der_to_pem), the fingerprint from the same DER.
 * The DER is the one the pipeline checked before recording it. */
static gboolean
st_export_unit (const StManifestProfile *profile, const StDbUnit *u, const StDbUnitMatter *m,
                gboolean matter, guint index, StExportCounts *x, GString *l, GString *csv,
                GString *check_report, GError **error)
{
  const char *state = st_manifest_unit_state (u);
  gboolean done = g_strcmp0 (state, "done") == 0;
  gboolean has_cert = u->cert_id > 0 && u->cert_der != NULL;
  g_autofree gchar *pem = NULL;
  g_autofree gchar *fingerprint = NULL;
  g_autofree gchar *issued = NULL;
  const char *status = NULL;
  const char *fail_step = u->fail_step != NULL ? u->fail_step : u->state;
  const char *fail_reason = u->fail_reason != NULL ? u->fail_reason : "interrupted; not resolved yet";
  x->n_units++;
  done ? x->n_done++ : x->n_failed++;

  g_string_append_c (l, '{');
  st_line_member (l, "uid", u->uid, TRUE);
  st_line_member (l, "serial", u->product_serial, FALSE);
  st_line_member (l, "model", u->model, FALSE);
  st_line_member (l, "state", state, FALSE);
  if (!done)
    {
      g_string_append (l, ",\"failure\":{");
      st_line_member (l, "step", fail_step, TRUE);
      st_line_member (l, "reason", fail_reason, FALSE);
      g_string_append_c (l, '}');
    }
  if (has_cert)
    {
      gsize der_len = 0;
      const guint8 *der = g_bytes_get_data (u->cert_der, &der_len);
      if (der_len == 0)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL,
                       _("the recorded certificate of unit %" PRId64 " (uid %s) is empty: "
                       "run 'station db check'"), u->id, u->uid);
          return FALSE;
        }
      /* the uid the database records is the one in its certificate (what
       * verify checks of each unit; its signature was checked at issuance) */
      if (profile != NULL)
        {
          g_autoptr(X509) cert = st_x509_from_der_fields (der, der_len);
          StManifestCheck c = { .report = check_report };
          gboolean checked = FALSE;
          g_string_truncate (check_report, 0);
          if (cert == NULL)
            {
              g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                           _("the recorded certificate of unit %" PRId64 " (uid %s) does not parse: "
                           "run 'station db check'"), u->id, u->uid);
              return FALSE;
            }
          if (!st_manifest_check_uid_of (&c, profile, index, u->uid, u->model,
                                         u->product_serial, cert, &checked))
            {
              g_strchomp (check_report->str);
              g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                           _("%s: the database's record of the unit does not match the certificate it "
                           "records; no manifest is signed (run 'station db check' and 'station audit "
                           "verify')"), check_report->str + strlen ("FAIL  "));
              return FALSE;
            }
        }
      pem = st_der_to_pem ("CERTIFICATE", der, der_len);
      fingerprint = st_sha256_hex (der, der_len);
      status = st_manifest_cert_status (u);
      if (g_strcmp0 (status, "active") == 0)
        x->n_active++;
      else if (g_strcmp0 (status, "voided") == 0)
        x->n_voided++;
      else if (g_strcmp0 (status, "disputed") == 0)
        x->n_disputed++;
      else if (g_strcmp0 (status, "revoked") == 0)
        x->n_revoked++;
      else
        x->n_unconfirmed++;
      issued = u->issued_at > 0 ? st_time_iso8601_from_unix (u->issued_at) : NULL;
      st_line_member (l, "certificate", pem, FALSE);
      st_line_member (l, "cert_serial", u->cert_serial, FALSE);
      st_line_member (l, "certificate_status", status, FALSE);
      st_line_member (l, "issued_at", issued, FALSE);
      if (u->void_reason != NULL && g_strcmp0 (status, "active") != 0)
        st_line_member (l, "certificate_note", u->void_reason, FALSE);
    }
  /* a Matter unit's payload without the passcode (st-manifest-matter.h) */
  if (matter && m == NULL && has_cert)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   _("unit %" PRId64 " (uid %s) of a Matter batch has a certificate but no Matter record; "
                   "no manifest is signed (run 'station db check' and 'station audit verify')"), u->id, u->uid);
      return FALSE;
    }
  if (m != NULL)
    st_manifest_matter_unit_member (l, m);
  g_string_append (l, "}\n");

  st_csv_field (csv, u->uid, FALSE);
  st_csv_field (csv, u->product_serial, FALSE);
  st_csv_field (csv, state, FALSE);
  st_csv_field (csv, done ? NULL : fail_step, FALSE);
  st_csv_field (csv, done ? NULL : fail_reason, FALSE);
  st_csv_field (csv, has_cert ? u->cert_serial : NULL, FALSE);
  st_csv_field (csv, status, FALSE);
  st_csv_field (csv, issued, FALSE);
  st_csv_field (csv, fingerprint, TRUE);
  return TRUE;
}

/* ---- the units, formatted on every core ---- */

/* The batch's units go to the workers a page of the database at a time
 * (ST_DB_UNIT_PAGE units, read by this thread: the database's reader is
 * not shared with them), at most ST_EXPORT_CHUNKS_PER_THREAD pages a
 * worker in flight, so the memory is bounded whatever the batch; each page
 * is formatted into its own lines, rows and counts, which are written in
 * the order of the units: the files are those one thread would write. */
#define ST_EXPORT_CHUNKS_PER_THREAD 2

typedef struct {
  GPtrArray *units;             /* StDbUnit, the page, owned */
  GPtrArray *matter;            /* StDbUnitMatter of its units, unit id order (NULL: none) */
  gboolean is_matter;
  guint first;                  /* the batch index (from 1) of its first unit */
  const StManifestProfile *profile;
  GString *jsonl, *csv;
  StExportCounts n;
  GError *error;                /* the first unit that could not be written */
  GMutex lock;
  GCond cond;
  gboolean done;
} StExportChunk;

static void
st_export_chunk_free (StExportChunk *k)
{
  g_ptr_array_unref (k->units);
  if (k->matter != NULL)
    g_ptr_array_unref (k->matter);
  g_string_free (k->jsonl, TRUE);
  g_string_free (k->csv, TRUE);
  g_clear_error (&k->error);
  g_mutex_clear (&k->lock);
  g_cond_clear (&k->cond);
  g_free (k);
}

static void
st_export_chunk_run (gpointer data, gpointer user_data)
{
  StExportChunk *k = data;
  g_autoptr(GString) check_report = g_string_new (NULL);
  guint r = 0;
  for (guint j = 0; j < k->units->len && k->error == NULL; j++)
    {
      const StDbUnit *u = g_ptr_array_index (k->units, j);
      const StDbUnitMatter *m = NULL;
      /* both in unit id order: the record of this unit, if it has one */
      while (k->matter != NULL && r < k->matter->len
             && ((const StDbUnitMatter *) g_ptr_array_index (k->matter, r))->unit_id < u->id)
        r++;
      if (k->matter != NULL && r < k->matter->len
          && ((const StDbUnitMatter *) g_ptr_array_index (k->matter, r))->unit_id == u->id)
        m = g_ptr_array_index (k->matter, r);
      st_export_unit (k->profile, u, m, k->is_matter, k->first + j, &k->n, k->jsonl, k->csv, check_report,
                      &k->error);
    }
  /* nothing of this page stays in the thread's OpenSSL state */
  st_error_clear_openssl ();
  OPENSSL_thread_stop ();
  g_mutex_lock (&k->lock);
  k->done = TRUE;
  g_cond_signal (&k->cond);
  g_mutex_unlock (&k->lock);
}

/* The page @k, once done, into the files and counts of @x. */
static gboolean
st_export_chunk_take (StExport *x, StExportChunk *k, GError **error)
{
  g_mutex_lock (&k->lock);
  while (!k->done)
    g_cond_wait (&k->cond, &k->lock);
  g_mutex_unlock (&k->lock);
  if (k->error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&k->error));
      return FALSE;
    }
  x->n.n_units += k->n.n_units;
  x->n.n_done += k->n.n_done;
  x->n.n_failed += k->n.n_failed;
  x->n.n_active += k->n.n_active;
  x->n.n_voided += k->n.n_voided;
  x->n.n_unconfirmed += k->n.n_unconfirmed;
  x->n.n_disputed += k->n.n_disputed;
  x->n.n_revoked += k->n.n_revoked;
  return st_out_write (&x->jsonl, k->jsonl->str, k->jsonl->len, error)
         && st_out_write (&x->csv, k->csv->str, k->csv->len, error);
}

/* Every unit of batch @batch_id into units.jsonl and manifest.csv. */
static gboolean
st_export_units (StExport *x, StDb *db, gint64 batch_id, GError **error)
{
  guint threads = CLAMP (g_get_num_processors (), 1, 16);
  g_autoptr(GError) pool_error = NULL;
  /* its own threads, ended when the units are written */
  GThreadPool *pool = g_thread_pool_new (st_export_chunk_run, NULL, (gint) threads, TRUE, &pool_error);
  GQueue flight = G_QUEUE_INIT;
  gboolean ok = TRUE, more = TRUE;
  gint64 after = 0;
  guint next = 1;
  while (ok && (more || !g_queue_is_empty (&flight)))
    {
      if (more)
        {
          GPtrArray *page = st_db_unit_list_page (db, batch_id, after, ST_DB_UNIT_PAGE, error);
          if (page == NULL)
            {
              ok = FALSE;
              break;
            }
          more = page->len == ST_DB_UNIT_PAGE;
          if (page->len == 0)
            g_ptr_array_unref (page);
          else
            {
              gint64 first_id = ((const StDbUnit *) g_ptr_array_index (page, 0))->id;
              after = ((const StDbUnit *) g_ptr_array_index (page, page->len - 1))->id;
              /* the page's Matter records: at most one a unit, from its first unit on */
              GPtrArray *matter = x->matter ? st_db_unit_matter_list_page (db, batch_id, first_id - 1,
                                                                           page->len, error) : NULL;
              if (x->matter && matter == NULL)
                {
                  g_ptr_array_unref (page);
                  ok = FALSE;
                  break;
                }
              StExportChunk *k = g_new0 (StExportChunk, 1);
              k->units = page;
              k->matter = matter;
              k->is_matter = x->matter;
              k->first = next;
              k->profile = x->profile;
              k->jsonl = g_string_sized_new (page->len * 1200);
              k->csv = g_string_sized_new (page->len * 200);
              g_mutex_init (&k->lock);
              g_cond_init (&k->cond);
              next += page->len;
              /* without a pool (no thread could start), this thread does it */
              if (pool == NULL || !g_thread_pool_push (pool, k, NULL))
                st_export_chunk_run (k, NULL);
              g_queue_push_tail (&flight, k);
            }
        }
      while (ok && (g_queue_get_length (&flight) >= threads * ST_EXPORT_CHUNKS_PER_THREAD
                    || (!more && !g_queue_is_empty (&flight))))
        {
          StExportChunk *head = g_queue_pop_head (&flight);
          ok = st_export_chunk_take (x, head, error);
          st_export_chunk_free (head);
        }
    }
  /* after a failure: the pages in flight end, unread */
  if (pool != NULL)
    g_thread_pool_free (pool, FALSE, TRUE);
  StExportChunk *k;
  while ((k = g_queue_pop_head (&flight)) != NULL)
    st_export_chunk_free (k);
  return ok;
}

/* The header, manifest.json: the batch, its counts, the issuer, the signer's
 * pin, a checkpoint of the audit log and the name and size of units.jsonl. */
static gchar *
st_export_header (StDb *db, StCa *ca, const char *station_id, const StDbBatch *batch,
                  const StProfile *profile, const StExport *x, gsize *len, GError **error)
{
  guint8 *ca_der = NULL;
  int ca_der_len = i2d_X509 (ca->ca_cert, &ca_der);
  g_autofree gchar *issuer_hash = ca_der_len > 0 ? st_sha256_hex (ca_der, (gsize) ca_der_len) : NULL;
  OPENSSL_free (ca_der);

  g_autoptr(JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  st_json_add_string (b, "format", ST_MANIFEST_FORMAT_2);
  json_builder_set_member_name (b, "batch");
  json_builder_begin_object (b);
  st_json_add_int (b, "id", batch->id);
  st_json_add_string (b, "work_order", batch->work_order);
  json_builder_set_member_name (b, "profile");
  json_builder_begin_object (b);
  st_json_add_string (b, "name", batch->product);
  st_json_add_string (b, "sha256", batch->profile_sha256);
  if (!st_manifest_add_profile_names (b, batch))
    g_warning ("batch %" G_GINT64_FORMAT ": its profile no longer loads: the manifest records no "
               "subject template, its verifiers check the uids with this station's copy only", batch->id);
  json_builder_end_object (b);
  st_json_add_string (b, "station_id", batch->station_id != NULL ? batch->station_id : station_id);
  st_json_add_time (b, "created_at", batch->created_at);
  st_json_add_time (b, "closed_at", batch->closed_at);
  st_json_add_string (b, "created_by", batch->created_by);
  st_json_add_string (b, "closed_by", batch->closed_by);
  st_json_add_string (b, "state", batch->state);
  json_builder_set_member_name (b, "counts");
  json_builder_begin_object (b);
  st_json_add_int (b, "quantity", batch->quantity);
  st_json_add_int (b, "units", x->n.n_units);
  st_json_add_int (b, "done", x->n.n_done);
  st_json_add_int (b, "failed", x->n.n_failed);
  st_json_add_int (b, "certificates_active", x->n.n_active);
  st_json_add_int (b, "certificates_voided", x->n.n_voided);
  st_json_add_int (b, "certificates_unconfirmed", x->n.n_unconfirmed);
  st_json_add_int (b, "certificates_disputed", x->n.n_disputed);
  st_json_add_int (b, "certificates_revoked", x->n.n_revoked);
  json_builder_end_object (b);
  if (x->matter && !st_manifest_matter_header (b, profile, error))
    return NULL;
  json_builder_end_object (b);

  json_builder_set_member_name (b, "issuer");
  json_builder_begin_object (b);
  g_autofree gchar *issuer_subject = st_x509_name_text (X509_get_subject_name (ca->ca_cert));
  st_json_add_string (b, "subject", issuer_subject);
  st_json_add_string (b, "sha256", issuer_hash);
  json_builder_end_object (b);
  /* the signer's pin, cross-checked by verifiers (who hold their own) */
  g_autofree gchar *signer_pin = st_x509_pubkey_sha256_hex (ca->signing_cert, error);
  if (signer_pin == NULL)
    return NULL;
  st_json_add_string (b, "signer_key_sha256", signer_pin);
  if (!st_audit_add_manifest_member (b, db, ca, error))
    return NULL;
  g_autofree gchar *exported = st_time_iso8601_now ();
  st_json_add_string (b, "exported_at", exported);
  json_builder_set_member_name (b, "units_file");
  json_builder_begin_object (b);
  st_json_add_string (b, "name", ST_MANIFEST_UNITS_FILE);
  st_json_add_int (b, "lines", (gint64) x->jsonl.lines);
  st_json_add_int (b, "bytes", (gint64) x->jsonl.size);
  st_json_add_string (b, "sha256", x->jsonl.sha256);
  json_builder_end_object (b);
  json_builder_end_object (b);

  g_autoptr(JsonNode) root = json_builder_get_root (b);
  gchar *json = st_json_text (root, TRUE, len);
  gchar *out = g_strconcat (json, "\n", NULL);
  g_free (json);
  *len += 1;
  return out;
}

static void
st_export_clear (StExport *x)
{
  st_out_clear (&x->jsonl);
  st_out_clear (&x->csv);
  g_clear_pointer (&x->profile, st_manifest_profile_free);
}

gboolean
st_manifest_export (StDb *db, StCa *ca, const char *station_id, gint64 batch_id,
                    const char *out_dir, GError **error)
{
  g_autoptr(StDbBatch) batch = st_db_batch_get (db, batch_id, error);
  if (batch == NULL)
    return FALSE;
  if (g_mkdir_with_parents (out_dir, 0700) != 0)
    {
      int e = errno;
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, _("cannot create %s: %s"), out_dir, g_strerror (e));
      return FALSE;
    }
  /* The signature goes first out and last in: a folder with one is complete. */
  g_autofree gchar *p_sig = g_build_filename (out_dir, ST_MANIFEST_SUMS_SIG, NULL);
  g_autofree gchar *p_old_sig = g_build_filename (out_dir, "manifest.json.p7s", NULL);
  g_unlink (p_sig);
  /* a station-manifest/1 signature over a header would not verify: gone */
  g_unlink (p_old_sig);

  StExport x = { 0 };
  g_autoptr(StProfile) profile = batch->profile_text != NULL
    ? st_profile_load_from_data (batch->profile_text, strlen (batch->profile_text), batch->product, NULL)
    : NULL;
  if (profile != NULL)
    x.profile = st_manifest_profile_of (profile);
  x.matter = profile != NULL && profile->matter.enabled;
  gboolean ok = st_out_open (&x.jsonl, out_dir, ST_MANIFEST_UNITS_FILE, error)
                && st_out_open (&x.csv, out_dir, "manifest.csv", error)
                && st_out_write (&x.csv, ST_CSV_HEADER "\r\n", strlen (ST_CSV_HEADER "\r\n"), error)
                && st_export_units (&x, db, batch_id, error)
                && st_out_finish (&x.jsonl, error) && st_out_finish (&x.csv, error);
  if (!ok)
    {
      st_export_clear (&x);
      return FALSE;
    }

  gsize json_len = 0;
  g_autofree gchar *json = st_export_header (db, ca, station_id, batch, profile, &x, &json_len, error);
  /* The chain file: issuing CA first, then up to the root. */
  g_autoptr(GString) chain = g_string_new (NULL);
  for (int i = 0; i < sk_X509_num (ca->chain); i++)
    {
      g_autofree gchar *pem = st_x509_to_pem (sk_X509_value (ca->chain, i));
      g_string_append (chain, pem);
    }
  g_autofree gchar *p_json = g_build_filename (out_dir, "manifest.json", NULL);
  g_autofree gchar *p_chain = g_build_filename (out_dir, "ca-chain.pem", NULL);
  g_autofree gchar *p_sums = g_build_filename (out_dir, ST_MANIFEST_SUMS, NULL);
  g_autofree gchar *json_sha = json != NULL ? st_sha256_hex ((const guint8 *) json, json_len) : NULL;
  g_autofree gchar *chain_sha = st_sha256_hex ((const guint8 *) chain->str, chain->len);
  /* the format sha256sum -c reads: hash, two spaces, name */
  g_autofree gchar *sums = g_strdup_printf ("%s  manifest.json\n%s  " ST_MANIFEST_UNITS_FILE "\n"
                                            "%s  manifest.csv\n%s  ca-chain.pem\n", json_sha,
                                            x.jsonl.sha256, x.csv.sha256, chain_sha);
  g_autoptr(GBytes) sig = json != NULL ? st_manifest_sign (ca, sums, strlen (sums), error) : NULL;
  ok = sig != NULL
       && st_file_write_durable (p_json, json, json_len, 0600, error)
       && st_file_write_durable (p_chain, chain->str, chain->len, 0600, error)
       && st_file_write_durable (p_sums, sums, strlen (sums), 0600, error)
       && st_file_write_durable (p_sig, g_bytes_get_data (sig, NULL), g_bytes_get_size (sig), 0600, error);
  st_export_clear (&x);
  return ok;
}

/* ---- verify ---------------------------------------------------------- */

typedef StManifestCheck StCheck;
#define st_check st_manifest_check

static gboolean
st_check_result (StCheck *c, const char *dir, GError **error)
{
  if (c->failures == 0)
    return TRUE;
  g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED, _("the manifest in %s failed %u check(s)"),
               dir, c->failures);
  return FALSE;
}

static gboolean
st_read_bounded (const char *path, gsize max, gchar **data, gsize *len, GError **error)
{
  GStatBuf st;
  if (g_stat (path, &st) != 0)
    {
      int e = errno;
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND, _("cannot read %s: %s"), path, g_strerror (e));
      return FALSE;
    }
  if ((guint64) st.st_size > max)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "%s is %" G_GUINT64_FORMAT " bytes, more than the %" G_GSIZE_FORMAT " allowed",
                   path, (guint64) st.st_size, max);
      return FALSE;
    }
  if (!g_file_get_contents (path, data, len, error))
    return FALSE;
  if (*len > max)
    {
      g_clear_pointer (data, g_free);
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "%s grew past %" G_GSIZE_FORMAT " bytes", path, max);
      return FALSE;
    }
  return TRUE;
}

/* *@signer: the signer's certificate when the signature verified (one
 * signer only), else NULL. */
static gboolean
st_manifest_verify_signature (StCheck *c, const char *dir, const char *sig_name, const gchar *json,
                              gsize json_len, X509 *root, X509 **signer, GError **error)
{
  *signer = NULL;
  g_autofree gchar *p_sig = g_build_filename (dir, sig_name, NULL);
  g_autofree gchar *sig = NULL;
  gsize sig_len = 0;
  if (!st_read_bounded (p_sig, ST_MANIFEST_MAX_P7S, &sig, &sig_len, error))
    return FALSE;
  const guint8 *p = (const guint8 *) sig;
  g_autoptr(CMS_ContentInfo) cms = d2i_CMS_ContentInfo (NULL, &p, (long) sig_len);
  if (cms == NULL || p != (const guint8 *) sig + sig_len)
    {
      st_error_clear_openssl ();
      st_check (c, FALSE, _("signature: %s is not one DER CMS structure"), sig_name);
      return TRUE;
    }
  g_autoptr(X509_STORE) store = X509_STORE_new ();
  X509_STORE_add_cert (store, root);
  g_autoptr(BIO) content = BIO_new_mem_buf (json, (int) json_len);
  if (CMS_verify (cms, NULL, store, content, NULL, CMS_BINARY | CMS_DETACHED) != 1)
    {
      g_autoptr(GError) why = NULL;
      st_error_set_openssl (&why, ST_ERROR_VERIFY_FAILED, "CMS_verify");
      st_check (c, FALSE, _("signature: does not verify against the trusted root (%s)"), why->message);
      return TRUE;
    }
  g_autoptr(StX509Stack) signers = CMS_get0_signers (cms);
  g_autofree gchar *who = NULL;
  if (signers != NULL && sk_X509_num (signers) > 0)
    who = st_x509_name_text (X509_get_subject_name (sk_X509_value (signers, 0)));
  /* one signer, the one the pin is held against */
  if (signers != NULL && sk_X509_num (signers) == 1)
    {
      *signer = sk_X509_value (signers, 0);
      X509_up_ref (*signer);
    }
  int n_signers = signers != NULL ? sk_X509_num (signers) : 0;
  /* CMS_get0_signers returns borrowed certificates in a new stack. */
  if (signers != NULL)
    {
      sk_X509_free (signers);
      signers = NULL;
    }
  if (n_signers != 1)
    {
      st_check (c, FALSE, _("signature: %d signers; a manifest has one, the station's"), n_signers);
      return TRUE;
    }
  g_autofree gchar *anchor = st_x509_name_text (X509_get_subject_name (root));
  st_check (c, TRUE, _("signature: valid, signed by %s, chains to %s"), who != NULL ? who : "?", anchor);
  return TRUE;
}

static const char *
st_json_get_string (JsonObject *o, const char *name)
{
  JsonNode *n = json_object_get_member (o, name);
  if (n == NULL || JSON_NODE_TYPE (n) != JSON_NODE_VALUE || json_node_get_value_type (n) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (n);
}

static gboolean
st_json_get_int (JsonObject *o, const char *name, gint64 *out)
{
  JsonNode *n = json_object_get_member (o, name);
  if (n == NULL || JSON_NODE_TYPE (n) != JSON_NODE_VALUE || json_node_get_value_type (n) != G_TYPE_INT64)
    return FALSE;
  *out = json_node_get_int (n);
  return TRUE;
}

#define ST_PEM_CERT_BEGIN "-----BEGIN CERTIFICATE-----\n"
#define ST_PEM_CERT_END "-----END CERTIFICATE-----"

/* The DER of a unit's "certificate": one PEM certificate as the export
 * writes it (st_der_to_pem: the BEGIN line, base64 lines, the END line, a
 * final line feed or none), decoded without OpenSSL's PEM reader; NULL when
 * it is anything else. */
static guint8 *
st_pem_cert_der (const char *pem, gsize *len)
{
  gsize n = strlen (pem);
  gsize head = strlen (ST_PEM_CERT_BEGIN), tail = strlen (ST_PEM_CERT_END);
  if (n > 0 && pem[n - 1] == '\n')
    n--;
  if (n < head + tail + 1 || strncmp (pem, ST_PEM_CERT_BEGIN, head) != 0
      || strncmp (pem + n - tail, ST_PEM_CERT_END, tail) != 0 || pem[n - tail - 1] != '\n')
    return NULL;
  const char *body = pem + head, *end = pem + n - tail;
  g_autofree gchar *b64 = g_malloc (end - body + 1);
  gsize k = 0, pad = 0;
  for (const char *p = body; p < end; p++)
    {
      char ch = *p;
      if (ch == '\n')
        continue;
      if (ch == '=')
        pad++;
      else if (pad > 0 || !(g_ascii_isalnum (ch) || ch == '+' || ch == '/'))
        return NULL;
      b64[k++] = ch;
    }
  if (k == 0 || k % 4 != 0 || pad > 2)
    return NULL;
  guint8 *der = g_malloc (k / 4 * 3);
  int w = EVP_DecodeBlock (der, (const unsigned char *) b64, (int) k);
  if (w < 0 || (gsize) w < pad)
    {
      g_free (der);
      return NULL;
    }
  *len = (gsize) w - pad;
  return der;
}

static gchar *
st_x509_serial_hex (X509 *cert)
{
  g_autoptr(BIGNUM) bn = ASN1_INTEGER_to_BN (X509_get0_serialNumber (cert), NULL);
  if (bn == NULL)
    return NULL;
  char *hex = BN_bn2hex (bn);
  gchar *out = g_ascii_strdown (hex, -1);
  OPENSSL_free (hex);
  return out;
}

static gboolean
st_serial_hex_equal (const char *a, const char *b)
{
  if (a == NULL || b == NULL)
    return FALSE;
  while (*a == '0' && a[1] != '\0')
    a++;
  while (*b == '0' && b[1] != '\0')
    b++;
  return g_ascii_strcasecmp (a, b) == 0;
}

/* ---- the units, one at a time (both formats) ---- */

/* A value seen once per unit (serial, public key, live uid): the first 16
 * bytes of its SHA-256 and the unit's index. Duplicates are found by
 * sorting once all units are read: 20 bytes a unit and value. */
typedef struct {
  guint8 h[16];
  guint32 index;
} StSeen;

static void
st_seen_add (GArray *a, const char *value, guint index)
{
  guint8 d[32];
  unsigned int n = 0;
  EVP_Digest (value, strlen (value), d, &n, EVP_sha256 (), NULL);
  StSeen e = { .index = index };
  memcpy (e.h, d, sizeof e.h);
  g_array_append_val (a, e);
}

static int
st_seen_cmp (gconstpointer a, gconstpointer b)
{
  const StSeen *x = a, *y = b;
  int r = memcmp (x->h, y->h, sizeof x->h);
  return r != 0 ? r : (x->index > y->index) - (x->index < y->index);
}

/* Each value given to two units, reported once per pair; the count. */
static guint
st_seen_report (StCheck *c, GArray *a, const char *what)
{
  g_array_sort (a, st_seen_cmp);
  guint dup = 0;
  for (guint i = 1; i < a->len; i++)
    {
      const StSeen *x = &g_array_index (a, StSeen, i - 1), *y = &g_array_index (a, StSeen, i);
      if (memcmp (x->h, y->h, sizeof x->h) != 0)
        continue;
      if (dup++ < 20)
        st_check (c, FALSE, _("unit %u and unit %u: %s"), x->index, y->index, what);
    }
  if (dup > 20)
    st_check (c, FALSE, _("%u more unit(s): %s"), dup - 20, what);
  return dup;
}

typedef struct {
  StCheck *c;
  X509 *root;
  STACK_OF (X509) *chain;
  StManifestProfile *profile;
  GArray *live_uids, *serials, *keys;
  GHashTable *on_crl;  /* the voided and revoked serials: what crl.pem lists */
  /* the chain, checked once (st_verify_issuer_chain); each leaf against
   * the issuing CA (st_verify_leaf) */
  X509 *issuer;
  gboolean issuer_ok;
  gchar *issuer_error;
  gint64 n_done, n_failed, n_active, n_voided, n_unconfirmed, n_disputed, n_revoked;
  guint n_units, bad_units, chain_ok, uid_checked, uid_bad;
  /* Matter (st-manifest-matter.h): the batch's header, the units checked,
   * and each line's member for the station's records (NULL: not compared) */
  StManifestMatterBatch mb;
  guint matter_units;
  GArray *mlines;       /* StMatterLine, one a unit checked */
  StManifestMatterCursor *cursor;
} StUnits;

typedef struct {
  gchar *uid;
  StManifestMatterUnit mu;
} StMatterLine;

static void
st_matter_line_clear (gpointer p)
{
  g_free (((StMatterLine *) p)->uid);
}

static GArray *
st_matter_lines_new (void)
{
  GArray *a = g_array_new (FALSE, TRUE, sizeof (StMatterLine));
  g_array_set_clear_func (a, st_matter_line_clear);
  return a;
}

static void
st_units_init (StUnits *s, StCheck *c, X509 *root, STACK_OF (X509) *chain, StManifestProfile *profile)
{
  *s = (StUnits) { .c = c, .root = root, .chain = chain, .profile = profile };
  s->live_uids = g_array_new (FALSE, FALSE, sizeof (StSeen));
  s->serials = g_array_new (FALSE, FALSE, sizeof (StSeen));
  s->keys = g_array_new (FALSE, FALSE, sizeof (StSeen));
  s->on_crl = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  if (chain == NULL || sk_X509_num (chain) < 1)
    return;
  s->issuer = sk_X509_value (chain, 0);
  g_autoptr(GError) error = NULL;
  s->issuer_ok = st_verify_issuer_chain (chain, root, &error);
  g_autofree gchar *who = st_x509_name_text (X509_get_subject_name (s->issuer));
  if (s->issuer_ok)
    st_check (c, TRUE, _("issuing CA: %s chains to the trusted root (strict), a CA whose path allows "
              "the units' certificates"), who);
  else
    {
      s->issuer_error = g_strdup_printf (_("the issuing CA %s: %s"), who, error->message);
      st_check (c, FALSE, _("issuing CA: %s"), s->issuer_error);
    }
}

static void
st_units_clear (StUnits *s)
{
  g_array_unref (s->live_uids);
  g_array_unref (s->serials);
  g_array_unref (s->keys);
  g_hash_table_unref (s->on_crl);
  g_free (s->issuer_error);
  if (s->mlines != NULL)
    g_array_unref (s->mlines);
}

/* Unit @i (from 1) of the manifest, @u (NULL: not an object): its checks,
 * and its manifest.csv row as the export writes it appended to @csv. */
static void
st_units_check (StUnits *s, guint i, JsonObject *u, GString *csv)
{
  StCheck *c = s->c;
  s->n_units++;
  const char *uid = u != NULL ? st_json_get_string (u, "uid") : NULL;
  const char *state = u != NULL ? st_json_get_string (u, "state") : NULL;
  StManifestMatterUnit *mu = NULL;
  if (s->mlines != NULL)
    {
      StMatterLine ml = { .uid = g_strdup (uid) };
      g_array_append_val (s->mlines, ml);
      mu = &g_array_index (s->mlines, StMatterLine, s->mlines->len - 1).mu;
    }
  StManifestMatterUnit mu_here;
  if (mu == NULL)
    mu = &mu_here;
  if (u == NULL || uid == NULL || state == NULL ||
      (g_strcmp0 (state, "done") != 0 && g_strcmp0 (state, "failed") != 0))
    {
      st_check (c, FALSE, _("unit %u: lacks uid or a state of done/failed"), i);
      s->bad_units++;
      return;
    }
  gboolean done = g_strcmp0 (state, "done") == 0;
  done ? s->n_done++ : s->n_failed++;
  JsonObject *failure = json_object_has_member (u, "failure") &&
                        JSON_NODE_HOLDS_OBJECT (json_object_get_member (u, "failure"))
                          ? json_object_get_object_member (u, "failure") : NULL;
  if (!done && (failure == NULL || st_json_get_string (failure, "step") == NULL))
    {
      st_check (c, FALSE, _("unit %u (uid %s): failed without a failure step"), i, uid);
      s->bad_units++;
    }
  const char *pem = st_json_get_string (u, "certificate");
  const char *cert_serial = st_json_get_string (u, "cert_serial");
  const char *status = st_json_get_string (u, "certificate_status");
  g_autofree gchar *fingerprint = NULL;
  if (pem != NULL)
    {
      gsize der_len = 0;
      g_autofree guint8 *der = st_pem_cert_der (pem, &der_len);
      g_autoptr(X509) cert = der != NULL ? st_x509_from_der_fields (der, der_len) : NULL;
      st_error_clear_openssl ();
      if (cert == NULL)
        {
          st_check (c, FALSE, _("unit %u (uid %s): certificate does not parse"), i, uid);
          s->bad_units++;
          return;
        }
      fingerprint = st_sha256_hex (der, der_len);
      g_autoptr(GError) chain_error = NULL;
      if (!s->issuer_ok || !st_verify_leaf (cert, s->issuer, s->chain, &chain_error))
        {
          st_check (c, FALSE, _("unit %u (uid %s): certificate does not chain to the root: %s"),
                    i, uid, chain_error != NULL ? chain_error->message
                            : s->issuer_error != NULL ? s->issuer_error : "no chain");
          s->bad_units++;
        }
      else
        s->chain_ok++;
      gboolean uid_compared = FALSE;
      if (!st_manifest_check_uid (c, s->profile, i, u, uid, cert, &uid_compared))
        s->uid_bad++;
      else if (uid_compared)
        s->uid_checked++;
      g_autofree gchar *real_serial = st_x509_serial_hex (cert);
      if (!st_serial_hex_equal (real_serial, cert_serial))
        {
          st_check (c, FALSE, _("unit %u (uid %s): cert_serial %s is not the certificate's serial %s"),
                    i, uid, cert_serial, real_serial);
          s->bad_units++;
        }
      if (real_serial != NULL)
        st_seen_add (s->serials, real_serial, i);
      g_autofree gchar *key_hash = st_x509_pubkey_sha256_hex (cert, NULL);
      st_error_clear_openssl ();
      if (key_hash != NULL)
        st_seen_add (s->keys, key_hash, i);
      if (g_strcmp0 (status, "active") == 0)
        s->n_active++;
      else if (g_strcmp0 (status, "voided") == 0)
        s->n_voided++;
      else if (g_strcmp0 (status, "unconfirmed") == 0)
        s->n_unconfirmed++;
      else if (g_strcmp0 (status, "disputed") == 0)
        s->n_disputed++;
      else if (g_strcmp0 (status, "revoked") == 0)
        s->n_revoked++;
      else
        {
          st_check (c, FALSE, _("unit %u (uid %s): certificate_status '%s' is not active, voided, unconfirmed, disputed or revoked"),
                    i, uid, status);
          s->bad_units++;
        }
      /* what a CRL beside the manifest must list */
      if ((g_strcmp0 (status, "voided") == 0 || g_strcmp0 (status, "revoked") == 0) && real_serial != NULL)
        g_hash_table_add (s->on_crl, g_strdup (real_serial));
      /* a revoked certificate's unit was done: its device shipped */
      if (done != (g_strcmp0 (status, "active") == 0 || g_strcmp0 (status, "revoked") == 0))
        {
          st_check (c, FALSE, _("unit %u (uid %s): state %s with certificate %s"), i, uid, state, status);
          s->bad_units++;
        }
      if (g_strcmp0 (status, "voided") != 0 && g_strcmp0 (status, "revoked") != 0)
        st_seen_add (s->live_uids, uid, i);
      if (!st_manifest_matter_unit_check (c, &s->mb, i, uid, u, cert, mu))
        s->bad_units++;
      else if (mu->present)
        s->matter_units++;
    }
  else
    {
      if (done)
        {
          st_check (c, FALSE, _("unit %u (uid %s): done without a certificate"), i, uid);
          s->bad_units++;
        }
      if (!st_manifest_matter_unit_check (c, &s->mb, i, uid, u, NULL, mu))
        s->bad_units++;
      else if (mu->present)
        s->matter_units++;
    }
  const char *issued_at = pem != NULL ? st_json_get_string (u, "issued_at") : NULL;
  st_csv_field (csv, uid, FALSE);
  st_csv_field (csv, st_json_get_string (u, "serial"), FALSE);
  st_csv_field (csv, state, FALSE);
  st_csv_field (csv, failure != NULL ? st_json_get_string (failure, "step") : NULL, FALSE);
  st_csv_field (csv, failure != NULL ? st_json_get_string (failure, "reason") : NULL, FALSE);
  st_csv_field (csv, pem != NULL ? cert_serial : NULL, FALSE);
  st_csv_field (csv, pem != NULL ? status : NULL, FALSE);
  st_csv_field (csv, issued_at, FALSE);
  st_csv_field (csv, fingerprint, TRUE);
}

/* Once every unit is read: duplicates, the totals, the counts of @batch. */
static void
st_units_finish (StUnits *s, JsonObject *batch)
{
  StCheck *c = s->c;
  s->bad_units += st_seen_report (c, s->serials, "the same certificate serial");
  s->bad_units += st_seen_report (c, s->keys, "the same public key certified twice");
  s->bad_units += st_seen_report (c, s->live_uids, "the same uid with two live certificates");
  st_check (c, s->bad_units == 0, _("%u units: %" PRId64 " done, %" PRId64 " failed"),
            s->n_units, s->n_done, s->n_failed);
  st_check (c, s->bad_units == 0, _("%u certificate(s) chain to the trusted root; %" PRId64 " active, %"
            PRId64 " voided, %" PRId64 " unconfirmed, %" PRId64 " disputed"),
            s->chain_ok, s->n_active, s->n_voided, s->n_unconfirmed, s->n_disputed);
  if (s->mb.matter)
    st_check (c, TRUE, _("%u Matter unit(s): each with the onboarding payload without the passcode, its "
              "VID and PID the batch's and its DAC's"), s->matter_units);
  if (s->profile != NULL && s->uid_bad == 0)
    st_check (c, TRUE, _("uids: %u certificate(s) checked, each with the subject and subjectAltName "
              "the profile builds for its unit's uid"), s->uid_checked);
  else if (s->profile != NULL)
    st_check (c, FALSE, _("uids: %u certificate(s) do not match their unit's uid"), s->uid_bad);
  gint64 quantity = -1;
  gint64 c_units = -1, c_done = -1, c_failed = -1, c_active = -1, c_voided = -1, c_unconfirmed = -1;
  gint64 c_disputed = 0;  /* manifests from before disputes have no such count */
  gint64 c_revoked = 0;   /* nor those from before revocation */
  JsonObject *counts = json_object_has_member (batch, "counts") &&
                       JSON_NODE_HOLDS_OBJECT (json_object_get_member (batch, "counts"))
                         ? json_object_get_object_member (batch, "counts") : NULL;
  if (counts != NULL)
    {
      st_json_get_int (counts, "quantity", &quantity);
      st_json_get_int (counts, "units", &c_units);
      st_json_get_int (counts, "done", &c_done);
      st_json_get_int (counts, "failed", &c_failed);
      st_json_get_int (counts, "certificates_active", &c_active);
      st_json_get_int (counts, "certificates_voided", &c_voided);
      st_json_get_int (counts, "certificates_unconfirmed", &c_unconfirmed);
      if (json_object_has_member (counts, "certificates_disputed")
          && !st_json_get_int (counts, "certificates_disputed", &c_disputed))
        c_disputed = -1;
      if (json_object_has_member (counts, "certificates_revoked")
          && !st_json_get_int (counts, "certificates_revoked", &c_revoked))
        c_revoked = -1;
    }
  st_check (c, c_units == s->n_units && c_done == s->n_done && c_failed == s->n_failed &&
                c_active == s->n_active && c_voided == s->n_voided && c_unconfirmed == s->n_unconfirmed &&
                c_disputed == s->n_disputed && c_revoked == s->n_revoked,
            _("the batch counts agree with the units"));
  st_check (c, s->n_active + s->n_unconfirmed + s->n_disputed <= quantity,
            _("live certificates (%" PRId64 ") within the quantity (%" PRId64 ")"),
            s->n_active + s->n_unconfirmed + s->n_disputed, quantity);
}

/* The chain file, its checks; NULL when it does not load. */
static STACK_OF (X509) *
st_manifest_check_chain (StCheck *c, const char *p_chain, X509 *root)
{
  STACK_OF (X509) *chain = st_chain_load_pem (p_chain, NULL);
  st_check (c, chain != NULL && sk_X509_num (chain) >= 1, _("ca-chain.pem: %d certificate(s)"),
            chain != NULL ? sk_X509_num (chain) : 0);
  if (chain != NULL && sk_X509_num (chain) >= 1)
    {
      X509 *last = sk_X509_value (chain, sk_X509_num (chain) - 1);
      st_check (c, X509_cmp (last, root) == 0, _("ca-chain.pem ends with the trusted root"));
    }
  return chain;
}

/* The batch and format of the header @top; FALSE (reported) without a batch. */
static JsonObject *
st_manifest_check_header (StCheck *c, JsonObject *top, const char *format, X509 *signer,
                          const char *signer_pin)
{
  JsonObject *batch = top != NULL && json_object_has_member (top, "batch") &&
                      JSON_NODE_HOLDS_OBJECT (json_object_get_member (top, "batch"))
                        ? json_object_get_object_member (top, "batch") : NULL;
  st_check (c, top != NULL && g_strcmp0 (st_json_get_string (top, "format"), format) == 0,
            _("format is %s"), format);
  /* the signer must be the pinned station signer, whatever the manifest claims */
  st_manifest_check_signer (c, signer, signer_pin, top);
  if (top != NULL)
    st_manifest_check_checkpoint (c, top, signer);
  if (batch == NULL)
    return NULL;
  gint64 batch_id = 0, quantity = -1;
  st_json_get_int (batch, "id", &batch_id);
  JsonObject *counts = json_object_has_member (batch, "counts") &&
                       JSON_NODE_HOLDS_OBJECT (json_object_get_member (batch, "counts"))
                         ? json_object_get_object_member (batch, "counts") : NULL;
  if (counts != NULL)
    st_json_get_int (counts, "quantity", &quantity);
  st_check (c, st_json_get_string (batch, "work_order") != NULL && quantity >= 0,
            _("batch %" PRId64 ": work order %s, quantity %" PRId64), batch_id,
            st_json_get_string (batch, "work_order"), quantity);
  return batch;
}

/* ---- station-manifest/1: one document, read whole ---- */

static gboolean
st_manifest_verify_v1 (const char *dir, X509 *root, const char *signer_pin, StDb *db, GString *report,
                       GError **error)
{
  StCheck c = { .report = report };
  g_autofree gchar *p_json = g_build_filename (dir, "manifest.json", NULL);
  g_autofree gchar *p_csv = g_build_filename (dir, "manifest.csv", NULL);
  g_autofree gchar *p_chain = g_build_filename (dir, "ca-chain.pem", NULL);
  g_autofree gchar *json = NULL;
  gsize json_len = 0;

  if (!st_read_bounded (p_json, ST_MANIFEST_MAX_JSON, &json, &json_len, error))
    {
      g_prefix_error (error, "a " ST_MANIFEST_FORMAT " manifest (no " ST_MANIFEST_SUMS_SIG "): ");
      if (g_error_matches (*error, ST_ERROR, ST_ERROR_INVALID_DATA))
        g_prefix_error (error, "exporting the batch again gives the streaming format, "
                        ST_MANIFEST_FORMAT_2 ", which has no such bound: ");
      return FALSE;
    }
  g_autoptr(X509) signer = NULL;
  if (!st_manifest_verify_signature (&c, dir, "manifest.json.p7s", json, json_len, root, &signer, error))
    return FALSE;

  /* The chain of the folder: untrusted intermediates. */
  g_autoptr(StX509Stack) chain = st_manifest_check_chain (&c, p_chain, root);

  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) parse_error = NULL;
  if (!json_parser_load_from_data (parser, json, (gssize) json_len, &parse_error))
    {
      st_check (&c, FALSE, _("manifest.json does not parse: %s"), parse_error->message);
      return st_check_result (&c, dir, error);
    }
  JsonNode *rootnode = json_parser_get_root (parser);
  JsonObject *top = JSON_NODE_HOLDS_OBJECT (rootnode) ? json_node_get_object (rootnode) : NULL;
  JsonArray *units = top != NULL && json_object_has_member (top, "units") &&
                     JSON_NODE_HOLDS_ARRAY (json_object_get_member (top, "units"))
                       ? json_object_get_array_member (top, "units") : NULL;
  JsonObject *batch = st_manifest_check_header (&c, top, ST_MANIFEST_FORMAT, signer, signer_pin);
  if (batch == NULL || units == NULL)
    {
      st_check (&c, FALSE, _("manifest.json lacks its batch object or its units array"));
      return st_check_result (&c, dir, error);
    }
  g_autoptr(GString) expect_csv = g_string_new (ST_CSV_HEADER "\r\n");
  g_autoptr(StManifestProfile) profile = st_manifest_profile_find (&c, batch, db);
  StUnits s;
  st_units_init (&s, &c, root, chain, profile);
  for (guint i = 0; i < json_array_get_length (units); i++)
    {
      JsonNode *node = json_array_get_element (units, i);
      st_units_check (&s, i + 1, JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL,
                      expect_csv);
    }
  st_units_finish (&s, batch);

  g_autofree gchar *csv = NULL;
  gsize csv_len = 0;
  g_autoptr(GError) csv_error = NULL;
  if (!st_read_bounded (p_csv, ST_MANIFEST_MAX_JSON, &csv, &csv_len, &csv_error))
    st_check (&c, FALSE, _("manifest.csv: %s"), csv_error->message);
  else
    st_check (&c, csv_len == expect_csv->len && memcmp (csv, expect_csv->str, csv_len) == 0,
              _("manifest.csv has the same %u units as manifest.json"), s.n_units);

  g_autofree gchar *p_crl = g_build_filename (dir, "crl.pem", NULL);
  st_crl_check_file (&c, p_crl, chain, s.on_crl);
  st_units_clear (&s);
  return st_check_result (&c, dir, error);
}

/* ---- station-manifest/2: a signed SHA256SUMS, files read a line at a time ---- */

/* A file read once, line by line, hashed as it is read. */
typedef struct {
  FILE *f;
  EVP_MD_CTX *md;
  GString *line;       /* the current line, its '\n' included */
  guint64 lines;
  gboolean too_long;   /* the current line is longer than ST_MANIFEST_MAX_LINE (cut) */
} StLines;

static gboolean
st_lines_open (StLines *r, const char *path, GError **error)
{
  *r = (StLines) { 0 };
  /* O_NONBLOCK: a FIFO in its place does not hang the open */
  int fd = g_open (path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW, 0);
  GStatBuf st;
  if (fd < 0 || fstat (fd, &st) != 0 || !S_ISREG (st.st_mode))
    {
      int e = errno;
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND, _("cannot read %s: %s"), path,
                   fd < 0 ? g_strerror (e) : "not a regular file");
      if (fd >= 0)
        close (fd);
      return FALSE;
    }
  r->f = fdopen (fd, "rb");
  r->md = EVP_MD_CTX_new ();
  r->line = g_string_sized_new (4096);
  if (r->f == NULL || r->md == NULL || EVP_DigestInit_ex (r->md, EVP_sha256 (), NULL) != 1)
    {
      if (r->f == NULL)
        close (fd);
      g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL, _("cannot read %s"), path);
      return FALSE;
    }
  return TRUE;
}

/* The next line into r->line; FALSE at the end of the file (a last line
 * without its '\n' is a line). Every byte goes into the hash. */
static gboolean
st_lines_next (StLines *r)
{
  g_string_truncate (r->line, 0);
  r->too_long = FALSE;
  guint8 buf[4096];
  gsize n = 0;
  gboolean any = FALSE;
  int ch;
  while ((ch = getc_unlocked (r->f)) != EOF)
    {
      any = TRUE;
      buf[n++] = (guint8) ch;
      if (n == sizeof buf || ch == '\n')
        {
          EVP_DigestUpdate (r->md, buf, n);
          if (r->line->len + n <= ST_MANIFEST_MAX_LINE)
            g_string_append_len (r->line, (const char *) buf, (gssize) n);
          else
            r->too_long = TRUE;
          n = 0;
        }
      if (ch == '\n')
        break;
    }
  if (n > 0)
    {
      EVP_DigestUpdate (r->md, buf, n);
      if (r->line->len + n <= ST_MANIFEST_MAX_LINE)
        g_string_append_len (r->line, (const char *) buf, (gssize) n);
      else
        r->too_long = TRUE;
    }
  if (any)
    r->lines++;
  return any;
}

/* Reads what is left (unhashed lines), returns the hex SHA-256 of the file. */
static gchar *
st_lines_finish (StLines *r)
{
  while (st_lines_next (r))
    ;
  guint8 d[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (ferror (r->f) || EVP_DigestFinal_ex (r->md, d, &n) != 1)
    return NULL;
  return st_hex_encode (d, n);
}

static void
st_lines_clear (StLines *r)
{
  if (r->f != NULL)
    fclose (r->f);
  EVP_MD_CTX_free (r->md);
  if (r->line != NULL)
    g_string_free (r->line, TRUE);
  *r = (StLines) { 0 };
}

/* The SHA-256 (hex) of the file @path, read once; NULL with @error. */
static gchar *
st_file_sha256 (const char *path, GError **error)
{
  StLines r;
  if (!st_lines_open (&r, path, error))
    {
      st_lines_clear (&r);
      return NULL;
    }
  gchar *hex = st_lines_finish (&r);
  st_lines_clear (&r);
  if (hex == NULL)
    g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL, _("cannot read %s"), path);
  return hex;
}

/* The files SHA256SUMS lists, in that order. */
static const char *const st_sums_files[] = {
  "manifest.json", ST_MANIFEST_UNITS_FILE, "manifest.csv", "ca-chain.pem",
};

/* SHA256SUMS: exactly the lines "HEX  NAME\n" of st_sums_files, in order;
 * their hashes into @hashes. */
static gboolean
st_sums_parse (StCheck *c, const char *sums, gsize len, gchar *hashes[G_N_ELEMENTS (st_sums_files)])
{
  if (memchr (sums, '\0', len) != NULL)
    {
      st_check (c, FALSE, ST_MANIFEST_SUMS ": holds a NUL byte");
      return FALSE;
    }
  g_auto(GStrv) lines = g_strsplit (sums, "\n", -1);
  guint n = g_strv_length (lines);
  if (n != G_N_ELEMENTS (st_sums_files) + 1 || *lines[n - 1] != '\0')
    {
      st_check (c, FALSE, ST_MANIFEST_SUMS ": %u line(s); it lists exactly manifest.json, "
                ST_MANIFEST_UNITS_FILE ", manifest.csv and ca-chain.pem, one per line", n - 1);
      return FALSE;
    }
  for (guint i = 0; i < G_N_ELEMENTS (st_sums_files); i++)
    {
      const char *l = lines[i];
      gsize ll = strlen (l);
      if (ll != 64 + 2 + strlen (st_sums_files[i]) || strspn (l, "0123456789abcdef") != 64
          || l[64] != ' ' || l[65] != ' ' || strcmp (l + 66, st_sums_files[i]) != 0)
        {
          st_check (c, FALSE, ST_MANIFEST_SUMS ": line %u is not \"SHA-256  %s\"", i + 1, st_sums_files[i]);
          return FALSE;
        }
      hashes[i] = g_strndup (l, 64);
    }
  return TRUE;
}

static void
st_check_hash (StCheck *c, const char *name, const char *have, const char *want)
{
  if (have == NULL)
    return;
  if (g_strcmp0 (have, want) == 0)
    st_check (c, TRUE, "%s: its SHA-256 is the one " ST_MANIFEST_SUMS " lists", name);
  else
    st_check (c, FALSE, "%s: its SHA-256 is %s, " ST_MANIFEST_SUMS " lists %s: the file was changed "
              "after the export (or SHA256SUMS was)", name, have, want);
}

/* ---- the units of units.jsonl, checked on every core ---- */

/* Lines of units.jsonl go to the workers in chunks (at most
 * ST_CHUNK_LINES lines or ST_CHUNK_BYTES bytes, and ST_CHUNKS_PER_THREAD
 * chunks a worker in flight: the memory is bounded whatever the batch);
 * each chunk is checked into its own report and counts, which are taken in
 * the order of the lines, so the report and the counts are those of one
 * thread reading the lines in order. */
#define ST_CHUNK_LINES 256
#define ST_CHUNK_BYTES (1024 * 1024)
#define ST_CHUNKS_PER_THREAD 2

typedef struct {
  guint first;          /* the line number of its first line */
  GPtrArray *lines;     /* GString, the line as read ('\n' included); NULL when too long */
  gsize bytes;
  StCheck check;        /* its report */
  StUnits units;        /* its counts and values, the shared parts borrowed */
  GArray *report_end;   /* gsize: the length of check.report after each line */
  GPtrArray *rows;      /* GString: the manifest.csv row each line gives (empty: none) */
  GMutex lock;
  GCond cond;
  gboolean done;
} StChunk;

static void
st_gstring_free_all (gpointer p)
{
  if (p != NULL)
    g_string_free (p, TRUE);
}

static StChunk *
st_chunk_new (const StUnits *s, guint first)
{
  StChunk *k = g_new0 (StChunk, 1);
  k->first = first;
  k->lines = g_ptr_array_new_with_free_func (st_gstring_free_all);
  k->check.report = g_string_new (NULL);
  k->units = (StUnits) { .c = &k->check, .root = s->root, .chain = s->chain, .profile = s->profile,
                         .issuer = s->issuer, .issuer_ok = s->issuer_ok, .issuer_error = s->issuer_error,
                         .mb = s->mb };
  if (s->cursor != NULL)
    k->units.mlines = st_matter_lines_new ();
  k->units.live_uids = g_array_new (FALSE, FALSE, sizeof (StSeen));
  k->units.serials = g_array_new (FALSE, FALSE, sizeof (StSeen));
  k->units.keys = g_array_new (FALSE, FALSE, sizeof (StSeen));
  k->units.on_crl = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  k->report_end = g_array_new (FALSE, FALSE, sizeof (gsize));
  k->rows = g_ptr_array_new_with_free_func (st_gstring_free_all);
  g_mutex_init (&k->lock);
  g_cond_init (&k->cond);
  return k;
}

static void
st_chunk_free (StChunk *k)
{
  g_ptr_array_unref (k->lines);
  g_string_free (k->check.report, TRUE);
  g_array_unref (k->units.live_uids);
  g_array_unref (k->units.serials);
  g_array_unref (k->units.keys);
  g_hash_table_unref (k->units.on_crl);
  if (k->units.mlines != NULL)
    g_array_unref (k->units.mlines);
  g_array_unref (k->report_end);
  g_ptr_array_unref (k->rows);
  g_mutex_clear (&k->lock);
  g_cond_clear (&k->cond);
  g_free (k);
}

/* A worker: each line of @data (an StChunk) as one thread would check it. */
static void
st_chunk_run (gpointer data, gpointer user_data)
{
  StChunk *k = data;
  g_autoptr(JsonParser) lp = json_parser_new ();
  for (guint j = 0; j < k->lines->len; j++)
    {
      guint i = k->first + j;
      GString *line = g_ptr_array_index (k->lines, j);
      GString *row = g_string_new (NULL);
      JsonObject *u = NULL;
      g_autoptr(GError) line_error = NULL;
      if (line == NULL)
        st_check (&k->check, FALSE, ST_MANIFEST_UNITS_FILE ": line %u is longer than %d bytes", i,
                  ST_MANIFEST_MAX_LINE);
      else if (line->str[line->len - 1] != '\n' || strchr (line->str, '\r') != NULL)
        st_check (&k->check, FALSE, ST_MANIFEST_UNITS_FILE ": line %u does not end with a line feed "
                  "alone", i);
      else if (!json_parser_load_from_data (lp, line->str, (gssize) line->len, &line_error))
        st_check (&k->check, FALSE, ST_MANIFEST_UNITS_FILE ": line %u does not parse: %s", i,
                  line_error->message);
      else if (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (lp)))
        u = json_node_get_object (json_parser_get_root (lp));
      /* a line that is no unit is reported there, and counted */
      st_units_check (&k->units, i, u, row);
      g_ptr_array_add (k->rows, row);
      g_array_append_val (k->report_end, k->check.report->len);
    }
  /* the lines are not needed any more: free them in the worker */
  g_ptr_array_set_size (k->lines, 0);
  /* nothing of this chunk stays in the thread's OpenSSL state (its error
   * queue): the thread may outlive the verification */
  st_error_clear_openssl ();
  OPENSSL_thread_stop ();
  g_mutex_lock (&k->lock);
  k->done = TRUE;
  g_cond_signal (&k->cond);
  g_mutex_unlock (&k->lock);
}

/* The chunk @k, done, into @s: its report line by line, each unit's row
 * compared with the next line of manifest.csv (@jc, NULL: not compared),
 * its counts and values. */
static void
st_chunk_take (StUnits *s, StChunk *k, StLines *jc, guint *csv_bad)
{
  g_mutex_lock (&k->lock);
  while (!k->done)
    g_cond_wait (&k->cond, &k->lock);
  g_mutex_unlock (&k->lock);
  StCheck *c = s->c;
  gsize at = 0;
  for (guint j = 0; j < k->rows->len; j++)
    {
      guint i = k->first + j;
      gsize end = g_array_index (k->report_end, gsize, j);
      g_string_append_len (c->report, k->check.report->str + at, (gssize) (end - at));
      at = end;
      GString *row = g_ptr_array_index (k->rows, j);
      if (jc != NULL)
        {
          gboolean more = st_lines_next (jc);
          /* a unit already reported (row empty) keeps the rows in step */
          if (row->len > 0 && (!more || jc->too_long || strcmp (jc->line->str, row->str) != 0))
            {
              if ((*csv_bad)++ < 20)
                st_check (c, FALSE, "manifest.csv: line %u is not the row of unit %u of "
                          ST_MANIFEST_UNITS_FILE "%s", (guint) jc->lines + (more ? 0 : 1), i,
                          more ? "" : " (the file ends)");
            }
        }
    }
  c->failures += k->check.failures;
  StUnits *l = &k->units;
  /* the station's records, in the order of the units (this thread alone
   * reads the database) */
  for (guint j = 0; l->mlines != NULL && j < l->mlines->len; j++)
    {
      const StMatterLine *ml = &g_array_index (l->mlines, StMatterLine, j);
      st_manifest_matter_cursor_next (s->cursor, c, k->first + j, ml->uid, &ml->mu);
    }
  s->matter_units += l->matter_units;
  s->n_done += l->n_done;
  s->n_failed += l->n_failed;
  s->n_active += l->n_active;
  s->n_voided += l->n_voided;
  s->n_unconfirmed += l->n_unconfirmed;
  s->n_disputed += l->n_disputed;
  s->n_revoked += l->n_revoked;
  s->n_units += l->n_units;
  s->bad_units += l->bad_units;
  s->chain_ok += l->chain_ok;
  s->uid_checked += l->uid_checked;
  s->uid_bad += l->uid_bad;
  g_array_append_vals (s->live_uids, l->live_uids->data, l->live_uids->len);
  g_array_append_vals (s->serials, l->serials->data, l->serials->len);
  g_array_append_vals (s->keys, l->keys->data, l->keys->len);
  GHashTableIter it;
  gpointer key;
  g_hash_table_iter_init (&it, l->on_crl);
  while (g_hash_table_iter_next (&it, &key, NULL))
    {
      g_hash_table_iter_steal (&it);
      g_hash_table_add (s->on_crl, key);
    }
}

/* Every line of @ju, checked by a pool of workers (one a core), taken in
 * order; the rows compared with @jc (its header already read; NULL: not). */
static void
st_units_run (StUnits *s, StLines *ju, StLines *jc, guint *csv_bad)
{
  guint threads = CLAMP (g_get_num_processors (), 1, 16);
  g_autoptr(GError) pool_error = NULL;
  /* its own threads, ended when the units are read */
  GThreadPool *pool = g_thread_pool_new (st_chunk_run, NULL, (gint) threads, TRUE, &pool_error);
  GQueue flight = G_QUEUE_INIT;
  StChunk *k = NULL;
  gboolean more = TRUE;
  while (more)
    {
      more = st_lines_next (ju);
      if (more)
        {
          if (k == NULL)
            k = st_chunk_new (s, (guint) ju->lines);
          g_ptr_array_add (k->lines, ju->too_long ? NULL : g_string_new_len (ju->line->str, (gssize) ju->line->len));
          k->bytes += ju->line->len;
        }
      if (k != NULL && (!more || k->lines->len >= ST_CHUNK_LINES || k->bytes >= ST_CHUNK_BYTES))
        {
          /* without a pool (no thread could start), this thread checks it */
          if (pool == NULL || !g_thread_pool_push (pool, k, NULL))
            st_chunk_run (k, NULL);
          g_queue_push_tail (&flight, k);
          k = NULL;
        }
      while (g_queue_get_length (&flight) >= threads * ST_CHUNKS_PER_THREAD
             || (!more && !g_queue_is_empty (&flight)))
        {
          StChunk *head = g_queue_pop_head (&flight);
          st_chunk_take (s, head, jc, csv_bad);
          st_chunk_free (head);
        }
    }
  if (pool != NULL)
    g_thread_pool_free (pool, FALSE, TRUE);
}

/* SHA256SUMS of @dir read, its signature checked (the signer in *@signer)
 * and parsed into @want (station-manifest/2's first steps, for verify and
 * for the export's check of what it wrote): FALSE with @error when it
 * cannot be read or its signature cannot be checked; else TRUE, *@parsed
 * FALSE when it does not parse (the report says why). */
static gboolean
st_manifest_signed_sums (StCheck *c, const char *dir, X509 *root, X509 **signer, gchar **want,
                         gboolean *parsed, GError **error)
{
  g_autofree gchar *p_sums = g_build_filename (dir, ST_MANIFEST_SUMS, NULL);
  g_autofree gchar *sums = NULL;
  gsize sums_len = 0;
  if (!st_read_bounded (p_sums, ST_MANIFEST_MAX_SUMS, &sums, &sums_len, error))
    return FALSE;
  if (!st_manifest_verify_signature (c, dir, ST_MANIFEST_SUMS_SIG, sums, sums_len, root, signer, error))
    return FALSE;
  *parsed = st_sums_parse (c, sums, sums_len, want);
  return TRUE;
}

static gboolean
st_manifest_verify_v2 (const char *dir, X509 *root, const char *signer_pin, StDb *db, GString *report,
                       GError **error)
{
  StCheck c = { .report = report };
  g_autofree gchar *p_json = g_build_filename (dir, "manifest.json", NULL);
  g_autofree gchar *p_units = g_build_filename (dir, ST_MANIFEST_UNITS_FILE, NULL);
  g_autofree gchar *p_csv = g_build_filename (dir, "manifest.csv", NULL);
  g_autofree gchar *p_chain = g_build_filename (dir, "ca-chain.pem", NULL);
  g_autoptr(X509) signer = NULL;
  gchar *want[G_N_ELEMENTS (st_sums_files)] = { NULL };
  gboolean parsed = FALSE;
  if (!st_manifest_signed_sums (&c, dir, root, &signer, want, &parsed, error))
    return FALSE;
  if (!parsed)
    return st_check_result (&c, dir, error);

  /* the header: small, read whole */
  g_autofree gchar *json = NULL;
  gsize json_len = 0;
  g_autoptr(GError) read_error = NULL;
  if (!st_read_bounded (p_json, ST_MANIFEST_MAX_HEADER, &json, &json_len, &read_error))
    {
      st_check (&c, FALSE, _("manifest.json: %s"), read_error->message);
      for (guint i = 0; i < G_N_ELEMENTS (want); i++)
        g_free (want[i]);
      return st_check_result (&c, dir, error);
    }
  g_autofree gchar *json_sha = st_sha256_hex ((const guint8 *) json, json_len);
  st_check_hash (&c, "manifest.json", json_sha, want[0]);
  g_autofree gchar *chain_sha = st_file_sha256 (p_chain, &read_error);
  if (chain_sha == NULL)
    st_check (&c, FALSE, _("ca-chain.pem: %s"), read_error->message);
  g_clear_error (&read_error);
  st_check_hash (&c, "ca-chain.pem", chain_sha, want[3]);
  g_autoptr(StX509Stack) chain = st_manifest_check_chain (&c, p_chain, root);

  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) parse_error = NULL;
  JsonObject *top = NULL;
  if (!json_parser_load_from_data (parser, json, (gssize) json_len, &parse_error))
    st_check (&c, FALSE, _("manifest.json does not parse: %s"), parse_error->message);
  else if (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    top = json_node_get_object (json_parser_get_root (parser));
  JsonObject *batch = st_manifest_check_header (&c, top, ST_MANIFEST_FORMAT_2, signer, signer_pin);
  JsonObject *units_file = top != NULL && json_object_has_member (top, "units_file")
                           && JSON_NODE_HOLDS_OBJECT (json_object_get_member (top, "units_file"))
                             ? json_object_get_object_member (top, "units_file") : NULL;
  gint64 claimed_lines = -1;
  if (units_file != NULL)
    st_json_get_int (units_file, "lines", &claimed_lines);
  if (batch == NULL || units_file == NULL
      || g_strcmp0 (st_json_get_string (units_file, "name"), ST_MANIFEST_UNITS_FILE) != 0
      || g_strcmp0 (st_json_get_string (units_file, "sha256"), want[1]) != 0 || claimed_lines < 0)
    {
      st_check (&c, FALSE, "manifest.json lacks its batch object, or its units_file does not name "
                ST_MANIFEST_UNITS_FILE " with its line count and the SHA-256 " ST_MANIFEST_SUMS " lists");
      for (guint i = 0; i < G_N_ELEMENTS (want); i++)
        g_free (want[i]);
      return st_check_result (&c, dir, error);
    }

  /* units.jsonl and manifest.csv side by side, one line of each at a time */
  g_autoptr(StManifestProfile) profile = st_manifest_profile_find (&c, batch, db);
  StUnits s;
  st_units_init (&s, &c, root, chain, profile);
  st_manifest_matter_batch_read (&c, batch, &s.mb);
  s.cursor = st_manifest_matter_cursor_new (&c, db, batch, &s.mb);
  StLines ju, jc;
  g_autoptr(GError) units_error = NULL, csv_error = NULL;
  gboolean have_units = st_lines_open (&ju, p_units, &units_error);
  gboolean have_csv = st_lines_open (&jc, p_csv, &csv_error);
  if (!have_units)
    st_check (&c, FALSE, ST_MANIFEST_UNITS_FILE ": %s", units_error->message);
  if (!have_csv)
    st_check (&c, FALSE, _("manifest.csv: %s"), csv_error->message);
  g_autofree gchar *units_sha = NULL, *csv_sha = NULL;
  if (have_units)
    {
      gboolean csv_header = have_csv && st_lines_next (&jc)
                            && strcmp (jc.line->str, ST_CSV_HEADER "\r\n") == 0;
      if (have_csv && !csv_header)
        st_check (&c, FALSE, "manifest.csv: its first line is not the header " ST_CSV_HEADER);
      guint csv_bad = 0;
      st_units_run (&s, &ju, have_csv && csv_header ? &jc : NULL, &csv_bad);
      st_manifest_matter_cursor_finish (g_steal_pointer (&s.cursor), &c);
      if (have_csv && csv_header && st_lines_next (&jc))
        {
          st_check (&c, FALSE, "manifest.csv: line %u and on: rows without their unit in "
                    ST_MANIFEST_UNITS_FILE, (guint) jc.lines);
          csv_bad++;
        }
      if (have_csv && csv_header && csv_bad == 0)
        st_check (&c, TRUE, "manifest.csv has the same %u units as " ST_MANIFEST_UNITS_FILE ", in order",
                  s.n_units);
      else if (csv_bad > 20)
        st_check (&c, FALSE, "manifest.csv: %u row(s) in all differ from " ST_MANIFEST_UNITS_FILE, csv_bad);
      st_check (&c, (gint64) ju.lines == claimed_lines, ST_MANIFEST_UNITS_FILE ": %" G_GUINT64_FORMAT
                " line(s), manifest.json says %" G_GINT64_FORMAT, ju.lines, claimed_lines);
      units_sha = st_lines_finish (&ju);
      if (have_csv)
        csv_sha = st_lines_finish (&jc);
    }
  else if (have_csv)
    csv_sha = st_lines_finish (&jc);
  st_check_hash (&c, ST_MANIFEST_UNITS_FILE, units_sha, want[1]);
  st_check_hash (&c, "manifest.csv", csv_sha, want[2]);
  if (have_units)
    st_units_finish (&s, batch);
  st_lines_clear (&ju);
  st_lines_clear (&jc);

  g_autofree gchar *p_crl = g_build_filename (dir, "crl.pem", NULL);
  st_crl_check_file (&c, p_crl, chain, s.on_crl);
  /* (NULL after the units were read) */
  st_manifest_matter_cursor_finish (g_steal_pointer (&s.cursor), &c);
  st_units_clear (&s);
  for (guint i = 0; i < G_N_ELEMENTS (want); i++)
    g_free (want[i]);
  return st_check_result (&c, dir, error);
}

/* The lines and SHA-256 of the file @path, read once. */
static gchar *
st_file_lines_sha256 (const char *path, guint64 *lines, gboolean *last_newline, GError **error)
{
  StLines r;
  if (!st_lines_open (&r, path, error))
    {
      st_lines_clear (&r);
      return NULL;
    }
  *last_newline = TRUE;
  while (st_lines_next (&r))
    *last_newline = r.line->len > 0 && r.line->str[r.line->len - 1] == '\n';
  *lines = r.lines;
  gchar *hex = st_lines_finish (&r);
  st_lines_clear (&r);
  if (hex == NULL)
    g_set_error (error, ST_ERROR, ST_ERROR_READ, _("cannot read %s"), path);
  return hex;
}

gboolean
st_manifest_check_written (const char *dir, X509 *root, const char *signer_pin, GString *report,
                           GError **error)
{
  StCheck c = { .report = report };
  g_autofree gchar *p_json = g_build_filename (dir, "manifest.json", NULL);
  g_autofree gchar *p_units = g_build_filename (dir, ST_MANIFEST_UNITS_FILE, NULL);
  g_autofree gchar *p_csv = g_build_filename (dir, "manifest.csv", NULL);
  g_autofree gchar *p_chain = g_build_filename (dir, "ca-chain.pem", NULL);
  /* the signature and its signer, as verify checks them */
  g_autoptr(X509) signer = NULL;
  gchar *want[G_N_ELEMENTS (st_sums_files)] = { NULL };
  gboolean parsed = FALSE;
  if (!st_manifest_signed_sums (&c, dir, root, &signer, want, &parsed, error))
    return FALSE;
  if (!parsed)
    return st_check_result (&c, dir, error);
  /* every file against SHA256SUMS, the unit files' lines counted */
  g_autofree gchar *json = NULL;
  gsize json_len = 0;
  g_autoptr(GError) read_error = NULL;
  if (!st_read_bounded (p_json, ST_MANIFEST_MAX_HEADER, &json, &json_len, &read_error))
    st_check (&c, FALSE, _("manifest.json: %s"), read_error->message);
  g_clear_error (&read_error);
  g_autofree gchar *json_sha = json != NULL ? st_sha256_hex ((const guint8 *) json, json_len) : NULL;
  st_check_hash (&c, "manifest.json", json_sha, want[0]);
  guint64 unit_lines = 0, csv_lines = 0;
  gboolean unit_nl = FALSE, csv_nl = FALSE;
  g_autofree gchar *units_sha = st_file_lines_sha256 (p_units, &unit_lines, &unit_nl, &read_error);
  if (units_sha == NULL)
    st_check (&c, FALSE, ST_MANIFEST_UNITS_FILE ": %s", read_error->message);
  g_clear_error (&read_error);
  st_check_hash (&c, ST_MANIFEST_UNITS_FILE, units_sha, want[1]);
  g_autofree gchar *csv_sha = st_file_lines_sha256 (p_csv, &csv_lines, &csv_nl, &read_error);
  if (csv_sha == NULL)
    st_check (&c, FALSE, _("manifest.csv: %s"), read_error->message);
  g_clear_error (&read_error);
  st_check_hash (&c, "manifest.csv", csv_sha, want[2]);
  g_autofree gchar *chain_sha = st_file_sha256 (p_chain, &read_error);
  if (chain_sha == NULL)
    st_check (&c, FALSE, _("ca-chain.pem: %s"), read_error->message);
  g_clear_error (&read_error);
  st_check_hash (&c, "ca-chain.pem", chain_sha, want[3]);
  for (guint i = 0; i < G_N_ELEMENTS (want); i++)
    g_free (want[i]);
  g_autoptr(StX509Stack) chain = st_manifest_check_chain (&c, p_chain, root);
  if (chain != NULL && sk_X509_num (chain) >= 1)
    {
      g_autoptr(GError) chain_error = NULL;
      st_check (&c, st_verify_issuer_chain (chain, root, &chain_error), _("issuing CA: %s"),
                chain_error != NULL ? chain_error->message : "chains to the trusted root (strict)");
    }
  /* the header: format, signer pin, checkpoint, batch, and the line count
   * and hash of units.jsonl, against the files as read */
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonObject *top = NULL;
  g_autoptr(GError) parse_error = NULL;
  if (json != NULL && !json_parser_load_from_data (parser, json, (gssize) json_len, &parse_error))
    st_check (&c, FALSE, _("manifest.json does not parse: %s"), parse_error->message);
  else if (json != NULL && JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    top = json_node_get_object (json_parser_get_root (parser));
  JsonObject *batch = st_manifest_check_header (&c, top, ST_MANIFEST_FORMAT_2, signer, signer_pin);
  JsonObject *units_file = top != NULL && json_object_has_member (top, "units_file")
                           && JSON_NODE_HOLDS_OBJECT (json_object_get_member (top, "units_file"))
                             ? json_object_get_object_member (top, "units_file") : NULL;
  JsonObject *counts = batch != NULL && json_object_has_member (batch, "counts")
                       && JSON_NODE_HOLDS_OBJECT (json_object_get_member (batch, "counts"))
                         ? json_object_get_object_member (batch, "counts") : NULL;
  gint64 claimed_lines = -1, claimed_units = -1, claimed_bytes = -1;
  if (units_file != NULL)
    {
      st_json_get_int (units_file, "lines", &claimed_lines);
      st_json_get_int (units_file, "bytes", &claimed_bytes);
    }
  if (counts != NULL)
    st_json_get_int (counts, "units", &claimed_units);
  GStatBuf st;
  gint64 units_bytes = g_stat (p_units, &st) == 0 ? (gint64) st.st_size : -1;
  st_check (&c, units_file != NULL && units_sha != NULL
                && g_strcmp0 (st_json_get_string (units_file, "name"), ST_MANIFEST_UNITS_FILE) == 0
                && g_strcmp0 (st_json_get_string (units_file, "sha256"), units_sha) == 0
                && claimed_lines == (gint64) unit_lines && claimed_bytes == units_bytes
                && claimed_units == (gint64) unit_lines && (unit_lines == 0 || unit_nl),
            ST_MANIFEST_UNITS_FILE ": %" G_GUINT64_FORMAT " line(s) of %" G_GINT64_FORMAT " bytes, each ended; "
            "manifest.json says %" G_GINT64_FORMAT " line(s) of %" G_GINT64_FORMAT " bytes, %" G_GINT64_FORMAT
            " unit(s), and the same SHA-256", unit_lines, units_bytes, claimed_lines, claimed_bytes, claimed_units);
  st_check (&c, csv_sha != NULL && csv_lines == unit_lines + 1 && csv_nl,
            _("manifest.csv: %" PRIu64 " line(s): the header and one row a unit"), csv_lines);
  return st_check_result (&c, dir, error);
}

gboolean
st_manifest_verify (const char *dir, X509 *root, const char *signer_pin, StDb *db, GString *report,
                    GError **error)
{
  /* the format is the signature's: SHA256SUMS.p7s is station-manifest/2's */
  g_autofree gchar *p_sums_sig = g_build_filename (dir, ST_MANIFEST_SUMS_SIG, NULL);
  g_autofree gchar *p_old_sig = g_build_filename (dir, "manifest.json.p7s", NULL);
  if (g_file_test (p_sums_sig, G_FILE_TEST_EXISTS) || !g_file_test (p_old_sig, G_FILE_TEST_EXISTS))
    return st_manifest_verify_v2 (dir, root, signer_pin, db, report, error);
  return st_manifest_verify_v1 (dir, root, signer_pin, db, report, error);
}
