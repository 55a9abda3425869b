/* admin.c - the admin's actions. Each checks its rule and writes in one transaction, so
 * what was checked is still true when it is written (the website writes beside us). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "addr.h"
#include "admin.h"
#include "attendance.h"
#include "clock.h"
#include "csv.h"
#include "outbox.h"
#include "plan.h"
#include "render.h"
#include "runas.h"
#include "scan.h"
#include "text.h"

#define CAPACITY_MAX 100000
#define IMPORT_MAX_MIB 64

int admin_say(int result, char **ret_why, const char *fmt, ...)
{
        va_list ap;

        if (!ret_why)
                return result;
        free(*ret_why);
        va_start(ap, fmt);
        if (vasprintf(ret_why, fmt, ap) < 0)
                *ret_why = NULL;
        va_end(ap);
        return result;
}

/* End an action's transaction: commit what r says is done, roll back anything else. */
static int finish(const admin_t *a, int r)
{
        if (r == 0)
                r = db_commit(a->db);
        if (r != 0)
                db_rollback(a->db);
        return r;
}

static bool same_text(const char *x, const char *y)
{
        return strcmp(x ? x : "", y ? y : "") == 0; /* NULL and "" are both "none" */
}

int admin_open(const config_t *c, db_t **ret, char **ret_err)
{
        /* root creating the service's database (`meccctl init` before the first start)
         * makes it the service user's, or meccd could not write it */
        const char *user = runas_service_user_of(c->database);
        bool fresh = user && access(c->database, F_OK) < 0;
        int r;

        r = db_open(c->database, ret, ret_err);
        if (r >= 0 && fresh && (r = runas_give(user, c->database, ret_err)) < 0)
                *ret = db_close(*ret);
        return r;
}

/* ---- sessions ----------------------------------------------------------------------------- */

/* Both take the fields an admin sets as ?2 to ?9 (bind_session). */
static const char SQL_SESSION_ADD[] =
        "INSERT INTO sessions(status, title, starts_at, ends_at, capacity, join_url, elearning_url,"
        " trainer_email, closes_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
/* Every column an admin sets is written; a change of time or link also raises the
 * calendar SEQUENCE and marks the emails queued so far as the ones that need a correction. */
static const char SQL_SESSION_EDIT[] =
        "UPDATE sessions SET title = ?2, starts_at = ?3, ends_at = ?4, capacity = ?5, join_url = ?6,"
        " elearning_url = ?7, trainer_email = ?8, closes_at = ?9,"
        " seq = seq + ?10, change_note = CASE WHEN ?10 THEN ?11 ELSE change_note END,"
        " changed_outbox = CASE WHEN ?10 THEN (SELECT ifnull(max(id), 0) FROM outbox)"
        " ELSE changed_outbox END WHERE id = ?1";
static const char SQL_SESSION_STATUS[] = "UPDATE sessions SET status = ?2 WHERE id = ?1";
static const char SQL_SESSION_CLOSES[] = "UPDATE sessions SET closes_at = ?2 WHERE id = ?1";
static const char SQL_SESSION_COURSE[] = "UPDATE sessions SET course = ?2 WHERE id = ?1";

/* A course given must be one the configuration has (SPEC 11). */
static int check_course(const admin_t *a, const session_fields_t *f, char **ret_why)
{
        if ((f->given & SF_COURSE) && !config_settings(a->cfg, f->course))
                return admin_say(ADMIN_REFUSED, ret_why, "course \"%s\" is not configured in %s", f->course,
                                 a->cfg->path ? a->cfg->path : "the configuration");
        return 0;
}

static int set_course(const admin_t *a, int64_t id, const session_fields_t *f)
{
        sqlite3_stmt *st;

        if (!(f->given & SF_COURSE))
                return 0;
        st = db_stmt(a->db, SQL_SESSION_COURSE);
        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, id);
        db_bind_text(st, 2, f->course);
        return db_step_done(st);
}

/* Each given field on its own: a single line, a link, an address, a number of places. */
static int check_fields(const session_fields_t *f, char **ret_why)
{
        if ((f->given & SF_TITLE) && !text_is_line(f->title))
                return admin_say(ADMIN_REFUSED, ret_why, "the title must be a non-empty single line");
        if ((f->given & SF_CAPACITY) && (f->capacity < 0 || f->capacity > CAPACITY_MAX))
                return admin_say(ADMIN_REFUSED, ret_why,
                                 "the capacity must be a number of places from 0 to %d, not %ld", CAPACITY_MAX,
                                 f->capacity);
        if ((f->given & SF_JOIN_URL) && !text_is_url(f->join_url))
                return admin_say(ADMIN_REFUSED, ret_why, "the joining link \"%s\" is not an http(s) URL",
                                 f->join_url ? f->join_url : "");
        if ((f->given & SF_ELEARNING_URL) && !text_is_url(f->elearning_url))
                return admin_say(ADMIN_REFUSED, ret_why, "the e-learning link \"%s\" is not an http(s) URL",
                                 f->elearning_url ? f->elearning_url : "");
        if ((f->given & SF_TRAINER) && !addr_valid(f->trainer_email))
                return admin_say(ADMIN_REFUSED, ret_why, "the trainer's address \"%s\" is not a valid email address",
                                 f->trainer_email ? f->trainer_email : "");
        return 0;
}

/* s with the given fields of f written over it. The strings stay f's and s's. */
static session_t apply_fields(const session_t *s, const session_fields_t *f)
{
        session_t n = *s;

        if (f->given & SF_TITLE)
                n.title = (char *) f->title;
        if (f->given & SF_START)
                n.starts_at = f->starts_at;
        if (f->given & SF_END)
                n.ends_at = f->ends_at;
        if (f->given & SF_CAPACITY)
                n.capacity = f->capacity;
        if (f->given & SF_JOIN_URL)
                n.join_url = (char *) f->join_url;
        if (f->given & SF_ELEARNING_URL)
                n.elearning_url = (char *) f->elearning_url;
        if (f->given & SF_TRAINER)
                n.trainer_email = (char *) f->trainer_email;
        if (f->given & SF_CLOSES)
                n.closes_at = f->closes_at;
        if (f->given & SF_COURSE)
                n.course = (char *) f->course;
        return n;
}

/* Why a new session at these times is most likely a mistake. */
static void why_too_soon(const admin_t *a, const session_t *s, char **ret_why)
{
        char start[64], cutoff[64];

        clock_format_local(s->starts_at, start, sizeof(start));
        if (s->starts_at <= a->now) {
                (void) admin_say(0, ret_why, "the session would start %s, which is in the past", start);
                return;
        }
        clock_format_local(plan_cutoff(a->cfg, s->starts_at, s->closes_at), cutoff, sizeof(cutoff));
        (void) admin_say(0, ret_why, "bookings for a session starting %s close %s, which is already past:"
                         " they would be closed at once and the roster sent at the next scan", start, cutoff);
}

/* The fields an admin sets, as ?2 to ?9. */
static void bind_session(sqlite3_stmt *st, const session_t *s)
{
        sqlite3_bind_text(st, 2, s->title, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 3, s->starts_at);
        sqlite3_bind_int64(st, 4, s->ends_at);
        sqlite3_bind_int64(st, 5, s->capacity);
        db_bind_text(st, 6, s->join_url);
        db_bind_text(st, 7, s->elearning_url);
        db_bind_text(st, 8, s->trainer_email);
        db_bind_time(st, 9, s->closes_at);
}

int admin_session_add(const admin_t *a, const session_fields_t *f, bool force, int64_t *ret_id,
                      char **ret_why)
{
        session_t s = apply_fields(&(session_t) { .status = SESSION_OPEN }, f);
        const config_t *sc;
        sqlite3_stmt *st;
        int r;

        r = check_course(a, f, ret_why);
        if (r)
                return r;
        sc = config_settings(a->cfg, s.course);
        /* a course's sessions take its title unless given another */
        if (!(f->given & SF_TITLE) && sc->course_title)
                s.title = sc->course_title;
        if ((f->given & (SF_REQUIRED & ~SF_TITLE)) != (SF_REQUIRED & ~SF_TITLE) || !s.title)
                return admin_say(ADMIN_REFUSED, ret_why, "a session needs a title, a start, an end and a capacity");
        r = check_fields(f, ret_why);
        if (r)
                return r;
        if (s.ends_at <= s.starts_at)
                return admin_say(ADMIN_REFUSED, ret_why, "the end must be after the start");
        if (!plan_bookable(sc, &s, a->now)) {
                why_too_soon(a, &s, ret_why);
                if (!force)
                        return ADMIN_NEEDS_FORCE;
        }
        st = db_stmt(a->db, SQL_SESSION_ADD);
        if (!st)
                return -EIO;
        sqlite3_bind_text(st, 1, session_status_to_string(SESSION_OPEN), -1, SQLITE_STATIC);
        bind_session(st, &s);
        r = db_step_done(st);
        if (r < 0)
                return r;
        *ret_id = sqlite3_last_insert_rowid(db_handle(a->db));
        return set_course(a, *ret_id, f);
}

/* What changed, in words for the session_changed email. */
static char *change_note(const session_t *old, const session_t *n)
{
        return render_change_note(old->starts_at, old->ends_at, old->join_url, n->starts_at,
                                  n->ends_at, n->join_url);
}

/* The session, read inside the action's transaction; ADMIN_NOT_FOUND when there is none. */
static int get_session(const admin_t *a, int64_t id, session_t *ret, char **ret_why)
{
        int r = db_session_get_plain(a->db, id, ret);

        if (r == 0)
                return admin_say(ADMIN_NOT_FOUND, ret_why, "no session %lld", (long long) id);
        return r < 0 ? r : 0;
}

static int edit(const admin_t *a, const session_t *s, const session_fields_t *f, bool *ret_told,
                char **ret_why)
{
        session_t n = apply_fields(s, f);
        sqlite3_stmt *st;
        char *note = NULL;
        bool changed;
        int r;

        if (s->status == SESSION_CANCELLED || s->status == SESSION_DONE)
                return admin_say(ADMIN_REFUSED, ret_why, "session %lld is %s and can no longer be edited",
                                 (long long) s->id, session_status_to_string(s->status));
        if (n.ends_at <= n.starts_at)
                return admin_say(ADMIN_REFUSED, ret_why, "the end must be after the start");
        changed = n.starts_at != s->starts_at || n.ends_at != s->ends_at ||
                  !same_text(n.join_url, s->join_url);
        if (changed && !(note = change_note(s, &n)))
                return -ENOMEM;
        st = db_stmt(a->db, SQL_SESSION_EDIT);
        if (!st) {
                free(note);
                return -EIO;
        }
        sqlite3_bind_int64(st, 1, s->id);
        bind_session(st, &n);
        sqlite3_bind_int(st, 10, changed);
        db_bind_text(st, 11, note);
        r = db_step_done(st);
        free(note);
        if (r == 0 && ret_told)
                *ret_told = changed;
        return r;
}

int admin_session_edit(const admin_t *a, int64_t id, const session_fields_t *f, bool *ret_told,
                       char **ret_why)
{
        session_t s = { 0 };
        int r;

        r = check_fields(f, ret_why);
        if (!r)
                r = check_course(a, f, ret_why);
        if (r)
                return r;
        r = db_begin(a->db);
        if (r < 0)
                return r;
        r = get_session(a, id, &s, ret_why);
        if (r == 0)
                r = edit(a, &s, f, ret_told, ret_why);
        if (r == 0)
                r = set_course(a, id, f);
        session_clear(&s);
        return finish(a, r);
}

/* An action on session id in one transaction: read it, then step (0 or why not). */
static int on_session(const admin_t *a, int64_t id,
                      int (*step)(const admin_t *, const session_t *, char **), char **ret_why)
{
        session_t s = { 0 };
        int r;

        r = db_begin(a->db);
        if (r < 0)
                return r;
        r = get_session(a, id, &s, ret_why);
        if (r == 0)
                r = step(a, &s, ret_why);
        session_clear(&s);
        return finish(a, r);
}

static int cancel_session(const admin_t *a, const session_t *s, char **ret_why)
{
        sqlite3_stmt *st;

        if (s->status == SESSION_CANCELLED || s->status == SESSION_DONE)
                return admin_say(ADMIN_REFUSED, ret_why, "session %lld is %s%s", (long long) s->id,
                                 s->status == SESSION_CANCELLED ? "already " : "",
                                 session_status_to_string(s->status));
        st = db_stmt(a->db, SQL_SESSION_STATUS);
        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, s->id);
        sqlite3_bind_text(st, 2, session_status_to_string(SESSION_CANCELLED), -1, SQLITE_STATIC);
        return db_step_done(st);
}

int admin_session_cancel(const admin_t *a, int64_t id, char **ret_why)
{
        return on_session(a, id, cancel_session, ret_why);
}

static int close_session(const admin_t *a, const session_t *s, char **ret_why)
{
        sqlite3_stmt *st;
        int r;

        if (s->status != SESSION_OPEN)
                return admin_say(ADMIN_REFUSED, ret_why, "session %lld is %s, not open", (long long) s->id,
                                 session_status_to_string(s->status));
        st = db_stmt(a->db, SQL_SESSION_CLOSES);
        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, s->id);
        sqlite3_bind_int64(st, 2, a->now);
        r = db_step_done(st);
        /* the close step itself: the waiting list is told, the roster queued */
        if (r == 0)
                r = scan_close(a->db, a->cfg, a->now, &(scan_stats_t) { 0 });
        return r;
}

int admin_session_close(const admin_t *a, int64_t id, char **ret_why)
{
        return on_session(a, id, close_session, ret_why);
}

/* ---- registrations ------------------------------------------------------------------------ */

static const char SQL_REGISTER[] =
        "INSERT INTO registrations(session_id, name, email, registered_at, status)"
        " VALUES (?1, ?2, ?3, ?4, ?5)";
static const char SQL_REG_STATUS[] = "UPDATE registrations SET status = ?2 WHERE id = ?1";
static const char SQL_EL_DONE[] =
        "UPDATE registrations SET elearning_done_at = ?2 WHERE id = ?1 AND elearning_done_at IS NULL";
static const char SQL_REGS_BY_EMAIL[] =
        "SELECT id, status, ifnull(elearning_done_at, 0) FROM registrations WHERE email = ?1 COLLATE NOCASE";

bool admin_may_cancel(reg_status_t s)
{
        return s == REG_NEW || reg_status_is_placed(s);
}

/* A new registration for a session known to exist. */
static int insert_registration(const admin_t *a, int64_t sid, const char *name, const char *email,
                               int64_t at, int64_t *ret_id)
{
        sqlite3_stmt *st = db_stmt(a->db, SQL_REGISTER);
        int r;

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, sid);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, email, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 4, at);
        sqlite3_bind_text(st, 5, reg_status_to_string(REG_NEW), -1, SQLITE_STATIC);
        r = db_step_done(st);
        if (r == 0 && ret_id)
                *ret_id = sqlite3_last_insert_rowid(db_handle(a->db));
        return r;
}

static int session_exists(const admin_t *a, int64_t sid)
{
        session_t s;
        int r = db_session_get_plain(a->db, sid, &s);

        if (r > 0)
                session_clear(&s);
        return r;
}

int admin_register(const admin_t *a, int64_t session_id, const char *name, const char *email,
                   int64_t *ret_id, char **ret_why)
{
        int r;

        if (!text_is_line(name))
                return admin_say(ADMIN_REFUSED, ret_why, "the name must be a non-empty single line");
        if (!addr_valid(email))
                return admin_say(ADMIN_REFUSED, ret_why, "\"%s\" is not a valid email address", email ? email : "");
        r = session_exists(a, session_id);
        if (r == 0)
                return admin_say(ADMIN_NOT_FOUND, ret_why, "no session %lld", (long long) session_id);
        if (r < 0)
                return r;
        return insert_registration(a, session_id, name, email, a->now, ret_id);
}

int admin_cancel(const admin_t *a, int64_t registration_id, char **ret_why)
{
        registration_t g = { 0 };
        sqlite3_stmt *st;
        int r;

        r = db_begin(a->db);
        if (r < 0)
                return r;
        r = db_registration_get(a->db, registration_id, &g);
        if (r == 0)
                r = admin_say(ADMIN_NOT_FOUND, ret_why, "no registration %lld", (long long) registration_id);
        else if (r > 0 && !admin_may_cancel(g.status))
                r = admin_say(ADMIN_REFUSED, ret_why, "registration %lld is %s; nothing to cancel",
                              (long long) registration_id, reg_status_to_string(g.status));
        else if (r > 0 && !(st = db_stmt(a->db, SQL_REG_STATUS)))
                r = -EIO;
        else if (r > 0) {
                sqlite3_bind_int64(st, 1, registration_id);
                sqlite3_bind_text(st, 2, reg_status_to_string(REG_CANCELLED), -1, SQLITE_STATIC);
                r = db_step_done(st);
        }
        registration_clear(&g);
        return finish(a, r);
}

/* Record a completion once: a second export of the same course keeps the first date. */
static int mark_done(const admin_t *a, int64_t id, int64_t at)
{
        sqlite3_stmt *st = db_stmt(a->db, SQL_EL_DONE);

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, at);
        return db_step_done(st);
}

/* Mark the registrations of an address still to come; returns how many registrations
 * have that address at all (0: nobody registered with it), or a negative errno. */
static int mark_done_email(const admin_t *a, const char *email, int64_t at)
{
        sqlite3_stmt *st = db_stmt(a->db, SQL_REGS_BY_EMAIL);
        int64_t *ids = NULL;
        size_t n = 0;
        int r, found = 0;

        if (!st)
                return -EIO;
        sqlite3_bind_text(st, 1, email, -1, SQLITE_TRANSIENT);
        while ((r = db_step(st)) == 1) {
                int64_t *p;

                found++;
                if (!admin_may_cancel(reg_status_from_string((const char *) sqlite3_column_text(st, 1))) ||
                    sqlite3_column_int64(st, 2))
                        continue;
                if (!(p = realloc(ids, (n + 1) * sizeof(*ids)))) {
                        r = -ENOMEM;
                        break;
                }
                ids = p;
                ids[n++] = sqlite3_column_int64(st, 0);
        }
        sqlite3_reset(st);
        for (size_t i = 0; i < n && r >= 0; i++)
                r = mark_done(a, ids[i], at);
        free(ids);
        return r < 0 ? r : found;
}

int admin_elearning_done_id(const admin_t *a, int64_t registration_id, int64_t at, char **ret_why)
{
        registration_t g;
        int r = db_registration_get(a->db, registration_id, &g);

        if (r == 0)
                return admin_say(ADMIN_NOT_FOUND, ret_why, "no registration %lld", (long long) registration_id);
        if (r < 0)
                return r;
        registration_clear(&g);
        return mark_done(a, registration_id, at);
}

int admin_elearning_done_email(const admin_t *a, const char *email, int64_t at, char **ret_why)
{
        int r = db_begin(a->db);

        if (r < 0)
                return r;
        r = mark_done_email(a, email, at);
        if (r == 0)
                r = admin_say(ADMIN_NOT_FOUND, ret_why, "no registration for \"%s\"", email);
        else if (r > 0)
                r = 0;
        return finish(a, r);
}

/* ---- imports ------------------------------------------------------------------------------ */

void import_report_clear(import_report_t *r)
{
        for (size_t i = 0; i < r->n_notes; i++)
                free(r->notes[i]);
        free(r->notes);
        memset(r, 0, sizeof(*r));
}

static int add_note(import_report_t *rep, char *note)
{
        char **p;

        if (!note || !(p = realloc(rep->notes, (rep->n_notes + 1) * sizeof(*p)))) {
                free(note);
                return -ENOMEM;
        }
        rep->notes = p;
        rep->notes[rep->n_notes++] = note;
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

/* The whole of a file an admin hands over, at most max bytes; one that cannot be read is
 * refused, and nothing was done ("imported", "changed"). */
static int read_input(const char *path, size_t max, const char *done, char **ret, size_t *ret_size,
                      char **ret_why)
{
        int r = text_read_file(path, max, ret, ret_size);

        if (r == -EFBIG)
                return admin_say(ADMIN_REFUSED, ret_why, "%s: larger than %zu MiB; nothing was %s", path,
                                 max >> 20, done);
        if (r < 0)
                return admin_say(ADMIN_NO_INPUT, ret_why, "%s: %s", path,
                                 r == -EINVAL ? "not a regular file" : strerror(-r));
        return 0;
}

/* The file as a table with a header row. */
static int load_csv(const char *path, csv_table_t **ret, char **ret_why)
{
        char *buf = NULL, *err = NULL;
        size_t size = 0;
        int r;

        r = read_input(path, (size_t) IMPORT_MAX_MIB << 20, "imported", &buf, &size, ret_why);
        if (r)
                return r;
        r = csv_parse(buf, size, ret, &err);
        free(buf);
        if (r < 0) {
                /* err is "line N: why": as FILE:N: why, the way compilers name a place */
                r = admin_say(ADMIN_REFUSED, ret_why, "%s:%s; nothing was imported", path,
                              err ? err + (strncmp(err, "line ", 5) ? 0 : 5) : " cannot be read");
                free(err);
                return r;
        }
        if ((*ret)->n_rows == 0) {
                *ret = csv_table_free(*ret);
                return admin_say(ADMIN_REFUSED, ret_why, "%s:1: the file is empty; a header row is needed", path);
        }
        return 0;
}

typedef int (*import_row_fn)(const admin_t *a, const char *path, const csv_row_t *row,
                             import_report_t *rep, char **ret_why);

static int elearning_row(const admin_t *a, const char *path, const csv_row_t *row,
                         import_report_t *rep, char **ret_why)
{
        char *note = NULL;
        int64_t at;
        int r;

        if (row->n_fields != 2)
                return admin_say(ADMIN_REFUSED, ret_why, "%s:%u: expected 2 fields, found %zu; nothing was imported",
                                 path, row->line, row->n_fields);
        if (!addr_valid(row->fields[0]))
                return admin_say(ADMIN_REFUSED, ret_why,
                                 "%s:%u: \"%s\" is not a valid email address; nothing was imported", path,
                                 row->line, row->fields[0]);
        if (clock_parse_time(row->fields[1], &at) < 0)
                return admin_say(ADMIN_REFUSED, ret_why, "%s:%u: completed_at \"%s\" is not a time like"
                                 " \"2026-09-01 10:30\"; nothing was imported", path, row->line, row->fields[1]);
        r = mark_done_email(a, row->fields[0], at);
        if (r > 0) {
                rep->applied++;
                return 0;
        }
        if (r == 0) {
                (void) admin_say(0, &note, "%s:%u: no registration for %s", path, row->line, row->fields[0]);
                r = add_note(rep, note);
        }
        return r;
}

static int import(const admin_t *a, const char *path, const char *const *header, size_t min,
                  size_t max, const char *header_text, import_row_fn fn, import_report_t *ret,
                  char **ret_why)
{
        import_report_t rep = { 0 };
        csv_table_t *t = NULL;
        int r;

        r = load_csv(path, &t, ret_why);
        if (r)
                return r;
        if (!header_is(&t->rows[0], header, min, max)) {
                r = admin_say(ADMIN_REFUSED, ret_why, "%s:%u: the header must be \"%s\"; nothing was imported",
                              path, t->rows[0].line, header_text);
                goto out;
        }
        r = db_begin(a->db);
        if (r < 0)
                goto out;
        for (size_t i = 1; i < t->n_rows && r == 0; i++, rep.rows++)
                r = fn(a, path, &t->rows[i], &rep, ret_why);
        r = finish(a, r);
out:
        csv_table_free(t);
        if (r == 0)
                *ret = rep;
        else
                import_report_clear(&rep);
        return r;
}

/* ---- bookings: a hand import, or a hub source's export (meccd(8), THE HUB) ---------------- */

const char *const import_column_names[_IMPORT_COL_MAX] = {
        [IMPORT_COL_REF] = "ref",
        [IMPORT_COL_SESSION] = "session",
        [IMPORT_COL_SESSION_ID] = "session_id",
        [IMPORT_COL_NAME] = "name",
        [IMPORT_COL_EMAIL] = "email",
        [IMPORT_COL_STATUS] = "status",
        [IMPORT_COL_REGISTERED_AT] = "registered_at",
        [IMPORT_COL_ORGANISATION] = "organisation",
};

static const char SQL_REG_BY_REF[] = "SELECT id, status FROM registrations WHERE ref = ?1";
static const char SQL_SESSION_BY_REF[] = "SELECT id FROM sessions WHERE ref = ?1";
static const char SQL_REGISTER_BOOKING[] =
        "INSERT INTO registrations(session_id, name, email, registered_at, status, ref, organisation)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/* Where each column is in the export: its index, or -1. */
typedef struct {
        int at[_IMPORT_COL_MAX];
        size_t width;
} columns_t;

/* Read the header row. A hand import names only columns it knows (a typo is caught); a
 * source's export may have any others, which are not read. */
static int read_header(const csv_row_t *h, const import_bookings_t *how, columns_t *ret,
                       char **ret_why)
{
        columns_t c = { .width = h->n_fields };

        for (size_t k = 0; k < _IMPORT_COL_MAX; k++)
                c.at[k] = -1;
        for (size_t i = 0; i < h->n_fields; i++) {
                size_t k;

                for (k = 0; k < _IMPORT_COL_MAX; k++)
                        if (how->header[k] && strcasecmp(h->fields[i], how->header[k]) == 0)
                                break;
                if (k < _IMPORT_COL_MAX && c.at[k] >= 0)
                        return admin_say(ADMIN_REFUSED, ret_why, "the header names \"%s\" twice", how->header[k]);
                if (k < _IMPORT_COL_MAX)
                        c.at[k] = (int) i;
                else if (!how->skip_bad_rows)
                        return admin_say(ADMIN_REFUSED, ret_why, "the header must name the columns session_id"
                                         " (or session, by the session's ref), name and email, and may name"
                                         " registered_at, ref, status and organisation; \"%s\" is none of them",
                                         h->fields[i]);
        }
        if ((c.at[IMPORT_COL_SESSION] < 0) == (c.at[IMPORT_COL_SESSION_ID] < 0) ||
            c.at[IMPORT_COL_NAME] < 0 || c.at[IMPORT_COL_EMAIL] < 0)
                return admin_say(ADMIN_REFUSED, ret_why, "the header must name the columns %s%s%s, %s and %s",
                                 how->header[IMPORT_COL_SESSION_ID] ? how->header[IMPORT_COL_SESSION_ID] : "",
                                 how->header[IMPORT_COL_SESSION_ID] ? " (or " : "",
                                 how->header[IMPORT_COL_SESSION_ID] ? "session)" : how->header[IMPORT_COL_SESSION],
                                 how->header[IMPORT_COL_NAME], how->header[IMPORT_COL_EMAIL]);
        *ret = c;
        return 0;
}

static const char *field(const csv_row_t *row, const columns_t *c, import_col_t k)
{
        return c->at[k] >= 0 && (size_t) c->at[k] < row->n_fields ? row->fields[c->at[k]] : "";
}

static bool is_cancelled(const import_bookings_t *how, const char *status)
{
        for (size_t i = 0; i < how->n_cancelled; i++)
                if (strcasecmp(status, how->cancelled[i]) == 0)
                        return true;
        return false;
}

/* 1 and the id of the session a row names, 0 when no session has that id or ref. */
static int row_session(const admin_t *a, const csv_row_t *row, const columns_t *c, int64_t *ret)
{
        sqlite3_stmt *st;
        int r;

        if (c->at[IMPORT_COL_SESSION_ID] >= 0) {
                r = session_exists(a, *ret);
                return r;
        }
        if (!(st = db_stmt(a->db, SQL_SESSION_BY_REF)))
                return -EIO;
        sqlite3_bind_text(st, 1, field(row, c, IMPORT_COL_SESSION), -1, SQLITE_TRANSIENT);
        r = db_step(st);
        if (r == 1)
                *ret = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        return r;
}

/* What is wrong with a row to be added, as a sentence (caller frees), or NULL; *ret_sid and
 * *ret_at set when nothing is. A source's sentences are logged: they quote no value. */
static int row_problem(const admin_t *a, const import_bookings_t *how, const csv_row_t *row,
                       const columns_t *c, int64_t *ret_sid, int64_t *ret_at, char **ret_why)
{
        const char *sid_text = field(row, c, IMPORT_COL_SESSION_ID);
        const char *email = field(row, c, IMPORT_COL_EMAIL), *at = field(row, c, IMPORT_COL_REGISTERED_AT);
        bool quiet = how->skip_bad_rows;
        char *end;
        int r;

        if (row->n_fields != c->width)
                return admin_say(ADMIN_REFUSED, ret_why, "expected %zu field%s, found %zu", c->width,
                                 c->width == 1 ? "" : "s", row->n_fields);
        if (c->at[IMPORT_COL_SESSION_ID] >= 0) {
                errno = 0;
                *ret_sid = strtoll(sid_text, &end, 10);
                if (errno || *end || !*sid_text || *ret_sid <= 0)
                        return admin_say(ADMIN_REFUSED, ret_why, "session_id \"%s\" is not a number", sid_text);
        } else if (!text_is_line(field(row, c, IMPORT_COL_SESSION)))
                return admin_say(ADMIN_REFUSED, ret_why, "the session's ref is empty");
        if (!text_is_line(field(row, c, IMPORT_COL_NAME)))
                return admin_say(ADMIN_REFUSED, ret_why, "the name is empty or not a single line");
        if (*field(row, c, IMPORT_COL_REF) && !text_is_line(field(row, c, IMPORT_COL_REF)))
                return admin_say(ADMIN_REFUSED, ret_why, "the ref is not a single line");
        if (!addr_valid(email))
                return quiet ? admin_say(ADMIN_REFUSED, ret_why, "no valid email address")
                             : admin_say(ADMIN_REFUSED, ret_why, "\"%s\" is not a valid email address", email);
        *ret_at = a->now;
        if (*at && clock_parse_time(at, ret_at) < 0)
                return admin_say(ADMIN_REFUSED, ret_why, "%s \"%s\" is not a time like \"2026-09-01 10:30\"",
                                 how->header[IMPORT_COL_REGISTERED_AT], at);
        r = row_session(a, row, c, ret_sid);
        if (r == 0 && c->at[IMPORT_COL_SESSION_ID] >= 0)
                return admin_say(ADMIN_REFUSED, ret_why, "there is no session %lld", (long long) *ret_sid);
        if (r == 0)
                return admin_say(ADMIN_REFUSED, ret_why, "no session has the ref \"%s\"",
                                 field(row, c, IMPORT_COL_SESSION));
        return r < 0 ? r : 0;
}

static int add_booking(const admin_t *a, const csv_row_t *row, const columns_t *c, int64_t sid,
                       int64_t at)
{
        sqlite3_stmt *st = db_stmt(a->db, SQL_REGISTER_BOOKING);
        char *org = text_one_line(field(row, c, IMPORT_COL_ORGANISATION));
        int r;

        if (!st || !org) {
                free(org);
                return st ? -ENOMEM : -EIO;
        }
        sqlite3_bind_int64(st, 1, sid);
        sqlite3_bind_text(st, 2, field(row, c, IMPORT_COL_NAME), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, field(row, c, IMPORT_COL_EMAIL), -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 4, at);
        sqlite3_bind_text(st, 5, reg_status_to_string(REG_NEW), -1, SQLITE_STATIC);
        db_bind_text(st, 6, field(row, c, IMPORT_COL_REF));
        db_bind_text(st, 7, org);
        r = db_step_done(st);
        free(org);
        return r;
}

/* A known ref: 1 with its id and status, 0 unknown. */
static int known_ref(const admin_t *a, const char *ref, int64_t *ret_id, reg_status_t *ret_status)
{
        sqlite3_stmt *st = db_stmt(a->db, SQL_REG_BY_REF);
        int r;

        if (!st)
                return -EIO;
        sqlite3_bind_text(st, 1, ref, -1, SQLITE_TRANSIENT);
        r = db_step(st);
        if (r == 1) {
                *ret_id = sqlite3_column_int64(st, 0);
                *ret_status = reg_status_from_string((const char *) sqlite3_column_text(st, 1));
        }
        sqlite3_reset(st);
        return r;
}

static int set_status(const admin_t *a, int64_t id, reg_status_t status)
{
        sqlite3_stmt *st = db_stmt(a->db, SQL_REG_STATUS);

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, reg_status_to_string(status), -1, SQLITE_STATIC);
        return db_step_done(st);
}

/* One row: a known ref adds nothing (cancelled, it cancels); a new one is a registration.
 * ADMIN_REFUSED with *ret_why for a bad row. */
static int booking_row(const admin_t *a, const import_bookings_t *how, const csv_row_t *row,
                       const columns_t *c, import_report_t *rep, char **ret_why)
{
        const char *ref = field(row, c, IMPORT_COL_REF);
        bool cancelled = is_cancelled(how, field(row, c, IMPORT_COL_STATUS));
        reg_status_t status = REG_NEW;
        int64_t id = 0, sid = 0, at = 0;
        int r;

        if (*ref) {
                r = known_ref(a, ref, &id, &status);
                if (r < 0)
                        return r;
                if (r > 0) {
                        if (!cancelled || !admin_may_cancel(status))
                                return 0;
                        r = set_status(a, id, REG_CANCELLED);
                        if (r == 0)
                                rep->applied++;
                        return r;
                }
        }
        /* cancelled before this back office ever had it: nothing to add or cancel */
        if (cancelled)
                return 0;
        r = row_problem(a, how, row, c, &sid, &at, ret_why);
        if (r == 0)
                r = add_booking(a, row, c, sid, at);
        if (r == 0)
                rep->applied++;
        return r;
}

int admin_import_bookings(const admin_t *a, const char *where, const char *buf, size_t size,
                          const import_bookings_t *how, import_report_t *ret, char **ret_why)
{
        import_report_t rep = { 0 };
        csv_table_t *t = NULL;
        char *err = NULL, *why = NULL, *note = NULL;
        columns_t c = { 0 };
        int r;

        r = csv_parse(buf, size, &t, &err);
        if (r < 0) {
                /* err is "line N: why": as WHERE:N: why, the way compilers name a place */
                r = admin_say(ADMIN_REFUSED, ret_why, "%s:%s; nothing was imported", where,
                              err ? err + (strncmp(err, "line ", 5) ? 0 : 5) : " cannot be read");
                free(err);
                return r;
        }
        if (t->n_rows == 0) {
                r = admin_say(ADMIN_REFUSED, ret_why, "%s:1: the file is empty; a header row is needed", where);
                goto out;
        }
        r = read_header(&t->rows[0], how, &c, &why);
        if (r) {
                r = admin_say(r, ret_why, "%s:%u: %s; nothing was imported", where, t->rows[0].line, why);
                goto out;
        }
        r = db_begin(a->db);
        if (r < 0)
                goto out;
        for (size_t i = 1; i < t->n_rows && r == 0; i++, rep.rows++) {
                r = booking_row(a, how, &t->rows[i], &c, &rep, &why);
                if (r != ADMIN_REFUSED)
                        continue;
                if (!how->skip_bad_rows) {
                        r = admin_say(r, ret_why, "%s:%u: %s; nothing was imported", where, t->rows[i].line, why);
                        continue;
                }
                rep.skipped++;
                (void) admin_say(0, &note, "%s:%u: %s; row skipped", where, t->rows[i].line, why);
                r = add_note(&rep, note);
                note = NULL;
        }
        r = finish(a, r);
out:
        free(why);
        csv_table_free(t);
        if (r == 0)
                *ret = rep;
        else
                import_report_clear(&rep);
        return r;
}

int admin_import_registrations(const admin_t *a, const char *path, import_report_t *ret,
                               char **ret_why)
{
        static const char *const cancelled[] = { "cancelled" };
        import_bookings_t how = { .cancelled = cancelled, .n_cancelled = 1 };
        char *buf = NULL;
        size_t size = 0;
        int r;

        for (size_t k = 0; k < _IMPORT_COL_MAX; k++)
                how.header[k] = import_column_names[k];
        r = read_input(path, (size_t) IMPORT_MAX_MIB << 20, "imported", &buf, &size, ret_why);
        if (r)
                return r;
        r = admin_import_bookings(a, path, buf, size, &how, ret, ret_why);
        free(buf);
        return r;
}
int admin_import_elearning(const admin_t *a, const char *path, import_report_t *ret,
                           char **ret_why)
{
        static const char *const header[] = { "email", "completed_at" };

        return import(a, path, header, 2, 2, "email,completed_at", elearning_row, ret, ret_why);
}

/* ---- the outbox ---------------------------------------------------------------------------- */

/* What a retry resets: due now, with a new give-up clock (first_attempt_at). It keeps
 * the attempts and the last error, the history an admin reads in `outbox list`, and its
 * Message-ID, so if the first attempt did arrive after all, the two are recognisably one
 * message. */
#define SQL_REQUEUE                                                                               \
        "UPDATE outbox SET status = ?1, first_attempt_at = NULL, body = NULL,"                    \
        " next_attempt_at = ?2 WHERE status = ?3"
static const char SQL_RETRY_ONE[] = SQL_REQUEUE " AND id = ?4";
static const char SQL_RETRY_ALL[] = SQL_REQUEUE;
static const char SQL_MAIL_STATUS[] = "SELECT status FROM outbox WHERE id = ?1";
/* A retry is the admin saying "try that address again": it is no longer unreachable. */
#define SQL_REACHABLE                                                                             \
        "UPDATE registrations SET unreachable_at = NULL, unreachable_reason = NULL,"              \
        " unreachable_told = 0 WHERE unreachable_at IS NOT NULL AND id IN"                        \
        " (SELECT registration_id FROM outbox WHERE status = ?1"
static const char SQL_REACHABLE_ONE[] = SQL_REACHABLE " AND id = ?2)";
static const char SQL_REACHABLE_ALL[] = SQL_REACHABLE ")";

/* A running meccd looks at this key when the database changed (meccd(8), DELIVERY NOW)
 * and starts delivering at once, forgetting that the relay was down. */
static const char SQL_WAKE[] =
        "INSERT INTO meta(key, value) VALUES ('deliver_wanted', '1')"
        " ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1";

static int wake_sender(const admin_t *a)
{
        sqlite3_stmt *st = db_stmt(a->db, SQL_WAKE);

        return st ? db_step_done(st) : -EIO;
}

/* Failed rows (one, or all when id is 0) queued again; *ret_n: how many. */
static int requeue(const admin_t *a, const char *sql, int64_t id, long *ret_n)
{
        sqlite3_stmt *st = db_stmt(a->db, id ? SQL_REACHABLE_ONE : SQL_REACHABLE_ALL);
        int r;

        if (!st)
                return -EIO;
        r = db_begin(a->db);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, mail_status_to_string(MAIL_FAILED), -1, SQLITE_STATIC);
        if (id)
                sqlite3_bind_int64(st, 2, id);
        r = db_step_done(st);
        if (r == 0 && !(st = db_stmt(a->db, sql)))
                r = -EIO;
        if (r < 0)
                return finish(a, r);
        sqlite3_bind_text(st, 1, mail_status_to_string(MAIL_QUEUED), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, a->now);
        sqlite3_bind_text(st, 3, mail_status_to_string(MAIL_FAILED), -1, SQLITE_STATIC);
        if (id)
                sqlite3_bind_int64(st, 4, id);
        r = db_step_done(st);
        if (r == 0)
                *ret_n = sqlite3_changes(db_handle(a->db));
        return finish(a, r);
}

int admin_retry(const admin_t *a, int64_t outbox_id, char **ret_why)
{
        sqlite3_stmt *st;
        long n = 0;
        int r;

        r = requeue(a, SQL_RETRY_ONE, outbox_id, &n);
        if (r == 0 && n > 0)
                r = wake_sender(a);
        if (r < 0 || n > 0)
                return r;
        /* nothing was failed: say what it is instead */
        st = db_stmt(a->db, SQL_MAIL_STATUS);
        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, outbox_id);
        r = db_step(st);
        if (r == 0)
                r = admin_say(ADMIN_NOT_FOUND, ret_why, "there is no email %lld in the outbox", (long long) outbox_id);
        else if (r == 1)
                r = admin_say(ADMIN_REFUSED, ret_why, "email %lld is %s, not failed", (long long) outbox_id,
                              (const char *) sqlite3_column_text(st, 0));
        sqlite3_reset(st);
        return r;
}

int admin_retry_all_failed(const admin_t *a, long *ret_n)
{
        int r = requeue(a, SQL_RETRY_ALL, 0, ret_n);

        return r == 0 && *ret_n > 0 ? wake_sender(a) : r;
}

/* Queued rows waiting out their backoff (not those being sent) become due now; their
 * attempts, last error and give-up clock stay as they are. */
static const char SQL_FLUSH[] =
        "UPDATE outbox SET next_attempt_at = ?1 WHERE status = ?2 AND sending = 0"
        " AND next_attempt_at > ?1";
static const char SQL_COUNT_DUE[] =
        "SELECT count(*) FROM outbox WHERE status = ?2 AND next_attempt_at <= ?1";

int admin_flush(const admin_t *a, long *ret_due)
{
        sqlite3_stmt *st;
        int r;

        r = db_begin(a->db);
        if (r < 0)
                return r;
        st = db_stmt(a->db, SQL_FLUSH);
        r = st ? 0 : -EIO;
        if (r == 0) {
                sqlite3_bind_int64(st, 1, a->now);
                sqlite3_bind_text(st, 2, mail_status_to_string(MAIL_QUEUED), -1, SQLITE_STATIC);
                r = db_step_done(st);
        }
        if (r == 0 && !(st = db_stmt(a->db, SQL_COUNT_DUE)))
                r = -EIO;
        if (r == 0) {
                sqlite3_bind_int64(st, 1, a->now);
                sqlite3_bind_text(st, 2, mail_status_to_string(MAIL_QUEUED), -1, SQLITE_STATIC);
                r = db_step(st);
                *ret_due = r == 1 ? sqlite3_column_int64(st, 0) : 0;
                sqlite3_reset(st);
                r = r < 0 ? r : 0;
        }
        if (r == 0)
                r = wake_sender(a);
        return finish(a, r);
}

/* ---- attendance --------------------------------------------------------------------------- */

static const char SQL_ATT_CLEAR[] =
        "UPDATE registrations SET attended = NULL, attended_minutes = NULL WHERE session_id = ?1";
static const char SQL_ATT_SET[] =
        "UPDATE registrations SET attended = ?2, attended_minutes = ?3 WHERE id = ?1";

void attendance_report_clear(attendance_report_t *r)
{
        for (size_t i = 0; i < r->n_unmatched; i++)
                free(r->unmatched[i]);
        free(r->unmatched);
        memset(r, 0, sizeof(*r));
}

static int set_attended(const admin_t *a, int64_t id, int attended, long minutes)
{
        sqlite3_stmt *st = db_stmt(a->db, SQL_ATT_SET);

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, id);
        if (attended >= 0)
                sqlite3_bind_int(st, 2, attended);
        if (minutes >= 0)
                sqlite3_bind_int64(st, 3, minutes);
        return db_step_done(st);
}

/* The booked registration a row of the file is: by address, else by a name only one of
 * them has. -1 when none; *ret_shared when the name is two people's. */
static ssize_t match_row(const registration_t *booked, size_t n, const attendance_row_t *w,
                         bool *ret_shared)
{
        ssize_t found = -1;
        size_t same = 0;

        *ret_shared = false;
        for (size_t i = 0; *w->email && i < n; i++)
                if (strcasecmp(booked[i].email, w->email) == 0)
                        return (ssize_t) i;
        for (size_t i = 0; *w->name && i < n; i++)
                if (strcasecmp(booked[i].name, w->name) == 0) {
                        found = (ssize_t) i;
                        same++;
                }
        *ret_shared = same > 1;
        return same == 1 ? found : -1;
}

static int note_unmatched(attendance_report_t *rep, const attendance_row_t *w, bool shared)
{
        char *note = NULL, mins[32] = "";
        char **p;

        if (w->minutes >= 0)
                snprintf(mins, sizeof(mins), ", %ld min", w->minutes);
        if (asprintf(&note, "%s%s%s%s%s%s", *w->name ? w->name : "(no name)",
                     *w->email ? " <" : " (no address)", w->email, *w->email ? ">" : "", mins,
                     shared ? ": the name of more than one booking, and no address to tell them apart" : "") < 0)
                return -ENOMEM;
        p = realloc(rep->unmatched, (rep->n_unmatched + 1) * sizeof(*p));
        if (!p) {
                free(note);
                return -ENOMEM;
        }
        rep->unmatched = p;
        rep->unmatched[rep->n_unmatched++] = note;
        return 0;
}

static int attendance_session(const admin_t *a, int64_t session_id, session_t *s, char **ret_why)
{
        int r = db_session_get_plain(a->db, session_id, s);

        if (r < 0)
                return r;
        if (r == 0)
                return admin_say(ADMIN_NOT_FOUND, ret_why, "no session %lld", (long long) session_id);
        if (a->now < s->starts_at) {
                session_clear(s);
                return admin_say(ADMIN_REFUSED, ret_why, "session %lld has not started yet: nobody can have "
                                 "attended it", (long long) session_id);
        }
        return 0;
}

int admin_attendance_import(const admin_t *a, int64_t session_id, const char *path,
                            attendance_report_t *ret, char **ret_why)
{
        attendance_report_t rep = { 0 };
        attendance_t *att = NULL;
        registration_t *booked = NULL;
        const config_t *sc;
        session_t s = { 0 };
        long *minutes = NULL; /* per booked registration: -2 not in the file, -1 unknown */
        char *buf = NULL, *err = NULL;
        size_t size = 0, n = 0;
        long min;
        int r;

        r = attendance_session(a, session_id, &s, ret_why);
        if (r)
                return r;
        r = read_input(path, ATTENDANCE_MAX_SIZE, "changed", &buf, &size, ret_why);
        if (r)
                goto out;
        r = attendance_parse(buf, size, &att, &err);
        if (r == -EBADMSG) {
                r = admin_say(ADMIN_REFUSED, ret_why, "%s: %s; nothing was changed", path,
                              err ? err : "cannot be read");
                goto out;
        }
        if (r < 0)
                goto out;
        sc = config_settings(a->cfg, s.course);
        min = config_attendance_min(sc ? sc : a->cfg, s.starts_at, s.ends_at);
        r = db_begin(a->db);
        if (r < 0)
                goto out;
        r = db_session_booked(a->db, session_id, &booked, &n);
        if (r >= 0 && !(minutes = malloc((n + 1) * sizeof(*minutes))))
                r = -ENOMEM;
        for (size_t i = 0; r >= 0 && i < n; i++)
                minutes[i] = -2;
        for (size_t k = 0; r >= 0 && k < att->n; k++) {
                const attendance_row_t *w = &att->rows[k];
                bool shared;
                ssize_t i = match_row(booked, n, w, &shared);

                if (i < 0) {
                        r = note_unmatched(&rep, w, shared);
                        continue;
                }
                /* met twice (by address and by name): the times add up */
                minutes[i] = minutes[i] == -2 ? w->minutes
                           : minutes[i] < 0 || w->minutes < 0 ? -1 : minutes[i] + w->minutes;
        }
        if (r >= 0) {
                sqlite3_stmt *st = db_stmt(a->db, SQL_ATT_CLEAR);

                if (!st)
                        r = -EIO;
                else {
                        sqlite3_bind_int64(st, 1, session_id);
                        r = db_step_done(st);
                }
        }
        for (size_t i = 0; r >= 0 && i < n; i++) {
                bool came = minutes[i] == -1 || minutes[i] >= min;

                r = set_attended(a, booked[i].id, came, minutes[i] == -2 ? 0 : minutes[i]);
                if (came)
                        rep.attended++;
                else
                        rep.absent++;
        }
        rep.format = attendance_format_name(att->format);
        rep.people = att->n;
        r = finish(a, r < 0 ? r : 0);
out:
        if (r == 0)
                *ret = rep;
        else
                attendance_report_clear(&rep);
        free(minutes);
        registrations_free(booked, n);
        attendance_free(att);
        session_clear(&s);
        free(buf);
        free(err);
        return r;
}

int admin_attendance_mark(const admin_t *a, int64_t session_id, bool attended, char *const *who,
                          size_t n, char **ret_why)
{
        registration_t *booked = NULL;
        session_t s = { 0 };
        size_t nb = 0;
        int r;

        r = attendance_session(a, session_id, &s, ret_why);
        if (r)
                return r;
        r = db_begin(a->db);
        if (r >= 0)
                r = db_session_booked(a->db, session_id, &booked, &nb);
        for (size_t k = 0; r >= 0 && k < n; k++) {
                int64_t id = 0;
                size_t i;
                char *end;

                if (!strchr(who[k], '@')) {
                        errno = 0;
                        id = strtoll(who[k], &end, 10);
                        if (errno || *end || id <= 0)
                                id = -1;
                }
                for (i = 0; i < nb; i++)
                        if (id ? booked[i].id == id : strcasecmp(booked[i].email, who[k]) == 0)
                                break;
                if (i == nb) {
                        r = admin_say(ADMIN_NOT_FOUND, ret_why,
                                      "%s is no booking on session %lld; nothing was changed", who[k],
                                      (long long) session_id);
                        break;
                }
                r = set_attended(a, booked[i].id, attended, -1);
        }
        r = finish(a, r);
        registrations_free(booked, nb);
        session_clear(&s);
        return r;
}

static const char SQL_SET_ORG[] = "UPDATE registrations SET organisation = ?2 WHERE id = ?1";

int admin_register_org(const admin_t *a, int64_t session_id, const char *name, const char *email,
                       const char *organisation, int64_t *ret_id, char **ret_why)
{
        sqlite3_stmt *st;
        int64_t id = 0;
        int r;

        if (organisation && *organisation && !text_is_line(organisation))
                return admin_say(ADMIN_REFUSED, ret_why, "the organisation must be a single line");
        r = db_begin(a->db);
        if (r < 0)
                return r;
        r = admin_register(a, session_id, name, email, &id, ret_why);
        if (r == 0) {
                st = db_stmt(a->db, SQL_SET_ORG);
                if (!st)
                        r = -EIO;
                else {
                        sqlite3_bind_int64(st, 1, id);
                        db_bind_text(st, 2, organisation);
                        r = db_step_done(st);
                }
        }
        r = finish(a, r);
        if (r == 0 && ret_id)
                *ret_id = id;
        return r;
}

/* ---- the hub's id for a session ------------------------------------------------------------ */

static const char SQL_SESSION_SET_REF[] = "UPDATE sessions SET ref = ?2 WHERE id = ?1";
static const char SQL_SESSION_REF_OWNER[] = "SELECT id FROM sessions WHERE ref = ?1 AND id <> ?2";

int admin_session_ref_check(const admin_t *a, int64_t id, const char *ref, char **ret_why)
{
        sqlite3_stmt *st;
        int r;

        if (!*ref)
                return 0; /* "": no ref */
        if (!text_is_line(ref))
                return admin_say(ADMIN_REFUSED, ret_why, "the ref must be a single line");
        if (!(st = db_stmt(a->db, SQL_SESSION_REF_OWNER)))
                return -EIO;
        sqlite3_bind_text(st, 1, ref, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, id);
        r = db_step(st);
        if (r == 1)
                r = admin_say(ADMIN_REFUSED, ret_why, "session %lld already has the ref \"%s\"",
                              (long long) sqlite3_column_int64(st, 0), ref);
        sqlite3_reset(st);
        return r;
}

int admin_session_set_ref(const admin_t *a, int64_t id, const char *ref, char **ret_why)
{
        sqlite3_stmt *st;
        int r;

        r = db_begin(a->db);
        if (r < 0)
                return r;
        r = session_exists(a, id);
        if (r == 0)
                r = admin_say(ADMIN_NOT_FOUND, ret_why, "no session %lld", (long long) id);
        else if (r > 0)
                r = admin_session_ref_check(a, id, ref, ret_why);
        if (r == 0 && !(st = db_stmt(a->db, SQL_SESSION_SET_REF)))
                r = -EIO;
        else if (r == 0) {
                sqlite3_bind_int64(st, 1, id);
                db_bind_text(st, 2, ref);
                r = db_step_done(st);
        }
        return finish(a, r);
}

/* ---- putting an address right ------------------------------------------------------------- */

static const char SQL_REG_EDIT[] =
        "UPDATE registrations SET name = ?2, email = ?3,"
        " unreachable_at = CASE WHEN ?4 THEN NULL ELSE unreachable_at END,"
        " unreachable_reason = CASE WHEN ?4 THEN NULL ELSE unreachable_reason END,"
        " unreachable_told = CASE WHEN ?4 THEN 0 ELSE unreachable_told END WHERE id = ?1";

/* What the person is still owed at a new address, as new occasions ("edit-TIME"): the email
 * that told them their place, and the joining link once its moment has passed. */
static int requeue_owed(const admin_t *a, const registration_t *g, const char *email, long *ret_n)
{
        session_t s = { 0 };
        char occasion[32];
        kind_t told = g->status == REG_BOOKED ? KIND_CONFIRMATION
                      : g->status == REG_WAITLISTED ? KIND_WAITLISTED : _KIND_INVALID;
        int r;

        *ret_n = 0;
        r = db_session_get_plain(a->db, g->session_id, &s);
        if (r <= 0)
                return r;
        snprintf(occasion, sizeof(occasion), "edit-%lld", (long long) a->now);
        if (told >= 0 && (s.status == SESSION_OPEN || s.status == SESSION_CLOSED) && a->now < s.starts_at) {
                r = outbox_queue(a->db, a->cfg, s.id, g->id, told, occasion, email, a->now);
                if (r > 0)
                        (*ret_n)++;
                if (r >= 0 && g->status == REG_BOOKED && a->now >= plan_joining_at(a->cfg, s.starts_at)) {
                        r = outbox_queue(a->db, a->cfg, s.id, g->id, KIND_JOINING_LINK, occasion, email, a->now);
                        if (r > 0)
                                (*ret_n)++;
                }
        }
        session_clear(&s);
        return r < 0 ? r : 0;
}

int admin_registration_edit(const admin_t *a, int64_t id, const char *name, const char *email,
                            long *ret_queued, char **ret_why)
{
        registration_t g = { 0 };
        sqlite3_stmt *st;
        bool readdressed;
        int r;

        *ret_queued = 0;
        if (name && !text_is_line(name))
                return admin_say(ADMIN_REFUSED, ret_why, "the name must be a non-empty single line");
        if (email && !addr_valid(email))
                return admin_say(ADMIN_REFUSED, ret_why, "\"%s\" is not a valid email address", email);
        r = db_begin(a->db);
        if (r < 0)
                return r;
        r = db_registration_get(a->db, id, &g);
        if (r == 0)
                r = admin_say(ADMIN_NOT_FOUND, ret_why, "no registration %lld", (long long) id);
        else if (r > 0 && !*g.email)
                r = admin_say(ADMIN_REFUSED, ret_why, "registration %lld was erased", (long long) id);
        else if (r > 0)
                r = 0;
        if (r != 0)
                goto out;
        /* a new address; the same one typed again clears a bounce too (the mailbox was fixed) */
        readdressed = email && (strcasecmp(email, g.email) != 0 || g.unreachable_at);
        if (!(st = db_stmt(a->db, SQL_REG_EDIT))) {
                r = -EIO;
                goto out;
        }
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, name ? name : g.name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, email ? email : g.email, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 4, readdressed);
        r = db_step_done(st);
        if (r == 0 && readdressed)
                r = requeue_owed(a, &g, email, ret_queued);
out:
        registration_clear(&g);
        return finish(a, r);
}
