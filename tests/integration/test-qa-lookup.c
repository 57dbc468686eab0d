/* QA's scan at the desk (issue 17): UnitLookup finds a unit by the code on
 * its label (product serial, device uid or certificate serial) and checks
 * what is on record without the device (docs/gui.md, "The QA desk").
 *
 * A real batch of three units on simulated devices, made with the CLI.
 * Then, over the service's own socket with the client library, as the
 * GUI's QA view calls it:
 *  - each unit is found by its product serial, its uid (upper case too)
 *    and its certificate serial; its record verifies, naming the batch's
 *    work order, and the certificate's chain and names are checked; stock
 *    openssl agrees that the certificate the lookup checked chains to the
 *    root;
 *  - an unknown code is NOT_FOUND naming it; a code with a control
 *    character is refused, quoted escaped; 4 KiB of it is refused;
 *  - a revoked unit (`unit revoke` as a lead) is found and fails, saying
 *    REVOKED;
 *  - a certificate swapped behind the station's back (sqlite3, its
 *    trigger dropped) fails the serial, key and uid checks;
 *  - only QA may look up: an operator and a lead are refused with the
 *    role it needs. */
#include <string.h>

#include "st-client.h"
#include "st-error.h"
#include "st-test-run.h"

typedef struct {
  gchar *serial, *uid, *cert_serial;
} LookupUnit;

static void
lookup_unit_clear (LookupUnit *u)
{
  g_free (u->serial);
  g_free (u->uid);
  g_free (u->cert_serial);
}

/* A client of the fixture's service, logged in as @who. */
static StDbusStation1 *
lookup_client (StFixture *f, const char *who, const char *pin)
{
  StClientTarget target = { .home = f->home };
  g_autoptr(GError) error = NULL;
  StDbusStation1 *proxy = st_client_connect (&target, NULL, &error);
  g_assert_no_error (error);
  g_autofree gchar *role = NULL;
  g_assert_true (st_dbus_station1_call_login_sync (proxy, who, pin, &role, NULL, &error));
  g_assert_no_error (error);
  return proxy;
}

typedef struct {
  gboolean verified;
  gchar *report, *failure, *work_order, *uid, *cert_state;
  gint64 unit_id;
} Lookup;

static void
lookup_clear (Lookup *l)
{
  g_free (l->report);
  g_free (l->failure);
  g_free (l->work_order);
  g_free (l->uid);
  g_free (l->cert_state);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Lookup, lookup_clear)

static gboolean
lookup (StDbusStation1 *proxy, const char *code, Lookup *l, GError **error)
{
  g_autoptr(GVariant) unit = NULL;
  lookup_clear (l);
  memset (l, 0, sizeof *l);
  if (!st_dbus_station1_call_unit_lookup_sync (proxy, code, &unit, &l->verified, &l->report, &l->failure,
                                               NULL, error))
    return FALSE;
  l->work_order = g_strdup (st_dict_get_string (unit, "work-order"));
  l->uid = g_strdup (st_dict_get_string (unit, "uid"));
  l->cert_state = g_strdup (st_dict_get_string (unit, "cert-state"));
  l->unit_id = st_dict_get_int64 (unit, "id");
  return TRUE;
}

static void
test_lookup (StFixture *f, gconstpointer data)
{
  gint64 batch = st_create_batch (f, "example-device-csr.profile", 3);
  g_autofree gchar *id = g_strdup_printf ("%" G_GINT64_FORMAT, batch);
  g_autofree gchar *port = st_start_devsim (f, "--units", "3", "--seed", "1717", NULL);
  g_assert_cmpint (st_run_station (f, NULL, NULL, "batch", "run", id, "--port", port, "--units", "3", NULL),
                   ==, 0);
  st_stop_devsims (f);

  LookupUnit units[3] = { 0 };
  for (guint i = 0; i < 3; i++)
    {
      g_autofree gchar *q = g_strdup_printf ("SELECT u.product_serial || ' ' || u.uid || ' ' || c.serial FROM "
                                             "units u JOIN certificates c ON c.unit_id = u.id AND c.state = "
                                             "'active' WHERE u.batch_id = %" G_GINT64_FORMAT " ORDER BY u.id "
                                             "LIMIT 1 OFFSET %u", batch, i);
      g_autofree gchar *row = st_sql (f, q);
      g_auto(GStrv) parts = g_strsplit (g_strstrip (row), " ", 3);
      g_assert_cmpuint (g_strv_length (parts), ==, 3);
      units[i].serial = g_strdup (parts[0]);
      units[i].uid = g_strdup (parts[1]);
      units[i].cert_serial = g_strdup (parts[2]);
    }

  g_autoptr(StDbusStation1) qa = lookup_client (f, "qa", "3333");
  g_autoptr(GError) error = NULL;
  for (guint i = 0; i < 3; i++)
    {
      g_autofree gchar *upper_uid = g_ascii_strup (units[i].uid, -1);
      const char *codes[] = { units[i].serial, units[i].uid, upper_uid, units[i].cert_serial };
      for (guint k = 0; k < G_N_ELEMENTS (codes); k++)
        {
          g_auto(Lookup) l = { 0 };
          g_assert_true (lookup (qa, codes[k], &l, &error));
          g_assert_no_error (error);
          g_test_message ("%s:\n%s", codes[k], l.report);
          g_assert_true (l.verified);
          g_assert_cmpstr (l.failure, ==, "");
          g_assert_cmpstr (l.work_order, ==, "WO-TEST-1");
          g_assert_cmpstr (l.uid, ==, units[i].uid);
          g_assert_cmpstr (l.cert_state, ==, "active");
          g_assert_nonnull (strstr (l.report, "work order WO-TEST-1"));
          g_assert_nonnull (strstr (l.report, "ok    chain: "));
          g_assert_nonnull (strstr (l.report, "ok    uid: the certificate's subject and subjectAltName"));
          g_assert_null (strstr (l.report, "FAIL"));
          g_assert_true (g_str_has_suffix (l.report, "PASS\n"));
        }
    }
  /* stock openssl agrees on the certificate the record holds */
  {
    g_autofree gchar *q = g_strdup_printf ("SELECT hex(der) FROM certificates WHERE serial = '%s'",
                                           units[0].cert_serial);
    g_autofree gchar *hex = st_sql (f, q);
    g_strstrip (hex);
    gsize n = strlen (hex) / 2;
    g_autofree guint8 *der = g_malloc (n);
    for (gsize i = 0; i < n; i++)
      der[i] = (guint8) (g_ascii_xdigit_value (hex[2 * i]) * 16 + g_ascii_xdigit_value (hex[2 * i + 1]));
    g_autofree gchar *der_path = g_build_filename (f->tmp, "unit0.der", NULL);
    g_autofree gchar *pem_path = g_build_filename (f->tmp, "unit0.pem", NULL);
    g_assert_true (g_file_set_contents (der_path, (const char *) der, (gssize) n, NULL));
    g_assert_cmpint (st_run_tool (NULL, NULL, "openssl", "x509", "-inform", "DER", "-in", der_path, "-out",
                                  pem_path, NULL), ==, 0);
    g_autofree gchar *pem = NULL;
    g_assert_true (g_file_get_contents (pem_path, &pem, NULL, NULL));
    g_autofree gchar *chain = g_build_filename (f->home, "ca-chain.pem", NULL);
    g_autofree gchar *out = st_check_cert_with_stock_tools (f, pem, chain, units[0].uid);
  }

  /* unknown, hostile and oversized codes */
  {
    g_auto(Lookup) l = { 0 };
    g_assert_false (lookup (qa, "NO-SUCH-UNIT-42", &l, &error));
    g_assert_error (error, ST_ERROR, ST_ERROR_NOT_FOUND);
    g_assert_nonnull (strstr (error->message, "'NO-SUCH-UNIT-42'"));
    g_clear_error (&error);
  }
  {
    g_auto(Lookup) l = { 0 };
    g_assert_false (lookup (qa, "SN\x1b[2J-1", &l, &error));
    g_assert_nonnull (error);
    g_assert_null (strchr (error->message, '\x1b'));
    g_test_message ("control character: %s", error->message);
    g_clear_error (&error);
  }
  {
    g_autofree gchar *big = g_strnfill (4096, 'A');
    g_auto(Lookup) l = { 0 };
    g_assert_false (lookup (qa, big, &l, &error));
    g_assert_nonnull (error);
    g_assert_cmpuint (strlen (error->message), <, 1024);
    g_test_message ("4 KiB: %s", error->message);
    g_clear_error (&error);
  }

  /* only QA looks up */
  {
    g_autoptr(StDbusStation1) op = lookup_client (f, "op", "1111");
    g_auto(Lookup) l = { 0 };
    g_assert_false (lookup (op, units[0].serial, &l, &error));
    g_assert_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED);
    g_assert_nonnull (strstr (error->message, "needs the role qa"));
    g_clear_error (&error);
    g_autoptr(StDbusStation1) lead = lookup_client (f, "lead", "2222");
    g_assert_false (lookup (lead, units[0].serial, &l, &error));
    g_assert_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED);
    g_clear_error (&error);
  }

  /* a revoked unit is found and fails */
  g_assert_cmpint (st_run_station_as (f, "lead", "2222", NULL, NULL, NULL, "unit", "revoke", units[1].cert_serial,
                                      "--reason", "keyCompromise", NULL), ==, 0);
  {
    g_auto(Lookup) l = { 0 };
    g_assert_true (lookup (qa, units[1].serial, &l, &error));
    g_assert_no_error (error);
    g_test_message ("revoked:\n%s", l.report);
    g_assert_false (l.verified);
    g_assert_cmpstr (l.cert_state, ==, "revoked");
    g_assert_nonnull (strstr (l.report, "FAIL  certificate: serial "));
    g_assert_nonnull (strstr (l.report, "REVOKED"));
    g_assert_cmpstr (l.failure, !=, "");
    g_assert_true (g_str_has_suffix (l.report, "FAIL\n"));
  }

  /* a certificate swapped behind the station's back fails its checks */
  g_autofree gchar *swap = g_strdup_printf ("DROP TRIGGER certificates_der_immutable; "
                                            "UPDATE certificates SET der = (SELECT der FROM certificates WHERE "
                                            "serial = '%s') WHERE serial = '%s'",
                                            units[0].cert_serial, units[2].cert_serial);
  g_autofree gchar *swapped = st_sql (f, swap);
  {
    g_auto(Lookup) l = { 0 };
    g_assert_true (lookup (qa, units[2].uid, &l, &error));
    g_assert_no_error (error);
    g_test_message ("swapped:\n%s", l.report);
    g_assert_false (l.verified);
    g_assert_nonnull (strstr (l.report, "FAIL  serial: "));
    g_assert_nonnull (strstr (l.report, "FAIL  key: "));
    g_assert_nonnull (strstr (l.report, "does not match its certificate"));
  }
  for (guint i = 0; i < 3; i++)
    lookup_unit_clear (&units[i]);
}

int
main (int argc, char **argv)
{
  st_test_init (&argc, &argv);
  st_test_add_station ("/qa/lookup", NULL, test_lookup);
  return g_test_run ();
}
