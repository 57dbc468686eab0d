/* Hooks for tests/db only (st-db-testhooks.c, in st_db_test_lib): never
 * linked into the station. */
#pragma once

#include "st-db.h"

G_BEGIN_DECLS

typedef struct {
  gchar *journal_mode;
  gint64 synchronous;      /* 2 = FULL */
  gint64 foreign_keys;
  gint64 busy_timeout_ms;
  gint64 query_only;
  gint64 temp_store;       /* 2 = MEMORY */
  gint64 cache_size;       /* < 0: KiB */
  gint64 user_version;
} StDbPragmas;
void st_db_pragmas_clear (StDbPragmas *p);

/* Queries the pragmas on the writer's (@writer) or the reader's connection. */
gboolean st_db_query_pragmas (StDb *db, gboolean writer, StDbPragmas *out, GError **error);
/* PRAGMA max_page_count on the writer's connection (0 = the current page
 * count, so that any growth fails with SQLITE_FULL; < 0 = back to a large
 * limit). Returns the limit in force. */
gint64 st_db_set_max_page_count (StDb *db, gint64 pages, GError **error);
/* While held, the writer leaves requests queued (to build a known group). */
void st_db_writer_hold (StDb *db, gboolean hold);
guint st_db_writer_queued (StDb *db);
/* How many units and certificates the replay (st_db_audit_explain) keeps
 * in memory before it spills older ones to its temporary database; 65536
 * in the station. */
void st_db_replay_set_window (guint records);

G_END_DECLS
