/* smtp.h - hand messages to the relay over libcurl's multi interface, driven by an sd-event
 * loop, on up to `connections` parallel connections, each reused across messages.
 * Knows nothing of registrations. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-event.h>

#include "config.h"

typedef enum {
        SMTP_SENT,
        SMTP_TEMPORARY,   /* 4xx, dropped connection, timeout: try again later */
        SMTP_PERMANENT,   /* 5xx to this recipient or message: do not try again */
        SMTP_UNREACHABLE, /* the relay itself is down or refuses us: the batch waits */
} smtp_outcome_t;

/* Failures that are the admin's to fix, not the message's nor the network's: health says
 * so at once (meccctl status), while the emails wait. */
typedef enum {
        SMTP_PROBLEM_NONE,
        SMTP_PROBLEM_AUTH,      /* the relay refused our login (535, 534, 530 at AUTH) */
        SMTP_PROBLEM_TLS,       /* CA file unreadable, certificate not verified, no STARTTLS */
} smtp_problem_t;

typedef struct {
        smtp_outcome_t outcome;
        smtp_problem_t problem;
        long code;        /* the server's reply code, 0 if none */
        char reply[512];  /* the server's first error reply, or libcurl's reason */
        bool at_rcpt;     /* the reply refused RCPT: the address, not the message */
} smtp_result_t;

/* Whether a failed transfer (libcurl's code, the reply code, our last command) is the
 * admin's problem. */
smtp_problem_t smtp_problem_of(int curl_code, long reply_code, const char *command);

typedef void (*smtp_done_fn)(void *userdata, const smtp_result_t *res);

typedef struct smtp_pool smtp_pool_t;

/* password may be NULL (no AUTH). Nothing connects until the first message. */
int smtp_pool_new(sd_event *e, const smtp_config_t *cfg, const char *password, smtp_pool_t **ret);
/* Abandons transfers in flight (their callbacks are not called). */
smtp_pool_t *smtp_pool_free(smtp_pool_t *p);

unsigned smtp_pool_free_slots(const smtp_pool_t *p);
unsigned smtp_pool_in_flight(const smtp_pool_t *p);

/* Start sending one message to one recipient (bare, validated addresses). data must stay
 * valid until done is called, from the event loop, exactly once. -EBUSY: no free slot. */
int smtp_pool_submit(smtp_pool_t *p, const char *from, const char *rcpt, const char *data,
                     size_t size, smtp_done_fn done, void *userdata);

/* The password from smtp.password_file (refused if group/world readable) or from
 * $CREDENTIALS_DIRECTORY/smtp-password. *ret is NULL when none is configured. */
int smtp_load_password(const smtp_config_t *cfg, char **ret, char **ret_err);
/* The same for any secret: file (refused if group/world readable) when set, else
 * $CREDENTIALS_DIRECTORY/credential (optional: *ret NULL when absent). */
int smtp_load_secret(const char *file, const char *credential, char **ret, char **ret_err);

/* `meccctl test-email`: one message (whole, CRLF lines) to `to` through exactly the
 * daemon's settings, blocking. Each step of the dialogue goes to say() as a line: "* "
 * libcurl's notes (connected, TLS), "> " our commands (credentials never shown), "< " the
 * relay's replies. *ret: the outcome with the relay's last reply. -ENOMEM only. */
typedef void (*smtp_say_fn)(void *userdata, const char *line);
int smtp_test(const smtp_config_t *cfg, const char *password, const char *to, const char *message,
              smtp_say_fn say, void *userdata, smtp_result_t *ret);
