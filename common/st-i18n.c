/* Translations: the locale and the text domain of a program (st-i18n.h). */
#include "st-i18n.h"

#include <libintl.h>
#include <locale.h>
#include <string.h>

#include "st-build-config.h"

/* Whether @category is under the plain C (POSIX) locale. */
static gboolean
st_i18n_is_c (int category)
{
  const char *name = setlocale (category, NULL);
  return name != NULL && (strcmp (name, "C") == 0 || strcmp (name, "POSIX") == 0);
}

const char *
st_i18n_init (void)
{
  setlocale (LC_ALL, "");
  const char *language = g_getenv ("LANGUAGE");
  if (language != NULL && *language != '\0' && st_i18n_is_c (LC_MESSAGES))
    {
      setlocale (LC_MESSAGES, "C.UTF-8");
      /* the translations are UTF-8: printed as such, not as '?' */
      if (st_i18n_is_c (LC_CTYPE))
        setlocale (LC_CTYPE, "C.UTF-8");
    }
  const char *dir = g_getenv ("STATION_LOCALEDIR");
  if (dir == NULL || *dir == '\0')
    dir = LOCALEDIR;
  bindtextdomain (GETTEXT_PACKAGE, dir);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);
  return dir;
}
