/* azure/: an Azure IoT Hub DPS enrollment group for X.509 CA attestation
 * (the issuing CA as its signing certificate), the registration ids the
 * devices will present (their certificates' subject CN), and the units
 * whose CN DPS would not take. */
#include "st-cloud-private.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "st-error.h"
#include "st-util.h"

static const char st_azure_readme[] =
  "# Azure IoT Hub DPS: enrolling this batch\n"
  "\n"
  "Written by the station with the batch's manifest; docs/cloud.md explains each step.\n"
  "Only units with an active certificate whose CN DPS accepts as a registration id are in\n"
  "registration-ids.txt; rejected.txt names the others.\n"
  "\n"
  "1. Upload the issuing CA (ca.pem) to DPS and verify it (proof of possession):\n"
  "\n"
  "       az iot dps certificate create -g RG --dps-name DPS --name station-ca --path ca.pem\n"
  "       az iot dps certificate generate-verification-code -g RG --dps-name DPS \\\n"
  "           --name station-ca --etag ETAG                   # prints properties.verificationCode\n"
  "       station ca verification-cert --code CODE --out verification.pem   (an admin)\n"
  "       az iot dps certificate verify -g RG --dps-name DPS --name station-ca \\\n"
  "           --path verification.pem --etag ETAG\n"
  "\n"
  "2. Create the enrollment group, with the CLI:\n"
  "\n"
  "       az iot dps enrollment-group create -g RG --dps-name DPS \\\n"
  "           --enrollment-id ENROLLMENT_ID --certificate-path ca.pem\n"
  "\n"
  "   or with the REST API and this folder's enrollment-group.json as the body:\n"
  "\n"
  "       PUT https://DPS.azure-devices-provisioning.net/enrollmentGroups/ENROLLMENT_ID?api-version=2021-10-01\n"
  "\n"
  "   (ENROLLMENT_ID: the enrollmentGroupId in enrollment-group.json.)\n"
  "\n"
  "3. Each device then registers with its own certificate and chain; its registration id is its\n"
  "   certificate's subject CN, as listed in registration-ids.txt.\n";

/* "station-ID-batch-N" with every character DPS would not take as '-'. */
static gchar *
st_azure_group_id (const char *station_id, gint64 batch_id)
{
  g_autoptr(GString) s = g_string_new ("station-");
  for (const char *p = station_id != NULL ? station_id : ""; *p != '\0' && s->len < 80; p++)
    g_string_append_c (s, g_ascii_isalnum (*p) ? g_ascii_tolower (*p) : '-');
  g_string_append_printf (s, "-batch-%" G_GINT64_FORMAT, batch_id);
  return g_string_free (g_steal_pointer (&s), FALSE);
}

struct StCloudAzure {
  FILE *ids, *rejected;
  gchar *seen;            /* a private folder: one empty file per CN taken */
  gchar *group_id;
  guint n;
};

static gboolean
st_cloud_azure_begin (StCloudExport *x, const char *dir, GError **error)
{
  x->azure = g_new0 (StCloudAzure, 1);
  g_autofree gchar *group_id = st_azure_group_id (x->station_id, x->batch->id);
  g_autoptr(JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "enrollmentGroupId");
  json_builder_add_string_value (b, group_id);
  json_builder_set_member_name (b, "attestation");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, "x509");
  json_builder_set_member_name (b, "x509");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "signingCertificates");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "primary");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "certificate");
  json_builder_add_string_value (b, x->ca_pem);
  json_builder_end_object (b);
  json_builder_end_object (b);
  json_builder_end_object (b);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "provisioningStatus");
  json_builder_add_string_value (b, "enabled");
  json_builder_set_member_name (b, "capabilities");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "iotEdge");
  json_builder_add_boolean_value (b, FALSE);
  json_builder_end_object (b);
  json_builder_end_object (b);
  g_autoptr(JsonNode) root = json_builder_get_root (b);
  gsize len = 0;
  g_autofree gchar *group = st_json_text (root, TRUE, &len);


  if (!st_cloud_write_file (dir, "enrollment-group.json", group, len, error)
      || !st_cloud_write_file (dir, "ca.pem", x->ca_pem, strlen (x->ca_pem), error)
      || !st_cloud_write_file (dir, "README.md", st_azure_readme, strlen (st_azure_readme), error))
    return FALSE;
  x->azure->group_id = g_strdup (group_id);
  x->azure->seen = g_build_filename (x->out_dir, ".azure-seen-XXXXXX", NULL);
  if (g_mkdtemp_full (x->azure->seen, 0700) == NULL)
    {
      int e = errno;
      g_set_error (error, ST_ERROR, ST_ERROR_WRITE, "cannot create %s: %s", x->azure->seen, g_strerror (e));
      g_clear_pointer (&x->azure->seen, g_free);
      return FALSE;
    }
  x->azure->ids = st_cloud_open (dir, "registration-ids.txt", error);
  x->azure->rejected = x->azure->ids != NULL ? st_cloud_open (dir, "rejected.txt", error) : NULL;
  return x->azure->rejected != NULL;
}

/* Decision: the CNs taken so far are files of a private folder, not a set
 * in memory: DPS ignores case, so the lower-case CN (a safe file name once
 * it passed st_cloud_azure_registration_id_problem) is created with O_EXCL
 * and one that exists is a second device to DPS. Exact, and the memory
 * does not grow with the batch. */
static gboolean
st_cloud_azure_unit (StCloudExport *x, const StCloudUnit *u, GError **error)
{
  g_autofree gchar *cn = st_cloud_subject_cn (u->cert);
  const char *problem = st_cloud_azure_registration_id_problem (cn);
  if (problem == NULL)
    {
      g_autofree gchar *folded = g_ascii_strdown (cn, -1);
      g_autofree gchar *mark = g_build_filename (x->azure->seen, folded, NULL);
      int fd = g_open (mark, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
      if (fd < 0 && errno == EEXIST)
        problem = "another unit of the batch has the same CN (DPS ignores case)";
      else if (fd < 0)
        {
          int e = errno;
          g_set_error (error, ST_ERROR, ST_ERROR_WRITE, "cannot create %s: %s", mark, g_strerror (e));
          return FALSE;
        }
      else
        close (fd);
    }
  if (problem != NULL)
    {
      fprintf (x->azure->rejected, "%s\t%s\n", u->uid_shown, problem);
      st_cloud_note (x, "  azure: unit %s left out: %s\n", u->uid_shown, problem);
      return TRUE;
    }
  fprintf (x->azure->ids, "%s\n", cn);
  x->azure->n++;
  return TRUE;
}

static gboolean
st_cloud_azure_end (StCloudExport *x, GError **error)
{
  if (!st_cloud_close (&x->azure->ids, "azure/registration-ids.txt", error)
      || !st_cloud_close (&x->azure->rejected, "azure/rejected.txt", error))
    return FALSE;
  st_cloud_note (x, "azure: %u registration id(s) in azure/registration-ids.txt, enrollment group "
                 "%s\n", x->azure->n, x->azure->group_id);
  return TRUE;
}

static void
st_cloud_azure_cleanup (StCloudExport *x)
{
  if (x->azure == NULL)
    return;
  st_cloud_close (&x->azure->ids, "azure/registration-ids.txt", NULL);
  st_cloud_close (&x->azure->rejected, "azure/rejected.txt", NULL);
  if (x->azure->seen != NULL)
    st_rm_rf (x->azure->seen);
  g_free (x->azure->seen);
  g_free (x->azure->group_id);
  g_clear_pointer (&x->azure, g_free);
}

const StCloudTarget st_cloud_azure_target = {
  "azure", "Azure DPS enrollment group", st_cloud_azure_begin, st_cloud_azure_unit,
  st_cloud_azure_end, st_cloud_azure_cleanup,
};
