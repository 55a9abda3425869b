/* ctl-print.c - meccctl's output: one printer per record, each knowing its text and its
 * JSON (SPEC 9: times as ISO 8601 UTC, absent values as null; text in local time). */
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "ctl.h"
#include "plan.h"

/* ---- JSON values --------------------------------------------------------------------------- */

static void json_str(const char *s)
{
        if (!s) {
                fputs("null", stdout);
                return;
        }
        putchar('"');
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                if (*p == '"' || *p == '\\')
                        printf("\\%c", *p);
                else if (*p < 0x20)
                        printf("\\u%04x", *p);
                else
                        putchar(*p);
        }
        putchar('"');
}

void ctl_json_str(const char *s)
{
        json_str(s);
}

/* An erased name or address is "" in the database: null here. */
static void json_erased(const char *s)
{
        json_str(s && *s ? s : NULL);
}

static void json_time(int64_t t)
{
        char buf[32];

        if (!t) {
                fputs("null", stdout);
                return;
        }
        clock_format_iso(t, buf, sizeof(buf));
        printf("\"%s\"", buf);
}

static void json_id(int64_t id)
{
        if (id)
                printf("%lld", (long long) id);
        else
                fputs("null", stdout);
}

/* Before a record: the comma between list items. */
static void json_begin(ctl_t *x)
{
        if (x->in_list && x->n_items)
                putchar(',');
        x->n_items++;
}

/* After a record printed alone: the line ends. */
static void json_end(const ctl_t *x)
{
        if (!x->in_list)
                putchar('\n');
}

static const char *local_time(int64_t t, char *buf, size_t n)
{
        if (!t)
                return "-";
        clock_format_local(t, buf, n);
        return buf;
}

static const char *or_unknown(const char *s)
{
        return s ? s : "unknown";
}

/* ---- lists --------------------------------------------------------------------------------- */

void ctl_list_begin(ctl_t *x, void (*header)(const ctl_t *x))
{
        x->in_list = true;
        x->n_items = 0;
        if (x->json)
                putchar('[');
        else if (header)
                header(x);
}

void ctl_list_end(ctl_t *x, const char *empty_text)
{
        if (x->json)
                puts("]");
        else if (!x->n_items && empty_text)
                puts(empty_text);
        x->in_list = false;
}

/* ---- sessions ------------------------------------------------------------------------------ */

void print_session_header(const ctl_t *x)
{
        (void) x;
        printf("%-4s %-9s %-22s %7s %4s  %-22s %s\n", "ID", "STATUS", "STARTS", "BOOKED", "WAIT",
               "BOOKINGS CLOSE", "TITLE");
}

/* The settings of the session's course (SPEC 11); the global ones for a course not configured. */
static const config_t *settings_of(const ctl_t *x, const session_t *s)
{
        const config_t *c = config_settings(x->cfg, s->course);

        return c ? c : x->cfg;
}

static void session_json(const ctl_t *x, const session_t *s)
{
        printf("{\"id\":%lld,\"title\":", (long long) s->id);
        json_str(s->title);
        fputs(",\"starts_at\":", stdout);
        json_time(s->starts_at);
        fputs(",\"ends_at\":", stdout);
        json_time(s->ends_at);
        fputs(",\"closes_at\":", stdout);
        json_time(plan_cutoff(settings_of(x, s), s->starts_at, s->closes_at));
        printf(",\"capacity\":%ld,\"status\":", s->capacity);
        json_str(session_status_to_string(s->status));
        printf(",\"booked\":%ld,\"waitlisted\":%ld,\"seats_left\":%ld,\"full\":%s,\"sequence\":%ld,"
               "\"join_url\":", s->booked, s->waitlisted, session_seats_left(s),
               session_seats_left(s) == 0 ? "true" : "false", s->seq);
        json_str(s->join_url);
        fputs(",\"elearning_url\":", stdout);
        json_str(s->elearning_url);
        fputs(",\"trainer_email\":", stdout);
        json_str(s->trainer_email);
        fputs(",\"course\":", stdout);
        json_str(s->course);
        fputs(",\"problem\":", stdout);
        json_str(s->problem);
        putchar('}');
}

static void session_detail(const ctl_t *x, const session_t *s)
{
        char a[64], b[64], c[64];

        printf("Session %lld: %s\n  status:    %s\n  starts:    %s\n  ends:      %s\n"
               "  bookings:  close %s\n  places:    %ld booked of %ld, %ld waiting\n"
               "  join:      %s\n  e-learning: %s\n  trainer:   %s\n",
               (long long) s->id, s->title, or_unknown(session_status_to_string(s->status)),
               local_time(s->starts_at, a, sizeof(a)), local_time(s->ends_at, b, sizeof(b)),
               local_time(plan_cutoff(settings_of(x, s), s->starts_at, s->closes_at), c, sizeof(c)),
               s->booked, s->capacity, s->waitlisted, s->join_url ? s->join_url : "-",
               s->elearning_url ? s->elearning_url : "(default)",
               s->trainer_email ? s->trainer_email : "(roster_to)");
        printf("  course:    %s\n", s->course ? s->course : "(none)");
        if (s->problem)
                printf("  held back: %s\n", s->problem);
}

void print_session(ctl_t *x, const session_t *s, bool detail)
{
        char a[64], b[64];

        if (x->json) {
                json_begin(x);
                session_json(x, s);
                json_end(x);
                return;
        }
        x->n_items++;
        if (detail) {
                session_detail(x, s);
                return;
        }
        printf("%-4lld %-9s %-22s %3ld/%-3ld %4ld  %-22s %s\n", (long long) s->id,
               or_unknown(session_status_to_string(s->status)), local_time(s->starts_at, a, sizeof(a)),
               s->booked, s->capacity, s->waitlisted,
               local_time(plan_cutoff(x->cfg, s->starts_at, s->closes_at), b, sizeof(b)), s->title);
}

/* ---- registrations ------------------------------------------------------------------------- */

void print_registration_header(const ctl_t *x)
{
        (void) x;
        printf("%-5s %-7s %-10s %-22s %-22s %-30s %s\n", "ID", "SESSION", "STATUS", "REGISTERED",
               "E-LEARNING DONE", "EMAIL", "NAME");
}

void print_registration(ctl_t *x, const registration_t *g)
{
        char a[64], b[64];

        if (x->json) {
                json_begin(x);
                printf("{\"id\":%lld,\"session_id\":%lld,\"name\":", (long long) g->id,
                       (long long) g->session_id);
                json_erased(g->name);
                fputs(",\"email\":", stdout);
                json_erased(g->email);
                fputs(",\"status\":", stdout);
                json_str(reg_status_to_string(g->status));
                fputs(",\"registered_at\":", stdout);
                json_time(g->registered_at);
                fputs(",\"elearning_done_at\":", stdout);
                json_time(g->elearning_done_at);
                printf(",\"attended\":%s,\"attended_minutes\":",
                       g->attended < 0 ? "null" : g->attended ? "true" : "false");
                if (g->attended_minutes >= 0)
                        printf("%lld", (long long) g->attended_minutes);
                else
                        fputs("null", stdout);
                fputs(",\"organisation\":", stdout);
                json_str(g->organisation);
                printf(",\"unreachable\":%s,\"unreachable_reason\":", g->unreachable_at ? "true" : "false");
                json_str(g->unreachable_reason);
                putchar('}');
                json_end(x);
                return;
        }
        x->n_items++;
        printf("%-5lld %-7lld %-10s %-22s %-22s %-30s %s\n", (long long) g->id, (long long) g->session_id,
               or_unknown(reg_status_to_string(g->status)), local_time(g->registered_at, a, sizeof(a)),
               local_time(g->elearning_done_at, b, sizeof(b)), *g->email ? g->email : "(erased)",
               *g->name ? g->name : "(erased)");
}

/* ---- outbox rows --------------------------------------------------------------------------- */

void print_outbox_header(const ctl_t *x)
{
        (void) x;
        printf("%-6s %-8s %-5s %-19s %-8s %-3s %-22s %s\n", "ID", "STATUS", "REG", "KIND", "OCCASION",
               "TRY", "SENT / NEXT TRY", "LAST ERROR");
}

void print_outbox_row(ctl_t *x, const mail_row_t *o)
{
        char a[64], reg[24] = "-";

        if (x->json) {
                json_begin(x);
                printf("{\"id\":%lld,\"registration_id\":", (long long) o->id);
                json_id(o->registration_id);
                printf(",\"session_id\":%lld,\"kind\":", (long long) o->session_id);
                json_str(kind_to_string(o->kind));
                fputs(",\"occasion\":", stdout);
                json_str(o->occasion);
                fputs(",\"recipient\":", stdout);
                json_erased(o->recipient);
                fputs(",\"status\":", stdout);
                json_str(mail_status_to_string(o->status));
                printf(",\"attempts\":%ld,\"created_at\":", o->attempts);
                json_time(o->created_at);
                fputs(",\"sent_at\":", stdout);
                json_time(o->sent_at);
                fputs(",\"next_attempt_at\":", stdout);
                json_time(o->next_attempt_at);
                fputs(",\"last_error\":", stdout);
                json_str(o->last_error);
                fputs(",\"message_id\":", stdout);
                json_str(o->message_id);
                putchar('}');
                json_end(x);
                return;
        }
        x->n_items++;
        if (o->registration_id)
                snprintf(reg, sizeof(reg), "%lld", (long long) o->registration_id);
        /* a session email's occasion is its address: not shown in the table */
        printf("%-6lld %-8s %-5s %-19s %-8s %-3ld %-22s %s\n", (long long) o->id,
               or_unknown(mail_status_to_string(o->status)), reg, or_unknown(kind_to_string(o->kind)),
               *o->occasion && o->registration_id ? o->occasion : "-", o->attempts,
               local_time(o->sent_at ? o->sent_at : o->next_attempt_at, a, sizeof(a)),
               o->last_error ? o->last_error : "");
}

/* ---- the dry run --------------------------------------------------------------------------- */

void print_upcoming_header(const ctl_t *x)
{
        (void) x;
        printf("%-22s %-19s %-6s %s\n", "AT", "KIND", "REG", "SESSION");
}

void print_upcoming(ctl_t *x, const upcoming_t *u)
{
        char a[64], reg[24] = "-";

        if (x->json) {
                json_begin(x);
                fputs("{\"at\":", stdout);
                json_time(u->at);
                fputs(",\"kind\":", stdout);
                json_str(kind_to_string(u->kind));
                fputs(",\"registration_id\":", stdout);
                json_id(u->registration_id);
                printf(",\"session_id\":%lld}", (long long) u->session_id);
                json_end(x);
                return;
        }
        x->n_items++;
        if (u->registration_id)
                snprintf(reg, sizeof(reg), "%lld", (long long) u->registration_id);
        printf("%-22s %-19s %-6s %lld\n", local_time(u->at, a, sizeof(a)), or_unknown(kind_to_string(u->kind)),
               reg, (long long) u->session_id);
}

/* ---- status -------------------------------------------------------------------------------- */

static const char *plural(long n, const char *many)
{
        return n == 1 ? "" : many;
}

/* "is it healthy?" in one line, with what to look at when it is not */
static void print_verdict(const ctl_t *x, const health_t *h)
{
        const char *sep = "";

        if (h->healthy) {
                puts("health:            OK");
                return;
        }
        fputs("health:            needs attention: ", stdout);
        if (!h->scanning) {
                if (h->last_scan_at)
                        printf("no scan for %lld minutes (is meccd running?)",
                               (long long) ((x->now - h->last_scan_at) / 60));
                else
                        fputs("meccd has never scanned this database (is it running?)", stdout);
                sep = "; ";
        }
        if (h->overdue) {
                printf("%s%ld email%s waiting for over an hour (is the mail relay up?)", sep, h->overdue,
                       plural(h->overdue, "s"));
                sep = "; ";
        }
        if (h->failed) {
                printf("%s%ld email%s failed", sep, h->failed, plural(h->failed, "s"));
                sep = "; ";
        }
        if (h->held_back) {
                printf("%s%ld session%s held back (below)", sep, h->held_back, plural(h->held_back, "s"));
                sep = "; ";
        }
        if (h->relay_problem[0]) {
                printf("%s%s", sep, h->relay_problem);
                sep = "; ";
        }
        if (h->db_problem[0]) {
                printf("%s%s", sep, h->db_problem);
                sep = "; ";
        }
        if (h->stuck)
                printf("%s%ld new registration%s the last scan left unprocessed", sep, h->stuck,
                       plural(h->stuck, "s"));
        putchar('\n');
}


static int print_source_json(const source_row_t *s, void *userdata)
{
        ctl_t *x = userdata;

        if (x->n_items++)
                putchar(',');
        fputs("{\"name\":", stdout);
        json_str(s->name);
        fputs(",\"url\":", stdout);
        json_str(s->url);
        fputs(",\"last_attempt_at\":", stdout);
        json_time(s->last_attempt_at);
        fputs(",\"last_good_at\":", stdout);
        json_time(s->last_good_at);
        printf(",\"applied\":%ld,\"skipped\":%ld,\"last_error\":", s->applied, s->skipped);
        json_str(s->last_error);
        putchar('}');
        return 0;
}

/* "source hub:        last good fetch 2026-..; 12 rows applied, 1 skipped" */
static int print_source_text(const source_row_t *s, void *userdata)
{
        char a[64], label[64];

        (void) userdata;
        snprintf(label, sizeof(label), "source %s:", s->name);
        printf("%-19s", label);
        if (s->last_good_at)
                printf("last good fetch %s; %ld row%s applied, %ld skipped%s\n",
                       local_time(s->last_good_at, a, sizeof(a)), s->applied, plural(s->applied, "s"),
                       s->skipped, s->skipped ? " (see the journal for their lines)" : "");
        else
                printf("no good fetch yet\n");
        if (s->last_error)
                printf("%-19s%s (at %s)\n", "", s->last_error, local_time(s->last_attempt_at, a, sizeof(a)));
        return 0;
}

void print_status(ctl_t *x, const health_t *h)
{
        char a[64];

        if (x->json) {
                json_begin(x);
                printf("{\"healthy\":%s,\"open_sessions\":%ld,\"seats_left\":%ld,"
                       "\"unprocessed_registrations\":%ld,\"queued\":%ld,\"overdue\":%ld,"
                       "\"failed\":%ld,\"held_back\":%ld,\"last_scan_at\":", h->healthy ? "true" : "false",
                       h->open_sessions, h->seats_left, h->unprocessed, h->queued, h->overdue, h->failed,
                       h->held_back);
                json_time(h->last_scan_at);
                printf(",\"unreachable\":%ld", h->unreachable);
                fputs(",\"relay_problem\":", stdout);
                json_str(h->relay_problem[0] ? h->relay_problem : NULL);
                fputs(",\"relay_problem_at\":", stdout);
                json_time(h->relay_problem_at);
                printf(",\"stuck_registrations\":%ld,\"held_sessions\":%ld,\"invalid_registrations\":%ld",
                       h->stuck, h->held_sessions, h->invalid);
                fputs(",\"database_problem\":", stdout);
                json_str(h->db_problem[0] ? h->db_problem : NULL);
                fputs(",\"sources\":[", stdout);
                {
                        size_t n = x->n_items;

                        x->n_items = 0;
                        (void) report_sources(x->db, x->cfg, print_source_json, x);
                        x->n_items = n;
                }
                fputs("]}", stdout);
                json_end(x);
                return;
        }
        print_verdict(x, h);
        printf("open sessions:     %ld (%ld place%s left)\n", h->open_sessions, h->seats_left,
               plural(h->seats_left, "s"));
        printf("new registrations: %ld waiting for the next scan\n", h->unprocessed);
        printf("outbox:            %ld queued, %ld failed%s\n", h->queued, h->failed,
               h->failed ? " (see: meccctl outbox list --status failed)" : "");
        printf("last scan:         %s\n", h->last_scan_at ? local_time(h->last_scan_at, a, sizeof(a)) : "never");
        if (h->unreachable)
                printf("unreachable:       %ld registration%s of sessions to come"
                       " (see: meccctl registrations list --unreachable)\n", h->unreachable,
                       plural(h->unreachable, "s"));
        if (h->relay_problem[0])
                printf("relay:             %s (since %s; fix it, then: meccctl outbox flush)\n",
                       h->relay_problem, local_time(h->relay_problem_at, a, sizeof(a)));
        if (h->invalid)
                printf("invalid:           %ld registration%s refused (%s)\n", h->invalid,
                       plural(h->invalid, "s"), h->invalid_reasons);
        (void) report_sources(x->db, x->cfg, print_source_text, NULL);
}
