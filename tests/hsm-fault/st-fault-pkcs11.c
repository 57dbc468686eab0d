/* A PKCS#11 module for tests only: it loads a real module (SoftHSM2) and
 * forwards every call of the function list to it, injecting the faults
 * that environment variables ask for. The station selects it like any
 * module, by the module path in station.conf.
 *
 *   ST_FAULT_MODULE=PATH         the real module (default: the build's SoftHSM2)
 *   ST_FAULT_SIGN=CKR_NAME       C_SignInit fails with CKR_NAME, for good
 *   ST_FAULT_SIGN_AFTER=N        ... only once N signatures were made
 *   ST_FAULT_SESSION=CKR_NAME    at C_SignInit, every session of the token
 *                                is closed (a token reset, an unplug and
 *                                replug) and the call fails with CKR_NAME
 *                                (CKR_SESSION_HANDLE_INVALID, CKR_DEVICE_REMOVED, ...)
 *   ST_FAULT_SESSION_AFTER=N     ... once N signatures were made (default 0)
 *   ST_FAULT_SESSION_TIMES=N     ... that many times (default 1)
 *   ST_FAULT_GONE=1              after the session fault the token stays
 *                                away: C_GetSlotInfo shows no token,
 *                                C_GetTokenInfo and C_OpenSession answer
 *                                CKR_TOKEN_NOT_PRESENT
 *   ST_FAULT_LOGIN=CKR_NAME      C_Login (user) fails with CKR_NAME
 *   ST_FAULT_LOGIN_AFTER=N       ... once N user logins succeeded (default 0)
 *   ST_FAULT_IDLE_MS=N           a token that logs idle sessions out: the
 *                                first call after N ms without a call
 *                                closes every session first
 *   ST_FAULT_SIGN_DELAY_MS=N     every C_Sign takes N ms more
 *   ST_FAULT_COUNT_FILE=PATH     one line per event, appended:
 *                                "C_Sign <hex of the signed data>" for each
 *                                signature made, "FAULT <what> <CKR>" for
 *                                each injected fault, "IDLE-LOGOUT"
 *
 * Every injected fault is also printed on stderr. */
#include <dlfcn.h>
#include <glib.h>
#include <p11-kit/pkcs11.h>
#include <stdio.h>
#include <string.h>

typedef struct {
  CK_RV rv;
  const char *name;
} StFaultCkr;

#define CKR_NAME(x) { x, #x }
static const StFaultCkr st_fault_ckrs[] = {
#include "st-hsm-ckr.inc"
};
#undef CKR_NAME

static GMutex st_lock;
static void *st_real_dl;
static CK_FUNCTION_LIST_PTR st_real;
static CK_FUNCTION_LIST st_wrapped;

/* The faults, read once. */
static gboolean st_configured;
static CK_RV st_sign_fault, st_session_fault, st_login_fault;
static guint64 st_sign_after, st_session_after, st_session_times = 1, st_login_after;
static guint64 st_idle_ms, st_sign_delay_ms;
static gboolean st_gone_after_fault;
/* A fixed buffer, not the heap: the module may be unloaded before exit. */
static char st_count_path[4096];
static const char *st_count_file;

/* State. */
static guint64 st_signs, st_logins, st_session_faults;
static gboolean st_gone;
static gint64 st_last_call;
static CK_SLOT_ID st_slots[16];
static guint st_n_slots;

static const char *
st_ckr_name (CK_RV rv)
{
  for (gsize i = 0; i < G_N_ELEMENTS (st_fault_ckrs); i++)
    if (st_fault_ckrs[i].rv == rv)
      return st_fault_ckrs[i].name;
  return "CKR_UNKNOWN";
}

static CK_RV
st_env_ckr (const char *var)
{
  const char *v = g_getenv (var);
  if (v == NULL || *v == '\0')
    return CKR_OK;
  for (gsize i = 0; i < G_N_ELEMENTS (st_fault_ckrs); i++)
    if (g_strcmp0 (st_fault_ckrs[i].name, v) == 0)
      return st_fault_ckrs[i].rv;
  g_printerr ("st-fault-pkcs11: %s=%s is not a CKR_ name; using CKR_GENERAL_ERROR\n", var, v);
  return CKR_GENERAL_ERROR;
}

static guint64
st_env_uint (const char *var, guint64 dflt)
{
  const char *v = g_getenv (var);
  return v != NULL && *v != '\0' ? g_ascii_strtoull (v, NULL, 10) : dflt;
}

static void
st_log (const char *fmt, ...) G_GNUC_PRINTF (1, 2);

static void
st_log (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree gchar *line = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  if (st_count_file == NULL)
    return;
  FILE *f = fopen (st_count_file, "a");
  if (f == NULL)
    return;
  fprintf (f, "%s\n", line);
  fclose (f);
}

static void
st_configure (void)
{
  if (st_configured)
    return;
  st_configured = TRUE;
  st_sign_fault = st_env_ckr ("ST_FAULT_SIGN");
  st_sign_after = st_env_uint ("ST_FAULT_SIGN_AFTER", 0);
  st_session_fault = st_env_ckr ("ST_FAULT_SESSION");
  st_session_after = st_env_uint ("ST_FAULT_SESSION_AFTER", 0);
  st_session_times = st_env_uint ("ST_FAULT_SESSION_TIMES", 1);
  st_gone_after_fault = st_env_uint ("ST_FAULT_GONE", 0) != 0;
  st_login_fault = st_env_ckr ("ST_FAULT_LOGIN");
  st_login_after = st_env_uint ("ST_FAULT_LOGIN_AFTER", 0);
  st_idle_ms = st_env_uint ("ST_FAULT_IDLE_MS", 0);
  st_sign_delay_ms = st_env_uint ("ST_FAULT_SIGN_DELAY_MS", 0);
  const char *count = g_getenv ("ST_FAULT_COUNT_FILE");
  if (count != NULL && *count != '\0' && strlen (count) < sizeof st_count_path)
    {
      g_strlcpy (st_count_path, count, sizeof st_count_path);
      st_count_file = st_count_path;
    }
}

/* Every session of every slot this process opened sessions on. */
static void
st_close_all (void)
{
  for (guint i = 0; i < st_n_slots; i++)
    st_real->C_CloseAllSessions (st_slots[i]);
}

/* At the start of every call: the idle logout. */
static void
st_enter (void)
{
  g_mutex_lock (&st_lock);
  gint64 now = g_get_monotonic_time ();
  if (st_idle_ms > 0 && st_last_call != 0 && now - st_last_call > (gint64) st_idle_ms * 1000)
    {
      g_printerr ("st-fault-pkcs11: idle for %" G_GINT64_FORMAT " ms: every session logged out\n",
                  (now - st_last_call) / 1000);
      st_log ("IDLE-LOGOUT");
      st_close_all ();
    }
  st_last_call = now;
  g_mutex_unlock (&st_lock);
}

static void
st_leave (void)
{
  g_mutex_lock (&st_lock);
  st_last_call = g_get_monotonic_time ();
  g_mutex_unlock (&st_lock);
}

static gboolean
st_is_gone (void)
{
  g_mutex_lock (&st_lock);
  gboolean gone = st_gone;
  g_mutex_unlock (&st_lock);
  return gone;
}

/* ---- the wrapped calls ---- */

static CK_RV
st_fault_GetSlotInfo (CK_SLOT_ID slot, CK_SLOT_INFO_PTR info)
{
  st_enter ();
  CK_RV rv = st_real->C_GetSlotInfo (slot, info);
  if (rv == CKR_OK && st_is_gone ())
    info->flags &= ~(CK_FLAGS) CKF_TOKEN_PRESENT;
  st_leave ();
  return rv;
}

static CK_RV
st_fault_GetSlotList (CK_BBOOL token_present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
  st_enter ();
  CK_RV rv;
  if (token_present && st_is_gone ())
    {
      *count = 0;
      rv = CKR_OK;
    }
  else
    rv = st_real->C_GetSlotList (token_present, list, count);
  st_leave ();
  return rv;
}

static CK_RV
st_fault_GetTokenInfo (CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
  st_enter ();
  CK_RV rv = st_is_gone () ? CKR_TOKEN_NOT_PRESENT : st_real->C_GetTokenInfo (slot, info);
  st_leave ();
  return rv;
}

static CK_RV
st_fault_OpenSession (CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,
                      CK_SESSION_HANDLE_PTR session)
{
  st_enter ();
  CK_RV rv;
  if (st_is_gone ())
    rv = CKR_TOKEN_NOT_PRESENT;
  else
    {
      rv = st_real->C_OpenSession (slot, flags, app, notify, session);
      g_mutex_lock (&st_lock);
      gboolean known = FALSE;
      for (guint i = 0; i < st_n_slots; i++)
        known = known || st_slots[i] == slot;
      if (rv == CKR_OK && !known && st_n_slots < G_N_ELEMENTS (st_slots))
        st_slots[st_n_slots++] = slot;
      g_mutex_unlock (&st_lock);
    }
  st_leave ();
  return rv;
}

static CK_RV
st_fault_GetSessionInfo (CK_SESSION_HANDLE session, CK_SESSION_INFO_PTR info)
{
  st_enter ();
  CK_RV rv = st_is_gone () ? CKR_DEVICE_REMOVED : st_real->C_GetSessionInfo (session, info);
  st_leave ();
  return rv;
}

static CK_RV
st_fault_Login (CK_SESSION_HANDLE session, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
  st_enter ();
  CK_RV rv;
  g_mutex_lock (&st_lock);
  gboolean fail = user == CKU_USER && st_login_fault != CKR_OK && st_logins >= st_login_after;
  g_mutex_unlock (&st_lock);
  if (fail)
    {
      rv = st_login_fault;
      g_printerr ("st-fault-pkcs11: injected %s at C_Login\n", st_ckr_name (rv));
      st_log ("FAULT C_Login %s", st_ckr_name (rv));
    }
  else
    {
      rv = st_real->C_Login (session, user, pin, len);
      if (rv == CKR_OK && user == CKU_USER)
        {
          g_mutex_lock (&st_lock);
          st_logins++;
          g_mutex_unlock (&st_lock);
        }
    }
  st_leave ();
  return rv;
}

static CK_RV
st_fault_SignInit (CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
  st_enter ();
  CK_RV rv = CKR_OK;
  g_mutex_lock (&st_lock);
  if (st_gone)
    rv = CKR_DEVICE_REMOVED;
  else if (st_session_fault != CKR_OK && st_signs >= st_session_after &&
           st_session_faults < st_session_times)
    {
      st_session_faults++;
      rv = st_session_fault;
      st_close_all ();
      if (st_gone_after_fault)
        st_gone = TRUE;
      g_printerr ("st-fault-pkcs11: injected %s at C_SignInit: every session closed%s\n",
                  st_ckr_name (rv), st_gone ? ", the token is gone" : "");
      st_log ("FAULT C_SignInit %s", st_ckr_name (rv));
    }
  else if (st_sign_fault != CKR_OK && st_signs >= st_sign_after)
    {
      rv = st_sign_fault;
      g_printerr ("st-fault-pkcs11: injected %s at C_SignInit\n", st_ckr_name (rv));
      st_log ("FAULT C_SignInit %s", st_ckr_name (rv));
    }
  g_mutex_unlock (&st_lock);
  if (rv == CKR_OK)
    rv = st_real->C_SignInit (session, mech, key);
  st_leave ();
  return rv;
}

static CK_RV
st_fault_Sign (CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR sig,
               CK_ULONG_PTR sig_len)
{
  st_enter ();
  if (st_sign_delay_ms > 0 && sig != NULL)
    g_usleep (st_sign_delay_ms * 1000);
  CK_RV rv = st_real->C_Sign (session, data, data_len, sig, sig_len);
  if (rv == CKR_OK && sig != NULL)
    {
      g_mutex_lock (&st_lock);
      st_signs++;
      g_autofree gchar *hex = g_malloc (data_len * 2 + 1);
      for (CK_ULONG i = 0; i < data_len; i++)
        g_snprintf (hex + 2 * i, 3, "%02x", data[i]);
      hex[data_len * 2] = '\0';
      st_log ("C_Sign %s", hex);
      g_mutex_unlock (&st_lock);
    }
  st_leave ();
  return rv;
}

/* Every other call: forwarded as it is, with the idle check. The macro
 * makes one forwarder per function, with the real list's signature. */
#define ST_FORWARD(name, params, args)                                    \
  static CK_RV st_fault_##name params                                     \
  {                                                                       \
    st_enter ();                                                          \
    CK_RV rv = st_real->C_##name args;                                    \
    st_leave ();                                                          \
    return rv;                                                            \
  }

ST_FORWARD (CloseSession, (CK_SESSION_HANDLE s), (s))
ST_FORWARD (Logout, (CK_SESSION_HANDLE s), (s))
ST_FORWARD (FindObjectsInit, (CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR t, CK_ULONG n), (s, t, n))
ST_FORWARD (FindObjects, (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE_PTR o, CK_ULONG m, CK_ULONG_PTR n),
            (s, o, m, n))
ST_FORWARD (FindObjectsFinal, (CK_SESSION_HANDLE s), (s))
ST_FORWARD (GetAttributeValue, (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR t, CK_ULONG n),
            (s, o, t, n))
ST_FORWARD (GenerateRandom, (CK_SESSION_HANDLE s, CK_BYTE_PTR b, CK_ULONG n), (s, b, n))

static CK_RV
st_fault_Finalize (CK_VOID_PTR reserved)
{
  CK_RV rv = st_real->C_Finalize (reserved);
  g_mutex_lock (&st_lock);
  st_n_slots = 0;
  st_last_call = 0;
  g_mutex_unlock (&st_lock);
  return rv;
}

CK_RV C_GetFunctionList (CK_FUNCTION_LIST_PTR_PTR list);

CK_RV
C_GetFunctionList (CK_FUNCTION_LIST_PTR_PTR list)
{
  if (list == NULL)
    return CKR_ARGUMENTS_BAD;
  g_mutex_lock (&st_lock);
  st_configure ();
  if (st_real == NULL)
    {
      const char *path = g_getenv ("ST_FAULT_MODULE");
      if (path == NULL || *path == '\0')
        path = ST_FAULT_DEFAULT_MODULE;
      /* Kept for the process' lifetime, as a loaded module is. */
      st_real_dl = dlopen (path, RTLD_NOW | RTLD_LOCAL);
      CK_C_GetFunctionList get = st_real_dl != NULL ? (CK_C_GetFunctionList) dlsym (st_real_dl, "C_GetFunctionList") : NULL;
      CK_FUNCTION_LIST_PTR real = NULL;
      if (get == NULL || get (&real) != CKR_OK || real == NULL)
        {
          g_printerr ("st-fault-pkcs11: cannot load the real module %s: %s\n", path,
                      st_real_dl == NULL ? dlerror () : "no C_GetFunctionList");
          g_mutex_unlock (&st_lock);
          return CKR_GENERAL_ERROR;
        }
      st_real = real;
      st_wrapped = *real;
      st_wrapped.C_GetFunctionList = C_GetFunctionList;
      st_wrapped.C_Finalize = st_fault_Finalize;
      st_wrapped.C_GetSlotList = st_fault_GetSlotList;
      st_wrapped.C_GetSlotInfo = st_fault_GetSlotInfo;
      st_wrapped.C_GetTokenInfo = st_fault_GetTokenInfo;
      st_wrapped.C_OpenSession = st_fault_OpenSession;
      st_wrapped.C_CloseSession = st_fault_CloseSession;
      st_wrapped.C_GetSessionInfo = st_fault_GetSessionInfo;
      st_wrapped.C_Login = st_fault_Login;
      st_wrapped.C_Logout = st_fault_Logout;
      st_wrapped.C_FindObjectsInit = st_fault_FindObjectsInit;
      st_wrapped.C_FindObjects = st_fault_FindObjects;
      st_wrapped.C_FindObjectsFinal = st_fault_FindObjectsFinal;
      st_wrapped.C_GetAttributeValue = st_fault_GetAttributeValue;
      st_wrapped.C_GenerateRandom = st_fault_GenerateRandom;
      st_wrapped.C_SignInit = st_fault_SignInit;
      st_wrapped.C_Sign = st_fault_Sign;
    }
  g_mutex_unlock (&st_lock);
  *list = &st_wrapped;
  return CKR_OK;
}
