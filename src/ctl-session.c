/* ctl-session.c - session add, list, show, edit, cancel and close. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ctl.h"

#define SESSION_OPTS                                                    \
        { "title", required_argument, NULL, 't' },                      \
        { "start", required_argument, NULL, 's' },                      \
        { "end", required_argument, NULL, 'e' },                        \
        { "capacity", required_argument, NULL, 'n' },                   \
        { "join-url", required_argument, NULL, 'j' },                   \
        { "elearning-url", required_argument, NULL, 'l' },              \
        { "trainer", required_argument, NULL, 'r' },                    \
        { "closes", required_argument, NULL, 'x' },                     \
        { "course", required_argument, NULL, 'C' },                    \
        { "ref", required_argument, NULL, 'R' }

static const struct option add_opts[] = { SESSION_OPTS, { "force", no_argument, NULL, 'f' }, {} };
static const struct option edit_opts[] = { SESSION_OPTS, {} };

typedef struct {
        const char *title, *start, *end, *capacity, *join_url, *elearning_url, *trainer, *closes, *course;
        const char *ref; /* the hub's id for the event: set on its own (admin_session_set_ref) */
        bool force;
} session_args_t;

static int parse_args(const ctl_t *x, int argc, char **argv, session_args_t *a)
{
        int c;

        optind = 0; /* 0: glibc starts a fresh scan */
        while ((c = ctl_getopt(x, argc, argv)) >= 0) {
                switch (c) {
                case 't': a->title = optarg; break;
                case 's': a->start = optarg; break;
                case 'e': a->end = optarg; break;
                case 'n': a->capacity = optarg; break;
                case 'j': a->join_url = optarg; break;
                case 'l': a->elearning_url = optarg; break;
                case 'r': a->trainer = optarg; break;
                case 'x': a->closes = optarg; break;
                case 'C': a->course = optarg; break;
                case 'f': a->force = true; break;
                case 'R': a->ref = optarg; break;
                default: return EX_USAGE;
                }
        }
        return EX_OK;
}

static int parse_time(const char *option, const char *s, unsigned field, int64_t *ret,
                      session_fields_t *f)
{
        int r;

        if (!s)
                return EX_OK;
        r = ctl_parse_time(option, s, ret, EX_DATAERR);
        if (r == EX_OK)
                f->given |= field;
        return r;
}

static void set_text(const char *s, unsigned field, const char **ret, session_fields_t *f)
{
        if (s) {
                *ret = s;
                f->given |= field;
        }
}

/* The arguments given, as typed fields: times and numbers read, nothing else judged (the
 * rules are admin.c's). */
static int to_fields(const session_args_t *a, session_fields_t *f)
{
        char *end;
        int r;

        *f = (session_fields_t) { 0 };
        set_text(a->title, SF_TITLE, &f->title, f);
        set_text(a->join_url, SF_JOIN_URL, &f->join_url, f);
        set_text(a->elearning_url, SF_ELEARNING_URL, &f->elearning_url, f);
        set_text(a->trainer, SF_TRAINER, &f->trainer_email, f);
        set_text(a->course, SF_COURSE, &f->course, f);
        if ((r = parse_time("--start", a->start, SF_START, &f->starts_at, f)) ||
            (r = parse_time("--end", a->end, SF_END, &f->ends_at, f)) ||
            (r = parse_time("--closes", a->closes, SF_CLOSES, &f->closes_at, f)))
                return r;
        if (a->capacity) {
                errno = 0;
                f->capacity = strtol(a->capacity, &end, 10);
                if (errno || *end || !*a->capacity)
                        return ctl_fail(EX_DATAERR, "--capacity: \"%s\" is not a number of places (0 or more)",
                                        a->capacity);
                f->given |= SF_CAPACITY;
        }
        return EX_OK;
}

static int cmd_add(ctl_t *x, int argc, char **argv)
{
        session_args_t a = { 0 };
        session_fields_t f;
        char *why = NULL;
        int64_t id = 0;
        int r;

        if (parse_args(x, argc, argv, &a) || optind != argc)
                return ctl_usage(x);
        /* a course's sessions may take its title (admin.c says whether it has one) */
        if ((!a.title && !a.course) || !a.start || !a.end || !a.capacity)
                return ctl_fail(EX_USAGE, "session add needs --title, --start, --end and --capacity");
        r = to_fields(&a, &f);
        if (r)
                return r;
        /* checked first, so a taken ref adds nothing */
        if (a.ref && (r = admin_session_ref_check(&x->admin, 0, a.ref, &why)) != 0) {
                r = ctl_result(x, r, why);
                free(why);
                return r;
        }
        r = admin_session_add(&x->admin, &f, a.force, &id, &why);
        if (r == 0 && a.ref) {
                char *why2 = NULL;
                int q = admin_session_set_ref(&x->admin, id, a.ref, &why2);

                if (q != 0) {
                        free(why);
                        why = why2;
                        r = q;
                } else
                        free(why2);
        }
        if (r == ADMIN_NEEDS_FORCE)
                r = ctl_fail(EX_DATAERR, "%s; nothing was added (--force adds it all the same)",
                             why ? why : "the session is not bookable");
        else if (r == 0) {
                if (why)
                        fprintf(stderr, "meccctl: warning: %s\n", why);
                printf("%lld\n", (long long) id);
        } else
                r = ctl_result(x, r, why);
        free(why);
        return r;
}

static const char *list_course; /* session list --course: only that course's ("" none) */

static int print_one(const session_t *s, void *userdata)
{
        if (list_course && strcmp(list_course, s->course ? s->course : "") != 0)
                return 0;
        print_session(userdata, s, false);
        return 0;
}

int ctl_list_sessions(ctl_t *x)
{
        int r;

        ctl_list_begin(x, print_session_header);
        r = report_sessions(x->db, print_one, x);
        ctl_list_end(x, NULL);
        return ctl_result(x, r, NULL);
}

static const struct option list_opts[] = { { "course", required_argument, NULL, 'C' }, {} };

static int cmd_list(ctl_t *x, int argc, char **argv)
{
        int c;

        optind = 0; /* 0: glibc starts a fresh scan */
        while ((c = ctl_getopt(x, argc, argv)) >= 0) {
                if (c != 'C')
                        return ctl_usage(x);
                list_course = optarg;
        }
        if (optind != argc)
                return ctl_usage(x);
        return ctl_list_sessions(x);
}

static int session_id(const char *arg, int64_t *ret)
{
        if (!ctl_parse_id(arg, ret))
                return ctl_fail(EX_USAGE, "\"%s\" is not a session id", arg ? arg : "");
        return EX_OK;
}

/* The session named by a verb's only argument. */
static int the_session(const ctl_t *x, int argc, char **argv, int64_t *ret)
{
        if (argc != 2)
                return ctl_usage(x);
        return session_id(argv[1], ret);
}

static int cmd_show(ctl_t *x, int argc, char **argv)
{
        session_t s;
        int64_t id;
        int r;

        if ((r = the_session(x, argc, argv, &id)))
                return r;
        r = db_session_get(x->db, id, &s);
        if (r == 0)
                return ctl_fail(EX_DATAERR, "no session %lld", (long long) id);
        if (r < 0)
                return ctl_result(x, r, NULL);
        print_session(x, &s, true);
        session_clear(&s);
        return EX_OK;
}

static int cmd_edit(ctl_t *x, int argc, char **argv)
{
        session_args_t a = { 0 };
        session_fields_t f;
        char *why = NULL;
        bool told = false;
        int64_t id;
        int r;

        if (parse_args(x, argc, argv, &a) || optind != argc - 1)
                return ctl_usage(x);
        if ((r = session_id(argv[optind], &id)) || (r = to_fields(&a, &f)))
                return r;
        if (!f.given && !a.ref)
                return ctl_fail(EX_USAGE, "session edit: nothing to change; give at least one option");
        r = a.ref ? admin_session_set_ref(&x->admin, id, a.ref, &why) : 0;
        if (r == 0 && f.given)
                r = admin_session_edit(&x->admin, id, &f, &told, &why);
        if (r == 0 && !x->json)
                printf("session %lld updated%s\n", (long long) id,
                       told ? "; those already emailed will be told at the next scan" : "");
        return ctl_answer(x, r, why);
}

static int session_action(ctl_t *x, int argc, char **argv,
                          int (*action)(const admin_t *, int64_t, char **), const char *done)
{
        char *why = NULL;
        int64_t id;
        int r;

        if ((r = the_session(x, argc, argv, &id)))
                return r;
        r = action(&x->admin, id, &why);
        if (r == 0 && !x->json)
                printf("session %lld %s\n", (long long) id, done);
        return ctl_answer(x, r, why);
}

static int cmd_cancel(ctl_t *x, int argc, char **argv)
{
        return session_action(x, argc, argv, admin_session_cancel, session_status_to_string(SESSION_CANCELLED));
}

static int cmd_close(ctl_t *x, int argc, char **argv)
{
        return session_action(x, argc, argv, admin_session_close, "closed for bookings");
}

const ctl_verb_t ctl_session_verbs[] = {
        { "session", "add", cmd_add, add_opts,
          "--title T --start TIME --end TIME --capacity N\n"
          "[--join-url U] [--elearning-url U] [--trainer EMAIL] [--closes TIME]\n[--course NAME] [--ref REF] [--force]" },
        { "session", "list", cmd_list, list_opts, "[--course NAME]" },
        { "session", "show", cmd_show, NULL, "ID" },
        { "session", "edit", cmd_edit, edit_opts,
          "ID [--title T] [--start TIME] [--end TIME] [--capacity N]\n"
          "[--join-url U] [--elearning-url U] [--trainer EMAIL] [--closes TIME]\n[--course NAME] [--ref REF]" },
        { "session", "cancel", cmd_cancel, NULL, "ID" },
        { "session", "close", cmd_close, NULL, "ID" },
        {}
};
