/* status.c - the string table of each status type. */
#include <string.h>

#include "status.h"

static const char *const session_status_table[_SESSION_STATUS_MAX] = {
        [SESSION_OPEN] = "open",
        [SESSION_CLOSED] = "closed",
        [SESSION_CANCELLED] = "cancelled",
        [SESSION_DONE] = "done",
};

static const char *const reg_status_table[_REG_STATUS_MAX] = {
        [REG_NEW] = "new",
        [REG_BOOKED] = "booked",
        [REG_WAITLISTED] = "waitlisted",
        [REG_LATE] = "late",
        [REG_CANCELLED] = "cancelled",
        [REG_INVALID] = "invalid",
};

static const char *const mail_status_table[_MAIL_STATUS_MAX] = {
        [MAIL_QUEUED] = "queued",
        [MAIL_SENT] = "sent",
        [MAIL_FAILED] = "failed",
        [MAIL_EXPIRED] = "expired",
};

static int lookup(const char *const *table, int n, const char *s)
{
        for (int i = 0; s && i < n; i++)
                if (strcmp(table[i], s) == 0)
                        return i;
        return -EINVAL;
}

#define STRING_TABLE(name, type, max)                                           \
        const char *name##_to_string(type s)                                   \
        {                                                                      \
                return s >= 0 && s < max ? name##_table[s] : NULL;             \
        }                                                                      \
        type name##_from_string(const char *s)                                 \
        {                                                                      \
                return (type) lookup(name##_table, max, s);                    \
        }

STRING_TABLE(session_status, session_status_t, _SESSION_STATUS_MAX)
STRING_TABLE(reg_status, reg_status_t, _REG_STATUS_MAX)
STRING_TABLE(mail_status, mail_status_t, _MAIL_STATUS_MAX)
