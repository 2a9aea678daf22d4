/*
 * Soak test: many complete lifecycles in one process must leave nothing behind.
 *
 * One cycle:
 *   - starts a signaling server on 127.0.0.1:0 (or, with --shared-server, reuses one started
 *     before the warm-up cycle);
 *   - creates alice and bob (loopback ICE, no STUN), alice connects to bob;
 *   - exchanges text messages both ways on the default "data" channel, opens a second channel
 *     ("soak", bob -> alice) and exchanges a binary message on it;
 *   - alice sends bob Opus audio (rmw_audio_track_*), bob sends alice 64x64 VP8 video
 *     (rmw_video_track_*, unless --no-video), until bob has decoded a few audio frames and
 *     alice a few video frames. Even cycles receive through the audio / video CALLBACKS, odd
 *     cycles by POLLING;
 *   - tears everything down, three ways in turn (cycle % 3):
 *       0: free both tracks, unset the callbacks, disconnect, free bob, free alice;
 *       1: free alice then bob with tracks live and callbacks set (their tracks must be
 *          invalid afterwards);
 *       2: close the "soak" channel (both sides see the close), free bob then alice;
 *     and stops the per-cycle server. No callback may run after the free that ends it.
 *
 * Warm-up cycles run first (--warm-up W, default 1, numbered 1-W .. 0): one-time initialisation
 * of the library, and the C allocator setting up its per-thread arenas, are not leaks. Then the
 * baseline is taken: threads (/proc/self/task), open fds (/proc/self/fd), VmRSS, and the bytes
 * the C heap has handed out and not had back (glibc's mallinfo2; Rust allocates through it).
 * After the last cycle they are measured again (a shared server is part of both counts). Threads
 * and fds must be back to the baseline (a short grace period lets exiting threads finish); with
 * --max-rss-growth-kb N / --max-heap-growth-kb N, VmRSS / the heap in use may not have grown by
 * more than N kB. The heap figure is the leak detector: VmRSS also counts freed memory glibc
 * keeps in each thread's arena for reuse, which grows with the number of arenas (up to 8 per
 * core) and settles within the first few hundred cycles.
 *
 * With --disconnect-race a cycle only connects alice and bob, then alice disconnects bob
 * (rmw_transport_disconnect_peer) and both are freed at once: bob's free races with the
 * disconnect message reaching him, a teardown that has been seen to leave fds behind.
 *
 *   usage: soak [CYCLES] [--every K] [--warm-up W] [--max-rss-growth-kb N] [--max-heap-growth-kb N]
 *               [--shared-server] [--no-video] [--disconnect-race] [--log LEVEL] [--postmortem S] [--timeout-scale F]
 *               [--cycle-timeout S]
 *
 * --log LEVEL (1 error .. 5 trace) keeps the library's last log records in memory
 * (rmw_set_log_callback) and prints them with the events of a cycle that fails; with
 * --postmortem S a cycle that times out watches alice's and bob's events S seconds more
 * before it reports (the watchdog still applies).
 *
 * Output: a progress line every K cycles, then
 *   soak: cycles=N threads=a->b fds=c->d rss_kb=e->f growth_kb=g heap_kb=h->i heap_growth_kb=j
 *         sec=s ms_per_cycle=m
 *   soak: OK            (exit 0)     or     soak: FAIL ...  (exit 1; 3 on a timeout)
 *
 * Uses only include/remotemedia_webrtc.h (and tests/c/test_util.h). Run it in a network
 * namespace with only loopback.
 */
#include "test_util.h"

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

/* ---- small helpers -------------------------------------------------------------------------- */

static int g_cycle = -1; /* cycle in progress, for messages (-1: setup, 0: warm-up) */

#define EXPECT_STATUS(call, want)                                                                  \
    do {                                                                                           \
        rmw_status_t st_ = (call);                                                                 \
        if (st_ != (want))                                                                         \
            die("line %d: %s returned %s, expected %s (%s)", __LINE__, #call,                      \
                rmw_status_string((int32_t)st_), rmw_status_string((int32_t)(want)),               \
                rmw_last_error_message());                                                         \
    } while (0)

/* The open fds and what they are ("3 -> anon_inode:[eventpoll]"), for reports. */
#define MAX_FDS 512
typedef struct {
    int n;
    int fd[MAX_FDS];
    char what[MAX_FDS][64];
} fd_list_t;

static void list_fds(fd_list_t *l) {
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    l->n = 0;
    if (!d)
        die("opendir /proc/self/fd");
    while ((e = readdir(d)) != NULL && l->n < MAX_FDS) {
        char path[64];
        ssize_t len;
        int fd;
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        fd = atoi(e->d_name);
        if (fd == dirfd(d))
            continue;
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        len = readlink(path, l->what[l->n], sizeof l->what[0] - 1);
        if (len < 0)
            continue; /* closed meanwhile */
        l->what[l->n][len] = '\0';
        l->fd[l->n++] = fd;
    }
    closedir(d);
}

/* For "socket:[inode]": the line of /proc/self/net/{tcp,tcp6,udp,udp6,unix} about it. */
static void describe_socket(const char *what) {
    static const char *tables[] = {"tcp", "tcp6", "udp", "udp6", "unix", "netlink"};
    unsigned long inode;
    size_t i;
    char needle[32], line[512], path[64];
    if (sscanf(what, "socket:[%lu]", &inode) != 1)
        return;
    snprintf(needle, sizeof needle, " %lu ", inode);
    for (i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        FILE *f;
        snprintf(path, sizeof path, "/proc/self/net/%s", tables[i]);
        f = fopen(path, "r");
        if (!f)
            continue;
        while (fgets(line, sizeof line, f)) {
            char *nl = strchr(line, '\n');
            if (nl)
                *nl = ' ';
            if (strstr(line, needle)) {
                printf("soak:       %s: %s\n", tables[i], line);
                break;
            }
        }
        fclose(f);
    }
}

/* Prints the fds open now that were not open (as the same thing) in `base`, and those of
 * `base` now closed; then, if `update`, makes `base` the list of now. */
static void print_new_fds(fd_list_t *base, int update) {
    static fd_list_t now;
    int i, j;
    list_fds(&now);
    for (i = 0; i < now.n; i++) {
        int known = 0;
        for (j = 0; j < base->n; j++)
            if (base->fd[j] == now.fd[i] && strcmp(base->what[j], now.what[i]) == 0)
                known = 1;
        if (!known) {
            printf("soak:   new fd %d -> %s\n", now.fd[i], now.what[i]);
            describe_socket(now.what[i]);
        }
    }
    for (j = 0; j < base->n; j++) {
        int still = 0;
        for (i = 0; i < now.n; i++)
            if (base->fd[j] == now.fd[i] && strcmp(base->what[j], now.what[i]) == 0)
                still = 1;
        if (!still)
            printf("soak:   gone fd %d -> %s\n", base->fd[j], base->what[j]);
    }
    if (update)
        *base = now;
}

/* Bytes the C heap has handed out and not had back (glibc: all arenas plus mmapped chunks), in
 * kB; -1 elsewhere. Unlike VmRSS this does not count memory the allocator keeps for reuse, so
 * a leak shows here even when arenas are still filling. */
static long heap_in_use_kb(void) {
#ifdef __GLIBC__
    struct mallinfo2 mi = mallinfo2();
    return (long)((mi.uordblks + mi.hblkhd) / 1024);
#else
    return -1;
#endif
}

static long rss_kb_now(void) {
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        die("fopen /proc/self/status");
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

/* ---- library log, kept in memory (--log LEVEL) for failure reports ------------------------------ */

#define LOG_RING 600
static pthread_mutex_t g_ring_lock = PTHREAD_MUTEX_INITIALIZER;
static char g_ring[LOG_RING][240];
static long g_ring_n;
static double g_t_origin;

/* Runs on whichever thread logs: copies the record and returns. */
static void on_log(int32_t level, const char *target, const char *message, void *user_data) {
    (void)user_data;
    pthread_mutex_lock(&g_ring_lock);
    snprintf(g_ring[g_ring_n % LOG_RING], sizeof g_ring[0], "%9.3f L%d %s: %s", now_s() - g_t_origin, (int)level,
             target, message);
    g_ring_n++;
    pthread_mutex_unlock(&g_ring_lock);
}

static void dump_log(void) {
    long i, first;
    pthread_mutex_lock(&g_ring_lock);
    first = g_ring_n > LOG_RING ? g_ring_n - LOG_RING : 0;
    if (g_ring_n)
        printf("soak: the library's last %ld log records:\n", g_ring_n - first);
    for (i = first; i < g_ring_n; i++)
        printf("  %s\n", g_ring[i % LOG_RING]);
    pthread_mutex_unlock(&g_ring_lock);
}

/* ---- options ---------------------------------------------------------------------------------- */

static long g_cycles = 50;
static long g_every = 0;
static long g_warm_up = 1;
static long g_max_rss_growth_kb = -1;
static long g_max_heap_growth_kb = -1;
static int g_shared_server = 0;
static int g_video = 1;
static int g_disconnect_race = 0; /* --disconnect-race: connect, disconnect, free at once; nothing else */
static int g_log_level = 0;       /* --log LEVEL: keep the library's log (1 error .. 5 trace) */
static double g_postmortem = 0;   /* --postmortem S: watch a failed cycle S seconds more */
static double g_scale = 1.0;      /* multiplies every wait (valgrind: 20 or more) */
static unsigned g_cycle_timeout = 60; /* watchdog per cycle, seconds (scaled) */

static void usage(void) {
    fprintf(stderr, "usage: soak [CYCLES] [--every K] [--warm-up W] [--max-rss-growth-kb N] [--max-heap-growth-kb N]\n"
                    "            [--shared-server] [--no-video] [--disconnect-race] [--log LEVEL] [--postmortem S] [--timeout-scale F] [--cycle-timeout S]\n");
    exit(2);
}

static void parse_args(int argc, char **argv) {
    int i;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--every") == 0 && i + 1 < argc)
            g_every = atol(argv[++i]);
        else if (strcmp(a, "--warm-up") == 0 && i + 1 < argc)
            g_warm_up = atol(argv[++i]);
        else if (strcmp(a, "--max-rss-growth-kb") == 0 && i + 1 < argc)
            g_max_rss_growth_kb = atol(argv[++i]);
        else if (strcmp(a, "--max-heap-growth-kb") == 0 && i + 1 < argc)
            g_max_heap_growth_kb = atol(argv[++i]);
        else if (strcmp(a, "--shared-server") == 0)
            g_shared_server = 1;
        else if (strcmp(a, "--no-video") == 0)
            g_video = 0;
        else if (strcmp(a, "--disconnect-race") == 0)
            g_disconnect_race = 1;
        else if (strcmp(a, "--log") == 0 && i + 1 < argc)
            g_log_level = atoi(argv[++i]);
        else if (strcmp(a, "--postmortem") == 0 && i + 1 < argc)
            g_postmortem = atof(argv[++i]);
        else if (strcmp(a, "--timeout-scale") == 0 && i + 1 < argc)
            g_scale = atof(argv[++i]);
        else if (strcmp(a, "--cycle-timeout") == 0 && i + 1 < argc)
            g_cycle_timeout = (unsigned)atol(argv[++i]);
        else if (a[0] >= '0' && a[0] <= '9')
            g_cycles = atol(a);
        else
            usage();
    }
    if (g_cycles < 1 || g_warm_up < 1 || g_scale <= 0 || g_cycle_timeout < 1)
        usage();
    if (g_every <= 0)
        g_every = g_cycles >= 100 ? g_cycles / 20 : 10;
}

/* ---- events ----------------------------------------------------------------------------------- */

typedef struct {
    rmw_event_kind_t kind;
    const char *peer;  /* NULL: any */
    const char *label; /* NULL: any */
    const char *data;  /* NULL: any; else the exact payload */
    size_t len;
} want_t;

static int matches(const rmw_event_t *ev, const want_t *w) {
    if (ev->kind != w->kind)
        return 0;
    if (w->peer && (!ev->peer_id || strcmp(ev->peer_id, w->peer) != 0))
        return 0;
    if (w->label && (!ev->label || strcmp(ev->label, w->label) != 0))
        return 0;
    if (w->data && (ev->len != w->len || !ev->data || memcmp(ev->data, w->data, w->len) != 0))
        return 0;
    return 1;
}

/* The events of the cycle in progress, for the failure report. */
#define LOG_LINES 64
static char g_log[LOG_LINES][160];
static int g_log_n;
static double g_cycle_t0;

static void log_event(const char *who, const rmw_event_t *ev) {
    snprintf(g_log[g_log_n % LOG_LINES], sizeof g_log[0], "%7.3f %s: kind %d peer %s state %d label %s %s",
             now_s() - g_cycle_t0, who, (int)ev->kind, ev->peer_id ? ev->peer_id : "-", (int)ev->peer_state,
             ev->label ? ev->label : "-", ev->message ? ev->message : "");
    g_log_n++;
}

static rmw_transport_t g_alice, g_bob; /* of the cycle in progress, for the failure report */

/* What went before a failure: the cycle's events and both transports' peers and counters;
 * with --postmortem S, also what alice and bob see in the S seconds after it. */
static void report(void) {
    int i, first;
    char buf[2048];
    size_t len;
    if (g_postmortem > 0 && g_alice && g_bob) {
        double until = now_s() + g_postmortem;
        printf("soak: watching alice and bob for %.0f s more\n", g_postmortem);
        while (now_s() < until) {
            rmw_event_t ev;
            if (rmw_transport_poll_event(g_alice, &ev, 10) == RMW_OK) {
                log_event("alice (after the timeout)", &ev);
                rmw_event_release(&ev);
            }
            if (rmw_transport_poll_event(g_bob, &ev, 10) == RMW_OK) {
                log_event("bob (after the timeout)", &ev);
                rmw_event_release(&ev);
            }
        }
    }
    first = g_log_n > LOG_LINES ? g_log_n - LOG_LINES : 0;
    printf("soak: events of cycle %d (seconds since its start):\n", g_cycle);
    for (i = first; i < g_log_n; i++)
        printf("  %s\n", g_log[i % LOG_LINES]);
    len = sizeof buf;
    if (g_alice && rmw_transport_list_peers(g_alice, false, buf, &len) == RMW_OK)
        printf("  alice peers: %s\n", buf);
    len = sizeof buf;
    if (g_alice && rmw_transport_stats_json(g_alice, buf, &len) == RMW_OK)
        printf("  alice stats: %s\n", buf);
    len = sizeof buf;
    if (g_bob && rmw_transport_list_peers(g_bob, false, buf, &len) == RMW_OK)
        printf("  bob peers: %s\n", buf);
    len = sizeof buf;
    if (g_bob && rmw_transport_stats_json(g_bob, buf, &len) == RMW_OK)
        printf("  bob stats: %s\n", buf);
    dump_log();
}

/* Polls t until an event matching w comes (others are released); returns its channel. */
static rmw_data_channel_t wait_event(rmw_transport_t t, const char *who, want_t w, double timeout_s) {
    double deadline = now_s() + timeout_s * g_scale;
    for (;;) {
        rmw_event_t ev;
        rmw_status_t st = rmw_transport_poll_event(t, &ev, 20);
        if (st == RMW_OK) {
            int hit = matches(&ev, &w);
            log_event(who, &ev);
            rmw_data_channel_t ch = ev.channel;
            if (ev.kind == RMW_EVENT_ERROR)
                printf("soak: note (cycle %d): %s got an error event: %s\n", g_cycle, who,
                       ev.message ? ev.message : "");
            rmw_event_release(&ev);
            if (hit)
                return ch;
        } else if (st != RMW_ERR_TIMEOUT) {
            die("%s: rmw_transport_poll_event returned %s: %s", who, rmw_status_string((int32_t)st),
                rmw_last_error_message());
        }
        if (now_s() > deadline) {
            report();
            die("%s: event kind %d (peer %s, label %s) not seen within %.0f s", who, (int)w.kind,
                w.peer ? w.peer : "any", w.label ? w.label : "any", timeout_s * g_scale);
        }
    }
}

/* ---- media -------------------------------------------------------------------------------- */

/* Counted by the callbacks; a callback that starts (or is still running) after `closed` was set
 * (once the free or unset that ends it has returned) counts as late. */
typedef struct {
    atomic_int frames;
    atomic_int late;
    atomic_int closed;
} sink_t;

static void sink_init(sink_t *s) {
    atomic_init(&s->frames, 0);
    atomic_init(&s->late, 0);
    atomic_init(&s->closed, 0);
}

static void on_audio(const rmw_audio_frame_t *f, void *user_data) {
    sink_t *s = (sink_t *)user_data;
    if (atomic_load(&s->closed))
        atomic_fetch_add(&s->late, 1);
    if (f->samples_per_channel > 0 && f->data != NULL)
        atomic_fetch_add(&s->frames, 1);
    if (atomic_load(&s->closed))
        atomic_fetch_add(&s->late, 1);
}

static void on_video(const rmw_video_frame_t *f, void *user_data) {
    sink_t *s = (sink_t *)user_data;
    if (atomic_load(&s->closed))
        atomic_fetch_add(&s->late, 1);
    if (f->width == 64 && f->height == 64 && f->planes[0] != NULL)
        atomic_fetch_add(&s->frames, 1);
    if (atomic_load(&s->closed))
        atomic_fetch_add(&s->late, 1);
}

#define AUDIO_CHUNK 960 /* 20 ms at 48 kHz */
#define VW 64
#define VH 64

static float g_pcm[AUDIO_CHUNK];
static uint8_t g_y[VW * VH], g_u[(VW / 2) * (VH / 2)], g_v[(VW / 2) * (VH / 2)];

static void make_media(void) {
    int i;
    /* A triangle wave at 400 Hz, amplitude 0.25. */
    for (i = 0; i < AUDIO_CHUNK; i++) {
        int p = i % 120;
        g_pcm[i] = (float)(0.25 * (p < 60 ? (p - 30) / 30.0 : (90 - p) / 30.0));
    }
    memset(g_u, 128, sizeof g_u);
    memset(g_v, 128, sizeof g_v);
}

static rmw_raw_video_frame_t video_frame(int n) {
    int x, y;
    for (y = 0; y < VH; y++)
        for (x = 0; x < VW; x++)
            g_y[y * VW + x] = (uint8_t)(x * 4 + n * 8 + y);
    return i420_frame(g_y, g_u, g_v, VW, VH);
}

/* ---- one cycle ---------------------------------------------------------------------------------- */

/* A transport of this run: no STUN server, video as asked. */
static rmw_transport_t soak_transport(const char *url, const char *peer_id) {
    return new_transport_with(url, peer_id, g_video ? "\"stun_servers\":[],\"enable_video\":true"
                                                    : "\"stun_servers\":[],\"enable_video\":false");
}

static void send_text(rmw_transport_t from, const char *to, const char *msg) {
    size_t sent = 0;
    CHECK(rmw_transport_send_data(from, to, (const uint8_t *)msg, strlen(msg), false, &sent));
    if (sent != 1)
        die("a message to %s went to %zu peers", to, sent);
}

static void cycle(int n, const char *shared_url) {
    char url[128], a_id[32], b_id[32], msg[64];
    rmw_signaling_server_t server = 0;
    rmw_transport_t alice, bob;
    rmw_audio_track_t atrack;
    rmw_video_track_t vtrack = 0;
    rmw_data_channel_t soak_b, soak_a;
    sink_t audio_sink, video_sink;
    int by_callback = (n % 2) == 0;
    int teardown = ((n % 3) + 3) % 3; /* warm-up cycles have numbers <= 0 */
    int i, sent_video = 0, polled_audio = 0, polled_video = 0;
    double deadline;

    g_cycle = n;
    alarm((unsigned)(g_cycle_timeout * g_scale));
    sink_init(&audio_sink);
    sink_init(&video_sink);
    if (shared_url) {
        snprintf(url, sizeof url, "%s", shared_url);
    } else {
        server = start_server(url, sizeof url);
    }
    snprintf(a_id, sizeof a_id, "alice-%d", n);
    snprintf(b_id, sizeof b_id, "bob-%d", n);

    /* Connect. */
    g_log_n = 0;
    g_cycle_t0 = now_s();
    g_alice = alice = soak_transport(url, a_id);
    g_bob = bob = soak_transport(url, b_id);
    wait_event(alice, "alice", (want_t){RMW_EVENT_PEER_DISCOVERED, b_id, NULL, NULL, 0}, 15);
    CHECK(rmw_transport_connect_peer(alice, b_id));
    wait_event(alice, "alice", (want_t){RMW_EVENT_DATA_CHANNEL_OPEN, b_id, "data", NULL, 0}, 15);
    wait_event(bob, "bob", (want_t){RMW_EVENT_DATA_CHANNEL_OPEN, a_id, "data", NULL, 0}, 15);

    if (g_disconnect_race) {
        /* Nothing else: alice hangs up on bob and both are freed at once, so bob's free
         * meets the "disconnect" alice sent him through signaling. */
        CHECK(rmw_transport_disconnect_peer(alice, b_id));
        CHECK(rmw_transport_free(bob));
        CHECK(rmw_transport_free(alice));
        goto freed;
    }

    /* Data: three round trips on "data", one binary message on a channel bob opens. */
    for (i = 0; i < 3; i++) {
        snprintf(msg, sizeof msg, "ping %d/%d", n, i);
        send_text(alice, b_id, msg);
        wait_event(bob, "bob", (want_t){RMW_EVENT_DATA_CHANNEL_MESSAGE, a_id, "data", msg, strlen(msg)}, 10);
        snprintf(msg, sizeof msg, "pong %d/%d", n, i);
        send_text(bob, a_id, msg);
        wait_event(alice, "alice", (want_t){RMW_EVENT_DATA_CHANNEL_MESSAGE, b_id, "data", msg, strlen(msg)}, 10);
    }
    CHECK(rmw_data_channel_create(bob, a_id, "soak", NULL, &soak_b));
    wait_event(bob, "bob", (want_t){RMW_EVENT_DATA_CHANNEL_OPEN, a_id, "soak", NULL, 0}, 10);
    soak_a = wait_event(alice, "alice", (want_t){RMW_EVENT_DATA_CHANNEL_OPEN, b_id, "soak", NULL, 0}, 10);
    {
        static const uint8_t bin[8] = {0, 1, 2, 0xff, 0xfe, 0, 0x7f, 0x80};
        CHECK(rmw_data_channel_send(soak_b, bin, sizeof bin, true));
        wait_event(alice, "alice", (want_t){RMW_EVENT_DATA_CHANNEL_MESSAGE, b_id, "soak", (const char *)bin, sizeof bin},
                   10);
        CHECK(rmw_data_channel_send(soak_a, (const uint8_t *)"ack", 3, false));
        wait_event(bob, "bob", (want_t){RMW_EVENT_DATA_CHANNEL_MESSAGE, a_id, "soak", "ack", 3}, 10);
    }

    /* Media: alice -> bob audio, bob -> alice video, until a few frames of each were decoded. */
    if (by_callback) {
        CHECK(rmw_transport_set_audio_callback(bob, on_audio, &audio_sink));
        if (g_video)
            CHECK(rmw_transport_set_video_callback(alice, on_video, &video_sink));
    }
    CHECK(rmw_audio_track_new(alice, NULL, RMW_TARGET_PEER, b_id, &atrack));
    if (g_video) {
        rmw_video_track_config_t vc = rmw_video_track_config_default();
        vc.bitrate_kbps = 300;
        CHECK(rmw_video_track_new(bob, &vc, RMW_TARGET_PEER, a_id, &vtrack));
    }
    deadline = now_s() + 15 * g_scale;
    for (i = 0;; i++) {
        rmw_status_t st = rmw_audio_track_send_f32(atrack, g_pcm, AUDIO_CHUNK);
        if (st != RMW_OK && st != RMW_ERR_QUEUE_FULL)
            die("rmw_audio_track_send_f32 returned %s: %s", rmw_status_string((int32_t)st), rmw_last_error_message());
        if (g_video && i % 2 == 0) {
            rmw_raw_video_frame_t f = video_frame(sent_video++);
            CHECK(rmw_video_track_send(vtrack, &f));
        }
        if (!by_callback) {
            rmw_audio_frame_t af;
            rmw_video_frame_t vf;
            while (rmw_transport_poll_audio(bob, &af, 0) == RMW_OK) {
                polled_audio++;
                rmw_audio_frame_release(&af);
            }
            while (g_video && rmw_transport_poll_video(alice, &vf, 0) == RMW_OK) {
                if (vf.width == VW && vf.height == VH)
                    polled_video++;
                rmw_video_frame_release(&vf);
            }
        }
        {
            int audio = by_callback ? atomic_load(&audio_sink.frames) : polled_audio;
            int video = by_callback ? atomic_load(&video_sink.frames) : polled_video;
            if (audio >= 3 && (!g_video || video >= 2))
                break;
            if (now_s() > deadline && (report(), 1))
                die("media: bob decoded %d audio frames, alice %d video frames in %.0f s (%s)", audio, video,
                    15 * g_scale, by_callback ? "callbacks" : "polling");
        }
        sleep_ms(20);
    }

    /* Teardown. */
    switch (teardown) {
    case 0:
        CHECK(rmw_audio_track_free(atrack));
        CHECK(rmw_video_track_free(vtrack)); /* 0 without video: a no-op */
        EXPECT_STATUS(rmw_audio_track_send_f32(atrack, g_pcm, AUDIO_CHUNK), RMW_ERR_INVALID_HANDLE);
        if (by_callback) {
            CHECK(rmw_transport_set_audio_callback(bob, NULL, NULL));
            atomic_store(&audio_sink.closed, 1);
            if (g_video) {
                CHECK(rmw_transport_set_video_callback(alice, NULL, NULL));
                atomic_store(&video_sink.closed, 1);
            }
        }
        CHECK(rmw_transport_disconnect_peer(alice, b_id));
        CHECK(rmw_transport_free(bob));
        CHECK(rmw_transport_free(alice));
        break;
    case 1:
        CHECK(rmw_transport_free(alice));
        atomic_store(&video_sink.closed, 1);
        CHECK(rmw_transport_free(bob));
        atomic_store(&audio_sink.closed, 1);
        EXPECT_STATUS(rmw_audio_track_free(atrack), RMW_ERR_INVALID_HANDLE);
        if (g_video)
            EXPECT_STATUS(rmw_video_track_free(vtrack), RMW_ERR_INVALID_HANDLE);
        EXPECT_STATUS(rmw_data_channel_send(soak_b, (const uint8_t *)"x", 1, false), RMW_ERR_INVALID_HANDLE);
        break;
    default:
        CHECK(rmw_data_channel_close(soak_b));
        wait_event(bob, "bob", (want_t){RMW_EVENT_DATA_CHANNEL_CLOSE, a_id, "soak", NULL, 0}, 10);
        wait_event(alice, "alice", (want_t){RMW_EVENT_DATA_CHANNEL_CLOSE, b_id, "soak", NULL, 0}, 10);
        CHECK(rmw_transport_free(bob));
        atomic_store(&audio_sink.closed, 1);
        CHECK(rmw_transport_free(alice));
        atomic_store(&video_sink.closed, 1);
        break;
    }
freed:
    g_alice = g_bob = 0;
    EXPECT_STATUS(rmw_transport_free(alice), RMW_ERR_INVALID_HANDLE);
    EXPECT_STATUS(rmw_transport_free(bob), RMW_ERR_INVALID_HANDLE);
    CHECK(rmw_signaling_server_stop(server)); /* 0 (shared server) is a no-op */
    if (server)
        EXPECT_STATUS(rmw_signaling_server_stop(server), RMW_ERR_INVALID_HANDLE);

    if (atomic_load(&audio_sink.late) || atomic_load(&video_sink.late))
        die("%d audio / %d video callbacks ran after the free or unset that ended them returned",
            atomic_load(&audio_sink.late), atomic_load(&video_sink.late));
    alarm(0);
}

/* ---- main --------------------------------------------------------------------------------------- */

int main(int argc, char **argv) {
    rmw_signaling_server_t shared = 0;
    char shared_url[128];
    long base_threads, base_fds, base_rss, base_heap, end_threads, end_fds, end_rss, end_heap, max_threads = 0, c;
    long extra_thread_cycles = 0, extra_fd_cycles = 0, last_fds, max_fds = 0;
    static fd_list_t base_list, last_list;
    double t0, t_end, waited;
    int fail = 0;

    g_prog.fail = "soak: FAIL";
    g_prog.context = "cycle";
    g_prog.number = &g_cycle;
    g_prog.timeout = "timed out (deadlock or stall)";
    setvbuf(stdout, NULL, _IOLBF, 0);
    parse_args(argc, argv);
    signal(SIGALRM, on_alarm);
    make_media();
    g_t_origin = now_s();
    if (g_log_level)
        CHECK(rmw_set_log_callback(on_log, NULL, g_log_level));
    printf("soak: remotemedia-webrtc %s, %ld cycles, %s server, %s, progress every %ld\n", rmw_version(), g_cycles,
           g_shared_server ? "one shared" : "a per-cycle",
           g_disconnect_race ? "connect + disconnect_peer + free at once"
           : g_video         ? "audio+video+data"
                             : "audio+data",
           g_every);

    if (g_shared_server) {
        g_cycle = -1;
        alarm((unsigned)(g_cycle_timeout * g_scale));
        shared = start_server(shared_url, sizeof shared_url);
    }
    t0 = now_s();
    for (c = 1 - g_warm_up; c <= 0; c++)
        cycle((int)c, g_shared_server ? shared_url : NULL);
    settle(-1, -1, &base_threads, &base_fds, 0.3); /* let exiting threads go */
    base_threads = threads_now();
    base_fds = fds_now();
    base_rss = rss_kb_now();
    base_heap = heap_in_use_kb();
    list_fds(&base_list);
    last_list = base_list;
    last_fds = base_fds;
    printf("soak: %ld warm-up cycle(s) took %.2f s; baseline threads=%ld fds=%ld rss_kb=%ld heap_kb=%ld\n", g_warm_up,
           now_s() - t0, base_threads, base_fds, base_rss, base_heap);

    t0 = now_s();
    for (c = 1; c <= g_cycles; c++) {
        long th;
        cycle((int)c, g_shared_server ? shared_url : NULL);
        th = threads_now();
        if (th > max_threads)
            max_threads = th;
        if (th != base_threads)
            extra_thread_cycles++;
        {
            long fd = fds_now();
            if (fd > max_fds)
                max_fds = fd;
            if (fd != base_fds)
                extra_fd_cycles++;
            if (fd != last_fds) { /* report each change of the count right after the frees */
                if (g_disconnect_race)
                    printf("soak: note: after cycle %ld (disconnect race): %ld fds open (baseline %ld, after the "
                           "previous cycle %ld)\n",
                           c, fd, base_fds, last_fds);
                else
                    printf("soak: note: after cycle %ld (teardown %ld, media by %s): %ld fds open (baseline %ld, "
                           "after the previous cycle %ld)\n",
                           c, c % 3, c % 2 ? "polling" : "callbacks", fd, base_fds, last_fds);
                print_new_fds(&last_list, 1); /* what changed since the previous note */
                last_fds = fd;
            }
        }
        if (c % g_every == 0 || c == g_cycles) {
            double el = now_s() - t0;
            printf("soak: progress cycle=%ld/%ld threads=%ld fds=%ld rss_kb=%ld heap_kb=%ld sec=%.1f ms_per_cycle=%.1f\n",
                   c, g_cycles, th, fds_now(), rss_kb_now(), heap_in_use_kb(), el, el * 1000.0 / (double)c);
        }
    }
    t_end = now_s();
    g_cycle = (int)g_cycles + 1;
    /* The shared server (if any) belongs to the baseline: measure while it still runs. */
    waited = settle(base_threads, base_fds, &end_threads, &end_fds, 5.0);
    end_rss = rss_kb_now();
    end_heap = heap_in_use_kb();
    if (extra_thread_cycles)
        printf("soak: note: after %ld of %ld cycles the thread count right after the frees differed from the "
               "baseline (highest %ld)\n",
               extra_thread_cycles, g_cycles, max_threads);
    if (extra_fd_cycles)
        printf("soak: note: after %ld of %ld cycles the fd count right after the frees differed from the baseline "
               "(highest %ld)\n",
               extra_fd_cycles, g_cycles, max_fds);
    if (waited > 0.05)
        printf("soak: note: threads/fds took %.2f s to settle after the last free\n", waited);
    printf("soak: cycles=%ld threads=%ld->%ld fds=%ld->%ld rss_kb=%ld->%ld growth_kb=%ld heap_kb=%ld->%ld "
           "heap_growth_kb=%ld sec=%.1f ms_per_cycle=%.1f\n",
           g_cycles, base_threads, end_threads, base_fds, end_fds, base_rss, end_rss, end_rss - base_rss, base_heap,
           end_heap, end_heap - base_heap, t_end - t0, (t_end - t0) * 1000.0 / (double)g_cycles);
    if (end_threads != base_threads) {
        printf("soak: FAIL: %ld threads left behind (baseline %ld, now %ld)\n", end_threads - base_threads,
               base_threads, end_threads);
        fail = 1;
    }
    if (end_fds != base_fds) {
        printf("soak: FAIL: %ld file descriptors left behind (baseline %ld, now %ld)\n", end_fds - base_fds, base_fds,
               end_fds);
        print_new_fds(&base_list, 0);
        fail = 1;
    }
    if (g_max_rss_growth_kb >= 0 && end_rss - base_rss > g_max_rss_growth_kb) {
        printf("soak: FAIL: VmRSS grew by %ld kB (bound %ld kB)\n", end_rss - base_rss, g_max_rss_growth_kb);
        fail = 1;
    }
    if (g_max_heap_growth_kb >= 0 && base_heap >= 0 && end_heap - base_heap > g_max_heap_growth_kb) {
        printf("soak: FAIL: the C heap in use grew by %ld kB (bound %ld kB)\n", end_heap - base_heap,
               g_max_heap_growth_kb);
        fail = 1;
    }
    CHECK(rmw_signaling_server_stop(shared)); /* 0: a no-op */
    if (g_log_level)
        CHECK(rmw_set_log_callback(NULL, NULL, RMW_LOG_ERROR));
    printf("soak: %s\n", fail ? "FAILED" : "OK");
    return fail;
}
