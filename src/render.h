/* render.h - an email as it goes on the wire: template + values + (ics | csv). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "db.h"
#include "kind.h"

typedef struct templates templates_t;

/* Load DIR/<kind>.txt (required) and DIR/<kind>.html (optional) for every kind, then render
 * each once with sample values so an unknown placeholder is found now, not in an inbox.
 * *ret_err names the file and the problem. */
int templates_load(const char *dir, const config_t *c, templates_t **ret, char **ret_err);
templates_t *templates_free(templates_t *t);
/* The set for sessions of `course` (SPEC 11: a course's directory holds the kinds it
 * changes; the global template serves the rest). t for NULL or ""; NULL for a course the
 * configuration did not have when t was loaded. templates_load() loads every course of c,
 * checking each as it checks the global ones. */
const templates_t *templates_for(const templates_t *t, const char *course);

typedef struct {
        kind_t kind;
        const char *occasion;
        int64_t session_id;
        int64_t registration_id; /* 0 for the roster */
        const char *recipient;
        const char *message_id;
} mail_key_t;

/* Limits: the next open sessions an email lists, and the size of one template file. */
#define RENDER_NEXT_SESSIONS 5
#define RENDER_TITLE_MAX 200     /* bytes of a session title shown; longer is cut */
#define RENDER_LIST_MAX (256 * 1024) /* bytes of a list in an email (sessions, addresses) */
#define RENDER_TEMPLATE_MAX (256 * 1024)
#define RENDER_TEMPLATE_MAX_TEXT "256 KiB"

/* One newly unreachable registration, for the coordinators' `unreachable` email. */
typedef struct {
        int64_t registration_id;
        char *name, *email, *reason;     /* reason: the server's words, or NULL */
        char *title;                     /* its session's */
        int64_t starts_at, ends_at;
} mail_unreachable_t;

void mail_unreachable_free(mail_unreachable_t *v, size_t n);

/* What one email speaks of, gathered by its caller: rendering reads nothing else. */
typedef struct {
        const session_t *session;
        const registration_t *registration; /* NULL for an email to the session (roster) */
        const registration_t *roster;       /* the booked, for the roster */
        size_t n_roster;
        const session_t *next;              /* bookable sessions, soonest first, with counts */
        size_t n_next;
        const char *instance;               /* this database's id, in the calendar UID */
        const mail_unreachable_t *unreachable; /* for `unreachable`: whom the coordinators are told of */
        size_t n_unreachable;
} mail_data_t;

/* Whether kind's templates speak of booked_count or seats_left: the session then needs
 * its counts, a walk of its registrations that other emails do not pay for. */
bool render_needs_counts(const templates_t *t, kind_t kind);

/* Render one email for `key` as of `now`. Caller owns *ret. -EINVAL (with *ret_err when a
 * template is at fault) when it cannot be built. */
int render_mail(const config_t *c, const templates_t *t, const mail_key_t *key,
                const mail_data_t *d, int64_t now, char **ret, size_t *ret_size, char **ret_err);

/* What changed, in words for session_changed ("The session now takes place on ..."), or
 * "" when neither the times nor the link did. Caller frees; NULL on OOM. */
char *render_change_note(int64_t old_start, int64_t old_end, const char *old_join,
                         int64_t start, int64_t end, const char *join);

/* The stable UID of a session's calendar event. */
char *render_ics_uid(const config_t *c, const char *instance, int64_t session_id);
