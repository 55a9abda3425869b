/* fuzz-message.c - message_build() on hostile names, subjects, bodies and attachments.
 *
 * Input: one flag byte, then NUL-separated fields: to_name, subject, text, html, from,
 * to_addr, filename, and the attachment data (the rest, NULs included). Missing fields take
 * harmless defaults. Whatever the input, a built message must keep its header section to
 * the fixed fields with no way to start another, use CRLF only, stay 7-bit with lines of
 * at most 998 octets (76 in headers), come out the same twice, and give the text back. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"

#define N_FIELDS 8

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what) {
        if (!ok) {
                fprintf(stderr, "invariant broken: %s\n", what);
                abort();
        }
}

static bool utf8_valid(const unsigned char *s, size_t n) {
        for (size_t i = 0; i < n;) {
                unsigned char c = s[i];
                size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 :
                             (c & 0xf8) == 0xf0 ? 4 : 0;
                uint32_t cp;

                if (len == 0 || len > n - i)
                        return false;
                cp = len == 1 ? c : c & (0x7f >> len);
                for (size_t k = 1; k < len; k++) {
                        if ((s[i + k] & 0xc0) != 0x80)
                                return false;
                        cp = (cp << 6) | (s[i + k] & 0x3f);
                }
                if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
                    (len == 4 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                i += len;
        }
        return true;
}

static const char *fields_allowed[] = { "Date:", "From:", "To:", "Reply-To:", "Subject:",
                                        "Message-ID:", "MIME-Version:", "Auto-Submitted:",
                                        "Content-Type:", "Content-Transfer-Encoding:" };

/* An address cannot be folded, so a line may pass 76 octets only by ending with one. */
static bool long_address_line(const char *line, size_t n) {
        const char *last = line + n;

        while (last > line && last[-1] != ' ')
                last--;
        return line + n - last > 40 && memchr(last, '@', line + n - last) != NULL;
}

static void check_headers(const char *msg, const char *end) {
        int seen[sizeof fields_allowed / sizeof fields_allowed[0]] = { 0 };

        for (const char *line = msg; line < end;) {
                const char *eol = strstr(line, "\r\n");
                size_t n = eol - line;
                bool known = false;

                check(eol != NULL && eol <= end, "header line ends with CRLF");
                for (const char *p = line; p < eol; p++)
                        check(*p >= 0x20 && *p < 0x7f, "header bytes are printable ASCII");
                check(n <= 76 || long_address_line(line, n), "header lines are at most 76 octets");
                if (line[0] == ' ') {
                        check(line != msg, "no continuation before the first field");
                        check(n > 1 && strspn(line, " ") < n, "no whitespace-only line");
                        known = true;
                }
                for (size_t i = 0; !known && i < sizeof fields_allowed / sizeof fields_allowed[0]; i++)
                        if (strncmp(line, fields_allowed[i], strlen(fields_allowed[i])) == 0) {
                                known = true;
                                check(++seen[i] == 1, "each field at most once");
                        }
                check(known, "only the fixed header fields");
                line = eol + 2;
        }
}

static int hexval(char c) {
        return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The single text/plain body decoded: soft breaks removed, hard breaks as LF. */
static char *qp_decode(const char *s, size_t n) {
        char *out = malloc(n + 1), *o = out;

        for (size_t i = 0; i < n;) {
                if (s[i] == '=' && i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n')
                        i += 3;
                else if (s[i] == '=') {
                        check(i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0,
                              "quoted-printable escapes are two upper-case hex digits");
                        *o++ = (char) (hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
                        i += 3;
                } else if (s[i] == '\r') {
                        check(i + 1 < n && s[i + 1] == '\n', "CR only in CRLF");
                        check(o == out || (o[-1] != ' ' && o[-1] != '\t') || (i >= 3 && s[i - 3] == '='),
                              "no literal whitespace before a line break");
                        *o++ = '\n';
                        i += 2;
                } else
                        *o++ = s[i++];
        }
        *o = 0;
        return out;
}

/* text as the reader gets it back: CRLF and LF both one line break, and a final break */
static char *expected_text(const char *t) {
        size_t n = strlen(t);
        char *out = malloc(n + 2), *o = out;

        for (size_t i = 0; i < n; i++) {
                if (t[i] == '\r' && t[i + 1] == '\n')
                        continue;
                *o++ = t[i];
        }
        if (o > out && o[-1] != '\n')
                *o++ = '\n';
        *o = 0;
        return out;
}

static void check_single_part(const char *body, size_t n, const char *text) {
        char *got, *want;

        for (const char *line = body; line < body + n;) {
                const char *eol = strstr(line, "\r\n");

                check(eol != NULL, "body ends with CRLF");
                check(eol - line <= 76, "quoted-printable lines are at most 76");
                check(line[0] != '.' && strncmp(line, "From ", 5) != 0,
                      "no line starts with a dot or From");
                line = eol + 2;
        }
        got = qp_decode(body, n);
        want = expected_text(text);
        check(strcmp(got, want) == 0, "the text comes back unchanged");
        free(got);
        free(want);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        (void) argc;
        (void) argv;
        setenv("TZ", "Europe/London", 1);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *copy, *f[N_FIELDS] = { NULL }, *out = NULL, *again = NULL;
        size_t out_size = 0, again_size = 0, n_fields = 0, pos = 1;
        attachment_t att = { 0 };
        message_t m;
        uint8_t flags;
        int r;

        if (size < 1)
                return 0;
        flags = data[0];
        copy = malloc(size + 1);
        memcpy(copy, data, size);
        copy[size] = 0;
        while (pos <= size && n_fields < N_FIELDS) {
                f[n_fields++] = copy + pos;
                if (n_fields == N_FIELDS)
                        break;
                pos += strlen(copy + pos) + 1;
        }

        if (f[7]) {
                att.filename = f[6];
                att.content_type = flags & 0x10 ? "text/calendar; charset=UTF-8; method=PUBLISH" : NULL;
                att.data = f[7];
                att.size = size - (size_t) (f[7] - copy);
        }
        m = (message_t) {
                .from = f[4] && (flags & 0x08) ? f[4] : "MECC Training <mecc@example.org>",
                .to_name = f[0],
                .to_addr = f[5] && (flags & 0x04) ? f[5] : "volunteer@example.org",
                .reply_to = flags & 0x20 ? "Bookings <bookings@example.org>" : NULL,
                .subject = f[1] ? f[1] : "",
                .message_id = "<outbox-1@meccd.example.org>",
                .date = (int64_t) 1790069400 + (int64_t) (flags >> 6) * 86400 * 90,
                .text = f[2] ? f[2] : "",
                .html = (flags & 0x01) && f[3] ? f[3] : NULL,
                .attachments = &att,
                .n_attachments = (flags & 0x02) && f[7] ? 1 : 0,
        };

        r = message_build(&m, &out, &out_size);
        if (r < 0) {
                /* only a bad address may be refused */
                check(r == -EINVAL, "only -EINVAL");
                check((flags & 0x0c) != 0, "the default addresses are always accepted");
                goto done;
        }
        check(out && strlen(out) == out_size, "no NUL in the message");
        for (size_t i = 0; i < out_size; i++) {
                check((unsigned char) out[i] < 0x80, "7-bit");
                if (out[i] == '\n')
                        check(i > 0 && out[i - 1] == '\r', "LF only in CRLF");
                if (out[i] == '\r')
                        check(out[i + 1] == '\n', "CR only in CRLF");
        }
        {
                const char *end = strstr(out, "\r\n\r\n");
                size_t line = 0;

                check(end != NULL, "a header section");
                check_headers(out, end + 2);
                for (size_t i = 0; i < out_size; i++) {
                        line = out[i] == '\n' ? 0 : line + 1;
                        check(line <= 999, "lines are at most 998 octets");
                }
                if (!m.html && m.n_attachments == 0 && utf8_valid((const unsigned char *) m.text, strlen(m.text)))
                        check_single_part(end + 4, out_size - (size_t) (end + 4 - out), m.text);
        }

        r = message_build(&m, &again, &again_size);
        check(r == 0 && again_size == out_size && memcmp(out, again, out_size) == 0,
              "the same message twice");
done:
        free(out);
        free(again);
        free(copy);
        return 0;
}
