/* meccd.c - the daemon: load, open, then scan and deliver on a timer until told to stop. */
#include <errno.h>
#include <inttypes.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <syslog.h>
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

/* The stop's wait for emails in flight: well inside the unit's TimeoutStopSec=20s, so
 * that meccd ends the stop, not systemd's SIGKILL. */
#define STOP_GRACE_USEC (8 * USEC_PER_SEC)
/* The scan and stop timers: sd-event may fire them this late, to wake up less often. */
#define TIMER_ACCURACY_USEC (100 * USEC_PER_MSEC)

typedef struct {
        const char *config_path;
        const char *now_arg;    /* --now, parsed once the configured zone is known */
        bool once, check;
        config_t *cfg;
        templates_t *tpl;
        db_t *db;
        deliver_t *deliver;
        sd_event *event;
        sd_event_source *timer, *grace;
        int64_t next_scan;      /* Unix seconds, for the status line */
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

/* Config and templates together: both must be good before either is used, and only then
 * is the config put into force. A failure is logged and changes nothing. */
static int load(const char *path, config_t **ret_cfg, templates_t **ret_tpl)
{
        config_t *cfg = NULL;
        templates_t *tpl = NULL;
        char *err = NULL;
        int r;

        r = config_parse(path, &cfg, &err);
        if (r >= 0)
                r = templates_load(cfg->templates, cfg, &tpl, &err);
        if (r >= 0)
                r = config_apply(cfg, &err);
        if (r < 0) {
                log_ctx_t ctx = { .message_id = MID_RELOAD_FAILED };
                log_ctx(LOG_ERR, &ctx, "%s", err ? err : "cannot load the configuration");
                free(err);
                templates_free(tpl);
                config_free(cfg);
                return r;
        }
        *ret_cfg = cfg;
        *ret_tpl = tpl;
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

/* The last scan's moment, for `meccctl status`. */
static void mark_scanned(daemon_t *d, int64_t now)
{
        char mark[32];

        snprintf(mark, sizeof(mark), "%lld", (long long) now);
        (void) db_meta_set(d->db, "last_scan_at", mark);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata);

/* The next scan, delay from now: the timer is made once, then re-armed. */
static int arm_scan(daemon_t *d, usec_t delay)
{
        int r;

        if (!d->timer)
                return sd_event_add_time_relative(d->event, &d->timer, CLOCK_MONOTONIC, delay,
                                                  TIMER_ACCURACY_USEC, on_timer, d);
        r = sd_event_source_set_time_relative(d->timer, delay);
        if (r >= 0)
                r = sd_event_source_set_enabled(d->timer, SD_EVENT_ONESHOT);
        return r;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        daemon_t *d = userdata;
        scan_stats_t stats;
        int64_t now = clock_now();
        int r;

        (void) s;
        (void) usec;
        if (scan_run(d->db, d->cfg, now, &stats) < 0)
                d->failed_scans++;
        mark_scanned(d, now);
        deliver_kick(d->deliver);
        d->next_scan = clock_now() + d->cfg->scan_interval;
        r = arm_scan(d, (usec_t) d->cfg->scan_interval * USEC_PER_SEC);
        notify_status(d, "");
        return r;
}

static int on_hup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        daemon_t *d = userdata;
        config_t *cfg = NULL;
        templates_t *tpl = NULL;
        log_ctx_t ctx = { .message_id = MID_RELOADED };

        (void) s;
        (void) si;
        (void) sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64 "\nSTATUS=reloading the configuration",
                          clock_monotonic());
        if (load(d->config_path, &cfg, &tpl) < 0) {
                /* load() logged the file, line and option; the old settings stay */
                notify_status(d, "READY=1\n");
                return 0;
        }
        if (strcmp(cfg->database, d->cfg->database) != 0)
                log_msg(LOG_WARNING, "the database path changed; it takes effect at the next restart");
        free(cfg->database);
        cfg->database = strdup(d->cfg->database);
        deliver_reconfigure(d->deliver, cfg, tpl);
        templates_free(d->tpl);
        config_free(d->cfg);
        d->tpl = tpl;
        d->cfg = cfg;
        log_ctx(LOG_INFO, &ctx, "configuration reloaded from %s", d->config_path);
        (void) arm_scan(d, 0); /* scan now with the new rules */
        notify_status(d, "READY=1\n");
        return 0;
}

static int on_grace_over(sd_event_source *s, uint64_t usec, void *userdata)
{
        daemon_t *d = userdata;

        (void) s;
        (void) usec;
        log_msg(LOG_NOTICE, "%u email%s still in flight will be tried again at the next start",
                deliver_in_flight(d->deliver), deliver_in_flight(d->deliver) == 1 ? "" : "s");
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
        deliver_stop(d->deliver);
        if (d->timer)
                (void) sd_event_source_set_enabled(d->timer, SD_EVENT_OFF);
        if (deliver_in_flight(d->deliver) == 0)
                return sd_event_exit(d->event, 0);
        deliver_on_idle(d->deliver, exit_when_idle, d);
        return sd_event_add_time_relative(d->event, &d->grace, CLOCK_MONOTONIC, STOP_GRACE_USEC,
                                          TIMER_ACCURACY_USEC, on_grace_over, d);
}

/* Signals, the first scan at once, the watchdog, READY=1, then the loop until a stop. */
static int run_loop(daemon_t *d)
{
        log_ctx_t ctx = { .message_id = MID_STARTED };
        int r;

        if ((r = sd_event_add_signal(d->event, NULL, SIGTERM | SD_EVENT_SIGNAL_PROCMASK, on_term, d)) < 0 ||
            (r = sd_event_add_signal(d->event, NULL, SIGINT | SD_EVENT_SIGNAL_PROCMASK, on_term, d)) < 0 ||
            (r = sd_event_add_signal(d->event, NULL, SIGHUP | SD_EVENT_SIGNAL_PROCMASK, on_hup, d)) < 0)
                goto fail;
        deliver_on_idle(d->deliver, on_idle, d);
        d->next_scan = clock_now();
        r = arm_scan(d, 0);
        if (r < 0)
                goto fail;
        r = sd_event_set_watchdog(d->event, true);
        if (r < 0)
                goto fail;
        log_ctx(LOG_INFO, &ctx, "meccd %s started: database %s, scan every %lds", VERSION,
                d->cfg->database, d->cfg->scan_interval);
        notify_status(d, "READY=1\n");
        r = sd_event_loop(d->event);
        if (r < 0)
                goto fail;
        return EX_OK;
fail:
        log_msg(LOG_ERR, "event loop: %s", strerror(-r));
        return EX_OSERR;
}

/* One scan, then deliver everything due (respecting the rate limit), then return. */
static int run_once(daemon_t *d)
{
        int64_t now = clock_now();
        int r;

        r = scan_run(d->db, d->cfg, now, NULL);
        if (r == -EBUSY)
                return EX_TEMPFAIL;
        if (r < 0)
                return EX_UNAVAILABLE;
        mark_scanned(d, now);
        deliver_on_idle(d->deliver, exit_when_idle, d);
        deliver_kick(d->deliver);
        if (deliver_busy(d->deliver) && sd_event_loop(d->event) < 0)
                return EX_OSERR;
        return EX_OK;
}

/* 1 to go on, 0 to exit at once (--help, --version), -EINVAL on a usage error. */
static int parse_argv(int argc, char **argv, daemon_t *d)
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
        int c;

        while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) >= 0) {
                switch (c) {
                case 'c': d->config_path = optarg; break;
                case 'o': d->once = true; break;
                case 'n': d->now_arg = optarg; break;
                case 'k': d->check = true; break;
                case 'v': printf("meccd %s\n", VERSION); return 0;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return -EINVAL;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "meccd: unexpected argument \"%s\"\n", argv[optind]);
                usage(stderr);
                return -EINVAL;
        }
        return 1;
}

/* --now, read in the configured zone: so after the config is in force. */
static int set_clock(daemon_t *d)
{
        int64_t t;

        if (!d->now_arg)
                return EX_OK;
        if (clock_parse_time(d->now_arg, &t) < 0) {
                fprintf(stderr, "meccd: --now: \"%s\" is not a time like \"2026-09-22 10:30\"\n",
                        d->now_arg);
                return EX_USAGE;
        }
        clock_set_now(t);
        return EX_OK;
}

/* --check-config: the config and templates loaded; the password is the last thing to read. */
static int check_config(daemon_t *d)
{
        char *pw = NULL, *err = NULL;
        int r;

        r = smtp_load_password(&d->cfg->smtp, &pw, &err);
        free(pw);
        if (r < 0) {
                fprintf(stderr, "meccd: %s\n", err ? err : "cannot read the SMTP password");
                free(err);
                return EX_CONFIG;
        }
        printf("%s: configuration and templates are good\n", d->config_path);
        return EX_OK;
}

/* The database, and the emails a stop interrupted put back in the queue. */
static int open_database(daemon_t *d)
{
        char *err = NULL;
        int r;

        r = db_open(d->cfg->database, &d->db, &err);
        if (r < 0) {
                log_msg(LOG_ERR, "%s", err ? err : "cannot open the database");
                free(err);
                return r == -EBUSY ? EX_TEMPFAIL : EX_UNAVAILABLE;
        }
        r = outbox_recover(d->db, clock_now());
        if (r > 0)
                log_msg(LOG_NOTICE, "%d email%s interrupted by a stop will be tried again", r, r == 1 ? "" : "s");
        return EX_OK;
}

/* The event loop and the outbox that delivers in it. */
static int setup_delivery(daemon_t *d)
{
        int r;

        curl_global_init(CURL_GLOBAL_DEFAULT);
        r = sd_event_default(&d->event);
        if (r < 0) {
                log_msg(LOG_ERR, "event loop: %s", strerror(-r));
                return EX_OSERR;
        }
        d->deliver = deliver_new(d->db, d->cfg, d->tpl, d->event);
        if (!d->deliver)
                return EX_OSERR;
        return EX_OK;
}

static void daemon_done(daemon_t *d)
{
        deliver_free(d->deliver);
        sd_event_source_unref(d->timer);
        sd_event_source_unref(d->grace);
        sd_event_unref(d->event);
        db_close(d->db);
        templates_free(d->tpl);
        config_free(d->cfg);
        curl_global_cleanup();
}

int main(int argc, char **argv)
{
        daemon_t d = { .config_path = DEFAULT_CONFIG };
        int r, ret;

        r = parse_argv(argc, argv, &d);
        if (r <= 0)
                return r < 0 ? EX_USAGE : EX_OK;
        journal_init("meccd");
        if (load(d.config_path, &d.cfg, &d.tpl) < 0) {
                ret = EX_CONFIG;
                goto out;
        }
        ret = set_clock(&d);
        if (ret != EX_OK)
                goto out;
        if (d.check) {
                ret = check_config(&d);
                goto out;
        }
        ret = open_database(&d);
        if (ret != EX_OK)
                goto out;
        ret = setup_delivery(&d);
        if (ret != EX_OK)
                goto out;
        ret = d.once ? run_once(&d) : run_loop(&d);
out:
        daemon_done(&d);
        return ret;
}
