/* Operators and their roles, PIN attempts and locks. */
#include "st-db.h"
#include "st-db-private.h"
#include "st-error.h"
#include "st-sqlite.h"
#include "st-util.h"

#include <string.h>

/* ---------- operators ---------- */

void
st_db_operator_free (StDbOperator *op)
{
  if (op == NULL)
    return;
  g_free (op->name);
  g_free (op->role);
  if (op->pin_hash != NULL)
    st_memwipe (op->pin_hash, strlen (op->pin_hash));
  g_free (op->pin_hash);
  g_free (op);
}

static gboolean
st_db_check_role (const char *role, GError **error)
{
  static const char *const roles[] = { "operator", "lead", "qa", "admin" };
  for (gsize i = 0; i < G_N_ELEMENTS (roles); i++)
    if (g_strcmp0 (role, roles[i]) == 0)
      return TRUE;
  g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
               "'%s' is not a role: use operator, lead, qa or admin", role != NULL ? role : "");
  return FALSE;
}

static gboolean
st_db_check_operator_name (const char *name, GError **error)
{
  if (!st_db_check_text ("the operator name", name, TRUE, ST_DB_OPERATOR_NAME_MAX, error))
    return FALSE;
  for (const char *p = name; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && *p != '.' && *p != '-' && *p != '_')
      {
        g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                     "operator name '%s' may hold only letters, digits, '.', '-' and '_'", name);
        return FALSE;
      }
  return TRUE;
}

#define ST_DB_OPERATOR_SELECT \
  "SELECT id, name, role, pin_hash, failed_attempts, created_at, updated_at, locked FROM operators "

static StDbOperator *
st_db_operator_from_row (sqlite3_stmt *stmt)
{
  StDbOperator *op = g_new0 (StDbOperator, 1);
  op->id = sqlite3_column_int64 (stmt, 0);
  op->name = st_db_col_text (stmt, 1);
  op->role = st_db_col_text (stmt, 2);
  op->pin_hash = st_db_col_text (stmt, 3);
  op->failed_attempts = sqlite3_column_int64 (stmt, 4);
  op->created_at = sqlite3_column_int64 (stmt, 5);
  op->updated_at = sqlite3_column_int64 (stmt, 6);
  op->locked = sqlite3_column_int64 (stmt, 7) != 0;
  return op;
}

gint64
st_db_operator_count (StDb *db, GError **error)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&db->rlock);
  gint64 n = 0;
  if (!st_db_conn_query_int (db->r, "SELECT count(*) FROM operators", &n, error))
    return -1;
  return n;
}

StDbOperator *
st_db_operator_get (StDb *db, const char *name, GError **error)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&db->rlock);
  gboolean row = FALSE;
  g_autoptr(StSqliteStmtRef) stmt = st_db_conn_query (db->r,
      ST_DB_OPERATOR_SELECT "WHERE name = ?",
      "cannot read the operator", &row, error, "t", name);
  if (stmt == NULL)
    return NULL;
  if (!row)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                   "there is no operator '%s' (see 'station operator list')", name != NULL ? name : "");
      return NULL;
    }
  return st_db_operator_from_row (stmt);
}

GPtrArray *
st_db_operator_list (StDb *db, GError **error)
{
  return st_db_query_list (db, ST_DB_OPERATOR_SELECT "ORDER BY name", "cannot list the operators",
                           FALSE, 0, NULL, (StDbFromRow) st_db_operator_from_row,
                           (GDestroyNotify) st_db_operator_free, error);
}

typedef struct {
  const char *name, *role, *pin_hash, *by;
} OperatorOp;

/* The operator's role, locked flag and failed attempts; NOT_FOUND if none. */
static gboolean
st_db_w_operator_state (StDbConn *c, const char *name, gchar **role, gboolean *locked,
                        gint64 *attempts, GError **error)
{
  gboolean row = FALSE;
  g_autoptr(StSqliteStmtRef) stmt = st_db_conn_query (c,
      "SELECT role, locked, failed_attempts FROM operators WHERE name = ?",
      "cannot read the operator", &row, error, "t", name);
  if (stmt == NULL)
    return FALSE;
  if (!row)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND, "there is no operator '%s'", name);
      return FALSE;
    }
  *role = st_db_col_text (stmt, 0);
  *locked = sqlite3_column_int64 (stmt, 1) != 0;
  *attempts = sqlite3_column_int64 (stmt, 2);
  return TRUE;
}

static gboolean
st_db_w_operator_add (StDbConn *c, gpointer data, gint64 *result, GError **error)
{
  OperatorOp *a = data;
  if (a->by == NULL)
    {
      gint64 n = 0;
      if (!st_db_conn_query_int (c, "SELECT count(*) FROM operators", &n, error))
        return FALSE;
      if (n > 0)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                       "the station already has operators: only an admin adds more "
                       "(--operator ADMIN with the admin's PIN)");
          return FALSE;
        }
      if (g_strcmp0 (a->role, "admin") != 0)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                       "the first operator must be an admin (--role admin): only an admin can "
                       "add the others");
          return FALSE;
        }
    }
  {
    gboolean row = FALSE;
    g_autoptr(StSqliteStmtRef) stmt = st_db_conn_query (c,
        "SELECT 1 FROM operators WHERE name = ?",
        "cannot read the operators", &row, error, "t", a->name);
    if (stmt == NULL)
      return FALSE;
    if (row)
      {
        g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                     "there is already an operator '%s': choose another name", a->name);
        return FALSE;
      }
  }
  gint64 now = st_db_now ();
  if (!st_db_conn_run (c,
      "INSERT INTO operators (name, role, pin_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
      "cannot record the operator", error, "tttii", a->name, a->role, a->pin_hash, now, now))
    return FALSE;
  *result = sqlite3_last_insert_rowid (c->db);
  /* binds the row to the log (st-db-replay.c): its id and a commitment to
   * its PIN hash, never the hash itself */
  g_autofree gchar *pin_sha256 = st_sha256_hex ((const guint8 *) a->pin_hash, strlen (a->pin_hash));
  g_autofree gchar *payload = st_db_payload ("ssbis", "name", a->name, "role", a->role,
                                             "first", a->by == NULL, "id", *result,
                                             "pin_sha256", pin_sha256);
  return st_db_w_audit (c, a->by != NULL ? a->by : a->name, "operator-add", payload, error);
}

gboolean
st_db_operator_add (StDb *db, const char *name, const char *role, const char *pin_hash,
                    const char *by, GError **error)
{
  OperatorOp a = { .name = name, .role = role, .pin_hash = pin_hash, .by = by };
  if (!st_db_check_operator_name (name, error) || !st_db_check_role (role, error)
      || !st_db_check_text ("the PIN hash", pin_hash, TRUE, ST_DB_NAME_MAX, error)
      || (by != NULL && !st_db_check_text ("the admin", by, TRUE, ST_DB_NAME_MAX, error))
      || !st_db_write (db, st_db_w_operator_add, &a, NULL, error))
    {
      g_prefix_error (error, "cannot add operator '%s': ", name != NULL ? name : "");
      return FALSE;
    }
  return TRUE;
}

static gboolean
st_db_w_operator_set_role (StDbConn *c, gpointer data, gint64 *result, GError **error)
{
  OperatorOp *a = data;
  g_autofree gchar *role = NULL;
  gboolean locked = FALSE;
  gint64 attempts = 0;
  if (!st_db_w_operator_state (c, a->name, &role, &locked, &attempts, error))
    return FALSE;
  /* the station keeps an admin who can log in: without one, nobody manages
   * operators or unlocks the HSM (checked in this transaction: two admins
   * demoting each other at once cannot both succeed) */
  if (g_strcmp0 (role, "admin") == 0 && g_strcmp0 (a->role, "admin") != 0)
    {
      gboolean row = FALSE;
      g_autoptr(StSqliteStmtRef) other = st_db_conn_query (c,
          "SELECT 1 FROM operators WHERE role = 'admin' AND locked = 0 AND name <> ? LIMIT 1",
          "cannot read the admins", &row, error, "t", a->name);
      if (other == NULL)
        return FALSE;
      if (!row)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                       "'%s' is the station's last admin who can log in: without one nobody "
                       "manages operators or unlocks the HSM. Add another admin first ('station "
                       "operator add NAME --role admin'), or unlock a locked one ('station operator "
                       "unlock NAME'), then change the role of '%s'", a->name, a->name);
          return FALSE;
        }
    }
  if (!st_db_conn_run (c,
      "UPDATE operators SET role = ?, updated_at = ? WHERE name = ?",
      "cannot change the role", error, "tit", a->role, st_db_now (), a->name))
    return FALSE;
  g_autofree gchar *payload = st_db_payload ("sss", "name", a->name, "from", role, "to", a->role);
  return st_db_w_audit (c, a->by, "operator-set-role", payload, error);
}

gboolean
st_db_operator_set_role (StDb *db, const char *name, const char *role, const char *by,
                         GError **error)
{
  OperatorOp a = { .name = name, .role = role, .by = by };
  if (!st_db_check_operator_name (name, error) || !st_db_check_role (role, error)
      || !st_db_check_text ("the admin", by, TRUE, ST_DB_NAME_MAX, error)
      || !st_db_write (db, st_db_w_operator_set_role, &a, NULL, error))
    {
      g_prefix_error (error, "cannot change the role of '%s': ", name != NULL ? name : "");
      return FALSE;
    }
  return TRUE;
}

static gboolean
st_db_w_operator_unlock (StDbConn *c, gpointer data, gint64 *result, GError **error)
{
  OperatorOp *a = data;
  g_autofree gchar *role = NULL;
  gboolean locked = FALSE;
  gint64 attempts = 0;
  if (!st_db_w_operator_state (c, a->name, &role, &locked, &attempts, error))
    return FALSE;
  if (!st_db_conn_run (c,
      "UPDATE operators SET locked = 0, failed_attempts = 0, updated_at = ? WHERE name = ?",
      "cannot unlock the operator", error, "it", st_db_now (), a->name))
    return FALSE;
  g_autofree gchar *payload = st_db_payload ("sbi", "name", a->name, "was_locked", locked,
                                             "failed_attempts_were", attempts);
  return st_db_w_audit (c, a->by, "operator-unlock", payload, error);
}

gboolean
st_db_operator_unlock (StDb *db, const char *name, const char *by, GError **error)
{
  OperatorOp a = { .name = name, .by = by };
  if (!st_db_check_operator_name (name, error)
      || !st_db_check_text ("the admin", by, TRUE, ST_DB_NAME_MAX, error)
      || !st_db_write (db, st_db_w_operator_unlock, &a, NULL, error))
    {
      g_prefix_error (error, "cannot unlock '%s': ", name != NULL ? name : "");
      return FALSE;
    }
  return TRUE;
}

/* ---- a login, counted before its PIN is checked ----
 * The PIN hash is slow on purpose. Were the lock read before it and the
 * failure counted after it, every attempt that arrived while the first ones
 * were hashed would get a hash of its own: 40 at once, one with the right
 * PIN, got in almost every time. So an attempt is counted, and the lock
 * checked, in one transaction before the hash (reserved); the hash's outcome
 * is written after it. */

typedef struct {
  const char *name;
  gint64 max_attempts;
  gint64 attempt;        /* reserve: this attempt's number; 0 when refused */
  StDbOperator *op;      /* reserve: the operator as it was */
  gboolean locked;       /* wrong: whether the operator is locked now */
} LoginOp;

static gboolean
st_db_w_operator_login_reserve (StDbConn *c, gpointer data, gint64 *result, GError **error)
{
  LoginOp *a = data;
  gboolean row = FALSE;
  g_autoptr(StSqliteStmtRef) stmt = st_db_conn_query (c, ST_DB_OPERATOR_SELECT "WHERE name = ?",
                                                      "cannot read the operator", &row, error,
                                                      "t", a->name);
  if (stmt == NULL)
    return FALSE;
  if (!row)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND, "there is no operator '%s'", a->name);
      return FALSE;
    }
  g_clear_pointer (&a->op, st_db_operator_free);
  a->op = st_db_operator_from_row (stmt);
  a->attempt = 0;
  /* locked, or every attempt left is being checked now: no hash */
  if (a->op->locked || a->op->failed_attempts >= a->max_attempts)
    return TRUE;
  a->attempt = a->op->failed_attempts + 1;
  /* not audited: the outcome is (login-failed, operator-locked, login-attempts-reset) */
  return st_db_conn_run (c,
      "UPDATE operators SET failed_attempts = ?, attempts_in_flight = attempts_in_flight + 1,"
      " updated_at = ? WHERE name = ?",
      "cannot count the login attempt", error, "iit", a->attempt, st_db_now (), a->name);
}

/* A reserved attempt checked (wrong or right): no longer in flight;
 * *@locked: whether the operator is locked now (by attempts checked
 * meanwhile). */
static gboolean
st_db_w_operator_attempt_checked (StDbConn *c, const char *name, gboolean *locked, GError **error)
{
  g_autofree gchar *role = NULL;
  gint64 attempts = 0;
  return st_db_w_operator_state (c, name, &role, locked, &attempts, error)
         && st_db_conn_run (c,
      "UPDATE operators SET attempts_in_flight = max (attempts_in_flight - 1, 0) WHERE name = ?",
      "cannot count the login attempt", error, "t", name);
}

StDbOperator *
st_db_operator_login_reserve (StDb *db, const char *name, gint64 max_attempts, gint64 *attempt,
                              GError **error)
{
  LoginOp a = { .name = name != NULL ? name : "", .max_attempts = max_attempts };
  *attempt = 0;
  if (!st_db_write (db, st_db_w_operator_login_reserve, &a, NULL, error))
    {
      st_db_operator_free (a.op);
      return NULL;
    }
  *attempt = a.attempt;
  return a.op;
}

static gboolean
st_db_w_operator_login_wrong (StDbConn *c, gpointer data, gint64 *result, GError **error)
{
  LoginOp *a = data;
  gboolean locked = FALSE;
  if (!st_db_w_operator_attempt_checked (c, a->name, &locked, error))
    return FALSE;
  /* counted already, at its reservation */
  a->locked = locked || a->attempt >= a->max_attempts;
  if (a->locked && !locked
      && !st_db_conn_run (c, "UPDATE operators SET locked = 1, updated_at = ? WHERE name = ?",
                          "cannot lock the operator", error, "it", st_db_now (), a->name))
    return FALSE;
  g_autofree gchar *payload = st_db_payload ("sib", "name", a->name, "failed_attempts", a->attempt,
                                             "locked", a->locked);
  return st_db_w_audit (c, a->name, a->locked && !locked ? "operator-locked" : "login-failed",
                        payload, error);
}

gboolean
st_db_operator_login_wrong (StDb *db, const char *name, gint64 attempt, gint64 max_attempts,
                            gboolean *locked, GError **error)
{
  LoginOp a = { .name = name, .attempt = attempt, .max_attempts = max_attempts };
  if (!st_db_write (db, st_db_w_operator_login_wrong, &a, NULL, error))
    {
      g_prefix_error (error, "cannot record a wrong PIN for '%s': ", name != NULL ? name : "");
      return FALSE;
    }
  if (locked != NULL)
    *locked = a.locked;
  return TRUE;
}

static gboolean
st_db_w_operator_login_right (StDbConn *c, gpointer data, gint64 *result, GError **error)
{
  LoginOp *a = data;
  gboolean locked = FALSE;
  if (!st_db_w_operator_attempt_checked (c, a->name, &locked, error))
    return FALSE;
  if (locked)
    {
      /* other attempts, checked meanwhile, used the last ones */
      g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                   "operator '%s' was locked by wrong PINs while this one was checked: an admin "
                   "must unlock it ('station operator unlock %s')", a->name, a->name);
      return FALSE;
    }
  if (!st_db_conn_run (c,
      "UPDATE operators SET failed_attempts = 0, updated_at = ? WHERE name = ?",
      "cannot reset the wrong PIN count", error, "it", st_db_now (), a->name))
    return FALSE;
  /* a first attempt that was right changed nothing worth a record */
  if (a->attempt <= 1)
    return TRUE;
  g_autofree gchar *payload = st_db_payload ("si", "name", a->name, "attempt", a->attempt);
  return st_db_w_audit (c, a->name, "login-attempts-reset", payload, error);
}

gboolean
st_db_operator_login_right (StDb *db, const char *name, gint64 attempt, GError **error)
{
  LoginOp a = { .name = name, .attempt = attempt };
  return st_db_write (db, st_db_w_operator_login_right, &a, NULL, error);
}

/* ---- break-glass recovery ---- */

static gboolean
st_db_w_operator_release_attempts (StDbConn *c, gpointer data, gint64 *result, GError **error)
{
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GArray) counts = g_array_new (FALSE, FALSE, sizeof (gint64));
  {
    g_autoptr(StSqliteStmtRef) stmt = st_db_conn_prepare (c,
        "SELECT name, attempts_in_flight FROM operators WHERE attempts_in_flight > 0 ORDER BY id", error);
    if (stmt == NULL)
      return FALSE;
    for (;;)
      {
        gboolean row = FALSE;
        if (!st_db_step (c, stmt, &row, "cannot read the operators", error))
          return FALSE;
        if (!row)
          break;
        g_ptr_array_add (names, st_db_col_text (stmt, 0));
        gint64 n = sqlite3_column_int64 (stmt, 1);
        g_array_append_val (counts, n);
      }
  }
  for (guint i = 0; i < names->len; i++)
    {
      const char *name = g_ptr_array_index (names, i);
      gint64 n = g_array_index (counts, gint64, i);
      /* a locked operator stays locked; the others get back what was never checked */
      if (!st_db_conn_run (c,
          "UPDATE operators SET failed_attempts = CASE WHEN locked = 1 THEN failed_attempts"
          " ELSE max (failed_attempts - attempts_in_flight, 0) END, attempts_in_flight = 0,"
          " updated_at = ? WHERE name = ?",
          "cannot release the login attempts", error, "it", st_db_now (), name))
        return FALSE;
      g_autofree gchar *payload = st_db_payload ("si", "name", name, "released", n);
      const char *by = "station";   /* the service, at its start */
      if (!st_db_w_audit (c, by, "login-attempts-released", payload, error))
        return FALSE;
    }
  *result = names->len;
  return TRUE;
}

gboolean
st_db_operator_release_attempts (StDb *db, guint *n_released, GError **error)
{
  gint64 n = 0;
  if (!st_db_write (db, st_db_w_operator_release_attempts, NULL, &n, error))
    {
      g_prefix_error (error, "cannot release the login attempts left in flight: ");
      return FALSE;
    }
  if (n_released != NULL)
    *n_released = (guint) n;
  return TRUE;
}

typedef struct {
  const char *name, *pin_hash, *by;
  const char *action;
} RecoverOp;

static gboolean
st_db_w_operator_recover (StDbConn *c, gpointer data, gint64 *result, GError **error)
{
  RecoverOp *a = data;
  g_autofree gchar *role = NULL;
  gboolean locked = FALSE;
  gint64 attempts = 0;
  g_autoptr(GError) local = NULL;
  gboolean exists = st_db_w_operator_state (c, a->name, &role, &locked, &attempts, &local);
  if (!exists && !g_error_matches (local, ST_ERROR, ST_ERROR_NOT_FOUND))
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  gint64 now = st_db_now ();
  if (a->pin_hash == NULL)
    {
      if (!exists)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                       "there is no operator '%s': name a locked admin, or give a new name with "
                       "--new to add an admin", a->name);
          return FALSE;
        }
      if (g_strcmp0 (role, "admin") != 0)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                       "operator '%s' is %s: recovery unlocks an admin, or adds a new one (--new "
                       "with a name not taken)", a->name, role);
          return FALSE;
        }
      if (!st_db_conn_run (c,
          "UPDATE operators SET locked = 0, failed_attempts = 0, updated_at = ? WHERE name = ?",
          "cannot unlock the admin", error, "it", now, a->name))
        return FALSE;
      a->action = "unlocked";
    }
  else
    {
      if (exists)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "there is already an operator '%s': choose another name for the new admin, "
                       "or recover '%s' without --new", a->name, a->name);
          return FALSE;
        }
      if (!st_db_conn_run (c,
          "INSERT INTO operators (name, role, pin_hash, created_at, updated_at) "
          "VALUES (?, 'admin', ?, ?, ?)",
          "cannot record the admin", error, "ttii", a->name, a->pin_hash, now, now))
        return FALSE;
      a->action = "added";
    }
  /* an added admin is bound to the log as operator-add binds one
   * (st-db-replay.c): its id and a commitment to its PIN hash */
  gint64 id = a->pin_hash != NULL ? sqlite3_last_insert_rowid (c->db) : 0;
  g_autofree gchar *pin_sha256 = a->pin_hash != NULL
                                     ? st_sha256_hex ((const guint8 *) a->pin_hash, strlen (a->pin_hash))
                                     : NULL;
  g_autofree gchar *payload = a->pin_hash != NULL
      ? st_db_payload ("ssbiis", "name", a->name, "action", a->action, "was_locked", locked,
                       "failed_attempts_were", attempts, "id", id, "pin_sha256", pin_sha256)
      : st_db_payload ("ssbi", "name", a->name, "action", a->action, "was_locked", locked,
                       "failed_attempts_were", attempts);
  return st_db_w_audit (c, a->by, "admin-recover", payload, error);
}

gboolean
st_db_operator_recover (StDb *db, const char *name, const char *pin_hash, const char *by,
                        const char **action, GError **error)
{
  RecoverOp a = { .name = name, .pin_hash = pin_hash, .by = by };
  if (!st_db_check_operator_name (name, error)
      || (pin_hash != NULL && !st_db_check_text ("the PIN hash", pin_hash, TRUE, ST_DB_NAME_MAX, error))
      || !st_db_check_text ("who recovers", by, TRUE, ST_DB_NAME_MAX, error)
      || !st_db_write (db, st_db_w_operator_recover, &a, NULL, error))
    {
      g_prefix_error (error, "cannot recover admin '%s': ", name != NULL ? name : "");
      return FALSE;
    }
  if (action != NULL)
    *action = a.action;
  return TRUE;
}
