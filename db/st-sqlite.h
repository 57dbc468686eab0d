/* Cleanup functions for the sqlite3 types (docs/architecture.md, Conventions).
 * Only db/ includes this header: it is the only code that sees sqlite3.h. */
#pragma once

#include <glib.h>
#include <sqlite3.h>

G_BEGIN_DECLS

/* A statement owned by the caller: finalized on scope exit. */
G_DEFINE_AUTOPTR_CLEANUP_FUNC (sqlite3_stmt, sqlite3_finalize)

/* A statement borrowed from a connection's cache: on scope exit it is reset
 * (ending its read transaction) and its bindings cleared, not finalized. */
typedef sqlite3_stmt StSqliteStmtRef;
static inline void
st_sqlite_stmt_release (StSqliteStmtRef *stmt)
{
  if (stmt != NULL)
    {
      sqlite3_reset (stmt);
      sqlite3_clear_bindings (stmt);
    }
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StSqliteStmtRef, st_sqlite_stmt_release)

G_END_DECLS
