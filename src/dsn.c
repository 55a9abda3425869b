/* dsn.c - RFC 3464 delivery status notifications, read from one message. The parts that
 * matter are found by the outer multipart/report boundary only: Exchange nests a
 * multipart/alternative human part, whose own boundary lines are simply part of it. The
 * input may be cut short (the mailbox reader fetches a bounded prefix): the delivery-status
 * part comes before the returned message, and a part with no closing boundary ends at the
 * end of the data. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dsn.h"

typedef struct {
        const char *p, *end;
} span_t;

/* The next line of s (without its CR LF or LF), advancing s; false at the end. */
static bool next_line(span_t *s, span_t *line)
{
        const char *nl;

        if (s->p >= s->end)
                return false;
        nl = memchr(s->p, '\n', (size_t) (s->end - s->p));
        line->p = s->p;
        line->end = nl ? nl : s->end;
        s->p = nl ? nl + 1 : s->end;
        if (line->end > line->p && line->end[-1] == '\r')
                line->end--;
        return true;
}

static bool line_blank(span_t l)
{
        for (const char *c = l.p; c < l.end; c++)
                if (*c != ' ' && *c != '\t')
                        return false;
        return true;
}

/* Split s at its first blank line: *head is the header block, s then holds what follows. */
static void split_block(span_t *s, span_t *head)
{
        span_t line;

        head->p = s->p;
        head->end = s->p;
        while (next_line(s, &line)) {
                if (line_blank(line))
                        return;
                head->end = s->p;
        }
}

/* The unfolded value of the first field `name` in a header block, trimmed; NULL when
 * absent; "" on -ENOMEM is not possible: *oom is set instead. */
static char *field_get(span_t block, const char *name, bool *oom)
{
        size_t nlen = strlen(name), n = 0;
        span_t line;
        char *v = NULL;
        bool in = false;

        while (next_line(&block, &line)) {
                bool cont = line.p < line.end && (*line.p == ' ' || *line.p == '\t');

                if (in && !cont)
                        break;
                if (!in) {
                        if (cont || (size_t) (line.end - line.p) <= nlen || line.p[nlen] != ':' ||
                            strncasecmp(line.p, name, nlen) != 0)
                                continue;
                        in = true;
                        line.p += nlen + 1;
                } else /* unfold: a continuation's leading white space is one space */
                        while (line.p < line.end && (*line.p == ' ' || *line.p == '\t'))
                                line.p++;
                char *nv = realloc(v, n + (size_t) (line.end - line.p) + 2);
                if (!nv) {
                        free(v);
                        *oom = true;
                        return NULL;
                }
                v = nv;
                if (n > 0)
                        v[n++] = ' ';
                memcpy(v + n, line.p, (size_t) (line.end - line.p));
                n += (size_t) (line.end - line.p);
        }
        if (!v)
                return NULL;
        v[n] = '\0';
        /* trim, and make every control byte a space: the value may end up in a log line */
        for (char *c = v; *c; c++)
                if ((unsigned char) *c < 0x20 || *c == 0x7f)
                        *c = ' ';
        size_t a = strspn(v, " ");
        memmove(v, v + a, n - a + 1);
        n -= a;
        while (n > 0 && v[n - 1] == ' ')
                v[--n] = '\0';
        return v;
}

/* The media type of a Content-Type value, lower case, into buf. */
static void media_type(const char *ct, char *buf, size_t size)
{
        size_t i = 0;

        for (; ct && *ct && *ct != ';' && *ct != ' ' && *ct != '(' && i + 1 < size; ct++)
                buf[i++] = (char) tolower((unsigned char) *ct);
        buf[i] = '\0';
}

/* The value of parameter `name` of a Content-Type value into buf ("" when absent or too
 * long). Quoted strings and backslash escapes are understood. */
static void param_get(const char *ct, const char *name, char *buf, size_t size)
{
        size_t nlen = strlen(name);
        const char *c = strchr(ct, ';');

        buf[0] = '\0';
        while (c && *c) {
                size_t i = 0;
                bool match;

                c += strspn(c, "; \t");
                match = strncasecmp(c, name, nlen) == 0 && (c[nlen] == '=' || c[nlen] == ' ');
                c += strcspn(c, "=;");
                if (*c != '=')
                        continue;
                c++;
                c += strspn(c, " \t");
                if (*c == '"') {
                        for (c++; *c && *c != '"'; c++) {
                                if (*c == '\\' && c[1])
                                        c++;
                                if (match && i + 1 < size)
                                        buf[i++] = *c;
                        }
                        if (*c)
                                c++;
                } else
                        for (; *c && *c != ';' && *c != ' ' && *c != '\t'; c++)
                                if (match && i + 1 < size)
                                        buf[i++] = *c;
                if (match) {
                        buf[i] = '\0';
                        return;
                }
        }
}

/* The first <...> in a Message-ID value, or NULL. */
static char *angle_id(const char *v)
{
        const char *a = v ? strchr(v, '<') : NULL, *b = a ? strchr(a, '>') : NULL;

        if (!a || !b || b == a + 1)
                return NULL;
        return strndup(a, (size_t) (b - a + 1));
}

/* 1.2.3, each part digits (RFC 3463: class 2, 4 or 5, subject up to 3 digits, detail up
 * to 3), then the end or a space: "5.0.0 (permanent failure)". */
static bool status_ok(const char *s)
{
        for (int part = 0; part < 3; part++) {
                size_t n = strspn(s, "0123456789");

                if (n == 0 || n > 3)
                        return false;
                s += n;
                if (part < 2 && *s++ != '.')
                        return false;
        }
        return *s == '\0' || *s == ' ';
}

static int recipient_add(dsn_t *d, span_t group)
{
        bool oom = false;
        char *action = field_get(group, "Action", &oom), *status = field_get(group, "Status", &oom),
             *final = field_get(group, "Final-Recipient", &oom),
             *orig = field_get(group, "Original-Recipient", &oom),
             *diag = field_get(group, "Diagnostic-Code", &oom);
        dsn_recipient_t *r, *nr;
        int rc = -ENOMEM;

        if (oom)
                goto out;
        if (!action && !final && !orig) { /* the per-message group, or noise */
                rc = 0;
                goto out;
        }
        nr = realloc(d->recipients, (d->n_recipients + 1) * sizeof(*nr));
        if (!nr)
                goto out;
        d->recipients = nr;
        r = &nr[d->n_recipients];
        *r = (dsn_recipient_t) { 0 };
        /* "failed (bad address)" is still failed */
        r->action = strndup(action ? action : "", action ? strcspn(action, " (") : 0);
        if (status && !status_ok(status))
                status[0] = '\0';
        r->status = strndup(status ? status : "", status ? strcspn(status, " ") : 0);
        /* "rfc822; user@example.org", perhaps in angle brackets */
        const char *f = final ? final : orig ? orig : "", *semi = strchr(f, ';');
        if (semi)
                f = semi + 1;
        f += strspn(f, " <");
        r->final_recipient = strndup(f, strcspn(f, " >"));
        r->diagnostic = strdup(diag ? diag : "");
        d->n_recipients++;
        if (!r->action || !r->status || !r->final_recipient || !r->diagnostic)
                goto out;
        for (char *c = r->action; *c; c++)
                *c = (char) tolower((unsigned char) *c);
        rc = 0;
out:
        free(action);
        free(status);
        free(final);
        free(orig);
        free(diag);
        return rc;
}

/* The message/delivery-status body: a per-message group, then one group per recipient. */
static int read_status(dsn_t *d, span_t body)
{
        while (body.p < body.end) {
                span_t group;
                bool oom = false;
                int r;

                split_block(&body, &group);
                if (group.p == group.end)
                        continue;
                if (!d->message_id) {
                        char *v = field_get(group, "Original-Message-ID", &oom);

                        if (oom)
                                return -ENOMEM;
                        d->message_id = angle_id(v);
                        free(v);
                }
                r = recipient_add(d, group);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* One part of the report: its header block and body. */
static int read_part(dsn_t *d, span_t part, bool *saw_status)
{
        span_t head;
        char *ct, type[64];
        bool oom = false;
        int r = 0;

        split_block(&part, &head);
        ct = field_get(head, "Content-Type", &oom);
        if (oom)
                return -ENOMEM;
        media_type(ct, type, sizeof(type));
        if (strcmp(type, "message/delivery-status") == 0 ||
            strcmp(type, "message/global-delivery-status") == 0) {
                *saw_status = true;
                r = read_status(d, part);
        } else if (strcmp(type, "message/rfc822") == 0 || strcmp(type, "text/rfc822-headers") == 0 ||
                   strcmp(type, "message/global-headers") == 0 || strcmp(type, "message/global") == 0) {
                span_t returned;
                char *v;

                split_block(&part, &returned);
                v = field_get(returned, "Message-ID", &oom);
                if (oom)
                        r = -ENOMEM;
                else {
                        char *id = angle_id(v);
                        /* the returned message's own header beats an Original-Message-ID */
                        if (id) {
                                free(d->message_id);
                                d->message_id = id;
                        }
                }
                free(v);
        }
        free(ct);
        return r;
}

int dsn_parse(const char *data, size_t size, dsn_t **ret)
{
        span_t s = { data, data + size }, head, line, part = { NULL, NULL };
        char *ct = NULL, type[64], report[64], boundary[80];
        bool oom = false, saw_status = false, closed = false;
        size_t blen;
        dsn_t *d = NULL;
        int r = 0;

        *ret = NULL;
        if (!data)
                return 0;
        split_block(&s, &head);
        ct = field_get(head, "Content-Type", &oom);
        if (oom)
                return -ENOMEM;
        if (!ct)
                return 0;
        media_type(ct, type, sizeof(type));
        param_get(ct, "report-type", report, sizeof(report));
        param_get(ct, "boundary", boundary, sizeof(boundary));
        if (strcmp(type, "multipart/report") != 0 ||
            (strcasecmp(report, "delivery-status") != 0 && strcasecmp(report, "global-delivery-status") != 0) ||
            boundary[0] == '\0')
                goto out;
        d = calloc(1, sizeof(*d));
        if (!d) {
                r = -ENOMEM;
                goto out;
        }
        blen = strlen(boundary);
        while (!closed) {
                bool more = next_line(&s, &line), delim = false;

                if (more && (size_t) (line.end - line.p) >= blen + 2 && line.p[0] == '-' &&
                    line.p[1] == '-' && memcmp(line.p + 2, boundary, blen) == 0) {
                        const char *t = line.p + 2 + blen;

                        closed = line.end - t >= 2 && t[0] == '-' && t[1] == '-';
                        if (closed)
                                t += 2;
                        delim = true;
                        for (; t < line.end; t++)
                                if (*t != ' ' && *t != '\t')
                                        delim = closed = false; /* a longer boundary */
                }
                if (!more || delim) {
                        if (part.p) {
                                /* the CR LF before a delimiter belongs to it */
                                part.end = more ? line.p : s.end;
                                r = read_part(d, part, &saw_status);
                                if (r < 0)
                                        goto out;
                        }
                        if (!more)
                                break;
                        part.p = s.p;
                }
        }
        if (saw_status && d->n_recipients > 0) {
                *ret = d;
                d = NULL;
                r = 1;
        }
out:
        dsn_free(d);
        free(ct);
        return r;
}

void dsn_free(dsn_t *d)
{
        if (!d)
                return;
        for (size_t i = 0; i < d->n_recipients; i++) {
                free(d->recipients[i].action);
                free(d->recipients[i].status);
                free(d->recipients[i].final_recipient);
                free(d->recipients[i].diagnostic);
        }
        free(d->recipients);
        free(d->message_id);
        free(d);
}

bool dsn_recipient_failed(const dsn_recipient_t *r)
{
        return r && r->action && strcmp(r->action, "failed") == 0 && r->status && r->status[0] == '5';
}
