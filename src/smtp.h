/* smtp.h - hand a message to the relay over libcurl; knows nothing of registrations. */
#pragma once
#include <stddef.h>

#include "config.h"

typedef enum {
        SMTP_SENT,
        SMTP_TEMPORARY,   /* 4xx, dropped connection, timeout: try again later */
        SMTP_PERMANENT,   /* 5xx to this recipient or message: do not try again */
        SMTP_UNREACHABLE, /* the relay itself is down or refuses us: the batch waits */
} smtp_outcome_t;

typedef struct {
        smtp_outcome_t outcome;
        long code;        /* the server's reply code, 0 if none */
        char reply[512];  /* the server's reply text, or libcurl's reason */
} smtp_result_t;

typedef struct smtp smtp_t;

/* password may be NULL (no AUTH). The handle keeps its connection across messages. */
int smtp_new(const smtp_config_t *cfg, const char *password, smtp_t **ret);
smtp_t *smtp_free(smtp_t *s);

/* One message to one recipient. from and rcpt are bare, validated addresses. */
void smtp_send(smtp_t *s, const char *from, const char *rcpt, const char *data, size_t size,
               smtp_result_t *ret);

/* The password from smtp.password_file (refused if group/world readable) or from
 * $CREDENTIALS_DIRECTORY/smtp-password. *ret is NULL when none is configured. */
int smtp_load_password(const smtp_config_t *cfg, char **ret, char **ret_err);
