/* runas.h - look at files as the service user would, from a process running as root: a
 * child takes the user's uid, gid and groups, looks, and says what it found. So root's
 * `meccd --check-config` and `meccctl status` see what the service will see. */
#pragma once
#include <stdbool.h>

/* The user the shipped unit runs meccd as (User= in meccd.service). */
#define SERVICE_USER "meccd"

/* SERVICE_USER when this process runs as root and that user exists, else NULL: only root
 * can look as another user, and another user's meccd is its own business. */
const char *runas_default_user(void);

/* runas_default_user() when the directory of the database at path belongs to that user
 * (owner or group), as the shipped StateDirectory= does: a test's or a private database
 * elsewhere is no business of the service's. NULL otherwise. */
const char *runas_service_user_of(const char *db_path);

/* fn runs in a child as user (initgroups, setgid, setuid); it returns 0 when all is well,
 * or 1 with a sentence in *err (malloc'd) saying what is wrong. Returns fn's answer (with
 * *ret_err), or a negative errno when it could not look: -ENOENT for an unknown user. */
int runas_call(const char *user, int (*fn)(void *userdata, char **err), void *userdata, char **ret_err);

/* Whether user can write the database at path (db_check_writable(), as that user). */
int runas_check_writable(const char *user, const char *path, char **ret_err);

/* The database at path (and its -wal and -shm, if there) to user and its group, as
 * `install -o` would: what root creates for the service, the service can write. */
int runas_give(const char *user, const char *path, char **ret_err);
