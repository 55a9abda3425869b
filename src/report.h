/* report.h - the read side for admins: lists, "is it healthy?", the dry run of what the
 * scans will send, and the preview of one email. Reads only (the dry run works on a copy);
 * prints and logs nothing. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admin.h"
#include "config.h"
#include "db.h"
#include "kind.h"
#include "status.h"

/* ---- lists: fn is called once per row, in order; a negative return stops the walk ------ */

/* Every session by start, with its counts. */
int report_sessions(db_t *db, int (*fn)(const session_t *s, void *userdata), void *userdata);
/* Registrations of one session (session_id 0: all), by session and registration time. */
int report_registrations(db_t *db, int64_t session_id,
                         int (*fn)(const registration_t *g, void *userdata), void *userdata);

/* An email as `outbox list` shows it. */
typedef struct {
        int64_t id, registration_id, session_id;        /* registration_id 0: a session email */
        kind_t kind;
        const char *occasion, *recipient;               /* "" when none, or erased */
        mail_status_t status;
        long attempts;
        int64_t created_at, sent_at, next_attempt_at;   /* 0: absent */
        const char *last_error, *message_id;            /* NULL when absent */
} mail_row_t;

/* Outbox rows by id, all or those in one status (-1: all). The strings of a row live until
 * fn returns. */
int report_outbox(db_t *db, mail_status_t status,
                  int (*fn)(const mail_row_t *o, void *userdata), void *userdata);

/* ---- status ------------------------------------------------------------------------------ */

/* The daemon's STATUS= figures: sessions open for booking, emails queued and failed. */
int report_status_line(db_t *db, long *ret_open, long *ret_queued, long *ret_failed);

#define HEALTH_OVERDUE_AFTER 3600       /* seconds an email may wait before it is overdue */

typedef struct {
        long open_sessions, seats_left; /* sessions open for booking, their places not taken */
        long unprocessed;               /* registrations still new: the next scan's work */
        long queued, failed, overdue;   /* emails; overdue: queued over HEALTH_OVERDUE_AFTER */
        int64_t last_scan_at;           /* 0: never */
        bool scanning;                  /* a scan ran within three scan intervals and a minute */
        bool healthy;                   /* scanning, nothing failed, nothing overdue, none held back */
        long held_back;                 /* sessions with a problem (report_held_back names them) */
        long unreachable;               /* registrations of sessions to come whose address bounced */
        /* The admin's problem delivery met (refused login, TLS setup, unreadable credential
         * or CA), from meta relay_problem; "" when none. Cleared by the next email sent. */
        char relay_problem[600];
        int64_t relay_problem_at;
        long stuck;                     /* new registrations a whole scan has since left new */
        long held_sessions;             /* sessions held back (sessions.problem) */
        int64_t held_id;                /* the first of them, and why */
        char held_problem[256];
        long invalid;                   /* registrations refused as invalid (not unhealthy) */
        char invalid_reasons[256];      /* "3 registered_at is not ...; 1 ..." */
        char db_problem[512];           /* the service user cannot write the database, or "" */
} health_t;

int report_health(db_t *db, const config_t *c, int64_t now, health_t *ret);

/* Each session held back (sessions.problem: a course not configured, an end before its
 * start), with why. */
int report_held_back(db_t *db, int (*fn)(int64_t session_id, const char *problem, void *userdata),
                     void *userdata);

/* What each configured hub source last gave (meccd.conf(5), SOURCES). */
typedef struct {
        const char *name;
        const char *url;
        int64_t last_attempt_at, last_good_at;  /* 0: never */
        long applied, skipped;                  /* of the last export applied */
        const char *last_error;                 /* the last fetch's failure, NULL if it was good */
} source_row_t;

/* Each source of the configuration, in its order, fetched or not yet. */
int report_sources(db_t *db, const config_t *c, int (*fn)(const source_row_t *s, void *userdata),
                   void *userdata);

/* ---- the dry run ------------------------------------------------------------------------- */

typedef struct {
        int64_t at;
        kind_t kind;
        int64_t registration_id;        /* 0: a session email (the roster) */
        int64_t session_id;
} upcoming_t;

/* Every email the scans would send from now until `until`, and when, assuming nothing else
 * changes: the scans run on a private copy of the database, at each moment plan.c names. */
int report_upcoming(db_t *db, const config_t *c, int64_t now, int64_t until,
                    int (*fn)(const upcoming_t *u, void *userdata), void *userdata);

/* ---- preview ----------------------------------------------------------------------------- */

/* The email of `kind` for a registration (for a session email: to its session), as it would
 * go on the wire at `now`, with the Message-ID it was sent with if it was. Returns 0,
 * ADMIN_NOT_FOUND, ADMIN_CONFIG (templates), ADMIN_REFUSED (it cannot be rendered: *ret_why)
 * or a negative errno. */
int report_preview(db_t *db, const config_t *c, int64_t now, kind_t kind, int64_t registration_id,
                   char **ret, size_t *ret_size, char **ret_why);

/* ---- the programme report (SPEC 13) ------------------------------------------------------- */

/* The counts of one row: registrations by their final state, and emails. Everything here is
 * read from statuses and outbox rows that erasure (the forget step) keeps: a report after
 * it equals the one before. */
typedef struct {
        long registrations, booked, not_placed, late, cancelled, invalid, elearning_done,
             attended, absent, attendance_unknown, emails_sent, emails_failed, unreachable;
} report_counts_t;

typedef struct {
        int64_t session_id;             /* 0: a total row */
        const char *title, *course;     /* course NULL: the global settings */
        const char *organisation;       /* with by_org: the organisation ("" none given); else NULL */
        int64_t starts_at;              /* 0 for a total row */
        long capacity;
        report_counts_t n;
} report_row_t;

#define REPORT_FIELDS 18
/* The field names of a row, in the order of SPEC 13 (organisation follows course with
 * by_org). */
extern const char *const report_field_names[REPORT_FIELDS];

/* A row per session starting in [from, until) (of `course` when not NULL: "" for sessions
 * of no course), by start; with by_org after each a row per organisation of its
 * registrations. Then the total row, and with by_org a total per organisation. */
int report_programme(db_t *db, int64_t from, int64_t until, const char *course, bool by_org,
                     int (*fn)(const report_row_t *r, void *userdata), void *userdata);
