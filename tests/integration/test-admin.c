/* Operators' logins and the way back from an admin lockout: findings of the
 * security review (issue 14, items 3 and 8), each reproduced as the attack
 * or the accident was made.
 *
 * /admin/parallel-guessing: 40 logins at once on 40 connections, one with
 * the right PIN. The lock used to be read before the slow PIN hash and not
 * again after it, so every attempt that arrived before the fifth failure was
 * written got its hash: the right PIN got in almost every time, and the
 * failures counted far past five. Now an attempt is counted and the lock
 * checked in one transaction before the hash: at most ST_AUTH_MAX_ATTEMPTS
 * attempts reach the hash before the operator is locked, and the right PIN
 * gets in only when it was one of them (and the wrong ones did not lock the
 * operator while it was hashed). Three rounds: the right PIN sent first,
 * somewhere, last.
 *
 * /admin/last-admin-stays: the station's last usable admin demoted itself
 * (or was demoted), and nobody could manage operators or unlock the HSM any
 * more. A change of role that would leave no unlocked admin is refused,
 * saying what to do; a locked admin does not count.
 *
 * /admin/recover-locked-admin: five wrong PINs locked the only admin for
 * good. Break-glass recovery: whoever proves the HSM token's SO PIN
 * (`station admin recover NAME`, no login) unlocks that admin, or adds a new
 * one, even while the service is locked after a restart; it is audited.
 *
 * /admin/recover-wrong-so-pin: a wrong SO PIN unlocks nothing and is
 * audited (the token counts it too). */
#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "st-test-run.h"

/* st-auth.h: five wrong PINs in a row lock an operator. */
#define ST_ADMIN_MAX_ATTEMPTS 5
#define ST_ADMIN_PARALLEL 40

typedef struct {
  guint pending;
  guint right;             /* the index of the attempt with the right PIN */
  gboolean accepted[ST_ADMIN_PARALLEL];
  gchar *errors[ST_ADMIN_PARALLEL];
} StParallel;

typedef struct {
  StParallel *p;
  guint index;
} StAttempt;

static void
st_login_done (GObject *source, GAsyncResult *result, gpointer data)
{
  StAttempt *a = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  a->p->accepted[a->index] = reply != NULL;
  if (reply == NULL)
    a->p->errors[a->index] = g_strdup (error->message);
  a->p->pending--;
  g_free (a);
}

/* The payload of the audit entries of @event about operator @name after
 * @seq, oldest first (of JsonObject*, each owned by the array's parsers). */
static GPtrArray *
st_audit_payloads (StFixture *f, gint64 seq, const char *event, const char *name,
                   GPtrArray *parsers)
{
  g_autofree gchar *sql = g_strdup_printf ("SELECT payload FROM audit WHERE seq > %" G_GINT64_FORMAT
                                           " AND event = '%s' ORDER BY seq", seq, event);
  g_autofree gchar *text = st_sql (f, sql);
  GPtrArray *out = g_ptr_array_new ();
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      if (lines[i][0] == '\0')
        continue;
      JsonParser *parser = json_parser_new ();
      g_ptr_array_add (parsers, parser);
      g_assert_true (json_parser_load_from_data (parser, lines[i], -1, NULL));
      JsonObject *o = json_node_get_object (json_parser_get_root (parser));
      if (g_strcmp0 (json_object_get_string_member (o, "name"), name) == 0)
        g_ptr_array_add (out, o);
    }
  return out;
}

/* One round of the attack on the demo operator 'op' (PIN 1111): 40 logins
 * at once, the one at @right with the right PIN. */
static void
st_parallel_round (StFixture *f, guint right)
{
  gint64 seq0 = st_sql_int (f, "SELECT coalesce(max(seq), 0) FROM audit");
  g_autofree gchar *address = g_strdup_printf ("unix:path=%s/stationd.sock", f->home);
  GDBusConnection *conns[ST_ADMIN_PARALLEL];
  for (guint i = 0; i < ST_ADMIN_PARALLEL; i++)
    {
      g_autoptr(GError) error = NULL;
      conns[i] = g_dbus_connection_new_for_address_sync (address,
                                                         G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT,
                                                         NULL, NULL, &error);
      g_assert_no_error (error);
    }
  StParallel p = { .pending = ST_ADMIN_PARALLEL, .right = right };
  /* every call is sent before any answer is read: they reach the service together */
  for (guint i = 0; i < ST_ADMIN_PARALLEL; i++)
    {
      g_autofree gchar *pin = i == p.right ? g_strdup ("1111") : g_strdup_printf ("%04u", 5000 + i);
      StAttempt *a = g_new0 (StAttempt, 1);
      a->p = &p;
      a->index = i;
      g_dbus_connection_call (conns[i], NULL, "/org/station/Station1", "org.station.Station1", "Login",
                              g_variant_new ("(ss)", "op", pin), G_VARIANT_TYPE ("(s)"),
                              G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, st_login_done, a);
    }
  while (p.pending > 0)
    g_main_context_iteration (NULL, TRUE);
  for (guint i = 0; i < ST_ADMIN_PARALLEL; i++)
    {
      g_test_message ("attempt %u%s: %s", i, i == p.right ? " (right PIN)" : "",
                      p.accepted[i] ? "accepted" : p.errors[i]);
      /* a wrong PIN never gets in */
      if (i != p.right)
        g_assert_false (p.accepted[i]);
    }

  /* every wrong PIN that reached the hash is on record with its number */
  g_autoptr(GPtrArray) parsers = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GPtrArray) failed = st_audit_payloads (f, seq0, "login-failed", "op", parsers);
  g_autoptr(GPtrArray) locked = st_audit_payloads (f, seq0, "operator-locked", "op", parsers);
  g_autoptr(GPtrArray) reset = st_audit_payloads (f, seq0, "login-attempts-reset", "op", parsers);
  guint hashed_wrong = failed->len + locked->len;
  g_test_message ("wrong PINs hashed: %u (%u locked the operator); right PIN %s", hashed_wrong,
                  locked->len, p.accepted[p.right] ? "accepted" : "refused");
  for (guint i = 0; i < failed->len; i++)
    g_assert_cmpint (json_object_get_int_member (g_ptr_array_index (failed, i), "failed_attempts"),
                     <=, ST_ADMIN_MAX_ATTEMPTS);
  for (guint i = 0; i < locked->len; i++)
    g_assert_cmpint (json_object_get_int_member (g_ptr_array_index (locked, i), "failed_attempts"),
                     <=, ST_ADMIN_MAX_ATTEMPTS);
  gint64 count = st_sql_int (f, "SELECT failed_attempts FROM operators WHERE name = 'op'");
  g_assert_cmpint (count, <=, ST_ADMIN_MAX_ATTEMPTS);
  if (!p.accepted[p.right])
    {
      /* the first five attempts counted, and they locked it: the right one
       * came later, or came among them and found the operator locked by
       * the wrong ones when its own hash was done */
      g_assert_cmpuint (hashed_wrong, <=, ST_ADMIN_MAX_ATTEMPTS);
      g_assert_cmpuint (hashed_wrong, >=, ST_ADMIN_MAX_ATTEMPTS - 1);
      g_assert_cmpuint (locked->len, ==, 1);
      g_assert_cmpint (st_sql_int (f, "SELECT locked FROM operators WHERE name = 'op'"), ==, 1);
      g_assert_nonnull (strstr (p.errors[p.right], "locked"));
    }
  else
    {
      /* the right PIN was among the first five counted: at most four wrong
       * ones before it (its reset names its number when it was not the
       * first), and at most five after the count went back to 0 */
      gint64 right_attempt = 1;
      if (reset->len > 0)
        {
          g_assert_cmpuint (reset->len, ==, 1);
          right_attempt = json_object_get_int_member (g_ptr_array_index (reset, 0), "attempt");
        }
      g_assert_cmpint (right_attempt, >=, 1);
      g_assert_cmpint (right_attempt, <=, ST_ADMIN_MAX_ATTEMPTS);
      g_assert_cmpuint (hashed_wrong, <=, (guint) (right_attempt - 1) + ST_ADMIN_MAX_ATTEMPTS);
    }

  for (guint i = 0; i < ST_ADMIN_PARALLEL; i++)
    {
      g_dbus_connection_close_sync (conns[i], NULL, NULL);
      g_object_unref (conns[i]);
      g_free (p.errors[i]);
    }
}

static void
test_parallel_guessing (StFixture *f, gconstpointer data)
{
  /* the production cost of the PIN hash, not the test knob of
   * tests/integration/meson.build (there, this test runs with it set to the
   * production count): the logins must overlap in the slow hash, as an
   * attacker's do */
  const char *knob = g_getenv ("ST_TEST_PIN_HASH_ITERATIONS");
  g_assert_true (knob == NULL || g_strcmp0 (knob, "210000") == 0);
  /* the right PIN sent first, somewhere, and last: the outcome may differ,
   * the bound may not */
  const guint rights[] = { 0, (guint) g_test_rand_int_range (1, ST_ADMIN_PARALLEL - 1),
                           ST_ADMIN_PARALLEL - 1 };
  for (guint r = 0; r < G_N_ELEMENTS (rights); r++)
    {
      st_parallel_round (f, rights[r]);
      g_assert_cmpint (st_run_station (f, NULL, NULL, "operator", "unlock", "op", NULL), ==, 0);
    }
  /* the chain holds */
  g_assert_cmpint (st_run_station (f, NULL, NULL, "audit", "verify", NULL), ==, 0);
}

/* Five wrong PINs for @who: locked. */
static void
st_lock_out (StFixture *f, const char *who)
{
  for (guint i = 0; i < ST_ADMIN_MAX_ATTEMPTS; i++)
    g_assert_cmpint (st_run_station_as (f, who, "0000", NULL, NULL, NULL, "operator", "list", NULL), ==, ST_RC_AUTH);
  g_autofree gchar *sql = g_strdup_printf ("SELECT locked FROM operators WHERE name = '%s'", who);
  g_assert_cmpint (st_sql_int (f, sql), ==, 1);
}

static gchar *
st_role_of (StFixture *f, const char *who)
{
  g_autofree gchar *sql = g_strdup_printf ("SELECT role FROM operators WHERE name = '%s'", who);
  return st_sql (f, sql);
}

static void
test_last_admin_stays (StFixture *f, gconstpointer data)
{
  /* the demo's only admin cannot demote itself */
  g_autofree gchar *err = NULL;
  g_assert_cmpint (st_run_station_as (f, "admin", "4444", NULL, NULL, &err, "operator", "set-role", "admin",
                              "--role", "lead", NULL), ==, ST_RC_AUTH);
  g_assert_nonnull (strstr (err, "last admin"));
  g_assert_nonnull (strstr (err, "station operator add"));
  g_autofree gchar *role = st_role_of (f, "admin");
  g_assert_cmpstr (role, ==, "admin");

  /* a second admin, locked: it does not count */
  g_assert_cmpint (st_run_station_as (f, "admin", "4444", "STATION_NEW_OPERATOR_PIN=5678", NULL, NULL,
                              "operator", "add", "root2", "--role", "admin", NULL), ==, 0);
  st_lock_out (f, "root2");
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station_as (f, "admin", "4444", NULL, NULL, &err, "operator", "set-role", "admin",
                              "--role", "qa", NULL), ==, ST_RC_AUTH);
  g_assert_nonnull (strstr (err, "last admin"));
  g_assert_nonnull (strstr (err, "station operator unlock"));

  /* unlocked, it does: the first admin may step down, the second may not */
  g_assert_cmpint (st_run_station_as (f, "admin", "4444", NULL, NULL, NULL, "operator", "unlock", "root2",
                              NULL), ==, 0);
  g_assert_cmpint (st_run_station_as (f, "admin", "4444", NULL, NULL, NULL, "operator", "set-role", "admin",
                              "--role", "lead", NULL), ==, 0);
  g_clear_pointer (&role, g_free);
  role = st_role_of (f, "admin");
  g_assert_cmpstr (role, ==, "lead");
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_station_as (f, "root2", "5678", NULL, NULL, &err, "operator", "set-role", "root2",
                              "--role", "operator", NULL), ==, ST_RC_AUTH);
  g_assert_nonnull (strstr (err, "last admin"));
  g_clear_pointer (&role, g_free);
  role = st_role_of (f, "root2");
  g_assert_cmpstr (role, ==, "admin");
  /* making someone else an admin is always fine */
  g_assert_cmpint (st_run_station_as (f, "root2", "5678", NULL, NULL, NULL, "operator", "set-role", "admin",
                              "--role", "admin", NULL), ==, 0);
}

/* The SO PIN the demo set-up printed, once, in the log of the service that
 * made it (the fixture's first). */
static gchar *
st_demo_so_pin (StFixture *f)
{
  g_autofree gchar *path = g_build_filename (f->tmp, "service-1.log", NULL);
  g_autofree gchar *log = NULL;
  g_assert_true (g_file_get_contents (path, &log, NULL, NULL));
  const char *tag = "(shown once, not stored): ";
  const char *at = strstr (log, tag);
  g_assert_nonnull (at);
  at += strlen (tag);
  return g_strndup (at, strcspn (at, "\n"));
}

static void
test_recover_locked_admin (StFixture *f, gconstpointer data)
{
  g_autofree gchar *so_pin = st_demo_so_pin (f);
  g_autofree gchar *so_env = g_strdup_printf ("STATION_SO_PIN=%s", so_pin);
  st_lock_out (f, "admin");
  /* a restart: the service is locked, and no admin can unlock it */
  st_service_stop (f);
  const char *none[] = { NULL };
  st_service_ensure (f, none);
  g_autofree gchar *out = NULL, *err = NULL;
  g_assert_cmpint (st_run_station (f, &out, NULL, "status", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "HSM         locked"));
  g_assert_cmpint (st_run_station_as (f, "admin", "4444", NULL, NULL, &err, "unlock", NULL), ==, ST_RC_AUTH);
  g_assert_nonnull (strstr (err, "locked"));
  /* the refusal says the way back */
  g_assert_nonnull (strstr (err, "station admin recover admin"));
  gint64 seq0 = st_sql_int (f, "SELECT max(seq) FROM audit");

  /* break-glass: the SO PIN, no login */
  const char *recover[] = { "admin", "recover", "admin", NULL };
  const char *env[] = { so_env, NULL };
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_stationv (f, env, &out, NULL, recover), ==, 0);
  g_assert_nonnull (strstr (out, "admin admin unlocked"));
  g_assert_cmpint (st_sql_int (f, "SELECT locked FROM operators WHERE name = 'admin'"), ==, 0);
  g_assert_cmpint (st_sql_int (f, "SELECT failed_attempts FROM operators WHERE name = 'admin'"), ==, 0);
  /* audited, by the token's security officer */
  g_autofree gchar *sql = g_strdup_printf ("SELECT operator || ' ' || payload FROM audit WHERE seq > %"
                                           G_GINT64_FORMAT " AND event = 'admin-recover'", seq0);
  g_autofree gchar *entry = st_sql (f, sql);
  g_test_message ("audit: %s", entry);
  g_assert_true (g_str_has_prefix (entry, "hsm-so {"));
  g_assert_nonnull (strstr (entry, "\"name\":\"admin\""));
  g_assert_nonnull (strstr (entry, "\"action\":\"unlocked\""));
  g_assert_nonnull (strstr (entry, "\"was_locked\":true"));
  /* the admin is back: it unlocks the station and manages operators */
  g_assert_cmpint (st_run_station_as (f, "admin", "4444", NULL, NULL, NULL, "unlock", NULL), ==, 0);
  g_assert_cmpint (st_run_station_as (f, "admin", "4444", NULL, NULL, NULL, "operator", "list", NULL), ==, 0);

  /* or a new admin, for one whose PIN is lost */
  const char *add[] = { "admin", "recover", "root2", "--new", NULL };
  const char *add_env[] = { so_env, "STATION_NEW_OPERATOR_PIN=8765", NULL };
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (st_run_stationv (f, add_env, &out, NULL, add), ==, 0);
  g_assert_nonnull (strstr (out, "admin root2 added"));
  g_autofree gchar *role = st_role_of (f, "root2");
  g_assert_cmpstr (role, ==, "admin");
  g_assert_cmpint (st_run_station_as (f, "root2", "8765", NULL, NULL, NULL, "operator", "list", NULL), ==, 0);
  g_assert_cmpint (st_sql_int (f, "SELECT count(*) FROM audit WHERE event = 'admin-recover' AND "
                                  "payload LIKE '%\"action\":\"added\"%'"), ==, 1);
  /* recovery names an admin, or a new name: not another role's operator */
  const char *lead[] = { "admin", "recover", "lead", NULL };
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (st_run_stationv (f, env, NULL, &err, lead), ==, ST_RC_AUTH);
  g_assert_nonnull (strstr (err, "is lead"));
  g_assert_cmpint (st_run_station (f, NULL, NULL, "audit", "verify", NULL), ==, 0);
}

static void
test_recover_wrong_so_pin (StFixture *f, gconstpointer data)
{
  st_lock_out (f, "admin");
  gint64 seq0 = st_sql_int (f, "SELECT max(seq) FROM audit");
  const char *recover[] = { "admin", "recover", "admin", NULL };
  const char *env[] = { "STATION_SO_PIN=not-the-so-pin", NULL };
  g_autofree gchar *err = NULL;
  g_assert_cmpint (st_run_stationv (f, env, NULL, &err, recover), ==, ST_RC_AUTH);
  g_assert_nonnull (strstr (err, "CKR_PIN_INCORRECT"));
  g_assert_nonnull (strstr (err, "SO PIN"));
  g_assert_cmpint (st_sql_int (f, "SELECT locked FROM operators WHERE name = 'admin'"), ==, 1);
  g_autofree gchar *sql = g_strdup_printf ("SELECT count(*) FROM audit WHERE seq > %" G_GINT64_FORMAT
                                           " AND event = 'admin-recover-failed' AND payload LIKE "
                                           "'%%CKR_PIN_INCORRECT%%'", seq0);
  g_assert_cmpint (st_sql_int (f, sql), ==, 1);
  g_clear_pointer (&sql, g_free);
  sql = g_strdup_printf ("SELECT count(*) FROM audit WHERE seq > %" G_GINT64_FORMAT
                         " AND event = 'admin-recover'", seq0);
  g_assert_cmpint (st_sql_int (f, sql), ==, 0);
  /* the right one still works afterwards */
  g_autofree gchar *so_pin = st_demo_so_pin (f);
  g_autofree gchar *so_env = g_strdup_printf ("STATION_SO_PIN=%s", so_pin);
  const char *env_ok[] = { so_env, NULL };
  g_assert_cmpint (st_run_stationv (f, env_ok, NULL, NULL, recover), ==, 0);
  g_assert_cmpint (st_sql_int (f, "SELECT locked FROM operators WHERE name = 'admin'"), ==, 0);
}

int
main (int argc, char **argv)
{
  st_test_init (&argc, &argv);
  st_test_add_station ("/admin/parallel-guessing", NULL, test_parallel_guessing);
  st_test_add_station ("/admin/last-admin-stays", NULL, test_last_admin_stays);
  st_test_add_station ("/admin/recover-locked-admin", NULL, test_recover_locked_admin);
  st_test_add_station ("/admin/recover-wrong-so-pin", NULL, test_recover_wrong_so_pin);
  return g_test_run ();
}
