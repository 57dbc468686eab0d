/* Issuance, CSR checks, proof of possession and chain checks, with a
 * software CA made here (the HSM path is tested elsewhere). */
#include "st-config.h"
#include "st-csr-oracle.h"
#include "st-error.h"
#include "st-issue.h"
#include "st-ossl.h"
#include "st-pop.h"
#include "st-profile.h"
#include "st-util.h"
#include "st-verify.h"
#include "st-test-tmp.h"

#include <glib/gstdio.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <string.h>

#define DAY (24 * 3600)

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BASIC_CONSTRAINTS, BASIC_CONSTRAINTS_free)

/* ---- a software PKI ---- */

static EVP_PKEY *
make_key (StAlg alg)
{
  EVP_PKEY *key = NULL;
  switch (alg)
    {
    case ST_ALG_EC_P256: key = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-256"); break;
    case ST_ALG_EC_P384: key = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-384"); break;
    case ST_ALG_ED25519: key = EVP_PKEY_Q_keygen (NULL, NULL, "ED25519"); break;
    default: g_assert_not_reached ();
    }
  g_assert_nonnull (key);
  return key;
}

static const EVP_MD *
md_for (EVP_PKEY *key)
{
  switch (st_pubkey_get_alg (key))
    {
    case ST_ALG_EC_P256: return EVP_sha256 ();
    case ST_ALG_EC_P384: return EVP_sha384 ();
    case ST_ALG_ED25519: return NULL;
    default: return EVP_sha256 ();
    }
}

static void
add_conf_ext (X509 *cert, X509V3_CTX *ctx, int nid, const char *value)
{
  X509_EXTENSION *ext = X509V3_EXT_conf_nid (NULL, ctx, nid, value);
  g_assert_nonnull (ext);
  g_assert_cmpint (X509_add_ext (cert, ext, -1), ==, 1);
  X509_EXTENSION_free (ext);
}

/* A CA certificate for @key, signed by @issuer_key (self-signed when NULL),
 * valid from now + @nb_off to now + @na_off seconds. */
static X509 *
make_ca (EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
         gint64 nb_off, gint64 na_off)
{
  X509 *cert = X509_new ();
  guint8 rnd[16];
  g_assert_cmpint (RAND_bytes (rnd, sizeof rnd), ==, 1);
  rnd[0] &= 0x7f;
  rnd[0] |= 0x40;
  g_autoptr(BIGNUM) bn = BN_bin2bn (rnd, sizeof rnd, NULL);
  g_autoptr(ASN1_INTEGER) sn = BN_to_ASN1_INTEGER (bn, NULL);
  g_autoptr(X509_NAME) name = X509_NAME_new ();
  X509_NAME_add_entry_by_txt (name, "O", MBSTRING_UTF8, (const unsigned char *) "Test PKI", -1, -1, 0);
  X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_UTF8, (const unsigned char *) cn, -1, -1, 0);
  time_t now = time (NULL);
  g_autoptr(ASN1_TIME) nb = ASN1_TIME_set (NULL, now + nb_off);
  g_autoptr(ASN1_TIME) na = ASN1_TIME_set (NULL, now + na_off);
  g_assert_cmpint (X509_set_version (cert, X509_VERSION_3), ==, 1);
  X509_set_serialNumber (cert, sn);
  X509_set_subject_name (cert, name);
  X509_set_issuer_name (cert, issuer != NULL ? X509_get_subject_name (issuer) : name);
  X509_set1_notBefore (cert, nb);
  X509_set1_notAfter (cert, na);
  X509_set_pubkey (cert, key);
  X509V3_CTX ctx;
  X509V3_set_ctx (&ctx, issuer != NULL ? issuer : cert, cert, NULL, NULL, 0);
  add_conf_ext (cert, &ctx, NID_basic_constraints, "critical,CA:TRUE");
  add_conf_ext (cert, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
  add_conf_ext (cert, &ctx, NID_subject_key_identifier, "hash");
  add_conf_ext (cert, &ctx, NID_authority_key_identifier, "keyid:always");
  EVP_PKEY *signer = issuer_key != NULL ? issuer_key : key;
  g_assert_cmpint (X509_sign (cert, signer, md_for (signer)), >, 0);
  return cert;
}

typedef struct {
  EVP_PKEY *root_key;
  X509 *root;
  EVP_PKEY *ca_key;
  X509 *ca;
} Pki;

static void
pki_init (Pki *pki, StAlg ca_alg, gint64 ca_nb_off, gint64 ca_na_off)
{
  pki->root_key = make_key (ST_ALG_EC_P384);
  pki->root = make_ca (pki->root_key, "Test Root", NULL, NULL, -2 * DAY, 30 * 365 * (gint64) DAY);
  pki->ca_key = make_key (ca_alg);
  pki->ca = make_ca (pki->ca_key, "Test Issuing CA", pki->root, pki->root_key, ca_nb_off, ca_na_off);
}

static void
pki_clear (Pki *pki)
{
  EVP_PKEY_free (pki->root_key);
  X509_free (pki->root);
  EVP_PKEY_free (pki->ca_key);
  X509_free (pki->ca);
}

static void
pki_default (Pki *pki)
{
  pki_init (pki, ST_ALG_EC_P256, -DAY, 15 * 365 * (gint64) DAY);
}

/* ---- profiles ---- */

static StProfile *
test_profile (StAlg alg, const char *validity, const char *extra)
{
  g_autofree gchar *text = g_strdup_printf (
      "[profile]\nname = t-%s\n"
      "[key]\nmode = device-csr\nalgorithm = %s\n"
      "[certificate]\nsubject = CN={uid},O=Example Devices Ltd,serialNumber={serial}\n"
      "san = URI:urn:example:device:{uid}\n%s\n"
      "key-usage = digitalSignature%s\n"
      "extended-key-usage = clientAuth\n%s\n"
      "[serial]\nformat = EX-{seq:06}\n[device]\nlock = false\n",
      st_alg_to_string (alg), st_alg_to_string (alg), validity,
      alg == ST_ALG_ED25519 ? "" : ";keyAgreement", extra != NULL ? extra : "");
  g_autoptr(GError) error = NULL;
  StProfile *p = st_profile_load_from_data (text, strlen (text), "test.profile", &error);
  g_assert_no_error (error);
  return p;
}

static const StSubjectInfo info = { "0123abcdef", "EX-SENSOR-1", "EX-000042" };

static void
random_serial (StSerial *serial)
{
  guint8 rnd[16];
  g_assert_cmpint (RAND_priv_bytes (rnd, sizeof rnd), ==, 1);
  rnd[15] ^= 0x5a; /* not all equal */
  rnd[0] = 0x11;
  g_assert_true (st_serial_from_random (rnd, serial));
}

/* Builds, signs and lints; returns the certificate. */
static X509 *
issue (const Pki *pki, const StProfile *profile, EVP_PKEY *key, const StSerial *serial)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  g_autoptr(X509) cert = st_issue_build (pki->ca, profile, key, &info, serial, now, &error);
  g_assert_no_error (error);
  g_autoptr(GBytes) tbs = st_issue_tbs_der (cert, &error);
  g_assert_no_error (error);
  g_assert_true (st_issue_sign (cert, pki->ca_key, pki->ca, &error));
  g_assert_no_error (error);
  /* what was recorded before signing is what got signed */
  g_autoptr(GBytes) tbs_after = st_issue_tbs_der (cert, &error);
  g_assert_true (g_bytes_equal (tbs, tbs_after));
  g_assert_true (st_issue_check (cert, pki->ca, profile, key, &info, serial, &error));
  g_assert_no_error (error);
  return g_steal_pointer (&cert);
}

static X509 *
reparse (X509 *cert)
{
  unsigned char *der = NULL;
  int len = i2d_X509 (cert, &der);
  g_assert_cmpint (len, >, 0);
  const unsigned char *p = der;
  X509 *out = d2i_X509 (NULL, &p, len);
  g_assert_nonnull (out);
  g_assert_true (p == der + len);
  OPENSSL_free (der);
  return out;
}

/* ---- CSRs ---- */

static GBytes *
make_csr_md (EVP_PKEY *key, gboolean hostile, const EVP_MD *md)
{
  g_autoptr(X509_REQ) req = X509_REQ_new ();
  g_assert_cmpint (X509_REQ_set_version (req, X509_REQ_VERSION_1), ==, 1);
  X509_NAME *name = X509_REQ_get_subject_name (req);
  X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_UTF8, (const unsigned char *) "I am a CA", -1, -1, 0);
  g_assert_cmpint (X509_REQ_set_pubkey (req, key), ==, 1);
  if (hostile)
    {
      STACK_OF (X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null ();
      X509V3_CTX ctx;
      X509V3_set_ctx (&ctx, NULL, NULL, req, NULL, 0);
      sk_X509_EXTENSION_push (exts, X509V3_EXT_conf_nid (NULL, &ctx, NID_basic_constraints, "critical,CA:TRUE"));
      sk_X509_EXTENSION_push (exts, X509V3_EXT_conf_nid (NULL, &ctx, NID_subject_alt_name, "DNS:evil.example.com"));
      sk_X509_EXTENSION_push (exts, X509V3_EXT_conf_nid (NULL, &ctx, NID_key_usage, "critical,keyCertSign"));
      g_assert_cmpint (X509_REQ_add_extensions (req, exts), ==, 1);
      sk_X509_EXTENSION_pop_free (exts, X509_EXTENSION_free);
    }
  g_assert_cmpint (X509_REQ_sign (req, key, md), >, 0);
  unsigned char *der = NULL;
  int len = i2d_X509_REQ (req, &der);
  g_assert_cmpint (len, >, 0);
  GBytes *out = g_bytes_new (der, (gsize) len);
  OPENSSL_free (der);
  return out;
}

static GBytes *
make_csr (EVP_PKEY *key, gboolean hostile)
{
  return make_csr_md (key, hostile, md_for (key));
}

static void
assert_csr_refused (GBytes *csr, StAlg alg, const char *expect)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(EVP_PKEY) key = st_csr_check (csr, alg, &error);
  g_test_message ("refused: %s", error != NULL ? error->message : "(accepted)");
  g_assert_null (key);
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, expect));
}

static void
test_csr_good (void)
{
  for (StAlg alg = ST_ALG_EC_P256; alg <= ST_ALG_ED25519; alg++)
    {
      g_autoptr(EVP_PKEY) key = make_key (alg);
      g_autoptr(GBytes) csr = make_csr (key, FALSE);
      g_autoptr(GError) error = NULL;
      g_autoptr(EVP_PKEY) pub = st_csr_check (csr, alg, &error);
      g_assert_no_error (error);
      g_assert_cmpint (EVP_PKEY_eq (pub, key), ==, 1);
      g_assert_cmpint (st_pubkey_get_alg (pub), ==, alg);
      /* the same CSR for another algorithm is refused */
      assert_csr_refused (csr, alg == ST_ALG_ED25519 ? ST_ALG_EC_P256 : ST_ALG_ED25519, "the profile asks for");
    }
}

static GBytes *
bytes_edit (GBytes *in, gssize flip_at, const guint8 *append, gsize append_len, gsize truncate)
{
  gsize len = 0;
  const guint8 *d = g_bytes_get_data (in, &len);
  GByteArray *a = g_byte_array_new ();
  g_byte_array_append (a, d, (guint) (len - truncate));
  if (flip_at < 0)
    flip_at += (gssize) a->len;
  if (flip_at >= 0 && (gsize) flip_at < a->len)
    a->data[flip_at] ^= 0x01;
  if (append != NULL)
    g_byte_array_append (a, append, (guint) append_len);
  return g_byte_array_free_to_bytes (a);
}

static void
test_csr_hostile (void)
{
  for (StAlg alg = ST_ALG_EC_P256; alg <= ST_ALG_ED25519; alg++)
    {
      g_autoptr(EVP_PKEY) key = make_key (alg);
      g_autoptr(GBytes) csr = make_csr (key, FALSE);
      /* a flipped bit in the signature (the last byte) */
      g_autoptr(GBytes) bad_sig = bytes_edit (csr, -1, NULL, 0, 0);
      assert_csr_refused (bad_sig, alg, "not validly signed (signature check returned");
      /* trailing bytes */
      const guint8 junk[] = { 0x00 };
      g_autoptr(GBytes) trailing = bytes_edit (csr, G_MAXSSIZE, junk, 1, 0);
      assert_csr_refused (trailing, alg, "garbage after it");
      /* truncated */
      g_autoptr(GBytes) truncated = bytes_edit (csr, G_MAXSSIZE, NULL, 0, 1);
      assert_csr_refused (truncated, alg, "not a DER PKCS#10 request");
    }
  /* empty, garbage, too large */
  g_autoptr(GBytes) empty = g_bytes_new_static ("", 0);
  assert_csr_refused (empty, ST_ALG_EC_P256, "empty");
  g_autoptr(GBytes) garbage = g_bytes_new_static ("\x30\x03\x02\x01\x01", 5);
  assert_csr_refused (garbage, ST_ALG_EC_P256, "not a DER PKCS#10 request");
  g_autofree guint8 *huge = g_malloc0 (ST_CSR_MAX_SIZE + 1);
  g_autoptr(GBytes) big = g_bytes_new (huge, ST_CSR_MAX_SIZE + 1);
  assert_csr_refused (big, ST_ALG_EC_P256, "too large");

  /* wrong curves */
  g_autoptr(EVP_PKEY) k1 = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "secp256k1");
  g_assert_nonnull (k1);
  g_autoptr(GBytes) csr_k1 = make_csr (k1, FALSE);
  assert_csr_refused (csr_k1, ST_ALG_EC_P256, "curve secp256k1");
  g_autoptr(EVP_PKEY) p384 = make_key (ST_ALG_EC_P384);
  g_autoptr(GBytes) csr_384 = make_csr (p384, FALSE);
  assert_csr_refused (csr_384, ST_ALG_EC_P256, "curve secp384r1, but the profile asks for ec-p256");
  g_autoptr(EVP_PKEY) p256 = make_key (ST_ALG_EC_P256);
  g_autoptr(GBytes) csr_256 = make_csr (p256, FALSE);
  assert_csr_refused (csr_256, ST_ALG_EC_P384, "curve prime256v1, but the profile asks for ec-p384");

  /* explicit curve parameters (P-256 written out) */
  g_autoptr(EVP_PKEY) expl = make_key (ST_ALG_EC_P256);
  g_assert_cmpint (EVP_PKEY_set_utf8_string_param (expl, OSSL_PKEY_PARAM_EC_ENCODING,
                                                   OSSL_PKEY_EC_ENCODING_EXPLICIT), ==, 1);
  g_autoptr(GBytes) csr_expl = make_csr (expl, FALSE);
  g_assert_cmpuint (g_bytes_get_size (csr_expl), >, g_bytes_get_size (csr_256) + 100);
  assert_csr_refused (csr_expl, ST_ALG_EC_P256, "explicit EC curve parameters");

  /* RSA */
  g_autoptr(EVP_PKEY) rsa = EVP_PKEY_Q_keygen (NULL, NULL, "RSA", (size_t) 1024);
  g_assert_nonnull (rsa);
  g_autoptr(GBytes) csr_rsa = make_csr (rsa, FALSE);
  assert_csr_refused (csr_rsa, ST_ALG_EC_P256, "rsaEncryption, which is refused");
}

/* Security review, issue 14, item 10: a request signed with a weak digest
 * (ecdsa-with-SHA1, ecdsa-with-SHA224) is refused with the algorithm named,
 * though OpenSSL's own X509_REQ_verify() accepts it; SHA-256, SHA-384 and
 * SHA-512 pass on either curve. */
static void
test_csr_weak_digest (void)
{
  for (StAlg alg = ST_ALG_EC_P256; alg <= ST_ALG_EC_P384; alg++)
    {
      g_autoptr(EVP_PKEY) key = make_key (alg);
      struct { const EVP_MD *md; const char *name; } weak[] = {
        { EVP_sha1 (), "ecdsa-with-SHA1, which is refused: SHA-256 or stronger is required" },
        { EVP_sha224 (), "ecdsa-with-SHA224, which is refused" },
      };
      for (guint i = 0; i < G_N_ELEMENTS (weak); i++)
        {
          g_autoptr(GBytes) csr = make_csr_md (key, FALSE, weak[i].md);
          gsize len = 0;
          const guint8 *d = g_bytes_get_data (csr, &len);
          g_autoptr(EVP_PKEY) by_openssl = st_csr_oracle (d, len, alg);
          g_assert_nonnull (by_openssl); /* a well-formed, validly signed request */
          assert_csr_refused (csr, alg, weak[i].name);
        }
      const EVP_MD *strong[] = { EVP_sha256 (), EVP_sha384 (), EVP_sha512 () };
      for (guint i = 0; i < G_N_ELEMENTS (strong); i++)
        {
          g_autoptr(GBytes) csr = make_csr_md (key, FALSE, strong[i]);
          g_autoptr(GError) error = NULL;
          g_autoptr(EVP_PKEY) pub = st_csr_check (csr, alg, &error);
          g_assert_no_error (error);
          g_assert_cmpint (EVP_PKEY_eq (pub, key), ==, 1);
        }
    }
}

/* Every single-byte change of a signed CSR is refused, and nothing crashes. */
static void
test_csr_every_byte (void)
{
  for (StAlg alg = ST_ALG_EC_P256; alg <= ST_ALG_ED25519; alg++)
    {
      g_autoptr(EVP_PKEY) key = make_key (alg);
      g_autoptr(GBytes) csr = make_csr (key, TRUE);
      gsize len = g_bytes_get_size (csr);
      for (gsize i = 0; i < len; i++)
        {
          g_autofree guint8 *d = g_memdup2 (g_bytes_get_data (csr, NULL), len);
          d[i] ^= (guint8) (1u << (i % 8));
          g_autoptr(GBytes) bad = g_bytes_new (d, len);
          g_autoptr(GError) error = NULL;
          g_autoptr(EVP_PKEY) pub = st_csr_check (bad, alg, &error);
          g_assert_null (pub);
          g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
          g_autoptr(EVP_PKEY) openssl_pub = st_csr_oracle (d, len, alg);
          g_assert_null (openssl_pub);
          /* and every truncation */
          g_autoptr(GBytes) cut = g_bytes_new (g_bytes_get_data (csr, NULL), i);
          g_autoptr(GError) error2 = NULL;
          g_autoptr(EVP_PKEY) pub2 = st_csr_check (cut, alg, &error2);
          g_assert_null (pub2);
          g_assert_error (error2, ST_ERROR, ST_ERROR_INVALID_DATA);
        }
    }
}

/* A DER TLV with a definite length, for building requests by hand. */
static GByteArray *
der_tlv (guint8 tag, const guint8 *content, gsize len)
{
  GByteArray *out = g_byte_array_new ();
  g_byte_array_append (out, &tag, 1);
  guint8 l[5];
  gsize n = 0;
  if (len < 0x80)
    l[n++] = (guint8) len;
  else if (len < 0x100)
    {
      l[n++] = 0x81;
      l[n++] = (guint8) len;
    }
  else
    {
      g_assert_cmpuint (len, <, 0x10000);
      l[n++] = 0x82;
      l[n++] = (guint8) (len >> 8);
      l[n++] = (guint8) len;
    }
  g_byte_array_append (out, l, (guint) n);
  g_byte_array_append (out, content, (guint) len);
  return out;
}

/* Skips one TLV at *@p (short or 1–2 byte long lengths); returns its
 * content and sets *@clen, or NULL when it does not fit. */
static const guint8 *
der_next (const guint8 **p, const guint8 *end, gsize *clen)
{
  if (end - *p < 2)
    return NULL;
  const guint8 *q = *p + 1;
  gsize len = *q++;
  if (len & 0x80)
    {
      guint nb = len & 0x7f;
      if (nb == 0 || nb > 2 || (gsize) (end - q) < nb)
        return NULL;
      len = 0;
      for (guint i = 0; i < nb; i++)
        len = (len << 8) | *q++;
    }
  if ((gsize) (end - q) < len)
    return NULL;
  *p = q + len;
  *clen = len;
  return q;
}

/* @csr with its CertificationRequestInfo replaced by @info (the whole
 * TLV), signed anew with @key. */
static GBytes *
resign_csr (GBytes *csr, const guint8 *tbs, gsize tbs_len, EVP_PKEY *key)
{
  gsize len = 0;
  const guint8 *d = g_bytes_get_data (csr, &len);
  const guint8 *p = d, *end = d + len;
  gsize outer_len = 0, skip = 0, alg_len = 0;
  const guint8 *outer = der_next (&p, end, &outer_len);
  g_assert_nonnull (outer);
  p = outer;
  g_assert_nonnull (der_next (&p, end, &skip)); /* the old info */
  const guint8 *alg_tlv = p;
  g_assert_nonnull (der_next (&p, end, &alg_len));
  gsize alg_tlv_len = (gsize) (p - alg_tlv);

  g_autoptr(EVP_MD_CTX) ctx = EVP_MD_CTX_new ();
  g_assert_cmpint (EVP_DigestSignInit (ctx, NULL, md_for (key), NULL, key), ==, 1);
  size_t sig_len = 0;
  g_assert_cmpint (EVP_DigestSign (ctx, NULL, &sig_len, tbs, tbs_len), ==, 1);
  g_autofree guint8 *sig = g_malloc (sig_len + 1);
  sig[0] = 0; /* no unused bits */
  g_assert_cmpint (EVP_DigestSign (ctx, sig + 1, &sig_len, tbs, tbs_len), ==, 1);

  g_autoptr(GByteArray) body = g_byte_array_new ();
  g_byte_array_append (body, tbs, (guint) tbs_len);
  g_byte_array_append (body, alg_tlv, (guint) alg_tlv_len);
  g_autoptr(GByteArray) bits = der_tlv (0x03, sig, sig_len + 1);
  g_byte_array_append (body, bits->data, bits->len);
  g_autoptr(GByteArray) whole = der_tlv (0x30, body->data, body->len);
  return g_bytes_new (whole->data, whole->len);
}

/* The CertificationRequestInfo of @csr, the whole TLV. */
static GBytes *
csr_info (GBytes *csr)
{
  gsize len = 0, outer_len = 0, info_len = 0;
  const guint8 *d = g_bytes_get_data (csr, &len);
  const guint8 *p = d, *end = d + len;
  const guint8 *outer = der_next (&p, end, &outer_len);
  g_assert_nonnull (outer);
  p = outer;
  const guint8 *start = p;
  g_assert_nonnull (der_next (&p, end, &info_len));
  return g_bytes_new (start, (gsize) (p - start));
}

/* st_csr_check() against OpenSSL's own reading (d2i_X509_REQ,
 * X509_REQ_verify): the same verdict and the same key on requests signed
 * over other encodings of the signed part. */
static void
test_csr_openssl (void)
{
  for (StAlg alg = ST_ALG_EC_P256; alg <= ST_ALG_ED25519; alg++)
    {
      g_autoptr(EVP_PKEY) key = make_key (alg);
      g_autoptr(GBytes) csr = make_csr (key, TRUE);
      gsize len = 0;
      const guint8 *d = g_bytes_get_data (csr, &len);
      g_autoptr(EVP_PKEY) ours = st_csr_check (csr, alg, NULL);
      g_autoptr(EVP_PKEY) theirs = st_csr_oracle (d, len, alg);
      g_assert_nonnull (ours);
      g_assert_nonnull (theirs);
      g_assert_cmpint (EVP_PKEY_eq (ours, theirs), ==, 1);
      g_assert_cmpint (EVP_PKEY_eq (ours, key), ==, 1);

      /* Signed anew over the same bytes: accepted by both. */
      g_autoptr(GBytes) signed_part = csr_info (csr);
      gsize sp_len = 0;
      const guint8 *sp = g_bytes_get_data (signed_part, &sp_len);
      g_autoptr(GBytes) same = resign_csr (csr, sp, sp_len, key);
      g_autoptr(EVP_PKEY) ours_same = st_csr_check (same, alg, NULL);
      g_assert_nonnull (ours_same);
      g_autoptr(EVP_PKEY) theirs_same = st_csr_oracle (g_bytes_get_data (same, NULL), g_bytes_get_size (same), alg);
      g_assert_nonnull (theirs_same);

      /* Without the attributes' [0] (some encoders leave the empty set
       * out): OpenSSL reads it, and so do we. */
      g_autoptr(EVP_PKEY) plain_key = make_key (alg);
      g_autoptr(GBytes) plain = make_csr (plain_key, FALSE);
      g_autoptr(GBytes) plain_info = csr_info (plain);
      gsize pi_len = 0;
      const guint8 *pi = g_bytes_get_data (plain_info, &pi_len);
      const guint8 *pp = pi, *pend = pi + pi_len;
      gsize inner_len = 0;
      const guint8 *inner = der_next (&pp, pend, &inner_len);
      g_assert_nonnull (inner);
      g_assert_cmpuint (inner_len, >=, 2);
      g_assert_cmphex (inner[inner_len - 2], ==, 0xa0); /* empty [0] last */
      g_assert_cmphex (inner[inner_len - 1], ==, 0x00);
      g_autoptr(GByteArray) no_attrs = der_tlv (0x30, inner, inner_len - 2);
      g_autoptr(GBytes) bare = resign_csr (plain, no_attrs->data, no_attrs->len, plain_key);
      g_autoptr(GError) error = NULL;
      g_autoptr(EVP_PKEY) ours_bare = st_csr_check (bare, alg, &error);
      g_assert_no_error (error);
      g_autoptr(EVP_PKEY) theirs_bare = st_csr_oracle (g_bytes_get_data (bare, NULL), g_bytes_get_size (bare), alg);
      g_assert_nonnull (theirs_bare);
      g_assert_cmpint (EVP_PKEY_eq (ours_bare, theirs_bare), ==, 1);

      /* The signed part in BER (a long-form length where DER has the
       * short one), validly signed over those bytes: refused as not DER. */
      g_autoptr(GByteArray) ber = g_byte_array_new ();
      guint8 ber_hdr[] = { 0x30, 0x82, (guint8) (inner_len >> 8), (guint8) inner_len };
      g_byte_array_append (ber, ber_hdr, sizeof ber_hdr);
      g_byte_array_append (ber, inner, (guint) inner_len);
      if (inner_len >= 0x100)
        continue; /* already long form in DER */
      g_autoptr(GBytes) ber_csr = resign_csr (plain, ber->data, ber->len, plain_key);
      assert_csr_refused (ber_csr, alg, "not in canonical DER");
    }
}

/* A CSR that asks for CA:TRUE, its own subject and SAN: accepted, and the
 * certificate has CA:FALSE and the profile's subject and SAN only. */
static void
test_csr_ignored_content (void)
{
  Pki pki;
  pki_default (&pki);
  g_autoptr(StProfile) profile = test_profile (ST_ALG_EC_P256, "validity-days = 365", NULL);
  g_autoptr(EVP_PKEY) key = make_key (ST_ALG_EC_P256);
  g_autoptr(GBytes) csr = make_csr (key, TRUE);
  g_autoptr(GError) error = NULL;
  g_autoptr(EVP_PKEY) pub = st_csr_check (csr, ST_ALG_EC_P256, &error);
  g_assert_no_error (error);
  StSerial serial;
  random_serial (&serial);
  g_autoptr(X509) signed_cert = issue (&pki, profile, pub, &serial);
  g_autoptr(X509) cert = reparse (signed_cert);

  g_assert_cmpint (X509_check_ca (cert), ==, 0);
  g_assert_false (X509_get_extension_flags (cert) & EXFLAG_CA);
  g_assert_cmpuint (X509_get_key_usage (cert) & KU_KEY_CERT_SIGN, ==, 0);
  g_autoptr(BIO) bio = BIO_new (BIO_s_mem ());
  X509_NAME_print_ex (bio, X509_get_subject_name (cert), 0, XN_FLAG_RFC2253);
  char *txt = NULL;
  long n = BIO_get_mem_data (bio, &txt);
  g_autofree gchar *subject = g_strndup (txt, (gsize) n);
  g_assert_cmpstr (subject, ==, "CN=0123abcdef,O=Example Devices Ltd,serialNumber=EX-000042");
  g_autoptr(GENERAL_NAMES) san = X509_get_ext_d2i (cert, NID_subject_alt_name, NULL, NULL);
  g_assert_cmpint (sk_GENERAL_NAME_num (san), ==, 1);
  int type = 0;
  ASN1_STRING *v = GENERAL_NAME_get0_value (sk_GENERAL_NAME_value (san, 0), &type);
  g_assert_cmpint (type, ==, GEN_URI);
  g_assert_cmpmem (ASN1_STRING_get0_data (v), ASN1_STRING_length (v), "urn:example:device:0123abcdef", 29);
  pki_clear (&pki);
}

/* ---- certificate contents ---- */

static int
ext_critical (X509 *cert, int nid)
{
  int idx = X509_get_ext_by_NID (cert, nid, -1);
  g_assert_cmpint (idx, >=, 0);
  g_assert_cmpint (X509_get_ext_by_NID (cert, nid, idx), ==, -1); /* once */
  return X509_EXTENSION_get_critical (X509_get_ext (cert, idx));
}

static void
check_contents (const Pki *pki, X509 *cert, EVP_PKEY *key, const StSerial *serial,
                const StProfile *profile, gint64 t_issue)
{
  g_assert_cmpint (X509_get_version (cert), ==, X509_VERSION_3);

  /* serial: positive, 128 bits, as the hex says */
  g_autoptr(BIGNUM) bn = ASN1_INTEGER_to_BN (X509_get0_serialNumber (cert), NULL);
  g_assert_false (BN_is_negative (bn));
  g_assert_cmpint (BN_num_bits (bn), ==, 128);
  char *bn_hex = BN_bn2hex (bn);
  g_autofree gchar *want_hex = st_serial_to_hex (serial);
  g_assert_cmpuint (strlen (want_hex), ==, 32);
  g_assert_cmpint (g_ascii_strcasecmp (bn_hex, want_hex), ==, 0);
  OPENSSL_free (bn_hex);

  g_assert_cmpint (X509_NAME_cmp (X509_get_issuer_name (cert), X509_get_subject_name (pki->ca)), ==, 0);
  g_assert_cmpint (EVP_PKEY_eq (X509_get0_pubkey (cert), key), ==, 1);
  g_assert_cmpint (X509_verify (cert, X509_get0_pubkey (pki->ca)), ==, 1);
  int want_sig = st_pubkey_get_alg (pki->ca_key) == ST_ALG_EC_P384 ? NID_ecdsa_with_SHA384
               : st_pubkey_get_alg (pki->ca_key) == ST_ALG_ED25519 ? NID_ED25519 : NID_ecdsa_with_SHA256;
  g_assert_cmpint (X509_get_signature_nid (cert), ==, want_sig);

  /* extensions and their critical flags */
  g_assert_cmpint (X509_get_ext_count (cert), ==, 6);
  g_assert_cmpint (ext_critical (cert, NID_basic_constraints), ==, 1);
  g_assert_cmpint (ext_critical (cert, NID_key_usage), ==, 1);
  g_assert_cmpint (ext_critical (cert, NID_ext_key_usage), ==, 0);
  g_assert_cmpint (ext_critical (cert, NID_subject_key_identifier), ==, 0);
  g_assert_cmpint (ext_critical (cert, NID_authority_key_identifier), ==, 0);
  g_assert_cmpint (ext_critical (cert, NID_subject_alt_name), ==, 0);

  g_autoptr(BASIC_CONSTRAINTS) bc = X509_get_ext_d2i (cert, NID_basic_constraints, NULL, NULL);
  g_assert_cmpint (bc->ca, ==, 0);
  g_assert_null (bc->pathlen);
  g_assert_cmpuint (X509_get_key_usage (cert), ==, profile->key_usage);
  g_assert_cmpuint (X509_get_extended_key_usage (cert), ==, XKU_SSL_CLIENT);

  /* SKI = SHA-1 of the key bits; AKI = the CA's SKI */
  const unsigned char *bits = NULL;
  int bits_len = 0;
  g_assert_cmpint (X509_PUBKEY_get0_param (NULL, &bits, &bits_len, NULL, X509_get_X509_PUBKEY (cert)), ==, 1);
  unsigned char sha1[20];
  unsigned int sha1_len = 0;
  g_assert_cmpint (EVP_Digest (bits, (size_t) bits_len, sha1, &sha1_len, EVP_sha1 (), NULL), ==, 1);
  const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id (cert);
  g_assert_cmpmem (ASN1_STRING_get0_data (ski), ASN1_STRING_length (ski), sha1, sha1_len);
  const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id (cert);
  const ASN1_OCTET_STRING *ca_ski = X509_get0_subject_key_id (pki->ca);
  g_assert_cmpint (ASN1_OCTET_STRING_cmp (aki, ca_ski), ==, 0);
  g_assert_null (X509_get0_authority_issuer (cert));
  g_assert_null (X509_get0_authority_serial (cert));

  /* validity */
  int day = 0, sec = 0;
  g_autoptr(ASN1_TIME) t0 = ASN1_TIME_set (NULL, (time_t) t_issue);
  g_assert_cmpint (ASN1_TIME_diff (&day, &sec, X509_get0_notBefore (cert), t0), ==, 1);
  g_assert_cmpint (day, ==, 0);
  g_assert_cmpint (sec, >=, (int) profile->backdate_minutes * 60);
  g_assert_cmpint (sec, <=, (int) profile->backdate_minutes * 60 + 5);
  g_assert_cmpint (ASN1_STRING_type (X509_get0_notBefore (cert)), ==, V_ASN1_UTCTIME);
  const ASN1_TIME *na = X509_get0_notAfter (cert);
  if (profile->no_expiry)
    {
      g_assert_cmpint (ASN1_STRING_type (na), ==, V_ASN1_GENERALIZEDTIME);
      g_assert_cmpmem (ASN1_STRING_get0_data (na), ASN1_STRING_length (na), "99991231235959Z", 15);
    }
  else
    {
      g_assert_cmpint (ASN1_TIME_diff (&day, &sec, t0, na), ==, 1);
      g_assert_cmpint (day, ==, profile->validity_days);
      g_assert_cmpint (sec, >=, -5);
      g_assert_cmpint (sec, <=, 0);
    }
}

static void
test_contents (void)
{
  for (StAlg ca_alg = ST_ALG_EC_P256; ca_alg <= ST_ALG_ED25519; ca_alg++)
    for (StAlg alg = ST_ALG_EC_P256; alg <= ST_ALG_ED25519; alg++)
      for (int forever = 0; forever < 2; forever++)
        {
          Pki pki;
          pki_init (&pki, ca_alg, -DAY, 15 * 365 * (gint64) DAY);
          g_autoptr(StProfile) profile = test_profile (alg, forever ? "validity = no-expiry" : "validity-days = 3650",
                                                       NULL);
          g_autoptr(EVP_PKEY) key = make_key (alg);
          StSerial serial;
          random_serial (&serial);
          gint64 t = g_get_real_time () / G_USEC_PER_SEC;
          g_autoptr(X509) signed_cert = issue (&pki, profile, key, &serial);
          g_autoptr(X509) cert = reparse (signed_cert);
          check_contents (&pki, cert, key, &serial, profile, t);
          /* the key's hash, read from the certificate as built and as
           * parsed back, is the key's own (the unit records it) */
          g_autofree gchar *key_hash = st_pubkey_sha256_hex (key);
          g_autofree gchar *signed_hash = st_x509_pubkey_sha256_hex (signed_cert, NULL);
          g_autofree gchar *parsed_hash = st_x509_pubkey_sha256_hex (cert, NULL);
          g_assert_cmpuint (strlen (key_hash), ==, 64);
          g_assert_cmpstr (signed_hash, ==, key_hash);
          g_assert_cmpstr (parsed_hash, ==, key_hash);

          /* the chain verifies with the stock verifier */
          g_autoptr(StX509Stack) untrusted = sk_X509_new_null ();
          sk_X509_push (untrusted, X509_dup (pki.ca));
          g_autoptr(GError) error = NULL;
          g_assert_true (st_verify_chain (cert, untrusted, pki.root, &error));
          g_assert_no_error (error);
          pki_clear (&pki);
        }
}

/* A device may send its EC key compressed: the CSR check takes it, and the
 * certificate and the key's hash carry the uncompressed point, so the same
 * key sent once each way is one key for the rule that a key is certified
 * once. */
static void
test_compressed_key (void)
{
  for (StAlg alg = ST_ALG_EC_P256; alg <= ST_ALG_EC_P384; alg++)
    {
      g_autoptr(EVP_PKEY) key = make_key (alg);
      g_autofree gchar *want_hash = st_pubkey_sha256_hex (key);
      g_autoptr(EVP_PKEY) compressed = EVP_PKEY_dup (key);
      g_assert_cmpint (EVP_PKEY_set_utf8_string_param (compressed, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                                       OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_COMPRESSED), ==, 1);
      g_autoptr(GBytes) csr = make_csr (compressed, FALSE);
      /* the request really carries the compressed point */
      {
        const unsigned char *p = g_bytes_get_data (csr, NULL);
        g_autoptr(X509_REQ) req = d2i_X509_REQ (NULL, &p, (long) g_bytes_get_size (csr));
        const unsigned char *bits = NULL;
        int bits_len = 0;
        g_assert_cmpint (X509_PUBKEY_get0_param (NULL, &bits, &bits_len, NULL, X509_REQ_get_X509_PUBKEY (req)), ==, 1);
        g_assert_cmpint (bits[0] == 0x02 || bits[0] == 0x03, ==, TRUE);
        g_assert_cmpint (bits_len, ==, alg == ST_ALG_EC_P256 ? 33 : 49);
      }
      g_autoptr(GError) error = NULL;
      g_autoptr(EVP_PKEY) pub = st_csr_check (csr, alg, &error);
      g_assert_no_error (error);
      g_assert_cmpint (EVP_PKEY_eq (pub, key), ==, 1);
      g_autofree gchar *hash = st_pubkey_sha256_hex (pub);
      g_assert_cmpstr (hash, ==, want_hash);

      Pki pki;
      pki_init (&pki, ST_ALG_EC_P256, -DAY, 15 * 365 * (gint64) DAY);
      g_autoptr(StProfile) profile = test_profile (alg, "validity-days = 3650", NULL);
      StSerial serial;
      random_serial (&serial);
      g_autoptr(X509) cert = issue (&pki, profile, pub, &serial);
      const unsigned char *bits = NULL;
      int bits_len = 0;
      g_assert_cmpint (X509_PUBKEY_get0_param (NULL, &bits, &bits_len, NULL, X509_get_X509_PUBKEY (cert)), ==, 1);
      g_assert_cmphex (bits[0], ==, 0x04);
      g_assert_cmpint (bits_len, ==, alg == ST_ALG_EC_P256 ? 65 : 97);
      g_autofree gchar *cert_hash = st_x509_pubkey_sha256_hex (cert, NULL);
      g_assert_cmpstr (cert_hash, ==, want_hash);
      pki_clear (&pki);
    }
}

static void
test_serial (void)
{
  guint8 rnd[16] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                     0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10 };
  StSerial s;
  g_assert_true (st_serial_from_random (rnd, &s));
  g_assert_cmpuint (s.len, ==, 17);
  g_assert_cmpuint (s.bytes[0], ==, 0x00);
  g_autofree gchar *hex = st_serial_to_hex (&s);
  g_assert_cmpstr (hex, ==, "8102030405060708090a0b0c0d0e0f10");
  rnd[0] = 0xff;
  g_assert_true (st_serial_from_random (rnd, &s));
  g_autofree gchar *hex2 = st_serial_to_hex (&s);
  g_assert_cmpstr (hex2, ==, "ff02030405060708090a0b0c0d0e0f10");
  /* a stuck generator */
  guint8 zero[16] = { 0 };
  g_assert_false (st_serial_from_random (zero, &s));
  guint8 ones[16];
  memset (ones, 0xff, sizeof ones);
  g_assert_false (st_serial_from_random (ones, &s));
}

static void
test_station_keygen (void)
{
  for (StAlg alg = ST_ALG_EC_P256; alg <= ST_ALG_ED25519; alg++)
    {
      g_autoptr(GError) error = NULL;
      GBytes *pkcs8 = NULL;
      g_autoptr(EVP_PKEY) key = st_issue_station_keygen (alg, &pkcs8, &error);
      g_assert_no_error (error);
      g_assert_nonnull (pkcs8);
      g_assert_cmpint (st_pubkey_get_alg (key), ==, alg);
      gsize len = 0;
      const unsigned char *p = g_bytes_get_data (pkcs8, &len);
      const unsigned char *start = p;
      g_autoptr(PKCS8_PRIV_KEY_INFO) p8 = d2i_PKCS8_PRIV_KEY_INFO (NULL, &p, (long) len);
      g_assert_nonnull (p8);
      g_assert_true (p == start + len);
      g_autoptr(EVP_PKEY) back = EVP_PKCS82PKEY (p8);
      g_assert_nonnull (back);
      g_assert_cmpint (EVP_PKEY_eq (back, key), ==, 1);
      /* the private halves match: a signature by one verifies with the other */
      guint8 challenge[32] = { 1, 2, 3 };
      guint8 msg[48];
      memcpy (msg, ST_POP_CONTEXT, 16);
      memcpy (msg + 16, challenge, 32);
      g_autoptr(EVP_MD_CTX) ctx = EVP_MD_CTX_new ();
      g_assert_cmpint (EVP_DigestSignInit (ctx, NULL, md_for (back), NULL, back), ==, 1);
      size_t sig_len = 0;
      g_assert_cmpint (EVP_DigestSign (ctx, NULL, &sig_len, msg, sizeof msg), ==, 1);
      g_autofree guint8 *sig = g_malloc (sig_len);
      g_assert_cmpint (EVP_DigestSign (ctx, sig, &sig_len, msg, sizeof msg), ==, 1);
      g_autoptr(EVP_MD_CTX) vctx = EVP_MD_CTX_new ();
      g_assert_cmpint (EVP_DigestVerifyInit (vctx, NULL, md_for (key), NULL, key), ==, 1);
      g_assert_cmpint (EVP_DigestVerify (vctx, sig, sig_len, msg, sizeof msg), ==, 1);
      st_bytes_wipe_unref (pkcs8);

      g_autofree gchar *fp = st_pubkey_sha256_hex (key);
      unsigned char *spki = NULL;
      int spki_len = i2d_PUBKEY (key, &spki);
      g_autofree gchar *want = st_sha256_hex (spki, (gsize) spki_len);
      OPENSSL_free (spki);
      g_assert_cmpstr (fp, ==, want);
      g_assert_cmpuint (strlen (fp), ==, 64);
    }
}

/* ---- lint catches tampering ---- */

static void
assert_check_fails (const Pki *pki, X509 *cert, const StProfile *profile, EVP_PKEY *key,
                    const StSerial *serial, const char *expect)
{
  g_autoptr(GError) error = NULL;
  gboolean ok = st_issue_check (cert, pki->ca, profile, key, &info, serial, &error);
  g_test_message ("lint: %s", error != NULL ? error->message : "(passed)");
  g_assert_false (ok);
  g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
  g_assert_nonnull (strstr (error->message, expect));
}

static X509 *
build_unsigned (const Pki *pki, const StProfile *profile, EVP_PKEY *key, const StSerial *serial)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  X509 *cert = st_issue_build (pki->ca, profile, key, &info, serial, now, &error);
  g_assert_no_error (error);
  return cert;
}

static void
test_check_tampered (void)
{
  Pki pki;
  pki_default (&pki);
  g_autoptr(StProfile) profile = test_profile (ST_ALG_EC_P256, "validity-days = 3650", NULL);
  g_autoptr(EVP_PKEY) key = make_key (ST_ALG_EC_P256);
  StSerial serial;
  random_serial (&serial);
  g_autoptr(X509) good = issue (&pki, profile, key, &serial);
  g_autoptr(GError) error = NULL;

  /* a byte changed in the signed DER (in the subject's CN) */
  {
    unsigned char *der = NULL;
    int len = i2d_X509 (good, &der);
    unsigned char *hit = memmem (der, (size_t) len, "0123abcdef", 10);
    g_assert_nonnull (hit);
    hit[0] = '9';
    const unsigned char *p = der;
    g_autoptr(X509) bad = d2i_X509 (NULL, &p, len);
    OPENSSL_free (der);
    g_assert_nonnull (bad);
    assert_check_fails (&pki, bad, profile, key, &serial, "signature must verify");
  }
  /* another serial, another key */
  StSerial other;
  random_serial (&other);
  assert_check_fails (&pki, good, profile, key, &other, "serial number");
  g_autoptr(EVP_PKEY) other_key = make_key (ST_ALG_EC_P256);
  assert_check_fails (&pki, good, profile, other_key, &serial, "public key must be the device's key");
  /* another device's identity */
  {
    const StSubjectInfo other_info = { "ffff", "EX-SENSOR-1", "EX-000042" };
    gboolean ok = st_issue_check (good, pki.ca, profile, key, &other_info, &serial, &error);
    g_assert_false (ok);
    g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
    g_assert_nonnull (strstr (error->message, "subject"));
    g_clear_error (&error);
  }
  /* a certificate made for other profile rules */
  g_autoptr(StProfile) longer = test_profile (ST_ALG_EC_P256, "validity-days = 3651", NULL);
  assert_check_fails (&pki, good, longer, key, &serial, "validity");
  g_autoptr(StProfile) forever = test_profile (ST_ALG_EC_P256, "validity = no-expiry", NULL);
  assert_check_fails (&pki, good, forever, key, &serial, "99991231235959Z");
  g_autoptr(StProfile) no_eku_text = NULL;
  {
    g_autoptr(GString) s = g_string_new (profile->text);
    g_string_replace (s, "extended-key-usage = clientAuth\n", "", 1);
    no_eku_text = st_profile_load_from_data (s->str, s->len, "t", &error);
    g_assert_no_error (error);
  }
  assert_check_fails (&pki, good, no_eku_text, key, &serial, "no extensions but those of the profile");
  {
    g_autoptr(GString) s = g_string_new (profile->text);
    g_string_replace (s, "key-usage = digitalSignature;keyAgreement", "key-usage = digitalSignature", 1);
    g_autoptr(StProfile) ku = st_profile_load_from_data (s->str, s->len, "t", &error);
    g_assert_no_error (error);
    assert_check_fails (&pki, good, ku, key, &serial, "keyUsage");
  }

  /* signed properly, but with CA:TRUE / an extra extension / a non-critical KU */
  {
    g_autoptr(X509) cert = build_unsigned (&pki, profile, key, &serial);
    g_autoptr(BASIC_CONSTRAINTS) bc = BASIC_CONSTRAINTS_new ();
    bc->ca = 0xff;
    g_assert_cmpint (X509_add1_ext_i2d (cert, NID_basic_constraints, bc, 1, X509V3_ADD_REPLACE), ==, 1);
    g_assert_true (st_issue_sign (cert, pki.ca_key, pki.ca, &error));
    g_autoptr(X509) re = reparse (cert);
    assert_check_fails (&pki, re, profile, key, &serial, "basicConstraints");
  }
  {
    g_autoptr(X509) cert = build_unsigned (&pki, profile, key, &serial);
    X509V3_CTX ctx;
    X509V3_set_ctx (&ctx, pki.ca, cert, NULL, NULL, 0);
    add_conf_ext (cert, &ctx, NID_netscape_comment, "hello");
    g_assert_true (st_issue_sign (cert, pki.ca_key, pki.ca, &error));
    g_autoptr(X509) re = reparse (cert);
    assert_check_fails (&pki, re, profile, key, &serial, "no extensions but those of the profile");
  }
  {
    g_autoptr(X509) cert = build_unsigned (&pki, profile, key, &serial);
    int idx = X509_get_ext_by_NID (cert, NID_key_usage, -1);
    g_assert_cmpint (X509_EXTENSION_set_critical (X509_get_ext (cert, idx), 0), ==, 1);
    g_assert_true (st_issue_sign (cert, pki.ca_key, pki.ca, &error));
    g_autoptr(X509) re = reparse (cert);
    assert_check_fails (&pki, re, profile, key, &serial, "keyUsage must be critical");
  }

  /* signed by a key that is not the CA's: st_issue_sign refuses */
  {
    g_autoptr(X509) cert = build_unsigned (&pki, profile, key, &serial);
    g_autoptr(EVP_PKEY) rogue = make_key (ST_ALG_EC_P256);
    g_assert_false (st_issue_sign (cert, rogue, pki.ca, &error));
    g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
    g_assert_nonnull (strstr (error->message, "X509_verify returned 0"));
    g_clear_error (&error);
    assert_check_fails (&pki, cert, profile, key, &serial, "signature must verify");
  }
  /* a CA key of another type than the CA certificate's (an EC key behind an
   * Ed25519 CA certificate): the signature algorithm, so the TBS, would change */
  {
    Pki ed_pki;
    pki_init (&ed_pki, ST_ALG_ED25519, -DAY, 15 * 365 * (gint64) DAY);
    g_autoptr(X509) cert = build_unsigned (&ed_pki, profile, key, &serial);
    g_autoptr(EVP_PKEY) rogue = make_key (ST_ALG_EC_P256);
    gboolean ok = st_issue_sign (cert, rogue, ed_pki.ca, &error);
    pki_clear (&ed_pki);
    g_assert_false (ok);
    g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
    g_assert_nonnull (strstr (error->message, "signing changed the to-be-signed certificate"));
    g_clear_error (&error);
  }
  /* the key to certify does not match the profile */
  {
    g_autoptr(EVP_PKEY) ed = make_key (ST_ALG_ED25519);
    g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
    g_autoptr(X509) cert = st_issue_build (pki.ca, profile, ed, &info, &serial, now, &error);
    g_assert_null (cert);
    g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
    g_clear_error (&error);
  }
  pki_clear (&pki);
}

/* ---- the clock and the CA's validity ---- */

static void
assert_build_fails (const Pki *pki, const StProfile *profile, EVP_PKEY *key, GDateTime *now,
                    const char *expect)
{
  StSerial serial;
  random_serial (&serial);
  g_autoptr(GError) error = NULL;
  g_autoptr(X509) cert = st_issue_build (pki->ca, profile, key, &info, &serial, now, &error);
  g_test_message ("build: %s", error != NULL ? error->message : "(built)");
  g_assert_null (cert);
  g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
  g_assert_nonnull (strstr (error->message, expect));
}

/* Security review, issue 14, item 11a: `batch create` took a profile whose
 * validity outlived the issuing CA, and every unit then failed. The check
 * that create and the line's start ask refuses it, naming the fix. */
static void
test_check_profile (void)
{
  Pki pki;
  pki_default (&pki); /* valid from now - 1 day to now + 15 years */
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  g_autoptr(GError) error = NULL;

  g_autoptr(StProfile) fits = test_profile (ST_ALG_EC_P256, "validity-days = 3650", NULL);
  g_assert_true (st_issue_check_profile (pki.ca, fits, now, &error));
  g_assert_no_error (error);
  g_autoptr(StProfile) forever = test_profile (ST_ALG_EC_P256, "validity = no-expiry", NULL);
  g_assert_true (st_issue_check_profile (pki.ca, forever, now, &error));
  g_assert_no_error (error);

  g_autoptr(StProfile) outlives = test_profile (ST_ALG_EC_P256, "validity-days = 6000", NULL);
  g_assert_false (st_issue_check_profile (pki.ca, outlives, now, &error));
  g_test_message ("%s", error->message);
  g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
  g_assert_nonnull (strstr (error->message, "validity-days=6000 issued now would be valid until"));
  g_assert_nonnull (strstr (error->message, "after the issuing CA's notAfter"));
  g_assert_nonnull (strstr (error->message, "set validity-days to at most 547"));
  g_assert_nonnull (strstr (error->message, "or renew the CA"));
  g_clear_error (&error);
  /* st_issue_build() says the same for each certificate */
  g_autoptr(EVP_PKEY) key = make_key (ST_ALG_EC_P256);
  assert_build_fails (&pki, outlives, key, now, "set validity-days to at most 547");

  /* a CA certificate whose key usage does not allow signing certificates */
  g_autoptr(X509) no_certsign = X509_dup (pki.ca);
  int at = X509_get_ext_by_NID (no_certsign, NID_key_usage, -1);
  g_assert_cmpint (at, >=, 0);
  X509_EXTENSION_free (X509_delete_ext (no_certsign, at));
  X509V3_CTX ctx;
  X509V3_set_ctx (&ctx, pki.root, no_certsign, NULL, NULL, 0);
  add_conf_ext (no_certsign, &ctx, NID_key_usage, "critical,digitalSignature");
  g_assert_cmpint (X509_sign (no_certsign, pki.root_key, md_for (pki.root_key)), >, 0);
  g_autoptr(X509) reparsed = reparse (no_certsign);
  g_assert_false (st_issue_check_profile (reparsed, fits, now, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "lacks keyCertSign"));
  g_clear_error (&error);

  /* a CA key the station does not sign with */
  g_autoptr(EVP_PKEY) rsa = EVP_PKEY_Q_keygen (NULL, NULL, "RSA", (size_t) 1024);
  g_assert_nonnull (rsa);
  g_autoptr(X509) rsa_ca = make_ca (rsa, "RSA CA", pki.root, pki.root_key, -DAY, 15 * 365 * (gint64) DAY);
  g_assert_false (st_issue_check_profile (rsa_ca, fits, now, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED);
  g_assert_nonnull (strstr (error->message, "the station cannot sign with it"));
  pki_clear (&pki);
}

static void
test_clock (void)
{
  Pki pki;
  pki_default (&pki); /* valid from now - 1 day to now + 15 years */
  g_autoptr(StProfile) profile = test_profile (ST_ALG_EC_P256, "validity-days = 3650", NULL);
  g_autoptr(EVP_PKEY) key = make_key (ST_ALG_EC_P256);
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();

  g_autoptr(GDateTime) before = g_date_time_add_days (now, -2);
  assert_build_fails (&pki, profile, key, before, "the station clock");
  g_autoptr(GDateTime) after = g_date_time_add_years (now, 16);
  assert_build_fails (&pki, profile, key, after, "is outside the issuing CA's validity");
  /* ten years from 14 years on would outlive the CA */
  g_autoptr(GDateTime) late = g_date_time_add_years (now, 14);
  assert_build_fails (&pki, profile, key, late, "set validity-days to at most");

  /* no-expiry is allowed under a CA with an end */
  g_autoptr(StProfile) forever = test_profile (ST_ALG_EC_P256, "validity = no-expiry", NULL);
  StSerial serial;
  random_serial (&serial);
  g_autoptr(GError) error = NULL;
  g_autoptr(X509) cert = st_issue_build (pki.ca, forever, key, &info, &serial, late, &error);
  g_assert_no_error (error);

  /* notBefore is clamped to the CA's notBefore */
  g_autoptr(GDateTime) early = g_date_time_add_minutes (now, -DAY / 60 + 10);
  g_autoptr(X509) clamped = st_issue_build (pki.ca, profile, key, &info, &serial, early, &error);
  g_assert_no_error (error);
  g_assert_cmpint (ASN1_TIME_compare (X509_get0_notBefore (clamped), X509_get0_notBefore (pki.ca)), ==, 0);
  g_assert_true (st_issue_sign (clamped, pki.ca_key, pki.ca, &error));
  g_assert_true (st_issue_check (clamped, pki.ca, profile, key, &info, &serial, &error));
  g_assert_no_error (error);
  pki_clear (&pki);
}

/* ---- proof of possession ---- */

static GBytes *
pop_sign (EVP_PKEY *key, const guint8 challenge[32])
{
  guint8 msg[48];
  memcpy (msg, "PROVISION-POP-V1", 16);
  memcpy (msg + 16, challenge, 32);
  g_autoptr(EVP_MD_CTX) ctx = EVP_MD_CTX_new ();
  g_assert_cmpint (EVP_DigestSignInit (ctx, NULL, md_for (key), NULL, key), ==, 1);
  size_t len = 0;
  g_assert_cmpint (EVP_DigestSign (ctx, NULL, &len, msg, sizeof msg), ==, 1);
  guint8 *sig = g_malloc (len);
  g_assert_cmpint (EVP_DigestSign (ctx, sig, &len, msg, sizeof msg), ==, 1);
  return g_bytes_new_take (sig, len);
}

static void
assert_pop_fails (X509 *cert, const guint8 challenge[32], GBytes *sig)
{
  g_autoptr(GError) error = NULL;
  gboolean ok = st_pop_verify (cert, challenge, sig, &error);
  g_test_message ("pop: %s", error != NULL ? error->message : "(verified)");
  g_assert_false (ok);
  g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
  g_assert_nonnull (strstr (error->message, "the device could not prove it holds the key of its certificate"));
}

static void
test_pop (void)
{
  Pki pki;
  pki_default (&pki);
  for (StAlg alg = ST_ALG_EC_P256; alg <= ST_ALG_ED25519; alg++)
    {
      g_autoptr(StProfile) profile = test_profile (alg, "validity-days = 30", NULL);
      g_autoptr(EVP_PKEY) key = make_key (alg);
      StSerial serial;
      random_serial (&serial);
      g_autoptr(X509) cert = issue (&pki, profile, key, &serial);
      guint8 challenge[32];
      g_assert_cmpint (RAND_bytes (challenge, sizeof challenge), ==, 1);

      g_autoptr(GBytes) sig = pop_sign (key, challenge);
      g_autoptr(GError) error = NULL;
      g_assert_true (st_pop_verify (cert, challenge, sig, &error));
      g_assert_no_error (error);

      /* another challenge */
      guint8 other[32];
      memcpy (other, challenge, 32);
      other[31] ^= 0x80;
      assert_pop_fails (cert, other, sig);
      /* a wrong key */
      g_autoptr(EVP_PKEY) wrong = make_key (alg);
      g_autoptr(GBytes) wrong_sig = pop_sign (wrong, challenge);
      assert_pop_fails (cert, challenge, wrong_sig);
      /* trailing garbage */
      const guint8 junk[] = { 0x00 };
      g_autoptr(GBytes) trailing = bytes_edit (sig, G_MAXSSIZE, junk, 1, 0);
      assert_pop_fails (cert, challenge, trailing);
      /* truncated, empty, flipped */
      g_autoptr(GBytes) truncated = bytes_edit (sig, G_MAXSSIZE, NULL, 0, 1);
      assert_pop_fails (cert, challenge, truncated);
      g_autoptr(GBytes) empty = g_bytes_new_static ("", 0);
      assert_pop_fails (cert, challenge, empty);
      g_autoptr(GBytes) flipped = bytes_edit (sig, -1, NULL, 0, 0);
      assert_pop_fails (cert, challenge, flipped);
      /* a signature over the challenge alone (no context string) */
      {
        g_autoptr(EVP_MD_CTX) ctx = EVP_MD_CTX_new ();
        g_assert_cmpint (EVP_DigestSignInit (ctx, NULL, md_for (key), NULL, key), ==, 1);
        size_t len = 0;
        g_assert_cmpint (EVP_DigestSign (ctx, NULL, &len, challenge, 32), ==, 1);
        guint8 *raw = g_malloc (len);
        g_assert_cmpint (EVP_DigestSign (ctx, raw, &len, challenge, 32), ==, 1);
        g_autoptr(GBytes) bare = g_bytes_new_take (raw, len);
        assert_pop_fails (cert, challenge, bare);
      }
      if (alg != ST_ALG_ED25519)
        {
          /* a non-canonical DER length (long form) for the same signature */
          gsize len = 0;
          const guint8 *d = g_bytes_get_data (sig, &len);
          g_assert_cmpuint (d[1], <, 0x80);
          GByteArray *a = g_byte_array_new ();
          const guint8 head[] = { 0x30, 0x81, d[1] };
          g_byte_array_append (a, head, 3);
          g_byte_array_append (a, d + 2, (guint) (len - 2));
          g_autoptr(GBytes) ber = g_byte_array_free_to_bytes (a);
          assert_pop_fails (cert, challenge, ber);
          /* the hash of the other curve: P-256 signed with SHA-384 */
          if (alg == ST_ALG_EC_P256)
            {
              guint8 msg[48];
              memcpy (msg, ST_POP_CONTEXT, 16);
              memcpy (msg + 16, challenge, 32);
              g_autoptr(EVP_MD_CTX) ctx = EVP_MD_CTX_new ();
              g_assert_cmpint (EVP_DigestSignInit (ctx, NULL, EVP_sha384 (), NULL, key), ==, 1);
              size_t slen = 0;
              g_assert_cmpint (EVP_DigestSign (ctx, NULL, &slen, msg, 48), ==, 1);
              guint8 *raw = g_malloc (slen);
              g_assert_cmpint (EVP_DigestSign (ctx, raw, &slen, msg, 48), ==, 1);
              g_autoptr(GBytes) s384 = g_bytes_new_take (raw, slen);
              assert_pop_fails (cert, challenge, s384);
            }
        }
    }
  pki_clear (&pki);
}

/* ---- chains ---- */

static void
test_chain (void)
{
  Pki pki;
  pki_default (&pki);
  g_autoptr(StProfile) profile = test_profile (ST_ALG_EC_P256, "validity-days = 30", NULL);
  g_autoptr(EVP_PKEY) key = make_key (ST_ALG_EC_P256);
  StSerial serial;
  random_serial (&serial);
  g_autoptr(X509) built = issue (&pki, profile, key, &serial);
  g_autoptr(GError) error = NULL;
  /* The chain is checked on the certificate as it leaves the station: its
   * DER (a built one caches no decoded key, see st_issue_build()). */
  unsigned char *leaf_der = NULL;
  int leaf_len = i2d_X509 (built, &leaf_der);
  g_assert_cmpint (leaf_len, >, 0);
  const unsigned char *p = leaf_der;
  g_autoptr(X509) leaf = d2i_X509 (NULL, &p, leaf_len);
  OPENSSL_free (leaf_der);
  g_assert_nonnull (leaf);

  g_autoptr(StX509Stack) chain = sk_X509_new_null ();
  X509_up_ref (pki.ca);
  sk_X509_push (chain, pki.ca);
  X509_up_ref (pki.root);
  sk_X509_push (chain, pki.root);
  g_assert_true (st_verify_chain (leaf, chain, pki.root, &error));
  g_assert_no_error (error);

  /* a foreign root */
  Pki other;
  pki_default (&other);
  g_assert_false (st_verify_chain (leaf, chain, other.root, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
  g_test_message ("foreign root: %s", error->message);
  g_assert_nonnull (strstr (error->message, "at depth 2"));
  g_clear_error (&error);
  {
    g_autoptr(StX509Stack) ca_only = sk_X509_new_null ();
    X509_up_ref (pki.ca);
    sk_X509_push (ca_only, pki.ca);
    g_assert_false (st_verify_chain (leaf, ca_only, other.root, &error));
    g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
    g_test_message ("foreign root: %s", error->message);
    g_assert_nonnull (strstr (error->message, X509_verify_cert_error_string (X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY)));
    g_assert_nonnull (strstr (error->message, "depth 1"));
    g_clear_error (&error);
  }
  /* no issuing CA: no partial chains */
  g_assert_false (st_verify_chain (leaf, NULL, pki.root, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
  g_clear_error (&error);
  /* the issuing CA as the anchor is not enough either */
  g_assert_false (st_verify_chain (leaf, NULL, pki.ca, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
  g_clear_error (&error);

  /* DER concatenation round trip */
  g_autoptr(GBytes) der = st_chain_der_concat (chain);
  g_assert_nonnull (der);
  unsigned char *ca_der = NULL;
  int ca_len = i2d_X509 (pki.ca, &ca_der);
  g_assert_cmpmem (g_bytes_get_data (der, NULL), ca_len, ca_der, ca_len); /* issuing CA first */
  OPENSSL_free (ca_der);
  g_autoptr(StX509Stack) split = st_chain_der_split (der, 4, &error);
  g_assert_no_error (error);
  g_assert_cmpint (sk_X509_num (split), ==, 2);
  g_assert_cmpint (X509_cmp (sk_X509_value (split, 0), pki.ca), ==, 0);
  g_assert_cmpint (X509_cmp (sk_X509_value (split, 1), pki.root), ==, 0);
  g_autoptr(GBytes) again = st_chain_der_concat (split);
  g_assert_true (g_bytes_equal (der, again));

  /* bounded count */
  g_assert_null (st_chain_der_split (der, 1, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  /* trailing garbage, truncation, garbage, empty */
  const guint8 junk[] = { 0x30 };
  g_autoptr(GBytes) trailing = bytes_edit (der, G_MAXSSIZE, junk, 1, 0);
  g_assert_null (st_chain_der_split (trailing, 4, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_autoptr(GBytes) truncated = bytes_edit (der, G_MAXSSIZE, NULL, 0, 3);
  g_assert_null (st_chain_der_split (truncated, 4, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_autoptr(GBytes) garbage = g_bytes_new_static ("hello, world", 12);
  g_assert_null (st_chain_der_split (garbage, 4, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_autoptr(GBytes) empty = g_bytes_new_static ("", 0);
  g_assert_null (st_chain_der_split (empty, 4, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);

  /* PEM files */
  g_autofree gchar *dir = st_test_tmpdir ("st-chain");
  g_autofree gchar *pem = g_build_filename (dir, "chain.pem", NULL);
  {
    g_autoptr(BIO) bio = BIO_new_file (pem, "w");
    BIO_puts (bio, "# the issuing CA then the root\n");
    PEM_write_bio_X509 (bio, pki.ca);
    PEM_write_bio_X509 (bio, pki.root);
  }
  g_autoptr(StX509Stack) loaded = st_chain_load_pem (pem, &error);
  g_assert_no_error (error);
  g_assert_cmpint (sk_X509_num (loaded), ==, 2);
  g_assert_cmpint (X509_cmp (sk_X509_value (loaded, 0), pki.ca), ==, 0);
  g_autofree gchar *bad = g_build_filename (dir, "bad.pem", NULL);
  g_assert_true (g_file_set_contents (bad, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", -1, NULL));
  g_assert_null (st_chain_load_pem (bad, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_assert_true (g_file_set_contents (bad, "no certificates here\n", -1, NULL));
  g_assert_null (st_chain_load_pem (bad, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_autofree gchar *missing = g_build_filename (dir, "missing.pem", NULL);
  g_assert_null (st_chain_load_pem (missing, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_unlink (pem);
  g_unlink (bad);
  g_rmdir (dir);

  pki_clear (&other);
  pki_clear (&pki);
}

/* ---- an independent X.509 stack: GnuTLS certtool ---- */

static gchar *
certtool_info (X509 *cert)
{
  g_autofree gchar *dir = st_test_tmpdir ("st-certtool");
  g_autofree gchar *path = g_build_filename (dir, "leaf.pem", NULL);
  {
    g_autoptr(BIO) bio = BIO_new_file (path, "w");
    g_assert_nonnull (bio);
    g_assert_cmpint (PEM_write_bio_X509 (bio, cert), ==, 1);
  }
  const char *argv[] = { "certtool", "-i", "--infile", path, NULL };
  g_autofree gchar *out = NULL;
  g_autofree gchar *err = NULL;
  gint status = 0;
  g_autoptr(GError) error = NULL;
  g_assert_true (g_spawn_sync (NULL, (gchar **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                               &out, &err, &status, &error));
  g_assert_no_error (error);
  g_test_message ("certtool:\n%s%s", out, err);
  g_assert_true (g_spawn_check_wait_status (status, &error));
  g_assert_no_error (error);
  g_unlink (path);
  g_rmdir (dir);
  return g_steal_pointer (&out);
}

static void
assert_contains (const char *haystack, const char *needle)
{
  if (strstr (haystack, needle) == NULL)
    g_test_message ("missing: %s", needle);
  g_assert_nonnull (strstr (haystack, needle));
}

static void
test_certtool (void)
{
  Pki pki;
  pki_default (&pki);
  for (int forever = 0; forever < 2; forever++)
    {
      g_autoptr(StProfile) profile = test_profile (ST_ALG_EC_P256,
                                                   forever ? "validity = no-expiry" : "validity-days = 3650", NULL);
      g_autoptr(EVP_PKEY) key = make_key (ST_ALG_EC_P256);
      StSerial serial;
      random_serial (&serial);
      g_autoptr(X509) cert = issue (&pki, profile, key, &serial);
      g_autofree gchar *out = certtool_info (cert);
      g_autofree gchar *hex = st_serial_to_hex (&serial);
      g_autofree gchar *serial_line = g_strdup_printf ("Serial Number (hex): 00%s", hex);
      assert_contains (out, "Version: 3");
      assert_contains (out, serial_line);
      assert_contains (out, "Issuer: CN=Test Issuing CA,O=Test PKI");
      assert_contains (out, "Subject: CN=0123abcdef,O=Example Devices Ltd,serialNumber=EX-000042");
      assert_contains (out, "Signature Algorithm: ECDSA-SHA256");
      assert_contains (out, "Basic Constraints (critical):");
      assert_contains (out, "Certificate Authority (CA): FALSE");
      assert_contains (out, "Key Usage (critical):");
      assert_contains (out, "Digital signature.");
      assert_contains (out, "Key agreement.");
      g_assert_null (strstr (out, "Certificate signing."));
      assert_contains (out, "Key Purpose (not critical):");
      assert_contains (out, "TLS WWW Client.");
      assert_contains (out, "Subject Alternative Name (not critical):");
      assert_contains (out, "URI: urn:example:device:0123abcdef");
      assert_contains (out, "Subject Key Identifier (not critical):");
      assert_contains (out, "Authority Key Identifier (not critical):");
      assert_contains (out, "Curve:\tSECP256R1");
      if (forever)
        assert_contains (out, "Not After: Fri Dec 31 23:59:59 UTC 9999");
    }
  pki_clear (&pki);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/issue/csr/good", test_csr_good);
  g_test_add_func ("/issue/csr/hostile", test_csr_hostile);
  g_test_add_func ("/issue/csr/weak-digest", test_csr_weak_digest);
  g_test_add_func ("/issue/csr/ignored-content", test_csr_ignored_content);
  g_test_add_func ("/issue/csr/every-byte", test_csr_every_byte);
  g_test_add_func ("/issue/csr/openssl", test_csr_openssl);
  g_test_add_func ("/issue/serial", test_serial);
  g_test_add_func ("/issue/compressed-key", test_compressed_key);
  g_test_add_func ("/issue/contents", test_contents);
  g_test_add_func ("/issue/check-tampered", test_check_tampered);
  g_test_add_func ("/issue/clock", test_clock);
  g_test_add_func ("/issue/check-profile", test_check_profile);
  g_test_add_func ("/issue/station-keygen", test_station_keygen);
  g_test_add_func ("/issue/pop", test_pop);
  g_test_add_func ("/issue/chain", test_chain);
  g_test_add_func ("/issue/certtool", test_certtool);
  return g_test_run ();
}
