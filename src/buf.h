/* buf.h - a growing byte buffer for the pure builders (message, ics): appends never fail
 * one by one; running out of memory is noticed once, at the end, through `oom`. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

typedef struct {
        char *data;  /* NUL-terminated once anything was put; owned by the caller */
        size_t size, alloc;
        bool oom;
} buf_t;

void buf_put(buf_t *b, const void *p, size_t n);
void buf_puts(buf_t *b, const char *s);
void buf_putc(buf_t *b, char c);
/* Short fixed-format fields only (up to 255 bytes): longer output sets oom. */
void buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
