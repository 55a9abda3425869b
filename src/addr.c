/* addr.c - email address checks. Pure: no I/O, no logging. */
#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ADDR_MAX 254
#define LOCAL_MAX 64
#define LABEL_MAX 63

static bool is_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 5322 atext */
static bool is_atext(char c) {
        return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* Printable ASCII without space: everything else is refused everywhere in an address. */
static bool is_graph(char c) {
        return c > ' ' && c < 0x7f;
}

/* Length of a dot-atom local part at s (stops at the first byte that cannot belong to it),
 * or -1 when the dots are misplaced. */
static long scan_dot_atom(const char *s) {
        const char *p = s;

        for (;;) {
                const char *start = p;

                while (is_atext(*p))
                        p++;
                if (p == start)
                        return -1; /* empty atom: leading, trailing or doubled dot */
                if (*p != '.')
                        return p - s;
                p++;
        }
}

/* Length of a quoted local part at s, quotes included, or -1. Commas and '@' are fine
 * inside the quotes (RFC 5321); angle brackets are not, because a receiver that splits
 * "Name <addr>" naively would cut the address there. */
static long scan_quoted(const char *s) {
        const char *p = s + 1;

        for (;;) {
                if (*p == '"')
                        return p + 1 - s;
                if (*p == '\\')
                        p++;
                if (!is_graph(*p) || *p == '<' || *p == '>')
                        return -1;
                p++;
        }
}

static bool hostname_valid(const char *d) {
        const char *p = d;

        for (;;) {
                const char *start = p;

                while (is_alnum(*p) || *p == '-')
                        p++;
                if (p == start || p - start > LABEL_MAX)
                        return false;
                if (*start == '-' || p[-1] == '-')
                        return false;
                if (*p == '\0')
                        return true;
                if (*p != '.')
                        return false;
                p++;
        }
}

/* "[192.0.2.1]" or "[IPv6:2001:db8::1]" */
static bool literal_valid(const char *d) {
        char buf[INET6_ADDRSTRLEN + sizeof("IPv6:")];
        unsigned char bin[sizeof(struct in6_addr)];
        size_t n = strlen(d);

        if (n < 3 || d[n - 1] != ']' || n - 2 >= sizeof(buf))
                return false;
        memcpy(buf, d + 1, n - 2);
        buf[n - 2] = '\0';

        if (strncmp(buf, "IPv6:", 5) == 0)
                return inet_pton(AF_INET6, buf + 5, bin) == 1;
        return inet_pton(AF_INET, buf, bin) == 1;
}

bool addr_valid(const char *s) {
        long local;

        if (!s || strlen(s) > ADDR_MAX)
                return false;

        local = s[0] == '"' ? scan_quoted(s) : scan_dot_atom(s);
        if (local < 0 || local > LOCAL_MAX || s[local] != '@')
                return false;

        s += local + 1;
        if (s[0] == '[')
                return literal_valid(s);
        return hostname_valid(s);
}

static bool has_control(const char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < ' ' || *s == 0x7f)
                        return true;
        return false;
}

static bool is_space(char c) {
        return c == ' ' || c == '\t';
}

/* Copy [s, e) without surrounding blanks; NULL when nothing is left. */
static int strndup_trimmed(const char *s, const char *e, char **ret) {
        char *t = NULL;

        while (s < e && is_space(*s))
                s++;
        while (e > s && is_space(e[-1]))
                e--;
        if (e > s) {
                t = strndup(s, e - s);
                if (!t)
                        return -ENOMEM;
        }
        *ret = t;
        return 0;
}

/* Display name before '<': one quoted string or a plain phrase. A plain phrase may not hold
 * the characters that would make it a list or a second address. */
static int parse_display(const char *s, const char *e, char **ret) {
        char *d, *q;
        const char *p;
        bool closed;

        while (s < e && is_space(*s))
                s++;
        if (s == e || *s != '"') {
                for (p = s; p < e; p++)
                        if (strchr("\",;:<>@[]\\", *p))
                                return -EINVAL;
                return strndup_trimmed(s, e, ret);
        }

        d = malloc(e - s);
        if (!d)
                return -ENOMEM;
        q = d;
        for (p = s + 1; p < e && *p != '"'; p++) {
                if (*p == '\\' && p + 1 < e)
                        p++;
                *q++ = *p;
        }
        *q = '\0';
        closed = p < e;
        if (closed) /* only blanks may follow the closing quote */
                for (p++; p < e && is_space(*p); p++)
                        ;
        if (!closed || p < e) {
                free(d);
                return -EINVAL;
        }
        if (q == d) {
                free(d);
                d = NULL;
        }
        *ret = d;
        return 0;
}

/* Position of the '<' that opens the address, skipping a quoted display name. */
static const char *find_open_angle(const char *s) {
        bool quoted = false;

        for (; *s; s++) {
                if (quoted && *s == '\\' && s[1])
                        s++;
                else if (*s == '"')
                        quoted = !quoted;
                else if (!quoted && *s == '<')
                        return s;
        }
        return NULL;
}

int addr_parse_mailbox(const char *s, char **ret_display, char **ret_addr) {
        const char *start, *end, *lt;
        char *display = NULL, *addr = NULL;
        int r;

        if (!s || has_control(s))
                return -EINVAL;

        start = s;
        end = s + strlen(s);
        while (start < end && is_space(*start))
                start++;
        while (end > start && is_space(end[-1]))
                end--;

        if (end > start && end[-1] == '>') {
                lt = find_open_angle(start);
                if (!lt || lt >= end - 1)
                        return -EINVAL;
                r = parse_display(start, lt, &display);
                if (r < 0)
                        goto out;
                start = lt + 1;
                end--;
        }

        r = strndup_trimmed(start, end, &addr);
        if (r < 0)
                goto out;
        if (!addr || !addr_valid(addr)) {
                r = -EINVAL;
                goto out;
        }

        *ret_display = display;
        *ret_addr = addr;
        return 0;
out:
        free(display);
        free(addr);
        return r;
}
