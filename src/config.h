/* config.h - meccd.conf (libconfuse), validated into a plain struct. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock.h"

#define DEFAULT_CONFIG SYSCONFDIR "/meccd/meccd.conf"

typedef struct {
        char *url;
        bool tls_required;      /* tls = "required" (default) or "none" */
        char *username;
        char *password_file;
        char *from;             /* "Display <addr>" as written */
        char *from_addr;        /* the bare address of from */
        char *reply_to;
        char *return_path;      /* the envelope sender (MAIL FROM): return_path, else from_addr */
        char *ca_file;
        long connections;
        long timeout;           /* seconds */
        long max_per_minute;
        duration_t give_up_after;
} smtp_config_t;

/* The mailbox that bounces arrive in (SPEC 14); url "" : not looked at. */
typedef struct {
        char *url;              /* imaps://, imap:// (STARTTLS required) or pop3s:// */
        char *username;
        char *password_file;    /* else the credential bounce-password */
        long interval;          /* seconds between looks */
        char *ca_file;
} bounce_config_t;

/* A hub that exports bookings (meccd.conf(5), SOURCES): fetched by meccd every interval. */
typedef struct {
        char *name;             /* the section's title */
        char *url;              /* https://, http://, sftp:// or file:// */
        char *username;
        char *password_file;    /* else the credential source-NAME-password, if any */
        char *ca_file;
        long interval;          /* seconds */
        /* the export's header for each column: ref, session (the session's ref), name,
         * email, status, registered_at, organisation */
        char *col_ref, *col_session, *col_name, *col_email, *col_status, *col_registered_at,
             *col_organisation;
        char **cancelled;       /* status values that cancel */
        size_t n_cancelled;
} source_config_t;

typedef struct config {
        char *path;
        char *timezone;
        char *database;
        char *templates;
        long scan_interval;
        duration_t booking_cutoff;
        bool require_elearning;
        char *organisation;
        char *elearning_url;
        char *signpost_url;
        char *feedback_url;
        char *cancel_url;
        char **roster_to;
        size_t n_roster_to;
        duration_t retention;
        duration_t *reminders_elearning; /* sorted, largest offset first */
        size_t n_reminders_elearning;
        duration_t reminder_joining_link;
        bool follow_up_enabled;
        duration_t reminder_follow_up;
        smtp_config_t smtp;
        bounce_config_t bounces;
        /* attendance (SPEC 12) */
        bool attendance_required;       /* follow-ups wait for the attendance */
        bool attendance_min_set;        /* else: half the session's length */
        duration_t attendance_min;
        /* courses (SPEC 11): each course's settings are a whole config_t, the global one
         * with the course's own values put over it, so every reader of a setting reads
         * it the same way whichever course it is for. */
        char *course;                   /* the course these settings are of; NULL: global */
        char *course_title;             /* the default title of its sessions, or NULL */
        struct config **courses;        /* global only */
        size_t n_courses;
        source_config_t *sources;       /* global only */
        size_t n_sources;
} config_t;

/* Parse and validate path, changing nothing in the process: a file that is refused, or
 * one read only to be checked, leaves no trace. On error returns -EINVAL (or -errno for
 * an unreadable file) and sets *ret_err to "FILE:LINE: option NAME: reason" (caller
 * frees). */
int config_parse(const char *path, config_t **ret, char **ret_err);
/* Put c into force in this process: select its time zone for every local time. A daemon
 * calls it once the whole of its new setup (config and templates) is known to be good.
 * On error nothing changed and *ret_err says why (caller frees). */
int config_apply(const config_t *c, char **ret_err);
/* config_parse(), then config_apply(): for a command that uses the file at once. */
int config_load(const char *path, config_t **ret, char **ret_err);
config_t *config_free(config_t *c);

/* The settings for a session of course `course` (SPEC 11: session, then course, then the
 * global settings): c itself for NULL or "", the course's for a configured course, NULL for
 * a course the config does not know. */
const config_t *config_settings(const config_t *c, const char *course);
/* The minutes of presence that count as having attended a session of that length. */
long config_attendance_min(const config_t *c, int64_t starts_at, int64_t ends_at);

/* The latest offset of the e-learning reminders (the one closest to the start), or NULL. */
const duration_t *config_last_reminder(const config_t *c);
/* "@example.org" from smtp.from's address, for the ids meccd makes (Message-ID, the
 * calendar's UID); "@meccd.invalid" when there is none. Points into c or is static. */
const char *config_mail_domain(const config_t *c);
