/* HSM and storage faults, end to end: the real `station` CLI on a fresh
 * demo station whose station.conf names the test-only PKCS#11 module
 * (tests/hsm-fault/st-fault-pkcs11.c) in front of SoftHSM2, and
 * station-devsim devices on real pseudo-terminals.
 *
 * In every case: `station db check` passes afterwards, no unit is left
 * half recorded, no certificate is live without its unit done (or waiting
 * for its device), and each certificate on record cost exactly one C_Sign. */
#include <dlfcn.h>
#include <glib/gstdio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "st-test-run.h"

/* ---- the fault module in station.conf ---- */

static void
st_conf_set (StFixture *f, const char *key, const char *value)
{
  g_autofree gchar *path = g_build_filename (f->home, "station.conf", NULL);
  g_autofree gchar *text = NULL;
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  g_autofree gchar *prefix = g_strdup_printf ("%s=", key);
  gboolean found = FALSE;
  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], prefix))
      {
        g_free (lines[i]);
        lines[i] = g_strdup_printf ("%s=%s", key, value);
        found = TRUE;
      }
  g_assert_true (found);
  g_autofree gchar *joined = g_strjoinv ("\n", lines);
  g_assert_true (g_file_set_contents (path, joined, -1, NULL));
}

static gchar *
st_conf_get (StFixture *f, const char *key)
{
  g_autofree gchar *path = g_build_filename (f->home, "station.conf", NULL);
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_assert_true (g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, NULL));
  const char *groups[] = { "station", "hsm", "certificates" };
  for (guint i = 0; i < G_N_ELEMENTS (groups); i++)
    if (g_key_file_has_key (kf, groups[i], key, NULL))
      return g_key_file_get_string (kf, groups[i], key, NULL);
  g_assert_not_reached ();
  return NULL;
}

/* The service reads station.conf when it starts: it is stopped here, and
 * the next command starts it anew on the fault module (and unlocks it). */
static void
st_use_fault_module (StFixture *f)
{
  st_conf_set (f, "module", g_getenv ("ST_FAULT_PKCS11"));
  st_service_stop (f);
}

static gchar *
st_count_path (StFixture *f)
{
  return g_build_filename (f->tmp, "hsm-calls.log", NULL);
}

/* The environment of one station run: the faults, plus the count file and
 * the real module. */
static GStrv
st_fault_env (StFixture *f, const char *const *faults)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
  g_autofree gchar *count = st_count_path (f);
  g_autofree gchar *c = g_strdup_printf ("ST_FAULT_COUNT_FILE=%s", count);
  g_autofree gchar *m = g_strdup_printf ("ST_FAULT_MODULE=%s", g_getenv ("ST_SOFTHSM_MODULE"));
  g_strv_builder_add (b, c);
  g_strv_builder_add (b, m);
  for (guint i = 0; faults != NULL && faults[i] != NULL; i++)
    g_strv_builder_add (b, faults[i]);
  return g_strv_builder_end (b);
}

/* The lines of the count file that start with @prefix. */
static guint
st_count_events (StFixture *f, const char *prefix)
{
  g_autofree gchar *path = st_count_path (f);
  g_autofree gchar *text = NULL;
  if (!g_file_get_contents (path, &text, NULL, NULL))
    return 0;
  guint n = 0;
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], prefix))
      n++;
  return n;
}

/* The service settings among @env (what st-test-run.h sends to the
 * service rather than the client), NULL-terminated; free the container. */
static const char **
st_service_part (const char *const *env)
{
  GPtrArray *out = g_ptr_array_new ();
  for (guint i = 0; env != NULL && env[i] != NULL; i++)
    if (g_str_has_prefix (env[i], "ST_FAULT_") || g_str_has_prefix (env[i], "STATION_CRASH_AT="))
      g_ptr_array_add (out, (gpointer) env[i]);
  g_ptr_array_add (out, NULL);
  return (const char **) g_ptr_array_free (out, FALSE);
}

/* Runs `station ARGS...` with @env; @log gets what the service logged while
 * the command ran (its HSM notes). The service is started with @env's
 * settings (and unlocked) before the command, so its start and unlock are
 * not part of @log; the same service must run the whole command. */
static int
st_run_logged (StFixture *f, const char *const *env, gchar **out, gchar **err, gchar **log,
               const char *const *args)
{
  g_autofree const char **service_env = st_service_part (env);
  st_service_ensure (f, service_env);
  guint starts = f->service_starts;
  g_autofree gchar *before = st_service_read_log (f);
  gsize start = strlen (before);
  int rc = st_run_stationv (f, env, out, err, args);
  g_assert_cmpuint (f->service_starts, ==, starts);
  g_autofree gchar *after = st_service_read_log (f);
  g_assert_cmpuint (strlen (after), >=, start);
  g_assert_true (strncmp (before, after, start) == 0);
  *log = g_strdup (after + start);
  g_test_message ("the service's log during the command:\n%s", *log);
  return rc;
}

/* How many signatures the service makes before its first certificate: the
 * unlock after each start opens the CA (it checks each key with a
 * signature) and signs its audit checkpoints; a command such as `setup
 * show` signs nothing more. Counted on a service started anew (as every
 * test below starts one for its faults), from its start to its unlock's
 * end: the closing checkpoint of the service before it is not counted. */
static guint
st_open_signatures (StFixture *f)
{
  g_autofree gchar *path = st_count_path (f);
  st_service_stop (f);
  g_unlink (path);
  g_auto(GStrv) env = st_fault_env (f, NULL);
  st_service_ensure (f, (const char *const *) env);
  g_assert_cmpuint (st_service_pid (f), !=, 0);
  guint n = st_count_events (f, "C_Sign ");
  g_assert_cmpuint (n, >, 0);
  /* unlocked: the station shows the token logged in, and signed nothing for it */
  const char *args[] = { "setup", "show", NULL };
  g_autofree gchar *out = NULL;
  g_assert_cmpint (st_run_stationv (f, (const char *const *) env, &out, NULL, args), ==, 0);
  g_assert_nonnull (strstr (out, "(logged in)"));
  g_assert_cmpuint (st_count_events (f, "C_Sign "), ==, n);
  st_service_stop (f);
  g_unlink (path);
  return n;
}

/* `batch run`; with @log, what the service logged meanwhile (st_run_logged). */
static int
st_run_batch_logged (StFixture *f, gint64 batch, const char *const *ports, guint units_per_port,
                     const char *const *faults, gchar **out, gchar **err, gchar **log)
{
  g_autoptr(GPtrArray) args = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (args, g_strdup ("batch"));
  g_ptr_array_add (args, g_strdup ("run"));
  g_ptr_array_add (args, g_strdup_printf ("%" G_GINT64_FORMAT, batch));
  for (guint i = 0; ports[i] != NULL; i++)
    {
      g_ptr_array_add (args, g_strdup ("--port"));
      g_ptr_array_add (args, g_strdup (ports[i]));
    }
  g_ptr_array_add (args, g_strdup ("--units"));
  g_ptr_array_add (args, g_strdup_printf ("%u", units_per_port));
  g_ptr_array_add (args, g_strdup ("--wait"));
  g_ptr_array_add (args, g_strdup ("20"));
  g_ptr_array_add (args, NULL);
  g_auto(GStrv) env = st_fault_env (f, faults);
  if (log != NULL)
    return st_run_logged (f, (const char *const *) env, out, err, log, (const char *const *) args->pdata);
  return st_run_stationv (f, (const char *const *) env, out, err, (const char *const *) args->pdata);
}

static int
st_run_batch (StFixture *f, gint64 batch, const char *const *ports, guint units_per_port,
              const char *const *faults, gchar **out, gchar **err)
{
  return st_run_batch_logged (f, batch, ports, units_per_port, faults, out, err, NULL);
}

/* ---- what must hold after every fault ---- */

static void
st_hex_lower (const guint8 *d, gsize n, GString *out)
{
  for (gsize i = 0; i < n; i++)
    g_string_append_printf (out, "%02x", d[i]);
}

/* Each certificate that was signed (it has a DER) appears exactly once
 * among the C_Sign calls; a reserved certificate that was never signed
 * appears in none. C_Sign gets the digest of the to-be-signed certificate
 * (SHA-256 or SHA-384, after the CA key). Returns the number signed. */
static guint
st_check_one_sign_per_cert (StFixture *f)
{
  g_autofree gchar *path = st_count_path (f);
  g_autofree gchar *text = NULL;
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  g_autoptr(GHashTable) signs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], "C_Sign "))
      {
        const char *hex = lines[i] + strlen ("C_Sign ");
        guint n = GPOINTER_TO_UINT (g_hash_table_lookup (signs, hex));
        g_hash_table_replace (signs, g_strdup (hex), GUINT_TO_POINTER (n + 1));
      }
  g_autofree gchar *rows = st_sql (f, "SELECT hex(tbs) || ' ' || (der IS NOT NULL) || ' ' || state FROM certificates");
  g_auto(GStrv) certs = g_strsplit (rows, "\n", -1);
  guint n_signed = 0;
  for (guint i = 0; certs[i] != NULL && *certs[i] != '\0'; i++)
    {
      g_auto(GStrv) parts = g_strsplit (certs[i], " ", 3);
      g_assert_cmpuint (g_strv_length (parts), ==, 3);
      gsize len = strlen (parts[0]) / 2;
      g_autofree guint8 *tbs = g_malloc (len);
      for (gsize k = 0; k < len; k++)
        tbs[k] = (guint8) (g_ascii_xdigit_value (parts[0][2 * k]) << 4 | g_ascii_xdigit_value (parts[0][2 * k + 1]));
      guint seen = 0;
      const EVP_MD *mds[] = { EVP_sha256 (), EVP_sha384 () };
      for (guint m = 0; m < G_N_ELEMENTS (mds); m++)
        {
          guint8 md[EVP_MAX_MD_SIZE];
          unsigned int md_len = 0;
          g_assert_cmpint (EVP_Digest (tbs, len, md, &md_len, mds[m], NULL), ==, 1);
          g_autoptr(GString) hex = g_string_new (NULL);
          st_hex_lower (md, md_len, hex);
          seen += GPOINTER_TO_UINT (g_hash_table_lookup (signs, hex->str));
        }
      g_test_message ("certificate %s: signed %u time(s), der %s", parts[2], seen, parts[1]);
      if (g_strcmp0 (parts[1], "1") == 0)
        {
          g_assert_cmpuint (seen, ==, 1);
          n_signed++;
        }
      else
        {
          g_assert_cmpuint (seen, ==, 0);
          g_assert_cmpstr (parts[2], ==, "voided");
        }
    }
  return n_signed;
}

/* Nothing half recorded: no unit in 'started' or 'issuing', no certificate
 * in 'issuing'; a live certificate has its unit done, or (unconfirmed) its
 * unit waiting in 'issued' for the device; a failed unit's certificate is
 * voided or unconfirmed. Then the invariants of docs/architecture.md and `db check`. */
static void
st_check_nothing_half_recorded (StFixture *f)
{
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM units WHERE state IN ('started','issuing')"), ==, 0);
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM certificates WHERE state IN ('issuing','issued')"), ==, 0);
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM certificates c JOIN units u ON u.id = c.unit_id "
                                  "WHERE c.state = 'active' AND u.state <> 'done'"), ==, 0);
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM certificates c JOIN units u ON u.id = c.unit_id "
                                  "WHERE c.state = 'unconfirmed' AND u.state NOT IN ('issued','failed')"), ==, 0);
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM certificates c JOIN units u ON u.id = c.unit_id "
                                  "WHERE u.state = 'failed' AND c.state NOT IN ('voided','unconfirmed')"), ==, 0);
  st_check_db_invariants (f);
}

/* ---- HSM faults ---- */

/* A lost session at the second certificate's signature: the station logs
 * in again, takes the keys anew, signs once more, and every unit passes. */
static void
test_session_recovered (StFixture *f, gconstpointer data)
{
  const char *fault = data;
  st_use_fault_module (f);
  guint open = st_open_signatures (f);
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 5);
  g_autofree gchar *port = st_start_devsim (f, "--units", "3", "--seed", "71", NULL);
  g_autofree gchar *session = g_strdup_printf ("ST_FAULT_SESSION=%s", fault);
  g_autofree gchar *after = g_strdup_printf ("ST_FAULT_SESSION_AFTER=%u", open + 1);
  const char *faults[] = { session, after, NULL };
  const char *ports[] = { port, NULL };
  g_autofree gchar *out = NULL, *log = NULL;
  int rc = st_run_batch_logged (f, batch, ports, 3, faults, &out, NULL, &log);
  g_assert_cmpint (rc, ==, 0);
  g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, 3);
  /* The fault did happen, at a certificate's signature, and the service
   * named it in its log while the batch ran. */
  g_assert_cmpuint (st_count_events (f, "FAULT C_SignInit"), ==, 1);
  g_autofree gchar *note = g_strdup_printf ("the HSM answered %s while signing the certificate: logging in again",
                                            fault);
  g_assert_cmpuint (st_count_lines (log, note), ==, 1);
  g_assert_cmpuint (st_count_lines (log, "the HSM session was lost and is back: the certificate is signed"), ==, 1);
  g_assert_cmpuint (st_check_one_sign_per_cert (f), ==, 3);
  st_check_nothing_half_recorded (f);
}

typedef struct {
  const char *const *faults; /* with %u for the signatures at open */
  const char *message;       /* in the stop message */
} StStopCase;

static const char *const st_faults_device_error[] = { "ST_FAULT_SIGN=CKR_DEVICE_ERROR", "ST_FAULT_SIGN_AFTER=%u", NULL };
static const char *const st_faults_relogin_pin[] = { "ST_FAULT_SESSION=CKR_SESSION_HANDLE_INVALID",
                                                     "ST_FAULT_SESSION_AFTER=%u", "ST_FAULT_LOGIN=CKR_PIN_INCORRECT",
                                                     "ST_FAULT_LOGIN_AFTER=1", NULL };
static const char *const st_faults_gone[] = { "ST_FAULT_SESSION=CKR_DEVICE_REMOVED", "ST_FAULT_SESSION_AFTER=%u",
                                              "ST_FAULT_GONE=1", NULL };
static const char *const st_faults_lost_twice[] = { "ST_FAULT_SESSION=CKR_SESSION_HANDLE_INVALID",
                                                    "ST_FAULT_SESSION_AFTER=%u", "ST_FAULT_SESSION_TIMES=2", NULL };
static const StStopCase st_stop_device_error = { st_faults_device_error, "CKR_DEVICE_ERROR" };
static const StStopCase st_stop_relogin_pin = { st_faults_relogin_pin, "CKR_PIN_INCORRECT" };
static const StStopCase st_stop_gone = { st_faults_gone, "plug it in again" };
static const StStopCase st_stop_lost_twice = { st_faults_lost_twice, "CKR_SESSION_HANDLE_INVALID again after a new login" };

/* The manifest's CMS signature and the audit checkpoints' signatures take
 * the same recovery as a certificate's: a lost session at any one of the
 * signatures of `manifest export` (after the CA is open) is recovered, the
 * command succeeds, and the manifest and the audit log verify. Each run
 * loses the session at a later signature, until both kinds were hit. */
static void
test_session_recovered_signing_key (StFixture *f, gconstpointer data)
{
  st_use_fault_module (f);
  guint open = st_open_signatures (f);
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 2);
  g_autofree gchar *port = st_start_devsim (f, "--units", "2", "--seed", "76", NULL);
  const char *ports[] = { port, NULL };
  g_assert_cmpint (st_run_batch (f, batch, ports, 2, NULL, NULL, NULL), ==, 0);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  gboolean hit_manifest = FALSE, hit_checkpoint = FALSE;
  for (guint k = 0; k < 4 && !(hit_manifest && hit_checkpoint); k++)
    {
      /* A service of its own for each run (the one before it stopped
       * first, with its closing checkpoint, so that only this service's
       * signatures are counted): its unlock makes the first @open
       * signatures, and the fault comes at the command's (k+1)th. */
      st_service_stop (f);
      g_autofree gchar *count = st_count_path (f);
      g_unlink (count);
      g_autofree gchar *after = g_strdup_printf ("ST_FAULT_SESSION_AFTER=%u", open + k);
      const char *faults[] = { "ST_FAULT_SESSION=CKR_SESSION_HANDLE_INVALID", after, NULL };
      g_auto(GStrv) env = st_fault_env (f, faults);
      g_autofree gchar *name = g_strdup_printf ("manifest-%u", k);
      g_autofree gchar *dir = g_build_filename (f->tmp, name, NULL);
      const char *args[] = { "manifest", "export", id, "--out", dir, NULL };
      g_autofree gchar *out = NULL, *log = NULL;
      g_assert_cmpint (st_run_logged (f, (const char *const *) env, &out, NULL, &log, args), ==, 0);
      /* The unlock signed without a fault; every fault injected during the
       * command was recovered from, and named in the service's log. */
      guint n_faults = st_count_events (f, "FAULT C_SignInit");
      g_test_message ("run %u: %u fault(s) injected", k, n_faults);
      g_assert_cmpuint (st_count_lines (log, "CKR_SESSION_HANDLE_INVALID while signing"), ==, n_faults);
      g_assert_cmpuint (st_count_lines (log, "logging in again"), ==, n_faults);
      g_assert_cmpuint (st_count_lines (log, "the HSM session was lost and is back"), ==, n_faults);
      hit_manifest |= strstr (log, "while signing the manifest") != NULL;
      hit_checkpoint |= strstr (log, "while signing the audit checkpoint") != NULL;
      g_autofree gchar *vout = NULL;
      g_assert_cmpint (st_run_station (f, &vout, NULL, "manifest", "verify", dir, NULL), ==, 0);
      g_assert_nonnull (strstr (vout, "manifest verified"));
    }
  g_assert_true (hit_manifest);
  g_assert_true (hit_checkpoint);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "audit", "verify", NULL), ==, 0);
  g_assert_cmpint (st_sql_int (f, "SELECT max(seq) FROM audit_checkpoints"), ==,
                   st_sql_int (f, "SELECT max(seq) FROM audit"));
  st_check_nothing_half_recorded (f);
}

/* An HSM that cannot sign any more after the first certificate: the
 * line stops with a clear message, the second unit is recorded failed
 * with its reserved certificate voided, and a restart on a working HSM
 * carries on. */
static void
test_hsm_stops_line (StFixture *f, gconstpointer data)
{
  const StStopCase *c = data;
  st_use_fault_module (f);
  guint open = st_open_signatures (f);
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 5);
  g_autofree gchar *state = g_build_filename (f->tmp, "devsim.json", NULL);
  g_autofree gchar *port = st_start_devsim (f, "--units", "3", "--seed", "72", "--state", state, NULL);
  g_autoptr(GPtrArray) faults = g_ptr_array_new_with_free_func (g_free);
  g_autofree gchar *first_cert = g_strdup_printf ("%u", open + 1);
  for (guint i = 0; c->faults[i] != NULL; i++)
    {
      g_auto(GStrv) parts = g_strsplit (c->faults[i], "%u", -1);
      g_ptr_array_add (faults, g_strjoinv (first_cert, parts));
    }
  g_ptr_array_add (faults, NULL);
  const char *ports[] = { port, NULL };
  g_autofree gchar *out = NULL, *err = NULL;
  int rc = st_run_batch (f, batch, ports, 3, (const char *const *) faults->pdata, &out, &err);
  g_assert_cmpint (rc, ==, ST_RC_STOPPED);
  g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, 1);
  g_assert_nonnull (strstr (err, "the line stopped"));
  g_assert_nonnull (strstr (err, "the HSM"));
  g_assert_nonnull (strstr (err, c->message));
  g_assert_nonnull (strstr (err, "run the batch again"));
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM units WHERE state = 'done'"), ==, 1);
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM units u JOIN certificates c ON c.unit_id = u.id "
                                  "WHERE u.state = 'failed' AND u.fail_step = 'sign' AND c.state = 'voided'"), ==, 1);
  g_assert_cmpuint (st_check_one_sign_per_cert (f), ==, 1);
  st_check_nothing_half_recorded (f);

  /* The HSM is back: the line carries on with the same device. */
  g_clear_pointer (&out, g_free);
  rc = st_run_batch (f, batch, ports, 2, NULL, &out, NULL);
  g_assert_cmpint (rc, ==, 0);
  g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, 2);
  g_assert_cmpuint (st_check_one_sign_per_cert (f), ==, 3);
  st_check_nothing_half_recorded (f);
  const char *states[] = { state, NULL };
  st_stop_devsims (f);
  g_assert_cmpuint (st_check_devices_on_record (f, states, TRUE), ==, 3);
}

/* A slow C_Sign on two sockets at once: every unit passes, one signature
 * per certificate. */
static void
test_slow_sign (StFixture *f, gconstpointer data)
{
  st_use_fault_module (f);
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 4);
  g_autofree gchar *p1 = st_start_devsim (f, "--units", "2", "--seed", "73", NULL);
  g_autofree gchar *p2 = st_start_devsim (f, "--units", "2", "--seed", "74", NULL);
  const char *faults[] = { "ST_FAULT_SIGN_DELAY_MS=400", NULL };
  const char *ports[] = { p1, p2, NULL };
  g_autofree gchar *out = NULL;
  g_assert_cmpint (st_run_batch (f, batch, ports, 2, faults, &out, NULL), ==, 0);
  g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, 4);
  g_assert_cmpuint (st_check_one_sign_per_cert (f), ==, 4);
  st_check_nothing_half_recorded (f);
}

/* A token that logs idle sessions out: the pause between two devices
 * kills the session; the station notices before it signs (no failed
 * signature at all) and every unit passes. */
static void
test_idle_logout (StFixture *f, gconstpointer data)
{
  st_use_fault_module (f);
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 2);
  g_autofree gchar *port = st_start_devsim (f, "--units", "2", "--seed", "75", "--swap-delay-ms", "1600", NULL);
  const char *faults[] = { "ST_FAULT_IDLE_MS=1000", NULL };
  const char *ports[] = { port, NULL };
  g_autofree gchar *out = NULL;
  g_assert_cmpint (st_run_batch (f, batch, ports, 2, faults, &out, NULL), ==, 0);
  g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, 2);
  g_assert_cmpuint (st_count_events (f, "IDLE-LOGOUT"), >=, 1);
  g_assert_cmpuint (st_count_events (f, "FAULT"), ==, 0);
  g_assert_cmpuint (st_check_one_sign_per_cert (f), ==, 2);
  st_check_nothing_half_recorded (f);
}

/* `batch run` on a locked station: refused, naming what unlocks it. */
static void
st_assert_run_refused_locked (StFixture *f, const char *const *env, const char *const *args)
{
  g_autofree gchar *out = NULL, *err = NULL;
  g_assert_cmpint (st_run_stationv (f, env, &out, &err, args), ==, ST_RC_STOPPED);
  g_assert_nonnull (strstr (err, "the station is locked"));
  g_assert_nonnull (strstr (err, "'station unlock'"));
  g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, 0);
}

/* A wrong PIN, a PIN the token refuses, and a key that is not in the
 * token: each a clear error of `station unlock` (the one command that
 * gives the service the HSM PIN); the station stays locked, a batch run is
 * refused, and nothing is issued. */
static void
test_wrong_pin_and_missing_key (StFixture *f, gconstpointer data)
{
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 2);
  g_autofree gchar *port = st_start_devsim (f, "--units", "1", "--seed", "76", NULL);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  const char *args[] = { "batch", "run", id, "--port", port, "--units", "1", NULL };
  const char *unlock[] = { "unlock", NULL };

  /* The real module, a wrong PIN: the fixture unlocked the service, an
   * admin locks it, and unlocking with the wrong PIN fails. */
  g_assert_cmpint (st_run_station (f, NULL, NULL, "lock", NULL), ==, 0);
  st_assert_run_refused_locked (f, NULL, args);
  const char *wrong[] = { "STATION_HSM_PIN=135799", NULL };
  g_autofree gchar *err = NULL;
  g_assert_cmpint (st_run_stationv (f, wrong, NULL, &err, unlock), !=, 0);
  g_assert_nonnull (strstr (err, "wrong PIN"));
  g_assert_nonnull (strstr (err, "CKR_PIN_INCORRECT"));
  st_assert_run_refused_locked (f, NULL, args);

  /* Through the fault module: the token refuses the right PIN, at the
   * fixture's unlock when the service starts and at this one. */
  st_use_fault_module (f);
  g_autofree gchar *count = st_count_path (f);
  g_unlink (count);
  const char *login[] = { "ST_FAULT_LOGIN=CKR_PIN_INCORRECT", NULL };
  g_auto(GStrv) env = st_fault_env (f, login);
  const char *right[] = { "STATION_HSM_PIN=" ST_TEST_PIN, NULL };
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
  g_strv_builder_addv (b, (const char **) env);
  g_strv_builder_addv (b, right);
  g_auto(GStrv) env_pin = g_strv_builder_end (b);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_stationv (f, (const char *const *) env_pin, NULL, &err, unlock), !=, 0);
  g_assert_nonnull (strstr (err, "wrong PIN"));
  g_assert_nonnull (strstr (err, "CKR_PIN_INCORRECT"));
  st_assert_run_refused_locked (f, (const char *const *) env, args);
  g_assert_cmpuint (st_count_events (f, "FAULT C_Login"), >=, 1);
  g_assert_cmpuint (st_count_events (f, "C_Sign "), ==, 0);

  /* A CA key URI that names no key of the token (the service reads it
   * when it starts). */
  g_autofree gchar *key = st_conf_get (f, "ca-key");
  g_autofree gchar *missing = g_strdup ("pkcs11:token=station-demo;object=no-such-key;type=private");
  st_conf_set (f, "ca-key", missing);
  st_service_stop (f);
  g_clear_pointer (&err, g_free);
  g_auto(GStrv) env2 = st_fault_env (f, NULL);
  g_assert_cmpint (st_run_stationv (f, (const char *const *) env2, NULL, &err, unlock), !=, 0);
  g_assert_nonnull (strstr (err, "the issuing CA key"));
  g_assert_nonnull (strstr (err, "no private key object"));
  g_assert_nonnull (strstr (err, "object=no-such-key"));
  st_assert_run_refused_locked (f, (const char *const *) env2, args);

  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM certificates"), ==, 0);
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM units"), ==, 0);
  st_conf_set (f, "ca-key", key);
  st_service_stop (f);
  st_check_nothing_half_recorded (f);
}

/* The CA key, read through the fault module with raw PKCS#11 calls in
 * this process: CKA_SENSITIVE, not CKA_EXTRACTABLE, never extractable, and
 * its value cannot be read. */
static CK_RV
st_p11_bool (CK_FUNCTION_LIST_PTR fl, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE t,
             CK_BBOOL *v)
{
  CK_ATTRIBUTE a = { t, v, sizeof *v };
  return fl->C_GetAttributeValue (s, o, &a, 1);
}

static void
test_ca_key_sensitive (StFixture *f, gconstpointer data)
{
  /* The station's own view, through the module. */
  st_use_fault_module (f);
  g_auto(GStrv) env = st_fault_env (f, NULL);
  const char *args[] = { "setup", "show", NULL };
  g_autofree gchar *out = NULL;
  g_assert_cmpint (st_run_stationv (f, (const char *const *) env, &out, NULL, args), ==, 0);
  g_assert_cmpuint (st_count_lines (out, "in the token: sensitive, not extractable, never extractable"), >=, 2);

  /* And the token's, without the station's code. */
  g_autofree gchar *conf = st_conf_get (f, "softhsm2-conf");
  g_setenv ("SOFTHSM2_CONF", conf, TRUE);
  g_setenv ("ST_FAULT_MODULE", g_getenv ("ST_SOFTHSM_MODULE"), TRUE);
  void *dl = dlopen (g_getenv ("ST_FAULT_PKCS11"), RTLD_NOW | RTLD_LOCAL);
  g_assert_nonnull (dl);
  CK_C_GetFunctionList get = (CK_C_GetFunctionList) dlsym (dl, "C_GetFunctionList");
  g_assert_nonnull (get);
  CK_FUNCTION_LIST_PTR fl = NULL;
  g_assert_cmpuint (get (&fl), ==, CKR_OK);
  g_assert_cmpuint (fl->C_Initialize (NULL), ==, CKR_OK);
  CK_SLOT_ID slots[8];
  CK_ULONG n = G_N_ELEMENTS (slots);
  g_assert_cmpuint (fl->C_GetSlotList (CK_TRUE, slots, &n), ==, CKR_OK);
  g_autofree gchar *label = st_conf_get (f, "token");
  gboolean found = FALSE;
  CK_SLOT_ID slot = 0;
  for (CK_ULONG i = 0; i < n && !found; i++)
    {
      CK_TOKEN_INFO ti;
      g_assert_cmpuint (fl->C_GetTokenInfo (slots[i], &ti), ==, CKR_OK);
      g_autofree gchar *l = g_strstrip (g_strndup ((const char *) ti.label, sizeof ti.label));
      if (g_strcmp0 (l, label) == 0)
        {
          found = TRUE;
          slot = slots[i];
        }
    }
  g_assert_true (found);
  CK_SESSION_HANDLE s;
  g_assert_cmpuint (fl->C_OpenSession (slot, CKF_SERIAL_SESSION, NULL, NULL, &s), ==, CKR_OK);
  g_assert_cmpuint (fl->C_Login (s, CKU_USER, (CK_UTF8CHAR_PTR) ST_TEST_PIN, strlen (ST_TEST_PIN)), ==, CKR_OK);
  const char *keys[] = { "issuing-ca", "station-signing" };
  for (guint k = 0; k < G_N_ELEMENTS (keys); k++)
    {
      CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
      CK_ATTRIBUTE tmpl[] = {
        { CKA_CLASS, &cls, sizeof cls },
        { CKA_LABEL, (void *) keys[k], strlen (keys[k]) },
      };
      g_assert_cmpuint (fl->C_FindObjectsInit (s, tmpl, G_N_ELEMENTS (tmpl)), ==, CKR_OK);
      CK_OBJECT_HANDLE objs[2];
      CK_ULONG nobj = 0;
      g_assert_cmpuint (fl->C_FindObjects (s, objs, G_N_ELEMENTS (objs), &nobj), ==, CKR_OK);
      g_assert_cmpuint (fl->C_FindObjectsFinal (s), ==, CKR_OK);
      g_assert_cmpuint (nobj, ==, 1);
      CK_BBOOL sensitive = CK_FALSE, extractable = CK_TRUE, never = CK_FALSE, always = CK_FALSE;
      g_assert_cmpuint (st_p11_bool (fl, s, objs[0], CKA_SENSITIVE, &sensitive), ==, CKR_OK);
      g_assert_cmpuint (st_p11_bool (fl, s, objs[0], CKA_EXTRACTABLE, &extractable), ==, CKR_OK);
      g_assert_cmpuint (st_p11_bool (fl, s, objs[0], CKA_NEVER_EXTRACTABLE, &never), ==, CKR_OK);
      g_assert_cmpuint (st_p11_bool (fl, s, objs[0], CKA_ALWAYS_SENSITIVE, &always), ==, CKR_OK);
      g_assert_true (sensitive);
      g_assert_false (extractable);
      g_assert_true (never);
      g_assert_true (always);
      /* The private value stays in the token. */
      guint8 buf[512];
      CK_ATTRIBUTE value = { CKA_VALUE, buf, sizeof buf };
      CK_RV rv = fl->C_GetAttributeValue (s, objs[0], &value, 1);
      g_assert_cmpuint (rv, ==, CKR_ATTRIBUTE_SENSITIVE);
      g_assert_cmpuint (value.ulValueLen, ==, CK_UNAVAILABLE_INFORMATION);
    }
  fl->C_Logout (s);
  fl->C_CloseSession (s);
  g_assert_cmpuint (fl->C_Finalize (NULL), ==, CKR_OK);
  dlclose (dl);
}

/* ---- the HSM PIN ---- */

/* Reads /proc/@pid/@name (NUL-separated strings), which must not be empty:
 * the process still runs. */
static GBytes *
st_proc_read (GPid pid, const char *name)
{
  g_autofree gchar *path = g_strdup_printf ("/proc/%d/%s", (int) pid, name);
  gchar *data = NULL;
  gsize len = 0;
  g_autoptr(GError) error = NULL;
  g_assert_true (g_file_get_contents (path, &data, &len, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (len, >, 0);
  return g_bytes_new_take (data, len);
}

static gboolean
st_bytes_contain (GBytes *bytes, const char *needle)
{
  gsize len = 0;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  return memmem (data, len, needle, strlen (needle)) != NULL;
}

/* The command line and environment of a running process: @present must be
 * in its environment (what it was started with is what we read), the test
 * PIN in neither. */
static void
st_assert_pin_not_in_process (GPid pid, const char *present)
{
  g_assert_cmpint (pid, >, 0);
  g_autoptr(GBytes) cmdline = st_proc_read (pid, "cmdline");
  g_autoptr(GBytes) env_bytes = st_proc_read (pid, "environ");
  g_assert_true (st_bytes_contain (env_bytes, present));
  g_assert_false (st_bytes_contain (env_bytes, "STATION_HSM_PIN"));
  g_assert_false (st_bytes_contain (env_bytes, ST_TEST_PIN));
  g_assert_false (st_bytes_contain (cmdline, ST_TEST_PIN));
}

/* The HSM PIN goes from `station unlock` to the service and stays there: it
 * is in neither the service's command line nor its environment, nor those of
 * a client running a batch, nor in anything a client or the service prints. */
static void
test_hsm_pin_stays_in_service (StFixture *f, gconstpointer data)
{
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 2);
  g_autofree gchar *port = st_start_devsim (f, "--units", "2", "--seed", "79", "--swap-delay-ms", "1500", NULL);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  /* a service of its own, started with a setting of ours in its
   * environment and unlocked (by `station unlock`, the PIN in that
   * client's environment only) */
  g_auto(GStrv) env = st_fault_env (f, NULL);
  st_service_stop (f);
  st_service_ensure (f, (const char *const *) env);
  g_autofree gchar *count = st_count_path (f);
  g_autofree gchar *present = g_strdup_printf ("ST_FAULT_COUNT_FILE=%s", count);

  /* an admin unlocks it again (it is unlocked already): the PIN is not echoed */
  const char *unlock[] = { "unlock", NULL };
  g_autofree gchar *uout = NULL, *uerr = NULL;
  g_assert_cmpint (st_run_stationv (f, (const char *const *) env, &uout, &uerr, unlock), ==, 0);
  g_assert_null (strstr (uout, ST_TEST_PIN));
  g_assert_null (strstr (uerr, ST_TEST_PIN));

  /* a batch runs: the client and the service, while it runs */
  const char *args[] = { "batch", "run", id, "--port", port, "--units", "2", "--wait", "20", NULL };
  GSubprocess *client = st_start_station (f, (const char *const *) env, args);
  GPid client_pid = (GPid) g_ascii_strtoll (g_subprocess_get_identifier (client), NULL, 10);
  st_assert_pin_not_in_process (client_pid, "STATION_OPERATOR_PIN=");
  st_assert_pin_not_in_process (st_service_pid (f), present);
  g_autofree gchar *out = NULL, *err = NULL;
  int rc = st_finish_station (client, &out, &err);
  g_object_unref (client);
  g_assert_cmpint (rc, ==, 0);
  g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, 2);
  g_assert_null (strstr (out, ST_TEST_PIN));
  g_assert_null (strstr (err, ST_TEST_PIN));

  /* after the run: the service still has it only in its memory */
  st_assert_pin_not_in_process (st_service_pid (f), present);
  g_autofree gchar *sout = NULL, *serr = NULL;
  g_assert_cmpint (st_run_stationv (f, (const char *const *) env, &sout, &serr,
                                    (const char *const[]) { "setup", "show", NULL }), ==, 0);
  g_assert_nonnull (strstr (sout, "(logged in)"));
  g_assert_null (strstr (sout, ST_TEST_PIN));
  g_assert_null (strstr (serr, ST_TEST_PIN));
  g_autofree gchar *log = st_service_read_log (f);
  g_assert_null (strstr (log, ST_TEST_PIN));
  st_check_nothing_half_recorded (f);
}

/* ---- storage ---- */

/* `station db backup`: an online copy that `db check` accepts, never
 * over an existing file unless --force. */
static void
test_db_backup (StFixture *f, gconstpointer data)
{
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 2);
  g_autofree gchar *port = st_start_devsim (f, "--units", "2", "--seed", "77", NULL);
  const char *ports[] = { port, NULL };
  g_autofree gchar *out = NULL;
  g_assert_cmpint (st_run_batch (f, batch, ports, 2, NULL, &out, NULL), ==, 0);
  g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, 2);

  g_autofree gchar *dest = g_build_filename (f->tmp, "backup.db", NULL);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_station (f, &out, NULL, "db", "backup", dest, NULL), ==, 0);
  g_assert_true (g_file_test (dest, G_FILE_TEST_IS_REGULAR));
  g_autofree gchar *journal = g_strconcat (dest, "-wal", NULL);
  g_assert_false (g_file_test (journal, G_FILE_TEST_EXISTS));

  /* Not over an existing file... */
  g_autofree gchar *err = NULL;
  g_assert_cmpint (st_run_station (f, NULL, &err, "db", "backup", dest, NULL), !=, 0);
  g_autofree gchar *exists = g_strdup_printf ("%s exists", dest);
  g_assert_nonnull (strstr (err, exists));
  g_assert_nonnull (strstr (err, "--force"));
  /* ...unless asked to. */
  g_assert_cmpint (st_run_station (f, NULL, NULL, "db", "backup", dest, "--force", NULL), ==, 0);

  /* The copy holds the same records, and a station on it passes db check. */
  g_autofree gchar *q = g_strdup_printf ("SELECT count(*) FROM units WHERE state = 'done'");
  g_autofree gchar *copy_count = NULL;
  g_assert_cmpint (st_run_tool (&copy_count, NULL, "sqlite3", "-batch", dest, q, NULL), ==, 0);
  g_assert_cmpint (g_ascii_strtoll (copy_count, NULL, 10), ==, st_sql_int (f, q));
  g_assert_cmpint (g_ascii_strtoll (copy_count, NULL, 10), ==, 2);
  /* the service opens the database named in station.conf when it starts */
  st_conf_set (f, "db", dest);
  st_service_stop (f);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_station (f, &out, NULL, "db", "check", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "integrity: ok"));
}

/* The database on a small file system that fills up in the middle of a
 * batch: the line stops, what was acknowledged is on record, the message
 * says what to do, and once space is freed a restart carries on. */
static void
test_disk_full (StFixture *f, gconstpointer data)
{
  if (geteuid () != 0)
    {
      g_test_skip ("needs root to mount a small tmpfs for the database");
      return;
    }
  g_autofree gchar *small = g_build_filename (f->tmp, "small", NULL);
  g_assert_cmpint (g_mkdir (small, 0700), ==, 0);
  if (mount ("st-test-full", small, "tmpfs", MS_NOSUID | MS_NODEV, "size=2m,mode=0700") != 0)
    {
      g_test_skip ("cannot mount a tmpfs (not allowed in this container?)");
      return;
    }
  /* The database moves to the small file system (HOME/station.db is a
   * symbolic link to it: SQLite and the tests follow it). */
  g_autofree gchar *db_path = st_conf_get (f, "db");
  g_autofree gchar *small_db = g_build_filename (small, "station.db", NULL);
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 20);
  g_autofree gchar *copy_out = NULL;
  g_assert_cmpint (st_run_station (f, &copy_out, NULL, "db", "backup", small_db, NULL), ==, 0);
  /* the service holds the database open: it stops first, and the next
   * command starts it on the moved one */
  st_service_stop (f);
  g_assert_cmpint (g_unlink (db_path), ==, 0);
  g_assert_cmpint (symlink (small_db, db_path), ==, 0);
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM batches"), ==, 1);

  /* Fill it, then leave a little room: some units fit, not all. The room
   * is sized so that the disk fills at the third unit's reservation (two
   * units pass), before its device is touched: were it full at a DONE, the
   * unit would wait, unconfirmed, for a device the simulator does not bring
   * back. 336 KiB since the records were bound to the log and logins
   * counted before the hash (bigger payloads, two writes per login): 320
   * and 352 KiB both fill there; 288 KiB (schema 5) now fills at the
   * second unit's DONE. */
  g_autofree gchar *filler = g_build_filename (small, "filler", NULL);
  FILE *fp = fopen (filler, "w");
  g_assert_nonnull (fp);
  guint8 block[4096] = { 0 };
  while (fwrite (block, 1, sizeof block, fp) == sizeof block && fflush (fp) == 0)
    ;
  fclose (fp);
  GStatBuf st;
  g_assert_cmpint (g_stat (filler, &st), ==, 0);
  g_assert_cmpint (st.st_size, >, 336 * 1024);
  g_assert_cmpint (truncate (filler, st.st_size - 336 * 1024), ==, 0);
  struct statvfs vfs;
  g_assert_cmpint (statvfs (small, &vfs), ==, 0);
  g_test_message ("%lu bytes free for the database", (unsigned long) (vfs.f_bavail * vfs.f_frsize));

  g_autofree gchar *state = g_build_filename (f->tmp, "devsim.json", NULL);
  g_autofree gchar *port = st_start_devsim (f, "--units", "8", "--seed", "78", "--state", state, NULL);
  const char *ports[] = { port, NULL };
  g_autofree gchar *out = NULL, *err = NULL;
  int rc = st_run_batch (f, batch, ports, 8, NULL, &out, &err);
  guint passed = st_count_lines (out, " PASSED ");
  g_test_message ("%u units passed before the disk was full", passed);
  g_assert_cmpint (rc, ==, ST_RC_STOPPED);
  g_assert_cmpuint (passed, <, 8);
  g_assert_nonnull (strstr (err, "the line stopped"));
  g_assert_nonnull (strstr (err, "is full: free space, then restart the station"));

  /* Space again, and the station restarted as the message asks: what was
   * acknowledged is on record, and the line carries on. */
  g_assert_cmpint (g_unlink (filler), ==, 0);
  st_service_stop (f);
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM units WHERE state = 'done'"), ==, passed);
  g_clear_pointer (&out, g_free);
  rc = st_run_batch (f, batch, ports, 8 - passed, NULL, &out, NULL);
  g_assert_cmpint (rc, ==, 0);
  g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, 8 - passed);
  st_stop_devsims (f);
  const char *states[] = { state, NULL };
  g_assert_cmpuint (st_check_devices_on_record (f, states, TRUE), ==, 8);
  st_check_nothing_half_recorded (f);
  g_assert_cmpint (umount2 (small, MNT_DETACH), ==, 0);
}

int
main (int argc, char **argv)
{
  st_test_init (&argc, &argv);
  st_test_add_station ("/faults/session-handle-invalid", "CKR_SESSION_HANDLE_INVALID", test_session_recovered);
  st_test_add_station ("/faults/device-removed-and-back", "CKR_DEVICE_REMOVED", test_session_recovered);
  st_test_add_station ("/faults/session-lost-at-manifest-and-checkpoint", NULL, test_session_recovered_signing_key);
  st_test_add_station ("/faults/device-error-stops", &st_stop_device_error, test_hsm_stops_line);
  st_test_add_station ("/faults/relogin-pin-incorrect-stops", &st_stop_relogin_pin, test_hsm_stops_line);
  st_test_add_station ("/faults/token-gone-stops", &st_stop_gone, test_hsm_stops_line);
  st_test_add_station ("/faults/session-lost-twice-stops", &st_stop_lost_twice, test_hsm_stops_line);
  st_test_add_station ("/faults/slow-sign", NULL, test_slow_sign);
  st_test_add_station ("/faults/idle-logout", NULL, test_idle_logout);
  st_test_add_station ("/faults/wrong-pin-and-missing-key", NULL, test_wrong_pin_and_missing_key);
  st_test_add_station ("/faults/ca-key-sensitive", NULL, test_ca_key_sensitive);
  st_test_add_station ("/faults/hsm-pin-stays-in-service", NULL, test_hsm_pin_stays_in_service);
  st_test_add_station ("/storage/db-backup", NULL, test_db_backup);
  st_test_add_station ("/storage/disk-full", NULL, test_disk_full);
  return g_test_run ();
}
