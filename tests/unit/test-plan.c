/* test-plan.c - when bookings close and each email of a session falls due, in local time
 * across the October clock change. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "plan.h"

/* Monday 26 October 2026 10:30-12:00 GMT, the day after the clocks go back */
#define START INT64_C(1793010600)
#define END (START + 5400)
#define MIN 60
#define HOUR 3600
#define DAY 86400

static duration_t reminders[] = { { 10, 0 }, { 3, 0 } };

static config_t conf(void)
{
        return (config_t) {
                .booking_cutoff = { 7, 0 },
                .reminders_elearning = reminders,
                .n_reminders_elearning = 2,
                .reminder_joining_link = { 2, 0 },
                .follow_up_enabled = true,
                .reminder_follow_up = { 1, 0 },
                .retention = { 180, 0 },
        };
}

static int setup(void **state)
{
        (void) state;
        return clock_set_zone("Europe/London");
}

static void check_local(int64_t t, const char *want)
{
        char buf[64];

        clock_format_local(t, buf, sizeof(buf));
        if (strcmp(buf, want) != 0)
                fail_msg("%lld is %s, want %s", (long long) t, buf, want);
}

static void test_cutoff_a_week_before_on_the_wall_clock(void **state)
{
        config_t c = conf();
        int64_t cutoff = plan_cutoff(&c, START, 0);

        (void) state;
        check_local(cutoff, "2026-10-19 10:30 BST");
        assert_int_equal(START - cutoff, 7 * DAY + HOUR);
        /* an explicit closes_at wins */
        assert_int_equal(plan_cutoff(&c, START, START - 2 * DAY), START - 2 * DAY);
        /* with "48h" the cutoff is 48 elapsed hours, whatever the clocks do */
        c.booking_cutoff = (duration_t) { 0, 48 * HOUR };
        assert_int_equal(plan_cutoff(&c, START, 0), START - 48 * HOUR);
        check_local(plan_cutoff(&c, START, 0), "2026-10-24 11:30 BST");
}

static void test_cutoff_is_a_moment_of_its_own(void **state)
{
        config_t c = conf();
        int64_t cutoff = plan_cutoff(&c, START, 0);

        (void) state;
        /* a minute before the cutoff, the next thing to happen is the cutoff */
        assert_int_equal(plan_next_moment(&c, START, END, 0, cutoff - MIN), cutoff);
        assert_int_equal(plan_next_moment(&c, START, END, 0, cutoff - 1), cutoff);
        /* at the cutoff itself it has happened: the next one is the 3d reminder */
        check_local(plan_next_moment(&c, START, END, 0, cutoff), "2026-10-23 10:30 BST");
        /* an explicit closes_at moves it */
        assert_int_equal(plan_next_moment(&c, START, END, START - 4 * DAY, cutoff), START - 4 * DAY);
}

static void test_reminder_moments(void **state)
{
        config_t c = conf();

        (void) state;
        check_local(plan_reminder_at(&c, START, 0), "2026-10-16 10:30 BST");
        check_local(plan_reminder_at(&c, START, 1), "2026-10-23 10:30 BST");
        check_local(plan_joining_at(&c, START), "2026-10-24 10:30 BST");
        check_local(plan_follow_up_at(&c, END), "2026-10-27 12:00 GMT");
        check_local(plan_forget_at(&c, END), "2027-04-24 12:00 BST");
        c.follow_up_enabled = false;
        assert_int_equal(plan_follow_up_at(&c, END), 0);
}

static void test_due_reminder_is_the_latest_passed(void **state)
{
        config_t c = conf();
        int64_t r10 = plan_reminder_at(&c, START, 0), r3 = plan_reminder_at(&c, START, 1);

        (void) state;
        assert_int_equal(plan_due_reminder(&c, START, START - 30 * DAY), -1);
        assert_int_equal(plan_due_reminder(&c, START, r10 - MIN), -1);
        assert_int_equal(plan_due_reminder(&c, START, r10), 0);
        assert_int_equal(plan_due_reminder(&c, START, r10 + DAY), 0);
        assert_int_equal(plan_due_reminder(&c, START, r3 - 1), 0);
        assert_int_equal(plan_due_reminder(&c, START, r3), 1);
        /* a scan that slept through both moments sends only the later one */
        assert_int_equal(plan_due_reminder(&c, START, START - MIN), 1);
        /* once the session has started no reminder is due */
        assert_int_equal(plan_due_reminder(&c, START, START), -1);
        assert_int_equal(plan_due_reminder(&c, START, END), -1);
        c.n_reminders_elearning = 0;
        assert_int_equal(plan_due_reminder(&c, START, r3), -1);
}

static void test_due_reminder_with_hours(void **state)
{
        static duration_t three[] = { { 14, 0 }, { 1, 12 * HOUR }, { 0, 30 * MIN } };
        config_t c = conf();

        (void) state;
        c.reminders_elearning = three;
        c.n_reminders_elearning = 3;
        check_local(plan_reminder_at(&c, START, 1), "2026-10-24 23:30 BST");
        assert_int_equal(plan_due_reminder(&c, START, START - 31 * MIN), 1);
        assert_int_equal(plan_due_reminder(&c, START, START - 30 * MIN), 2);
}

static void test_duration_names(void **state)
{
        static const struct {
                duration_t d;
                const char *name;
        } t[] = {
                { { 10, 0 }, "10d" },
                { { 3, 0 }, "3d" },
                { { 1, 12 * HOUR }, "1d12h" },
                { { 0, 48 * HOUR }, "48h" },
                { { 0, 30 * MIN }, "30m" },
                { { 0, 90 }, "1m30s" },
                { { 0, 45 }, "45s" },
                { { 2, HOUR + MIN + 1 }, "2d1h1m1s" },
                { { 0, 0 }, "0s" },
        };
        char buf[32];

        (void) state;
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                plan_duration_name(&t[i].d, buf, sizeof(buf));
                assert_string_equal(buf, t[i].name);
        }
        /* a short buffer is cut, never overrun */
        plan_duration_name(&t[7].d, buf, 4);
        assert_string_equal(buf, "2d1");
}

static void walk(const config_t *c, int64_t from, const char *const *want, size_t n)
{
        int64_t t = from;

        for (size_t i = 0; i < n; i++) {
                t = plan_next_moment(c, START, END, 0, t);
                check_local(t, want[i]);
        }
        assert_int_equal(plan_next_moment(c, START, END, 0, t), INT64_MAX);
}

static void test_next_moment_walks_the_whole_session(void **state)
{
        static const char *const all[] = {
                "2026-10-16 10:30 BST", /* reminder 10d */
                "2026-10-19 10:30 BST", /* bookings close */
                "2026-10-23 10:30 BST", /* reminder 3d */
                "2026-10-24 10:30 BST", /* joining link */
                "2026-10-26 10:30 GMT", /* start */
                "2026-10-26 12:00 GMT", /* end */
                "2026-10-27 12:00 GMT", /* follow-up */
                "2027-04-24 12:00 BST", /* erasure */
        };
        static const char *const quiet[] = {
                "2026-10-19 10:30 BST",
                "2026-10-24 10:30 BST",
                "2026-10-26 10:30 GMT",
                "2026-10-26 12:00 GMT",
                "2027-04-24 12:00 BST",
        };
        config_t c = conf();

        (void) state;
        walk(&c, START - 60 * DAY, all, sizeof(all) / sizeof(all[0]));
        /* no reminders, no follow-up: fewer moments, never a zero one */
        c.n_reminders_elearning = 0;
        c.follow_up_enabled = false;
        walk(&c, START - 60 * DAY, quiet, sizeof(quiet) / sizeof(quiet[0]));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup(test_cutoff_a_week_before_on_the_wall_clock, setup),
                cmocka_unit_test_setup(test_cutoff_is_a_moment_of_its_own, setup),
                cmocka_unit_test_setup(test_reminder_moments, setup),
                cmocka_unit_test_setup(test_due_reminder_is_the_latest_passed, setup),
                cmocka_unit_test_setup(test_due_reminder_with_hours, setup),
                cmocka_unit_test_setup(test_duration_names, setup),
                cmocka_unit_test_setup(test_next_moment_walks_the_whole_session, setup),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
