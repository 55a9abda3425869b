/* kind.c - the table of email kinds. */
#include <string.h>

#include "kind.h"

#define ANY ((reg_status_t) -1)
#define CANCEL DROP_SESSION_CANCELLED

static const kind_info_t kinds[_KIND_MAX] = {
        /*                          name                  session ics          next   needs           drop */
        [KIND_CONFIRMATION]     = { "confirmation",       false, ICS_NONE,    false, REG_BOOKED,     CANCEL },
        [KIND_WAITLISTED]       = { "waitlisted",         false, ICS_NONE,    false, REG_WAITLISTED, CANCEL },
        [KIND_PROMOTED]         = { "promoted",           false, ICS_NONE,    false, REG_BOOKED,     CANCEL },
        [KIND_LATE]             = { "late",               false, ICS_NONE,    true,  ANY,            0 },
        [KIND_NOT_PLACED]       = { "not_placed",         false, ICS_NONE,    true,  ANY,            0 },
        [KIND_ELEARNING_REMINDER] = { "elearning_reminder", false, ICS_NONE,  false, ANY,            CANCEL | DROP_AT_START | DROP_ELEARNING_DONE },
        [KIND_JOINING_LINK]     = { "joining_link",       false, ICS_PUBLISH, false, ANY,            CANCEL | DROP_AT_START },
        [KIND_ROSTER]           = { "roster",             true,  ICS_NONE,    false, ANY,            CANCEL },
        [KIND_FOLLOW_UP]        = { "follow_up",          false, ICS_NONE,    false, ANY,            CANCEL },
        [KIND_SESSION_CANCELLED] = { "session_cancelled", false, ICS_CANCEL,  true,  ANY,            0 },
        [KIND_SESSION_CHANGED]  = { "session_changed",    false, ICS_PUBLISH, false, ANY,            CANCEL | DROP_AT_START },
        [KIND_MISSED]           = { "missed",             false, ICS_NONE,    true,  REG_BOOKED,     0 },
        [KIND_ATTENDANCE_REQUEST] = { "attendance_request", true, ICS_NONE,   false, ANY,            CANCEL },
        /* its session is only where the row hangs: the list spans every session */
        [KIND_UNREACHABLE]      = { "unreachable",        true,  ICS_NONE,    false, ANY,            0 },
};

const kind_info_t *kind_info(kind_t k)
{
        return k >= 0 && k < _KIND_MAX ? &kinds[k] : NULL;
}

const char *kind_to_string(kind_t k)
{
        return k >= 0 && k < _KIND_MAX ? kinds[k].name : NULL;
}

kind_t kind_from_string(const char *s)
{
        for (int k = 0; s && k < _KIND_MAX; k++)
                if (strcmp(kinds[k].name, s) == 0)
                        return (kind_t) k;
        return _KIND_INVALID;
}
