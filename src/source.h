/* source.h - the hubs' booking exports (meccd.conf(5), SOURCES): fetched by libcurl's multi
 * interface in the daemon's sd-event loop, conditionally, and applied as an idempotent
 * import in one transaction as each fetch completes, so before the scan that follows. */
#pragma once
#include <stdbool.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "db.h"

typedef struct sources sources_t;

/* cfg and db must outlive it (a reload makes a new one). Nothing is fetched yet. */
sources_t *sources_new(db_t *db, const config_t *cfg, sd_event *e);
/* Abandons fetches in flight: they change nothing. */
sources_t *sources_free(sources_t *s);

/* The daemon: fetch each source now, then every interval after its fetch ends. */
int sources_start(sources_t *s);
/* `meccd --once`: fetch each source once; sources_busy() says when all have ended. */
int sources_fetch_all(sources_t *s);
bool sources_busy(const sources_t *s);

/* The password of a source: password_file (refused if group/world readable), else the
 * credential source-NAME-password; *ret is NULL when there is none. */
int source_load_password(const source_config_t *c, char **ret, char **ret_err);
