/* Operators, roles and the audit trail end to end: the real CLI on a fresh
 * demo station (demo operators op/1111, lead/2222, qa/3333, admin/4444),
 * station-devsim devices, the database file tampered with through SQLite,
 * and a checkpoint signature checked with the stock openssl CLI. */
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <sqlite3.h>
#include <string.h>

#include "st-test-run.h"
#include "st-test-json.h"

static void
st_db_sql (StFixture *f, const char *sql)
{
  g_autofree gchar *path = g_build_filename (f->home, "station.db", NULL);
  sqlite3 *db = NULL;
  g_assert_cmpint (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READWRITE, NULL), ==, SQLITE_OK);
  sqlite3_busy_timeout (db, 5000);
  char *msg = NULL;
  int rc = sqlite3_exec (db, sql, NULL, NULL, &msg);
  if (rc != SQLITE_OK)
    g_test_message ("sqlite: %s", msg);
  sqlite3_free (msg);
  g_assert_cmpint (rc, ==, SQLITE_OK);
  sqlite3_close (db);
}

static void
test_refusals (StFixture *f, gconstpointer data)
{
  g_autofree gchar *profile = st_profile_path ("example-device-csr.profile");
  g_autofree gchar *out = NULL, *err = NULL;
  /* each role only does its own work, and a refusal names the role needed */
  g_assert_cmpint (st_run_station_as (f, "qa", "3333", NULL, &out, &err, "batch", "create", "--profile", profile,
                              "--work-order", "WO-R", "--quantity", "2", NULL), ==, ST_RC_AUTH);
  g_assert_nonnull (strstr (err, "creating a batch needs the role lead; operator 'qa' is qa"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station_as (f, "op", "1111", NULL, NULL, &err, "operator", "list", NULL), ==, ST_RC_AUTH);
  g_assert_nonnull (strstr (err, "needs the role admin"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station_as (f, "admin", "4444", NULL, NULL, &err, "unit", "verify", "--port", "/dev/null", NULL), ==, ST_RC_AUTH);
  g_assert_nonnull (strstr (err, "verifying a unit needs the role qa"));
  g_clear_pointer (&err, g_free);
  /* nobody named */
  g_assert_cmpint (st_run_station_as (f, "", "1111", NULL, NULL, &err, "batch", "list", NULL), ==, ST_RC_AUTH);
  g_assert_nonnull (strstr (err, "--operator NAME"));
  g_clear_pointer (&err, g_free);
  /* the lead creates; any role lists */
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_station_as (f, "lead", "2222", NULL, &out, NULL, "batch", "create", "--profile", profile,
                              "--work-order", "WO-R", "--quantity", "2", NULL), ==, 0);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_station_as (f, "qa", "3333", NULL, &out, NULL, "batch", "list", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "WO-R"));

  /* five wrong PINs lock the operator until an admin unlocks them */
  for (int i = 1; i <= 5; i++)
    {
      g_clear_pointer (&err, g_free);
      g_assert_cmpint (st_run_station_as (f, "op", "9999", NULL, NULL, &err, "batch", "list", NULL), ==, ST_RC_AUTH);
      g_assert_nonnull (strstr (err, i < 5 ? "wrong PIN for operator 'op'" : "now locked"));
    }
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station_as (f, "op", "1111", NULL, NULL, &err, "batch", "list", NULL), ==, ST_RC_AUTH);
  g_assert_nonnull (strstr (err, "locked"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station_as (f, "lead", "2222", NULL, NULL, &err, "operator", "unlock", "op", NULL), ==, ST_RC_AUTH);
  g_assert_cmpint (st_run_station_as (f, "admin", "4444", NULL, NULL, NULL, "operator", "unlock", "op", NULL), ==, 0);
  g_assert_cmpint (st_run_station_as (f, "op", "1111", NULL, NULL, NULL, "batch", "list", NULL), ==, 0);

  /* an admin adds an operator (its PIN from STATION_NEW_OPERATOR_PIN) and changes roles */
  const char *add[] = { "--operator", "admin", "operator", "add", "vic", "--role", "qa", NULL };
  const char *env[] = { "STATION_OPERATOR_PIN=4444", "STATION_NEW_OPERATOR_PIN=8642", NULL };
  g_assert_cmpint (st_run_stationv (f, env, NULL, NULL, add), ==, 0);
  g_assert_cmpint (st_run_station_as (f, "vic", "8642", NULL, NULL, NULL, "audit", "verify", NULL), ==, 0);
  g_assert_cmpint (st_run_station_as (f, "admin", "4444", NULL, NULL, NULL, "operator", "set-role", "vic",
                              "--role", "operator", NULL), ==, 0);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station_as (f, "vic", "8642", NULL, NULL, &err, "audit", "verify", NULL), ==, ST_RC_AUTH);
  g_assert_nonnull (strstr (err, "operator 'vic' is operator"));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_station_as (f, "admin", "4444", NULL, &out, NULL, "operator", "list", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "vic"));

  /* every action above is in the audit log, with who did it */
  g_autofree gchar *log = g_build_filename (f->tmp, "audit.jsonl", NULL);
  g_assert_cmpint (st_run_station_as (f, "qa", "3333", NULL, NULL, NULL, "audit", "export", "--out", log, NULL), ==, 0);
  g_autofree gchar *text = NULL;
  g_assert_true (g_file_get_contents (log, &text, NULL, NULL));
  g_assert_nonnull (strstr (text, "\"operator\":\"lead\",\"event\":\"batch-create\""));
  g_assert_nonnull (strstr (text, "\"operator\":\"qa\",\"event\":\"refused\""));
  g_assert_nonnull (strstr (text, "\"operator\":\"op\",\"event\":\"operator-locked\""));
  g_assert_nonnull (strstr (text, "\"operator\":\"admin\",\"event\":\"operator-unlock\""));
  g_assert_nonnull (strstr (text, "\"operator\":\"admin\",\"event\":\"operator-add\""));
  g_assert_nonnull (strstr (text, "\"operator\":\"admin\",\"event\":\"operator-set-role\""));
}

/* The checkpoint of an audit export with sequence number @seq (the last one
 * when @seq < 0). */
static JsonObject *
st_find_checkpoint (const char *text, gint64 seq, JsonParser **parser_out)
{
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  JsonObject *found = NULL;
  for (guint i = 0; lines[i] != NULL; i++)
    {
      if (strstr (lines[i], "\"type\":\"checkpoint\"") == NULL)
        continue;
      g_autoptr(JsonParser) parser = json_parser_new ();
      g_assert_true (json_parser_load_from_data (parser, lines[i], -1, NULL));
      JsonObject *o = json_node_get_object (json_parser_get_root (parser));
      if (seq >= 0 && json_object_get_int_member (o, "seq") != seq)
        continue;
      g_clear_object (parser_out);
      *parser_out = g_steal_pointer (&parser);
      found = o;
    }
  g_assert_nonnull (found);
  return found;
}

/* The last checkpoint of an audit export. */
static JsonObject *
st_last_checkpoint (const char *text, JsonParser **parser_out)
{
  return st_find_checkpoint (text, -1, parser_out);
}

static void
test_audit (StFixture *f, gconstpointer data)
{
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 2);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  g_autofree gchar *port = st_start_devsim (f, "--units", "2", "--seed", "77", NULL);
  g_autofree gchar *out = NULL, *err = NULL;
  g_assert_cmpint (st_run_station_as (f, "op", "1111", NULL, &out, NULL, "batch", "run", id, "--port", port,
                              "--units", "2", NULL), ==, 0);
  g_assert_cmpint (st_run_station_as (f, "lead", "2222", NULL, NULL, NULL, "batch", "close", id, NULL), ==, 0);
  g_autofree gchar *dir = g_build_filename (f->tmp, "manifest", NULL);
  g_assert_cmpint (st_run_station_as (f, "lead", "2222", NULL, NULL, NULL, "manifest", "export", id, "--out", dir, NULL), ==, 0);
  g_assert_cmpint (st_run_station_as (f, "qa", "3333", NULL, NULL, NULL, "manifest", "verify", dir, NULL), ==, 0);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_station_as (f, "qa", "3333", NULL, &out, NULL, "audit", "verify", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "audit chain: ok"));
  g_assert_nonnull (strstr (out, "checkpoint signatures: ok"));

  /* the export, and its last checkpoint checked with stock openssl */
  g_autofree gchar *log = g_build_filename (f->tmp, "audit.jsonl", NULL);
  g_assert_cmpint (st_run_station_as (f, "qa", "3333", NULL, NULL, NULL, "audit", "export", "--out", log, NULL), ==, 0);
  g_autofree gchar *text = NULL;
  g_assert_true (g_file_get_contents (log, &text, NULL, NULL));
  g_assert_nonnull (strstr (text, "\"operator\":\"op\",\"event\":\"cert-reserve\""));
  g_assert_nonnull (strstr (text, "\"operator\":\"lead\",\"event\":\"batch-close\""));
  g_autoptr(JsonParser) cp_parser = NULL;
  JsonObject *cp = st_last_checkpoint (text, &cp_parser);
  g_autofree gchar *msg_path = g_build_filename (f->tmp, "checkpoint.txt", NULL);
  g_autofree gchar *sig_path = g_build_filename (f->tmp, "checkpoint.sig", NULL);
  g_autofree gchar *cert_path = g_build_filename (f->tmp, "signer.pem", NULL);
  g_autofree gchar *pub_path = g_build_filename (f->tmp, "signer-pub.pem", NULL);
  gsize sig_len = 0;
  g_autofree guchar *sig = g_base64_decode (json_object_get_string_member (cp, "signature"), &sig_len);
  g_assert_true (g_file_set_contents (msg_path, json_object_get_string_member (cp, "message"), -1, NULL));
  g_assert_true (g_file_set_contents (sig_path, (const char *) sig, (gssize) sig_len, NULL));
  g_assert_true (g_file_set_contents (cert_path, json_object_get_string_member (cp, "signer_cert"), -1, NULL));
  g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "x509", "-in", cert_path, "-pubkey", "-noout",
                                "-out", pub_path, NULL), ==, 0);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_tool (&out, NULL, "openssl", "dgst", "-sha256", "-verify", pub_path,
                                "-signature", sig_path, msg_path, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "Verified OK"));
  /* and a message that is not the signed one fails with openssl too */
  g_assert_true (g_file_set_contents (msg_path, "station-audit-checkpoint/1\nseq=1\nhash=00\n", -1, NULL));
  g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "dgst", "-sha256", "-verify", pub_path,
                                "-signature", sig_path, msg_path, NULL), !=, 0);

  /* the manifest embeds that checkpoint */
  g_autoptr(JsonParser) mp = st_test_load_manifest (dir);
  JsonObject *mcp = json_object_get_object_member (json_node_get_object (json_parser_get_root (mp)),
                                                   "audit_checkpoint");
  g_assert_nonnull (mcp);
  /* (commands that wrote entries after the export signed later ones at exit) */
  g_autoptr(JsonParser) ecp_parser = NULL;
  JsonObject *ecp = st_find_checkpoint (text, json_object_get_int_member (mcp, "seq"), &ecp_parser);
  g_assert_cmpstr (json_object_get_string_member (mcp, "signature"), ==,
                   json_object_get_string_member (ecp, "signature"));
  g_assert_cmpint (json_object_get_int_member (mcp, "seq"), <=, json_object_get_int_member (cp, "seq"));
  gint64 cp_seq = json_object_get_int_member (cp, "seq");
  g_assert_cmpint (cp_seq, >, 8);

  /* tampering through SQLite (the triggers dropped as an attacker would) */
  st_db_sql (f, "DROP TRIGGER audit_append_only; DROP TRIGGER audit_no_delete;");
  st_db_sql (f, "UPDATE audit SET payload = replace (payload, 'WO-TEST-1', 'WO-EVIL') WHERE event = 'batch-create'");
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_station_as (f, "qa", "3333", NULL, &out, &err, "audit", "verify", NULL), ==, 1);
  g_assert_nonnull (strstr (out, "(batch-create by lead) was changed"));
  g_assert_nonnull (strstr (out, "AUDIT LOG REJECTED"));
  g_assert_nonnull (strstr (err, "the audit log does not verify"));
  st_db_sql (f, "UPDATE audit SET payload = replace (payload, 'WO-EVIL', 'WO-TEST-1') WHERE event = 'batch-create'");
  g_assert_cmpint (st_run_station_as (f, "qa", "3333", NULL, NULL, NULL, "audit", "verify", NULL), ==, 0);

  st_db_sql (f, "DELETE FROM audit WHERE seq = 4");
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_station_as (f, "qa", "3333", NULL, &out, NULL, "audit", "verify", NULL), ==, 1);
  g_assert_nonnull (strstr (out, "entries 4 to 4 are missing (deleted)"));
  /* db check sees it too */
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_station_as (f, "qa", "3333", NULL, &out, NULL, "db", "check", NULL), ==, 1);
  g_assert_nonnull (strstr (out, "missing (deleted)"));

  /* truncated behind the last checkpoint */
  g_autofree gchar *cut = g_strdup_printf ("DELETE FROM audit WHERE seq >= %" G_GINT64_FORMAT, cp_seq - 2);
  st_db_sql (f, cut);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_station_as (f, "qa", "3333", NULL, &out, NULL, "audit", "verify", NULL), ==, 1);
  g_assert_nonnull (strstr (out, "truncated behind a signed checkpoint"));

  /* a forged checkpoint signature */
  st_db_sql (f, "DROP TRIGGER audit_checkpoints_append_only;"
                "UPDATE audit_checkpoints SET seq = 2, hash = (SELECT hash FROM audit WHERE seq = 2)");
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_station_as (f, "qa", "3333", NULL, &out, NULL, "audit", "verify", NULL), ==, 1);
  g_assert_nonnull (strstr (out, "its signature does not verify"));
}

/* Past the cap of voided certificates (quantity / 10 + 5) the line stops
 * for a lead; allow-more-voids lets it go on. */
static void
test_void_cap (StFixture *f, gconstpointer data)
{
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 3);   /* cap 5 */
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  g_autofree gchar *port = st_start_devsim (f, "--units", "8", "--seed", "91", "--fault", "readback-differs", NULL);
  g_autofree gchar *out = NULL, *err = NULL;
  int rc = st_run_station_as (f, "op", "1111", NULL, &out, &err, "batch", "run", id, "--port", port, "--units", "8",
                      "--wait", "20", NULL);
  g_assert_cmpint (rc, ==, ST_RC_STOPPED);
  g_assert_cmpuint (st_count_lines (out, "FAILED"), ==, 6);
  g_assert_nonnull (strstr (err, "has voided 6 certificates, more than the cap of 5: a lead must review"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station_as (f, "op", "1111", NULL, NULL, &err, "batch", "allow-more-voids", id, NULL), ==, ST_RC_AUTH);
  g_assert_nonnull (strstr (err, "needs the role lead"));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_station_as (f, "lead", "2222", NULL, &out, NULL, "batch", "allow-more-voids", id, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "the cap goes from 5 to 10"));
  /* the line goes on: the next device is provisioned (and fails its read-back again) */
  g_clear_pointer (&out, g_free);
  rc = st_run_station_as (f, "op", "1111", NULL, &out, NULL, "batch", "run", id, "--port", port, "--units", "1",
                  "--wait", "20", NULL);
  g_assert_cmpint (rc, ==, 1);
  g_assert_cmpuint (st_count_lines (out, "FAILED"), ==, 1);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_station_as (f, "lead", "2222", NULL, &out, NULL, "batch", "show", id, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "7 voided"));
  g_assert_cmpint (st_run_station_as (f, "qa", "3333", NULL, NULL, NULL, "db", "check", NULL), ==, 0);
}

/* Every exit code of station(1) (EXIT STATUS), each from the situation
 * itself: a usage error, a wrong PIN and a refused role, an unknown batch,
 * a manifest that fails its check, a file in the way. (The line stopped by
 * the HSM or a full disk: /faults/device-error-stops, /storage/disk-full.) */
static void
test_exit_codes (StFixture *f, gconstpointer data)
{
  g_autofree gchar *out = NULL, *err = NULL;
  /* 0: it worked */
  g_assert_cmpint (st_run_station_as (f, "op", "1111", NULL, NULL, NULL, "batch", "list", NULL), ==, 0);

  /* 3: the command line is wrong; nothing asked of the service, so no PIN */
  g_assert_cmpint (st_run_station_as (f, "op", "", NULL, NULL, &err, "bach", "list", NULL), ==, ST_RC_USAGE);
  g_assert_cmpstr (err, ==, "station: unknown command 'bach': did you mean 'batch'?\n");
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station_as (f, "op", "", NULL, NULL, &err, "batch", "lsit", NULL), ==, ST_RC_USAGE);
  g_assert_cmpstr (err, ==, "station: unknown batch command 'lsit': did you mean 'list'?\n");
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station_as (f, "op", "", NULL, NULL, &err, "manifest", "verfiy", "x", NULL), ==, ST_RC_USAGE);
  g_assert_cmpstr (err, ==, "station: unknown manifest command 'verfiy': did you mean 'verify'?\n");
  g_clear_pointer (&err, g_free);
  /* nothing within two edits: where the commands are listed, not the list */
  g_assert_cmpint (st_run_station_as (f, "op", "", NULL, NULL, &err, "provision", NULL), ==, ST_RC_USAGE);
  g_assert_cmpstr (err, ==, "station: unknown command 'provision': 'station --help' lists the commands\n");
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station_as (f, "op", "1111", NULL, NULL, &err, "batch", "show", "first", NULL), ==, ST_RC_USAGE);
  g_assert_nonnull (strstr (err, "'first' is not a batch id"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station_as (f, "op", "1111", NULL, NULL, &err, "batch", "list", "--colour", NULL), ==, ST_RC_USAGE);
  g_assert_nonnull (strstr (err, "--colour"));
  g_clear_pointer (&err, g_free);

  /* 4: a wrong PIN, and a role that may not */
  g_assert_cmpint (st_run_station_as (f, "op", "1112", NULL, NULL, &err, "batch", "list", NULL), ==, ST_RC_AUTH);
  g_assert_nonnull (strstr (err, "wrong PIN for operator 'op'"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station_as (f, "op", "1111", NULL, NULL, &err, "operator", "list", NULL), ==, ST_RC_AUTH);
  g_assert_nonnull (strstr (err, "needs the role admin"));
  g_clear_pointer (&err, g_free);

  /* 5: no such batch */
  g_assert_cmpint (st_run_station_as (f, "lead", "2222", NULL, NULL, &err, "batch", "show", "4711", NULL), ==, ST_RC_NOT_FOUND);
  g_assert_nonnull (strstr (err, "4711"));
  g_clear_pointer (&err, g_free);

  /* 1: the check ran and failed: a manifest changed after its export */
  g_autofree gchar *dir = g_build_filename (f->tmp, "manifest", NULL);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, st_closed_batch (f, dir, "1701"));
  g_autofree gchar *json = g_build_filename (dir, "manifest.json", NULL);
  g_autofree gchar *text = NULL;
  g_assert_true (g_file_get_contents (json, &text, NULL, NULL));
  gchar *wo = strstr (text, "WO-TEST-1");
  g_assert_nonnull (wo);
  wo[8] = '2';
  g_assert_true (g_file_set_contents (json, text, -1, NULL));
  g_assert_cmpint (st_run_station_as (f, "qa", "3333", NULL, &out, NULL, "manifest", "verify", dir, NULL), ==, ST_RC_CHECK);
  g_assert_nonnull (strstr (out, "FAIL  manifest.json"));

  /* 2: anything else: the manifest's folder already holds one */
  g_assert_cmpint (st_run_station_as (f, "lead", "2222", NULL, NULL, &err, "manifest", "export", id, "--out", dir, NULL), ==, ST_RC_ERROR);
  g_assert_nonnull (strstr (err, "--force"));
}

int
main (int argc, char **argv)
{
  st_test_init (&argc, &argv);
  st_test_add_station ("/roles/refusals", NULL, test_refusals);
  st_test_add_station ("/roles/audit", NULL, test_audit);
  st_test_add_station ("/roles/void-cap", NULL, test_void_cap);
  st_test_add_station ("/roles/exit-codes", NULL, test_exit_codes);
  return g_test_run ();
}
