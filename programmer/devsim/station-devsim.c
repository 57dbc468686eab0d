/* station-devsim: simulated provisioning devices on a pseudo-terminal.
 *
 * Prints the slave path as the first line of stdout, then serves one
 * StSimSocket on the pty master until SIGTERM/SIGINT (or, with
 * --exit-on-stdin-eof, until stdin closes). */
#include "st-simdev.h"
#include "st-simrom.h"
#include "st-error.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define ST_DEVSIM_IDLE_MS 20           /* poll period: swaps, garbage streaming */
#define ST_DEVSIM_WRITE_WAIT_MS 2000   /* how long a response may wait for the reader */

static volatile sig_atomic_t st_devsim_quit = 0;

static void
st_devsim_on_signal (int sig)
{
  st_devsim_quit = sig;
}

static gboolean
st_devsim_set_raw (int fd, GError **error)
{
  struct termios tio;
  if (tcgetattr (fd, &tio) != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL, "tcgetattr: %s", g_strerror (errno));
      return FALSE;
    }
  cfmakeraw (&tio);
  tio.c_cc[VMIN] = 1;
  tio.c_cc[VTIME] = 0;
  if (tcsetattr (fd, TCSANOW, &tio) != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL, "tcsetattr: %s", g_strerror (errno));
      return FALSE;
    }
  return TRUE;
}

/* Opens the pty pair; returns the master, the slave path in @path, and a
 * slave fd of our own in @slave_hold so the master never sees EIO while the
 * station has the port closed. */
static int
st_devsim_open_pty (gchar **path, int *slave_hold, GError **error)
{
  char name[256];
  int master = posix_openpt (O_RDWR | O_NOCTTY | O_CLOEXEC);
  int slave;

  if (master < 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL, "posix_openpt: %s", g_strerror (errno));
      return -1;
    }
  if (grantpt (master) != 0 || unlockpt (master) != 0 || ptsname_r (master, name, sizeof name) != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL, "cannot set up the pseudo-terminal: %s",
                   g_strerror (errno));
      close (master);
      return -1;
    }
  slave = open (name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0 || !st_devsim_set_raw (slave, error))
    {
      if (slave < 0)
        g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL, "cannot open %s: %s", name, g_strerror (errno));
      else
        close (slave);
      close (master);
      return -1;
    }
  if (fcntl (master, F_SETFL, fcntl (master, F_GETFL) | O_NONBLOCK) != 0)
    {
      g_set_error (error, ST_ERROR, ST_ERROR_INTERNAL, "fcntl: %s", g_strerror (errno));
      close (slave);
      close (master);
      return -1;
    }
  *path = g_strdup (name);
  *slave_hold = slave;
  return master;
}

/* Writes what it can within @wait_ms; the rest is dropped (nobody reads). */
static void
st_devsim_write (int fd, const guint8 *data, gsize len, int wait_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) wait_ms * 1000;
  gsize done = 0;
  while (done < len && !st_devsim_quit)
    {
      ssize_t n = write (fd, data + done, len - done);
      if (n > 0)
        {
          done += (gsize) n;
          continue;
        }
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno != EAGAIN && errno != EIO)
        return;
      gint64 left = (deadline - g_get_monotonic_time ()) / 1000;
      if (left <= 0)
        return;
      struct pollfd p = { .fd = fd, .events = POLLOUT };
      if (poll (&p, 1, (int) MIN (left, 50)) < 0 && errno != EINTR)
        return;
    }
}

/* "a, b, c": the fault names of a mode, for messages. */
static gchar *
st_devsim_known_faults (gboolean rom_mode)
{
  g_autoptr(GString) known = g_string_new (NULL);
  if (rom_mode)
    for (const char *const *n = st_sim_rom_fault_list (); *n != NULL; n++)
      g_string_append_printf (known, "%s%s", known->len > 0 ? ", " : "", *n);
  else
    for (const StSimFaultInfo *f = st_sim_fault_list (); f->name != NULL; f++)
      g_string_append_printf (known, "%s%s", known->len > 0 ? ", " : "", f->name);
  return g_string_free (g_steal_pointer (&known), FALSE);
}

static gboolean
st_devsim_parse_faults (gchar **names, guint32 *faults, GError **error)
{
  *faults = 0;
  for (gsize i = 0; names != NULL && names[i] != NULL; i++)
    {
      guint32 f = st_sim_fault_from_string (names[i]);
      if (f == 0)
        {
          g_autofree gchar *known = st_devsim_known_faults (FALSE);
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       "unknown fault '%s' (known: %s)", names[i], known);
          return FALSE;
        }
      *faults |= f;
    }
  return TRUE;
}

int
main (int argc, char **argv)
{
  gint units = 0;
  gint64 seed = 1;
  g_autofree gchar *model = NULL;
  g_autofree gchar *state_file = NULL;
  gint swap_delay_ms = 150;
  g_auto(GStrv) fault_names = NULL;
  gint fault_unit = 0;
  gint present = 0;
  gint algorithms = 0x07;
  g_autofree gchar *mode = NULL;
  gboolean exit_on_stdin_eof = FALSE;
  gboolean no_matter = FALSE;
  GOptionEntry entries[] = {
    { "units", 0, 0, G_OPTION_ARG_INT, &units, "Devices presented one after another (0: unlimited)", "N" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Seed of the uids and the fault randomness (0..4294967295)", "N" },
    { "model", 0, 0, G_OPTION_ARG_STRING, &model, "Model name reported by HELLO (default SIM-DEV-1)", "S" },
    { "algorithms", 0, 0, G_OPTION_ARG_INT, &algorithms, "Algorithm bits (1 P-256, 2 P-384, 4 Ed25519; default 7)", "N" },
    { "state", 0, 0, G_OPTION_ARG_FILENAME, &state_file, "JSON state file, loaded at start and rewritten after every change", "FILE" },
    { "swap-delay-ms", 0, 0, G_OPTION_ARG_INT, &swap_delay_ms, "Empty-socket time between two devices (default 150)", "N" },
    { "fault", 0, 0, G_OPTION_ARG_STRING_ARRAY, &fault_names, "Fault to inject (repeatable)", "NAME" },
    { "fault-unit", 0, 0, G_OPTION_ARG_INT, &fault_unit, "Only the N-th device (1-based) has the faults (0: all)", "N" },
    { "present", 0, 0, G_OPTION_ARG_INT, &present,
      "With --state: put device N (1-based) of the state file back into the socket as committed (a QA socket)", "N" },
    { "mode", 0, 0, G_OPTION_ARG_STRING, &mode, "Device protocol: agent (default) or stm32-rom (AN3155 bootloader)", "MODE" },
    { "no-matter", 0, 0, G_OPTION_ARG_NONE, &no_matter,
      "An older firmware: no extension matter-1 (no Matter slots 3 and 4), firmware devsim-1", NULL },
    { "exit-on-stdin-eof", 0, 0, G_OPTION_ARG_NONE, &exit_on_stdin_eof, "Exit when stdin closes", NULL },
    { NULL },
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new ("- simulated provisioning devices on a pseudo-terminal");
  g_autoptr(GError) error = NULL;
  g_autoptr(StSimSocket) sock = NULL;
  g_autoptr(GByteArray) out = g_byte_array_new ();
  g_autofree gchar *path = NULL;
  StSimSocketConfig config = { 0 };
  struct sigaction sa;
  int master, slave_hold = -1;
  guint8 buf[4096];

  g_option_context_add_main_entries (ctx, entries, NULL);
  g_autoptr(GString) help = g_string_new ("Faults (--fault NAME, agent mode):\n");
  for (const StSimFaultInfo *f = st_sim_fault_list (); f->name != NULL; f++)
    g_string_append_printf (help, "  %-19s %s\n", f->name, f->help);
  g_autofree gchar *rom_faults = st_devsim_known_faults (TRUE);
  g_string_append_printf (help, "Faults in stm32-rom mode: %s.\n", rom_faults);
  g_option_context_set_description (ctx, help->str);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      g_printerr ("station-devsim: %s\n", error->message);
      return 2;
    }
  gboolean rom_mode = g_strcmp0 (mode, "stm32-rom") == 0;
  if (mode != NULL && g_strcmp0 (mode, "agent") != 0 && !rom_mode)
    {
      g_printerr ("station-devsim: mode '%s' is not supported (agent or stm32-rom)\n", mode);
      return 2;
    }
  if (units < 0 || swap_delay_ms < 0 || fault_unit < 0 || present < 0 || seed < 0 || seed > G_MAXUINT32
      || algorithms <= 0 || algorithms > 0x07)
    {
      g_printerr ("station-devsim: --units, --swap-delay-ms, --fault-unit must be >= 0, --seed 0..4294967295, "
                  "--algorithms 1..7\n");
      return 2;
    }
  g_autoptr(StSimRom) rom = NULL;
  StSimRomConfig rom_config = { 0 };
  for (gsize i = 0; rom_mode && fault_names != NULL && fault_names[i] != NULL; i++)
    {
      guint32 f = st_sim_rom_fault_from_string (fault_names[i]);
      if (f == 0)
        {
          g_autofree gchar *known = st_devsim_known_faults (TRUE);
          g_printerr ("station-devsim: unknown stm32-rom fault '%s' (known: %s)\n", fault_names[i], known);
          return 2;
        }
      rom_config.faults |= f;
    }
  if (!rom_mode && !st_devsim_parse_faults (fault_names, &config.faults, &error))
    {
      g_printerr ("station-devsim: %s\n", error->message);
      return 2;
    }
  config.units = (guint) units;
  config.seed = (guint32) seed;
  config.model = model;
  config.algorithms = (guint8) algorithms;
  config.fault_unit = (guint) fault_unit;
  config.swap_delay_ms = (guint) swap_delay_ms;
  config.state_file = state_file;
  config.present = (guint) present;
  config.no_matter = no_matter;

  if (rom_mode)
    {
      rom_config.units = (guint) units;
      rom_config.seed = (guint32) seed;
      rom_config.fault_unit = (guint) fault_unit;
      rom_config.swap_delay_ms = (guint) swap_delay_ms;
      rom_config.state_file = state_file;
      rom_config.present = (guint) present;
      rom = st_sim_rom_new (&rom_config, &error);
    }
  else
    sock = st_sim_socket_new (&config, &error);
  if (sock == NULL && rom == NULL)
    {
      g_printerr ("station-devsim: %s\n", error->message);
      return 1;
    }

  memset (&sa, 0, sizeof sa);
  sa.sa_handler = st_devsim_on_signal;
  sigemptyset (&sa.sa_mask);
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGINT, &sa, NULL);
  signal (SIGPIPE, SIG_IGN);

  master = st_devsim_open_pty (&path, &slave_hold, &error);
  if (master < 0)
    {
      g_printerr ("station-devsim: cannot open a pseudo-terminal: %s\n", error->message);
      return 1;
    }
  printf ("%s\n", path);
  fflush (stdout);

  while (!st_devsim_quit)
    {
      struct pollfd fds[2] = {
        { .fd = master, .events = POLLIN },
        { .fd = STDIN_FILENO, .events = POLLIN },
      };
      nfds_t nfds = exit_on_stdin_eof ? 2 : 1;
      int r = poll (fds, nfds, ST_DEVSIM_IDLE_MS);
      gboolean got_input = FALSE;

      if (r < 0 && errno != EINTR)
        {
          g_printerr ("station-devsim: poll: %s\n", g_strerror (errno));
          break;
        }
      g_byte_array_set_size (out, 0);
      if (r > 0 && (fds[0].revents & POLLIN))
        {
          ssize_t n = read (master, buf, sizeof buf);
          if (n > 0)
            {
              if (rom != NULL)
                st_sim_rom_receive (rom, buf, (gsize) n, out);
              else
                st_sim_socket_receive (sock, buf, (gsize) n, out);
              got_input = TRUE;
            }
          else if (n < 0 && errno == EIO)
            g_usleep (ST_DEVSIM_IDLE_MS * 1000);   /* no slave open: wait for the station */
        }
      else if (r > 0 && (fds[0].revents & (POLLHUP | POLLERR)))
        g_usleep (ST_DEVSIM_IDLE_MS * 1000);
      if (!got_input && rom != NULL)
        st_sim_rom_receive (rom, NULL, 0, out);
      else if (!got_input)
        st_sim_socket_receive (sock, NULL, 0, out);
      if (out->len > 0)
        st_devsim_write (master, out->data, out->len, got_input ? ST_DEVSIM_WRITE_WAIT_MS : 0);

      if (exit_on_stdin_eof && r > 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)))
        {
          ssize_t n = read (STDIN_FILENO, buf, sizeof buf);
          if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
            break;
        }
    }

  close (slave_hold);
  close (master);
  return 0;
}
