/* The Matter PAA, PAI and DAC rules (station/st-matter-dac.c), on a chain
 * made fresh here with the OpenSSL API: a good chain passes, every mutation
 * fails naming its rule, and tests/matter/check-dac.py (python3-cryptography,
 * written from the specification's text, not from the C code) gives the
 * same verdict on every certificate of the test.
 *
 * Usage (meson passes them): test-matter-dac PYTHON CHECK-DAC.PY SEED-DIR
 * (SEED-DIR: tests/fuzz/corpus/matter-dac) */
#include <string.h>
#include <sys/wait.h>

#include <openssl/cms.h>
#include <openssl/ec.h>
#include <openssl/rand.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "st-error.h"
#include "st-issue.h"
#include "st-matter-dac.h"
#include "st-profile.h"
#include "st-ossl.h"
#include "st-test-tmp.h"
#include "st-util.h"

static const char *python_path;
static const char *checker_path;
static const char *corpus_path;

/* ---- making certificates ---- */

typedef struct {
  const char *cn;
  const char *vid;      /* NULL: no VID attribute */
  const char *pid;      /* NULL: no PID attribute */
  int vid_type;         /* 0: UTF8String */
  gboolean ids_one_rdn; /* VID and PID in one multi-valued RDN */
  const char *bc;       /* basicConstraints, as openssl's config says it */
  const char *ku;       /* keyUsage */
  gboolean no_ski;
  gboolean no_aki;
  long not_before_days; /* from now */
  long not_after_days;
  gboolean no_expiry;   /* notAfter 99991231235959Z */
  const char *curve;    /* NULL: P-256 */
  const EVP_MD *md;     /* NULL: SHA-256 */
} Spec;

static EVP_PKEY *
make_key (const char *curve)
{
  EVP_PKEY *key = EVP_EC_gen (curve != NULL ? curve : "P-256");
  g_assert_nonnull (key);
  return key;
}

static void
add_id (X509_NAME *name, const char *oid, const char *value, int type, int set)
{
  ASN1_OBJECT *obj = OBJ_txt2obj (oid, 1);
  g_assert_nonnull (obj);
  g_assert_cmpint (X509_NAME_add_entry_by_OBJ (name, obj, type, (const unsigned char *) value, -1, -1, set),
                   ==, 1);
  ASN1_OBJECT_free (obj);
}

static void
add_ext (X509 *cert, X509 *issuer, int nid, const char *value)
{
  X509V3_CTX ctx;
  X509V3_set_ctx (&ctx, issuer, cert, NULL, NULL, 0);
  g_autoptr(X509_EXTENSION) ext = X509V3_EXT_conf_nid (NULL, &ctx, nid, value);
  g_assert_nonnull (ext);
  g_assert_cmpint (X509_add_ext (cert, ext, -1), ==, 1);
}

/* A certificate of @spec for @key, signed by @issuer_key under @issuer
 * (NULL: self-signed). */
static X509 *
make_cert (const Spec *spec, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key)
{
  X509 *cert = X509_new ();
  g_assert_cmpint (X509_set_version (cert, X509_VERSION_3), ==, 1);
  guint8 sn[16];
  for (gsize i = 0; i < sizeof sn; i++)
    sn[i] = (guint8) g_random_int_range (0, 256);
  sn[0] = (guint8) ((sn[0] & 0x7f) | 0x40);
  g_autoptr(BIGNUM) bn = BN_bin2bn (sn, sizeof sn, NULL);
  g_assert_nonnull (BN_to_ASN1_INTEGER (bn, X509_get_serialNumber (cert)));

  g_autoptr(X509_NAME) name = X509_NAME_new ();
  g_assert_cmpint (X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_UTF8, (const unsigned char *) spec->cn, -1, -1, 0),
                   ==, 1);
  if (spec->vid != NULL)
    add_id (name, ST_MATTER_OID_VID, spec->vid, spec->vid_type != 0 ? spec->vid_type : V_ASN1_UTF8STRING, 0);
  if (spec->pid != NULL)
    add_id (name, ST_MATTER_OID_PID, spec->pid, V_ASN1_UTF8STRING, spec->ids_one_rdn ? -1 : 0);
  g_assert_cmpint (X509_set_subject_name (cert, name), ==, 1);
  g_assert_cmpint (X509_set_issuer_name (cert, issuer != NULL ? X509_get_subject_name (issuer) : name), ==, 1);

  g_assert_nonnull (X509_time_adj_ex (X509_getm_notBefore (cert), spec->not_before_days, 0, NULL));
  if (spec->no_expiry)
    g_assert_cmpint (ASN1_TIME_set_string_X509 (X509_getm_notAfter (cert), "99991231235959Z"), ==, 1);
  else
    g_assert_nonnull (X509_time_adj_ex (X509_getm_notAfter (cert), spec->not_after_days, 0, NULL));
  g_assert_cmpint (X509_set_pubkey (cert, key), ==, 1);

  X509 *signer = issuer != NULL ? issuer : cert;
  if (spec->bc != NULL)
    add_ext (cert, signer, NID_basic_constraints, spec->bc);
  if (spec->ku != NULL)
    add_ext (cert, signer, NID_key_usage, spec->ku);
  if (!spec->no_ski)
    add_ext (cert, signer, NID_subject_key_identifier, "hash");
  if (!spec->no_aki)
    add_ext (cert, signer, NID_authority_key_identifier, "keyid:always");

  g_assert_cmpint (X509_sign (cert, issuer_key != NULL ? issuer_key : key, spec->md != NULL ? spec->md : EVP_sha256 ()),
                   >, 0);
  return cert;
}

static const Spec paa_spec = {
  .cn = "Station Test PAA", .vid = "FFF1",
  .bc = "critical,CA:TRUE,pathlen:1", .ku = "critical,keyCertSign,cRLSign",
  .not_before_days = -1, .not_after_days = 3650,
};
static const Spec pai_spec = {
  .cn = "Station Test PAI", .vid = "FFF1", .pid = "800A",
  .bc = "critical,CA:TRUE,pathlen:0", .ku = "critical,keyCertSign,cRLSign",
  .not_before_days = -1, .not_after_days = 1825,
};
static const Spec dac_spec = {
  .cn = "Station Test DAC", .vid = "FFF1", .pid = "800A",
  .bc = "critical,CA:FALSE", .ku = "critical,digitalSignature",
  .not_before_days = 0, .not_after_days = 365,
};

typedef struct {
  gchar *dir;
  EVP_PKEY *paa_key, *pai_key;
  X509 *paa, *pai;
  gchar *paa_pem, *pai_pem;
} Chain;

static gchar *
write_pem (const char *dir, const char *file, X509 *cert)
{
  gchar *path = g_build_filename (dir, file, NULL);
  g_autoptr(BIO) bio = BIO_new_file (path, "w");
  g_assert_nonnull (bio);
  g_assert_cmpint (PEM_write_bio_X509 (bio, cert), ==, 1);
  return path;
}

static void
chain_init (Chain *c, const Spec *pai)
{
  c->dir = st_test_tmpdir ("st-matter-dac");
  c->paa_key = make_key (NULL);
  c->paa = make_cert (&paa_spec, c->paa_key, NULL, NULL);
  c->pai_key = make_key (NULL);
  c->pai = make_cert (pai != NULL ? pai : &pai_spec, c->pai_key, c->paa, c->paa_key);
  c->paa_pem = write_pem (c->dir, "paa.pem", c->paa);
  c->pai_pem = write_pem (c->dir, "pai.pem", c->pai);
}

static void
chain_clear (Chain *c)
{
  st_rm_rf (c->dir);
  g_free (c->dir);
  g_free (c->paa_pem);
  g_free (c->pai_pem);
  X509_free (c->paa);
  X509_free (c->pai);
  EVP_PKEY_free (c->paa_key);
  EVP_PKEY_free (c->pai_key);
}

/* ---- the independent checker ---- */

/* Runs check-dac.py KIND FILE...; its exit status (0 passes, 1 fails a
 * rule), its stderr into @err_out. */
static int
run_checker (const char *kind, const char *a, const char *b, gchar **err_out)
{
  const char *argv[] = { python_path, checker_path, kind, a, b, NULL };
  g_autofree gchar *out = NULL;
  g_autofree gchar *err = NULL;
  int status = 0;
  g_autoptr(GError) error = NULL;
  g_assert_true (g_spawn_sync (NULL, (gchar **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status,
                               &error));
  g_assert_no_error (error);
  g_assert_true (WIFEXITED (status));
  if (err_out != NULL)
    *err_out = g_steal_pointer (&err);
  return WEXITSTATUS (status);
}

/* The C verdict and the script's verdict on one DAC under the chain's PAI:
 * both pass, or both fail; a failure's messages contain @rule (the C one)
 * and @py_rule (the script's). Returns nothing: asserts. */
static void
expect_dac (Chain *c, const Spec *spec, const char *curve, const char *name, const char *rule, const char *py_rule)
{
  g_autoptr(EVP_PKEY) key = make_key (curve);
  g_autoptr(X509) dac = make_cert (spec, key, c->pai, c->pai_key);
  g_autofree gchar *file = g_strdup_printf ("dac-%s.pem", name);
  g_autofree gchar *path = write_pem (c->dir, file, dac);

  g_autoptr(GError) error = NULL;
  gboolean ok = st_matter_dac_check (dac, c->pai, &error);
  g_autofree gchar *py_err = NULL;
  int py = run_checker ("dac", c->pai_pem, path, &py_err);
  g_test_message ("%s: C %s; check-dac.py exit %d: %s", name, ok ? "passes" : error->message, py, py_err);
  if (rule == NULL)
    {
      g_assert_no_error (error);
      g_assert_true (ok);
      g_assert_cmpint (py, ==, 0);
      return;
    }
  g_assert_false (ok);
  g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
  g_assert_nonnull (strstr (error->message, "the DAC breaks the Matter rule"));
  g_assert_nonnull (strstr (error->message, rule));
  g_assert_cmpint (py, ==, 1);
  g_assert_nonnull (strstr (py_err, py_rule));
}

/* ---- the tests ---- */

static void
test_good_chain (void)
{
  Chain c;
  chain_init (&c, NULL);
  g_autoptr(GError) error = NULL;
  g_assert_true (st_matter_paa_check (c.paa, &error));
  g_assert_no_error (error);
  StMatterIds ids;
  g_assert_true (st_matter_pai_check (c.pai, &ids, &error));
  g_assert_no_error (error);
  g_assert_true (ids.has_vid && ids.vid == 0xFFF1 && ids.has_pid && ids.pid == 0x800A);
  g_assert_cmpint (run_checker ("paa", c.paa_pem, NULL, NULL), ==, 0);
  g_assert_cmpint (run_checker ("pai", c.pai_pem, NULL, NULL), ==, 0);

  expect_dac (&c, &dac_spec, NULL, "good", NULL, NULL);
  Spec forever = dac_spec;
  forever.no_expiry = TRUE;
  expect_dac (&c, &forever, NULL, "no-expiry", NULL, NULL);
  chain_clear (&c);
}

/* The three mutations issue 18 names. */
static void
test_issue_mutations (void)
{
  Chain c;
  chain_init (&c, NULL);
  Spec s = dac_spec;
  s.pid = "800a";
  expect_dac (&c, &s, NULL, "pid-lower-case", "upper-case hex digits", "[pid-format]");
  s = dac_spec;
  s.ku = "critical,digitalSignature,keyAgreement";
  expect_dac (&c, &s, NULL, "key-agreement", "keyUsage must be present and critical with exactly digitalSignature",
              "[dac-key-usage]");
  s = dac_spec;
  s.vid = "FFF2";
  expect_dac (&c, &s, NULL, "vid-differs", "its VID FFF2 must be the PAI's VID FFF1", "[dac-vid]");
  chain_clear (&c);
}

static void
test_dac_mutations (void)
{
  Chain c;
  chain_init (&c, NULL);
  Spec s = dac_spec;
  s.no_ski = TRUE;
  expect_dac (&c, &s, NULL, "no-ski", "subjectKeyIdentifier of 20 bytes", "[dac-ski]");
  s = dac_spec;
  s.no_aki = TRUE;
  expect_dac (&c, &s, NULL, "no-aki", "authorityKeyIdentifier", "[dac-aki]");
  s = dac_spec;
  s.bc = "critical,CA:TRUE";
  expect_dac (&c, &s, NULL, "ca-true", "basicConstraints must be present, critical, CA:FALSE", "[dac-basic-constraints]");
  s = dac_spec;
  s.bc = "CA:FALSE";
  expect_dac (&c, &s, NULL, "bc-not-critical", "basicConstraints must be present, critical, CA:FALSE",
              "[dac-basic-constraints]");
  s = dac_spec;
  s.ku = "digitalSignature";
  expect_dac (&c, &s, NULL, "ku-not-critical", "keyUsage must be present and critical", "[dac-key-usage]");
  s = dac_spec;
  expect_dac (&c, &s, "P-384", "p384", "on the named curve P-256", "[dac-key]");
  s = dac_spec;
  s.md = EVP_sha384 ();
  expect_dac (&c, &s, NULL, "sha384", "ecdsa-with-SHA256", "[dac-signature-algorithm]");
  s = dac_spec;
  s.not_after_days = 4000;
  expect_dac (&c, &s, NULL, "after-pai", "notAfter must not be after the PAI's notAfter", "[dac-validity]");
  s = dac_spec;
  s.not_before_days = -30;
  expect_dac (&c, &s, NULL, "before-pai", "notBefore must not be before the PAI's notBefore", "[dac-validity]");
  s = dac_spec;
  s.ids_one_rdn = TRUE;
  expect_dac (&c, &s, NULL, "ids-one-rdn", "alone in its own RDN", "[vid-single-rdn]");
  s = dac_spec;
  s.vid_type = V_ASN1_PRINTABLESTRING;
  expect_dac (&c, &s, NULL, "vid-printable", "must be a UTF8String (it is PRINTABLESTRING)", "[vid-utf8string]");
  s = dac_spec;
  s.pid = NULL;
  expect_dac (&c, &s, NULL, "no-pid", "its subject must carry a PID", "[dac-pid]");
  s = dac_spec;
  s.pid = "800B";
  expect_dac (&c, &s, NULL, "pid-differs", "its PID 800B must be the PAI's PID 800A", "[dac-pid]");
  s = dac_spec;
  s.pid = "800";
  expect_dac (&c, &s, NULL, "pid-three-digits", "exactly 4 characters", "[pid-format]");
  chain_clear (&c);
}

/* A PAI without a PID lets its DACs carry any PID. */
static void
test_pai_without_pid (void)
{
  Chain c;
  Spec pai = pai_spec;
  pai.pid = NULL;
  chain_init (&c, &pai);
  g_autoptr(GError) error = NULL;
  StMatterIds ids;
  g_assert_true (st_matter_pai_check (c.pai, &ids, &error));
  g_assert_no_error (error);
  g_assert_false (ids.has_pid);
  g_assert_cmpint (run_checker ("pai", c.pai_pem, NULL, NULL), ==, 0);
  Spec s = dac_spec;
  s.pid = "8123";
  expect_dac (&c, &s, NULL, "any-pid", NULL, NULL);
  chain_clear (&c);
}

/* A PAI that breaks a rule: refused by both, and a DAC under it too. */
static void
expect_bad_pai (const Spec *pai, const char *rule, const char *py_rule)
{
  Chain c;
  chain_init (&c, pai);
  g_autoptr(GError) error = NULL;
  g_assert_false (st_matter_pai_check (c.pai, NULL, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
  g_test_message ("PAI: %s", error->message);
  g_assert_nonnull (strstr (error->message, "the PAI breaks the Matter rule"));
  g_assert_nonnull (strstr (error->message, rule));
  g_autofree gchar *py_err = NULL;
  g_assert_cmpint (run_checker ("pai", c.pai_pem, NULL, &py_err), ==, 1);
  g_assert_nonnull (strstr (py_err, py_rule));
  expect_dac (&c, &dac_spec, NULL, "under-bad-pai", "its issuer must be a valid PAI", "[dac-issuer-is-pai]");
  chain_clear (&c);
}

static void
test_pai_mutations (void)
{
  Spec s = pai_spec;
  s.bc = "critical,CA:TRUE";
  expect_bad_pai (&s, "CA:TRUE with pathLenConstraint 0", "[pai-basic-constraints]");
  s = pai_spec;
  s.bc = "critical,CA:TRUE,pathlen:1";
  expect_bad_pai (&s, "CA:TRUE with pathLenConstraint 0", "[pai-basic-constraints]");
  s = pai_spec;
  s.ku = "critical,keyCertSign";
  expect_bad_pai (&s, "keyCertSign and cRLSign", "[pai-key-usage]");
  s = pai_spec;
  s.ku = "keyCertSign,cRLSign";
  expect_bad_pai (&s, "keyCertSign and cRLSign", "[pai-key-usage]");
  s = pai_spec;
  s.vid = NULL;
  expect_bad_pai (&s, "its subject must carry a VID", "[pai-vid]");
  s = pai_spec;
  s.md = EVP_sha512 ();
  expect_bad_pai (&s, "ecdsa-with-SHA256", "[pai-signature-algorithm]");
}

static void
test_paa_mutations (void)
{
  g_autofree gchar *dir = st_test_tmpdir ("st-matter-paa");
  struct {
    const char *name;
    Spec spec;
    gboolean signed_by_other;
    const char *rule, *py_rule;
  } cases[] = {
    { "paa-with-pid", paa_spec, FALSE, "must not carry a PID", "[paa-no-pid]" },
    { "paa-not-self-signed", paa_spec, TRUE, "self-signed", "[paa-self-signed]" },
    { "paa-not-ca", paa_spec, FALSE, "CA:TRUE", "[paa-basic-constraints]" },
    { "paa-no-vid", paa_spec, FALSE, NULL, NULL },
    { "paa-sha384", paa_spec, FALSE, "ecdsa-with-SHA256", "[paa-signature-algorithm]" },
    { "paa-p384", paa_spec, FALSE, "on the named curve P-256", "[paa-key]" },
  };
  cases[0].spec.pid = "8000";
  cases[2].spec.bc = "critical,CA:FALSE";
  cases[3].spec.vid = NULL;
  cases[4].spec.md = EVP_sha384 ();
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(EVP_PKEY) key = make_key (strcmp (cases[i].name, "paa-p384") == 0 ? "P-384" : NULL);
      g_autoptr(EVP_PKEY) other_key = make_key (NULL);
      g_autoptr(X509) other = make_cert (&paa_spec, other_key, NULL, NULL);
      g_autoptr(X509) paa = cases[i].signed_by_other ? make_cert (&cases[i].spec, key, other, other_key)
                                                      : make_cert (&cases[i].spec, key, NULL, NULL);
      g_autofree gchar *file = g_strdup_printf ("%s.pem", cases[i].name);
      g_autofree gchar *path = write_pem (dir, file, paa);
      g_autoptr(GError) error = NULL;
      gboolean ok = st_matter_paa_check (paa, &error);
      g_autofree gchar *py_err = NULL;
      int py = run_checker ("paa", path, NULL, &py_err);
      g_test_message ("%s: C %s; check-dac.py exit %d: %s", cases[i].name, ok ? "passes" : error->message, py,
                      py_err);
      if (cases[i].rule == NULL)
        {
          g_assert_no_error (error);
          g_assert_cmpint (py, ==, 0);
          continue;
        }
      g_assert_false (ok);
      g_assert_nonnull (strstr (error->message, "the PAA breaks the Matter rule"));
      g_assert_nonnull (strstr (error->message, cases[i].rule));
      g_assert_cmpint (py, ==, 1);
      g_assert_nonnull (strstr (py_err, cases[i].py_rule));
    }
  st_rm_rf (dir);
}

/* A name with a VID twice, and attributes that are not 4 characters. */
static void
test_name_ids (void)
{
  g_autoptr(X509_NAME) name = X509_NAME_new ();
  add_id (name, ST_MATTER_OID_VID, "FFF1", V_ASN1_UTF8STRING, 0);
  StMatterIds ids;
  g_autoptr(GError) error = NULL;
  g_assert_true (st_matter_name_ids (name, "the test", &ids, &error));
  g_assert_true (ids.has_vid && ids.vid == 0xFFF1 && !ids.has_pid);
  add_id (name, ST_MATTER_OID_VID, "FFF1", V_ASN1_UTF8STRING, 0);
  g_assert_false (st_matter_name_ids (name, "the test", &ids, &error));
  g_assert_nonnull (strstr (error->message, "at most once"));
  g_clear_error (&error);

  const char *bad[] = { "", "FFF", "FFF10", "FFFG", "0x12", "FF F" };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(X509_NAME) n = X509_NAME_new ();
      add_id (n, ST_MATTER_OID_PID, bad[i], V_ASN1_UTF8STRING, 0);
      g_assert_false (st_matter_name_ids (n, "the test", &ids, &error));
      g_assert_nonnull (strstr (error->message, "PID (" ST_MATTER_OID_PID ")"));
      g_clear_error (&error);
    }
}


/* ---- the [matter] profile group and the post-signing lint ---- */

static gchar *
matter_profile_text (const char *algorithm, const char *key_usage, const char *matter)
{
  return g_strdup_printf ("[profile]\nname = matter-light\n"
                          "[key]\nmode = device-csr\nalgorithm = %s\n"
                          "[certificate]\nsubject = CN={uid},O=Station Test\nvalidity = no-expiry\n"
                          "key-usage = %s\n"
                          "[serial]\nformat = ML-{seq:06}\n[device]\nlock = false\n"
                          "[matter]\n%s",
                          algorithm, key_usage, matter);
}

static StProfile *
load_matter_profile (const char *matter, GError **error)
{
  g_autofree gchar *text = matter_profile_text ("ec-p256", "digitalSignature", matter);
  return st_profile_load_from_data (text, strlen (text), "matter.profile", error);
}

#define MATTER_MIN "vendor-id = FFF1\nproduct-id = 800A\ncertification-declaration = /nonexistent/cd.der\n"

static void
test_profile_matter (void)
{
  g_autoptr(GError) error = NULL;
  /* the defaults */
  g_autoptr(StProfile) p = load_matter_profile (MATTER_MIN, &error);
  g_assert_no_error (error);
  g_assert_true (p->matter.enabled);
  g_assert_cmpuint (p->matter.vendor_id, ==, 0xFFF1);
  g_assert_cmpuint (p->matter.product_id, ==, 0x800A);
  g_assert_cmpint (p->matter.discriminator, ==, ST_MATTER_DISCRIMINATOR_RANDOM);
  g_assert_cmpuint (p->matter.discriminator_first, ==, 0);
  g_assert_cmpuint (p->matter.discriminator_last, ==, 4095);
  g_assert_cmpint (p->matter.passcode, ==, ST_MATTER_PASSCODE_RANDOM);
  g_assert_cmpuint (p->matter.pbkdf2_iterations, ==, 10000);
  g_assert_cmpuint (p->matter.salt_length, ==, 32);
  g_assert_cmpstr (p->matter.certification_declaration, ==, "/nonexistent/cd.der");

  /* every key given */
  g_autoptr(StProfile) q = load_matter_profile (
      MATTER_MIN "discriminator = sequential\ndiscriminator-range = 3840-3849\npasscode = random\n"
      "pbkdf2-iterations = 1000\nsalt-length = 16\n", &error);
  g_assert_no_error (error);
  g_assert_cmpint (q->matter.discriminator, ==, ST_MATTER_DISCRIMINATOR_SEQUENTIAL);
  g_assert_cmpuint (q->matter.discriminator_first, ==, 3840);
  g_assert_cmpuint (q->matter.discriminator_last, ==, 3849);
  g_assert_cmpuint (q->matter.pbkdf2_iterations, ==, 1000);
  g_assert_cmpuint (q->matter.salt_length, ==, 16);
  g_autoptr(StProfile) r = load_matter_profile (MATTER_MIN "pbkdf2-iterations = 100000\nsalt-length = 32\n"
                                                "discriminator-range = 0-4095\n", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (r->matter.pbkdf2_iterations, ==, 100000);

  /* a profile without the group is no Matter profile */
  g_autofree gchar *plain = matter_profile_text ("ec-p256", "digitalSignature", "");
  *strstr (plain, "[matter]") = '\0';
  g_autoptr(StProfile) none = st_profile_load_from_data (plain, strlen (plain), "plain.profile", &error);
  g_assert_no_error (error);
  g_assert_false (none->matter.enabled);
}

static void
test_profile_matter_refusals (void)
{
  static const struct { const char *matter; const char *message; } cases[] = {
    { "vendor-id = fff1\nproduct-id = 800A\ncertification-declaration = cd.der\n",
      "[matter] vendor-id=fff1 is not allowed; give exactly 4 upper-case hex digits" },
    { "vendor-id = 0xFFF1\nproduct-id = 800A\ncertification-declaration = cd.der\n",
      "[matter] vendor-id=0xFFF1 is not allowed" },
    { "vendor-id = FFF1\nproduct-id = 800\ncertification-declaration = cd.der\n",
      "[matter] product-id=800 is not allowed" },
    { "vendor-id = FFF1\nproduct-id = 0000\ncertification-declaration = cd.der\n",
      "[matter] product-id=0000 is not allowed; a Matter product ID is never 0" },
    { "product-id = 800A\ncertification-declaration = cd.der\n", "[matter] vendor-id is missing" },
    { "vendor-id = FFF1\ncertification-declaration = cd.der\n", "[matter] product-id is missing" },
    { "vendor-id = FFF1\nproduct-id = 800A\n", "[matter] certification-declaration is missing" },
    { MATTER_MIN "discriminator = ordered\n", "[matter] discriminator=ordered is not allowed; use random or sequential" },
    { MATTER_MIN "discriminator-range = 10-5\n", "[matter] discriminator-range=10-5 is not allowed; give FIRST-LAST" },
    { MATTER_MIN "discriminator-range = 0-4096\n", "[matter] discriminator-range=0-4096 is not allowed" },
    { MATTER_MIN "discriminator-range = 5\n", "[matter] discriminator-range=5 is not allowed" },
    { MATTER_MIN "discriminator-range = 1-2-3\n", "[matter] discriminator-range=1-2-3 is not allowed" },
    { MATTER_MIN "passcode = 20202021\n", "[matter] passcode=20202021 is not allowed; use random" },
    { MATTER_MIN "pbkdf2-iterations = 999\n", "[matter] pbkdf2-iterations=999 is not allowed; use a whole number from 1000 to 100000" },
    { MATTER_MIN "pbkdf2-iterations = 100001\n", "[matter] pbkdf2-iterations=100001 is not allowed" },
    { MATTER_MIN "salt-length = 15\n", "[matter] salt-length=15 is not allowed; use a whole number from 16 to 32" },
    { MATTER_MIN "salt-length = 33\n", "[matter] salt-length=33 is not allowed" },
    { MATTER_MIN "vendor_id = FFF1\n", "[matter] unknown key vendor_id" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(StProfile) p = load_matter_profile (cases[i].matter, &error);
      g_test_message ("%s", error != NULL ? error->message : "(loaded)");
      g_assert_null (p);
      g_assert_nonnull (error);
      g_assert_nonnull (strstr (error->message, "matter.profile: "));
      g_assert_nonnull (strstr (error->message, cases[i].message));
    }
  /* what a DAC must be constrains the other groups */
  static const struct { const char *alg, *ku, *message; } others[] = {
    { "ec-p384", "digitalSignature", "[key] algorithm must be ec-p256 with [matter]" },
    { "ed25519", "digitalSignature", "[key] algorithm must be ec-p256 with [matter]" },
    { "ec-p256", "digitalSignature;keyAgreement", "[certificate] key-usage must be exactly digitalSignature with [matter]" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (others); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree gchar *text = matter_profile_text (others[i].alg, others[i].ku, MATTER_MIN);
      g_autoptr(StProfile) p = st_profile_load_from_data (text, strlen (text), "matter.profile", &error);
      g_assert_null (p);
      g_assert_nonnull (error);
      g_test_message ("%s", error->message);
      g_assert_nonnull (strstr (error->message, others[i].message));
    }
}

/* The Certification Declaration file: a CMS SignedData made here. */
static void
test_profile_certification_declaration (void)
{
  g_autofree gchar *dir = st_test_tmpdir ("st-matter-cd");
  g_autoptr(EVP_PKEY) key = make_key (NULL);
  g_autoptr(X509) signer = make_cert (&paa_spec, key, NULL, NULL);
  static const char content[] = "a certification declaration's TLV stands here";
  g_autoptr(BIO) in = BIO_new_mem_buf (content, sizeof content - 1);
  CMS_ContentInfo *cms = CMS_sign (signer, key, NULL, in, CMS_BINARY | CMS_NOSMIMECAP | CMS_NOCERTS);
  g_assert_nonnull (cms);
  unsigned char *der = NULL;
  int der_len = i2d_CMS_ContentInfo (cms, &der);
  CMS_ContentInfo_free (cms);
  g_assert_cmpint (der_len, >, 0);

  g_autofree gchar *good = g_build_filename (dir, "cd.der", NULL);
  g_autofree gchar *trailing = g_build_filename (dir, "cd-trailing.der", NULL);
  g_autofree gchar *garbage = g_build_filename (dir, "cd-garbage.der", NULL);
  g_autofree gchar *big = g_build_filename (dir, "cd-big.der", NULL);
  g_autofree gchar *cert_der = g_build_filename (dir, "cd-cert.der", NULL);
  g_assert_true (g_file_set_contents (good, (const char *) der, der_len, NULL));
  g_autofree guint8 *plus = g_malloc (der_len + 1);
  memcpy (plus, der, der_len);
  plus[der_len] = 0;
  g_assert_true (g_file_set_contents (trailing, (const char *) plus, der_len + 1, NULL));
  g_assert_true (g_file_set_contents (garbage, "not DER at all", -1, NULL));
  g_autofree gchar *zeros = g_malloc0 (ST_PROFILE_CD_MAX + 1);
  g_assert_true (g_file_set_contents (big, zeros, ST_PROFILE_CD_MAX + 1, NULL));
  unsigned char *cder = NULL;
  int cder_len = i2d_X509 (signer, &cder);
  g_assert_true (g_file_set_contents (cert_der, (const char *) cder, cder_len, NULL));
  OPENSSL_free (cder);

  struct { const char *file; int code; } cases[] = {
    { good, -1 },
    { trailing, ST_ERROR_INVALID_DATA },
    { garbage, ST_ERROR_INVALID_DATA },
    { big, ST_ERROR_INVALID_DATA },
    { cert_der, ST_ERROR_INVALID_DATA },
    { "/nonexistent/cd.der", ST_ERROR_NOT_FOUND },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree gchar *m = g_strdup_printf ("vendor-id = FFF1\nproduct-id = 800A\ncertification-declaration = %s\n",
                                             cases[i].file);
      g_autoptr(GError) error = NULL;
      g_autoptr(StProfile) p = load_matter_profile (m, &error);
      g_assert_no_error (error);
      g_autoptr(GBytes) cd = st_profile_load_certification_declaration (p, &error);
      if (cases[i].code < 0)
        {
          g_assert_no_error (error);
          g_assert_cmpuint (g_bytes_get_size (cd), ==, (gsize) der_len);
          g_assert_cmpmem (g_bytes_get_data (cd, NULL), der_len, der, der_len);
          continue;
        }
      g_assert_null (cd);
      g_assert_error (error, ST_ERROR, cases[i].code);
      g_test_message ("%s", error->message);
      g_assert_nonnull (strstr (error->message, "[matter] certification-declaration"));
    }
  OPENSSL_free (der);
  st_rm_rf (dir);
}

static void
random_serial (StSerial *serial)
{
  guint8 rnd[16];
  g_assert_cmpint (RAND_bytes (rnd, sizeof rnd), ==, 1);
  rnd[0] = 0x11;
  rnd[15] = 0x5a;
  g_assert_true (st_serial_from_random (rnd, serial));
}

/* st_issue_build/sign/check under the test's PAI: a Matter profile's DAC
 * carries the VID and PID, passes the lint and the independent checker;
 * the profile check refuses a CA that is no PAI, or another vendor's. */
static void
test_issue_matter (void)
{
  Chain c;
  chain_init (&c, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(StProfile) profile = load_matter_profile (MATTER_MIN, &error);
  g_assert_no_error (error);
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  g_assert_true (st_issue_check_profile (c.pai, profile, now, &error));
  g_assert_no_error (error);

  static const StSubjectInfo info = { "0123abcdef", "ML-1", "ML-000001" };
  g_autoptr(EVP_PKEY) key = make_key (NULL);
  StSerial serial;
  random_serial (&serial);
  g_autoptr(X509) cert = st_issue_build (c.pai, profile, key, &info, &serial, now, &error);
  g_assert_no_error (error);
  g_assert_true (st_issue_sign (cert, c.pai_key, c.pai, &error));
  g_assert_no_error (error);
  g_assert_true (st_issue_check (cert, c.pai, profile, key, &info, &serial, &error));
  g_assert_no_error (error);
  StMatterIds ids;
  g_assert_true (st_matter_name_ids (X509_get_subject_name (cert), "the DAC", &ids, &error));
  g_assert_true (ids.has_vid && ids.vid == 0xFFF1 && ids.has_pid && ids.pid == 0x800A);
  g_autofree gchar *path = write_pem (c.dir, "issued.pem", cert);
  g_autofree gchar *py_err = NULL;
  g_assert_cmpint (run_checker ("dac", c.pai_pem, path, &py_err), ==, 0);

  /* another vendor's profile: refused before the batch (and by
   * st_issue_build(), which applies the same check) */
  g_autoptr(StProfile) other = load_matter_profile ("vendor-id = FFF2\nproduct-id = 800A\n"
                                                    "certification-declaration = cd.der\n", &error);
  g_assert_no_error (error);
  g_assert_false (st_issue_check_profile (c.pai, other, now, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
  g_assert_nonnull (strstr (error->message, "vendor-id=FFF2 product-id=800A does not match the issuing CA (the PAI: VID FFF1, PID 800A)"));
  g_clear_error (&error);

  /* the lint is part of st_issue_check(): the same DAC checked against a
   * CA of the same name and key that is no PAI (no pathLenConstraint) */
  Spec not_pai = pai_spec;
  not_pai.bc = "critical,CA:TRUE";
  g_autoptr(X509) pai2 = make_cert (&not_pai, c.pai_key, c.paa, c.paa_key);
  g_assert_false (st_issue_check (cert, pai2, profile, key, &info, &serial, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "the DAC breaks the Matter rule (Matter Core spec 6.2.2.3, DAC): its issuer must be a valid PAI"));
  g_clear_error (&error);

  /* the PAA as the issuing CA: not a PAI (pathLenConstraint 1) */
  g_assert_false (st_issue_check_profile (c.paa, profile, now, &error));
  g_assert_nonnull (strstr (error->message, "profile matter-light needs the issuing CA to be a Matter PAI: the PAI breaks the Matter rule"));
  g_clear_error (&error);
  chain_clear (&c);
}


/* Certificates made by another library: the fuzz target's seeds, written
 * by python3-cryptography (tests/fuzz/corpus/matter-dac, a PAI and a DAC
 * each). The C rules and the script agree on every one; the good pair
 * passes, the mutated ones fail. */
static void
test_foreign_chains (void)
{
  g_autofree gchar *dir = st_test_tmpdir ("st-matter-foreign");
  static const struct { const char *file; gboolean good; } seeds[] = {
    { "good.bin", TRUE },
    { "pid-lower.bin", FALSE },
    { "key-agreement.bin", FALSE },
    { "one-rdn.bin", FALSE },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (seeds); i++)
    {
      g_autofree gchar *path = g_build_filename (corpus_path, seeds[i].file, NULL);
      g_autofree gchar *data = NULL;
      gsize len = 0;
      g_assert_true (g_file_get_contents (path, &data, &len, NULL));
      g_assert_cmpuint (len, >, 2);
      gsize n = ((gsize) (guint8) data[0] << 8) | (guint8) data[1];
      g_assert_cmpuint (n, <, len - 2);
      const unsigned char *p = (const unsigned char *) data + 2;
      g_autoptr(X509) pai = d2i_X509 (NULL, &p, (long) n);
      g_assert_nonnull (pai);
      g_assert_true (p == (const unsigned char *) data + 2 + n);
      g_autoptr(X509) dac = d2i_X509 (NULL, &p, (long) (len - 2 - n));
      g_assert_nonnull (dac);
      g_assert_true (p == (const unsigned char *) data + len);

      g_autofree gchar *pai_file = g_strdup_printf ("pai-%" G_GSIZE_FORMAT ".pem", i);
      g_autofree gchar *dac_file = g_strdup_printf ("dac-%" G_GSIZE_FORMAT ".pem", i);
      g_autofree gchar *pai_pem = write_pem (dir, pai_file, pai);
      g_autofree gchar *dac_pem = write_pem (dir, dac_file, dac);
      g_autoptr(GError) error = NULL;
      gboolean ok = st_matter_dac_check (dac, pai, &error);
      g_autofree gchar *py_err = NULL;
      int py = run_checker ("dac", pai_pem, dac_pem, &py_err);
      g_test_message ("%s: C %s; check-dac.py exit %d: %s", seeds[i].file, ok ? "passes" : error->message, py, py_err);
      g_assert_cmpint (ok, ==, seeds[i].good);
      g_assert_cmpint (py, ==, seeds[i].good ? 0 : 1);
    }
  st_rm_rf (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  if (argc != 4)
    {
      g_printerr ("usage: %s PYTHON CHECK-DAC.PY SEED-DIR\n", argv[0]);
      return 2;
    }
  python_path = argv[1];
  checker_path = argv[2];
  corpus_path = argv[3];
  g_test_add_func ("/matter-dac/good-chain", test_good_chain);
  g_test_add_func ("/matter-dac/issue-mutations", test_issue_mutations);
  g_test_add_func ("/matter-dac/dac-mutations", test_dac_mutations);
  g_test_add_func ("/matter-dac/pai-without-pid", test_pai_without_pid);
  g_test_add_func ("/matter-dac/pai-mutations", test_pai_mutations);
  g_test_add_func ("/matter-dac/paa-mutations", test_paa_mutations);
  g_test_add_func ("/matter-dac/name-ids", test_name_ids);
  g_test_add_func ("/matter-dac/profile", test_profile_matter);
  g_test_add_func ("/matter-dac/profile-refusals", test_profile_matter_refusals);
  g_test_add_func ("/matter-dac/profile-certification-declaration", test_profile_certification_declaration);
  g_test_add_func ("/matter-dac/issue", test_issue_matter);
  g_test_add_func ("/matter-dac/foreign-chains", test_foreign_chains);
  return g_test_run ();
}
