/* message.c - the wire form of one email: RFC 5322 headers, MIME structure, encodings.
 *
 * Every header value goes through sanitize_header() before anything else looks at it, so
 * no input can make a line break inside a header. Text parts are quoted-printable and
 * attachments base64; boundaries start with "=_", which neither encoding can produce. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "addr.h"
#include "buf.h"
#include "clock.h"
#include "message.h"
#include "text.h"

/* RFC 5322 allows 78; 76 keeps every header line within RFC 2047's limit for lines that
 * hold encoded-words, whatever mix of plain and encoded words a line gets */
#define HDR_LINE_MAX 76
#define ATOM_MAX 60       /* a plain word longer than this is encoded so it can be split */
#define EW_MAX 75         /* RFC 2047 2: one encoded-word */
#define EW_LINE_MAX 76    /* RFC 2047 2: a line holding encoded-words */
#define EW_OVERHEAD 12    /* "=?UTF-8?Q?" and "?=" */
#define QP_LINE_MAX 76    /* RFC 2045 6.7 */
#define B64_LINE_BYTES 57 /* 76 characters of base64 */
#define FILENAME_MAX_BYTES 200
/* far above what relays accept (10 to 50 MB): the relay, not the builder, says too big */
#define MESSAGE_MAX (64u << 20)

/* C0, DEL, C1 and the Unicode line/paragraph separators: anything a reader could take
 * for a line break or that has no business in a header. */
static bool is_header_control(uint32_t cp) {
        return cp < 0x20 || (cp >= 0x7f && cp < 0xa0) || cp == 0x2028 || cp == 0x2029;
}

/* Valid UTF-8 (U+FFFD for each invalid byte). For headers, controls become spaces and the
 * ends are trimmed, before any encoding decision is made. */
static char *sanitize(const char *s, bool header) {
        const char *p = s ? s : "";
        size_t n = strlen(p), o = 0, start = 0;
        char *out;

        if (n > (SIZE_MAX - 1) / 3)
                return NULL;
        out = malloc(3 * n + 1);
        if (!out)
                return NULL;
        for (size_t i = 0; i < n;) {
                uint32_t cp;
                size_t len, run = 0;

                /* ASCII that stays as it is, in one piece: most of any text */
                while (i + run < n && (unsigned char) p[i + run] < 0x80 &&
                       !(header && is_header_control((unsigned char) p[i + run])))
                        run++;
                if (run > 0) {
                        memcpy(out + o, p + i, run);
                        o += run, i += run;
                        continue;
                }
                len = text_utf8_decode(p + i, n - i, &cp);
                if (len == 0) {
                        memcpy(out + o, "\xef\xbf\xbd", 3);
                        o += 3, i++;
                } else if (header && is_header_control(cp)) {
                        out[o++] = ' ';
                        i += len;
                } else {
                        memcpy(out + o, p + i, len);
                        o += len, i += len;
                }
        }
        if (header) {
                while (o > 0 && out[o - 1] == ' ')
                        o--;
                while (start < o && out[start] == ' ')
                        start++;
                memmove(out, out + start, o - start);
                o -= start;
        }
        out[o] = 0;
        return out;
}

/* Bytes of the character at s (one for a byte that starts none), so a split never cuts
 * one in two. */
static size_t char_len(const char *s, size_t n) {
        size_t len = text_utf8_decode(s, n, NULL);

        return len ? len : 1;
}

/* ---- headers ---- */

typedef struct {
        buf_t *b;
        size_t col;
} hdr_t;

static void hdr_begin(hdr_t *h, const char *name) {
        buf_puts(h->b, name);
        buf_putc(h->b, ':');
        h->col = strlen(name) + 1;
}

static void hdr_end(hdr_t *h) {
        buf_puts(h->b, "\r\n");
        h->col = 0;
}

/* sep (whitespace) then an unbreakable token; folds before sep when the token would pass
 * the line limit and something is already on the line. */
static void hdr_token(hdr_t *h, const char *sep, size_t sep_len, const char *tok, size_t n,
                      bool line_has_token) {
        if (line_has_token && h->col + sep_len + n > HDR_LINE_MAX) {
                buf_puts(h->b, "\r\n");
                h->col = 0;
        }
        buf_put(h->b, sep, sep_len);
        buf_put(h->b, tok, n);
        h->col += sep_len + n;
}

static bool q_literal(unsigned char c) {
        /* RFC 2047 5(3): the set allowed in a phrase, which is also safe in unstructured text */
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '!' || c == '*' || c == '+' || c == '-' || c == '/';
}

static size_t q_len(const char *s, size_t n) {
        size_t len = 0;

        for (size_t i = 0; i < n; i++)
                len += q_literal((unsigned char) s[i]) || s[i] == ' ' ? 1 : 3;
        return len;
}

static size_t b_len(size_t n) {
        return (n + 2) / 3 * 4;
}

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Encoded a few groups at a time into a local array: one append per line, not per group. */
static void b64_put(buf_t *b, const unsigned char *s, size_t n) {
        char out[B64_LINE_BYTES / 3 * 4]; /* one full line */
        size_t w = 0;

        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t) s[i] << 16;

                if (i + 1 < n)
                        v |= (uint32_t) s[i + 1] << 8;
                if (i + 2 < n)
                        v |= s[i + 2];
                out[w++] = b64_alphabet[(v >> 18) & 63];
                out[w++] = b64_alphabet[(v >> 12) & 63];
                out[w++] = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
                out[w++] = i + 2 < n ? b64_alphabet[v & 63] : '=';
                if (w == sizeof out) {
                        buf_put(b, out, w);
                        w = 0;
                }
        }
        buf_put(b, out, w);
}

static void q_put(buf_t *b, const char *s, size_t n) {
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) s[i];

                if (q_literal(c))
                        buf_putc(b, (char) c);
                else if (c == ' ')
                        buf_putc(b, '_');
                else
                        buf_printf(b, "=%02X", c);
        }
}

/* The whole of s as encoded-words, each at most 75 characters on a line of at most 76,
 * split only between UTF-8 characters (RFC 2047 5, 6.2). */
static void hdr_encoded(hdr_t *h, const char *s, size_t n) {
        /* Q while it stays readable (mostly Latin script), B for text that is mostly not */
        bool use_b = 2 * q_len(s, n) > 3 * b_len(n);
        bool first = true;

        for (size_t i = 0; i < n;) {
                size_t room, payload, j = i, enc = 0;
                size_t whole = EW_OVERHEAD + (use_b ? b_len(n) : q_len(s, n));

                /* a run that fits one word on a fresh line is moved there, not split */
                if (!first || h->col + 1 + EW_OVERHEAD + 12 > EW_LINE_MAX ||
                    (h->col + 1 + whole > EW_LINE_MAX && whole <= EW_MAX)) {
                        buf_puts(h->b, "\r\n");
                        h->col = 0;
                }
                room = EW_LINE_MAX - h->col - 1;
                payload = (room < EW_MAX ? room : EW_MAX) - EW_OVERHEAD;
                while (j < n) {
                        size_t cl = char_len(s + j, n - j), e;

                        e = use_b ? b_len(j + cl - i) : enc + q_len(s + j, cl);
                        if (e > payload)
                                break;
                        enc = e;
                        j += cl;
                }
                buf_puts(h->b, use_b ? " =?UTF-8?B?" : " =?UTF-8?Q?");
                if (use_b)
                        b64_put(h->b, (const unsigned char *) s + i, j - i);
                else
                        q_put(h->b, s + i, j - i);
                buf_puts(h->b, "?=");
                h->col += 1 + EW_OVERHEAD + enc;
                i = j;
                first = false;
        }
}

static bool is_printable_ascii(const char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || (unsigned char) *s > 0x7e)
                        return false;
        return true;
}

/* Unstructured text that can go out as it is: printable ASCII, nothing a reader could take
 * for an encoded-word, and every word fits a folded line. */
static bool plain_unstructured_ok(const char *s, size_t first_col) {
        size_t w;

        if (!is_printable_ascii(s) || strstr(s, "=?"))
                return false;
        /* the first word cannot move to a continuation line */
        w = strcspn(s, " ");
        if (first_col + 1 + w > HDR_LINE_MAX)
                return false;
        for (s += w; *s; s += w) {
                w = strspn(s, " ");
                w += strcspn(s + w, " ");
                if (w > HDR_LINE_MAX)
                        return false;
        }
        return true;
}

static void hdr_unstructured(hdr_t *h, const char *s) {
        size_t n = strlen(s);
        bool first = true;

        if (n == 0)
                return;
        if (!plain_unstructured_ok(s, h->col)) {
                hdr_encoded(h, s, n);
                return;
        }
        while (*s) {
                size_t ws = strspn(s, " "), w = strcspn(s + ws, " ");

                if (first)
                        hdr_token(h, " ", 1, s, w, false);
                else
                        hdr_token(h, s, ws, s + ws, w, true);
                s += first ? w : ws + w;
                first = false;
        }
}

static bool is_atext_or_dot(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               strchr("!#$%&'*+-/=?^_`{|}~.", c);
}

/* An ASCII display name as a quoted-string when it holds RFC 5322 specials or runs of
 * spaces, as atoms otherwise. NULL when it has to be encoded instead. */
static char *phrase_plain(const char *s) {
        bool quote = strstr(s, "  ") != NULL;
        buf_t b = BUF_INIT(MESSAGE_MAX);
        char *ret;

        if (!is_printable_ascii(s) || strstr(s, "=?"))
                return NULL;
        for (const char *p = s; *p; p++)
                if (*p != ' ' && (!is_atext_or_dot(*p) || *p == '.'))
                        quote = true;
        if (quote)
                buf_putc(&b, '"');
        for (const char *p = s; *p; p++) {
                if (quote && (*p == '"' || *p == '\\'))
                        buf_putc(&b, '\\');
                buf_putc(&b, *p);
        }
        if (quote)
                buf_putc(&b, '"');
        return buf_steal(&b, &ret, NULL) < 0 ? NULL : ret;
}

static bool is_atom(const char *s, size_t n) {
        if (n == 0 || n > ATOM_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!is_atext_or_dot(s[i]) || s[i] == '.' || (s[i] == '=' && i + 1 < n && s[i + 1] == '?'))
                        return false;
        return true;
}

/* A display name that cannot go out as one quoted-string: plain atoms stay as they are and
 * each run of other words becomes encoded-words. Adjacent encoded-words only meet inside a
 * run too long for one (RFC 2047 decoders join them; Python 3.11's address parser puts a
 * space between), so names of any realistic length read the same everywhere. A phrase
 * cannot keep runs of spaces outside a quoted-string, so they become one space. */
static void hdr_phrase_words(hdr_t *h, char *s) {
        char *o = s;

        for (char *p = s; *p; p++)
                if (*p != ' ' || (o > s && o[-1] != ' '))
                        *o++ = *p;
        *o = 0;
        for (const char *p = s; *p;) {
                size_t w = strcspn(p, " ");
                const char *q = p + w;

                if (is_atom(p, w))
                        hdr_token(h, " ", 1, p, w, true);
                else {
                        while (*q == ' ' && !is_atom(q + 1, strcspn(q + 1, " ")))
                                q += 1 + strcspn(q + 1, " ");
                        hdr_encoded(h, p, q - p);
                }
                p = *q ? q + 1 : q;
        }
}

static int hdr_mailbox(hdr_t *h, const char *name, const char *display_raw, const char *addr) {
        char *display = NULL, *plain = NULL;
        bool bare = true;
        int r = 0;

        /* the rule admission used: what was booked can be mailed */
        if (!addr_valid(addr))
                return -EINVAL;
        display = sanitize(display_raw, true);
        if (!display) {
                r = -ENOMEM;
                goto out;
        }
        hdr_begin(h, name);
        if (display[0]) {
                plain = phrase_plain(display);
                if (plain && h->col + 1 + strlen(plain) <= HDR_LINE_MAX)
                        hdr_token(h, " ", 1, plain, strlen(plain), false);
                else
                        hdr_phrase_words(h, display);
                bare = false;
        }
        for (const char *p = addr; *p && bare; p++)
                if (!is_atext_or_dot(*p) && *p != '@')
                        bare = false;
        if (bare)
                hdr_token(h, " ", 1, addr, strlen(addr), false);
        else {
                size_t n = strlen(addr);

                if (display[0] && h->col + 3 + n > HDR_LINE_MAX) {
                        buf_puts(h->b, "\r\n");
                        h->col = 0;
                }
                buf_puts(h->b, " <");
                buf_puts(h->b, addr);
                buf_putc(h->b, '>');
                h->col += 3 + n;
        }
        hdr_end(h);
out:
        free(display);
        free(plain);
        return r;
}

/* "Display Name <addr>", "\"Display Name\" <addr>" or a bare "addr". */
static int hdr_configured_mailbox(hdr_t *h, const char *name, const char *s) {
        char *copy = strdup(s), *display = NULL, *addr, *lt, *end;
        int r;

        if (!copy)
                return -ENOMEM;
        end = copy + strlen(copy);
        while (end > copy && (end[-1] == ' ' || end[-1] == '\t'))
                *--end = 0;
        lt = strrchr(copy, '<');
        if (lt && end > lt && end[-1] == '>') {
                char *d = copy;

                end[-1] = 0;
                *lt = 0;
                addr = lt + 1;
                while (*d == ' ' || *d == '\t')
                        d++;
                for (char *e = lt; e > d && (e[-1] == ' ' || e[-1] == '\t');)
                        *--e = 0;
                if (d[0] == '"' && strlen(d) >= 2 && d[strlen(d) - 1] == '"') {
                        char *o = d;

                        d[strlen(d) - 1] = 0;
                        for (char *p = d + 1; *p; p++) {
                                if (*p == '\\' && p[1])
                                        p++;
                                *o++ = *p;
                        }
                        *o = 0;
                }
                display = d;
        } else {
                addr = copy;
                while (*addr == ' ' || *addr == '\t')
                        addr++;
        }
        r = hdr_mailbox(h, name, display, addr);
        free(copy);
        return r;
}

static int hdr_date(hdr_t *h, int64_t t) {
        char date[CLOCK_RFC5322_MAX];
        int r = clock_format_rfc5322(t, date, sizeof(date));

        if (r < 0)
                return r;
        buf_printf(h->b, "Date: %s\r\n", date);
        return 0;
}

static bool message_id_ok(const char *s) {
        size_t n = s ? strlen(s) : 0;

        return n >= 5 && n <= 900 && s[0] == '<' && s[n - 1] == '>' && is_printable_ascii(s) &&
               !strchr(s, ' ') && strchr(s, '@') && strchr(s + 1, '<') == NULL &&
               strchr(s, '>') == s + n - 1;
}

/* ---- bodies ---- */

static const char hex_upper[] = "0123456789ABCDEF";

/* A byte quoted-printable may send as it is anywhere but at the end of a line. */
static bool qp_plain(unsigned char c) {
        return (c >= 33 && c <= 126 && c != '=') || c == ' ' || c == '\t';
}

/* A leading "." or "From " survives SMTP and mbox untouched: its first byte is encoded. */
static bool qp_line_start_special(const char *s, size_t n) {
        return s[0] == '.' || (s[0] == 'F' && n >= 5 && memcmp(s, "From ", 5) == 0);
}

/* One UTF-8 character (or byte) of a line at a time, so a soft break never splits a
 * character; "=" for a soft break must stay inside the 76 columns. A run of plain bytes
 * that fits the line and does not end it goes out in one piece: the same bytes the
 * character-at-a-time loop would write, for a fraction of the calls. */
static void qp_line(buf_t *b, const char *s, size_t n) {
        size_t col = 0;

        for (size_t i = 0; i < n;) {
                /* the columns a byte that does not end the line may fill */
                size_t room = col < QP_LINE_MAX - 1 ? QP_LINE_MAX - 1 - col : 0;
                size_t cl, w = 0, limit, run = 0;
                char tok[16];

                if (col > 0 || !qp_line_start_special(s + i, n - i))
                        while (run < room && i + run + 1 < n && qp_plain((unsigned char) s[i + run]))
                                run++;
                if (run > 0) {
                        buf_put(b, s + i, run);
                        col += run;
                        i += run;
                        continue;
                }
                cl = char_len(s + i, n - i);
                for (size_t k = 0; k < cl; k++) {
                        unsigned char c = (unsigned char) s[i + k];
                        bool last = i + k + 1 == n;
                        bool lit = qp_plain(c) && !(last && (c == ' ' || c == '\t'));

                        if (col == 0 && k == 0 && qp_line_start_special(s + i, n - i))
                                lit = false;
                        if (lit)
                                tok[w++] = (char) c;
                        else {
                                tok[w++] = '=';
                                tok[w++] = hex_upper[c >> 4];
                                tok[w++] = hex_upper[c & 15];
                        }
                }
                limit = i + cl == n ? QP_LINE_MAX : QP_LINE_MAX - 1;
                if (col + w > limit) {
                        buf_puts(b, "=\r\n");
                        col = 0;
                        continue; /* line-start rules apply again */
                }
                buf_put(b, tok, w);
                col += w;
                i += cl;
        }
}

/* LF or CRLF line ends become CRLF; ends with CRLF. */
static void qp_put(buf_t *b, const char *s) {
        size_t n = strlen(s);

        for (size_t start = 0; start < n;) {
                const char *nl = memchr(s + start, '\n', n - start);
                size_t end = nl ? (size_t) (nl - s) : n, line_end = end;

                if (nl && line_end > start && s[line_end - 1] == '\r')
                        line_end--;
                qp_line(b, s + start, line_end - start);
                buf_puts(b, "\r\n");
                start = nl ? end + 1 : n;
        }
}

static void b64_lines(buf_t *b, const unsigned char *s, size_t n) {
        for (size_t i = 0; i < n; i += B64_LINE_BYTES) {
                b64_put(b, s + i, n - i < B64_LINE_BYTES ? n - i : B64_LINE_BYTES);
                buf_puts(b, "\r\n");
        }
}

static int text_part(buf_t *b, const char *subtype, const char *raw) {
        char *text = sanitize(raw, false);

        if (!text)
                return -ENOMEM;
        buf_printf(b, "Content-Type: text/%s; charset=UTF-8\r\n", subtype);
        buf_puts(b, "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
        qp_put(b, text);
        free(text);
        return 0;
}

/* A quoted-string parameter on its own continuation line, or RFC 2231 when the value is
 * not plain ASCII. */
static void filename_param(buf_t *b, const char *param, const char *fn) {
        buf_puts(b, ";\r\n ");
        buf_puts(b, param);
        if (is_printable_ascii(fn)) {
                buf_puts(b, "=\"");
                for (const char *p = fn; *p; p++) {
                        if (*p == '"' || *p == '\\')
                                buf_putc(b, '\\');
                        buf_putc(b, *p);
                }
                buf_putc(b, '"');
                return;
        }
        buf_puts(b, "*=UTF-8''");
        for (const unsigned char *p = (const unsigned char *) fn; *p; p++) {
                if (*p < 0x80 && is_atext_or_dot((char) *p) && !strchr("%'*", *p))
                        buf_putc(b, (char) *p);
                else
                        buf_printf(b, "%%%02X", *p);
        }
}

static int attachment_part(buf_t *b, const attachment_t *a) {
        char *fn = sanitize(a->filename && a->filename[0] ? a->filename : "attachment", true);
        const char *ct = a->content_type;
        size_t n;

        if (!fn)
                return -ENOMEM;
        n = strlen(fn);
        if (n > FILENAME_MAX_BYTES) {
                n = FILENAME_MAX_BYTES;
                while (n > 0 && ((unsigned char) fn[n] & 0xc0) == 0x80)
                        n--;
                fn[n] = 0;
        }
        if (!ct || !ct[0] || !is_printable_ascii(ct) || strlen(ct) > 200)
                ct = "application/octet-stream";
        buf_printf(b, "Content-Type: %s", ct);
        filename_param(b, "name", fn);
        buf_puts(b, "\r\nContent-Disposition: attachment");
        filename_param(b, "filename", fn);
        buf_puts(b, "\r\nContent-Transfer-Encoding: base64\r\n\r\n");
        if (a->data)
                b64_lines(b, (const unsigned char *) a->data, a->size);
        free(fn);
        return 0;
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
        const unsigned char *s = p;

        for (size_t i = 0; i < n; i++) {
                h ^= s[i];
                h *= UINT64_C(0x100000001b3);
        }
        return h;
}

static uint64_t content_hash(const message_t *m) {
        uint64_t h = UINT64_C(0xcbf29ce484222325);

        if (m->message_id)
                h = fnv1a(h, m->message_id, strlen(m->message_id));
        if (m->text)
                h = fnv1a(h, m->text, strlen(m->text));
        if (m->html)
                h = fnv1a(h, m->html, strlen(m->html));
        for (size_t i = 0; i < m->n_attachments; i++)
                if (m->attachments[i].data)
                        h = fnv1a(h, m->attachments[i].data, m->attachments[i].size);
        return h;
}

/* "=_" opens every boundary: quoted-printable only ever has "=" before two hex digits or
 * a line end, and base64 has no "_", so no encoded line can start with "--" + boundary.
 * The hash keeps boundaries stable for the same message and different across messages. */
static void make_boundary(char *buf, size_t n, uint64_t hash, char kind) {
        snprintf(buf, n, "=_meccd_%016llx_%c", (unsigned long long) hash, kind);
}

static int alternative_body(buf_t *b, const message_t *m, const char *boundary) {
        int r;

        buf_printf(b, "--%s\r\n", boundary);
        r = text_part(b, "plain", m->text);
        if (r < 0)
                return r;
        buf_printf(b, "\r\n--%s\r\n", boundary);
        r = text_part(b, "html", m->html);
        if (r < 0)
                return r;
        buf_printf(b, "\r\n--%s--\r\n", boundary);
        return 0;
}

/* The text (and html) content: one text part, or multipart/alternative. */
static int content(buf_t *b, const message_t *m, uint64_t hash) {
        char boundary[64];

        if (!m->html)
                return text_part(b, "plain", m->text);
        make_boundary(boundary, sizeof boundary, hash, 'a');
        buf_printf(b, "Content-Type: multipart/alternative;\r\n boundary=\"%s\"\r\n\r\n", boundary);
        return alternative_body(b, m, boundary);
}

static int body(buf_t *b, const message_t *m) {
        uint64_t hash = content_hash(m);
        char boundary[64];
        int r;

        if (m->n_attachments == 0) {
                if (m->html)
                        buf_puts(b, "Content-Transfer-Encoding: 7bit\r\n");
                return content(b, m, hash);
        }
        make_boundary(boundary, sizeof boundary, hash, 'm');
        buf_printf(b, "Content-Type: multipart/mixed;\r\n boundary=\"%s\"\r\n", boundary);
        buf_puts(b, "Content-Transfer-Encoding: 7bit\r\n\r\n");
        buf_printf(b, "--%s\r\n", boundary);
        r = content(b, m, hash);
        if (r < 0)
                return r;
        for (size_t i = 0; i < m->n_attachments; i++) {
                buf_printf(b, "\r\n--%s\r\n", boundary);
                r = attachment_part(b, &m->attachments[i]);
                if (r < 0)
                        return r;
        }
        buf_printf(b, "\r\n--%s--\r\n", boundary);
        return 0;
}

static int headers(buf_t *b, const message_t *m) {
        hdr_t h = { .b = b };
        char *subject = NULL;
        int r;

        r = hdr_date(&h, m->date);
        if (r < 0)
                goto out;
        r = hdr_configured_mailbox(&h, "From", m->from);
        if (r < 0)
                goto out;
        r = hdr_mailbox(&h, "To", m->to_name, m->to_addr);
        if (r < 0)
                goto out;
        if (m->reply_to && m->reply_to[0]) {
                r = hdr_configured_mailbox(&h, "Reply-To", m->reply_to);
                if (r < 0)
                        goto out;
        }
        subject = sanitize(m->subject, true);
        if (!subject) {
                r = -ENOMEM;
                goto out;
        }
        hdr_begin(&h, "Subject");
        hdr_unstructured(&h, subject);
        hdr_end(&h);
        buf_puts(b, "Message-ID: ");
        buf_puts(b, m->message_id);
        buf_puts(b, "\r\nMIME-Version: 1.0\r\nAuto-Submitted: auto-generated\r\n");
out:
        free(subject);
        return r;
}

int message_build(const message_t *m, char **ret, size_t *ret_size) {
        buf_t b = BUF_INIT(MESSAGE_MAX);
        int r;

        if (!m || !ret || !m->from || !m->to_addr || !message_id_ok(m->message_id))
                return -EINVAL;
        if (m->n_attachments > 0 && !m->attachments)
                return -EINVAL;
        /* pick up a TZ the caller may have changed since the last conversion */
        tzset();
        r = headers(&b, m);
        if (r < 0)
                goto out;
        r = body(&b, m);
        if (r < 0)
                goto out;
        r = buf_steal(&b, ret, ret_size);
out:
        buf_free(&b);
        return r;
}
