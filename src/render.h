/* render.h - an email as it goes on the wire: template + values + (ics | csv). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "db.h"
#include "kind.h"

typedef struct templates templates_t;

/* Load DIR/<kind>.txt (required) and DIR/<kind>.html (optional) for every kind, then render
 * each once with sample values so an unknown placeholder is found now, not in an inbox.
 * *ret_err names the file and the problem. */
int templates_load(const char *dir, const config_t *c, templates_t **ret, char **ret_err);
templates_t *templates_free(templates_t *t);

typedef struct {
        kind_t kind;
        const char *occasion;
        int64_t session_id;
        int64_t registration_id; /* 0 for the roster */
        const char *recipient;
        const char *message_id;
} mail_key_t;

/* Render one email for `key` as of `now`. Caller owns *ret. -ENOENT when the session or
 * registration is gone, -EINVAL (with *ret_err) when a template cannot be rendered. */
int render_mail(db_t *db, const config_t *c, const templates_t *t, const mail_key_t *key,
                int64_t now, char **ret, size_t *ret_size, char **ret_err);

/* The stable UID of a session's calendar event. */
char *render_ics_uid(db_t *db, const config_t *c, int64_t session_id);
