/* fuzz-text.c - text_utf8_decode() against the table of well-formed byte sequences in
 * the Unicode standard (Table 3-7), written out here independently of text.c; the code
 * point must encode back to the bytes it came from. The line and link checks, and
 * text_one_line(), must agree with each other on the same bytes. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Table 3-7: the length of the well-formed sequence at s, 0 for none. */
static size_t oracle(const uint8_t *s, size_t n) {
        static const struct {
                uint8_t lo[4], hi[4];
                size_t len;
        } rows[] = {
                { { 0x00 }, { 0x7f }, 1 },
                { { 0xc2, 0x80 }, { 0xdf, 0xbf }, 2 },
                { { 0xe0, 0xa0, 0x80 }, { 0xe0, 0xbf, 0xbf }, 3 },
                { { 0xe1, 0x80, 0x80 }, { 0xec, 0xbf, 0xbf }, 3 },
                { { 0xed, 0x80, 0x80 }, { 0xed, 0x9f, 0xbf }, 3 },
                { { 0xee, 0x80, 0x80 }, { 0xef, 0xbf, 0xbf }, 3 },
                { { 0xf0, 0x90, 0x80, 0x80 }, { 0xf0, 0xbf, 0xbf, 0xbf }, 4 },
                { { 0xf1, 0x80, 0x80, 0x80 }, { 0xf3, 0xbf, 0xbf, 0xbf }, 4 },
                { { 0xf4, 0x80, 0x80, 0x80 }, { 0xf4, 0x8f, 0xbf, 0xbf }, 4 },
        };

        for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
                size_t k;

                if (rows[r].len > n)
                        continue;
                for (k = 0; k < rows[r].len; k++)
                        if (s[k] < rows[r].lo[k] || s[k] > rows[r].hi[k])
                                break;
                if (k == rows[r].len)
                        return rows[r].len;
        }
        return 0;
}

static size_t encode(uint32_t cp, uint8_t out[4]) {
        if (cp < 0x80) {
                out[0] = (uint8_t) cp;
                return 1;
        }
        if (cp < 0x800) {
                out[0] = (uint8_t) (0xc0 | cp >> 6);
                out[1] = (uint8_t) (0x80 | (cp & 0x3f));
                return 2;
        }
        if (cp < 0x10000) {
                out[0] = (uint8_t) (0xe0 | cp >> 12);
                out[1] = (uint8_t) (0x80 | (cp >> 6 & 0x3f));
                out[2] = (uint8_t) (0x80 | (cp & 0x3f));
                return 3;
        }
        out[0] = (uint8_t) (0xf0 | cp >> 18);
        out[1] = (uint8_t) (0x80 | (cp >> 12 & 0x3f));
        out[2] = (uint8_t) (0x80 | (cp >> 6 & 0x3f));
        out[3] = (uint8_t) (0x80 | (cp & 0x3f));
        return 4;
}

static void check_decoder(const uint8_t *data, size_t size) {
        bool valid = true;

        for (size_t i = 0; i < size; i++) {
                uint32_t cp = UINT32_MAX;
                size_t len = text_utf8_decode((const char *) data + i, size - i, &cp), want;
                uint8_t back[4];

                want = oracle(data + i, size - i);
                if (len != want)
                        abort();
                if (len == 0) {
                        if (cp != UINT32_MAX) /* untouched */
                                abort();
                        valid = false;
                        continue;
                }
                if (encode(cp, back) != len || memcmp(back, data + i, len) != 0)
                        abort();
                i += len - 1;
        }
        if (text_utf8_valid((const char *) data, size) != valid)
                abort();
}

static void check_lines(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1), *one;

        if (!s)
                return;
        memcpy(s, data, size);
        s[size] = '\0';
        if (text_is_url(s) && !text_is_line(s))
                abort();
        one = text_one_line(s);
        if (one) {
                /* the cleaned copy is a line whenever it is not empty, and no longer */
                if (strlen(one) > strlen(s) || (one[0] && !text_is_line(one)))
                        abort();
                free(one);
        }
        free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        check_decoder(data, size);
        check_lines(data, size);
        return 0;
}
