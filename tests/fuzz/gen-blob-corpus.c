/* Writes the seed corpus of fuzz-blob into a directory: credential blobs
 * made with st_blob_build for each key algorithm (P-256, P-384, Ed25519),
 * with and without CA chain and product serial, padded, and truncated or
 * edited ones (with their CRC-32 fixed where the edit is past the CRC).
 * Usage: gen-blob-corpus DIR  (tests/fuzz/corpus/blob holds its output). */
#include <glib/gstdio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <string.h>

#include "st-blob.h"
#include "st-frame.h"
#include "st-util.h"
#include "st-fuzz.h"

static GBytes *
st_gen_cert (EVP_PKEY *key, const char *cn)
{
  X509 *x = X509_new ();
  X509_NAME *name = X509_NAME_new ();
  X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_UTF8, (const unsigned char *) cn, -1, -1, 0);
  X509_set_version (x, 2);
  ASN1_INTEGER_set (X509_get_serialNumber (x), 1);
  X509_set_subject_name (x, name);
  X509_set_issuer_name (x, name);
  X509_gmtime_adj (X509_getm_notBefore (x), 0);
  X509_gmtime_adj (X509_getm_notAfter (x), 3600);
  X509_set_pubkey (x, key);
  gboolean ed = EVP_PKEY_get_id (key) == EVP_PKEY_ED25519;
  X509_sign (x, key, ed ? NULL : EVP_sha256 ());
  guint8 *der = NULL;
  int len = i2d_X509 (x, &der);
  GBytes *out = len > 0 ? g_bytes_new (der, (gsize) len) : NULL;
  OPENSSL_free (der);
  X509_NAME_free (name);
  X509_free (x);
  return out;
}

static EVP_PKEY *
st_gen_key (const char *alg)
{
  if (g_strcmp0 (alg, "ed25519") == 0)
    return EVP_PKEY_Q_keygen (NULL, NULL, "ED25519");
  return EVP_PKEY_Q_keygen (NULL, NULL, "EC", g_strcmp0 (alg, "p384") == 0 ? "P-384" : "P-256");
}

static void
st_gen_write (const char *dir, const char *name, const guint8 *data, gsize len)
{
  g_autofree gchar *path = g_build_filename (dir, name, NULL);
  g_autoptr(GError) error = NULL;
  if (!g_file_set_contents (path, (const char *) data, (gssize) len, &error))
    g_printerr ("%s\n", error->message);
}

int
main (int argc, char **argv)
{
  if (argc != 2)
    {
      g_printerr ("usage: %s DIR\n", argv[0]);
      return 2;
    }
  const char *dir = argv[1];
  g_mkdir_with_parents (dir, 0755);
  static const char *algs[] = { "p256", "p384", "ed25519" };
  EVP_PKEY *ca_key = st_gen_key ("p256");
  g_autoptr(GBytes) ca1 = st_gen_cert (ca_key, "Fuzz Issuing CA");
  g_autoptr(GBytes) ca2 = st_gen_cert (ca_key, "Fuzz Root CA");
  EVP_PKEY_free (ca_key);
  for (gsize a = 0; a < G_N_ELEMENTS (algs); a++)
    for (guint variant = 0; variant < 3; variant++)
      {
        EVP_PKEY *key = st_gen_key (algs[a]);
        guint8 *pkcs8 = NULL;
        int plen = i2d_PrivateKey (key, &pkcs8);
        g_autoptr(StBlob) blob = st_blob_new ();
        static const guint8 uid[12] = { 0x30, 0x00, 0x21, 0x00, 0x0b, 0x51, 0x33, 0x4b, 0x39, 0x36, 0x30, 0x20 };
        blob->uid = g_bytes_new (uid, sizeof uid);
        blob->key = g_bytes_new (pkcs8, (gsize) plen);
        OPENSSL_free (pkcs8);
        blob->cert = st_gen_cert (key, "Fuzz Device");
        EVP_PKEY_free (key);
        if (variant == 1)
          {
            g_ptr_array_add (blob->ca_certs, g_bytes_ref (ca1));
            g_ptr_array_add (blob->ca_certs, g_bytes_ref (ca2));
            blob->product_serial = g_strdup ("SN-2026-000042");
          }
        if (variant == 2)
          {
            /* Version 2: a Certification Declaration stand-in (a DER
             * SEQUENCE) and a commissioning data record. */
            guint8 cd[300] = { 0x30, 0x82, 0x01, 0x28 };
            for (gsize i = 4; i < sizeof cd; i++)
              cd[i] = (guint8) (i * 11);
            blob->matter_cd = g_bytes_new (cd, sizeof cd);
            guint8 rec[1 + 4 + 4 + 4 + 6 + 18 + 99] = {
              0x01, 0x01, 0x02, 0xF1, 0xFF, 0x02, 0x02, 0x00, 0x80, 0x03, 0x02, 0x00, 0x0F,
              0x04, 0x04, 0xE8, 0x03, 0x00, 0x00, 0x05, 0x10 };
            for (gsize i = 21; i < 37; i++)
              rec[i] = (guint8) i;
            rec[37] = 0x06;
            rec[38] = 97;
            for (gsize i = 39; i < sizeof rec; i++)
              rec[i] = (guint8) (i * 5);
            rec[39 + 32] = 0x04;
            blob->matter_data = g_bytes_new (rec, sizeof rec);
          }
        const char *what = variant == 2 ? "matter" : variant == 1 ? "chain-serial" : "bare";
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) enc = st_blob_build (blob, 1, ST_BLOB_MAX_SIZE, &error);
        if (enc == NULL)
          {
            g_printerr ("%s\n", error->message);
            return 1;
          }
        gsize len = 0;
        const guint8 *d = g_bytes_get_data (enc, &len);
        g_autofree gchar *name = g_strdup_printf ("%s-%s", algs[a], what);
        st_gen_write (dir, name, d, len);
        if (variant == 2 && a == 0)
          {
            /* A version 2 blob labelled version 1, and the commissioning
             * data entry made longer than a record, CRCs made right. */
            g_autofree guint8 *x = g_memdup2 (d, len);
            x[4] = 1;
            st_fuzz_fix_blob_crc (x, len);
            st_gen_write (dir, "edit-matter-as-version-1", x, len);
            g_autofree guint8 *y = g_memdup2 (d, len);
            y[len - 4 - 136 - 4] = 0x06;   /* the record's type byte: a second CD */
            st_fuzz_fix_blob_crc (y, len);
            st_gen_write (dir, "edit-matter-two-cds", y, len);
          }
        if (variant != 1)
          continue;

        /* The edited and truncated relatives of the full blob. */
        g_autoptr(GBytes) padded = st_blob_build (blob, 256, ST_BLOB_MAX_SIZE, &error);
        gsize plen2 = 0;
        const guint8 *pd = g_bytes_get_data (padded, &plen2);
        g_autofree gchar *n_pad = g_strdup_printf ("%s-padded256", algs[a]);
        st_gen_write (dir, n_pad, pd, plen2);
        g_autofree gchar *n_half = g_strdup_printf ("%s-truncated-half", algs[a]);
        st_gen_write (dir, n_half, d, len / 2);
        g_autofree gchar *n_nocrc = g_strdup_printf ("%s-truncated-crc", algs[a]);
        st_gen_write (dir, n_nocrc, d, len - 4);
        g_autofree guint8 *e = g_memdup2 (d, len);
        e[len - 1] ^= 0x01;
        g_autofree gchar *n_crc = g_strdup_printf ("%s-bad-crc", algs[a]);
        st_gen_write (dir, n_crc, e, len);
        if (a != 0)
          continue;
        /* Field edits, with the CRC made right so that only the edit is wrong. */
        static const struct { const char *name; gsize off; guint8 value; } edits[] = {
          { "count-high", 6, 7 },          /* 6 entries, the count says 7 */
          { "count-low", 6, 5 },
          { "version-2", 4, 2 },
          { "first-type-unknown", 12, 0x09 },
          { "first-type-key", 12, 0x02 },  /* a repeated private key, no uid */
          { "first-reserved", 13, 0x01 },
          { "first-length-long", 15, 0x40 },
          { "total-short", 8, 40 },
        };
        for (gsize i = 0; i < G_N_ELEMENTS (edits); i++)
          {
            g_autofree guint8 *x = g_memdup2 (d, len);
            x[edits[i].off] = edits[i].value;
            gsize total = st_blob_peek_length (x, len);
            if (total != 0 && total <= len)
              st_fuzz_fix_blob_crc (x, total);
            g_autofree gchar *n = g_strdup_printf ("edit-%s", edits[i].name);
            st_gen_write (dir, n, x, len);
          }
        /* Trailing bytes after the blob (a whole credential area). */
        g_autofree guint8 *area = g_malloc (len + 64);
        memcpy (area, d, len);
        memset (area + len, 0x5a, 64);
        st_gen_write (dir, "area-trailing-bytes", area, len + 64);
      }
  guint8 erased[64];
  memset (erased, 0xff, sizeof erased);
  st_gen_write (dir, "erased-area", erased, sizeof erased);
  return 0;
}
