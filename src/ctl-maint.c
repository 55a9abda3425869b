/* ctl-maint.c - the admin's upkeep: a backup of the database, and a test email through
 * the daemon's relay settings. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>

#include "addr.h"
#include "ctl.h"
#include "outbox.h"
#include "smtp.h"

static const struct option backup_opts[] = { { "force", no_argument, NULL, 'f' }, {} };

static int cmd_backup(ctl_t *x, int argc, char **argv)
{
        bool force = false;
        char *err = NULL;
        int c, r;

        optind = 0; /* 0: glibc starts a fresh scan */
        while ((c = ctl_getopt(x, argc, argv)) >= 0)
                if (c != 'f')
                        return ctl_usage(x);
                else
                        force = true;
        if (optind != argc - 1)
                return ctl_usage(x);
        r = outbox_backup(x->db, argv[optind], force, &err);
        if (r == 0 && !x->json)
                printf("database %s backed up to %s (mode 0600)\n", x->cfg->database, argv[optind]);
        else if (r == 0)
                printf("{\"backup\":\"%s\"}\n", argv[optind]);
        if (r < 0)
                r = ctl_fail(r == -EBUSY ? EX_TEMPFAIL : r == -EEXIST || r == -EACCES || r == -ENOENT ||
                             r == -EISDIR || r == -ELOOP ? EX_CANTCREAT : EX_IOERR,
                             "%s", err ? err : strerror(-r));
        free(err);
        return r;
}

/* ---- test-email ------------------------------------------------------------------------- */

/* Where the service finds its password: smtp.password_file; else the systemd credential,
 * which outside the service is the file the unit's LoadCredential= reads. */
static const char *password_source(const config_t *cfg, char *buf, size_t n, bool *ret_file)
{
        const char *creds = getenv("CREDENTIALS_DIRECTORY");

        *ret_file = true;
        if (cfg->smtp.password_file && *cfg->smtp.password_file)
                return cfg->smtp.password_file;
        if (creds && *creds) {
                *ret_file = false;
                snprintf(buf, n, "%s/smtp-password", creds);
                return buf;
        }
        snprintf(buf, n, "%s", SYSCONFDIR "/meccd/smtp-password");
        return access(buf, F_OK) == 0 ? buf : NULL;
}

static void say(void *userdata, const char *line)
{
        (void) userdata;
        printf("  %s\n", line);
}

static char *test_message(const config_t *cfg, const char *to)
{
        char date[64], host[256] = "localhost";
        time_t now = time(NULL);
        char *m = NULL;

        (void) gethostname(host, sizeof(host) - 1);
        strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", gmtime(&now));
        if (asprintf(&m, "From: %s\r\nTo: <%s>\r\nSubject: meccd test email\r\nDate: %s\r\n"
                         "Message-ID: <test.%lld.%d%s>\r\nMIME-Version: 1.0\r\n"
                         "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
                         "This is a test email from meccctl test-email on %s.\r\n"
                         "It went through %s with the settings meccd uses; nothing else was sent.\r\n",
                     cfg->smtp.from, to, date, (long long) now, (int) getpid(), config_mail_domain(cfg),
                     host, cfg->smtp.url) < 0)
                return NULL;
        return m;
}

static int cmd_test_email(ctl_t *x, int argc, char **argv)
{
        const smtp_config_t *s = &x->cfg->smtp;
        char buf[4096], *password = NULL, *err = NULL, *msg = NULL;
        smtp_config_t pc = *s;
        const char *src;
        smtp_result_t res;
        bool file;
        int r;

        if (argc != 2)
                return ctl_usage(x);
        if (!addr_valid(argv[1]))
                return ctl_fail(EX_USAGE, "\"%s\" is not an email address like volunteer@example.org", argv[1]);
        src = password_source(x->cfg, buf, sizeof(buf), &file);
        printf("relay:    %s (tls = %s)\n", s->url, s->tls_required ? "required" : "none");
        if (s->username && *s->username) {
                if (src) {
                        pc.password_file = (char *) src;
                        r = smtp_load_password(&pc, &password, &err);
                        if (r < 0) {
                                r = ctl_fail(EX_CONFIG, "%s", err ? err : "cannot read the SMTP password");
                                goto out;
                        }
                }
                printf("login:    %s, password %s%s%s\n", s->username,
                       password ? "from " : "not found (looked at smtp.password_file, "
                                             "$CREDENTIALS_DIRECTORY/smtp-password and "
                                             SYSCONFDIR "/meccd/smtp-password)",
                       password ? src : "", password && !file ? " (systemd credential)" : "");
        } else
                puts("login:    none (smtp.username is empty)");
        printf("from:     %s\nto:       %s\n\n", s->return_path ? s->return_path : s->from_addr, argv[1]);
        msg = test_message(x->cfg, argv[1]);
        if (!msg) {
                r = ctl_fail(EX_OSERR, "out of memory");
                goto out;
        }
        fflush(stdout);
        curl_global_init(CURL_GLOBAL_DEFAULT);
        r = smtp_test(s, password, argv[1], msg, say, x, &res);
        curl_global_cleanup();
        if (r < 0) {
                r = ctl_fail(EX_OSERR, "out of memory");
                goto out;
        }
        putchar('\n');
        if (res.outcome == SMTP_SENT) {
                printf("accepted: %s\n", res.reply);
                r = EX_OK;
        } else {
                printf("refused:  %s\n", res.reply);
                if (res.problem == SMTP_PROBLEM_AUTH)
                        puts("          the relay refused the login: check smtp.username and the password");
                else if (res.problem == SMTP_PROBLEM_TLS)
                        puts("          TLS failed: check smtp.url, smtp.tls and smtp.ca_file");
                r = res.outcome == SMTP_PERMANENT && res.problem == SMTP_PROBLEM_NONE ? EX_DATAERR : EX_UNAVAILABLE;
        }
out:
        if (password) {
                explicit_bzero(password, strlen(password));
                free(password);
        }
        free(msg);
        free(err);
        return r;
}

const ctl_verb_t ctl_maint_verbs[] = {
        { "backup", NULL, cmd_backup, backup_opts, "[--force] FILE" },
        { "test-email", NULL, cmd_test_email, NULL, "ADDRESS" },
        {}
};
