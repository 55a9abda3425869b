/* clock.h - the one source of time: the configured zone, offsets, --now.
 *
 * Two units, each in its own place. Moments that the database and the rules speak of
 * (when a session starts, when an email is due, "now") are Unix seconds in an int64_t, as
 * the database stores them. Elapsed time inside the daemon (timers, timeouts, the stop
 * grace) is usec_t, microseconds as systemd counts them; the config's seconds, libcurl's
 * milliseconds and seconds are converted where they are handed over. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint64_t usec_t;
#define USEC_PER_SEC ((usec_t) 1000000)
#define USEC_PER_MSEC ((usec_t) 1000)

/* CLOCK_MONOTONIC, as sd-event's timers count it. */
usec_t clock_monotonic(void);

/* An offset such as "1d12h": days are calendar days in the zone, secs elapsed time. */
typedef struct {
        int days;
        int64_t secs;
} duration_t;

/* Whether tzname is a zone of the tz database: "UTC", or a regular file under $TZDIR
 * (default /usr/share/zoneinfo); "Europe", a directory, is none. Changes nothing. */
bool clock_zone_exists(const char *tzname);
/* Select the zone for every local-time conversion (sets TZ). -EINVAL for a name that
 * cannot be a zone (empty, absolute, with ".."), -ENOENT for one that does not exist. */
int clock_set_zone(const char *tzname);
const char *clock_zone(void);

/* Replace the clock (--now); clock_now() returns it until cleared with -1. */
void clock_set_now(int64_t t);
int64_t clock_now(void);

/* "7d", "48h", "30m", "90s", "1d12h". -EINVAL on anything else or on overflow. */
int clock_parse_duration(const char *s, duration_t *ret);
bool duration_is_zero(const duration_t *d);
/* Whole seconds, days counted as 86400 (for comparisons and backoff, not calendar math). */
int64_t duration_approx_secs(const duration_t *d);

/* t shifted by d (sign +1 or -1); days keep the local wall-clock time across DST. */
int64_t clock_shift(int64_t t, const duration_t *d, int sign);

/* "YYYY-MM-DD HH:MM", "YYYY-MM-DDTHH:MM", optional ":SS", optional "Z" or "+01:00". */
int clock_parse_time(const char *s, int64_t *ret);

/* "Tuesday 22 September 2026" */
void clock_format_date(int64_t t, char *buf, size_t n);
/* "10:30–12:00 BST" (the zone abbreviation of the start) */
void clock_format_time_range(int64_t start, int64_t end, char *buf, size_t n);
/* "10:31" local */
void clock_format_hm(int64_t t, char *buf, size_t n);
/* "2026-09-22 10:30 BST" local, for admins */
void clock_format_local(int64_t t, char *buf, size_t n);
/* "2026-09-22T09:30:00Z" */
void clock_format_iso(int64_t t, char *buf, size_t n);
/* RFC 5322 "Tue, 22 Sep 2026 10:30:00 +0100" in the zone, whatever the locale. -EINVAL
 * for a moment outside the years 1900 to 9999; CLOCK_RFC5322_MAX bytes are enough. */
#define CLOCK_RFC5322_MAX 32
int clock_format_rfc5322(int64_t t, char *buf, size_t n);
