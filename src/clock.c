/* clock.c - local time in the configured zone, offsets on the local calendar, --now. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

static int64_t fake_now = -1;
static char zone[128] = "UTC";

usec_t clock_monotonic(void)
{
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / 1000;
}

/* 0, -EINVAL (no zone name) or -ENOENT (no such zone). */
static int zone_check(const char *tzname)
{
        const char *dir = getenv("TZDIR");
        char path[PATH_MAX];
        struct stat st;

        if (!tzname || !*tzname || strlen(tzname) >= sizeof(zone) || tzname[0] == '/' ||
            strstr(tzname, ".."))
                return -EINVAL;
        if (strcmp(tzname, "UTC") == 0)
                return 0;
        snprintf(path, sizeof(path), "%s/%s", dir ? dir : "/usr/share/zoneinfo", tzname);
        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) || access(path, R_OK) < 0)
                return -ENOENT;
        return 0;
}

bool clock_zone_exists(const char *tzname)
{
        return zone_check(tzname) == 0;
}

int clock_set_zone(const char *tzname)
{
        int r = zone_check(tzname);

        if (r < 0)
                return r;
        strcpy(zone, tzname);
        if (setenv("TZ", zone, 1) < 0)
                return -errno;
        tzset();
        return 0;
}

const char *clock_zone(void)
{
        return zone;
}

void clock_set_now(int64_t t)
{
        fake_now = t;
}

int64_t clock_now(void)
{
        return fake_now >= 0 ? fake_now : (int64_t) time(NULL);
}

int clock_parse_duration(const char *s, duration_t *ret)
{
        duration_t d = { 0, 0 };
        const char *p = s;

        if (!s || !*s)
                return -EINVAL;
        while (*p) {
                long long n = 0;
                const char *start = p;

                while (*p >= '0' && *p <= '9') {
                        if (n > 1000000000LL)
                                return -EINVAL;
                        n = n * 10 + (*p++ - '0');
                }
                if (p == start)
                        return -EINVAL;
                switch (*p++) {
                case 'd':
                        if (n > 100000 || d.days + n > 100000)
                                return -EINVAL;
                        d.days += (int) n;
                        break;
                case 'h': d.secs += n * 3600; break;
                case 'm': d.secs += n * 60; break;
                case 's': d.secs += n; break;
                default: return -EINVAL;
                }
                if (d.secs > 100000LL * 86400)
                        return -EINVAL;
        }
        *ret = d;
        return 0;
}

bool duration_is_zero(const duration_t *d)
{
        return d->days == 0 && d->secs == 0;
}

int64_t duration_approx_secs(const duration_t *d)
{
        return (int64_t) d->days * 86400 + d->secs;
}

int64_t clock_shift(int64_t t, const duration_t *d, int sign)
{
        if (d->days) {
                time_t tt = (time_t) t;
                struct tm tm;

                localtime_r(&tt, &tm);
                tm.tm_mday += sign * d->days;
                tm.tm_isdst = -1;
                t = (int64_t) mktime(&tm);
        }
        return t + sign * d->secs;
}

static int parse_n(const char **p, int digits, int *ret)
{
        int v = 0;

        for (int i = 0; i < digits; i++) {
                if ((*p)[i] < '0' || (*p)[i] > '9')
                        return -EINVAL;
                v = v * 10 + ((*p)[i] - '0');
        }
        *p += digits;
        *ret = v;
        return 0;
}

static int expect(const char **p, char c)
{
        if (**p != c)
                return -EINVAL;
        (*p)++;
        return 0;
}

int clock_parse_time(const char *s, int64_t *ret)
{
        struct tm tm = { 0 };
        const char *p = s;
        int y, mo, d, h = 0, mi = 0, sec = 0, off = 0;
        bool has_zone = false;
        int64_t t;

        if (!s)
                return -EINVAL;
        if (parse_n(&p, 4, &y) < 0 || expect(&p, '-') < 0 || parse_n(&p, 2, &mo) < 0 ||
            expect(&p, '-') < 0 || parse_n(&p, 2, &d) < 0)
                return -EINVAL;
        if (*p == ' ' || *p == 'T') {
                p++;
                if (parse_n(&p, 2, &h) < 0 || expect(&p, ':') < 0 || parse_n(&p, 2, &mi) < 0)
                        return -EINVAL;
                if (*p == ':') {
                        p++;
                        if (parse_n(&p, 2, &sec) < 0)
                                return -EINVAL;
                }
        }
        if (*p == 'Z') {
                p++;
                has_zone = true;
        } else if (*p == '+' || *p == '-') {
                int sign = *p++ == '-' ? -1 : 1, oh, om;

                if (parse_n(&p, 2, &oh) < 0)
                        return -EINVAL;
                if (*p == ':')
                        p++;
                if (parse_n(&p, 2, &om) < 0 || oh > 14 || om > 59)
                        return -EINVAL;
                off = sign * (oh * 3600 + om * 60);
                has_zone = true;
        }
        if (*p || y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
            mi > 59 || sec > 60)
                return -EINVAL;
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = d;
        tm.tm_hour = h;
        tm.tm_min = mi;
        tm.tm_sec = sec;
        tm.tm_isdst = -1;
        if (has_zone)
                t = (int64_t) timegm(&tm) - off;
        else
                t = (int64_t) mktime(&tm);
        /* mktime/timegm normalise 31 February into March, and a local time in the hour
         * skipped when the clocks go forward into the next hour: refuse both */
        if (tm.tm_mday != d || tm.tm_mon != mo - 1 ||
            (!has_zone && sec < 60 && (tm.tm_hour != h || tm.tm_min != mi)))
                return -EINVAL;
        *ret = t;
        return 0;
}

static void local(int64_t t, struct tm *tm)
{
        time_t tt = (time_t) t;

        localtime_r(&tt, tm);
}

void clock_format_date(int64_t t, char *buf, size_t n)
{
        struct tm tm;

        local(t, &tm);
        strftime(buf, n, "%A %-d %B %Y", &tm);
}

void clock_format_time_range(int64_t start, int64_t end, char *buf, size_t n)
{
        struct tm a, b;
        char sa[16], sb[16], z[16];

        local(start, &a);
        local(end, &b);
        strftime(sa, sizeof(sa), "%H:%M", &a);
        strftime(sb, sizeof(sb), "%H:%M", &b);
        strftime(z, sizeof(z), "%Z", &a);
        snprintf(buf, n, "%s\u2013%s %s", sa, sb, z);
}

void clock_format_hm(int64_t t, char *buf, size_t n)
{
        struct tm tm;

        local(t, &tm);
        strftime(buf, n, "%H:%M", &tm);
}

void clock_format_local(int64_t t, char *buf, size_t n)
{
        struct tm tm;

        local(t, &tm);
        strftime(buf, n, "%Y-%m-%d %H:%M %Z", &tm);
}

void clock_format_iso(int64_t t, char *buf, size_t n)
{
        time_t tt = (time_t) t;
        struct tm tm;

        gmtime_r(&tt, &tm);
        strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int clock_format_rfc5322(int64_t t, char *buf, size_t n)
{
        static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
        static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
        time_t tt = (time_t) t;
        struct tm tm;
        long off;

        if ((int64_t) tt != t || !localtime_r(&tt, &tm) || tm.tm_year < 0 ||
            tm.tm_year > 9999 - 1900)
                return -EINVAL;
        off = tm.tm_gmtoff / 60;
        /* built by hand so that no locale can change the day and month names */
        snprintf(buf, n, "%s, %02d %s %04d %02d:%02d:%02d %c%02ld%02ld", days[tm.tm_wday],
                 tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                 tm.tm_sec, off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60);
        return 0;
}
