/* The cloud export: which units, the table of targets, certs/, the names. */
#include "st-cloud-private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <glib/gstdio.h>
#include <openssl/pem.h>
#include <string.h>
#include <unistd.h>

#include "st-error.h"
#include "st-ossl.h"
#include "st-text.h"
#include "st-util.h"

const char *const st_cloud_folders[] = { "aws", "azure", "certs", "jws", NULL };

static gboolean st_cloud_certs_begin (StCloudExport *x, const char *dir, GError **error);
static gboolean st_cloud_certs_unit (StCloudExport *x, const StCloudUnit *u, GError **error);
static gboolean st_cloud_certs_end (StCloudExport *x, GError **error);
static void st_cloud_certs_cleanup (StCloudExport *x);

static const StCloudTarget st_cloud_certs_target = {
  "certs", "per-device PEM files", st_cloud_certs_begin, st_cloud_certs_unit, st_cloud_certs_end,
  st_cloud_certs_cleanup,
};

/* The one list of targets, in the report's order: a new one is a row here
 * and a file of its own (and ST_CLOUD_N_TARGETS). */
static const StCloudTarget *const st_cloud_targets[ST_CLOUD_N_TARGETS] = {
  &st_cloud_aws_target, &st_cloud_azure_target, &st_cloud_certs_target, &st_cloud_jws_target,
};

/* ---- names ---------------------------------------------------------------- */

static gboolean
st_cloud_chars_in (const char *s, const char *extra)
{
  for (const char *p = s; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && (extra == NULL || strchr (extra, *p) == NULL))
      return FALSE;
  return TRUE;
}

gboolean
st_cloud_aws_thing_name_ok (const char *name)
{
  gsize n = name != NULL ? strlen (name) : 0;
  return n >= 1 && n <= 128 && st_cloud_chars_in (name, ":_-");
}

const char *
st_cloud_azure_registration_id_problem (const char *cn)
{
  if (cn == NULL || *cn == '\0')
    return "the certificate has no subject CN (or more than one)";
  gsize n = strlen (cn);
  if (n > 64)
    return "the CN is longer than 64 characters";
  if (!st_cloud_chars_in (cn, "._-"))
    return "the CN has a character other than A-Z a-z 0-9 . _ -";
  if (!g_ascii_isalnum (cn[0]) || !g_ascii_isalnum (cn[n - 1]))
    return "the CN starts or ends with . _ or -";
  return NULL;
}

gboolean
st_cloud_file_name_ok (const char *name)
{
  gsize n = name != NULL ? strlen (name) : 0;
  return n >= 1 && n <= 255 && name[0] != '.' && st_cloud_chars_in (name, "._-");
}

gchar *
st_cloud_cert_file_name (const char *uid)
{
  gsize n = uid != NULL ? strlen (uid) : 0;
  if (n >= 1 && n <= 64 && st_cloud_chars_in (uid, "_-"))
    return g_strdup_printf ("%s.pem", uid);
  g_autofree gchar *hash = st_sha256_hex ((const guint8 *) (uid != NULL ? uid : ""), n);
  return g_strdup_printf ("uid-sha256-%s.pem", hash);
}

/* ---- helpers -------------------------------------------------------------- */

static gboolean
st_cloud_refuse_name (const char *name, GError **error)
{
  if (st_cloud_file_name_ok (name))
    return TRUE;
  g_autofree gchar *shown = st_text_escape (name, -1, ST_TEXT_ONE_LINE);
  g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL, "refusing to write a file named '%s'", shown);
  return FALSE;
}

/* @dir/@name created, never replacing nor following a link; -1 and errno. */
static int
st_cloud_create (const char *dir, const char *name)
{
  g_autofree gchar *path = g_build_filename (dir, name, NULL);
  return g_open (path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
}

static gboolean
st_cloud_write_all (int fd, const char *data, gsize len)
{
  gsize done = 0;
  while (done < len)
    {
      ssize_t n = write (fd, data + done, len - done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          if (n == 0)
            errno = ENOSPC;
          return FALSE;
        }
      done += (gsize) n;
    }
  return TRUE;
}

/* Decision: the export's files are written into the service's private
 * scratch folder and thrown away once packed for the client, which writes
 * them durably where the user asked: no fsync here (a file per unit). */
gboolean
st_cloud_write_file (const char *dir, const char *name, const char *data, gsize len, GError **error)
{
  if (!st_cloud_refuse_name (name, error))
    return FALSE;
  int fd = st_cloud_create (dir, name);
  gboolean ok = fd >= 0 && st_cloud_write_all (fd, data, len);
  int e = errno;
  if (fd >= 0 && close (fd) != 0 && ok)
    {
      ok = FALSE;
      e = errno;
    }
  if (!ok)
    g_set_error (error, ST_ERROR, ST_ERROR_WRITE, "cannot write %s/%s: %s", dir, name, g_strerror (e));
  return ok;
}

FILE *
st_cloud_open (const char *dir, const char *name, GError **error)
{
  if (!st_cloud_refuse_name (name, error))
    return NULL;
  int fd = st_cloud_create (dir, name);
  FILE *f = fd >= 0 ? fdopen (fd, "w") : NULL;
  if (f == NULL)
    {
      int e = errno;
      if (fd >= 0)
        close (fd);
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, "cannot create %s/%s: %s", dir, name, g_strerror (e));
      return NULL;
    }
  setvbuf (f, NULL, _IOFBF, 64 * 1024);
  return f;
}

gboolean
st_cloud_close (FILE **f, const char *what, GError **error)
{
  if (*f == NULL)
    return TRUE;
  gboolean ok = !ferror (*f);
  int e = ok ? 0 : EIO;
  if (fclose (*f) != 0 && ok)
    {
      ok = FALSE;
      e = errno;
    }
  *f = NULL;
  if (!ok && error != NULL && *error == NULL)
    g_set_error (error, ST_ERROR, ST_ERROR_WRITE, "cannot write %s: %s", what, g_strerror (e));
  return ok;
}

FILE *
st_cloud_tmpfile (const char *dir, GError **error)
{
  g_autofree gchar *path = g_build_filename (dir, ".part-XXXXXX", NULL);
  int fd = g_mkstemp_full (path, O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0)
    g_unlink (path);
  FILE *f = fd >= 0 ? fdopen (fd, "w+") : NULL;
  if (f == NULL)
    {
      int e = errno;
      if (fd >= 0)
        close (fd);
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, "cannot make a temporary file in %s: %s", dir,
                   g_strerror (e));
    }
  return f;
}

void
st_cloud_note (StCloudExport *x, const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  vfprintf (x->notes[x->target], format, ap);
  va_end (ap);
}

gchar *
st_cloud_subject_cn (X509 *cert)
{
  X509_NAME *name = X509_get_subject_name (cert);
  int at = X509_NAME_get_index_by_NID (name, NID_commonName, -1);
  if (at < 0 || X509_NAME_get_index_by_NID (name, NID_commonName, at) >= 0)
    return NULL;
  unsigned char *utf8 = NULL;
  int len = ASN1_STRING_to_UTF8 (&utf8, X509_NAME_ENTRY_get_data (X509_NAME_get_entry (name, at)));
  if (len < 0)
    return NULL;
  /* a NUL inside the CN would shorten it silently: refuse it */
  gchar *cn = memchr (utf8, '\0', (gsize) len) == NULL ? g_strndup ((const char *) utf8, (gsize) len) : NULL;
  OPENSSL_free (utf8);
  return cn;
}

/* ---- certs/ --------------------------------------------------------------- */

/* Whether @name is @uid's own name ("UID.pem"), not a hashed one. */
static gboolean
st_cloud_cert_name_own (const char *uid, const char *name)
{
  return g_str_has_prefix (name, uid) && strcmp (name + strlen (uid), ".pem") == 0;
}

GPtrArray *
st_cloud_cert_names (const char *const *uids, guint n, GString *report)
{
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_set_size (names, (gint) n);
  g_autoptr(GHashTable) taken = g_hash_table_new (g_str_hash, g_str_equal);
  /* a hashed name (75 characters before ".pem") is never a uid's own name
   * (at most 64): the two kinds cannot take each other's, and the first
   * unit (in unit order) of a name keeps it, as in the export */
  for (guint i = 0; i < n; i++)
    {
      g_autofree gchar *name = st_cloud_cert_file_name (uids[i]);
      g_autofree gchar *shown = st_text_escape (uids[i], -1, ST_TEXT_ONE_LINE);
      if (g_hash_table_contains (taken, name))
        {
          g_string_append_printf (report, "  certs: unit %s left out: its file name %s is taken by "
                                  "another unit of the batch\n", shown, name);
          continue;
        }
      if (!st_cloud_cert_name_own (uids[i], name))
        g_string_append_printf (report, "  certs: unit %s is in %s (its uid is not a safe file "
                                "name)\n", shown, name);
      g_hash_table_add (taken, name);
      g_ptr_array_index (names, i) = g_steal_pointer (&name);
    }
  return names;
}

static gboolean
st_cloud_certs_begin (StCloudExport *x, const char *dir, GError **error)
{
  x->certs_dir = g_strdup (dir);
  return TRUE;
}

/* The folder is the set of names taken: a file is created only when its
 * name is free (O_EXCL), so a second unit of a name is found without
 * keeping the batch's names in memory. */
static gboolean
st_cloud_certs_unit (StCloudExport *x, const StCloudUnit *u, GError **error)
{
  g_autofree gchar *name = st_cloud_cert_file_name (u->unit->uid);
  if (!st_cloud_refuse_name (name, error))
    return FALSE;
  int fd = st_cloud_create (x->certs_dir, name);
  if (fd < 0 && errno == EEXIST)
    {
      st_cloud_note (x, "  certs: unit %s left out: its file name %s is taken by another unit of "
                     "the batch\n", u->uid_shown, name);
      return TRUE;
    }
  gboolean ok = fd >= 0 && st_cloud_write_all (fd, u->pem, strlen (u->pem))
                && st_cloud_write_all (fd, x->chain_pem, strlen (x->chain_pem));
  int e = errno;
  if (fd >= 0 && close (fd) != 0 && ok)
    {
      ok = FALSE;
      e = errno;
    }
  if (!ok)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, "cannot write %s/%s: %s", x->certs_dir, name,
                   g_strerror (e));
      return FALSE;
    }
  if (!st_cloud_cert_name_own (u->unit->uid, name))
    st_cloud_note (x, "  certs: unit %s is in %s (its uid is not a safe file name)\n", u->uid_shown,
                   name);
  x->certs_written++;
  return TRUE;
}

static gboolean
st_cloud_certs_end (StCloudExport *x, GError **error)
{
  st_cloud_note (x, "certs: %u file(s): each device certificate, then the issuing CA chain without "
                 "the root\n", x->certs_written);
  return TRUE;
}

static void
st_cloud_certs_cleanup (StCloudExport *x)
{
  g_clear_pointer (&x->certs_dir, g_free);
}

/* ---- the export ----------------------------------------------------------- */

/* One unit of the batch: left out when its certificate is not active,
 * else given to every target. */
static gboolean
st_cloud_export_unit (const StDbUnit *u, gpointer user_data, GError **error)
{
  StCloudExport *x = user_data;
  if (u->cert_id <= 0 || u->cert_der == NULL)
    return TRUE;
  g_autofree gchar *shown = st_text_escape (u->uid, -1, ST_TEXT_ONE_LINE);
  /* only 'active': voided, unconfirmed, disputed, revoked and any state to
   * come stay out */
  if (g_strcmp0 (u->cert_state, "active") != 0)
    {
      g_autofree gchar *state = st_text_escape (u->cert_state, -1, ST_TEXT_ONE_LINE);
      fprintf (x->notes_all, "  all targets: unit %s left out: its certificate %s is %s\n", shown,
               u->cert_serial != NULL ? u->cert_serial : "?", state);
      x->left_out++;
      return TRUE;
    }
  gsize len = 0;
  const guint8 *der = g_bytes_get_data (u->cert_der, &len);
  g_autoptr(X509) cert = st_x509_from_der_fields (der, len);
  g_autofree gchar *pem = cert != NULL ? st_der_to_pem ("CERTIFICATE", der, len) : NULL;
  if (pem == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL,
                   "the recorded certificate of unit %" G_GINT64_FORMAT " (uid %s) does not parse: "
                   "run 'station db check'", u->id, shown);
      return FALSE;
    }
  StCloudUnit cu = { .unit = u, .cert = cert, .der = u->cert_der, .pem = pem, .uid_shown = shown };
  x->active++;
  for (guint t = 0; t < ST_CLOUD_N_TARGETS; t++)
    {
      x->target = t;
      if (!ST_CLOUD_WANTS (x, t))
        continue;
      if (!st_cloud_targets[t]->unit (x, &cu, error))
        {
          g_prefix_error (error, "%s (%s/): ", st_cloud_targets[t]->what, st_cloud_targets[t]->folder);
          return FALSE;
        }
    }
  return TRUE;
}

/* Appends what @f holds (from its start) to @out. */
static gboolean
st_cloud_append (FILE *out, FILE *f)
{
  char buf[16 * 1024];
  if (fflush (f) != 0 || fseek (f, 0, SEEK_SET) != 0)
    return FALSE;
  size_t n;
  while ((n = fread (buf, 1, sizeof buf, f)) > 0)
    if (fwrite (buf, 1, n, out) != n)
      return FALSE;
  return !ferror (f);
}

static gboolean
st_cloud_export_run (StCloudExport *x, StDb *db, gint64 batch_id, GError **error)
{
  x->notes_all = st_cloud_tmpfile (x->out_dir, error);
  if (x->notes_all == NULL)
    return FALSE;
  for (guint t = 0; t < ST_CLOUD_N_TARGETS; t++)
    {
      const StCloudTarget *target = st_cloud_targets[t];
      x->notes[t] = st_cloud_tmpfile (x->out_dir, error);
      if (x->notes[t] == NULL)
        return FALSE;
      if (!ST_CLOUD_WANTS (x, t))
        {
          fprintf (x->notes[t], "%s: not exported (not asked for with --cloud)\n", target->folder);
          continue;
        }
      g_autofree gchar *dir = g_build_filename (x->out_dir, target->folder, NULL);
      if (g_mkdir (dir, 0700) != 0)
        {
          int e = errno;
          g_set_error (error, ST_ERROR, ST_ERROR_WRITE, "cannot create %s: %s", dir, g_strerror (e));
          return FALSE;
        }
      x->target = t;
      if (!target->begin (x, dir, error))
        {
          g_prefix_error (error, "%s (%s/): ", target->what, target->folder);
          return FALSE;
        }
    }
  /* no target asked for: nothing to read unit by unit (a 100,000-unit
   * batch's walk costs seconds); the report says so */
  if (x->targets != 0 && !st_db_unit_foreach (db, batch_id, st_cloud_export_unit, x, error))
    return FALSE;
  for (guint t = 0; t < ST_CLOUD_N_TARGETS; t++)
    {
      x->target = t;
      if (!ST_CLOUD_WANTS (x, t))
        continue;
      if (!st_cloud_targets[t]->end (x, error))
        {
          g_prefix_error (error, "%s (%s/): ", st_cloud_targets[t]->what, st_cloud_targets[t]->folder);
          return FALSE;
        }
    }
  /* the report: its head, the units no target takes, the count, then
   * each target's lines in the table's order */
  FILE *report = st_cloud_open (x->out_dir, ST_CLOUD_REPORT, error);
  if (report == NULL)
    return FALSE;
  fprintf (report, "Cloud files of batch %" G_GINT64_FORMAT " (docs/cloud.md)\n", batch_id);
  gboolean ok = st_cloud_append (report, x->notes_all);
  if (x->targets != 0)
    fprintf (report, "active certificates: %u; left out of every target: %u\n", x->active, x->left_out);
  else
    fprintf (report, "no cloud target asked for (--cloud none): the units were not read\n");
  for (guint t = 0; ok && t < ST_CLOUD_N_TARGETS; t++)
    ok = st_cloud_append (report, x->notes[t]);
  if (!st_cloud_close (&report, ST_CLOUD_REPORT, error))
    return FALSE;
  if (!ok)
    g_set_error (error, ST_ERROR, ST_ERROR_WRITE, "cannot assemble %s in %s from its parts",
                 ST_CLOUD_REPORT, x->out_dir);
  return ok;
}

gboolean
st_cloud_targets_parse (const char *spec, guint *targets, GError **error)
{
  *targets = 0;
  if (spec == NULL || *spec == '\0' || strcmp (spec, "all") == 0)
    {
      *targets = ST_CLOUD_ALL;
      return TRUE;
    }
  if (strcmp (spec, "none") == 0)
    return TRUE;
  g_auto(GStrv) words = g_strsplit (spec, ",", -1);
  for (guint i = 0; words[i] != NULL; i++)
    {
      guint bit = 0;
      for (guint t = 0; st_cloud_folders[t] != NULL; t++)
        if (strcmp (words[i], st_cloud_folders[t]) == 0)
          bit = 1u << t;
      if (bit == 0 || (*targets & bit) != 0)
        {
          g_autofree gchar *shown = st_text_escape (words[i], -1, ST_TEXT_ONE_LINE);
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "--cloud: '%s' is not a cloud target, or is given twice (choose all, none, or "
                       "some of aws,azure,certs,jws joined by commas)", shown);
          *targets = 0;
          return FALSE;
        }
      *targets |= bit;
    }
  return TRUE;
}

gboolean
st_cloud_export (StDb *db, StCa *ca, const char *station_id, gint64 batch_id, guint targets,
                 const char *out_dir, GError **error)
{
  g_autoptr(StDbBatch) batch = st_db_batch_get (db, batch_id, error);
  if (batch == NULL)
    return FALSE;
  g_autofree gchar *ca_pem = st_x509_to_pem (ca->ca_cert);
  g_autoptr(GString) chain = g_string_new (NULL);
  /* the chain as a device presents it: everything but the root */
  for (int i = 0; i + 1 < sk_X509_num (ca->chain); i++)
    {
      g_autofree gchar *pem = st_x509_to_pem (sk_X509_value (ca->chain, i));
      if (pem == NULL)
        {
          st_error_set_openssl (error, ST_ERROR_INTERNAL, "cannot encode the CA chain as PEM");
          return FALSE;
        }
      g_string_append (chain, pem);
    }
  if (ca_pem == NULL || sk_X509_num (ca->chain) < 2)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL,
                   "the station's CA chain is not issuing CA .. root: check 'station setup show'");
      return FALSE;
    }
  StCloudExport x = {
    .ca = ca, .batch = batch, .station_id = station_id, .out_dir = out_dir,
    .ca_pem = ca_pem, .chain_pem = chain->str, .targets = targets,
  };
  gboolean ok = st_cloud_export_run (&x, db, batch_id, error);
  /* every target's files closed and its state freed, whatever happened */
  for (guint t = 0; t < ST_CLOUD_N_TARGETS; t++)
    {
      st_cloud_targets[t]->cleanup (&x);
      st_cloud_close (&x.notes[t], "the report", NULL);
    }
  st_cloud_close (&x.notes_all, "the report", NULL);
  return ok;
}
