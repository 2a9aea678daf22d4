/*
 * video_call.c: "alice" and "bob" send each other live video (VP8) on this machine. For 2
 * seconds each sends a moving test pattern at 30 frames a second, with the frame's number drawn
 * into the picture as 16 black/white blocks; then each says what it saw.
 *
 * Uses only <remotemedia_webrtc.h> (read examples_c/chat.c and call.c first: signaling server,
 * transports, connecting, audio). This example shows:
 *   - sending: rmw_video_track_new() once, then rmw_video_track_send() with every new frame,
 *     described by an rmw_raw_video_frame_t (pixel format, size, planes, strides, sizes). The
 *     call copies the pixels and returns at once; the library converts, encodes and sends on
 *     a thread of its own. alice sends I420 (what cameras and video decoders give), bob sends
 *     RGBA with padded rows (what reading back a GPU texture gives).
 *   - receiving decoded frames, both ways the library offers:
 *       alice POLLS:  rmw_transport_poll_video() + rmw_video_frame_release(), on this thread;
 *       bob uses the CALLBACK: rmw_transport_set_video_callback(), on bob's video thread.
 *   - choosing the received layout: bob keeps the default (I420 planes), alice asks for RGBA
 *     in her transport's JSON configuration ("video_output_format":"rgba").
 *   - RMW_EVENT_TRACK_ADDED with media_kind RMW_MEDIA_VIDEO when the other side's video arrives.
 *
 * Build:  cc -std=c99 video_call.c $(pkg-config --cflags --libs remotemedia_webrtc) -lm -pthread -o video_call
 */
#define _POSIX_C_SOURCE 200809L

#include <remotemedia_webrtc.h>

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define W 320 /* picture size */
#define H 240
#define FPS 30
#define FRAMES (2 * FPS) /* 2 seconds */
#define RGBA_STRIDE (4 * W + 64) /* bob's rows: 4 bytes a pixel, then 64 bytes of padding */

/* Exits with the call, its status and the library's error text when a call fails. */
#define CHECK(call)                                                                              \
    do {                                                                                         \
        rmw_status_t st_ = (call);                                                               \
        if (st_ != RMW_OK) {                                                                     \
            fprintf(stderr, "video_call: FAILED: %s:%d: %s returned %s: %s\n", __FILE__, __LINE__, \
                    #call, rmw_status_string((int32_t)st_), rmw_last_error_message());           \
            exit(1);                                                                             \
        }                                                                                        \
    } while (0)

static void fail(const char *what) {
    fprintf(stderr, "video_call: FAILED: %s\n", what);
    exit(1);
}

static void on_alarm(int sig) {
    static const char msg[] = "video_call: FAILED: timed out\n";
    (void)sig;
    if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) { /* nothing more to do */
    }
    _exit(2);
}

/* ---- the test pattern ------------------------------------------------------------------------ */

/* Brightness (0 black .. 255 white) of pixel (x, y) in frame n: a gradient, a white bar moving
 * 8 pixels a frame, and n in binary as 16 blocks of 16 x 32 pixels along the top (bit 0 at the
 * left; white is 1). */
static int shade(int x, int y, int n) {
    if (y >= 8 && y < 40 && x >= 32 && x < 32 + 16 * 16)
        return (n >> ((x - 32) / 16)) & 1 ? 255 : 0;
    if (x >= (8 * n) % W && x < (8 * n) % W + 32)
        return 255;
    return 30 + y * 140 / H + x * 30 / W;
}

/* I420 luma uses the "video range" 16..235 for black..white. */
static int shade_to_luma(int s) { return 16 + s * 219 / 255; }

/* The frame number written in a received picture: the middle of each block, read from the
 * first byte of each pixel (`bytes_per_pixel` 1: I420 luma; 4: RGBA, the red byte). */
static int read_frame_number(const uint8_t *plane, uint32_t stride, int bytes_per_pixel) {
    int bit, n = 0;
    for (bit = 0; bit < 16; bit++) {
        int x, y, sum = 0;
        for (y = 16; y < 32; y++)
            for (x = 36 + 16 * bit; x < 44 + 16 * bit; x++)
                sum += plane[y * stride + x * bytes_per_pixel];
        if (sum / 128 > 128)
            n |= 1 << bit;
    }
    return n;
}

/* ---- what one side saw ----------------------------------------------------------------------- */

typedef struct {
    pthread_mutex_t lock; /* bob's is filled on his video thread, read on the main thread */
    int frames;
    int first_was_keyframe;
    int in_order; /* every frame number larger than the one before */
    int last_number;
    double squared_error; /* against the picture sent, summed over every frame */
    char codec[8];
    uint32_t width, height;
    rmw_video_format_t format;
} seen_t;

static void seen_init(seen_t *s) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    s->in_order = 1;
    s->last_number = -1;
}

/* Looks at a received frame. Its planes belong to the library: read them now, keep nothing. */
static void seen_add(seen_t *s, const rmw_video_frame_t *frame) {
    int rgba = frame->format == RMW_VIDEO_RGBA; /* else I420: planes Y, U, V */
    int n = read_frame_number(frame->planes[0], frame->strides[0], rgba ? 4 : 1);
    double error = 0;
    uint32_t x, y;
    for (y = 0; y < frame->height && y < H; y++)
        for (x = 0; x < frame->width && x < W; x++) {
            int got = frame->planes[0][y * frame->strides[0] + x * (rgba ? 4 : 1)];
            int sent = rgba ? shade((int)x, (int)y, n) : shade_to_luma(shade((int)x, (int)y, n));
            error += (double)(got - sent) * (got - sent);
        }
    pthread_mutex_lock(&s->lock);
    if (s->frames == 0)
        s->first_was_keyframe = frame->keyframe;
    if (n <= s->last_number)
        s->in_order = 0;
    s->last_number = n;
    s->squared_error += error / ((double)frame->width * frame->height);
    s->frames++;
    snprintf(s->codec, sizeof s->codec, "%s", frame->codec);
    s->width = frame->width;
    s->height = frame->height;
    s->format = frame->format;
    pthread_mutex_unlock(&s->lock);
}

/* Prints "bob: 60 video frames from alice (vp8, 320x240), ..." and checks it. */
static void report(const char *who, const char *from, seen_t *s) {
    double psnr;
    pthread_mutex_lock(&s->lock);
    psnr = s->frames ? 10 * log10(255.0 * 255.0 / (s->squared_error / s->frames + 1e-9)) : 0;
    printf("%s: %d video frames from %s (%s, %ux%u%s), %s, frame numbers %s, PSNR %.1f dB\n", who, s->frames, from,
           s->codec, (unsigned)s->width, (unsigned)s->height, s->format == RMW_VIDEO_RGBA ? " rgba" : "",
           s->first_was_keyframe ? "first a keyframe" : "first NOT a keyframe", s->in_order ? "in order" : "OUT OF ORDER",
           psnr);
    if (s->frames < FRAMES * 8 / 10 || !s->first_was_keyframe || !s->in_order || psnr < 30)
        fail("the video did not come through");
    pthread_mutex_unlock(&s->lock);
}

/* bob's video callback: runs on bob's video thread; `frame` is valid until it returns. */
static void on_bob_video(const rmw_video_frame_t *frame, void *user_data) {
    seen_add((seen_t *)user_data, frame);
}

/* ---- events ------------------------------------------------------------------------------- */

/* Handles the events of `t` that are waiting (without waiting); returns 1 if one of them is
 * `want`. */
static int drain_events(rmw_transport_t t, const char *who, rmw_event_kind_t want) {
    rmw_event_t ev;
    int seen = 0;
    while (rmw_transport_poll_event(t, &ev, 0) == RMW_OK) {
        if (ev.kind == want)
            seen = 1;
        if (ev.kind == RMW_EVENT_TRACK_ADDED && ev.media_kind == RMW_MEDIA_VIDEO)
            printf("%s: %s's video arrived (%s, %u Hz RTP clock)\n", who, ev.peer_id, ev.codec, (unsigned)ev.clock_rate);
        else if (ev.kind == RMW_EVENT_ERROR)
            fprintf(stderr, "%s: error event: %s\n", who, ev.message ? ev.message : "");
        rmw_event_release(&ev);
    }
    return seen;
}

/* Sleeps until `us` on the library's clock (rmw_clock_us: CLOCK_MONOTONIC in microseconds). */
static void sleep_until(uint64_t us) {
    uint64_t now = rmw_clock_us();
    if (us > now) {
        struct timespec ts;
        ts.tv_sec = (time_t)((us - now) / 1000000);
        ts.tv_nsec = (long)((us - now) % 1000000) * 1000;
        nanosleep(&ts, NULL);
    }
}

static void wait_event(rmw_transport_t t, const char *who, rmw_event_kind_t want) {
    uint64_t deadline = rmw_clock_us() + 20 * 1000000;
    while (!drain_events(t, who, want)) {
        if (rmw_clock_us() > deadline)
            fail("timed out waiting for an event");
        sleep_until(rmw_clock_us() + 10 * 1000);
    }
}

/* ---- the call ------------------------------------------------------------------------------ */

int main(void) {
    static uint8_t alice_y[W * H], alice_u[(W / 2) * (H / 2)], alice_v[(W / 2) * (H / 2)];
    static uint8_t bob_rgba[RGBA_STRIDE * H];
    rmw_signaling_server_t server = 0;
    rmw_transport_t alice = 0, bob = 0;
    rmw_video_track_t alice_camera = 0, bob_screen = 0;
    rmw_raw_video_frame_t alice_frame, bob_frame;
    seen_t alice_seen, bob_seen;
    char url[128], config[512];
    size_t len = sizeof url;
    uint64_t next;
    int n, x, y;

    signal(SIGALRM, on_alarm);
    alarm(30);
    seen_init(&alice_seen);
    seen_init(&bob_seen);

    /* 1. Signaling server and two transports, as in chat.c. alice wants what she receives as
     *    RGBA; bob keeps the default (I420). */
    CHECK(rmw_signaling_server_start("127.0.0.1:0", 0, &server));
    CHECK(rmw_signaling_server_url(server, url, &len));
    snprintf(config, sizeof config,
             "{\"signaling_url\":\"%s\",\"peer_id\":\"alice\",\"ice_policy\":\"loopback\","
             "\"video_output_format\":\"rgba\"}",
             url);
    CHECK(rmw_transport_new(config, &alice));
    snprintf(config, sizeof config, "{\"signaling_url\":\"%s\",\"peer_id\":\"bob\",\"ice_policy\":\"loopback\"}", url);
    CHECK(rmw_transport_new(config, &bob));

    /* 2. Connect. Every connection carries video both ways (enable_video is on by default;
     *    "video_codec":"vp9" in both configurations would make it VP9). */
    wait_event(alice, "alice", RMW_EVENT_PEER_DISCOVERED);
    CHECK(rmw_transport_connect_peer(alice, "bob"));
    wait_event(alice, "alice", RMW_EVENT_DATA_CHANNEL_OPEN);
    wait_event(bob, "bob", RMW_EVENT_DATA_CHANNEL_OPEN);
    printf("alice and bob are connected\n");

    /* 3. bob receives by callback from now on; alice polls in the loop below. */
    CHECK(rmw_transport_set_video_callback(bob, on_bob_video, &bob_seen));

    /* 4. One outgoing video track each, with the default encoder settings (1500 kbit/s,
     *    30 fps), aimed at the other. */
    CHECK(rmw_video_track_new(alice, NULL, RMW_TARGET_PEER, "bob", &alice_camera));
    CHECK(rmw_video_track_new(bob, NULL, RMW_TARGET_PEER, "alice", &bob_screen));

    /* 5. How each side's frames are laid out in memory. alice: I420, three planes, rows packed
     *    (stride = width). bob: RGBA, one plane, rows of RGBA_STRIDE bytes. For each plane,
     *    sizes[i] is how many bytes the library may read at planes[i]: at least stride * rows. */
    memset(&alice_frame, 0, sizeof alice_frame);
    alice_frame.format = RMW_PIXEL_I420;
    alice_frame.width = W;
    alice_frame.height = H;
    alice_frame.planes[0] = alice_y; /* Y: W x H */
    alice_frame.strides[0] = W;
    alice_frame.sizes[0] = sizeof alice_y;
    alice_frame.planes[1] = alice_u; /* U and V: (W + 1) / 2 x (H + 1) / 2 */
    alice_frame.strides[1] = W / 2;
    alice_frame.sizes[1] = sizeof alice_u;
    alice_frame.planes[2] = alice_v;
    alice_frame.strides[2] = W / 2;
    alice_frame.sizes[2] = sizeof alice_v;
    memset(alice_u, 128, sizeof alice_u); /* no colour: U = V = 128 */
    memset(alice_v, 128, sizeof alice_v);

    memset(&bob_frame, 0, sizeof bob_frame);
    bob_frame.format = RMW_PIXEL_RGBA; /* bytes R, G, B, A; planes 1 and 2 unused */
    bob_frame.width = W;
    bob_frame.height = H;
    bob_frame.planes[0] = bob_rgba;
    bob_frame.strides[0] = RGBA_STRIDE;
    bob_frame.sizes[0] = sizeof bob_rgba;

    /* 6. The call: every 1/30 s each side draws and sends its next frame, and alice takes the
     *    frames that have arrived for her. Then half a second more to see the last ones. */
    printf("sending video for %d seconds at %d fps: alice %dx%d I420, bob %dx%d RGBA\n", FRAMES / FPS, FPS, W, H, W, H);
    next = rmw_clock_us();
    for (n = 0; n < FRAMES + FPS / 2; n++) {
        rmw_video_frame_t frame;
        if (n < FRAMES) {
            for (y = 0; y < H; y++)
                for (x = 0; x < W; x++) {
                    uint8_t *px = &bob_rgba[y * RGBA_STRIDE + 4 * x];
                    alice_y[y * W + x] = (uint8_t)shade_to_luma(shade(x, y, n));
                    px[0] = px[1] = px[2] = (uint8_t)shade(x, y, n); /* grey */
                    px[3] = 255;
                }
            CHECK(rmw_video_track_send(alice_camera, &alice_frame));
            CHECK(rmw_video_track_send(bob_screen, &bob_frame));
        }
        /* Every polled frame is given back with rmw_video_frame_release. */
        while (rmw_transport_poll_video(alice, &frame, 0) == RMW_OK) {
            seen_add(&alice_seen, &frame);
            rmw_video_frame_release(&frame);
        }
        drain_events(alice, "alice", RMW_EVENT_NONE);
        drain_events(bob, "bob", RMW_EVENT_NONE);
        next += 1000000 / FPS;
        sleep_until(next);
    }

    /* 7. What each side saw, and what alice's track counted. */
    report("alice", "bob", &alice_seen);
    report("bob", "alice", &bob_seen);
    {
        char stats[512];
        len = sizeof stats;
        CHECK(rmw_video_track_stats_json(alice_camera, stats, &len));
        printf("alice's track: %s\n", stats);
    }

    /* 8. Clean up: tracks, then transports (rmw_transport_free(bob) returns after bob's last
     *    video callback), then the server. */
    CHECK(rmw_video_track_free(alice_camera));
    CHECK(rmw_video_track_free(bob_screen));
    CHECK(rmw_transport_free(alice));
    CHECK(rmw_transport_free(bob));
    CHECK(rmw_signaling_server_stop(server));
    printf("video_call: OK\n");
    return 0;
}
