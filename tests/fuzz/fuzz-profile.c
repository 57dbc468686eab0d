/* libFuzzer: the product profile parser, and the serial and subject
 * templates of whatever it accepts. */
#include <stdint.h>
#include "st-fuzz.h"
#include "st-profile.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  st_fuzz_silence_logs ();
  GError *error = NULL;
  StProfile *profile = st_profile_load_from_data ((const char *) data, size, "fuzz.profile", &error);
  if ((profile == NULL) == (error == NULL))
    abort ();
  if (profile != NULL)
    {
      GDateTime *now = g_date_time_new_utc (2026, 11, 23, 9, 0, 0);
      g_free (st_profile_format_serial (profile, G_MAXUINT32, now));
      StSubjectInfo info = { .uid_hex = "00112233", .model = "M,=+\"\\", .product_serial = "S-1" };
      X509_NAME *name = st_profile_build_subject (profile->subject_template, &info, NULL);
      X509_NAME_free (name);
      GENERAL_NAMES *san = st_profile_build_san ((const char *const *) profile->san_templates, &info, NULL);
      GENERAL_NAMES_free (san);
      g_date_time_unref (now);
      st_profile_free (profile);
    }
  g_clear_error (&error);
  return 0;
}
