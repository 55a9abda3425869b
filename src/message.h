/* message.h - an RFC 5322 / MIME message from parts. Pure: no I/O, no logging. */
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct {
        const char *filename;     /* "session.ics" */
        const char *content_type; /* "text/calendar; charset=UTF-8; method=PUBLISH" */
        const char *data;
        size_t size;
} attachment_t;

typedef struct {
        const char *from;       /* "Display Name <addr>" or "addr" (already validated) */
        const char *to_name;    /* display name, UTF-8, any bytes (sanitised here); may be NULL */
        const char *to_addr;    /* bare address, validated by the caller */
        const char *reply_to;   /* NULL or "" for none */
        const char *subject;    /* UTF-8, any bytes (sanitised here) */
        const char *message_id; /* "<id@domain>" */
        int64_t date;           /* Unix seconds; shown in the configured zone */
        const char *text;       /* text/plain body, UTF-8, LF line ends */
        const char *html;       /* NULL for none: then no multipart/alternative */
        const attachment_t *attachments;
        size_t n_attachments;
} message_t;

/* Build the wire form (CRLF line ends, quoted-printable text parts, base64 attachments,
 * RFC 2047 for non-ASCII headers, no header value able to break a line).
 * Caller owns *ret. -EINVAL when to_addr contains anything but a mailbox. */
int message_build(const message_t *m, char **ret, size_t *ret_size);
