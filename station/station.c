/* station: the command-line interface.
 *
 *   station [--home DIR] [--operator NAME] COMMAND [ARGS]
 *
 * See `station --help` and the README. */
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <locale.h>
#include <openssl/pem.h>
#include <json-glib/json-glib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "st-audit.h"
#include "st-auth.h"
#include "st-batch.h"
#include "st-bench.h"
#include "st-ca.h"
#include "st-config.h"
#include "st-db.h"
#include "st-error.h"
#include "st-hsm.h"
#include "st-manifest.h"
#include "st-ossl.h"
#include "st-profile.h"
#include "st-qa.h"
#include "st-setup.h"
#include "st-util.h"
#include "st-verify.h"
#include "st-config.h"

typedef struct {
  gchar *home;
  gchar *operator_name;
  gchar *argv0;
  StAuthSession *session;  /* once logged in */
  /* Opened once for the command and kept to its end, where the closing
   * audit checkpoint uses them (st_cli_open, st_cli_open_ca). */
  StConfig *config;
  StDb *db;
  StCa *ca;
} StCli;

static const char st_usage[] =
  "Commands:\n"
  "  setup demo                         make the demo station (SoftHSM2 token, demo CA) in HOME\n"
  "  setup show                         show the HSM, keys, CA chain and days left\n"
  "  batch create --profile FILE --work-order WO --quantity N\n"
  "  batch run BATCH --port PATH [--port PATH]... [--units N] [--wait S] [--allow-reprovision]\n"
  "  batch list | batch show BATCH | batch close BATCH\n"
  "  manifest export BATCH --out DIR\n"
  "  manifest verify DIR [--root FILE]\n"
  "  unit verify --port PATH [--profile FILE]\n"
  "  db check | db backup DEST [--force]\n"
  "  operator add NAME --role operator|lead|qa|admin | operator list\n"
  "  operator unlock NAME | operator set-role NAME --role ROLE\n"
  "  batch allow-more-voids BATCH\n"
  "  audit verify [--root FILE] | audit export --out FILE\n"
  "  demo [--ports N] [--units N]       the whole flow on simulated devices\n"
  "  bench [--units N] [--slots K]      units/s end to end and raw issuance rate\n"
  "\n"
  "HOME is --home, else $STATION_HOME, else ~/.local/share/station.\n"
  "The HSM PIN comes from $STATION_HSM_PIN or a prompt; it is never stored.\n"
  "Commands run as an operator: --operator NAME (else $STATION_OPERATOR), with the PIN\n"
  "from $STATION_OPERATOR_PIN or a prompt ('demo' and 'bench' on a demo home log in as the\n"
  "demo operators themselves). Roles: operator runs batches; lead creates and closes batches, exports manifests\n"
  "and allows more voids; qa verifies units, manifests and the audit log; admin sets up\n"
  "and manages operators.\n";

/* ---- helpers ---------------------------------------------------------- */

static int
st_cli_fail (GError *error)
{
  g_printerr ("station: %s\n", error->message);
  return error->domain == ST_ERROR && error->code == ST_ERROR_VERIFY_FAILED ? 1 : 2;
}

/* Parses the options of one command; the global --home and --operator are
 * accepted there too. Leaves the positional arguments in argv. */
static gboolean
st_cli_parse (StCli *cli, const char *command, const GOptionEntry *entries,
              int *argc, char ***argv, GError **error)
{
  const GOptionEntry common[] = {
    { "home", 0, 0, G_OPTION_ARG_FILENAME, &cli->home, "Station home folder", "DIR" },
    { "operator", 0, 0, G_OPTION_ARG_STRING, &cli->operator_name, "Who does this (default: login name)", "NAME" },
    { NULL }
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new (command);
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

/* The subcommand (argv[1], NULL when there is none), taken off the
 * arguments so that the command's own positional ones start at argv[1]. */
static const char *
st_cli_take_sub (int *argc, char ***argv)
{
  const char *sub = *argc > 1 ? (*argv)[1] : NULL;
  (*argc)--;
  (*argv)++;
  return sub;
}

static const char *
st_cli_home (StCli *cli)
{
  return cli->home != NULL ? cli->home : st_config_default_home ();
}

static const char *
st_cli_operator (StCli *cli)
{
  if (cli->session != NULL)
    return cli->session->name;
  return cli->operator_name != NULL ? cli->operator_name : g_get_user_name ();
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

/* A JSON object of string members: key, value, ..., NULL. */
G_GNUC_NULL_TERMINATED static gchar *
st_cli_payload (const char *first_key, ...)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  va_list ap;
  va_start (ap, first_key);
  json_builder_begin_object (b);
  for (const char *k = first_key; k != NULL; k = va_arg (ap, const char *))
    {
      const char *v = va_arg (ap, const char *);
      json_builder_set_member_name (b, k);
      json_builder_add_string_value (b, v != NULL ? v : "");
    }
  json_builder_end_object (b);
  va_end (ap);
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  return json_generator_to_data (gen, NULL);
}

/* Logs the operator in (PIN from STATION_OPERATOR_PIN or a prompt) and
 * checks that their role is in @roles for @what. The session stays in
 * @cli; the database's actor becomes the operator. */
static gboolean
st_cli_login (StCli *cli, StDb *db, guint roles, const char *what, GError **error)
{
  if (cli->session == NULL)
    {
      gint64 n = st_db_operator_count (db, error);
      if (n < 0)
        return FALSE;
      if (n == 0)
        {
          g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                       "%s: this station has no operators yet: create the first admin with "
                       "'station operator add NAME --role admin' (or run 'station setup demo' "
                       "for the demo operators)", what);
          return FALSE;
        }
      const char *name = st_cli_operator_arg (cli);
      if (name == NULL)
        {
          g_autofree gchar *needed = st_role_mask_to_string (roles);
          g_set_error (error, ST_ERROR, ST_ERROR_PERMISSION_DENIED,
                       "%s needs the role %s: say who you are with --operator NAME (the PIN "
                       "comes from STATION_OPERATOR_PIN or a prompt)", what, needed);
          return FALSE;
        }
      g_autofree gchar *prompt = g_strdup_printf ("PIN for operator %s: ", name);
      gchar *pin = st_auth_read_pin (prompt, error);
      if (pin == NULL)
        return FALSE;
      cli->session = st_auth_login (db, name, pin, error);
      st_secret_free (pin);
      if (cli->session == NULL)
        return FALSE;
    }
  return st_auth_require (db, cli->session, roles, what, error);
}

/* The demo logs in as its own demo operators with their documented PINs. */
static gboolean
st_cli_demo_login (StCli *cli, StDb *db, StRole role, GError **error)
{
  const char *name = NULL, *pin = NULL;
  if (!st_auth_demo_operator (role, &name, &pin))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL, "no demo operator for role %s",
                   st_role_to_string (role));
      return FALSE;
    }
  g_clear_pointer (&cli->session, st_auth_session_free);
  cli->session = st_auth_login (db, name, pin, error);
  if (cli->session == NULL)
    {
      g_prefix_error (error, "the demo logs in as demo operator '%s' with the PIN the README "
                      "documents: ", name);
      return FALSE;
    }
  return TRUE;
}

static StConfig *
st_cli_config (StCli *cli, GError **error)
{
  return st_config_load (st_cli_home (cli), error);
}

/* The station's configuration and its database, for a command: owned by
 * @cli (borrowed by the caller) until main() is done with them. */
static gboolean
st_cli_open (StCli *cli, StConfig **config, StDb **db, GError **error)
{
  if (cli->config == NULL)
    cli->config = st_cli_config (cli, error);
  if (cli->config != NULL && cli->db == NULL)
    cli->db = st_db_open (cli->config->db_path, error);
  *config = cli->config;
  *db = cli->db;
  return *db != NULL;
}

/* The CA in the HSM for a command that signs: owned by @cli, like its
 * configuration (st_cli_open() first). */
static StCa *
st_cli_open_ca (StCli *cli, GError **error)
{
  g_return_val_if_fail (cli->config != NULL, NULL);
  if (cli->ca != NULL)
    return cli->ca;
  gchar *pin = st_hsm_read_pin ("HSM user PIN: ", error);
  if (pin == NULL)
    return NULL;
  cli->ca = st_ca_open (cli->config, pin, error);
  st_hsm_pin_free (pin);
  return cli->ca;
}

static gboolean
st_cli_parse_id (const char *text, gint64 *out, GError **error)
{
  guint64 v = 0;
  if (text == NULL || !g_ascii_string_to_unsigned (text, 10, 1, G_MAXINT64, &v, NULL))
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "'%s' is not a batch id: give the number that 'batch create' printed (see 'batch list')",
                   text != NULL ? text : "");
      return FALSE;
    }
  *out = (gint64) v;
  return TRUE;
}

static X509 *
st_cli_load_root (const char *path, GError **error)
{
  g_autoptr(StX509Stack) certs = st_chain_load_pem (path, error);
  if (certs == NULL)
    return NULL;
  if (sk_X509_num (certs) != 1)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INVALID_DATA,
                   "%s holds %d certificates; the trusted root file must hold exactly one", path,
                   sk_X509_num (certs));
      return NULL;
    }
  X509 *root = sk_X509_value (certs, 0);
  X509_up_ref (root);
  return root;
}

/* ---- running a line: batch run, demo --------------------------------- */

typedef struct {
  GMutex lock;
  FILE *out;
} StPrinter;

static void
st_print_unit (const StUnitResult *r, gpointer user_data)
{
  StPrinter *p = user_data;
  g_mutex_lock (&p->lock);
  fprintf (p->out, "%-22s %-26s %-8s %6.2fs  %s", r->port, r->uid_hex,
           st_unit_outcome_to_string (r->outcome), r->seconds, r->reason);
  if (r->outcome == ST_UNIT_PASSED)
    fprintf (p->out, " (serial %s, certificate %s)", r->product_serial, r->cert_serial);
  fputc ('\n', p->out);
  if (r->outcome != ST_UNIT_PASSED && r->detail != NULL)
    fprintf (p->out, "%-22s   step %s: %s\n", "", r->step, r->detail);
  fflush (p->out);
  g_mutex_unlock (&p->lock);
}

static void
st_print_port (const char *port, const GError *error, gpointer user_data)
{
  StPrinter *p = user_data;
  g_mutex_lock (&p->lock);
  fprintf (p->out, "%-22s gave up: %s\n", port, error->message);
  fflush (p->out);
  g_mutex_unlock (&p->lock);
}

typedef struct {
  StLine *line;
  const StBatchRunOptions *options;
  StBatchRunSummary summary;
  GError *error;
  gboolean ok;
  GMainLoop *loop;
} StRunJob;

static gpointer
st_run_thread (gpointer data)
{
  StRunJob *job = data;
  job->ok = st_batch_run (job->line, job->options, &job->summary, &job->error);
  g_main_loop_quit (job->loop);
  return NULL;
}

static gboolean
st_on_signal (gpointer data)
{
  StLine *line = data;
  g_printerr ("station: stopping: units in flight finish or fail safely\n");
  g_cancellable_cancel (line->cancellable);
  return G_SOURCE_CONTINUE;
}

/* Runs the line until done; Ctrl-C stops it cleanly. Returns the exit code. */
static int
st_cli_run_line (StConfig *config, StCa *ca, StDb *db, gint64 batch_id, const char *operator_name,
                 const char *const *ports, guint units, guint wait_s, gboolean allow_reprovision,
                 StBatchRunSummary *summary_out)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StLine) line = st_line_new (config, ca, db, batch_id, operator_name, &error);
  if (line == NULL)
    return st_cli_fail (error);
  st_audit_install_hook (db, ca, st_audit_checkpoint_interval (config));
  line->allow_reprovision = allow_reprovision;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  line->cancellable = cancellable;

  g_autoptr(GString) recovered = g_string_new (NULL);
  if (!st_line_recover (line, recovered, &error))
    return st_cli_fail (error);
  if (recovered->len > 0)
    g_print ("Recovered from an earlier interruption:\n%s", recovered->str);

  StPrinter printer = { .out = stdout };
  g_mutex_init (&printer.lock);
  StBatchRunOptions options = {
    .ports = ports,
    .units_per_port = units,
    .idle_timeout_s = wait_s,
    .unit_func = st_print_unit,
    .port_func = st_print_port,
    .user_data = &printer,
  };
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  StRunJob job = { .line = line, .options = &options, .loop = loop };
  guint sigint = g_unix_signal_add (SIGINT, st_on_signal, line);
  guint sigterm = g_unix_signal_add (SIGTERM, st_on_signal, line);
  GThread *thread = g_thread_new ("batch-run", st_run_thread, &job);
  g_main_loop_run (loop);
  g_thread_join (thread);
  g_source_remove (sigint);
  g_source_remove (sigterm);
  g_mutex_clear (&printer.lock);
  line->cancellable = NULL;
  st_audit_remove_hook (db);
  {
    g_autoptr(GError) cp_error = NULL;
    if (!st_audit_checkpoint (db, ca, "batch-run-end", &cp_error))
      g_printerr ("station: the audit checkpoint at the end of the run failed: %s\n", cp_error->message);
  }

  if (summary_out != NULL)
    *summary_out = job.summary;
  g_print ("batch %" G_GINT64_FORMAT ": %u passed, %u failed, %u refused%s\n", batch_id,
           job.summary.passed, job.summary.failed, job.summary.refused,
           job.summary.ports_failed > 0 ? ", some sockets gave up" : "");
  if (!job.ok)
    {
      g_printerr ("station: %s\n", job.error->message);
      g_error_free (job.error);
      return 2;
    }
  gboolean all = job.summary.failed == 0 && job.summary.refused == 0 &&
                 job.summary.ports_failed == 0 && !g_cancellable_is_cancelled (cancellable);
  return all ? 0 : 1;
}

/* ---- commands ---------------------------------------------------------- */

static int
cmd_setup (StCli *cli, int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  if (!st_cli_parse (cli, "setup demo|show", NULL, &argc, &argv, &error))
    return st_cli_fail (error);
  const char *what = argc > 1 ? argv[1] : NULL;
  if (g_strcmp0 (what, "demo") == 0)
    {
      /* Before any operator exists anyone may set the demo up; after, an admin. */
      {
        g_autoptr(GError) local = NULL;
        g_autoptr(StConfig) config = st_cli_config (cli, &local);
        g_autoptr(StDb) db = config != NULL && g_file_test (config->db_path, G_FILE_TEST_EXISTS)
                             ? st_db_open (config->db_path, &error) : NULL;
        if (config != NULL && db == NULL && error != NULL)
          return st_cli_fail (error);
        gint64 n = db != NULL ? st_db_operator_count (db, &error) : 0;
        if (n < 0)
          return st_cli_fail (error);
        /* on a demo home without --operator, as the demo admin (make bench) */
        gboolean ok = n == 0
                      || (config->demo && st_cli_operator_arg (cli) == NULL
                          ? st_cli_demo_login (cli, db, ST_ROLE_ADMIN, &error)
                          : st_cli_login (cli, db, ST_ROLE_ADMIN, "setup demo", &error));
        if (!ok)
          return st_cli_fail (error);
      }
      gchar *pin = st_hsm_read_pin ("PIN for the new demo token: ", &error);
      if (pin == NULL)
        return st_cli_fail (error);
      gboolean ok = st_setup_demo (st_cli_home (cli), pin, &error);
      st_hsm_pin_free (pin);
      if (!ok)
        return st_cli_fail (error);
      g_print ("The demo station is ready in %s\n", st_cli_home (cli));
      return 0;
    }
  if (g_strcmp0 (what, "show") == 0)
    {
      g_autoptr(StConfig) config = st_cli_config (cli, &error);
      if (config == NULL)
        return st_cli_fail (error);
      {
        g_autoptr(StDb) db = g_file_test (config->db_path, G_FILE_TEST_EXISTS)
                             ? st_db_open (config->db_path, &error) : NULL;
        if (db == NULL && error != NULL)
          return st_cli_fail (error);
        gint64 n = db != NULL ? st_db_operator_count (db, &error) : 0;
        if (n < 0)
          return st_cli_fail (error);
        /* a station without operators yet shows itself to its first admin */
        if (n > 0 && !st_cli_login (cli, db, ST_ROLE_ANY, "setup show", &error))
          return st_cli_fail (error);
      }
      gchar *pin = g_getenv ("STATION_HSM_PIN") != NULL ? st_hsm_read_pin ("HSM user PIN: ", NULL) : NULL;
      g_autoptr(GString) out = g_string_new (NULL);
      gboolean ok = st_setup_show (config, pin, out, &error);
      st_hsm_pin_free (pin);
      g_print ("%s", out->str);
      return ok ? 0 : st_cli_fail (error);
    }
  g_printerr ("station: setup needs 'demo' or 'show'\n");
  return 2;
}

static int
cmd_batch_create (StCli *cli, StConfig *config, StDb *db, const char *profile_path,
                  const char *work_order, gint quantity)
{
  g_autoptr(GError) error = NULL;
  if (profile_path == NULL || work_order == NULL || *work_order == '\0' || quantity <= 0)
    {
      g_printerr ("station: batch create needs --profile FILE, --work-order WO and --quantity N (N >= 1)\n");
      return 2;
    }
  if (!st_cli_login (cli, db, ST_ROLE_LEAD, "creating a batch", &error))
    return st_cli_fail (error);
  g_autoptr(StProfile) profile = st_profile_load (profile_path, &error);
  if (profile == NULL)
    return st_cli_fail (error);
  gint64 id = st_db_batch_create (db, work_order, profile->name, profile->sha256, profile->text,
                                  quantity, config->station_id, st_cli_operator (cli), &error);
  if (id <= 0)
    return st_cli_fail (error);
  g_print ("Created batch for work order %s: %d x %s (%s, %s)\n", work_order, quantity,
           profile->name, profile->key_mode == ST_KEY_MODE_DEVICE_CSR ? "device-csr" : "station-key",
           st_alg_to_string (profile->alg));
  g_print ("%" G_GINT64_FORMAT "\n", id);
  return 0;
}

static void
st_print_batch_line (StDbBatch *b)
{
  g_autofree gchar *created = st_time_iso8601_from_unix (b->created_at);
  g_print ("%6" G_GINT64_FORMAT "  %-7s %-16s %-24s %5" G_GINT64_FORMAT " %5" G_GINT64_FORMAT " %5"
           G_GINT64_FORMAT "  %s\n",
           b->id, b->state, b->work_order, b->product, b->quantity, b->n_done, b->n_failed, created);
}

static int
cmd_batch (StCli *cli, int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  const char *sub = argc > 1 ? argv[1] : NULL;
  if (sub == NULL)
    {
      g_printerr ("station: batch needs create, run, list, show or close\n%s", st_usage);
      return 2;
    }
  /* batch SUB ...: shift so that argv[0] is "batch SUB". */
  argc--;
  argv++;

  g_auto(GStrv) ports = NULL;
  gint units = 0, wait_s = 60;
  gboolean allow_reprovision = FALSE;
  const GOptionEntry run_entries[] = {
    { "port", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &ports, "Socket (repeat for several)", "PATH" },
    { "units", 0, 0, G_OPTION_ARG_INT, &units, "Devices per socket (default: until the quantity is done)", "N" },
    { "wait", 0, 0, G_OPTION_ARG_INT, &wait_s, "Give up on a socket without a new device for S seconds (0: never)", "S" },
    { "allow-reprovision", 0, 0, G_OPTION_ARG_NONE, &allow_reprovision,
      "Re-provision devices that already hold a certificate (voids the old one)", NULL },
    { NULL }
  };
  g_autofree gchar *profile_path = NULL, *work_order = NULL;
  gint quantity = 0;
  const GOptionEntry create_entries[] = {
    { "profile", 0, 0, G_OPTION_ARG_FILENAME, &profile_path, "Product profile", "FILE" },
    { "work-order", 0, 0, G_OPTION_ARG_STRING, &work_order, "Work order", "WO" },
    { "quantity", 0, 0, G_OPTION_ARG_INT, &quantity, "Devices to provision", "N" },
    { NULL }
  };
  gboolean is_create = g_strcmp0 (sub, "create") == 0, is_run = g_strcmp0 (sub, "run") == 0;
  if (!st_cli_parse (cli, is_create ? "batch create" : is_run ? "batch run BATCH" : "batch",
                     is_create ? create_entries : is_run ? run_entries : NULL, &argc, &argv, &error))
    return st_cli_fail (error);
  StConfig *config = NULL;
  StDb *db = NULL;
  if (!st_cli_open (cli, &config, &db, &error))
    return st_cli_fail (error);

  if (is_create)
    return cmd_batch_create (cli, config, db, profile_path, work_order, quantity);

  if (g_strcmp0 (sub, "list") == 0)
    {
      if (!st_cli_login (cli, db, ST_ROLE_ANY, "batch list", &error))
        return st_cli_fail (error);
      g_autoptr(GPtrArray) batches = st_db_batch_list (db, &error);
      if (batches == NULL)
        return st_cli_fail (error);
      g_print ("%6s  %-7s %-16s %-24s %5s %5s %5s  %s\n", "id", "state", "work order", "product",
               "qty", "done", "fail", "created");
      for (guint i = 0; i < batches->len; i++)
        st_print_batch_line (g_ptr_array_index (batches, i));
      return 0;
    }

  gint64 batch_id = 0;
  if (!st_cli_parse_id (argc > 1 ? argv[1] : NULL, &batch_id, &error))
    return st_cli_fail (error);

  if (g_strcmp0 (sub, "show") == 0)
    {
      if (!st_cli_login (cli, db, ST_ROLE_ANY, "batch show", &error))
        return st_cli_fail (error);
      g_autoptr(StDbBatch) b = st_db_batch_get (db, batch_id, &error);
      if (b == NULL)
        return st_cli_fail (error);
      g_autofree gchar *created = st_time_iso8601_from_unix (b->created_at);
      g_autofree gchar *closed = b->closed_at > 0 ? st_time_iso8601_from_unix (b->closed_at) : g_strdup ("-");
      g_print ("batch %" G_GINT64_FORMAT " (%s)\n  work order  %s\n  product     %s (profile sha256 %s)\n"
               "  quantity    %" G_GINT64_FORMAT "\n  units       %" G_GINT64_FORMAT " (%" G_GINT64_FORMAT " done, %"
               G_GINT64_FORMAT " failed)\n  certificates %" G_GINT64_FORMAT " live, %" G_GINT64_FORMAT
               " voided, %" G_GINT64_FORMAT " unconfirmed\n  created     %s by %s\n  closed      %s%s%s\n",
               b->id, b->state, b->work_order, b->product, b->profile_sha256, b->quantity, b->n_units,
               b->n_done, b->n_failed, b->n_live_certs, b->n_voided, b->n_unconfirmed, created,
               b->created_by, closed, b->closed_by != NULL ? " by " : "",
               b->closed_by != NULL ? b->closed_by : "");
      g_autoptr(GPtrArray) list = st_db_unit_list (db, batch_id, &error);
      if (list == NULL)
        return st_cli_fail (error);
      for (guint i = 0; i < list->len; i++)
        {
          StDbUnit *u = g_ptr_array_index (list, i);
          g_print ("  %-26s %-8s %-18s %-12s %s%s%s\n", u->uid, u->state,
                   u->product_serial != NULL ? u->product_serial : "-",
                   u->cert_state != NULL ? u->cert_state : "-", u->port,
                   u->fail_reason != NULL ? "  " : "", u->fail_reason != NULL ? u->fail_reason : "");
        }
      return 0;
    }
  if (g_strcmp0 (sub, "close") == 0)
    {
      if (!st_cli_login (cli, db, ST_ROLE_LEAD, "closing a batch", &error))
        return st_cli_fail (error);
      /* the HSM first: a closed batch gets its signed audit checkpoint */
      StCa *ca = st_cli_open_ca (cli, &error);
      if (ca == NULL)
        return st_cli_fail (error);
      if (!st_db_batch_close (db, batch_id, st_cli_operator (cli), &error))
        return st_cli_fail (error);
      if (!st_audit_checkpoint (db, ca, "batch-close", &error))
        {
          g_prefix_error (&error, "batch %" G_GINT64_FORMAT " closed, but ", batch_id);
          return st_cli_fail (error);
        }
      g_print ("batch %" G_GINT64_FORMAT " closed\n", batch_id);
      return 0;
    }
  if (g_strcmp0 (sub, "allow-more-voids") == 0)
    {
      if (!st_cli_login (cli, db, ST_ROLE_LEAD, "allowing more voided certificates", &error))
        return st_cli_fail (error);
      gint64 voided = 0, cap = 0;
      st_db_batch_over_void_cap (db, batch_id, &voided, &cap);
      gint64 new_cap = 0;
      if (!st_db_batch_allow_more_voids (db, batch_id, st_cli_operator (cli), &new_cap, &error))
        return st_cli_fail (error);
      g_print ("batch %" G_GINT64_FORMAT ": %" G_GINT64_FORMAT " certificates voided; the cap goes "
               "from %" G_GINT64_FORMAT " to %" G_GINT64_FORMAT "\n", batch_id, voided, cap, new_cap);
      return 0;
    }
  if (g_strcmp0 (sub, "run") == 0)
    {
      if (!st_cli_login (cli, db, ST_ROLE_OPERATOR | ST_ROLE_LEAD, "running a batch", &error))
        return st_cli_fail (error);
      if (ports == NULL || ports[0] == NULL)
        {
          g_printerr ("station: batch run needs at least one --port PATH\n");
          return 2;
        }
      if (units < 0 || wait_s < 0)
        {
          g_printerr ("station: --units and --wait take numbers >= 0\n");
          return 2;
        }
      StCa *ca = st_cli_open_ca (cli, &error);
      if (ca == NULL)
        return st_cli_fail (error);
      if (units == 0)
        {
          /* Until the quantity is done: spread over the sockets. */
          g_autoptr(StDbBatch) b = st_db_batch_get (db, batch_id, &error);
          if (b == NULL)
            return st_cli_fail (error);
          guint n = g_strv_length (ports);
          gint64 left = MAX (b->quantity - b->n_done, 0);
          units = (gint) ((left + n - 1) / n);
          if (units == 0)
            {
              g_print ("batch %" G_GINT64_FORMAT " already has its %" G_GINT64_FORMAT " units done\n",
                       batch_id, b->quantity);
              return 0;
            }
        }
      return st_cli_run_line (config, ca, db, batch_id, st_cli_operator (cli),
                              (const char *const *) ports, (guint) units, (guint) wait_s,
                              allow_reprovision, NULL);
    }
  g_printerr ("station: unknown batch command '%s'\n%s", sub, st_usage);
  return 2;
}

static int
cmd_manifest (StCli *cli, int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  const char *sub = st_cli_take_sub (&argc, &argv);
  g_autofree gchar *out = NULL, *root_path = NULL;
  const GOptionEntry entries[] = {
    { "out", 0, 0, G_OPTION_ARG_FILENAME, &out, "Folder to write the manifest into", "DIR" },
    { "root", 0, 0, G_OPTION_ARG_FILENAME, &root_path, "Trusted root certificate (default: the station's)", "FILE" },
    { NULL }
  };
  if (!st_cli_parse (cli, "manifest export|verify", entries, &argc, &argv, &error))
    return st_cli_fail (error);

  if (g_strcmp0 (sub, "export") == 0)
    {
      gint64 batch_id = 0;
      if (!st_cli_parse_id (argc > 1 ? argv[1] : NULL, &batch_id, &error))
        return st_cli_fail (error);
      if (out == NULL)
        {
          g_printerr ("station: manifest export needs --out DIR\n");
          return 2;
        }
      StConfig *config = NULL;
      StDb *db = NULL;
      if (!st_cli_open (cli, &config, &db, &error)
          || !st_cli_login (cli, db, ST_ROLE_LEAD, "exporting a manifest", &error))
        return st_cli_fail (error);
      StCa *ca = st_cli_open_ca (cli, &error);
      if (ca == NULL)
        return st_cli_fail (error);
      if (!st_manifest_export (db, ca, config->station_id, batch_id, out, &error))
        return st_cli_fail (error);
      g_autofree gchar *payload = g_strdup_printf ("{\"batch\":%" G_GINT64_FORMAT ",\"out\":\"%s\"}", batch_id, out);
      if (!st_db_event_add (db, st_cli_operator (cli), "manifest-export", payload, &error))
        return st_cli_fail (error);
      g_print ("manifest of batch %" G_GINT64_FORMAT " written to %s\n", batch_id, out);
      return 0;
    }
  if (g_strcmp0 (sub, "verify") == 0)
    {
      const char *dir = argc > 1 ? argv[1] : NULL;
      if (dir == NULL)
        {
          g_printerr ("station: manifest verify needs the manifest folder\n");
          return 2;
        }
      g_autofree gchar *root_file = g_strdup (root_path);
      StConfig *config = NULL;
      StDb *db = NULL;
      if (!st_cli_open (cli, &config, &db, &error)
          || !st_cli_login (cli, db, ST_ROLE_QA | ST_ROLE_LEAD, "verifying a manifest", &error))
        return st_cli_fail (error);
      if (root_file == NULL)
        root_file = g_strdup (config->root_file);
      g_autoptr(X509) root = st_cli_load_root (root_file, &error);
      if (root == NULL)
        return st_cli_fail (error);
      g_autoptr(GString) report = g_string_new (NULL);
      gboolean ok = st_manifest_verify (dir, root, report, &error);
      g_print ("%s%s\n", report->str, ok ? "manifest verified" : "MANIFEST REJECTED");
      g_autofree gchar *payload = st_cli_payload ("dir", dir, "verified", ok ? "true" : "false", NULL);
      g_autoptr(GError) audit_error = NULL;
      if (!st_db_audit_add (db, st_cli_operator (cli), "manifest-verify", payload, &audit_error))
        g_printerr ("station: %s\n", audit_error->message);
      return ok ? 0 : st_cli_fail (error);
    }
  g_printerr ("station: manifest needs export or verify\n");
  return 2;
}

static int
cmd_unit (StCli *cli, int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  const char *sub = st_cli_take_sub (&argc, &argv);
  g_autofree gchar *port = NULL, *profile_path = NULL;
  const GOptionEntry entries[] = {
    { "port", 0, 0, G_OPTION_ARG_FILENAME, &port, "Socket of the unit", "PATH" },
    { "profile", 0, 0, G_OPTION_ARG_FILENAME, &profile_path, "Product profile (for its link settings)", "FILE" },
    { NULL }
  };
  if (!st_cli_parse (cli, "unit verify", entries, &argc, &argv, &error))
    return st_cli_fail (error);
  if (g_strcmp0 (sub, "verify") != 0 || port == NULL)
    {
      g_printerr ("station: usage: unit verify --port PATH [--profile FILE]\n");
      return 2;
    }
  StConfig *config = NULL;
  StDb *db = NULL;
  if (!st_cli_open (cli, &config, &db, &error)
      || !st_cli_login (cli, db, ST_ROLE_QA, "verifying a unit", &error))
    return st_cli_fail (error);
  g_autoptr(X509) root = st_cli_load_root (config->root_file, &error);
  if (root == NULL)
    return st_cli_fail (error);
  StLinkParams params;
  st_link_params_init_defaults (&params);
  if (profile_path != NULL)
    {
      g_autoptr(StProfile) profile = st_profile_load (profile_path, &error);
      if (profile == NULL)
        return st_cli_fail (error);
      params = profile->link;
    }
  g_autoptr(GString) report = g_string_new (NULL);
  gboolean ok = st_qa_verify_unit (db, root, port, &params, st_cli_operator (cli), report, &error);
  g_print ("%s", report->str);
  return ok ? 0 : st_cli_fail (error);
}

static int
cmd_db (StCli *cli, int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  gboolean force = FALSE;
  const GOptionEntry entries[] = {
    { "force", 0, 0, G_OPTION_ARG_NONE, &force, "db backup: replace DEST if it exists", NULL },
    { NULL }
  };
  if (!st_cli_parse (cli, "db check | db backup DEST [--force]", entries, &argc, &argv, &error))
    return st_cli_fail (error);
  gboolean backup = argc == 3 && g_strcmp0 (argv[1], "backup") == 0;
  if (!backup && (argc < 2 || g_strcmp0 (argv[1], "check") != 0))
    {
      g_printerr ("station: usage: db check | db backup DEST [--force]\n");
      return 2;
    }
  StConfig *config = NULL;
  StDb *db = NULL;
  if (!st_cli_open (cli, &config, &db, &error))
    return st_cli_fail (error);
  if (backup)
    {
      /* An online copy (SQLite's backup API), fsynced; check it with
       * 'station db check' on a home whose station.conf names it. */
      if (!st_cli_login (cli, db, ST_ROLE_ADMIN | ST_ROLE_LEAD, "db backup", &error) ||
          !st_db_backup (config->db_path, argv[2], force, &error))
        return st_cli_fail (error);
      g_print ("backup of %s written to %s (flushed to the disk)\n", config->db_path, argv[2]);
      return 0;
    }
  if (!st_cli_login (cli, db, ST_ROLE_ANY, "db check", &error))
    return st_cli_fail (error);
  g_autoptr(GString) report = g_string_new (NULL);
  gboolean ok = st_db_check (db, report, &error);
  g_print ("%s", report->str);
  return ok ? 0 : st_cli_fail (error);
}

static void
st_print_operator (StDbOperator *op)
{
  g_autofree gchar *created = st_time_iso8601_from_unix (op->created_at);
  g_print ("%-20s %-9s %-7s %8" G_GINT64_FORMAT "  %s\n", op->name, op->role,
           op->locked ? "LOCKED" : "ok", op->failed_attempts, created);
}

static int
cmd_operator (StCli *cli, int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  const char *sub = st_cli_take_sub (&argc, &argv);
  g_autofree gchar *role_arg = NULL;
  const GOptionEntry entries[] = {
    { "role", 0, 0, G_OPTION_ARG_STRING, &role_arg, "operator, lead, qa or admin", "ROLE" },
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
      g_printerr ("station: usage: operator add NAME --role ROLE | operator list | "
                  "operator unlock NAME | operator set-role NAME --role ROLE\n");
      return 2;
    }
  StRole role = 0;
  if ((is_add || is_role) && !st_role_from_string (role_arg, &role, &error))
    return st_cli_fail (error);
  StConfig *config = NULL;
  StDb *db = NULL;
  if (!st_cli_open (cli, &config, &db, &error))
    return st_cli_fail (error);

  if (is_add)
    {
      gint64 n = st_db_operator_count (db, &error);
      if (n < 0)
        return st_cli_fail (error);
      /* The very first operator is made without a login, and is an admin. */
      if (n > 0 && !st_cli_login (cli, db, ST_ROLE_ADMIN, "adding an operator", &error))
        return st_cli_fail (error);
      /* The new PIN: STATION_NEW_OPERATOR_PIN, else (for the first operator,
       * nobody logs in) STATION_OPERATOR_PIN, else a prompt. */
      g_autofree gchar *prompt = g_strdup_printf ("New PIN for operator %s: ", name);
      gchar *pin = g_getenv ("STATION_NEW_OPERATOR_PIN") != NULL || n > 0
                   ? st_read_secret (prompt, "STATION_NEW_OPERATOR_PIN", ST_AUTH_PIN_MAX, &error)
                   : st_auth_read_pin (prompt, &error);
      if (pin == NULL)
        return st_cli_fail (error);
      gboolean ok = st_auth_add_operator (db, cli->session, name, role, pin, &error);
      st_secret_free (pin);
      if (!ok)
        return st_cli_fail (error);
      g_print ("operator %s added as %s%s\n", name, st_role_to_string (role),
               n == 0 ? " (the station's first operator)" : "");
      return 0;
    }
  if (!st_cli_login (cli, db, ST_ROLE_ADMIN, is_list ? "listing the operators"
                     : is_unlock ? "unlocking an operator" : "changing an operator's role", &error))
    return st_cli_fail (error);
  if (is_list)
    {
      g_autoptr(GPtrArray) ops = st_db_operator_list (db, &error);
      if (ops == NULL)
        return st_cli_fail (error);
      g_print ("%-20s %-9s %-7s %8s  %s\n", "name", "role", "state", "failures", "created");
      for (guint i = 0; i < ops->len; i++)
        st_print_operator (g_ptr_array_index (ops, i));
      return 0;
    }
  if (is_unlock)
    {
      if (!st_db_operator_unlock (db, name, st_cli_operator (cli), &error))
        return st_cli_fail (error);
      g_print ("operator %s unlocked\n", name);
      return 0;
    }
  if (!st_db_operator_set_role (db, name, st_role_to_string (role), st_cli_operator (cli), &error))
    return st_cli_fail (error);
  g_print ("operator %s is now %s\n", name, st_role_to_string (role));
  return 0;
}

static int
cmd_audit (StCli *cli, int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  const char *sub = st_cli_take_sub (&argc, &argv);
  g_autofree gchar *out = NULL, *root_path = NULL;
  const GOptionEntry entries[] = {
    { "out", 0, 0, G_OPTION_ARG_FILENAME, &out, "File to write the log into (JSON lines)", "FILE" },
    { "root", 0, 0, G_OPTION_ARG_FILENAME, &root_path, "Trusted root certificate (default: the station's)", "FILE" },
    { NULL }
  };
  if (!st_cli_parse (cli, "audit verify|export", entries, &argc, &argv, &error))
    return st_cli_fail (error);
  gboolean is_verify = g_strcmp0 (sub, "verify") == 0, is_export = g_strcmp0 (sub, "export") == 0;
  if ((!is_verify && !is_export) || (is_export && out == NULL))
    {
      g_printerr ("station: usage: audit verify [--root FILE] | audit export --out FILE\n");
      return 2;
    }
  StConfig *config = NULL;
  StDb *db = NULL;
  if (!st_cli_open (cli, &config, &db, &error))
    return st_cli_fail (error);
  if (is_export)
    {
      if (!st_cli_login (cli, db, ST_ROLE_QA | ST_ROLE_ADMIN, "exporting the audit log", &error))
        return st_cli_fail (error);
      g_autofree gchar *payload = st_cli_payload ("out", out, NULL);
      if (!st_db_audit_add (db, st_cli_operator (cli), "audit-export", payload, &error))
        return st_cli_fail (error);
      gint64 n = 0;
      if (!st_audit_export (db, out, &n, &error))
        return st_cli_fail (error);
      g_print ("%" G_GINT64_FORMAT " audit entries and their checkpoints written to %s\n", n, out);
      return 0;
    }
  if (!st_cli_login (cli, db, ST_ROLE_QA | ST_ROLE_LEAD | ST_ROLE_ADMIN, "verifying the audit log", &error))
    return st_cli_fail (error);
  g_autoptr(X509) root = st_cli_load_root (root_path != NULL ? root_path : config->root_file, &error);
  if (root == NULL)
    return st_cli_fail (error);
  g_autoptr(StX509Stack) chain = st_chain_load_pem (config->chain_file, &error);
  if (chain == NULL)
    return st_cli_fail (error);
  g_autoptr(GString) report = g_string_new (NULL);
  gboolean ok = st_audit_verify (db, root, chain, report, &error);
  g_print ("%s%s\n", report->str, ok ? "audit log verified" : "AUDIT LOG REJECTED");
  return ok ? 0 : st_cli_fail (error);
}

static int
cmd_bench (StCli *cli, int argc, char **argv)
{
  gint units = 1000, slots = 4;
  const GOptionEntry entries[] = {
    { "units", 0, 0, G_OPTION_ARG_INT, &units, "Units end to end (default 1000)", "N" },
    { "slots", 0, 0, G_OPTION_ARG_INT, &slots, "Simulated sockets at once (default 4)", "K" },
    { NULL }
  };
  g_autoptr(GError) error = NULL;
  if (!st_cli_parse (cli, "bench", entries, &argc, &argv, &error))
    return st_cli_fail (error);
  if (units <= 0 || slots <= 0 || slots > 64)
    {
      g_printerr ("station: bench needs --units >= 1 and --slots 1..64\n");
      return 2;
    }
  StConfig *config = NULL;
  StDb *db = NULL;
  if (!st_cli_open (cli, &config, &db, &error))
    return st_cli_fail (error);
  {
    /* The bench signs with the station's CA key (into a scratch database):
     * an admin's job; on a demo home it logs in as the demo admin. */
    gboolean ok = config->demo && st_cli_operator_arg (cli) == NULL
                  ? st_cli_demo_login (cli, db, ST_ROLE_ADMIN, &error)
                  : st_cli_login (cli, db, ST_ROLE_ADMIN, "bench", &error);
    if (!ok)
      return st_cli_fail (error);
    g_autofree gchar *payload = g_strdup_printf ("{\"units\":%d,\"slots\":%d}", units, slots);
    if (!st_db_audit_add (db, st_cli_operator (cli), "bench", payload, &error))
      return st_cli_fail (error);
  }
  StCa *ca = st_cli_open_ca (cli, &error);
  if (ca == NULL)
    return st_cli_fail (error);
  g_autofree gchar *token = st_hsm_get_token_description (ca->hsm);
  g_print ("bench: %d units on %d simulated sockets, HSM %s\n", units, slots, token);
  StBenchResult r;
  if (!st_bench_run (config, ca, (guint) units, (guint) slots, NULL, &r, &error))
    return st_cli_fail (error);
  g_print ("raw issuance (build, sign in the HSM, verify, lint): %u certificates in %.2f s = %.1f /s\n"
           "  (half before the end-to-end run, half after it)\n"
           "  CPU: %.3f ms per certificate, one thread\n",
           r.raw_count, r.raw_seconds, r.raw_per_s, 1e3 * r.raw_cpu_seconds / MAX (r.raw_count, 1));
  g_print ("end to end (KEYGEN, CSR check, durable records, sign, write, proof, read-back, commit):\n"
           "  %u units on %u sockets in %.2f s = %.1f units/s\n", r.passed, r.slots, r.e2e_seconds,
           r.e2e_units_per_s);
  g_print ("  database: %" G_GUINT64_FORMAT " durable writes in %" G_GUINT64_FORMAT " commits (fsync'ed)\n",
           r.db_writes, r.db_commits);
  guint n = MAX (r.passed + r.failed, 1);
  g_print ("  simulated devices: their %u key pairs and CSRs made before the clock started\n"
           "    (%.2f s; a real device makes them on its own processor)\n",
           r.units - r.premade_left, r.premade_seconds);
  g_print ("  CPU: %.2f s on %u cores = %.3f ms per unit (the station's own: %.3f ms), of which\n"
           "       %.2f s (%.0f%%) the simulated devices' own work in the run (proofs of\n"
           "       possession, and keys they made then: a real device does it on its own processor)\n",
           r.e2e_cpu_seconds, g_get_num_processors (), 1e3 * r.e2e_cpu_seconds / n,
           1e3 * (r.e2e_cpu_seconds - r.device_cpu_seconds) / n, r.device_cpu_seconds,
           100.0 * r.device_cpu_seconds / MAX (r.e2e_cpu_seconds, 1e-9));
  g_print ("ratio end-to-end / raw issuance: %.2f\n", r.e2e_units_per_s / MAX (r.raw_per_s, 1e-9));
  return 0;
}


/* ---- demo ---------------------------------------------------------------- */

static gchar *
st_cli_find_devsim (void)
{
  const char *env = g_getenv ("ST_DEVSIM");
  if (env != NULL)
    return g_strdup (env);
  g_autofree gchar *self = g_file_read_link ("/proc/self/exe", NULL);
  if (self != NULL)
    {
      g_autofree gchar *dir = g_path_get_dirname (self);
      const char *candidates[] = { "station-devsim", "../programmer/devsim/station-devsim" };
      for (guint i = 0; i < G_N_ELEMENTS (candidates); i++)
        {
          g_autofree gchar *path = g_build_filename (dir, candidates[i], NULL);
          if (g_file_test (path, G_FILE_TEST_IS_EXECUTABLE))
            return g_canonicalize_filename (path, NULL);
        }
    }
  return g_find_program_in_path ("station-devsim");
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
      g_prefix_error (error, "cannot start the device simulator %s: ", devsim);
      return NULL;
    }
  g_ptr_array_add (procs, proc);
  g_autoptr(GDataInputStream) in = g_data_input_stream_new (g_subprocess_get_stdout_pipe (proc));
  gchar *line = g_data_input_stream_read_line (in, NULL, NULL, error);
  if (line == NULL)
    {
      if (error != NULL && *error == NULL)
        g_set_error (error, ST_ERROR, ST_ERROR_READ, "the device simulator printed no port");
      return NULL;
    }
  return line;
}

static void
st_cli_stop_devsims (GPtrArray *procs)
{
  for (guint i = 0; i < procs->len; i++)
    {
      GSubprocess *proc = g_ptr_array_index (procs, i);
      g_subprocess_send_signal (proc, SIGTERM);
      g_subprocess_wait (proc, NULL, NULL);
    }
}

static int
st_cli_demo (StCli *cli, int argc, char **argv)
{
  gint n_ports = 3, units = 4;
  g_autofree gchar *profile_arg = NULL;
  const GOptionEntry entries[] = {
    { "ports", 0, 0, G_OPTION_ARG_INT, &n_ports, "Simulated sockets (default 3)", "N" },
    { "units", 0, 0, G_OPTION_ARG_INT, &units, "Devices per socket (default 4)", "N" },
    { "profile", 0, 0, G_OPTION_ARG_FILENAME, &profile_arg, "Product profile (default: the device-csr example)", "FILE" },
    { NULL }
  };
  g_autoptr(GError) error = NULL;
  if (!st_cli_parse (cli, "demo", entries, &argc, &argv, &error))
    return st_cli_fail (error);
  if (n_ports < 1 || n_ports > 16 || units < 1 || units > 1000)
    {
      g_printerr ("station: demo takes --ports 1..16 and --units 1..1000\n");
      return 2;
    }
  const char *home = st_cli_home (cli);
  g_print ("== 1. Demo station in %s (SoftHSM2 token, demo root and issuing CA)\n", home);
  gchar *pin = st_hsm_read_pin ("PIN for the demo token: ", &error);
  if (pin == NULL)
    return st_cli_fail (error);
  /* Kept by @cli to the end, where the closing audit checkpoint uses them. */
  StConfig *config = NULL;
  StDb *db = NULL;
  StCa *ca = NULL;
  if (st_setup_demo (home, pin, &error) && st_cli_open (cli, &config, &db, &error))
    ca = cli->ca = st_ca_open (config, pin, &error);
  st_hsm_pin_free (pin);
  if (ca == NULL)
    return st_cli_fail (error);
  /* the shift lead opens the batch */
  if (!st_cli_demo_login (cli, db, ST_ROLE_LEAD, &error))
    return st_cli_fail (error);

  g_autofree gchar *devsim = st_cli_find_devsim ();
  if (devsim == NULL)
    {
      g_printerr ("station: cannot find station-devsim (set ST_DEVSIM to its path)\n");
      return 2;
    }
  g_print ("== 2. %d simulated devices on each of %d pseudo-terminals\n", units, n_ports);
  g_autoptr(GPtrArray) procs = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GPtrArray) ports = g_ptr_array_new_with_free_func (g_free);
  guint32 seed_base = g_random_int ();
  for (gint i = 0; i < n_ports; i++)
    {
      gchar *port = st_cli_start_devsim (devsim, (guint) units, seed_base + (guint32) i * 7919u, procs, &error);
      if (port == NULL)
        {
          st_cli_stop_devsims (procs);
          return st_cli_fail (error);
        }
      g_print ("   socket %d: %s\n", i + 1, port);
      g_ptr_array_add (ports, port);
    }
  g_ptr_array_add (ports, NULL);

  g_autofree gchar *profile_path = profile_arg != NULL ? g_strdup (profile_arg)
                                                        : st_cli_find_profile ("example-device-csr.profile");
  g_autoptr(StProfile) profile = st_profile_load (profile_path, &error);
  if (profile == NULL)
    {
      st_cli_stop_devsims (procs);
      return st_cli_fail (error);
    }
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  g_autofree gchar *wo = g_date_time_format (now, "DEMO-%Y%m%d-%H%M%S");
  gint64 batch_id = st_db_batch_create (db, wo, profile->name, profile->sha256, profile->text,
                                        (gint64) n_ports * units, config->station_id,
                                        st_cli_operator (cli), &error);
  if (batch_id <= 0)
    {
      st_cli_stop_devsims (procs);
      return st_cli_fail (error);
    }
  g_print ("== 3. Batch %" G_GINT64_FORMAT ": work order %s, %d x %s (created by %s)\n", batch_id, wo,
           n_ports * units, profile->name, st_cli_operator (cli));
  /* the line operator runs it */
  if (!st_cli_demo_login (cli, db, ST_ROLE_OPERATOR, &error))
    {
      st_cli_stop_devsims (procs);
      return st_cli_fail (error);
    }
  StBatchRunSummary summary;
  int rc = st_cli_run_line (config, ca, db, batch_id, st_cli_operator (cli),
                            (const char *const *) ports->pdata, (guint) units, 30, FALSE, &summary);
  st_cli_stop_devsims (procs);
  if (rc == 2)
    return rc;

  /* the shift lead closes it and exports the manifest */
  if (!st_cli_demo_login (cli, db, ST_ROLE_LEAD, &error))
    return st_cli_fail (error);
  if (!st_db_batch_close (db, batch_id, st_cli_operator (cli), &error)
      || !st_audit_checkpoint (db, ca, "batch-close", &error))
    return st_cli_fail (error);
  g_autofree gchar *bdir = g_strdup_printf ("batch-%" G_GINT64_FORMAT, batch_id);
  g_autofree gchar *out = g_build_filename (home, "manifests", bdir, NULL);
  g_print ("== 4. Batch closed; signed manifest exported to %s\n", out);
  if (!st_manifest_export (db, ca, config->station_id, batch_id, out, &error))
    return st_cli_fail (error);
  {
    g_autofree gchar *id_s = g_strdup_printf ("%" G_GINT64_FORMAT, batch_id);
    g_autofree gchar *payload = st_cli_payload ("batch", id_s, "out", out, NULL);
    if (!st_db_event_add (db, st_cli_operator (cli), "manifest-export", payload, &error))
      return st_cli_fail (error);
  }

  g_print ("== 5. QA verifies the manifest against the demo root, and the audit log\n");
  if (!st_cli_demo_login (cli, db, ST_ROLE_QA, &error))
    return st_cli_fail (error);
  g_autoptr(X509) root = st_cli_load_root (config->root_file, &error);
  if (root == NULL)
    return st_cli_fail (error);
  g_autoptr(GString) report = g_string_new (NULL);
  gboolean verified = st_manifest_verify (out, root, report, &error);
  g_print ("%s", report->str);
  if (!verified)
    return st_cli_fail (error);
  g_autoptr(GString) audit_report = g_string_new (NULL);
  gboolean audited = st_audit_verify (db, root, ca->chain, audit_report, &error);
  g_print ("%s", audit_report->str);
  if (!audited)
    return st_cli_fail (error);

  g_print ("\n== Done: %u of %d units provisioned.\n"
           "   database        %s\n"
           "   manifest        %s/manifest.json (+ .csv, .p7s, ca-chain.pem)\n"
           "   demo root CA    %s\n"
           "   check it with stock tools:\n"
           "     openssl cms -verify -binary -inform DER -in %s/manifest.json.p7s \\\n"
           "       -content %s/manifest.json -CAfile %s -out /dev/null\n"
           "     STATION_OPERATOR_PIN=3333 station --home %s --operator qa audit verify\n"
           "     STATION_OPERATOR_PIN=2222 station --home %s --operator lead batch show %" G_GINT64_FORMAT "\n",
           summary.passed, n_ports * units, config->db_path, out, config->root_file, out, out,
           config->root_file, home, home, batch_id);
  return rc;
}

int
main (int argc, char **argv)
{
  st_process_setup ();
  setlocale (LC_ALL, "");
  StCli cli = { .argv0 = argv[0] };
  gboolean version = FALSE;
  const GOptionEntry entries[] = {
    { "home", 0, 0, G_OPTION_ARG_FILENAME, &cli.home, "Station home folder", "DIR" },
    { "operator", 0, 0, G_OPTION_ARG_STRING, &cli.operator_name, "Who does this (default: login name)", "NAME" },
    { "version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new ("COMMAND [ARGS] - offline device provisioning station");
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
      return 2;
    }
  const char *command = argv[1];
  int rc;
  if (g_strcmp0 (command, "setup") == 0)
    rc = cmd_setup (&cli, argc - 1, argv + 1);
  else if (g_strcmp0 (command, "batch") == 0)
    rc = cmd_batch (&cli, argc - 1, argv + 1);
  else if (g_strcmp0 (command, "manifest") == 0)
    rc = cmd_manifest (&cli, argc - 1, argv + 1);
  else if (g_strcmp0 (command, "unit") == 0)
    rc = cmd_unit (&cli, argc - 1, argv + 1);
  else if (g_strcmp0 (command, "db") == 0)
    rc = cmd_db (&cli, argc - 1, argv + 1);
  else if (g_strcmp0 (command, "bench") == 0)
    rc = cmd_bench (&cli, argc - 1, argv + 1);
  else if (g_strcmp0 (command, "operator") == 0)
    rc = cmd_operator (&cli, argc - 1, argv + 1);
  else if (g_strcmp0 (command, "audit") == 0)
    rc = cmd_audit (&cli, argc - 1, argv + 1);
  else if (g_strcmp0 (command, "demo") == 0)
    rc = st_cli_demo (&cli, argc - 1, argv + 1);
  else
    {
      g_printerr ("station: unknown command '%s'\n%s", command, st_usage);
      rc = 2;
    }
  /* A command that ended normally leaves the audit log checkpointed. */
  if (rc == 0)
    st_audit_checkpoint_at_exit (st_cli_home (&cli), cli.config, cli.db, cli.ca);
  g_clear_pointer (&cli.ca, st_ca_free);
  g_clear_pointer (&cli.db, st_db_close);
  g_clear_pointer (&cli.config, st_config_free);
  st_auth_session_free (cli.session);
  g_free (cli.home);
  g_free (cli.operator_name);
  return rc;
}
