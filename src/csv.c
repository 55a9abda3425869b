/* csv.c - RFC 4180 reading (what spreadsheets write) and writing. Pure. */
#include "buf.h"
#include "csv.h"
#include "text.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
        const char *p, *end;
        unsigned line;         /* line of p */
        const char *reason;    /* why the row was refused */
        bool name_field;       /* the reason is about one field: say which */
        size_t field;          /* 1-based field being read */
} cursor_t;

static bool at_eol(const cursor_t *c) {
        return c->p < c->end && (*c->p == '\n' || *c->p == '\r');
}

/* Consume one line end: LF, CRLF, or the lone CR that old Mac spreadsheets write. */
static void skip_eol(cursor_t *c) {
        if (*c->p == '\r' && c->p + 1 < c->end && c->p[1] == '\n')
                c->p++;
        c->p++;
        c->line++;
}

static int fail(cursor_t *c, const char *reason) {
        c->reason = reason;
        return -EINVAL;
}

static int fail_field(cursor_t *c, const char *reason) {
        c->name_field = true;
        return fail(c, reason);
}

static int read_quoted(cursor_t *c, buf_t *b) {
        for (c->p++;; c->p++) {
                if (c->p == c->end)
                        return fail(c, "unterminated quoted field");
                if (*c->p == '"') {
                        if (c->p + 1 == c->end || c->p[1] != '"')
                                break;
                        c->p++;
                } else if (*c->p == '\n' ||
                           (*c->p == '\r' && (c->p + 1 == c->end || c->p[1] != '\n')))
                        c->line++;
                buf_putc(b, *c->p);
        }
        c->p++;
        if (c->p < c->end && *c->p != ',' && !at_eol(c))
                return fail(c, "text after closing quote");
        return 0;
}

static int read_unquoted(cursor_t *c, buf_t *b) {
        for (; c->p < c->end && *c->p != ',' && !at_eol(c); c->p++) {
                if (*c->p == '"')
                        return fail(c, "stray quote in unquoted field");
                buf_putc(b, *c->p);
        }
        return 0;
}

static int read_field(cursor_t *c, char **ret) {
        /* no field is longer than what is left of the input */
        buf_t b = BUF_INIT((size_t) (c->end - c->p));
        int r;

        r = c->p < c->end && *c->p == '"' ? read_quoted(c, &b) : read_unquoted(c, &b);
        if (r >= 0)
                r = buf_error(&b);
        if (r < 0)
                goto out;
        if (memchr(buf_str(&b), '\0', buf_len(&b))) {
                r = fail_field(c, "NUL byte in field");
                goto out;
        }
        if (!text_utf8_valid(buf_str(&b), buf_len(&b))) {
                r = fail_field(c, "invalid UTF-8 in field");
                goto out;
        }
        return buf_steal(&b, ret, NULL); /* an empty field is "", not NULL */
out:
        buf_free(&b);
        return r;
}

static void row_done(csv_row_t *row) {
        for (size_t i = 0; i < row->n_fields; i++)
                free(row->fields[i]);
        free(row->fields);
        row->fields = NULL;
        row->n_fields = 0;
}

static int read_row(cursor_t *c, csv_row_t *ret) {
        csv_row_t row = { .line = c->line };
        size_t cap = 0;
        int r;

        for (;;) {
                r = array_grow((void **) &row.fields, &cap, row.n_fields + 1, sizeof(char *));
                if (r < 0)
                        goto out;
                c->field = row.n_fields + 1;
                r = read_field(c, &row.fields[row.n_fields]);
                if (r < 0)
                        goto out;
                row.n_fields++;
                if (c->p == c->end)
                        break;
                if (at_eol(c)) {
                        skip_eol(c);
                        break;
                }
                c->p++; /* the comma */
        }
        *ret = row;
        return 0;
out:
        row_done(&row);
        return r;
}

static int set_error(char **ret_err, unsigned line, const cursor_t *c) {
        int r;

        if (!ret_err)
                return -EINVAL;
        if (c->name_field)
                r = asprintf(ret_err, "line %u: %s %zu", line, c->reason, c->field);
        else
                r = asprintf(ret_err, "line %u: %s", line, c->reason);
        return r < 0 ? -ENOMEM : -EINVAL;
}

int csv_parse(const char *buf, size_t size, csv_table_t **ret, char **ret_err) {
        cursor_t c = { .p = buf, .end = buf + size, .line = 1 };
        csv_table_t *t;
        size_t cap = 0;
        int r;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        /* tools that prepend a BOM without looking can leave two */
        while (c.end - c.p >= 3 && memcmp(c.p, "\xef\xbb\xbf", 3) == 0)
                c.p += 3;

        while (c.p < c.end) {
                unsigned line = c.line;

                if (at_eol(&c)) { /* blank line */
                        skip_eol(&c);
                        continue;
                }
                r = array_grow((void **) &t->rows, &cap, t->n_rows + 1, sizeof(csv_row_t));
                if (r < 0)
                        goto out;
                r = read_row(&c, &t->rows[t->n_rows]);
                if (r == -EINVAL)
                        r = set_error(ret_err, line, &c);
                if (r < 0)
                        goto out;
                t->n_rows++;
        }
        *ret = t;
        return 0;
out:
        csv_table_free(t);
        return r;
}

csv_table_t *csv_table_free(csv_table_t *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_rows; i++)
                row_done(&t->rows[i]);
        free(t->rows);
        free(t);
        return NULL;
}

void csv_write_field(FILE *f, const char *value) {
        const char *v = value ? value : "";
        bool formula = v[0] != '\0' && strchr("=+-@\t\r", v[0]);
        /* a value starting with U+FEFF is quoted so a reader cannot take it for a BOM */
        bool quote = strpbrk(v, ",\"\r\n") || strncmp(v, "\xef\xbb\xbf", 3) == 0;

        if (quote)
                fputc('"', f);
        if (formula)
                fputc('\'', f);
        for (; *v; v++) {
                if (*v == '"')
                        fputc('"', f);
                fputc(*v, f);
        }
        if (quote)
                fputc('"', f);
}

void csv_write_row(FILE *f, const char *const *fields, size_t n) {
        /* a lone empty field would be a blank line, which readers skip */
        if (n == 1 && (!fields[0] || fields[0][0] == '\0'))
                fputs("\"\"", f);
        else
                for (size_t i = 0; i < n; i++) {
                        if (i > 0)
                                fputc(',', f);
                        csv_write_field(f, fields[i]);
                }
        fputs("\r\n", f);
}
