/* test-message.c - the wire form a mail client (and an attacker) sees. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "message.h"

#define SEP_2026_1030 INT64_C(1790069400) /* Tue 22 Sep 2026 10:30 BST */
#define JAN_2026_1030 INT64_C(1768300200) /* Tue 13 Jan 2026 10:30 GMT */

static message_t base(void) {
        return (message_t) {
                .from = "MECC Training <mecc@example.org>",
                .to_name = "Alex Smith",
                .to_addr = "alex@example.org",
                .subject = "Your place is booked",
                .message_id = "<outbox-1@meccd.example.org>",
                .date = SEP_2026_1030,
                .text = "Hello Alex,\n\nSee you there.\n",
        };
}

static char *build(const message_t *m) {
        char *out = NULL;
        size_t n = 0;

        assert_int_equal(message_build(m, &out, &n), 0);
        assert_non_null(out);
        assert_int_equal(strlen(out), n);
        return out;
}

/* The header section, unfolded: "Name: value\n" per field. */
static char *unfolded_headers(const char *msg) {
        const char *end = strstr(msg, "\r\n\r\n");
        char *out, *o;

        assert_non_null(end);
        out = o = malloc(end - msg + 2);
        assert_non_null(out);
        for (const char *p = msg; p < end; p++) {
                if (p[0] == '\r' && p[1] == '\n' && (p[2] == ' ' || p[2] == '\t')) {
                        p++;
                        continue;
                }
                if (p[0] == '\r' && p[1] == '\n') {
                        *o++ = '\n';
                        p++;
                        continue;
                }
                *o++ = *p;
        }
        *o++ = '\n';
        *o = 0;
        return out;
}

/* The unfolded value of one header (first occurrence), or NULL. */
static char *header(const char *msg, const char *name) {
        char *h = unfolded_headers(msg), *res = NULL;
        size_t n = strlen(name);

        for (char *line = h; *line;) {
                char *nl = strchr(line, '\n');

                if (strncmp(line, name, n) == 0 && line[n] == ':') {
                        const char *v = line + n + 1;

                        while (*v == ' ')
                                v++;
                        res = strndup(v, nl - v);
                        break;
                }
                line = nl + 1;
        }
        free(h);
        return res;
}

static int count_fields(const char *msg) {
        char *h = unfolded_headers(msg);
        int n = 0;

        for (char *p = h; *p; p++)
                n += *p == '\n';
        free(h);
        return n;
}

static void assert_crlf_only(const char *s) {
        for (const char *p = s; *p; p++) {
                if (*p == '\n')
                        assert_true(p > s && p[-1] == '\r');
                if (*p == '\r')
                        assert_int_equal(p[1], '\n');
        }
}

static size_t max_line(const char *s, const char *end) {
        size_t max = 0;

        while (s < end) {
                const char *nl = strstr(s, "\r\n");
                size_t len;

                if (!nl || nl > end)
                        nl = end;
                len = nl - s;
                if (len > max)
                        max = len;
                s = nl + 2;
        }
        return max;
}

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Quoted-printable as RFC 2045 reads it; hard line breaks come back as LF. */
static char *qp_decode(const char *s, size_t n) {
        char *out = malloc(n + 1), *o = out;

        for (size_t i = 0; i < n;) {
                if (s[i] == '=' && i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n') {
                        i += 3;
                } else if (s[i] == '=') {
                        assert_true(i + 2 < n);
                        assert_true(hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0);
                        *o++ = (char) (hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
                        i += 3;
                } else if (s[i] == '\r' && s[i + 1] == '\n') {
                        /* whitespace before a hard break is not data */
                        assert_true(o == out || (o[-1] != ' ' && o[-1] != '\t') ||
                                    (i >= 3 && s[i - 3] == '='));
                        *o++ = '\n';
                        i += 2;
                } else {
                        assert_true((unsigned char) s[i] >= 0x20 || s[i] == '\t');
                        assert_true((unsigned char) s[i] < 0x7f);
                        *o++ = s[i++];
                }
        }
        *o = 0;
        return out;
}

static int b64val(char c) {
        const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const char *p = c ? strchr(a, c) : NULL;

        return p ? (int) (p - a) : -1;
}

static size_t b64_decode(const char *s, size_t n, unsigned char *out) {
        uint32_t acc = 0;
        int bits = 0;
        size_t o = 0;

        for (size_t i = 0; i < n; i++) {
                int v = b64val(s[i]);

                if (s[i] == '\r' || s[i] == '\n' || s[i] == '=')
                        continue;
                assert_true(v >= 0);
                acc = (acc << 6) | (uint32_t) v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[o++] = (unsigned char) (acc >> bits);
                }
        }
        return o;
}

/* Decode a header value made of RFC 2047 encoded-words only; each word must be at most 75
 * characters and hold whole UTF-8 characters. */
static char *ew_decode(const char *v) {
        char *out = calloc(1, strlen(v) + 1), *o = out;

        while (*v) {
                const char *start, *end;
                char kind;

                while (*v == ' ')
                        v++;
                if (!*v)
                        break;
                assert_memory_equal(v, "=?UTF-8?", 8);
                kind = v[8];
                assert_true(kind == 'Q' || kind == 'B');
                assert_int_equal(v[9], '?');
                start = v + 10;
                end = strstr(start, "?=");
                assert_non_null(end);
                assert_true(end + 2 - v <= 75);
                {
                        char *word = o;

                        if (kind == 'B')
                                o += b64_decode(start, end - start, (unsigned char *) o);
                        else
                                for (const char *p = start; p < end;) {
                                        if (*p == '_')
                                                *o++ = ' ', p++;
                                        else if (*p == '=')
                                                *o++ = (char) (hexval(p[1]) * 16 + hexval(p[2])), p += 3;
                                        else
                                                *o++ = *p++;
                                }
                        /* a word never ends inside a character */
                        for (char *p = word; p < o;) {
                                unsigned char c = (unsigned char) *p;
                                size_t len = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;

                                assert_true(p + len <= o);
                                p += len;
                        }
                }
                v = end + 2;
        }
        *o = 0;
        return out;
}

/* A display name as RFC 2047 6.2 reads it: encoded-words next to each other are joined,
 * other words are separated by one space. */
static char *phrase_decode(const char *v) {
        char *out = calloc(1, strlen(v) + 2), *tok = strdup(v), *save = NULL;
        bool prev_encoded = false, first = true;

        for (char *w = strtok_r(tok, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
                bool encoded = strncmp(w, "=?", 2) == 0;

                if (!first && !(encoded && prev_encoded))
                        strcat(out, " ");
                if (encoded) {
                        char *d = ew_decode(w);

                        strcat(out, d);
                        free(d);
                } else
                        strcat(out, w);
                prev_encoded = encoded;
                first = false;
        }
        free(tok);
        return out;
}

/* The body of the first part whose headers contain marker, up to the next boundary line. */
static char *part_body(const char *msg, const char *marker, size_t *ret_n) {
        const char *p = strstr(msg, marker), *b, *e;

        assert_non_null(p);
        b = strstr(p, "\r\n\r\n");
        assert_non_null(b);
        b += 4;
        /* the CRLF before a delimiter belongs to the delimiter (RFC 2046 5.1.1) */
        e = strstr(b, "\r\n--=_");
        if (!e)
                e = b + strlen(b);
        *ret_n = e - b;
        return strndup(b, e - b);
}

static void test_single_text_part(void **state) {
        message_t m = base();
        char *out = build(&m), *v;

        (void) state;
        v = header(out, "Content-Type");
        assert_string_equal(v, "text/plain; charset=UTF-8");
        free(v);
        v = header(out, "Content-Transfer-Encoding");
        assert_string_equal(v, "quoted-printable");
        free(v);
        assert_null(strstr(out, "multipart"));
        assert_non_null(strstr(out, "\r\n\r\nHello Alex,\r\n\r\nSee you there.\r\n"));
        assert_crlf_only(out);
        free(out);
}

static void test_fixed_header_list(void **state) {
        message_t m = base();
        const char *want[] = { "Date", "From", "To", "Subject", "Message-ID", "MIME-Version",
                               "Auto-Submitted", "Content-Type", "Content-Transfer-Encoding" };
        char *out = build(&m), *v;

        (void) state;
        assert_int_equal(count_fields(out), 9);
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
                v = header(out, want[i]);
                assert_non_null(v);
                free(v);
        }
        v = header(out, "Auto-Submitted");
        assert_string_equal(v, "auto-generated");
        free(v);
        v = header(out, "MIME-Version");
        assert_string_equal(v, "1.0");
        free(v);
        assert_null(header(out, "Reply-To"));
        free(out);

        m.reply_to = "Bookings <bookings@example.org>";
        out = build(&m);
        assert_int_equal(count_fields(out), 10);
        v = header(out, "Reply-To");
        assert_string_equal(v, "Bookings <bookings@example.org>");
        free(v);
        free(out);
}

static void test_date_in_local_zone(void **state) {
        message_t m = base();
        char *out, *v;

        (void) state;
        out = build(&m);
        v = header(out, "Date");
        assert_string_equal(v, "Tue, 22 Sep 2026 10:30:00 +0100");
        free(v);
        free(out);

        m.date = JAN_2026_1030;
        out = build(&m);
        v = header(out, "Date");
        assert_string_equal(v, "Tue, 13 Jan 2026 10:30:00 +0000");
        free(v);
        free(out);

        setenv("TZ", "America/New_York", 1);
        tzset();
        out = build(&m);
        v = header(out, "Date");
        assert_string_equal(v, "Tue, 13 Jan 2026 05:30:00 -0500");
        free(v);
        free(out);
        setenv("TZ", "Europe/London", 1);
        tzset();
}

static void test_from_and_to(void **state) {
        message_t m = base();
        char *out, *v;

        (void) state;
        out = build(&m);
        v = header(out, "From");
        assert_string_equal(v, "MECC Training <mecc@example.org>");
        free(v);
        v = header(out, "To");
        assert_string_equal(v, "Alex Smith <alex@example.org>");
        free(v);
        free(out);

        m.to_name = NULL;
        m.from = "mecc@example.org";
        out = build(&m);
        v = header(out, "To");
        assert_string_equal(v, "alex@example.org");
        free(v);
        v = header(out, "From");
        assert_string_equal(v, "mecc@example.org");
        free(v);
        free(out);

        /* specials in an ASCII name: a quoted-string, never a second address */
        m.to_name = "Smith, Alex (Library)";
        out = build(&m);
        v = header(out, "To");
        assert_string_equal(v, "\"Smith, Alex (Library)\" <alex@example.org>");
        free(v);
        free(out);

        m.to_name = "Al \"the\" O\\Brien";
        out = build(&m);
        v = header(out, "To");
        assert_string_equal(v, "\"Al \\\"the\\\" O\\\\Brien\" <alex@example.org>");
        free(v);
        free(out);
}

static void test_non_ascii_names(void **state) {
        message_t m = base();
        char *out, *v, *d;

        (void) state;
        m.to_name = "Siân Ó Briain";
        m.from = "\"Tîm MECC\" <mecc@example.org>";
        out = build(&m);
        v = header(out, "To");
        assert_non_null(strstr(v, " <alex@example.org>"));
        *strstr(v, " <alex@example.org>") = 0;
        d = phrase_decode(v);
        assert_string_equal(d, "Siân Ó Briain");
        free(d);
        free(v);
        v = header(out, "From");
        *strstr(v, " <mecc@example.org>") = 0;
        d = phrase_decode(v);
        assert_string_equal(d, "Tîm MECC");
        free(d);
        free(v);
        free(out);

        /* a long real name: plain words stay readable and no two encoded-words meet, so
         * readers that put a space between them (Python's) agree with those that do not */
        m.to_name = "María José Fernández-Castañeda de la Peña, Ó Briain-Ní Dhomhnaill";
        out = build(&m);
        assert_true(max_line(out, strstr(out, "\r\n\r\n")) <= 76);
        v = header(out, "To");
        assert_null(strstr(v, "?= =?"));
        assert_non_null(strstr(v, " de la "));
        *strstr(v, " <alex@example.org>") = 0;
        d = phrase_decode(v);
        assert_string_equal(d, m.to_name);
        free(d);
        free(v);
        /* no 8-bit byte anywhere in the header section */
        for (const char *p = out; p < strstr(out, "\r\n\r\n"); p++)
                assert_true((unsigned char) *p < 0x80);
        free(out);
}

static void test_subject_ascii_folds_at_spaces(void **state) {
        message_t m = base();
        const char *subject =
                "Reminder: please complete the MECC e-learning before your live session on "
                "Tuesday 22 September 2026, 10:30 to 12:00 with the Oxfordshire team";
        const char *end;
        char *out, *v;

        (void) state;
        m.subject = subject;
        out = build(&m);
        end = strstr(out, "\r\n\r\n");
        assert_true(max_line(out, end) <= 78);
        assert_null(strstr(out, "=?UTF-8?"));
        v = header(out, "Subject");
        assert_string_equal(v, subject);
        free(v);
        /* it really was folded, inside the Subject field */
        assert_true(strstr(strstr(out, "Subject:"), "\r\n ") < strstr(out, "Message-ID:"));
        free(out);
}

static void test_subject_rfc2047(void **state) {
        message_t m = base();
        const char *subject =
                "Cadarnhad: “Sgyrsiau Iach” – sesiwn ar-lein i wirfoddolwyr ym Mhen-y-bont, "
                "dydd Mawrth 22 Medi 🙂 — ελληνικά καλά, 日本語のテキスト";
        const char *end;
        char *out, *v, *d;

        (void) state;
        m.subject = subject;
        out = build(&m);
        end = strstr(out, "\r\n\r\n");
        assert_true(max_line(out, end) <= 76);
        v = header(out, "Subject");
        d = ew_decode(v);
        assert_string_equal(d, subject);
        free(d);
        free(v);
        free(out);

        /* mostly ASCII: Q, which stays readable */
        m.subject = "Siân's session";
        out = build(&m);
        v = header(out, "Subject");
        assert_string_equal(v, "=?UTF-8?Q?Si=C3=A2n=27s_session?=");
        free(v);
        free(out);

        /* a literal "=?" in ASCII text is encoded, so no reader decodes it */
        m.subject = "Cafe =?not-a-word?= ok";
        out = build(&m);
        v = header(out, "Subject");
        assert_memory_equal(v, "=?UTF-8?", 8);
        d = ew_decode(v);
        assert_string_equal(d, "Cafe =?not-a-word?= ok");
        free(d);
        free(v);
        free(out);
}

static void test_subject_long_word(void **state) {
        message_t m = base();
        char subject[301], *out, *v, *d;

        (void) state;
        memset(subject, 'x', 300);
        subject[300] = 0;
        m.subject = subject;
        out = build(&m);
        assert_true(max_line(out, strstr(out, "\r\n\r\n")) <= 78);
        v = header(out, "Subject");
        d = ew_decode(v);
        assert_string_equal(d, subject);
        free(d);
        free(v);
        free(out);
}

static void assert_no_injection(const char *out) {
        const char *end = strstr(out, "\r\n\r\n");

        assert_non_null(end);
        assert_crlf_only(out);
        /* every header line is a known field or a continuation */
        for (const char *line = out; line < end;) {
                const char *fields[] = { "Date:", "From:", "To:", "Reply-To:", "Subject:",
                                         "Message-ID:", "MIME-Version:", "Auto-Submitted:",
                                         "Content-Type:", "Content-Transfer-Encoding:" };
                bool ok = line[0] == ' ';

                for (size_t i = 0; i < sizeof fields / sizeof fields[0] && !ok; i++)
                        ok = strncmp(line, fields[i], strlen(fields[i])) == 0;
                if (!ok)
                        fail_msg("unexpected header line: %.40s", line);
                line = strstr(line, "\r\n") + 2;
        }
        assert_true(max_line(out, end) <= 78);
        for (const char *p = out; p < end; p++)
                assert_true((unsigned char) *p >= 0x20 || *p == '\r' || *p == '\n');
}

static void test_injection_in_names_and_subject(void **state) {
        const char *names[] = { "Eve\r\nBcc: x@evil", "Eve\rBcc: x@evil", "Eve\nBcc: x@evil",
                                "Eve\x01\x7f\x1b[31m", "Eve\r\n\r\nbody", "Ève\r\nBcc: x@evil",
                                "Eve\xc2\x85" "Bcc: x@evil", "Eve\xe2\x80\xa8" "Bcc: x@evil" };
        message_t m = base();

        (void) state;
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
                char *out, *v;

                m.to_name = names[i];
                m.subject = names[i];
                out = build(&m);
                assert_no_injection(out);
                v = header(out, "Bcc");
                assert_null(v);
                assert_int_equal(count_fields(out), 9);
                free(out);
        }

        /* the name is kept, with the breaks as spaces */
        m.to_name = "Eve\r\nBcc: x@evil";
        m.subject = "Hi\r\nBcc: x@evil";
        {
                char *out = build(&m), *v;

                v = header(out, "To");
                assert_string_equal(v, "\"Eve  Bcc: x@evil\" <alex@example.org>");
                free(v);
                v = header(out, "Subject");
                assert_string_equal(v, "Hi  Bcc: x@evil");
                free(v);
                free(out);
        }
        /* the configured From gets the same treatment */
        m.from = "MECC\r\nBcc: x@evil <mecc@example.org>";
        {
                char *out = build(&m);

                assert_no_injection(out);
                free(out);
        }
}

static void test_invalid_utf8_replaced(void **state) {
        message_t m = base();
        char *out, *v, *d;

        (void) state;
        m.subject = "caf\xe9 \xc0\xaf";
        m.text = "caf\xe9\n";
        out = build(&m);
        v = header(out, "Subject");
        d = ew_decode(v);
        assert_string_equal(d, "caf\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd");
        free(d);
        free(v);
        assert_non_null(strstr(out, "\r\n\r\ncaf=EF=BF=BD\r\n"));
        free(out);
}

static void test_long_name(void **state) {
        message_t m = base();
        char name[2001], *out, *v, *d;

        (void) state;
        name[0] = 0;
        while (strlen(name) + 10 <= 2000)
                strcat(name, "Abcdefghé ");
        name[strlen(name) - 1] = 0;
        m.to_name = name;
        out = build(&m);
        assert_no_injection(out);
        v = header(out, "To");
        assert_non_null(strstr(v, " <alex@example.org>"));
        *strstr(v, " <alex@example.org>") = 0;
        d = phrase_decode(v);
        assert_string_equal(d, name);
        free(d);
        free(v);
        free(out);

        memset(name, 'a', 2000);
        name[2000] = 0;
        m.to_name = name;
        out = build(&m);
        assert_no_injection(out);
        free(out);
}

static void test_bad_addresses(void **state) {
        const char *bad[] = { "", "alex", "a@b@c", "@example.org", "alex@", "a b@example.org",
                              "alex@example.org\r\nBcc: x@evil", "<alex@example.org>",
                              "a@example.org,b@example.org", "ålex@example.org", "a\t@b.c" };
        message_t m = base();
        char *out = NULL;

        (void) state;
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                m.to_addr = bad[i];
                assert_int_equal(message_build(&m, &out, NULL), -EINVAL);
                assert_null(out);
        }
        m = base();
        m.from = "MECC <mecc@example.org";
        assert_int_equal(message_build(&m, &out, NULL), -EINVAL);
        m = base();
        m.message_id = "outbox-1@meccd";
        assert_int_equal(message_build(&m, &out, NULL), -EINVAL);
        m.message_id = "<a@b>\r\nBcc: <x@evil>";
        assert_int_equal(message_build(&m, &out, NULL), -EINVAL);
        m.message_id = NULL;
        assert_int_equal(message_build(&m, &out, NULL), -EINVAL);
        assert_null(out);
}

static void test_qp_edge_cases(void **state) {
        const char *texts[] = {
                "trailing space \nand tab\t\nend",
                "equals = sign, =3D literal, and a line of exactly seventy-six characters ok\n",
                "x12345678901234567890123456789012345678901234567890123456789012345678901234=\n",
                ".starts with a dot\n.\nFrom the team\nFrom: not a header\n",
                "CRLF in\r\nand a bare\rCR\n",
                "a long line of multibyte: ééééééééééééééééééééééééééééééééééééééééééé🙂🙂🙂🙂🙂🙂🙂\n",
                "no final newline",
                "\n\n\n",
                "",
                "tabs\tinside\tand    spaces   at the very end of a long line that needs a soft "
                "break somewhere                                                          \n",
        };
        const char *expect[] = {
                "trailing space \nand tab\t\nend",
                NULL, NULL, NULL,
                "CRLF in\nand a bare\rCR\n",
                NULL, "no final newline", NULL, "", NULL,
        };

        (void) state;
        for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
                message_t m = base();
                char *out, *body, *dec;
                size_t n;

                m.text = texts[i];
                out = build(&m);
                body = part_body(out, "Content-Transfer-Encoding: quoted-printable", &n);
                assert_true(max_line(body, body + n) <= 76);
                dec = qp_decode(body, n);
                if (texts[i][0] && texts[i][strlen(texts[i]) - 1] != '\n') {
                        /* a single part ends with a line break on the wire */
                        assert_int_equal(dec[strlen(dec) - 1], '\n');
                        dec[strlen(dec) - 1] = 0;
                }
                assert_string_equal(dec, expect[i] ? expect[i] : texts[i]);
                /* a "." or "From " never starts a wire line */
                for (const char *p = body; p < body + n; p = strstr(p, "\r\n") + 2) {
                        assert_true(p[0] != '.');
                        assert_true(strncmp(p, "From ", 5) != 0);
                }
                free(dec);
                free(body);
                free(out);
        }
}

static void test_qp_exact_encoding(void **state) {
        message_t m = base();
        char *out;

        (void) state;
        m.text = "a =b \nc\t\n";
        out = build(&m);
        assert_non_null(strstr(out, "\r\n\r\na =3Db=20\r\nc=09\r\n"));
        free(out);

        /* 80 "x": 75 then a soft break, then 5 */
        m.text = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
        out = build(&m);
        assert_non_null(strstr(out, "\r\n\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx=\r\nxxxxx\r\n"));
        free(out);

        /* a multibyte character is not split by a soft break */
        m.text = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxé";
        out = build(&m);
        assert_non_null(strstr(out, "xxxx=\r\n=C3=A9\r\n"));
        free(out);
}

static void test_alternative(void **state) {
        message_t m = base();
        const char *end;
        char *out, *v, *body, *dec;
        size_t n;

        (void) state;
        m.html = "<p>Hello <b>Alex</b> – café</p>\n";
        out = build(&m);
        v = header(out, "Content-Type");
        assert_non_null(strstr(v, "multipart/alternative;"));
        assert_non_null(strstr(v, "boundary=\"=_"));
        free(v);
        end = strstr(out, "\r\n\r\n");
        assert_true(strstr(out, "text/plain") > end);
        assert_true(strstr(out, "text/html") > strstr(out, "text/plain"));
        body = part_body(out, "text/html", &n);
        dec = qp_decode(body, n);
        assert_string_equal(dec, "<p>Hello <b>Alex</b> – café</p>\n");
        free(dec);
        free(body);
        assert_crlf_only(out);
        free(out);
}

static void test_attachments_base64(void **state) {
        unsigned char bin[1000];
        attachment_t a[2] = {
                { "session.ics", "text/calendar; charset=UTF-8; method=PUBLISH",
                  "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", 32 },
                { "roster.csv", NULL, (const char *) bin, sizeof bin },
        };
        message_t m = base();
        unsigned char dec[1100];
        char *out, *v, *body;
        size_t n;

        (void) state;
        for (size_t i = 0; i < sizeof bin; i++)
                bin[i] = (unsigned char) (i * 7 + 3);
        m.html = "<p>hi</p>";
        m.attachments = a;
        m.n_attachments = 2;
        out = build(&m);
        v = header(out, "Content-Type");
        assert_non_null(strstr(v, "multipart/mixed;"));
        free(v);
        assert_non_null(strstr(out, "multipart/alternative"));
        assert_non_null(strstr(out, "Content-Disposition: attachment;\r\n filename=\"session.ics\""));
        assert_non_null(strstr(out, "Content-Type: application/octet-stream;\r\n name=\"roster.csv\""));

        body = part_body(out, "filename=\"session.ics\"", &n);
        assert_int_equal(b64_decode(body, n, dec), 32);
        assert_memory_equal(dec, a[0].data, 32);
        free(body);
        body = part_body(out, "filename=\"roster.csv\"", &n);
        assert_true(max_line(body, body + n) == 76);
        assert_int_equal(b64_decode(body, n, dec), sizeof bin);
        assert_memory_equal(dec, bin, sizeof bin);
        free(body);
        assert_crlf_only(out);
        free(out);
}

static void test_attachment_filename_rfc2231(void **state) {
        attachment_t a = { "sesiwn-Siân.ics", "text/calendar", "x", 1 };
        message_t m = base();
        char *out;

        (void) state;
        m.attachments = &a;
        m.n_attachments = 1;
        out = build(&m);
        assert_non_null(strstr(out, "filename*=UTF-8''sesiwn-Si%C3%A2n.ics"));
        free(out);
}

static void test_boundaries_not_in_content(void **state) {
        message_t m = base();
        attachment_t a = { "x.txt", "text/plain", "--=_meccd_0000000000000000_m\r\n", 30 };
        char *out, *v, boundary[80], delim[90];
        int count = 0, lines = 0;

        (void) state;
        m.text = "--=_meccd_0000000000000000_a\n--=_meccd_\n";
        m.html = "--=_meccd_0000000000000000_a--\n";
        m.attachments = &a;
        m.n_attachments = 1;
        out = build(&m);
        v = header(out, "Content-Type");
        assert_int_equal(sscanf(strstr(v, "boundary=\"") + 10, "%79[^\"]", boundary), 1);
        free(v);
        /* the outer boundary opens exactly its 3 parts and closes once */
        snprintf(delim, sizeof delim, "\r\n--%s", boundary);
        for (const char *p = out; (p = strstr(p, delim)); p++)
                count++;
        assert_int_equal(count, 3);
        /* the look-alikes in the content never start a line: 3 outer + 3 inner delimiters */
        for (const char *p = out; (p = strstr(p, "\r\n--=_")); p++)
                lines++;
        assert_int_equal(lines, 6);
        free(out);
}

static void test_deterministic(void **state) {
        attachment_t a = { "session.ics", "text/calendar", "BEGIN:VCALENDAR\r\n", 17 };
        message_t m = base();
        char *one, *two;

        (void) state;
        m.html = "<p>x</p>";
        m.attachments = &a;
        m.n_attachments = 1;
        one = build(&m);
        two = build(&m);
        assert_string_equal(one, two);
        free(two);
        m.message_id = "<outbox-2@meccd.example.org>";
        two = build(&m);
        assert_string_not_equal(one, two);
        free(one);
        free(two);
}

static int setup(void **state) {
        (void) state;
        setenv("TZ", "Europe/London", 1);
        tzset();
        return 0;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_single_text_part),
                cmocka_unit_test(test_fixed_header_list),
                cmocka_unit_test(test_date_in_local_zone),
                cmocka_unit_test(test_from_and_to),
                cmocka_unit_test(test_non_ascii_names),
                cmocka_unit_test(test_subject_ascii_folds_at_spaces),
                cmocka_unit_test(test_subject_rfc2047),
                cmocka_unit_test(test_subject_long_word),
                cmocka_unit_test(test_injection_in_names_and_subject),
                cmocka_unit_test(test_invalid_utf8_replaced),
                cmocka_unit_test(test_long_name),
                cmocka_unit_test(test_bad_addresses),
                cmocka_unit_test(test_qp_edge_cases),
                cmocka_unit_test(test_qp_exact_encoding),
                cmocka_unit_test(test_alternative),
                cmocka_unit_test(test_attachments_base64),
                cmocka_unit_test(test_attachment_filename_rfc2231),
                cmocka_unit_test(test_boundaries_not_in_content),
                cmocka_unit_test(test_deterministic),
        };

        return cmocka_run_group_tests(tests, setup, NULL);
}
