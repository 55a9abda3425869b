/* fuzz-dsn.c - dsn_parse() on any bytes: never a crash, and what it reports holds together:
 * a DSN has at least one recipient, every field is a string, a permanent failure is one with
 * Action "failed" and a status of class 5, and a Message-ID is in angle brackets. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dsn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        dsn_t *d = NULL;
        int r = dsn_parse((const char *) data, size, &d);

        if (r < 0)
                return 0; /* out of memory */
        if ((r == 1) != (d != NULL))
                abort();
        if (!d)
                return 0;
        if (d->n_recipients == 0)
                abort();
        if (d->message_id && (d->message_id[0] != '<' || d->message_id[strlen(d->message_id) - 1] != '>'))
                abort();
        for (size_t i = 0; i < d->n_recipients; i++) {
                const dsn_recipient_t *x = &d->recipients[i];

                if (!x->action || !x->status || !x->final_recipient || !x->diagnostic)
                        abort();
                if (dsn_recipient_failed(x) != (strcmp(x->action, "failed") == 0 && x->status[0] == '5'))
                        abort();
        }
        dsn_free(d);
        return 0;
}
