/* bounce.h - the bounce mailbox (meccd(8), BOUNCES): read its new messages with libcurl
 * (IMAPS, IMAP with STARTTLS, POP3S), and for a delivery status notification that reports a
 * permanent failure of an email meccd sent, mark the registration unreachable. Each message
 * is looked at once: IMAP flags it \Seen (never deletes it), POP3 remembers its UIDL in
 * bounce_seen. Blocking: `meccd --once` calls it directly; the daemon calls it on a thread
 * of its own with its own database connection (meccd.c). */
#pragma once
#include <stdatomic.h>
#include <stdint.h>

#include "config.h"
#include "db.h"

typedef struct {
        unsigned looked;        /* new messages read */
        unsigned reports;       /* delivery status notifications among them */
        unsigned unreachable;   /* registrations newly marked unreachable */
} bounce_stats_t;

/* One look. stop (may be NULL) ends it early when it becomes true. 0, or <0 with *ret_err
 * saying what failed (the server's words with addresses redacted; caller frees). Logs each
 * registration it marks, naming no one. */
int bounce_check(db_t *db, const config_t *c, const char *password, int64_t now,
                 const atomic_bool *stop, bounce_stats_t *stats, char **ret_err);
