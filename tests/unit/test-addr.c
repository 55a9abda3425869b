/* test-addr.c - which addresses a registration may carry, and how "Name <addr>" splits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

static char *repeat(char c, size_t n) {
        char *s = malloc(n + 1);

        assert_non_null(s);
        memset(s, c, n);
        s[n] = '\0';
        return s;
}

static void check_valid(const char *const *list, size_t n, bool want) {
        for (size_t i = 0; i < n; i++)
                if (addr_valid(list[i]) != want)
                        fail_msg("addr_valid(\"%s\") should be %s", list[i], want ? "true" : "false");
}

static void test_accepts_ordinary_addresses(void **state) {
        static const char *const ok[] = {
                "user@example.org",
                "first.last@example.org",
                "ann.smith+mecc@example.org", /* plus addressing */
                "a@b",
                "USER@EXAMPLE.ORG",
                "o'brien@example.org",
                "x_y-z=1!#$%&*/?^`{|}~@example.org",
                "jo@mail.oxfordshire.nhs.example.co.uk", /* subdomains */
                "1234@123.example",
                "user@a-b.example",
                "user@xn--bcher-kva.example", /* IDN, punycode */
                "user@xn--80ak6aa92e.xn--p1ai",
                "\"john..doe\"@example.org", /* quoted local part */
                "\"smith,ann\"@example.org",
                "\"ann@home\"@example.org",
                "\"a\\\"b\"@example.org",
                "user@[192.0.2.1]",
                "user@[IPv6:2001:db8::1]",
        };
        (void) state;
        check_valid(ok, sizeof(ok) / sizeof(ok[0]), true);
}

static void test_rejects_malformed_addresses(void **state) {
        static const char *const bad[] = {
                "",
                "user",
                "@example.org",
                "user@",
                "user@@example.org",
                "a@b@example.org",             /* second @ */
                "user @example.org",           /* spaces */
                "user@ example.org",
                " user@example.org",
                "user@example.org ",
                "\"a b\"@example.org",         /* even quoted */
                "user\r\n@example.org",        /* CR/LF */
                "user@example.org\r\nBcc: victim@example.org",
                "user@example.org\n",
                "user@exa\tmple.org",          /* control characters */
                "us\x01er@example.org",
                "user@example.org\x7f",
                "a,b@example.org",             /* commas */
                "ann@example.org,bob@example.org",
                "<ann@example.org>",           /* angle brackets */
                "Ann <ann@example.org>",
                "\"a<b\"@example.org",
                "\"a\\>b\"@example.org",          /* not even escaped */
                ".user@example.org",           /* dots */
                "user.@example.org",
                "us..er@example.org",
                "user@.example.org",           /* empty labels */
                "user@example.org.",
                "user@example..org",
                "user@-example.org",           /* hyphens at label ends */
                "user@example-.org",
                "user@example.-org",
                "user@exa_mple.org",
                "us\xc3\xa9r@example.org",     /* not ASCII */
                "user@b\xc3\xbc" "cher.example",
                "\"unterminated@example.org",
                "\"a\"b@example.org",
                "user@[300.1.1.1]",
                "user@[1.2.3]",
                "user@[IPv6:zz::1]",
                "user@[example.org]",
                "user@[192.0.2.1",
        };
        (void) state;
        check_valid(bad, sizeof(bad) / sizeof(bad[0]), false);
        assert_false(addr_valid(NULL));
}

static void test_length_limits(void **state) {
        char *local64 = repeat('a', 64), *local65 = repeat('a', 65);
        char *label63 = repeat('b', 63), *label64 = repeat('b', 64);
        char buf[512];
        (void) state;

        snprintf(buf, sizeof(buf), "%s@example.org", local64);
        assert_true(addr_valid(buf));
        snprintf(buf, sizeof(buf), "%s@example.org", local65);
        assert_false(addr_valid(buf));

        snprintf(buf, sizeof(buf), "u@%s.example", label63);
        assert_true(addr_valid(buf));
        snprintf(buf, sizeof(buf), "u@%s.example", label64);
        assert_false(addr_valid(buf));

        /* 64 + 1 + 63 + 1 + 63 + 1 + 61 = 254 octets: the longest allowed */
        snprintf(buf, sizeof(buf), "%s@%s.%s.%.61s", local64, label63, label63, label63);
        assert_int_equal(strlen(buf), 254);
        assert_true(addr_valid(buf));
        snprintf(buf, sizeof(buf), "%s@%s.%s.%.62s", local64, label63, label63, label63);
        assert_int_equal(strlen(buf), 255);
        assert_false(addr_valid(buf));

        free(local64);
        free(local65);
        free(label63);
        free(label64);
}

static void expect_mailbox(const char *in, const char *display, const char *addr) {
        char *d = (char *) 0x1, *a = NULL;
        int r = addr_parse_mailbox(in, &d, &a);

        if (r < 0)
                fail_msg("addr_parse_mailbox(\"%s\") failed: %d", in, r);
        if (display)
                assert_string_equal(d, display);
        else
                assert_null(d);
        assert_string_equal(a, addr);
        free(d);
        free(a);
}

static void test_parse_mailbox(void **state) {
        (void) state;
        expect_mailbox("Ann Smith <ann@example.org>", "Ann Smith", "ann@example.org");
        expect_mailbox("\"Smith, Ann\" <ann@example.org>", "Smith, Ann", "ann@example.org");
        expect_mailbox("\"Ann \\\"Trainer\\\" Smith\" <ann@example.org>", "Ann \"Trainer\" Smith",
                       "ann@example.org");
        expect_mailbox("MECC Training <mecc@example.org>", "MECC Training", "mecc@example.org");
        expect_mailbox("Zo\xc3\xab Bront\xc3\xab <zoe@example.org>", "Zo\xc3\xab Bront\xc3\xab",
                       "zoe@example.org");
        expect_mailbox("J. R. Smith<jrs@example.org>", "J. R. Smith", "jrs@example.org");
        expect_mailbox("ann@example.org", NULL, "ann@example.org");
        expect_mailbox("  ann@example.org  ", NULL, "ann@example.org");
        expect_mailbox("<ann@example.org>", NULL, "ann@example.org");
        expect_mailbox("\"\" <ann@example.org>", NULL, "ann@example.org");
        expect_mailbox("Ann < ann@example.org >", "Ann", "ann@example.org");
        expect_mailbox("\"x\"@example.org", NULL, "\"x\"@example.org");
}

static void test_parse_mailbox_rejects(void **state) {
        static const char *const bad[] = {
                "",
                "   ",
                "Ann <ann@example.org>\r\nBcc: victim@example.org",
                "Ann\n<ann@example.org>",
                "Ann <ann@example.org\r>",
                "Smith, Ann <ann@example.org>",     /* unquoted comma: a list */
                "Ann <ann@example.org>, Bob <bob@example.org>",
                "ann@example.org, bob@example.org",
                "Ann <ann@example.org> extra",
                "Ann <not an address>",
                "Ann <ann@example.org",
                "ann@example.org>",
                "Ann <>",
                "Ann ann@example.org",
                "\"Ann <ann@example.org>",           /* unterminated quote */
                "\"Ann\" Smith <ann@example.org>",
                "Ann@home <ann@example.org>",
                "Ann <a <ann@example.org>>",
        };
        (void) state;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char *d = (char *) 0x1, *a = (char *) 0x2;
                int r = addr_parse_mailbox(bad[i], &d, &a);

                if (r != -EINVAL)
                        fail_msg("addr_parse_mailbox(\"%s\") = %d, want -EINVAL", bad[i], r);
                /* outputs untouched on failure */
                assert_ptr_equal(d, (char *) 0x1);
                assert_ptr_equal(a, (char *) 0x2);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_accepts_ordinary_addresses),
                cmocka_unit_test(test_rejects_malformed_addresses),
                cmocka_unit_test(test_length_limits),
                cmocka_unit_test(test_parse_mailbox),
                cmocka_unit_test(test_parse_mailbox_rejects),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
