/* aws/: the input of AWS IoT bulk registration (start-thing-registration-task):
 * one JSON object per line whose keys are exactly the provisioning
 * template's Parameters, the template, and a README with the CLI calls. */
#include "st-cloud-private.h"

#include <string.h>

#include "st-error.h"

/* The template's parameters, which are every line's keys. */
static const char *const st_aws_parameters[] = {
  "ThingName", "SerialNumber", "CertificatePem", "CACertificatePem", NULL,
};

static JsonNode *
st_aws_ref (const char *parameter)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "Ref");
  json_builder_add_string_value (b, parameter);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

static gchar *
st_aws_template (gsize *len)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "Parameters");
  json_builder_begin_object (b);
  for (guint i = 0; st_aws_parameters[i] != NULL; i++)
    {
      json_builder_set_member_name (b, st_aws_parameters[i]);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "Type");
      json_builder_add_string_value (b, "String");
      json_builder_end_object (b);
    }
  json_builder_end_object (b);
  json_builder_set_member_name (b, "Resources");
  json_builder_begin_object (b);
  /* the thing, named by the line, its serial as an attribute */
  json_builder_set_member_name (b, "thing");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "Type");
  json_builder_add_string_value (b, "AWS::IoT::Thing");
  json_builder_set_member_name (b, "Properties");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "ThingName");
  json_builder_add_value (b, st_aws_ref ("ThingName"));
  json_builder_set_member_name (b, "AttributePayload");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "serialNumber");
  json_builder_add_value (b, st_aws_ref ("SerialNumber"));
  json_builder_end_object (b);
  json_builder_end_object (b);
  json_builder_end_object (b);
  /* the device's certificate, issued by a CA registered with AWS IoT */
  json_builder_set_member_name (b, "certificate");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "Type");
  json_builder_add_string_value (b, "AWS::IoT::Certificate");
  json_builder_set_member_name (b, "Properties");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "CertificatePem");
  json_builder_add_value (b, st_aws_ref ("CertificatePem"));
  json_builder_set_member_name (b, "CACertificatePem");
  json_builder_add_value (b, st_aws_ref ("CACertificatePem"));
  json_builder_set_member_name (b, "Status");
  json_builder_add_string_value (b, "ACTIVE");
  json_builder_end_object (b);
  json_builder_end_object (b);
  json_builder_end_object (b);
  json_builder_end_object (b);
  g_autoptr(JsonNode) root = json_builder_get_root (b);
  return st_json_text (root, TRUE, len);
}

static const char st_aws_readme[] =
  "# AWS IoT: registering this batch\n"
  "\n"
  "Written by the station with the batch's manifest; docs/cloud.md explains each step.\n"
  "Only units with an active certificate are here; rejected.txt names the units left out.\n"
  "\n"
  "1. Register the issuing CA (ca.pem: the issuing CA certificate, also the\n"
  "   CACertificatePem of every line) once per account and region, either\n"
  "   in multi-account mode, without a proof of possession:\n"
  "\n"
  "       aws iot register-ca-certificate --ca-certificate file://ca.pem \\\n"
  "           --certificate-mode SNI_ONLY --set-as-active\n"
  "\n"
  "   or in single-account (DEFAULT) mode with a verification certificate:\n"
  "\n"
  "       aws iot get-registration-code              # prints registrationCode\n"
  "       station ca verification-cert --code CODE --out verification.pem   (an admin)\n"
  "       aws iot register-ca-certificate --ca-certificate file://ca.pem \\\n"
  "           --verification-cert file://verification.pem --set-as-active\n"
  "\n"
  "2. Upload the lines to S3 (a bucket the role below may read):\n"
  "\n"
  "       aws s3 cp bulk-registration.ndjson s3://BUCKET/KEY\n"
  "\n"
  "3. Start the bulk registration (ROLE_ARN: an IAM role AWS IoT may assume,\n"
  "   with read access to the object and the AWSIoTThingsRegistration policy):\n"
  "\n"
  "       aws iot start-thing-registration-task \\\n"
  "           --template-body file://provisioning-template.json \\\n"
  "           --input-file-bucket BUCKET --input-file-key KEY \\\n"
  "           --role-arn ROLE_ARN\n"
  "\n"
  "4. Follow it and read its reports:\n"
  "\n"
  "       aws iot describe-thing-registration-task --task-id TASK_ID\n"
  "       aws iot list-thing-registration-task-reports --task-id TASK_ID --report-type RESULTS\n"
  "       aws iot list-thing-registration-task-reports --task-id TASK_ID --report-type ERRORS\n";

static gboolean
st_aws_line (JsonBuilder *b, const char *thing, const char *serial, const char *pem, const char *ca)
{
  const char *values[] = { thing, serial, pem, ca };
  json_builder_begin_object (b);
  for (guint i = 0; st_aws_parameters[i] != NULL; i++)
    {
      json_builder_set_member_name (b, st_aws_parameters[i]);
      json_builder_add_string_value (b, values[i]);
    }
  json_builder_end_object (b);
  return TRUE;
}

struct StCloudAws {
  FILE *lines, *rejected;
  guint n;
};

static gboolean
st_cloud_aws_begin (StCloudExport *x, const char *dir, GError **error)
{
  x->aws = g_new0 (StCloudAws, 1);
  x->aws->lines = st_cloud_open (dir, "bulk-registration.ndjson", error);
  x->aws->rejected = x->aws->lines != NULL ? st_cloud_open (dir, "rejected.txt", error) : NULL;
  if (x->aws->rejected == NULL)
    return FALSE;
  gsize tlen = 0;
  g_autofree gchar *template_ = st_aws_template (&tlen);
  return st_cloud_write_file (dir, "provisioning-template.json", template_, tlen, error)
         && st_cloud_write_file (dir, "ca.pem", x->ca_pem, strlen (x->ca_pem), error)
         && st_cloud_write_file (dir, "README.md", st_aws_readme, strlen (st_aws_readme), error);
}

/* One line of bulk-registration.ndjson, written at once. */
static gboolean
st_cloud_aws_unit (StCloudExport *x, const StCloudUnit *u, GError **error)
{
  /* the thing is named by the device's uid (lower-case hex as the station
   * records it), which the certificate's names are built from */
  const char *problem = NULL;
  if (!st_cloud_aws_thing_name_ok (u->unit->uid))
    problem = "its uid is not a thing name (1..128 of a-z A-Z 0-9 : _ -)";
  else if (u->unit->product_serial == NULL || !g_utf8_validate (u->unit->product_serial, -1, NULL))
    problem = "it has no product serial in UTF-8";
  if (problem != NULL)
    {
      fprintf (x->aws->rejected, "%s\t%s\n", u->uid_shown, problem);
      st_cloud_note (x, "  aws: unit %s left out: %s\n", u->uid_shown, problem);
      return TRUE;
    }
  g_autoptr(JsonBuilder) b = json_builder_new ();
  st_aws_line (b, u->unit->uid, u->unit->product_serial, u->pem, x->ca_pem);
  g_autoptr(JsonNode) node = json_builder_get_root (b);
  gsize len = 0;
  g_autofree gchar *text = st_json_text (node, FALSE, &len);
  fwrite (text, 1, len, x->aws->lines);
  fputc ('\n', x->aws->lines);
  x->aws->n++;
  return TRUE;
}

static gboolean
st_cloud_aws_end (StCloudExport *x, GError **error)
{
  if (!st_cloud_close (&x->aws->lines, "aws/bulk-registration.ndjson", error)
      || !st_cloud_close (&x->aws->rejected, "aws/rejected.txt", error))
    return FALSE;
  st_cloud_note (x, "aws: %u line(s) in aws/bulk-registration.ndjson\n", x->aws->n);
  return TRUE;
}

static void
st_cloud_aws_cleanup (StCloudExport *x)
{
  if (x->aws == NULL)
    return;
  st_cloud_close (&x->aws->lines, "aws/bulk-registration.ndjson", NULL);
  st_cloud_close (&x->aws->rejected, "aws/rejected.txt", NULL);
  g_clear_pointer (&x->aws, g_free);
}

const StCloudTarget st_cloud_aws_target = {
  "aws", "AWS IoT bulk registration", st_cloud_aws_begin, st_cloud_aws_unit, st_cloud_aws_end,
  st_cloud_aws_cleanup,
};
