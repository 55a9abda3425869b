/* deliver.c - outbox rows to SMTP and back, in the event loop.
 *
 * The database is written once per batch, not twice per email: rows are claimed (and
 * rendered) a batch at a time, and outcomes are recorded together, with the next claim or
 * when the loop has nothing in flight. One rule keeps a crash cheap: what was sent is
 * written down before any connection takes another message, so a kill sends again at
 * most one email per connection, with the same Message-ID. Written down means a line
 * appended to the file beside the database (outbox_unrecorded_append(): one write, which
 * a kill does not undo, as it does not undo a commit at synchronous=NORMAL); without that
 * file, recorded in the database. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "clock.h"
#include "deliver.h"
#include "journal.h"
#include "outbox.h"
#include "smtp.h"

/* Rows claimed per transaction: enough to amortise the commit, few enough that what is
 * rendered at the claim is still true when it goes. */
#define DELIVER_BATCH 32
/* Outcomes wait at most this long for the database, so that `meccctl status` stays current
 * when a slow relay takes a batch a message at a time. */
#define DELIVER_RECORD_USEC USEC_PER_SEC
/* A locked database (the website writing) is tried again this soon, in microseconds. */
#define DELIVER_BUSY_RETRY_USEC (250 * USEC_PER_MSEC)
/* The rate limit's and the retry's timer: a millisecond late is on time. */
#define TIMER_ACCURACY_USEC USEC_PER_MSEC

struct deliver {
        db_t *db;
        const config_t *c;
        const templates_t *t;
        sd_event *event;
        smtp_pool_t *pool;
        bool rebuild;           /* settings changed: new pool once idle */
        bool stopping;
        bool pumping;
        double tokens;          /* max_per_minute token bucket */
        usec_t refilled;        /* when the bucket was last topped up */
        sd_event_source *wake;  /* the rate limit's refill, or a locked database */
        sd_event_source *later; /* a pump once the loop has handled what is pending */
        deliver_stats_t stats;
        void (*idle_fn)(void *);
        void *idle_data;
        outbox_row_t *ready;    /* claimed and rendered, waiting for a connection */
        outbox_row_t *flying;   /* handed to SMTP */
        outbox_outcome_t *done; /* outcomes not yet recorded */
        size_t n_done, cap_done;
        usec_t done_since;      /* when the oldest of them was known */
        bool record_soon;       /* an address refused for good: its other emails must not go */
        int unrecorded_fd;      /* the outcomes in done, written down; -1: none (record each) */
        /* The admin's problem (refused login, TLS setup, an unreadable credential or CA) as
         * meta relay_problem: "UNIXTIME TEXT", "" when none. Written when it changes. */
        char *problem;          /* what was last recorded; NULL: unknown (at start) */
        char *problem_next;     /* what to record next, or NULL */
};

static void pump(deliver_t *d);

/* text NULL: things work (a message went). The time is only recorded with a new text. */
static void set_problem(deliver_t *d, const char *text)
{
        const char *was = d->problem_next ? d->problem_next : d->problem;
        char *v;

        if (!text && was && !*was)
                return;
        if (text && was && *was && strcmp(strchr(was, ' ') + 1, text) == 0)
                return;
        if (!text)
                v = strdup("");
        else if (asprintf(&v, "%lld %s", (long long) clock_now(), text) < 0)
                v = NULL;
        if (!v)
                return;
        if (text)
                log_msg(LOG_ERR, "%s; the emails wait until it is fixed (meccctl status shows it)", text);
        free(d->problem_next);
        d->problem_next = v;
}

/* Record a changed problem where `meccctl status` reads it; a locked database: next time. */
static void record_problem(deliver_t *d)
{
        if (!d->problem_next || db_meta_set(d->db, "relay_problem", d->problem_next) < 0)
                return;
        free(d->problem);
        d->problem = d->problem_next;
        d->problem_next = NULL;
}

static void free_list(outbox_row_t *w)
{
        while (w) {
                outbox_row_t *next = w->next;

                outbox_row_free(w);
                w = next;
        }
}

static int on_later(sd_event_source *s, void *userdata)
{
        (void) s;
        pump(userdata);
        return 0;
}

deliver_t *deliver_new(db_t *db, const config_t *c, const templates_t *t, sd_event *e)
{
        deliver_t *d = calloc(1, sizeof(*d));

        if (!d)
                return NULL;
        d->db = db;
        d->c = c;
        d->t = t;
        d->event = sd_event_ref(e);
        d->tokens = c->smtp.max_per_minute;
        d->refilled = clock_monotonic();
        d->unrecorded_fd = outbox_unrecorded_open(db);
        if (d->unrecorded_fd < 0)
                log_msg(LOG_WARNING, "cannot open the file for delivery outcomes beside the database (%s):"
                        " each is recorded in the database before another email goes", strerror(-d->unrecorded_fd));
        /* idle priority: completions that arrive together are recorded together */
        if (sd_event_add_defer(e, &d->later, on_later, d) < 0 ||
            sd_event_source_set_priority(d->later, SD_EVENT_PRIORITY_IDLE) < 0 ||
            sd_event_source_set_enabled(d->later, SD_EVENT_OFF) < 0)
                return deliver_free(d);
        return d;
}

static void clear_done(deliver_t *d)
{
        for (size_t i = 0; i < d->n_done; i++)
                outbox_outcome_clear(&d->done[i]);
        d->n_done = 0;
}

/* Outcomes the database would not take, kept in a file for the next start. */
static int save_unrecorded(deliver_t *d)
{
        int r;

        if (d->n_done == 0)
                return 0;
        /* already in the file: made durable */
        if (d->unrecorded_fd >= 0)
                r = fsync(d->unrecorded_fd) < 0 ? -errno : 0;
        else
                r = outbox_save_unrecorded(d->db, d->done, d->n_done);
        if (r < 0) {
                log_msg(LOG_ERR, "cannot keep %zu delivery outcomes for the next start: %s",
                        d->n_done, strerror(-r));
                return r;
        }
        log_msg(LOG_WARNING, "the database is locked: %zu delivery outcomes kept beside it for the next start",
                d->n_done);
        clear_done(d);
        return 0;
}

deliver_t *deliver_free(deliver_t *d)
{
        if (!d)
                return NULL;
        smtp_pool_free(d->pool);
        /* rows in flight or claimed stay marked as sending: the next start retries them */
        free_list(d->flying);
        free_list(d->ready);
        (void) save_unrecorded(d);
        (void) outbox_unrecorded_close(d->db, d->unrecorded_fd);
        clear_done(d);
        free(d->done);
        sd_event_source_disable_unref(d->wake);
        sd_event_source_disable_unref(d->later);
        sd_event_unref(d->event);
        free(d->problem);
        free(d->problem_next);
        free(d);
        return NULL;
}

void deliver_reconfigure(deliver_t *d, const config_t *c, const templates_t *t)
{
        d->c = c;
        d->t = t;
        d->rebuild = true;
        if (d->tokens > c->smtp.max_per_minute)
                d->tokens = c->smtp.max_per_minute;
}

void deliver_on_idle(deliver_t *d, void (*fn)(void *), void *userdata)
{
        d->idle_fn = fn;
        d->idle_data = userdata;
}

unsigned deliver_in_flight(const deliver_t *d)
{
        return d->pool ? smtp_pool_in_flight(d->pool) : 0;
}

static bool enabled(sd_event_source *s)
{
        int on = SD_EVENT_OFF;

        if (s)
                (void) sd_event_source_get_enabled(s, &on);
        return on != SD_EVENT_OFF;
}

bool deliver_busy(const deliver_t *d)
{
        return deliver_in_flight(d) > 0 || d->n_done > 0 ||
               (!d->stopping && (d->ready || enabled(d->wake) || enabled(d->later)));
}

deliver_stats_t deliver_take_stats(deliver_t *d)
{
        deliver_stats_t s = d->stats;

        d->stats.sent = d->stats.deferred = d->stats.failed = d->stats.expired = 0;
        return s;
}

void deliver_stop(deliver_t *d)
{
        d->stopping = true;
        if (d->wake)
                (void) sd_event_source_set_enabled(d->wake, SD_EVENT_OFF);
        pump(d); /* record what is done and give back what was claimed, now */
}

/* Messages the rate limit allows now (whole tokens), after refilling the bucket. */
static size_t tokens(deliver_t *d)
{
        usec_t now = clock_monotonic();
        double elapsed = (double) (now - d->refilled) / USEC_PER_SEC;
        double rate = d->c->smtp.max_per_minute / 60.0;

        d->refilled = now;
        d->tokens += elapsed * rate;
        if (d->tokens > d->c->smtp.max_per_minute)
                d->tokens = d->c->smtp.max_per_minute;
        return d->tokens >= 1.0 ? (size_t) d->tokens : 0;
}

static usec_t usec_to_next_token(const deliver_t *d)
{
        double rate = d->c->smtp.max_per_minute / 60.0;

        return (usec_t) ((1.0 - d->tokens) / rate * USEC_PER_SEC) + TIMER_ACCURACY_USEC;
}

static int on_wake(sd_event_source *s, uint64_t usec, void *userdata)
{
        (void) s;
        (void) usec;
        pump(userdata);
        return 0;
}

static void wake_in(deliver_t *d, usec_t usec)
{
        if (!d->wake)
                (void) sd_event_add_time_relative(d->event, &d->wake, CLOCK_MONOTONIC, usec, TIMER_ACCURACY_USEC,
                                                  on_wake, d);
        else {
                (void) sd_event_source_set_time_relative(d->wake, usec);
                (void) sd_event_source_set_enabled(d->wake, SD_EVENT_ONESHOT);
        }
}

static int ensure_pool(deliver_t *d)
{
        char *err = NULL, *password = NULL;
        int r;

        if (d->pool && d->rebuild && smtp_pool_in_flight(d->pool) == 0)
                d->pool = smtp_pool_free(d->pool);
        if (d->pool)
                return 0;
        d->rebuild = false;
        r = smtp_load_password(&d->c->smtp, &password, &err);
        if (r >= 0 && d->c->smtp.ca_file && *d->c->smtp.ca_file && access(d->c->smtp.ca_file, R_OK) < 0) {
                r = -errno;
                if (asprintf(&err, "smtp.ca_file %s: %s", d->c->smtp.ca_file, strerror(-r)) < 0)
                        err = NULL;
        }
        if (r < 0) {
                /* a local setup error: the admin's to fix, not the relay's */
                char *text = NULL;

                if (asprintf(&text, "configuration: %s", err ? err : "cannot read the SMTP password") >= 0) {
                        set_problem(d, text);
                        free(text);
                }
                free(err);
                return r;
        }
        r = smtp_pool_new(d->event, &d->c->smtp, password, &d->pool);
        /* libcurl has what it needs: our copy goes at once, and is read again for the
         * next pool (a reload) */
        if (password) {
                explicit_bzero(password, strlen(password));
                free(password);
        }
        return r;
}

/* What an SMTP result means for the row: sent, failed for good, or again later. */
static outbox_outcome_t judge(deliver_t *d, const outbox_row_t *w, const smtp_result_t *res, int64_t now)
{
        int64_t give_up = clock_shift(w->first_attempt_at ? w->first_attempt_at : now,
                                      &d->c->smtp.give_up_after, +1);
        outbox_outcome_t o = { .id = w->id, .attempted = true, .at = now };

        if (res->problem != SMTP_PROBLEM_NONE) {
                char *text = NULL;

                if (asprintf(&text, "%s: %s", res->problem == SMTP_PROBLEM_AUTH ?
                             "the relay refused the login" : "TLS with the relay failed",
                             res->reply) >= 0) {
                        set_problem(d, text);
                        free(text);
                }
        } else if (res->outcome == SMTP_SENT)
                set_problem(d, NULL);
        switch (res->outcome) {
        case SMTP_SENT:
                d->stats.sent++;
                outbox_log(LOG_INFO, MID_MAIL_SENT, w, "sent", NULL);
                o.status = MAIL_SENT;
                return o;
        case SMTP_PERMANENT:
                d->stats.failed++;
                outbox_log(LOG_WARNING, MID_MAIL_FAILED, w, "refused by the relay", res->reply);
                o.status = MAIL_FAILED;
                /* a 5xx to RCPT refuses the address itself (meccd(8), BOUNCES) */
                if (res->at_rcpt && w->registration_id)
                        o.unreachable = w->registration_id;
                break;
        default:
                if (res->outcome == SMTP_UNREACHABLE)
                        d->stats.server_down = true;
                if (now >= give_up) {
                        d->stats.failed++;
                        outbox_log(LOG_WARNING, MID_MAIL_FAILED, w, "given up", res->reply);
                        o.status = MAIL_FAILED;
                        break;
                }
                d->stats.deferred++;
                outbox_log(LOG_NOTICE, MID_MAIL_DEFERRED, w, "deferred", res->reply);
                o.status = MAIL_QUEUED;
                o.at = now + outbox_backoff(w->attempts + 1);
        }
        o.error = strdup(res->reply);
        return o;
}

static int add_done(deliver_t *d, outbox_outcome_t o)
{
        if (d->n_done == d->cap_done) {
                size_t cap = d->cap_done ? 2 * d->cap_done : 16;
                outbox_outcome_t *p = realloc(d->done, cap * sizeof(*p));

                if (!p)
                        return -ENOMEM;
                d->done = p;
                d->cap_done = cap;
        }
        d->done[d->n_done++] = o;
        return 0;
}

static void later(deliver_t *d)
{
        (void) sd_event_source_set_enabled(d->later, SD_EVENT_ONESHOT);
}

/* The file beside the database failed us: from now on each outcome is recorded in the
 * database before another email goes (record_now()). */
static void drop_unrecorded_file(deliver_t *d, const char *what, int r)
{
        log_msg(LOG_WARNING, "cannot %s the file of delivery outcomes beside the database (%s):"
                " each is now recorded in the database before another email goes", what, strerror(-r));
        (void) close(d->unrecorded_fd);
        d->unrecorded_fd = -1;
}

static int write_down(deliver_t *d, const outbox_outcome_t *o)
{
        int r = outbox_unrecorded_append(d->unrecorded_fd, o);

        /* with synchronous=FULL a power cut must not undo it either */
        if (r >= 0 && db_sync_full(d->db) && fdatasync(d->unrecorded_fd) < 0)
                r = -errno;
        return r;
}

static void on_sent(void *userdata, const smtp_result_t *res)
{
        outbox_row_t *w = userdata, **pp;
        deliver_t *d = w->userdata;
        outbox_outcome_t o;
        int r;

        for (pp = &d->flying; *pp && *pp != w; pp = &(*pp)->next)
                ;
        if (*pp)
                *pp = w->next;
        o = judge(d, w, res, clock_now());
        /* written down at once (beside the database), recorded with the next claim */
        if (d->unrecorded_fd >= 0 && (r = write_down(d, &o)) < 0)
                drop_unrecorded_file(d, "write to", r);
        if (d->n_done == 0)
                d->done_since = clock_monotonic();
        if (o.unreachable)
                d->record_soon = true;
        /* without memory the row stays marked as sending: retried at the next start */
        if (add_done(d, o) < 0)
                outbox_outcome_clear(&o);
        outbox_row_free(w);
        later(d);
}

/* Whether the outcomes known must go to the database now, rather than with the next claim
 * (or, before another email goes, with the one after it). */
static bool record_now(const deliver_t *d)
{
        if (d->n_done == 0)
                return false;
        return d->unrecorded_fd < 0 || d->record_soon || d->stopping || d->stats.server_down ||
               d->n_done >= DELIVER_BATCH || clock_monotonic() - d->done_since >= DELIVER_RECORD_USEC;
}

/* Ids of the rows claimed but not sent, to give back at stop. */
static size_t ready_ids(const deliver_t *d, int64_t *ids, size_t max)
{
        size_t n = 0;

        for (const outbox_row_t *w = d->ready; w && n < max; w = w->next)
                ids[n++] = w->id;
        return n;
}

/* Record what is done (and at stop give back what was claimed), then claim up to max
 * more: one transaction. */
static int settle(deliver_t *d, size_t max)
{
        outbox_claim_stats_t cs = { 0 };
        outbox_row_t *rows = NULL, **tail;
        int64_t release[DELIVER_BATCH];
        /* at stop, or with the relay down, what was claimed goes back: rendered again
         * when it is next claimed, it says what is true then */
        bool give_back = d->stopping || d->stats.server_down;
        size_t n_release = give_back ? ready_ids(d, release, DELIVER_BATCH) : 0;
        int r;

        if (d->n_done == 0 && n_release == 0 && max == 0)
                return 0;
        r = outbox_claim(d->db, d->c, d->t, clock_now(), max, d->done, d->n_done, release,
                         n_release, &rows, &cs);
        if (r < 0)
                return r;
        /* lines left in it would be replayed at the next start: harmless, as replay only
         * touches rows still in flight, but the file must not grow for ever */
        if (d->n_done > 0 && d->unrecorded_fd >= 0 && (r = outbox_unrecorded_clear(d->unrecorded_fd)) < 0)
                drop_unrecorded_file(d, "empty", r);
        clear_done(d);
        d->record_soon = false;
        while (n_release-- > 0) {
                outbox_row_t *w = d->ready;

                d->ready = w->next;
                outbox_row_free(w);
        }
        d->stats.expired += cs.expired;
        d->stats.failed += cs.failed;
        for (tail = &d->ready; *tail; tail = &(*tail)->next)
                ;
        *tail = rows;
        return 0;
}

static int submit(deliver_t *d, outbox_row_t *w)
{
        int r;

        w->userdata = d;
        /* the envelope sender: where the mail system sends bounces */
        r = smtp_pool_submit(d->pool, d->c->smtp.return_path ? d->c->smtp.return_path : d->c->smtp.from_addr,
                             w->recipient, w->body, w->body_size,
                             on_sent, w);
        if (r < 0) {
                /* the row stays marked as sending: retried at the next start */
                outbox_row_free(w);
                return r;
        }
        w->next = d->flying;
        d->flying = w;
        return 0;
}

/* Fill every free connection with a due row, within the rate limit. */
static int fill(deliver_t *d)
{
        int r = 0;

        while (!d->stopping && !d->stats.server_down) {
                size_t free_slots, allowed;
                outbox_row_t *w;

                if ((r = ensure_pool(d)) < 0) {
                        d->stats.server_down = true;
                        return 0;
                }
                free_slots = smtp_pool_free_slots(d->pool);
                if (free_slots == 0)
                        return 0;
                if (!d->ready) {
                        allowed = tokens(d);
                        if (allowed == 0) {
                                if ((r = outbox_any_due(d->db, clock_now())) > 0)
                                        wake_in(d, usec_to_next_token(d));
                                return r < 0 ? r : 0;
                        }
                        r = settle(d, allowed < DELIVER_BATCH ? allowed : DELIVER_BATCH);
                        if (r < 0 || !d->ready)
                                return r;
                        for (outbox_row_t *p = d->ready; p; p = p->next)
                                d->tokens -= 1.0;
                } else if (record_now(d) && (r = settle(d, 0)) < 0)
                        return r;
                w = d->ready;
                d->ready = w->next;
                w->next = NULL;
                if ((r = submit(d, w)) < 0)
                        return r;
        }
        return 0;
}

static void pump(deliver_t *d)
{
        int r;

        if (d->pumping)
                return; /* a completion inside submit: the outer loop goes on */
        d->pumping = true;
        r = fill(d);
        /* idle, stopping or the relay down: record what is known, give back what is claimed */
        if (r >= 0 && (record_now(d) || deliver_in_flight(d) == 0 || d->stopping || d->stats.server_down))
                r = settle(d, 0);
        if (r >= 0)
                record_problem(d);
        if (r == -EBUSY && d->stopping && deliver_in_flight(d) == 0)
                r = save_unrecorded(d); /* the website holds the database: do not wait for it */
        if (r == -EBUSY)
                wake_in(d, DELIVER_BUSY_RETRY_USEC);
        else if (r < 0)
                log_msg(LOG_ERR, "delivery stopped: %s", strerror(-r));
        d->pumping = false;
        if (!deliver_busy(d) && d->idle_fn)
                d->idle_fn(d->idle_data);
}

void deliver_kick(deliver_t *d)
{
        d->stats.server_down = false;
        pump(d);
}
