/* ctl-report.c - init, the dry run (upcoming) and "is it healthy?" (status). */
#include <errno.h>
#include <string.h>
#include <sysexits.h>

#include "ctl.h"

#define UPCOMING_DEFAULT_DAYS 14
#define EXIT_NEEDS_ATTENTION 1  /* status: 0 healthy, 1 needs attention, 69 cannot tell */

static const struct option upcoming_opts[] = { { "until", required_argument, NULL, 'u' }, {} };

static int cmd_init(ctl_t *x, int argc, char **argv)
{
        (void) argv;
        if (argc != 1)
                return ctl_usage(x);
        /* opening the database created or migrated it */
        if (!x->json)
                printf("database %s is ready\n", x->cfg->database);
        return EX_OK;
}

static int print_one(const upcoming_t *u, void *userdata)
{
        print_upcoming(userdata, u);
        return 0;
}

static int cmd_upcoming(ctl_t *x, int argc, char **argv)
{
        int64_t until = x->now + UPCOMING_DEFAULT_DAYS * 86400;
        int c, r;

        optind = 0; /* 0: glibc starts a fresh scan */
        while ((c = ctl_getopt(x, argc, argv)) >= 0) {
                if (c != 'u')
                        return ctl_usage(x);
                if ((r = ctl_parse_time("--until", optarg, &until, EX_USAGE)))
                        return r;
        }
        if (optind != argc)
                return ctl_usage(x);
        ctl_list_begin(x, print_upcoming_header);
        r = report_upcoming(x->db, x->cfg, x->now, until, print_one, x);
        ctl_list_end(x, "(nothing due)");
        if (r < 0)
                return ctl_fail(EX_UNAVAILABLE, "dry run failed: %s", strerror(-r));
        return EX_OK;
}

static int cmd_status(ctl_t *x, int argc, char **argv)
{
        health_t h;
        int r;

        (void) argv;
        if (argc != 1)
                return ctl_usage(x);
        r = report_health(x->db, x->cfg, x->now, &h);
        if (r == -EBUSY)
                return ctl_fail(EX_TEMPFAIL, "cannot tell: the database is locked by another process; try again");
        if (r < 0)
                return ctl_fail(EX_UNAVAILABLE, "cannot tell: %s", db_errmsg(x->db));
        print_status(x, &h);
        if (!x->json) {
                putchar('\n');
                r = ctl_list_sessions(x);
                if (r)
                        return EX_UNAVAILABLE;
        }
        return h.healthy ? EX_OK : EXIT_NEEDS_ATTENTION;
}

const ctl_verb_t ctl_report_verbs[] = {
        { "upcoming", NULL, cmd_upcoming, upcoming_opts, "[--until TIME]" },
        { "status", NULL, cmd_status, NULL, "" },
        { "init", NULL, cmd_init, NULL, "" },
        {}
};
