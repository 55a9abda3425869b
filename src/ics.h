/* ics.h - an RFC 5545 calendar object for one session. Pure: no I/O, no logging. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

typedef struct {
        const char *uid;          /* stable per session, e.g. "session-7@meccd.example.org" */
        int sequence;             /* rises with each change */
        int64_t dtstamp;          /* now */
        int64_t start, end;       /* Unix seconds */
        const char *tzid;         /* the configured zone name; local times + VTIMEZONE */
        const char *summary;      /* session title */
        const char *description;  /* free text; may be NULL */
        const char *url;          /* joining link; may be NULL */
        const char *organizer;    /* "Name <addr>" or addr; may be NULL */
        bool cancel;              /* METHOD:CANCEL, STATUS:CANCELLED */
} ics_event_t;

/* Caller owns *ret (CRLF, folded at 75 octets). */
int ics_build(const ics_event_t *e, char **ret);
