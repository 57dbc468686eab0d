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
      /* appended piece by piece: a printf per error cost a third of the
       * CSR check of a request that does not parse (fuzz-csr's profile) */
      if (reason != NULL)
        g_string_append (msg, reason);
      else
        g_string_append_printf (msg, "error 0x%lx", e);
      if (lib != NULL)
        {
          g_string_append (msg, " (");
          g_string_append (msg, lib);
          g_string_append_c (msg, ')');
        }
      if ((flags & ERR_TXT_STRING) && data != NULL && *data != '\0')
        {
          g_string_append (msg, " [");
          g_string_append (msg, data);
          g_string_append_c (msg, ']');
        }
    }
  g_set_error_literal (error, ST_ERROR, code, msg->str);
}

void
st_error_clear_openssl (void)
{
  ERR_clear_error ();
}

gboolean
st_error_verify_failed (GError **error, const char *frame, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree gchar *detail = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  ERR_clear_error ();
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
  g_autofree gchar *msg = g_strdup_printf (frame, detail);
#pragma GCC diagnostic pop
  g_set_error_literal (error, ST_ERROR, ST_ERROR_VERIFY_FAILED, msg);
  return FALSE;
}
