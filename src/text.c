/* text.c - checks and reading of outside text. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "text.h"

static bool is_control(unsigned char c)
{
        return c < ' ' || c == 0x7f;
}

bool text_is_line(const char *s)
{
        if (!s || !*s)
                return false;
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (is_control(*p))
                        return false;
        return true;
}

bool text_is_url(const char *s)
{
        if (!text_is_line(s) || strchr(s, ' '))
                return false;
        return strncmp(s, "https://", 8) == 0 || strncmp(s, "http://", 7) == 0;
}

char *text_one_line(const char *s)
{
        char *out = strdup(s ? s : ""), *w = out;

        if (!out)
                return NULL;
        for (const char *p = out; *p; p++) {
                if (p[0] == '\r' && p[1] == '\n')
                        continue;
                *w++ = is_control((unsigned char) *p) ? ' ' : *p;
        }
        *w = '\0';
        return out;
}

size_t text_utf8_decode(const char *s, size_t n, uint32_t *ret_cp)
{
        const unsigned char *u = (const unsigned char *) s;
        uint32_t cp, min;
        size_t len;

        if (n == 0)
                return 0;
        if (u[0] < 0x80)
                len = 1, cp = u[0], min = 0;
        else if ((u[0] & 0xe0) == 0xc0)
                len = 2, cp = u[0] & 0x1f, min = 0x80;
        else if ((u[0] & 0xf0) == 0xe0)
                len = 3, cp = u[0] & 0x0f, min = 0x800;
        else if ((u[0] & 0xf8) == 0xf0)
                len = 4, cp = u[0] & 0x07, min = 0x10000;
        else
                return 0;
        if (len > n)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((u[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (u[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        if (ret_cp)
                *ret_cp = cp;
        return len;
}

bool text_utf8_valid(const char *s, size_t n)
{
        for (size_t i = 0, len; i < n; i += len) {
                len = text_utf8_decode(s + i, n - i, NULL);
                if (len == 0)
                        return false;
        }
        return true;
}

int text_read_file(const char *path, size_t max, char **ret, size_t *ret_size)
{
        struct stat sb;
        char *buf = NULL;
        size_t len = 0;
        ssize_t n;
        int fd, r = 0;

        /* O_NONBLOCK: a FIFO must not hang the reader before fstat can refuse it */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &sb) < 0) {
                r = -errno;
                goto out;
        }
        if (!S_ISREG(sb.st_mode)) {
                r = -EINVAL;
                goto out;
        }
        if ((size_t) sb.st_size > max) {
                r = -EFBIG;
                goto out;
        }
        buf = malloc(max + 1);
        if (!buf) {
                r = -ENOMEM;
                goto out;
        }
        /* the size can change while we read: the bound is on what is read */
        while ((n = read(fd, buf + len, max + 1 - len)) != 0) {
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        goto out;
                }
                len += (size_t) n;
                if (len > max) {
                        r = -EFBIG;
                        goto out;
                }
        }
        buf[len] = '\0';
        if (!ret_size && strlen(buf) != len) {
                r = -EBADMSG;
                goto out;
        }
        *ret = buf;
        if (ret_size)
                *ret_size = len;
        buf = NULL;
out:
        free(buf);
        close(fd);
        return r;
}

static bool local_char(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               (c && strchr("!#$%&'*+/=?^_`{|}~.-", c)) || (unsigned char) c >= 0x80;
}

static bool domain_char(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '.' || c == '[' || c == ']' || c == ':' || (unsigned char) c >= 0x80;
}

char *text_redact_addresses(const char *s)
{
        size_t n = s ? strlen(s) : 0, o = 0, i = 0;
        /* "[address]" is never longer than what it replaces plus its 9 bytes per '@' */
        size_t cap = n + 1;
        char *ret;

        for (size_t k = 0; k < n; k++)
                cap += s[k] == '@' ? 9 : 0;
        if (!(ret = malloc(cap)))
                return NULL;
        while (i < n) {
                size_t at, l, e;

                if (s[i] != '@') {
                        ret[o++] = s[i++];
                        continue;
                }
                at = i;
                /* back over the local part already copied: bare, or a quoted string */
                l = o;
                if (l > 0 && ret[l - 1] == '"') {
                        size_t q = l - 1;

                        while (q > 0 && ret[q - 1] != '"')
                                q--;
                        l = q > 0 ? q - 1 : l;
                } else
                        while (l > 0 && local_char(ret[l - 1]))
                                l--;
                for (e = at + 1; e < n && domain_char(s[e]); e++)
                        ;
                /* a domain ends before a trailing dot or colon ("... to a@b.org." or "a@b:") */
                while (e > at + 1 && (s[e - 1] == '.' || s[e - 1] == ':'))
                        e--;
                if (l == o || e == at + 1) {
                        ret[o++] = s[i++];
                        continue;
                }
                o = l;
                memcpy(ret + o, "[address]", 9);
                o += 9;
                i = e;
        }
        ret[o] = '\0';
        return ret;
}
