// wrapper_test.cpp: tests of include/remotemedia_webrtc.hpp against the real library.
//
// Two transports ("alice" polls, "bob" uses set_callback) meet on an embedded signaling server
// on 127.0.0.1:0 with loopback ICE, exchange text and binary both ways on the default channel,
// on a channel of their own and through a session; errors throw rmw::Error with the right
// status; moved-from objects are empty and their destructors do nothing; a transport can be
// destroyed from inside its own callback.
//
// Prints "PASS"/"FAIL" lines and "N passed, M failed"; exits 1 on any failure. Run by
// tests/cpp_wrapper.rs. Build: c++ -std=c++17 -Wall -Wextra -Werror -pedantic ... -pthread
#include <remotemedia_webrtc.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
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
    run_section("1000 transports", test_many_transports);
    std::printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
