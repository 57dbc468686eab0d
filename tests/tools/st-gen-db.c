/* st-gen-db: a large database, quickly, for measuring (docs/testing.md,
 * Benchmarks: a large database).
 *
 *   st-gen-db --db FILE --units N [--threads T] [--fail-every K]
 *             [--work-order WO] [--product P] [--station-id ID]
 *             [--lead NAME] [--operator NAME] [--ca-out FILE]
 *
 * Opens (or creates) the database through the station's own db API and
 * writes one batch of N units exactly as the pipeline records them:
 * st_db_batch_create, then per unit st_db_unit_begin_reserve (its
 * to-be-signed certificate), st_db_cert_issued (the signed DER) and
 * st_db_unit_done; every K-th unit fails instead after its reservation
 * (st_db_unit_fail, certificate voided). So the audit log and its chain,
 * the replay's bindings, the triggers and the constraints are the real
 * ones. T threads write at once, so the writer commits them in groups.
 *
 * The certificates are real X.509 certificates signed by a software CA key
 * (EC P-256) the tool makes, not by the HSM: the point is the records. Each
 * unit's public key is an Ed25519 key made of 32 random bytes (a public key
 * needs no private half to be certified, and it costs no key generation).
 * --ca-out writes the CA certificate, so that `openssl verify` can check
 * any certificate the tool made.
 *
 * Appending to a demo station's database (service stopped) keeps its audit
 * log, its signed checkpoints and the HSM anchor valid: the tool adds
 * entries after them and signs no checkpoint. */
#include "st-db.h"
#include "st-error.h"
#include "st-util.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  StDb *db;
  gint64 batch_id, n_units, fail_every;
  const char *product, *operator_name;
  EVP_PKEY *ca_key;
  X509 *ca_cert;
  gchar *issuer_hex;
  gint next;              /* atomic: the next unit's index */
  gint done;              /* atomic: units written */
  GMutex error_lock;
  GError *error;          /* the first error */
} Gen;

static gchar *
gen_der_hex_serial (guint8 *raw, gsize n)
{
  RAND_bytes (raw, (int) n);
  raw[0] = (guint8) ((raw[0] & 0x7f) | 0x01);   /* positive, no leading zero */
  return st_hex_encode (raw, n);
}

static GBytes *
gen_i2d (int (*i2d) (const X509 *, unsigned char **), const X509 *x)
{
  unsigned char *buf = NULL;
  int len = i2d (x, &buf);
  if (len <= 0)
    return NULL;
  GBytes *b = g_bytes_new (buf, (gsize) len);
  OPENSSL_free (buf);
  return b;
}

static int
gen_i2d_tbs (const X509 *x, unsigned char **out)
{
  return i2d_re_X509_tbs ((X509 *) x, out);
}

/* One certificate for @uid, signed by the CA. */
static X509 *
gen_cert (Gen *g, const char *uid, const guint8 *serial, gsize serial_len, gchar **pubkey_sha256)
{
  guint8 pub[32];
  RAND_bytes (pub, sizeof pub);
  EVP_PKEY *key = EVP_PKEY_new_raw_public_key (EVP_PKEY_ED25519, NULL, pub, sizeof pub);
  X509 *x = X509_new ();
  BIGNUM *bn = BN_bin2bn (serial, (int) serial_len, NULL);
  ASN1_INTEGER *sn = BN_to_ASN1_INTEGER (bn, NULL);
  X509_NAME *name = X509_NAME_new ();
  X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_ASC, (const unsigned char *) uid, -1, -1, 0);
  gboolean ok = key != NULL && x != NULL && sn != NULL
                && X509_set_version (x, 2) && X509_set_serialNumber (x, sn)
                && X509_set_issuer_name (x, X509_get_subject_name (g->ca_cert))
                && X509_set_subject_name (x, name)
                && X509_gmtime_adj (X509_getm_notBefore (x), 0)
                && X509_gmtime_adj (X509_getm_notAfter (x), 20L * 365 * 86400)
                && X509_set_pubkey (x, key)
                && X509_sign (x, g->ca_key, EVP_sha256 ()) > 0;
  if (ok)
    {
      unsigned char *spki = NULL;
      int n = i2d_PUBKEY (key, &spki);
      ok = n > 0;
      if (ok)
        *pubkey_sha256 = st_sha256_hex (spki, (gsize) n);
      OPENSSL_free (spki);
    }
  X509_NAME_free (name);
  ASN1_INTEGER_free (sn);
  BN_free (bn);
  EVP_PKEY_free (key);
  if (!ok)
    {
      X509_free (x);
      return NULL;
    }
  return x;
}

static void
gen_fail (Gen *g, GError *error)
{
  g_mutex_lock (&g->error_lock);
  if (g->error == NULL)
    g->error = error;
  else
    g_error_free (error);
  g_mutex_unlock (&g->error_lock);
}

static gboolean
gen_one (Gen *g, gint64 i, GError **error)
{
  g_autofree gchar *uid = g_strdup_printf ("%024" G_GINT64_MODIFIER "x", (guint64) (0x5e0000000000ll + i));
  guint8 serial[16];
  g_autofree gchar *serial_hex = gen_der_hex_serial (serial, sizeof serial);
  g_autofree gchar *pubkey_sha256 = NULL;
  X509 *x = gen_cert (g, uid, serial, sizeof serial, &pubkey_sha256);
  if (x == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL, "cannot make the certificate of unit %s", uid);
      return FALSE;
    }
  g_autoptr(GBytes) tbs = gen_i2d (gen_i2d_tbs, x);
  g_autoptr(GBytes) der = gen_i2d (i2d_X509, x);
  X509_free (x);
  gint64 seq = st_db_product_seq_draw (g->db, g->product, error);
  if (seq <= 0 || tbs == NULL || der == NULL)
    return FALSE;
  g_autofree gchar *product_serial = g_strdup_printf ("GEN-%08" G_GINT64_FORMAT, seq);
  StDbUnitNew u = { g->batch_id, "gen:0", uid, "gen-model", "1.0.0", g->operator_name };
  gint64 unit_id = 0;
  gint64 cert_id = st_db_unit_begin_reserve (g->db, &u, g->issuer_hex, serial_hex, pubkey_sha256, tbs,
                                             product_serial, seq, FALSE, &unit_id, error);
  if (cert_id <= 0)
    return FALSE;
  if (g->fail_every > 0 && (i + 1) % g->fail_every == 0)
    return st_db_unit_fail (g->db, unit_id, "program", "generated failure", "st-gen-db --fail-every",
                            ST_DB_CERT_VOID, error);
  return st_db_cert_issued (g->db, cert_id, der, error) && st_db_unit_done (g->db, unit_id, error);
}

static gpointer
gen_thread (gpointer data)
{
  Gen *g = data;
  for (;;)
    {
      gint64 i = g_atomic_int_add (&g->next, 1);
      if (i >= g->n_units || g_atomic_pointer_get (&g->error) != NULL)
        break;
      GError *error = NULL;
      if (!gen_one (g, i, &error))
        {
          gen_fail (g, error != NULL ? error
                    : g_error_new (ST_ERROR, ST_ERROR_INTERNAL, "unit %" G_GINT64_FORMAT " failed", i));
          break;
        }
      g_atomic_int_inc (&g->done);
    }
  return NULL;
}

/* An extension of the CA certificate (openssl verify wants a CA to say so). */
static gboolean
gen_ca_ext (X509 *cert, int nid, const char *value)
{
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb (&ctx);
  X509V3_set_ctx (&ctx, cert, cert, NULL, NULL, 0);
  X509_EXTENSION *ext = X509V3_EXT_conf_nid (NULL, &ctx, nid, value);
  gboolean ok = ext != NULL && X509_add_ext (cert, ext, -1);
  X509_EXTENSION_free (ext);
  return ok;
}

static gboolean
gen_ca (Gen *g, const char *ca_out, GError **error)
{
  g->ca_key = EVP_EC_gen ("P-256");
  g->ca_cert = X509_new ();
  X509_NAME *name = X509_NAME_new ();
  X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_ASC, (const unsigned char *) "st-gen-db software CA",
                              -1, -1, 0);
  gboolean ok = g->ca_key != NULL && X509_set_version (g->ca_cert, 2)
                && ASN1_INTEGER_set (X509_get_serialNumber (g->ca_cert), 1)
                && X509_set_issuer_name (g->ca_cert, name) && X509_set_subject_name (g->ca_cert, name)
                && X509_gmtime_adj (X509_getm_notBefore (g->ca_cert), -3600)
                && X509_gmtime_adj (X509_getm_notAfter (g->ca_cert), 30L * 365 * 86400)
                && X509_set_pubkey (g->ca_cert, g->ca_key)
                && gen_ca_ext (g->ca_cert, NID_basic_constraints, "critical,CA:TRUE")
                && gen_ca_ext (g->ca_cert, NID_key_usage, "critical,keyCertSign,cRLSign")
                && X509_sign (g->ca_cert, g->ca_key, EVP_sha256 ()) > 0;
  X509_NAME_free (name);
  g_autoptr(GBytes) der = ok ? gen_i2d (i2d_X509, g->ca_cert) : NULL;
  if (der == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL, "cannot make the software CA");
      return FALSE;
    }
  g->issuer_hex = st_sha256_hex (g_bytes_get_data (der, NULL), g_bytes_get_size (der));
  if (ca_out != NULL)
    {
      FILE *f = fopen (ca_out, "w");
      if (f == NULL || !PEM_write_X509 (f, g->ca_cert) || fclose (f) != 0)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL, "cannot write the CA certificate to %s", ca_out);
          return FALSE;
        }
    }
  return TRUE;
}

int
main (int argc, char **argv)
{
  g_autofree gchar *path = NULL, *ca_out = NULL;
  g_autofree gchar *work_order = NULL, *product = NULL, *station_id = NULL, *lead = NULL, *op = NULL;
  gint64 n_units = 0, fail_every = 0;
  gint n_threads = 32;
  const GOptionEntry entries[] = {
    { "db", 0, 0, G_OPTION_ARG_FILENAME, &path, "The database (created if missing)", "FILE" },
    { "units", 0, 0, G_OPTION_ARG_INT64, &n_units, "Units to write", "N" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &n_threads, "Writer threads (default 32)", "T" },
    { "fail-every", 0, 0, G_OPTION_ARG_INT64, &fail_every, "Every K-th unit fails, its certificate voided", "K" },
    { "work-order", 0, 0, G_OPTION_ARG_STRING, &work_order, "The batch's work order", "WO" },
    { "product", 0, 0, G_OPTION_ARG_STRING, &product, "The batch's product", "P" },
    { "station-id", 0, 0, G_OPTION_ARG_STRING, &station_id, "The station id the batch records", "ID" },
    { "lead", 0, 0, G_OPTION_ARG_STRING, &lead, "Who creates the batch (default lead)", "NAME" },
    { "operator", 0, 0, G_OPTION_ARG_STRING, &op, "Who runs the units (default op)", "NAME" },
    { "ca-out", 0, 0, G_OPTION_ARG_FILENAME, &ca_out, "Write the software CA certificate here (PEM)", "FILE" },
    { NULL }
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new ("- write a large station database for measuring");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_autoptr(GError) error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      g_printerr ("st-gen-db: %s\n", error->message);
      return 2;
    }
  if (path == NULL || n_units <= 0 || n_units > G_MAXINT / 2 || n_threads < 1 || n_threads > 256 || fail_every < 0)
    {
      g_printerr ("st-gen-db: needs --db FILE and --units N > 0 (--threads 1 to 256, --fail-every >= 0)\n");
      return 2;
    }
  Gen g = { .n_units = n_units, .fail_every = fail_every,
            .product = product != NULL ? product : "gen-sensor",
            .operator_name = op != NULL ? op : "op" };
  g_mutex_init (&g.error_lock);
  if (!gen_ca (&g, ca_out, &error))
    {
      g_printerr ("st-gen-db: %s\n", error->message);
      return 1;
    }
  g.db = st_db_open (path, &error);
  if (g.db == NULL)
    {
      g_printerr ("st-gen-db: %s\n", error->message);
      return 1;
    }
  g_autofree gchar *profile_text = g_strdup_printf ("name: %s\nkey: ed25519\n# written by st-gen-db\n", g.product);
  g_autofree gchar *profile_sha256 = st_sha256_hex ((const guint8 *) profile_text, strlen (profile_text));
  g_autofree gchar *wo = work_order != NULL ? g_strdup (work_order)
                         : g_strdup_printf ("GEN-%" G_GINT64_FORMAT, (gint64) time (NULL));
  g.batch_id = st_db_batch_create (g.db, wo, g.product, profile_sha256, profile_text, n_units,
                                   station_id != NULL ? station_id : "st-gen-db",
                                   lead != NULL ? lead : "lead", &error);
  if (g.batch_id <= 0)
    {
      g_printerr ("st-gen-db: %s\n", error->message);
      st_db_close (g.db);
      return 1;
    }
  gint64 t0 = g_get_monotonic_time ();
  GThread *threads[256];
  for (gint t = 0; t < n_threads; t++)
    threads[t] = g_thread_new ("gen", gen_thread, &g);
  gboolean tty = isatty (2);
  while (g_atomic_int_get (&g.done) < n_units && g_atomic_pointer_get (&g.error) == NULL)
    {
      g_usleep (200000);
      if (tty)
        g_printerr ("\rst-gen-db: %d of %" G_GINT64_FORMAT " units", g_atomic_int_get (&g.done), n_units);
    }
  for (gint t = 0; t < n_threads; t++)
    g_thread_join (threads[t]);
  if (tty)
    g_printerr ("\n");
  double s = (double) (g_get_monotonic_time () - t0) / 1e6;
  guint64 writes = 0, commits = 0;
  st_db_get_write_stats (g.db, &writes, &commits);
  st_db_close (g.db);
  EVP_PKEY_free (g.ca_key);
  X509_free (g.ca_cert);
  g_free (g.issuer_hex);
  g_mutex_clear (&g.error_lock);
  if (g.error != NULL)
    {
      g_printerr ("st-gen-db: %s\n", g.error->message);
      g_error_free (g.error);
      return 1;
    }
  g_print ("batch %" G_GINT64_FORMAT ": %" G_GINT64_FORMAT " units in %.1f s (%.0f units/s), "
           "%" G_GUINT64_FORMAT " writes in %" G_GUINT64_FORMAT " commits\n",
           g.batch_id, n_units, s, (double) n_units / s, writes, commits);
  return 0;
}
