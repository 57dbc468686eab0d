/* A simulated device running the agent protocol with real crypto
 * (OpenSSL), for the `sim:` backend and the station-devsim executable.
 *
 * A socket presents devices one after another: a unit is finished once its
 * device executed a successful COMMIT or an ABORT, or it was presented
 * already locked and answered a HELLO; the HELLO that follows a finished unit
 * is still answered by the old device; after it the socket is empty for
 * swap_delay_ms, then the next device (fresh uid) answers. After @units
 * devices the socket stays empty. One exception models the operator, who
 * swaps a device only once the station has shown its result: when that HELLO
 * is the first request after the station opened the port afresh (its lone
 * 0x00), the station restarted and showed nothing, so the device stays and
 * the swap waits for the next such HELLO. Protocol handling is the portable device
 * core of programmer/agent/; this library supplies its hooks. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {  /* fault switches; tests combine them */
  ST_SIM_FAULT_NONE = 0,
  ST_SIM_FAULT_NOISE = 1 << 0,          /* random garbage bytes injected between responses + occasional bit flips in responses (seeded) */
  ST_SIM_FAULT_DROP = 1 << 1,           /* drop some responses (seeded, e.g. 1 in 4); the retried identical request must be answered from the stored response */
  ST_SIM_FAULT_BAD_CSR_SIG = 1 << 2,    /* CSR signature broken */
  ST_SIM_FAULT_CSR_TRAILING = 1 << 3,   /* extra bytes after the CSR DER */
  ST_SIM_FAULT_WRONG_CURVE = 1 << 4,    /* key on another curve than asked (e.g. secp256k1 for P-256) */
  ST_SIM_FAULT_CSR_GREEDY = 1 << 5,     /* CSR asks for CA:TRUE, extra SANs, its own subject */
  ST_SIM_FAULT_POP_OTHER_KEY = 1 << 6,  /* SIGN uses another key */
  ST_SIM_FAULT_READBACK_DIFFERS = 1 << 7, /* READ returns one flipped byte */
  ST_SIM_FAULT_COMMIT_STORAGE = 1 << 8, /* COMMIT answers STORAGE */
  ST_SIM_FAULT_LOCKED = 1 << 9,         /* every device starts already locked (state 3) with a cert */
  ST_SIM_FAULT_GARBAGE = 1 << 10,       /* answers every request with an endless stream of non-zero garbage (no delimiters) */
  ST_SIM_FAULT_UNPLUG_WRITE = 1 << 11,  /* goes silent in the middle of the first WRITE of slot 1 (then the next device appears after the swap delay) */
  /* Executes its first successful COMMIT (the credentials are stored, as on
   * a device that lost power right after writing them) but sends no answer,
   * and leaves the socket: the operator pulled it. Retries and HELLOs go
   * unanswered; after the swap delay the next device appears (none after
   * the last of @units). The device stays in the state file as committed:
   * `--state FILE --present N` puts it back in a later run. */
  ST_SIM_FAULT_SILENT_AFTER_COMMIT = 1 << 12,
  /* Executes its first successful COMMIT and answers it OK, then is pulled
   * before the station's confirming HELLO: that HELLO and its retries go
   * unanswered (the next device, if any, appears after the swap delay).
   * Kept in the state file as committed, like silent-after-commit. */
  ST_SIM_FAULT_SILENT_AT_CONFIRM = 1 << 13,
  /* A READ of slot 4 (matter-1's commissioning data) returns one flipped
   * byte: the Matter read-back tests; slots 1 to 3 read right. */
  ST_SIM_FAULT_MATTER_DATA_DIFFERS = 1 << 14,
} StSimFault;

typedef struct {
  guint units;              /* devices presented one after another; 0 = unlimited */
  guint32 seed;             /* uids and fault randomness derive from it; different seeds give different uids */
  const char *model;        /* default "SIM-DEV-1" */
  guint8 algorithms;        /* default 0x07 */
  guint32 faults;           /* StSimFault bits, applying to every device (or see fault_unit) */
  guint fault_unit;         /* 0 = all devices; N = only the N-th device (1-based) has the faults */
  guint swap_delay_ms;      /* time after the HELLO that follows a finished unit before the next device answers; 0 = next HELLO sees it */
  const char *state_file;   /* NULL or a path: JSON (json-glib) rewritten durably after every change, listing every device presented with uid hex, state, committed cert (base64 DER), number of KEYGEN executions, number of keys made, commits; on start, an existing file is loaded so a restarted devsim presents the same current device in the same state */
  guint present;            /* 0, or N: with state_file, put device N (1-based) of the file back into the socket in its committed state, and no other device after it */
  /* An older firmware: the devices do not implement extension matter-1
   * (no HELLO TLV 0x07, UNSUPPORTED to slots 3 and 4) and report firmware
   * "devsim-1" instead of "devsim-2". */
  gboolean no_matter;
} StSimSocketConfig;

typedef struct _StSimSocket StSimSocket;

StSimSocket *st_sim_socket_new (const StSimSocketConfig *config, GError **error);
void st_sim_socket_free (StSimSocket *socket);
/* Feeds bytes the station sent; appends the bytes the device sends back
 * (possibly none) to @out. Thread-compatible (one caller per socket). @len
 * may be 0 (lets time pass: a garbage-streaming device keeps talking). */
void st_sim_socket_receive (StSimSocket *socket, const guint8 *data, gsize len, GByteArray *out);
/* For tests: how many devices have been presented, and per device (0-based
 * index) its uid hex, KEYGEN executions, committed state. Out arguments may
 * be NULL. Without a state file a socket remembers only its last 64
 * devices (an older index answers FALSE), so that a long run's memory does
 * not grow with every unit. */
guint st_sim_socket_get_n_presented (StSimSocket *socket);
/* CPU time all simulated devices of this process have spent so far in key
 * generation, CSR and proof signing (work a real device does on its own
 * processor), in nanoseconds. */
gint64 st_sim_get_crypto_cpu_ns (void);
/* Makes @count key pairs for agent algorithm @alg (1 P-256, 2 P-384,
 * 3 Ed25519) and their signed CSRs now, for later KEYGENs of any simulated
 * device of this process: each goes to one KEYGEN for @alg (not to a device
 * whose faults shape its key or request); when none is left, KEYGEN makes
 * the key then, as before. The bench makes them before its clock starts, so
 * that the measured run does not spend the station's CPU on what a real
 * device does on its own processor. Thread-safe. */
gboolean st_sim_premake_keys (guint8 alg, guint count, GError **error);
/* How many premade keys for @alg are left. */
guint st_sim_premade_count (guint8 alg);
/* Frees the premade keys not handed out. */
void st_sim_premade_clear (void);
gboolean st_sim_socket_get_device (StSimSocket *socket, guint index, gchar **uid_hex,
                                   guint *n_keygen_executed, guint *n_keys_made, guint8 *state);
/* Extension matter-1, for tests: device @index's committed slots 3 and 4
 * (NULL when empty) and how many WRITE and READ requests for a slot above
 * 2 it received (also those it refused as UNSUPPORTED). */
gboolean st_sim_socket_get_matter (StSimSocket *socket, guint index, GBytes **cd,
                                   GBytes **commissioning, guint *n_ext_slot_requests);
/* The faults by the names station-devsim takes, with one line of help
 * each; the list ends with a NULL name. */
typedef struct {
  const char *name;
  guint32 fault;
  const char *help;
} StSimFaultInfo;
const StSimFaultInfo *st_sim_fault_list (void);
/* Parses a fault name ("noise", "drop", "bad-csr-sig", ...); 0 when unknown. */
guint32 st_sim_fault_from_string (const char *name);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (StSimSocket, st_sim_socket_free)

G_END_DECLS
