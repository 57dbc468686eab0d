#pragma once

#include "st-db.h"

G_BEGIN_DECLS

/* The script that moves the schema from @to_version - 1 to @to_version. */
const char *st_db_schema_migration (gint to_version);

G_END_DECLS
