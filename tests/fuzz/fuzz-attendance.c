/* fuzz-attendance.c - attendance_parse on arbitrary bytes: it accepts, or refuses with a
 * sentence; what it accepts is people with an address or a name, each once. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "attendance.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        attendance_t *a = NULL;
        char *why = NULL;
        int r = attendance_parse((const char *) data, size, &a, &why);

        if (r == 0) {
                for (size_t i = 0; i < a->n; i++) {
                        const attendance_row_t *w = &a->rows[i];

                        if (!w->email || !w->name || (!*w->email && !*w->name) || w->minutes < -1)
                                abort();
                        for (size_t k = 0; k < i; k++)
                                if (*w->email && strcasecmp(w->email, a->rows[k].email) == 0)
                                        abort();
                }
                attendance_free(a);
        } else if (r != -EBADMSG || !why) {
                if (r != -ENOMEM)
                        abort();
        }
        free(why);
        return 0;
}
