/* admin.h - what an admin may do: sessions, registrations, imports, retrying emails. The
 * rules and the SQL of each action live here; meccctl only parses argv and prints. Nothing
 * here prints or logs: a refusal comes back as a result and a sentence for the caller. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "db.h"

/* Besides 0 (done) and a negative errno (the database failed), what an action answers;
 * each has one exit status in meccctl. */
typedef enum admin_result {
        ADMIN_OK = 0,
        ADMIN_NOT_FOUND,        /* no such session, registration or email */
        ADMIN_REFUSED,          /* a value or a state the rules do not allow */
        ADMIN_NEEDS_FORCE,      /* allowed, but most likely a mistake: only when forced */
        ADMIN_NO_INPUT,         /* a file to read cannot be opened */
        ADMIN_CONFIG,           /* the configuration (its templates) cannot be used */
} admin_result_t;

typedef struct {
        db_t *db;
        const config_t *cfg;
        int64_t now;
} admin_t;

/* Set *ret_why (when the caller wants one) to a sentence, and return result: how an action
 * refuses in one line. */
int admin_say(int result, char **ret_why, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* `init`: create the database named in the configuration, or bring its schema up to date.
 * Every command opens the database this way. */
int admin_open(const config_t *c, db_t **ret, char **ret_err);

/* ---- sessions ----------------------------------------------------------------------------- */

enum {
        SF_TITLE = 1 << 0,
        SF_START = 1 << 1,
        SF_END = 1 << 2,
        SF_CAPACITY = 1 << 3,
        SF_JOIN_URL = 1 << 4,
        SF_ELEARNING_URL = 1 << 5,
        SF_TRAINER = 1 << 6,
        SF_CLOSES = 1 << 7,
        SF_COURSE = 1 << 8,
        _SF_ALL = (1 << 9) - 1,
        SF_REQUIRED = SF_TITLE | SF_START | SF_END | SF_CAPACITY, /* to add a session */
};

/* The fields of a session an admin sets; `given` (SF_*) says which. */
typedef struct {
        unsigned given;
        const char *title;
        int64_t starts_at, ends_at;
        long capacity;
        const char *join_url, *elearning_url, *trainer_email;
        int64_t closes_at;      /* when bookings close, instead of booking_cutoff before the start */
        const char *course;     /* a course of the config ("": none); without a title, its title */
} session_fields_t;

/* Add an open session. One that starts in the past, or whose bookings would close at once
 * (its cutoff has passed: the roster would go out at the next scan), is ADMIN_NEEDS_FORCE
 * unless force; forced, it is added and *ret_why says what to beware of. */
int admin_session_add(const admin_t *a, const session_fields_t *f, bool force, int64_t *ret_id,
                      char **ret_why);
/* Apply every given field. A change of start, end or joining link is recorded for the
 * session_changed step (*ret_told: those already emailed will be told). Cancelled and done
 * sessions are not edited. */
int admin_session_edit(const admin_t *a, int64_t id, const session_fields_t *f, bool *ret_told,
                       char **ret_why);
/* Cancel an open or closed session; the scan tells everyone placed. */
int admin_session_cancel(const admin_t *a, int64_t id, char **ret_why);
/* Close an open session's bookings now, and run the close step for it at once. */
int admin_session_close(const admin_t *a, int64_t id, char **ret_why);

/* ---- registrations ------------------------------------------------------------------------ */

/* A new registration, as the website makes one (registered now). */
int admin_register(const admin_t *a, int64_t session_id, const char *name, const char *email,
                   int64_t *ret_id, char **ret_why);
/* Whether the person may still cancel: new, booked or waitlisted. */
bool admin_may_cancel(reg_status_t s);
int admin_cancel(const admin_t *a, int64_t registration_id, char **ret_why);
/* E-learning done at `at`: one registration, or every registration still to come with that
 * address (compared without regard to case). ADMIN_NOT_FOUND when there is none. */
int admin_elearning_done_id(const admin_t *a, int64_t registration_id, int64_t at, char **ret_why);
int admin_elearning_done_email(const admin_t *a, const char *email, int64_t at, char **ret_why);

/* ---- imports: one transaction each, all rows or none --------------------------------------- */

typedef struct {
        size_t rows;            /* data rows read */
        size_t applied;         /* rows that changed something */
        char **notes;           /* "FILE:LINE: no registration for ADDR": rows that matched nobody */
        size_t n_notes;
        size_t skipped;         /* bad rows of a source's export, each with a note */
} import_report_t;
void import_report_clear(import_report_t *r);

/* FILE.csv whose header names the columns session_id (or session: a session's ref), name,
 * email, and optionally registered_at, ref, status and organisation, in any order. With a
 * ref it is idempotent: a known ref adds nothing, and with status "cancelled" cancels. */
int admin_import_registrations(const admin_t *a, const char *path, import_report_t *ret,
                               char **ret_why);

/* The columns of a bookings export (meccd(8), THE HUB). */
typedef enum import_col {
        IMPORT_COL_REF,
        IMPORT_COL_SESSION,        /* the session's ref */
        IMPORT_COL_SESSION_ID,
        IMPORT_COL_NAME,
        IMPORT_COL_EMAIL,
        IMPORT_COL_STATUS,
        IMPORT_COL_REGISTERED_AT,
        IMPORT_COL_ORGANISATION,
        _IMPORT_COL_MAX,
} import_col_t;
/* The names a hand import's header uses. */
extern const char *const import_column_names[_IMPORT_COL_MAX];

typedef struct {
        const char *header[_IMPORT_COL_MAX]; /* the header naming each column; NULL: none */
        const char *const *cancelled;         /* status values that cancel (any case) */
        size_t n_cancelled;
        /* a source's export: other columns are not read, and a bad row is skipped with a
         * note that quotes no value (it is logged); a hand import refuses the whole file */
        bool skip_bad_rows;
} import_bookings_t;

/* Apply an export (buf, size; `where` names it in notes and errors) in one transaction. */
int admin_import_bookings(const admin_t *a, const char *where, const char *buf, size_t size,
                          const import_bookings_t *how, import_report_t *ret, char **ret_why);
/* FILE.csv with the header email,completed_at. An address nobody registered with is a
 * note, not an error. */
int admin_import_elearning(const admin_t *a, const char *path, import_report_t *ret,
                           char **ret_why);

/* Whether a session other than id (0: a new one) has ref; "" is no ref. ADMIN_REFUSED with
 * the sentence when taken or not a single line. */
int admin_session_ref_check(const admin_t *a, int64_t id, const char *ref, char **ret_why);
/* Record the hub's id for a session ("": none). */
int admin_session_set_ref(const admin_t *a, int64_t id, const char *ref, char **ret_why);

/* Correct a registration's name and/or address (NULL: unchanged). A new address (or the
 * same one given again while it is unreachable) clears unreachable and queues what the
 * person is still owed as new occasions: the confirmation (or the waiting-list email), and
 * the joining link if its moment has passed; *ret_queued: how many. */
int admin_registration_edit(const admin_t *a, int64_t id, const char *name, const char *email,
                            long *ret_queued, char **ret_why);

/* ---- the outbox ---------------------------------------------------------------------------- */

/* Queue a failed email again, due now, as if never tried (it keeps its Message-ID). A retry
 * means "try that address again": its registration is no longer unreachable. */
int admin_retry(const admin_t *a, int64_t outbox_id, char **ret_why);
/* Every failed email; *ret_n: how many. */
int admin_retry_all_failed(const admin_t *a, long *ret_n);

/* ---- attendance (SPEC 12) -------------------------------------------------------------------- */

typedef struct {
        const char *format;     /* which export the file was */
        size_t people;          /* people in the file */
        size_t attended, absent; /* booked registrations, as recorded */
        char **unmatched;       /* "NAME <ADDR>, N min": rows that are no booking (guests, the trainer) */
        size_t n_unmatched;
} attendance_report_t;
void attendance_report_clear(attendance_report_t *r);

/* Replace the attendance of a session that has started with what the meeting platform's
 * export at path says (attendance.h). A row is a booked registration by its address
 * (without regard to case), else by its name when exactly one booked registration has that
 * name; it attended when its minutes reach attendance_min (a row without minutes: it did).
 * The booked nobody's row names did not attend. One transaction. ADMIN_REFUSED (a file that
 * is none of the formats, or a session not started), ADMIN_NOT_FOUND, ADMIN_NO_INPUT. */
int admin_attendance_import(const admin_t *a, int64_t session_id, const char *path,
                            attendance_report_t *ret, char **ret_why);
/* Record by hand: each of who (a registration id or an address) booked on the session
 * attended, or not. All or none. */
int admin_attendance_mark(const admin_t *a, int64_t session_id, bool attended, char *const *who,
                          size_t n, char **ret_why);

/* admin_register() with the volunteer's organisation (SPEC 13; NULL or "": none given). */
int admin_register_org(const admin_t *a, int64_t session_id, const char *name, const char *email,
                       const char *organisation, int64_t *ret_id, char **ret_why);
/* Queue a failed email again, due now, with a new give-up period; it keeps its attempts,
 * last error and Message-ID. A running meccd is told (meta deliver_wanted) and sends it
 * within seconds. */
int admin_retry(const admin_t *a, int64_t outbox_id, char **ret_why);
/* Every failed email; *ret_n: how many. */
int admin_retry_all_failed(const admin_t *a, long *ret_n);
/* `outbox flush`: every queued email due now, however long its backoff had to run; the
 * history (attempts, last error) stays. A running meccd is told, as for a retry.
 * *ret_due: the queued emails now due. */
int admin_flush(const admin_t *a, long *ret_due);
