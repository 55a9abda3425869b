/* db.c - schema, migrations and the statement cache. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "db.h"

#define N_STMTS 96
#define BUSY_TIMEOUT_MS 5000

struct db {
        sqlite3 *h;
        char *path;
        char *instance;
        int sender_fd;      /* the sender's lock, or -1 */
        bool sync_full;     /* synchronous=FULL: commits survive a power cut */
        struct {
                const char *sql;
                sqlite3_stmt *st;
        } cache[N_STMTS];
};

/* Each entry migrates from user_version i to i + 1, in one transaction. */
static const char *const migrations[] = {
        "CREATE TABLE sessions("
        "  id INTEGER PRIMARY KEY,"
        "  title TEXT NOT NULL,"
        "  starts_at INTEGER NOT NULL,"
        "  ends_at INTEGER NOT NULL,"
        "  capacity INTEGER NOT NULL CHECK (capacity >= 0),"
        "  join_url TEXT, elearning_url TEXT, trainer_email TEXT,"
        "  closes_at INTEGER,"
        "  status TEXT NOT NULL DEFAULT 'open'"
        "    CHECK (status IN ('open','closed','cancelled','done')),"
        "  seq INTEGER NOT NULL DEFAULT 0,"
        "  change_note TEXT,"
        "  changed_outbox INTEGER NOT NULL DEFAULT 0,"
        "  change_notified INTEGER NOT NULL DEFAULT 0,"
        "  cancel_notified INTEGER NOT NULL DEFAULT 0,"
        "  followed_up INTEGER NOT NULL DEFAULT 0,"
        "  reminded_at INTEGER NOT NULL DEFAULT 0,"
        "  erased_at INTEGER);"
        "CREATE INDEX sessions_status_start ON sessions(status, starts_at);"
        "CREATE INDEX sessions_status_end ON sessions(status, ends_at);"
        "CREATE INDEX sessions_status_closes ON sessions(status, closes_at);"
        "CREATE TABLE registrations("
        "  id INTEGER PRIMARY KEY,"
        "  session_id INTEGER NOT NULL REFERENCES sessions(id),"
        "  name TEXT NOT NULL, email TEXT NOT NULL,"
        "  registered_at INTEGER NOT NULL,"
        "  status TEXT NOT NULL DEFAULT 'new'"
        "    CHECK (status IN ('new','booked','waitlisted','late','cancelled','invalid')),"
        "  elearning_done_at INTEGER,"
        "  token TEXT UNIQUE,"
        "  booked_at INTEGER,"
        "  reason TEXT);"
        "CREATE INDEX registrations_new ON registrations(status, registered_at);"
        "CREATE INDEX registrations_session ON registrations(session_id, status, registered_at);"
        "CREATE INDEX registrations_email ON registrations(email COLLATE NOCASE);"
        "CREATE TABLE outbox("
        "  id INTEGER PRIMARY KEY,"
        "  session_id INTEGER NOT NULL REFERENCES sessions(id),"
        "  registration_id INTEGER REFERENCES registrations(id),"
        "  kind TEXT NOT NULL,"
        "  occasion TEXT NOT NULL DEFAULT '',"
        "  recipient TEXT NOT NULL,"
        "  status TEXT NOT NULL DEFAULT 'queued'"
        "    CHECK (status IN ('queued','sent','failed','expired')),"
        "  attempts INTEGER NOT NULL DEFAULT 0,"
        "  sending INTEGER NOT NULL DEFAULT 0,"
        "  created_at INTEGER NOT NULL,"
        "  first_attempt_at INTEGER,"
        "  next_attempt_at INTEGER NOT NULL,"
        "  sent_at INTEGER,"
        "  last_error TEXT,"
        "  message_id TEXT NOT NULL,"
        "  body BLOB);"
        /* The promise of meccd(8), WHAT A SCAN DOES: one email per registration (or
         * session) per occasion. */
        "CREATE UNIQUE INDEX outbox_occasion"
        "  ON outbox(session_id, ifnull(registration_id, 0), kind, occasion);"
        "CREATE INDEX outbox_due ON outbox(status, next_attempt_at);"
        "CREATE INDEX outbox_registration ON outbox(registration_id);"
        "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;"
        "CREATE VIEW session_availability AS"
        "  SELECT id AS session_id, status, capacity, booked, waitlisted,"
        "         max(capacity - booked, 0) AS seats_left,"
        "         (booked >= capacity) AS full"
        "  FROM (SELECT s.id, s.status, s.capacity,"
        "          (SELECT count(*) FROM registrations r"
        "            WHERE r.session_id = s.id AND r.status = 'booked') AS booked,"
        "          (SELECT count(*) FROM registrations r"
        "            WHERE r.session_id = s.id AND r.status = 'waitlisted') AS waitlisted"
        "        FROM sessions s);",
        /* Every scan asks which sessions are still to follow up and to forget: with
         * these, the answer does not read years of finished sessions. */
        "CREATE INDEX sessions_follow_up ON sessions(status, followed_up, ends_at);"
        "CREATE INDEX sessions_forget ON sessions(status, erased_at, ends_at);",
        /* What registrants were last told of a session's time and link, so a change is
         * seen whoever made it (the website may update sessions too); and what is wrong
         * with a session the website wrote, which holds it back until put right. */
        "ALTER TABLE sessions ADD COLUMN told_starts_at INTEGER;"
        "ALTER TABLE sessions ADD COLUMN told_ends_at INTEGER;"
        "ALTER TABLE sessions ADD COLUMN told_join_url TEXT;"
        "ALTER TABLE sessions ADD COLUMN problem TEXT;"
        "UPDATE sessions SET told_starts_at = starts_at, told_ends_at = ends_at, told_join_url = join_url;"
        "CREATE INDEX sessions_problem ON sessions(id) WHERE problem IS NOT NULL;",
        /* The second version of the website's contract (meccd-database(5)): courses, the
         * hub's own ids, the volunteer's organisation. All optional; NULL by default. */
        "ALTER TABLE sessions ADD COLUMN course TEXT;"
        "ALTER TABLE sessions ADD COLUMN ref TEXT;"
        "CREATE UNIQUE INDEX sessions_ref ON sessions(ref);"
        "ALTER TABLE registrations ADD COLUMN organisation TEXT;"
        "ALTER TABLE registrations ADD COLUMN ref TEXT;"
        "CREATE UNIQUE INDEX registrations_ref ON registrations(ref);",
        /* Attendance (meccd-database(5)): who came, from the meeting platform's report or
         * by hand; NULL while nobody has said. attendance_requested: the trainer was asked
         * for it (attendance_request), once. */
        "ALTER TABLE registrations ADD COLUMN attended INTEGER;"
        "ALTER TABLE registrations ADD COLUMN attended_minutes INTEGER;"
        "ALTER TABLE sessions ADD COLUMN attendance_requested INTEGER NOT NULL DEFAULT 0;",
        /* The edges (meccd(8), BOUNCES and THE HUB): a registration whose address the mail
         * system refused for good, with the server's reason, until an admin puts it right
         * (unreachable_told: the coordinators were told); what each hub source last gave;
         * the POP3 messages already looked at. */
        "ALTER TABLE registrations ADD COLUMN unreachable_at INTEGER;"
        "ALTER TABLE registrations ADD COLUMN unreachable_reason TEXT;"
        "ALTER TABLE registrations ADD COLUMN unreachable_told INTEGER NOT NULL DEFAULT 0;"
        "CREATE INDEX registrations_unreachable ON registrations(unreachable_told)"
        "  WHERE unreachable_at IS NOT NULL;"
        "CREATE TABLE sources("
        "  name TEXT PRIMARY KEY,"
        "  etag TEXT, last_modified TEXT,"
        "  last_attempt_at INTEGER, last_good_at INTEGER,"
        "  applied INTEGER NOT NULL DEFAULT 0, skipped INTEGER NOT NULL DEFAULT 0,"
        "  last_error TEXT) WITHOUT ROWID;"
        "CREATE TABLE bounce_seen(uidl TEXT PRIMARY KEY, seen_at INTEGER NOT NULL) WITHOUT ROWID;",
};

int db_errno(int rc)
{
        switch (rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_ROW:
        case SQLITE_DONE: return 0;
        case SQLITE_BUSY:
        case SQLITE_LOCKED: return -EBUSY;
        case SQLITE_NOMEM: return -ENOMEM;
        case SQLITE_READONLY: return -EROFS;
        case SQLITE_CONSTRAINT: return -EEXIST;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
        case SQLITE_IOERR:
        case SQLITE_CANTOPEN:
        case SQLITE_FULL: return -EIO;
        default: return -EINVAL;
        }
}

static int exec(db_t *db, const char *sql)
{
        return db_errno(sqlite3_exec(db->h, sql, NULL, NULL, NULL));
}

int db_begin(db_t *db)
{
        return exec(db, "BEGIN IMMEDIATE");
}

int db_commit(db_t *db)
{
        return exec(db, "COMMIT");
}

void db_rollback(db_t *db)
{
        if (!sqlite3_get_autocommit(db->h))
                (void) exec(db, "ROLLBACK");
}

static int migrate(db_t *db)
{
        sqlite3_stmt *st = NULL;
        int version, r;
        size_t n = sizeof(migrations) / sizeof(migrations[0]);

        r = db_begin(db);
        if (r < 0)
                return r;
        r = db_errno(sqlite3_prepare_v2(db->h, "PRAGMA user_version", -1, &st, NULL));
        if (r < 0)
                goto out;
        if (sqlite3_step(st) != SQLITE_ROW) {
                r = db_errno(sqlite3_errcode(db->h));
                r = r < 0 ? r : -EIO;
                goto out;
        }
        version = sqlite3_column_int(st, 0);
        if (version > (int) n) {
                r = -EPROTO; /* written by a newer meccd */
                goto out;
        }
        for (size_t i = version; i < n; i++) {
                char pragma[64];

                r = exec(db, migrations[i]);
                if (r < 0)
                        goto out;
                snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %zu", i + 1);
                r = exec(db, pragma);
                if (r < 0)
                        goto out;
        }
        r = db_commit(db);
out:
        sqlite3_finalize(st);
        if (r < 0)
                db_rollback(db);
        return r;
}

/* The id of this database in Message-IDs and calendar UIDs: made once, kept for ever. */
static int ensure_instance(db_t *db)
{
        unsigned char raw[8];
        char hex[17];
        int r;

        db->instance = db_meta_get(db, "instance");
        if (db->instance)
                return 0;
        if (getrandom(raw, sizeof(raw), 0) != sizeof(raw))
                return -EIO;
        for (size_t i = 0; i < sizeof(raw); i++)
                snprintf(hex + 2 * i, 3, "%02x", raw[i]);
        r = db_meta_set(db, "instance", hex);
        if (r < 0)
                return r;
        db->instance = strdup(hex);
        return db->instance ? 0 : -ENOMEM;
}

/* The database's directory may be shared with a group: the shipped /var/lib/meccd is
 * 2770 meccd:meccd so that the booking website's user, a member, can write
 * registrations. SQLite creates the database with 0644 minus the umask, never group
 * writable, and its -wal and -shm files with the database's mode. So when the directory
 * lets its group write, give the group read and write on the database and on those
 * files too, where we own them (chmod would fail on the others). A private directory
 * keeps a private database. */
static void share_with_group(db_t *db)
{
        static const char *const suffixes[] = { "", "-wal", "-shm" };
        const char *path = sqlite3_db_filename(db->h, "main");
        const char *slash = path ? strrchr(path, '/') : NULL;
        struct stat st;
        char *p;

        if (!slash)
                return; /* in memory, or a temporary database */
        if (asprintf(&p, "%.*s", (int) (slash - path) + (slash == path), path) < 0)
                return;
        if (stat(p, &st) < 0 || !(st.st_mode & S_IWGRP)) {
                free(p);
                return;
        }
        free(p);
        for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
                if (asprintf(&p, "%s%s", path, suffixes[i]) < 0)
                        return;
                if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
                    (st.st_mode & (S_IRGRP | S_IWGRP)) != (S_IRGRP | S_IWGRP))
                        (void) chmod(p, (st.st_mode & 07777) | S_IRGRP | S_IWGRP);
                free(p);
        }
}

int db_open(const char *path, db_t **ret, char **ret_err)
{
        db_t *db = calloc(1, sizeof(*db));
        const char *mode;
        int r, rc;

        if (!db || !(db->path = strdup(path))) {
                free(db);
                return -ENOMEM;
        }
        db->sender_fd = -1;
        rc = sqlite3_open_v2(path, &db->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
        if (rc != SQLITE_OK) {
                r = db_errno(rc) ? db_errno(rc) : -EIO;
                goto fail;
        }
        sqlite3_busy_timeout(db->h, BUSY_TIMEOUT_MS);
        sqlite3_extended_result_codes(db->h, 0);
        /* NORMAL is durable across process crashes in WAL mode; see the README. FULL
         * (MECCD_SYNCHRONOUS=FULL) also survives power loss, at the cost measured there. */
        mode = getenv("MECCD_SYNCHRONOUS");
        db->sync_full = mode && strcasecmp(mode, "FULL") == 0;
        r = exec(db, db->sync_full
                     ? "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON"
                     : "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON");
        if (r < 0)
                goto fail;
        r = migrate(db);
        if (r < 0)
                goto fail;
        r = ensure_instance(db);
        if (r < 0)
                goto fail;
        share_with_group(db);
        *ret = db;
        return 0;
fail:
        if (ret_err) {
                const char *why = r == -EPROTO ? "its schema is newer than this meccd"
                                : r == -EBUSY ? "it is locked by another process"
                                : db->h ? sqlite3_errmsg(db->h) : strerror(-r);
                if (asprintf(ret_err, "database %s: %s", path, why) < 0)
                        *ret_err = NULL;
        }
        db_close(db);
        return r == -EPROTO || r == -EINVAL ? -EIO : r;
}

int db_open_copy(db_t *src, db_t **ret)
{
        db_t *db = calloc(1, sizeof(*db));
        sqlite3_backup *b;
        int r;

        if (!db)
                return -ENOMEM;
        db->sender_fd = -1;
        r = db_errno(sqlite3_open(":memory:", &db->h));
        if (r < 0)
                goto fail;
        b = sqlite3_backup_init(db->h, "main", src->h, "main");
        if (!b) {
                r = db_errno(sqlite3_errcode(db->h));
                r = r < 0 ? r : -EIO;
                goto fail;
        }
        (void) sqlite3_backup_step(b, -1);
        r = db_errno(sqlite3_backup_finish(b));
        if (r < 0)
                goto fail;
        db->instance = db_meta_get(db, "instance");
        *ret = db;
        return 0;
fail:
        db_close(db);
        return r;
}

db_t *db_close(db_t *db)
{
        if (!db)
                return NULL;
        for (size_t i = 0; i < N_STMTS; i++)
                sqlite3_finalize(db->cache[i].st);
        sqlite3_close(db->h);
        if (db->sender_fd >= 0)
                close(db->sender_fd);
        free(db->path);
        free(db->instance);
        free(db);
        return NULL;
}

/* "root:root" for a file, "uid 0" when the names cannot be had. */
static void owner_of(const struct stat *st, char *buf, size_t n)
{
        struct passwd *pw = getpwuid(st->st_uid);
        struct group *gr = getgrgid(st->st_gid);

        if (pw && gr)
                snprintf(buf, n, "%s:%s", pw->pw_name, gr->gr_name);
        else
                snprintf(buf, n, "uid %u, gid %u", (unsigned) st->st_uid, (unsigned) st->st_gid);
}

int db_check_writable(const char *path, char **ret_err)
{
        static const char *const suffixes[] = { "", "-wal", "-shm" };
        struct passwd *me = getpwuid(geteuid());
        char who[64], *dir = strdup(path), *slash, file[4096], owner[128];
        struct stat st;
        int r = 0;

        if (!dir)
                return -ENOMEM;
        /* copied: the lookups of the owners below reuse getpwuid()'s buffer */
        snprintf(who, sizeof(who), "%s", me ? me->pw_name : "this user");
        slash = strrchr(dir, '/');
        if (slash)
                *(slash == dir ? slash + 1 : slash) = '\0';
        else
                strcpy(dir, ".");
        /* SQLite makes the -wal and -shm files beside the database */
        if (stat(dir, &st) == 0 && access(dir, W_OK | X_OK) < 0) {
                owner_of(&st, owner, sizeof(owner));
                if (asprintf(ret_err, "the directory %s of the database is owned by %s (mode %04o) and %s "
                             "cannot write in it; as root: chown %s %s", dir, owner,
                             (unsigned) st.st_mode & 07777, who, who, dir) < 0)
                        *ret_err = NULL;
                r = -EACCES;
                goto out;
        }
        for (size_t i = 0; i < 3; i++) {
                snprintf(file, sizeof(file), "%s%s", path, suffixes[i]);
                if (stat(file, &st) < 0 || access(file, R_OK | W_OK) == 0)
                        continue;
                owner_of(&st, owner, sizeof(owner));
                if (asprintf(ret_err, "the database file %s is owned by %s (mode %04o) and %s cannot write "
                             "it (was it created or restored by root?); as root: chown %s: %s %s-wal %s-shm",
                             file, owner, (unsigned) st.st_mode & 07777, who, who, path, path, path) < 0)
                        *ret_err = NULL;
                r = -EACCES;
                goto out;
        }
out:
        free(dir);
        return r;
}

int db_lock_sender(db_t *db)
{
        int fd;

        if (db->sender_fd >= 0)
                return 0;
        /* flock, not fcntl: SQLite's own locks on the file are fcntl locks, and the two
         * kinds do not meet on a local file system */
        fd = open(db->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                int r = errno == EWOULDBLOCK ? -EBUSY : -errno;

                close(fd);
                return r;
        }
        db->sender_fd = fd;
        return 0;
}

void db_set_busy_timeout(db_t *db, int ms)
{
        sqlite3_busy_timeout(db->h, ms);
}

const char *db_path(const db_t *db)
{
        return db->path;
}

bool db_sync_full(const db_t *db)
{
        return db->sync_full;
}

const char *db_instance(const db_t *db)
{
        return db->instance ? db->instance : "0";
}

sqlite3 *db_handle(db_t *db)
{
        return db->h;
}

const char *db_errmsg(db_t *db)
{
        return sqlite3_errmsg(db->h);
}

sqlite3_stmt *db_stmt(db_t *db, const char *sql)
{
        size_t i;

        for (i = 0; i < N_STMTS && db->cache[i].sql; i++)
                if (db->cache[i].sql == sql) {
                        sqlite3_reset(db->cache[i].st);
                        sqlite3_clear_bindings(db->cache[i].st);
                        return db->cache[i].st;
                }
        if (i == N_STMTS)
                abort(); /* a programming error: raise N_STMTS */
        if (sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &db->cache[i].st, NULL) != SQLITE_OK)
                return NULL;
        db->cache[i].sql = sql;
        return db->cache[i].st;
}

int db_step(sqlite3_stmt *st)
{
        int rc = sqlite3_step(st);

        if (rc == SQLITE_ROW)
                return 1;
        if (rc == SQLITE_DONE)
                return 0;
        rc = db_errno(rc);
        return rc < 0 ? rc : -EIO;
}

int db_step_done(sqlite3_stmt *st)
{
        int r = db_step(st);

        sqlite3_reset(st);
        return r < 0 ? r : 0;
}

void db_bind_time(sqlite3_stmt *st, int i, int64_t t)
{
        if (t)
                sqlite3_bind_int64(st, i, t);
        else
                sqlite3_bind_null(st, i);
}

void db_bind_text(sqlite3_stmt *st, int i, const char *s)
{
        if (s && *s)
                sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
        else
                sqlite3_bind_null(st, i);
}

char *db_col_text(sqlite3_stmt *st, int i)
{
        const unsigned char *s = sqlite3_column_text(st, i);

        return s ? strdup((const char *) s) : NULL;
}

static const char SQL_META_SET[] = "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)";
static const char SQL_META_GET[] = "SELECT value FROM meta WHERE key = ?";

int db_meta_set(db_t *db, const char *key, const char *value)
{
        sqlite3_stmt *st = db_stmt(db, SQL_META_SET);

        if (!st)
                return -EIO;
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, value, -1, SQLITE_TRANSIENT);
        return db_step_done(st);
}

/* Run amend on the copy `to` through a db_t of its own (statements prepared for it). */
static int amend_copy(sqlite3 *to, const db_t *src, int (*amend)(db_t *copy, void *userdata), void *userdata)
{
        db_t *copy = calloc(1, sizeof(*copy));
        int r;

        if (!copy)
                return SQLITE_NOMEM;
        copy->h = to;
        copy->sender_fd = -1;
        copy->instance = src->instance ? strdup(src->instance) : NULL;
        r = amend(copy, userdata);
        copy->h = NULL; /* the caller's: not closed here */
        db_close(copy);
        return r < 0 ? SQLITE_IOERR : SQLITE_OK;
}

/* The copy is made in one step of the backup API, inside one read transaction: in WAL
 * mode the daemon and the website go on writing meanwhile, and the copy is the database
 * as it was at the step's start. */
int db_backup(db_t *db, const char *path, bool force, int (*amend)(db_t *copy, void *userdata),
              void *userdata, char **ret_err)
{
        sqlite3 *to = NULL;
        sqlite3_backup *b;
        const char *what = "cannot create it";
        int fd, rc = SQLITE_OK, r;

        if (force && unlink(path) < 0 && errno != ENOENT) {
                r = -errno;
                goto fail_open;
        }
        /* made here with mode 0600 (it holds names and addresses), never over a file */
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
                r = -errno;
                if (r == -EEXIST)
                        what = "it exists already; add --force to replace it";
                goto fail_open;
        }
        (void) fchmod(fd, 0600);
        close(fd);
        rc = sqlite3_open_v2(path, &to, SQLITE_OPEN_READWRITE, NULL);
        if (rc == SQLITE_OK) {
                b = sqlite3_backup_init(to, "main", db->h, "main");
                if (!b)
                        rc = sqlite3_errcode(to);
                else {
                        while ((rc = sqlite3_backup_step(b, -1)) == SQLITE_BUSY || rc == SQLITE_LOCKED)
                                sqlite3_sleep(100);
                        rc = sqlite3_backup_finish(b) == SQLITE_OK && rc == SQLITE_DONE ? SQLITE_OK : rc;
                }
        }
        if (rc == SQLITE_OK && amend)
                rc = amend_copy(to, db, amend, userdata);
        /* one self-contained file: no -wal beside it to copy as well */
        if (rc == SQLITE_OK)
                rc = sqlite3_exec(to, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
                if (asprintf(ret_err, "backup to %s: %s", path,
                             to ? sqlite3_errmsg(to) : sqlite3_errstr(rc)) < 0)
                        *ret_err = NULL;
                sqlite3_close(to);
                (void) unlink(path);
                return db_errno(rc) ? db_errno(rc) : -EIO;
        }
        sqlite3_close(to);
        return 0;
fail_open:
        if (asprintf(ret_err, "backup to %s: %s", path, r == -EEXIST ? what : strerror(-r)) < 0)
                *ret_err = NULL;
        return r;
}

int64_t db_data_version(db_t *db)
{
        sqlite3_stmt *st = db_stmt(db, "PRAGMA data_version");
        int64_t v = -1;

        if (st && db_step(st) == 1)
                v = sqlite3_column_int64(st, 0);
        if (st)
                sqlite3_reset(st);
        return v;
}

char *db_meta_get(db_t *db, const char *key)
{
        sqlite3_stmt *st = db_stmt(db, SQL_META_GET);
        char *v = NULL;

        if (!st)
                return NULL;
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        if (db_step(st) == 1)
                v = db_col_text(st, 0);
        sqlite3_reset(st);
        return v;
}

static const char SQL_SESSION_GET[] =
        "SELECT id, title, starts_at, ends_at, ifnull(closes_at, 0), capacity, join_url,"
        " elearning_url, trainer_email, status, seq, change_note, problem, course, ref"
        " FROM sessions WHERE id = ?";
static const char SQL_SESSION_COUNTS[] =
        "SELECT (SELECT count(*) FROM registrations WHERE session_id = ?1 AND status = 'booked'),"
        " (SELECT count(*) FROM registrations WHERE session_id = ?1 AND status = 'waitlisted')";

int db_session_count(db_t *db, session_t *s)
{
        sqlite3_stmt *st = db_stmt(db, SQL_SESSION_COUNTS);
        int r;

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, s->id);
        r = db_step(st);
        if (r == 1) {
                s->booked = sqlite3_column_int(st, 0);
                s->waitlisted = sqlite3_column_int(st, 1);
        }
        sqlite3_reset(st);
        return r < 0 ? r : 0;
}

int db_session_get_plain(db_t *db, int64_t id, session_t *ret)
{
        sqlite3_stmt *st = db_stmt(db, SQL_SESSION_GET);
        session_t s = { 0 };
        int r;

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, id);
        r = db_step(st);
        if (r == 1) {
                s.id = sqlite3_column_int64(st, 0);
                s.title = db_col_text(st, 1);
                s.starts_at = sqlite3_column_int64(st, 2);
                s.ends_at = sqlite3_column_int64(st, 3);
                s.closes_at = sqlite3_column_int64(st, 4);
                s.capacity = sqlite3_column_int(st, 5);
                s.join_url = db_col_text(st, 6);
                s.elearning_url = db_col_text(st, 7);
                s.trainer_email = db_col_text(st, 8);
                s.status = session_status_from_string((const char *) sqlite3_column_text(st, 9));
                s.seq = sqlite3_column_int(st, 10);
                s.change_note = db_col_text(st, 11);
                s.problem = db_col_text(st, 12);
                s.course = db_col_text(st, 13);
                s.ref = db_col_text(st, 14);
                s.booked = s.waitlisted = -1;
                if (!s.title || s.status < 0) {
                        session_clear(&s);
                        r = -ENOMEM;
                } else
                        *ret = s;
        }
        sqlite3_reset(st);
        return r;
}

int db_session_get(db_t *db, int64_t id, session_t *ret)
{
        int r = db_session_get_plain(db, id, ret);

        if (r == 1 && (r = db_session_count(db, ret)) == 0)
                return 1;
        if (r < 0)
                session_clear(ret);
        return r;
}

void session_clear(session_t *s)
{
        free(s->title);
        free(s->join_url);
        free(s->elearning_url);
        free(s->trainer_email);
        free(s->change_note);
        free(s->problem);
        free(s->course);
        free(s->ref);
        memset(s, 0, sizeof(*s));
}

static const char SQL_REG_GET[] =
        "SELECT id, session_id, name, email, status, token, registered_at,"
        " ifnull(elearning_done_at, 0), ifnull(booked_at, 0), organisation, ref,"
        " ifnull(attended, -1), ifnull(attended_minutes, -1),"
        " ifnull(unreachable_at, 0), unreachable_reason"
        " FROM registrations WHERE id = ?";

/* Fill *ret from the columns of SQL_REG_GET's select list. 0 or -ENOMEM. */
static int registration_from_row(sqlite3_stmt *st, registration_t *ret)
{
        registration_t g = { 0 };

        g.id = sqlite3_column_int64(st, 0);
        g.session_id = sqlite3_column_int64(st, 1);
        g.name = db_col_text(st, 2);
        g.email = db_col_text(st, 3);
        g.status = reg_status_from_string((const char *) sqlite3_column_text(st, 4));
        g.token = db_col_text(st, 5);
        g.registered_at = sqlite3_column_int64(st, 6);
        g.elearning_done_at = sqlite3_column_int64(st, 7);
        g.booked_at = sqlite3_column_int64(st, 8);
        g.organisation = db_col_text(st, 9);
        g.ref = db_col_text(st, 10);
        g.attended = sqlite3_column_int(st, 11);
        g.attended_minutes = sqlite3_column_int64(st, 12);
        g.unreachable_at = sqlite3_column_int64(st, 13);
        g.unreachable_reason = db_col_text(st, 14);
        if (!g.name || !g.email || g.status < 0) {
                registration_clear(&g);
                return -ENOMEM;
        }
        *ret = g;
        return 0;
}

int db_registration_get(db_t *db, int64_t id, registration_t *ret)
{
        sqlite3_stmt *st = db_stmt(db, SQL_REG_GET);
        int r;

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, id);
        r = db_step(st);
        if (r == 1 && registration_from_row(st, ret) < 0)
                r = -ENOMEM;
        sqlite3_reset(st);
        return r;
}

static const char SQL_BOOKED_BY_NAME[] =
        "SELECT id, session_id, name, email, status, token, registered_at,"
        " ifnull(elearning_done_at, 0), ifnull(booked_at, 0), organisation, ref,"
        " ifnull(attended, -1), ifnull(attended_minutes, -1),"
        " ifnull(unreachable_at, 0), unreachable_reason FROM registrations"
        " WHERE session_id = ?1 AND status = ?2 ORDER BY name, id";

int db_collect(sqlite3_stmt *st, size_t size, int (*row)(sqlite3_stmt *st, void *elem),
               void **ret, size_t *ret_n)
{
        void *v = NULL;
        size_t n = 0, cap = 0;
        int r;

        while ((r = db_step(st)) == 1) {
                if (array_grow(&v, &cap, n + 1, size) < 0) {
                        r = -ENOMEM;
                        break;
                }
                memset((char *) v + n * size, 0, size);
                /* counted even when it fails: the caller's destructor frees what it holds */
                r = row(st, (char *) v + n++ * size);
                if (r < 0)
                        break;
        }
        sqlite3_reset(st);
        *ret = v;
        *ret_n = n;
        return r < 0 ? r : 0;
}

static int booked_row(sqlite3_stmt *st, void *elem)
{
        return registration_from_row(st, elem);
}

int db_session_booked(db_t *db, int64_t session_id, registration_t **ret, size_t *ret_n)
{
        sqlite3_stmt *st = db_stmt(db, SQL_BOOKED_BY_NAME);
        void *v = NULL;
        size_t n = 0;
        int r;

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, session_id);
        sqlite3_bind_text(st, 2, reg_status_to_string(REG_BOOKED), -1, SQLITE_STATIC);
        r = db_collect(st, sizeof(registration_t), booked_row, &v, &n);
        if (r < 0) {
                registrations_free(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

registration_t *registrations_free(registration_t *v, size_t n)
{
        for (size_t i = 0; v && i < n; i++)
                registration_clear(&v[i]);
        free(v);
        return NULL;
}

static const char SQL_OPEN_AFTER[] =
        "SELECT id FROM sessions WHERE status = ?3 AND starts_at > ?1 AND id != ?2"
        " ORDER BY starts_at, id LIMIT ?4";

int db_sessions_open_after(db_t *db, int64_t after, int64_t except, size_t max,
                           session_t **ret, size_t *ret_n)
{
        sqlite3_stmt *st = db_stmt(db, SQL_OPEN_AFTER);
        int64_t *ids = NULL;
        session_t *v = NULL;
        size_t n = 0, m = 0;
        int r = 0;

        if (!st)
                return -EIO;
        ids = calloc(max ? max : 1, sizeof(*ids));
        v = calloc(max ? max : 1, sizeof(*v));
        if (!ids || !v) {
                r = -ENOMEM;
                goto out;
        }
        sqlite3_bind_int64(st, 1, after);
        sqlite3_bind_int64(st, 2, except);
        sqlite3_bind_text(st, 3, session_status_to_string(SESSION_OPEN), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, (sqlite3_int64) max);
        while (n < max && (r = db_step(st)) == 1)
                ids[n++] = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        if (r < 0)
                goto out;
        /* read after the walk: db_session_get reuses statements of its own */
        for (size_t i = 0; i < n; i++) {
                r = db_session_get(db, ids[i], &v[m]);
                if (r < 0)
                        goto out;
                m += r;
        }
        r = 0;
        *ret = v;
        *ret_n = m;
        v = NULL;
out:
        sessions_free(v, m);
        free(ids);
        return r;
}

session_t *sessions_free(session_t *v, size_t n)
{
        for (size_t i = 0; v && i < n; i++)
                session_clear(&v[i]);
        free(v);
        return NULL;
}

void registration_clear(registration_t *r)
{
        free(r->name);
        free(r->email);
        free(r->token);
        free(r->organisation);
        free(r->ref);
        free(r->unreachable_reason);
        memset(r, 0, sizeof(*r));
}
