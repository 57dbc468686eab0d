/* The Matter commissioning data record (station/st-matter-data.h): the
 * encoder against a vector written out by hand from docs/agent-protocol.md,
 * round trips of random records, and every refusal of the parser. */
#include <string.h>

#include "st-error.h"
#include "st-matter-data.h"

static void
fill_example (StMatterCommissioning *c)
{
  memset (c, 0, sizeof *c);
  c->vendor_id = 0xFFF1;
  c->product_id = 0x8000;
  c->discriminator = 3840;
  c->iterations = 1000;
  memcpy (c->salt, "SPAKE2P Key Salt", 16);
  c->salt_len = 16;
  for (guint i = 0; i < ST_MATTER_DATA_VERIFIER_LEN; i++)
    c->verifier[i] = (guint8) i;
  c->verifier[32] = 0x04;
}

/* The record of fill_example(), byte by byte as the documentation lays it
 * out (docs/agent-protocol.md, "Commissioning data record"). */
static GByteArray *
example_vector (void)
{
  GByteArray *v = g_byte_array_new ();
  static const guint8 head[] = {
    0x01,                   /* version */
    0x01, 0x02, 0xF1, 0xFF, /* vendor id 0xFFF1 */
    0x02, 0x02, 0x00, 0x80, /* product id 0x8000 */
    0x03, 0x02, 0x00, 0x0F, /* discriminator 3840 */
    0x04, 0x04, 0xE8, 0x03, 0x00, 0x00, /* 1000 iterations */
    0x05, 0x10,
  };
  g_byte_array_append (v, head, sizeof head);
  g_byte_array_append (v, (const guint8 *) "SPAKE2P Key Salt", 16);
  guint8 vh[2] = { 0x06, 97 };
  g_byte_array_append (v, vh, 2);
  for (guint i = 0; i < 97; i++)
    {
      guint8 b = i == 32 ? 0x04 : (guint8) i;
      g_byte_array_append (v, &b, 1);
    }
  return v;
}

static void
test_vector (void)
{
  StMatterCommissioning c;
  g_autoptr(GError) error = NULL;
  fill_example (&c);
  g_autoptr(GBytes) enc = st_matter_commissioning_encode (&c, &error);
  g_assert_no_error (error);
  g_autoptr(GByteArray) v = example_vector ();
  g_assert_cmpmem (g_bytes_get_data (enc, NULL), g_bytes_get_size (enc), v->data, v->len);
  g_assert_cmpuint (v->len, ==, 1 + 4 + 4 + 4 + 6 + 18 + 99);

  StMatterCommissioning back;
  g_assert_true (st_matter_commissioning_parse (v->data, v->len, &back, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (&back, sizeof back, &c, sizeof c);
}

static void
random_record (GRand *r, StMatterCommissioning *c)
{
  memset (c, 0, sizeof *c);
  c->vendor_id = (guint16) g_rand_int (r);
  c->product_id = (guint16) g_rand_int (r);
  c->discriminator = (guint16) g_rand_int_range (r, 0, 4096);
  c->iterations = (guint32) g_rand_int_range (r, 1000, 100001);
  c->salt_len = (gsize) g_rand_int_range (r, 16, 33);
  for (gsize i = 0; i < c->salt_len; i++)
    c->salt[i] = (guint8) g_rand_int (r);
  for (gsize i = 0; i < ST_MATTER_DATA_VERIFIER_LEN; i++)
    c->verifier[i] = (guint8) g_rand_int (r);
  c->verifier[32] = 0x04;
  if (g_rand_boolean (r))
    {
      c->rdid_unique_id_len = (gsize) g_rand_int_range (r, 16, 33);
      for (gsize i = 0; i < c->rdid_unique_id_len; i++)
        c->rdid_unique_id[i] = (guint8) g_rand_int (r);
    }
}

static void
test_round_trip (void)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (18);
  gsize longest = 0;
  for (guint n = 0; n < 2000; n++)
    {
      StMatterCommissioning c, back;
      g_autoptr(GError) error = NULL;
      random_record (r, &c);
      g_autoptr(GBytes) enc = st_matter_commissioning_encode (&c, &error);
      g_assert_no_error (error);
      gsize len = 0;
      const guint8 *d = g_bytes_get_data (enc, &len);
      g_assert_cmpuint (len, <=, ST_MATTER_DATA_MAX);
      longest = MAX (longest, len);
      g_assert_true (st_matter_commissioning_parse (d, len, &back, &error));
      g_assert_no_error (error);
      g_assert_cmpmem (&back, sizeof back, &c, sizeof c);
      /* Every proper prefix is refused (a record cut short), but the one
       * that ends where the optional entry starts. */
      gsize cut = (gsize) g_rand_int_range (r, 0, (gint32) len);
      gsize mandatory = len - (c.rdid_unique_id_len > 0 ? 2 + c.rdid_unique_id_len : 0);
      g_assert_cmpint (st_matter_commissioning_parse (d, cut, &back, NULL), ==, cut == mandatory);
    }
  g_assert_cmpuint (longest, ==, ST_MATTER_DATA_MAX);
}

static void
test_encode_refuses (void)
{
  StMatterCommissioning c;
  GError *error = NULL;

  fill_example (&c);
  c.discriminator = 4096;
  g_assert_null (st_matter_commissioning_encode (&c, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "4096"));
  g_clear_error (&error);
  fill_example (&c);
  c.iterations = 999;
  g_assert_null (st_matter_commissioning_encode (&c, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  g_clear_error (&error);
  fill_example (&c);
  c.iterations = 100001;
  g_assert_null (st_matter_commissioning_encode (&c, &error));
  g_clear_error (&error);
  fill_example (&c);
  c.salt_len = 15;
  g_assert_null (st_matter_commissioning_encode (&c, &error));
  g_clear_error (&error);
  fill_example (&c);
  c.salt_len = 33;
  g_assert_null (st_matter_commissioning_encode (&c, &error));
  g_clear_error (&error);
  fill_example (&c);
  c.verifier[32] = 0x02;
  g_assert_null (st_matter_commissioning_encode (&c, &error));
  g_clear_error (&error);
  fill_example (&c);
  c.rdid_unique_id_len = 15;
  g_assert_null (st_matter_commissioning_encode (&c, &error));
  g_clear_error (&error);
  fill_example (&c);
  c.rdid_unique_id_len = 33;
  g_assert_null (st_matter_commissioning_encode (&c, &error));
  g_clear_error (&error);
}

/* Applies @edit to the example vector and expects a refusal whose message
 * contains @needle. */
typedef void (*EditFunc) (GByteArray *v);

static void
expect_refused (EditFunc edit, const char *needle)
{
  g_autoptr(GByteArray) v = example_vector ();
  edit (v);
  StMatterCommissioning c;
  GError *error = NULL;
  memset (&c, 0xAA, sizeof c);
  g_assert_false (st_matter_commissioning_parse (v->data, v->len, &c, &error));
  g_assert_error (error, ST_ERROR, ST_ERROR_INVALID_DATA);
  if (strstr (error->message, needle) == NULL)
    g_error ("refusal \"%s\" does not mention \"%s\"", error->message, needle);
  g_clear_error (&error);
  /* Nothing half-parsed is left behind. */
  StMatterCommissioning zero;
  memset (&zero, 0, sizeof zero);
  g_assert_cmpmem (&c, sizeof c, &zero, sizeof zero);
}

/* Offsets in the example vector. */
#define OFF_VID 1
#define OFF_PID 5
#define OFF_DISC 9
#define OFF_ITER 13
#define OFF_SALT 19
#define OFF_VERIFIER 37

static void e_version (GByteArray *v) { v->data[0] = 0x02; }
static void e_empty (GByteArray *v) { g_byte_array_set_size (v, 0); }
static void e_only_version (GByteArray *v) { g_byte_array_set_size (v, 1); }
static void e_unknown_type (GByteArray *v) { guint8 t[] = { 0x08, 0x01, 0x00 }; g_byte_array_append (v, t, 3); }
static void e_type_zero (GByteArray *v) { v->data[OFF_VID] = 0x00; }
static void e_duplicate (GByteArray *v) { guint8 pid[4]; memcpy (pid, v->data + OFF_PID, 4); g_byte_array_set_size (v, OFF_DISC); g_byte_array_append (v, pid, 4); }
static void e_order (GByteArray *v) { v->data[OFF_VID] = 0x02; v->data[OFF_PID] = 0x01; }
static void e_missing (GByteArray *v) { g_byte_array_remove_range (v, OFF_PID, 4); }
static void e_missing_verifier (GByteArray *v) { g_byte_array_set_size (v, OFF_VERIFIER); }
/* Inserts @n zero bytes at @at. */
static void
insert_zeros (GByteArray *v, guint at, guint n)
{
  guint old = v->len;
  g_byte_array_set_size (v, old + n);
  memmove (v->data + at + n, v->data + at, old - at);
  memset (v->data + at, 0, n);
}

static void e_vid_len (GByteArray *v) { v->data[OFF_VID + 1] = 3; insert_zeros (v, OFF_VID + 2, 1); }
static void e_iter_len (GByteArray *v) { v->data[OFF_ITER + 1] = 2; g_byte_array_remove_range (v, OFF_ITER + 4, 2); }
static void e_disc_range (GByteArray *v) { v->data[OFF_DISC + 2] = 0x00; v->data[OFF_DISC + 3] = 0x10; }
static void e_iter_low (GByteArray *v) { v->data[OFF_ITER + 2] = 0xE7; }
static void e_iter_high (GByteArray *v) { v->data[OFF_ITER + 2] = 0xA1; v->data[OFF_ITER + 3] = 0x86; v->data[OFF_ITER + 4] = 0x01; }
static void e_salt_short (GByteArray *v) { v->data[OFF_SALT + 1] = 15; g_byte_array_remove_index (v, OFF_SALT + 2); }
static void e_salt_long (GByteArray *v) { v->data[OFF_SALT + 1] = 33; insert_zeros (v, OFF_SALT + 2, 17); }
static void e_verifier_len (GByteArray *v) { v->data[OFF_VERIFIER + 1] = 96; g_byte_array_set_size (v, v->len - 1); }
static void e_verifier_l (GByteArray *v) { v->data[OFF_VERIFIER + 2 + 32] = 0x03; }
static void e_trailing (GByteArray *v) { guint8 z = 0; g_byte_array_append (v, &z, 1); }
static void e_overrun (GByteArray *v) { g_byte_array_set_size (v, v->len - 1); }
static void e_rdid_short (GByteArray *v) { guint8 t[17] = { 0x07, 15 }; g_byte_array_append (v, t, 17); }
static void e_rdid_twice (GByteArray *v) { guint8 t[18] = { 0x07, 16 }; g_byte_array_append (v, t, 18); g_byte_array_append (v, t, 18); }
static void e_huge (GByteArray *v) { g_byte_array_set_size (v, ST_MATTER_DATA_MAX + 1); }

static void
test_parse_refuses (void)
{
  expect_refused (e_empty, "empty");
  expect_refused (e_only_version, "vendor id");
  expect_refused (e_version, "version 2");
  expect_refused (e_unknown_type, "0x08");
  expect_refused (e_type_zero, "0x00");
  expect_refused (e_duplicate, "twice or out of order");
  expect_refused (e_order, "missing");
  expect_refused (e_missing, "product id");
  expect_refused (e_missing_verifier, "SPAKE2+ verifier");
  expect_refused (e_vid_len, "length of 3");
  expect_refused (e_iter_len, "length of 2");
  expect_refused (e_disc_range, "4096");
  expect_refused (e_iter_low, "999");
  expect_refused (e_iter_high, "100001");
  expect_refused (e_salt_short, "length of 15");
  expect_refused (e_salt_long, "length of 33");
  expect_refused (e_verifier_len, "length of 96");
  expect_refused (e_verifier_l, "0x04");
  expect_refused (e_trailing, "cut short");
  expect_refused (e_overrun, "runs past the end");
  expect_refused (e_rdid_short, "length of 15");
  expect_refused (e_rdid_twice, "twice or out of order");
  expect_refused (e_huge, "more than the 186");
}

static void
test_rdid_accepted (void)
{
  g_autoptr(GByteArray) v = example_vector ();
  guint8 t[34] = { 0x07, 32 };
  for (guint i = 0; i < 32; i++)
    t[2 + i] = (guint8) (0xA0 + i);
  g_byte_array_append (v, t, sizeof t);
  StMatterCommissioning c;
  g_autoptr(GError) error = NULL;
  g_assert_true (st_matter_commissioning_parse (v->data, v->len, &c, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (c.rdid_unique_id_len, ==, 32);
  g_assert_cmpmem (c.rdid_unique_id, 32, t + 2, 32);
  g_assert_cmpuint (v->len, ==, ST_MATTER_DATA_MAX - 16);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/programmer/matter-data/vector", test_vector);
  g_test_add_func ("/programmer/matter-data/round-trip", test_round_trip);
  g_test_add_func ("/programmer/matter-data/encode-refuses", test_encode_refuses);
  g_test_add_func ("/programmer/matter-data/parse-refuses", test_parse_refuses);
  g_test_add_func ("/programmer/matter-data/rdid", test_rdid_accepted);
  return g_test_run ();
}
