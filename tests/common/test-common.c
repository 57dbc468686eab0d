#include "st-error.h"
#include "st-ossl.h"
#include "st-text.h"
#include "st-types.h"
#include "st-util.h"
#include "st-test-tmp.h"

#include <glib/gstdio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <string.h>

static void
test_hex_roundtrip (void)
{
  const guint8 data[] = { 0x00, 0x01, 0xab, 0xff };
  g_autofree gchar *hex = st_hex_encode (data, sizeof data);
  g_assert_cmpstr (hex, ==, "0001abff");
  g_autoptr(GBytes) back = st_hex_decode ("0001ABff", NULL);
  g_assert_nonnull (back);
  g_assert_cmpmem (g_bytes_get_data (back, NULL), g_bytes_get_size (back), data, sizeof data);
  g_autoptr(GError) error = NULL;
  g_assert_null (st_hex_decode ("abc", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_assert_null (st_hex_decode ("zz", &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
}

static void
test_alg_names (void)
{
  for (StAlg a = ST_ALG_EC_P256; a <= ST_ALG_ED25519; a++)
    {
      g_assert_cmpint (st_alg_from_string (st_alg_to_string (a)), ==, a);
      /* a message names the profile spelling first */
      g_assert_true (g_str_has_prefix (st_alg_describe (a), st_alg_to_string (a)));
    }
  g_assert_cmpstr (st_alg_describe (ST_ALG_NONE), ==, "none");
  g_assert_cmpint (st_alg_from_string ("rsa-2048"), ==, ST_ALG_NONE);
  g_assert_cmpint (st_alg_to_mask_bit (ST_ALG_ED25519), ==, 4);
}

static void
test_sha256 (void)
{
  g_autofree gchar *h = st_sha256_hex ((const guint8 *) "abc", 3);
  g_assert_cmpstr (h, ==, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

  /* the digests fetched once are the ones asked for, and stay the same */
  g_assert_true (st_md_sha256 () == st_md_sha256 ());
  g_assert_true (EVP_MD_is_a (st_md_sha256 (), "SHA2-256"));
  g_assert_true (EVP_MD_is_a (st_md_sha384 (), "SHA2-384"));
  guint8 md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  g_assert_cmpint (EVP_Digest ("abc", 3, md, &len, st_md_sha384 (), NULL), ==, 1);
  g_autofree gchar *h384 = st_hex_encode (md, len);
  g_assert_cmpstr (h384, ==, "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
                             "8086072ba1e7cc2358baeca134c825a7");
}

static void
test_durable_write (void)
{
  g_autofree gchar *dir = st_test_tmpdir ("st-common");
  g_autofree gchar *path = g_build_filename (dir, "f", NULL);
  g_autoptr(GError) error = NULL;
  g_assert_true (st_file_write_durable (path, "hello", 5, 0600, &error));
  g_assert_no_error (error);
  g_autofree gchar *back = NULL;
  g_assert_true (g_file_get_contents (path, &back, NULL, NULL));
  g_assert_cmpstr (back, ==, "hello");
  g_remove (path);
  g_rmdir (dir);
}

/* The encoder-free SPKI is byte for byte what OpenSSL's encoder makes, and
 * a certificate built with it gives back an equal key. */
/* @pub is @key's public half: the same key, with nothing private in it. */
static void
assert_public_half (EVP_PKEY *pub, EVP_PKEY *key)
{
  g_assert_nonnull (pub);
  g_assert_cmpint (EVP_PKEY_eq (pub, key), ==, 1);
  BIGNUM *priv = NULL;
  size_t raw_len = 0;
  g_assert_cmpint (EVP_PKEY_get_bn_param (pub, OSSL_PKEY_PARAM_PRIV_KEY, &priv), !=, 1);
  g_assert_cmpint (EVP_PKEY_get_raw_private_key (pub, NULL, &raw_len), !=, 1);
  ERR_clear_error ();
}

static void
test_spki (void)
{
  const char *types[][2] = { { "EC", "P-256" }, { "EC", "P-384" }, { "ED25519", NULL } };
  for (gsize i = 0; i < G_N_ELEMENTS (types); i++)
    {
      g_autoptr(EVP_PKEY) key = types[i][1] != NULL ? EVP_PKEY_Q_keygen (NULL, NULL, types[i][0], types[i][1])
                                                    : EVP_PKEY_Q_keygen (NULL, NULL, types[i][0]);
      g_assert_nonnull (key);
      unsigned char *want = NULL;
      int want_len = i2d_PUBKEY (key, &want);
      g_assert_cmpint (want_len, >, 0);
      g_autoptr(GBytes) have = st_spki_der (key);
      g_assert_nonnull (have);
      g_assert_cmpmem (g_bytes_get_data (have, NULL), g_bytes_get_size (have), want, (gsize) want_len);
      OPENSSL_free (want);

      g_autoptr(X509) cert = X509_new ();
      g_assert_true (st_spki_set_param (X509_get_X509_PUBKEY (cert), key));
      g_autoptr(EVP_PKEY) back = st_x509_get_pubkey (cert);
      g_assert_nonnull (back);
      g_assert_cmpint (EVP_PKEY_eq (back, key), ==, 1);

      g_autoptr(EVP_PKEY) pub = st_pkey_public_only (key);
      assert_public_half (pub, key);
    }
  /* a key it does not handle is left to the caller */
  g_autoptr(EVP_PKEY) ed448 = EVP_PKEY_Q_keygen (NULL, NULL, "ED448");
  g_autoptr(X509_PUBKEY) spki = X509_PUBKEY_new ();
  g_assert_false (st_spki_set_param (spki, ed448));
  g_autoptr(GBytes) der = st_spki_der (ed448);
  g_assert_nonnull (der);
  g_autoptr(EVP_PKEY) ed448_pub = st_pkey_public_only (ed448);
  assert_public_half (ed448_pub, ed448);
}

/* An EC public key from its curve and point: the same key, nothing
 * private in it; a point off the curve, a cut one and an unknown curve are
 * refused. */
static void
test_ec_public_key (void)
{
  const char *groups[] = { "P-256", "P-384" };
  for (guint i = 0; i < G_N_ELEMENTS (groups); i++)
    {
      g_autoptr(EVP_PKEY) key = st_ec_keygen (groups[i]);
      g_assert_nonnull (key);
      guint8 point[100];
      size_t len = 0;
      g_assert_cmpint (EVP_PKEY_get_octet_string_param (key, OSSL_PKEY_PARAM_PUB_KEY, point,
                                                        sizeof point, &len), ==, 1);
      g_autoptr(EVP_PKEY) pub = st_ec_public_key_new (groups[i], point, len);
      assert_public_half (pub, key);
      /* the other curve's name: the point is not on it */
      g_assert_null (st_ec_public_key_new (groups[1 - i], point, len));
      guint8 bad[100];
      memcpy (bad, point, len);
      bad[len - 1] ^= 0x01;   /* y no longer fits x */
      g_assert_null (st_ec_public_key_new (groups[i], bad, len));
      g_assert_null (st_ec_public_key_new (groups[i], point, len - 1));
      g_assert_null (st_ec_public_key_new (groups[i], point, 0));
      ERR_clear_error ();
    }
  g_assert_null (st_ec_public_key_new ("no-such-curve", (const guint8 *) "\x04", 1));
  g_assert_null (st_ec_public_key_new (NULL, (const guint8 *) "\x04", 1));
  ERR_clear_error ();
}

/* Hostile input is bounded before it is parsed: 1..max bytes. */
static void
test_bytes_bounded (void)
{
  static const guint8 four[4] = { 1, 2, 3, 4 };
  g_autoptr(GBytes) empty = g_bytes_new_static ("", 0);
  g_autoptr(GBytes) b = g_bytes_new_static (four, sizeof four);
  gsize len = 99;
  g_autoptr(GError) e1 = NULL;
  g_assert_null (st_bytes_get_bounded (empty, 4, "the thing", &len, &e1));
  g_assert_error (e1, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_assert_cmpstr (e1->message, ==, "the thing is empty");
  g_assert_true (st_bytes_get_bounded (b, 4, "the thing", &len, NULL) == four);
  g_assert_cmpuint (len, ==, 4);
  g_autoptr(GError) e2 = NULL;
  g_assert_null (st_bytes_get_bounded (b, 3, "the thing", &len, &e2));
  g_assert_cmpstr (e2->message, ==, "the thing is too large (4 bytes, at most 3)");
}

/* Security review, issue 14, item 5: a device string reaches a person only
 * as printable text. */
static void
st_assert_escaped (const char *in, gssize len, StTextFlags flags, const char *want)
{
  g_autofree gchar *got = st_text_escape (in, len, flags);
  g_assert_cmpstr (got, ==, want);
  g_assert_true (g_utf8_validate (got, -1, NULL));
  for (const char *p = got; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar ch = g_utf8_get_char (p);
      if (ch == '\n' && (flags & ST_TEXT_KEEP_NEWLINES) != 0)
        continue;
      g_assert_true (g_unichar_isprint (ch) || ch == ' ');
    }
  /* escaping again changes nothing */
  g_autofree gchar *again = st_text_escape (got, -1, flags);
  g_assert_cmpstr (again, ==, got);
}

static void
test_text_escape (void)
{
  /* the review's model: a fake PASS line, then the rest hidden */
  st_assert_escaped ("SIM-DEV-1\nPASS\x1b[8m", -1, ST_TEXT_ONE_LINE, "SIM-DEV-1\\x0aPASS\\x1b[8m");
  st_assert_escaped ("ok\r\tx\x7f", -1, ST_TEXT_ONE_LINE, "ok\\x0d\\x09x\\x7f");
  /* C1 controls (CSI U+009B, NEL U+0085) as their bytes */
  st_assert_escaped ("a\xc2\x9b" "31mb\xc2\x85", -1, ST_TEXT_ONE_LINE, "a\\xc2\\x9b31mb\\xc2\\x85");
  /* invalid UTF-8: a lone continuation byte, a truncated sequence, an
   * overlong '/', a surrogate */
  st_assert_escaped ("x\x80y\xe2\x82", -1, ST_TEXT_ONE_LINE, "x\\x80y\\xe2\\x82");
  st_assert_escaped ("\xc0\xaf", -1, ST_TEXT_ONE_LINE, "\\xc0\\xaf");
  st_assert_escaped ("\xed\xa0\x80", -1, ST_TEXT_ONE_LINE, "\\xed\\xa0\\x80");
  /* a NUL inside a counted string */
  st_assert_escaped ("a\0b", 3, ST_TEXT_ONE_LINE, "a\\x00b");
  /* bidi override, zero-width space, line separator */
  st_assert_escaped ("abc\xe2\x80\xae" "fdp.exe", -1, ST_TEXT_ONE_LINE, "abc\\u202efdp.exe");
  st_assert_escaped ("a\xe2\x80\x8b" "b\xe2\x80\xa8", -1, ST_TEXT_ONE_LINE, "a\\u200bb\\u2028");
  /* printable UTF-8 stays as it is; a backslash is not doubled */
  st_assert_escaped ("Gerät Ω 測試 \\x1b", -1, ST_TEXT_ONE_LINE, "Gerät Ω 測試 \\x1b");
  st_assert_escaped ("", -1, ST_TEXT_ONE_LINE, "");
  g_assert_null (st_text_escape (NULL, -1, ST_TEXT_ONE_LINE));
  /* a report keeps its lines, nothing else */
  st_assert_escaped ("model X\x1b[2J\nPASS\n", -1, ST_TEXT_KEEP_NEWLINES, "model X\\x1b[2J\nPASS\n");
  /* spreadsheet cells: formulas neutralised */
  st_assert_escaped ("=HYPERLINK(\"http://x\")", -1, ST_TEXT_CSV_CELL, "'=HYPERLINK(\"http://x\")");
  st_assert_escaped ("+1", -1, ST_TEXT_CSV_CELL, "'+1");
  st_assert_escaped ("-2+3", -1, ST_TEXT_CSV_CELL, "'-2+3");
  st_assert_escaped ("@SUM(A1)", -1, ST_TEXT_CSV_CELL, "'@SUM(A1)");
  st_assert_escaped ("\t=1", -1, ST_TEXT_CSV_CELL, "'\\x09=1");
  st_assert_escaped ("\r=1", -1, ST_TEXT_CSV_CELL, "'\\x0d=1");
  st_assert_escaped ("a\n=1", -1, ST_TEXT_CSV_CELL | ST_TEXT_KEEP_NEWLINES, "a\\x0a=1");
  st_assert_escaped ("SN-0001", -1, ST_TEXT_CSV_CELL, "SN-0001");
  st_assert_escaped ("'=1", -1, ST_TEXT_CSV_CELL, "'=1");
}

/* st_error_set_openssl: what, then each queued error as "reason (library)
 * [data]", the queue emptied (its appends were reworked for speed, issue 14). */
/* A self-signed certificate on @key whose subject CN is @cn_len 'a's, so
 * that its DER takes several lengths (PEM lines full and not). */
static X509 *
make_cert (EVP_PKEY *key, int cn_len)
{
  X509 *cert = X509_new ();
  g_autofree gchar *cn = g_strnfill ((gsize) cn_len, 'a');
  X509_NAME *name = X509_get_subject_name (cert);
  g_assert_cmpint (X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_UTF8, (const guchar *) cn, -1, -1, 0), ==, 1);
  g_assert_cmpint (X509_set_issuer_name (cert, name), ==, 1);
  g_assert_cmpint (ASN1_INTEGER_set (X509_get_serialNumber (cert), 4242 + cn_len), ==, 1);
  X509_gmtime_adj (X509_getm_notBefore (cert), 0);
  X509_gmtime_adj (X509_getm_notAfter (cert), 3600);
  g_assert_cmpint (X509_set_pubkey (cert, key), ==, 1);
  g_assert_cmpint (X509_sign (cert, key, EVP_sha256 ()), >, 0);
  return cert;
}

static void
test_x509_fields (void)
{
  g_autoptr(EVP_PKEY) key = EVP_EC_gen ("P-256");
  g_assert_nonnull (key);
  for (int cn_len = 1; cn_len <= 64; cn_len += 7)
    {
      g_autoptr(X509) cert = make_cert (key, cn_len);
      guint8 *der = NULL;
      int len = i2d_X509 (cert, &der);
      g_assert_cmpint (len, >, 0);
      /* the PEM without a parse is OpenSSL's, byte for byte */
      g_autofree gchar *pem = st_x509_to_pem (cert);
      g_autofree gchar *fast = st_der_to_pem ("CERTIFICATE", der, (gsize) len);
      g_assert_cmpstr (fast, ==, pem);
      /* the fields parse; the key stays undecoded but readable */
      g_autoptr(X509) fields = st_x509_from_der_fields (der, (gsize) len);
      g_assert_nonnull (fields);
      g_assert_null (X509_get0_pubkey (fields));
      g_assert_cmpint (ASN1_INTEGER_cmp (X509_get0_serialNumber (fields), X509_get0_serialNumber (cert)), ==, 0);
      g_assert_cmpint (X509_NAME_cmp (X509_get_subject_name (fields), X509_get_subject_name (cert)), ==, 0);
      g_autoptr(EVP_PKEY) pub = st_x509_get_pubkey (fields);
      g_assert_nonnull (pub);
      g_assert_cmpint (EVP_PKEY_eq (pub, key), ==, 1);
      /* its signature checks with the issuer's key, and not with another */
      g_assert_cmpint (X509_verify (fields, key), ==, 1);
      g_autoptr(EVP_PKEY) other = EVP_EC_gen ("P-256");
      g_assert_cmpint (X509_verify (fields, other), !=, 1);
      st_error_clear_openssl ();
      g_assert_cmpint (ERR_peek_error (), ==, 0);
      /* not a certificate, or more than one thing: refused */
      g_assert_null (st_x509_from_der_fields (der, (gsize) len - 1));
      guint8 *longer = g_malloc ((gsize) len + 1);
      memcpy (longer, der, (gsize) len);
      longer[len] = 0;
      g_assert_null (st_x509_from_der_fields (longer, (gsize) len + 1));
      g_free (longer);
      OPENSSL_free (der);
    }
  g_assert_null (st_x509_from_der_fields (NULL, 0));
  g_assert_null (st_x509_from_der_fields ((const guint8 *) "\x30\x00", 2));
  st_error_clear_openssl ();
}

static void
test_openssl_message (void)
{
  ERR_clear_error ();
  ERR_raise_data (ERR_LIB_X509, X509_R_CERT_ALREADY_IN_HASH_TABLE, "the %s", "detail");
  ERR_raise (ERR_LIB_ASN1, ASN1_R_HEADER_TOO_LONG);
  ERR_raise (ERR_LIB_USER, 12345);
  g_autoptr(GError) error = NULL;
  st_error_set_openssl (&error, ST_ERROR_INVALID_DATA, "it failed");
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_assert_cmpstr (error->message, ==,
                   "it failed: cert already in hash table (x509 certificate routines) [the detail]; "
                   "header too long (asn1 encoding routines); error 0x40003039");
  g_assert_cmpuint (ERR_peek_error (), ==, 0);
  g_autoptr(GError) none = NULL;
  st_error_set_openssl (&none, ST_ERROR_INTERNAL, "nothing queued");
  g_assert_cmpstr (none->message, ==, "nothing queued");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/common/hex", test_hex_roundtrip);
  g_test_add_func ("/common/alg-names", test_alg_names);
  g_test_add_func ("/common/sha256", test_sha256);
  g_test_add_func ("/common/durable-write", test_durable_write);
  g_test_add_func ("/common/spki", test_spki);
  g_test_add_func ("/common/ec-public-key", test_ec_public_key);
  g_test_add_func ("/common/bytes-bounded", test_bytes_bounded);
  g_test_add_func ("/common/text-escape", test_text_escape);
  g_test_add_func ("/common/openssl-message", test_openssl_message);
  g_test_add_func ("/common/x509-fields", test_x509_fields);
  return g_test_run ();
}
