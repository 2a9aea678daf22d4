// wrapper_test.cpp: tests of include/remotemedia_webrtc.hpp against the real library.
//
// Two transports ("alice" polls, "bob" uses set_callback) meet on an embedded signaling server
// on 127.0.0.1:0 with loopback ICE, exchange text and binary both ways on the default channel,
// on a channel of their own and through a session; errors throw rmw::Error with the right
// status; moved-from objects are empty and their destructors do nothing; a transport can be
// destroyed from inside its own callback. Audio: rmw::AudioTrack and its errors, and a call
// (alice 440 Hz, bob 660 Hz) received by polling and by the audio callback, with the tones'
// frequencies checked; a transport destroyed from inside its audio callback. Video:
// rmw::VideoTrack, RawVideoFrame, VideoFrame and their errors, and a two-way video call (a moving
// pattern carrying its frame number: I420 one way, RGBA with padded rows the other) received by
// polling and by the video callback, numbers, order and PSNR checked; a transport destroyed from
// inside its video callback.
//
// Prints "PASS"/"FAIL" lines and "N passed, M failed"; exits 1 on any failure. Run by
// tests/cpp_wrapper.rs. Build: c++ -std=c++17 -Wall -Wextra -Werror -pedantic ... -pthread
#include <remotemedia_webrtc.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <unistd.h>
#include <vector>

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// ---- compile-time checks -------------------------------------------------------------------

template <class T>
constexpr bool move_only_v = !std::is_copy_constructible_v<T> && !std::is_copy_assignable_v<T> &&
                             std::is_nothrow_move_constructible_v<T> && std::is_nothrow_move_assignable_v<T> &&
                             std::is_nothrow_destructible_v<T> && std::is_nothrow_default_constructible_v<T>;
static_assert(move_only_v<rmw::SignalingServer>, "SignalingServer must be move-only");
static_assert(move_only_v<rmw::Transport>, "Transport must be move-only");
static_assert(std::is_trivially_copyable_v<rmw::DataChannel>, "DataChannel is a plain handle value");
static_assert(std::is_base_of_v<std::runtime_error, rmw::Error>, "Error is a runtime_error");
static_assert(std::is_copy_constructible_v<rmw::Event> && std::is_nothrow_move_constructible_v<rmw::Event>,
              "Event is an owned value");
static_assert(move_only_v<rmw::AudioTrack>, "AudioTrack must be move-only");
static_assert(std::is_copy_constructible_v<rmw::AudioFrame> && std::is_nothrow_move_constructible_v<rmw::AudioFrame>,
              "AudioFrame is an owned value");
static_assert(std::is_base_of_v<rmw_audio_track_config_t, rmw::AudioTrackConfig>, "AudioTrackConfig is the C struct");
static_assert(move_only_v<rmw::VideoTrack>, "VideoTrack must be move-only");
static_assert(std::is_copy_constructible_v<rmw::VideoFrame> && std::is_nothrow_move_constructible_v<rmw::VideoFrame>,
              "VideoFrame is an owned value");
static_assert(std::is_base_of_v<rmw_video_track_config_t, rmw::VideoTrackConfig>, "VideoTrackConfig is the C struct");
static_assert(std::is_base_of_v<rmw_raw_video_frame_t, rmw::RawVideoFrame> &&
                  std::is_trivially_copyable_v<rmw::RawVideoFrame>,
              "RawVideoFrame is the C struct, a plain value");
// VideoTrack's send_i420 / send_rgba take whole containers of plain values, not pointers.
static_assert(rmw::detail::is_pixel_buffer<std::vector<uint8_t>>::value &&
                  rmw::detail::is_pixel_buffer<std::vector<uint32_t>>::value &&
                  rmw::detail::is_pixel_buffer<std::array<uint8_t, 4>>::value &&
                  rmw::detail::is_pixel_buffer<uint8_t[8]>::value,
              "containers of pixels");
static_assert(!rmw::detail::is_pixel_buffer<const uint8_t *>::value && !rmw::detail::is_pixel_buffer<uint8_t>::value &&
                  !rmw::detail::is_pixel_buffer<std::vector<std::string>>::value,
              "other types are not pixel buffers");
// AudioTrack::send takes whole containers of float or int16_t, nothing else.
static_assert(rmw::detail::is_pcm<std::vector<float>>::value && rmw::detail::is_pcm<std::vector<int16_t>>::value &&
                  rmw::detail::is_pcm<std::array<float, 4>>::value && rmw::detail::is_pcm<int16_t[8]>::value,
              "containers of samples are PCM");
static_assert(!rmw::detail::is_pcm<std::vector<double>>::value && !rmw::detail::is_pcm<const float *>::value &&
                  !rmw::detail::is_pcm<std::string>::value && !rmw::detail::is_pcm<float>::value,
              "other types are not PCM");

// ---- reporting -------------------------------------------------------------------------------

static int g_passed = 0, g_failed = 0;

static void report(bool ok, const std::string &what, int line) {
    if (ok) {
        ++g_passed;
        std::printf("PASS %s\n", what.c_str());
    } else {
        ++g_failed;
        std::printf("FAIL line %d: %s\n", line, what.c_str());
    }
    std::fflush(stdout);
}
#define CHECK(cond) report(static_cast<bool>(cond), #cond, __LINE__)

/// Aborts the current section (counted as one failure by run_section).
struct SectionFailed : std::runtime_error {
    using std::runtime_error::runtime_error;
};
#define REQUIRE(cond)                                                                                  \
    do {                                                                                               \
        report(static_cast<bool>(cond), #cond, __LINE__);                                              \
        if (!(cond))                                                                                   \
            throw SectionFailed("required check failed");                                              \
    } while (0)

/// Runs `call`, which must throw rmw::Error with `status`.
template <class F>
static void expect_error(F &&call, rmw_status_t status, const char *what, int line) {
    try {
        call();
        report(false, std::string(what) + " did not throw", line);
    } catch (const rmw::Error &e) {
        const bool ok = e.status() == status && std::string(e.what()).find(rmw_status_string(status)) != std::string::npos;
        report(ok, std::string(what) + " throws " + rmw_status_string(status) + " (got " + e.status_name() + ": " +
                       e.what() + ")",
               line);
    }
}
#define EXPECT_ERROR(expr, status) expect_error([&] { (void)(expr); }, status, #expr, __LINE__)

static void run_section(const char *name, const std::function<void()> &body) {
    std::printf("== %s\n", name);
    std::fflush(stdout);
    try {
        body();
    } catch (const SectionFailed &) {
        std::printf("   (section %s stopped)\n", name);
    } catch (const std::exception &e) {
        report(false, std::string(name) + ": unexpected exception: " + e.what(), __LINE__);
    }
}

static void on_alarm(int) {
    static const char msg[] = "wrapper_test: hard time limit reached\n";
    if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) {
    }
    _exit(2);
}

// ---- what each side saw ----------------------------------------------------------------------

struct Seen {
    bool signaling = false;
    std::set<std::string> discovered;
    std::vector<rmw::Event> opens, closes, messages, errors;
    bool connected = false;

    void record(const rmw::Event &ev, const char *who) {
        switch (ev.kind) {
        case rmw::EventKind::SignalingConnected: signaling = true; break;
        case rmw::EventKind::PeerDiscovered: discovered.insert(ev.peer_id); break;
        case rmw::EventKind::PeerStateChanged:
            if (ev.peer_state == rmw::PeerState::Connected)
                connected = true;
            break;
        case rmw::EventKind::DataChannelOpen: opens.push_back(ev); break;
        case rmw::EventKind::DataChannelClose: closes.push_back(ev); break;
        case rmw::EventKind::DataChannelMessage: messages.push_back(ev); break;
        case rmw::EventKind::Error:
            std::printf("   %s: error event: %s\n", who, ev.message.c_str());
            errors.push_back(ev);
            break;
        default: break;
        }
    }
    bool opened(const std::string &label) const {
        for (const auto &e : opens)
            if (e.label == label)
                return true;
        return false;
    }
    const rmw::Event *message(const std::string &label, bool binary, const std::vector<uint8_t> &data) const {
        for (const auto &e : messages)
            if (e.label == label && e.binary == binary && e.data == data)
                return &e;
        return nullptr;
    }
    const rmw::Event *text(const std::string &label, const std::string &s) const {
        return message(label, false, std::vector<uint8_t>(s.begin(), s.end()));
    }
};

static constexpr std::chrono::seconds kWait{20};

/// Polls `t` until `done` holds (or the time is up).
static bool poll_until(const rmw::Transport &t, Seen &seen, const std::function<bool(const Seen &)> &done,
                       std::chrono::seconds wait = kWait) {
    const auto deadline = Clock::now() + wait;
    while (!done(seen)) {
        if (Clock::now() > deadline)
            return false;
        if (auto ev = t.poll(100ms))
            seen.record(*ev, t.peer_id().c_str());
    }
    return true;
}

/// Bob's state, filled by his callback on his event thread.
struct Bob {
    std::mutex m;
    std::condition_variable cv;
    Seen seen;
    std::atomic<rmw::Transport *> self{nullptr};
    std::atomic<int> pongs_sent{0};
    std::string callback_error;

    void on_event(const rmw::Event &ev) {
        bool ping = false;
        {
            std::lock_guard<std::mutex> g(m);
            seen.record(ev, "bob");
            ping = ev.kind == rmw::EventKind::DataChannelMessage && !ev.binary && ev.text() == "ping";
        }
        if (ping) {
            // Any call may be made from the callback: answer on bob's own transport.
            try {
                rmw::Transport *t = self.load();
                if (t != nullptr && t->send_data(ev.peer_id, "pong") == 1)
                    ++pongs_sent;
            } catch (const rmw::Error &e) {
                std::lock_guard<std::mutex> g(m);
                callback_error = e.what();
            }
        }
        cv.notify_all();
    }

    bool until(const std::function<bool(const Seen &)> &done) {
        std::unique_lock<std::mutex> g(m);
        return cv.wait_for(g, kWait, [&] { return done(seen); });
    }
};

static std::vector<uint8_t> bytes(std::initializer_list<int> v) {
    std::vector<uint8_t> out;
    for (int b : v)
        out.push_back(static_cast<uint8_t>(b));
    return out;
}

// ---- sections -------------------------------------------------------------------------------

static void test_values() {
    rmw::Config c;
    CHECK(c.to_json() == "{}");
    c.signaling_url = "ws://127.0.0.1:1";
    c.peer_id = "a\"b\\c";
    c.ice_policy = "loopback";
    c.max_peers = 3;
    c.auto_answer = false;
    CHECK(c.to_json() ==
          "{\"signaling_url\":\"ws://127.0.0.1:1\",\"peer_id\":\"a\\\"b\\\\c\",\"ice_policy\":\"loopback\","
          "\"max_peers\":3,\"auto_answer\":false}");
    CHECK(std::string(rmw::to_string(rmw::EventKind::DataChannelMessage)) == "data_channel_message");
    CHECK(std::string(rmw::to_string(rmw::PeerState::Connected)) == "connected");
    CHECK(!rmw::version().empty());
    CHECK(rmw::abi_version() == RMW_ABI_VERSION);
}

static void test_errors_without_network() {
    EXPECT_ERROR(rmw::Transport("{not json"), RMW_ERR_CONFIG);
    EXPECT_ERROR(rmw::Transport(std::string("{\"peer_id\":\"x\"}\0tail", 21)), RMW_ERR_INVALID_ARGUMENT);
    rmw::Transport empty;
    CHECK(!empty);
    EXPECT_ERROR(empty.peer_id(), RMW_ERR_INVALID_HANDLE);
    EXPECT_ERROR(empty.poll(0ms), RMW_ERR_INVALID_HANDLE);
    EXPECT_ERROR(empty.set_callback([](const rmw::Event &) {}), RMW_ERR_INVALID_HANDLE);
    rmw::DataChannel none;
    EXPECT_ERROR(none.send("x"), RMW_ERR_INVALID_HANDLE);
    EXPECT_ERROR(none.buffered_amount(), RMW_ERR_INVALID_HANDLE);
    rmw::SignalingServer no_server;
    EXPECT_ERROR(no_server.port(), RMW_ERR_INVALID_HANDLE);
    try {
        (void)empty.list_peers();
        report(false, "list_peers on an empty Transport throws", __LINE__);
    } catch (const std::runtime_error &e) { // catchable as a std::runtime_error too
        report(std::string(e.what()).find("rmw_transport_list_peers") != std::string::npos,
               std::string("what() names the call: ") + e.what(), __LINE__);
    }
}

static void test_moves() {
    rmw::SignalingServer b;
    uint16_t port = 0;
    rmw_signaling_server_t first = 0;
    {
        rmw::SignalingServer a = rmw::SignalingServer::start("127.0.0.1:0");
        port = a.port();
        first = a.handle();
        b = std::move(a);
        CHECK(!a && a.handle() == 0);
        EXPECT_ERROR(a.port(), RMW_ERR_INVALID_HANDLE);
    } // a's destructor: no-op
    CHECK(b.handle() == first && b.port() == port);
    CHECK(b.url() == "ws://127.0.0.1:" + std::to_string(port));

    // Move-assigning over a live server stops the old one.
    rmw::SignalingServer c("127.0.0.1:0");
    const rmw_signaling_server_t second = c.handle();
    c = std::move(b);
    uint16_t p = 0;
    CHECK(rmw_signaling_server_port(second, &p) == RMW_ERR_INVALID_HANDLE);
    CHECK(c.port() == port);

    const std::string url = c.url();
    rmw::Transport t2;
    rmw_transport_t h1 = 0;
    {
        rmw::Transport t1(rmw::Config{url, "mover", "loopback", {}, {}, {}, {}, {}});
        h1 = t1.handle();
        rmw::Transport moved(std::move(t1));
        CHECK(!t1 && moved.handle() == h1);
        EXPECT_ERROR(t1.peer_id(), RMW_ERR_INVALID_HANDLE);
        t2 = std::move(moved);
    } // t1's and moved's destructors: no-ops
    CHECK(t2.peer_id() == "mover");

    // Move-assigning over a live transport frees the old one.
    rmw::Transport t3("{\"signaling_url\":\"" + url + "\",\"peer_id\":\"old\",\"ice_policy\":\"loopback\"}");
    const rmw_transport_t old = t3.handle();
    t3 = std::move(t2);
    size_t len = 0;
    CHECK(rmw_transport_peer_id(old, nullptr, &len) == RMW_ERR_INVALID_HANDLE);
    CHECK(t3.handle() == h1 && t3.peer_id() == "mover");
    rmw::Transport &alias = t3;
    t3 = std::move(alias); // self-move leaves it usable
    CHECK(t3.handle() == h1);
    t3.close();
    CHECK(!t3);
    CHECK(rmw_transport_peer_id(h1, nullptr, &len) == RMW_ERR_INVALID_HANDLE);
    c.stop();
    CHECK(!c);
}

static void test_two_peers() {
    rmw::SignalingServer server("127.0.0.1:0");
    const std::string url = server.url();
    std::printf("   signaling server on %s\n", url.c_str());

    rmw::Config ac;
    ac.signaling_url = url;
    ac.peer_id = "alice";
    ac.ice_policy = "loopback";
    rmw::Transport alice(ac);
    rmw::Transport bob_first("{\"signaling_url\":\"" + url + "\",\"peer_id\":\"bob\",\"ice_policy\":\"loopback\"}");

    auto bob_state = std::make_shared<Bob>();
    bob_first.set_callback([bob_state](const rmw::Event &ev) { bob_state->on_event(ev); });
    // The callback lives on the heap: it survives moving the Transport.
    rmw::Transport bob(std::move(bob_first));
    bob_state->self = &bob;
    Bob &b = *bob_state;
    Seen a;

    CHECK(alice.peer_id() == "alice" && bob.peer_id() == "bob");
    REQUIRE(poll_until(alice, a, [](const Seen &s) { return s.signaling && s.discovered.count("bob") > 0; }));
    REQUIRE(b.until([](const Seen &s) { return s.signaling && s.discovered.count("alice") > 0; }));

    EXPECT_ERROR(alice.connect_peer("nobody"), RMW_ERR_NOT_FOUND);
    EXPECT_ERROR(alice.connect_peer(std::string("bo\0b", 4)), RMW_ERR_INVALID_ARGUMENT);
    EXPECT_ERROR(alice.peer_state("bob"), RMW_ERR_NOT_FOUND);

    alice.connect_peer("bob");
    REQUIRE(poll_until(alice, a, [](const Seen &s) { return s.opened("data"); }));
    REQUIRE(b.until([](const Seen &s) { return s.opened("data"); }));
    CHECK(alice.peer_state("bob") == rmw::PeerState::Connected);
    CHECK(alice.peer_count(true) == 1 && bob.peer_count() == 1);
    const std::string peers = alice.list_peers();
    CHECK(peers.find("\"peer_id\":\"bob\"") != std::string::npos);
    CHECK(alice.list_peers(true) == peers);
    CHECK(alice.stats_json().find("events_dropped") != std::string::npos);

    // Default channel, both ways, text and binary (with NUL bytes).
    const std::vector<uint8_t> to_bob = bytes({0x00, 0x01, 0x02, 0xff, 0xfe, 0x00, 0x7f, 0x80});
    const std::vector<uint8_t> to_alice = bytes({0xde, 0xad, 0x00, 0xbe, 0xef});
    const std::string text_with_nul("nul\0inside", 10);
    CHECK(alice.send_data("bob", "hello bob") == 1);
    CHECK(alice.send_data("bob", to_bob) == 1);
    CHECK(alice.send_data("", std::string("to everyone")) == 1); // "" : every connected peer
    CHECK(alice.send_data("bob", text_with_nul.data(), text_with_nul.size(), false) == 1);
    CHECK(bob.send_data("alice", std::string_view("hello alice")) == 1);
    CHECK(bob.send_data("alice", to_alice) == 1);
    CHECK(alice.send_data("bob", "ping") == 1); // bob answers "pong" from his callback
    CHECK(b.until([&](const Seen &s) {
        return s.text("data", "hello bob") && s.message("data", true, to_bob) && s.text("data", "to everyone") &&
               s.text("data", text_with_nul) && s.text("data", "ping");
    }));
    CHECK(poll_until(alice, a, [&](const Seen &s) {
        return s.text("data", "hello alice") && s.message("data", true, to_alice) && s.text("data", "pong");
    }));
    CHECK(b.pongs_sent == 1);
    {
        std::lock_guard<std::mutex> g(b.m);
        CHECK(b.callback_error.empty());
        const rmw::Event *m = b.seen.text("data", "hello bob");
        CHECK(m != nullptr && m->peer_id == "alice" && m->channel && m->text() == "hello bob");
    }

    // A channel of its own.
    rmw::DataChannelOptions opts;
    opts.max_retransmits = 5;
    const rmw::DataChannel chat = alice.create_data_channel("bob", "chat", opts);
    CHECK(static_cast<bool>(chat) && chat.label() == "chat");
    REQUIRE(poll_until(alice, a, [&](const Seen &s) {
        for (const auto &e : s.opens)
            if (e.channel == chat)
                return true;
        return false;
    }));
    REQUIRE(b.until([](const Seen &s) { return s.opened("chat"); }));
    chat.send("over chat");
    EXPECT_ERROR(chat.send(std::vector<uint8_t>(RMW_MAX_MESSAGE_SIZE + 1)), RMW_ERR_INVALID_ARGUMENT);
    chat.send(bytes({1, 2, 3}));
    CHECK(chat.buffered_amount() < 1000000);
    chat.set_buffered_amount_low_threshold(1024);
    CHECK(b.until([&](const Seen &s) { return s.text("chat", "over chat") && s.message("chat", true, bytes({1, 2, 3})); }));
    rmw::DataChannel bob_chat;
    {
        std::lock_guard<std::mutex> g(b.m);
        for (const auto &e : b.seen.opens)
            if (e.label == "chat")
                bob_chat = e.channel;
    }
    bob_chat.send("chat reply");
    CHECK(poll_until(alice, a, [](const Seen &s) { return s.text("chat", "chat reply") != nullptr; }));
    chat.close();
    CHECK(poll_until(alice, a, [&](const Seen &s) {
        for (const auto &e : s.closes)
            if (e.channel == chat)
                return true;
        return false;
    }));
    try {
        chat.send("after close");
        report(false, "send on a closed channel throws", __LINE__);
    } catch (const rmw::Error &e) {
        report(e.status() == RMW_ERR_INVALID_HANDLE || e.status() == RMW_ERR_NOT_CONNECTED,
               std::string("send on a closed channel throws: ") + e.what(), __LINE__);
    }

    // Sessions.
    alice.create_session("room");
    EXPECT_ERROR(alice.create_session("room"), RMW_ERR_ALREADY_EXISTS);
    alice.add_session_peer("room", "bob");
    CHECK(alice.session("room").find("\"bob\"") != std::string::npos);
    CHECK(alice.list_sessions().find("\"room\"") != std::string::npos);
    CHECK(alice.send_session_data("room", "to the room") == 1);
    CHECK(alice.send_session_data("room", bytes({9, 0, 9})) == 1);
    CHECK(b.until([](const Seen &s) { return s.text("data", "to the room") && s.message("data", true, bytes({9, 0, 9})); }));
    alice.remove_session_peer("room", "bob");
    CHECK(alice.send_session_data("room", "nobody left") == 0);
    alice.remove_session("room");
    EXPECT_ERROR(alice.session("room"), RMW_ERR_NOT_FOUND);

    // Back to polling: clear bob's callback; later events are polled.
    CHECK(b.until([](const Seen &s) { return s.closes.size() == 1 && s.closes[0].label == "chat"; }));
    bob.set_callback(nullptr);
    CHECK(alice.send_data("bob", "polled by bob") == 1);
    Seen bob_polled;
    CHECK(poll_until(bob, bob_polled, [](const Seen &s) { return s.text("data", "polled by bob") != nullptr; }, 3s));
    {
        std::lock_guard<std::mutex> g(b.m);
        CHECK(b.seen.text("data", "polled by bob") == nullptr); // the cleared callback got nothing
    }
    bob_state->self = nullptr;

    // Disconnect.
    alice.disconnect_peer("bob");
    EXPECT_ERROR(alice.disconnect_peer("bob"), RMW_ERR_NOT_FOUND);
    CHECK(alice.peer_count() == 0);
    CHECK(a.errors.empty());
    std::lock_guard<std::mutex> g(b.m);
    CHECK(b.seen.errors.empty());
}

/// A Transport destroyed from inside its own callback: the callback object outlives the call.
static void test_destroy_inside_callback() {
    rmw::SignalingServer server("127.0.0.1:0");
    struct State {
        std::mutex m;
        std::condition_variable cv;
        std::unique_ptr<rmw::Transport> carol;
        bool destroyed = false;
    };
    auto st = std::make_shared<State>();
    {
        std::lock_guard<std::mutex> g(st->m);
        st->carol = std::make_unique<rmw::Transport>(
            "{\"signaling_url\":\"" + server.url() + "\",\"peer_id\":\"carol\",\"ice_policy\":\"loopback\"}");
        // A payload that would show a use-after-free under a sanitizer.
        auto payload = std::make_shared<std::string>("still alive");
        st->carol->set_callback([st, payload](const rmw::Event &ev) {
            if (ev.kind != rmw::EventKind::SignalingConnected)
                return;
            std::unique_ptr<rmw::Transport> doomed;
            {
                std::lock_guard<std::mutex> g(st->m);
                doomed = std::move(st->carol);
            }
            doomed.reset(); // frees the transport from its own callback
            std::lock_guard<std::mutex> g(st->m);
            st->destroyed = !payload->empty();
            st->cv.notify_all();
        });
    }
    std::unique_lock<std::mutex> g(st->m);
    CHECK(st->cv.wait_for(g, kWait, [&] { return st->destroyed; }));
    CHECK(st->carol == nullptr);
}

// ---- audio -----------------------------------------------------------------------------------

/// A sine of `hz` at amplitude 0.3, sample `i` at `rate`.
static float sine(double hz, uint64_t i, uint32_t rate) {
    return static_cast<float>(0.3 * std::sin(2.0 * 3.14159265358979323846 * hz * static_cast<double>(i) / rate));
}

/// Frequency by rising zero crossings (interpolated).
static double frequency(const std::vector<float> &x, uint32_t rate) {
    double first = -1, last = 0;
    long count = 0;
    for (size_t i = 1; i < x.size(); ++i)
        if (x[i - 1] < 0 && x[i] >= 0) {
            const double at = static_cast<double>(i - 1) + x[i - 1] / (static_cast<double>(x[i - 1]) - x[i]);
            if (first < 0)
                first = at;
            else
                ++count;
            last = at;
        }
    return count > 0 ? static_cast<double>(count) * rate / (last - first) : 0.0;
}

static void test_audio_values() {
    const rmw_audio_track_config_t c = rmw_audio_track_config_default();
    const rmw::AudioTrackConfig cfg;
    CHECK(cfg.sample_rate == c.sample_rate && cfg.channels == c.channels && cfg.frame_ms == c.frame_ms &&
          cfg.bitrate == c.bitrate && cfg.fec == c.fec && cfg.application == c.application &&
          cfg.max_queue_ms == c.max_queue_ms);
    CHECK(rmw::Target::peer("bob").kind == rmw::Target::Kind::Peer && rmw::Target::peer("bob").id == "bob");
    CHECK(rmw::Target::session("room").kind == rmw::Target::Kind::Session);
    CHECK(rmw::Target::all().kind == rmw::Target::Kind::All && rmw::Target::none().kind == rmw::Target::Kind::None);
    CHECK(std::string(rmw::to_string(rmw::EventKind::TrackAdded)) == "track_added");
    CHECK(std::string(rmw::to_string(rmw::EventKind::TrackRemoved)) == "track_removed");
    CHECK(std::string(rmw::to_string(rmw::MediaKind::Audio)) == "audio");
    rmw::Config conf;
    conf.enable_audio = true;
    conf.audio_output_sample_rate = 16000;
    conf.audio_output_channels = 1;
    conf.audio_output_format = "s16";
    CHECK(conf.to_json() == "{\"enable_audio\":true,\"audio_output_sample_rate\":16000,\"audio_output_channels\":1,"
                            "\"audio_output_format\":\"s16\"}");
    const uint64_t t = rmw::clock_us();
    CHECK(t > 0 && rmw::clock_us() >= t);
    rmw_audio_frame_t cf;
    std::memset(&cf, 0, sizeof cf);
    const int16_t pcm[4] = {16384, -16384, 32767, 0};
    cf.peer_id = "p";
    cf.track_id = "t";
    cf.sample_rate = 16000;
    cf.channels = 2;
    cf.format = RMW_SAMPLE_S16;
    cf.data = pcm;
    cf.samples_per_channel = 2;
    const rmw::AudioFrame f = rmw::AudioFrame::from_c(cf);
    CHECK(f.peer_id == "p" && f.format == rmw::SampleFormat::S16 && f.s16.size() == 4 && f.f32.empty());
    CHECK(f.channel(0) == std::vector<float>({0.5f, 32767.0f / 32768.0f}) && f.channel(1) == std::vector<float>({-0.5f, 0.0f}));
    CHECK(f.channel(2).empty());
}

/// Value of "key": in a flat JSON object (stats), or -1.
static long long json_number(const std::string &json, const std::string &key) {
    const size_t at = json.find("\"" + key + "\":");
    return at == std::string::npos ? -1 : std::strtoll(json.c_str() + at + key.size() + 3, nullptr, 10);
}

static void test_audio_errors() {
    const rmw::AudioTrackConfig cfg;
    rmw::AudioTrack none;
    CHECK(!none && none.channels() == 0);
    EXPECT_ERROR(none.send(std::vector<float>(480)), RMW_ERR_INVALID_HANDLE);
    EXPECT_ERROR(none.stats_json(), RMW_ERR_INVALID_HANDLE);
    EXPECT_ERROR(none.set_target(rmw::Target::all()), RMW_ERR_INVALID_HANDLE);
    EXPECT_ERROR(none.config(), RMW_ERR_INVALID_HANDLE);
    none.close(); // empty: no-op
    rmw::Transport empty;
    EXPECT_ERROR(empty.add_audio_track(rmw::Target::none()), RMW_ERR_INVALID_HANDLE);
    EXPECT_ERROR(empty.poll_audio(0ms), RMW_ERR_INVALID_HANDLE);
    EXPECT_ERROR(empty.set_audio_callback([](const rmw_audio_frame_t &) {}), RMW_ERR_INVALID_HANDLE);

    rmw::Transport t("{\"signaling_url\":\"ws://127.0.0.1:9\",\"peer_id\":\"audio-errors\",\"ice_policy\":\"loopback\"}");
    rmw::AudioTrackConfig bad;
    bad.channels = 3;
    EXPECT_ERROR(t.add_audio_track(rmw::Target::none(), bad), RMW_ERR_INVALID_ARGUMENT);
    bad = rmw::AudioTrackConfig();
    bad.sample_rate = 22050;
    EXPECT_ERROR(t.add_audio_track(rmw::Target::none(), bad), RMW_ERR_INVALID_ARGUMENT);
    EXPECT_ERROR(t.add_audio_track(rmw::Target{static_cast<rmw::Target::Kind>(42), ""}), RMW_ERR_INVALID_ARGUMENT);
    EXPECT_ERROR(t.add_audio_track(rmw::Target::peer("")), RMW_ERR_INVALID_ARGUMENT);
    EXPECT_ERROR(t.add_audio_track(rmw::Target::peer(std::string("bo\0b", 4))), RMW_ERR_INVALID_ARGUMENT);
    EXPECT_ERROR(t.add_audio_track(rmw::Target::peer("nobody")), RMW_ERR_NOT_FOUND);
    EXPECT_ERROR(t.add_audio_track(rmw::Target::session("no-room")), RMW_ERR_NOT_FOUND);
    CHECK(!t.poll_audio(10ms));

    rmw::AudioTrack mono = t.add_audio_track(rmw::Target::none());
    CHECK(mono && mono.channels() == 1);
    mono.send(std::vector<float>(441, 0.25f));
    mono.send(std::vector<int16_t>(1024, int16_t{100}));
    const float c_array[3] = {0.0f, 0.1f, 0.2f};
    mono.send(c_array);
    mono.send(c_array, 2);
    EXPECT_ERROR(mono.send(std::vector<float>()), RMW_ERR_INVALID_ARGUMENT);
    const std::vector<float> second(48000); // 1 s: longer than the whole queue (200 ms)
    EXPECT_ERROR(mono.try_send(second), RMW_ERR_INVALID_ARGUMENT);
    // 100 ms chunks back to back, faster than real time: the queue fills up.
    const std::vector<float> tenth(4800);
    long long accepted = 441 + 1024 + 3 + 2;
    bool refused = false;
    for (int i = 0; i < 100 && !refused; ++i) {
        refused = !mono.try_send(tenth);
        accepted += refused ? 0 : 4800;
    }
    CHECK(refused);
    bool threw = false;
    for (int i = 0; i < 100 && !threw; ++i) {
        try {
            mono.send(tenth);
            accepted += 4800;
        } catch (const rmw::Error &e) {
            threw = e.status() == RMW_ERR_QUEUE_FULL;
            if (!threw)
                break;
        }
    }
    CHECK(threw);
    bool taken = false; // once the encoder has caught up, sends are taken again
    for (int i = 0; i < 200 && !taken; ++i)
        if (!(taken = mono.try_send(c_array)))
            std::this_thread::sleep_for(5ms);
    CHECK(taken);
    accepted += 3;
    const std::string stats = mono.stats_json();
    CHECK(json_number(stats, "queue_full") >= 2 && json_number(stats, "samples_in") == accepted);
    const rmw::AudioTrackConfig got = mono.config();
    CHECK(got.channels == 1 && got.sample_rate == 48000 && got.max_queue_ms == cfg.max_queue_ms);
    EXPECT_ERROR(mono.set_target(rmw::Target::peer("nobody")), RMW_ERR_NOT_FOUND);
    mono.set_target(rmw::Target::all());

    rmw::AudioTrackConfig sc;
    sc.channels = 2;
    sc.sample_rate = 44100;
    rmw::AudioTrack stereo = t.add_audio_track(rmw::Target::all(), sc);
    CHECK(stereo.channels() == 2 && stereo.config().channels == 2 && stereo.config().sample_rate == 44100);
    stereo.send(std::vector<float>(2 * 441));
    EXPECT_ERROR(stereo.send(std::vector<float>(3)), RMW_ERR_INVALID_ARGUMENT); // not whole frames
    EXPECT_ERROR(stereo.try_send(std::vector<int16_t>(5)), RMW_ERR_INVALID_ARGUMENT);

    // Moves: the source is emptied; assigning over a live track frees it.
    const rmw_audio_track_t h_mono = mono.handle(), h_stereo = stereo.handle();
    rmw::AudioTrack moved(std::move(mono));
    CHECK(!mono && moved.handle() == h_mono && moved.channels() == 1);
    EXPECT_ERROR(mono.send(c_array), RMW_ERR_INVALID_HANDLE);
    moved = std::move(stereo);
    size_t len = 0;
    CHECK(rmw_audio_track_stats_json(h_mono, nullptr, &len) == RMW_ERR_INVALID_HANDLE);
    CHECK(moved.handle() == h_stereo && moved.channels() == 2 && !stereo);
    moved.close();
    CHECK(!moved && rmw_audio_track_stats_json(h_stereo, nullptr, &len) == RMW_ERR_INVALID_HANDLE);

    // A track that outlives its transport: invalid, its destructor is harmless.
    rmw::AudioTrack orphan = t.add_audio_track(rmw::Target::none());
    t.set_audio_callback([](const rmw_audio_frame_t &) {});
    t.close(); // with a live track and an audio callback set
    EXPECT_ERROR(orphan.send(c_array), RMW_ERR_INVALID_HANDLE);
}

/// What one side received, filled by its audio callback or by polling.
struct Heard {
    std::mutex m;
    std::vector<rmw::AudioFrame> frames;
    int by_callback = 0;
    std::string problem;

    void add(rmw::AudioFrame f, bool callback) {
        std::lock_guard<std::mutex> g(m);
        by_callback += callback ? 1 : 0;
        frames.push_back(std::move(f));
    }
    size_t count() {
        std::lock_guard<std::mutex> g(m);
        return frames.size();
    }
};

/// Checks one received stream: shape, no concealment, RTP continuity, the tone's frequency.
static void check_heard(Heard &h, const char *who, const std::string &from, uint32_t rate, uint32_t channels,
                        rmw::SampleFormat format, double hz) {
    std::lock_guard<std::mutex> g(h.m);
    REQUIRE(!h.frames.empty());
    bool shape = true, concealed = false, continuous = true;
    std::vector<std::vector<float>> pcm(channels);
    for (size_t i = 0; i < h.frames.size(); ++i) {
        const rmw::AudioFrame &f = h.frames[i];
        shape = shape && f.peer_id == from && f.sample_rate == rate && f.channels == channels && f.format == format &&
                (format == rmw::SampleFormat::F32 ? f.f32.size() : f.s16.size()) == f.samples_per_channel * channels;
        concealed = concealed || f.concealed;
        if (i > 0) {
            const rmw::AudioFrame &p = h.frames[i - 1];
            continuous = continuous && f.rtp_timestamp == p.rtp_timestamp + static_cast<uint32_t>(p.samples_per_channel * 48000 / rate);
        }
        for (uint32_t c = 0; c < channels && shape; ++c) {
            const std::vector<float> x = f.channel(c);
            pcm[c].insert(pcm[c].end(), x.begin(), x.end());
        }
    }
    const size_t skip = rate / 10; // the codec fades in
    std::printf("   %s heard %s: %zu frames (%d by callback), %zu samples at %u Hz", who, from.c_str(), h.frames.size(),
                h.by_callback, pcm[0].size(), rate);
    for (uint32_t c = 0; c < channels; ++c)
        std::printf(", ch%u %.1f Hz", c, pcm[c].size() > skip ? frequency(std::vector<float>(pcm[c].begin() + static_cast<long>(skip), pcm[c].end()), rate) : 0.0);
    std::printf("\n");
    CHECK(shape);
    CHECK(!concealed);
    CHECK(continuous);
    CHECK(pcm[0].size() >= rate * 13 / 10);
    for (uint32_t c = 0; c < channels; ++c) {
        REQUIRE(pcm[c].size() > skip);
        const double got = frequency(std::vector<float>(pcm[c].begin() + static_cast<long>(skip), pcm[c].end()), rate);
        report(got > hz - 3 && got < hz + 3,
               std::string(who) + " hears " + std::to_string(hz) + " Hz on channel " + std::to_string(c) + " (got " +
                   std::to_string(got) + ")",
               __LINE__);
    }
}

/// Polls `t`'s events for TrackAdded from `from` (other events are dropped).
static std::optional<rmw::Event> wait_track_added(const rmw::Transport &t, const std::string &from) {
    const auto deadline = Clock::now() + 5s;
    while (Clock::now() < deadline)
        if (auto ev = t.poll(50ms); ev && ev->kind == rmw::EventKind::TrackAdded && ev->peer_id == from)
            return ev;
    return std::nullopt;
}

/// alice and bob call each other: alice sends 440 Hz (f32, std::vector, 441/1024-sample chunks)
/// and polls what she gets (48 kHz stereo f32, the defaults); bob sends 660 Hz (int16_t C
/// arrays) and takes his audio (16 kHz mono s16) by callback, then by polling. Then bob's
/// Transport is destroyed from inside his audio callback while alice keeps sending.
static void test_audio_exchange() {
    rmw::SignalingServer server("127.0.0.1:0");
    rmw::Config ac;
    ac.signaling_url = server.url();
    ac.peer_id = "alice";
    ac.ice_policy = "loopback";
    rmw::Config bc = ac;
    bc.peer_id = "bob";
    bc.audio_output_sample_rate = 16000;
    bc.audio_output_channels = 1;
    bc.audio_output_format = "s16";
    rmw::Transport alice(ac);
    auto bob = std::make_unique<rmw::Transport>(bc);
    Seen a, b;
    REQUIRE(poll_until(alice, a, [](const Seen &s) { return s.discovered.count("bob") > 0; }));
    alice.connect_peer("bob");
    REQUIRE(poll_until(alice, a, [](const Seen &s) { return s.opened("data"); }));
    REQUIRE(poll_until(*bob, b, [](const Seen &s) { return s.opened("data"); }));

    auto heard_by_bob = std::make_shared<Heard>();
    Heard heard_by_alice;
    bob->set_audio_callback([heard_by_bob](const rmw_audio_frame_t &f) { heard_by_bob->add(rmw::AudioFrame::from_c(f), true); });

    rmw::AudioTrack to_bob = alice.add_audio_track(rmw::Target::peer("bob"));
    rmw::AudioTrack to_alice = bob->add_audio_track(rmw::Target::peer("alice"));
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> sent{0};
    std::string sender_error;
    std::thread sender([&] {
        try {
            const auto start = Clock::now();
            uint64_t n = 0;
            int k = 0;
            std::vector<float> chunk;
            int16_t block[480];
            while (!stop && n < 3 * 48000) {
                const size_t len = (k++ % 2) ? 1024 : 441;
                chunk.resize(len);
                for (size_t i = 0; i < len; ++i)
                    chunk[i] = sine(440, n + i, 48000);
                to_bob.send(chunk);
                for (size_t i = 0; i < 480 && i < len; ++i)
                    block[i] = static_cast<int16_t>(sine(660, n + i, 48000) * 32767);
                to_alice.send(block, std::min<size_t>(len, 480));
                if (len > 480)
                    for (size_t off = 480; off < len; off += 480) {
                        const size_t m = std::min<size_t>(480, len - off);
                        for (size_t i = 0; i < m; ++i)
                            block[i] = static_cast<int16_t>(sine(660, n + off + i, 48000) * 32767);
                        to_alice.send(block, m);
                    }
                n += len;
                sent = n;
                std::this_thread::sleep_until(start + std::chrono::microseconds(n * 1000000 / 48000));
            }
        } catch (const std::exception &e) {
            sender_error = e.what();
        }
    });

    // alice polls; bob's callback takes 25 frames, then bob polls too.
    bool bob_polls = false;
    auto quiet_since = Clock::now();
    const auto deadline = Clock::now() + 20s;
    while (Clock::now() < deadline) {
        bool got = false;
        if (auto f = alice.poll_audio(20ms)) {
            heard_by_alice.add(std::move(*f), false);
            got = true;
        }
        if (!bob_polls && heard_by_bob->count() >= 25) {
            bob->set_audio_callback(nullptr);
            bob_polls = true;
        }
        while (bob_polls)
            if (auto f = bob->poll_audio(0ms)) {
                heard_by_bob->add(std::move(*f), false);
                got = true;
            } else {
                break;
            }
        if (got)
            quiet_since = Clock::now();
        else if (sent >= 3 * 48000 / 2 && Clock::now() - quiet_since > 500ms)
            break;
        if (sent >= 3 * 48000 / 2)
            stop = true; // 1.5 s sent: let the last frames arrive
    }
    stop = true;
    sender.join();
    CHECK(sender_error.empty());
    if (!sender_error.empty())
        std::printf("   sender: %s\n", sender_error.c_str());
    CHECK(bob_polls);
    check_heard(heard_by_alice, "alice", "bob", 48000, 2, rmw::SampleFormat::F32, 660);
    check_heard(*heard_by_bob, "bob", "alice", 16000, 1, rmw::SampleFormat::S16, 440);
    {
        std::lock_guard<std::mutex> g(heard_by_bob->m);
        CHECK(heard_by_bob->by_callback >= 25 && heard_by_bob->frames.size() > static_cast<size_t>(heard_by_bob->by_callback) + 20);
    }
    const std::string st = to_bob.stats_json();
    std::printf("   alice's track: %s\n", st.c_str());
    CHECK(st.find("\"packets_sent\":0,") == std::string::npos && st.find("\"peers\":1") != std::string::npos);
    for (auto *side : {&alice, bob.get()}) {
        const std::optional<rmw::Event> added = wait_track_added(*side, side == &alice ? "bob" : "alice");
        REQUIRE(added.has_value());
        CHECK(added->media_kind == rmw::MediaKind::Audio && added->codec == "opus" && added->clock_rate == 48000 &&
              !added->track_id.empty() && (added->channels == 1 || added->channels == 2));
    }

    // bob is destroyed from inside his own audio callback while alice keeps sending.
    struct State {
        std::mutex m;
        std::condition_variable cv;
        std::unique_ptr<rmw::Transport> bob;
        bool destroyed = false;
    };
    auto state = std::make_shared<State>();
    {
        std::lock_guard<std::mutex> g(state->m);
        state->bob = std::move(bob);
        to_alice = rmw::AudioTrack(); // bob's track goes first (freed by its destructor)
        auto payload = std::make_shared<std::string>("still alive");
        state->bob->set_audio_callback([state, payload](const rmw_audio_frame_t &f) {
            std::unique_ptr<rmw::Transport> doomed;
            {
                std::lock_guard<std::mutex> lock(state->m);
                doomed = std::move(state->bob);
            }
            if (!doomed)
                return;
            const std::string peer = f.peer_id; // the frame stays valid until we return
            doomed.reset();
            std::lock_guard<std::mutex> lock(state->m);
            state->destroyed = !payload->empty() && peer == "alice" && f.samples_per_channel > 0;
            state->cv.notify_all();
        });
    }
    std::vector<float> more(480);
    bool destroyed = false;
    for (int i = 0; i < 200 && !destroyed; ++i) {
        for (size_t k = 0; k < more.size(); ++k)
            more[k] = sine(440, static_cast<uint64_t>(i) * 480 + k, 48000);
        to_bob.send(more);
        std::unique_lock<std::mutex> lock(state->m);
        destroyed = state->cv.wait_for(lock, 10ms, [&] { return state->destroyed; });
    }
    CHECK(destroyed);
    to_bob.send(more); // bob is gone; alice's track still takes PCM
    CHECK(a.errors.empty() && b.errors.empty());
}

// ---- video -----------------------------------------------------------------------------------

// A W x H test pattern, frame n: a luma gradient, a white bar moving 8 px per frame, and n as 16
// black/white 16 x 32 blocks along the top (bit 0 first). RGBA frames carry it in grey.
namespace video {

constexpr uint32_t W = 320, H = 240, CW = (W + 1) / 2, CH = (H + 1) / 2, FRAMES = 60, FPS = 30;

static uint8_t luma(uint32_t x, uint32_t y, uint32_t n) {
    const uint32_t bar = (8 * n) % W;
    if (y >= 8 && y < 40 && x >= 32 && x < 32 + 16 * 16)
        return ((n >> ((x - 32) / 16)) & 1) ? 235 : 16;
    if (x >= bar && x < bar + 32)
        return 235;
    return static_cast<uint8_t>(40 + y * 120 / H + x * 30 / W);
}

static uint8_t grey(uint32_t x, uint32_t y, uint32_t n) { return static_cast<uint8_t>((luma(x, y, n) - 16) * 255 / 219); }

/// Tight I420 (Y, U, V back to back), chroma ramps.
static std::vector<uint8_t> i420(uint32_t n) {
    std::vector<uint8_t> f(rmw::RawVideoFrame::i420_size(W, H));
    for (uint32_t y = 0; y < H; ++y)
        for (uint32_t x = 0; x < W; ++x)
            f[y * W + x] = luma(x, y, n);
    for (uint32_t y = 0; y < CH; ++y)
        for (uint32_t x = 0; x < CW; ++x) {
            f[W * H + y * CW + x] = static_cast<uint8_t>(90 + x * 80 / CW);
            f[W * H + CW * CH + y * CW + x] = static_cast<uint8_t>(90 + y * 80 / CH);
        }
    return f;
}

constexpr uint32_t RGBA_STRIDE = 4 * W + 32; // padded rows

/// RGBA in rows of RGBA_STRIDE bytes (the padding is never read).
static std::vector<uint8_t> rgba(uint32_t n) {
    std::vector<uint8_t> f(static_cast<size_t>(RGBA_STRIDE) * H, 0xee);
    for (uint32_t y = 0; y < H; ++y)
        for (uint32_t x = 0; x < W; ++x) {
            uint8_t *p = &f[y * RGBA_STRIDE + 4 * x];
            p[0] = p[1] = p[2] = grey(x, y, n);
            p[3] = 255;
        }
    return f;
}

/// The number a received frame carries, or -1 if a block is unreadable.
static long number(const rmw::VideoFrame &f) {
    const size_t bpp = f.format == rmw::VideoFormat::RGBA ? 4 : 1;
    long n = 0;
    for (uint32_t bit = 0; bit < 16; ++bit) {
        unsigned sum = 0;
        for (uint32_t y = 16; y < 32; ++y)
            for (uint32_t x = 32 + 16 * bit + 4; x < 32 + 16 * bit + 12; ++x)
                sum += f.row(0, y)[x * bpp];
        sum /= 128;
        if (sum > 160)
            n |= 1L << bit;
        else if (sum >= 96)
            return -1;
    }
    return n;
}

/// PSNR (dB) of the frame's luma (I420) or R, G, B (RGBA) against pattern frame `n`.
static double psnr(const rmw::VideoFrame &f, uint32_t n) {
    double sq = 0;
    size_t count = 0;
    for (uint32_t y = 0; y < H; ++y) {
        const uint8_t *r = f.row(0, y);
        for (uint32_t x = 0; x < W; ++x) {
            if (f.format == rmw::VideoFormat::I420) {
                const double d = double(r[x]) - luma(x, y, n);
                sq += d * d;
                ++count;
            } else {
                for (uint32_t k = 0; k < 3; ++k) {
                    const double d = double(r[4 * x + k]) - grey(x, y, n);
                    sq += d * d;
                    ++count;
                }
            }
        }
    }
    const double mse = sq / static_cast<double>(count);
    return mse <= 0 ? 99.0 : 10.0 * std::log10(255.0 * 255.0 / mse);
}

} // namespace video

static void test_video_values() {
    const rmw_video_track_config_t c = rmw_video_track_config_default();
    const rmw::VideoTrackConfig cfg;
    CHECK(cfg.bitrate_kbps == c.bitrate_kbps && cfg.fps == c.fps && cfg.keyframe_interval == c.keyframe_interval &&
          cfg.speed == c.speed && cfg.threads == c.threads && cfg.bitrate_kbps == 1500 && cfg.fps == 30);
    CHECK(std::string(rmw::to_string(rmw::MediaKind::Video)) == "video");

    // RawVideoFrame: every field, sizes stride * rows, unused planes NULL.
    uint8_t buf[64] = {};
    const rmw::RawVideoFrame t = rmw::RawVideoFrame::i420(buf, 5, 3); // odd: chroma 3 x 2
    CHECK(t.format == RMW_PIXEL_I420 && t.width == 5 && t.height == 3 && t.planes[0] == buf && t.planes[1] == buf + 15 &&
          t.planes[2] == buf + 21 && t.strides[0] == 5 && t.strides[1] == 3 && t.strides[2] == 3 && t.sizes[0] == 15 &&
          t.sizes[1] == 6 && t.sizes[2] == 6);
    CHECK(rmw::RawVideoFrame::i420_size(5, 3) == 27 && rmw::RawVideoFrame::i420_size(320, 240) == 115200);
    const rmw::RawVideoFrame p = rmw::RawVideoFrame::i420(buf, buf + 1, buf + 2, 4, 4, 8, 6, 7);
    CHECK(p.strides[0] == 8 && p.strides[1] == 6 && p.strides[2] == 7 && p.sizes[0] == 32 && p.sizes[1] == 12 &&
          p.sizes[2] == 14);
    const rmw::RawVideoFrame n = rmw::RawVideoFrame::nv12(buf, buf + 16, 4, 4);
    CHECK(n.format == RMW_PIXEL_NV12 && n.strides[1] == 4 && n.sizes[1] == 8 && n.planes[2] == nullptr && n.sizes[2] == 0);
    const rmw::RawVideoFrame r = rmw::RawVideoFrame::rgba(buf, 3, 2);
    CHECK(r.format == RMW_PIXEL_RGBA && r.strides[0] == 12 && r.sizes[0] == 24 && r.planes[1] == nullptr);
    const rmw::RawVideoFrame b = rmw::RawVideoFrame::bgra(buf, 3, 2, 16);
    CHECK(b.format == RMW_PIXEL_BGRA && b.strides[0] == 16 && b.sizes[0] == 32);
    const rmw::RawVideoFrame zero;
    CHECK(zero.format == 0 && zero.width == 0 && zero.planes[0] == nullptr && zero.sizes[0] == 0);

    rmw::Config conf;
    conf.enable_video = true;
    conf.video_codec = "vp9";
    conf.video_output_format = "rgba";
    conf.video_queue_capacity = 16;
    conf.video_max_delay_ms = 300;
    conf.simulate_loss_percent = 5;
    CHECK(conf.to_json() == "{\"enable_video\":true,\"video_codec\":\"vp9\",\"video_output_format\":\"rgba\","
                            "\"video_queue_capacity\":16,\"video_max_delay_ms\":300,\"simulate_loss_percent\":5}");

    // VideoFrame::from_c copies the planes row by row into packed rows.
    const uint8_t y[2 * 8] = {1, 2, 3, 0xee, 0xee, 0xee, 0xee, 0xee, 4, 5, 6, 0xee, 0xee, 0xee, 0xee, 0xee};
    const uint8_t u[4] = {7, 8, 0xee, 0xee}, v[4] = {9, 10, 0xee, 0xee};
    rmw_video_frame_t cf;
    std::memset(&cf, 0, sizeof cf);
    cf.peer_id = "p";
    cf.track_id = "video";
    cf.codec = "vp8";
    cf.width = 3;
    cf.height = 2;
    cf.format = RMW_VIDEO_I420;
    cf.planes[0] = y;
    cf.planes[1] = u;
    cf.planes[2] = v;
    cf.strides[0] = 8;
    cf.strides[1] = cf.strides[2] = 4;
    cf.rtp_timestamp = 3000;
    cf.keyframe = true;
    const rmw::VideoFrame f = rmw::VideoFrame::from_c(cf);
    CHECK(f.peer_id == "p" && f.track_id == "video" && f.codec == "vp8" && f.width == 3 && f.height == 2 &&
          f.format == rmw::VideoFormat::I420 && f.keyframe && f.rtp_timestamp == 3000);
    CHECK(f.planes[0] == std::vector<uint8_t>({1, 2, 3, 4, 5, 6}) && f.planes[1] == std::vector<uint8_t>({7, 8}) &&
          f.planes[2] == std::vector<uint8_t>({9, 10}) && f.strides == (std::array<uint32_t, 3>{3, 2, 2}));
    CHECK(f.row(0, 1) != nullptr && f.row(0, 1)[2] == 6 && f.row(0, 2) == nullptr && f.row(3, 0) == nullptr);
    const uint8_t px[2 * 12] = {1, 2, 3, 255, 0, 0, 0, 0, 0xee, 0xee, 0xee, 0xee, 4, 5, 6, 255, 0, 0, 0, 0, 0xee, 0xee, 0xee, 0xee};
    cf.width = 1;
    cf.format = RMW_VIDEO_RGBA;
    cf.planes[0] = px;
    cf.planes[1] = cf.planes[2] = nullptr;
    cf.strides[0] = 12;
    cf.strides[1] = cf.strides[2] = 0;
    const rmw::VideoFrame g = rmw::VideoFrame::from_c(cf);
    CHECK(g.format == rmw::VideoFormat::RGBA && g.planes[0] == std::vector<uint8_t>({1, 2, 3, 255, 4, 5, 6, 255}) &&
          g.strides[0] == 4 && g.planes[1].empty() && g.planes[2].empty());
}

static void test_video_errors() {
    rmw::VideoTrack none;
    CHECK(!none && none.handle() == 0);
    const std::vector<uint8_t> frame = video::i420(0);
    EXPECT_ERROR(none.send_i420(frame, video::W, video::H), RMW_ERR_INVALID_HANDLE);
    EXPECT_ERROR(none.stats_json(), RMW_ERR_INVALID_HANDLE);
    EXPECT_ERROR(none.set_bitrate(800), RMW_ERR_INVALID_HANDLE);
    EXPECT_ERROR(none.request_keyframe(), RMW_ERR_INVALID_HANDLE);
    EXPECT_ERROR(none.set_target(rmw::Target::all()), RMW_ERR_INVALID_HANDLE);
    none.close(); // empty: no-op
    rmw::Transport empty;
    EXPECT_ERROR(empty.add_video_track(rmw::Target::none()), RMW_ERR_INVALID_HANDLE);
    EXPECT_ERROR(empty.poll_video(0ms), RMW_ERR_INVALID_HANDLE);
    EXPECT_ERROR(empty.set_video_callback([](const rmw_video_frame_t &) {}), RMW_ERR_INVALID_HANDLE);

    rmw::Transport t("{\"signaling_url\":\"ws://127.0.0.1:9\",\"peer_id\":\"video-errors\",\"ice_policy\":\"loopback\"}");
    rmw::VideoTrackConfig bad;
    bad.fps = 0;
    EXPECT_ERROR(t.add_video_track(rmw::Target::none(), bad), RMW_ERR_INVALID_ARGUMENT);
    bad = rmw::VideoTrackConfig();
    bad.bitrate_kbps = 10;
    EXPECT_ERROR(t.add_video_track(rmw::Target::none(), bad), RMW_ERR_INVALID_ARGUMENT);
    bad = rmw::VideoTrackConfig();
    bad.speed = 40;
    EXPECT_ERROR(t.add_video_track(rmw::Target::none(), bad), RMW_ERR_INVALID_ARGUMENT);
    bad = rmw::VideoTrackConfig();
    bad.threads = 0;
    EXPECT_ERROR(t.add_video_track(rmw::Target::none(), bad), RMW_ERR_INVALID_ARGUMENT);
    EXPECT_ERROR(t.add_video_track(rmw::Target{static_cast<rmw::Target::Kind>(42), ""}), RMW_ERR_INVALID_ARGUMENT);
    EXPECT_ERROR(t.add_video_track(rmw::Target::peer(std::string("bo\0b", 4))), RMW_ERR_INVALID_ARGUMENT);
    EXPECT_ERROR(t.add_video_track(rmw::Target::peer("nobody")), RMW_ERR_NOT_FOUND);
    CHECK(!t.poll_video(10ms));

    rmw::VideoTrack track = t.add_video_track(rmw::Target::none());
    CHECK(static_cast<bool>(track));
    track.send_i420(frame, video::W, video::H);
    track.send(rmw::RawVideoFrame::i420(frame.data(), video::W, video::H));
    const std::vector<uint8_t> px = video::rgba(0);
    track.send_rgba(px, video::W, video::H, video::RGBA_STRIDE);
    track.send_bgra(px.data(), video::W, video::H, video::RGBA_STRIDE);
    EXPECT_ERROR(track.send(rmw::RawVideoFrame()), RMW_ERR_INVALID_ARGUMENT);                              // no planes, width 0
    EXPECT_ERROR(track.send_i420(frame.data(), 0, video::H), RMW_ERR_INVALID_ARGUMENT);                    // width 0
    EXPECT_ERROR(track.send_i420(static_cast<const uint8_t *>(nullptr), video::W, video::H), RMW_ERR_INVALID_ARGUMENT);
    EXPECT_ERROR(track.send_rgba(px.data(), video::W, video::H, 4 * video::W - 1), RMW_ERR_INVALID_ARGUMENT); // stride < row
    rmw::RawVideoFrame shortf = rmw::RawVideoFrame::i420(frame.data(), video::W, video::H);
    shortf.sizes[2] -= 1;
    EXPECT_ERROR(track.send(shortf), RMW_ERR_INVALID_ARGUMENT); // V plane one byte short
    rmw::RawVideoFrame nine = shortf;
    nine.format = 9;
    EXPECT_ERROR(track.send(nine), RMW_ERR_INVALID_ARGUMENT);
    // Containers are size-checked by the wrapper before the library sees them.
    EXPECT_ERROR(track.send_i420(std::vector<uint8_t>(100), video::W, video::H), RMW_ERR_INVALID_ARGUMENT);
    EXPECT_ERROR(track.send_rgba(px, video::W, video::H + 1, video::RGBA_STRIDE), RMW_ERR_INVALID_ARGUMENT);
    track.send_rgba(std::vector<uint32_t>(video::W * video::H, 0xff0000ffu), video::W, video::H); // 32-bit pixels
    EXPECT_ERROR(track.set_bitrate(10), RMW_ERR_INVALID_ARGUMENT);
    track.set_bitrate(800);
    track.request_keyframe();
    EXPECT_ERROR(track.set_target(rmw::Target::session("no-room")), RMW_ERR_NOT_FOUND);
    const std::string stats = track.stats_json();
    CHECK(json_number(stats, "frames_in") == 5 && json_number(stats, "target_bitrate_kbps") == 800);

    // Moves: the source is emptied; assigning over a live track frees it.
    rmw::VideoTrack second = t.add_video_track(rmw::Target::all());
    const rmw_video_track_t h1 = track.handle(), h2 = second.handle();
    rmw::VideoTrack moved(std::move(track));
    CHECK(!track && moved.handle() == h1);
    EXPECT_ERROR(track.send_i420(frame, video::W, video::H), RMW_ERR_INVALID_HANDLE);
    moved = std::move(second);
    size_t len = 0;
    CHECK(rmw_video_track_stats_json(h1, nullptr, &len) == RMW_ERR_INVALID_HANDLE);
    CHECK(moved.handle() == h2 && !second);
    moved.close();
    CHECK(!moved && rmw_video_track_stats_json(h2, nullptr, &len) == RMW_ERR_INVALID_HANDLE);

    // A track that outlives its transport: invalid, its destructor is harmless.
    rmw::VideoTrack orphan = t.add_video_track(rmw::Target::all());
    orphan.send_i420(frame, video::W, video::H);
    t.set_video_callback([](const rmw_video_frame_t &) {});
    t.close(); // with a live video track and a video callback set
    EXPECT_ERROR(orphan.send_i420(frame, video::W, video::H), RMW_ERR_INVALID_HANDLE);
}

/// What one side saw, filled by its video callback or by polling.
struct Seen_video {
    std::mutex m;
    std::vector<rmw::VideoFrame> frames;
    int by_callback = 0;

    void add(rmw::VideoFrame f, bool callback) {
        std::lock_guard<std::mutex> g(m);
        by_callback += callback ? 1 : 0;
        frames.push_back(std::move(f));
    }
    size_t count() {
        std::lock_guard<std::mutex> g(m);
        return frames.size();
    }
};

/// Checks one received stream: shape, numbers in order, most frames, first a keyframe, quality.
static void check_seen(Seen_video &s, const char *who, const std::string &from, rmw::VideoFormat format,
                       const std::string &codec) {
    std::lock_guard<std::mutex> g(s.m);
    REQUIRE(!s.frames.empty());
    bool shape = true, ordered = true, readable = true;
    double worst = 99;
    long prev = -1;
    for (const rmw::VideoFrame &f : s.frames) {
        shape = shape && f.peer_id == from && f.codec == codec && f.format == format && f.width == video::W &&
                f.height == video::H && !f.track_id.empty();
        if (!shape)
            break;
        const long n = video::number(f);
        readable = readable && n >= 0 && n < static_cast<long>(video::FRAMES);
        if (!readable)
            break;
        ordered = ordered && n > prev;
        prev = n;
        worst = std::min(worst, video::psnr(f, static_cast<uint32_t>(n)));
    }
    std::printf("   %s saw %s: %zu of %u frames (%d by callback), numbers %ld..%ld, first %sa keyframe, worst PSNR "
                "%.1f dB\n",
                who, from.c_str(), s.frames.size(), video::FRAMES, s.by_callback, video::number(s.frames.front()),
                video::number(s.frames.back()), s.frames.front().keyframe ? "" : "NOT ", worst);
    CHECK(shape);
    CHECK(readable);
    CHECK(ordered);
    CHECK(s.frames.size() * 10 >= video::FRAMES * 8);
    CHECK(s.frames.front().keyframe);
    report(worst >= 30.0, std::string(who) + " sees at least 30 dB (worst " + std::to_string(worst) + ")", __LINE__);
}

/// alice and bob send each other the pattern for 2 s: alice I420 from a std::vector
/// (send_i420), bob RGBA rows with padding (send_rgba). alice polls (output RGBA); bob takes
/// his frames by callback, then polls. Then bob's Transport is destroyed from inside his video
/// callback while alice keeps sending.
static void test_video_exchange() {
    rmw::SignalingServer server("127.0.0.1:0");
    rmw::Config ac;
    ac.signaling_url = server.url();
    ac.peer_id = "alice";
    ac.ice_policy = "loopback";
    ac.video_output_format = "rgba";
    rmw::Config bc = ac;
    bc.peer_id = "bob";
    bc.video_output_format = "";
    rmw::Transport alice(ac);
    auto bob = std::make_unique<rmw::Transport>(bc);
    Seen a, b;
    REQUIRE(poll_until(alice, a, [](const Seen &s) { return s.discovered.count("bob") > 0; }));
    alice.connect_peer("bob");
    REQUIRE(poll_until(alice, a, [](const Seen &s) { return s.opened("data"); }));
    REQUIRE(poll_until(*bob, b, [](const Seen &s) { return s.opened("data"); }));

    auto seen_by_bob = std::make_shared<Seen_video>();
    Seen_video seen_by_alice;
    bob->set_video_callback(
        [seen_by_bob](const rmw_video_frame_t &f) { seen_by_bob->add(rmw::VideoFrame::from_c(f), true); });

    rmw::VideoTrack to_bob = alice.add_video_track(rmw::Target::peer("bob"));
    rmw::VideoTrack to_alice = bob->add_video_track(rmw::Target::peer("alice"));
    std::atomic<bool> done{false};
    std::string sender_error;
    std::thread sender([&] {
        try {
            const auto start = Clock::now();
            for (uint32_t n = 0; n < video::FRAMES; ++n) {
                to_bob.send_i420(video::i420(n), video::W, video::H);
                to_alice.send_rgba(video::rgba(n), video::W, video::H, video::RGBA_STRIDE);
                std::this_thread::sleep_until(start + std::chrono::microseconds((n + 1) * 1000000 / video::FPS));
            }
        } catch (const std::exception &e) {
            sender_error = e.what();
        }
        done = true;
    });

    // alice polls; bob's callback takes half, then bob polls too.
    bool bob_polls = false;
    auto quiet_since = Clock::now();
    const auto deadline = Clock::now() + 20s;
    while (Clock::now() < deadline) {
        bool got = false;
        if (auto f = alice.poll_video(20ms)) {
            seen_by_alice.add(std::move(*f), false);
            got = true;
        }
        if (!bob_polls && seen_by_bob->count() >= video::FRAMES / 2) {
            bob->set_video_callback(nullptr);
            bob_polls = true;
        }
        while (bob_polls)
            if (auto f = bob->poll_video(0ms)) {
                seen_by_bob->add(std::move(*f), false);
                got = true;
            } else {
                break;
            }
        if (got)
            quiet_since = Clock::now();
        else if (done && Clock::now() - quiet_since > 500ms)
            break;
    }
    sender.join();
    CHECK(sender_error.empty());
    if (!sender_error.empty())
        std::printf("   sender: %s\n", sender_error.c_str());
    CHECK(bob_polls);
    check_seen(seen_by_alice, "alice", "bob", rmw::VideoFormat::RGBA, "vp8");
    check_seen(*seen_by_bob, "bob", "alice", rmw::VideoFormat::I420, "vp8");
    {
        std::lock_guard<std::mutex> g(seen_by_bob->m);
        CHECK(seen_by_bob->by_callback >= static_cast<int>(video::FRAMES / 2) &&
              seen_by_bob->frames.size() > static_cast<size_t>(seen_by_bob->by_callback) + 10);
    }
    const std::string st = to_bob.stats_json();
    std::printf("   alice's video track: %s\n", st.c_str());
    CHECK(json_number(st, "frames_in") == video::FRAMES && json_number(st, "peers") == 1 &&
          json_number(st, "keyframes_encoded") >= 1 && json_number(st, "width") == video::W);
    for (auto *side : {&alice, bob.get()}) {
        const std::optional<rmw::Event> added = wait_track_added(*side, side == &alice ? "bob" : "alice");
        REQUIRE(added.has_value());
        CHECK(added->media_kind == rmw::MediaKind::Video && added->codec == "vp8" && added->clock_rate == 90000 &&
              !added->track_id.empty());
    }

    // bob is destroyed from inside his own video callback while alice keeps sending.
    struct State {
        std::mutex m;
        std::condition_variable cv;
        std::unique_ptr<rmw::Transport> bob;
        bool destroyed = false;
    };
    auto state = std::make_shared<State>();
    {
        std::lock_guard<std::mutex> g(state->m);
        state->bob = std::move(bob);
        to_alice = rmw::VideoTrack(); // bob's track goes first (freed by its destructor)
        auto payload = std::make_shared<std::string>("still alive");
        state->bob->set_video_callback([state, payload](const rmw_video_frame_t &f) {
            std::unique_ptr<rmw::Transport> doomed;
            {
                std::lock_guard<std::mutex> lock(state->m);
                doomed = std::move(state->bob);
            }
            if (!doomed)
                return;
            const std::string peer = f.peer_id; // the frame stays valid until we return
            doomed.reset();
            std::lock_guard<std::mutex> lock(state->m);
            state->destroyed = !payload->empty() && peer == "alice" && f.width == video::W && f.planes[0] != nullptr;
            state->cv.notify_all();
        });
    }
    bool destroyed = false;
    for (uint32_t n = 0; n < 100 && !destroyed; ++n) {
        to_bob.send_i420(video::i420(n), video::W, video::H);
        std::unique_lock<std::mutex> lock(state->m);
        destroyed = state->cv.wait_for(lock, 33ms, [&] { return state->destroyed; });
    }
    CHECK(destroyed);
    to_bob.send_i420(video::i420(0), video::W, video::H); // bob is gone; alice's track still takes frames
    CHECK(a.errors.empty() && b.errors.empty());
}

static long count_threads() {
    long n = 0;
    if (FILE *f = std::fopen("/proc/self/status", "r")) {
        char line[256];
        while (std::fgets(line, sizeof line, f))
            if (std::sscanf(line, "Threads: %ld", &n) == 1) break;
        std::fclose(f);
    }
    return n;
}

static long rss_kb() {
    long kb = 0;
    if (FILE *f = std::fopen("/proc/self/status", "r")) {
        char line[256];
        while (std::fgets(line, sizeof line, f))
            if (std::sscanf(line, "VmRSS: %ld", &kb) == 1) break;
        std::fclose(f);
    }
    return kb;
}

// 1000 transports created and destroyed: no thread left, RSS does not keep growing.
static void test_many_transports() {
    rmw::SignalingServer server("127.0.0.1:0");
    rmw::Config cfg;
    cfg.signaling_url = server.url();
    cfg.ice_policy = "loopback";
    for (int i = 0; i < 50; i++) rmw::Transport warm(cfg);  // allocator warm-up
    const long threads = count_threads(), rss = rss_kb();
    for (int i = 0; i < 1000; i++) rmw::Transport t(cfg);
    const long threads_after = count_threads(), rss_after = rss_kb();
    std::printf("  1000 transports: threads %ld -> %ld, RSS %ld -> %ld kB\n", threads, threads_after, rss, rss_after);
    CHECK(threads_after == threads);
    CHECK(rss_after - rss < 20 * 1024);
}

int main() {
    std::signal(SIGALRM, on_alarm);
    alarm(120);
    std::printf("remotemedia-webrtc %s, C++ wrapper test\n", rmw::version().c_str());
    run_section("values", test_values);
    run_section("errors without network", test_errors_without_network);
    run_section("move semantics", test_moves);
    run_section("two peers", test_two_peers);
    run_section("destroy inside callback", test_destroy_inside_callback);
    run_section("audio values", test_audio_values);
    run_section("audio errors", test_audio_errors);
    run_section("audio exchange", test_audio_exchange);
    run_section("video values", test_video_values);
    run_section("video errors", test_video_errors);
    run_section("video exchange", test_video_exchange);
    run_section("1000 transports", test_many_transports);
    std::printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
