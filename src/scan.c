/* scan.c - the rules of SPEC 5: who is booked, who waits, what is due to be emailed. */
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
#include "scan.h"

#define BATCH 512
#define SLACK (2 * 86400) /* covers a DST shift between calendar days and seconds */

typedef int (*step_fn)(db_t *, const config_t *, int64_t, scan_stats_t *);

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

typedef int (*session_step_fn)(db_t *, const config_t *, int64_t, scan_stats_t *, const session_t *);

/* Run fn for each session the bound query st selects. counts: load them with their booked
 * and waitlisted counts (a walk of their registrations; only steps that need it pay). */
static int each_session(db_t *db, const config_t *c, int64_t now, scan_stats_t *stats,
                        sqlite3_stmt *st, bool counts, session_step_fn fn)
{
        int64_t *ids = NULL;
        size_t n = 0;
        int r;

        if (!st)
                return -EIO;
        r = collect_ids(st, &ids, &n);
        for (size_t i = 0; i < n && r >= 0; i++) {
                session_t s;

                r = counts ? db_session_get(db, ids[i], &s) : db_session_get_plain(db, ids[i], &s);
                if (r <= 0)
                        continue; /* gone since the query: nothing to do */
                r = fn(db, c, now, stats, &s);
                session_clear(&s);
        }
        free(ids);
        return r < 0 ? r : 0;
}

static const char SQL_SET_REG[] =
        "UPDATE registrations SET status = ?2, reason = ?3,"
        " booked_at = CASE WHEN ?2 = 'booked' THEN ?4 ELSE booked_at END,"
        " token = ifnull(token, ?5) WHERE id = ?1";

static int set_registration(db_t *db, int64_t id, reg_status_t status, const char *reason,
                            int64_t now, bool token)
{
        sqlite3_stmt *st = db_stmt(db, SQL_SET_REG);
        char tok[23];
        int r;

        if (!st)
                return -EIO;
        if (token && (r = scan_new_token(tok)) < 0)
                return r;
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, reg_status_to_string(status), -1, SQLITE_STATIC);
        db_bind_text(st, 3, reason);
        sqlite3_bind_int64(st, 4, now);
        db_bind_text(st, 5, token ? tok : NULL);
        return db_step_done(st);
}

/* Queue `kind` for each registration of a session that the query selects; the query
 * binds ?1 = session id and may use ?2 (an extra parameter). Returns the count queued. */
static int queue_each(db_t *db, const config_t *c, const char *sql, int64_t session_id,
                      int64_t extra, kind_t kind, const char *occasion, int64_t now)
{
        sqlite3_stmt *st = db_stmt(db, sql);
        int64_t *ids = NULL;
        size_t n = 0;
        int r, count = 0;

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, session_id);
        if (sqlite3_bind_parameter_count(st) >= 2)
                sqlite3_bind_int64(st, 2, extra);
        r = collect_ids(st, &ids, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                registration_t g;

                r = db_registration_get(db, ids[i], &g);
                if (r <= 0)
                        break;
                r = outbox_queue(db, c, session_id, g.id, kind, occasion, g.email, now);
                registration_clear(&g);
                if (r < 0)
                        break;
                count += r;
        }
        free(ids);
        return r < 0 ? r : count;
}

static void log_reg(int prio, const char *mid, const registration_t *g, kind_t kind,
                    const char *text)
{
        log_ctx_t ctx = { .message_id = mid, .session = g->session_id, .registration = g->id,
                          .kind = kind_to_string(kind) };
        log_ctx(prio, &ctx, "registration %lld for session %lld: %s", (long long) g->id,
                (long long) g->session_id, text);
}

/* ---- 1. admit ------------------------------------------------------------------ */

static const char SQL_NEW[] =
        "SELECT id FROM registrations WHERE status = 'new' AND registered_at <= ?1"
        " ORDER BY registered_at, id LIMIT 512";
static const char SQL_DUPLICATE[] =
        "SELECT 1 FROM registrations WHERE email = ?2 COLLATE NOCASE AND session_id = ?1"
        " AND status IN ('booked', 'waitlisted') AND id != ?3 LIMIT 1";

static bool name_ok(const char *name)
{
        if (!name || !*name)
                return false;
        for (const unsigned char *p = (const unsigned char *) name; *p; p++)
                if (*p < ' ' || *p == 0x7f)
                        return false;
        return true;
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

static int admit_one(db_t *db, const config_t *c, int64_t now, scan_stats_t *stats,
                     registration_t *g)
{
        session_t s = { 0 };
        int r, found;

        stats->admitted++;
        if (!addr_valid(g->email) || !name_ok(g->name)) {
                stats->invalid++;
                log_reg(LOG_WARNING, MID_REG_INVALID, g, _KIND_INVALID,
                        !name_ok(g->name) ? "invalid: the name is empty or holds control characters"
                                          : "invalid: not a single valid email address");
                return set_registration(db, g->id, REG_INVALID,
                                        name_ok(g->name) ? "address" : "name", now, false);
        }
        found = db_session_get(db, g->session_id, &s);
        if (found <= 0) {
                stats->invalid++;
                log_reg(LOG_WARNING, MID_REG_INVALID, g, _KIND_INVALID, "invalid: no such session");
                return found < 0 ? found : set_registration(db, g->id, REG_INVALID, "session", now, false);
        }
        r = is_duplicate(db, g);
        if (r != 0) {
                if (r > 0) {
                        stats->invalid++;
                        log_reg(LOG_NOTICE, MID_REG_INVALID, g, _KIND_INVALID,
                                "invalid: duplicate of a place already held on this session");
                        r = set_registration(db, g->id, REG_INVALID, "duplicate", now, false);
                }
                goto out;
        }
        if (!plan_bookable(c, &s, now)) {
                stats->late++;
                log_reg(LOG_INFO, MID_REG_LATE, g, KIND_LATE, "late: bookings for this session have closed");
                r = set_registration(db, g->id, REG_LATE, NULL, now, false);
                if (r >= 0)
                        r = outbox_queue(db, c, s.id, g->id, KIND_LATE, "", g->email, now);
        } else if (s.booked < s.capacity && s.waitlisted == 0) {
                stats->booked++;
                log_reg(LOG_INFO, MID_REG_ADMITTED, g, KIND_CONFIRMATION, "booked");
                r = set_registration(db, g->id, REG_BOOKED, NULL, now, true);
                if (r >= 0)
                        r = outbox_queue(db, c, s.id, g->id, KIND_CONFIRMATION, "", g->email, now);
        } else {
                /* with a waiting list, newcomers queue behind it: promote takes the earliest */
                stats->waitlisted++;
                log_reg(LOG_INFO, MID_REG_ADMITTED, g, KIND_WAITLISTED, "waitlisted: the session is full");
                r = set_registration(db, g->id, REG_WAITLISTED, NULL, now, true);
                if (r >= 0)
                        r = outbox_queue(db, c, s.id, g->id, KIND_WAITLISTED, "", g->email, now);
        }
out:
        session_clear(&s);
        return r < 0 ? r : 0;
}

int scan_admit(db_t *db, const config_t *c, int64_t now, scan_stats_t *stats)
{
        for (;;) {
                sqlite3_stmt *st = db_stmt(db, SQL_NEW);
                int64_t *ids = NULL;
                size_t n = 0;
                int r;

                if (!st)
                        return -EIO;
                sqlite3_bind_int64(st, 1, now);
                r = collect_ids(st, &ids, &n);
                if (r < 0 || n == 0)
                        return r;
                for (size_t i = 0; i < n && r >= 0; i++) {
                        registration_t g;

                        r = db_registration_get(db, ids[i], &g);
                        if (r <= 0)
                                break;
                        r = admit_one(db, c, now, stats, &g);
                        registration_clear(&g);
                }
                free(ids);
                if (r < 0)
                        return r;
                if (n < BATCH)
                        return 0;
        }
}

/* ---- 2. promote ---------------------------------------------------------------- */

static const char SQL_WAITING_SESSIONS[] =
        "SELECT DISTINCT session_id FROM registrations WHERE status = 'waitlisted'";
static const char SQL_EARLIEST_WAITING[] =
        "SELECT id FROM registrations WHERE session_id = ?1 AND status = 'waitlisted'"
        " ORDER BY registered_at, id LIMIT ?2";

static int promote_session(db_t *db, const config_t *c, int64_t now, scan_stats_t *stats,
                           const session_t *s)
{
        sqlite3_stmt *st;
        int64_t *ids = NULL;
        size_t m = 0;
        int r;

        if (!plan_bookable(c, s, now) || s->booked >= s->capacity)
                return 0;
        st = db_stmt(db, SQL_EARLIEST_WAITING);
        sqlite3_bind_int64(st, 1, s->id);
        sqlite3_bind_int64(st, 2, s->capacity - s->booked);
        r = collect_ids(st, &ids, &m);
        for (size_t j = 0; j < m && r >= 0; j++) {
                registration_t g;

                r = db_registration_get(db, ids[j], &g);
                if (r <= 0)
                        break;
                stats->promoted++;
                log_reg(LOG_INFO, MID_REG_ADMITTED, &g, KIND_PROMOTED, "booked from the waiting list");
                r = set_registration(db, g.id, REG_BOOKED, NULL, now, true);
                if (r >= 0)
                        r = outbox_queue(db, c, s->id, g.id, KIND_PROMOTED, "", g.email, now);
                registration_clear(&g);
        }
        free(ids);
        return r;
}

int scan_promote(db_t *db, const config_t *c, int64_t now, scan_stats_t *stats)
{
        return each_session(db, c, now, stats, db_stmt(db, SQL_WAITING_SESSIONS), true,
                            promote_session);
}

/* ---- 3. close ------------------------------------------------------------------ */

static const char SQL_CLOSING[] =
        "SELECT id FROM sessions WHERE status = 'open' AND starts_at <= ?1"
        " UNION SELECT id FROM sessions WHERE status = 'open' AND closes_at <= ?2";
static const char SQL_SET_SESSION_STATUS[] = "UPDATE sessions SET status = ?2 WHERE id = ?1";
static const char SQL_WAITLISTED_OF[] =
        "SELECT id FROM registrations WHERE session_id = ?1 AND status = 'waitlisted'"
        " ORDER BY registered_at, id";

static int set_session_status(db_t *db, int64_t id, session_status_t status)
{
        sqlite3_stmt *st = db_stmt(db, SQL_SET_SESSION_STATUS);

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, session_status_to_string(status), -1, SQLITE_STATIC);
        return db_step_done(st);
}

static int close_one(db_t *db, const config_t *c, int64_t now, scan_stats_t *stats,
                     const session_t *s)
{
        sqlite3_stmt *st = db_stmt(db, SQL_WAITLISTED_OF);
        log_ctx_t ctx = { .message_id = MID_SESSION_CLOSED, .session = s->id,
                          .kind = kind_to_string(KIND_ROSTER) };
        int64_t *ids = NULL;
        size_t n = 0;
        int r;

        r = set_session_status(db, s->id, SESSION_CLOSED);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, s->id);
        r = collect_ids(st, &ids, &n);
        for (size_t i = 0; i < n && r >= 0; i++) {
                registration_t g;

                r = db_registration_get(db, ids[i], &g);
                if (r <= 0)
                        break;
                r = set_registration(db, g.id, REG_LATE, NULL, now, false);
                if (r >= 0)
                        r = outbox_queue(db, c, s->id, g.id, KIND_NOT_PLACED, "", g.email, now);
                registration_clear(&g);
        }
        free(ids);
        if (r < 0)
                return r;
        /* the roster goes to the trainer, else to every roster_to address */
        if (s->trainer_email && *s->trainer_email)
                r = outbox_queue(db, c, s->id, 0, KIND_ROSTER, s->trainer_email, s->trainer_email, now);
        else
                for (size_t i = 0; i < c->n_roster_to && r >= 0; i++)
                        r = outbox_queue(db, c, s->id, 0, KIND_ROSTER, c->roster_to[i], c->roster_to[i], now);
        stats->closed++;
        log_ctx(LOG_INFO, &ctx, "session %lld closed for bookings: %ld booked, %zu not placed",
                (long long) s->id, s->booked, n);
        return r < 0 ? r : 0;
}

static int close_due(db_t *db, const config_t *c, int64_t now, scan_stats_t *stats,
                     const session_t *s)
{
        return now >= plan_cutoff(c, s->starts_at, s->closes_at) ? close_one(db, c, now, stats, s) : 0;
}

int scan_close(db_t *db, const config_t *c, int64_t now, scan_stats_t *stats)
{
        sqlite3_stmt *st = db_stmt(db, SQL_CLOSING);

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, now + duration_approx_secs(&c->booking_cutoff) + SLACK);
        sqlite3_bind_int64(st, 2, now);
        return each_session(db, c, now, stats, st, true, close_due);
}

/* ---- 4. remind ----------------------------------------------------------------- */

static const char SQL_STARTING[] =
        "SELECT id FROM sessions WHERE status IN ('open', 'closed')"
        " AND starts_at > ?1 AND starts_at <= ?2";
static const char SQL_SET_REMINDED[] = "UPDATE sessions SET reminded_at = ?2 WHERE id = ?1";
static const char SQL_NEED_REMINDER[] =
        "SELECT id FROM registrations WHERE session_id = ?1 AND status = 'booked'"
        " AND elearning_done_at IS NULL AND booked_at <= ?2";
static const char SQL_REMINDED_AT[] = "SELECT reminded_at FROM sessions WHERE id = ?1";

/* The query for sessions starting within `horizon` from now. */
static sqlite3_stmt *starting_sessions(db_t *db, int64_t now, int64_t horizon)
{
        sqlite3_stmt *st = db_stmt(db, SQL_STARTING);

        if (st) {
                sqlite3_bind_int64(st, 1, now);
                sqlite3_bind_int64(st, 2, now + horizon + SLACK);
        }
        return st;
}

static int64_t reminded_at(db_t *db, int64_t sid)
{
        sqlite3_stmt *st = db_stmt(db, SQL_REMINDED_AT);
        int64_t v = 0;

        sqlite3_bind_int64(st, 1, sid);
        if (db_step(st) == 1)
                v = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        return v;
}

static int remind_session(db_t *db, const config_t *c, int64_t now, scan_stats_t *stats,
                          const session_t *s)
{
        int i = plan_due_reminder(c, s->starts_at, now);
        int64_t at;
        char occ[32];
        sqlite3_stmt *st;
        int r;

        if (i < 0)
                return 0;
        at = plan_reminder_at(c, s->starts_at, (size_t) i);
        /* Everyone booked by `at` was queued when the session was last reminded at `at`;
         * anyone booked later has missed this reminder's moment and skips it. */
        if (reminded_at(db, s->id) == at)
                return 0;
        plan_duration_name(&c->reminders_elearning[i], occ, sizeof(occ));
        r = queue_each(db, c, SQL_NEED_REMINDER, s->id, at, KIND_ELEARNING_REMINDER, occ, now);
        if (r < 0)
                return r;
        stats->queued += r;
        st = db_stmt(db, SQL_SET_REMINDED);
        sqlite3_bind_int64(st, 1, s->id);
        sqlite3_bind_int64(st, 2, at);
        return db_step_done(st);
}

int scan_remind(db_t *db, const config_t *c, int64_t now, scan_stats_t *stats)
{
        if (c->n_reminders_elearning == 0)
                return 0;
        return each_session(db, c, now, stats,
                            starting_sessions(db, now, duration_approx_secs(&c->reminders_elearning[0])),
                            false, remind_session);
}

/* ---- 5. join ------------------------------------------------------------------- */

/* "+r.id" drops the column's integer affinity, which would otherwise keep SQLite from
 * looking the row up in the outbox_occasion expression index (it scanned the session's
 * whole outbox history for each registration instead). */
static const char SQL_NEED_JOIN[] =
        "SELECT r.id FROM registrations r WHERE r.session_id = ?1 AND r.status = 'booked'"
        " AND (?2 = 0 OR r.elearning_done_at IS NOT NULL)"
        " AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.session_id = ?1"
        "   AND ifnull(o.registration_id, 0) = +r.id AND o.kind = 'joining_link' AND o.occasion = '')";

/* With require_elearning, those whose link is held back hear why, once, at its moment. */
static const char SQL_LINK_WAITING[] =
        "SELECT r.id FROM registrations r WHERE r.session_id = ?1 AND r.status = 'booked'"
        " AND r.elearning_done_at IS NULL"
        " AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.session_id = ?1"
        "   AND o.registration_id = r.id AND o.kind = 'elearning_reminder'"
        "   AND o.occasion = 'link-waiting')";

static int join_session(db_t *db, const config_t *c, int64_t now, const session_t *s)
{
        int r, queued;

        r = queue_each(db, c, SQL_NEED_JOIN, s->id, c->require_elearning, KIND_JOINING_LINK, "", now);
        if (r < 0 || !c->require_elearning)
                return r;
        queued = r;
        r = queue_each(db, c, SQL_LINK_WAITING, s->id, 0, KIND_ELEARNING_REMINDER, "link-waiting", now);
        return r < 0 ? r : queued + r;
}

static int join_due(db_t *db, const config_t *c, int64_t now, scan_stats_t *stats,
                    const session_t *s)
{
        int r;

        if (now < plan_joining_at(c, s->starts_at))
                return 0;
        r = join_session(db, c, now, s);
        if (r > 0)
                stats->queued += r;
        return r;
}

int scan_join(db_t *db, const config_t *c, int64_t now, scan_stats_t *stats)
{
        return each_session(db, c, now, stats,
                            starting_sessions(db, now, duration_approx_secs(&c->reminder_joining_link)),
                            false, join_due);
}

/* ---- 6. follow up -------------------------------------------------------------- */

static const char SQL_ENDED[] =
        "SELECT id FROM sessions WHERE status IN ('open', 'closed') AND ends_at <= ?1";
static const char SQL_SET_DONE[] =
        "UPDATE sessions SET status = 'done', followed_up = ?2 WHERE id = ?1";
static const char SQL_TO_FOLLOW_UP[] =
        "SELECT id FROM sessions WHERE status = 'done' AND followed_up = 0 AND ends_at <= ?1";
static const char SQL_SET_FOLLOWED_UP[] = "UPDATE sessions SET followed_up = 1 WHERE id = ?1";
static const char SQL_BOOKED_OF[] =
        "SELECT id FROM registrations WHERE session_id = ?1 AND status = 'booked'";

static int follow_up_due(db_t *db, const config_t *c, int64_t now, scan_stats_t *stats,
                         const session_t *s)
{
        sqlite3_stmt *st;
        int r;

        if (now < plan_follow_up_at(c, s->ends_at))
                return 0;
        r = queue_each(db, c, SQL_BOOKED_OF, s->id, 0, KIND_FOLLOW_UP, "", now);
        if (r < 0)
                return r;
        stats->queued += r;
        st = db_stmt(db, SQL_SET_FOLLOWED_UP);
        sqlite3_bind_int64(st, 1, s->id);
        return db_step_done(st);
}

int scan_follow_up(db_t *db, const config_t *c, int64_t now, scan_stats_t *stats)
{
        sqlite3_stmt *st = db_stmt(db, SQL_ENDED);
        int64_t *ids = NULL;
        size_t n = 0;
        int r;

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, now);
        r = collect_ids(st, &ids, &n);
        for (size_t i = 0; i < n && r >= 0; i++) {
                log_ctx_t ctx = { .message_id = MID_SESSION_DONE, .session = ids[i] };

                st = db_stmt(db, SQL_SET_DONE);
                sqlite3_bind_int64(st, 1, ids[i]);
                sqlite3_bind_int(st, 2, !c->follow_up_enabled);
                r = db_step_done(st);
                stats->done++;
                log_ctx(LOG_INFO, &ctx, "session %lld has ended", (long long) ids[i]);
        }
        free(ids);
        if (r < 0 || !c->follow_up_enabled)
                return r < 0 ? r : 0;

        st = db_stmt(db, SQL_TO_FOLLOW_UP);
        if (st)
                sqlite3_bind_int64(st, 1, now);
        return each_session(db, c, now, stats, st, false, follow_up_due);
}

/* ---- 7. cancel ----------------------------------------------------------------- */

static const char SQL_CANCELLED[] =
        "SELECT id FROM sessions WHERE status = 'cancelled' AND cancel_notified = 0";
static const char SQL_PLACED_OF[] =
        "SELECT id FROM registrations WHERE session_id = ?1 AND status IN ('booked', 'waitlisted')";
static const char SQL_SET_CANCEL_NOTIFIED[] = "UPDATE sessions SET cancel_notified = 1 WHERE id = ?1";

int scan_cancel(db_t *db, const config_t *c, int64_t now, scan_stats_t *stats)
{
        sqlite3_stmt *st = db_stmt(db, SQL_CANCELLED);
        int64_t *ids = NULL;
        size_t n = 0;
        int r;

        if (!st)
                return -EIO;
        r = collect_ids(st, &ids, &n);
        for (size_t i = 0; i < n && r >= 0; i++) {
                r = queue_each(db, c, SQL_PLACED_OF, ids[i], 0, KIND_SESSION_CANCELLED, "", now);
                if (r >= 0) {
                        stats->queued += r;
                        st = db_stmt(db, SQL_SET_CANCEL_NOTIFIED);
                        sqlite3_bind_int64(st, 1, ids[i]);
                        r = db_step_done(st);
                }
        }
        free(ids);
        return r < 0 ? r : 0;
}

/* ---- 8. change ----------------------------------------------------------------- */

static const char SQL_CHANGED[] =
        "SELECT id FROM sessions WHERE seq > change_notified AND status IN ('open', 'closed')";
static const char SQL_CHANGE_INFO[] = "SELECT seq, changed_outbox FROM sessions WHERE id = ?1";
/* only those who had been emailed before the change hear about it */
static const char SQL_EMAILED_BOOKED[] =
        "SELECT r.id FROM registrations r WHERE r.session_id = ?1 AND r.status = 'booked'"
        " AND EXISTS (SELECT 1 FROM outbox o WHERE o.registration_id = r.id AND o.id <= ?2)";
static const char SQL_SET_CHANGE_NOTIFIED[] = "UPDATE sessions SET change_notified = seq WHERE id = ?1";

int scan_change(db_t *db, const config_t *c, int64_t now, scan_stats_t *stats)
{
        sqlite3_stmt *st = db_stmt(db, SQL_CHANGED);
        int64_t *ids = NULL;
        size_t n = 0;
        int r;

        if (!st)
                return -EIO;
        r = collect_ids(st, &ids, &n);
        for (size_t i = 0; i < n && r >= 0; i++) {
                int64_t seq = 0, upto = 0;
                char occ[24];

                st = db_stmt(db, SQL_CHANGE_INFO);
                sqlite3_bind_int64(st, 1, ids[i]);
                if (db_step(st) == 1) {
                        seq = sqlite3_column_int64(st, 0);
                        upto = sqlite3_column_int64(st, 1);
                }
                sqlite3_reset(st);
                snprintf(occ, sizeof(occ), "%lld", (long long) seq);
                r = queue_each(db, c, SQL_EMAILED_BOOKED, ids[i], upto, KIND_SESSION_CHANGED, occ, now);
                if (r >= 0) {
                        stats->queued += r;
                        st = db_stmt(db, SQL_SET_CHANGE_NOTIFIED);
                        sqlite3_bind_int64(st, 1, ids[i]);
                        r = db_step_done(st);
                }
        }
        free(ids);
        return r < 0 ? r : 0;
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

static int forget_one(db_t *db, int64_t sid, int64_t now)
{
        static const char *const sql[] = { SQL_ERASE_REGS, SQL_ERASE_OUTBOX, SQL_SET_ERASED };
        log_ctx_t ctx = { .message_id = MID_DATA_ERASED, .session = sid };
        int r = 0;

        for (size_t k = 0; k < 3 && r >= 0; k++) {
                sqlite3_stmt *st = db_stmt(db, sql[k]);

                if (!st)
                        return -EIO;
                sqlite3_bind_int64(st, 1, sid);
                if (k == 2)
                        sqlite3_bind_int64(st, 2, now);
                r = db_step_done(st);
        }
        if (r >= 0)
                log_ctx(LOG_INFO, &ctx, "session %lld: names, addresses and stored emails erased",
                        (long long) sid);
        return r;
}

static int forget_due(db_t *db, const config_t *c, int64_t now, scan_stats_t *stats,
                      const session_t *s)
{
        if (now < plan_forget_at(c, s->ends_at))
                return 0;
        stats->erased++;
        return forget_one(db, s->id, now);
}

int scan_forget(db_t *db, const config_t *c, int64_t now, scan_stats_t *stats)
{
        sqlite3_stmt *st = db_stmt(db, SQL_TO_FORGET);

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, now - duration_approx_secs(&c->retention) + SLACK);
        return each_session(db, c, now, stats, st, false, forget_due);
}

/* ---- the scan ------------------------------------------------------------------- */

int scan_run(db_t *db, const config_t *c, int64_t now, scan_stats_t *stats)
{
        static const struct {
                const char *name;
                step_fn fn;
        } steps[] = {
                { "admit", scan_admit },         { "promote", scan_promote },
                { "close", scan_close },         { "remind", scan_remind },
                { "join", scan_join },           { "follow up", scan_follow_up },
                { "cancel", scan_cancel },       { "change", scan_change },
                { "forget", scan_forget },
        };
        scan_stats_t st = { 0 };
        int r = 0;

        for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
                r = db_begin(db);
                if (r >= 0)
                        r = steps[i].fn(db, c, now, &st);
                if (r >= 0)
                        r = db_commit(db);
                if (r < 0) {
                        log_ctx_t ctx = { .message_id = r == -EBUSY ? MID_DB_BUSY : MID_SCAN_FAILED };

                        db_rollback(db);
                        log_ctx(r == -EBUSY ? LOG_WARNING : LOG_ERR, &ctx,
                                "scan step %s: %s; it will be tried again at the next scan",
                                steps[i].name, r == -EBUSY ? "the database is locked" : db_errmsg(db));
                        break;
                }
        }
        if (stats)
                *stats = st;
        return r;
}
