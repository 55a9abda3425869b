/* buf.c - see buf.h. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

void buf_put(buf_t *b, const void *p, size_t n)
{
        if (b->oom || n == 0)
                return;
        if (n > SIZE_MAX / 4 - b->size) {
                b->oom = true;
                return;
        }
        if (b->size + n + 1 > b->alloc) {
                size_t a = b->alloc ? b->alloc : 1024;
                char *q;

                while (a < b->size + n + 1)
                        a *= 2;
                q = realloc(b->data, a);
                if (!q) {
                        b->oom = true;
                        return;
                }
                b->data = q;
                b->alloc = a;
        }
        memcpy(b->data + b->size, p, n);
        b->size += n;
        b->data[b->size] = 0;
}

void buf_puts(buf_t *b, const char *s)
{
        buf_put(b, s, strlen(s));
}

void buf_putc(buf_t *b, char c)
{
        buf_put(b, &c, 1);
}

void buf_printf(buf_t *b, const char *fmt, ...)
{
        char tmp[256];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(tmp, sizeof tmp, fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t) n >= sizeof tmp) {
                b->oom = true;
                return;
        }
        buf_put(b, tmp, (size_t) n);
}
