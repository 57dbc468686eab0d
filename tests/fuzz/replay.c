/* A fuzz target without libFuzzer: runs LLVMFuzzerTestOneInput once on
 * every file named, or in a folder named, on the command line. `make test`
 * builds each target with it (gcc, ASan + UBSan) and replays its seed
 * corpus in tests/fuzz/corpus/, so what the fuzzer found and what its
 * checks assert stay covered without clang (tests/fuzz/meson.build). */
#include <glib.h>
#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);
int LLVMFuzzerInitialize (int *argc, char ***argv) __attribute__ ((weak));

static guint
st_replay_file (const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *data = NULL;
  gsize len = 0;
  if (!g_file_get_contents (path, &data, &len, &error))
    {
      fprintf (stderr, "replay: %s\n", error->message);
      return 0;
    }
  LLVMFuzzerTestOneInput ((const uint8_t *) data, len);
  return 1;
}

static gint
st_replay_compare (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const char *const *) a, *(const char *const *) b);
}

int
main (int argc, char **argv)
{
  if (LLVMFuzzerInitialize != NULL)
    LLVMFuzzerInitialize (&argc, &argv);
  guint n = 0, failed = 0;
  for (int i = 1; i < argc; i++)
    {
      if (!g_file_test (argv[i], G_FILE_TEST_IS_DIR))
        {
          guint ok = st_replay_file (argv[i]);
          n += ok;
          failed += !ok;
          continue;
        }
      g_autoptr(GError) error = NULL;
      g_autoptr(GDir) dir = g_dir_open (argv[i], 0, &error);
      if (dir == NULL)
        {
          fprintf (stderr, "replay: %s\n", error->message);
          failed++;
          continue;
        }
      g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
      const char *name;
      while ((name = g_dir_read_name (dir)) != NULL)
        g_ptr_array_add (names, g_build_filename (argv[i], name, NULL));
      g_ptr_array_sort (names, st_replay_compare);
      for (guint k = 0; k < names->len; k++)
        {
          guint ok = st_replay_file (names->pdata[k]);
          n += ok;
          failed += !ok;
        }
    }
  printf ("%u inputs replayed\n", n);
  return failed == 0 && n > 0 ? 0 : 1;
}
