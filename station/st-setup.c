#include "st-setup.h"

#include <errno.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <string.h>
#include <time.h>

#include "st-auth.h"
#include "st-ca.h"
#include "st-error.h"
#include "st-hsm.h"
#include "st-ceremony.h"
#include "st-issue.h"
#include "st-matter-cd.h"
#include "st-matter-dac.h"
#include "st-ossl.h"
#include "st-util.h"

/* Present while a demo set-up is under way; station.conf is written
 * last, then this goes. */
#define ST_SETUP_MARKER ".setup-demo-incomplete"
#define ST_SETUP_RM_DEPTH 8

/* What a demo set-up writes into HOME (besides station.conf). */
static const char *const st_setup_demo_entries[] = {
  "softhsm2.conf", "tokens", "ca", "ca-chain.pem", "demo-root.pem", ST_SETUP_MARKER,
  /* a Matter demo's Certification Declaration and its signer */
  "matter",
  /* the database, which holds the demo operators from the end of a set-up on */
  "station.db", "station.db-wal", "station.db-shm", NULL,
};

static const guint8 st_setup_root_id[] = { 0x01 };
static const guint8 st_setup_ca_id[] = { 0x02 };
static const guint8 st_setup_signing_id[] = { 0x03 };
static const guint8 st_setup_cd_id[] = { 0x04 };

#define ST_SETUP_ROOT_DAYS (20 * 365 + 5)
#define ST_SETUP_CA_DAYS (10 * 365 + 3)
#define ST_SETUP_SIGNING_DAYS (5 * 365 + 1)

/* ---- files ------------------------------------------------------------------ */

/* Removes @path and, for a folder, what it holds; never follows a
 * symbolic link. */
static gboolean
st_setup_rm_rf (const char *path, guint depth, GError **error)
{
  GStatBuf st;
  if (g_lstat (path, &st) != 0)
    {
      if (errno == ENOENT)
        return TRUE;
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, _("cannot remove %s: %s"), path, g_strerror (errno));
      return FALSE;
    }
  if (S_ISDIR (st.st_mode))
    {
      if (depth > ST_SETUP_RM_DEPTH)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_WRITE, _("cannot remove %s: nested too deep"), path);
          return FALSE;
        }
      g_autoptr(GError) local = NULL;
      g_autoptr(GDir) dir = g_dir_open (path, 0, &local);
      if (dir == NULL)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_WRITE, _("cannot remove %s: %s"), path, local->message);
          return FALSE;
        }
      const char *name;
      while ((name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree gchar *child = g_build_filename (path, name, NULL);
          if (!st_setup_rm_rf (child, depth + 1, error))
            return FALSE;
        }
      if (g_rmdir (path) != 0)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_WRITE, _("cannot remove %s: %s"), path, g_strerror (errno));
          return FALSE;
        }
      return TRUE;
    }
  if (g_unlink (path) != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, _("cannot remove %s: %s"), path, g_strerror (errno));
      return FALSE;
    }
  return TRUE;
}

static gboolean
st_setup_mkdir (const char *path, int mode, GError **error)
{
  if (g_mkdir_with_parents (path, mode) != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, _("cannot create %s: %s"), path, g_strerror (errno));
      return FALSE;
    }
  if (g_chmod (path, mode) != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, _("cannot set the mode of %s: %s"), path,
                   g_strerror (errno));
      return FALSE;
    }
  return TRUE;
}

static gboolean
st_setup_is_demo_entry (const char *name)
{
  return g_strv_contains ((const gchar *const *) st_setup_demo_entries, name);
}

/* ---- certificates ------------------------------------------------------------- */

typedef enum {
  ST_SETUP_CERT_ROOT,
  ST_SETUP_CERT_ISSUING,
  ST_SETUP_CERT_SIGNING,
  ST_SETUP_CERT_CD_SIGNER,  /* a Matter demo's Certification Declaration signer */
} StSetupCertKind;

static gboolean
st_setup_add_ext (X509 *cert, X509V3_CTX *ctx, int nid, const char *value, GError **error)
{
  g_autoptr(X509_EXTENSION) ext = X509V3_EXT_conf_nid (NULL, ctx, nid, value);
  if (ext == NULL || X509_add_ext (cert, ext, -1) != 1)
    {
      g_autofree gchar *what = g_strdup_printf (_("cannot add the extension %s=%s"), OBJ_nid2sn (nid), value);
      st_error_set_openssl (error, ST_ERROR_INTERNAL, what);
      return FALSE;
    }
  return TRUE;
}

/* A 128-bit positive serial from the token's RNG. */
static gboolean
st_setup_set_serial (StHsm *hsm, X509 *cert, GError **error)
{
  guint8 s[16];
  do
    {
      if (!st_hsm_random (hsm, s, sizeof s, error))
        return FALSE;
      s[0] &= 0x7f;
    }
  while (s[0] == 0);
  g_autoptr(BIGNUM) bn = BN_bin2bn (s, sizeof s, NULL);
  if (bn == NULL || BN_to_ASN1_INTEGER (bn, X509_get_serialNumber (cert)) == NULL)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "cannot set the serial number");
      return FALSE;
    }
  return TRUE;
}

/* A certificate for @pub signed inside the token by @issuer_key
 * (@issuer NULL: self-signed); @matter_vid (NULL: none) goes into the
 * subject in an RDN of its own, as a Matter PAA or PAI carries it. */
static X509 *
st_setup_make_cert_vid (StHsm *hsm, StSetupCertKind kind, const char *cn, const char *matter_vid,
                        EVP_PKEY *pub, X509 *issuer, EVP_PKEY *issuer_key, GError **error)
{
  g_autoptr(X509) cert = X509_new ();
  g_autoptr(X509_NAME) name = X509_NAME_new ();
  if (X509_set_version (cert, X509_VERSION_3) != 1 ||
      X509_NAME_add_entry_by_txt (name, "O", MBSTRING_UTF8, (const unsigned char *) "Station Demo", -1, -1, 0) != 1 ||
      X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_UTF8, (const unsigned char *) cn, -1, -1, 0) != 1 ||
      (matter_vid != NULL &&
       X509_NAME_add_entry_by_txt (name, ST_MATTER_OID_VID, V_ASN1_UTF8STRING,
                                   (const unsigned char *) matter_vid, -1, -1, 0) != 1) ||
      X509_set_subject_name (cert, name) != 1 ||
      X509_set_issuer_name (cert, issuer != NULL ? X509_get_subject_name (issuer) : name) != 1 ||
      X509_set_pubkey (cert, pub) != 1)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "cannot build the certificate");
      return NULL;
    }
  if (!st_setup_set_serial (hsm, cert, error))
    return NULL;
  long days = kind == ST_SETUP_CERT_ROOT ? ST_SETUP_ROOT_DAYS
            : kind == ST_SETUP_CERT_ISSUING || kind == ST_SETUP_CERT_CD_SIGNER ? ST_SETUP_CA_DAYS
            : ST_SETUP_SIGNING_DAYS;
  if (X509_gmtime_adj (X509_getm_notBefore (cert), 0) == NULL ||
      X509_time_adj_ex (X509_getm_notAfter (cert), (int) days, 0, NULL) == NULL)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "cannot set the validity");
      return NULL;
    }
  X509V3_CTX ctx;
  X509V3_set_ctx (&ctx, issuer != NULL ? issuer : cert, cert, NULL, NULL, 0);
  gboolean ok;
  switch (kind)
    {
    case ST_SETUP_CERT_ROOT:
      ok = st_setup_add_ext (cert, &ctx, NID_basic_constraints, "critical,CA:TRUE", error) &&
           st_setup_add_ext (cert, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign", error) &&
           st_setup_add_ext (cert, &ctx, NID_subject_key_identifier, "hash", error);
      break;
    case ST_SETUP_CERT_ISSUING:
      ok = st_setup_add_ext (cert, &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0", error) &&
           st_setup_add_ext (cert, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign", error) &&
           st_setup_add_ext (cert, &ctx, NID_subject_key_identifier, "hash", error) &&
           st_setup_add_ext (cert, &ctx, NID_authority_key_identifier, "keyid:always", error);
      break;
    case ST_SETUP_CERT_CD_SIGNER:
      /* signs the CMS of a Certification Declaration, which names it by
       * its subjectKeyIdentifier (Matter Core spec 6.3.1) */
      ok = st_setup_add_ext (cert, &ctx, NID_basic_constraints, "critical,CA:FALSE", error) &&
           st_setup_add_ext (cert, &ctx, NID_key_usage, "critical,digitalSignature", error) &&
           st_setup_add_ext (cert, &ctx, NID_subject_key_identifier, "hash", error);
      break;
    case ST_SETUP_CERT_SIGNING:
    default:
      /* emailProtection: `openssl cms -verify` checks the S/MIME signing
       * purpose by default; codeSigning for signed manifests; the
       * station-signing purpose, which no device certificate carries, is
       * what verifiers pin (st_ca_check_station_signer). */
      ok = st_setup_add_ext (cert, &ctx, NID_basic_constraints, "critical,CA:FALSE", error) &&
           st_setup_add_ext (cert, &ctx, NID_key_usage, "critical,digitalSignature", error) &&
           st_setup_add_ext (cert, &ctx, NID_ext_key_usage,
                                "codeSigning,emailProtection," ST_OID_STATION_SIGNING, error) &&
           st_setup_add_ext (cert, &ctx, NID_subject_key_identifier, "hash", error) &&
           st_setup_add_ext (cert, &ctx, NID_authority_key_identifier, "keyid:always", error);
      break;
    }
  if (!ok)
    return NULL;
  st_hsm_lock (hsm);
  int signed_len = X509_sign (cert, issuer_key, EVP_sha256 ());
  st_hsm_unlock (hsm);
  if (signed_len <= 0)
    {
      g_autofree gchar *what = g_strdup_printf (_("cannot sign '%s' in the token"), cn);
      st_error_set_openssl (error, ST_ERROR_INTERNAL, what);
      return NULL;
    }
  EVP_PKEY *check = issuer != NULL ? X509_get0_pubkey (issuer) : pub;
  if (X509_verify (cert, check) != 1)
    {
      g_autofree gchar *what = g_strdup_printf (_("the token's signature on '%s' does not verify"), cn);
      st_error_set_openssl (error, ST_ERROR_VERIFY_FAILED, what);
      return NULL;
    }
  return g_steal_pointer (&cert);
}

static X509 *
st_setup_make_cert (StHsm *hsm, StSetupCertKind kind, const char *cn, EVP_PKEY *pub, X509 *issuer,
                    EVP_PKEY *issuer_key, GError **error)
{
  return st_setup_make_cert_vid (hsm, kind, cn, NULL, pub, issuer, issuer_key, error);
}

static gchar *
st_setup_random_hex (StHsm *hsm, gsize n, GError **error)
{
  guint8 buf[32];
  g_return_val_if_fail (n <= sizeof buf, NULL);
  if (hsm != NULL)
    {
      if (!st_hsm_random (hsm, buf, n, error))
        return NULL;
    }
  else if (RAND_priv_bytes (buf, (int) n) != 1)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "RAND_priv_bytes");
      return NULL;
    }
  gchar *hex = st_hex_encode (buf, n);
  st_memwipe (buf, sizeof buf);
  return hex;
}

/* ---- the check of a complete demo ----------------------------------------------- */

static gboolean
st_setup_check_key (StHsm *hsm, const char *uri, GError **error)
{
  gboolean sensitive = FALSE, extractable = TRUE, never = FALSE;
  if (!st_hsm_get_key_flags (hsm, uri, &sensitive, &extractable, &never, error))
    return FALSE;
  if (!sensitive || extractable)
    {
      if (!sensitive)
        g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                     _("%s is not sensitive: a CA key must be sensitive and not extractable"), uri);
      else
        g_set_error (error, ST_ERROR, ST_ERROR_VERIFY_FAILED,
                     _("%s is extractable: a CA key must be sensitive and not extractable"), uri);
      return FALSE;
    }
  return TRUE;
}

static gboolean
st_setup_check_demo (StConfig *config, const char *pin, GError **error)
{
  g_autoptr(StCa) ca = st_ca_open (config, pin, error);
  if (ca == NULL)
    return FALSE;
  struct {
    const char *label;
    const guint8 *id;
  } keys[] = {
    { ST_SETUP_ROOT_LABEL, st_setup_root_id },
    { ST_SETUP_CA_LABEL, st_setup_ca_id },
    { ST_SETUP_SIGNING_LABEL, st_setup_signing_id },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (keys); i++)
    {
      g_autofree gchar *key_uri = st_hsm_uri_build (config->hsm_token, keys[i].label, keys[i].id, 1, "private");
      g_autofree gchar *cert_uri = st_hsm_uri_build (config->hsm_token, keys[i].label, keys[i].id, 1, "cert");
      if (!st_setup_check_key (ca->hsm, key_uri, error))
        return FALSE;
      g_autoptr(X509) cert = st_hsm_get_certificate (ca->hsm, cert_uri, error);
      if (cert == NULL)
        return FALSE;
    }
  if (config->matter_vendor_id != NULL)
    {
      /* a Matter demo: the PAA and PAI rules, the CD signer and the CD */
      g_autofree gchar *cd_key = st_hsm_uri_build (config->hsm_token, ST_SETUP_CD_LABEL, st_setup_cd_id, 1, "private");
      g_autofree gchar *cd_file = g_build_filename (config->home, ST_SETUP_MATTER_CD_FILE, NULL);
      if (!st_ceremony_matter_check (ca->root, ca->ca_cert, sk_X509_num (ca->chain), config->matter_vendor_id,
                                     config->matter_product_id, error)
          || !st_setup_check_key (ca->hsm, cd_key, error))
        return FALSE;
      if (!g_file_test (cd_file, G_FILE_TEST_IS_REGULAR))
        {
          g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND, _("the demo's Certification Declaration %s is missing"),
                       cd_file);
          return FALSE;
        }
    }
  return TRUE;
}

/* ---- the demo ----------------------------------------------------------------------- */

typedef enum {
  ST_SETUP_HOME_EMPTY,
  ST_SETUP_HOME_CONFIGURED,
} StSetupHomeState;

/* What the service running in HOME keeps there before any set-up: its
 * lock, its socket, its scratch folder. */
static gboolean
st_setup_is_service_entry (const char *name)
{
  return g_strcmp0 (name, "stationd.lock") == 0 || g_strcmp0 (name, "stationd.sock") == 0
         || g_strcmp0 (name, "scratch") == 0;
}

/* What HOME holds; removes a half-made demo; refuses unrelated files. */
static gboolean
st_setup_inspect_home (const char *home, StSetupHomeState *state, GError **error)
{
  GStatBuf st;
  if (g_lstat (home, &st) != 0)
    {
      if (errno != ENOENT)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_READ, _("cannot look at %s: %s"), home, g_strerror (errno));
          return FALSE;
        }
      *state = ST_SETUP_HOME_EMPTY;
      return TRUE;
    }
  if (!S_ISDIR (st.st_mode))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                   _("%s is not a folder: choose another --home for the demo"), home);
      return FALSE;
    }
  g_autofree gchar *conf = g_build_filename (home, ST_CONFIG_FILE, NULL);
  if (g_file_test (conf, G_FILE_TEST_EXISTS))
    {
      *state = ST_SETUP_HOME_CONFIGURED;
      return TRUE;
    }
  g_autofree gchar *marker = g_build_filename (home, ST_SETUP_MARKER, NULL);
  gboolean half_made = g_file_test (marker, G_FILE_TEST_EXISTS);
  g_autoptr(GError) local = NULL;
  g_autoptr(GDir) dir = g_dir_open (home, 0, &local);
  if (dir == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_READ, _("cannot list %s: %s"), home, local->message);
      return FALSE;
    }
  g_autoptr(GString) others = g_string_new (NULL);
  guint n_others = 0;
  const char *name;
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      if ((half_made && st_setup_is_demo_entry (name)) || st_setup_is_service_entry (name))
        continue;
      if (n_others++ < 5)
        g_string_append_printf (others, "%s%s", others->len > 0 ? ", " : "", name);
    }
  if (n_others > 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                   _("%s is not empty and holds no demo station (%s%s): 'setup demo' only "
                   "uses a new or empty folder; choose another --home"),
                   home, others->str, n_others > 5 ? ", ..." : "");
      return FALSE;
    }
  if (half_made)
    {
      g_message ("removing a half-made demo set-up in %s", home);
      /* the marker last: a crash in between leaves it in place */
      for (gsize i = 0; st_setup_demo_entries[i] != NULL; i++)
        {
          if (g_strcmp0 (st_setup_demo_entries[i], ST_SETUP_MARKER) == 0)
            continue;
          g_autofree gchar *p = g_build_filename (home, st_setup_demo_entries[i], NULL);
          if (!st_setup_rm_rf (p, 0, error))
            return FALSE;
        }
      if (!st_setup_rm_rf (marker, 0, error))
        return FALSE;
    }
  *state = ST_SETUP_HOME_EMPTY;
  return TRUE;
}

/* A Matter demo's test Certification Declaration (docs/matter.md): a
 * CD-signing key made in the token with a self-signed certificate
 * (HOME/matter/cd-signing.pem), and the CD for VID FFF1, PID 8000, signed
 * by it (HOME/matter/cd-FFF1-8000.der). */
static gboolean
st_setup_demo_matter_cd (StHsm *hsm, const char *home, GError **error)
{
  g_autofree gchar *dir = g_build_filename (home, "matter", NULL);
  if (!st_setup_mkdir (dir, 0700, error))
    return FALSE;
  g_autofree gchar *key_uri = st_hsm_generate_key (hsm, ST_SETUP_CD_LABEL, st_setup_cd_id, 1, ST_ALG_EC_P256, error);
  if (key_uri == NULL)
    return FALSE;
  g_autofree gchar *pub_uri = st_hsm_uri_with_type (key_uri, "public", error);
  if (pub_uri == NULL)
    return FALSE;
  g_autoptr(EVP_PKEY) pub = st_hsm_get_public_key (hsm, pub_uri, error);
  g_autoptr(EVP_PKEY) key = pub != NULL ? st_hsm_get_private_key (hsm, key_uri, error) : NULL;
  if (key == NULL)
    return FALSE;
  g_autoptr(X509) signer = st_setup_make_cert (hsm, ST_SETUP_CERT_CD_SIGNER, "Station Demo Matter CD Signer",
                                               pub, NULL, key, error);
  if (signer == NULL || !st_hsm_store_certificate (hsm, ST_SETUP_CD_LABEL, st_setup_cd_id, 1, signer, error))
    return FALSE;
  static const guint16 pids[] = { ST_SETUP_MATTER_PID };
  const StMatterCd cd = {
    .format_version = 1,
    .vendor_id = ST_SETUP_MATTER_VID,
    .product_ids = pids,
    .n_product_ids = G_N_ELEMENTS (pids),
    .device_type_id = ST_SETUP_MATTER_DEVICE_TYPE,
    .certificate_id = ST_SETUP_MATTER_CERT_ID,
    .security_level = 0,
    .security_information = 0,
    .version_number = 1,
    .certification_type = ST_MATTER_CD_TYPE_DEVELOPMENT,
  };
  g_autoptr(GBytes) tlv = st_matter_cd_encode (&cd, error);
  if (tlv == NULL)
    return FALSE;
  st_hsm_lock (hsm);
  g_autoptr(GBytes) cms = st_matter_cd_sign (tlv, signer, key, error);
  st_hsm_unlock (hsm);
  if (cms == NULL)
    return FALSE;
  g_autofree gchar *signer_pem = g_build_filename (home, ST_SETUP_MATTER_CD_SIGNER_FILE, NULL);
  g_autofree gchar *cd_file = g_build_filename (home, ST_SETUP_MATTER_CD_FILE, NULL);
  gsize len = 0;
  const char *der = g_bytes_get_data (cms, &len);
  return st_x509_write_pem_file (signer_pem, &signer, 1, error)
         && st_file_write_durable (cd_file, der, len, 0600, error);
}

static gboolean
st_setup_demo_make (const char *home, const char *pin, gboolean matter, GError **error)
{
  g_autofree gchar *marker = g_build_filename (home, ST_SETUP_MARKER, NULL);
  g_autofree gchar *tokens = g_build_filename (home, "tokens", NULL);
  g_autofree gchar *ca_dir = g_build_filename (home, "ca", NULL);
  g_autofree gchar *softhsm_conf = g_build_filename (home, "softhsm2.conf", NULL);
  if (!st_setup_mkdir (home, 0700, error))
    return FALSE;
  const char marker_text[] = "a demo set-up is under way or stopped half-way; 'station setup demo' redoes it\n";
  if (!st_file_write_durable (marker, marker_text, sizeof marker_text - 1, 0600, error) ||
      !st_setup_mkdir (tokens, 0700, error) || !st_setup_mkdir (ca_dir, 0700, error))
    return FALSE;
  g_autofree gchar *conf_text = g_strdup_printf ("# SoftHSM2 configuration of this demo station only\n"
                                                 "directories.tokendir = %s\n"
                                                 "objectstore.backend = file\n"
                                                 "log.level = ERROR\n"
                                                 "slots.removable = false\n",
                                                 tokens);
  if (!st_file_write_durable (softhsm_conf, conf_text, strlen (conf_text), 0600, error))
    return FALSE;
  g_setenv ("SOFTHSM2_CONF", softhsm_conf, TRUE);

  g_autoptr(StConfig) config = st_config_new (home);
  config->demo = TRUE;
  config->hsm_token = g_strdup (ST_SETUP_DEMO_TOKEN);
  config->softhsm2_conf = g_strdup (softhsm_conf);

  /* The token, with a random SO PIN that only the operator sees. */
  gchar *so_pin = st_setup_random_hex (NULL, 8, error);
  if (so_pin == NULL)
    return FALSE;
  gboolean ok = st_hsm_init_token (config->hsm_module, ST_SETUP_DEMO_TOKEN, so_pin, pin, error);
  if (ok)
    g_print (_("SO PIN of the demo token %s (shown once, not stored): %s\n"), ST_SETUP_DEMO_TOKEN, so_pin);
  st_hsm_pin_free (so_pin);
  if (!ok)
    return FALSE;

  g_autoptr(StHsm) hsm = st_hsm_open (config->hsm_module, ST_SETUP_DEMO_TOKEN, error);
  if (hsm == NULL || !st_hsm_login (hsm, pin, error))
    return FALSE;
  config->station_id = st_setup_random_hex (hsm, 8, error);
  if (config->station_id == NULL)
    return FALSE;

  /* The key ceremony: three key pairs made inside the token. */
  g_autofree gchar *root_uri = st_hsm_generate_key (hsm, ST_SETUP_ROOT_LABEL, st_setup_root_id, 1, ST_ALG_EC_P256, error);
  if (root_uri == NULL)
    return FALSE;
  config->ca_key_uri = st_hsm_generate_key (hsm, ST_SETUP_CA_LABEL, st_setup_ca_id, 1, ST_ALG_EC_P256, error);
  if (config->ca_key_uri == NULL)
    return FALSE;
  config->signing_key_uri = st_hsm_generate_key (hsm, ST_SETUP_SIGNING_LABEL, st_setup_signing_id, 1,
                                                 ST_ALG_EC_P256, error);
  if (config->signing_key_uri == NULL)
    return FALSE;

  g_autofree gchar *root_pub_uri = st_hsm_uri_with_type (root_uri, "public", error);
  g_autofree gchar *ca_pub_uri = root_pub_uri != NULL ? st_hsm_uri_with_type (config->ca_key_uri, "public", error) : NULL;
  g_autofree gchar *sig_pub_uri = ca_pub_uri != NULL ? st_hsm_uri_with_type (config->signing_key_uri, "public", error) : NULL;
  if (sig_pub_uri == NULL)
    return FALSE;
  g_autoptr(EVP_PKEY) root_pub = st_hsm_get_public_key (hsm, root_pub_uri, error);
  g_autoptr(EVP_PKEY) ca_pub = root_pub != NULL ? st_hsm_get_public_key (hsm, ca_pub_uri, error) : NULL;
  g_autoptr(EVP_PKEY) sig_pub = ca_pub != NULL ? st_hsm_get_public_key (hsm, sig_pub_uri, error) : NULL;
  if (sig_pub == NULL)
    return FALSE;
  g_autoptr(EVP_PKEY) root_key = st_hsm_get_private_key (hsm, root_uri, error);
  g_autoptr(EVP_PKEY) ca_key = root_key != NULL ? st_hsm_get_private_key (hsm, config->ca_key_uri, error) : NULL;
  if (ca_key == NULL)
    return FALSE;

  g_autofree gchar *signing_cn = g_strdup_printf ("Station Demo Signing %s", config->station_id);
  /* a Matter demo: the root is a PAA and the issuing CA a PAI of the
   * test vendor FFF1 (docs/matter.md) */
  const char *vid = matter ? ST_SETUP_MATTER_VID_TEXT : NULL;
  g_autoptr(X509) root = st_setup_make_cert_vid (hsm, ST_SETUP_CERT_ROOT,
                                                 matter ? "Station Demo Matter PAA" : "Station Demo Root CA", vid,
                                                 root_pub, NULL, root_key, error);
  if (root == NULL)
    return FALSE;
  g_autoptr(X509) ca = st_setup_make_cert_vid (hsm, ST_SETUP_CERT_ISSUING,
                                               matter ? "Station Demo Matter PAI" : "Station Demo Issuing CA", vid,
                                               ca_pub, root, root_key, error);
  if (ca == NULL)
    return FALSE;
  g_autoptr(X509) signing = st_setup_make_cert (hsm, ST_SETUP_CERT_SIGNING, signing_cn, sig_pub, ca, ca_key, error);
  if (signing == NULL)
    return FALSE;
  /* The private keys refer to the token: let go of them before it. */
  g_clear_pointer (&root_key, EVP_PKEY_free);
  g_clear_pointer (&ca_key, EVP_PKEY_free);

  if (!st_hsm_store_certificate (hsm, ST_SETUP_ROOT_LABEL, st_setup_root_id, 1, root, error) ||
      !st_hsm_store_certificate (hsm, ST_SETUP_CA_LABEL, st_setup_ca_id, 1, ca, error) ||
      !st_hsm_store_certificate (hsm, ST_SETUP_SIGNING_LABEL, st_setup_signing_id, 1, signing, error))
    return FALSE;
  if (matter)
    {
      config->matter_vendor_id = g_strdup (ST_SETUP_MATTER_VID_TEXT);
      if (!st_setup_demo_matter_cd (hsm, home, error))
        return FALSE;
    }

  g_autofree gchar *root_pem = g_build_filename (ca_dir, ST_SETUP_ROOT_LABEL ".pem", NULL);
  config->ca_cert = g_build_filename (ca_dir, ST_SETUP_CA_LABEL ".pem", NULL);
  config->signing_cert = g_build_filename (ca_dir, ST_SETUP_SIGNING_LABEL ".pem", NULL);
  config->chain_file = g_build_filename (home, "ca-chain.pem", NULL);
  config->root_file = g_build_filename (home, "demo-root.pem", NULL);
  config->signing_key_sha256 = st_x509_pubkey_sha256_hex (signing, error);
  if (config->signing_key_sha256 == NULL)
    return FALSE;
  X509 *chain[] = { ca, root };
  if (!st_x509_write_pem_file (root_pem, &root, 1, error) ||
      !st_x509_write_pem_file (config->ca_cert, &ca, 1, error) ||
      !st_x509_write_pem_file (config->signing_cert, &signing, 1, error) ||
      !st_x509_write_pem_file (config->chain_file, chain, G_N_ELEMENTS (chain), error) ||
      !st_x509_write_pem_file (config->root_file, &root, 1, error))
    return FALSE;
  g_clear_pointer (&hsm, st_hsm_free);

  /* Everything as the station will open it, before it is declared done. */
  if (!st_setup_check_demo (config, pin, error))
    {
      g_prefix_error (error, _("the new demo station does not check out: "));
      return FALSE;
    }
  if (!st_config_save (config, error))
    return FALSE;
  return st_setup_rm_rf (marker, 0, error);
}

/* One demo operator per role (st_auth_ensure_demo_operators), in the
 * station's database. */
static gboolean
st_setup_demo_operators (const char *home, GError **error)
{
  g_autoptr(StConfig) config = st_config_load (home, error);
  if (config == NULL)
    return FALSE;
  g_autoptr(StDb) db = st_db_open (config->db_path, error);
  if (db == NULL)
    return FALSE;
  return st_auth_ensure_demo_operators (db, error);
}

static gboolean
st_setup_demo_kind (const char *home_arg, const char *pin, gboolean matter, GError **error);

gboolean
st_setup_demo (const char *home_arg, const char *pin, GError **error)
{
  return st_setup_demo_kind (home_arg, pin, FALSE, error);
}

gboolean
st_setup_demo_matter (const char *home_arg, const char *pin, GError **error)
{
  return st_setup_demo_kind (home_arg, pin, TRUE, error);
}

static gboolean
st_setup_demo_kind (const char *home_arg, const char *pin, gboolean matter, GError **error)
{
  g_return_val_if_fail (home_arg != NULL, FALSE);
  if (pin == NULL || *pin == '\0' || strlen (pin) > ST_HSM_PIN_MAX)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_AUTH_FAILED,
                   _("the demo token needs a user PIN of 1 to %d characters (STATION_HSM_PIN)"), ST_HSM_PIN_MAX);
      return FALSE;
    }
  if (st_hsm_module_in_use (ST_SOFTHSM_MODULE))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_BUSY,
                   _("the SoftHSM2 module is in use in this process (an HSM handle is open): "
                   "close it before a demo set-up, which needs the module to read its own configuration"));
      return FALSE;
    }
  g_autofree gchar *home = g_canonicalize_filename (home_arg, NULL);
  StSetupHomeState state;
  if (!st_setup_inspect_home (home, &state, error))
    return FALSE;
  if (state == ST_SETUP_HOME_CONFIGURED)
    {
      g_autoptr(GError) local = NULL;
      g_autoptr(StConfig) config = st_config_load (home, &local);
      if (config == NULL)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                       _("%s holds a station.conf that setup demo cannot read (%s): it leaves it alone; "
                       "choose another --home"), home, local->message);
          return FALSE;
        }
      if (!config->demo)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                       _("%s holds a station that is not a demo (station.conf has demo=false): "
                       "setup demo leaves it alone; choose another --home"), home);
          return FALSE;
        }
      if (matter != (config->matter_vendor_id != NULL))
        {
          if (matter)
            g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                         _("%s holds a demo station that is not a Matter one: 'setup demo --matter' "
                           "leaves it alone; choose another --home"), home);
          else
            g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                         _("%s holds a Matter demo station: run 'setup demo --matter' to check it, "
                           "or choose another --home for a plain demo"), home);
          return FALSE;
        }
      if (!st_setup_check_demo (config, pin, error))
        {
          g_prefix_error (error, _("%s holds a demo station that does not check out: "), home);
          return FALSE;
        }
      /* a set-up that stopped after writing station.conf */
      g_autofree gchar *marker = g_build_filename (home, ST_SETUP_MARKER, NULL);
      return st_setup_rm_rf (marker, 0, error) && st_setup_demo_operators (home, error);
    }
  if (!st_setup_demo_make (home, pin, matter, error))
    {
      g_prefix_error (error, _("demo set-up in %s: "), home);
      return FALSE;
    }
  return st_setup_demo_operators (home, error);
}

/* ---- setup show ----------------------------------------------------------------------- */

static void
st_setup_show_cert (GString *out, const char *indent, X509 *cert)
{
  g_autofree gchar *subject = st_x509_name_text (X509_get_subject_name (cert));
  g_autofree gchar *issuer = st_x509_name_text (X509_get_issuer_name (cert));
  g_autofree gchar *from = st_asn1_time_text (X509_get0_notBefore (cert));
  g_autofree gchar *until = st_asn1_time_text (X509_get0_notAfter (cert));
  int days = 0, secs = 0;
  ASN1_TIME_diff (&days, &secs, NULL, X509_get0_notAfter (cert));
  g_autoptr(BIGNUM) serial = ASN1_INTEGER_to_BN (X509_get0_serialNumber (cert), NULL);
  char *serial_hex = serial != NULL ? BN_bn2hex (serial) : NULL;
  g_string_append_printf (out, "%ssubject:  %s\n", indent, subject);
  g_string_append_printf (out, "%sissuer:   %s\n", indent, issuer);
  g_string_append_printf (out, "%sserial:   %s\n", indent, serial_hex != NULL ? serial_hex : "?");
  g_string_append_printf (out, _("%svalid:    %s to %s (%s%d days left)\n"), indent, from, until,
                          days < 0 || (days == 0 && secs < 0) ? _("EXPIRED, ") : "", days);
  OPENSSL_free (serial_hex);
}

/* A certificate's section of `setup show`: @cert, or why it could not be
 * read (@local, cleared); the first such error goes to @error. */
static void
st_setup_show_loaded (GString *out, const char *title, const char *where, X509 *cert,
                      GError **local, gboolean *ok, GError **error)
{
  g_string_append_printf (out, "%s: %s\n", title, where);
  if (cert != NULL)
    st_setup_show_cert (out, "  ", cert);
  else
    {
      g_string_append_printf (out, _("  cannot read it: %s\n"), (*local)->message);
      if (*ok)
        g_propagate_error (error, g_steal_pointer (local));
      *ok = FALSE;
    }
  g_clear_error (local);
}

static void
st_setup_show_key (GString *out, const char *what, const char *uri, StHsm *hsm)
{
  g_string_append_printf (out, "%s: %s\n", what, uri);
  if (hsm == NULL)
    return;
  gboolean sensitive = FALSE, extractable = TRUE, never = FALSE;
  g_autoptr(GError) error = NULL;
  if (st_hsm_get_key_flags (hsm, uri, &sensitive, &extractable, &never, &error))
    g_string_append_printf (out, _("  in the token: %s, %s%s\n"), sensitive ? _("sensitive") : _("NOT SENSITIVE"),
                            extractable ? _("EXTRACTABLE") : _("not extractable"),
                            never ? _(", never extractable") : "");
  else
    g_string_append_printf (out, _("  cannot read its attributes: %s\n"), error->message);
}

gboolean
st_setup_show (StConfig *config, StCa *ca, GString *out, GError **error)
{
  g_return_val_if_fail (config != NULL && out != NULL, FALSE);
  g_string_append_printf (out, _("Station %s%s\n"), config->station_id, config->demo ? _(" (demo)") : "");
  g_string_append_printf (out, _("Home: %s\n"), config->home);
  g_string_append_printf (out, _("Configuration: %s\n"), config->path);
  g_string_append_printf (out, _("HSM module: %s\n"), config->hsm_module);
  if (config->softhsm2_conf != NULL)
    g_string_append_printf (out, _("SoftHSM2 configuration: %s\n"), config->softhsm2_conf);

  if (ca != NULL)
    {
      g_autofree gchar *desc = st_hsm_get_token_description (ca->hsm);
      g_string_append_printf (out, _("HSM token: %s (logged in)\n"), desc);
    }
  else
    g_string_append_printf (out, _("HSM token: %s (locked: an admin unlocks it with 'station unlock')\n"),
                            config->hsm_token);
  if (config->matter_vendor_id != NULL && config->matter_product_id != NULL)
    g_string_append_printf (out, _("Matter station: the root is a PAA and the issuing CA a PAI of VID %s "
                                   "and PID %s (station.conf [matter])\n"),
                            config->matter_vendor_id, config->matter_product_id);
  else if (config->matter_vendor_id != NULL)
    g_string_append_printf (out, _("Matter station: the root is a PAA and the issuing CA a PAI of VID %s "
                                   "(station.conf [matter])\n"), config->matter_vendor_id);
  st_setup_show_key (out, _("Issuing CA key"), config->ca_key_uri, ca != NULL ? ca->hsm : NULL);
  st_setup_show_key (out, _("Station signing key"), config->signing_key_uri, ca != NULL ? ca->hsm : NULL);
  if (config->awaiting_import)
    {
      g_string_append (out, _("Key ceremony: AWAITING IMPORT: the keys and their requests are made "
                       "('station ca init'); have the root sign issuing-ca.csr.pem and "
                       "station-signing.csr.pem, then run 'station ca import --chain FILE "
                       "--signing-cert FILE' (docs/ceremony.md)\n"));
      g_string_append_printf (out, _("Database: %s (%s)\n"), config->db_path,
                              g_file_test (config->db_path, G_FILE_TEST_EXISTS) ? _("present") : _("not created yet"));
      return TRUE;
    }
  g_string_append_printf (out, _("Key ceremony: %s\n"),
                          config->demo ? _("the demo's (keys and certificates made by 'setup demo')")
                                       : _("complete (certificates imported)"));

  gboolean ok = TRUE;
  g_autoptr(GError) local = NULL;
  g_autoptr(StX509Stack) chain = st_ca_load_chain_file (config->chain_file, &local);
  g_string_append_printf (out, _("Chain: %s\n"), config->chain_file);
  if (chain != NULL)
    for (int i = 0; i < sk_X509_num (chain); i++)
      {
        g_string_append_printf (out, "  [%d]\n", i);
        st_setup_show_cert (out, "    ", sk_X509_value (chain, i));
      }
  else
    {
      g_string_append_printf (out, _("  cannot read it: %s\n"), local->message);
      if (ok)
        g_propagate_error (error, g_steal_pointer (&local));
      ok = FALSE;
    }
  g_clear_error (&local);
  g_autoptr(X509) root = st_ca_load_cert_file (config->root_file, &local);
  st_setup_show_loaded (out, _("Trusted root"), config->root_file, root, &local, &ok, error);
  g_autoptr(X509) signing = st_ca_load_cert (ca != NULL ? ca->hsm : NULL, config->signing_cert, &local);
  st_setup_show_loaded (out, _("Station signing certificate"), config->signing_cert, signing, &local,
                        &ok, error);
  g_string_append_printf (out, _("Station signing key pin (SHA-256 of its public key): %s\n"),
                          config->signing_key_sha256 != NULL ? config->signing_key_sha256 : _("NOT SET"));
  if (signing != NULL)
    {
      g_autoptr(GError) pin_error = NULL;
      if (!st_ca_check_station_signer (signing, config->signing_key_sha256, &pin_error))
        {
          g_string_append_printf (out, _("  FAILED: %s\n"), pin_error->message);
          if (ok)
            g_propagate_error (error, g_steal_pointer (&pin_error));
          ok = FALSE;
        }
    }
  g_string_append_printf (out, _("Database: %s (%s)\n"), config->db_path,
                          g_file_test (config->db_path, G_FILE_TEST_EXISTS) ? _("present") : _("not created yet"));
  if (ca != NULL)
    g_string_append (out, _("Check: the keys match their certificates and the chain verifies to the root "
                     "(checked when the HSM was unlocked)\n"));
  return ok;
}

/* ---- setup show as values (SetupInfo) ------------------------------------------------ */

/* Seconds since 1970 of @t; 0 when it does not convert. */
static gint64
st_setup_asn1_unix (const ASN1_TIME *t)
{
  struct tm tm;
  if (t == NULL || ASN1_TIME_to_tm (t, &tm) != 1)
    return 0;
  return (gint64) timegm (&tm);
}

/* A certificate's a{sv}: subject, issuer (RFC 4514), serial (hex),
 * not-before, not-after (unix time), days-left; or "error" (@local). */
static GVariant *
st_setup_info_cert (const char *file, X509 *cert, const GError *local)
{
  GVariantBuilder d;
  g_variant_builder_init (&d, G_VARIANT_TYPE_VARDICT);
  if (file != NULL)
    g_variant_builder_add (&d, "{sv}", "file", g_variant_new_string (file));
  if (cert == NULL)
    {
      g_variant_builder_add (&d, "{sv}", "error",
                             g_variant_new_string (local != NULL ? local->message : _("not readable")));
      return g_variant_builder_end (&d);
    }
  g_autofree gchar *subject = st_x509_name_text (X509_get_subject_name (cert));
  g_autofree gchar *issuer = st_x509_name_text (X509_get_issuer_name (cert));
  g_autoptr(BIGNUM) serial = ASN1_INTEGER_to_BN (X509_get0_serialNumber (cert), NULL);
  char *serial_hex = serial != NULL ? BN_bn2hex (serial) : NULL;
  int days = 0, secs = 0;
  ASN1_TIME_diff (&days, &secs, NULL, X509_get0_notAfter (cert));
  g_variant_builder_add (&d, "{sv}", "subject", g_variant_new_string (subject));
  g_variant_builder_add (&d, "{sv}", "issuer", g_variant_new_string (issuer));
  g_variant_builder_add (&d, "{sv}", "serial", g_variant_new_string (serial_hex != NULL ? serial_hex : ""));
  g_variant_builder_add (&d, "{sv}", "not-before",
                         g_variant_new_int64 (st_setup_asn1_unix (X509_get0_notBefore (cert))));
  g_variant_builder_add (&d, "{sv}", "not-after",
                         g_variant_new_int64 (st_setup_asn1_unix (X509_get0_notAfter (cert))));
  g_variant_builder_add (&d, "{sv}", "days-left", g_variant_new_int32 (days));
  OPENSSL_free (serial_hex);
  return g_variant_builder_end (&d);
}

/* A key's a{sv}: its uri, and its flags in the token when it is open. */
static GVariant *
st_setup_info_key (const char *uri, StHsm *hsm)
{
  GVariantBuilder d;
  g_variant_builder_init (&d, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&d, "{sv}", "uri", g_variant_new_string (uri != NULL ? uri : ""));
  gboolean sensitive = FALSE, extractable = TRUE, never = FALSE;
  g_autoptr(GError) error = NULL;
  if (hsm != NULL && uri != NULL)
    {
      if (st_hsm_get_key_flags (hsm, uri, &sensitive, &extractable, &never, &error))
        {
          g_variant_builder_add (&d, "{sv}", "sensitive", g_variant_new_boolean (sensitive));
          g_variant_builder_add (&d, "{sv}", "extractable", g_variant_new_boolean (extractable));
          g_variant_builder_add (&d, "{sv}", "never-extractable", g_variant_new_boolean (never));
        }
      else
        g_variant_builder_add (&d, "{sv}", "error", g_variant_new_string (error->message));
    }
  return g_variant_builder_end (&d);
}

GVariant *
st_setup_info (StConfig *config, StCa *ca)
{
  GVariantBuilder d;
  g_variant_builder_init (&d, G_VARIANT_TYPE_VARDICT);
#define ST_ADD_S(key, value) \
  do { if ((value) != NULL) g_variant_builder_add (&d, "{sv}", (key), g_variant_new_string (value)); } while (0)
  ST_ADD_S ("station-id", config->station_id);
  g_variant_builder_add (&d, "{sv}", "demo", g_variant_new_boolean (config->demo));
  ST_ADD_S ("home", config->home);
  ST_ADD_S ("configuration", config->path);
  ST_ADD_S ("hsm-module", config->hsm_module);
  ST_ADD_S ("softhsm2-conf", config->softhsm2_conf);
  ST_ADD_S ("hsm-token", config->hsm_token);
  g_variant_builder_add (&d, "{sv}", "unlocked", g_variant_new_boolean (ca != NULL));
  if (ca != NULL)
    {
      g_autofree gchar *desc = st_hsm_get_token_description (ca->hsm);
      ST_ADD_S ("token-description", desc);
    }
  g_variant_builder_add (&d, "{sv}", "ca-key", st_setup_info_key (config->ca_key_uri, ca != NULL ? ca->hsm : NULL));
  g_variant_builder_add (&d, "{sv}", "signing-key",
                         st_setup_info_key (config->signing_key_uri, ca != NULL ? ca->hsm : NULL));
  g_variant_builder_add (&d, "{sv}", "ceremony",
                         g_variant_new_string (config->awaiting_import ? "awaiting-import"
                                               : config->demo ? "demo" : "complete"));
  GVariantBuilder db;
  g_variant_builder_init (&db, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&db, "{sv}", "file", g_variant_new_string (config->db_path != NULL ? config->db_path : ""));
  g_variant_builder_add (&db, "{sv}", "present",
                         g_variant_new_boolean (config->db_path != NULL
                                                && g_file_test (config->db_path, G_FILE_TEST_EXISTS)));
  g_variant_builder_add (&d, "{sv}", "database", g_variant_builder_end (&db));
  if (config->matter_vendor_id != NULL)
    {
      /* a Matter station (station.conf [matter]): its PAI's VID and PID */
      ST_ADD_S ("matter-vendor-id", config->matter_vendor_id);
      ST_ADD_S ("matter-product-id", config->matter_product_id);
    }
  if (config->awaiting_import)
    return g_variant_builder_end (&d);

  g_autoptr(GError) local = NULL;
  g_autoptr(StX509Stack) chain = st_ca_load_chain_file (config->chain_file, &local);
  ST_ADD_S ("chain-file", config->chain_file);
  if (chain != NULL)
    {
      GVariantBuilder a;
      g_variant_builder_init (&a, G_VARIANT_TYPE ("aa{sv}"));
      for (int i = 0; i < sk_X509_num (chain); i++)
        g_variant_builder_add_value (&a, st_setup_info_cert (NULL, sk_X509_value (chain, i), NULL));
      g_variant_builder_add (&d, "{sv}", "chain", g_variant_builder_end (&a));
    }
  else
    ST_ADD_S ("chain-error", local->message);
  g_clear_error (&local);
  g_autoptr(X509) root = st_ca_load_cert_file (config->root_file, &local);
  g_variant_builder_add (&d, "{sv}", "root", st_setup_info_cert (config->root_file, root, local));
  g_clear_error (&local);
  g_autoptr(X509) signing = st_ca_load_cert (ca != NULL ? ca->hsm : NULL, config->signing_cert, &local);
  g_variant_builder_add (&d, "{sv}", "signing-cert", st_setup_info_cert (config->signing_cert, signing, local));
  ST_ADD_S ("signing-key-sha256", config->signing_key_sha256);
  if (signing != NULL)
    {
      g_autoptr(GError) pin_error = NULL;
      gboolean pin_ok = st_ca_check_station_signer (signing, config->signing_key_sha256, &pin_error);
      g_variant_builder_add (&d, "{sv}", "signer-pin-ok", g_variant_new_boolean (pin_ok));
      if (!pin_ok)
        ST_ADD_S ("signer-pin-error", pin_error->message);
    }
#undef ST_ADD_S
  return g_variant_builder_end (&d);
}
