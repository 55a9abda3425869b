/* test-kind.c - the kind and status tables: every name converts both ways, unknown names
 * are refused, and every kind has its template in etc/templates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <unistd.h>

#include <cmocka.h>

#include "kind.h"
#include "status.h"

#ifndef TOP
#define TOP "."
#endif

static void test_kinds_round_trip(void **state)
{
        (void) state;
        for (int k = 0; k < _KIND_MAX; k++) {
                const char *name = kind_to_string(k);

                assert_non_null(name);
                assert_int_equal(kind_from_string(name), k);
                assert_ptr_equal(kind_info(k)->name, name);
        }
        assert_int_equal(kind_from_string("session_canceled"), _KIND_INVALID);
        assert_int_equal(kind_from_string(NULL), _KIND_INVALID);
        assert_null(kind_to_string(_KIND_MAX));
        assert_null(kind_info(_KIND_INVALID));
}

static void test_statuses_round_trip(void **state)
{
        (void) state;
        for (int s = 0; s < _SESSION_STATUS_MAX; s++)
                assert_int_equal(session_status_from_string(session_status_to_string(s)), s);
        for (int s = 0; s < _REG_STATUS_MAX; s++)
                assert_int_equal(reg_status_from_string(reg_status_to_string(s)), s);
        for (int s = 0; s < _MAIL_STATUS_MAX; s++)
                assert_int_equal(mail_status_from_string(mail_status_to_string(s)), s);
        assert_int_equal(reg_status_from_string("Booked"), _REG_STATUS_INVALID);
        assert_int_equal(session_status_from_string(""), _SESSION_STATUS_INVALID);
        assert_null(mail_status_to_string(_MAIL_STATUS_MAX));
}

/* The facts a reader of the table relies on. */
static void test_kind_facts(void **state)
{
        (void) state;
        assert_true(kind_info(KIND_ROSTER)->to_session);
        assert_int_equal(kind_info(KIND_SESSION_CANCELLED)->ics, ICS_CANCEL);
        assert_int_equal(kind_info(KIND_JOINING_LINK)->ics, ICS_PUBLISH);
        assert_false(kind_info(KIND_SESSION_CANCELLED)->drop & DROP_SESSION_CANCELLED);
        assert_true(kind_info(KIND_JOINING_LINK)->drop & DROP_AT_START);
        assert_true(kind_info(KIND_LATE)->next_sessions);
}

static void test_every_kind_has_a_template(void **state)
{
        (void) state;
        for (int k = 0; k < _KIND_MAX; k++) {
                char path[512];

                snprintf(path, sizeof(path), "%s/etc/templates/%s.txt", TOP, kind_to_string(k));
                if (access(path, R_OK) != 0)
                        fail_msg("%s is missing", path);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_kinds_round_trip),
                cmocka_unit_test(test_statuses_round_trip),
                cmocka_unit_test(test_kind_facts),
                cmocka_unit_test(test_every_kind_has_a_template),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
