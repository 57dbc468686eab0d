/* The Matter commissioning data record (st-matter-data.h). */
#include "st-matter-data.h"

#include <glib/gi18n.h>
#include <string.h>

#include "st-error.h"

#define ST_MATTER_DATA_DISCRIMINATOR_MAX 4095u
#define ST_MATTER_DATA_ITERATIONS_MIN 1000u
#define ST_MATTER_DATA_ITERATIONS_MAX 100000u

static const char *
st_matter_data_type_name (guint type)
{
  switch (type)
    {
    case ST_MATTER_DATA_VENDOR_ID: return N_("vendor id");
    case ST_MATTER_DATA_PRODUCT_ID: return N_("product id");
    case ST_MATTER_DATA_DISCRIMINATOR: return N_("discriminator");
    case ST_MATTER_DATA_ITERATIONS: return N_("PBKDF2 iteration count");
    case ST_MATTER_DATA_SALT: return N_("salt");
    case ST_MATTER_DATA_VERIFIER: return N_("SPAKE2+ verifier");
    case ST_MATTER_DATA_RDID_UNIQUE_ID: return N_("rotating device id unique id");
    default: return N_("unknown");
    }
}

gboolean
st_matter_commissioning_check (const StMatterCommissioning *c, GError **error)
{
  g_return_val_if_fail (c != NULL, FALSE);
  if (c->discriminator > ST_MATTER_DATA_DISCRIMINATOR_MAX)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("The Matter discriminator is %u; it must be 0 to 4095."),
                   (guint) c->discriminator);
      return FALSE;
    }
  if (c->iterations < ST_MATTER_DATA_ITERATIONS_MIN || c->iterations > ST_MATTER_DATA_ITERATIONS_MAX)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("The Matter PBKDF2 iteration count is %u; it must be 1000 to 100000."),
                   (guint) c->iterations);
      return FALSE;
    }
  if (c->salt_len < ST_MATTER_DATA_SALT_MIN || c->salt_len > ST_MATTER_DATA_SALT_MAX)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("The Matter SPAKE2+ salt is %zu bytes long; it must be 16 to 32 bytes."),
                   c->salt_len);
      return FALSE;
    }
  if (c->verifier[32] != 0x04)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           _("The Matter SPAKE2+ verifier's point L is not an uncompressed point (it does not start with 0x04)."));
      return FALSE;
    }
  if (c->rdid_unique_id_len != 0
      && (c->rdid_unique_id_len < ST_MATTER_DATA_RDID_MIN || c->rdid_unique_id_len > ST_MATTER_DATA_RDID_MAX))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("The Matter rotating device id unique id is %zu bytes long; it must be 16 to 32 bytes, or absent."),
                   c->rdid_unique_id_len);
      return FALSE;
    }
  return TRUE;
}

static void
st_matter_data_put (GByteArray *out, guint8 type, const guint8 *value, gsize len)
{
  guint8 head[2] = { type, (guint8) len };
  g_byte_array_append (out, head, 2);
  g_byte_array_append (out, value, (guint) len);
}

GBytes *
st_matter_commissioning_encode (const StMatterCommissioning *c, GError **error)
{
  if (!st_matter_commissioning_check (c, error))
    return NULL;
  GByteArray *out = g_byte_array_sized_new (ST_MATTER_DATA_MAX);
  guint8 version = ST_MATTER_DATA_VERSION;
  guint8 u16[2], u32[4];

  g_byte_array_append (out, &version, 1);
  u16[0] = (guint8) c->vendor_id; u16[1] = (guint8) (c->vendor_id >> 8);
  st_matter_data_put (out, ST_MATTER_DATA_VENDOR_ID, u16, 2);
  u16[0] = (guint8) c->product_id; u16[1] = (guint8) (c->product_id >> 8);
  st_matter_data_put (out, ST_MATTER_DATA_PRODUCT_ID, u16, 2);
  u16[0] = (guint8) c->discriminator; u16[1] = (guint8) (c->discriminator >> 8);
  st_matter_data_put (out, ST_MATTER_DATA_DISCRIMINATOR, u16, 2);
  for (guint i = 0; i < 4; i++)
    u32[i] = (guint8) (c->iterations >> (8 * i));
  st_matter_data_put (out, ST_MATTER_DATA_ITERATIONS, u32, 4);
  st_matter_data_put (out, ST_MATTER_DATA_SALT, c->salt, c->salt_len);
  st_matter_data_put (out, ST_MATTER_DATA_VERIFIER, c->verifier, ST_MATTER_DATA_VERIFIER_LEN);
  if (c->rdid_unique_id_len > 0)
    st_matter_data_put (out, ST_MATTER_DATA_RDID_UNIQUE_ID, c->rdid_unique_id,
                        c->rdid_unique_id_len);
  return g_byte_array_free_to_bytes (out);
}

/* Every refusal of the parser: the record, the offset, the reason. */
/* Each message is one whole sentence that starts with the offset. */
#define ST_MATTER_DATA_REFUSE(...)                                               \
  do {                                                                           \
    g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, __VA_ARGS__);           \
    memset (c, 0, sizeof *c);                                                    \
    return FALSE;                                                                \
  } while (0)

gboolean
st_matter_commissioning_parse (const guint8 *data, gsize len, StMatterCommissioning *c,
                               GError **error)
{
  gsize pos = 0;
  guint next = ST_MATTER_DATA_VENDOR_ID;   /* the lowest type allowed next */

  g_return_val_if_fail (c != NULL, FALSE);
  memset (c, 0, sizeof *c);
  if (len == 0 || data == NULL)
    ST_MATTER_DATA_REFUSE (_("Matter commissioning data, byte %zu: The record is empty."), pos);
  if (len > ST_MATTER_DATA_MAX)
    ST_MATTER_DATA_REFUSE (_("Matter commissioning data, byte %zu: The record is %zu bytes long, more than the %d a version 1 record can have."), pos,
                           len, ST_MATTER_DATA_MAX);
  if (data[0] != ST_MATTER_DATA_VERSION)
    ST_MATTER_DATA_REFUSE (_("Matter commissioning data, byte %zu: Format version %u is not known (1 expected)."), pos, (guint) data[0]);
  pos = 1;
  while (pos < len)
    {
      if (len - pos < 2)
        ST_MATTER_DATA_REFUSE (_("Matter commissioning data, byte %zu: An entry header is cut short."), pos);
      guint type = data[pos];
      gsize vlen = data[pos + 1];
      const guint8 *v = data + pos + 2;
      if (type < ST_MATTER_DATA_VENDOR_ID || type > ST_MATTER_DATA_RDID_UNIQUE_ID)
        ST_MATTER_DATA_REFUSE (_("Matter commissioning data, byte %zu: Entry type 0x%02x is not known."), pos, type);
      if (type < next)
        ST_MATTER_DATA_REFUSE (_("Matter commissioning data, byte %zu: The %s entry (type 0x%02x) appears twice or out of order."), pos,
                               _(st_matter_data_type_name (type)), type);
      if (type > next && next <= ST_MATTER_DATA_VERIFIER)
        ST_MATTER_DATA_REFUSE (_("Matter commissioning data, byte %zu: The %s entry (type 0x%02x) is missing."), pos,
                               _(st_matter_data_type_name (next)), next);
      if (vlen > len - pos - 2)
        ST_MATTER_DATA_REFUSE (_("Matter commissioning data, byte %zu: The %s entry of %zu bytes runs past the end of the record."), pos,
                               _(st_matter_data_type_name (type)), vlen);
      gboolean len_ok;
      switch (type)
        {
        case ST_MATTER_DATA_VENDOR_ID:
        case ST_MATTER_DATA_PRODUCT_ID:
        case ST_MATTER_DATA_DISCRIMINATOR:
          len_ok = vlen == 2;
          break;
        case ST_MATTER_DATA_ITERATIONS:
          len_ok = vlen == 4;
          break;
        case ST_MATTER_DATA_SALT:
          len_ok = vlen >= ST_MATTER_DATA_SALT_MIN && vlen <= ST_MATTER_DATA_SALT_MAX;
          break;
        case ST_MATTER_DATA_VERIFIER:
          len_ok = vlen == ST_MATTER_DATA_VERIFIER_LEN;
          break;
        default:
          len_ok = vlen >= ST_MATTER_DATA_RDID_MIN && vlen <= ST_MATTER_DATA_RDID_MAX;
          break;
        }
      if (!len_ok)
        ST_MATTER_DATA_REFUSE (_("Matter commissioning data, byte %zu: The %s entry has a length of %zu bytes, which is not allowed."), pos,
                               _(st_matter_data_type_name (type)), vlen);
      guint32 u = 0;
      if (type <= ST_MATTER_DATA_ITERATIONS)
        for (gsize i = 0; i < vlen; i++)
          u |= (guint32) v[i] << (8 * i);
      switch (type)
        {
        case ST_MATTER_DATA_VENDOR_ID:
          c->vendor_id = (guint16) u;
          break;
        case ST_MATTER_DATA_PRODUCT_ID:
          c->product_id = (guint16) u;
          break;
        case ST_MATTER_DATA_DISCRIMINATOR:
          if (u > ST_MATTER_DATA_DISCRIMINATOR_MAX)
            ST_MATTER_DATA_REFUSE (_("Matter commissioning data, byte %zu: The discriminator is %u, more than 4095."), pos, (guint) u);
          c->discriminator = (guint16) u;
          break;
        case ST_MATTER_DATA_ITERATIONS:
          if (u < ST_MATTER_DATA_ITERATIONS_MIN || u > ST_MATTER_DATA_ITERATIONS_MAX)
            ST_MATTER_DATA_REFUSE (_("Matter commissioning data, byte %zu: The PBKDF2 iteration count is %u, outside 1000 to 100000."), pos,
                                   (guint) u);
          c->iterations = u;
          break;
        case ST_MATTER_DATA_SALT:
          memcpy (c->salt, v, vlen);
          c->salt_len = vlen;
          break;
        case ST_MATTER_DATA_VERIFIER:
          if (v[32] != 0x04)
            ST_MATTER_DATA_REFUSE (_("Matter commissioning data, byte %zu: The verifier's point L does not start with 0x04 (an uncompressed point)."), pos);
          memcpy (c->verifier, v, vlen);
          break;
        default:
          memcpy (c->rdid_unique_id, v, vlen);
          c->rdid_unique_id_len = vlen;
          break;
        }
      pos += 2 + vlen;
      next = type + 1;
    }
  if (next <= ST_MATTER_DATA_VERIFIER)
    ST_MATTER_DATA_REFUSE (_("Matter commissioning data, byte %zu: The %s entry (type 0x%02x) is missing."), pos,
                           _(st_matter_data_type_name (next)), next);
  return TRUE;
}
