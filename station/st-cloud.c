/* The cloud export: which units, the table of targets, certs/, the names. */
#include "st-cloud-private.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <openssl/pem.h>
#include <string.h>

#include "st-error.h"
#include "st-ossl.h"
#include "st-text.h"
#include "st-util.h"

const char *const st_cloud_folders[] = { "aws", "azure", "certs", "jws", NULL };

static gboolean st_cloud_certs_write (StCloudExport *x, const char *dir, GError **error);

/* The one list of targets: a new one is a row here and a file of its own. */
static const StCloudTarget st_cloud_targets[] = {
  { "aws", "AWS IoT bulk registration", st_cloud_aws_write },
  { "azure", "Azure DPS enrollment group", st_cloud_azure_write },
  { "certs", "per-device PEM files", st_cloud_certs_write },
  { "jws", "signed per-device entries (JWS)", st_cloud_jws_write },
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

gboolean
st_cloud_write_file (const char *dir, const char *name, const char *data, gsize len, GError **error)
{
  if (!st_cloud_file_name_ok (name))
    {
      g_autofree gchar *shown = st_text_escape (name, -1, ST_TEXT_ONE_LINE);
      g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL, "refusing to write a file named '%s'", shown);
      return FALSE;
    }
  g_autofree gchar *path = g_build_filename (dir, name, NULL);
  return st_file_write_durable (path, data, len, 0600, error);
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

static void
st_cloud_unit_free (StCloudUnit *u)
{
  X509_free (u->cert);
  g_free (u->pem);
  g_free (u->uid_shown);
  g_free (u);
}

/* ---- certs/ --------------------------------------------------------------- */

GPtrArray *
st_cloud_cert_names (const char *const *uids, guint n, GString *report)
{
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_set_size (names, (gint) n);
  g_autoptr(GHashTable) taken = g_hash_table_new (g_str_hash, g_str_equal);
  /* a hashed name (75 characters before ".pem") is never a uid's own name
   * (at most 64): the two kinds cannot take each other's; the safe names
   * go first all the same */
  for (int pass = 0; pass < 2; pass++)
    for (guint i = 0; i < n; i++)
      {
        g_autofree gchar *name = st_cloud_cert_file_name (uids[i]);
        gboolean own = g_str_has_prefix (name, uids[i]) && strcmp (name + strlen (uids[i]), ".pem") == 0;
        if (own != (pass == 0))
          continue;
        g_autofree gchar *shown = st_text_escape (uids[i], -1, ST_TEXT_ONE_LINE);
        if (g_hash_table_contains (taken, name))
          {
            g_string_append_printf (report, "  certs: unit %s left out: its file name %s is taken by "
                                    "another unit of the batch\n", shown, name);
            continue;
          }
        if (!own)
          g_string_append_printf (report, "  certs: unit %s is in %s (its uid is not a safe file "
                                  "name)\n", shown, name);
        g_hash_table_add (taken, name);
        g_ptr_array_index (names, i) = g_steal_pointer (&name);
      }
  return names;
}

static gboolean
st_cloud_certs_write (StCloudExport *x, const char *dir, GError **error)
{
  g_autofree const char **uids = g_new0 (const char *, x->units->len + 1);
  for (guint i = 0; i < x->units->len; i++)
    uids[i] = ((StCloudUnit *) g_ptr_array_index (x->units, i))->unit->uid;
  g_autoptr(GPtrArray) names = st_cloud_cert_names (uids, x->units->len, x->report);
  guint written = 0;
  for (guint i = 0; i < x->units->len; i++)
    {
      StCloudUnit *u = g_ptr_array_index (x->units, i);
      const char *name = g_ptr_array_index (names, i);
      if (name == NULL)
        continue;
      g_autofree gchar *text = g_strconcat (u->pem, x->chain_pem, NULL);
      if (!st_cloud_write_file (dir, name, text, strlen (text), error))
        return FALSE;
      written++;
    }
  g_string_append_printf (x->report, "certs: %u file(s): each device certificate, then the issuing "
                          "CA chain without the root\n", written);
  return TRUE;
}

/* ---- the export ----------------------------------------------------------- */

gboolean
st_cloud_export (StDb *db, StCa *ca, const char *station_id, gint64 batch_id, const char *out_dir,
                 GError **error)
{
  g_autoptr(StDbBatch) batch = st_db_batch_get (db, batch_id, error);
  if (batch == NULL)
    return FALSE;
  g_autoptr(GPtrArray) all = st_db_unit_list (db, batch_id, error);
  if (all == NULL)
    return FALSE;
  g_autoptr(GPtrArray) units = g_ptr_array_new_with_free_func ((GDestroyNotify) st_cloud_unit_free);
  g_autoptr(GString) report = g_string_new (NULL);
  g_string_append_printf (report, "Cloud files of batch %" G_GINT64_FORMAT " (docs/cloud.md)\n",
                          batch_id);
  guint left_out = 0;
  for (guint i = 0; i < all->len; i++)
    {
      const StDbUnit *u = g_ptr_array_index (all, i);
      if (u->cert_id <= 0 || u->cert_der == NULL)
        continue;
      g_autofree gchar *shown = st_text_escape (u->uid, -1, ST_TEXT_ONE_LINE);
      /* only 'active': voided, unconfirmed, disputed, revoked and any
       * state to come stay out */
      if (g_strcmp0 (u->cert_state, "active") != 0)
        {
          g_autofree gchar *state = st_text_escape (u->cert_state, -1, ST_TEXT_ONE_LINE);
          g_string_append_printf (report, "  all targets: unit %s left out: its certificate %s is %s\n",
                                  shown, u->cert_serial != NULL ? u->cert_serial : "?", state);
          left_out++;
          continue;
        }
      X509 *cert = st_x509_from_der (u->cert_der);
      if (cert == NULL)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL,
                       "the recorded certificate of unit %" G_GINT64_FORMAT " (uid %s) does not parse: "
                       "run 'station db check'", u->id, shown);
          return FALSE;
        }
      StCloudUnit *cu = g_new0 (StCloudUnit, 1);
      cu->unit = u;
      cu->cert = cert;
      cu->der = u->cert_der;
      cu->pem = st_x509_to_pem (cert);
      cu->uid_shown = g_steal_pointer (&shown);
      g_ptr_array_add (units, cu);
      if (cu->pem == NULL)
        {
          st_error_set_openssl (error, ST_ERROR_INTERNAL, "cannot encode a device certificate as PEM");
          return FALSE;
        }
    }
  g_string_append_printf (report, "active certificates: %u; left out of every target: %u\n",
                          units->len, left_out);

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
    .ca = ca, .batch = batch, .station_id = station_id, .units = units,
    .ca_pem = ca_pem, .chain_pem = chain->str, .report = report,
  };
  for (guint t = 0; t < G_N_ELEMENTS (st_cloud_targets); t++)
    {
      const StCloudTarget *target = &st_cloud_targets[t];
      g_autofree gchar *dir = g_build_filename (out_dir, target->folder, NULL);
      if (g_mkdir (dir, 0700) != 0 && errno != EEXIST)
        {
          int e = errno;
          g_set_error (error, ST_ERROR, ST_ERROR_WRITE, "cannot create %s: %s", dir, g_strerror (e));
          return FALSE;
        }
      if (!target->write (&x, dir, error))
        {
          g_prefix_error (error, "%s (%s/): ", target->what, target->folder);
          return FALSE;
        }
    }
  return st_cloud_write_file (out_dir, ST_CLOUD_REPORT, report->str, report->len, error);
}
