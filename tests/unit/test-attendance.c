/* test-attendance.c - reading the attendance lists Teams and Zoom export, as they write
 * them: Teams in UTF-16 LE with a byte-order mark, tab-separated, a summary first and more
 * sections after; Zoom in UTF-8 CSV, one row per join. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attendance.h"

/* A Teams attendance report (the "Download attendance list" of 2023 on), as text. */
static const char TEAMS[] =
        "1. Summary\r\n"
        "Meeting title\tMECC live online training\r\n"
        "Attended participants\t6\r\n"
        "Start time\t9/22/26, 10:28:41 AM\r\n"
        "End time\t9/22/26, 12:01:10 PM\r\n"
        "Meeting duration\t1h 32m 29s\r\n"
        "Average attendance time\t58m 3s\r\n"
        "\r\n"
        "2. Participants\r\n"
        "Name\tFirst Join\tLast Leave\tIn-Meeting Duration\tEmail\tParticipant ID (UPN)\tRole\r\n"
        "Tess Trainer\t9/22/26, 10:28:41 AM\t9/22/26, 12:01:10 PM\t1h 32m 29s\ttess@example.org\ttess@example.org\tOrganizer\r\n"
        "Ann Smith\t9/22/26, 10:29:01 AM\t9/22/26, 12:00:58 PM\t1h 31m 57s\tAnn.Smith@Example.org\tann.smith@example.org\tPresenter\r\n"
        "Bob Jones\t9/22/26, 10:35:12 AM\t9/22/26, 10:52:40 AM\t17m 28s\tbob@example.org\tbob@example.org\tAttendee\r\n"
        "Guest Person (Guest)\t9/22/26, 10:30:00 AM\t9/22/26, 12:00:00 PM\t1h 30m\t\t\tAttendee\r\n"
        "Chloé Brown\t9/22/26, 10:31:00 AM\t9/22/26, 11:45:00 AM\t1h 14m\t\t\tAttendee\r\n"
        "\r\n"
        "3. In-Meeting Activities\r\n"
        "Name\tJoin Time\tLeave Time\tDuration\tEmail\tRole\r\n"
        "Tess Trainer\t9/22/26, 10:28:41 AM\t9/22/26, 12:01:10 PM\t1h 32m 29s\ttess@example.org\tOrganizer\r\n";

/* Zoom's participants export with the meeting summary ("Show unique users" off): one row
 * per join. */
static const char ZOOM[] =
        "Meeting ID,Topic,Start Time,End Time,User Email,Duration (Minutes),Participants\r\n"
        "812 3456 7890,MECC live online training,09/22/2026 10:28:41 AM,09/22/2026 12:01:10 PM,tess@example.org,93,5\r\n"
        "\r\n"
        "Name (Original Name),User Email,Join Time,Leave Time,Duration (Minutes),Guest,Recording Consent,In Waiting Room\r\n"
        "Tess Trainer,tess@example.org,09/22/2026 10:28:41 AM,09/22/2026 12:01:10 PM,93,No,,No\r\n"
        "Ann Smith,ann.smith@example.org,09/22/2026 10:29:01 AM,09/22/2026 11:00:00 AM,31,No,,No\r\n"
        "Bob Jones,bob@example.org,09/22/2026 10:35:12 AM,09/22/2026 10:52:40 AM,18,No,,No\r\n"
        "Ann Smith,ANN.SMITH@example.org,09/22/2026 11:02:00 AM,09/22/2026 12:00:58 PM,59,No,,No\r\n"
        "\"Smith, Dan\",,09/22/2026 10:30:00 AM,09/22/2026 12:00:00 PM,90,Yes,,No\r\n";

/* Text as Teams writes it: UTF-16 LE with its byte-order mark. */
static char *utf16le(const char *s, size_t *ret_n)
{
        size_t n = strlen(s), k = 2;
        unsigned char *out = malloc(2 * n + 2);

        assert_non_null(out);
        out[0] = 0xff;
        out[1] = 0xfe;
        for (size_t i = 0; i < n;) {
                unsigned char c = (unsigned char) s[i];
                unsigned cp;

                if (c < 0x80)
                        cp = c, i += 1;
                else if ((c & 0xe0) == 0xc0)
                        cp = (c & 0x1fu) << 6 | (s[i + 1] & 0x3f), i += 2;
                else
                        cp = (c & 0x0fu) << 12 | (s[i + 1] & 0x3f) << 6 | (s[i + 2] & 0x3f), i += 3;
                out[k++] = (unsigned char) (cp & 0xff);
                out[k++] = (unsigned char) (cp >> 8);
        }
        *ret_n = k;
        return (char *) out;
}

static attendance_t *parse_ok(const char *data, size_t n)
{
        attendance_t *a = NULL;
        char *why = NULL;
        int r = attendance_parse(data, n, &a, &why);

        if (r < 0)
                fail_msg("attendance_parse: %d %s", r, why ? why : "");
        assert_null(why);
        return a;
}

static const attendance_row_t *find(const attendance_t *a, const char *email, const char *name)
{
        for (size_t i = 0; i < a->n; i++)
                if ((email && strcmp(a->rows[i].email, email) == 0) || (!email && strcmp(a->rows[i].name, name) == 0))
                        return &a->rows[i];
        fail_msg("nobody %s %s", email ? email : "", name ? name : "");
        return NULL;
}

static void check_teams(const attendance_t *a)
{
        assert_int_equal(a->format, ATTENDANCE_TEAMS);
        /* the organiser, Ann, Bob, the guest and Chloé: not the activities section below */
        assert_int_equal(a->n, 5);
        assert_int_equal(find(a, "tess@example.org", NULL)->minutes, 92);
        assert_int_equal(find(a, "Ann.Smith@Example.org", NULL)->minutes, 91);
        assert_string_equal(find(a, "bob@example.org", NULL)->name, "Bob Jones");
        assert_int_equal(find(a, "bob@example.org", NULL)->minutes, 17);
        assert_string_equal(find(a, NULL, "Guest Person (Guest)")->email, "");
        assert_int_equal(find(a, NULL, "Guest Person (Guest)")->minutes, 90);
        assert_int_equal(find(a, NULL, "Chloé Brown")->minutes, 74);
        assert_int_equal(find(a, "bob@example.org", NULL)->line, 13);
}

static void test_teams_utf16(void **state)
{
        size_t n;
        char *data = utf16le(TEAMS, &n);
        attendance_t *a;

        (void) state;
        a = parse_ok(data, n);
        check_teams(a);
        attendance_free(a);
        free(data);
}

static void test_teams_utf8_comma(void **state)
{
        /* saved again from a spreadsheet: UTF-8 with its mark, commas, no CRs */
        char buf[4096] = "\xef\xbb\xbf";
        attendance_t *a;
        size_t k = 3;

        (void) state;
        for (const char *p = TEAMS; *p; p++) {
                if (*p == '\r')
                        continue;
                if (*p == ',') {        /* the dates hold commas: quote those fields */
                        buf[k++] = ';';
                        continue;
                }
                buf[k++] = *p == '\t' ? ',' : *p;
        }
        buf[k] = '\0';
        a = parse_ok(buf, k);
        check_teams(a);
        attendance_free(a);
}

static void test_zoom_joins_add_up(void **state)
{
        attendance_t *a;

        (void) state;
        a = parse_ok(ZOOM, strlen(ZOOM));
        assert_int_equal(a->format, ATTENDANCE_ZOOM);
        assert_int_equal(a->n, 4);
        /* Ann joined twice, under two spellings of her address: 31 + 59 */
        assert_int_equal(find(a, "ann.smith@example.org", NULL)->minutes, 90);
        assert_int_equal(find(a, "bob@example.org", NULL)->minutes, 18);
        /* a quoted name with a comma, a guest with no address */
        assert_string_equal(find(a, NULL, "Smith, Dan")->email, "");
        assert_int_equal(find(a, NULL, "Smith, Dan")->minutes, 90);
        attendance_free(a);
}

static void test_plain(void **state)
{
        static const char with_header[] = "email,minutes\nann@example.org,50\nbob@example.org,\n";
        static const char bare[] = "ann@example.org\nbob@example.org\n\n";
        attendance_t *a;

        (void) state;
        a = parse_ok(with_header, strlen(with_header));
        assert_int_equal(a->format, ATTENDANCE_PLAIN);
        assert_int_equal(a->n, 2);
        assert_int_equal(find(a, "ann@example.org", NULL)->minutes, 50);
        assert_int_equal(find(a, "bob@example.org", NULL)->minutes, -1);
        attendance_free(a);
        a = parse_ok(bare, strlen(bare));
        assert_int_equal(a->format, ATTENDANCE_PLAIN);
        assert_int_equal(a->n, 2);
        assert_int_equal(a->rows[0].minutes, -1);
        attendance_free(a);
}

static void expect_refused(const char *data, size_t n, const char *why_has)
{
        attendance_t *a = NULL;
        char *why = NULL;

        assert_int_equal(attendance_parse(data, n, &a, &why), -EBADMSG);
        assert_null(a);
        assert_non_null(why);
        if (!strstr(why, why_has))
                fail_msg("\"%s\" does not say \"%s\"", why, why_has);
        free(why);
}

static void test_refused(void **state)
{
        static const char roster[] = "name,email,status\nAnn,ann@example.org,booked\n";
        static const char bad_duration[] =
                "Name\tFirst Join\tLast Leave\tIn-Meeting Duration\tEmail\n"
                "Ann\t10:00\t11:00\tan hour\tann@example.org\n";
        static const char latin1[] = "email\nchlo\xe9@example.org\n";

        (void) state;
        expect_refused(roster, strlen(roster), "not a Teams attendance report");
        expect_refused("", 0, "no header row");
        expect_refused(bad_duration, strlen(bad_duration), "line 2: \"an hour\" is not a duration");
        expect_refused(latin1, strlen(latin1), "not UTF-8 or UTF-16");
        expect_refused("email\nnobody\n", 13, "line 2: \"nobody\" is not an email address");
}

static void test_duration(void **state)
{
        (void) state;
        assert_int_equal(attendance_parse_duration("1h 23m 5s"), 4985);
        assert_int_equal(attendance_parse_duration("45m 2s"), 2702);
        assert_int_equal(attendance_parse_duration("59s"), 59);
        assert_int_equal(attendance_parse_duration("2h"), 7200);
        assert_int_equal(attendance_parse_duration("1h5m"), 3900);
        assert_int_equal(attendance_parse_duration(""), -1);
        assert_int_equal(attendance_parse_duration("5s 1m"), -1);
        assert_int_equal(attendance_parse_duration("1h 1h"), -1);
        assert_int_equal(attendance_parse_duration("10"), -1);
        assert_int_equal(attendance_parse_duration("h"), -1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_teams_utf16),
                cmocka_unit_test(test_teams_utf8_comma),
                cmocka_unit_test(test_zoom_joins_add_up),
                cmocka_unit_test(test_plain),
                cmocka_unit_test(test_refused),
                cmocka_unit_test(test_duration),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
