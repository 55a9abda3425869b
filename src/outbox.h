/* outbox.h - one row per email occasion, and its life in the database: queued, claimed for
 * sending, then sent, failed or expired (meccd(8), DELIVERY). No event loop, no SMTP: the
 * delivery engine (deliver.h) drives these. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "db.h"
#include "kind.h"
#include "render.h"

/* The delay before attempt n+1 after n failed attempts: 1 min doubling to 1 h, then
 * hourly (meccd(8), DELIVERY). Seconds. */
#define OUTBOX_BACKOFF_MIN 60
#define OUTBOX_BACKOFF_MAX 3600

/* Queue one email for an occasion (registration_id 0: a session email such as the roster).
 * 1 queued, 0 already queued for that occasion (the unique index decides), <0 error. */
int outbox_queue(db_t *db, const config_t *c, int64_t session_id, int64_t registration_id,
                 kind_t kind, const char *occasion, const char *recipient, int64_t now);

/* Why a queued email would no longer be true at `now`, or NULL when it still is. Delivery
 * drops such a row as expired; `meccctl upcoming` leaves it out. */
const char *outbox_stale(db_t *db, const config_t *c, int64_t session_id, int64_t registration_id,
                         kind_t kind, const char *recipient, int64_t now);
/* The same, knowing the row's occasion: an `unreachable` email whose every address was
 * put right before it went is no longer true. */
const char *outbox_stale_occasion(db_t *db, const config_t *c, int64_t session_id, int64_t registration_id,
                                  kind_t kind, const char *occasion, const char *recipient, int64_t now);

/* outbox_stale()'s reason for an unreachable registration: such rows become failed, not
 * expired (compare by address). */
extern const char OUTBOX_BOUNCED[];

/* Mark a registration unreachable (the first reason is kept) and fail its queued emails
 * ("address bounced"); its place is kept. 1 newly unreachable, 0 already, <0 error. */
int outbox_mark_unreachable(db_t *db, int64_t registration_id, const char *reason, int64_t now);

/* The coordinators' `unreachable` email (meccd(8), WHAT A SCAN DOES): its occasion is
 * "YYYY-MM-DD #N" (the Nth address of roster_to), the local day it was queued, and it lists the registrations
 * whose unreachable_told (the moment they were told) falls on that day. The bounds of
 * that day: [*from, *to). -EINVAL for an occasion that does not begin with a date. */
int outbox_unreachable_day(const char *occasion, int64_t *from, int64_t *to);
/* Those registrations, soonest session first, with what the email says of them. */
int outbox_unreachable_list(db_t *db, int64_t from, int64_t to, mail_unreachable_t **ret, size_t *ret_n);

/* Gather what the email `key` speaks of as of `now` and render it (delivery, and `meccctl
 * preview`). -ENOENT when the session or registration is gone, -EINVAL (with *ret_err when
 * a template is at fault) when it cannot be built. Caller owns *ret. */
int outbox_build(db_t *db, const config_t *c, const templates_t *t, const mail_key_t *key,
                 int64_t now, char **ret, size_t *ret_size, char **ret_err);

int64_t outbox_backoff(unsigned attempts);

/* A row claimed for sending, rendered as of its claim. */
typedef struct outbox_row {
        struct outbox_row *next;   /* for the caller's lists */
        void *userdata;            /* for the caller */
        int64_t id, session_id, registration_id, first_attempt_at;
        kind_t kind;
        unsigned attempts;         /* before this one */
        char *recipient, *message_id, *body;
        size_t body_size;
} outbox_row_t;
outbox_row_t *outbox_row_free(outbox_row_t *w);
/* One journal line about a row: "joining_link email 7 sent", with its fields. */
void outbox_log(int prio, const char *message_id, const outbox_row_t *w, const char *what,
                const char *why);

/* What became of an attempt, to be recorded. */
typedef struct {
        int64_t id;
        mail_status_t status;      /* MAIL_QUEUED: try again at next_at */
        bool attempted;            /* it counts as an attempt */
        int64_t at;                /* sent_at for MAIL_SENT, next_attempt_at for MAIL_QUEUED */
        char *error;               /* owned; NULL for none */
        int64_t unreachable;       /* a registration whose address the relay refused for good */
} outbox_outcome_t;
void outbox_outcome_clear(outbox_outcome_t *o);

typedef struct {
        unsigned expired, failed;
} outbox_claim_stats_t;

/* In one transaction: record the outcomes, release the given rows (claimed, never sent),
 * then claim up to max due rows, drop those no longer true (expired), render the rest
 * (failed when they cannot be built) and return them, oldest due first. Claiming is
 * atomic: a row is claimed by one process only. max 0: record and release only. */
int outbox_claim(db_t *db, const config_t *c, const templates_t *t, int64_t now, size_t max,
                 const outbox_outcome_t *outcomes, size_t n_outcomes, const int64_t *release,
                 size_t n_release, outbox_row_t **ret, outbox_claim_stats_t *stats);

/* Outcomes known but not yet in the database, in a file beside it (DB-unrecorded): the
 * engine appends each as it is known (one write, no fsync: like a commit at
 * synchronous=NORMAL, it outlives a kill), records them in the database a batch at a time,
 * then empties the file. outbox_recover() records what a crash or a locked database left
 * there. open: a descriptor or negative errno; append: one line, one write. */
int outbox_unrecorded_open(db_t *db);
int outbox_unrecorded_append(int fd, const outbox_outcome_t *o);
int outbox_unrecorded_clear(int fd);
/* Close it; an empty file is removed. */
int outbox_unrecorded_close(db_t *db, int fd);
/* The same for outcomes never appended (no file open): appended, fsynced, closed. */
int outbox_save_unrecorded(db_t *db, const outbox_outcome_t *v, size_t n);

/* db_backup() with the outcomes the sender has not yet recorded written into the copy: a
 * backup taken while meccd sends holds every email sent before it as sent. */
int outbox_backup(db_t *db, const char *path, bool force, char **ret_err);

/* At start, with no other meccd on the database: the outcomes left unrecorded (above) are
 * recorded, and rows left claimed by a crash are due again now (they keep their
 * Message-ID). Returns the number of rows made due again. */
int outbox_recover(db_t *db, int64_t now);

/* Whether any row is due at `now` (1), none (0), or negative errno. */
int outbox_any_due(db_t *db, int64_t now);

/* Counts for STATUS= and `meccctl status`. */
int outbox_counts(db_t *db, long *queued, long *failed);
