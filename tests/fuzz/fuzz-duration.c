/* fuzz-duration.c - clock_parse_duration on arbitrary text ("7d", "1d12h", ...). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);
        duration_t d;

        if (!s)
                abort();
        memcpy(s, data, size);
        s[size] = '\0';
        if (clock_parse_duration(s, &d) == 0) {
                /* an accepted offset must be usable in arithmetic without overflow */
                (void) duration_approx_secs(&d);
                (void) duration_is_zero(&d);
        }
        free(s);
        return 0;
}
