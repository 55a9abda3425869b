/* scan.c - the rules of a scan (meccd(8), WHAT A SCAN DOES): who is booked, who waits,
 * what is due to be emailed. Each step selects sessions or registrations and keeps only
 * its rule; the walking, loading and queueing is done by the helpers below, once. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <syslog.h>

#include "addr.h"
#include "journal.h"
#include "outbox.h"
#include "plan.h"
#include "render.h"
#include "scan.h"
#include "text.h"

#define SLACK (2 * 86400) /* covers a DST shift between calendar days and seconds */

/* What every step works with. */
typedef struct {
        db_t *db;
        const config_t *c;
        int64_t now;
        scan_stats_t *stats;
} scan_t;

/* ---- helpers ------------------------------------------------------------------- */

int scan_new_token(char ret[23])
{
        static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        unsigned char raw[16];

        if (getrandom(raw, sizeof(raw), 0) != sizeof(raw))
                return -EIO;
        for (int i = 0; i < 22; i++) {
                int bit = i * 6, byte = bit / 8, off = bit % 8;
                unsigned v = (unsigned) raw[byte] << 8 | (byte + 1 < 16 ? raw[byte + 1] : 0);

                ret[i] = b64[(v >> (10 - off)) & 0x3f];
        }
        ret[22] = '\0';
        return 0;
}

/* Collect the ids a query returns before changing the rows it walks over. */
static int collect_ids(sqlite3_stmt *st, int64_t **ret, size_t *ret_n)
{
        int64_t *ids = NULL;
        size_t n = 0, cap = 0;
        int r;

        if (!st)
                return -EIO;
        while ((r = db_step(st)) == 1) {
                if (n == cap) {
                        int64_t *p = realloc(ids, (cap = cap ? cap * 2 : 64) * sizeof(*ids));
                        if (!p) {
                                r = -ENOMEM;
                                break;
                        }
                        ids = p;
                }
                ids[n++] = sqlite3_column_int64(st, 0);
        }
        sqlite3_reset(st);
        if (r < 0) {
                free(ids);
                return r;
        }
        *ret = ids;
        *ret_n = n;
        return 0;
}

typedef int (*session_fn)(scan_t *x, const session_t *s);
static int check_session(scan_t *x, const session_t *s);
typedef int (*registration_fn)(scan_t *x, const session_t *s, const registration_t *g, void *userdata);

/* Run fn for each session the bound query st selects. counts: load them with their booked
 * and waitlisted counts (a walk of their registrations; only steps that need it pay). */
static int each_session(scan_t *x, sqlite3_stmt *st, bool counts, session_fn fn)
{
        int64_t *ids = NULL;
        size_t n = 0;
        int r;

        r = collect_ids(st, &ids, &n);
        for (size_t i = 0; i < n && r >= 0; i++) {
                session_t s;

                const config_t *global = x->c, *settings;

                r = counts ? db_session_get(x->db, ids[i], &s) : db_session_get_plain(x->db, ids[i], &s);
                if (r <= 0)
                        continue; /* gone since the query: nothing to do */
                /* every rule reads the settings of the session's course (SPEC 11); a course
                 * the config does not know is the check step's to hold back, and no other
                 * step acts on it with another course's settings */
                settings = config_settings(global, s.course);
                if (settings || fn == check_session) {
                        x->c = settings ? settings : global;
                        r = fn(x, &s);
                        x->c = global;
                }
                session_clear(&s);
        }
        free(ids);
        return r < 0 ? r : 0;
}

/* Run fn for each registration of session s that the bound query st selects. Returns the
 * number of registrations fn was run for, or a negative errno. */
static int each_registration(scan_t *x, sqlite3_stmt *st, const session_t *s, registration_fn fn,
                             void *userdata)
{
        int64_t *ids = NULL;
        size_t n = 0;
        int r, count = 0;

        r = collect_ids(st, &ids, &n);
        for (size_t i = 0; i < n && r >= 0; i++) {
                registration_t g;

                r = db_registration_get(x->db, ids[i], &g);
                if (r <= 0)
                        continue;
                r = fn(x, s, &g, userdata);
                registration_clear(&g);
                count++;
        }
        free(ids);
        return r < 0 ? r : count;
}

/* A prepared statement with ?1 bound to id and, when the statement has it, ?2 to extra. */
static sqlite3_stmt *bound(scan_t *x, const char *sql, int64_t id, int64_t extra)
{
        sqlite3_stmt *st = db_stmt(x->db, sql);

        if (st) {
                sqlite3_bind_int64(st, 1, id);
                if (sqlite3_bind_parameter_count(st) >= 2)
                        sqlite3_bind_int64(st, 2, extra);
        }
        return st;
}

/* Run a statement that changes one session: ?1 its id, ?2 a value. */
static int mark_session(scan_t *x, const char *sql, int64_t id, int64_t value)
{
        sqlite3_stmt *st = bound(x, sql, id, value);

        return st ? db_step_done(st) : -EIO;
}

static int queue(scan_t *x, const session_t *s, const registration_t *g, kind_t kind,
                 const char *occasion)
{
        int r = outbox_queue(x->db, x->c, s->id, g->id, kind, occasion, g->email, x->now);

        if (r > 0)
                x->stats->queued++;
        return r;
}

typedef struct {
        kind_t kind;
        const char *occasion;
} mail_t;

static int queue_one(scan_t *x, const session_t *s, const registration_t *g, void *userdata)
{
        const mail_t *m = userdata;

        return queue(x, s, g, m->kind, m->occasion);
}

/* Queue kind for each registration of s that the query sql selects (?1 = the session's
 * id, ?2 = extra where the query has it). */
static int queue_each(scan_t *x, const char *sql, const session_t *s, int64_t extra, kind_t kind,
                      const char *occasion)
{
        mail_t m = { kind, occasion };

        return each_registration(x, bound(x, sql, s->id, extra), s, queue_one, &m);
}

static const char SQL_SET_REG[] =
        "UPDATE registrations SET status = ?2, reason = ?3,"
        " booked_at = CASE WHEN ?2 = 'booked' THEN ?4 ELSE booked_at END,"
        " token = ifnull(token, ?5) WHERE id = ?1";

static int set_registration(scan_t *x, int64_t id, reg_status_t status, const char *reason)
{
        sqlite3_stmt *st = db_stmt(x->db, SQL_SET_REG);
        bool token = reg_status_is_placed(status);
        char tok[23];
        int r;

        if (!st)
                return -EIO;
        /* a place held or awaited can be cancelled by the website's link */
        if (token && (r = scan_new_token(tok)) < 0)
                return r;
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, reg_status_to_string(status), -1, SQLITE_STATIC);
        db_bind_text(st, 3, reason);
        sqlite3_bind_int64(st, 4, x->now);
        db_bind_text(st, 5, token ? tok : NULL);
        return db_step_done(st);
}

/* A registration changes state and is told so. */
static int move(scan_t *x, const session_t *s, const registration_t *g, reg_status_t to, kind_t kind)
{
        int r = set_registration(x, g->id, to, NULL);

        return r < 0 ? r : queue(x, s, g, kind, "");
}

static void log_reg(int prio, const char *mid, const registration_t *g, kind_t kind,
                    const char *text)
{
        log_ctx_t ctx = { .message_id = mid, .session = g->session_id, .registration = g->id,
                          .kind = kind_to_string(kind) };
        log_ctx(prio, &ctx, "registration %lld for session %lld: %s", (long long) g->id,
                (long long) g->session_id, text);
}

/* ---- 0. check ------------------------------------------------------------------ */

/* Sessions the website may have written or changed since the last scan: new ones, those
 * whose time or link differ from what registrants were told, and those held back. */
static const char SQL_TO_CHECK[] =
        "SELECT id FROM sessions WHERE status IN ('open', 'closed') AND (problem IS NOT NULL"
        " OR told_starts_at IS NULL OR told_starts_at != starts_at OR told_ends_at != ends_at"
        " OR told_join_url IS NOT join_url OR course IS NOT NULL)";
static const char SQL_TOLD[] =
        "SELECT ifnull(told_starts_at, 0), ifnull(told_ends_at, 0), told_join_url, change_notified"
        " FROM sessions WHERE id = ?1";
static const char SQL_SET_TOLD[] =
        "UPDATE sessions SET told_starts_at = starts_at, told_ends_at = ends_at,"
        " told_join_url = join_url WHERE id = ?1";
static const char SQL_SET_PROBLEM[] = "UPDATE sessions SET problem = ?2 WHERE id = ?1";
/* A change nobody recorded (an UPDATE by the website): it is one now. */
static const char SQL_RECORD_CHANGE[] =
        "UPDATE sessions SET seq = seq + 1, change_note = ?2,"
        " changed_outbox = (SELECT ifnull(max(id), 0) FROM outbox) WHERE id = ?1";
/* Added after it started: nothing is sent for it, no roster, no follow-up. */
static const char SQL_PAST[] =
        "UPDATE sessions SET status = 'done', followed_up = 1, cancel_notified = 1,"
        " told_starts_at = starts_at, told_ends_at = ends_at, told_join_url = join_url WHERE id = ?1";

/* What holds a session back, or NULL: what cannot be right is refused, not guessed at. */
static const char *session_problem(const session_t *s)
{
        if (s->ends_at <= s->starts_at)
                return "it ends before it starts";
        return NULL;
}

static int set_problem(scan_t *x, const session_t *s, const char *problem)
{
        log_ctx_t ctx = { .message_id = MID_SESSION_PROBLEM, .session = s->id };
        sqlite3_stmt *st;

        if ((!problem && !s->problem) || (problem && s->problem && !strcmp(problem, s->problem)))
                return 0;
        if (problem)
                log_ctx(LOG_WARNING, &ctx, "session %lld is held back: %s; its registrations wait",
                        (long long) s->id, problem);
        else
                log_ctx(LOG_NOTICE, &ctx, "session %lld is put right and goes on", (long long) s->id);
        st = bound(x, SQL_SET_PROBLEM, s->id, 0);
        if (!st)
                return -EIO;
        db_bind_text(st, 2, problem);
        return db_step_done(st);
}

typedef struct {
        int64_t starts_at, ends_at;
        char *join_url;
        long change_notified;
} told_t;

static int read_told(scan_t *x, int64_t id, told_t *ret)
{
        sqlite3_stmt *st = bound(x, SQL_TOLD, id, 0);
        int r;

        if (!st)
                return -EIO;
        r = db_step(st);
        if (r == 1)
                *ret = (told_t) { sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                                  db_col_text(st, 2), sqlite3_column_int(st, 3) };
        sqlite3_reset(st);
        return r < 0 ? r : 0;
}

static int record_change(scan_t *x, const session_t *s, const told_t *t)
{
        char *note = render_change_note(t->starts_at, t->ends_at, t->join_url, s->starts_at,
                                        s->ends_at, s->join_url);
        sqlite3_stmt *st = bound(x, SQL_RECORD_CHANGE, s->id, 0);
        int r;

        if (!note || !st) {
                free(note);
                return !note ? -ENOMEM : -EIO;
        }
        db_bind_text(st, 2, note);
        r = db_step_done(st);
        free(note);
        return r;
}

static int check_session(scan_t *x, const session_t *s)
{
        log_ctx_t ctx = { .message_id = MID_SESSION_DONE, .session = s->id };
        const char *problem = session_problem(s);
        char unknown[256];
        told_t t = { 0 };
        int r;

        /* the website named a course the config does not have: nothing is sent with
         * another course's links until it is configured and meccd reloaded */
        /* each_session has put the course's settings in x->c, or left the global ones
         * (course NULL) for a course it does not know */
        if (!problem && s->course && *s->course && !x->c->course) {
                snprintf(unknown, sizeof(unknown), "course \"%.200s\" is not configured", s->course);
                problem = unknown;
        }
        r = set_problem(x, s, problem);
        if (r < 0 || problem)
                return r;
        r = read_told(x, s->id, &t);
        if (r < 0)
                return r;
        if (t.starts_at == 0 && x->now >= s->starts_at) {
                log_ctx(LOG_WARNING, &ctx, "session %lld was added after it started: nothing is sent for it",
                        (long long) s->id);
                r = mark_session(x, SQL_PAST, s->id, 0);
        } else {
                bool moved = t.starts_at && (t.starts_at != s->starts_at || t.ends_at != s->ends_at ||
                                             (t.join_url ? !s->join_url || strcmp(t.join_url, s->join_url)
                                                         : s->join_url != NULL));

                /* a change `meccctl session edit` made is recorded already (seq moved on) */
                if (moved && s->seq == t.change_notified)
                        r = record_change(x, s, &t);
                if (r >= 0)
                        r = mark_session(x, SQL_SET_TOLD, s->id, 0);
        }
        free(t.join_url);
        return r;
}

/* ---- 1. admit ------------------------------------------------------------------ */

/* Registrations of a session held back (sessions.problem) wait, unanswered. */
static const char SQL_NEW[] =
        "SELECT id FROM registrations WHERE status = 'new' AND registered_at <= ?1"
        " AND session_id NOT IN (SELECT id FROM sessions WHERE problem IS NOT NULL)"
        " ORDER BY registered_at, id LIMIT ?2";
/* Text sorts above every number in SQLite: this finds "2026-09-01" as well as a time in
 * milliseconds or in 2099. */
static const char SQL_NEW_NOT_A_TIME[] =
        "SELECT id FROM registrations WHERE status = 'new' AND registered_at > ?1";
#define NOT_A_TIME_AHEAD (366 * 86400)
static const char SQL_DUPLICATE[] =
        "SELECT 1 FROM registrations WHERE email = ?2 COLLATE NOCASE AND session_id = ?1"
        " AND status IN ('booked', 'waitlisted') AND id != ?3 LIMIT 1";

/* The sessions admission has met in this step, by id, with their counts kept up to date
 * as it books: counting once per session, not once per registration, keeps admission
 * linear in a session's size. Valid within the step's transaction only. */
typedef struct {
        session_t *v;
        size_t n, cap;
} session_cache_t;

static void cache_clear(session_cache_t *k)
{
        sessions_free(k->v, k->n);
        *k = (session_cache_t) { 0 };
}

/* 1 with *ret pointing into the cache, 0 no such session, negative errno. */
static int cache_get(db_t *db, session_cache_t *k, int64_t id, session_t **ret)
{
        size_t lo = 0, hi = k->n;
        session_t s;
        int r;

        while (lo < hi) {
                size_t mid = (lo + hi) / 2;

                if (k->v[mid].id == id) {
                        *ret = &k->v[mid];
                        return 1;
                }
                if (k->v[mid].id < id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        r = db_session_get(db, id, &s);
        if (r <= 0)
                return r;
        if (k->n == k->cap) {
                session_t *p = realloc(k->v, (k->cap = k->cap ? 2 * k->cap : 16) * sizeof(*p));

                if (!p) {
                        session_clear(&s);
                        return -ENOMEM;
                }
                k->v = p;
        }
        memmove(&k->v[lo + 1], &k->v[lo], (k->n - lo) * sizeof(*k->v));
        k->v[lo] = s;
        k->n++;
        *ret = &k->v[lo];
        return 1;
}

static int is_duplicate(db_t *db, const registration_t *g)
{
        sqlite3_stmt *st = db_stmt(db, SQL_DUPLICATE);
        int r;

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, g->session_id);
        sqlite3_bind_text(st, 2, g->email, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, g->id);
        r = db_step(st);
        sqlite3_reset(st);
        return r;
}

static int refuse(scan_t *x, const registration_t *g, int prio, const char *reason, const char *why)
{
        x->stats->invalid++;
        log_reg(prio, MID_REG_INVALID, g, _KIND_INVALID, why);
        return set_registration(x, g->id, REG_INVALID, reason);
}

static const char SQL_SET_NAME[] = "UPDATE registrations SET name = ?2 WHERE id = ?1";

/* A name pasted from elsewhere may carry a line break or a tab: those become spaces, and
 * the volunteer keeps the booking. 1 when nothing is left of it, 0 when it is good now. */
static int clean_name(scan_t *x, const registration_t *g)
{
        char *clean;
        sqlite3_stmt *st;
        size_t blank;
        int r = 0;

        if (text_is_line(g->name))
                return strspn(g->name, " ") == strlen(g->name);
        clean = text_one_line(g->name);
        if (!clean)
                return -ENOMEM;
        blank = strspn(clean, " ");
        memmove(clean, clean + blank, strlen(clean + blank) + 1);
        for (size_t n = strlen(clean); n > 0 && clean[n - 1] == ' '; n--)
                clean[n - 1] = '\0';
        if (clean[0] == '\0')
                r = 1;
        else if (!(st = bound(x, SQL_SET_NAME, g->id, 0)))
                r = -EIO;
        else {
                sqlite3_bind_text(st, 2, clean, -1, SQLITE_TRANSIENT);
                r = db_step_done(st);
        }
        free(clean);
        return r;
}

static int admit_one(scan_t *x, const session_t *unused, const registration_t *g, void *userdata)
{
        session_cache_t *cache = userdata;
        session_t *s;
        int r;

        (void) unused;
        r = clean_name(x, g);
        if (r != 0)
                return r < 0 ? r : refuse(x, g, LOG_WARNING, "name", "invalid: the name is empty");
        if (!addr_valid(g->email))
                return refuse(x, g, LOG_WARNING, "address", "invalid: not a single valid email address");
        r = cache_get(x->db, cache, g->session_id, &s);
        if (r <= 0)
                return r < 0 ? r : refuse(x, g, LOG_WARNING, "session", "invalid: no such session");
        r = is_duplicate(x->db, g);
        if (r != 0)
                return r < 0 ? r : refuse(x, g, LOG_NOTICE, "duplicate",
                                          "invalid: duplicate of a place already held on this session");
        /* a course configured since the check step ran is checked at the next scan */
        if (!config_settings(x->c, s->course))
                return 0;
        if (!plan_bookable(config_settings(x->c, s->course), s, x->now)) {
                x->stats->late++;
                log_reg(LOG_INFO, MID_REG_LATE, g, KIND_LATE, "late: bookings for this session have closed");
                return move(x, s, g, REG_LATE, KIND_LATE);
        }
        /* with a waiting list, newcomers queue behind it: promote takes the earliest */
        if (s->booked < s->capacity && s->waitlisted == 0) {
                x->stats->booked++;
                s->booked++;
                log_reg(LOG_INFO, MID_REG_ADMITTED, g, KIND_CONFIRMATION, "booked");
                return move(x, s, g, REG_BOOKED, KIND_CONFIRMATION);
        }
        x->stats->waitlisted++;
        s->waitlisted++;
        log_reg(LOG_INFO, MID_REG_ADMITTED, g, KIND_WAITLISTED, "waitlisted: the session is full");
        return move(x, s, g, REG_WAITLISTED, KIND_WAITLISTED);
}

static int not_a_time(scan_t *x, const session_t *unused, const registration_t *g, void *userdata)
{
        (void) unused, (void) userdata;
        return refuse(x, g, LOG_WARNING, "registered_at",
                      "invalid: registered_at is not a time in Unix seconds (text, or more than a year ahead)");
}

static int admit(scan_t *x)
{
        session_cache_t cache = { 0 };
        usec_t start;
        int r;

        r = each_registration(x, bound(x, SQL_NEW_NOT_A_TIME, x->now + NOT_A_TIME_AHEAD, 0), NULL,
                              not_a_time, NULL);
        if (r < 0)
                return r;

        /* a slice at a time: the caller commits it and comes back, so a mass import
         * neither holds the database nor starves the event loop */
        start = clock_monotonic();
        for (unsigned n = 0; n < SCAN_SLICE / SCAN_BATCH; n++) {
                r = each_registration(x, bound(x, SQL_NEW, x->now, SCAN_BATCH), NULL, admit_one, &cache);
                if (r < SCAN_BATCH || clock_monotonic() - start >= SCAN_SLICE_USEC)
                        break;
        }
        cache_clear(&cache);
        return r < 0 ? r : r == SCAN_BATCH;
}

/* ---- 2. promote ---------------------------------------------------------------- */

static const char SQL_WAITING_SESSIONS[] =
        "SELECT DISTINCT session_id FROM registrations WHERE status = 'waitlisted'"
        " AND session_id NOT IN (SELECT id FROM sessions WHERE problem IS NOT NULL)";
static const char SQL_EARLIEST_WAITING[] =
        "SELECT id FROM registrations WHERE session_id = ?1 AND status = 'waitlisted'"
        " ORDER BY registered_at, id LIMIT ?2";

static int promote_one(scan_t *x, const session_t *s, const registration_t *g, void *userdata)
{
        (void) userdata;
        x->stats->promoted++;
        log_reg(LOG_INFO, MID_REG_ADMITTED, g, KIND_PROMOTED, "booked from the waiting list");
        return move(x, s, g, REG_BOOKED, KIND_PROMOTED);
}

static int promote_session(scan_t *x, const session_t *s)
{
        if (!plan_bookable(x->c, s, x->now) || s->booked >= s->capacity)
                return 0;
        return each_registration(x, bound(x, SQL_EARLIEST_WAITING, s->id, s->capacity - s->booked),
                                 s, promote_one, NULL);
}

/* ---- 3. close ------------------------------------------------------------------ */

static const char SQL_CLOSING[] =
        "SELECT id FROM sessions WHERE status = 'open' AND starts_at <= ?1 AND problem IS NULL"
        " UNION SELECT id FROM sessions WHERE status = 'open' AND closes_at <= ?2 AND problem IS NULL";
static const char SQL_SET_SESSION_STATUS[] = "UPDATE sessions SET status = ?2 WHERE id = ?1";
static const char SQL_WAITLISTED_OF[] =
        "SELECT id FROM registrations WHERE session_id = ?1 AND status = 'waitlisted'"
        " ORDER BY registered_at, id";

static int set_session_status(scan_t *x, int64_t id, session_status_t status)
{
        sqlite3_stmt *st = db_stmt(x->db, SQL_SET_SESSION_STATUS);

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, session_status_to_string(status), -1, SQLITE_STATIC);
        return db_step_done(st);
}

static int not_placed_one(scan_t *x, const session_t *s, const registration_t *g, void *userdata)
{
        (void) userdata;
        return move(x, s, g, REG_LATE, KIND_NOT_PLACED);
}

/* The roster goes to the trainer, else to every roster_to address; seq 0 for the first,
 * the change number for the one that follows a change. */
static int queue_roster(scan_t *x, const session_t *s, long seq)
{
        bool trainer = s->trainer_email && *s->trainer_email;
        size_t n = trainer ? 1 : x->c->n_roster_to;
        int r = 0;

        for (size_t i = 0; i < n && r >= 0; i++) {
                const char *to = trainer ? s->trainer_email : x->c->roster_to[i];
                char occ[512];

                snprintf(occ, sizeof(occ), seq ? "%s#%ld" : "%s", to, seq);
                r = outbox_queue(x->db, x->c, s->id, 0, KIND_ROSTER, occ, to, x->now);
                if (r > 0)
                        x->stats->queued++;
        }
        return r;
}

static int close_session(scan_t *x, const session_t *s)
{
        log_ctx_t ctx = { .message_id = MID_SESSION_CLOSED, .session = s->id,
                          .kind = kind_to_string(KIND_ROSTER) };
        int r, not_placed;

        if (x->now < plan_cutoff(x->c, s->starts_at, s->closes_at))
                return 0;
        r = set_session_status(x, s->id, SESSION_CLOSED);
        if (r < 0)
                return r;
        not_placed = r = each_registration(x, bound(x, SQL_WAITLISTED_OF, s->id, 0), s, not_placed_one, NULL);
        if (r >= 0)
                r = queue_roster(x, s, 0);
        if (r < 0)
                return r;
        x->stats->closed++;
        log_ctx(LOG_INFO, &ctx, "session %lld closed for bookings: %ld booked, %d not placed",
                (long long) s->id, s->booked, not_placed);
        return 0;
}

/* ---- 4. remind ----------------------------------------------------------------- */

static const char SQL_STARTING[] =
        "SELECT id FROM sessions WHERE status IN ('open', 'closed')"
        " AND starts_at > ?1 AND starts_at <= ?2 AND problem IS NULL";
static const char SQL_SET_REMINDED[] = "UPDATE sessions SET reminded_at = ?2 WHERE id = ?1";
static const char SQL_NEED_REMINDER[] =
        "SELECT id FROM registrations WHERE session_id = ?1 AND status = 'booked'"
        " AND elearning_done_at IS NULL AND booked_at <= ?2";
static const char SQL_REMINDED_AT[] = "SELECT reminded_at FROM sessions WHERE id = ?1";

/* The query for sessions starting within `horizon` seconds from now. */
static sqlite3_stmt *starting_sessions(scan_t *x, int64_t horizon)
{
        return bound(x, SQL_STARTING, x->now, x->now + horizon + SLACK);
}

static int64_t reminded_at(scan_t *x, int64_t sid)
{
        sqlite3_stmt *st = bound(x, SQL_REMINDED_AT, sid, 0);
        int64_t v = 0;

        if (st && db_step(st) == 1)
                v = sqlite3_column_int64(st, 0);
        if (st)
                sqlite3_reset(st);
        return v;
}

static int remind_session(scan_t *x, const session_t *s)
{
        int i = plan_due_reminder(x->c, s->starts_at, x->now);
        int64_t at;
        char occ[32];
        int r;

        if (i < 0)
                return 0;
        at = plan_reminder_at(x->c, s->starts_at, (size_t) i);
        /* Everyone booked by `at` was queued when the session was last reminded at `at`;
         * anyone booked later has missed this reminder's moment and skips it. */
        if (reminded_at(x, s->id) == at)
                return 0;
        plan_duration_name(&x->c->reminders_elearning[i], occ, sizeof(occ));
        r = queue_each(x, SQL_NEED_REMINDER, s, at, KIND_ELEARNING_REMINDER, occ);
        return r < 0 ? r : mark_session(x, SQL_SET_REMINDED, s->id, at);
}

/* ---- 5. join ------------------------------------------------------------------- */

/* "+r.id" drops the column's integer affinity, which would otherwise keep SQLite from
 * looking the row up in the outbox_occasion expression index (it scanned the session's
 * whole outbox history for each registration instead). ?3 is the kind. */
static const char SQL_NEED_JOIN[] =
        "SELECT r.id FROM registrations r WHERE r.session_id = ?1 AND r.status = 'booked'"
        " AND (?2 = 0 OR r.elearning_done_at IS NOT NULL)"
        " AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.session_id = ?1"
        "   AND ifnull(o.registration_id, 0) = +r.id AND o.kind = ?3 AND o.occasion = '')";

/* With require_elearning, those whose link is held back hear why, once, at its moment. */
static const char SQL_LINK_WAITING[] =
        "SELECT r.id FROM registrations r WHERE r.session_id = ?1 AND r.status = 'booked'"
        " AND r.elearning_done_at IS NULL"
        " AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.session_id = ?1"
        "   AND o.registration_id = r.id AND o.kind = ?3 AND o.occasion = ?4)";
#define LINK_WAITING "link-waiting"

static int join_session(scan_t *x, const session_t *s)
{
        bool gated = x->c->require_elearning;
        sqlite3_stmt *st;
        mail_t link = { KIND_JOINING_LINK, "" }, waiting = { KIND_ELEARNING_REMINDER, LINK_WAITING };
        int r;

        if (x->now < plan_joining_at(x->c, s->starts_at))
                return 0;
        st = bound(x, SQL_NEED_JOIN, s->id, gated);
        if (st)
                sqlite3_bind_text(st, 3, kind_to_string(link.kind), -1, SQLITE_STATIC);
        r = each_registration(x, st, s, queue_one, &link);
        if (r < 0 || !gated)
                return r;
        st = bound(x, SQL_LINK_WAITING, s->id, 0);
        if (st) {
                sqlite3_bind_text(st, 3, kind_to_string(waiting.kind), -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 4, waiting.occasion, -1, SQLITE_STATIC);
        }
        return each_registration(x, st, s, queue_one, &waiting);
}

/* ---- 6. follow up -------------------------------------------------------------- */

static const char SQL_ENDED[] =
        "SELECT id FROM sessions WHERE status IN ('open', 'closed') AND ends_at <= ?1 AND problem IS NULL";
static const char SQL_SET_DONE[] =
        "UPDATE sessions SET status = 'done', followed_up = ?2 WHERE id = ?1";
static const char SQL_TO_FOLLOW_UP[] =
        "SELECT id FROM sessions WHERE status = 'done' AND followed_up = 0 AND ends_at <= ?1";
static const char SQL_SET_FOLLOWED_UP[] = "UPDATE sessions SET followed_up = ?2 WHERE id = ?1";
static const char SQL_BOOKED_OF[] =
        "SELECT id FROM registrations WHERE session_id = ?1 AND status = 'booked'";
static const char SQL_ATTENDED_OF[] =
        "SELECT id FROM registrations WHERE session_id = ?1 AND status = 'booked' AND attended = 1";
static const char SQL_ABSENT_OF[] =
        "SELECT id FROM registrations WHERE session_id = ?1 AND status = 'booked' AND attended = 0";
static const char SQL_ANY_ATTENDANCE[] =
        "SELECT 1 FROM registrations WHERE session_id = ?1 AND status = 'booked'"
        " AND attended IS NOT NULL LIMIT 1";

/* The trainer (else roster_to) is asked once, as the session ends, who came: with
 * attendance_required the follow-ups wait for the answer (SPEC 12). */
static int queue_attendance_request(scan_t *x, const session_t *s)
{
        bool trainer = s->trainer_email && *s->trainer_email;
        size_t n = trainer ? 1 : x->c->n_roster_to;
        int r = 0;

        for (size_t i = 0; i < n && r >= 0; i++) {
                const char *to = trainer ? s->trainer_email : x->c->roster_to[i];

                r = outbox_queue(x->db, x->c, s->id, 0, KIND_ATTENDANCE_REQUEST, to, to, x->now);
                if (r > 0)
                        x->stats->queued++;
        }
        return r;
}

/* Without a follow-up, a session is followed up as it ends. */
static int end_session(scan_t *x, const session_t *s)
{
        log_ctx_t ctx = { .message_id = MID_SESSION_DONE, .session = s->id };
        int r;

        x->stats->done++;
        log_ctx(LOG_INFO, &ctx, "session %lld has ended", (long long) s->id);
        r = mark_session(x, SQL_SET_DONE, s->id, !x->c->follow_up_enabled);
        if (r >= 0 && x->c->attendance_required) {
                sqlite3_stmt *st = bound(x, SQL_ANY_ATTENDANCE, s->id, 0);

                r = st ? db_step(st) : -EIO;
                if (st)
                        sqlite3_reset(st);
                if (r == 0)
                        r = queue_attendance_request(x, s);
        }
        return r < 0 ? r : 0;
}

static int follow_up_session(scan_t *x, const session_t *s)
{
        sqlite3_stmt *st;
        int r;

        if (x->now < plan_follow_up_at(x->c, s->ends_at))
                return 0;
        st = bound(x, SQL_ANY_ATTENDANCE, s->id, 0);
        r = st ? db_step(st) : -EIO;
        if (st)
                sqlite3_reset(st);
        if (r < 0)
                return r;
        if (r == 1) {
                /* thanks to those who came, a kind word and the next dates to those who did
                 * not; those nobody has said either way hear nothing */
                r = queue_each(x, SQL_ATTENDED_OF, s, 0, KIND_FOLLOW_UP, "");
                if (r >= 0)
                        r = queue_each(x, SQL_ABSENT_OF, s, 0, KIND_MISSED, "");
        } else if (x->c->attendance_required) {
                return 0; /* it waits for the attendance */
        } else {
                r = queue_each(x, SQL_BOOKED_OF, s, 0, KIND_FOLLOW_UP, "");
        }
        return r < 0 ? r : mark_session(x, SQL_SET_FOLLOWED_UP, s->id, 1);
}

/* ---- 7. cancel ----------------------------------------------------------------- */

static const char SQL_CANCELLED[] =
        "SELECT id FROM sessions WHERE status = 'cancelled' AND cancel_notified = 0";
static const char SQL_PLACED_OF[] =
        "SELECT id FROM registrations WHERE session_id = ?1 AND status IN ('booked', 'waitlisted')";
static const char SQL_SET_CANCEL_NOTIFIED[] = "UPDATE sessions SET cancel_notified = ?2 WHERE id = ?1";

static int cancel_session(scan_t *x, const session_t *s)
{
        int r = queue_each(x, SQL_PLACED_OF, s, 0, KIND_SESSION_CANCELLED, "");

        return r < 0 ? r : mark_session(x, SQL_SET_CANCEL_NOTIFIED, s->id, 1);
}

/* ---- 8. change ----------------------------------------------------------------- */

static const char SQL_CHANGED[] =
        "SELECT id FROM sessions WHERE seq > change_notified AND status IN ('open', 'closed')"
        " AND problem IS NULL";
static const char SQL_CHANGED_OUTBOX[] = "SELECT changed_outbox FROM sessions WHERE id = ?1";
/* only those who had been emailed before the change hear about it */
static const char SQL_EMAILED_BOOKED[] =
        "SELECT r.id FROM registrations r WHERE r.session_id = ?1 AND r.status = 'booked'"
        " AND EXISTS (SELECT 1 FROM outbox o WHERE o.registration_id = r.id AND o.id <= ?2)";
static const char SQL_SET_CHANGE_NOTIFIED[] = "UPDATE sessions SET change_notified = ?2 WHERE id = ?1";

static int change_session(scan_t *x, const session_t *s)
{
        sqlite3_stmt *st = bound(x, SQL_CHANGED_OUTBOX, s->id, 0);
        int64_t upto = 0;
        char occ[24];
        int r;

        if (!st)
                return -EIO;
        if (db_step(st) == 1)
                upto = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        /* the change number is the occasion: each change is told once */
        snprintf(occ, sizeof(occ), "%ld", s->seq);
        r = queue_each(x, SQL_EMAILED_BOOKED, s, upto, KIND_SESSION_CHANGED, occ);
        /* the trainer's roster named the old time and link: a new one goes */
        if (r >= 0 && s->status == SESSION_CLOSED)
                r = queue_roster(x, s, s->seq);
        return r < 0 ? r : mark_session(x, SQL_SET_CHANGE_NOTIFIED, s->id, s->seq);
}

/* ---- 9. forget ----------------------------------------------------------------- */

static const char SQL_TO_FORGET[] =
        "SELECT id FROM sessions WHERE status IN ('done', 'cancelled') AND ends_at <= ?1"
        " AND erased_at IS NULL";
static const char SQL_ERASE_REGS[] =
        "UPDATE registrations SET name = '', email = '', token = NULL WHERE session_id = ?1";
/* A relay's refusal usually quotes the address ("550 <ann@example.org>: unknown"). */
static const char SQL_ERASE_OUTBOX[] =
        "UPDATE outbox SET recipient = '', body = NULL,"
        " last_error = CASE status WHEN 'queued' THEN 'the address was erased'"
        "   WHEN 'failed' THEN 'refused by the relay (the reply was erased with the address)'"
        "   ELSE last_error END,"
        " status = CASE status WHEN 'queued' THEN 'expired' ELSE status END WHERE session_id = ?1";
static const char SQL_SET_ERASED[] = "UPDATE sessions SET erased_at = ?2 WHERE id = ?1";

static int forget_session(scan_t *x, const session_t *s)
{
        static const char *const sql[] = { SQL_ERASE_REGS, SQL_ERASE_OUTBOX, SQL_SET_ERASED };
        log_ctx_t ctx = { .message_id = MID_DATA_ERASED, .session = s->id };
        int r = 0;

        if (x->now < plan_forget_at(x->c, s->ends_at))
                return 0;
        for (size_t k = 0; k < 3 && r >= 0; k++)
                r = mark_session(x, sql[k], s->id, x->now);
        if (r < 0)
                return r;
        x->stats->erased++;
        log_ctx(LOG_INFO, &ctx, "session %lld: names, addresses and stored emails erased", (long long) s->id);
        return 0;
}

/* ---- 10. tell ------------------------------------------------------------------ */

/* Newly unreachable: refused for good and not yet told (the partial index
 * registrations_unreachable answers both queries). Erased or cancelled: nobody to act on. */
#define SQL_UNTOLD \
        " FROM registrations r WHERE r.unreachable_at IS NOT NULL AND r.unreachable_told = 0" \
        " AND r.email <> '' AND r.status <> 'cancelled'"
static const char SQL_FIRST_UNTOLD[] =
        "SELECT r.session_id" SQL_UNTOLD
        " ORDER BY (SELECT starts_at FROM sessions WHERE id = r.session_id), r.id LIMIT 1";
static const char SQL_TOLD_SINCE[] =
        "SELECT 1 FROM registrations WHERE unreachable_at IS NOT NULL AND unreachable_told >= ?1 LIMIT 1";
/* unreachable_told holds the moment they were told: the email lists that day's */
static const char SQL_SET_UNREACHABLE_TOLD[] =
        "UPDATE registrations SET unreachable_told = ?1 WHERE id IN (SELECT r.id" SQL_UNTOLD ")";

/* At most one `unreachable` email a day to the coordinators (SPEC 14), listing those the
 * mail system refused since they were last told. Its session is only where the outbox row
 * hangs (every row has one): the soonest session of those it lists. */
static int tell(scan_t *x)
{
        log_ctx_t ctx = { .message_id = MID_UNREACHABLE_TOLD, .kind = kind_to_string(KIND_UNREACHABLE) };
        char date[64], occ[96];
        int64_t from, to, sid;
        sqlite3_stmt *st;
        int r, told;

        clock_format_local(x->now, date, sizeof(date));
        date[10] = '\0';
        r = outbox_unreachable_day(date, &from, &to);
        if (r < 0)
                return r;
        st = bound(x, SQL_TOLD_SINCE, from, 0);
        r = st ? db_step(st) : -EIO;
        if (st)
                sqlite3_reset(st);
        if (r != 0)
                return r < 0 ? r : 0; /* told today already: tomorrow's email lists the rest */
        st = db_stmt(x->db, SQL_FIRST_UNTOLD);
        r = st ? db_step(st) : -EIO;
        sid = r == 1 ? sqlite3_column_int64(st, 0) : 0;
        if (st)
                sqlite3_reset(st);
        if (r <= 0)
                return r;
        r = mark_session(x, SQL_SET_UNREACHABLE_TOLD, x->now, 0);
        if (r < 0)
                return r;
        told = sqlite3_changes(db_handle(x->db));
        for (size_t i = 0; i < x->c->n_roster_to && r >= 0; i++) {
                /* the address is the row's recipient: numbered, the Message-ID stays one line */
                snprintf(occ, sizeof(occ), "%s #%zu", date, i + 1);
                r = outbox_queue(x->db, x->c, sid, 0, KIND_UNREACHABLE, occ, x->c->roster_to[i], x->now);
                if (r > 0)
                        x->stats->queued++;
        }
        if (r < 0)
                return r;
        ctx.session = sid;
        log_ctx(LOG_NOTICE, &ctx, "the coordinators are told of %d unreachable registration%s", told,
                told == 1 ? "" : "s");
        return 0;
}

/* ---- the steps, in the order of meccd(8), WHAT A SCAN DOES ---------------------- */

/* The queries below pick the sessions a step looks at by a setting; each session is then
 * judged by its own course's. The pick takes the widest of them all. */
typedef int64_t (*setting_fn)(const config_t *c);

static int64_t widest(const config_t *c, setting_fn get, bool largest)
{
        int64_t v = get(c);

        for (size_t i = 0; i < c->n_courses; i++) {
                int64_t w = get(c->courses[i]);

                if (largest ? w > v : w < v)
                        v = w;
        }
        return v;
}

static int64_t cutoff_secs(const config_t *c) { return duration_approx_secs(&c->booking_cutoff); }
static int64_t first_reminder_secs(const config_t *c)
{
        return c->n_reminders_elearning ? duration_approx_secs(&c->reminders_elearning[0]) : -1;
}
static int64_t joining_secs(const config_t *c) { return duration_approx_secs(&c->reminder_joining_link); }
static int64_t retention_secs(const config_t *c) { return duration_approx_secs(&c->retention); }
static int64_t follows_up(const config_t *c) { return c->follow_up_enabled; }

static int scan_step_check(scan_t *x)
{
        return each_session(x, db_stmt(x->db, SQL_TO_CHECK), false, check_session);
}

static int scan_step_admit(scan_t *x)
{
        return admit(x);
}

static int scan_step_promote(scan_t *x)
{
        return each_session(x, db_stmt(x->db, SQL_WAITING_SESSIONS), true, promote_session);
}

static int scan_step_close(scan_t *x)
{
        sqlite3_stmt *st = bound(x, SQL_CLOSING, x->now + widest(x->c, cutoff_secs, true) + SLACK, x->now);

        return each_session(x, st, true, close_session);
}

static int scan_step_remind(scan_t *x)
{
        int64_t horizon = widest(x->c, first_reminder_secs, true);

        if (horizon < 0)
                return 0;
        return each_session(x, starting_sessions(x, horizon), false, remind_session);
}

static int scan_step_join(scan_t *x)
{
        return each_session(x, starting_sessions(x, widest(x->c, joining_secs, true)), false, join_session);
}

static int scan_step_follow_up(scan_t *x)
{
        int r = each_session(x, bound(x, SQL_ENDED, x->now, 0), false, end_session);

        if (r < 0 || !widest(x->c, follows_up, true))
                return r;
        return each_session(x, bound(x, SQL_TO_FOLLOW_UP, x->now, 0), false, follow_up_session);
}

static int scan_step_cancel(scan_t *x)
{
        return each_session(x, db_stmt(x->db, SQL_CANCELLED), false, cancel_session);
}

static int scan_step_change(scan_t *x)
{
        return each_session(x, db_stmt(x->db, SQL_CHANGED), false, change_session);
}

static int scan_step_forget(scan_t *x)
{
        sqlite3_stmt *st = bound(x, SQL_TO_FORGET, x->now - widest(x->c, retention_secs, false) + SLACK, 0);

        return each_session(x, st, false, forget_session);
}

static int scan_step_tell(scan_t *x)
{
        return tell(x);
}

typedef int (*step_fn)(scan_t *x);

static const struct {
        const char *name;
        step_fn fn;
} steps[_SCAN_STEP_MAX] = {
        [SCAN_CHECK] = { "check", scan_step_check },
        [SCAN_ADMIT] = { "admit", scan_step_admit },
        [SCAN_PROMOTE] = { "promote", scan_step_promote },
        [SCAN_CLOSE] = { "close", scan_step_close },
        [SCAN_REMIND] = { "remind", scan_step_remind },
        [SCAN_JOIN] = { "join", scan_step_join },
        [SCAN_FOLLOW_UP] = { "follow up", scan_step_follow_up },
        [SCAN_CANCEL] = { "cancel", scan_step_cancel },
        [SCAN_CHANGE] = { "change", scan_step_change },
        [SCAN_FORGET] = { "forget", scan_step_forget },
        [SCAN_TELL] = { "tell", scan_step_tell },
};

int scan_step(db_t *db, const config_t *c, int64_t now, scan_step_t step, scan_stats_t *stats)
{
        scan_stats_t unused = { 0 };
        scan_t x = { db, c, now, stats ? stats : &unused };

        if (step < 0 || step >= _SCAN_STEP_MAX)
                return -EINVAL;
        return steps[step].fn(&x);
}

int scan_continue(db_t *db, const config_t *c, int64_t now, scan_step_t *cursor, scan_stats_t *stats)
{
        int r;

        if (*cursor >= _SCAN_STEP_MAX)
                return 0;
        r = db_begin(db);
        if (r >= 0)
                r = scan_step(db, c, now, *cursor, stats);
        if (r >= 0) {
                int k = db_commit(db);

                r = k < 0 ? k : r;
        }
        if (r < 0) {
                log_ctx_t ctx = { .message_id = r == -EBUSY ? MID_DB_BUSY : MID_SCAN_FAILED };
                /* the reason is read before the rollback, which would replace it */
                char *why = r == -EBUSY ? NULL : strdup(db_errmsg(db));

                db_rollback(db);
                log_ctx(r == -EBUSY ? LOG_WARNING : LOG_ERR, &ctx, "scan step %s: %s; it will be tried again",
                        steps[*cursor].name, r == -EBUSY ? "the database is locked" : why ? why : strerror(-r));
                free(why);
                return r;
        }
        if (r == 0)
                (*cursor)++;
        return *cursor < _SCAN_STEP_MAX;
}

int scan_run(db_t *db, const config_t *c, int64_t now, scan_stats_t *stats)
{
        scan_stats_t st = { 0 };
        scan_step_t cursor = 0;
        int r;

        while ((r = scan_continue(db, c, now, &cursor, &st)) > 0)
                ;
        if (stats)
                *stats = st;
        return r;
}

void scan_stats_format(const scan_stats_t *s, char *buf, size_t n)
{
        const struct {
                unsigned v;
                const char *what;
        } parts[] = {
                { s->booked, "booked" },   { s->waitlisted, "waitlisted" }, { s->late, "late" },
                { s->invalid, "invalid" }, { s->promoted, "promoted" },     { s->closed, "closed" },
                { s->done, "ended" },      { s->erased, "erased" },         { s->queued, "queued" },
        };
        size_t used = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]) && used < n; i++)
                if (parts[i].v)
                        used += (size_t) snprintf(buf + used, n - used, "%s%u %s", used ? ", " : "",
                                                  parts[i].v, parts[i].what);
}
