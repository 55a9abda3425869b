/* outbox.h - one row per email occasion: queueing, delivery state, backoff, expiry. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "db.h"
#include "kind.h"
#include "render.h"
#include <systemd/sd-event.h>

/* Queue one email for an occasion (registration_id 0: a session email such as the roster).
 * 1 queued, 0 already queued for that occasion (the unique index decides), <0 error. */
int outbox_queue(db_t *db, const config_t *c, int64_t session_id, int64_t registration_id,
                 kind_t kind, const char *occasion, const char *recipient, int64_t now);

/* Why a queued email would no longer be true at `now` (SPEC 5, expiry), or NULL when it
 * still is. Delivery drops such a row as expired; `meccctl upcoming` leaves it out. */
const char *outbox_stale(db_t *db, const config_t *c, int64_t session_id, int64_t registration_id,
                         kind_t kind, const char *recipient, int64_t now);

/* Gather what the email `key` speaks of as of `now` and render it (the daemon, and
 * `meccctl preview`). -ENOENT when the session or registration is gone, -EINVAL (with
 * *ret_err when a template is at fault) when it cannot be built. Caller owns *ret. */
int outbox_build(db_t *db, const config_t *c, const templates_t *t, const mail_key_t *key,
                 int64_t now, char **ret, size_t *ret_size, char **ret_err);

/* Rows left mid-attempt by a crash are due again now (they keep their Message-ID). */
int outbox_recover(db_t *db, int64_t now);

/* The delay before attempt n+1 after n failed attempts: 1 min doubling to 1 h, then
 * hourly (meccd(8), DELIVERY). Seconds. */
#define OUTBOX_BACKOFF_MIN 60
#define OUTBOX_BACKOFF_MAX 3600
int64_t outbox_backoff(unsigned attempts);

typedef struct outbox outbox_t;

typedef struct {
        unsigned sent, deferred, failed, expired;
        bool server_down;  /* the relay is down or refuses us: the rest waits for the next scan */
} deliver_stats_t;

/* Delivery runs in the event loop e: connections, timers and the rate limit live there. */
outbox_t *outbox_new(db_t *db, const config_t *c, const templates_t *t, sd_event *e);
/* Abandons transfers in flight: their rows are retried at the next start. */
outbox_t *outbox_free(outbox_t *o);

/* New settings after a reload; connections are rebuilt once the current ones are idle. */
void outbox_reconfigure(outbox_t *o, const config_t *c, const templates_t *t);

/* After a scan: forget an earlier "server down" and start sending what is due. */
void outbox_kick(outbox_t *o);
/* SIGTERM: start nothing new; transfers in flight finish. */
void outbox_stop(outbox_t *o);
/* Transfers in flight, or due rows waiting for the rate limit. */
bool outbox_busy(const outbox_t *o);
unsigned outbox_in_flight(const outbox_t *o);
const deliver_stats_t *outbox_stats(const outbox_t *o);
/* Called whenever the outbox becomes idle (for shutdown and --once). */
void outbox_on_idle(outbox_t *o, void (*fn)(void *), void *userdata);

/* Counts for STATUS= and `meccctl status`. */
int outbox_counts(db_t *db, long *queued, long *failed);
