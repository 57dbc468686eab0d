/* The line's fields: for st-line.c and the unit pipeline (st-unit.c) only.
 * Everyone else uses the accessors of st-line.h. */
#pragma once

#include "st-line.h"

G_BEGIN_DECLS

struct _StLine {
  StConfig *config;        /* borrowed */
  StCa *ca;                /* borrowed */
  StDb *db;                /* borrowed */
  StDbBatch *batch;
  StProfile *profile;      /* from the batch's stored profile text */
  gchar *operator_name;
  gchar *issuer_hash;      /* SHA-256 of the issuing CA certificate DER */
  GBytes *chain_der;       /* slot 2: issuing CA first, root last */
  GBytes *firmware;        /* the profile's [firmware] image, hash checked; NULL without one */
  GBytes *matter_cd;       /* a [matter] profile's Certification Declaration (slot 3), read
                            * once per line; NULL without [matter] */
  gchar *matter_cd_note;   /* one line when that CD is a development one, else NULL */
  gboolean allow_reprovision;
  GCancellable *cancellable;     /* borrowed */
  StUnitStepFunc step_func;
  StUnitNoticeFunc notice_func;  /* called with step_data */
  gpointer step_data;

  /* Private: under lock. */
  GMutex lock;
  GHashTable *pending;     /* uid hex set: the uids a socket is resuming now */
  gchar *stop_reason;      /* set when the line must stop (database failure) */
};

/* The line must stop: a database write failed, so nothing can be
 * acknowledged any more. Other sockets see it through the cancellable. */
void st_line_stop (StLine *line, const GError *error);

/* The unit waiting for the device @uid_hex: a unit of this batch left
 * 'issued' (an interrupted run) or 'failed', with its certificate
 * unconfirmed. *@busy when another socket is resuming that uid right now
 * (the line's pending set holds the uids being resumed). The lookup also gives the
 * identify check the uid's live unit (*@live, *@looked). */
gboolean st_line_take_pending (StLine *line, const char *uid_hex, StDbUnit **out, gboolean *busy,
                               StDbUnit **live, gboolean *looked, GError **error);
/* Ends a resumption: the uid is free (a unit not decided waits in the
 * database for its device's next visit). */
void st_line_release_pending (StLine *line, const char *uid_hex);

G_END_DECLS
