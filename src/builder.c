/* builder.c - rendering on a thread: the rows of a batch go in under a mutex, come back
 * rendered, and an eventfd tells the loop. Rendering is pure (render.c), so the thread
 * shares nothing else with the loop. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "builder.h"

struct builder {
        pthread_t thread;
        bool started;
        pthread_mutex_t lock;
        pthread_cond_t wake;    /* for the thread: work, or quit */
        pthread_cond_t idle;    /* for builder_wait() */
        outbox_row_t *todo;     /* submitted, not yet picked up */
        outbox_row_t *done;     /* rendered, not yet taken */
        bool rendering, quit;
        int efd;
        sd_event_source *source;
        void (*done_fn)(void *);
        void *userdata;
};

static void free_rows(outbox_row_t *w)
{
        while (w) {
                outbox_row_t *next = w->next;

                outbox_row_free(w);
                w = next;
        }
}

void builder_render(outbox_row_t *rows)
{
        for (outbox_row_t *w = rows; w; w = w->next) {
                int r = outbox_job_render(w->job, &w->body, &w->body_size, &w->error);

                if (r < 0 && !w->error)
                        w->error = strdup(r == -ENOMEM ? "out of memory" : "invalid recipient or template");
                w->job = outbox_job_free(w->job);
        }
}

static void *run(void *userdata)
{
        builder_t *b = userdata;
        uint64_t one = 1;

        pthread_mutex_lock(&b->lock);
        for (;;) {
                outbox_row_t *rows;

                while (!b->todo && !b->quit)
                        pthread_cond_wait(&b->wake, &b->lock);
                if (b->quit)
                        break;
                rows = b->todo;
                b->todo = NULL;
                b->rendering = true;
                pthread_mutex_unlock(&b->lock);
                builder_render(rows);
                pthread_mutex_lock(&b->lock);
                b->done = rows;
                b->rendering = false;
                pthread_cond_broadcast(&b->idle);
                (void) !write(b->efd, &one, sizeof(one));
        }
        pthread_mutex_unlock(&b->lock);
        return NULL;
}

static int on_rendered(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        builder_t *b = userdata;
        uint64_t n;

        (void) s, (void) revents;
        (void) !read(fd, &n, sizeof(n));
        b->done_fn(b->userdata);
        return 0;
}

int builder_new(sd_event *e, void (*done)(void *userdata), void *userdata, builder_t **ret)
{
        builder_t *b = calloc(1, sizeof(*b));
        sigset_t all, old;
        int r;

        if (!b)
                return -ENOMEM;
        pthread_mutex_init(&b->lock, NULL);
        pthread_cond_init(&b->wake, NULL);
        pthread_cond_init(&b->idle, NULL);
        b->done_fn = done;
        b->userdata = userdata;
        b->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (b->efd < 0) {
                r = -errno;
                goto fail;
        }
        r = sd_event_add_io(e, &b->source, b->efd, EPOLLIN, on_rendered, b);
        if (r < 0)
                goto fail;
        /* signals are the loop's (signalfd): the thread never takes one */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = -pthread_create(&b->thread, NULL, run, b);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0)
                goto fail;
        b->started = true;
        *ret = b;
        return 0;
fail:
        builder_free(b);
        return r;
}

builder_t *builder_free(builder_t *b)
{
        if (!b)
                return NULL;
        if (b->started) {
                pthread_mutex_lock(&b->lock);
                b->quit = true;
                pthread_cond_signal(&b->wake);
                pthread_mutex_unlock(&b->lock);
                pthread_join(b->thread, NULL);
        }
        free_rows(b->todo);
        free_rows(b->done);
        sd_event_source_disable_unref(b->source);
        if (b->efd >= 0)
                close(b->efd);
        pthread_cond_destroy(&b->idle);
        pthread_cond_destroy(&b->wake);
        pthread_mutex_destroy(&b->lock);
        free(b);
        return NULL;
}

int builder_submit(builder_t *b, outbox_row_t *rows)
{
        int r = 0;

        pthread_mutex_lock(&b->lock);
        if (b->todo || b->rendering || b->done)
                r = -EBUSY;
        else {
                b->todo = rows;
                pthread_cond_signal(&b->wake);
        }
        pthread_mutex_unlock(&b->lock);
        return r;
}

outbox_row_t *builder_take(builder_t *b)
{
        outbox_row_t *rows;

        pthread_mutex_lock(&b->lock);
        rows = b->done;
        b->done = NULL;
        pthread_mutex_unlock(&b->lock);
        return rows;
}

bool builder_busy(builder_t *b)
{
        bool busy;

        pthread_mutex_lock(&b->lock);
        busy = b->todo || b->rendering || b->done;
        pthread_mutex_unlock(&b->lock);
        return busy;
}

void builder_wait(builder_t *b)
{
        pthread_mutex_lock(&b->lock);
        while (b->todo || b->rendering)
                pthread_cond_wait(&b->idle, &b->lock);
        pthread_mutex_unlock(&b->lock);
}
