/* libFuzzer: the parser of the Matter commissioning data record
 * (station/st-matter-data.h), which QA reads back from devices (agent slot
 * 4, blob entry 0x07). Whatever it accepts must hold fields in range and
 * be exactly what the encoder writes for them (one spelling per record). */
#include <stdint.h>
#include <string.h>

#include "st-fuzz.h"
#include "st-matter-data.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  StMatterCommissioning c;
  GError *error = NULL;

  st_fuzz_silence_logs ();
  if (!st_matter_commissioning_parse (data, size, &c, &error))
    {
      if (error == NULL)
        abort ();
      g_error_free (error);
      return 0;
    }
  if (c.discriminator > 4095 || c.iterations < 1000 || c.iterations > 100000
      || c.salt_len < 16 || c.salt_len > 32 || c.verifier[32] != 0x04
      || (c.rdid_unique_id_len != 0 && (c.rdid_unique_id_len < 16 || c.rdid_unique_id_len > 32)))
    abort ();
  GBytes *again = st_matter_commissioning_encode (&c, NULL);
  if (again == NULL)
    abort ();
  gsize n = 0;
  const guint8 *d = g_bytes_get_data (again, &n);
  if (n != size || memcmp (d, data, size) != 0)
    abort ();
  g_bytes_unref (again);
  return 0;
}
