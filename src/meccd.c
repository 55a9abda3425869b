/* meccd.c - the daemon: load, open, then scan and deliver on a timer until told to stop. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <syslog.h>
#include <time.h>
#include <curl/curl.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "clock.h"
#include "config.h"
#include "db.h"
#include "journal.h"
#include "deliver.h"
#include "outbox.h"
#include "render.h"
#include "scan.h"
#include "smtp.h"

#define STOP_GRACE_USEC (8 * 1000000ULL) /* systemd waits 10 s; leave room to exit */

typedef struct {
        const char *config_path;
        config_t *cfg;
        templates_t *tpl;
        db_t *db;
        deliver_t *outbox;
        sd_event *event;
        sd_event_source *timer, *grace;
        int64_t next_scan;
        unsigned failed_scans;
} daemon_t;

static void usage(FILE *f)
{
        fprintf(f, "Usage: meccd [-c FILE] [--once] [--now TIME] [--check-config] [--version]\n"
                   "\n"
                   "  -c, --config FILE  configuration file (default %s)\n"
                   "      --once         run one scan, deliver what is due, and exit\n"
                   "      --now TIME     take TIME (\"YYYY-MM-DD HH:MM\", local) as the clock\n"
                   "      --check-config check the configuration and templates, then exit\n"
                   "      --version      print the version and exit\n",
                DEFAULT_CONFIG);
}

/* Config and templates together: both must be good before either is used. */
static int load(const char *path, config_t **ret_cfg, templates_t **ret_tpl)
{
        config_t *cfg = NULL;
        char *err = NULL;
        int r;

        r = config_load(path, &cfg, &err);
        if (r >= 0)
                r = templates_load(cfg->templates, cfg, ret_tpl, &err);
        if (r < 0) {
                log_ctx_t ctx = { .message_id = MID_RELOAD_FAILED };
                log_ctx(LOG_ERR, &ctx, "%s", err ? err : "cannot load the configuration");
                free(err);
                config_free(cfg);
                return r;
        }
        *ret_cfg = cfg;
        return 0;
}

static void notify_status(daemon_t *d, const char *prefix)
{
        long queued = 0, failed = 0, open = 0;
        char when[16] = "-";
        sqlite3_stmt *st;

        (void) outbox_counts(d->db, &queued, &failed);
        st = db_stmt(d->db, "SELECT count(*) FROM sessions WHERE status = 'open'");
        if (st && db_step(st) == 1)
                open = sqlite3_column_int64(st, 0);
        if (st)
                sqlite3_reset(st);
        if (d->next_scan)
                clock_format_hm(d->next_scan, when, sizeof(when));
        (void) sd_notifyf(0, "%sSTATUS=next scan %s; %ld open session%s; %ld queued; %ld failed",
                          prefix, when, open, open == 1 ? "" : "s", queued, failed);
}

static void on_idle(void *userdata)
{
        daemon_t *d = userdata;

        notify_status(d, "");
}

static void exit_when_idle(void *userdata)
{
        daemon_t *d = userdata;

        (void) sd_event_exit(d->event, 0);
}

static int schedule(daemon_t *d);

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        daemon_t *d = userdata;
        scan_stats_t stats;
        int64_t now = clock_now();
        char mark[32];

        (void) s;
        (void) usec;
        if (scan_run(d->db, d->cfg, now, &stats) < 0)
                d->failed_scans++;
        snprintf(mark, sizeof(mark), "%lld", (long long) now);
        (void) db_meta_set(d->db, "last_scan_at", mark);
        deliver_kick(d->outbox);
        return schedule(d);
}

static int schedule(daemon_t *d)
{
        uint64_t usec = (uint64_t) d->cfg->scan_interval * 1000000ULL;
        int r;

        d->next_scan = clock_now() + d->cfg->scan_interval;
        if (!d->timer)
                return sd_event_add_time_relative(d->event, &d->timer, CLOCK_MONOTONIC, usec,
                                                  100000, on_timer, d);
        r = sd_event_source_set_time_relative(d->timer, usec);
        if (r >= 0)
                r = sd_event_source_set_enabled(d->timer, SD_EVENT_ONESHOT);
        notify_status(d, "");
        return r;
}

static int on_hup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        daemon_t *d = userdata;
        config_t *cfg = NULL;
        templates_t *tpl = NULL;
        struct timespec ts;
        log_ctx_t ctx = { .message_id = MID_RELOADED };

        (void) s;
        (void) si;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        (void) sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading the configuration",
                          (unsigned long long) ts.tv_sec * 1000000ULL + ts.tv_nsec / 1000);
        if (load(d->config_path, &cfg, &tpl) < 0) {
                /* load() logged the file, line and option; the old settings stay */
                (void) clock_set_zone(d->cfg->timezone);
                notify_status(d, "READY=1\n");
                return 0;
        }
        if (strcmp(cfg->database, d->cfg->database) != 0)
                log_msg(LOG_WARNING, "the database path changed; it takes effect at the next restart");
        free(cfg->database);
        cfg->database = strdup(d->cfg->database);
        deliver_reconfigure(d->outbox, cfg, tpl);
        templates_free(d->tpl);
        config_free(d->cfg);
        d->tpl = tpl;
        d->cfg = cfg;
        log_ctx(LOG_INFO, &ctx, "configuration reloaded from %s", d->config_path);
        (void) sd_event_source_set_time_relative(d->timer, 0); /* scan now with the new rules */
        (void) sd_event_source_set_enabled(d->timer, SD_EVENT_ONESHOT);
        notify_status(d, "READY=1\n");
        return 0;
}

static int on_grace_over(sd_event_source *s, uint64_t usec, void *userdata)
{
        daemon_t *d = userdata;

        (void) s;
        (void) usec;
        log_msg(LOG_NOTICE, "%u email%s still in flight will be tried again at the next start",
                deliver_in_flight(d->outbox), deliver_in_flight(d->outbox) == 1 ? "" : "s");
        return sd_event_exit(d->event, 0);
}

/* Start nothing new, let the messages in flight finish, then exit. */
static int on_term(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        daemon_t *d = userdata;
        log_ctx_t ctx = { .message_id = MID_STOPPING };

        (void) s;
        (void) sd_notify(0, "STOPPING=1\nSTATUS=stopping");
        log_ctx(LOG_INFO, &ctx, "stopping on signal %u", si->ssi_signo);
        deliver_stop(d->outbox);
        if (d->timer)
                (void) sd_event_source_set_enabled(d->timer, SD_EVENT_OFF);
        if (deliver_in_flight(d->outbox) == 0)
                return sd_event_exit(d->event, 0);
        deliver_on_idle(d->outbox, exit_when_idle, d);
        return sd_event_add_time_relative(d->event, &d->grace, CLOCK_MONOTONIC, STOP_GRACE_USEC,
                                          0, on_grace_over, d);
}

static int run_loop(daemon_t *d)
{
        log_ctx_t ctx = { .message_id = MID_STARTED };
        int r;

        if ((r = sd_event_add_signal(d->event, NULL, SIGTERM | SD_EVENT_SIGNAL_PROCMASK, on_term, d)) < 0 ||
            (r = sd_event_add_signal(d->event, NULL, SIGINT | SD_EVENT_SIGNAL_PROCMASK, on_term, d)) < 0 ||
            (r = sd_event_add_signal(d->event, NULL, SIGHUP | SD_EVENT_SIGNAL_PROCMASK, on_hup, d)) < 0)
                return r;
        deliver_on_idle(d->outbox, on_idle, d);
        /* the first scan runs at once */
        d->next_scan = clock_now();
        r = sd_event_add_time_relative(d->event, &d->timer, CLOCK_MONOTONIC, 0, 0, on_timer, d);
        if (r < 0)
                return r;
        r = sd_event_set_watchdog(d->event, true);
        if (r < 0)
                return r;
        log_ctx(LOG_INFO, &ctx, "meccd %s started: database %s, scan every %lds", VERSION,
                d->cfg->database, d->cfg->scan_interval);
        notify_status(d, "READY=1\n");
        return sd_event_loop(d->event);
}

/* One scan, then deliver everything due (respecting the rate limit), then return. */
static int run_once(daemon_t *d)
{
        int64_t now = clock_now();
        char mark[32];
        int r;

        r = scan_run(d->db, d->cfg, now, NULL);
        if (r == -EBUSY)
                return EX_TEMPFAIL;
        if (r < 0)
                return EX_UNAVAILABLE;
        snprintf(mark, sizeof(mark), "%lld", (long long) now);
        (void) db_meta_set(d->db, "last_scan_at", mark);
        deliver_on_idle(d->outbox, exit_when_idle, d);
        deliver_kick(d->outbox);
        if (deliver_busy(d->outbox)) {
                r = sd_event_loop(d->event);
                if (r < 0)
                        return EX_OSERR;
        }
        return EX_OK;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' },
                { "once", no_argument, NULL, 'o' },
                { "now", required_argument, NULL, 'n' },
                { "check-config", no_argument, NULL, 'k' },
                { "version", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        daemon_t d = { .config_path = DEFAULT_CONFIG };
        bool once = false, check = false;
        const char *now_arg = NULL;
        char *err = NULL;
        int c, r, ret = EX_OK;

        while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) >= 0) {
                switch (c) {
                case 'c': d.config_path = optarg; break;
                case 'o': once = true; break;
                case 'n': now_arg = optarg; break;
                case 'k': check = true; break;
                case 'v': printf("meccd %s\n", VERSION); return EX_OK;
                case 'h': usage(stdout); return EX_OK;
                default: usage(stderr); return EX_USAGE;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "meccd: unexpected argument \"%s\"\n", argv[optind]);
                usage(stderr);
                return EX_USAGE;
        }
        journal_init("meccd");
        if (load(d.config_path, &d.cfg, &d.tpl) < 0)
                return EX_CONFIG;
        if (now_arg) {
                int64_t t;

                /* parsed after the config so that it is read in the configured zone */
                if (clock_parse_time(now_arg, &t) < 0) {
                        fprintf(stderr, "meccd: --now: \"%s\" is not a time like \"2026-09-22 10:30\"\n", now_arg);
                        ret = EX_USAGE;
                        goto out;
                }
                clock_set_now(t);
        }
        if (check) {
                char *pw = NULL;

                r = smtp_load_password(&d.cfg->smtp, &pw, &err);
                free(pw);
                if (r < 0) {
                        fprintf(stderr, "meccd: %s\n", err ? err : "cannot read the SMTP password");
                        ret = EX_CONFIG;
                } else
                        printf("%s: configuration and templates are good\n", d.config_path);
                goto out;
        }
        curl_global_init(CURL_GLOBAL_DEFAULT);
        r = db_open(d.cfg->database, &d.db, &err);
        if (r < 0) {
                log_msg(LOG_ERR, "%s", err ? err : "cannot open the database");
                ret = r == -EBUSY ? EX_TEMPFAIL : EX_UNAVAILABLE;
                goto out;
        }
        r = outbox_recover(d.db, clock_now());
        if (r > 0)
                log_msg(LOG_NOTICE, "%d email%s interrupted by a stop will be tried again", r, r == 1 ? "" : "s");
        r = sd_event_default(&d.event);
        if (r < 0) {
                log_msg(LOG_ERR, "event loop: %s", strerror(-r));
                ret = EX_OSERR;
                goto out;
        }
        d.outbox = deliver_new(d.db, d.cfg, d.tpl, d.event);
        if (!d.outbox) {
                ret = EX_OSERR;
                goto out;
        }
        if (once)
                ret = run_once(&d);
        else {
                r = run_loop(&d);
                if (r < 0) {
                        log_msg(LOG_ERR, "event loop: %s", strerror(-r));
                        ret = EX_OSERR;
                }
        }
out:
        free(err);
        deliver_free(d.outbox);
        sd_event_source_unref(d.timer);
        sd_event_source_unref(d.grace);
        sd_event_unref(d.event);
        db_close(d.db);
        templates_free(d.tpl);
        config_free(d.cfg);
        curl_global_cleanup();
        return ret;
}
