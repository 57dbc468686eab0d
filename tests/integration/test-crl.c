/* The CRL (issue 15, item 3; docs/revocation.md): `station crl issue`
 * makes a CRLv2 signed in the HSM by the issuing CA key; `station unit
 * revoke` revokes a shipped unit's certificate; `manifest export` adds a
 * freshly issued crl.pem that `manifest verify` checks.
 *
 * One real batch, made once: one certificate voided while 'issuing' (a
 * crash right after the reservation: it was never signed and must not be
 * listed), one voided after it was signed (the device answered COMMIT
 * with an error), three active. Then, against stock tools:
 *  - the CRL verifies with `openssl crl -verify` and GnuTLS
 *    `certtool --verify-crl` under the chain the manifest carries;
 *  - it lists exactly the certificates the manifest (exported through the
 *    CLI) shows voided or revoked, each with its reason code;
 *  - its number grows from one issue to the next, through `manifest
 *    export` too, and a refused issue takes no number;
 *  - roles: a lead revokes, an operator cannot; a lead or an admin
 *    issues, QA cannot; an unknown serial, a second revocation, a voided
 *    certificate and a reason that is not for devices are refused, each
 *    with what to do;
 *  - audit verify and db check pass after all that, and a revocation or
 *    a CRL number written with sqlite3 behind the station's back is named. */
#include <signal.h>
#include <string.h>

#include "st-test-json.h"
#include "st-test-run.h"

typedef struct {
  gchar *serial;   /* as the manifest shows it */
  gchar *uid;
  gchar *status;
} CrlUnit;

static void
crl_unit_free (CrlUnit *u)
{
  g_free (u->serial);
  g_free (u->uid);
  g_free (u->status);
  g_free (u);
}

/* The units of a manifest folder that carry a certificate. */
static GPtrArray *
manifest_certs (const char *dir)
{
  g_autoptr(JsonParser) parser = st_test_load_manifest (dir);
  JsonArray *units = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)),
                                                   "units");
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify) crl_unit_free);
  for (guint i = 0; i < json_array_get_length (units); i++)
    {
      JsonObject *u = json_array_get_object_element (units, i);
      if (!json_object_has_member (u, "certificate"))
        continue;
      CrlUnit *c = g_new0 (CrlUnit, 1);
      c->serial = g_ascii_strdown (json_object_get_string_member (u, "cert_serial"), -1);
      c->uid = g_strdup (json_object_get_string_member (u, "uid"));
      c->status = g_strdup (json_object_get_string_member (u, "certificate_status"));
      g_ptr_array_add (out, c);
    }
  return out;
}

static const CrlUnit *
nth_with_status (GPtrArray *units, const char *status, guint n)
{
  for (guint i = 0; i < units->len; i++)
    {
      const CrlUnit *u = g_ptr_array_index (units, i);
      if (g_strcmp0 (u->status, status) == 0 && n-- == 0)
        return u;
    }
  g_assert_not_reached ();
}

/* A serial as OpenSSL prints it: upper-case hex, no leading zero octet. */
static gchar *
openssl_serial (const char *hex)
{
  const char *p = hex;
  while (p[0] == '0' && p[1] == '0' && p[2] != '\0')
    p += 2;
  return g_ascii_strup (p, -1);
}

/* What `openssl crl -text` says of @crl: its serials (upper-case hex) to
 * their reason ("Key Compromise", ...), and its CRL number. */
static GHashTable *
crl_entries (const char *crl, gint64 *number)
{
  g_autofree gchar *out = NULL, *err = NULL;
  g_assert_cmpint (st_run_tool (&out, &err, "openssl", "crl", "-in", crl, "-noout", "-text", NULL), ==, 0);
  GHashTable *entries = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_auto(GStrv) lines = g_strsplit (out, "\n", -1);
  gchar *serial = NULL;
  *number = -1;
  for (guint i = 0; lines[i] != NULL; i++)
    {
      const char *l = g_strstrip (lines[i]);
      if (g_str_has_prefix (l, "Serial Number: "))
        {
          g_free (serial);
          serial = g_strdup (l + strlen ("Serial Number: "));
          g_hash_table_insert (entries, g_strdup (serial), g_strdup ("none"));
        }
      else if (g_str_has_prefix (l, "X509v3 CRL Reason Code") && serial != NULL && lines[i + 1] != NULL)
        g_hash_table_insert (entries, g_strdup (serial), g_strdup (g_strstrip (lines[i + 1])));
      else if (g_str_has_prefix (l, "X509v3 CRL Number") && lines[i + 1] != NULL)
        *number = g_ascii_strtoll (g_strstrip (lines[i + 1]), NULL, 10);
    }
  g_free (serial);
  g_assert_nonnull (strstr (out, "Version 2 (0x1)"));
  g_assert_nonnull (strstr (out, "X509v3 Authority Key Identifier"));
  g_assert_nonnull (strstr (out, "Next Update: "));
  g_assert_nonnull (strstr (out, "ecdsa-with-SHA256"));
  return entries;
}

/* The CRL verifies with both stock stacks under the folder's chain. */
static void
crl_verify_stock (StFixture *f, const char *crl, const char *chain_path)
{
  g_autofree gchar *out = NULL, *err = NULL;
  g_assert_cmpint (st_run_tool (&out, &err, "openssl", "crl", "-in", crl, "-noout", "-verify",
                                "-CAfile", chain_path, NULL), ==, 0);
  g_assert_nonnull (strstr (err, "verify OK"));
  /* GnuTLS: the issuing CA (the chain's first certificate) as the trusted list */
  g_autofree gchar *chain = NULL;
  g_assert_true (g_file_get_contents (chain_path, &chain, NULL, NULL));
  const char *end = strstr (chain, "-----END CERTIFICATE-----");
  g_assert_nonnull (end);
  g_autofree gchar *ca = g_strndup (chain, (gsize) (end - chain) + strlen ("-----END CERTIFICATE-----\n"));
  g_autofree gchar *ca_path = g_build_filename (f->tmp, "issuing-ca.pem", NULL);
  g_assert_true (g_file_set_contents (ca_path, ca, -1, NULL));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_tool (&out, &err, "certtool", "--verify-crl", "--load-ca-certificate", ca_path,
                                "--infile", crl, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "Verification output: Verified."));
  /* and a CA that did not sign it is refused: the check can fail */
  g_autofree gchar *root_path = g_build_filename (f->tmp, "root-only.pem", NULL);
  g_assert_true (g_file_set_contents (root_path, end + strlen ("-----END CERTIFICATE-----\n"), -1, NULL));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_tool (&out, &err, "certtool", "--verify-crl", "--load-ca-certificate", root_path,
                                "--infile", crl, NULL), !=, 0);
}

/* `crl issue` as @who; returns the number it printed (asserted to be the
 * CRL's own). */
static gint64
crl_issue (StFixture *f, const char *who, const char *pin, const char *path, const char *days)
{
  g_autofree gchar *out = NULL;
  int rc = days != NULL
    ? st_run_station_as (f, who, pin, NULL, &out, NULL, "crl", "issue", "--out", path, "--next-update", days, NULL)
    : st_run_station_as (f, who, pin, NULL, &out, NULL, "crl", "issue", "--out", path, NULL);
  g_assert_cmpint (rc, ==, 0);
  g_assert_true (g_str_has_prefix (out, "CRL number "));
  gint64 printed = g_ascii_strtoll (out + strlen ("CRL number "), NULL, 10);
  gint64 number = 0;
  g_autoptr(GHashTable) e = crl_entries (path, &number);
  g_assert_cmpint (number, ==, printed);
  return number;
}

static void
assert_lists_exactly (const char *crl, GPtrArray *units)
{
  gint64 number = 0;
  g_autoptr(GHashTable) entries = crl_entries (crl, &number);
  guint expected = 0;
  for (guint i = 0; i < units->len; i++)
    {
      const CrlUnit *u = g_ptr_array_index (units, i);
      g_autofree gchar *s = openssl_serial (u->serial);
      gboolean listed = g_hash_table_contains (entries, s);
      gboolean must = g_strcmp0 (u->status, "voided") == 0 || g_strcmp0 (u->status, "revoked") == 0;
      if (listed != must)
        g_error ("%s: certificate %s (%s) is %slisted", crl, u->serial, u->status, listed ? "" : "not ");
      expected += must;
      if (g_strcmp0 (u->status, "voided") == 0)
        g_assert_cmpstr (g_hash_table_lookup (entries, s), ==, "Cessation Of Operation");
    }
  g_assert_cmpuint (g_hash_table_size (entries), ==, expected);
}

/* A command that must be refused with exit status @expect_rc (ST_RC_*):
 * `station` run directly as @who, without the fixture's wait for a
 * service that might have died with a failing command (3 s each);
 * the service is asserted to be alive instead. Returns its stderr and
 * stdout joined. */
static gchar *
refused (StFixture *f, int expect_rc, const char *who, const char *pin, ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_ptr_array_add (argv, (gpointer) g_getenv ("ST_STATION"));
  g_ptr_array_add (argv, "--home");
  g_ptr_array_add (argv, f->home);
  g_ptr_array_add (argv, "--operator");
  g_ptr_array_add (argv, (gpointer) who);
  va_list ap;
  va_start (ap, pin);
  for (const char *a = va_arg (ap, const char *); a != NULL; a = va_arg (ap, const char *))
    g_ptr_array_add (argv, (gpointer) a);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE
                                                                | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_subprocess_launcher_setenv (l, "STATION_OPERATOR_PIN", pin, TRUE);
  g_subprocess_launcher_unsetenv (l, "STATION_HSM_PIN");
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) p = g_subprocess_launcher_spawnv (l, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  g_autofree gchar *out = NULL, *err = NULL;
  g_assert_true (g_subprocess_communicate_utf8 (p, NULL, NULL, &out, &err, &error));
  g_assert_no_error (error);
  g_autofree gchar *cmd = g_strjoinv (" ", (gchar **) argv->pdata + 3);
  g_test_message ("$ station %s (refused)\n%s%s", cmd, out, err);
  g_assert_true (g_subprocess_get_if_exited (p));
  g_assert_cmpint (g_subprocess_get_exit_status (p), ==, expect_rc);
  g_assert_cmpint (st_service_pid (f), !=, 0);
  return g_strconcat (err, out, NULL);
}

static void
test_crl (StFixture *f, gconstpointer data)
{
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 4);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  /* a certificate reserved, then the service killed: voided while 'issuing', never signed */
  g_autofree gchar *p1 = st_start_devsim (f, "--units", "1", "--seed", "1501", NULL);
  const char *crash_env[] = { "STATION_CRASH_AT=after-reserve", NULL };
  const char *run1[] = { "batch", "run", id, "--port", p1, "--units", "1", NULL };
  g_assert_cmpint (st_run_stationv (f, crash_env, NULL, NULL, run1), ==, 128 + SIGKILL);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "batch", "run", id, "--port", p1, "--units", "1",
                                   "--wait", "20", NULL), ==, 0);
  /* the second of three devices answers COMMIT with an error: voided after signing */
  g_autofree gchar *p2 = st_start_devsim (f, "--units", "3", "--seed", "1502", "--fault", "commit-storage",
                                          "--fault-unit", "2", NULL);
  g_autofree gchar *run2 = refused (f, ST_RC_CHECK, "op", "1111", "batch", "run", id, "--port", p2, "--units", "3", NULL);
  g_assert_nonnull (strstr (run2, "2 passed, 1 failed, 0 refused"));
  st_stop_devsims (f);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "batch", "close", id, NULL), ==, 0);
  /* the batch is as meant: two voided certificates, one of them never signed */
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM certificates WHERE state = 'voided' AND der IS NULL"), ==, 1);
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM certificates WHERE state = 'voided' AND der IS NOT NULL"), ==, 1);
  g_autofree gchar *unsigned_serial = st_sql (f, "SELECT serial FROM certificates WHERE der IS NULL");

  /* a CRL before any revocation */
  g_autofree gchar *crl0 = g_build_filename (f->tmp, "crl0.pem", NULL);
  gint64 n0 = crl_issue (f, "lead", "2222", crl0, NULL);
  g_assert_cmpint (n0, ==, 1);

  g_autofree gchar *m1 = g_build_filename (f->tmp, "m1", NULL);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "manifest", "export", id, "--out", m1, NULL), ==, 0);
  g_autoptr(GPtrArray) before = manifest_certs (m1);
  g_assert_cmpuint (before->len, ==, 4);   /* the unsigned one has no certificate to show */
  g_autofree gchar *chain_path = g_build_filename (m1, "ca-chain.pem", NULL);
  g_autofree gchar *m1_crl = g_build_filename (m1, "crl.pem", NULL);
  gint64 n_m1 = 0;
  g_autoptr(GHashTable) m1_entries = crl_entries (m1_crl, &n_m1);
  g_assert_cmpint (n_m1, ==, n0 + 1);   /* manifest export issued the next one */
  crl_verify_stock (f, crl0, chain_path);
  assert_lists_exactly (crl0, before);
  assert_lists_exactly (m1_crl, before);
  g_autofree gchar *unsigned_shown = openssl_serial (unsigned_serial);
  g_assert_false (g_hash_table_contains (m1_entries, unsigned_shown));

  const CrlUnit *a1 = nth_with_status (before, "active", 0);
  const CrlUnit *a2 = nth_with_status (before, "active", 1);
  const CrlUnit *a3 = nth_with_status (before, "active", 2);
  const CrlUnit *v1 = nth_with_status (before, "voided", 0);

  /* roles: an operator and QA cannot revoke, QA and an operator cannot issue */
  g_autofree gchar *out = NULL, *err = NULL;
  err = refused (f, ST_RC_AUTH, "op", "1111", "unit", "revoke", a1->serial,
                                      "--reason", "keyCompromise", NULL);
  g_assert_nonnull (strstr (err, "needs the role lead"));
  g_clear_pointer (&err, g_free);
  g_autofree gchar *crl_qa = g_build_filename (f->tmp, "crl-qa.pem", NULL);
  err = refused (f, ST_RC_AUTH, "qa", "3333", "crl", "issue", "--out", crl_qa,
                                      NULL);
  g_assert_nonnull (strstr (err, "needs the role lead or admin"));
  g_assert_false (g_file_test (crl_qa, G_FILE_TEST_EXISTS));
  g_clear_pointer (&err, g_free);

  /* a lead revokes by certificate serial, and by uid */
  g_assert_cmpint (st_run_station_as (f, "lead", "2222", NULL, &out, NULL, "unit", "revoke", a1->serial,
                                      "--reason", "keyCompromise", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "revoked (keyCompromise)"));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_station_as (f, "lead", "2222", NULL, &out, NULL, "unit", "revoke", a2->uid,
                                      "--reason", "superseded", NULL), ==, 0);
  g_assert_nonnull (strstr (out, a2->serial));
  g_clear_pointer (&out, g_free);
  /* refusals, each saying what to do */
  err = refused (f, ST_RC_ERROR, "lead", "2222", "unit", "revoke", a1->serial,
                                      "--reason", "unspecified", NULL);
  g_assert_nonnull (strstr (err, "already revoked: by lead at "));
  g_assert_nonnull (strstr (err, "(keyCompromise)"));
  g_clear_pointer (&err, g_free);
  err = refused (f, ST_RC_NOT_FOUND, "lead", "2222", "unit", "revoke", "0badc0de",
                                      "--reason", "unspecified", NULL);
  g_assert_nonnull (strstr (err, "there is no unit with the certificate serial, uid or product serial '0badc0de'"));
  g_clear_pointer (&err, g_free);
  err = refused (f, ST_RC_ERROR, "lead", "2222", "unit", "revoke", v1->serial,
                                      "--reason", "unspecified", NULL);
  g_assert_nonnull (strstr (err, "no active certificate to revoke"));
  g_assert_nonnull (strstr (err, "voided"));
  g_clear_pointer (&err, g_free);
  err = refused (f, ST_RC_ERROR, "lead", "2222", "unit", "revoke", a3->serial,
                                      "--reason", "cACompromise", NULL);
  g_assert_nonnull (strstr (err, "'cACompromise' is not a revocation reason for a device: give one of "
                                 "unspecified, keyCompromise, affiliationChanged, superseded, "
                                 "cessationOfOperation, privilegeWithdrawn"));
  g_clear_pointer (&err, g_free);
  /* a revoked certificate is not live: the batch counts only a3 */
  g_assert_cmpint (st_run_station (f, &out, NULL, "batch", "show", id, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "certificates 1 live, 2 voided, 0 unconfirmed, 0 disputed, 2 revoked\n"));
  g_assert_cmpuint (st_count_lines (out, " revoked "), ==, 2);
  g_clear_pointer (&out, g_free);

  /* the numbers go on: a lead's, an admin's (30 days), a refused one takes none */
  g_autofree gchar *crl1 = g_build_filename (f->tmp, "crl1.pem", NULL);
  g_autofree gchar *crl2 = g_build_filename (f->tmp, "crl2.pem", NULL);
  g_assert_cmpint (crl_issue (f, "lead", "2222", crl1, NULL), ==, n_m1 + 1);
  g_assert_cmpint (crl_issue (f, "admin", "4444", crl2, "30"), ==, n_m1 + 2);
  err = refused (f, ST_RC_ERROR, "lead", "2222", "crl", "issue", "--out", crl1,
                                      NULL);
  g_assert_nonnull (strstr (err, "give --force to replace it"));
  g_clear_pointer (&err, g_free);
  g_autofree gchar *crl3 = g_build_filename (f->tmp, "crl3.pem", NULL);
  err = refused (f, ST_RC_ERROR, "lead", "2222", "crl", "issue", "--out", crl3,
                                      "--next-update", "400", NULL);
  g_assert_nonnull (strstr (err, "1 to 365 days"));
  g_clear_pointer (&err, g_free);
  /* neither refusal took a number */
  g_assert_cmpint (st_sql_int (f, "SELECT max (number) FROM crls"), ==, n_m1 + 2);
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM crls WHERE der_sha256 IS NULL"), ==, 0);

  /* the CRLs after the revocations, against the manifest exported now */
  g_autofree gchar *m2 = g_build_filename (f->tmp, "m2", NULL);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "manifest", "export", id, "--out", m2, NULL), ==, 0);
  g_autoptr(GPtrArray) after = manifest_certs (m2);
  g_assert_cmpuint (after->len, ==, 4);
  guint n_revoked = 0;
  for (guint i = 0; i < after->len; i++)
    n_revoked += g_strcmp0 (((CrlUnit *) g_ptr_array_index (after, i))->status, "revoked") == 0;
  g_assert_cmpuint (n_revoked, ==, 2);
  g_autofree gchar *m2_crl = g_build_filename (m2, "crl.pem", NULL);
  gint64 n_m2 = 0;
  g_autoptr(GHashTable) m2_entries = crl_entries (m2_crl, &n_m2);
  g_assert_cmpint (n_m2, ==, n_m1 + 3);
  for (const char *const *c = (const char *const[]) { crl1, crl2, m2_crl, NULL }; *c != NULL; c++)
    {
      crl_verify_stock (f, *c, chain_path);
      assert_lists_exactly (*c, after);
    }
  g_autofree gchar *s1 = openssl_serial (a1->serial), *s2 = openssl_serial (a2->serial);
  g_assert_cmpstr (g_hash_table_lookup (m2_entries, s1), ==, "Key Compromise");
  g_assert_cmpstr (g_hash_table_lookup (m2_entries, s2), ==, "Superseded");
  g_assert_false (g_hash_table_contains (m2_entries, unsigned_shown));
  /* the admin's CRL is valid for 30 days */
  g_assert_cmpint (st_run_tool (&out, NULL, "openssl", "crl", "-in", crl2, "-noout", "-lastupdate",
                                "-nextupdate", "-dateopt", "iso_8601", NULL), ==, 0);
  g_auto(GStrv) dates = g_strsplit (out, "\n", -1);
  g_assert_true (g_str_has_prefix (dates[0], "lastUpdate=") && g_str_has_prefix (dates[1], "nextUpdate="));
  g_autoptr(GDateTime) last = g_date_time_new_from_iso8601 (dates[0] + strlen ("lastUpdate="), NULL);
  g_autoptr(GDateTime) next = g_date_time_new_from_iso8601 (dates[1] + strlen ("nextUpdate="), NULL);
  g_assert_nonnull (last);
  g_assert_nonnull (next);
  g_assert_cmpint (g_date_time_difference (next, last), ==, 30 * G_TIME_SPAN_DAY);
  g_clear_pointer (&out, g_free);

  /* manifest verify checks the crl.pem beside the manifest ... */
  g_assert_cmpint (st_run_station (f, &out, NULL, "manifest", "verify", m2, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "ok    crl.pem: a CRLv2 issued and signed by the issuing CA of ca-chain.pem"));
  g_assert_nonnull (strstr (out, "ok    crl.pem: lists all 3 voided or revoked certificate(s) of the manifest"));
  g_clear_pointer (&out, g_free);
  /* ... and rejects one that does not list a revoked certificate (the CRL from before) */
  g_autofree gchar *old_crl = NULL;
  g_assert_true (g_file_get_contents (crl0, &old_crl, NULL, NULL));
  g_assert_true (g_file_set_contents (m2_crl, old_crl, -1, NULL));
  out = refused (f, ST_RC_CHECK, "qa", "3333", "manifest", "verify", m2, NULL);
  g_assert_nonnull (strstr (out, "FAIL  crl.pem: 2 voided or revoked certificate(s) of the manifest are not on it"));
  g_clear_pointer (&out, g_free);
  /* ... or one signed by another CA (the device CRL made with a key of its own) */
  g_autofree gchar *key = g_build_filename (f->tmp, "other.key", NULL);
  g_autofree gchar *crt = g_build_filename (f->tmp, "other.crt", NULL);
  g_autofree gchar *cnf = g_build_filename (f->tmp, "other.cnf", NULL);
  g_autofree gchar *idx = g_build_filename (f->tmp, "index.txt", NULL);
  g_assert_true (g_file_set_contents (idx, "", -1, NULL));
  g_autofree gchar *conf = g_strdup_printf ("[ca]\ndefault_ca = c\n[c]\ndatabase = %s\n"
                                            "default_md = sha256\ndefault_crl_days = 7\n", idx);
  g_assert_true (g_file_set_contents (cnf, conf, -1, NULL));
  g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt, "-subj",
                                "/CN=Not the issuing CA", "-days", "2", NULL), ==, 0);
  g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "ca", "-gencrl", "-config", cnf, "-keyfile", key,
                                "-cert", crt, "-out", m2_crl, NULL), ==, 0);
  out = refused (f, ST_RC_CHECK, "qa", "3333", "manifest", "verify", m2, NULL);
  g_assert_nonnull (strstr (out, "FAIL  crl.pem: a CRLv2 issued and signed by the issuing CA"));
  g_clear_pointer (&out, g_free);

  /* the records: explained by the log, revocations and CRL numbers included */
  g_assert_cmpint (st_run_station (f, &out, NULL, "audit", "verify", NULL), ==, 0);
  g_autofree gchar *crls_ok = g_strdup_printf ("certificate(s), %" G_GINT64_FORMAT " CRL number(s))", n_m2);
  g_assert_nonnull (strstr (out, crls_ok));
  g_clear_pointer (&out, g_free);
  st_check_db_invariants (f);
  /* a revocation and a CRL number behind the station's back are named */
  g_autofree gchar *sql = g_strdup_printf ("UPDATE certificates SET state = 'revoked', revoke_reason = "
                                           "'unspecified', revoked_at = 1, revoked_by = 'mallory' WHERE "
                                           "serial = '%s'; INSERT INTO crls (number, this_update, "
                                           "next_update, issued_by) VALUES (99, 1, 2, 'mallory')", a3->serial);
  g_autofree gchar *done = st_sql (f, sql);
  gint64 a3_id = st_sql_int (f, "SELECT id FROM certificates WHERE revoked_by = 'mallory'");
  out = refused (f, ST_RC_CHECK, "qa", "3333", "audit", "verify", NULL);
  g_autofree gchar *named = g_strdup_printf ("records: FAILED: certificate %" G_GINT64_FORMAT
                                             ": state is revoked, the log says active\n", a3_id);
  g_assert_nonnull (strstr (out, named));
  g_assert_nonnull (strstr (out, "records: FAILED: CRL number 99 is not in the log\n"));
  g_clear_pointer (&out, g_free);
}

int
main (int argc, char **argv)
{
  st_test_init (&argc, &argv);
  st_test_add_station ("/crl/issue-revoke-export", NULL, test_crl);
  return g_test_run ();
}
