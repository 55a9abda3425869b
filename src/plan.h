/* plan.h - when each rule of the scan falls due. The scan and `meccctl upcoming` ask the
 * same questions here, so a dry run cannot drift from what the daemon does. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "db.h"

/* Bookings close: closes_at when set (non-zero), else starts_at minus booking_cutoff. */
int64_t plan_cutoff(const config_t *c, int64_t starts_at, int64_t closes_at);
/* Open and before its cutoff (and its start): a booking made now gets a place or waits
 * for one; after this, it is late. */
bool plan_bookable(const config_t *c, const session_t *s, int64_t now);
/* The moment of e-learning reminder i (config order: largest offset first). */
int64_t plan_reminder_at(const config_t *c, int64_t starts_at, size_t i);
/* The latest reminder whose moment is <= now (and before the start): its index, or -1. */
int plan_due_reminder(const config_t *c, int64_t starts_at, int64_t now);
int64_t plan_joining_at(const config_t *c, int64_t starts_at);
int64_t plan_follow_up_at(const config_t *c, int64_t ends_at); /* 0 when disabled */
int64_t plan_forget_at(const config_t *c, int64_t ends_at);

/* "10d", "1d12h", "30m": the occasion name of a reminder offset. */
void plan_duration_name(const duration_t *d, char *buf, size_t n);

/* The next moment strictly after `after` at which some rule for a session with these
 * times falls due (cutoff, reminders, joining link, start, end, follow-up, erasure);
 * INT64_MAX when none. */
int64_t plan_next_moment(const config_t *c, int64_t starts_at, int64_t ends_at,
                         int64_t closes_at, int64_t after);
