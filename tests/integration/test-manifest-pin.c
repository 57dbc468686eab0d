/* The manifest's signer is pinned (issue 14, item 2): "manifest verify
 * accepts any signer that chains to the root". A device whose profile has
 * no extended key usage held a certificate of the same root that CMS
 * accepts for signing, so it could sign a forged manifest.json, and both
 * `station manifest verify` and the stock `openssl cms -verify -CAfile
 * root.pem` of the README accepted it. Nor did verify check a unit's uid
 * against its certificate, or the signature of the manifest's audit
 * checkpoint.
 *
 * /manifest-pin/device-signer: a device's own key (from the simulator's
 * state file) re-signs a manifest with another work order. `station
 * manifest verify` and the README's stock-tool recipe (read from README.md
 * and run as it is written) reject it; the genuine manifest passes both.
 *
 * The next tests need a manifest that the station's own key signed after
 * it was changed (as a bug or someone at the database would leave it):
 * the test opens the station's CA in the test's fixture home, with the
 * demo's HSM PIN, and signs the changed manifest.json with it.
 *
 * /manifest-pin/uid-mismatch: two units' uids swapped: each is reported,
 * the manifest rejected; a uid edited in the database: the export refuses.
 * /manifest-pin/checkpoint: the audit checkpoint's signature changed, or
 * its message not the one of its seq and hash: rejected.
 * /manifest-pin/claimed-pin: the manifest's own claim of its signer's pin
 * is cross-checked (a wrong claim is rejected) and, when missing (a
 * manifest of an older station), reported while the configured pin
 * decides.
 * /manifest-pin/root-needs-pin: `--root` alone is refused, naming the pin
 * the manifest claims; `--root` with `--signer-pin` verifies, with another
 * pin is rejected; a malformed pin is a usage error.
 * /manifest-pin/profile-recorded: without the batch's profile (another
 * PC's verifier), the subject and SAN templates the manifest records build
 * the names (swapped uids rejected by them); templates that differ from
 * this station's profile of the same hash are rejected; an older manifest
 * without them, and a unit without a model for a {model} profile, are
 * reported as not checked. */
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <openssl/cms.h>
#include <string.h>

#include "st-ca.h"
#include "st-config.h"
#include "st-error.h"
#include "st-ossl.h"
#include "st-test-run.h"
#include "st-test-json.h"

/* ---- the manifest under test ---- */

/* A copy of example-device-csr.profile without its extended key usage:
 * the profile the review found (its certificates satisfy CMS's S/MIME
 * signing check). */
static gchar *
st_profile_without_eku (StFixture *f)
{
  g_autofree gchar *src = st_profile_path ("example-device-csr.profile");
  g_autofree gchar *text = NULL;
  g_assert_true (g_file_get_contents (src, &text, NULL, NULL));
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  g_autoptr(GString) out = g_string_new (NULL);
  guint dropped = 0;
  for (guint i = 0; lines[i] != NULL; i++)
    {
      if (g_str_has_prefix (lines[i], "extended-key-usage"))
        {
          dropped++;
          continue;
        }
      g_string_append_printf (out, "%s\n", lines[i]);
    }
  g_assert_cmpuint (dropped, ==, 1);
  gchar *path = g_build_filename (f->tmp, "no-eku.profile", NULL);
  g_assert_true (g_file_set_contents (path, out->str, -1, NULL));
  return path;
}

/* A closed batch of 2 units of @profile, provisioned by a simulator that
 * keeps its state (keys included) in @state (may be NULL), its manifest
 * exported to @dir. Returns the batch id. */
static gint64
st_pin_batch (StFixture *f, const char *profile, const char *state, const char *dir)
{
  gint64 batch = st_create_batch (f, profile, 2);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  g_autofree gchar *port = state != NULL
    ? st_start_devsim (f, "--units", "2", "--seed", "731", "--state", state, NULL)
    : st_start_devsim (f, "--units", "2", "--seed", "737", NULL);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "batch", "run", id, "--port", port, "--units",
                                   "2", NULL), ==, 0);
  st_stop_devsims (f);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "batch", "close", id, NULL), ==, 0);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "manifest", "export", id, "--out", dir, NULL), ==, 0);
  return batch;
}

static gchar *
st_pin_file (const char *dir, const char *name)
{
  return g_build_filename (dir, name, NULL);
}

/* The station's pin as station.conf holds it. */
static gchar *
st_pin_configured (StFixture *f)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StConfig) config = st_config_load (f->home, &error);
  g_assert_no_error (error);
  g_assert_nonnull (config->signing_key_sha256);
  return g_strdup (config->signing_key_sha256);
}

/* `station manifest verify DIR [ARGS...]`: its exit status; the report in
 * *@out. */
static int
st_pin_verify (StFixture *f, const char *dir, gchar **out, gchar **err, const char *a1,
               const char *a2, const char *a3, const char *a4)
{
  const char *args[] = { "manifest", "verify", dir, a1, a2, a3, a4, NULL };
  return st_run_stationv (f, NULL, out, err, args);
}

/* ---- the README's stock-tool recipe ---- */

#define ST_RECIPE_MARK "<!-- manifest-recipe"

/* The shell block that follows the marker in README.md, as it is written. */
static gchar *
st_readme_recipe (void)
{
  g_autofree gchar *path = g_build_filename (g_getenv ("ST_SOURCE_DIR"), "README.md", NULL);
  g_autofree gchar *readme = NULL;
  g_assert_true (g_file_get_contents (path, &readme, NULL, NULL));
  const char *mark = strstr (readme, ST_RECIPE_MARK);
  g_assert_nonnull (mark);
  /* one recipe only: the test and the text cannot drift apart */
  g_assert_null (g_strstr_len (mark + 1, -1, ST_RECIPE_MARK));
  const char *start = strstr (mark, "\n```sh\n");
  g_assert_nonnull (start);
  start += strlen ("\n```sh\n");
  const char *end = strstr (start, "\n```\n");
  g_assert_nonnull (end);
  gchar *recipe = g_strndup (start, (gsize) (end - start + 1));
  g_assert_nonnull (strstr (recipe, "openssl cms -verify"));
  return recipe;
}

/* Runs the recipe with sh in a folder of its own, DIR, ROOT and PIN in its
 * environment; returns its exit status. */
static int
st_run_recipe (StFixture *f, const char *dir, const char *pin, gchar **out)
{
  g_autofree gchar *recipe = st_readme_recipe ();
  g_autofree gchar *work = g_build_filename (f->tmp, "recipe", NULL);
  g_assert_cmpint (g_mkdir_with_parents (work, 0700), ==, 0);
  g_autofree gchar *script = g_build_filename (work, "recipe.sh", NULL);
  g_autofree gchar *signer = g_build_filename (work, "signer.pem", NULL);
  g_unlink (signer);
  g_assert_true (g_file_set_contents (script, recipe, -1, NULL));
  g_autofree gchar *root = g_build_filename (f->home, "demo-root.pem", NULL);
  g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE
                                                                | G_SUBPROCESS_FLAGS_STDERR_MERGE);
  g_subprocess_launcher_set_cwd (l, work);
  g_subprocess_launcher_setenv (l, "DIR", dir, TRUE);
  g_subprocess_launcher_setenv (l, "ROOT", root, TRUE);
  g_subprocess_launcher_setenv (l, "PIN", pin, TRUE);
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) proc = g_subprocess_launcher_spawn (l, &error, "sh", script, NULL);
  g_assert_no_error (error);
  g_autofree gchar *text = NULL;
  g_assert_true (g_subprocess_communicate_utf8 (proc, NULL, NULL, &text, NULL, &error));
  g_assert_no_error (error);
  g_test_message ("README recipe on %s: %s", dir, text);
  if (out != NULL)
    *out = g_steal_pointer (&text);
  return g_subprocess_get_if_exited (proc) ? g_subprocess_get_exit_status (proc) : 128;
}

/* ---- signing a changed manifest ---- */

static gchar *
st_file_sha256_hex (const char *path)
{
  g_autofree gchar *data = NULL;
  gsize len = 0;
  g_assert_true (g_file_get_contents (path, &data, &len, NULL));
  return g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) data, len);
}

/* After a change to a station-manifest/2 folder: manifest.json's
 * units_file records units.jsonl's SHA-256 and line count again, and
 * SHA256SUMS the four files' hashes, as the export writes them. */
static void
st_reseal (const char *dir)
{
  g_autofree gchar *units = st_pin_file (dir, "units.jsonl");
  g_autofree gchar *json = st_pin_file (dir, "manifest.json");
  g_autofree gchar *text = NULL;
  g_assert_true (g_file_get_contents (units, &text, NULL, NULL));
  gint64 lines = 0;
  for (const char *p = text; *p != '\0'; p++)
    lines += *p == '\n';
  g_autoptr(JsonParser) parser = st_test_load_json (json);
  JsonNode *root = json_parser_get_root (parser);
  JsonObject *uf = json_object_get_object_member (json_node_get_object (root), "units_file");
  g_autofree gchar *units_sha = st_file_sha256_hex (units);
  json_object_set_string_member (uf, "sha256", units_sha);
  json_object_set_int_member (uf, "lines", lines);
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  g_autoptr(GError) error = NULL;
  g_assert_true (json_generator_to_file (gen, json, &error));
  g_assert_no_error (error);
  static const char *const names[] = { "manifest.json", "units.jsonl", "manifest.csv", "ca-chain.pem" };
  g_autoptr(GString) sums = g_string_new (NULL);
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree gchar *path = st_pin_file (dir, names[i]);
      g_autofree gchar *hex = st_file_sha256_hex (path);
      g_string_append_printf (sums, "%s  %s\n", hex, names[i]);
    }
  g_autofree gchar *sums_path = st_pin_file (dir, "SHA256SUMS");
  g_assert_true (g_file_set_contents (sums_path, sums->str, (gssize) sums->len, NULL));
}

/* Reseals @dir and signs its SHA256SUMS as the README's openssl would:
 * detached CMS in DER, the chain's certificates included. */
static void
st_sign_with_openssl (StFixture *f, const char *dir, const char *cert_pem, const char *key_pem)
{
  st_reseal (dir);
  g_autofree gchar *json = st_pin_file (dir, "SHA256SUMS");
  g_autofree gchar *p7s = st_pin_file (dir, "SHA256SUMS.p7s");
  g_autofree gchar *chain = st_pin_file (dir, "ca-chain.pem");
  g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "cms", "-sign", "-binary", "-in", json,
                                "-signer", cert_pem, "-inkey", key_pem, "-certfile", chain,
                                "-outform", "DER", "-out", p7s, NULL), ==, 0);
}

typedef struct {
  X509 *cert;
  STACK_OF (X509) *extra;
  const gchar *json;
  gsize len;
  CMS_ContentInfo *cms;
} StResign;

static gboolean
st_resign_func (EVP_PKEY *key, StCaToken *token, gpointer user_data, GError **error)
{
  StResign *s = user_data;
  g_autoptr(BIO) in = BIO_new_mem_buf (s->json, (int) s->len);
  st_ca_token_enter (token);
  s->cms = CMS_sign (s->cert, key, s->extra, in, CMS_DETACHED | CMS_BINARY);
  st_ca_token_leave (token);
  if (s->cms == NULL)
    g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL, "CMS_sign failed");
  return s->cms != NULL;
}

/* Reseals @dir and signs its SHA256SUMS with the station's own signing
 * key, as the station does (st_manifest_export). */
static void
st_sign_as_station (StFixture *f, const char *dir)
{
  st_reseal (dir);
  g_autoptr(GError) error = NULL;
  g_autoptr(StConfig) config = st_config_load (f->home, &error);
  g_assert_no_error (error);
  g_autoptr(StCa) ca = st_ca_open (config, ST_TEST_PIN, &error);
  g_assert_no_error (error);
  g_autofree gchar *json_path = st_pin_file (dir, "SHA256SUMS");
  g_autofree gchar *json = NULL;
  gsize len = 0;
  g_assert_true (g_file_get_contents (json_path, &json, &len, NULL));
  g_autoptr(StX509Stack) extra = sk_X509_new_null ();
  X509 *issuing = sk_X509_value (ca->chain, 0);
  X509_up_ref (issuing);
  sk_X509_push (extra, issuing);
  StResign s = { .cert = ca->signing_cert, .extra = extra, .json = json, .len = len };
  g_assert_true (st_ca_sign_with (ca, ST_CA_KEY_SIGNING, "the test's manifest", st_resign_func,
                                  &s, NULL, &error));
  g_assert_no_error (error);
  guint8 *der = NULL;
  int der_len = i2d_CMS_ContentInfo (s.cms, &der);
  CMS_ContentInfo_free (s.cms);
  g_assert_cmpint (der_len, >, 0);
  g_autofree gchar *p7s = st_pin_file (dir, "SHA256SUMS.p7s");
  g_assert_true (g_file_set_contents (p7s, (const gchar *) der, der_len, NULL));
  OPENSSL_free (der);
}

typedef void (*StJsonEdit) (JsonObject *top, gpointer data);

/* Parses @dir's manifest.json with its units (st_test_load_manifest), lets
 * @edit change it and writes it back: the units to units.jsonl, one a
 * line, the rest to manifest.json. */
static void
st_edit_manifest (const char *dir, StJsonEdit edit, gpointer data)
{
  g_autofree gchar *path = st_pin_file (dir, "manifest.json");
  g_autofree gchar *units_path = st_pin_file (dir, "units.jsonl");
  g_autoptr(JsonParser) parser = st_test_load_manifest (dir);
  JsonNode *root = json_parser_get_root (parser);
  JsonObject *top = json_node_get_object (root);
  edit (top, data);
  JsonArray *units = json_object_get_array_member (top, "units");
  g_autoptr(GString) lines = g_string_new (NULL);
  g_autoptr(JsonGenerator) line_gen = json_generator_new ();
  for (guint i = 0; i < json_array_get_length (units); i++)
    {
      json_generator_set_root (line_gen, json_array_get_element (units, i));
      g_autofree gchar *line = json_generator_to_data (line_gen, NULL);
      g_string_append_printf (lines, "%s\n", line);
    }
  g_assert_true (g_file_set_contents (units_path, lines->str, (gssize) lines->len, NULL));
  json_object_remove_member (top, "units");
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  g_autoptr(GError) error = NULL;
  g_assert_true (json_generator_to_file (gen, path, &error));
  g_assert_no_error (error);
}

/* Copies the manifest folder @src to @dst (the files the signature covers). */
static void
st_copy_manifest (const char *src, const char *dst)
{
  static const char *const names[] = { "manifest.json", "units.jsonl", "manifest.csv", "SHA256SUMS",
                                       "SHA256SUMS.p7s", "ca-chain.pem" };
  g_assert_cmpint (g_mkdir_with_parents (dst, 0700), ==, 0);
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree gchar *a = st_pin_file (src, names[i]);
      g_autofree gchar *b = st_pin_file (dst, names[i]);
      g_autofree gchar *data = NULL;
      gsize len = 0;
      g_assert_true (g_file_get_contents (a, &data, &len, NULL));
      g_assert_true (g_file_set_contents (b, data, (gssize) len, NULL));
    }
}

/* ---- the tests ---- */

static gchar *
st_b64_member_to_pem (JsonObject *device, const char *member, const char *kind, const char *path)
{
  gsize len = 0;
  g_autofree guchar *der = g_base64_decode (json_object_get_string_member (device, member), &len);
  g_assert_cmpuint (len, >, 0);
  g_autofree gchar *der_path = g_strconcat (path, ".der", NULL);
  g_assert_true (g_file_set_contents (der_path, (const gchar *) der, (gssize) len, NULL));
  gchar *pem = g_strdup (path);
  if (strcmp (kind, "cert") == 0)
    g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "x509", "-inform", "DER", "-in", der_path,
                                  "-out", pem, NULL), ==, 0);
  else
    g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "pkey", "-inform", "DER", "-in", der_path,
                                  "-out", pem, NULL), ==, 0);
  return pem;
}

static void
test_device_signer (StFixture *f, gconstpointer data)
{
  g_autofree gchar *profile = st_profile_without_eku (f);
  g_autofree gchar *state = g_build_filename (f->tmp, "sim.json", NULL);
  g_autofree gchar *dir = g_build_filename (f->tmp, "manifest", NULL);
  st_pin_batch (f, profile, state, dir);
  g_autofree gchar *pin = st_pin_configured (f);
  g_autofree gchar *out = NULL;

  /* the genuine manifest: the station and the recipe accept it */
  g_assert_cmpint (st_pin_verify (f, dir, &out, NULL, NULL, NULL, NULL, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "manifest verified"));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_recipe (f, dir, pin, &out), ==, 0);
  g_clear_pointer (&out, g_free);

  /* the first device's key and certificate, as the device holds them */
  g_autoptr(JsonParser) sim = st_test_load_json (state);
  JsonArray *devices = json_object_get_array_member (json_node_get_object (json_parser_get_root (sim)),
                                                     "devices");
  JsonObject *device = json_array_get_object_element (devices, 0);
  g_autofree gchar *cert_base = g_build_filename (f->tmp, "device-cert.pem", NULL);
  g_autofree gchar *key_base = g_build_filename (f->tmp, "device-key.pem", NULL);
  g_autofree gchar *cert_pem = st_b64_member_to_pem (device, "cert", "cert", cert_base);
  g_autofree gchar *key_pem = st_b64_member_to_pem (device, "key", "key", key_base);

  /* the forgery: another work order, signed by the device */
  g_autofree gchar *json = st_pin_file (dir, "manifest.json");
  g_autofree gchar *text = NULL;
  g_assert_true (g_file_get_contents (json, &text, NULL, NULL));
  gchar *wo = strstr (text, "\"WO-TEST-1\"");
  g_assert_nonnull (wo);
  memcpy (wo + 1, "WO-EVIL-1", 9);
  g_assert_true (g_file_set_contents (json, text, -1, NULL));
  st_sign_with_openssl (f, dir, cert_pem, key_pem);

  /* the attack as reported: stock openssl with the root alone accepts it */
  g_autofree gchar *root = g_build_filename (f->home, "demo-root.pem", NULL);
  g_autofree gchar *p7s = st_pin_file (dir, "SHA256SUMS.p7s");
  g_autofree gchar *sums = st_pin_file (dir, "SHA256SUMS");
  g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "cms", "-verify", "-binary", "-inform", "DER",
                                "-in", p7s, "-content", sums, "-CAfile", root, "-out", "/dev/null",
                                NULL), ==, 0);

  /* the station rejects it, saying why */
  g_assert_cmpint (st_pin_verify (f, dir, &out, NULL, NULL, NULL, NULL, NULL), ==, 1);
  g_assert_nonnull (strstr (out, "MANIFEST REJECTED"));
  g_assert_nonnull (strstr (out, "not a station signing certificate"));
  g_clear_pointer (&out, g_free);
  /* so does the README's recipe with stock openssl */
  g_assert_cmpint (st_run_recipe (f, dir, pin, &out), !=, 0);
  g_clear_pointer (&out, g_free);
  /* even pinned by the device's own key (what a forger would claim): the
   * station-signing purpose is missing */
  g_autofree gchar *dev_out = NULL;
  g_assert_cmpint (st_run_tool (&dev_out, NULL, "sh", "-c",
                                "openssl x509 -in \"$0\" -noout -pubkey | openssl pkey -pubin -outform DER "
                                "| sha256sum | cut -d' ' -f1", cert_pem, NULL), ==, 0);
  g_strstrip (dev_out);
  g_assert_cmpuint (strlen (dev_out), ==, 64);
  g_assert_cmpint (st_pin_verify (f, dir, &out, NULL, "--signer-pin", dev_out, NULL, NULL), ==, 1);
  g_assert_nonnull (strstr (out, "not a station signing certificate"));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_recipe (f, dir, dev_out, &out), !=, 0);
}

typedef struct {
  gchar *a, *b;
} StUids;

static gchar *
st_swap (const char *text, const char *a, const char *b)
{
  g_autoptr(GString) s = g_string_new (text);
  g_assert_cmpuint (g_string_replace (s, a, "@@A@@", 0), >=, 1);
  g_assert_cmpuint (g_string_replace (s, b, a, 0), >=, 1);
  g_string_replace (s, "@@A@@", b, 0);
  return g_string_free (g_steal_pointer (&s), FALSE);
}

static void
test_uid_mismatch (StFixture *f, gconstpointer data)
{
  g_autofree gchar *dir = g_build_filename (f->tmp, "manifest", NULL);
  gint64 batch = st_pin_batch (f, "example-device-csr.profile", NULL, dir);
  g_autofree gchar *out = NULL;
  g_assert_cmpint (st_pin_verify (f, dir, &out, NULL, NULL, NULL, NULL, NULL), ==, 0);
  g_clear_pointer (&out, g_free);

  /* the two units' uids swapped, in the JSON and the CSV alike */
  g_autofree gchar *json_path = st_pin_file (dir, "units.jsonl");
  g_autofree gchar *csv_path = st_pin_file (dir, "manifest.csv");
  g_autoptr(JsonParser) parser = st_test_load_manifest (dir);
  JsonArray *units = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)),
                                                   "units");
  g_assert_cmpuint (json_array_get_length (units), ==, 2);
  const char *a = json_object_get_string_member (json_array_get_object_element (units, 0), "uid");
  const char *b = json_object_get_string_member (json_array_get_object_element (units, 1), "uid");
  g_assert_cmpstr (a, !=, b);
  const char *paths[] = { json_path, csv_path };
  for (guint i = 0; i < G_N_ELEMENTS (paths); i++)
    {
      g_autofree gchar *text = NULL;
      g_assert_true (g_file_get_contents (paths[i], &text, NULL, NULL));
      g_autofree gchar *swapped = st_swap (text, a, b);
      g_assert_true (g_file_set_contents (paths[i], swapped, -1, NULL));
    }
  st_sign_as_station (f, dir);

  /* the signature is the station's: only the uid check can refuse it */
  g_assert_cmpint (st_pin_verify (f, dir, &out, NULL, NULL, NULL, NULL, NULL), ==, 1);
  g_assert_nonnull (strstr (out, "MANIFEST REJECTED"));
  g_autofree gchar *line_a = g_strdup_printf ("uid %s does not match its certificate", a);
  g_autofree gchar *line_b = g_strdup_printf ("uid %s does not match its certificate", b);
  g_assert_cmpuint (st_count_lines (out, line_a), ==, 1);
  g_assert_cmpuint (st_count_lines (out, line_b), ==, 1);
  g_assert_cmpuint (st_count_lines (out, "FAIL  signature"), ==, 0);
  g_clear_pointer (&out, g_free);

  /* a uid edited in the database: the export checks what it wrote, and
   * refuses to hand out a manifest whose unit does not match its certificate */
  g_autofree gchar *sql = g_strdup_printf ("UPDATE units SET uid = '00aa00aa00aa00aa00aa00aa' WHERE uid = '%s'", a);
  g_free (st_sql (f, sql));
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  g_autofree gchar *again = g_build_filename (f->tmp, "again", NULL);
  g_autofree gchar *err = NULL;
  g_assert_cmpint (st_run_station (f, NULL, &err, "manifest", "export", id, "--out", again, NULL), !=, 0);
  g_assert_nonnull (strstr (err, "uid 00aa00aa00aa00aa00aa00aa does not match its certificate"));
  g_autofree gchar *p7s = st_pin_file (again, "SHA256SUMS.p7s");
  g_assert_false (g_file_test (p7s, G_FILE_TEST_EXISTS));
}

static void
st_edit_checkpoint_signature (JsonObject *top, gpointer data)
{
  JsonObject *cp = json_object_get_object_member (top, "audit_checkpoint");
  gsize len = 0;
  g_autofree guchar *sig = g_base64_decode (json_object_get_string_member (cp, "signature"), &len);
  g_assert_cmpuint (len, >, 8);
  sig[len - 1] ^= 0x01;
  g_autofree gchar *b64 = g_base64_encode (sig, len);
  json_object_set_string_member (cp, "signature", b64);
}

static void
st_edit_checkpoint_seq (JsonObject *top, gpointer data)
{
  JsonObject *cp = json_object_get_object_member (top, "audit_checkpoint");
  /* seq moved back by one: the signed message still names the real one */
  json_object_set_int_member (cp, "seq", json_object_get_int_member (cp, "seq") - 1);
}

static void
test_checkpoint (StFixture *f, gconstpointer data)
{
  g_autofree gchar *dir = g_build_filename (f->tmp, "manifest", NULL);
  st_pin_batch (f, "example-device-csr.profile", NULL, dir);
  g_autofree gchar *out = NULL;
  g_assert_cmpint (st_pin_verify (f, dir, &out, NULL, NULL, NULL, NULL, NULL), ==, 0);
  g_clear_pointer (&out, g_free);

  /* a bad signature */
  g_autofree gchar *bad_sig = g_build_filename (f->tmp, "bad-sig", NULL);
  st_copy_manifest (dir, bad_sig);
  st_edit_manifest (bad_sig, st_edit_checkpoint_signature, NULL);
  st_sign_as_station (f, bad_sig);
  g_assert_cmpint (st_pin_verify (f, bad_sig, &out, NULL, NULL, NULL, NULL, NULL), ==, 1);
  g_assert_nonnull (strstr (out, "FAIL  audit checkpoint"));
  g_assert_nonnull (strstr (out, "signature does not verify"));
  g_assert_cmpuint (st_count_lines (out, "FAIL"), ==, 1);
  g_clear_pointer (&out, g_free);

  /* a seq that is not the one signed */
  g_autofree gchar *bad_seq = g_build_filename (f->tmp, "bad-seq", NULL);
  st_copy_manifest (dir, bad_seq);
  st_edit_manifest (bad_seq, st_edit_checkpoint_seq, NULL);
  st_sign_as_station (f, bad_seq);
  g_assert_cmpint (st_pin_verify (f, bad_seq, &out, NULL, NULL, NULL, NULL, NULL), ==, 1);
  g_assert_nonnull (strstr (out, "FAIL  audit checkpoint"));
  g_assert_nonnull (strstr (out, "message is not the one of its seq and hash"));
  g_clear_pointer (&out, g_free);

  /* the genuine one, re-signed the same way, still verifies: what failed
   * above was the change, not the re-signing */
  st_sign_as_station (f, dir);
  g_assert_cmpint (st_pin_verify (f, dir, &out, NULL, NULL, NULL, NULL, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "ok    audit checkpoint: entry "));
}

static void
st_edit_drop_claim (JsonObject *top, gpointer data)
{
  g_assert_true (json_object_has_member (top, "signer_key_sha256"));
  json_object_remove_member (top, "signer_key_sha256");
}

static void
st_edit_wrong_claim (JsonObject *top, gpointer data)
{
  json_object_set_string_member (top, "signer_key_sha256", data);
}

static void
test_claimed_pin (StFixture *f, gconstpointer data)
{
  g_autofree gchar *dir = g_build_filename (f->tmp, "manifest", NULL);
  st_pin_batch (f, "example-device-csr.profile", NULL, dir);
  g_autofree gchar *pin = st_pin_configured (f);
  g_autofree gchar *out = NULL;

  /* the manifest records its signer's pin: the station's */
  g_autofree gchar *json_path = st_pin_file (dir, "manifest.json");
  g_autoptr(JsonParser) parser = st_test_load_json (json_path);
  JsonObject *top = json_node_get_object (json_parser_get_root (parser));
  g_assert_true (json_object_has_member (top, "signer_key_sha256"));
  g_assert_cmpstr (json_object_get_string_member (top, "signer_key_sha256"), ==, pin);
  g_assert_cmpint (st_pin_verify (f, dir, &out, NULL, NULL, NULL, NULL, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "ok    signer pin: the manifest records the same pin"));
  g_clear_pointer (&out, g_free);

  /* an older station's manifest: no claim; the configured pin decides */
  g_autofree gchar *old = g_build_filename (f->tmp, "older", NULL);
  st_copy_manifest (dir, old);
  st_edit_manifest (old, st_edit_drop_claim, NULL);
  st_sign_as_station (f, old);
  g_assert_cmpint (st_pin_verify (f, old, &out, NULL, NULL, NULL, NULL, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "no signer pin recorded"));
  g_clear_pointer (&out, g_free);

  /* a claim that is not the signer's key */
  g_autofree gchar *wrong = g_build_filename (f->tmp, "wrong", NULL);
  st_copy_manifest (dir, wrong);
  g_autofree gchar *other = g_strdup (pin);
  other[0] = other[0] == '0' ? '1' : '0';
  st_edit_manifest (wrong, st_edit_wrong_claim, other);
  st_sign_as_station (f, wrong);
  g_assert_cmpint (st_pin_verify (f, wrong, &out, NULL, NULL, NULL, NULL, NULL), ==, 1);
  g_assert_nonnull (strstr (out, "FAIL  signer pin"));
  g_assert_nonnull (strstr (out, other));
}

static void
test_root_needs_pin (StFixture *f, gconstpointer data)
{
  g_autofree gchar *dir = g_build_filename (f->tmp, "manifest", NULL);
  st_pin_batch (f, "example-device-csr.profile", NULL, dir);
  g_autofree gchar *pin = st_pin_configured (f);
  g_autofree gchar *root = g_build_filename (f->home, "demo-root.pem", NULL);
  g_autofree gchar *out = NULL, *err = NULL;

  /* another trust anchor without a pin: refused, naming the claimed pin */
  g_assert_cmpint (st_pin_verify (f, dir, &out, &err, "--root", root, NULL, NULL), ==, 1);
  g_assert_nonnull (strstr (out, "MANIFEST REJECTED"));
  g_assert_nonnull (strstr (out, "--signer-pin"));
  g_assert_nonnull (strstr (out, pin));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* with the pin: verified; upper-case hex is the same pin */
  g_assert_cmpint (st_pin_verify (f, dir, &out, NULL, "--root", root, "--signer-pin", pin), ==, 0);
  g_clear_pointer (&out, g_free);
  g_autofree gchar *upper = g_ascii_strup (pin, -1);
  g_assert_cmpint (st_pin_verify (f, dir, &out, NULL, "--root", root, "--signer-pin", upper), ==, 0);
  g_clear_pointer (&out, g_free);

  /* with another pin: rejected */
  g_autofree gchar *other = g_strdup (pin);
  other[63] = other[63] == '0' ? '1' : '0';
  g_assert_cmpint (st_pin_verify (f, dir, &out, NULL, "--root", root, "--signer-pin", other), ==, 1);
  g_assert_nonnull (strstr (out, "not the pinned station signing key"));
  g_clear_pointer (&out, g_free);
  /* the same without --root: the pin given wins over the configured one */
  g_assert_cmpint (st_pin_verify (f, dir, &out, NULL, "--signer-pin", other, NULL, NULL), ==, 1);
  g_assert_nonnull (strstr (out, "not the pinned station signing key"));
  g_clear_pointer (&out, g_free);

  /* not a pin at all: a usage error before anything is sent */
  g_assert_cmpint (st_pin_verify (f, dir, &out, &err, "--signer-pin", "abc", NULL, NULL), ==, ST_RC_USAGE);
  g_assert_nonnull (strstr (err, "64 hex digits"));
}

static void
st_edit_profile_sha (JsonObject *top, gpointer data)
{
  JsonObject *profile = json_object_get_object_member (json_object_get_object_member (top, "batch"),
                                                       "profile");
  json_object_set_string_member (profile, "sha256", "00000000000000000000000000000000"
                                                    "00000000000000000000000000000000");
}

static void
st_edit_profile_subject (JsonObject *top, gpointer data)
{
  JsonObject *profile = json_object_get_object_member (json_object_get_object_member (top, "batch"),
                                                       "profile");
  json_object_set_string_member (profile, "subject", "CN={uid},O=Example Devices Ltd");
}

static void
st_edit_profile_unknown_no_names (JsonObject *top, gpointer data)
{
  st_edit_profile_sha (top, data);
  JsonObject *profile = json_object_get_object_member (json_object_get_object_member (top, "batch"),
                                                       "profile");
  json_object_remove_member (profile, "subject");
  json_object_remove_member (profile, "san");
}

static void
st_edit_profile_unknown_no_model (JsonObject *top, gpointer data)
{
  st_edit_profile_sha (top, data);
  JsonArray *units = json_object_get_array_member (top, "units");
  for (guint i = 0; i < json_array_get_length (units); i++)
    json_object_remove_member (json_array_get_object_element (units, i), "model");
}

/* A verifier without the profile (another PC): what the manifest records
 * of it builds the names; a profile whose subject uses {model}. */
static void
test_profile_recorded (StFixture *f, gconstpointer data)
{
  const char *over[] = { "subject=CN={uid},OU={model},O=Example Devices Ltd", NULL };
  g_autofree gchar *profile = st_profile_copy (f, "example-device-csr.profile", over);
  g_autofree gchar *dir = g_build_filename (f->tmp, "manifest", NULL);
  st_pin_batch (f, profile, NULL, dir);
  g_autofree gchar *out = NULL;

  /* what the manifest records: the templates and each unit's model */
  {
    g_autoptr(JsonParser) parser = st_test_load_manifest (dir);
    JsonObject *top = json_node_get_object (json_parser_get_root (parser));
    JsonObject *p = json_object_get_object_member (json_object_get_object_member (top, "batch"), "profile");
    g_assert_true (json_object_has_member (p, "subject"));
    g_assert_cmpstr (json_object_get_string_member (p, "subject"), ==, over[0] + strlen ("subject="));
    g_assert_true (json_object_has_member (p, "san"));
    JsonArray *san = json_object_get_array_member (p, "san");
    g_assert_cmpuint (json_array_get_length (san), ==, 1);
    g_assert_cmpstr (json_array_get_string_element (san, 0), ==, "URI:urn:example:device:{uid}");
    JsonObject *u = json_array_get_object_element (json_object_get_array_member (top, "units"), 0);
    g_assert_true (json_object_has_member (u, "model"));
    g_assert_cmpstr (json_object_get_string_member (u, "model"), ==, "SIM-DEV-1");
  }
  g_assert_cmpint (st_pin_verify (f, dir, &out, NULL, NULL, NULL, NULL, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "as this station recorded it"));
  g_clear_pointer (&out, g_free);

  /* a profile this station does not know: the recorded templates decide */
  g_autofree gchar *unknown = g_build_filename (f->tmp, "unknown", NULL);
  st_copy_manifest (dir, unknown);
  st_edit_manifest (unknown, st_edit_profile_sha, NULL);
  st_sign_as_station (f, unknown);
  g_assert_cmpint (st_pin_verify (f, unknown, &out, NULL, NULL, NULL, NULL, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "as the manifest records them"));
  g_assert_nonnull (strstr (out, "ok    uids: 2 certificate(s)"));
  g_clear_pointer (&out, g_free);
  /* ... and refuse swapped uids by them */
  g_autoptr(JsonParser) parser = st_test_load_manifest (dir);
  JsonArray *units = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)),
                                                   "units");
  const char *a = json_object_get_string_member (json_array_get_object_element (units, 0), "uid");
  const char *b = json_object_get_string_member (json_array_get_object_element (units, 1), "uid");
  const char *names[] = { "units.jsonl", "manifest.csv" };
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree gchar *path = st_pin_file (unknown, names[i]);
      g_autofree gchar *text = NULL;
      g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
      g_autofree gchar *swapped = st_swap (text, a, b);
      g_assert_true (g_file_set_contents (path, swapped, -1, NULL));
    }
  st_sign_as_station (f, unknown);
  g_assert_cmpint (st_pin_verify (f, unknown, &out, NULL, NULL, NULL, NULL, NULL), ==, 1);
  g_assert_cmpuint (st_count_lines (out, "does not match its certificate"), ==, 2);
  g_clear_pointer (&out, g_free);

  /* recorded templates that are not this station's profile of that hash */
  g_autofree gchar *other = g_build_filename (f->tmp, "other", NULL);
  st_copy_manifest (dir, other);
  st_edit_manifest (other, st_edit_profile_subject, NULL);
  st_sign_as_station (f, other);
  g_assert_cmpint (st_pin_verify (f, other, &out, NULL, NULL, NULL, NULL, NULL), ==, 1);
  g_assert_nonnull (strstr (out, "FAIL  profile: the subject and SAN templates the manifest records"));
  g_clear_pointer (&out, g_free);

  /* an older station's manifest of a profile unknown here: not checked, said so */
  g_autofree gchar *older = g_build_filename (f->tmp, "older", NULL);
  st_copy_manifest (dir, older);
  st_edit_manifest (older, st_edit_profile_unknown_no_names, NULL);
  st_sign_as_station (f, older);
  g_assert_cmpint (st_pin_verify (f, older, &out, NULL, NULL, NULL, NULL, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "uids: not checked against the certificates"));
  g_clear_pointer (&out, g_free);
  /* no model recorded for a {model} profile: each unit said not checked */
  g_autofree gchar *no_model = g_build_filename (f->tmp, "no-model", NULL);
  st_copy_manifest (dir, no_model);
  st_edit_manifest (no_model, st_edit_profile_unknown_no_model, NULL);
  st_sign_as_station (f, no_model);
  g_assert_cmpint (st_pin_verify (f, no_model, &out, NULL, NULL, NULL, NULL, NULL), ==, 0);
  g_assert_cmpuint (st_count_lines (out, "not checked against its certificate"), ==, 2);
  g_assert_nonnull (strstr (out, "ok    uids: 0 certificate(s)"));
}

int
main (int argc, char **argv)
{
  st_test_init (&argc, &argv);
  st_test_add_station ("/manifest-pin/device-signer", NULL, test_device_signer);
  st_test_add_station ("/manifest-pin/uid-mismatch", NULL, test_uid_mismatch);
  st_test_add_station ("/manifest-pin/checkpoint", NULL, test_checkpoint);
  st_test_add_station ("/manifest-pin/claimed-pin", NULL, test_claimed_pin);
  st_test_add_station ("/manifest-pin/root-needs-pin", NULL, test_root_needs_pin);
  st_test_add_station ("/manifest-pin/profile-recorded", NULL, test_profile_recorded);
  return g_test_run ();
}
