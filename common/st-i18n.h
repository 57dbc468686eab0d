/* Translations (docs/translations.md): each program's main() calls
 * st_i18n_init() first thing; strings go through _() of <glib/gi18n.h>. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Sets the locale from the environment, and the text domain (GETTEXT_PACKAGE)
 * with its catalogues in $STATION_LOCALEDIR (the build tree's po/ for the
 * tests and the demo), else the installed LOCALEDIR. With LANGUAGE set and no
 * locale for messages (LANG unset: "C"), messages (and the character set,
 * when it is C's ASCII too) take C.UTF-8, so that LANGUAGE chooses the
 * language as it does under any other locale (gettext ignores LANGUAGE under
 * "C"). Returns the folder the catalogues are read from. */
const char *st_i18n_init (void);

G_END_DECLS
