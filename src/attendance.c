/* attendance.c - the meeting platforms' attendance exports, read. Teams writes UTF-16 LE
 * with a byte-order mark, tab-separated, a summary block above the participants table
 * and more sections below it; Zoom writes UTF-8 CSV, sometimes with the meeting's summary
 * first, and one row per join. Neither is recognised by its file name: the header row of
 * the table says which it is, wherever it is. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "attendance.h"
#include "buf.h"
#include "text.h"

#define MAX_PEOPLE 10000        /* a live session is dozens; this is a wrong file */
#define MAX_FIELDS 64

static int fail(char **ret_why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(char **ret_why, const char *fmt, ...)
{
        va_list ap;

        if (ret_why) {
                free(*ret_why);
                va_start(ap, fmt);
                if (vasprintf(ret_why, fmt, ap) < 0)
                        *ret_why = NULL;
                va_end(ap);
        }
        return -EBADMSG;
}

const char *attendance_format_name(attendance_format_t f)
{
        switch (f) {
        case ATTENDANCE_TEAMS: return "Microsoft Teams attendance report";
        case ATTENDANCE_ZOOM: return "Zoom participants export";
        case ATTENDANCE_PLAIN: return "email,minutes list";
        }
        return "unknown";
}

attendance_t *attendance_free(attendance_t *a)
{
        if (!a)
                return NULL;
        for (size_t i = 0; i < a->n; i++) {
                free(a->rows[i].email);
                free(a->rows[i].name);
        }
        free(a->rows);
        free(a);
        return NULL;
}

/* ---- text ------------------------------------------------------------------------------ */

static void put_utf8(buf_t *b, uint32_t cp)
{
        char s[4];

        if (cp < 0x80) {
                buf_putc(b, (char) cp);
        } else if (cp < 0x800) {
                s[0] = (char) (0xc0 | cp >> 6);
                s[1] = (char) (0x80 | (cp & 0x3f));
                buf_put(b, s, 2);
        } else if (cp < 0x10000) {
                s[0] = (char) (0xe0 | cp >> 12);
                s[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
                s[2] = (char) (0x80 | (cp & 0x3f));
                buf_put(b, s, 3);
        } else {
                s[0] = (char) (0xf0 | cp >> 18);
                s[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
                s[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
                s[3] = (char) (0x80 | (cp & 0x3f));
                buf_put(b, s, 4);
        }
}

static int from_utf16(const unsigned char *p, size_t n, bool le, char **ret, size_t *ret_n,
                      char **ret_why)
{
        buf_t b = BUF_INIT(ATTENDANCE_MAX_SIZE * 2);

        if (n % 2)
                n--; /* a stray last byte: an editor's trailing newline */
        for (size_t i = 0; i + 1 < n; i += 2) {
                uint32_t u = le ? (uint32_t) (p[i] | p[i + 1] << 8) : (uint32_t) (p[i] << 8 | p[i + 1]);

                if (u >= 0xd800 && u < 0xdc00 && i + 3 < n) {
                        uint32_t v = le ? (uint32_t) (p[i + 2] | p[i + 3] << 8)
                                        : (uint32_t) (p[i + 2] << 8 | p[i + 3]);

                        if (v >= 0xdc00 && v < 0xe000) {
                                u = 0x10000 + ((u - 0xd800) << 10) + (v - 0xdc00);
                                i += 2;
                        }
                }
                if ((u >= 0xd800 && u < 0xe000) || u == 0) {
                        buf_free(&b);
                        return fail(ret_why, "it is not valid UTF-16 text (byte %zu)", i);
                }
                put_utf8(&b, u);
        }
        return buf_steal(&b, ret, ret_n);
}

/* The file as UTF-8 text, without its byte-order mark. */
static int decode(const char *data, size_t size, char **ret, size_t *ret_n, char **ret_why)
{
        const unsigned char *p = (const unsigned char *) data;

        if (size >= 2 && p[0] == 0xff && p[1] == 0xfe)
                return from_utf16(p + 2, size - 2, true, ret, ret_n, ret_why);
        if (size >= 2 && p[0] == 0xfe && p[1] == 0xff)
                return from_utf16(p + 2, size - 2, false, ret, ret_n, ret_why);
        /* UTF-16 LE that lost its mark (saved again by a tool): ASCII with NULs between */
        if (size >= 4 && p[0] && !p[1] && p[2] && !p[3])
                return from_utf16(p, size, true, ret, ret_n, ret_why);
        if (size >= 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf) {
                data += 3;
                size -= 3;
        }
        if (memchr(data, '\0', size) || !text_utf8_valid(data, size))
                return fail(ret_why, "it is not UTF-8 or UTF-16 text");
        *ret = malloc(size + 1);
        if (!*ret)
                return -ENOMEM;
        memcpy(*ret, data, size);
        (*ret)[size] = '\0';
        *ret_n = size;
        return 0;
}

/* ---- lines and fields ---------------------------------------------------------------------- */

typedef struct {
        char *f[MAX_FIELDS];
        size_t n;
} fields_t;

static void fields_clear(fields_t *v)
{
        for (size_t i = 0; i < v->n; i++)
                free(v->f[i]);
        v->n = 0;
}

static char *trimmed(const char *s, size_t n)
{
        while (n && (*s == ' ' || *s == '\t'))
                s++, n--;
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
                n--;
        return strndup(s, n);
}

/* One line split at sep, a field in double quotes taking "" as a quote; fields trimmed.
 * A line with a tab is tab-separated (Teams), else comma-separated. */
static int split(const char *line, size_t len, fields_t *ret)
{
        char sep = memchr(line, '\t', len) ? '\t' : ',';
        size_t i = 0;

        ret->n = 0;
        for (;;) {
                char *v;

                while (i < len && line[i] == ' ')
                        i++;
                if (i < len && line[i] == '"') {
                        buf_t b = BUF_INIT(len);
                        int r;

                        for (i++; i < len; i++) {
                                if (line[i] == '"' && i + 1 < len && line[i + 1] == '"')
                                        buf_putc(&b, line[i++]);
                                else if (line[i] == '"')
                                        break;
                                else
                                        buf_putc(&b, line[i]);
                        }
                        i++; /* the closing quote */
                        while (i < len && line[i] != sep)
                                i++; /* what follows it, up to the separator, is dropped */
                        r = buf_steal(&b, &v, NULL);
                        if (r < 0)
                                return r;
                        {
                                char *t = trimmed(v, strlen(v));

                                free(v);
                                v = t;
                        }
                } else {
                        const char *end = memchr(line + i, sep, len - i);
                        size_t n = end ? (size_t) (end - (line + i)) : len - i;

                        v = trimmed(line + i, n);
                        i += n;
                }
                if (!v)
                        return -ENOMEM;
                if (ret->n == MAX_FIELDS) {
                        free(v);
                        return 0; /* columns past these are no column meccd reads */
                }
                ret->f[ret->n++] = v;
                if (i >= len)
                        return 0;
                i++; /* the separator */
        }
}

static bool blank(const fields_t *v)
{
        for (size_t i = 0; i < v->n; i++)
                if (*v->f[i])
                        return false;
        return true;
}

/* The column named like one of names (ignoring case), or -1. */
static int column(const fields_t *h, const char *const *names)
{
        for (size_t i = 0; i < h->n; i++)
                for (size_t k = 0; names[k]; k++)
                        if (strcasecmp(h->f[i], names[k]) == 0)
                                return (int) i;
        return -1;
}

/* ---- values --------------------------------------------------------------------------------- */

long attendance_parse_duration(const char *s)
{
        long total = 0;
        bool any = false;
        char last = 0;

        while (*s) {
                long v = 0;
                int digits = 0;
                char unit;

                while (*s == ' ')
                        s++;
                if (!*s)
                        break;
                while (*s >= '0' && *s <= '9' && digits < 7)
                        v = v * 10 + (*s++ - '0'), digits++;
                if (!digits || !*s || (*s >= '0' && *s <= '9'))
                        return -1;
                unit = (char) tolower((unsigned char) *s++);
                /* each unit once, in order: h, m, s */
                if ((unit != 'h' && unit != 'm' && unit != 's') ||
                    (last && (last == 's' || (last == 'm' && unit != 's') || (last == 'h' && unit == 'h'))))
                        return -1;
                total += v * (unit == 'h' ? 3600 : unit == 'm' ? 60 : 1);
                last = unit;
                any = true;
        }
        return any ? total : -1;
}

/* Whole minutes, as Zoom writes them (a plain list too): seconds, or -1. */
static long parse_minutes(const char *s)
{
        char *end;
        long v;

        if (*s < '0' || *s > '9')
                return -1;
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || *end || v > 100000)
                return -1;
        return v * 60;
}

/* ---- people ------------------------------------------------------------------------------- */

typedef struct {
        attendance_t *a;
        long *seconds;          /* beside a->rows: -1 unknown */
} people_t;

/* Add a row's time to its person, met before or new. */
static int add_person(people_t *p, const char *email, const char *name, long seconds, unsigned line,
                      char **ret_why)
{
        attendance_t *a = p->a;
        size_t i;

        for (i = 0; i < a->n; i++) {
                const attendance_row_t *w = &a->rows[i];

                if (*email ? strcasecmp(w->email, email) == 0
                           : !*w->email && strcasecmp(w->name, name) == 0)
                        break;
        }
        if (i == a->n) {
                attendance_row_t *rows;
                long *secs;

                if (a->n == MAX_PEOPLE)
                        return fail(ret_why, "line %u: more than %d people: this is no attendance list of "
                                    "one session", line, MAX_PEOPLE);
                rows = realloc(a->rows, (a->n + 1) * sizeof(*rows));
                if (!rows)
                        return -ENOMEM;
                a->rows = rows;
                secs = realloc(p->seconds, (a->n + 1) * sizeof(*secs));
                if (!secs)
                        return -ENOMEM;
                p->seconds = secs;
                rows[i] = (attendance_row_t) { strdup(email), strdup(name), -1, line };
                secs[i] = seconds;
                a->n++;
                if (!rows[i].email || !rows[i].name)
                        return -ENOMEM;
                return 0;
        }
        /* a join without a duration: they came, for how long nobody knows */
        p->seconds[i] = p->seconds[i] < 0 || seconds < 0 ? -1 : p->seconds[i] + seconds;
        return 0;
}

/* ---- formats ------------------------------------------------------------------------------- */

static const char *const TEAMS_NAME[] = { "name", "full name", NULL };
static const char *const TEAMS_EMAIL[] = { "email", NULL };
static const char *const TEAMS_DURATION[] = { "in-meeting duration", NULL };
static const char *const ZOOM_NAME[] = { "name (original name)", "name", NULL };
static const char *const ZOOM_EMAIL[] = { "user email", NULL };
static const char *const ZOOM_JOIN[] = { "join time", NULL };
static const char *const ZOOM_DURATION[] = { "duration (minutes)", NULL };
static const char *const PLAIN_EMAIL[] = { "email", NULL };
static const char *const PLAIN_MINUTES[] = { "minutes", NULL };

typedef struct {
        attendance_format_t format;
        int name, email, duration; /* columns; -1: none */
        bool header;               /* the line is a header (a plain list may have none) */
} table_t;

/* Whether this line heads a table meccd reads, and which. */
static bool recognise(const fields_t *h, bool first, table_t *ret)
{
        int e = column(h, TEAMS_EMAIL), d = column(h, TEAMS_DURATION), nm = column(h, TEAMS_NAME);

        if (e >= 0 && d >= 0 && nm >= 0) {
                *ret = (table_t) { ATTENDANCE_TEAMS, nm, e, d, true };
                return true;
        }
        e = column(h, ZOOM_EMAIL);
        d = column(h, ZOOM_DURATION);
        nm = column(h, ZOOM_NAME);
        if (e >= 0 && d >= 0 && nm >= 0 && column(h, ZOOM_JOIN) >= 0) {
                *ret = (table_t) { ATTENDANCE_ZOOM, nm, e, d, true };
                return true;
        }
        /* a plain list is the whole file: its header (or first address) is its first line */
        if (!first || h->n == 0 || h->n > 2)
                return false;
        if (column(h, PLAIN_EMAIL) == 0 && (h->n == 1 || column(h, PLAIN_MINUTES) == 1)) {
                *ret = (table_t) { ATTENDANCE_PLAIN, -1, 0, h->n == 2 ? 1 : -1, true };
                return true;
        }
        if (strchr(h->f[0], '@') && !strchr(h->f[0], ' ')) {
                *ret = (table_t) { ATTENDANCE_PLAIN, -1, 0, h->n == 2 ? 1 : -1, false };
                return true;
        }
        return false;
}

static int read_row(people_t *p, const table_t *t, const fields_t *v, unsigned line, char **ret_why)
{
        const char *email = t->email >= 0 && (size_t) t->email < v->n ? v->f[t->email] : "";
        const char *name = t->name >= 0 && (size_t) t->name < v->n ? v->f[t->name] : "";
        const char *dur = t->duration >= 0 && (size_t) t->duration < v->n ? v->f[t->duration] : "";
        long seconds = -1;

        if (*dur) {
                seconds = t->format == ATTENDANCE_TEAMS ? attendance_parse_duration(dur) : parse_minutes(dur);
                if (seconds < 0)
                        return fail(ret_why, "line %u: \"%s\" is not a duration like %s", line, dur,
                                    t->format == ATTENDANCE_TEAMS ? "1h 23m 5s" : "a number of minutes");
        }
        if (t->format == ATTENDANCE_PLAIN && (!*email || !strchr(email, '@')))
                return fail(ret_why, "line %u: \"%s\" is not an email address", line, email);
        if (!*email && !*name)
                return 0; /* nobody: a row of a spreadsheet's padding */
        return add_person(p, email, name, seconds, line, ret_why);
}

int attendance_parse(const char *data, size_t size, attendance_t **ret, char **ret_why)
{
        people_t p = { NULL, NULL };
        fields_t v = { .n = 0 };
        table_t t = { 0 };
        char *text = NULL;
        size_t len = 0, pos = 0;
        unsigned line = 0;
        bool found = false, first = true;
        int r;

        if (size > ATTENDANCE_MAX_SIZE)
                return fail(ret_why, "it is larger than %d MiB", ATTENDANCE_MAX_SIZE / (1024 * 1024));
        r = decode(data, size, &text, &len, ret_why);
        if (r < 0)
                return r;
        p.a = calloc(1, sizeof(*p.a));
        if (!p.a) {
                r = -ENOMEM;
                goto out;
        }
        while (pos < len) {
                const char *s = text + pos, *nl = memchr(s, '\n', len - pos);
                size_t n = nl ? (size_t) (nl - s) : len - pos;

                pos += n + 1;
                line++;
                if (n && s[n - 1] == '\r')
                        n--;
                fields_clear(&v);
                r = split(s, n, &v);
                if (r < 0)
                        goto out;
                if (!found) {
                        if (blank(&v))
                                continue;
                        found = recognise(&v, first, &t);
                        first = false;
                        if (found && t.header)
                                continue;
                        if (!found)
                                continue;
                }
                /* the table ends at the first blank line: Teams puts more sections after it */
                if (blank(&v))
                        break;
                r = read_row(&p, &t, &v, line, ret_why);
                if (r < 0)
                        goto out;
        }
        if (!found) {
                r = fail(ret_why, "it is not a Teams attendance report, a Zoom participants export or "
                                  "a list of email[,minutes]: no header row like theirs was found");
                goto out;
        }
        p.a->format = t.format;
        for (size_t i = 0; i < p.a->n; i++)
                p.a->rows[i].minutes = p.seconds[i] < 0 ? -1 : p.seconds[i] / 60;
        *ret = p.a;
        p.a = NULL;
        r = 0;
out:
        fields_clear(&v);
        attendance_free(p.a);
        free(p.seconds);
        free(text);
        return r;
}
