/* meccctl.c - the admin's command: global options, finding the command, opening the
 * configuration and the database, and what every command shares (errors, argv). The
 * commands themselves are in ctl-*.c, by group. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "clock.h"
#include "ctl.h"
#include "journal.h"

static const ctl_verb_t *const groups[] = {
        ctl_session_verbs, ctl_registration_verbs, ctl_outbox_verbs, ctl_report_verbs,
        ctl_attendance_verbs,
        ctl_maint_verbs,
};

#define FOREACH_VERB(v)                                                                          \
        for (size_t _g = 0; _g < sizeof(groups) / sizeof(groups[0]); _g++)                      \
                for (const ctl_verb_t *v = groups[_g]; v->group; v++)

/* ---- errors ------------------------------------------------------------------------------- */

int ctl_fail(int code, const char *fmt, ...)
{
        va_list ap;

        fputs("meccctl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return code;
}

void ctl_print_usage(FILE *f, const ctl_verb_t *v)
{
        size_t indent = 2 + strlen(v->group) + (v->name ? 1 + strlen(v->name) : 0) + 1;

        fprintf(f, "  %s%s%s", v->group, v->name ? " " : "", v->name ? v->name : "");
        if (v->usage && *v->usage) {
                fputc(' ', f);
                for (const char *p = v->usage; *p; p++) {
                        fputc(*p, f);
                        if (*p == '\n')
                                fprintf(f, "%*s", (int) indent, "");
                }
        }
        fputc('\n', f);
}

int ctl_usage(const ctl_t *x)
{
        fputs("usage: meccctl [-c FILE] [--now TIME] [--json] COMMAND\n", stderr);
        ctl_print_usage(stderr, x->verb);
        return EX_USAGE;
}

int ctl_result(const ctl_t *x, int r, const char *why)
{
        switch (r) {
        case ADMIN_OK:
                return EX_OK;
        case ADMIN_NOT_FOUND:
        case ADMIN_REFUSED:
        case ADMIN_NEEDS_FORCE:
                return ctl_fail(EX_DATAERR, "%s", why ? why : "refused");
        case ADMIN_NO_INPUT:
                return ctl_fail(EX_NOINPUT, "%s", why ? why : "cannot read the file");
        case ADMIN_CONFIG:
                return ctl_fail(EX_CONFIG, "%s", why ? why : "the configuration cannot be used");
        }
        if (r == -EBUSY)
                return ctl_fail(EX_TEMPFAIL, "the database is locked by another process; try again");
        if (why)
                return ctl_fail(EX_UNAVAILABLE, "%s", why);
        if (r == -ENOMEM)
                return ctl_fail(EX_OSERR, "out of memory");
        return ctl_fail(EX_UNAVAILABLE, "database: %s", x->db ? db_errmsg(x->db) : strerror(-r));
}

int ctl_answer(const ctl_t *x, int r, char *why)
{
        r = ctl_result(x, r, why);
        free(why);
        return r;
}

/* ---- argv ------------------------------------------------------------------------------- */

int ctl_getopt(const ctl_t *x, int argc, char **argv)
{
        static const struct option none[] = { {} };
        int c = getopt_long(argc, argv, ":", x->verb->opts ? x->verb->opts : none, NULL);

        if (c == ':')
                (void) ctl_fail(EX_USAGE, "%s needs a value", argv[optind - 1]);
        else if (c == '?' && optopt)
                (void) ctl_fail(EX_USAGE, "unknown option \"-%c\"", optopt);
        else if (c == '?')
                (void) ctl_fail(EX_USAGE, "unknown option \"%s\"", argv[optind - 1]);
        return c == ':' ? '?' : c;
}

bool ctl_parse_id(const char *s, int64_t *ret)
{
        char *end;
        long long v;

        if (!s || !*s)
                return false;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno || *end || v <= 0)
                return false;
        *ret = v;
        return true;
}

int ctl_parse_time(const char *option, const char *s, int64_t *ret, int code)
{
        if (clock_parse_time(s, ret) == 0)
                return EX_OK;
        return ctl_fail(code, "%s: \"%s\" is not a time like \"2026-09-22 10:30\"", option, s);
}

/* ---- usage -------------------------------------------------------------------------------- */

static void usage(FILE *f, const char *group)
{
        fprintf(f, "Usage: meccctl [-c FILE] [--now TIME] [--json] %s\n\n", group ? group : "COMMAND");
        FOREACH_VERB(v)
                if (!group || !strcmp(group, v->group))
                        ctl_print_usage(f, v);
        if (group)
                return;
        fprintf(f, "\nThe options -c, --now and --json may also follow the command.\n"
                   "TIME is local time in the configured zone: \"YYYY-MM-DD HH:MM\" (or with T, Z, +01:00).\n"
                   "Configuration: %s unless -c is given.\n", DEFAULT_CONFIG);
}

static bool is_group(const char *word)
{
        FOREACH_VERB(v)
                if (!strcmp(word, v->group))
                        return true;
        return false;
}

static const ctl_verb_t *find_verb(const char *group, const char *name)
{
        FOREACH_VERB(v)
                if (!strcmp(group, v->group) && (!v->name || (name && !strcmp(name, v->name))))
                        return v;
        return NULL;
}

/* ---- global options, wherever they are ---------------------------------------------------- */

typedef struct {
        const char *config, *now;
        bool json, help, version;
} globals_t;

static const struct option global_opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "now", required_argument, NULL, 'n' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'v' },
        {}
};

static int set_global(globals_t *g, int c, const char *value)
{
        switch (c) {
        case 'c': g->config = value; break;
        case 'n': g->now = value; break;
        case 'j': g->json = true; break;
        case 'h': g->help = true; break;
        case 'v': g->version = true; break;
        default: return -EINVAL;
        }
        return 0;
}

/* A global option at argv[i] (exactly, or as --name=value, or -cFILE): how many words it
 * takes, 0 when it is not one, -EINVAL when its value is missing. */
static int take_global(int argc, char **argv, int i, globals_t *g)
{
        const char *a = argv[i];

        if (!strcmp(a, "-h"))
                return set_global(g, 'h', NULL), 1;
        if (!strncmp(a, "-c", 2) && a[2])
                return set_global(g, 'c', a + 2), 1;
        if (!strcmp(a, "-c"))
                return i + 1 < argc ? (set_global(g, 'c', argv[i + 1]), 2) : -EINVAL;
        if (strncmp(a, "--", 2))
                return 0;
        for (const struct option *o = global_opts; o->name; o++) {
                size_t n = strlen(o->name);

                if (strncmp(a + 2, o->name, n))
                        continue;
                if (a[2 + n] == '=' && o->has_arg)
                        return set_global(g, o->val, a + 3 + n), 1;
                if (a[2 + n])
                        continue;
                if (!o->has_arg)
                        return set_global(g, o->val, NULL), 1;
                return i + 1 < argc ? (set_global(g, o->val, argv[i + 1]), 2) : -EINVAL;
        }
        return 0;
}

/* Whether argv[i] is an option of v that takes the next word as its value. */
static bool takes_value(const ctl_verb_t *v, const char *a)
{
        if (!v || !v->opts || strncmp(a, "--", 2) || strchr(a, '='))
                return false;
        for (const struct option *o = v->opts; o->name; o++)
                if (!strcmp(a + 2, o->name))
                        return o->has_arg == required_argument;
        return false;
}

/* Take the global options out of argv (after the first word, the group), and find the verb.
 * argv keeps the group, the verb's name and the verb's own arguments; *ret_argc their count. */
static int split(int argc, char **argv, globals_t *g, const ctl_verb_t **ret, int *ret_argc)
{
        const ctl_verb_t *v = find_verb(argv[0], NULL);
        bool named = v != NULL; /* the verb is known (a group with one verb, or named) */
        int n = 1, k;

        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--")) {
                        while (i < argc)
                                argv[n++] = argv[i++];
                        break;
                }
                k = take_global(argc, argv, i, g);
                if (k < 0)
                        return ctl_fail(EX_USAGE, "%s needs a value", argv[i]);
                if (k > 0) {
                        i += k - 1;
                        continue;
                }
                if (!named && argv[i][0] != '-') {
                        char *word = argv[i];

                        /* the verb's name goes right after the group, before any option */
                        v = find_verb(argv[0], word);
                        named = true;
                        memmove(argv + 2, argv + 1, (n - 1) * sizeof(*argv));
                        argv[1] = word;
                        n++;
                        continue;
                }
                if (takes_value(v, argv[i]) && i + 1 < argc)
                        argv[n++] = argv[i++];
                argv[n++] = argv[i];
        }
        *ret = v;
        *ret_argc = n;
        return EX_OK;
}

/* ---- main -------------------------------------------------------------------------------- */

static int run(ctl_t *x, const globals_t *g, int argc, char **argv)
{
        char *err = NULL;
        int r;

        journal_init("meccctl");
        r = config_load(g->config ? g->config : DEFAULT_CONFIG, &x->cfg, &err);
        if (r < 0) {
                r = ctl_fail(EX_CONFIG, "%s", err ? err : "cannot load the configuration");
                goto out;
        }
        x->now = clock_now();
        if (g->now && (r = ctl_parse_time("--now", g->now, &x->now, EX_USAGE)))
                goto out;
        clock_set_now(x->now);
        r = admin_open(x->cfg, &x->db, &err);
        if (r < 0) {
                r = ctl_fail(r == -EBUSY ? EX_TEMPFAIL : EX_UNAVAILABLE, "%s",
                             err ? err : "cannot open the database");
                goto out;
        }
        x->admin = (admin_t) { x->db, x->cfg, x->now };
        r = x->verb->run(x, argc, argv);
out:
        free(err);
        return r;
}

int main(int argc, char **argv)
{
        globals_t g = { 0 };
        ctl_t x = { 0 };
        int c, r, n = 0, shift;

        opterr = 0; /* ctl_getopt and this loop say what was wrong */
        while ((c = getopt_long(argc, argv, "+:c:h", global_opts, NULL)) >= 0)
                if (set_global(&g, c, optarg) < 0) {
                        (void) ctl_fail(EX_USAGE, c == ':' ? "%s needs a value" : "unknown option \"%s\"",
                                        argv[optind - 1]);
                        usage(stderr, NULL);
                        return EX_USAGE;
                }
        if (optind < argc && (r = split(argc - optind, argv + optind, &g, &x.verb, &n)))
                return r;
        if (g.version) {
                printf("meccctl %s\n", VERSION);
                return EX_OK;
        }
        if (g.help) {
                if (x.verb)
                        ctl_print_usage(stdout, x.verb);
                else
                        usage(stdout, optind < argc && is_group(argv[optind]) ? argv[optind] : NULL);
                return EX_OK;
        }
        if (optind >= argc) {
                usage(stderr, NULL);
                return EX_USAGE;
        }
        if (!x.verb) {
                bool group = is_group(argv[optind]);

                if (group && n < 2)
                        fprintf(stderr, "meccctl: %s needs a command:\n", argv[optind]);
                else
                        fprintf(stderr, "meccctl: unknown command \"%s%s%s\"\n", argv[optind],
                                group ? " " : "", group ? argv[optind + 1] : "");
                usage(stderr, group ? argv[optind] : NULL);
                return EX_USAGE;
        }
        x.json = g.json;
        shift = x.verb->name ? 1 : 0;
        r = run(&x, &g, n - shift, argv + optind + shift);
        db_close(x.db);
        config_free(x.cfg);
        return r;
}
