/* libFuzzer: the manifest reader of 'manifest verify' (st_manifest_verify,
 * station/st-manifest.c), through its real entry point: each input is the
 * manifest.json of a manifest folder in memory (tmpfs) whose other files
 * are those of a real demo batch (tests/fuzz/manifest/: its CSV, its
 * ca-chain.pem; its demo root is the trusted root, loaded once). The seed
 * corpus holds that batch's manifest.json and smaller, hand-edited ones.
 *
 * The batch's detached signature (manifest.json.p7s) can only match a
 * manifest.json of the signed length: an input of that length goes to a
 * folder that holds it; any other to one whose manifest.json.p7s is empty
 * (refused as "not one DER CMS structure", and the reader goes on to the
 * JSON all the same). Reading and checking the fixed signature for inputs
 * that cannot match would follow the same path each time and cost half of
 * each run (OpenSSL 3 decodes the signer's certificate and verifies its
 * chain).
 *
 * Beyond memory errors it checks:
 *   - FALSE exactly when an error is set, and then a failed check is
 *     VERIFY_FAILED with at least one FAIL line in the report;
 *   - every report line is "ok  " or "FAIL" and a message (no manifest
 *     adds lines to its own report), and the report is valid UTF-8 (it
 *     crosses D-Bus as a string);
 *   - a manifest that verifies is byte for byte the one the signature
 *     covers (the signature is fixed, so nothing else may pass). */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <openssl/pem.h>

#include "st-fuzz.h"
#include "st-error.h"
#include "st-manifest.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static gchar *st_fuzz_dir;       /* in memory: signed/ and unsigned/ */
static gchar *st_fuzz_folder[2]; /* the manifest folders: unsigned, signed */
static gchar *st_fuzz_json[2];   /* their manifest.json */
static X509 *st_fuzz_root;       /* the demo root */
static gchar *st_fuzz_pin;       /* its station signing key's pin (signer-pin) */
static GBytes *st_fuzz_signed;   /* the manifest.json the signature covers */
static GString *st_fuzz_report;

/* A failed check prints its line and the report, to read with the
 * artifact. */
#define st_fuzz_check(ok) \
  do { \
    if (!(ok)) \
      { \
        g_printerr ("fuzz-manifest.c:%d: check failed: %s\n%s", __LINE__, #ok, \
                    st_fuzz_report != NULL ? st_fuzz_report->str : ""); \
        abort (); \
      } \
  } while (0)

static void
st_fuzz_cleanup (void)
{
  if (st_fuzz_dir != NULL)
    st_rm_rf (st_fuzz_dir);
}

static void
st_fuzz_copy_fixture (const char *folder, const char *name, gboolean empty)
{
  g_autofree gchar *from = g_build_filename (ST_FUZZ_MANIFEST_FIXTURE, name, NULL);
  g_autofree gchar *to = g_build_filename (folder, name, NULL);
  g_autofree gchar *data = NULL;
  gsize len = 0;
  if (!g_file_get_contents (from, &data, &len, NULL) ||
      !g_file_set_contents (to, data, empty ? 0 : (gssize) len, NULL))
    {
      g_printerr ("fuzz-manifest: cannot copy %s to %s\n", from, to);
      abort ();
    }
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  st_fuzz_silence_logs ();
  st_fuzz_dir = st_fuzz_make_tmp_dir ("st-fuzz-manifest-XXXXXX");
  atexit (st_fuzz_cleanup);
  for (int s = 0; s < 2; s++)
    {
      st_fuzz_folder[s] = g_build_filename (st_fuzz_dir, s ? "signed" : "unsigned", NULL);
      if (g_mkdir (st_fuzz_folder[s], 0700) != 0)
        abort ();
      st_fuzz_copy_fixture (st_fuzz_folder[s], "manifest.json.p7s", !s);
      st_fuzz_copy_fixture (st_fuzz_folder[s], "manifest.csv", FALSE);
      st_fuzz_copy_fixture (st_fuzz_folder[s], "ca-chain.pem", FALSE);
      st_fuzz_json[s] = g_build_filename (st_fuzz_folder[s], "manifest.json", NULL);
    }

  g_autofree gchar *root_path = g_build_filename (ST_FUZZ_MANIFEST_FIXTURE, "demo-root.pem", NULL);
  FILE *f = fopen (root_path, "r");
  st_fuzz_root = f != NULL ? PEM_read_X509 (f, NULL, NULL, NULL) : NULL;
  if (f != NULL)
    fclose (f);
  g_autofree gchar *signed_path = g_build_filename (ST_FUZZ_MANIFEST_FIXTURE, "manifest.json", NULL);
  g_autofree gchar *signed_json = NULL;
  gsize signed_len = 0;
  if (st_fuzz_root == NULL || !g_file_get_contents (signed_path, &signed_json, &signed_len, NULL))
    {
      g_printerr ("fuzz-manifest: cannot read %s or %s\n", root_path, signed_path);
      abort ();
    }
  st_fuzz_signed = g_bytes_new_take (g_steal_pointer (&signed_json), signed_len);
  g_autofree gchar *pin_path = g_build_filename (ST_FUZZ_MANIFEST_FIXTURE, "signer-pin", NULL);
  if (!g_file_get_contents (pin_path, &st_fuzz_pin, NULL, NULL))
    {
      g_printerr ("fuzz-manifest: cannot read %s\n", pin_path);
      abort ();
    }
  g_strstrip (st_fuzz_pin);
  st_fuzz_report = g_string_new (NULL);
  return 0;
}

static void
st_fuzz_write_json (const char *path, const uint8_t *data, size_t size)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    abort ();
  for (size_t at = 0; at < size;)
    {
      ssize_t n = write (fd, data + at, size - at);
      if (n <= 0)
        abort ();
      at += (size_t) n;
    }
  if (close (fd) != 0)
    abort ();
}

/* Every line of the report is a check: "ok  " or "FAIL", two spaces, a
 * message. Returns how many failed. */
static guint
st_fuzz_check_report (const GString *report)
{
  guint failed = 0;
  const char *p = report->str;
  st_fuzz_check (report->len > 0 && report->str[report->len - 1] == '\n');
  /* The report crosses D-Bus as a string: valid UTF-8, whatever the
   * manifest holds. */
  st_fuzz_check (g_utf8_validate_len (report->str, report->len, NULL));
  while (*p != '\0')
    {
      const char *end = strchr (p, '\n');
      st_fuzz_check (end != NULL && end - p >= 6);
      if (strncmp (p, "FAIL  ", 6) == 0)
        failed++;
      else
        st_fuzz_check (strncmp (p, "ok    ", 6) == 0);
      p = end + 1;
    }
  return failed;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  int s = size == g_bytes_get_size (st_fuzz_signed);
  st_fuzz_write_json (st_fuzz_json[s], data, size);
  g_string_truncate (st_fuzz_report, 0);
  g_autoptr(GError) error = NULL;
  gboolean ok = st_manifest_verify (st_fuzz_folder[s], st_fuzz_root, st_fuzz_pin, NULL,
                                    st_fuzz_report, &error);
  st_fuzz_check (ok == (error == NULL));
  guint failed = st_fuzz_check_report (st_fuzz_report);
  if (ok)
    {
      gsize signed_len = 0;
      const void *signed_json = g_bytes_get_data (st_fuzz_signed, &signed_len);
      st_fuzz_check (failed == 0 && size == signed_len && memcmp (data, signed_json, size) == 0);
    }
  else
    st_fuzz_check (g_error_matches (error, ST_ERROR, ST_ERROR_VERIFY_FAILED) && failed > 0);
  st_error_clear_openssl ();
  return 0;
}
