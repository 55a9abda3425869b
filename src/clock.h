/* clock.h - the one source of time: the configured zone, offsets, --now. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An offset such as "1d12h": days are calendar days in the zone, secs elapsed time. */
typedef struct {
        int days;
        int64_t secs;
} duration_t;

/* Select the zone for every local-time conversion (sets TZ). -ENOENT if unknown. */
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
/* RFC 5322 "Tue, 22 Sep 2026 10:30:00 +0100" in the zone */
void clock_format_rfc5322(int64_t t, char *buf, size_t n);
