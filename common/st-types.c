#include "st-types.h"

#include <string.h>

const char *
st_alg_to_string (StAlg alg)
{
  switch (alg)
    {
    case ST_ALG_EC_P256: return "ec-p256";
    case ST_ALG_EC_P384: return "ec-p384";
    case ST_ALG_ED25519: return "ed25519";
    case ST_ALG_NONE: break;
    }
  return NULL;
}

const char *
st_alg_describe (StAlg alg)
{
  switch (alg)
    {
    case ST_ALG_EC_P256: return "ec-p256 (EC P-256, prime256v1)";
    case ST_ALG_EC_P384: return "ec-p384 (EC P-384, secp384r1)";
    case ST_ALG_ED25519: return "ed25519";
    case ST_ALG_NONE: break;
    }
  return "none";
}

StAlg
st_alg_from_string (const char *name)
{
  if (name == NULL)
    return ST_ALG_NONE;
  for (StAlg a = ST_ALG_EC_P256; a <= ST_ALG_ED25519; a++)
    if (strcmp (name, st_alg_to_string (a)) == 0)
      return a;
  return ST_ALG_NONE;
}

guint8
st_alg_to_mask_bit (StAlg alg)
{
  if (alg < ST_ALG_EC_P256 || alg > ST_ALG_ED25519)
    return 0;
  return (guint8) (1u << (alg - 1));
}
