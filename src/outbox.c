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

/* An outcome the database would not take (locked): written before anything new is sent,
 * so its row neither stays marked as in flight nor goes twice. */
typedef struct unrecorded {
        struct unrecorded *next;
        const char *sql;
        int64_t id, t;
        char *text;
} unrecorded_t;

struct outbox {
        db_t *db;
        const config_t *c;
        const templates_t *t;
        sd_event *event;
        smtp_pool_t *pool;
        bool rebuild;           /* settings changed: new pool once idle */
        bool stopping;
        bool pumping;
        char *password;
        double tokens;          /* max_per_minute token bucket */
        struct timespec refilled;
        sd_event_source *wake;  /* the rate limit's refill */
        deliver_stats_t stats;
        void (*idle_fn)(void *);
        void *idle_data;
        unrecorded_t *unrecorded;
        struct row *flying;     /* rows handed to SMTP: freed here if abandoned at stop */
};

static void free_flying(outbox_t *o);

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
                 kind_t kind, const char *occasion, const char *recipient, int64_t now)
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
                 (long long) registration_id, kind_to_string(kind), *occ ? "." : "", occ, instance,
                 domain ? domain : "@meccd.invalid");
        free(instance);
        sqlite3_bind_int64(st, 1, session_id);
        if (registration_id)
                sqlite3_bind_int64(st, 2, registration_id);
        sqlite3_bind_text(st, 3, kind_to_string(kind), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, occasion, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, recipient, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, now);
        sqlite3_bind_text(st, 7, mid, -1, SQLITE_TRANSIENT);
        r = db_step_done(st);
        if (r < 0)
                return r;
        return sqlite3_changes(db_handle(db)) > 0;
}

/* Rows are marked as sending only while queued (one expired mid-attempt has nothing
 * left to retry): saying so lets the outbox_due index find them instead of reading the
 * whole outbox history at every start. */
static const char SQL_RECOVER[] =
        "UPDATE outbox SET sending = 0, next_attempt_at = min(next_attempt_at, ?1)"
        " WHERE status = 'queued' AND sending = 1";

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
        int64_t d = OUTBOX_BACKOFF_MIN;

        for (unsigned i = 1; i < attempts && d < OUTBOX_BACKOFF_MAX; i++)
                d *= 2;
        return d > OUTBOX_BACKOFF_MAX ? OUTBOX_BACKOFF_MAX : d;
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

outbox_t *outbox_new(db_t *db, const config_t *c, const templates_t *t, sd_event *e)
{
        outbox_t *o = calloc(1, sizeof(*o));

        if (!o)
                return NULL;
        o->db = db;
        o->c = c;
        o->t = t;
        o->event = sd_event_ref(e);
        o->tokens = c->smtp.max_per_minute;
        clock_gettime(CLOCK_MONOTONIC, &o->refilled);
        return o;
}

static void forget_password(outbox_t *o)
{
        if (o->password) {
                explicit_bzero(o->password, strlen(o->password));
                free(o->password);
                o->password = NULL;
        }
}

outbox_t *outbox_free(outbox_t *o)
{
        if (!o)
                return NULL;
        smtp_pool_free(o->pool);
        free_flying(o);
        /* their rows stay marked as in flight and are retried at the next start */
        while (o->unrecorded) {
                unrecorded_t *u = o->unrecorded;

                o->unrecorded = u->next;
                free(u->text);
                free(u);
        }
        sd_event_source_disable_unref(o->wake);
        sd_event_unref(o->event);
        forget_password(o);
        free(o);
        return NULL;
}

void outbox_reconfigure(outbox_t *o, const config_t *c, const templates_t *t)
{
        o->c = c;
        o->t = t;
        o->rebuild = true;
        if (o->tokens > c->smtp.max_per_minute)
                o->tokens = c->smtp.max_per_minute;
}

void outbox_on_idle(outbox_t *o, void (*fn)(void *), void *userdata)
{
        o->idle_fn = fn;
        o->idle_data = userdata;
}

unsigned outbox_in_flight(const outbox_t *o)
{
        return o->pool ? smtp_pool_in_flight(o->pool) : 0;
}

bool outbox_busy(const outbox_t *o)
{
        int enabled = SD_EVENT_OFF;

        if (o->wake)
                (void) sd_event_source_get_enabled(o->wake, &enabled);
        return outbox_in_flight(o) > 0 || (enabled != SD_EVENT_OFF && !o->stopping);
}

const deliver_stats_t *outbox_stats(const outbox_t *o)
{
        return &o->stats;
}

void outbox_stop(outbox_t *o)
{
        o->stopping = true;
        if (o->wake)
                (void) sd_event_source_set_enabled(o->wake, SD_EVENT_OFF);
}

/* Seconds until the rate limit allows one more message; 0 when it allows one now. */
static double take_token(outbox_t *o)
{
        struct timespec now;
        double elapsed, rate = o->c->smtp.max_per_minute / 60.0;

        clock_gettime(CLOCK_MONOTONIC, &now);
        elapsed = (double) (now.tv_sec - o->refilled.tv_sec) + (now.tv_nsec - o->refilled.tv_nsec) / 1e9;
        o->refilled = now;
        o->tokens += elapsed * rate;
        if (o->tokens > o->c->smtp.max_per_minute)
                o->tokens = o->c->smtp.max_per_minute;
        if (o->tokens < 1.0)
                return (1.0 - o->tokens) / rate;
        o->tokens -= 1.0;
        return 0;
}

typedef struct row {
        outbox_t *o;
        struct row *next_flying;
        int64_t id, session_id, registration_id, first_attempt_at;
        kind_t kind;
        char *occasion, *recipient, *message_id, *body;
        size_t body_size;
        unsigned attempts;
} row_t;

static row_t *row_free(row_t *w)
{
        if (!w)
                return NULL;
        free(w->occasion);
        free(w->recipient);
        free(w->message_id);
        free(w->body);
        free(w);
        return NULL;
}

/* Abandoned in flight at stop: their rows are retried at the next start. */
static void free_flying(outbox_t *o)
{
        while (o->flying) {
                row_t *w = o->flying;

                o->flying = w->next_flying;
                row_free(w);
        }
}

static const char SQL_DUE[] =
        "SELECT id, session_id, ifnull(registration_id, 0), kind, occasion, recipient, message_id,"
        " attempts, ifnull(first_attempt_at, 0), body FROM outbox"
        " WHERE status = 'queued' AND sending = 0 AND next_attempt_at <= ?1"
        " ORDER BY next_attempt_at, id LIMIT 1";

static int next_due(db_t *db, int64_t now, row_t **ret)
{
        sqlite3_stmt *st = db_stmt(db, SQL_DUE);
        row_t *w;
        int r;

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, now);
        r = db_step(st);
        if (r == 1) {
                w = calloc(1, sizeof(*w));
                if (!w) {
                        sqlite3_reset(st);
                        return -ENOMEM;
                }
                w->id = sqlite3_column_int64(st, 0);
                w->session_id = sqlite3_column_int64(st, 1);
                w->registration_id = sqlite3_column_int64(st, 2);
                w->kind = kind_from_string((const char *) sqlite3_column_text(st, 3));
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
                if (w->kind < 0 || !w->occasion || !w->recipient || !w->message_id ||
                    (w->body_size && !w->body)) {
                        row_free(w);
                        r = -ENOMEM;
                } else
                        *ret = w;
        }
        sqlite3_reset(st);
        return r;
}

const char *outbox_stale(db_t *db, const config_t *c, int64_t session_id, int64_t registration_id,
                         kind_t kind, const char *recipient, int64_t now)
{
        const kind_info_t *k = kind_info(kind);
        session_t s = { 0 };
        registration_t g = { 0 };
        const char *r = NULL;

        if (!k)
                return "it is of an unknown kind";
        if (db_session_get_plain(db, session_id, &s) <= 0)
                return "the session no longer exists";
        if (registration_id && db_registration_get(db, registration_id, &g) <= 0) {
                r = "the registration no longer exists";
                goto out;
        }
        if (!*recipient || (registration_id && !*g.email))
                r = "the address was erased";
        else if (registration_id && g.status == REG_CANCELLED)
                r = "the registration was cancelled";
        else if ((k->drop & DROP_SESSION_CANCELLED) && s.status == SESSION_CANCELLED)
                r = "the session was cancelled";
        else if ((k->drop & DROP_AT_START) && now >= s.starts_at)
                r = "the session has already started";
        else if ((k->drop & DROP_ELEARNING_DONE) && g.elearning_done_at)
                r = "the e-learning is done";
        else if ((k->drop & DROP_AT_CUTOFF) && now >= plan_cutoff(c, s.starts_at, s.closes_at))
                r = "bookings have closed";
        else if (registration_id && k->needs >= 0 && g.status != k->needs)
                r = k->needs == REG_BOOKED ? "the registration is no longer booked"
                                           : "the registration is no longer on the waiting list";
out:
        session_clear(&s);
        registration_clear(&g);
        return r;
}

/* Candidates for "the next open sessions": more than are shown, since some may be past
 * their cutoff. */
#define NEXT_CANDIDATES (4 * RENDER_NEXT_SESSIONS)

/* The sessions still taking bookings, for the emails that offer another date. */
static int load_next(db_t *db, const config_t *c, const session_t *s, int64_t now,
                     session_t **ret, size_t *ret_n)
{
        session_t *v = NULL;
        size_t n = 0, m = 0;
        int r;

        r = db_sessions_open_after(db, now, s->id, NEXT_CANDIDATES, &v, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                if (plan_bookable(c, &v[i], now) && m < RENDER_NEXT_SESSIONS)
                        v[m++] = v[i];
                else
                        session_clear(&v[i]);
        }
        *ret = v;
        *ret_n = m;
        return 0;
}

int outbox_build(db_t *db, const config_t *c, const templates_t *t, const mail_key_t *key,
                 int64_t now, char **ret, size_t *ret_size, char **ret_err)
{
        const kind_info_t *info = kind_info(key->kind);
        session_t s = { 0 }, *next = NULL;
        registration_t g = { 0 }, *roster = NULL;
        mail_data_t d = { .session = &s };
        char *instance = NULL;
        int r;

        if (!info)
                return -EINVAL;
        r = render_needs_counts(t, key->kind) ? db_session_get(db, key->session_id, &s)
                                              : db_session_get_plain(db, key->session_id, &s);
        if (r <= 0)
                return r < 0 ? r : -ENOENT;
        if (key->registration_id) {
                r = db_registration_get(db, key->registration_id, &g);
                if (r <= 0) {
                        r = r < 0 ? r : -ENOENT;
                        goto out;
                }
                d.registration = &g;
        }
        if (key->kind == KIND_ROSTER && (r = db_session_booked(db, s.id, &roster, &d.n_roster)) < 0)
                goto out;
        if (info->next_sessions && (r = load_next(db, c, &s, now, &next, &d.n_next)) < 0)
                goto out;
        d.roster = roster;
        d.next = next;
        d.instance = instance = db_meta_get(db, "instance");
        r = render_mail(c, t, key, &d, now, ret, ret_size, ret_err);
out:
        free(instance);
        registrations_free(roster, d.n_roster);
        sessions_free(next, d.n_next);
        registration_clear(&g);
        session_clear(&s);
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
        "UPDATE outbox SET status = 'failed', sending = 0, last_error = ?3 WHERE id = ?1 AND ?2 = ?2";

/* One short transaction per state change: each is durable before the next step. All the
 * statements above take ?1 = id, ?2 = a time, ?3 = text or the body. */
static int update(db_t *db, const char *sql, int64_t id, int64_t t, const char *text,
                  const char *blob, size_t blob_size)
{
        sqlite3_stmt *st = db_stmt(db, sql);

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, id);
        if (sql == SQL_EXPIRE)
                db_bind_text(st, 2, text);
        else
                sqlite3_bind_int64(st, 2, t);
        if (blob)
                sqlite3_bind_blob(st, 3, blob, (int) blob_size, SQLITE_STATIC);
        else if (sql != SQL_EXPIRE && sql != SQL_SENT)
                db_bind_text(st, 3, text);
        return db_step_done(st);
}

static void log_row(int prio, const char *mid, const row_t *w, const char *fmt, const char *detail)
{
        log_ctx_t ctx = { .message_id = mid, .session = w->session_id,
                          .registration = w->registration_id, .outbox = w->id,
                          .kind = kind_to_string(w->kind) };
        log_ctx(prio, &ctx, fmt, kind_to_string(w->kind), (long long) w->id, detail);
}

static int ensure_pool(outbox_t *o)
{
        char *err = NULL;
        int r;

        if (o->pool && o->rebuild && smtp_pool_in_flight(o->pool) == 0) {
                o->pool = smtp_pool_free(o->pool);
                forget_password(o);
        }
        if (o->pool)
                return 0;
        o->rebuild = false;
        r = smtp_load_password(&o->c->smtp, &o->password, &err);
        if (r < 0) {
                log_msg(LOG_ERR, "%s", err ? err : "cannot read the SMTP password");
                free(err);
                return r;
        }
        return smtp_pool_new(o->event, &o->c->smtp, o->password, &o->pool);
}

static void remember(outbox_t *o, const char *sql, int64_t id, int64_t t, const char *text)
{
        unrecorded_t *u = calloc(1, sizeof(*u));

        /* without memory the row is left as in flight: retried at the next start */
        if (!u || (text && !(u->text = strdup(text)))) {
                free(u);
                return;
        }
        u->sql = sql;
        u->id = id;
        u->t = t;
        u->next = o->unrecorded;
        o->unrecorded = u;
}

static int write_unrecorded(outbox_t *o)
{
        while (o->unrecorded) {
                unrecorded_t *u = o->unrecorded;
                int r = update(o->db, u->sql, u->id, u->t, u->text, NULL, 0);

                if (r < 0)
                        return r;
                o->unrecorded = u->next;
                free(u->text);
                free(u);
        }
        return 0;
}

static void record_outcome(outbox_t *o, const row_t *w, const smtp_result_t *res, int64_t now)
{
        int64_t give_up = clock_shift(w->first_attempt_at ? w->first_attempt_at : now,
                                      &o->c->smtp.give_up_after, +1);
        const char *sql, *text = res->reply;
        int64_t t = now;
        int r;

        switch (res->outcome) {
        case SMTP_SENT:
                o->stats.sent++;
                log_row(LOG_INFO, MID_MAIL_SENT, w, "%s email %lld sent%s", "");
                sql = SQL_SENT;
                text = NULL;
                break;
        case SMTP_PERMANENT:
                o->stats.failed++;
                log_row(LOG_WARNING, MID_MAIL_FAILED, w, "%s email %lld refused by the relay: %s", res->reply);
                sql = SQL_FAIL;
                break;
        default:
                if (res->outcome == SMTP_UNREACHABLE)
                        o->stats.server_down = true;
                if (now >= give_up) {
                        o->stats.failed++;
                        log_row(LOG_WARNING, MID_MAIL_FAILED, w, "%s email %lld given up: %s", res->reply);
                        sql = SQL_FAIL;
                        break;
                }
                o->stats.deferred++;
                log_row(LOG_NOTICE, MID_MAIL_DEFERRED, w, "%s email %lld deferred: %s", res->reply);
                sql = SQL_RETRY;
                t = now + outbox_backoff(w->attempts);
        }
        r = update(o->db, sql, w->id, t, text, NULL, 0);
        if (r < 0) {
                log_row(LOG_ERR, MID_SCAN_FAILED, w, "%s email %lld: cannot record the outcome yet: %s",
                        r == -EBUSY ? "the database is locked by another process" : strerror(-r));
                remember(o, sql, w->id, t, text);
        }
}

static void pump(outbox_t *o);

static void on_sent(void *userdata, const smtp_result_t *res)
{
        row_t *w = userdata;
        outbox_t *o = w->o;
        row_t **pp = &o->flying;

        while (*pp && *pp != w)
                pp = &(*pp)->next_flying;
        if (*pp)
                *pp = w->next_flying;
        record_outcome(o, w, res, clock_now());
        row_free(w);
        pump(o);
}

/* Expire, or render (once: a retry sends the very same bytes) and record the attempt.
 * 1: ready to send, 0: handled here, <0: error. */
static int prepare(outbox_t *o, row_t *w, int64_t now)
{
        const char *why = outbox_stale(o->db, o->c, w->session_id, w->registration_id, w->kind,
                                       w->recipient, now);
        char *err = NULL;
        int r;

        if (why) {
                o->stats.expired++;
                log_row(LOG_INFO, MID_MAIL_EXPIRED, w, "%s email %lld dropped: %s", why);
                r = update(o->db, SQL_EXPIRE, w->id, now, why, NULL, 0);
                return r < 0 ? r : 0;
        }
        if (!w->body) {
                mail_key_t key = { w->kind, w->occasion, w->session_id, w->registration_id,
                                   w->recipient, w->message_id };

                r = outbox_build(o->db, o->c, o->t, &key, now, &w->body, &w->body_size, &err);
                if (r < 0) {
                        o->stats.failed++;
                        log_row(LOG_ERR, MID_MAIL_FAILED, w, "%s email %lld cannot be built: %s",
                                err ? err : "invalid recipient or template");
                        r = update(o->db, SQL_FAIL, w->id, now, err ? err : "cannot be built", NULL, 0);
                        free(err);
                        return r < 0 ? r : 0;
                }
        }
        r = update(o->db, SQL_ATTEMPT, w->id, now, NULL, w->body, w->body_size);
        if (r < 0)
                return r;
        w->attempts++;
        return 1;
}

static int on_wake(sd_event_source *s, uint64_t usec, void *userdata)
{
        (void) s;
        (void) usec;
        pump(userdata);
        return 0;
}

static void wake_in(outbox_t *o, double secs)
{
        uint64_t usec = (uint64_t) (secs * 1e6) + 1000;

        if (!o->wake)
                (void) sd_event_add_time_relative(o->event, &o->wake, CLOCK_MONOTONIC, usec, 1000, on_wake, o);
        else {
                (void) sd_event_source_set_time_relative(o->wake, usec);
                (void) sd_event_source_set_enabled(o->wake, SD_EVENT_ONESHOT);
        }
}

/* Fill every free connection with a due row. */
static void pump(outbox_t *o)
{
        int64_t now = clock_now();
        int r = 0;

        if (o->pumping)
                return; /* a completion inside submit: the outer loop goes on */
        o->pumping = true;
        while (!o->stopping && !o->stats.server_down) {
                row_t *w = NULL;
                double wait;

                if (write_unrecorded(o) < 0)
                        break;
                if (ensure_pool(o) < 0) {
                        o->stats.server_down = true;
                        break;
                }
                if (smtp_pool_free_slots(o->pool) == 0)
                        break;
                if ((wait = take_token(o)) > 0) {
                        /* only worth waking up for if something is due */
                        r = next_due(o->db, now, &w);
                        if (r > 0)
                                wake_in(o, wait);
                        row_free(w);
                        break;
                }
                r = next_due(o->db, now, &w);
                if (r <= 0) {
                        o->tokens += 1.0;
                        break;
                }
                w->o = o;
                r = prepare(o, w, now);
                if (r > 0) {
                        r = smtp_pool_submit(o->pool, o->c->smtp.from_addr, w->recipient, w->body,
                                             w->body_size, on_sent, w);
                        /* on failure the row stays marked as sending: retried at the next start */
                        if (r < 0)
                                row_free(w);
                        else {
                                w->next_flying = o->flying;
                                o->flying = w;
                        }
                } else
                        row_free(w);
                if (r < 0) {
                        if (r == -EBUSY)
                                log_msg(LOG_WARNING, "the database is locked; delivery resumes at the next scan");
                        else
                                log_msg(LOG_ERR, "delivery stopped: %s", strerror(-r));
                        break;
                }
        }
        o->pumping = false;
        if (!outbox_busy(o) && o->idle_fn)
                o->idle_fn(o->idle_data);
}

void outbox_kick(outbox_t *o)
{
        o->stats.server_down = false;
        pump(o);
}

