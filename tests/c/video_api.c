/*
 * The video functions of the C API, from a C11 program that uses only the header:
 *
 *   A. argument checks: rmw_video_track_config_default, out-of-range track configs (fps 0,
 *      bitrate 10, speed 40, threads 0, ...), target_kind 42, unknown peers and sessions;
 *      rmw_video_track_send with a NULL frame, format 9, width 0, planes too small, strides
 *      smaller than a row, NULL planes; freed and wrong-kind handles for every video function,
 *      send after rmw_video_track_free; set_bitrate and its range; the stats JSON (size-query
 *      pattern); rmw_transport_poll_video / rmw_video_frame_release on odd input; the video
 *      settings of the transport JSON; a transport freed with live video tracks and a video
 *      callback set; rmw_transport_poll_video blocked without timeout while the transport is
 *      freed.
 *   B. alice sends bob 60 frames of a moving 320x240 I420 test pattern at 30 fps (VP8, the
 *      default). Each frame carries its number as 16 black/white blocks along the top. Bob
 *      takes the first 30 decoded frames through the video CALLBACK, then, after
 *      rmw_transport_set_video_callback(bob, NULL, NULL), polls the rest. Checks: every frame
 *      readable, numbers increasing, >= 80 % of them arrived, the first a keyframe, a keyframe
 *      again after rmw_video_track_request_keyframe, each frame's luma close to the pattern
 *      regenerated from its number (mean absolute error, PSNR >= 30 dB), rtp_timestamp and
 *      arrival_us increasing, RMW_EVENT_TRACK_ADDED with media_kind RMW_MEDIA_VIDEO and codec
 *      "vp8", the track's and the transports' stats JSON.
 *   C. the same with "video_codec":"vp9" on both sides, alice sending RGBA with a padded
 *      stride, bob asking for "video_output_format":"rgba" (RGB compared with what was sent,
 *      and one pixel of a coloured patch checked).
 *   D. teardown: bob freed with his video callback set while video arrives, then alice freed
 *      with her track live under a feeding thread; a video callback that frees its own
 *      transport.
 *
 * Built by tests/c_api.rs (cc -std=c11 -Wall -Wextra -Werror -pedantic). No libm (the PSNR's
 * logarithm is computed here). Prints "FAIL ..." lines and exits 1 if anything is wrong; the
 * last line is "video_api: OK" on success.
 */
#include "test_util.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/* ---- the test pattern ------------------------------------------------------------------------
 * W x H, frame n: a vertical luma gradient with a horizontal tilt, a white bar 32 px wide moving
 * 8 px per frame, colour ramps in the chroma planes, and n written as 16 blocks (bit 0 first,
 * black 0, white 1) of BLOCK_W x BLOCK_H along the top. RGBA frames carry the same picture in
 * grey plus a solid coloured patch. */

#define W 320
#define H 240
#define CW ((W + 1) / 2)
#define CH ((H + 1) / 2)
#define FPS 30
#define FRAMES 60
#define BLOCK_LEFT 32
#define BLOCK_TOP 8
#define BLOCK_W 16
#define BLOCK_H 32
#define RGBA_STRIDE (W * 4 + 64) /* padded, as a texture read back from a GPU */
#define PATCH_X 192              /* the coloured patch of RGBA frames: 64 x 64 */
#define PATCH_Y 160
static const uint8_t PATCH_RGBA[4] = {200, 40, 90, 255};

/* Luma (studio range 16..235) of pixel (x, y) of frame n. */
static uint8_t pattern_y(uint32_t x, uint32_t y, uint32_t n) {
    uint32_t bar = (8 * n) % W;
    if (y >= BLOCK_TOP && y < BLOCK_TOP + BLOCK_H && x >= BLOCK_LEFT && x < BLOCK_LEFT + 16 * BLOCK_W)
        return ((n >> ((x - BLOCK_LEFT) / BLOCK_W)) & 1) ? 235 : 16;
    if (x >= bar && x < bar + 32)
        return 235;
    return (uint8_t)(40 + y * 120 / H + x * 30 / W);
}

/* Pixel (x, y) of RGBA frame n: the luma as full-range grey, or the patch. */
static void pattern_rgba(uint32_t x, uint32_t y, uint32_t n, uint8_t out[4]) {
    if (x >= PATCH_X && x < PATCH_X + 64 && y >= PATCH_Y && y < PATCH_Y + 64) {
        memcpy(out, PATCH_RGBA, 4);
    } else {
        uint8_t g = (uint8_t)((pattern_y(x, y, n) - 16) * 255 / 219);
        out[0] = out[1] = out[2] = g;
        out[3] = 255;
    }
}

static void fill_i420(uint8_t *y, uint8_t *u, uint8_t *v, uint32_t n) {
    uint32_t r, c;
    for (r = 0; r < H; r++)
        for (c = 0; c < W; c++)
            y[r * W + c] = pattern_y(c, r, n);
    for (r = 0; r < CH; r++)
        for (c = 0; c < CW; c++) {
            u[r * CW + c] = (uint8_t)(90 + c * 80 / CW);
            v[r * CW + c] = (uint8_t)(90 + r * 80 / CH);
        }
}

static void fill_rgba(uint8_t *rgba, uint32_t n) {
    uint32_t r, c;
    memset(rgba, 0xee, (size_t)RGBA_STRIDE * H); /* the padding: never read */
    for (r = 0; r < H; r++)
        for (c = 0; c < W; c++)
            pattern_rgba(c, r, n, rgba + (size_t)r * RGBA_STRIDE + 4 * c);
}

/* The frame number written in a received plane (`bpp` bytes a pixel, the first one read), or
 * -1 if a block is neither clearly black nor clearly white. */
static long read_number(const uint8_t *plane, uint32_t stride, unsigned bpp) {
    long n = 0;
    unsigned bit;
    for (bit = 0; bit < 16; bit++) {
        uint32_t x0 = BLOCK_LEFT + bit * BLOCK_W + 4, y0 = BLOCK_TOP + 8, r, c, sum = 0;
        for (r = y0; r < y0 + 16; r++)
            for (c = x0; c < x0 + 8; c++)
                sum += plane[(size_t)r * stride + (size_t)c * bpp];
        sum /= 16 * 8;
        if (sum > 160)
            n |= 1L << bit;
        else if (sum >= 96)
            return -1;
    }
    return n;
}

/* Natural logarithm (x > 0), for the PSNR without libm. */
static double ln(double x) {
    double y, y2, term, sum = 0;
    int k = 0, i;
    while (x > 2) {
        x /= 2;
        k++;
    }
    while (x < 1) {
        x *= 2;
        k--;
    }
    y = (x - 1) / (x + 1); /* ln x = 2 atanh y, |y| <= 1/3 */
    y2 = y * y;
    term = y;
    for (i = 1; i < 40; i += 2) {
        sum += term / i;
        term *= y2;
    }
    return 2 * sum + k * 0.69314718055994530942;
}

static double psnr(double mse) { return mse <= 0 ? 99.0 : 10.0 * ln(255.0 * 255.0 / mse) / 2.30258509299404568402; }

/* ---- helpers ------------------------------------------------------------------------------- */

static const char CONFIG_DEAD[] =
    "{\"signaling_url\":\"ws://127.0.0.1:9\",\"peer_id\":\"video-args\",\"ice_policy\":\"loopback\"}";

static rmw_raw_video_frame_t rgba_frame(const uint8_t *rgba, uint32_t w, uint32_t h, uint32_t stride) {
    rmw_raw_video_frame_t f = raw_frame(RMW_PIXEL_RGBA, w, h);
    f.planes[0] = rgba;
    f.strides[0] = stride;
    f.sizes[0] = (size_t)stride * h;
    return f;
}

/* ---- A. argument checks ---------------------------------------------------------------------- */

static void nop_video(const rmw_video_frame_t *frame, void *user_data) {
    (void)frame;
    (void)user_data;
}

static void config_defaults(void) {
    rmw_video_track_config_t c = rmw_video_track_config_default();
    EXPECT_TRUE(c.bitrate_kbps == 1500 && c.fps == 30 && c.keyframe_interval == 3000 &&
                    c.speed == RMW_VIDEO_SPEED_DEFAULT && c.threads == 1,
                "rmw_video_track_config_default() is not the documented defaults: %u kbit/s, %u fps, keyframe "
                "interval %u, speed %d, %u threads",
                (unsigned)c.bitrate_kbps, (unsigned)c.fps, (unsigned)c.keyframe_interval, (int)c.speed,
                (unsigned)c.threads);
}

static void track_new_checks(rmw_transport_t t, rmw_audio_track_t audio) {
    const rmw_video_track_config_t def = rmw_video_track_config_default();
    rmw_video_track_config_t c;
    const rmw_video_track_t untouched = UINT64_C(0x7777);
    rmw_video_track_t tr = untouched;

    EXPECT(rmw_video_track_new(t, NULL, RMW_TARGET_NONE, NULL, NULL), RMW_ERR_INVALID_ARGUMENT);
    EXPECT(rmw_video_track_new(t, &def, RMW_TARGET_ALL, NULL, NULL), RMW_ERR_INVALID_ARGUMENT);
#define BAD_CONFIG(field, value)                                                                   \
    do {                                                                                           \
        c = def;                                                                                   \
        c.field = (value);                                                                         \
        EXPECT(rmw_video_track_new(t, &c, RMW_TARGET_NONE, NULL, &tr), RMW_ERR_INVALID_ARGUMENT);  \
        EXPECT_TRUE(tr == untouched, #field " = " #value ": *out was written on error");          \
    } while (0)
    BAD_CONFIG(fps, 0);
    BAD_CONFIG(fps, 121);
    BAD_CONFIG(bitrate_kbps, 10);
    BAD_CONFIG(bitrate_kbps, 29);
    BAD_CONFIG(bitrate_kbps, 50001);
    BAD_CONFIG(bitrate_kbps, 0);
    BAD_CONFIG(speed, 40);
    BAD_CONFIG(speed, 17);
    BAD_CONFIG(speed, -17);
    BAD_CONFIG(threads, 0);
    BAD_CONFIG(threads, 17);
#undef BAD_CONFIG
    EXPECT(rmw_video_track_new(t, NULL, 42, NULL, &tr), RMW_ERR_INVALID_ARGUMENT);
    EXPECT(rmw_video_track_new(t, NULL, -1, "bob", &tr), RMW_ERR_INVALID_ARGUMENT);
    EXPECT(rmw_video_track_new(t, NULL, RMW_TARGET_PEER, NULL, &tr), RMW_ERR_INVALID_ARGUMENT);
    EXPECT(rmw_video_track_new(t, NULL, RMW_TARGET_SESSION, NULL, &tr), RMW_ERR_INVALID_ARGUMENT);
    EXPECT(rmw_video_track_new(t, NULL, RMW_TARGET_PEER, "bo\xc3\x28", &tr), RMW_ERR_INVALID_ARGUMENT);
    EXPECT(rmw_video_track_new(t, NULL, RMW_TARGET_PEER, "nobody", &tr), RMW_ERR_NOT_FOUND);
    EXPECT(rmw_video_track_new(t, NULL, RMW_TARGET_SESSION, "no-such-room", &tr), RMW_ERR_NOT_FOUND);
    EXPECT(rmw_video_track_new(0, NULL, RMW_TARGET_NONE, NULL, &tr), RMW_ERR_INVALID_HANDLE);
    EXPECT(rmw_video_track_new((rmw_transport_t)audio, NULL, RMW_TARGET_NONE, NULL, &tr), RMW_ERR_INVALID_HANDLE);
    EXPECT_TRUE(tr == untouched, "rmw_video_track_new wrote *out on error");

    /* The edges of every range are accepted. */
    {
        static const struct {
            uint32_t bitrate, fps, keyframe_interval;
            int32_t speed;
            uint32_t threads;
        } good[] = {
            {30, 1, 0, -16, 1},
            {50000, 120, 1, 16, 16},
            {1500, 30, 3000, RMW_VIDEO_SPEED_DEFAULT, 4},
            {800, 15, 60, 0, 2},
        };
        size_t i;
        for (i = 0; i < sizeof good / sizeof good[0]; i++) {
            c = def;
            c.bitrate_kbps = good[i].bitrate;
            c.fps = good[i].fps;
            c.keyframe_interval = good[i].keyframe_interval;
            c.speed = good[i].speed;
            c.threads = good[i].threads;
            tr = 0;
            EXPECT(rmw_video_track_new(t, &c, RMW_TARGET_NONE, NULL, &tr), RMW_OK);
            EXPECT_TRUE(tr != 0, "config %zu: a video track handle is 0", i);
            EXPECT(rmw_video_track_free(tr), RMW_OK);
        }
    }
}

/* rmw_video_track_send of `f` must return `want`; the case is named by `what`. */
static void expect_send(rmw_video_track_t tr, const rmw_raw_video_frame_t *f, rmw_status_t want, const char *what,
                        int *accepted) {
    rmw_status_t got = rmw_video_track_send(tr, f);
    if (got != want)
        FAILF("rmw_video_track_send (%s) returned %s, expected %s (%s)", what, rmw_status_string((int32_t)got),
              rmw_status_string((int32_t)want), got == RMW_OK ? "" : rmw_last_error_message());
    else if (want != RMW_OK && rmw_last_error_message()[0] == '\0')
        FAILF("rmw_video_track_send (%s): no error message", what);
    if (got == RMW_OK)
        (*accepted)++;
}

static void send_checks(rmw_video_track_t tr, rmw_transport_t t, rmw_audio_track_t audio, int *accepted) {
    static uint8_t y[W * H], u[CW * CH], v[CW * CH], rgba[RGBA_STRIDE * H], nv12_uv[CW * 2 * CH];
    static uint8_t wide[16384 * 2];
    const rmw_raw_video_frame_t ok = i420_frame(y, u, v, W, H);
    rmw_raw_video_frame_t f;
    fill_i420(y, u, v, 0);
    fill_rgba(rgba, 0);
    memset(nv12_uv, 128, sizeof nv12_uv);

    expect_send(tr, NULL, RMW_ERR_INVALID_ARGUMENT, "NULL frame", accepted);
    expect_send(tr, &ok, RMW_OK, "320x240 I420", accepted);
#define BAD_FRAME(what, change)                                                                    \
    do {                                                                                           \
        f = ok;                                                                                    \
        change;                                                                                    \
        expect_send(tr, &f, RMW_ERR_INVALID_ARGUMENT, what, accepted);                            \
    } while (0)
    BAD_FRAME("format 9", f.format = 9);
    BAD_FRAME("format -1", f.format = -1);
    BAD_FRAME("width 0", f.width = 0);
    BAD_FRAME("height 0", f.height = 0);
    BAD_FRAME("Y plane one byte short", f.sizes[0] -= 1);
    BAD_FRAME("U plane one byte short", f.sizes[1] -= 1);
    BAD_FRAME("V plane one byte short", f.sizes[2] -= 1);
    BAD_FRAME("Y plane empty", f.sizes[0] = 0);
    BAD_FRAME("Y plane NULL", f.planes[0] = NULL);
    BAD_FRAME("V plane NULL", f.planes[2] = NULL);
    BAD_FRAME("Y stride smaller than a row", f.strides[0] = W - 1);
    BAD_FRAME("U stride smaller than a row", f.strides[1] = CW - 1);
    BAD_FRAME("Y stride 0", f.strides[0] = 0);
    BAD_FRAME("height larger than the planes", f.height = H + 2);
    BAD_FRAME("width larger than the strides", f.width = W + 2);
    /* RGBA: one plane of stride >= 4 * width. */
    BAD_FRAME("RGBA stride smaller than a row", f = rgba_frame(rgba, W, H, 4 * W - 1));
    BAD_FRAME("RGBA plane one byte short", f = rgba_frame(rgba, W, H, RGBA_STRIDE); f.sizes[0] -= 1);
    BAD_FRAME("BGRA plane NULL", f = rgba_frame(NULL, W, H, RGBA_STRIDE); f.format = RMW_PIXEL_BGRA);
    /* Larger than the codec's 16383 x 16383 (the planes themselves are big enough). */
    BAD_FRAME("width 16384", f = rgba_frame(wide, 16384 / 4, 2, 16384); f.format = RMW_PIXEL_I420; f.width = 16384;
              f.strides[0] = 16384; f.sizes[0] = sizeof wide; f.planes[1] = f.planes[2] = wide;
              f.strides[1] = f.strides[2] = 8192; f.sizes[1] = f.sizes[2] = 8192);
    /* NV12: Y and interleaved UV rows of 2 * ((width + 1) / 2) bytes. */
    BAD_FRAME("NV12 UV stride smaller than a row", f.format = RMW_PIXEL_NV12; f.planes[1] = nv12_uv;
              f.strides[1] = 2 * CW - 1; f.sizes[1] = sizeof nv12_uv);
#undef BAD_FRAME

    /* Good frames of every format; the size may change from frame to frame. Unused planes
     * (RGBA/BGRA: 1 and 2, NV12: 2) are ignored, NULL or not. */
    f = rgba_frame(rgba, W, H, RGBA_STRIDE);
    expect_send(tr, &f, RMW_OK, "RGBA, padded stride", accepted);
    f.format = RMW_PIXEL_BGRA;
    f.planes[1] = (const uint8_t *)"ignored";
    f.strides[1] = 1;
    f.sizes[1] = 1000000; /* ignored: plane 1 is unused */
    expect_send(tr, &f, RMW_OK, "BGRA with garbage in the unused planes", accepted);
    f = ok;
    f.format = RMW_PIXEL_NV12;
    f.planes[1] = nv12_uv;
    f.strides[1] = 2 * CW;
    f.sizes[1] = sizeof nv12_uv;
    f.planes[2] = NULL;
    f.strides[2] = 0;
    f.sizes[2] = 0;
    expect_send(tr, &f, RMW_OK, "NV12", accepted);
    f = i420_frame(y, u, v, 17, 9); /* odd sizes: chroma 9 x 5 */
    expect_send(tr, &f, RMW_OK, "17x9 I420", accepted);
    f = i420_frame(y, u, v, 1, 1);
    expect_send(tr, &f, RMW_OK, "1x1 I420", accepted);
    f = ok; /* strides larger than a row, planes exactly stride * rows */
    f.width = W / 2;
    f.height = H / 2;
    f.sizes[0] = (size_t)W * (H / 2);
    f.sizes[1] = f.sizes[2] = (size_t)CW * (H / 4);
    expect_send(tr, &f, RMW_OK, "160x120 in 320-byte rows", accepted);
    expect_send(tr, &ok, RMW_OK, "320x240 I420 again", accepted);

    /* Handles: 0, another kind, a never-created one. */
    expect_send(0, &ok, RMW_ERR_INVALID_HANDLE, "handle 0", accepted);
    expect_send((rmw_video_track_t)t, &ok, RMW_ERR_INVALID_HANDLE, "a transport handle", accepted);
    expect_send((rmw_video_track_t)audio, &ok, RMW_ERR_INVALID_HANDLE, "an audio track handle", accepted);
    expect_send(tr | UINT64_C(0xabcdef), &ok, RMW_ERR_INVALID_HANDLE, "a never-created handle", accepted);
    /* The video track is not an audio track either. */
    EXPECT(rmw_audio_track_send_f32((rmw_audio_track_t)tr, (const float[1]){0}, 1), RMW_ERR_INVALID_HANDLE);
    EXPECT(rmw_audio_track_free((rmw_audio_track_t)tr), RMW_ERR_INVALID_HANDLE);
}

static void track_checks(rmw_transport_t t, rmw_audio_track_t audio) {
    rmw_video_track_t tr = 0, all = 0, room = 0;
    char buf[1024];
    size_t len, needed;
    int accepted = 0;
    static uint8_t y[W * H], u[CW * CH], v[CW * CH];
    const rmw_raw_video_frame_t ok = i420_frame(y, u, v, W, H);

    /* Target NONE (target_id ignored, may be NULL): frames are taken and go nowhere. */
    EXPECT(rmw_video_track_new(t, NULL, RMW_TARGET_NONE, "ignored", &tr), RMW_OK);
    EXPECT_TRUE(tr != 0 && tr != (rmw_video_track_t)t && tr != (rmw_video_track_t)audio, "video track handle %#" PRIx64,
                tr);
    EXPECT(rmw_video_track_new(t, NULL, RMW_TARGET_ALL, NULL, &all), RMW_OK);
    EXPECT_TRUE(all != 0 && all != tr, "second video track handle %#" PRIx64, all);
    EXPECT(rmw_session_create(t, "room"), RMW_OK);
    EXPECT(rmw_video_track_new(t, NULL, RMW_TARGET_SESSION, "room", &room), RMW_OK);

    send_checks(tr, t, audio, &accepted);
    EXPECT(rmw_video_track_send(all, &ok), RMW_OK);
    EXPECT(rmw_video_track_send(room, &ok), RMW_OK);

    /* set_target */
    EXPECT(rmw_video_track_set_target(tr, 42, NULL), RMW_ERR_INVALID_ARGUMENT);
    EXPECT(rmw_video_track_set_target(tr, -1, "bob"), RMW_ERR_INVALID_ARGUMENT);
    EXPECT(rmw_video_track_set_target(tr, RMW_TARGET_PEER, NULL), RMW_ERR_INVALID_ARGUMENT);
    EXPECT(rmw_video_track_set_target(tr, RMW_TARGET_PEER, "bo\xc3\x28"), RMW_ERR_INVALID_ARGUMENT);
    EXPECT(rmw_video_track_set_target(tr, RMW_TARGET_PEER, "nobody"), RMW_ERR_NOT_FOUND);
    EXPECT(rmw_video_track_set_target(tr, RMW_TARGET_SESSION, "no-such-room"), RMW_ERR_NOT_FOUND);
    EXPECT(rmw_video_track_set_target(tr, RMW_TARGET_SESSION, "room"), RMW_OK);
    EXPECT(rmw_video_track_set_target(tr, RMW_TARGET_ALL, NULL), RMW_OK);
    EXPECT(rmw_video_track_set_target(tr, RMW_TARGET_NONE, NULL), RMW_OK);
    EXPECT(rmw_video_track_set_target(0, RMW_TARGET_NONE, NULL), RMW_ERR_INVALID_HANDLE);
    EXPECT(rmw_video_track_set_target((rmw_video_track_t)audio, RMW_TARGET_NONE, NULL), RMW_ERR_INVALID_HANDLE);
    EXPECT(rmw_audio_track_set_target((rmw_audio_track_t)tr, RMW_TARGET_NONE, NULL), RMW_ERR_INVALID_HANDLE);

    /* set_bitrate: 30..=50000 kbit/s */
    EXPECT(rmw_video_track_set_bitrate(tr, 10), RMW_ERR_INVALID_ARGUMENT);
    EXPECT(rmw_video_track_set_bitrate(tr, 0), RMW_ERR_INVALID_ARGUMENT);
    EXPECT(rmw_video_track_set_bitrate(tr, 29), RMW_ERR_INVALID_ARGUMENT);
    EXPECT(rmw_video_track_set_bitrate(tr, 50001), RMW_ERR_INVALID_ARGUMENT);
    EXPECT(rmw_video_track_set_bitrate(tr, 30), RMW_OK);
    EXPECT(rmw_video_track_set_bitrate(tr, 50000), RMW_OK);
    EXPECT(rmw_video_track_set_bitrate(tr, 800), RMW_OK);
    EXPECT(rmw_video_track_set_bitrate(0, 800), RMW_ERR_INVALID_HANDLE);
    EXPECT(rmw_video_track_set_bitrate((rmw_video_track_t)t, 800), RMW_ERR_INVALID_HANDLE);

    /* request_keyframe */
    EXPECT(rmw_video_track_request_keyframe(tr), RMW_OK);
    EXPECT(rmw_video_track_request_keyframe(0), RMW_ERR_INVALID_HANDLE);
    EXPECT(rmw_video_track_request_keyframe((rmw_video_track_t)audio), RMW_ERR_INVALID_HANDLE);

    /* stats_json: the size-query pattern */
    EXPECT(rmw_video_track_stats_json(tr, buf, NULL), RMW_ERR_INVALID_ARGUMENT);
    len = 0;
    EXPECT(rmw_video_track_stats_json(tr, NULL, &len), RMW_OK);
    needed = len;
    EXPECT_TRUE(needed > 2 && needed < sizeof buf, "stats size query gave %zu", needed);
    len = 3;
    EXPECT(rmw_video_track_stats_json(tr, buf, &len), RMW_ERR_BUFFER_TOO_SMALL);
    EXPECT_TRUE(len >= needed, "too small: *len %zu", len);
    len = sizeof buf;
    EXPECT(rmw_video_track_stats_json(tr, buf, &len), RMW_OK);
    EXPECT_TRUE(len == strlen(buf) + 1, "stats *len %zu for %zu characters", len, strlen(buf));
    printf("   a video track aimed at nobody: %s\n", buf);
    {
        static const char *const keys[] = {"frames_in",    "frames_dropped", "frames_encoded", "keyframes_encoded",
                                           "keyframes_requested", "packets_sent", "bytes_sent",
                                           "target_bitrate_kbps", "width",  "height", "peers"};
        size_t k;
        for (k = 0; k < sizeof keys / sizeof keys[0]; k++)
            EXPECT_TRUE(json_number(buf, keys[k]) >= 0, "stats lack \"%s\": %s", keys[k], buf);
        EXPECT_TRUE(json_number(buf, "frames_in") == accepted, "frames_in is not the %d frames taken: %s", accepted, buf);
        EXPECT_TRUE(json_number(buf, "target_bitrate_kbps") == 800, "target_bitrate_kbps after set_bitrate(800): %s",
                    buf);
        EXPECT_TRUE(json_number(buf, "packets_sent") == 0 && json_number(buf, "peers") == 0,
                    "a track aimed at nobody sent packets: %s", buf);
        EXPECT_TRUE(json_number(buf, "track") == (long long)tr, "\"track\" is not the handle %#" PRIx64 ": %s", tr, buf);
    }
    len = sizeof buf;
    EXPECT(rmw_video_track_stats_json(0, buf, &len), RMW_ERR_INVALID_HANDLE);
    EXPECT(rmw_video_track_stats_json((rmw_video_track_t)t, buf, &len), RMW_ERR_INVALID_HANDLE);
    EXPECT(rmw_audio_track_stats_json((rmw_audio_track_t)tr, buf, &len), RMW_ERR_INVALID_HANDLE);

    /* free: the handle becomes invalid; 0 is a no-op */
    EXPECT(rmw_video_track_free(tr), RMW_OK);
    EXPECT(rmw_video_track_free(tr), RMW_ERR_INVALID_HANDLE);
    EXPECT(rmw_video_track_send(tr, &ok), RMW_ERR_INVALID_HANDLE); /* send after free */
    EXPECT(rmw_video_track_set_target(tr, RMW_TARGET_ALL, NULL), RMW_ERR_INVALID_HANDLE);
    EXPECT(rmw_video_track_set_bitrate(tr, 800), RMW_ERR_INVALID_HANDLE);
    EXPECT(rmw_video_track_request_keyframe(tr), RMW_ERR_INVALID_HANDLE);
    len = sizeof buf;
    EXPECT(rmw_video_track_stats_json(tr, buf, &len), RMW_ERR_INVALID_HANDLE);
    EXPECT(rmw_video_track_free(0), RMW_OK);
    EXPECT(rmw_video_track_free((rmw_video_track_t)t), RMW_ERR_INVALID_HANDLE);     /* a transport */
    EXPECT(rmw_video_track_free((rmw_video_track_t)audio), RMW_ERR_INVALID_HANDLE); /* an audio track */
    EXPECT(rmw_video_track_send(all, &ok), RMW_OK); /* the others are untouched */
    EXPECT(rmw_video_track_free(room), RMW_OK);
    /* `all` stays live: freeing the transport frees it (checked by the caller). */
}

static void poll_and_callback_checks(rmw_transport_t t, rmw_audio_track_t audio) {
    rmw_video_frame_t f;
    int user = 0;

    EXPECT(rmw_transport_poll_video(t, NULL, 0), RMW_ERR_INVALID_ARGUMENT);
    EXPECT(rmw_transport_poll_video(0, &f, 0), RMW_ERR_INVALID_HANDLE);
    EXPECT(rmw_transport_poll_video((rmw_transport_t)audio, &f, 0), RMW_ERR_INVALID_HANDLE);
    memset(&f, 0x5a, sizeof f);
    EXPECT(rmw_transport_poll_video(t, &f, 0), RMW_ERR_TIMEOUT);
    {
        double t0 = now_s();
        EXPECT(rmw_transport_poll_video(t, &f, 50), RMW_ERR_TIMEOUT);
        EXPECT_TRUE(now_s() - t0 >= 0.045 && now_s() - t0 < 2, "poll_video(50 ms) returned after %.3f s", now_s() - t0);
    }
    EXPECT_TRUE(all_bytes(&f, sizeof f, 0x5a), "rmw_transport_poll_video wrote *frame on error");
    rmw_video_frame_release(NULL);
    memset(&f, 0, sizeof f);
    rmw_video_frame_release(&f);
    rmw_video_frame_release(&f);
    EXPECT_TRUE(f.planes[0] == NULL && f.internal == NULL && f.peer_id == NULL && f.codec == NULL,
                "release of a zeroed frame changed it");

    EXPECT(rmw_transport_set_video_callback(0, nop_video, &user), RMW_ERR_INVALID_HANDLE);
    EXPECT(rmw_transport_set_video_callback((rmw_transport_t)audio, nop_video, &user), RMW_ERR_INVALID_HANDLE);
    EXPECT(rmw_transport_set_video_callback(t, nop_video, &user), RMW_OK);
    EXPECT(rmw_transport_set_video_callback(t, nop_video, NULL), RMW_OK); /* replaced */
    EXPECT(rmw_transport_set_video_callback(t, NULL, NULL), RMW_OK);
    EXPECT(rmw_transport_set_video_callback(t, NULL, NULL), RMW_OK); /* already polling */
    EXPECT(rmw_transport_poll_video(t, &f, 0), RMW_ERR_TIMEOUT);
    EXPECT(rmw_transport_set_video_callback(t, nop_video, &user), RMW_OK); /* left set: freed with the transport */
}

static void transport_config_checks(void) {
    static const char *const bad[] = {
        "{\"video_codec\":\"h264\"}",          "{\"video_codec\":\"VP8 \"}",
        "{\"video_codec\":8}",                 "{\"video_output_format\":\"nv12\"}",
        "{\"video_output_format\":1}",         "{\"video_queue_capacity\":0}",
        "{\"video_queue_capacity\":1025}",     "{\"video_queue_capacity\":-1}",
        "{\"video_max_delay_ms\":5}",          "{\"video_max_delay_ms\":5001}",
        "{\"simulate_loss_percent\":51}",      "{\"simulate_loss_percent\":-1}",
        "{\"enable_video\":\"yes\"}",          "{\"enable_video\":1}",
    };
    static const char *const good[] = {
        "{\"signaling_url\":\"ws://127.0.0.1:9\",\"video_codec\":\"vp9\",\"video_output_format\":\"rgba\","
        "\"video_queue_capacity\":1,\"video_max_delay_ms\":10,\"simulate_loss_percent\":50}",
        "{\"signaling_url\":\"ws://127.0.0.1:9\",\"video_codec\":\"vp8\",\"video_output_format\":\"i420\","
        "\"video_queue_capacity\":1024,\"video_max_delay_ms\":5000,\"simulate_loss_percent\":0,\"enable_video\":true}",
    };
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rmw_transport_t t = 0x77;
        EXPECT(rmw_transport_new(bad[i], &t), RMW_ERR_CONFIG);
        EXPECT_TRUE(t == 0x77, "rmw_transport_new wrote *out on error (%s)", bad[i]);
        if (t != 0x77)
            (void)rmw_transport_free(t);
    }
    for (i = 0; i < sizeof good / sizeof good[0]; i++) {
        rmw_transport_t t = 0;
        EXPECT(rmw_transport_new(good[i], &t), RMW_OK);
        EXPECT(rmw_transport_free(t), RMW_OK);
    }
    /* Without enable_video there are no video tracks (and audio is unaffected). */
    {
        rmw_transport_t t = 0;
        rmw_video_track_t tr = 0;
        rmw_audio_track_t a = 0;
        EXPECT(rmw_transport_new("{\"signaling_url\":\"ws://127.0.0.1:9\",\"enable_video\":false}", &t), RMW_OK);
        EXPECT(rmw_video_track_new(t, NULL, RMW_TARGET_NONE, NULL, &tr), RMW_ERR_INVALID_ARGUMENT);
        EXPECT_TRUE(tr == 0, "a video track was created with enable_video false");
        EXPECT(rmw_audio_track_new(t, NULL, RMW_TARGET_NONE, NULL, &a), RMW_OK);
        EXPECT(rmw_transport_free(t), RMW_OK);
    }
}

typedef struct {
    rmw_transport_t t;
    atomic_int status; /* 1 while polling */
    double returned_at;
} blocked_poll_t;

static void *poll_forever(void *arg) {
    blocked_poll_t *b = (blocked_poll_t *)arg;
    rmw_video_frame_t f;
    rmw_status_t st = rmw_transport_poll_video(b->t, &f, -1);
    b->returned_at = now_s();
    atomic_store(&b->status, (int)st);
    if (st == RMW_OK)
        rmw_video_frame_release(&f);
    return NULL;
}

/* rmw_transport_poll_video without a timeout returns when the transport is freed. */
static void free_while_polling(void) {
    blocked_poll_t b;
    pthread_t th;
    double freed_at;
    int st;
    b.t = 0;
    b.returned_at = 0;
    atomic_init(&b.status, 1);
    CHECK(rmw_transport_new(CONFIG_DEAD, &b.t));
    start_thread(&th, poll_forever, &b);
    sleep_ms(100);
    EXPECT_TRUE(atomic_load(&b.status) == 1, "rmw_transport_poll_video(-1) returned %s with nothing to poll",
                rmw_status_string(atomic_load(&b.status)));
    freed_at = now_s();
    EXPECT(rmw_transport_free(b.t), RMW_OK);
    pthread_join(th, NULL);
    st = atomic_load(&b.status);
    EXPECT_TRUE(st == RMW_ERR_CLOSED || st == RMW_ERR_INVALID_HANDLE,
                "rmw_transport_poll_video(-1) returned %s when the transport was freed", rmw_status_string(st));
    EXPECT_TRUE(b.returned_at - freed_at < 2, "rmw_transport_poll_video(-1) returned %.1f s after the free",
                b.returned_at - freed_at);
    printf("   poll_video(-1) blocked, then returned %s when its transport was freed\n", rmw_status_string(st));
}

static void argument_checks(void) {
    rmw_transport_t t = 0;
    rmw_audio_track_t audio = 0;
    rmw_video_track_t kept = 0;
    static uint8_t y[W * H], u[CW * CH], v[CW * CH];
    const rmw_raw_video_frame_t ok = i420_frame(y, u, v, W, H);
    int before = atomic_load(&g_failures);

    printf("A: argument checks\n");
    config_defaults();
    transport_config_checks();
    CHECK(rmw_transport_new(CONFIG_DEAD, &t));
    CHECK(rmw_audio_track_new(t, NULL, RMW_TARGET_NONE, NULL, &audio)); /* a handle of another kind */
    track_new_checks(t, audio);
    track_checks(t, audio);
    poll_and_callback_checks(t, audio);
    EXPECT(rmw_video_track_new(t, NULL, RMW_TARGET_ALL, NULL, &kept), RMW_OK);
    EXPECT(rmw_video_track_send(kept, &ok), RMW_OK);
    /* Freed with live video tracks (and a video callback set): clean, and the tracks go with it. */
    EXPECT(rmw_transport_free(t), RMW_OK);
    EXPECT(rmw_video_track_send(kept, &ok), RMW_ERR_INVALID_HANDLE);
    EXPECT(rmw_video_track_free(kept), RMW_ERR_INVALID_HANDLE);
    EXPECT(rmw_transport_set_video_callback(t, nop_video, NULL), RMW_ERR_INVALID_HANDLE);
    {
        rmw_video_frame_t f;
        EXPECT(rmw_transport_poll_video(t, &f, 0), RMW_ERR_INVALID_HANDLE);
    }
    EXPECT(rmw_video_track_new(t, NULL, RMW_TARGET_NONE, NULL, &kept), RMW_ERR_INVALID_HANDLE);
    free_while_polling();
    printf("A: argument checks done (%d failures)\n", atomic_load(&g_failures) - before);
}

/* ---- B, C. the pattern from alice to bob -------------------------------------------------- */

#define MAX_FRAMES 256
#define SWITCH_AFTER (FRAMES / 2) /* frames taken by the callback before switching to polling */
#define KEYFRAME_AT 40            /* alice asks for a keyframe before sending this frame */

enum { VIA_CALLBACK, VIA_POLL };

typedef struct {
    const char *name;
    const char *extra;        /* both transports' JSON: the codec */
    const char *bob_extra;    /* bob's output format */
    const char *codec;        /* expected codec name */
    bool send_rgba;           /* alice sends RGBA (padded stride); else I420 */
    rmw_video_format_t format; /* what bob receives */
} run_t;

typedef struct {
    long number;
    bool keyframe;
    int via;
    uint32_t rtp_timestamp;
    uint64_t arrival_us;
    double abs_err, mse; /* against the pattern frame `number`: Y (I420) or R, G, B (RGBA) */
} frame_info_t;

typedef struct {
    pthread_mutex_t lock;
    /* set before the run */
    rmw_transport_t bob;
    const run_t *run;
    /* filled by the callback and by the polling thread */
    frame_info_t frames[MAX_FRAMES];
    size_t n_frames;
    int by_callback, by_poll;
    char track_id[128];
    char error[512];
    uint8_t patch_pixel[4]; /* RGBA: the centre of the coloured patch in the last frame */
    atomic_int cleared;     /* set once rmw_transport_set_video_callback(bob, NULL, NULL) returned */
    atomic_int late_calls;  /* callbacks after that */
    atomic_int sender_done; /* alice finished sending */
} rx_t;

static void rx_fail(rx_t *rx, const char *fmt, const char *detail) {
    if (rx->error[0] == '\0')
        snprintf(rx->error, sizeof rx->error, fmt, detail);
}

/* Error of a received frame against pattern frame n. */
static void compare(const rmw_video_frame_t *f, long n, frame_info_t *info) {
    uint64_t abs_sum = 0, sq_sum = 0, count = 0;
    uint32_t r, c;
    int k;
    for (r = 0; r < H; r++)
        for (c = 0; c < W; c++) {
            if (f->format == RMW_VIDEO_I420) {
                int d = (int)f->planes[0][(size_t)r * f->strides[0] + c] - (int)pattern_y(c, r, (uint32_t)n);
                abs_sum += (uint64_t)(d < 0 ? -d : d);
                sq_sum += (uint64_t)(d * d);
                count++;
            } else {
                uint8_t want[4];
                const uint8_t *px = f->planes[0] + (size_t)r * f->strides[0] + 4 * (size_t)c;
                pattern_rgba(c, r, (uint32_t)n, want);
                for (k = 0; k < 3; k++) {
                    int d = (int)px[k] - (int)want[k];
                    abs_sum += (uint64_t)(d < 0 ? -d : d);
                    sq_sum += (uint64_t)(d * d);
                    count++;
                }
            }
        }
    info->abs_err = (double)abs_sum / (double)count;
    info->mse = (double)sq_sum / (double)count;
}

/* Checks and records one frame (callback or polled). Caller holds rx->lock. */
static void record(rx_t *rx, const rmw_video_frame_t *f, int via) {
    frame_info_t *info;
    const run_t *run = rx->run;
    char d[160];
    if (f->transport != rx->bob)
        rx_fail(rx, "frame of another transport%s", "");
    if (f->peer_id == NULL || strcmp(f->peer_id, "alice") != 0)
        rx_fail(rx, "frame from peer %s", f->peer_id ? f->peer_id : "(NULL)");
    if (f->codec == NULL || strcmp(f->codec, run->codec) != 0)
        rx_fail(rx, "frame coded as %s", f->codec ? f->codec : "(NULL)");
    if (f->track_id == NULL || f->track_id[0] == '\0')
        rx_fail(rx, "frame without track_id%s", "");
    else if (rx->track_id[0] == '\0')
        snprintf(rx->track_id, sizeof rx->track_id, "%s", f->track_id);
    else if (strcmp(rx->track_id, f->track_id) != 0)
        rx_fail(rx, "track_id changed to %s", f->track_id);
    if (f->width != W || f->height != H || f->format != run->format || f->planes[0] == NULL) {
        snprintf(d, sizeof d, "%ux%u, format %d, planes[0] %p", (unsigned)f->width, (unsigned)f->height, (int)f->format,
                 (const void *)f->planes[0]);
        rx_fail(rx, "frame is %s, not as sent and configured", d);
        return;
    }
    if (f->format == RMW_VIDEO_I420 ? (f->strides[0] < W || f->strides[1] < CW || f->strides[2] < CW ||
                                       f->planes[1] == NULL || f->planes[2] == NULL)
                                    : f->strides[0] < 4 * W) {
        snprintf(d, sizeof d, "strides %u %u %u", (unsigned)f->strides[0], (unsigned)f->strides[1],
                 (unsigned)f->strides[2]);
        rx_fail(rx, "frame planes: %s", d);
        return;
    }
    if (rx->n_frames == MAX_FRAMES) {
        rx_fail(rx, "more frames than sent%s", "");
        return;
    }
    info = &rx->frames[rx->n_frames++];
    info->number = read_number(f->planes[0], f->strides[0], f->format == RMW_VIDEO_I420 ? 1 : 4);
    info->keyframe = f->keyframe;
    info->via = via;
    info->rtp_timestamp = f->rtp_timestamp;
    info->arrival_us = f->arrival_us;
    info->abs_err = info->mse = -1;
    if (info->number >= 0 && info->number < FRAMES)
        compare(f, info->number, info);
    if (f->format == RMW_VIDEO_RGBA)
        memcpy(rx->patch_pixel, f->planes[0] + (size_t)(PATCH_Y + 32) * f->strides[0] + 4 * (PATCH_X + 32), 4);
    if (via == VIA_CALLBACK)
        rx->by_callback++;
    else
        rx->by_poll++;
}

/* Bob's video callback (his video thread): `frame` is valid until it returns. */
static void on_bob_video(const rmw_video_frame_t *frame, void *user_data) {
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
    wait_callback_frames(&rx->lock, &rx->by_callback, SWITCH_AFTER, 2, "video");
    CHECK(rmw_transport_set_video_callback(rx->bob, NULL, NULL));
    atomic_store(&rx->cleared, 1);
    last_frame = now_s();
    for (;;) {
        rmw_video_frame_t f;
        rmw_status_t st = rmw_transport_poll_video(rx->bob, &f, 50);
        if (st == RMW_OK) {
            pthread_mutex_lock(&rx->lock);
            record(rx, &f, VIA_POLL);
            pthread_mutex_unlock(&rx->lock);
            rmw_video_frame_release(&f);
            if (f.planes[0] != NULL || f.internal != NULL || f.peer_id != NULL || f.codec != NULL)
                die("rmw_video_frame_release did not zero the frame");
            rmw_video_frame_release(&f); /* released before: no-op */
            last_frame = now_s();
        } else if (polling_done(st, &rx->sender_done, last_frame, "video")) {
            break;
        }
    }
    return NULL;
}

/* Sends frames 0..FRAMES-1 of the pattern on `track` at FPS in real time, asking for a keyframe
 * before KEYFRAME_AT. Writes how long rmw_video_track_send took at most and in all (us). */
static void send_pattern(rmw_video_track_t track, bool rgba, uint64_t *slowest_out, uint64_t *total_out) {
    static uint8_t y[W * H], u[CW * CH], v[CW * CH], pixels[RGBA_STRIDE * H];
    const uint64_t start = rmw_clock_us();
    uint64_t slowest = 0, total = 0;
    uint32_t n;
    for (n = 0; n < FRAMES; n++) {
        rmw_raw_video_frame_t f;
        uint64_t t0, took;
        rmw_status_t st;
        if (rgba) {
            fill_rgba(pixels, n);
            f = rgba_frame(pixels, W, H, RGBA_STRIDE);
        } else {
            fill_i420(y, u, v, n);
            f = i420_frame(y, u, v, W, H);
        }
        if (n == KEYFRAME_AT)
            CHECK(rmw_video_track_request_keyframe(track));
        t0 = rmw_clock_us();
        st = rmw_video_track_send(track, &f);
        took = rmw_clock_us() - t0;
        slowest = took > slowest ? took : slowest;
        total += took;
        if (st != RMW_OK)
            die("rmw_video_track_send of frame %u: %s: %s", (unsigned)n, rmw_status_string((int32_t)st),
                rmw_last_error_message());
        while (rmw_clock_us() < start + (uint64_t)(n + 1) * 1000000u / FPS)
            sleep_ms(1);
    }
    *slowest_out = slowest;
    *total_out = total;
}

/* Polls bob's events until RMW_EVENT_TRACK_ADDED for alice's video and checks its fields. */
static void expect_track_added(rmw_transport_t bob, const char *track_id, const char *codec) {
    rmw_event_t ev;
    if (!next_event_of_kind(bob, "bob", RMW_EVENT_TRACK_ADDED, 5, &ev)) {
        FAILF("bob saw no RMW_EVENT_TRACK_ADDED");
        return;
    }
    printf("   TRACK_ADDED: peer %s, track %s, media_kind %d, %s/%u\n", ev.peer_id ? ev.peer_id : "(NULL)",
           ev.track_id ? ev.track_id : "(NULL)", (int)ev.media_kind, ev.codec ? ev.codec : "(NULL)",
           (unsigned)ev.clock_rate);
    EXPECT_TRUE(ev.peer_id && strcmp(ev.peer_id, "alice") == 0, "TRACK_ADDED peer_id");
    EXPECT_TRUE(ev.media_kind == RMW_MEDIA_VIDEO, "TRACK_ADDED media_kind %d", (int)ev.media_kind);
    EXPECT_TRUE(ev.codec && strcmp(ev.codec, codec) == 0, "TRACK_ADDED codec %s, expected %s",
                ev.codec ? ev.codec : "NULL", codec);
    EXPECT_TRUE(ev.clock_rate == 90000, "TRACK_ADDED clock_rate %u", (unsigned)ev.clock_rate);
    EXPECT_TRUE(ev.track_id && strcmp(ev.track_id, track_id) == 0, "TRACK_ADDED track_id %s, frames say %s",
                ev.track_id ? ev.track_id : "NULL", track_id);
    EXPECT_TRUE(ev.transport == bob, "TRACK_ADDED of another transport");
    rmw_event_release(&ev);
}

/* What bob received: numbers, order, keyframes, quality, timestamps. */
static void check_received(rx_t *rx, uint64_t t0_us) {
    const char *name = rx->run->name;
    size_t i;
    int unreadable = 0, bad_order = 0, keyframes = 0, keyframe_after_request = 0;
    double worst_psnr = 99, sum_abs = 0, worst_abs = 0, sum_mse = 0;
    size_t compared = 0;
    uint64_t now_us = rmw_clock_us();

    if (rx->error[0] != '\0')
        FAILF("%s: %s", name, rx->error);
    EXPECT_TRUE(atomic_load(&rx->late_calls) == 0, "%s: %d video callbacks after the callback was cleared", name,
                atomic_load(&rx->late_calls));
    EXPECT_TRUE(rx->by_callback >= SWITCH_AFTER && rx->by_poll >= FRAMES / 4, "%s: %d frames by callback, %d by poll",
                name, rx->by_callback, rx->by_poll);
    EXPECT_TRUE(rx->n_frames * 10 >= FRAMES * 8, "%s: %zu of %d frames arrived", name, rx->n_frames, FRAMES);
    if (rx->n_frames == 0)
        return;
    EXPECT_TRUE(rx->frames[0].keyframe, "%s: the first frame received (number %ld) is not a keyframe", name,
                rx->frames[0].number);
    for (i = 0; i < rx->n_frames; i++) {
        const frame_info_t *f = &rx->frames[i];
        keyframes += f->keyframe;
        if (f->keyframe && f->number >= KEYFRAME_AT)
            keyframe_after_request = 1;
        if (f->number < 0 || f->number >= FRAMES) {
            if (unreadable++ < 3)
                FAILF("%s: frame %zu carries no readable frame number (%ld)", name, i, f->number);
            continue;
        }
        if (f->mse >= 0) {
            double p = psnr(f->mse);
            compared++;
            sum_abs += f->abs_err;
            sum_mse += f->mse;
            worst_abs = f->abs_err > worst_abs ? f->abs_err : worst_abs;
            worst_psnr = p < worst_psnr ? p : worst_psnr;
            if (p < 30.0)
                FAILF("%s: frame %ld (%s%s): PSNR %.1f dB, mean absolute error %.2f", name, f->number,
                      f->via == VIA_CALLBACK ? "callback" : "polled", f->keyframe ? ", keyframe" : "", p, f->abs_err);
        }
        if (f->arrival_us < t0_us || f->arrival_us > now_us)
            FAILF("%s: frame %ld arrival_us %" PRIu64 " outside [%" PRIu64 ", %" PRIu64 "]", name, f->number,
                  f->arrival_us, t0_us, now_us);
        if (i > 0) {
            const frame_info_t *p = &rx->frames[i - 1];
            int32_t ticks = (int32_t)(f->rtp_timestamp - p->rtp_timestamp);
            if ((f->number <= p->number || ticks <= 0 || f->arrival_us < p->arrival_us) && bad_order++ < 5)
                FAILF("%s: frame %zu (%s, number %ld, rtp %u) after frame %zu (%s, number %ld, rtp %u)", name, i,
                      f->via == VIA_CALLBACK ? "callback" : "polled", f->number, (unsigned)f->rtp_timestamp, i - 1,
                      p->via == VIA_CALLBACK ? "callback" : "polled", p->number, (unsigned)p->rtp_timestamp);
        }
    }
    EXPECT_TRUE(keyframe_after_request, "%s: no keyframe at or after frame %d, where alice asked for one", name,
                KEYFRAME_AT);
    EXPECT_TRUE(compared > 0 && sum_abs / (double)compared < 3.0, "%s: mean absolute error %.2f", name,
                compared ? sum_abs / (double)compared : -1.0);
    printf("   %s: %zu of %d frames (%d by callback, then %d polled), numbers %ld..%ld in order, %d keyframes "
           "(first frame one), %s error: mean %.2f, worst %.2f of 255; PSNR %.1f dB overall, worst %.1f dB\n",
           name, rx->n_frames, FRAMES, rx->by_callback, rx->by_poll, rx->frames[0].number,
           rx->frames[rx->n_frames - 1].number, keyframes, rx->run->format == RMW_VIDEO_I420 ? "luma" : "RGB",
           compared ? sum_abs / (double)compared : -1.0, worst_abs, compared ? psnr(sum_mse / (double)compared) : 0.0,
           worst_psnr);
    if (rx->run->format == RMW_VIDEO_RGBA) {
        const uint8_t *px = rx->patch_pixel;
        int k, close = px[3] == 255;
        for (k = 0; k < 3; k++)
            close = close && px[k] + 10 >= PATCH_RGBA[k] && px[k] <= PATCH_RGBA[k] + 10;
        printf("   %s: patch pixel (%d, %d) of the last frame is RGBA %u %u %u %u (sent %u %u %u %u)\n", name,
               PATCH_X + 32, PATCH_Y + 32, px[0], px[1], px[2], px[3], PATCH_RGBA[0], PATCH_RGBA[1], PATCH_RGBA[2],
               PATCH_RGBA[3]);
        EXPECT_TRUE(close, "%s: the patch pixel is not within 10 of what was sent", name);
    }
}

/* The track's stats after the run. */
static void check_track_stats(rmw_video_track_t track) {
    char buf[1024];
    size_t len = sizeof buf;
    CHECK(rmw_video_track_stats_json(track, buf, &len));
    printf("   alice's track stats: %s\n", buf);
    EXPECT_TRUE(json_number(buf, "frames_in") == FRAMES, "frames_in is not %d", FRAMES);
    EXPECT_TRUE(json_number(buf, "frames_encoded") + json_number(buf, "frames_dropped") == FRAMES,
                "frames_encoded + frames_dropped is not %d", FRAMES);
    EXPECT_TRUE(json_number(buf, "frames_encoded") >= FRAMES * 9 / 10, "fewer than 90 %% of the frames were encoded");
    EXPECT_TRUE(json_number(buf, "keyframes_encoded") >= 2, "keyframes_encoded < 2 (first frame, and the request)");
    EXPECT_TRUE(json_number(buf, "packets_sent") >= json_number(buf, "frames_encoded"), "packets_sent");
    EXPECT_TRUE(json_number(buf, "bytes_sent") > 0, "bytes_sent not > 0");
    EXPECT_TRUE(json_number(buf, "width") == W && json_number(buf, "height") == H, "width/height");
    EXPECT_TRUE(json_number(buf, "peers") == 1 && json_number(buf, "peers_busy") == 0, "peers / peers_busy");
    EXPECT_TRUE(json_number(buf, "encode_errors") <= 0, "encode_errors");
    EXPECT_TRUE(json_number(buf, "target_bitrate_kbps") == 1500, "target_bitrate_kbps is not the default 1500");
}

/* One run: alice -> bob, a fresh pair of transports on `url`. Returns with both connected
 * and alice's track live in *alice_out, *bob_out, *track_out. */
static void exchange(const char *url, const run_t *run, rmw_transport_t *alice_out, rmw_transport_t *bob_out,
                     rmw_video_track_t *track_out) {
    rmw_transport_t alice, bob;
    rmw_video_track_t track = 0;
    rmw_video_track_config_t cfg = rmw_video_track_config_default();
    rx_t *rx = calloc(1, sizeof *rx);
    pthread_t receiver;
    uint64_t t0, slowest, total;
    char extra[256], stats[4096];
    size_t len;

    if (rx == NULL)
        die("out of memory");
    printf("%s\n", run->name);
    alice = new_transport_with(url, "alice", run->extra);
    snprintf(extra, sizeof extra, "%s%s%s", run->extra, run->extra[0] && run->bob_extra[0] ? "," : "", run->bob_extra);
    bob = new_transport_with(url, "bob", extra);
    connect_pair(alice, "alice", bob, "bob");

    pthread_mutex_init(&rx->lock, NULL);
    rx->bob = bob;
    rx->run = run;
    atomic_init(&rx->cleared, 0);
    atomic_init(&rx->late_calls, 0);
    atomic_init(&rx->sender_done, 0);

    /* Bob: callback first, then polling (bob_receiver switches). */
    CHECK(rmw_transport_set_video_callback(bob, on_bob_video, rx));
    start_thread(&receiver, bob_receiver, rx);

    /* Alice: the default config, 30 fps, to bob. */
    cfg.fps = FPS;
    t0 = rmw_clock_us();
    CHECK(rmw_video_track_new(alice, &cfg, RMW_TARGET_PEER, "bob", &track));
    send_pattern(track, run->send_rgba, &slowest, &total);
    atomic_store(&rx->sender_done, 1);
    pthread_join(receiver, NULL);
    printf("   rmw_video_track_send took %" PRIu64 " us on average, at most %" PRIu64 " us\n", total / FRAMES,
           slowest);

    check_received(rx, t0);
    check_track_stats(track);
    expect_track_added(bob, rx->track_id, run->codec);
    len = sizeof stats;
    CHECK(rmw_transport_stats_json(bob, stats, &len));
    printf("   bob's transport stats: %s\n", stats);
    EXPECT_TRUE(strstr(stats, "\"video_frames_dropped\":0") != NULL, "bob dropped video frames: %s", stats);
    EXPECT_TRUE(strstr(stats, "\"remote_video_tracks\":[{") != NULL, "bob lists no remote video track: %s", stats);
    EXPECT_TRUE(json_number(stats, "frames_lost") == 0 && json_number(stats, "decode_errors") == 0,
                "bob lost frames or failed to decode on loopback: %s", stats);

    pthread_mutex_destroy(&rx->lock);
    free(rx);
    *alice_out = alice;
    *bob_out = bob;
    *track_out = track;
}

/* ---- D. teardown with video flowing (teardown_by_main, teardown_in_callback: test_util.h) ---- */

static void on_counted_video(const rmw_video_frame_t *frame, void *user_data) {
    count_t *c = (count_t *)user_data;
    if (count_call(c)) {
        /* The frame stays valid until this returns, even across the free. */
        char peer[32];
        uint8_t first = frame->planes[0][0];
        snprintf(peer, sizeof peer, "%s", frame->peer_id);
        atomic_store(&c->free_status, (int)rmw_transport_free(frame->transport));
        atomic_store(&c->freed, 1);
        if (strcmp(peer, frame->peer_id) != 0 || frame->width != W || frame->planes[0][0] != first)
            atomic_store(&c->free_status, 100);
    }
}

/* Feeds alice's track with the pattern at ~30 fps until told to stop; counts what send returns. */
static void *feeder(void *arg) {
    feeder_t *fd = (feeder_t *)arg;
    static uint8_t y[W * H], u[CW * CH], v[CW * CH];
    const rmw_raw_video_frame_t f = i420_frame(y, u, v, W, H);
    uint32_t n = 0;
    while (!atomic_load(&fd->stop)) {
        fill_i420(y, u, v, n++);
        feeder_count(fd, rmw_video_track_send(fd->track, &f));
        sleep_ms(1000 / FPS);
    }
    return NULL;
}

/* D: bob's video callback, counted into c. */
static void watch_bob(rmw_transport_t bob, count_t *c) {
    CHECK(rmw_transport_set_video_callback(bob, on_counted_video, c));
}

/* D2: a send on the freed track. */
static rmw_status_t send_one(uint64_t track) {
    static uint8_t y[4], u[1], v[1];
    const rmw_raw_video_frame_t f = i420_frame(y, u, v, 2, 2);
    return rmw_video_track_send(track, &f);
}

/* D1 watches alice's sends for 150 ms after her free (the feeder sends every 1000 / FPS ms). */
static const media_t VIDEO = {"video", watch_bob, feeder, rmw_video_track_free, send_one, 150};

int main(void) {
    static const run_t VP8_I420 = {"B: VP8, I420 in, I420 out (callback, then poll)", "", "", "vp8", false,
                                   RMW_VIDEO_I420};
    static const run_t VP9_RGBA = {"C: VP9, RGBA in (padded stride), RGBA out (callback, then poll)",
                                   "\"video_codec\":\"vp9\"", "\"video_output_format\":\"rgba\"", "vp9", true,
                                   RMW_VIDEO_RGBA};
    char url[128];
    rmw_signaling_server_t server;
    rmw_transport_t alice, bob;
    rmw_video_track_t track;
    double t0 = now_s();
    int failures;

    watchdog(80);
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("remotemedia-webrtc %s, video C API test\n", rmw_version());
    argument_checks();

    server = start_server(url, sizeof url);
    exchange(url, &VP8_I420, &alice, &bob, &track);
    teardown_by_main(&VIDEO, alice, bob, track);
    exchange(url, &VP9_RGBA, &alice, &bob, &track);
    teardown_in_callback(&VIDEO, alice, bob, track);
    CHECK(rmw_signaling_server_stop(server));

    failures = atomic_load(&g_failures);
    printf("video_api: %s (%d failures, %.1f s)\n", failures ? "FAILED" : "OK", failures, now_s() - t0);
    return failures ? 1 : 0;
}
