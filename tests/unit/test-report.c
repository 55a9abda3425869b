/* test-report.c - what admins read, against a real SQLite file: the health verdict and its
 * counts, the lists in order, the dry run (which changes nothing), and a preview. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "clock.h"
#include "config.h"
#include "db.h"
#include "journal.h"
#include "report.h"
#include "scan.h"
#include "testdb.h"

#ifndef TOP
#define TOP "."
#endif

typedef struct {
        char dir[64];
        config_t c;
        db_t *db;
        admin_t a;
        char *why;
} env_t;

static duration_t reminders[] = { { 10, 0 }, { 3, 0 } };
static char *roster_to[] = { "mecc-team@example.org" };

static int setup(void **state)
{
        env_t *e = calloc(1, sizeof(*e));
        char path[128], *err = NULL;

        assert_non_null(e);
        journal_quiet(true);
        assert_int_equal(clock_set_zone("Europe/London"), 0);
        test_dir_make(e->dir, "test-report");
        snprintf(path, sizeof(path), "%s/meccd.db", e->dir);
        e->c = (config_t) {
                .scan_interval = 60,
                .templates = TOP "/etc/templates",
                .organisation = "Oxfordshire MECC Training",
                .elearning_url = "https://learn.example.org/mecc",
                .signpost_url = "https://livewell.example.org/",
                .booking_cutoff = { 7, 0 },
                .reminders_elearning = reminders,
                .n_reminders_elearning = 2,
                .reminder_joining_link = { 2, 0 },
                .follow_up_enabled = true,
                .reminder_follow_up = { 1, 0 },
                .retention = { 180, 0 },
                .roster_to = roster_to,
                .n_roster_to = 1,
                .smtp = { .from = "MECC Training <mecc@example.org>", .from_addr = "mecc@example.org" },
        };
        if (db_open(path, &e->db, &err) < 0)
                fail_msg("db_open: %s", err ? err : "?");
        e->a = (admin_t) { e->db, &e->c, at("2026-09-01 09:00") };
        *state = e;
        return 0;
}

static int teardown(void **state)
{
        env_t *e = *state;

        db_close(e->db);
        free(e->why);
        test_dir_remove(e->dir);
        free(e);
        return 0;
}

static int64_t add_session(env_t *e, const char *start, long capacity)
{
        session_fields_t f = {
                .given = SF_REQUIRED | SF_JOIN_URL | SF_TRAINER,
                .title = "MECC live session",
                .starts_at = at(start),
                .ends_at = at(start) + 5400,
                .capacity = capacity,
                .join_url = "https://meet.example.org/a",
                .trainer_email = "trainer@example.org",
        };
        int64_t id = 0;

        assert_int_equal(admin_session_add(&e->a, &f, true, &id, &e->why), 0);
        return id;
}

static int64_t add_reg(env_t *e, int64_t sid, const char *email)
{
        int64_t id = 0;

        assert_int_equal(admin_register(&e->a, sid, "Someone", email, &id, &e->why), 0);
        return id;
}

static void scanned(env_t *e, int64_t t)
{
        char v[32];

        assert_int_equal(scan_run(e->db, &e->c, t, NULL), 0);
        snprintf(v, sizeof(v), "%lld", (long long) t);
        assert_int_equal(db_meta_set(e->db, "last_scan_at", v), 0);
}

static health_t health(env_t *e, int64_t now)
{
        health_t h;

        assert_int_equal(report_health(e->db, &e->c, now, &h), 0);
        return h;
}

/* ---- status ------------------------------------------------------------------------------ */

static void test_health_verdicts(void **state)
{
        env_t *e = *state;
        int64_t sid = add_session(e, "2026-09-22 10:30", 3), now = at("2026-09-01 09:00");
        health_t h;

        /* never scanned: cannot be healthy */
        add_reg(e, sid, "ann@example.org");
        h = health(e, now);
        assert_false(h.scanning);
        assert_false(h.healthy);
        assert_int_equal(h.last_scan_at, 0);
        assert_int_equal(h.unprocessed, 1);

        /* a scan a minute ago, nothing failed or waiting: healthy */
        scanned(e, now);
        sql(e, "UPDATE outbox SET status = 'sent'");
        h = health(e, now + 60);
        assert_true(h.scanning);
        assert_true(h.healthy);
        assert_int_equal(h.unprocessed, 0);
        assert_int_equal(h.open_sessions, 1);
        assert_int_equal(h.seats_left, 2);
        assert_int_equal(h.last_scan_at, now);

        /* the daemon stopped: three scan intervals and a minute is the limit */
        assert_true(health(e, now + 3 * 60 + 59).healthy);
        assert_false(health(e, now + 3 * 60 + 60).scanning);

        /* an email queued for over an hour is overdue (the relay is down) */
        sql(e, "UPDATE outbox SET status = 'queued'");
        h = health(e, now + 60);
        assert_true(h.healthy);
        assert_int_equal(h.queued, 1);
        assert_int_equal(h.overdue, 0);
        scanned(e, now + HEALTH_OVERDUE_AFTER);
        h = health(e, now + HEALTH_OVERDUE_AFTER);
        assert_int_equal(h.overdue, 1);
        assert_false(h.healthy);

        /* a failed email needs someone to look at it */
        sql(e, "UPDATE outbox SET status = 'failed'");
        h = health(e, now + HEALTH_OVERDUE_AFTER);
        assert_int_equal(h.failed, 1);
        assert_int_equal(h.overdue, 0);
        assert_false(h.healthy);
}

static void test_health_counts_open_seats_once(void **state)
{
        env_t *e = *state;
        int64_t a = add_session(e, "2026-09-22 10:30", 2), b = add_session(e, "2026-09-29 10:30", 5);
        int64_t c = add_session(e, "2026-10-06 10:30", 5);
        health_t h;

        add_reg(e, a, "ann@example.org");
        add_reg(e, a, "bob@example.org");
        add_reg(e, a, "cat@example.org");
        add_reg(e, b, "dan@example.org");
        scanned(e, e->a.now);
        assert_int_equal(admin_session_cancel(&e->a, c, &e->why), 0);
        /* capacity lowered under the bookings: no place left, not a negative number */
        sql(e, "UPDATE sessions SET capacity = 1 WHERE id = %lld", (long long) a);
        h = health(e, e->a.now);
        assert_int_equal(h.open_sessions, 2);
        assert_int_equal(h.seats_left, 4); /* 0 + 4; the cancelled one does not count */
}

/* ---- lists ------------------------------------------------------------------------------- */

typedef struct {
        int64_t ids[16];
        long counts[16];
        size_t n;
} seen_t;

static int see_session(const session_t *s, void *userdata)
{
        seen_t *v = userdata;

        v->counts[v->n] = s->booked * 100 + s->waitlisted;
        v->ids[v->n++] = s->id;
        return 0;
}

static int see_registration(const registration_t *g, void *userdata)
{
        seen_t *v = userdata;

        v->ids[v->n++] = g->id;
        return 0;
}

static int see_outbox(const mail_row_t *o, void *userdata)
{
        seen_t *v = userdata;

        v->counts[v->n] = o->next_attempt_at ? 1 : 0;
        v->ids[v->n++] = o->registration_id;
        return 0;
}

static int stop_at_first(const registration_t *g, void *userdata)
{
        (void) g;
        (void) userdata;
        return -ECANCELED;
}

static void test_lists(void **state)
{
        env_t *e = *state;
        int64_t late = add_session(e, "2026-10-06 10:30", 5), early = add_session(e, "2026-09-22 10:30", 1);
        int64_t ann = add_reg(e, early, "ann@example.org"), bob = add_reg(e, late, "bob@example.org");
        int64_t cat = add_reg(e, early, "cat@example.org");
        seen_t v = { 0 };

        scanned(e, e->a.now);
        assert_int_equal(report_sessions(e->db, see_session, &v), 0);
        assert_int_equal(v.n, 2);
        assert_int_equal(v.ids[0], early); /* by start */
        assert_int_equal(v.counts[0], 101); /* one booked, one waiting */
        assert_int_equal(v.ids[1], late);

        v = (seen_t) { 0 };
        assert_int_equal(report_registrations(e->db, 0, see_registration, &v), 0);
        assert_int_equal(v.n, 3);
        assert_true(v.ids[0] == bob && v.ids[1] == ann && v.ids[2] == cat); /* by session, then time */
        v = (seen_t) { 0 };
        assert_int_equal(report_registrations(e->db, early, see_registration, &v), 0);
        assert_true(v.n == 2 && v.ids[0] == ann && v.ids[1] == cat);
        assert_int_equal(report_registrations(e->db, early, stop_at_first, NULL), -ECANCELED);

        /* three emails queued; one sent: only queued rows have a next attempt */
        sql(e, "UPDATE outbox SET status = 'sent', sent_at = 1 WHERE registration_id = %lld", (long long) bob);
        v = (seen_t) { 0 };
        assert_int_equal(report_outbox(e->db, -1, see_outbox, &v), 0);
        assert_int_equal(v.n, 3);
        assert_int_equal(v.counts[0] + v.counts[1] + v.counts[2], 2);
        v = (seen_t) { 0 };
        assert_int_equal(report_outbox(e->db, MAIL_SENT, see_outbox, &v), 0);
        assert_true(v.n == 1 && v.ids[0] == bob && v.counts[0] == 0);
        v = (seen_t) { 0 };
        assert_int_equal(report_outbox(e->db, MAIL_FAILED, see_outbox, &v), 0);
        assert_int_equal(v.n, 0);
}

/* ---- the dry run ------------------------------------------------------------------------- */

typedef struct {
        upcoming_t u[16];
        size_t n;
} plan_t;

static int see_upcoming(const upcoming_t *u, void *userdata)
{
        plan_t *p = userdata;

        assert_true(p->n < 16);
        p->u[p->n++] = *u;
        return 0;
}

static int count_row(const mail_row_t *o, void *userdata)
{
        (void) o;
        (*(size_t *) userdata)++;
        return 0;
}

static void test_upcoming_changes_nothing(void **state)
{
        env_t *e = *state;
        int64_t sid = add_session(e, "2026-09-22 10:30", 1);
        int64_t ann = add_reg(e, sid, "ann@example.org"), bob = add_reg(e, sid, "bob@example.org");
        plan_t p = { 0 };
        registration_t g;
        size_t n = 0;

        assert_int_equal(report_upcoming(e->db, &e->c, e->a.now, at("2026-09-16 00:00"), see_upcoming, &p), 0);
        assert_int_equal(p.n, 5);
        assert_true(p.u[0].kind == KIND_CONFIRMATION && p.u[0].registration_id == ann && p.u[0].at == e->a.now);
        assert_true(p.u[1].kind == KIND_WAITLISTED && p.u[1].registration_id == bob);
        assert_true(p.u[2].kind == KIND_ELEARNING_REMINDER && p.u[2].at == at("2026-09-12 10:30"));
        assert_true(p.u[3].kind == KIND_NOT_PLACED && p.u[3].at == at("2026-09-15 10:30"));
        assert_true(p.u[4].kind == KIND_ROSTER && p.u[4].registration_id == 0 && p.u[4].session_id == sid);
        /* a dry run: the real database is as it was */
        assert_int_equal(db_registration_get(e->db, ann, &g), 1);
        assert_int_equal(g.status, REG_NEW);
        registration_clear(&g);
        assert_int_equal(report_outbox(e->db, -1, count_row, &n), 0);
        assert_int_equal(n, 0);
}

/* ---- preview ------------------------------------------------------------------------------- */

static void test_preview(void **state)
{
        env_t *e = *state;
        int64_t sid = add_session(e, "2026-09-22 10:30", 5), ann = add_reg(e, sid, "ann@example.org");
        char *out = NULL;
        size_t size = 0;

        scanned(e, e->a.now);
        assert_int_equal(report_preview(e->db, &e->c, e->a.now, KIND_CONFIRMATION, ann, &out, &size, &e->why), 0);
        assert_non_null(strstr(out, "To: Someone <ann@example.org>"));
        assert_null(strstr(out, "@meccd.invalid>")); /* the Message-ID it was queued with */
        free(out);
        out = NULL;
        /* the roster goes to the trainer */
        assert_int_equal(report_preview(e->db, &e->c, e->a.now, KIND_ROSTER, ann, &out, &size, &e->why), 0);
        assert_non_null(strstr(out, "To: trainer@example.org"));
        assert_non_null(strstr(out, "<preview."));
        free(out);
        out = NULL;
        assert_int_equal(report_preview(e->db, &e->c, e->a.now, KIND_CONFIRMATION, 99, &out, &size, &e->why),
                         ADMIN_NOT_FOUND);
        e->c.templates = "/nonexistent";
        assert_int_equal(report_preview(e->db, &e->c, e->a.now, KIND_CONFIRMATION, ann, &out, &size, &e->why),
                         ADMIN_CONFIG);
        assert_null(out);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        const struct CMUnitTest tests[] = {
                T(test_health_verdicts),
                T(test_health_counts_open_seats_once),
                T(test_lists),
                T(test_upcoming_changes_nothing),
                T(test_preview),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
