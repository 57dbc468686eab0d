/* Device side of the agent protocol (docs/agent-protocol.md).
 *
 * Portable C99, no heap, no OS calls: a firmware drops st-agent.c and
 * st-frame.c in, fills an StAgentHooks with its storage, crypto and UART
 * output, calls st_agent_init() once and st_agent_receive() with every byte
 * received. All state lives in the StAgent struct, in fixed-size arrays
 * whose sizes are the compile-time macros below. */
#ifndef ST_AGENT_H
#define ST_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include "st-frame.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Capacities; define them before including this header to change them. */
#ifndef ST_AGENT_SLOT1_MAX
#define ST_AGENT_SLOT1_MAX 2048        /* device certificate */
#endif
#ifndef ST_AGENT_SLOT2_MAX
#define ST_AGENT_SLOT2_MAX 4096        /* CA chain */
#endif
/* Extension matter-1: Certification Declaration and commissioning data. */
#ifndef ST_AGENT_SLOT3_MAX
#define ST_AGENT_SLOT3_MAX 4096        /* Matter Certification Declaration */
#endif
#ifndef ST_AGENT_SLOT4_MAX
#define ST_AGENT_SLOT4_MAX 256         /* Matter commissioning data record (at most 186 bytes) */
#endif
#ifndef ST_AGENT_KEY_MAX
#define ST_AGENT_KEY_MAX 512           /* staged PKCS#8 private key */
#endif
#ifndef ST_AGENT_MAX_PAYLOAD
#define ST_AGENT_MAX_PAYLOAD 2048      /* largest request payload accepted, 256..2048 */
#endif

#if ST_AGENT_MAX_PAYLOAD < 256 || ST_AGENT_MAX_PAYLOAD > ST_FRAME_MAX_PAYLOAD
#error "ST_AGENT_MAX_PAYLOAD must be 256..2048"
#endif
#if ST_AGENT_SLOT1_MAX > 65535 || ST_AGENT_SLOT2_MAX > 65535 || ST_AGENT_KEY_MAX > 65535 \
    || ST_AGENT_SLOT3_MAX > 65535 || ST_AGENT_SLOT4_MAX > 65535
#error "slot and key capacities must fit in u16"
#endif

/* Largest response: also bounded by ST_AGENT_MAX_PAYLOAD. */
#define ST_AGENT_WIRE_MAX ((6 + ST_AGENT_MAX_PAYLOAD + 4) + (6 + ST_AGENT_MAX_PAYLOAD + 4) / 254 + 2)

/* Opcodes; a response carries op | ST_AGENT_OP_RESPONSE. */
#define ST_AGENT_OP_HELLO 0x01
#define ST_AGENT_OP_KEYGEN 0x02
#define ST_AGENT_OP_PUT_KEY 0x03
#define ST_AGENT_OP_WRITE 0x04
#define ST_AGENT_OP_READ 0x05
#define ST_AGENT_OP_SIGN 0x06
#define ST_AGENT_OP_COMMIT 0x07
#define ST_AGENT_OP_ABORT 0x08
#define ST_AGENT_OP_RESPONSE 0x80

/* Status codes (first payload byte of a response). */
#define ST_AGENT_RC_OK 0x00
#define ST_AGENT_RC_BAD_REQUEST 0x01
#define ST_AGENT_RC_UNKNOWN_OP 0x02
#define ST_AGENT_RC_BAD_STATE 0x03
#define ST_AGENT_RC_LOCKED 0x04
#define ST_AGENT_RC_UNSUPPORTED 0x05
#define ST_AGENT_RC_STORAGE 0x06
#define ST_AGENT_RC_TOO_LARGE 0x07
#define ST_AGENT_RC_INTERNAL 0x08

/* HELLO TLV types. */
#define ST_AGENT_TLV_UID 0x01
#define ST_AGENT_TLV_MODEL 0x02
#define ST_AGENT_TLV_FW_VERSION 0x03
#define ST_AGENT_TLV_ALGORITHMS 0x04
#define ST_AGENT_TLV_STATE 0x05
#define ST_AGENT_TLV_MAX_PAYLOAD 0x06
#define ST_AGENT_TLV_EXTENSIONS 0x07   /* 1..4 bytes, little-endian bit set */

/* Extension bits of HELLO TLV 0x07. */
#define ST_AGENT_EXT_MATTER_1 0x01u    /* slots 3 (Matter CD) and 4 (commissioning data) */

/* Device states as HELLO reports them. */
#define ST_AGENT_STATE_BLANK 0
#define ST_AGENT_STATE_KEY_PRESENT 1
#define ST_AGENT_STATE_PROVISIONED 2
#define ST_AGENT_STATE_LOCKED 3

#define ST_AGENT_SIGN_PREFIX "PROVISION-POP-V1"
#define ST_AGENT_SIGN_PREFIX_LEN 16
#define ST_AGENT_CHALLENGE_LEN 32

/* What HELLO reports. */
typedef struct {
  uint8_t uid[32];
  uint8_t uid_len;          /* 1..32 */
  char model[65];           /* NUL-terminated, 1..64 bytes */
  char fw_version[33];      /* NUL-terminated, "" to leave the TLV out */
  uint8_t algorithms;       /* bit 0 P-256, bit 1 P-384, bit 2 Ed25519 */
  /* Extensions announced in HELLO TLV 0x07 (ST_AGENT_EXT_*); 0 leaves the
   * TLV out and the agent behaves as a version 1 device exactly. Only
   * extensions this agent implements are kept (st_agent_init()). */
  uint32_t extensions;
} StAgentInfo;

/* Storage and crypto of the device. The key material never passes through
 * the agent except for PUT_KEY's staged PKCS#8 (wiped after the hook). The
 * hooks own two keys: the committed one and at most one uncommitted one; the
 * "current" key is the uncommitted one when present, else the committed one.
 * Status-returning hooks answer one of ST_AGENT_RC_*. */
typedef struct {
  void *user_data;
  /* Sends @len wire bytes (one whole response frame). Required. */
  void (*output) (void *user_data, const uint8_t *data, size_t len);
  /* Makes a fresh key pair of @alg (1..3, one the device supports) as the
   * uncommitted key, replacing any, and writes a DER PKCS#10 CSR signed with
   * it into @csr (at most @csr_max bytes), its size in *@csr_len. On
   * failure the uncommitted key must be gone. */
  uint8_t (*keygen) (void *user_data, uint8_t alg, uint8_t *csr, size_t csr_max,
                     size_t *csr_len);
  /* Installs the DER PKCS#8 key @der (of algorithm @alg) as the uncommitted
   * key. BAD_REQUEST when it does not parse or is not of @alg; on failure the
   * previous uncommitted key stays. */
  uint8_t (*put_key) (void *user_data, uint8_t alg, const uint8_t *der, size_t len);
  /* Signs @msg with the current key into @sig (at most @sig_max bytes). */
  uint8_t (*sign) (void *user_data, const uint8_t *msg, size_t msg_len, uint8_t *sig,
                   size_t sig_max, size_t *sig_len);
  /* Stores the current key, @slot1 and @slot2 as the committed state, with
   * the lock flag, atomically: on failure (STORAGE) the old committed state
   * is untouched. */
  uint8_t (*commit) (void *user_data, const uint8_t *slot1, size_t len1,
                     const uint8_t *slot2, size_t len2, int lock);
  /* Discards the uncommitted key (ABORT). */
  void (*abort) (void *user_data);
  /* Copies the committed slots into @slot1/@slot2 (capacities
   * ST_AGENT_SLOT1_MAX/ST_AGENT_SLOT2_MAX), sets their sizes, whether a
   * committed key exists and the lock flag. Called by st_agent_init() and
   * whenever uncommitted slot contents are discarded. 0 ok, -1 storage
   * failure. Optional: without it the device starts blank. */
  int (*load) (void *user_data, uint8_t *slot1, size_t *len1, uint8_t *slot2,
               size_t *len2, int *has_key, int *locked);
  /* Extension matter-1, required when info.extensions has
   * ST_AGENT_EXT_MATTER_1 (commit and load are then not called and may be
   * NULL): as commit and load, with slot 3 (Certification Declaration,
   * capacity ST_AGENT_SLOT3_MAX) and slot 4 (commissioning data, capacity
   * ST_AGENT_SLOT4_MAX) stored in the same atomic step. */
  uint8_t (*commit_matter) (void *user_data, const uint8_t *slot1, size_t len1,
                            const uint8_t *slot2, size_t len2, const uint8_t *slot3,
                            size_t len3, const uint8_t *slot4, size_t len4, int lock);
  int (*load_matter) (void *user_data, uint8_t *slot1, size_t *len1, uint8_t *slot2,
                      size_t *len2, uint8_t *slot3, size_t *len3, uint8_t *slot4,
                      size_t *len4, int *has_key, int *locked);
  /* Optional: told about every valid request before it is handled;
   * @replayed is 1 when the stored response is sent again. */
  void (*observe) (void *user_data, const StFrame *request, int replayed);
} StAgentHooks;

/* A chunked transfer in progress (PUT_KEY, WRITE). */
typedef struct {
  uint16_t total;
  uint16_t received;
  int active;
} StAgentXfer;

typedef struct {
  StAgentHooks hooks;
  StAgentInfo info;
  StFrameRx rx;
  uint8_t body[ST_FRAME_MAX_BODY];          /* the request being handled */
  uint8_t last_req[ST_FRAME_MAX_BODY];      /* last executed request body */
  size_t last_req_len;                      /* 0: none */
  uint8_t last_resp[ST_AGENT_WIRE_MAX];     /* its response, on the wire */
  size_t last_resp_len;
  uint8_t scratch[ST_AGENT_MAX_PAYLOAD];    /* result being built */
  uint8_t staged_key[ST_AGENT_KEY_MAX];
  StAgentXfer key_xfer;
  uint8_t key_alg;
  uint8_t slot1[ST_AGENT_SLOT1_MAX];
  size_t slot1_len;
  StAgentXfer slot1_xfer;
  uint8_t slot2[ST_AGENT_SLOT2_MAX];
  size_t slot2_len;
  StAgentXfer slot2_xfer;
  uint8_t slot3[ST_AGENT_SLOT3_MAX];        /* matter-1 only */
  size_t slot3_len;
  StAgentXfer slot3_xfer;
  uint8_t slot4[ST_AGENT_SLOT4_MAX];        /* matter-1 only */
  size_t slot4_len;
  StAgentXfer slot4_xfer;
  int committed_key;                        /* a committed key exists */
  int pending_key;                          /* an uncommitted key exists */
  int locked;
  int storage_ok;                           /* load succeeded */
} StAgent;

/* Sets up @agent (all state in it) and loads the committed state. Returns 0,
 * or -1 when the hooks are incomplete or the storage could not be loaded (the
 * agent then answers HELLO and STORAGE to everything else). */
int st_agent_init (StAgent *agent, const StAgentInfo *info, const StAgentHooks *hooks);
/* Feeds bytes received from the station; responses go out via hooks.output. */
void st_agent_receive (StAgent *agent, const uint8_t *data, size_t len);
/* The state HELLO would report (ST_AGENT_STATE_*). */
uint8_t st_agent_get_state (const StAgent *agent);
/* Wipes the staged key and forgets everything (call before freeing). */
void st_agent_clear (StAgent *agent);

#ifdef __cplusplus
}
#endif

#endif /* ST_AGENT_H */
