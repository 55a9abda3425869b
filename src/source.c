/* source.c - fetch each hub's export with libcurl multi, driven by sd-event as smtp.c
 * drives the relay, and apply it with admin_import_bookings(). A fetch that fails in any
 * way changes nothing but the source's last_attempt_at and last_error. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "admin.h"
#include "buf.h"
#include "clock.h"
#include "curlev.h"
#include "journal.h"
#include "smtp.h"
#include "source.h"

/* An export of a few thousand bookings is a few hundred KiB: anything past this is not one. */
#define SOURCE_MAX_SIZE ((size_t) 16 << 20)
/* The whole fetch; the connection alone gets less. */
#define SOURCE_TIMEOUT_SEC 60L
#define SOURCE_CONNECT_TIMEOUT_SEC 20L
/* A fetch whose apply met a locked database is tried again this soon. */
#define SOURCE_BUSY_RETRY_USEC (5 * USEC_PER_SEC)
#define SOURCE_TIMER_ACCURACY_USEC (1 * USEC_PER_SEC)
/* An sftp server's host key must be known: verification is never off. */
#define SSH_KNOWN_HOSTS "/etc/ssh/ssh_known_hosts"

typedef struct {
        sources_t *owner;
        const source_config_t *cfg;
        CURL *curl;
        sd_event_source *timer; /* the next fetch */
        bool busy;
        bool too_big;
        buf_t body;
        char etag[256], last_modified[128];     /* as the answer gave them */
        struct curl_slist *headers;
        char *password;
        char errbuf[CURL_ERROR_SIZE];
} fetch_t;

struct sources {
        db_t *db;
        const config_t *cfg;
        sd_event *event;
        curlev_t *ev;
        CURLM *multi;                   /* ev's */
        fetch_t *fetches;
        size_t n;
        bool periodic;          /* the daemon: fetch again every interval */
};

/* ---- the sources table -------------------------------------------------------------------- */

static const char SQL_GET[] = "SELECT etag, last_modified FROM sources WHERE name = ?1";
static const char SQL_ATTEMPT[] =
        "INSERT INTO sources(name, last_attempt_at, last_error) VALUES (?1, ?2, ?3)"
        " ON CONFLICT(name) DO UPDATE SET last_attempt_at = ?2, last_error = ?3";
static const char SQL_GOOD[] =
        "INSERT INTO sources(name, last_attempt_at, last_good_at, etag, last_modified, applied, skipped)"
        " VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6)"
        " ON CONFLICT(name) DO UPDATE SET last_attempt_at = ?2, last_good_at = ?2, etag = ?3,"
        " last_modified = ?4, applied = ?5, skipped = ?6, last_error = NULL";
static const char SQL_UNCHANGED[] =
        "UPDATE sources SET last_attempt_at = ?2, last_good_at = ?2, last_error = NULL WHERE name = ?1";

static void stored_validators(fetch_t *f, char **ret_etag, char **ret_lm)
{
        sqlite3_stmt *st = db_stmt(f->owner->db, SQL_GET);

        *ret_etag = *ret_lm = NULL;
        if (!st)
                return;
        db_bind_text(st, 1, f->cfg->name);
        if (db_step(st) == 1) {
                *ret_etag = db_col_text(st, 0);
                *ret_lm = db_col_text(st, 1);
        }
        sqlite3_reset(st);
}

static void record_failure(fetch_t *f, const char *why)
{
        sqlite3_stmt *st = db_stmt(f->owner->db, SQL_ATTEMPT);

        log_msg(LOG_WARNING, "source %s: %s; nothing was changed", f->cfg->name, why);
        if (!st)
                return;
        db_bind_text(st, 1, f->cfg->name);
        db_bind_time(st, 2, clock_now());
        db_bind_text(st, 3, why);
        (void) db_step_done(st);
}

static int record_good(fetch_t *f, const char *sql, size_t applied, size_t skipped)
{
        sqlite3_stmt *st = db_stmt(f->owner->db, sql);

        if (!st)
                return -EIO;
        db_bind_text(st, 1, f->cfg->name);
        db_bind_time(st, 2, clock_now());
        if (sql == SQL_GOOD) {
                db_bind_text(st, 3, f->etag[0] ? f->etag : NULL);
                db_bind_text(st, 4, f->last_modified[0] ? f->last_modified : NULL);
                sqlite3_bind_int64(st, 5, (sqlite3_int64) applied);
                sqlite3_bind_int64(st, 6, (sqlite3_int64) skipped);
        }
        return db_step_done(st);
}

/* ---- applying an export ------------------------------------------------------------------- */

static void how_of(const source_config_t *c, import_bookings_t *how)
{
        *how = (import_bookings_t) { .skip_bad_rows = true };
        how->header[IMPORT_COL_REF] = c->col_ref;
        how->header[IMPORT_COL_SESSION] = c->col_session;
        how->header[IMPORT_COL_NAME] = c->col_name;
        how->header[IMPORT_COL_EMAIL] = c->col_email;
        how->header[IMPORT_COL_STATUS] = c->col_status;
        how->header[IMPORT_COL_REGISTERED_AT] = c->col_registered_at;
        how->header[IMPORT_COL_ORGANISATION] = c->col_organisation;
        how->cancelled = (const char *const *) c->cancelled;
        how->n_cancelled = c->n_cancelled;
}

/* 0, or -EBUSY: the database was locked, try again soon. */
static int apply(fetch_t *f, const char *data, size_t size)
{
        admin_t a = { .db = f->owner->db, .cfg = f->owner->cfg, .now = clock_now() };
        import_bookings_t how;
        import_report_t rep = { 0 };
        char *why = NULL, where[300];
        int r;

        how_of(f->cfg, &how);
        snprintf(where, sizeof(where), "source %s", f->cfg->name);
        r = admin_import_bookings(&a, where, data, size, &how, &rep, &why);
        if (r == -EBUSY) {
                free(why);
                return r;
        }
        if (r != 0) {
                const char *w = why ? why : r < 0 ? strerror(-r) : "cannot be applied";
                char msg[600], *tail;

                /* why is "source NAME:LINE: reason; nothing was imported", and quotes no
                 * booking: kept as "line LINE: reason", the source's name is said once */
                if (!strncmp(w, where, strlen(where)) && w[strlen(where)] == ':')
                        snprintf(msg, sizeof(msg), "line %s", w + strlen(where) + 1);
                else
                        snprintf(msg, sizeof(msg), "%s", w);
                tail = strstr(msg, "; nothing was imported");
                if (tail)
                        *tail = '\0';
                record_failure(f, msg);
                free(why);
                return 0;
        }
        for (size_t i = 0; i < rep.n_notes; i++)
                log_msg(LOG_NOTICE, "%s", rep.notes[i]);
        (void) record_good(f, SQL_GOOD, rep.applied, rep.skipped);
        log_msg(LOG_INFO, "source %s: %zu row%s, %zu applied, %zu skipped", f->cfg->name, rep.rows,
                rep.rows == 1 ? "" : "s", rep.applied, rep.skipped);
        import_report_clear(&rep);
        return 0;
}

/* ---- fetching ----------------------------------------------------------------------------- */

static size_t write_cb(char *data, size_t size, size_t n, void *userdata)
{
        fetch_t *f = userdata;

        if (f->body.len + size * n > SOURCE_MAX_SIZE) {
                f->too_big = true;
                return 0;
        }
        buf_put(&f->body, data, size * n);
        return buf_error(&f->body) < 0 ? 0 : size * n;
}

/* "ETag: value" and "Last-Modified: value", kept for the next request */
static size_t header_cb(char *data, size_t size, size_t n, void *userdata)
{
        fetch_t *f = userdata;
        size_t len = size * n, k;
        char *dst = NULL;
        size_t cap = 0;

        if (len > 5 && !strncasecmp(data, "ETag:", 5)) {
                dst = f->etag, cap = sizeof(f->etag), k = 5;
        } else if (len > 14 && !strncasecmp(data, "Last-Modified:", 14)) {
                dst = f->last_modified, cap = sizeof(f->last_modified), k = 14;
        } else if (len >= 5 && !strncmp(data, "HTTP/", 5)) {
                /* a new answer (after a redirect): forget the last one's */
                f->etag[0] = f->last_modified[0] = '\0';
                return len;
        } else
                return len;
        while (k < len && (data[k] == ' ' || data[k] == '\t'))
                k++;
        while (len > k && strchr("\r\n \t", data[len - 1]))
                len--;
        if (len - k < cap) {
                memcpy(dst, data + k, len - k);
                dst[len - k] = '\0';
        }
        return size * n;
}

static int arm(fetch_t *f, usec_t delay);

/* What an ended transfer means: apply, nothing new, or a failure. */
static void finished(fetch_t *f, CURLcode cc)
{
        long code = 0;
        char *scheme = NULL, why[CURL_ERROR_SIZE + 64];
        bool http;
        int r = 0;

        curl_easy_getinfo(f->curl, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(f->curl, CURLINFO_SCHEME, &scheme);
        http = scheme && !strncasecmp(scheme, "http", 4);
        if (f->too_big)
                snprintf(why, sizeof(why), "the export is over %zu MiB", SOURCE_MAX_SIZE >> 20);
        else if (cc != CURLE_OK)
                snprintf(why, sizeof(why), "%s", f->errbuf[0] ? f->errbuf : curl_easy_strerror(cc));
        else if (http && code == 304) {
                (void) record_good(f, SQL_UNCHANGED, 0, 0);
                log_msg(LOG_DEBUG, "source %s: unchanged since the last fetch", f->cfg->name);
                why[0] = '\0';
        } else if (http && code != 200)
                snprintf(why, sizeof(why), "the server answered HTTP %ld", code);
        else {
                why[0] = '\0';
                r = apply(f, f->body.data ? f->body.data : "", f->body.len);
        }
        if (why[0])
                record_failure(f, why);
        buf_free(&f->body);
        curl_slist_free_all(f->headers);
        f->headers = NULL;
        if (f->password) {
                explicit_bzero(f->password, strlen(f->password));
                free(f->password);
                f->password = NULL;
        }
        f->busy = false;
        if (r == -EBUSY)
                (void) arm(f, SOURCE_BUSY_RETRY_USEC);
        else if (f->owner->periodic)
                (void) arm(f, (usec_t) f->cfg->interval * USEC_PER_SEC);
}

static void check_done(sources_t *s)
{
        CURLMsg *msg;
        int left;

        while ((msg = curl_multi_info_read(s->multi, &left))) {
                fetch_t *f = NULL;
                CURLcode cc;

                if (msg->msg != CURLMSG_DONE)
                        continue;
                cc = msg->data.result;
                curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &f);
                curl_multi_remove_handle(s->multi, f->curl);
                finished(f, cc);
        }
}

static void after(void *userdata)
{
        check_done(userdata);
}

int source_load_password(const source_config_t *c, char **ret, char **ret_err)
{
        char credential[256];

        /* as the SMTP password: a file of the admin's, else the unit's credential */
        snprintf(credential, sizeof(credential), "source-%s-password", c->name);
        return smtp_load_secret(c->password_file, credential, ret, ret_err);
}

/* Start one fetch: its handle set up anew, the stored validators as conditions. */
static int start(fetch_t *f)
{
        char *etag = NULL, *lm = NULL, *err = NULL, line[400];
        int r;

        if (f->busy)
                return 0;
        r = source_load_password(f->cfg, &f->password, &err);
        if (r < 0) {
                record_failure(f, err ? err : "cannot read the password");
                free(err);
                if (f->owner->periodic)
                        (void) arm(f, (usec_t) f->cfg->interval * USEC_PER_SEC);
                return 0;
        }
        if (!f->curl && !(f->curl = curl_easy_init()))
                return -ENOMEM;
        curl_easy_reset(f->curl);
        f->body = BUF_INIT(SOURCE_MAX_SIZE);
        f->too_big = false;
        f->errbuf[0] = f->etag[0] = f->last_modified[0] = '\0';
        stored_validators(f, &etag, &lm);
        if (etag) {
                snprintf(line, sizeof(line), "If-None-Match: %s", etag);
                f->headers = curl_slist_append(f->headers, line);
        }
        if (lm) {
                snprintf(line, sizeof(line), "If-Modified-Since: %s", lm);
                f->headers = curl_slist_append(f->headers, line);
        }
        free(etag);
        free(lm);
        curl_easy_setopt(f->curl, CURLOPT_URL, f->cfg->url);
        curl_easy_setopt(f->curl, CURLOPT_PRIVATE, f);
        curl_easy_setopt(f->curl, CURLOPT_NOSIGNAL, 1L);
        /* a fetch every few minutes: no connection kept open in between */
        curl_easy_setopt(f->curl, CURLOPT_FORBID_REUSE, 1L);
        curl_easy_setopt(f->curl, CURLOPT_PROTOCOLS_STR, "https,http,sftp,file");
        curl_easy_setopt(f->curl, CURLOPT_REDIR_PROTOCOLS_STR, "https,http");
        curl_easy_setopt(f->curl, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(f->curl, CURLOPT_MAXREDIRS, 5L);
        curl_easy_setopt(f->curl, CURLOPT_HTTPHEADER, f->headers);
        curl_easy_setopt(f->curl, CURLOPT_WRITEFUNCTION, write_cb);
        curl_easy_setopt(f->curl, CURLOPT_WRITEDATA, f);
        curl_easy_setopt(f->curl, CURLOPT_HEADERFUNCTION, header_cb);
        curl_easy_setopt(f->curl, CURLOPT_HEADERDATA, f);
        curl_easy_setopt(f->curl, CURLOPT_ERRORBUFFER, f->errbuf);
        curl_easy_setopt(f->curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) SOURCE_MAX_SIZE);
        curl_easy_setopt(f->curl, CURLOPT_CONNECTTIMEOUT, SOURCE_CONNECT_TIMEOUT_SEC);
        curl_easy_setopt(f->curl, CURLOPT_TIMEOUT, SOURCE_TIMEOUT_SEC);
        curl_easy_setopt(f->curl, CURLOPT_USERAGENT, "meccd/" VERSION);
        curl_easy_setopt(f->curl, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(f->curl, CURLOPT_SSL_VERIFYHOST, 2L);
        curl_easy_setopt(f->curl, CURLOPT_SSH_KNOWNHOSTS, SSH_KNOWN_HOSTS);
        if (f->cfg->ca_file && *f->cfg->ca_file) {
                /* the private CA in addition to the system's */
                curl_easy_setopt(f->curl, CURLOPT_CAINFO, f->cfg->ca_file);
                curl_easy_setopt(f->curl, CURLOPT_CAPATH, "/etc/ssl/certs");
        }
        if (f->cfg->username && *f->cfg->username) {
                curl_easy_setopt(f->curl, CURLOPT_USERNAME, f->cfg->username);
                if (f->password)
                        curl_easy_setopt(f->curl, CURLOPT_PASSWORD, f->password);
        }
        if (curl_multi_add_handle(f->owner->multi, f->curl) != CURLM_OK) {
                buf_free(&f->body);
                return -ENOMEM;
        }
        f->busy = true;
        return 0;
}

static int on_fetch_timer(sd_event_source *src, uint64_t usec, void *userdata)
{
        fetch_t *f = userdata;

        (void) src;
        (void) usec;
        (void) start(f);
        return 0;
}

static int arm(fetch_t *f, usec_t delay)
{
        int r;

        if (!f->timer)
                return sd_event_add_time_relative(f->owner->event, &f->timer, CLOCK_MONOTONIC, delay,
                                                  SOURCE_TIMER_ACCURACY_USEC, on_fetch_timer, f);
        r = sd_event_source_set_time_relative(f->timer, delay);
        if (r >= 0)
                r = sd_event_source_set_enabled(f->timer, SD_EVENT_ONESHOT);
        return r;
}

sources_t *sources_new(db_t *db, const config_t *cfg, sd_event *e)
{
        sources_t *s = calloc(1, sizeof(*s));

        if (!s)
                return NULL;
        s->db = db;
        s->cfg = cfg;
        s->event = sd_event_ref(e);
        s->n = cfg->n_sources;
        s->fetches = calloc(s->n + 1, sizeof(fetch_t));
        if (!s->fetches || curlev_new(e, &(curlev_ops_t) { after, NULL, s }, &s->ev) < 0)
                return sources_free(s);
        s->multi = curlev_multi(s->ev);
        for (size_t i = 0; i < s->n; i++) {
                s->fetches[i].owner = s;
                s->fetches[i].cfg = &cfg->sources[i];
        }
        return s;
}

sources_t *sources_free(sources_t *s)
{
        if (!s)
                return NULL;
        for (size_t i = 0; s->fetches && i < s->n; i++) {
                fetch_t *f = &s->fetches[i];

                if (f->busy)
                        curl_multi_remove_handle(s->multi, f->curl);
                if (f->curl)
                        curl_easy_cleanup(f->curl);
                buf_free(&f->body);
                curl_slist_free_all(f->headers);
                if (f->password) {
                        explicit_bzero(f->password, strlen(f->password));
                        free(f->password);
                }
                sd_event_source_disable_unref(f->timer);
        }
        curlev_free(s->ev);
        sd_event_unref(s->event);
        free(s->fetches);
        free(s);
        return NULL;
}

int sources_start(sources_t *s)
{
        int r = 0;

        s->periodic = true;
        for (size_t i = 0; i < s->n && r >= 0; i++)
                r = arm(&s->fetches[i], 0);
        return r;
}

int sources_fetch_all(sources_t *s)
{
        int r = 0;

        for (size_t i = 0; i < s->n && r >= 0; i++)
                r = start(&s->fetches[i]);
        return r;
}

bool sources_busy(const sources_t *s)
{
        for (size_t i = 0; s && i < s->n; i++)
                if (s->fetches[i].busy)
                        return true;
        return false;
}
