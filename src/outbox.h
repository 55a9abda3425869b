/* outbox.h - one row per email occasion: queueing, delivery state, backoff, expiry. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "db.h"
#include "render.h"

/* Queue one email for an occasion (registration_id 0: a session email such as the roster).
 * 1 queued, 0 already queued for that occasion (the unique index decides), <0 error. */
int outbox_queue(db_t *db, const config_t *c, int64_t session_id, int64_t registration_id,
                 const char *kind, const char *occasion, const char *recipient, int64_t now);

/* Rows left mid-attempt by a crash are due again now (they keep their Message-ID). */
int outbox_recover(db_t *db, int64_t now);

/* The delay before attempt n+1 after n failed attempts: 1 min doubling to 1 h. */
int64_t outbox_backoff(unsigned attempts);

typedef struct outbox outbox_t;

typedef struct {
        unsigned sent, deferred, failed, expired;
        bool server_down;  /* the relay is down or refuses us: the rest of the batch waits */
        bool rate_limited; /* smtp.max_per_minute reached: call again later */
} deliver_stats_t;

outbox_t *outbox_new(db_t *db, const config_t *c, const templates_t *t);
outbox_t *outbox_free(outbox_t *o);

/* Deliver rows due at `now`, at most `max` of them (0: all). Returns the number of rows
 * handled (>= 0) or a negative errno (-EBUSY: the database is locked, try later). */
int outbox_deliver(outbox_t *o, int64_t now, unsigned max, deliver_stats_t *stats);

/* Counts for STATUS= and `meccctl status`. */
int outbox_counts(db_t *db, long *queued, long *failed);
