/* meccd.c - the daemon: load, open, then scan and deliver on a timer until told to stop. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <getopt.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <syslog.h>
#include <curl/curl.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "clock.h"
#include "bounce.h"
#include "config.h"
#include "db.h"
#include "journal.h"
#include "deliver.h"
#include "outbox.h"
#include "render.h"
#include "report.h"
#include "runas.h"
#include "scan.h"
#include "smtp.h"
#include "source.h"

/* The stop's wait for emails in flight: well inside the unit's TimeoutStopSec=20s, so
 * that meccd ends the stop, not systemd's SIGKILL. */
#define STOP_GRACE_USEC (8 * USEC_PER_SEC)
/* The scan and stop timers: sd-event may fire them this late, to wake up less often. */
#define TIMER_ACCURACY_USEC (100 * USEC_PER_MSEC)
/* A scan that met a locked database is tried again this soon, in seconds. */
#define SCAN_BUSY_RETRY_SEC 1
/* How long a statement of the daemon waits for the website's write lock: short, since
 * the wait blocks the event loop; a locked step is tried again on a timer instead. */
#define DAEMON_BUSY_TIMEOUT_MS 100
/* While another meccd holds the database at start: look again this often, in seconds. */
#define LOCK_RETRY_SEC 1
/* How often the daemon looks whether meccctl asked for delivery now (outbox flush, retry):
 * a look is one PRAGMA data_version unless the database changed. */
#define WATCH_USEC (1 * USEC_PER_SEC)

typedef struct {
        const char *config_path;
        const char *now_arg;    /* --now, parsed once the configured zone is known */
        bool once, check;
        const char *check_user; /* --user: whose access --check-config tests */
        config_t *cfg;
        templates_t *tpl;
        db_t *db;
        deliver_t *deliver;
        sources_t *sources;     /* the hubs' exports, fetched in the loop */
        sd_event *event;
        sd_event_source *timer, *grace;
        sd_event_source *more;  /* the rest of a scan too long for one turn of the loop */
        sd_event_source *watch; /* looks for meccctl's "deliver now" */
        int64_t data_version;   /* the database's, at the last look */
        char *wanted;           /* meta deliver_wanted at the last look */
        int64_t next_scan;      /* Unix seconds, for the status line */
        int64_t scan_now;       /* the moment the scan under way judges by */
        scan_step_t cursor;     /* where it is */
        scan_stats_t stats;     /* what it did so far */
        bool stopping;
        sd_event_source *bounce_timer; /* the next look at the bounce mailbox */
        bounce_job_t *bounce_job;       /* the look under way, on its thread */
} daemon_t;

static void usage(FILE *f)
{
        fprintf(f, "Usage: meccd [-c FILE] [--once] [--now TIME] [--check-config [--user NAME]] [--version]\n"
                   "\n"
                   "  -c, --config FILE  configuration file (default %s)\n"
                   "      --once         run one scan, deliver what is due, and exit\n"
                   "      --now TIME     take TIME (\"YYYY-MM-DD HH:MM\", local) as the clock\n"
                   "      --check-config check the configuration and templates, then exit\n"
                   "      --user NAME    with --check-config as root: check that NAME can read\n"
                   "                     them (default: the user meccd, when it exists)\n"
                   "      --version      print the version and exit\n",
                DEFAULT_CONFIG);
}

/* Config and templates together: both must be good before either is used, and only then
 * is the config put into force. A failure is logged and changes nothing. */
static int load(const char *path, const char *message_id, config_t **ret_cfg, templates_t **ret_tpl)
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
                log_ctx_t ctx = { .message_id = message_id };
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

        (void) report_status_line(d->db, &open, &queued, &failed);
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
static int on_bounce_timer(sd_event_source *s, uint64_t usec, void *userdata);

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

/* One journal line for a scan that did something, with what was delivered since. */
static void log_scan(daemon_t *d)
{
        deliver_stats_t ds = deliver_take_stats(d->deliver);
        char what[256];

        scan_stats_format(&d->stats, what, sizeof(what));
        if (!*what && !ds.sent && !ds.deferred && !ds.failed && !ds.expired)
                return;
        log_msg(LOG_INFO, "scan: %s%sdelivered since the last scan: %u sent, %u deferred, %u failed, %u dropped",
                *what ? what : "", *what ? "; " : "", ds.sent, ds.deferred, ds.failed, ds.expired);
}

/* Go on with the scan under way: a slice at a time, the loop turning in between. */
static int scan_more(daemon_t *d)
{
        int r = scan_continue(d->db, d->cfg, d->scan_now, &d->cursor, &d->stats);

        if (r > 0)
                return sd_event_source_set_enabled(d->more, SD_EVENT_ONESHOT);
        if (r == -EBUSY) {
                /* the website holds the database: soon, not at the next interval */
                d->next_scan = clock_now() + SCAN_BUSY_RETRY_SEC;
                notify_status(d, "");
                return arm_scan(d, SCAN_BUSY_RETRY_SEC * USEC_PER_SEC);
        }
        if (r == 0) {
                mark_scanned(d, d->scan_now);
                log_scan(d);
        }
        d->cursor = 0;
        deliver_kick(d->deliver);
        d->next_scan = clock_now() + d->cfg->scan_interval;
        r = arm_scan(d, (usec_t) d->cfg->scan_interval * USEC_PER_SEC);
        notify_status(d, "");
        return r;
}

static int on_more(sd_event_source *s, void *userdata)
{
        daemon_t *d = userdata;

        (void) s;
        return d->stopping ? 0 : scan_more(d);
}

/* A database root put back (a restore, a `cp`) is found at the next scan, not by a
 * write that fails and is rolled back for ever. */
static bool writable(daemon_t *d)
{
        char *err = NULL;

        if (db_check_writable(d->cfg->database, &err) >= 0)
                return true;
        log_msg(LOG_ERR, "%s", err ? err : "cannot write the database");
        (void) sd_notifyf(0, "STATUS=stopped: cannot write the database %s (see the journal)",
                          d->cfg->database);
        d->next_scan = clock_now() + d->cfg->scan_interval;
        free(err);
        return false;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        daemon_t *d = userdata;

        (void) s;
        (void) usec;
        if (!writable(d))
                return arm_scan(d, (usec_t) d->cfg->scan_interval * USEC_PER_SEC);
        /* a scan that stopped at a locked step carries on from it, judged by the new now */
        if (d->cursor == 0)
                d->stats = (scan_stats_t) { 0 };
        d->scan_now = clock_now();
        return scan_more(d);
}

/* meccctl outbox flush or retry bumped meta deliver_wanted: send what is due now, even
 * if the relay seemed down (the admin says it is fixed). Another process's commit is
 * seen as a new data_version first, so a quiet database costs one pragma a second. */
static bool deliver_wanted(daemon_t *d)
{
        int64_t v = db_data_version(d->db);
        char *w;
        bool changed;

        if (v == d->data_version)
                return false;
        d->data_version = v;
        w = db_meta_get(d->db, "deliver_wanted");
        changed = w && (!d->wanted || strcmp(w, d->wanted) != 0);
        free(d->wanted);
        d->wanted = w;
        return changed;
}

static int on_watch(sd_event_source *s, uint64_t usec, void *userdata)
{
        daemon_t *d = userdata;

        (void) usec;
        if (!d->stopping && deliver_wanted(d)) {
                log_msg(LOG_INFO, "delivery asked for by meccctl: sending what is due now");
                deliver_kick(d->deliver);
        }
        (void) sd_event_source_set_time_relative(s, WATCH_USEC);
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

/* Each hub's export now, then every interval (SOURCES): a failure is logged and retried. */
static void start_sources(daemon_t *d)
{
        if (!d->cfg->n_sources)
                return;
        d->sources = sources_new(d->db, d->cfg, d->event);
        if (!d->sources || sources_start(d->sources) < 0)
                log_msg(LOG_ERR, "cannot start fetching the sources: %s", strerror(ENOMEM));
}

/* --once: each export fetched and applied before the scan; the loop turns until all
 * fetches ended (a stop ends it too). */
static void fetch_sources_once(daemon_t *d)
{
        int state;

        if (!d->cfg->n_sources)
                return;
        d->sources = sources_new(d->db, d->cfg, d->event);
        if (!d->sources || sources_fetch_all(d->sources) < 0) {
                log_msg(LOG_ERR, "cannot fetch the sources: %s", strerror(ENOMEM));
                return;
        }
        while (sources_busy(d->sources) && (state = sd_event_get_state(d->event)) != SD_EVENT_FINISHED &&
               state >= 0 && sd_event_run(d->event, UINT64_MAX) >= 0)
                ;
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
        if (load(d->config_path, MID_RELOAD_FAILED, &cfg, &tpl) < 0) {
                /* load() logged the file, line and option; the old settings stay */
                notify_status(d, "READY=1\n");
                return 0;
        }
        if (strcmp(cfg->database, d->cfg->database) != 0)
                log_msg(LOG_WARNING, "the database path changed; it takes effect at the next restart");
        free(cfg->database);
        cfg->database = strdup(d->cfg->database);
        deliver_reconfigure(d->deliver, cfg, tpl);
        d->sources = sources_free(d->sources); /* a fetch in flight changes nothing */
        templates_free(d->tpl);
        config_free(d->cfg);
        d->tpl = tpl;
        d->cfg = cfg;
        start_sources(d);
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
        d->stopping = true;
        (void) sd_notify(0, "STOPPING=1\nSTATUS=stopping");
        log_ctx(LOG_INFO, &ctx, "stopping on signal %u", si->ssi_signo);
        deliver_stop(d->deliver);
        d->sources = sources_free(d->sources);
        if (d->timer)
                (void) sd_event_source_set_enabled(d->timer, SD_EVENT_OFF);
        if (d->watch)
                (void) sd_event_source_set_enabled(d->watch, SD_EVENT_OFF);
        if (!deliver_busy(d->deliver))
                return sd_event_exit(d->event, 0);
        deliver_on_idle(d->deliver, exit_when_idle, d);
        return sd_event_add_time_relative(d->event, &d->grace, CLOCK_MONOTONIC, STOP_GRACE_USEC,
                                          TIMER_ACCURACY_USEC, on_grace_over, d);
}

/* SIGTERM and SIGINT stop; SIGHUP reloads the daemon and stops a one-shot run, which
 * has nothing to reload for. Either way the stop records what was sent. */
static int add_signals(daemon_t *d)
{
        sd_event_signal_handler_t hup = d->once ? on_term : on_hup;
        int r;

        if ((r = sd_event_add_signal(d->event, NULL, SIGTERM | SD_EVENT_SIGNAL_PROCMASK, on_term, d)) < 0 ||
            (r = sd_event_add_signal(d->event, NULL, SIGINT | SD_EVENT_SIGNAL_PROCMASK, on_term, d)) < 0 ||
            (r = sd_event_add_signal(d->event, NULL, SIGHUP | SD_EVENT_SIGNAL_PROCMASK, hup, d)) < 0)
                return r;
        r = sd_event_add_defer(d->event, &d->more, on_more, d);
        if (r >= 0)
                r = sd_event_source_set_enabled(d->more, SD_EVENT_OFF);
        return r;
}

/* Signals, the first scan at once, the watchdog, READY=1, then the loop until a stop. */
static int run_loop(daemon_t *d)
{
        log_ctx_t ctx = { .message_id = MID_STARTED };
        int r;

        r = add_signals(d);
        if (r < 0)
                goto fail;
        deliver_on_idle(d->deliver, on_idle, d);
        d->next_scan = clock_now();
        r = arm_scan(d, 0);
        if (r < 0)
                goto fail;
        (void) deliver_wanted(d); /* what was asked before the start: the first scan sends it */
        r = sd_event_add_time_relative(d->event, &d->bounce_timer, CLOCK_MONOTONIC, 0,
                                       TIMER_ACCURACY_USEC, on_bounce_timer, d);
        if (r < 0)
                goto fail;
        r = sd_event_add_time_relative(d->event, &d->watch, CLOCK_MONOTONIC, WATCH_USEC,
                                       TIMER_ACCURACY_USEC, on_watch, d);
        if (r < 0)
                goto fail;
        r = sd_event_set_watchdog(d->event, true);
        if (r < 0)
                goto fail;
        start_sources(d);
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

/* What a look at the bounce mailbox found, or why it could not look. */
static void log_bounces(int r, const bounce_stats_t *st, const char *err)
{
        if (r < 0) {
                log_ctx_t ctx = { .message_id = MID_BOUNCE_FAILED };
                log_ctx(LOG_WARNING, &ctx, "%s", err ? err : "bounce mailbox: cannot read it");
        } else if (st->looked > 0)
                log_msg(LOG_INFO, "bounce mailbox: %u new message%s, %u delivery report%s, %u newly unreachable",
                        st->looked, st->looked == 1 ? "" : "s", st->reports, st->reports == 1 ? "" : "s",
                        st->unreachable);
}

static int bounce_password(daemon_t *d, char **ret)
{
        char *err = NULL;
        int r = smtp_load_secret(d->cfg->bounces.password_file, "bounce-password", ret, &err);

        if (r < 0)
                log_bounces(r, NULL, err ? err : "bounce mailbox: cannot read the password");
        free(err);
        return r;
}

static void forget_password(char *pw)
{
        if (pw)
                explicit_bzero(pw, strlen(pw));
        free(pw);
}

/* One look at the bounce mailbox, blocking (a one-shot run has no loop to keep turning):
 * a mailbox that cannot be read is logged and the scan goes on. */
static void look_for_bounces(daemon_t *d, int64_t now)
{
        bounce_stats_t st;
        char *pw = NULL, *err = NULL;
        int r;

        if (!d->cfg->bounces.url || !*d->cfg->bounces.url || bounce_password(d, &pw) < 0)
                return;
        r = bounce_check(d->db, d->cfg, pw, now, NULL, &st, &err);
        forget_password(pw);
        log_bounces(r, &st, err);
        free(err);
}

static void on_bounces_done(int r, const bounce_stats_t *st, const char *err, void *userdata)
{
        daemon_t *d = userdata;

        d->bounce_job = NULL;
        log_bounces(r, st, err);
}

/* The daemon's look, every bounces.interval, on a thread (bounce.h says why); a look
 * still under way when the next falls due is not doubled. The timer runs even with no
 * mailbox configured, so that a reload can turn the looks on. */
static int on_bounce_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        daemon_t *d = userdata;
        char *pw = NULL;
        int r;

        (void) usec;
        if (!d->stopping && !d->bounce_job && d->cfg->bounces.url && *d->cfg->bounces.url &&
            bounce_password(d, &pw) >= 0) {
                r = bounce_job_start(d->event, d->cfg, pw, clock_now(), on_bounces_done, d, &d->bounce_job);
                if (r < 0)
                        log_msg(LOG_ERR, "bounce mailbox: cannot start a look: %s", strerror(-r));
                forget_password(pw);
        }
        r = sd_event_source_set_time_relative(s, (usec_t) d->cfg->bounces.interval * USEC_PER_SEC);
        if (r >= 0)
                r = sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return r;
}

/* One scan, then deliver everything due (respecting the rate limit), then return. A
 * SIGTERM, SIGINT or SIGHUP stops it as it stops the daemon: what was sent is recorded. */
static int run_once(daemon_t *d)
{
        int r;

        r = add_signals(d);
        if (r < 0)
                return EX_OSERR;
        fetch_sources_once(d);
        if (sd_event_get_state(d->event) == SD_EVENT_FINISHED)
                return EX_OK; /* stopped while fetching: nothing else starts */
        d->scan_now = clock_now();
        look_for_bounces(d, d->scan_now);
        r = scan_run(d->db, d->cfg, d->scan_now, &d->stats);
        if (r == -EBUSY)
                return EX_TEMPFAIL;
        if (r < 0)
                return EX_UNAVAILABLE;
        mark_scanned(d, d->scan_now);
        deliver_on_idle(d->deliver, exit_when_idle, d);
        deliver_kick(d->deliver);
        if (deliver_busy(d->deliver) && sd_event_loop(d->event) < 0)
                return EX_OSERR;
        log_scan(d);
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
                { "user", required_argument, NULL, 'u' },
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
                case 'u': d->check_user = optarg; break;
                case 'v': printf("meccd %s\n", VERSION); return 0;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return -EINVAL;
                }
        }
        if (d->check_user && !d->check) {
                fprintf(stderr, "meccd: --user goes with --check-config\n");
                usage(stderr);
                return -EINVAL;
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

/* Each failure as a line of *err. */
static void add_failure(char **err, const char *what, const char *path, const char *why)
{
        char *more = NULL;

        if (asprintf(&more, "%s%s%s %s: %s", *err ? *err : "", *err ? "\n" : "", what, path, why) < 0)
                return;
        free(*err);
        *err = more;
}

static void check_readable(char **err, const char *what, const char *path)
{
        int fd;

        if (!path || !*path)
                return;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                add_failure(err, what, path, strerror(errno));
        else
                close(fd);
}

/* As the service user (runas_call()): what meccd opens at start, at a reload and when
 * it delivers. */
static int check_access(void *userdata, char **err)
{
        daemon_t *d = userdata;
        char path[4096], *dberr = NULL;
        struct dirent *e;
        DIR *dir;

        check_readable(err, "configuration", d->config_path);
        dir = opendir(d->cfg->templates);
        if (!dir)
                add_failure(err, "templates", d->cfg->templates, strerror(errno));
        while (dir && (e = readdir(dir)))
                if (e->d_name[0] != '.' && (strstr(e->d_name, ".txt") || strstr(e->d_name, ".html"))) {
                        snprintf(path, sizeof(path), "%s/%s", d->cfg->templates, e->d_name);
                        check_readable(err, "template", path);
                }
        if (dir)
                closedir(dir);
        check_readable(err, "smtp.ca_file", d->cfg->smtp.ca_file);
        check_readable(err, "smtp.password_file", d->cfg->smtp.password_file);
        for (size_t i = 0; i < d->cfg->n_sources; i++) {
                check_readable(err, "source.ca_file", d->cfg->sources[i].ca_file);
                check_readable(err, "source.password_file", d->cfg->sources[i].password_file);
        }
        if (db_check_writable(d->cfg->database, &dberr) < 0)
                add_failure(err, "database", d->cfg->database, dberr ? dberr : "cannot write it");
        free(dberr);
        return *err ? 1 : 0;
}

/* --check-config: the config and templates loaded; the password is the last thing to read. */
static int check_config(daemon_t *d)
{
        const char *user = d->check_user ? d->check_user : runas_default_user();
        char *pw = NULL, *err = NULL;
        int r;

        if (user && geteuid() != 0) {
                fprintf(stderr, "meccd: --user %s: only root can check as another user\n", user);
                return EX_USAGE;
        }
        if (user) {
                r = runas_call(user, check_access, d, &err);
                if (r == -ENOENT) {
                        fprintf(stderr, "meccd: --user %s: no such user\n", user);
                        return EX_USAGE;
                }
                if (r != 0) {
                        fprintf(stderr, "meccd: checked as user %s, who cannot use:\n%s\n", user,
                                err ? err : strerror(-r));
                        free(err);
                        return EX_CONFIG;
                }
        }

        r = smtp_load_password(&d->cfg->smtp, &pw, &err);
        free(pw);
        for (size_t i = 0; r >= 0 && i < d->cfg->n_sources; i++) {
                pw = NULL;
                r = source_load_password(&d->cfg->sources[i], &pw, &err);
                free(pw);
        }
        if (r < 0) {
                fprintf(stderr, "meccd: %s\n", err ? err : "cannot read the SMTP password");
                free(err);
                return EX_CONFIG;
        }
        if (user)
                printf("%s: configuration and templates are good; user %s can read them and write "
                       "the database\n", d->config_path, user);
        else
                printf("%s: configuration and templates are good\n", d->config_path);
        return EX_OK;
}

/* Before READY=1, the daemon waits for what another process holds (the website's write
 * lock, a `meccd --once` still sending), saying so; a one-shot run does not wait. */
static bool wait_for(daemon_t *d, const char *what)
{
        if (d->once)
                return false;
        (void) sd_notifyf(0, "STATUS=waiting: %s\nEXTEND_TIMEOUT_USEC=%llu", what,
                          (unsigned long long) (LOCK_RETRY_SEC + 5) * USEC_PER_SEC);
        sleep(LOCK_RETRY_SEC);
        return true;
}

/* The database (writable by us, held by no other sender), and the emails a stop
 * interrupted put back in the queue. */
static int open_database(daemon_t *d)
{
        const char *path = d->cfg->database;
        char *err = NULL;
        int r;

        r = db_check_writable(path, &err);
        if (r < 0)
                goto fail;
        while ((r = db_open(path, &d->db, &err)) == -EBUSY && wait_for(d, "the database is locked by another process")) {
                free(err);
                err = NULL;
        }
        if (r < 0)
                goto fail;
        while ((r = db_lock_sender(d->db)) == -EBUSY && wait_for(d, "another meccd is sending from the database"))
                ;
        if (r == -EBUSY) {
                log_msg(LOG_NOTICE, "another meccd is already sending from %s; it sends what is due", path);
                return EX_TEMPFAIL;
        }
        if (r < 0 && asprintf(&err, "database %s: cannot take the sender's lock: %s", path, strerror(-r)) < 0)
                err = NULL;
        if (r < 0)
                goto fail;
        if (!d->once)
                db_set_busy_timeout(d->db, DAEMON_BUSY_TIMEOUT_MS);
        while ((r = outbox_recover(d->db, clock_now())) == -EBUSY && wait_for(d, "the database is locked by another process"))
                ;
        if (r > 0)
                log_msg(LOG_NOTICE, "%d email%s interrupted by a stop will be tried again", r, r == 1 ? "" : "s");
        if (r == -EBUSY)
                return EX_TEMPFAIL;
        return EX_OK;
fail:
        log_msg(LOG_ERR, "%s", err ? err : "cannot open the database");
        free(err);
        return r == -EBUSY ? EX_TEMPFAIL : EX_UNAVAILABLE;
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
        bounce_job_cancel(d->bounce_job);
        sd_event_source_disable_unref(d->bounce_timer);
        deliver_free(d->deliver);
        sources_free(d->sources);
        sd_event_source_unref(d->timer);
        sd_event_source_unref(d->grace);
        sd_event_source_disable_unref(d->more);
        sd_event_source_disable_unref(d->watch);
        free(d->wanted);
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

        /* no core dump, which would hold the SMTP password (a watchdog abort dumps) */
        (void) prctl(PR_SET_DUMPABLE, 0);
        r = parse_argv(argc, argv, &d);
        if (r <= 0)
                return r < 0 ? EX_USAGE : EX_OK;
        /* an explicit check answers whoever asked (a terminal, ssh, Ansible, CI, the
         * unit's ExecReload=) on stderr, never only in the journal */
        if (d.check)
                (void) setenv("MECCD_LOG", "stderr", 1);
        journal_init("meccd");
        if (load(d.config_path, MID_CONFIG_INVALID, &d.cfg, &d.tpl) < 0) {
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
