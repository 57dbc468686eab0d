#include "st-error.h"

#include <openssl/err.h>

G_DEFINE_QUARK (st-error-quark, st_error)

const char *
st_error_code_to_string (StError code)
{
  static const char *const names[] = {
    "INTERNAL", "NOT_FOUND", "NOT_SUPPORTED", "INVALID_DATA", "READ", "WRITE",
    "TIMED_OUT", "BUSY", "AUTH_FAILED", "PERMISSION_DENIED", "VERIFY_FAILED",
    "CANCELLED",
  };
  if ((guint) code >= G_N_ELEMENTS (names))
    return "UNKNOWN";
  return names[code];
}

void
st_error_set_openssl (GError **error, StError code, const char *what)
{
  g_autoptr(GString) msg = g_string_new (what);
  unsigned long e;
  gboolean first = TRUE;
  const char *file = NULL, *func = NULL, *data = NULL;
  int line = 0, flags = 0;

  while ((e = ERR_get_error_all (&file, &line, &func, &data, &flags)) != 0)
    {
      const char *reason = ERR_reason_error_string (e);
      const char *lib = ERR_lib_error_string (e);
      g_string_append (msg, first ? ": " : "; ");
      first = FALSE;
      if (reason != NULL)
        g_string_append (msg, reason);
      else
        g_string_append_printf (msg, "error 0x%lx", e);
      if (lib != NULL)
        g_string_append_printf (msg, " (%s)", lib);
      if ((flags & ERR_TXT_STRING) && data != NULL && *data != '\0')
        g_string_append_printf (msg, " [%s]", data);
    }
  g_set_error_literal (error, ST_ERROR, code, msg->str);
}

void
st_error_clear_openssl (void)
{
  ERR_clear_error ();
}
