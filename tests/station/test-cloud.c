/* The cloud export's names and its transport (issue 15, item 4): a uid or
 * a file name comes from a device or from the service, and neither may
 * write outside the export folder.
 *
 * /cloud/names: the rules for certs/ file names, AWS thing names and Azure
 * DPS registration ids, with hostile uids ("../x", a newline, a leading
 * dot, too long).
 * /cloud/client-pack: st_client_save_files() given folder packs a hostile
 * service could send: a name with '/', "..", a newline or a leading dot,
 * twice the same name, data not in normal form, a folder label that is a
 * path, a folder that is a symbolic link: each refused, nothing written
 * outside (or at all); a good pack is written, refused again without
 * replace, and replaces the folder's old files with it. */
#include <fcntl.h>
#include <gio/gunixfdlist.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "st-client.h"
#include "st-cloud.h"
#include "st-error.h"
#include "st-util.h"

static guint
st_count_newlines (const char *s)
{
  guint n = 0;
  for (; *s != '\0'; s++)
    n += *s == '\n';
  return n;
}

static void
test_names (void)
{
  g_autofree gchar *plain = st_cloud_cert_file_name ("9053cafbe9b7a384d3573b83");
  g_assert_cmpstr (plain, ==, "9053cafbe9b7a384d3573b83.pem");
  const char *hostile[] = { "../x", "a/b", ".hidden", "x\ny", "", "..", "a.b",
                            "0123456789012345678901234567890123456789012345678901234567890123456789" };
  for (guint i = 0; i < G_N_ELEMENTS (hostile); i++)
    {
      g_autofree gchar *name = st_cloud_cert_file_name (hostile[i]);
      g_assert_true (g_str_has_prefix (name, "uid-sha256-"));
      g_assert_true (g_str_has_suffix (name, ".pem"));
      g_assert_null (strchr (name, '/'));
      g_assert_true (st_cloud_file_name_ok (name));
      g_assert_true (st_client_export_name_ok (name));
    }
  /* two different hostile uids, two names */
  g_autofree gchar *a = st_cloud_cert_file_name ("../x");
  g_autofree gchar *b = st_cloud_cert_file_name ("../y");
  g_assert_cmpstr (a, !=, b);

  /* a batch's names: hostile uids hashed and reported (escaped); a uid
   * that spells another's hashed name is too long to be a name itself
   * (75 > 64), so it is hashed as well and takes nothing; the same uid
   * twice: the second is left out and reported */
  g_autofree gchar *hashed = st_cloud_cert_file_name ("../x");
  g_autofree gchar *squatter = g_strndup (hashed, strlen (hashed) - strlen (".pem"));
  const char *uids[] = { "9053cafb", "../x", "a\nb", squatter, "9053cafb" };
  g_autoptr(GString) report = g_string_new (NULL);
  g_autoptr(GPtrArray) names = st_cloud_cert_names (uids, G_N_ELEMENTS (uids), report);
  g_assert_cmpuint (names->len, ==, G_N_ELEMENTS (uids));
  g_assert_cmpstr (g_ptr_array_index (names, 0), ==, "9053cafb.pem");
  g_assert_cmpstr (g_ptr_array_index (names, 1), ==, hashed);
  g_assert_true (g_str_has_prefix (g_ptr_array_index (names, 2), "uid-sha256-"));
  g_assert_true (g_str_has_prefix (g_ptr_array_index (names, 3), "uid-sha256-"));
  g_assert_cmpstr (g_ptr_array_index (names, 3), !=, hashed);
  g_assert_null (g_ptr_array_index (names, 4));
  g_assert_nonnull (strstr (report->str, "unit ../x is in uid-sha256-"));
  g_assert_nonnull (strstr (report->str, "unit a\\x0ab is in uid-sha256-"));
  g_assert_nonnull (strstr (report->str, "unit 9053cafb left out: its file name 9053cafb.pem is taken"));
  g_assert_cmpuint (st_count_newlines (report->str), ==, 4);

  g_assert_true (st_cloud_aws_thing_name_ok ("9053cafb:dev_1-a"));
  g_assert_false (st_cloud_aws_thing_name_ok (""));
  g_assert_false (st_cloud_aws_thing_name_ok ("a.b"));
  g_assert_false (st_cloud_aws_thing_name_ok ("a b"));
  g_autofree gchar *long128 = g_strnfill (128, 'a');
  g_autofree gchar *long129 = g_strnfill (129, 'a');
  g_assert_true (st_cloud_aws_thing_name_ok (long128));
  g_assert_false (st_cloud_aws_thing_name_ok (long129));

  g_autofree gchar *cn64 = g_strnfill (64, 'b');
  g_autofree gchar *cn65 = g_strnfill (65, 'b');
  g_assert_null (st_cloud_azure_registration_id_problem ("9053cafbe9b7a384d3573b83"));
  g_assert_null (st_cloud_azure_registration_id_problem ("dev-1.a_b"));
  g_assert_null (st_cloud_azure_registration_id_problem (cn64));
  const char *bad[] = { NULL, "", "-abc", "abc-", "abc.", "_abc", "a:b", "a b", "a/b", "é" };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    g_assert_nonnull (st_cloud_azure_registration_id_problem (bad[i]));
  g_assert_nonnull (st_cloud_azure_registration_id_problem (cn65));

  g_assert_true (st_cloud_check_code ("3b1fc5e6a0c1d2e3f40516273849aabbccddeeff00112233445566778899aabb", NULL));
  g_assert_true (st_cloud_check_code ("ABC-123", NULL));
  const char *bad_codes[] = { "", "../x", "a b", "a\nb", "a_b",
                              "00000000000000000000000000000000000000000000000000000000000000000" };
  for (guint i = 0; i < G_N_ELEMENTS (bad_codes); i++)
    {
      g_autoptr(GError) error = NULL;
      g_assert_false (st_cloud_check_code (bad_codes[i], &error));
      g_assert_nonnull (strstr (error->message, "registration code"));
    }
}

/* A descriptor holding @len bytes. */
static int
st_memfd (const void *data, gsize len)
{
  int fd = memfd_create ("test-pack", MFD_CLOEXEC);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (write (fd, data, len), ==, (gssize) len);
  g_assert_cmpint (lseek (fd, 0, SEEK_SET), ==, 0);
  return fd;
}

/* (label, pack) as ManifestExport sends it. */
static GVariant *
st_files_with (GUnixFDList *fds, const char *label, const void *data, gsize len)
{
  int fd = st_memfd (data, len);
  gint index = g_unix_fd_list_append (fds, fd, NULL);
  close (fd);
  g_assert_cmpint (index, >=, 0);
  return g_variant_ref_sink (g_variant_new_parsed ("[(%s, %h)]", label, index));
}

/* a(say) of (name, contents) pairs, NULL-terminated, serialised. */
static GBytes *
st_pack (const char *first, ...)
{
  GVariantBuilder b;
  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(say)"));
  va_list ap;
  va_start (ap, first);
  for (const char *name = first; name != NULL; name = va_arg (ap, const char *))
    {
      const char *contents = va_arg (ap, const char *);
      g_variant_builder_add (&b, "(s@ay)", name, g_variant_new_bytestring (contents));
    }
  va_end (ap);
  g_autoptr(GVariant) v = g_variant_ref_sink (g_variant_builder_end (&b));
  return g_variant_get_data_as_bytes (v);
}

static gboolean
st_save (const char *dir, const char *label, GBytes *pack, gboolean replace, GError **error)
{
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  g_autoptr(GVariant) files = st_files_with (fds, label, g_bytes_get_data (pack, NULL), g_bytes_get_size (pack));
  return st_client_save_files (files, fds, dir, replace, error);
}

static guint
st_count_entries (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  guint n = 0;
  while (d != NULL && g_dir_read_name (d) != NULL)
    n++;
  return n;
}

static void
test_client_pack (void)
{
  g_autofree gchar *tmp = g_dir_make_tmp ("st-cloud-XXXXXX", NULL);
  g_autofree gchar *dir = g_build_filename (tmp, "out", NULL);
  g_assert_cmpint (g_mkdir (dir, 0700), ==, 0);

  /* hostile names inside a folder's pack */
  const char *names[] = { "../x", "x/y", "..", ".", ".profile", "a\nb", "" };
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autoptr(GBytes) pack = st_pack ("ok.pem", "fine\n", names[i], "evil\n", NULL);
      g_autoptr(GError) error = NULL;
      g_assert_false (st_save (dir, "certs/", pack, FALSE, &error));
      g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
      /* nothing at all was written: the names are checked first */
      g_assert_cmpuint (st_count_entries (dir), ==, 0);
      g_assert_cmpuint (st_count_entries (tmp), ==, 1);
    }
  /* the same name twice */
  {
    g_autoptr(GBytes) pack = st_pack ("a.pem", "1\n", "a.pem", "2\n", NULL);
    g_autoptr(GError) error = NULL;
    g_assert_false (st_save (dir, "certs/", pack, FALSE, &error));
    g_assert_cmpuint (st_count_entries (dir), ==, 0);
  }
  /* a folder label that is a path */
  const char *labels[] = { "../", "./", "a/b/", "/", ".certs/" };
  for (guint i = 0; i < G_N_ELEMENTS (labels); i++)
    {
      g_autoptr(GBytes) pack = st_pack ("a.pem", "1\n", NULL);
      g_autoptr(GError) error = NULL;
      g_assert_false (st_save (dir, labels[i], pack, FALSE, &error));
      g_assert_cmpuint (st_count_entries (dir), ==, 0);
      g_assert_cmpuint (st_count_entries (tmp), ==, 1);
    }
  /* not a(say) in normal form: an offset that points past the data */
  {
    g_autoptr(GBytes) good = st_pack ("a.pem", "1\n", NULL);
    gsize len = g_bytes_get_size (good);
    g_autofree guint8 *bad = g_memdup2 (g_bytes_get_data (good, NULL), len);
    bad[len - 1] = 0xff;
    g_autoptr(GBytes) pack = g_bytes_new (bad, len);
    g_autoptr(GError) error = NULL;
    g_assert_false (st_save (dir, "certs/", pack, FALSE, &error));
    g_assert_nonnull (strstr (error->message, "normal form"));
    g_assert_cmpuint (st_count_entries (dir), ==, 0);
  }
  /* a folder that is a link elsewhere: never followed, even with replace */
  g_autofree gchar *elsewhere = g_build_filename (tmp, "elsewhere", NULL);
  g_assert_cmpint (g_mkdir (elsewhere, 0700), ==, 0);
  g_autofree gchar *victim = g_build_filename (elsewhere, "keep.txt", NULL);
  g_assert_true (g_file_set_contents (victim, "keep\n", -1, NULL));
  g_autofree gchar *link = g_build_filename (dir, "certs", NULL);
  g_assert_cmpint (symlink (elsewhere, link), ==, 0);
  {
    g_autoptr(GBytes) pack = st_pack ("a.pem", "1\n", NULL);
    g_autoptr(GError) error = NULL;
    g_assert_false (st_save (dir, "certs/", pack, TRUE, &error));
    g_assert_cmpuint (st_count_entries (elsewhere), ==, 1);
    g_assert_true (g_file_test (victim, G_FILE_TEST_EXISTS));
  }
  g_assert_cmpint (g_unlink (link), ==, 0);

  /* a good pack: written; again refused without replace; replaced with it */
  g_autoptr(GBytes) pack = st_pack ("a.pem", "one\n", "b.pem", "two\n", NULL);
  g_autoptr(GError) error = NULL;
  g_assert_true (st_save (dir, "certs/", pack, FALSE, &error));
  g_assert_no_error (error);
  g_autofree gchar *a = g_build_filename (dir, "certs", "a.pem", NULL);
  g_autofree gchar *text = NULL;
  g_assert_true (g_file_get_contents (a, &text, NULL, NULL));
  g_assert_cmpstr (text, ==, "one\n");
  g_autofree gchar *certs = g_build_filename (dir, "certs", NULL);
  g_assert_cmpuint (st_count_entries (certs), ==, 2);
  g_assert_false (st_save (dir, "certs/", pack, FALSE, &error));
  g_assert_nonnull (strstr (error->message, "--force"));
  g_clear_error (&error);
  g_autoptr(GBytes) next = st_pack ("c.pem", "three\n", NULL);
  g_assert_true (st_save (dir, "certs/", next, TRUE, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (st_count_entries (certs), ==, 1);
  st_rm_rf (tmp);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cloud/names", test_names);
  g_test_add_func ("/cloud/client-pack", test_client_pack);
  return g_test_run ();
}
