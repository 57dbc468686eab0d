/* libFuzzer: the credential blob parser (programmer/st-blob.c), which reads
 * what a passive device's flash holds.
 *
 * Beyond memory errors, it looks for logic errors:
 *   - st_blob_parse() fails with an ST_ERROR, NOT_FOUND exactly when the
 *     area does not start with the magic;
 *   - an accepted blob keeps every documented limit, st_blob_peek_length()
 *     agrees with it, and bytes after its total length change nothing;
 *   - round trip: st_blob_build (parse (x)) is as long as x's blob, parses to
 *     the same fields at every granularity, and building again gives the same
 *     bytes (the canonical form is stable);
 *   - the CA chain splits back into the same certificates;
 *   - version 2 exactly when both Matter entries are there, version 1 when
 *     neither is (the writer chooses the same version again).
 * A random mutation almost never keeps the CRC-32 right, so each input is
 * also parsed once more with its CRC recomputed: the fuzzer then reaches the
 * entry parser. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "st-fuzz.h"
#include "st-blob.h"
#include "st-error.h"
#include "st-frame.h"
#include "st-util.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
st_fuzz_check (gboolean ok)
{
  if (!ok)
    abort ();
}

static gboolean
st_fuzz_bytes_equal (GBytes *a, GBytes *b)
{
  if (a == NULL || b == NULL)
    return a == b;
  return g_bytes_equal (a, b);
}

static gboolean
st_fuzz_blob_equal (const StBlob *a, const StBlob *b)
{
  if (!st_fuzz_bytes_equal (a->uid, b->uid) || !st_fuzz_bytes_equal (a->key, b->key) ||
      !st_fuzz_bytes_equal (a->cert, b->cert) || g_strcmp0 (a->product_serial, b->product_serial) != 0 ||
      a->ca_certs->len != b->ca_certs->len || !st_fuzz_bytes_equal (a->matter_cd, b->matter_cd) ||
      !st_fuzz_bytes_equal (a->matter_data, b->matter_data) || a->version != b->version)
    return FALSE;
  for (guint i = 0; i < a->ca_certs->len; i++)
    if (!st_fuzz_bytes_equal (a->ca_certs->pdata[i], b->ca_certs->pdata[i]))
      return FALSE;
  return TRUE;
}

/* The documented limits of an accepted blob. */
static void
st_fuzz_check_limits (const StBlob *blob)
{
  st_fuzz_check (blob->uid != NULL && blob->key != NULL && blob->cert != NULL);
  gsize n = g_bytes_get_size (blob->uid);
  st_fuzz_check (n >= 1 && n <= ST_BLOB_UID_MAX);
  st_fuzz_check (g_bytes_get_size (blob->key) >= 1 && g_bytes_get_size (blob->key) <= G_MAXUINT16);
  st_fuzz_check (g_bytes_get_size (blob->cert) >= 1 && g_bytes_get_size (blob->cert) <= G_MAXUINT16);
  st_fuzz_check (blob->ca_certs != NULL && blob->ca_certs->len <= ST_BLOB_MAX_CA_CERTS);
  for (guint i = 0; i < blob->ca_certs->len; i++)
    st_fuzz_check (g_bytes_get_size (blob->ca_certs->pdata[i]) >= 1);
  if (blob->product_serial != NULL)
    {
      gsize len = strlen (blob->product_serial);
      st_fuzz_check (len >= 1 && len <= ST_BLOB_SERIAL_MAX);
      st_fuzz_check (g_utf8_validate (blob->product_serial, -1, NULL));
    }
  st_fuzz_check ((blob->matter_cd == NULL) == (blob->matter_data == NULL));
  st_fuzz_check (blob->version == (blob->matter_cd != NULL ? ST_BLOB_VERSION_MATTER : ST_BLOB_VERSION));
  if (blob->matter_cd != NULL)
    {
      st_fuzz_check (g_bytes_get_size (blob->matter_cd) >= 1
                     && g_bytes_get_size (blob->matter_cd) <= ST_BLOB_MATTER_CD_MAX);
      st_fuzz_check (g_bytes_get_size (blob->matter_data) >= 1
                     && g_bytes_get_size (blob->matter_data) <= ST_BLOB_MATTER_DATA_MAX);
    }
}

/* build (parse (x)) parses to the same fields, is as long as the blob it
 * came from, and is a fixed point of parse-then-build. */
/* @chain as slot 2 carries it: split into certificates and joined again, it
 * is the same bytes, each certificate a DER SEQUENCE, at most the limit;
 * else refused as INVALID_DATA. */
static void
st_fuzz_chain_round_trip (GBytes *chain)
{
  g_autoptr(StBlob) split = st_blob_new ();
  g_autoptr(GError) error = NULL;
  if (st_blob_set_chain (split, chain, &error))
    {
      g_autoptr(GBytes) joined = st_blob_dup_chain (split);
      st_fuzz_check (g_bytes_equal (chain, joined));
      for (guint i = 0; i < split->ca_certs->len; i++)
        {
          const guint8 *c = g_bytes_get_data (split->ca_certs->pdata[i], NULL);
          st_fuzz_check (g_bytes_get_size (split->ca_certs->pdata[i]) >= 2 && c[0] == 0x30);
        }
    }
  else
    st_fuzz_check (g_error_matches (error, ST_ERROR, ST_ERROR_INVALID_DATA));
  st_fuzz_check (split->ca_certs->len <= ST_BLOB_MAX_CA_CERTS);
}

static void
st_fuzz_round_trip (const StBlob *blob, gsize total)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) built = st_blob_build (blob, 1, ST_BLOB_MAX_SIZE, &error);
  st_fuzz_check (built != NULL);
  gsize len = 0;
  const guint8 *d = g_bytes_get_data (built, &len);
  st_fuzz_check (len == total);
  st_fuzz_check (st_blob_peek_length (d, len) == total);
  g_autoptr(StBlob) again = st_blob_parse (d, len, &error);
  st_fuzz_check (again != NULL);
  st_fuzz_check (st_fuzz_blob_equal (blob, again));
  g_autoptr(GBytes) rebuilt = st_blob_build (again, 1, ST_BLOB_MAX_SIZE, &error);
  st_fuzz_check (rebuilt != NULL && g_bytes_equal (built, rebuilt));

  /* Padded to a granularity chosen by the blob: still the same blob. */
  gsize granularity = (gsize) 1 << (total % 9);
  g_autoptr(GBytes) padded = st_blob_build (blob, granularity, ST_BLOB_MAX_SIZE, &error);
  st_fuzz_check (padded != NULL);
  gsize plen = 0;
  const guint8 *p = g_bytes_get_data (padded, &plen);
  st_fuzz_check (plen >= total && plen % granularity == 0 && plen - total < granularity);
  st_fuzz_check (memcmp (p, d, total) == 0);
  for (gsize i = total; i < plen; i++)
    st_fuzz_check (p[i] == 0xff);
  g_autoptr(StBlob) from_padded = st_blob_parse (p, plen, &error);
  st_fuzz_check (from_padded != NULL && st_fuzz_blob_equal (blob, from_padded));

  /* An area one byte too small for the padded blob is refused. */
  if (plen > 16)
    {
      g_autoptr(GError) small_error = NULL;
      g_autoptr(GBytes) small = st_blob_build (blob, granularity, plen - 1, &small_error);
      st_fuzz_check (small == NULL && g_error_matches (small_error, ST_ERROR, ST_ERROR_INVALID_DATA));
    }

  /* The chain as slot 2 carries it splits into the same certificates
   * whenever each is one DER SEQUENCE. */
  g_autoptr(GBytes) chain = st_blob_dup_chain (blob);
  st_fuzz_chain_round_trip (chain);
}

static void
st_fuzz_parse (const guint8 *data, gsize size)
{
  g_autoptr(GError) error = NULL;
  gsize peek = st_blob_peek_length (data, size);
  st_fuzz_check (peek == 0 || (peek >= ST_BLOB_HEADER_SIZE + ST_BLOB_CRC_SIZE && peek <= ST_BLOB_MAX_SIZE));
  g_autoptr(StBlob) blob = st_blob_parse (data, size, &error);
  gboolean magic = size >= 4 && memcmp (data, ST_BLOB_MAGIC, 4) == 0;
  if (blob == NULL)
    {
      st_fuzz_check (error != NULL && error->domain == ST_ERROR && error->message != NULL);
      st_fuzz_check ((error->code == ST_ERROR_NOT_FOUND) == !magic);
      st_fuzz_check (error->code == ST_ERROR_NOT_FOUND || error->code == ST_ERROR_INVALID_DATA);
      return;
    }
  st_fuzz_check (error == NULL && magic);
  /* The header's length is the blob's, and bytes after it are not looked at. */
  st_fuzz_check (peek >= ST_BLOB_HEADER_SIZE + ST_BLOB_CRC_SIZE && peek <= size);
  st_fuzz_check_limits (blob);
  if (peek < size)
    {
      g_autoptr(StBlob) cut = st_blob_parse (data, peek, &error);
      st_fuzz_check (cut != NULL && st_fuzz_blob_equal (blob, cut));
    }
  /* One byte fewer is refused. */
  {
    g_autoptr(GError) short_error = NULL;
    g_autoptr(StBlob) too_short = st_blob_parse (data, peek - 1, &short_error);
    st_fuzz_check (too_short == NULL && g_error_matches (short_error, ST_ERROR, ST_ERROR_INVALID_DATA));
  }
  st_fuzz_round_trip (blob, peek);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  st_fuzz_silence_logs ();
  st_fuzz_parse (data, size);

  /* Once more with the CRC-32 made right, so that mutations get past it. */
  gsize total = st_blob_peek_length (data, size);
  if (total != 0 && total <= size)
    {
      guint8 *copy = g_memdup2 (data, size);
      st_fuzz_fix_blob_crc (copy, total);
      st_fuzz_parse (copy, size);
      g_free (copy);
    }

  /* Any bytes as a slot-2 chain. */
  g_autoptr(GBytes) chain = g_bytes_new (data, size);
  st_fuzz_chain_round_trip (chain);
  return 0;
}
