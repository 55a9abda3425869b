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
