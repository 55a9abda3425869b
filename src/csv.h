/* csv.h - RFC 4180 reading (what spreadsheets write) and writing. Pure. */
#pragma once
#include <stddef.h>
#include <stdio.h>

typedef struct {
        char **fields;
        size_t n_fields;
        unsigned line; /* 1-based line where the row starts */
} csv_row_t;

typedef struct {
        csv_row_t *rows; /* rows[0] is the header row */
        size_t n_rows;
} csv_table_t;

/* Parse a whole file: optional UTF-8 BOM, CRLF or LF, quoted fields with "" and embedded
 * commas/newlines, blank lines skipped. -EINVAL with *ret_err = "line N: reason". */
int csv_parse(const char *buf, size_t size, csv_table_t **ret, char **ret_err);
csv_table_t *csv_table_free(csv_table_t *t);

/* Write one field, quoted when needed; a value starting with = + - @ (or tab/CR) is
 * prefixed with ' so spreadsheets do not run it as a formula. */
void csv_write_field(FILE *f, const char *value);
/* Write a row of n fields ending in CRLF. */
void csv_write_row(FILE *f, const char *const *fields, size_t n);
