/* builder.h - claimed emails rendered on a thread of their own, so that the event loop
 * sends one batch while the next is rendered, on a second core (meccd(8), DELIVERY). The
 * thread reads only what each row's job holds (outbox_job_render()) and the configuration
 * the job points to; the database stays with the loop. One batch at a time. */
#pragma once
#include <stdbool.h>
#include <systemd/sd-event.h>

#include "outbox.h"

typedef struct builder builder_t;

/* done(userdata) is called in the loop e each time a batch is rendered. */
int builder_new(sd_event *e, void (*done)(void *userdata), void *userdata, builder_t **ret);
/* Waits for the batch in hand, then frees what was not taken. */
builder_t *builder_free(builder_t *b);

/* Render a list of rows, each with its job: 0, or -EBUSY while a batch is in hand. */
int builder_submit(builder_t *b, outbox_row_t *rows);
/* The batch once rendered, in its order: each row with its body, or with the error that
 * kept it from being built; the jobs are freed. NULL while rendering, or with none. */
outbox_row_t *builder_take(builder_t *b);
/* Render rows on the calling thread, as the builder's thread does. */
void builder_render(outbox_row_t *rows);
/* A batch submitted and not yet taken. */
bool builder_busy(builder_t *b);
/* Until the batch in hand is rendered: before the configuration or the time zone it reads
 * is changed or freed. */
void builder_wait(builder_t *b);
