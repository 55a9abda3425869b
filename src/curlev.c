/* curlev.c - libcurl's multi socket interface on sd-event. */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>

#include "clock.h"
#include "curlev.h"

/* libcurl's timer fires on time: sd-event's default slack of 250 ms once held delivery
 * at 4 messages a second. A long timeout (a transfer's own, set again at every message)
 * may fire up to an eighth of it late, at most this much: sd-event then keeps the timerfd
 * as it was instead of setting it again for each message. */
#define CURLEV_TIMER_SLACK_MAX_USEC USEC_PER_SEC

struct curlev {
        sd_event *event;
        CURLM *multi;
        sd_event_source *timer;
        sd_event_source *now;   /* libcurl's "at once": a turn of the loop, no timerfd */
        bool timer_wanted;      /* false: libcurl removed its timeout, the timer may still fire */
        curlev_ops_t ops;
};

static void act(curlev_t *c, curl_socket_t fd, int action)
{
        int running;

        (void) curl_multi_socket_action(c->multi, fd, action, &running);
        c->ops.after(c->ops.userdata);
}

static int on_io(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
        int action = 0;

        (void) src;
        if (revents & EPOLLIN)
                action |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                action |= CURL_CSELECT_OUT;
        if (revents & (EPOLLERR | EPOLLHUP))
                action |= CURL_CSELECT_ERR;
        act(userdata, fd, action);
        return 0;
}

static int on_timer(sd_event_source *src, uint64_t usec, void *userdata)
{
        curlev_t *c = userdata;

        (void) usec;
        if (!c->timer_wanted)
                return sd_event_source_set_enabled(src, SD_EVENT_OFF);
        c->timer_wanted = false;
        act(c, CURL_SOCKET_TIMEOUT, 0);
        return 0;
}

static int on_now(sd_event_source *src, void *userdata)
{
        (void) src;
        act(userdata, CURL_SOCKET_TIMEOUT, 0);
        return 0;
}

static int socket_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
        curlev_t *c = userp;
        sd_event_source *io = socketp;
        uint32_t events = 0;

        if (c->ops.on_socket)
                c->ops.on_socket(e, fd, what == CURL_POLL_REMOVE, c->ops.userdata);
        if (what == CURL_POLL_REMOVE) {
                if (io) {
                        sd_event_source_disable_unref(io);
                        curl_multi_assign(c->multi, fd, NULL);
                }
                return 0;
        }
        if (what & CURL_POLL_IN)
                events |= EPOLLIN;
        if (what & CURL_POLL_OUT)
                events |= EPOLLOUT;
        if (io)
                return sd_event_source_set_io_events(io, events) < 0 ||
                       sd_event_source_set_enabled(io, SD_EVENT_ON) < 0 ? -1 : 0;
        if (sd_event_add_io(c->event, &io, fd, events, on_io, c) < 0)
                return -1;
        curl_multi_assign(c->multi, fd, io);
        return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
        curlev_t *c = userp;
        usec_t usec = timeout_ms > 0 ? (usec_t) timeout_ms * USEC_PER_MSEC : 0;
        usec_t slack = usec / 8 > CURLEV_TIMER_SLACK_MAX_USEC ? CURLEV_TIMER_SLACK_MAX_USEC : usec / 8 + 1;

        (void) multi;
        /* "at once" comes several times per message: a deferred call costs no system call.
         * The timer keeps its time; should it fire too, libcurl finds nothing due. */
        if (timeout_ms == 0)
                return sd_event_source_set_enabled(c->now, SD_EVENT_ONESHOT) < 0 ? -1 : 0;
        (void) sd_event_source_set_enabled(c->now, SD_EVENT_OFF);
        /* libcurl removes its timeout at the end of each message and sets the same one at
         * the next: the timer is left armed (a disarm and rearm are two system calls) and
         * does nothing should it fire meanwhile */
        c->timer_wanted = timeout_ms > 0;
        if (timeout_ms < 0)
                return 0;
        if (!c->timer)
                return sd_event_add_time_relative(c->event, &c->timer, CLOCK_MONOTONIC, usec, slack,
                                                  on_timer, c) < 0 ? -1 : 0;
        return sd_event_source_set_time_accuracy(c->timer, slack) < 0 ||
               sd_event_source_set_time_relative(c->timer, usec) < 0 ||
               sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT) < 0 ? -1 : 0;
}

int curlev_new(sd_event *e, const curlev_ops_t *ops, curlev_t **ret)
{
        curlev_t *c = calloc(1, sizeof(*c));

        if (!c)
                return -ENOMEM;
        c->event = sd_event_ref(e);
        c->ops = *ops;
        c->multi = curl_multi_init();
        if (!c->multi || sd_event_add_defer(e, &c->now, on_now, c) < 0 ||
            sd_event_source_set_enabled(c->now, SD_EVENT_OFF) < 0) {
                curlev_free(c);
                return -ENOMEM;
        }
        curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
        curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
        curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
        curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
        *ret = c;
        return 0;
}

CURLM *curlev_multi(const curlev_t *c)
{
        return c->multi;
}

curlev_t *curlev_free(curlev_t *c)
{
        if (!c)
                return NULL;
        if (c->multi)
                curl_multi_cleanup(c->multi);
        sd_event_source_disable_unref(c->timer);
        sd_event_source_disable_unref(c->now);
        sd_event_unref(c->event);
        free(c);
        return NULL;
}
