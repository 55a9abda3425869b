/* db.c - schema, migrations and the statement cache. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db.h"

#define N_STMTS 96
#define BUSY_TIMEOUT_MS 5000

struct db {
        sqlite3 *h;
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
        /* The promise of SPEC 5: one email per registration (or session) per occasion. */
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

static int ensure_instance(db_t *db)
{
        char *v = db_meta_get(db, "instance");
        unsigned char raw[8];
        char hex[17];

        if (v) {
                free(v);
                return 0;
        }
        if (getrandom(raw, sizeof(raw), 0) != sizeof(raw))
                return -EIO;
        for (size_t i = 0; i < sizeof(raw); i++)
                snprintf(hex + 2 * i, 3, "%02x", raw[i]);
        return db_meta_set(db, "instance", hex);
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

        if (!db)
                return -ENOMEM;
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
        r = exec(db, mode && strcasecmp(mode, "FULL") == 0
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
        free(db);
        return NULL;
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
        " elearning_url, trainer_email, status, seq, change_note FROM sessions WHERE id = ?";
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
                s.status = db_col_text(st, 9);
                s.seq = sqlite3_column_int(st, 10);
                s.change_note = db_col_text(st, 11);
                s.booked = s.waitlisted = -1;
                if (!s.title || !s.status) {
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
        free(s->status);
        free(s->change_note);
        memset(s, 0, sizeof(*s));
}

static const char SQL_REG_GET[] =
        "SELECT id, session_id, name, email, status, token, registered_at,"
        " ifnull(elearning_done_at, 0), ifnull(booked_at, 0) FROM registrations WHERE id = ?";

int db_registration_get(db_t *db, int64_t id, registration_t *ret)
{
        sqlite3_stmt *st = db_stmt(db, SQL_REG_GET);
        registration_t g = { 0 };
        int r;

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, id);
        r = db_step(st);
        if (r == 1) {
                g.id = sqlite3_column_int64(st, 0);
                g.session_id = sqlite3_column_int64(st, 1);
                g.name = db_col_text(st, 2);
                g.email = db_col_text(st, 3);
                g.status = db_col_text(st, 4);
                g.token = db_col_text(st, 5);
                g.registered_at = sqlite3_column_int64(st, 6);
                g.elearning_done_at = sqlite3_column_int64(st, 7);
                g.booked_at = sqlite3_column_int64(st, 8);
                if (!g.name || !g.email || !g.status) {
                        registration_clear(&g);
                        r = -ENOMEM;
                } else
                        *ret = g;
        }
        sqlite3_reset(st);
        return r;
}

void registration_clear(registration_t *r)
{
        free(r->name);
        free(r->email);
        free(r->status);
        free(r->token);
        memset(r, 0, sizeof(*r));
}
