/* deliver.h - the delivery engine in the event loop: claims due outbox rows in batches,
 * hands them to SMTP on up to `connections` connections within `max_per_minute`, and
 * records what became of each, a batch at a time (meccd(8), DELIVERY). */
#pragma once
#include <stdbool.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "db.h"
#include "render.h"

typedef struct deliver deliver_t;

typedef struct {
        unsigned sent, deferred, failed, expired;
        bool server_down;  /* the relay is down or refuses us: the rest waits for the next scan */
} deliver_stats_t;

/* Delivery runs in the event loop e: connections, timers and the rate limit live there.
 * The process must be the only one sending from db (see db_lock_sender()). */
deliver_t *deliver_new(db_t *db, const config_t *c, const templates_t *t, sd_event *e);
/* Abandons transfers in flight: their rows are retried at the next start. Outcomes the
 * database would not take are saved beside it (outbox_save_unrecorded()). */
deliver_t *deliver_free(deliver_t *d);

/* New settings after a reload; connections are rebuilt once the current ones are idle. */
void deliver_reconfigure(deliver_t *d, const config_t *c, const templates_t *t);

/* After a scan: forget an earlier "server down" and start sending what is due. */
void deliver_kick(deliver_t *d);
/* SIGTERM: start nothing new; transfers in flight finish and are recorded. */
void deliver_stop(deliver_t *d);
/* Transfers in flight, outcomes not yet recorded, or a due row waiting for a timer. */
bool deliver_busy(const deliver_t *d);
unsigned deliver_in_flight(const deliver_t *d);
/* What was sent, deferred, failed or dropped since the last call; resets the counts. */
deliver_stats_t deliver_take_stats(deliver_t *d);
/* Called whenever delivery becomes idle (for shutdown and --once). */
void deliver_on_idle(deliver_t *d, void (*fn)(void *), void *userdata);
