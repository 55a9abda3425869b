/* outbox.c - the life of one email: queued -> sent | failed | expired. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "addr.h"
#include "journal.h"
#include "outbox.h"
#include "plan.h"
#include "smtp.h"

struct outbox {
        db_t *db;
        const config_t *c;
        const templates_t *t;
        smtp_t *smtp;
        char *password;
        double tokens;          /* max_per_minute token bucket */
        struct timespec refilled;
};

/* ---- queueing ------------------------------------------------------------------------ */

static const char SQL_QUEUE[] =
        "INSERT OR IGNORE INTO outbox(session_id, registration_id, kind, occasion, recipient,"
        " created_at, next_attempt_at, message_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)";

static void id_part(const char *s, char *buf, size_t n)
{
        size_t j = 0;

        for (; *s && j + 1 < n; s++)
                buf[j++] = ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                            (*s >= '0' && *s <= '9')) ? *s : '-';
        buf[j] = '\0';
}

int outbox_queue(db_t *db, const config_t *c, int64_t session_id, int64_t registration_id,
                 const char *kind, const char *occasion, const char *recipient, int64_t now)
{
        sqlite3_stmt *st = db_stmt(db, SQL_QUEUE);
        char *instance = db_meta_get(db, "instance"), mid[512], occ[96];
        const char *domain = strrchr(c->smtp.from_addr, '@');
        int r;

        if (!st || !instance) {
                free(instance);
                return -EIO;
        }
        /* derived from the occasion, so the same email always carries the same id */
        id_part(occasion, occ, sizeof(occ));
        snprintf(mid, sizeof(mid), "<%lld.%lld.%s%s%s.%s%s>", (long long) session_id,
                 (long long) registration_id, kind, *occ ? "." : "", occ, instance,
                 domain ? domain : "@meccd.invalid");
        free(instance);
        sqlite3_bind_int64(st, 1, session_id);
        if (registration_id)
                sqlite3_bind_int64(st, 2, registration_id);
        sqlite3_bind_text(st, 3, kind, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, occasion, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, recipient, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, now);
        sqlite3_bind_text(st, 7, mid, -1, SQLITE_TRANSIENT);
        r = db_step_done(st);
        if (r < 0)
                return r;
        return sqlite3_changes(db_handle(db)) > 0;
}

static const char SQL_RECOVER[] =
        "UPDATE outbox SET sending = 0, next_attempt_at = min(next_attempt_at, ?1)"
        " WHERE sending = 1";

int outbox_recover(db_t *db, int64_t now)
{
        sqlite3_stmt *st = db_stmt(db, SQL_RECOVER);
        int r;

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, now);
        r = db_step_done(st);
        return r < 0 ? r : sqlite3_changes(db_handle(db));
}

int64_t outbox_backoff(unsigned attempts)
{
        int64_t d = 60;

        for (unsigned i = 1; i < attempts && d < 3600; i++)
                d *= 2;
        return d > 3600 ? 3600 : d;
}

static const char SQL_COUNTS[] =
        "SELECT (SELECT count(*) FROM outbox WHERE status = 'queued'),"
        " (SELECT count(*) FROM outbox WHERE status = 'failed')";

int outbox_counts(db_t *db, long *queued, long *failed)
{
        sqlite3_stmt *st = db_stmt(db, SQL_COUNTS);
        int r;

        if (!st)
                return -EIO;
        r = db_step(st);
        if (r == 1) {
                *queued = sqlite3_column_int64(st, 0);
                *failed = sqlite3_column_int64(st, 1);
        }
        sqlite3_reset(st);
        return r < 0 ? r : 0;
}

/* ---- delivery -------------------------------------------------------------------------- */

outbox_t *outbox_new(db_t *db, const config_t *c, const templates_t *t)
{
        outbox_t *o = calloc(1, sizeof(*o));

        if (!o)
                return NULL;
        o->db = db;
        o->c = c;
        o->t = t;
        o->tokens = c->smtp.max_per_minute;
        clock_gettime(CLOCK_MONOTONIC, &o->refilled);
        return o;
}

outbox_t *outbox_free(outbox_t *o)
{
        if (!o)
                return NULL;
        smtp_free(o->smtp);
        if (o->password) {
                explicit_bzero(o->password, strlen(o->password));
                free(o->password);
        }
        free(o);
        return NULL;
}

/* true when the rate limit allows one more message now */
static bool take_token(outbox_t *o)
{
        struct timespec now;
        double elapsed;

        clock_gettime(CLOCK_MONOTONIC, &now);
        elapsed = (double) (now.tv_sec - o->refilled.tv_sec) + (now.tv_nsec - o->refilled.tv_nsec) / 1e9;
        o->refilled = now;
        o->tokens += elapsed * o->c->smtp.max_per_minute / 60.0;
        if (o->tokens > o->c->smtp.max_per_minute)
                o->tokens = o->c->smtp.max_per_minute;
        if (o->tokens < 1.0)
                return false;
        o->tokens -= 1.0;
        return true;
}

typedef struct {
        int64_t id, session_id, registration_id, first_attempt_at;
        char *kind, *occasion, *recipient, *message_id, *body;
        size_t body_size;
        unsigned attempts;
} row_t;

static void row_clear(row_t *w)
{
        free(w->kind);
        free(w->occasion);
        free(w->recipient);
        free(w->message_id);
        free(w->body);
        memset(w, 0, sizeof(*w));
}

static const char SQL_DUE[] =
        "SELECT id, session_id, ifnull(registration_id, 0), kind, occasion, recipient, message_id,"
        " attempts, ifnull(first_attempt_at, 0), body FROM outbox"
        " WHERE status = 'queued' AND sending = 0 AND next_attempt_at <= ?1"
        " ORDER BY next_attempt_at, id LIMIT 1";

static int next_due(db_t *db, int64_t now, row_t *w)
{
        sqlite3_stmt *st = db_stmt(db, SQL_DUE);
        int r;

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, now);
        r = db_step(st);
        if (r == 1) {
                w->id = sqlite3_column_int64(st, 0);
                w->session_id = sqlite3_column_int64(st, 1);
                w->registration_id = sqlite3_column_int64(st, 2);
                w->kind = db_col_text(st, 3);
                w->occasion = db_col_text(st, 4);
                w->recipient = db_col_text(st, 5);
                w->message_id = db_col_text(st, 6);
                w->attempts = sqlite3_column_int(st, 7);
                w->first_attempt_at = sqlite3_column_int64(st, 8);
                if (sqlite3_column_type(st, 9) != SQLITE_NULL) {
                        w->body_size = sqlite3_column_bytes(st, 9);
                        w->body = malloc(w->body_size + 1);
                        if (w->body) {
                                memcpy(w->body, sqlite3_column_blob(st, 9), w->body_size);
                                w->body[w->body_size] = '\0';
                        }
                }
                if (!w->kind || !w->occasion || !w->recipient || !w->message_id)
                        r = -ENOMEM;
        }
        sqlite3_reset(st);
        return r;
}

/* Why a queued email is no longer true, or NULL when it still is (SPEC 5, expiry). */
static const char *stale(db_t *db, const config_t *c, const row_t *w, int64_t now)
{
        static char why[96];
        session_t s = { 0 };
        registration_t g = { 0 };
        const char *r = NULL;

        if (db_session_get(db, w->session_id, &s) <= 0)
                return "the session no longer exists";
        if (w->registration_id && db_registration_get(db, w->registration_id, &g) <= 0) {
                r = "the registration no longer exists";
                goto out;
        }
        if (!*w->recipient || (w->registration_id && !*g.email))
                r = "the address was erased";
        else if (w->registration_id && !strcmp(g.status, "cancelled"))
                r = "the registration was cancelled";
        else if (!strcmp(s.status, "cancelled") && strcmp(w->kind, "session_cancelled") &&
                 strcmp(w->kind, "late") && strcmp(w->kind, "not_placed"))
                r = "the session was cancelled";
        else if (!strcmp(w->kind, "joining_link") && now >= s.starts_at)
                r = "the session has already started";
        else if (!strcmp(w->kind, "session_changed") && now >= s.starts_at)
                r = "the session has already started";
        else if (!strcmp(w->kind, "elearning_reminder") && g.elearning_done_at)
                r = "the e-learning is done";
        else if (!strcmp(w->kind, "promoted") && now >= plan_cutoff(c, s.starts_at, s.closes_at))
                r = "bookings have closed";
        else if ((!strcmp(w->kind, "confirmation") || !strcmp(w->kind, "promoted")) &&
                 strcmp(g.status, "booked"))
                r = "the registration is no longer booked";
        else if (!strcmp(w->kind, "waitlisted") && strcmp(g.status, "waitlisted"))
                r = "the registration is no longer on the waiting list";
        if (r) {
                snprintf(why, sizeof(why), "%s", r);
                r = why;
        }
out:
        session_clear(&s);
        registration_clear(&g);
        return r;
}

static const char SQL_EXPIRE[] =
        "UPDATE outbox SET status = 'expired', last_error = ?2 WHERE id = ?1";
static const char SQL_ATTEMPT[] =
        "UPDATE outbox SET sending = 1, attempts = attempts + 1,"
        " first_attempt_at = ifnull(first_attempt_at, ?2), body = ?3 WHERE id = ?1";
static const char SQL_SENT[] =
        "UPDATE outbox SET status = 'sent', sending = 0, sent_at = ?2, last_error = NULL WHERE id = ?1";
static const char SQL_RETRY[] =
        "UPDATE outbox SET sending = 0, next_attempt_at = ?2, last_error = ?3 WHERE id = ?1";
static const char SQL_FAIL[] =
        "UPDATE outbox SET status = 'failed', sending = 0, last_error = ?2 WHERE id = ?1";

/* One short transaction per state change: each is durable before the next step. */
static int update(db_t *db, const char *sql, int64_t id, int64_t t, const char *text,
                  const char *blob, size_t blob_size)
{
        sqlite3_stmt *st = db_stmt(db, sql);
        int n = st ? sqlite3_bind_parameter_count(st) : 0;

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, id);
        if (sql == SQL_EXPIRE || sql == SQL_FAIL)
                db_bind_text(st, 2, text);
        else if (n >= 2)
                sqlite3_bind_int64(st, 2, t);
        if (sql == SQL_RETRY)
                db_bind_text(st, 3, text);
        if (sql == SQL_ATTEMPT)
                sqlite3_bind_blob(st, 3, blob, (int) blob_size, SQLITE_STATIC);
        return db_step_done(st);
}

static void log_row(int prio, const char *mid, const row_t *w, const char *fmt, const char *detail)
{
        log_ctx_t ctx = { .message_id = mid, .session = w->session_id,
                          .registration = w->registration_id, .outbox = w->id, .kind = w->kind };
        log_ctx(prio, &ctx, fmt, w->kind, (long long) w->id, detail);
}

static int ensure_smtp(outbox_t *o)
{
        char *err = NULL;
        int r;

        if (o->smtp)
                return 0;
        if (!o->password) {
                r = smtp_load_password(&o->c->smtp, &o->password, &err);
                if (r < 0) {
                        log_msg(LOG_ERR, "%s", err ? err : "cannot read the SMTP password");
                        free(err);
                        return r;
                }
        }
        return smtp_new(&o->c->smtp, o->password, &o->smtp);
}

static int outcome(outbox_t *o, const row_t *w, const smtp_result_t *res, int64_t now,
                   deliver_stats_t *stats)
{
        int64_t give_up = clock_shift(w->first_attempt_at ? w->first_attempt_at : now,
                                      &o->c->smtp.give_up_after, +1);

        switch (res->outcome) {
        case SMTP_SENT:
                stats->sent++;
                log_row(LOG_INFO, MID_MAIL_SENT, w, "%s email %lld sent%s", "");
                return update(o->db, SQL_SENT, w->id, now, NULL, NULL, 0);
        case SMTP_PERMANENT:
                stats->failed++;
                log_row(LOG_WARNING, MID_MAIL_FAILED, w, "%s email %lld refused by the relay: %s", res->reply);
                return update(o->db, SQL_FAIL, w->id, now, res->reply, NULL, 0);
        default:
                if (res->outcome == SMTP_UNREACHABLE)
                        stats->server_down = true;
                if (now >= give_up) {
                        stats->failed++;
                        log_row(LOG_WARNING, MID_MAIL_FAILED, w, "%s email %lld given up: %s", res->reply);
                        return update(o->db, SQL_FAIL, w->id, now, res->reply, NULL, 0);
                }
                stats->deferred++;
                log_row(LOG_NOTICE, MID_MAIL_DEFERRED, w, "%s email %lld deferred: %s", res->reply);
                return update(o->db, SQL_RETRY, w->id, now + outbox_backoff(w->attempts + 1),
                              res->reply, NULL, 0);
        }
}

/* Render (once: a retry sends the very same bytes), record the attempt, send. */
static int deliver_row(outbox_t *o, row_t *w, int64_t now, deliver_stats_t *stats)
{
        const char *why = stale(o->db, o->c, w, now);
        smtp_result_t res = { 0 };
        char *err = NULL;
        int r;

        if (why) {
                stats->expired++;
                log_row(LOG_INFO, MID_MAIL_EXPIRED, w, "%s email %lld dropped: %s", why);
                return update(o->db, SQL_EXPIRE, w->id, now, why, NULL, 0);
        }
        if (!w->body) {
                mail_key_t key = { w->kind, w->occasion, w->session_id, w->registration_id,
                                   w->recipient, w->message_id };

                r = render_mail(o->db, o->c, o->t, &key, now, &w->body, &w->body_size, &err);
                if (r < 0) {
                        stats->failed++;
                        log_row(LOG_ERR, MID_MAIL_FAILED, w, "%s email %lld cannot be built: %s",
                                err ? err : "invalid recipient or template");
                        r = update(o->db, SQL_FAIL, w->id, now, err ? err : "cannot be built", NULL, 0);
                        free(err);
                        return r;
                }
        }
        r = ensure_smtp(o);
        if (r < 0) {
                stats->server_down = true;
                return 0;
        }
        r = update(o->db, SQL_ATTEMPT, w->id, now, NULL, w->body, w->body_size);
        if (r < 0)
                return r;
        w->attempts++;
        smtp_send(o->smtp, o->c->smtp.from_addr, w->recipient, w->body, w->body_size, &res);
        return outcome(o, w, &res, now, stats);
}

int outbox_deliver(outbox_t *o, int64_t now, unsigned max, deliver_stats_t *stats)
{
        int handled = 0, r = 0;

        while ((!max || (unsigned) handled < max) && !stats->server_down) {
                row_t w = { 0 };

                if (!take_token(o)) {
                        stats->rate_limited = true;
                        break;
                }
                r = next_due(o->db, now, &w);
                if (r <= 0) {
                        o->tokens += 1.0;
                        row_clear(&w);
                        break;
                }
                r = deliver_row(o, &w, now, stats);
                row_clear(&w);
                if (r < 0)
                        break;
                handled++;
        }
        return r < 0 ? r : handled;
}
