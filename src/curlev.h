/* curlev.h - a libcurl multi handle driven by an sd-event loop, as curl's multi-event.c
 * drives one by libevent: libcurl's sockets become io sources, its timeout a timer. Knows
 * nothing of what is transferred: its owner adds easy handles to curlev_multi() and
 * collects finished transfers in `after`. */
#pragma once
#include <stdbool.h>
#include <curl/curl.h>
#include <systemd/sd-event.h>

typedef struct curlev curlev_t;

typedef struct {
        /* after libcurl did some work: read curl_multi_info_read() here */
        void (*after)(void *userdata);
        /* optional: a socket of an easy handle is watched (or, removed, no longer) */
        void (*on_socket)(CURL *easy, curl_socket_t fd, bool removed, void *userdata);
        void *userdata;
} curlev_ops_t;

int curlev_new(sd_event *e, const curlev_ops_t *ops, curlev_t **ret);
CURLM *curlev_multi(const curlev_t *c);
/* The owner removes and cleans its easy handles first. */
curlev_t *curlev_free(curlev_t *c);
