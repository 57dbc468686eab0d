/* azure/: an Azure IoT Hub DPS enrollment group for X.509 CA attestation
 * (the issuing CA as its signing certificate), the registration ids the
 * devices will present (their certificates' subject CN), and the units
 * whose CN DPS would not take. */
#include "st-cloud-private.h"

#include <string.h>

#include "st-error.h"

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

gboolean
st_cloud_azure_write (StCloudExport *x, const char *dir, GError **error)
{
  g_autoptr(GString) ids = g_string_new (NULL);
  g_autoptr(GString) rejected = g_string_new (NULL);
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  guint n = 0;
  for (guint i = 0; i < x->units->len; i++)
    {
      StCloudUnit *u = g_ptr_array_index (x->units, i);
      g_autofree gchar *cn = st_cloud_subject_cn (u->cert);
      const char *problem = st_cloud_azure_registration_id_problem (cn);
      /* DPS compares registration ids without case: two that differ only
       * in case are one device to it */
      g_autofree gchar *folded = cn != NULL ? g_ascii_strdown (cn, -1) : NULL;
      if (problem == NULL && g_hash_table_contains (seen, folded))
        problem = "another unit of the batch has the same CN (DPS ignores case)";
      if (problem != NULL)
        {
          g_string_append_printf (rejected, "%s\t%s\n", u->uid_shown, problem);
          g_string_append_printf (x->report, "  azure: unit %s left out: %s\n", u->uid_shown, problem);
          continue;
        }
      g_hash_table_add (seen, g_steal_pointer (&folded));
      g_string_append_printf (ids, "%s\n", cn);
      n++;
    }

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
      || !st_cloud_write_file (dir, "registration-ids.txt", ids->str, ids->len, error)
      || !st_cloud_write_file (dir, "ca.pem", x->ca_pem, strlen (x->ca_pem), error)
      || !st_cloud_write_file (dir, "README.md", st_azure_readme, strlen (st_azure_readme), error)
      || !st_cloud_write_file (dir, "rejected.txt", rejected->str, rejected->len, error))
    return FALSE;
  g_string_append_printf (x->report, "azure: %u registration id(s) in azure/registration-ids.txt, "
                          "enrollment group %s\n", n, group_id);
  return TRUE;
}
