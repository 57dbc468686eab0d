/* Matter onboarding codes: passcode, discriminator, the QR text and the
 * manual pairing code (st-matter-codes.h; docs/matter.md, "Onboarding codes
 * and the verifier"). Written from the Matter Core Specification's text,
 * section 5.1 (Onboarding Payload). */
#include "st-matter-codes.h"

#include <glib/gi18n.h>
#include <openssl/rand.h>
#include <string.h>

#include "st-error.h"

/* The packed payload: 88 bits, 11 bytes. Field widths in packing order,
 * least significant bit first (bit 0 of byte 0 is bit 0 of the version). */
#define ST_MATTER_PAYLOAD_BYTES 11
#define ST_MATTER_BITS_VERSION 3
#define ST_MATTER_BITS_VID 16
#define ST_MATTER_BITS_PID 16
#define ST_MATTER_BITS_FLOW 2
#define ST_MATTER_BITS_DISCOVERY 8
#define ST_MATTER_BITS_DISCRIMINATOR 12
#define ST_MATTER_BITS_PASSCODE 27
#define ST_MATTER_BITS_PADDING 4
/* base38 of 11 bytes: three chunks of 3 (5 characters each) and one of 2 (4). */
#define ST_MATTER_QR_BASE38_LEN 19

/* A draw from 2^27 is a valid passcode with probability 0.745; a thousand
 * rejections in a row mean the generator is broken. */
#define ST_MATTER_DRAWS_MAX 1000

static const char st_base38_alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-.";

gboolean
st_matter_passcode_valid (guint32 passcode)
{
  if (passcode < ST_MATTER_PASSCODE_MIN || passcode > ST_MATTER_PASSCODE_MAX)
    return FALSE;
  if (passcode % 11111111u == 0) /* 11111111 .. 88888888; 0 and 99999999 are out of range */
    return FALSE;
  return passcode != 12345678u && passcode != 87654321u;
}

gboolean
st_matter_passcode_generate (guint32 *passcode, GError **error)
{
  for (guint tries = 0; tries < ST_MATTER_DRAWS_MAX; tries++)
    {
      guint8 b[4];
      if (RAND_bytes (b, sizeof b) != 1)
        {
          st_error_set_openssl (error, ST_ERROR_INTERNAL,
                                _("Cannot draw a setup passcode from the random generator"));
          return FALSE;
        }
      /* 27 uniform bits; a value outside the valid set is drawn again, so
       * every valid passcode is equally likely (no modulo bias). */
      guint32 v = ((guint32) b[0] | (guint32) b[1] << 8 | (guint32) b[2] << 16
                   | (guint32) b[3] << 24) & ((1u << ST_MATTER_BITS_PASSCODE) - 1);
      memset (b, 0, sizeof b);
      if (st_matter_passcode_valid (v))
        {
          *passcode = v;
          return TRUE;
        }
    }
  g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL,
               _("The random generator gave %u invalid setup passcodes in a row: it is not working; "
                 "check the system's entropy source before going on."), ST_MATTER_DRAWS_MAX);
  return FALSE;
}

gboolean
st_matter_discriminator_random (guint16 *discriminator, GError **error)
{
  guint8 b[2];
  if (RAND_bytes (b, sizeof b) != 1)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL,
                            _("Cannot draw a discriminator from the random generator"));
      return FALSE;
    }
  /* 4096 divides 65536: the low 12 bits are uniform */
  *discriminator = (guint16) (((guint) b[0] | (guint) b[1] << 8) & ST_MATTER_DISCRIMINATOR_MAX);
  return TRUE;
}

gboolean
st_matter_discriminator_sequential (guint lo, guint hi, guint64 counter,
                                    guint16 *discriminator, GError **error)
{
  if (lo > hi || hi > ST_MATTER_DISCRIMINATOR_MAX)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("The discriminator range %u to %u is not valid: it needs lo <= hi <= 4095."),
                   lo, hi);
      return FALSE;
    }
  guint64 span = (guint64) hi - lo + 1;
  *discriminator = (guint16) (lo + counter % span);
  return TRUE;
}

gboolean
st_matter_payload_check (const StMatterPayload *p, GError **error)
{
  if (p->version != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("The onboarding payload's version is %u; only version 0 is defined."),
                   p->version);
      return FALSE;
    }
  if (p->flow > ST_MATTER_FLOW_CUSTOM)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("The commissioning flow %u is reserved: use 0 (standard), 1 (user intent) "
                     "or 2 (custom)."), p->flow);
      return FALSE;
    }
  if (p->discriminator > ST_MATTER_DISCRIMINATOR_MAX)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("The discriminator %u does not fit in 12 bits (0 to 4095)."), p->discriminator);
      return FALSE;
    }
  if (!st_matter_passcode_valid (p->passcode))
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("The setup passcode is not allowed: it must be 1 to 99999998 and not "
                     "one of 11111111 ... 88888888, 12345678, 87654321."));
      return FALSE;
    }
  return TRUE;
}

/* --- base38 --- */

gsize
st_matter_base38_encode (const guint8 *in, gsize len, char *out, gsize out_size)
{
  gsize need = len / 3 * 5 + (len % 3 == 2 ? 4 : len % 3 == 1 ? 2 : 0);
  if (out_size < need + 1)
    return 0;
  gsize o = 0;
  for (gsize i = 0; i < len; i += 3)
    {
      gsize n = MIN (len - i, 3);
      guint32 v = 0;
      for (gsize k = 0; k < n; k++)
        v |= (guint32) in[i + k] << (8 * k);
      gsize chars = n == 3 ? 5 : n == 2 ? 4 : 2;
      for (gsize k = 0; k < chars; k++)
        {
          out[o++] = st_base38_alphabet[v % 38];
          v /= 38;
        }
    }
  out[o] = '\0';
  return o;
}

static int
st_base38_value (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'A' && c <= 'Z')
    return 10 + (c - 'A');
  if (c == '-')
    return 36;
  if (c == '.')
    return 37;
  return -1;
}

gboolean
st_matter_base38_decode (const char *in, gsize len, guint8 *out, gsize out_size,
                         gsize *out_len, GError **error)
{
  gsize rest = len % 5;
  if (rest == 1 || rest == 3)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("The base38 text has %zu characters, which no whole number of "
                     "bytes gives: the code is cut or has extra characters."), len);
      return FALSE;
    }
  gsize need = len / 5 * 3 + (rest == 4 ? 2 : rest == 2 ? 1 : 0);
  if (need > out_size)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("The base38 text is too long (%zu characters)."), len);
      return FALSE;
    }
  gsize o = 0;
  for (gsize i = 0; i < len; i += 5)
    {
      gsize chars = MIN (len - i, 5);
      gsize bytes = chars == 5 ? 3 : chars == 4 ? 2 : 1;
      guint32 v = 0;
      for (gsize k = chars; k-- > 0;)
        {
          int d = st_base38_value (in[i + k]);
          if (d < 0)
            {
              g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           _("Character %zu of the code (byte 0x%02x) is not one of "
                             "0-9, A-Z, '-' and '.'."), i + k + 1, (guint) (guint8) in[i + k]);
              return FALSE;
            }
          v = v * 38 + (guint32) d; /* at most 38^5 - 1 < 2^32 */
        }
      if (v >> (8 * bytes) != 0)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       _("Characters %zu to %zu of the code are worth "
                         "more than %zu bytes hold: it is not a base38 code."),
                       i + 1, i + chars, bytes);
          return FALSE;
        }
      for (gsize k = 0; k < bytes; k++)
        out[o++] = (guint8) (v >> (8 * k));
    }
  *out_len = o;
  return TRUE;
}

/* --- the packed payload --- */

static void
st_bits_put (guint8 *buf, guint *at, guint64 value, guint nbits)
{
  for (guint k = 0; k < nbits; k++, (*at)++)
    if ((value >> k) & 1)
      buf[*at / 8] |= (guint8) (1u << (*at % 8));
}

static guint64
st_bits_get (const guint8 *buf, guint *at, guint nbits)
{
  guint64 v = 0;
  for (guint k = 0; k < nbits; k++, (*at)++)
    if ((buf[*at / 8] >> (*at % 8)) & 1)
      v |= (guint64) 1 << k;
  return v;
}

gchar *
st_matter_qr_encode (const StMatterPayload *p, GError **error)
{
  if (!st_matter_payload_check (p, error))
    return NULL;
  guint8 buf[ST_MATTER_PAYLOAD_BYTES] = { 0 };
  guint at = 0;
  st_bits_put (buf, &at, p->version, ST_MATTER_BITS_VERSION);
  st_bits_put (buf, &at, p->vendor_id, ST_MATTER_BITS_VID);
  st_bits_put (buf, &at, p->product_id, ST_MATTER_BITS_PID);
  st_bits_put (buf, &at, p->flow, ST_MATTER_BITS_FLOW);
  st_bits_put (buf, &at, p->discovery, ST_MATTER_BITS_DISCOVERY);
  st_bits_put (buf, &at, p->discriminator, ST_MATTER_BITS_DISCRIMINATOR);
  st_bits_put (buf, &at, p->passcode, ST_MATTER_BITS_PASSCODE);
  st_bits_put (buf, &at, 0, ST_MATTER_BITS_PADDING);
  g_assert (at == 8 * ST_MATTER_PAYLOAD_BYTES);
  char text[ST_MATTER_QR_LEN];
  memcpy (text, ST_MATTER_QR_PREFIX, 3);
  gsize n = st_matter_base38_encode (buf, sizeof buf, text + 3, sizeof text - 3);
  g_assert (n == ST_MATTER_QR_BASE38_LEN);
  memset (buf, 0, sizeof buf);
  return g_strdup (text);
}

gboolean
st_matter_qr_parse (const char *text, gsize len, StMatterPayload *p, GError **error)
{
  if (len > ST_MATTER_TEXT_MAX)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("The QR text is %zu bytes long; a Matter QR code of this "
                     "station is %d: scan the unit's label again."), len, ST_MATTER_QR_LEN - 1);
      return FALSE;
    }
  if (len < 3 || memcmp (text, ST_MATTER_QR_PREFIX, 3) != 0)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           _("The QR text does not start with MT:, so it is not a Matter onboarding "
                             "code: scan the unit's Matter label."));
      return FALSE;
    }
  const char *b38 = text + 3;
  gsize b38_len = len - 3;
  if (memchr (b38, '*', b38_len) != NULL)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           _("The QR text holds several onboarding payloads joined by '*'; a unit's "
                             "label holds one."));
      return FALSE;
    }
  if (b38_len > ST_MATTER_QR_BASE38_LEN)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("The QR text has %zu characters after MT:, more than the 19 of "
                     "the payload: it carries optional data, which this station's labels never "
                     "have."), b38_len);
      return FALSE;
    }
  if (b38_len < ST_MATTER_QR_BASE38_LEN)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("The QR text has %zu characters after MT:, fewer than the 19 "
                     "of the payload: it is cut; scan the label again."), b38_len);
      return FALSE;
    }
  guint8 buf[ST_MATTER_PAYLOAD_BYTES];
  gsize n = 0;
  if (!st_matter_base38_decode (b38, b38_len, buf, sizeof buf, &n, error))
    {
      g_prefix_error (error, _("The QR text is not a Matter onboarding code: "));
      return FALSE;
    }
  g_assert (n == ST_MATTER_PAYLOAD_BYTES);
  StMatterPayload q = { 0 };
  guint at = 0;
  q.version = (guint8) st_bits_get (buf, &at, ST_MATTER_BITS_VERSION);
  q.vendor_id = (guint16) st_bits_get (buf, &at, ST_MATTER_BITS_VID);
  q.product_id = (guint16) st_bits_get (buf, &at, ST_MATTER_BITS_PID);
  q.flow = (guint8) st_bits_get (buf, &at, ST_MATTER_BITS_FLOW);
  q.discovery = (guint8) st_bits_get (buf, &at, ST_MATTER_BITS_DISCOVERY);
  q.discriminator = (guint16) st_bits_get (buf, &at, ST_MATTER_BITS_DISCRIMINATOR);
  q.passcode = (guint32) st_bits_get (buf, &at, ST_MATTER_BITS_PASSCODE);
  guint padding = (guint) st_bits_get (buf, &at, ST_MATTER_BITS_PADDING);
  memset (buf, 0, sizeof buf);
  if (padding != 0)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           _("The QR text's padding bits are not zero: it is not a valid Matter "
                             "onboarding code."));
      return FALSE;
    }
  if (!st_matter_payload_check (&q, error))
    {
      g_prefix_error (error, _("The QR text is not a valid Matter onboarding code: "));
      return FALSE;
    }
  *p = q;
  return TRUE;
}

/* --- Verhoeff --- */

/* The dihedral group D5's multiplication, the position permutation and the
 * inverses (Verhoeff 1969; the tables as the Matter specification, 5.1.4.2,
 * refers to them). */
static const guint8 st_verhoeff_d[10][10] = {
  { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 },
  { 1, 2, 3, 4, 0, 6, 7, 8, 9, 5 },
  { 2, 3, 4, 0, 1, 7, 8, 9, 5, 6 },
  { 3, 4, 0, 1, 2, 8, 9, 5, 6, 7 },
  { 4, 0, 1, 2, 3, 9, 5, 6, 7, 8 },
  { 5, 9, 8, 7, 6, 0, 4, 3, 2, 1 },
  { 6, 5, 9, 8, 7, 1, 0, 4, 3, 2 },
  { 7, 6, 5, 9, 8, 2, 1, 0, 4, 3 },
  { 8, 7, 6, 5, 9, 3, 2, 1, 0, 4 },
  { 9, 8, 7, 6, 5, 4, 3, 2, 1, 0 },
};
static const guint8 st_verhoeff_p[8][10] = {
  { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 },
  { 1, 5, 7, 6, 2, 8, 3, 0, 9, 4 },
  { 5, 8, 0, 3, 7, 9, 6, 1, 4, 2 },
  { 8, 9, 1, 6, 0, 4, 3, 5, 2, 7 },
  { 9, 4, 5, 3, 1, 2, 6, 8, 7, 0 },
  { 4, 2, 8, 6, 5, 7, 3, 9, 0, 1 },
  { 2, 7, 9, 3, 8, 0, 6, 4, 1, 5 },
  { 7, 0, 4, 6, 9, 1, 3, 2, 5, 8 },
};
static const guint8 st_verhoeff_inv[10] = { 0, 4, 3, 2, 1, 5, 6, 7, 8, 9 };

/* The running check over @len digits, the rightmost at position @first. */
static int
st_verhoeff_run (const char *digits, gsize len, guint first)
{
  guint c = 0;
  for (gsize i = 0; i < len; i++)
    {
      char ch = digits[len - 1 - i];
      if (ch < '0' || ch > '9')
        return -1;
      c = st_verhoeff_d[c][st_verhoeff_p[(i + first) % 8][ch - '0']];
    }
  return (int) c;
}

char
st_matter_verhoeff_digit (const char *digits, gsize len)
{
  int c = st_verhoeff_run (digits, len, 1);
  return c < 0 ? 0 : (char) ('0' + st_verhoeff_inv[c]);
}

gboolean
st_matter_verhoeff_valid (const char *digits, gsize len)
{
  return len >= 1 && st_verhoeff_run (digits, len, 0) == 0;
}

/* --- the manual pairing code --- */

gchar *
st_matter_manual_encode (const StMatterPayload *p, GError **error)
{
  if (!st_matter_payload_check (p, error))
    return NULL;
  gboolean vid_pid = p->flow != ST_MATTER_FLOW_STANDARD;
  guint short_disc = p->discriminator >> 8;
  guint chunk1 = (vid_pid ? 1u << 2 : 0) | short_disc >> 2;
  guint chunk2 = (short_disc & 0x3) << 14 | (p->passcode & 0x3FFF);
  guint chunk3 = p->passcode >> 14;
  char code[ST_MATTER_MANUAL_LONG_LEN + 1];
  int n;
  if (vid_pid)
    n = g_snprintf (code, sizeof code, "%u%05u%04u%05u%05u", chunk1, chunk2, chunk3,
                    (guint) p->vendor_id, (guint) p->product_id);
  else
    n = g_snprintf (code, sizeof code, "%u%05u%04u", chunk1, chunk2, chunk3);
  g_assert (n == (vid_pid ? ST_MATTER_MANUAL_LONG_LEN : ST_MATTER_MANUAL_SHORT_LEN) - 1);
  code[n] = st_matter_verhoeff_digit (code, (gsize) n);
  code[n + 1] = '\0';
  gchar *out = g_strdup (code);
  memset (code, 0, sizeof code);
  return out;
}

static guint
st_digits_value (const char *d, gsize n)
{
  guint v = 0;
  for (gsize i = 0; i < n; i++)
    v = v * 10 + (guint) (d[i] - '0');
  return v;
}

gboolean
st_matter_manual_parse (const char *text, gsize len, StMatterManualCode *code, GError **error)
{
  if (len > ST_MATTER_TEXT_MAX)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("The manual pairing code is %zu characters long; it has 11 "
                     "or 21 digits: type it again from the label."), len);
      return FALSE;
    }
  char d[ST_MATTER_MANUAL_LONG_LEN];
  gsize n = 0;
  for (gsize i = 0; i < len; i++)
    {
      char c = text[i];
      if (c == '-' || c == ' ')
        continue;
      if (c < '0' || c > '9')
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       _("Character %zu of the manual pairing code (byte 0x%02x) "
                         "is not a digit: the code has digits only, with '-' or spaces between "
                         "groups."), i + 1, (guint) (guint8) c);
          return FALSE;
        }
      if (n == sizeof d)
        {
          g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                               _("The manual pairing code has more than 21 digits: type it again "
                                 "from the label."));
          return FALSE;
        }
      d[n++] = c;
    }
  if (n != ST_MATTER_MANUAL_SHORT_LEN && n != ST_MATTER_MANUAL_LONG_LEN)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("The manual pairing code has %zu digits; it has 11, or 21 "
                     "with vendor and product: type it again from the label."), n);
      return FALSE;
    }
  if (!st_matter_verhoeff_valid (d, n))
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           _("The manual pairing code's check digit (its last) does not match the "
                             "others: a digit is wrong or two are swapped; type it again from the "
                             "label."));
      return FALSE;
    }
  guint chunk1 = st_digits_value (d, 1);
  guint chunk2 = st_digits_value (d + 1, 5);
  guint chunk3 = st_digits_value (d + 6, 4);
  gboolean vid_pid = (chunk1 & 0x4) != 0;
  if (chunk1 > 7)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("The manual pairing code starts with %u, a version this station does not "
                     "know (the first digit is 0 to 7)."), chunk1);
      return FALSE;
    }
  if (vid_pid != (n == ST_MATTER_MANUAL_LONG_LEN))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("The manual pairing code's first digit says it has %d digits, but it has "
                     "%zu."),
                   vid_pid ? ST_MATTER_MANUAL_LONG_LEN : ST_MATTER_MANUAL_SHORT_LEN, n);
      return FALSE;
    }
  if (chunk2 > 0xFFFF || chunk3 > 0x1FFF)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           _("The manual pairing code's digits 2 to 10 are out of range: it is not "
                             "a Matter code."));
      return FALSE;
    }
  StMatterManualCode c = { 0 };
  c.short_discriminator = (guint8) ((chunk1 & 0x3) << 2 | chunk2 >> 14);
  c.passcode = (chunk2 & 0x3FFF) | chunk3 << 14;
  c.has_vid_pid = vid_pid;
  if (vid_pid)
    {
      guint vid = st_digits_value (d + 10, 5), pid = st_digits_value (d + 15, 5);
      if (vid > 0xFFFF || pid > 0xFFFF)
        {
          g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                               _("The manual pairing code's vendor or product id is above 65535: "
                                 "it is not a Matter code."));
          return FALSE;
        }
      c.vendor_id = (guint16) vid;
      c.product_id = (guint16) pid;
    }
  memset (d, 0, sizeof d);
  if (!st_matter_passcode_valid (c.passcode))
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           _("The manual pairing code holds a setup passcode that is not allowed: "
                             "it is not a valid Matter code."));
      return FALSE;
    }
  *code = c;
  return TRUE;
}

gboolean
st_matter_manual_matches (const StMatterManualCode *code, const StMatterPayload *p)
{
  if (code->short_discriminator != p->discriminator >> 8 || code->passcode != p->passcode)
    return FALSE;
  if (code->has_vid_pid != (p->flow != ST_MATTER_FLOW_STANDARD))
    return FALSE;
  return !code->has_vid_pid
         || (code->vendor_id == p->vendor_id && code->product_id == p->product_id);
}
