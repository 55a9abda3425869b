/* runas.c - a child process as the service user, answering one question. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db.h"
#include "runas.h"

/* The child's sentence: enough for a path, an owner and the chown that fixes it. */
#define RUNAS_MSG_MAX 4096

const char *runas_default_user(void)
{
        struct passwd *pw;

        if (geteuid() != 0)
                return NULL;
        pw = getpwnam(SERVICE_USER);
        return pw && pw->pw_uid != 0 ? SERVICE_USER : NULL;
}

const char *runas_service_user_of(const char *db_path)
{
        const char *user = runas_default_user();
        struct passwd *pw = user ? getpwnam(user) : NULL;
        const char *slash;
        struct stat st;
        char *dir;
        int r;

        if (!pw || !db_path)
                return NULL;
        slash = strrchr(db_path, '/');
        if (asprintf(&dir, "%.*s", slash ? (int) (slash - db_path) + (slash == db_path) : 1,
                     slash ? db_path : ".") < 0)
                return NULL;
        r = stat(dir, &st);
        free(dir);
        return r == 0 && (st.st_uid == pw->pw_uid || st.st_gid == pw->pw_gid) ? user : NULL;
}

static void child(const struct passwd *pw, int fd, int (*fn)(void *, char **), void *userdata)
{
        char *err = NULL;
        int r;

        if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
                dprintf(fd, "cannot take the identity of %s: %s", pw->pw_name, strerror(errno));
                _exit(2);
        }
        r = fn(userdata, &err);
        if (r && err)
                (void) write(fd, err, strnlen(err, RUNAS_MSG_MAX - 1));
        _exit(r ? 1 : 0);
}

int runas_call(const char *user, int (*fn)(void *userdata, char **err), void *userdata, char **ret_err)
{
        struct passwd *pw = getpwnam(user);
        char msg[RUNAS_MSG_MAX];
        size_t n = 0;
        ssize_t k;
        int p[2], status;
        pid_t pid;

        if (!pw)
                return -ENOENT;
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        fflush(NULL); /* the child must not write out our buffers again */
        pid = fork();
        if (pid < 0) {
                close(p[0]);
                close(p[1]);
                return -errno;
        }
        if (pid == 0) {
                close(p[0]);
                child(pw, p[1], fn, userdata);
        }
        close(p[1]);
        while (n < sizeof(msg) - 1 && ((k = read(p[0], msg + n, sizeof(msg) - 1 - n)) > 0 ||
                                       (k < 0 && errno == EINTR)))
                n += k > 0 ? (size_t) k : 0;
        msg[n] = '\0';
        close(p[0]);
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (!WIFEXITED(status) || WEXITSTATUS(status) == 2) {
                if (ret_err)
                        *ret_err = strdup(n ? msg : "the check as the service user died");
                return -EPERM;
        }
        if (WEXITSTATUS(status) == 0)
                return 0;
        if (ret_err)
                *ret_err = strdup(msg);
        return 1;
}

static int check_writable(void *userdata, char **err)
{
        return db_check_writable(userdata, err) < 0 ? 1 : 0;
}

int runas_check_writable(const char *user, const char *path, char **ret_err)
{
        return runas_call(user, check_writable, (void *) path, ret_err);
}

int runas_give(const char *user, const char *path, char **ret_err)
{
        static const char *const suffixes[] = { "", "-wal", "-shm" };
        struct passwd *pw = getpwnam(user);
        char file[4096];

        if (!pw)
                return -ENOENT;
        for (size_t i = 0; i < 3; i++) {
                snprintf(file, sizeof(file), "%s%s", path, suffixes[i]);
                if (chown(file, pw->pw_uid, pw->pw_gid) < 0 && errno != ENOENT) {
                        int r = -errno;

                        if (ret_err && asprintf(ret_err, "database %s was created, but cannot be given to "
                                                "the service user %s: %s; as root: chown %s: %s*",
                                                path, user, strerror(-r), user, path) < 0)
                                *ret_err = NULL;
                        return r;
                }
        }
        return 0;
}
