/* The passive backend core (st-passive.h). */
#include "st-passive.h"

#include <openssl/evp.h>
#include <glib/gi18n.h>
#include <string.h>

#include "st-backend-private.h"
#include "st-blob.h"
#include "st-error.h"
#include "st-util.h"

typedef struct {
  StBackend parent;
  StBackendClass klass;      /* the shared vtable, with the link's name */
  const StPassiveOps *ops;
  gpointer link;
  const StTarget *target;
  gboolean identified;
  gboolean go_pending;       /* a commit succeeded: GO after the closing identify */
  guint8 uid[ST_UID_MAX];
  gsize uid_len;
  /* Buffered until COMMIT; wiped on ABORT, COMMIT and free. */
  GBytes *key;
  GBytes *cert;
  GBytes *chain;
  gchar *product_serial;
  /* Extension matter-1: both or neither, until COMMIT or ABORT. */
  GBytes *matter_cd;
  GBytes *matter_data;
} StPassive;

static StPassive *
st_passive_self (StBackend *b)
{
  return (StPassive *) b;
}

static void
st_passive_update_counters (StPassive *self)
{
  if (self->ops->update_counters != NULL)
    self->ops->update_counters (self->link, &self->parent);
}

static void
st_passive_wipe (StPassive *self)
{
  if (self->key != NULL)
    st_bytes_wipe_unref (g_steal_pointer (&self->key));
  g_clear_pointer (&self->cert, g_bytes_unref);
  g_clear_pointer (&self->chain, g_bytes_unref);
  g_clear_pointer (&self->matter_cd, g_bytes_unref);
  g_clear_pointer (&self->matter_data, g_bytes_unref);
}

static guint32
st_passive_uid_address (StPassive *self)
{
  return self->parent.params.uid_address != 0 ? self->parent.params.uid_address
                                              : self->target->uid_address;
}

static guint
st_passive_uid_length (StPassive *self)
{
  return self->parent.params.uid_length != 0 ? self->parent.params.uid_length
                                             : self->target->uid_length;
}

static gboolean
st_passive_check_area (StPassive *self, guint *first, guint *count, GError **error)
{
  const StLinkParams *p = &self->parent.params;
  if (p->blob_area_size == 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "%s: the profile names no credential area: set [link] blob-address and "
                   "blob-area-size (whole flash sectors, e.g. 0x0800C000 and 16384)", self->parent.port);
      return FALSE;
    }
  if (!st_target_sectors_for_range (self->target, p->blob_address, p->blob_area_size, TRUE,
                                    first, count, error))
    {
      g_prefix_error (error, "%s: [link] blob-address/blob-area-size: ", self->parent.port);
      return FALSE;
    }
  return TRUE;
}

static gboolean
st_passive_open (StBackend *backend, GError **error)
{
  StPassive *self = st_passive_self (backend);
  if (self->ops->is_open (self->link))
    return TRUE;
  gboolean ok = self->ops->open (self->link, backend, error);
  st_passive_update_counters (self);
  return ok;
}

static void
st_passive_close (StBackend *backend)
{
  StPassive *self = st_passive_self (backend);
  st_passive_update_counters (self);
  self->ops->close (self->link);
  self->go_pending = FALSE;
}

static gboolean
st_passive_need_link (StPassive *self, GError **error)
{
  if (self->ops->is_open (self->link))
    return TRUE;
  g_set_error (error, ST_ERROR, ST_ERROR_READ, "%s: the port is not open", self->parent.port);
  return FALSE;
}

/* The blob in the credential area, or NULL (NOT_FOUND: none; INVALID_DATA:
 * damaged; other codes: the link failed). Every error names the port once:
 * the links name it in theirs, the core in its own. */
static StBlob *
st_passive_read_blob (StPassive *self, GError **error)
{
  const StLinkParams *p = &self->parent.params;
  guint8 hdr[ST_BLOB_HEADER_SIZE];
  if (!self->ops->read (self->link, p->blob_address, hdr, sizeof hdr, error))
    return NULL;
  gsize total = st_blob_peek_length (hdr, sizeof hdr);
  if (total == 0 || total > p->blob_area_size)
    {
      gboolean erased = TRUE;
      for (gsize i = 0; i < sizeof hdr; i++)
        erased = erased && hdr[i] == 0xff;
      g_set_error (error, ST_ERROR, erased || memcmp (hdr, ST_BLOB_MAGIC, 4) != 0 ? ST_ERROR_NOT_FOUND
                                                                          : ST_ERROR_INVALID_DATA,
                   "%s: the credential area at 0x%08x holds %s", self->parent.port, p->blob_address,
                   erased ? "no blob (erased)" : "no valid blob header");
      return NULL;
    }
  g_autofree guint8 *buf = g_malloc (total);
  memcpy (buf, hdr, sizeof hdr);
  gboolean ok = self->ops->read (self->link, p->blob_address + (guint32) sizeof hdr,
                                 buf + sizeof hdr, total - sizeof hdr, error);
  StBlob *blob = ok ? st_blob_parse (buf, total, error) : NULL;
  if (ok && blob == NULL)
    g_prefix_error (error, "%s: ", self->parent.port);
  st_memwipe (buf, total);
  return blob;
}

/* GO once after the closing identify of a committed device: best effort,
 * the credentials are stored whatever happens here. */
static void
st_passive_go (StPassive *self)
{
  StBackend *backend = &self->parent;
  self->go_pending = FALSE;
  if (!backend->params.go || self->ops->go == NULL)
    return;
  guint32 address = backend->params.go_address != 0 ? backend->params.go_address
                                                    : self->target->flash_base;
  g_autoptr(GError) local = NULL;
  if (!st_target_in_flash (self->target, address, 8))
    g_set_error (&local, ST_ERROR, ST_ERROR_INVALID_DATA,
                 "[link] go-address 0x%08x is not in the flash of an %s (0x%08x, %u KiB)",
                 address, self->target->name, self->target->flash_base,
                 self->target->flash_size / 1024);
  else if (self->ops->go (self->link, address, &local))
    {
      g_debug ("%s: the application at 0x%08x runs", backend->port, address);
      st_passive_update_counters (self);
      return;
    }
  st_passive_update_counters (self);
  g_message ("%s: the device holds its credentials, but starting its application failed: %s; "
             "reset it by hand", backend->port, local->message);
}

static gboolean
st_passive_identify (StBackend *backend, StDeviceInfo *info, GError **error)
{
  StPassive *self = st_passive_self (backend);
  memset (info, 0, sizeof *info);
  if (!st_passive_need_link (self, error))
    return FALSE;
  g_autoptr(GError) local = NULL;
  g_autoptr(StBlob) blob = NULL;
  guint16 device_id = 0;
  gchar version[sizeof info->fw_version] = "";
  gboolean go = self->go_pending;
  self->go_pending = FALSE;
  self->identified = FALSE;
  backend->last_status = ST_AGENT_STATUS_NONE;

  gboolean ok = self->ops->identify (self->link, &device_id, version, sizeof version, error);
  st_passive_update_counters (self);
  if (!ok)
    return FALSE;
  self->target = st_target_find (device_id, error);
  if (self->target == NULL)
    {
      g_prefix_error (error, "%s: ", backend->port);
      return FALSE;
    }
  guint first = 0, count = 0;
  if (!st_passive_check_area (self, &first, &count, error))
    return FALSE;
  guint uid_len = st_passive_uid_length (self);
  if (uid_len == 0 || uid_len > ST_UID_MAX)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "uid length %u is outside 1..%d",
                   uid_len, ST_UID_MAX);
      return FALSE;
    }
  /* The blob first, the uid last (the simulators take the closing uid read
   * of a unit as its end: GO, or the operator's swap, comes next). */
  blob = st_passive_read_blob (self, &local);
  if (blob == NULL && !g_error_matches (local, ST_ERROR, ST_ERROR_NOT_FOUND) &&
      !g_error_matches (local, ST_ERROR, ST_ERROR_INVALID_DATA))
    {
      g_propagate_prefixed_error (error, g_steal_pointer (&local), "reading the credential area: ");
      st_passive_update_counters (self);
      return FALSE;
    }
  if (local != NULL)
    g_debug ("%s", local->message);
  ok = self->ops->read (self->link, st_passive_uid_address (self), info->uid, uid_len, error);
  st_passive_update_counters (self);
  if (!ok)
    {
      g_prefix_error (error, "reading the uid: ");
      return FALSE;
    }
  info->uid_len = uid_len;
  g_snprintf (info->model, sizeof info->model, "STM32 PID 0x%04X", device_id);
  g_strlcpy (info->fw_version, version, sizeof info->fw_version);
  info->algorithms = 0;           /* the station makes the key: any algorithm */
  info->max_payload = self->ops->max_payload;
  info->state = ST_DEVICE_STATE_BLANK;
  if (blob != NULL)
    {
      gsize n = 0;
      const guint8 *u = g_bytes_get_data (blob->uid, &n);
      if (n == uid_len && memcmp (u, info->uid, n) == 0)
        info->state = ST_DEVICE_STATE_PROVISIONED;
      else
        g_debug ("%s: the credential blob names another uid: treated as blank", backend->port);
    }
  gboolean same = go && self->uid_len == uid_len && memcmp (self->uid, info->uid, uid_len) == 0;
  memcpy (self->uid, info->uid, uid_len);
  self->uid_len = uid_len;
  self->identified = TRUE;
  backend->last_status = ST_AGENT_STATUS_OK;
  if (same && info->state == ST_DEVICE_STATE_PROVISIONED)
    st_passive_go (self);
  return TRUE;
}

static gboolean
st_passive_put_key (StBackend *backend, StAlg alg, GBytes *pkcs8, GError **error)
{
  StPassive *self = st_passive_self (backend);
  gsize n = g_bytes_get_size (pkcs8);
  if (n == 0 || n > G_MAXUINT16)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "a key of %" G_GSIZE_FORMAT " bytes", n);
      return FALSE;
    }
  (void) alg;
  if (self->key != NULL)
    st_bytes_wipe_unref (g_steal_pointer (&self->key));
  /* Our own copy, so that the caller can wipe its one at once. */
  self->key = g_bytes_new (g_bytes_get_data (pkcs8, NULL), n);
  backend->last_status = ST_AGENT_STATUS_OK;
  return TRUE;
}

static gboolean
st_passive_write (StBackend *backend, StSlot slot, GBytes *data, GError **error)
{
  StPassive *self = st_passive_self (backend);
  gsize n = g_bytes_get_size (data);
  if (n == 0 || n > backend->params.blob_area_size)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "slot %d: %" G_GSIZE_FORMAT " bytes do not fit the credential area", slot, n);
      return FALSE;
    }
  if (slot == ST_SLOT_CERT)
    {
      if (self->key == NULL)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_BUSY, "no key was sent before the certificate");
          return FALSE;
        }
      g_clear_pointer (&self->cert, g_bytes_unref);
      self->cert = g_bytes_ref (data);
    }
  else if (slot == ST_SLOT_CHAIN)
    {
      g_clear_pointer (&self->chain, g_bytes_unref);
      self->chain = g_bytes_ref (data);
    }
  else
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED, "no slot %d", slot);
      return FALSE;
    }
  backend->last_status = ST_AGENT_STATUS_OK;
  return TRUE;
}

static GBytes *
st_passive_read (StBackend *backend, StSlot slot, GError **error)
{
  StPassive *self = st_passive_self (backend);
  if (slot != ST_SLOT_CERT && slot != ST_SLOT_CHAIN && slot != ST_SLOT_MATTER_CD
      && slot != ST_SLOT_MATTER_DATA)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED, "no slot %d", slot);
      return NULL;
    }
  /* Uncommitted contents first, as an agent's READ gives them. */
  if (slot == ST_SLOT_CERT && self->cert != NULL)
    return g_bytes_ref (self->cert);
  if (slot == ST_SLOT_CHAIN && self->chain != NULL)
    return g_bytes_ref (self->chain);
  if (slot == ST_SLOT_MATTER_CD && self->matter_cd != NULL)
    return g_bytes_ref (self->matter_cd);
  if (slot == ST_SLOT_MATTER_DATA && self->matter_data != NULL)
    return g_bytes_ref (self->matter_data);
  if (!st_passive_need_link (self, error))
    return NULL;
  if (self->target == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_BUSY, "%s: identify the device before reading", backend->port);
      return NULL;
    }
  g_autoptr(GError) local = NULL;
  g_autoptr(StBlob) blob = st_passive_read_blob (self, &local);
  st_passive_update_counters (self);
  if (blob == NULL)
    {
      if (g_error_matches (local, ST_ERROR, ST_ERROR_NOT_FOUND))
        return g_bytes_new (NULL, 0);
      g_propagate_error (error, g_steal_pointer (&local));
      return NULL;
    }
  switch (slot)
    {
    case ST_SLOT_CERT:
      return g_bytes_ref (blob->cert);
    case ST_SLOT_CHAIN:
      return st_blob_dup_chain (blob);
    case ST_SLOT_MATTER_CD:
      /* A version 1 blob has no Matter data: an empty slot. */
      return blob->matter_cd != NULL ? g_bytes_ref (blob->matter_cd) : g_bytes_new (NULL, 0);
    default:
      return blob->matter_data != NULL ? g_bytes_ref (blob->matter_data) : g_bytes_new (NULL, 0);
    }
}

/* Erases sectors [first, first + count) and writes @data at @address. */
static gboolean
st_passive_program (StPassive *self, guint first, guint count, guint32 address,
                    const guint8 *data, gsize len, GError **error)
{
  return self->ops->program (self->link, self->target, first, count, address, data, len, error);
}

/* NONE when the device went silent (its flash state unknown), STORAGE when
 * it answered but refused or stored something else. */
static void
st_passive_set_failure_status (StBackend *backend, const GError *error)
{
  backend->last_status = g_error_matches (error, ST_ERROR, ST_ERROR_TIMED_OUT) ||
                         g_error_matches (error, ST_ERROR, ST_ERROR_READ) ||
                         g_error_matches (error, ST_ERROR, ST_ERROR_WRITE) ||
                         g_error_matches (error, ST_ERROR, ST_ERROR_CANCELLED)
                           ? ST_AGENT_STATUS_NONE : ST_AGENT_STATUS_STORAGE;
}

static gboolean
st_passive_commit (StBackend *backend, gboolean lock, GError **error)
{
  StPassive *self = st_passive_self (backend);
  const StLinkParams *p = &backend->params;
  backend->last_status = ST_AGENT_STATUS_BAD_STATE;
  self->go_pending = FALSE;
  if (lock)
    {
      backend->last_status = ST_AGENT_STATUS_UNSUPPORTED;
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                   "%s: the %s backend cannot lock a device; set [device] lock = false "
                   "and enable readout protection in a later step (see README-%s.md)",
                   backend->port, self->ops->descriptor->scheme, self->ops->descriptor->scheme);
      return FALSE;
    }
  if (!st_passive_need_link (self, error))
    return FALSE;
  if (!self->identified || self->key == NULL || self->cert == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_BUSY, "%s: COMMIT without %s", backend->port,
                   !self->identified ? "an identified device" : self->key == NULL ? "a key" : "a certificate");
      return FALSE;
    }
  guint first = 0, count = 0;
  if (!st_passive_check_area (self, &first, &count, error))
    return FALSE;

  g_autoptr(StBlob) blob = st_blob_new ();
  blob->uid = g_bytes_new (self->uid, self->uid_len);
  blob->key = g_bytes_ref (self->key);
  blob->cert = g_bytes_ref (self->cert);
  blob->product_serial = g_strdup (self->product_serial);
  if (self->matter_cd != NULL)
    {
      blob->matter_cd = g_bytes_ref (self->matter_cd);
      blob->matter_data = g_bytes_ref (self->matter_data);
    }
  if (self->chain != NULL && !st_blob_set_chain (blob, self->chain, error))
    {
      g_prefix_error (error, "%s: ", backend->port);
      return FALSE;
    }
  g_autoptr(GBytes) image = st_blob_build (blob, self->target->write_granularity,
                                           p->blob_area_size, error);
  if (image == NULL)
    {
      g_prefix_error (error, "%s: ", backend->port);
      return FALSE;
    }
  gsize len = 0;
  const guint8 *data = g_bytes_get_data (image, &len);
  g_autoptr(GError) local = NULL;
  gboolean ok = st_passive_program (self, first, count, p->blob_address, data, len, &local);
  g_autofree guint8 *back = g_malloc (len);
  if (ok)
    ok = self->ops->read (self->link, p->blob_address, back, len, &local);
  st_passive_update_counters (self);
  if (!ok)
    {
      st_memwipe (back, len);
      st_passive_set_failure_status (backend, local);
      g_propagate_prefixed_error (error, g_steal_pointer (&local),
                                  "writing the credential blob (%" G_GSIZE_FORMAT " bytes at 0x%08x): ",
                                  len, p->blob_address);
      /* The blob image holds the key: wiped when @image goes (last ref). */
      st_memwipe ((guint8 *) data, len);
      return FALSE;
    }
  gboolean same = memcmp (back, data, len) == 0;
  gsize at = 0;
  while (!same && at < len && back[at] == data[at])
    at++;
  st_memwipe (back, len);
  st_memwipe ((guint8 *) data, len);
  if (!same)
    {
      backend->last_status = ST_AGENT_STATUS_STORAGE;
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "%s: the credential blob read back from 0x%08x differs from what was written "
                   "at byte %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT, backend->port,
                   p->blob_address, at, len);
      return FALSE;
    }
  st_passive_wipe (self);
  self->go_pending = p->go;
  backend->last_status = ST_AGENT_STATUS_OK;
  return TRUE;
}

static gboolean
st_passive_abort (StBackend *backend, GError **error)
{
  (void) error;
  st_passive_wipe (st_passive_self (backend));
  backend->last_status = ST_AGENT_STATUS_OK;
  return TRUE;
}

static gboolean
st_passive_flash_image (StBackend *backend, guint32 address, GBytes *image, const guint8 sha256[32],
                        GError **error)
{
  StPassive *self = st_passive_self (backend);
  const StLinkParams *p = &backend->params;
  gsize len = 0;
  const guint8 *data = g_bytes_get_data (image, &len);
  guint8 md[EVP_MAX_MD_SIZE] = { 0 };
  unsigned int mdlen = 0;
  if (len == 0 || EVP_Digest (data, len, md, &mdlen, EVP_sha256 (), NULL) != 1 ||
      mdlen != 32 || memcmp (md, sha256, 32) != 0)
    {
      g_autofree gchar *want = st_hex_encode (sha256, 32);
      g_autofree gchar *got = st_hex_encode (md, 32);
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "%s: the firmware image (%" G_GSIZE_FORMAT " bytes) has SHA-256 %s, the profile "
                   "says %s: nothing was written; fix [firmware] sha256 or the image file",
                   backend->port, len, len == 0 ? "(empty)" : got, want);
      return FALSE;
    }
  if (!st_passive_need_link (self, error))
    return FALSE;
  if (self->target == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_BUSY, "%s: identify the device before flashing", backend->port);
      return FALSE;
    }
  guint32 gran = MAX (self->target->write_granularity, 1u);
  gsize padded = (len + gran - 1) / gran * gran;
  guint first = 0, count = 0;
  if (!st_target_sectors_for_range (self->target, address, padded, FALSE, &first, &count, error))
    {
      g_prefix_error (error, "%s: [firmware] address: ", backend->port);
      return FALSE;
    }
  if (self->target->sectors[first].address != address)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "%s: [firmware] address 0x%08x is not the start of a flash sector (sector %u "
                   "starts at 0x%08x)", backend->port, address, first, self->target->sectors[first].address);
      return FALSE;
    }
  const StFlashSector *last = &self->target->sectors[first + count - 1];
  guint64 end = (guint64) last->address + last->size;
  if (p->blob_area_size != 0 && p->blob_address < end && (guint64) p->blob_address + p->blob_area_size > address)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "%s: the firmware image's sectors (0x%08x..0x%08" G_GINT64_MODIFIER "x) overlap the "
                   "credential area at 0x%08x", backend->port, address, end, p->blob_address);
      return FALSE;
    }
  g_autofree guint8 *buf = g_malloc (padded);
  memset (buf, 0xff, padded);
  memcpy (buf, data, len);
  gboolean ok = st_passive_program (self, first, count, address, buf, padded, error);
  if (ok)
    ok = self->ops->read (self->link, address, buf, len, error);
  st_passive_update_counters (self);
  if (!ok)
    {
      g_prefix_error (error, "writing the firmware image: ");
      return FALSE;
    }
  if (EVP_Digest (buf, len, md, &mdlen, EVP_sha256 (), NULL) != 1 || memcmp (md, sha256, 32) != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                   "%s: the firmware image read back from 0x%08x has another SHA-256 than the one "
                   "written: the flash is faulty, put the device aside", backend->port, address);
      return FALSE;
    }
  return TRUE;
}

static gboolean
st_passive_set_product_serial (StBackend *backend, const char *serial, GError **error)
{
  StPassive *self = st_passive_self (backend);
  if (serial != NULL && (strlen (serial) == 0 || strlen (serial) > ST_BLOB_SERIAL_MAX ||
                         !g_utf8_validate (serial, -1, NULL)))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "a product serial must be UTF-8 of 1 to %d bytes", ST_BLOB_SERIAL_MAX);
      return FALSE;
    }
  g_free (self->product_serial);
  self->product_serial = g_strdup (serial);
  return TRUE;
}

static gboolean
st_passive_set_matter_data (StBackend *backend, GBytes *cd, GBytes *commissioning,
                            GError **error)
{
  StPassive *self = st_passive_self (backend);
  if ((cd == NULL) != (commissioning == NULL))
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           _("A passive device takes the Matter Certification Declaration and the commissioning data together, or neither."));
      return FALSE;
    }
  if (cd != NULL && (g_bytes_get_size (cd) == 0 || g_bytes_get_size (cd) > ST_BLOB_MATTER_CD_MAX))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("The Matter Certification Declaration is %zu bytes long; the credential blob takes 1 to %d bytes. Check the profile's Certification Declaration file."),
                   g_bytes_get_size (cd), ST_BLOB_MATTER_CD_MAX);
      return FALSE;
    }
  if (commissioning != NULL && (g_bytes_get_size (commissioning) == 0
                                || g_bytes_get_size (commissioning) > ST_BLOB_MATTER_DATA_MAX))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("The Matter commissioning data is %zu bytes long; the credential blob takes 1 to %d bytes."),
                   g_bytes_get_size (commissioning), ST_BLOB_MATTER_DATA_MAX);
      return FALSE;
    }
  g_clear_pointer (&self->matter_cd, g_bytes_unref);
  g_clear_pointer (&self->matter_data, g_bytes_unref);
  if (cd != NULL)
    {
      self->matter_cd = g_bytes_ref (cd);
      self->matter_data = g_bytes_ref (commissioning);
    }
  return TRUE;
}

static void
st_passive_free (StBackend *backend)
{
  StPassive *self = st_passive_self (backend);
  st_passive_wipe (self);
  self->ops->free (self->link);
  g_free (self->product_serial);
  g_free (self);
}

static const StBackendClass st_passive_class = {
  .name = NULL,            /* the descriptor's scheme */
  .open = st_passive_open,
  .identify = st_passive_identify,
  .keygen = NULL,          /* passive: the station makes the key */
  .put_key = st_passive_put_key,
  .write = st_passive_write,
  .read = st_passive_read,
  .sign = NULL,            /* passive: the read-back in COMMIT is the proof */
  .commit = st_passive_commit,
  .abort = st_passive_abort,
  .close = st_passive_close,
  .free = st_passive_free,
  .flash_image = st_passive_flash_image,
  .set_product_serial = st_passive_set_product_serial,
  .set_matter_data = st_passive_set_matter_data,
};

StBackend *
st_passive_backend_new (const char *port, const StLinkParams *params, GCancellable *cancellable,
                        const StPassiveOps *ops, gpointer link)
{
  g_return_val_if_fail (ops != NULL && link != NULL, NULL);
  StPassive *self = g_new0 (StPassive, 1);
  self->klass = st_passive_class;
  self->klass.name = ops->descriptor->scheme;
  self->ops = ops;
  self->link = link;
  st_backend_init (&self->parent, &self->klass, ops->descriptor, port, params, cancellable);
  return &self->parent;
}

gpointer
st_passive_backend_get_link (StBackend *backend, const StPassiveOps *ops)
{
  if (backend == NULL || backend->klass == NULL || backend->klass->free != st_passive_free)
    return NULL;
  StPassive *self = st_passive_self (backend);
  return self->ops == ops ? self->link : NULL;
}
