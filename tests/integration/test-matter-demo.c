/* The Matter demo through the real service and CLI (issue 18, item 1;
 * docs/matter.md, "The PAA and the PAI: set-up and ceremony"):
 *
 * /matter-demo/setup: `station setup demo --matter` on a new home makes a
 *   station whose `setup show` names the Matter PAA and PAI; `batch
 *   create` of profiles/example-matter.profile (its CD file the demo's)
 *   is accepted there; `setup demo` (plain) on that home is refused;
 *   `--matter` with `setup show` is a usage error;
 * /matter-demo/plain-refused: on the plain demo, `batch create` of the same
 *   profile is refused with the PAI rule named, and `setup demo --matter`
 *   is refused too;
 * /matter-demo/ceremony: `ca init --matter-vid FFF1` through the service
 *   (a lower-case VID refused) puts the VID in the PAI's request; `ca
 *   import` of a root with a PID is refused with the rule named and
 *   audited; the PAA and PAI of docs/ceremony.md's stock-openssl recipe are
 *   accepted and station.conf keeps [matter];
 * /matter-demo/cd-refused: what `batch create` and the line read in the
 *   Certification Declaration: the demo's (development) CD is accepted
 *   with one line saying so, an official one without; CDs made here with
 *   stock `openssl cms` around hand-written TLV for PID 8001, for VID FFF2,
 *   with a byte after the TLV and with a duplicate tag are refused, naming
 *   the file and the IDs; a CD whose authorized_paa_list lacks the
 *   station's PAA is refused, one that lists it accepted; a batch whose CD
 *   file was swapped for another
 *   product's after its creation does not start its line, and no unit is
 *   made;
 * /matter-demo/whole-flow: `station demo --matter` (make matter-demo) on
 *   2 sockets of station-devsim devices; its DACs pass check-dac.py under
 *   the demo's PAI, every label's QR code read by zbarimg is its unit's QR
 *   text, and the codes file is the database's record. */
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "st-build-config.h"
#include "st-test-run.h"
#include "st-test-tmp.h"
#include "st-util.h"

#define ST_ADMIN_PIN "4444"

/* profiles/example-matter.profile with its CD file set to @cd. */
static gchar *
matter_profile (StFixture *f, const char *cd)
{
  const char *overrides[] = { NULL, NULL };
  g_autofree gchar *o = g_strdup_printf ("certification-declaration=%s", cd);
  overrides[0] = o;
  return st_profile_copy (f, "example-matter.profile", overrides);
}

static int
create_batch (StFixture *f, const char *profile, gchar **out, gchar **err)
{
  return st_run_station (f, out, err, "batch", "create", "--profile", profile, "--work-order", "WO-MATTER-1",
                         "--quantity", "2", NULL);
}

static void
test_setup (void)
{
  StFixture fx = { 0 };
  StFixture *f = &fx;
  f->tmp = st_test_tmpdir ("st-matter-demo");
  f->home = g_build_filename (f->tmp, "home", NULL);
  f->sims = g_ptr_array_new_with_free_func (g_object_unref);
  const char *none[] = { NULL };
  st_service_ensure (f, none);

  g_autofree gchar *out = NULL, *err = NULL;
  g_assert_cmpint (st_run_station (f, &out, &err, "setup", "demo", "--matter", NULL), ==, 0);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station (f, &out, &err, "setup", "show", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "Station Demo Matter PAA"));
  g_assert_nonnull (strstr (out, "Station Demo Matter PAI"));
  g_assert_nonnull (strstr (out, "Matter station: the root is a PAA and the issuing CA a PAI of VID FFF1"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  /* the same for scripts: setup show --json's "matter", held to its schema */
  g_assert_cmpint (st_run_station (f, &out, &err, "setup", "show", "--json", NULL), ==, 0);
  {
    g_autofree gchar *schema = g_build_filename (g_getenv ("ST_SOURCE_DIR"), "docs", "schema", "cli",
                                                 "setup-show.json", NULL);
    g_autofree gchar *checker = g_build_filename (g_getenv ("ST_SOURCE_DIR"), "tests", "cli", "check-json.py", NULL);
    g_autofree gchar *doc = g_build_filename (f->tmp, "setup-show.json", NULL);
    g_assert_true (g_file_set_contents (doc, out, -1, NULL));
    g_assert_cmpint (st_run_tool (NULL, NULL, "python3", checker, schema, doc, NULL), ==, 0);
    g_autoptr(JsonParser) parser = json_parser_new ();
    g_assert_true (json_parser_load_from_data (parser, out, -1, NULL));
    JsonObject *matter = json_object_get_object_member (json_node_get_object (json_parser_get_root (parser)),
                                                        "matter");
    g_assert_nonnull (matter);
    g_assert_cmpstr (json_object_get_string_member (matter, "vendor_id"), ==, "FFF1");
    g_assert_true (json_object_get_null_member (matter, "product_id"));
  }
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_autofree gchar *conf = NULL;
  g_autofree gchar *conf_path = g_build_filename (f->home, "station.conf", NULL);
  g_assert_true (g_file_get_contents (conf_path, &conf, NULL, NULL));
  g_assert_nonnull (strstr (conf, "[matter]\nvendor-id=FFF1\n"));

  /* the demo's PAI is accepted by batch create of a Matter profile */
  g_autofree gchar *cd = g_build_filename (f->home, "matter", "cd-FFF1-8000.der", NULL);
  g_autofree gchar *profile = matter_profile (f, cd);
  g_assert_cmpint (create_batch (f, profile, &out, &err), ==, 0);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* the two kinds of demo never turn into each other */
  g_assert_cmpint (st_run_station (f, &out, &err, "setup", "demo", NULL), !=, 0);
  g_assert_nonnull (strstr (err, "Matter demo"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station (f, &out, &err, "setup", "show", "--matter", NULL), ==, ST_RC_USAGE);
  st_fixture_teardown (f, NULL);
}

static void
test_plain_refused (StFixture *f, gconstpointer data)
{
  /* the CD file is valid (a DER SignedData): only the CA is wrong */
  g_autofree gchar *out = NULL, *err = NULL;
  g_autofree gchar *tlv = g_build_filename (f->tmp, "cd.tlv", NULL);
  g_autofree gchar *cd = g_build_filename (f->tmp, "cd.der", NULL);
  g_autofree gchar *key = g_build_filename (f->tmp, "cd.key", NULL);
  g_autofree gchar *cert = g_build_filename (f->tmp, "cd.pem", NULL);
  g_assert_true (g_file_set_contents (tlv, "\x15\x18", 2, NULL));
  g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-subj", "/CN=CD", "-out",
                                cert, NULL), ==, 0);
  g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "cms", "-sign", "-binary", "-nodetach", "-in", tlv,
                                "-signer", cert, "-inkey", key, "-outform", "DER", "-out", cd, NULL), ==, 0);
  g_autofree gchar *profile = matter_profile (f, cd);
  g_assert_cmpint (create_batch (f, profile, &out, &err), !=, 0);
  g_assert_nonnull (strstr (err, "needs the issuing CA to be a Matter PAI"));
  g_assert_nonnull (strstr (err, "must carry a VID"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "lock", NULL), ==, 0);
  g_assert_cmpint (st_run_station (f, &out, &err, "setup", "demo", "--matter", NULL), !=, 0);
  g_assert_nonnull (strstr (err, "not a Matter one"));
}

/* The CD TLV of the demo (docs/matter.md, "What the station checks in the
 * Certification Declaration") for @vid and @pid, certification type
 * @type; @extra bytes go before the structure's end, @trailing after it.
 * Control byte = tag control (0x20 context-specific, 0x00 anonymous) |
 * element type (0x04 uint8, 0x05 uint16, 0x0C UTF-8 string with a 1-byte
 * length, 0x15 structure, 0x16 array, 0x18 end). */
static GByteArray *
cd_tlv (guint16 vid, guint16 pid, guint8 type, const guint8 *extra, gsize extra_len, gboolean trailing)
{
  GByteArray *b = g_byte_array_new ();
  const guint8 head[] = {
    0x15,                                    /* anonymous structure */
    0x24, 0x00, 0x01,                        /* [0] format_version 1 */
    0x25, 0x01, (guint8) vid, (guint8) (vid >> 8),  /* [1] vendor_id (uint16, little-endian) */
    0x36, 0x02,                              /* [2] product_id_array */
    0x05, (guint8) pid, (guint8) (pid >> 8),  /*     the PID (anonymous uint16) */
    0x18,                                    /*     end of the array */
    0x25, 0x03, 0x00, 0x01,                  /* [3] device_type_id 0x0100 */
    0x2c, 0x04, 0x13,                        /* [4] certificate_id, 19 bytes */
  };
  g_byte_array_append (b, head, sizeof head);
  g_byte_array_append (b, (const guint8 *) "ZIG20142ZB330003-24", 19);
  const guint8 tail[] = {
    0x24, 0x05, 0x00,                        /* [5] security_level 0 */
    0x24, 0x06, 0x00,                        /* [6] security_information 0 */
    0x24, 0x07, 0x01,                        /* [7] version_number 1 */
    0x24, 0x08, type,                        /* [8] certification_type */
  };
  g_byte_array_append (b, tail, sizeof tail);
  if (extra_len > 0)
    g_byte_array_append (b, extra, (guint) extra_len);
  const guint8 end[] = { 0x18, 0x00 };       /* end of the structure; a stray byte */
  g_byte_array_append (b, end, trailing ? 2 : 1);
  return b;
}

/* @tlv signed with stock openssl cms (content inside) as DIR/@name. */
static gchar *
cd_file (StFixture *f, const char *name, GByteArray *tlv)
{
  g_autoptr(GByteArray) owned = tlv;
  g_autofree gchar *tlv_path = g_build_filename (f->tmp, "cd-content.tlv", NULL);
  g_autofree gchar *key = g_build_filename (f->tmp, "cd-signer.key", NULL);
  g_autofree gchar *cert = g_build_filename (f->tmp, "cd-signer.pem", NULL);
  gchar *der = g_build_filename (f->tmp, name, NULL);
  g_assert_true (g_file_set_contents (tlv_path, (const char *) tlv->data, tlv->len, NULL));
  if (!g_file_test (key, G_FILE_TEST_EXISTS))
    g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                  "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-subj", "/CN=CD signer",
                                  "-out", cert, NULL), ==, 0);
  g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "cms", "-sign", "-binary", "-nodetach", "-nocerts",
                                "-noattr", "-in", tlv_path, "-signer", cert, "-inkey", key, "-outform", "DER",
                                "-out", der, NULL), ==, 0);
  return der;
}

static void
assert_create_refused (StFixture *f, const char *cd, const char *const *want)
{
  g_autofree gchar *profile = matter_profile (f, cd);
  g_autofree gchar *out = NULL, *err = NULL;
  g_assert_cmpint (create_batch (f, profile, &out, &err), ==, ST_RC_ERROR);
  g_assert_nonnull (strstr (err, "the batch was not created"));
  g_assert_nonnull (strstr (err, cd));
  for (guint i = 0; want[i] != NULL; i++)
    if (strstr (err, want[i]) == NULL)
      g_error ("batch create's refusal \"%s\" lacks \"%s\"", err, want[i]);
}

static void
test_cd_refused (void)
{
  StFixture fx = { 0 };
  StFixture *f = &fx;
  f->tmp = st_test_tmpdir ("st-matter-cd");
  f->home = g_build_filename (f->tmp, "home", NULL);
  f->sims = g_ptr_array_new_with_free_func (g_object_unref);
  const char *none[] = { NULL };
  st_service_ensure (f, none);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "setup", "demo", "--matter", NULL), ==, 0);
  /* a new service, unlocked by the demo admin as the fixture does it */
  g_assert_cmpint (st_service_stop (f), ==, 0);
  st_service_ensure (f, none);
  gint64 batches = st_sql_int (f, "SELECT count(*) FROM batches");

  /* the demo's CD: accepted, and it says it is a development one */
  g_autofree gchar *out = NULL, *err = NULL;
  g_autofree gchar *demo_cd = g_build_filename (f->home, "matter", "cd-FFF1-8000.der", NULL);
  g_autofree gchar *demo_profile = matter_profile (f, demo_cd);
  g_assert_cmpint (create_batch (f, demo_profile, &out, &err), ==, 0);
  g_assert_nonnull (strstr (out, "is a development and test CD (certification type 0)"));
  g_assert_nonnull (strstr (out, "not for shipping products"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  /* an official one (type 2) of the product: accepted, no such line */
  g_autofree gchar *official = cd_file (f, "cd-official.der", cd_tlv (0xFFF1, 0x8000, 2, NULL, 0, FALSE));
  g_autofree gchar *official_profile = matter_profile (f, official);
  g_assert_cmpint (create_batch (f, official_profile, &out, &err), ==, 0);
  g_assert_null (strstr (out, "development"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM batches"), ==, batches + 2);

  g_autofree gchar *pid8001 = cd_file (f, "cd-pid-8001.der", cd_tlv (0xFFF1, 0x8001, 2, NULL, 0, FALSE));
  const char *want_pid[] = { "is for VID FFF1 and PID 8001", "(VID FFF1, PID 8000)",
                             "the CD the CSA issued for this product", NULL };
  assert_create_refused (f, pid8001, want_pid);
  g_autofree gchar *vid2 = cd_file (f, "cd-vid-fff2.der", cd_tlv (0xFFF2, 0x8000, 2, NULL, 0, FALSE));
  const char *want_vid[] = { "is for VID FFF2 and PID 8000", "(VID FFF1, PID 8000)", NULL };
  assert_create_refused (f, vid2, want_vid);
  g_autofree gchar *trailing = cd_file (f, "cd-trailing.der", cd_tlv (0xFFF1, 0x8000, 2, NULL, 0, TRUE));
  const char *want_trailing[] = { "cannot be read", "trailing bytes after the end of the structure (1)", NULL };
  assert_create_refused (f, trailing, want_trailing);
  static const guint8 dup[] = { 0x25, 0x01, 0xf1, 0xff };  /* [1] vendor_id again */
  g_autofree gchar *dup_cd = cd_file (f, "cd-duplicate.der", cd_tlv (0xFFF1, 0x8000, 2, dup, sizeof dup, FALSE));
  const char *want_dup[] = { "cannot be read", "vendor_id (tag 1) appears twice", NULL };
  assert_create_refused (f, dup_cd, want_dup);
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM batches"), ==, batches + 2);

  /* an authorized_paa_list: refused without the station's PAA, accepted
   * with its key identifier (read by stock openssl) */
  g_autofree gchar *root = g_build_filename (f->home, "demo-root.pem", NULL);
  g_autofree gchar *skid_text = NULL;
  g_assert_cmpint (st_run_tool (&skid_text, NULL, "openssl", "x509", "-in", root, "-noout", "-ext",
                                "subjectKeyIdentifier", NULL), ==, 0);
  guint8 paa_list[] = {
    0x36, 0x0b,                              /* [11] authorized_paa_list */
    0x10, 0x14,                              /*     octet string, 20 bytes */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0x18,                                    /*     end of the array */
  };
  memset (paa_list + 4, 0x5a, 20);           /* no PAA's key identifier */
  g_autofree gchar *other_paa = cd_file (f, "cd-other-paa.der",
                                         cd_tlv (0xFFF1, 0x8000, 2, paa_list, sizeof paa_list, FALSE));
  const char *want_paa[] = { "allows only the PAAs its authorized_paa_list names", "the station's PAA is not one of them",
                             NULL };
  assert_create_refused (f, other_paa, want_paa);
  {
    /* "X509v3 Subject Key Identifier: \n    AB:CD:..." */
    const char *hex = strchr (skid_text, '\n');
    g_assert_nonnull (hex);
    g_autofree gchar *digits = g_strdelimit (g_strstrip (g_strdup (hex)), ":", ' ');
    g_auto (GStrv) bytes = g_strsplit (digits, " ", -1);
    g_assert_cmpuint (g_strv_length (bytes), ==, 20);
    for (guint i = 0; i < 20; i++)
      paa_list[4 + i] = (guint8) g_ascii_strtoull (bytes[i], NULL, 16);
  }
  g_autofree gchar *our_paa = cd_file (f, "cd-our-paa.der",
                                       cd_tlv (0xFFF1, 0x8000, 2, paa_list, sizeof paa_list, FALSE));
  g_autofree gchar *our_paa_profile = matter_profile (f, our_paa);
  g_assert_cmpint (create_batch (f, our_paa_profile, &out, &err), ==, 0);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* the line reads it again: a batch made with the product's CD whose
   * file became another product's does not start, no unit is made */
  g_autofree gchar *swapped = cd_file (f, "cd-swapped.der", cd_tlv (0xFFF1, 0x8000, 2, NULL, 0, FALSE));
  g_autofree gchar *swapped_profile = matter_profile (f, swapped);
  gint64 batch = st_create_batch (f, swapped_profile, 2);
  g_autofree gchar *other = NULL;
  gsize other_len = 0;
  g_assert_true (g_file_get_contents (pid8001, &other, &other_len, NULL));
  g_assert_true (g_file_set_contents (swapped, other, (gssize) other_len, NULL));
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  g_autofree gchar *port = st_start_devsim (f, "--units", "1", "--seed", "1801", NULL);
  g_assert_cmpint (st_run_station (f, &out, &err, "batch", "run", id, "--port", port, "--units", "1", NULL),
                   ==, ST_RC_ERROR);
  g_assert_nonnull (strstr (err, "the line cannot start"));
  g_assert_nonnull (strstr (err, "cd-swapped.der is for VID FFF1 and PID 8001"));
  g_assert_nonnull (strstr (err, "(VID FFF1, PID 8000)"));
  g_autofree gchar *units_sql = g_strdup_printf ("SELECT count(*) FROM units WHERE batch_id = %s", id);
  g_assert_cmpint (st_sql_int (f, units_sql), ==, 0);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* the line of the demo CD's batch says once that its CD is a
   * development one, and runs */
  g_autofree gchar *dev_id = g_strdup_printf ("%" G_GINT64_FORMAT, batches + 1);
  g_assert_cmpint (st_run_station (f, &out, &err, "batch", "run", dev_id, "--port", port, "--units", "1", NULL),
                   ==, 0);
  const char *note = strstr (err, "is a development and test CD (certification type 0)");
  g_assert_nonnull (note);
  g_assert_null (strstr (note + 1, "is a development and test CD"));
  g_assert_nonnull (strstr (err, "cd-FFF1-8000.der"));
  g_autofree gchar *done_sql = g_strdup_printf ("SELECT count(*) FROM units WHERE batch_id = %s AND state = 'done'",
                                                dev_id);
  g_assert_cmpint (st_sql_int (f, done_sql), ==, 1);
  st_fixture_teardown (f, NULL);
}

/* The PAA's openssl.cnf of docs/ceremony.md ("A Matter station"), its dir
 * set to @dir. */
static gchar *
doc_paa_cnf (const char *dir)
{
  g_autofree gchar *path = g_build_filename (g_getenv ("ST_SOURCE_DIR"), "docs", "ceremony.md", NULL);
  g_autofree gchar *doc = NULL;
  g_assert_true (g_file_get_contents (path, &doc, NULL, NULL));
  const char *start = strstr (doc, "```ini\noid_section = matter_oids\n");
  g_assert_nonnull (start);
  start += strlen ("```ini\n");
  const char *end = strstr (start, "```");
  g_assert_nonnull (end);
  g_autofree gchar *block = g_strndup (start, (gsize) (end - start));
  const char *dir_line = "dir = /srv/matter-paa\n";
  gchar *at = strstr (block, dir_line);
  g_assert_nonnull (at);
  *at = '\0';
  return g_strdup_printf ("%sdir = %s\n%s", block, dir, at + strlen (dir_line));
}

/* A PAA in @dir made by stock openssl with @subj; its openssl.cnf, key,
 * certificate, index and newcerts/. */
static gchar *
make_paa (const char *dir, const char *subj)
{
  g_autofree gchar *newcerts = g_build_filename (dir, "newcerts", NULL);
  g_assert_cmpint (g_mkdir_with_parents (newcerts, 0700), ==, 0);
  g_autofree gchar *index = g_build_filename (dir, "index.txt", NULL);
  g_assert_true (g_file_set_contents (index, "", 0, NULL));
  g_autofree gchar *cnf_text = doc_paa_cnf (dir);
  gchar *cnf = g_build_filename (dir, "openssl.cnf", NULL);
  g_assert_true (g_file_set_contents (cnf, cnf_text, -1, NULL));
  g_autofree gchar *key = g_build_filename (dir, "paa.key", NULL);
  g_autofree gchar *pem = g_build_filename (dir, "paa.pem", NULL);
  g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                                "ec_paramgen_curve:P-256", "-out", key, NULL), ==, 0);
  g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "req", "-config", cnf, "-new", "-x509", "-key", key,
                                "-sha256", "-days", "7300", "-subj", subj, "-extensions", "v3_matter_paa",
                                "-out", pem, NULL), ==, 0);
  return cnf;
}

/* openssl ca of the PAA in @cnf's folder: the PAI and the signing
 * certificate, and the chain file PAI + PAA. */
static void
sign_requests (const char *cnf, const char *csr_dir, const char *out_dir, gchar **chain, gchar **signing)
{
  g_autofree gchar *ca_csr = g_build_filename (csr_dir, "issuing-ca.csr.pem", NULL);
  g_autofree gchar *sig_csr = g_build_filename (csr_dir, "station-signing.csr.pem", NULL);
  g_autofree gchar *pai = g_build_filename (out_dir, "issuing-ca.pem", NULL);
  *signing = g_build_filename (out_dir, "station-signing.pem", NULL);
  *chain = g_build_filename (out_dir, "chain.pem", NULL);
  g_assert_cmpint (g_mkdir_with_parents (out_dir, 0700), ==, 0);
  g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "ca", "-batch", "-config", cnf, "-extensions",
                                "v3_matter_pai", "-preserveDN", "-in", ca_csr, "-out", pai, NULL), ==, 0);
  g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "ca", "-batch", "-config", cnf, "-extensions",
                                "v3_station_signing", "-in", sig_csr, "-out", *signing, NULL), ==, 0);
  g_autofree gchar *dir = g_path_get_dirname (cnf);
  g_autofree gchar *paa = g_build_filename (dir, "paa.pem", NULL);
  g_autofree gchar *a = NULL, *b = NULL;
  g_assert_true (g_file_get_contents (pai, &a, NULL, NULL));
  g_assert_true (g_file_get_contents (paa, &b, NULL, NULL));
  g_autofree gchar *all = g_strconcat (a, b, NULL);
  g_assert_true (g_file_set_contents (*chain, all, -1, NULL));
}

static int
ca_import (StFixture *f, const char *chain, const char *signing, gchar **err)
{
  const char *env[] = { "STATION_HSM_PIN=" ST_TEST_PIN, "STATION_OPERATOR_PIN=" ST_ADMIN_PIN, NULL };
  const char *args[] = { "--operator", "admin", "ca", "import", "--chain", chain, "--signing-cert", signing, NULL };
  return st_run_stationv (f, env, NULL, err, args);
}

/* `ca init --matter-vid` through the service (the CaInit option), a token
 * made by softhsm2-util; `ca import` of a root with a PID refused and
 * audited; the PAA and PAI of docs/ceremony.md's recipe accepted. */
static void
test_ceremony (void)
{
  static guint tokens;
  StFixture fx = { 0 };
  StFixture *f = &fx;
  f->tmp = st_test_tmpdir ("st-matter-ceremony");
  f->home = g_build_filename (f->tmp, "home", NULL);
  f->sims = g_ptr_array_new_with_free_func (g_object_unref);
  g_autofree gchar *token = g_strdup_printf ("matter-%u-%d", ++tokens, (int) getpid ());
  g_assert_cmpint (st_run_tool (NULL, NULL, "softhsm2-util", "--init-token", "--free", "--label", token,
                                "--so-pin", "87654321", "--pin", ST_TEST_PIN, NULL), ==, 0);
  const char *none[] = { NULL };
  st_service_ensure (f, none);
  g_autofree gchar *csr_dir = g_build_filename (f->tmp, "requests", NULL);
  const char *env[] = { "STATION_HSM_PIN=" ST_TEST_PIN, "STATION_OPERATOR_PIN=" ST_ADMIN_PIN, NULL };
  g_autofree gchar *out = NULL, *err = NULL;
  /* a lower-case VID is refused before the token */
  const char *bad[] = { "--operator", "admin", "ca", "init", "--module", ST_SOFTHSM_MODULE, "--token", token,
                        "--station-id", "matter1", "--subject", "O=Test Vendor", "--admin", "admin", "--out",
                        csr_dir, "--matter-vid", "fff1", NULL };
  g_assert_cmpint (st_run_stationv (f, env, &out, &err, bad), !=, 0);
  g_assert_nonnull (strstr (err, "--matter-vid needs exactly 4 upper-case hex digits"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  const char *init[] = { "--operator", "admin", "ca", "init", "--module", ST_SOFTHSM_MODULE, "--token", token,
                         "--station-id", "matter1", "--subject", "O=Test Vendor", "--admin", "admin", "--out",
                         csr_dir, "--matter-vid", "FFF1", NULL };
  g_assert_cmpint (st_run_stationv (f, env, &out, &err, init), ==, 0);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_autofree gchar *ca_csr = g_build_filename (csr_dir, "issuing-ca.csr.pem", NULL);
  g_assert_cmpint (st_run_tool (&out, NULL, "openssl", "req", "-in", ca_csr, "-verify", "-noout", "-subject",
                                "-nameopt", "show_type", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "1.3.6.1.4.1.37244.2.1=UTF8STRING:FFF1"));
  g_clear_pointer (&out, g_free);

  /* a root with a PID: refused, nothing written, audited */
  g_autofree gchar *bad_dir = g_build_filename (f->tmp, "paa-with-pid", NULL);
  g_autofree gchar *bad_cnf = make_paa (bad_dir, "/O=Test Vendor/CN=PAA/matterVID=FFF1/matterPID=8000");
  g_autofree gchar *bad_chain = NULL, *bad_signing = NULL;
  g_autofree gchar *bad_out = g_build_filename (f->tmp, "signed-bad", NULL);
  sign_requests (bad_cnf, csr_dir, bad_out, &bad_chain, &bad_signing);
  g_assert_cmpint (ca_import (f, bad_chain, bad_signing, &err), !=, 0);
  g_assert_nonnull (strstr (err, "nothing was changed: the root is not a Matter PAA"));
  g_assert_nonnull (strstr (err, "must not carry a PID"));
  g_clear_pointer (&err, g_free);
  g_autofree gchar *root_file = g_build_filename (f->home, "root.pem", NULL);
  g_assert_false (g_file_test (root_file, G_FILE_TEST_EXISTS));

  /* the recipe: accepted */
  g_autofree gchar *good_dir = g_build_filename (f->tmp, "paa", NULL);
  g_autofree gchar *good_cnf = make_paa (good_dir, "/O=Test Vendor/CN=Test Matter PAA/matterVID=FFF1");
  g_autofree gchar *chain = NULL, *signing = NULL;
  g_autofree gchar *good_out = g_build_filename (f->tmp, "signed", NULL);
  sign_requests (good_cnf, csr_dir, good_out, &chain, &signing);
  g_assert_cmpint (ca_import (f, chain, signing, &err), ==, 0);
  g_assert_true (g_file_test (root_file, G_FILE_TEST_EXISTS));
  g_autofree gchar *conf = NULL;
  g_autofree gchar *conf_path = g_build_filename (f->home, "station.conf", NULL);
  g_assert_true (g_file_get_contents (conf_path, &conf, NULL, NULL));
  g_assert_nonnull (strstr (conf, "[matter]\nvendor-id=FFF1\n"));
  /* the audit log: ca-init with the VID, the refused import, the import */
  g_autofree gchar *events = st_sql (f, "SELECT group_concat(event, ' ') FROM audit");
  g_test_message ("audit: %s", events);
  g_assert_nonnull (strstr (events, "ca-init"));
  g_assert_nonnull (strstr (events, "ca-import-failed"));
  g_autofree gchar *init_payload = st_sql (f, "SELECT payload FROM audit WHERE event = 'ca-init'");
  g_assert_nonnull (strstr (init_payload, "\"matter-vendor-id\":\"FFF1\""));
  st_fixture_teardown (f, NULL);
}

/* `station demo --matter` (make matter-demo): the whole flow on Matter
 * devices over pseudo-terminals, then everything it wrote checked with
 * tools that share no code with the station: every DAC of the manifest by
 * tests/matter/check-dac.py under the demo's PAI, every label's QR code by
 * zbarimg against the codes file, the codes file against the database. */
static void
test_whole_flow (void)
{
  StFixture fx = { 0 };
  StFixture *f = &fx;
  f->tmp = st_test_tmpdir ("st-matter-flow");
  f->home = g_build_filename (f->tmp, "home", NULL);
  f->sims = g_ptr_array_new_with_free_func (g_object_unref);
  const char *none[] = { NULL };
  st_service_ensure (f, none);

  g_autofree gchar *out = NULL, *err = NULL;
  int rc = st_run_station (f, &out, &err, "demo", "--matter", "--ports", "2", "--units", "2", NULL);
  if (rc != 0)
    g_test_message ("demo --matter: %s\n%s", out, err);
  g_assert_cmpint (rc, ==, 0);
  g_assert_nonnull (strstr (out, "4 of 4 units provisioned"));
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM unit_matter m JOIN units u ON u.id = m.unit_id"
                                  " WHERE u.state = 'done'"), ==, 4);

  /* the codes file: one row per unit, exactly the database's record */
  g_autofree gchar *codes_path = g_build_filename (f->home, "matter", "batch-1", "matter-codes.csv", NULL);
  g_autofree gchar *codes = NULL;
  g_assert_true (g_file_get_contents (codes_path, &codes, NULL, NULL));
  GStatBuf st;
  g_assert_cmpint (g_stat (codes_path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);
  g_auto(GStrv) rows = g_strsplit (codes, "\r\n", -1);
  g_assert_cmpstr (rows[0], ==, "serial,uid,discriminator,passcode,qr,manual");
  guint n = 0;
  g_autofree gchar *pai = g_build_filename (f->home, "ca", "issuing-ca.pem", NULL);
  g_autofree gchar *checker = g_build_filename (g_getenv ("ST_SOURCE_DIR"), "tests", "matter", "check-dac.py",
                                               NULL);
  for (guint i = 1; rows[i] != NULL && rows[i][0] != '\0'; i++, n++)
    {
      g_auto(GStrv) c = g_strsplit (rows[i], ",", -1);
      g_assert_cmpuint (g_strv_length (c), ==, 6);
      g_autofree gchar *q = g_strdup_printf ("SELECT printf ('%%s,%%s,%%d,%%08d,%%s,%%s', u.product_serial, u.uid,"
                                             " m.discriminator, m.passcode, m.qr_text, m.manual_code)"
                                             " FROM unit_matter m JOIN units u ON u.id = m.unit_id"
                                             " WHERE u.uid = '%s'", c[1]);
      g_autofree gchar *want = st_sql (f, q);
      g_assert_cmpstr (g_strstrip (want), ==, rows[i]);

      /* its label's QR code, read by zbarimg, is the recorded QR text */
      g_autofree gchar *png_name = g_strdup_printf ("%s.png", c[0]);
      g_autofree gchar *png = g_build_filename (f->home, "matter", "batch-1", "labels", png_name, NULL);
      g_autofree gchar *zout = NULL;
      g_assert_cmpint (st_run_tool (&zout, NULL, "zbarimg", "-q", "--raw", png, NULL), ==, 0);
      g_assert_cmpstr (g_strstrip (zout), ==, c[4]);

      /* its DAC keeps the Matter rules under the demo's PAI */
      g_autofree gchar *qc = g_strdup_printf ("SELECT hex (c.der) FROM certificates c JOIN units u"
                                              " ON c.unit_id = u.id WHERE u.uid = '%s' AND c.state = 'active'", c[1]);
      g_autofree gchar *hex = st_sql (f, qc);
      g_strstrip (hex);
      gsize len = strlen (hex) / 2;
      g_autofree guint8 *der = g_malloc (len);
      for (gsize k = 0; k < len; k++)
        der[k] = (guint8) (g_ascii_xdigit_value (hex[2 * k]) * 16 + g_ascii_xdigit_value (hex[2 * k + 1]));
      g_autofree gchar *b64 = g_base64_encode (der, len);
      g_autoptr(GString) pem = g_string_new ("-----BEGIN CERTIFICATE-----\n");
      for (gsize k = 0; k < strlen (b64); k += 64)
        g_string_append_printf (pem, "%.64s\n", b64 + k);
      g_string_append (pem, "-----END CERTIFICATE-----\n");
      g_autofree gchar *dac_name = g_strdup_printf ("dac-%u.pem", n);
      g_autofree gchar *dac = g_build_filename (f->tmp, dac_name, NULL);
      g_assert_true (g_file_set_contents (dac, pem->str, -1, NULL));
      g_autofree gchar *dout = NULL, *derr = NULL;
      int drc = st_run_tool (&dout, &derr, "python3", checker, "dac", pai, dac, NULL);
      if (drc != 0)
        g_test_message ("check-dac.py: %s", derr);
      g_assert_cmpint (drc, ==, 0);
      g_assert_nonnull (strstr (dout, "VID=FFF1"));
    }
  g_assert_cmpuint (n, ==, 4);
  /* sequential discriminators of the example profile, from 3840 */
  g_assert_cmpint (st_sql_int (f, "SELECT min (discriminator) FROM unit_matter"), ==, 3840);
  g_assert_cmpint (st_sql_int (f, "SELECT max (discriminator) FROM unit_matter"), ==, 3843);
  st_fixture_teardown (f, NULL);
}

int
main (int argc, char **argv)
{
  /* a SoftHSM2 configuration of this process's own for the ceremony's
   * token, made before any thread: the service inherits it (the demo
   * stations have their own in their homes) */
  g_autofree gchar *softhsm_dir = st_test_tmpdir ("st-matter-softhsm");
  g_autofree gchar *tokens = g_build_filename (softhsm_dir, "tokens", NULL);
  g_assert_cmpint (g_mkdir_with_parents (tokens, 0700), ==, 0);
  g_autofree gchar *conf = g_build_filename (softhsm_dir, "softhsm2.conf", NULL);
  g_autofree gchar *conf_text = g_strdup_printf ("directories.tokendir = %s\nobjectstore.backend = file\n"
                                                 "log.level = ERROR\n", tokens);
  g_assert_true (g_file_set_contents (conf, conf_text, -1, NULL));
  g_setenv ("SOFTHSM2_CONF", conf, TRUE);
  st_test_init (&argc, &argv);
  g_test_add_func ("/matter-demo/setup", test_setup);
  g_test_add_func ("/matter-demo/whole-flow", test_whole_flow);
  g_test_add_func ("/matter-demo/cd-refused", test_cd_refused);
  st_test_add_station ("/matter-demo/plain-refused", NULL, test_plain_refused);
  g_test_add_func ("/matter-demo/ceremony", test_ceremony);
  int rc = g_test_run ();
  st_rm_rf (softhsm_dir);
  return rc;
}
