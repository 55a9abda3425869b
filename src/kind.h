/* kind.h - the kinds of email, and every fact about each in one table: whom it goes to,
 * what it carries, and when it stops being true. A new kind is a row in kind.c and a
 * template; the scan step that queues it is its only other home. */
#pragma once
#include <errno.h>
#include <stdbool.h>

#include "status.h"

typedef enum kind {
        KIND_CONFIRMATION,
        KIND_WAITLISTED,
        KIND_PROMOTED,
        KIND_LATE,
        KIND_NOT_PLACED,
        KIND_ELEARNING_REMINDER,
        KIND_JOINING_LINK,
        KIND_ROSTER,
        KIND_FOLLOW_UP,
        KIND_SESSION_CANCELLED,
        KIND_SESSION_CHANGED,
        KIND_MISSED,
        KIND_ATTENDANCE_REQUEST,
        KIND_UNREACHABLE,       /* to the coordinators: addresses the mail system refused */
        _KIND_MAX,
        _KIND_INVALID = -EINVAL,
} kind_t;

typedef enum kind_ics {
        ICS_NONE,
        ICS_PUBLISH,    /* the event, to add or update in a calendar */
        ICS_CANCEL,     /* METHOD:CANCEL, so calendars drop the event */
} kind_ics_t;

/* When a queued email is no longer true and is dropped as expired. Beyond these, every
 * email is dropped when its session or registration is gone, its address erased or its
 * registration cancelled, or (`needs`) the registration is no longer in the state it
 * tells of. What was true when it was queued and is still true still goes: a place given
 * just before the cutoff is told even if the relay held it back past the cutoff. */
enum {
        DROP_AT_START = 1 << 0,          /* the session has started */
        DROP_ELEARNING_DONE = 1 << 1,    /* the e-learning is done */
        DROP_SESSION_CANCELLED = 1 << 2, /* the session was cancelled */
};

typedef struct {
        const char *name;       /* templates, the outbox, logs, --json */
        bool to_session;        /* goes to the trainer or roster_to (else: a registration) */
        kind_ics_t ics;
        bool next_sessions;     /* lists the next open sessions */
        reg_status_t needs;     /* the registration status it speaks of; -1: any */
        unsigned drop;          /* DROP_* */
} kind_info_t;

const kind_info_t *kind_info(kind_t k); /* NULL when out of range */
const char *kind_to_string(kind_t k);
kind_t kind_from_string(const char *s);
