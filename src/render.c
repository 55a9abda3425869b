/* render.c - the values of one email, its template and attachments, built into bytes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "addr.h"
#include "clock.h"
#include "csv.h"
#include "ics.h"
#include "message.h"
#include "plan.h"
#include "render.h"
#include "template.h"

struct templates {
        struct {
                char *subject, *text, *html;
                bool counts; /* speaks of booked_count or seats_left */
        } k[_KIND_MAX];
};

static int read_file(const char *path, char **ret)
{
        FILE *f = fopen(path, "re");
        char *buf = NULL;
        size_t size = 0;
        FILE *m;
        char chunk[4096];
        size_t n;

        if (!f)
                return -errno;
        m = open_memstream(&buf, &size);
        if (!m) {
                fclose(f);
                return -ENOMEM;
        }
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                fwrite(chunk, 1, n, m);
        fclose(f);
        fclose(m);
        if (strlen(buf) != size) {
                free(buf);
                return -EINVAL; /* a NUL byte in a template */
        }
        *ret = buf;
        return 0;
}

templates_t *templates_free(templates_t *t)
{
        if (!t)
                return NULL;
        for (int i = 0; i < _KIND_MAX; i++) {
                free(t->k[i].subject);
                free(t->k[i].text);
                free(t->k[i].html);
        }
        free(t);
        return NULL;
}

/* ---- values --------------------------------------------------------------------- */

enum {
        V_NAME, V_EMAIL, V_TITLE, V_DATE, V_TIME, V_JOIN, V_ELEARNING, V_SIGNPOST, V_FEEDBACK,
        V_ORG, V_CANCEL, V_NEXT, V_TOKEN, V_ATTENDEES, V_BOOKED, V_CAPACITY, V_SEATS,
        V_TIME_TO_GO, V_NOTE, V_CHANGES, V_TRAINER, N_VARS
};

static const char *const var_names[N_VARS] = {
        "name", "email", "session_title", "session_date", "session_time", "join_url",
        "elearning_url", "signpost_url", "feedback_url", "organisation", "cancel_url",
        "next_sessions", "token", "attendees", "booked_count", "capacity", "seats_left",
        "time_to_go", "reminder_note", "changes", "trainer_email",
};

typedef struct {
        tvar_t v[N_VARS];
        char *owned[N_VARS];
        bool join_is_prose; /* {{join_url}} holds a sentence, not a link */
} values_t;

static void set(values_t *vals, int i, const char *value)
{
        vals->v[i].key = var_names[i];
        vals->v[i].value = value;
}

static void set_owned(values_t *vals, int i, char *value)
{
        free(vals->owned[i]);
        vals->owned[i] = value;
        set(vals, i, value);
}

/* An HTML template can only put {{join_url}} in an <a href>, where a sentence makes a
 * broken link: such an email goes as text alone. */
static void set_join_prose(values_t *vals, const char *sentence)
{
        set(vals, V_JOIN, sentence);
        vals->join_is_prose = true;
}

static void values_clear(values_t *vals)
{
        for (int i = 0; i < N_VARS; i++)
                free(vals->owned[i]);
        memset(vals, 0, sizeof(*vals));
}

/* A title is one line wherever it is shown: the website writes it, and a CR, LF or other
 * control byte would otherwise reach the text part as a bare CR or a terminal escape. */
static char *one_line(const char *s)
{
        char *out = strdup(s ? s : ""), *w = out;

        if (!out)
                return NULL;
        for (const char *p = out; *p; p++) {
                if (p[0] == '\r' && p[1] == '\n')
                        continue;
                *w++ = ((unsigned char) *p < ' ' || *p == 0x7f) ? ' ' : *p;
        }
        *w = '\0';
        return out;
}

static void set_session(values_t *vals, const config_t *c, const session_t *s)
{
        char date[96], time_s[64], buf[32];

        clock_format_date(s->starts_at, date, sizeof(date));
        clock_format_time_range(s->starts_at, s->ends_at, time_s, sizeof(time_s));
        set_owned(vals, V_TITLE, one_line(s->title));
        set_owned(vals, V_DATE, strdup(date));
        set_owned(vals, V_TIME, strdup(time_s));
        set(vals, V_JOIN, s->join_url);
        set(vals, V_ELEARNING, s->elearning_url && *s->elearning_url ? s->elearning_url : c->elearning_url);
        set(vals, V_TRAINER, s->trainer_email);
        snprintf(buf, sizeof(buf), "%ld", s->booked);
        set_owned(vals, V_BOOKED, strdup(buf));
        snprintf(buf, sizeof(buf), "%ld", s->capacity);
        set_owned(vals, V_CAPACITY, strdup(buf));
        snprintf(buf, sizeof(buf), "%ld", s->capacity > s->booked ? s->capacity - s->booked : 0);
        set_owned(vals, V_SEATS, strdup(buf));
        set(vals, V_CHANGES, s->change_note);
}

static void set_common(values_t *vals, const config_t *c)
{
        set(vals, V_SIGNPOST, c->signpost_url);
        set(vals, V_FEEDBACK, c->feedback_url);
        set(vals, V_ORG, c->organisation);
}

/* The website's cancel link; without one, a reply to the coordinators asking to cancel,
 * so the sentence around {{cancel_url}} always leads somewhere. */
static char *cancel_url(const config_t *c, const char *token)
{
        tvar_t v = { "token", token };
        char *out = NULL, *addr = NULL, *display = NULL;

        if (!c->cancel_url || !*c->cancel_url || !token) {
                if (c->smtp.reply_to && *c->smtp.reply_to &&
                    addr_parse_mailbox(c->smtp.reply_to, &display, &addr) < 0)
                        addr = NULL;
                if (asprintf(&out, "mailto:%s?subject=Please%%20cancel%%20my%%20MECC%%20place",
                             addr ? addr : c->smtp.from_addr) < 0)
                        out = NULL;
                free(addr);
                free(display);
                return out;
        }
        if (template_render(c->cancel_url, &v, 1, false, &out, NULL) < 0)
                return NULL;
        return out;
}

static const char SQL_NEXT_SESSIONS[] =
        "SELECT id FROM sessions WHERE status = 'open' AND starts_at > ?1 AND id != ?2"
        " ORDER BY starts_at, id LIMIT 20";

/* Upcoming sessions still taking bookings, for late and not_placed emails. */
static char *next_sessions(db_t *db, const config_t *c, int64_t except, int64_t now)
{
        sqlite3_stmt *st = db_stmt(db, SQL_NEXT_SESSIONS);
        int64_t ids[20];
        size_t n = 0, shown = 0;
        char *buf = NULL;
        size_t size = 0;
        FILE *f;

        if (!st)
                return NULL;
        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_int64(st, 2, except);
        while (n < 20 && db_step(st) == 1)
                ids[n++] = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        f = open_memstream(&buf, &size);
        if (!f)
                return NULL;
        for (size_t i = 0; i < n && shown < 5; i++) {
                session_t s;
                char date[96], time_s[64];

                if (db_session_get(db, ids[i], &s) <= 0)
                        continue;
                if (now < plan_cutoff(c, s.starts_at, s.closes_at)) {
                        long left = s.capacity > s.booked ? s.capacity - s.booked : 0;

                        clock_format_date(s.starts_at, date, sizeof(date));
                        clock_format_time_range(s.starts_at, s.ends_at, time_s, sizeof(time_s));
                        char places[48];

                        if (left == 0)
                                snprintf(places, sizeof(places), "full, waiting list open");
                        else
                                snprintf(places, sizeof(places), "%ld place%s left", left, left == 1 ? "" : "s");
                        char *title = one_line(s.title);

                        fprintf(f, "%s- %s: %s, %s (%s)", shown ? "\n" : "", title ? title : "", date,
                                time_s, places);
                        free(title);
                        shown++;
                }
                session_clear(&s);
        }
        if (!shown)
                fputs("There are no other sessions open for booking just now. New dates are added\n"
                      "regularly on the training hub, so please look again soon.", f);
        fclose(f);
        return buf;
}

static const char SQL_ROSTER[] =
        "SELECT name, email, status, registered_at, ifnull(elearning_done_at, 0)"
        " FROM registrations WHERE session_id = ?1 AND status = 'booked' ORDER BY name, id";

/* The attendee list as text for the body and as CSV for the attachment. */
static int roster(db_t *db, int64_t sid, char **ret_text, char **ret_csv, size_t *ret_csv_size)
{
        sqlite3_stmt *st = db_stmt(db, SQL_ROSTER);
        static const char *const header[] = { "name", "email", "status", "registered_at",
                                              "elearning_completed_at" };
        char *text = NULL, *csv = NULL;
        size_t tsize = 0, csize = 0;
        FILE *t, *v;
        int n = 0;

        if (!st)
                return -EIO;
        t = open_memstream(&text, &tsize);
        v = open_memstream(&csv, &csize);
        if (!t || !v) {
                if (t) fclose(t);
                if (v) fclose(v);
                free(text);
                free(csv);
                return -ENOMEM;
        }
        csv_write_row(v, header, 5);
        sqlite3_bind_int64(st, 1, sid);
        while (db_step(st) == 1) {
                const char *name = (const char *) sqlite3_column_text(st, 0);
                const char *email = (const char *) sqlite3_column_text(st, 1);
                int64_t done = sqlite3_column_int64(st, 4);
                char reg[32], el[32] = "", day[32] = "";
                const char *row[5];

                clock_format_iso(sqlite3_column_int64(st, 3), reg, sizeof(reg));
                if (done) {
                        clock_format_iso(done, el, sizeof(el));
                        clock_format_local(done, day, sizeof(day));
                        day[10] = '\0';
                }
                row[0] = name; row[1] = email; row[2] = (const char *) sqlite3_column_text(st, 2);
                row[3] = reg; row[4] = el;
                csv_write_row(v, row, 5);
                fprintf(t, "%s%d. %s <%s>: e-learning %s%s", n ? "\n" : "", n + 1, name, email,
                        done ? "completed " : "not completed yet", day);
                n++;
        }
        sqlite3_reset(st);
        if (!n)
                fputs("Nobody is booked on this session.", t);
        fclose(t);
        fclose(v);
        *ret_text = text;
        *ret_csv = csv;
        *ret_csv_size = csize;
        return 0;
}

/* How far off the start is, counted in calendar days of the zone: a reminder that goes
 * late (a relay outage, a session moved) still tells the truth. */
static char *time_to_go(int64_t now, int64_t starts_at)
{
        time_t a = (time_t) now, b = (time_t) starts_at;
        struct tm ta, tb;
        long days;
        char *out = NULL;

        if (!localtime_r(&a, &ta) || !localtime_r(&b, &tb))
                return strdup("soon");
        ta.tm_hour = ta.tm_min = ta.tm_sec = tb.tm_hour = tb.tm_min = tb.tm_sec = 0;
        days = (long) ((timegm(&tb) - timegm(&ta)) / 86400);
        if (days <= 0)
                return strdup(now < starts_at ? "today" : "soon");
        if (days == 1)
                return strdup("tomorrow");
        return asprintf(&out, "in %ld days", days) < 0 ? NULL : out;
}

/* ---- building --------------------------------------------------------------------- */

char *render_ics_uid(db_t *db, const config_t *c, int64_t session_id)
{
        char *inst = db_meta_get(db, "instance"), *uid = NULL;
        const char *at = strrchr(c->smtp.from_addr, '@');

        if (asprintf(&uid, "session-%lld.%s%s", (long long) session_id, inst ? inst : "0",
                     at ? at : "@meccd") < 0)
                uid = NULL;
        free(inst);
        return uid;
}

static int build_ics(db_t *db, const config_t *c, const session_t *s, kind_ics_t what,
                     int64_t now, char **ret)
{
        bool cancel = what == ICS_CANCEL;
        char *uid = render_ics_uid(db, c, s->id), *desc = NULL;
        ics_event_t e = {
                .uid = uid, .sequence = (int) s->seq + (cancel ? 1 : 0), .dtstamp = now,
                .start = s->starts_at, .end = s->ends_at, .tzid = clock_zone(),
                .summary = s->title, .url = s->join_url, .organizer = c->smtp.from,
                .cancel = cancel,
        };
        int r;

        if (!uid)
                return -ENOMEM;
        if (s->join_url && *s->join_url &&
            asprintf(&desc, "Join the session here: %s\n\nPlease join a few minutes early.", s->join_url) < 0)
                desc = NULL;
        e.description = desc ? desc : "MECC live online training";
        r = ics_build(&e, ret);
        free(uid);
        free(desc);
        return r;
}

static int fill(db_t *db, const config_t *c, const mail_key_t *key, int64_t now, bool counts,
                values_t *vals, session_t *s, char **ret_csv, size_t *ret_csv_size)
{
        registration_t g = { 0 };
        bool gated;
        int r;

        r = db_session_get_plain(db, key->session_id, s);
        if (r <= 0)
                return r < 0 ? r : -ENOENT;
        /* counting walks the session's registrations: only for templates that use it */
        if (counts && (r = db_session_count(db, s)) < 0)
                return r;
        set_common(vals, c);
        if (key->registration_id) {
                r = db_registration_get(db, key->registration_id, &g);
                if (r <= 0)
                        return r < 0 ? r : -ENOENT;
                /* require_elearning: the link (and the .ics carrying it) waits for the
                 * e-learning in every email, not only in joining_link */
                gated = c->require_elearning && !g.elearning_done_at;
                if (gated) {
                        free(s->join_url);
                        s->join_url = NULL;
                }
                set_session(vals, c, s);
                if (gated)
                        set_join_prose(vals, "We will send you the joining link as soon as you have "
                                             "completed the e-learning.");
                else if (!s->join_url || !*s->join_url)
                        set_join_prose(vals, "The link to join is not ready yet: we will email it to "
                                             "you as soon as it is.");
                set_owned(vals, V_NAME, strdup(g.name));
                set_owned(vals, V_EMAIL, strdup(g.email));
                set_owned(vals, V_TOKEN, g.token ? strdup(g.token) : NULL);
                set_owned(vals, V_CANCEL, cancel_url(c, g.token));
                registration_clear(&g);
        } else {
                set_session(vals, c, s);
                if (!s->join_url || !*s->join_url)
                        set_join_prose(vals, "not set yet: please reply to this email with it");
                set(vals, V_NAME, "colleague");
                set(vals, V_EMAIL, key->recipient);
        }
        if (kind_info(key->kind)->next_sessions)
                set_owned(vals, V_NEXT, next_sessions(db, c, s->id, now));
        if (key->kind == KIND_ELEARNING_REMINDER) {
                bool waiting = strcmp(key->occasion, "link-waiting") == 0;

                set_owned(vals, V_TIME_TO_GO, time_to_go(now, s->starts_at));
                set(vals, V_NOTE, waiting ? "Your joining link is ready and waiting: we will send it as soon "
                                            "as you have completed the e-learning." : "");
        }
        if (key->kind == KIND_ROSTER) {
                char *text = NULL;

                r = roster(db, s->id, &text, ret_csv, ret_csv_size);
                if (r < 0)
                        return r;
                set_owned(vals, V_ATTENDEES, text);
        }
        return 0;
}

static int compose(const config_t *c, const templates_t *t, int k, const values_t *vals,
                   const mail_key_t *key, int64_t now, const attachment_t *att, size_t n_att,
                   char **ret, size_t *ret_size, char **ret_err)
{
        char *subject = NULL, *text = NULL, *html = NULL;
        int r;

        r = template_render(t->k[k].subject, vals->v, N_VARS, false, &subject, ret_err);
        if (r >= 0)
                r = template_render(t->k[k].text, vals->v, N_VARS, false, &text, ret_err);
        if (r >= 0 && t->k[k].html && !(vals->join_is_prose && strstr(t->k[k].html, "join_url")))
                r = template_render(t->k[k].html, vals->v, N_VARS, true, &html, ret_err);
        if (r >= 0) {
                message_t m = {
                        .from = c->smtp.from, .to_name = vals->v[V_NAME].value,
                        .to_addr = key->recipient, .reply_to = c->smtp.reply_to,
                        .subject = subject, .message_id = key->message_id, .date = now,
                        .text = text, .html = html, .attachments = att, .n_attachments = n_att,
                };
                if (key->registration_id == 0)
                        m.to_name = NULL;
                r = message_build(&m, ret, ret_size);
        }
        free(subject);
        free(text);
        free(html);
        return r;
}

int render_mail(db_t *db, const config_t *c, const templates_t *t, const mail_key_t *key,
                int64_t now, char **ret, size_t *ret_size, char **ret_err)
{
        values_t vals = { 0 };
        session_t s = { 0 };
        char *ics = NULL, *csv = NULL;
        size_t csv_size = 0, n_att = 0;
        attachment_t att[1];
        const kind_info_t *info = kind_info(key->kind);
        int k = key->kind, r;

        if (!info)
                return -EINVAL;
        if (!addr_valid(key->recipient))
                return -EINVAL;
        r = fill(db, c, key, now, t->k[k].counts, &vals, &s, &csv, &csv_size);
        if (r < 0)
                goto out;
        if (info->ics != ICS_NONE) {
                r = build_ics(db, c, &s, info->ics, now, &ics);
                if (r < 0)
                        goto out;
                att[n_att++] = (attachment_t) {
                        "invite.ics",
                        info->ics == ICS_CANCEL
                                ? "text/calendar; charset=UTF-8; method=CANCEL"
                                : "text/calendar; charset=UTF-8; method=PUBLISH",
                        ics, strlen(ics) };
        } else if (csv) {
                att[n_att++] = (attachment_t) { "attendees.csv", "text/csv; charset=UTF-8", csv, csv_size };
        }
        r = compose(c, t, k, &vals, key, now, att, n_att, ret, ret_size, ret_err);
out:
        values_clear(&vals);
        session_clear(&s);
        free(ics);
        free(csv);
        return r;
}

/* ---- loading and checking ------------------------------------------------------------ */

static int check_kind(const templates_t *t, int k, char **ret_err)
{
        values_t vals = { 0 };
        char *out = NULL;
        int r;

        for (int i = 0; i < N_VARS; i++)
                set(&vals, i, "Sample \u00e9 <value> & more");
        r = template_render(t->k[k].subject, vals.v, N_VARS, false, &out, ret_err);
        free(out);
        out = NULL;
        if (r >= 0)
                r = template_render(t->k[k].text, vals.v, N_VARS, false, &out, ret_err);
        free(out);
        out = NULL;
        if (r >= 0 && t->k[k].html)
                r = template_render(t->k[k].html, vals.v, N_VARS, true, &out, ret_err);
        free(out);
        return r;
}

static bool uses_counts(const char *text)
{
        return text && (strstr(text, "booked_count") || strstr(text, "seats_left"));
}

static int load_kind(const char *dir, templates_t *t, int k, char **ret_err)
{
        char path[4096], *txt = NULL, *err = NULL;
        int r;

        snprintf(path, sizeof(path), "%s/%s.txt", dir, kind_to_string(k));
        r = read_file(path, &txt);
        if (r < 0) {
                if (asprintf(ret_err, "%s: %s", path, r == -EINVAL ? "holds a NUL byte" : strerror(-r)) < 0)
                        *ret_err = NULL;
                return r;
        }
        {
                /* the whole file first, so an error names the line of the file */
                char *out = NULL;

                r = template_render(txt, NULL, 0, false, &out, &err);
                free(out);
        }
        if (r >= 0)
                r = template_split_subject(txt, &t->k[k].subject, &t->k[k].text, &err);
        free(txt);
        if (r >= 0) {
                snprintf(path, sizeof(path), "%s/%s.html", dir, kind_to_string(k));
                r = read_file(path, &t->k[k].html);
                if (r == -ENOENT)
                        r = 0;
                else if (r < 0 && asprintf(&err, "%s", strerror(-r)) < 0)
                        err = NULL;
        }
        if (r >= 0)
                r = check_kind(t, k, &err);
        if (r >= 0)
                t->k[k].counts = uses_counts(t->k[k].subject) || uses_counts(t->k[k].text) ||
                                 uses_counts(t->k[k].html);
        if (r < 0 && asprintf(ret_err, "%s: %s", path, err ? err : "cannot be rendered") < 0)
                *ret_err = NULL;
        free(err);
        return r;
}

int templates_load(const char *dir, const config_t *c, templates_t **ret, char **ret_err)
{
        templates_t *t = calloc(1, sizeof(*t));
        int r = 0;

        (void) c;
        if (!t)
                return -ENOMEM;
        for (int k = 0; k < _KIND_MAX && r >= 0; k++)
                r = load_kind(dir, t, k, ret_err);
        if (r < 0) {
                templates_free(t);
                return r;
        }
        *ret = t;
        return 0;
}
