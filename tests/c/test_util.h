/*
 * The harness shared by the C test programs of tests/c (built by tests/c_api.rs and
 * tests/soak.rs; bad_input_harness.h, for the program tests/c_api.rs generates, builds on it):
 * failure lines, a watchdog, checks, clocks, /proc counts, threads, and loopback servers,
 * transports, events and frames. Header-only: every helper is static and may go unused.
 */
#ifndef RMW_TEST_UTIL_H
#define RMW_TEST_UTIL_H

#define _POSIX_C_SOURCE 200809L

#include "remotemedia_webrtc.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define UTIL static __attribute__((unused))

/* ---- failure lines ------------------------------------------------------------------------------
 * A failure line starts "<fail>: ", or "<fail> (<context> N): " while a context is set (soak:
 * "soak: FAIL (cycle 3): ", stress_free: "FAIL (round 1): "); FAILF adds its source line:
 * "FAIL line 42: ", "FAIL (round 1, line 42): ". After a fatal failure (die, the watchdog) the
 * trailer line follows, if any ("stress_free: FAILED"). The Rust tests read these lines and the
 * exit codes (1: failed, 3: timed out): a program sets g_prog first thing in main and no more. */

typedef struct {
    const char *fail;     /* how a failure line starts */
    const char *context;  /* NULL, or what *number counts ("cycle", "round") */
    const int *number;
    const char *trailer;  /* NULL, or the line (with its '\n') printed after a fatal failure */
    const char *timeout;  /* the watchdog's message */
    int timeout_own_line; /* the watchdog's message starts a new line (it may cut one short) */
} test_program_t;

UTIL test_program_t g_prog = {"FAIL", NULL, NULL, NULL, "timed out (a call blocked?)", 0};

/* Appends s to buf (cap bytes, *n of them used), as far as it fits. */
UTIL void put_str(char *buf, size_t cap, size_t *n, const char *s) {
    while (*s != '\0' && *n + 1 < cap)
        buf[(*n)++] = *s++;
    buf[*n] = '\0';
}

UTIL void put_int(char *buf, size_t cap, size_t *n, long v) {
    char digits[24];
    int k = 0;
    unsigned long u = v < 0 ? 0UL - (unsigned long)v : (unsigned long)v;
    do {
        digits[k++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        digits[k++] = '-';
    while (k > 0 && *n + 1 < cap)
        buf[(*n)++] = digits[--k];
    buf[*n] = '\0';
}

/* The start of a failure line (with `line` > 0, naming that source line) in buf. No stdio: the
 * watchdog's signal handler uses it too. Returns its length. */
UTIL size_t fail_prefix(char *buf, size_t cap, int line) {
    size_t n = 0;
    buf[0] = '\0';
    put_str(buf, cap, &n, g_prog.fail);
    if (g_prog.context != NULL) {
        put_str(buf, cap, &n, " (");
        put_str(buf, cap, &n, g_prog.context);
        put_str(buf, cap, &n, " ");
        put_int(buf, cap, &n, *g_prog.number);
        if (line > 0) {
            put_str(buf, cap, &n, ", line ");
            put_int(buf, cap, &n, line);
        }
        put_str(buf, cap, &n, ")");
    } else if (line > 0) {
        put_str(buf, cap, &n, " line ");
        put_int(buf, cap, &n, line);
    }
    put_str(buf, cap, &n, ": ");
    return n;
}

UTIL void print_failure(int line, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Prints a failure line: prefix, message, newline. */
UTIL void print_failure(int line, const char *fmt, va_list ap) {
    char prefix[160];
    fail_prefix(prefix, sizeof prefix, line);
    printf("%s", prefix);
    vprintf(fmt, ap);
    printf("\n");
}

UTIL void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Prints a failure line (and the trailer) and exits 1. */
UTIL void die(const char *fmt, ...) {
    va_list ap;
    fflush(stdout);
    va_start(ap, fmt);
    print_failure(0, fmt, ap);
    va_end(ap);
    if (g_prog.trailer != NULL)
        printf("%s", g_prog.trailer);
    fflush(stdout);
    _exit(1);
}

UTIL void on_alarm(int sig) {
    char msg[256];
    size_t n = 0;
    (void)sig;
    msg[0] = '\0';
    if (g_prog.timeout_own_line)
        put_str(msg, sizeof msg, &n, "\n");
    n += fail_prefix(msg + n, sizeof msg - n, 0);
    put_str(msg, sizeof msg, &n, g_prog.timeout);
    put_str(msg, sizeof msg, &n, "\n");
    if (g_prog.trailer != NULL)
        put_str(msg, sizeof msg, &n, g_prog.trailer);
    if (write(STDOUT_FILENO, msg, n) < 0) { /* nothing more to do */
    }
    _exit(3);
}

/* The watchdog: `seconds` from now (or from a later alarm() call), on_alarm prints g_prog.timeout
 * as a failure line and exits 3. */
UTIL void watchdog(unsigned seconds) {
    signal(SIGALRM, on_alarm);
    alarm(seconds);
}

/* ---- checks ----------------------------------------------------------------------------------- */

/* Exits with a message naming the call, its status and the library's error text. */
#define CHECK(call)                                                                                \
    do {                                                                                           \
        rmw_status_t st_ = (call);                                                                 \
        if (st_ != RMW_OK)                                                                         \
            die("line %d: %s returned %s: %s", __LINE__, #call, rmw_status_string((int32_t)st_),    \
                rmw_last_error_message());                                                         \
    } while (0)

/* Failures that do not stop the program (FAILF, EXPECT, EXPECT_TRUE); any thread may count one. */
UTIL atomic_int g_failures;

UTIL void fail_at(int line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

UTIL void fail_at(int line, const char *fmt, ...) {
    va_list ap;
    atomic_fetch_add(&g_failures, 1);
    va_start(ap, fmt);
    print_failure(line, fmt, ap);
    va_end(ap);
    fflush(stdout);
}

#define FAILF(...) fail_at(__LINE__, __VA_ARGS__)

/* `call` must return `want`; an error status must come with a non-empty message. */
#define EXPECT(call, want)                                                                         \
    do {                                                                                           \
        rmw_status_t got_ = (call);                                                                \
        if (got_ != (want))                                                                        \
            FAILF("%s returned %s, expected %s (%s)", #call, rmw_status_string((int32_t)got_),        \
                  rmw_status_string((int32_t)(want)), got_ == RMW_OK ? "" : rmw_last_error_message()); \
        else if ((want) != RMW_OK && rmw_last_error_message()[0] == '\0')                           \
            FAILF("%s: no error message", #call);                                                  \
    } while (0)

#define EXPECT_TRUE(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond))                                                                               \
            FAILF(__VA_ARGS__);                                                                    \
    } while (0)

/* 1 if all n bytes at p are b (say, an out-parameter the call was not to write). */
UTIL int all_bytes(const void *p, size_t n, unsigned char b) {
    const unsigned char *c = (const unsigned char *)p;
    size_t i;
    for (i = 0; i < n; i++)
        if (c[i] != b)
            return 0;
    return 1;
}

/* ---- time, threads, /proc ---------------------------------------------------------------------- */

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

/* Starts fn(arg) on a new thread *th; dies if it cannot. */
UTIL void start_thread(pthread_t *th, void *(*fn)(void *), void *arg) {
    if (pthread_create(th, NULL, fn, arg) != 0)
        die("pthread_create");
}

/* Entries of a /proc directory, "." and ".." and the directory's own fd excepted. */
UTIL long count_dir(const char *path, int minus_own_fd) {
    DIR *d = opendir(path);
    struct dirent *e;
    long n = 0;
    if (!d)
        die("opendir %s", path);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return minus_own_fd ? n - 1 : n;
}

UTIL long threads_now(void) { return count_dir("/proc/self/task", 0); }
UTIL long fds_now(void) { return count_dir("/proc/self/fd", 1); }

/* Threads and fds, re-measured for up to `grace_s` while they differ from the baseline (a thread
 * that was joined may still be listed for a moment). Returns the time it took. */
UTIL double settle(long base_threads, long base_fds, long *threads, long *fds, double grace_s) {
    double t0 = now_s();
    for (;;) {
        *threads = threads_now();
        *fds = fds_now();
        if ((*threads == base_threads && *fds == base_fds) || now_s() - t0 > grace_s)
            return now_s() - t0;
        sleep_ms(20);
    }
}

/* ---- servers, transports, events ---------------------------------------------------------------- */

/* Starts a signaling server on a free loopback port; writes its URL to url. */
UTIL rmw_signaling_server_t start_server(char *url, size_t cap) {
    rmw_signaling_server_t s = 0;
    size_t len = cap;
    CHECK(rmw_signaling_server_start("127.0.0.1:0", 0, &s));
    CHECK(rmw_signaling_server_url(s, url, &len));
    return s;
}

/* A transport with loopback ICE on the server at url, with extra JSON fields (may be ""). */
UTIL rmw_transport_t new_transport_with(const char *url, const char *peer_id, const char *extra) {
    char config[768];
    rmw_transport_t t = 0;
    snprintf(config, sizeof config,
             "{\"signaling_url\":\"%s\",\"peer_id\":\"%s\",\"ice_policy\":\"loopback\","
             "\"reconnect_initial_ms\":20,\"reconnect_max_ms\":200%s%s}",
             url, peer_id, extra[0] ? "," : "", extra);
    CHECK(rmw_transport_new(config, &t));
    return t;
}

UTIL rmw_transport_t new_transport(const char *url, const char *peer_id) {
    return new_transport_with(url, peer_id, "");
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

/* alice (peer id a) connects to bob (peer id b) on their server; returns once the "data" channel
 * is open on both sides. Polls their events meanwhile. */
UTIL void connect_pair(rmw_transport_t alice, const char *a, rmw_transport_t bob, const char *b) {
    poll_until(alice, RMW_EVENT_PEER_DISCOVERED, b, NULL, 15);
    CHECK(rmw_transport_connect_peer(alice, b));
    poll_until(alice, RMW_EVENT_DATA_CHANNEL_OPEN, b, "data", 15);
    poll_until(bob, RMW_EVENT_DATA_CHANNEL_OPEN, a, "data", 15);
}

/* Polls t until an event of `kind` comes and leaves it in *ev (the caller releases it); other
 * events are released, an error event among them counted as a failure ("<who>: error event").
 * Returns 0 if none came within timeout_s; dies if polling fails. */
UTIL int next_event_of_kind(rmw_transport_t t, const char *who, rmw_event_kind_t kind, double timeout_s,
                            rmw_event_t *ev) {
    double deadline = now_s() + timeout_s;
    for (;;) {
        rmw_status_t st = rmw_transport_poll_event(t, ev, 50);
        if (st == RMW_OK) {
            if (ev->kind == RMW_EVENT_ERROR)
                FAILF("%s: error event: %s", who, ev->message ? ev->message : "");
            if (ev->kind == kind)
                return 1;
            rmw_event_release(ev);
        } else if (st != RMW_ERR_TIMEOUT) {
            die("rmw_transport_poll_event: %s", rmw_status_string((int32_t)st));
        }
        if (now_s() > deadline)
            return 0;
    }
}

/* Value of "key": in a flat JSON object (stats), or -1. */
UTIL long long json_number(const char *json, const char *key) {
    char pattern[64];
    const char *p;
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    p = strstr(json, pattern);
    return p ? strtoll(p + strlen(pattern), NULL, 10) : -1;
}

/* ---- media ------------------------------------------------------------------------------------- */

/* A frame description of w x h pixels in `format`, without planes. */
UTIL rmw_raw_video_frame_t raw_frame(int32_t format, uint32_t w, uint32_t h) {
    rmw_raw_video_frame_t f;
    memset(&f, 0, sizeof f);
    f.format = format;
    f.width = w;
    f.height = h;
    return f;
}

/* An I420 frame description of w x h tight planes at y/u/v. */
UTIL rmw_raw_video_frame_t i420_frame(const uint8_t *y, const uint8_t *u, const uint8_t *v, uint32_t w, uint32_t h) {
    rmw_raw_video_frame_t f = raw_frame(RMW_PIXEL_I420, w, h);
    uint32_t cw = (w + 1) / 2, ch = (h + 1) / 2;
    f.planes[0] = y;
    f.planes[1] = u;
    f.planes[2] = v;
    f.strides[0] = w;
    f.strides[1] = f.strides[2] = cw;
    f.sizes[0] = (size_t)w * h;
    f.sizes[1] = f.sizes[2] = (size_t)cw * ch;
    return f;
}

/* ---- B, C of audio_api.c and video_api.c: bob receives by callback, then by polling ---------------- */

/* Waits until bob's callback has taken `want` frames (*count, under lock), looking every
 * `every_ms`; dies after 15 s. */
UTIL void wait_callback_frames(pthread_mutex_t *lock, const int *count, int want, long every_ms, const char *media) {
    double deadline = now_s() + 15;
    for (;;) {
        int n;
        pthread_mutex_lock(lock);
        n = *count;
        pthread_mutex_unlock(lock);
        if (n >= want)
            return;
        if (now_s() > deadline)
            die("bob's %s callback got %d frames in 15 s", media, n);
        sleep_ms(every_ms);
    }
}

/* Bob's polling, after a poll that gave no frame (status st): 1 when alice is done and nothing
 * came for 500 ms since last_frame. Dies after 10 s without a frame, or on an error. */
UTIL int polling_done(rmw_status_t st, atomic_int *sender_done, double last_frame, const char *media) {
    if (st != RMW_ERR_TIMEOUT)
        die("rmw_transport_poll_%s: %s: %s", media, rmw_status_string((int32_t)st), rmw_last_error_message());
    if (atomic_load(sender_done) && now_s() - last_frame > 0.5)
        return 1;
    if (now_s() - last_frame > 10)
        die("no %s polled for 10 s", media);
    return 0;
}

/* ---- D of audio_api.c and video_api.c: freeing transports while media flows --------------------- */

/* Bob's audio or video callback, counted across the free of his transport. */
typedef struct {
    atomic_int calls;
    atomic_int late;        /* calls after rmw_transport_free returned */
    atomic_int freed;       /* the transport was freed (by main or by the callback) */
    atomic_int free_status; /* with free_in_callback: what the free inside the callback returned */
    bool free_in_callback;
} count_t;

UTIL void count_init(count_t *c, bool free_in_callback) {
    atomic_init(&c->calls, 0);
    atomic_init(&c->late, 0);
    atomic_init(&c->freed, 0);
    atomic_init(&c->free_status, 1);
    c->free_in_callback = free_in_callback;
}

/* Counts a call of the callback; returns 1 if it is the one to free its own transport (the
 * tenth, with free_in_callback). A call after the free counts as late. */
UTIL int count_call(count_t *c) {
    if (atomic_load(&c->freed)) {
        atomic_fetch_add(&c->late, 1);
        return 0;
    }
    return atomic_fetch_add(&c->calls, 1) + 1 == 10 && c->free_in_callback;
}

/* A thread feeding alice's track in real time until told to stop, and what its sends returned. */
typedef struct {
    uint64_t track; /* rmw_audio_track_t or rmw_video_track_t */
    atomic_int stop;
    atomic_int ok, invalid_handle, closed, not_found, other; /* statuses seen */
    atomic_int last;
} feeder_t;

/* Counts the status of one of fd's sends; prints an unexpected one. */
UTIL void feeder_count(feeder_t *fd, rmw_status_t st) {
    atomic_store(&fd->last, (int)st);
    if (st == RMW_OK)
        atomic_fetch_add(&fd->ok, 1);
    else if (st == RMW_ERR_INVALID_HANDLE)
        atomic_fetch_add(&fd->invalid_handle, 1);
    else if (st == RMW_ERR_CLOSED)
        atomic_fetch_add(&fd->closed, 1);
    else if (st == RMW_ERR_NOT_FOUND) /* a send racing the free, inside the library */
        atomic_fetch_add(&fd->not_found, 1);
    else {
        atomic_fetch_add(&fd->other, 1);
        printf("   feeder: send returned %s: %s\n", rmw_status_string((int32_t)st), rmw_last_error_message());
    }
}

/* What differs between the audio and the video teardowns. */
typedef struct {
    const char *name;                               /* "audio", "video" */
    void (*watch)(rmw_transport_t bob, count_t *c); /* sets bob's callback, counting into c */
    void *(*feeder)(void *fd);                      /* the feeder_t thread */
    rmw_status_t (*track_free)(uint64_t track);     /* rmw_audio_track_free, rmw_video_track_free */
    rmw_status_t (*send_one)(uint64_t track);       /* sends a small frame */
    long watch_sends_ms;                            /* D1: how long no send may succeed after alice's free */
} media_t;

/* Sets bob's counted callback (c), then starts feeding alice's track to him (fd, on thread th). */
UTIL void start_feeding(const media_t *m, rmw_transport_t bob, uint64_t track, count_t *c, bool free_in_callback,
                        feeder_t *fd, pthread_t *th) {
    memset(fd, 0, sizeof *fd);
    fd->track = track;
    count_init(c, free_in_callback);
    m->watch(bob, c);
    start_thread(th, m->feeder, fd);
}

/* D1: bob freed by main with his callback set while alice's track (fed by another thread)
 * streams to him; then alice freed with that track live, under the feeder's feet. */
UTIL void teardown_by_main(const media_t *m, rmw_transport_t alice, rmw_transport_t bob, uint64_t track) {
    count_t c;
    feeder_t fd;
    pthread_t th;
    double deadline;
    start_feeding(m, bob, track, &c, false, &fd, &th);
    deadline = now_s() + 10;
    while (atomic_load(&c.calls) < 10) {
        if (now_s() > deadline)
            die("D1: only %d %s callbacks in 10 s", atomic_load(&c.calls), m->name);
        sleep_ms(5);
    }
    EXPECT(rmw_transport_free(bob), RMW_OK);
    atomic_store(&c.freed, 1);
    sleep_ms(200);
    EXPECT_TRUE(atomic_load(&c.late) == 0, "D1: %d %s callbacks after rmw_transport_free(bob) returned",
                atomic_load(&c.late), m->name);
    EXPECT(rmw_transport_free(alice), RMW_OK); /* the feeder is sending on its track meanwhile */
    {
        int ok_at_free = atomic_load(&fd.ok);
        sleep_ms(m->watch_sends_ms);
        EXPECT_TRUE(atomic_load(&fd.ok) == ok_at_free, "D1: sends still succeed after the transport was freed");
        EXPECT_TRUE(atomic_load(&fd.last) == RMW_ERR_INVALID_HANDLE, "D1: send after the free returned %s",
                    rmw_status_string(atomic_load(&fd.last)));
    }
    atomic_store(&fd.stop, 1);
    pthread_join(th, NULL);
    EXPECT(m->track_free(track), RMW_ERR_INVALID_HANDLE);
    /* While the free is in progress a send may see RMW_ERR_CLOSED or RMW_ERR_NOT_FOUND;
     * afterwards only RMW_ERR_INVALID_HANDLE (checked above). */
    EXPECT_TRUE(atomic_load(&fd.other) == 0, "D1: the feeder saw unexpected statuses");
    printf("D1: freed bob (%s callback set, %d calls, none late) and alice (track live; feeder: %d sends OK, "
           "then %d RMW_ERR_INVALID_HANDLE, %d RMW_ERR_CLOSED, %d RMW_ERR_NOT_FOUND)\n",
           m->name, atomic_load(&c.calls), atomic_load(&fd.ok), atomic_load(&fd.invalid_handle),
           atomic_load(&fd.closed), atomic_load(&fd.not_found));
}

/* D2: bob's callback frees bob; alice keeps streaming, then frees her track and herself. */
UTIL void teardown_in_callback(const media_t *m, rmw_transport_t alice, rmw_transport_t bob, uint64_t track) {
    count_t c;
    feeder_t fd;
    pthread_t th;
    double deadline = now_s() + 10;
    char buf[64];
    size_t len = sizeof buf;
    start_feeding(m, bob, track, &c, true, &fd, &th);
    while (!atomic_load(&c.freed)) {
        if (now_s() > deadline)
            die("D2: the %s callback did not free bob in 10 s (%d calls)", m->name, atomic_load(&c.calls));
        sleep_ms(5);
    }
    EXPECT_TRUE(atomic_load(&c.free_status) == RMW_OK, "D2: rmw_transport_free inside the %s callback returned %s",
                m->name, rmw_status_string(atomic_load(&c.free_status)));
    sleep_ms(200);
    EXPECT_TRUE(atomic_load(&c.late) == 0, "D2: %d %s callbacks after the callback freed its transport",
                atomic_load(&c.late), m->name);
    EXPECT(rmw_transport_peer_id(bob, buf, &len), RMW_ERR_INVALID_HANDLE);
    atomic_store(&fd.stop, 1);
    pthread_join(th, NULL);
    EXPECT_TRUE(atomic_load(&fd.other) == 0 && atomic_load(&fd.invalid_handle) == 0 && atomic_load(&fd.closed) == 0 &&
                    atomic_load(&fd.not_found) == 0,
                "D2: alice's sends failed while bob went away");
    EXPECT(m->track_free(track), RMW_OK);
    EXPECT(m->send_one(track), RMW_ERR_INVALID_HANDLE);
    EXPECT(rmw_transport_free(alice), RMW_OK);
    printf("D2: bob's %s callback freed bob (%d calls, none late); alice's %d sends went on\n", m->name,
           atomic_load(&c.calls), atomic_load(&fd.ok));
}

#endif /* RMW_TEST_UTIL_H */
