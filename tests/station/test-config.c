/* station.conf is read strictly (issue 15, item 2; station/st-config.c).
 *
 * /config/typos: one station.conf per typo, each written to a file and
 * read by st_config_load_file(), the service's own entry point: an unknown
 * group, an unknown key (with the closest key suggested), a key given
 * twice, a group given twice, pin-value and pin-source inside a pkcs11:
 * URI, slot=0 instead of token, values of the wrong type, a file where a
 * pkcs11: URI belongs, a required key missing. Each is refused with
 * INVALID_DATA, and the message names the file, the group and the key.
 * /config/accepted: the files the station writes load (the demo's, a
 * production one, the state "awaiting import" without [certificates],
 * [audit] checkpoint-every) and round-trip through st_config_save().
 * /config/sockets: [sockets] names the line's sockets in the file's order
 * (PORT = NAME, UTF-8 names), survives st_config_save(), and refuses a
 * key that is not an absolute path, an empty or overlong name, a control
 * character, a name given to two sockets, a port given twice and more
 * sockets than a station has. */
#include <glib/gstdio.h>
#include <string.h>

#include "st-config.h"
#include "st-error.h"
#include "st-test-tmp.h"
#include "st-util.h"

static const char st_station[] =
  "[station]\n"
  "id=line-3-station-1\n";
static const char st_hsm[] =
  "[hsm]\n"
  "module=/usr/lib/x86_64-linux-gnu/pkcs11/vendor-pkcs11.so\n"
  "token=LINE3-ISSUING\n"
  "ca-key=pkcs11:token=LINE3-ISSUING;object=issuing-ca;id=%02;type=private\n"
  "signing-key=pkcs11:token=LINE3-ISSUING;object=station-signing;id=%03;type=private\n";
static const char st_certificates[] =
  "[certificates]\n"
  "ca-cert=/etc/station/issuing-ca.pem\n"
  "signing-cert=/etc/station/station-signing.pem\n"
  "chain=/etc/station/ca-chain.pem\n"
  "root=/etc/station/root.pem\n";

/* The good file with @from replaced by @to (which must occur once). */
static gchar *
st_conf_with (const char *from, const char *to)
{
  g_autofree gchar *good = g_strconcat (st_station, "\n", st_hsm, "\n", st_certificates, NULL);
  const char *at = strstr (good, from);
  g_assert_nonnull (at);
  g_assert_null (strstr (at + 1, from));
  g_autofree gchar *head = g_strndup (good, (gsize) (at - good));
  return g_strconcat (head, to, at + strlen (from), NULL);
}

static StConfig *
st_conf_load_text (const char *home, const char *text, GError **error)
{
  g_autofree gchar *path = g_build_filename (home, ST_CONFIG_FILE, NULL);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  return st_config_load_file (home, NULL, error);
}

/* @text is refused, and the message holds the file's path and each of the
 * NULL-terminated @needles. */
static void
st_conf_refused (const char *home, const char *text, ...)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StConfig) c = st_conf_load_text (home, text, &error);
  g_assert_null (c);
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_autofree gchar *path = g_build_filename (home, ST_CONFIG_FILE, NULL);
  g_test_message ("refused: %s", error->message);
  g_assert_nonnull (strstr (error->message, path));
  va_list ap;
  va_start (ap, text);
  for (const char *n = va_arg (ap, const char *); n != NULL; n = va_arg (ap, const char *))
    if (strstr (error->message, n) == NULL)
      g_error ("the refusal of\n%s\ndoes not say '%s': %s", text, n, error->message);
  va_end (ap);
}

/* [matter]: a Matter station's VID (and PID), as 'ca init --matter-vid'
 * and 'setup demo --matter' record them; saved and read back; a malformed
 * value or a PID without VID refused. */
static void
test_matter (void)
{
  g_autofree gchar *home = st_test_tmpdir ("st-config");
  g_autoptr(GError) error = NULL;
  g_autofree gchar *good = g_strconcat (st_station, st_hsm, st_certificates,
                                        "[matter]\nvendor-id=FFF1\nproduct-id=8000\n", NULL);
  g_autoptr(StConfig) c = st_conf_load_text (home, good, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (c->matter_vendor_id, ==, "FFF1");
  g_assert_cmpstr (c->matter_product_id, ==, "8000");
  g_assert_true (st_config_save (c, &error));
  g_assert_no_error (error);
  g_autoptr(StConfig) back = st_config_load (home, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (back->matter_vendor_id, ==, "FFF1");
  g_assert_cmpstr (back->matter_product_id, ==, "8000");
  /* a station without [matter] is no Matter station */
  g_autofree gchar *plain = g_strconcat (st_station, st_hsm, st_certificates, NULL);
  g_autoptr(StConfig) p = st_conf_load_text (home, plain, &error);
  g_assert_no_error (error);
  g_assert_null (p->matter_vendor_id);
  const char *bad[] = { "vendor-id=fff1", "vendor-id=FFF", "vendor-id=0x12", "vendor-id=0000", "vendor-id=FFF1X" };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree gchar *t = g_strconcat (st_station, st_hsm, st_certificates, "[matter]\n", bad[i], "\n", NULL);
      st_conf_refused (home, t, "[matter] vendor-id=", "4 upper-case hex digits", NULL);
    }
  g_autofree gchar *no_vid = g_strconcat (st_station, st_hsm, st_certificates, "[matter]\nproduct-id=8000\n", NULL);
  st_conf_refused (home, no_vid, "[matter] has a product-id but no vendor-id", NULL);
  st_rm_rf (home);
}

static void
test_typos (void)
{
  g_autofree gchar *home = st_test_tmpdir ("st-config");
  gchar *t;

  /* an unknown group, close to a known one */
  t = st_conf_with ("[hsm]\n", "[hsmm]\n");
  st_conf_refused (home, t, "unknown group [hsmm]", "did you mean [hsm]", NULL);
  g_free (t);
  /* an unknown group, far from all */
  t = g_strconcat (st_station, st_hsm, st_certificates, "[network]\nproxy=x\n", NULL);
  st_conf_refused (home, t, "unknown group [network]", "[station], [hsm], [certificates], [audit], [sockets] and [matter]", NULL);
  g_free (t);
  /* an unknown key: the closest is suggested */
  t = st_conf_with ("module=", "modul=");
  st_conf_refused (home, t, "[hsm] unknown key 'modul'", "did you mean 'module'", NULL);
  g_free (t);
  /* a key of another group */
  t = st_conf_with ("token=LINE3-ISSUING\n", "token=LINE3-ISSUING\nchain=/x.pem\n");
  st_conf_refused (home, t, "[hsm] unknown key 'chain'", "belongs in [certificates]", NULL);
  g_free (t);
  /* a key given twice: GKeyFile would keep the last in silence */
  t = st_conf_with ("token=LINE3-ISSUING\n", "token=LINE3-ISSUING\ntoken=OTHER\n");
  st_conf_refused (home, t, "[hsm]", "'token' is given twice", "line 7", NULL);
  g_free (t);
  /* a group given twice */
  t = g_strconcat (st_station, st_hsm, st_certificates, "[station]\ndemo=false\n", NULL);
  st_conf_refused (home, t, "the group [station] is given twice", NULL);
  g_free (t);
  /* a PIN in the ca-key URI */
  t = st_conf_with ("id=%02;type=private", "id=%02;type=private?pin-value=1234");
  st_conf_refused (home, t, "[hsm] ca-key", "pin-value", "a PIN never goes into station.conf",
                   "STATION_HSM_PIN", NULL);
  g_free (t);
  /* a PIN source in the signing-key URI (upper case too) */
  t = st_conf_with ("id=%03;type=private", "id=%03;type=private?PIN-SOURCE=file:/etc/pin");
  st_conf_refused (home, t, "[hsm] signing-key", "pin-source", "remove pin-source", NULL);
  g_free (t);
  /* and in a certificate's pkcs11: URI */
  t = st_conf_with ("ca-cert=/etc/station/issuing-ca.pem",
                    "ca-cert=pkcs11:object=issuing-ca;type=cert?pin-value=1");
  st_conf_refused (home, t, "[certificates] ca-cert", "pin-value", NULL);
  g_free (t);
  /* slot=0 instead of token */
  t = st_conf_with ("token=LINE3-ISSUING\n", "slot=0\n");
  st_conf_refused (home, t, "[hsm] unknown key 'slot'", "token=LABEL", NULL);
  g_free (t);
  /* a PIN as a key */
  t = st_conf_with ("token=LINE3-ISSUING\n", "token=LINE3-ISSUING\npin=1234\n");
  st_conf_refused (home, t, "[hsm] unknown key 'pin'", "a PIN never goes into station.conf", NULL);
  g_free (t);
  /* values of the wrong type */
  t = st_conf_with ("id=line-3-station-1\n", "id=line-3-station-1\nidle-logout-s=soon\n");
  st_conf_refused (home, t, "[station] idle-logout-s", "0 to 86400", "'soon'", NULL);
  g_free (t);
  t = st_conf_with ("id=line-3-station-1\n", "id=line-3-station-1\nidle-logout-s=90000\n");
  st_conf_refused (home, t, "[station] idle-logout-s", "0 to 86400", NULL);
  g_free (t);
  t = st_conf_with ("id=line-3-station-1\n", "id=line-3-station-1\ndemo=yes\n");
  st_conf_refused (home, t, "[station] demo", "true or false", NULL);
  g_free (t);
  t = g_strconcat (st_station, st_hsm, st_certificates, "signing-key-sha256=abc\n", NULL);
  st_conf_refused (home, t, "[certificates] signing-key-sha256", "64 hex digits", NULL);
  g_free (t);
  t = g_strconcat (st_station, st_hsm, st_certificates, "[audit]\ncheckpoint-every=0\n", NULL);
  st_conf_refused (home, t, "[audit] checkpoint-every", "1 to 1000000", NULL);
  g_free (t);
  t = st_conf_with ("ca-key=pkcs11:token=LINE3-ISSUING;object=issuing-ca;id=%02;type=private",
                    "ca-key=/etc/station/issuing-ca.key");
  st_conf_refused (home, t, "[hsm] ca-key", "must be a pkcs11: URI", NULL);
  g_free (t);
  t = st_conf_with ("chain=/etc/station/ca-chain.pem", "chain=pkcs11:object=chain");
  st_conf_refused (home, t, "[certificates] chain", "must be a file", NULL);
  g_free (t);
  /* a required key missing, and an empty one */
  t = st_conf_with ("module=/usr/lib/x86_64-linux-gnu/pkcs11/vendor-pkcs11.so\n", "");
  st_conf_refused (home, t, "[hsm] has no 'module'", "add module=VALUE", NULL);
  g_free (t);
  t = st_conf_with ("root=/etc/station/root.pem\n", "");
  st_conf_refused (home, t, "[certificates] has no 'root'", "station ca import", NULL);
  g_free (t);
  t = st_conf_with ("token=LINE3-ISSUING\n", "token=\n");
  st_conf_refused (home, t, "[hsm] token is empty", NULL);
  g_free (t);
  /* a demo needs its SoftHSM2 configuration */
  t = st_conf_with ("id=line-3-station-1\n", "id=line-3-station-1\ndemo=true\n");
  st_conf_refused (home, t, "[hsm] has no 'softhsm2-conf'", NULL);
  g_free (t);
  st_rm_rf (home);
}

static void
test_accepted (void)
{
  g_autofree gchar *home = st_test_tmpdir ("st-config");
  g_autoptr(GError) error = NULL;

  /* a production station */
  g_autofree gchar *good = g_strconcat ("# comment\n", st_station, "\n", st_hsm, "\n", st_certificates,
                                        "\n[audit]\ncheckpoint-every=500\n", NULL);
  g_autoptr(StConfig) c = st_conf_load_text (home, good, &error);
  g_assert_no_error (error);
  g_assert_false (c->awaiting_import);
  g_assert_false (c->demo);
  g_assert_cmpuint (c->checkpoint_every, ==, 500);
  g_assert_cmpstr (c->hsm_token, ==, "LINE3-ISSUING");
  g_assert_cmpstr (c->root_file, ==, "/etc/station/root.pem");
  /* what st_config_save writes loads back the same */
  g_assert_true (st_config_save (c, &error));
  g_assert_no_error (error);
  g_autoptr(StConfig) back = st_config_load (home, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (back->checkpoint_every, ==, 500);
  g_assert_cmpstr (back->ca_key_uri, ==, c->ca_key_uri);
  g_assert_cmpstr (back->chain_file, ==, c->chain_file);

  /* awaiting the import: no [certificates] */
  g_autofree gchar *awaiting = g_strconcat (st_station, st_hsm, NULL);
  g_autoptr(StConfig) a = st_conf_load_text (home, awaiting, &error);
  g_assert_no_error (error);
  g_assert_true (a->awaiting_import);
  g_assert_null (a->ca_cert);
  g_assert_null (a->root_file);
  g_assert_true (st_config_save (a, &error));
  g_assert_no_error (error);
  g_autofree gchar *saved = NULL;
  g_assert_true (g_file_get_contents (a->path, &saved, NULL, NULL));
  g_assert_null (strstr (saved, "[certificates]"));
  g_autoptr(StConfig) a_back = st_config_load (home, &error);
  g_assert_no_error (error);
  g_assert_true (a_back->awaiting_import);

  /* a demo's file (as 'setup demo' writes it), relative paths from HOME */
  g_autofree gchar *demo = g_strconcat ("[station]\nid=0a80882b6daf61d3\ndemo=true\ndb=station.db\n"
                                        "idle-logout-s=300\n\n[hsm]\nmodule=/usr/lib/softhsm/libsofthsm2.so\n"
                                        "token=station-demo\nsofthsm2-conf=softhsm2.conf\n"
                                        "ca-key=pkcs11:token=station-demo;object=issuing-ca;id=%02;type=private\n"
                                        "signing-key=pkcs11:token=station-demo;object=station-signing;id=%03;type=private\n\n",
                                        "[certificates]\nca-cert=ca/issuing-ca.pem\nsigning-cert=ca/station-signing.pem\n"
                                        "signing-key-sha256=", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789ABCDEF",
                                        "\nchain=ca-chain.pem\nroot=demo-root.pem\n", NULL);
  g_autoptr(StConfig) d = st_conf_load_text (home, demo, &error);
  g_assert_no_error (error);
  g_assert_true (d->demo);
  g_autofree gchar *expect_conf = g_build_filename (home, "softhsm2.conf", NULL);
  g_assert_cmpstr (d->softhsm2_conf, ==, expect_conf);
  g_autofree gchar *expect_db = g_build_filename (home, "station.db", NULL);
  g_assert_cmpstr (d->db_path, ==, expect_db);
  st_rm_rf (home);
}

static void
test_sockets (void)
{
  g_autofree gchar *home = st_test_tmpdir ("st-config");
  g_autoptr(GError) error = NULL;
  g_autofree gchar *base = g_strconcat (st_station, "\n", st_hsm, "\n", st_certificates, "\n", NULL);

  /* in the order the fixtures stand, not sorted */
  g_autofree gchar *good = g_strconcat (base, "[sockets]\n"
                                        "/dev/ttyUSB2 = C – right fixture\n"
                                        "/dev/ttyUSB0 = A – left fixture\n"
                                        "/dev/serial/by-path/pci-0000:00:14.0-usb-0:1.3:1.0-port0=B  \n", NULL);
  g_autoptr(StConfig) c = st_conf_load_text (home, good, &error);
  g_assert_no_error (error);
  g_assert_nonnull (c->socket_ports);
  g_assert_cmpuint (g_strv_length (c->socket_ports), ==, 3);
  g_assert_cmpuint (g_strv_length (c->socket_names), ==, 3);
  g_assert_cmpstr (c->socket_ports[0], ==, "/dev/ttyUSB2");
  g_assert_cmpstr (c->socket_names[0], ==, "C – right fixture");
  g_assert_cmpstr (c->socket_ports[1], ==, "/dev/ttyUSB0");
  g_assert_cmpstr (c->socket_names[1], ==, "A – left fixture");
  g_assert_cmpstr (c->socket_ports[2], ==, "/dev/serial/by-path/pci-0000:00:14.0-usb-0:1.3:1.0-port0");
  g_assert_cmpstr (c->socket_names[2], ==, "B");
  g_assert_true (st_config_save (c, &error));
  g_assert_no_error (error);
  g_autoptr(StConfig) back = st_config_load (home, &error);
  g_assert_no_error (error);
  g_assert_cmpstrv (back->socket_ports, c->socket_ports);
  g_assert_cmpstrv (back->socket_names, c->socket_names);

  /* none: both NULL */
  g_autoptr(StConfig) none = st_conf_load_text (home, base, &error);
  g_assert_no_error (error);
  g_assert_null (none->socket_ports);
  g_assert_null (none->socket_names);

  struct { const char *group, *needle; } bad[] = {
    { "[sockets]\nttyUSB0 = A\n", "'ttyUSB0' is not a socket's port" },
    { "[sockets]\n/dev/ttyUSB0 =\n", "must be 1 to 64 characters" },
    { "[sockets]\n/dev/ttyUSB0 = A\\tB\n", "control character" },
    { "[sockets]\n/dev/ttyUSB0 = A\n/dev/ttyUSB1 = A\n", "the name 'A' is given to /dev/ttyUSB0 and to /dev/ttyUSB1" },
    { "[sockets]\n/dev/ttyUSB0 = A\n/dev/ttyUSB0 = B\n", "the key '/dev/ttyUSB0' is given twice" },
    { "[socket]\n/dev/ttyUSB0 = A\n", "did you mean [sockets]?" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree gchar *t = g_strconcat (base, bad[i].group, NULL);
      st_conf_refused (home, t, bad[i].needle, NULL);
    }
  /* a name of 65 characters (each 3 bytes of UTF-8), and one of 64 */
  g_autoptr(GString) name = g_string_new (NULL);
  for (guint i = 0; i < 65; i++)
    g_string_append (name, "–");
  g_autofree gchar *long_name = g_strconcat (base, "[sockets]\n/dev/ttyUSB0 = ", name->str, "\n", NULL);
  st_conf_refused (home, long_name, "must be 1 to 64 characters long, not 65", NULL);
  g_string_truncate (name, 64 * 3);
  g_autofree gchar *max_name = g_strconcat (base, "[sockets]\n/dev/ttyUSB0 = ", name->str, "\n", NULL);
  g_autoptr(StConfig) m = st_conf_load_text (home, max_name, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_utf8_strlen (m->socket_names[0], -1), ==, 64);
  /* more sockets than a station has */
  g_autoptr(GString) many = g_string_new (base);
  g_string_append (many, "[sockets]\n");
  for (guint i = 0; i <= ST_CONFIG_MAX_SOCKETS; i++)
    g_string_append_printf (many, "/dev/ttyUSB%u = S%u\n", i, i);
  st_conf_refused (home, many->str, "names 65 sockets", NULL);
  st_rm_rf (home);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/config/matter", test_matter);
  g_test_add_func ("/config/typos", test_typos);
  g_test_add_func ("/config/accepted", test_accepted);
  g_test_add_func ("/config/sockets", test_sockets);
  return g_test_run ();
}
