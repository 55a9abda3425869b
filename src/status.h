/* status.h - the states of sessions, registrations and outbox rows, as types. The
 * strings are the database's (and the website's, and --json's); C code holds the enums
 * and converts once, where a row is read or written. */
#pragma once
#include <errno.h>

typedef enum session_status {
        SESSION_OPEN,
        SESSION_CLOSED,
        SESSION_CANCELLED,
        SESSION_DONE,
        _SESSION_STATUS_MAX,
        _SESSION_STATUS_INVALID = -EINVAL,
} session_status_t;

typedef enum reg_status {
        REG_NEW,
        REG_BOOKED,
        REG_WAITLISTED,
        REG_LATE,
        REG_CANCELLED,
        REG_INVALID,
        _REG_STATUS_MAX,
        _REG_STATUS_INVALID = -EINVAL,
} reg_status_t;

typedef enum mail_status {
        MAIL_QUEUED,
        MAIL_SENT,
        MAIL_FAILED,
        MAIL_EXPIRED,
        _MAIL_STATUS_MAX,
        _MAIL_STATUS_INVALID = -EINVAL,
} mail_status_t;

/* NULL for a value out of range; _INVALID for an unknown or NULL string. */
const char *session_status_to_string(session_status_t s);
session_status_t session_status_from_string(const char *s);
const char *reg_status_to_string(reg_status_t s);
reg_status_t reg_status_from_string(const char *s);
const char *mail_status_to_string(mail_status_t s);
mail_status_t mail_status_from_string(const char *s);

/* A registration that holds or waits for a place: it counts against the session, it is
 * told when the session is cancelled, and the person may still cancel it. */
static inline int reg_status_is_placed(reg_status_t s)
{
        return s == REG_BOOKED || s == REG_WAITLISTED;
}
