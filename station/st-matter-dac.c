/* The Matter device attestation rules (st-matter-dac.h). */
#include "st-matter-dac.h"

#include <string.h>

#include <openssl/asn1.h>
#include <openssl/ec.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "st-error.h"
#include "st-ossl.h"

/* Where the Matter Core Specification states each rule. */
#define SPEC_IDS "Matter Core spec 6.1.1 and 6.2.2.2, VID and PID encoding"
#define SPEC_DAC "Matter Core spec 6.2.2.3, DAC"
#define SPEC_PAI "Matter Core spec 6.2.2.4, PAI"
#define SPEC_PAA "Matter Core spec 6.2.2.5, PAA"

/* st_error_verify_failed() takes a format; the rule text is made first so
 * that it can carry its own arguments, then freed. */
static gboolean
fail (GError **error, const char *what, const char *spec, const char *fmt, ...) G_GNUC_PRINTF (4, 5);

static gboolean
fail (GError **error, const char *what, const char *spec, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree gchar *rule = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  return st_error_verify_failed (error, "%s", "%s breaks the Matter rule (%s): %s", what, spec, rule);
}

static const char *
upper_hex4 (const ASN1_STRING *s, guint16 *value)
{
  if (ASN1_STRING_length (s) != 4)
    return "exactly 4 characters";
  const unsigned char *p = ASN1_STRING_get0_data (s);
  guint v = 0;
  for (int i = 0; i < 4; i++)
    {
      unsigned char c = p[i];
      if (c >= '0' && c <= '9')
        v = v * 16 + (guint) (c - '0');
      else if (c >= 'A' && c <= 'F')
        v = v * 16 + (guint) (c - 'A' + 10);
      else
        return "upper-case hex digits only (0-9, A-F)";
    }
  *value = (guint16) v;
  return NULL;
}

gboolean
st_matter_name_ids (const X509_NAME *name, const char *what, StMatterIds *ids, GError **error)
{
  g_return_val_if_fail (what != NULL && ids != NULL, FALSE);
  memset (ids, 0, sizeof *ids);
  if (name == NULL)
    return fail (error, what, SPEC_IDS, "the certificate must have a subject");

  int n = X509_NAME_entry_count (name);
  for (int i = 0; i < n; i++)
    {
      const X509_NAME_ENTRY *e = X509_NAME_get_entry (name, i);
      const ASN1_OBJECT *obj = X509_NAME_ENTRY_get_object (e);
      /* the dotted form; a longer one (cut by OBJ_obj2txt) is neither */
      char oid[48];
      int oid_len = OBJ_obj2txt (oid, sizeof oid, obj, 1);
      gboolean known = oid_len > 0 && (gsize) oid_len < sizeof oid;
      gboolean is_vid = known && strcmp (oid, ST_MATTER_OID_VID) == 0;
      gboolean is_pid = known && strcmp (oid, ST_MATTER_OID_PID) == 0;
      if (!is_vid && !is_pid)
        continue;
      const char *field = is_vid ? "VID (" ST_MATTER_OID_VID ")" : "PID (" ST_MATTER_OID_PID ")";

      /* alone in its RDN: no other entry of the same SET */
      int set = X509_NAME_ENTRY_set (e);
      for (int j = 0; j < n; j++)
        if (j != i && X509_NAME_ENTRY_set (X509_NAME_get_entry (name, j)) == set)
          return fail (error, what, SPEC_IDS,
                       "the %s attribute must be alone in its own RDN, not in a multi-valued one", field);

      if ((is_vid && ids->has_vid) || (is_pid && ids->has_pid))
        return fail (error, what, SPEC_IDS, "the %s attribute must appear at most once", field);

      const ASN1_STRING *value = X509_NAME_ENTRY_get_data (e);
      if (ASN1_STRING_type (value) != V_ASN1_UTF8STRING)
        return fail (error, what, SPEC_IDS, "the %s attribute must be a UTF8String (it is %s)", field,
                     ASN1_tag2str (ASN1_STRING_type (value)));
      guint16 v = 0;
      const char *why = upper_hex4 (value, &v);
      if (why != NULL)
        return fail (error, what, SPEC_IDS, "the %s attribute must be exactly 4 upper-case hex digits: %s",
                     field, why);
      if (is_vid)
        {
          ids->has_vid = TRUE;
          ids->vid = v;
        }
      else
        {
          ids->has_pid = TRUE;
          ids->pid = v;
        }
    }
  return TRUE;
}

gboolean
st_matter_name_add_ids (X509_NAME *name, guint16 vid, guint16 pid, GError **error)
{
  g_return_val_if_fail (name != NULL, FALSE);
  const struct { const char *oid; guint16 value; } ids[] = {
    { ST_MATTER_OID_VID, vid },
    { ST_MATTER_OID_PID, pid },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (ids); i++)
    {
      char text[5];
      g_snprintf (text, sizeof text, "%04X", (guint) ids[i].value);
      ASN1_OBJECT *obj = OBJ_txt2obj (ids[i].oid, 1);
      /* loc -1: at the end; set 0: a new RDN */
      int ok = obj != NULL
               && X509_NAME_add_entry_by_OBJ (name, obj, V_ASN1_UTF8STRING, (const unsigned char *) text, 4, -1, 0) == 1;
      ASN1_OBJECT_free (obj);
      if (!ok)
        {
          st_error_set_openssl (error, ST_ERROR_INTERNAL, "adding the Matter VID and PID to the subject");
          return FALSE;
        }
    }
  return TRUE;
}

/* ---- pieces shared by the three profiles ---- */

/* The extension @nid: present once (-1 absent, -2 repeated), decoded. */
static void *
get_ext (X509 *cert, int nid, int *crit)
{
  return X509_get_ext_d2i (cert, nid, crit, NULL);
}

static gboolean
check_ecdsa_sha256 (X509 *cert, const char *what, const char *spec, GError **error)
{
  const ASN1_BIT_STRING *sig = NULL;
  const X509_ALGOR *outer = NULL;
  X509_get0_signature (&sig, &outer, cert);
  const X509_ALGOR *inner = X509_get0_tbs_sigalg (cert);
  const X509_ALGOR *algs[2] = { outer, inner };
  for (int i = 0; i < 2; i++)
    {
      const ASN1_OBJECT *obj = NULL;
      int ptype = 0;
      const void *pval = NULL;
      if (algs[i] == NULL)
        return fail (error, what, spec, "the signature algorithm must be ecdsa-with-SHA256");
      X509_ALGOR_get0 (&obj, &ptype, &pval, algs[i]);
      if (OBJ_obj2nid (obj) != NID_ecdsa_with_SHA256 || ptype != V_ASN1_UNDEF)
        return fail (error, what, spec,
                     "the signature algorithm must be ecdsa-with-SHA256 without parameters, in both places (it is %s)",
                     OBJ_nid2sn (OBJ_obj2nid (obj)));
    }
  return TRUE;
}

/* A P-256 key: id-ecPublicKey with the named curve prime256v1, an
 * uncompressed point of 65 bytes that decodes onto the curve. Read from the
 * SubjectPublicKeyInfo itself (a certificate st_issue_build() made caches
 * no decoded key). */
static gboolean
check_p256_key (X509 *cert, const char *what, const char *spec, GError **error)
{
  X509_PUBKEY *xpk = X509_get_X509_PUBKEY (cert);
  ASN1_OBJECT *alg = NULL;
  const unsigned char *pk = NULL;
  int pk_len = 0;
  X509_ALGOR *params = NULL;
  if (xpk == NULL || X509_PUBKEY_get0_param (&alg, &pk, &pk_len, &params, xpk) != 1)
    return fail (error, what, spec, "the public key must be readable");
  if (OBJ_obj2nid (alg) != NID_X9_62_id_ecPublicKey || params == NULL)
    return fail (error, what, spec, "the public key must be an EC key on P-256 (it is %s)",
                 OBJ_nid2sn (OBJ_obj2nid (alg)));
  const ASN1_OBJECT *curve = NULL;
  int ptype = 0;
  const void *pval = NULL;
  X509_ALGOR_get0 (&curve, &ptype, &pval, params);
  if (ptype != V_ASN1_OBJECT || pval == NULL
      || OBJ_obj2nid ((const ASN1_OBJECT *) pval) != NID_X9_62_prime256v1)
    return fail (error, what, spec, "the public key must be on the named curve P-256 (prime256v1)%s",
                 ptype == V_ASN1_OBJECT && pval != NULL ? "" : "; explicit curve parameters are refused");
  if (pk_len != 65 || pk == NULL || pk[0] != 0x04)
    return fail (error, what, spec, "the P-256 public key must be an uncompressed point of 65 bytes (it has %d)",
                 pk_len);
  unsigned char *der = NULL;
  int der_len = i2d_X509_PUBKEY (xpk, &der);
  const unsigned char *p = der;
  g_autoptr(EVP_PKEY) key = der_len > 0 ? d2i_PUBKEY (NULL, &p, der_len) : NULL;
  OPENSSL_free (der);
  if (key == NULL)
    return fail (error, what, spec, "the P-256 public key must be a point on the curve");
  return TRUE;
}

/* basicConstraints critical; @ca as given; @pathlen -1: none allowed
 * (CA:FALSE), -2: any, else exactly that. */
static gboolean
check_basic_constraints (X509 *cert, gboolean ca, int pathlen, const char *what, const char *spec,
                         GError **error)
{
  int crit = -1;
  BASIC_CONSTRAINTS *bc = get_ext (cert, NID_basic_constraints, &crit);
  gboolean ok = bc != NULL && crit == 1 && (!!bc->ca) == (!!ca);
  if (ok && pathlen == -1)
    ok = bc->pathlen == NULL;
  else if (ok && pathlen >= 0)
    {
      long v = bc->pathlen != NULL ? ASN1_INTEGER_get (bc->pathlen) : -1;
      ok = v == pathlen;
    }
  BASIC_CONSTRAINTS_free (bc);
  if (ok)
    return TRUE;
  if (!ca)
    return fail (error, what, spec, "basicConstraints must be present, critical, CA:FALSE");
  if (pathlen >= 0)
    return fail (error, what, spec, "basicConstraints must be present, critical, CA:TRUE with pathLenConstraint %d",
                 pathlen);
  return fail (error, what, spec, "basicConstraints must be present, critical, CA:TRUE");
}

/* keyUsage critical; each bit of @required set; when @exact, no other bit. */
static gboolean
check_key_usage (X509 *cert, const int *required, gsize n_required, gboolean exact,
                 const char *rule, const char *what, const char *spec, GError **error)
{
  int crit = -1;
  ASN1_BIT_STRING *ku = get_ext (cert, NID_key_usage, &crit);
  gboolean ok = ku != NULL && crit == 1;
  for (gsize i = 0; ok && i < n_required; i++)
    ok = ASN1_BIT_STRING_get_bit (ku, required[i]) == 1;
  if (ok && exact)
    {
      /* any bit beyond the required ones, over the whole string */
      int bits = ASN1_STRING_length (ku) * 8;
      for (int b = 0; ok && b < bits; b++)
        {
          gboolean wanted = FALSE;
          for (gsize i = 0; i < n_required; i++)
            wanted = wanted || required[i] == b;
          if (!wanted && ASN1_BIT_STRING_get_bit (ku, b) == 1)
            ok = FALSE;
        }
    }
  ASN1_BIT_STRING_free (ku);
  if (ok)
    return TRUE;
  return fail (error, what, spec, "keyUsage must be present and critical with %s", rule);
}

/* The subjectKeyIdentifier: present, not repeated, 20 bytes; copied out. */
static gboolean
check_ski (X509 *cert, guint8 out[20], const char *what, const char *spec, GError **error)
{
  int crit = -1;
  ASN1_OCTET_STRING *ski = get_ext (cert, NID_subject_key_identifier, &crit);
  gboolean ok = ski != NULL && crit == 0 && ASN1_STRING_length (ski) == 20;
  if (ok)
    memcpy (out, ASN1_STRING_get0_data (ski), 20);
  ASN1_OCTET_STRING_free (ski);
  if (!ok)
    return fail (error, what, spec, "a non-critical subjectKeyIdentifier of 20 bytes must be present");
  return TRUE;
}

/* ---- the PAA ---- */

gboolean
st_matter_paa_check (X509 *paa, GError **error)
{
  g_return_val_if_fail (paa != NULL, FALSE);
  const char *what = "the PAA";

  if (X509_NAME_cmp (X509_get_issuer_name (paa), X509_get_subject_name (paa)) != 0)
    return fail (error, what, SPEC_PAA, "it must be self-signed (its issuer is not its subject)");
  EVP_PKEY *key = X509_get0_pubkey (paa);
  if (key == NULL || X509_verify (paa, key) != 1)
    return fail (error, what, SPEC_PAA, "it must be self-signed (its signature does not verify with its own key)");
  if (!check_p256_key (paa, what, SPEC_PAA, error) || !check_ecdsa_sha256 (paa, what, SPEC_PAA, error))
    return FALSE;
  if (!check_basic_constraints (paa, TRUE, -2, what, SPEC_PAA, error))
    return FALSE;
  static const int ca_bits[] = { 5 /* keyCertSign */, 6 /* cRLSign */ };
  if (!check_key_usage (paa, ca_bits, G_N_ELEMENTS (ca_bits), FALSE, "keyCertSign and cRLSign", what,
                        SPEC_PAA, error))
    return FALSE;

  StMatterIds ids;
  if (!st_matter_name_ids (X509_get_subject_name (paa), what, &ids, error))
    return FALSE;
  if (ids.has_pid)
    return fail (error, what, SPEC_PAA,
                 "its subject must not carry a PID (" ST_MATTER_OID_PID "); it has %04X", ids.pid);
  return TRUE;
}

/* ---- the PAI ---- */

gboolean
st_matter_pai_check (X509 *pai, StMatterIds *ids_out, GError **error)
{
  g_return_val_if_fail (pai != NULL, FALSE);
  const char *what = "the PAI";

  if (!check_basic_constraints (pai, TRUE, 0, what, SPEC_PAI, error))
    return FALSE;
  static const int ca_bits[] = { 5 /* keyCertSign */, 6 /* cRLSign */ };
  if (!check_key_usage (pai, ca_bits, G_N_ELEMENTS (ca_bits), FALSE, "keyCertSign and cRLSign", what,
                        SPEC_PAI, error))
    return FALSE;
  guint8 ski[20];
  if (!check_ski (pai, ski, what, SPEC_PAI, error))
    return FALSE;
  if (!check_p256_key (pai, what, SPEC_PAI, error) || !check_ecdsa_sha256 (pai, what, SPEC_PAI, error))
    return FALSE;

  StMatterIds ids;
  if (!st_matter_name_ids (X509_get_subject_name (pai), what, &ids, error))
    return FALSE;
  if (!ids.has_vid)
    return fail (error, what, SPEC_PAI, "its subject must carry a VID (" ST_MATTER_OID_VID ")");
  if (ids_out != NULL)
    *ids_out = ids;
  return TRUE;
}

/* ---- the DAC ---- */

static gboolean
is_no_expiry (const ASN1_TIME *t)
{
  return t != NULL && ASN1_STRING_type (t) == V_ASN1_GENERALIZEDTIME && ASN1_STRING_length (t) == 15
         && memcmp (ASN1_STRING_get0_data (t), "99991231235959Z", 15) == 0;
}

gboolean
st_matter_dac_check (X509 *dac, X509 *pai, GError **error)
{
  g_return_val_if_fail (dac != NULL && pai != NULL, FALSE);
  const char *what = "the DAC";

  StMatterIds pai_ids;
  g_autoptr(GError) pai_error = NULL;
  if (!st_matter_pai_check (pai, &pai_ids, &pai_error))
    return fail (error, what, SPEC_DAC, "its issuer must be a valid PAI (%s)", pai_error->message);

  if (!check_p256_key (dac, what, SPEC_DAC, error) || !check_ecdsa_sha256 (dac, what, SPEC_DAC, error))
    return FALSE;
  if (X509_NAME_cmp (X509_get_issuer_name (dac), X509_get_subject_name (pai)) != 0)
    return fail (error, what, SPEC_DAC, "its issuer must be the PAI's subject");
  if (!check_basic_constraints (dac, FALSE, -1, what, SPEC_DAC, error))
    return FALSE;
  static const int dac_bits[] = { 0 /* digitalSignature */ };
  if (!check_key_usage (dac, dac_bits, G_N_ELEMENTS (dac_bits), TRUE, "exactly digitalSignature", what,
                        SPEC_DAC, error))
    return FALSE;

  guint8 ski[20], pai_ski[20];
  if (!check_ski (dac, ski, what, SPEC_DAC, error))
    return FALSE;
  if (!check_ski (pai, pai_ski, "the PAI", SPEC_PAI, error))
    return FALSE;
  int crit = -1;
  AUTHORITY_KEYID *aki = get_ext (dac, NID_authority_key_identifier, &crit);
  gboolean aki_ok = aki != NULL && crit == 0 && aki->keyid != NULL && ASN1_STRING_length (aki->keyid) == 20;
  gboolean aki_match = aki_ok && memcmp (ASN1_STRING_get0_data (aki->keyid), pai_ski, 20) == 0;
  AUTHORITY_KEYID_free (aki);
  if (!aki_ok)
    return fail (error, what, SPEC_DAC, "a non-critical authorityKeyIdentifier with a keyIdentifier of 20 bytes must be present");
  if (!aki_match)
    return fail (error, what, SPEC_DAC, "its authorityKeyIdentifier must be the PAI's subjectKeyIdentifier");

  StMatterIds ids;
  if (!st_matter_name_ids (X509_get_subject_name (dac), what, &ids, error))
    return FALSE;
  if (!ids.has_vid)
    return fail (error, what, SPEC_DAC, "its subject must carry a VID (" ST_MATTER_OID_VID ")");
  if (ids.vid != pai_ids.vid)
    return fail (error, what, SPEC_DAC, "its VID %04X must be the PAI's VID %04X", ids.vid, pai_ids.vid);
  if (!ids.has_pid)
    return fail (error, what, SPEC_DAC, "its subject must carry a PID (" ST_MATTER_OID_PID ")");
  if (pai_ids.has_pid && ids.pid != pai_ids.pid)
    return fail (error, what, SPEC_DAC, "its PID %04X must be the PAI's PID %04X", ids.pid, pai_ids.pid);

  const ASN1_TIME *nb = X509_get0_notBefore (dac), *na = X509_get0_notAfter (dac);
  const ASN1_TIME *pnb = X509_get0_notBefore (pai), *pna = X509_get0_notAfter (pai);
  if (nb == NULL || na == NULL || pnb == NULL || pna == NULL || ASN1_TIME_check (nb) != 1
      || ASN1_TIME_check (na) != 1)
    return fail (error, what, SPEC_DAC, "its validity and the PAI's must be readable times");
  int c = ASN1_TIME_compare (nb, pnb);
  if (c == -2 || c < 0)
    return fail (error, what, SPEC_DAC, "its notBefore must not be before the PAI's notBefore");
  if (!is_no_expiry (na))
    {
      c = ASN1_TIME_compare (na, pna);
      if (c == -2 || c > 0)
        return fail (error, what, SPEC_DAC,
                     "its notAfter must not be after the PAI's notAfter, or be 99991231235959Z (no expiry)");
    }
  return TRUE;
}
