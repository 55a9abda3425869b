/* ctl-registration.c - register, cancel, elearning-done, registrations list, and the CSV
 * imports of registrations and e-learning completions. */
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ctl.h"

static const struct option register_opts[] = {
        { "name", required_argument, NULL, 'n' },
        { "email", required_argument, NULL, 'e' },
        { "organisation", required_argument, NULL, 'o' },
        {}
};
static const struct option list_opts[] = {
        { "session", required_argument, NULL, 's' },
        { "unreachable", no_argument, NULL, 'u' },
        {}
};

/* A person's details, as register and edit take them (each verb's table says which). */
typedef struct {
        const char *name, *email, *org;
} person_args_t;

static int parse_person(const ctl_t *x, int argc, char **argv, person_args_t *a)
{
        int c;

        optind = 0; /* 0: glibc starts a fresh scan */
        while ((c = ctl_getopt(x, argc, argv)) >= 0) {
                switch (c) {
                case 'n': a->name = optarg; break;
                case 'e': a->email = optarg; break;
                case 'o': a->org = optarg; break;
                default: return EX_USAGE;
                }
        }
        return EX_OK;
}

static int cmd_register(ctl_t *x, int argc, char **argv)
{
        person_args_t a = { 0 };
        char *why = NULL;
        int64_t sid, id = 0;
        int r;

        if (parse_person(x, argc, argv, &a) || optind != argc - 1 || !a.name || !a.email)
                return ctl_usage(x);
        if (!ctl_parse_id(argv[optind], &sid))
                return ctl_fail(EX_USAGE, "\"%s\" is not a session id", argv[optind]);
        r = admin_register_org(&x->admin, sid, a.name, a.email, a.org, &id, &why);
        if (r == 0)
                printf("%lld\n", (long long) id);
        return ctl_answer(x, r, why);
}

static int cmd_cancel(ctl_t *x, int argc, char **argv)
{
        char *why = NULL;
        int64_t id;
        int r;

        if (argc != 2 || !ctl_parse_id(argv[1], &id))
                return ctl_usage(x);
        r = admin_cancel(&x->admin, id, &why);
        if (r == 0 && !x->json)
                printf("registration %lld cancelled\n", (long long) id);
        return ctl_answer(x, r, why);
}

/* Who is a registration id, or an email address (it holds an '@', so it is never an id). */
static int elearning_done(const ctl_t *x, const char *who, char **ret_why)
{
        int64_t id;

        if (!strchr(who, '@') && ctl_parse_id(who, &id))
                return admin_elearning_done_id(&x->admin, id, x->now, ret_why);
        return admin_elearning_done_email(&x->admin, who, x->now, ret_why);
}

static int cmd_elearning_done(ctl_t *x, int argc, char **argv)
{
        char *why = NULL;
        int r;

        if (argc != 2)
                return ctl_usage(x);
        r = elearning_done(x, argv[1], &why);
        if (r == 0 && !x->json)
                printf("e-learning recorded as done for %s\n", argv[1]);
        return ctl_answer(x, r, why);
}

static int print_one(const registration_t *g, void *userdata)
{
        print_registration(userdata, g);
        return 0;
}

static int print_unreachable(const registration_t *g, void *userdata)
{
        ctl_t *x = userdata;

        if (!g->unreachable_at)
                return 0;
        print_registration(x, g);
        if (!x->json)
                printf("      bounced: %s\n", g->unreachable_reason ? g->unreachable_reason : "(no reason given)");
        return 0;
}

static int cmd_list(ctl_t *x, int argc, char **argv)
{
        bool unreachable = false;
        int64_t sid = 0;
        int c, r;

        optind = 0; /* 0: glibc starts a fresh scan */
        while ((c = ctl_getopt(x, argc, argv)) >= 0)
                if (c == 'u')
                        unreachable = true;
                else if (c != 's' || !ctl_parse_id(optarg, &sid))
                        return ctl_usage(x);
        if (optind != argc)
                return ctl_usage(x);
        ctl_list_begin(x, print_registration_header);
        r = report_registrations(x->db, sid, unreachable ? print_unreachable : print_one, x);
        ctl_list_end(x, NULL);
        return ctl_result(x, r, NULL);
}

static const struct option edit_opts[] = {
        { "name", required_argument, NULL, 'n' },
        { "email", required_argument, NULL, 'e' },
        {}
};

static int cmd_edit(ctl_t *x, int argc, char **argv)
{
        person_args_t a = { 0 };
        char *why = NULL;
        long queued = 0;
        int64_t id;
        int r;

        if (parse_person(x, argc, argv, &a) || optind != argc - 1 || (!a.name && !a.email))
                return ctl_usage(x);
        if (!ctl_parse_id(argv[optind], &id))
                return ctl_fail(EX_USAGE, "\"%s\" is not a registration id", argv[optind]);
        r = admin_registration_edit(&x->admin, id, a.name, a.email, &queued, &why);
        if (r == 0 && !x->json)
                printf("registration %lld updated%s%ld email%s queued again\n", (long long) id,
                       queued ? "; " : "", queued, queued == 1 ? "" : "s");
        return ctl_answer(x, r, why);
}

static const char *plural(size_t n, const char *many)
{
        return n == 1 ? "" : many;
}

typedef int (*import_fn)(const admin_t *, const char *, import_report_t *, char **);

static int import(ctl_t *x, int argc, char **argv, import_fn fn, import_report_t *rep)
{
        char *why = NULL;
        int r;

        if (argc != 2)
                return ctl_usage(x);
        r = fn(&x->admin, argv[1], rep, &why);
        for (size_t i = 0; r == 0 && i < rep->n_notes; i++)
                fprintf(stderr, "meccctl: %s\n", rep->notes[i]);
        return ctl_answer(x, r, why);
}

static int cmd_import_registrations(ctl_t *x, int argc, char **argv)
{
        import_report_t rep = { 0 };
        int r = import(x, argc, argv, admin_import_registrations, &rep);

        if (r == EX_OK && !x->json)
                printf("%zu registration%s imported\n", rep.applied, plural(rep.applied, "s"));
        import_report_clear(&rep);
        return r;
}

static int cmd_import_elearning(ctl_t *x, int argc, char **argv)
{
        import_report_t rep = { 0 };
        int r = import(x, argc, argv, admin_import_elearning, &rep);

        if (r == EX_OK && !x->json) {
                printf("%zu completion%s recorded", rep.applied, plural(rep.applied, "s"));
                if (rep.n_notes)
                        printf("; %zu address%s not found (listed above)", rep.n_notes, plural(rep.n_notes, "es"));
                putchar('\n');
        }
        import_report_clear(&rep);
        return r;
}

const ctl_verb_t ctl_registration_verbs[] = {
        { "register", NULL, cmd_register, register_opts, "SESSION_ID --name NAME --email EMAIL [--organisation ORG]" },
        { "cancel", NULL, cmd_cancel, NULL, "REGISTRATION_ID" },
        { "elearning-done", NULL, cmd_elearning_done, NULL, "REGISTRATION_ID|EMAIL" },
        { "registration", "edit", cmd_edit, edit_opts, "REGISTRATION_ID [--email ADDR] [--name NAME]" },
        { "registrations", "list", cmd_list, list_opts, "[--session ID] [--unreachable]" },
        { "import", "registrations", cmd_import_registrations, NULL,
          "FILE.csv   (header: session_id|session,name,email[,registered_at,ref,status,organisation])" },
        { "import", "elearning", cmd_import_elearning, NULL, "FILE.csv       (header: email,completed_at)" },
        {}
};
