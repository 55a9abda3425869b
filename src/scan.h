/* scan.h - the steps of a scan (SPEC 5), each in its own transaction, in spec order. */
#pragma once
#include <stdint.h>

#include "config.h"
#include "db.h"

typedef struct {
        unsigned admitted, booked, waitlisted, late, invalid;
        unsigned promoted, closed, queued, done, erased;
} scan_stats_t;

/* Every step in order. A step that meets a locked database (-EBUSY) is rolled back and
 * the scan stops there: the next scan picks it up, nothing is lost. */
int scan_run(db_t *db, const config_t *c, int64_t now, scan_stats_t *stats);

int scan_admit(db_t *db, const config_t *c, int64_t now, scan_stats_t *stats);
int scan_promote(db_t *db, const config_t *c, int64_t now, scan_stats_t *stats);
int scan_close(db_t *db, const config_t *c, int64_t now, scan_stats_t *stats);
int scan_remind(db_t *db, const config_t *c, int64_t now, scan_stats_t *stats);
int scan_join(db_t *db, const config_t *c, int64_t now, scan_stats_t *stats);
int scan_follow_up(db_t *db, const config_t *c, int64_t now, scan_stats_t *stats);
int scan_cancel(db_t *db, const config_t *c, int64_t now, scan_stats_t *stats);
int scan_change(db_t *db, const config_t *c, int64_t now, scan_stats_t *stats);
int scan_forget(db_t *db, const config_t *c, int64_t now, scan_stats_t *stats);

/* A fresh 128-bit URL-safe token (22 characters + NUL). */
int scan_new_token(char ret[23]);
