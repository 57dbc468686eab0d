/* station: the command-line client of the station service (stationd).
 *
 *   station [--home DIR | --address ADDR | --system] [--operator NAME] COMMAND [ARGS]
 *
 * It opens no HSM, no database and no port: it logs in to the service on its
 * connection and asks; the service checks every role. See `station --help`,
 * station(1) and the README. */
#include <errno.h>
#include <fcntl.h>
#include <gio/gunixfdlist.h>
#include <glib-unix.h>
#include <glib/gi18n.h>
#include <inttypes.h>
#include <glib/gstdio.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "st-build-config.h"
#include "st-cli-json.h"
#include "st-client.h"
#include "st-error.h"
#include "st-manifest-offline.h"
#include "st-i18n.h"
#include "st-text.h"
#include "st-util.h"

/* A profile or a root certificate is small; refuse anything larger. */
#define ST_CLI_MAX_TEXT (256 * 1024)
#define ST_CLI_PIN_MAX 64

typedef struct {
  gchar *home;
  gchar *address;
  gboolean system;
  gchar *operator_name;
  StDbusStation1 *proxy;   /* once connected */
  gchar *logged_in;        /* the operator logged in on the connection */
} StCli;

static const char st_usage[] = N_(
  "Commands:\n"
  "  setup demo                         make the demo station (SoftHSM2 token, demo CA) in the service's home\n"
  "  setup demo --matter                the same with a test Matter PAA and PAI (VID FFF1) and a test\n"
  "                                     Certification Declaration (docs/matter.md)\n"
  "  setup show [--json]                the same as 'ca show'\n"
  "  ca init --module PATH --token LABEL --station-id ID --admin NAME --out DIR\n"
  "          [--curve p256|p384] [--subject \"O=...,C=...\"] [--force]\n"
  "          [--matter-vid VID [--matter-pid PID]]\n"
  "                                     the key ceremony of a new station: keys made in the HSM,\n"
  "                                     two requests written to DIR (docs/ceremony.md)\n"
  "  ca import --chain FILE --signing-cert FILE\n"
  "                                     the root's certificates, checked against the HSM's keys (admin)\n"
  "  ca show [--json]                   show the HSM, keys, CA chain, days left and the ceremony's state\n"
  "  unlock | lock                      open the HSM for the service (admin; PIN from $STATION_HSM_PIN\n"
  "                                     or a prompt), or close it\n"
  "  status                             what the service is doing\n"
  "  batch create --profile FILE --work-order WO --quantity N\n"
  "  batch run BATCH --port PATH [--port PATH]... [--units N] [--wait S] [--allow-reprovision]\n"
  "  batch list [--json] | batch show BATCH [--all] [--json] | batch close BATCH | batch stop [BATCH]\n"
  "  manifest export BATCH --out DIR [--force]\n"
  "                                     (with the cloud files: aws/, azure/, certs/, jws/; docs/cloud.md)\n"
  "  manifest verify DIR [--root FILE] [--signer-pin HEX] [--json]\n"
  "                                     with --root: verified here, no station, service or login needed\n"
  "  ca verification-cert --code CODE --out FILE [--force]\n"
  "                                     the certificate a cloud asks for to register the issuing CA (admin)\n"
  "  unit verify --port PATH [--profile FILE] [--code TEXT] [--json]\n"
  "  unit resolve UID|SERIAL --keep|--void\n"
  "                                     decide a disputed unit (lead): keep its certificate, or void it\n"
  "                                     so that the next device with the uid is provisioned anew\n"
  "  unit revoke SERIAL --reason R      revoke a shipped unit's certificate (lead); SERIAL: its\n"
  "                                     certificate serial, or its uid or product serial; R: unspecified,\n"
  "                                     keyCompromise, affiliationChanged, superseded,\n"
  "                                     cessationOfOperation or privilegeWithdrawn\n"
  "  crl issue --out FILE [--next-update DAYS] [--force]\n"
  "                                     a CRL of every voided and revoked certificate, signed in the\n"
  "                                     HSM (lead or admin; DAYS 1..365, default 7)\n"
  "  db check | db backup DEST [--force]\n"
  "  operator add NAME --role operator|lead|qa|admin | operator list\n"
  "  operator unlock NAME | operator set-role NAME --role ROLE\n"
  "  admin recover NAME [--new]         break-glass: unlock admin NAME, or add it (--new), with the\n"
  "                                     HSM token's SO PIN ($STATION_SO_PIN or a prompt); no login\n"
  "  batch allow-more-voids BATCH\n"
  "  batch codes BATCH --out DIR        a Matter batch's setup codes, DIR/matter-codes.csv (lead;\n"
  "                                     mode 0600, never replaced: it holds the passcodes)\n"
  "  batch labels BATCH --out DIR [--size WxH] [--dpi N] [--zpl-dpi N]\n"
  "                                     a Matter batch's labels, PNG, PDF and ZPL per done unit (lead;\n"
  "                                     mm, default 50x25; PNG 300 dpi; ZPL for a 203 dpi printer)\n"
  "  audit verify [--root FILE] [--manifests DIR...] [--json] | audit export --out FILE\n"
  "  demo [--ports N] [--units N] [--matter]\n"
  "                                     the whole flow on simulated devices, with a private service\n"
  "                                     (--matter: Matter devices, in matter-demo-home by default)\n"
  "  bench [--units N] [--slots K]      units/s end to end and raw issuance rate\n"
  "\n"
  "The service: --address ADDR (or $STATION_ADDRESS), --system, else the private service of\n"
  "HOME (--home, else $STATION_HOME; start it with 'stationd --home HOME'), else the system's.\n"
  "Commands run as an operator: --operator NAME (else $STATION_OPERATOR), with the PIN from\n"
  "$STATION_OPERATOR_PIN or a prompt. On a demo station, setup, unlock and bench log in as the\n"
  "demo admin unless --operator says otherwise. Roles: operator runs batches; lead creates and\n"
  "closes batches, exports manifests and a Matter batch's codes and labels, allows more voids and\n"
  "decides disputed units; qa verifies units, manifests and the audit log; admin sets up,\n"
  "unlocks the HSM and manages operators.\n"
  "The HSM PIN reaches only the service, and only from an admin's 'unlock' or 'setup demo'.\n"
  "Exit codes: 0 done, 1 a check failed, 2 another failure, 3 usage, 4 PIN or role refused,\n"
  "5 not found, 6 the line stopped (station(1), EXIT STATUS). --json: one JSON document on stdout\n"
  "(docs/cli-json.md).\n");

/* ---- exit codes (station(1), EXIT STATUS; the README) ------------------- */

typedef enum {
  ST_EXIT_OK = 0,
  ST_EXIT_CHECK = 1,      /* a check ran and failed: verify, db check, units that failed */
  ST_EXIT_ERROR = 2,      /* any other failure: bad input data, busy, an existing file */
  ST_EXIT_USAGE = 3,      /* the command line is wrong: nothing was done */
  ST_EXIT_AUTH = 4,       /* wrong PIN, operator locked, or the role may not do it */
  ST_EXIT_NOT_FOUND = 5,  /* no such batch, unit, operator or file; no service */
  ST_EXIT_STOPPED = 6,    /* the line stopped (the HSM or the disk failed), the HSM is locked, or the service went away */
} StCliExit;

/* The exit code of each StError; the codes not named are ST_EXIT_ERROR. */
static const StCliExit st_cli_exit_of_error[ST_ERROR_LAST] = {
  [ST_ERROR_VERIFY_FAILED] = ST_EXIT_CHECK,
  [ST_ERROR_AUTH_FAILED] = ST_EXIT_AUTH,
  [ST_ERROR_PERMISSION_DENIED] = ST_EXIT_AUTH,
  [ST_ERROR_NOT_FOUND] = ST_EXIT_NOT_FOUND,
  [ST_ERROR_HSM_LOCKED] = ST_EXIT_STOPPED,
};

static StCliExit
st_cli_exit_code (const GError *error)
{
  if (error->domain == ST_ERROR && error->code >= 0 && error->code < ST_ERROR_LAST)
    {
      StCliExit code = st_cli_exit_of_error[error->code];
      return code != ST_EXIT_OK ? code : ST_EXIT_ERROR;
    }
  if (error->domain == G_OPTION_ERROR)
    return ST_EXIT_USAGE;
  /* the service went away mid-call (st_dbus_error_clean says so) */
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CLOSED)
      || g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_NO_REPLY)
      || g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_DISCONNECTED))
    return ST_EXIT_STOPPED;
  return ST_EXIT_ERROR;
}

/* ---- helpers ----------------------------------------------------------- */

/* A file this client could not write (ST_ERROR_WRITE, the system's reason
 * in its message): what to do, when the reason is the disk's. A disk error
 * here is not the line's: it exits 2, not 6. */
static void
st_cli_write_hint (GError *error)
{
  if (!g_error_matches (error, ST_ERROR, ST_ERROR_WRITE))
    return;
  const char *hint = NULL;
  if (strstr (error->message, g_strerror (ENOSPC)) != NULL
      || strstr (error->message, g_strerror (EDQUOT)) != NULL)
    hint = _("free space on that disk, or write somewhere else");
  else if (strstr (error->message, g_strerror (EROFS)) != NULL
           || strstr (error->message, g_strerror (EACCES)) != NULL)
    hint = _("choose a folder you may write to");
  else if (strstr (error->message, g_strerror (EIO)) != NULL)
    hint = _("the disk failed: check it (dmesg), or write somewhere else");
  if (hint == NULL)
    return;
  gchar *message = g_strdup_printf ("%s: %s", error->message, hint);
  g_free (error->message);
  error->message = message;
}

static int
st_cli_fail (GError *error)
{
  st_dbus_error_clean (error);
  st_cli_write_hint (error);
  g_autofree gchar *message = st_text_escape (error->message, -1, ST_TEXT_ONE_LINE);
  g_printerr ("station: %s\n", message);
  return st_cli_exit_code (error);
}

static gboolean
st_cli_parse (StCli *cli, const char *command, const GOptionEntry *entries,
              int *argc, char ***argv, GError **error)
{
  const GOptionEntry common[] = {
    { "home", 0, 0, G_OPTION_ARG_FILENAME, &cli->home, N_("Station home folder (its private service)"), "DIR" },
    { "address", 0, 0, G_OPTION_ARG_STRING, &cli->address, N_("The service's peer-to-peer address"), "ADDR" },
    { "system", 0, 0, G_OPTION_ARG_NONE, &cli->system, N_("The system's station service"), NULL },
    { "operator", 0, 0, G_OPTION_ARG_STRING, &cli->operator_name, N_("Who does this"), "NAME" },
    { NULL }
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new (command);
  g_option_context_set_translation_domain (ctx, GETTEXT_PACKAGE);
  g_option_context_add_main_entries (ctx, common, NULL);
  if (entries != NULL)
    g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, argc, argv, error))
    {
      g_prefix_error (error, "%s: ", command);
      return FALSE;
    }
  return TRUE;
}

static const char *
st_cli_take_sub (int *argc, char ***argv)
{
  const char *sub = *argc > 1 ? (*argv)[1] : NULL;
  (*argc)--;
  (*argv)++;
  return sub;
}

static void
st_cli_target (StCli *cli, StClientTarget *t)
{
  memset (t, 0, sizeof *t);
  t->address = cli->address;
  t->system = cli->system;
  t->home = cli->home;
  st_client_target_from_env (t);
}

static gboolean
st_cli_connect (StCli *cli, GError **error)
{
  if (cli->proxy != NULL)
    return TRUE;
  StClientTarget t;
  st_cli_target (cli, &t);
  cli->proxy = st_client_connect (&t, NULL, error);
  return cli->proxy != NULL;
}

/* The operator named by --operator, else $STATION_OPERATOR. */
static const char *
st_cli_operator_arg (StCli *cli)
{
  if (cli->operator_name != NULL && *cli->operator_name != '\0')
    return cli->operator_name;
  const char *env = g_getenv ("STATION_OPERATOR");
  return env != NULL && *env != '\0' ? env : NULL;
}

static gboolean
st_cli_login_as (StCli *cli, const char *name, const char *pin, GError **error)
{
  g_autofree gchar *role = NULL;
  if (!st_dbus_station1_call_login_sync (cli->proxy, name, pin, &role, NULL, error))
    {
      st_dbus_error_clean (*error);
      return FALSE;
    }
  g_free (cli->logged_in);
  cli->logged_in = g_strdup (name);
  return TRUE;
}

/* Logs in as the operator the command names (PIN from STATION_OPERATOR_PIN
 * or a prompt). Without a name nobody logs in, and the service's refusal
 * (naming the role the command needs) is what the user reads. */
static gboolean
st_cli_login (StCli *cli, GError **error)
{
  if (!st_cli_connect (cli, error))
    return FALSE;
  if (cli->logged_in != NULL)
    return TRUE;
  const char *name = st_cli_operator_arg (cli);
  if (name == NULL)
    return TRUE;
  g_autofree gchar *prompt = g_strdup_printf (_("PIN for operator %s: "), name);
  gchar *pin = st_read_secret (prompt, "STATION_OPERATOR_PIN", ST_CLI_PIN_MAX, error);
  if (pin == NULL)
    return FALSE;
  gboolean ok = st_cli_login_as (cli, name, pin, error);
  st_secret_free (pin);
  return ok;
}

static GVariant *
st_cli_status (StCli *cli, GError **error)
{
  GVariant *status = NULL;
  if (!st_cli_connect (cli, error)
      || !st_dbus_station1_call_status_sync (cli->proxy, &status, NULL, error))
    return NULL;
  return status;
}

/* The demo logs in as its own demo operators with their documented PINs. */
static gboolean
st_cli_demo_login (StCli *cli, const char *role_name, GError **error)
{
  StRole role = 0;
  const char *name = NULL, *pin = NULL;
  if (!st_role_from_string (role_name, &role, error))
    return FALSE;
  if (!st_demo_operator (role, &name, &pin))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL, _("no demo operator for role %s"), role_name);
      return FALSE;
    }
  if (!st_cli_login_as (cli, name, pin, error))
    {
      g_prefix_error (error, _("the demo logs in as demo operator '%s' with the PIN the README "
                      "documents: "), name);
      return FALSE;
    }
  return TRUE;
}

/* An admin's command: on a demo station without --operator, the demo
 * admin; else the operator named. A station without operators yet needs
 * no login (its first admin, its set-up). */
static gboolean
st_cli_admin_login (StCli *cli, GError **error)
{
  g_autoptr(GVariant) status = st_cli_status (cli, error);
  if (status == NULL)
    return FALSE;
  gboolean demo = FALSE;
  gint64 operators = 0;
  g_variant_lookup (status, "demo", "b", &demo);
  g_variant_lookup (status, "operators", "x", &operators);
  if (operators == 0)
    return TRUE;
  if (demo && st_cli_operator_arg (cli) == NULL)
    return st_cli_demo_login (cli, "admin", error);
  return st_cli_login (cli, error);
}

static gboolean
st_cli_parse_id (const char *text, gint64 *out, GError **error)
{
  guint64 v = 0;
  if (text == NULL || !g_ascii_string_to_unsigned (text, 10, 1, G_MAXINT64, &v, NULL))
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("'%s' is not a batch id: give the number that 'batch create' printed (see 'batch list')"),
                   text != NULL ? text : "");
      return FALSE;
    }
  *out = (gint64) v;
  return TRUE;
}

/* The root certificate file's text for a verification ("" without one). */
static gchar *
st_cli_root_pem (const char *path, GError **error)
{
  if (path == NULL)
    return g_strdup ("");
  return st_client_read_text (path, ST_CLI_MAX_TEXT, NULL, error);
}

/* What the service says may quote a device (a model, an answer): the CLI
 * prints it through st_text_escape() (st-text.h), a report with its lines. */
static void
st_cli_print_text (const char *text)
{
  g_autofree gchar *safe = st_text_escape (text != NULL ? text : "", -1, ST_TEXT_KEEP_NEWLINES);
  fputs (safe, stdout);
}

#define ST_CLI_LINE(s) st_text_escape ((s) != NULL ? (s) : "", -1, ST_TEXT_ONE_LINE)

/* A check's exit: 0 when it passed, else 1 with why on stderr. */
static int
st_cli_verdict (gboolean ok, const char *failure)
{
  if (ok)
    return 0;
  g_autofree gchar *why = ST_CLI_LINE (failure != NULL && *failure != '\0' ? failure : _("the check failed"));
  g_printerr ("station: %s\n", why);
  return 1;
}

/* ---- running a line: batch run, demo --------------------------------- */

typedef struct {
  StCli *cli;
  gint64 batch_id;
  GMainLoop *loop;
  gboolean ended, stopping, lost;
  guint passed, failed, refused, ports_failed;
  gboolean stopped, batch_done;
  gchar *error;
  guint shown;                 /* unit lines printed (the service drops some for a client that does not read) */
} StRun;

static void
st_print_unit (const StUnitResult *r)
{
  g_autofree gchar *uid = ST_CLI_LINE (r->uid_hex), *reason = ST_CLI_LINE (r->reason);
  g_autofree gchar *serial = ST_CLI_LINE (r->product_serial), *cert = ST_CLI_LINE (r->cert_serial);
  printf ("%-22s %-26s %-8s %6.2fs  %s", r->port, uid, st_unit_outcome_to_string (r->outcome),
          r->seconds, reason);
  if (r->outcome == ST_UNIT_PASSED)
    printf (_(" (serial %s, certificate %s)"), serial, cert);
  fputc ('\n', stdout);
  if (r->outcome != ST_UNIT_PASSED && r->detail != NULL)
    {
      g_autofree gchar *step = ST_CLI_LINE (r->step), *detail = ST_CLI_LINE (r->detail);
      printf (_("%-22s   step %s: %s\n"), "", step, detail);
    }
  fflush (stdout);
}

static void
st_run_on_started (StDbusStation1 *proxy, gint64 batch_id, const char *const *ports,
                   const char *recovered, StRun *run)
{
  if (batch_id != run->batch_id)
    return;
  if (recovered != NULL && *recovered != '\0')
    {
      printf (_("Recovered from an earlier interruption:\n"));
      st_cli_print_text (recovered);
    }
  /* the line is up: say so before the first unit ends, a socket a line */
  for (guint i = 0; ports != NULL && ports[i] != NULL; i++)
    {
      g_autofree gchar *shown = st_text_escape (ports[i], -1, ST_TEXT_ONE_LINE);
      printf (_("waiting for a device on %s\n"), shown);
    }
  fflush (stdout);
}

static void
st_run_on_result (StDbusStation1 *proxy, GVariant *dict, StRun *run)
{
  gint64 batch = 0;
  g_autoptr(StUnitResult) r = st_unit_result_from_variant (dict, &batch);
  if (batch == run->batch_id)
    {
      st_print_unit (r);
      run->shown++;
    }
}

static void
st_run_on_notice (StDbusStation1 *proxy, const char *port, const char *uid, const char *text,
                  StRun *run)
{
  g_autofree gchar *safe_uid = ST_CLI_LINE (uid), *safe_text = ST_CLI_LINE (text);
  g_printerr (_("station: %s: uid %s: %s\n"), port, safe_uid, safe_text);
}

static void
st_run_on_port (StDbusStation1 *proxy, const char *port, const char *message, StRun *run)
{
  g_autofree gchar *safe = ST_CLI_LINE (message);
  printf (_("%-22s gave up: %s\n"), port, safe);
  fflush (stdout);
}

static void
st_run_on_ended (StDbusStation1 *proxy, gint64 batch_id, GVariant *d, StRun *run)
{
  if (batch_id != run->batch_id)
    return;
  g_variant_lookup (d, "passed", "u", &run->passed);
  g_variant_lookup (d, "failed", "u", &run->failed);
  g_variant_lookup (d, "refused", "u", &run->refused);
  g_variant_lookup (d, "ports-failed", "u", &run->ports_failed);
  g_variant_lookup (d, "stopped", "b", &run->stopped);
  g_variant_lookup (d, "batch-done", "b", &run->batch_done);
  const char *message = st_dict_get_string (d, "error");
  if (*message != '\0')
    run->error = g_strdup (message);
  run->ended = TRUE;
  g_main_loop_quit (run->loop);
}

static void
st_run_on_closed (GDBusConnection *connection, gboolean vanished, GError *error, StRun *run)
{
  run->lost = TRUE;
  g_main_loop_quit (run->loop);
}

static gboolean
st_run_on_signal (gpointer data)
{
  StRun *run = data;
  if (!run->stopping)
    {
      g_printerr (_("station: stopping: units in flight finish or fail safely\n"));
      st_dbus_station1_call_line_stop (run->cli->proxy, run->batch_id, NULL, NULL, NULL);
    }
  run->stopping = TRUE;
  return G_SOURCE_CONTINUE;
}

/* Runs the line in the service until it ends; Ctrl-C stops it cleanly.
 * Returns the exit code. */
static int
st_cli_run_line (StCli *cli, gint64 batch_id, const char *const *ports, guint units, guint wait_s,
                 gboolean allow_reprovision, guint *passed)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  StRun run = { .cli = cli, .batch_id = batch_id, .loop = loop };
  GDBusConnection *connection = g_dbus_proxy_get_connection (G_DBUS_PROXY (cli->proxy));
  gulong handlers[] = {
    g_signal_connect (cli->proxy, "line-started", G_CALLBACK (st_run_on_started), &run),
    g_signal_connect (cli->proxy, "unit-result", G_CALLBACK (st_run_on_result), &run),
    g_signal_connect (cli->proxy, "port-failed", G_CALLBACK (st_run_on_port), &run),
    g_signal_connect (cli->proxy, "line-notice", G_CALLBACK (st_run_on_notice), &run),
    g_signal_connect (cli->proxy, "line-ended", G_CALLBACK (st_run_on_ended), &run),
  };
  gulong closed = g_signal_connect (connection, "closed", G_CALLBACK (st_run_on_closed), &run);
  GVariantBuilder options;
  g_variant_builder_init (&options, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&options, "{sv}", "wait", g_variant_new_uint32 (wait_s));
  g_variant_builder_add (&options, "{sv}", "allow-reprovision", g_variant_new_boolean (allow_reprovision));
  g_autoptr(GVariant) info = NULL;
  gboolean started = st_dbus_station1_call_line_start_sync (cli->proxy, batch_id, ports, units,
                                                            g_variant_builder_end (&options),
                                                            &info, NULL, &error);
  gboolean nothing = FALSE;
  if (started)
    g_variant_lookup (info, "nothing-to-do", "b", &nothing);
  guint sigint = 0, sigterm = 0;
  if (started && !nothing)
    {
      sigint = g_unix_signal_add (SIGINT, st_run_on_signal, &run);
      sigterm = g_unix_signal_add (SIGTERM, st_run_on_signal, &run);
      if (!run.ended && !run.lost)
        g_main_loop_run (loop);
      g_source_remove (sigint);
      g_source_remove (sigterm);
    }
  for (guint i = 0; i < G_N_ELEMENTS (handlers); i++)
    g_signal_handler_disconnect (cli->proxy, handlers[i]);
  g_signal_handler_disconnect (connection, closed);
  if (!started)
    return st_cli_fail (error);
  if (nothing)
    {
      g_autoptr(GVariant) b = NULL;
      gint64 quantity = 0;
      if (st_dbus_station1_call_batch_get_sync (cli->proxy, batch_id, &b, NULL, NULL))
        quantity = st_dict_get_int64 (b, "quantity");
      g_print (_("batch %" PRId64 " already has its %" PRId64 " units done\n"),
               batch_id, quantity);
      return 0;
    }
  if (run.lost)
    {
      g_printerr (_("station: the station service went away during the run: the units it recorded "
                  "are kept; start it again and run the batch again to resume\n"));
      return ST_EXIT_STOPPED;
    }
  if (passed != NULL)
    *passed = run.passed;
  g_print (_("batch %" PRId64 ": %u passed, %u failed, %u refused%s%s\n"), batch_id,
           run.passed, run.failed, run.refused, run.ports_failed > 0 ? _(", some sockets gave up") : "",
           run.batch_done ? _("; the batch has all its units") : "");
  guint total = run.passed + run.failed + run.refused;
  if (run.shown < total)
    g_printerr (_("station: %u of the %u unit lines were not shown: the service dropped them while this "
                "client was not reading; `station batch show %" PRId64 " --all` lists every unit\n"),
                total - run.shown, total, batch_id);
  if (run.error != NULL)
    {
      g_printerr ("station: %s\n", run.error);
      g_free (run.error);
      return ST_EXIT_STOPPED;
    }
  gboolean all = run.failed == 0 && run.refused == 0 && run.ports_failed == 0 && !run.stopped;
  return all ? 0 : 1;
}

/* ---- commands ---------------------------------------------------------- */

/* `setup show --json`, `ca show --json`: station-cli-setup-show/2. */
static int
st_cli_setup_show_json (StCli *cli)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) info = NULL;
  if (!st_cli_login (cli, &error)
      || !st_dbus_station1_call_setup_info_sync (cli->proxy, &info, NULL, &error))
    return st_cli_fail (error);
  st_cli_json_print_setup (info);
  return ST_EXIT_OK;
}

static int
cmd_setup (StCli *cli, int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  gboolean json = FALSE, matter = FALSE;
  const GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, N_("setup show: print one JSON document (docs/cli-json.md)"), NULL },
    { "matter", 0, 0, G_OPTION_ARG_NONE, &matter,
      N_("setup demo: a Matter demo (a test PAA and PAI of VID FFF1, a test Certification Declaration)"), NULL },
    { NULL }
  };
  if (!st_cli_parse (cli, "setup demo|show", entries, &argc, &argv, &error))
    return st_cli_fail (error);
  if (matter && g_strcmp0 (argc > 1 ? argv[1] : NULL, "demo") != 0)
    {
      g_printerr ("%s\n", _("station: --matter goes with 'setup demo'"));
      return ST_EXIT_USAGE;
    }
  if (json && g_strcmp0 (argc > 1 ? argv[1] : NULL, "show") != 0)
    {
      g_printerr ("%s\n", _("station: --json goes with 'setup show', not with 'setup demo'"));
      return ST_EXIT_USAGE;
    }
  const char *what = argc > 1 ? argv[1] : NULL;
  if (g_strcmp0 (what, "demo") == 0)
    {
      /* Before any operator exists anyone may set the demo up; after, an admin. */
      if (!st_cli_admin_login (cli, &error))
        return st_cli_fail (error);
      gchar *pin = st_read_secret (_("PIN for the new demo token: "), "STATION_HSM_PIN", ST_CLI_PIN_MAX,
                                   &error);
      if (pin == NULL)
        return st_cli_fail (error);
      gboolean ok = matter ? st_dbus_station1_call_setup_demo_matter_sync (cli->proxy, pin, NULL, &error)
                           : st_dbus_station1_call_setup_demo_sync (cli->proxy, pin, NULL, &error);
      st_secret_free (pin);
      if (!ok)
        return st_cli_fail (error);
      g_autoptr(GVariant) status = st_cli_status (cli, &error);
      g_print (_("The demo station is ready in %s\n"),
               status != NULL ? st_dict_get_string (status, "home") : _("the service's home"));
      return 0;
    }
  if (g_strcmp0 (what, "show") == 0)
    {
      if (json)
        return st_cli_setup_show_json (cli);
      g_autofree gchar *text = NULL;
      if (!st_cli_login (cli, &error)
          || !st_dbus_station1_call_setup_show_sync (cli->proxy, &text, NULL, &error))
        return st_cli_fail (error);
      g_print ("%s", text);
      return 0;
    }
  g_printerr (_("station: setup needs 'demo' or 'show'\n"));
  return ST_EXIT_USAGE;
}

/* ---- the key ceremony: station ca init|import|show ---------------------- */

#define ST_CLI_MAX_PEM (256 * 1024)

/* A value of CaInit's a{ss} info ("" when absent). */
static const char *
st_variant_lookup_s (GVariant *info, const char *key)
{
  const char *v = NULL;
  return g_variant_lookup (info, key, "&s", &v) ? v : "";
}

static int
cmd_ca_init (StCli *cli, int argc, char **argv)
{
  g_autofree gchar *module = NULL, *token = NULL, *station_id = NULL, *curve = NULL;
  g_autofree gchar *subject = NULL, *admin = NULL, *out_dir = NULL;
  g_autofree gchar *matter_vid = NULL, *matter_pid = NULL;
  gboolean force = FALSE;
  const GOptionEntry entries[] = {
    { "module", 0, 0, G_OPTION_ARG_FILENAME, &module, N_("The HSM's PKCS#11 module"), "PATH" },
    { "token", 0, 0, G_OPTION_ARG_STRING, &token, N_("The token's label"), "LABEL" },
    { "station-id", 0, 0, G_OPTION_ARG_STRING, &station_id, N_("The station's id (letters, digits, - _ .)"), "ID" },
    { "curve", 0, 0, G_OPTION_ARG_STRING, &curve, N_("p256 (default) or p384"), "CURVE" },
    { "subject", 0, 0, G_OPTION_ARG_STRING, &subject, N_("The requests' subject without CN (\"O=Example,C=DE\")"), "DN" },
    { "admin", 0, 0, G_OPTION_ARG_STRING, &admin, N_("The station's first admin (PIN from $STATION_OPERATOR_PIN or a prompt)"), "NAME" },
    { "out", 0, 0, G_OPTION_ARG_FILENAME, &out_dir, N_("Where the two requests are written"), "DIR" },
    { "force", 0, 0, G_OPTION_ARG_NONE, &force, N_("Replace requests already in DIR"), NULL },
    { "matter-vid", 0, 0, G_OPTION_ARG_STRING, &matter_vid,
      N_("A Matter station: the Vendor ID of its PAI, 4 upper-case hex digits (FFF1)"), "VID" },
    { "matter-pid", 0, 0, G_OPTION_ARG_STRING, &matter_pid,
      N_("With --matter-vid: the one Product ID the PAI issues for (8000)"), "PID" },
    { NULL }
  };
  g_autoptr(GError) error = NULL;
  if (!st_cli_parse (cli, "ca init", entries, &argc, &argv, &error))
    return st_cli_fail (error);
  if (module == NULL || token == NULL || station_id == NULL || admin == NULL || out_dir == NULL)
    {
      g_printerr (_("station: ca init needs --module PATH --token LABEL --station-id ID --admin NAME "
                  "--out DIR (docs/ceremony.md)\n"));
      return ST_EXIT_USAGE;
    }
  const char *names[] = { "issuing-ca.csr.pem", "station-signing.csr.pem" };
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree gchar *path = g_build_filename (out_dir, names[i], NULL);
      if (!force && g_file_test (path, G_FILE_TEST_EXISTS))
        {
          g_printerr (_("station: %s exists: choose another --out, or add --force to replace it\n"), path);
          return ST_EXIT_ERROR;
        }
    }
  if (g_mkdir_with_parents (out_dir, 0755) != 0)
    {
      g_printerr (_("station: cannot create %s: %s\n"), out_dir, g_strerror (errno));
      return ST_EXIT_ERROR;
    }
  /* a new home has no operators: nobody logs in (the admin comes with the ceremony) */
  if (!st_cli_admin_login (cli, &error))
    return st_cli_fail (error);
  g_autofree gchar *hsm_prompt = g_strdup_printf (_("User PIN of token %s: "), token);
  gchar *hsm_pin = st_read_secret (hsm_prompt, "STATION_HSM_PIN", ST_CLI_PIN_MAX, &error);
  if (hsm_pin == NULL)
    return st_cli_fail (error);
  g_autofree gchar *admin_prompt = g_strdup_printf (_("PIN for the new admin %s: "), admin);
  gchar *admin_pin = st_read_secret (admin_prompt, "STATION_OPERATOR_PIN", ST_CLI_PIN_MAX, &error);
  if (admin_pin == NULL)
    {
      st_secret_free (hsm_pin);
      return st_cli_fail (error);
    }
  if (g_getenv ("STATION_OPERATOR_PIN") == NULL)
    {
      /* typed at a prompt: once more, as a new PIN is */
      g_autofree gchar *again_prompt = g_strdup_printf (_("PIN for the new admin %s, again: "), admin);
      gchar *again = st_read_secret (again_prompt, "STATION_OPERATOR_PIN", ST_CLI_PIN_MAX, &error);
      gboolean same = again != NULL && g_strcmp0 (again, admin_pin) == 0;
      st_secret_free (again);
      if (!same)
        {
          st_secret_free (hsm_pin);
          st_secret_free (admin_pin);
          if (error != NULL)
            return st_cli_fail (error);
          g_printerr (_("station: the two PINs for %s differ: nothing was done; run 'ca init' again\n"), admin);
          return ST_EXIT_ERROR;
        }
    }
  GVariantBuilder options;
  g_variant_builder_init (&options, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&options, "{sv}", "module", g_variant_new_string (module));
  g_variant_builder_add (&options, "{sv}", "token", g_variant_new_string (token));
  g_variant_builder_add (&options, "{sv}", "station-id", g_variant_new_string (station_id));
  g_variant_builder_add (&options, "{sv}", "admin", g_variant_new_string (admin));
  if (curve != NULL)
    g_variant_builder_add (&options, "{sv}", "curve", g_variant_new_string (curve));
  if (subject != NULL)
    g_variant_builder_add (&options, "{sv}", "subject", g_variant_new_string (subject));
  if (matter_vid != NULL)
    g_variant_builder_add (&options, "{sv}", "matter-vid", g_variant_new_string (matter_vid));
  if (matter_pid != NULL)
    g_variant_builder_add (&options, "{sv}", "matter-pid", g_variant_new_string (matter_pid));
  g_autoptr(GVariant) requests = NULL, info = NULL;
  gboolean ok = st_dbus_station1_call_ca_init_sync (cli->proxy, g_variant_builder_end (&options), hsm_pin,
                                                    admin_pin, &requests, &info, NULL, &error);
  st_secret_free (hsm_pin);
  st_secret_free (admin_pin);
  if (!ok)
    return st_cli_fail (error);
  GVariantIter iter;
  const char *name, *pem;
  g_variant_iter_init (&iter, requests);
  while (g_variant_iter_next (&iter, "(&s&s)", &name, &pem))
    {
      /* the service names them: nothing but the two known names is written */
      if (!g_strv_contains (names, name) || strlen (pem) > ST_CLI_MAX_PEM)
        {
          g_printerr (_("station: the service sent an unexpected file; nothing more is written\n"));
          return ST_EXIT_ERROR;
        }
      g_autofree gchar *path = g_build_filename (out_dir, name, NULL);
      if (!st_file_write_durable (path, pem, strlen (pem), 0644, &error))
        return st_cli_fail (error);
      g_print (_("wrote %s\n"), path);
    }
  g_autofree gchar *token_desc = ST_CLI_LINE (st_variant_lookup_s (info, "token"));
  g_print (_("token:                      %s\n"), token_desc);
  g_print (_("issuing CA key:             %s\n"), st_variant_lookup_s (info, "ca-key"));
  g_print (_("station signing key:        %s\n"), st_variant_lookup_s (info, "signing-key"));
  g_print (_("issuing-ca.csr SHA-256:     %s\n"), st_variant_lookup_s (info, "ca-csr-sha256"));
  g_print (_("station-signing.csr SHA-256: %s\n"), st_variant_lookup_s (info, "signing-csr-sha256"));
  g_print (_("Write these into the ceremony record. Next: the root signs the two requests "
           "(docs/ceremony.md), then 'station --operator %s ca import --chain FILE --signing-cert FILE'\n"),
           admin);
  return 0;
}

static int
cmd_ca_import (StCli *cli, int argc, char **argv)
{
  g_autofree gchar *chain_path = NULL, *signing_path = NULL;
  const GOptionEntry entries[] = {
    { "chain", 0, 0, G_OPTION_ARG_FILENAME, &chain_path, N_("PEM: the issuing CA certificate, then up to and including the root"), "FILE" },
    { "signing-cert", 0, 0, G_OPTION_ARG_FILENAME, &signing_path, N_("PEM: the station signing certificate"), "FILE" },
    { NULL }
  };
  g_autoptr(GError) error = NULL;
  if (!st_cli_parse (cli, "ca import", entries, &argc, &argv, &error))
    return st_cli_fail (error);
  if (chain_path == NULL || signing_path == NULL)
    {
      g_printerr (_("station: ca import needs --chain FILE --signing-cert FILE (docs/ceremony.md)\n"));
      return ST_EXIT_USAGE;
    }
  g_autofree gchar *chain = st_client_read_text (chain_path, ST_CLI_MAX_PEM, NULL, &error);
  if (chain == NULL)
    return st_cli_fail (error);
  g_autofree gchar *signing = st_client_read_text (signing_path, ST_CLI_MAX_PEM, NULL, &error);
  if (signing == NULL)
    return st_cli_fail (error);
  if (!st_cli_admin_login (cli, &error))
    return st_cli_fail (error);
  gchar *pin = st_read_secret (_("HSM user PIN: "), "STATION_HSM_PIN", ST_CLI_PIN_MAX, &error);
  if (pin == NULL)
    return st_cli_fail (error);
  g_autofree gchar *report = NULL;
  gboolean ok = st_dbus_station1_call_ca_import_sync (cli->proxy, chain, signing, pin, &report, NULL, &error);
  st_secret_free (pin);
  if (!ok)
    return st_cli_fail (error);
  st_cli_print_text (report);
  g_print (_("the certificates are imported and station.conf is complete: an admin unlocks the "
           "station with 'station unlock' ('station ca show' shows the set-up)\n"));
  return 0;
}

static int
cmd_ca_show (StCli *cli, int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  gboolean json = FALSE;
  const GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, N_("Print one JSON document (docs/cli-json.md)"), NULL },
    { NULL }
  };
  if (!st_cli_parse (cli, "ca show", entries, &argc, &argv, &error))
    return st_cli_fail (error);
  if (json)
    return st_cli_setup_show_json (cli);
  g_autofree gchar *text = NULL;
  if (!st_cli_login (cli, &error)
      || !st_dbus_station1_call_setup_show_sync (cli->proxy, &text, NULL, &error))
    return st_cli_fail (error);
  st_cli_print_text (text);
  return 0;
}

static int st_cli_ca_verification_cert (StCli *cli, int argc, char **argv);

/* The ca command group: one row per subcommand. */
static const struct {
  const char *name;
  int (*run) (StCli *cli, int argc, char **argv);
} st_ca_commands[] = {
  { "init", cmd_ca_init },
  { "import", cmd_ca_import },
  { "show", cmd_ca_show },
  { "verification-cert", st_cli_ca_verification_cert },
};

static int
cmd_ca (StCli *cli, int argc, char **argv)
{
  const char *sub = argc > 1 ? argv[1] : NULL;
  for (guint i = 0; sub != NULL && i < G_N_ELEMENTS (st_ca_commands); i++)
    if (g_strcmp0 (sub, st_ca_commands[i].name) == 0)
      return st_ca_commands[i].run (cli, argc - 1, argv + 1);
  g_autoptr(GString) known = g_string_new (NULL);
  for (guint i = 0; i < G_N_ELEMENTS (st_ca_commands); i++)
    g_string_append_printf (known, "%s%s", i > 0 ? ", " : "", st_ca_commands[i].name);
  g_printerr (_("station: ca needs one of: %s\n"), known->str);
  return ST_EXIT_USAGE;
}

static int
cmd_unlock (StCli *cli, int argc, char **argv, gboolean unlock)
{
  g_autoptr(GError) error = NULL;
  if (!st_cli_parse (cli, unlock ? "unlock" : "lock", NULL, &argc, &argv, &error)
      || !st_cli_admin_login (cli, &error))
    return st_cli_fail (error);
  if (!unlock)
    {
      if (!st_dbus_station1_call_lock_sync (cli->proxy, NULL, &error))
        return st_cli_fail (error);
      return 0;  /* nothing to say: `station status` shows it */
    }
  gchar *pin = st_read_secret (_("HSM user PIN: "), "STATION_HSM_PIN", ST_CLI_PIN_MAX, &error);
  if (pin == NULL)
    return st_cli_fail (error);
  gboolean ok = st_dbus_station1_call_unlock_sync (cli->proxy, pin, NULL, &error);
  st_secret_free (pin);
  if (!ok)
    return st_cli_fail (error);
  return 0;  /* nothing to say: `station status` shows it */
}

static int
cmd_status (StCli *cli, int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  if (!st_cli_parse (cli, "status", NULL, &argc, &argv, &error))
    return st_cli_fail (error);
  g_autoptr(GVariant) s = st_cli_status (cli, &error);
  if (s == NULL)
    return st_cli_fail (error);
  gboolean configured = FALSE, unlocked = FALSE, demo = FALSE;
  gint64 operators = 0;
  guint sessions = 0;
  g_variant_lookup (s, "configured", "b", &configured);
  g_variant_lookup (s, "unlocked", "b", &unlocked);
  g_variant_lookup (s, "demo", "b", &demo);
  g_autoptr(GVariant) running = g_variant_lookup_value (s, "running-batches", G_VARIANT_TYPE ("ax"));
  g_variant_lookup (s, "operators", "x", &operators);
  g_variant_lookup (s, "sessions", "u", &sessions);
  g_print (_("service     %s (%s)\n"), st_dbus_station1_get_version (cli->proxy),
           st_dict_get_string (s, "home"));
  g_print (_("station     %s%s\n"), configured ? st_dict_get_string (s, "station-id") : _("not set up yet"),
           demo ? _(" (demo)") : "");
  const char *ceremony = st_dict_get_string (s, "ceremony");
  if (g_strcmp0 (ceremony, "awaiting-import") == 0)
    g_print (_("ceremony    awaiting 'station ca import' (docs/ceremony.md)\n"));
  g_print (_("HSM         %s\n"), unlocked ? _("unlocked") : _("locked: an admin runs 'station unlock'"));
  gsize n_running = 0;
  const gint64 *batches = running != NULL ? g_variant_get_fixed_array (running, &n_running, sizeof (gint64)) : NULL;
  if (n_running == 0)
    g_print (_("line        idle\n"));
  for (gsize i = 0; i < n_running; i++)
    g_print (_("line        running batch %" PRId64 "\n"), batches[i]);
  g_print (_("operators   %" PRId64 ", %u logged in now\n"), operators, sessions);
  return 0;
}

static int
cmd_batch_create (StCli *cli, const char *profile_path, const char *work_order, gint quantity)
{
  g_autoptr(GError) error = NULL;
  if (profile_path == NULL || work_order == NULL || *work_order == '\0' || quantity <= 0)
    {
      g_printerr (_("station: batch create needs --profile FILE, --work-order WO and --quantity N (N >= 1)\n"));
      return ST_EXIT_USAGE;
    }
  if (!st_cli_login (cli, &error))
    return st_cli_fail (error);
  g_autofree gchar *text = st_client_read_text (profile_path, ST_CLI_MAX_TEXT, NULL, &error);
  if (text == NULL)
    {
      g_prefix_error (&error, _("cannot read the profile: "));
      return st_cli_fail (error);
    }
  gint64 id = 0;
  g_autoptr(GVariant) info = NULL;
  if (!st_dbus_station1_call_batch_create_sync (cli->proxy, profile_path, text, work_order, quantity,
                                                &id, &info, NULL, &error))
    return st_cli_fail (error);
  g_print (_("Created batch for work order %s: %d x %s (%s, %s)\n"), work_order, quantity,
           st_dict_get_string (info, "product"), st_dict_get_string (info, "key-mode"),
           st_dict_get_string (info, "algorithm"));
  g_print ("%" G_GINT64_FORMAT "\n", id);
  return 0;
}

static void
st_print_batch_line (StBatchInfo *b)
{
  g_autofree gchar *created = st_time_iso8601_from_unix (b->created_at);
  g_print ("%6" G_GINT64_FORMAT "  %-7s %-16s %-24s %5" G_GINT64_FORMAT " %5" G_GINT64_FORMAT " %5"
           G_GINT64_FORMAT "  %s\n",
           b->id, b->state, b->work_order, b->product, b->quantity, b->n_done, b->n_failed, created);
}

/* A call to the service that may take long (DbCheck, AuditVerify): made
 * asynchronously, the main loop running until it ends, so that the
 * service's CheckProgress signals reach a terminal meanwhile (stderr, one
 * line rewritten in place; nothing when stderr is not a terminal). */
typedef struct {
  GMainLoop *loop;
  GAsyncResult *result;
  gulong handler;
  gboolean shown;
} StCliWait;

static void
st_cli_wait_done (GObject *source, GAsyncResult *res, gpointer data)
{
  StCliWait *w = data;
  w->result = g_object_ref (res);
  g_main_loop_quit (w->loop);
}

static void
st_cli_on_check_progress (StDbusStation1 *proxy, const char *step, gint64 done, gint64 total,
                          gpointer data)
{
  StCliWait *w = data;
  g_autofree gchar *shown = ST_CLI_LINE (step);
  if (total > 0)
    g_printerr ("\r\033[K%s: %" G_GINT64_FORMAT " of %" G_GINT64_FORMAT " (%d%%)", shown, done, total,
                (int) (100 * CLAMP (done, 0, total) / total));
  else
    g_printerr ("\r\033[K%s ...", shown);
  w->shown = TRUE;
}

static void
st_cli_wait_begin (StCli *cli, StCliWait *w)
{
  w->loop = g_main_loop_new (NULL, FALSE);
  if (isatty (STDERR_FILENO))
    w->handler = g_signal_connect (cli->proxy, "check-progress", G_CALLBACK (st_cli_on_check_progress), w);
}

/* Runs until the call ends; returns its result (owned by @w). */
static GAsyncResult *
st_cli_wait_end (StCli *cli, StCliWait *w)
{
  g_main_loop_run (w->loop);
  if (w->handler != 0)
    g_signal_handler_disconnect (cli->proxy, w->handler);
  if (w->shown)
    g_printerr ("\r\033[K");
  g_main_loop_unref (w->loop);
  return w->result;
}

/* `batch show` shows this many units unless --all. */
#define ST_CLI_SHOW_UNITS 50
/* BatchUnitsPage's largest page (ST_ENGINE_UNITS_PAGE_MAX) */
#define ST_CLI_UNITS_PAGE 1000

/* One line per unit of a BatchUnits/BatchUnitsPage array; returns how many. */
static gint64
st_cli_print_units (GVariant *units_v)
{
  for (gsize i = 0; i < g_variant_n_children (units_v); i++)
    {
      g_autoptr(GVariant) u = g_variant_get_child_value (units_v, i);
      g_autofree gchar *serial = ST_CLI_LINE (st_dict_get_string (u, "product-serial"));
      const char *cert = st_dict_get_string (u, "cert-state");
      g_autofree gchar *reason = ST_CLI_LINE (st_dict_get_string (u, "fail-reason"));
      g_autofree gchar *uid = ST_CLI_LINE (st_dict_get_string (u, "uid"));
      g_print ("  %-26s %-8s %-18s %-12s %s%s%s\n", uid,
               st_dict_get_string (u, "state"), *serial != '\0' ? serial : "-",
               *cert != '\0' ? cert : "-", st_dict_get_string (u, "port"),
               *reason != '\0' ? "  " : "", reason);
    }
  return (gint64) g_variant_n_children (units_v);
}

/* `batch list --json`: station-cli-batch-list/1 (docs/cli-json.md). */
static int
st_cli_batch_list_json (GVariant *list)
{
  JsonBuilder *b = st_cli_json_begin (ST_CLI_JSON_FORMAT ("batch-list"));
  json_builder_set_member_name (b, "batches");
  json_builder_begin_array (b);
  for (gsize i = 0; i < g_variant_n_children (list); i++)
    {
      g_autoptr(GVariant) d = g_variant_get_child_value (list, i);
      g_autoptr(StBatchInfo) info = st_batch_info_from_variant (d);
      json_builder_add_value (b, st_cli_json_batch (info));
    }
  json_builder_end_array (b);
  st_cli_json_end (b);
  return ST_EXIT_OK;
}

/* `batch show BATCH --json [--all]`: station-cli-batch-show/1, written as
 * it comes: the batch, then each page of units (BatchUnitsPage) as it
 * arrives, never the whole batch in memory; the counts close the document.
 * A failure half-way leaves the document unfinished, with the error on
 * stderr and its exit status (a document counts only with status 0). */
static int
st_cli_batch_show_json (StCli *cli, const StBatchInfo *batch, gboolean all_units)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) batch_node = st_cli_json_batch (batch);
  fputs ("{\"format\":\"" ST_CLI_JSON_FORMAT ("batch-show") "\",\"batch\":", stdout);
  st_cli_json_write (batch_node);
  fputs (",\"units\":[", stdout);
  gint64 after = 0, listed = 0;
  while (all_units || listed < ST_CLI_SHOW_UNITS)
    {
      g_autoptr(GVariant) page = NULL;
      gint64 next = 0;
      guint limit = all_units ? ST_CLI_UNITS_PAGE : (guint) (ST_CLI_SHOW_UNITS - listed);
      if (!st_dbus_station1_call_batch_units_page_sync (cli->proxy, batch->id, after, limit, &page,
                                                        &next, NULL, &error))
        {
          fflush (stdout);
          return st_cli_fail (error);
        }
      for (gsize i = 0; i < g_variant_n_children (page); i++)
        {
          g_autoptr(GVariant) u = g_variant_get_child_value (page, i);
          g_autoptr(JsonNode) unit = st_cli_json_unit (u);
          if (listed++ > 0)
            fputc (',', stdout);
          st_cli_json_write (unit);
        }
      if (next <= after)
        break;
      after = next;
    }
  printf ("],\"units_listed\":%" G_GINT64_FORMAT ",\"units_not_listed\":%" G_GINT64_FORMAT "}\n",
          listed, MAX (batch->n_units - listed, 0));
  fflush (stdout);
  return ST_EXIT_OK;
}

/* "50x25": a label's width and height in millimetres (the service
 * checks the bounds). */
static gboolean
st_cli_parse_label_size (const char *text, double *w, double *h, GError **error)
{
  g_auto(GStrv) parts = text != NULL ? g_strsplit (text, "x", 3) : NULL;
  gchar *end_w = NULL, *end_h = NULL;
  if (parts != NULL && g_strv_length (parts) == 2 && parts[0][0] != '\0' && parts[1][0] != '\0')
    {
      *w = g_ascii_strtod (parts[0], &end_w);
      *h = g_ascii_strtod (parts[1], &end_h);
      if (*end_w == '\0' && *end_h == '\0' && *w > 0 && *h > 0)
        return TRUE;
    }
  g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA, _("--size takes the label's width and height in "
               "millimetres, as 50x25"));
  return FALSE;
}

static int st_cli_matter_export (StCli *cli, gint64 batch_id, gboolean labels, const char *out, double w,
                                 double h, guint dpi, guint zpl_dpi);

/* batch codes BATCH --out DIR, batch labels BATCH --out DIR [--size WxH]
 * [--dpi N] [--zpl-dpi N]: a Matter batch's files that hold the setup
 * passcodes (docs/matter.md), written into DIR with mode 0600, never
 * replacing a file. @argv[0] is the subcommand. */
static int
cmd_batch_matter (StCli *cli, const char *sub, int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *out = NULL, *size_text = NULL;
  gint dpi = 0, zpl_dpi = 0;
  gboolean labels = g_strcmp0 (sub, "labels") == 0;
  const GOptionEntry codes_entries[] = {
    { "out", 0, 0, G_OPTION_ARG_FILENAME, &out, N_("Folder to write matter-codes.csv into"), "DIR" },
    { NULL }
  };
  const GOptionEntry label_entries[] = {
    { "out", 0, 0, G_OPTION_ARG_FILENAME, &out, N_("Folder to write the labels into"), "DIR" },
    { "size", 0, 0, G_OPTION_ARG_STRING, &size_text, N_("Label width and height in mm (default 50x25)"), "WxH" },
    { "dpi", 0, 0, G_OPTION_ARG_INT, &dpi, N_("Resolution of the PNG (default 300)"), "N" },
    { "zpl-dpi", 0, 0, G_OPTION_ARG_INT, &zpl_dpi,
      N_("Printhead resolution the ZPL is laid out for: 152, 203, 300 or 600 (default 203)"), "N" },
    { NULL }
  };
  if (!st_cli_parse (cli, labels ? "batch labels BATCH" : "batch codes BATCH",
                     labels ? label_entries : codes_entries, &argc, &argv, &error))
    return st_cli_fail (error);
  gint64 batch_id = 0;
  if (!st_cli_parse_id (argc > 1 ? argv[1] : NULL, &batch_id, &error))
    return st_cli_fail (error);
  if (out == NULL)
    {
      g_printerr (labels ? _("station: batch labels needs --out DIR\n") : _("station: batch codes needs --out DIR\n"));
      return ST_EXIT_USAGE;
    }
  double w = 0, h = 0;
  if (size_text != NULL && !st_cli_parse_label_size (size_text, &w, &h, &error))
    {
      g_printerr ("station: %s\n", error->message);
      return ST_EXIT_USAGE;
    }
  if (dpi < 0 || zpl_dpi < 0)
    {
      g_printerr ("%s\n", _("station: --dpi and --zpl-dpi take a positive number"));
      return ST_EXIT_USAGE;
    }
  if (!st_cli_login (cli, &error))
    return st_cli_fail (error);
  return st_cli_matter_export (cli, batch_id, labels, out, w, h, (guint) dpi, (guint) zpl_dpi);
}

/* The lead's export of a Matter batch's labels (@labels) or codes file into
 * @out, as logged in; prints what was written. */
static int
st_cli_matter_export (StCli *cli, gint64 batch_id, gboolean labels, const char *out, double w, double h,
                      guint dpi, guint zpl_dpi)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *dest = g_canonicalize_filename (out, NULL);
  g_autoptr(GVariant) pack = NULL;
  g_autoptr(GUnixFDList) fds = NULL;
  guint count = 0;
  g_autofree gchar *sha256 = NULL;
  gboolean ok = labels
    ? st_dbus_station1_call_matter_labels_export_sync (cli->proxy, batch_id, dest,
                                                       st_client_matter_labels_options (w, h, dpi, zpl_dpi),
                                                       NULL, &pack, &count, &fds, NULL, &error)
    : st_dbus_station1_call_matter_codes_export_sync (cli->proxy, batch_id, dest, NULL, &pack, &count,
                                                      &sha256, &fds, NULL, &error);
  int fd = ok && fds != NULL ? g_unix_fd_list_get (fds, g_variant_get_handle (pack), &error) : -1;
  if (ok && fd < 0 && error == NULL)
    g_set_error (&error, ST_ERROR, ST_ERROR_INVALID_DATA, _("the service sent no files"));
  ok = fd >= 0 && st_client_save_private_pack (fd, out, NULL, &error);
  if (fd >= 0)
    close (fd);
  if (!ok)
    return st_cli_fail (error);
  if (labels)
    g_print (ngettext ("%u label (PNG, PDF, ZPL) written to %s\n",
                       "%u labels (PNG, PDF, ZPL each) written to %s\n", count), count, out);
  else
    g_print (_("%u unit(s) written to %s/matter-codes.csv (SHA-256 %s, recorded in the audit log); "
             "it holds the setup passcodes: keep it from anyone who is not to pair the devices\n"),
             count, out, sha256);
  return 0;
}

static int
cmd_batch (StCli *cli, int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  const char *sub = argc > 1 ? argv[1] : NULL;
  if (sub == NULL)
    {
      g_printerr (_("station: batch needs create, run, list, show, stop or close\n%s"), st_usage);
      return ST_EXIT_USAGE;
    }
  argc--;
  argv++;
  if (g_strcmp0 (sub, "codes") == 0 || g_strcmp0 (sub, "labels") == 0)
    return cmd_batch_matter (cli, sub, argc, argv);

  g_auto(GStrv) ports = NULL;
  gint units = 0, wait_s = 60;
  gboolean allow_reprovision = FALSE;
  const GOptionEntry run_entries[] = {
    { "port", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &ports, N_("Socket (repeat for several)"), "PATH" },
    { "units", 0, 0, G_OPTION_ARG_INT, &units, N_("Devices per socket (default: until the batch has its quantity)"), "N" },
    { "wait", 0, 0, G_OPTION_ARG_INT, &wait_s, N_("Give up on a socket without a new device for S seconds (0: never)"), "S" },
    { "allow-reprovision", 0, 0, G_OPTION_ARG_NONE, &allow_reprovision,
      N_("Re-provision devices that already hold a certificate (voids the old one; lead)"), NULL },
    { NULL }
  };
  g_autofree gchar *profile_path = NULL, *work_order = NULL;
  gint quantity = 0;
  const GOptionEntry create_entries[] = {
    { "profile", 0, 0, G_OPTION_ARG_FILENAME, &profile_path, N_("Product profile"), "FILE" },
    { "work-order", 0, 0, G_OPTION_ARG_STRING, &work_order, N_("Work order"), "WO" },
    { "quantity", 0, 0, G_OPTION_ARG_INT, &quantity, N_("Devices to provision"), "N" },
    { NULL }
  };
  gboolean all_units = FALSE, json = FALSE;
  const GOptionEntry show_entries[] = {
    { "all", 0, 0, G_OPTION_ARG_NONE, &all_units, N_("List every unit of the batch, however many"), NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, N_("Print one JSON document (docs/cli-json.md)"), NULL },
    { NULL }
  };
  const GOptionEntry list_entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, N_("Print one JSON document (docs/cli-json.md)"), NULL },
    { NULL }
  };
  gboolean is_create = g_strcmp0 (sub, "create") == 0, is_run = g_strcmp0 (sub, "run") == 0;
  gboolean is_show = g_strcmp0 (sub, "show") == 0, is_list = g_strcmp0 (sub, "list") == 0;
  if (!st_cli_parse (cli, is_create ? "batch create" : is_run ? "batch run BATCH"
                     : is_show ? "batch show BATCH" : is_list ? "batch list" : "batch",
                     is_create ? create_entries : is_run ? run_entries : is_show ? show_entries
                     : is_list ? list_entries : NULL,
                     &argc, &argv, &error))
    return st_cli_fail (error);
  if (is_create)
    return cmd_batch_create (cli, profile_path, work_order, quantity);
  if (!st_cli_login (cli, &error))
    return st_cli_fail (error);

  if (g_strcmp0 (sub, "list") == 0)
    {
      g_autoptr(GVariant) list = NULL;
      if (!st_dbus_station1_call_batch_list_sync (cli->proxy, &list, NULL, &error))
        return st_cli_fail (error);
      if (json)
        return st_cli_batch_list_json (list);
      g_print ("%6s  %-7s %-16s %-24s %5s %5s %5s  %s\n", C_("column", "id"), C_("column", "state"),
               C_("column", "work order"), C_("column", "product"), C_("column", "qty"), C_("column", "done"),
               C_("column", "fail"), C_("column", "created"));
      for (gsize i = 0; i < g_variant_n_children (list); i++)
        {
          g_autoptr(GVariant) d = g_variant_get_child_value (list, i);
          g_autoptr(StBatchInfo) b = st_batch_info_from_variant (d);
          st_print_batch_line (b);
        }
      return 0;
    }
  if (g_strcmp0 (sub, "stop") == 0)
    {
      gint64 stop_id = 0;
      if (argc > 1 && !st_cli_parse_id (argv[1], &stop_id, &error))
        return st_cli_fail (error);
      if (!st_dbus_station1_call_line_stop_sync (cli->proxy, stop_id, NULL, &error))
        return st_cli_fail (error);
      return 0;  /* the terminal of `batch run` says how the line ended */
    }

  gint64 batch_id = 0;
  if (!st_cli_parse_id (argc > 1 ? argv[1] : NULL, &batch_id, &error))
    return st_cli_fail (error);

  if (g_strcmp0 (sub, "show") == 0)
    {
      g_autoptr(GVariant) d = NULL;
      if (!st_dbus_station1_call_batch_get_sync (cli->proxy, batch_id, &d, NULL, &error))
        return st_cli_fail (error);
      g_autoptr(StBatchInfo) b = st_batch_info_from_variant (d);
      if (json)
        return st_cli_batch_show_json (cli, b, all_units);
      g_autofree gchar *created = st_time_iso8601_from_unix (b->created_at);
      g_autofree gchar *closed = b->closed_at > 0 ? st_time_iso8601_from_unix (b->closed_at) : g_strdup ("-");
      g_print (_("batch %" PRId64 " (%s)\n  work order  %s\n  product     %s (profile sha256 %s)\n"
               "  quantity    %" PRId64 "\n  units       %" PRId64 " (%" PRId64 " done, %"
               PRId64 " failed)\n  certificates %" PRId64 " live, %" PRId64
               " voided, %" PRId64 " unconfirmed, %" PRId64 " disputed, %"
               PRId64 " revoked\n"
               "  created     %s by %s\n  closed      %s%s%s\n"),
               b->id, b->state, b->work_order, b->product, b->profile_sha256, b->quantity, b->n_units,
               b->n_done, b->n_failed, b->n_live_certs, b->n_voided, b->n_unconfirmed, b->n_disputed,
               b->n_revoked, created,
               b->created_by, closed, b->closed_by != NULL ? _(" by ") : "",
               b->closed_by != NULL ? b->closed_by : "");
      /* the units page by page (BatchUnitsPage): the first ST_CLI_SHOW_UNITS
       * unless --all, never the whole batch in one message */
      gint64 after = 0, shown = 0;
      while (all_units || shown < ST_CLI_SHOW_UNITS)
        {
          g_autoptr(GVariant) page = NULL;
          gint64 next = 0;
          guint limit = all_units ? ST_CLI_UNITS_PAGE : (guint) (ST_CLI_SHOW_UNITS - shown);
          if (!st_dbus_station1_call_batch_units_page_sync (cli->proxy, batch_id, after, limit, &page,
                                                            &next, NULL, &error))
            return st_cli_fail (error);
          shown += st_cli_print_units (page);
          if (next <= after)
            break;
          after = next;
        }
      if (shown < b->n_units)
        g_print (_("  ... %" PRId64 " more unit(s): 'station batch show %" PRId64
                 " --all' lists every one\n"), b->n_units - shown, b->id);
      return 0;
    }
  if (g_strcmp0 (sub, "close") == 0)
    {
      if (!st_dbus_station1_call_batch_close_sync (cli->proxy, batch_id, NULL, &error))
        return st_cli_fail (error);
      return 0;  /* nothing to say: `batch show` shows it */
    }
  if (g_strcmp0 (sub, "allow-more-voids") == 0)
    {
      gint64 voided = 0, cap = 0, new_cap = 0;
      if (!st_dbus_station1_call_batch_allow_more_voids_sync (cli->proxy, batch_id, &voided, &cap,
                                                              &new_cap, NULL, &error))
        return st_cli_fail (error);
      g_print (_("batch %" PRId64 ": %" PRId64 " certificates voided; the cap goes "
               "from %" PRId64 " to %" PRId64 "\n"), batch_id, voided, cap, new_cap);
      return 0;
    }
  if (is_run)
    {
      if (ports == NULL || ports[0] == NULL)
        {
          g_printerr (_("station: batch run needs at least one --port PATH\n"));
          return ST_EXIT_USAGE;
        }
      if (units < 0 || wait_s < 0)
        {
          g_printerr (_("station: --units and --wait take numbers >= 0\n"));
          return ST_EXIT_USAGE;
        }
      return st_cli_run_line (cli, batch_id, (const char *const *) ports, (guint) units,
                              (guint) wait_s, allow_reprovision, NULL);
    }
  g_printerr (_("station: unknown batch command '%s'\n%s"), sub, st_usage);
  return ST_EXIT_USAGE;
}

/* `station ca verification-cert --code CODE --out FILE [--force]` (admin):
 * the proof-of-possession certificate a cloud asks for when the issuing CA
 * is registered (docs/cloud.md). */
static int
st_cli_ca_verification_cert (StCli *cli, int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *code = NULL, *out = NULL;
  gboolean force = FALSE;
  const GOptionEntry entries[] = {
    { "code", 0, 0, G_OPTION_ARG_STRING, &code,
      N_("The cloud's registration code (aws iot get-registration-code; Azure DPS's verification code)"), "CODE" },
    { "out", 0, 0, G_OPTION_ARG_FILENAME, &out, N_("File to write the certificate into (PEM)"), "FILE" },
    { "force", 0, 0, G_OPTION_ARG_NONE, &force, N_("Replace FILE if it exists"), NULL },
    { NULL }
  };
  if (!st_cli_parse (cli, "ca verification-cert", entries, &argc, &argv, &error))
    return st_cli_fail (error);
  if (code == NULL || out == NULL || argc > 1)
    {
      g_printerr (_("station: ca verification-cert needs --code CODE and --out FILE\n"));
      return ST_EXIT_USAGE;
    }
  gsize n = strlen (code);
  if (n < 1 || n > 64 || strspn (code, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-") != n)
    {
      g_printerr (_("station: --code takes the cloud's registration code: 1 to 64 of A-Z a-z 0-9 and '-'\n"));
      return ST_EXIT_USAGE;
    }
  GStatBuf st;
  if (!force && g_lstat (out, &st) == 0)
    {
      g_printerr (_("station: %s exists: choose another file, or give --force to replace it\n"), out);
      return ST_EXIT_ERROR;
    }
  g_autofree gchar *pem = NULL;
  if (!st_cli_admin_login (cli, &error)
      || !st_dbus_station1_call_ca_verification_cert_sync (cli->proxy, code, &pem, NULL, &error)
      || !st_file_write_durable (out, pem, strlen (pem), 0644, &error))
    return st_cli_fail (error);
  g_print (_("verification certificate for code %s written to %s: give it to the cloud with the CA "
           "certificate (docs/cloud.md); valid 30 days\n"), code, out);
  return 0;
}

/* `manifest verify DIR --root FILE`: verified here, in this process, by
 * st_manifest_verify_offline (the service's own check, as the GUI's QA view
 * runs it), and nothing of a station: no home, no service, no login.
 * Verifying needs no secret; what it trusts is the root given and the pin
 * (--signer-pin) given. Returns the exit code; the report goes to
 * @report, the verdict to @ok and @failure. */
static int
st_cli_manifest_verify_here (const char *dir, const char *root_path, const char *signer_pin,
                             GString *report, gboolean *ok, gchar **failure)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) checks = g_string_new (NULL);
  if (!st_manifest_verify_offline (dir, root_path, signer_pin, checks, ok, failure, &error))
    return st_cli_fail (error);
  g_string_append_printf (report, "%s\n", signer_pin != NULL ? _("signer pin: the one given (--signer-pin)")
                                                             : _("signer pin: none given with --root"));
  g_string_append_len (report, checks->str, checks->len);
  return ST_EXIT_OK;
}

/* `manifest verify --json`: station-cli-manifest-verify/1. */
static int
st_cli_manifest_verify_json (const char *dir, gboolean here, const char *signer_pin, gboolean ok,
                             const char *failure, const char *report)
{
  JsonBuilder *b = st_cli_json_begin (ST_CLI_JSON_FORMAT ("manifest-verify"));
  st_cli_json_add_string_or_null (b, "dir", dir);
  json_builder_set_member_name (b, "verified_by");
  json_builder_add_string_value (b, here ? "client" : "service");
  st_cli_json_add_string_or_null (b, "signer_pin", signer_pin);
  st_cli_json_add_check (b, ok, failure, report);
  st_cli_json_end (b);
  return st_cli_verdict (ok, failure);
}

/* Prints the cloud export's report written next to a manifest, if any. */
static void
st_cli_print_cloud_report (const char *dir)
{
  g_autofree gchar *path = g_build_filename (dir, "cloud-report.txt", NULL);
  g_autofree gchar *text = NULL;
  gsize len = 0;
  if (g_file_get_contents (path, &text, &len, NULL) && len <= ST_CLI_MAX_TEXT)
    {
      g_autofree gchar *shown = st_text_escape (text, (gssize) len, ST_TEXT_KEEP_NEWLINES);
      g_print ("%s", shown);
    }
}

static int
cmd_manifest (StCli *cli, int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  const char *sub = st_cli_take_sub (&argc, &argv);
  g_autofree gchar *out = NULL, *root_path = NULL, *signer_pin = NULL, *cloud = NULL;
  gboolean force = FALSE, json = FALSE;
  const GOptionEntry entries[] = {
    { "out", 0, 0, G_OPTION_ARG_FILENAME, &out, N_("Folder to write the manifest into"), "DIR" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, N_("Print one JSON document (docs/cli-json.md)"), NULL },

    { "cloud", 0, 0, G_OPTION_ARG_STRING, &cloud,
      N_("Cloud files to write beside it: all (default), none, or some of aws,azure,certs,jws"), "LIST" },
    { "force", 0, 0, G_OPTION_ARG_NONE, &force, N_("Replace a manifest already in the folder"), NULL },
    { "root", 0, 0, G_OPTION_ARG_FILENAME, &root_path, N_("Trusted root certificate (default: the station's)"), "FILE" },
    { "signer-pin", 0, 0, G_OPTION_ARG_STRING, &signer_pin,
      N_("SHA-256 of the signing station's key (default: this station's; needed with --root)"), "HEX" },
    { NULL }
  };
  if (!st_cli_parse (cli, "manifest export|verify", entries, &argc, &argv, &error))
    return st_cli_fail (error);

  if (g_strcmp0 (sub, "export") == 0)
    {
      gint64 batch_id = 0;
      if (json)
        {
          g_printerr ("%s\n", _("station: --json goes with 'manifest verify', not with 'manifest export'"));
          return ST_EXIT_USAGE;
        }
      if (!st_cli_parse_id (argc > 1 ? argv[1] : NULL, &batch_id, &error))
        return st_cli_fail (error);
      if (out == NULL)
        {
          g_printerr (_("station: manifest export needs --out DIR\n"));
          return ST_EXIT_USAGE;
        }
      g_autofree gchar *dest = g_canonicalize_filename (out, NULL);
      g_autoptr(GVariant) files = NULL;
      g_autoptr(GUnixFDList) fds = NULL;
      if (!st_client_manifest_dest_check (out, force, &error)
          || !st_cli_login (cli, &error)
          || !st_dbus_station1_call_manifest_export_sync (cli->proxy, batch_id, dest,
                                                          st_client_manifest_export_options_cloud (force, cloud),
                                                          NULL, &files, &fds, NULL, &error)
          || !st_client_save_files (files, fds, out, force, &error))
        return st_cli_fail (error);
      /* what the user needs: what went into the cloud files and which
       * units were left out of them (DIR/cloud-report.txt); nothing more */
      st_cli_print_cloud_report (out);
      return 0;
    }
  if (g_strcmp0 (sub, "verify") == 0)
    {
      const char *dir = argc > 1 ? argv[1] : NULL;
      if (dir == NULL)
        {
          g_printerr (_("station: manifest verify needs the manifest folder\n"));
          return ST_EXIT_USAGE;
        }
      if (signer_pin != NULL
          && (strlen (signer_pin) != 64 || strspn (signer_pin, "0123456789abcdefABCDEF") != 64))
        {
          g_printerr (_("station: --signer-pin takes 64 hex digits: the SHA-256 of the signing "
                      "certificate's public key\n"));
          return ST_EXIT_USAGE;
        }
      if (root_path != NULL)
        {
          /* off the station: nothing but the folder, the root and the pin */
          g_autoptr(GString) here = g_string_new (NULL);
          gboolean ok = FALSE;
          g_autofree gchar *failure = NULL;
          int rc = st_cli_manifest_verify_here (dir, root_path, signer_pin, here, &ok, &failure);
          if (rc != ST_EXIT_OK)
            return rc;
          if (json)
            return st_cli_manifest_verify_json (dir, TRUE, signer_pin, ok, failure, here->str);
          st_cli_print_text (here->str);
          g_print ("%s\n", ok ? _("manifest verified") : _("MANIFEST REJECTED"));
          return st_cli_verdict (ok, failure);
        }
      g_autofree gchar *root = st_cli_root_pem (root_path, &error);
      g_autoptr(GUnixFDList) fds = NULL;
      g_autoptr(GVariant) files = root != NULL ? st_client_manifest_files (dir, &fds, &error) : NULL;
      if (files == NULL || !st_cli_login (cli, &error))
        return st_cli_fail (error);
      gboolean ok = FALSE;
      g_autofree gchar *report = NULL, *failure = NULL;
      if (!st_dbus_station1_call_manifest_verify_sync (cli->proxy, g_variant_ref_sink (files), root,
                                                       signer_pin != NULL ? signer_pin : "", dir, fds, &ok, &report, &failure, NULL, NULL, &error))
        return st_cli_fail (error);
      if (json)
        return st_cli_manifest_verify_json (dir, FALSE, signer_pin, ok, failure, report);
      st_cli_print_text (report);
      g_print ("%s\n", ok ? _("manifest verified") : _("MANIFEST REJECTED"));
      return st_cli_verdict (ok, failure);
    }
  g_printerr (_("station: manifest needs export or verify\n"));
  return ST_EXIT_USAGE;
}

/* `unit resolve UID|SERIAL --keep|--void`: a lead decides a disputed unit. */
static int
cmd_unit_resolve (StCli *cli, const char *name, gboolean keep, gboolean void_it)
{
  g_autoptr(GError) error = NULL;
  if (name == NULL || keep == void_it)
    {
      g_printerr (_("station: usage: unit resolve UID|SERIAL --keep or --void (one of the two)\n"));
      return ST_EXIT_USAGE;
    }
  if (!st_cli_login (cli, &error))
    return st_cli_fail (error);
  g_autoptr(GVariant) u = st_client_resolve_unit (cli->proxy, name, keep, &error);
  if (u == NULL)
    return st_cli_fail (error);
  const char *uid = st_dict_get_string (u, "uid");
  const char *serial = st_dict_get_string (u, "product-serial");
  g_print (_("unit %" PRId64 " (uid %s, serial %s): certificate %s "), st_dict_get_int64 (u, "id"),
           uid, *serial != '\0' ? serial : "-", st_dict_get_string (u, "cert-serial"));
  if (keep)
    g_print (_("kept: it is unconfirmed again; the device that holds it completes its unit when it "
             "comes back, and any other device with uid %s is refused\n"), uid);
  else
    g_print (_("voided: the next device with uid %s is provisioned anew\n"), uid);
  return 0;
}

/* `unit revoke SERIAL --reason R`: a lead revokes a shipped unit's certificate. */
static int
cmd_unit_revoke (StCli *cli, int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *reason = NULL;
  const GOptionEntry entries[] = {
    { "reason", 0, 0, G_OPTION_ARG_STRING, &reason, N_("Why (RFC 5280): unspecified, keyCompromise, "
      "affiliationChanged, superseded, cessationOfOperation or privilegeWithdrawn"), "R" },
    { NULL }
  };
  if (!st_cli_parse (cli, "unit revoke SERIAL", entries, &argc, &argv, &error))
    return st_cli_fail (error);
  if (argc != 2 || reason == NULL)
    {
      g_printerr (_("station: usage: unit revoke SERIAL --reason R (SERIAL: the certificate serial, or "
                  "the unit's uid or product serial; R: unspecified, keyCompromise, "
                  "affiliationChanged, superseded, cessationOfOperation or privilegeWithdrawn)\n"));
      return ST_EXIT_USAGE;
    }
  if (!st_cli_login (cli, &error))
    return st_cli_fail (error);
  g_autoptr(GVariant) u = st_client_revoke_unit (cli->proxy, argv[1], reason, &error);
  if (u == NULL)
    return st_cli_fail (error);
  const char *serial = st_dict_get_string (u, "product-serial");
  g_print (_("unit %" PRId64 " (uid %s, serial %s): certificate %s revoked (%s); it is on "
           "every CRL issued from now on ('station crl issue')\n"), st_dict_get_int64 (u, "id"),
           st_dict_get_string (u, "uid"), *serial != '\0' ? serial : "-",
           st_dict_get_string (u, "cert-serial"), reason);
  return 0;
}

/* `crl issue --out FILE [--next-update DAYS] [--force]` (lead or admin). */
static int
cmd_crl (StCli *cli, int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  const char *sub = st_cli_take_sub (&argc, &argv);
  g_autofree gchar *out = NULL;
  gint days = 7;  /* the service bounds it: 1..365 */
  gboolean force = FALSE;
  const GOptionEntry entries[] = {
    { "out", 0, 0, G_OPTION_ARG_FILENAME, &out, N_("File to write the CRL into (PEM)"), "FILE" },
    { "next-update", 0, 0, G_OPTION_ARG_INT, &days, N_("Days until its nextUpdate (1..365, default 7)"), "DAYS" },
    { "force", 0, 0, G_OPTION_ARG_NONE, &force, N_("Replace FILE if it exists"), NULL },
    { NULL }
  };
  if (!st_cli_parse (cli, "crl issue", entries, &argc, &argv, &error))
    return st_cli_fail (error);
  if (g_strcmp0 (sub, "issue") != 0 || out == NULL || argc != 1)
    {
      g_printerr (_("station: usage: crl issue --out FILE [--next-update DAYS] [--force]\n"));
      return ST_EXIT_USAGE;
    }
  if (days < 1)
    {
      g_printerr (_("station: --next-update is a number of days, 1 to 365, not %d\n"), days);
      return ST_EXIT_USAGE;
    }
  if (!st_cli_login (cli, &error))
    return st_cli_fail (error);
  gint64 number = 0;
  guint n = 0;
  if (!st_client_crl_issue (cli->proxy, (guint) days, out, force, &number, &n, &error))
    return st_cli_fail (error);
  g_print (_("CRL number %" PRId64 " (%u voided or revoked certificate(s), next update in %d "
           "day(s)) written to %s\n"), number, n, days, out);
  return 0;
}

static int
cmd_unit (StCli *cli, int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  const char *sub = st_cli_take_sub (&argc, &argv);
  g_autofree gchar *port = NULL, *profile_path = NULL, *matter_code = NULL;
  gboolean keep = FALSE, void_it = FALSE, json = FALSE;
  const GOptionEntry entries[] = {
    { "port", 0, 0, G_OPTION_ARG_FILENAME, &port, N_("Socket of the unit"), "PATH" },
    { "code", 0, 0, G_OPTION_ARG_STRING, &matter_code,
      N_("A Matter unit's scanned onboarding code (QR text MT:... or manual pairing code) to compare with its record"),
      "TEXT" },
    { "profile", 0, 0, G_OPTION_ARG_FILENAME, &profile_path, N_("Product profile (for its link settings)"), "FILE" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, N_("Print one JSON document (docs/cli-json.md)"), NULL },
    { NULL }
  };
  const GOptionEntry resolve_entries[] = {
    { "keep", 0, 0, G_OPTION_ARG_NONE, &keep, N_("Keep the disputed certificate (the device that holds it completes its unit)"), NULL },
    { "void", 0, 0, G_OPTION_ARG_NONE, &void_it, N_("Void it (the next device with the uid is provisioned anew)"), NULL },
    { NULL }
  };
  if (g_strcmp0 (sub, "revoke") == 0)
    return cmd_unit_revoke (cli, argc, argv);
  gboolean resolve = g_strcmp0 (sub, "resolve") == 0;
  if (!st_cli_parse (cli, resolve ? "unit resolve UID|SERIAL" : "unit verify",
                     resolve ? resolve_entries : entries, &argc, &argv, &error))
    return st_cli_fail (error);
  if (resolve)
    return cmd_unit_resolve (cli, argc == 2 ? argv[1] : NULL, keep, void_it);
  if (g_strcmp0 (sub, "verify") != 0 || port == NULL)
    {
      g_printerr (_("station: usage: unit verify --port PATH [--profile FILE] [--code TEXT] | "
                  "unit resolve UID|SERIAL --keep|--void\n"));
      return ST_EXIT_USAGE;
    }
  g_autofree gchar *text = profile_path != NULL
    ? st_client_read_text (profile_path, ST_CLI_MAX_TEXT, NULL, &error) : g_strdup ("");
  if (text == NULL || !st_cli_login (cli, &error))
    return st_cli_fail (error);
  gboolean ok = FALSE;
  g_autofree gchar *report = NULL, *failure = NULL;
  if (!st_dbus_station1_call_unit_verify_sync (cli->proxy, port, text, matter_code != NULL ? matter_code : "",
                                               &ok, &report, &failure, NULL, &error))
    return st_cli_fail (error);
  if (json)
    {
      JsonBuilder *b = st_cli_json_begin ("station-cli-unit-verify/2");
      st_cli_json_add_string_or_null (b, "port", port);
      st_cli_json_add_check (b, ok, failure, report);
      st_cli_unit_verify_add_matter (b, report, matter_code != NULL);
      st_cli_json_end (b);
      return st_cli_verdict (ok, failure);
    }
  st_cli_print_text (report);
  return st_cli_verdict (ok, failure);
}

/* Copies the descriptor the service handed over to @dest. */
static gboolean
st_cli_save_handle (GVariant *handle, GUnixFDList *fds, const char *dest, GError **error)
{
  int fd = fds != NULL ? g_unix_fd_list_get (fds, g_variant_get_handle (handle), error) : -1;
  if (fd < 0)
    return FALSE;
  gboolean ok = st_client_save_fd (fd, dest, error);
  close (fd);
  return ok;
}

static int
cmd_db (StCli *cli, int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  gboolean force = FALSE;
  const GOptionEntry entries[] = {
    { "force", 0, 0, G_OPTION_ARG_NONE, &force, N_("db backup: replace DEST if it exists"), NULL },
    { NULL }
  };
  if (!st_cli_parse (cli, "db check | db backup DEST [--force]", entries, &argc, &argv, &error))
    return st_cli_fail (error);
  gboolean backup = argc == 3 && g_strcmp0 (argv[1], "backup") == 0;
  if (!backup && (argc < 2 || g_strcmp0 (argv[1], "check") != 0))
    {
      g_printerr (_("station: usage: db check | db backup DEST [--force]\n"));
      return ST_EXIT_USAGE;
    }
  if (!st_cli_login (cli, &error))
    return st_cli_fail (error);
  if (backup)
    {
      const char *dest = argv[2];
      if (!force && g_file_test (dest, G_FILE_TEST_EXISTS))
        {
          g_printerr (_("station: %s exists: give another name, or --force to replace it\n"), dest);
          return ST_EXIT_ERROR;
        }
      g_autofree gchar *full = g_canonicalize_filename (dest, NULL);
      g_autoptr(GVariant) handle = NULL;
      g_autoptr(GUnixFDList) fds = NULL;
      if (!st_dbus_station1_call_db_backup_sync (cli->proxy, full, NULL, &handle, &fds, NULL, &error)
          || !st_cli_save_handle (handle, fds, dest, &error))
        return st_cli_fail (error);
      return 0;  /* nothing to say: DEST is written and flushed to the disk */
    }
  gboolean ok = FALSE;
  g_autofree gchar *report = NULL;
  StCliWait w = { 0 };
  st_cli_wait_begin (cli, &w);
  st_dbus_station1_call_db_check (cli->proxy, NULL, st_cli_wait_done, &w);
  g_autoptr(GAsyncResult) res = st_cli_wait_end (cli, &w);
  if (!st_dbus_station1_call_db_check_finish (cli->proxy, &ok, &report, res, &error))
    return st_cli_fail (error);
  g_print ("%s", report);
  return ok ? 0 : 1;
}

static int
cmd_operator (StCli *cli, int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  const char *sub = st_cli_take_sub (&argc, &argv);
  g_autofree gchar *role_arg = NULL;
  const GOptionEntry entries[] = {
    { "role", 0, 0, G_OPTION_ARG_STRING, &role_arg, N_("operator, lead, qa or admin"), "ROLE" },
    { NULL }
  };
  if (!st_cli_parse (cli, "operator add|list|unlock|set-role", entries, &argc, &argv, &error))
    return st_cli_fail (error);
  const char *name = argc > 1 ? argv[1] : NULL;
  gboolean is_add = g_strcmp0 (sub, "add") == 0, is_list = g_strcmp0 (sub, "list") == 0;
  gboolean is_unlock = g_strcmp0 (sub, "unlock") == 0, is_role = g_strcmp0 (sub, "set-role") == 0;
  if ((!is_add && !is_list && !is_unlock && !is_role) || (!is_list && name == NULL)
      || ((is_add || is_role) && role_arg == NULL))
    {
      g_printerr (_("station: usage: operator add NAME --role ROLE | operator list | "
                  "operator unlock NAME | operator set-role NAME --role ROLE\n"));
      return ST_EXIT_USAGE;
    }
  StRole role = 0;
  if ((is_add || is_role) && !st_role_from_string (role_arg, &role, &error))
    return st_cli_fail (error);
  if (is_add)
    {
      g_autoptr(GVariant) status = st_cli_status (cli, &error);
      if (status == NULL)
        return st_cli_fail (error);
      gint64 n = st_dict_get_int64 (status, "operators");
      /* The very first operator is made without a login, and is an admin. */
      if (n > 0 && !st_cli_login (cli, &error))
        return st_cli_fail (error);
      /* The new PIN: STATION_NEW_OPERATOR_PIN, else (for the first operator,
       * nobody logs in) STATION_OPERATOR_PIN, else a prompt. */
      g_autofree gchar *prompt = g_strdup_printf (_("New PIN for operator %s: "), name);
      gchar *pin = g_getenv ("STATION_NEW_OPERATOR_PIN") != NULL || n > 0
                   ? st_read_secret (prompt, "STATION_NEW_OPERATOR_PIN", ST_CLI_PIN_MAX, &error)
                   : st_read_secret (prompt, "STATION_OPERATOR_PIN", ST_CLI_PIN_MAX, &error);
      if (pin == NULL)
        return st_cli_fail (error);
      gboolean ok = st_dbus_station1_call_operator_add_sync (cli->proxy, name, role_arg, pin, NULL,
                                                             &error);
      st_secret_free (pin);
      if (!ok)
        return st_cli_fail (error);
      return 0;  /* nothing to say: `operator list` shows it */
    }
  if (!st_cli_login (cli, &error))
    return st_cli_fail (error);
  if (is_list)
    {
      g_autoptr(GVariant) list = NULL;
      if (!st_dbus_station1_call_operator_list_sync (cli->proxy, &list, NULL, &error))
        return st_cli_fail (error);
      g_print ("%-20s %-9s %-7s %8s  %s\n", C_("column", "name"), C_("column", "role"),
               C_("column", "state"), C_("column", "failures"), C_("column", "created"));
      for (gsize i = 0; i < g_variant_n_children (list); i++)
        {
          g_autoptr(GVariant) d = g_variant_get_child_value (list, i);
          g_autoptr(StOperatorInfo) op = st_operator_info_from_variant (d);
          g_autofree gchar *created = st_time_iso8601_from_unix (op->created_at);
          g_print ("%-20s %-9s %-7s %8" G_GINT64_FORMAT "  %s\n", op->name, op->role,
                   op->locked ? "LOCKED" : "ok", op->failed_attempts, created);
        }
      return 0;
    }
  if (is_unlock)
    {
      if (!st_dbus_station1_call_operator_unlock_sync (cli->proxy, name, NULL, &error))
        return st_cli_fail (error);
      return 0;  /* nothing to say: `operator list` shows it */
    }
  if (!st_dbus_station1_call_operator_set_role_sync (cli->proxy, name, role_arg, NULL, &error))
    return st_cli_fail (error);
  return 0;  /* nothing to say: `operator list` shows it */
}

/* Break-glass recovery: no login; the SO PIN proves control of the HSM. */
static int
cmd_admin (StCli *cli, int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  const char *sub = st_cli_take_sub (&argc, &argv);
  gboolean add = FALSE;
  const GOptionEntry entries[] = {
    { "new", 0, 0, G_OPTION_ARG_NONE, &add, N_("Add NAME as a new admin (its PIN from "
      "$STATION_NEW_OPERATOR_PIN or a prompt)"), NULL },
    { NULL }
  };
  if (!st_cli_parse (cli, "admin recover NAME [--new]", entries, &argc, &argv, &error))
    return st_cli_fail (error);
  const char *name = argc == 2 ? argv[1] : NULL;
  if (g_strcmp0 (sub, "recover") != 0 || name == NULL)
    {
      g_printerr (_("station: usage: admin recover NAME [--new]\n"));
      return ST_EXIT_USAGE;
    }
  if (!st_cli_connect (cli, &error))
    return st_cli_fail (error);
  gchar *so_pin = st_read_secret (_("SO PIN of the HSM token: "), "STATION_SO_PIN", ST_CLI_PIN_MAX,
                                  &error);
  if (so_pin == NULL)
    return st_cli_fail (error);
  gchar *new_pin = NULL;
  if (add)
    {
      g_autofree gchar *prompt = g_strdup_printf (_("New PIN for admin %s: "), name);
      new_pin = st_read_secret (prompt, "STATION_NEW_OPERATOR_PIN", ST_CLI_PIN_MAX, &error);
      if (new_pin == NULL)
        {
          st_secret_free (so_pin);
          return st_cli_fail (error);
        }
    }
  g_autofree gchar *action = NULL;
  gboolean ok = st_dbus_station1_call_admin_recover_sync (cli->proxy, name, so_pin,
                                                          new_pin != NULL ? new_pin : "", &action,
                                                          NULL, &error);
  st_secret_free (so_pin);
  st_secret_free (new_pin);
  if (!ok)
    return st_cli_fail (error);
  g_print (_("admin %s %s with the HSM token's SO PIN (recorded in the audit log); log in as %s\n"),
           name, action, name);
  return 0;
}

static int
cmd_audit (StCli *cli, int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  const char *sub = st_cli_take_sub (&argc, &argv);
  g_autofree gchar *out = NULL, *root_path = NULL;
  g_auto(GStrv) manifest_dirs = NULL;
  gboolean json = FALSE;
  const GOptionEntry entries[] = {
    { "out", 0, 0, G_OPTION_ARG_FILENAME, &out, N_("File to write the log into (JSON lines)"), "FILE" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, N_("Print one JSON document (docs/cli-json.md)"), NULL },

    { "root", 0, 0, G_OPTION_ARG_FILENAME, &root_path, N_("Trusted root certificate (default: the station's)"), "FILE" },
    { "manifests", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &manifest_dirs,
      N_("A manifest folder whose checkpoint the log must still hold (repeat it, or list folders after verify)"), "DIR" },
    { NULL }
  };
  if (!st_cli_parse (cli, "audit verify|export", entries, &argc, &argv, &error))
    return st_cli_fail (error);
  gboolean is_verify = g_strcmp0 (sub, "verify") == 0, is_export = g_strcmp0 (sub, "export") == 0;
  if (is_export && json)
    {
      g_printerr ("%s\n", _("station: --json goes with 'audit verify', not with 'audit export'"));
      return ST_EXIT_USAGE;
    }
  if ((!is_verify && !is_export) || (is_export && out == NULL))
    {
      g_printerr (_("station: usage: audit verify [--root FILE] [--manifests DIR...] | audit export --out FILE\n"));
      return ST_EXIT_USAGE;
    }
  g_autofree gchar *root = st_cli_root_pem (root_path, &error);
  if (root == NULL || !st_cli_login (cli, &error))
    return st_cli_fail (error);
  if (is_export)
    {
      g_autofree gchar *dest = g_canonicalize_filename (out, NULL);
      gint64 n = 0;
      g_autoptr(GVariant) handle = NULL;
      g_autoptr(GUnixFDList) fds = NULL;
      if (!st_dbus_station1_call_audit_export_sync (cli->proxy, dest, NULL, &n, &handle, &fds, NULL,
                                                    &error)
          || !st_cli_save_handle (handle, fds, out, &error))
        return st_cli_fail (error);
      return 0;  /* nothing to say: FILE holds the entries and their checkpoints */
    }
  /* "audit verify --manifests A B C": the folders after the first too */
  g_autoptr(GPtrArray) dirs = g_ptr_array_new ();
  for (guint i = 0; manifest_dirs != NULL && manifest_dirs[i] != NULL; i++)
    g_ptr_array_add (dirs, manifest_dirs[i]);
  for (int i = 1; i < argc; i++)
    if (manifest_dirs != NULL)
      g_ptr_array_add (dirs, argv[i]);
    else
      {
        g_printerr (_("station: audit verify takes no '%s': name manifest folders with --manifests DIR\n"),
                    argv[i]);
        return ST_EXIT_USAGE;
      }
  g_ptr_array_add (dirs, NULL);
  g_autoptr(GUnixFDList) fds = NULL;
  g_autoptr(GVariant) manifests = st_client_audit_manifests ((char **) dirs->pdata, &fds, &error);
  if (manifests == NULL)
    return st_cli_fail (error);
  gboolean ok = FALSE;
  g_autofree gchar *report = NULL, *failure = NULL;
  StCliWait w = { 0 };
  st_cli_wait_begin (cli, &w);
  st_dbus_station1_call_audit_verify (cli->proxy, root, g_variant_ref_sink (manifests), fds, NULL,
                                      st_cli_wait_done, &w);
  g_autoptr(GAsyncResult) res = st_cli_wait_end (cli, &w);
  if (!st_dbus_station1_call_audit_verify_finish (cli->proxy, &ok, &report, &failure, NULL, res, &error))
    return st_cli_fail (error);
  if (json)
    {
      JsonBuilder *b = st_cli_json_begin (ST_CLI_JSON_FORMAT ("audit-verify"));
      json_builder_set_member_name (b, "manifests");
      json_builder_begin_array (b);
      for (guint i = 0; i + 1 < dirs->len; i++)
        {
          g_autofree gchar *shown = g_utf8_make_valid (g_ptr_array_index (dirs, i), -1);
          json_builder_add_string_value (b, shown);
        }
      json_builder_end_array (b);
      st_cli_json_add_check (b, ok, failure, report);
      st_cli_json_end (b);
      return st_cli_verdict (ok, failure);
    }
  st_cli_print_text (report);
  g_print ("%s\n", ok ? _("audit log verified") : _("AUDIT LOG REJECTED"));
  return st_cli_verdict (ok, failure);
}

static int
cmd_bench (StCli *cli, int argc, char **argv)
{
  gint units = 1000, slots = 4;
  const GOptionEntry entries[] = {
    { "units", 0, 0, G_OPTION_ARG_INT, &units, N_("Units end to end (default 1000)"), "N" },
    { "slots", 0, 0, G_OPTION_ARG_INT, &slots, N_("Simulated sockets at once (default 4)"), "K" },
    { NULL }
  };
  g_autoptr(GError) error = NULL;
  if (!st_cli_parse (cli, "bench", entries, &argc, &argv, &error))
    return st_cli_fail (error);
  if (units <= 0 || slots <= 0 || slots > 64)
    {
      g_printerr (_("station: bench needs --units >= 1 and --slots 1..64\n"));
      return ST_EXIT_USAGE;
    }
  /* The bench signs with the station's CA key (into a scratch database):
   * an admin's job; on a demo home it logs in as the demo admin. */
  if (!st_cli_admin_login (cli, &error))
    return st_cli_fail (error);
  g_print ("bench: %d units on %d simulated sockets, in the service\n", units, slots);
  g_autoptr(GVariant) r = NULL;
  if (!st_dbus_station1_call_bench_sync (cli->proxy, (guint) units, (guint) slots, &r, NULL, &error))
    return st_cli_fail (error);
#define U(k) ({ guint32 _v = 0; g_variant_lookup (r, k, "u", &_v); _v; })
#define D(k) ({ gdouble _v = 0; g_variant_lookup (r, k, "d", &_v); _v; })
#define T(k) ({ guint64 _v = 0; g_variant_lookup (r, k, "t", &_v); _v; })
  guint raw_count = U ("raw-count"), passed = U ("passed"), failed = U ("failed");
  g_print ("raw issuance (build, sign in the HSM, verify, lint): %u certificates in %.2f s = %.1f /s\n"
           "  (half before the end-to-end run, half after it)\n"
           "  CPU: %.3f ms per certificate, one thread\n",
           raw_count, D ("raw-seconds"), D ("raw-per-s"), 1e3 * D ("raw-cpu-seconds") / MAX (raw_count, 1));
  g_print ("end to end (KEYGEN, CSR check, durable records, sign, write, proof, read-back, commit):\n"
           "  %u units on %u sockets in %.2f s = %.1f units/s\n", passed, U ("slots"),
           D ("e2e-seconds"), D ("e2e-units-per-s"));
  g_print ("  database: %" G_GUINT64_FORMAT " durable writes in %" G_GUINT64_FORMAT " commits (fsync'ed)\n",
           T ("db-writes"), T ("db-commits"));
  guint n = MAX (passed + failed, 1);
  gdouble cpu = D ("e2e-cpu-seconds"), dev = D ("device-cpu-seconds");
  g_print ("  simulated devices: their %u key pairs and CSRs made before the clock started\n"
           "    (%.2f s; a real device makes them on its own processor)\n",
           U ("units") - U ("premade-left"), D ("premade-seconds"));
  g_print ("  CPU: %.2f s on %u cores = %.3f ms per unit (the station's own: %.3f ms), of which\n"
           "       %.2f s (%.0f%%) the simulated devices' own work in the run (proofs of\n"
           "       possession, and keys they made then: a real device does it on its own processor)\n",
           cpu, U ("cores"), 1e3 * cpu / n, 1e3 * (cpu - dev) / n, dev, 100.0 * dev / MAX (cpu, 1e-9));
  g_print ("ratio end-to-end / raw issuance: %.2f\n", D ("e2e-units-per-s") / MAX (D ("raw-per-s"), 1e-9));
  /* Over a long run: does the rate hold, and what do the records and the
   * service's memory cost? */
  gdouble first = D ("first-tenth-units-per-s"), last = D ("last-tenth-units-per-s");
  g_print ("over the run: first %u units %.1f units/s, last %u units %.1f units/s, "
           "last / first %.2f\n", U ("tenth-units"), first, U ("tenth-units"), last,
           last / MAX (first, 1e-9));
  gdouble first_cpu = D ("first-tenth-cpu-ms"), last_cpu = D ("last-tenth-cpu-ms");
  g_print ("  CPU per unit: first tenth %.3f ms, last tenth %.3f ms, last / first %.2f "
           "(what a loaded machine's rates cannot show)\n",
           first_cpu, last_cpu, last_cpu / MAX (first_cpu, 1e-9));
  g_print ("database: %.0f bytes per unit (file and WAL: %.1f MB)\n",
           (gdouble) T ("db-bytes") / MAX (passed, 1), T ("db-bytes") / 1e6);
  g_print ("the service's peak RSS: %.1f MB\n", T ("peak-rss-kib") / 1024.0);
#undef U
#undef D
#undef T
  return 0;
}

/* ---- demo ---------------------------------------------------------------- */

/* A program installed beside this one, or in the build tree, or in PATH. */
static gchar *
st_cli_find_program (const char *env_var, const char *name, const char *build_path)
{
  const char *env = g_getenv (env_var);
  if (env != NULL && *env != '\0')
    return g_strdup (env);
  g_autofree gchar *self = g_file_read_link ("/proc/self/exe", NULL);
  if (self != NULL)
    {
      g_autofree gchar *dir = g_path_get_dirname (self);
      const char *candidates[] = { name, build_path, "../sbin/stationd" };
      for (guint i = 0; i < G_N_ELEMENTS (candidates); i++)
        {
          if (i == 2 && g_strcmp0 (name, "stationd") != 0)
            continue;
          g_autofree gchar *path = g_build_filename (dir, candidates[i], NULL);
          if (g_file_test (path, G_FILE_TEST_IS_EXECUTABLE))
            return g_canonicalize_filename (path, NULL);
        }
    }
  return g_find_program_in_path (name);
}

static gchar *
st_cli_find_profile (const char *name)
{
  g_autofree gchar *installed = g_build_filename (ST_DATADIR, "profiles", name, NULL);
  if (g_file_test (installed, G_FILE_TEST_IS_REGULAR))
    return g_steal_pointer (&installed);
  return g_build_filename (ST_SOURCE_DIR, "profiles", name, NULL);
}

/* Starts one simulated device socket; returns its pseudo-terminal path. */
static gchar *
st_cli_start_devsim (const char *devsim, guint units, guint32 seed, GPtrArray *procs, GError **error)
{
  g_autofree gchar *units_s = g_strdup_printf ("%u", units);
  g_autofree gchar *seed_s = g_strdup_printf ("%u", seed);
  GSubprocess *proc = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDIN_PIPE,
                                        error, devsim, "--units", units_s, "--seed", seed_s,
                                        "--exit-on-stdin-eof", NULL);
  if (proc == NULL)
    {
      g_prefix_error (error, _("cannot start the device simulator %s: "), devsim);
      return NULL;
    }
  g_ptr_array_add (procs, proc);
  g_autoptr(GDataInputStream) in = g_data_input_stream_new (g_subprocess_get_stdout_pipe (proc));
  gchar *line = g_data_input_stream_read_line (in, NULL, NULL, error);
  if (line == NULL)
    {
      if (error != NULL && *error == NULL)
        g_set_error (error, ST_ERROR, ST_ERROR_READ, _("the device simulator printed no port"));
      return NULL;
    }
  return line;
}

static void
st_cli_stop_procs (GPtrArray *procs)
{
  for (guint i = 0; i < procs->len; i++)
    {
      GSubprocess *proc = g_ptr_array_index (procs, i);
      g_subprocess_send_signal (proc, SIGTERM);
      g_subprocess_wait (proc, NULL, NULL);
    }
  g_ptr_array_set_size (procs, 0);
}

/* The demo's own service for @home: started unless one already serves it.
 * Returns the process (NULL when one was already running) */
static gboolean
st_cli_start_private_service (StCli *cli, const char *home, GPtrArray *procs, GError **error)
{
  StClientTarget t = { .home = home };
  g_autoptr(GError) local = NULL;
  cli->proxy = st_client_connect (&t, NULL, &local);
  if (cli->proxy != NULL)
    return TRUE;
  g_autofree gchar *stationd = st_cli_find_program ("ST_STATIOND", "stationd", "stationd");
  if (stationd == NULL)
    {
      g_set_error_literal (error, ST_ERROR, ST_ERROR_NOT_FOUND,
                           _("cannot find stationd, the station service (set ST_STATIOND to its path)"));
      return FALSE;
    }
  GSubprocess *proc = g_subprocess_new (G_SUBPROCESS_FLAGS_NONE, error, stationd, "--home", home, NULL);
  if (proc == NULL)
    return FALSE;
  g_ptr_array_add (procs, proc);
  /* it listens once it has made its socket */
  for (guint i = 0; i < 200 && cli->proxy == NULL; i++)
    {
      g_clear_error (&local);
      if (g_subprocess_get_identifier (proc) == NULL)
        break;
      g_usleep (50 * 1000);
      cli->proxy = st_client_connect (&t, NULL, &local);
    }
  if (cli->proxy == NULL)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_NOT_FOUND, _("the demo's station service did not start: %s"),
                   local != NULL ? local->message : _("it exited"));
      return FALSE;
    }
  return TRUE;
}

/* @text with its [matter] certification-declaration line naming @cd. */
static gchar *
st_cli_demo_profile_cd (const char *text, const char *cd, GError **error)
{
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  guint replaced = 0;
  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], "certification-declaration"))
      {
        g_free (lines[i]);
        lines[i] = g_strdup_printf ("certification-declaration = %s", cd);
        replaced++;
      }
  if (replaced != 1)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   _("the example Matter profile has %u certification-declaration lines, not one: "
                     "give the demo a profile with --profile"), replaced);
      return NULL;
    }
  return g_strjoinv ("\n", lines);
}

static int
st_cli_demo_run (StCli *cli, const char *home, gint n_ports, gint units, const char *profile_arg,
                 gboolean matter, GPtrArray *devsims)
{
  g_autoptr(GError) error = NULL;
  /* the station's first admin sets it up (anyone may, before it has operators) */
  if (!st_cli_admin_login (cli, &error))
    return st_cli_fail (error);
  gchar *pin = st_read_secret (_("PIN for the demo token: "), "STATION_HSM_PIN", ST_CLI_PIN_MAX, &error);
  if (pin == NULL)
    return st_cli_fail (error);
  gboolean ok = (matter ? st_dbus_station1_call_setup_demo_matter_sync (cli->proxy, pin, NULL, &error)
                        : st_dbus_station1_call_setup_demo_sync (cli->proxy, pin, NULL, &error))
                && st_cli_demo_login (cli, "admin", &error)
                && st_dbus_station1_call_unlock_sync (cli->proxy, pin, NULL, &error);
  st_secret_free (pin);
  if (!ok)
    return st_cli_fail (error);
  g_print (_("   the admin unlocked the HSM for the service; no other step needs its PIN\n"));

  g_autofree gchar *devsim = st_cli_find_program ("ST_DEVSIM", "station-devsim",
                                                  "../programmer/devsim/station-devsim");
  if (devsim == NULL)
    {
      g_printerr (_("station: cannot find station-devsim (set ST_DEVSIM to its path)\n"));
      return ST_EXIT_NOT_FOUND;
    }
  g_print (_("== 2. %d simulated devices on each of %d pseudo-terminals\n"), units, n_ports);
  g_autoptr(GPtrArray) ports = g_ptr_array_new_with_free_func (g_free);
  guint32 seed_base = g_random_int ();
  for (gint i = 0; i < n_ports; i++)
    {
      gchar *port = st_cli_start_devsim (devsim, (guint) units, seed_base + (guint32) i * 7919u,
                                         devsims, &error);
      if (port == NULL)
        return st_cli_fail (error);
      g_print (_("   socket %d: %s\n"), i + 1, port);
      g_ptr_array_add (ports, port);
    }
  g_ptr_array_add (ports, NULL);

  /* the shift lead opens the batch */
  g_autofree gchar *profile_path = profile_arg != NULL ? g_strdup (profile_arg)
                                   : st_cli_find_profile (matter ? "example-matter.profile"
                                                                 : "example-device-csr.profile");
  g_autofree gchar *text = st_client_read_text (profile_path, ST_CLI_MAX_TEXT, NULL, &error);
  if (text == NULL || !st_cli_demo_login (cli, "lead", &error))
    return st_cli_fail (error);
  if (matter && profile_arg == NULL)
    {
      /* the example names the test Certification Declaration of the home
       * `make matter-demo` makes; this demo's is in its own home */
      g_autofree gchar *cd = g_build_filename (home, "matter", "cd-FFF1-8000.der", NULL);
      gchar *own = st_cli_demo_profile_cd (text, cd, &error);
      if (own == NULL)
        return st_cli_fail (error);
      g_free (text);
      text = own;
    }
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  g_autofree gchar *wo = g_date_time_format (now, "DEMO-%Y%m%d-%H%M%S");
  gint64 batch_id = 0;
  g_autoptr(GVariant) info = NULL;
  if (!st_dbus_station1_call_batch_create_sync (cli->proxy, profile_path, text, wo,
                                                (gint64) n_ports * units, &batch_id, &info, NULL,
                                                &error))
    return st_cli_fail (error);
  g_print (_("== 3. Batch %" PRId64 ": work order %s, %d x %s (created by %s)\n"), batch_id, wo,
           n_ports * units, st_dict_get_string (info, "product"), cli->logged_in);
  /* the line operator runs it */
  if (!st_cli_demo_login (cli, "operator", &error))
    return st_cli_fail (error);
  guint passed = 0;
  int rc = st_cli_run_line (cli, batch_id, (const char *const *) ports->pdata, (guint) units, 30,
                            FALSE, &passed);
  st_cli_stop_procs (devsims);
  if (rc > ST_EXIT_CHECK)
    return rc;

  /* the shift lead closes it and exports the manifest */
  g_autoptr(GVariant) status = st_cli_status (cli, &error);
  if (status == NULL || !st_cli_demo_login (cli, "lead", &error)
      || !st_dbus_station1_call_batch_close_sync (cli->proxy, batch_id, NULL, &error))
    return st_cli_fail (error);
  g_autofree gchar *bdir = g_strdup_printf ("batch-%" G_GINT64_FORMAT, batch_id);
  g_autofree gchar *out = g_build_filename (home, "manifests", bdir, NULL);
  g_print (_("== 4. Batch closed; signed manifest exported to %s\n"), out);
  g_autoptr(GVariant) files = NULL;
  g_autoptr(GUnixFDList) fds = NULL;
  if (!st_client_manifest_dest_check (out, FALSE, &error)
      || !st_dbus_station1_call_manifest_export_sync (cli->proxy, batch_id, out,
                                                      st_client_manifest_export_options (FALSE), NULL,
                                                      &files, &fds, NULL, &error)
      || !st_client_save_files (files, fds, out, FALSE, &error))
    return st_cli_fail (error);
  g_autofree gchar *matter_out = NULL;
  if (matter)
    {
      /* the lead's files of a Matter batch: they hold the setup passcodes */
      g_autofree gchar *mdir = g_strdup_printf ("batch-%" G_GINT64_FORMAT, batch_id);
      matter_out = g_build_filename (home, "matter", mdir, NULL);
      g_autofree gchar *labels_dir = g_build_filename (matter_out, "labels", NULL);
      g_print (_("== 4a. The lead's Matter files: the codes file and a label per unit in %s\n"), matter_out);
      int mrc = st_cli_matter_export (cli, batch_id, FALSE, matter_out, 0, 0, 0, 0);
      if (mrc == 0)
        mrc = st_cli_matter_export (cli, batch_id, TRUE, labels_dir, 0, 0, 0, 0);
      if (mrc != 0)
        return mrc;
    }

  g_print (_("== 5. QA verifies the manifest against the demo root, and the audit log\n"));
  g_autoptr(GUnixFDList) vfds = NULL;
  g_autoptr(GVariant) vfiles = st_client_manifest_files (out, &vfds, &error);
  gboolean verified = FALSE, audited = FALSE;
  g_autofree gchar *report = NULL, *audit_report = NULL, *failure = NULL, *audit_failure = NULL;
  if (vfiles == NULL || !st_cli_demo_login (cli, "qa", &error)
      || !st_dbus_station1_call_manifest_verify_sync (cli->proxy, g_variant_ref_sink (vfiles), "", "",
                                                      out, vfds, &verified, &report, &failure, NULL,
                                                      NULL, &error))
    return st_cli_fail (error);
  st_cli_print_text (report);
  if (!verified)
    return st_cli_verdict (verified, failure);
  if (!st_dbus_station1_call_audit_verify_sync (cli->proxy, "", g_variant_new ("a(sh)", NULL), NULL,
                                                &audited, &audit_report, &audit_failure, NULL, NULL,
                                                &error))
    return st_cli_fail (error);
  st_cli_print_text (audit_report);
  if (!audited)
    return st_cli_verdict (audited, audit_failure);
  g_autofree gchar *root = g_build_filename (home, "demo-root.pem", NULL);
  g_print (_("\n== Done: %u of %d units provisioned.\n"
           "   station home    %s (the service's: database, token)\n"
           "   manifest        %s/manifest.json (+ units.jsonl, .csv, SHA256SUMS, .p7s, ca-chain.pem)\n"
           "   check it with stock tools (the README's recipe: the signature, the signer's pin, the hashes):\n"
           "     openssl cms -verify -binary -inform DER -in %s/SHA256SUMS.p7s \\\n"
           "       -content %s/SHA256SUMS -CAfile %s -signer signer.pem -out /dev/null\n"
           "     openssl x509 -in signer.pem -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum\n"
           "     sed -n 's/^signing-key-sha256=//p' %s/station.conf   # the pin: the same digits\n"
           "     (cd %s && sha256sum --strict -c SHA256SUMS)\n"
           "   with the service running (stationd --home %s):\n"
           "     STATION_OPERATOR_PIN=3333 station --home %s --operator qa audit verify\n"
           "     STATION_OPERATOR_PIN=2222 station --home %s --operator lead batch show %" PRId64 "\n"),
           passed, n_ports * units, home, out, out, out, root, home, out, home, home, home, batch_id);
  if (matter_out != NULL)
    g_print (_("   Matter          %s/matter-codes.csv (setup passcodes, QR texts, manual codes: the lead's)\n"
             "                   %s/labels/ (a PNG, PDF and ZPL label per unit; zbarimg reads the PNG's QR code)\n"
             "   QA checks a unit in a socket and its scanned code:\n"
             "     station --home %s --operator qa unit verify --port PORT --code 'MT:...'\n"),
             matter_out, matter_out, home);
  return rc;
}

static int
st_cli_demo (StCli *cli, int argc, char **argv)
{
  gint n_ports = 3, units = 4;
  gboolean matter = FALSE;
  g_autofree gchar *profile_arg = NULL;
  const GOptionEntry entries[] = {
    { "ports", 0, 0, G_OPTION_ARG_INT, &n_ports, N_("Simulated sockets (default 3)"), "N" },
    { "units", 0, 0, G_OPTION_ARG_INT, &units, N_("Devices per socket (default 4)"), "N" },
    { "profile", 0, 0, G_OPTION_ARG_FILENAME, &profile_arg, N_("Product profile (default: the device-csr example)"), "FILE" },
    { "matter", 0, 0, G_OPTION_ARG_NONE, &matter,
      N_("A Matter demo: a test PAA and PAI, the example Matter profile, factory data and labels"), NULL },
    { NULL }
  };
  g_autoptr(GError) error = NULL;
  if (!st_cli_parse (cli, "demo", entries, &argc, &argv, &error))
    return st_cli_fail (error);
  if (n_ports < 1 || n_ports > 16 || units < 1 || units > 1000)
    {
      g_printerr (_("station: demo takes --ports 1..16 and --units 1..1000\n"));
      return ST_EXIT_USAGE;
    }
  StClientTarget t;
  st_cli_target (cli, &t);
  g_autofree gchar *home = g_strdup (t.home != NULL ? t.home : matter ? "matter-demo-home" : "demo-home");
  if (!g_path_is_absolute (home))
    {
      g_autofree gchar *rel = g_steal_pointer (&home);
      home = g_canonicalize_filename (rel, NULL);
    }
  g_print (_("== 1. Demo station in %s: its own service (stationd), SoftHSM2 token, demo root and "
           "issuing CA\n"), home);
  g_autoptr(GPtrArray) service = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GPtrArray) devsims = g_ptr_array_new_with_free_func (g_object_unref);
  if (!st_cli_start_private_service (cli, home, service, &error))
    return st_cli_fail (error);
  int rc = st_cli_demo_run (cli, home, n_ports, units, profile_arg, matter, devsims);
  st_cli_stop_procs (devsims);
  /* the service signs its closing checkpoint as it stops */
  g_clear_object (&cli->proxy);
  st_cli_stop_procs (service);
  return rc;
}

/* ---- "did you mean": the commands and their subcommands ---------------- */

static const struct {
  const char *name;
  const char *subs[10];  /* NULL-terminated; none: the command takes no subcommand */
} st_cli_commands[] = {
  { "setup", { "demo", "show" } },
  { "ca", { "init", "import", "show", "verification-cert" } },
  { "unlock", { NULL } },
  { "lock", { NULL } },
  { "status", { NULL } },
  { "batch", { "create", "run", "list", "show", "stop", "close", "allow-more-voids", "codes", "labels" } },
  { "manifest", { "export", "verify" } },
  { "unit", { "verify", "resolve", "revoke" } },
  { "crl", { "issue" } },
  { "db", { "check", "backup" } },
  { "bench", { NULL } },
  { "operator", { "add", "list", "unlock", "set-role" } },
  { "audit", { "verify", "export" } },
  { "admin", { "recover" } },
  { "demo", { NULL } },
};

/* The edit distance (insert, delete, substitute, swap two neighbours) of
 * @a and @b, or a number above @limit as soon as it must exceed it. */
static guint
st_cli_distance (const char *a, const char *b, guint limit)
{
  gsize la = strlen (a), lb = strlen (b);
  if (la > 32 || lb > 32 || (la > lb ? la - lb : lb - la) > limit)
    return limit + 1;
  guint d[33][33];
  for (gsize i = 0; i <= la; i++)
    d[i][0] = (guint) i;
  for (gsize j = 0; j <= lb; j++)
    d[0][j] = (guint) j;
  for (gsize i = 1; i <= la; i++)
    for (gsize j = 1; j <= lb; j++)
      {
        guint cost = a[i - 1] == b[j - 1] ? 0 : 1;
        guint v = MIN (MIN (d[i - 1][j] + 1, d[i][j - 1] + 1), d[i - 1][j - 1] + cost);
        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
          v = MIN (v, d[i - 2][j - 2] + 1);
        d[i][j] = v;
      }
  return d[la][lb];
}

/* One line for a word that is not in @names (NULL-terminated, or @n of
 * them): the nearest within 2 edits, else where the commands are listed.
 * @what: "command" or "batch command". Returns the usage exit code. */
static int
st_cli_unknown (const char *what, const char *word, const char *const *names, gsize n)
{
  const char *best = NULL;
  guint best_d = 3;
  for (gsize i = 0; i < n && names[i] != NULL; i++)
    {
      guint d = st_cli_distance (word, names[i], 2);
      if (d < best_d)
        {
          best = names[i];
          best_d = d;
        }
    }
  g_autofree gchar *safe = ST_CLI_LINE (word);
  if (best != NULL)
    g_printerr (_("station: unknown %s '%s': did you mean '%s'?\n"), what, safe, best);
  else
    g_printerr (_("station: unknown %s '%s': 'station --help' lists the commands\n"), what, safe);
  return ST_EXIT_USAGE;
}

/* Whether argv[1] names a command and argv[2], when it is a word, one of its
 * subcommands; else says which one it might be. Returns -1 when it does. */
static int
st_cli_check_command (int argc, char **argv)
{
  const char *names[G_N_ELEMENTS (st_cli_commands)];
  for (gsize i = 0; i < G_N_ELEMENTS (st_cli_commands); i++)
    {
      names[i] = st_cli_commands[i].name;
      if (g_strcmp0 (argv[1], names[i]) != 0)
        continue;
      const char *const *subs = st_cli_commands[i].subs;
      const char *sub = argc > 2 ? argv[2] : NULL;
      if (subs[0] == NULL || sub == NULL || sub[0] == '-' || g_strv_contains (subs, sub))
        return -1;
      g_autofree gchar *what = g_strdup_printf (_("%s command"), names[i]);
      return st_cli_unknown (what, sub, subs, G_N_ELEMENTS (st_cli_commands[i].subs));
    }
  return st_cli_unknown (_("command"), argv[1], names, G_N_ELEMENTS (names));
}

int
main (int argc, char **argv)
{
  st_process_setup ();
  st_i18n_init ();
  StCli cli = { 0 };
  gboolean version = FALSE;
  const GOptionEntry entries[] = {
    { "home", 0, 0, G_OPTION_ARG_FILENAME, &cli.home, N_("Station home folder (its private service)"), "DIR" },
    { "address", 0, 0, G_OPTION_ARG_STRING, &cli.address, N_("The service's peer-to-peer address"), "ADDR" },
    { "system", 0, 0, G_OPTION_ARG_NONE, &cli.system, N_("The system's station service"), NULL },
    { "operator", 0, 0, G_OPTION_ARG_STRING, &cli.operator_name, N_("Who does this"), "NAME" },
    { "version", 0, 0, G_OPTION_ARG_NONE, &version, N_("Print the version"), NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new (N_("COMMAND [ARGS] - offline device provisioning station"));
  g_option_context_set_translation_domain (ctx, GETTEXT_PACKAGE);
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_set_description (ctx, st_usage);
  g_option_context_set_strict_posix (ctx, TRUE);
  g_autoptr(GError) error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return st_cli_fail (error);
  if (version)
    {
      g_print ("station %s\n", ST_VERSION);
      return 0;
    }
  if (argc < 2)
    {
      g_autofree gchar *help = g_option_context_get_help (ctx, TRUE, NULL);
      g_printerr ("%s", help);
      return ST_EXIT_USAGE;
    }
  const char *command = argv[1];
  int rc = st_cli_check_command (argc, argv);
  if (rc >= 0)
    {
      /* not a command or subcommand: said so in one line */
    }
  else if (g_strcmp0 (command, "setup") == 0)
    rc = cmd_setup (&cli, argc - 1, argv + 1);
  else if (g_strcmp0 (command, "ca") == 0)
    rc = cmd_ca (&cli, argc - 1, argv + 1);
  else if (g_strcmp0 (command, "unlock") == 0 || g_strcmp0 (command, "lock") == 0)
    rc = cmd_unlock (&cli, argc - 1, argv + 1, g_strcmp0 (command, "unlock") == 0);
  else if (g_strcmp0 (command, "status") == 0)
    rc = cmd_status (&cli, argc - 1, argv + 1);
  else if (g_strcmp0 (command, "batch") == 0)
    rc = cmd_batch (&cli, argc - 1, argv + 1);
  else if (g_strcmp0 (command, "manifest") == 0)
    rc = cmd_manifest (&cli, argc - 1, argv + 1);
  else if (g_strcmp0 (command, "unit") == 0)
    rc = cmd_unit (&cli, argc - 1, argv + 1);
  else if (g_strcmp0 (command, "crl") == 0)
    rc = cmd_crl (&cli, argc - 1, argv + 1);
  else if (g_strcmp0 (command, "db") == 0)
    rc = cmd_db (&cli, argc - 1, argv + 1);
  else if (g_strcmp0 (command, "bench") == 0)
    rc = cmd_bench (&cli, argc - 1, argv + 1);
  else if (g_strcmp0 (command, "operator") == 0)
    rc = cmd_operator (&cli, argc - 1, argv + 1);
  else if (g_strcmp0 (command, "audit") == 0)
    rc = cmd_audit (&cli, argc - 1, argv + 1);
  else if (g_strcmp0 (command, "admin") == 0)
    rc = cmd_admin (&cli, argc - 1, argv + 1);
  else if (g_strcmp0 (command, "demo") == 0)
    rc = st_cli_demo (&cli, argc - 1, argv + 1);
  else
    rc = st_cli_unknown (_("command"), command, NULL, 0);
  /* the session ends with the connection; say so, so that the log shows it */
  if (cli.proxy != NULL && cli.logged_in != NULL)
    st_dbus_station1_call_logout_sync (cli.proxy, NULL, NULL);
  g_clear_object (&cli.proxy);
  g_free (cli.logged_in);
  g_free (cli.home);
  g_free (cli.address);
  g_free (cli.operator_name);
  return rc;
}
