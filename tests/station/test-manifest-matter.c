/* The Matter members of a manifest (station/st-manifest-matter.c;
 * docs/matter.md, "The manifest and the lead's codes file"): what verify
 * holds batch.matter and each unit's "matter" member to. A unit's member
 * written by the export is read back; members a manifest must never carry
 * (a passcode, a QR text, a verifier), malformed values, a VID or PID other
 * than the batch's or the DAC's, a Matter unit without its member and a
 * plain batch's unit with one each fail with the reason. The DACs are
 * made here with the OpenSSL API, their VID and PID added as the station
 * adds them (st_matter_name_add_ids). */
#include <json-glib/json-glib.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <string.h>

#include "st-manifest-matter.h"
#include "st-matter-dac.h"
#include "st-ossl.h"

/* A certificate whose subject is CN=dac, then the VID and the PID. */
static X509 *
make_dac (EVP_PKEY *key, guint16 vid, guint16 pid)
{
  X509 *cert = X509_new ();
  X509_set_version (cert, 2);
  ASN1_INTEGER_set (X509_get_serialNumber (cert), 7);
  X509_gmtime_adj (X509_getm_notBefore (cert), 0);
  X509_gmtime_adj (X509_getm_notAfter (cert), 86400);
  X509_NAME *name = X509_NAME_new ();
  X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_UTF8, (const guint8 *) "dac", -1, -1, 0);
  g_autoptr(GError) error = NULL;
  g_assert_true (st_matter_name_add_ids (name, vid, pid, &error));
  X509_set_subject_name (cert, name);
  X509_set_issuer_name (cert, name);
  X509_NAME_free (name);
  X509_set_pubkey (cert, key);
  g_assert_cmpint (X509_sign (cert, key, EVP_sha256 ()), >, 0);
  return cert;
}

static JsonObject *
parse (JsonParser *p, const char *json)
{
  g_autoptr(GError) error = NULL;
  g_assert_true (json_parser_load_from_data (p, json, -1, &error));
  g_assert_no_error (error);
  return json_node_get_object (json_parser_get_root (p));
}

#define CD "\"certification_declaration_sha256\":\"" \
  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\""

static void
test_batch (void)
{
  struct {
    const char *json;
    gboolean matter, malformed;
  } cases[] = {
    { "{\"id\":1}", FALSE, FALSE },
    { "{\"matter\":{\"vendor_id\":\"FFF1\",\"product_id\":\"8000\"," CD "}}", TRUE, FALSE },
    { "{\"matter\":{\"vendor_id\":\"fff1\",\"product_id\":\"8000\"," CD "}}", FALSE, TRUE },
    { "{\"matter\":{\"vendor_id\":\"FFF1\",\"product_id\":\"0000\"," CD "}}", FALSE, TRUE },
    { "{\"matter\":{\"vendor_id\":\"FFF1\",\"product_id\":\"8000\"}}", FALSE, TRUE },
    { "{\"matter\":{\"vendor_id\":\"FFF1\",\"product_id\":\"8000\",\"certification_declaration_sha256\":\"AB\"}}",
      FALSE, TRUE },
    { "{\"matter\":[]}", FALSE, TRUE },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(JsonParser) p = json_parser_new ();
      JsonObject *batch = parse (p, cases[i].json);
      StManifestCheck c = { .report = g_string_new (NULL) };
      StManifestMatterBatch mb;
      st_manifest_matter_batch_read (&c, batch, &mb);
      g_assert_cmpint (mb.matter, ==, cases[i].matter);
      g_assert_cmpint (mb.malformed, ==, cases[i].malformed);
      g_assert_cmpuint (c.failures, ==, cases[i].malformed ? 1 : 0);
      if (mb.matter)
        {
          g_assert_cmpuint (mb.vendor_id, ==, 0xFFF1);
          g_assert_cmpuint (mb.product_id, ==, 0x8000);
        }
      g_string_free (c.report, TRUE);
    }
}

#define GOOD "\"version\":0,\"vendor_id\":\"FFF1\",\"product_id\":\"8000\",\"commissioning_flow\":0," \
  "\"discovery\":2,\"discriminator\":3840"

static void
test_units (void)
{
  StManifestMatterBatch matter = { .matter = TRUE, .vendor_id = 0xFFF1, .product_id = 0x8000 };
  StManifestMatterBatch plain = { 0 };
  g_autoptr(EVP_PKEY) key = EVP_EC_gen ("P-256");
  g_assert_nonnull (key);
  g_autoptr(X509) dac = make_dac (key, 0xFFF1, 0x8000);
  g_autoptr(X509) other_pid = make_dac (key, 0xFFF1, 0x8001);
  struct {
    const StManifestMatterBatch *batch;
    const char *json;
    X509 *cert;
    gboolean ok;
    const char *says;
  } cases[] = {
    { &matter, "{\"matter\":{" GOOD "}}", dac, TRUE, NULL },
    /* a failed unit without a certificate needs none */
    { &matter, "{}", NULL, TRUE, NULL },
    { &plain, "{}", dac, TRUE, NULL },
    { &matter, "{}", dac, FALSE, "lacks its matter member" },
    { &plain, "{\"matter\":{" GOOD "}}", dac, FALSE, "not a Matter batch" },
    /* secrets a manifest must never carry */
    { &matter, "{\"matter\":{" GOOD ",\"passcode\":20202021}}", dac, FALSE, "has 'passcode', which a manifest must never carry" },
    { &matter, "{\"matter\":{" GOOD ",\"qr\":\"MT:Y.K9042C00KA0648G00\"}}", dac, FALSE, "has 'qr'" },
    { &matter, "{\"matter\":{" GOOD ",\"manual_code\":\"34970112332\"}}", dac, FALSE, "has 'manual_code'" },
    { &matter, "{\"matter\":{" GOOD ",\"verifier\":\"AAAA\"}}", dac, FALSE, "has 'verifier'" },
    /* malformed */
    { &matter, "{\"matter\":7}", dac, FALSE, "is not an object" },
    { &matter, "{\"matter\":{\"version\":0,\"vendor_id\":\"fff1\",\"product_id\":\"8000\",\"commissioning_flow\":0,"
      "\"discovery\":2,\"discriminator\":3840}}", dac, FALSE, "not well-formed" },
    { &matter, "{\"matter\":{\"version\":0,\"vendor_id\":\"FFF1\",\"product_id\":\"8000\",\"commissioning_flow\":0,"
      "\"discovery\":2,\"discriminator\":4096}}", dac, FALSE, "not well-formed" },
    { &matter, "{\"matter\":{\"version\":0,\"vendor_id\":\"FFF1\",\"product_id\":\"8000\",\"commissioning_flow\":0,"
      "\"discovery\":2,\"discriminator\":\"3840\"}}", dac, FALSE, "not well-formed" },
    { &matter, "{\"matter\":{\"version\":0,\"vendor_id\":\"FFF1\",\"product_id\":\"8000\",\"commissioning_flow\":3,"
      "\"discovery\":2,\"discriminator\":3840}}", dac, FALSE, "not well-formed" },
    { &matter, "{\"matter\":{\"version\":0,\"vendor_id\":\"FFF1\",\"product_id\":\"8000\",\"commissioning_flow\":0,"
      "\"discovery\":0,\"discriminator\":3840}}", dac, FALSE, "not well-formed" },
    { &matter, "{\"matter\":{\"version\":1,\"vendor_id\":\"FFF1\",\"product_id\":\"8000\",\"commissioning_flow\":0,"
      "\"discovery\":2,\"discriminator\":3840}}", dac, FALSE, "not well-formed" },
    { &matter, "{\"matter\":{\"vendor_id\":\"FFF1\",\"product_id\":\"8000\",\"commissioning_flow\":0,"
      "\"discovery\":2,\"discriminator\":3840}}", dac, FALSE, "not well-formed" },
    /* another VID than the batch's, another PID than the DAC's */
    { &matter, "{\"matter\":{\"version\":0,\"vendor_id\":\"FFF2\",\"product_id\":\"8000\",\"commissioning_flow\":0,"
      "\"discovery\":2,\"discriminator\":3840}}", dac, FALSE, "VID FFF2 and PID 8000, but the batch's are FFF1 and 8000" },
    { &matter, "{\"matter\":{" GOOD "}}", other_pid, FALSE,
      "its certificate's subject does not carry the VID FFF1 and PID 8000 of its matter member" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(JsonParser) p = json_parser_new ();
      JsonObject *u = parse (p, cases[i].json);
      StManifestCheck c = { .report = g_string_new (NULL) };
      StManifestMatterUnit mu;
      gboolean ok = st_manifest_matter_unit_check (&c, cases[i].batch, 4, "abcd", u, cases[i].cert, &mu);
      if (ok != cases[i].ok || (cases[i].says != NULL && strstr (c.report->str, cases[i].says) == NULL))
        g_error ("case %u (%s): %s, report: %s", i, cases[i].json, ok ? "passed" : "failed", c.report->str);
      g_assert_cmpuint (c.failures, ==, ok ? 0 : 1);
      if (!ok)
        g_assert_true (g_str_has_prefix (c.report->str, "FAIL  unit 4 (uid abcd): "));
      if (ok && json_object_has_member (u, "matter"))
        {
          g_assert_true (mu.present);
          g_assert_cmpuint (mu.discriminator, ==, 3840);
          g_assert_cmpuint (mu.discovery, ==, 2);
          g_assert_cmpuint (mu.flow, ==, 0);
        }
      g_string_free (c.report, TRUE);
    }
}

/* What the export writes is what verify reads, and carries no secret. */
static void
test_roundtrip (void)
{
  StDbUnitMatter m = { .vendor_id = 0xFFF1, .product_id = 0x8000, .discriminator = 3841, .passcode = 20202021,
                       .flow = 2, .discovery = 5, .qr_text = (gchar *) "MT:Y.K9042C00KA0648G00",
                       .manual_code = (gchar *) "34970112332" };
  g_autoptr(GString) l = g_string_new ("{\"uid\":\"abcd\"");
  st_manifest_matter_unit_member (l, &m);
  g_string_append_c (l, '}');
  g_assert_null (strstr (l->str, "20202021"));
  g_assert_null (strstr (l->str, "MT:"));
  g_assert_null (strstr (l->str, "34970112332"));
  g_autoptr(JsonParser) p = json_parser_new ();
  JsonObject *u = parse (p, l->str);
  StManifestMatterBatch matter = { .matter = TRUE, .vendor_id = 0xFFF1, .product_id = 0x8000 };
  g_autoptr(EVP_PKEY) key = EVP_EC_gen ("P-256");
  g_assert_nonnull (key);
  g_autoptr(X509) dac = make_dac (key, 0xFFF1, 0x8000);
  StManifestCheck c = { .report = g_string_new (NULL) };
  StManifestMatterUnit mu;
  g_assert_true (st_manifest_matter_unit_check (&c, &matter, 1, "abcd", u, dac, &mu));
  g_assert_cmpuint (mu.discriminator, ==, 3841);
  g_assert_cmpuint (mu.flow, ==, 2);
  g_assert_cmpuint (mu.discovery, ==, 5);
  g_assert_cmpuint (mu.vendor_id, ==, 0xFFF1);
  g_assert_cmpuint (mu.product_id, ==, 0x8000);
  g_string_free (c.report, TRUE);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/manifest-matter/batch", test_batch);
  g_test_add_func ("/manifest-matter/units", test_units);
  g_test_add_func ("/manifest-matter/roundtrip", test_roundtrip);
  return g_test_run ();
}
