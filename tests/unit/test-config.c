/* test-config.c - meccd.conf as an admin writes it: every mistake is reported with the file,
 * the line and the option, and a file that says little gets the documented defaults. */
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

#include "config.h"

static char dir[64], path[128];

static int setup(void **state)
{
        (void) state;
        snprintf(dir, sizeof(dir), "/tmp/test-config.XXXXXX");
        if (!mkdtemp(dir))
                return -1;
        snprintf(path, sizeof(path), "%s/meccd.conf", dir);
        return clock_set_zone("Europe/London");
}

static int teardown(void **state)
{
        (void) state;
        (void) unlink(path);
        return rmdir(dir);
}

static void write_conf(const char *text)
{
        FILE *f = fopen(path, "w");

        assert_non_null(f);
        assert_true(fputs(text, f) >= 0);
        assert_int_equal(fclose(f), 0);
}

/* the process's zone, as clock.c and the C library see it */
static void assert_zone(const char *name)
{
        assert_string_equal(clock_zone(), name);
        assert_non_null(getenv("TZ"));
        assert_string_equal(getenv("TZ"), name);
}

/* text must be rejected with an error naming this file, line and option (or phrase), and
 * leave the process as it was */
static void check_bad(const char *text, int line, const char *option)
{
        config_t *c = NULL;
        char *err = NULL, where[160];
        int r;

        write_conf(text);
        r = config_parse(path, &c, &err);
        assert_zone("Europe/London");
        if (r != -EINVAL)
                fail_msg("config_parse returned %d for:\n%s", r, text);
        assert_null(c);
        assert_non_null(err);
        snprintf(where, sizeof(where), "%s:%d: ", path, line);
        if (strncmp(err, where, strlen(where)) != 0)
                fail_msg("error \"%s\" should start with \"%s\"", err, where);
        if (!strstr(err, option))
                fail_msg("error \"%s\" should name \"%s\"", err, option);
        free(err);
}

static void test_bad_duration(void **state)
{
        (void) state;
        check_bad("# meccd.conf\nscan_interval = 60\nbooking_cutoff = \"7x\"\n", 3,
                  "option booking_cutoff: \"7x\" is not a duration");
        check_bad("booking_cutoff = \"7\"\n", 1, "option booking_cutoff");
        check_bad("retention = \"-1d\"\n", 1, "option retention");
        check_bad("reminders {\n  elearning = {\"10d\", \"3x\"}\n}\n", 2,
                  "option reminders.elearning: \"3x\"");
        check_bad("reminders {\n  joining_link = \"\"\n}\n", 2, "option reminders.joining_link");
        check_bad("\n\nsmtp {\n  give_up_after = \"3 days\"\n}\n", 4, "option smtp.give_up_after");
}

static void test_unknown_timezone(void **state)
{
        (void) state;
        check_bad("timezone = \"Mars/Olympus_Mons\"\n", 1, "option timezone: unknown time zone");
        check_bad("\ntimezone = \"\"\n", 2, "option timezone");
        /* a directory of the tz database, which the C library would quietly take for UTC */
        check_bad("# zone\ntimezone = \"Europe\"\n", 2,
                  "option timezone: unknown time zone \"Europe\"");
        check_bad("timezone = \"America/New_York\"\nscan_interval = 0\n", 2, "scan_interval");
}

/* checking a file changes nothing; applying it selects its zone */
static void test_parse_then_apply(void **state)
{
        config_t *c = NULL;
        char *err = NULL;

        (void) state;
        write_conf("timezone = \"America/New_York\"\n");
        if (config_parse(path, &c, &err) < 0)
                fail_msg("rejected: %s", err);
        assert_string_equal(c->timezone, "America/New_York");
        assert_zone("Europe/London");
        assert_int_equal(config_apply(c, &err), 0);
        assert_zone("America/New_York");
        config_free(c);
        assert_int_equal(clock_set_zone("Europe/London"), 0);
}

static void test_not_a_regular_file(void **state)
{
        config_t *c = NULL;
        char *err = NULL, fifo[160];

        (void) state;
        assert_int_equal(config_parse(dir, &c, &err), -EINVAL);
        assert_null(c);
        assert_non_null(err);
        if (!strstr(err, dir) || !strstr(err, "not a regular file"))
                fail_msg("error \"%s\" should name %s as not a regular file", err, dir);
        free(err);
        err = NULL;
        /* a FIFO with no writer is refused, not waited on */
        snprintf(fifo, sizeof(fifo), "%s/fifo.conf", dir);
        assert_int_equal(mkfifo(fifo, 0600), 0);
        assert_int_equal(config_parse(fifo, &c, &err), -EINVAL);
        assert_non_null(err);
        free(err);
        assert_int_equal(unlink(fifo), 0);
}

static void test_mail_domain(void **state)
{
        config_t *c = NULL;
        char *err = NULL;

        (void) state;
        write_conf("smtp { from = \"MECC <Training@Mail.Example.org>\" }\n");
        if (config_parse(path, &c, &err) < 0)
                fail_msg("rejected: %s", err);
        assert_string_equal(config_mail_domain(c), "@Mail.Example.org");
        free(c->smtp.from_addr);
        c->smtp.from_addr = NULL;
        assert_string_equal(config_mail_domain(c), "@meccd.invalid");
        config_free(c);
}

static void test_bad_smtp_url(void **state)
{
        (void) state;
        check_bad("smtp {\n  url = \"http://mail.example.org\"\n}\n", 2, "option smtp.url");
        check_bad("smtp {\n  url = \"smtp://\"\n}\n", 2, "option smtp.url");
        check_bad("smtp { url = \"smtp://mail example.org\" }\n", 1, "option smtp.url");
}

static void test_bad_tls(void **state)
{
        (void) state;
        check_bad("organisation = \"Oxfordshire MECC Training\"\nsmtp {\n  url = \"smtp://localhost:25\"\n"
                  "  tls = \"maybe\"\n}\n", 4, "option smtp.tls: \"maybe\" must be \"required\" or \"none\"");
}

static void test_bad_from_address(void **state)
{
        (void) state;
        check_bad("smtp {\n  from = \"MECC Training mecc@\"\n}\n", 2, "option smtp.from");
        check_bad("smtp {\n  from = \"\"\n}\n", 2, "option smtp.from: must not be empty");
        check_bad("smtp {\n  reply_to = \"a@b, c@d\"\n}\n", 2, "option smtp.reply_to");
        check_bad("roster_to = {\"team@example.org\", \"not an address\"}\n", 1, "option roster_to");
}

static void test_bad_scan_interval(void **state)
{
        (void) state;
        check_bad("scan_interval = -5\n", 1, "option scan_interval: -5 must be a positive number");
        check_bad("scan_interval = 0\n", 1, "option scan_interval");
        check_bad("scan_interval = \"often\"\n", 1, "scan_interval");
        check_bad("smtp {\n  connections = 0\n}\n", 2, "option smtp.connections");
}

static void test_cancel_url_needs_token(void **state)
{
        (void) state;
        check_bad("cancel_url = \"https://hub.example/cancel\"\n", 1,
                  "option cancel_url: \"https://hub.example/cancel\" must contain {{token}}");
        check_bad("cancel_url = \"ftp://hub.example/cancel?t={{token}}\"\n", 1, "option cancel_url");
        check_bad("feedback_url = \"feedback.example.org\"\n", 1, "option feedback_url");
}

static void test_unknown_option(void **state)
{
        (void) state;
        check_bad("timezone = \"Europe/London\"\ncolour = \"blue\"\n", 2, "colour");
        check_bad("smtp {\n  pasword_file = \"/etc/meccd/pw\"\n}\n", 2, "pasword_file");
        check_bad("require_elearning = maybe\n", 1, "require_elearning");
}

static void test_syntax_error(void **state)
{
        (void) state;
        check_bad("timezone = \"Europe/London\"\nscan_interval = = 60\n", 2, "unexpected");
        check_bad("timezone = \"Europe/London\nscan_interval = 60\n", 3, "end of file");
        check_bad("smtp\n  url = \"smtp://localhost:25\"\n", 2, "brace");
}

/* the shipped meccd.conf explains every option in comments: they must not shift the
 * line an error is reported on, nor break a list they sit in */
static void test_comments_keep_line_numbers(void **state)
{
        config_t *c = NULL;
        char *err = NULL;

        (void) state;
        check_bad("# meccd.conf\n#\n// settings\nscan_interval = 60 # seconds\n"
                  "/* a\n   long note */\nbooking_cutoff = \"7x\" # a week\n", 7, "option booking_cutoff");
        check_bad("smtp {\n  # the relay\n  url = \"smtp://localhost:25\" # port 25\n"
                  "  // no TLS\n  tls = \"off\"\n}\n", 5, "option smtp.tls: \"off\"");
        write_conf("# comment\nreminders {\n  elearning = {\"10d\", # first\n    \"3d\" // last\n  }\n}\n"
                   "organisation = \"Team #1 // Oxford /* north */\"\n"
                   "signpost_url = \"https://livewell.oxfordshire.gov.uk/#start\"\n"
                   "smtp { from = 'O\\'Brien # MECC <mecc@example.org>' }\n");
        if (config_load(path, &c, &err) < 0)
                fail_msg("rejected: %s", err);
        assert_int_equal(c->n_reminders_elearning, 2);
        assert_int_equal(c->reminders_elearning[1].days, 3);
        assert_string_equal(c->organisation, "Team #1 // Oxford /* north */");
        assert_string_equal(c->signpost_url, "https://livewell.oxfordshire.gov.uk/#start");
        assert_string_equal(c->smtp.from_addr, "mecc@example.org");
        config_free(c);
}

static void test_unreadable_file(void **state)
{
        config_t *c = NULL;
        char *err = NULL, missing[160];
        int r;

        (void) state;
        snprintf(missing, sizeof(missing), "%s/nothing-here.conf", dir);
        r = config_load(missing, &c, &err);
        assert_true(r < 0);
        assert_null(c);
        assert_non_null(err);
        if (!strstr(err, missing))
                fail_msg("error \"%s\" should name %s", err, missing);
        free(err);
}

static void test_rejected_file_keeps_the_zone(void **state)
{
        config_t *c = NULL;
        char *err = NULL;

        (void) state;
        write_conf("timezone = \"America/New_York\"\nscan_interval = -1\n");
        assert_int_equal(config_load(path, &c, &err), -EINVAL);
        free(err);
        assert_string_equal(clock_zone(), "Europe/London");
}

static void test_defaults(void **state)
{
        config_t *c = NULL;
        char *err = NULL;

        (void) state;
        /* an empty file is a valid one */
        write_conf("");
        assert_int_equal(config_load(path, &c, &err), 0);
        c = config_free(c);
        assert_int_equal(clock_set_zone("UTC"), 0);
        write_conf("# nothing but a comment\n");
        assert_int_equal(config_load(path, &c, &err), 0);
        assert_null(err);
        assert_non_null(c);
        assert_string_equal(c->path, path);
        assert_string_equal(c->timezone, "Europe/London");
        /* the default zone is selected, not just recorded */
        assert_string_equal(clock_zone(), "Europe/London");
        assert_string_equal(c->database, "/var/lib/meccd/meccd.db");
        assert_string_equal(c->templates, "/etc/meccd/templates");
        assert_int_equal(c->scan_interval, 60);
        assert_int_equal(c->booking_cutoff.days, 7);
        assert_int_equal(c->booking_cutoff.secs, 0);
        assert_false(c->require_elearning);
        assert_string_equal(c->organisation, "Oxfordshire MECC Training");
        assert_string_equal(c->signpost_url, "https://livewell.oxfordshire.gov.uk/");
        assert_string_equal(c->feedback_url, "");
        assert_string_equal(c->cancel_url, "");
        assert_int_equal(c->n_roster_to, 1);
        assert_string_equal(c->roster_to[0], "mecc-team@example.org");
        assert_int_equal(c->retention.days, 180);
        assert_int_equal(c->n_reminders_elearning, 2);
        assert_int_equal(c->reminders_elearning[0].days, 10);
        assert_int_equal(c->reminders_elearning[1].days, 3);
        assert_ptr_equal(config_last_reminder(c), &c->reminders_elearning[1]);
        assert_int_equal(c->reminder_joining_link.days, 2);
        assert_true(c->follow_up_enabled);
        assert_int_equal(c->reminder_follow_up.days, 1);
        assert_string_equal(c->smtp.url, "smtp://localhost:25");
        assert_true(c->smtp.tls_required);
        assert_string_equal(c->smtp.username, "");
        assert_string_equal(c->smtp.password_file, "");
        assert_string_equal(c->smtp.from, "MECC Training <mecc@example.org>");
        assert_string_equal(c->smtp.from_addr, "mecc@example.org");
        assert_string_equal(c->smtp.reply_to, "");
        assert_string_equal(c->smtp.ca_file, "");
        assert_int_equal(c->smtp.connections, 2);
        assert_int_equal(c->smtp.timeout, 30);
        assert_int_equal(c->smtp.max_per_minute, 120);
        assert_int_equal(c->smtp.give_up_after.days, 3);
        config_free(c);
}

static void test_full_file(void **state)
{
        config_t *c = NULL;
        char *err = NULL;

        (void) state;
        write_conf("timezone = \"America/New_York\"\n"
                   "database = \"/srv/mecc/meccd.db\"\n"
                   "templates = \"/srv/mecc/templates\"\n"
                   "scan_interval = 15\n"
                   "booking_cutoff = \"1d12h\"\n"
                   "require_elearning = true\n"
                   "organisation = \"Cherwell Volunteers\"\n"
                   "elearning_url = \"https://learn.example.org/mecc\"\n"
                   "feedback_url = \"https://forms.example.org/feedback\"\n"
                   "cancel_url = \"https://hub.example/cancel?t={{token}}\"\n"
                   "roster_to = {\"a@example.org\", \"b@example.org\"}\n"
                   "retention = \"90d\"\n"
                   "reminders {\n"
                   "  elearning = {\"3d\", \"14d\", \"36h\"}\n"
                   "  joining_link = \"30m\"\n"
                   "  follow_up = \"\"\n"
                   "}\n"
                   "smtp {\n"
                   "  url = \"smtps://relay.example.org:465\"\n"
                   "  tls = \"none\"\n"
                   "  username = \"mecc\"\n"
                   "  password_file = \"/etc/meccd/smtp-password\"\n"
                   "  from = \"\\\"Training, MECC\\\" <training@example.org>\"\n"
                   "  reply_to = \"Help <help@example.org>\"\n"
                   "  connections = 4\n"
                   "  timeout = 10\n"
                   "  max_per_minute = 600\n"
                   "  give_up_after = \"12h\"\n"
                   "}\n");
        if (config_load(path, &c, &err) < 0)
                fail_msg("a good file was rejected: %s", err);
        assert_string_equal(clock_zone(), "America/New_York");
        assert_string_equal(c->database, "/srv/mecc/meccd.db");
        assert_int_equal(c->scan_interval, 15);
        assert_int_equal(c->booking_cutoff.days, 1);
        assert_int_equal(c->booking_cutoff.secs, 12 * 3600);
        assert_true(c->require_elearning);
        assert_string_equal(c->organisation, "Cherwell Volunteers");
        assert_string_equal(c->cancel_url, "https://hub.example/cancel?t={{token}}");
        assert_int_equal(c->n_roster_to, 2);
        assert_string_equal(c->roster_to[1], "b@example.org");
        assert_null(c->roster_to[2]);
        assert_int_equal(c->retention.days, 90);
        /* reminders run from the earliest to the one closest to the start */
        assert_int_equal(c->n_reminders_elearning, 3);
        assert_int_equal(c->reminders_elearning[0].days, 14);
        assert_int_equal(c->reminders_elearning[1].days, 3);
        assert_int_equal(c->reminders_elearning[2].secs, 36 * 3600);
        assert_int_equal(config_last_reminder(c)->secs, 36 * 3600);
        assert_int_equal(c->reminder_joining_link.secs, 1800);
        assert_false(c->follow_up_enabled);
        assert_false(c->smtp.tls_required);
        assert_string_equal(c->smtp.from_addr, "training@example.org");
        assert_string_equal(c->smtp.reply_to, "Help <help@example.org>");
        assert_int_equal(c->smtp.connections, 4);
        assert_int_equal(c->smtp.max_per_minute, 600);
        assert_int_equal(c->smtp.give_up_after.secs, 12 * 3600);
        config_free(c);
        assert_int_equal(clock_set_zone("Europe/London"), 0);
}

static void test_no_reminders(void **state)
{
        config_t *c = NULL;
        char *err = NULL;

        (void) state;
        write_conf("reminders {\n  elearning = {}\n}\n");
        if (config_load(path, &c, &err) < 0)
                fail_msg("rejected: %s", err);
        assert_int_equal(c->n_reminders_elearning, 0);
        assert_null(config_last_reminder(c));
        config_free(c);
        assert_null(config_free(NULL));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_bad_duration, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unknown_timezone, setup, teardown),
                cmocka_unit_test_setup_teardown(test_parse_then_apply, setup, teardown),
                cmocka_unit_test_setup_teardown(test_not_a_regular_file, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mail_domain, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_smtp_url, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_tls, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_from_address, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_scan_interval, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cancel_url_needs_token, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unknown_option, setup, teardown),
                cmocka_unit_test_setup_teardown(test_syntax_error, setup, teardown),
                cmocka_unit_test_setup_teardown(test_comments_keep_line_numbers, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unreadable_file, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rejected_file_keeps_the_zone, setup, teardown),
                cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
                cmocka_unit_test_setup_teardown(test_full_file, setup, teardown),
                cmocka_unit_test_setup_teardown(test_no_reminders, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
