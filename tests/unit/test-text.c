/* test-text.c - outside text: UTF-8 decoding at every boundary RFC 3629 draws, what a line
 * and a link are, and reading a whole file that may turn out to be a directory or a FIFO. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "text.h"

static char dir[64], path[128];

static int setup(void **state)
{
        (void) state;
        snprintf(dir, sizeof(dir), "/tmp/test-text.XXXXXX");
        if (!mkdtemp(dir))
                return -1;
        snprintf(path, sizeof(path), "%s/file", dir);
        return 0;
}

static int teardown(void **state)
{
        (void) state;
        (void) unlink(path);
        return rmdir(dir);
}

/* s (of n bytes) decodes to one character of len bytes and code point cp */
static void expect_char(const char *s, size_t n, size_t len, uint32_t cp)
{
        uint32_t got = 0xdeadbeef;

        assert_int_equal(text_utf8_decode(s, n, &got), len);
        assert_int_equal(got, cp);
        assert_int_equal(text_utf8_decode(s, n, NULL), len);
}

static void expect_none(const char *s, size_t n)
{
        uint32_t got = 0xdeadbeef;

        assert_int_equal(text_utf8_decode(s, n, &got), 0);
        assert_int_equal(got, 0xdeadbeef); /* untouched */
}

static void test_utf8_each_length(void **state)
{
        (void) state;
        expect_char("A", 1, 1, 'A');
        expect_char("", 1, 1, 0); /* the NUL byte is U+0000 */
        expect_char("\x7f", 1, 1, 0x7f);
        expect_char("\xc2\x80", 2, 2, 0x80);
        expect_char("\xc3\xa9tude", 6, 2, 0xe9);
        expect_char("\xdf\xbf", 2, 2, 0x7ff);
        expect_char("\xe0\xa0\x80", 3, 3, 0x800);
        expect_char("\xe2\x80\x93", 3, 3, 0x2013);
        expect_char("\xed\x9f\xbf", 3, 3, 0xd7ff);
        expect_char("\xee\x80\x80", 3, 3, 0xe000);
        expect_char("\xef\xbf\xbf", 3, 3, 0xffff);
        expect_char("\xf0\x90\x80\x80", 4, 4, 0x10000);
        expect_char("\xf0\x9f\x98\x80", 4, 4, 0x1f600);
        expect_char("\xf4\x8f\xbf\xbf", 4, 4, 0x10ffff);
}

static void test_utf8_refused(void **state)
{
        (void) state;
        expect_none("", 0);
        expect_none("\x80", 1);                 /* a continuation byte alone */
        expect_none("\xbf", 1);
        expect_none("\xc0\x80", 2);             /* overlong NUL */
        expect_none("\xc1\xbf", 2);             /* overlong U+007F */
        expect_none("\xe0\x9f\xbf", 3);         /* overlong U+07FF */
        expect_none("\xf0\x8f\xbf\xbf", 4);     /* overlong U+FFFF */
        expect_none("\xed\xa0\x80", 3);         /* surrogate U+D800 */
        expect_none("\xed\xbf\xbf", 3);         /* surrogate U+DFFF */
        expect_none("\xf4\x90\x80\x80", 4);     /* U+110000 */
        expect_none("\xf5\x80\x80\x80", 4);
        expect_none("\xf8\x88\x80\x80\x80", 5); /* five-byte forms are gone */
        expect_none("\xfe", 1);
        expect_none("\xff", 1);
        expect_none("\xc3", 1);                 /* cut short */
        expect_none("\xe2\x80", 2);
        expect_none("\xe2\x80\x93", 2);         /* n ends inside it */
        expect_none("\xf0\x9f\x98", 3);
        expect_none("\xc3(", 2);                /* a continuation byte missing */
        expect_none("\xe2(\x93", 3);
        expect_none("\xf0\x9f\x98(", 4);
}

static void test_utf8_valid(void **state)
{
        static const char mixed[] = "Caf\xc3\xa9 \xe2\x80\x93 \xf0\x9f\x98\x80 ok";

        (void) state;
        assert_true(text_utf8_valid("", 0));
        assert_true(text_utf8_valid("plain ASCII", 11));
        assert_true(text_utf8_valid(mixed, sizeof(mixed) - 1));
        assert_true(text_utf8_valid("a\0b", 3));
        assert_false(text_utf8_valid(mixed, sizeof(mixed) - 5)); /* the emoji cut in two */
        assert_false(text_utf8_valid("Caf\xe9", 4));              /* Latin-1 */
        assert_false(text_utf8_valid("ok\xed\xa0\x80", 5));
}

static void test_line_and_url(void **state)
{
        (void) state;
        assert_true(text_is_line("MECC session: 22 Sept"));
        assert_true(text_is_line("Caf\xc3\xa9"));
        assert_false(text_is_line(NULL));
        assert_false(text_is_line(""));
        assert_false(text_is_line("two\nlines"));
        assert_false(text_is_line("tab\there"));
        assert_false(text_is_line("del\x7f"));
        assert_true(text_is_url("https://meet.example.org/j/123?pwd=x"));
        assert_true(text_is_url("http://example.org/"));
        assert_false(text_is_url("ftp://example.org/"));
        assert_false(text_is_url("https://example.org/a b"));
        assert_false(text_is_url("https://example.org/\r\n"));
        assert_false(text_is_url("example.org"));
        assert_false(text_is_url(""));
        assert_false(text_is_url(NULL));
}

static void test_one_line(void **state)
{
        char *s;

        (void) state;
        s = text_one_line("Level 2\r\nrefresher\tsession\x1b[0m");
        assert_string_equal(s, "Level 2 refresher session [0m");
        free(s);
        s = text_one_line(NULL);
        assert_string_equal(s, "");
        free(s);
}

static void write_file(const char *data, size_t n)
{
        FILE *f = fopen(path, "w");

        assert_non_null(f);
        assert_int_equal(fwrite(data, 1, n, f), n);
        assert_int_equal(fclose(f), 0);
}

static void test_read_file(void **state)
{
        char *s = NULL;
        size_t n = 0;

        (void) state;
        write_file("timezone = \"UTC\"\n", 17);
        assert_int_equal(text_read_file(path, 17, &s, NULL), 0);
        assert_string_equal(s, "timezone = \"UTC\"\n");
        free(s);
        assert_int_equal(text_read_file(path, 16, &s, NULL), -EFBIG);

        write_file("", 0);
        assert_int_equal(text_read_file(path, 10, &s, &n), 0);
        assert_string_equal(s, "");
        assert_int_equal(n, 0);
        free(s);

        /* text was asked for: a NUL byte is refused; with a size it is data */
        write_file("a\0b", 3);
        assert_int_equal(text_read_file(path, 10, &s, NULL), -EBADMSG);
        assert_int_equal(text_read_file(path, 10, &s, &n), 0);
        assert_int_equal(n, 3);
        assert_memory_equal(s, "a\0b", 4);
        free(s);
}

static void test_read_file_refuses_what_is_not_a_file(void **state)
{
        char missing[160], *s = (char *) 0x1;

        (void) state;
        snprintf(missing, sizeof(missing), "%s/nothing-here", dir);
        assert_int_equal(text_read_file(missing, 10, &s, NULL), -ENOENT);
        assert_int_equal(text_read_file(dir, 10, &s, NULL), -EINVAL);
        /* a FIFO with no writer: refused at once instead of blocking the reader */
        assert_int_equal(mkfifo(path, 0600), 0);
        assert_int_equal(text_read_file(path, 10, &s, NULL), -EINVAL);
        assert_ptr_equal(s, (char *) 0x1); /* untouched on failure */
}

static void test_redact_addresses(void **state)
{
        static const struct {
                const char *in, *out;
        } cases[] = {
                { "550 5.1.1 <someone@example.org>: Recipient address rejected: User unknown",
                  "550 5.1.1 <[address]>: Recipient address rejected: User unknown" },
                { "550 5.1.1 RESOLVER.ADR.RecipNotFound; not found", "550 5.1.1 RESOLVER.ADR.RecipNotFound; not found" },
                { "smtp; 550 5.1.1 The email account that you tried to reach does not exist: jo.bloggs+mecc@mail.example.co.uk.",
                  "smtp; 550 5.1.1 The email account that you tried to reach does not exist: [address]." },
                { "rfc822;\"Ann Smith\"@example.org and b@[192.0.2.1]", "rfc822;[address] and [address]" },
                { "451 4.7.1 greylisted, try again", "451 4.7.1 greylisted, try again" },
                { "at @ sign, trailing@ and @leading", "at @ sign, trailing@ and @leading" },
                { "Zo\xc3\xab@exampl\xc3\xa9.org: no", "[address]: no" },
                { "", "" },
        };
        char *s;

        (void) state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                s = text_redact_addresses(cases[i].in);
                assert_non_null(s);
                assert_string_equal(s, cases[i].out);
                free(s);
        }
        s = text_redact_addresses(NULL);
        assert_string_equal(s, "");
        free(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_utf8_each_length),
                cmocka_unit_test(test_utf8_refused),
                cmocka_unit_test(test_utf8_valid),
                cmocka_unit_test(test_line_and_url),
                cmocka_unit_test(test_one_line),
                cmocka_unit_test(test_redact_addresses),
                cmocka_unit_test_setup_teardown(test_read_file, setup, teardown),
                cmocka_unit_test_setup_teardown(test_read_file_refuses_what_is_not_a_file, setup,
                                                teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
