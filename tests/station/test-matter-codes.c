/* Matter onboarding codes and the SPAKE2+ verifier (issue 18;
 * station/st-matter-codes.c, station/st-matter-spake2p.c).
 *
 * /matter/passcode: the invalid passcodes are refused; generated ones are
 *   valid and spread over the whole range.
 * /matter/discriminator: random ones cover 12 bits; sequential ones walk
 *   [lo, hi] and wrap; a bad range is refused.
 * /matter/verhoeff: the published example, and the scheme's promise: every
 *   single wrong digit and every swap of two unequal neighbours is caught.
 * /matter/base38: round trips of every length, refusals.
 * /matter/qr/vector, /matter/manual/vector, /matter/manual/sdk: the
 *   published vectors.
 * /matter/qr/layout: the payload packed independently (a 128-bit integer,
 *   fields shifted into place) and base38-encoded gives the same text.
 * /matter/roundtrip: random payloads encoded and parsed back.
 * /matter/qr/refused, /matter/manual/refused: hostile texts.
 * /matter/spake2p/vector: the SDK's default test verifier.
 * /matter/spake2p/python: random passcodes, salts and iterations against
 *   tests/matter/spake2p-verifier.py (python3-cryptography).
 * /matter/spake2p/refused: salt and iteration bounds, invalid passcodes,
 *   and verifier_matches() on right and wrong verifiers. */
#include <gio/gio.h>
#include <openssl/rand.h>
#include <string.h>

#include "st-error.h"
#include "st-matter-codes.h"
#include "st-matter-spake2p.h"

static const char st_alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-.";

/* The published example of the Matter SDK (connectedhomeip): every example
 * app with the test commissionable data prints "SetupQRCode:
 * [MT:Y.K9042C00KA0648G00]" and "Manual pairing code: [34970112332]" (e.g.
 * examples/lighting-app/nrfconnect/README.md), and issue 18 quotes them.
 * The discovery capabilities are BLE (0x02): of the 256 values only that
 * one gives this text (checked below). */
static const StMatterPayload st_sdk_payload = {
  .version = 0, .vendor_id = 0xFFF1, .product_id = 0x8000, .flow = ST_MATTER_FLOW_STANDARD,
  .discovery = ST_MATTER_DISCOVERY_BLE, .discriminator = 3840, .passcode = 20202021,
};
static const char st_sdk_qr[] = "MT:Y.K9042C00KA0648G00";
static const char st_sdk_manual[] = "34970112332";

static guint32
st_rand32 (void)
{
  guint32 v;
  g_assert_cmpint (RAND_bytes ((unsigned char *) &v, sizeof v), ==, 1);
  return v;
}

static void
test_passcode (void)
{
  static const guint32 invalid[] = { 0, 11111111, 22222222, 33333333, 44444444, 55555555,
                                     66666666, 77777777, 88888888, 99999999, 12345678,
                                     87654321, 100000000, 134217727, G_MAXUINT32 };
  for (gsize i = 0; i < G_N_ELEMENTS (invalid); i++)
    g_assert_false (st_matter_passcode_valid (invalid[i]));
  static const guint32 valid[] = { 1, 2, 20202021, 11111110, 11111112, 12345677, 87654322,
                                   99999998 };
  for (gsize i = 0; i < G_N_ELEMENTS (valid); i++)
    g_assert_true (st_matter_passcode_valid (valid[i]));

  /* 20000 draws: all valid, and each tenth of 1..99999998 gets its share
   * (2000 expected, about 42 standard deviation; 400 is over 9) */
  guint tenths[10] = { 0 };
  for (guint i = 0; i < 20000; i++)
    {
      guint32 p = 0;
      g_autoptr(GError) error = NULL;
      g_assert_true (st_matter_passcode_generate (&p, &error));
      g_assert_no_error (error);
      g_assert_true (st_matter_passcode_valid (p));
      tenths[(p - 1) / 10000000u]++;
    }
  for (guint k = 0; k < 10; k++)
    {
      g_test_message ("passcodes in tenth %u: %u", k, tenths[k]);
      g_assert_cmpuint (tenths[k], >, 1600);
      g_assert_cmpuint (tenths[k], <, 2400);
    }
}

static void
test_discriminator (void)
{
  guint8 seen[4096] = { 0 };
  guint distinct = 0;
  for (guint i = 0; i < 40000; i++)
    {
      guint16 d = 0xFFFF;
      g_assert_true (st_matter_discriminator_random (&d, NULL));
      g_assert_cmpuint (d, <=, 4095);
      distinct += !seen[d];
      seen[d] = 1;
    }
  /* 40000 draws of 4096 values miss one with probability 4096 * e^-9.8 */
  g_test_message ("distinct random discriminators: %u", distinct);
  g_assert_cmpuint (distinct, >, 4080);

  static const guint16 walk[] = { 100, 101, 102, 103, 100, 101, 102, 103, 100 };
  for (guint64 c = 0; c < G_N_ELEMENTS (walk); c++)
    {
      guint16 d = 0;
      g_assert_true (st_matter_discriminator_sequential (100, 103, c, &d, NULL));
      g_assert_cmpuint (d, ==, walk[c]);
    }
  guint16 d = 0;
  g_assert_true (st_matter_discriminator_sequential (0, 4095, 4096 + 7, &d, NULL));
  g_assert_cmpuint (d, ==, 7);
  g_assert_true (st_matter_discriminator_sequential (4095, 4095, G_MAXUINT64, &d, NULL));
  g_assert_cmpuint (d, ==, 4095);
  g_autoptr(GError) e1 = NULL, e2 = NULL;
  g_assert_false (st_matter_discriminator_sequential (5, 4, 0, &d, &e1));
  g_assert_error (e1, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_assert_false (st_matter_discriminator_sequential (0, 4096, 0, &d, &e2));
  g_assert_error (e2, ST_ERROR, ST_ERROR_INVALID_DATA);
}

static void
test_verhoeff (void)
{
  /* the worked example of Verhoeff's scheme (Wikipedia, "Verhoeff
   * algorithm"): 236 has the check digit 3 */
  g_assert_cmpint (st_matter_verhoeff_digit ("236", 3), ==, '3');
  g_assert_true (st_matter_verhoeff_valid ("2363", 4));
  g_assert_false (st_matter_verhoeff_valid ("2364", 4));
  g_assert_cmpint (st_matter_verhoeff_digit ("23a", 3), ==, 0);

  for (guint round = 0; round < 300; round++)
    {
      char code[22];
      gsize n = 20;
      for (gsize i = 0; i < n; i++)
        code[i] = (char) ('0' + st_rand32 () % 10);
      code[n] = st_matter_verhoeff_digit (code, n);
      code[n + 1] = '\0';
      g_assert_true (st_matter_verhoeff_valid (code, n + 1));
      for (gsize i = 0; i <= n; i++)
        {
          char keep = code[i];
          for (char c = '0'; c <= '9'; c++)
            {
              if (c == keep)
                continue;
              code[i] = c;
              g_assert_false (st_matter_verhoeff_valid (code, n + 1));
            }
          code[i] = keep;
          if (i < n && code[i] != code[i + 1])
            {
              code[i] = code[i + 1];
              code[i + 1] = keep;
              g_assert_false (st_matter_verhoeff_valid (code, n + 1));
              code[i + 1] = code[i];
              code[i] = keep;
            }
        }
    }
}

static void
test_base38 (void)
{
  for (gsize len = 0; len <= 40; len++)
    {
      guint8 in[40], back[40];
      RAND_bytes (in, (int) len);
      if (len >= 3)
        memset (in, 0xFF, 3); /* the largest chunk */
      char text[80];
      gsize n = st_matter_base38_encode (in, len, text, sizeof text);
      g_assert_cmpuint (n, ==, len / 3 * 5 + (len % 3 == 2 ? 4 : len % 3 == 1 ? 2 : 0));
      g_assert_cmpuint (strspn (text, st_alphabet), ==, n);
      gsize got = 0;
      g_autoptr(GError) error = NULL;
      g_assert_true (st_matter_base38_decode (text, n, back, sizeof back, &got, &error));
      g_assert_no_error (error);
      g_assert_cmpmem (back, got, in, len);
    }
  char small[5];
  guint8 three[3] = { 1, 2, 3 };
  g_assert_cmpuint (st_matter_base38_encode (three, 3, small, sizeof small), ==, 0);

  static const char *bad[] = {
    "A",       /* one character: no byte */
    "ABC",     /* three: no whole bytes */
    "..",      /* 1443 > 255 */
    "....",    /* > 65535 */
    ".....",   /* > 2^24 - 1 */
    "a0",      /* lower case */
    "0 ",      /* a space */
    "0*",
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      guint8 out[8];
      gsize got = 0;
      g_autoptr(GError) error = NULL;
      g_assert_false (st_matter_base38_decode (bad[i], strlen (bad[i]), out, sizeof out, &got,
                                               &error));
      g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
    }
  guint8 one[1];
  gsize got = 0;
  g_autoptr(GError) error = NULL;
  g_assert_false (st_matter_base38_decode ("00000", 5, one, sizeof one, &got, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
}

static void
test_qr_vector (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *qr = st_matter_qr_encode (&st_sdk_payload, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (qr, ==, st_sdk_qr);
  StMatterPayload p;
  memset (&p, 0xAA, sizeof p);
  g_assert_true (st_matter_qr_parse (st_sdk_qr, strlen (st_sdk_qr), &p, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (p.version, ==, 0);
  g_assert_cmpuint (p.vendor_id, ==, 0xFFF1);
  g_assert_cmpuint (p.product_id, ==, 0x8000);
  g_assert_cmpuint (p.flow, ==, 0);
  g_assert_cmpuint (p.discovery, ==, 2);
  g_assert_cmpuint (p.discriminator, ==, 3840);
  g_assert_cmpuint (p.passcode, ==, 20202021);
  /* only BLE (0x02) gives the published text */
  guint hits = 0;
  for (guint disc = 0; disc < 256; disc++)
    {
      StMatterPayload q = st_sdk_payload;
      q.discovery = (guint8) disc;
      g_autofree gchar *t = st_matter_qr_encode (&q, NULL);
      hits += g_strcmp0 (t, st_sdk_qr) == 0 ? disc + 1 : 0;
    }
  g_assert_cmpuint (hits, ==, 2 + 1);
}

static void
test_manual_vector (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *code = st_matter_manual_encode (&st_sdk_payload, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (code, ==, st_sdk_manual);
  StMatterManualCode m;
  g_assert_true (st_matter_manual_parse (st_sdk_manual, strlen (st_sdk_manual), &m, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (m.short_discriminator, ==, 3840 >> 8);
  g_assert_cmpuint (m.passcode, ==, 20202021);
  g_assert_false (m.has_vid_pid);
  g_assert_true (st_matter_manual_matches (&m, &st_sdk_payload));
  /* as labels print it, in groups */
  g_assert_true (st_matter_manual_parse ("3497-011-2332", 13, &m, &error));
  g_assert_no_error (error);
  g_assert_true (st_matter_manual_matches (&m, &st_sdk_payload));
  StMatterPayload other = st_sdk_payload;
  other.passcode = 20202022;
  g_assert_false (st_matter_manual_matches (&m, &other));
}

/* The SDK's own unit test of the manual code, src/setup_payload/tests/
 * TestManualCode.cpp in connectedhomeip (TestDecimalRepresentation_*):
 * passcode 12345679, discriminator 2560; the expected digits there are
 * given without the check digit, which the test appends with its Verhoeff
 * code, so the last digit is held to st_matter_verhoeff_valid() (itself
 * held to the published vector above and to Verhoeff's promises). */
static void
test_manual_sdk (void)
{
  struct { guint8 flow; guint16 vid, pid; const char *digits; } v[] = {
    { ST_MATTER_FLOW_STANDARD, 0, 0, "2412950753" },
    { ST_MATTER_FLOW_STANDARD, 45367, 14526, "2412950753" },
    { ST_MATTER_FLOW_CUSTOM, 0, 0, "64129507530000000000" },
    { ST_MATTER_FLOW_CUSTOM, 1, 1, "64129507530000100001" },
    { ST_MATTER_FLOW_CUSTOM, 45367, 14526, "64129507534536714526" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (v); i++)
    {
      StMatterPayload p = { .flow = v[i].flow, .vendor_id = v[i].vid, .product_id = v[i].pid,
                            .discriminator = 2560, .passcode = 12345679 };
      g_autoptr(GError) error = NULL;
      g_autofree gchar *code = st_matter_manual_encode (&p, &error);
      g_assert_no_error (error);
      gsize n = strlen (v[i].digits);
      g_assert_cmpuint (strlen (code), ==, n + 1);
      g_assert_cmpmem (code, n, v[i].digits, n);
      g_assert_true (st_matter_verhoeff_valid (code, n + 1));
      StMatterManualCode m;
      g_assert_true (st_matter_manual_parse (code, n + 1, &m, &error));
      g_assert_no_error (error);
      g_assert_cmpuint (m.passcode, ==, 12345679);
      g_assert_cmpuint (m.short_discriminator, ==, 2560 >> 8);
      g_assert_true (st_matter_manual_matches (&m, &p));
    }
}

/* The payload packed by shifting each field into a 128-bit integer, as the
 * Matter specification's table of the packed payload lays it out (bit 0 is
 * the version's lowest), then base38 by division: written apart from the
 * station's bit writer. */
static void
st_pack_independent (const StMatterPayload *p, guint64 padding, char out[ST_MATTER_QR_LEN])
{
  unsigned __int128 v = 0;
  v |= (unsigned __int128) p->version;
  v |= (unsigned __int128) p->vendor_id << 3;
  v |= (unsigned __int128) p->product_id << 19;
  v |= (unsigned __int128) p->flow << 35;
  v |= (unsigned __int128) p->discovery << 37;
  v |= (unsigned __int128) p->discriminator << 45;
  v |= (unsigned __int128) p->passcode << 57;
  v |= (unsigned __int128) padding << 84;
  guint8 bytes[11];
  for (int i = 0; i < 11; i++)
    bytes[i] = (guint8) (v >> (8 * i));
  memcpy (out, "MT:", 3);
  gsize o = 3;
  for (int i = 0; i < 11; i += 3)
    {
      int n = MIN (11 - i, 3);
      guint32 chunk = 0;
      for (int k = n - 1; k >= 0; k--)
        chunk = chunk * 256 + bytes[i + k];
      for (int k = 0; k < (n == 3 ? 5 : 4); k++, chunk /= 38)
        out[o++] = st_alphabet[chunk % 38];
    }
  out[o] = '\0';
}

static StMatterPayload
st_random_payload (void)
{
  StMatterPayload p = { 0 };
  p.vendor_id = (guint16) st_rand32 ();
  p.product_id = (guint16) st_rand32 ();
  p.flow = (guint8) (st_rand32 () % 3);
  p.discovery = (guint8) st_rand32 ();
  g_assert_true (st_matter_discriminator_random (&p.discriminator, NULL));
  g_assert_true (st_matter_passcode_generate (&p.passcode, NULL));
  return p;
}

static void
test_qr_layout (void)
{
  char want[ST_MATTER_QR_LEN];
  st_pack_independent (&st_sdk_payload, 0, want);
  g_assert_cmpstr (want, ==, st_sdk_qr);
  for (guint i = 0; i < 2000; i++)
    {
      StMatterPayload p = st_random_payload ();
      st_pack_independent (&p, 0, want);
      g_autofree gchar *qr = st_matter_qr_encode (&p, NULL);
      g_assert_cmpstr (qr, ==, want);
    }
}

static void
test_roundtrip (void)
{
  for (guint i = 0; i < 5000; i++)
    {
      StMatterPayload p = st_random_payload ();
      g_autoptr(GError) error = NULL;
      g_autofree gchar *qr = st_matter_qr_encode (&p, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (strlen (qr), ==, ST_MATTER_QR_LEN - 1);
      StMatterPayload q;
      g_assert_true (st_matter_qr_parse (qr, strlen (qr), &q, &error));
      g_assert_no_error (error);
      g_assert_cmpmem (&q, sizeof q, &p, sizeof p);

      g_autofree gchar *code = st_matter_manual_encode (&p, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (strlen (code), ==,
                        p.flow == ST_MATTER_FLOW_STANDARD ? ST_MATTER_MANUAL_SHORT_LEN
                                                          : ST_MATTER_MANUAL_LONG_LEN);
      StMatterManualCode m;
      g_assert_true (st_matter_manual_parse (code, strlen (code), &m, &error));
      g_assert_no_error (error);
      g_assert_true (st_matter_manual_matches (&m, &p));
      g_assert_cmpuint (m.passcode, ==, p.passcode);
      g_assert_cmpuint (m.short_discriminator, ==, p.discriminator >> 8);
      if (m.has_vid_pid)
        {
          g_assert_cmpuint (m.vendor_id, ==, p.vendor_id);
          g_assert_cmpuint (m.product_id, ==, p.product_id);
        }
    }
}

static void
st_qr_refused (const char *text, gsize len, const char *needle)
{
  StMatterPayload p;
  g_autoptr(GError) error = NULL;
  g_assert_false (st_matter_qr_parse (text, len, &p, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_test_message ("refused: %s", error->message);
  if (needle != NULL && strstr (error->message, needle) == NULL)
    g_error ("the refusal of the QR text does not say '%s': %s", needle, error->message);
}

static void
test_qr_refused (void)
{
  char buf[128];
  st_qr_refused ("", 0, "MT:");
  st_qr_refused ("mt:Y.K9042C00KA0648G00", 22, "MT:");
  st_qr_refused ("MT:Y.K9042C00KA0648G0", 21, "cut");
  st_qr_refused ("MT:Y.K9042C00KA0648G000", 23, "optional data");
  st_qr_refused ("MT:Y.K9042C00KA0648G00*MT:Y.K9042C00KA0648G00", 45, "'*'");
  st_qr_refused ("MT:y.K9042C00KA0648G00", 22, "Character 1");
  st_qr_refused ("MT:Y.K9042C00KA0648G0 ", 22, "Character 19");
  st_qr_refused ("MT:Y.K9042C\0000KA0648G00", 22, "Character 9");
  memset (buf, 'A', sizeof buf);
  memcpy (buf, "MT:", 3);
  st_qr_refused (buf, sizeof buf, "bytes long");
  /* a chunk worth more than 3 bytes */
  st_qr_refused ("MT:.....42C00KA0648G00", 22, "worth more");

  /* fields out of range, packed independently */
  char t[ST_MATTER_QR_LEN];
  StMatterPayload p = st_sdk_payload;
  p.version = 1;
  st_pack_independent (&p, 0, t);
  st_qr_refused (t, strlen (t), "version");
  p = st_sdk_payload;
  st_pack_independent (&p, 0x8, t);
  st_qr_refused (t, strlen (t), "padding");
  p.flow = 3;
  st_pack_independent (&p, 0, t);
  st_qr_refused (t, strlen (t), "reserved");
  static const guint32 bad_passcodes[] = { 0, 11111111, 12345678, 87654321, 99999999,
                                           100000000, (1u << 27) - 1 };
  for (gsize i = 0; i < G_N_ELEMENTS (bad_passcodes); i++)
    {
      p = st_sdk_payload;
      p.passcode = bad_passcodes[i];
      st_pack_independent (&p, 0, t);
      st_qr_refused (t, strlen (t), "passcode");
      g_autoptr(GError) error = NULL;
      g_assert_null (st_matter_qr_encode (&p, &error));
      g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
    }
  p = st_sdk_payload;
  p.discriminator = 4096;
  g_autoptr(GError) error = NULL;
  g_assert_null (st_matter_qr_encode (&p, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
}

static void
st_manual_refused (const char *text, const char *needle)
{
  StMatterManualCode m;
  g_autoptr(GError) error = NULL;
  g_assert_false (st_matter_manual_parse (text, strlen (text), &m, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_test_message ("refused '%s': %s", text, error->message);
  if (needle != NULL && strstr (error->message, needle) == NULL)
    g_error ("the refusal of '%s' does not say '%s': %s", text, needle, error->message);
}

/* @digits (without the check digit) and the right check digit. */
static gchar *
st_with_check (const char *digits)
{
  char c = st_matter_verhoeff_digit (digits, strlen (digits));
  g_assert_cmpint (c, !=, 0);
  return g_strdup_printf ("%s%c", digits, c);
}

static void
test_manual_refused (void)
{
  /* every single wrong digit of the vector */
  char code[12];
  memcpy (code, st_sdk_manual, sizeof code);
  for (gsize i = 0; i < 11; i++)
    {
      char keep = code[i];
      for (char c = '0'; c <= '9'; c++)
        if (c != keep)
          {
            code[i] = c;
            st_manual_refused (code, NULL);
          }
      code[i] = keep;
    }
  st_manual_refused ("34970112333", "check digit");
  st_manual_refused ("43970112332", "check digit"); /* two swapped */
  st_manual_refused ("3497011233", "10 digits");
  st_manual_refused ("349701123320", "12 digits");
  st_manual_refused ("3497011233200000000000", "more than 21");
  st_manual_refused ("3497O112332", "Character 5");
  st_manual_refused ("34970112332\n", "Character 12");
  st_manual_refused ("", "0 digits");
  char long_text[100];
  memset (long_text, '-', sizeof long_text - 1);
  long_text[sizeof long_text - 1] = '\0';
  st_manual_refused (long_text, "characters long");

  /* right check digits around wrong contents */
  g_autofree gchar *first8 = st_with_check ("8497011233");
  st_manual_refused (first8, "first digit");
  g_autofree gchar *says_long = st_with_check ("7497011233");
  st_manual_refused (says_long, "21 digits");
  g_autofree gchar *says_short = st_with_check ("34970112336553332768");
  st_manual_refused (says_short, "11 digits");
  g_autofree gchar *chunk2 = st_with_check ("3999991233");
  st_manual_refused (chunk2, "out of range");
  g_autofree gchar *chunk3 = st_with_check ("3497019999");
  st_manual_refused (chunk3, "out of range");
  g_autofree gchar *vid = st_with_check ("74970112336553632768");
  st_manual_refused (vid, "above 65535");
  /* passcode 11111111 = 678 * 16384 + 2759: chunk2 02759 (short
   * discriminator 0), chunk3 0678 */
  g_autofree gchar *bad_pass = st_with_check ("0027590678");
  st_manual_refused (bad_pass, "passcode");
  /* passcode 0 */
  g_autofree gchar *zero_pass = st_with_check ("0000000000");
  st_manual_refused (zero_pass, "passcode");
}

/* The SDK's default test verifier: passcode 20202021, salt "SPAKE2P Key
 * Salt", 1000 iterations. Published by the Matter SDK (connectedhomeip) in
 * src/tools/spake2p/README.md ("spake2p.py gen-verifier -p 20202021 -s
 * U1BBS0UyUCBLZXkgU2FsdA== -i 1000") and as
 * CHIP_DEVICE_CONFIG_USE_TEST_SPAKE2P_VERIFIER in
 * src/include/platform/CHIPDeviceConfig.h. */
static const char st_sdk_verifier_b64[] =
  "uWFwqugDNGiEck/po7KHwwMwwqZgN10XuyBajPGuyzUEV/iree4lOrao5GuwnlQ65CJzbeUB49s31EH+NEkg0JVI5MGCQ"
  "GMMT/SRPFNRODm3wH/MBiehuFc6FJ/NH6Rmzw==";

static void
test_spake2p_vector (void)
{
  gsize want_len = 0;
  g_autofree guchar *want = g_base64_decode (st_sdk_verifier_b64, &want_len);
  g_assert_cmpuint (want_len, ==, ST_MATTER_VERIFIER_LEN);
  guint8 v[ST_MATTER_VERIFIER_LEN];
  g_autoptr(GError) error = NULL;
  g_assert_true (st_matter_spake2p_verifier (20202021, (const guint8 *) "SPAKE2P Key Salt", 16,
                                             1000, v, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (v, sizeof v, want, want_len);
  g_assert_cmpuint (v[32], ==, 0x04); /* L uncompressed */
  g_assert_true (st_matter_spake2p_verifier_matches (want, want_len, 20202021,
                                                     (const guint8 *) "SPAKE2P Key Salt", 16,
                                                     1000, &error));
  g_assert_no_error (error);
}

static void
test_spake2p_python (void)
{
  enum { N = 6 };
  guint32 passcodes[N], iterations[N];
  gsize salt_lens[N];
  guint8 salts[N][ST_MATTER_SALT_MAX];
  for (guint i = 0; i < N; i++)
    {
      g_assert_true (st_matter_passcode_generate (&passcodes[i], NULL));
      salt_lens[i] = i == 0 ? ST_MATTER_SALT_MIN : i == 1 ? ST_MATTER_SALT_MAX
                                                          : 16 + st_rand32 () % 17;
      g_assert_true (st_matter_spake2p_salt_generate (salts[i], salt_lens[i], NULL));
      iterations[i] = i == 0 ? ST_MATTER_ITERATIONS_MIN : 1000 + st_rand32 () % 4000;
    }
  /* the bounds: the highest passcode, the highest count */
  passcodes[N - 1] = ST_MATTER_PASSCODE_MAX;
  iterations[N - 1] = ST_MATTER_ITERATIONS_MAX;
  g_autoptr(GString) input = g_string_new (NULL);
  for (guint i = 0; i < N; i++)
    {
      g_string_append_printf (input, "%u ", passcodes[i]);
      for (gsize k = 0; k < salt_lens[i]; k++)
        g_string_append_printf (input, "%02x", salts[i][k]);
      g_string_append_printf (input, " %u\n", iterations[i]);
    }

  g_autoptr(GError) error = NULL;
  const char *argv[] = { "/usr/bin/python3", ST_MATTER_SPAKE2P_PY, NULL };
  g_autoptr(GSubprocess) py = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDIN_PIPE
                                                         | G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
  g_assert_no_error (error);
  g_autofree gchar *out = NULL;
  g_assert_true (g_subprocess_communicate_utf8 (py, input->str, NULL, &out, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (py));
  g_assert_cmpint (g_subprocess_get_exit_status (py), ==, 0);
  g_auto(GStrv) lines = g_strsplit (out, "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, N + 1);
  for (guint i = 0; i < N; i++)
    {
      guint8 v[ST_MATTER_VERIFIER_LEN];
      g_assert_true (st_matter_spake2p_verifier (passcodes[i], salts[i], salt_lens[i],
                                                 iterations[i], v, &error));
      g_assert_no_error (error);
      g_autoptr(GString) hex = g_string_new (NULL);
      for (gsize k = 0; k < sizeof v; k++)
        g_string_append_printf (hex, "%02x", v[k]);
      g_test_message ("verifier %u (salt %zu bytes, %u iterations) = python3-cryptography's", i,
                      salt_lens[i], iterations[i]);
      g_assert_cmpstr (hex->str, ==, lines[i]);
    }
}

static void
test_spake2p_refused (void)
{
  const guint8 *salt = (const guint8 *) "SPAKE2P Key Salt and some more bytes";
  guint8 v[ST_MATTER_VERIFIER_LEN];
  struct { guint32 passcode; gsize salt_len; guint32 iterations; const char *needle; } bad[] = {
    { 20202021, 15, 1000, "16 to 32" },
    { 20202021, 33, 1000, "16 to 32" },
    { 20202021, 16, 999, "1000 to 100000" },
    { 20202021, 16, 100001, "1000 to 100000" },
    { 11111111, 16, 1000, "not allowed" },
    { 0, 16, 1000, "not allowed" },
    { 99999999, 16, 1000, "not allowed" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      g_assert_false (st_matter_spake2p_verifier (bad[i].passcode, salt, bad[i].salt_len,
                                                  bad[i].iterations, v, &error));
      g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
      g_assert_nonnull (strstr (error->message, bad[i].needle));
    }
  guint8 salt_buf[40];
  g_autoptr(GError) error = NULL;
  g_assert_false (st_matter_spake2p_salt_generate (salt_buf, 40, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);

  g_assert_true (st_matter_spake2p_verifier (20202021, salt, 16, 1000, v, &error));
  g_assert_no_error (error);
  /* another passcode, a changed byte, a short read: no match, no error */
  g_assert_false (st_matter_spake2p_verifier_matches (v, sizeof v, 20202022, salt, 16, 1000,
                                                      &error));
  g_assert_no_error (error);
  g_assert_false (st_matter_spake2p_verifier_matches (v, sizeof v, 20202021, salt, 17, 1000,
                                                      &error));
  g_assert_no_error (error);
  g_assert_false (st_matter_spake2p_verifier_matches (v, sizeof v - 1, 20202021, salt, 16, 1000,
                                                      &error));
  g_assert_no_error (error);
  v[96] ^= 1;
  g_assert_false (st_matter_spake2p_verifier_matches (v, sizeof v, 20202021, salt, 16, 1000,
                                                      &error));
  g_assert_no_error (error);
  v[96] ^= 1;
  g_assert_true (st_matter_spake2p_verifier_matches (v, sizeof v, 20202021, salt, 16, 1000,
                                                     &error));
  g_assert_no_error (error);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/matter/passcode", test_passcode);
  g_test_add_func ("/matter/discriminator", test_discriminator);
  g_test_add_func ("/matter/verhoeff", test_verhoeff);
  g_test_add_func ("/matter/base38", test_base38);
  g_test_add_func ("/matter/qr/vector", test_qr_vector);
  g_test_add_func ("/matter/manual/vector", test_manual_vector);
  g_test_add_func ("/matter/manual/sdk", test_manual_sdk);
  g_test_add_func ("/matter/qr/layout", test_qr_layout);
  g_test_add_func ("/matter/roundtrip", test_roundtrip);
  g_test_add_func ("/matter/qr/refused", test_qr_refused);
  g_test_add_func ("/matter/manual/refused", test_manual_refused);
  g_test_add_func ("/matter/spake2p/vector", test_spake2p_vector);
  g_test_add_func ("/matter/spake2p/python", test_spake2p_python);
  g_test_add_func ("/matter/spake2p/refused", test_spake2p_refused);
  return g_test_run ();
}
