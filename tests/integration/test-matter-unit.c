/* A Matter unit delivered, read back and proved (issue 18; station/st-unit.c,
 * docs/matter.md "Delivery, read-back and QA"). A Matter line of the demo
 * station's issuing key under a PAI made here (st-test-matter.c), with a
 * test Certification Declaration, on real pseudo-terminals with
 * station-devsim:
 *
 * /matter-unit/agent: a batch passes; each device holds, committed, the
 *   profile's CD in slot 3 and in slot 4 a commissioning data record that
 *   parses back (st_matter_commissioning_parse) to the unit's record in
 *   the database, whose verifier is that of the recorded passcode, and
 *   that does not carry the passcode.
 * /matter-unit/no-matter-1: a device whose firmware does not announce
 *   matter-1 is refused at identify, with the reason recorded; nothing was
 *   written to it (no certificate, no request for slots 3 and 4, no key
 *   made) and no certificate reserved.
 * /matter-unit/readback: a device that returns another slot 4 on READ
 *   fails the read-back, its certificate voided, nothing committed.
 * /matter-unit/passive: a passive device (station-devsim --mode stm32-rom)
 *   gets a version 2 credential blob holding the CD and the record, read
 *   from its flash (the simulator's state file) and compared with the
 *   database.
 * /matter-unit/resume-tampered: a unit whose device committed and was
 *   pulled before the confirming HELLO is finished when the device is back
 *   only if slots 3 and 4 still hold its data: after its slot 4 was
 *   rewritten (another discriminator), the resumed unit fails at resume
 *   with the slot named and its certificate is voided.
 * /matter-unit/missing-cd: a line whose profile names a CD file that does
 *   not exist does not start, and the error names the file.
 * /matter-unit/qa: on a Matter demo station (`setup demo --matter`, the
 *   real service and CLI), a batch of profiles/example-matter.profile on
 *   station-devsim; then QA's `unit verify` of a unit put back into a
 *   socket (--present): every check passes, the Matter ones named in the
 *   JSON document (held to its schema); its own QR text and manual code
 *   pass --code; another unit's QR text fails matter-code with the fields
 *   named; a manual code with one digit wrong is refused by its check
 *   digit; after its slot 4 verifier was changed in the device's state
 *   (a tampered device), matter-verifier fails while matter-data (the
 *   other fields) still passes; a slot 4 of bytes that are no record is
 *   refused by the parser (matter-data, matter-verifier fail). */
#include <glib/gstdio.h>
#include <openssl/evp.h>
#include <string.h>

#include "st-batch.h"
#include "st-blob.h"
#include "st-ca.h"
#include "st-config.h"
#include "st-db.h"
#include "st-error.h"
#include "st-line.h"
#include "st-matter-data.h"
#include "st-matter-dac.h"
#include "st-matter-spake2p.h"
#include "st-profile.h"
#include "st-test-json.h"
#include "st-test-matter.h"
#include "st-test-run.h"
#include "st-test-tmp.h"

static const char agent_profile[] =
  "[profile]\nname = matter-plug\n"
  "[key]\nmode = device-csr\nalgorithm = ec-p256\n"
  "[certificate]\nsubject = CN={uid},O=Station Test\nvalidity = no-expiry\n"
  "key-usage = digitalSignature\n"
  "[serial]\nformat = MP-{seq:06}\n[device]\nlock = false\n"
  "[link]\ntimeout-ms = 1000\nretries = 1\n"
  "[matter]\nvendor-id = FFF1\nproduct-id = 8000\ncertification-declaration = @CD@\n"
  "discriminator = random\npbkdf2-iterations = 1000\n"
  "salt-length = 32\nrotating-id-length = 16\n";

static const char passive_profile[] =
  "[profile]\nname = matter-rom\n"
  "[key]\nmode = station-key\nalgorithm = ec-p256\n"
  "[certificate]\nsubject = CN={uid},O=Station Test\nvalidity = no-expiry\n"
  "key-usage = digitalSignature\n"
  "[serial]\nformat = MR-{seq:06}\n[device]\nlock = false\n"
  "[link]\nbaud = 115200\ntimeout-ms = 1000\nretries = 3\nblob-address = 0x0800C000\n"
  "blob-area-size = 16384\nuid-address = 0x1FFF7A10\nuid-length = 12\n"
  "[matter]\nvendor-id = FFF1\nproduct-id = 8000\ncertification-declaration = @CD@\n"
  "pbkdf2-iterations = 2000\nsalt-length = 16\n";

typedef struct {
  StConfig *config;
  StCa *ca;
  X509 *pai;          /* owned by ca */
  X509 *paa;
  EVP_PKEY *paa_key;
  StDb *db;
  gchar *cd_path;
  GBytes *cd;
} Station;

/* The demo station's config and CA, its issuing CA certificate replaced by
 * a PAI for the same key in the token, and a test CD. The service is
 * stopped first: it lets go of the token and the database. */
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
  s->paa = st_test_matter_ca ("Station Test PAA", s->paa_key, NULL, s->paa_key, FALSE);
  s->pai = st_test_matter_ca ("Station Test PAI", X509_get0_pubkey (s->ca->ca_cert), s->paa, s->paa_key, TRUE);
  g_assert_true (st_matter_pai_check (s->pai, NULL, &error));
  X509_free (s->ca->ca_cert);
  s->ca->ca_cert = s->pai;
  s->db = st_db_open (s->config->db_path, &error);
  g_assert_no_error (error);
  s->cd_path = st_test_matter_write_cd (f->tmp, "cd-FFF1-8000.der", 0x8000);
  gchar *data = NULL;
  gsize len = 0;
  g_assert_true (g_file_get_contents (s->cd_path, &data, &len, &error));
  s->cd = g_bytes_new_take (data, len);
}

static void
station_close (Station *s)
{
  g_clear_pointer (&s->db, st_db_close);
  g_clear_pointer (&s->ca, st_ca_free);
  g_clear_pointer (&s->config, st_config_free);
  g_clear_pointer (&s->paa, X509_free);
  g_clear_pointer (&s->paa_key, EVP_PKEY_free);
  g_clear_pointer (&s->cd_path, g_free);
  g_clear_pointer (&s->cd, g_bytes_unref);
}

static gint64
create_batch (Station *s, const char *profile_text, const char *work_order, gint64 size)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *text = st_test_matter_profile (profile_text, s->cd_path);
  g_autoptr(StProfile) profile = st_profile_load_from_data (text, strlen (text), "matter.profile", &error);
  g_assert_no_error (error);
  gint64 batch = st_db_batch_create (s->db, work_order, profile->name, profile->sha256, text, size,
                                     s->config->station_id, "lead-demo", &error);
  g_assert_no_error (error);
  return batch;
}

static StBatchRunSummary
run_line (Station *s, gint64 batch, const char *port, guint units)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StLine) line = st_line_new (s->config, s->ca, s->db, batch, "op-matter", &error);
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

static GBytes *
b64_member (JsonObject *o, const char *name)
{
  if (!json_object_has_member (o, name) || json_object_get_null_member (o, name))
    return NULL;
  gsize len = 0;
  guchar *data = g_base64_decode (json_object_get_string_member (o, name), &len);
  return g_bytes_new_take (data, len);
}

/* The record @data read from a device parses and equals the unit's record
 * in the database, field by field; its verifier is the recorded
 * passcode's; the passcode is not in it. */
static void
assert_record_matches (GBytes *data, const StDbUnitMatter *m)
{
  g_autoptr(GError) error = NULL;
  g_assert_nonnull (data);
  gsize len = 0;
  const guint8 *p = g_bytes_get_data (data, &len);
  StMatterCommissioning c;
  g_assert_true (st_matter_commissioning_parse (p, len, &c, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (c.vendor_id, ==, m->vendor_id);
  g_assert_cmpuint (c.product_id, ==, m->product_id);
  g_assert_cmpuint (c.discriminator, ==, m->discriminator);
  g_assert_cmpuint (c.iterations, ==, m->iterations);
  gsize salt_len = 0, vlen = 0;
  const guint8 *salt = g_bytes_get_data (m->salt, &salt_len);
  const guint8 *verifier = g_bytes_get_data (m->verifier, &vlen);
  g_assert_cmpmem (c.salt, c.salt_len, salt, salt_len);
  g_assert_cmpmem (c.verifier, sizeof c.verifier, verifier, vlen);
  if (m->unique_id != NULL)
    {
      gsize ulen = 0;
      const guint8 *uid = g_bytes_get_data (m->unique_id, &ulen);
      g_assert_cmpmem (c.rdid_unique_id, c.rdid_unique_id_len, uid, ulen);
    }
  else
    g_assert_cmpuint (c.rdid_unique_id_len, ==, 0);
  g_assert_true (st_matter_spake2p_verifier_matches (c.verifier, sizeof c.verifier, m->passcode, c.salt,
                                                     c.salt_len, c.iterations, &error));
  g_assert_no_error (error);
  /* never the passcode: neither as 4 bytes little-endian nor in decimal */
  guint8 le[4] = { m->passcode & 0xFF, (m->passcode >> 8) & 0xFF, (m->passcode >> 16) & 0xFF,
                   m->passcode >> 24 };
  g_assert_null (memmem (p, len, le, sizeof le));
  g_autofree gchar *dec = g_strdup_printf ("%08u", m->passcode);
  g_assert_null (memmem (p, len, dec, strlen (dec)));
}

/* The unit of @uid_hex in @units. */
static const StDbUnit *
unit_of_uid (GPtrArray *units, const char *uid_hex)
{
  for (guint i = 0; i < units->len; i++)
    {
      const StDbUnit *u = g_ptr_array_index (units, i);
      if (g_ascii_strcasecmp (u->uid, uid_hex) == 0)
        return u;
    }
  return NULL;
}

static void
test_agent (StFixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  Station s = { 0 };
  station_open (f, &s);
  gint64 batch = create_batch (&s, agent_profile, "WO-MATTER-UNIT-1", 3);
  g_autofree gchar *state = g_build_filename (f->tmp, "agent-state.json", NULL);
  g_autofree gchar *port = st_start_devsim (f, "--units", "3", "--seed", "4101", "--state", state,
                                            "--swap-delay-ms", "50", NULL);
  StBatchRunSummary sum = run_line (&s, batch, port, 3);
  g_assert_cmpuint (sum.passed, ==, 3);
  g_assert_cmpuint (sum.failed + sum.refused, ==, 0);
  st_stop_devsims (f);   /* the simulator writes its state file */

  g_autoptr(GPtrArray) units = st_db_unit_list (s.db, batch, &error);
  g_assert_no_error (error);
  g_autoptr(JsonParser) parser = st_test_load_json (state);
  JsonArray *devs = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)),
                                                  "devices");
  guint checked = 0;
  for (guint i = 0; i < json_array_get_length (devs); i++)
    {
      JsonObject *d = json_array_get_object_element (devs, i);
      const StDbUnit *u = unit_of_uid (units, json_object_get_string_member (d, "uid"));
      g_assert_nonnull (u);
      g_assert_cmpstr (u->state, ==, "done");
      g_autoptr(GBytes) cert = b64_member (d, "cert");
      g_assert_true (cert != NULL && g_bytes_equal (cert, u->cert_der));
      g_autoptr(GBytes) cd = b64_member (d, "matter_cd");
      g_assert_true (cd != NULL && g_bytes_equal (cd, s.cd));
      g_autoptr(StDbUnitMatter) m = st_db_unit_matter_get (s.db, u->id, &error);
      g_assert_no_error (error);
      g_autoptr(GBytes) rec = b64_member (d, "matter_data");
      assert_record_matches (rec, m);
      checked++;
    }
  g_assert_cmpuint (checked, ==, 3);
  g_autoptr(GString) report = g_string_new (NULL);
  if (!st_db_check (s.db, report, &error))
    g_error ("db check: %s\n%s", error->message, report->str);
  station_close (&s);
}

static void
test_no_matter_1 (StFixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  Station s = { 0 };
  station_open (f, &s);
  gint64 batch = create_batch (&s, agent_profile, "WO-MATTER-UNIT-2", 2);
  g_autofree gchar *state = g_build_filename (f->tmp, "old-state.json", NULL);
  g_autofree gchar *port = st_start_devsim (f, "--units", "1", "--seed", "4202", "--state", state,
                                            "--no-matter", NULL);
  StBatchRunSummary sum = run_line (&s, batch, port, 1);
  g_assert_cmpuint (sum.refused, ==, 1);
  g_assert_cmpuint (sum.passed + sum.failed, ==, 0);
  st_stop_devsims (f);

  g_autoptr(GPtrArray) units = st_db_unit_list (s.db, batch, &error);
  g_assert_cmpuint (units->len, ==, 1);
  const StDbUnit *u = g_ptr_array_index (units, 0);
  g_assert_cmpstr (u->state, ==, "failed");
  g_assert_cmpstr (u->fail_step, ==, "identify");
  g_assert_nonnull (strstr (u->fail_reason, "cannot take Matter factory data"));
  g_assert_nonnull (strstr (u->fail_reason, "matter-1"));
  g_assert_nonnull (strstr (u->fail_detail, "devsim-1"));
  g_assert_cmpint (u->cert_id, ==, 0);
  g_assert_null (st_db_unit_matter_get (s.db, u->id, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_FOUND);
  g_clear_error (&error);

  /* nothing written to the device, not even a key made */
  g_autoptr(JsonParser) parser = st_test_load_json (state);
  JsonArray *devs = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)),
                                                  "devices");
  g_assert_cmpuint (json_array_get_length (devs), ==, 1);
  JsonObject *d = json_array_get_object_element (devs, 0);
  g_autoptr(GBytes) cert = b64_member (d, "cert");
  g_autoptr(GBytes) chain = b64_member (d, "chain");
  g_assert_null (cert);
  g_assert_null (chain);
  g_assert_cmpint (json_object_get_int_member (d, "ext_slot_requests"), ==, 0);
  g_assert_cmpint (json_object_get_int_member (d, "state"), ==, 0);
  g_assert_cmpint (json_object_get_int_member (d, "keygen_executed"), ==, 0);
  station_close (&s);
}

static void
test_readback (StFixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  Station s = { 0 };
  station_open (f, &s);
  gint64 batch = create_batch (&s, agent_profile, "WO-MATTER-UNIT-3", 2);
  g_autofree gchar *state = g_build_filename (f->tmp, "bad-state.json", NULL);
  g_autofree gchar *port = st_start_devsim (f, "--units", "1", "--seed", "4303", "--state", state,
                                            "--fault", "matter-data-differs", NULL);
  StBatchRunSummary sum = run_line (&s, batch, port, 1);
  g_assert_cmpuint (sum.failed, ==, 1);
  g_assert_cmpuint (sum.passed + sum.refused, ==, 0);
  st_stop_devsims (f);

  g_autoptr(GPtrArray) units = st_db_unit_list (s.db, batch, &error);
  g_assert_cmpuint (units->len, ==, 1);
  const StDbUnit *u = g_ptr_array_index (units, 0);
  g_assert_cmpstr (u->state, ==, "failed");
  g_assert_cmpstr (u->fail_step, ==, "read-back");
  g_assert_nonnull (strstr (u->fail_reason, "different Matter commissioning data"));
  g_assert_nonnull (strstr (u->fail_detail, "slot 4"));
  g_assert_cmpstr (u->cert_state, ==, "voided");

  /* nothing committed: the device was told to ABORT */
  g_autoptr(JsonParser) parser = st_test_load_json (state);
  JsonArray *devs = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)),
                                                  "devices");
  JsonObject *d = json_array_get_object_element (devs, 0);
  g_autoptr(GBytes) cert = b64_member (d, "cert");
  g_autoptr(GBytes) rec = b64_member (d, "matter_data");
  g_assert_null (cert);
  g_assert_null (rec);
  station_close (&s);
}

/* Sector 3 of the simulated STM32F4 (0x0800C000, 16 KiB) holds the blob. */
static GBytes *
rom_blob_area (const char *state_file, const char *uid_hex)
{
  g_autoptr(JsonParser) parser = st_test_load_json (state_file);
  JsonArray *devs = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)),
                                                  "devices");
  for (guint i = 0; i < json_array_get_length (devs); i++)
    {
      JsonObject *d = json_array_get_object_element (devs, i);
      if (g_ascii_strcasecmp (json_object_get_string_member (d, "uid"), uid_hex) != 0)
        continue;
      JsonArray *sectors = json_object_get_array_member (d, "sectors");
      for (guint k = 0; k < json_array_get_length (sectors); k++)
        {
          JsonObject *sec = json_array_get_object_element (sectors, k);
          if (json_object_get_int_member (sec, "index") == 3)
            return b64_member (sec, "data");
        }
    }
  return NULL;
}

static void
test_passive (StFixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  Station s = { 0 };
  station_open (f, &s);
  gint64 batch = create_batch (&s, passive_profile, "WO-MATTER-UNIT-4", 2);
  g_autofree gchar *state = g_build_filename (f->tmp, "rom-state.json", NULL);
  g_autofree gchar *pty = st_start_devsim (f, "--mode", "stm32-rom", "--units", "1", "--seed", "4404",
                                           "--state", state, NULL);
  g_autofree gchar *port = g_strdup_printf ("stm32-rom:%s", pty);
  StBatchRunSummary sum = run_line (&s, batch, port, 1);
  g_assert_cmpuint (sum.passed, ==, 1);
  st_stop_devsims (f);

  g_autoptr(GPtrArray) units = st_db_unit_list (s.db, batch, &error);
  g_assert_cmpuint (units->len, ==, 1);
  const StDbUnit *u = g_ptr_array_index (units, 0);
  g_assert_cmpstr (u->state, ==, "done");
  g_autoptr(GBytes) area = rom_blob_area (state, u->uid);
  g_assert_nonnull (area);
  gsize len = 0;
  const guint8 *p = g_bytes_get_data (area, &len);
  g_autoptr(StBlob) blob = st_blob_parse (p, len, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (blob->version, ==, ST_BLOB_VERSION_MATTER);
  g_assert_true (g_bytes_equal (blob->cert, u->cert_der));
  g_assert_true (blob->matter_cd != NULL && g_bytes_equal (blob->matter_cd, s.cd));
  g_autoptr(StDbUnitMatter) m = st_db_unit_matter_get (s.db, u->id, &error);
  g_assert_no_error (error);
  assert_record_matches (blob->matter_data, m);
  station_close (&s);
}

/* Rewrites device @uid's slot 4 in the devsim state file @state with
 * @change applied to the parsed record. */
static void
rewrite_record (const char *state, const char *uid, void (*change) (StMatterCommissioning *c))
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonParser) parser = st_test_load_json (state);
  JsonNode *root = json_parser_get_root (parser);
  JsonArray *devs = json_object_get_array_member (json_node_get_object (root), "devices");
  gboolean done = FALSE;
  for (guint i = 0; i < json_array_get_length (devs); i++)
    {
      JsonObject *d = json_array_get_object_element (devs, i);
      if (g_ascii_strcasecmp (json_object_get_string_member (d, "uid"), uid) != 0)
        continue;
      g_autoptr(GBytes) rec = b64_member (d, "matter_data");
      g_assert_nonnull (rec);
      gsize len = 0;
      const guint8 *p = g_bytes_get_data (rec, &len);
      StMatterCommissioning c;
      g_assert_true (st_matter_commissioning_parse (p, len, &c, &error));
      change (&c);
      g_autoptr(GBytes) changed = st_matter_commissioning_encode (&c, &error);
      g_assert_no_error (error);
      g_autofree gchar *b64 = g_base64_encode (g_bytes_get_data (changed, NULL), g_bytes_get_size (changed));
      json_object_set_string_member (d, "matter_data", b64);
      done = TRUE;
    }
  g_assert_true (done);
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  json_generator_set_root (gen, root);
  g_assert_true (json_generator_to_file (gen, state, &error));
  g_assert_no_error (error);
}

static void
other_discriminator (StMatterCommissioning *c)
{
  c->discriminator = (guint16) ((c->discriminator + 1) & 0x0FFF);
}

static void
test_resume_tampered (StFixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  Station s = { 0 };
  station_open (f, &s);
  gint64 batch = create_batch (&s, agent_profile, "WO-MATTER-UNIT-6", 2);
  g_autofree gchar *state = g_build_filename (f->tmp, "resume-state.json", NULL);
  g_autofree gchar *port1 = st_start_devsim (f, "--units", "1", "--seed", "4606", "--state", state,
                                             "--fault", "silent-at-confirm", NULL);
  StBatchRunSummary first = run_line (&s, batch, port1, 1);
  g_assert_cmpuint (first.failed, ==, 1);
  st_stop_devsims (f);
  g_autoptr(GPtrArray) units = st_db_unit_list (s.db, batch, &error);
  g_assert_cmpuint (units->len, ==, 1);
  const StDbUnit *u = g_ptr_array_index (units, 0);
  g_assert_cmpstr (u->cert_state, ==, "unconfirmed");

  /* the device comes back with another discriminator in slot 4 */
  rewrite_record (state, u->uid, other_discriminator);
  g_autofree gchar *port2 = st_start_devsim (f, "--state", state, "--present", "1", NULL);
  StBatchRunSummary second = run_line (&s, batch, port2, 1);
  g_assert_cmpuint (second.passed, ==, 0);
  g_autoptr(StDbUnit) after = st_db_unit_get (s.db, u->id, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (after->state, ==, "failed");
  g_assert_cmpstr (after->cert_state, ==, "voided");
  g_assert_nonnull (strstr (after->void_reason, "different Matter commissioning data"));
  station_close (&s);
}

static void
test_missing_cd (StFixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  Station s = { 0 };
  station_open (f, &s);
  gint64 batch = create_batch (&s, agent_profile, "WO-MATTER-UNIT-5", 2);
  g_assert_cmpint (g_unlink (s.cd_path), ==, 0);
  g_autoptr(StLine) line = st_line_new (s.config, s.ca, s.db, batch, "op-matter", &error);
  g_assert_null (line);
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "certification-declaration"));
  g_assert_nonnull (strstr (error->message, "cd-FFF1-8000.der"));
  g_assert_nonnull (strstr (error->message, "Put the Certification Declaration file back"));
  station_close (&s);
}

/* ---- QA on a Matter demo station, through the service and the CLI ---- */

typedef struct {
  gchar *uid, *qr, *manual;
} QaUnit;

/* The unit_matter column @column of the unit of device @uid (hex). */
static gchar *
matter_column (StFixture *f, const char *column, const char *uid)
{
  g_assert_true (strspn (uid, "0123456789abcdef") == strlen (uid));
  g_autofree gchar *q = g_strdup_printf ("SELECT m.%s FROM unit_matter m JOIN units u ON u.id = m.unit_id "
                                         "WHERE u.uid = '%s'", column, uid);
  return st_sql (f, q);
}

/* `unit verify --port PORT --json [--code CODE]`: its exit status; the
 * document (held to docs/schema/cli/unit-verify.json) in *@doc. */
static int
qa_verify (StFixture *f, const char *port, const char *code, JsonParser **doc)
{
  g_autofree gchar *out = NULL, *err = NULL;
  int rc = code != NULL
    ? st_run_station (f, &out, &err, "unit", "verify", "--port", port, "--json", "--code", code, NULL)
    : st_run_station (f, &out, &err, "unit", "verify", "--port", port, "--json", NULL);
  g_assert_true (rc == 0 || rc == ST_RC_CHECK);
  g_autofree gchar *schema = g_build_filename (g_getenv ("ST_SOURCE_DIR"), "docs", "schema", "cli",
                                               "unit-verify.json", NULL);
  g_autofree gchar *checker = g_build_filename (g_getenv ("ST_SOURCE_DIR"), "tests", "cli", "check-json.py", NULL);
  g_autofree gchar *file = g_build_filename (f->tmp, "unit-verify.json", NULL);
  g_assert_true (g_file_set_contents (file, out, -1, NULL));
  g_assert_cmpint (st_run_tool (NULL, NULL, "python3", checker, schema, file, NULL), ==, 0);
  *doc = json_parser_new ();
  g_assert_true (json_parser_load_from_data (*doc, out, -1, NULL));
  return rc;
}

/* The status and text of Matter check @name in @doc; NULL when absent. */
static const char *
matter_check (JsonParser *doc, const char *name, const char **text)
{
  JsonObject *root = json_node_get_object (json_parser_get_root (doc));
  if (json_object_get_null_member (root, "matter"))
    return NULL;
  JsonArray *checks = json_object_get_array_member (json_object_get_object_member (root, "matter"), "checks");
  for (guint i = 0; i < json_array_get_length (checks); i++)
    {
      JsonObject *c = json_array_get_object_element (checks, i);
      if (g_strcmp0 (json_object_get_string_member (c, "name"), name) == 0)
        {
          if (text != NULL)
            *text = json_object_get_string_member (c, "text");
          return json_object_get_string_member (c, "status");
        }
    }
  return NULL;
}

/* A tampered device: one byte of its verifier's w0 changed, the record
 * otherwise the same. */
static void
other_verifier (StMatterCommissioning *c)
{
  c->verifier[5] ^= 0x40;
}

static void
test_qa (void)
{
  StFixture fx = { 0 };
  StFixture *f = &fx;
  /* a batch of the example profile, its CD the demo's */
  g_autofree gchar *cd = NULL;
  g_autofree gchar *profile = st_matter_demo_station (f, "st-matter-unit-qa", &cd);
  gint64 batch = st_create_batch (f, profile, 2);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  g_autofree gchar *state = g_build_filename (f->tmp, "qa-state.json", NULL);
  g_autofree gchar *line_port = st_start_devsim (f, "--units", "2", "--seed", "4505", "--state", state,
                                                 "--swap-delay-ms", "50", NULL);
  g_autofree gchar *out = NULL;
  g_assert_cmpint (st_run_station (f, &out, NULL, "batch", "run", id, "--port", line_port, "--units", "2",
                                   "--wait", "30", NULL), ==, 0);
  g_assert_cmpuint (st_count_lines (out, " PASSED "), ==, 2);
  st_stop_devsims (f);

  QaUnit units[2] = { { 0 } };
  {
    g_autoptr(JsonParser) parser = st_test_load_json (state);
    JsonArray *devs = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)),
                                                    "devices");
    g_assert_cmpuint (json_array_get_length (devs), ==, 2);
    for (guint i = 0; i < 2; i++)
      {
        units[i].uid = g_strdup (json_object_get_string_member (json_array_get_object_element (devs, i), "uid"));
        units[i].qr = matter_column (f, "qr_text", units[i].uid);
        units[i].manual = matter_column (f, "manual_code", units[i].uid);
        g_assert_true (g_str_has_prefix (units[i].qr, "MT:"));
        g_assert_cmpuint (strlen (units[i].manual), ==, 11);
      }
  }

  /* device 1 in the QA socket: every check, the Matter ones named */
  g_autofree gchar *qa = st_start_devsim (f, "--state", state, "--present", "1", NULL);
  {
    g_autoptr(JsonParser) doc = NULL;
    g_assert_cmpint (qa_verify (f, qa, units[0].qr, &doc), ==, 0);
    const char *names[] = { "matter-dac", "matter-cd", "matter-data", "matter-verifier", "matter-code" };
    for (guint i = 0; i < G_N_ELEMENTS (names); i++)
      g_assert_cmpstr (matter_check (doc, names[i], NULL), ==, "ok");
    JsonObject *root = json_node_get_object (json_parser_get_root (doc));
    g_assert_true (json_object_get_boolean_member (json_object_get_object_member (root, "matter"), "code_given"));
    /* the report never carries the passcode's code */
    g_autofree gchar *text = json_to_string (json_parser_get_root (doc), FALSE);
    g_assert_null (strstr (text, units[0].qr));
    g_assert_null (strstr (text, units[0].manual));
  }
  {
    /* its manual code, typed with the label's dashes */
    g_autofree gchar *typed = g_strdup_printf ("%.4s-%.3s-%.4s", units[0].manual, units[0].manual + 4,
                                               units[0].manual + 7);
    g_autoptr(JsonParser) doc = NULL;
    g_assert_cmpint (qa_verify (f, qa, typed, &doc), ==, 0);
    g_assert_cmpstr (matter_check (doc, "matter-code", NULL), ==, "ok");
  }
  {
    /* the other unit's QR text: named mismatches */
    g_autoptr(JsonParser) doc = NULL;
    g_assert_cmpint (qa_verify (f, qa, units[1].qr, &doc), ==, ST_RC_CHECK);
    const char *text = NULL;
    g_assert_cmpstr (matter_check (doc, "matter-code", &text), ==, "fail");
    g_assert_nonnull (strstr (text, "is not this unit's"));
    g_assert_nonnull (strstr (text, "discriminator"));
    g_assert_nonnull (strstr (text, "setup passcode"));
    g_assert_cmpstr (matter_check (doc, "matter-verifier", NULL), ==, "ok");
  }
  {
    /* one digit of the manual code wrong: its check digit refuses it */
    g_autofree gchar *wrong = g_strdup (units[0].manual);
    wrong[6] = (gchar) ('0' + (wrong[6] - '0' + 1) % 10);
    g_autoptr(JsonParser) doc = NULL;
    g_assert_cmpint (qa_verify (f, qa, wrong, &doc), ==, ST_RC_CHECK);
    const char *text = NULL;
    g_assert_cmpstr (matter_check (doc, "matter-code", &text), ==, "fail");
    g_assert_nonnull (strstr (text, "check digit"));
  }
  st_stop_devsims (f);

  /* the device's verifier changed after provisioning */
  rewrite_record (state, units[0].uid, other_verifier);
  g_autofree gchar *qa2 = st_start_devsim (f, "--state", state, "--present", "1", NULL);
  {
    g_autoptr(JsonParser) doc = NULL;
    g_assert_cmpint (qa_verify (f, qa2, NULL, &doc), ==, ST_RC_CHECK);
    const char *text = NULL;
    g_assert_cmpstr (matter_check (doc, "matter-verifier", &text), ==, "fail");
    g_assert_cmpstr (matter_check (doc, "matter-data", NULL), ==, "ok");
    g_assert_cmpstr (matter_check (doc, "matter-dac", NULL), ==, "ok");
    g_assert_null (matter_check (doc, "matter-code", NULL));
  }
  st_stop_devsims (f);

  /* a slot 4 that is no record at all (hostile bytes): refused by the
   * parser, named, and no verifier to check */
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonParser) parser = st_test_load_json (state);
    JsonNode *root = json_parser_get_root (parser);
    JsonObject *d = json_array_get_object_element (json_object_get_array_member (json_node_get_object (root),
                                                                                 "devices"), 0);
    const guint8 junk[] = { 0x01, 0x01, 0x02, 0xF1, 0xFF, 0x1B, 0x5B, 0x32, 0x4A, 0x0A };
    g_autofree gchar *b64 = g_base64_encode (junk, sizeof junk);
    json_object_set_string_member (d, "matter_data", b64);
    g_autoptr(JsonGenerator) gen = json_generator_new ();
    json_generator_set_root (gen, root);
    g_assert_true (json_generator_to_file (gen, state, &error));
  }
  g_autofree gchar *qa3 = st_start_devsim (f, "--state", state, "--present", "1", NULL);
  {
    g_autoptr(JsonParser) doc = NULL;
    g_assert_cmpint (qa_verify (f, qa3, units[0].qr, &doc), ==, ST_RC_CHECK);
    const char *text = NULL;
    g_assert_cmpstr (matter_check (doc, "matter-data", &text), ==, "fail");
    g_assert_nonnull (strstr (text, "slot 4 is no commissioning data record"));
    g_assert_cmpstr (matter_check (doc, "matter-verifier", NULL), ==, "fail");
    /* the code is still compared with the record */
    g_assert_cmpstr (matter_check (doc, "matter-code", NULL), ==, "ok");
  }
  for (guint i = 0; i < 2; i++)
    {
      g_free (units[i].uid);
      g_free (units[i].qr);
      g_free (units[i].manual);
    }
  st_fixture_teardown (f, NULL);
}

int
main (int argc, char **argv)
{
  st_test_init (&argc, &argv);
  st_test_add_station ("/matter-unit/agent", NULL, test_agent);
  st_test_add_station ("/matter-unit/no-matter-1", NULL, test_no_matter_1);
  st_test_add_station ("/matter-unit/readback", NULL, test_readback);
  st_test_add_station ("/matter-unit/passive", NULL, test_passive);
  st_test_add_station ("/matter-unit/resume-tampered", NULL, test_resume_tampered);
  st_test_add_station ("/matter-unit/missing-cd", NULL, test_missing_cd);
  g_test_add_func ("/matter-unit/qa", test_qa);
  return g_test_run ();
}
