/* report.c - what admins read: lists, the health verdict, the dry run, a preview. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "journal.h"
#include "outbox.h"
#include "plan.h"
#include "render.h"
#include "report.h"
#include "runas.h"
#include "scan.h"

/* ---- lists -------------------------------------------------------------------------------- */

static const char SQL_SESSIONS[] = "SELECT id FROM sessions ORDER BY starts_at, id";
static const char SQL_SESSIONS_IN[] = "SELECT id FROM sessions WHERE status = ?1 ORDER BY starts_at, id";
static const char SQL_REGS[] = "SELECT id FROM registrations ORDER BY session_id, registered_at, id";
static const char SQL_REGS_OF[] =
        "SELECT id FROM registrations WHERE session_id = ?1 ORDER BY registered_at, id";
/* ?1 NULL: every row */
static const char SQL_OUTBOX[] =
        "SELECT id, ifnull(registration_id, 0), session_id, kind, occasion, recipient, status,"
        " attempts, created_at, ifnull(sent_at, 0), next_attempt_at, last_error, message_id"
        " FROM outbox WHERE ?1 IS NULL OR status = ?1 ORDER BY id";

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
        sqlite3_stmt *st = db_stmt(db, SQL_OUTBOX);
        int r = 0, q = 0;

        if (!st)
                return -EIO;
        if (status >= 0)
                sqlite3_bind_text(st, 1, mail_status_to_string(status), -1, SQLITE_STATIC);
        else
                sqlite3_bind_null(st, 1);
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

static const char SQL_OPEN_COUNT[] = "SELECT count(*) FROM sessions WHERE status = ?1";

int report_status_line(db_t *db, long *ret_open, long *ret_queued, long *ret_failed)
{
        sqlite3_stmt *st = db_stmt(db, SQL_OPEN_COUNT);
        int r;

        if (!st)
                return -EIO;
        sqlite3_bind_text(st, 1, session_status_to_string(SESSION_OPEN), -1, SQLITE_STATIC);
        r = db_step(st);
        *ret_open = r == 1 ? sqlite3_column_int64(st, 0) : 0;
        sqlite3_reset(st);
        if (r < 0)
                return r;
        return outbox_counts(db, ret_queued, ret_failed);
}
/* Still to come (?2: now), not cancelled, and the address bounced: the coordinator's to fix. */
static const char SQL_COUNT_UNREACHABLE[] =
        "SELECT count(*) FROM registrations r JOIN sessions s ON s.id = r.session_id"
        " WHERE r.unreachable_at IS NOT NULL AND r.status <> ?1 AND s.starts_at > ?2"
        " AND s.status IN ('open', 'closed')";
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
        if (r >= 0)
                r = count(db, SQL_COUNT_UNREACHABLE, reg_status_to_string(REG_CANCELLED), now, &h.unreachable);
        if (r < 0)
                return r;
        last = db_meta_get(db, "last_scan_at");
        h.last_scan_at = last ? strtoll(last, NULL, 10) : 0;
        free(last);
        h.scanning = h.last_scan_at && now - h.last_scan_at < 3 * c->scan_interval + 60;
        r = report_held_back(db, NULL, &h.held_back);
        if (r < 0)
                return r;
        r = health_problems(db, c, now, &h);
        if (r < 0)
                return r;
        h.healthy = h.scanning && h.failed == 0 && h.overdue == 0 && !h.relay_problem[0] &&
                    h.stuck == 0 && h.held_sessions == 0 && h.held_back == 0 && !h.db_problem[0];
        *ret = h;
        return 0;
}

static const char SQL_HELD_BACK[] =
        "SELECT id, problem FROM sessions WHERE problem IS NOT NULL AND status IN ('open', 'closed')"
        " ORDER BY starts_at, id";

/* fn NULL: userdata is a long that counts them. */
int report_held_back(db_t *db, int (*fn)(int64_t session_id, const char *problem, void *userdata),
                     void *userdata)
{
        sqlite3_stmt *st = db_stmt(db, SQL_HELD_BACK);
        int r, q = 0;

        if (!st)
                return -EIO;
        while (q >= 0 && (r = db_step(st)) == 1) {
                if (fn)
                        q = fn(sqlite3_column_int64(st, 0), col_text(st, 1), userdata);
                else
                        (*(long *) userdata)++;
        }
        sqlite3_reset(st);
        return q < 0 ? q : r < 0 ? r : 0;
}

static const char SQL_SOURCE[] =
        "SELECT ifnull(last_attempt_at, 0), ifnull(last_good_at, 0), applied, skipped, last_error"
        " FROM sources WHERE name = ?1";

int report_sources(db_t *db, const config_t *c, int (*fn)(const source_row_t *s, void *userdata),
                   void *userdata)
{
        sqlite3_stmt *st = db_stmt(db, SQL_SOURCE);
        int r = 0;

        if (!st)
                return -EIO;
        for (size_t i = 0; i < c->n_sources && r >= 0; i++) {
                source_row_t s = { .name = c->sources[i].name, .url = c->sources[i].url };

                db_bind_text(st, 1, s.name);
                r = db_step(st);
                if (r == 1) {
                        s.last_attempt_at = sqlite3_column_int64(st, 0);
                        s.last_good_at = sqlite3_column_int64(st, 1);
                        s.applied = (long) sqlite3_column_int64(st, 2);
                        s.skipped = (long) sqlite3_column_int64(st, 3);
                        s.last_error = col_text(st, 4);
                }
                if (r >= 0)
                        r = fn(&s, userdata);
                sqlite3_reset(st);
        }
        return r < 0 ? r : 0;
}

/* ---- the dry run -------------------------------------------------------------------------- */

static const char SQL_SESSION_TIMES[] =
        "SELECT starts_at, ends_at, ifnull(closes_at, 0), course FROM sessions WHERE erased_at IS NULL";
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
                /* each session falls due by its own course's offsets (none for a course the
                 * config does not know: it is held back) */
                const config_t *k = config_settings(c, (const char *) sqlite3_column_text(st, 3));
                int64_t t = k ? plan_next_moment(k, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                                                 sqlite3_column_int64(st, 2), after)
                              : INT64_MAX;
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

/* A row of SQL_DUE_ROWS, as due at t. */
static due_t due_from_row(db_t *db, const config_t *c, sqlite3_stmt *st, int64_t t)
{
        due_t d = { sqlite3_column_int64(st, 0),
                    { t, kind_from_string(col_text(st, 1)), sqlite3_column_int64(st, 2),
                      sqlite3_column_int64(st, 3) }, false };

        d.expired = outbox_stale(db, c, d.u.session_id, d.u.registration_id, d.u.kind, col_text(st, 4),
                                 t) != NULL;
        return d;
}

static int collect_due(db_t *db, const config_t *c, int64_t t, due_t **ret, size_t *ret_n)
{
        sqlite3_stmt *st = db_stmt(db, SQL_DUE_ROWS);
        due_t *rows = NULL;
        size_t n = 0, cap = 0;
        int r;

        if (!st)
                return -EIO;
        sqlite3_bind_text(st, 1, mail_status_to_string(MAIL_QUEUED), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, t);
        while ((r = db_step(st)) == 1) {
                r = array_grow((void **) &rows, &cap, n + 1, sizeof(*rows));
                if (r < 0)
                        break;
                rows[n++] = due_from_row(db, c, st, t);
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
                (void) admin_say(r == -EINVAL ? ADMIN_REFUSED : r, ret_why, "cannot render: %s",
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
                return admin_say(ADMIN_NOT_FOUND, ret_why, "no registration %lld", (long long) registration_id);
        if (r < 0)
                return r;
        r = templates_load(c->templates, c, &t, &err);
        if (r < 0) {
                r = admin_say(ADMIN_CONFIG, ret_why, "%s", err ? err : "cannot load the templates");
                goto out;
        }
        r = render(db, c, t, &g, kind, now, ret, ret_size, ret_why);
out:
        free(err);
        templates_free(t);
        registration_clear(&g);
        return r;
}

/* ---- the programme report ------------------------------------------------------------------- */

const char *const report_field_names[REPORT_FIELDS] = {
        "session_id", "title", "course", "starts_at", "capacity", "registrations", "booked",
        "not_placed", "late", "cancelled", "invalid", "elearning_done", "attended", "absent",
        "attendance_unknown", "emails_sent", "emails_failed", "unreachable",
};

/* A waiting-list place never given is a late registration told not_placed; a late one is
 * told late. Unreachable: a registration an email to which was refused for good. */
#define REPORT_COUNTS                                                                              \
        " count(r.id), ifnull(sum(r.status = 'booked'), 0),"                                      \
        " ifnull(sum(r.status = 'late' AND EXISTS (SELECT 1 FROM outbox o WHERE"                  \
        "   o.registration_id = r.id AND o.kind = 'not_placed')), 0),"                             \
        " ifnull(sum(r.status = 'late' AND NOT EXISTS (SELECT 1 FROM outbox o WHERE"              \
        "   o.registration_id = r.id AND o.kind = 'not_placed')), 0),"                             \
        " ifnull(sum(r.status = 'cancelled'), 0), ifnull(sum(r.status = 'invalid'), 0),"          \
        " ifnull(sum(r.status = 'booked' AND r.elearning_done_at < s.starts_at), 0),"             \
        " ifnull(sum(r.status = 'booked' AND r.attended = 1), 0),"                                \
        " ifnull(sum(r.status = 'booked' AND r.attended = 0), 0),"                                \
        " ifnull(sum(r.status = 'booked' AND r.attended IS NULL), 0),"                            \
        " ifnull(sum(EXISTS (SELECT 1 FROM outbox o WHERE o.registration_id = r.id"               \
        "   AND o.status = 'failed')), 0)"

static const char SQL_REPORT_SESSIONS[] =
        "SELECT s.id, s.title, s.course, s.starts_at, s.capacity," REPORT_COUNTS ","
        " (SELECT count(*) FROM outbox o WHERE o.session_id = s.id AND o.status = 'sent'),"
        " (SELECT count(*) FROM outbox o WHERE o.session_id = s.id AND o.status = 'failed')"
        " FROM sessions s LEFT JOIN registrations r ON r.session_id = s.id"
        " WHERE s.starts_at >= ?1 AND s.starts_at < ?2 AND (?3 IS NULL OR ifnull(s.course, '') = ?3)"
        " GROUP BY s.id ORDER BY s.starts_at, s.id";
/* by organisation, the emails are those to its registrations (the roster is the session's) */
static const char SQL_REPORT_ORGS[] =
        "SELECT ifnull(r.organisation, '') AS org," REPORT_COUNTS ","
        " ifnull(sum((SELECT count(*) FROM outbox o WHERE o.registration_id = r.id AND o.status = 'sent')), 0),"
        " ifnull(sum((SELECT count(*) FROM outbox o WHERE o.registration_id = r.id AND o.status = 'failed')), 0)"
        " FROM registrations r JOIN sessions s ON s.id = r.session_id WHERE s.id = ?1"
        " GROUP BY org ORDER BY org";

static void read_counts(sqlite3_stmt *st, int i, report_counts_t *n)
{
        long *v[] = { &n->registrations, &n->booked, &n->not_placed, &n->late, &n->cancelled,
                      &n->invalid, &n->elearning_done, &n->attended, &n->absent,
                      &n->attendance_unknown, &n->unreachable, &n->emails_sent, &n->emails_failed };

        for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++)
                *v[k] = sqlite3_column_int(st, i + (int) k);
}

static void add_counts(report_counts_t *to, const report_counts_t *n)
{
        long *a = (long *) to;
        const long *b = (const long *) n;

        for (size_t k = 0; k < sizeof(*to) / sizeof(long); k++)
                a[k] += b[k];
}

typedef struct {
        char *name;
        report_counts_t n;
} org_total_t;

static int org_add(org_total_t **v, size_t *nv, const char *name, const report_counts_t *n)
{
        org_total_t *p;
        size_t i;

        for (i = 0; i < *nv; i++)
                if (strcmp((*v)[i].name, name) == 0)
                        break;
        if (i == *nv) {
                p = realloc(*v, (*nv + 1) * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                *v = p;
                p[i] = (org_total_t) { strdup(name), { 0 } };
                if (!p[i].name)
                        return -ENOMEM;
                (*nv)++;
        }
        add_counts(&(*v)[i].n, n);
        return 0;
}

static int cmp_org(const void *a, const void *b)
{
        return strcmp(((const org_total_t *) a)->name, ((const org_total_t *) b)->name);
}

/* The rows of one session per organisation. */
static int report_orgs(db_t *db, const report_row_t *s, org_total_t **totals, size_t *n_totals,
                       int (*fn)(const report_row_t *r, void *userdata), void *userdata)
{
        sqlite3_stmt *st = db_stmt(db, SQL_REPORT_ORGS);
        struct {
                char *name;
                report_counts_t n;
        } *rows = NULL;
        size_t n = 0;
        int r, q = 0;

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, s->session_id);
        /* read first: fn may use the database */
        while ((r = db_step(st)) == 1) {
                void *p = realloc(rows, (n + 1) * sizeof(*rows));

                if (!p) {
                        r = -ENOMEM;
                        break;
                }
                rows = p;
                rows[n].name = db_col_text(st, 0);
                read_counts(st, 1, &rows[n].n);
                n++;
        }
        sqlite3_reset(st);
        for (size_t i = 0; r >= 0 && q >= 0 && i < n; i++) {
                report_row_t w = *s;

                w.organisation = rows[i].name ? rows[i].name : "";
                w.n = rows[i].n;
                q = org_add(totals, n_totals, w.organisation, &w.n);
                if (q >= 0)
                        q = fn(&w, userdata);
        }
        for (size_t i = 0; i < n; i++)
                free(rows[i].name);
        free(rows);
        return r < 0 ? r : q < 0 ? q : 0;
}

int report_programme(db_t *db, int64_t from, int64_t until, const char *course, bool by_org,
                     int (*fn)(const report_row_t *r, void *userdata), void *userdata)
{
        sqlite3_stmt *st = db_stmt(db, SQL_REPORT_SESSIONS);
        report_row_t *rows = NULL, total = { .title = "total" };
        org_total_t *orgs = NULL;
        size_t n = 0, n_orgs = 0;
        int r, q = 0;

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, from);
        sqlite3_bind_int64(st, 2, until);
        db_bind_text(st, 3, course);
        if (course && !*course)
                sqlite3_bind_text(st, 3, "", -1, SQLITE_STATIC);
        while ((r = db_step(st)) == 1) {
                report_row_t *p = realloc(rows, (n + 1) * sizeof(*rows));

                if (!p) {
                        r = -ENOMEM;
                        break;
                }
                rows = p;
                rows[n] = (report_row_t) {
                        .session_id = sqlite3_column_int64(st, 0), .title = (const char *) db_col_text(st, 1),
                        .course = (const char *) db_col_text(st, 2), .starts_at = sqlite3_column_int64(st, 3),
                        .capacity = sqlite3_column_int(st, 4), .organisation = by_org ? "" : NULL,
                };
                read_counts(st, 5, &rows[n].n);
                n++;
        }
        sqlite3_reset(st);
        for (size_t i = 0; r >= 0 && q >= 0 && i < n; i++) {
                report_row_t w = rows[i];

                w.organisation = NULL;
                total.capacity += w.capacity;
                add_counts(&total.n, &w.n);
                q = fn(&w, userdata);
                if (q >= 0 && by_org)
                        q = report_orgs(db, &rows[i], &orgs, &n_orgs, fn, userdata);
        }
        if (r >= 0 && q >= 0)
                q = fn(&total, userdata);
        if (by_org && orgs)
                qsort(orgs, n_orgs, sizeof(*orgs), cmp_org);
        for (size_t i = 0; r >= 0 && q >= 0 && i < n_orgs; i++) {
                report_row_t w = { .title = "total", .organisation = orgs[i].name, .n = orgs[i].n };

                q = fn(&w, userdata);
        }
        for (size_t i = 0; i < n; i++) {
                free((char *) rows[i].title);
                free((char *) rows[i].course);
        }
        for (size_t i = 0; i < n_orgs; i++)
                free(orgs[i].name);
        free(orgs);
        free(rows);
        return r < 0 ? r : q < 0 ? q : 0;
}
