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
#include "clock.h"
#include "csv.h"
#include "plan.h"
#include "render.h"
#include "runas.h"
#include "scan.h"
#include "text.h"

#define CAPACITY_MAX 100000
#define IMPORT_MAX_MIB 64

/* Set *ret_why to a sentence (when the caller wants one) and return result. */
static int say(int result, char **ret_why, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int say(int result, char **ret_why, const char *fmt, ...)
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

/* Each given field on its own: a single line, a link, an address, a number of places. */
static int check_fields(const session_fields_t *f, char **ret_why)
{
        if ((f->given & SF_TITLE) && !text_is_line(f->title))
                return say(ADMIN_REFUSED, ret_why, "the title must be a non-empty single line");
        if ((f->given & SF_CAPACITY) && (f->capacity < 0 || f->capacity > CAPACITY_MAX))
                return say(ADMIN_REFUSED, ret_why, "the capacity must be a number of places from 0 to %d, not %ld",
                           CAPACITY_MAX, f->capacity);
        if ((f->given & SF_JOIN_URL) && !text_is_url(f->join_url))
                return say(ADMIN_REFUSED, ret_why, "the joining link \"%s\" is not an http(s) URL",
                           f->join_url ? f->join_url : "");
        if ((f->given & SF_ELEARNING_URL) && !text_is_url(f->elearning_url))
                return say(ADMIN_REFUSED, ret_why, "the e-learning link \"%s\" is not an http(s) URL",
                           f->elearning_url ? f->elearning_url : "");
        if ((f->given & SF_TRAINER) && !addr_valid(f->trainer_email))
                return say(ADMIN_REFUSED, ret_why, "the trainer's address \"%s\" is not a valid email address",
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
        return n;
}

/* Why a new session at these times is most likely a mistake. */
static void why_too_soon(const admin_t *a, const session_t *s, char **ret_why)
{
        char start[64], cutoff[64];

        clock_format_local(s->starts_at, start, sizeof(start));
        if (s->starts_at <= a->now) {
                (void) say(0, ret_why, "the session would start %s, which is in the past", start);
                return;
        }
        clock_format_local(plan_cutoff(a->cfg, s->starts_at, s->closes_at), cutoff, sizeof(cutoff));
        (void) say(0, ret_why, "bookings for a session starting %s close %s, which is already past:"
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
        sqlite3_stmt *st;
        int r;

        if ((f->given & SF_REQUIRED) != SF_REQUIRED)
                return say(ADMIN_REFUSED, ret_why, "a session needs a title, a start, an end and a capacity");
        r = check_fields(f, ret_why);
        if (r)
                return r;
        if (s.ends_at <= s.starts_at)
                return say(ADMIN_REFUSED, ret_why, "the end must be after the start");
        if (!plan_bookable(a->cfg, &s, a->now)) {
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
        return 0;
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
                return say(ADMIN_NOT_FOUND, ret_why, "no session %lld", (long long) id);
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
                return say(ADMIN_REFUSED, ret_why, "session %lld is %s and can no longer be edited",
                           (long long) s->id, session_status_to_string(s->status));
        if (n.ends_at <= n.starts_at)
                return say(ADMIN_REFUSED, ret_why, "the end must be after the start");
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
        if (r)
                return r;
        r = db_begin(a->db);
        if (r < 0)
                return r;
        r = get_session(a, id, &s, ret_why);
        if (r == 0)
                r = edit(a, &s, f, ret_told, ret_why);
        session_clear(&s);
        return finish(a, r);
}

int admin_session_cancel(const admin_t *a, int64_t id, char **ret_why)
{
        session_t s = { 0 };
        sqlite3_stmt *st;
        int r;

        r = db_begin(a->db);
        if (r < 0)
                return r;
        r = get_session(a, id, &s, ret_why);
        if (r)
                goto out;
        if (s.status == SESSION_CANCELLED || s.status == SESSION_DONE) {
                r = say(ADMIN_REFUSED, ret_why, "session %lld is %s%s", (long long) id,
                        s.status == SESSION_CANCELLED ? "already " : "", session_status_to_string(s.status));
                goto out;
        }
        st = db_stmt(a->db, SQL_SESSION_STATUS);
        if (!st) {
                r = -EIO;
                goto out;
        }
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, session_status_to_string(SESSION_CANCELLED), -1, SQLITE_STATIC);
        r = db_step_done(st);
out:
        session_clear(&s);
        return finish(a, r);
}

int admin_session_close(const admin_t *a, int64_t id, char **ret_why)
{
        session_t s = { 0 };
        sqlite3_stmt *st;
        int r;

        r = db_begin(a->db);
        if (r < 0)
                return r;
        r = get_session(a, id, &s, ret_why);
        if (r)
                goto out;
        if (s.status != SESSION_OPEN) {
                r = say(ADMIN_REFUSED, ret_why, "session %lld is %s, not open", (long long) id,
                        session_status_to_string(s.status));
                goto out;
        }
        st = db_stmt(a->db, SQL_SESSION_CLOSES);
        if (!st) {
                r = -EIO;
                goto out;
        }
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, a->now);
        r = db_step_done(st);
        /* the close step itself: the waiting list is told, the roster queued */
        if (r == 0)
                r = scan_close(a->db, a->cfg, a->now, &(scan_stats_t) { 0 });
out:
        session_clear(&s);
        return finish(a, r);
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
                return say(ADMIN_REFUSED, ret_why, "the name must be a non-empty single line");
        if (!addr_valid(email))
                return say(ADMIN_REFUSED, ret_why, "\"%s\" is not a valid email address", email ? email : "");
        r = session_exists(a, session_id);
        if (r == 0)
                return say(ADMIN_NOT_FOUND, ret_why, "no session %lld", (long long) session_id);
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
                r = say(ADMIN_NOT_FOUND, ret_why, "no registration %lld", (long long) registration_id);
        else if (r > 0 && !admin_may_cancel(g.status))
                r = say(ADMIN_REFUSED, ret_why, "registration %lld is %s; nothing to cancel",
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
                return say(ADMIN_NOT_FOUND, ret_why, "no registration %lld", (long long) registration_id);
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
                r = say(ADMIN_NOT_FOUND, ret_why, "no registration for \"%s\"", email);
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

/* The file as a table with a header row. */
static int load_csv(const char *path, csv_table_t **ret, char **ret_why)
{
        char *buf = NULL, *err = NULL;
        size_t size = 0;
        int r;

        r = text_read_file(path, (size_t) IMPORT_MAX_MIB << 20, &buf, &size);
        if (r == -EFBIG)
                return say(ADMIN_REFUSED, ret_why, "%s: larger than %d MiB; nothing was imported", path,
                           IMPORT_MAX_MIB);
        if (r < 0)
                return say(ADMIN_NO_INPUT, ret_why, "%s: %s", path,
                           r == -EINVAL ? "not a regular file" : strerror(-r));
        r = csv_parse(buf, size, ret, &err);
        free(buf);
        if (r < 0) {
                /* err is "line N: why": as FILE:N: why, the way compilers name a place */
                r = say(ADMIN_REFUSED, ret_why, "%s:%s; nothing was imported", path,
                        err ? err + (strncmp(err, "line ", 5) ? 0 : 5) : " cannot be read");
                free(err);
                return r;
        }
        if ((*ret)->n_rows == 0) {
                *ret = csv_table_free(*ret);
                return say(ADMIN_REFUSED, ret_why, "%s:1: the file is empty; a header row is needed", path);
        }
        return 0;
}

typedef int (*import_row_fn)(const admin_t *a, const char *path, const csv_row_t *row,
                             import_report_t *rep, char **ret_why);

static int registration_row(const admin_t *a, const char *path, const csv_row_t *row,
                            import_report_t *rep, char **ret_why)
{
        int64_t sid, at = a->now;
        char *end;
        int r;

        if (row->n_fields < 3 || row->n_fields > 4)
                return say(ADMIN_REFUSED, ret_why, "%s:%u: expected 3 or 4 fields, found %zu; nothing was imported",
                           path, row->line, row->n_fields);
        errno = 0;
        sid = strtoll(row->fields[0], &end, 10);
        if (errno || *end || !*row->fields[0] || sid <= 0)
                return say(ADMIN_REFUSED, ret_why, "%s:%u: session_id \"%s\" is not a number; nothing was imported",
                           path, row->line, row->fields[0]);
        if (!text_is_line(row->fields[1]))
                return say(ADMIN_REFUSED, ret_why, "%s:%u: the name is empty or not a single line; nothing was imported",
                           path, row->line);
        if (!addr_valid(row->fields[2]))
                return say(ADMIN_REFUSED, ret_why, "%s:%u: \"%s\" is not a valid email address; nothing was imported",
                           path, row->line, row->fields[2]);
        if (row->n_fields == 4 && *row->fields[3] && clock_parse_time(row->fields[3], &at) < 0)
                return say(ADMIN_REFUSED, ret_why, "%s:%u: registered_at \"%s\" is not a time like"
                           " \"2026-09-01 10:30\"; nothing was imported", path, row->line, row->fields[3]);
        r = session_exists(a, sid);
        if (r == 0)
                return say(ADMIN_REFUSED, ret_why, "%s:%u: there is no session %lld; nothing was imported",
                           path, row->line, (long long) sid);
        if (r > 0)
                r = insert_registration(a, sid, row->fields[1], row->fields[2], at, NULL);
        if (r == 0)
                rep->applied++;
        return r;
}

static int elearning_row(const admin_t *a, const char *path, const csv_row_t *row,
                         import_report_t *rep, char **ret_why)
{
        char *note = NULL;
        int64_t at;
        int r;

        if (row->n_fields != 2)
                return say(ADMIN_REFUSED, ret_why, "%s:%u: expected 2 fields, found %zu; nothing was imported",
                           path, row->line, row->n_fields);
        if (!addr_valid(row->fields[0]))
                return say(ADMIN_REFUSED, ret_why, "%s:%u: \"%s\" is not a valid email address; nothing was imported",
                           path, row->line, row->fields[0]);
        if (clock_parse_time(row->fields[1], &at) < 0)
                return say(ADMIN_REFUSED, ret_why, "%s:%u: completed_at \"%s\" is not a time like"
                           " \"2026-09-01 10:30\"; nothing was imported", path, row->line, row->fields[1]);
        r = mark_done_email(a, row->fields[0], at);
        if (r > 0) {
                rep->applied++;
                return 0;
        }
        if (r == 0) {
                (void) say(0, &note, "%s:%u: no registration for %s", path, row->line, row->fields[0]);
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
                r = say(ADMIN_REFUSED, ret_why, "%s:%u: the header must be \"%s\"; nothing was imported",
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

int admin_import_registrations(const admin_t *a, const char *path, import_report_t *ret,
                               char **ret_why)
{
        static const char *const header[] = { "session_id", "name", "email", "registered_at" };

        return import(a, path, header, 3, 4, "session_id,name,email[,registered_at]",
                      registration_row, ret, ret_why);
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
        sqlite3_stmt *st = db_stmt(a->db, sql);
        int r;

        if (!st)
                return -EIO;
        sqlite3_bind_text(st, 1, mail_status_to_string(MAIL_QUEUED), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, a->now);
        sqlite3_bind_text(st, 3, mail_status_to_string(MAIL_FAILED), -1, SQLITE_STATIC);
        if (id)
                sqlite3_bind_int64(st, 4, id);
        r = db_step_done(st);
        if (r == 0)
                *ret_n = sqlite3_changes(db_handle(a->db));
        return r;
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
                r = say(ADMIN_NOT_FOUND, ret_why, "there is no email %lld in the outbox", (long long) outbox_id);
        else if (r == 1)
                r = say(ADMIN_REFUSED, ret_why, "email %lld is %s, not failed", (long long) outbox_id,
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
