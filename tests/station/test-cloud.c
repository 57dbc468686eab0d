/* The cloud export's names and its transport (issue 15, item 4): a uid or
 * a file name comes from a device or from the service, and neither may
 * write outside the export folder.
 *
 * /cloud/names: the rules for certs/ file names, AWS thing names and Azure
 * DPS registration ids, with hostile uids ("../x", a newline, a leading
 * dot, too long).
 * /cloud/client-pack: st_client_save_files() given folder packs a hostile
 * service could send: a name with '/', "..", a newline or a leading dot,
 * twice the same name, a pack that is not station-folder-pack/1 as
 * written (another version, cut short, bytes after its end, a count or a
 * length that lies, a name of 256 bytes or with a NUL), a folder label
 * that is a path, a folder that is a symbolic link: each refused, nothing
 * written outside (or at all); a good pack is written, refused again
 * without replace, and replaces the folder's old files with it.
 * /cloud/pack-round-trip: st_cloud_pack_folder() of a folder, read back
 * by the client into another: the same files; a link or a hidden file in
 * the folder refused by the service.
 * /cloud/pack-memory: a pack of 4,000 files is checked and written by the
 * client with a peak RSS within 2 MiB of one of 1,000 (bounded memory). */
#include <fcntl.h>
#include <gio/gunixfdlist.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "st-client.h"
#include "st-cloud.h"
#include "st-cloud-pack.h"
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

  /* manifest export --cloud */
  guint targets = 0;
  g_assert_true (st_cloud_targets_parse (NULL, &targets, NULL));
  g_assert_cmpuint (targets, ==, ST_CLOUD_ALL);
  g_assert_true (st_cloud_targets_parse ("all", &targets, NULL));
  g_assert_cmpuint (targets, ==, ST_CLOUD_ALL);
  g_assert_true (st_cloud_targets_parse ("none", &targets, NULL));
  g_assert_cmpuint (targets, ==, 0);
  g_assert_true (st_cloud_targets_parse ("jws,aws", &targets, NULL));
  g_assert_cmpuint (targets, ==, ST_CLOUD_JWS | ST_CLOUD_AWS);
  g_assert_true (st_cloud_targets_parse ("aws,azure,certs,jws", &targets, NULL));
  g_assert_cmpuint (targets, ==, ST_CLOUD_ALL);
  const char *bad_targets[] = { "aws,aws", "gcp", "aws,", ",", "AWS", "all,aws", "none,jws", "a\nb" };
  for (guint i = 0; i < G_N_ELEMENTS (bad_targets); i++)
    {
      g_autoptr(GError) error = NULL;
      g_assert_false (st_cloud_targets_parse (bad_targets[i], &targets, &error));
      g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
      g_assert_nonnull (strstr (error->message, "aws,azure,certs,jws"));
      g_assert_null (strchr (error->message, '\n'));
    }

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

static void
st_put_be (GByteArray *a, guint64 v, guint n)
{
  for (guint i = 0; i < n; i++)
    {
      guint8 b = (guint8) (v >> (8 * (n - 1 - i)));
      g_byte_array_append (a, &b, 1);
    }
}

/* A station-folder-pack/1 of (name, contents) pairs, NULL-terminated,
 * encoded here from the format in docs/cloud.md (not by the station's
 * writer), with the count @count at its end (-1: the true count). */
static GBytes *
st_pack_counted (gint64 count, const char *first, va_list ap)
{
  GByteArray *a = g_byte_array_new ();
  g_byte_array_append (a, (const guint8 *) "station-folder-pack/1\n", 22);
  guint64 n = 0;
  for (const char *name = first; name != NULL; name = va_arg (ap, const char *))
    {
      const char *contents = va_arg (ap, const char *);
      st_put_be (a, strlen (name), 2);
      g_byte_array_append (a, (const guint8 *) name, (guint) strlen (name));
      st_put_be (a, strlen (contents), 8);
      g_byte_array_append (a, (const guint8 *) contents, (guint) strlen (contents));
      n++;
    }
  st_put_be (a, 0, 2);
  st_put_be (a, count >= 0 ? (guint64) count : n, 8);
  return g_byte_array_free_to_bytes (a);
}

static GBytes *
st_pack (const char *first, ...)
{
  va_list ap;
  va_start (ap, first);
  GBytes *b = st_pack_counted (-1, first, ap);
  va_end (ap);
  return b;
}

static GBytes *
st_pack_claiming (gint64 count, const char *first, ...)
{
  va_list ap;
  va_start (ap, first);
  GBytes *b = st_pack_counted (count, first, ap);
  va_end (ap);
  return b;
}

/* @pack with @len bytes of @extra in place of its last @cut bytes. */
static GBytes *
st_pack_edit (GBytes *pack, gsize cut, const void *extra, gsize len)
{
  gsize n = g_bytes_get_size (pack);
  GByteArray *a = g_byte_array_new ();
  g_byte_array_append (a, g_bytes_get_data (pack, NULL), (guint) (n - cut));
  g_byte_array_append (a, extra, (guint) len);
  return g_byte_array_free_to_bytes (a);
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
  /* the same name twice: found when the second is written (a pack is not
   * kept in memory); what was written of the folder is removed again */
  {
    g_autoptr(GBytes) pack = st_pack ("a.pem", "1\n", "b.pem", "2\n", "a.pem", "3\n", NULL);
    g_autoptr(GError) error = NULL;
    g_assert_false (st_save (dir, "certs/", pack, FALSE, &error));
    g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
    g_assert_nonnull (strstr (error->message, "twice"));
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
  /* packs that are not station-folder-pack/1 as it is written: each
   * refused before anything is written */
  {
    g_autoptr(GBytes) good = st_pack ("a.pem", "1\n", NULL);
    gsize glen = g_bytes_get_size (good);
    const guint8 *g = g_bytes_get_data (good, NULL);
    g_autoptr(GPtrArray) bad = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
    /* the old a(say) form, and another version */
    g_ptr_array_add (bad, g_bytes_new ("(say)", 5));
    g_autofree guint8 *v2 = g_memdup2 (g, glen);
    v2[20] = '2';
    g_ptr_array_add (bad, g_bytes_new (v2, glen));
    /* cut short: inside the data, inside the end, no end at all */
    g_ptr_array_add (bad, g_bytes_new (g, glen - 12));
    g_ptr_array_add (bad, g_bytes_new (g, glen - 3));
    g_ptr_array_add (bad, g_bytes_new (g, 22));
    /* a byte after the end */
    g_ptr_array_add (bad, st_pack_edit (good, 0, "x", 1));
    /* an end that counts another number of files */
    g_ptr_array_add (bad, st_pack_claiming (2, "a.pem", "1\n", NULL));
    g_ptr_array_add (bad, st_pack_claiming (0, "a.pem", "1\n", NULL));
    /* a data length past the end of the pack, and one of 2^64 - 1 */
    g_autofree guint8 *longer = g_memdup2 (g, glen);
    longer[22 + 2 + 5 + 7] = 0x40;
    g_ptr_array_add (bad, g_bytes_new (longer, glen));
    g_autofree guint8 *huge = g_memdup2 (g, glen);
    memset (huge + 22 + 2 + 5, 0xff, 8);
    g_ptr_array_add (bad, g_bytes_new (huge, glen));
    /* a name of 256 bytes, a name with a NUL */
    g_autofree gchar *n256 = g_strnfill (256, 'a');
    g_ptr_array_add (bad, st_pack (n256, "1\n", NULL));
    static const guint8 nul_name[] = {
      's', 't', 'a', 't', 'i', 'o', 'n', '-', 'f', 'o', 'l', 'd', 'e', 'r', '-', 'p', 'a', 'c', 'k',
      '/', '1', '\n', 0, 3, 'a', 0, 'b', 0, 0, 0, 0, 0, 0, 0, 1, '1', 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    };
    g_ptr_array_add (bad, g_bytes_new (nul_name, sizeof nul_name));
    for (guint i = 0; i < bad->len; i++)
      {
        g_autoptr(GError) error = NULL;
        g_assert_false (st_save (dir, "certs/", g_ptr_array_index (bad, i), FALSE, &error));
        g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
        g_assert_nonnull (strstr (error->message, "certs/"));
        g_assert_cmpuint (st_count_entries (dir), ==, 0);
      }
    /* the good one, as a check of the cases above */
    g_autoptr(GError) error = NULL;
    g_assert_true (st_save (dir, "certs/", good, FALSE, &error));
    g_assert_no_error (error);
    g_autofree gchar *certs = g_build_filename (dir, "certs", NULL);
    st_rm_rf (certs);
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

/* Writes @n files of 2,000 bytes (a certs/ file) into @dir, without an
 * allocation per file (under ASan, freed memory stays in its quarantine and
 * would count in the memory bound below). */
static void
st_fill_folder (const char *dir, guint n)
{
  static char body[2000];
  memset (body, 'c', sizeof body);
  int dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  g_assert_cmpint (dfd, >=, 0);
  for (guint i = 0; i < n; i++)
    {
      char name[64];
      g_snprintf (name, sizeof name, "%024x.pem", i);
      int fd = openat (dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      g_assert_cmpint (fd, >=, 0);
      g_assert_cmpint (write (fd, body, sizeof body), ==, (gssize) sizeof body);
      close (fd);
    }
  close (dfd);
}

/* Removes the @n files st_fill_folder made in @dir, then @dir, without an
 * allocation per file. */
static void
st_empty_filled (const char *dir, guint n)
{
  int dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  g_assert_cmpint (dfd, >=, 0);
  for (guint i = 0; i < n; i++)
    {
      char name[64];
      g_snprintf (name, sizeof name, "%024x.pem", i);
      g_assert_cmpint (unlinkat (dfd, name, 0), ==, 0);
    }
  close (dfd);
  g_assert_cmpint (g_rmdir (dir), ==, 0);
}

/* The service's pack of @src, given to the client's save into @out. */
static gboolean
st_pack_and_save (const char *src, const char *tmp, const char *out, GError **error)
{
  int fd = st_cloud_pack_folder (src, tmp, error);
  if (fd < 0)
    return FALSE;
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  gint index = g_unix_fd_list_append (fds, fd, NULL);
  close (fd);
  g_autoptr(GVariant) files = g_variant_ref_sink (g_variant_new_parsed ("[('certs/', %h)]", index));
  return st_client_save_files (files, fds, out, FALSE, error);
}

static void
test_pack_round_trip (void)
{
  g_autofree gchar *tmp = g_dir_make_tmp ("st-cloud-XXXXXX", NULL);
  g_autofree gchar *src = g_build_filename (tmp, "src", NULL);
  g_autofree gchar *out = g_build_filename (tmp, "out", NULL);
  g_assert_cmpint (g_mkdir (src, 0700), ==, 0);
  st_fill_folder (src, 50);
  g_autofree gchar *empty = g_build_filename (src, "empty.txt", NULL);
  g_assert_true (g_file_set_contents (empty, "", 0, NULL));
  g_autoptr(GError) error = NULL;
  g_assert_true (st_pack_and_save (src, tmp, out, &error));
  g_assert_no_error (error);
  g_autofree gchar *certs = g_build_filename (out, "certs", NULL);
  g_assert_cmpuint (st_count_entries (certs), ==, 51);
  g_autofree gchar *one = g_build_filename (certs, "000000000000000000000031.pem", NULL);
  g_autofree gchar *text = NULL;
  gsize len = 0;
  g_assert_true (g_file_get_contents (one, &text, &len, NULL));
  g_assert_cmpuint (len, ==, 2000);
  g_autofree gchar *empty_out = g_build_filename (certs, "empty.txt", NULL);
  g_assert_true (g_file_test (empty_out, G_FILE_TEST_IS_REGULAR));
  /* nothing of the pack is left in the service's folder */
  g_assert_cmpuint (st_count_entries (tmp), ==, 2);

  /* the service refuses a link or a hidden file in a folder it packs */
  const char *odd[] = { "link.pem", ".hidden" };
  for (guint i = 0; i < G_N_ELEMENTS (odd); i++)
    {
      g_autofree gchar *path = g_build_filename (src, odd[i], NULL);
      if (i == 0)
        g_assert_cmpint (symlink ("/etc/passwd", path), ==, 0);
      else
        g_assert_true (g_file_set_contents (path, "x", -1, NULL));
      g_autoptr(GError) refused = NULL;
      g_assert_cmpint (st_cloud_pack_folder (src, tmp, &refused), ==, -1);
      g_assert_nonnull (strstr (refused->message, odd[i]));
      g_assert_cmpint (g_unlink (path), ==, 0);
    }
  g_assert_cmpuint (st_count_entries (tmp), ==, 2);
  st_rm_rf (tmp);
}

static guint64
st_vm_hwm_kib (void)
{
  g_autofree gchar *status = NULL;
  g_assert_true (g_file_get_contents ("/proc/self/status", &status, NULL, NULL));
  const char *p = strstr (status, "VmHWM:");
  g_assert_nonnull (p);
  return g_ascii_strtoull (p + 6, NULL, 10);
}

/* Bounded memory: a memory bound, not a time (the rule). The
 * client checks and writes 4 times the files of a first pack; its peak RSS
 * may not grow by more than 2 MiB over the first (a pack held in memory
 * would add about 8 MB). */
static void
test_pack_memory (void)
{
  const char *base = g_file_test ("/dev/shm", G_FILE_TEST_IS_DIR) ? "/dev/shm" : g_get_tmp_dir ();
  g_autofree gchar *tmpl = g_build_filename (base, "st-cloud-mem-XXXXXX", NULL);
  g_autofree gchar *tmp = g_mkdtemp (g_strdup (tmpl));
  g_assert_nonnull (tmp);
  guint64 peak[2] = { 0, 0 };
  for (guint round = 0; round < 2; round++)
    {
      guint n = round == 0 ? 1000 : 4000;
      g_autofree gchar *src = g_strdup_printf ("%s/src%u", tmp, round);
      g_autofree gchar *out = g_strdup_printf ("%s/out%u", tmp, round);
      g_assert_cmpint (g_mkdir (src, 0700), ==, 0);
      st_fill_folder (src, n);
      int fd = st_cloud_pack_folder (src, tmp, NULL);
      g_assert_cmpint (fd, >=, 0);
      st_empty_filled (src, n);
      g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
      gint index = g_unix_fd_list_append (fds, fd, NULL);
      close (fd);
      g_autoptr(GVariant) files = g_variant_ref_sink (g_variant_new_parsed ("[('certs/', %h)]", index));
      g_autoptr(GError) error = NULL;
      g_assert_true (st_client_save_files (files, fds, out, FALSE, &error));
      g_assert_no_error (error);
      g_autofree gchar *certs = g_build_filename (out, "certs", NULL);
      g_assert_cmpuint (st_count_entries (certs), ==, n);
      st_empty_filled (certs, n);
      g_assert_cmpint (g_rmdir (out), ==, 0);
      peak[round] = st_vm_hwm_kib ();
    }
  g_test_message ("client peak RSS after 1,000 files: %" G_GUINT64_FORMAT " KiB, after 4,000 more: %"
                  G_GUINT64_FORMAT " KiB", peak[0], peak[1]);
  g_assert_cmpuint (peak[1], <=, peak[0] + 2048);
  st_rm_rf (tmp);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cloud/names", test_names);
  g_test_add_func ("/cloud/client-pack", test_client_pack);
  g_test_add_func ("/cloud/pack-round-trip", test_pack_round_trip);
  g_test_add_func ("/cloud/pack-memory", test_pack_memory);
  return g_test_run ();
}
