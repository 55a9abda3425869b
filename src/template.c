/* template.c - {{placeholder}} rendering. Pure: no I/O, no logging. */
#include "template.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

/* Longest placeholder name quoted back in an error message; the rest is elided. */
#define SHOWN_NAME_MAX 40
/* the longest value is a roster's list of attendees: far below this for any session */
#define RENDERED_MAX (64u << 20)

static const char *const known[] = {
        "name",          "email",         "session_title", "session_date",  "session_time",
        "join_url",      "elearning_url", "signpost_url",  "feedback_url",  "organisation",
        "cancel_url",    "next_sessions", "token",         "attendees",     "booked_count",
        "capacity",      "seats_left",    "time_to_go",    "reminder_note", "changes",
        "trainer_email", "unreachable",
};

bool template_known(const char *name) {
        if (!name)
                return false;
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
                if (strcmp(known[i], name) == 0)
                        return true;
        return false;
}

/* Text between the characters HTML escapes goes out in one piece. */
static void put_html(buf_t *b, const char *s) {
        for (const char *p = s; *p; p++) {
                size_t run = strcspn(p, "&<>\"'");

                buf_put(b, p, run);
                p += run;
                switch (*p) {
                case '&': buf_puts(b, "&amp;"); break;
                case '<': buf_puts(b, "&lt;"); break;
                case '>': buf_puts(b, "&gt;"); break;
                case '"': buf_puts(b, "&quot;"); break;
                case '\'': buf_puts(b, "&#39;"); break;
                default: return; /* the end */
                }
        }
}

static int set_error(char **ret_err, const char *fmt, ...) {
        va_list ap;
        char *m;
        int r;

        if (!ret_err)
                return -EINVAL;
        va_start(ap, fmt);
        r = vasprintf(&m, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        *ret_err = m;
        return -EINVAL;
}

static unsigned line_of(const char *text, const char *pos) {
        unsigned line = 1;

        for (const char *p = text; p < pos; p++)
                if (*p == '\n')
                        line++;
        return line;
}

static bool is_blank(char c) {
        return c == ' ' || c == '\t';
}

static const tvar_t *find_var(const tvar_t *vars, size_t n_vars, const char *key, size_t n) {
        for (size_t i = 0; i < n_vars; i++)
                if (vars[i].key && strlen(vars[i].key) == n && memcmp(vars[i].key, key, n) == 0)
                        return &vars[i];
        return NULL;
}

/* The placeholder opening at open ("{{"): its name in [*ret_key, +*ret_n) and the text just
 * after its "}}". -EINVAL when it is not closed on the same line. */
static int scan_placeholder(const char *open, const char **ret_key, size_t *ret_n,
                            const char **ret_after) {
        const char *k = open + 2, *close = k, *e;

        while (*close && *close != '\n' && strncmp(close, "}}", 2) != 0)
                close++;
        if (strncmp(close, "}}", 2) != 0)
                return -EINVAL;

        e = close;
        while (k < e && is_blank(*k))
                k++;
        while (e > k && is_blank(e[-1]))
                e--;
        *ret_key = k;
        *ret_n = e - k;
        *ret_after = close + 2;
        return 0;
}

static bool key_known(const char *key, size_t n) {
        char name[SHOWN_NAME_MAX + 1];

        if (n >= sizeof(name))
                return false;
        memcpy(name, key, n);
        name[n] = '\0';
        return template_known(name);
}

static int unknown_error(char **ret_err, const char *key, size_t n, unsigned line) {
        if (n > SHOWN_NAME_MAX)
                return set_error(ret_err, "unknown placeholder {{%.*s...}} on line %u",
                                 SHOWN_NAME_MAX, key, line);
        return set_error(ret_err, "unknown placeholder {{%.*s}} on line %u", (int) n, key, line);
}

int template_render(const char *text, const tvar_t *vars, size_t n_vars, bool html,
                    char **ret, char **ret_err) {
        buf_t b = BUF_INIT(RENDERED_MAX);
        const char *p = text, *open;
        int r;

        while ((open = strstr(p, "{{"))) {
                const char *key, *after;
                const tvar_t *v;
                size_t n;

                buf_put(&b, p, open - p);
                r = scan_placeholder(open, &key, &n, &after);
                if (r < 0) {
                        r = set_error(ret_err, "unclosed {{ on line %u", line_of(text, open));
                        goto out;
                }
                if (!key_known(key, n)) {
                        r = unknown_error(ret_err, key, n, line_of(text, open));
                        goto out;
                }
                v = find_var(vars, n_vars, key, n);
                if (v && v->value) {
                        if (html)
                                put_html(&b, v->value);
                        else
                                buf_puts(&b, v->value);
                }
                p = after;
        }
        buf_puts(&b, p);
        return buf_steal(&b, ret, NULL);
out:
        buf_free(&b);
        return r;
}

static const char *skip_bom(const char *s) {
        return strncmp(s, "\xef\xbb\xbf", 3) == 0 ? s + 3 : s;
}

/* Copy s with CRs dropped before each LF, so the body has the one line end message.h wants;
 * "\r\r\n" comes from converting a CRLF file twice and is one line end too. */
static char *strdup_lf(const char *s) {
        char *d = malloc(strlen(s) + 1), *q = d;

        if (!d)
                return NULL;
        for (; *s; s++) {
                size_t cr = strspn(s, "\r");

                if (cr > 0 && s[cr] == '\n')
                        s += cr;
                *q++ = *s;
        }
        *q = '\0';
        return d;
}

/* End of the line at s, before its CRs; *ret_next is where the next line starts. */
static const char *line_end(const char *s, const char **ret_next) {
        const char *eol = s + strcspn(s, "\n"), *e = eol;

        while (e > s && e[-1] == '\r')
                e--;
        *ret_next = *eol ? eol + 1 : eol;
        return e;
}

int template_split_subject(const char *text, char **ret_subject, char **ret_body, char **ret_err) {
        const char *s = skip_bom(text), *v, *e, *body, *next;
        char *subject = NULL, *b = NULL;
        int r;

        e = line_end(s, &body);
        if (strncasecmp(s, "Subject:", 8) != 0)
                return set_error(ret_err, "line 1 must be \"Subject: ...\"");
        for (v = s + 8; v < e && is_blank(*v); v++)
                ;
        while (e > v && is_blank(e[-1]))
                e--;
        if (e == v)
                return set_error(ret_err, "empty Subject on line 1");
        for (const char *c = v; c < e; c++)
                if (((unsigned char) *c < ' ' && *c != '\t') || *c == 0x7f)
                        return set_error(ret_err, "control character in Subject on line 1");

        if (line_end(body, &next) == body) /* one blank line after the subject */
                body = next;

        subject = strndup(v, e - v);
        b = strdup_lf(body);
        if (!subject || !b) {
                r = -ENOMEM;
                goto out;
        }
        *ret_subject = subject;
        *ret_body = b;
        return 0;
out:
        free(subject);
        free(b);
        return r;
}
