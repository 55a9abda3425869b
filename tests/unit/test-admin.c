/* test-admin.c - the rules of what an admin may do, against a real SQLite file: which
 * fields a session takes and that an edit applies each, which registrations can be
 * cancelled, what a retry resets, and that an import is all rows or none. */
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

#include "admin.h"
#include "outbox.h"
#include "clock.h"
#include "config.h"
#include "db.h"
#include "journal.h"
#include "scan.h"
#include "testdb.h"

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
        test_dir_make(e->dir, "test-admin");
        snprintf(path, sizeof(path), "%s/meccd.db", e->dir);
        e->c = (config_t) {
                .database = path,
                .scan_interval = 60,
                .booking_cutoff = { 7, 0 },
                .reminders_elearning = reminders,
                .n_reminders_elearning = 2,
                .reminder_joining_link = { 2, 0 },
                .follow_up_enabled = true,
                .reminder_follow_up = { 1, 0 },
                .retention = { 180, 0 },
                .roster_to = roster_to,
                .n_roster_to = 1,
                .smtp = { .from = "MECC <mecc@example.org>", .from_addr = "mecc@example.org" },
        };
        if (admin_open(&e->c, &e->db, &err) < 0)
                fail_msg("admin_open: %s", err ? err : "?");
        e->c.database = NULL; /* path is gone after this function */
        e->a = (admin_t) { e->db, &e->c, at("2026-08-01 09:00") };
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

/* ---- helpers ------------------------------------------------------------------------- */

/* A full set of fields for a session on 22 September. */
static session_fields_t fields(void)
{
        return (session_fields_t) {
                .given = SF_REQUIRED | SF_JOIN_URL | SF_ELEARNING_URL | SF_TRAINER,
                .title = "MECC live session",
                .starts_at = at("2026-09-22 10:30"),
                .ends_at = at("2026-09-22 12:00"),
                .capacity = 2,
                .join_url = "https://meet.example.org/a",
                .elearning_url = "https://learn.example.org/a",
                .trainer_email = "trainer@example.org",
        };
}

static int64_t add_session(env_t *e)
{
        session_fields_t f = fields();
        int64_t id = 0;

        assert_int_equal(admin_session_add(&e->a, &f, false, &id, &e->why), 0);
        assert_true(id > 0);
        return id;
}

static session_t get_session(env_t *e, int64_t id)
{
        session_t s;

        assert_int_equal(db_session_get(e->db, id, &s), 1);
        return s;
}

static session_status_t session_status(env_t *e, int64_t id)
{
        session_t s = get_session(e, id);
        session_status_t st = s.status;

        session_clear(&s);
        return st;
}

static int64_t add_reg(env_t *e, int64_t sid, const char *name, const char *email)
{
        int64_t id = 0;

        assert_int_equal(admin_register(&e->a, sid, name, email, &id, &e->why), 0);
        return id;
}

static reg_status_t reg_status(env_t *e, int64_t id)
{
        registration_t g;
        reg_status_t s;

        assert_int_equal(db_registration_get(e->db, id, &g), 1);
        s = g.status;
        registration_clear(&g);
        return s;
}

static void expect_why(env_t *e, const char *part)
{
        if (!e->why || !strstr(e->why, part))
                fail_msg("the reason \"%s\" does not say \"%s\"", e->why ? e->why : "(none)", part);
}

static char *write_file(env_t *e, const char *name, const char *text)
{
        char *path = NULL;
        FILE *f;

        assert_true(asprintf(&path, "%s/%s", e->dir, name) >= 0);
        f = fopen(path, "w");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
        return path;
}

/* ---- sessions ---------------------------------------------------------------------------- */

static void test_session_add_stores_every_field(void **state)
{
        env_t *e = *state;
        session_fields_t f = fields();
        int64_t id;
        session_t s;

        f.given |= SF_CLOSES;
        f.closes_at = at("2026-09-20 17:00");
        assert_int_equal(admin_session_add(&e->a, &f, false, &id, &e->why), 0);
        s = get_session(e, id);
        assert_string_equal(s.title, "MECC live session");
        assert_int_equal(s.starts_at, at("2026-09-22 10:30"));
        assert_int_equal(s.ends_at, at("2026-09-22 12:00"));
        assert_int_equal(s.capacity, 2);
        assert_string_equal(s.join_url, "https://meet.example.org/a");
        assert_string_equal(s.elearning_url, "https://learn.example.org/a");
        assert_string_equal(s.trainer_email, "trainer@example.org");
        assert_int_equal(s.closes_at, at("2026-09-20 17:00"));
        assert_int_equal(s.status, SESSION_OPEN);
        session_clear(&s);
}

static void test_session_add_refuses_bad_fields(void **state)
{
        env_t *e = *state;
        static const struct {
                unsigned field;
                const char *why;
        } cases[] = {
                { SF_TITLE, "title" },   { SF_CAPACITY, "capacity" }, { SF_JOIN_URL, "joining link" },
                { SF_ELEARNING_URL, "e-learning link" }, { SF_TRAINER, "trainer" }, { SF_END, "end" },
        };
        int64_t id = 0;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                session_fields_t f = fields();

                switch (cases[i].field) {
                case SF_TITLE: f.title = "two\nlines"; break;
                case SF_CAPACITY: f.capacity = -1; break;
                case SF_JOIN_URL: f.join_url = "ftp://meet.example.org/a"; break;
                case SF_ELEARNING_URL: f.elearning_url = "learn.example.org"; break;
                case SF_TRAINER: f.trainer_email = "trainer at example.org"; break;
                case SF_END: f.ends_at = f.starts_at; break;
                }
                assert_int_equal(admin_session_add(&e->a, &f, false, &id, &e->why), ADMIN_REFUSED);
                expect_why(e, cases[i].why);
        }
        {
                session_fields_t f = fields();

                f.given &= ~SF_CAPACITY;
                assert_int_equal(admin_session_add(&e->a, &f, false, &id, &e->why), ADMIN_REFUSED);
        }
        assert_int_equal(int_query(e, "SELECT count(*) FROM sessions"), 0);
}

/* A session that starts in the past, or whose bookings would be closed at once (and its
 * roster sent at the next scan), is a typing mistake unless the admin insists. */
static void test_session_add_too_soon_needs_force(void **state)
{
        env_t *e = *state;
        session_fields_t f = fields();
        int64_t id = 0;

        f.starts_at = at("2026-08-05 10:30");
        f.ends_at = at("2026-08-05 12:00");
        assert_int_equal(admin_session_add(&e->a, &f, false, &id, &e->why), ADMIN_NEEDS_FORCE);
        expect_why(e, "close 2026-07-29 10:30 BST, which is already past");
        f.starts_at = at("2026-07-31 10:30");
        assert_int_equal(admin_session_add(&e->a, &f, false, &id, &e->why), ADMIN_NEEDS_FORCE);
        expect_why(e, "in the past");
        assert_int_equal(int_query(e, "SELECT count(*) FROM sessions"), 0);

        /* forced, it is added, and the reason stays as a warning */
        free(e->why);
        e->why = NULL;
        assert_int_equal(admin_session_add(&e->a, &f, true, &id, &e->why), 0);
        expect_why(e, "in the past");
        /* with its own cutoff still to come, it is bookable and needs nothing */
        f.starts_at = at("2026-08-05 10:30");
        f.given |= SF_CLOSES;
        f.closes_at = at("2026-08-04 12:00");
        free(e->why);
        e->why = NULL;
        assert_int_equal(admin_session_add(&e->a, &f, false, &id, &e->why), 0);
        assert_null(e->why);
        assert_int_equal(int_query(e, "SELECT count(*) FROM sessions"), 2);
}

/* Every field on its own: an edit that gives one field changes that one and no other. */
static void test_session_edit_applies_each_field(void **state)
{
        env_t *e = *state;
        session_fields_t f = {
                .title = "Moved",
                .starts_at = at("2026-09-22 09:00"),
                .ends_at = at("2026-09-22 13:00"),
                .capacity = 9,
                .join_url = "https://meet.example.org/b",
                .elearning_url = "https://learn.example.org/b",
                .trainer_email = "other@example.org",
                .closes_at = at("2026-09-21 09:00"),
        };

        for (unsigned bit = 1; bit & _SF_ALL; bit <<= 1) {
                int64_t id = add_session(e);
                session_t old = get_session(e, id), s;
                bool told = false;

                f.given = bit;
                assert_int_equal(admin_session_edit(&e->a, id, &f, &told, &e->why), 0);
                s = get_session(e, id);
#define FIELD(flag, cond) \
                if ((bit == (flag)) != !(cond)) \
                        fail_msg("an edit of field %#x: field %#x %s", bit, (flag), (cond) ? "kept" : "changed");
                FIELD(SF_TITLE, strcmp(s.title, old.title) == 0);
                FIELD(SF_START, s.starts_at == old.starts_at);
                FIELD(SF_END, s.ends_at == old.ends_at);
                FIELD(SF_CAPACITY, s.capacity == old.capacity);
                FIELD(SF_JOIN_URL, strcmp(s.join_url, old.join_url) == 0);
                FIELD(SF_ELEARNING_URL, strcmp(s.elearning_url, old.elearning_url) == 0);
                FIELD(SF_TRAINER, strcmp(s.trainer_email, old.trainer_email) == 0);
                FIELD(SF_CLOSES, s.closes_at == old.closes_at);
#undef FIELD
                /* those already emailed hear of a new time or link, not of the rest */
                assert_int_equal(told, bit == SF_START || bit == SF_END || bit == SF_JOIN_URL);
                assert_int_equal(s.seq, old.seq + told);
                session_clear(&old);
                session_clear(&s);
        }
}

static void test_session_edit_records_the_change(void **state)
{
        env_t *e = *state;
        int64_t id = add_session(e);
        session_fields_t f = { .given = SF_START | SF_END | SF_JOIN_URL,
                               .starts_at = at("2026-09-22 14:00"), .ends_at = at("2026-09-22 15:30"),
                               .join_url = "https://meet.example.org/b" };
        bool told = false;
        session_t s;

        sql(e, "INSERT INTO outbox(session_id, kind, recipient, created_at, next_attempt_at, message_id)"
               " VALUES (%lld, 'roster', 'x@example.org', 1, 1, '<m>')", (long long) id);
        assert_int_equal(admin_session_edit(&e->a, id, &f, &told, &e->why), 0);
        assert_true(told);
        s = get_session(e, id);
        assert_non_null(strstr(s.change_note, "The session now takes place on Tuesday 22 September 2026, 14:00"));
        assert_non_null(strstr(s.change_note, "The joining link has changed."));
        session_clear(&s);
        assert_int_equal(int_query(e, "SELECT changed_outbox FROM sessions WHERE id = %lld", (long long) id),
                         int_query(e, "SELECT max(id) FROM outbox"));

        /* the end before the start is refused, and changes nothing */
        f = (session_fields_t) { .given = SF_END, .ends_at = at("2026-09-22 13:00") };
        assert_int_equal(admin_session_edit(&e->a, id, &f, &told, &e->why), ADMIN_REFUSED);
        expect_why(e, "end");
        assert_int_equal(int_query(e, "SELECT ends_at FROM sessions WHERE id = %lld", (long long) id),
                         at("2026-09-22 15:30"));
        f = (session_fields_t) { .given = SF_CAPACITY, .capacity = 3 };
        assert_int_equal(admin_session_edit(&e->a, 99, &f, &told, &e->why), ADMIN_NOT_FOUND);
}

static void test_cancelled_and_done_sessions_are_not_edited_or_cancelled(void **state)
{
        env_t *e = *state;
        session_fields_t f = { .given = SF_CAPACITY, .capacity = 3 };
        int64_t id = add_session(e), done = add_session(e);

        sql(e, "UPDATE sessions SET status = 'done' WHERE id = %lld", (long long) done);
        assert_int_equal(admin_session_cancel(&e->a, id, &e->why), 0);
        assert_int_equal(session_status(e, id), SESSION_CANCELLED);
        assert_int_equal(admin_session_cancel(&e->a, id, &e->why), ADMIN_REFUSED);
        expect_why(e, "already cancelled");
        assert_int_equal(admin_session_edit(&e->a, id, &f, NULL, &e->why), ADMIN_REFUSED);
        expect_why(e, "cancelled");
        assert_int_equal(admin_session_cancel(&e->a, done, &e->why), ADMIN_REFUSED);
        assert_int_equal(admin_session_edit(&e->a, done, &f, NULL, &e->why), ADMIN_REFUSED);
        expect_why(e, "done");
        assert_int_equal(admin_session_cancel(&e->a, 99, &e->why), ADMIN_NOT_FOUND);
        assert_int_equal(int_query(e, "SELECT count(*) FROM sessions WHERE capacity = 3"), 0);
}

static void test_session_close_runs_the_close_step(void **state)
{
        env_t *e = *state;
        int64_t id = add_session(e), ann, bob, cat;
        session_t s;

        ann = add_reg(e, id, "Ann", "ann@example.org");
        bob = add_reg(e, id, "Bob", "bob@example.org");
        cat = add_reg(e, id, "Cat", "cat@example.org");
        assert_int_equal(scan_run(e->db, &e->c, e->a.now, NULL), 0);
        assert_int_equal(reg_status(e, cat), REG_WAITLISTED);

        e->a.now = at("2026-09-05 10:00");
        assert_int_equal(admin_session_close(&e->a, id, &e->why), 0);
        s = get_session(e, id);
        assert_int_equal(s.status, SESSION_CLOSED);
        assert_int_equal(s.closes_at, e->a.now);
        session_clear(&s);
        assert_int_equal(reg_status(e, ann), REG_BOOKED);
        assert_int_equal(reg_status(e, bob), REG_BOOKED);
        assert_int_equal(reg_status(e, cat), REG_LATE);
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE kind = 'roster'"), 1);
        assert_int_equal(admin_session_close(&e->a, id, &e->why), ADMIN_REFUSED);
        expect_why(e, "not open");
}

/* ---- registrations ------------------------------------------------------------------------ */

static void test_register(void **state)
{
        env_t *e = *state;
        int64_t sid = add_session(e), id = 0;
        registration_t g;

        assert_int_equal(admin_register(&e->a, sid, "", "ann@example.org", &id, &e->why), ADMIN_REFUSED);
        assert_int_equal(admin_register(&e->a, sid, "Ann", "ann@example.org, bob@example.org", &id, &e->why),
                         ADMIN_REFUSED);
        expect_why(e, "not a valid email address");
        assert_int_equal(admin_register(&e->a, 99, "Ann", "ann@example.org", &id, &e->why), ADMIN_NOT_FOUND);
        expect_why(e, "no session 99");
        assert_int_equal(int_query(e, "SELECT count(*) FROM registrations"), 0);

        id = add_reg(e, sid, "Ann", "ann@example.org");
        assert_int_equal(db_registration_get(e->db, id, &g), 1);
        assert_int_equal(g.status, REG_NEW);
        assert_int_equal(g.registered_at, e->a.now);
        assert_string_equal(g.email, "ann@example.org");
        registration_clear(&g);
}

/* A registration can be cancelled while it is new, booked or waiting; not after. */
static void test_cancel_only_from_new_booked_or_waitlisted(void **state)
{
        env_t *e = *state;
        int64_t sid = add_session(e);

        for (reg_status_t s = 0; s < _REG_STATUS_MAX; s++) {
                int64_t id = add_reg(e, sid, "Ann", "ann@example.org");
                bool may = s == REG_NEW || s == REG_BOOKED || s == REG_WAITLISTED;

                sql(e, "UPDATE registrations SET status = '%s' WHERE id = %lld", reg_status_to_string(s),
                    (long long) id);
                assert_int_equal(admin_may_cancel(s), may);
                assert_int_equal(admin_cancel(&e->a, id, &e->why), may ? ADMIN_OK : ADMIN_REFUSED);
                assert_int_equal(reg_status(e, id), may ? REG_CANCELLED : s);
                if (!may)
                        expect_why(e, reg_status_to_string(s));
        }
        assert_int_equal(admin_cancel(&e->a, 999, &e->why), ADMIN_NOT_FOUND);
}

static void test_elearning_done(void **state)
{
        env_t *e = *state;
        int64_t sid = add_session(e), ann, again, gone;

        ann = add_reg(e, sid, "Ann", "Ann.Smith@example.org");
        again = add_reg(e, sid, "Ann", "ann.smith@example.org");
        gone = add_reg(e, sid, "Ann", "ANN.SMITH@example.org");
        sql(e, "UPDATE registrations SET status = 'cancelled' WHERE id = %lld", (long long) gone);

        /* by address: every registration still to come, without regard to case */
        assert_int_equal(admin_elearning_done_email(&e->a, "ann.smith@EXAMPLE.org", at("2026-09-01 10:00"),
                                                    &e->why), 0);
        assert_int_equal(int_query(e, "SELECT elearning_done_at FROM registrations WHERE id = %lld", (long long) ann),
                         at("2026-09-01 10:00"));
        assert_int_equal(int_query(e, "SELECT elearning_done_at FROM registrations WHERE id = %lld", (long long) again),
                         at("2026-09-01 10:00"));
        assert_int_equal(int_query(e, "SELECT elearning_done_at IS NULL FROM registrations WHERE id = %lld", (long long) gone), 1);
        /* a second report keeps the first date; an id marks that registration, whatever it is */
        assert_int_equal(admin_elearning_done_id(&e->a, ann, at("2026-09-02 10:00"), &e->why), 0);
        assert_int_equal(int_query(e, "SELECT elearning_done_at FROM registrations WHERE id = %lld", (long long) ann),
                         at("2026-09-01 10:00"));
        assert_int_equal(admin_elearning_done_id(&e->a, gone, at("2026-09-02 10:00"), &e->why), 0);
        assert_int_equal(int_query(e, "SELECT elearning_done_at FROM registrations WHERE id = %lld", (long long) gone),
                         at("2026-09-02 10:00"));
        assert_int_equal(admin_elearning_done_email(&e->a, "nobody@example.org", e->a.now, &e->why), ADMIN_NOT_FOUND);
        expect_why(e, "nobody@example.org");
        assert_int_equal(admin_elearning_done_id(&e->a, 999, e->a.now, &e->why), ADMIN_NOT_FOUND);
}

/* ---- imports ------------------------------------------------------------------------------ */

static void test_import_registrations_is_all_or_nothing(void **state)
{
        env_t *e = *state;
        int64_t sid = add_session(e);
        import_report_t rep = { 0 };
        char text[256], *path;

        snprintf(text, sizeof(text), "session_id,name,email\n%lld,Ann,ann@example.org\n%lld,Bob,bob at example.org\n",
                 (long long) sid, (long long) sid);
        path = write_file(e, "bad.csv", text);
        assert_int_equal(admin_import_registrations(&e->a, path, &rep, &e->why), ADMIN_REFUSED);
        expect_why(e, ":3: \"bob at example.org\" is not a valid email address; nothing was imported");
        assert_int_equal(int_query(e, "SELECT count(*) FROM registrations"), 0);
        free(path);

        snprintf(text, sizeof(text), "\xef\xbb\xbfSession_ID,Name,Email,Registered_At\r\n"
                 "%lld,\"Ellis, Tom\",tom@example.org,2026-09-01 09:00\r\n%lld,Ann,ann@example.org,\r\n",
                 (long long) sid, (long long) sid);
        path = write_file(e, "good.csv", text);
        assert_int_equal(admin_import_registrations(&e->a, path, &rep, &e->why), 0);
        assert_int_equal(rep.rows, 2);
        assert_int_equal(rep.applied, 2);
        assert_int_equal(int_query(e, "SELECT registered_at FROM registrations WHERE name = 'Ellis, Tom'"),
                         at("2026-09-01 09:00"));
        assert_int_equal(int_query(e, "SELECT registered_at FROM registrations WHERE name = 'Ann'"), e->a.now);
        import_report_clear(&rep);
        free(path);

        path = write_file(e, "header.csv", "sid,name,email\n");
        assert_int_equal(admin_import_registrations(&e->a, path, &rep, &e->why), ADMIN_REFUSED);
        expect_why(e, ":1: the header must name the columns");
        free(path);
        path = write_file(e, "empty.csv", "");
        assert_int_equal(admin_import_registrations(&e->a, path, &rep, &e->why), ADMIN_REFUSED);
        expect_why(e, "empty");
        free(path);
        assert_int_equal(admin_import_registrations(&e->a, "/nonexistent/x.csv", &rep, &e->why), ADMIN_NO_INPUT);
        expect_why(e, "/nonexistent/x.csv");
        assert_int_equal(admin_import_registrations(&e->a, e->dir, &rep, &e->why), ADMIN_NO_INPUT);
        assert_int_equal(int_query(e, "SELECT count(*) FROM registrations"), 2);
}

static void test_import_elearning_notes_who_is_unknown(void **state)
{
        env_t *e = *state;
        int64_t sid = add_session(e), ann = add_reg(e, sid, "Ann", "ann@example.org");
        import_report_t rep = { 0 };
        char *path;

        path = write_file(e, "done.csv", "email,completed_at\nANN@example.org,2026-09-03 10:00\n"
                                         "ghost@example.org,2026-09-03 11:00\n");
        assert_int_equal(admin_import_elearning(&e->a, path, &rep, &e->why), 0);
        assert_int_equal(rep.rows, 2);
        assert_int_equal(rep.applied, 1);
        assert_int_equal(rep.n_notes, 1);
        assert_non_null(strstr(rep.notes[0], ":3: no registration for ghost@example.org"));
        assert_int_equal(int_query(e, "SELECT elearning_done_at FROM registrations WHERE id = %lld", (long long) ann),
                         at("2026-09-03 10:00"));
        import_report_clear(&rep);
        free(path);

        path = write_file(e, "bad.csv", "email,completed_at\nann@example.org,last week\n");
        assert_int_equal(admin_import_elearning(&e->a, path, &rep, &e->why), ADMIN_REFUSED);
        expect_why(e, ":2: completed_at \"last week\"");
        free(path);
}

/* ---- the outbox ---------------------------------------------------------------------------- */

static int64_t add_mail(env_t *e, int64_t sid, mail_status_t status)
{
        static int n;

        n++;
        sql(e, "INSERT INTO outbox(session_id, kind, occasion, recipient, status, attempts, created_at,"
               " first_attempt_at, next_attempt_at, last_error, message_id, body)"
               " VALUES (%lld, 'roster', 'x%d', 'x@example.org', '%s', 3, 100, 100, 200, '550 no', '<m%d>', x'00')",
            (long long) sid, n, mail_status_to_string(status), status);
        return sqlite3_last_insert_rowid(db_handle(e->db));
}

/* A retry queues a failed email again, due now, as if never tried; nothing else moves. */
static void test_retry_resets_only_failed(void **state)
{
        env_t *e = *state;
        int64_t sid = add_session(e), ids[_MAIL_STATUS_MAX];
        long n = -1;

        for (mail_status_t s = 0; s < _MAIL_STATUS_MAX; s++)
                ids[s] = add_mail(e, sid, s);
        for (mail_status_t s = 0; s < _MAIL_STATUS_MAX; s++) {
                int r = admin_retry(&e->a, ids[s], &e->why);

                assert_int_equal(r, s == MAIL_FAILED ? ADMIN_OK : ADMIN_REFUSED);
                if (r)
                        expect_why(e, "not failed");
        }
        assert_int_equal(admin_retry(&e->a, 999, &e->why), ADMIN_NOT_FOUND);
        /* due now with a new give-up period; the history (attempts, last error) stays */
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE id = %lld AND status = 'queued'"
                                      " AND attempts = 3 AND first_attempt_at IS NULL AND body IS NULL"
                                      " AND last_error = '550 no' AND next_attempt_at = %lld AND message_id = '<m2>'",
                                   (long long) ids[MAIL_FAILED], (long long) e->a.now), 1);
        /* the others are as they were */
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE attempts = 3 AND last_error = '550 no'"
                                      " AND status != 'queued' OR id = %lld", (long long) ids[MAIL_QUEUED]),
                         _MAIL_STATUS_MAX - 1);
        /* a running meccd is told */
        assert_int_equal(int_query(e, "SELECT count(*) FROM meta WHERE key = 'deliver_wanted'"), 1);
        assert_int_equal(admin_retry_all_failed(&e->a, &n), 0);
        assert_int_equal(n, 0);
        add_mail(e, sid, MAIL_FAILED);
        add_mail(e, sid, MAIL_FAILED);
        assert_int_equal(admin_retry_all_failed(&e->a, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE status = 'failed'"), 0);
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE status = 'sent' AND attempts = 3"), 1);
}

/* SPEC 15: the hub's export imported twice changes nothing; a known ref now cancelled
 * cancels; a session named by its ref. */
static void test_import_bookings_by_ref_is_idempotent(void **state)
{
        env_t *e = *state;
        int64_t sid = add_session(e);
        import_report_t rep = { 0 };
        char *path;

        assert_int_equal(admin_session_set_ref(&e->a, sid, "EV-7", &e->why), 0);
        assert_int_equal(admin_session_set_ref(&e->a, add_session(e), "EV-7", &e->why), ADMIN_REFUSED);
        expect_why(e, "already has the ref \"EV-7\"");
        path = write_file(e, "hub.csv", "ref,session,name,email,status,organisation\n"
                          "B1,EV-7,Ann,ann@example.org,Confirmed,Age UK\n"
                          "B2,EV-7,Bob,bob@example.org,,\n"
                          "B3,EV-7,Cy,cy@example.org,cancelled,\n");
        assert_int_equal(admin_import_registrations(&e->a, path, &rep, &e->why), 0);
        assert_int_equal(rep.applied, 2);
        import_report_clear(&rep);
        assert_int_equal(admin_import_registrations(&e->a, path, &rep, &e->why), 0);
        assert_int_equal(rep.applied, 0);
        import_report_clear(&rep);
        assert_int_equal(int_query(e, "SELECT count(*) FROM registrations"), 2);
        assert_int_equal(int_query(e, "SELECT count(*) FROM registrations WHERE organisation = 'Age UK'"
                                      " AND ref = 'B1' AND session_id = %lld", (long long) sid), 1);
        free(path);

        path = write_file(e, "hub2.csv", "ref,session,name,email,status\n"
                          "B1,EV-7,Ann,ann@example.org,Cancelled\n"
                          "B2,EV-7,Bob,bob@example.org,\n");
        assert_int_equal(admin_import_registrations(&e->a, path, &rep, &e->why), 0);
        assert_int_equal(rep.applied, 1);
        import_report_clear(&rep);
        assert_int_equal(int_query(e, "SELECT count(*) FROM registrations WHERE ref = 'B1' AND status = 'cancelled'"), 1);
        free(path);

        path = write_file(e, "bad.csv", "ref,session,name,email\nB4,EV-7,Di,di@example.org\nB5,EV-9,Ed,ed@example.org\n");
        assert_int_equal(admin_import_registrations(&e->a, path, &rep, &e->why), ADMIN_REFUSED);
        expect_why(e, ":3: no session has the ref \"EV-9\"; nothing was imported");
        assert_int_equal(int_query(e, "SELECT count(*) FROM registrations"), 2);
        free(path);
}

/* A source skips a bad row (the note quotes no address) and applies the rest. */
static void test_import_bookings_skips_bad_rows_of_a_source(void **state)
{
        env_t *e = *state;
        int64_t sid = add_session(e);
        static const char *const cancelled[] = { "Cancelled", "Refunded" };
        import_bookings_t how = { .cancelled = cancelled, .n_cancelled = 2, .skip_bad_rows = true };
        static const char csv[] = "Booking ref,Event ID,Name,Email,Status,Booked on,Extra\n"
                                  "H1,EV-1,Ann,ann@example.org,Paid,2026-07-30 10:00,x\n"
                                  "H2,EV-1,Bob,bob at example.org,Paid,,x\n"
                                  "H3,EV-2,Cy,cy@example.org,Paid,,x\n"
                                  "H4,EV-1,Di,di@example.org,Refunded,,x\n";
        import_report_t rep = { 0 };

        how.header[IMPORT_COL_REF] = "Booking ref";
        how.header[IMPORT_COL_SESSION] = "Event ID";
        how.header[IMPORT_COL_NAME] = "Name";
        how.header[IMPORT_COL_EMAIL] = "Email";
        how.header[IMPORT_COL_STATUS] = "Status";
        how.header[IMPORT_COL_REGISTERED_AT] = "Booked on";
        assert_int_equal(admin_session_set_ref(&e->a, sid, "EV-1", &e->why), 0);
        assert_int_equal(admin_import_bookings(&e->a, "source hub", csv, sizeof(csv) - 1, &how, &rep, &e->why), 0);
        assert_int_equal(rep.applied, 1);
        assert_int_equal(rep.skipped, 2);
        assert_int_equal(rep.n_notes, 2);
        assert_string_equal(rep.notes[0], "source hub:3: no valid email address; row skipped");
        assert_string_equal(rep.notes[1], "source hub:4: no session has the ref \"EV-2\"; row skipped");
        assert_int_equal(int_query(e, "SELECT registered_at FROM registrations WHERE ref = 'H1'"), at("2026-07-30 10:00"));
        import_report_clear(&rep);
        assert_int_equal(admin_import_bookings(&e->a, "source hub", "Name\n", 5, &how, &rep, &e->why), ADMIN_REFUSED);
        expect_why(e, "source hub:1: the header must name the columns Event ID, Name and Email; nothing was imported");
}

/* SPEC 14: a new address clears unreachable and queues what is still owed, anew. */
static void test_registration_edit_puts_an_address_right(void **state)
{
        env_t *e = *state;
        int64_t sid = add_session(e), id = add_reg(e, sid, "Ann", "ann@exmaple.org");
        long queued = -1;

        sql(e, "UPDATE registrations SET status = 'booked' WHERE id = %lld", (long long) id);
        assert_int_equal(outbox_queue(e->db, &e->c, sid, id, KIND_CONFIRMATION, "", "ann@exmaple.org", e->a.now), 1);
        assert_int_equal(outbox_queue(e->db, &e->c, sid, id, KIND_ELEARNING_REMINDER, "10d", "ann@exmaple.org", e->a.now), 1);
        assert_int_equal(outbox_mark_unreachable(e->db, id, "550 5.1.1 <ann@exmaple.org>: unknown", e->a.now), 1);
        assert_int_equal(outbox_mark_unreachable(e->db, id, "again", e->a.now), 0);
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE status = 'failed' AND last_error = 'address bounced'"), 2);
        assert_int_equal(reg_status(e, id), REG_BOOKED); /* the place is kept */

        assert_int_equal(admin_registration_edit(&e->a, id, NULL, "bad address", &queued, &e->why), ADMIN_REFUSED);
        assert_int_equal(admin_registration_edit(&e->a, 999, "X", NULL, &queued, &e->why), ADMIN_NOT_FOUND);
        e->a.now = at("2026-09-22 10:00"); /* the joining link's moment has passed */
        assert_int_equal(admin_registration_edit(&e->a, id, "Ann Smith", "ann@example.org", &queued, &e->why), 0);
        assert_int_equal(queued, 2);
        assert_int_equal(int_query(e, "SELECT count(*) FROM registrations WHERE unreachable_at IS NULL"
                                      " AND email = 'ann@example.org' AND name = 'Ann Smith'"), 1);
        assert_int_equal(int_query(e, "SELECT count(*) FROM outbox WHERE status = 'queued' AND recipient = 'ann@example.org'"
                                      " AND kind IN ('confirmation', 'joining_link') AND occasion LIKE 'edit-%%'"), 2);
        /* a name alone queues nothing */
        assert_int_equal(admin_registration_edit(&e->a, id, "Ann B. Smith", NULL, &queued, &e->why), 0);
        assert_int_equal(queued, 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        const struct CMUnitTest tests[] = {
                T(test_session_add_stores_every_field),
                T(test_session_add_refuses_bad_fields),
                T(test_session_add_too_soon_needs_force),
                T(test_session_edit_applies_each_field),
                T(test_session_edit_records_the_change),
                T(test_cancelled_and_done_sessions_are_not_edited_or_cancelled),
                T(test_session_close_runs_the_close_step),
                T(test_register),
                T(test_cancel_only_from_new_booked_or_waitlisted),
                T(test_elearning_done),
                T(test_import_registrations_is_all_or_nothing),
                T(test_import_elearning_notes_who_is_unknown),
                T(test_retry_resets_only_failed),
                T(test_import_bookings_by_ref_is_idempotent),
                T(test_import_bookings_skips_bad_rows_of_a_source),
                T(test_registration_edit_puts_an_address_right),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
