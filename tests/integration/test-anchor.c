/* The audit log's anchor outside the database file (issue 14, item 1),
 * each forgery made as the security review made it, on the database file
 * with the service stopped, then `station audit verify` through the
 * service:
 *
 * /anchor/genuine: a batch, its manifest; audit verify (with the
 *   manifest) says the HSM anchor and the manifest's checkpoint are ok.
 * /anchor/rechain-device-signed: the triggers dropped, an entry deleted, the
 *   later ones renumbered and the hash chain recomputed, every checkpoint
 *   replaced by one signed by a device's key (a certificate of the same
 *   root without the station-signing purpose). Rejected: the checkpoints'
 *   signer is not the pinned station key, and the log no longer holds the
 *   entry the HSM anchored.
 * /anchor/truncate: the log's tail and every checkpoint deleted. Rejected:
 *   the HSM anchored an entry past the log's end.
 * /anchor/rollback: the database file replaced by an older copy of itself.
 *   Rejected by the anchor, and by the checkpoint of a manifest exported
 *   after the copy was taken (audit verify --manifests). */
#include <glib/gstdio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sqlite3.h>
#include <string.h>

#include "st-audit.h"
#include "st-ca.h"
#include "st-config.h"
#include "st-db.h"
#include "st-test-run.h"

/* `station audit verify [--manifests DIR]` as QA: its status, output in @out. */
static int
anchor_verify (StFixture *f, const char *manifest_dir, gchar **out)
{
  const char *env[] = { "STATION_OPERATOR_PIN=3333", NULL };
  g_autofree gchar *err = NULL;
  const char *with[] = { "--operator", "qa", "audit", "verify", "--manifests", manifest_dir, NULL };
  const char *without[] = { "--operator", "qa", "audit", "verify", NULL };
  int rc = st_run_stationv (f, env, out, &err, manifest_dir != NULL ? with : without);
  g_test_message ("audit verify (%d):\n%s%s", rc, *out, err);
  return rc;
}

static sqlite3 *
anchor_open_db (StFixture *f)
{
  g_autofree gchar *path = g_build_filename (f->home, "station.db", NULL);
  sqlite3 *db = NULL;
  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  return db;
}

static void
anchor_exec (sqlite3 *db, const char *sql)
{
  char *msg = NULL;
  int rc = sqlite3_exec (db, sql, NULL, NULL, &msg);
  if (rc != SQLITE_OK)
    g_error ("%s: %s", sql, msg);
}

/* What an attacker with the file does first. */
static void
anchor_drop_triggers (sqlite3 *db)
{
  anchor_exec (db, "DROP TRIGGER audit_append_only; DROP TRIGGER audit_no_delete;"
                   "DROP TRIGGER audit_checkpoints_append_only; DROP TRIGGER audit_checkpoints_no_delete;");
}

/* Renumbers the log 1..n and recomputes every hash: a chain that verifies. */
static gint64
anchor_rechain (sqlite3 *db, gchar **head_hash)
{
  g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func ((GDestroyNotify) g_strfreev);
  sqlite3_stmt *st = NULL;
  g_assert_cmpint (sqlite3_prepare_v2 (db, "SELECT seq, at, operator, event, payload FROM audit ORDER BY seq",
                                       -1, &st, NULL), ==, SQLITE_OK);
  while (sqlite3_step (st) == SQLITE_ROW)
    {
      gchar **r = g_new0 (gchar *, 6);
      for (int i = 0; i < 5; i++)
        r[i] = g_strdup ((const char *) sqlite3_column_text (st, i));
      g_ptr_array_add (rows, r);
    }
  sqlite3_finalize (st);
  anchor_exec (db, "DELETE FROM audit");
  g_autofree gchar *prev = g_strdup (ST_DB_AUDIT_GENESIS);
  for (guint i = 0; i < rows->len; i++)
    {
      gchar **r = g_ptr_array_index (rows, i);
      gint64 seq = i + 1, at = g_ascii_strtoll (r[1], NULL, 10);
      gchar *hash = st_db_audit_hash (seq, at, r[2], r[3], r[4], prev);
      g_assert_cmpint (sqlite3_prepare_v2 (db, "INSERT INTO audit (seq, at, operator, event, payload, "
                                               "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)", -1, &st,
                                           NULL), ==, SQLITE_OK);
      sqlite3_bind_int64 (st, 1, seq);
      sqlite3_bind_int64 (st, 2, at);
      sqlite3_bind_text (st, 3, r[2], -1, SQLITE_TRANSIENT);
      sqlite3_bind_text (st, 4, r[3], -1, SQLITE_TRANSIENT);
      sqlite3_bind_text (st, 5, r[4], -1, SQLITE_TRANSIENT);
      sqlite3_bind_text (st, 6, prev, -1, SQLITE_TRANSIENT);
      sqlite3_bind_text (st, 7, hash, -1, SQLITE_TRANSIENT);
      g_assert_cmpint (sqlite3_step (st), ==, SQLITE_DONE);
      sqlite3_finalize (st);
      g_free (prev);
      prev = hash;
    }
  *head_hash = g_steal_pointer (&prev);
  return rows->len;
}

/* A device's certificate and key: issued by the station's issuing CA (in
 * the HSM) to a fresh key, with no extended key usage, as a profile
 * without one issues it. */
static X509 *
anchor_device_cert (StFixture *f, EVP_PKEY **key_out)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StConfig) config = st_config_load (f->home, &error);
  g_assert_no_error (error);
  g_autoptr(StCa) ca = st_ca_open (config, ST_TEST_PIN, &error);
  g_assert_no_error (error);
  EVP_PKEY *key = EVP_EC_gen ("P-256");
  g_assert_nonnull (key);
  X509 *cert = X509_new ();
  X509_set_version (cert, 2);
  ASN1_INTEGER_set (X509_get_serialNumber (cert), 0x5eed);
  X509_NAME *name = X509_NAME_new ();
  X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_UTF8, (const guchar *) "a device", -1, -1, 0);
  X509_set_subject_name (cert, name);
  X509_NAME_free (name);
  X509_set_issuer_name (cert, X509_get_subject_name (ca->ca_cert));
  X509_gmtime_adj (X509_getm_notBefore (cert), -3600);
  X509_gmtime_adj (X509_getm_notAfter (cert), 86400);
  X509_set_pubkey (cert, key);
  st_hsm_lock (ca->hsm);
  g_assert_cmpint (X509_sign (cert, ca->ca_key, EVP_sha256 ()), >, 0);
  st_hsm_unlock (ca->hsm);
  *key_out = key;
  return cert;
}

static GBytes *
anchor_sign (EVP_PKEY *key, const char *message)
{
  EVP_MD_CTX *md = EVP_MD_CTX_new ();
  size_t len = 0;
  g_assert_cmpint (EVP_DigestSignInit (md, NULL, EVP_sha256 (), NULL, key), ==, 1);
  g_assert_cmpint (EVP_DigestSign (md, NULL, &len, (const guchar *) message, strlen (message)), ==, 1);
  guint8 *sig = g_malloc (len);
  g_assert_cmpint (EVP_DigestSign (md, sig, &len, (const guchar *) message, strlen (message)), ==, 1);
  EVP_MD_CTX_free (md);
  return g_bytes_new_take (sig, len);
}

static void
test_genuine (StFixture *f, gconstpointer data)
{
  g_autofree gchar *dir = g_build_filename (f->tmp, "manifest-1", NULL);
  st_closed_batch (f, dir, "601");
  g_autofree gchar *out = NULL;
  g_assert_cmpint (anchor_verify (f, dir, &out), ==, 0);
  g_assert_nonnull (strstr (out, "HSM anchor: ok"));
  g_assert_nonnull (strstr (out, "signed by the pinned station signing key"));
  g_assert_nonnull (strstr (out, "is in the log"));
  g_assert_nonnull (strstr (out, "audit log verified"));
  /* a folder without a manifest is refused, saying which */
  g_autofree gchar *err = NULL;
  const char *env[] = { "STATION_OPERATOR_PIN=3333", NULL };
  const char *args[] = { "--operator", "qa", "audit", "verify", "--manifests", f->tmp, NULL };
  g_assert_cmpint (st_run_stationv (f, env, NULL, &err, args), !=, 0);
  g_assert_nonnull (strstr (err, "manifest.json"));
}

static void
test_rechain_device_signed (StFixture *f, gconstpointer data)
{
  st_closed_batch (f, NULL, "602");
  g_autofree gchar *out = NULL;
  g_assert_cmpint (anchor_verify (f, NULL, &out), ==, 0);
  g_assert_cmpint (st_service_stop (f), ==, 0);

  EVP_PKEY *key = NULL;
  g_autoptr(X509) device = anchor_device_cert (f, &key);
  sqlite3 *db = anchor_open_db (f);
  anchor_drop_triggers (db);
  /* an entry that tells: the second batch-create's, or any in the middle */
  anchor_exec (db, "DELETE FROM audit WHERE seq = (SELECT min(seq) FROM audit WHERE event = 'unit-done')");
  g_autofree gchar *head_hash = NULL;
  gint64 head = anchor_rechain (db, &head_hash);
  /* every checkpoint replaced by one of the new head, signed by the device */
  anchor_exec (db, "DELETE FROM audit_checkpoints");
  g_autofree gchar *message = st_audit_checkpoint_message (head, head_hash);
  g_autoptr(GBytes) sig = anchor_sign (key, message);
  guint8 *der = NULL;
  int der_len = i2d_X509 (device, &der);
  sqlite3_stmt *st = NULL;
  g_assert_cmpint (sqlite3_prepare_v2 (db, "INSERT INTO audit_checkpoints (seq, hash, at, reason, signature, "
                                           "signer_cert) VALUES (?, ?, 1, 'batch-close', ?, ?)", -1, &st,
                                       NULL), ==, SQLITE_OK);
  sqlite3_bind_int64 (st, 1, head);
  sqlite3_bind_text (st, 2, head_hash, -1, SQLITE_TRANSIENT);
  sqlite3_bind_blob (st, 3, g_bytes_get_data (sig, NULL), (int) g_bytes_get_size (sig), SQLITE_TRANSIENT);
  sqlite3_bind_blob (st, 4, der, der_len, SQLITE_TRANSIENT);
  g_assert_cmpint (sqlite3_step (st), ==, SQLITE_DONE);
  sqlite3_finalize (st);
  OPENSSL_free (der);
  sqlite3_close (db);
  EVP_PKEY_free (key);

  g_clear_pointer (&out, g_free);
  g_assert_cmpint (anchor_verify (f, NULL, &out), ==, 1);
  g_assert_nonnull (strstr (out, "is not a station signing certificate"));
  g_assert_nonnull (strstr (out, "HSM anchor: FAILED"));
  g_assert_nonnull (strstr (out, "AUDIT LOG REJECTED"));
}

static void
test_truncate (StFixture *f, gconstpointer data)
{
  st_closed_batch (f, NULL, "603");
  gint64 n = st_sql_int (f, "SELECT max(seq) FROM audit");
  g_assert_cmpint (st_service_stop (f), ==, 0);
  sqlite3 *db = anchor_open_db (f);
  anchor_drop_triggers (db);
  g_autofree gchar *sql = g_strdup_printf ("DELETE FROM audit WHERE seq > %" G_GINT64_FORMAT "; "
                                           "DELETE FROM audit_checkpoints;", n / 2);
  anchor_exec (db, sql);
  sqlite3_close (db);
  g_autofree gchar *out = NULL;
  g_assert_cmpint (anchor_verify (f, NULL, &out), ==, 1);
  g_assert_nonnull (strstr (out, "HSM anchor: FAILED"));
  g_assert_nonnull (strstr (out, "truncated or restored from an older copy"));
}

static void
anchor_copy (const char *from, const char *to)
{
  g_autofree gchar *data = NULL;
  gsize len = 0;
  g_assert_true (g_file_get_contents (from, &data, &len, NULL));
  g_assert_true (g_file_set_contents (to, data, (gssize) len, NULL));
}

static void
test_rollback (StFixture *f, gconstpointer data)
{
  st_closed_batch (f, NULL, "604");
  g_assert_cmpint (st_service_stop (f), ==, 0);
  g_autofree gchar *path = g_build_filename (f->home, "station.db", NULL);
  g_autofree gchar *wal = g_strconcat (path, "-wal", NULL);
  g_assert_false (g_file_test (wal, G_FILE_TEST_EXISTS));
  g_autofree gchar *older = g_build_filename (f->tmp, "older.db", NULL);
  anchor_copy (path, older);
  /* the station goes on: another batch, its manifest leaves the station */
  g_autofree gchar *dir = g_build_filename (f->tmp, "manifest-2", NULL);
  st_closed_batch (f, dir, "605");
  g_autofree gchar *out = NULL;
  g_assert_cmpint (anchor_verify (f, dir, &out), ==, 0);
  g_assert_cmpint (st_service_stop (f), ==, 0);
  /* and the older copy is put back */
  anchor_copy (older, path);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (anchor_verify (f, dir, &out), ==, 1);
  g_assert_nonnull (strstr (out, "HSM anchor: FAILED"));
  g_assert_nonnull (strstr (out, "manifest-2: FAILED"));
  g_assert_nonnull (strstr (out, "AUDIT LOG REJECTED"));
  /* the anchor did not move back when the service checkpointed the older log */
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (anchor_verify (f, NULL, &out), ==, 1);
  g_assert_nonnull (strstr (out, "HSM anchor: FAILED"));
}

int
main (int argc, char **argv)
{
  st_test_init (&argc, &argv);
  st_test_add_station ("/anchor/genuine", NULL, test_genuine);
  st_test_add_station ("/anchor/rechain-device-signed", NULL, test_rechain_device_signed);
  st_test_add_station ("/anchor/truncate", NULL, test_truncate);
  st_test_add_station ("/anchor/rollback", NULL, test_rollback);
  return g_test_run ();
}
