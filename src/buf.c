/* buf.c - see buf.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

#define FIRST_ALLOC 256

void buf_free(buf_t *b)
{
        free(b->data);
        *b = BUF_INIT(b->max);
}

void buf_reset(buf_t *b)
{
        b->len = 0;
        if (b->data)
                b->data[0] = '\0';
}

/* Room for n more bytes and the NUL, or the sticky error. */
static bool grow(buf_t *b, size_t n)
{
        size_t need, a;
        char *q;

        if (b->error)
                return false;
        if (n > b->max || b->len > b->max - n) {
                b->error = -E2BIG;
                return false;
        }
        need = b->len + n + 1;
        if (need <= b->alloc)
                return true;
        a = b->alloc ? b->alloc : FIRST_ALLOC;
        while (a < need)
                a = a > b->max / 2 ? b->max + 1 : a * 2;
        q = realloc(b->data, a);
        if (!q) {
                b->error = -ENOMEM;
                return false;
        }
        b->data = q;
        b->alloc = a;
        return true;
}

/* Bytes (with the NUL) that fit without growing or passing the bound. */
static size_t room(const buf_t *b)
{
        size_t r;

        if (b->error || !b->data)
                return 0;
        r = b->alloc - b->len; /* at least 1: the NUL always has its place */
        return r - 1 <= b->max - b->len ? r : b->max - b->len + 1;
}

void buf_put(buf_t *b, const void *p, size_t n)
{
        if (n == 0 || (n >= room(b) && !grow(b, n)))
                return;
        memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
}

void buf_puts(buf_t *b, const char *s)
{
        buf_put(b, s, strlen(s));
}

void buf_putc(buf_t *b, char c)
{
        if (room(b) < 2 && !grow(b, 1))
                return;
        b->data[b->len++] = c;
        b->data[b->len] = '\0';
}

/* Formatted straight into the room there is; measured and formatted again only when it
 * does not fit. */
void buf_printf(buf_t *b, const char *fmt, ...)
{
        size_t r = room(b);
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(r ? b->data + b->len : NULL, r, fmt, ap);
        va_end(ap);
        if (n < 0) {
                if (r)
                        b->data[b->len] = '\0';
                if (!b->error)
                        b->error = -EINVAL;
                return;
        }
        if ((size_t) n < r) {
                b->len += (size_t) n;
                return;
        }
        if (r)
                b->data[b->len] = '\0';
        if (n == 0 || !grow(b, (size_t) n))
                return;
        va_start(ap, fmt);
        (void) vsnprintf(b->data + b->len, (size_t) n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t) n;
}

const char *buf_str(const buf_t *b)
{
        return b->data && !b->error ? b->data : "";
}

size_t buf_len(const buf_t *b)
{
        return b->error ? 0 : b->len;
}

int buf_error(const buf_t *b)
{
        return b->error;
}

int buf_steal(buf_t *b, char **ret, size_t *ret_len)
{
        char *s;
        int r = b->error;

        if (r == 0 && !b->data && !grow(b, 0))
                r = b->error;
        if (r < 0) {
                buf_free(b);
                return r;
        }
        b->data[b->len] = '\0';
        s = b->data;
        if (ret_len)
                *ret_len = b->len;
        *ret = s;
        *b = BUF_INIT(b->max);
        return 0;
}

int array_grow(void **array, size_t *cap, size_t need, size_t size)
{
        size_t n = *cap ? *cap : 8;
        void *a;

        if (need <= *cap)
                return 0;
        while (n < need)
                n *= 2;
        a = reallocarray(*array, n, size);
        if (!a)
                return -ENOMEM;
        *array = a;
        *cap = n;
        return 0;
}
