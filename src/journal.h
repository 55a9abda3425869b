/* journal.h - structured logging: the systemd journal when its socket exists, stderr
 * otherwise (a terminal, the demo, tests). Names and addresses are never logged. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

/* One MESSAGE_ID per event type; each has an entry in systemd/meccd.catalog.in. */
#define MID_STARTED          "1a599a6dfd304984bc71bed2ce18e25c"
#define MID_STOPPING         "2dcc4f83933042e79d4afcdb86afa7e5"
#define MID_RELOADED         "726b9fb4886a457287aca0a6310cc885"
#define MID_RELOAD_FAILED    "c12299e5dcc240f3abe7a594af1583bf"
#define MID_CONFIG_INVALID   "71b0ef0829bf449aa92fd04ccf1f12b5"
#define MID_REG_ADMITTED     "e26bbe145de647c9a5ac01bd514c67d4"
#define MID_REG_INVALID      "ae8ea8f2c0d5425698f2ed04e0bbcf7e"
#define MID_REG_LATE         "2546775aa0094fd0b1a3518e7994ee34"
#define MID_SESSION_CLOSED   "7617123095c54f15844c2aaac781d9b0"
#define MID_MAIL_SENT        "bab418fdb2ff4dbeb5bec77cab36becc"
#define MID_MAIL_DEFERRED    "2e53192708c24966bf4cc4c09ac9d2fc"
#define MID_MAIL_FAILED      "2519d3937afe47d389788b543c1dd719"
#define MID_MAIL_EXPIRED     "b3f051af309c43dcb3f2ba65c24951a2"
#define MID_DB_BUSY          "fedad21da8ab4df2acf57139d6402b6c"
#define MID_SCAN_FAILED      "ae099b39743247fe8d502d76f8ef91fe"
#define MID_SESSION_DONE     "212d4f7888994843814cacbe6f2fd9d0"
#define MID_DATA_ERASED      "a8c110582ad44e3aa3b9c101f3ab84bf"
#define MID_SESSION_PROBLEM  "a448b4efbdad44adbb422d77bc82d5d4"
#define MID_UNREACHABLE_TOLD "76502002df5741509b4d1f4e43c31c49"
#define MID_BOUNCED          "5b1e0d3f8a2c4e6b9d7f1a3c5e7b9d20"
#define MID_BOUNCE_FAILED    "c3a9e1f7b5d34b2a8e6c4f0a2d8b6e41"

typedef struct {
        const char *message_id; /* MID_* or NULL */
        int64_t session;        /* 0: none */
        int64_t registration;   /* 0: none */
        int64_t outbox;         /* 0: none */
        const char *kind;       /* email kind or NULL */
} log_ctx_t;

/* Choose the sink once at start: journal if /run/systemd/journal/socket exists and
 * stderr is not a terminal, or when forced with MECCD_LOG=journal|stderr. */
void journal_init(const char *ident);
/* Drop every line (dry runs, whose scans are not events). */
void journal_quiet(bool quiet);

/* priority: LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG (syslog.h) */
void log_ctx(int priority, const log_ctx_t *ctx, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
#define log_msg(prio, ...) log_ctx((prio), NULL, __VA_ARGS__)
