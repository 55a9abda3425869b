/* outbox.c - the life of one email in the database: queued -> claimed -> sent | failed |
 * expired. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "journal.h"
#include "outbox.h"
#include "plan.h"
#include "text.h"

/* ---- queueing ------------------------------------------------------------------------ */

static const char SQL_QUEUE[] =
        "INSERT OR IGNORE INTO outbox(session_id, registration_id, kind, occasion, recipient,"
        " created_at, next_attempt_at, message_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)";

static void id_part(const char *s, char *buf, size_t n)
{
        size_t j = 0;

        for (; *s && j + 1 < n; s++)
                buf[j++] = ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                            (*s >= '0' && *s <= '9')) ? *s : '-';
        buf[j] = '\0';
}

int outbox_queue(db_t *db, const config_t *c, int64_t session_id, int64_t registration_id,
                 kind_t kind, const char *occasion, const char *recipient, int64_t now)
{
        sqlite3_stmt *st = db_stmt(db, SQL_QUEUE);
        char mid[512], occ[96];
        int r;

        if (!st)
                return -EIO;
        /* derived from the occasion, so the same email always carries the same id */
        id_part(occasion, occ, sizeof(occ));
        snprintf(mid, sizeof(mid), "<%lld.%lld.%s%s%s.%s%s>", (long long) session_id,
                 (long long) registration_id, kind_to_string(kind), *occ ? "." : "", occ, db_instance(db),
                 config_mail_domain(c));
        sqlite3_bind_int64(st, 1, session_id);
        if (registration_id)
                sqlite3_bind_int64(st, 2, registration_id);
        sqlite3_bind_text(st, 3, kind_to_string(kind), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, occasion, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, recipient, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, now);
        sqlite3_bind_text(st, 7, mid, -1, SQLITE_TRANSIENT);
        r = db_step_done(st);
        if (r < 0)
                return r;
        return sqlite3_changes(db_handle(db)) > 0;
}

int64_t outbox_backoff(unsigned attempts)
{
        int64_t d = OUTBOX_BACKOFF_MIN;

        for (unsigned i = 1; i < attempts && d < OUTBOX_BACKOFF_MAX; i++)
                d *= 2;
        return d > OUTBOX_BACKOFF_MAX ? OUTBOX_BACKOFF_MAX : d;
}

static const char SQL_COUNTS[] =
        "SELECT (SELECT count(*) FROM outbox WHERE status = 'queued'),"
        " (SELECT count(*) FROM outbox WHERE status = 'failed')";

int outbox_counts(db_t *db, long *queued, long *failed)
{
        sqlite3_stmt *st = db_stmt(db, SQL_COUNTS);
        int r;

        if (!st)
                return -EIO;
        r = db_step(st);
        if (r == 1) {
                *queued = sqlite3_column_int64(st, 0);
                *failed = sqlite3_column_int64(st, 1);
        }
        sqlite3_reset(st);
        return r < 0 ? r : 0;
}


/* Whether anyone the `unreachable` email of this occasion lists is still unreachable. */
static bool told_still(db_t *db, const char *occasion)
{
        mail_unreachable_t *v = NULL;
        int64_t from, to;
        size_t n = 0;

        if (!occasion || outbox_unreachable_day(occasion, &from, &to) < 0 ||
            outbox_unreachable_list(db, from, to, &v, &n) < 0)
                return true; /* the build says what is wrong */
        mail_unreachable_free(v, n);
        return n > 0;
}

const char *outbox_stale_occasion(db_t *db, const config_t *c, int64_t session_id, int64_t registration_id,
                                  kind_t kind, const char *occasion, const char *recipient, int64_t now)
{
        const kind_info_t *k = kind_info(kind);
        session_t s = { 0 };
        registration_t g = { 0 };
        const char *r = NULL;

        (void) c; /* the rules are the kind table's: none depends on a setting yet */
        if (!k)
                return "it is of an unknown kind";
        if (db_session_get_plain(db, session_id, &s) <= 0)
                return "the session no longer exists";
        if (registration_id && db_registration_get(db, registration_id, &g) <= 0) {
                r = "the registration no longer exists";
                goto out;
        }
        if (!*recipient || (registration_id && !*g.email))
                r = "the address was erased";
        else if (registration_id && g.status == REG_CANCELLED)
                r = "the registration was cancelled";
        else if (registration_id && g.unreachable_at)
                r = OUTBOX_BOUNCED;
        else if (registration_id && !k->to_session && strcasecmp(recipient, g.email) != 0)
                r = "the address was changed";
        else if (kind == KIND_UNREACHABLE && !told_still(db, occasion))
                r = "every address it lists has been put right";
        else if ((k->drop & DROP_SESSION_CANCELLED) && s.status == SESSION_CANCELLED)
                r = "the session was cancelled";
        else if ((k->drop & DROP_AT_START) && now >= s.starts_at)
                r = "the session has already started";
        else if ((k->drop & DROP_ELEARNING_DONE) && g.elearning_done_at)
                r = "the e-learning is done";
        else if (registration_id && k->needs >= 0 && g.status != k->needs)
                r = k->needs == REG_BOOKED ? "the registration is no longer booked"
                                           : "the registration is no longer on the waiting list";
out:
        session_clear(&s);
        registration_clear(&g);
        return r;
}

const char *outbox_stale(db_t *db, const config_t *c, int64_t session_id, int64_t registration_id,
                         kind_t kind, const char *recipient, int64_t now)
{
        return outbox_stale_occasion(db, c, session_id, registration_id, kind, NULL, recipient, now);
}

/* Candidates for "the next open sessions": more than are shown, since some may be past
 * their cutoff. */
#define NEXT_CANDIDATES (12 * RENDER_NEXT_SESSIONS)

/* The sessions still taking bookings, for the emails that offer another date. */
static int load_next(db_t *db, const config_t *c, const session_t *s, int64_t now,
                     session_t **ret, size_t *ret_n)
{
        session_t *v = NULL;
        size_t n = 0, m = 0;
        int r;

        r = db_sessions_open_after(db, now, s->id, NEXT_CANDIDATES, &v, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                /* the next dates of the same course (SPEC 11), by its settings */
                bool same = (!s->course || !*s->course) ? (!v[i].course || !*v[i].course)
                                                        : v[i].course && strcmp(v[i].course, s->course) == 0;

                if (same && plan_bookable(c, &v[i], now) && m < RENDER_NEXT_SESSIONS)
                        v[m++] = v[i];
                else
                        session_clear(&v[i]);
        }
        *ret = v;
        *ret_n = m;
        return 0;
}

int outbox_build(db_t *db, const config_t *c, const templates_t *t, const mail_key_t *key,
                 int64_t now, char **ret, size_t *ret_size, char **ret_err)
{
        const kind_info_t *info = kind_info(key->kind);
        session_t s = { 0 }, *next = NULL;
        registration_t g = { 0 }, *roster = NULL;
        mail_unreachable_t *unreachable = NULL;
        mail_data_t d = { .session = &s };
        int64_t from, to;
        int r;

        if (!info)
                return -EINVAL;
        r = db_session_get_plain(db, key->session_id, &s);
        if (r <= 0)
                return r < 0 ? r : -ENOENT;
        /* the session's course: its settings and its templates (SPEC 11); the
         * coordinators' list spans every course, and is the programme's */
        if (key->kind != KIND_UNREACHABLE) {
                c = config_settings(c, s.course);
                t = c ? templates_for(t, s.course) : NULL;
        }
        if (!c || !t) {
                if (ret_err && asprintf(ret_err, "the session's course \"%s\" is not configured", s.course) < 0)
                        *ret_err = NULL;
                r = -EINVAL;
                goto out;
        }
        if (render_needs_counts(t, key->kind) && (r = db_session_count(db, &s)) < 0)
                goto out;
        if (key->registration_id) {
                r = db_registration_get(db, key->registration_id, &g);
                if (r <= 0) {
                        r = r < 0 ? r : -ENOENT;
                        goto out;
                }
                d.registration = &g;
        }
        if ((key->kind == KIND_ROSTER || key->kind == KIND_ATTENDANCE_REQUEST) &&
            (r = db_session_booked(db, s.id, &roster, &d.n_roster)) < 0)
                goto out;
        if (info->next_sessions && (r = load_next(db, c, &s, now, &next, &d.n_next)) < 0)
                goto out;
        if (key->kind == KIND_UNREACHABLE &&
            ((r = outbox_unreachable_day(key->occasion, &from, &to)) < 0 ||
             (r = outbox_unreachable_list(db, from, to, &unreachable, &d.n_unreachable)) < 0))
                goto out;
        d.unreachable = unreachable;
        d.roster = roster;
        d.next = next;
        d.instance = db_instance(db);
        r = render_mail(c, t, key, &d, now, ret, ret_size, ret_err);
out:
        mail_unreachable_free(unreachable, d.n_unreachable);
        registrations_free(roster, d.n_roster);
        sessions_free(next, d.n_next);
        registration_clear(&g);
        session_clear(&s);
        return r;
}

/* ---- claiming and recording ---------------------------------------------------------- */

outbox_row_t *outbox_row_free(outbox_row_t *w)
{
        if (!w)
                return NULL;
        free(w->recipient);
        free(w->message_id);
        free(w->body);
        free(w);
        return NULL;
}

void outbox_outcome_clear(outbox_outcome_t *o)
{
        free(o->error);
        o->error = NULL;
}

/* One statement for every outcome: ?2 status, ?3 1 when it was an attempt, ?4 sent_at,
 * ?5 next_attempt_at (NULL: unchanged), ?6 the error. */
#define SQL_OUTCOME \
        "UPDATE outbox SET status = ?2, sending = 0, attempts = attempts + ?3," \
        " sent_at = ?4, next_attempt_at = ifnull(?5, next_attempt_at), last_error = ?6 WHERE id = ?1"
static const char SQL_RECORD[] = SQL_OUTCOME;
static const char SQL_RELEASE[] = "UPDATE outbox SET sending = 0 WHERE id = ?1";
/* "AND sending = 0" in both: a row is claimed once, by one process. */
static const char SQL_CLAIM[] =
        "UPDATE outbox SET sending = 1, first_attempt_at = ifnull(first_attempt_at, ?2)"
        " WHERE sending = 0 AND id IN (SELECT id FROM outbox WHERE status = 'queued' AND sending = 0"
        "   AND next_attempt_at <= ?2 ORDER BY next_attempt_at, id LIMIT ?3)"
        " RETURNING id, session_id, ifnull(registration_id, 0), kind, occasion, recipient,"
        "   message_id, attempts, first_attempt_at, next_attempt_at";

/* An outcome through sql: SQL_OUTCOME, perhaps with a further condition. */
static int step_outcome(db_t *db, const char *sql, const outbox_outcome_t *o)
{
        sqlite3_stmt *st = db_stmt(db, sql);

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, o->id);
        sqlite3_bind_text(st, 2, mail_status_to_string(o->status), -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, o->attempted);
        db_bind_time(st, 4, o->status == MAIL_SENT ? o->at : 0);
        db_bind_time(st, 5, o->status == MAIL_QUEUED ? o->at : 0);
        db_bind_text(st, 6, o->error);
        return db_step_done(st);
}

static int record_one(db_t *db, const outbox_outcome_t *o)
{
        return step_outcome(db, SQL_RECORD, o);
}

void outbox_log(int prio, const char *mid, const outbox_row_t *w, const char *what, const char *why)
{
        const char *kind = kind_to_string(w->kind);
        log_ctx_t ctx = { .message_id = mid, .session = w->session_id,
                          .registration = w->registration_id, .outbox = w->id, .kind = kind };

        /* a relay's reply often quotes the address: the journal names nobody */
        char *told = why ? text_redact_addresses(why) : NULL;

        log_ctx(prio, &ctx, "%s email %lld %s%s%s", kind ? kind : "unknown", (long long) w->id, what,
                why ? ": " : "", why ? (told ? told : "(reply not shown)") : "");
        free(told);
}

/* Record a row that will not go, as why says: failed when its address bounced (not
 * expired: it was still owed, and could not go), else expired. 0 or a negative errno. */
static int settle(db_t *db, const outbox_row_t *w, const char *why, outbox_claim_stats_t *stats)
{
        bool bounced = why == OUTBOX_BOUNCED;
        outbox_outcome_t o = { .id = w->id, .status = bounced ? MAIL_FAILED : MAIL_EXPIRED,
                               .error = (char *) why };
        int r;

        if (bounced)
                stats->failed++;
        else
                stats->expired++;
        outbox_log(bounced ? LOG_NOTICE : LOG_INFO, bounced ? MID_MAIL_FAILED : MID_MAIL_EXPIRED, w,
                   bounced ? "not sent" : "dropped", why);
        r = record_one(db, &o);
        return r < 0 ? r : 0;
}

/* Expire, or render: 1 ready to send, 0 settled here (expired or failed), <0 error. */
static int prepare(db_t *db, const config_t *c, const templates_t *t, int64_t now,
                   outbox_row_t *w, const char *occasion, outbox_claim_stats_t *stats)
{
        const char *why = outbox_stale_occasion(db, c, w->session_id, w->registration_id, w->kind,
                                                occasion, w->recipient, now);
        mail_key_t key = { w->kind, occasion, w->session_id, w->registration_id, w->recipient,
                           w->message_id };
        outbox_outcome_t o = { .id = w->id };
        char *err = NULL;
        int r;

        if (why)
                return settle(db, w, why, stats);
        /* rendered at each attempt: what goes is what is true now */
        r = outbox_build(db, c, t, &key, now, &w->body, &w->body_size, &err);
        if (r >= 0)
                return 1;
        stats->failed++;
        outbox_log(LOG_ERR, MID_MAIL_FAILED, w, "cannot be built", err ? err : "invalid recipient or template");
        o.status = MAIL_FAILED;
        o.error = err ? err : (char *) "cannot be built";
        r = record_one(db, &o);
        free(err);
        return r < 0 ? r : 0;
}

/* The rows SQL_CLAIM returns; the claim is complete before the first row comes back. */
static int claimed_rows(sqlite3_stmt *st, outbox_row_t **ret, char ***ret_occasions, size_t *ret_n)
{
        outbox_row_t *head = NULL, **tail = &head;
        char **occ = NULL;
        size_t n = 0;
        int r;

        while ((r = db_step(st)) == 1) {
                outbox_row_t *w = calloc(1, sizeof(*w));
                char **p = realloc(occ, (n + 1) * sizeof(*occ));

                if (p)
                        occ = p;
                if (!w || !p || !(occ[n] = db_col_text(st, 4))) {
                        free(w);
                        r = -ENOMEM;
                        break;
                }
                w->id = sqlite3_column_int64(st, 0);
                w->session_id = sqlite3_column_int64(st, 1);
                w->registration_id = sqlite3_column_int64(st, 2);
                w->kind = kind_from_string((const char *) sqlite3_column_text(st, 3));
                w->recipient = db_col_text(st, 5);
                w->message_id = db_col_text(st, 6);
                w->attempts = sqlite3_column_int(st, 7);
                w->first_attempt_at = sqlite3_column_int64(st, 8);
                *tail = w;
                tail = &w->next;
                n++;
                if (!w->recipient || !w->message_id) {
                        r = -ENOMEM;
                        break;
                }
        }
        sqlite3_reset(st);
        *ret = head;
        *ret_occasions = occ;
        *ret_n = n;
        return r < 0 ? r : 0;
}

static int claim(db_t *db, const config_t *c, const templates_t *t, int64_t now, size_t max,
                 outbox_row_t **ret, outbox_claim_stats_t *stats)
{
        sqlite3_stmt *st = db_stmt(db, SQL_CLAIM);
        outbox_row_t *rows = NULL, *ready = NULL, **tail = &ready;
        char **occ = NULL;
        size_t n = 0;
        int r;

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 2, now);
        sqlite3_bind_int64(st, 3, (sqlite3_int64) max);
        r = claimed_rows(st, &rows, &occ, &n);
        for (size_t i = 0; rows; i++) {
                outbox_row_t *w = rows;

                rows = w->next;
                w->next = NULL;
                if (r >= 0 && (r = prepare(db, c, t, now, w, occ[i], stats)) > 0) {
                        *tail = w;
                        tail = &w->next;
                } else
                        outbox_row_free(w);
        }
        for (size_t i = 0; i < n; i++)
                free(occ[i]);
        free(occ);
        if (r < 0) {
                while (ready) {
                        outbox_row_t *w = ready;

                        ready = w->next;
                        outbox_row_free(w);
                }
                return r;
        }
        *ret = ready;
        return 0;
}

int outbox_claim(db_t *db, const config_t *c, const templates_t *t, int64_t now, size_t max,
                 const outbox_outcome_t *outcomes, size_t n_outcomes, const int64_t *release,
                 size_t n_release, outbox_row_t **ret, outbox_claim_stats_t *stats)
{
        outbox_row_t *rows = NULL;
        int r;

        r = db_begin(db);
        for (size_t i = 0; r >= 0 && i < n_outcomes; i++) {
                r = record_one(db, &outcomes[i]);
                if (r >= 0 && outcomes[i].unreachable)
                        r = outbox_mark_unreachable(db, outcomes[i].unreachable, outcomes[i].error,
                                                    outcomes[i].at);
        }
        for (size_t i = 0; r >= 0 && i < n_release; i++) {
                sqlite3_stmt *st = db_stmt(db, SQL_RELEASE);

                if (!st)
                        r = -EIO;
                else {
                        sqlite3_bind_int64(st, 1, release[i]);
                        r = db_step_done(st);
                }
        }
        if (r >= 0 && max > 0)
                r = claim(db, c, t, now, max, &rows, stats);
        if (r >= 0)
                r = db_commit(db);
        if (r < 0) {
                db_rollback(db);
                while (rows) {
                        outbox_row_t *w = rows;

                        rows = w->next;
                        outbox_row_free(w);
                }
                return r;
        }
        if (ret)
                *ret = rows;
        return 0;
}

/* ---- outcomes not yet in the database -------------------------------------------------- */

static char *unrecorded_path(db_t *db)
{
        char *p = NULL;

        return asprintf(&p, "%s-unrecorded", db_path(db)) < 0 ? NULL : p;
}

int outbox_unrecorded_open(db_t *db)
{
        char *path = unrecorded_path(db);
        int fd;

        if (!path)
                return -ENOMEM;
        /* as readable as the database: `meccctl backup` reads it */
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0660);
        if (fd < 0)
                fd = -errno;
        free(path);
        return fd;
}

/* Longest relay reply kept in a line; the database keeps it whole once recorded. */
#define UNRECORDED_ERROR_MAX 900

int outbox_unrecorded_append(int fd, const outbox_outcome_t *o)
{
        char line[UNRECORDED_ERROR_MAX + 128];
        int n = snprintf(line, sizeof(line), "+%lld %d %d %lld %lld ", (long long) o->id, (int) o->status,
                         o->attempted, (long long) o->at, (long long) o->unreachable);
        size_t len = (size_t) n;

        /* one line each: a reply's line breaks become spaces */
        for (const char *p = o->error ? o->error : ""; *p && len < sizeof(line) - 1; p++)
                line[len++] = *p == '\n' || *p == '\r' ? ' ' : *p;
        line[len++] = '\n';
        /* one write: a kill leaves the line whole or absent (a torn one is skipped) */
        if (write(fd, line, len) != (ssize_t) len)
                return errno ? -errno : -EIO;
        return 0;
}

int outbox_unrecorded_clear(int fd)
{
        int r = 0;

        /* a backup reading it (outbox_backup()) holds a shared lock: empty it next time */
        if (flock(fd, LOCK_EX | LOCK_NB) < 0)
                return errno == EWOULDBLOCK ? 0 : -errno;
        if (ftruncate(fd, 0) < 0)
                r = -errno;
        (void) flock(fd, LOCK_UN);
        return r;
}

int outbox_unrecorded_close(db_t *db, int fd)
{
        struct stat st;
        int r = 0;

        if (fd < 0)
                return 0;
        if (fstat(fd, &st) == 0 && st.st_size == 0) {
                char *path = unrecorded_path(db);

                if (!path || unlink(path) < 0)
                        r = path ? -errno : -ENOMEM;
                free(path);
        }
        if (close(fd) < 0 && r == 0)
                r = -errno;
        return r;
}

int outbox_save_unrecorded(db_t *db, const outbox_outcome_t *v, size_t n)
{
        int fd = outbox_unrecorded_open(db), r = 0;

        if (fd < 0)
                return fd;
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = outbox_unrecorded_append(fd, &v[i]);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r >= 0)
                r = -errno;
        return r;
}

/* Only rows still in flight: a line whose outcome was recorded before a crash emptied the
 * file changes nothing. */
static const char SQL_REPLAY[] = SQL_OUTCOME " AND sending = 1";

static int replay_one(db_t *db, const outbox_outcome_t *o)
{
        int r = step_outcome(db, SQL_REPLAY, o);

        if (r >= 0 && sqlite3_changes(db_handle(db)) > 0 && o->unreachable)
                r = outbox_mark_unreachable(db, o->unreachable, o->error, o->at);
        return r < 0 ? r : 0;
}

/* One line of the file: "+ID STATUS ATTEMPTED AT UNREACHABLE ERROR", or the older
 * "ID STATUS ATTEMPTED AT ERROR". 0 when torn by a crash while writing (the row goes again). */
static int parse_unrecorded(char *line, outbox_outcome_t *o)
{
        long long id, at, unreachable = 0;
        int status, attempted, off = 0;

        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '+') {
                if (sscanf(line + 1, "%lld %d %d %lld %lld %n", &id, &status, &attempted, &at, &unreachable,
                           &off) < 5 || off == 0)
                        return 0;
                off++;
        } else if (sscanf(line, "%lld %d %d %lld %n", &id, &status, &attempted, &at, &off) < 4 || off == 0)
                return 0;
        if (status < 0 || status >= _MAIL_STATUS_MAX)
                return 0;
        *o = (outbox_outcome_t) { id, status, attempted, at, *(line + off) ? line + off : NULL, unreachable };
        return 1;
}

/* Record the outcomes a file of them holds, in one transaction. */
static int replay_file(db_t *db, FILE *f)
{
        char *line = NULL;
        size_t cap = 0;
        int r;

        r = db_begin(db);
        while (r >= 0 && getline(&line, &cap, f) > 0) {
                outbox_outcome_t o;

                if (parse_unrecorded(line, &o) > 0)
                        r = replay_one(db, &o);
        }
        if (r >= 0)
                r = db_commit(db);
        if (r < 0)
                db_rollback(db);
        free(line);
        return r;
}

/* Record the outcomes the file holds, then remove it. */
static int replay_unrecorded(db_t *db)
{
        char *path = unrecorded_path(db);
        FILE *f;
        int r;

        if (!path)
                return -ENOMEM;
        f = fopen(path, "re");
        if (!f) {
                r = errno == ENOENT ? 0 : -errno;
                goto out;
        }
        r = replay_file(db, f);
        if (r >= 0 && unlink(path) < 0)
                r = -errno;
        fclose(f);
out:
        free(path);
        return r;
}

static int amend_backup(db_t *copy, void *userdata)
{
        return replay_file(copy, userdata);
}

int outbox_backup(db_t *db, const char *path, bool force, char **ret_err)
{
        char *held = unrecorded_path(db);
        FILE *f = NULL;
        int fd, r;

        if (!held)
                return -ENOMEM;
        /* held from before the copy until it is amended, so that the sender cannot empty
         * it of outcomes the copy does not have yet; without the daemon there is none */
        fd = open(held, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0 && (flock(fd, LOCK_SH) < 0 || !(f = fdopen(fd, "r"))))
                close(fd);
        r = db_backup(db, path, force, f ? amend_backup : NULL, f, ret_err);
        if (f)
                fclose(f);
        free(held);
        return r;
}

/* Rows are marked as sending only while queued (one expired mid-attempt has nothing
 * left to retry): saying so lets the outbox_due index find them instead of reading the
 * whole outbox history at every start. */
static const char SQL_RECOVER[] =
        "UPDATE outbox SET sending = 0, next_attempt_at = min(next_attempt_at, ?1)"
        " WHERE status = 'queued' AND sending = 1";

int outbox_recover(db_t *db, int64_t now)
{
        sqlite3_stmt *st;
        int r;

        r = replay_unrecorded(db);
        if (r < 0)
                return r;
        st = db_stmt(db, SQL_RECOVER);
        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, now);
        r = db_step_done(st);
        return r < 0 ? r : sqlite3_changes(db_handle(db));
}

static const char SQL_ANY_DUE[] =
        "SELECT 1 FROM outbox WHERE status = 'queued' AND sending = 0 AND next_attempt_at <= ?1 LIMIT 1";

int outbox_any_due(db_t *db, int64_t now)
{
        sqlite3_stmt *st = db_stmt(db, SQL_ANY_DUE);
        int r;

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, now);
        r = db_step(st);
        sqlite3_reset(st);
        return r;
}

/* ---- unreachable addresses (meccd(8), BOUNCES) ---------------------------------------------- */

const char OUTBOX_BOUNCED[] = "address bounced";

/* Set once: the first refusal's reason is the one the coordinators are told. */
static const char SQL_UNREACHABLE[] =
        "UPDATE registrations SET unreachable_at = ?2, unreachable_reason = ?3, unreachable_told = 0"
        " WHERE id = ?1 AND unreachable_at IS NULL AND email <> ''";
static const char SQL_FAIL_QUEUED[] =
        "UPDATE outbox SET status = 'failed', last_error = ?2"
        " WHERE registration_id = ?1 AND status = 'queued' AND sending = 0";

int outbox_mark_unreachable(db_t *db, int64_t registration_id, const char *reason, int64_t now)
{
        sqlite3_stmt *st = db_stmt(db, SQL_UNREACHABLE);
        int r, changed;

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, registration_id);
        sqlite3_bind_int64(st, 2, now);
        db_bind_text(st, 3, reason);
        r = db_step_done(st);
        if (r < 0)
                return r;
        changed = sqlite3_changes(db_handle(db)) > 0;
        if (!(st = db_stmt(db, SQL_FAIL_QUEUED)))
                return -EIO;
        sqlite3_bind_int64(st, 1, registration_id);
        sqlite3_bind_text(st, 2, OUTBOX_BOUNCED, -1, SQLITE_STATIC);
        r = db_step_done(st);
        return r < 0 ? r : changed;
}

int outbox_unreachable_day(const char *occasion, int64_t *from, int64_t *to)
{
        static const duration_t day = { .days = 1 };
        char date[11];
        int r;

        if (!occasion || strlen(occasion) < 10)
                return -EINVAL;
        memcpy(date, occasion, 10);
        date[10] = '\0';
        r = clock_parse_time(date, from);
        if (r < 0)
                return r;
        *to = clock_shift(*from, &day, 1);
        return 0;
}

/* Erased or cancelled since: no longer anyone to tell of. */
static const char SQL_UNREACHABLE_LIST[] =
        "SELECT r.id, r.name, r.email, r.unreachable_reason, s.title, s.starts_at, s.ends_at"
        " FROM registrations r JOIN sessions s ON s.id = r.session_id"
        " WHERE r.unreachable_at IS NOT NULL AND r.unreachable_told >= ?1 AND r.unreachable_told < ?2"
        " AND r.email <> '' AND r.status <> 'cancelled' ORDER BY s.starts_at, s.id, r.id";

static int unreachable_row(sqlite3_stmt *st, void *elem)
{
        mail_unreachable_t *u = elem;

        *u = (mail_unreachable_t) {
                .registration_id = sqlite3_column_int64(st, 0),
                .name = db_col_text(st, 1), .email = db_col_text(st, 2),
                .reason = db_col_text(st, 3), .title = db_col_text(st, 4),
                .starts_at = sqlite3_column_int64(st, 5), .ends_at = sqlite3_column_int64(st, 6),
        };
        return u->name && u->email && u->title ? 0 : -ENOMEM;
}

int outbox_unreachable_list(db_t *db, int64_t from, int64_t to, mail_unreachable_t **ret, size_t *ret_n)
{
        sqlite3_stmt *st = db_stmt(db, SQL_UNREACHABLE_LIST);
        void *v = NULL;
        size_t n = 0;
        int r;

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, from);
        sqlite3_bind_int64(st, 2, to);
        r = db_collect(st, sizeof(mail_unreachable_t), unreachable_row, &v, &n);
        if (r < 0) {
                mail_unreachable_free(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}
