/* The backend table (st-backend.c): it is the one list of backends (every
 * scheme resolves through it, the help and the errors list every entry),
 * and what each descriptor declares is what its backend does. */
#include <string.h>

#include "st-backend.h"
#include "st-error.h"

/* Every capability, with the operation that needs it. */
static const struct {
  StBackendCaps cap;
  const char *name;
} caps[] = {
  { ST_BACKEND_CAP_KEYGEN, "KEYGEN" },
  { ST_BACKEND_CAP_PUT_KEY, "PUT_KEY" },
  { ST_BACKEND_CAP_SIGN, "SIGN" },
  { ST_BACKEND_CAP_COMMIT, "COMMIT" },
  { ST_BACKEND_CAP_READ_BACK, "READ_BACK" },
  { ST_BACKEND_CAP_FIRMWARE, "FIRMWARE" },
  { ST_BACKEND_CAP_PASSIVE, "PASSIVE" },
};

static guint
n_descriptors (void)
{
  const StBackendDescriptor *const *table = st_backend_get_descriptors ();
  guint n = 0;
  while (table[n] != NULL)
    n++;
  return n;
}

/* "scheme:x": a port every backend accepts without opening anything. */
static StBackend *
new_backend (const StBackendDescriptor *d)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *port = g_strdup_printf ("%s:x", d->scheme);
  StBackend *backend = st_backend_new (port, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (backend);
  return backend;
}

static void
test_every_scheme_resolves (void)
{
  const StBackendDescriptor *const *table = st_backend_get_descriptors ();
  g_assert_cmpuint (n_descriptors (), >=, 4);   /* agent, sim, stm32-rom, cmsis-dap */
  for (guint i = 0; table[i] != NULL; i++)
    {
      const StBackendDescriptor *d = table[i];
      g_test_message ("backend '%s'", d->scheme);
      g_assert_nonnull (d->scheme);
      g_assert_nonnull (d->usage);
      g_assert_nonnull (d->description);
      g_assert_nonnull (d->example);
      g_assert_nonnull (d->new);
      g_assert_cmpuint (d->capabilities, !=, 0);
      g_assert_true (g_str_has_prefix (d->usage, d->scheme));
      g_assert_true (g_str_has_prefix (d->example, d->scheme));
      g_assert_true (st_backend_lookup_scheme (d->scheme) == d);
      for (guint j = 0; j < i; j++)
        g_assert_cmpstr (table[j]->scheme, !=, d->scheme);

      g_autoptr(StBackend) backend = new_backend (d);
      g_assert_true (backend->descriptor == d);
      g_assert_cmpstr (backend->klass->name, ==, d->scheme);
      g_assert_cmpuint (st_backend_get_capabilities (backend), ==, d->capabilities);

      /* The example port is one the backend takes. */
      g_autoptr(GError) error = NULL;
      g_autoptr(StBackend) example = st_backend_new (d->example, NULL, NULL, &error);
      g_assert_no_error (error);
      g_assert_true (example->descriptor == d);

      /* "scheme:" alone: refused when the backend needs a path. */
      g_autofree gchar *bare = g_strdup_printf ("%s:", d->scheme);
      g_autoptr(StBackend) empty = st_backend_new (bare, NULL, NULL, &error);
      if (d->needs_path)
        {
          g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
          g_assert_nonnull (strstr (error->message, d->example));
          g_assert_null (empty);
        }
      else
        {
          g_assert_no_error (error);
          g_assert_true (empty->descriptor == d);
        }
    }
  g_assert_null (st_backend_lookup_scheme ("bogus"));

  /* A plain path goes to the first entry, the agent backend. */
  g_autoptr(GError) error = NULL;
  g_autoptr(StBackend) plain = st_backend_new ("/dev/ttyUSB9", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (plain->descriptor == table[0]);
  g_assert_cmpstr (table[0]->scheme, ==, "agent");
#ifdef ST_HAVE_SIMULATOR
  g_assert_nonnull (st_backend_lookup_scheme ("sim"));
#else
  g_autoptr(StBackend) sim = st_backend_new ("sim:x", NULL, NULL, &error);
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED);
  g_assert_nonnull (strstr (error->message, "built without the simulator"));
#endif
}

static void
test_help_lists_every_backend (void)
{
  const StBackendDescriptor *const *table = st_backend_get_descriptors ();
  g_autofree gchar *help = st_backend_get_port_help ();
  g_auto(GStrv) lines = g_strsplit (help, "\n", -1);
  /* One line per backend, one for a plain path, and the empty tail. */
  g_assert_cmpuint (g_strv_length (lines), ==, n_descriptors () + 2);
  g_assert_cmpstr (lines[n_descriptors () + 1], ==, "");
  for (guint i = 0; table[i] != NULL; i++)
    {
      g_assert_nonnull (strstr (lines[i], table[i]->usage));
      g_assert_nonnull (strstr (lines[i], table[i]->description));
    }
  g_assert_nonnull (strstr (lines[n_descriptors ()], "PATH"));
}

static void
test_unknown_scheme_lists_the_known (void)
{
  const StBackendDescriptor *const *table = st_backend_get_descriptors ();
  static const struct {
    const char *port;
    int code;
  } cases[] = {
    { "bogus:thing", ST_ERROR_NOT_SUPPORTED },
    { "", ST_ERROR_INVALID_DATA },
  };
  for (gsize k = 0; k < G_N_ELEMENTS (cases); k++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(StBackend) backend = st_backend_new (cases[k].port, NULL, NULL, &error);
      g_assert_null (backend);
      g_assert_error (error, ST_ERROR, cases[k].code);
      g_test_message ("%s", error->message);
      for (guint i = 0; table[i] != NULL; i++)
        g_assert_nonnull (strstr (error->message, table[i]->usage));
      g_assert_nonnull (strstr (error->message, "serial device path"));
    }
  g_autoptr(GError) error = NULL;
  g_autoptr(StBackend) backend = st_backend_new ("bogus:thing", NULL, NULL, &error);
  g_assert_nonnull (strstr (error->message, "'bogus'"));
}

/* Calls the operation that needs @cap on an unopened backend: NOT_SUPPORTED
 * exactly when the backend cannot do it at all (any other answer, say "the
 * port is not open", means the vtable has it). */
static gboolean
refuses (StBackend *backend, StBackendCaps cap)
{
  static const guint8 challenge[32] = { 1 };
  static const guint8 some_key[] = { 0x30, 0x03, 0x02, 0x01, 0x00 };
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) key = g_bytes_new_static (some_key, sizeof some_key);
  g_autoptr(GBytes) image = g_bytes_new_static (some_key, sizeof some_key);
  g_autoptr(GBytes) result = NULL;
  guint8 sha256[32] = { 0 };
  switch (cap)
    {
    case ST_BACKEND_CAP_KEYGEN:
      result = st_backend_keygen (backend, ST_ALG_EC_P256, &error);
      break;
    case ST_BACKEND_CAP_PUT_KEY:
      st_backend_put_key (backend, ST_ALG_EC_P256, key, &error);
      break;
    case ST_BACKEND_CAP_SIGN:
      result = st_backend_sign (backend, challenge, &error);
      break;
    case ST_BACKEND_CAP_COMMIT:
      st_backend_commit (backend, FALSE, &error);
      break;
    case ST_BACKEND_CAP_READ_BACK:
      result = st_backend_read (backend, ST_SLOT_CERT, &error);
      break;
    case ST_BACKEND_CAP_FIRMWARE:
      st_backend_flash_image (backend, 0x08000000, image, sha256, &error);
      break;
    case ST_BACKEND_CAP_PASSIVE:
      st_backend_set_product_serial (backend, "SN-1", &error);
      break;
    default:
      g_assert_not_reached ();
    }
  return g_error_matches (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED);
}

static void
test_capabilities_match_the_backends (void)
{
  const StBackendDescriptor *const *table = st_backend_get_descriptors ();
  for (guint i = 0; table[i] != NULL; i++)
    {
      const StBackendDescriptor *d = table[i];
      g_autoptr(StBackend) backend = new_backend (d);
      for (gsize c = 0; c < G_N_ELEMENTS (caps); c++)
        {
          gboolean declared = st_backend_has_capability (backend, caps[c].cap);
          g_test_message ("%s: %s %s", d->scheme, caps[c].name,
                          declared ? "declared" : "not declared");
          g_assert_cmpint (declared, ==, !refuses (backend, caps[c].cap));
        }
      /* A passive backend: the station makes the key and the read-back of
       * the blob stands in for the proof of possession. */
      if (st_backend_has_capability (backend, ST_BACKEND_CAP_PASSIVE))
        {
          g_assert_false (st_backend_has_capability (backend, ST_BACKEND_CAP_KEYGEN));
          g_assert_false (st_backend_has_capability (backend, ST_BACKEND_CAP_SIGN));
          g_assert_true (st_backend_has_capability (backend, ST_BACKEND_CAP_PUT_KEY
                                                               | ST_BACKEND_CAP_READ_BACK));
        }
      /* Every backend commits and can be read back. */
      g_assert_true (st_backend_has_capability (backend, ST_BACKEND_CAP_COMMIT
                                                           | ST_BACKEND_CAP_READ_BACK));
    }

  /* What the pipeline relies on, backend by backend. */
  static const struct {
    const char *scheme;
    gboolean passive;
  } expected[] = {
    { "agent", FALSE }, { "sim", FALSE }, { "stm32-rom", TRUE }, { "cmsis-dap", TRUE },
  };
  for (gsize k = 0; k < G_N_ELEMENTS (expected); k++)
    {
      const StBackendDescriptor *d = st_backend_lookup_scheme (expected[k].scheme);
#ifndef ST_HAVE_SIMULATOR
      if (d == NULL && g_strcmp0 (expected[k].scheme, "sim") == 0)
        continue;
#endif
      g_assert_nonnull (d);
      gboolean passive = (d->capabilities & ST_BACKEND_CAP_PASSIVE) != 0;
      gboolean keygen = (d->capabilities & ST_BACKEND_CAP_KEYGEN) != 0;
      gboolean sign = (d->capabilities & ST_BACKEND_CAP_SIGN) != 0;
      g_assert_cmpint (passive, ==, expected[k].passive);
      g_assert_cmpint (keygen, ==, !expected[k].passive);
      g_assert_cmpint (sign, ==, !expected[k].passive);
      g_assert_cmpint ((d->capabilities & ST_BACKEND_CAP_FIRMWARE) != 0, ==, expected[k].passive);
    }
}

#ifdef ST_HAVE_SIMULATOR
/* The sim: device does what the sim descriptor declares: it makes a key and
 * signs with it. */
static void
test_sim_does_what_it_declares (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StBackend) backend = st_backend_new ("sim:caps?units=1", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (st_backend_has_capability (backend, ST_BACKEND_CAP_KEYGEN | ST_BACKEND_CAP_SIGN));
  g_assert_true (st_backend_open (backend, &error));
  StDeviceInfo info;
  g_assert_true (st_backend_identify (backend, &info, &error));
  g_assert_no_error (error);
  g_autoptr(GBytes) csr = st_backend_keygen (backend, ST_ALG_EC_P256, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_bytes_get_size (csr), >, 0);
  static const guint8 challenge[32] = { 7 };
  g_autoptr(GBytes) sig = st_backend_sign (backend, challenge, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_bytes_get_size (sig), >, 0);
  g_assert_true (st_backend_abort (backend, &error));
  g_assert_no_error (error);
}
#endif

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/programmer/backend-table/every-scheme-resolves", test_every_scheme_resolves);
  g_test_add_func ("/programmer/backend-table/help", test_help_lists_every_backend);
  g_test_add_func ("/programmer/backend-table/unknown-scheme", test_unknown_scheme_lists_the_known);
  g_test_add_func ("/programmer/backend-table/capabilities", test_capabilities_match_the_backends);
#ifdef ST_HAVE_SIMULATOR
  g_test_add_func ("/programmer/backend-table/sim-capabilities", test_sim_does_what_it_declares);
#endif
  return g_test_run ();
}
