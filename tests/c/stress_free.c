/*
 * Freeing while media streams, from many threads at once and from inside callbacks.
 *
 * Each round builds P pairs (sender S -> receiver R, loopback ICE). S has an Opus audio track
 * and a 64x64 VP8 video track aimed at R, fed by a feeder thread that also sends data messages;
 * R has event, audio and video callbacks set and answers every message from inside its event
 * callback; S has an event callback too. A hammer thread calls the stats functions of every
 * handle in a loop. Once every R decodes audio and video, all pairs are torn down AT ONCE
 * (the killer threads of all pairs start together), each pair in one of four ways:
 *
 *   mode 0  two threads free R at the same time, two others free S's audio track at the same
 *           time (the feeder still sending on it); then S is freed by a fifth thread.
 *   mode 1  R's audio callback frees R (rmw_transport_free from inside the callback) while
 *           another thread frees R from outside, in turn (by round):
 *             1a: the outside free starts while the callback's free is in progress;
 *             1b: the callback calls free while the outside free is in progress (waiting for
 *                 that very callback to return);
 *           then a third thread frees S under the feeder's feet.
 *   mode 2  R's video callback frees S (another transport, mid-stream), R's audio callback is
 *           unset from another thread meanwhile, and R's event callback frees R itself when S
 *           leaves the signaling server (RMW_EVENT_PEER_LEFT).
 *   mode 3  three threads unset R's event, audio and video callbacks at the same time; then
 *           four threads free S's audio track, S's video track, S and R at the same time.
 *
 * Checked:
 *   - no callback of a transport starts or is still running after a free of that transport
 *     returned RMW_OK, nor a callback after the rmw_transport_set_*_callback(NULL) that
 *     removed it returned (each callback checks an atomic flag set right after those calls
 *     return, on entry and on exit; the per-round context is free()d at the end of the round,
 *     so a later callback is also a use-after-free for valgrind);
 *   - of concurrent frees of one handle exactly one returns RMW_OK, the others
 *     RMW_ERR_INVALID_HANDLE or RMW_ERR_CLOSED;
 *   - a send on a track or transport begun after its free returned gives
 *     RMW_ERR_INVALID_HANDLE; no call ever gives RMW_ERR_INTERNAL;
 *   - no deadlock: an alarm fails the program (exit 3) if a round takes longer than
 *     --timeout seconds (default 60);
 *   - threads and fds after the last round are those before the first.
 *
 *   usage: stress_free [--rounds N] [--pairs P] [--timeout S] [--scale F]
 *          (defaults: 3 rounds of 4 pairs; --scale multiplies the waits, e.g. under valgrind)
 *
 * Last line: "stress_free: OK ..." (exit 0) or "stress_free: FAILED ..." (exit 1).
 * Uses only include/remotemedia_webrtc.h (and tests/c/test_util.h). Run it in a network
 * namespace with only loopback.
 */
#include "test_util.h"

#include <pthread.h>
#include <stdatomic.h>

/* ---- helpers ------------------------------------------------------------------------------- */

static int g_round;

/* Statuses that no call may ever return here. */
static int bad_status(rmw_status_t st) {
    return st == RMW_ERR_INTERNAL || st == RMW_ERR_INVALID_ARGUMENT || st == RMW_ERR_CODEC ||
           st == RMW_ERR_WOULD_BLOCK || st == RMW_ERR_BUFFER_TOO_SMALL;
}

/* ---- options ------------------------------------------------------------------------------- */

static int g_rounds = 3, g_pairs = 4;
static unsigned g_timeout = 60;
static double g_scale = 1.0;

static void parse_args(int argc, char **argv) {
    int i;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            g_rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--pairs") == 0 && i + 1 < argc)
            g_pairs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
            g_timeout = (unsigned)atoi(argv[++i]);
        else if (strcmp(argv[i], "--scale") == 0 && i + 1 < argc)
            g_scale = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: stress_free [--rounds N] [--pairs P] [--timeout S] [--scale F]\n");
            exit(2);
        }
    }
    if (g_rounds < 1 || g_pairs < 1 || g_pairs > 16 || g_timeout < 1 || g_scale <= 0) {
        fprintf(stderr, "stress_free: bad arguments\n");
        exit(2);
    }
}

/* ---- state -------------------------------------------------------------------------------- */

struct pair;

typedef struct {
    struct pair *pair;
    char id[32];
    char other[32];
    rmw_transport_t h;
    int receiver;
    atomic_int freed;                    /* a free returned RMW_OK (or: must be treated so) */
    atomic_int ev_off, au_off, vi_off;   /* set_*_callback(NULL) returned */
    atomic_int ev_calls, au_calls, vi_calls;
    atomic_int late;                     /* callbacks after what ended them */
    atomic_int discovered, data_open, msgs, peer_left;
    atomic_int free_ok, free_lost;       /* frees that returned RMW_OK / lost a race */
    atomic_int self_freed;               /* freed from inside one of its own callbacks */
} tctx_t;

typedef struct pair {
    int index, mode;
    tctx_t s, r;
    rmw_audio_track_t atrack;
    rmw_video_track_t vtrack;
    atomic_int atrack_freed, vtrack_freed; /* invalid for sure from now on */
    atomic_int atrack_free_ok, vtrack_free_ok;
    atomic_int go;                         /* teardown started */
    int mode1b;                            /* mode 1: the outside free goes first */
    atomic_int cb_freeing;                 /* mode 1: the audio callback is (about to be) in its free */
    atomic_int ext_freeing;                /* mode 1b: the outside free is about to start */
    atomic_int claim_r, claim_s;           /* a callback took on freeing R / S */
    atomic_int stop;                       /* feeder: stop */
    atomic_int sent_audio, sent_video, sent_data, after_free_bad, unexpected;
    pthread_t feeder;
} pair_t;

/* Frees t's transport; keeps count; returns the status. */
static rmw_status_t free_transport(tctx_t *t) {
    rmw_status_t st = rmw_transport_free(t->h);
    if (st == RMW_OK) {
        atomic_fetch_add(&t->free_ok, 1);
        atomic_store(&t->freed, 1);
        if (!t->receiver) { /* S's tracks go with it */
            atomic_store(&t->pair->atrack_freed, 1);
            atomic_store(&t->pair->vtrack_freed, 1);
        }
    } else if (st == RMW_ERR_INVALID_HANDLE || st == RMW_ERR_CLOSED) {
        atomic_fetch_add(&t->free_lost, 1);
    } else {
        FAILF("rmw_transport_free(%s) returned %s: %s", t->id, rmw_status_string((int32_t)st), rmw_last_error_message());
    }
    return st;
}

static void free_track(pair_t *p, int video) {
    rmw_status_t st = video ? rmw_video_track_free(p->vtrack) : rmw_audio_track_free(p->atrack);
    if (st == RMW_OK) {
        atomic_fetch_add(video ? &p->vtrack_free_ok : &p->atrack_free_ok, 1);
        atomic_store(video ? &p->vtrack_freed : &p->atrack_freed, 1);
    } else if (st != RMW_ERR_INVALID_HANDLE && st != RMW_ERR_CLOSED) {
        FAILF("pair %d: rmw_%s_track_free returned %s: %s", p->index, video ? "video" : "audio",
              rmw_status_string((int32_t)st), rmw_last_error_message());
    }
}

/* A callback of t must not run once `off` or t->freed is set. */
static void check_late(tctx_t *t, atomic_int *off, const char *what, const char *when) {
    if (atomic_load(&t->freed) || atomic_load(off)) {
        atomic_fetch_add(&t->late, 1);
        printf("LATE: %s %s callback of %s (freed %d, unset %d)\n", when, what, t->id, atomic_load(&t->freed),
               atomic_load(off));
    }
}

/* ---- callbacks ------------------------------------------------------------------------------- */

static void on_event(const rmw_event_t *ev, void *user_data) {
    tctx_t *t = (tctx_t *)user_data;
    pair_t *p = t->pair;
    int self = 0;
    check_late(t, &t->ev_off, "event", "entered");
    atomic_fetch_add(&t->ev_calls, 1);
    if (ev->transport != t->h)
        FAILF("event for transport %llu delivered to %s's callback", (unsigned long long)ev->transport, t->id);
    switch (ev->kind) {
    case RMW_EVENT_PEER_DISCOVERED:
        if (ev->peer_id && strcmp(ev->peer_id, t->other) == 0)
            atomic_store(&t->discovered, 1);
        break;
    case RMW_EVENT_DATA_CHANNEL_OPEN:
        if (ev->label && strcmp(ev->label, "data") == 0)
            atomic_store(&t->data_open, 1);
        break;
    case RMW_EVENT_DATA_CHANNEL_MESSAGE:
        atomic_fetch_add(&t->msgs, 1);
        if (t->receiver && ev->peer_id) { /* answer from inside the callback */
            rmw_status_t st = rmw_transport_send_data(t->h, ev->peer_id, (const uint8_t *)"pong", 4, false, NULL);
            if (bad_status(st))
                FAILF("%s: send_data inside the event callback returned %s", t->id, rmw_status_string((int32_t)st));
        }
        break;
    case RMW_EVENT_PEER_LEFT:
        if (ev->peer_id && strcmp(ev->peer_id, t->other) == 0) {
            atomic_store(&t->peer_left, 1);
            /* mode 2: R frees itself when S has gone. */
            if (t->receiver && p->mode == 2 && atomic_load(&p->go) && !atomic_exchange(&p->claim_r, 1)) {
                self = 1;
                if (free_transport(t) == RMW_OK)
                    atomic_store(&t->self_freed, 1);
            }
        }
        break;
    default:
        break;
    }
    if (!self)
        check_late(t, &t->ev_off, "event", "still running");
}

static void on_audio(const rmw_audio_frame_t *f, void *user_data) {
    tctx_t *t = (tctx_t *)user_data;
    pair_t *p = t->pair;
    int self = 0;
    check_late(t, &t->au_off, "audio", "entered");
    atomic_fetch_add(&t->au_calls, 1);
    if (f->transport != t->h || f->samples_per_channel == 0 || f->data == NULL)
        FAILF("%s: odd audio frame (transport %llu, %zu samples)", t->id, (unsigned long long)f->transport,
              f->samples_per_channel);
    /* mode 1: R frees itself from its audio callback (while another thread frees it too). */
    if (p->mode == 1 && atomic_load(&p->go) && !atomic_exchange(&p->claim_r, 1)) {
        self = 1;
        if (p->mode1b) { /* let the outside free start first: it must wait for this callback */
            double until = now_s() + 5 * g_scale;
            atomic_store(&p->cb_freeing, 1);
            while (!atomic_load(&p->ext_freeing) && now_s() < until)
                sleep_ms(1);
            sleep_ms(20);
        } else {
            atomic_store(&p->cb_freeing, 1);
        }
        if (free_transport(t) == RMW_OK)
            atomic_store(&t->self_freed, 1);
    }
    if (!self)
        check_late(t, &t->au_off, "audio", "still running");
}

static void on_video(const rmw_video_frame_t *f, void *user_data) {
    tctx_t *t = (tctx_t *)user_data;
    pair_t *p = t->pair;
    check_late(t, &t->vi_off, "video", "entered");
    atomic_fetch_add(&t->vi_calls, 1);
    if (f->transport != t->h || f->width != 64 || f->height != 64 || f->planes[0] == NULL)
        FAILF("%s: odd video frame (%ux%u)", t->id, f->width, f->height);
    /* mode 2: R frees S (another transport) from its video callback. */
    if (p->mode == 2 && atomic_load(&p->go) && !atomic_exchange(&p->claim_s, 1)) {
        rmw_status_t st = free_transport(&p->s);
        if (st != RMW_OK)
            FAILF("pair %d: R's video callback could not free S: %s", p->index, rmw_status_string((int32_t)st));
    }
    check_late(t, &t->vi_off, "video", "still running");
}

/* ---- feeder: audio, video and data from S, until told to stop ---------------------------------- */

#define AUDIO_CHUNK 960
static float g_pcm[AUDIO_CHUNK];
static uint8_t g_y[64 * 64], g_uv[32 * 32];

/* `st` came from a send begun when `was_freed` was already set: it must be INVALID_HANDLE. */
static void feeder_status(pair_t *p, const char *what, rmw_status_t st, int was_freed, atomic_int *ok) {
    if (st == RMW_OK)
        atomic_fetch_add(ok, 1);
    if (was_freed && st != RMW_ERR_INVALID_HANDLE) {
        if (atomic_fetch_add(&p->after_free_bad, 1) == 0)
            FAILF("pair %d: %s begun after the free returned gave %s", p->index, what, rmw_status_string((int32_t)st));
    } else if (bad_status(st)) {
        if (atomic_fetch_add(&p->unexpected, 1) == 0)
            FAILF("pair %d: %s returned %s: %s", p->index, what, rmw_status_string((int32_t)st), rmw_last_error_message());
    }
}

static void *feeder(void *arg) {
    pair_t *p = (pair_t *)arg;
    rmw_raw_video_frame_t f = i420_frame(g_y, g_uv, g_uv, 64, 64);
    int i;
    for (i = 0; !atomic_load(&p->stop); i++) {
        int was;
        was = atomic_load(&p->atrack_freed);
        feeder_status(p, "rmw_audio_track_send_f32", rmw_audio_track_send_f32(p->atrack, g_pcm, AUDIO_CHUNK), was,
                      &p->sent_audio);
        if (i % 2 == 0) {
            was = atomic_load(&p->vtrack_freed);
            feeder_status(p, "rmw_video_track_send", rmw_video_track_send(p->vtrack, &f), was, &p->sent_video);
        }
        if (i % 3 == 0) {
            was = atomic_load(&p->s.freed);
            feeder_status(p, "rmw_transport_send_data",
                          rmw_transport_send_data(p->s.h, p->r.id, (const uint8_t *)"ping", 4, false, NULL), was,
                          &p->sent_data);
        }
        sleep_ms(20);
    }
    return NULL;
}

/* ---- hammer: stats of every handle, all the time ------------------------------------------------ */

typedef struct {
    pair_t *pairs;
    int n;
    atomic_int stop;
    atomic_int calls;
} hammer_t;

static void *hammer(void *arg) {
    hammer_t *h = (hammer_t *)arg;
    char buf[4096];
    while (!atomic_load(&h->stop)) {
        int i;
        for (i = 0; i < h->n; i++) {
            pair_t *p = &h->pairs[i];
            size_t len, count;
            rmw_status_t st;
            len = sizeof buf;
            st = rmw_transport_stats_json(p->s.h, buf, &len);
            if (bad_status(st))
                FAILF("rmw_transport_stats_json: %s", rmw_status_string((int32_t)st));
            len = sizeof buf;
            st = rmw_audio_track_stats_json(p->atrack, buf, &len);
            if (bad_status(st))
                FAILF("rmw_audio_track_stats_json: %s", rmw_status_string((int32_t)st));
            len = sizeof buf;
            st = rmw_video_track_stats_json(p->vtrack, buf, &len);
            if (bad_status(st))
                FAILF("rmw_video_track_stats_json: %s", rmw_status_string((int32_t)st));
            st = rmw_transport_peer_count(p->r.h, true, &count);
            if (bad_status(st))
                FAILF("rmw_transport_peer_count: %s", rmw_status_string((int32_t)st));
            atomic_fetch_add(&h->calls, 4);
        }
        sleep_ms(2);
    }
    return NULL;
}

/* ---- killers ------------------------------------------------------------------------------------ */

enum { FREE_R, FREE_S, FREE_ATRACK, FREE_VTRACK, UNSET_EV, UNSET_AU, UNSET_VI, FREE_R_RACING_CB, FREE_S_AFTER_CB };

/* Mode 1: waits (bounded) until R's audio callback has started to free R. */
static void wait_cb_freeing(pair_t *p) {
    double until = now_s() + 5 * g_scale;
    while (!atomic_load(&p->cb_freeing) && now_s() < until)
        sleep_ms(1);
    if (!atomic_load(&p->cb_freeing))
        printf("note: pair %d: no audio callback within %.0f s of the teardown\n", p->index, 5 * g_scale);
}

typedef struct {
    pair_t *p;
    int action;
    int delay_ms;
    pthread_barrier_t *start;
} killer_t;

static void *killer(void *arg) {
    killer_t *k = (killer_t *)arg;
    pair_t *p = k->p;
    rmw_status_t st;
    pthread_barrier_wait(k->start);
    if (k->delay_ms > 0)
        sleep_ms(k->delay_ms);
    switch (k->action) {
    case FREE_R:
        free_transport(&p->r);
        break;
    case FREE_S:
        free_transport(&p->s);
        break;
    case FREE_R_RACING_CB:
        wait_cb_freeing(p);
        atomic_store(&p->ext_freeing, 1);
        free_transport(&p->r);
        break;
    case FREE_S_AFTER_CB:
        wait_cb_freeing(p);
        sleep_ms(30);
        free_transport(&p->s);
        break;
    case FREE_ATRACK:
        free_track(p, 0);
        break;
    case FREE_VTRACK:
        free_track(p, 1);
        break;
    case UNSET_EV:
    case UNSET_AU:
    case UNSET_VI:
        st = k->action == UNSET_EV   ? rmw_transport_set_event_callback(p->r.h, NULL, NULL)
             : k->action == UNSET_AU ? rmw_transport_set_audio_callback(p->r.h, NULL, NULL)
                                     : rmw_transport_set_video_callback(p->r.h, NULL, NULL);
        if (st == RMW_OK)
            atomic_store(k->action == UNSET_EV ? &p->r.ev_off : k->action == UNSET_AU ? &p->r.au_off : &p->r.vi_off, 1);
        else if (st != RMW_ERR_INVALID_HANDLE && st != RMW_ERR_CLOSED)
            FAILF("pair %d: unsetting a callback of R returned %s", p->index, rmw_status_string((int32_t)st));
        else if (p->mode == 3)
            FAILF("pair %d: unsetting a callback of the live R returned %s", p->index, rmw_status_string((int32_t)st));
        break;
    }
    return NULL;
}

/* ---- one round ----------------------------------------------------------------------------------- */

static void tctx_init(tctx_t *t, pair_t *p, int receiver, int round) {
    memset(t, 0, sizeof *t);
    t->pair = p;
    t->receiver = receiver;
    snprintf(t->id, sizeof t->id, "%c%d-%d", receiver ? 'r' : 's', round, p->index);
    snprintf(t->other, sizeof t->other, "%c%d-%d", receiver ? 's' : 'r', round, p->index);
}

static void wait_flag(atomic_int *flag, int at_least, double timeout_s, const char *what, int index) {
    double deadline = now_s() + timeout_s * g_scale;
    while (atomic_load(flag) < at_least) {
        if (now_s() > deadline)
            die("pair %d: %s not within %.0f s", index, what, timeout_s * g_scale);
        sleep_ms(5);
    }
}

typedef struct {
    int r_self, r_external, mode1a, mode1b;
    int peer_left_fallbacks;
} tally_t;

static void round_run(const char *url, int round, tally_t *tally) {
    pair_t *pairs = calloc((size_t)g_pairs, sizeof *pairs);
    killer_t kills[16 * 5];
    pthread_t kth[16 * 5];
    pthread_barrier_t start;
    hammer_t hm;
    pthread_t hth;
    int i, nk = 0;
    double t0 = now_s();

    g_round = round;
    alarm(g_timeout);
    if (!pairs)
        die("calloc");

    /* Set up: S connects to R; R decodes audio and video by callback. */
    for (i = 0; i < g_pairs; i++) {
        pair_t *p = &pairs[i];
        rmw_video_track_config_t vc = rmw_video_track_config_default();
        p->index = i;
        p->mode = (round + i) % 4;
        tctx_init(&p->s, p, 0, round);
        tctx_init(&p->r, p, 1, round);
        p->s.h = new_transport_with(url, p->s.id, "\"stun_servers\":[]");
        CHECK(rmw_transport_set_event_callback(p->s.h, on_event, &p->s));
        p->r.h = new_transport_with(url, p->r.id, "\"stun_servers\":[]");
        CHECK(rmw_transport_set_event_callback(p->r.h, on_event, &p->r));
        CHECK(rmw_transport_set_audio_callback(p->r.h, on_audio, &p->r));
        CHECK(rmw_transport_set_video_callback(p->r.h, on_video, &p->r));
        wait_flag(&p->s.discovered, 1, 15, "S discovering R", i);
        CHECK(rmw_transport_connect_peer(p->s.h, p->r.id));
        wait_flag(&p->s.data_open, 1, 15, "S's data channel open", i);
        wait_flag(&p->r.data_open, 1, 15, "R's data channel open", i);
        CHECK(rmw_audio_track_new(p->s.h, NULL, RMW_TARGET_PEER, p->r.id, &p->atrack));
        vc.bitrate_kbps = 300;
        CHECK(rmw_video_track_new(p->s.h, &vc, RMW_TARGET_PEER, p->r.id, &p->vtrack));
        start_thread(&p->feeder, feeder, p);
    }
    for (i = 0; i < g_pairs; i++) {
        wait_flag(&pairs[i].r.au_calls, 5, 20, "R decoding audio", i);
        wait_flag(&pairs[i].r.vi_calls, 3, 20, "R decoding video", i);
        wait_flag(&pairs[i].s.msgs, 1, 20, "S receiving R's answer", i);
    }
    printf("round %d: %d pairs streaming after %.1f s; tearing down\n", round, g_pairs, now_s() - t0);

    memset(&hm, 0, sizeof hm);
    hm.pairs = pairs;
    hm.n = g_pairs;
    start_thread(&hth, hammer, &hm);

    /* Killers of all pairs, released together. */
#define KILL(pp, act, delay)                                                                       \
    do {                                                                                           \
        kills[nk].p = (pp);                                                                        \
        kills[nk].action = (act);                                                                  \
        kills[nk].delay_ms = (delay);                                                              \
        kills[nk].start = &start;                                                                  \
        nk++;                                                                                      \
    } while (0)
    for (i = 0; i < g_pairs; i++) {
        pair_t *p = &pairs[i];
        switch (p->mode) {
        case 0:
            KILL(p, FREE_R, 0);
            KILL(p, FREE_R, 0);
            KILL(p, FREE_ATRACK, 0);
            KILL(p, FREE_ATRACK, 0);
            break;
        case 1:
            p->mode1b = round % 2;
            KILL(p, FREE_R_RACING_CB, 0);
            KILL(p, FREE_S_AFTER_CB, 0);
            break;
        case 2:
            KILL(p, UNSET_AU, 0);
            break;
        default:
            KILL(p, UNSET_EV, 0);
            KILL(p, UNSET_AU, 0);
            KILL(p, UNSET_VI, 0);
            break;
        }
    }
    if (pthread_barrier_init(&start, NULL, (unsigned)nk + 1) != 0)
        die("pthread_barrier_init");
    for (i = 0; i < nk; i++)
        start_thread(&kth[i], killer, &kills[i]);
    for (i = 0; i < g_pairs; i++)
        atomic_store(&pairs[i].go, 1); /* arms the callbacks of modes 1 and 2 */
    pthread_barrier_wait(&start);
    for (i = 0; i < nk; i++)
        pthread_join(kth[i], NULL);
    pthread_barrier_destroy(&start);

    /* Second wave: mode 0 frees S; mode 3 frees both tracks, S and R at once. */
    nk = 0;
    for (i = 0; i < g_pairs; i++) {
        pair_t *p = &pairs[i];
        if (p->mode == 0) {
            KILL(p, FREE_S, 0);
        } else if (p->mode == 3) {
            KILL(p, FREE_ATRACK, 0);
            KILL(p, FREE_VTRACK, 0);
            KILL(p, FREE_S, 0);
            KILL(p, FREE_R, 0);
        }
    }
#undef KILL
    if (nk > 0) {
        sleep_ms(50); /* in mode 3 frames now go to R's poll queues */
        if (pthread_barrier_init(&start, NULL, (unsigned)nk + 1) != 0)
            die("pthread_barrier_init");
        for (i = 0; i < nk; i++)
            start_thread(&kth[i], killer, &kills[i]);
        pthread_barrier_wait(&start);
        for (i = 0; i < nk; i++)
            pthread_join(kth[i], NULL);
        pthread_barrier_destroy(&start);
    }

    /* Callback-driven frees (modes 1 and 2) complete by themselves. */
    for (i = 0; i < g_pairs; i++) {
        pair_t *p = &pairs[i];
        double deadline = now_s() + 15 * g_scale;
        while (!(atomic_load(&p->s.freed) && atomic_load(&p->r.freed)) && now_s() < deadline)
            sleep_ms(5);
        if (p->mode == 2 && !atomic_load(&p->r.freed)) {
            /* R's event callback did not see S leave: free R from here (not what is tested). */
            printf("note: pair %d: no RMW_EVENT_PEER_LEFT within %.0f s; R freed from main\n", i, 15 * g_scale);
            tally->peer_left_fallbacks++;
            atomic_store(&p->claim_r, 1);
            free_transport(&p->r);
        }
        if (!atomic_load(&p->s.freed) || !atomic_load(&p->r.freed))
            die("pair %d (mode %d): S freed %d, R freed %d after %.0f s", i, p->mode, atomic_load(&p->s.freed),
                atomic_load(&p->r.freed), 15 * g_scale);
    }

    sleep_ms(200); /* room for late callbacks, which must not come */
    atomic_store(&hm.stop, 1);
    pthread_join(hth, NULL);
    for (i = 0; i < g_pairs; i++) {
        atomic_store(&pairs[i].stop, 1);
        pthread_join(pairs[i].feeder, NULL);
    }

    for (i = 0; i < g_pairs; i++) {
        pair_t *p = &pairs[i];
        tctx_t *both[2] = {&p->s, &p->r};
        int k;
        for (k = 0; k < 2; k++) {
            tctx_t *t = both[k];
            char buf[64];
            size_t len = sizeof buf;
            if (atomic_load(&t->free_ok) != 1)
                FAILF("pair %d (mode %d): %d frees of %s returned RMW_OK (expected exactly 1)", i, p->mode,
                      atomic_load(&t->free_ok), t->id);
            if (atomic_load(&t->late) != 0)
                FAILF("pair %d (mode %d): %d callbacks of %s ran after the free/unset that ended them returned", i,
                      p->mode, atomic_load(&t->late), t->id);
            if (rmw_transport_peer_id(t->h, buf, &len) != RMW_ERR_INVALID_HANDLE)
                FAILF("pair %d: %s still valid after its free", i, t->id);
        }
        if (p->mode == 0 && (atomic_load(&p->r.free_lost) != 1 || atomic_load(&p->atrack_free_ok) != 1))
            FAILF("pair %d (mode 0): R frees that lost %d (expected 1), audio track frees OK %d (expected 1)", i,
                  atomic_load(&p->r.free_lost), atomic_load(&p->atrack_free_ok));
        if (p->mode == 3 && (atomic_load(&p->atrack_free_ok) > 1 || atomic_load(&p->vtrack_free_ok) > 1))
            FAILF("pair %d: a track freed twice with RMW_OK", i);
        if (p->mode == 1) {
            tally->r_self += atomic_load(&p->r.self_freed);
            tally->r_external += !atomic_load(&p->r.self_freed);
            if (atomic_load(&p->cb_freeing))
                *(p->mode1b ? &tally->mode1b : &tally->mode1a) += 1;
            if (atomic_load(&p->r.free_lost) != 1)
                FAILF("pair %d (mode 1%c): %d frees of R lost the race (expected 1)", i, p->mode1b ? 'b' : 'a',
                      atomic_load(&p->r.free_lost));
        }
        if (p->mode == 2 && !atomic_load(&p->r.self_freed) && atomic_load(&p->r.peer_left))
            FAILF("pair %d: R saw S leave but did not free itself", i);
        if (rmw_audio_track_free(p->atrack) != RMW_ERR_INVALID_HANDLE ||
            rmw_video_track_free(p->vtrack) != RMW_ERR_INVALID_HANDLE)
            FAILF("pair %d: a track of S still valid after S was freed", i);
        printf("  pair %d mode %d%s: R got %d events, %d audio, %d video callbacks (freed %s); S sent %d audio, %d "
               "video, %d data OK\n",
               i, p->mode, p->mode != 1 ? "" : p->mode1b ? "b" : "a", atomic_load(&p->r.ev_calls), atomic_load(&p->r.au_calls), atomic_load(&p->r.vi_calls),
               atomic_load(&p->r.self_freed) ? "from its own callback" : "from another thread",
               atomic_load(&p->sent_audio), atomic_load(&p->sent_video), atomic_load(&p->sent_data));
    }
    printf("round %d: done in %.1f s (hammer: %d calls)\n", round, now_s() - t0, atomic_load(&hm.calls));
    free(pairs); /* a callback after this is a use-after-free too */
    alarm(0);
}

int main(int argc, char **argv) {
    rmw_signaling_server_t server = 0;
    char url[128];
    long threads0, fds0, threads1 = 0, fds1 = 0;
    tally_t tally;
    double t0 = now_s();
    int r;

    g_prog.context = "round";
    g_prog.number = &g_round;
    g_prog.trailer = "stress_free: FAILED\n";
    g_prog.timeout = "timed out: deadlock or stall";
    setvbuf(stdout, NULL, _IOLBF, 0);
    parse_args(argc, argv);
    signal(SIGALRM, on_alarm);
    memset(&tally, 0, sizeof tally);
    for (r = 0; r < AUDIO_CHUNK; r++)
        g_pcm[r] = (float)((r % 96) - 48) / 200.0f;
    memset(g_y, 90, sizeof g_y);
    memset(g_uv, 128, sizeof g_uv);
    printf("stress_free: remotemedia-webrtc %s, %d rounds of %d pairs\n", rmw_version(), g_rounds, g_pairs);

    alarm(g_timeout);
    server = start_server(url, sizeof url);
    threads0 = threads_now();
    fds0 = fds_now();

    for (r = 0; r < g_rounds; r++)
        round_run(url, r, &tally);

    settle(threads0, fds0, &threads1, &fds1, 5.0);
    if (threads1 != threads0 || fds1 != fds0)
        FAILF("threads %ld -> %ld, fds %ld -> %ld after every transport was freed", threads0, threads1, fds0, fds1);
    CHECK(rmw_signaling_server_stop(server));

    printf("stress_free: %s rounds=%d pairs=%d failures=%d mode1a=%d mode1b=%d mode1_won_by_callback=%d "
           "mode1_won_outside=%d peer_left_fallbacks=%d threads=%ld->%ld fds=%ld->%ld sec=%.1f\n",
           atomic_load(&g_failures) ? "FAILED" : "OK", g_rounds, g_pairs, atomic_load(&g_failures), tally.mode1a,
           tally.mode1b, tally.r_self, tally.r_external, tally.peer_left_fallbacks, threads0, threads1, fds0, fds1,
           now_s() - t0);
    return atomic_load(&g_failures) ? 1 : 0;
}
