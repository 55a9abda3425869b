/* smtp.c - libcurl SMTP: one easy handle per connection, reused across messages. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "smtp.h"

struct smtp {
        CURL *curl;
        char errbuf[CURL_ERROR_SIZE];
        char last_reply[512];   /* the first error reply of a transfer, else the last reply */
        char last_command[16];
        bool failed;            /* the last transfer failed: do not trust its connection */
        const char *data;
        size_t size, pos;
};

static size_t read_cb(char *buf, size_t size, size_t n, void *userdata)
{
        smtp_t *s = userdata;
        size_t want = size * n, left = s->size - s->pos;

        if (want > left)
                want = left;
        memcpy(buf, s->data + s->pos, want);
        s->pos += want;
        return want;
}

/* Keep the server's last reply line and our last command: the reply explains a failure
 * to the admin, the command tells a refused recipient from a refused login. */
static int debug_cb(CURL *h, curl_infotype type, char *data, size_t size, void *userdata)
{
        smtp_t *s = userdata;
        size_t n;

        (void) h;
        if (type == CURLINFO_HEADER_IN) {
                if (s->last_reply[0] == '4' || s->last_reply[0] == '5')
                        return 0;
                n = size < sizeof(s->last_reply) - 1 ? size : sizeof(s->last_reply) - 1;
                memcpy(s->last_reply, data, n);
                while (n && (s->last_reply[n - 1] == '\n' || s->last_reply[n - 1] == '\r'))
                        n--;
                s->last_reply[n] = '\0';
        } else if (type == CURLINFO_HEADER_OUT) {
                n = strcspn(data, " \r\n:");
                if (n > size)
                        n = size;
                if (n >= sizeof(s->last_command))
                        n = sizeof(s->last_command) - 1;
                memcpy(s->last_command, data, n);
                s->last_command[n] = '\0';
        }
        return 0;
}

int smtp_new(const smtp_config_t *cfg, const char *password, smtp_t **ret)
{
        smtp_t *s = calloc(1, sizeof(*s));

        if (!s)
                return -ENOMEM;
        s->curl = curl_easy_init();
        if (!s->curl) {
                free(s);
                return -ENOMEM;
        }
        curl_easy_setopt(s->curl, CURLOPT_URL, cfg->url);
        curl_easy_setopt(s->curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(s->curl, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(s->curl, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(s->curl, CURLOPT_READDATA, s);
        curl_easy_setopt(s->curl, CURLOPT_ERRORBUFFER, s->errbuf);
        curl_easy_setopt(s->curl, CURLOPT_DEBUGFUNCTION, debug_cb);
        curl_easy_setopt(s->curl, CURLOPT_DEBUGDATA, s);
        curl_easy_setopt(s->curl, CURLOPT_VERBOSE, 1L); /* feeds debug_cb, prints nothing */
        curl_easy_setopt(s->curl, CURLOPT_CONNECTTIMEOUT, cfg->timeout);
        curl_easy_setopt(s->curl, CURLOPT_TIMEOUT, cfg->timeout);
        /* never fall back to plain text when STARTTLS is expected */
        curl_easy_setopt(s->curl, CURLOPT_USE_SSL, cfg->tls_required ? (long) CURLUSESSL_ALL : (long) CURLUSESSL_NONE);
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
        *ret = s;
        return 0;
}

smtp_t *smtp_free(smtp_t *s)
{
        if (!s)
                return NULL;
        curl_easy_cleanup(s->curl); /* sends QUIT on a live connection */
        free(s);
        return NULL;
}

static bool recipient_stage(const char *cmd)
{
        return strcmp(cmd, "RCPT") == 0 || strcmp(cmd, "DATA") == 0;
}

void smtp_send(smtp_t *s, const char *from, const char *rcpt, const char *data, size_t size,
               smtp_result_t *ret)
{
        struct curl_slist *rcpts = NULL;
        char from_br[512], rcpt_br[512];
        CURLcode cc;
        long code = 0;

        snprintf(from_br, sizeof(from_br), "<%s>", from);
        snprintf(rcpt_br, sizeof(rcpt_br), "<%s>", rcpt);
        rcpts = curl_slist_append(NULL, rcpt_br);
        s->data = data;
        s->size = size;
        s->pos = 0;
        s->errbuf[0] = s->last_reply[0] = s->last_command[0] = '\0';
        curl_easy_setopt(s->curl, CURLOPT_MAIL_FROM, from_br);
        curl_easy_setopt(s->curl, CURLOPT_MAIL_RCPT, rcpts);
        curl_easy_setopt(s->curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t) size);
        /* a server may keep a connection open after refusing a message but with its
         * session in a state where the next MAIL fails: start clean after any failure */
        curl_easy_setopt(s->curl, CURLOPT_FRESH_CONNECT, (long) s->failed);
        cc = curl_easy_perform(s->curl);
        s->failed = cc != CURLE_OK;
        curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &code);
        curl_slist_free_all(rcpts);
        curl_easy_setopt(s->curl, CURLOPT_MAIL_RCPT, NULL);

        ret->code = code;
        if (cc == CURLE_OK) {
                ret->outcome = SMTP_SENT;
                snprintf(ret->reply, sizeof(ret->reply), "%s", s->last_reply);
                return;
        }
        if (code >= 400 && s->last_reply[0])
                snprintf(ret->reply, sizeof(ret->reply), "%s", s->last_reply);
        else
                snprintf(ret->reply, sizeof(ret->reply), "%s",
                         s->errbuf[0] ? s->errbuf : curl_easy_strerror(cc));
        if (code >= 500 && code < 600)
                /* a 5xx to our login or sender is the relay refusing us, not this message */
                ret->outcome = recipient_stage(s->last_command) ? SMTP_PERMANENT : SMTP_UNREACHABLE;
        else if (code >= 400 && code < 500)
                ret->outcome = recipient_stage(s->last_command) ? SMTP_TEMPORARY : SMTP_UNREACHABLE;
        else if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
                 cc == CURLE_USE_SSL_FAILED || cc == CURLE_PEER_FAILED_VERIFICATION ||
                 cc == CURLE_SSL_CONNECT_ERROR || cc == CURLE_SSL_CACERT_BADFILE ||
                 cc == CURLE_LOGIN_DENIED || (cc == CURLE_OPERATION_TIMEDOUT && !s->last_command[0]))
                ret->outcome = SMTP_UNREACHABLE;
        else
                /* dropped or timed out mid-transaction: the outcome is unknown, so retry
                 * with the same Message-ID and let the receiving side deduplicate */
                ret->outcome = SMTP_TEMPORARY;
}

static int read_secret(int fd, char **ret)
{
        char buf[1024];
        ssize_t n = read(fd, buf, sizeof(buf) - 1);

        if (n < 0)
                return -errno;
        buf[n] = '\0';
        buf[strcspn(buf, "\r\n")] = '\0';
        *ret = strdup(buf);
        explicit_bzero(buf, sizeof(buf));
        return *ret ? 0 : -ENOMEM;
}

int smtp_load_password(const smtp_config_t *cfg, char **ret, char **ret_err)
{
        const char *creds = getenv("CREDENTIALS_DIRECTORY");
        char path[4096];
        struct stat st;
        int fd, r;

        *ret = NULL;
        if (cfg->password_file && *cfg->password_file)
                snprintf(path, sizeof(path), "%s", cfg->password_file);
        else if (creds && *creds)
                snprintf(path, sizeof(path), "%s/smtp-password", creds);
        else
                return 0;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                r = -errno;
                /* the credential is optional: a relay without AUTH needs none */
                if (r == -ENOENT && !(cfg->password_file && *cfg->password_file))
                        return 0;
                if (asprintf(ret_err, "password file %s: %s", path, strerror(-r)) < 0)
                        *ret_err = NULL;
                return r;
        }
        if (fstat(fd, &st) < 0 || (cfg->password_file && *cfg->password_file &&
                                   (st.st_mode & (S_IRWXG | S_IRWXO)))) {
                close(fd);
                if (asprintf(ret_err, "password file %s: readable by group or others; "
                                      "make it mode 0600 (chmod 600)", path) < 0)
                        *ret_err = NULL;
                return -EPERM;
        }
        r = read_secret(fd, ret);
        close(fd);
        return r;
}
