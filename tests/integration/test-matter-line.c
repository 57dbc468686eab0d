/* Matter factory data in the pipeline (issue 18; station/st-unit.c,
 * docs/matter.md "Factory data per unit"): a line of a Matter profile on
 * in-process simulated devices, signing with the demo station's issuing
 * key in its own SoftHSM2 token, under a PAI made here for that key by a
 * test PAA (the OpenSSL API; the demo has no PAI yet).
 *
 * /matter-line/resume: a unit whose device went silent after storing its
 *   credentials (station-devsim on a pseudo-terminal) is finished when the
 *   device is back, with the Matter data of its reservation: the record
 *   unchanged, no second unit-matter entry, no counter drawn for it.
 * /matter-line/records: every passed unit has its Matter record; the
 *   verifier matches the recorded passcode, the QR text and the manual
 *   code parse back to the record, the DAC keeps the Matter rules under
 *   the PAI; a sequential batch's units get consecutive counters and
 *   discriminators (wrapping round the range), and after the line and the
 *   database are opened again the batch goes on from the next counter;
 *   db check explains every record. */
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "st-batch.h"
#include "st-ca.h"
#include "st-config.h"
#include "st-db.h"
#include "st-error.h"
#include "st-line.h"
#include "st-matter-codes.h"
#include "st-matter-dac.h"
#include "st-matter-spake2p.h"
#include "st-profile.h"
#include "st-test-run.h"
#include "st-test-matter.h"


static void
add_ext (X509 *cert, X509 *issuer, int nid, const char *value)
{
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb (&ctx);
  X509V3_set_ctx (&ctx, issuer != NULL ? issuer : cert, cert, NULL, NULL, 0);
  X509_EXTENSION *ext = X509V3_EXT_conf_nid (NULL, &ctx, nid, value);
  g_assert_nonnull (ext);
  g_assert_cmpint (X509_add_ext (cert, ext, -1), ==, 1);
  X509_EXTENSION_free (ext);
}

/* A Matter CA certificate (PAA when @issuer is NULL, else a PAI) for @key,
 * VID FFF1 as a UTF8String in its own RDN. */
static X509 *
make_ca (const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, gboolean pai)
{
  X509 *cert = X509_new ();
  X509_set_version (cert, 2);
  ASN1_INTEGER_set (X509_get_serialNumber (cert), pai ? 2 : 1);
  X509_gmtime_adj (X509_getm_notBefore (cert), -86400);
  X509_gmtime_adj (X509_getm_notAfter (cert), 86400L * 3650);
  g_autoptr(X509_NAME) name = X509_NAME_new ();
  X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_UTF8, (const guint8 *) cn, -1, -1, 0);
  X509_NAME_add_entry_by_txt (name, "1.3.6.1.4.1.37244.2.1", V_ASN1_UTF8STRING,
                              (const guint8 *) "FFF1", -1, -1, 0);
  X509_set_subject_name (cert, name);
  X509_set_issuer_name (cert, issuer != NULL ? X509_get_subject_name (issuer) : name);
  X509_set_pubkey (cert, key);
  add_ext (cert, issuer, NID_basic_constraints, pai ? "critical,CA:TRUE,pathlen:0" : "critical,CA:TRUE,pathlen:1");
  add_ext (cert, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
  add_ext (cert, issuer, NID_subject_key_identifier, "hash");
  add_ext (cert, issuer, NID_authority_key_identifier, "keyid:always");
  g_assert_cmpint (X509_sign (cert, issuer_key, EVP_sha256 ()), >, 0);
  return cert;
}

static const char profile_text[] =
  "[profile]\nname = matter-lamp\n"
  "[key]\nmode = device-csr\nalgorithm = ec-p256\n"
  "[certificate]\nsubject = CN={uid},O=Station Test\nvalidity = no-expiry\n"
  "key-usage = digitalSignature\n"
  "[serial]\nformat = ML-{seq:06}\n[device]\nlock = false\n"
  "[matter]\nvendor-id = FFF1\nproduct-id = 8000\ncertification-declaration = @CD@\n"
  "discriminator = sequential\ndiscriminator-range = 100-102\npbkdf2-iterations = 1000\n"
  "salt-length = 16\nrotating-id-length = 16\ncommissioning-flow = standard\ndiscovery = ble;on-network\n";

typedef struct {
  StConfig *config;
  StCa *ca;
  X509 *pai;        /* owned by ca */
  X509 *paa;
  EVP_PKEY *paa_key;
} Station;

/* Runs @units devices of the sim socket @port on a new line of @batch. */
static StBatchRunSummary
run_line_summary (Station *s, StDb *db, gint64 batch, const char *port, guint units)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StLine) line = st_line_new (s->config, s->ca, db, batch, "op-matter", &error);
  g_assert_no_error (error);
  const char *ports[] = { port, NULL };
  StBatchRunOptions options = {
    .ports = ports,
    .units_per_port = units,
    .idle_timeout_s = 30,
  };
  StBatchRunSummary summary = { 0 };
  g_assert_true (st_batch_run (line, &options, &summary, &error));
  g_assert_no_error (error);
  return summary;
}

/* The same, every unit passing; returns how many passed. */
static guint
run_line (Station *s, StDb *db, gint64 batch, const char *port, guint units)
{
  StBatchRunSummary summary = run_line_summary (s, db, batch, port, units);
  g_assert_cmpuint (summary.failed, ==, 0);
  g_assert_cmpuint (summary.refused, ==, 0);
  return summary.passed;
}

typedef struct {
  X509 *pai;
  GPtrArray *records;   /* of StDbUnitMatter*, unit id order */
  StDb *db;
} Collect;

static gboolean
check_unit (const StDbUnit *u, gpointer user_data, GError **error)
{
  Collect *c = user_data;
  g_assert_cmpstr (u->state, ==, "done");
  StDbUnitMatter *m = st_db_unit_matter_get (c->db, u->id, error);
  g_assert_nonnull (m);
  g_ptr_array_add (c->records, m);

  /* the verifier is the recorded passcode's */
  gsize salt_len = 0, vlen = 0;
  const guint8 *salt = g_bytes_get_data (m->salt, &salt_len);
  const guint8 *verifier = g_bytes_get_data (m->verifier, &vlen);
  g_assert_cmpuint (salt_len, ==, 16);
  g_assert_cmpuint (m->iterations, ==, 1000);
  g_assert_true (st_matter_spake2p_verifier_matches (verifier, vlen, m->passcode, salt, salt_len,
                                                     m->iterations, error));
  g_assert_true (st_matter_passcode_valid (m->passcode));
  g_assert_nonnull (m->unique_id);
  g_assert_cmpuint (g_bytes_get_size (m->unique_id), ==, 16);

  /* the codes carry the record */
  StMatterPayload p;
  g_assert_true (st_matter_qr_parse (m->qr_text, strlen (m->qr_text), &p, error));
  g_assert_cmpuint (p.vendor_id, ==, 0xFFF1);
  g_assert_cmpuint (p.product_id, ==, 0x8000);
  g_assert_cmpuint (p.discriminator, ==, m->discriminator);
  g_assert_cmpuint (p.passcode, ==, m->passcode);
  g_assert_cmpuint (p.discovery, ==, ST_MATTER_DISCOVERY_BLE | ST_MATTER_DISCOVERY_ON_NETWORK);
  g_assert_cmpuint (p.flow, ==, ST_MATTER_FLOW_STANDARD);
  StMatterManualCode mc;
  g_assert_true (st_matter_manual_parse (m->manual_code, strlen (m->manual_code), &mc, error));
  g_assert_true (st_matter_manual_matches (&mc, &p));

  /* the DAC under the PAI */
  gsize der_len = 0;
  const guint8 *der = g_bytes_get_data (u->cert_der, &der_len);
  g_autoptr(X509) dac = d2i_X509 (NULL, &der, (long) der_len);
  g_assert_nonnull (dac);
  g_assert_true (st_matter_dac_check (dac, c->pai, error));
  return TRUE;
}

static GPtrArray *
check_batch (StDb *db, gint64 batch, X509 *pai)
{
  g_autoptr(GError) error = NULL;
  Collect c = { pai, g_ptr_array_new_with_free_func ((GDestroyNotify) st_db_unit_matter_free), db };
  g_assert_true (st_db_unit_foreach (db, batch, check_unit, &c, &error));
  g_assert_no_error (error);
  return c.records;
}

/* The demo station's config and CA, its issuing CA certificate replaced
 * by a PAI for the same key in the token, issued by a PAA made here. The
 * service is stopped first: it lets go of the token and the database. */
static void
station_open (StFixture *f, Station *s)
{
  g_autoptr(GError) error = NULL;
  g_assert_cmpint (st_service_stop (f), ==, 0);
  s->config = st_config_load (f->home, &error);
  g_assert_no_error (error);
  s->ca = st_ca_open (s->config, ST_TEST_PIN, &error);
  g_assert_no_error (error);
  s->paa_key = EVP_EC_gen ("P-256");
  g_assert_nonnull (s->paa_key);
  s->paa = make_ca ("Station Test PAA", s->paa_key, NULL, s->paa_key, FALSE);
  s->pai = make_ca ("Station Test PAI", X509_get0_pubkey (s->ca->ca_cert), s->paa, s->paa_key, TRUE);
  g_assert_true (st_matter_pai_check (s->pai, NULL, &error));
  g_assert_no_error (error);
  X509_free (s->ca->ca_cert);
  s->ca->ca_cert = s->pai;   /* the CA owns it now */
}

static void
station_close (Station *s)
{
  g_clear_pointer (&s->ca, st_ca_free);
  g_clear_pointer (&s->config, st_config_free);
  g_clear_pointer (&s->paa, X509_free);
  g_clear_pointer (&s->paa_key, EVP_PKEY_free);
}

static void
test_records (StFixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  Station s = { 0 };
  station_open (f, &s);
  StConfig *config = s.config;
  X509 *pai = s.pai;

  /* the line reads the profile's Certification Declaration */
  g_autofree gchar *cd = st_test_matter_write_cd (f->tmp, "cd.der", 0x8000);
  g_autofree gchar *text = st_test_matter_profile (profile_text, cd);
  g_autoptr(StProfile) profile = st_profile_load_from_data (text, strlen (text),
                                                            "matter-lamp.profile", &error);
  g_assert_no_error (error);
  g_autoptr(StDb) db = st_db_open (config->db_path, &error);
  g_assert_no_error (error);
  gint64 batch = st_db_batch_create (db, "WO-MATTER-1", profile->name, profile->sha256, text,
                                     6, config->station_id, "lead-demo", &error);
  g_assert_no_error (error);

  g_assert_cmpuint (run_line (&s, db, batch, "sim:matter-a?units=4&seed=11", 4), ==, 4);
  {
    g_autoptr(GPtrArray) recs = check_batch (db, batch, pai);
    g_assert_cmpuint (recs->len, ==, 4);
    for (guint i = 0; i < recs->len; i++)
      {
        const StDbUnitMatter *m = g_ptr_array_index (recs, i);
        /* consecutive counters from 0, the range 100-102 in turn, wrapping */
        g_assert_cmpint (m->counter, ==, i);
        g_assert_cmpuint (m->discriminator, ==, 100 + i % 3);
      }
    /* two units never share a passcode or a salt here (odds of 10^-8) */
    const StDbUnitMatter *a = g_ptr_array_index (recs, 0), *b = g_ptr_array_index (recs, 1);
    g_assert_cmpuint (a->passcode, !=, b->passcode);
    g_assert_false (g_bytes_equal (a->salt, b->salt));
  }

  /* the line and the database opened again: the batch goes on from counter 4 */
  g_clear_pointer (&db, st_db_close);
  db = st_db_open (config->db_path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (run_line (&s, db, batch, "sim:matter-b?units=2&seed=12", 2), ==, 2);
  g_autoptr(GPtrArray) recs = check_batch (db, batch, pai);
  g_assert_cmpuint (recs->len, ==, 6);
  for (guint i = 0; i < recs->len; i++)
    {
      const StDbUnitMatter *m = g_ptr_array_index (recs, i);
      g_assert_cmpint (m->counter, ==, i);
      g_assert_cmpuint (m->discriminator, ==, 100 + i % 3);
    }

  /* every record explained by the log */
  g_autoptr(GString) report = g_string_new (NULL);
  if (!st_db_check (db, report, &error))
    g_error ("db check: %s\n%s", error->message, report->str);
  g_clear_pointer (&db, st_db_close);
  station_close (&s);
}

typedef struct {
  gint64 unit;
  guint n;
} CountEntries;

static gboolean
count_matter_entries (const StDbAuditEntry *e, gpointer user_data, GError **error)
{
  CountEntries *c = user_data;
  g_autofree gchar *needle = g_strdup_printf ("\"unit\":%" G_GINT64_FORMAT ",", c->unit);
  if (g_strcmp0 (e->event, "unit-matter") == 0 && strstr (e->payload, needle) != NULL)
    c->n++;
  return TRUE;
}

/* A unit whose device went silent after storing its credentials is
 * finished when the device comes back, with the Matter data recorded at
 * its reservation: no new data, no second record. */
static void
test_resume (StFixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  Station s = { 0 };
  station_open (f, &s);
  g_autofree gchar *cd = st_test_matter_write_cd (f->tmp, "cd.der", 0x8000);
  g_autofree gchar *with_cd = st_test_matter_profile (profile_text, cd);
  g_autofree gchar *text = g_strconcat (with_cd, "[link]\ncommit-timeout-ms = 1500\nretries = 1\n", NULL);
  g_autoptr(StProfile) profile = st_profile_load_from_data (text, strlen (text), "matter-lamp.profile", &error);
  g_assert_no_error (error);
  g_autoptr(StDb) db = st_db_open (s.config->db_path, &error);
  g_assert_no_error (error);
  gint64 batch = st_db_batch_create (db, "WO-MATTER-2", profile->name, profile->sha256, text,
                                     2, s.config->station_id, "lead-demo", &error);
  g_assert_no_error (error);
  g_autofree gchar *state = g_build_filename (f->tmp, "sim-state.json", NULL);

  /* station-devsim on a pseudo-terminal: its state file puts the device
   * back in the socket for the second run */
  g_autofree gchar *port1 = st_start_devsim (f, "--units", "1", "--seed", "31", "--state", state,
                                             "--fault", "silent-at-confirm", NULL);
  StBatchRunSummary first = run_line_summary (&s, db, batch, port1, 1);
  g_assert_cmpuint (first.passed, ==, 0);
  g_assert_cmpuint (first.failed, ==, 1);
  g_autoptr(GPtrArray) units = st_db_unit_list (db, batch, &error);
  g_assert_cmpuint (units->len, ==, 1);
  const StDbUnit *u = g_ptr_array_index (units, 0);
  g_assert_cmpstr (u->cert_state, ==, "unconfirmed");
  g_autoptr(StDbUnitMatter) before = st_db_unit_matter_get (db, u->id, &error);
  g_assert_no_error (error);
  g_autofree gchar *digest_before = st_db_unit_matter_digest (before);

  st_stop_devsims (f);
  g_autofree gchar *port2 = st_start_devsim (f, "--state", state, "--present", "1", NULL);
  StBatchRunSummary second = run_line_summary (&s, db, batch, port2, 1);
  g_assert_cmpuint (second.resumed, ==, 1);
  g_autoptr(StDbUnit) after_unit = st_db_unit_get (db, u->id, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (after_unit->cert_state, ==, "active");
  g_autoptr(StDbUnitMatter) after = st_db_unit_matter_get (db, u->id, &error);
  g_assert_no_error (error);
  g_autofree gchar *digest_after = st_db_unit_matter_digest (after);
  g_assert_cmpstr (digest_before, ==, digest_after);
  /* one record, one entry, and the counter not drawn again */
  CountEntries c = { u->id, 0 };
  g_assert_true (st_db_audit_foreach (db, count_matter_entries, &c, &error));
  g_assert_cmpuint (c.n, ==, 1);
  g_autoptr(GPtrArray) records = st_db_unit_matter_list_page (db, batch, 0, 100, &error);
  g_assert_cmpuint (records->len, ==, 1);
  g_assert_cmpint (st_db_matter_counter_draw (db, batch, &error), ==, 1);
  g_autoptr(GString) report = g_string_new (NULL);
  if (!st_db_check (db, report, &error))
    g_error ("db check: %s\n%s", error->message, report->str);
  g_clear_pointer (&db, st_db_close);
  station_close (&s);
}

int
main (int argc, char **argv)
{
  st_test_init (&argc, &argv);
  st_test_add_station ("/matter-line/records", NULL, test_records);
  st_test_add_station ("/matter-line/resume", NULL, test_resume);
  return g_test_run ();
}
