/* fuzz-time.c - clock_parse_time on arbitrary text ("2026-09-22 10:30", "...Z", "+01:00"),
 * formatting whatever it accepts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        (void) argc;
        (void) argv;
        /* local times need a zone with daylight saving to be interesting */
        if (clock_set_zone("Europe/London") < 0)
                abort();
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1), buf[128];
        int64_t t;

        if (!s)
                abort();
        memcpy(s, data, size);
        s[size] = '\0';
        if (clock_parse_time(s, &t) == 0) {
                clock_format_iso(t, buf, sizeof(buf));
                clock_format_local(t, buf, sizeof(buf));
        }
        free(s);
        return 0;
}
