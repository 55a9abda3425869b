/* test-scan.c - the rules of a scan against a real SQLite file: who is booked, who waits,
 * who is late, and which emails each step queues, once, at their moment. */
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

#include "clock.h"
#include "config.h"
#include "db.h"
#include "journal.h"
#include "outbox.h"
#include "scan.h"
#include "testdb.h"

typedef struct {
        char dir[64];
        config_t c;
        db_t *db;
} env_t;

static duration_t reminders[] = { { 10, 0 }, { 3, 0 } };
static char *roster_to[] = { "mecc-team@example.org", "hub@example.org" };

static int setup(void **state)
{
        env_t *e = calloc(1, sizeof(*e));
        char path[128], *err = NULL;

        assert_non_null(e);
        journal_quiet(true);
        assert_int_equal(clock_set_zone("Europe/London"), 0);
        test_dir_make(e->dir, "test-scan");
        snprintf(path, sizeof(path), "%s/meccd.db", e->dir);
        e->c = (config_t) {
                .booking_cutoff = { 7, 0 },
                .reminders_elearning = reminders,
                .n_reminders_elearning = 2,
                .reminder_joining_link = { 2, 0 },
                .follow_up_enabled = true,
                .reminder_follow_up = { 1, 0 },
                .retention = { 20, 0 },
                .roster_to = roster_to,
                .n_roster_to = 1,
                .smtp = { .from = "MECC <mecc@example.org>", .from_addr = "mecc@example.org" },
        };
        if (db_open(path, &e->db, &err) < 0)
                fail_msg("db_open: %s", err ? err : "?");
        *state = e;
        return 0;
}

static int teardown(void **state)
{
        env_t *e = *state;

        db_close(e->db);
        test_dir_remove(e->dir);
        free(e);
        return 0;
}

/* ---- helpers ------------------------------------------------------------------------- */

static int64_t add_session(env_t *e, const char *start, long capacity, const char *trainer)
{
        int64_t s = at(start);

        sql(e, "INSERT INTO sessions(title, starts_at, ends_at, capacity, join_url, trainer_email)"
               " VALUES ('MECC live session', %lld, %lld, %ld, 'https://meet.example.org/x', %s%s%s)",
            (long long) s, (long long) s + 5400, capacity, trainer ? "'" : "",
            trainer ? trainer : "NULL", trainer ? "'" : "");
        return sqlite3_last_insert_rowid(db_handle(e->db));
}

static int64_t add_reg(env_t *e, int64_t sid, const char *email, const char *when)
{
        sql(e, "INSERT INTO registrations(session_id, name, email, registered_at)"
               " VALUES (%lld, 'Someone', '%s', %lld)", (long long) sid, email, (long long) at(when));
        return sqlite3_last_insert_rowid(db_handle(e->db));
}

static void scan(env_t *e, const char *when)
{
        scan_stats_t stats;

        assert_int_equal(scan_run(e->db, &e->c, at(when), &stats), 0);
}

static void expect_status(env_t *e, int64_t rid, const char *want)
{
        registration_t g;

        assert_int_equal(db_registration_get(e->db, rid, &g), 1);
        if (strcmp(reg_status_to_string(g.status), want) != 0)
                fail_msg("registration %lld is %s, want %s", (long long) rid, reg_status_to_string(g.status), want);
        registration_clear(&g);
}

/* How many emails of this kind (and occasion, unless NULL) are queued for a registration. */
static long mails(env_t *e, int64_t rid, const char *kind, const char *occasion)
{
        return (long) int_query(e, "SELECT count(*) FROM outbox WHERE ifnull(registration_id, 0) = %lld"
                                   " AND kind = '%s'%s%s%s", (long long) rid, kind,
                                occasion ? " AND occasion = '" : "", occasion ? occasion : "",
                                occasion ? "'" : "");
}

static long all_mails(env_t *e)
{
        return (long) int_query(e, "SELECT count(*) FROM outbox");
}

static long created_at(env_t *e, int64_t rid, const char *kind, const char *occasion)
{
        return (long) int_query(e, "SELECT created_at FROM outbox WHERE registration_id = %lld"
                                   " AND kind = '%s' AND occasion = '%s'", (long long) rid, kind, occasion);
}

/* ---- 1. admit ------------------------------------------------------------------------ */

static void test_admit_books_then_waitlists(void **state)
{
        env_t *e = *state;
        int64_t s = add_session(e, "2026-09-22 10:30", 2, NULL);
        int64_t a = add_reg(e, s, "ann@example.org", "2026-09-01 09:00");
        int64_t b = add_reg(e, s, "bob@example.org", "2026-09-01 09:01");
        int64_t c = add_reg(e, s, "cat@example.org", "2026-09-01 09:02");
        int64_t later = add_reg(e, s, "dee@example.org", "2026-09-01 12:00");

        scan(e, "2026-09-01 10:00");
        expect_status(e, a, "booked");
        expect_status(e, b, "booked");
        expect_status(e, c, "waitlisted");
        /* registered after the scan's time: not yet seen */
        expect_status(e, later, "new");
        assert_int_equal(mails(e, a, "confirmation", ""), 1);
        assert_int_equal(mails(e, b, "confirmation", ""), 1);
        assert_int_equal(mails(e, c, "waitlisted", ""), 1);
        assert_int_equal(all_mails(e), 3);
        /* the website's "Now full" */
        assert_int_equal(int_query(e, "SELECT full FROM session_availability WHERE session_id = %lld",
                                   (long long) s), 1);
        /* a second scan queues nothing more */
        scan(e, "2026-09-01 10:00");
        assert_int_equal(all_mails(e), 3);
}

static void test_admit_tokens(void **state)
{
        env_t *e = *state;
        int64_t s = add_session(e, "2026-09-22 10:30", 1, NULL);
        int64_t a = add_reg(e, s, "ann@example.org", "2026-09-01 09:00");
        int64_t b = add_reg(e, s, "bob@example.org", "2026-09-01 09:01");
        int64_t bad = add_reg(e, s, "not an address", "2026-09-01 09:02");
        registration_t ga, gb, gbad;

        scan(e, "2026-09-01 10:00");
        assert_int_equal(db_registration_get(e->db, a, &ga), 1);
        assert_int_equal(db_registration_get(e->db, b, &gb), 1);
        assert_int_equal(db_registration_get(e->db, bad, &gbad), 1);
        assert_non_null(ga.token);
        assert_non_null(gb.token);
        assert_int_equal(strlen(ga.token), 22);
        assert_int_equal(strspn(ga.token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), 22);
        assert_string_not_equal(ga.token, gb.token);
        assert_null(gbad.token);
        assert_int_equal(gbad.status, REG_INVALID);
        registration_clear(&ga);
        registration_clear(&gb);
        registration_clear(&gbad);

        /* 128 random bits each time */
        char t1[23], t2[23];
        assert_int_equal(scan_new_token(t1), 0);
        assert_int_equal(scan_new_token(t2), 0);
        assert_string_not_equal(t1, t2);
}

static void test_admit_invalid_and_duplicate_get_no_email(void **state)
{
        env_t *e = *state;
        int64_t s = add_session(e, "2026-09-22 10:30", 5, NULL);
        int64_t a = add_reg(e, s, "ann@example.org", "2026-09-01 09:00");
        int64_t dup = add_reg(e, s, "ANN@Example.org", "2026-09-01 09:01");
        int64_t two = add_reg(e, s, "a@example.org, b@example.org", "2026-09-01 09:02");
        int64_t named = add_reg(e, s, "Ann <ann2@example.org>", "2026-09-01 09:03");
        int64_t other;

        scan(e, "2026-09-01 10:00");
        expect_status(e, a, "booked");
        expect_status(e, dup, "invalid");
        expect_status(e, two, "invalid");
        expect_status(e, named, "invalid");
        assert_int_equal(all_mails(e), 1);

        /* the same address on another session is a new booking, and after a cancellation
         * the address may book again */
        other = add_session(e, "2026-09-23 10:30", 5, NULL);
        int64_t a2 = add_reg(e, other, "ann@example.org", "2026-09-01 11:00");
        sql(e, "UPDATE registrations SET status = 'cancelled' WHERE id = %lld", (long long) a);
        int64_t a3 = add_reg(e, s, "Ann@example.org", "2026-09-01 11:01");
        scan(e, "2026-09-01 12:00");
        expect_status(e, a2, "booked");
        expect_status(e, a3, "booked");
}

static void test_admit_late(void **state)
{
        env_t *e = *state;
        int64_t open = add_session(e, "2026-09-22 10:30", 5, NULL);
        int64_t cancelled = add_session(e, "2026-09-23 10:30", 5, NULL);
        int64_t closed = add_session(e, "2026-09-24 10:30", 5, NULL);
        int64_t past = add_session(e, "2026-09-10 10:30", 5, NULL);
        int64_t r1, r2, r3, r4, r5;

        sql(e, "UPDATE sessions SET status = 'cancelled' WHERE id = %lld", (long long) cancelled);
        sql(e, "UPDATE sessions SET status = 'closed' WHERE id = %lld", (long long) closed);
        r1 = add_reg(e, open, "a@example.org", "2026-09-15 10:29");
        r2 = add_reg(e, cancelled, "b@example.org", "2026-09-01 09:00");
        r3 = add_reg(e, closed, "c@example.org", "2026-09-01 09:00");
        /* the website still showed it open: now past its cutoff, the session not yet closed */
        r4 = add_reg(e, past, "d@example.org", "2026-09-03 10:31");
        scan(e, "2026-09-15 10:29");
        expect_status(e, r1, "booked");
        expect_status(e, r2, "late");
        expect_status(e, r3, "late");
        expect_status(e, r4, "late");
        assert_int_equal(mails(e, r2, "late", ""), 1);
        assert_int_equal(mails(e, r3, "late", ""), 1);
        assert_int_equal(mails(e, r4, "late", ""), 1);
        /* a minute later the first session's cutoff has passed too */
        r5 = add_reg(e, open, "e@example.org", "2026-09-15 10:30");
        scan(e, "2026-09-15 10:30");
        expect_status(e, r5, "late");
        assert_int_equal(mails(e, r5, "late", ""), 1);
        assert_int_equal(mails(e, r5, "confirmation", NULL), 0);
}

/* ---- 2. promote ---------------------------------------------------------------------- */

static void test_promote_earliest_after_cancellation(void **state)
{
        env_t *e = *state;
        int64_t s = add_session(e, "2026-09-22 10:30", 1, NULL);
        int64_t a = add_reg(e, s, "a@example.org", "2026-09-01 09:00");
        /* inserted out of order: the earliest registration waits first */
        int64_t w2 = add_reg(e, s, "w2@example.org", "2026-09-01 09:20");
        int64_t w1 = add_reg(e, s, "w1@example.org", "2026-09-01 09:10");
        int64_t w3 = add_reg(e, s, "w3@example.org", "2026-09-01 09:30");

        scan(e, "2026-09-01 10:00");
        expect_status(e, w1, "waitlisted");
        /* the first on the list cancels too: never promoted */
        sql(e, "UPDATE registrations SET status = 'cancelled' WHERE id IN (%lld, %lld)",
            (long long) a, (long long) w1);
        scan(e, "2026-09-02 10:00");
        expect_status(e, w1, "cancelled");
        expect_status(e, w2, "booked");
        expect_status(e, w3, "waitlisted");
        assert_int_equal(mails(e, w2, "promoted", ""), 1);
        assert_int_equal(mails(e, w1, "promoted", NULL), 0);
        assert_int_equal(mails(e, w3, "promoted", NULL), 0);
        scan(e, "2026-09-02 11:00");
        assert_int_equal(mails(e, w3, "promoted", NULL), 0);
}

static void test_promote_on_raised_capacity(void **state)
{
        env_t *e = *state;
        int64_t s = add_session(e, "2026-09-22 10:30", 1, NULL);
        int64_t r[4];

        for (int i = 0; i < 4; i++) {
                char addr[32], when[32];

                snprintf(addr, sizeof(addr), "p%d@example.org", i);
                snprintf(when, sizeof(when), "2026-09-01 09:0%d", i);
                r[i] = add_reg(e, s, addr, when);
        }
        scan(e, "2026-09-01 10:00");
        sql(e, "UPDATE sessions SET capacity = 3 WHERE id = %lld", (long long) s);
        scan(e, "2026-09-02 10:00");
        expect_status(e, r[1], "booked");
        expect_status(e, r[2], "booked");
        expect_status(e, r[3], "waitlisted");
        assert_int_equal(mails(e, r[1], "promoted", ""), 1);
        assert_int_equal(mails(e, r[2], "promoted", ""), 1);
        assert_int_equal(mails(e, r[3], "promoted", NULL), 0);
}

static void test_no_promotion_after_cutoff(void **state)
{
        env_t *e = *state;
        int64_t s = add_session(e, "2026-09-22 10:30", 1, "trainer@example.org");
        int64_t a = add_reg(e, s, "a@example.org", "2026-09-01 09:00");
        int64_t w = add_reg(e, s, "w@example.org", "2026-09-01 09:01");

        scan(e, "2026-09-01 10:00");
        /* a cancellation just after the cutoff, before the next scan */
        sql(e, "UPDATE registrations SET status = 'cancelled' WHERE id = %lld", (long long) a);
        scan(e, "2026-09-15 10:30");
        expect_status(e, w, "late");
        assert_int_equal(mails(e, w, "promoted", NULL), 0);
        assert_int_equal(mails(e, w, "not_placed", ""), 1);
        /* a capacity raised after the cutoff books nobody either */
        sql(e, "UPDATE sessions SET capacity = 5 WHERE id = %lld", (long long) s);
        scan(e, "2026-09-16 10:00");
        expect_status(e, w, "late");
        assert_int_equal(mails(e, w, "promoted", NULL), 0);
}

/* ---- 3. close ------------------------------------------------------------------------ */

static void test_close_at_cutoff(void **state)
{
        env_t *e = *state;
        int64_t s = add_session(e, "2026-09-22 10:30", 1, "trainer@example.org");
        int64_t team = add_session(e, "2026-09-23 10:30", 1, NULL);
        int64_t a = add_reg(e, s, "a@example.org", "2026-09-01 09:00");
        int64_t w1 = add_reg(e, s, "w1@example.org", "2026-09-01 09:01");
        int64_t w2 = add_reg(e, s, "w2@example.org", "2026-09-01 09:02");

        e->c.n_roster_to = 2;
        scan(e, "2026-09-01 10:00");
        scan(e, "2026-09-15 10:29");
        assert_int_equal(int_query(e, "SELECT count(*) FROM sessions WHERE status = 'closed'"), 0);
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE kind = 'roster'"), 0);

        scan(e, "2026-09-15 10:30");
        assert_int_equal(int_query(e, "SELECT count(*) FROM sessions WHERE status = 'closed'"), 1);
        expect_status(e, a, "booked");
        expect_status(e, w1, "late");
        expect_status(e, w2, "late");
        assert_int_equal(mails(e, w1, "not_placed", ""), 1);
        assert_int_equal(mails(e, w2, "not_placed", ""), 1);
        /* the trainer, not roster_to, gets the roster */
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE kind = 'roster'"
                                      " AND session_id = %lld AND recipient = 'trainer@example.org'"
                                      " AND registration_id IS NULL", (long long) s), 1);
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE kind = 'roster'"
                                      " AND session_id = %lld", (long long) s), 1);

        /* without a trainer, every roster_to address gets it, once */
        scan(e, "2026-09-16 10:30");
        scan(e, "2026-09-16 11:30");
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE kind = 'roster'"
                                      " AND session_id = %lld", (long long) team), 2);
        assert_int_equal(int_query(e, "SELECT count(DISTINCT recipient) FROM outbox WHERE kind = 'roster'"
                                      " AND session_id = %lld", (long long) team), 2);
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE kind = 'roster'"), 3);
}

static void test_cancelled_session_is_not_closed(void **state)
{
        env_t *e = *state;
        int64_t s = add_session(e, "2026-09-22 10:30", 1, "trainer@example.org");

        add_reg(e, s, "a@example.org", "2026-09-01 09:00");
        scan(e, "2026-09-01 10:00");
        sql(e, "UPDATE sessions SET status = 'cancelled' WHERE id = %lld", (long long) s);
        scan(e, "2026-09-16 10:00");
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE kind = 'roster'"), 0);
        assert_int_equal(int_query(e, "SELECT count(*) FROM sessions WHERE status = 'cancelled'"), 1);
}

/* ---- 4. remind ----------------------------------------------------------------------- */

static void test_reminders_at_each_offset(void **state)
{
        env_t *e = *state;
        int64_t s = add_session(e, "2026-09-22 10:30", 10, NULL);
        int64_t early = add_reg(e, s, "early@example.org", "2026-09-01 09:00");
        int64_t done = add_reg(e, s, "done@example.org", "2026-09-01 09:01");
        int64_t mid, late;

        /* bookings close late for this session, two days before */
        sql(e, "UPDATE sessions SET closes_at = %lld WHERE id = %lld",
            (long long) at("2026-09-20 10:30"), (long long) s);
        scan(e, "2026-09-01 10:00");
        sql(e, "UPDATE registrations SET elearning_done_at = %lld WHERE id = %lld",
            (long long) at("2026-09-02 10:00"), (long long) done);
        scan(e, "2026-09-12 10:29");
        assert_int_equal(mails(e, early, "elearning_reminder", NULL), 0);
        scan(e, "2026-09-12 10:30");
        assert_int_equal(mails(e, early, "elearning_reminder", "10d"), 1);
        assert_int_equal(mails(e, done, "elearning_reminder", NULL), 0);

        /* booked after the 10-day moment: only the 3-day reminder */
        mid = add_reg(e, s, "mid@example.org", "2026-09-12 11:00");
        scan(e, "2026-09-12 11:00");
        scan(e, "2026-09-13 11:00");
        assert_int_equal(mails(e, mid, "elearning_reminder", NULL), 0);
        scan(e, "2026-09-19 10:30");
        assert_int_equal(mails(e, early, "elearning_reminder", "3d"), 1);
        assert_int_equal(mails(e, mid, "elearning_reminder", "3d"), 1);
        assert_int_equal(mails(e, mid, "elearning_reminder", NULL), 1);

        /* booked after the last moment: no reminder at all */
        late = add_reg(e, s, "late@example.org", "2026-09-19 12:00");
        scan(e, "2026-09-19 12:00");
        scan(e, "2026-09-20 09:00");
        expect_status(e, late, "booked");
        assert_int_equal(mails(e, late, "elearning_reminder", NULL), 0);
        assert_int_equal(mails(e, early, "elearning_reminder", NULL), 2);
}

/* ---- 5. join ------------------------------------------------------------------------- */

static void test_joining_link(void **state)
{
        env_t *e = *state;
        int64_t s = add_session(e, "2026-09-22 10:30", 10, NULL);
        int64_t a = add_reg(e, s, "a@example.org", "2026-09-01 09:00");
        int64_t b;

        /* bookings close late for this session, on the morning itself */
        sql(e, "UPDATE sessions SET closes_at = %lld WHERE id = %lld",
            (long long) at("2026-09-22 09:00"), (long long) s);
        scan(e, "2026-09-01 10:00");
        scan(e, "2026-09-20 10:29");
        assert_int_equal(mails(e, a, "joining_link", NULL), 0);
        scan(e, "2026-09-20 10:30");
        assert_int_equal(mails(e, a, "joining_link", ""), 1);
        /* booked later than that: at once */
        b = add_reg(e, s, "b@example.org", "2026-09-21 08:00");
        scan(e, "2026-09-21 08:00");
        assert_int_equal(mails(e, b, "confirmation", ""), 1);
        assert_int_equal(mails(e, b, "joining_link", ""), 1);
        /* without require_elearning, no one is told the link is waiting */
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE occasion = 'link-waiting'"), 0);
        scan(e, "2026-09-21 09:00");
        assert_int_equal(mails(e, a, "joining_link", NULL), 1);
}

static void test_joining_link_waits_for_elearning(void **state)
{
        env_t *e = *state;
        int64_t s = add_session(e, "2026-09-22 10:30", 10, NULL);
        int64_t done = add_reg(e, s, "done@example.org", "2026-09-01 09:00");
        int64_t slow = add_reg(e, s, "slow@example.org", "2026-09-01 09:01");
        int64_t never = add_reg(e, s, "never@example.org", "2026-09-01 09:02");

        e->c.require_elearning = true;
        scan(e, "2026-09-01 10:00");
        sql(e, "UPDATE registrations SET elearning_done_at = %lld WHERE id = %lld",
            (long long) at("2026-09-05 10:00"), (long long) done);
        scan(e, "2026-09-12 10:30");
        scan(e, "2026-09-19 10:30");
        assert_int_equal(mails(e, slow, "elearning_reminder", "3d"), 1);

        scan(e, "2026-09-20 10:29");
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE kind = 'joining_link'"
                                      " OR occasion = 'link-waiting'"), 0);
        scan(e, "2026-09-20 10:30");
        assert_int_equal(mails(e, done, "joining_link", ""), 1);
        assert_int_equal(mails(e, done, "elearning_reminder", NULL), 0);
        assert_int_equal(mails(e, slow, "joining_link", NULL), 0);
        assert_int_equal(mails(e, never, "joining_link", NULL), 0);
        /* the last reminder: the link is waiting for the e-learning, once */
        assert_int_equal(mails(e, slow, "elearning_reminder", "link-waiting"), 1);
        assert_int_equal(mails(e, never, "elearning_reminder", "link-waiting"), 1);
        scan(e, "2026-09-20 12:00");
        assert_int_equal(mails(e, slow, "elearning_reminder", NULL), 3);

        /* the e-learning done (and its earlier reminders expired by delivery): the link
         * goes at the next scan, and nothing else */
        sql(e, "UPDATE outbox SET status = 'expired' WHERE registration_id = %lld"
               " AND kind = 'elearning_reminder'", (long long) slow);
        sql(e, "UPDATE registrations SET elearning_done_at = %lld WHERE id = %lld",
            (long long) at("2026-09-21 18:00"), (long long) slow);
        scan(e, "2026-09-21 18:05");
        assert_int_equal(mails(e, slow, "joining_link", ""), 1);
        assert_int_equal(created_at(e, slow, "joining_link", ""), at("2026-09-21 18:05"));
        assert_int_equal(mails(e, slow, "elearning_reminder", NULL), 3);

        /* never done: never sent, not even once the session has started */
        scan(e, "2026-09-22 10:00");
        scan(e, "2026-09-22 11:00");
        scan(e, "2026-09-23 12:00");
        assert_int_equal(mails(e, never, "joining_link", NULL), 0);
        assert_int_equal(mails(e, never, "elearning_reminder", "link-waiting"), 1);
}

static void test_link_waiting_when_booked_after_the_link_moment(void **state)
{
        env_t *e = *state;
        int64_t s = add_session(e, "2026-09-22 10:30", 10, NULL);
        int64_t r;

        e->c.require_elearning = true;
        sql(e, "UPDATE sessions SET closes_at = %lld WHERE id = %lld",
            (long long) at("2026-09-22 09:00"), (long long) s);
        r = add_reg(e, s, "r@example.org", "2026-09-21 08:00");
        scan(e, "2026-09-21 08:00");
        assert_int_equal(mails(e, r, "confirmation", ""), 1);
        assert_int_equal(mails(e, r, "elearning_reminder", "link-waiting"), 1);
        assert_int_equal(mails(e, r, "joining_link", NULL), 0);
}

/* ---- 6. follow up -------------------------------------------------------------------- */

static void test_follow_up_and_done(void **state)
{
        env_t *e = *state;
        int64_t s = add_session(e, "2026-09-22 10:30", 1, NULL);
        int64_t a = add_reg(e, s, "a@example.org", "2026-09-01 09:00");
        int64_t w = add_reg(e, s, "w@example.org", "2026-09-01 09:01");
        int64_t gone = add_reg(e, s, "c@example.org", "2026-09-01 09:02");

        scan(e, "2026-09-01 10:00");
        sql(e, "UPDATE registrations SET status = 'cancelled' WHERE id = %lld", (long long) gone);
        scan(e, "2026-09-22 11:59");
        assert_int_equal(int_query(e, "SELECT count(*) FROM sessions WHERE status = 'closed'"), 1);
        scan(e, "2026-09-22 12:00");
        assert_int_equal(int_query(e, "SELECT count(*) FROM sessions WHERE status = 'done'"), 1);
        assert_int_equal(mails(e, a, "follow_up", NULL), 0);
        scan(e, "2026-09-23 11:59");
        assert_int_equal(mails(e, a, "follow_up", NULL), 0);
        scan(e, "2026-09-23 12:00");
        assert_int_equal(mails(e, a, "follow_up", ""), 1);
        assert_int_equal(mails(e, w, "follow_up", NULL), 0);
        assert_int_equal(mails(e, gone, "follow_up", NULL), 0);
        scan(e, "2026-09-24 12:00");
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE kind = 'follow_up'"), 1);
}

static void test_follow_up_disabled(void **state)
{
        env_t *e = *state;
        int64_t s = add_session(e, "2026-09-22 10:30", 1, NULL);

        e->c.follow_up_enabled = false;
        add_reg(e, s, "a@example.org", "2026-09-01 09:00");
        scan(e, "2026-09-01 10:00");
        scan(e, "2026-09-22 12:00");
        scan(e, "2026-09-30 12:00");
        assert_int_equal(int_query(e, "SELECT count(*) FROM sessions WHERE status = 'done'"), 1);
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE kind = 'follow_up'"), 0);
}

/* ---- 7. cancel, 8. change ------------------------------------------------------------ */

static void test_session_cancelled_once_to_booked_and_waiting(void **state)
{
        env_t *e = *state;
        int64_t s = add_session(e, "2026-09-22 10:30", 1, NULL);
        int64_t a = add_reg(e, s, "a@example.org", "2026-09-01 09:00");
        int64_t w = add_reg(e, s, "w@example.org", "2026-09-01 09:01");
        int64_t c = add_reg(e, s, "c@example.org", "2026-09-01 09:02");
        int64_t late;

        scan(e, "2026-09-01 10:00");
        sql(e, "UPDATE registrations SET status = 'cancelled' WHERE id = %lld", (long long) c);
        sql(e, "UPDATE sessions SET status = 'cancelled' WHERE id = %lld", (long long) s);
        late = add_reg(e, s, "l@example.org", "2026-09-02 09:30");
        scan(e, "2026-09-02 10:00");
        assert_int_equal(mails(e, a, "session_cancelled", ""), 1);
        assert_int_equal(mails(e, w, "session_cancelled", ""), 1);
        assert_int_equal(mails(e, c, "session_cancelled", NULL), 0);
        expect_status(e, late, "late");
        assert_int_equal(mails(e, late, "session_cancelled", NULL), 0);
        assert_int_equal(mails(e, late, "late", ""), 1);
        scan(e, "2026-09-03 10:00");
        scan(e, "2026-09-20 10:30");
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE kind = 'session_cancelled'"), 2);
        /* nothing else is due for a cancelled session */
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE kind IN"
                                      " ('elearning_reminder', 'joining_link', 'roster', 'not_placed')"), 0);
}

static void test_change_to_those_emailed(void **state)
{
        env_t *e = *state;
        int64_t s = add_session(e, "2026-09-22 10:30", 10, NULL);
        int64_t a = add_reg(e, s, "a@example.org", "2026-09-01 09:00");
        int64_t b = add_reg(e, s, "b@example.org", "2026-09-03 09:00");

        scan(e, "2026-09-01 10:00");
        /* `session edit`: a new start after Ann was emailed, before Bob was admitted */
        sql(e, "UPDATE sessions SET starts_at = starts_at + 3600, ends_at = ends_at + 3600,"
               " seq = seq + 1, change_note = 'later',"
               " changed_outbox = (SELECT ifnull(max(id), 0) FROM outbox) WHERE id = %lld", (long long) s);
        scan(e, "2026-09-03 10:00");
        assert_int_equal(mails(e, a, "session_changed", "1"), 1);
        assert_int_equal(mails(e, b, "session_changed", NULL), 0);
        assert_int_equal(mails(e, b, "confirmation", ""), 1);
        scan(e, "2026-09-04 10:00");
        assert_int_equal(mails(e, a, "session_changed", NULL), 1);
        /* a second change is a new occasion, for both */
        sql(e, "UPDATE sessions SET join_url = 'https://meet.example.org/y', seq = seq + 1,"
               " changed_outbox = (SELECT ifnull(max(id), 0) FROM outbox) WHERE id = %lld", (long long) s);
        scan(e, "2026-09-05 10:00");
        assert_int_equal(mails(e, a, "session_changed", "2"), 1);
        assert_int_equal(mails(e, b, "session_changed", "2"), 1);
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE kind = 'session_changed'"), 3);
}

/* ---- 9. forget ----------------------------------------------------------------------- */

static void test_forget_after_retention(void **state)
{
        env_t *e = *state;
        int64_t s = add_session(e, "2026-09-22 10:30", 1, NULL);
        int64_t keep = add_session(e, "2026-11-22 10:30", 5, NULL);
        int64_t a = add_reg(e, s, "a@example.org", "2026-09-01 09:00");
        int64_t w = add_reg(e, s, "w@example.org", "2026-09-01 09:01");
        int64_t k = add_reg(e, keep, "k@example.org", "2026-09-01 09:02");

        scan(e, "2026-09-01 10:00");
        scan(e, "2026-09-23 12:00");
        sql(e, "UPDATE outbox SET status = 'sent', body = x'41' WHERE kind != 'follow_up'");
        /* a refusal quoting the address */
        sql(e, "UPDATE outbox SET status = 'failed', last_error = '550 5.1.1 <w@example.org>: unknown'"
               " WHERE kind = 'not_placed'");
        scan(e, "2026-10-12 11:59");
        assert_int_equal(int_query(e, "SELECT count(*) FROM registrations WHERE email != ''"), 3);
        /* 20 calendar days after the end (12:00 BST on 12 October) */
        scan(e, "2026-10-12 12:00");
        assert_int_equal(int_query(e, "SELECT count(*) FROM registrations WHERE session_id = %lld"
                                      " AND (name != '' OR email != '' OR token IS NOT NULL)",
                                   (long long) s), 0);
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE session_id = %lld"
                                      " AND (recipient != '' OR body IS NOT NULL)", (long long) s), 0);
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE last_error LIKE '%%@%%'"), 0);
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE status = 'failed'"), 1);
        /* a follow-up still queued is never sent now */
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE session_id = %lld"
                                      " AND status = 'queued'", (long long) s), 0);
        /* counts and statuses stay */
        expect_status(e, a, "booked");
        expect_status(e, w, "late");
        /* confirmation, waitlisted, not_placed, roster, follow_up */
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE session_id = %lld",
                                   (long long) s), 5);
        /* other sessions keep theirs */
        assert_int_equal(int_query(e, "SELECT count(*) FROM registrations WHERE id = %lld"
                                      " AND email = 'k@example.org'", (long long) k), 1);
        /* and nothing new is queued for the erased session later */
        scan(e, "2026-10-20 12:00");
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE session_id = %lld",
                                   (long long) s), 5);
}

/* ---- time zone ----------------------------------------------------------------------- */

static void test_moments_across_the_clock_change(void **state)
{
        env_t *e = *state;
        /* Tuesday 27 October 2026 10:30 GMT; the clocks went back on Sunday 25 October */
        int64_t s = add_session(e, "2026-10-27 10:30", 5, NULL);
        int64_t a = add_reg(e, s, "a@example.org", "2026-10-01 09:00");

        scan(e, "2026-10-01 10:00");
        /* 10 days before is 10:30 BST on 17 October, 09:30 UTC */
        scan(e, "2026-10-17T09:29Z");
        assert_int_equal(mails(e, a, "elearning_reminder", "10d"), 0);
        scan(e, "2026-10-17T09:30Z");
        assert_int_equal(mails(e, a, "elearning_reminder", "10d"), 1);
        /* bookings close at 10:30 BST on 20 October: 7 calendar days, 169 hours */
        scan(e, "2026-10-20T09:29Z");
        assert_int_equal(int_query(e, "SELECT status = 'open' FROM sessions WHERE id = %lld",
                                   (long long) s), 1);
        scan(e, "2026-10-20T09:30Z");
        assert_int_equal(int_query(e, "SELECT status = 'closed' FROM sessions WHERE id = %lld",
                                   (long long) s), 1);
        /* 3 days before is 10:30 BST on Saturday 24 October, 09:30 UTC */
        scan(e, "2026-10-24T09:29Z");
        assert_int_equal(mails(e, a, "elearning_reminder", "3d"), 0);
        scan(e, "2026-10-24T09:30Z");
        assert_int_equal(mails(e, a, "elearning_reminder", "3d"), 1);
        /* 2 days before is 10:30 GMT on Sunday */
        scan(e, "2026-10-25 10:29");
        assert_int_equal(mails(e, a, "joining_link", NULL), 0);
        scan(e, "2026-10-25 10:30");
        assert_int_equal(mails(e, a, "joining_link", ""), 1);
}

/* ---- what the website writes --------------------------------------------------------- */

/* A place given just before the cutoff is still told after it, when the relay held the
 * email back: what was true when queued (he has a place) is still true. */
static void test_promoted_before_cutoff_still_goes_after_it(void **state)
{
        env_t *e = *state;
        int64_t s = add_session(e, "2026-09-22 10:30", 1, NULL);
        int64_t ann = add_reg(e, s, "ann@example.org", "2026-09-01 09:00");
        int64_t bob = add_reg(e, s, "bob@example.org", "2026-09-01 09:01");

        scan(e, "2026-09-01 10:00");
        sql(e, "UPDATE registrations SET status = 'cancelled' WHERE id = %lld", (long long) ann);
        scan(e, "2026-09-15 10:29");
        expect_status(e, bob, "booked");
        assert_int_equal(mails(e, bob, "promoted", ""), 1);
        assert_null(outbox_stale(e->db, &e->c, s, bob, KIND_PROMOTED, "bob@example.org", at("2026-09-15 10:35")));
        /* a waiting-list email is no longer true once he has the place */
        assert_non_null(outbox_stale(e->db, &e->c, s, bob, KIND_WAITLISTED, "bob@example.org", at("2026-09-15 10:35")));
}

static void test_registered_at_that_is_not_a_time_is_invalid(void **state)
{
        env_t *e = *state;
        int64_t s = add_session(e, "2026-09-22 10:30", 5, NULL);
        int64_t ok = add_reg(e, s, "ok@example.org", "2026-09-01 09:00");
        int64_t later = add_reg(e, s, "later@example.org", "2026-09-10 09:00");
        int64_t ms, text, far;

        sql(e, "INSERT INTO registrations(session_id, name, email, registered_at) VALUES"
               " (%lld, 'Ms', 'ms@example.org', 1788000000000)", (long long) s);
        ms = sqlite3_last_insert_rowid(db_handle(e->db));
        sql(e, "INSERT INTO registrations(session_id, name, email, registered_at) VALUES"
               " (%lld, 'Text', 'text@example.org', '2026-09-01 09:00')", (long long) s);
        text = sqlite3_last_insert_rowid(db_handle(e->db));
        sql(e, "INSERT INTO registrations(session_id, name, email, registered_at) VALUES"
               " (%lld, 'Far', 'far@example.org', 4102444800)", (long long) s);
        far = sqlite3_last_insert_rowid(db_handle(e->db));
        scan(e, "2026-09-01 10:00");
        expect_status(e, ok, "booked");
        expect_status(e, later, "new"); /* a time to come within the year: it waits for it */
        expect_status(e, ms, "invalid");
        expect_status(e, text, "invalid");
        expect_status(e, far, "invalid");
        assert_int_equal(int_query(e, "SELECT count(*) FROM registrations WHERE reason = 'registered_at'"), 3);
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE registration_id IN (%lld, %lld, %lld)",
                                   (long long) ms, (long long) text, (long long) far), 0);
}

/* SPEC 4 lets the website write sessions: a move it makes is told like an edit. */
static void test_session_moved_by_the_website_is_told(void **state)
{
        env_t *e = *state;
        int64_t s = add_session(e, "2026-09-22 10:30", 5, NULL);
        int64_t a = add_reg(e, s, "a@example.org", "2026-09-01 09:00");

        scan(e, "2026-09-01 10:00");
        sql(e, "UPDATE sessions SET starts_at = starts_at + 86400, ends_at = ends_at + 86400 WHERE id = %lld",
            (long long) s);
        scan(e, "2026-09-02 10:00");
        assert_int_equal(mails(e, a, "session_changed", "1"), 1);
        assert_int_equal(int_query(e, "SELECT seq FROM sessions WHERE id = %lld", (long long) s), 1);
        assert_int_equal(int_query(e, "SELECT change_note LIKE '%%Wednesday 23 September 2026%%'"
                                      " FROM sessions WHERE id = %lld", (long long) s), 1);
        scan(e, "2026-09-02 11:00");
        assert_int_equal(mails(e, a, "session_changed", NULL), 1);
        /* a new link from the website, too */
        sql(e, "UPDATE sessions SET join_url = 'https://meet.example.org/new' WHERE id = %lld", (long long) s);
        scan(e, "2026-09-03 10:00");
        assert_int_equal(mails(e, a, "session_changed", "2"), 1);
        /* a title alone tells nobody */
        sql(e, "UPDATE sessions SET title = 'Renamed' WHERE id = %lld", (long long) s);
        scan(e, "2026-09-04 10:00");
        assert_int_equal(mails(e, a, "session_changed", NULL), 2);
}

/* The trainer's roster named the old time: after a change a new roster goes. */
static void test_trainer_gets_a_new_roster_after_a_change(void **state)
{
        env_t *e = *state;
        int64_t s = add_session(e, "2026-09-22 10:30", 5, "trainer@example.org");

        add_reg(e, s, "a@example.org", "2026-09-01 09:00");
        scan(e, "2026-09-01 10:00");
        scan(e, "2026-09-16 10:00"); /* closed: the roster is queued */
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE kind = 'roster'"), 1);
        sql(e, "UPDATE sessions SET starts_at = starts_at + 3600, ends_at = ends_at + 3600 WHERE id = %lld",
            (long long) s);
        scan(e, "2026-09-17 10:00");
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE kind = 'roster'"
                                      " AND recipient = 'trainer@example.org' AND occasion = 'trainer@example.org#1'"), 1);
}

static void test_session_that_ends_before_it_starts_is_held_back(void **state)
{
        env_t *e = *state;
        int64_t s = add_session(e, "2026-09-22 10:30", 5, NULL);
        int64_t a;

        sql(e, "UPDATE sessions SET ends_at = starts_at - 3600 WHERE id = %lld", (long long) s);
        a = add_reg(e, s, "a@example.org", "2026-09-01 09:00");
        scan(e, "2026-09-01 10:00");
        expect_status(e, a, "new");
        assert_int_equal(int_query(e, "SELECT problem = 'it ends before it starts' FROM sessions"
                                      " WHERE id = %lld", (long long) s), 1);
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox"), 0);
        /* put right: it goes on, and the registration is answered */
        sql(e, "UPDATE sessions SET ends_at = starts_at + 5400 WHERE id = %lld", (long long) s);
        scan(e, "2026-09-01 11:00");
        expect_status(e, a, "booked");
        assert_int_equal(int_query(e, "SELECT problem IS NULL FROM sessions WHERE id = %lld", (long long) s), 1);
        assert_int_equal(mails(e, a, "confirmation", ""), 1);
}

static void test_session_added_after_it_started_sends_nothing(void **state)
{
        env_t *e = *state;
        int64_t s = add_session(e, "2026-09-01 10:30", 5, "trainer@example.org");

        scan(e, "2026-09-04 10:00");
        assert_int_equal(int_query(e, "SELECT status = 'done' FROM sessions WHERE id = %lld", (long long) s), 1);
        scan(e, "2026-09-05 10:00");
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox"), 0);
}

/* ---- 10. tell ------------------------------------------------------------------------ */

static long unreachable_mails(env_t *e, const char *day)
{
        return (long) int_query(e, "SELECT count(*) FROM outbox WHERE kind = 'unreachable'"
                                   " AND registration_id IS NULL AND occasion LIKE '%s %%'", day);
}

/* The ids an `unreachable` email of that day lists, as "1,3". */
static void expect_listed(env_t *e, const char *day, const char *want)
{
        mail_unreachable_t *v = NULL;
        int64_t from, to;
        char got[128] = "";
        size_t n = 0;

        assert_int_equal(outbox_unreachable_day(day, &from, &to), 0);
        assert_int_equal(outbox_unreachable_list(e->db, from, to, &v, &n), 0);
        for (size_t i = 0; i < n; i++)
                snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%lld", i ? "," : "",
                         (long long) v[i].registration_id);
        mail_unreachable_free(v, n);
        assert_string_equal(got, want);
}

static void test_coordinators_told_of_unreachable_once_a_day(void **state)
{
        env_t *e = *state;
        int64_t s1 = add_session(e, "2026-09-22 10:30", 5, NULL);
        int64_t s2 = add_session(e, "2026-09-10 10:30", 5, NULL);
        int64_t a = add_reg(e, s1, "ann@exmaple.org", "2026-09-01 09:00");
        int64_t b = add_reg(e, s2, "bob@exmaple.org", "2026-09-01 09:01");
        int64_t c = add_reg(e, s1, "cat@example.org", "2026-09-01 09:02");
        char want[64];

        e->c.n_roster_to = 2;
        scan(e, "2026-09-01 10:00");
        assert_int_equal(unreachable_mails(e, "2026-09-01"), 0); /* nobody refused yet */
        assert_int_equal(outbox_mark_unreachable(e->db, a, "550 5.1.1 no such user", at("2026-09-01 10:05")), 1);
        scan(e, "2026-09-01 11:00");
        /* one to each coordinator, hung on Ann's session, listing Ann alone */
        assert_int_equal(unreachable_mails(e, "2026-09-01"), 2);
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE kind = 'unreachable' AND session_id = %lld"
                                      " AND occasion = '2026-09-01 #2' AND recipient = 'hub@example.org'",
                                   (long long) s1), 1);
        assert_int_equal(int_query(e, "SELECT unreachable_told FROM registrations WHERE id = %lld", (long long) a),
                         at("2026-09-01 11:00"));
        snprintf(want, sizeof(want), "%lld", (long long) a);
        expect_listed(e, "2026-09-01", want);

        /* Bob is refused the same day: he waits for tomorrow's email */
        assert_int_equal(outbox_mark_unreachable(e->db, b, "550 mailbox disabled", at("2026-09-01 12:00")), 1);
        scan(e, "2026-09-01 13:00");
        scan(e, "2026-09-01 23:59");
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE kind = 'unreachable'"), 2);
        assert_int_equal(int_query(e, "SELECT unreachable_told FROM registrations WHERE id = %lld", (long long) b), 0);
        expect_listed(e, "2026-09-01", want);

        /* the next day: Bob alone (Ann was told once), on his own session */
        scan(e, "2026-09-02 09:00");
        assert_int_equal(unreachable_mails(e, "2026-09-02"), 2);
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE kind = 'unreachable'"
                                      " AND occasion LIKE '2026-09-02 %%' AND session_id = %lld", (long long) s2), 2);
        snprintf(want, sizeof(want), "%lld", (long long) b);
        expect_listed(e, "2026-09-02", want);
        scan(e, "2026-09-03 09:00");
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE kind = 'unreachable'"), 4);

        /* Bob's address put right before his email went: it is no longer true; Ann's still is */
        sql(e, "UPDATE registrations SET unreachable_at = NULL, unreachable_reason = NULL, unreachable_told = 0"
               " WHERE id = %lld", (long long) b);
        assert_non_null(outbox_stale_occasion(e->db, &e->c, s2, 0, KIND_UNREACHABLE, "2026-09-02 #1",
                                              "mecc-team@example.org", at("2026-09-03 09:00")));
        assert_null(outbox_stale_occasion(e->db, &e->c, s1, 0, KIND_UNREACHABLE, "2026-09-01 #1",
                                          "mecc-team@example.org", at("2026-09-03 09:00")));
        /* Cat was never refused: never listed, never marked */
        assert_int_equal(int_query(e, "SELECT unreachable_told FROM registrations WHERE id = %lld", (long long) c), 0);
}

/* Outcomes written down beside the database (one line each, as delivery writes them) are
 * recorded at the next start once: a line whose row was recorded already changes nothing,
 * a torn line leaves its row to go again, and the file is gone afterwards. */
static void test_unrecorded_outcomes_are_recorded_once(void **state)
{
        env_t *e = *state;
        int64_t s = add_session(e, "2026-09-22 10:30", 10, NULL);
        int64_t a = add_reg(e, s, "ann@example.org", "2026-09-01 09:00");
        int64_t b = add_reg(e, s, "bob@exmaple.org", "2026-09-01 09:01");
        int64_t c = add_reg(e, s, "cat@example.org", "2026-09-01 09:02");
        int64_t sent_at = at("2026-09-01 10:01"), ma, mb, mc;
        char path[128], old_line[128];
        FILE *f;
        int fd;

        scan(e, "2026-09-01 10:00");
        ma = int_query(e, "SELECT id FROM outbox WHERE registration_id = %lld", (long long) a);
        mb = int_query(e, "SELECT id FROM outbox WHERE registration_id = %lld", (long long) b);
        mc = int_query(e, "SELECT id FROM outbox WHERE registration_id = %lld", (long long) c);
        sql(e, "UPDATE outbox SET sending = 1, first_attempt_at = %lld", (long long) sent_at);

        /* Ann's sent, Bob's refused for good at RCPT; Cat's line is torn by a kill */
        fd = outbox_unrecorded_open(e->db);
        assert_true(fd >= 0);
        assert_int_equal(outbox_unrecorded_append(fd, &(outbox_outcome_t) { ma, MAIL_SENT, true, sent_at, NULL, 0 }), 0);
        assert_int_equal(outbox_unrecorded_append(fd, &(outbox_outcome_t) {
                mb, MAIL_FAILED, true, sent_at, "550 5.1.1 <bob@exmaple.org>:\r\n no such user", b }), 0);
        assert_int_equal(close(fd), 0);
        snprintf(path, sizeof(path), "%s/meccd.db-unrecorded", e->dir);
        f = fopen(path, "a");
        assert_non_null(f);
        fprintf(f, "+%lld 2 1", (long long) mc);
        assert_int_equal(fclose(f), 0);

        assert_int_equal(outbox_recover(e->db, at("2026-09-01 10:05")), 1); /* Cat's goes again */
        assert_int_equal(access(path, F_OK), -1);
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE id = %lld AND status = 'sent'"
                                      " AND attempts = 1 AND sent_at = %lld AND sending = 0",
                                   (long long) ma, (long long) sent_at), 1);
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE id = %lld AND status = 'failed'"
                                      " AND last_error = '550 5.1.1 <bob@exmaple.org>:   no such user'",
                                   (long long) mb), 1);
        assert_true(int_query(e, "SELECT unreachable_at FROM registrations WHERE id = %lld", (long long) b) > 0);
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE id = %lld AND status = 'queued'"
                                      " AND sending = 0 AND attempts = 0", (long long) mc), 1);

        /* the same lines again (a crash after the commit, before the file was emptied), and
         * one in the older format: rows no longer in flight are not touched */
        fd = outbox_unrecorded_open(e->db);
        assert_true(fd >= 0);
        assert_int_equal(outbox_unrecorded_append(fd, &(outbox_outcome_t) { ma, MAIL_SENT, true, sent_at + 60, NULL, 0 }), 0);
        snprintf(old_line, sizeof(old_line), "%lld 3 1 %lld 421 busy\n", (long long) mc, (long long) sent_at);
        assert_int_equal(write(fd, old_line, strlen(old_line)), (ssize_t) strlen(old_line));
        assert_int_equal(outbox_unrecorded_close(e->db, fd), 0);
        assert_int_equal(access(path, F_OK), 0); /* not empty: kept */
        assert_int_equal(outbox_recover(e->db, at("2026-09-01 10:06")), 0);
        assert_int_equal(int_query(e, "SELECT attempts FROM outbox WHERE id = %lld", (long long) ma), 1);
        assert_int_equal(int_query(e, "SELECT sent_at FROM outbox WHERE id = %lld", (long long) ma), sent_at);
        assert_int_equal(int_query(e, "SELECT attempts FROM outbox WHERE id = %lld", (long long) mc), 0);

        /* an empty file is removed when closed */
        fd = outbox_unrecorded_open(e->db);
        assert_true(fd >= 0);
        assert_int_equal(outbox_unrecorded_close(e->db, fd), 0);
        assert_int_equal(access(path, F_OK), -1);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        const struct CMUnitTest tests[] = {
                T(test_admit_books_then_waitlists),
                T(test_unrecorded_outcomes_are_recorded_once),
                T(test_admit_tokens),
                T(test_admit_invalid_and_duplicate_get_no_email),
                T(test_admit_late),
                T(test_promote_earliest_after_cancellation),
                T(test_promote_on_raised_capacity),
                T(test_no_promotion_after_cutoff),
                T(test_close_at_cutoff),
                T(test_cancelled_session_is_not_closed),
                T(test_reminders_at_each_offset),
                T(test_joining_link),
                T(test_joining_link_waits_for_elearning),
                T(test_link_waiting_when_booked_after_the_link_moment),
                T(test_follow_up_and_done),
                T(test_follow_up_disabled),
                T(test_session_cancelled_once_to_booked_and_waiting),
                T(test_change_to_those_emailed),
                T(test_forget_after_retention),
                T(test_moments_across_the_clock_change),
                T(test_promoted_before_cutoff_still_goes_after_it),
                T(test_registered_at_that_is_not_a_time_is_invalid),
                T(test_session_moved_by_the_website_is_told),
                T(test_trainer_gets_a_new_roster_after_a_change),
                T(test_session_that_ends_before_it_starts_is_held_back),
                T(test_session_added_after_it_started_sends_nothing),
                T(test_coordinators_told_of_unreachable_once_a_day),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
