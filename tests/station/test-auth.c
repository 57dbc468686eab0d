/* Operators and roles: PIN hashing (PBKDF2 from OpenSSL), login, lockout
 * after five wrong PINs, role checks with their refusal message, the first
 * operator, the demo operators. A fresh database per test. */
#include "st-auth.h"
#include "st-db.h"
#include "st-error.h"
#include "st-util.h"
#include "st-test-tmp.h"

#include <openssl/evp.h>
#include <string.h>

typedef struct {
  gchar *dir, *path;
  StDb *db;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  f->dir = st_test_tmpdir ("st-auth");
  f->path = g_build_filename (f->dir, "station.db", NULL);
  f->db = st_db_open (f->path, &error);
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_pointer (&f->db, st_db_close);
  st_rm_rf (f->dir);
  g_free (f->path);
  g_free (f->dir);
}

/* The stored form holds its parameters; recomputing PBKDF2-HMAC-SHA256
 * with them gives the stored hash; salts differ. */
static void
test_hash (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *a = st_auth_hash_pin ("2468", &error);
  g_assert_no_error (error);
  g_autofree gchar *b = st_auth_hash_pin ("2468", &error);
  g_assert_cmpstr (a, !=, b);
  g_auto(GStrv) parts = g_strsplit (a, "$", -1);
  g_assert_cmpuint (g_strv_length (parts), ==, 4);
  g_assert_cmpstr (parts[0], ==, "pbkdf2-sha256");
  g_assert_cmpint (g_ascii_strtoll (parts[1], NULL, 10), >=, 200000);
  g_autoptr(GBytes) salt = st_hex_decode (parts[2], &error);
  g_assert_cmpuint (g_bytes_get_size (salt), ==, 16);
  guint8 out[32];
  g_assert_cmpint (PKCS5_PBKDF2_HMAC ("2468", 4, g_bytes_get_data (salt, NULL), 16,
                                      (int) g_ascii_strtoll (parts[1], NULL, 10), EVP_sha256 (),
                                      sizeof out, out), ==, 1);
  g_autofree gchar *hex = st_hex_encode (out, sizeof out);
  g_assert_cmpstr (hex, ==, parts[3]);

  gboolean match = FALSE;
  g_assert_true (st_auth_check_pin (a, "2468", &match, &error));
  g_assert_true (match);
  g_assert_true (st_auth_check_pin (a, "2469", &match, &error));
  g_assert_false (match);
  g_assert_true (st_auth_check_pin (a, "", &match, &error));
  g_assert_false (match);
  /* stored forms that are not ours, or too cheap */
  const char *bad[] = { "", "md5$1$00$00", "pbkdf2-sha256$1000$00112233445566778899aabbccddeeff$00",
                        "pbkdf2-sha256$210000$zz$00", a + 1 };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_assert_false (st_auth_check_pin (bad[i], "2468", &match, &error));
      g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
      g_clear_error (&error);
    }
  g_assert_null (st_auth_hash_pin ("123", &error));   /* too short */
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
}

/* The test-only cost knob of the PIN hash (station/st-auth.c, st_auth_cost),
 * which the integration tests set: in a sanitizer build it sets the cost
 * of new hashes and the least a stored one may have; out of its range it is
 * ignored; unset, the production cost holds again and the cheap hashes are
 * refused. Not compiled into other builds. */
static void
test_hash_test_cost (void)
{
#if defined(__SANITIZE_ADDRESS__)
  g_autoptr(GError) error = NULL;
  gboolean match = FALSE;
  g_setenv ("ST_TEST_PIN_HASH_ITERATIONS", "1000", TRUE);
  g_autofree gchar *cheap = st_auth_hash_pin ("2468", &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (cheap, "pbkdf2-sha256$1000$"));
  g_assert_true (st_auth_check_pin (cheap, "2468", &match, &error));
  g_assert_true (match);
  g_assert_true (st_auth_check_pin (cheap, "2469", &match, &error));
  g_assert_false (match);
  g_setenv ("ST_TEST_PIN_HASH_ITERATIONS", "999", TRUE);
  g_autofree gchar *below = st_auth_hash_pin ("2468", &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (below, "pbkdf2-sha256$210000$"));
  g_assert_false (st_auth_check_pin (cheap, "2468", &match, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_unsetenv ("ST_TEST_PIN_HASH_ITERATIONS");
  g_assert_false (st_auth_check_pin (cheap, "2468", &match, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_autofree gchar *normal = st_auth_hash_pin ("2468", &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (normal, "pbkdf2-sha256$210000$"));
#else
  g_test_skip ("the test-only cost knob exists only in sanitizer builds");
#endif
}

static void
test_roles (void)
{
  StRole r = 0;
  g_autoptr(GError) error = NULL;
  g_assert_true (st_role_from_string ("qa", &r, &error));
  g_assert_cmpint (r, ==, ST_ROLE_QA);
  g_assert_false (st_role_from_string ("root", &r, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_autofree gchar *one = st_role_mask_to_string (ST_ROLE_LEAD);
  g_assert_cmpstr (one, ==, "lead");
  g_autofree gchar *three = st_role_mask_to_string (ST_ROLE_QA | ST_ROLE_LEAD | ST_ROLE_ADMIN);
  g_assert_cmpstr (three, ==, "lead, qa or admin");
}

static void
test_login_lockout (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  /* the first operator: an admin, made without a login */
  g_assert_false (st_auth_add_operator (f->db, NULL, "ann", ST_ROLE_LEAD, "1234", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED);
  g_clear_error (&error);
  g_assert_true (st_auth_add_operator (f->db, NULL, "root", ST_ROLE_ADMIN, "9876", &error));
  g_assert_no_error (error);
  g_autoptr(StAuthSession) admin = st_auth_login (f->db, "root", "9876", &error);
  g_assert_no_error (error);
  g_assert_cmpint (admin->role, ==, ST_ROLE_ADMIN);
  g_assert_true (st_auth_add_operator (f->db, admin, "ann", ST_ROLE_LEAD, "1234", &error));
  g_assert_no_error (error);

  /* a lead cannot add operators, and the refusal names the role */
  g_autoptr(StAuthSession) ann = st_auth_login (f->db, "ann", "1234", &error);
  g_assert_no_error (error);
  g_assert_false (st_auth_add_operator (f->db, ann, "eve", ST_ROLE_ADMIN, "5555", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED);
  g_assert_nonnull (strstr (error->message, "needs the role admin; operator 'ann' is lead"));
  g_clear_error (&error);
  g_assert_true (st_auth_require (f->db, ann, ST_ROLE_LEAD | ST_ROLE_QA, "closing a batch", &error));
  g_assert_false (st_auth_require (f->db, ann, ST_ROLE_OPERATOR, "running a batch", &error));
  g_assert_nonnull (strstr (error->message, "running a batch needs the role operator"));
  g_clear_error (&error);
  /* the refusal was audited, with who */
  gint64 seq = 0;
  g_autofree gchar *hash = NULL;
  g_assert_true (st_db_audit_head (f->db, &seq, &hash, &error));
  g_autoptr(StDbAuditEntry) refused = st_db_audit_get (f->db, seq, &error);
  g_assert_cmpstr (refused->event, ==, "refused");
  g_assert_cmpstr (refused->operator_name, ==, "ann");
  g_assert_nonnull (strstr (refused->payload, "running a batch"));

  /* four wrong PINs, then the right one: the count starts again */
  for (int i = 0; i < 4; i++)
    {
      g_assert_null (st_auth_login (f->db, "ann", "0000", &error));
      g_assert_error (error, ST_ERROR, ST_ERROR_AUTH_FAILED);
      g_clear_error (&error);
    }
  g_autoptr(StAuthSession) again = st_auth_login (f->db, "ann", "1234", &error);
  g_assert_no_error (error);
  /* five wrong PINs lock; then even the right PIN is refused */
  for (int i = 1; i <= 5; i++)
    {
      g_assert_null (st_auth_login (f->db, "ann", "0000", &error));
      if (i < 5)
        {
          g_assert_error (error, ST_ERROR, ST_ERROR_AUTH_FAILED);
          g_autofree gchar *left = g_strdup_printf ("%d attempt(s) left", 5 - i);
          g_assert_nonnull (strstr (error->message, left));
        }
      else
        {
          g_assert_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED);
          g_assert_nonnull (strstr (error->message, "now locked"));
        }
      g_clear_error (&error);
    }
  g_assert_null (st_auth_login (f->db, "ann", "1234", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED);
  g_assert_nonnull (strstr (error->message, "station operator unlock ann"));
  g_clear_error (&error);
  g_assert_true (st_db_operator_unlock (f->db, "ann", admin->name, &error));
  g_autoptr(StAuthSession) back = st_auth_login (f->db, "ann", "1234", &error);
  g_assert_no_error (error);
  g_assert_nonnull (back);
  /* an unknown operator */
  g_assert_null (st_auth_login (f->db, "zed", "1234", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_AUTH_FAILED);
  g_clear_error (&error);

  g_autoptr(GString) report = g_string_new (NULL);
  g_assert_true (st_db_audit_verify (f->db, report, NULL, &error));
  g_assert_no_error (error);
}

static void
test_demo_operators (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_assert_true (st_auth_ensure_demo_operators (f->db, &error));
  g_assert_no_error (error);
  g_assert_true (st_auth_ensure_demo_operators (f->db, &error));  /* idempotent */
  g_assert_cmpint (st_db_operator_count (f->db, &error), ==, 4);
  const StRole roles[] = { ST_ROLE_OPERATOR, ST_ROLE_LEAD, ST_ROLE_QA, ST_ROLE_ADMIN };
  for (gsize i = 0; i < G_N_ELEMENTS (roles); i++)
    {
      const char *name = NULL, *pin = NULL;
      g_assert_true (st_demo_operator (roles[i], &name, &pin));
      g_autoptr(StAuthSession) s = st_auth_login (f->db, name, pin, &error);
      g_assert_no_error (error);
      g_assert_cmpint (s->role, ==, roles[i]);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* the production cost, whatever the caller's environment says */
  g_unsetenv ("ST_TEST_PIN_HASH_ITERATIONS");
  g_test_add_func ("/auth/hash", test_hash);
  g_test_add_func ("/auth/hash-test-cost", test_hash_test_cost);
  g_test_add_func ("/auth/roles", test_roles);
  g_test_add ("/auth/login-lockout", Fixture, NULL, fixture_setup, test_login_lockout, fixture_teardown);
  g_test_add ("/auth/demo-operators", Fixture, NULL, fixture_setup, test_demo_operators, fixture_teardown);
  return g_test_run ();
}
