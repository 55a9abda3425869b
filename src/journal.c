/* journal.c - structured log lines to the journal, or readable ones to stderr. */
#include <stdarg.h>
#include <stdbool.h>
#include <sys/uio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include "journal.h"

static bool to_journal, quiet;
static const char *ident = "meccd";

void journal_init(const char *name)
{
        const char *force = getenv("MECCD_LOG");

        ident = name;
        if (force && strcmp(force, "journal") == 0)
                to_journal = true;
        else if (force && strcmp(force, "stderr") == 0)
                to_journal = false;
        else
                /* under systemd stderr is the journal stream; prefer native fields */
                to_journal = access("/run/systemd/journal/socket", W_OK) == 0 &&
                             (getenv("JOURNAL_STREAM") || !isatty(STDERR_FILENO));
}

void journal_quiet(bool q)
{
        quiet = q;
}

static const char *prio_name(int p)
{
        switch (p) {
        case LOG_ERR: return "error";
        case LOG_WARNING: return "warning";
        case LOG_NOTICE: return "notice";
        case LOG_DEBUG: return "debug";
        default: return "info";
        }
}

void log_ctx(int priority, const log_ctx_t *ctx, const char *fmt, ...)
{
        static const log_ctx_t none = { 0 };
        char *text = NULL;
        va_list ap;

        if (quiet)
                return;
        if (!ctx)
                ctx = &none;
        va_start(ap, fmt);
        if (vasprintf(&text, fmt, ap) < 0)
                text = NULL;
        va_end(ap);
        if (!text)
                return;
        if (to_journal) {
                char f[8][96];
                struct iovec iov[8];
                int n = 0;

                snprintf(f[n++], sizeof(f[0]), "PRIORITY=%d", priority);
                snprintf(f[n++], sizeof(f[0]), "SYSLOG_IDENTIFIER=%s", ident);
                if (ctx->message_id)
                        snprintf(f[n++], sizeof(f[0]), "MESSAGE_ID=%s", ctx->message_id);
                if (ctx->session)
                        snprintf(f[n++], sizeof(f[0]), "MECCD_SESSION=%lld", (long long) ctx->session);
                if (ctx->registration)
                        snprintf(f[n++], sizeof(f[0]), "MECCD_REGISTRATION=%lld", (long long) ctx->registration);
                if (ctx->outbox)
                        snprintf(f[n++], sizeof(f[0]), "MECCD_OUTBOX=%lld", (long long) ctx->outbox);
                if (ctx->kind)
                        snprintf(f[n++], sizeof(f[0]), "MECCD_KIND=%s", ctx->kind);
                for (int i = 0; i < n; i++)
                        iov[i] = (struct iovec) { f[i], strlen(f[i]) };
                char *m = NULL;
                if (asprintf(&m, "MESSAGE=%s", text) >= 0) {
                        iov[n++] = (struct iovec) { m, strlen(m) };
                        (void) sd_journal_sendv(iov, n);
                        free(m);
                }
        } else {
                fprintf(stderr, "%s: %s%s%s\n", ident,
                        priority <= LOG_WARNING ? prio_name(priority) : "",
                        priority <= LOG_WARNING ? ": " : "", text);
        }
        free(text);
}
