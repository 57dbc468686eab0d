/* Operators and roles: PIN hashing, login, role checks. */
#include "st-auth.h"
#include "st-json.h"

#include <glib/gi18n.h>
#include <json-glib/json-glib.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

#include "st-error.h"
#include "st-util.h"

#define ST_AUTH_HASH_LEN 32
#define ST_AUTH_SCHEME "pbkdf2-sha256"
/* Stored iteration counts accepted when checking (a stored hash is input). */
#define ST_AUTH_ITER_MIN 100000
#define ST_AUTH_ITER_MAX 10000000

/* The iteration count of new hashes, and the least a stored hash may have.
 *
 * Test knob, in sanitizer builds only: under AddressSanitizer the
 * allocations OpenSSL makes on every PBKDF2 iteration go through ASan's
 * allocator and quarantine, and one 210000-iteration hash costs the service
 * about 0.3 s of CPU instead of 0.1 s; every command of an integration test
 * logs in. There,
 * ST_TEST_PIN_HASH_ITERATIONS=N (1000 to the production count) makes new
 * hashes with N iterations and accepts stored ones from N up. The code is
 * not compiled into a build without -fsanitize=address (make build, the
 * Debian package), so no release build can lower the cost; the unit tests
 * (tests/station/test-auth.c) run without it and check the production
 * cost. docs/testing.md, "Test-only knob: the PIN hash's cost". */
static void
st_auth_cost (guint *iterations, guint *least)
{
  *iterations = ST_AUTH_PBKDF2_ITERATIONS;
  *least = ST_AUTH_ITER_MIN;
#if defined(__SANITIZE_ADDRESS__)
  const char *knob = g_getenv ("ST_TEST_PIN_HASH_ITERATIONS");
  guint64 n = 0;
  if (knob != NULL && g_ascii_string_to_unsigned (knob, 10, 1000, ST_AUTH_PBKDF2_ITERATIONS, &n, NULL))
    *iterations = *least = (guint) n;
#endif
}

static gboolean
st_auth_pbkdf2 (const char *pin, const guint8 *salt, gsize salt_len, guint iterations,
                guint8 out[ST_AUTH_HASH_LEN], GError **error)
{
  if (PKCS5_PBKDF2_HMAC (pin, (int) strlen (pin), salt, (int) salt_len, (int) iterations,
                         EVP_sha256 (), ST_AUTH_HASH_LEN, out) != 1)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "cannot hash the PIN (PKCS5_PBKDF2_HMAC)");
      return FALSE;
    }
  return TRUE;
}

gchar *
st_auth_hash_pin (const char *pin, GError **error)
{
  gsize len = pin != NULL ? strlen (pin) : 0;
  if (len < ST_AUTH_PIN_MIN || len > ST_AUTH_PIN_MAX || !g_utf8_validate (pin, (gssize) len, NULL))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("a PIN must have %d to %d characters"), ST_AUTH_PIN_MIN, ST_AUTH_PIN_MAX);
      return NULL;
    }
  guint8 salt[ST_AUTH_SALT_LEN], hash[ST_AUTH_HASH_LEN];
  guint iterations = 0, least = 0;
  st_auth_cost (&iterations, &least);
  if (RAND_bytes (salt, sizeof salt) != 1)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "cannot draw a salt (RAND_bytes)");
      return NULL;
    }
  if (!st_auth_pbkdf2 (pin, salt, sizeof salt, iterations, hash, error))
    return NULL;
  g_autofree gchar *salt_hex = st_hex_encode (salt, sizeof salt);
  g_autofree gchar *hash_hex = st_hex_encode (hash, sizeof hash);
  st_memwipe (hash, sizeof hash);
  return g_strdup_printf (ST_AUTH_SCHEME "$%u$%s$%s", iterations, salt_hex, hash_hex);
}

gboolean
st_auth_check_pin (const char *stored, const char *pin, gboolean *match, GError **error)
{
  *match = FALSE;
  g_auto(GStrv) parts = stored != NULL ? g_strsplit (stored, "$", 5) : NULL;
  guint64 iterations = 0;
  guint cost = 0, least = 0;
  st_auth_cost (&cost, &least);
  g_autoptr(GBytes) salt = NULL, want = NULL;
  if (parts == NULL || g_strv_length (parts) != 4 || g_strcmp0 (parts[0], ST_AUTH_SCHEME) != 0
      || !g_ascii_string_to_unsigned (parts[1], 10, least, ST_AUTH_ITER_MAX, &iterations, NULL)
      || (salt = st_hex_decode (parts[2], NULL)) == NULL
      || g_bytes_get_size (salt) < 8 || g_bytes_get_size (salt) > 64
      || (want = st_hex_decode (parts[3], NULL)) == NULL
      || g_bytes_get_size (want) != ST_AUTH_HASH_LEN)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           _("the stored PIN hash is not in a form this station knows: an admin "
                           "must set the operator up again"));
      return FALSE;
    }
  if (pin == NULL || strlen (pin) > ST_AUTH_PIN_MAX)
    return TRUE;
  gsize salt_len = 0;
  const guint8 *salt_data = g_bytes_get_data (salt, &salt_len);
  guint8 got[ST_AUTH_HASH_LEN];
  if (!st_auth_pbkdf2 (pin, salt_data, salt_len, (guint) iterations, got, error))
    return FALSE;
  *match = CRYPTO_memcmp (got, g_bytes_get_data (want, NULL), ST_AUTH_HASH_LEN) == 0;
  st_memwipe (got, sizeof got);
  return TRUE;
}

gchar *
st_auth_read_pin (const char *prompt, GError **error)
{
  return st_read_secret (prompt != NULL ? prompt : "Operator PIN: ", ST_AUTH_PIN_ENV,
                         ST_AUTH_PIN_MAX, error);
}


static const char *
st_auth_ordinal (gint64 n)
{
  /* TRANSLATORS: the suffix of an ordinal number (1st, 2nd, 3rd, 4th) */
  return n == 1 ? C_("ordinal", "st") : n == 2 ? C_("ordinal", "nd") : n == 3 ? C_("ordinal", "rd")
                                                                             : C_("ordinal", "th");
}

/* For a locked admin, the way back when no other admin can unlock it. */
static void
st_auth_admin_hint (const StDbOperator *op, GError **error)
{
  if (error != NULL && *error != NULL && g_strcmp0 (op->role, "admin") == 0)
    {
      gchar *message = g_strdup_printf (_("%s; when no other admin can log in, recover it with the "
                                        "HSM token's SO PIN ('station admin recover %s')"),
                                        (*error)->message, op->name);
      g_free ((*error)->message);
      (*error)->message = message;
    }
}

StAuthSession *
st_auth_login (StDb *db, const char *name, const char *pin, GError **error)
{
  /* counted, and the lock checked, before the slow hash (st_db_operator_login_reserve) */
  g_autoptr(GError) local = NULL;
  gint64 attempt = 0;
  g_autoptr(StDbOperator) op = st_db_operator_login_reserve (db, name, ST_AUTH_MAX_ATTEMPTS,
                                                             &attempt, &local);
  if (op == NULL)
    {
      if (g_error_matches (local, ST_ERROR, ST_ERROR_NOT_FOUND))
        g_set_error (error, ST_ERROR, ST_ERROR_AUTH_FAILED,
                     _("there is no operator '%s': check the name (--operator NAME), or ask an admin"),
                     name != NULL ? name : "");
      else
        g_propagate_error (error, g_steal_pointer (&local));
      return NULL;
    }
  if (attempt == 0)
    {
      if (op->locked)
        g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                     _("operator '%s' is locked after %d wrong PINs: an admin must unlock it "
                     "('station operator unlock %s')"), op->name, ST_AUTH_MAX_ATTEMPTS, op->name);
      else
        g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                     _("operator '%s' has no PIN attempt left: the last %d are being checked now, "
                     "and if they are wrong the operator is locked until an admin unlocks it "
                     "('station operator unlock %s')"), op->name, ST_AUTH_MAX_ATTEMPTS, op->name);
      st_auth_admin_hint (op, error);
      return NULL;
    }
  StRole role = 0;
  if (!st_role_from_string (op->role, &role, error))
    return NULL;
  gboolean match = FALSE;
  if (!st_auth_check_pin (op->pin_hash, pin, &match, error))
    return NULL;
  if (!match)
    {
      gboolean locked = FALSE;
      if (!st_db_operator_login_wrong (db, op->name, attempt, ST_AUTH_MAX_ATTEMPTS, &locked, error))
        return NULL;
      if (locked && attempt < ST_AUTH_MAX_ATTEMPTS)
        g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                     _("wrong PIN for operator '%s', and the operator is now locked by the wrong "
                     "PINs tried at the same time: an admin must unlock it ('station operator "
                     "unlock %s')"), op->name, op->name);
      else if (locked)
        g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                     _("wrong PIN for operator '%s': that was the %d%s wrong PIN in a row, the "
                     "operator is now locked: an admin must unlock it ('station operator unlock %s')"),
                     op->name, (int) attempt, st_auth_ordinal (attempt), op->name);
      else
        g_set_error (error, ST_ERROR, ST_ERROR_AUTH_FAILED,
                     ngettext ("wrong PIN for operator '%s': %d attempt(s) left before the operator is locked",
                               "wrong PIN for operator '%s': %d attempt(s) left before the operator is locked",
                               ST_AUTH_MAX_ATTEMPTS - attempt),
                     op->name, (int) (ST_AUTH_MAX_ATTEMPTS - attempt));
      if (locked)
        st_auth_admin_hint (op, error);
      return NULL;
    }
  if (!st_db_operator_login_right (db, op->name, attempt, error))
    {
      st_auth_admin_hint (op, error);
      return NULL;
    }
  st_db_set_actor (db, op->name);
  StAuthSession *s = g_new0 (StAuthSession, 1);
  s->name = g_strdup (op->name);
  s->role = role;
  return s;
}

gboolean
st_auth_require (StDb *db, const StAuthSession *session, guint roles, const char *what,
                 GError **error)
{
  if (session != NULL && (session->role & roles) != 0)
    return TRUE;
  g_autofree gchar *needed = st_role_mask_to_string (roles);
  if (session == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                   _("%s needs the role %s: log in with --operator NAME and the PIN"), _(what), needed);
      return FALSE;
    }
  g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
               _("%s needs the role %s; operator '%s' is %s: ask someone with that role"),
               _(what), needed, session->name, st_role_to_string (session->role));
  /* the refusal is an action too */
  g_autoptr(JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "action");
  json_builder_add_string_value (b, what);
  json_builder_set_member_name (b, "role");
  json_builder_add_string_value (b, st_role_to_string (session->role));
  json_builder_set_member_name (b, "needs");
  json_builder_add_string_value (b, needed);
  json_builder_end_object (b);
  g_autofree gchar *payload = st_json_builder_text (b);
  g_autoptr(GError) audit_error = NULL;
  if (!st_db_audit_add (db, session->name, "refused", payload, &audit_error))
    g_warning ("%s", audit_error->message);
  return FALSE;
}

gboolean
st_auth_add_operator (StDb *db, const StAuthSession *admin, const char *name, StRole role,
                      const char *pin, GError **error)
{
  if (admin != NULL && !st_auth_require (db, admin, ST_ROLE_ADMIN, N_("adding an operator"), error))
    return FALSE;
  g_autofree gchar *hash = st_auth_hash_pin (pin, error);
  if (hash == NULL)
    {
      g_prefix_error (error, _("cannot add operator '%s': "), name != NULL ? name : "");
      return FALSE;
    }
  gboolean ok = st_db_operator_add (db, name, st_role_to_string (role), hash,
                                    admin != NULL ? admin->name : NULL, error);
  st_memwipe (hash, strlen (hash));
  return ok;
}

gboolean
st_auth_ensure_demo_operators (StDb *db, GError **error)
{
  const StAuthSession setup = { .name = (gchar *) "admin", .role = ST_ROLE_ADMIN };
  for (guint i = 0; i < st_demo_operator_count (); i++)
    {
      StRole role = 0;
      const char *name = NULL, *pin = NULL;
      st_demo_operator_nth (i, &role, &name, &pin);
      g_autoptr(GError) local = NULL;
      g_autoptr(StDbOperator) op = st_db_operator_get (db, name, &local);
      if (op != NULL)
        continue;
      if (!g_error_matches (local, ST_ERROR, ST_ERROR_NOT_FOUND))
        {
          g_propagate_error (error, g_steal_pointer (&local));
          return FALSE;
        }
      gint64 n = st_db_operator_count (db, error);
      if (n < 0)
        return FALSE;
      if (!st_auth_add_operator (db, n == 0 ? NULL : &setup, name, role, pin, error))
        {
          g_prefix_error (error, _("cannot make the demo operators: "));
          return FALSE;
        }
    }
  return TRUE;
}
