/* buf.h - a growing byte buffer for the pure builders (message, ics, template, csv), after
 * curl's dynbuf: each buffer has a bound on its length, and its members are touched by
 * buf.c alone.
 *
 * Appends never fail one by one: running out of memory, or past the bound, is sticky and
 * noticed once, at the end, by buf_error() or buf_steal(); appends after it do nothing. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

typedef struct {
        /* private: use the functions below */
        char *data;
        size_t len, alloc, max;
        int error;
} buf_t;

/* An empty buffer that refuses to hold more than max bytes. */
#define BUF_INIT(max_len) ((buf_t) { .max = (max_len) })
/* Release the memory; the buffer is empty and usable again (with the same bound). */
void buf_free(buf_t *b);
/* Empty it, keeping its memory and any error. */
void buf_reset(buf_t *b);

void buf_put(buf_t *b, const void *p, size_t n);
void buf_puts(buf_t *b, const char *s);
void buf_putc(buf_t *b, char c);
void buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The contents, NUL-terminated: "" while empty, never NULL; valid until the next append. */
const char *buf_str(const buf_t *b);
size_t buf_len(const buf_t *b);
/* 0, -ENOMEM, or -E2BIG when an append would have passed the bound. */
int buf_error(const buf_t *b);

/* Hand the contents over (NUL-terminated, "" when empty; caller frees) and leave the buffer
 * empty. Fails with buf_error() (the buffer is then freed) or -ENOMEM. */
int buf_steal(buf_t *b, char **ret, size_t *ret_len);

/* Make room in *array (of *cap elements of size bytes) for need elements, doubling: 0, or
 * -ENOMEM with the array as it was. */
int array_grow(void **array, size_t *cap, size_t need, size_t size);
