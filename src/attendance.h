/* attendance.h - who came to a session, read from what the meeting platform exports:
 * Microsoft Teams' attendance report, Zoom's participants export, or a plain CSV of
 * email[,minutes]. Pure: bytes in, rows out; matching them to bookings is admin.c's. */
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef enum attendance_format {
        ATTENDANCE_TEAMS,
        ATTENDANCE_ZOOM,
        ATTENDANCE_PLAIN,
} attendance_format_t;

/* One person: the rows of a person (Zoom writes one per join; a plain CSV may repeat an
 * address) are added up under their address, or under their name when they have none. */
typedef struct {
        char *email;            /* "" for a guest without one */
        char *name;             /* "" when the file has no names (plain CSV) */
        long minutes;           /* -1: the file does not say */
        unsigned line;          /* the first line of the file that named them */
} attendance_row_t;

typedef struct {
        attendance_format_t format;
        attendance_row_t *rows;
        size_t n;
} attendance_t;

#define ATTENDANCE_MAX_SIZE (16 * 1024 * 1024)

/* Read data[0..size): UTF-16 (with its byte-order mark, as Teams writes it) or UTF-8;
 * tab- or comma-separated; the participants table found by its header row wherever it is.
 * -EBADMSG when it is none of the formats, or a row of it cannot be read: *ret_why (caller
 * frees) says which line and why. -ENOMEM. */
int attendance_parse(const char *data, size_t size, attendance_t **ret, char **ret_why);
attendance_t *attendance_free(attendance_t *a);
const char *attendance_format_name(attendance_format_t f);

/* "1h 23m 5s", "45m 2s", "59s", "2h": seconds, or -1 when it is not such a duration. */
long attendance_parse_duration(const char *s);
