/* template.h - {{placeholder}} rendering. Pure: no I/O, no logging. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

typedef struct {
        const char *key;
        const char *value; /* NULL renders as "" */
} tvar_t;

/* true if name is one of the placeholders meccd knows (meccd.conf(5), Placeholders) */
bool template_known(const char *name);

/* Render text, replacing {{ key }} (spaces inside the braces allowed) with its value.
 * html: escape & < > " ' in values. A known placeholder missing from vars renders "".
 * Errors: -EINVAL for an unknown placeholder or an unclosed "{{"; then *ret_err (if
 * non-NULL) gets a malloc'd description such as "unknown placeholder {{nmae}} on line 3".
 * On success the caller owns *ret. */
int template_render(const char *text, const tvar_t *vars, size_t n_vars, bool html,
                    char **ret, char **ret_err);

/* Split a .txt template into its "Subject: ..." first line and the body after it.
 * -EINVAL (with *ret_err) when the first line is not a Subject line. Caller owns both. */
int template_split_subject(const char *text, char **ret_subject, char **ret_body, char **ret_err);
