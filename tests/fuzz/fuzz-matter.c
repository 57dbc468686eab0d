/* libFuzzer: the parsers of the Matter onboarding codes (st-matter-codes.h),
 * which QA feeds a scanned QR text or a typed manual code. The same input
 * goes to the QR parser, the manual-code parser and the base38 decoder;
 * what any of them accepts must be exactly what the encoders write for the
 * fields read (the codes have one spelling each: a manual code up to its
 * '-' and ' '), and hold fields in range. */
#include <stdint.h>
#include <string.h>

#include "st-fuzz.h"
#include "st-matter-codes.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
fuzz_qr (const char *text, size_t size)
{
  StMatterPayload p;
  if (!st_matter_qr_parse (text, size, &p, NULL))
    return;
  if (!st_matter_passcode_valid (p.passcode) || p.discriminator > ST_MATTER_DISCRIMINATOR_MAX
      || p.flow > ST_MATTER_FLOW_CUSTOM || p.version != 0)
    abort ();
  gchar *again = st_matter_qr_encode (&p, NULL);
  if (again == NULL || strlen (again) != size || memcmp (again, text, size) != 0)
    abort ();
  g_free (again);
}

static void
fuzz_manual (const char *text, size_t size)
{
  StMatterManualCode m;
  if (!st_matter_manual_parse (text, size, &m, NULL))
    return;
  if (!st_matter_passcode_valid (m.passcode) || m.short_discriminator > 0xF)
    abort ();
  StMatterPayload p = {
    .flow = m.has_vid_pid ? ST_MATTER_FLOW_CUSTOM : ST_MATTER_FLOW_STANDARD,
    .vendor_id = m.vendor_id, .product_id = m.product_id,
    .discriminator = (guint16) (m.short_discriminator << 8), .passcode = m.passcode,
  };
  if (!st_matter_manual_matches (&m, &p))
    abort ();
  gchar *again = st_matter_manual_encode (&p, NULL);
  if (again == NULL)
    abort ();
  /* the input without its separators */
  size_t n = 0, k = 0;
  for (size_t i = 0; i < size; i++)
    if (text[i] != '-' && text[i] != ' ')
      {
        if (again[n] != text[i])
          abort ();
        n++;
      }
  for (; again[k] != '\0'; k++)
    ;
  if (n != k)
    abort ();
  g_free (again);
}

static void
fuzz_base38 (const char *text, size_t size)
{
  guint8 out[24];
  gsize got = 0;
  if (!st_matter_base38_decode (text, size, out, sizeof out, &got, NULL))
    return;
  if (got > sizeof out)
    abort ();
  char again[48];
  gsize n = st_matter_base38_encode (out, got, again, sizeof again);
  if (n != size || memcmp (again, text, size) != 0)
    abort ();
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  st_fuzz_silence_logs ();
  /* a copy of exactly @size bytes, so a read past the input is caught */
  char *text = g_malloc (size > 0 ? size : 1);
  if (size > 0)
    memcpy (text, data, size);
  fuzz_qr (text, size);
  fuzz_manual (text, size);
  fuzz_base38 (text, size);
  g_free (text);
  return 0;
}
