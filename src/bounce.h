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

/* The daemon's look, on a thread of its own with its own connection to the database (busy
 * timeout of its own): a slow mail server, a long TLS handshake or the website's write lock
 * then hold that thread, never the event loop (the watchdog, signals, SMTP). A thread, not
 * libcurl multi: IMAP is a conversation of dependent requests with database work between
 * them, which is simple when written straight down and blocking. The thread touches only
 * its own copies of the settings, so a reload may free the config under way. When it ends,
 * done() runs on the event loop and the job is gone. */
typedef struct bounce_job bounce_job_t;
typedef void (*bounce_done_fn)(int r, const bounce_stats_t *stats, const char *err, void *userdata);
struct sd_event;
int bounce_job_start(struct sd_event *e, const config_t *c, const char *password, int64_t now,
                     bounce_done_fn done, void *userdata, bounce_job_t **ret);
/* Ask the job to stop (its transfer is abandoned within a second) and wait for it; done()
 * is not called. NULL is fine. */
void bounce_job_cancel(bounce_job_t *j);
