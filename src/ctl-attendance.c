/* ctl-attendance.c - attendance import, mark and show (SPEC 12). */
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ctl.h"

static const struct option mark_opts[] = {
        { "attended", no_argument, NULL, 'a' },
        { "absent", no_argument, NULL, 'b' },
        {}
};

static int cmd_import(ctl_t *x, int argc, char **argv)
{
        attendance_report_t rep = { 0 };
        char *why = NULL;
        int64_t sid;
        int r;

        if (argc != 3)
                return ctl_usage(x);
        if (!ctl_parse_id(argv[1], &sid))
                return ctl_fail(EX_USAGE, "\"%s\" is not a session id", argv[1]);
        r = admin_attendance_import(&x->admin, sid, argv[2], &rep, &why);
        if (r == 0 && !x->json) {
                printf("%s: %zu attended, %zu absent\n", rep.format, rep.attended, rep.absent);
                if (rep.n_unmatched)
                        printf("not a booking on this session (guests, the trainer):\n");
                for (size_t i = 0; i < rep.n_unmatched; i++)
                        printf("  %s\n", rep.unmatched[i]);
        } else if (r == 0) {
                printf("{\"format\":\"%s\",\"attended\":%zu,\"absent\":%zu,\"unmatched\":%zu}\n",
                       rep.format, rep.attended, rep.absent, rep.n_unmatched);
        }
        r = ctl_result(x, r, why);
        attendance_report_clear(&rep);
        free(why);
        return r;
}

static int cmd_mark(ctl_t *x, int argc, char **argv)
{
        char *why = NULL;
        int64_t sid;
        int c, r, which = 0;

        optind = 0; /* 0: glibc starts a fresh scan */
        while ((c = ctl_getopt(x, argc, argv)) >= 0) {
                if ((c != 'a' && c != 'b') || (which && which != c))
                        return ctl_usage(x);
                which = c;
        }
        if (!which || argc - optind < 2)
                return ctl_usage(x);
        if (!ctl_parse_id(argv[optind], &sid))
                return ctl_fail(EX_USAGE, "\"%s\" is not a session id", argv[optind]);
        r = admin_attendance_mark(&x->admin, sid, which == 'a', argv + optind + 1,
                                  (size_t) (argc - optind - 1), &why);
        if (r == 0 && !x->json)
                printf("%d recorded as %s\n", argc - optind - 1, which == 'a' ? "attended" : "absent");
        return ctl_answer(x, r, why);
}

static void print_header(const ctl_t *x)
{
        (void) x;
        printf("%-6s %-10s %-8s %s\n", "ID", "ATTENDED", "MINUTES", "NAME <EMAIL>");
}

static int print_one(const registration_t *g, void *userdata)
{
        ctl_t *x = userdata;
        char mins[24] = "-";

        if (g->status != REG_BOOKED)
                return 0;
        if (x->json) {
                print_registration(x, g);
                return 0;
        }
        x->n_items++;
        if (g->attended_minutes >= 0)
                snprintf(mins, sizeof(mins), "%lld", (long long) g->attended_minutes);
        printf("%-6lld %-10s %-8s %s <%s>\n", (long long) g->id,
               g->attended < 0 ? "unknown" : g->attended ? "attended" : "absent", mins,
               *g->name ? g->name : "(erased)", *g->email ? g->email : "(erased)");
        return 0;
}

static int cmd_show(ctl_t *x, int argc, char **argv)
{
        session_t s;
        int64_t sid;
        int r;

        if (argc != 2 || !ctl_parse_id(argv[1], &sid))
                return ctl_usage(x);
        r = db_session_get_plain(x->db, sid, &s);
        if (r == 0)
                return ctl_fail(EX_DATAERR, "no session %lld", (long long) sid);
        if (r > 0)
                session_clear(&s);
        ctl_list_begin(x, print_header);
        r = report_registrations(x->db, sid, print_one, x);
        ctl_list_end(x, "(nobody is booked on this session)");
        return ctl_result(x, r, NULL);
}

const ctl_verb_t ctl_attendance_verbs[] = {
        { "attendance", "import", cmd_import, NULL, "SESSION_ID FILE   (Teams, Zoom, or email[,minutes])" },
        { "attendance", "mark", cmd_mark, mark_opts, "SESSION_ID --attended|--absent REG_ID|EMAIL..." },
        { "attendance", "show", cmd_show, NULL, "SESSION_ID" },
        {}
};
