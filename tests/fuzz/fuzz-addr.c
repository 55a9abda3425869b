/* fuzz-addr.c - addr_valid and addr_parse_mailbox on arbitrary bytes, with the promises
 * the rest of meccd relies on checked after each call. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

static char *cstring(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);

        if (!s)
                abort();
        memcpy(s, data, size);
        s[size] = '\0';
        return s;
}

/* Nothing that could end a header line or split a recipient list gets through. */
static void check_addr(const char *a) {
        if (!addr_valid(a) || strlen(a) > 254)
                abort();
        for (const char *p = a; *p; p++)
                if ((unsigned char) *p <= ' ' || (unsigned char) *p >= 0x7f || *p == '<' || *p == '>')
                        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s = cstring(data, size), *display = NULL, *addr = NULL;
        bool valid = addr_valid(s);

        if (valid)
                check_addr(s);
        if (addr_parse_mailbox(s, &display, &addr) == 0) {
                check_addr(addr);
                for (const char *p = display; p && *p; p++)
                        if ((unsigned char) *p < ' ' || *p == 0x7f)
                                abort();
                free(display);
                free(addr);
        } else if (valid)
                abort(); /* a bare valid address is a valid mailbox */
        free(s);
        return 0;
}
