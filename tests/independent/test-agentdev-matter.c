/* The station's agent backend against an independent device side of the
 * extension matter-1: tests/independent/agentdev.py, written from
 * docs/agent-protocol.md alone (own COBS, CRC-32, frames, own parser of the
 * commissioning data record), on real pseudo-terminals.
 *
 * - HELLO TLV 0x07 lands in StDeviceInfo.extensions (unknown bits kept, a
 *   TLV of 0 or 5 bytes fails the identification);
 * - slots 3 and 4: a 4096-byte Certification Declaration in the chunks the
 *   text prescribes, a record made by station/st-matter-data.c's encoder,
 *   read back, dropped by ABORT and KEYGEN, committed with the key;
 * - agentdev's parser reads every field of the station's records as the
 *   station encoded them (its state file against the encoder's input);
 * - without matter-1 the station sends nothing for slots 3 and 4 (agentdev
 *   counts the requests per slot), a device that announces it and answers
 *   UNSUPPORTED is reported as such;
 * - the text's own vectors of matter-1 (and the version 1 frames), decoded
 *   by agentdev (--self-test), and copies with one byte changed refused. */
#include <json-glib/json-glib.h>
#include <string.h>

#include "st-backend.h"
#include "st-error.h"
#include "st-matter-data.h"
#include "st-matter-spake2p.h"
#include "st-util.h"
#include "st-test-json.h"
#include "st-test-tmp.h"

typedef struct {
  GSubprocess *proc;
  gchar *port;
  gchar *state;
} StAgentDev;

static gchar *
st_agentdev_script (void)
{
  return g_build_filename (g_getenv ("ST_SOURCE_DIR"), "tests", "independent", "agentdev.py", NULL);
}

/* Starts agentdev.py with @extra arguments (NULL-terminated) and its state
 * in @dir/@name.json. */
static StAgentDev *
st_agentdev_start (const char *dir, const char *name, const char *const *extra)
{
  g_autofree gchar *script = st_agentdev_script ();
  StAgentDev *d = g_new0 (StAgentDev, 1);
  g_autofree gchar *file = g_strdup_printf ("%s.json", name);
  d->state = g_build_filename (dir, file, NULL);
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_ptr_array_add (argv, "python3");
  g_ptr_array_add (argv, script);
  g_ptr_array_add (argv, "--state");
  g_ptr_array_add (argv, d->state);
  for (guint i = 0; extra != NULL && extra[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) extra[i]);
  g_ptr_array_add (argv, NULL);
  g_autoptr(GError) error = NULL;
  d->proc = g_subprocess_newv ((const char *const *) argv->pdata,
                               G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDIN_PIPE, &error);
  g_assert_no_error (error);
  g_autoptr(GDataInputStream) in = g_data_input_stream_new (g_subprocess_get_stdout_pipe (d->proc));
  d->port = g_data_input_stream_read_line (in, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (d->port);
  g_assert_true (g_str_has_prefix (d->port, "/dev/"));
  return d;
}

/* Closes agentdev's stdin (it exits) and waits for it. */
static void
st_agentdev_stop (StAgentDev *d)
{
  g_autoptr(GError) error = NULL;
  g_output_stream_close (g_subprocess_get_stdin_pipe (d->proc), NULL, NULL);
  g_assert_true (g_subprocess_wait (d->proc, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (d->proc));
  g_assert_cmpint (g_subprocess_get_exit_status (d->proc), ==, 0);
  g_object_unref (d->proc);
  g_free (d->port);
  g_free (d->state);
  g_free (d);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (StAgentDev, st_agentdev_stop)

static StBackend *
st_open (const StAgentDev *d, StDeviceInfo *info)
{
  StLinkParams params;
  st_link_params_init_defaults (&params);
  params.timeout_ms = 2000;
  g_autoptr(GError) error = NULL;
  StBackend *b = st_backend_new (d->port, &params, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (st_backend_open (b, &error));
  g_assert_no_error (error);
  g_assert_true (st_backend_identify (b, info, &error));
  g_assert_no_error (error);
  return b;
}

/* Device @index (1-based) of agentdev's state file; the parser is returned
 * in @parser_out and owns the object. */
static JsonObject *
st_device (const StAgentDev *d, guint index, JsonParser **parser_out)
{
  JsonParser *parser = st_test_load_json (d->state);
  *parser_out = parser;
  JsonArray *devices = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)),
                                                     "devices");
  g_assert_cmpuint (json_array_get_length (devices), >=, index);
  JsonObject *dev = json_array_get_object_element (devices, index - 1);
  g_assert_cmpint (json_object_get_int_member (dev, "index"), ==, index);
  return dev;
}

/* How many @op ("write", "read") requests for @slot reached the device. */
static gint64
st_requests (JsonObject *dev, const char *op, guint slot)
{
  JsonObject *per = json_object_get_object_member (json_object_get_object_member (dev, "requests"), op);
  g_autofree gchar *key = g_strdup_printf ("%u", slot);
  return json_object_has_member (per, key) ? json_object_get_int_member (per, key) : 0;
}

static GBytes *
st_b64_member (JsonObject *o, const char *name)
{
  JsonNode *n = json_object_get_member (o, name);
  g_assert_nonnull (n);
  if (JSON_NODE_HOLDS_NULL (n))
    return NULL;
  gsize len = 0;
  guchar *data = g_base64_decode (json_node_get_string (n), &len);
  return g_bytes_new_take (data, len);
}

static void
st_assert_bytes_equal (GBytes *a, GBytes *b)
{
  g_assert_nonnull (a);
  g_assert_nonnull (b);
  gsize la = 0, lb = 0;
  const guint8 *pa = g_bytes_get_data (a, &la);
  const guint8 *pb = g_bytes_get_data (b, &lb);
  g_assert_cmpmem (pa, la, pb, lb);
}

static void
st_assert_hex (JsonObject *o, const char *name, const guint8 *data, gsize len)
{
  g_autofree gchar *hex = st_hex_encode (data, len);
  g_assert_cmpstr (json_object_get_string_member (o, name), ==, hex);
}

static void
st_write_ok (StBackend *b, StSlot slot, GBytes *data)
{
  g_autoptr(GError) error = NULL;
  g_assert_true (st_backend_write (b, slot, data, &error));
  g_assert_no_error (error);
}

static GBytes *
st_read_ok (StBackend *b, StSlot slot)
{
  g_autoptr(GError) error = NULL;
  GBytes *data = st_backend_read (b, slot, &error);
  g_assert_no_error (error);
  g_assert_nonnull (data);
  return data;
}

/* A record for the station's encoder: a real verifier of @passcode, a
 * random salt of @salt_len bytes, a random rotating id of @rdid_len bytes
 * (0: none). */
static GBytes *
st_make_record (StMatterCommissioning *c, guint16 vid, guint16 pid, guint16 disc, guint32 iterations,
                gsize salt_len, gsize rdid_len, guint32 passcode)
{
  g_autoptr(GError) error = NULL;
  memset (c, 0, sizeof *c);
  c->vendor_id = vid;
  c->product_id = pid;
  c->discriminator = disc;
  c->iterations = iterations;
  c->salt_len = salt_len;
  g_assert_true (st_matter_spake2p_salt_generate (c->salt, salt_len, &error));
  g_assert_no_error (error);
  g_assert_true (st_matter_spake2p_verifier (passcode, c->salt, salt_len, iterations, c->verifier, &error));
  g_assert_no_error (error);
  c->rdid_unique_id_len = rdid_len;
  for (gsize i = 0; i < rdid_len; i++)
    c->rdid_unique_id[i] = (guint8) g_random_int_range (0, 256);
  GBytes *record = st_matter_commissioning_encode (c, &error);
  g_assert_no_error (error);
  g_assert_nonnull (record);
  return record;
}

/* A stand-in Certification Declaration of @len bytes: the device stores
 * slot 3 as bytes, the station checks only its size at this level. */
static GBytes *
st_make_cd (gsize len)
{
  guint8 *cd = g_malloc (len);
  for (gsize i = 0; i < len; i++)
    cd[i] = (guint8) g_random_int_range (0, 256);
  cd[0] = 0x30;
  return g_bytes_new_take (cd, len);
}

/* agentdev's reading of a committed record against what was encoded. */
static void
st_assert_record_fields (JsonObject *dev, const StMatterCommissioning *c)
{
  JsonObject *rec = json_object_get_object_member (dev, "commissioning_record");
  g_assert_nonnull (rec);
  if (!json_object_get_boolean_member (rec, "parsed"))
    g_error ("agentdev refused the station's record: %s", json_object_get_string_member (rec, "error"));
  JsonObject *f = json_object_get_object_member (rec, "fields");
  g_assert_cmpint (json_object_get_int_member (f, "vendor_id"), ==, c->vendor_id);
  g_assert_cmpint (json_object_get_int_member (f, "product_id"), ==, c->product_id);
  g_assert_cmpint (json_object_get_int_member (f, "discriminator"), ==, c->discriminator);
  g_assert_cmpint (json_object_get_int_member (f, "iterations"), ==, c->iterations);
  st_assert_hex (f, "salt", c->salt, c->salt_len);
  st_assert_hex (f, "w0", c->verifier, 32);
  st_assert_hex (f, "L", c->verifier + 32, ST_MATTER_DATA_VERIFIER_LEN - 32);
  if (c->rdid_unique_id_len == 0)
    g_assert_true (JSON_NODE_HOLDS_NULL (json_object_get_member (f, "rotating_id")));
  else
    st_assert_hex (f, "rotating_id", c->rdid_unique_id, c->rdid_unique_id_len);
}

static void
test_self_test (void)
{
  /* The text's vectors, decoded by agentdev's code. */
  g_autofree gchar *script = st_agentdev_script ();
  g_autofree gchar *doc = g_build_filename (g_getenv ("ST_SOURCE_DIR"), "docs", "agent-protocol.md", NULL);
  g_autoptr(GError) error = NULL;
  g_autofree gchar *out = NULL;
  gint status = 0;
  const char *argv[] = { "python3", script, "--self-test", doc, NULL };
  g_assert_true (g_spawn_sync (NULL, (gchar **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, NULL,
                               &status, &error));
  g_assert_no_error (error);
  g_test_message ("%s", out);
  g_assert_true (g_spawn_check_wait_status (status, &error));
  g_assert_no_error (error);
  g_assert_nonnull (strstr (out, "0 failure(s)"));

  /* The self-test can fail: one byte of the WRITE vector, of the version 2
   * blob's CRC and of the version 1 ABORT frame changed in a copy of the
   * text. */
  g_autofree gchar *text = NULL;
  g_assert_true (g_file_get_contents (doc, &text, NULL, &error));
  const char *vectors[][2] = {
    { "`01 04 03 00 07 00 03 00 00 02 00 30 00 55 4b c0 68`", "`01 04 03 00 07 00 03 00 00 02 00 30 00 55 4b c0 69`" },
    { "8e 99 b9 66 ", "8e 99 b9 67 " },
    { "`04 01 08 05 01 01 05 f5 c9 30 7d 00`", "`04 01 08 05 01 01 05 f5 c9 30 7e 00`" },
  };
  g_autofree gchar *dir = st_test_tmpdir ("st-agentdev-doc");
  for (guint i = 0; i < G_N_ELEMENTS (vectors); i++)
    {
      gchar *at = strstr (text, vectors[i][0]);
      g_assert_nonnull (at);
      g_autofree gchar *head = g_strndup (text, (gsize) (at - text));
      g_autofree gchar *bad = g_strconcat (head, vectors[i][1], at + strlen (vectors[i][0]), NULL);
      g_autofree gchar *copy = g_build_filename (dir, "agent-protocol.md", NULL);
      g_assert_true (g_file_set_contents (copy, bad, -1, &error));
      const char *argv2[] = { "python3", script, "--self-test", copy, NULL };
      g_clear_pointer (&out, g_free);
      g_assert_true (g_spawn_sync (NULL, (gchar **) argv2, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, NULL,
                                   &status, &error));
      g_assert_no_error (error);
      g_assert_false (g_spawn_check_wait_status (status, NULL));
      g_assert_nonnull (strstr (out, "FAIL: "));
    }
  st_rm_rf (dir);
}

static void
test_hello (void)
{
  g_autofree gchar *dir = st_test_tmpdir ("st-agentdev-hello");
  struct {
    const char *extensions;   /* --extensions, NULL: --matter */
    gboolean ok;
    guint32 value;
  } cases[] = {
    { NULL, TRUE, ST_DEVICE_EXT_MATTER_1 },
    { "01000080", TRUE, ST_DEVICE_EXT_MATTER_1 | 0x80000000u },   /* an unknown bit, kept */
    { "0200", TRUE, 0x2 },                                         /* unknown only: no matter-1 */
    { "none", TRUE, 0 },
    { "", FALSE, 0 },                                              /* 0 bytes */
    { "0100000000", FALSE, 0 },                                    /* 5 bytes */
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_test_message ("TLV 0x07 %s", cases[i].extensions ? cases[i].extensions : "(--matter)");
      g_autofree gchar *name = g_strdup_printf ("hello%u", i);
      const char *extra_matter[] = { "--matter", NULL };
      const char *extra_ext[] = { "--matter", "--extensions", cases[i].extensions, NULL };
      g_autoptr(StAgentDev) d = st_agentdev_start (dir, name, cases[i].extensions ? extra_ext : extra_matter);
      StLinkParams params;
      st_link_params_init_defaults (&params);
      g_autoptr(GError) error = NULL;
      g_autoptr(StBackend) b = st_backend_new (d->port, &params, NULL, &error);
      g_assert_no_error (error);
      g_assert_true (st_backend_open (b, &error));
      StDeviceInfo info;
      gboolean ok = st_backend_identify (b, &info, &error);
      g_assert_cmpint (ok, ==, cases[i].ok);
      if (!ok)
        {
          g_assert_nonnull (error);
          g_test_message ("refused: %s", error->message);
          continue;
        }
      g_assert_no_error (error);
      g_assert_cmpuint (info.extensions, ==, cases[i].value);
      g_assert_cmpstr (info.model, ==, "INDEP-AGENT-1");
      g_assert_cmpuint (info.max_payload, ==, 2048);
      /* The bit decides whether slot 4 goes out. */
      StMatterCommissioning c;
      g_autoptr(GBytes) record = st_make_record (&c, 0xFFF1, 0x8001, 1234, 1000, 16, 0, 20202021);
      gboolean wrote = st_backend_write (b, ST_SLOT_MATTER_DATA, record, &error);
      g_assert_cmpint (wrote, ==, (cases[i].value & ST_DEVICE_EXT_MATTER_1) != 0);
      if (!wrote)
        g_assert_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED);
      st_backend_close (b);
      g_autoptr(JsonParser) parser = NULL;
      JsonObject *dev = st_device (d, 1, &parser);
      g_assert_cmpint (st_requests (dev, "write", 4), ==, wrote ? 1 : 0);
    }
  st_rm_rf (dir);
}

/* The whole matter-1 conversation with a device of max payload 256:
 * uncommitted data dropped by ABORT and KEYGEN, a 4096-byte CD in the
 * text's chunks, a record read back, COMMIT, agentdev's reading of the
 * committed record; then more units with other records. */
static void
test_slots (void)
{
  g_autofree gchar *dir = st_test_tmpdir ("st-agentdev-slots");
  const char *extra[] = { "--matter", "--max-payload", "256", "--units", "4", "--seed", "41", NULL };
  g_autoptr(StAgentDev) d = st_agentdev_start (dir, "slots", extra);
  StDeviceInfo info;
  g_autoptr(StBackend) b = st_open (d, &info);
  g_autoptr(GError) error = NULL;
  g_assert_cmpuint (info.extensions, ==, ST_DEVICE_EXT_MATTER_1);
  g_assert_cmpuint (info.max_payload, ==, 256);

  /* Slot 3 needs no key; ABORT drops it. */
  g_autoptr(GBytes) small = st_make_cd (300);
  st_write_ok (b, ST_SLOT_MATTER_CD, small);
  g_autoptr(GBytes) r1 = st_read_ok (b, ST_SLOT_MATTER_CD);
  st_assert_bytes_equal (r1, small);
  g_assert_true (st_backend_abort (b, &error));
  g_assert_no_error (error);
  g_autoptr(GBytes) r2 = st_read_ok (b, ST_SLOT_MATTER_CD);
  g_assert_cmpuint (g_bytes_get_size (r2), ==, 0);

  /* KEYGEN drops slot 4. */
  StMatterCommissioning c[4];
  g_autoptr(GBytes) early = st_make_record (&c[0], 0xFFF1, 0x8000, 3840, 1000, 16, 0, 20202021);
  st_write_ok (b, ST_SLOT_MATTER_DATA, early);
  g_autoptr(GBytes) r3 = st_read_ok (b, ST_SLOT_MATTER_DATA);
  st_assert_bytes_equal (r3, early);

  /* Four units: the smallest record, the largest (186 bytes), two random. */
  GBytes *records[4] = {
    g_bytes_ref (early),
    st_make_record (&c[1], 0xFFF2, 0xFFFF, 4095, 100000, 32, 32, 12345679),
    st_make_record (&c[2], (guint16) g_random_int_range (1, 0xFFF0), (guint16) g_random_int_range (1, 0x10000),
                    (guint16) g_random_int_range (0, 4096), (guint32) g_random_int_range (1000, 5001),
                    (gsize) g_random_int_range (16, 33), 16, 34567890),
    st_make_record (&c[3], 0x1234, 0x0001, 0, 2000, 24, 0, 11223344),
  };
  g_assert_cmpuint (g_bytes_get_size (records[0]), ==, 136);
  g_assert_cmpuint (g_bytes_get_size (records[1]), ==, ST_MATTER_DATA_MAX);
  GBytes *cds[4] = { st_make_cd (ST_SLOT_MATTER_CD_MAX), st_make_cd (1), st_make_cd (251), st_make_cd (252) };

  for (guint u = 0; u < 4; u++)
    {
      if (u > 0)
        {
          /* The device was swapped after the last HELLO: wait for the next. */
          g_autofree gchar *prev = st_device_info_uid_hex (&info);
          gboolean found = FALSE;
          for (guint tries = 0; tries < 50 && !found; tries++)
            {
              g_usleep (100 * 1000);
              g_clear_error (&error);
              if (st_backend_identify (b, &info, &error))
                {
                  g_autofree gchar *uid = st_device_info_uid_hex (&info);
                  found = g_strcmp0 (uid, prev) != 0;
                }
            }
          g_assert_true (found);
          g_clear_error (&error);
        }
      g_autoptr(GBytes) csr = st_backend_keygen (b, ST_ALG_EC_P256, &error);
      g_assert_no_error (error);
      g_assert_nonnull (csr);
      if (u == 0)
        {
          g_autoptr(GBytes) gone = st_read_ok (b, ST_SLOT_MATTER_DATA);
          g_assert_cmpuint (g_bytes_get_size (gone), ==, 0);
        }
      /* The device does not look into slots 1 and 2; the CSR will do as a
       * certificate's stand-in. */
      st_write_ok (b, ST_SLOT_CERT, csr);
      st_write_ok (b, ST_SLOT_CHAIN, csr);
      st_write_ok (b, ST_SLOT_MATTER_CD, cds[u]);
      st_write_ok (b, ST_SLOT_MATTER_DATA, records[u]);
      g_autoptr(GBytes) cd_back = st_read_ok (b, ST_SLOT_MATTER_CD);
      g_autoptr(GBytes) rec_back = st_read_ok (b, ST_SLOT_MATTER_DATA);
      st_assert_bytes_equal (cd_back, cds[u]);
      st_assert_bytes_equal (rec_back, records[u]);
      g_assert_true (st_backend_commit (b, FALSE, &error));
      g_assert_no_error (error);
      /* Committed: still there. */
      g_autoptr(GBytes) rec_after = st_read_ok (b, ST_SLOT_MATTER_DATA);
      st_assert_bytes_equal (rec_after, records[u]);
      /* The closing HELLO, as the station's sequence has it. */
      StDeviceInfo after;
      g_assert_true (st_backend_identify (b, &after, &error));
      g_assert_no_error (error);
      g_assert_cmpuint (after.state, ==, ST_DEVICE_STATE_PROVISIONED);

      g_autoptr(JsonParser) parser = NULL;
      JsonObject *dev = st_device (d, u + 1, &parser);
      g_autoptr(GBytes) cd_state = st_b64_member (dev, "cd");
      g_autoptr(GBytes) rec_state = st_b64_member (dev, "commissioning");
      st_assert_bytes_equal (cd_state, cds[u]);
      st_assert_bytes_equal (rec_state, records[u]);
      st_assert_record_fields (dev, &c[u]);
      g_assert_cmpint (json_object_get_int_member (dev, "commits"), ==, 1);

      /* The chunks the text prescribes: max payload 256 - 5 = 251 bytes. */
      JsonArray *chunks = json_object_get_array_member (json_object_get_object_member (dev, "chunks"), "3");
      gsize cd_len = g_bytes_get_size (cds[u]);
      guint first = u == 0 ? 2 : 0;    /* unit 1: the 300-byte slot 3 before ABORT */
      guint expect = (guint) ((cd_len + 250) / 251);
      g_assert_cmpuint (json_array_get_length (chunks), ==, first + expect);
      for (guint k = 0; k < expect; k++)
        {
          JsonArray *ch = json_array_get_array_element (chunks, first + k);
          gsize off = (gsize) k * 251;
          g_assert_cmpint (json_array_get_int_element (ch, 0), ==, (gint64) off);
          g_assert_cmpint (json_array_get_int_element (ch, 1), ==, (gint64) MIN (251, cd_len - off));
          g_assert_cmpint (json_array_get_int_element (ch, 2), ==, (gint64) cd_len);
        }
    }
  for (guint u = 0; u < 4; u++)
    {
      g_bytes_unref (records[u]);
      g_bytes_unref (cds[u]);
    }
  st_backend_close (b);
  st_rm_rf (dir);
}

/* A device without matter-1: the station refuses slots 3 and 4 itself and
 * nothing for them reaches the device; sizes outside the text's ranges are
 * refused before sending too; a device that announces matter-1 and answers
 * UNSUPPORTED is reported with the device's status. */
static void
test_refusal (void)
{
  g_autofree gchar *dir = st_test_tmpdir ("st-agentdev-refusal");
  StMatterCommissioning c;
  g_autoptr(GBytes) record = st_make_record (&c, 0xFFF1, 0x8000, 100, 1000, 16, 0, 20202021);
  g_autoptr(GBytes) cd = st_make_cd (100);
  {
    const char *extra[] = { NULL };
    g_autoptr(StAgentDev) d = st_agentdev_start (dir, "plain", extra);
    StDeviceInfo info;
    g_autoptr(StBackend) b = st_open (d, &info);
    g_assert_cmpuint (info.extensions, ==, 0);
    const StSlot slots[] = { ST_SLOT_MATTER_CD, ST_SLOT_MATTER_DATA };
    for (guint i = 0; i < G_N_ELEMENTS (slots); i++)
      {
        g_autoptr(GError) error = NULL;
        g_assert_false (st_backend_write (b, slots[i], slots[i] == ST_SLOT_MATTER_CD ? cd : record, &error));
        g_assert_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED);
        g_test_message ("write refused: %s", error->message);
        g_assert_nonnull (strstr (error->message, d->port));
        g_assert_nonnull (strstr (error->message, "agentdev-py-1"));
        g_assert_nonnull (strstr (error->message, "matter-1"));
        g_clear_error (&error);
        g_autoptr(GBytes) none = st_backend_read (b, slots[i], &error);
        g_assert_null (none);
        g_assert_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED);
      }
    /* Slots 1 and 2 still go out, and agentdev counts what arrives. */
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) chain = st_make_cd (40);
    st_write_ok (b, ST_SLOT_CHAIN, chain);
    g_autoptr(GBytes) back = st_read_ok (b, ST_SLOT_CHAIN);
    st_assert_bytes_equal (back, chain);
    st_backend_close (b);
    g_autoptr(JsonParser) parser = NULL;
    JsonObject *dev = st_device (d, 1, &parser);
    g_assert_cmpint (st_requests (dev, "write", 2), ==, 1);
    g_assert_cmpint (st_requests (dev, "read", 2), ==, 1);
    for (guint slot = 3; slot <= 4; slot++)
      {
        g_assert_cmpint (st_requests (dev, "write", slot), ==, 0);
        g_assert_cmpint (st_requests (dev, "read", slot), ==, 0);
      }
    g_assert_true (JSON_NODE_HOLDS_NULL (json_object_get_member (dev, "extensions")));
  }
  {
    /* Out-of-range sizes, on a matter-1 device: refused before sending. */
    const char *extra[] = { "--matter", NULL };
    g_autoptr(StAgentDev) d = st_agentdev_start (dir, "sizes", extra);
    StDeviceInfo info;
    g_autoptr(StBackend) b = st_open (d, &info);
    g_autoptr(GBytes) big_cd = st_make_cd (ST_SLOT_MATTER_CD_MAX + 1);
    g_autoptr(GBytes) big_rec = st_make_cd (ST_MATTER_DATA_MAX + 1);
    g_autoptr(GBytes) empty = g_bytes_new (NULL, 0);
    struct { StSlot slot; GBytes *data; } bad[] = {
      { ST_SLOT_MATTER_CD, big_cd }, { ST_SLOT_MATTER_CD, empty },
      { ST_SLOT_MATTER_DATA, big_rec }, { ST_SLOT_MATTER_DATA, empty },
    };
    for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
      {
        g_autoptr(GError) error = NULL;
        g_assert_false (st_backend_write (b, bad[i].slot, bad[i].data, &error));
        g_assert_nonnull (error);
        g_test_message ("slot %d, %zu bytes refused: %s", bad[i].slot, g_bytes_get_size (bad[i].data),
                        error->message);
      }
    st_backend_close (b);
    g_autoptr(JsonParser) parser = NULL;
    JsonObject *dev = st_device (d, 1, &parser);
    g_assert_cmpint (st_requests (dev, "write", 3), ==, 0);
    g_assert_cmpint (st_requests (dev, "write", 4), ==, 0);
  }
  {
    /* Announced, then UNSUPPORTED all the same: one request, the status kept. */
    const char *extra[] = { "--matter", "--mode", "matter-unsupported", NULL };
    g_autoptr(StAgentDev) d = st_agentdev_start (dir, "liar", extra);
    StDeviceInfo info;
    g_autoptr(StBackend) b = st_open (d, &info);
    g_assert_cmpuint (info.extensions, ==, ST_DEVICE_EXT_MATTER_1);
    g_autoptr(GError) error = NULL;
    g_assert_false (st_backend_write (b, ST_SLOT_MATTER_DATA, record, &error));
    g_assert_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED);
    g_assert_nonnull (strstr (error->message, "UNSUPPORTED"));
    g_assert_cmpint (st_backend_get_last_status (b), ==, ST_AGENT_STATUS_UNSUPPORTED);
    g_clear_error (&error);
    g_autoptr(GBytes) none = st_backend_read (b, ST_SLOT_MATTER_CD, &error);
    g_assert_null (none);
    g_assert_error (error, ST_ERROR, ST_ERROR_NOT_SUPPORTED);
    st_backend_close (b);
    g_autoptr(JsonParser) parser = NULL;
    JsonObject *dev = st_device (d, 1, &parser);
    g_assert_cmpint (st_requests (dev, "write", 4), ==, 1);
    g_assert_cmpint (st_requests (dev, "read", 3), ==, 1);
  }
  st_rm_rf (dir);
}

/* readback-differs-slot4: what READ returns is not what was written; the
 * backend hands the device's bytes up unchanged for the pipeline to compare. */
static void
test_readback_differs (void)
{
  g_autofree gchar *dir = st_test_tmpdir ("st-agentdev-readback");
  const char *extra[] = { "--matter", "--mode", "readback-differs-slot4", NULL };
  g_autoptr(StAgentDev) d = st_agentdev_start (dir, "differs", extra);
  StDeviceInfo info;
  g_autoptr(StBackend) b = st_open (d, &info);
  StMatterCommissioning c;
  g_autoptr(GBytes) record = st_make_record (&c, 0xFFF1, 0x8000, 100, 1000, 16, 0, 20202021);
  st_write_ok (b, ST_SLOT_MATTER_DATA, record);
  g_autoptr(GBytes) back = st_read_ok (b, ST_SLOT_MATTER_DATA);
  g_assert_cmpuint (g_bytes_get_size (back), ==, g_bytes_get_size (record));
  g_assert_false (g_bytes_equal (back, record));
  st_backend_close (b);
  st_rm_rf (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/independent/matter/self-test", test_self_test);
  g_test_add_func ("/independent/matter/hello", test_hello);
  g_test_add_func ("/independent/matter/slots", test_slots);
  g_test_add_func ("/independent/matter/refusal", test_refusal);
  g_test_add_func ("/independent/matter/readback-differs", test_readback_differs);
  return g_test_run ();
}
