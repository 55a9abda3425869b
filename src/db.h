/* db.h - the SQLite state: schema and migrations, prepared statements, rows as structs. */
#pragma once
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "status.h"

typedef struct db db_t;

/* Open (creating and migrating the schema) the database at path. Errors: -EBUSY when
 * locked past the busy timeout, -EIO for a corrupt or unreadable file, -EROFS, -ENOMEM.
 * *ret_err gets a sentence naming the file and the cause (caller frees). */
int db_open(const char *path, db_t **ret, char **ret_err);
db_t *db_close(db_t *db);
/* A private in-memory copy of src, for dry runs that must not write the real state. */
int db_open_copy(db_t *src, db_t **ret);
sqlite3 *db_handle(db_t *db);

/* Whether this process can write the database at path (and its -wal and -shm files, and
 * the directory they are made in). -EACCES with a sentence naming the file, its owner
 * and the chown that fixes it (a database created or restored by root); 0 when it can,
 * or when nothing is there yet. */
int db_check_writable(const char *path, char **ret_err);

/* Only one process sends from a database, so nothing is claimed twice and what a crash
 * left claimed can be taken back at start: a lock on the file, held until db_close().
 * -EBUSY when another process (a daemon, a `meccd --once`) holds it. */
int db_lock_sender(db_t *db);
/* How long a statement waits for another writer (the website) before -EBUSY. The event
 * loop keeps it short and comes back on a timer; meccctl can afford to wait. */
void db_set_busy_timeout(db_t *db, int ms);
const char *db_path(const db_t *db);
/* Whether commits are flushed to disk (MECCD_SYNCHRONOUS=FULL), as what stands in for
 * them must then be too. */
bool db_sync_full(const db_t *db);
/* This database's own id, for Message-IDs and calendar UIDs ("0" for a copy). */
const char *db_instance(const db_t *db);
const char *db_errmsg(db_t *db);

/* A statement prepared once per connection and cached by the address of its SQL text
 * (always a string literal), reset and with bindings cleared. NULL on error. */
sqlite3_stmt *db_stmt(db_t *db, const char *sql);

/* Map an SQLite result code to 0 / -EBUSY / -EIO / -EINVAL ... */
int db_errno(int rc);

int db_begin(db_t *db);   /* BEGIN IMMEDIATE: take the write lock up front */
int db_commit(db_t *db);
void db_rollback(db_t *db);

/* Step a statement expected to finish (INSERT/UPDATE): 0 or negative errno. */
int db_step_done(sqlite3_stmt *st);
/* Step a statement: 1 row, 0 done, negative errno. */
int db_step(sqlite3_stmt *st);

/* Bind helpers: an int64 of 0 or a NULL/"" string binds SQL NULL (absent). */
void db_bind_time(sqlite3_stmt *st, int i, int64_t t);
void db_bind_text(sqlite3_stmt *st, int i, const char *s);
char *db_col_text(sqlite3_stmt *st, int i); /* malloc'd copy, NULL for NULL */

/* Small persistent facts: last scan time, the instance id used in Message-IDs. */
int db_meta_set(db_t *db, const char *key, const char *value);
char *db_meta_get(db_t *db, const char *key);
/* A consistent copy of the database, made with SQLite's online backup API while others
 * write: a new file of mode 0600 at path. -EEXIST unless force when path exists; on any
 * failure nothing is left at path. *ret_err names the file and the cause. amend, unless
 * NULL, may write to the copy before it is closed (outbox_backup()). */
int db_backup(db_t *db, const char *path, bool force, int (*amend)(db_t *copy, void *userdata),
              void *userdata, char **ret_err);
/* SQLite's PRAGMA data_version: changes when another connection commits (cheap: no read
 * of the tables). -1 on error. */
int64_t db_data_version(db_t *db);

typedef struct {
        int64_t id;
        char *title;
        int64_t starts_at, ends_at, closes_at; /* closes_at 0: derived from the cutoff */
        long capacity;
        char *join_url, *elearning_url, *trainer_email;
        session_status_t status;
        long seq;            /* iCalendar SEQUENCE: rises with each change */
        char *change_note;   /* what the last change was, for session_changed */
        char *problem;       /* why it is held back (the website wrote something wrong), or NULL */
        char *course;        /* a course of the config, or NULL: the global settings */
        char *ref;           /* the hub's id for the event, or NULL */
        long booked, waitlisted;
} session_t;

typedef struct {
        int64_t id, session_id;
        char *name, *email, *token;
        char *organisation, *ref; /* the volunteer's organisation, the hub's booking ref */
        reg_status_t status;
        int64_t registered_at, elearning_done_at, booked_at; /* 0: absent */
        int attended;             /* 1 came, 0 did not, -1 nobody has said */
        int64_t attended_minutes; /* -1: not known */
        int64_t unreachable_at;   /* 0: reachable; else when the address was refused for good */
        char *unreachable_reason; /* the server's words, or NULL */
} registration_t;

/* 1 found, 0 no such row, negative errno. With the booked and waitlisted counts. */
int db_session_get(db_t *db, int64_t id, session_t *ret);
/* The same without the counts (they cost a walk of the session's registrations, which
 * delivery, asking once per email, must not pay): booked and waitlisted are -1. */
int db_session_get_plain(db_t *db, int64_t id, session_t *ret);
int db_session_count(db_t *db, session_t *s);
/* Places not taken (never below 0: capacity may have been lowered under the bookings).
 * Needs the counts. */
static inline long session_seats_left(const session_t *s)
{
        return s->capacity > s->booked ? s->capacity - s->booked : 0;
}
void session_clear(session_t *s);
int db_registration_get(db_t *db, int64_t id, registration_t *ret);
void registration_clear(registration_t *r);

/* Step st (bound) to its end, filling an array of elements of `size` bytes, one per row,
 * with row() (which returns 0 or a negative errno). On failure *ret holds the *ret_n
 * elements made so far, for the caller's destructor. */
int db_collect(sqlite3_stmt *st, size_t size, int (*row)(sqlite3_stmt *st, void *elem),
               void **ret, size_t *ret_n);

/* The booked registrations of a session by name (the roster). Caller frees with
 * registrations_free(). */
int db_session_booked(db_t *db, int64_t session_id, registration_t **ret, size_t *ret_n);
registration_t *registrations_free(registration_t *v, size_t n);
/* Up to max open sessions starting after `after`, soonest first, but `except`, with their
 * counts. Caller frees with sessions_free(). */
int db_sessions_open_after(db_t *db, int64_t after, int64_t except, size_t max,
                           session_t **ret, size_t *ret_n);
session_t *sessions_free(session_t *v, size_t n);
