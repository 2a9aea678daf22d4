/*
 * call.c: "alice" and "bob" call each other over WebRTC audio (Opus) on this machine.
 * alice sends a 440 Hz tone and bob a 660 Hz tone for 2 seconds; each then says what it heard.
 *
 * Uses only <remotemedia_webrtc.h> (read examples_c/chat.c first for the basics: signaling
 * server, transports, connecting). This example shows:
 *   - sending: rmw_audio_track_new() once, then rmw_audio_track_send_f32() with 10 ms of PCM
 *     every 10 ms, the way a sound card delivers its buffers. The call copies the samples and
 *     returns at once; the library encodes and sends on its own thread.
 *   - receiving decoded audio, both ways the library offers:
 *       alice POLLS:  rmw_transport_poll_audio() + rmw_audio_frame_release(), on this thread;
 *       bob uses the CALLBACK: rmw_transport_set_audio_callback(), on bob's audio thread.
 *   - choosing the received format: alice keeps the default (48 kHz stereo float), bob asks
 *     for 16 kHz mono int16 in his transport's JSON configuration.
 *   - RMW_EVENT_TRACK_ADDED, sent when the first packet of the other side's audio arrives.
 *
 * Build:  cc -std=c99 call.c $(pkg-config --cflags --libs remotemedia_webrtc) -lm -pthread -o call
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

#define SEND_RATE 48000                  /* the tracks' input: 48 kHz mono (the default) */
#define BUFFER_SAMPLES (SEND_RATE / 100) /* 10 ms */
#define CALL_SECONDS 2
#define MAX_SECONDS 5 /* room for what each side keeps of what it heard */
#define PI 3.14159265358979323846

/* Exits with the call, its status and the library's error text when a call fails. */
#define CHECK(call)                                                                              \
    do {                                                                                         \
        rmw_status_t st_ = (call);                                                               \
        if (st_ != RMW_OK) {                                                                     \
            fprintf(stderr, "call: FAILED: %s:%d: %s returned %s: %s\n", __FILE__, __LINE__,     \
                    #call, rmw_status_string((int32_t)st_), rmw_last_error_message());           \
            exit(1);                                                                             \
        }                                                                                        \
    } while (0)

static void fail(const char *what) {
    fprintf(stderr, "call: FAILED: %s\n", what);
    exit(1);
}

static void on_alarm(int sig) {
    static const char msg[] = "call: FAILED: timed out\n";
    (void)sig;
    if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) { /* nothing more to do */
    }
    _exit(2);
}

/* ---- what one side heard ------------------------------------------------------------- */

typedef struct {
    pthread_mutex_t lock; /* bob's is filled on his audio thread, read on the main thread */
    float *samples;       /* the first channel of everything received, as float */
    size_t n, cap;
    uint32_t rate;
    int frames, concealed;
    long level_sum; /* of the frames' RFC 6464 levels (-dBov) */
} heard_t;

static void heard_init(heard_t *h) {
    memset(h, 0, sizeof *h);
    pthread_mutex_init(&h->lock, NULL);
    h->cap = 96000 * MAX_SECONDS; /* enough at any output rate */
    h->samples = malloc(h->cap * sizeof *h->samples);
    if (h->samples == NULL)
        fail("out of memory");
}

/* Keeps the first channel of a received frame. The frame's samples are interleaved, in the
 * format its transport was configured for. */
static void heard_add(heard_t *h, const rmw_audio_frame_t *frame) {
    size_t i;
    pthread_mutex_lock(&h->lock);
    for (i = 0; i < frame->samples_per_channel && h->n < h->cap; i++) {
        size_t k = i * frame->channels; /* channel 0 of sample i */
        if (frame->format == RMW_SAMPLE_F32)
            h->samples[h->n++] = ((const float *)frame->data)[k];
        else
            h->samples[h->n++] = ((const int16_t *)frame->data)[k] / 32768.0f;
    }
    h->rate = frame->sample_rate;
    h->frames++;
    h->concealed += frame->concealed; /* lost on the way and filled in by the decoder */
    h->level_sum += frame->level;
    pthread_mutex_unlock(&h->lock);
}

/* The tone's frequency, counting upward zero crossings (after the first 100 ms, in which
 * the codec fades in). */
static double frequency(const heard_t *h) {
    size_t i, start = h->rate / 10;
    double first = -1, last = 0;
    int crossings = 0;
    for (i = start + 1; i < h->n; i++) {
        float a = h->samples[i - 1], b = h->samples[i];
        if (a < 0 && b >= 0) {
            double at = (double)(i - 1) + a / (a - b); /* between the two samples */
            if (first < 0)
                first = at;
            else
                crossings++;
            last = at;
        }
    }
    return crossings > 0 ? crossings * (double)h->rate / (last - first) : 0;
}

/* Prints "bob: heard alice at 440.0 Hz, ..." and checks it. */
static void report(const char *who, const char *from, heard_t *h, double sent_hz) {
    double hz;
    pthread_mutex_lock(&h->lock);
    hz = frequency(h);
    printf("%s: heard %s at %.1f Hz, level -%ld dBov, %d frames, %d concealed (%u Hz output)\n", who, from, hz,
           h->frames ? h->level_sum / h->frames : 127, h->frames, h->concealed, (unsigned)h->rate);
    if (fabs(hz - sent_hz) > 5 || h->frames < 40 * CALL_SECONDS) /* 20 ms frames: 50 a second */
        fail("the tone did not come through");
    pthread_mutex_unlock(&h->lock);
}

/* bob's audio callback: runs on bob's audio thread; `frame` is valid until it returns. */
static void on_bob_audio(const rmw_audio_frame_t *frame, void *user_data) {
    heard_add((heard_t *)user_data, frame);
}

/* ---- events ------------------------------------------------------------------------------ */

/* Handles the events of `t` that are waiting (without waiting); returns 1 if one of them is
 * `want`. */
static int drain_events(rmw_transport_t t, const char *who, rmw_event_kind_t want) {
    rmw_event_t ev;
    int seen = 0;
    while (rmw_transport_poll_event(t, &ev, 0) == RMW_OK) {
        if (ev.kind == want)
            seen = 1;
        if (ev.kind == RMW_EVENT_TRACK_ADDED)
            printf("%s: %s's audio arrived (%s, %u Hz, %u channels)\n", who, ev.peer_id, ev.codec,
                   (unsigned)ev.clock_rate, (unsigned)ev.channels);
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

/* ---- the call ---------------------------------------------------------------------------- */

int main(void) {
    rmw_signaling_server_t server = 0;
    rmw_transport_t alice = 0, bob = 0;
    rmw_audio_track_t alice_mic = 0, bob_mic = 0;
    heard_t alice_heard, bob_heard;
    char url[128], config[512];
    size_t len = sizeof url;
    float alice_pcm[BUFFER_SAMPLES], bob_pcm[BUFFER_SAMPLES];
    uint64_t next;
    int buffer;

    signal(SIGALRM, on_alarm);
    alarm(30);
    heard_init(&alice_heard);
    heard_init(&bob_heard);

    /* 1. Signaling server and two transports, as in chat.c. bob wants what he receives as
     *    16 kHz mono int16; alice keeps the default (48 kHz stereo float). */
    CHECK(rmw_signaling_server_start("127.0.0.1:0", 0, &server));
    CHECK(rmw_signaling_server_url(server, url, &len));
    snprintf(config, sizeof config, "{\"signaling_url\":\"%s\",\"peer_id\":\"alice\",\"ice_policy\":\"loopback\"}",
             url);
    CHECK(rmw_transport_new(config, &alice));
    snprintf(config, sizeof config,
             "{\"signaling_url\":\"%s\",\"peer_id\":\"bob\",\"ice_policy\":\"loopback\","
             "\"audio_output_sample_rate\":16000,\"audio_output_channels\":1,\"audio_output_format\":\"s16\"}",
             url);
    CHECK(rmw_transport_new(config, &bob));

    /* 2. Connect. Every connection carries audio both ways (enable_audio is on by default). */
    wait_event(alice, "alice", RMW_EVENT_PEER_DISCOVERED);
    CHECK(rmw_transport_connect_peer(alice, "bob"));
    wait_event(alice, "alice", RMW_EVENT_DATA_CHANNEL_OPEN);
    wait_event(bob, "bob", RMW_EVENT_DATA_CHANNEL_OPEN);
    printf("alice and bob are connected\n");

    /* 3. bob receives by callback from now on; alice polls in the loop below. */
    CHECK(rmw_transport_set_audio_callback(bob, on_bob_audio, &bob_heard));

    /* 4. One outgoing track each ("microphones"), 48 kHz mono float, aimed at the other. */
    CHECK(rmw_audio_track_new(alice, NULL, RMW_TARGET_PEER, "bob", &alice_mic));
    CHECK(rmw_audio_track_new(bob, NULL, RMW_TARGET_PEER, "alice", &bob_mic));

    /* 5. The call: every 10 ms each side sends its next 10 ms of tone, and alice takes the
     *    audio that has arrived for her. Then half a second more to hear the end. */
    printf("calling for %d seconds: alice sends 440 Hz, bob sends 660 Hz\n", CALL_SECONDS);
    next = rmw_clock_us();
    for (buffer = 0; buffer < CALL_SECONDS * 100 + 50; buffer++) {
        rmw_audio_frame_t frame;
        if (buffer < CALL_SECONDS * 100) {
            int i;
            for (i = 0; i < BUFFER_SAMPLES; i++) {
                double seconds = (double)(buffer * BUFFER_SAMPLES + i) / SEND_RATE;
                alice_pcm[i] = (float)(0.3 * sin(2 * PI * 440 * seconds));
                bob_pcm[i] = (float)(0.3 * sin(2 * PI * 660 * seconds));
            }
            CHECK(rmw_audio_track_send_f32(alice_mic, alice_pcm, BUFFER_SAMPLES));
            CHECK(rmw_audio_track_send_f32(bob_mic, bob_pcm, BUFFER_SAMPLES));
        }
        /* Every polled frame is given back with rmw_audio_frame_release. */
        while (rmw_transport_poll_audio(alice, &frame, 0) == RMW_OK) {
            heard_add(&alice_heard, &frame);
            rmw_audio_frame_release(&frame);
        }
        drain_events(alice, "alice", RMW_EVENT_NONE);
        drain_events(bob, "bob", RMW_EVENT_NONE);
        next += 10 * 1000;
        sleep_until(next);
    }

    /* 6. What each side heard, and what alice's track counted. */
    report("alice", "bob", &alice_heard, 660);
    report("bob", "alice", &bob_heard, 440);
    {
        char stats[512];
        len = sizeof stats;
        CHECK(rmw_audio_track_stats_json(alice_mic, stats, &len));
        printf("alice's track: %s\n", stats);
    }

    /* 7. Clean up: tracks, then transports (rmw_transport_free(bob) returns after bob's last
     *    audio callback), then the server. */
    CHECK(rmw_audio_track_free(alice_mic));
    CHECK(rmw_audio_track_free(bob_mic));
    CHECK(rmw_transport_free(alice));
    CHECK(rmw_transport_free(bob));
    CHECK(rmw_signaling_server_stop(server));
    free(alice_heard.samples);
    free(bob_heard.samples);
    printf("call: OK\n");
    return 0;
}
