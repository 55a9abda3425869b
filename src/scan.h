/* scan.h - the steps of a scan (meccd(8), WHAT A SCAN DOES), each in its own
 * transaction, in order. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "config.h"
#include "db.h"

/* Registrations admitted per query: a bound on memory, not on work (a step goes on
 * until none is left). */
#define SCAN_BATCH 512
/* Registrations admitted per transaction: a mass import is admitted a slice at a time,
 * each committed, with the event loop (watchdog, signals) run between slices. */
#define SCAN_SLICE 8192
#define SCAN_SLICE_USEC (250 * USEC_PER_MSEC) /* or this long, whichever comes first */

typedef enum scan_step {
        SCAN_CHECK,     /* sessions the website wrote or changed: held back, or told */
        SCAN_ADMIT,
        SCAN_PROMOTE,
        SCAN_CLOSE,
        SCAN_REMIND,
        SCAN_JOIN,
        SCAN_FOLLOW_UP,
        SCAN_CANCEL,
        SCAN_CHANGE,
        SCAN_FORGET,
        SCAN_TELL,      /* the coordinators hear of addresses refused for good */
        _SCAN_STEP_MAX,
} scan_step_t;

/* What a scan did, for its journal line. */
typedef struct {
        unsigned booked, waitlisted, late, invalid;
        unsigned promoted, closed, queued, done, erased;
} scan_stats_t;

/* Every step in order, each in its own transaction(s). A step that meets a locked
 * database (-EBUSY) is rolled back and the scan stops there: the next scan picks it up,
 * nothing is lost. stats may be NULL. */
int scan_run(db_t *db, const config_t *c, int64_t now, scan_stats_t *stats);

/* Go on with the scan from *cursor (0 to begin): one step, or one slice of a long one,
 * in its own transaction. 1 when there is more (call again; the event loop may run in
 * between), 0 when the scan is complete, negative errno when a step failed (rolled back
 * and logged; the cursor stays on it, so calling again tries it again). */
int scan_continue(db_t *db, const config_t *c, int64_t now, scan_step_t *cursor, scan_stats_t *stats);

/* One step (or slice), inside the caller's transaction; adds to *stats (may be NULL).
 * 1 when a slice was done and more of the step is left. */
int scan_step(db_t *db, const config_t *c, int64_t now, scan_step_t step, scan_stats_t *stats);

static inline int scan_close(db_t *db, const config_t *c, int64_t now, scan_stats_t *stats)
{
        return scan_step(db, c, now, SCAN_CLOSE, stats);
}

/* "3 booked, 1 waitlisted, 12 queued": the non-zero figures, or "" when nothing happened. */
void scan_stats_format(const scan_stats_t *s, char *buf, size_t n);

/* A fresh 128-bit URL-safe token (22 characters + NUL). */
int scan_new_token(char ret[23]);
