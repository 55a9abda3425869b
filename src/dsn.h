/* dsn.h - what a message in the bounce mailbox says (meccd(8), BOUNCES): whether it is an
 * RFC 3464 delivery status notification, and per recipient what happened. Pure: no I/O, no
 * logging. A real bounce says "Auto-Submitted: auto-replied" just as an out-of-office reply
 * does, so the decision is made on the MIME structure (multipart/report;
 * report-type=delivery-status), never on that header. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

typedef struct {
        char *action;          /* lower case: "failed", "delayed", "delivered", ...; never NULL */
        char *status;          /* "5.1.1"; "" when absent or not of the form d.d.d */
        char *final_recipient; /* the bare address of "rfc822; addr"; "" when absent */
        char *diagnostic;      /* Diagnostic-Code, unfolded ("smtp; 550 5.1.1 ..."); "" when absent */
} dsn_recipient_t;

typedef struct {
        char *message_id;      /* "<id@domain>" of the returned message; NULL when not given */
        dsn_recipient_t *recipients;
        size_t n_recipients;
} dsn_t;

/* Parse one whole message (any bytes, CRLF or LF line ends, possibly cut short). 1 and *ret
 * set: a DSN; 0 and *ret NULL: anything else (an auto-reply, unrelated mail, garbage);
 * -ENOMEM. */
int dsn_parse(const char *data, size_t size, dsn_t **ret);
void dsn_free(dsn_t *d);

/* A permanent failure: Action "failed" and a 5.x.x status (RFC 3463). */
bool dsn_recipient_failed(const dsn_recipient_t *r);
