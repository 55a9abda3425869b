/* ctl.h - what the files of meccctl share: the context of a run, the table entries of its
 * commands, and the output (one printer per record, text and JSON). Commands parse argv,
 * call admin.h or report.h, and print; the rules and the SQL are the library's. */
#pragma once
#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "admin.h"
#include "config.h"
#include "db.h"
#include "report.h"

typedef struct ctl ctl_t;

typedef struct ctl_verb {
        const char *group, *name;               /* "session", "add"; name NULL: a verb alone */
        int (*run)(ctl_t *x, int argc, char **argv); /* argv[0] is the verb's last word */
        const struct option *opts;              /* its options (NULL: none) */
        const char *usage;                      /* what follows the verb; '\n' continues a line */
} ctl_verb_t;

struct ctl {
        config_t *cfg;
        db_t *db;
        admin_t admin;          /* db, cfg and now, for admin.h */
        bool json;
        int64_t now;
        const ctl_verb_t *verb;
        bool in_list;           /* between ctl_list_begin and ctl_list_end */
        size_t n_items;         /* records printed in this list */
};

/* The commands, by group; each table ends with an empty entry. */
extern const ctl_verb_t ctl_session_verbs[];
extern const ctl_verb_t ctl_registration_verbs[];
extern const ctl_verb_t ctl_outbox_verbs[];
extern const ctl_verb_t ctl_report_verbs[];
extern const ctl_verb_t ctl_attendance_verbs[];
extern const ctl_verb_t ctl_maint_verbs[];

/* ---- errors and exit statuses -------------------------------------------------------------- */

/* "meccctl: ..." on stderr; returns code. */
int ctl_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "usage: meccctl GROUP VERB ..." on stderr; returns EX_USAGE. */
int ctl_usage(const ctl_t *x);
void ctl_print_usage(FILE *f, const ctl_verb_t *v);
/* The exit status for what the library answered (0, ADMIN_* or a negative errno), with
 * its sentence, or the database's, on stderr. */
int ctl_result(const ctl_t *x, int r, const char *why);
/* ctl_result, then free why: the end of a verb that asked the library. */
int ctl_answer(const ctl_t *x, int r, char *why);

/* ---- argv ------------------------------------------------------------------------------------ */

/* getopt_long over the verb's options, from argv[1]; an unknown option or a missing value
 * is reported here and returned as '?'. */
int ctl_getopt(const ctl_t *x, int argc, char **argv);
bool ctl_parse_id(const char *s, int64_t *ret);
/* A time as in meccctl(8); otherwise "OPTION: "S" is not a time like ..." and `code`. */
int ctl_parse_time(const char *option, const char *s, int64_t *ret, int code);

/* A JSON string (null for NULL) on stdout. */
void ctl_json_str(const char *s);

/* ---- output ---------------------------------------------------------------------------------- */

/* A list: a JSON array, or a text table under its header. */
void ctl_list_begin(ctl_t *x, void (*header)(const ctl_t *x));
/* Ends it; with nothing in it, text output says empty_text (if not NULL). */
void ctl_list_end(ctl_t *x, const char *empty_text);

/* One record each, as a list item or alone (JSON: an object; text: a row, or with detail
 * the full form). The *_header functions print a text table's column names. */
void print_session_header(const ctl_t *x);
void print_session(ctl_t *x, const session_t *s, bool detail);
void print_registration_header(const ctl_t *x);
void print_registration(ctl_t *x, const registration_t *g);
void print_outbox_header(const ctl_t *x);
void print_outbox_row(ctl_t *x, const mail_row_t *o);
void print_upcoming_header(const ctl_t *x);
void print_upcoming(ctl_t *x, const upcoming_t *u);
void print_status(ctl_t *x, const health_t *h);

/* The sessions list (for `session list` and the end of `status`). */
int ctl_list_sessions(ctl_t *x);
