#include "st-client.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gio/gunixfdlist.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "st-cloud-pack.h"
#include "st-error.h"
#include "st-text.h"
#include "st-util.h"

/* The manifest's files, as st_manifest_export writes them
 * (station-manifest/2), and manifest.json.p7s, the signature of a
 * station-manifest/1 folder. */
static const char *const st_manifest_files[] = {
  "manifest.json", "units.jsonl", "manifest.csv", "ca-chain.pem", "crl.pem", "SHA256SUMS",
  "SHA256SUMS.p7s", "manifest.json.p7s",
};

/* What the cloud export adds next to them (st-cloud.h, docs/cloud.md): a
 * report and folders, each folder coming as one descriptor. */
static const char *const st_cloud_export_files[] = { "cloud-report.txt" };
static const char *const st_cloud_export_folders[] = { "aws", "azure", "certs", "jws" };

/* ---- reaching the service ------------------------------------------------ */

void
st_client_target_from_env (StClientTarget *t)
{
  /* what the command line names wins over the environment */
  if (t->address != NULL || t->bus != NULL || t->home != NULL || t->system)
    return;
  if (t->address == NULL && g_getenv ("STATION_ADDRESS") != NULL && *g_getenv ("STATION_ADDRESS"))
    t->address = g_getenv ("STATION_ADDRESS");
  if (t->bus == NULL && g_getenv ("STATION_BUS") != NULL && *g_getenv ("STATION_BUS"))
    t->bus = g_getenv ("STATION_BUS");
  if (t->home == NULL && g_getenv ("STATION_HOME") != NULL && *g_getenv ("STATION_HOME"))
    t->home = g_getenv ("STATION_HOME");
}

gchar *
st_client_target_describe (const StClientTarget *t)
{
  if (t->address != NULL)
    return g_strdup_printf (_("the station service at %s"), t->address);
  if (t->bus != NULL)
    return g_strdup_printf (_("the station service on the bus %s"), t->bus);
  if (!t->system && t->home != NULL)
    return g_strdup_printf (_("the station service of %s"), t->home);
  return g_strdup (_("the system's station service (stationd)"));
}

static gchar *
st_client_how_to_start (const StClientTarget *t)
{
  if (t->address != NULL || t->bus != NULL)
    return g_strdup (_("check the address, and that stationd runs there"));
  if (!t->system && t->home != NULL)
    return g_strdup_printf (_("start it with 'stationd --home %s' (the README shows how), or "
                            "run 'station demo', which starts its own"), t->home);
  return g_strdup (_("start it with 'systemctl start stationd' (docs/install.md), or give "
                   "--home DIR for a private station"));
}

StDbusStation1 *
st_client_connect (const StClientTarget *target, GCancellable *cancellable, GError **error)
{
  st_dbus_register_errors ();
  g_autoptr(GError) local = NULL;
  g_autoptr(GDBusConnection) connection = NULL;
  gboolean on_bus = TRUE;
  if (target->address != NULL)
    {
      on_bus = FALSE;
      connection = g_dbus_connection_new_for_address_sync (
        target->address, G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT, NULL, cancellable, &local);
    }
  else if (target->bus != NULL)
    connection = g_dbus_connection_new_for_address_sync (
      target->bus, G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT
                   | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION, NULL, cancellable, &local);
  else if (!target->system && target->home != NULL)
    {
      on_bus = FALSE;
      g_autofree gchar *socket = g_build_filename (target->home, "stationd.sock", NULL);
      g_autofree gchar *address = g_dbus_address_escape_value (socket);
      g_autofree gchar *full = g_strdup_printf ("unix:path=%s", address);
      connection = g_dbus_connection_new_for_address_sync (
        full, G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT, NULL, cancellable, &local);
    }
  else
    connection = g_bus_get_sync (G_BUS_TYPE_SYSTEM, cancellable, &local);
  if (connection == NULL)
    {
      g_autofree gchar *what = st_client_target_describe (target);
      g_autofree gchar *how = st_client_how_to_start (target);
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND, _("%s does not answer (%s): %s"), what,
                   local->message, how);
      return NULL;
    }
  g_dbus_connection_set_exit_on_close (connection, FALSE);
  StDbusStation1 *proxy = st_dbus_station1_proxy_new_sync (
    connection, on_bus ? G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START_AT_CONSTRUCTION : G_DBUS_PROXY_FLAGS_NONE,
    on_bus ? ST_DBUS_NAME : NULL, ST_DBUS_PATH, cancellable, &local);
  if (proxy == NULL)
    {
      g_autofree gchar *what = st_client_target_describe (target);
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND, _("%s does not answer: %s"), what,
                   local->message);
      return NULL;
    }
  g_autofree gchar *owner = on_bus ? g_dbus_proxy_get_name_owner (G_DBUS_PROXY (proxy)) : NULL;
  if (on_bus && owner == NULL)
    {
      g_autofree gchar *what = st_client_target_describe (target);
      g_autofree gchar *how = st_client_how_to_start (target);
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND, _("%s is not running: %s"), what, how);
      g_object_unref (proxy);
      return NULL;
    }
  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (proxy), G_MAXINT);
  return proxy;
}

/* ---- files ------------------------------------------------------------------ */

gboolean
st_client_save_fd (int fd, const char *path, GError **error)
{
  return st_file_write_durable_from_fd (path, fd, 0644, error);
}

/* A manifest's file @name already in @dir, unless @replace. */
static gboolean
st_client_refuse_existing (const char *dir, const char *name, gboolean replace, GError **error)
{
  if (replace)
    return TRUE;
  g_autofree gchar *path = g_build_filename (dir, name, NULL);
  GStatBuf st;
  if (g_lstat (path, &st) != 0)
    return TRUE;
  g_set_error (error, ST_ERROR, ST_ERROR_WRITE,
               _("%s already holds a manifest (%s): exporting there would replace it; choose another "
               "folder (one per batch), or give --force to replace it"), dir, name);
  return FALSE;
}

gboolean
st_client_manifest_dest_check (const char *dir, gboolean replace, GError **error)
{
  for (guint i = 0; i < G_N_ELEMENTS (st_manifest_files); i++)
    if (!st_client_refuse_existing (dir, st_manifest_files[i], replace, error))
      return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (st_cloud_export_files); i++)
    if (!st_client_refuse_existing (dir, st_cloud_export_files[i], replace, error))
      return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (st_cloud_export_folders); i++)
    if (!st_client_refuse_existing (dir, st_cloud_export_folders[i], replace, error))
      return FALSE;
  return TRUE;
}

/* A file name the client writes into an export folder: 1..255 bytes of
 * A-Z a-z 0-9 . _ -, not starting with '.' (so never ".", "..", a hidden
 * file or a path). The service's own rule (st_cloud_file_name_ok) is the
 * same; the client does not take the service's word for it. */
gboolean
st_client_export_name_ok (const char *name)
{
  return st_cloud_pack_name_ok (name, name != NULL ? strlen (name) : 0);
}

gboolean
st_client_check_folder_pack (int fd, const char *label, GError **error)
{
  return st_cloud_pack_read (fd, label, NULL, NULL, NULL, error);
}

typedef struct {
  int dfd;
  const char *path;        /* the folder, for messages */
  guint8 *buf;
  int mode;                /* of each file; 0: 0644 */
} StClientFolderWrite;

/* One file of a pack into the folder: created (never replacing anything,
 * never through a link: O_EXCL), then its bytes copied from the pack. */
static gboolean
st_client_write_pack_file (const char *name, int fd, guint64 offset, guint64 len, gpointer user_data,
                           GError **error)
{
  StClientFolderWrite *w = user_data;
  int out = openat (w->dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    w->mode != 0 ? w->mode : 0644);
  if (out < 0)
    {
      int e = errno;
      if (e == EEXIST)
        g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                     _("the service sent %s/%s twice: refused (each name once)"), w->path, name);
      else
        g_set_error (error, ST_ERROR, ST_ERROR_WRITE, _("cannot write %s/%s: %s"), w->path, name,
                     g_strerror (e));
      return FALSE;
    }
  gboolean ok = TRUE;
  int e = 0;
  while (ok && len > 0)
    {
      ssize_t n = pread (fd, w->buf, (gsize) MIN (len, (guint64) (64 * 1024)), (off_t) offset);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          e = n < 0 ? errno : EIO;
          ok = FALSE;
          break;
        }
      gsize done = 0;
      while (ok && done < (gsize) n)
        {
          ssize_t m = write (out, w->buf + done, (gsize) n - done);
          if (m < 0 && errno == EINTR)
            continue;
          if (m <= 0)
            {
              e = m < 0 ? errno : ENOSPC;
              ok = FALSE;
            }
          else
            done += (gsize) m;
        }
      offset += (guint64) n;
      len -= (guint64) n;
    }
  if (close (out) != 0 && ok)
    {
      e = errno;
      ok = FALSE;
    }
  if (!ok)
    g_set_error (error, ST_ERROR, ST_ERROR_WRITE, _("cannot write %s/%s: %s"), w->path, name, g_strerror (e));
  return ok;
}

/* Removes the plain files and links in the folder open as @dfd. */
static void
st_client_empty_folder (int dfd)
{
  int scan = dup (dfd);
  DIR *d = scan >= 0 ? fdopendir (scan) : NULL;
  if (d == NULL && scan >= 0)
    close (scan);
  struct dirent *de;
  while (d != NULL && (de = readdir (d)) != NULL)
    {
      struct stat st;
      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      if (fstatat (dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0
          && (S_ISREG (st.st_mode) || S_ISLNK (st.st_mode)))
        unlinkat (dfd, de->d_name, 0);
    }
  if (d != NULL)
    closedir (d);
}

/* Writes the files of the pack behind @pack_fd (checked) into @dir/@folder,
 * made when missing, each file as it is read. The folder is opened without
 * following a link; with @replace the plain files it held are removed
 * first (a manifest replaced must not keep another batch's devices),
 * without it an existing folder is refused. The files are made durable
 * together at the end (one syncfs). If the pack fails half way (it was
 * checked, so only a service that changes it meanwhile), what was written
 * of the folder is removed again. */
static gboolean
st_client_write_folder (const char *dir, const char *folder, int pack_fd, gboolean replace,
                        GError **error)
{
  g_autofree gchar *path = g_build_filename (dir, folder, NULL);
  int parent = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (parent < 0 || (mkdirat (parent, folder, 0755) != 0 && (errno != EEXIST || !replace)))
    {
      int e = errno;
      if (parent >= 0)
        close (parent);
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, _("cannot create %s: %s%s"), path, g_strerror (e),
                   e == EEXIST ? _(": give --force to replace it") : "");
      return FALSE;
    }
  int dfd = openat (parent, folder, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  int e = errno;
  if (dfd < 0)
    {
      close (parent);
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, _("cannot open %s as a folder (a link is refused): %s"),
                   path, g_strerror (e));
      return FALSE;
    }
  if (replace)
    st_client_empty_folder (dfd);
  g_autofree guint8 *buf = g_malloc (64 * 1024);
  StClientFolderWrite w = { .dfd = dfd, .path = path, .buf = buf };
  gboolean ok = st_cloud_pack_read (pack_fd, folder, st_client_write_pack_file, &w, NULL, error);
  if (ok && (syncfs (dfd) != 0 || fsync (dfd) != 0))
    {
      e = errno;
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, _("cannot sync %s: %s"), path, g_strerror (e));
      ok = FALSE;
    }
  if (!ok)
    {
      st_client_empty_folder (dfd);
      unlinkat (parent, folder, AT_REMOVEDIR);
    }
  close (dfd);
  close (parent);
  return ok;
}

/* ---- files that hold secrets: a Matter batch's codes file and labels ---- */

typedef struct {
  StClientFolderWrite w;
  GPtrArray *written;      /* names created by this call */
} StClientPrivateWrite;

/* Before anything is written: no file of the pack is in the folder yet. */
static gboolean
st_client_private_absent (const char *name, int fd, guint64 offset, guint64 len, gpointer user_data,
                          GError **error)
{
  StClientPrivateWrite *p = user_data;
  struct stat st;
  if (fstatat (p->w.dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, _("%s/%s is there already: it is never replaced (it "
                   "holds setup codes); move it away or choose another folder"), p->w.path, name);
      return FALSE;
    }
  return TRUE;
}

static gboolean
st_client_private_file (const char *name, int fd, guint64 offset, guint64 len, gpointer user_data,
                        GError **error)
{
  StClientPrivateWrite *p = user_data;
  if (!st_client_write_pack_file (name, fd, offset, len, &p->w, error))
    {
      /* what was created of it goes too */
      if (g_error_matches (*error, ST_ERROR, ST_ERROR_WRITE))
        unlinkat (p->w.dfd, name, 0);
      return FALSE;
    }
  g_ptr_array_add (p->written, g_strdup (name));
  return TRUE;
}

gboolean
st_client_save_private_pack (int pack_fd, const char *dir, guint64 *n_files, GError **error)
{
  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      int e = errno;
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, _("cannot create %s: %s"), dir, g_strerror (e));
      return FALSE;
    }
  int dfd = open (dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0)
    {
      int e = errno;
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, _("cannot open %s as a folder (a link is refused): %s"),
                   dir, g_strerror (e));
      return FALSE;
    }
  g_autofree guint8 *buf = g_malloc (64 * 1024);
  g_autoptr(GPtrArray) written = g_ptr_array_new_with_free_func (g_free);
  StClientPrivateWrite p = { .w = { .dfd = dfd, .path = dir, .buf = buf, .mode = 0600 }, .written = written };
  gboolean ok = st_cloud_pack_read (pack_fd, dir, st_client_private_absent, &p, NULL, error)
                && st_cloud_pack_read (pack_fd, dir, st_client_private_file, &p, n_files, error);
  if (ok && fsync (dfd) != 0)
    {
      int e = errno;
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, _("cannot sync %s: %s"), dir, g_strerror (e));
      ok = FALSE;
    }
  for (guint i = 0; !ok && i < written->len; i++)
    unlinkat (dfd, g_ptr_array_index (written, i), 0);
  close (dfd);
  return ok;
}

GVariant *
st_client_matter_labels_options (double width_mm, double height_mm, guint dpi, guint zpl_dpi)
{
  GVariantBuilder b;
  g_variant_builder_init (&b, G_VARIANT_TYPE ("a{sv}"));
  /* 0: the service's default */
  if (width_mm > 0)
    g_variant_builder_add (&b, "{sv}", "width-mm", g_variant_new_double (width_mm));
  if (height_mm > 0)
    g_variant_builder_add (&b, "{sv}", "height-mm", g_variant_new_double (height_mm));
  if (dpi > 0)
    g_variant_builder_add (&b, "{sv}", "dpi", g_variant_new_uint32 (dpi));
  if (zpl_dpi > 0)
    g_variant_builder_add (&b, "{sv}", "zpl-dpi", g_variant_new_uint32 (zpl_dpi));
  return g_variant_builder_end (&b);
}

GVariant *
st_client_manifest_export_options (gboolean replace)
{
  return st_client_manifest_export_options_cloud (replace, NULL);
}

GVariant *
st_client_manifest_export_options_cloud (gboolean replace, const char *cloud)
{
  GVariantBuilder b;
  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  if (replace)
    g_variant_builder_add (&b, "{sv}", "replace", g_variant_new_boolean (TRUE));
  /* absent for all: a service of before --cloud still takes the call */
  if (cloud != NULL)
    g_variant_builder_add (&b, "{sv}", "cloud", g_variant_new_string (cloud));
  return g_variant_builder_end (&b);
}

static void
st_client_close_fd (gpointer fd)
{
  close (GPOINTER_TO_INT (fd));
}

gboolean
st_client_save_files (GVariant *files, GUnixFDList *fds, const char *dir, gboolean replace,
                      GError **error)
{
  if (g_mkdir_with_parents (dir, 0755) != 0)
    {
      int e = errno;
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, _("cannot create %s: %s"), dir, g_strerror (e));
      return FALSE;
    }
  GVariantIter it;
  const char *name;
  gint32 index;
  /* the folders' packs, checked before anything is written (their
   * descriptors are kept, not their contents) */
  g_autoptr(GHashTable) packs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, st_client_close_fd);
  /* every name checked before anything is written */
  g_variant_iter_init (&it, files);
  while (g_variant_iter_next (&it, "(&sh)", &name, &index))
    {
      gsize n = strlen (name);
      if (n > 1 && name[n - 1] == '/')
        {
          /* a folder of the cloud export: "NAME/", one descriptor */
          g_autofree gchar *folder = g_strndup (name, n - 1);
          if (!st_client_export_name_ok (folder) || g_hash_table_contains (packs, folder))
            {
              g_autofree gchar *shown = st_text_escape (name, -1, ST_TEXT_ONE_LINE);
              g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           _("the service sent a folder named '%s'"), shown);
              return FALSE;
            }
          if (!st_client_refuse_existing (dir, folder, replace, error))
            return FALSE;
          int fd = fds != NULL ? g_unix_fd_list_get (fds, index, error) : -1;
          if (fd < 0)
            return FALSE;
          if (!st_client_check_folder_pack (fd, name, error))
            {
              close (fd);
              return FALSE;
            }
          g_hash_table_insert (packs, g_steal_pointer (&folder), GINT_TO_POINTER (fd));
          continue;
        }
      /* the service's names are plain file names; anything else is refused */
      if (*name == '\0' || *name == '.' || strchr (name, '/') != NULL)
        {
          g_autofree gchar *shown = st_text_escape (name, -1, ST_TEXT_ONE_LINE);
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       _("the service sent a file named '%s'"), shown);
          return FALSE;
        }
      if (!st_client_refuse_existing (dir, name, replace, error))
        return FALSE;
    }
  GHashTableIter hi;
  gpointer key, value;
  g_hash_table_iter_init (&hi, packs);
  while (g_hash_table_iter_next (&hi, &key, &value))
    if (!st_client_write_folder (dir, key, GPOINTER_TO_INT (value), replace, error))
      return FALSE;
  g_variant_iter_init (&it, files);
  while (g_variant_iter_next (&it, "(&sh)", &name, &index))
    {
      if (g_str_has_suffix (name, "/"))
        continue;
      int fd = fds != NULL ? g_unix_fd_list_get (fds, index, error) : -1;
      if (fd < 0)
        return FALSE;
      g_autofree gchar *path = g_build_filename (dir, name, NULL);
      gboolean ok = st_client_save_fd (fd, path, error);
      close (fd);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

/* Adds (@label, descriptor of @path) to @a: @path must be a regular file,
 * opened without following a link and without blocking. A missing file is
 * skipped (*@added FALSE) when @missing_ok. */
static gboolean
st_client_add_regular_file (GVariantBuilder *a, GUnixFDList *fds, const char *label, const char *path,
                            gboolean missing_ok, GError **error)
{
  int fd = g_open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0);
  if (fd < 0 && errno == ENOENT && missing_ok)
    return TRUE;
  struct stat st;
  if (fd < 0 || fstat (fd, &st) != 0 || !S_ISREG (st.st_mode))
    {
      int e = errno;
      if (fd >= 0)
        close (fd);
      g_set_error (error, ST_ERROR, fd < 0 && e == ENOENT ? ST_ERROR_NOT_FOUND : ST_ERROR_INVALID_DATA,
                   _("%s is not a regular file (%s): a manifest is plain files; a link, a "
                   "device or a pipe is refused"), path, fd < 0 ? g_strerror (e) : _("wrong type"));
      return FALSE;
    }
  gint index = g_unix_fd_list_append (fds, fd, error);
  close (fd);
  if (index < 0)
    return FALSE;
  g_variant_builder_add (a, "(sh)", label, index);
  return TRUE;
}

GVariant *
st_client_manifest_files (const char *dir, GUnixFDList **fds_out, GError **error)
{
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  GVariantBuilder a;
  g_variant_builder_init (&a, G_VARIANT_TYPE ("a(sh)"));
  for (guint i = 0; i < G_N_ELEMENTS (st_manifest_files); i++)
    {
      g_autofree gchar *path = g_build_filename (dir, st_manifest_files[i], NULL);
      if (!st_client_add_regular_file (&a, fds, st_manifest_files[i], path, TRUE, error))
        {
          g_variant_builder_clear (&a);
          return NULL;
        }
    }
  *fds_out = g_steal_pointer (&fds);
  return g_variant_builder_end (&a);
}

GVariant *
st_client_audit_manifests (char **dirs, GUnixFDList **fds_out, GError **error)
{
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  GVariantBuilder a;
  g_variant_builder_init (&a, G_VARIANT_TYPE ("a(sh)"));
  for (guint i = 0; dirs != NULL && dirs[i] != NULL; i++)
    {
      g_autofree gchar *path = g_build_filename (dirs[i], "manifest.json", NULL);
      if (!st_client_add_regular_file (&a, fds, dirs[i], path, FALSE, error))
        {
          g_variant_builder_clear (&a);
          return NULL;
        }
    }
  *fds_out = g_steal_pointer (&fds);
  return g_variant_builder_end (&a);
}

gchar *
st_client_read_text (const char *path, gsize max, gsize *len_out, GError **error)
{
  int fd = g_open (path, O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0);
  struct stat st;
  if (fd < 0 || fstat (fd, &st) != 0 || !S_ISREG (st.st_mode) || (guint64) st.st_size > max)
    {
      int e = errno;
      gboolean too_big = fd >= 0 && S_ISREG (st.st_mode) && (guint64) st.st_size > max;
      if (fd >= 0)
        close (fd);
      g_set_error (error, ST_ERROR, fd < 0 && e == ENOENT ? ST_ERROR_NOT_FOUND : ST_ERROR_READ,
                   "%s: %s", path, fd < 0 ? g_strerror (e)
                   : too_big ? _("too large") : _("not a regular file"));
      return NULL;
    }
  gchar *data = g_malloc ((gsize) st.st_size + 1);
  gsize len = 0;
  while (len < (gsize) st.st_size)
    {
      ssize_t n = read (fd, data + len, (gsize) st.st_size - len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      len += (gsize) n;
    }
  close (fd);
  data[len] = '\0';
  if (len_out != NULL)
    *len_out = len;
  return data;
}

GVariant *
st_client_resolve_unit (StDbusStation1 *proxy, const char *unit, gboolean keep, GError **error)
{
  GVariant *result = NULL;
  if (!st_dbus_station1_call_unit_resolve_sync (proxy, unit, keep ? "keep" : "void", &result, NULL,
                                                error))
    return NULL;
  return result;
}

GVariant *
st_client_revoke_unit (StDbusStation1 *proxy, const char *unit, const char *reason, GError **error)
{
  GVariant *result = NULL;
  if (!st_dbus_station1_call_unit_revoke_sync (proxy, unit, reason, &result, NULL, error))
    return NULL;
  return result;
}

gboolean
st_client_crl_issue (StDbusStation1 *proxy, guint days, const char *path, gboolean replace,
                     gint64 *number, guint *entries, GError **error)
{
  GStatBuf st;
  if (!replace && g_lstat (path, &st) == 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE,
                   _("%s exists: issuing there would replace it; choose another file, or give "
                   "--force to replace it"), path);
      return FALSE;
    }
  g_autofree gchar *sha256 = NULL, *pem = NULL;
  if (!st_dbus_station1_call_crl_issue_sync (proxy, days, number, entries, &sha256, &pem, NULL, error))
    return FALSE;
  if (!g_file_set_contents (path, pem, -1, error))
    {
      g_prefix_error (error, _("CRL number %" PRId64 " was issued (and audited) but could "
                      "not be written; issue another: "), *number);
      return FALSE;
    }
  return TRUE;
}

/* ---- the GUI's calls -------------------------------------------------------- */

struct _StStation {
  StDbusStation1 *proxy;
  guint idle_logout_s;
};

static void
st_open_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  const StClientTarget *t = data;
  GError *error = NULL;
  StDbusStation1 *proxy = st_client_connect (t, cancellable, &error);
  if (proxy == NULL)
    return g_task_return_error (task, error);
  StStation *station = g_new0 (StStation, 1);
  station->proxy = proxy;
  station->idle_logout_s = 300;
  g_autoptr(GVariant) status = NULL;
  if (st_dbus_station1_call_status_sync (proxy, &status, cancellable, NULL))
    g_variant_lookup (status, "idle-logout", "u", &station->idle_logout_s);
  g_task_return_pointer (task, station, (GDestroyNotify) st_station_free);
}

static void
st_target_free (gpointer data)
{
  StClientTarget *t = data;
  g_free ((gchar *) t->address);
  g_free ((gchar *) t->bus);
  g_free ((gchar *) t->home);
  g_free (t);
}

void
st_station_open_async (const StClientTarget *target, GCancellable *cancellable,
                       GAsyncReadyCallback callback, gpointer user_data)
{
  StClientTarget *t = g_new0 (StClientTarget, 1);
  t->address = g_strdup (target->address);
  t->bus = g_strdup (target->bus);
  t->home = g_strdup (target->home);
  t->system = target->system;
  g_autoptr(GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, st_station_open_async);
  g_task_set_task_data (task, t, st_target_free);
  g_task_run_in_thread (task, st_open_thread);
}

StStation *
st_station_open_finish (GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

void
st_station_free (StStation *station)
{
  if (station == NULL)
    return;
  g_clear_object (&station->proxy);
  g_free (station);
}

StDbusStation1 *
st_station_get_proxy (StStation *station)
{
  return station->proxy;
}

gboolean
st_station_hsm_is_open (StStation *station)
{
  return st_dbus_station1_get_unlocked (station->proxy);
}

guint
st_station_get_idle_logout (StStation *station)
{
  return station->idle_logout_s;
}

/* One call in flight: the proxy's reply turned into the caller's result. */
typedef gpointer (*StReplyFunc) (StStation *station, GAsyncResult *reply, GTask *task,
                                 GError **error);

typedef struct {
  StStation *station;
  StReplyFunc func;
  GDestroyNotify result_free;
  gchar *dir;                        /* export, verify: this client's folder */
  StStationProgressFunc progress;
  gpointer progress_data;
} StCall;

static void
st_call_free (gpointer data)
{
  StCall *c = data;
  g_free (c->dir);
  g_free (c);
}

static GTask *
st_call_new (StStation *station, StReplyFunc func, GDestroyNotify result_free,
             GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data,
             gpointer tag)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, tag);
  StCall *c = g_new0 (StCall, 1);
  c->station = station;
  c->func = func;
  c->result_free = result_free;
  g_task_set_task_data (task, c, st_call_free);
  return task;
}

static void
st_call_done (GObject *source, GAsyncResult *reply, gpointer data)
{
  g_autoptr(GTask) task = data;
  StCall *c = g_task_get_task_data (task);
  GError *error = NULL;
  gpointer result = c->func (c->station, reply, task, &error);
  if (result == NULL)
    {
      if (error == NULL)
        g_set_error_literal (&error, ST_ERROR, ST_ERROR_INTERNAL, _("the call failed without a reason"));
      st_dbus_error_clean (error);
      return g_task_return_error (task, error);
    }
  g_task_return_pointer (task, result, c->result_free);
}

static gpointer
st_call_finish (GAsyncResult *result, gpointer tag, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == tag, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

#define ST_CALL_TRUE GINT_TO_POINTER (TRUE)

static gpointer
st_unlock_reply (StStation *s, GAsyncResult *reply, GTask *task, GError **error)
{
  return st_dbus_station1_call_unlock_finish (s->proxy, reply, error) ? ST_CALL_TRUE : NULL;
}

void
st_station_unlock_hsm_async (StStation *station, const char *pin, GCancellable *cancellable,
                             GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = st_call_new (station, st_unlock_reply, NULL, cancellable, callback, user_data,
                             st_station_unlock_hsm_async);
  st_dbus_station1_call_unlock (station->proxy, pin != NULL ? pin : "", cancellable, st_call_done, task);
}

gboolean
st_station_unlock_hsm_finish (StStation *station, GAsyncResult *result, GError **error)
{
  return st_call_finish (result, st_station_unlock_hsm_async, error) != NULL;
}

static GPtrArray *
st_operators_from_variant (GVariant *list)
{
  GPtrArray *ops = g_ptr_array_new_with_free_func ((GDestroyNotify) st_operator_info_free);
  for (gsize i = 0; i < g_variant_n_children (list); i++)
    {
      g_autoptr(GVariant) d = g_variant_get_child_value (list, i);
      g_ptr_array_add (ops, st_operator_info_from_variant (d));
    }
  return ops;
}

static gpointer
st_names_reply (StStation *s, GAsyncResult *reply, GTask *task, GError **error)
{
  g_autoptr(GVariant) list = NULL;
  if (!st_dbus_station1_call_login_names_finish (s->proxy, &list, reply, error))
    return NULL;
  return st_operators_from_variant (list);
}

void
st_station_list_operators_async (StStation *station, GCancellable *cancellable,
                                 GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = st_call_new (station, st_names_reply, (GDestroyNotify) g_ptr_array_unref,
                             cancellable, callback, user_data, st_station_list_operators_async);
  st_dbus_station1_call_login_names (station->proxy, cancellable, st_call_done, task);
}

GPtrArray *
st_station_list_operators_finish (StStation *station, GAsyncResult *result, GError **error)
{
  return st_call_finish (result, st_station_list_operators_async, error);
}

static gpointer
st_login_reply (StStation *s, GAsyncResult *reply, GTask *task, GError **error)
{
  g_autofree gchar *role = NULL;
  if (!st_dbus_station1_call_login_finish (s->proxy, &role, reply, error))
    return NULL;
  StAuthSession *session = g_new0 (StAuthSession, 1);
  session->name = g_strdup (g_object_get_data (G_OBJECT (task), "name"));
  if (!st_role_from_string (role, &session->role, error))
    {
      st_auth_session_free (session);
      return NULL;
    }
  return session;
}

void
st_station_login_async (StStation *station, const char *name, const char *pin,
                        GCancellable *cancellable, GAsyncReadyCallback callback,
                        gpointer user_data)
{
  GTask *task = st_call_new (station, st_login_reply, (GDestroyNotify) st_auth_session_free,
                             cancellable, callback, user_data, st_station_login_async);
  g_object_set_data_full (G_OBJECT (task), "name", g_strdup (name), g_free);
  st_dbus_station1_call_login (station->proxy, name, pin, cancellable, st_call_done, task);
}

StAuthSession *
st_station_login_finish (StStation *station, GAsyncResult *result, GError **error)
{
  return st_call_finish (result, st_station_login_async, error);
}

void
st_station_logout (StStation *station)
{
  st_dbus_station1_call_logout (station->proxy, NULL, NULL, NULL);
}

static gpointer
st_void_reply (StStation *s, GAsyncResult *reply, GTask *task, GError **error)
{
  g_autoptr(GVariant) v = g_dbus_proxy_call_finish (G_DBUS_PROXY (s->proxy), reply, error);
  return v != NULL ? ST_CALL_TRUE : NULL;
}

void
st_station_change_operator_async (StStation *station, StOperatorChange change, const char *name,
                                  StRole role, const char *pin, GCancellable *cancellable,
                                  GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = st_call_new (station, st_void_reply, NULL, cancellable, callback, user_data,
                             st_station_change_operator_async);
  const char *role_s = st_role_to_string (role);
  switch (change)
    {
    case ST_OPERATOR_ADD:
      st_dbus_station1_call_operator_add (station->proxy, name, role_s, pin != NULL ? pin : "",
                                          cancellable, st_call_done, task);
      break;
    case ST_OPERATOR_UNLOCK:
      st_dbus_station1_call_operator_unlock (station->proxy, name, cancellable, st_call_done, task);
      break;
    case ST_OPERATOR_SET_ROLE:
      st_dbus_station1_call_operator_set_role (station->proxy, name, role_s, cancellable,
                                               st_call_done, task);
      break;
    }
}

gboolean
st_station_change_operator_finish (StStation *station, GAsyncResult *result, GError **error)
{
  return st_call_finish (result, st_station_change_operator_async, error) != NULL;
}

static gpointer
st_batches_reply (StStation *s, GAsyncResult *reply, GTask *task, GError **error)
{
  g_autoptr(GVariant) list = NULL;
  if (!st_dbus_station1_call_batch_list_finish (s->proxy, &list, reply, error))
    return NULL;
  GPtrArray *batches = g_ptr_array_new_with_free_func ((GDestroyNotify) st_batch_info_free);
  for (gsize i = 0; i < g_variant_n_children (list); i++)
    {
      g_autoptr(GVariant) d = g_variant_get_child_value (list, i);
      g_ptr_array_add (batches, st_batch_info_from_variant (d));
    }
  return batches;
}

void
st_station_list_batches_async (StStation *station, GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = st_call_new (station, st_batches_reply, (GDestroyNotify) g_ptr_array_unref,
                             cancellable, callback, user_data, st_station_list_batches_async);
  st_dbus_station1_call_batch_list (station->proxy, cancellable, st_call_done, task);
}

GPtrArray *
st_station_list_batches_finish (StStation *station, GAsyncResult *result, GError **error)
{
  return st_call_finish (result, st_station_list_batches_async, error);
}

static gpointer
st_batch_reply (StStation *s, GAsyncResult *reply, GTask *task, GError **error)
{
  g_autoptr(GVariant) d = NULL;
  if (!st_dbus_station1_call_batch_get_finish (s->proxy, &d, reply, error))
    return NULL;
  return st_batch_info_from_variant (d);
}

void
st_station_get_batch_async (StStation *station, gint64 batch_id, GCancellable *cancellable,
                            GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = st_call_new (station, st_batch_reply, (GDestroyNotify) st_batch_info_free,
                             cancellable, callback, user_data, st_station_get_batch_async);
  st_dbus_station1_call_batch_get (station->proxy, batch_id, cancellable, st_call_done, task);
}

StBatchInfo *
st_station_get_batch_finish (StStation *station, GAsyncResult *result, GError **error)
{
  return st_call_finish (result, st_station_get_batch_async, error);
}

void
st_socket_name_free (StSocketName *socket)
{
  if (socket == NULL)
    return;
  g_free (socket->port);
  g_free (socket->name);
  g_free (socket);
}

/* What the service sends is bounded here too: a list of names for tiles. */
static gpointer
st_socket_names_reply (StStation *s, GAsyncResult *reply, GTask *task, GError **error)
{
  g_autoptr(GVariant) list = NULL;
  if (!st_dbus_station1_call_socket_names_finish (s->proxy, &list, reply, error))
    return NULL;
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify) st_socket_name_free);
  gsize n = MIN (g_variant_n_children (list), ST_CLIENT_MAX_SOCKET_NAMES);
  for (gsize i = 0; i < n; i++)
    {
      const char *port = NULL, *name = NULL;
      g_variant_get_child (list, i, "(&s&s)", &port, &name);
      if (*port == '\0' || strlen (port) > ST_CLIENT_MAX_SOCKET_NAME || strlen (name) > ST_CLIENT_MAX_SOCKET_NAME)
        continue;
      StSocketName *e = g_new0 (StSocketName, 1);
      e->port = g_strdup (port);
      e->name = g_strdup (name);
      g_ptr_array_add (out, e);
    }
  return out;
}

void
st_station_socket_names_async (StStation *station, GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = st_call_new (station, st_socket_names_reply, (GDestroyNotify) g_ptr_array_unref,
                             cancellable, callback, user_data, st_station_socket_names_async);
  st_dbus_station1_call_socket_names (station->proxy, cancellable, st_call_done, task);
}

GPtrArray *
st_station_socket_names_finish (StStation *station, GAsyncResult *result, GError **error)
{
  return st_call_finish (result, st_station_socket_names_async, error);
}

void
st_profile_entry_free (StProfileEntry *e)
{
  if (e == NULL)
    return;
  g_free (e->name);
  g_free (e->path);
  g_free (e->product);
  g_free (e->text);
  g_free (e->error);
  g_free (e);
}

static gchar *
st_dup_or_null (GVariant *d, const char *key)
{
  const char *v = NULL;
  return g_variant_lookup (d, key, "&s", &v) ? g_strdup (v) : NULL;
}

static gpointer
st_profiles_reply (StStation *s, GAsyncResult *reply, GTask *task, GError **error)
{
  g_autoptr(GVariant) list = NULL;
  if (!st_dbus_station1_call_profile_list_finish (s->proxy, &list, reply, error))
    return NULL;
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify) st_profile_entry_free);
  for (gsize i = 0; i < g_variant_n_children (list); i++)
    {
      g_autoptr(GVariant) d = g_variant_get_child_value (list, i);
      StProfileEntry *e = g_new0 (StProfileEntry, 1);
      e->name = g_strdup (st_dict_get_string (d, "name"));
      e->path = g_strdup (st_dict_get_string (d, "path"));
      e->product = st_dup_or_null (d, "product");
      e->text = st_dup_or_null (d, "text");
      e->error = st_dup_or_null (d, "error");
      g_ptr_array_add (out, e);
    }
  return out;
}

void
st_station_list_profiles_async (StStation *station, GCancellable *cancellable,
                                GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = st_call_new (station, st_profiles_reply, (GDestroyNotify) g_ptr_array_unref,
                             cancellable, callback, user_data, st_station_list_profiles_async);
  st_dbus_station1_call_profile_list (station->proxy, cancellable, st_call_done, task);
}

GPtrArray *
st_station_list_profiles_finish (StStation *station, GAsyncResult *result, GError **error)
{
  return st_call_finish (result, st_station_list_profiles_async, error);
}

static gpointer
st_create_reply (StStation *s, GAsyncResult *reply, GTask *task, GError **error)
{
  gint64 id = 0;
  g_autoptr(GVariant) info = NULL;
  if (!st_dbus_station1_call_batch_create_finish (s->proxy, &id, &info, reply, error))
    return NULL;
  return g_memdup2 (&id, sizeof id);
}

void
st_station_create_batch_async (StStation *station, const char *origin, const char *profile_text,
                               const char *work_order, gint64 quantity, GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = st_call_new (station, st_create_reply, g_free, cancellable, callback, user_data,
                             st_station_create_batch_async);
  st_dbus_station1_call_batch_create (station->proxy, origin != NULL ? origin : "profile",
                                      profile_text != NULL ? profile_text : "",
                                      work_order != NULL ? work_order : "", quantity, cancellable,
                                      st_call_done, task);
}

gint64
st_station_create_batch_finish (StStation *station, GAsyncResult *result, GError **error)
{
  g_autofree gint64 *id = st_call_finish (result, st_station_create_batch_async, error);
  return id != NULL ? *id : 0;
}

void
st_station_close_batch_async (StStation *station, gint64 batch_id, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = st_call_new (station, st_void_reply, NULL, cancellable, callback, user_data,
                             st_station_close_batch_async);
  st_dbus_station1_call_batch_close (station->proxy, batch_id, cancellable, st_call_done, task);
}

gboolean
st_station_close_batch_finish (StStation *station, GAsyncResult *result, GError **error)
{
  return st_call_finish (result, st_station_close_batch_async, error) != NULL;
}

static gpointer
st_export_reply (StStation *s, GAsyncResult *reply, GTask *task, GError **error)
{
  StCall *c = g_task_get_task_data (task);
  g_autoptr(GVariant) files = NULL;
  g_autoptr(GUnixFDList) fds = NULL;
  if (!st_dbus_station1_call_manifest_export_finish (s->proxy, &files, &fds, reply, error))
    return NULL;
  if (c->progress != NULL)
    c->progress (0.8, _("saving the signed manifest"), c->progress_data);
  if (!st_client_save_files (files, fds, c->dir, FALSE, error))
    return NULL;
  if (c->progress != NULL)
    c->progress (1.0, _("manifest written and verified"), c->progress_data);
  return ST_CALL_TRUE;
}

void
st_station_export_manifest_async (StStation *station, gint64 batch_id, const char *out_dir,
                                  StStationProgressFunc progress, gpointer progress_data,
                                  GCancellable *cancellable, GAsyncReadyCallback callback,
                                  gpointer user_data)
{
  GTask *task = st_call_new (station, st_export_reply, NULL, cancellable, callback, user_data,
                             st_station_export_manifest_async);
  StCall *c = g_task_get_task_data (task);
  c->dir = g_strdup (out_dir);
  c->progress = progress;
  c->progress_data = progress_data;
  /* The GUI never replaces a manifest: it asks for another folder. */
  GError *error = NULL;
  if (!st_client_manifest_dest_check (out_dir, FALSE, &error))
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  if (progress != NULL)
    progress (0.1, _("writing and signing the manifest"), progress_data);
  st_dbus_station1_call_manifest_export (station->proxy, batch_id, out_dir,
                                         st_client_manifest_export_options (FALSE), NULL, cancellable,
                                         st_call_done, task);
}

gboolean
st_station_export_manifest_finish (StStation *station, GAsyncResult *result, GError **error)
{
  return st_call_finish (result, st_station_export_manifest_async, error) != NULL;
}

static gpointer
st_stats_reply (StStation *s, GAsyncResult *reply, GTask *task, GError **error)
{
  g_autoptr(GVariant) d = NULL;
  if (!st_dbus_station1_call_shift_stats_finish (s->proxy, &d, reply, error))
    return NULL;
  return st_shift_stats_from_variant (d);
}

void
st_station_shift_stats_async (StStation *station, gint64 batch_id, guint hours,
                              GCancellable *cancellable, GAsyncReadyCallback callback,
                              gpointer user_data)
{
  GTask *task = st_call_new (station, st_stats_reply, (GDestroyNotify) st_shift_stats_free,
                             cancellable, callback, user_data, st_station_shift_stats_async);
  st_dbus_station1_call_shift_stats (station->proxy, batch_id, hours, cancellable, st_call_done,
                                     task);
}

StShiftStats *
st_station_shift_stats_finish (StStation *station, GAsyncResult *result, GError **error)
{
  return st_call_finish (result, st_station_shift_stats_async, error);
}

void
st_report_free (StReport *report)
{
  if (report == NULL)
    return;
  g_free (report->text);
  g_free (report->message);
  g_free (report);
}

/* A report from (verified, text): the failure is the text's last line. */
static StReport *
st_report_new (gboolean ok, const char *text, const char *failure)
{
  StReport *r = g_new0 (StReport, 1);
  r->ok = ok;
  r->text = g_strdup (text);
  if (!ok)
    r->message = g_strdup (failure != NULL && *failure != '\0' ? failure : _("the check failed"));
  return r;
}

static gpointer
st_verify_unit_reply (StStation *s, GAsyncResult *reply, GTask *task, GError **error)
{
  gboolean ok = FALSE;
  g_autofree gchar *text = NULL, *failure = NULL;
  if (!st_dbus_station1_call_unit_verify_finish (s->proxy, &ok, &text, &failure, reply, error))
    return NULL;
  return st_report_new (ok, text, failure);
}

void
st_station_verify_unit_async (StStation *station, const char *port, const char *profile_text,
                              GCancellable *cancellable, GAsyncReadyCallback callback,
                              gpointer user_data)
{
  GTask *task = st_call_new (station, st_verify_unit_reply, (GDestroyNotify) st_report_free,
                             cancellable, callback, user_data, st_station_verify_unit_async);
  st_dbus_station1_call_unit_verify (station->proxy, port, profile_text != NULL ? profile_text : "", "",
                                     cancellable, st_call_done, task);
}

StReport *
st_station_verify_unit_finish (StStation *station, GAsyncResult *result, GError **error)
{
  return st_call_finish (result, st_station_verify_unit_async, error);
}

void
st_station_verify_unit_code_async (StStation *station, const char *port, const char *profile_text,
                                   const char *matter_code, GCancellable *cancellable,
                                   GAsyncReadyCallback callback, gpointer user_data)
{
  /* the same result as st_station_verify_unit_async: its finish reads it */
  GTask *task = st_call_new (station, st_verify_unit_reply, (GDestroyNotify) st_report_free,
                             cancellable, callback, user_data, st_station_verify_unit_async);
  st_dbus_station1_call_unit_verify (station->proxy, port, profile_text != NULL ? profile_text : "",
                                     matter_code != NULL ? matter_code : "", cancellable, st_call_done, task);
}

/* ---- a Matter batch's codes file and labels (issue 18) ---- */

void
st_matter_export_free (StMatterExport *e)
{
  if (e == NULL)
    return;
  g_free (e->sha256);
  g_free (e);
}

static gpointer
st_matter_export_reply (StStation *s, GAsyncResult *reply, GTask *task, GError **error)
{
  StCall *c = g_task_get_task_data (task);
  gboolean labels = g_task_get_source_tag (task) == st_station_export_matter_labels_async;
  g_autoptr(GVariant) pack = NULL;
  g_autoptr(GUnixFDList) fds = NULL;
  g_autoptr(StMatterExport) e = g_new0 (StMatterExport, 1);
  gboolean ok = labels
    ? st_dbus_station1_call_matter_labels_export_finish (s->proxy, &pack, &e->units, &fds, reply, error)
    : st_dbus_station1_call_matter_codes_export_finish (s->proxy, &pack, &e->units, &e->sha256, &fds, reply,
                                                        error);
  if (!ok)
    return NULL;
  int fd = fds != NULL ? g_unix_fd_list_get (fds, g_variant_get_handle (pack), error) : -1;
  if (fd < 0)
    {
      if (error != NULL && *error == NULL)
        g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA, _("the service sent no files"));
      return NULL;
    }
  ok = st_client_save_private_pack (fd, c->dir, &e->files, error);
  close (fd);
  return ok ? g_steal_pointer (&e) : NULL;
}

static void
st_station_export_matter (StStation *station, gint64 batch_id, const char *out_dir, gboolean labels,
                          GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = st_call_new (station, st_matter_export_reply, (GDestroyNotify) st_matter_export_free,
                             cancellable, callback, user_data,
                             labels ? (gpointer) st_station_export_matter_labels_async
                                    : (gpointer) st_station_export_matter_codes_async);
  StCall *c = g_task_get_task_data (task);
  c->dir = g_canonicalize_filename (out_dir, NULL);
  if (labels)
    st_dbus_station1_call_matter_labels_export (station->proxy, batch_id, c->dir,
                                                st_client_matter_labels_options (0, 0, 0, 0), NULL,
                                                cancellable, st_call_done, task);
  else
    st_dbus_station1_call_matter_codes_export (station->proxy, batch_id, c->dir, NULL, cancellable,
                                               st_call_done, task);
}

void
st_station_export_matter_codes_async (StStation *station, gint64 batch_id, const char *out_dir,
                                      GCancellable *cancellable, GAsyncReadyCallback callback,
                                      gpointer user_data)
{
  st_station_export_matter (station, batch_id, out_dir, FALSE, cancellable, callback, user_data);
}

void
st_station_export_matter_labels_async (StStation *station, gint64 batch_id, const char *out_dir,
                                       GCancellable *cancellable, GAsyncReadyCallback callback,
                                       gpointer user_data)
{
  st_station_export_matter (station, batch_id, out_dir, TRUE, cancellable, callback, user_data);
}

StMatterExport *
st_station_export_matter_finish (StStation *station, GAsyncResult *result, GError **error)
{
  gpointer tag = g_task_get_source_tag (G_TASK (result));
  if (tag != st_station_export_matter_labels_async)
    tag = st_station_export_matter_codes_async;
  return st_call_finish (result, tag, error);
}

void
st_unit_lookup_free (StUnitLookup *lookup)
{
  if (lookup == NULL)
    return;
  st_report_free (lookup->report);
  g_free (lookup->work_order);
  g_free (lookup->uid);
  g_free (lookup->product_serial);
  g_free (lookup->state);
  g_free (lookup->cert_serial);
  g_free (lookup->cert_state);
  g_free (lookup);
}

static gpointer
st_lookup_unit_reply (StStation *s, GAsyncResult *reply, GTask *task, GError **error)
{
  gboolean ok = FALSE;
  g_autofree gchar *text = NULL, *failure = NULL;
  g_autoptr(GVariant) unit = NULL;
  if (!st_dbus_station1_call_unit_lookup_finish (s->proxy, &unit, &ok, &text, &failure, reply, error))
    return NULL;
  StUnitLookup *l = g_new0 (StUnitLookup, 1);
  l->report = st_report_new (ok, text, failure);
  l->unit_id = st_dict_get_int64 (unit, "id");
  l->batch_id = st_dict_get_int64 (unit, "batch-id");
  l->work_order = g_strdup (st_dict_get_string (unit, "work-order"));
  l->uid = g_strdup (st_dict_get_string (unit, "uid"));
  l->product_serial = g_strdup (st_dict_get_string (unit, "product-serial"));
  l->state = g_strdup (st_dict_get_string (unit, "state"));
  l->cert_serial = g_strdup (st_dict_get_string (unit, "cert-serial"));
  l->cert_state = g_strdup (st_dict_get_string (unit, "cert-state"));
  return l;
}

void
st_station_lookup_unit_async (StStation *station, const char *code, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = st_call_new (station, st_lookup_unit_reply, (GDestroyNotify) st_unit_lookup_free,
                             cancellable, callback, user_data, st_station_lookup_unit_async);
  st_dbus_station1_call_unit_lookup (station->proxy, code, cancellable, st_call_done, task);
}

StUnitLookup *
st_station_lookup_unit_finish (StStation *station, GAsyncResult *result, GError **error)
{
  return st_call_finish (result, st_station_lookup_unit_async, error);
}

static gpointer
st_verify_manifest_reply (StStation *s, GAsyncResult *reply, GTask *task, GError **error)
{
  gboolean ok = FALSE;
  g_autofree gchar *text = NULL, *failure = NULL;
  if (!st_dbus_station1_call_manifest_verify_finish (s->proxy, &ok, &text, &failure, NULL, reply,
                                                     error))
    return NULL;
  return st_report_new (ok, text, failure);
}

void
st_station_verify_manifest_async (StStation *station, const char *dir, GCancellable *cancellable,
                                  GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = st_call_new (station, st_verify_manifest_reply, (GDestroyNotify) st_report_free,
                             cancellable, callback, user_data, st_station_verify_manifest_async);
  GError *error = NULL;
  g_autoptr(GUnixFDList) fds = NULL;
  GVariant *files = st_client_manifest_files (dir, &fds, &error);
  if (files == NULL)
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  st_dbus_station1_call_manifest_verify (station->proxy, files, "", "", dir, fds, cancellable,
                                         st_call_done, task);
}

StReport *
st_station_verify_manifest_finish (StStation *station, GAsyncResult *result, GError **error)
{
  return st_call_finish (result, st_station_verify_manifest_async, error);
}

static gpointer
st_health_reply (StStation *s, GAsyncResult *reply, GTask *task, GError **error)
{
  g_autoptr(GVariant) d = NULL;
  if (!st_dbus_station1_call_health_finish (s->proxy, &d, reply, error))
    return NULL;
  return st_health_from_variant (d);
}

void
st_station_health_async (StStation *station, GCancellable *cancellable,
                         GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = st_call_new (station, st_health_reply, (GDestroyNotify) st_health_free,
                             cancellable, callback, user_data, st_station_health_async);
  st_dbus_station1_call_health (station->proxy, cancellable, st_call_done, task);
}

StHealth *
st_station_health_finish (StStation *station, GAsyncResult *result, GError **error)
{
  return st_call_finish (result, st_station_health_async, error);
}

/* ---- the line ---------------------------------------------------------------- */

typedef struct {
  StStation *station;
  GTask *task;                 /* until LineEnded (or the start failed) */
  StLineCallbacks callbacks;
  gpointer data;
  gint64 batch_id;
  gulong handlers[4];
  gulong cancel_id;
  GCancellable *cancellable;
  StLineSummary summary;
  gboolean started;
} StRun;

static void
st_run_disconnect (StRun *run)
{
  for (guint i = 0; i < G_N_ELEMENTS (run->handlers); i++)
    if (run->handlers[i] != 0)
      g_signal_handler_disconnect (run->station->proxy, run->handlers[i]);
  memset (run->handlers, 0, sizeof run->handlers);
  if (run->cancel_id != 0)
    g_cancellable_disconnect (run->cancellable, run->cancel_id);
  run->cancel_id = 0;
}

static void
st_run_free (gpointer data)
{
  StRun *run = data;
  st_run_disconnect (run);
  g_clear_object (&run->cancellable);
  g_free (run);
}

static void
st_run_end (StRun *run, GError *error)
{
  GTask *task = g_steal_pointer (&run->task);
  if (task == NULL)
    {
      g_clear_error (&error);
      return;
    }
  st_run_disconnect (run);
  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
  g_object_unref (task);
}

static void
st_run_on_step (StDbusStation1 *proxy, const char *port, const char *step, const char *uid,
                gdouble seconds, StRun *run)
{
  if (run->callbacks.step == NULL)
    return;
  StUnitProgress p = { .port = port, .step = step, .uid_hex = uid, .seconds = seconds };
  run->callbacks.step (&p, run->data);
}

static void
st_run_on_result (StDbusStation1 *proxy, GVariant *dict, StRun *run)
{
  gint64 batch = 0;
  g_autoptr(StUnitResult) r = st_unit_result_from_variant (dict, &batch);
  if (batch == run->batch_id && run->callbacks.result != NULL)
    run->callbacks.result (r, run->data);
}

static void
st_run_on_port (StDbusStation1 *proxy, const char *port, const char *message, StRun *run)
{
  if (run->callbacks.port_failed == NULL)
    return;
  g_autoptr(GError) error = g_error_new_literal (ST_ERROR, ST_ERROR_READ, message);
  run->callbacks.port_failed (port, error, run->data);
}

static void
st_run_on_ended (StDbusStation1 *proxy, gint64 batch_id, GVariant *dict, StRun *run)
{
  if (batch_id != run->batch_id)
    return;
  g_variant_lookup (dict, "passed", "u", &run->summary.passed);
  g_variant_lookup (dict, "failed", "u", &run->summary.failed);
  g_variant_lookup (dict, "refused", "u", &run->summary.refused);
  g_variant_lookup (dict, "resumed", "u", &run->summary.resumed);
  g_variant_lookup (dict, "ports-failed", "u", &run->summary.ports_failed);
  g_variant_lookup (dict, "stopped", "b", &run->summary.stopped);
  g_variant_lookup (dict, "batch-done", "b", &run->summary.batch_done);
  const char *message = st_dict_get_string (dict, "error");
  st_run_end (run, *message != '\0' ? g_error_new_literal (ST_ERROR, ST_ERROR_WRITE, message) : NULL);
}

static void
st_run_on_cancelled (GCancellable *cancellable, gpointer data)
{
  StRun *run = data;
  st_dbus_station1_call_line_stop (run->station->proxy, run->batch_id, NULL, NULL, NULL);
}

static void
st_run_started (GObject *source, GAsyncResult *result, gpointer data)
{
  StRun *run = data;
  g_autoptr(GVariant) info = NULL;
  GError *error = NULL;
  if (!st_dbus_station1_call_line_start_finish (run->station->proxy, &info, result, &error))
    {
      st_dbus_error_clean (error);
      return st_run_end (run, error);
    }
  gboolean nothing = FALSE;
  g_variant_lookup (info, "nothing-to-do", "b", &nothing);
  if (nothing)
    return st_run_end (run, NULL);
  run->started = TRUE;
  if (run->cancellable != NULL)
    run->cancel_id = g_cancellable_connect (run->cancellable, G_CALLBACK (st_run_on_cancelled),
                                            run, NULL);
}

void
st_station_run_line_async (StStation *station, gint64 batch_id, const char *const *ports,
                           guint units_per_port, gboolean hold_failures, const char *const *skip_uids,
                           const StLineCallbacks *callbacks,
                           gpointer callbacks_data, GCancellable *cancellable,
                           GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = g_task_new (NULL, NULL, callback, user_data);
  g_task_set_source_tag (task, st_station_run_line_async);
  StRun *run = g_new0 (StRun, 1);
  run->station = station;
  run->task = task;
  run->callbacks = *callbacks;
  run->data = callbacks_data;
  run->batch_id = batch_id;
  run->cancellable = cancellable != NULL ? g_object_ref (cancellable) : NULL;
  g_task_set_task_data (task, run, st_run_free);
  /* signals first, so that none of the line's is missed */
  run->handlers[0] = g_signal_connect (station->proxy, "unit-step", G_CALLBACK (st_run_on_step), run);
  run->handlers[1] = g_signal_connect (station->proxy, "unit-result", G_CALLBACK (st_run_on_result), run);
  run->handlers[2] = g_signal_connect (station->proxy, "port-failed", G_CALLBACK (st_run_on_port), run);
  run->handlers[3] = g_signal_connect (station->proxy, "line-ended", G_CALLBACK (st_run_on_ended), run);
  GVariantBuilder options;
  g_variant_builder_init (&options, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&options, "{sv}", "wait", g_variant_new_uint32 (0));
  g_variant_builder_add (&options, "{sv}", "hold-failures", g_variant_new_boolean (hold_failures));
  GVariantBuilder skip;
  g_variant_builder_init (&skip, G_VARIANT_TYPE ("a{ss}"));
  for (guint i = 0; skip_uids != NULL && ports[i] != NULL; i++)
    if (skip_uids[i] != NULL && *skip_uids[i] != '\0')
      g_variant_builder_add (&skip, "{ss}", ports[i], skip_uids[i]);
  g_variant_builder_add (&options, "{sv}", "skip-uids", g_variant_builder_end (&skip));
  st_dbus_station1_call_line_start (station->proxy, batch_id, ports, units_per_port,
                                    g_variant_builder_end (&options), NULL, st_run_started, run);
}

gboolean
st_station_run_line_finish (StStation *station, GAsyncResult *result, StLineSummary *summary,
                            GError **error)
{
  StRun *run = g_task_get_task_data (G_TASK (result));
  if (summary != NULL)
    *summary = run->summary;
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
st_port_call_done (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) v = g_dbus_proxy_call_finish (G_DBUS_PROXY (source), result, &error);
  if (v == NULL)
    g_message ("socket control refused: %s", error->message);
}

void
st_station_line_start_port (StStation *station, gint64 batch_id, const char *port, guint units)
{
  st_dbus_station1_call_line_port_start (station->proxy, batch_id, port, units, NULL,
                                         st_port_call_done, NULL);
}

void
st_station_line_retry_port (StStation *station, const char *port, guint units)
{
  st_dbus_station1_call_line_port_retry (station->proxy, port, units, NULL, st_port_call_done, NULL);
}

void
st_station_line_stop_port (StStation *station, const char *port)
{
  st_dbus_station1_call_line_port_stop (station->proxy, port, NULL, st_port_call_done, NULL);
}
