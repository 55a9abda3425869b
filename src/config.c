/* config.c - the schema of meccd.conf, its validation and conversion to config_t. */
#include <confuse.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "addr.h"
#include "config.h"
#include "text.h"

#define STR(x) ((x) ? strdup(x) : NULL)

/* The first error wins: later messages are usually consequences of it. libconfuse
 * has no user pointer for its error callback, and parsing is never concurrent. */
typedef struct {
        const char *path;
        char *err;
} errsink_t;
static errsink_t *current_sink;

static void on_error(cfg_t *cfg, const char *fmt, va_list ap)
{
        errsink_t *sink = current_sink;
        char *msg = NULL;

        if (!sink || sink->err)
                return;
        if (vasprintf(&msg, fmt, ap) < 0)
                return;
        /* sections (smtp, reminders) are created before the file is opened, so their
         * cfg_t has the line but no file name */
        if (cfg && cfg->line > 0) {
                if (asprintf(&sink->err, "%s:%d: %s", sink->path, cfg->line, msg) < 0)
                        sink->err = NULL;
        } else if (cfg) {
                if (asprintf(&sink->err, "%s: %s", sink->path, msg) < 0)
                        sink->err = NULL;
        } else {
                sink->err = msg;
                msg = NULL;
        }
        free(msg);
}

static const char *opt_path(cfg_t *cfg, cfg_opt_t *opt, char *buf, size_t n)
{
        /* libconfuse names the section cfg after the section: "smtp", "reminders" */
        if (cfg && cfg->name && strcmp(cfg->name, "root") != 0)
                snprintf(buf, n, "%s.%s", cfg->name, opt->name);
        else
                snprintf(buf, n, "%s", opt->name);
        return buf;
}

#define BAD(cfg, opt, ...) do { \
                char _n[64], *_m = NULL; \
                if (asprintf(&_m, __VA_ARGS__) >= 0) { \
                        cfg_error(cfg, "option %s: %s", opt_path(cfg, opt, _n, sizeof(_n)), _m); \
                        free(_m); \
                } \
                return -1; \
        } while (0)

static int valid_duration(cfg_t *cfg, cfg_opt_t *opt)
{
        for (unsigned i = 0; i < cfg_opt_size(opt); i++) {
                const char *v = cfg_opt_getnstr(opt, i);
                duration_t d;

                if (clock_parse_duration(v, &d) < 0)
                        BAD(cfg, opt, "\"%s\" is not a duration (like \"7d\", \"48h\", \"30m\", \"90s\", \"1d12h\")", v);
        }
        return 0;
}

static int valid_optional_duration(cfg_t *cfg, cfg_opt_t *opt)
{
        const char *v = cfg_opt_getnstr(opt, 0);

        if (!v || !*v)
                return 0;
        return valid_duration(cfg, opt);
}

static int valid_positive(cfg_t *cfg, cfg_opt_t *opt)
{
        long v = cfg_opt_getnint(opt, 0);

        if (v <= 0 || v > 1000000)
                BAD(cfg, opt, "%ld must be a positive number", v);
        return 0;
}

/* Each connection holds a TLS session and buffers: a handful is plenty for a relay. */
#define CONNECTIONS_MAX 32

static int valid_connections(cfg_t *cfg, cfg_opt_t *opt)
{
        long v = cfg_opt_getnint(opt, 0);

        if (v <= 0 || v > CONNECTIONS_MAX)
                BAD(cfg, opt, "%ld must be from 1 to %d", v, CONNECTIONS_MAX);
        return 0;
}

/* Rosters (and the coordinators' emails) go here when a session names no trainer: an
 * empty list would drop them without a word. */
static int valid_roster_to(cfg_t *cfg, cfg_opt_t *opt)
{
        if (cfg_opt_size(opt) == 0)
                BAD(cfg, opt, "must name at least one address");
        for (unsigned i = 0; i < cfg_opt_size(opt); i++) {
                const char *v = cfg_opt_getnstr(opt, i);

                if (!v || !addr_valid(v))
                        BAD(cfg, opt, "\"%s\" is not a valid email address", v ? v : "");
        }
        return 0;
}

/* A CA file named is a CA file read: a missing one found now, not as every email
 * deferred for three days. */
static int valid_ca_file(cfg_t *cfg, cfg_opt_t *opt)
{
        const char *v = cfg_opt_getnstr(opt, 0);
        struct stat st;

        if (!v || !*v)
                return 0;
        if (stat(v, &st) < 0)
                BAD(cfg, opt, "%s: %s", v, strerror(errno));
        if (!S_ISREG(st.st_mode))
                BAD(cfg, opt, "%s is not a regular file", v);
        return 0;
}

static int valid_timezone(cfg_t *cfg, cfg_opt_t *opt)
{
        const char *v = cfg_opt_getnstr(opt, 0);

        if (!clock_zone_exists(v))
                BAD(cfg, opt, "unknown time zone \"%s\" (see /usr/share/zoneinfo)", v ? v : "");
        return 0;
}

/* The links are optional: empty leaves them out. */
static int valid_url(cfg_t *cfg, cfg_opt_t *opt)
{
        const char *v = cfg_opt_getnstr(opt, 0);

        if (v && *v && !text_is_url(v))
                BAD(cfg, opt, "\"%s\" is not an http(s) URL", v);
        return 0;
}

static int valid_smtp_url(cfg_t *cfg, cfg_opt_t *opt)
{
        const char *v = cfg_opt_getnstr(opt, 0), *host, *end;

        if (!v || (strncmp(v, "smtp://", 7) != 0 && strncmp(v, "smtps://", 8) != 0) ||
            strlen(v) < 9 || strpbrk(v, " \t\r\n"))
                BAD(cfg, opt, "\"%s\" must be smtp://HOST[:PORT] or smtps://HOST[:PORT]", v ? v : "");
        /* a password in the file would be readable by every member of the group and shown
         * by every tool that prints the URL: it comes from password_file or a credential */
        host = strstr(v, "://") + 3;
        end = host + strcspn(host, "/");
        if (memchr(host, '@', (size_t) (end - host)))
                BAD(cfg, opt, "must not hold a user or password: set smtp.username, and the "
                              "password in smtp.password_file or the credential smtp-password");
        return 0;
}

/* The bounce mailbox: IMAP over TLS, IMAP upgraded with STARTTLS (required, never
 * plain), or POP3 over TLS; no credentials in the URL, as for smtp.url. */
static int valid_bounce_url(cfg_t *cfg, cfg_opt_t *opt)
{
        const char *v = cfg_opt_getnstr(opt, 0), *host, *end;

        if (!v || !*v)
                return 0;
        if ((strncmp(v, "imaps://", 8) != 0 && strncmp(v, "imap://", 7) != 0 &&
             strncmp(v, "pop3s://", 8) != 0) || strpbrk(v, " \t\r\n") || !v[strcspn(v, ":") + 3])
                BAD(cfg, opt, "\"%s\" must be imaps://HOST[:PORT]/MAILBOX, imap://HOST[:PORT]/MAILBOX "
                              "(STARTTLS) or pop3s://HOST[:PORT]", v);
        host = strstr(v, "://") + 3;
        end = host + strcspn(host, "/");
        if (memchr(host, '@', (size_t) (end - host)))
                BAD(cfg, opt, "must not hold a user or password: set bounces.username, and the "
                              "password in bounces.password_file or the credential bounce-password");
        return 0;
}

static int valid_tls(cfg_t *cfg, cfg_opt_t *opt)
{
        const char *v = cfg_opt_getnstr(opt, 0);

        if (!v || (strcmp(v, "required") != 0 && strcmp(v, "none") != 0))
                BAD(cfg, opt, "\"%s\" must be \"required\" or \"none\"", v ? v : "");
        return 0;
}

static int valid_mailbox(cfg_t *cfg, cfg_opt_t *opt)
{
        const char *v = cfg_opt_getnstr(opt, 0);
        char *d = NULL, *a = NULL;

        if (!v || !*v) {
                if (strcmp(opt->name, "from") == 0)
                        BAD(cfg, opt, "must not be empty");
                return 0;
        }
        if (addr_parse_mailbox(v, &d, &a) < 0)
                BAD(cfg, opt, "\"%s\" is not an address like \"Name <someone@example.org>\"", v);
        free(d);
        free(a);
        return 0;
}

/* A bare address, where bounces go: a typo here loses every bounce without a word. */
static int valid_address(cfg_t *cfg, cfg_opt_t *opt)
{
        const char *v = cfg_opt_getnstr(opt, 0);

        if (v && *v && !addr_valid(v))
                BAD(cfg, opt, "\"%s\" is not an email address like bounces@example.org", v);
        return 0;
}

static int valid_cancel_url(cfg_t *cfg, cfg_opt_t *opt)
{
        const char *v = cfg_opt_getnstr(opt, 0);

        if (valid_url(cfg, opt) < 0)
                return -1;
        if (v && *v && !strstr(v, "{{token}}"))
                BAD(cfg, opt, "\"%s\" must contain {{token}}", v);
        /* {{token}} is the only value a cancel link has: any other would be empty */
        for (const char *p = v ? strstr(v, "{{") : NULL; p; p = strstr(p + 2, "{{"))
                if (strncmp(p, "{{token}}", 9) != 0)
                        BAD(cfg, opt, "\"%s\": {{token}} is the only placeholder a cancel link can hold", v);
        return 0;
}

static int valid_nonempty(cfg_t *cfg, cfg_opt_t *opt)
{
        const char *v = cfg_opt_getnstr(opt, 0);

        if (!v || !*v)
                BAD(cfg, opt, "must not be empty");
        return 0;
}

/* A hub's export: what libcurl fetches for meccd, with no password in it (SOURCES). */
static int valid_source_url(cfg_t *cfg, cfg_opt_t *opt)
{
        static const char *const schemes[] = { "https://", "http://", "sftp://", "file://" };
        const char *v = cfg_opt_getnstr(opt, 0), *host, *end;
        bool ok = false;

        for (size_t i = 0; v && i < sizeof(schemes) / sizeof(schemes[0]); i++)
                ok = ok || (strncmp(v, schemes[i], strlen(schemes[i])) == 0 && strlen(v) > strlen(schemes[i]));
        if (!ok || strpbrk(v, " \t\r\n"))
                BAD(cfg, opt, "\"%s\" must be an https://, http://, sftp:// or file:// URL", v ? v : "");
        host = strstr(v, "://") + 3;
        end = host + strcspn(host, "/");
        if (memchr(host, '@', (size_t) (end - host)))
                BAD(cfg, opt, "must not hold a user or password: set username, and the password in "
                              "password_file or the credential source-%s-password", cfg_title(cfg));
        return 0;
}

static cfg_opt_t reminder_opts[] = {
        CFG_STR_LIST("elearning", "{\"10d\", \"3d\"}", CFGF_NONE),
        CFG_STR("joining_link", "2d", CFGF_NONE),
        CFG_STR("follow_up", "1d", CFGF_NONE),
        CFG_END()
};

static cfg_opt_t smtp_opts[] = {
        CFG_STR("url", "smtp://localhost:25", CFGF_NONE),
        CFG_STR("tls", "required", CFGF_NONE),
        CFG_STR("username", "", CFGF_NONE),
        CFG_STR("password_file", "", CFGF_NONE),
        CFG_STR("from", "MECC Training <mecc@example.org>", CFGF_NONE),
        CFG_STR("reply_to", "", CFGF_NONE),
        CFG_STR("return_path", "", CFGF_NONE),
        CFG_STR("ca_file", "", CFGF_NONE),
        CFG_INT("connections", 2, CFGF_NONE),
        CFG_INT("timeout", 30, CFGF_NONE),
        CFG_INT("max_per_minute", 120, CFGF_NONE),
        CFG_STR("give_up_after", "3d", CFGF_NONE),
        CFG_END()
};

static cfg_opt_t bounce_opts[] = {
        CFG_STR("url", "", CFGF_NONE),
        CFG_STR("username", "", CFGF_NONE),
        CFG_STR("password_file", "", CFGF_NONE),
        CFG_INT("interval", 300, CFGF_NONE),
        CFG_STR("ca_file", "", CFGF_NONE),
        CFG_END()
};

/* A course sets what it changes: no defaults, so an option it leaves out is seen as
 * unset (cfg_size 0) and the global value stands. */
static cfg_opt_t course_reminder_opts[] = {
        CFG_STR_LIST("elearning", NULL, CFGF_NODEFAULT),
        CFG_STR("joining_link", NULL, CFGF_NODEFAULT),
        CFG_STR("follow_up", NULL, CFGF_NODEFAULT),
        CFG_END()
};

static cfg_opt_t course_opts[] = {
        CFG_STR("title", NULL, CFGF_NODEFAULT),
        CFG_STR("templates", NULL, CFGF_NODEFAULT),
        CFG_STR("organisation", NULL, CFGF_NODEFAULT),
        CFG_STR("elearning_url", NULL, CFGF_NODEFAULT),
        CFG_STR("signpost_url", NULL, CFGF_NODEFAULT),
        CFG_STR("feedback_url", NULL, CFGF_NODEFAULT),
        CFG_STR("cancel_url", NULL, CFGF_NODEFAULT),
        CFG_STR_LIST("roster_to", NULL, CFGF_NODEFAULT),
        CFG_STR("booking_cutoff", NULL, CFGF_NODEFAULT),
        CFG_BOOL("require_elearning", cfg_false, CFGF_NODEFAULT),
        CFG_BOOL("attendance_required", cfg_false, CFGF_NODEFAULT),
        CFG_STR("attendance_min", NULL, CFGF_NODEFAULT),
        CFG_STR("retention", NULL, CFGF_NODEFAULT),
        CFG_SEC("reminders", course_reminder_opts, CFGF_NODEFAULT),
        CFG_END()
};

static cfg_opt_t source_column_opts[] = {
        CFG_STR("ref", "ref", CFGF_NONE),
        CFG_STR("session", "session", CFGF_NONE),
        CFG_STR("name", "name", CFGF_NONE),
        CFG_STR("email", "email", CFGF_NONE),
        CFG_STR("status", "status", CFGF_NONE),
        CFG_STR("registered_at", "registered_at", CFGF_NONE),
        CFG_STR("organisation", "organisation", CFGF_NONE),
        CFG_END()
};

static cfg_opt_t source_opts[] = {
        CFG_STR("url", NULL, CFGF_NODEFAULT),
        CFG_STR("username", "", CFGF_NONE),
        CFG_STR("password_file", "", CFGF_NONE),
        CFG_STR("ca_file", "", CFGF_NONE),
        CFG_INT("interval", 600, CFGF_NONE),
        CFG_SEC("columns", source_column_opts, CFGF_NONE),
        CFG_STR_LIST("cancelled", "{\"cancelled\"}", CFGF_NONE),
        CFG_END()
};

static cfg_opt_t opts[] = {
        CFG_STR("timezone", "Europe/London", CFGF_NONE),
        CFG_STR("database", LOCALSTATEDIR "/lib/meccd/meccd.db", CFGF_NONE),
        CFG_STR("templates", SYSCONFDIR "/meccd/templates", CFGF_NONE),
        CFG_INT("scan_interval", 60, CFGF_NONE),
        CFG_STR("booking_cutoff", "7d", CFGF_NONE),
        CFG_BOOL("require_elearning", cfg_false, CFGF_NONE),
        CFG_STR("organisation", "Oxfordshire MECC Training", CFGF_NONE),
        CFG_STR("elearning_url", "", CFGF_NONE),
        CFG_STR("signpost_url", "https://livewell.oxfordshire.gov.uk/", CFGF_NONE),
        CFG_STR("feedback_url", "", CFGF_NONE),
        CFG_STR("cancel_url", "", CFGF_NONE),
        CFG_STR_LIST("roster_to", "{\"mecc-team@example.org\"}", CFGF_NONE),
        CFG_STR("retention", "180d", CFGF_NONE),
        CFG_SEC("reminders", reminder_opts, CFGF_NONE),
        CFG_SEC("smtp", smtp_opts, CFGF_NONE),
        CFG_SEC("bounces", bounce_opts, CFGF_NONE),
        CFG_BOOL("attendance_required", cfg_false, CFGF_NONE),
        CFG_STR("attendance_min", "", CFGF_NONE),
        CFG_SEC("course", course_opts, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
        CFG_SEC("source", source_opts, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
        CFG_END()
};

static void set_validators(cfg_t *cfg)
{
        static const struct {
                const char *name;
                cfg_validate_callback_t fn;
        } v[] = {
                { "timezone", valid_timezone },
                { "database", valid_nonempty },
                { "templates", valid_nonempty },
                { "scan_interval", valid_positive },
                { "booking_cutoff", valid_duration },
                { "elearning_url", valid_url },
                { "signpost_url", valid_url },
                { "feedback_url", valid_url },
                { "cancel_url", valid_cancel_url },
                { "organisation", valid_nonempty },
                { "roster_to", valid_roster_to },
                { "retention", valid_duration },
                { "reminders|elearning", valid_duration },
                { "reminders|joining_link", valid_duration },
                { "reminders|follow_up", valid_optional_duration },
                { "smtp|url", valid_smtp_url },
                { "smtp|tls", valid_tls },
                { "smtp|from", valid_mailbox },
                { "smtp|reply_to", valid_mailbox },
                { "smtp|return_path", valid_address },
                { "smtp|connections", valid_connections },
                { "smtp|ca_file", valid_ca_file },
                { "smtp|timeout", valid_positive },
                { "smtp|max_per_minute", valid_positive },
                { "smtp|give_up_after", valid_duration },
                { "bounces|url", valid_bounce_url },
                { "bounces|interval", valid_positive },
                { "bounces|ca_file", valid_ca_file },
                { "attendance_min", valid_optional_duration },
                { "course|title", valid_nonempty },
                { "course|templates", valid_nonempty },
                { "course|organisation", valid_nonempty },
                { "course|elearning_url", valid_url },
                { "course|signpost_url", valid_url },
                { "course|feedback_url", valid_url },
                { "course|cancel_url", valid_cancel_url },
                { "course|roster_to", valid_roster_to },
                { "course|booking_cutoff", valid_duration },
                { "course|attendance_min", valid_optional_duration },
                { "course|retention", valid_duration },
                { "course|reminders|elearning", valid_duration },
                { "course|reminders|joining_link", valid_duration },
                { "course|reminders|follow_up", valid_optional_duration },
                { "source|url", valid_source_url },
                { "source|ca_file", valid_ca_file },
                { "source|interval", valid_positive },
                { "source|columns|ref", valid_nonempty },
                { "source|columns|session", valid_nonempty },
                { "source|columns|name", valid_nonempty },
                { "source|columns|email", valid_nonempty },
                { "source|columns|status", valid_nonempty },
                { "source|columns|registered_at", valid_nonempty },
                { "source|columns|organisation", valid_nonempty },
        };
        for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
                cfg_set_validate_func(cfg, v[i].name, v[i].fn);
}

static int cmp_duration_desc(const void *a, const void *b)
{
        int64_t x = duration_approx_secs(a), y = duration_approx_secs(b);

        return x < y ? 1 : x > y ? -1 : 0;
}

static int set_attendance_min(config_t *c, const char *v)
{
        c->attendance_min_set = v && *v;
        if (c->attendance_min_set && clock_parse_duration(v, &c->attendance_min) < 0)
                return -EINVAL;
        return 0;
}

static int convert(cfg_t *cfg, config_t *c)
{
        cfg_t *r = cfg_getsec(cfg, "reminders"), *s = cfg_getsec(cfg, "smtp");
        const char *fu = cfg_getstr(r, "follow_up");
        char *display = NULL;

        c->timezone = STR(cfg_getstr(cfg, "timezone"));
        c->database = STR(cfg_getstr(cfg, "database"));
        c->templates = STR(cfg_getstr(cfg, "templates"));
        c->scan_interval = cfg_getint(cfg, "scan_interval");
        (void) clock_parse_duration(cfg_getstr(cfg, "booking_cutoff"), &c->booking_cutoff);
        c->require_elearning = cfg_getbool(cfg, "require_elearning");
        c->organisation = STR(cfg_getstr(cfg, "organisation"));
        c->elearning_url = STR(cfg_getstr(cfg, "elearning_url"));
        c->signpost_url = STR(cfg_getstr(cfg, "signpost_url"));
        c->feedback_url = STR(cfg_getstr(cfg, "feedback_url"));
        c->cancel_url = STR(cfg_getstr(cfg, "cancel_url"));
        (void) clock_parse_duration(cfg_getstr(cfg, "retention"), &c->retention);

        c->n_roster_to = cfg_size(cfg, "roster_to");
        c->roster_to = calloc(c->n_roster_to + 1, sizeof(char *));
        if (!c->roster_to)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_roster_to; i++)
                c->roster_to[i] = STR(cfg_getnstr(cfg, "roster_to", i));

        c->n_reminders_elearning = cfg_size(r, "elearning");
        c->reminders_elearning = calloc(c->n_reminders_elearning + 1, sizeof(duration_t));
        if (!c->reminders_elearning)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_reminders_elearning; i++)
                (void) clock_parse_duration(cfg_getnstr(r, "elearning", i), &c->reminders_elearning[i]);
        qsort(c->reminders_elearning, c->n_reminders_elearning, sizeof(duration_t), cmp_duration_desc);
        (void) clock_parse_duration(cfg_getstr(r, "joining_link"), &c->reminder_joining_link);
        c->follow_up_enabled = fu && *fu;
        if (c->follow_up_enabled)
                (void) clock_parse_duration(fu, &c->reminder_follow_up);

        c->smtp.url = STR(cfg_getstr(s, "url"));
        c->smtp.tls_required = strcmp(cfg_getstr(s, "tls"), "required") == 0;
        c->smtp.username = STR(cfg_getstr(s, "username"));
        c->smtp.password_file = STR(cfg_getstr(s, "password_file"));
        c->smtp.from = STR(cfg_getstr(s, "from"));
        c->smtp.reply_to = STR(cfg_getstr(s, "reply_to"));
        c->smtp.ca_file = STR(cfg_getstr(s, "ca_file"));
        c->smtp.connections = cfg_getint(s, "connections");
        c->smtp.timeout = cfg_getint(s, "timeout");
        c->smtp.max_per_minute = cfg_getint(s, "max_per_minute");
        (void) clock_parse_duration(cfg_getstr(s, "give_up_after"), &c->smtp.give_up_after);
        if (addr_parse_mailbox(c->smtp.from, &display, &c->smtp.from_addr) < 0)
                return -EINVAL;
        free(display);
        c->smtp.return_path = STR(*cfg_getstr(s, "return_path") ? cfg_getstr(s, "return_path")
                                                                 : c->smtp.from_addr);
        s = cfg_getsec(cfg, "bounces");
        c->bounces.url = STR(cfg_getstr(s, "url"));
        c->bounces.username = STR(cfg_getstr(s, "username"));
        c->bounces.password_file = STR(cfg_getstr(s, "password_file"));
        c->bounces.interval = cfg_getint(s, "interval");
        c->bounces.ca_file = STR(cfg_getstr(s, "ca_file"));
        c->attendance_required = cfg_getbool(cfg, "attendance_required");
        return set_attendance_min(c, cfg_getstr(cfg, "attendance_min"));
}

/* ---- courses ---------------------------------------------------------------------------- */

static void put_str(char **field, cfg_t *sec, const char *name)
{
        if (cfg_size(sec, name) == 0)
                return;
        free(*field);
        *field = STR(cfg_getstr(sec, name));
}

static void put_duration(duration_t *field, cfg_t *sec, const char *name)
{
        if (cfg_size(sec, name))
                (void) clock_parse_duration(cfg_getstr(sec, name), field);
}

/* The global settings with what course section sec sets put over them. */
static int convert_course(cfg_t *root, cfg_t *sec, config_t *cc)
{
        int r = convert(root, cc);

        if (r < 0)
                return r;
        cc->course = STR(cfg_title(sec));
        if (cfg_size(sec, "title"))
                cc->course_title = STR(cfg_getstr(sec, "title"));
        put_str(&cc->templates, sec, "templates");
        put_str(&cc->organisation, sec, "organisation");
        put_str(&cc->elearning_url, sec, "elearning_url");
        put_str(&cc->signpost_url, sec, "signpost_url");
        put_str(&cc->feedback_url, sec, "feedback_url");
        put_str(&cc->cancel_url, sec, "cancel_url");
        put_duration(&cc->booking_cutoff, sec, "booking_cutoff");
        put_duration(&cc->retention, sec, "retention");
        if (cfg_size(sec, "require_elearning"))
                cc->require_elearning = cfg_getbool(sec, "require_elearning");
        if (cfg_size(sec, "attendance_required"))
                cc->attendance_required = cfg_getbool(sec, "attendance_required");
        if (cfg_size(sec, "attendance_min") && (r = set_attendance_min(cc, cfg_getstr(sec, "attendance_min"))) < 0)
                return r;
        if (cfg_size(sec, "roster_to")) {
                for (size_t i = 0; i < cc->n_roster_to; i++)
                        free(cc->roster_to[i]);
                free(cc->roster_to);
                cc->n_roster_to = cfg_size(sec, "roster_to");
                cc->roster_to = calloc(cc->n_roster_to + 1, sizeof(char *));
                if (!cc->roster_to)
                        return -ENOMEM;
                for (size_t i = 0; i < cc->n_roster_to; i++)
                        cc->roster_to[i] = STR(cfg_getnstr(sec, "roster_to", i));
        }
        if (cfg_size(sec, "reminders")) {
                cfg_t *rm = cfg_getsec(sec, "reminders");
                const char *fu;

                if (cfg_size(rm, "elearning")) {
                        free(cc->reminders_elearning);
                        cc->n_reminders_elearning = cfg_size(rm, "elearning");
                        cc->reminders_elearning = calloc(cc->n_reminders_elearning + 1, sizeof(duration_t));
                        if (!cc->reminders_elearning)
                                return -ENOMEM;
                        for (size_t i = 0; i < cc->n_reminders_elearning; i++)
                                (void) clock_parse_duration(cfg_getnstr(rm, "elearning", i),
                                                            &cc->reminders_elearning[i]);
                        qsort(cc->reminders_elearning, cc->n_reminders_elearning, sizeof(duration_t),
                              cmp_duration_desc);
                }
                put_duration(&cc->reminder_joining_link, rm, "joining_link");
                if (cfg_size(rm, "follow_up")) {
                        fu = cfg_getstr(rm, "follow_up");
                        cc->follow_up_enabled = fu && *fu;
                        if (cc->follow_up_enabled)
                                (void) clock_parse_duration(fu, &cc->reminder_follow_up);
                }
        }
        return 0;
}

static int convert_courses(cfg_t *cfg, config_t *c)
{
        size_t n = cfg_size(cfg, "course");

        c->courses = calloc(n + 1, sizeof(config_t *));
        if (!c->courses)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                config_t *cc = calloc(1, sizeof(*cc));
                int r;

                if (!cc)
                        return -ENOMEM;
                c->courses[c->n_courses++] = cc;
                cc->path = STR(c->path);
                r = convert_course(cfg, cfg_getnsec(cfg, "course", i), cc);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- sources (SOURCES) ------------------------------------------------------------------ */

static int convert_source(cfg_t *sec, source_config_t *s)
{
        cfg_t *col = cfg_getsec(sec, "columns");

        s->name = STR(cfg_title(sec));
        s->url = STR(cfg_getstr(sec, "url"));
        s->username = STR(cfg_getstr(sec, "username"));
        s->password_file = STR(cfg_getstr(sec, "password_file"));
        s->ca_file = STR(cfg_getstr(sec, "ca_file"));
        s->interval = cfg_getint(sec, "interval");
        s->col_ref = STR(cfg_getstr(col, "ref"));
        s->col_session = STR(cfg_getstr(col, "session"));
        s->col_name = STR(cfg_getstr(col, "name"));
        s->col_email = STR(cfg_getstr(col, "email"));
        s->col_status = STR(cfg_getstr(col, "status"));
        s->col_registered_at = STR(cfg_getstr(col, "registered_at"));
        s->col_organisation = STR(cfg_getstr(col, "organisation"));
        s->n_cancelled = cfg_size(sec, "cancelled");
        s->cancelled = calloc(s->n_cancelled + 1, sizeof(char *));
        if (!s->name || !s->url || !s->cancelled)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_cancelled; i++)
                s->cancelled[i] = STR(cfg_getnstr(sec, "cancelled", i));
        return 0;
}

static int convert_sources(cfg_t *cfg, config_t *c)
{
        size_t n = cfg_size(cfg, "source");

        c->sources = calloc(n + 1, sizeof(source_config_t));
        if (!c->sources)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                int r = convert_source(cfg_getnsec(cfg, "source", i), &c->sources[c->n_sources++]);

                if (r < 0)
                        return r;
        }
        return 0;
}

static void source_free(source_config_t *s)
{
        free(s->name);
        free(s->url);
        free(s->username);
        free(s->password_file);
        free(s->ca_file);
        free(s->col_ref);
        free(s->col_session);
        free(s->col_name);
        free(s->col_email);
        free(s->col_status);
        free(s->col_registered_at);
        free(s->col_organisation);
        for (size_t i = 0; s->cancelled && i < s->n_cancelled; i++)
                free(s->cancelled[i]);
        free(s->cancelled);
}

const config_t *config_settings(const config_t *c, const char *course)
{
        if (!course || !*course)
                return c;
        for (size_t i = 0; i < c->n_courses; i++)
                if (strcmp(c->courses[i]->course, course) == 0)
                        return c->courses[i];
        return NULL;
}

long config_attendance_min(const config_t *c, int64_t starts_at, int64_t ends_at)
{
        if (c->attendance_min_set)
                return (long) (duration_approx_secs(&c->attendance_min) / 60);
        return ends_at > starts_at ? (long) ((ends_at - starts_at) / 120) : 0;
}

#define CONFIG_MAX_SIZE (1024 * 1024)

/* What text_read_file()'s error means for a config file. */
static void set_read_error(const char *path, int r, char **ret_err)
{
        const char *why = r == -EINVAL ? "not a regular file" :
                          r == -EBADMSG ? "holds a NUL byte" : strerror(-r);

        if (asprintf(ret_err, "%s: cannot read: %s", path, why) < 0)
                *ret_err = NULL;
}

/* libconfuse 3.3 counts a comment as two extra lines and cannot parse one inside a
 * list, so comments are blanked out before it sees the text; the newlines stay put and
 * error messages point at the right line. Its lexer's rules: outside quotes, "#" and
 * "//" run to the end of the line and C comments to their end; a backslash in a quoted
 * string escapes the next character. */
static unsigned blank_comments(char *s)
{
        char quote = 0;
        size_t i = 0;

        while (s[i]) {
                if (quote) {
                        if (s[i] == '\\' && s[i + 1])
                                i++;
                        else if (s[i] == quote)
                                quote = 0;
                        i++;
                } else if (s[i] == '"' || s[i] == '\'') {
                        quote = s[i++];
                } else if (s[i] == '#' || (s[i] == '/' && s[i + 1] == '/')) {
                        while (s[i] && s[i] != '\n')
                                s[i++] = ' ';
                } else if (s[i] == '/' && s[i + 1] == '*') {
                        unsigned line = 1;

                        for (size_t k = 0; k < i; k++)
                                line += s[k] == '\n';
                        s[i++] = ' ';
                        s[i++] = ' ';
                        while (s[i] && !(s[i] == '*' && s[i + 1] == '/')) {
                                if (s[i] != '\n')
                                        s[i] = ' ';
                                i++;
                        }
                        if (!s[i])
                                return line; /* it would swallow the rest of the file */
                        s[i++] = ' ';
                        s[i++] = ' ';
                } else
                        i++;
        }
        return 0;
}

/* The line that sets a top-level option (the last that does: it is the one that counts),
 * in text whose comments are blanked out. */
static unsigned line_of_option(const char *text, const char *name)
{
        size_t n = strlen(name);
        unsigned line = 1, found = 0;

        for (const char *p = text; *p; p++) {
                const char *q = p + strspn(p, " \t");

                if (strncmp(q, name, n) == 0 && strchr(" \t=", q[n]))
                        found = line;
                p = strchrnul(p, '\n');
                if (!*p)
                        break;
                line++;
        }
        return found;
}

int config_parse(const char *path, config_t **ret, char **ret_err)
{
        errsink_t sink = { path, NULL };
        config_t *c = NULL;
        char *text = NULL;
        unsigned unterminated;
        cfg_t *cfg;
        int r;

        cfg = cfg_init(opts, CFGF_NONE);
        if (!cfg)
                return -ENOMEM;
        current_sink = &sink;
        cfg_set_error_function(cfg, on_error);
        set_validators(cfg);

        r = text_read_file(path, CONFIG_MAX_SIZE, &text, NULL);
        if (r < 0) {
                set_read_error(path, r, ret_err);
                goto out;
        }
        unterminated = blank_comments(text);
        if (unterminated) {
                r = -EINVAL;
                if (asprintf(ret_err, "%s:%u: a comment opened with /* is never closed", path, unterminated) < 0)
                        *ret_err = NULL;
                goto out;
        }
        r = cfg_parse_buf(cfg, text);
        if (r != CFG_SUCCESS) {
                r = -EINVAL;
                *ret_err = sink.err ? sink.err : strdup("invalid configuration");
                sink.err = NULL;
                goto out;
        }
        /* libconfuse calls no validator for an empty list */
        if (cfg_size(cfg, "roster_to") == 0) {
                r = -EINVAL;
                if (asprintf(ret_err, "%s:%u: option roster_to: must name at least one address", path,
                             line_of_option(text, "roster_to")) < 0)
                        *ret_err = NULL;
                goto out;
        }
        /* a source is its URL: there is no default to fetch */
        for (unsigned i = 0; i < cfg_size(cfg, "source"); i++) {
                cfg_t *sec = cfg_getnsec(cfg, "source", i);

                if (cfg_size(sec, "url") == 0) {
                        r = -EINVAL;
                        if (asprintf(ret_err, "%s:%d: source \"%s\": option url must be set", path,
                                     sec->line, cfg_title(sec)) < 0)
                                *ret_err = NULL;
                        goto out;
                }
        }
        /* validators only see what the file sets: the default zone must exist too */
        if (!clock_zone_exists(cfg_getstr(cfg, "timezone"))) {
                r = -EINVAL;
                if (asprintf(ret_err, "%s: option timezone: unknown time zone \"%s\"", path,
                             cfg_getstr(cfg, "timezone")) < 0)
                        *ret_err = NULL;
                goto out;
        }
        c = calloc(1, sizeof(*c));
        if (!c) {
                r = -ENOMEM;
                goto out;
        }
        c->path = strdup(path);
        r = convert(cfg, c);
        if (r >= 0)
                r = convert_courses(cfg, c);
        if (r >= 0)
                r = convert_sources(cfg, c);
        if (r < 0) {
                if (asprintf(ret_err, "%s: invalid configuration", path) < 0)
                        *ret_err = NULL;
                goto out;
        }
        *ret = c;
        c = NULL;
out:
        current_sink = NULL;
        free(text);
        free(sink.err);
        config_free(c);
        cfg_free(cfg);
        return r;
}

int config_apply(const config_t *c, char **ret_err)
{
        int r = clock_set_zone(c->timezone);

        /* only if the zone went away since config_parse() saw it */
        if (r < 0 && asprintf(ret_err, "%s: option timezone: cannot select \"%s\": %s",
                              c->path, c->timezone, strerror(-r)) < 0)
                *ret_err = NULL;
        return r;
}

int config_load(const char *path, config_t **ret, char **ret_err)
{
        config_t *c = NULL;
        int r;

        r = config_parse(path, &c, ret_err);
        if (r < 0)
                return r;
        r = config_apply(c, ret_err);
        if (r < 0) {
                config_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

config_t *config_free(config_t *c)
{
        if (!c)
                return NULL;
        free(c->path);
        free(c->timezone);
        free(c->database);
        free(c->templates);
        free(c->organisation);
        free(c->elearning_url);
        free(c->signpost_url);
        free(c->feedback_url);
        free(c->cancel_url);
        for (size_t i = 0; c->roster_to && i < c->n_roster_to; i++)
                free(c->roster_to[i]);
        free(c->roster_to);
        free(c->reminders_elearning);
        free(c->smtp.url);
        free(c->smtp.username);
        free(c->smtp.password_file);
        free(c->smtp.from);
        free(c->smtp.from_addr);
        free(c->smtp.reply_to);
        free(c->smtp.return_path);
        free(c->smtp.ca_file);
        free(c->bounces.url);
        free(c->bounces.username);
        free(c->bounces.password_file);
        free(c->bounces.ca_file);
        free(c->course);
        free(c->course_title);
        for (size_t i = 0; c->courses && i < c->n_courses; i++)
                config_free(c->courses[i]);
        free(c->courses);
        for (size_t i = 0; c->sources && i < c->n_sources; i++)
                source_free(&c->sources[i]);
        free(c->sources);
        free(c);
        return NULL;
}

const duration_t *config_last_reminder(const config_t *c)
{
        return c->n_reminders_elearning ? &c->reminders_elearning[c->n_reminders_elearning - 1] : NULL;
}

const char *config_mail_domain(const config_t *c)
{
        const char *at = c->smtp.from_addr ? strrchr(c->smtp.from_addr, '@') : NULL;

        return at ? at : "@meccd.invalid";
}
