/*
 * remotemedia_webrtc.hpp: header-only C++17 wrapper of <remotemedia_webrtc.h>.
 *
 *   rmw::SignalingServer  owns a running signaling server (stopped by the destructor)
 *   rmw::Transport        owns a transport (freed by the destructor) and its callbacks
 *   rmw::DataChannel      a non-owning handle value (valid while its transport lives and
 *                         until its close event)
 *   rmw::Event            an owned copy of one event (strings and payload copied)
 *   rmw::AudioTrack       owns an outgoing Opus track fed with PCM (freed by the destructor;
 *                         from Transport::add_audio_track)
 *   rmw::AudioFrame       an owned copy of one block of received, decoded audio
 *   rmw::VideoTrack       owns an outgoing VP8/VP9 track fed with raw frames (freed by the
 *                         destructor; from Transport::add_video_track)
 *   rmw::RawVideoFrame    describes a frame to send (I420, NV12, RGBA, BGRA; your pixels)
 *   rmw::VideoFrame       an owned copy of one received, decoded frame (I420 or RGBA)
 *   rmw::Error            thrown by every failing call: status() and the library's
 *                         rmw_last_error_message() in what()
 *
 * Owning classes are move-only; a moved-from (or default-constructed) object holds no handle,
 * its destructor does nothing and its other methods throw rmw::Error(RMW_ERR_INVALID_HANDLE).
 * Destructors never throw. Strings are taken as std::string_view and copied to add the NUL;
 * a string containing a NUL byte is refused with RMW_ERR_INVALID_ARGUMENT.
 *
 * Threads: like the C API, every call may be made from any thread, including from inside
 * the event, audio and video callbacks (destroying the Transport from its own callback
 * included). The usual C++ rule applies to the wrapper objects themselves: do not move, assign
 * or destroy an object while another thread is using it, and do not call set_callback(),
 * set_audio_callback() or set_video_callback() concurrently with itself. AudioTrack::send()
 * and VideoTrack::send() may be called from any thread (e.g. a sound card's or a camera's
 * callback) while other threads use the same track.
 *
 * Build: c++ -std=c++17 app.cpp $(pkg-config --cflags --libs remotemedia_webrtc) -pthread
 */
#ifndef REMOTEMEDIA_WEBRTC_HPP
#define REMOTEMEDIA_WEBRTC_HPP

#include "remotemedia_webrtc.h"

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <iterator>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace rmw {

/* ---- errors ------------------------------------------------------------------------------ */

/// Thrown by every failing call. what() is the library's rmw_last_error_message() (which names
/// the C function), then the status name: "rmw_transport_connect_peer: ... [RMW_ERR_NOT_FOUND]".
class Error : public std::runtime_error {
public:
    Error(rmw_status_t status, const std::string &what) : std::runtime_error(what), status_(status) {}

    /// The C status (RMW_ERR_*).
    rmw_status_t status() const noexcept { return status_; }
    /// Its name, e.g. "RMW_ERR_NOT_FOUND".
    const char *status_name() const noexcept { return rmw_status_string(static_cast<int32_t>(status_)); }

private:
    rmw_status_t status_;
};

namespace detail {

/// Throws rmw::Error for a failed status, with the calling thread's last error text.
inline void check(rmw_status_t status, const char *function) {
    if (status == RMW_OK)
        return;
    const char *message = rmw_last_error_message();
    std::string what = message != nullptr ? message : "";
    const std::string prefix = std::string(function) + ": ";
    if (what.compare(0, prefix.size(), prefix) != 0)
        what.insert(0, prefix);
    what += " [";
    what += rmw_status_string(static_cast<int32_t>(status));
    what += ']';
    throw Error(status, what);
}

/// A NUL-terminated copy of `s`; refuses embedded NUL bytes (they would truncate silently).
inline std::string c_string(std::string_view s, const char *what) {
    if (s.find('\0') != std::string_view::npos)
        throw Error(RMW_ERR_INVALID_ARGUMENT, std::string(what) + ": a string argument contains a NUL byte [RMW_ERR_INVALID_ARGUMENT]");
    return std::string(s);
}

/// Runs a size-query call `f(buf, &len)` until the buffer is large enough.
template <class F>
std::string query_string(F &&f, const char *function) {
    std::string buf(256, '\0');
    for (int attempt = 0; attempt < 16; ++attempt) {
        size_t len = buf.size();
        rmw_status_t st = f(&buf[0], &len);
        if (st == RMW_OK) {
            buf.resize(len > 0 ? len - 1 : 0);
            return buf;
        }
        if (st != RMW_ERR_BUFFER_TOO_SMALL)
            check(st, function);
        buf.assign(len, '\0'); /* len: the size needed, NUL included; it may grow meanwhile */
    }
    throw Error(RMW_ERR_INTERNAL, std::string(function) + ": the result keeps growing [RMW_ERR_INTERNAL]");
}

inline const char *opt_c_str(const std::string &s) { return s.empty() ? nullptr : s.c_str(); }

inline void append_json_string(std::string &out, std::string_view s) {
    out += '"';
    for (char c : s) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (static_cast<unsigned char>(c) < 0x20) {
                char esc[8];
                std::snprintf(esc, sizeof esc, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
                out += esc;
            } else {
                out += c;
            }
        }
    }
    out += '"';
}

inline int32_t to_timeout_ms(std::chrono::milliseconds timeout) {
    auto ms = timeout.count();
    if (ms < 0)
        return -1;
    if (ms > std::numeric_limits<int32_t>::max())
        return std::numeric_limits<int32_t>::max();
    return static_cast<int32_t>(ms);
}

} // namespace detail

/* ---- small value types ------------------------------------------------------------------- */

enum class EventKind : int {
    None = RMW_EVENT_NONE,
    SignalingConnected = RMW_EVENT_SIGNALING_CONNECTED,
    SignalingDisconnected = RMW_EVENT_SIGNALING_DISCONNECTED,
    PeerDiscovered = RMW_EVENT_PEER_DISCOVERED,
    PeerLeft = RMW_EVENT_PEER_LEFT,
    PeerOffer = RMW_EVENT_PEER_OFFER,
    PeerStateChanged = RMW_EVENT_PEER_STATE_CHANGED,
    DataChannelOpen = RMW_EVENT_DATA_CHANNEL_OPEN,
    DataChannelClose = RMW_EVENT_DATA_CHANNEL_CLOSE,
    DataChannelMessage = RMW_EVENT_DATA_CHANNEL_MESSAGE,
    DataChannelBufferedAmountLow = RMW_EVENT_DATA_CHANNEL_BUFFERED_AMOUNT_LOW,
    Error = RMW_EVENT_ERROR,
    TrackAdded = RMW_EVENT_TRACK_ADDED,
    TrackRemoved = RMW_EVENT_TRACK_REMOVED,
};

enum class PeerState : int {
    New = RMW_PEER_NEW,
    Connecting = RMW_PEER_CONNECTING,
    Connected = RMW_PEER_CONNECTED,
    Disconnected = RMW_PEER_DISCONNECTED,
    Failed = RMW_PEER_FAILED,
    Closed = RMW_PEER_CLOSED,
};

enum class MediaKind : int {
    None = RMW_MEDIA_NONE,
    Audio = RMW_MEDIA_AUDIO,
    Video = RMW_MEDIA_VIDEO,
};

/// Sample format of received audio (`audio_output_format` of the transport).
enum class SampleFormat : int {
    F32 = RMW_SAMPLE_F32, ///< interleaved float in [-1, 1]
    S16 = RMW_SAMPLE_S16, ///< interleaved int16_t
};

inline const char *to_string(EventKind k) noexcept {
    switch (k) {
    case EventKind::None: return "none";
    case EventKind::SignalingConnected: return "signaling_connected";
    case EventKind::SignalingDisconnected: return "signaling_disconnected";
    case EventKind::PeerDiscovered: return "peer_discovered";
    case EventKind::PeerLeft: return "peer_left";
    case EventKind::PeerOffer: return "peer_offer";
    case EventKind::PeerStateChanged: return "peer_state_changed";
    case EventKind::DataChannelOpen: return "data_channel_open";
    case EventKind::DataChannelClose: return "data_channel_close";
    case EventKind::DataChannelMessage: return "data_channel_message";
    case EventKind::DataChannelBufferedAmountLow: return "data_channel_buffered_amount_low";
    case EventKind::Error: return "error";
    case EventKind::TrackAdded: return "track_added";
    case EventKind::TrackRemoved: return "track_removed";
    }
    return "unknown";
}

inline const char *to_string(PeerState s) noexcept {
    switch (s) {
    case PeerState::New: return "new";
    case PeerState::Connecting: return "connecting";
    case PeerState::Connected: return "connected";
    case PeerState::Disconnected: return "disconnected";
    case PeerState::Failed: return "failed";
    case PeerState::Closed: return "closed";
    }
    return "unknown";
}

inline const char *to_string(MediaKind k) noexcept {
    switch (k) {
    case MediaKind::None: return "none";
    case MediaKind::Audio: return "audio";
    case MediaKind::Video: return "video";
    }
    return "unknown";
}

/// Reliability of a data channel (W3C RTCDataChannelInit). -1: unlimited.
struct DataChannelOptions {
    bool ordered = true;
    int32_t max_retransmits = -1;
    int32_t max_packet_lifetime_ms = -1;

    rmw_data_channel_options_t to_c() const noexcept {
        rmw_data_channel_options_t o = rmw_data_channel_options_default();
        o.ordered = ordered;
        o.max_retransmits = max_retransmits;
        o.max_packet_lifetime_ms = max_packet_lifetime_ms;
        return o;
    }
};

/// A data channel handle: a plain value, owned by its transport. Valid until its close event
/// has been delivered or its transport is freed; afterwards calls throw RMW_ERR_INVALID_HANDLE.
class DataChannel {
public:
    DataChannel() noexcept = default;
    explicit DataChannel(rmw_data_channel_t handle) noexcept : handle_(handle) {}

    rmw_data_channel_t handle() const noexcept { return handle_; }
    explicit operator bool() const noexcept { return handle_ != 0; }
    friend bool operator==(const DataChannel &a, const DataChannel &b) noexcept { return a.handle_ == b.handle_; }
    friend bool operator!=(const DataChannel &a, const DataChannel &b) noexcept { return a.handle_ != b.handle_; }

    /// Sends one message (at most RMW_MAX_MESSAGE_SIZE bytes); RMW_ERR_NOT_CONNECTED before open.
    void send(const void *data, size_t len, bool binary) const {
        detail::check(rmw_data_channel_send(handle_, static_cast<const uint8_t *>(data), len, binary),
                      "rmw_data_channel_send");
    }
    /// Sends text (UTF-8).
    void send(std::string_view text) const { send(text.data(), text.size(), false); }
    /// Sends binary data.
    void send(const std::vector<uint8_t> &bytes) const { send(bytes.data(), bytes.size(), true); }

    uint64_t buffered_amount() const {
        uint64_t out = 0;
        detail::check(rmw_data_channel_buffered_amount(handle_, &out), "rmw_data_channel_buffered_amount");
        return out;
    }
    void set_buffered_amount_low_threshold(uint64_t threshold) const {
        detail::check(rmw_data_channel_set_buffered_amount_low_threshold(handle_, threshold),
                      "rmw_data_channel_set_buffered_amount_low_threshold");
    }
    std::string label() const {
        const rmw_data_channel_t h = handle_;
        return detail::query_string([h](char *buf, size_t *len) { return rmw_data_channel_label(h, buf, len); },
                                    "rmw_data_channel_label");
    }
    /// Closes the channel on both sides; a DataChannelClose event follows.
    void close() const { detail::check(rmw_data_channel_close(handle_), "rmw_data_channel_close"); }

private:
    rmw_data_channel_t handle_ = 0;
};

/// An owned copy of one event: stays valid after the callback returns / the C event is released.
/// Fields that do not apply to the kind are empty / 0.
struct Event {
    EventKind kind = EventKind::None;
    std::string peer_id;
    PeerState peer_state = PeerState::New;
    DataChannel channel;
    std::string label;
    std::vector<uint8_t> data;
    bool binary = false;
    std::string message;
    /// TrackAdded / TrackRemoved: the remote track, its kind, and (TrackAdded) its codec
    /// ("opus", "vp8", "vp9"), RTP clock rate (48000, 90000) and channels as negotiated.
    std::string track_id;
    MediaKind media_kind = MediaKind::None;
    std::string codec;
    uint32_t clock_rate = 0;
    uint32_t channels = 0;

    /// The payload as a string (text messages are UTF-8).
    std::string text() const { return std::string(data.begin(), data.end()); }

    static Event from_c(const rmw_event_t &e) {
        Event ev;
        ev.kind = static_cast<EventKind>(e.kind);
        if (e.peer_id != nullptr)
            ev.peer_id = e.peer_id;
        ev.peer_state = static_cast<PeerState>(e.peer_state);
        ev.channel = DataChannel(e.channel);
        if (e.label != nullptr)
            ev.label = e.label;
        if (e.data != nullptr && e.len > 0)
            ev.data.assign(e.data, e.data + e.len);
        ev.binary = e.binary;
        if (e.message != nullptr)
            ev.message = e.message;
        if (e.track_id != nullptr)
            ev.track_id = e.track_id;
        ev.media_kind = static_cast<MediaKind>(e.media_kind);
        if (e.codec != nullptr)
            ev.codec = e.codec;
        ev.clock_rate = e.clock_rate;
        ev.channels = e.channels;
        return ev;
    }
};

/* ---- audio ------------------------------------------------------------------------------- */

namespace detail {

/// The element type of a contiguous container (std::data).
template <class Samples>
using pcm_element_t = std::remove_cv_t<std::remove_pointer_t<decltype(std::data(std::declval<const Samples &>()))>>;

/// True for containers AudioTrack::send() takes whole: contiguous float or int16_t samples.
template <class Samples, class = void>
struct is_pcm : std::false_type {};
template <class Samples>
struct is_pcm<Samples, std::void_t<pcm_element_t<Samples>>>
    : std::bool_constant<std::is_same_v<pcm_element_t<Samples>, float> || std::is_same_v<pcm_element_t<Samples>, int16_t>> {};

} // namespace detail

/// How an outgoing audio track encodes: the C struct, starting from the library's defaults
/// (rmw_audio_track_config_default(): 48 kHz mono input, 20 ms Opus frames, 32 kbit/s, FEC on,
/// VoIP mode, 200 ms of queue). Set the fields you need: `cfg.sample_rate = 44100;`.
struct AudioTrackConfig : rmw_audio_track_config_t {
    AudioTrackConfig() noexcept : rmw_audio_track_config_t(rmw_audio_track_config_default()) {}
};

/// Whom an outgoing track sends to: Target::peer("bob"), Target::session("room"),
/// Target::all() (every peer, later ones included) or Target::none().
struct Target {
    enum class Kind : int32_t {
        None = RMW_TARGET_NONE,
        Peer = RMW_TARGET_PEER,
        Session = RMW_TARGET_SESSION,
        All = RMW_TARGET_ALL,
    };
    Kind kind = Kind::None;
    std::string id{}; ///< the peer or session (Peer, Session)

    static Target none() { return Target{}; }
    static Target peer(std::string_view peer_id) { return Target{Kind::Peer, std::string(peer_id)}; }
    static Target session(std::string_view session_id) { return Target{Kind::Session, std::string(session_id)}; }
    static Target all() { return Target{Kind::All, std::string()}; }
};

/// An outgoing Opus track of a transport (Transport::add_audio_track). Move-only; the
/// destructor frees the track (PCM already queued is still sent). Freeing the Transport first
/// is fine: the track then becomes invalid and its destructor does nothing.
///
/// send() copies the PCM into the track's queue and returns at once, so it can be called from
/// an audio device callback; any chunk size up to max_queue_ms works. When the encoder is more
/// than the track's max_queue_ms behind, send() throws rmw::Error(RMW_ERR_QUEUE_FULL) and
/// try_send() returns false (nothing of that call was taken: retry later or drop it).
class AudioTrack {
public:
    AudioTrack() noexcept = default;
    AudioTrack(const AudioTrack &) = delete;
    AudioTrack &operator=(const AudioTrack &) = delete;
    AudioTrack(AudioTrack &&o) noexcept
        : handle_(std::exchange(o.handle_, 0)), channels_(std::exchange(o.channels_, 0u)) {}
    AudioTrack &operator=(AudioTrack &&o) noexcept {
        if (this != &o) {
            reset();
            handle_ = std::exchange(o.handle_, 0);
            channels_ = std::exchange(o.channels_, 0u);
        }
        return *this;
    }
    ~AudioTrack() { reset(); }

    rmw_audio_track_t handle() const noexcept { return handle_; }
    explicit operator bool() const noexcept { return handle_ != 0; }
    /// Channels of the PCM this track takes (its config's `channels`).
    uint32_t channels() const noexcept { return channels_; }

    /// Queues `samples_per_channel` frames of interleaved PCM (the track's rate and channels).
    void send(const float *pcm, size_t samples_per_channel) const {
        detail::check(rmw_audio_track_send_f32(handle_, pcm, samples_per_channel), "rmw_audio_track_send_f32");
    }
    void send(const int16_t *pcm, size_t samples_per_channel) const {
        detail::check(rmw_audio_track_send_s16(handle_, pcm, samples_per_channel), "rmw_audio_track_send_s16");
    }
    /// Interleaved PCM from a contiguous container of float or int16_t (std::vector,
    /// std::array, a C array): its size must be a multiple of channels().
    template <class Samples, std::enable_if_t<detail::is_pcm<Samples>::value, int> = 0>
    void send(const Samples &interleaved) const {
        send(std::data(interleaved), frames_in(std::size(interleaved)));
    }

    /// As send(), but returns false instead of throwing when the queue is full.
    bool try_send(const float *pcm, size_t samples_per_channel) const {
        return accepted(rmw_audio_track_send_f32(handle_, pcm, samples_per_channel), "rmw_audio_track_send_f32");
    }
    bool try_send(const int16_t *pcm, size_t samples_per_channel) const {
        return accepted(rmw_audio_track_send_s16(handle_, pcm, samples_per_channel), "rmw_audio_track_send_s16");
    }
    template <class Samples, std::enable_if_t<detail::is_pcm<Samples>::value, int> = 0>
    bool try_send(const Samples &interleaved) const {
        return try_send(std::data(interleaved), frames_in(std::size(interleaved)));
    }

    /// Re-aims the track.
    void set_target(const Target &target) const {
        const std::string id = detail::c_string(target.id, "rmw_audio_track_set_target");
        detail::check(rmw_audio_track_set_target(handle_, static_cast<int32_t>(target.kind), detail::opt_c_str(id)),
                      "rmw_audio_track_set_target");
    }
    /// The configuration the track was created with (defaults filled in).
    AudioTrackConfig config() const {
        AudioTrackConfig c;
        detail::check(rmw_audio_track_get_config(handle_, &c), "rmw_audio_track_get_config");
        return c;
    }
    /// Counters as JSON: samples_in, queue_full, frames_encoded, frames_dtx, packets_sent,
    /// bytes_sent, peers, peers_busy.
    std::string stats_json() const {
        const rmw_audio_track_t h = handle_;
        return detail::query_string([h](char *buf, size_t *len) { return rmw_audio_track_stats_json(h, buf, len); },
                                    "rmw_audio_track_stats_json");
    }
    /// Frees the track now, reporting errors (the destructor ignores them). No-op when empty.
    void close() {
        channels_ = 0;
        detail::check(rmw_audio_track_free(std::exchange(handle_, 0)), "rmw_audio_track_free");
    }

private:
    friend class Transport;
    AudioTrack(rmw_audio_track_t handle, uint32_t channels) noexcept : handle_(handle), channels_(channels) {}

    size_t frames_in(size_t samples) const {
        if (channels_ > 1 && samples % channels_ != 0)
            throw Error(RMW_ERR_INVALID_ARGUMENT, "rmw::AudioTrack::send: " + std::to_string(samples) +
                                                      " samples is not a whole number of " +
                                                      std::to_string(channels_) + "-channel frames [RMW_ERR_INVALID_ARGUMENT]");
        return channels_ > 1 ? samples / channels_ : samples;
    }
    static bool accepted(rmw_status_t st, const char *function) {
        if (st == RMW_ERR_QUEUE_FULL)
            return false;
        detail::check(st, function);
        return true;
    }
    void reset() noexcept {
        channels_ = 0;
        if (handle_ != 0)
            (void)rmw_audio_track_free(std::exchange(handle_, 0));
    }

    rmw_audio_track_t handle_ = 0;
    uint32_t channels_ = 0;
};

/// An owned copy of one block of decoded audio from a remote track (Transport::poll_audio, or
/// AudioFrame::from_c inside an audio callback). The samples are in `f32` or `s16` according
/// to `format` (the transport's audio_output_format); the other vector is empty.
struct AudioFrame {
    std::string peer_id;
    std::string track_id;
    uint32_t sample_rate = 0;
    uint32_t channels = 0;
    SampleFormat format = SampleFormat::F32;
    std::vector<float> f32;   ///< interleaved, when format is F32
    std::vector<int16_t> s16; ///< interleaved, when format is S16
    size_t samples_per_channel = 0;
    uint32_t rtp_timestamp = 0; ///< RTP timestamp (48 kHz clock) of the first sample
    uint64_t arrival_us = 0;    ///< arrival, microseconds of CLOCK_MONOTONIC (rmw::clock_us())
    uint8_t level = 127;        ///< RFC 6464: -dBov, 0 full scale, 127 silence
    bool concealed = false;     ///< lost, and concealed or rebuilt from FEC

    /// Channel `c` as float in [-1, 1] (s16 scaled by 1/32768).
    std::vector<float> channel(size_t c) const {
        std::vector<float> out;
        if (c >= channels)
            return out;
        out.reserve(samples_per_channel);
        for (size_t i = 0; i < samples_per_channel; ++i) {
            const size_t k = i * channels + c;
            out.push_back(format == SampleFormat::F32 ? f32[k] : static_cast<float>(s16[k]) / 32768.0f);
        }
        return out;
    }

    static AudioFrame from_c(const rmw_audio_frame_t &f) {
        AudioFrame a;
        if (f.peer_id != nullptr)
            a.peer_id = f.peer_id;
        if (f.track_id != nullptr)
            a.track_id = f.track_id;
        a.sample_rate = f.sample_rate;
        a.channels = f.channels;
        a.format = static_cast<SampleFormat>(f.format);
        a.samples_per_channel = f.samples_per_channel;
        a.rtp_timestamp = f.rtp_timestamp;
        a.arrival_us = f.arrival_us;
        a.level = f.level;
        a.concealed = f.concealed;
        const size_t n = f.samples_per_channel * f.channels;
        if (f.data != nullptr && n > 0) {
            if (a.format == SampleFormat::F32) {
                const float *p = static_cast<const float *>(f.data);
                a.f32.assign(p, p + n);
            } else {
                const int16_t *p = static_cast<const int16_t *>(f.data);
                a.s16.assign(p, p + n);
            }
        }
        return a;
    }
};

/// Microseconds of CLOCK_MONOTONIC: the clock of AudioFrame::arrival_us and VideoFrame::arrival_us.
inline uint64_t clock_us() noexcept { return rmw_clock_us(); }

/* ---- video ------------------------------------------------------------------------------- */

/// Pixel layout of frames you send (RawVideoFrame::format).
enum class PixelFormat : int32_t {
    I420 = RMW_PIXEL_I420, ///< planes Y, U, V; U and V are (width + 1) / 2 x (height + 1) / 2
    NV12 = RMW_PIXEL_NV12, ///< planes Y, interleaved UV
    RGBA = RMW_PIXEL_RGBA, ///< one plane, bytes R, G, B, A in memory
    BGRA = RMW_PIXEL_BGRA, ///< one plane, bytes B, G, R, A in memory
};

/// Layout of received frames (`video_output_format` of the transport).
enum class VideoFormat : int {
    I420 = RMW_VIDEO_I420, ///< planes Y, U, V (the default)
    RGBA = RMW_VIDEO_RGBA, ///< one plane, bytes R, G, B, A
};

/// How an outgoing video track encodes: the C struct, starting from the library's defaults
/// (rmw_video_track_config_default(): 1500 kbit/s, 30 fps, a keyframe at least every 3000
/// frames, the codec's real-time speed, one encoder thread). Set the fields you need:
/// `cfg.bitrate_kbps = 800;`.
struct VideoTrackConfig : rmw_video_track_config_t {
    VideoTrackConfig() noexcept : rmw_video_track_config_t(rmw_video_track_config_default()) {}
};

/// A frame to send: the C struct, pointing at your pixels (not owned; VideoTrack::send copies
/// them before it returns). The factories fill in every field, each plane's size being
/// `stride * rows`; a stride of 0 means rows packed tightly.
struct RawVideoFrame : rmw_raw_video_frame_t {
    /// All zero (no format, no planes).
    RawVideoFrame() noexcept : rmw_raw_video_frame_t() {}

    /// I420 from three planes.
    static RawVideoFrame i420(const uint8_t *y, const uint8_t *u, const uint8_t *v, uint32_t width, uint32_t height,
                              uint32_t stride_y = 0, uint32_t stride_u = 0, uint32_t stride_v = 0) noexcept {
        RawVideoFrame f;
        f.set(PixelFormat::I420, width, height);
        f.plane(0, y, stride_y != 0 ? stride_y : width, height);
        f.plane(1, u, stride_u != 0 ? stride_u : half(width), half(height));
        f.plane(2, v, stride_v != 0 ? stride_v : half(width), half(height));
        return f;
    }
    /// Tight I420 in one buffer: Y, then U, then V. It spans i420_size(width, height) bytes.
    static RawVideoFrame i420(const uint8_t *data, uint32_t width, uint32_t height) noexcept {
        if (data == nullptr) /* NULL planes: the library refuses the frame */
            return i420(nullptr, nullptr, nullptr, width, height);
        const size_t y = static_cast<size_t>(width) * height, c = static_cast<size_t>(half(width)) * half(height);
        return i420(data, data + y, data + y + c, width, height);
    }
    /// Bytes of a tight I420 frame of this size.
    static size_t i420_size(uint32_t width, uint32_t height) noexcept {
        return static_cast<size_t>(width) * height + 2 * static_cast<size_t>(half(width)) * half(height);
    }
    /// NV12 from a Y plane and an interleaved UV plane (rows of 2 * ((width + 1) / 2) bytes).
    static RawVideoFrame nv12(const uint8_t *y, const uint8_t *uv, uint32_t width, uint32_t height,
                              uint32_t stride_y = 0, uint32_t stride_uv = 0) noexcept {
        RawVideoFrame f;
        f.set(PixelFormat::NV12, width, height);
        f.plane(0, y, stride_y != 0 ? stride_y : width, height);
        f.plane(1, uv, stride_uv != 0 ? stride_uv : 2 * half(width), half(height));
        return f;
    }
    /// One plane of R, G, B, A bytes; `stride` in bytes (0: 4 * width).
    static RawVideoFrame rgba(const void *pixels, uint32_t width, uint32_t height, uint32_t stride = 0) noexcept {
        return packed(PixelFormat::RGBA, pixels, width, height, stride);
    }
    /// One plane of B, G, R, A bytes; `stride` in bytes (0: 4 * width).
    static RawVideoFrame bgra(const void *pixels, uint32_t width, uint32_t height, uint32_t stride = 0) noexcept {
        return packed(PixelFormat::BGRA, pixels, width, height, stride);
    }

private:
    static uint32_t half(uint32_t n) noexcept { return n / 2 + (n & 1u); }
    void set(PixelFormat f, uint32_t w, uint32_t h) noexcept {
        format = static_cast<int32_t>(f);
        width = w;
        height = h;
    }
    void plane(size_t i, const uint8_t *p, uint32_t stride, uint32_t rows) noexcept {
        planes[i] = p;
        strides[i] = stride;
        sizes[i] = static_cast<size_t>(stride) * rows;
    }
    static RawVideoFrame packed(PixelFormat fmt, const void *pixels, uint32_t w, uint32_t h, uint32_t stride) noexcept {
        RawVideoFrame f;
        f.set(fmt, w, h);
        f.plane(0, static_cast<const uint8_t *>(pixels), stride != 0 ? stride : 4 * w, h);
        return f;
    }
};

namespace detail {

/// True for contiguous containers of plain values (std::vector<uint8_t>, std::vector<uint32_t>,
/// std::array, C arrays): the pixel buffers VideoTrack's send_* take whole, size-checked.
template <class Pixels, class = void>
struct is_pixel_buffer : std::false_type {};
template <class Pixels>
struct is_pixel_buffer<Pixels, std::void_t<pcm_element_t<Pixels>, decltype(std::size(std::declval<const Pixels &>()))>>
    : std::bool_constant<std::is_trivially_copyable_v<pcm_element_t<Pixels>> && !std::is_pointer_v<pcm_element_t<Pixels>> &&
                         !std::is_void_v<pcm_element_t<Pixels>>> {};

template <class Pixels>
size_t byte_size(const Pixels &p) noexcept {
    return std::size(p) * sizeof(pcm_element_t<Pixels>);
}

inline void require_bytes(size_t have, size_t need, const char *what) {
    if (have < need)
        throw Error(RMW_ERR_INVALID_ARGUMENT, std::string(what) + ": the buffer holds " + std::to_string(have) +
                                                  " bytes, the frame needs " + std::to_string(need) +
                                                  " [RMW_ERR_INVALID_ARGUMENT]");
}

} // namespace detail

/// An outgoing VP8/VP9 track of a transport (Transport::add_video_track). Move-only; the
/// destructor frees the track (a frame not yet encoded is still sent). Freeing the Transport
/// first is fine: the track then becomes invalid and its destructor does nothing.
///
/// send() copies the frame and returns without waiting for the encoder, which runs on a thread
/// of its own: if it has not taken the previous frame yet, that one is dropped (the newest frame
/// wins; counted as frames_dropped). The size may change from one frame to the next. Bad frames
/// (width 0, planes smaller than stride * rows, ...) throw rmw::Error(RMW_ERR_INVALID_ARGUMENT).
class VideoTrack {
public:
    VideoTrack() noexcept = default;
    VideoTrack(const VideoTrack &) = delete;
    VideoTrack &operator=(const VideoTrack &) = delete;
    VideoTrack(VideoTrack &&o) noexcept : handle_(std::exchange(o.handle_, 0)) {}
    VideoTrack &operator=(VideoTrack &&o) noexcept {
        if (this != &o) {
            reset();
            handle_ = std::exchange(o.handle_, 0);
        }
        return *this;
    }
    ~VideoTrack() { reset(); }

    rmw_video_track_t handle() const noexcept { return handle_; }
    explicit operator bool() const noexcept { return handle_ != 0; }

    /// Sends a frame described by RawVideoFrame (or the C struct filled in by hand).
    void send(const RawVideoFrame &frame) const { send(static_cast<const rmw_raw_video_frame_t &>(frame)); }
    void send(const rmw_raw_video_frame_t &frame) const {
        detail::check(rmw_video_track_send(handle_, &frame), "rmw_video_track_send");
    }

    /// I420 from three planes (strides 0: tight rows).
    void send_i420(const uint8_t *y, const uint8_t *u, const uint8_t *v, uint32_t width, uint32_t height,
                   uint32_t stride_y = 0, uint32_t stride_u = 0, uint32_t stride_v = 0) const {
        send(RawVideoFrame::i420(y, u, v, width, height, stride_y, stride_u, stride_v));
    }
    /// Tight I420 in one buffer (Y, U, V back to back: RawVideoFrame::i420_size bytes).
    void send_i420(const uint8_t *data, uint32_t width, uint32_t height) const {
        send(RawVideoFrame::i420(data, width, height));
    }
    /// Tight I420 from a container (std::vector<uint8_t>, ...): its size is checked first.
    template <class Pixels, std::enable_if_t<detail::is_pixel_buffer<Pixels>::value, int> = 0>
    void send_i420(const Pixels &tight, uint32_t width, uint32_t height) const {
        detail::require_bytes(detail::byte_size(tight), RawVideoFrame::i420_size(width, height), "rmw::VideoTrack::send_i420");
        send_i420(reinterpret_cast<const uint8_t *>(std::data(tight)), width, height);
    }

    /// R, G, B, A bytes, `stride` bytes a row (0: 4 * width), e.g. a texture read back from a GPU.
    void send_rgba(const void *pixels, uint32_t width, uint32_t height, uint32_t stride = 0) const {
        send(RawVideoFrame::rgba(pixels, width, height, stride));
    }
    /// As send_rgba(), from a container: its size is checked first.
    template <class Pixels, std::enable_if_t<detail::is_pixel_buffer<Pixels>::value, int> = 0>
    void send_rgba(const Pixels &pixels, uint32_t width, uint32_t height, uint32_t stride = 0) const {
        const RawVideoFrame f = RawVideoFrame::rgba(std::data(pixels), width, height, stride);
        detail::require_bytes(detail::byte_size(pixels), f.sizes[0], "rmw::VideoTrack::send_rgba");
        send(f);
    }
    /// B, G, R, A bytes, `stride` bytes a row (0: 4 * width).
    void send_bgra(const void *pixels, uint32_t width, uint32_t height, uint32_t stride = 0) const {
        send(RawVideoFrame::bgra(pixels, width, height, stride));
    }

    /// Re-aims the track.
    void set_target(const Target &target) const {
        const std::string id = detail::c_string(target.id, "rmw_video_track_set_target");
        detail::check(rmw_video_track_set_target(handle_, static_cast<int32_t>(target.kind), detail::opt_c_str(id)),
                      "rmw_video_track_set_target");
    }
    /// The target bitrate (30..=50000 kbit/s) from the next frame on.
    void set_bitrate(uint32_t kbps) const {
        detail::check(rmw_video_track_set_bitrate(handle_, kbps), "rmw_video_track_set_bitrate");
    }
    /// The next frame sent is encoded as a keyframe.
    void request_keyframe() const {
        detail::check(rmw_video_track_request_keyframe(handle_), "rmw_video_track_request_keyframe");
    }
    /// Counters as JSON: frames_in, frames_dropped, frames_encoded, keyframes_encoded,
    /// keyframes_requested, packets_sent, bytes_sent, target_bitrate_kbps, width, height, peers.
    std::string stats_json() const {
        const rmw_video_track_t h = handle_;
        return detail::query_string([h](char *buf, size_t *len) { return rmw_video_track_stats_json(h, buf, len); },
                                    "rmw_video_track_stats_json");
    }
    /// Frees the track now, reporting errors (the destructor ignores them). No-op when empty.
    void close() { detail::check(rmw_video_track_free(std::exchange(handle_, 0)), "rmw_video_track_free"); }

private:
    friend class Transport;
    explicit VideoTrack(rmw_video_track_t handle) noexcept : handle_(handle) {}
    void reset() noexcept {
        if (handle_ != 0)
            (void)rmw_video_track_free(std::exchange(handle_, 0));
    }

    rmw_video_track_t handle_ = 0;
};

/// An owned copy of one decoded frame from a remote track (Transport::poll_video, or
/// VideoFrame::from_c inside a video callback). The planes are copied row by row and packed:
/// I420 has Y (width x height), U and V ((width + 1) / 2 x (height + 1) / 2); RGBA has only
/// planes[0], 4 * width bytes a row. strides[i] is the row size of plane i.
struct VideoFrame {
    std::string peer_id;
    std::string track_id;
    std::string codec; ///< "vp8" or "vp9"
    uint32_t width = 0;
    uint32_t height = 0;
    VideoFormat format = VideoFormat::I420;
    std::array<std::vector<uint8_t>, 3> planes{};
    std::array<uint32_t, 3> strides{};
    uint32_t rtp_timestamp = 0; ///< RTP timestamp (90 kHz clock)
    uint64_t arrival_us = 0;    ///< arrival of its last packet, microseconds of CLOCK_MONOTONIC (rmw::clock_us())
    bool keyframe = false;

    /// Row `y` of plane `p` (nullptr outside the frame).
    const uint8_t *row(size_t p, uint32_t y) const noexcept {
        if (p >= planes.size() || static_cast<size_t>(y) * strides[p] >= planes[p].size())
            return nullptr;
        return planes[p].data() + static_cast<size_t>(y) * strides[p];
    }

    static VideoFrame from_c(const rmw_video_frame_t &f) {
        VideoFrame v;
        if (f.peer_id != nullptr)
            v.peer_id = f.peer_id;
        if (f.track_id != nullptr)
            v.track_id = f.track_id;
        if (f.codec != nullptr)
            v.codec = f.codec;
        v.width = f.width;
        v.height = f.height;
        v.format = static_cast<VideoFormat>(f.format);
        v.rtp_timestamp = f.rtp_timestamp;
        v.arrival_us = f.arrival_us;
        v.keyframe = f.keyframe;
        const uint32_t cw = f.width / 2 + (f.width & 1u), ch = f.height / 2 + (f.height & 1u);
        if (v.format == VideoFormat::RGBA) {
            v.copy_plane(0, f, 4 * f.width, f.height);
        } else {
            v.copy_plane(0, f, f.width, f.height);
            v.copy_plane(1, f, cw, ch);
            v.copy_plane(2, f, cw, ch);
        }
        return v;
    }

private:
    void copy_plane(size_t p, const rmw_video_frame_t &f, uint32_t row_bytes, uint32_t rows) {
        if (f.planes[p] == nullptr || f.strides[p] < row_bytes)
            return;
        planes[p].resize(static_cast<size_t>(row_bytes) * rows);
        for (uint32_t r = 0; r < rows; ++r)
            std::memcpy(planes[p].data() + static_cast<size_t>(r) * row_bytes,
                        f.planes[p] + static_cast<size_t>(r) * f.strides[p], row_bytes);
        strides[p] = row_bytes;
    }
};

/* ---- signaling server -------------------------------------------------------------------- */

/// The bundled signaling server, run in-process. Move-only; the destructor stops it.
class SignalingServer {
public:
    SignalingServer() noexcept = default;
    /// Starts on `bind_addr` ("127.0.0.1:0" picks a free port); returns once bound.
    explicit SignalingServer(std::string_view bind_addr, size_t max_message_bytes = 0) {
        const std::string addr = detail::c_string(bind_addr, "rmw_signaling_server_start");
        detail::check(rmw_signaling_server_start(addr.c_str(), max_message_bytes, &handle_),
                      "rmw_signaling_server_start");
    }
    static SignalingServer start(std::string_view bind_addr = "127.0.0.1:0", size_t max_message_bytes = 0) {
        return SignalingServer(bind_addr, max_message_bytes);
    }

    SignalingServer(const SignalingServer &) = delete;
    SignalingServer &operator=(const SignalingServer &) = delete;
    SignalingServer(SignalingServer &&o) noexcept : handle_(std::exchange(o.handle_, 0)) {}
    SignalingServer &operator=(SignalingServer &&o) noexcept {
        if (this != &o) {
            reset();
            handle_ = std::exchange(o.handle_, 0);
        }
        return *this;
    }
    ~SignalingServer() { reset(); }

    rmw_signaling_server_t handle() const noexcept { return handle_; }
    explicit operator bool() const noexcept { return handle_ != 0; }

    uint16_t port() const {
        uint16_t out = 0;
        detail::check(rmw_signaling_server_port(handle_, &out), "rmw_signaling_server_port");
        return out;
    }
    /// "ws://host:port".
    std::string url() const {
        const rmw_signaling_server_t h = handle_;
        return detail::query_string([h](char *buf, size_t *len) { return rmw_signaling_server_url(h, buf, len); },
                                    "rmw_signaling_server_url");
    }
    /// Stops the server now, reporting errors (the destructor ignores them). No-op when empty.
    void stop() {
        detail::check(rmw_signaling_server_stop(std::exchange(handle_, 0)), "rmw_signaling_server_stop");
    }

private:
    void reset() noexcept { (void)rmw_signaling_server_stop(std::exchange(handle_, 0)); }

    rmw_signaling_server_t handle_ = 0;
};

/* ---- transport --------------------------------------------------------------------------- */

/// A few common configuration fields; to_json() renders what rmw_transport_new() takes.
/// Unset fields keep the library's defaults; `extra_json` (e.g. "\"max_peers\":4") is
/// appended verbatim for the others (see docs/ARCHITECTURE.md).
struct Config {
    std::string signaling_url{};           // default ws://127.0.0.1:8080
    std::string peer_id{};                 // default: random
    std::string ice_policy{};              // "all" | "loopback" | "relay"
    std::vector<std::string> stun_servers{};
    std::optional<uint32_t> max_peers{};
    std::optional<bool> auto_answer{};
    std::optional<uint32_t> event_queue_capacity{};
    std::string extra_json{};
    /* Audio. Received audio is decoded to audio_output_sample_rate (default 48000),
     * audio_output_channels (2) and audio_output_format ("f32" | "s16"). */
    std::optional<bool> enable_audio{};    // default true
    std::optional<uint32_t> audio_output_sample_rate{};
    std::optional<uint32_t> audio_output_channels{};
    std::string audio_output_format{};
    /* Video. Every connection carries a two-way video track; video_codec ("vp8" | "vp9") is
     * offered first and used when the peer accepts it. Received frames come as
     * video_output_format ("i420" | "rgba"); at most video_queue_capacity (default 8) wait to be
     * polled (the oldest is dropped); a missing packet is waited for video_max_delay_ms (200). */
    std::optional<bool> enable_video{};    // default true
    std::string video_codec{};
    std::string video_output_format{};
    std::optional<uint32_t> video_queue_capacity{};
    std::optional<uint32_t> video_max_delay_ms{};
    std::optional<uint32_t> simulate_loss_percent{}; // testing: drop this % of incoming RTP (0..=50)

    std::string to_json() const {
        std::string j = "{";
        auto key = [&j](const char *k) {
            if (j.size() > 1)
                j += ',';
            detail::append_json_string(j, k);
            j += ':';
        };
        if (!signaling_url.empty()) {
            key("signaling_url");
            detail::append_json_string(j, signaling_url);
        }
        if (!peer_id.empty()) {
            key("peer_id");
            detail::append_json_string(j, peer_id);
        }
        if (!ice_policy.empty()) {
            key("ice_policy");
            detail::append_json_string(j, ice_policy);
        }
        if (!stun_servers.empty()) {
            key("stun_servers");
            j += '[';
            for (size_t i = 0; i < stun_servers.size(); ++i) {
                if (i > 0)
                    j += ',';
                detail::append_json_string(j, stun_servers[i]);
            }
            j += ']';
        }
        if (max_peers) {
            key("max_peers");
            j += std::to_string(*max_peers);
        }
        if (auto_answer) {
            key("auto_answer");
            j += *auto_answer ? "true" : "false";
        }
        if (event_queue_capacity) {
            key("event_queue_capacity");
            j += std::to_string(*event_queue_capacity);
        }
        if (enable_audio) {
            key("enable_audio");
            j += *enable_audio ? "true" : "false";
        }
        if (audio_output_sample_rate) {
            key("audio_output_sample_rate");
            j += std::to_string(*audio_output_sample_rate);
        }
        if (audio_output_channels) {
            key("audio_output_channels");
            j += std::to_string(*audio_output_channels);
        }
        if (!audio_output_format.empty()) {
            key("audio_output_format");
            detail::append_json_string(j, audio_output_format);
        }
        if (enable_video) {
            key("enable_video");
            j += *enable_video ? "true" : "false";
        }
        if (!video_codec.empty()) {
            key("video_codec");
            detail::append_json_string(j, video_codec);
        }
        if (!video_output_format.empty()) {
            key("video_output_format");
            detail::append_json_string(j, video_output_format);
        }
        if (video_queue_capacity) {
            key("video_queue_capacity");
            j += std::to_string(*video_queue_capacity);
        }
        if (video_max_delay_ms) {
            key("video_max_delay_ms");
            j += std::to_string(*video_max_delay_ms);
        }
        if (simulate_loss_percent) {
            key("simulate_loss_percent");
            j += std::to_string(*simulate_loss_percent);
        }
        if (!extra_json.empty()) {
            if (j.size() > 1)
                j += ',';
            j += extra_json;
        }
        j += '}';
        return j;
    }
};

/// One identity on a signaling server and its peer connections. Move-only; the destructor
/// frees the transport (closing its peers, channels, audio and video tracks) and then the
/// callbacks.
class Transport {
public:
    using Callback = std::function<void(const Event &)>;
    /// Receives the C frame itself: valid until the callback returns (copy what you keep,
    /// e.g. with AudioFrame::from_c).
    using AudioCallback = std::function<void(const rmw_audio_frame_t &)>;
    /// Receives the C frame itself: valid until the callback returns (copy what you keep,
    /// e.g. with VideoFrame::from_c).
    using VideoCallback = std::function<void(const rmw_video_frame_t &)>;

    /// No transport (like a moved-from one).
    Transport() noexcept = default;
    /// From a JSON configuration ("" for the defaults); connecting to signaling starts now.
    explicit Transport(std::string_view config_json) {
        const std::string cfg = detail::c_string(config_json, "rmw_transport_new");
        detail::check(rmw_transport_new(cfg.c_str(), &handle_), "rmw_transport_new");
    }
    explicit Transport(const Config &config) : Transport(std::string_view(config.to_json())) {}

    Transport(const Transport &) = delete;
    Transport &operator=(const Transport &) = delete;
    Transport(Transport &&o) noexcept
        : handle_(std::exchange(o.handle_, 0)), callbacks_(std::move(o.callbacks_)),
          audio_callbacks_(std::move(o.audio_callbacks_)), video_callbacks_(std::move(o.video_callbacks_)) {
        o.callbacks_.clear();
        o.audio_callbacks_.clear();
        o.video_callbacks_.clear();
    }
    Transport &operator=(Transport &&o) noexcept {
        if (this != &o) {
            reset();
            handle_ = std::exchange(o.handle_, 0);
            callbacks_ = std::move(o.callbacks_);
            audio_callbacks_ = std::move(o.audio_callbacks_);
            video_callbacks_ = std::move(o.video_callbacks_);
            o.callbacks_.clear();
            o.audio_callbacks_.clear();
            o.video_callbacks_.clear();
        }
        return *this;
    }
    ~Transport() { reset(); }

    rmw_transport_t handle() const noexcept { return handle_; }
    explicit operator bool() const noexcept { return handle_ != 0; }

    /// Frees the transport now, reporting errors (the destructor ignores them).
    void close() {
        const rmw_transport_t h = std::exchange(handle_, 0);
        const rmw_status_t st = rmw_transport_free(h);
        release_callbacks();
        detail::check(st, "rmw_transport_free");
    }

    /* -- identity and peers -- */

    std::string peer_id() const {
        const rmw_transport_t h = handle_;
        return detail::query_string([h](char *buf, size_t *len) { return rmw_transport_peer_id(h, buf, len); },
                                    "rmw_transport_peer_id");
    }
    /// Offers a connection (RMW_ERR_NOT_FOUND: unknown to the signaling server).
    void connect_peer(std::string_view peer) const {
        const std::string p = detail::c_string(peer, "rmw_transport_connect_peer");
        detail::check(rmw_transport_connect_peer(handle_, p.c_str()), "rmw_transport_connect_peer");
    }
    void accept_peer(std::string_view peer) const {
        const std::string p = detail::c_string(peer, "rmw_transport_accept_peer");
        detail::check(rmw_transport_accept_peer(handle_, p.c_str()), "rmw_transport_accept_peer");
    }
    void disconnect_peer(std::string_view peer) const {
        const std::string p = detail::c_string(peer, "rmw_transport_disconnect_peer");
        detail::check(rmw_transport_disconnect_peer(handle_, p.c_str()), "rmw_transport_disconnect_peer");
    }
    PeerState peer_state(std::string_view peer) const {
        const std::string p = detail::c_string(peer, "rmw_transport_peer_state");
        rmw_peer_state_t out = RMW_PEER_NEW;
        detail::check(rmw_transport_peer_state(handle_, p.c_str(), &out), "rmw_transport_peer_state");
        return static_cast<PeerState>(out);
    }
    size_t peer_count(bool connected_only = false) const {
        size_t out = 0;
        detail::check(rmw_transport_peer_count(handle_, connected_only, &out), "rmw_transport_peer_count");
        return out;
    }
    /// The peer connections as a JSON array.
    std::string list_peers(bool connected_only = false) const {
        const rmw_transport_t h = handle_;
        return detail::query_string(
            [h, connected_only](char *buf, size_t *len) { return rmw_transport_list_peers(h, connected_only, buf, len); },
            "rmw_transport_list_peers");
    }
    /// Counters as JSON.
    std::string stats_json() const {
        const rmw_transport_t h = handle_;
        return detail::query_string([h](char *buf, size_t *len) { return rmw_transport_stats_json(h, buf, len); },
                                    "rmw_transport_stats_json");
    }

    /* -- data -- */

    /// Sends on the default "data" channel of `peer`, or of every connected peer when `peer`
    /// is empty. Returns the number of peers it went to.
    size_t send_data(std::string_view peer, const void *data, size_t len, bool binary) const {
        const std::string p = detail::c_string(peer, "rmw_transport_send_data");
        size_t sent_to = 0;
        detail::check(rmw_transport_send_data(handle_, detail::opt_c_str(p), static_cast<const uint8_t *>(data), len,
                                              binary, &sent_to),
                      "rmw_transport_send_data");
        return sent_to;
    }
    /// Sends text (UTF-8).
    size_t send_data(std::string_view peer, std::string_view text) const {
        return send_data(peer, text.data(), text.size(), false);
    }
    /// Sends binary data.
    size_t send_data(std::string_view peer, const std::vector<uint8_t> &bytes) const {
        return send_data(peer, bytes.data(), bytes.size(), true);
    }

    /// A new data channel to `peer`; usable after its DataChannelOpen event.
    DataChannel create_data_channel(std::string_view peer, std::string_view label,
                                    const DataChannelOptions &options = DataChannelOptions()) const {
        const std::string p = detail::c_string(peer, "rmw_data_channel_create");
        const std::string l = detail::c_string(label, "rmw_data_channel_create");
        const rmw_data_channel_options_t o = options.to_c();
        rmw_data_channel_t out = 0;
        detail::check(rmw_data_channel_create(handle_, p.c_str(), l.c_str(), &o, &out), "rmw_data_channel_create");
        return DataChannel(out);
    }

    /* -- sessions -- */

    void create_session(std::string_view session) const {
        const std::string s = detail::c_string(session, "rmw_session_create");
        detail::check(rmw_session_create(handle_, s.c_str()), "rmw_session_create");
    }
    void remove_session(std::string_view session) const {
        const std::string s = detail::c_string(session, "rmw_session_remove");
        detail::check(rmw_session_remove(handle_, s.c_str()), "rmw_session_remove");
    }
    void add_session_peer(std::string_view session, std::string_view peer) const {
        const std::string s = detail::c_string(session, "rmw_session_add_peer");
        const std::string p = detail::c_string(peer, "rmw_session_add_peer");
        detail::check(rmw_session_add_peer(handle_, s.c_str(), p.c_str()), "rmw_session_add_peer");
    }
    void remove_session_peer(std::string_view session, std::string_view peer) const {
        const std::string s = detail::c_string(session, "rmw_session_remove_peer");
        const std::string p = detail::c_string(peer, "rmw_session_remove_peer");
        detail::check(rmw_session_remove_peer(handle_, s.c_str(), p.c_str()), "rmw_session_remove_peer");
    }
    /// One session as JSON.
    std::string session(std::string_view session_id) const {
        const std::string s = detail::c_string(session_id, "rmw_session_get");
        const rmw_transport_t h = handle_;
        return detail::query_string(
            [h, &s](char *buf, size_t *len) { return rmw_session_get(h, s.c_str(), buf, len); }, "rmw_session_get");
    }
    /// Every session as a JSON array.
    std::string list_sessions() const {
        const rmw_transport_t h = handle_;
        return detail::query_string([h](char *buf, size_t *len) { return rmw_session_list(h, buf, len); },
                                    "rmw_session_list");
    }
    /// Sends to every connected peer of the session; returns how many it went to.
    size_t send_session_data(std::string_view session, const void *data, size_t len, bool binary) const {
        const std::string s = detail::c_string(session, "rmw_session_send_data");
        size_t sent_to = 0;
        detail::check(
            rmw_session_send_data(handle_, s.c_str(), static_cast<const uint8_t *>(data), len, binary, &sent_to),
            "rmw_session_send_data");
        return sent_to;
    }
    size_t send_session_data(std::string_view session, std::string_view text) const {
        return send_session_data(session, text.data(), text.size(), false);
    }
    size_t send_session_data(std::string_view session, const std::vector<uint8_t> &bytes) const {
        return send_session_data(session, bytes.data(), bytes.size(), true);
    }

    /* -- events -- */

    /// Waits up to `timeout` (negative: until an event comes or the transport is freed) for
    /// the next event; std::nullopt when none came. Do not poll while a callback is set.
    std::optional<Event> poll(std::chrono::milliseconds timeout) const {
        struct Guard {
            rmw_event_t ev;
            ~Guard() { rmw_event_release(&ev); }
        } g;
        std::memset(&g.ev, 0, sizeof g.ev);
        const rmw_status_t st = rmw_transport_poll_event(handle_, &g.ev, detail::to_timeout_ms(timeout));
        if (st == RMW_ERR_TIMEOUT)
            return std::nullopt;
        detail::check(st, "rmw_transport_poll_event");
        return Event::from_c(g.ev);
    }

    /// Delivers every event to `callback` on the transport's event thread (events queued
    /// before come first); an empty function goes back to polling. The callback must be
    /// quick to return; exceptions escaping it are caught and reported on stderr (the C
    /// library must never see them). It may call any method of this transport, replace the
    /// callback, or destroy the Transport.
    void set_callback(Callback callback) {
        if (!callback) {
            detail::check(rmw_transport_set_event_callback(handle_, nullptr, nullptr),
                          "rmw_transport_set_event_callback");
            return;
        }
        auto box = std::make_unique<Box>();
        box->fn = std::move(callback);
        callbacks_.reserve(callbacks_.size() + 1); /* no allocation failure after the C call */
        detail::check(rmw_transport_set_event_callback(handle_, &Transport::trampoline, box.get()),
                      "rmw_transport_set_event_callback");
        /* Older callbacks are kept until the transport is freed: the C library does not say
         * whether one of them is still running on the event thread right now. */
        callbacks_.push_back(std::move(box));
    }

    /* -- audio -- */

    /// A new outgoing Opus track sending to `target` (needs enable_audio, the default). A peer
    /// carries one outgoing audio track at a time: a second track aimed at it skips it.
    AudioTrack add_audio_track(const Target &target, const AudioTrackConfig &config = AudioTrackConfig()) const {
        const std::string id = detail::c_string(target.id, "rmw_audio_track_new");
        rmw_audio_track_t out = 0;
        detail::check(rmw_audio_track_new(handle_, &config, static_cast<int32_t>(target.kind), detail::opt_c_str(id), &out),
                      "rmw_audio_track_new");
        return AudioTrack(out, config.channels);
    }

    /// Waits up to `timeout` (negative: until a frame comes or the transport is freed) for the
    /// next decoded audio frame of any remote track; std::nullopt when none came. Do not poll
    /// while an audio callback is set.
    std::optional<AudioFrame> poll_audio(std::chrono::milliseconds timeout) const {
        struct Guard {
            rmw_audio_frame_t frame;
            ~Guard() { rmw_audio_frame_release(&frame); }
        } g;
        std::memset(&g.frame, 0, sizeof g.frame);
        const rmw_status_t st = rmw_transport_poll_audio(handle_, &g.frame, detail::to_timeout_ms(timeout));
        if (st == RMW_ERR_TIMEOUT)
            return std::nullopt;
        detail::check(st, "rmw_transport_poll_audio");
        return AudioFrame::from_c(g.frame);
    }

    /// Delivers every decoded audio frame to `callback` on the transport's audio thread (not
    /// the event thread); an empty function goes back to polling. Same rules as set_callback():
    /// return quickly, exceptions are caught and reported on stderr, any method may be called
    /// from it, destroying the Transport included.
    void set_audio_callback(AudioCallback callback) {
        if (!callback) {
            detail::check(rmw_transport_set_audio_callback(handle_, nullptr, nullptr),
                          "rmw_transport_set_audio_callback");
            return;
        }
        auto box = std::make_unique<AudioBox>();
        box->fn = std::move(callback);
        audio_callbacks_.reserve(audio_callbacks_.size() + 1);
        detail::check(rmw_transport_set_audio_callback(handle_, &Transport::audio_trampoline, box.get()),
                      "rmw_transport_set_audio_callback");
        audio_callbacks_.push_back(std::move(box)); /* kept until the transport is freed, as above */
    }

    /* -- video -- */

    /// A new outgoing video track sending to `target` (needs enable_video, the default). Each
    /// peer gets the codec negotiated with it (VP8 or VP9). A peer carries one outgoing video
    /// track at a time: a second track aimed at it skips it.
    VideoTrack add_video_track(const Target &target, const VideoTrackConfig &config = VideoTrackConfig()) const {
        const std::string id = detail::c_string(target.id, "rmw_video_track_new");
        rmw_video_track_t out = 0;
        detail::check(rmw_video_track_new(handle_, &config, static_cast<int32_t>(target.kind), detail::opt_c_str(id), &out),
                      "rmw_video_track_new");
        return VideoTrack(out);
    }

    /// Waits up to `timeout` (negative: until a frame comes or the transport is freed) for the
    /// next decoded video frame of any remote track; std::nullopt when none came. At most
    /// video_queue_capacity frames wait (the oldest is dropped): poll often. Do not poll while a
    /// video callback is set.
    std::optional<VideoFrame> poll_video(std::chrono::milliseconds timeout) const {
        struct Guard {
            rmw_video_frame_t frame;
            ~Guard() { rmw_video_frame_release(&frame); }
        } g;
        std::memset(&g.frame, 0, sizeof g.frame);
        const rmw_status_t st = rmw_transport_poll_video(handle_, &g.frame, detail::to_timeout_ms(timeout));
        if (st == RMW_ERR_TIMEOUT)
            return std::nullopt;
        detail::check(st, "rmw_transport_poll_video");
        return VideoFrame::from_c(g.frame);
    }

    /// Delivers every decoded video frame to `callback` on the transport's video thread (not
    /// the event or audio thread); an empty function goes back to polling. Same rules as
    /// set_callback(): return quickly, exceptions are caught and reported on stderr, any method
    /// may be called from it, destroying the Transport included.
    void set_video_callback(VideoCallback callback) {
        if (!callback) {
            detail::check(rmw_transport_set_video_callback(handle_, nullptr, nullptr),
                          "rmw_transport_set_video_callback");
            return;
        }
        auto box = std::make_unique<VideoBox>();
        box->fn = std::move(callback);
        video_callbacks_.reserve(video_callbacks_.size() + 1);
        detail::check(rmw_transport_set_video_callback(handle_, &Transport::video_trampoline, box.get()),
                      "rmw_transport_set_video_callback");
        video_callbacks_.push_back(std::move(box)); /* kept until the transport is freed, as above */
    }

private:
    template <class Fn>
    struct CallbackBox {
        Fn fn;
        bool orphaned = false; /* the Transport is gone: the trampoline deletes the box */

        /// The box whose callback runs on this thread (only ever set on a callback thread).
        static CallbackBox *&running() noexcept {
            static thread_local CallbackBox *box = nullptr;
            return box;
        }
    };
    using Box = CallbackBox<Callback>;
    using AudioBox = CallbackBox<AudioCallback>;
    using VideoBox = CallbackBox<VideoCallback>;

    template <class B, class Arg>
    static void invoke(B *box, const Arg &arg, const char *what) noexcept {
        B *const outer = std::exchange(B::running(), box);
        try {
            box->fn(arg);
        } catch (const std::exception &e) {
            std::fprintf(stderr, "rmw: exception escaped the %s callback: %s\n", what, e.what());
        } catch (...) {
            std::fprintf(stderr, "rmw: exception escaped the %s callback\n", what);
        }
        B::running() = outer;
        if (box->orphaned)
            delete box; /* the Transport was destroyed inside this callback */
    }

    static void trampoline(const rmw_event_t *event, void *user_data) noexcept {
        Box *box = static_cast<Box *>(user_data);
        try {
            const Event ev = Event::from_c(*event);
            invoke(box, ev, "event");
        } catch (...) { /* std::bad_alloc copying the event: dropped */
            std::fprintf(stderr, "rmw: out of memory copying an event\n");
        }
    }

    static void audio_trampoline(const rmw_audio_frame_t *frame, void *user_data) noexcept {
        invoke(static_cast<AudioBox *>(user_data), *frame, "audio");
    }

    static void video_trampoline(const rmw_video_frame_t *frame, void *user_data) noexcept {
        invoke(static_cast<VideoBox *>(user_data), *frame, "video");
    }

    template <class B>
    static void release(std::vector<std::unique_ptr<B>> &boxes) noexcept {
        /* After rmw_transport_free no callback starts, and none runs unless we are inside
         * one (free called from the callback): that box is freed when it returns. */
        for (auto &box : boxes) {
            if (box.get() == B::running()) {
                box->orphaned = true;
                (void)box.release();
            }
        }
        boxes.clear();
    }

    void release_callbacks() noexcept {
        release(callbacks_);
        release(audio_callbacks_);
        release(video_callbacks_);
    }

    void reset() noexcept {
        if (handle_ != 0)
            (void)rmw_transport_free(std::exchange(handle_, 0));
        release_callbacks();
    }

    rmw_transport_t handle_ = 0;
    std::vector<std::unique_ptr<Box>> callbacks_;
    std::vector<std::unique_ptr<AudioBox>> audio_callbacks_;
    std::vector<std::unique_ptr<VideoBox>> video_callbacks_;
};

/* ---- library-wide ------------------------------------------------------------------------ */

inline std::string version() { return rmw_version(); }
inline uint32_t abi_version() noexcept { return rmw_abi_version(); }

} // namespace rmw

#endif /* REMOTEMEDIA_WEBRTC_HPP */
