/*
 * The audio functions of the C API, from a C11 program that uses only the header:
 *
 *   A. argument checks: NULL pointers, out-of-range track configs (channels 3, sample_rate
 *      22050, application 99, ...), target_kind 42, unknown peers and sessions, a chunk
 *      larger than the queue, a full send queue, rmw_audio_track_get_config, freed and
 *      wrong-kind handles, send after rmw_audio_track_free, audio output settings in the
 *      transport JSON, rmw_clock_us, rmw_audio_frame_release on odd input.
 *   B. alice sends bob a 440 Hz sine (amplitude 0.3, 48 kHz mono, f32) for 1.5 s, paced in
 *      real time in chunks of 441 and 1024 samples. Bob takes the decoded audio (default
 *      output: 48 kHz stereo f32) first through the audio CALLBACK, then, after
 *      rmw_transport_set_audio_callback(bob, NULL, NULL), through rmw_transport_poll_audio.
 *      Checks: the frequency (zero crossings, +-3 Hz), no concealed frame, rtp_timestamp
 *      continuous from frame to frame (across the hand-over too), RMW_EVENT_TRACK_ADDED with
 *      codec "opus", the track's stats JSON.
 *   C. the same with s16: alice sends with rmw_audio_track_send_s16, bob asked for
 *      "audio_output_format":"s16" at 16000 Hz mono.
 *   D. teardown: freeing a transport that has an audio callback set while audio arrives, and
 *      one that has a live track being fed from another thread; an audio callback that frees
 *      its own transport.
 *
 * Built by tests/c_api.rs (cc -std=c11 -Wall -Wextra -Werror -pedantic). No libm: the sine
 * is computed here. Prints "FAIL ..." lines and exits 1 if anything is wrong; the last line
 * is "audio_api: OK" on success.
 */
#include "test_util.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#define RATE 48000
#define TONE_HZ 440.0
#define AMPLITUDE 0.3

/* ---- a sine without libm ----------------------------------------------------------------- */

static double sine(double x) {
    const double two_pi = 6.28318530717958647692;
    double term, sum;
    int k;
    x -= two_pi * (double)(long long)(x / two_pi); /* (-2 pi, 2 pi) */
    if (x > two_pi / 2)
        x -= two_pi;
    else if (x < -two_pi / 2)
        x += two_pi;
    term = sum = x;
    for (k = 1; k < 13; k++) {
        term *= -x * x / (double)((2 * k) * (2 * k + 1));
        sum += term;
    }
    return sum;
}

/* Sample `i` of the test tone. */
static float tone(double hz, uint64_t i) { return (float)(AMPLITUDE * sine(6.28318530717958647692 * hz * (double)i / RATE)); }

/* Frequency of x by rising zero crossings (interpolated between samples). */
static double frequency(const float *x, size_t n, uint32_t rate) {
    double first = -1, last = 0;
    long count = 0;
    size_t i;
    for (i = 1; i < n; i++) {
        if (x[i - 1] < 0 && x[i] >= 0) {
            double at = (double)(i - 1) + (double)x[i - 1] / ((double)x[i - 1] - (double)x[i]);
            if (first < 0)
                first = at;
            else
                count++;
            last = at;
        }
    }
    return count > 0 ? (double)count * rate / (last - first) : 0.0;
}

static double rms(const float *x, size_t n) {
    double s = 0, r = 1;
    size_t i;
    int k;
    for (i = 0; i < n; i++)
        s += (double)x[i] * x[i];
    s /= (double)(n ? n : 1);
    for (k = 0; k < 40; k++) /* Newton's square root */
        r = 0.5 * (r + s / r);
    return s > 0 ? r : 0;
}

static const char CONFIG_DEAD[] =
    "{\"signaling_url\":\"ws://127.0.0.1:9\",\"peer_id\":\"audio-args\",\"ice_policy\":\"loopback\"}";

/* ---- A. argument checks ------------------------------------------------------------------ */

static void nop_audio(const rmw_audio_frame_t *frame, void *user_data) {
    (void)frame;
    (void)user_data;
}

static void config_defaults(void) {
    rmw_audio_track_config_t c = rmw_audio_track_config_default();
    EXPECT_TRUE(c.sample_rate == 48000 && c.channels == 1 && c.frame_ms == 20 && c.bitrate == 32000 &&
                    c.complexity == 9 && c.fec && c.expected_loss_percent == 10 && !c.dtx &&
                    c.application == RMW_OPUS_VOIP && c.max_queue_ms == 200,
                "rmw_audio_track_config_default() is not the documented defaults");
}

static void track_new_checks(rmw_transport_t t) {
    const rmw_audio_track_config_t def = rmw_audio_track_config_default();
    rmw_audio_track_config_t c;
    const rmw_audio_track_t untouched = UINT64_C(0x7777);
    rmw_audio_track_t tr = untouched;

    EXPECT(rmw_audio_track_new(t, NULL, RMW_TARGET_NONE, NULL, NULL), RMW_ERR_INVALID_ARGUMENT);
    EXPECT(rmw_audio_track_new(t, &def, RMW_TARGET_ALL, NULL, NULL), RMW_ERR_INVALID_ARGUMENT);
#define BAD_CONFIG(field, value)                                                                   \
    do {                                                                                           \
        c = def;                                                                                   \
        c.field = (value);                                                                         \
        EXPECT(rmw_audio_track_new(t, &c, RMW_TARGET_NONE, NULL, &tr), RMW_ERR_INVALID_ARGUMENT);  \
        EXPECT_TRUE(tr == untouched, #field " = " #value ": *out was written on error");          \
    } while (0)
    BAD_CONFIG(channels, 3);
    BAD_CONFIG(channels, 0);
    BAD_CONFIG(sample_rate, 22050);
    BAD_CONFIG(sample_rate, 11025);
    BAD_CONFIG(sample_rate, 0);
    BAD_CONFIG(application, 99);
    BAD_CONFIG(application, -1);
    BAD_CONFIG(frame_ms, 25);
    BAD_CONFIG(bitrate, 5999);
    BAD_CONFIG(bitrate, 510001);
    BAD_CONFIG(complexity, 11);
    BAD_CONFIG(expected_loss_percent, 101);
    BAD_CONFIG(max_queue_ms, 5);
#undef BAD_CONFIG
    EXPECT(rmw_audio_track_new(t, NULL, 42, NULL, &tr), RMW_ERR_INVALID_ARGUMENT);
    EXPECT(rmw_audio_track_new(t, NULL, -1, "bob", &tr), RMW_ERR_INVALID_ARGUMENT);
    EXPECT(rmw_audio_track_new(t, NULL, RMW_TARGET_PEER, NULL, &tr), RMW_ERR_INVALID_ARGUMENT);
    EXPECT(rmw_audio_track_new(t, NULL, RMW_TARGET_SESSION, NULL, &tr), RMW_ERR_INVALID_ARGUMENT);
    EXPECT(rmw_audio_track_new(t, NULL, RMW_TARGET_PEER, "bo\xc3\x28", &tr), RMW_ERR_INVALID_ARGUMENT);
    EXPECT(rmw_audio_track_new(t, NULL, RMW_TARGET_PEER, "nobody", &tr), RMW_ERR_NOT_FOUND);
    EXPECT(rmw_audio_track_new(t, NULL, RMW_TARGET_SESSION, "no-such-room", &tr), RMW_ERR_NOT_FOUND);
    EXPECT(rmw_audio_track_new(0, NULL, RMW_TARGET_NONE, NULL, &tr), RMW_ERR_INVALID_HANDLE);
    EXPECT_TRUE(tr == untouched, "rmw_audio_track_new wrote *out on error");
}

static void track_checks(rmw_transport_t t) {
    rmw_audio_track_config_t c = rmw_audio_track_config_default();
    rmw_audio_track_t tr = 0, stereo = 0, room = 0;
    float pcm[2 * 1024];
    int16_t pcm16[2 * 1024];
    char buf[1024];
    size_t len, needed;
    int i;
    long long accepted = 441 + 1024; /* samples per channel taken by tr */
    float *big;

    for (i = 0; i < 2 * 1024; i++) {
        pcm[i] = tone(TONE_HZ, (uint64_t)i);
        pcm16[i] = (int16_t)(pcm[i] * 32767);
    }

    /* Target NONE (target_id ignored, may be NULL): the input is encoded and dropped. */
    EXPECT(rmw_audio_track_new(t, NULL, RMW_TARGET_NONE, "ignored", &tr), RMW_OK);
    EXPECT_TRUE(tr != 0, "a track handle is 0");
    c.channels = 2;
    c.sample_rate = 44100;
    c.application = RMW_OPUS_AUDIO;
    EXPECT(rmw_audio_track_new(t, &c, RMW_TARGET_ALL, NULL, &stereo), RMW_OK);
    EXPECT_TRUE(stereo != 0 && stereo != tr, "second track handle %#" PRIx64, stereo);
    {
        /* The configuration as given, defaults filled in. */
        rmw_audio_track_config_t got, untouched;
        memset(&got, 0x5a, sizeof got);
        untouched = got;
        EXPECT(rmw_audio_track_get_config(stereo, NULL), RMW_ERR_INVALID_ARGUMENT);
        EXPECT(rmw_audio_track_get_config(0, &got), RMW_ERR_INVALID_HANDLE);
        EXPECT(rmw_audio_track_get_config((rmw_audio_track_t)t, &got), RMW_ERR_INVALID_HANDLE);
        EXPECT_TRUE(memcmp(&got, &untouched, sizeof got) == 0, "rmw_audio_track_get_config wrote *out on error");
        EXPECT(rmw_audio_track_get_config(stereo, &got), RMW_OK);
        EXPECT_TRUE(got.channels == 2 && got.sample_rate == 44100 && got.application == RMW_OPUS_AUDIO &&
                        got.frame_ms == c.frame_ms && got.bitrate == c.bitrate && got.complexity == c.complexity &&
                        got.fec == c.fec && got.expected_loss_percent == c.expected_loss_percent && got.dtx == c.dtx &&
                        got.max_queue_ms == c.max_queue_ms,
                    "rmw_audio_track_get_config is not the configuration given");
        EXPECT(rmw_audio_track_get_config(tr, &got), RMW_OK); /* NULL config: the defaults */
        EXPECT_TRUE(got.channels == 1 && got.sample_rate == 48000 && got.application == RMW_OPUS_VOIP,
                    "rmw_audio_track_get_config of a default track");
    }
    EXPECT(rmw_session_create(t, "room"), RMW_OK);
    EXPECT(rmw_audio_track_new(t, NULL, RMW_TARGET_SESSION, "room", &room), RMW_OK);

    /* send */
    EXPECT(rmw_audio_track_send_f32(tr, NULL, 480), RMW_ERR_INVALID_ARGUMENT);
    EXPECT(rmw_audio_track_send_s16(tr, NULL, 480), RMW_ERR_INVALID_ARGUMENT);
    EXPECT(rmw_audio_track_send_f32(tr, pcm, 0), RMW_ERR_INVALID_ARGUMENT);
    EXPECT(rmw_audio_track_send_s16(tr, pcm16, 0), RMW_ERR_INVALID_ARGUMENT);
    EXPECT(rmw_audio_track_send_f32(tr, pcm, SIZE_MAX), RMW_ERR_INVALID_ARGUMENT);
    EXPECT(rmw_audio_track_send_f32(stereo, pcm, SIZE_MAX / 2 + 1), RMW_ERR_INVALID_ARGUMENT);
    EXPECT(rmw_audio_track_send_f32(0, pcm, 480), RMW_ERR_INVALID_HANDLE);
    EXPECT(rmw_audio_track_send_s16(0, pcm16, 480), RMW_ERR_INVALID_HANDLE);
    EXPECT(rmw_audio_track_send_f32((rmw_audio_track_t)t, pcm, 480), RMW_ERR_INVALID_HANDLE); /* a transport */
    EXPECT(rmw_audio_track_send_f32(tr | UINT64_C(0xabcdef), pcm, 480), RMW_ERR_INVALID_HANDLE);
    EXPECT(rmw_audio_track_send_f32(tr, pcm, 441), RMW_OK);
    EXPECT(rmw_audio_track_send_s16(tr, pcm16, 1024), RMW_OK);
    EXPECT(rmw_audio_track_send_f32(stereo, pcm, 1024), RMW_OK);
    EXPECT(rmw_audio_track_send_s16(stereo, pcm16, 7), RMW_OK);
    EXPECT(rmw_audio_track_send_f32(room, pcm, 1), RMW_OK);

    /* A chunk longer than the whole queue (max_queue_ms 200 ms: 9600 samples) could never be
     * taken: RMW_ERR_INVALID_ARGUMENT. */
    big = calloc(RATE, sizeof *big);
    if (big == NULL)
        die("out of memory");
    EXPECT(rmw_audio_track_send_f32(tr, big, 9601), RMW_ERR_INVALID_ARGUMENT);
    EXPECT(rmw_audio_track_send_f32(tr, big, RATE / 2), RMW_ERR_INVALID_ARGUMENT);
    /* 100 ms chunks back to back, far faster than real time: the queue fills up and a chunk is
     * refused whole with RMW_ERR_QUEUE_FULL (and counted). */
    for (i = 0; i < 100; i++) {
        rmw_status_t st = rmw_audio_track_send_f32(tr, big, RATE / 10);
        if (st == RMW_ERR_QUEUE_FULL)
            break;
        EXPECT(st, RMW_OK);
        accepted += RATE / 10;
    }
    EXPECT_TRUE(i < 100, "100 chunks of 100 ms sent back to back never filled a 200 ms queue");
    free(big);

    /* set_target */
    EXPECT(rmw_audio_track_set_target(tr, 42, NULL), RMW_ERR_INVALID_ARGUMENT);
    EXPECT(rmw_audio_track_set_target(tr, RMW_TARGET_PEER, NULL), RMW_ERR_INVALID_ARGUMENT);
    EXPECT(rmw_audio_track_set_target(tr, RMW_TARGET_PEER, "nobody"), RMW_ERR_NOT_FOUND);
    EXPECT(rmw_audio_track_set_target(tr, RMW_TARGET_SESSION, "no-such-room"), RMW_ERR_NOT_FOUND);
    EXPECT(rmw_audio_track_set_target(tr, RMW_TARGET_SESSION, "room"), RMW_OK);
    EXPECT(rmw_audio_track_set_target(tr, RMW_TARGET_ALL, NULL), RMW_OK);
    EXPECT(rmw_audio_track_set_target(tr, RMW_TARGET_NONE, NULL), RMW_OK);
    EXPECT(rmw_audio_track_set_target(0, RMW_TARGET_NONE, NULL), RMW_ERR_INVALID_HANDLE);

    /* stats_json: the size-query pattern */
    EXPECT(rmw_audio_track_stats_json(tr, buf, NULL), RMW_ERR_INVALID_ARGUMENT);
    len = 0;
    EXPECT(rmw_audio_track_stats_json(tr, NULL, &len), RMW_OK);
    needed = len;
    EXPECT_TRUE(needed > 2 && needed < sizeof buf, "stats size query gave %zu", needed);
    len = 3;
    EXPECT(rmw_audio_track_stats_json(tr, buf, &len), RMW_ERR_BUFFER_TOO_SMALL);
    EXPECT_TRUE(len >= needed, "too small: *len %zu", len);
    len = sizeof buf;
    EXPECT(rmw_audio_track_stats_json(tr, buf, &len), RMW_OK);
    EXPECT_TRUE(len == strlen(buf) + 1, "stats *len %zu for %zu characters", len, strlen(buf));
    {
        static const char *const keys[] = {"samples_in", "queue_full", "frames_encoded", "frames_dtx",
                                           "packets_sent", "bytes_sent", "peers", "peers_busy"};
        size_t k;
        for (k = 0; k < sizeof keys / sizeof keys[0]; k++)
            EXPECT_TRUE(json_number(buf, keys[k]) >= 0, "stats lack \"%s\": %s", keys[k], buf);
        EXPECT_TRUE(json_number(buf, "samples_in") == accepted, "samples_in is not %lld: %s", accepted, buf);
        EXPECT_TRUE(json_number(buf, "queue_full") == 1, "queue_full: %s", buf);
        EXPECT_TRUE(json_number(buf, "packets_sent") == 0, "a track aimed at nobody sent packets: %s", buf);
    }
    len = sizeof buf;
    EXPECT(rmw_audio_track_stats_json(0, buf, &len), RMW_ERR_INVALID_HANDLE);

    /* free: the handle becomes invalid; 0 is a no-op */
    EXPECT(rmw_audio_track_free(tr), RMW_OK);
    EXPECT(rmw_audio_track_free(tr), RMW_ERR_INVALID_HANDLE);
    EXPECT(rmw_audio_track_send_f32(tr, pcm, 480), RMW_ERR_INVALID_HANDLE);
    EXPECT(rmw_audio_track_send_s16(tr, pcm16, 480), RMW_ERR_INVALID_HANDLE);
    EXPECT(rmw_audio_track_set_target(tr, RMW_TARGET_ALL, NULL), RMW_ERR_INVALID_HANDLE);
    len = sizeof buf;
    EXPECT(rmw_audio_track_stats_json(tr, buf, &len), RMW_ERR_INVALID_HANDLE);
    {
        rmw_audio_track_config_t got;
        EXPECT(rmw_audio_track_get_config(tr, &got), RMW_ERR_INVALID_HANDLE);
    }
    EXPECT(rmw_audio_track_free(0), RMW_OK);
    EXPECT(rmw_audio_track_free((rmw_audio_track_t)t), RMW_ERR_INVALID_HANDLE); /* not a track */
    EXPECT(rmw_audio_track_send_f32(stereo, pcm, 1024), RMW_OK); /* the others are untouched */
    /* `stereo` and `room` stay live: freeing the transport frees them (checked by the caller). */
}

static void poll_and_callback_checks(rmw_transport_t t) {
    rmw_audio_frame_t f, zero;
    int user = 0;
    memset(&zero, 0, sizeof zero);

    EXPECT(rmw_transport_poll_audio(t, NULL, 0), RMW_ERR_INVALID_ARGUMENT);
    EXPECT(rmw_transport_poll_audio(0, &f, 0), RMW_ERR_INVALID_HANDLE);
    memset(&f, 0x5a, sizeof f);
    EXPECT(rmw_transport_poll_audio(t, &f, 0), RMW_ERR_TIMEOUT);
    EXPECT(rmw_transport_poll_audio(t, &f, 30), RMW_ERR_TIMEOUT);
    EXPECT_TRUE(all_bytes(&f, sizeof f, 0x5a), "rmw_transport_poll_audio wrote *frame on error");
    rmw_audio_frame_release(NULL);
    memset(&f, 0, sizeof f);
    rmw_audio_frame_release(&f);
    rmw_audio_frame_release(&f);
    EXPECT_TRUE(f.data == NULL && f.internal == NULL && f.peer_id == NULL, "release of a zeroed frame changed it");

    EXPECT(rmw_transport_set_audio_callback(0, nop_audio, &user), RMW_ERR_INVALID_HANDLE);
    EXPECT(rmw_transport_set_audio_callback(t, nop_audio, &user), RMW_OK);
    EXPECT(rmw_transport_set_audio_callback(t, nop_audio, NULL), RMW_OK); /* replaced */
    EXPECT(rmw_transport_set_audio_callback(t, NULL, NULL), RMW_OK);
    EXPECT(rmw_transport_set_audio_callback(t, NULL, NULL), RMW_OK);   /* already polling */
    EXPECT(rmw_transport_poll_audio(t, &f, 0), RMW_ERR_TIMEOUT);
    EXPECT(rmw_transport_set_audio_callback(t, nop_audio, &user), RMW_OK); /* left set: freed with the transport */
}

static void transport_config_checks(void) {
    static const char *const bad[] = {
        "{\"audio_output_sample_rate\":22050}", "{\"audio_output_sample_rate\":0}",
        "{\"audio_output_channels\":3}",        "{\"audio_output_channels\":0}",
        "{\"audio_output_format\":\"u8\"}",     "{\"audio_output_format\":16}",
        "{\"enable_audio\":\"yes\"}",
    };
    static const char *const good[] = {
        "{\"signaling_url\":\"ws://127.0.0.1:9\",\"audio_output_format\":\"s16\",\"audio_output_sample_rate\":16000,"
        "\"audio_output_channels\":1}",
        "{\"signaling_url\":\"ws://127.0.0.1:9\",\"audio_output_format\":\"f32\",\"audio_output_sample_rate\":44100,"
        "\"audio_output_channels\":2}",
    };
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rmw_transport_t t = 0x77;
        EXPECT(rmw_transport_new(bad[i], &t), RMW_ERR_CONFIG);
        EXPECT_TRUE(t == 0x77, "rmw_transport_new wrote *out on error (%s)", bad[i]);
    }
    for (i = 0; i < sizeof good / sizeof good[0]; i++) {
        rmw_transport_t t = 0;
        EXPECT(rmw_transport_new(good[i], &t), RMW_OK);
        EXPECT(rmw_transport_free(t), RMW_OK);
    }
    /* Without enable_audio there are no tracks. */
    {
        rmw_transport_t t = 0;
        rmw_audio_track_t tr = 0;
        EXPECT(rmw_transport_new("{\"signaling_url\":\"ws://127.0.0.1:9\",\"enable_audio\":false}", &t), RMW_OK);
        EXPECT(rmw_audio_track_new(t, NULL, RMW_TARGET_NONE, NULL, &tr), RMW_ERR_INVALID_ARGUMENT);
        EXPECT_TRUE(tr == 0, "a track was created with enable_audio false");
        EXPECT(rmw_transport_free(t), RMW_OK);
    }
}

static void clock_checks(void) {
    struct timespec ts;
    uint64_t a, mine, b;
    a = rmw_clock_us();
    clock_gettime(CLOCK_MONOTONIC, &ts);
    mine = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    b = rmw_clock_us();
    EXPECT_TRUE(a <= mine + 1 && mine <= b + 1, "rmw_clock_us is not CLOCK_MONOTONIC: %" PRIu64 " %" PRIu64 " %" PRIu64,
                a, mine, b);
    sleep_ms(20);
    EXPECT_TRUE(rmw_clock_us() - b >= 19000, "rmw_clock_us did not advance 20 ms");
}

static void argument_checks(void) {
    rmw_transport_t t = 0;
    rmw_audio_track_t kept = 0;
    float pcm[480] = {0};
    int before = atomic_load(&g_failures);

    config_defaults();
    clock_checks();
    transport_config_checks();
    CHECK(rmw_transport_new(CONFIG_DEAD, &t));
    track_new_checks(t);
    track_checks(t);
    poll_and_callback_checks(t);
    EXPECT(rmw_audio_track_new(t, NULL, RMW_TARGET_ALL, NULL, &kept), RMW_OK);
    EXPECT(rmw_audio_track_send_f32(kept, pcm, 480), RMW_OK);
    /* Freed with live tracks (and an audio callback set): clean, and the tracks go with it. */
    EXPECT(rmw_transport_free(t), RMW_OK);
    EXPECT(rmw_audio_track_send_f32(kept, pcm, 480), RMW_ERR_INVALID_HANDLE);
    EXPECT(rmw_audio_track_free(kept), RMW_ERR_INVALID_HANDLE);
    EXPECT(rmw_transport_set_audio_callback(t, nop_audio, NULL), RMW_ERR_INVALID_HANDLE);
    {
        rmw_audio_frame_t f;
        EXPECT(rmw_transport_poll_audio(t, &f, 0), RMW_ERR_INVALID_HANDLE);
    }
    EXPECT(rmw_audio_track_new(t, NULL, RMW_TARGET_NONE, NULL, &kept), RMW_ERR_INVALID_HANDLE);
    printf("A: argument checks done (%d failures)\n", atomic_load(&g_failures) - before);
}

/* ---- B, C. a tone from alice to bob --------------------------------------------------- */

#define MAX_FRAMES 2000
#define SWITCH_AFTER 25 /* frames taken by the callback before switching to polling */

enum { VIA_CALLBACK, VIA_POLL };

typedef struct {
    uint32_t rtp_timestamp;
    size_t samples_per_channel;
    uint64_t arrival_us;
    uint8_t level;
    bool concealed;
    int via;
} frame_info_t;

typedef struct {
    pthread_mutex_t lock;
    /* set before the run */
    rmw_transport_t bob;
    uint32_t rate, channels;
    rmw_sample_format_t format;
    /* filled by the callback and by the polling thread */
    float *ch0; /* channel 0 of every frame, as float in [-1, 1] */
    size_t n, cap;
    frame_info_t frames[MAX_FRAMES];
    size_t n_frames;
    int by_callback, by_poll;
    char track_id[128];
    char error[512];
    atomic_int cleared;     /* set once rmw_transport_set_audio_callback(bob, NULL, NULL) returned */
    atomic_int late_calls;  /* callbacks after that */
    atomic_int sender_done; /* alice finished sending */
} rx_t;

static void rx_fail(rx_t *rx, const char *fmt, const char *detail) {
    if (rx->error[0] == '\0')
        snprintf(rx->error, sizeof rx->error, fmt, detail);
}

/* Checks and records one frame (callback or polled). Caller holds rx->lock. */
static void record(rx_t *rx, const rmw_audio_frame_t *f, int via) {
    size_t i;
    frame_info_t *info;
    if (f->transport != rx->bob)
        rx_fail(rx, "frame of another transport%s", "");
    if (f->peer_id == NULL || strcmp(f->peer_id, "alice") != 0)
        rx_fail(rx, "frame from peer %s", f->peer_id ? f->peer_id : "(NULL)");
    if (f->track_id == NULL || f->track_id[0] == '\0')
        rx_fail(rx, "frame without track_id%s", "");
    else if (rx->track_id[0] == '\0')
        snprintf(rx->track_id, sizeof rx->track_id, "%s", f->track_id);
    else if (strcmp(rx->track_id, f->track_id) != 0)
        rx_fail(rx, "track_id changed to %s", f->track_id);
    if (f->sample_rate != rx->rate || f->channels != rx->channels || f->format != rx->format) {
        char d[128];
        snprintf(d, sizeof d, "%u Hz, %u channels, format %d", (unsigned)f->sample_rate, (unsigned)f->channels,
                 (int)f->format);
        rx_fail(rx, "frame is %s, not as configured", d);
        return;
    }
    if (f->data == NULL || f->samples_per_channel == 0) {
        rx_fail(rx, "empty frame%s", "");
        return;
    }
    if (rx->n_frames == MAX_FRAMES || rx->n + f->samples_per_channel > rx->cap) {
        rx_fail(rx, "more audio than expected%s", "");
        return;
    }
    for (i = 0; i < f->samples_per_channel; i++) {
        size_t k = i * f->channels;
        rx->ch0[rx->n++] = f->format == RMW_SAMPLE_F32 ? ((const float *)f->data)[k]
                                                       : (float)((const int16_t *)f->data)[k] / 32768.0f;
    }
    info = &rx->frames[rx->n_frames++];
    info->rtp_timestamp = f->rtp_timestamp;
    info->samples_per_channel = f->samples_per_channel;
    info->arrival_us = f->arrival_us;
    info->level = f->level;
    info->concealed = f->concealed;
    info->via = via;
    if (via == VIA_CALLBACK)
        rx->by_callback++;
    else
        rx->by_poll++;
}

/* Bob's audio callback (his audio thread). */
static void on_bob_audio(const rmw_audio_frame_t *frame, void *user_data) {
    rx_t *rx = (rx_t *)user_data;
    if (atomic_load(&rx->cleared)) {
        atomic_fetch_add(&rx->late_calls, 1);
        return;
    }
    pthread_mutex_lock(&rx->lock);
    record(rx, frame, VIA_CALLBACK);
    pthread_mutex_unlock(&rx->lock);
}

/* Bob's receiving thread: waits for SWITCH_AFTER callback frames, clears the callback and
 * polls the rest until alice is done and nothing came for 500 ms. */
static void *bob_receiver(void *arg) {
    rx_t *rx = (rx_t *)arg;
    double last_frame;
    wait_callback_frames(&rx->lock, &rx->by_callback, SWITCH_AFTER, 5, "audio");
    CHECK(rmw_transport_set_audio_callback(rx->bob, NULL, NULL));
    atomic_store(&rx->cleared, 1);
    last_frame = now_s();
    for (;;) {
        rmw_audio_frame_t f;
        rmw_status_t st = rmw_transport_poll_audio(rx->bob, &f, 50);
        if (st == RMW_OK) {
            pthread_mutex_lock(&rx->lock);
            record(rx, &f, VIA_POLL);
            pthread_mutex_unlock(&rx->lock);
            rmw_audio_frame_release(&f);
            if (f.data != NULL || f.internal != NULL || f.peer_id != NULL || f.track_id != NULL)
                die("rmw_audio_frame_release did not zero the frame");
            rmw_audio_frame_release(&f); /* released before: no-op */
            last_frame = now_s();
        } else if (polling_done(st, &rx->sender_done, last_frame, "audio")) {
            break;
        }
    }
    return NULL;
}

/* Sends `seconds` of the tone on `track`, paced in real time (like a sound card delivering
 * buffers), in chunks of 441 and 1024 samples. Returns the samples sent. */
static uint64_t send_tone(rmw_audio_track_t track, bool s16, double hz, double seconds) {
    static const size_t CHUNKS[] = {441, 1024};
    const uint64_t total = (uint64_t)(seconds * RATE);
    const uint64_t start = rmw_clock_us();
    float f32[1024];
    int16_t i16[1024];
    uint64_t sent = 0;
    int k = 0;
    while (sent < total) {
        size_t n = CHUNKS[k++ % 2], i;
        uint64_t due;
        rmw_status_t st;
        if (n > total - sent)
            n = (size_t)(total - sent);
        for (i = 0; i < n; i++) {
            f32[i] = tone(hz, sent + i);
            i16[i] = (int16_t)(f32[i] * 32767.0f);
        }
        st = s16 ? rmw_audio_track_send_s16(track, i16, n) : rmw_audio_track_send_f32(track, f32, n);
        if (st != RMW_OK) /* QUEUE_FULL would mean the encoder cannot keep up with real time */
            die("send_%s after %" PRIu64 " samples: %s: %s", s16 ? "s16" : "f32", sent, rmw_status_string((int32_t)st),
                rmw_last_error_message());
        sent += n;
        due = start + sent * 1000000u / RATE;
        while (rmw_clock_us() < due)
            sleep_ms(1);
    }
    return sent;
}

/* Polls bob's events until RMW_EVENT_TRACK_ADDED for alice's audio and checks its fields. */
static void expect_track_added(rmw_transport_t bob, const char *track_id) {
    rmw_event_t ev;
    if (!next_event_of_kind(bob, "bob", RMW_EVENT_TRACK_ADDED, 5, &ev)) {
        FAILF("bob saw no RMW_EVENT_TRACK_ADDED");
        return;
    }
    printf("   TRACK_ADDED: peer %s, track %s, %s/%u/%u\n", ev.peer_id ? ev.peer_id : "(NULL)",
           ev.track_id ? ev.track_id : "(NULL)", ev.codec ? ev.codec : "(NULL)", (unsigned)ev.clock_rate,
           (unsigned)ev.channels);
    EXPECT_TRUE(ev.peer_id && strcmp(ev.peer_id, "alice") == 0, "TRACK_ADDED peer_id");
    EXPECT_TRUE(ev.media_kind == RMW_MEDIA_AUDIO, "TRACK_ADDED media_kind %d", (int)ev.media_kind);
    EXPECT_TRUE(ev.codec && strcmp(ev.codec, "opus") == 0, "TRACK_ADDED codec %s", ev.codec ? ev.codec : "NULL");
    EXPECT_TRUE(ev.clock_rate == 48000, "TRACK_ADDED clock_rate %u", (unsigned)ev.clock_rate);
    EXPECT_TRUE(ev.channels == 1 || ev.channels == 2, "TRACK_ADDED channels %u", (unsigned)ev.channels);
    EXPECT_TRUE(ev.track_id && strcmp(ev.track_id, track_id) == 0, "TRACK_ADDED track_id %s, frames say %s",
                ev.track_id ? ev.track_id : "NULL", track_id);
    EXPECT_TRUE(ev.transport == bob, "TRACK_ADDED of another transport");
    rmw_event_release(&ev);
}

/* The track's stats after the run. */
static void check_track_stats(rmw_audio_track_t track, uint64_t sent) {
    char buf[1024];
    size_t len = sizeof buf;
    CHECK(rmw_audio_track_stats_json(track, buf, &len));
    printf("   alice's track stats: %s\n", buf);
    EXPECT_TRUE(json_number(buf, "packets_sent") > 0, "packets_sent not > 0");
    EXPECT_TRUE(json_number(buf, "bytes_sent") > 0, "bytes_sent not > 0");
    EXPECT_TRUE(json_number(buf, "samples_in") == (long long)sent, "samples_in is not the %" PRIu64 " sent", sent);
    EXPECT_TRUE(json_number(buf, "frames_encoded") == (long long)(sent / 960), "frames_encoded is not %" PRIu64,
                sent / 960);
    EXPECT_TRUE(json_number(buf, "packets_sent") == json_number(buf, "frames_encoded"), "a frame was not sent");
    EXPECT_TRUE(json_number(buf, "queue_full") == 0 && json_number(buf, "peers") == 1 &&
                    json_number(buf, "peers_busy") == 0,
                "queue_full / peers / peers_busy");
}

/* What bob received: shape, continuity, frequency, level. */
static void check_received(rx_t *rx, const char *name, uint64_t sent, uint64_t t0_us) {
    const uint32_t rate = rx->rate;
    size_t i, skip;
    double hz, level_sum = 0, r;
    int bad_ts = 0, concealed = 0;
    uint64_t now_us = rmw_clock_us();

    if (rx->error[0] != '\0')
        FAILF("%s: %s", name, rx->error);
    EXPECT_TRUE(atomic_load(&rx->late_calls) == 0, "%s: %d audio callbacks after the callback was cleared", name,
                atomic_load(&rx->late_calls));
    EXPECT_TRUE(rx->by_callback >= SWITCH_AFTER && rx->by_poll >= 20, "%s: %d frames by callback, %d by poll", name,
                rx->by_callback, rx->by_poll);
    EXPECT_TRUE(rx->n >= (size_t)(1.3 * rate), "%s: only %zu samples (%" PRIu64 " sent at 48 kHz)", name, rx->n, sent);
    EXPECT_TRUE(rx->n <= (size_t)((double)sent * rate / RATE) + rate / 50, "%s: %zu samples, more than the %" PRIu64 " sent",
                name, rx->n, sent);
    for (i = 0; i < rx->n_frames; i++) {
        const frame_info_t *f = &rx->frames[i];
        concealed += f->concealed;
        level_sum += f->level;
        if (f->arrival_us < t0_us || f->arrival_us > now_us)
            FAILF("%s: frame %zu arrival_us %" PRIu64 " outside [%" PRIu64 ", %" PRIu64 "]", name, i, f->arrival_us, t0_us,
                  now_us);
        if (i > 0) {
            const frame_info_t *p = &rx->frames[i - 1];
            uint32_t expected = p->rtp_timestamp + (uint32_t)(p->samples_per_channel * 48000u / rate);
            if (f->rtp_timestamp != expected && bad_ts++ < 5)
                FAILF("%s: frame %zu (%s) has rtp_timestamp %u, expected %u after frame %zu (%s, %zu samples)", name, i,
                      f->via == VIA_CALLBACK ? "callback" : "polled", (unsigned)f->rtp_timestamp, (unsigned)expected,
                      i - 1, p->via == VIA_CALLBACK ? "callback" : "polled", p->samples_per_channel);
            if (f->arrival_us < p->arrival_us)
                FAILF("%s: frame %zu arrived before frame %zu", name, i, i - 1);
        }
    }
    EXPECT_TRUE(concealed == 0, "%s: %d concealed frames on loopback", name, concealed);
    skip = rate / 10; /* the codec fades in */
    hz = rx->n > skip ? frequency(rx->ch0 + skip, rx->n - skip, rate) : 0;
    r = rx->n > skip ? rms(rx->ch0 + skip, rx->n - skip) : 0;
    printf("   %s: %zu frames (%d by callback, then %d polled), %zu samples at %u Hz, %.1f Hz, RMS %.3f, mean level "
           "-%.0f dBov, %d concealed\n",
           name, rx->n_frames, rx->by_callback, rx->by_poll, rx->n, (unsigned)rate, hz, r,
           rx->n_frames ? level_sum / (double)rx->n_frames : 127.0, concealed);
    EXPECT_TRUE(hz > TONE_HZ - 3 && hz < TONE_HZ + 3, "%s: received %.2f Hz, sent %.0f Hz", name, hz, TONE_HZ);
    EXPECT_TRUE(r > 0.15 && r < 0.26, "%s: RMS %.3f for a 0.3 sine (0.212)", name, r);
    for (i = 5; i < rx->n_frames; i++)
        if (rx->frames[i].level > 20) {
            FAILF("%s: frame %zu has level -%u dBov for a -13 dBov tone", name, i, (unsigned)rx->frames[i].level);
            break;
        }
}

typedef struct {
    const char *name;
    const char *bob_extra; /* bob's output settings */
    uint32_t rate, channels;
    rmw_sample_format_t format;
    bool send_s16;
} run_t;

/* One run: alice -> bob, a fresh pair of transports on `url`. Returns with both connected
 * and alice's track live in *alice_out, *bob_out, *track_out. */
static void exchange(const char *url, const run_t *run, rmw_transport_t *alice_out, rmw_transport_t *bob_out,
                     rmw_audio_track_t *track_out) {
    rmw_transport_t alice, bob;
    rmw_audio_track_t track = 0;
    rmw_audio_track_config_t cfg = rmw_audio_track_config_default();
    rx_t *rx = calloc(1, sizeof *rx);
    pthread_t receiver;
    uint64_t sent, t0;
    char stats[2048];
    size_t len;

    if (rx == NULL)
        die("out of memory");
    printf("%s\n", run->name);
    alice = new_transport_with(url, "alice", "");
    bob = new_transport_with(url, "bob", run->bob_extra);
    connect_pair(alice, "alice", bob, "bob");

    pthread_mutex_init(&rx->lock, NULL);
    rx->bob = bob;
    rx->rate = run->rate;
    rx->channels = run->channels;
    rx->format = run->format;
    rx->cap = (size_t)run->rate * 3;
    rx->ch0 = calloc(rx->cap, sizeof *rx->ch0);
    if (rx->ch0 == NULL)
        die("out of memory");
    atomic_init(&rx->cleared, 0);
    atomic_init(&rx->late_calls, 0);
    atomic_init(&rx->sender_done, 0);

    /* Bob: callback first, then polling (bob_receiver switches). */
    CHECK(rmw_transport_set_audio_callback(bob, on_bob_audio, rx));
    start_thread(&receiver, bob_receiver, rx);

    /* Alice: 48 kHz mono (the defaults), to bob. */
    cfg.sample_rate = RATE;
    cfg.channels = 1;
    t0 = rmw_clock_us();
    CHECK(rmw_audio_track_new(alice, &cfg, RMW_TARGET_PEER, "bob", &track));
    sent = send_tone(track, run->send_s16, TONE_HZ, 1.5);
    atomic_store(&rx->sender_done, 1);
    pthread_join(receiver, NULL);

    check_received(rx, run->name, sent, t0);
    check_track_stats(track, sent);
    expect_track_added(bob, rx->track_id);
    len = sizeof stats;
    CHECK(rmw_transport_stats_json(bob, stats, &len));
    EXPECT_TRUE(strstr(stats, "\"audio_frames_dropped\":0") != NULL, "bob dropped audio frames: %s", stats);
    EXPECT_TRUE(strstr(stats, "\"remote_audio_tracks\":[{") != NULL, "bob lists no remote audio track: %s", stats);
    EXPECT_TRUE(strstr(stats, "\"frames_concealed\":0") != NULL, "bob counts concealed frames: %s", stats);

    free(rx->ch0);
    pthread_mutex_destroy(&rx->lock);
    free(rx);
    *alice_out = alice;
    *bob_out = bob;
    *track_out = track;
}

/* ---- D. teardown with audio flowing (teardown_by_main, teardown_in_callback: test_util.h) ---- */

static void on_counted_audio(const rmw_audio_frame_t *frame, void *user_data) {
    count_t *c = (count_t *)user_data;
    if (count_call(c)) {
        /* The frame stays valid until this returns, even across the free. */
        char peer[32];
        snprintf(peer, sizeof peer, "%s", frame->peer_id);
        atomic_store(&c->free_status, (int)rmw_transport_free(frame->transport));
        atomic_store(&c->freed, 1);
        if (strcmp(peer, frame->peer_id) != 0 || frame->samples_per_channel == 0)
            atomic_store(&c->free_status, 100);
    }
}

/* Feeds alice's track in real time until told to stop; counts what send returns. */
static void *feeder(void *arg) {
    feeder_t *fd = (feeder_t *)arg;
    float pcm[480];
    uint64_t pos = 0;
    while (!atomic_load(&fd->stop)) {
        size_t i;
        for (i = 0; i < 480; i++)
            pcm[i] = tone(TONE_HZ, pos + i);
        pos += 480;
        feeder_count(fd, rmw_audio_track_send_f32(fd->track, pcm, 480));
        sleep_ms(10);
    }
    return NULL;
}

/* D: bob's audio callback, counted into c. */
static void watch_bob(rmw_transport_t bob, count_t *c) {
    CHECK(rmw_transport_set_audio_callback(bob, on_counted_audio, c));
}

/* D2: a send on the freed track. */
static rmw_status_t send_one(uint64_t track) { return rmw_audio_track_send_f32(track, (const float[1]){0}, 1); }

/* D1 watches alice's sends for 100 ms after her free (the feeder sends every 10 ms). */
static const media_t AUDIO = {"audio", watch_bob, feeder, rmw_audio_track_free, send_one, 100};

int main(void) {
    static const run_t F32 = {"B: f32 in, default output (48 kHz stereo f32)", "", 48000, 2, RMW_SAMPLE_F32, false};
    static const run_t S16 = {"C: s16 in, 16 kHz mono s16 out",
                              "\"audio_output_format\":\"s16\",\"audio_output_sample_rate\":16000,"
                              "\"audio_output_channels\":1",
                              16000, 1, RMW_SAMPLE_S16, true};
    char url[128];
    rmw_signaling_server_t server;
    rmw_transport_t alice, bob;
    rmw_audio_track_t track;
    double t0 = now_s();
    int failures;

    watchdog(60);
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("remotemedia-webrtc %s, audio C API test\n", rmw_version());
    argument_checks();

    server = start_server(url, sizeof url);
    exchange(url, &F32, &alice, &bob, &track);
    teardown_by_main(&AUDIO, alice, bob, track);
    exchange(url, &S16, &alice, &bob, &track);
    teardown_in_callback(&AUDIO, alice, bob, track);
    CHECK(rmw_signaling_server_stop(server));

    failures = atomic_load(&g_failures);
    printf("audio_api: %s (%d failures, %.1f s)\n", failures ? "FAILED" : "OK", failures, now_s() - t0);
    return failures ? 1 : 0;
}
