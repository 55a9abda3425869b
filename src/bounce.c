/* bounce.c - one look at the bounce mailbox. libcurl's URL forms do the protocol work:
 * "imaps://host/INBOX" with a custom "UID SEARCH UNSEEN", "…/INBOX/;UID=n;PARTIAL=0.N" to
 * fetch (a custom FETCH loses the literal: libcurl passes on only the untagged line), and
 * a custom "UID STORE n +FLAGS (\Seen)". Fetching BODY[] marks the message seen already; a
 * message whose outcome could not be recorded (a locked database) gets -FLAGS (\Seen) back
 * so that the next look reads it again. POP3: UIDL, then RETR by number, each UIDL kept in
 * bounce_seen once its outcome is recorded; nothing is ever deleted. */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "bounce.h"
#include "buf.h"
#include "clock.h"
#include "dsn.h"
#include "journal.h"
#include "outbox.h"
#include "text.h"

/* A bounce with the whole returned email fits easily; the delivery-status part comes
 * before the returned message, so a longer one cut here still reads. */
#define FETCH_MAX (1024 * 1024)
#define CONNECT_TIMEOUT_SEC 30L
#define TRANSFER_TIMEOUT_SEC 120L

typedef struct {
        char *data;
        size_t size, cap;
        size_t max;
} sink_t;

static size_t on_write(char *p, size_t size, size_t n, void *userdata)
{
        sink_t *s = userdata;
        size_t len = size * n, keep = len;

        if (s->size + keep > s->max)
                keep = s->max > s->size ? s->max - s->size : 0;
        if (s->size + keep + 1 > s->cap) {
                size_t cap = (s->size + keep + 1) * 2;
                char *d = realloc(s->data, cap);

                if (!d)
                        return 0;
                s->data = d;
                s->cap = cap;
        }
        memcpy(s->data + s->size, p, keep);
        s->size += keep;
        s->data[s->size] = '\0';
        return len; /* what goes over max is dropped, not an error */
}

static int on_progress(void *userdata, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
        const atomic_bool *stop = userdata;

        (void) a, (void) b, (void) c, (void) d;
        return stop && atomic_load(stop) ? 1 : 0;
}

typedef struct {
        CURL *curl;
        const config_t *c;
        const atomic_bool *stop;
        char error[CURL_ERROR_SIZE];
        char base[2048];        /* the url, with the mailbox (IMAP: INBOX by default) */
        bool pop3;
} mailbox_t;

/* One request on the session's connection (libcurl keeps it open between requests). */
static int request(mailbox_t *s, const char *url, const char *custom, sink_t *out)
{
        CURLcode rc;

        out->size = 0;
        if (out->data)
                out->data[0] = '\0';
        curl_easy_setopt(s->curl, CURLOPT_URL, url);
        curl_easy_setopt(s->curl, CURLOPT_CUSTOMREQUEST, custom);
        curl_easy_setopt(s->curl, CURLOPT_WRITEDATA, out);
        s->error[0] = '\0';
        rc = curl_easy_perform(s->curl);
        if (rc != CURLE_OK)
                return rc == CURLE_ABORTED_BY_CALLBACK ? -ECANCELED : -EIO;
        return 0;
}

static int session_init(mailbox_t *s, const config_t *c, const char *password, const atomic_bool *stop)
{
        const char *url = c->bounces.url, *path;

        *s = (mailbox_t) { .c = c, .stop = stop };
        s->pop3 = strncmp(url, "pop3", 4) == 0;
        path = strchr(strstr(url, "://") + 3, '/');
        if (s->pop3 || (path && path[1]))
                snprintf(s->base, sizeof(s->base), "%s", url);
        else
                snprintf(s->base, sizeof(s->base), "%s%sINBOX", url, path ? "" : "/");
        /* no trailing slash: the message's ";UID=n" follows "/" */
        size_t n = strlen(s->base);
        if (n > 0 && s->base[n - 1] == '/' && s->pop3)
                s->base[n - 1] = '\0';
        s->curl = curl_easy_init();
        if (!s->curl)
                return -ENOMEM;
        curl_easy_setopt(s->curl, CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(s->curl, CURLOPT_ERRORBUFFER, s->error);
        curl_easy_setopt(s->curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(s->curl, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_SEC);
        curl_easy_setopt(s->curl, CURLOPT_TIMEOUT, TRANSFER_TIMEOUT_SEC);
        curl_easy_setopt(s->curl, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(s->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(s->curl, CURLOPT_XFERINFODATA, (void *) stop);
        /* imap:// only with STARTTLS: a password never crosses the network in clear */
        curl_easy_setopt(s->curl, CURLOPT_USE_SSL, (long) CURLUSESSL_ALL);
        curl_easy_setopt(s->curl, CURLOPT_PROTOCOLS_STR, "imap,imaps,pop3s");
        if (c->bounces.ca_file && *c->bounces.ca_file)
                curl_easy_setopt(s->curl, CURLOPT_CAINFO, c->bounces.ca_file);
        if (c->bounces.username && *c->bounces.username)
                curl_easy_setopt(s->curl, CURLOPT_USERNAME, c->bounces.username);
        if (password)
                curl_easy_setopt(s->curl, CURLOPT_PASSWORD, password);
        return 0;
}

/* What failed, in words fit for the journal. */
static char *session_error(mailbox_t *s, const char *what)
{
        char *redacted = text_redact_addresses(s->error), *msg = NULL;

        if (asprintf(&msg, "bounce mailbox: %s: %s", what,
                     redacted && *redacted ? redacted : "failed") < 0)
                msg = NULL;
        free(redacted);
        return msg;
}

/* ---- which email a report is about ---------------------------------------------------- */

static const char SQL_BY_MESSAGE_ID[] =
        "SELECT registration_id FROM outbox WHERE message_id = ?1 AND registration_id IS NOT NULL"
        " AND status = 'sent' LIMIT 1";
/* the report names no Message-ID: the address, among emails sent lately */
static const char SQL_BY_ADDRESS[] =
        "SELECT registration_id FROM outbox WHERE recipient = ?1 COLLATE NOCASE"
        " AND registration_id IS NOT NULL AND status = 'sent' AND sent_at >= ?2"
        " ORDER BY sent_at DESC LIMIT 1";
static const char SQL_SEEN[] = "SELECT 1 FROM bounce_seen WHERE uidl = ?1";
static const char SQL_SEEN_ADD[] = "INSERT OR IGNORE INTO bounce_seen(uidl, seen_at) VALUES (?1, ?2)";

/* The registration an email with this Message-ID (or, failing that, to this address
 * lately) went to: >0 its id, 0 none of ours, <0 error. */
static int64_t find_registration(db_t *db, const config_t *c, const char *message_id,
                                 const char *address, int64_t now)
{
        sqlite3_stmt *st;
        int r;

        if (message_id) {
                if (!(st = db_stmt(db, SQL_BY_MESSAGE_ID)))
                        return -EIO;
                db_bind_text(st, 1, message_id);
                r = db_step(st);
                if (r != 0)
                        return r < 0 ? r : sqlite3_column_int64(st, 0);
        }
        if (!address || !*address)
                return 0;
        if (!(st = db_stmt(db, SQL_BY_ADDRESS)))
                return -EIO;
        db_bind_text(st, 1, address);
        sqlite3_bind_int64(st, 2, clock_shift(now, &c->smtp.give_up_after, -1));
        r = db_step(st);
        return r <= 0 ? r : sqlite3_column_int64(st, 0);
}

/* What one message says, recorded in one transaction: 0, or <0 to look again next time. */
static int consider(db_t *db, const config_t *c, const char *data, size_t size, const char *uidl,
                    int64_t now, bounce_stats_t *stats)
{
        dsn_t *d = NULL;
        int r;

        r = dsn_parse(data, size, &d);
        if (r < 0)
                return r;
        if ((r = db_begin(db)) < 0)
                goto out;
        for (size_t i = 0; d && i < d->n_recipients; i++) {
                const dsn_recipient_t *x = &d->recipients[i];
                int64_t reg;
                char *reason = NULL;

                if (!dsn_recipient_failed(x))
                        continue; /* delayed, delivered, relayed, a 4.x.x "failed" */
                reg = find_registration(db, c, d->message_id, x->final_recipient, now);
                if (reg < 0) {
                        r = (int) reg;
                        goto rollback;
                }
                if (reg == 0)
                        continue; /* not an email of ours */
                /* the reason kept for the coordinators: status and the server's words */
                if (asprintf(&reason, "%s %s", x->status, *x->diagnostic ? x->diagnostic : "(no diagnostic)") < 0) {
                        r = -ENOMEM;
                        goto rollback;
                }
                r = outbox_mark_unreachable(db, reg, reason, now);
                if (r > 0) {
                        char *shown = text_redact_addresses(reason);
                        log_ctx_t ctx = { .message_id = MID_BOUNCED, .registration = reg };

                        stats->unreachable++;
                        log_ctx(LOG_NOTICE, &ctx, "registration %" PRId64 " is unreachable: bounced, %s",
                                reg, shown ? shown : x->status);
                        free(shown);
                }
                free(reason);
                if (r < 0)
                        goto rollback;
        }
        if (uidl) {
                sqlite3_stmt *st = db_stmt(db, SQL_SEEN_ADD);

                if (!st) {
                        r = -EIO;
                        goto rollback;
                }
                db_bind_text(st, 1, uidl);
                sqlite3_bind_int64(st, 2, now);
                if ((r = db_step_done(st)) < 0)
                        goto rollback;
        }
        r = db_commit(db);
        if (r < 0)
                goto rollback;
        if (d)
                stats->reports++;
        goto out;
rollback:
        db_rollback(db);
out:
        dsn_free(d);
        return r;
}

/* ---- IMAP ---------------------------------------------------------------------------- */

static int look_imap(mailbox_t *s, db_t *db, int64_t now, bounce_stats_t *stats, char **ret_err)
{
        sink_t list = { .max = FETCH_MAX }, msg = { .max = FETCH_MAX }, none = { .max = 0 };
        char url[2300], cmd[80];
        const char *p;
        int r;

        r = request(s, s->base, "UID SEARCH UNSEEN", &list);
        if (r < 0) {
                *ret_err = session_error(s, "UID SEARCH UNSEEN");
                goto out;
        }
        /* "* SEARCH 3 7 9" (nothing after SEARCH: no new message) */
        p = list.data ? strstr(list.data, "SEARCH") : NULL;
        for (p = p ? p + 6 : NULL; p && *p;) {
                char *end;
                unsigned long long uid = strtoull(p, &end, 10);

                if (end == p) {
                        p++;
                        continue;
                }
                p = end;
                if (uid == 0)
                        continue;
                snprintf(url, sizeof(url), "%s/;UID=%llu;PARTIAL=0.%d", s->base, uid, FETCH_MAX);
                r = request(s, url, NULL, &msg);
                if (r < 0) {
                        *ret_err = session_error(s, "UID FETCH");
                        goto out;
                }
                stats->looked++;
                r = consider(db, s->c, msg.data ? msg.data : "", msg.size, NULL, now, stats);
                /* seen only once its outcome is recorded; else read again next time */
                snprintf(cmd, sizeof(cmd), "UID STORE %llu %sFLAGS (\\Seen)", uid, r < 0 ? "-" : "+");
                if (request(s, s->base, cmd, &none) < 0 && r >= 0) {
                        *ret_err = session_error(s, "UID STORE");
                        r = -EIO;
                        goto out;
                }
                if (r < 0) {
                        if (asprintf(ret_err, "bounce mailbox: cannot record what a message says: %s",
                                     strerror(-r)) < 0)
                                *ret_err = NULL;
                        goto out;
                }
        }
        r = 0;
out:
        free(list.data);
        free(msg.data);
        free(none.data);
        return r;
}

/* ---- POP3 ---------------------------------------------------------------------------- */

static int look_pop3(mailbox_t *s, db_t *db, int64_t now, bounce_stats_t *stats, char **ret_err)
{
        sink_t list = { .max = 4 * FETCH_MAX }, msg = { .max = FETCH_MAX };
        char url[2300];
        const char *p;
        int r;

        r = request(s, s->base, "UIDL", &list);
        if (r < 0) {
                *ret_err = session_error(s, "UIDL");
                goto out;
        }
        /* one "N UIDL" a line */
        for (p = list.data; p && *p;) {
                unsigned long n;
                char uidl[80];
                sqlite3_stmt *st;

                if (sscanf(p, "%lu %70s", &n, uidl) == 2 && (st = db_stmt(db, SQL_SEEN))) {
                        db_bind_text(st, 1, uidl);
                        r = db_step(st);
                        if (r < 0)
                                goto out;
                        if (r == 0) {
                                snprintf(url, sizeof(url), "%s/%lu", s->base, n);
                                r = request(s, url, NULL, &msg);
                                if (r < 0) {
                                        *ret_err = session_error(s, "RETR");
                                        goto out;
                                }
                                stats->looked++;
                                r = consider(db, s->c, msg.data ? msg.data : "", msg.size, uidl, now, stats);
                                if (r < 0)
                                        goto out;
                        }
                }
                p = strchr(p, '\n');
                if (p)
                        p++;
        }
        r = 0;
out:
        free(list.data);
        free(msg.data);
        return r;
}

int bounce_check(db_t *db, const config_t *c, const char *password, int64_t now,
                 const atomic_bool *stop, bounce_stats_t *stats, char **ret_err)
{
        mailbox_t s;
        int r;

        *ret_err = NULL;
        *stats = (bounce_stats_t) { 0 };
        if (!c->bounces.url || !*c->bounces.url)
                return 0;
        r = session_init(&s, c, password, stop);
        if (r >= 0)
                r = s.pop3 ? look_pop3(&s, db, now, stats, ret_err) : look_imap(&s, db, now, stats, ret_err);
        if (r < 0 && !*ret_err && asprintf(ret_err, "bounce mailbox: %s", strerror(-r)) < 0)
                *ret_err = NULL;
        curl_easy_cleanup(s.curl);
        return r;
}

/* ---- the daemon's look, on a thread -------------------------------------------------- */

#include <pthread.h>
#include <sys/eventfd.h>
#include <systemd/sd-event.h>
#include <unistd.h>

/* The thread may wait this long for the website's write lock: it holds no one up. */
#define JOB_BUSY_TIMEOUT_MS 5000

struct bounce_job {
        pthread_t thread;
        sd_event_source *source;
        int efd;
        atomic_bool stop;
        config_t *cfg;          /* copies of the settings it reads */
        char *database, *password;
        int64_t now;
        int r;
        bounce_stats_t stats;
        char *err;
        bounce_done_fn done;
        void *userdata;
};

static void job_free(bounce_job_t *j)
{
        if (!j)
                return;
        sd_event_source_disable_unref(j->source);
        if (j->efd >= 0)
                close(j->efd);
        config_free(j->cfg);
        free(j->database);
        if (j->password)
                explicit_bzero(j->password, strlen(j->password));
        free(j->password);
        free(j->err);
        free(j);
}

static void *job_run(void *userdata)
{
        bounce_job_t *j = userdata;
        db_t *db = NULL;
        uint64_t one = 1;

        j->r = db_open(j->database, &db, &j->err);
        if (j->r >= 0) {
                db_set_busy_timeout(db, JOB_BUSY_TIMEOUT_MS);
                j->r = bounce_check(db, j->cfg, j->password, j->now, &j->stop, &j->stats, &j->err);
        }
        db_close(db);
        (void) !write(j->efd, &one, sizeof(one));
        return NULL;
}

static int job_ended(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        bounce_job_t *j = userdata;

        (void) s, (void) fd, (void) revents;
        pthread_join(j->thread, NULL);
        j->done(j->r, &j->stats, j->err, j->userdata);
        job_free(j);
        return 0;
}

int bounce_job_start(struct sd_event *e, const config_t *c, const char *password, int64_t now,
                     bounce_done_fn done, void *userdata, bounce_job_t **ret)
{
        bounce_job_t *j = calloc(1, sizeof(*j));
        int r = -ENOMEM;

        if (!j)
                return -ENOMEM;
        j->efd = -1;
        j->cfg = calloc(1, sizeof(*j->cfg));
        if (!j->cfg)
                goto fail;
        j->cfg->smtp.give_up_after = c->smtp.give_up_after;
        j->cfg->bounces.interval = c->bounces.interval;
        j->cfg->bounces.url = strdup(c->bounces.url ? c->bounces.url : "");
        j->cfg->bounces.username = strdup(c->bounces.username ? c->bounces.username : "");
        j->cfg->bounces.ca_file = strdup(c->bounces.ca_file ? c->bounces.ca_file : "");
        j->database = strdup(c->database);
        j->password = password ? strdup(password) : NULL;
        if (!j->cfg->bounces.url || !j->cfg->bounces.username || !j->cfg->bounces.ca_file || !j->database ||
            (password && !j->password))
                goto fail;
        j->now = now;
        j->done = done;
        j->userdata = userdata;
        atomic_init(&j->stop, false);
        j->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (j->efd < 0) {
                r = -errno;
                goto fail;
        }
        r = sd_event_add_io(e, &j->source, j->efd, EPOLLIN, job_ended, j);
        if (r < 0)
                goto fail;
        r = -pthread_create(&j->thread, NULL, job_run, j);
        if (r < 0)
                goto fail;
        *ret = j;
        return 0;
fail:
        job_free(j);
        return r;
}

void bounce_job_cancel(bounce_job_t *j)
{
        if (!j)
                return;
        atomic_store(&j->stop, true);
        pthread_join(j->thread, NULL);
        job_free(j);
}
