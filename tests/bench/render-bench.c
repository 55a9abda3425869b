/* render-bench.c - the CPU one email costs to build, and a fingerprint of what is built.
 *
 *   render-bench [-t TEMPLATES] [N]   build N confirmation and N joining_link emails (the
 *                                     two of the delivery benchmark) and print microseconds
 *                                     of CPU per email for each, with a hash of the email
 *   render-bench [-t TEMPLATES] --check
 *                                     print a hash of every kind rendered from varied data
 *                                     and of many generated messages (odd bytes, long lines,
 *                                     leading dots, invalid UTF-8): equal output before and
 *                                     after a change to the content code means the same
 *                                     bytes on the wire
 *
 * Run from the top of the tree (the templates default to etc/templates). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "config.h"
#include "message.h"
#include "render.h"

static char *roster_to[] = { "mecc-team@example.org" };

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
        const unsigned char *s = p;

        for (size_t i = 0; i < n; i++) {
                h ^= s[i];
                h *= UINT64_C(0x100000001b3);
        }
        return h;
}

static int64_t at(const char *local)
{
        int64_t t;

        if (clock_parse_time(local, &t) < 0) {
                fprintf(stderr, "bad time %s\n", local);
                exit(1);
        }
        return t;
}

static double cpu_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

typedef struct {
        config_t c;
        templates_t *t;
        session_t s, next[3];
        registration_t g, roster[3];
        mail_unreachable_t unreachable[2];
} env_t;

static void env_init(env_t *e, const char *dir)
{
        char *err = NULL;

        if (clock_set_zone("Europe/London") < 0) {
                fprintf(stderr, "no zone Europe/London\n");
                exit(1);
        }
        /* as the delivery benchmark configures it (tests/bench/run.sh), with the defaults */
        e->c = (config_t) {
                .booking_cutoff = { 7, 0 },
                .elearning_url = "https://learn.example.org/mecc",
                .signpost_url = "https://livewell.oxfordshire.gov.uk/",
                .feedback_url = "https://hub.example.org/feedback",
                .cancel_url = "https://hub.example.org/cancel?t={{token}}",
                .organisation = "Oxfordshire MECC Training",
                .roster_to = roster_to,
                .n_roster_to = 1,
                .smtp = { .from = "Oxfordshire MECC Training <mecc@example.org>",
                          .from_addr = "mecc@example.org" },
        };
        if (templates_load(dir, &e->c, &e->t, &err) < 0) {
                fprintf(stderr, "templates %s: %s\n", dir, err ? err : "cannot be loaded");
                exit(1);
        }
        e->s = (session_t) { .id = 7, .title = "MECC Live Online Training",
                             .starts_at = at("2026-09-22 10:30"), .ends_at = at("2026-09-22 12:00"),
                             .capacity = 12, .join_url = "https://meet.example.org/mecc-0922",
                             .status = SESSION_OPEN, .booked = 3, .seq = 1 };
        e->g = (registration_t) { .id = 42, .session_id = 7, .name = "Si\xc3\xa2n \xc3\x93 Briain",
                                  .email = "sian@example.org", .status = REG_BOOKED,
                                  .token = "3f9c2a7e41d04b8c", .registered_at = at("2026-09-01 09:00") };
        for (int i = 0; i < 3; i++) {
                e->next[i] = e->s;
                e->next[i].id = 8 + i;
                e->next[i].starts_at += (i + 1) * 7 * 86400;
                e->next[i].ends_at += (i + 1) * 7 * 86400;
                e->next[i].booked = 10 + i;
                e->roster[i] = e->g;
                e->roster[i].id = 43 + i;
        }
        e->roster[1].name = "Ann \"Nan\" O'Other, RGN";
        e->roster[1].email = "ann@example.org";
        e->roster[2].elearning_done_at = at("2026-09-10 12:00");
        e->unreachable[0] = (mail_unreachable_t) { 42, "Si\xc3\xa2n", "sian@example.org",
                                                   "550 5.1.1 no such user", "MECC Live",
                                                   e->s.starts_at, e->s.ends_at };
        e->unreachable[1] = (mail_unreachable_t) { 43, "Bob", "bob@example.org", NULL, "MECC Live",
                                                   e->s.starts_at, e->s.ends_at };
}

static int render(env_t *e, kind_t kind, const mail_data_t *d, char **ret, size_t *ret_size)
{
        mail_key_t key = { kind, kind == KIND_ELEARNING_REMINDER ? "link-waiting" : "", d->session->id,
                           d->registration ? d->registration->id : 0,
                           d->registration ? d->registration->email : "mecc-team@example.org",
                           "<1.42.7f3a9c@example.org>" };
        char *err = NULL;
        int r = render_mail(&e->c, e->t, &key, d, at("2026-09-20 10:00"), ret, ret_size, &err);

        if (r < 0) {
                fprintf(stderr, "render %s: %d %s\n", kind_to_string(kind), r, err ? err : "");
                free(err);
        }
        return r;
}

static void bench(env_t *e, kind_t kind, long n)
{
        mail_data_t d = { .session = &e->s, .registration = &e->g, .instance = "5b1e0c9a" };
        uint64_t h = UINT64_C(0xcbf29ce484222325);
        size_t size = 0;
        double t0;
        char *m;

        /* one to warm up, and to fingerprint */
        if (render(e, kind, &d, &m, &size) < 0)
                exit(1);
        h = fnv1a(h, m, size);
        free(m);
        t0 = cpu_us();
        for (long i = 0; i < n; i++) {
                if (render(e, kind, &d, &m, &size) < 0)
                        exit(1);
                free(m);
        }
        printf("%-14s %7.2f us/email  %5zu bytes  hash %016" PRIx64 "\n", kind_to_string(kind),
               (cpu_us() - t0) / n, size, h);
}

/* ---- --check -------------------------------------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15;

static uint32_t rnd(uint32_t n)
{
        /* xorshift64*: the same sequence everywhere */
        rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
        return (uint32_t) ((rng * UINT64_C(0x2545f4914f6cdd1d)) >> 32) % n;
}

/* Text made to hit the encoders' corners. */
static char *gen_text(size_t max)
{
        static const char *const bits[] = {
                " ", "  ", "\t", "\n", "\r\n", "\r", ".", "From ", "=", "=?", "?=", "\xc3\xa9",
                "\xe2\x80\x94", "\xf0\x9f\x98\x80", "\xff", "\xc3", "\xe2\x80", "\x01", "\x7f",
                "\xc2\x85", "\xe2\x80\xa8", "\"", "\\", "<", ">", "&", "'", "_", "@", "(", ";",
                "hello", "World", "a", "https://example.org/x?y=1&z=2", "~", "}}", "{{",
        };
        size_t n = rnd((uint32_t) max + 1), len = 0;
        char *s = malloc(n * 40 + 1);

        for (size_t i = 0; i < n; i++) {
                const char *b;
                char word[32];

                if (rnd(3) == 0) {
                        size_t w = 1 + rnd(rnd(4) == 0 ? 30 : 8);

                        for (size_t k = 0; k < w; k++)
                                word[k] = (char) ('a' + rnd(26));
                        word[w] = 0;
                        b = word;
                } else if (rnd(40) == 0) {
                        word[0] = (char) (1 + rnd(255));
                        word[1] = 0;
                        b = word;
                } else
                        b = bits[rnd(sizeof(bits) / sizeof(bits[0]))];
                memcpy(s + len, b, strlen(b));
                len += strlen(b);
        }
        s[len] = 0;
        return s;
}

static uint64_t check_messages(long n)
{
        uint64_t h = UINT64_C(0xcbf29ce484222325);

        for (long i = 0; i < n; i++) {
                char *name = gen_text(8), *subject = gen_text(rnd(5) ? 12 : 60),
                     *text = gen_text(rnd(4) ? 60 : 600), *html = rnd(2) ? gen_text(200) : NULL,
                     *data = gen_text(100), *fn = gen_text(6), *out = NULL;
                attachment_t att = { rnd(4) ? "invite.ics" : fn, rnd(3) ? "text/calendar" : subject,
                                     data, strlen(data) };
                message_t m = {
                        .from = rnd(2) ? "Oxfordshire MECC Training <mecc@example.org>" : "mecc@example.org",
                        .to_name = rnd(5) ? name : NULL, .to_addr = rnd(5) ? "sian@example.org" : "si.an+x@example.org",
                        .reply_to = rnd(3) ? NULL : "\"Team, MECC\" <team@example.org>",
                        .subject = subject, .message_id = "<1.42.7f3a9c@example.org>",
                        .date = 1790000000 + (int64_t) rnd(100000000), .text = text, .html = html,
                        .attachments = &att, .n_attachments = rnd(3) == 0,
                };
                size_t size = 0;
                int r = message_build(&m, &out, &size);

                h = fnv1a(h, &r, sizeof(r));
                if (r >= 0)
                        h = fnv1a(h, out, size);
                free(out);
                free(name), free(subject), free(text), free(html), free(data), free(fn);
        }
        return h;
}

static void check(env_t *e)
{
        static const char *const names[] = { "Si\xc3\xa2n \xc3\x93 Briain", "Ann", "",
                                             "\xe5\xbc\xa0\xe4\xbc\x9f \xe6\x9d\x8e",
                                             "Dr. Jo  O'Neill-Smythe", "x\x01y\xff" };
        static const char *const titles[] = { "MECC Live Online Training",
                                              "Caf\xc3\xa9 & <b>chat</b>, \"MECC\"; 2026",
                                              "\xe2\x80\x94 a very long title that goes on and on, "
                                              "past the fold of a header line and on again, "
                                              "to show how a subject is folded \xf0\x9f\x98\x80" };
        uint64_t total = UINT64_C(0xcbf29ce484222325);

        for (int k = 0; k < _KIND_MAX; k++) {
                uint64_t h = UINT64_C(0xcbf29ce484222325);

                for (size_t ni = 0; ni < sizeof(names) / sizeof(names[0]); ni++)
                        for (size_t ti = 0; ti < sizeof(titles) / sizeof(titles[0]); ti++)
                                for (int elearn = 0; elearn < 2; elearn++) {
                                        registration_t g = e->g;
                                        session_t s = e->s;
                                        mail_data_t d = { .session = &s, .registration = &g,
                                                          .roster = e->roster, .n_roster = ti,
                                                          .next = e->next, .n_next = ni % 4,
                                                          .instance = "5b1e0c9a",
                                                          .unreachable = e->unreachable,
                                                          .n_unreachable = ni % 3 };
                                        char *m = NULL;
                                        size_t size = 0;
                                        int r;

                                        g.name = (char *) names[ni];
                                        s.title = (char *) titles[ti];
                                        s.join_url = ni == 2 ? NULL : s.join_url;
                                        e->c.require_elearning = elearn;
                                        if (kind_info(k)->to_session)
                                                d.registration = NULL;
                                        r = render(e, k, &d, &m, &size);
                                        h = fnv1a(h, &r, sizeof(r));
                                        if (r >= 0)
                                                h = fnv1a(h, m, size);
                                        free(m);
                                }
                e->c.require_elearning = false;
                printf("%-20s %016" PRIx64 "\n", kind_to_string(k), h);
                total = fnv1a(total, &h, sizeof(h));
        }
        {
                uint64_t h = check_messages(20000);

                printf("%-20s %016" PRIx64 "\n", "generated", h);
                total = fnv1a(total, &h, sizeof(h));
        }
        printf("%-20s %016" PRIx64 "\n", "all", total);
}

int main(int argc, char **argv)
{
        const char *dir = "etc/templates";
        bool do_check = false;
        long n = 20000;
        env_t e;

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "-t") == 0 && i + 1 < argc)
                        dir = argv[++i];
                else if (strcmp(argv[i], "--check") == 0)
                        do_check = true;
                else if ((n = strtol(argv[i], NULL, 10)) <= 0) {
                        fprintf(stderr, "usage: %s [-t TEMPLATES] [N | --check]\n", argv[0]);
                        return 64;
                }
        }
        env_init(&e, dir);
        if (do_check)
                check(&e);
        else {
                bench(&e, KIND_CONFIRMATION, n);
                bench(&e, KIND_JOINING_LINK, n);
        }
        templates_free(e.t);
        return 0;
}
