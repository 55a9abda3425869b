/* test-clock.c - offsets, local calendar days across daylight saving, time parsing and the
 * dates and times people read in their emails. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"

/* 2026-10-25 01:00 UTC: the UK clocks go back from 02:00 BST to 01:00 GMT. */
#define MON_26_OCT_1030_GMT INT64_C(1793010600)
#define MON_19_OCT_1030_BST INT64_C(1792402200)
#define TUE_22_SEP_1030_BST INT64_C(1790069400)

static int setup(void **state)
{
        (void) state;
        clock_set_now(-1);
        return clock_set_zone("Europe/London");
}

static void check_duration(const char *s, int days, int64_t secs)
{
        duration_t d = { -1, -1 };

        if (clock_parse_duration(s, &d) < 0)
                fail_msg("\"%s\" should parse", s);
        if (d.days != days || d.secs != secs)
                fail_msg("\"%s\" gave %dd %llds, want %dd %llds", s, d.days, (long long) d.secs,
                         days, (long long) secs);
}

static void test_durations_parse(void **state)
{
        (void) state;
        check_duration("7d", 7, 0);
        check_duration("48h", 0, 48 * 3600);
        check_duration("30m", 0, 30 * 60);
        check_duration("90s", 0, 90);
        check_duration("1d12h", 1, 12 * 3600);
        check_duration("2d1h30m15s", 2, 3600 + 1800 + 15);
        check_duration("0s", 0, 0);
        check_duration("180d", 180, 0);
}

static void test_durations_rejected(void **state)
{
        static const char *const bad[] = {
                "", "7", "d", "7x", "-1d", "+1d", " 7d", "7d ", "7 d", "7D", "1.5d", "d7",
                "7dd", "h", "1d12", "99999999999999999999d", "9223372036854775807s",
                "1000000000000h", "100001d", "50000d50001d", "8640000001s",
        };
        duration_t d = { 42, 42 };

        (void) state;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                if (clock_parse_duration(bad[i], &d) != -EINVAL)
                        fail_msg("\"%s\" should be rejected", bad[i]);
                /* a failed parse leaves the caller's value alone */
                assert_int_equal(d.days, 42);
                assert_int_equal(d.secs, 42);
        }
        assert_int_equal(clock_parse_duration(NULL, &d), -EINVAL);
}

static void test_duration_helpers(void **state)
{
        duration_t z = { 0, 0 }, d = { 1, 3600 };

        (void) state;
        assert_true(duration_is_zero(&z));
        assert_false(duration_is_zero(&d));
        assert_int_equal(duration_approx_secs(&d), 86400 + 3600);
}

static void test_days_keep_wall_clock_across_october_change(void **state)
{
        duration_t week = { 7, 0 };
        char buf[64];

        (void) state;
        /* the session is on GMT, its cutoff a week earlier on BST at the same 10:30 */
        assert_int_equal(clock_shift(MON_26_OCT_1030_GMT, &week, -1), MON_19_OCT_1030_BST);
        assert_int_equal(MON_26_OCT_1030_GMT - MON_19_OCT_1030_BST, 7 * 86400 + 3600);
        clock_format_local(clock_shift(MON_26_OCT_1030_GMT, &week, -1), buf, sizeof(buf));
        assert_string_equal(buf, "2026-10-19 10:30 BST");
        /* and back again */
        assert_int_equal(clock_shift(MON_19_OCT_1030_BST, &week, +1), MON_26_OCT_1030_GMT);
}

static void test_days_keep_wall_clock_across_march_change(void **state)
{
        duration_t days = { 2, 0 };
        int64_t mon, sat;
        char buf[64];

        (void) state;
        /* clocks go forward on Sunday 29 March 2026: two days is 47 hours */
        assert_int_equal(clock_parse_time("2026-03-30 09:00", &mon), 0);
        sat = clock_shift(mon, &days, -1);
        clock_format_local(sat, buf, sizeof(buf));
        assert_string_equal(buf, "2026-03-28 09:00 GMT");
        assert_int_equal(mon - sat, 47 * 3600);
}

static void test_hours_are_elapsed_time(void **state)
{
        duration_t h48 = { 0, 48 * 3600 }, mixed = { 1, 12 * 3600 };
        char buf[64];

        (void) state;
        assert_int_equal(clock_shift(MON_26_OCT_1030_GMT, &h48, -1),
                         MON_26_OCT_1030_GMT - 48 * 3600);
        /* 48 elapsed hours before Monday 10:30 GMT is Saturday 11:30 BST on the clock */
        clock_format_local(clock_shift(MON_26_OCT_1030_GMT, &h48, -1), buf, sizeof(buf));
        assert_string_equal(buf, "2026-10-24 11:30 BST");
        /* 1d12h: a calendar day back (Sunday 10:30 GMT), then 12 elapsed hours */
        clock_format_local(clock_shift(MON_26_OCT_1030_GMT, &mixed, -1), buf, sizeof(buf));
        assert_string_equal(buf, "2026-10-24 23:30 BST");
        assert_int_equal(MON_26_OCT_1030_GMT - clock_shift(MON_26_OCT_1030_GMT, &mixed, -1),
                         36 * 3600);
}

static void check_time(const char *s, int64_t want)
{
        int64_t t = -1;

        if (clock_parse_time(s, &t) < 0)
                fail_msg("\"%s\" should parse", s);
        if (t != want)
                fail_msg("\"%s\" gave %lld, want %lld", s, (long long) t, (long long) want);
}

static void test_parse_time_formats(void **state)
{
        (void) state;
        check_time("2026-09-22 10:30", TUE_22_SEP_1030_BST);
        check_time("2026-09-22T10:30", TUE_22_SEP_1030_BST);
        check_time("2026-09-22 10:30:00", TUE_22_SEP_1030_BST);
        check_time("2026-09-22T10:30:59", TUE_22_SEP_1030_BST + 59);
        check_time("2026-09-22T09:30Z", TUE_22_SEP_1030_BST);
        check_time("2026-09-22T09:30:00Z", TUE_22_SEP_1030_BST);
        check_time("2026-09-22T10:30+01:00", TUE_22_SEP_1030_BST);
        check_time("2026-09-22 10:30+0100", TUE_22_SEP_1030_BST);
        check_time("2026-09-22T05:30-04:00", TUE_22_SEP_1030_BST);
        /* local time follows the zone's offset of that day */
        check_time("2026-10-26 10:30", MON_26_OCT_1030_GMT);
        check_time("2026-10-19 10:30", MON_19_OCT_1030_BST);
        check_time("2026-10-26T10:30Z", MON_26_OCT_1030_GMT);
        /* a date alone is its local midnight */
        check_time("2026-09-22", TUE_22_SEP_1030_BST - (10 * 3600 + 1800));
        check_time("2028-02-29 12:00", INT64_C(1835438400));
}

static void test_parse_time_rejects(void **state)
{
        static const char *const bad[] = {
                "", "junk", "2026-02-31 10:00", "2026-02-29 10:00", "2026-04-31 10:00",
                "2026-13-01 10:00", "2026-00-10 10:00", "2026-09-00 10:00", "2026-09-22 24:00",
                "2026-09-22 10:60", "2026-09-22 10", "2026-09-22 10:3", "26-09-22 10:30",
                "2026/09/22 10:30", "2026-9-22 10:30", "2026-09-22  10:30", "2026-09-22 10:30 ",
                "2026-09-22 10:30 BST", "2026-09-22 10:30+1", "2026-09-22 10:30+15:00",
                "2026-09-22 10:30+01:60", "2026-09-22 10:30Zjunk", "2026-09-22x10:30",
                "1969-12-31 23:59Z",
        };
        int64_t t = 42;

        (void) state;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                if (clock_parse_time(bad[i], &t) != -EINVAL)
                        fail_msg("\"%s\" should be rejected", bad[i]);
                assert_int_equal(t, 42);
        }
        assert_int_equal(clock_parse_time(NULL, &t), -EINVAL);
}

static void test_parse_time_around_the_changes(void **state)
{
        int64_t t = 42;
        char buf[64];

        (void) state;
        /* 01:30 on 29 March 2026 never happens in London: the clocks jump 01:00 -> 02:00 */
        assert_int_equal(clock_parse_time("2026-03-29 01:30", &t), -EINVAL);
        assert_int_equal(clock_parse_time("2026-03-29T01:00", &t), -EINVAL);
        assert_int_equal(t, 42);
        check_time("2026-03-29 00:59", INT64_C(1774745940));
        check_time("2026-03-29 02:00", INT64_C(1774746000));
        check_time("2026-03-29 01:30Z", INT64_C(1774747800));
        /* 01:30 on 25 October happens twice; an explicit offset picks one */
        check_time("2026-10-25 01:30+01:00", INT64_C(1792888200));
        check_time("2026-10-25 01:30+00:00", INT64_C(1792891800));
        assert_int_equal(clock_parse_time("2026-10-25 01:30", &t), 0);
        clock_format_local(t, buf, sizeof(buf));
        assert_true(strcmp(buf, "2026-10-25 01:30 BST") == 0 || strcmp(buf, "2026-10-25 01:30 GMT") == 0);
}

static void test_formats_for_people(void **state)
{
        char buf[128];

        (void) state;
        clock_format_date(TUE_22_SEP_1030_BST, buf, sizeof(buf));
        assert_string_equal(buf, "Tuesday 22 September 2026");
        clock_format_time_range(TUE_22_SEP_1030_BST, TUE_22_SEP_1030_BST + 5400, buf, sizeof(buf));
        assert_string_equal(buf, "10:30\u201312:00 BST");
        clock_format_date(MON_26_OCT_1030_GMT, buf, sizeof(buf));
        assert_string_equal(buf, "Monday 26 October 2026");
        clock_format_time_range(MON_26_OCT_1030_GMT, MON_26_OCT_1030_GMT + 5400, buf, sizeof(buf));
        assert_string_equal(buf, "10:30\u201312:00 GMT");
        clock_format_hm(TUE_22_SEP_1030_BST + 60, buf, sizeof(buf));
        assert_string_equal(buf, "10:31");
        clock_format_local(TUE_22_SEP_1030_BST, buf, sizeof(buf));
        assert_string_equal(buf, "2026-09-22 10:30 BST");
        clock_format_iso(TUE_22_SEP_1030_BST, buf, sizeof(buf));
        assert_string_equal(buf, "2026-09-22T09:30:00Z");
        clock_format_rfc5322(TUE_22_SEP_1030_BST, buf, sizeof(buf));
        assert_string_equal(buf, "Tue, 22 Sep 2026 10:30:00 +0100");
        assert_int_equal(clock_format_rfc5322(MON_26_OCT_1030_GMT, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "Mon, 26 Oct 2026 10:30:00 +0000");
        assert_int_equal(clock_format_rfc5322(INT64_C(253402300800), buf, sizeof(buf)), -EINVAL);
        assert_int_equal(clock_format_rfc5322(INT64_C(-2208988801), buf, sizeof(buf)), -EINVAL);
}

static void test_formats_follow_the_zone(void **state)
{
        char buf[128];

        (void) state;
        assert_int_equal(clock_set_zone("America/New_York"), 0);
        assert_string_equal(clock_zone(), "America/New_York");
        clock_format_time_range(TUE_22_SEP_1030_BST, TUE_22_SEP_1030_BST + 5400, buf, sizeof(buf));
        assert_string_equal(buf, "05:30\u201307:00 EDT");
        clock_format_rfc5322(TUE_22_SEP_1030_BST, buf, sizeof(buf));
        assert_string_equal(buf, "Tue, 22 Sep 2026 05:30:00 -0400");
        assert_int_equal(clock_set_zone("Asia/Kolkata"), 0);
        clock_format_rfc5322(TUE_22_SEP_1030_BST, buf, sizeof(buf));
        assert_string_equal(buf, "Tue, 22 Sep 2026 15:00:00 +0530");
        assert_int_equal(clock_set_zone("Europe/London"), 0);
}

static void test_unknown_zone_keeps_the_old_one(void **state)
{
        (void) state;
        assert_int_equal(clock_set_zone("Mars/Olympus_Mons"), -ENOENT);
        assert_int_equal(clock_set_zone(""), -EINVAL);
        assert_int_equal(clock_set_zone("../../etc/passwd"), -EINVAL);
        assert_int_equal(clock_set_zone("/etc/localtime"), -EINVAL);
        /* a directory of the tz database is no zone (glibc would quietly use UTC) */
        assert_int_equal(clock_set_zone("Europe"), -ENOENT);
        assert_string_equal(clock_zone(), "Europe/London");
        check_time("2026-09-22 10:30", TUE_22_SEP_1030_BST);
}

static void test_zone_exists_changes_nothing(void **state)
{
        const char *tz;

        (void) state;
        assert_true(clock_zone_exists("America/New_York"));
        assert_true(clock_zone_exists("UTC"));
        assert_true(clock_zone_exists("Etc/GMT+5"));
        assert_false(clock_zone_exists("Europe"));
        assert_false(clock_zone_exists("Mars/Olympus_Mons"));
        assert_false(clock_zone_exists(""));
        assert_false(clock_zone_exists(NULL));
        assert_false(clock_zone_exists("../../etc/passwd"));
        assert_string_equal(clock_zone(), "Europe/London");
        tz = getenv("TZ");
        assert_non_null(tz);
        assert_string_equal(tz, "Europe/London");
}

static void test_monotonic_usec(void **state)
{
        struct timespec ts;
        usec_t a, b;

        (void) state;
        a = clock_monotonic();
        assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
        b = clock_monotonic();
        assert_true(a <= b);
        assert_true(a / USEC_PER_SEC <= (usec_t) ts.tv_sec);
        assert_true((usec_t) ts.tv_sec <= b / USEC_PER_SEC);
}

static void test_now_can_be_replaced(void **state)
{
        int64_t real;

        (void) state;
        clock_set_now(TUE_22_SEP_1030_BST);
        assert_int_equal(clock_now(), TUE_22_SEP_1030_BST);
        clock_set_now(0);
        assert_int_equal(clock_now(), 0);
        clock_set_now(-1);
        real = clock_now();
        assert_true(real > INT64_C(1700000000));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup(test_durations_parse, setup),
                cmocka_unit_test_setup(test_durations_rejected, setup),
                cmocka_unit_test_setup(test_duration_helpers, setup),
                cmocka_unit_test_setup(test_days_keep_wall_clock_across_october_change, setup),
                cmocka_unit_test_setup(test_days_keep_wall_clock_across_march_change, setup),
                cmocka_unit_test_setup(test_hours_are_elapsed_time, setup),
                cmocka_unit_test_setup(test_parse_time_formats, setup),
                cmocka_unit_test_setup(test_parse_time_rejects, setup),
                cmocka_unit_test_setup(test_parse_time_around_the_changes, setup),
                cmocka_unit_test_setup(test_formats_for_people, setup),
                cmocka_unit_test_setup(test_formats_follow_the_zone, setup),
                cmocka_unit_test_setup(test_unknown_zone_keeps_the_old_one, setup),
                cmocka_unit_test_setup(test_zone_exists_changes_nothing, setup),
                cmocka_unit_test_setup(test_monotonic_usec, setup),
                cmocka_unit_test_setup(test_now_can_be_replaced, setup),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
