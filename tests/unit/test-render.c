/* test-render.c - building an email is a function of what it is handed: no database, no
 * network. The shipped templates, a session, a registration, and the bytes that come out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "render.h"

typedef struct {
        config_t c;
        templates_t *t;
        session_t s;
        registration_t g;
} env_t;

static char *roster_to[] = { "mecc-team@example.org" };

static int64_t at(const char *local)
{
        int64_t t;

        if (clock_parse_time(local, &t) < 0)
                fail_msg("bad time %s", local);
        return t;
}

static int setup(void **state)
{
        env_t *e = calloc(1, sizeof(*e));
        char *err = NULL;

        assert_non_null(e);
        assert_int_equal(clock_set_zone("Europe/London"), 0);
        e->c = (config_t) {
                .booking_cutoff = { 7, 0 },
                .elearning_url = "https://learn.example.org/mecc",
                .signpost_url = "https://livewell.example.org/",
                .organisation = "Oxfordshire MECC Training",
                .roster_to = roster_to,
                .n_roster_to = 1,
                .smtp = { .from = "MECC <mecc@example.org>", .from_addr = "mecc@example.org" },
        };
        if (templates_load("etc/templates", &e->c, &e->t, &err) < 0)
                fail_msg("templates: %s", err ? err : "?");
        e->s = (session_t) { .id = 7, .title = "MECC Live Online Training",
                             .starts_at = at("2026-09-22 10:30"), .ends_at = at("2026-09-22 12:00"),
                             .capacity = 12, .join_url = "https://meet.example.org/mecc-0922",
                             .status = SESSION_OPEN, .booked = 3, .waitlisted = 0 };
        e->g = (registration_t) { .id = 42, .session_id = 7, .name = "Si\xc3\xa2n \xc3\x93 Briain",
                                  .email = "sian@example.org", .status = REG_BOOKED,
                                  .token = "tok", .registered_at = at("2026-09-01 09:00") };
        *state = e;
        return 0;
}

static int teardown(void **state)
{
        env_t *e = *state;

        templates_free(e->t);
        free(e);
        return 0;
}

static char *render(env_t *e, kind_t kind, const mail_data_t *d, const char *to)
{
        mail_key_t key = { kind, "", d->session->id, d->registration ? d->registration->id : 0, to,
                           "<1.42.test@example.org>" };
        char *out = NULL, *err = NULL;
        size_t size = 0;
        int r = render_mail(&e->c, e->t, &key, d, at("2026-09-20 10:00"), &out, &size, &err);

        if (r < 0)
                fail_msg("render %s: %d %s", kind_to_string(kind), r, err ? err : "");
        assert_int_equal(strlen(out), size);
        return out;
}

static void test_joining_link_carries_the_link_and_a_calendar(void **state)
{
        env_t *e = *state;
        mail_data_t d = { .session = &e->s, .registration = &e->g, .instance = "abc" };
        char *m = render(e, KIND_JOINING_LINK, &d, e->g.email);

        assert_non_null(strstr(m, "meet.example.org/mecc-0922"));
        assert_non_null(strstr(m, "invite.ics"));
        assert_non_null(strstr(m, "method=PUBLISH"));
        free(m);
}

/* require_elearning: no link anywhere, the .ics included, until the e-learning is done */
static void test_link_held_back_until_the_elearning_is_done(void **state)
{
        env_t *e = *state;
        mail_data_t d = { .session = &e->s, .registration = &e->g, .instance = "abc" };
        char *m;

        e->c.require_elearning = true;
        m = render(e, KIND_JOINING_LINK, &d, e->g.email);
        assert_null(strstr(m, "mecc-0922"));
        free(m);
        e->g.elearning_done_at = at("2026-09-10 12:00");
        m = render(e, KIND_JOINING_LINK, &d, e->g.email);
        assert_non_null(strstr(m, "mecc-0922"));
        free(m);
}

static void test_roster_lists_what_it_is_handed(void **state)
{
        env_t *e = *state;
        registration_t people[2] = { e->g, e->g };
        mail_data_t d = { .session = &e->s, .roster = people, .n_roster = 2, .instance = "abc" };
        char *m;

        people[1].name = "Ann Other";
        people[1].email = "ann@example.org";
        m = render(e, KIND_ROSTER, &d, "trainer@example.org");
        assert_non_null(strstr(m, "attendees.csv"));
        assert_non_null(strstr(m, "Ann Other"));
        free(m);
        d.n_roster = 0;
        m = render(e, KIND_ROSTER, &d, "trainer@example.org");
        assert_non_null(strstr(m, "Nobody is booked"));
        free(m);
}

static void test_late_lists_the_next_sessions_it_is_handed(void **state)
{
        env_t *e = *state;
        session_t next = e->s;
        mail_data_t d = { .session = &e->s, .registration = &e->g, .instance = "abc" };
        char *m;

        next.id = 8;
        next.title = "Another date";
        next.booked = 12;
        m = render(e, KIND_LATE, &d, e->g.email);
        assert_non_null(strstr(m, "no other sessions open"));
        free(m);
        d.next = &next;
        d.n_next = 1;
        m = render(e, KIND_LATE, &d, e->g.email);
        assert_non_null(strstr(m, "Another date"));
        assert_non_null(strstr(m, "full, waiting list open"));
        free(m);
}

/* The website writes the link: only a web link is ever a link. */
static void test_a_link_that_is_not_a_web_address_is_never_a_link(void **state)
{
        env_t *e = *state;
        mail_data_t d = { .session = &e->s, .registration = &e->g, .instance = "abc" };
        const char *bad[] = { "javascript:alert(1)", "data:text/html,<b>x</b>", "mailto:x@example.org" };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char *m;

                e->s.join_url = (char *) bad[i];
                m = render(e, KIND_JOINING_LINK, &d, e->g.email);
                assert_null(strstr(m, bad[i]));
                assert_null(strstr(m, "javascript"));
                assert_non_null(strstr(m, "not ready yet"));
                free(m);
        }
}

static void test_cancellation_calendar_cancels(void **state)
{
        env_t *e = *state;
        mail_data_t d = { .session = &e->s, .registration = &e->g, .instance = "abc" };
        char *m = render(e, KIND_SESSION_CANCELLED, &d, e->g.email);

        assert_non_null(strstr(m, "method=CANCEL"));
        free(m);
}

static void test_refuses_what_cannot_be_built(void **state)
{
        env_t *e = *state;
        mail_data_t d = { .session = &e->s, .registration = NULL };
        mail_key_t key = { KIND_CONFIRMATION, "", 7, 42, "sian@example.org", "<x@example.org>" };
        char *out = NULL, *err = NULL;
        size_t size;

        /* an email to a registration without one */
        assert_int_equal(render_mail(&e->c, e->t, &key, &d, 0, &out, &size, &err), -EINVAL);
        d.registration = &e->g;
        key.recipient = "not an address";
        assert_int_equal(render_mail(&e->c, e->t, &key, &d, 0, &out, &size, &err), -EINVAL);
        assert_null(out);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_joining_link_carries_the_link_and_a_calendar, setup, teardown),
                cmocka_unit_test_setup_teardown(test_link_held_back_until_the_elearning_is_done, setup, teardown),
                cmocka_unit_test_setup_teardown(test_roster_lists_what_it_is_handed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_late_lists_the_next_sessions_it_is_handed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cancellation_calendar_cancels, setup, teardown),
                cmocka_unit_test_setup_teardown(test_a_link_that_is_not_a_web_address_is_never_a_link, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refuses_what_cannot_be_built, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
