/* fuzz-csv.c - csv_parse on arbitrary bytes; whatever it accepts must survive
 * csv_write_row and parse back to the same fields (formula cells gaining their "'"). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"

static bool formula_start(char c) {
        return c != '\0' && strchr("=+-@\t\r", c);
}

static void check_round_trip(const csv_table_t *t) {
        csv_table_t *back = NULL;
        char *out = NULL, *err = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&out, &size);

        if (!f)
                abort();
        for (size_t i = 0; i < t->n_rows; i++)
                csv_write_row(f, (const char *const *) t->rows[i].fields, t->rows[i].n_fields);
        if (fclose(f) != 0)
                abort();

        if (csv_parse(out, size, &back, &err) < 0 || back->n_rows != t->n_rows)
                abort();
        for (size_t i = 0; i < t->n_rows; i++) {
                if (back->rows[i].n_fields != t->rows[i].n_fields)
                        abort();
                for (size_t k = 0; k < t->rows[i].n_fields; k++) {
                        const char *a = t->rows[i].fields[k], *b = back->rows[i].fields[k];

                        if (formula_start(a[0]) && *b++ != '\'')
                                abort();
                        if (strcmp(a, b) != 0)
                                abort();
                }
        }
        csv_table_free(back);
        free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        csv_table_t *t = NULL;
        char *err = NULL;
        int r = csv_parse((const char *) data, size, &t, &err);

        if (r == 0) {
                for (size_t i = 0; i < t->n_rows; i++)
                        if (t->rows[i].n_fields == 0 || (i > 0 && t->rows[i].line <= t->rows[i - 1].line))
                                abort();
                check_round_trip(t);
                csv_table_free(t);
        } else if (r != -EINVAL || !err || strncmp(err, "line ", 5) != 0)
                abort();
        free(err);
        return 0;
}
