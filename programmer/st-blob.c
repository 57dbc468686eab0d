/* The credential blob, versions 1 and 2 (st-blob.h). */
#include "st-blob.h"

#include <glib/gi18n.h>
#include <string.h>

#include "st-error.h"
#include "st-frame.h"
#include "st-util.h"

StBlob *
st_blob_new (void)
{
  StBlob *blob = g_new0 (StBlob, 1);
  blob->ca_certs = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  return blob;
}

void
st_blob_free (StBlob *blob)
{
  if (blob == NULL)
    return;
  g_clear_pointer (&blob->uid, g_bytes_unref);
  if (blob->key != NULL)
    st_bytes_wipe_unref (g_steal_pointer (&blob->key));
  g_clear_pointer (&blob->cert, g_bytes_unref);
  g_clear_pointer (&blob->ca_certs, g_ptr_array_unref);
  g_free (blob->product_serial);
  g_clear_pointer (&blob->matter_cd, g_bytes_unref);
  g_clear_pointer (&blob->matter_data, g_bytes_unref);
  g_free (blob);
}

/* Length of the DER TLV at the start of @p (tag 0x30), or 0 when it is not
 * one complete SEQUENCE within @len bytes. */
static gsize
st_blob_der_sequence_len (const guint8 *p, gsize len)
{
  if (len < 2 || p[0] != 0x30)
    return 0;
  gsize hdr = 2, body = 0;
  if (p[1] < 0x80)
    body = p[1];
  else
    {
      guint n = p[1] & 0x7f;
      if (n == 0 || n > 3 || len < 2 + (gsize) n)
        return 0;
      for (guint i = 0; i < n; i++)
        body = (body << 8) | p[2 + i];
      hdr += n;
    }
  if (body > len - hdr)
    return 0;
  return hdr + body;
}

gboolean
st_blob_set_chain (StBlob *blob, GBytes *chain, GError **error)
{
  g_return_val_if_fail (blob != NULL && chain != NULL, FALSE);
  gsize len = 0;
  const guint8 *p = g_bytes_get_data (chain, &len);
  g_ptr_array_set_size (blob->ca_certs, 0);
  gsize off = 0;
  while (off < len)
    {
      gsize n = st_blob_der_sequence_len (p + off, len - off);
      if (n == 0)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "the CA chain has no complete DER certificate at byte %" G_GSIZE_FORMAT, off);
          return FALSE;
        }
      if (blob->ca_certs->len >= ST_BLOB_MAX_CA_CERTS)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "the CA chain has more than %d certificates", ST_BLOB_MAX_CA_CERTS);
          return FALSE;
        }
      g_ptr_array_add (blob->ca_certs, g_bytes_new_from_bytes (chain, off, n));
      off += n;
    }
  return TRUE;
}

GBytes *
st_blob_dup_chain (const StBlob *blob)
{
  g_return_val_if_fail (blob != NULL, NULL);
  g_autoptr(GByteArray) out = g_byte_array_new ();
  for (guint i = 0; i < blob->ca_certs->len; i++)
    {
      gsize n = 0;
      const guint8 *d = g_bytes_get_data (blob->ca_certs->pdata[i], &n);
      g_byte_array_append (out, d, (guint) n);
    }
  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}

static gboolean
st_blob_append_entry (GByteArray *out, guint8 type, const guint8 *value, gsize len,
                      const char *what, GError **error)
{
  if (len == 0 || len > G_MAXUINT16)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "the %s is %" G_GSIZE_FORMAT " bytes; a blob entry holds 1 to 65535",
                   what, len);
      return FALSE;
    }
  guint8 hdr[ST_BLOB_ENTRY_HEADER_SIZE] = { type, 0 };
  st_put_le16 (hdr + 2, (guint16) len);
  g_byte_array_append (out, hdr, sizeof hdr);
  g_byte_array_append (out, value, (guint) len);
  return TRUE;
}

static gboolean
st_blob_append_bytes (GByteArray *out, guint8 type, GBytes *b, const char *what, GError **error)
{
  gsize len = 0;
  const guint8 *d = g_bytes_get_data (b, &len);
  return st_blob_append_entry (out, type, d, len, what, error);
}

GBytes *
st_blob_build (const StBlob *blob, gsize granularity, gsize max_size, GError **error)
{
  g_return_val_if_fail (blob != NULL, NULL);
  if (granularity == 0 || granularity > 256 || (granularity & (granularity - 1)) != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "flash programming granularity %" G_GSIZE_FORMAT " is not a power of two up to 256",
                   granularity);
      return NULL;
    }
  if (blob->uid == NULL || blob->key == NULL || blob->cert == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "the credential blob lacks its %s", blob->uid == NULL ? "uid" :
                   blob->key == NULL ? "private key" : "device certificate");
      return NULL;
    }
  if (g_bytes_get_size (blob->uid) > ST_BLOB_UID_MAX)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "the uid is longer than %d bytes",
                   ST_BLOB_UID_MAX);
      return NULL;
    }
  if (blob->ca_certs->len > ST_BLOB_MAX_CA_CERTS)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "more than %d CA certificates",
                   ST_BLOB_MAX_CA_CERTS);
      return NULL;
    }
  gsize serial_len = blob->product_serial != NULL ? strlen (blob->product_serial) : 0;
  if (blob->product_serial != NULL &&
      (serial_len > ST_BLOB_SERIAL_MAX || !g_utf8_validate (blob->product_serial, -1, NULL)))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "the product serial is not UTF-8 of 1 to %d bytes", ST_BLOB_SERIAL_MAX);
      return NULL;
    }
  if ((blob->matter_cd == NULL) != (blob->matter_data == NULL))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("The credential blob has a Matter %s but no Matter %s; a version 2 blob needs both."),
                   blob->matter_cd != NULL ? "Certification Declaration" : "commissioning data",
                   blob->matter_cd != NULL ? "commissioning data" : "Certification Declaration");
      return NULL;
    }
  gboolean matter = blob->matter_cd != NULL;
  if (matter && (g_bytes_get_size (blob->matter_cd) == 0
                 || g_bytes_get_size (blob->matter_cd) > ST_BLOB_MATTER_CD_MAX))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("The Matter Certification Declaration is %zu bytes long; the credential blob takes 1 to %d bytes. Check the profile's Certification Declaration file."),
                   g_bytes_get_size (blob->matter_cd), ST_BLOB_MATTER_CD_MAX);
      return NULL;
    }
  if (matter && (g_bytes_get_size (blob->matter_data) == 0
                 || g_bytes_get_size (blob->matter_data) > ST_BLOB_MATTER_DATA_MAX))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("The Matter commissioning data is %zu bytes long; the credential blob takes 1 to %d bytes."),
                   g_bytes_get_size (blob->matter_data), ST_BLOB_MATTER_DATA_MAX);
      return NULL;
    }

  g_autoptr(GByteArray) out = g_byte_array_new ();
  guint8 hdr[ST_BLOB_HEADER_SIZE] = { 0 };
  g_byte_array_append (out, hdr, sizeof hdr);
  guint16 count = 0;
  gboolean ok = st_blob_append_bytes (out, ST_BLOB_ENTRY_UID, blob->uid, "uid", error) &&
                st_blob_append_bytes (out, ST_BLOB_ENTRY_KEY, blob->key, "private key", error) &&
                st_blob_append_bytes (out, ST_BLOB_ENTRY_CERT, blob->cert, "device certificate", error);
  count = 3;
  for (guint i = 0; ok && i < blob->ca_certs->len; i++, count++)
    ok = st_blob_append_bytes (out, ST_BLOB_ENTRY_CA_CERT, blob->ca_certs->pdata[i],
                               "CA certificate", error);
  if (ok && blob->product_serial != NULL)
    {
      ok = st_blob_append_entry (out, ST_BLOB_ENTRY_SERIAL, (const guint8 *) blob->product_serial,
                                 serial_len, "product serial", error);
      count++;
    }
  if (ok && matter)
    {
      ok = st_blob_append_bytes (out, ST_BLOB_ENTRY_MATTER_CD, blob->matter_cd,
                                 "Matter Certification Declaration", error)
           && st_blob_append_bytes (out, ST_BLOB_ENTRY_MATTER_DATA, blob->matter_data,
                                    "Matter commissioning data", error);
      count += 2;
    }
  if (!ok)
    {
      st_memwipe (out->data, out->len);
      return NULL;
    }
  gsize total = out->len + ST_BLOB_CRC_SIZE;
  gsize padded = (total + granularity - 1) & ~(granularity - 1);
  if (padded > max_size || padded > ST_BLOB_MAX_SIZE)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "the credential blob is %" G_GSIZE_FORMAT " bytes; the credential area holds %"
                   G_GSIZE_FORMAT ": enlarge blob-area-size in the profile",
                   padded, MIN (max_size, (gsize) ST_BLOB_MAX_SIZE));
      st_memwipe (out->data, out->len);
      return NULL;
    }
  memcpy (out->data, ST_BLOB_MAGIC, 4);
  st_put_le16 (out->data + 4, matter ? ST_BLOB_VERSION_MATTER : ST_BLOB_VERSION);
  st_put_le16 (out->data + 6, count);
  st_put_le32 (out->data + 8, (guint32) total);
  guint8 crc[ST_BLOB_CRC_SIZE];
  st_put_le32 (crc, st_crc32 (0, out->data, out->len));
  g_byte_array_append (out, crc, sizeof crc);
  while (out->len < padded)
    {
      guint8 ff = 0xff;
      g_byte_array_append (out, &ff, 1);
    }
  /* The array's buffer becomes the GBytes: no copy of the key is left. */
  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}

gsize
st_blob_peek_length (const guint8 *data, gsize len)
{
  if (data == NULL || len < ST_BLOB_HEADER_SIZE || memcmp (data, ST_BLOB_MAGIC, 4) != 0 ||
      (st_get_le16 (data + 4) != ST_BLOB_VERSION && st_get_le16 (data + 4) != ST_BLOB_VERSION_MATTER))
    return 0;
  guint32 total = st_get_le32 (data + 8);
  if (total < ST_BLOB_HEADER_SIZE + ST_BLOB_CRC_SIZE || total > ST_BLOB_MAX_SIZE)
    return 0;
  return total;
}

static const char *
st_blob_entry_name (guint8 type)
{
  switch (type)
    {
    case ST_BLOB_ENTRY_UID: return "uid";
    case ST_BLOB_ENTRY_KEY: return "private key";
    case ST_BLOB_ENTRY_CERT: return "device certificate";
    case ST_BLOB_ENTRY_CA_CERT: return "CA certificate";
    case ST_BLOB_ENTRY_SERIAL: return "product serial";
    case ST_BLOB_ENTRY_MATTER_CD: return "Matter Certification Declaration";
    case ST_BLOB_ENTRY_MATTER_DATA: return "Matter commissioning data";
    default: return "?";
    }
}

StBlob *
st_blob_parse (const guint8 *data, gsize len, GError **error)
{
  if (data == NULL || len < 4 || memcmp (data, ST_BLOB_MAGIC, 4) != 0)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                           "no credential blob (the area does not start with PCB1)");
      return NULL;
    }
  if (len < ST_BLOB_HEADER_SIZE + ST_BLOB_CRC_SIZE)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "credential blob: %" G_GSIZE_FORMAT " bytes are too few for a header and a CRC", len);
      return NULL;
    }
  guint16 version = st_get_le16 (data + 4);
  if (version != ST_BLOB_VERSION && version != ST_BLOB_VERSION_MATTER)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("Credential blob: version %u is not known (versions 1 and 2 are)."), version);
      return NULL;
    }
  guint16 count = st_get_le16 (data + 6);
  guint32 total = st_get_le32 (data + 8);
  if (total < ST_BLOB_HEADER_SIZE + ST_BLOB_CRC_SIZE || total > ST_BLOB_MAX_SIZE || total > len)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "credential blob: total length %u is outside 16..%" G_GSIZE_FORMAT,
                   total, MIN (len, (gsize) ST_BLOB_MAX_SIZE));
      return NULL;
    }
  guint32 crc = st_get_le32 (data + total - ST_BLOB_CRC_SIZE);
  guint32 computed = st_crc32 (0, data, total - ST_BLOB_CRC_SIZE);
  if (crc != computed)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "credential blob: CRC-32 %08x does not match the contents (%08x)", crc, computed);
      return NULL;
    }

  g_autoptr(StBlob) blob = st_blob_new ();
  blob->version = version;
  gsize off = ST_BLOB_HEADER_SIZE;
  gsize end = total - ST_BLOB_CRC_SIZE;
  guint n = 0;
  for (; off < end; n++)
    {
      if (n >= count)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "credential blob: %" G_GSIZE_FORMAT " bytes follow the %u entries that the count announces",
                       end - off, count);
          return NULL;
        }
      if (end - off < ST_BLOB_ENTRY_HEADER_SIZE)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "credential blob: entry %u header at byte %" G_GSIZE_FORMAT " runs past the end", n, off);
          return NULL;
        }
      guint8 type = data[off];
      guint8 reserved = data[off + 1];
      gsize vlen = st_get_le16 (data + off + 2);
      off += ST_BLOB_ENTRY_HEADER_SIZE;
      if (reserved != 0)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "credential blob: entry %u has reserved byte 0x%02x, not 0", n, reserved);
          return NULL;
        }
      if (vlen == 0 || vlen > end - off)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "credential blob: entry %u (type 0x%02x) length %" G_GSIZE_FORMAT
                       " is 0 or runs past the end (%" G_GSIZE_FORMAT " bytes left)",
                       n, type, vlen, end - off);
          return NULL;
        }
      const guint8 *v = data + off;
      GBytes **single = NULL;
      switch (type)
        {
        case ST_BLOB_ENTRY_UID:
          if (vlen > ST_BLOB_UID_MAX)
            {
              g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "credential blob: uid of %" G_GSIZE_FORMAT " bytes (at most %d)", vlen, ST_BLOB_UID_MAX);
              return NULL;
            }
          single = &blob->uid;
          break;
        case ST_BLOB_ENTRY_KEY:
          single = &blob->key;
          break;
        case ST_BLOB_ENTRY_CERT:
          single = &blob->cert;
          break;
        case ST_BLOB_ENTRY_CA_CERT:
          if (blob->ca_certs->len >= ST_BLOB_MAX_CA_CERTS)
            {
              g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "credential blob: more than %d CA certificates", ST_BLOB_MAX_CA_CERTS);
              return NULL;
            }
          g_ptr_array_add (blob->ca_certs, g_bytes_new (v, vlen));
          break;
        case ST_BLOB_ENTRY_SERIAL:
          if (blob->product_serial != NULL || vlen > ST_BLOB_SERIAL_MAX ||
              memchr (v, '\0', vlen) != NULL || !g_utf8_validate_len ((const char *) v, vlen, NULL))
            {
              g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "credential blob: product serial repeated, longer than %d bytes, or not UTF-8",
                           ST_BLOB_SERIAL_MAX);
              return NULL;
            }
          blob->product_serial = g_strndup ((const char *) v, vlen);
          break;
        case ST_BLOB_ENTRY_MATTER_CD:
        case ST_BLOB_ENTRY_MATTER_DATA:
          if (version == ST_BLOB_VERSION)
            {
              g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           _("Credential blob: entry %u is a %s (type 0x%02x), which a version 1 blob cannot hold."),
                           n, st_blob_entry_name (type), type);
              return NULL;
            }
          if (vlen > (type == ST_BLOB_ENTRY_MATTER_CD ? ST_BLOB_MATTER_CD_MAX : ST_BLOB_MATTER_DATA_MAX))
            {
              g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           _("Credential blob: the %s of entry %u is %zu bytes long, more than the %d allowed."),
                           st_blob_entry_name (type), n, vlen,
                           type == ST_BLOB_ENTRY_MATTER_CD ? ST_BLOB_MATTER_CD_MAX : ST_BLOB_MATTER_DATA_MAX);
              return NULL;
            }
          single = type == ST_BLOB_ENTRY_MATTER_CD ? &blob->matter_cd : &blob->matter_data;
          break;
        default:
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "credential blob: entry %u has unknown type 0x%02x", n, type);
          return NULL;
        }
      if (single != NULL)
        {
          if (*single != NULL)
            {
              g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           "credential blob: the %s appears twice", st_blob_entry_name (type));
              return NULL;
            }
          *single = g_bytes_new (v, vlen);
        }
      off += vlen;
    }
  if (n != count)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "credential blob: the count says %u entries, the blob holds %u", count, n);
      return NULL;
    }
  if (blob->uid == NULL || blob->key == NULL || blob->cert == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "credential blob: no %s entry",
                   blob->uid == NULL ? "uid" : blob->key == NULL ? "private key" : "device certificate");
      return NULL;
    }
  if (version == ST_BLOB_VERSION_MATTER && (blob->matter_cd == NULL || blob->matter_data == NULL))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("Credential blob: a version 2 blob without its %s entry (type 0x%02x)."),
                   blob->matter_cd == NULL ? "Matter Certification Declaration" : "Matter commissioning data",
                   blob->matter_cd == NULL ? ST_BLOB_ENTRY_MATTER_CD : ST_BLOB_ENTRY_MATTER_DATA);
      return NULL;
    }
  return g_steal_pointer (&blob);
}
