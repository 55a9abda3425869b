/* ctl-outbox.c - outbox list, retry and flush, and the preview of one email. */
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ctl.h"

static const struct option list_opts[] = { { "status", required_argument, NULL, 's' }, {} };

/* "queued|sent|failed|expired", from the table of states */
static int usage_with_states(const ctl_t *x)
{
        (void) ctl_usage(x);
        fputs("  (S:", stderr);
        for (int s = 0; s < _MAIL_STATUS_MAX; s++)
                fprintf(stderr, " %s", mail_status_to_string(s));
        fputs(")\n", stderr);
        return EX_USAGE;
}

static int print_one(const mail_row_t *o, void *userdata)
{
        print_outbox_row(userdata, o);
        return 0;
}

static int cmd_list(ctl_t *x, int argc, char **argv)
{
        mail_status_t status = -1;
        int c, r;

        optind = 0; /* 0: glibc starts a fresh scan */
        while ((c = ctl_getopt(x, argc, argv)) >= 0)
                if (c != 's' || (status = mail_status_from_string(optarg)) < 0)
                        return usage_with_states(x);
        if (optind != argc)
                return usage_with_states(x);
        ctl_list_begin(x, print_outbox_header);
        r = report_outbox(x->db, status, print_one, x);
        ctl_list_end(x, NULL);
        return ctl_result(x, r, NULL);
}

static int cmd_retry(ctl_t *x, int argc, char **argv)
{
        char *why = NULL;
        int64_t id;
        long n = 1;
        int r;

        if (argc != 2)
                return ctl_usage(x);
        if (!strcmp(argv[1], "--all-failed"))
                r = admin_retry_all_failed(&x->admin, &n);
        else if (ctl_parse_id(argv[1], &id))
                r = admin_retry(&x->admin, id, &why);
        else
                return ctl_usage(x);
        if (r == 0 && !x->json)
                printf("%ld email%s queued again\n", n, n == 1 ? "" : "s");
        return ctl_answer(x, r, why);
}

static int cmd_flush(ctl_t *x, int argc, char **argv)
{
        long due = 0;
        int r;

        (void) argv;
        if (argc != 1)
                return ctl_usage(x);
        r = admin_flush(&x->admin, &due);
        if (r == 0 && x->json)
                printf("{\"due\":%ld}\n", due);
        else if (r == 0)
                printf("%ld queued email%s due now; a running meccd sends %s within seconds\n", due,
                       due == 1 ? "" : "s", due == 1 ? "it" : "them");
        return ctl_result(x, r, NULL);
}

static int cmd_preview(ctl_t *x, int argc, char **argv)
{
        char *out = NULL, *why = NULL;
        size_t size = 0;
        kind_t kind;
        int64_t id;
        int r;

        if (argc != 3 || (kind = kind_from_string(argv[1])) < 0 || !ctl_parse_id(argv[2], &id)) {
                (void) ctl_usage(x);
                fputs("  (KIND:", stderr);
                for (int k = 0; k < _KIND_MAX; k++)
                        fprintf(stderr, " %s", kind_to_string(k));
                fputs(")\n", stderr);
                return EX_USAGE;
        }
        r = report_preview(x->db, x->cfg, x->now, kind, id, &out, &size, &why);
        if (r == 0)
                fwrite(out, 1, size, stdout);
        r = ctl_result(x, r, why);
        free(out);
        free(why);
        return r;
}

const ctl_verb_t ctl_outbox_verbs[] = {
        { "outbox", "list", cmd_list, list_opts, "[--status S]" },
        { "outbox", "retry", cmd_retry, NULL, "ID|--all-failed" },
        { "outbox", "flush", cmd_flush, NULL, "" },
        { "preview", NULL, cmd_preview, NULL, "KIND REGISTRATION_ID" },
        {}
};
