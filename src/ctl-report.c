/* ctl-report.c - init, the dry run (upcoming) and "is it healthy?" (status). */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sysexits.h>

#include "clock.h"
#include "csv.h"
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

static int print_held_back(int64_t id, const char *problem, void *userdata)
{
        (void) userdata;
        printf("held back:         session %lld: %s; its new registrations wait\n", (long long) id, problem);
        return 0;
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
        if (!x->json && h.held_back && report_held_back(x->db, print_held_back, NULL) < 0)
                return EX_UNAVAILABLE;
        if (!x->json) {
                putchar('\n');
                r = ctl_list_sessions(x);
                if (r)
                        return EX_UNAVAILABLE;
        }
        return h.healthy ? EX_OK : EXIT_NEEDS_ATTENTION;
}

/* ---- the programme report ------------------------------------------------------------------ */

static const struct option programme_opts[] = {
        { "from", required_argument, NULL, 'f' },
        { "until", required_argument, NULL, 'u' },
        { "course", required_argument, NULL, 'C' },
        { "by", required_argument, NULL, 'b' },
        { "csv", no_argument, NULL, 'v' },
        {}
};

typedef struct {
        ctl_t *x;
        bool csv, by_org;
        size_t rows;
} programme_t;

static void programme_values(const report_row_t *w, char v[][64], const char **out)
{
        /* report_counts_t holds the counts in the order of the fields from registrations on,
         * but for emails_sent, emails_failed and unreachable, which come last in SPEC 13 */
        const long ordered[] = { w->n.registrations, w->n.booked, w->n.not_placed, w->n.late,
                                 w->n.cancelled, w->n.invalid, w->n.elearning_done, w->n.attended,
                                 w->n.absent, w->n.attendance_unknown, w->n.emails_sent,
                                 w->n.emails_failed, w->n.unreachable };

        if (w->session_id)
                snprintf(v[0], 64, "%lld", (long long) w->session_id);
        else
                v[0][0] = '\0';
        out[0] = v[0];
        out[1] = w->title;
        out[2] = w->course ? w->course : "";
        if (w->starts_at)
                clock_format_iso(w->starts_at, v[3], 64);
        else
                v[3][0] = '\0';
        out[3] = v[3];
        snprintf(v[4], 64, "%ld", w->capacity);
        out[4] = v[4];
        for (size_t k = 0; k < 13; k++) {
                snprintf(v[5 + k], 64, "%ld", ordered[k]);
                out[5 + k] = v[5 + k];
        }
}

static int print_programme_row(const report_row_t *w, void *userdata)
{
        programme_t *p = userdata;
        char v[REPORT_FIELDS][64];
        const char *f[REPORT_FIELDS + 1];

        programme_values(w, v, f);
        if (p->csv) {
                const char *row[REPORT_FIELDS + 1];
                size_t k = 0;

                for (size_t i = 0; i < REPORT_FIELDS; i++) {
                        row[k++] = f[i];
                        if (i == 2 && p->by_org)
                                row[k++] = w->organisation ? w->organisation : "";
                }
                csv_write_row(stdout, row, k);
        } else if (p->x->json) {
                printf("%s{", p->rows ? "," : "");
                for (size_t i = 0; i < REPORT_FIELDS; i++) {
                        printf("%s\"%s\":", i ? "," : "", report_field_names[i]);
                        if (i == 0 || i >= 4)
                                fputs(*f[i] ? f[i] : "null", stdout);
                        else if (i == 3)
                                printf(*f[i] ? "\"%s\"" : "null", f[i]);
                        else
                                ctl_json_str(i == 2 && !w->course ? NULL : f[i]);
                        if (i == 2 && p->by_org) {
                                fputs(",\"organisation\":", stdout);
                                ctl_json_str(w->organisation);
                        }
                }
                putchar('}');
        } else {
                char when[32] = "", title[80];

                if (w->starts_at)
                        clock_format_local(w->starts_at, when, sizeof(when));
                snprintf(title, sizeof(title), "%s", w->organisation ? (*w->organisation ? w->organisation : "(none)") : w->title);
                printf("%-5s %-26.26s %-10.10s %-16.16s %4s %4s %4s %4s %4s %4s %4s %4s %4s %4s %4s %4s %5s %4s\n",
                       f[0], title, w->organisation ? "" : f[2], when, f[4], f[5], f[6], f[7], f[8], f[9],
                       f[10], f[11], f[12], f[13], f[14], f[15], f[16], f[17]);
        }
        p->rows++;
        return 0;
}

static int cmd_report(ctl_t *x, int argc, char **argv)
{
        programme_t p = { x, false, false, 0 };
        int64_t from = 0, until = INT64_MAX;
        const char *course = NULL;
        int c, r;

        optind = 0; /* 0: glibc starts a fresh scan */
        while ((c = ctl_getopt(x, argc, argv)) >= 0) {
                if (c == 'f' && !(r = ctl_parse_time("--from", optarg, &from, EX_USAGE)))
                        continue;
                if (c == 'u' && !(r = ctl_parse_time("--until", optarg, &until, EX_USAGE)))
                        continue;
                if (c == 'f' || c == 'u')
                        return r;
                if (c == 'C')
                        course = optarg;
                else if (c == 'b' && strcmp(optarg, "organisation") == 0)
                        p.by_org = true;
                else if (c == 'v')
                        p.csv = true;
                else
                        return ctl_usage(x);
        }
        if (optind != argc || (p.csv && x->json))
                return ctl_usage(x);
        if (p.csv) {
                const char *head[REPORT_FIELDS + 1];
                size_t k = 0;

                for (size_t i = 0; i < REPORT_FIELDS; i++) {
                        head[k++] = report_field_names[i];
                        if (i == 2 && p.by_org)
                                head[k++] = "organisation";
                }
                csv_write_row(stdout, head, k);
        } else if (x->json) {
                putchar('[');
        } else {
                printf("%-5s %-26s %-10s %-16s %4s %4s %4s %4s %4s %4s %4s %4s %4s %4s %4s %4s %5s %4s\n",
                       "ID", p.by_org ? "TITLE / ORGANISATION" : "TITLE", "COURSE", "STARTS", "CAP", "REGS",
                       "BOOK", "NOTP", "LATE", "CANC", "INV", "ELRN", "ATT", "ABS", "UNKN", "SENT", "FAIL",
                       "UNRE");
        }
        r = report_programme(x->db, from, until, course, p.by_org, print_programme_row, &p);
        if (x->json && !p.csv)
                puts("]");
        return ctl_result(x, r, NULL);
}

const ctl_verb_t ctl_report_verbs[] = {
        { "report", NULL, cmd_report, programme_opts,
          "[--from TIME] [--until TIME] [--course NAME] [--by organisation] [--csv]" },
        { "upcoming", NULL, cmd_upcoming, upcoming_opts, "[--until TIME]" },
        { "status", NULL, cmd_status, NULL, "" },
        { "init", NULL, cmd_init, NULL, "" },
        {}
};
