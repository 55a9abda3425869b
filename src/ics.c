/* ics.c - one session as an RFC 5545 calendar object.
 *
 * Local times use the process's zone (TZ, set by the caller to e->tzid). The VTIMEZONE is
 * read off that zone by watching localtime_r() change offset, so any configured zone gets
 * a correct one without a table of rules here. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "ics.h"
#include "text.h"

#define FOLD_OCTETS 75     /* RFC 5545 3.1 */
#define MAX_CHANGES 64     /* offset changes in the scanned years; real zones have <= 4 a year */
#define SCAN_STEP 86400    /* no zone changes offset twice within a day */
#define ICS_MAX (4u << 20) /* one event's calendar is a few kB */

/* Write one content line, folded at 75 octets without splitting a UTF-8 sequence. */
static void put_line(buf_t *out, const buf_t *line) {
        const char *s = buf_str(line);
        size_t n = buf_len(line), room = FOLD_OCTETS;

        while (n > room) {
                size_t cut = room, bs = 0;

                while (cut > 1 && ((unsigned char) s[cut] & 0xc0) == 0x80)
                        cut--;
                /* keep a TEXT escape such as \n or \, whole: splitting it is legal, but not
                 * every importer unfolds before it unescapes */
                while (bs < cut && s[cut - 1 - bs] == '\\')
                        bs++;
                if (bs % 2 == 1 && cut > 1)
                        cut--;
                buf_put(out, s, cut);
                buf_puts(out, "\r\n ");
                s += cut, n -= cut;
                room = FOLD_OCTETS - 1;
        }
        buf_put(out, s, n);
        buf_puts(out, "\r\n");
}

typedef struct {
        buf_t out, line;
} ics_t;

static void line_end(ics_t *c) {
        put_line(&c->out, &c->line);
        buf_reset(&c->line);
}

static void prop(ics_t *c, const char *name_and_value) {
        buf_puts(&c->line, name_and_value);
        line_end(c);
}

/* RFC 5545 3.3.11 TEXT: escape \ ; , and line breaks; other controls become spaces and
 * invalid UTF-8 becomes U+FFFD. */
static void put_text(buf_t *b, const char *s) {
        size_t n = strlen(s);

        for (size_t i = 0; i < n;) {
                unsigned char c = (unsigned char) s[i];
                size_t len = text_utf8_decode(s + i, n - i, NULL);

                if (len == 0) {
                        buf_puts(b, "\xef\xbf\xbd");
                        i++;
                        continue;
                }
                if (c == '\\' || c == ';' || c == ',') {
                        char esc[2] = { '\\', (char) c };

                        buf_put(b, esc, 2);
                } else if (c == '\r' && i + 1 < n && s[i + 1] == '\n') {
                        /* the LF that follows makes the line break */
                } else if (c == '\n' || c == '\r')
                        buf_puts(b, "\\n");
                else if ((c < 0x20 && c != '\t') || c == 0x7f)
                        buf_puts(b, " ");
                else
                        buf_put(b, s + i, len);
                i += len;
        }
}

static void prop_text(ics_t *c, const char *name, const char *value) {
        buf_puts(&c->line, name);
        buf_puts(&c->line, ":");
        put_text(&c->line, value ? value : "");
        line_end(c);
}

/* A URI keeps its printable ASCII; anything else is percent-encoded, so no byte of it can
 * end the content line. as_text: the same URI as a TEXT value, with \ ; , escaped. */
static void put_uri(buf_t *b, const char *s, bool as_text) {
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                if (*p <= 0x20 || *p >= 0x7f || *p == '"') {
                        buf_printf(b, "%%%02X", *p);
                        continue;
                }
                if (as_text && (*p == '\\' || *p == ';' || *p == ','))
                        buf_putc(b, '\\');
                buf_putc(b, (char) *p);
        }
}

static bool is_utc(const char *tzid) {
        return !tzid || !tzid[0] || strcmp(tzid, "UTC") == 0 || strcmp(tzid, "Etc/UTC") == 0;
}

/* Zone names ("Europe/London", "America/Argentina/Buenos_Aires", "Etc/GMT+5") need no
 * quoting as a parameter value; anything else is refused rather than guessed at. */
static bool tzid_ok(const char *tzid) {
        size_t n = strlen(tzid);

        return n > 0 && n <= 64 && strspn(tzid, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                                "0123456789/_+-.") == n;
}

static bool tm_in_range(const struct tm *tm) {
        return tm->tm_year >= 0 - 1900 + 1 && tm->tm_year <= 9999 - 1900;
}

static int local_tm(int64_t t, struct tm *ret) {
        time_t tt = (time_t) t;

        if ((int64_t) tt != t || !localtime_r(&tt, ret) || !tm_in_range(ret))
                return -EINVAL;
        return 0;
}

static void put_wall(buf_t *b, const struct tm *tm) {
        buf_printf(b, "%04d%02d%02dT%02d%02d%02d", tm->tm_year + 1900, tm->tm_mon + 1,
                   tm->tm_mday, tm->tm_hour, tm->tm_min, tm->tm_sec);
}

static int prop_utc(ics_t *c, const char *name, int64_t t) {
        time_t tt = (time_t) t;
        struct tm tm;

        if ((int64_t) tt != t || !gmtime_r(&tt, &tm) || !tm_in_range(&tm))
                return -EINVAL;
        buf_puts(&c->line, name);
        buf_puts(&c->line, ":");
        put_wall(&c->line, &tm);
        buf_puts(&c->line, "Z");
        line_end(c);
        return 0;
}

static int prop_time(ics_t *c, const char *name, int64_t t, const char *tzid) {
        struct tm tm;
        int r;

        if (is_utc(tzid))
                return prop_utc(c, name, t);
        r = local_tm(t, &tm);
        if (r < 0)
                return r;
        buf_printf(&c->line, "%s;TZID=", name);
        buf_puts(&c->line, tzid);
        buf_puts(&c->line, ":");
        put_wall(&c->line, &tm);
        line_end(c);
        return 0;
}

/* ---- VTIMEZONE ---- */

typedef struct {
        long gmtoff;
        int isdst;
        char name[16];
} zone_state_t;

typedef struct {
        int64_t at;          /* first second of the new state */
        zone_state_t before, after;
} zone_change_t;

static int zone_state(int64_t t, zone_state_t *ret) {
        struct tm tm;
        int r = local_tm(t, &tm);

        if (r < 0)
                return r;
        ret->gmtoff = tm.tm_gmtoff;
        ret->isdst = tm.tm_isdst > 0;
        snprintf(ret->name, sizeof ret->name, "%s", tm.tm_zone ? tm.tm_zone : "");
        return 0;
}

static bool zone_state_eq(const zone_state_t *a, const zone_state_t *b) {
        return a->gmtoff == b->gmtoff && a->isdst == b->isdst && strcmp(a->name, b->name) == 0;
}

/* The first second in (lo, hi] whose state differs from lo's. */
static int zone_bisect(int64_t lo, int64_t hi, const zone_state_t *old, int64_t *ret) {
        while (hi - lo > 1) {
                int64_t mid = lo + (hi - lo) / 2;
                zone_state_t s;
                int r = zone_state(mid, &s);

                if (r < 0)
                        return r;
                if (zone_state_eq(&s, old))
                        lo = mid;
                else
                        hi = mid;
        }
        *ret = hi;
        return 0;
}

/* Every change of offset, DST flag or abbreviation in [from, to). */
static int zone_walk(int64_t from, int64_t to, zone_state_t *ret_initial,
                     zone_change_t *changes, size_t *ret_n);

/* Every email of a run asks about the same zone and years: remember the last answer. */
static int zone_changes(int64_t from, int64_t to, zone_state_t *ret_initial,
                        zone_change_t *changes, size_t *ret_n) {
        static struct {
                bool valid;
                char tz[128];
                int64_t from, to;
                zone_state_t initial;
                zone_change_t changes[MAX_CHANGES];
                size_t n;
        } memo;
        const char *tz = getenv("TZ");
        int r;

        if (!tz)
                tz = "";
        if (memo.valid && memo.from == from && memo.to == to && strcmp(memo.tz, tz) == 0) {
                *ret_initial = memo.initial;
                memcpy(changes, memo.changes, memo.n * sizeof(*changes));
                *ret_n = memo.n;
                return 0;
        }
        r = zone_walk(from, to, ret_initial, changes, ret_n);
        if (r < 0 || strlen(tz) >= sizeof(memo.tz))
                return r;
        memo.valid = true;
        snprintf(memo.tz, sizeof(memo.tz), "%s", tz);
        memo.from = from;
        memo.to = to;
        memo.initial = *ret_initial;
        memcpy(memo.changes, changes, *ret_n * sizeof(*changes));
        memo.n = *ret_n;
        return 0;
}

static int zone_walk(int64_t from, int64_t to, zone_state_t *ret_initial,
                     zone_change_t *changes, size_t *ret_n) {
        zone_state_t prev;
        size_t n = 0;
        int r = zone_state(from, &prev);

        if (r < 0)
                return r;
        *ret_initial = prev;
        for (int64_t t = from + SCAN_STEP; t < to + SCAN_STEP && n < MAX_CHANGES; t += SCAN_STEP) {
                zone_state_t s;
                int64_t at;

                r = zone_state(t, &s);
                if (r < 0)
                        return r;
                if (zone_state_eq(&s, &prev))
                        continue;
                r = zone_bisect(t - SCAN_STEP, t, &prev, &at);
                if (r < 0)
                        return r;
                r = zone_state(at, &s);
                if (r < 0)
                        return r;
                changes[n++] = (zone_change_t) { .at = at, .before = prev, .after = s };
                prev = s;
                t = at; /* the next step looks again from the change itself */
        }
        *ret_n = n;
        return 0;
}

static void put_offset(buf_t *b, long off) {
        long a = off < 0 ? -off : off;

        buf_printf(b, "%c%02ld%02ld", off < 0 ? '-' : '+', a / 3600, a / 60 % 60);
        if (a % 60)
                buf_printf(b, "%02ld", a % 60);
}

/* One STANDARD or DAYLIGHT observance starting at the wall time "start" (local time
 * before the change, as RFC 5545 3.6.5 wants). */
static void observance(ics_t *c, bool daylight, const struct tm *start, long from,
                       const zone_state_t *to) {
        const char *kind = daylight ? "DAYLIGHT" : "STANDARD";

        buf_printf(&c->line, "BEGIN:%s", kind);
        line_end(c);
        buf_puts(&c->line, "DTSTART:");
        put_wall(&c->line, start);
        line_end(c);
        buf_puts(&c->line, "TZOFFSETFROM:");
        put_offset(&c->line, from);
        line_end(c);
        buf_puts(&c->line, "TZOFFSETTO:");
        put_offset(&c->line, to->gmtoff);
        line_end(c);
        if (to->name[0])
                prop_text(c, "TZNAME", to->name);
        buf_printf(&c->line, "END:%s", kind);
        line_end(c);
}

static int64_t year_start_utc(int year) {
        struct tm tm = { .tm_year = year - 1900, .tm_mday = 1 };

        return (int64_t) timegm(&tm);
}

/* Every email of a run writes the same VTIMEZONE: the last one written, for the zone (TZ),
 * TZID and years it was written for. */
static struct {
        char tz[128], tzid[65];
        int64_t from, to;
        char text[4096];
        size_t len; /* 0: nothing remembered */
} vtz_memo;

/* Whether the remembered block was the one for these, and written out. */
static bool vtimezone_remembered(ics_t *c, const char *tzid, int64_t from, int64_t to) {
        const char *tz = getenv("TZ");

        if (vtz_memo.len == 0 || vtz_memo.from != from || vtz_memo.to != to ||
            strcmp(vtz_memo.tz, tz ? tz : "") != 0 || strcmp(vtz_memo.tzid, tzid) != 0)
                return false;
        buf_put(&c->out, vtz_memo.text, vtz_memo.len);
        return true;
}

/* Remember what was written to c->out since offset block, when it fits the memo. */
static void vtimezone_remember(const ics_t *c, const char *tzid, int64_t from, int64_t to,
                               size_t block) {
        const char *tz = getenv("TZ");
        size_t len;

        vtz_memo.len = 0;
        if (buf_error(&c->out) || buf_error(&c->line))
                return;
        len = buf_len(&c->out) - block;
        if (len >= sizeof(vtz_memo.text) ||
            strlen(tz ? tz : "") >= sizeof(vtz_memo.tz) || strlen(tzid) >= sizeof(vtz_memo.tzid))
                return;
        snprintf(vtz_memo.tz, sizeof(vtz_memo.tz), "%s", tz ? tz : "");
        snprintf(vtz_memo.tzid, sizeof(vtz_memo.tzid), "%s", tzid);
        memcpy(vtz_memo.text, buf_str(&c->out) + block, len);
        vtz_memo.from = from;
        vtz_memo.to = to;
        vtz_memo.len = len;
}

/* The observances of the event's years and the year before: a calendar needs the one in
 * force at the event, and listing actual changes makes RRULEs unnecessary. */
static int vtimezone(ics_t *c, const char *tzid, int64_t start, int64_t end) {
        zone_change_t changes[MAX_CHANGES];
        zone_state_t initial;
        struct tm tm_start, tm_end, wall;
        int64_t from, to;
        size_t n = 0, block;
        int r;

        r = local_tm(start, &tm_start);
        if (r < 0)
                return r;
        r = local_tm(end, &tm_end);
        if (r < 0)
                return r;
        if (tm_start.tm_year + 1900 < 2 || tm_end.tm_year + 1900 > 9998)
                return -EINVAL;
        from = year_start_utc(tm_start.tm_year + 1900 - 1);
        to = year_start_utc(tm_end.tm_year + 1900 + 1);
        if (vtimezone_remembered(c, tzid, from, to))
                return 0;
        r = zone_changes(from, to, &initial, changes, &n);
        if (r < 0)
                return r;

        block = buf_len(&c->out);
        prop(c, "BEGIN:VTIMEZONE");
        buf_puts(&c->line, "TZID:");
        buf_puts(&c->line, tzid);
        line_end(c);
        r = local_tm(from, &wall);
        if (r < 0)
                return r;
        observance(c, n > 0 && initial.isdst, &wall, initial.gmtoff, &initial);
        for (size_t i = 0; i < n; i++) {
                time_t before = (time_t) (changes[i].at + changes[i].before.gmtoff);

                /* wall clock just before the change, at the old offset */
                if (!gmtime_r(&before, &wall))
                        return -EINVAL;
                observance(c, changes[i].after.isdst, &wall, changes[i].before.gmtoff,
                           &changes[i].after);
        }
        prop(c, "END:VTIMEZONE");
        vtimezone_remember(c, tzid, from, to, block);
        return 0;
}

/* ---- VEVENT ---- */

/* ORGANIZER;CN="Name":mailto:addr from "Name <addr>" or "addr". CN is a quoted-string,
 * which cannot hold DQUOTE or controls. */
static int organizer(ics_t *c, const char *s) {
        const char *lt = strrchr(s, '<'), *gt = lt ? strchr(lt, '>') : NULL;
        const char *addr = s, *addr_end = s + strlen(s);
        const char *name = NULL, *name_end = NULL;

        if (lt && gt) {
                addr = lt + 1, addr_end = gt;
                name = s, name_end = lt;
                while (name < name_end && (*name == ' ' || *name == '"'))
                        name++;
                while (name_end > name && (name_end[-1] == ' ' || name_end[-1] == '"'))
                        name_end--;
        }
        while (addr < addr_end && *addr == ' ')
                addr++;
        while (addr_end > addr && addr_end[-1] == ' ')
                addr_end--;
        if (addr == addr_end || !memchr(addr, '@', addr_end - addr))
                return -EINVAL;

        buf_puts(&c->line, "ORGANIZER");
        if (name && name < name_end) {
                buf_puts(&c->line, ";CN=\"");
                for (const char *p = name; p < name_end;) {
                        size_t len = text_utf8_decode(p, name_end - p, NULL);

                        if (len == 0) {
                                buf_puts(&c->line, "\xef\xbf\xbd");
                                len = 1;
                        } else if (*p == '"')
                                buf_puts(&c->line, "'");
                        else if ((unsigned char) *p < 0x20 || *p == 0x7f)
                                buf_puts(&c->line, " ");
                        else
                                buf_put(&c->line, p, len);
                        p += len;
                }
                buf_puts(&c->line, "\"");
        }
        buf_puts(&c->line, ":mailto:");
        {
                char *a = strndup(addr, addr_end - addr);

                if (!a)
                        return -ENOMEM;
                put_uri(&c->line, a, false);
                free(a);
        }
        line_end(c);
        return 0;
}

static int vevent(ics_t *c, const ics_event_t *e) {
        int r;

        prop(c, "BEGIN:VEVENT");
        prop_text(c, "UID", e->uid);
        buf_printf(&c->line, "SEQUENCE:%d", e->sequence < 0 ? 0 : e->sequence);
        line_end(c);
        r = prop_utc(c, "DTSTAMP", e->dtstamp);
        if (r < 0)
                return r;
        r = prop_time(c, "DTSTART", e->start, e->tzid);
        if (r < 0)
                return r;
        r = prop_time(c, "DTEND", e->end, e->tzid);
        if (r < 0)
                return r;
        prop_text(c, "SUMMARY", e->summary);
        if (e->description)
                prop_text(c, "DESCRIPTION", e->description);
        if (e->url && e->url[0]) {
                buf_puts(&c->line, "URL:");
                put_uri(&c->line, e->url, false);
                line_end(c);
                /* the same link, as TEXT, so calendars show it where people look */
                buf_puts(&c->line, "LOCATION:");
                put_uri(&c->line, e->url, true);
                line_end(c);
        }
        if (e->organizer && e->organizer[0]) {
                r = organizer(c, e->organizer);
                if (r < 0)
                        return r;
        }
        prop(c, e->cancel ? "STATUS:CANCELLED" : "STATUS:CONFIRMED");
        /* a cancelled event is removed, so it has nothing to remind anyone of */
        if (!e->cancel) {
                prop(c, "BEGIN:VALARM");
                prop(c, "ACTION:DISPLAY");
                prop(c, "TRIGGER:-PT30M");
                prop_text(c, "DESCRIPTION", e->summary);
                prop(c, "END:VALARM");
        }
        prop(c, "END:VEVENT");
        return 0;
}

int ics_build(const ics_event_t *e, char **ret) {
        ics_t c = { .out = BUF_INIT(ICS_MAX), .line = BUF_INIT(ICS_MAX) };
        int r;

        if (!e || !ret || !e->uid || !e->uid[0] || e->end < e->start)
                return -EINVAL;
        if (!is_utc(e->tzid) && !tzid_ok(e->tzid))
                return -EINVAL;
        /* pick up a TZ the caller may have changed since the last conversion */
        tzset();

        prop(&c, "BEGIN:VCALENDAR");
        prop(&c, "PRODID:-//meccd//MECC Training//EN");
        prop(&c, "VERSION:2.0");
        prop(&c, "CALSCALE:GREGORIAN");
        prop(&c, e->cancel ? "METHOD:CANCEL" : "METHOD:PUBLISH");
        if (!is_utc(e->tzid)) {
                r = vtimezone(&c, e->tzid, e->start, e->end);
                if (r < 0)
                        goto out;
        }
        r = vevent(&c, e);
        if (r < 0)
                goto out;
        prop(&c, "END:VCALENDAR");
        r = buf_error(&c.line);
        if (r >= 0)
                r = buf_steal(&c.out, ret, NULL);
out:
        buf_free(&c.out);
        buf_free(&c.line);
        return r;
}
