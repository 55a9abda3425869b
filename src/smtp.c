/* smtp.c - libcurl multi + sd-event: each slot is one easy handle (one connection, reused). */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "curlev.h"
#include "smtp.h"


/* What a transfer uploads, handed to libcurl a piece at a time. */
typedef struct {
        const char *data;
        size_t size, pos;
} upload_t;

typedef struct {
        smtp_pool_t *pool;
        CURL *curl;
        bool busy;
        bool failed;            /* the last transfer failed: do not trust its connection */
        curl_socket_t fd;       /* the socket of the transfer in flight, if it has one yet */
        char errbuf[CURL_ERROR_SIZE];
        char reply[512];        /* the first error reply of a transfer, else the last reply */
        char command[16];       /* our last command: tells a refused login from a refused rcpt */
        upload_t body;
        struct curl_slist *rcpts;
        char from[512];
        smtp_done_fn done;
        void *userdata;
} slot_t;

#define MAX_SOCKETS 64

struct smtp_pool {
        curl_socket_t sockets[MAX_SOCKETS]; /* every connection libcurl has open */
        curlev_t *ev;
        CURLM *multi;                       /* ev's */
        slot_t *slots;
        size_t n_slots;
};

static size_t read_cb(char *buf, size_t size, size_t n, void *userdata)
{
        upload_t *u = userdata;
        size_t want = size * n, left = u->size - u->pos;

        if (want > left)
                want = left;
        memcpy(buf, u->data + u->pos, want);
        u->pos += want;
        return want;
}

static int debug_cb(CURL *h, curl_infotype type, char *data, size_t size, void *userdata)
{
        slot_t *s = userdata;
        size_t n;

        (void) h;
        if (type == CURLINFO_HEADER_IN) {
                if (s->reply[0] == '4' || s->reply[0] == '5')
                        return 0;
                n = size < sizeof(s->reply) - 1 ? size : sizeof(s->reply) - 1;
                memcpy(s->reply, data, n);
                while (n && (s->reply[n - 1] == '\n' || s->reply[n - 1] == '\r'))
                        n--;
                s->reply[n] = '\0';
        } else if (type == CURLINFO_HEADER_OUT) {
                /* after a refusal libcurl sends QUIT: keep the command that was refused */
                if (s->reply[0] == '4' || s->reply[0] == '5')
                        return 0;
                /* data is not NUL-terminated */
                for (n = 0; n < size && n < sizeof(s->command) - 1; n++)
                        if (strchr(" \r\n:", data[n]))
                                break;
                memcpy(s->command, data, n);
                s->command[n] = '\0';
        }
        return 0;
}

static bool recipient_stage(const char *cmd)
{
        return strcmp(cmd, "RCPT") == 0 || strcmp(cmd, "DATA") == 0;
}

smtp_problem_t smtp_problem_of(int curl_code, long reply_code, const char *command)
{
        CURLcode cc = curl_code;

        if (cc == CURLE_LOGIN_DENIED || (command && !strcmp(command, "AUTH") && reply_code >= 500))
                return SMTP_PROBLEM_AUTH;
        if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE ||
            cc == CURLE_SSL_CERTPROBLEM || cc == CURLE_SSL_CRL_BADFILE || cc == CURLE_USE_SSL_FAILED)
                return SMTP_PROBLEM_TLS;
        return SMTP_PROBLEM_NONE;
}

/* Temporary or permanent is read from the reply code, never from the CURLcode alone:
 * libcurl returns the same code for a 451 and a 550. */
static void classify(slot_t *s, CURLcode cc, smtp_result_t *ret)
{
        long code = 0;

        curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &code);
        ret->code = code;
        if (cc == CURLE_OK) {
                ret->outcome = SMTP_SENT;
                snprintf(ret->reply, sizeof(ret->reply), "%s", s->reply);
                return;
        }
        if (code >= 400 && s->reply[0])
                snprintf(ret->reply, sizeof(ret->reply), "%s", s->reply);
        else
                snprintf(ret->reply, sizeof(ret->reply), "%s",
                         s->errbuf[0] ? s->errbuf : curl_easy_strerror(cc));
        ret->at_rcpt = strcmp(s->command, "RCPT") == 0;
        ret->problem = smtp_problem_of(cc, code, s->command);
        if (code >= 500 && code < 600)
                ret->outcome = recipient_stage(s->command) ? SMTP_PERMANENT : SMTP_UNREACHABLE;
        else if (code >= 400 && code < 500)
                ret->outcome = recipient_stage(s->command) ? SMTP_TEMPORARY : SMTP_UNREACHABLE;
        else if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
                 cc == CURLE_USE_SSL_FAILED || cc == CURLE_PEER_FAILED_VERIFICATION ||
                 cc == CURLE_SSL_CONNECT_ERROR || cc == CURLE_SSL_CACERT_BADFILE ||
                 cc == CURLE_LOGIN_DENIED || (cc == CURLE_OPERATION_TIMEDOUT && !s->command[0]))
                ret->outcome = SMTP_UNREACHABLE;
        else
                /* dropped or timed out mid-transaction: the outcome is unknown, so retry
                 * with the same Message-ID and let the receiving side deduplicate */
                ret->outcome = SMTP_TEMPORARY;
}

static void check_done(smtp_pool_t *p)
{
        CURLMsg *msg;
        int left;

        while ((msg = curl_multi_info_read(p->multi, &left))) {
                slot_t *s = NULL;
                smtp_result_t res = { 0 };

                if (msg->msg != CURLMSG_DONE)
                        continue;
                curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &s);
                classify(s, msg->data.result, &res);
                s->failed = msg->data.result != CURLE_OK;
                curl_multi_remove_handle(p->multi, s->curl);
                curl_slist_free_all(s->rcpts);
                s->rcpts = NULL;
                s->busy = false;
                /* last: the callback may submit the next message on this very slot */
                s->done(s->userdata, &res);
        }
}

static void after(void *userdata)
{
        check_done(userdata);
}

/* The slot's socket, known so that a stop can hang up before libcurl blocks. */
static void on_socket(CURL *e, curl_socket_t fd, bool removed, void *userdata)
{
        slot_t *s = NULL;

        (void) userdata;
        (void) curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **) &s);
        if (s)
                s->fd = removed ? CURL_SOCKET_BAD : fd;
}

static curl_socket_t open_socket(void *userdata, curlsocktype purpose, struct curl_sockaddr *a)
{
        smtp_pool_t *p = userdata;
        curl_socket_t fd;

        (void) purpose;
        fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
        for (size_t i = 0; fd != CURL_SOCKET_BAD && i < MAX_SOCKETS; i++)
                if (p->sockets[i] == CURL_SOCKET_BAD) {
                        p->sockets[i] = fd;
                        break;
                }
        return fd;
}

static int close_socket(void *userdata, curl_socket_t fd)
{
        smtp_pool_t *p = userdata;

        for (size_t i = 0; i < MAX_SOCKETS; i++)
                if (p->sockets[i] == fd)
                        p->sockets[i] = CURL_SOCKET_BAD;
        return close(fd);
}

static int slot_init(slot_t *s, smtp_pool_t *p, const smtp_config_t *cfg, const char *password)
{
        s->pool = p;
        s->fd = CURL_SOCKET_BAD;
        s->curl = curl_easy_init();
        if (!s->curl)
                return -ENOMEM;
        curl_easy_setopt(s->curl, CURLOPT_URL, cfg->url);
        curl_easy_setopt(s->curl, CURLOPT_PRIVATE, s);
        curl_easy_setopt(s->curl, CURLOPT_OPENSOCKETFUNCTION, open_socket);
        curl_easy_setopt(s->curl, CURLOPT_OPENSOCKETDATA, p);
        curl_easy_setopt(s->curl, CURLOPT_CLOSESOCKETFUNCTION, close_socket);
        curl_easy_setopt(s->curl, CURLOPT_CLOSESOCKETDATA, p);
        curl_easy_setopt(s->curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(s->curl, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(s->curl, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(s->curl, CURLOPT_READDATA, &s->body);
        curl_easy_setopt(s->curl, CURLOPT_ERRORBUFFER, s->errbuf);
        curl_easy_setopt(s->curl, CURLOPT_DEBUGFUNCTION, debug_cb);
        curl_easy_setopt(s->curl, CURLOPT_DEBUGDATA, s);
        curl_easy_setopt(s->curl, CURLOPT_VERBOSE, 1L); /* feeds debug_cb, prints nothing */
        /* smtp.timeout is seconds, as libcurl takes it here */
        curl_easy_setopt(s->curl, CURLOPT_CONNECTTIMEOUT, cfg->timeout);
        curl_easy_setopt(s->curl, CURLOPT_TIMEOUT, cfg->timeout);
        /* never fall back to plain text when STARTTLS is expected */
        curl_easy_setopt(s->curl, CURLOPT_USE_SSL,
                         cfg->tls_required ? (long) CURLUSESSL_ALL : (long) CURLUSESSL_NONE);
        curl_easy_setopt(s->curl, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(s->curl, CURLOPT_SSL_VERIFYHOST, 2L);
        if (cfg->ca_file && *cfg->ca_file) {
                /* the private CA in addition to the system's */
                curl_easy_setopt(s->curl, CURLOPT_CAINFO, cfg->ca_file);
                curl_easy_setopt(s->curl, CURLOPT_CAPATH, "/etc/ssl/certs");
        }
        if (cfg->username && *cfg->username) {
                curl_easy_setopt(s->curl, CURLOPT_USERNAME, cfg->username);
                if (password)
                        curl_easy_setopt(s->curl, CURLOPT_PASSWORD, password);
        }
        return 0;
}

int smtp_pool_new(sd_event *e, const smtp_config_t *cfg, const char *password, smtp_pool_t **ret)
{
        smtp_pool_t *p = calloc(1, sizeof(*p));
        int r = -ENOMEM;

        if (!p)
                return -ENOMEM;
        for (size_t i = 0; i < MAX_SOCKETS; i++)
                p->sockets[i] = CURL_SOCKET_BAD;
        p->n_slots = cfg->connections > 0 ? (size_t) cfg->connections : 1;
        p->slots = calloc(p->n_slots, sizeof(slot_t));
        if (!p->slots)
                goto fail;
        r = curlev_new(e, &(curlev_ops_t) { after, on_socket, p }, &p->ev);
        if (r < 0)
                goto fail;
        p->multi = curlev_multi(p->ev);
        curl_multi_setopt(p->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long) p->n_slots);
        curl_multi_setopt(p->multi, CURLMOPT_MAXCONNECTS, (long) p->n_slots);
        for (size_t i = 0; i < p->n_slots; i++)
                if ((r = slot_init(&p->slots[i], p, cfg, password)) < 0)
                        goto fail;
        *ret = p;
        return 0;
fail:
        smtp_pool_free(p);
        return r;
}

/* Removing a transfer in flight makes libcurl end the message with "." and wait, blocking,
 * for the reply: a truncated message would be accepted and the stop would hang. Hang up
 * first, so the relay drops the unfinished message and libcurl's write fails at once. */
static void abandon(smtp_pool_t *p, slot_t *s)
{
        if (s->fd != CURL_SOCKET_BAD)
                (void) shutdown(s->fd, SHUT_RDWR);
        curl_multi_remove_handle(p->multi, s->curl);
}

smtp_pool_t *smtp_pool_free(smtp_pool_t *p)
{
        if (!p)
                return NULL;
        for (size_t i = 0; p->slots && i < p->n_slots; i++) {
                slot_t *s = &p->slots[i];

                if (s->busy)
                        abandon(p, s);
        }
        /* libcurl says QUIT to idle connections at cleanup and waits, blocking, for the
         * reply: a relay that stalls would hold up the stop. QUIT still goes out; the wait
         * for its answer ends at once. */
        for (size_t i = 0; i < MAX_SOCKETS; i++)
                if (p->sockets[i] != CURL_SOCKET_BAD)
                        (void) shutdown(p->sockets[i], SHUT_RD);
        for (size_t i = 0; p->slots && i < p->n_slots; i++) {
                slot_t *s = &p->slots[i];

                curl_slist_free_all(s->rcpts);
                if (s->curl)
                        curl_easy_cleanup(s->curl);
        }
        curlev_free(p->ev);
        free(p->slots);
        free(p);
        return NULL;
}

unsigned smtp_pool_free_slots(const smtp_pool_t *p)
{
        unsigned n = 0;

        for (size_t i = 0; i < p->n_slots; i++)
                n += !p->slots[i].busy;
        return n;
}

unsigned smtp_pool_in_flight(const smtp_pool_t *p)
{
        return (unsigned) p->n_slots - smtp_pool_free_slots(p);
}

int smtp_pool_submit(smtp_pool_t *p, const char *from, const char *rcpt, const char *data,
                     size_t size, smtp_done_fn done, void *userdata)
{
        char rcpt_br[512];
        slot_t *s = NULL;

        for (size_t i = 0; i < p->n_slots && !s; i++)
                if (!p->slots[i].busy)
                        s = &p->slots[i];
        if (!s)
                return -EBUSY;
        snprintf(s->from, sizeof(s->from), "<%s>", from);
        snprintf(rcpt_br, sizeof(rcpt_br), "<%s>", rcpt);
        s->rcpts = curl_slist_append(NULL, rcpt_br);
        if (!s->rcpts)
                return -ENOMEM;
        s->body = (upload_t) { data, size, 0 };
        s->done = done;
        s->userdata = userdata;
        s->errbuf[0] = s->reply[0] = s->command[0] = '\0';
        s->fd = CURL_SOCKET_BAD;
        curl_easy_setopt(s->curl, CURLOPT_MAIL_FROM, s->from);
        curl_easy_setopt(s->curl, CURLOPT_MAIL_RCPT, s->rcpts);
        curl_easy_setopt(s->curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t) size);
        /* a server may keep a connection open after refusing a message but with its
         * session in a state where the next MAIL fails: start clean after any failure */
        curl_easy_setopt(s->curl, CURLOPT_FRESH_CONNECT, (long) s->failed);
        if (curl_multi_add_handle(p->multi, s->curl) != CURLM_OK) {
                curl_slist_free_all(s->rcpts);
                s->rcpts = NULL;
                return -EIO;
        }
        s->busy = true;
        return 0;
}
static int read_secret(int fd, char **ret)
{
        char buf[1024];
        ssize_t n = read(fd, buf, sizeof(buf) - 1);

        if (n < 0)
                return -errno;
        buf[n] = '\0';
        buf[strcspn(buf, "\r\n")] = '\0';
        /* an empty credential (the unit's fallback when no file is installed) is none */
        *ret = buf[0] ? strdup(buf) : NULL;
        if (!buf[0])
                return 0;
        explicit_bzero(buf, sizeof(buf));
        return *ret ? 0 : -ENOMEM;
}

int smtp_load_secret(const char *file, const char *credential, char **ret, char **ret_err)
{
        const char *creds = getenv("CREDENTIALS_DIRECTORY");
        char path[4096];
        struct stat st = { 0 };
        int fd, r;

        *ret = NULL;
        if (file && *file)
                snprintf(path, sizeof(path), "%s", file);
        else if (creds && *creds)
                snprintf(path, sizeof(path), "%s/%s", creds, credential);
        else
                return 0;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                r = -errno;
                /* the credential is optional: a relay without AUTH needs none */
                if (r == -ENOENT && !(file && *file))
                        return 0;
                if (asprintf(ret_err, "password file %s: %s", path, strerror(-r)) < 0)
                        *ret_err = NULL;
                return r;
        }
        if (fstat(fd, &st) < 0 || (file && *file &&
                                   (st.st_mode & (S_IRWXG | S_IRWXO)))) {
                close(fd);
                if (asprintf(ret_err, "password file %s has mode %04o: readable by group or "
                                      "others; make it mode 0600 (chmod 600)", path,
                             (unsigned) (st.st_mode & 07777)) < 0)
                        *ret_err = NULL;
                return -EPERM;
        }
        r = read_secret(fd, ret);
        close(fd);
        return r;
}

int smtp_load_password(const smtp_config_t *cfg, char **ret, char **ret_err)
{
        return smtp_load_secret(cfg->password_file, "smtp-password", ret, ret_err);
}

/* ---- one test message, blocking, for `meccctl test-email` ------------------------------ */

typedef struct {
        smtp_say_fn say;
        void *userdata;
        bool in_auth;           /* between our AUTH and the relay's verdict: hide what we send */
        bool tls, auth_ok;
        char last[512];         /* the relay's last reply */
        char command[16];       /* our last command */
        upload_t body;
} test_t;

/* Each line of data, without its line end, to say() with a prefix. */
static void say_lines(test_t *t, const char *prefix, const char *data, size_t size)
{
        while (size > 0) {
                size_t n = 0, skip;
                char line[600];

                while (n < size && data[n] != '\n')
                        n++;
                skip = n < size ? n + 1 : n;
                while (n && (data[n - 1] == '\r' || data[n - 1] == '\n'))
                        n--;
                snprintf(line, sizeof(line), "%s%.*s", prefix, (int) (n < 500 ? n : 500), data);
                if (n)
                        t->say(t->userdata, line);
                data += skip;
                size -= skip;
        }
}

static int test_debug(CURL *h, curl_infotype type, char *data, size_t size, void *userdata)
{
        test_t *t = userdata;
        size_t n;

        (void) h;
        switch (type) {
        case CURLINFO_TEXT:
                /* libcurl's own notes: only the ones an admin asks about */
                if ((size > 12 && !strncmp(data, "Connected to", 12)) ||
                    (size > 20 && !strncmp(data, "SSL connection using", 20)) ||
                    (size > 13 && !strncmp(data, "Trying ", 7)) ||
                    (size > 15 && strstr(data, "certificate verify")) ||
                    (size > 8 && !strncmp(data, "subject:", 8))) {
                        if (!strncmp(data, "SSL connection using", 20))
                                t->tls = true;
                        say_lines(t, "* ", data, size);
                }
                break;
        case CURLINFO_HEADER_IN:
                say_lines(t, "< ", data, size);
                /* the first refusal is the answer, not the QUIT's goodbye after it */
                if (t->last[0] == '4' || t->last[0] == '5')
                        break;
                n = size < sizeof(t->last) - 1 ? size : sizeof(t->last) - 1;
                memcpy(t->last, data, n);
                while (n && (t->last[n - 1] == '\n' || t->last[n - 1] == '\r'))
                        n--;
                t->last[n] = '\0';
                if (t->in_auth && t->last[0] != '3') {
                        t->in_auth = false;
                        t->auth_ok = t->last[0] == '2';
                }
                break;
        case CURLINFO_HEADER_OUT:
                for (n = 0; n < size && n < sizeof(t->command) - 1 && !strchr(" \r\n:", data[n]); n++)
                        ;
                if (t->in_auth) {
                        /* AUTH LOGIN's username and password lines */
                        t->say(t->userdata, "> (credentials not shown)");
                        break;
                }
                if (t->last[0] != '4' && t->last[0] != '5') {
                        memcpy(t->command, data, n);
                        t->command[n] = '\0';
                }
                if (n == 4 && !strncmp(data, "AUTH", 4)) {
                        /* "AUTH PLAIN <base64 of the password>": the mechanism only */
                        char line[64];
                        size_t m = n + 1;

                        while (m < size && !strchr(" \r\n", data[m]))
                                m++;
                        snprintf(line, sizeof(line), "> %.*s (credentials not shown)",
                                 (int) (m < 40 ? m : 40), data);
                        t->say(t->userdata, line);
                        t->in_auth = true;
                        break;
                }
                say_lines(t, "> ", data, size);
                break;
        default:
                break;
        }
        return 0;
}

int smtp_test(const smtp_config_t *cfg, const char *password, const char *to, const char *message,
              smtp_say_fn say, void *userdata, smtp_result_t *ret)
{
        test_t t = { .say = say, .userdata = userdata, .body = { message, strlen(message), 0 } };
        char from[512], rcpt[512], errbuf[CURL_ERROR_SIZE] = "";
        struct curl_slist *rcpts = NULL;
        CURLcode cc;
        long code = 0;
        CURL *c;

        *ret = (smtp_result_t) { 0 };
        c = curl_easy_init();
        snprintf(from, sizeof(from), "<%s>", cfg->return_path ? cfg->return_path : cfg->from_addr);
        snprintf(rcpt, sizeof(rcpt), "<%s>", to);
        rcpts = curl_slist_append(NULL, rcpt);
        if (!c || !rcpts) {
                curl_slist_free_all(rcpts);
                curl_easy_cleanup(c);
                return -ENOMEM;
        }
        /* the daemon's settings, as slot_init() gives them */
        curl_easy_setopt(c, CURLOPT_URL, cfg->url);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(c, CURLOPT_READDATA, &t.body);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t) t.body.size);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, test_debug);
        curl_easy_setopt(c, CURLOPT_DEBUGDATA, &t);
        curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, cfg->timeout);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, cfg->timeout);
        curl_easy_setopt(c, CURLOPT_USE_SSL, cfg->tls_required ? (long) CURLUSESSL_ALL : (long) CURLUSESSL_NONE);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
        if (cfg->ca_file && *cfg->ca_file) {
                curl_easy_setopt(c, CURLOPT_CAINFO, cfg->ca_file);
                curl_easy_setopt(c, CURLOPT_CAPATH, "/etc/ssl/certs");
        }
        if (cfg->username && *cfg->username) {
                curl_easy_setopt(c, CURLOPT_USERNAME, cfg->username);
                if (password)
                        curl_easy_setopt(c, CURLOPT_PASSWORD, password);
        }
        curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
        curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpts);
        cc = curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        ret->code = code;
        ret->problem = cc == CURLE_OK ? SMTP_PROBLEM_NONE : smtp_problem_of(cc, code, t.command);
        if (cc == CURLE_OK)
                ret->outcome = SMTP_SENT;
        else
                ret->outcome = code >= 500 && code < 600 ? SMTP_PERMANENT :
                               code >= 400 ? SMTP_TEMPORARY : SMTP_UNREACHABLE;
        if (cc == CURLE_OK || (code >= 400 && t.last[0]))
                snprintf(ret->reply, sizeof(ret->reply), "%s", t.last);
        else
                snprintf(ret->reply, sizeof(ret->reply), "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
        curl_slist_free_all(rcpts);
        curl_easy_cleanup(c);
        return 0;
}
