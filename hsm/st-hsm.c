/* The HSM through libp11 and, where libp11 has no call for it (EC key
 * generation, attributes, certificate objects, random), through the
 * module's own PKCS#11 function list. See st-hsm.h. */
#include "st-hsm.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libp11.h>
#include <p11-kit/pkcs11.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>

#include "st-error.h"
#include "st-ossl.h"
#include "st-util.h"

/* Hard limits for what the token hands back. */
#define ST_HSM_ATTR_MAX (64 * 1024)
#define ST_HSM_FIND_MAX 8
#define ST_HSM_PIN_PAGE 4096

/* ---- CK_RV names ---------------------------------------------------- */

typedef struct {
  CK_RV rv;
  const char *name;
} StCkrName;

#define CKR_NAME(x) { x, #x }
static const StCkrName st_ckr_names[] = {
#include "st-hsm-ckr.inc"
};
#undef CKR_NAME

static const char *
st_hsm_ckr_name (CK_RV rv)
{
  for (gsize i = 0; i < G_N_ELEMENTS (st_ckr_names); i++)
    if (st_ckr_names[i].rv == rv)
      return st_ckr_names[i].name;
  return (rv & CKR_VENDOR_DEFINED) ? "CKR_VENDOR_DEFINED" : "CKR_UNKNOWN";
}

static StError
st_hsm_ckr_code (CK_RV rv)
{
  switch (rv)
    {
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
    case CKR_PIN_EXPIRED:
    case CKR_USER_NOT_LOGGED_IN:
    case CKR_USER_PIN_NOT_INITIALIZED:
      return ST_ERROR_AUTH_FAILED;
    case CKR_PIN_LOCKED:
    case CKR_KEY_FUNCTION_NOT_PERMITTED:
    case CKR_TOKEN_WRITE_PROTECTED:
    case CKR_ACTION_PROHIBITED:
      return ST_ERROR_PERMISSION_DENIED;
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_DEVICE_REMOVED:
    case CKR_SLOT_ID_INVALID:
    case CKR_OBJECT_HANDLE_INVALID:
      return ST_ERROR_NOT_FOUND;
    case CKR_FUNCTION_NOT_SUPPORTED:
    case CKR_MECHANISM_INVALID:
    case CKR_CURVE_NOT_SUPPORTED:
      return ST_ERROR_NOT_SUPPORTED;
    case CKR_SESSION_COUNT:
    case CKR_OPERATION_ACTIVE:
      return ST_ERROR_BUSY;
    case CKR_DEVICE_MEMORY:
      return ST_ERROR_WRITE;
    case CKR_DEVICE_ERROR:
      return ST_ERROR_READ;
    default:
      return ST_ERROR_INTERNAL;
    }
}

static void
st_hsm_set_ckr (GError **error, CK_RV rv, const char *what)
{
  g_set_error (error, ST_ERROR, st_hsm_ckr_code (rv), "%s: %s (0x%lx)", what,
               st_hsm_ckr_name (rv), (unsigned long) rv);
}

/* libp11 puts a failed call's CK_RV in the OpenSSL error queue under its
 * own library code, with prose reasons ("Device error"). The CKR_ names
 * instead, so that every message built from the queue (a failed X509_sign
 * with a key of the token, for one) names the CKR. Once per process,
 * after libp11 loaded its own strings. */
static ERR_STRING_DATA st_ckr_err_strings[G_N_ELEMENTS (st_ckr_names) + 1];

static gpointer
st_hsm_register_ckr_strings_once (gpointer data)
{
  gsize n = 0;
  for (gsize i = 0; i < G_N_ELEMENTS (st_ckr_names); i++)
    {
      if (st_ckr_names[i].rv == CKR_OK || st_ckr_names[i].rv > ERR_REASON_MASK)
        continue;
      st_ckr_err_strings[n].error = ERR_PACK (0, 0, (unsigned long) st_ckr_names[i].rv);
      st_ckr_err_strings[n].string = st_ckr_names[i].name;
      n++;
    }
  st_ckr_err_strings[n].error = 0;
  st_ckr_err_strings[n].string = NULL;
  ERR_load_strings (ERR_get_CKR_code (), st_ckr_err_strings);
  return NULL;
}

static void
st_hsm_register_ckr_strings (void)
{
  static GOnce once = G_ONCE_INIT;
  g_once (&once, st_hsm_register_ckr_strings_once, NULL);
}

gulong
st_hsm_peek_error_ckr (void)
{
  int ckr_lib = ERR_get_CKR_code ();
  unsigned long codes[32];
  gsize n = 0;
  unsigned long e;
  gulong rv = CKR_OK;
  /* OpenSSL reads its queue only from the oldest end: take it all, note
   * the newest CKR (the one that ended the call) and raise the same
   * errors again, in the same order. */
  while ((e = ERR_get_error ()) != 0)
    {
      if (ERR_GET_LIB (e) == ckr_lib)
        rv = (gulong) ERR_GET_REASON (e);
      if (n < G_N_ELEMENTS (codes))
        codes[n++] = e;
    }
  for (gsize i = 0; i < n; i++)
    ERR_raise (ERR_GET_LIB (codes[i]), ERR_GET_REASON (codes[i]));
  return rv;
}

gboolean
st_hsm_ckr_is_session_lost (gulong ckr)
{
  switch (ckr)
    {
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_SESSION_CLOSED:
    case CKR_USER_NOT_LOGGED_IN:
    case CKR_OBJECT_HANDLE_INVALID:
    case CKR_KEY_HANDLE_INVALID:
    case CKR_DEVICE_REMOVED:
    case CKR_TOKEN_NOT_PRESENT:
      return TRUE;
    default:
      return FALSE;
    }
}

const char *
st_hsm_ckr_to_string (gulong ckr)
{
  return st_hsm_ckr_name ((CK_RV) ckr);
}

/* After a failed libp11 call: the CKR from the OpenSSL error queue, if
 * libp11 put one there, else the queue as it is. */
static void
st_hsm_set_p11_error (GError **error, const char *what)
{
  int ckr_lib = ERR_get_CKR_code ();
  unsigned long e;
  CK_RV rv = CKR_OK;
  while ((e = ERR_peek_error ()) != 0)
    {
      if (ERR_GET_LIB (e) == ckr_lib)
        {
          rv = (CK_RV) ERR_GET_REASON (e);
          break;
        }
      ERR_get_error ();
    }
  if (rv != CKR_OK)
    {
      ERR_clear_error ();
      st_hsm_set_ckr (error, rv, what);
      return;
    }
  st_error_set_openssl (error, ST_ERROR_INTERNAL, what);
}

/* ---- the module, shared in the process -------------------------------- */

/* libp11's slot lists are kept by the module until it is unloaded:
 * releasing one (PKCS11_release_all_slots) closes every session of its
 * slots, which would log out every other StHsm on the same token, and the
 * EVP_PKEYs taken from a list point into it. */
typedef struct {
  PKCS11_SLOT *slots;
  unsigned int n;
} StP11SlotList;

typedef struct {
  gchar *path;
  guint refs;
  PKCS11_CTX *ctx;
  void *dl;
  CK_FUNCTION_LIST_PTR fl;
  GPtrArray *slot_lists; /* of StP11SlotList, newest last */
  /* token label -> SHA-256 (salt, label, PIN) of the PIN the token last
   * accepted in this process: a second login while the token is already
   * logged in (C_Login answers CKR_USER_ALREADY_LOGGED_IN whatever the
   * PIN) is checked against it. Memory only. */
  GHashTable *pin_digests;
  guint8 salt[16];
} StP11Module;

static GMutex st_modules_lock;
static GSList *st_modules;

static StP11Module *
st_p11_module_acquire (const char *path, GError **error)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&st_modules_lock);
  for (GSList *l = st_modules; l != NULL; l = l->next)
    {
      StP11Module *m = l->data;
      if (g_strcmp0 (m->path, path) == 0)
        {
          m->refs++;
          return m;
        }
    }

  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                   "PKCS#11 module %s does not exist: install it or fix the module path", path);
      return NULL;
    }
  PKCS11_CTX *ctx = PKCS11_CTX_new ();
  if (ctx == NULL)
    {
      st_error_set_openssl (error, ST_ERROR_INTERNAL, "PKCS11_CTX_new");
      return NULL;
    }
  /* libp11 initialises the module (C_Initialize) here. */
  if (PKCS11_CTX_load (ctx, path) != 0)
    {
      g_autofree gchar *what = g_strdup_printf ("cannot load the PKCS#11 module %s", path);
      st_hsm_set_p11_error (error, what);
      PKCS11_CTX_free (ctx);
      return NULL;
    }
  st_hsm_register_ckr_strings ();
  /* The same module again, for the calls libp11 does not have: dlopen
   * hands back the already loaded library and its function list. */
  void *dl = dlopen (path, RTLD_NOW | RTLD_LOCAL);
  CK_C_GetFunctionList get_list = dl != NULL ? (CK_C_GetFunctionList) dlsym (dl, "C_GetFunctionList") : NULL;
  CK_FUNCTION_LIST_PTR fl = NULL;
  CK_RV rv = get_list != NULL ? get_list (&fl) : CKR_GENERAL_ERROR;
  if (rv == CKR_OK && fl != NULL)
    {
      rv = fl->C_Initialize (NULL);
      if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED)
        rv = CKR_OK;
    }
  if (rv != CKR_OK || fl == NULL)
    {
      g_autofree gchar *what = g_strdup_printf ("cannot get the function list of %s%s%s", path,
                                                dl == NULL ? ": " : "", dl == NULL ? dlerror () : "");
      st_hsm_set_ckr (error, rv, what);
      if (dl != NULL)
        dlclose (dl);
      PKCS11_CTX_unload (ctx);
      PKCS11_CTX_free (ctx);
      return NULL;
    }

  StP11Module *m = g_new0 (StP11Module, 1);
  m->path = g_strdup (path);
  m->refs = 1;
  m->ctx = ctx;
  m->dl = dl;
  m->fl = fl;
  m->slot_lists = g_ptr_array_new ();
  m->pin_digests = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  if (RAND_bytes (m->salt, sizeof m->salt) != 1)
    g_debug ("RAND_bytes failed: the PIN digests are unsalted");
  st_modules = g_slist_prepend (st_modules, m);
  return m;
}

/* The libp11 slot of the initialised token labelled @label: from the
 * newest list that has it, unless @fresh, else from a new list (new
 * tokens, fresh object handles). Lists the labels seen in @seen. */
static gboolean
st_p11_module_find_token (StP11Module *m, const char *label, gboolean fresh, GString *seen,
                          PKCS11_SLOT **found_out, GError **error)
{
  *found_out = NULL;
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&st_modules_lock);
  for (guint l = m->slot_lists->len; l > 0 && !fresh; l--)
    {
      StP11SlotList *list = g_ptr_array_index (m->slot_lists, l - 1);
      for (unsigned int i = 0; i < list->n; i++)
        {
          PKCS11_TOKEN *tok = list->slots[i].token;
          if (tok != NULL && tok->initialized && g_strcmp0 (tok->label, label) == 0)
            {
              *found_out = &list->slots[i];
              return TRUE;
            }
        }
    }
  StP11SlotList *list = g_new0 (StP11SlotList, 1);
  if (PKCS11_enumerate_slots (m->ctx, &list->slots, &list->n) != 0)
    {
      g_free (list);
      st_hsm_set_p11_error (error, "listing the slots of the PKCS#11 module");
      return FALSE;
    }
  g_ptr_array_add (m->slot_lists, list);
  PKCS11_SLOT *found = NULL;
  for (unsigned int i = 0; i < list->n; i++)
    {
      PKCS11_TOKEN *tok = list->slots[i].token;
      if (tok == NULL || !tok->initialized)
        continue;
      if (g_strcmp0 (tok->label, label) == 0 && found == NULL)
        found = &list->slots[i];
      g_string_append_printf (seen, "%s'%s'", seen->len > 0 ? ", " : "", tok->label);
    }
  *found_out = found;
  return TRUE;
}

gboolean
st_hsm_module_in_use (const char *module_path)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&st_modules_lock);
  for (GSList *l = st_modules; l != NULL; l = l->next)
    if (g_strcmp0 (((StP11Module *) l->data)->path, module_path) == 0)
      return TRUE;
  return FALSE;
}

static void
st_p11_module_release (StP11Module *m)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&st_modules_lock);
  if (--m->refs > 0)
    return;
  st_modules = g_slist_remove (st_modules, m);
  for (guint l = 0; l < m->slot_lists->len; l++)
    {
      StP11SlotList *list = g_ptr_array_index (m->slot_lists, l);
      PKCS11_release_all_slots (m->ctx, list->slots, list->n);
      g_free (list);
    }
  g_ptr_array_unref (m->slot_lists);
  g_hash_table_unref (m->pin_digests);
  st_memwipe (m->salt, sizeof m->salt);
  /* libp11 finalises the module (C_Finalize) in its unload: the next
   * load reads the module's configuration (SOFTHSM2_CONF) anew. */
  PKCS11_CTX_unload (m->ctx);
  PKCS11_CTX_free (m->ctx);
  dlclose (m->dl);
  g_free (m->path);
  g_free (m);
}

/* ---- pkcs11: URIs ------------------------------------------------------ */

typedef struct {
  gchar *token;
  gchar *object;
  GBytes *id;
  gchar *type;
} StP11Uri;

static void
st_p11_uri_free (StP11Uri *u)
{
  if (u == NULL)
    return;
  g_free (u->token);
  g_free (u->object);
  g_clear_pointer (&u->id, g_bytes_unref);
  g_free (u->type);
  g_free (u);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StP11Uri, st_p11_uri_free)

/* Percent-decodes @s (length @len); NULL on a bad escape or a NUL byte
 * when @allow_nul is FALSE. */
static GBytes *
st_p11_uri_unescape (const char *s, gsize len, gboolean allow_nul)
{
  GByteArray *out = g_byte_array_sized_new (len);
  for (gsize i = 0; i < len; i++)
    {
      guint8 c = (guint8) s[i];
      if (c == '%')
        {
          if (i + 2 >= len)
            {
              g_byte_array_unref (out);
              return NULL;
            }
          int hi = g_ascii_xdigit_value (s[i + 1]);
          int lo = g_ascii_xdigit_value (s[i + 2]);
          if (hi < 0 || lo < 0)
            {
              g_byte_array_unref (out);
              return NULL;
            }
          c = (guint8) (hi << 4 | lo);
          i += 2;
        }
      if (c == 0 && !allow_nul)
        {
          g_byte_array_unref (out);
          return NULL;
        }
      g_byte_array_append (out, &c, 1);
    }
  return g_byte_array_free_to_bytes (out);
}

static StP11Uri *
st_p11_uri_parse (const char *uri, GError **error)
{
  if (uri == NULL || !g_str_has_prefix (uri, "pkcs11:") || strlen (uri) > 4096)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "'%s' is not a pkcs11: URI (RFC 7512)", uri != NULL ? uri : "(null)");
      return NULL;
    }
  g_autoptr(StP11Uri) u = g_new0 (StP11Uri, 1);
  const char *path = uri + strlen ("pkcs11:");
  gsize path_len = strcspn (path, "?");
  g_autofree gchar *path_copy = g_strndup (path, path_len);
  g_auto(GStrv) attrs = g_strsplit (path_copy, ";", -1);
  for (gsize i = 0; attrs[i] != NULL; i++)
    {
      if (attrs[i][0] == '\0')
        continue;
      const char *eq = strchr (attrs[i], '=');
      if (eq == NULL)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "pkcs11: URI '%s': attribute '%s' has no value", uri, attrs[i]);
          return NULL;
        }
      g_autofree gchar *name = g_strndup (attrs[i], (gsize) (eq - attrs[i]));
      gboolean is_id = g_strcmp0 (name, "id") == 0;
      g_autoptr(GBytes) value = st_p11_uri_unescape (eq + 1, strlen (eq + 1), is_id);
      if (value == NULL)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "pkcs11: URI '%s': bad percent-encoding in '%s'", uri, name);
          return NULL;
        }
      gsize vlen = 0;
      const char *vdata = g_bytes_get_data (value, &vlen);
      if (is_id)
        {
          g_clear_pointer (&u->id, g_bytes_unref);
          u->id = g_steal_pointer (&value);
        }
      else if (g_strcmp0 (name, "object") == 0)
        {
          g_free (u->object);
          u->object = g_strndup (vdata, vlen);
        }
      else if (g_strcmp0 (name, "token") == 0)
        {
          g_free (u->token);
          u->token = g_strndup (vdata, vlen);
        }
      else if (g_strcmp0 (name, "type") == 0)
        {
          g_free (u->type);
          u->type = g_strndup (vdata, vlen);
        }
      /* other attributes (manufacturer, serial, model, library-*) are
       * not used to select among this station's objects */
    }
  if (u->object == NULL && u->id == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "pkcs11: URI '%s' names no object: give object= or id=", uri);
      return NULL;
    }
  return g_steal_pointer (&u);
}

static void
st_p11_uri_append_escaped (GString *s, const guint8 *data, gsize len, gboolean all)
{
  for (gsize i = 0; i < len; i++)
    {
      guint8 c = data[i];
      if (!all && (g_ascii_isalnum (c) || c == '-' || c == '.' || c == '_' || c == '~'))
        g_string_append_c (s, (gchar) c);
      else
        g_string_append_printf (s, "%%%02X", c);
    }
}

gchar *
st_hsm_uri_build (const char *token, const char *object, const guint8 *id, gsize id_len,
                  const char *type)
{
  GString *s = g_string_new ("pkcs11:");
  gboolean first = TRUE;
  if (token != NULL)
    {
      g_string_append (s, "token=");
      st_p11_uri_append_escaped (s, (const guint8 *) token, strlen (token), FALSE);
      first = FALSE;
    }
  if (object != NULL)
    {
      g_string_append (s, first ? "object=" : ";object=");
      st_p11_uri_append_escaped (s, (const guint8 *) object, strlen (object), FALSE);
      first = FALSE;
    }
  if (id != NULL && id_len > 0)
    {
      g_string_append (s, first ? "id=" : ";id=");
      st_p11_uri_append_escaped (s, id, id_len, TRUE);
      first = FALSE;
    }
  if (type != NULL)
    g_string_append_printf (s, "%stype=%s", first ? "" : ";", type);
  return g_string_free (s, FALSE);
}

gchar *
st_hsm_uri_with_type (const char *uri, const char *type, GError **error)
{
  g_autoptr(StP11Uri) u = st_p11_uri_parse (uri, error);
  if (u == NULL)
    return NULL;
  gsize id_len = 0;
  const guint8 *id = u->id != NULL ? g_bytes_get_data (u->id, &id_len) : NULL;
  return st_hsm_uri_build (u->token, u->object, id, id_len, type);
}

/* ---- the StHsm ---------------------------------------------------------- */

struct _StHsm {
  GRecMutex lock;
  StP11Module *mod;
  PKCS11_SLOT *slot; /* in one of the module's slot lists */
  CK_SLOT_ID slot_id;
  CK_SESSION_HANDLE session;
  gboolean have_session;
  guint login_generation;
  gchar *label;
  gchar *description;
  /* the kept PIN: one page, mlock'ed, wiped and unmapped on free */
  gchar *pin;
  gboolean pin_locked;
};

void
st_hsm_lock (StHsm *hsm)
{
  g_rec_mutex_lock (&hsm->lock);
}

void
st_hsm_unlock (StHsm *hsm)
{
  g_rec_mutex_unlock (&hsm->lock);
}

typedef StHsm StHsmLocker;
static inline StHsmLocker *
st_hsm_locker_new (StHsm *hsm)
{
  st_hsm_lock (hsm);
  return hsm;
}
static inline void
st_hsm_locker_free (StHsmLocker *hsm)
{
  st_hsm_unlock (hsm);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StHsmLocker, st_hsm_locker_free)

static void
st_hsm_forget_pin (StHsm *hsm)
{
  if (hsm->pin == NULL)
    return;
  st_memwipe (hsm->pin, ST_HSM_PIN_PAGE);
  if (hsm->pin_locked)
    munlock (hsm->pin, ST_HSM_PIN_PAGE);
  munmap (hsm->pin, ST_HSM_PIN_PAGE);
  hsm->pin = NULL;
  hsm->pin_locked = FALSE;
}

static gboolean
st_hsm_keep_pin (StHsm *hsm, const char *pin, GError **error)
{
  st_hsm_forget_pin (hsm);
  void *page = mmap (NULL, ST_HSM_PIN_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL, "cannot map memory for the PIN: %s",
                   g_strerror (errno));
      return FALSE;
    }
  /* Not in swap, not in core dumps. mlock can fail under a tight
   * RLIMIT_MEMLOCK; the PIN is still wiped on free. */
  hsm->pin_locked = mlock (page, ST_HSM_PIN_PAGE) == 0;
#ifdef MADV_DONTDUMP
  madvise (page, ST_HSM_PIN_PAGE, MADV_DONTDUMP);
#endif
  hsm->pin = page;
  memcpy (hsm->pin, pin, strlen (pin) + 1);
  return TRUE;
}

static void
st_hsm_pin_digest (StHsm *hsm, const char *pin, guint8 out[32])
{
  g_autoptr(EVP_MD_CTX) md = EVP_MD_CTX_new ();
  unsigned int len = 0;
  EVP_DigestInit_ex (md, EVP_sha256 (), NULL);
  EVP_DigestUpdate (md, hsm->mod->salt, sizeof hsm->mod->salt);
  EVP_DigestUpdate (md, hsm->label, strlen (hsm->label) + 1);
  EVP_DigestUpdate (md, pin, strlen (pin));
  EVP_DigestFinal_ex (md, out, &len);
}

static gboolean
st_hsm_open_session (StHsm *hsm, GError **error)
{
  CK_FUNCTION_LIST_PTR fl = hsm->mod->fl;
  CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
  CK_RV rv = fl->C_OpenSession (hsm->slot_id, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &session);
  if (rv != CKR_OK)
    {
      g_autofree gchar *what = g_strdup_printf ("C_OpenSession on token '%s'", hsm->label);
      st_hsm_set_ckr (error, rv, what);
      return FALSE;
    }
  hsm->session = session;
  hsm->have_session = TRUE;
  return TRUE;
}

static CK_RV
st_hsm_c_login (StHsm *hsm, const char *pin)
{
  CK_RV rv = hsm->mod->fl->C_Login (hsm->session, CKU_USER, (CK_UTF8CHAR_PTR) pin, (CK_ULONG) strlen (pin));
  return rv == CKR_USER_ALREADY_LOGGED_IN ? CKR_OK : rv;
}

/* The raw session, alive, and logged in again if a PIN is kept. */
static gboolean
st_hsm_session (StHsm *hsm, CK_SESSION_HANDLE *session, GError **error)
{
  CK_FUNCTION_LIST_PTR fl = hsm->mod->fl;
  CK_SESSION_INFO info;
  CK_RV rv = hsm->have_session ? fl->C_GetSessionInfo (hsm->session, &info) : CKR_SESSION_HANDLE_INVALID;
  gboolean lost = FALSE;
  if (rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED || rv == CKR_DEVICE_REMOVED)
    {
      hsm->have_session = FALSE;
      lost = TRUE;
      /* Every session of the token went (a token reset, a forced
       * logout): libp11's session pool and its cached object handles are
       * dead. A new slot list gives fresh ones; the old one stays with the
       * module for the EVP_PKEYs that still point into it. */
      g_autoptr(GString) seen = g_string_new (NULL);
      PKCS11_SLOT *slot = NULL;
      if (!st_p11_module_find_token (hsm->mod, hsm->label, TRUE, seen, &slot, error))
        return FALSE;
      if (slot == NULL)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                         "the token '%s' is gone (tokens seen: %s): plug it in again", hsm->label,
                         seen->len > 0 ? seen->str : "none");
          return FALSE;
        }
      hsm->slot = slot;
      hsm->slot_id = PKCS11_get_slotid_from_slot (slot);
      if (hsm->pin != NULL)
        hsm->login_generation++;
      if (!st_hsm_open_session (hsm, error))
        return FALSE;
      rv = fl->C_GetSessionInfo (hsm->session, &info);
    }
  if (rv != CKR_OK)
    {
      st_hsm_set_ckr (error, rv, "C_GetSessionInfo");
      return FALSE;
    }
  if (hsm->pin != NULL && info.state != CKS_RW_USER_FUNCTIONS && info.state != CKS_RO_USER_FUNCTIONS)
    {
      rv = st_hsm_c_login (hsm, hsm->pin);
      if (rv != CKR_OK)
        {
          g_autofree gchar *what = g_strdup_printf ("logging in again to token '%s'", hsm->label);
          st_hsm_set_ckr (error, rv, what);
          /* The token refuses the kept PIN now: never try it again (each
           * wrong try brings the token closer to locking the PIN). */
          if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED || rv == CKR_PIN_EXPIRED ||
              rv == CKR_PIN_INVALID || rv == CKR_PIN_LEN_RANGE)
            {
              st_hsm_forget_pin (hsm);
              g_prefix_error (error, "the token no longer accepts the PIN: ");
            }
          return FALSE;
        }
      if (!lost)
        hsm->login_generation++;
      g_debug ("logged in again to token '%s' after a lost session", hsm->label);
    }
  *session = hsm->session;
  return TRUE;
}

StHsm *
st_hsm_open (const char *module_path, const char *token_label, GError **error)
{
  g_return_val_if_fail (module_path != NULL && token_label != NULL, NULL);
  StP11Module *mod = st_p11_module_acquire (module_path, error);
  if (mod == NULL)
    return NULL;

  g_autoptr(StHsm) hsm = g_new0 (StHsm, 1);
  g_rec_mutex_init (&hsm->lock);
  hsm->mod = mod;
  hsm->label = g_strdup (token_label);
  g_autoptr(GString) seen = g_string_new (NULL);
  if (!st_p11_module_find_token (mod, token_label, FALSE, seen, &hsm->slot, error))
    return NULL;
  if (hsm->slot == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                     "no token labelled '%s' in %s (tokens seen: %s): check the token label "
                     "in station.conf and that the token is plugged in",
                     token_label, module_path, seen->len > 0 ? seen->str : "none");
      return NULL;
    }
  hsm->slot_id = PKCS11_get_slotid_from_slot (hsm->slot);
  hsm->description = g_strdup_printf ("%s (%s %s, %s)", hsm->slot->token->label,
                                      hsm->slot->token->manufacturer, hsm->slot->token->model,
                                      hsm->slot->token->serialnr);
  if (!st_hsm_open_session (hsm, error))
    return NULL;
  return g_steal_pointer (&hsm);
}

gboolean
st_hsm_login (StHsm *hsm, const char *pin, GError **error)
{
  g_return_val_if_fail (hsm != NULL && pin != NULL, FALSE);
  g_autoptr(StHsmLocker) locker = st_hsm_locker_new (hsm);
  gsize len = strlen (pin);
  if (len == 0 || len > ST_HSM_PIN_MAX)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_AUTH_FAILED,
                   "the PIN must have 1 to %d characters", ST_HSM_PIN_MAX);
      return FALSE;
    }
  CK_SESSION_HANDLE session;
  if (!st_hsm_session (hsm, &session, error))
    return FALSE;
  CK_SESSION_INFO info;
  CK_RV rv = hsm->mod->fl->C_GetSessionInfo (session, &info);
  if (rv != CKR_OK)
    {
      st_hsm_set_ckr (error, rv, "C_GetSessionInfo");
      return FALSE;
    }
  guint8 digest[32];
  st_hsm_pin_digest (hsm, pin, digest);
  if (info.state == CKS_RW_USER_FUNCTIONS || info.state == CKS_RO_USER_FUNCTIONS)
    {
      /* Already logged in by this process: C_Login would accept any PIN. */
      g_autoptr(GMutexLocker) mlocker = g_mutex_locker_new (&st_modules_lock);
      const guint8 *known = g_hash_table_lookup (hsm->mod->pin_digests, hsm->label);
      if (known != NULL && CRYPTO_memcmp (known, digest, sizeof digest) != 0)
        rv = CKR_PIN_INCORRECT;
    }
  else
    {
      /* One C_Login logs the whole application in (every session on this
       * token, libp11's included). */
      rv = st_hsm_c_login (hsm, pin);
      if (rv == CKR_OK)
        {
          g_autoptr(GMutexLocker) mlocker = g_mutex_locker_new (&st_modules_lock);
          g_hash_table_insert (hsm->mod->pin_digests, g_strdup (hsm->label), g_memdup2 (digest, sizeof digest));
        }
    }
  st_memwipe (digest, sizeof digest);
  if (rv != CKR_OK)
    {
      g_autofree gchar *what = g_strdup_printf ("login to token '%s' failed", hsm->label);
      st_hsm_set_ckr (error, rv, what);
      if (rv == CKR_PIN_INCORRECT)
        g_prefix_error (error, "wrong PIN: ");
      return FALSE;
    }
  return st_hsm_keep_pin (hsm, pin, error);
}

gboolean
st_hsm_ensure_login (StHsm *hsm, GError **error)
{
  g_autoptr(StHsmLocker) locker = st_hsm_locker_new (hsm);
  CK_SESSION_HANDLE session;
  if (hsm->pin == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_AUTH_FAILED,
                   "not logged in to token '%s': give the PIN first", hsm->label);
      return FALSE;
    }
  return st_hsm_session (hsm, &session, error);
}

/* Finds the one object of @cls that @u names. */
static gboolean
st_hsm_find_object (StHsm *hsm, const char *uri, const StP11Uri *u, CK_OBJECT_CLASS cls,
                    CK_OBJECT_HANDLE *out, GError **error)
{
  CK_FUNCTION_LIST_PTR fl = hsm->mod->fl;
  if (u->token != NULL && g_strcmp0 (u->token, hsm->label) != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                   "%s names token '%s', but the station uses token '%s'", uri, u->token, hsm->label);
      return FALSE;
    }
  CK_SESSION_HANDLE session;
  if (!st_hsm_session (hsm, &session, error))
    return FALSE;
  CK_ATTRIBUTE tmpl[3];
  CK_ULONG n = 0;
  tmpl[n++] = (CK_ATTRIBUTE){ CKA_CLASS, &cls, sizeof cls };
  if (u->object != NULL)
    tmpl[n++] = (CK_ATTRIBUTE){ CKA_LABEL, u->object, strlen (u->object) };
  if (u->id != NULL)
    {
      gsize id_len = 0;
      const void *id = g_bytes_get_data (u->id, &id_len);
      tmpl[n++] = (CK_ATTRIBUTE){ CKA_ID, (void *) id, id_len };
    }
  CK_RV rv = fl->C_FindObjectsInit (session, tmpl, n);
  if (rv != CKR_OK)
    {
      st_hsm_set_ckr (error, rv, "C_FindObjectsInit");
      return FALSE;
    }
  CK_OBJECT_HANDLE found[ST_HSM_FIND_MAX];
  CK_ULONG nfound = 0;
  rv = fl->C_FindObjects (session, found, G_N_ELEMENTS (found), &nfound);
  fl->C_FindObjectsFinal (session);
  if (rv != CKR_OK)
    {
      st_hsm_set_ckr (error, rv, "C_FindObjects");
      return FALSE;
    }
  if (nfound == 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND, "no %s object in token '%s' matches %s%s",
                   cls == CKO_PRIVATE_KEY ? "private key" : cls == CKO_PUBLIC_KEY ? "public key" : "certificate",
                   hsm->label, uri, hsm->pin == NULL && cls == CKO_PRIVATE_KEY ? " (not logged in)" : "");
      return FALSE;
    }
  if (nfound > 1)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "%s matches %lu objects in token '%s': add id= to make it name one",
                   uri, (unsigned long) nfound, hsm->label);
      return FALSE;
    }
  *out = found[0];
  return TRUE;
}

/* One attribute, at most @max bytes. */
static GBytes *
st_hsm_get_attr (StHsm *hsm, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type, const char *name,
                 gsize max, GError **error)
{
  CK_FUNCTION_LIST_PTR fl = hsm->mod->fl;
  CK_SESSION_HANDLE session;
  if (!st_hsm_session (hsm, &session, error))
    return NULL;
  CK_ATTRIBUTE a = { type, NULL, 0 };
  CK_RV rv = fl->C_GetAttributeValue (session, obj, &a, 1);
  if (rv != CKR_OK)
    {
      g_autofree gchar *what = g_strdup_printf ("C_GetAttributeValue(%s)", name);
      st_hsm_set_ckr (error, rv, what);
      return NULL;
    }
  if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > max)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "token attribute %s is unavailable or longer than %" G_GSIZE_FORMAT " bytes", name, max);
      return NULL;
    }
  g_autofree guint8 *buf = g_malloc0 (a.ulValueLen + 1);
  a.pValue = buf;
  rv = fl->C_GetAttributeValue (session, obj, &a, 1);
  if (rv != CKR_OK)
    {
      g_autofree gchar *what = g_strdup_printf ("C_GetAttributeValue(%s)", name);
      st_hsm_set_ckr (error, rv, what);
      return NULL;
    }
  return g_bytes_new_take (g_steal_pointer (&buf), a.ulValueLen);
}

static gboolean
st_hsm_get_bool_attr (StHsm *hsm, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type, const char *name,
                      gboolean *out, GError **error)
{
  g_autoptr(GBytes) b = st_hsm_get_attr (hsm, obj, type, name, sizeof (CK_BBOOL), error);
  if (b == NULL)
    return FALSE;
  if (g_bytes_get_size (b) != sizeof (CK_BBOOL))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "token attribute %s is not a CK_BBOOL", name);
      return FALSE;
    }
  *out = *(const CK_BBOOL *) g_bytes_get_data (b, NULL) != CK_FALSE;
  return TRUE;
}

EVP_PKEY *
st_hsm_get_private_key (StHsm *hsm, const char *uri, GError **error)
{
  g_return_val_if_fail (hsm != NULL, NULL);
  g_autoptr(StHsmLocker) locker = st_hsm_locker_new (hsm);
  g_autoptr(StP11Uri) u = st_p11_uri_parse (uri, error);
  if (u == NULL)
    return NULL;
  if (u->type != NULL && g_strcmp0 (u->type, "private") != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "%s is not a private key URI (type=%s)", uri, u->type);
      return NULL;
    }
  /* The raw search first: a clear NOT_FOUND, and exactly one match. */
  CK_OBJECT_HANDLE obj;
  if (!st_hsm_find_object (hsm, uri, u, CKO_PRIVATE_KEY, &obj, error))
    return NULL;

  PKCS11_KEY *keys = NULL;
  unsigned int nkeys = 0;
  if (PKCS11_enumerate_keys (hsm->slot->token, &keys, &nkeys) != 0)
    {
      st_hsm_set_p11_error (error, "listing the private keys of the token");
      return NULL;
    }
  gsize id_len = 0;
  const guint8 *id = u->id != NULL ? g_bytes_get_data (u->id, &id_len) : NULL;
  for (unsigned int i = 0; i < nkeys; i++)
    {
      PKCS11_KEY *k = &keys[i];
      if (!k->isPrivate)
        continue;
      if (u->object != NULL && g_strcmp0 (k->label, u->object) != 0)
        continue;
      if (id != NULL && (k->id_len != id_len || memcmp (k->id, id, id_len) != 0))
        continue;
      EVP_PKEY *pkey = PKCS11_get_private_key (k);
      if (pkey == NULL)
        {
          g_autofree gchar *what = g_strdup_printf ("cannot use the private key %s", uri);
          st_hsm_set_p11_error (error, what);
          return NULL;
        }
      return pkey;
    }
  g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND,
               "the private key %s is in the token but libp11 does not list it", uri);
  return NULL;
}

EVP_PKEY *
st_hsm_get_public_key (StHsm *hsm, const char *uri, GError **error)
{
  g_return_val_if_fail (hsm != NULL, NULL);
  g_autoptr(StHsmLocker) locker = st_hsm_locker_new (hsm);
  g_autoptr(StP11Uri) u = st_p11_uri_parse (uri, error);
  if (u == NULL)
    return NULL;
  CK_OBJECT_HANDLE obj;
  if (!st_hsm_find_object (hsm, uri, u, CKO_PUBLIC_KEY, &obj, error))
    return NULL;
  g_autoptr(GBytes) kt = st_hsm_get_attr (hsm, obj, CKA_KEY_TYPE, "CKA_KEY_TYPE", sizeof (CK_KEY_TYPE), error);
  if (kt == NULL)
    return NULL;
  if (g_bytes_get_size (kt) != sizeof (CK_KEY_TYPE) ||
      *(const CK_KEY_TYPE *) g_bytes_get_data (kt, NULL) != CKK_EC)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED, "%s is not an EC key", uri);
      return NULL;
    }
  g_autoptr(GBytes) params = st_hsm_get_attr (hsm, obj, CKA_EC_PARAMS, "CKA_EC_PARAMS", 256, error);
  if (params == NULL)
    return NULL;
  g_autoptr(GBytes) point = st_hsm_get_attr (hsm, obj, CKA_EC_POINT, "CKA_EC_POINT", 1024, error);
  if (point == NULL)
    return NULL;

  gsize plen = 0;
  const unsigned char *p = g_bytes_get_data (params, &plen);
  const unsigned char *pp = p;
  ASN1_OBJECT *oid = d2i_ASN1_OBJECT (NULL, &pp, (long) plen);
  int nid = oid != NULL && pp == p + plen ? OBJ_obj2nid (oid) : NID_undef;
  ASN1_OBJECT_free (oid);
  if (nid != NID_X9_62_prime256v1 && nid != NID_secp384r1)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                   "%s: curve is not P-256 or P-384 (named curves only)", uri);
      return NULL;
    }
  gsize qlen = 0;
  const unsigned char *q = g_bytes_get_data (point, &qlen);
  const unsigned char *qq = q;
  g_autoptr(ASN1_OCTET_STRING) os = d2i_ASN1_OCTET_STRING (NULL, &qq, (long) qlen);
  if (os == NULL || qq != q + qlen)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "%s: CKA_EC_POINT is not a DER OCTET STRING", uri);
      return NULL;
    }
  EVP_PKEY *pkey = st_ec_public_key_new (OBJ_nid2sn (nid), ASN1_STRING_get0_data (os),
                                         (gsize) ASN1_STRING_length (os));
  if (pkey == NULL)
    {
      g_autofree gchar *what = g_strdup_printf ("%s: the token's public key is not a valid EC point", uri);
      st_error_set_openssl (error, ST_ERROR_INVALID_DATA, what);
      return NULL;
    }
  return pkey;
}

X509 *
st_hsm_get_certificate (StHsm *hsm, const char *uri, GError **error)
{
  g_return_val_if_fail (hsm != NULL, NULL);
  g_autoptr(StHsmLocker) locker = st_hsm_locker_new (hsm);
  g_autoptr(StP11Uri) u = st_p11_uri_parse (uri, error);
  if (u == NULL)
    return NULL;
  CK_OBJECT_HANDLE obj;
  if (!st_hsm_find_object (hsm, uri, u, CKO_CERTIFICATE, &obj, error))
    return NULL;
  g_autoptr(GBytes) der = st_hsm_get_attr (hsm, obj, CKA_VALUE, "CKA_VALUE", ST_HSM_ATTR_MAX, error);
  if (der == NULL)
    return NULL;
  gsize len = 0;
  const unsigned char *d = g_bytes_get_data (der, &len);
  const unsigned char *dd = d;
  X509 *cert = d2i_X509 (NULL, &dd, (long) len);
  if (cert == NULL || dd != d + len)
    {
      X509_free (cert);
      g_autofree gchar *what = g_strdup_printf ("%s: the token's certificate is not one DER X.509 certificate", uri);
      st_error_set_openssl (error, ST_ERROR_INVALID_DATA, what);
      return NULL;
    }
  return cert;
}

gboolean
st_hsm_random (StHsm *hsm, guint8 *buf, gsize len, GError **error)
{
  g_return_val_if_fail (hsm != NULL, FALSE);
  g_autoptr(StHsmLocker) locker = st_hsm_locker_new (hsm);
  CK_SESSION_HANDLE session;
  if (!st_hsm_session (hsm, &session, error))
    return FALSE;
  while (len > 0)
    {
      CK_ULONG n = (CK_ULONG) MIN (len, 4096);
      CK_RV rv = hsm->mod->fl->C_GenerateRandom (session, buf, n);
      if (rv != CKR_OK)
        {
          st_hsm_set_ckr (error, rv, "C_GenerateRandom");
          return FALSE;
        }
      buf += n;
      len -= n;
    }
  return TRUE;
}

static gboolean
st_hsm_object_exists (StHsm *hsm, CK_OBJECT_CLASS cls, const char *label, const guint8 *id,
                      gsize id_len, gboolean *exists, GError **error)
{
  CK_FUNCTION_LIST_PTR fl = hsm->mod->fl;
  CK_SESSION_HANDLE session;
  if (!st_hsm_session (hsm, &session, error))
    return FALSE;
  CK_ATTRIBUTE tmpl[2];
  CK_ULONG n = 0;
  tmpl[n++] = (CK_ATTRIBUTE){ CKA_CLASS, &cls, sizeof cls };
  if (label != NULL)
    tmpl[n++] = (CK_ATTRIBUTE){ CKA_LABEL, (void *) label, strlen (label) };
  else
    tmpl[n++] = (CK_ATTRIBUTE){ CKA_ID, (void *) id, id_len };
  CK_RV rv = fl->C_FindObjectsInit (session, tmpl, n);
  if (rv != CKR_OK)
    {
      st_hsm_set_ckr (error, rv, "C_FindObjectsInit");
      return FALSE;
    }
  CK_OBJECT_HANDLE h;
  CK_ULONG nfound = 0;
  rv = fl->C_FindObjects (session, &h, 1, &nfound);
  fl->C_FindObjectsFinal (session);
  if (rv != CKR_OK)
    {
      st_hsm_set_ckr (error, rv, "C_FindObjects");
      return FALSE;
    }
  *exists = nfound > 0;
  return TRUE;
}

static gboolean
st_hsm_check_free (StHsm *hsm, CK_OBJECT_CLASS cls, const char *what, const char *label,
                   const guint8 *id, gsize id_len, GError **error)
{
  gboolean exists = FALSE;
  if (!st_hsm_object_exists (hsm, cls, label, NULL, 0, &exists, error))
    return FALSE;
  if (exists)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "token '%s' already holds a %s labelled '%s'", hsm->label, what, label);
      return FALSE;
    }
  if (!st_hsm_object_exists (hsm, cls, NULL, id, id_len, &exists, error))
    return FALSE;
  if (exists)
    {
      g_autofree gchar *hex = st_hex_encode (id, id_len);
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "token '%s' already holds a %s with id %s", hsm->label, what, hex);
      return FALSE;
    }
  return TRUE;
}

gboolean
st_hsm_label_in_use (StHsm *hsm, const char *label, gboolean *in_use, GError **error)
{
  g_return_val_if_fail (hsm != NULL && label != NULL && in_use != NULL, FALSE);
  g_autoptr(StHsmLocker) locker = st_hsm_locker_new (hsm);
  const CK_OBJECT_CLASS classes[] = { CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CKO_CERTIFICATE, CKO_SECRET_KEY };
  *in_use = FALSE;
  for (gsize i = 0; i < G_N_ELEMENTS (classes) && !*in_use; i++)
    if (!st_hsm_object_exists (hsm, classes[i], label, NULL, 0, in_use, error))
      return FALSE;
  return TRUE;
}

gchar *
st_hsm_generate_key (StHsm *hsm, const char *label, const guint8 *id, gsize id_len, StAlg alg,
                     GError **error)
{
  g_return_val_if_fail (hsm != NULL && label != NULL && id != NULL && id_len > 0, NULL);
  g_autoptr(StHsmLocker) locker = st_hsm_locker_new (hsm);
  int nid;
  switch (alg)
    {
    case ST_ALG_EC_P256:
      nid = NID_X9_62_prime256v1;
      break;
    case ST_ALG_EC_P384:
      nid = NID_secp384r1;
      break;
    default:
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED,
                   "key generation in the token supports ec-p256 and ec-p384, not %s",
                   st_alg_to_string (alg) != NULL ? st_alg_to_string (alg) : "this algorithm");
      return NULL;
    }
  if (hsm->pin == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_AUTH_FAILED, "generating a key needs a login to token '%s'",
                   hsm->label);
      return NULL;
    }
  if (!st_hsm_check_free (hsm, CKO_PRIVATE_KEY, "private key", label, id, id_len, error))
    return NULL;

  unsigned char params[32];
  unsigned char *pp = params;
  int plen = i2d_ASN1_OBJECT (OBJ_nid2obj (nid), NULL);
  if (plen <= 0 || plen > (int) sizeof params || i2d_ASN1_OBJECT (OBJ_nid2obj (nid), &pp) != plen)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL, "cannot encode the curve OID");
      return NULL;
    }

  CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
  CK_ATTRIBUTE pub[] = {
    { CKA_TOKEN, &yes, sizeof yes },
    { CKA_PRIVATE, &no, sizeof no },
    { CKA_VERIFY, &yes, sizeof yes },
    { CKA_ENCRYPT, &no, sizeof no },
    { CKA_WRAP, &no, sizeof no },
    { CKA_DERIVE, &no, sizeof no },
    { CKA_EC_PARAMS, params, (CK_ULONG) plen },
    { CKA_LABEL, (void *) label, strlen (label) },
    { CKA_ID, (void *) id, id_len },
  };
  CK_ATTRIBUTE priv[] = {
    { CKA_TOKEN, &yes, sizeof yes },
    { CKA_PRIVATE, &yes, sizeof yes },
    { CKA_SENSITIVE, &yes, sizeof yes },
    { CKA_EXTRACTABLE, &no, sizeof no },
    { CKA_SIGN, &yes, sizeof yes },
    { CKA_DECRYPT, &no, sizeof no },
    { CKA_UNWRAP, &no, sizeof no },
    { CKA_DERIVE, &no, sizeof no },
    { CKA_LABEL, (void *) label, strlen (label) },
    { CKA_ID, (void *) id, id_len },
  };
  CK_MECHANISM mech = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
  CK_SESSION_HANDLE session;
  if (!st_hsm_session (hsm, &session, error))
    return NULL;
  CK_OBJECT_HANDLE hpub, hpriv;
  CK_RV rv = hsm->mod->fl->C_GenerateKeyPair (session, &mech, pub, G_N_ELEMENTS (pub), priv,
                                              G_N_ELEMENTS (priv), &hpub, &hpriv);
  if (rv != CKR_OK)
    {
      g_autofree gchar *what = g_strdup_printf ("C_GenerateKeyPair(%s, '%s')", OBJ_nid2sn (nid), label);
      st_hsm_set_ckr (error, rv, what);
      return NULL;
    }
  return st_hsm_uri_build (hsm->label, label, id, id_len, "private");
}

gboolean
st_hsm_store_certificate (StHsm *hsm, const char *label, const guint8 *id, gsize id_len, X509 *cert,
                          GError **error)
{
  g_return_val_if_fail (hsm != NULL && label != NULL && cert != NULL, FALSE);
  g_autoptr(StHsmLocker) locker = st_hsm_locker_new (hsm);
  if (hsm->pin == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_AUTH_FAILED,
                   "storing a certificate needs a login to token '%s'", hsm->label);
      return FALSE;
    }
  gboolean exists = FALSE;
  if (!st_hsm_object_exists (hsm, CKO_CERTIFICATE, label, NULL, 0, &exists, error))
    return FALSE;
  if (exists)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "token '%s' already holds a certificate labelled '%s'", hsm->label, label);
      return FALSE;
    }
  unsigned char *der = NULL, *subj = NULL, *iss = NULL, *ser = NULL;
  int der_len = i2d_X509 (cert, &der);
  int subj_len = i2d_X509_NAME (X509_get_subject_name (cert), &subj);
  int iss_len = i2d_X509_NAME (X509_get_issuer_name (cert), &iss);
  int ser_len = i2d_ASN1_INTEGER (X509_get_serialNumber (cert), &ser);
  gboolean ok = FALSE;
  if (der_len > 0 && subj_len > 0 && iss_len > 0 && ser_len > 0)
    {
      CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
      CK_CERTIFICATE_TYPE ctype = CKC_X_509;
      CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
      CK_ATTRIBUTE tmpl[] = {
        { CKA_CLASS, &cls, sizeof cls },
        { CKA_CERTIFICATE_TYPE, &ctype, sizeof ctype },
        { CKA_TOKEN, &yes, sizeof yes },
        { CKA_PRIVATE, &no, sizeof no },
        { CKA_LABEL, (void *) label, strlen (label) },
        { CKA_ID, (void *) id, id_len },
        { CKA_SUBJECT, subj, (CK_ULONG) subj_len },
        { CKA_ISSUER, iss, (CK_ULONG) iss_len },
        { CKA_SERIAL_NUMBER, ser, (CK_ULONG) ser_len },
        { CKA_VALUE, der, (CK_ULONG) der_len },
      };
      CK_SESSION_HANDLE session;
      if (st_hsm_session (hsm, &session, error))
        {
          CK_OBJECT_HANDLE h;
          CK_RV rv = hsm->mod->fl->C_CreateObject (session, tmpl, G_N_ELEMENTS (tmpl), &h);
          if (rv != CKR_OK)
            {
              g_autofree gchar *what = g_strdup_printf ("C_CreateObject(certificate '%s')", label);
              st_hsm_set_ckr (error, rv, what);
            }
          else
            ok = TRUE;
        }
    }
  else
    st_error_set_openssl (error, ST_ERROR_INVALID_DATA, "cannot encode the certificate");
  OPENSSL_free (der);
  OPENSSL_free (subj);
  OPENSSL_free (iss);
  OPENSSL_free (ser);
  return ok;
}

/* ---- private data objects ---- */

#define ST_HSM_DATA_APPLICATION "station"

/* Every CKO_DATA object of the station's application labelled @label. */
static gboolean
st_hsm_data_find (StHsm *hsm, CK_SESSION_HANDLE session, const char *label, CK_OBJECT_HANDLE *found,
                  CK_ULONG max, CK_ULONG *nfound, GError **error)
{
  CK_FUNCTION_LIST_PTR fl = hsm->mod->fl;
  CK_OBJECT_CLASS cls = CKO_DATA;
  CK_BBOOL yes = CK_TRUE;
  CK_ATTRIBUTE tmpl[] = {
    { CKA_CLASS, &cls, sizeof cls },
    { CKA_TOKEN, &yes, sizeof yes },
    { CKA_LABEL, (void *) label, strlen (label) },
    { CKA_APPLICATION, (void *) ST_HSM_DATA_APPLICATION, strlen (ST_HSM_DATA_APPLICATION) },
  };
  CK_RV rv = fl->C_FindObjectsInit (session, tmpl, G_N_ELEMENTS (tmpl));
  if (rv != CKR_OK)
    {
      st_hsm_set_ckr (error, rv, "C_FindObjectsInit");
      return FALSE;
    }
  rv = fl->C_FindObjects (session, found, max, nfound);
  fl->C_FindObjectsFinal (session);
  if (rv != CKR_OK)
    {
      st_hsm_set_ckr (error, rv, "C_FindObjects");
      return FALSE;
    }
  return TRUE;
}

gboolean
st_hsm_data_replace (StHsm *hsm, const char *label, GBytes *value, GError **error)
{
  g_return_val_if_fail (hsm != NULL && label != NULL && value != NULL, FALSE);
  g_autoptr(StHsmLocker) locker = st_hsm_locker_new (hsm);
  if (hsm->pin == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_AUTH_FAILED,
                   "writing '%s' into token '%s' needs a login", label, hsm->label);
      return FALSE;
    }
  CK_FUNCTION_LIST_PTR fl = hsm->mod->fl;
  CK_SESSION_HANDLE session;
  if (!st_hsm_session (hsm, &session, error))
    return FALSE;
  CK_OBJECT_HANDLE old[ST_HSM_FIND_MAX];
  CK_ULONG n_old = 0;
  if (!st_hsm_data_find (hsm, session, label, old, G_N_ELEMENTS (old), &n_old, error))
    return FALSE;
  gsize len = 0;
  const void *data = g_bytes_get_data (value, &len);
  CK_OBJECT_CLASS cls = CKO_DATA;
  CK_BBOOL yes = CK_TRUE;
  CK_ATTRIBUTE tmpl[] = {
    { CKA_CLASS, &cls, sizeof cls },
    { CKA_TOKEN, &yes, sizeof yes },
    { CKA_PRIVATE, &yes, sizeof yes },
    { CKA_LABEL, (void *) label, strlen (label) },
    { CKA_APPLICATION, (void *) ST_HSM_DATA_APPLICATION, strlen (ST_HSM_DATA_APPLICATION) },
    { CKA_VALUE, (void *) data, len },
  };
  /* The new object first, then the old ones: a failure in between leaves
   * two (the reader tells them apart by their contents), never none. */
  CK_OBJECT_HANDLE h;
  CK_RV rv = fl->C_CreateObject (session, tmpl, G_N_ELEMENTS (tmpl), &h);
  if (rv != CKR_OK)
    {
      g_autofree gchar *what = g_strdup_printf ("C_CreateObject(data '%s')", label);
      st_hsm_set_ckr (error, rv, what);
      return FALSE;
    }
  for (CK_ULONG i = 0; i < n_old; i++)
    {
      rv = fl->C_DestroyObject (session, old[i]);
      if (rv != CKR_OK)
        {
          g_autofree gchar *what = g_strdup_printf ("C_DestroyObject(old data '%s')", label);
          st_hsm_set_ckr (error, rv, what);
          return FALSE;
        }
    }
  return TRUE;
}

GPtrArray *
st_hsm_data_read (StHsm *hsm, const char *label, gsize max, GError **error)
{
  g_return_val_if_fail (hsm != NULL && label != NULL, NULL);
  g_autoptr(StHsmLocker) locker = st_hsm_locker_new (hsm);
  CK_SESSION_HANDLE session;
  if (!st_hsm_session (hsm, &session, error))
    return NULL;
  CK_OBJECT_HANDLE found[ST_HSM_FIND_MAX];
  CK_ULONG n = 0;
  if (!st_hsm_data_find (hsm, session, label, found, G_N_ELEMENTS (found), &n, error))
    return NULL;
  g_autoptr(GPtrArray) values = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  for (CK_ULONG i = 0; i < n; i++)
    {
      GBytes *v = st_hsm_get_attr (hsm, found[i], CKA_VALUE, "CKA_VALUE", max, error);
      if (v == NULL)
        return NULL;
      g_ptr_array_add (values, v);
    }
  return g_steal_pointer (&values);
}

gboolean
st_hsm_get_key_flags (StHsm *hsm, const char *uri, gboolean *sensitive, gboolean *extractable,
                      gboolean *never_extractable, GError **error)
{
  g_return_val_if_fail (hsm != NULL, FALSE);
  g_autoptr(StHsmLocker) locker = st_hsm_locker_new (hsm);
  g_autoptr(StP11Uri) u = st_p11_uri_parse (uri, error);
  if (u == NULL)
    return FALSE;
  CK_OBJECT_HANDLE obj;
  if (!st_hsm_find_object (hsm, uri, u, CKO_PRIVATE_KEY, &obj, error))
    return FALSE;
  gboolean s = FALSE, e = TRUE, ne = FALSE;
  if (!st_hsm_get_bool_attr (hsm, obj, CKA_SENSITIVE, "CKA_SENSITIVE", &s, error) ||
      !st_hsm_get_bool_attr (hsm, obj, CKA_EXTRACTABLE, "CKA_EXTRACTABLE", &e, error) ||
      !st_hsm_get_bool_attr (hsm, obj, CKA_NEVER_EXTRACTABLE, "CKA_NEVER_EXTRACTABLE", &ne, error))
    return FALSE;
  if (sensitive != NULL)
    *sensitive = s;
  if (extractable != NULL)
    *extractable = e;
  if (never_extractable != NULL)
    *never_extractable = ne;
  return TRUE;
}

gchar *
st_hsm_get_token_description (StHsm *hsm)
{
  return g_strdup (hsm->description);
}

void
st_hsm_close_all_sessions (StHsm *hsm)
{
  g_autoptr(StHsmLocker) locker = st_hsm_locker_new (hsm);
  hsm->mod->fl->C_CloseAllSessions (hsm->slot_id);
}

guint
st_hsm_get_login_generation (StHsm *hsm)
{
  g_autoptr(StHsmLocker) locker = st_hsm_locker_new (hsm);
  return hsm->login_generation;
}

const char *
st_hsm_get_token_label (StHsm *hsm)
{
  return hsm->label;
}

void
st_hsm_free (StHsm *hsm)
{
  if (hsm == NULL)
    return;
  st_hsm_lock (hsm);
  if (hsm->have_session)
    hsm->mod->fl->C_CloseSession (hsm->session);
  st_hsm_forget_pin (hsm);
  st_hsm_unlock (hsm);
  st_p11_module_release (hsm->mod);
  g_free (hsm->label);
  g_free (hsm->description);
  g_rec_mutex_clear (&hsm->lock);
  g_free (hsm);
}

/* ---- token creation ------------------------------------------------------ */

static gboolean
st_hsm_token_label_equals (const CK_UTF8CHAR *padded, const char *label)
{
  gsize n = sizeof ((CK_TOKEN_INFO *) NULL)->label;
  gsize len = n;
  while (len > 0 && padded[len - 1] == ' ')
    len--;
  return strlen (label) == len && memcmp (padded, label, len) == 0;
}

/* The slot of the initialised token labelled @label whose flags include
 * @with and exclude @without; *@rv is C_GetSlotList's answer. */
static gboolean
st_p11_find_labelled_slot (CK_FUNCTION_LIST_PTR fl, const char *label, CK_FLAGS with, CK_FLAGS without,
                           CK_SLOT_ID *slot, CK_RV *rv)
{
  CK_SLOT_ID slots[64];
  CK_ULONG nslots = G_N_ELEMENTS (slots);
  CK_TOKEN_INFO info;
  *rv = fl->C_GetSlotList (CK_TRUE, slots, &nslots);
  for (CK_ULONG i = 0; *rv == CKR_OK && i < nslots; i++)
    if (fl->C_GetTokenInfo (slots[i], &info) == CKR_OK && (info.flags & CKF_TOKEN_INITIALIZED)
        && (info.flags & with) == with && !(info.flags & without)
        && st_hsm_token_label_equals (info.label, label))
      {
        *slot = slots[i];
        return TRUE;
      }
  return FALSE;
}

/* A read-write session on @slot with the SO logged in (the SO logs in on a
 * read-write session only). The CKR_ name of the failing step is in the
 * message; nothing is left open then. */
static gboolean
st_p11_so_session (CK_FUNCTION_LIST_PTR fl, CK_SLOT_ID slot, const char *so_pin,
                   CK_SESSION_HANDLE *session, GError **error)
{
  CK_RV rv = fl->C_OpenSession (slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, session);
  if (rv != CKR_OK)
    {
      st_hsm_set_ckr (error, rv, "C_OpenSession");
      return FALSE;
    }
  rv = fl->C_Login (*session, CKU_SO, (CK_UTF8CHAR_PTR) so_pin, strlen (so_pin));
  if (rv != CKR_OK)
    {
      fl->C_CloseSession (*session);
      st_hsm_set_ckr (error, rv, "C_Login(SO)");
      return FALSE;
    }
  return TRUE;
}

gboolean
st_hsm_init_token (const char *module_path, const char *label, const char *so_pin,
                   const char *user_pin, GError **error)
{
  g_return_val_if_fail (module_path != NULL && label != NULL && so_pin != NULL && user_pin != NULL, FALSE);
  CK_TOKEN_INFO info;
  if (strlen (label) == 0 || strlen (label) > sizeof info.label)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, "a token label has 1 to %zu characters",
                   sizeof info.label);
      return FALSE;
    }
  StP11Module *mod = st_p11_module_acquire (module_path, error);
  if (mod == NULL)
    return FALSE;
  CK_FUNCTION_LIST_PTR fl = mod->fl;
  CK_SLOT_ID slots[64];
  CK_ULONG nslots = G_N_ELEMENTS (slots);
  CK_RV rv = fl->C_GetSlotList (CK_TRUE, slots, &nslots);
  gboolean have_free = FALSE;
  CK_SLOT_ID free_slot = 0;
  for (CK_ULONG i = 0; rv == CKR_OK && i < nslots; i++)
    {
      if (fl->C_GetTokenInfo (slots[i], &info) != CKR_OK)
        continue;
      if (!(info.flags & CKF_TOKEN_INITIALIZED))
        {
          if (!have_free)
            free_slot = slots[i];
          have_free = TRUE;
        }
      else if (st_hsm_token_label_equals (info.label, label))
        {
          g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                       "a token labelled '%s' already exists in %s", label, module_path);
          st_p11_module_release (mod);
          return FALSE;
        }
    }
  if (rv != CKR_OK || !have_free)
    {
      if (rv != CKR_OK)
        st_hsm_set_ckr (error, rv, "C_GetSlotList");
      else
        g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND, "%s has no free token slot to initialise",
                     module_path);
      st_p11_module_release (mod);
      return FALSE;
    }
  CK_UTF8CHAR padded[sizeof info.label];
  memset (padded, ' ', sizeof padded);
  memcpy (padded, label, strlen (label));
  rv = fl->C_InitToken (free_slot, (CK_UTF8CHAR_PTR) so_pin, strlen (so_pin), padded);
  if (rv != CKR_OK)
    {
      st_hsm_set_ckr (error, rv, "C_InitToken");
      st_p11_module_release (mod);
      return FALSE;
    }
  /* SoftHSM2 moves an initialised token to a new slot id: look again. */
  CK_SLOT_ID slot = 0;
  if (!st_p11_find_labelled_slot (fl, label, 0, CKF_USER_PIN_INITIALIZED, &slot, &rv))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                   "the token '%s' was initialised but is not listed afterwards", label);
      st_p11_module_release (mod);
      return FALSE;
    }
  CK_SESSION_HANDLE session;
  if (!st_p11_so_session (fl, slot, so_pin, &session, error))
    {
      st_p11_module_release (mod);
      return FALSE;
    }
  rv = fl->C_InitPIN (session, (CK_UTF8CHAR_PTR) user_pin, strlen (user_pin));
  fl->C_Logout (session);
  fl->C_CloseSession (session);
  st_p11_module_release (mod);
  if (rv != CKR_OK)
    {
      st_hsm_set_ckr (error, rv, "C_InitPIN");
      return FALSE;
    }
  return TRUE;
}

/* ---- the PIN -------------------------------------------------------------- */

gchar *
st_hsm_read_pin (const char *prompt, GError **error)
{
  return st_read_secret (prompt != NULL ? prompt : "HSM user PIN: ", "STATION_HSM_PIN",
                         ST_HSM_PIN_MAX, error);
}

void
st_hsm_pin_free (gchar *pin)
{
  if (pin == NULL)
    return;
  st_memwipe (pin, strlen (pin));
  g_free (pin);
}

/* ---- the security officer's proof (break-glass recovery) ---------------- */

gboolean
st_hsm_check_so_pin (const char *module_path, const char *token_label, const char *so_pin,
                     GError **error)
{
  g_return_val_if_fail (module_path != NULL && token_label != NULL && so_pin != NULL, FALSE);
  if (strlen (so_pin) == 0 || strlen (so_pin) > ST_HSM_PIN_MAX)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_AUTH_FAILED,
                   "an SO PIN has 1 to %d characters", ST_HSM_PIN_MAX);
      return FALSE;
    }
  StP11Module *mod = st_p11_module_acquire (module_path, error);
  if (mod == NULL)
    return FALSE;
  CK_FUNCTION_LIST_PTR fl = mod->fl;
  CK_RV rv = CKR_OK;
  CK_SLOT_ID slot = 0;
  if (!st_p11_find_labelled_slot (fl, token_label, 0, 0, &slot, &rv))
    {
      if (rv != CKR_OK)
        st_hsm_set_ckr (error, rv, "C_GetSlotList");
      else
        g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND, "there is no token labelled '%s' in %s",
                     token_label, module_path);
      st_p11_module_release (mod);
      return FALSE;
    }
  CK_SESSION_HANDLE session;
  gboolean ok = st_p11_so_session (fl, slot, so_pin, &session, error);
  if (ok)
    {
      fl->C_Logout (session);
      fl->C_CloseSession (session);
    }
  /* what the token says of its SO PIN now (its own count of wrong ones) */
  CK_TOKEN_INFO info;
  CK_FLAGS flags = fl->C_GetTokenInfo (slot, &info) == CKR_OK ? info.flags : 0;
  st_p11_module_release (mod);
  if (!ok)
    {
      if (flags & CKF_SO_PIN_LOCKED)
        g_prefix_error (error, "the token has locked its SO PIN: ");
      else if (flags & CKF_SO_PIN_FINAL_TRY)
        g_prefix_error (error, "the token allows one more SO PIN try: ");
      else if (flags & CKF_SO_PIN_COUNT_LOW)
        g_prefix_error (error, "the token counted wrong SO PINs: ");
      return FALSE;
    }
  return TRUE;
}
