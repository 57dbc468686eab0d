/* The SPAKE2+ verifier of a Matter setup passcode (st-matter-spake2p.h).
 * Written from the Matter Core Specification's text, section 3.10
 * (Password-Based Key Derivation Function) and 3.10's SPAKE2+ "Compute w0,
 * w1 and L". */
#include "st-matter-spake2p.h"

#include <glib/gi18n.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/rand.h>
#include <string.h>

#include "st-error.h"
#include "st-matter-codes.h"

/* w0s and w1s: each 40 bytes, 64 bits more than n, so w mod n is uniform
 * to within 2^-64. */
#define ST_SPAKE2P_WS_LEN 40
#define ST_SPAKE2P_W0_LEN 32
#define ST_SPAKE2P_L_LEN 65

gboolean
st_matter_spake2p_params_check (gsize salt_len, guint32 iterations, GError **error)
{
  if (salt_len < ST_MATTER_SALT_MIN || salt_len > ST_MATTER_SALT_MAX)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("The SPAKE2+ salt is %zu bytes long; Matter needs 16 to 32 bytes."), salt_len);
      return FALSE;
    }
  if (iterations < ST_MATTER_ITERATIONS_MIN || iterations > ST_MATTER_ITERATIONS_MAX)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("The SPAKE2+ iteration count is %u; Matter needs 1000 to 100000."), iterations);
      return FALSE;
    }
  return TRUE;
}

gboolean
st_matter_spake2p_salt_generate (guint8 *salt, gsize len, GError **error)
{
  if (!st_matter_spake2p_params_check (len, ST_MATTER_ITERATIONS_MIN, error))
    return FALSE;
  if (RAND_bytes (salt, (int) len) != 1)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL,
                            _("Cannot draw a SPAKE2+ salt from the random generator"));
      return FALSE;
    }
  return TRUE;
}

gboolean
st_matter_spake2p_verifier (guint32 passcode, const guint8 *salt, gsize salt_len,
                            guint32 iterations, guint8 verifier[ST_MATTER_VERIFIER_LEN],
                            GError **error)
{
  if (!st_matter_passcode_valid (passcode))
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                           _("The setup passcode is not allowed, so it has no verifier: it must be "
                             "1 to 99999998 and not one of 11111111 ... 88888888, 12345678, "
                             "87654321."));
      return FALSE;
    }
  if (!st_matter_spake2p_params_check (salt_len, iterations, error))
    return FALSE;

  guint8 pin[4] = { (guint8) passcode, (guint8) (passcode >> 8), (guint8) (passcode >> 16),
                    (guint8) (passcode >> 24) };
  guint8 ws[2 * ST_SPAKE2P_WS_LEN];
  gboolean ok = FALSE;
  EC_GROUP *group = NULL;
  EC_POINT *L = NULL;
  BN_CTX *ctx = NULL;
  BIGNUM *w0 = NULL, *w1 = NULL;
  guint8 out[ST_MATTER_VERIFIER_LEN];

  if (PKCS5_PBKDF2_HMAC ((const char *) pin, sizeof pin, salt, (int) salt_len, (int) iterations,
                         EVP_sha256 (), sizeof ws, ws) != 1)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL,
                            _("Cannot derive the SPAKE2+ verifier (PBKDF2)"));
      goto out;
    }
  group = EC_GROUP_new_by_curve_name (NID_X9_62_prime256v1);
  ctx = BN_CTX_secure_new ();
  w0 = BN_secure_new ();
  w1 = BN_secure_new ();
  L = group != NULL ? EC_POINT_new (group) : NULL;
  if (group == NULL || ctx == NULL || w0 == NULL || w1 == NULL || L == NULL)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL,
                            _("Cannot derive the SPAKE2+ verifier (out of memory)"));
      goto out;
    }
  const BIGNUM *n = EC_GROUP_get0_order (group);
  if (BN_bin2bn (ws, ST_SPAKE2P_WS_LEN, w0) == NULL
      || BN_bin2bn (ws + ST_SPAKE2P_WS_LEN, ST_SPAKE2P_WS_LEN, w1) == NULL
      || BN_nnmod (w0, w0, n, ctx) != 1 || BN_nnmod (w1, w1, n, ctx) != 1
      || BN_bn2binpad (w0, out, ST_SPAKE2P_W0_LEN) != ST_SPAKE2P_W0_LEN
      || EC_POINT_mul (group, L, w1, NULL, NULL, ctx) != 1)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL,
                            _("Cannot derive the SPAKE2+ verifier (w0, w1 and L over P-256)"));
      goto out;
    }
  /* w1 = 0 (probability 2^-256) gives the point at infinity, one byte:
   * refused, never a short verifier */
  if (EC_POINT_point2oct (group, L, POINT_CONVERSION_UNCOMPRESSED, out + ST_SPAKE2P_W0_LEN,
                          ST_SPAKE2P_L_LEN, ctx) != ST_SPAKE2P_L_LEN)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL,
                            _("Cannot derive the SPAKE2+ verifier: L is not a 65-byte point; draw "
                              "another salt"));
      goto out;
    }
  memcpy (verifier, out, sizeof out);
  ok = TRUE;

out:
  OPENSSL_cleanse (pin, sizeof pin);
  OPENSSL_cleanse (ws, sizeof ws);
  OPENSSL_cleanse (out, sizeof out);
  BN_clear_free (w0);
  BN_clear_free (w1);
  EC_POINT_clear_free (L);
  BN_CTX_free (ctx);
  EC_GROUP_free (group);
  return ok;
}

gboolean
st_matter_spake2p_verifier_matches (const guint8 *verifier, gsize len, guint32 passcode,
                                    const guint8 *salt, gsize salt_len, guint32 iterations,
                                    GError **error)
{
  guint8 want[ST_MATTER_VERIFIER_LEN];
  if (!st_matter_spake2p_verifier (passcode, salt, salt_len, iterations, want, error))
    return FALSE;
  gboolean same = len == sizeof want && CRYPTO_memcmp (verifier, want, sizeof want) == 0;
  OPENSSL_cleanse (want, sizeof want);
  return same;
}
