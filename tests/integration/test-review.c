/* Findings of the security review (issue 14) that the service's boundary
 * closes, each reproduced as the attack was made:
 *
 * /review/manifest-verify-not-regular: `manifest verify` on a folder whose
 * manifest.json is a symbolic link to /dev/zero, or a FIFO, hung or ate
 * memory. The client now opens the files without following links and
 * without blocking, and refuses anything but a regular file; the service
 * refuses a descriptor that is not one.
 *
 * /review/out-not-in-payload: `manifest export --out 'x","batch":999'`
 * added fields to the audit payload, which was built with printf. The
 * engine builds it with json-glib: the text is one string member.
 *
 * /review/manifest-export-no-replace (item 11b): `manifest export` into a
 * folder that held another batch's manifest replaced it without a word.
 * The client now refuses, before the service signs anything, unless
 * --force; the audit log records a forced replacement.
 *
 * /review/profile-outlives-ca (item 11a): `batch create` took a profile
 * whose validity outlived the issuing CA; then every unit of the line
 * failed. It is refused now, naming the fix, and a batch that holds such a
 * profile anyway (made before the check) does not start.
 *
 * /review/db-outside-home (item 7): with db= in station.conf pointing out
 * of the home, the database took the umask's mode (0644). Whatever the
 * umask, the station's files are 0600 in 0700 folders, an old database
 * open to others is closed to them, and a database folder others may
 * write to stops the service, naming the fix. */
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "st-test-run.h"

/* The review's batch: st_closed_batch with its seed. */
static gint64
st_review_batch (StFixture *f, const char *dir)
{
  return st_closed_batch (f, dir, "501");
}

static void
test_manifest_verify_not_regular (StFixture *f, gconstpointer data)
{
  g_autofree gchar *dir = g_build_filename (f->tmp, "manifest", NULL);
  st_review_batch (f, dir);
  g_autofree gchar *json = g_build_filename (dir, "manifest.json", NULL);
  g_autofree gchar *out = NULL, *err = NULL;
  g_assert_cmpint (st_run_station (f, &out, NULL, "manifest", "verify", dir, NULL), ==, 0);

  /* a link to /dev/zero: refused at once, saying why */
  g_assert_cmpint (g_unlink (json), ==, 0);
  g_assert_cmpint (symlink ("/dev/zero", json), ==, 0);
  g_clear_pointer (&out, g_free);
  gint64 t0 = g_get_monotonic_time ();
  g_assert_cmpint (st_run_station (f, &out, &err, "manifest", "verify", dir, NULL), ==, ST_RC_ERROR);
  g_assert_nonnull (strstr (err, "is not a regular file"));
  /* a FIFO nobody writes: refused, not waited on */
  g_assert_cmpint (g_unlink (json), ==, 0);
  g_assert_cmpint (mkfifo (json, 0600), ==, 0);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station (f, NULL, &err, "manifest", "verify", dir, NULL), ==, ST_RC_ERROR);
  g_assert_nonnull (strstr (err, "is not a regular file"));
  /* both answered at once (a generous bound: a hang is what is caught) */
  g_assert_cmpint (g_get_monotonic_time () - t0, <, 60 * G_USEC_PER_SEC);
}

static void
test_out_not_in_payload (StFixture *f, gconstpointer data)
{
  g_autofree gchar *evil = g_build_filename (f->tmp, "x\",\"batch\":999,\"y\":\"", NULL);
  gint64 batch = st_review_batch (f, NULL);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "manifest", "export", id, "--out", evil, NULL), ==, 0);
  g_autofree gchar *payload = st_sql (f, "SELECT payload FROM audit WHERE event = 'manifest-export' "
                                         "ORDER BY seq DESC LIMIT 1");
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  g_assert_true (json_parser_load_from_data (parser, payload, -1, &error));
  g_assert_no_error (error);
  JsonObject *o = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpuint (json_object_get_size (o), ==, 3);
  g_assert_cmpstr (json_object_get_string_member (o, "batch"), ==, id);
  g_assert_cmpstr (json_object_get_string_member (o, "out"), ==, evil);
  g_assert_cmpstr (json_object_get_string_member (o, "replace"), ==, "no");
}

static gint64
st_manifest_batch_id (const char *dir)
{
  g_autofree gchar *path = g_build_filename (dir, "manifest.json", NULL);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  g_assert_true (json_parser_load_from_file (parser, path, &error));
  g_assert_no_error (error);
  JsonObject *top = json_node_get_object (json_parser_get_root (parser));
  return json_object_get_int_member (json_object_get_object_member (top, "batch"), "id");
}

static void
test_manifest_export_no_replace (StFixture *f, gconstpointer data)
{
  g_autofree gchar *dir = g_build_filename (f->tmp, "manifest", NULL);
  gint64 first = st_closed_batch (f, dir, "501");
  gint64 second = st_closed_batch (f, NULL, "502");
  g_assert_cmpint (first, !=, second);
  g_autofree gchar *json = g_build_filename (dir, "manifest.json", NULL);
  g_autofree gchar *before = NULL;
  g_assert_true (g_file_get_contents (json, &before, NULL, NULL));

  /* the second batch into the first one's folder: refused, naming the fix */
  g_autofree gchar *id2 = g_strdup_printf ("%" G_GINT64_FORMAT, second);
  g_autofree gchar *err = NULL;
  g_assert_cmpint (st_run_station (f, NULL, &err, "manifest", "export", id2, "--out", dir, NULL), ==, ST_RC_ERROR);
  g_assert_nonnull (strstr (err, "already holds a manifest"));
  g_assert_nonnull (strstr (err, "--force"));
  g_autofree gchar *after = NULL;
  g_assert_true (g_file_get_contents (json, &after, NULL, NULL));
  g_assert_cmpstr (after, ==, before);
  g_assert_cmpint (st_manifest_batch_id (dir), ==, first);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "manifest", "verify", dir, NULL), ==, 0);
  /* refused before the service signed anything: one export on record */
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM audit WHERE event = 'manifest-export'"), ==, 1);

  /* one file of a manifest left there is enough to refuse */
  g_autofree gchar *other = g_build_filename (f->tmp, "other", NULL);
  g_assert_cmpint (g_mkdir (other, 0700), ==, 0);
  g_autofree gchar *csv = g_build_filename (other, "manifest.csv", NULL);
  g_assert_true (g_file_set_contents (csv, "x\r\n", -1, NULL));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station (f, NULL, &err, "manifest", "export", id2, "--out", other, NULL), ==, ST_RC_ERROR);
  g_assert_nonnull (strstr (err, "already holds a manifest (manifest.csv)"));

  /* --force replaces it, and the audit log says so */
  g_assert_cmpint (st_run_station (f, NULL, NULL, "manifest", "export", id2, "--out", dir, "--force",
                                   NULL), ==, 0);
  g_assert_cmpint (st_manifest_batch_id (dir), ==, second);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "manifest", "verify", dir, NULL), ==, 0);
  g_autofree gchar *payload = st_sql (f, "SELECT payload FROM audit WHERE event = 'manifest-export' "
                                         "ORDER BY seq DESC LIMIT 1");
  g_assert_nonnull (strstr (payload, "\"replace\":\"yes\""));
}

static void
test_profile_outlives_ca (StFixture *f, gconstpointer data)
{
  /* the demo CA runs ten years and three days: 4000 days outlive it */
  const char *longer[] = { "validity-days=4000", NULL };
  g_autofree gchar *profile = st_profile_copy (f, "example-device-csr.profile", longer);
  g_autofree gchar *out = NULL, *err = NULL;
  g_assert_cmpint (st_run_station (f, &out, &err, "batch", "create", "--profile", profile,
                                   "--work-order", "WO-LONG", "--quantity", "2", NULL), ==, ST_RC_ERROR);
  g_assert_nonnull (strstr (err, "the batch was not created"));
  g_assert_nonnull (strstr (err, "validity-days=4000 issued now would be valid until"));
  g_assert_nonnull (strstr (err, "set validity-days to at most 36"));
  g_assert_nonnull (strstr (err, "or renew the CA"));
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM batches"), ==, 0);

  /* what fits is created: ten years, and no expiry */
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 2);
  g_assert_cmpint (st_create_batch (f, "example-station-key.profile", 1), >, batch);

  /* a batch that holds such a profile all the same does not start, and
   * says why; no unit is tried */
  g_autofree gchar *sql = g_strdup_printf ("UPDATE batches SET profile_text = replace(profile_text, "
                                           "'validity-days = 3650', 'validity-days = 4000') WHERE id = %"
                                           G_GINT64_FORMAT, batch);
  g_autofree gchar *updated = st_sql (f, sql);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  g_autofree gchar *port = st_start_devsim (f, "--units", "1", "--seed", "503", NULL);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station (f, &out, &err, "batch", "run", id, "--port", port, "--units", "1",
                                   "--wait", "3", NULL), ==, ST_RC_ERROR);
  g_assert_nonnull (strstr (err, "cannot run"));
  g_assert_nonnull (strstr (err, "set validity-days to at most"));
  g_assert_null (strstr (err, "check the socket"));
  g_assert_null (strstr (out, "check the socket"));
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM units"), ==, 0);
}

/* Every file under @dir is 0600 and every folder 0700 (sockets aside). */
static void
st_assert_private_tree (const char *dir)
{
  GStatBuf st;
  g_assert_cmpint (g_lstat (dir, &st), ==, 0);
  g_test_message ("%04o %s", (guint) (st.st_mode & 07777), dir);
  if (S_ISSOCK (st.st_mode))
    return;
  if (!S_ISDIR (st.st_mode))
    {
      g_assert_true (S_ISREG (st.st_mode));
      g_assert_cmpuint (st.st_mode & 07777, ==, 0600);
      return;
    }
  g_assert_cmpuint (st.st_mode & 07777, ==, 0700);
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  g_assert_nonnull (d);
  const char *name;
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree gchar *child = g_build_filename (dir, name, NULL);
      st_assert_private_tree (child);
    }
}

static void
test_db_outside_home (StFixture *f, gconstpointer data)
{
  mode_t old_umask = umask (022);
  st_service_stop (f);
  /* the database moved out of the home, as the review had it: 0644, in a
   * folder others may read */
  g_autofree gchar *outside = g_build_filename (f->tmp, "outside", NULL);
  g_assert_cmpint (g_mkdir (outside, 0755), ==, 0);
  g_assert_cmpint (g_chmod (outside, 0755), ==, 0);
  g_autofree gchar *db = g_build_filename (outside, "station.db", NULL);
  g_autofree gchar *home_db = g_build_filename (f->home, "station.db", NULL);
  g_autofree gchar *home_wal = g_strconcat (home_db, "-wal", NULL);
  g_autofree gchar *home_shm = g_strconcat (home_db, "-shm", NULL);
  g_assert_false (g_file_test (home_wal, G_FILE_TEST_EXISTS));  /* checkpointed at the stop */
  g_unlink (home_shm);
  g_assert_cmpint (g_rename (home_db, db), ==, 0);
  g_assert_cmpint (g_chmod (db, 0644), ==, 0);
  g_autofree gchar *conf = g_build_filename (f->home, "station.conf", NULL);
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_autoptr(GError) error = NULL;
  g_assert_true (g_key_file_load_from_file (kf, conf, G_KEY_FILE_KEEP_COMMENTS, &error));
  g_key_file_set_string (kf, "station", "db", db);
  g_assert_true (g_key_file_save_to_file (kf, conf, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (conf, 0600), ==, 0);

  /* the service writes there: a batch, its audit entries */
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 1);
  g_assert_cmpint (batch, >, 0);
  g_autofree gchar *wal = g_strconcat (db, "-wal", NULL);
  g_autofree gchar *shm = g_strconcat (db, "-shm", NULL);
  st_assert_private_tree (db);
  st_assert_private_tree (wal);
  st_assert_private_tree (shm);
  /* and everything in the home is the service's alone */
  st_assert_private_tree (f->home);

  /* a database folder others may write to: the service does not start */
  st_service_stop (f);
  g_assert_cmpint (g_chmod (outside, 0777), ==, 0);
  g_autofree gchar *out = NULL, *err = NULL;
  int rc = st_run_tool (&out, &err, g_getenv ("ST_STATIOND"), "--home", f->home, NULL);
  g_assert_cmpint (g_chmod (outside, 0755), ==, 0);
  g_assert_cmpint (rc, ==, ST_RC_ERROR);
  g_assert_nonnull (strstr (err, "may be written by other users (mode 0777)"));
  g_assert_nonnull (strstr (err, "chmod 700"));
  umask (old_umask);
}

int
main (int argc, char **argv)
{
  st_test_init (&argc, &argv);
  st_test_add_station ("/review/manifest-verify-not-regular", NULL, test_manifest_verify_not_regular);
  st_test_add_station ("/review/out-not-in-payload", NULL, test_out_not_in_payload);
  st_test_add_station ("/review/manifest-export-no-replace", NULL, test_manifest_export_no_replace);
  st_test_add_station ("/review/profile-outlives-ca", NULL, test_profile_outlives_ca);
  st_test_add_station ("/review/db-outside-home", NULL, test_db_outside_home);
  return g_test_run ();
}
