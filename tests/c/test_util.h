/* Small helpers shared by the hand-written C test programs of tests/c_api.rs. */
#ifndef RMW_TEST_UTIL_H
#define RMW_TEST_UTIL_H

#define _POSIX_C_SOURCE 200809L

#include "remotemedia_webrtc.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define UTIL static __attribute__((unused))

/* Exits with a message naming the call, its status and the library's error text. */
#define CHECK(call)                                                                                \
    do {                                                                                           \
        rmw_status_t st_ = (call);                                                                 \
        if (st_ != RMW_OK)                                                                         \
            die("line %d: %s returned %s: %s", __LINE__, #call, rmw_status_string((int32_t)st_),    \
                rmw_last_error_message());                                                         \
    } while (0)

UTIL void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#include <stdarg.h>
UTIL void die(const char *fmt, ...) {
    va_list ap;
    fflush(stdout);
    printf("FAIL: ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    _exit(1);
}

UTIL double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

UTIL void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0) {
    }
}

UTIL void on_alarm(int sig) {
    static const char msg[] = "FAIL: timed out (a call blocked?)\n";
    (void)sig;
    if (write(STDOUT_FILENO, msg, sizeof msg - 1) < 0) { /* nothing to do */
    }
    _exit(3);
}

UTIL void watchdog(unsigned seconds) {
    signal(SIGALRM, on_alarm);
    alarm(seconds);
}

/* Starts a signaling server on a free loopback port; writes its URL to url. */
UTIL rmw_signaling_server_t start_server(char *url, size_t cap) {
    rmw_signaling_server_t s = 0;
    size_t len = cap;
    CHECK(rmw_signaling_server_start("127.0.0.1:0", 0, &s));
    CHECK(rmw_signaling_server_url(s, url, &len));
    return s;
}

/* A transport with loopback ICE on the server at url. */
UTIL rmw_transport_t new_transport(const char *url, const char *peer_id) {
    char config[512];
    rmw_transport_t t = 0;
    snprintf(config, sizeof config,
             "{\"signaling_url\":\"%s\",\"peer_id\":\"%s\",\"ice_policy\":\"loopback\","
             "\"reconnect_initial_ms\":20,\"reconnect_max_ms\":200}",
             url, peer_id);
    CHECK(rmw_transport_new(config, &t));
    return t;
}

/* Polls t until an event with `kind` (and, if peer is not NULL, that peer id; if label is not
 * NULL, that label) comes; other events are released. Dies after timeout_s. */
UTIL void poll_until(rmw_transport_t t, rmw_event_kind_t kind, const char *peer, const char *label, double timeout_s) {
    double deadline = now_s() + timeout_s;
    for (;;) {
        rmw_event_t ev;
        rmw_status_t st = rmw_transport_poll_event(t, &ev, 50);
        if (st == RMW_OK) {
            int match = ev.kind == kind && (peer == NULL || (ev.peer_id && strcmp(ev.peer_id, peer) == 0)) &&
                        (label == NULL || (ev.label && strcmp(ev.label, label) == 0));
            if (ev.kind == RMW_EVENT_ERROR)
                printf("note: error event: %s\n", ev.message ? ev.message : "");
            rmw_event_release(&ev);
            if (match)
                return;
        } else if (st != RMW_ERR_TIMEOUT) {
            die("rmw_transport_poll_event: %s: %s", rmw_status_string((int32_t)st), rmw_last_error_message());
        }
        if (now_s() > deadline)
            die("event kind %d (peer %s) not seen within %.0f s", (int)kind, peer ? peer : "any", timeout_s);
    }
}

#endif /* RMW_TEST_UTIL_H */
