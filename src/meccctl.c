/* meccctl.c - the admin's command: sessions, registrations, the outbox, dry runs. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "addr.h"
#include "clock.h"
#include "config.h"
#include "csv.h"
#include "db.h"
#include "journal.h"
#include "outbox.h"
#include "plan.h"
#include "render.h"
#include "scan.h"

typedef struct {
        config_t *cfg;
        db_t *db;
        bool json;
        int64_t now;
} ctl_t;

typedef int (*cmd_fn)(ctl_t *, int, char **);

static int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(int code, const char *fmt, ...)
{
        va_list ap;

        fputs("meccctl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return code;
}

static int db_fail(ctl_t *x, int r)
{
        if (r == -EBUSY)
                return fail(EX_TEMPFAIL, "the database is locked by another process; try again");
        return fail(EX_UNAVAILABLE, "database: %s", db_errmsg(x->db));
}

/* ---- JSON and text output -------------------------------------------------------------- */

static void json_str(const char *s)
{
        if (!s) {
                fputs("null", stdout);
                return;
        }
        putchar('"');
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                if (*p == '"' || *p == '\\')
                        printf("\\%c", *p);
                else if (*p < 0x20)
                        printf("\\u%04x", *p);
                else
                        putchar(*p);
        }
        putchar('"');
}

static void json_time(int64_t t)
{
        char buf[32];

        if (!t) {
                fputs("null", stdout);
                return;
        }
        clock_format_iso(t, buf, sizeof(buf));
        printf("\"%s\"", buf);
}

static const char *local_time(int64_t t, char *buf, size_t n)
{
        if (!t)
                return "-";
        clock_format_local(t, buf, n);
        return buf;
}

static bool parse_id(const char *s, int64_t *ret)
{
        char *end;
        long long v;

        if (!s || !*s)
                return false;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno || *end || v <= 0)
                return false;
        *ret = v;
        return true;
}

static bool text_ok(const char *s)
{
        if (!s || !*s)
                return false;
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (*p < ' ' || *p == 0x7f)
                        return false;
        return true;
}

static bool url_ok(const char *s)
{
        return !s || (text_ok(s) && !strchr(s, ' ') &&
                      (!strncmp(s, "https://", 8) || !strncmp(s, "http://", 7)));
}

/* ---- sessions ------------------------------------------------------------------------- */

static void print_session(ctl_t *x, const session_t *s, bool first)
{
        int64_t cutoff = plan_cutoff(x->cfg, s->starts_at, s->closes_at);
        long left = s->capacity > s->booked ? s->capacity - s->booked : 0;
        char a[64], b[64];

        if (x->json) {
                printf("%s{\"id\":%lld,\"title\":", first ? "" : ",", (long long) s->id);
                json_str(s->title);
                fputs(",\"starts_at\":", stdout);
                json_time(s->starts_at);
                fputs(",\"ends_at\":", stdout);
                json_time(s->ends_at);
                fputs(",\"closes_at\":", stdout);
                json_time(cutoff);
                printf(",\"capacity\":%ld,\"status\":\"%s\",\"booked\":%ld,\"waitlisted\":%ld,"
                       "\"seats_left\":%ld,\"full\":%s,\"sequence\":%ld,\"join_url\":",
                       s->capacity, session_status_to_string(s->status), s->booked, s->waitlisted, left,
                       s->booked >= s->capacity ? "true" : "false", s->seq);
                json_str(s->join_url);
                fputs(",\"elearning_url\":", stdout);
                json_str(s->elearning_url);
                fputs(",\"trainer_email\":", stdout);
                json_str(s->trainer_email);
                putchar('}');
                return;
        }
        printf("%-4lld %-9s %-22s %3ld/%-3ld %4ld  %-22s %s\n", (long long) s->id,
               session_status_to_string(s->status), local_time(s->starts_at, a, sizeof(a)), s->booked, s->capacity, s->waitlisted,
               local_time(cutoff, b, sizeof(b)), s->title);
}

static const char SQL_SESSIONS[] = "SELECT id FROM sessions ORDER BY starts_at, id";

static int cmd_session_list(ctl_t *x, int argc, char **argv)
{
        sqlite3_stmt *st = db_stmt(x->db, SQL_SESSIONS);
        int64_t *ids = NULL;
        size_t n = 0, cap = 0;
        int r;

        (void) argv;
        if (argc > 1)
                return fail(EX_USAGE, "session list takes no arguments");
        if (!st)
                return db_fail(x, -EIO);
        while ((r = db_step(st)) == 1) {
                if (n == cap && !(ids = realloc(ids, (cap = cap ? 2 * cap : 64) * sizeof(*ids))))
                        return fail(EX_OSERR, "out of memory");
                ids[n++] = sqlite3_column_int64(st, 0);
        }
        sqlite3_reset(st);
        if (x->json)
                putchar('[');
        else
                printf("%-4s %-9s %-22s %7s %4s  %-22s %s\n", "ID", "STATUS", "STARTS", "BOOKED",
                       "WAIT", "BOOKINGS CLOSE", "TITLE");
        for (size_t i = 0; i < n; i++) {
                session_t s;

                if (db_session_get(x->db, ids[i], &s) <= 0)
                        continue;
                print_session(x, &s, i == 0);
                session_clear(&s);
        }
        if (x->json)
                puts("]");
        free(ids);
        return r < 0 ? db_fail(x, r) : EX_OK;
}

static int get_session(ctl_t *x, const char *arg, session_t *s)
{
        int64_t id;
        int r;

        if (!parse_id(arg, &id))
                return fail(EX_USAGE, "\"%s\" is not a session id", arg ? arg : "");
        r = db_session_get(x->db, id, s);
        if (r < 0)
                return db_fail(x, r);
        if (r == 0)
                return fail(EX_DATAERR, "no session %lld", (long long) id);
        return EX_OK;
}

static int cmd_session_show(ctl_t *x, int argc, char **argv)
{
        session_t s;
        int r;

        if (argc != 2)
                return fail(EX_USAGE, "usage: session show ID");
        r = get_session(x, argv[1], &s);
        if (r)
                return r;
        if (x->json) {
                print_session(x, &s, true);
                putchar('\n');
        } else {
                char a[64], b[64], c[64];

                printf("Session %lld: %s\n  status:    %s\n  starts:    %s\n  ends:      %s\n"
                       "  bookings:  close %s\n  places:    %ld booked of %ld, %ld waiting\n"
                       "  join:      %s\n  e-learning: %s\n  trainer:   %s\n",
                       (long long) s.id, s.title, session_status_to_string(s.status), local_time(s.starts_at, a, sizeof(a)),
                       local_time(s.ends_at, b, sizeof(b)),
                       local_time(plan_cutoff(x->cfg, s.starts_at, s.closes_at), c, sizeof(c)),
                       s.booked, s.capacity, s.waitlisted, s.join_url ? s.join_url : "-",
                       s.elearning_url ? s.elearning_url : "(default)",
                       s.trainer_email ? s.trainer_email : "(roster_to)");
        }
        session_clear(&s);
        return EX_OK;
}

typedef struct {
        const char *title, *start, *end, *capacity, *join_url, *elearning_url, *trainer, *closes;
} session_args_t;

static int parse_session_args(int argc, char **argv, session_args_t *a)
{
        static const struct option opts[] = {
                { "title", required_argument, NULL, 't' },
                { "start", required_argument, NULL, 's' },
                { "end", required_argument, NULL, 'e' },
                { "capacity", required_argument, NULL, 'n' },
                { "join-url", required_argument, NULL, 'j' },
                { "elearning-url", required_argument, NULL, 'l' },
                { "trainer", required_argument, NULL, 'r' },
                { "closes", required_argument, NULL, 'x' },
                {}
        };
        int c;

        optind = 0; /* 0: glibc starts a fresh scan */
        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                switch (c) {
                case 't': a->title = optarg; break;
                case 's': a->start = optarg; break;
                case 'e': a->end = optarg; break;
                case 'n': a->capacity = optarg; break;
                case 'j': a->join_url = optarg; break;
                case 'l': a->elearning_url = optarg; break;
                case 'r': a->trainer = optarg; break;
                case 'x': a->closes = optarg; break;
                default: return EX_USAGE;
                }
        }
        return EX_OK;
}

/* Validate what was given; fill times. Returns 0 or an exit code (message printed). */
static int check_session_args(const session_args_t *a, int64_t *start, int64_t *end,
                              long *capacity, int64_t *closes)
{
        char *e;

        if (a->title && !text_ok(a->title))
                return fail(EX_DATAERR, "--title: must be a non-empty single line");
        if (a->start && clock_parse_time(a->start, start) < 0)
                return fail(EX_DATAERR, "--start: \"%s\" is not a time like \"2026-09-22 10:30\"", a->start);
        if (a->end && clock_parse_time(a->end, end) < 0)
                return fail(EX_DATAERR, "--end: \"%s\" is not a time like \"2026-09-22 12:00\"", a->end);
        if (a->closes && clock_parse_time(a->closes, closes) < 0)
                return fail(EX_DATAERR, "--closes: \"%s\" is not a time like \"2026-09-15 10:30\"", a->closes);
        if (a->capacity) {
                errno = 0;
                *capacity = strtol(a->capacity, &e, 10);
                if (errno || *e || !*a->capacity || *capacity < 0 || *capacity > 100000)
                        return fail(EX_DATAERR, "--capacity: \"%s\" is not a number of places (0 or more)", a->capacity);
        }
        if (!url_ok(a->join_url))
                return fail(EX_DATAERR, "--join-url: \"%s\" is not an http(s) URL", a->join_url);
        if (!url_ok(a->elearning_url))
                return fail(EX_DATAERR, "--elearning-url: \"%s\" is not an http(s) URL", a->elearning_url);
        if (a->trainer && !addr_valid(a->trainer))
                return fail(EX_DATAERR, "--trainer: \"%s\" is not a valid email address", a->trainer);
        return EX_OK;
}

static const char SQL_SESSION_ADD[] =
        "INSERT INTO sessions(title, starts_at, ends_at, capacity, join_url, elearning_url,"
        " trainer_email, closes_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

static int cmd_session_add(ctl_t *x, int argc, char **argv)
{
        session_args_t a = { 0 };
        int64_t start = 0, end = 0, closes = 0;
        long capacity = 0;
        sqlite3_stmt *st;
        int r;

        if (parse_session_args(argc, argv, &a) || optind != argc)
                return fail(EX_USAGE, "usage: session add --title T --start TIME --end TIME --capacity N"
                                      " [--join-url U] [--elearning-url U] [--trainer EMAIL] [--closes TIME]");
        if (!a.title || !a.start || !a.end || !a.capacity)
                return fail(EX_USAGE, "session add needs --title, --start, --end and --capacity");
        r = check_session_args(&a, &start, &end, &capacity, &closes);
        if (r)
                return r;
        if (end <= start)
                return fail(EX_DATAERR, "--end must be after --start");
        st = db_stmt(x->db, SQL_SESSION_ADD);
        if (!st)
                return db_fail(x, -EIO);
        sqlite3_bind_text(st, 1, a.title, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, start);
        sqlite3_bind_int64(st, 3, end);
        sqlite3_bind_int64(st, 4, capacity);
        db_bind_text(st, 5, a.join_url);
        db_bind_text(st, 6, a.elearning_url);
        db_bind_text(st, 7, a.trainer);
        db_bind_time(st, 8, closes);
        r = db_step_done(st);
        if (r < 0)
                return db_fail(x, r);
        printf("%lld\n", (long long) sqlite3_last_insert_rowid(db_handle(x->db)));
        return EX_OK;
}

static const char SQL_SESSION_EDIT[] =
        "UPDATE sessions SET title = ifnull(?2, title), starts_at = ?3, ends_at = ?4,"
        " capacity = ?5, join_url = ?6, trainer_email = ifnull(?7, trainer_email),"
        " closes_at = ifnull(?8, closes_at), elearning_url = ifnull(?11, elearning_url),"
        " seq = seq + ?9, change_note = CASE WHEN ?9 THEN ?10 ELSE change_note END,"
        " changed_outbox = CASE WHEN ?9 THEN (SELECT ifnull(max(id), 0) FROM outbox) ELSE changed_outbox END"
        " WHERE id = ?1";

/* What changed, in words for the session_changed email. */
static char *change_note(const session_t *s, int64_t start, int64_t end, const char *join)
{
        char *buf = NULL, date[96], range[64];
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return NULL;
        if (start != s->starts_at || end != s->ends_at) {
                clock_format_date(start, date, sizeof(date));
                clock_format_time_range(start, end, range, sizeof(range));
                fprintf(f, "The session now takes place on %s, %s.", date, range);
        }
        /* the link itself is shown by the template, and held back with require_elearning */
        if (join && (!s->join_url || strcmp(join, s->join_url) != 0))
                fprintf(f, "%sThe joining link has changed.", ftell(f) ? "\n" : "");
        fclose(f);
        return buf;
}

static int cmd_session_edit(ctl_t *x, int argc, char **argv)
{
        session_args_t a = { 0 };
        session_t s;
        int64_t start, end, closes = 0;
        long capacity;
        const char *join;
        char *note = NULL;
        sqlite3_stmt *st;
        bool changed;
        int r;

        if (argc < 2)
                return fail(EX_USAGE, "usage: session edit ID [--title T] [--start TIME] [--end TIME]"
                                      " [--capacity N] [--join-url U] [--elearning-url U] [--trainer EMAIL]"
                                      " [--closes TIME]");
        r = get_session(x, argv[1], &s);
        if (r)
                return r;
        start = s.starts_at;
        end = s.ends_at;
        capacity = s.capacity;
        if (parse_session_args(argc - 1, argv + 1, &a) || optind != argc - 1) {
                r = fail(EX_USAGE, "usage: session edit ID [--title T] [--start TIME] [--end TIME] ...");
                goto out;
        }
        r = check_session_args(&a, &start, &end, &capacity, &closes);
        if (r)
                goto out;
        if (end <= start) {
                r = fail(EX_DATAERR, "the end must be after the start");
                goto out;
        }
        if (s.status == SESSION_CANCELLED || s.status == SESSION_DONE) {
                r = fail(EX_DATAERR, "session %lld is %s and can no longer be edited", (long long) s.id,
                         session_status_to_string(s.status));
                goto out;
        }
        join = a.join_url ? a.join_url : s.join_url;
        changed = start != s.starts_at || end != s.ends_at ||
                  (a.join_url && (!s.join_url || strcmp(a.join_url, s.join_url)));
        if (changed)
                note = change_note(&s, start, end, join);
        st = db_stmt(x->db, SQL_SESSION_EDIT);
        sqlite3_bind_int64(st, 1, s.id);
        db_bind_text(st, 2, a.title);
        sqlite3_bind_int64(st, 3, start);
        sqlite3_bind_int64(st, 4, end);
        sqlite3_bind_int64(st, 5, capacity);
        db_bind_text(st, 6, join);
        db_bind_text(st, 7, a.trainer);
        db_bind_time(st, 8, closes);
        sqlite3_bind_int(st, 9, changed);
        db_bind_text(st, 10, note);
        db_bind_text(st, 11, a.elearning_url);
        r = db_step_done(st);
        r = r < 0 ? db_fail(x, r) : EX_OK;
        if (!r && !x->json)
                printf("session %lld updated%s\n", (long long) s.id,
                       changed ? "; those already emailed will be told at the next scan" : "");
out:
        free(note);
        session_clear(&s);
        return r;
}

static const char SQL_SESSION_STATUS[] =
        "UPDATE sessions SET status = ?2 WHERE id = ?1 AND status = ?3";

static int set_status(ctl_t *x, int argc, char **argv, session_status_t to)
{
        session_t s;
        sqlite3_stmt *st;
        int r;

        if (argc != 2)
                return fail(EX_USAGE, "usage: session cancel ID");
        r = get_session(x, argv[1], &s);
        if (r)
                return r;
        st = db_stmt(x->db, SQL_SESSION_STATUS);
        sqlite3_bind_int64(st, 1, s.id);
        sqlite3_bind_text(st, 2, session_status_to_string(to), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, session_status_to_string(s.status), -1, SQLITE_STATIC);
        if (s.status == to)
                r = fail(EX_DATAERR, "session %lld is already %s", (long long) s.id, session_status_to_string(to));
        else if (s.status == SESSION_DONE || s.status == SESSION_CANCELLED)
                r = fail(EX_DATAERR, "session %lld is %s", (long long) s.id, session_status_to_string(s.status));
        else if ((r = db_step_done(st)) < 0)
                r = db_fail(x, r);
        else {
                r = EX_OK;
                if (!x->json)
                        printf("session %lld %s\n", (long long) s.id, session_status_to_string(to));
        }
        session_clear(&s);
        return r;
}

static int cmd_session_cancel(ctl_t *x, int argc, char **argv)
{
        return set_status(x, argc, argv, SESSION_CANCELLED);
}

/* Closing early: the next scan does the rest of the close step (waiting list, roster). */
static const char SQL_CLOSE_NOW[] = "UPDATE sessions SET closes_at = ?2 WHERE id = ?1 AND status = 'open'";

static int cmd_session_close(ctl_t *x, int argc, char **argv)
{
        session_t s;
        sqlite3_stmt *st;
        int r;

        if (argc != 2)
                return fail(EX_USAGE, "usage: session close ID");
        r = get_session(x, argv[1], &s);
        if (r)
                return r;
        if (s.status != SESSION_OPEN) {
                r = fail(EX_DATAERR, "session %lld is %s, not open", (long long) s.id,
                         session_status_to_string(s.status));
                goto out;
        }
        st = db_stmt(x->db, SQL_CLOSE_NOW);
        sqlite3_bind_int64(st, 1, s.id);
        sqlite3_bind_int64(st, 2, x->now);
        r = db_step_done(st);
        if (r < 0) {
                r = db_fail(x, r);
                goto out;
        }
        r = db_begin(x->db);
        if (r >= 0)
                r = scan_close(x->db, x->cfg, x->now, &(scan_stats_t) { 0 });
        if (r >= 0)
                r = db_commit(x->db);
        if (r < 0) {
                db_rollback(x->db);
                r = db_fail(x, r);
                goto out;
        }
        if (!x->json)
                printf("session %lld closed for bookings\n", (long long) s.id);
out:
        session_clear(&s);
        return r;
}

/* ---- registrations ---------------------------------------------------------------------- */

static const char SQL_REGISTER[] =
        "INSERT INTO registrations(session_id, name, email, registered_at) VALUES (?1, ?2, ?3, ?4)";

static int insert_registration(ctl_t *x, int64_t sid, const char *name, const char *email, int64_t at)
{
        sqlite3_stmt *st = db_stmt(x->db, SQL_REGISTER);

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, sid);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, email, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, at);
        return db_step_done(st);
}

static int cmd_register(ctl_t *x, int argc, char **argv)
{
        static const struct option opts[] = {
                { "name", required_argument, NULL, 'n' },
                { "email", required_argument, NULL, 'e' },
                {}
        };
        const char *name = NULL, *email = NULL;
        session_t s;
        int c, r;

        optind = 0; /* 0: glibc starts a fresh scan */
        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                if (c == 'n')
                        name = optarg;
                else if (c == 'e')
                        email = optarg;
                else
                        return EX_USAGE;
        }
        if (optind != argc - 1 || !name || !email)
                return fail(EX_USAGE, "usage: register SESSION_ID --name NAME --email EMAIL");
        if (!text_ok(name))
                return fail(EX_DATAERR, "--name: must be a non-empty single line");
        if (!addr_valid(email))
                return fail(EX_DATAERR, "--email: \"%s\" is not a valid email address", email);
        r = get_session(x, argv[optind], &s);
        if (r)
                return r;
        r = insert_registration(x, s.id, name, email, x->now);
        session_clear(&s);
        if (r < 0)
                return db_fail(x, r);
        printf("%lld\n", (long long) sqlite3_last_insert_rowid(db_handle(x->db)));
        return EX_OK;
}

static const char SQL_CANCEL_REG[] =
        "UPDATE registrations SET status = 'cancelled' WHERE id = ?1"
        " AND status IN ('new', 'booked', 'waitlisted')";

static int cmd_cancel(ctl_t *x, int argc, char **argv)
{
        registration_t g;
        sqlite3_stmt *st;
        int64_t id;
        int r;

        if (argc != 2 || !parse_id(argv[1], &id))
                return fail(EX_USAGE, "usage: cancel REGISTRATION_ID");
        r = db_registration_get(x->db, id, &g);
        if (r <= 0)
                return r < 0 ? db_fail(x, r) : fail(EX_DATAERR, "no registration %lld", (long long) id);
        if (g.status != REG_NEW && !reg_status_is_placed(g.status)) {
                r = fail(EX_DATAERR, "registration %lld is %s; nothing to cancel", (long long) id,
                         reg_status_to_string(g.status));
                goto out;
        }
        st = db_stmt(x->db, SQL_CANCEL_REG);
        sqlite3_bind_int64(st, 1, id);
        r = db_step_done(st);
        r = r < 0 ? db_fail(x, r) : EX_OK;
        if (!r && !x->json)
                printf("registration %lld cancelled\n", (long long) id);
out:
        registration_clear(&g);
        return r;
}

static const char SQL_EL_BY_ID[] =
        "UPDATE registrations SET elearning_done_at = ?2 WHERE id = ?1 AND elearning_done_at IS NULL";
static const char SQL_EL_BY_EMAIL[] =
        "UPDATE registrations SET elearning_done_at = ?2 WHERE email = ?1 COLLATE NOCASE"
        " AND elearning_done_at IS NULL AND status IN ('new', 'booked', 'waitlisted')";
static const char SQL_REG_EXISTS_EMAIL[] =
        "SELECT count(*) FROM registrations WHERE email = ?1 COLLATE NOCASE";
static const char SQL_REG_EXISTS_ID[] = "SELECT count(*) FROM registrations WHERE id = ?1";

/* Mark one address (or id) done; returns rows known for it (0: not found) or -errno. */
static int elearning_done(ctl_t *x, const char *who, int64_t at)
{
        int64_t id;
        bool by_id = parse_id(who, &id) && !strchr(who, '@');
        sqlite3_stmt *st = db_stmt(x->db, by_id ? SQL_EL_BY_ID : SQL_EL_BY_EMAIL);
        int r;

        if (!st)
                return -EIO;
        if (by_id)
                sqlite3_bind_int64(st, 1, id);
        else
                sqlite3_bind_text(st, 1, who, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, at);
        r = db_step_done(st);
        if (r < 0)
                return r;
        st = db_stmt(x->db, by_id ? SQL_REG_EXISTS_ID : SQL_REG_EXISTS_EMAIL);
        if (by_id)
                sqlite3_bind_int64(st, 1, id);
        else
                sqlite3_bind_text(st, 1, who, -1, SQLITE_STATIC);
        r = db_step(st);
        if (r == 1)
                r = sqlite3_column_int(st, 0);
        sqlite3_reset(st);
        return r;
}

static int cmd_elearning_done(ctl_t *x, int argc, char **argv)
{
        int r;

        if (argc != 2)
                return fail(EX_USAGE, "usage: elearning-done REGISTRATION_ID|EMAIL");
        r = elearning_done(x, argv[1], x->now);
        if (r < 0)
                return db_fail(x, r);
        if (r == 0)
                return fail(EX_DATAERR, "no registration for \"%s\"", argv[1]);
        if (!x->json)
                printf("e-learning recorded as done for %s\n", argv[1]);
        return EX_OK;
}

static const char SQL_REGS[] =
        "SELECT id, session_id, name, email, status, registered_at, ifnull(elearning_done_at, 0)"
        " FROM registrations WHERE ?1 = 0 OR session_id = ?1 ORDER BY session_id, registered_at, id";

static int cmd_registrations_list(ctl_t *x, int argc, char **argv)
{
        static const struct option opts[] = { { "session", required_argument, NULL, 's' }, {} };
        sqlite3_stmt *st;
        int64_t sid = 0;
        int c, r, n = 0;

        optind = 0; /* 0: glibc starts a fresh scan */
        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0)
                if (c != 's' || !parse_id(optarg, &sid))
                        return fail(EX_USAGE, "usage: registrations list [--session ID]");
        if (optind != argc)
                return fail(EX_USAGE, "usage: registrations list [--session ID]");
        st = db_stmt(x->db, SQL_REGS);
        sqlite3_bind_int64(st, 1, sid);
        if (x->json)
                putchar('[');
        else
                printf("%-5s %-7s %-10s %-22s %-22s %-30s %s\n", "ID", "SESSION", "STATUS",
                       "REGISTERED", "E-LEARNING DONE", "EMAIL", "NAME");
        while ((r = db_step(st)) == 1) {
                const char *name = (const char *) sqlite3_column_text(st, 2);
                const char *email = (const char *) sqlite3_column_text(st, 3);
                const char *status = (const char *) sqlite3_column_text(st, 4);
                int64_t reg = sqlite3_column_int64(st, 5), el = sqlite3_column_int64(st, 6);
                char a[64], b[64];

                if (x->json) {
                        printf("%s{\"id\":%lld,\"session_id\":%lld,\"name\":", n ? "," : "",
                               (long long) sqlite3_column_int64(st, 0), (long long) sqlite3_column_int64(st, 1));
                        json_str(*name ? name : NULL);
                        fputs(",\"email\":", stdout);
                        json_str(*email ? email : NULL);
                        printf(",\"status\":\"%s\",\"registered_at\":", status);
                        json_time(reg);
                        fputs(",\"elearning_done_at\":", stdout);
                        json_time(el);
                        putchar('}');
                } else
                        printf("%-5lld %-7lld %-10s %-22s %-22s %-30s %s\n",
                               (long long) sqlite3_column_int64(st, 0), (long long) sqlite3_column_int64(st, 1),
                               status, local_time(reg, a, sizeof(a)), local_time(el, b, sizeof(b)),
                               *email ? email : "(erased)", *name ? name : "(erased)");
                n++;
        }
        sqlite3_reset(st);
        if (x->json)
                puts("]");
        return r < 0 ? db_fail(x, r) : EX_OK;
}

/* ---- imports ------------------------------------------------------------------------------ */

static int read_all(const char *path, char **ret, size_t *ret_size)
{
        FILE *f = fopen(path, "re");
        char *buf = NULL, chunk[8192];
        size_t size = 0, n;
        FILE *m;

        if (!f)
                return -errno;
        m = open_memstream(&buf, &size);
        if (!m) {
                fclose(f);
                return -ENOMEM;
        }
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                fwrite(chunk, 1, n, m);
        fclose(f);
        fclose(m);
        *ret = buf;
        *ret_size = size;
        return 0;
}

static bool header_is(const csv_row_t *h, const char *const *names, size_t min, size_t max)
{
        if (h->n_fields < min || h->n_fields > max)
                return false;
        for (size_t i = 0; i < h->n_fields; i++)
                if (strcasecmp(h->fields[i], names[i]) != 0)
                        return false;
        return true;
}

static int load_csv(const char *path, csv_table_t **ret)
{
        char *buf = NULL, *err = NULL;
        size_t size = 0;
        int r;

        r = read_all(path, &buf, &size);
        if (r < 0)
                return fail(EX_NOINPUT, "%s: %s", path, strerror(-r));
        r = csv_parse(buf, size, ret, &err);
        free(buf);
        if (r < 0) {
                r = fail(EX_DATAERR, "%s:%s; nothing was imported", path, err ? err + (strncmp(err, "line ", 5) ? 0 : 5) : " cannot be read");
                free(err);
                return r;
        }
        if ((*ret)->n_rows == 0) {
                *ret = csv_table_free(*ret);
                return fail(EX_DATAERR, "%s:1: the file is empty; a header row is needed", path);
        }
        return EX_OK;
}

static int import_registration_row(ctl_t *x, const char *path, const csv_row_t *row)
{
        int64_t sid, at = x->now;
        session_t s;
        int r;

        if (row->n_fields < 3 || row->n_fields > 4)
                return fail(EX_DATAERR, "%s:%u: expected 3 or 4 fields, found %zu; nothing was imported",
                            path, row->line, row->n_fields);
        if (!parse_id(row->fields[0], &sid))
                return fail(EX_DATAERR, "%s:%u: session_id \"%s\" is not a number; nothing was imported",
                            path, row->line, row->fields[0]);
        if (!text_ok(row->fields[1]))
                return fail(EX_DATAERR, "%s:%u: the name is empty or not a single line; nothing was imported",
                            path, row->line);
        if (!addr_valid(row->fields[2]))
                return fail(EX_DATAERR, "%s:%u: \"%s\" is not a valid email address; nothing was imported",
                            path, row->line, row->fields[2]);
        if (row->n_fields == 4 && *row->fields[3] && clock_parse_time(row->fields[3], &at) < 0)
                return fail(EX_DATAERR, "%s:%u: registered_at \"%s\" is not a time like \"2026-09-01 10:30\";"
                            " nothing was imported", path, row->line, row->fields[3]);
        r = db_session_get(x->db, sid, &s);
        if (r == 0)
                return fail(EX_DATAERR, "%s:%u: there is no session %lld; nothing was imported",
                            path, row->line, (long long) sid);
        if (r < 0)
                return db_fail(x, r);
        session_clear(&s);
        r = insert_registration(x, sid, row->fields[1], row->fields[2], at);
        return r < 0 ? db_fail(x, r) : EX_OK;
}

static int import_elearning_row(ctl_t *x, const char *path, const csv_row_t *row, unsigned *missing)
{
        int64_t at;
        int r;

        if (row->n_fields != 2)
                return fail(EX_DATAERR, "%s:%u: expected 2 fields, found %zu; nothing was imported",
                            path, row->line, row->n_fields);
        if (!addr_valid(row->fields[0]))
                return fail(EX_DATAERR, "%s:%u: \"%s\" is not a valid email address; nothing was imported",
                            path, row->line, row->fields[0]);
        if (clock_parse_time(row->fields[1], &at) < 0)
                return fail(EX_DATAERR, "%s:%u: completed_at \"%s\" is not a time like \"2026-09-01 10:30\";"
                            " nothing was imported", path, row->line, row->fields[1]);
        r = elearning_done(x, row->fields[0], at);
        if (r < 0)
                return db_fail(x, r);
        if (r == 0) {
                fprintf(stderr, "meccctl: %s:%u: no registration for %s\n", path, row->line, row->fields[0]);
                (*missing)++;
        }
        return EX_OK;
}

static int cmd_import(ctl_t *x, int argc, char **argv)
{
        static const char *const reg_header[] = { "session_id", "name", "email", "registered_at" };
        static const char *const el_header[] = { "email", "completed_at" };
        csv_table_t *t = NULL;
        bool regs;
        unsigned missing = 0;
        int r;

        if (argc != 3 || (strcmp(argv[1], "registrations") && strcmp(argv[1], "elearning")))
                return fail(EX_USAGE, "usage: import registrations FILE.csv | import elearning FILE.csv");
        regs = !strcmp(argv[1], "registrations");
        r = load_csv(argv[2], &t);
        if (r)
                return r;
        if (regs ? !header_is(&t->rows[0], reg_header, 3, 4) : !header_is(&t->rows[0], el_header, 2, 2)) {
                r = fail(EX_DATAERR, "%s:%u: the header must be \"%s\"; nothing was imported", argv[2],
                         t->rows[0].line, regs ? "session_id,name,email[,registered_at]" : "email,completed_at");
                goto out;
        }
        if ((r = db_begin(x->db)) < 0) {
                r = db_fail(x, r);
                goto out;
        }
        for (size_t i = 1; i < t->n_rows && !r; i++)
                r = regs ? import_registration_row(x, argv[2], &t->rows[i])
                         : import_elearning_row(x, argv[2], &t->rows[i], &missing);
        if (!r && (r = db_commit(x->db)) < 0)
                r = db_fail(x, r);
        if (r) {
                db_rollback(x->db);
                goto out;
        }
        if (x->json)
                goto out;
        if (regs)
                printf("%zu registration%s imported\n", t->n_rows - 1, t->n_rows == 2 ? "" : "s");
        else if (!missing)
                printf("%zu completion%s recorded\n", t->n_rows - 1, t->n_rows == 2 ? "" : "s");
        else
                printf("%zu completion%s recorded; %u address%s not found (listed above)\n",
                       t->n_rows - 1 - missing, t->n_rows - 1 - missing == 1 ? "" : "s",
                       missing, missing == 1 ? "" : "es");
out:
        csv_table_free(t);
        return r;
}

/* ---- outbox --------------------------------------------------------------------------------- */

static const char SQL_OUTBOX[] =
        "SELECT id, ifnull(registration_id, 0), session_id, kind, recipient, status, attempts,"
        " created_at, ifnull(sent_at, 0), next_attempt_at, last_error, message_id, occasion"
        " FROM outbox WHERE ?1 IS NULL OR status = ?1 ORDER BY id";

static int cmd_outbox_list(ctl_t *x, int argc, char **argv)
{
        static const struct option opts[] = { { "status", required_argument, NULL, 's' }, {} };
        const char *status = NULL;
        sqlite3_stmt *st;
        int c, r, n = 0;

        optind = 0; /* 0: glibc starts a fresh scan */
        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                if (c != 's')
                        return fail(EX_USAGE, "usage: outbox list [--status queued|sent|failed|expired]");
                status = optarg;
        }
        if (optind != argc || (status && strcmp(status, "queued") && strcmp(status, "sent") &&
                               strcmp(status, "failed") && strcmp(status, "expired")))
                return fail(EX_USAGE, "usage: outbox list [--status queued|sent|failed|expired]");
        st = db_stmt(x->db, SQL_OUTBOX);
        db_bind_text(st, 1, status);
        if (x->json)
                putchar('[');
        else
                printf("%-6s %-8s %-5s %-19s %-8s %-3s %-22s %s\n", "ID", "STATUS", "REG", "KIND",
                       "OCCASION", "TRY", "SENT / NEXT TRY", "LAST ERROR");
        while ((r = db_step(st)) == 1) {
                int64_t reg = sqlite3_column_int64(st, 1), sent = sqlite3_column_int64(st, 8),
                        next = sqlite3_column_int64(st, 9);
                const char *kind = (const char *) sqlite3_column_text(st, 3);
                const char *rcpt = (const char *) sqlite3_column_text(st, 4);
                const char *state = (const char *) sqlite3_column_text(st, 5);
                const char *err = (const char *) sqlite3_column_text(st, 10);
                const char *occ = (const char *) sqlite3_column_text(st, 12);
                char a[64], rs[24] = "-";

                if (x->json) {
                        printf("%s{\"id\":%lld,\"registration_id\":", n ? "," : "", (long long) sqlite3_column_int64(st, 0));
                        if (reg)
                                printf("%lld", (long long) reg);
                        else
                                fputs("null", stdout);
                        printf(",\"session_id\":%lld,\"kind\":\"%s\",\"occasion\":", (long long) sqlite3_column_int64(st, 2), kind);
                        json_str((const char *) sqlite3_column_text(st, 12));
                        fputs(",\"recipient\":", stdout);
                        json_str(*rcpt ? rcpt : NULL);
                        printf(",\"status\":\"%s\",\"attempts\":%d,\"created_at\":", state, sqlite3_column_int(st, 6));
                        json_time(sqlite3_column_int64(st, 7));
                        fputs(",\"sent_at\":", stdout);
                        json_time(sent);
                        fputs(",\"next_attempt_at\":", stdout);
                        json_time(strcmp(state, "queued") ? 0 : next);
                        fputs(",\"last_error\":", stdout);
                        json_str(err);
                        fputs(",\"message_id\":", stdout);
                        json_str((const char *) sqlite3_column_text(st, 11));
                        putchar('}');
                } else
                {
                        if (reg)
                                snprintf(rs, sizeof(rs), "%lld", (long long) reg);
                        printf("%-6lld %-8s %-5s %-19s %-8s %-3d %-22s %s\n", (long long) sqlite3_column_int64(st, 0),
                               state, rs, kind, *occ && reg ? occ : "-", sqlite3_column_int(st, 6),
                               sent ? local_time(sent, a, sizeof(a)) : !strcmp(state, "queued") ? local_time(next, a, sizeof(a)) : "-",
                               err ? err : "");
                }
                n++;
        }
        sqlite3_reset(st);
        if (x->json)
                puts("]");
        return r < 0 ? db_fail(x, r) : EX_OK;
}

static const char SQL_RETRY_ONE[] =
        "UPDATE outbox SET status = 'queued', attempts = 0, first_attempt_at = NULL, body = NULL,"
        " next_attempt_at = ?2, last_error = NULL WHERE id = ?1 AND status = 'failed'";
static const char SQL_RETRY_ALL[] =
        "UPDATE outbox SET status = 'queued', attempts = 0, first_attempt_at = NULL, body = NULL,"
        " next_attempt_at = ?2, last_error = NULL WHERE status = 'failed' AND ?1 = ?1";

static int cmd_outbox_retry(ctl_t *x, int argc, char **argv)
{
        bool all = argc == 2 && !strcmp(argv[1], "--all-failed");
        sqlite3_stmt *st;
        int64_t id = 0;
        int r;

        if (argc != 2 || (!all && !parse_id(argv[1], &id)))
                return fail(EX_USAGE, "usage: outbox retry ID | outbox retry --all-failed");
        st = db_stmt(x->db, all ? SQL_RETRY_ALL : SQL_RETRY_ONE);
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, x->now);
        r = db_step_done(st);
        if (r < 0)
                return db_fail(x, r);
        r = sqlite3_changes(db_handle(x->db));
        if (!all && r == 0)
                return fail(EX_DATAERR, "outbox row %lld is not failed (or does not exist)", (long long) id);
        if (!x->json)
                printf("%d email%s queued again\n", r, r == 1 ? "" : "s");
        return EX_OK;
}

/* ---- preview, upcoming, status ---------------------------------------------------------------- */

static const char SQL_FIND_MID[] =
        "SELECT message_id FROM outbox WHERE ifnull(registration_id, 0) = ?1 AND kind = ?2"
        " AND session_id = ?3 ORDER BY id DESC LIMIT 1";

static int cmd_preview(ctl_t *x, int argc, char **argv)
{
        templates_t *t = NULL;
        registration_t g;
        session_t s = { 0 };
        const char *trainer = NULL;
        char *out = NULL, *err = NULL, *mid = NULL, fake[128], occ[32] = "";
        size_t size = 0;
        int64_t id;
        sqlite3_stmt *st;
        bool roster;
        int r;

        if (argc != 2 + 1 || kind_from_string(argv[1]) < 0 || !parse_id(argv[2], &id))
                return fail(EX_USAGE, "usage: preview KIND REGISTRATION_ID (KIND: confirmation, waitlisted, "
                                      "promoted, late, not_placed, elearning_reminder, joining_link, roster, "
                                      "follow_up, session_cancelled, session_changed)");
        r = db_registration_get(x->db, id, &g);
        if (r <= 0)
                return r < 0 ? db_fail(x, r) : fail(EX_DATAERR, "no registration %lld", (long long) id);
        r = templates_load(x->cfg->templates, x->cfg, &t, &err);
        if (r < 0) {
                r = fail(EX_CONFIG, "%s", err ? err : "cannot load the templates");
                goto out;
        }
        roster = !strcmp(argv[1], "roster");
        st = db_stmt(x->db, SQL_FIND_MID);
        sqlite3_bind_int64(st, 1, roster ? 0 : id);
        sqlite3_bind_text(st, 2, argv[1], -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, g.session_id);
        if (db_step(st) == 1)
                mid = db_col_text(st, 0);
        sqlite3_reset(st);
        snprintf(fake, sizeof(fake), "<preview.%lld.%s@meccd.invalid>", (long long) id, argv[1]);
        if (!strcmp(argv[1], "elearning_reminder") && x->cfg->n_reminders_elearning)
                plan_duration_name(config_last_reminder(x->cfg), occ, sizeof(occ));
        if (roster && db_session_get(x->db, g.session_id, &s) > 0 && s.trainer_email && *s.trainer_email)
                trainer = s.trainer_email;
        {
                const char *to = roster ? (trainer ? trainer : x->cfg->n_roster_to ? x->cfg->roster_to[0] : g.email)
                                        : g.email;
                mail_key_t key = { kind_from_string(argv[1]), occ, g.session_id, roster ? 0 : id, to, mid ? mid : fake };

                r = render_mail(x->db, x->cfg, t, &key, x->now, &out, &size, &err);
        }
        if (r < 0) {
                r = fail(r == -EINVAL ? EX_DATAERR : EX_UNAVAILABLE, "cannot render: %s",
                         err ? err : r == -EINVAL ? "the address is not valid (erased?)" : strerror(-r));
                goto out;
        }
        fwrite(out, 1, size, stdout);
        r = EX_OK;
out:
        free(out);
        free(err);
        free(mid);
        session_clear(&s);
        templates_free(t);
        registration_clear(&g);
        return r;
}

static const char SQL_ALL_SESSION_TIMES[] =
        "SELECT starts_at, ends_at, ifnull(closes_at, 0) FROM sessions WHERE erased_at IS NULL";
static const char SQL_NEXT_RETRY[] =
        "SELECT min(next_attempt_at) FROM outbox WHERE status = 'queued' AND next_attempt_at > ?1";
static const char SQL_DUE_ROWS[] =
        "SELECT id, kind, ifnull(registration_id, 0), session_id, recipient FROM outbox"
        " WHERE status = 'queued' AND next_attempt_at <= ?1 ORDER BY next_attempt_at, id";
static const char SQL_RETIRE[] = "UPDATE outbox SET status = ?2 WHERE id = ?1";

/* The next moment a scan has something new to do, or a deferred email is due again. */
static int64_t next_moment(ctl_t *x, db_t *db, int64_t after)
{
        sqlite3_stmt *st = db_stmt(db, SQL_ALL_SESSION_TIMES);
        int64_t best = INT64_MAX;

        while (db_step(st) == 1) {
                int64_t t = plan_next_moment(x->cfg, sqlite3_column_int64(st, 0),
                                             sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2), after);
                if (t < best)
                        best = t;
        }
        sqlite3_reset(st);
        st = db_stmt(db, SQL_NEXT_RETRY);
        sqlite3_bind_int64(st, 1, after);
        if (db_step(st) == 1 && sqlite3_column_type(st, 0) != SQLITE_NULL &&
            sqlite3_column_int64(st, 0) < best)
                best = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        return best;
}

/* Whether delivery at `at` would drop the email as no longer true. These are the questions
 * outbox.c asks before sending; they matter here for emails queued before the dry run
 * (a relay outage), since what the simulated scans queue is true when queued. */
typedef struct {
        int64_t id, reg, sid;
        kind_t kind;
        bool expired;
} due_t;

static int collect_due(ctl_t *x, db_t *db, int64_t t, due_t **ret, size_t *ret_n)
{
        sqlite3_stmt *st = db_stmt(db, SQL_DUE_ROWS);
        due_t *rows = NULL;
        size_t n = 0;
        int r;

        sqlite3_bind_int64(st, 1, t);
        while ((r = db_step(st)) == 1) {
                due_t *p = realloc(rows, (n + 1) * sizeof(*rows));

                if (!p) {
                        r = -ENOMEM;
                        break;
                }
                rows = p;
                rows[n] = (due_t) { sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 2),
                                    sqlite3_column_int64(st, 3),
                                    kind_from_string((const char *) sqlite3_column_text(st, 1)), false };
                rows[n].expired = outbox_stale(db, x->cfg, rows[n].sid, rows[n].reg, rows[n].kind,
                                               (const char *) sqlite3_column_text(st, 4), t) != NULL;
                n++;
        }
        sqlite3_reset(st);
        *ret = rows;
        *ret_n = n;
        return r;
}

/* Print what would be sent at t, and retire it (sent or expired) in the copy. */
static int emit(ctl_t *x, db_t *db, int64_t t, int *n)
{
        due_t *rows = NULL;
        size_t m = 0;
        int r;

        r = collect_due(x, db, t, &rows, &m);
        for (size_t i = 0; i < m && r >= 0; i++) {
                sqlite3_stmt *st = db_stmt(db, SQL_RETIRE);
                char a[64], rs[24] = "-";

                sqlite3_bind_int64(st, 1, rows[i].id);
                sqlite3_bind_text(st, 2, rows[i].expired ? "expired" : "sent", -1, SQLITE_STATIC);
                r = db_step_done(st);
                if (r < 0 || rows[i].expired)
                        continue;
                if (rows[i].reg)
                        snprintf(rs, sizeof(rs), "%lld", (long long) rows[i].reg);
                if (x->json) {
                        printf("%s{\"at\":", *n ? "," : "");
                        json_time(t);
                        printf(",\"kind\":\"%s\",\"registration_id\":%s,\"session_id\":%lld}",
                               kind_to_string(rows[i].kind), rows[i].reg ? rs : "null",
                               (long long) rows[i].sid);
                } else
                        printf("%-22s %-19s %-6s %lld\n", local_time(t, a, sizeof(a)),
                               kind_to_string(rows[i].kind), rs, (long long) rows[i].sid);
                (*n)++;
        }
        free(rows);
        return r < 0 ? r : 0;
}

static int cmd_upcoming(ctl_t *x, int argc, char **argv)
{
        static const struct option opts[] = { { "until", required_argument, NULL, 'u' }, {} };
        int64_t until = x->now + 14 * 86400, t = x->now;
        db_t *copy = NULL;
        int c, r, n = 0;

        optind = 0; /* 0: glibc starts a fresh scan */
        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0)
                if (c != 'u' || clock_parse_time(optarg, &until) < 0)
                        return fail(EX_USAGE, "usage: upcoming [--until TIME]");
        if (optind != argc)
                return fail(EX_USAGE, "usage: upcoming [--until TIME]");
        r = db_open_copy(x->db, &copy);
        if (r < 0)
                return db_fail(x, r);
        if (x->json)
                putchar('[');
        else
                printf("%-22s %-19s %-6s %s\n", "AT", "KIND", "REG", "SESSION");
        journal_quiet(true); /* the simulated scans are not events */
        while (t <= until) {
                r = scan_run(copy, x->cfg, t, NULL);
                if (r >= 0)
                        r = emit(x, copy, t, &n);
                if (r < 0)
                        break;
                t = next_moment(x, copy, t);
        }
        if (x->json)
                puts("]");
        else if (!n)
                puts("(nothing due)");
        db_close(copy);
        return r < 0 ? fail(EX_UNAVAILABLE, "dry run failed") : EX_OK;
}

static const char SQL_OPEN_SEATS[] =
        "SELECT count(*), ifnull(sum(max(capacity - (SELECT count(*) FROM registrations r"
        " WHERE r.session_id = s.id AND r.status = 'booked'), 0)), 0) FROM sessions s WHERE status = 'open'";
static const char SQL_NEW_COUNT[] = "SELECT count(*) FROM registrations WHERE status = 'new'";
/* Emails that should have gone by now: the relay is down or refusing us for a while. */
static const char SQL_OVERDUE[] =
        "SELECT count(*) FROM outbox WHERE status = 'queued' AND created_at <= ?1";

#define OVERDUE_AFTER 3600

typedef struct {
        long queued, failed, overdue, open, seats, fresh;
        int64_t last_scan;
        bool scanning, healthy;
} health_t;

static long count_query(db_t *db, const char *sql, int64_t arg)
{
        sqlite3_stmt *st = db_stmt(db, sql);
        long v = 0;

        if (!st)
                return 0;
        if (sqlite3_bind_parameter_count(st) >= 1)
                sqlite3_bind_int64(st, 1, arg);
        if (db_step(st) == 1)
                v = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        return v;
}

static int get_health(ctl_t *x, health_t *h)
{
        sqlite3_stmt *st;
        char *last = db_meta_get(x->db, "last_scan_at");
        int r;

        h->last_scan = last ? strtoll(last, NULL, 10) : 0;
        free(last);
        r = outbox_counts(x->db, &h->queued, &h->failed);
        if (r < 0)
                return r;
        st = db_stmt(x->db, SQL_OPEN_SEATS);
        if (st && db_step(st) == 1) {
                h->open = sqlite3_column_int64(st, 0);
                h->seats = sqlite3_column_int64(st, 1);
        }
        if (st)
                sqlite3_reset(st);
        h->fresh = count_query(x->db, SQL_NEW_COUNT, 0);
        h->overdue = count_query(x->db, SQL_OVERDUE, x->now - OVERDUE_AFTER);
        h->scanning = h->last_scan && x->now - h->last_scan < 3 * x->cfg->scan_interval + 60;
        h->healthy = h->scanning && h->failed == 0 && h->overdue == 0;
        return 0;
}

/* "is it healthy?" in one line, with what to look at when it is not */
static void print_verdict(ctl_t *x, const health_t *h)
{
        const char *sep = "";

        if (h->healthy) {
                puts("health:            OK");
                return;
        }
        fputs("health:            needs attention: ", stdout);
        if (!h->scanning) {
                if (h->last_scan)
                        printf("no scan for %lld minutes (is meccd running?)",
                               (long long) ((x->now - h->last_scan) / 60));
                else
                        fputs("meccd has never scanned this database (is it running?)", stdout);
                sep = "; ";
        }
        if (h->overdue) {
                printf("%s%ld email%s waiting for over an hour (is the mail relay up?)", sep,
                       h->overdue, h->overdue == 1 ? "" : "s");
                sep = "; ";
        }
        if (h->failed)
                printf("%s%ld email%s failed", sep, h->failed, h->failed == 1 ? "" : "s");
        putchar('\n');
}

static int cmd_status(ctl_t *x, int argc, char **argv)
{
        health_t h = { 0 };
        char a[64];
        int r;

        (void) argv;
        if (argc != 1)
                return fail(EX_USAGE, "status takes no arguments");
        r = get_health(x, &h);
        if (r < 0)
                return db_fail(x, r);
        if (x->json) {
                printf("{\"healthy\":%s,\"open_sessions\":%ld,\"seats_left\":%ld,"
                       "\"unprocessed_registrations\":%ld,\"queued\":%ld,\"overdue\":%ld,"
                       "\"failed\":%ld,\"last_scan_at\":", h.healthy ? "true" : "false", h.open,
                       h.seats, h.fresh, h.queued, h.overdue, h.failed);
                json_time(h.last_scan);
                puts("}");
                return EX_OK;
        }
        print_verdict(x, &h);
        printf("open sessions:     %ld (%ld place%s left)\n", h.open, h.seats, h.seats == 1 ? "" : "s");
        printf("new registrations: %ld waiting for the next scan\n", h.fresh);
        printf("outbox:            %ld queued, %ld failed%s\n", h.queued, h.failed,
               h.failed ? " (see: meccctl outbox list --status failed)" : "");
        printf("last scan:         %s\n", h.last_scan ? local_time(h.last_scan, a, sizeof(a)) : "never");
        putchar('\n');
        return cmd_session_list(x, 1, argv);
}

static int cmd_init(ctl_t *x, int argc, char **argv)
{
        (void) argv;
        if (argc != 1)
                return fail(EX_USAGE, "init takes no arguments");
        if (!x->json)
                printf("database %s is ready\n", x->cfg->database);
        return EX_OK;
}

/* ---- dispatch -------------------------------------------------------------------------------- */

static const struct {
        const char *group, *name;
        cmd_fn fn;
} commands[] = {
        { "init", NULL, cmd_init },
        { "session", "add", cmd_session_add },
        { "session", "list", cmd_session_list },
        { "session", "show", cmd_session_show },
        { "session", "cancel", cmd_session_cancel },
        { "session", "close", cmd_session_close },
        { "session", "edit", cmd_session_edit },
        { "register", NULL, cmd_register },
        { "cancel", NULL, cmd_cancel },
        { "elearning-done", NULL, cmd_elearning_done },
        { "import", NULL, cmd_import },
        { "registrations", "list", cmd_registrations_list },
        { "outbox", "list", cmd_outbox_list },
        { "outbox", "retry", cmd_outbox_retry },
        { "preview", NULL, cmd_preview },
        { "upcoming", NULL, cmd_upcoming },
        { "status", NULL, cmd_status },
};

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: meccctl [-c FILE] [--now TIME] [--json] COMMAND\n\n"
                "  init\n"
                "  session add --title T --start TIME --end TIME --capacity N [--join-url U]\n"
                "              [--elearning-url U] [--trainer EMAIL] [--closes TIME]\n"
                "  session list | session show ID | session cancel ID | session close ID\n"
                "  session edit ID [--title T] [--start TIME] [--end TIME] [--capacity N]\n"
                "              [--join-url U] [--elearning-url U] [--trainer EMAIL] [--closes TIME]\n"
                "  register SESSION_ID --name NAME --email EMAIL\n"
                "  cancel REGISTRATION_ID\n"
                "  elearning-done REGISTRATION_ID|EMAIL\n"
                "  import registrations FILE.csv   (header: session_id,name,email[,registered_at])\n"
                "  import elearning FILE.csv       (header: email,completed_at)\n"
                "  registrations list [--session ID]\n"
                "  outbox list [--status S] | outbox retry ID|--all-failed\n"
                "  preview KIND REGISTRATION_ID\n"
                "  upcoming [--until TIME]\n"
                "  status\n\n"
                "TIME is local time in the configured zone: \"YYYY-MM-DD HH:MM\" (or with T, Z, +01:00).\n"
                "Configuration: %s unless -c is given.\n", DEFAULT_CONFIG);
}

static cmd_fn find(int argc, char **argv, int *shift)
{
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
                if (strcmp(argv[0], commands[i].group))
                        continue;
                if (!commands[i].name) {
                        *shift = 0;
                        return commands[i].fn;
                }
                if (argc > 1 && !strcmp(argv[1], commands[i].name)) {
                        *shift = 1;
                        return commands[i].fn;
                }
        }
        return NULL;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' },
                { "now", required_argument, NULL, 'n' },
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'v' },
                {}
        };
        ctl_t x = { 0 };
        const char *path = DEFAULT_CONFIG, *now_arg = NULL;
        char *err = NULL;
        cmd_fn fn;
        int c, r, shift = 0;

        while ((c = getopt_long(argc, argv, "+c:h", opts, NULL)) >= 0) {
                switch (c) {
                case 'c': path = optarg; break;
                case 'n': now_arg = optarg; break;
                case 'j': x.json = true; break;
                case 'h': usage(stdout); return EX_OK;
                case 'v': printf("meccctl %s\n", VERSION); return EX_OK;
                default: usage(stderr); return EX_USAGE;
                }
        }
        if (optind >= argc) {
                usage(stderr);
                return EX_USAGE;
        }
        fn = find(argc - optind, argv + optind, &shift);
        if (!fn) {
                fprintf(stderr, "meccctl: unknown command \"%s\"\n", argv[optind]);
                usage(stderr);
                return EX_USAGE;
        }
        journal_init("meccctl");
        r = config_load(path, &x.cfg, &err);
        if (r < 0) {
                r = fail(EX_CONFIG, "%s", err ? err : "cannot load the configuration");
                goto out;
        }
        x.now = clock_now();
        if (now_arg && clock_parse_time(now_arg, &x.now) < 0) {
                r = fail(EX_USAGE, "--now: \"%s\" is not a time like \"2026-09-22 10:30\"", now_arg);
                goto out;
        }
        clock_set_now(x.now);
        r = db_open(x.cfg->database, &x.db, &err);
        if (r < 0) {
                r = fail(r == -EBUSY ? EX_TEMPFAIL : EX_UNAVAILABLE, "%s", err ? err : "cannot open the database");
                goto out;
        }
        r = fn(&x, argc - optind - shift, argv + optind + shift);
out:
        free(err);
        db_close(x.db);
        config_free(x.cfg);
        return r;
}
