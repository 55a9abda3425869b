/* test-buf.c - the growing buffer: its bound, its sticky error, and handing over. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

static void test_append_and_steal(void **state)
{
        buf_t b = BUF_INIT(1024);
        char *s = NULL;
        size_t n = 0;

        (void) state;
        assert_string_equal(buf_str(&b), "");
        assert_int_equal(buf_len(&b), 0);
        buf_puts(&b, "Subject: ");
        buf_put(&b, "MECC!!", 4);
        buf_putc(&b, ' ');
        buf_printf(&b, "%d/%s", 22, "Sept");
        assert_string_equal(buf_str(&b), "Subject: MECC 22/Sept");
        assert_int_equal(buf_len(&b), 21);
        assert_int_equal(buf_error(&b), 0);
        assert_int_equal(buf_steal(&b, &s, &n), 0);
        assert_string_equal(s, "Subject: MECC 22/Sept");
        assert_int_equal(n, 21);
        free(s);
        /* handed over: the buffer is empty and usable again */
        assert_string_equal(buf_str(&b), "");
        buf_puts(&b, "again");
        assert_string_equal(buf_str(&b), "again");
        buf_free(&b);
        buf_free(&b);
}

static void test_empty_steal_is_a_string(void **state)
{
        buf_t b = BUF_INIT(0);
        char *s = NULL;

        (void) state;
        assert_int_equal(buf_steal(&b, &s, NULL), 0);
        assert_non_null(s);
        assert_string_equal(s, "");
        free(s);
}

static void test_long_printf_and_growth(void **state)
{
        buf_t b = BUF_INIT(1 << 20);
        char big[5000];

        (void) state;
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        for (int i = 0; i < 100; i++)
                buf_printf(&b, "%s", big);
        assert_int_equal(buf_error(&b), 0);
        assert_int_equal(buf_len(&b), 100 * (sizeof(big) - 1));
        assert_int_equal(strlen(buf_str(&b)), buf_len(&b));
        buf_free(&b);
}

static void test_bound_is_sticky(void **state)
{
        buf_t b = BUF_INIT(8);
        char *s = (char *) 0x1;

        (void) state;
        buf_puts(&b, "12345678"); /* exactly the bound */
        assert_int_equal(buf_error(&b), 0);
        assert_string_equal(buf_str(&b), "12345678");
        buf_putc(&b, '9');
        assert_int_equal(buf_error(&b), -E2BIG);
        /* later appends do nothing, even ones that would fit after a reset */
        buf_reset(&b);
        buf_puts(&b, "a");
        assert_int_equal(buf_error(&b), -E2BIG);
        assert_string_equal(buf_str(&b), "");
        assert_int_equal(buf_steal(&b, &s, NULL), -E2BIG);
        assert_ptr_equal(s, (char *) 0x1); /* untouched */
        /* a failed steal frees: the buffer starts over */
        assert_int_equal(buf_error(&b), 0);
        buf_puts(&b, "ok");
        assert_string_equal(buf_str(&b), "ok");
        buf_free(&b);
}

/* printf formats into the room it has: the bound holds there too, and a value that does
 * not fit the room leaves what was there as it was */
static void test_printf_keeps_the_bound(void **state)
{
        buf_t b = BUF_INIT(8);

        (void) state;
        buf_puts(&b, "1234");
        buf_printf(&b, "%d", 5678); /* exactly the bound, in memory allocated for more */
        assert_int_equal(buf_error(&b), 0);
        assert_string_equal(buf_str(&b), "12345678");
        buf_printf(&b, "%d", 9);
        assert_int_equal(buf_error(&b), -E2BIG);
        assert_string_equal(buf_str(&b), "");
        buf_free(&b);

        b = BUF_INIT(1 << 20);
        buf_puts(&b, "head ");
        buf_printf(&b, "%0300d|", 7); /* more than the first allocation: formatted twice */
        assert_int_equal(buf_error(&b), 0);
        assert_int_equal(buf_len(&b), 5 + 300 + 1);
        assert_memory_equal(buf_str(&b), "head 000", 8);
        assert_string_equal(buf_str(&b) + 5 + 299, "7|");
        buf_free(&b);
}

static void test_reset_keeps_nothing_but_memory(void **state)
{
        buf_t b = BUF_INIT(64);

        (void) state;
        buf_puts(&b, "first line");
        buf_reset(&b);
        assert_int_equal(buf_len(&b), 0);
        assert_string_equal(buf_str(&b), "");
        buf_puts(&b, "second");
        assert_string_equal(buf_str(&b), "second");
        buf_free(&b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_append_and_steal),
                cmocka_unit_test(test_empty_steal_is_a_string),
                cmocka_unit_test(test_long_printf_and_growth),
                cmocka_unit_test(test_bound_is_sticky),
                cmocka_unit_test(test_printf_keeps_the_bound),
                cmocka_unit_test(test_reset_keeps_nothing_but_memory),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
