/* Matter factory data per unit (issue 18; station/st-matter-factory.c,
 * docs/matter.md "Factory data per unit").
 *
 * /matter-factory/profile-keys: rotating-id-length, commissioning-flow and
 *   discovery: their defaults, accepted values and every refusal.
 * /matter-factory/random: units of a random-discriminator profile: the
 *   discriminator inside the profile's range (every value of a small range
 *   seen), valid and distinct passcodes, salts of the profile's length,
 *   the verifier that of the passcode, QR text and manual code parsed back
 *   to the unit's fields.
 * /matter-factory/sequential: the counter walks the range and wraps round.
 * /matter-factory/flows: user-intent and custom flows give the 21-digit
 *   code with VID and PID; the discovery bits and the unique id.
 * /matter-factory/check: st_matter_unit_data_check() refuses a record whose
 *   passcode, verifier, salt, QR text or manual code was changed.
 * /matter-factory/refused: a profile without [matter], a bad range. */
#include <glib.h>
#include <string.h>

#include "st-error.h"
#include "st-matter-factory.h"
#include "st-profile.h"

static StProfile *
load_profile (const char *matter_extra, GError **error)
{
  g_autofree gchar *text = g_strdup_printf (
      "[profile]\nname = matter-light\n"
      "[key]\nmode = device-csr\nalgorithm = ec-p256\n"
      "[certificate]\nsubject = CN={uid},O=Station Test\nvalidity = no-expiry\n"
      "key-usage = digitalSignature\n"
      "[serial]\nformat = ML-{seq:06}\n[device]\nlock = false\n"
      "[matter]\nvendor-id = FFF1\nproduct-id = 800A\n"
      "certification-declaration = /nonexistent/cd.der\npbkdf2-iterations = 1000\n%s",
      matter_extra);
  return st_profile_load_from_data (text, strlen (text), "matter.profile", error);
}

/* Everything a unit's data must be, checked field by field against the
 * profile and by parsing its codes back (not by the code under test's own
 * check alone). */
static void
assert_unit_consistent (const StProfileMatter *m, const StMatterUnitData *d)
{
  g_assert_cmpuint (d->vendor_id, ==, m->vendor_id);
  g_assert_cmpuint (d->product_id, ==, m->product_id);
  g_assert_cmpuint (d->discriminator, >=, m->discriminator_first);
  g_assert_cmpuint (d->discriminator, <=, m->discriminator_last);
  g_assert_true (st_matter_passcode_valid (d->passcode));
  g_assert_cmpuint (d->iterations, ==, m->pbkdf2_iterations);
  g_assert_cmpuint (d->salt_len, ==, m->salt_length);
  g_assert_cmpuint (d->unique_id_len, ==, m->rotating_id_length);
  g_assert_cmpuint (d->flow, ==, m->commissioning_flow);
  g_assert_cmpuint (d->discovery, ==, m->discovery);

  g_autoptr(GError) error = NULL;
  g_assert_true (st_matter_spake2p_verifier_matches (d->verifier, sizeof d->verifier, d->passcode,
                                                     d->salt, d->salt_len, d->iterations, &error));
  g_assert_no_error (error);
  /* another passcode does not match the verifier */
  guint32 other = d->passcode == 20202021 ? 20202022 : 20202021;
  g_assert_false (st_matter_spake2p_verifier_matches (d->verifier, sizeof d->verifier, other,
                                                      d->salt, d->salt_len, d->iterations, &error));
  g_assert_no_error (error);

  StMatterPayload p;
  g_assert_nonnull (d->qr_text);
  g_assert_cmpuint (strlen (d->qr_text), ==, ST_MATTER_QR_LEN - 1);
  g_assert_true (st_matter_qr_parse (d->qr_text, strlen (d->qr_text), &p, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (p.version, ==, 0);
  g_assert_cmpuint (p.vendor_id, ==, d->vendor_id);
  g_assert_cmpuint (p.product_id, ==, d->product_id);
  g_assert_cmpuint (p.flow, ==, d->flow);
  g_assert_cmpuint (p.discovery, ==, d->discovery);
  g_assert_cmpuint (p.discriminator, ==, d->discriminator);
  g_assert_cmpuint (p.passcode, ==, d->passcode);

  StMatterManualCode mc;
  g_assert_nonnull (d->manual_code);
  g_assert_cmpuint (strlen (d->manual_code), ==,
                    d->flow == ST_MATTER_FLOW_STANDARD ? ST_MATTER_MANUAL_SHORT_LEN
                                                       : ST_MATTER_MANUAL_LONG_LEN);
  g_assert_true (st_matter_manual_parse (d->manual_code, strlen (d->manual_code), &mc, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (mc.passcode, ==, d->passcode);
  g_assert_cmpuint (mc.short_discriminator, ==, d->discriminator >> 8);
  g_assert_cmpint (mc.has_vid_pid, ==, d->flow != ST_MATTER_FLOW_STANDARD);
  if (mc.has_vid_pid)
    {
      g_assert_cmpuint (mc.vendor_id, ==, d->vendor_id);
      g_assert_cmpuint (mc.product_id, ==, d->product_id);
    }
  g_assert_true (st_matter_unit_data_check (d, &error));
  g_assert_no_error (error);
}

static StMatterUnitData *
generate (const StProfileMatter *m, guint64 counter)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StMatterUnitData) d = st_matter_unit_data_new ();
  g_assert_true (st_matter_unit_data_generate (m, counter, d, &error));
  g_assert_no_error (error);
  return g_steal_pointer (&d);
}

static void
test_profile_keys (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StProfile) def = load_profile ("", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (def->matter.rotating_id_length, ==, 0);
  g_assert_cmpuint (def->matter.commissioning_flow, ==, ST_MATTER_FLOW_STANDARD);
  g_assert_cmpuint (def->matter.discovery, ==, ST_MATTER_DISCOVERY_BLE);

  g_autoptr(StProfile) all = load_profile ("rotating-id-length = 16\ncommissioning-flow = user-intent\n"
                                           "discovery = on-network;soft-ap;ble\n", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (all->matter.rotating_id_length, ==, 16);
  g_assert_cmpuint (all->matter.commissioning_flow, ==, ST_MATTER_FLOW_USER_INTENT);
  g_assert_cmpuint (all->matter.discovery, ==,
                    ST_MATTER_DISCOVERY_BLE | ST_MATTER_DISCOVERY_SOFT_AP | ST_MATTER_DISCOVERY_ON_NETWORK);
  g_autoptr(StProfile) custom = load_profile ("rotating-id-length = 32\ncommissioning-flow = custom\n"
                                              "discovery = on-network\n", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (custom->matter.rotating_id_length, ==, 32);
  g_assert_cmpuint (custom->matter.commissioning_flow, ==, ST_MATTER_FLOW_CUSTOM);
  g_assert_cmpuint (custom->matter.discovery, ==, ST_MATTER_DISCOVERY_ON_NETWORK);
  g_autoptr(StProfile) none = load_profile ("rotating-id-length = 0\ncommissioning-flow = standard\n", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (none->matter.rotating_id_length, ==, 0);

  static const struct { const char *extra, *message; } bad[] = {
    { "rotating-id-length = 15\n", "[matter] rotating-id-length=15 is not allowed; give 0 (no rotating device id) or a length from 16 to 32 bytes" },
    { "rotating-id-length = 33\n", "[matter] rotating-id-length=33 is not allowed" },
    { "rotating-id-length = -1\n", "[matter] rotating-id-length=-1 is not allowed" },
    { "rotating-id-length = 16x\n", "[matter] rotating-id-length=16x is not allowed" },
    { "commissioning-flow = intent\n", "[matter] commissioning-flow=intent is not allowed; use standard, user-intent or custom" },
    { "commissioning-flow = 1\n", "[matter] commissioning-flow=1 is not allowed" },
    { "discovery = wifi\n", "[matter] discovery=wifi is not allowed; give a list of one to three of ble, soft-ap and on-network" },
    { "discovery = ble;ble\n", "[matter] discovery=ble;ble is not allowed" },
    { "discovery = \n", "[matter] discovery= is not allowed" },
    { "discovery = BLE\n", "[matter] discovery=BLE is not allowed" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) e = NULL;
      g_autoptr(StProfile) p = load_profile (bad[i].extra, &e);
      g_assert_null (p);
      g_assert_error (e, ST_ERROR, ST_ERROR_INVALID_DATA);
      if (strstr (e->message, bad[i].message) == NULL)
        g_error ("%s: got \"%s\", wanted \"%s\"", bad[i].extra, e->message, bad[i].message);
      g_assert_nonnull (strstr (e->message, "matter.profile"));
    }
}

static void
test_random (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StProfile) p = load_profile ("discriminator = random\ndiscriminator-range = 1000-1003\n"
                                         "salt-length = 24\n", &error);
  g_assert_no_error (error);
  enum { N = 64 };
  guint seen[4] = { 0 };
  g_autoptr(GHashTable) passcodes = g_hash_table_new (g_direct_hash, g_direct_equal);
  g_autoptr(GHashTable) salts = g_hash_table_new_full (g_bytes_hash, g_bytes_equal,
                                                       (GDestroyNotify) g_bytes_unref, NULL);
  for (guint i = 0; i < N; i++)
    {
      g_autoptr(StMatterUnitData) d = generate (&p->matter, i);
      assert_unit_consistent (&p->matter, d);
      g_assert_false (d->sequential);
      seen[d->discriminator - 1000]++;
      /* 64 passcodes of 10^8: a repeat has odds of 2e-5, a broken generator far more */
      g_assert_false (g_hash_table_contains (passcodes, GUINT_TO_POINTER (d->passcode)));
      g_hash_table_add (passcodes, GUINT_TO_POINTER (d->passcode));
      GBytes *salt = g_bytes_new (d->salt, d->salt_len);
      g_assert_false (g_hash_table_contains (salts, salt));
      g_hash_table_add (salts, salt);
    }
  /* each of the 4 values missed by 64 uniform draws: odds 4 * (3/4)^64 = 4e-8 */
  for (guint i = 0; i < 4; i++)
    g_assert_cmpuint (seen[i], >, 0);

  /* the whole 12 bits, the default range */
  g_autoptr(StProfile) wide = load_profile ("", &error);
  g_assert_no_error (error);
  guint16 lo = 4095, hi = 0;
  for (guint i = 0; i < 32; i++)
    {
      g_autoptr(StMatterUnitData) d = generate (&wide->matter, 0);
      assert_unit_consistent (&wide->matter, d);
      lo = MIN (lo, d->discriminator);
      hi = MAX (hi, d->discriminator);
    }
  /* 32 draws all in one half of 0..4095: odds 2 * 2^-32 */
  g_assert_cmpuint (lo, <, 2048);
  g_assert_cmpuint (hi, >=, 2048);

  /* a range of one value */
  g_autoptr(StProfile) one = load_profile ("discriminator-range = 3840-3840\n", &error);
  g_assert_no_error (error);
  g_autoptr(StMatterUnitData) d = generate (&one->matter, 7);
  g_assert_cmpuint (d->discriminator, ==, 3840);
}

static void
test_sequential (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StProfile) p = load_profile ("discriminator = sequential\ndiscriminator-range = 4090-4095\n",
                                         &error);
  g_assert_no_error (error);
  guint span = 6;
  for (guint64 c = 0; c < 3 * span; c++)
    {
      g_autoptr(StMatterUnitData) d = generate (&p->matter, c);
      assert_unit_consistent (&p->matter, d);
      g_assert_true (d->sequential);
      g_assert_cmpuint (d->counter, ==, c);
      g_assert_cmpuint (d->discriminator, ==, 4090 + c % span);
    }
  /* consecutive counters give consecutive values, and the last wraps to the first */
  g_autoptr(StMatterUnitData) last = generate (&p->matter, span - 1);
  g_autoptr(StMatterUnitData) first = generate (&p->matter, span);
  g_assert_cmpuint (last->discriminator, ==, 4095);
  g_assert_cmpuint (first->discriminator, ==, 4090);
  /* the counter never overflows into a value outside the range */
  g_autoptr(StMatterUnitData) big = generate (&p->matter, G_MAXUINT64);
  g_assert_cmpuint (big->discriminator, ==, 4090 + G_MAXUINT64 % span);
  /* the whole range in turn, each value once */
  g_autoptr(StProfile) full = load_profile ("discriminator = sequential\n", &error);
  g_assert_no_error (error);
  g_autoptr(StMatterUnitData) a = generate (&full->matter, 4095);
  g_autoptr(StMatterUnitData) b = generate (&full->matter, 4096);
  g_assert_cmpuint (a->discriminator, ==, 4095);
  g_assert_cmpuint (b->discriminator, ==, 0);
}

static void
test_flows (void)
{
  static const char *const extras[] = {
    "commissioning-flow = user-intent\ndiscovery = soft-ap\nrotating-id-length = 16\n",
    "commissioning-flow = custom\ndiscovery = ble;on-network\nrotating-id-length = 32\n",
    "commissioning-flow = standard\ndiscovery = on-network;soft-ap;ble\nrotating-id-length = 20\n",
  };
  for (gsize i = 0; i < G_N_ELEMENTS (extras); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(StProfile) p = load_profile (extras[i], &error);
      g_assert_no_error (error);
      g_autoptr(StMatterUnitData) a = generate (&p->matter, 0);
      g_autoptr(StMatterUnitData) b = generate (&p->matter, 0);
      assert_unit_consistent (&p->matter, a);
      assert_unit_consistent (&p->matter, b);
      g_assert_cmpuint (a->unique_id_len, ==, p->matter.rotating_id_length);
      /* unique ids of 16 random bytes or more never repeat */
      g_assert_cmpmem (a->unique_id + a->unique_id_len, ST_MATTER_UNIQUE_ID_MAX - a->unique_id_len,
                       b->unique_id + b->unique_id_len, ST_MATTER_UNIQUE_ID_MAX - b->unique_id_len);
      g_assert_true (memcmp (a->unique_id, b->unique_id, a->unique_id_len) != 0);
    }
  g_autoptr(GError) error = NULL;
  g_autoptr(StProfile) p = load_profile ("", &error);
  g_autoptr(StMatterUnitData) d = generate (&p->matter, 0);
  g_assert_cmpuint (d->unique_id_len, ==, 0);
}

static void
test_check (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StProfile) p = load_profile ("salt-length = 16\ncommissioning-flow = custom\n", &error);
  g_assert_no_error (error);
  g_autoptr(StMatterUnitData) d = generate (&p->matter, 0);
  g_assert_true (st_matter_unit_data_check (d, &error));
  g_assert_no_error (error);

  StMatterUnitData t = *d;   /* shares the strings: only fields below are changed */
  t.passcode = d->passcode == 20202021 ? 20202022 : 20202021;
  g_assert_false (st_matter_unit_data_check (&t, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
  g_clear_error (&error);
  t = *d;
  t.verifier[40] ^= 1;
  g_assert_false (st_matter_unit_data_check (&t, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
  g_clear_error (&error);
  t = *d;
  t.salt[0] ^= 0x80;
  g_assert_false (st_matter_unit_data_check (&t, &error));
  g_clear_error (&error);
  t = *d;
  t.discriminator = (guint16) ((d->discriminator + 1) & 0xFFF);
  g_assert_false (st_matter_unit_data_check (&t, &error));
  g_assert_nonnull (strstr (error->message, "QR text"));
  g_clear_error (&error);
  t = *d;
  t.discovery = 0;
  g_assert_false (st_matter_unit_data_check (&t, &error));
  g_clear_error (&error);
  /* a manual code of the record with one digit changed (its check digit fails) */
  t = *d;
  g_autofree gchar *manual = g_strdup (d->manual_code);
  manual[3] = manual[3] == '9' ? '0' : (char) (manual[3] + 1);
  t.manual_code = manual;
  g_assert_false (st_matter_unit_data_check (&t, &error));
  g_assert_nonnull (strstr (error->message, "manual pairing code"));
  g_clear_error (&error);
}

static void
test_refused (void)
{
  g_autoptr(GError) error = NULL;
  StProfileMatter off = { 0 };
  g_autoptr(StMatterUnitData) d = st_matter_unit_data_new ();
  g_assert_false (st_matter_unit_data_generate (&off, 0, d, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "[matter]"));
  g_assert_null (d->qr_text);
  g_clear_error (&error);

  g_autoptr(StProfile) p = load_profile ("", &error);
  g_assert_no_error (error);
  StProfileMatter m = p->matter;
  m.discriminator_first = 10;
  m.discriminator_last = 9;
  g_assert_false (st_matter_unit_data_generate (&m, 0, d, &error));
  g_assert_nonnull (strstr (error->message, "discriminator-range"));
  g_clear_error (&error);
  m = p->matter;
  m.rotating_id_length = 8;
  g_assert_false (st_matter_unit_data_generate (&m, 0, d, &error));
  g_assert_nonnull (strstr (error->message, "rotating-id-length"));
  g_clear_error (&error);
  m = p->matter;
  m.salt_length = 8;
  g_assert_false (st_matter_unit_data_generate (&m, 0, d, &error));
  g_assert_nonnull (strstr (error->message, "salt"));
  g_assert_cmpuint (d->passcode, ==, 0);
  g_assert_null (d->qr_text);
}

/* A batch's recorded profile text is a Matter one exactly when it loads
 * with matter.enabled (st_profile_text_is_matter, BatchList's "matter"). */
static void
test_text_is_matter (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StProfile) p = load_profile ("", &error);
  g_assert_no_error (error);
  g_assert_true (p->matter.enabled);
  g_assert_true (st_profile_text_is_matter (p->text));
  /* the group named only in a comment or a value is no group */
  const char *plain = "[profile]\nname = plain\n# [matter] some day\ndescription = [matter]\n";
  g_assert_false (st_profile_text_is_matter (plain));
  g_assert_false (st_profile_text_is_matter (NULL));
  g_assert_false (st_profile_text_is_matter ("not a key file ["));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/matter-factory/profile-keys", test_profile_keys);
  g_test_add_func ("/matter-factory/random", test_random);
  g_test_add_func ("/matter-factory/sequential", test_sequential);
  g_test_add_func ("/matter-factory/flows", test_flows);
  g_test_add_func ("/matter-factory/check", test_check);
  g_test_add_func ("/matter-factory/refused", test_refused);
  g_test_add_func ("/matter-factory/text-is-matter", test_text_is_matter);
  return g_test_run ();
}
