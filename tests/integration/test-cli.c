/* The CLI as scripts and a QA desk use it (issue 17; station(1),
 * docs/cli-json.md): `manifest verify --root` off the station, as an
 * unprivileged user with nothing of a station; `--json` documents held
 * against their schemas (docs/schema/cli/, checked by python3-jsonschema)
 * and against the plain output and the database; exit codes from their
 * real causes; commands that have nothing to say print nothing. */
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "st-test-run.h"

/* ---- off-station verify --------------------------------------------------- */

/* The station's signer pin, as the key ceremony's record has it. */
static gchar *
st_cli_signer_pin (StFixture *f)
{
  g_autofree gchar *conf = g_build_filename (f->home, "station.conf", NULL);
  g_autofree gchar *text = NULL;
  g_assert_true (g_file_get_contents (conf, &text, NULL, NULL));
  const char *at = strstr (text, "signing-key-sha256=");
  g_assert_nonnull (at);
  at += strlen ("signing-key-sha256=");
  g_assert_cmpuint (strspn (at, "0123456789abcdef"), ==, 64);
  return g_strndup (at, 64);
}

/* A folder of the QA PC's user (nobody): what it was handed. */
static void
st_cli_give_nobody (const char *path)
{
  g_assert_cmpint (st_run_tool (NULL, NULL, "chown", "-R", "nobody:nogroup", path, NULL), ==, 0);
}

/* `station ARGS...` as nobody, with an empty HOME and nothing else in the
 * environment: no STATION_HOME, no D-Bus address, no PIN. */
static int
st_cli_qa_pc (const char *desk, gchar **out, gchar **err, const char *first, ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_ptr_array_add (argv, (gpointer) g_getenv ("ST_STATION"));
  va_list ap;
  va_start (ap, first);
  for (const char *a = first; a != NULL; a = va_arg (ap, const char *))
    g_ptr_array_add (argv, (gpointer) a);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  g_autofree gchar *home = g_strdup_printf ("HOME=%s/home", desk);
  const char *env[] = { home, NULL };
  return st_run_nobody (desk, env, out, err, (const char *const *) argv->pdata);
}

/* Writes the @n-th certificate (0-based) of the PEM file @from to @to. */
static void
st_cli_nth_cert (const char *from, guint n, const char *to)
{
  g_autofree gchar *text = NULL;
  g_assert_true (g_file_get_contents (from, &text, NULL, NULL));
  const char *at = text;
  for (guint i = 0; i < n; i++)
    {
      at = strstr (at, "-----END CERTIFICATE-----");
      g_assert_nonnull (at);
      at += strlen ("-----END CERTIFICATE-----\n");
    }
  const char *end = strstr (at, "-----END CERTIFICATE-----");
  g_assert_nonnull (end);
  g_autofree gchar *one = g_strndup (at, (gsize) (end - at) + strlen ("-----END CERTIFICATE-----\n"));
  g_assert_true (g_file_set_contents (to, one, -1, NULL));
}

static void
test_offline_verify (StFixture *f, gconstpointer data)
{
  if (getuid () != 0)
    {
      g_test_skip ("changing to the user nobody needs root");
      return;
    }
  g_autofree gchar *exported = g_build_filename (f->tmp, "exported", NULL);
  st_closed_batch (f, exported, "1717");
  g_autofree gchar *pin = st_cli_signer_pin (f);
  /* No service: the station is off, as it is for a customer. */
  st_service_stop (f);

  /* The QA desk: the manifest folder and the root, nothing else. nobody may
   * pass through the test's folder to its own. */
  g_assert_cmpint (g_chmod (f->tmp, 0711), ==, 0);
  g_autofree gchar *desk = g_build_filename (f->tmp, "desk", NULL);
  g_autofree gchar *home = g_build_filename (desk, "home", NULL);
  g_assert_cmpint (g_mkdir_with_parents (home, 0700), ==, 0);
  g_autofree gchar *dir = g_build_filename (desk, "manifest", NULL);
  g_assert_cmpint (st_run_tool (NULL, NULL, "cp", "-r", exported, dir, NULL), ==, 0);
  g_autofree gchar *root = g_build_filename (desk, "root.pem", NULL);
  g_autofree gchar *station_root = g_build_filename (f->home, "demo-root.pem", NULL);
  g_assert_cmpint (st_run_tool (NULL, NULL, "cp", station_root, root, NULL), ==, 0);
  st_cli_give_nobody (desk);

  /* a good manifest passes */
  g_autofree gchar *out = NULL, *err = NULL;
  g_assert_cmpint (st_cli_qa_pc (desk, &out, &err, "manifest", "verify", "manifest", "--root", "root.pem",
                                 "--signer-pin", pin, NULL), ==, 0);
  g_assert_cmpuint (st_count_lines (out, "FAIL"), ==, 0);
  g_assert_cmpuint (st_count_lines (out, "signer pin: the one given (--signer-pin)"), ==, 1);
  g_assert_nonnull (strstr (out, "is the pinned station signer"));
  g_assert_true (g_str_has_suffix (out, "manifest verified\n"));
  g_assert_cmpstr (err, ==, "");
  /* the empty HOME stays empty: nothing of a station is made */
  g_autoptr(GDir) h = g_dir_open (home, 0, NULL);
  g_assert_nonnull (h);
  g_assert_null (g_dir_read_name (h));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* no pin: the root names a company's stations, not this one (refused,
   * naming the signer's key to compare with the ceremony's record) */
  g_assert_cmpint (st_cli_qa_pc (desk, &out, &err, "manifest", "verify", "manifest", "--root", "root.pem",
                                 NULL), ==, ST_RC_CHECK);
  g_assert_nonnull (strstr (out, "FAIL  signer: no pin to hold"));
  g_assert_nonnull (strstr (out, pin));
  g_assert_true (g_str_has_suffix (out, "MANIFEST REJECTED\n"));
  g_assert_nonnull (strstr (err, "failed"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* a wrong root: a CA of its own, made with stock openssl */
  g_autofree gchar *other_key = g_build_filename (f->tmp, "other.key", NULL);
  g_autofree gchar *other = g_build_filename (desk, "other-root.pem", NULL);
  g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                "ec_paramgen_curve:P-256", "-nodes", "-keyout", other_key, "-out", other,
                                "-subj", "/O=Elsewhere/CN=Another root", "-days", "2", NULL), ==, 0);
  st_cli_give_nobody (other);
  g_assert_cmpint (st_cli_qa_pc (desk, &out, NULL, "manifest", "verify", "manifest", "--root",
                                 "other-root.pem", "--signer-pin", pin, NULL), ==, ST_RC_CHECK);
  g_assert_cmpuint (st_count_lines (out, "FAIL"), >=, 1);
  g_assert_true (g_str_has_suffix (out, "MANIFEST REJECTED\n"));
  g_clear_pointer (&out, g_free);

  /* not exactly one root CA certificate: refused before anything is read */
  struct {
    const char *name;
    const char *message;
  } bad[] = {
    { "manifest/ca-chain.pem", "holds 2 certificates" },  /* the chain, not its root */
    { "issuing.pem", "is not a root" },                   /* the issuing CA alone */
    { "leaf.pem", "is not a CA certificate" },            /* a certificate that is no CA */
    { "manifest/manifest.json", "no PEM certificate" },   /* no certificate at all */
  };
  g_autofree gchar *chain = g_build_filename (dir, "ca-chain.pem", NULL);
  g_autofree gchar *issuing = g_build_filename (desk, "issuing.pem", NULL);
  st_cli_nth_cert (chain, 0, issuing);
  g_autofree gchar *leaf = g_build_filename (desk, "leaf.pem", NULL);
  g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                "ec_paramgen_curve:P-256", "-nodes", "-keyout", other_key, "-out", leaf,
                                "-subj", "/CN=Not a CA", "-addext", "basicConstraints=critical,CA:FALSE",
                                "-days", "2", NULL), ==, 0);
  st_cli_give_nobody (desk);
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_assert_cmpint (st_cli_qa_pc (desk, &out, &err, "manifest", "verify", "manifest", "--root",
                                     bad[i].name, "--signer-pin", pin, NULL), ==, ST_RC_ERROR);
      g_assert_cmpstr (out, ==, "");
      g_assert_nonnull (strstr (err, bad[i].message));
      g_clear_pointer (&out, g_free);
      g_clear_pointer (&err, g_free);
    }
  /* no such root file, no such folder */
  g_assert_cmpint (st_cli_qa_pc (desk, NULL, &err, "manifest", "verify", "manifest", "--root", "nothing.pem",
                                 "--signer-pin", pin, NULL), ==, ST_RC_NOT_FOUND);
  g_assert_nonnull (strstr (err, "nothing.pem"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_cli_qa_pc (desk, NULL, &err, "manifest", "verify", "elsewhere", "--root", "root.pem",
                                 "--signer-pin", pin, NULL), ==, ST_RC_NOT_FOUND);
  g_assert_nonnull (strstr (err, "elsewhere is not a folder"));
  g_clear_pointer (&err, g_free);

  /* a tampered manifest fails: one byte of a unit's line changed */
  g_autofree gchar *units = g_build_filename (dir, "units.jsonl", NULL);
  g_autofree gchar *text = NULL;
  g_assert_true (g_file_get_contents (units, &text, NULL, NULL));
  gchar *state = strstr (text, "\"state\":\"done\"");
  g_assert_nonnull (state);
  state[10] = 'D';
  g_assert_true (g_file_set_contents (units, text, -1, NULL));
  st_cli_give_nobody (units);
  g_assert_cmpint (st_cli_qa_pc (desk, &out, &err, "manifest", "verify", "manifest", "--root", "root.pem",
                                 "--signer-pin", pin, NULL), ==, ST_RC_CHECK);
  g_assert_nonnull (strstr (out, "FAIL  units.jsonl"));
  g_assert_true (g_str_has_suffix (out, "MANIFEST REJECTED\n"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* a link in the folder is refused, as the service refuses it */
  g_assert_cmpint (g_unlink (units), ==, 0);
  g_autofree gchar *exported_units = g_build_filename (exported, "units.jsonl", NULL);
  g_assert_cmpint (symlink (exported_units, units), ==, 0);
  g_assert_cmpint (st_cli_qa_pc (desk, &out, &err, "manifest", "verify", "manifest", "--root", "root.pem",
                                 "--signer-pin", pin, NULL), ==, ST_RC_ERROR);
  g_assert_nonnull (strstr (err, "is not a regular file"));
}

/* ---- --json ------------------------------------------------------------------ */

/* @out held against docs/schema/cli/@command.json by tests/cli/check-json.py
 * (python3-jsonschema), then parsed: its root object. */
static JsonObject *
st_cli_json_checked (StFixture *f, const char *command, const char *out, JsonParser **parser)
{
  g_autofree gchar *schema = g_strdup_printf ("%s/docs/schema/cli/%s.json", g_getenv ("ST_SOURCE_DIR"), command);
  g_autofree gchar *checker = g_build_filename (g_getenv ("ST_SOURCE_DIR"), "tests", "cli", "check-json.py", NULL);
  g_autofree gchar *doc = g_strdup_printf ("%s/%s.json", f->tmp, command);
  g_assert_true (g_file_set_contents (doc, out, -1, NULL));
  g_autofree gchar *cerr = NULL;
  int rc = st_run_tool (NULL, &cerr, "python3", checker, schema, doc, NULL);
  if (rc != 0)
    g_test_message ("check-json.py %s: %s", command, cerr);
  g_assert_cmpint (rc, ==, 0);
  *parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  g_assert_true (json_parser_load_from_data (*parser, out, -1, &error));
  g_assert_no_error (error);
  JsonObject *o = json_node_get_object (json_parser_get_root (*parser));
  /* the format the schema names: station-cli-COMMAND/N */
  g_autoptr(JsonParser) sp = json_parser_new ();
  g_assert_true (json_parser_load_from_file (sp, schema, NULL));
  JsonObject *props = json_object_get_object_member (json_node_get_object (json_parser_get_root (sp)), "properties");
  const char *format = json_object_get_string_member (json_object_get_object_member (props, "format"), "const");
  g_autofree gchar *prefix = g_strdup_printf ("station-cli-%s/", command);
  g_assert_true (g_str_has_prefix (format, prefix));
  g_assert_cmpstr (json_object_get_string_member (o, "format"), ==, format);
  return o;
}

/* ISO 8601 UTC of a unix time the database holds. */
static gchar *
st_cli_sql_time (StFixture *f, const char *sql)
{
  gint64 t = st_sql_int (f, sql);
  g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc (t);
  return g_date_time_format (dt, "%Y-%m-%dT%H:%M:%SZ");
}

/* A JSON string member, "" for null. */
static const char *
st_cli_member (JsonObject *o, const char *name)
{
  JsonNode *n = json_object_get_member (o, name);
  g_assert_nonnull (n);
  return JSON_NODE_HOLDS_NULL (n) ? "" : json_node_get_string (n);
}

/* The "lines" of a check's document against the plain report: the same
 * lines, the check marks turned into "status". */
static void
st_cli_check_lines (JsonObject *o, const char *plain)
{
  JsonArray *lines = json_object_get_array_member (o, "lines");
  g_auto(GStrv) want = g_strsplit (plain, "\n", -1);
  guint n = json_array_get_length (lines);
  g_assert_cmpuint (n, >, 0);
  for (guint i = 0; i < n; i++)
    {
      JsonObject *l = json_array_get_object_element (lines, i);
      const char *status = json_object_get_string_member (l, "status");
      const char *text = json_object_get_string_member (l, "text");
      g_autofree gchar *line = g_strcmp0 (status, "ok") == 0 ? g_strdup_printf ("ok    %s", text)
                               : g_strcmp0 (status, "fail") == 0 ? g_strdup_printf ("FAIL  %s", text)
                               : g_strdup (text);
      g_assert_nonnull (want[i]);
      g_assert_cmpstr (line, ==, want[i]);
    }
}

static void
test_json (StFixture *f, gconstpointer data)
{
  /* a closed batch of two passed units with its manifest, and an open one
   * with a failed unit (its certificate voided: COMMIT answered STORAGE) */
  g_autofree gchar *dir = g_build_filename (f->tmp, "manifest", NULL);
  gint64 closed = st_closed_batch (f, dir, "1718");
  gint64 open = st_create_batch (f, "example-device-csr.profile", 3);
  g_autofree gchar *open_id = g_strdup_printf ("%" G_GINT64_FORMAT, open);
  g_autofree gchar *port = st_start_devsim (f, "--units", "1", "--seed", "1719", "--fault", "commit-storage", NULL);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "batch", "run", open_id, "--port", port, "--units", "1",
                                   NULL), ==, ST_RC_CHECK);
  st_stop_devsims (f);

  /* batch list */
  g_autofree gchar *out = NULL, *err = NULL, *plain = NULL;
  g_assert_cmpint (st_run_station (f, &out, &err, "batch", "list", "--json", NULL), ==, 0);
  g_assert_cmpstr (err, ==, "");
  g_autoptr(JsonParser) p_list = NULL;
  JsonObject *list = st_cli_json_checked (f, "batch-list", out, &p_list);
  JsonArray *batches = json_object_get_array_member (list, "batches");
  g_assert_cmpint (json_array_get_length (batches), ==, st_sql_int (f, "SELECT count(*) FROM batches"));
  g_assert_cmpint (json_array_get_length (batches), ==, 2);
  /* newest first */
  g_assert_cmpint (json_object_get_int_member (json_array_get_object_element (batches, 0), "id"), ==, open);
  for (guint i = 0; i < json_array_get_length (batches); i++)
    {
      JsonObject *b = json_array_get_object_element (batches, i);
      gint64 id = json_object_get_int_member (b, "id");
      g_autofree gchar *q = g_strdup_printf ("SELECT work_order FROM batches WHERE id = %" G_GINT64_FORMAT, id);
      g_autofree gchar *wo = st_sql (f, q);
      g_assert_cmpstr (json_object_get_string_member (b, "work_order"), ==, wo);
      g_autofree gchar *qq = g_strdup_printf ("SELECT quantity FROM batches WHERE id = %" G_GINT64_FORMAT, id);
      g_assert_cmpint (json_object_get_int_member (b, "quantity"), ==, st_sql_int (f, qq));
      g_autofree gchar *qt = g_strdup_printf ("SELECT created_at FROM batches WHERE id = %" G_GINT64_FORMAT, id);
      g_autofree gchar *created = st_cli_sql_time (f, qt);
      g_assert_cmpstr (json_object_get_string_member (b, "created_at"), ==, created);
      JsonObject *certs = json_object_get_object_member (b, "certificates");
      if (id == closed)
        {
          g_assert_cmpstr (json_object_get_string_member (b, "state"), ==, "closed");
          g_assert_cmpint (json_object_get_int_member (b, "done"), ==, 2);
          g_assert_cmpint (json_object_get_int_member (certs, "live"), ==, 2);
          g_assert_cmpstr (json_object_get_string_member (b, "closed_by"), ==, "lead");
          g_autofree gchar *qc = g_strdup_printf ("SELECT closed_at FROM batches WHERE id = %" G_GINT64_FORMAT, id);
          g_autofree gchar *closed_at = st_cli_sql_time (f, qc);
          g_assert_cmpstr (json_object_get_string_member (b, "closed_at"), ==, closed_at);
        }
      else
        {
          g_assert_cmpint (id, ==, open);
          g_assert_cmpstr (json_object_get_string_member (b, "state"), ==, "open");
          g_assert_true (json_node_is_null (json_object_get_member (b, "closed_at")));
          g_assert_cmpint (json_object_get_int_member (b, "failed"), ==, 1);
          g_assert_cmpint (json_object_get_int_member (certs, "voided"), ==, 1);
        }
    }
  /* the plain list names the same batches */
  g_assert_cmpint (st_run_station (f, &plain, NULL, "batch", "list", NULL), ==, 0);
  for (guint i = 0; i < json_array_get_length (batches); i++)
    g_assert_nonnull (strstr (plain, json_object_get_string_member (json_array_get_object_element (batches, i),
                                                                      "work_order")));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_clear_pointer (&plain, g_free);

  /* batch show, both batches: every unit as the database has it */
  gint64 ids[] = { closed, open };
  for (guint k = 0; k < G_N_ELEMENTS (ids); k++)
    {
      g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, ids[k]);
      g_assert_cmpint (st_run_station (f, &out, &err, "batch", "show", id, "--json", "--all", NULL), ==, 0);
      g_assert_cmpstr (err, ==, "");
      g_autoptr(JsonParser) p_show = NULL;
      JsonObject *show = st_cli_json_checked (f, "batch-show", out, &p_show);
      JsonObject *b = json_object_get_object_member (show, "batch");
      g_assert_cmpint (json_object_get_int_member (b, "id"), ==, ids[k]);
      JsonArray *units = json_object_get_array_member (show, "units");
      g_autofree gchar *qn = g_strdup_printf ("SELECT count(*) FROM units WHERE batch_id = %s", id);
      gint64 n = st_sql_int (f, qn);
      g_assert_cmpint (n, >, 0);
      g_assert_cmpint (json_array_get_length (units), ==, n);
      g_assert_cmpint (json_object_get_int_member (show, "units_listed"), ==, n);
      g_assert_cmpint (json_object_get_int_member (show, "units_not_listed"), ==, 0);
      g_assert_cmpint (json_object_get_int_member (b, "units"), ==, n);
      g_assert_cmpint (st_run_station (f, &plain, NULL, "batch", "show", id, "--all", NULL), ==, 0);
      for (guint i = 0; i < json_array_get_length (units); i++)
        {
          JsonObject *u = json_array_get_object_element (units, i);
          gint64 uid_id = json_object_get_int_member (u, "id");
          g_autofree gchar *q = g_strdup_printf ("SELECT uid || '|' || state || '|' || ifnull(product_serial, '') "
                                                 "|| '|' || ifnull(fail_reason, '') || '|' || port FROM units "
                                                 "WHERE id = %" G_GINT64_FORMAT " AND batch_id = %s", uid_id, id);
          g_autofree gchar *row = st_sql (f, q);
          g_autofree gchar *have = g_strdup_printf ("%s|%s|%s|%s|%s", st_cli_member (u, "uid"),
                                                    st_cli_member (u, "state"), st_cli_member (u, "product_serial"),
                                                    st_cli_member (u, "fail_reason"), st_cli_member (u, "port"));
          g_assert_cmpstr (have, ==, row);
          g_autofree gchar *qs = g_strdup_printf ("SELECT started_at FROM units WHERE id = %" G_GINT64_FORMAT, uid_id);
          g_autofree gchar *started = st_cli_sql_time (f, qs);
          g_assert_cmpstr (json_object_get_string_member (u, "started_at"), ==, started);
          g_assert_nonnull (strstr (plain, st_cli_member (u, "uid")));
          if (ids[k] == open)
            {
              g_assert_cmpstr (st_cli_member (u, "state"), ==, "failed");
              g_assert_cmpstr (st_cli_member (u, "cert_state"), ==, "voided");
              g_assert_cmpstr (st_cli_member (u, "fail_step"), !=, "");
            }
          else
            {
              g_assert_cmpstr (st_cli_member (u, "cert_state"), ==, "active");
              g_assert_true (json_node_is_null (json_object_get_member (u, "fail_reason")));
            }
        }
      g_clear_pointer (&out, g_free);
      g_clear_pointer (&err, g_free);
      g_clear_pointer (&plain, g_free);
    }

  /* manifest verify, by the service and off the station: the report's lines */
  g_autofree gchar *pin = st_cli_signer_pin (f);
  g_autofree gchar *root = g_build_filename (f->home, "demo-root.pem", NULL);
  const char *const how[][6] = {
    { "manifest", "verify", dir, NULL },
    { "manifest", "verify", dir, "--root", root, NULL },
  };
  for (guint k = 0; k < G_N_ELEMENTS (how); k++)
    {
      const char *json_args[] = { how[k][0], how[k][1], how[k][2], "--signer-pin", pin, "--json",
                                  how[k][3], how[k][4], NULL };
      const char *plain_args[] = { how[k][0], how[k][1], how[k][2], "--signer-pin", pin, how[k][3],
                                   how[k][4], NULL };
      g_assert_cmpint (st_run_stationv (f, NULL, &out, &err, json_args), ==, 0);
      g_assert_cmpstr (err, ==, "");
      g_assert_cmpint (st_run_stationv (f, NULL, &plain, NULL, plain_args), ==, 0);
      g_autoptr(JsonParser) p_mv = NULL;
      JsonObject *mv = st_cli_json_checked (f, "manifest-verify", out, &p_mv);
      g_assert_true (json_object_get_boolean_member (mv, "verified"));
      g_assert_true (json_node_is_null (json_object_get_member (mv, "failure")));
      g_assert_cmpstr (json_object_get_string_member (mv, "verified_by"), ==, k == 0 ? "service" : "client");
      g_assert_cmpstr (json_object_get_string_member (mv, "signer_pin"), ==, pin);
      g_assert_cmpstr (json_object_get_string_member (mv, "dir"), ==, dir);
      st_cli_check_lines (mv, plain);
      g_clear_pointer (&out, g_free);
      g_clear_pointer (&err, g_free);
      g_clear_pointer (&plain, g_free);
    }
  /* a folder whose name is not UTF-8 and holds U+001F (which json-glib
   * 1.6's generator leaves unescaped): still valid JSON (RFC 8259 text is
   * UTF-8, control characters escaped), the stray byte as U+FFFD */
  g_autofree gchar *odd = g_strdup_printf ("%s/m\xff\x1f", f->tmp);
  g_assert_cmpint (st_run_tool (NULL, NULL, "cp", "-r", dir, odd, NULL), ==, 0);
  g_assert_cmpint (st_run_station (f, &out, &err, "manifest", "verify", odd, "--root", root, "--signer-pin", pin,
                                   "--json", NULL), ==, 0);
  g_autoptr(JsonParser) p_odd = NULL;
  JsonObject *odd_doc = st_cli_json_checked (f, "manifest-verify", out, &p_odd);
  g_autofree gchar *odd_shown = g_strdup_printf ("%s/m\xef\xbf\xbd\x1f", f->tmp);
  g_assert_nonnull (strstr (out, "m\xef\xbf\xbd\\u001f\""));
  g_assert_cmpstr (json_object_get_string_member (odd_doc, "dir"), ==, odd_shown);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* a rejected manifest: still one document, with its failure, and exit 1 */
  g_autofree gchar *csv = g_build_filename (dir, "manifest.csv", NULL);
  g_autofree gchar *csv_text = NULL;
  g_assert_true (g_file_get_contents (csv, &csv_text, NULL, NULL));
  g_autofree gchar *csv_more = g_strconcat (csv_text, "\n", NULL);
  g_assert_true (g_file_set_contents (csv, csv_more, -1, NULL));
  g_assert_cmpint (st_run_station (f, &out, &err, "manifest", "verify", dir, "--root", root, "--signer-pin", pin,
                                   "--json", NULL), ==, ST_RC_CHECK);
  g_autoptr(JsonParser) p_bad = NULL;
  JsonObject *bad = st_cli_json_checked (f, "manifest-verify", out, &p_bad);
  g_assert_false (json_object_get_boolean_member (bad, "verified"));
  g_assert_nonnull (strstr (json_object_get_string_member (bad, "failure"), "failed"));
  g_assert_nonnull (strstr (err, json_object_get_string_member (bad, "failure")));
  guint fails = 0;
  JsonArray *bad_lines = json_object_get_array_member (bad, "lines");
  for (guint i = 0; i < json_array_get_length (bad_lines); i++)
    if (g_strcmp0 (json_object_get_string_member (json_array_get_object_element (bad_lines, i), "status"), "fail") == 0)
      fails++;
  g_assert_cmpuint (fails, >=, 1);
  g_assert_true (g_file_set_contents (csv, csv_text, -1, NULL));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* audit verify */
  g_assert_cmpint (st_run_station (f, &out, &err, "audit", "verify", "--json", "--manifests", dir, NULL), ==, 0);
  g_assert_cmpint (st_run_station (f, &plain, NULL, "audit", "verify", "--manifests", dir, NULL), ==, 0);
  g_autoptr(JsonParser) p_audit = NULL;
  JsonObject *audit = st_cli_json_checked (f, "audit-verify", out, &p_audit);
  g_assert_true (json_object_get_boolean_member (audit, "verified"));
  JsonArray *manifests = json_object_get_array_member (audit, "manifests");
  g_assert_cmpuint (json_array_get_length (manifests), ==, 1);
  g_assert_cmpstr (json_array_get_string_element (manifests, 0), ==, dir);
  st_cli_check_lines (audit, plain);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_clear_pointer (&plain, g_free);

  /* unit verify: a provisioned device back in a socket, then a blank one */
  g_autofree gchar *state = g_build_filename (f->tmp, "qa.state", NULL);
  gint64 third = st_create_batch (f, "example-device-csr.profile", 1);
  g_autofree gchar *third_id = g_strdup_printf ("%" G_GINT64_FORMAT, third);
  g_autofree gchar *p1 = st_start_devsim (f, "--units", "1", "--seed", "1720", "--state", state, NULL);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "batch", "run", third_id, "--port", p1, "--units", "1", NULL), ==, 0);
  st_stop_devsims (f);
  g_autofree gchar *p2 = st_start_devsim (f, "--state", state, "--present", "1", NULL);
  g_assert_cmpint (st_run_station (f, &out, &err, "unit", "verify", "--port", p2, "--json", NULL), ==, 0);
  g_autoptr(JsonParser) p_unit = NULL;
  JsonObject *unit = st_cli_json_checked (f, "unit-verify", out, &p_unit);
  g_assert_true (json_object_get_boolean_member (unit, "verified"));
  g_assert_cmpstr (json_object_get_string_member (unit, "port"), ==, p2);
  g_autofree gchar *uid_sql = g_strdup_printf ("SELECT uid FROM units WHERE batch_id = %s", third_id);
  g_autofree gchar *uid = st_sql (f, uid_sql);
  g_autofree gchar *unit_text = json_to_string (json_object_get_member (unit, "lines"), FALSE);
  g_assert_nonnull (strstr (unit_text, uid));
  st_stop_devsims (f);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_autofree gchar *p3 = st_start_devsim (f, "--units", "1", "--seed", "1721", NULL);
  g_assert_cmpint (st_run_station (f, &out, &err, "unit", "verify", "--port", p3, "--json", NULL), ==, ST_RC_CHECK);
  g_autoptr(JsonParser) p_blank = NULL;
  JsonObject *blank = st_cli_json_checked (f, "unit-verify", out, &p_blank);
  g_assert_false (json_object_get_boolean_member (blank, "verified"));
  g_assert_cmpstr (json_object_get_string_member (blank, "failure"), !=, "");

  /* the checker can fail: a count as text is not the schema's */
  g_autofree gchar *wrong = g_strdup_printf ("{\"format\":\"station-cli-batch-list/1\",\"batches\":[{\"id\":\"1\"}]}\n");
  g_autofree gchar *doc = g_build_filename (f->tmp, "wrong.json", NULL);
  g_assert_true (g_file_set_contents (doc, wrong, -1, NULL));
  g_autofree gchar *schema = g_strdup_printf ("%s/docs/schema/cli/batch-list.json", g_getenv ("ST_SOURCE_DIR"));
  g_autofree gchar *checker = g_build_filename (g_getenv ("ST_SOURCE_DIR"), "tests", "cli", "check-json.py", NULL);
  g_assert_cmpint (st_run_tool (NULL, NULL, "python3", checker, schema, doc, NULL), ==, 1);
}

/* One field of stock openssl's view of a certificate file ("subject=..."). */
static gchar *
st_cli_openssl_field (const char *pem, const char *option, const char *prefix)
{
  g_autofree gchar *out = NULL;
  g_assert_cmpint (st_run_tool (&out, NULL, "openssl", "x509", "-in", pem, "-noout", option, "-nameopt",
                                "RFC2253", "-dateopt", "iso_8601", NULL), ==, 0);
  g_assert_true (g_str_has_prefix (out, prefix));
  gchar *v = g_strdup (g_strstrip (out + strlen (prefix)));
  /* "2036-12-03 17:51:42Z" -> "2036-12-03T17:51:42Z" */
  if (strlen (v) == 20 && v[10] == ' ')
    v[10] = 'T';
  return v;
}

static void
test_json_setup (StFixture *f, gconstpointer data)
{
  g_autofree gchar *out = NULL, *err = NULL, *plain = NULL;
  g_assert_cmpint (st_run_station_as (f, "qa", "3333", NULL, &out, &err, "setup", "show", "--json", NULL), ==, 0);
  g_assert_cmpstr (err, ==, "");
  g_autoptr(JsonParser) parser = NULL;
  JsonObject *o = st_cli_json_checked (f, "setup-show", out, &parser);
  /* against the plain text */
  g_assert_cmpint (st_run_station_as (f, "qa", "3333", NULL, &plain, NULL, "setup", "show", NULL), ==, 0);
  g_autofree gchar *first = g_strdup_printf ("Station %s (demo)\n", json_object_get_string_member (o, "station_id"));
  g_assert_true (g_str_has_prefix (plain, first));
  g_assert_true (json_object_get_boolean_member (o, "demo"));
  g_assert_cmpstr (json_object_get_string_member (o, "home"), ==, f->home);
  g_assert_cmpstr (json_object_get_string_member (o, "ceremony"), ==, "demo");
  /* not a Matter station (test-matter-demo checks one that is) */
  g_assert_true (json_object_has_member (o, "matter"));
  g_assert_true (json_object_get_null_member (o, "matter"));
  JsonObject *hsm = json_object_get_object_member (o, "hsm");
  g_assert_true (json_object_get_boolean_member (hsm, "unlocked"));
  g_autofree gchar *token_line = g_strdup_printf ("HSM token: %s (logged in)",
                                                  json_object_get_string_member (hsm, "token_description"));
  g_assert_nonnull (strstr (plain, token_line));
  /* keys in the token: sensitive, never extractable */
  JsonObject *keys = json_object_get_object_member (o, "keys");
  const char *names[] = { "issuing_ca", "station_signing" };
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      JsonObject *k = json_object_get_object_member (keys, names[i]);
      g_assert_true (json_object_get_boolean_member (k, "sensitive"));
      g_assert_false (json_object_get_boolean_member (k, "extractable"));
      g_assert_nonnull (strstr (plain, json_object_get_string_member (k, "uri")));
    }
  /* the pin: the key ceremony's record (station.conf) */
  g_autofree gchar *pin = st_cli_signer_pin (f);
  g_assert_cmpstr (json_object_get_string_member (o, "signer_pin"), ==, pin);
  g_assert_true (json_object_get_boolean_member (o, "signer_pin_ok"));
  /* the root and the chain, against stock openssl's reading of the files */
  JsonObject *root = json_object_get_object_member (o, "root");
  const char *root_file = json_object_get_string_member (root, "file");
  g_autofree gchar *subject = st_cli_openssl_field (root_file, "-subject", "subject=");
  g_autofree gchar *serial = st_cli_openssl_field (root_file, "-serial", "serial=");
  g_autofree gchar *not_after = st_cli_openssl_field (root_file, "-enddate", "notAfter=");
  g_autofree gchar *not_before = st_cli_openssl_field (root_file, "-startdate", "notBefore=");
  g_assert_cmpstr (json_object_get_string_member (root, "subject"), ==, subject);
  g_assert_cmpstr (json_object_get_string_member (root, "issuer"), ==, subject);
  g_assert_cmpstr (json_object_get_string_member (root, "serial"), ==, serial);
  g_assert_cmpstr (json_object_get_string_member (root, "not_after"), ==, not_after);
  g_assert_cmpstr (json_object_get_string_member (root, "not_before"), ==, not_before);
  g_assert_cmpint (json_object_get_int_member (root, "days_left"), >, 0);
  JsonObject *chain = json_object_get_object_member (o, "chain");
  JsonArray *certs = json_object_get_array_member (chain, "certificates");
  g_assert_cmpuint (json_array_get_length (certs), ==, 2);
  JsonObject *issuing = json_array_get_object_element (certs, 0);
  g_assert_cmpstr (json_object_get_string_member (issuing, "issuer"), ==, subject);
  g_autofree gchar *issuing_line = g_strdup_printf ("subject:  %s", json_object_get_string_member (issuing, "subject"));
  g_assert_nonnull (strstr (plain, issuing_line));
  JsonObject *db = json_object_get_object_member (o, "database");
  g_assert_true (json_object_get_boolean_member (db, "present"));
  g_clear_pointer (&out, g_free);

  /* locked: the same document says so, with no flags it cannot read;
   * `ca show --json` is the same command */
  g_assert_cmpint (st_run_station (f, NULL, NULL, "lock", NULL), ==, 0);
  g_assert_cmpint (st_run_station_as (f, "qa", "3333", NULL, &out, NULL, "ca", "show", "--json", NULL), ==, 0);
  g_autoptr(JsonParser) p_locked = NULL;
  JsonObject *locked = st_cli_json_checked (f, "setup-show", out, &p_locked);
  g_assert_false (json_object_get_boolean_member (json_object_get_object_member (locked, "hsm"), "unlocked"));
  JsonObject *k = json_object_get_object_member (json_object_get_object_member (locked, "keys"), "issuing_ca");
  g_assert_true (json_node_is_null (json_object_get_member (k, "sensitive")));
  g_clear_pointer (&out, g_free);
  /* a station whose key ceremony waits for `ca import` (station.conf
   * without [certificates]): the keys, no chain, no root, no pin yet */
  g_assert_cmpint (st_service_stop (f), ==, 0);
  g_autofree gchar *conf = g_build_filename (f->home, "station.conf", NULL);
  g_autofree gchar *conf_text = NULL;
  g_assert_true (g_file_get_contents (conf, &conf_text, NULL, NULL));
  gchar *section = strstr (conf_text, "[certificates]");
  g_assert_nonnull (section);
  *section = '\0';
  g_assert_true (g_file_set_contents (conf, conf_text, -1, NULL));
  g_assert_cmpint (st_run_station_as (f, "qa", "3333", NULL, &out, NULL, "setup", "show", "--json", NULL), ==, 0);
  g_autoptr(JsonParser) p_awaiting = NULL;
  JsonObject *awaiting = st_cli_json_checked (f, "setup-show", out, &p_awaiting);
  g_assert_cmpstr (json_object_get_string_member (awaiting, "ceremony"), ==, "awaiting-import");
  g_assert_true (json_node_is_null (json_object_get_member (json_object_get_object_member (awaiting, "chain"),
                                                            "certificates")));
  g_assert_true (json_node_is_null (json_object_get_member (awaiting, "root")));
  g_assert_true (json_node_is_null (json_object_get_member (awaiting, "signer_pin")));
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (
                     json_object_get_object_member (awaiting, "keys"), "station_signing"), "uri"), !=, "");
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_station_as (f, "qa", "3333", NULL, &out, NULL, "setup", "show", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "Key ceremony: AWAITING IMPORT"));
  g_clear_pointer (&out, g_free);

  /* --json is for show only */
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station (f, &out, &err, "setup", "demo", "--json", NULL), ==, ST_RC_USAGE);
  g_assert_cmpstr (out, ==, "");
}

/* `batch show --json` of a batch larger than a page (BatchUnitsPage gives
 * at most 1,000 units): the document is written page after page, and is
 * still one valid document with every unit once, in id order; without
 * --all, the first 50 and the count of the rest. The units are made by
 * tests/tools/st-gen-db while the service is stopped. */
static void
test_json_large (StFixture *f, gconstpointer data)
{
  g_assert_cmpint (st_run_station (f, NULL, NULL, "batch", "list", NULL), ==, 0);
  g_assert_cmpint (st_service_stop (f), ==, 0);
  g_autofree gchar *db = g_build_filename (f->home, "station.db", NULL);
  g_autofree gchar *ca = g_build_filename (f->tmp, "gen-ca.pem", NULL);
  g_autofree gchar *out = NULL, *err = NULL;
  g_assert_cmpint (st_run_tool (&out, &err, ST_GEN_DB, "--db", db, "--units", "2345", "--fail-every", "100",
                                "--threads", "8", "--work-order", "WO-GEN", "--ca-out", ca, NULL), ==, 0);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station (f, &out, &err, "batch", "show", "1", "--json", "--all", NULL), ==, 0);
  g_assert_cmpstr (err, ==, "");
  g_autoptr(JsonParser) parser = NULL;
  JsonObject *o = st_cli_json_checked (f, "batch-show", out, &parser);
  JsonArray *units = json_object_get_array_member (o, "units");
  g_assert_cmpuint (json_array_get_length (units), ==, 2345);
  g_assert_cmpint (json_object_get_int_member (o, "units_listed"), ==, 2345);
  g_assert_cmpint (json_object_get_int_member (o, "units_not_listed"), ==, 0);
  gint64 last = 0;
  guint failed = 0;
  for (guint i = 0; i < 2345; i++)
    {
      JsonObject *u = json_array_get_object_element (units, i);
      gint64 id = json_object_get_int_member (u, "id");
      g_assert_cmpint (id, >, last);
      last = id;
      if (g_strcmp0 (json_object_get_string_member (u, "state"), "failed") == 0)
        failed++;
    }
  g_assert_cmpint (failed, ==, st_sql_int (f, "SELECT count(*) FROM units WHERE state = 'failed'"));
  g_assert_cmpint (last, ==, st_sql_int (f, "SELECT max(id) FROM units"));
  JsonObject *b = json_object_get_object_member (o, "batch");
  g_assert_cmpint (json_object_get_int_member (b, "failed"), ==, failed);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  g_assert_cmpint (st_run_station (f, &out, &err, "batch", "show", "1", "--json", NULL), ==, 0);
  g_autoptr(JsonParser) p_first = NULL;
  JsonObject *first = st_cli_json_checked (f, "batch-show", out, &p_first);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (first, "units")), ==, 50);
  g_assert_cmpint (json_object_get_int_member (first, "units_listed"), ==, 50);
  g_assert_cmpint (json_object_get_int_member (first, "units_not_listed"), ==, 2295);
}

/* ---- exit codes -------------------------------------------------------------- */

/* `station --home HOME --operator op batch run ID --port PORT --wait 60`
 * started as a plain child of the test (not through the fixture, which
 * reports a killed service's status instead of the client's). */
static GSubprocess *
st_cli_start_run (StFixture *f, const char *id, const char *port)
{
  g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE
                                                                | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_subprocess_launcher_unsetenv (l, "STATION_HSM_PIN");
  g_subprocess_launcher_setenv (l, "STATION_OPERATOR_PIN", "1111", TRUE);
  g_autoptr(GError) error = NULL;
  GSubprocess *p = g_subprocess_launcher_spawn (l, &error, g_getenv ("ST_STATION"), "--home", f->home,
                                                "--operator", "op", "batch", "run", id, "--port", port,
                                                "--wait", "60", NULL);
  g_assert_no_error (error);
  return p;
}

/* Waits until `station status` shows the line of batch @id running. */
static void
st_cli_wait_running (StFixture *f, const char *id)
{
  g_autofree gchar *want = g_strdup_printf ("line        running batch %s\n", id);
  for (guint i = 0; i < 150; i++)
    {
      g_autofree gchar *out = NULL;
      g_assert_cmpint (st_run_station (f, &out, NULL, "status", NULL), ==, 0);
      if (strstr (out, want) != NULL)
        return;
      g_usleep (200 * 1000);
    }
  g_assert_not_reached ();
}

static int
st_cli_finish (GSubprocess *p, gchar **out, gchar **err)
{
  g_autoptr(GError) error = NULL;
  g_assert_true (g_subprocess_communicate_utf8 (p, NULL, NULL, out, err, &error));
  g_assert_no_error (error);
  g_test_message ("batch run: %s%s", *out, *err);
  g_assert_true (g_subprocess_get_if_exited (p));
  return g_subprocess_get_exit_status (p);
}

/* Every exit status of station(1), each from its real cause (the
 * commands of /roles/exit-codes are not repeated): no operator given, no
 * service, a disk error outside a line (a full and a read-only folder: 2,
 * not the line's 6), the HSM locked, the service gone during a command;
 * and `batch stop` of a running line says nothing. */
static void
test_exit_codes (StFixture *f, gconstpointer data)
{
  gint64 batch = st_closed_batch (f, NULL, "1722");
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  g_autofree gchar *out = NULL, *err = NULL;

  /* 0 */
  g_assert_cmpint (st_run_station (f, &out, &err, "batch", "show", id, NULL), ==, 0);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* 3: --json where the command has none; nothing done */
  g_assert_cmpint (st_run_station (f, &out, &err, "batch", "close", id, "--json", NULL), ==, ST_RC_USAGE);
  g_assert_cmpstr (out, ==, "");
  g_assert_nonnull (strstr (err, "--json"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  g_autofree gchar *elsewhere = g_build_filename (f->tmp, "elsewhere", NULL);
  g_assert_cmpint (st_run_station (f, &out, &err, "manifest", "export", id, "--out", elsewhere, "--json", NULL), ==,
                   ST_RC_USAGE);
  g_assert_cmpstr (out, ==, "");
  g_assert_nonnull (strstr (err, "--json goes with 'manifest verify'"));
  g_assert_false (g_file_test (elsewhere, G_FILE_TEST_EXISTS));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station (f, &out, &err, "audit", "export", "--out", elsewhere, "--json", NULL), ==,
                   ST_RC_USAGE);
  g_assert_cmpstr (out, ==, "");
  g_assert_false (g_file_test (elsewhere, G_FILE_TEST_EXISTS));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* 4: nobody named (no --operator, no $STATION_OPERATOR) */
  g_assert_cmpint (st_run_station (f, NULL, &err, "--operator=", "batch", "list", NULL), ==, ST_RC_AUTH);
  g_assert_nonnull (strstr (err, "needs the role"));
  g_clear_pointer (&err, g_free);

  /* 5: no service for the home given */
  g_autofree gchar *empty = g_build_filename (f->tmp, "no-station", NULL);
  g_assert_cmpint (g_mkdir (empty, 0700), ==, 0);
  g_assert_cmpint (st_run_tool (NULL, &err, g_getenv ("ST_STATION"), "--home", empty, "status", NULL), ==,
                   ST_RC_NOT_FOUND);
  g_assert_nonnull (strstr (err, "start it with 'stationd --home"));
  g_clear_pointer (&err, g_free);

  /* 2: a disk error outside a running line is no stopped line */
  if (getuid () == 0)
    {
      g_autofree gchar *full = g_build_filename (f->tmp, "full", NULL);
      g_autofree gchar *ro = g_build_filename (f->tmp, "ro", NULL);
      g_assert_cmpint (g_mkdir (full, 0700), ==, 0);
      g_assert_cmpint (g_mkdir (ro, 0700), ==, 0);
      if (mount ("st-test-cli-full", full, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0700") != 0
          || mount ("st-test-cli-ro", ro, "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY, "size=64k,mode=0700") != 0)
        g_test_message ("cannot mount a tmpfs here: the full and read-only folders are not tried");
      else
        {
          g_autofree gchar *filler = g_build_filename (full, "filler", NULL);
          FILE *fp = fopen (filler, "w");
          g_assert_nonnull (fp);
          guint8 block[4096] = { 0 };
          while (fwrite (block, 1, sizeof block, fp) == sizeof block && fflush (fp) == 0)
            ;
          fclose (fp);
          g_autofree gchar *m_full = g_build_filename (full, "manifest", NULL);
          g_autofree gchar *m_ro = g_build_filename (ro, "manifest", NULL);
          g_autofree gchar *b_ro = g_build_filename (ro, "station.db.bak", NULL);
          g_autofree gchar *c_full = g_build_filename (full, "station.crl", NULL);
          g_assert_cmpint (st_run_station (f, NULL, &err, "manifest", "export", id, "--out", m_full, NULL), ==,
                           ST_RC_ERROR);
          g_assert_nonnull (strstr (err, g_strerror (ENOSPC)));
          g_assert_nonnull (strstr (err, "free space on that disk, or write somewhere else"));
          g_assert_nonnull (strstr (err, m_full));
          g_clear_pointer (&err, g_free);
          g_assert_cmpint (st_run_station (f, NULL, &err, "manifest", "export", id, "--out", m_ro, NULL), ==,
                           ST_RC_ERROR);
          g_assert_nonnull (strstr (err, g_strerror (EROFS)));
          g_assert_nonnull (strstr (err, "choose a folder you may write to"));
          g_clear_pointer (&err, g_free);
          g_assert_cmpint (st_run_station (f, NULL, &err, "db", "backup", b_ro, NULL), ==, ST_RC_ERROR);
          g_assert_nonnull (strstr (err, g_strerror (EROFS)));
          g_clear_pointer (&err, g_free);
          g_assert_cmpint (st_run_station_as (f, "lead", "2222", NULL, NULL, &err, "crl", "issue", "--out",
                                              c_full, NULL), ==, ST_RC_ERROR);
          g_assert_nonnull (strstr (err, g_strerror (ENOSPC)));
          g_clear_pointer (&err, g_free);
          g_assert_cmpint (umount2 (full, MNT_DETACH), ==, 0);
          g_assert_cmpint (umount2 (ro, MNT_DETACH), ==, 0);
        }
    }

  /* 2: a trusted root that is no root, given to the service (audit verify
   * --root sends it): the service holds it to the CLI's own rule
   * (st_verify_root_from_pem) */
  g_autofree gchar *key = g_build_filename (f->tmp, "leaf.key", NULL);
  g_autofree gchar *leaf = g_build_filename (f->tmp, "leaf.pem", NULL);
  g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", leaf,
                                "-subj", "/CN=Not a CA", "-addext", "basicConstraints=critical,CA:FALSE",
                                "-days", "2", NULL), ==, 0);
  g_assert_cmpint (st_run_station (f, &out, &err, "audit", "verify", "--root", leaf, NULL), ==, ST_RC_ERROR);
  g_assert_cmpstr (out, ==, "");
  g_assert_nonnull (strstr (err, "is not a CA certificate (CN=Not a CA has no basicConstraints CA:TRUE)"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* 6: the HSM is locked */
  g_assert_cmpint (st_run_station (f, NULL, NULL, "lock", NULL), ==, 0);
  g_autofree gchar *m = g_build_filename (f->tmp, "manifest", NULL);
  g_assert_cmpint (st_run_station (f, NULL, &err, "manifest", "export", id, "--out", m, NULL), ==, ST_RC_STOPPED);
  g_assert_nonnull (strstr (err, "'station unlock'"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "unlock", NULL), ==, 0);

  /* a line waiting for a device on a socket where none comes (a bare
   * pseudo-terminal): `batch stop` stops it and says nothing; the run
   * ends stopped (1) */
  gint64 open_batch = st_create_batch (f, "example-device-csr.profile", 2);
  g_autofree gchar *open_id = g_strdup_printf ("%" G_GINT64_FORMAT, open_batch);
  int master = posix_openpt (O_RDWR | O_NOCTTY);
  g_assert_cmpint (master, >=, 0);
  g_assert_cmpint (grantpt (master), ==, 0);
  g_assert_cmpint (unlockpt (master), ==, 0);
  g_autofree gchar *pty = g_strdup (ptsname (master));
  g_autoptr(GSubprocess) run = st_cli_start_run (f, open_id, pty);
  st_cli_wait_running (f, open_id);
  g_assert_cmpint (st_run_station (f, &out, &err, "batch", "stop", open_id, NULL), ==, 0);
  g_assert_cmpstr (out, ==, "");
  g_assert_cmpstr (err, ==, "");
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_cli_finish (run, &out, &err), ==, ST_RC_CHECK);
  g_autofree gchar *waiting = g_strdup_printf ("waiting for a device on %s\n", pty);
  g_assert_nonnull (strstr (out, waiting));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* 6: the service goes away during a command */
  g_autoptr(GSubprocess) run2 = st_cli_start_run (f, open_id, pty);
  st_cli_wait_running (f, open_id);
  st_service_kill (f);
  g_assert_cmpint (st_cli_finish (run2, &out, &err), ==, ST_RC_STOPPED);
  g_assert_nonnull (strstr (err, "went away"));
  close (master);
}

/* ---- nothing to say ---------------------------------------------------------- */

/* Commands that change something and have nothing to report print nothing
 * on success, on stdout or stderr; what they did shows where it is read
 * (`status`, `operator list`, `batch show`, the files). */
static void
test_quiet (StFixture *f, gconstpointer data)
{
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 2);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  g_autofree gchar *port = st_start_devsim (f, "--units", "2", "--seed", "1723", NULL);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "batch", "run", id, "--port", port, "--units", "2", NULL), ==, 0);
  st_stop_devsims (f);
  g_autofree gchar *manifest = g_build_filename (f->tmp, "manifest", NULL);
  g_autofree gchar *backup = g_build_filename (f->tmp, "station.db.bak", NULL);
  g_autofree gchar *log = g_build_filename (f->tmp, "audit.jsonl", NULL);
  struct {
    const char *who, *pin;
    const char *args[8];
  } quiet[] = {
    { "lead", "2222", { "batch", "close", id } },
    { "admin", "4444", { "db", "backup", backup } },
    { "admin", "4444", { "audit", "export", "--out", log } },
    { "admin", "4444", { "operator", "add", "carol", "--role", "operator" } },
    { "admin", "4444", { "operator", "set-role", "carol", "--role", "lead" } },
    { "admin", "4444", { "operator", "unlock", "carol" } },
    { "admin", "4444", { "lock" } },
    { "admin", "4444", { "unlock" } },
  };
  for (guint i = 0; i < G_N_ELEMENTS (quiet); i++)
    {
      g_autoptr(GPtrArray) args = g_ptr_array_new ();
      g_ptr_array_add (args, "--operator");
      g_ptr_array_add (args, (gpointer) quiet[i].who);
      for (guint a = 0; quiet[i].args[a] != NULL; a++)
        g_ptr_array_add (args, (gpointer) quiet[i].args[a]);
      g_ptr_array_add (args, NULL);
      g_autofree gchar *pin_env = g_strdup_printf ("STATION_OPERATOR_PIN=%s", quiet[i].pin);
      const char *env[] = { pin_env, "STATION_NEW_OPERATOR_PIN=5555", NULL };
      g_autofree gchar *out = NULL, *err = NULL;
      g_assert_cmpint (st_run_stationv (f, env, &out, &err, (const char *const *) args->pdata), ==, 0);
      g_assert_cmpstr (out, ==, "");
      g_assert_cmpstr (err, ==, "");
    }
  /* manifest export says what went into the cloud files and which units
   * were left out (its cloud-report.txt), and nothing more */
  g_autofree gchar *export_out = NULL, *export_err = NULL;
  g_assert_cmpint (st_run_station (f, &export_out, &export_err, "manifest", "export", id, "--out", manifest, NULL),
                   ==, 0);
  g_autofree gchar *report_path = g_build_filename (manifest, "cloud-report.txt", NULL);
  g_autofree gchar *report_text = NULL;
  g_assert_true (g_file_get_contents (report_path, &report_text, NULL, NULL));
  g_assert_cmpstr (export_out, ==, report_text);
  g_assert_cmpstr (export_err, ==, "");

  /* and they did it */
  g_autofree gchar *show = NULL, *ops = NULL, *status = NULL;
  g_assert_cmpint (st_run_station (f, &show, NULL, "batch", "show", id, NULL), ==, 0);
  g_autofree gchar *closed = g_strdup_printf ("batch %s (closed)\n", id);
  g_assert_true (g_str_has_prefix (show, closed));
  g_autofree gchar *json = g_build_filename (manifest, "manifest.json", NULL);
  g_assert_true (g_file_test (json, G_FILE_TEST_IS_REGULAR));
  g_assert_true (g_file_test (backup, G_FILE_TEST_IS_REGULAR));
  g_assert_true (g_file_test (log, G_FILE_TEST_IS_REGULAR));
  g_assert_cmpint (st_run_station (f, &ops, NULL, "operator", "list", NULL), ==, 0);
  g_assert_true (g_regex_match_simple ("^carol +lead +ok ", ops, G_REGEX_MULTILINE, 0));
  g_assert_cmpint (st_run_station (f, &status, NULL, "status", NULL), ==, 0);
  g_assert_nonnull (strstr (status, "HSM         unlocked\n"));
}

int
main (int argc, char **argv)
{
  st_test_init (&argc, &argv);
  st_test_add_station ("/cli/offline-verify", NULL, test_offline_verify);
  st_test_add_station ("/cli/json", NULL, test_json);
  st_test_add_station ("/cli/json-setup", NULL, test_json_setup);
  st_test_add_station ("/cli/json-large", NULL, test_json_large);
  st_test_add_station ("/cli/exit-codes", NULL, test_exit_codes);
  st_test_add_station ("/cli/quiet", NULL, test_quiet);
  return g_test_run ();
}
