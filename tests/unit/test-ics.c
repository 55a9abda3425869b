/* test-ics.c - what a calendar program reads from the .ics attachment. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "ics.h"

#define SEP_2026_1030 INT64_C(1790069400) /* Tue 22 Sep 2026 10:30 BST = 09:30Z */
#define JAN_2026_1030 INT64_C(1768300200) /* Tue 13 Jan 2026 10:30 GMT */

static ics_event_t base(void) {
        return (ics_event_t) {
                .uid = "session-7@meccd.example.org",
                .sequence = 0,
                .dtstamp = INT64_C(1785000000),
                .start = SEP_2026_1030,
                .end = SEP_2026_1030 + 5400,
                .tzid = "Europe/London",
                .summary = "Healthy Conversations",
                .description = "Join with the link below.",
                .url = "https://meet.example.org/j/123",
                .organizer = "MECC Training <mecc@example.org>",
        };
}

static void set_zone(const char *z) {
        setenv("TZ", z, 1);
        tzset();
}

static char *build(const ics_event_t *e) {
        char *out = NULL;

        assert_int_equal(ics_build(e, &out), 0);
        assert_non_null(out);
        return out;
}

/* Content lines unfolded (RFC 5545 3.1), "\n"-separated. Checks the physical form on the
 * way: CRLF only, at most 75 octets, continuation lines start with one space, and no line
 * starts or ends inside a UTF-8 sequence. */
static char *unfold(const char *s) {
        char *out = malloc(strlen(s) + 1), *o = out;
        const char *line = s;

        while (*line) {
                const char *end = strstr(line, "\r\n");
                size_t n;

                assert_non_null(end);
                n = end - line;
                assert_true(n <= 75);
                assert_null(memchr(line, '\n', n));
                assert_null(memchr(line, '\r', n));
                if (line[0] == ' ') {
                        assert_true(line != s);
                        assert_true(n >= 2 && line[1] != ' ');
                        assert_true(((unsigned char) line[1] & 0xc0) != 0x80);
                        memcpy(o, line + 1, n - 1);
                        o += n - 1;
                } else {
                        if (line != s)
                                *o++ = '\n';
                        memcpy(o, line, n);
                        o += n;
                }
                line = end + 2;
        }
        *o++ = '\n';
        *o = 0;
        return out;
}

static bool has_line(const char *unfolded, const char *line) {
        size_t n = strlen(line);

        for (const char *p = unfolded; (p = strstr(p, line)); p++)
                if ((p == unfolded || p[-1] == '\n') && p[n] == '\n')
                        return true;
        return false;
}

static int count_lines(const char *unfolded, const char *prefix) {
        int c = 0;

        for (const char *p = unfolded; *p; p = strchr(p, '\n') + 1)
                c += strncmp(p, prefix, strlen(prefix)) == 0;
        return c;
}

static void assert_line(const char *unfolded, const char *line) {
        if (!has_line(unfolded, line))
                fail_msg("no line \"%s\" in:\n%s", line, unfolded);
}

static void test_calendar_shape(void **state) {
        ics_event_t e = base();
        char *out, *u;

        (void) state;
        out = build(&e);
        u = unfold(out);
        assert_memory_equal(u, "BEGIN:VCALENDAR\n", 16);
        assert_line(u, "PRODID:-//meccd//MECC Training//EN");
        assert_line(u, "VERSION:2.0");
        assert_line(u, "CALSCALE:GREGORIAN");
        assert_line(u, "METHOD:PUBLISH");
        assert_line(u, "UID:session-7@meccd.example.org");
        assert_line(u, "SEQUENCE:0");
        assert_line(u, "DTSTAMP:20260725T172000Z");
        assert_line(u, "DTSTART;TZID=Europe/London:20260922T103000");
        assert_line(u, "DTEND;TZID=Europe/London:20260922T120000");
        assert_line(u, "SUMMARY:Healthy Conversations");
        assert_line(u, "DESCRIPTION:Join with the link below.");
        assert_line(u, "URL:https://meet.example.org/j/123");
        assert_line(u, "LOCATION:https://meet.example.org/j/123");
        assert_line(u, "ORGANIZER;CN=\"MECC Training\":mailto:mecc@example.org");
        assert_line(u, "STATUS:CONFIRMED");
        assert_line(u, "BEGIN:VALARM");
        assert_line(u, "ACTION:DISPLAY");
        assert_line(u, "TRIGGER:-PT30M");
        assert_int_equal(count_lines(u, "BEGIN:VEVENT"), 1);
        assert_int_equal(count_lines(u, "END:VEVENT"), 1);
        assert_int_equal(count_lines(u, "BEGIN:VTIMEZONE"), 1);
        /* the zone comes before the event that refers to it */
        assert_true(strstr(u, "BEGIN:VTIMEZONE") < strstr(u, "BEGIN:VEVENT"));
        assert_int_equal(strcmp(u + strlen(u) - 14, "END:VCALENDAR\n"), 0);
        free(u);
        free(out);
}

static void test_cancel(void **state) {
        ics_event_t e = base();
        char *out, *u;

        (void) state;
        e.cancel = true;
        e.sequence = 3;
        out = build(&e);
        u = unfold(out);
        assert_line(u, "METHOD:CANCEL");
        assert_line(u, "STATUS:CANCELLED");
        assert_line(u, "SEQUENCE:3");
        assert_line(u, "UID:session-7@meccd.example.org");
        assert_false(has_line(u, "METHOD:PUBLISH"));
        assert_false(has_line(u, "STATUS:CONFIRMED"));
        assert_int_equal(count_lines(u, "BEGIN:VALARM"), 0);
        free(u);
        free(out);
}

static void test_text_escaping(void **state) {
        ics_event_t e = base();
        char *out, *u;

        (void) state;
        e.summary = "Part 1, part 2; C:\\temp";
        e.description = "Line one\nLine two\r\nLine three\rend";
        e.organizer = "\"Jo \"JJ\" Bloggs\" <jo@example.org>";
        e.url = "https://meet.example.org/j/1?a=1,2&b=x y";
        out = build(&e);
        u = unfold(out);
        assert_line(u, "SUMMARY:Part 1\\, part 2\\; C:\\\\temp");
        assert_line(u, "DESCRIPTION:Line one\\nLine two\\nLine three\\nend");
        assert_line(u, "ORGANIZER;CN=\"Jo 'JJ' Bloggs\":mailto:jo@example.org");
        assert_line(u, "URL:https://meet.example.org/j/1?a=1,2&b=x%20y");
        assert_line(u, "LOCATION:https://meet.example.org/j/1?a=1\\,2&b=x%20y");
        free(u);
        free(out);

        /* a bare address, and nothing optional */
        e = base();
        e.organizer = "mecc@example.org";
        e.description = NULL;
        e.url = NULL;
        out = build(&e);
        u = unfold(out);
        assert_line(u, "ORGANIZER:mailto:mecc@example.org");
        assert_int_equal(count_lines(u, "DESCRIPTION:"), 1); /* the alarm's only */
        assert_int_equal(count_lines(u, "URL:"), 0);
        assert_int_equal(count_lines(u, "LOCATION:"), 0);
        free(u);
        free(out);
}

static void test_injection(void **state) {
        ics_event_t e = base();
        char *out, *u;

        (void) state;
        e.summary = "x\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:evil";
        e.description = "\x01\x1b[2J\x7f";
        e.organizer = "Eve\r\nATTENDEE:mailto:x@evil <eve@example.org>";
        e.url = "https://x/\r\nATTACH:evil";
        out = build(&e);
        u = unfold(out);
        assert_int_equal(count_lines(u, "BEGIN:VEVENT"), 1);
        assert_int_equal(count_lines(u, "UID:"), 1);
        assert_int_equal(count_lines(u, "ATTENDEE"), 0);
        assert_int_equal(count_lines(u, "ATTACH"), 0);
        assert_line(u, "DESCRIPTION:  [2J ");
        assert_line(u, "URL:https://x/%0D%0AATTACH:evil");
        free(u);
        free(out);
}

static void test_folding_multibyte(void **state) {
        ics_event_t e = base();
        char summary[600] = "", want[700] = "SUMMARY:";
        char *out, *u;

        (void) state;
        /* 2-, 3- and 4-byte characters at every alignment against the 75-octet limit */
        for (int i = 0; i < 20; i++)
                strcat(summary, "é€🙂a");
        strcat(want, summary);
        e.summary = summary;
        out = build(&e);
        u = unfold(out);
        assert_line(u, want);
        /* it was folded: the physical SUMMARY line is cut short */
        assert_null(strstr(out, want));
        free(u);
        free(out);
}

static void test_folding_keeps_escapes(void **state) {
        ics_event_t e = base();
        char summary[200];
        char *out;

        (void) state;
        /* every padding puts some escape (\, \\ \; \n) across a 75-octet fold */
        for (int pad = 60; pad < 80; pad++) {
                memset(summary, 'a', pad);
                strcpy(summary + pad, ",\\;\n,,,\\\\\\\n;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;");
                e.summary = summary;
                out = build(&e);
                for (const char *line = out; *line; line = strstr(line, "\r\n") + 2) {
                        const char *end = strstr(line, "\r\n");
                        size_t bs = 0;

                        while (end - bs > line && end[-1 - (ptrdiff_t) bs] == '\\')
                                bs++;
                        if (bs % 2)
                                fail_msg("a fold splits an escape: %.*s", (int) (end - line), line);
                }
                free(out);
        }
}

static void test_london_2026_transitions(void **state) {
        ics_event_t e = base();
        char *out, *u, *daylight, *standard;

        (void) state;
        out = build(&e);
        u = unfold(out);
        assert_line(u, "TZID:Europe/London");
        /* BST starts 29 March 01:00 UTC (01:00 GMT wall time) */
        daylight = strstr(u, "BEGIN:DAYLIGHT\nDTSTART:20260329T010000\n");
        assert_non_null(daylight);
        assert_memory_equal(strstr(daylight, "TZOFFSETFROM"),
                            "TZOFFSETFROM:+0000\nTZOFFSETTO:+0100\nTZNAME:BST\nEND:DAYLIGHT", 58);
        /* and ends 25 October 01:00 UTC (02:00 BST wall time) */
        standard = strstr(u, "BEGIN:STANDARD\nDTSTART:20261025T020000\n");
        assert_non_null(standard);
        assert_memory_equal(strstr(standard, "TZOFFSETFROM"),
                            "TZOFFSETFROM:+0100\nTZOFFSETTO:+0000\nTZNAME:GMT\nEND:STANDARD", 58);
        /* the previous year is there too, and nothing after 2026 */
        assert_non_null(strstr(u, "DTSTART:20250330T010000"));
        assert_non_null(strstr(u, "DTSTART:20251026T020000"));
        assert_null(strstr(u, "DTSTART:2027"));
        free(u);
        free(out);
}

static void test_winter_event(void **state) {
        ics_event_t e = base();
        char *out, *u;

        (void) state;
        e.start = JAN_2026_1030;
        e.end = JAN_2026_1030 + 3600;
        out = build(&e);
        u = unfold(out);
        assert_line(u, "DTSTART;TZID=Europe/London:20260113T103000");
        assert_line(u, "DTEND;TZID=Europe/London:20260113T113000");
        free(u);
        free(out);
}

/* The zone's block is remembered between calendars: what is remembered for one zone, TZID
 * or year never shows in another's. */
static void test_zone_block_follows_zone_and_year(void **state) {
        ics_event_t e = base();
        char *london, *again, *other, *later, *u;

        (void) state;
        set_zone("Europe/London");
        london = build(&e);
        again = build(&e);
        assert_string_equal(london, again);
        set_zone("America/New_York");
        e.tzid = "America/New_York";
        other = build(&e);
        u = unfold(other);
        assert_line(u, "TZID:America/New_York");
        assert_line(u, "TZOFFSETTO:-0400");
        assert_null(strstr(u, "Europe/London"));
        free(u);
        /* the same zone under another TZID is written again, not copied */
        e.tzid = "US/Eastern";
        free(again);
        again = build(&e);
        u = unfold(again);
        assert_line(u, "TZID:US/Eastern");
        assert_null(strstr(u, "TZID:America/New_York"));
        free(u);
        /* a later year has its own transitions */
        set_zone("Europe/London");
        e.tzid = "Europe/London";
        e.start += 3 * 365 * 86400;
        e.end += 3 * 365 * 86400;
        later = build(&e);
        u = unfold(later);
        assert_null(strstr(u, "DTSTART:20260329T010000"));
        assert_non_null(strstr(u, "DTSTART:20290325T010000"));
        free(u);
        e = base();
        free(again);
        again = build(&e);
        assert_string_equal(london, again);
        free(london);
        free(again);
        free(other);
        free(later);
}

static void test_other_zones(void **state) {
        ics_event_t e = base();
        char *out, *u;

        (void) state;
        set_zone("America/New_York");
        e.tzid = "America/New_York";
        out = build(&e);
        u = unfold(out);
        assert_line(u, "DTSTART;TZID=America/New_York:20260922T053000");
        /* second Sunday of March and first Sunday of November, 02:00 local */
        assert_non_null(strstr(u, "BEGIN:DAYLIGHT\nDTSTART:20260308T020000\n"
                                  "TZOFFSETFROM:-0500\nTZOFFSETTO:-0400\nTZNAME:EDT\n"));
        assert_non_null(strstr(u, "BEGIN:STANDARD\nDTSTART:20261101T020000\n"
                                  "TZOFFSETFROM:-0400\nTZOFFSETTO:-0500\nTZNAME:EST\n"));
        free(u);
        free(out);

        /* no DST: a single STANDARD */
        set_zone("Asia/Kolkata");
        e.tzid = "Asia/Kolkata";
        out = build(&e);
        u = unfold(out);
        assert_line(u, "DTSTART;TZID=Asia/Kolkata:20260922T150000");
        assert_int_equal(count_lines(u, "BEGIN:STANDARD"), 1);
        assert_int_equal(count_lines(u, "BEGIN:DAYLIGHT"), 0);
        assert_line(u, "TZOFFSETFROM:+0530");
        assert_line(u, "TZOFFSETTO:+0530");
        assert_line(u, "TZNAME:IST");
        free(u);
        free(out);
        set_zone("Europe/London");
}

static void test_utc(void **state) {
        const char *zones[] = { "UTC", NULL, "" };
        ics_event_t e = base();

        (void) state;
        for (size_t i = 0; i < sizeof zones / sizeof zones[0]; i++) {
                char *out, *u;

                e.tzid = zones[i];
                out = build(&e);
                u = unfold(out);
                assert_line(u, "DTSTART:20260922T093000Z");
                assert_line(u, "DTEND:20260922T110000Z");
                assert_null(strstr(u, "VTIMEZONE"));
                assert_null(strstr(u, "TZID"));
                free(u);
                free(out);
        }
}

static void test_rejects(void **state) {
        ics_event_t e = base();
        char *out = NULL;

        (void) state;
        e.end = e.start - 1;
        assert_int_equal(ics_build(&e, &out), -EINVAL);
        e = base();
        e.tzid = "Europe/London;X=1";
        assert_int_equal(ics_build(&e, &out), -EINVAL);
        e = base();
        e.uid = NULL;
        assert_int_equal(ics_build(&e, &out), -EINVAL);
        e = base();
        e.organizer = "MECC Training";
        assert_int_equal(ics_build(&e, &out), -EINVAL);
        e = base();
        e.start = INT64_MAX - 10;
        e.end = INT64_MAX;
        assert_int_equal(ics_build(&e, &out), -EINVAL);
        assert_null(out);
}

static int setup(void **state) {
        (void) state;
        set_zone("Europe/London");
        return 0;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_calendar_shape),
                cmocka_unit_test(test_cancel),
                cmocka_unit_test(test_text_escaping),
                cmocka_unit_test(test_injection),
                cmocka_unit_test(test_folding_multibyte),
                cmocka_unit_test(test_folding_keeps_escapes),
                cmocka_unit_test(test_london_2026_transitions),
                cmocka_unit_test(test_winter_event),
                cmocka_unit_test(test_other_zones),
                cmocka_unit_test(test_zone_block_follows_zone_and_year),
                cmocka_unit_test(test_utc),
                cmocka_unit_test(test_rejects),
        };

        return cmocka_run_group_tests(tests, setup, NULL);
}
