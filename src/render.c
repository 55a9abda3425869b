/* render.c - the values of one email, its template and attachments, built into bytes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "addr.h"
#include "buf.h"
#include "clock.h"
#include "csv.h"
#include "ics.h"
#include "message.h"
#include "render.h"
#include "template.h"
#include "text.h"

struct templates {
        struct {
                char *subject, *text, *html;
                bool counts; /* speaks of booked_count or seats_left */
        } k[_KIND_MAX];
        char *course;                   /* a course's set (SPEC 11); NULL: the global one */
        struct templates **courses;     /* the global set's: one per configured course */
        size_t n_courses;
};

templates_t *templates_free(templates_t *t)
{
        if (!t)
                return NULL;
        for (int i = 0; i < _KIND_MAX; i++) {
                free(t->k[i].subject);
                free(t->k[i].text);
                free(t->k[i].html);
        }
        for (size_t i = 0; i < t->n_courses; i++)
                templates_free(t->courses[i]);
        free(t->courses);
        free(t->course);
        free(t);
        return NULL;
}

const templates_t *templates_for(const templates_t *t, const char *course)
{
        if (!course || !*course)
                return t;
        for (size_t i = 0; i < t->n_courses; i++)
                if (strcmp(t->courses[i]->course, course) == 0)
                        return t->courses[i];
        return NULL;
}

/* ---- values --------------------------------------------------------------------- */

enum {
        V_NAME, V_EMAIL, V_TITLE, V_DATE, V_TIME, V_JOIN, V_ELEARNING, V_SIGNPOST, V_FEEDBACK,
        V_ORG, V_CANCEL, V_NEXT, V_TOKEN, V_ATTENDEES, V_BOOKED, V_CAPACITY, V_SEATS,
        V_TIME_TO_GO, V_NOTE, V_CHANGES, V_TRAINER, V_UNREACHABLE, N_VARS
};

static const char *const var_names[N_VARS] = {
        "name", "email", "session_title", "session_date", "session_time", "join_url",
        "elearning_url", "signpost_url", "feedback_url", "organisation", "cancel_url",
        "next_sessions", "token", "attendees", "booked_count", "capacity", "seats_left",
        "time_to_go", "reminder_note", "changes", "trainer_email", "unreachable",
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

/* A title as it is shown: one line, and bounded (the website writes it; a megabyte of
 * title must not make a megabyte of email). Cut on a character boundary. */
static char *title_of(const session_t *s)
{
        char *t = text_one_line(s->title);
        size_t n;

        if (!t || strlen(t) <= RENDER_TITLE_MAX)
                return t;
        n = RENDER_TITLE_MAX - 3; /* room for the ellipsis, 3 bytes in UTF-8 */
        while (n > 0 && ((unsigned char) t[n] & 0xc0) == 0x80)
                n--;
        strcpy(t + n, "\u2026");
        return t;
}

char *render_change_note(int64_t old_start, int64_t old_end, const char *old_join,
                         int64_t start, int64_t end, const char *join)
{
        char *buf = NULL, date[96], range[64];
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return NULL;
        if (start != old_start || end != old_end) {
                clock_format_date(start, date, sizeof(date));
                clock_format_time_range(start, end, range, sizeof(range));
                fprintf(f, "The session now takes place on %s, %s.", date, range);
        }
        /* the link itself is shown by the template, and held back with require_elearning */
        if (join && *join && (!old_join || strcmp(join, old_join) != 0))
                fprintf(f, "%sThe joining link has changed.", ftell(f) ? "\n" : "");
        fclose(f);
        return buf;
}

static void set_session(values_t *vals, const config_t *c, const session_t *s, const char *join)
{
        char date[96], time_s[64], buf[32];

        clock_format_date(s->starts_at, date, sizeof(date));
        clock_format_time_range(s->starts_at, s->ends_at, time_s, sizeof(time_s));
        set_owned(vals, V_TITLE, title_of(s));
        set_owned(vals, V_DATE, strdup(date));
        set_owned(vals, V_TIME, strdup(time_s));
        set(vals, V_JOIN, join);
        set(vals, V_ELEARNING, s->elearning_url && *s->elearning_url ? s->elearning_url : c->elearning_url);
        set(vals, V_TRAINER, s->trainer_email);
        snprintf(buf, sizeof(buf), "%ld", s->booked);
        set_owned(vals, V_BOOKED, strdup(buf));
        snprintf(buf, sizeof(buf), "%ld", s->capacity);
        set_owned(vals, V_CAPACITY, strdup(buf));
        snprintf(buf, sizeof(buf), "%ld", session_seats_left(s));
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

/* Upcoming sessions still taking bookings, for the emails that offer another date. */
static char *next_sessions(const session_t *next, size_t n_next)
{
        buf_t b = BUF_INIT(RENDER_LIST_MAX);
        char *out = NULL;

        for (size_t i = 0; i < n_next && i < RENDER_NEXT_SESSIONS; i++) {
                const session_t *s = &next[i];
                long left = session_seats_left(s);
                char date[96], time_s[64], places[48], *title;

                clock_format_date(s->starts_at, date, sizeof(date));
                clock_format_time_range(s->starts_at, s->ends_at, time_s, sizeof(time_s));
                if (left == 0)
                        snprintf(places, sizeof(places), "full, waiting list open");
                else
                        snprintf(places, sizeof(places), "%ld place%s left", left, left == 1 ? "" : "s");
                title = title_of(s);
                buf_printf(&b, "%s- %s: %s, %s (%s)", i ? "\n" : "", title ? title : "", date, time_s, places);
                free(title);
        }
        if (!n_next)
                buf_puts(&b, "There are no other sessions open for booking just now. New dates are added\n"
                             "regularly on the training hub, so please look again soon.");
        return buf_steal(&b, &out, NULL) < 0 ? NULL : out;
}

/* The attendee list as text for the body and as CSV for the attachment. */
static int roster(const registration_t *regs, size_t n, char **ret_text, char **ret_csv,
                  size_t *ret_csv_size)
{
        static const char *const header[] = { "name", "email", "status", "registered_at",
                                              "elearning_completed_at" };
        char *text = NULL, *csv = NULL;
        size_t tsize = 0, csize = 0;
        FILE *t, *v;

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
        for (size_t i = 0; i < n; i++) {
                const registration_t *g = &regs[i];
                char reg[32], el[32] = "", day[32] = "";
                const char *row[5];

                clock_format_iso(g->registered_at, reg, sizeof(reg));
                if (g->elearning_done_at) {
                        clock_format_iso(g->elearning_done_at, el, sizeof(el));
                        clock_format_local(g->elearning_done_at, day, sizeof(day));
                        day[10] = '\0';
                }
                row[0] = g->name; row[1] = g->email; row[2] = reg_status_to_string(g->status);
                row[3] = reg; row[4] = el;
                csv_write_row(v, row, 5);
                fprintf(t, "%s%zu. %s <%s>: e-learning %s%s", i ? "\n" : "", i + 1, g->name, g->email,
                        g->elearning_done_at ? "completed " : "not completed yet", day);
        }
        if (!n)
                fputs("Nobody is booked on this session.", t);
        fclose(t);
        fclose(v);
        *ret_text = text;
        *ret_csv = csv;
        *ret_csv_size = csize;
        return 0;
}

void mail_unreachable_free(mail_unreachable_t *v, size_t n)
{
        for (size_t i = 0; v && i < n; i++) {
                free(v[i].name);
                free(v[i].email);
                free(v[i].reason);
                free(v[i].title);
        }
        free(v);
}

/* The coordinators' list: who, on which session, what the server said, and the command
 * that puts it right. Each value on one line: the server's text and the title are
 * another party's words. */
static char *unreachable_list(const mail_unreachable_t *v, size_t n)
{
        buf_t b = BUF_INIT(RENDER_LIST_MAX);
        char *out = NULL;

        for (size_t i = 0; i < n; i++) {
                session_t s = { .title = v[i].title, .starts_at = v[i].starts_at, .ends_at = v[i].ends_at };
                char date[96], time_s[64], *title = title_of(&s), *name = text_one_line(v[i].name),
                     *why = v[i].reason ? text_one_line(v[i].reason) : NULL;

                clock_format_date(v[i].starts_at, date, sizeof(date));
                clock_format_time_range(v[i].starts_at, v[i].ends_at, time_s, sizeof(time_s));
                buf_printf(&b, "%s%s <%s> (registration %lld)\n"
                           "  Session: %s, %s, %s\n"
                           "  The mail server said: %s\n"
                           "  To correct it: meccctl registration edit %lld --email NEW-ADDRESS",
                        i ? "\n\n" : "", name ? name : "", v[i].email, (long long) v[i].registration_id,
                        title ? title : "", date, time_s, why && *why ? why : "(no reason given)",
                        (long long) v[i].registration_id);
                free(title);
                free(name);
                free(why);
        }
        if (!n)
                buf_puts(&b, "Nobody: every address has been put right since.");
        return buf_steal(&b, &out, NULL) < 0 ? NULL : out;
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

char *render_ics_uid(const config_t *c, const char *instance, int64_t session_id)
{
        char *uid = NULL;

        if (asprintf(&uid, "session-%lld.%s%s", (long long) session_id, instance ? instance : "0",
                     config_mail_domain(c)) < 0)
                uid = NULL;
        return uid;
}

static int build_ics(const config_t *c, const mail_data_t *d, const char *join_url,
                     kind_ics_t what, int64_t now, char **ret)
{
        const session_t *s = d->session;
        bool cancel = what == ICS_CANCEL;
        char *uid = render_ics_uid(c, d->instance, s->id), *desc = NULL, *title = title_of(s);
        ics_event_t e = {
                .uid = uid, .sequence = (int) s->seq + (cancel ? 1 : 0), .dtstamp = now,
                .start = s->starts_at, .end = s->ends_at, .tzid = clock_zone(),
                .summary = title, .url = join_url, .organizer = c->smtp.from,
                .cancel = cancel,
        };
        int r;

        if (!uid || !title) {
                free(uid);
                free(title);
                return -ENOMEM;
        }
        if (join_url && *join_url &&
            asprintf(&desc, "Join the session here: %s\n\nPlease join a few minutes early.", join_url) < 0)
                desc = NULL;
        e.description = desc ? desc : "MECC live online training";
        r = ics_build(&e, ret);
        free(uid);
        free(title);
        free(desc);
        return r;
}

/* The joining link this email may carry: none while require_elearning holds it back (in
 * every email, and in the .ics too, not only in joining_link). */
static const char *join_url_for(const config_t *c, const mail_data_t *d)
{
        const registration_t *g = d->registration;

        if (g && c->require_elearning && !g->elearning_done_at)
                return NULL;
        /* only a web link is a link: anything else the website wrote is no link yet */
        return text_is_url(d->session->join_url) ? d->session->join_url : NULL;
}

static int fill(const config_t *c, const mail_key_t *key, const mail_data_t *d, int64_t now,
                values_t *vals, char **ret_csv, size_t *ret_csv_size)
{
        const session_t *s = d->session;
        const registration_t *g = d->registration;
        const char *join = join_url_for(c, d);
        int r;

        set_common(vals, c);
        set_session(vals, c, s, join);
        if (g) {
                if (c->require_elearning && !g->elearning_done_at)
                        set_join_prose(vals, "We will send you the joining link as soon as you have "
                                             "completed the e-learning.");
                else if (!join)
                        set_join_prose(vals, "The link to join is not ready yet: we will email it to "
                                             "you as soon as it is.");
                set_owned(vals, V_NAME, strdup(g->name));
                set_owned(vals, V_EMAIL, strdup(g->email));
                set_owned(vals, V_TOKEN, g->token ? strdup(g->token) : NULL);
                set_owned(vals, V_CANCEL, cancel_url(c, g->token));
        } else {
                if (!join)
                        set_join_prose(vals, "not set yet: please reply to this email with it");
                set(vals, V_NAME, "colleague");
                set(vals, V_EMAIL, key->recipient);
        }
        if (kind_info(key->kind)->next_sessions)
                set_owned(vals, V_NEXT, next_sessions(d->next, d->n_next));
        if (key->kind == KIND_ELEARNING_REMINDER) {
                bool waiting = strcmp(key->occasion, "link-waiting") == 0;

                set_owned(vals, V_TIME_TO_GO, time_to_go(now, s->starts_at));
                set(vals, V_NOTE, waiting ? "Your joining link is ready and waiting: we will send it as soon "
                                            "as you have completed the e-learning." : "");
        }
        if (key->kind == KIND_UNREACHABLE)
                set_owned(vals, V_UNREACHABLE, unreachable_list(d->unreachable, d->n_unreachable));
        if (key->kind == KIND_ROSTER || key->kind == KIND_ATTENDANCE_REQUEST) {
                char *text = NULL;

                r = roster(d->roster, d->n_roster, &text, ret_csv, ret_csv_size);
                /* the attendance request names the booked; the spreadsheet is the roster's */
                if (r >= 0 && key->kind != KIND_ROSTER) {
                        free(*ret_csv);
                        *ret_csv = NULL;
                }
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

bool render_needs_counts(const templates_t *t, kind_t kind)
{
        return kind >= 0 && kind < _KIND_MAX && t->k[kind].counts;
}

int render_mail(const config_t *c, const templates_t *t, const mail_key_t *key,
                const mail_data_t *d, int64_t now, char **ret, size_t *ret_size, char **ret_err)
{
        const kind_info_t *info = kind_info(key->kind);
        values_t vals = { 0 };
        char *ics = NULL, *csv = NULL;
        size_t csv_size = 0, n_att = 0;
        attachment_t att[1];
        int r;

        if (!info || !d->session || (!info->to_session && !d->registration))
                return -EINVAL;
        if (!addr_valid(key->recipient))
                return -EINVAL;
        r = fill(c, key, d, now, &vals, &csv, &csv_size);
        if (r < 0)
                goto out;
        if (info->ics != ICS_NONE) {
                r = build_ics(c, d, join_url_for(c, d), info->ics, now, &ics);
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
        r = compose(c, t, key->kind, &vals, key, now, att, n_att, ret, ret_size, ret_err);
out:
        values_clear(&vals);
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

/* Why a template file could not be read, in words. */
static const char *read_error(int r)
{
        switch (r) {
        case -EBADMSG: return "holds a NUL byte";
        case -EINVAL: return "is not a regular file";
        case -EFBIG: return "is larger than " RENDER_TEMPLATE_MAX_TEXT;
        default: return strerror(-r);
        }
}

static int load_kind(const char *dir, templates_t *t, int k, char **ret_err)
{
        char path[4096], *txt = NULL, *err = NULL;
        int r;

        snprintf(path, sizeof(path), "%s/%s.txt", dir, kind_to_string(k));
        r = text_read_file(path, RENDER_TEMPLATE_MAX, &txt, NULL);
        if (r < 0) {
                if (asprintf(ret_err, "%s: %s", path, read_error(r)) < 0)
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
                r = text_read_file(path, RENDER_TEMPLATE_MAX, &t->k[k].html, NULL);
                if (r == -ENOENT)
                        r = 0;
                else if (r < 0 && asprintf(&err, "%s", read_error(r)) < 0)
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

/* A course's set: the kinds its directory holds, the global template for the others. */
static int load_course(const config_t *cc, const templates_t *base, templates_t **ret, char **ret_err)
{
        templates_t *t = calloc(1, sizeof(*t));
        int r = 0;

        if (!t)
                return -ENOMEM;
        t->course = strdup(cc->course);
        if (!t->course)
                r = -ENOMEM;
        for (int k = 0; k < _KIND_MAX && r >= 0; k++) {
                char path[4096];
                struct stat st;

                snprintf(path, sizeof(path), "%s/%s.txt", cc->templates, kind_to_string(k));
                if (stat(path, &st) == 0) {
                        r = load_kind(cc->templates, t, k, ret_err);
                        continue;
                }
                t->k[k].subject = strdup(base->k[k].subject);
                t->k[k].text = strdup(base->k[k].text);
                t->k[k].html = base->k[k].html ? strdup(base->k[k].html) : NULL;
                t->k[k].counts = base->k[k].counts;
                if (!t->k[k].subject || !t->k[k].text || (base->k[k].html && !t->k[k].html))
                        r = -ENOMEM;
        }
        if (r < 0) {
                templates_free(t);
                return r;
        }
        *ret = t;
        return 0;
}

int templates_load(const char *dir, const config_t *c, templates_t **ret, char **ret_err)
{
        templates_t *t = calloc(1, sizeof(*t));
        int r = 0;

        if (!t)
                return -ENOMEM;
        for (int k = 0; k < _KIND_MAX && r >= 0; k++)
                r = load_kind(dir, t, k, ret_err);
        if (r >= 0 && c && c->n_courses) {
                t->courses = calloc(c->n_courses, sizeof(*t->courses));
                if (!t->courses)
                        r = -ENOMEM;
                for (size_t i = 0; r >= 0 && i < c->n_courses; i++) {
                        r = load_course(c->courses[i], t, &t->courses[i], ret_err);
                        if (r >= 0)
                                t->n_courses++;
                }
        }
        if (r < 0) {
                templates_free(t);
                return r;
        }
        *ret = t;
        return 0;
}
