/* report.c - what admins read: lists, the health verdict, the dry run, a preview. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "outbox.h"
#include "plan.h"
#include "render.h"
#include "report.h"
#include "runas.h"
#include "scan.h"

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

/* ---- lists -------------------------------------------------------------------------------- */

static const char SQL_SESSIONS[] = "SELECT id FROM sessions ORDER BY starts_at, id";
static const char SQL_SESSIONS_IN[] = "SELECT id FROM sessions WHERE status = ?1 ORDER BY starts_at, id";
static const char SQL_REGS[] = "SELECT id FROM registrations ORDER BY session_id, registered_at, id";
static const char SQL_REGS_OF[] =
        "SELECT id FROM registrations WHERE session_id = ?1 ORDER BY registered_at, id";
#define SQL_OUTBOX_ROWS                                                                           \
        "SELECT id, ifnull(registration_id, 0), session_id, kind, occasion, recipient, status,"   \
        " attempts, created_at, ifnull(sent_at, 0), next_attempt_at, last_error, message_id"      \
        " FROM outbox"
static const char SQL_OUTBOX[] = SQL_OUTBOX_ROWS " ORDER BY id";
static const char SQL_OUTBOX_IN[] = SQL_OUTBOX_ROWS " WHERE status = ?1 ORDER BY id";

typedef int (*session_fn)(const session_t *s, void *userdata);

/* Each session the statement names (by id in column 0), read with its counts. */
static int each_session(db_t *db, sqlite3_stmt *st, session_fn fn, void *userdata)
{
        int r = 0, q = 0;

        while (q >= 0 && (r = db_step(st)) == 1) {
                session_t s;

                q = db_session_get(db, sqlite3_column_int64(st, 0), &s);
                if (q <= 0)
                        continue; /* gone since the query */
                q = fn(&s, userdata);
                session_clear(&s);
        }
        sqlite3_reset(st);
        return q < 0 ? q : r < 0 ? r : 0;
}

int report_sessions(db_t *db, session_fn fn, void *userdata)
{
        sqlite3_stmt *st = db_stmt(db, SQL_SESSIONS);

        return st ? each_session(db, st, fn, userdata) : -EIO;
}

int report_registrations(db_t *db, int64_t session_id,
                         int (*fn)(const registration_t *g, void *userdata), void *userdata)
{
        sqlite3_stmt *st = db_stmt(db, session_id ? SQL_REGS_OF : SQL_REGS);
        int r = 0, q = 0;

        if (!st)
                return -EIO;
        if (session_id)
                sqlite3_bind_int64(st, 1, session_id);
        while (q >= 0 && (r = db_step(st)) == 1) {
                registration_t g;

                q = db_registration_get(db, sqlite3_column_int64(st, 0), &g);
                if (q <= 0)
                        continue;
                q = fn(&g, userdata);
                registration_clear(&g);
        }
        sqlite3_reset(st);
        return q < 0 ? q : r < 0 ? r : 0;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
        const char *s = (const char *) sqlite3_column_text(st, i);

        return s ? s : "";
}

int report_outbox(db_t *db, mail_status_t status,
                  int (*fn)(const mail_row_t *o, void *userdata), void *userdata)
{
        sqlite3_stmt *st = db_stmt(db, status >= 0 ? SQL_OUTBOX_IN : SQL_OUTBOX);
        int r = 0, q = 0;

        if (!st)
                return -EIO;
        if (status >= 0)
                sqlite3_bind_text(st, 1, mail_status_to_string(status), -1, SQLITE_STATIC);
        while (q >= 0 && (r = db_step(st)) == 1) {
                mail_row_t o = {
                        .id = sqlite3_column_int64(st, 0),
                        .registration_id = sqlite3_column_int64(st, 1),
                        .session_id = sqlite3_column_int64(st, 2),
                        .kind = kind_from_string(col_text(st, 3)),
                        .occasion = col_text(st, 4),
                        .recipient = col_text(st, 5),
                        .status = mail_status_from_string(col_text(st, 6)),
                        .attempts = sqlite3_column_int(st, 7),
                        .created_at = sqlite3_column_int64(st, 8),
                        .sent_at = sqlite3_column_int64(st, 9),
                        .last_error = (const char *) sqlite3_column_text(st, 11),
                        .message_id = (const char *) sqlite3_column_text(st, 12),
                };

                /* only a queued email has a next attempt */
                if (o.status == MAIL_QUEUED)
                        o.next_attempt_at = sqlite3_column_int64(st, 10);
                q = fn(&o, userdata);
        }
        sqlite3_reset(st);
        return q < 0 ? q : r < 0 ? r : 0;
}

/* ---- status ------------------------------------------------------------------------------- */

static const char SQL_COUNT_REGS[] = "SELECT count(*) FROM registrations WHERE status = ?1";
/* Emails that should have gone by now: the relay is down or refusing us for a while. */
static const char SQL_OVERDUE[] = "SELECT count(*) FROM outbox WHERE status = ?1 AND created_at <= ?2";

static int add_open_session(const session_t *s, void *userdata)
{
        health_t *h = userdata;

        h->open_sessions++;
        h->seats_left += session_seats_left(s);
        return 0;
}

/* count(*) of a statement whose ?1 is a status and ?2 (if any) a time. */
static int count(db_t *db, const char *sql, const char *status, int64_t t, long *ret)
{
        sqlite3_stmt *st = db_stmt(db, sql);
        int r;

        if (!st)
                return -EIO;
        sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
        if (sqlite3_bind_parameter_count(st) >= 2)
                sqlite3_bind_int64(st, 2, t);
        r = db_step(st);
        if (r == 1)
                *ret = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        return r < 0 ? r : 0;
}

/* New registrations older than the last whole scan: it should have handled them, unless
 * their session is held back (counted apart). */
static const char SQL_STUCK[] =
        "SELECT count(*) FROM registrations r JOIN sessions s ON s.id = r.session_id"
        " WHERE r.status = ?1 AND r.registered_at < ?2 AND s.problem IS NULL";
static const char SQL_HELD[] =
        "SELECT count(*), min(id), (SELECT problem FROM sessions WHERE problem IS NOT NULL"
        " AND status IN ('open', 'closed') ORDER BY id LIMIT 1)"
        " FROM sessions WHERE problem IS NOT NULL AND status IN ('open', 'closed')";
static const char SQL_INVALID[] =
        "SELECT count(*), ifnull(reason, 'no reason recorded') FROM registrations"
        " WHERE status = 'invalid' GROUP BY 2 ORDER BY 1 DESC";

static int health_problems(db_t *db, const config_t *c, int64_t now, health_t *h)
{
        sqlite3_stmt *st;
        char *v;
        int r;

        (void) now;
        v = db_meta_get(db, "relay_problem");
        if (v && *v) {
                char *end;

                h->relay_problem_at = strtoll(v, &end, 10);
                snprintf(h->relay_problem, sizeof(h->relay_problem), "%s", *end ? end + 1 : end);
        }
        free(v);
        if (h->last_scan_at) {
                r = count(db, SQL_STUCK, reg_status_to_string(REG_NEW), h->last_scan_at - c->scan_interval,
                          &h->stuck);
                if (r < 0)
                        return r;
        }
        if (!(st = db_stmt(db, SQL_HELD)))
                return -EIO;
        if ((r = db_step(st)) == 1) {
                h->held_sessions = sqlite3_column_int64(st, 0);
                h->held_id = sqlite3_column_int64(st, 1);
                snprintf(h->held_problem, sizeof(h->held_problem), "%s",
                         sqlite3_column_text(st, 2) ? (const char *) sqlite3_column_text(st, 2) : "");
        }
        sqlite3_reset(st);
        if (r < 0)
                return r;
        if (!(st = db_stmt(db, SQL_INVALID)))
                return -EIO;
        while ((r = db_step(st)) == 1) {
                size_t n = strlen(h->invalid_reasons);
                long k = sqlite3_column_int64(st, 0);

                snprintf(h->invalid_reasons + n, sizeof(h->invalid_reasons) - n, "%s%ld %s",
                         n ? "; " : "", k, (const char *) sqlite3_column_text(st, 1));
                h->invalid += k;
        }
        sqlite3_reset(st);
        if (r < 0)
                return r;
        if (runas_service_user_of(c->database)) {
                char *err = NULL;

                if (runas_check_writable(runas_service_user_of(c->database), c->database, &err) > 0)
                        snprintf(h->db_problem, sizeof(h->db_problem), "%s", err ? err : "");
                free(err);
        }
        return 0;
}

int report_health(db_t *db, const config_t *c, int64_t now, health_t *ret)
{
        health_t h = { 0 };
        sqlite3_stmt *st = db_stmt(db, SQL_SESSIONS_IN);
        char *last;
        int r;

        if (!st)
                return -EIO;
        sqlite3_bind_text(st, 1, session_status_to_string(SESSION_OPEN), -1, SQLITE_STATIC);
        r = each_session(db, st, add_open_session, &h);
        if (r >= 0)
                r = count(db, SQL_COUNT_REGS, reg_status_to_string(REG_NEW), 0, &h.unprocessed);
        if (r >= 0)
                r = count(db, SQL_OVERDUE, mail_status_to_string(MAIL_QUEUED), now - HEALTH_OVERDUE_AFTER,
                          &h.overdue);
        if (r >= 0)
                r = outbox_counts(db, &h.queued, &h.failed);
        if (r < 0)
                return r;
        last = db_meta_get(db, "last_scan_at");
        h.last_scan_at = last ? strtoll(last, NULL, 10) : 0;
        free(last);
        h.scanning = h.last_scan_at && now - h.last_scan_at < 3 * c->scan_interval + 60;
        r = health_problems(db, c, now, &h);
        if (r < 0)
                return r;
        h.healthy = h.scanning && h.failed == 0 && h.overdue == 0 && !h.relay_problem[0] &&
                    h.stuck == 0 && h.held_sessions == 0 && !h.db_problem[0];
        *ret = h;
        return 0;
}

/* ---- the dry run -------------------------------------------------------------------------- */

static const char SQL_SESSION_TIMES[] =
        "SELECT starts_at, ends_at, ifnull(closes_at, 0) FROM sessions WHERE erased_at IS NULL";
static const char SQL_NEXT_RETRY[] =
        "SELECT min(next_attempt_at) FROM outbox WHERE status = ?1 AND next_attempt_at > ?2";
static const char SQL_DUE_ROWS[] =
        "SELECT id, kind, ifnull(registration_id, 0), session_id, recipient FROM outbox"
        " WHERE status = ?1 AND next_attempt_at <= ?2 ORDER BY next_attempt_at, id";
static const char SQL_RETIRE[] = "UPDATE outbox SET status = ?2 WHERE id = ?1";

/* The next moment a scan has something new to do, or a deferred email is due again. */
static int64_t next_moment(db_t *db, const config_t *c, int64_t after)
{
        sqlite3_stmt *st = db_stmt(db, SQL_SESSION_TIMES);
        int64_t best = INT64_MAX;

        if (!st)
                return INT64_MAX;
        while (db_step(st) == 1) {
                int64_t t = plan_next_moment(c, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                                             sqlite3_column_int64(st, 2), after);
                if (t < best)
                        best = t;
        }
        sqlite3_reset(st);
        st = db_stmt(db, SQL_NEXT_RETRY);
        if (!st)
                return best;
        sqlite3_bind_text(st, 1, mail_status_to_string(MAIL_QUEUED), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, after);
        if (db_step(st) == 1 && sqlite3_column_type(st, 0) != SQLITE_NULL &&
            sqlite3_column_int64(st, 0) < best)
                best = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        return best;
}

/* A row due at t, and whether delivery would drop it then as no longer true. That matters
 * for emails queued before the dry run (a relay outage): what the simulated scans queue is
 * true when queued. */
typedef struct {
        int64_t id;
        upcoming_t u;
        bool expired;
} due_t;

static int collect_due(db_t *db, const config_t *c, int64_t t, due_t **ret, size_t *ret_n)
{
        sqlite3_stmt *st = db_stmt(db, SQL_DUE_ROWS);
        due_t *rows = NULL;
        size_t n = 0;
        int r;

        if (!st)
                return -EIO;
        sqlite3_bind_text(st, 1, mail_status_to_string(MAIL_QUEUED), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, t);
        while ((r = db_step(st)) == 1) {
                due_t *p = realloc(rows, (n + 1) * sizeof(*rows));

                if (!p) {
                        r = -ENOMEM;
                        break;
                }
                rows = p;
                rows[n] = (due_t) { sqlite3_column_int64(st, 0),
                                    { t, kind_from_string(col_text(st, 1)), sqlite3_column_int64(st, 2),
                                      sqlite3_column_int64(st, 3) }, false };
                rows[n].expired = outbox_stale(db, c, rows[n].u.session_id, rows[n].u.registration_id,
                                               rows[n].u.kind, col_text(st, 4), t) != NULL;
                n++;
        }
        sqlite3_reset(st);
        *ret = rows;
        *ret_n = n;
        return r < 0 ? r : 0;
}

/* Hand over what would be sent at t, and retire it (sent or expired) in the copy. */
static int emit(db_t *db, const config_t *c, int64_t t, int (*fn)(const upcoming_t *, void *),
                void *userdata)
{
        due_t *rows = NULL;
        size_t n = 0;
        int r;

        r = collect_due(db, c, t, &rows, &n);
        for (size_t i = 0; i < n && r >= 0; i++) {
                sqlite3_stmt *st = db_stmt(db, SQL_RETIRE);

                if (!st) {
                        r = -EIO;
                        break;
                }
                sqlite3_bind_int64(st, 1, rows[i].id);
                sqlite3_bind_text(st, 2, mail_status_to_string(rows[i].expired ? MAIL_EXPIRED : MAIL_SENT),
                                  -1, SQLITE_STATIC);
                r = db_step_done(st);
                if (r >= 0 && !rows[i].expired)
                        r = fn(&rows[i].u, userdata);
        }
        free(rows);
        return r < 0 ? r : 0;
}

int report_upcoming(db_t *db, const config_t *c, int64_t now, int64_t until,
                    int (*fn)(const upcoming_t *u, void *userdata), void *userdata)
{
        db_t *copy = NULL;
        int64_t t = now;
        int r;

        r = db_open_copy(db, &copy);
        if (r < 0)
                return r;
        journal_quiet(true); /* the simulated scans are not events */
        while (t <= until) {
                r = scan_run(copy, c, t, NULL);
                if (r >= 0)
                        r = emit(copy, c, t, fn, userdata);
                if (r < 0)
                        break;
                t = next_moment(copy, c, t);
        }
        journal_quiet(false);
        db_close(copy);
        return r < 0 ? r : 0;
}

/* ---- preview ------------------------------------------------------------------------------ */

static const char SQL_FIND_MID[] =
        "SELECT message_id FROM outbox WHERE ifnull(registration_id, 0) = ?1 AND kind = ?2"
        " AND session_id = ?3 ORDER BY id DESC LIMIT 1";

/* The Message-ID the email was sent (or queued) with, if it was. */
static char *sent_message_id(db_t *db, const mail_key_t *key)
{
        sqlite3_stmt *st = db_stmt(db, SQL_FIND_MID);
        char *mid = NULL;

        if (!st)
                return NULL;
        sqlite3_bind_int64(st, 1, key->registration_id);
        sqlite3_bind_text(st, 2, kind_to_string(key->kind), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, key->session_id);
        if (db_step(st) == 1)
                mid = db_col_text(st, 0);
        sqlite3_reset(st);
        return mid;
}

/* Whom a session email goes to: the trainer, else the first roster_to address (the close
 * step sends one to each); without either, the registration's own address. */
static char *session_recipient(db_t *db, const config_t *c, const registration_t *g)
{
        session_t s;
        char *to = NULL;

        if (db_session_get_plain(db, g->session_id, &s) > 0) {
                if (s.trainer_email && *s.trainer_email)
                        to = strdup(s.trainer_email);
                session_clear(&s);
        }
        if (!to)
                to = strdup(c->n_roster_to ? c->roster_to[0] : g->email);
        return to;
}

static int render(db_t *db, const config_t *c, const templates_t *t, const registration_t *g,
                  kind_t kind, int64_t now, char **ret, size_t *ret_size, char **ret_why)
{
        bool to_session = kind_info(kind)->to_session;
        char fake[128], occasion[32] = "", *mid = NULL, *to = NULL, *err = NULL;
        mail_key_t key = { kind, occasion, g->session_id, to_session ? 0 : g->id, g->email, NULL };
        int r;

        if (kind == KIND_ELEARNING_REMINDER && c->n_reminders_elearning)
                plan_duration_name(config_last_reminder(c), occasion, sizeof(occasion));
        if (to_session && !(key.recipient = to = session_recipient(db, c, g)))
                return -ENOMEM;
        mid = sent_message_id(db, &key);
        snprintf(fake, sizeof(fake), "<preview.%lld.%s@meccd.invalid>", (long long) g->id,
                 kind_to_string(kind));
        key.message_id = mid ? mid : fake;
        r = outbox_build(db, c, t, &key, now, ret, ret_size, &err);
        if (r < 0)
                (void) say(r == -EINVAL ? ADMIN_REFUSED : r, ret_why, "cannot render: %s",
                           err ? err : r == -EINVAL ? "the address is not valid (erased?)" : strerror(-r));
        free(err);
        free(mid);
        free(to);
        return r == -EINVAL ? ADMIN_REFUSED : r;
}

int report_preview(db_t *db, const config_t *c, int64_t now, kind_t kind, int64_t registration_id,
                   char **ret, size_t *ret_size, char **ret_why)
{
        templates_t *t = NULL;
        registration_t g;
        char *err = NULL;
        int r;

        if (!kind_info(kind))
                return -EINVAL;
        r = db_registration_get(db, registration_id, &g);
        if (r == 0)
                return say(ADMIN_NOT_FOUND, ret_why, "no registration %lld", (long long) registration_id);
        if (r < 0)
                return r;
        r = templates_load(c->templates, c, &t, &err);
        if (r < 0) {
                r = say(ADMIN_CONFIG, ret_why, "%s", err ? err : "cannot load the templates");
                goto out;
        }
        r = render(db, c, t, &g, kind, now, ret, ret_size, ret_why);
out:
        free(err);
        templates_free(t);
        registration_clear(&g);
        return r;
}
