// chat.cpp: examples_c/chat.c in C++17 with <remotemedia_webrtc.hpp>. alice POLLS on this thread,
// bob uses a CALLBACK (on his event thread); loopback only. Every error throws rmw::Error.
// Build: c++ -std=c++17 chat.cpp $(pkg-config --cflags --libs remotemedia_webrtc) -pthread
#include <remotemedia_webrtc.hpp>

#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
using namespace std::chrono_literals; using rmw::EventKind;

int main() try {
    rmw::SignalingServer server("127.0.0.1:0"); // on a free loopback port
    std::printf("remotemedia-webrtc %s, signaling server on %s\n", rmw::version().c_str(), server.url().c_str());
    // Loopback ICE: nothing leaves this machine. (A Transport also takes a JSON configuration.)
    auto config = [url = server.url()](const char *id) { return rmw::Config{url, id, "loopback"}; };
    std::mutex m; std::condition_variable cv; // bob's state: declared before bob, so it outlives him
    bool bob_open = false, found_bob = false, alice_open = false;
    int bob_got = 0, alice_got = 0;
    rmw::Transport alice(config("alice")), bob(config("bob"));
    bob.set_callback([&](const rmw::Event &ev) { // ev is an owned copy
        std::lock_guard<std::mutex> lock(m);
        bob_open = bob_open || ev.kind == EventKind::DataChannelOpen;
        cv.notify_all();
        if (ev.kind != EventKind::DataChannelMessage) return;
        std::string line = ev.binary ? "bob got binary (" + std::to_string(ev.data.size()) + " bytes):" : "bob got: " + ev.text();
        char hex[4];
        for (size_t i = 0; ev.binary && i < ev.data.size(); i++) std::snprintf(hex, sizeof hex, " %02x", ev.data[i]), line += hex;
        std::printf("%s\n", line.c_str()), std::fflush(stdout), ++bob_got; // one call: main thread prints too
    });
    auto alice_until = [&](const auto &done, const char *what) {
        for (auto end = std::chrono::steady_clock::now() + 20s; !done();) {
            if (std::chrono::steady_clock::now() > end) throw std::runtime_error(std::string("timed out: ") + what);
            std::optional<rmw::Event> ev = alice.poll(100ms);
            found_bob = found_bob || (ev && ev->kind == EventKind::PeerDiscovered && ev->peer_id == "bob");
            alice_open = alice_open || (ev && ev->kind == EventKind::DataChannelOpen);
            if (ev && ev->kind == EventKind::DataChannelMessage)
                std::printf("alice got: %s\n", ev->text().c_str()), std::fflush(stdout), ++alice_got;
        }
    };
    auto bob_until = [&](const auto &done, const char *what) {
        std::unique_lock<std::mutex> lock(m);
        if (!cv.wait_for(lock, 20s, done)) throw std::runtime_error(std::string("timed out: ") + what);
    };
    alice_until([&] { return found_bob; }, "alice to discover bob");
    alice.connect_peer("bob"); // the default "data" channel opens on both sides
    alice_until([&] { return alice_open; }, "alice's channel to open");
    bob_until([&] { return bob_open; }, "bob's channel to open");
    for (const char *text : {"hello bob", "how are you, bob?", "bye bob"}) alice.send_data("bob", text);
    for (const char *text : {"hello alice", "fine, thanks alice", "bye alice"}) bob.send_data("alice", text);
    alice.send_data("bob", std::vector<uint8_t>{0x00, 0x01, 0x02, 0xff, 0xfe, 0x00, 0x7f, 0x80});
    alice_until([&] { return alice_got == 3; }, "alice to receive bob's messages");
    bob_until([&] { return bob_got == 4; }, "bob to receive alice's messages");
    std::printf("chat: OK\n"); // the destructors free bob, alice and the server
    return 0;
} catch (const std::exception &e) {
    std::fprintf(stderr, "chat: FAILED: %s\n", e.what());
    return 1;
}
