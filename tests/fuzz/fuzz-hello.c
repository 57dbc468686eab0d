/* libFuzzer: the HELLO result (TLV) parser. */
#include <stdint.h>
#include <string.h>

#include "st-agent-link.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  StDeviceInfo info;
  GError *error = NULL;
  memset (&info, 0xa5, sizeof info);
  if (st_agent_parse_hello (data, size, &info, &error))
    {
      if (info.uid_len < 1 || info.uid_len > ST_UID_MAX)
        abort ();
      if (memchr (info.model, 0, sizeof info.model) == NULL || info.model[0] == '\0')
        abort ();
      if (memchr (info.fw_version, 0, sizeof info.fw_version) == NULL)
        abort ();
      if (!g_utf8_validate (info.model, -1, NULL))
        abort ();
      if (info.max_payload < 256 || info.max_payload > 2048)
        abort ();
      /* The extensions bits are the 0x07 TLV's value, little-endian (1 to
       * 4 bytes), or 0 without it. */
      guint32 ext = 0;
      for (size_t pos = 0; pos + 2 <= size; pos += 2 + data[pos + 1])
        if (data[pos] == 0x07)
          {
            if (data[pos + 1] < 1 || data[pos + 1] > 4)
              abort ();
            for (size_t i = 0; i < data[pos + 1]; i++)
              ext |= (guint32) data[pos + 2 + i] << (8 * i);
          }
      if (info.extensions != ext)
        abort ();
    }
  else if (error == NULL)
    abort ();
  g_clear_error (&error);
  return 0;
}
