/* test-csv.c - reading what spreadsheet programs save, and writing what they open safely. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"

static csv_table_t *parse_ok(const char *text) {
        csv_table_t *t = NULL;
        char *err = NULL;
        int r = csv_parse(text, strlen(text), &t, &err);

        if (r < 0)
                fail_msg("csv_parse failed: %d %s", r, err ? err : "");
        assert_null(err);
        assert_non_null(t);
        return t;
}

static void expect_row(const csv_table_t *t, size_t i, unsigned line, size_t n, ...) {
        va_list ap;

        assert_true(i < t->n_rows);
        assert_int_equal(t->rows[i].line, line);
        assert_int_equal(t->rows[i].n_fields, n);
        va_start(ap, n);
        for (size_t k = 0; k < n; k++)
                assert_string_equal(t->rows[i].fields[k], va_arg(ap, const char *));
        va_end(ap);
}

static void expect_error_n(const char *text, size_t size, const char *want) {
        csv_table_t *t = (csv_table_t *) 0x1;
        char *err = NULL;

        assert_int_equal(csv_parse(text, size, &t, &err), -EINVAL);
        assert_ptr_equal(t, (csv_table_t *) 0x1);
        assert_non_null(err);
        assert_string_equal(err, want);
        free(err);
}

static void expect_error(const char *text, const char *want) {
        expect_error_n(text, strlen(text), want);
}

static void test_simple_file(void **state) {
        csv_table_t *t = parse_ok("session_id,name,email\n1,Ann Smith,ann@example.org\n2,Bob,bob@example.org\n");
        (void) state;

        assert_int_equal(t->n_rows, 3);
        expect_row(t, 0, 1, 3, "session_id", "name", "email");
        expect_row(t, 1, 2, 3, "1", "Ann Smith", "ann@example.org");
        expect_row(t, 2, 3, 3, "2", "Bob", "bob@example.org");
        csv_table_free(t);
}

static void test_excel_export(void **state) {
        /* BOM, CRLF, no newline after the last row */
        csv_table_t *t = parse_ok("\xef\xbb\xbf" "email,completed_at\r\nann@example.org,2026-09-01 10:00\r\nbob@example.org,2026-09-02 11:00");
        (void) state;

        assert_int_equal(t->n_rows, 3);
        expect_row(t, 0, 1, 2, "email", "completed_at");
        expect_row(t, 1, 2, 2, "ann@example.org", "2026-09-01 10:00");
        expect_row(t, 2, 3, 2, "bob@example.org", "2026-09-02 11:00");
        csv_table_free(t);
}

static void test_quoted_fields(void **state) {
        csv_table_t *t = parse_ok("name,note\r\n"
                                  "\"Smith, Ann\",\"She said \"\"hi\"\"\"\r\n"
                                  "\"Bob\",\"two\r\nlines\"\r\n"
                                  "Cy,\"three\nmore\nlines\"\n"
                                  "Di,after\n");
        (void) state;

        assert_int_equal(t->n_rows, 5);
        expect_row(t, 1, 2, 2, "Smith, Ann", "She said \"hi\"");
        expect_row(t, 2, 3, 2, "Bob", "two\r\nlines");
        /* the row after a multi-line field starts where the file says */
        expect_row(t, 3, 5, 2, "Cy", "three\nmore\nlines");
        expect_row(t, 4, 8, 2, "Di", "after");
        csv_table_free(t);
}

static void test_empty_fields(void **state) {
        csv_table_t *t = parse_ok("a,,c\n,\n\"\"\nx,y,\n");
        (void) state;

        assert_int_equal(t->n_rows, 4);
        expect_row(t, 0, 1, 3, "a", "", "c");
        expect_row(t, 1, 2, 2, "", "");
        expect_row(t, 2, 3, 1, "");
        expect_row(t, 3, 4, 3, "x", "y", "");
        csv_table_free(t);
}

static void test_blank_lines_skipped(void **state) {
        csv_table_t *t = parse_ok("\n\nh1,h2\r\n\r\n1,2\n\n\n3,4\n\n");
        (void) state;

        assert_int_equal(t->n_rows, 3);
        expect_row(t, 0, 3, 2, "h1", "h2");
        expect_row(t, 1, 5, 2, "1", "2");
        expect_row(t, 2, 8, 2, "3", "4");
        csv_table_free(t);
}

static void test_doubled_bom(void **state) {
        csv_table_t *t = parse_ok("\xef\xbb\xbf\xef\xbb\xbf" "email\r\na@example.org\r\n");
        (void) state;

        assert_int_equal(t->n_rows, 2);
        expect_row(t, 0, 1, 1, "email");
        csv_table_free(t);
}

static void test_old_mac_line_ends(void **state) {
        csv_table_t *t = parse_ok("a,b\rc,d\r");
        (void) state;

        assert_int_equal(t->n_rows, 2);
        expect_row(t, 1, 2, 2, "c", "d");
        csv_table_free(t);
}

static void test_empty_input(void **state) {
        csv_table_t *t;
        (void) state;

        t = parse_ok("");
        assert_int_equal(t->n_rows, 0);
        csv_table_free(t);
        t = parse_ok("\xef\xbb\xbf");
        assert_int_equal(t->n_rows, 0);
        csv_table_free(t);
        t = parse_ok("\xef\xbb\xbf\xef\xbb\xbf");
        assert_int_equal(t->n_rows, 0);
        csv_table_free(t);
        t = parse_ok("\r\n\n");
        assert_int_equal(t->n_rows, 0);
        csv_table_free(t);
        assert_null(csv_table_free(NULL));
}

static void test_utf8_names(void **state) {
        csv_table_t *t = parse_ok("Zo\xc3\xab Bront\xc3\xab,\xe6\x9d\x8e,\xf0\x9f\x98\x80\n");
        (void) state;

        expect_row(t, 0, 1, 3, "Zo\xc3\xab Bront\xc3\xab", "\xe6\x9d\x8e", "\xf0\x9f\x98\x80");
        csv_table_free(t);
}

static void test_errors_name_the_line(void **state) {
        (void) state;
        expect_error("a,b\n1,2\n\n3,4\n5,\"open\n6,7\n", "line 5: unterminated quoted field");
        expect_error("a,b\n1,2\n3,4\nAnn \"Nan\" Smith,x\n", "line 4: stray quote in unquoted field");
        expect_error("a,b\n\"x\" ,y\n", "line 2: text after closing quote");
        expect_error("a,b\n\"two\nlines\"x,y\n", "line 2: text after closing quote");
        /* after a two-line quoted field, the bad row is line 4 */
        expect_error("a,b\n\"multi\nline\",ok\nAnn,Sm\xe9th\n", "line 4: invalid UTF-8 in field 2");
        expect_error("Sm\xe9th,b\n", "line 1: invalid UTF-8 in field 1");
        expect_error("x\n\xc0\xaf\n", "line 2: invalid UTF-8 in field 1");         /* overlong */
        expect_error("x\n\xed\xa0\x80\n", "line 2: invalid UTF-8 in field 1");     /* surrogate */
        expect_error("x\n\xf4\x90\x80\x80\n", "line 2: invalid UTF-8 in field 1"); /* > U+10FFFF */
        expect_error("x\ny,\xe2\x82", "line 2: invalid UTF-8 in field 2");         /* cut short */
        expect_error_n("a,b\nc,d\0e\n", 10, "line 2: NUL byte in field 2");
}

static void test_error_without_err_pointer(void **state) {
        csv_table_t *t = NULL;
        (void) state;

        assert_int_equal(csv_parse("\"", 1, &t, NULL), -EINVAL);
        assert_null(t);
}

static char *write_fields(const char *const *fields, size_t n) {
        char *out = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&out, &size);

        assert_non_null(f);
        csv_write_row(f, fields, n);
        fclose(f);
        return out;
}

static void expect_field(const char *value, const char *want) {
        char *out = write_fields(&value, 1);
        char *want_row;

        assert_true(asprintf(&want_row, "%s\r\n", want) > 0);
        assert_string_equal(out, want_row);
        free(out);
        free(want_row);
}

static void test_write_quoting(void **state) {
        (void) state;
        expect_field("Ann Smith", "Ann Smith");
        expect_field("Smith, Ann", "\"Smith, Ann\"");
        expect_field("say \"hi\"", "\"say \"\"hi\"\"\"");
        expect_field("two\nlines", "\"two\nlines\"");
        expect_field("cr\rhere", "\"cr\rhere\"");
        expect_field("Zo\xc3\xab", "Zo\xc3\xab");
        expect_field(NULL, "\"\"");
        expect_field("", "\"\"");
        /* a leading U+FEFF would be taken for a BOM at the start of a file */
        expect_field("\xef\xbb\xbfx", "\"\xef\xbb\xbfx\"");
        expect_field("x\xef\xbb\xbf", "x\xef\xbb\xbf");
}

static void test_write_neutralises_formulas(void **state) {
        (void) state;
        expect_field("=SUM(A1:A9)", "'=SUM(A1:A9)");
        expect_field("+44 1865 000000", "'+44 1865 000000");
        expect_field("-1", "'-1");
        expect_field("@cmd", "'@cmd");
        expect_field("\tx", "'\tx");
        expect_field("\rx", "\"'\rx\"");
        expect_field("=HYPERLINK(\"http://evil.example\",\"click\")",
                     "\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"click\"\")\"");
        /* only the first character matters */
        expect_field("a=b", "a=b");
        expect_field("ann+mecc@example.org", "ann+mecc@example.org");
}

static void test_write_row(void **state) {
        const char *row[] = { "Ann", NULL, "a,b", "=1" };
        char *out = write_fields(row, 4);
        (void) state;

        assert_string_equal(out, "Ann,,\"a,b\",'=1\r\n");
        free(out);
}

static void test_round_trip(void **state) {
        const char *rows[][3] = {
                { "name", "email", "note" },
                { "Smith, Ann", "ann@example.org", "line one\nline two" },
                { "Bob \"Bobby\" Jones", "", "caf\xc3\xa9" },
        };
        char *out = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&out, &size);
        csv_table_t *t;
        (void) state;

        assert_non_null(f);
        for (size_t i = 0; i < 3; i++)
                csv_write_row(f, rows[i], 3);
        fclose(f);

        t = parse_ok(out);
        assert_int_equal(t->n_rows, 3);
        for (size_t i = 0; i < 3; i++)
                expect_row(t, i, t->rows[i].line, 3, rows[i][0], rows[i][1], rows[i][2]);
        assert_int_equal(t->rows[2].line, 4);
        csv_table_free(t);
        free(out);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_simple_file),
                cmocka_unit_test(test_excel_export),
                cmocka_unit_test(test_quoted_fields),
                cmocka_unit_test(test_empty_fields),
                cmocka_unit_test(test_blank_lines_skipped),
                cmocka_unit_test(test_doubled_bom),
                cmocka_unit_test(test_old_mac_line_ends),
                cmocka_unit_test(test_empty_input),
                cmocka_unit_test(test_utf8_names),
                cmocka_unit_test(test_errors_name_the_line),
                cmocka_unit_test(test_error_without_err_pointer),
                cmocka_unit_test(test_write_quoting),
                cmocka_unit_test(test_write_neutralises_formulas),
                cmocka_unit_test(test_write_row),
                cmocka_unit_test(test_round_trip),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
