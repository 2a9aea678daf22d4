/*
 * chat.c: two peers, "alice" and "bob", chatting over a WebRTC data channel on this machine.
 *
 * Uses only <remotemedia_webrtc.h>. It shows both ways of receiving events:
 *   - alice POLLS:  rmw_transport_poll_event() + rmw_event_release(), on the main thread;
 *   - bob uses the CALLBACK: rmw_transport_set_event_callback(), on bob's event thread.
 *
 * Steps: start the embedded signaling server on 127.0.0.1:0, create both transports
 * (loopback ICE only: nothing leaves this machine), wait until each is on the server and has
 * discovered the other, let alice connect to bob, wait for the default "data" channel to
 * open on both sides, exchange text messages both ways and one binary message, then free
 * everything. Every status is checked; on failure the program prints the library's error
 * text and exits non-zero. The whole run is limited to 20 seconds.
 *
 * Build:  cc -std=c99 chat.c $(pkg-config --cflags --libs remotemedia_webrtc) -pthread -o chat
 * Set RMW_LOG=1..5 in the environment to see the library's log records on stderr.
 */
#define _POSIX_C_SOURCE 200809L

#include <remotemedia_webrtc.h>

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_SECONDS 20
#define N_TEXTS 3

static const char *const ALICE_SAYS[N_TEXTS] = {"hello bob", "how are you, bob?", "bye bob"};
static const char *const BOB_SAYS[N_TEXTS] = {"hello alice", "fine, thanks alice", "bye alice"};
static const uint8_t BINARY[8] = {0x00, 0x01, 0x02, 0xff, 0xfe, 0x00, 0x7f, 0x80};

/* ---- failure handling ------------------------------------------------------------------ */

static double g_start;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...) {
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "chat: FAILED: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    exit(1);
}

/* Checks a status: on error prints the call, the status name and rmw_last_error_message(). */
#define CHECK(call)                                                                              \
    do {                                                                                         \
        rmw_status_t st_ = (call);                                                               \
        if (st_ != RMW_OK)                                                                       \
            die("%s:%d: %s returned %s: %s", __FILE__, __LINE__, #call,                          \
                rmw_status_string((int32_t)st_), rmw_last_error_message());                      \
    } while (0)

/* Last resort if a library call itself never returns. */
static void on_alarm(int sig) {
    static const char msg[] = "chat: FAILED: timed out (hard limit reached inside a library call)\n";
    (void)sig;
    if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) { /* nothing more to do */
    }
    _exit(2);
}

static void check_deadline(const char *waiting_for) {
    if (now_seconds() - g_start > TIMEOUT_SECONDS)
        die("timed out after %d s waiting for %s", TIMEOUT_SECONDS, waiting_for);
}

static void on_log(int32_t level, const char *target, const char *message, void *user_data) {
    (void)user_data;
    fprintf(stderr, "[log %d %s] %s\n", (int)level, target, message);
}

/* ---- bob: events by callback ----------------------------------------------------------- */

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int signaling_connected;
    int discovered_alice;
    int channel_open;
    int texts_received;  /* in order, checked against ALICE_SAYS */
    int binary_received;
    char error[512];     /* first unexpected thing seen on bob's event thread */
} bob_state_t;

static void bob_fail(bob_state_t *b, const char *what, const char *detail) {
    if (b->error[0] == '\0')
        snprintf(b->error, sizeof b->error, "%s%s%s", what, detail ? ": " : "", detail ? detail : "");
}

/* Runs on bob's event thread. `ev` and its pointers are valid only until this returns. */
static void on_bob_event(const rmw_event_t *ev, void *user_data) {
    bob_state_t *b = (bob_state_t *)user_data;
    pthread_mutex_lock(&b->lock);
    switch (ev->kind) {
    case RMW_EVENT_SIGNALING_CONNECTED:
        printf("bob: on the signaling server\n");
        b->signaling_connected = 1;
        break;
    case RMW_EVENT_PEER_DISCOVERED:
        printf("bob: discovered %s\n", ev->peer_id);
        if (strcmp(ev->peer_id, "alice") == 0)
            b->discovered_alice = 1;
        break;
    case RMW_EVENT_DATA_CHANNEL_OPEN:
        printf("bob: channel \"%s\" to %s is open\n", ev->label, ev->peer_id);
        if (strcmp(ev->peer_id, "alice") == 0 && strcmp(ev->label, "data") == 0)
            b->channel_open = 1;
        break;
    case RMW_EVENT_DATA_CHANNEL_MESSAGE:
        if (!ev->binary) {
            /* Text is UTF-8 and NOT NUL-terminated: always use ev->len. */
            printf("bob got: %.*s\n", (int)ev->len, (const char *)ev->data);
            if (b->texts_received >= N_TEXTS || ev->len != strlen(ALICE_SAYS[b->texts_received]) ||
                memcmp(ev->data, ALICE_SAYS[b->texts_received], ev->len) != 0)
                bob_fail(b, "bob: unexpected text message", NULL);
            else
                b->texts_received++;
        } else {
            /* One printf per line: alice prints from another thread meanwhile. */
            char hex[3 * 64 + 1] = "";
            size_t i;
            for (i = 0; i < ev->len && i < 64; i++)
                snprintf(hex + 3 * i, sizeof hex - 3 * i, " %02x", ev->data[i]);
            printf("bob got binary (%u bytes):%s\n", (unsigned)ev->len, hex);
            if (ev->len != sizeof BINARY || memcmp(ev->data, BINARY, sizeof BINARY) != 0)
                bob_fail(b, "bob: binary message corrupted", NULL);
            else
                b->binary_received++;
        }
        break;
    case RMW_EVENT_PEER_STATE_CHANGED:
        if (ev->peer_state == RMW_PEER_FAILED)
            bob_fail(b, "bob: the connection failed", ev->peer_id);
        break;
    case RMW_EVENT_ERROR:
        bob_fail(b, "bob: error event", ev->message);
        break;
    default:
        break;
    }
    fflush(stdout);
    pthread_cond_broadcast(&b->changed);
    pthread_mutex_unlock(&b->lock);
}

/* Waits until *flag >= want (flag is a field of bob_state_t, read under the lock). */
static void bob_wait(bob_state_t *b, const int *flag, int want, const char *what) {
    pthread_mutex_lock(&b->lock);
    while (*flag < want && b->error[0] == '\0') {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&b->changed, &b->lock, &ts);
        if (now_seconds() - g_start > TIMEOUT_SECONDS) {
            pthread_mutex_unlock(&b->lock);
            die("timed out after %d s waiting for %s", TIMEOUT_SECONDS, what);
        }
    }
    if (b->error[0] != '\0') {
        pthread_mutex_unlock(&b->lock);
        die("%s (while waiting for %s)", b->error, what);
    }
    pthread_mutex_unlock(&b->lock);
}

/* ---- alice: events by polling ---------------------------------------------------------- */

typedef struct {
    int signaling_connected;
    int discovered_bob;
    int channel_open;
    int texts_received;
} alice_state_t;

/* Polls one event (waiting up to 100 ms) and handles it. */
static void alice_poll_once(rmw_transport_t alice, alice_state_t *a) {
    rmw_event_t ev;
    rmw_status_t st = rmw_transport_poll_event(alice, &ev, 100);
    if (st == RMW_ERR_TIMEOUT)
        return;
    if (st != RMW_OK)
        die("rmw_transport_poll_event(alice) returned %s: %s", rmw_status_string((int32_t)st),
            rmw_last_error_message());
    switch (ev.kind) {
    case RMW_EVENT_SIGNALING_CONNECTED:
        printf("alice: on the signaling server\n");
        a->signaling_connected = 1;
        break;
    case RMW_EVENT_PEER_DISCOVERED:
        printf("alice: discovered %s\n", ev.peer_id);
        if (strcmp(ev.peer_id, "bob") == 0)
            a->discovered_bob = 1;
        break;
    case RMW_EVENT_PEER_STATE_CHANGED:
        if (ev.peer_state == RMW_PEER_CONNECTED)
            printf("alice: connected to %s\n", ev.peer_id);
        else if (ev.peer_state == RMW_PEER_FAILED)
            die("alice: the connection to %s failed", ev.peer_id);
        break;
    case RMW_EVENT_DATA_CHANNEL_OPEN:
        printf("alice: channel \"%s\" to %s is open\n", ev.label, ev.peer_id);
        if (strcmp(ev.peer_id, "bob") == 0 && strcmp(ev.label, "data") == 0)
            a->channel_open = 1;
        break;
    case RMW_EVENT_DATA_CHANNEL_MESSAGE:
        if (ev.binary)
            die("alice: unexpected binary message");
        printf("alice got: %.*s\n", (int)ev.len, (const char *)ev.data);
        if (a->texts_received >= N_TEXTS || ev.len != strlen(BOB_SAYS[a->texts_received]) ||
            memcmp(ev.data, BOB_SAYS[a->texts_received], ev.len) != 0)
            die("alice: unexpected text message");
        a->texts_received++;
        break;
    case RMW_EVENT_ERROR:
        die("alice: error event: %s", ev.message ? ev.message : "(no message)");
        break;
    default:
        break;
    }
    fflush(stdout);
    rmw_event_release(&ev); /* every polled event is given back */
}

static void alice_wait(rmw_transport_t alice, alice_state_t *a, const int *flag, int want, const char *what) {
    while (*flag < want) {
        check_deadline(what);
        alice_poll_once(alice, a);
    }
}

/* ---- the chat -------------------------------------------------------------------------- */

static void send_text(rmw_transport_t from, const char *to, const char *text) {
    size_t sent_to = 0;
    CHECK(rmw_transport_send_data(from, to, (const uint8_t *)text, strlen(text), false, &sent_to));
    if (sent_to != 1)
        die("message \"%s\" went to %u peers, expected 1", text, (unsigned)sent_to);
}

int main(void) {
    rmw_signaling_server_t server = 0;
    rmw_transport_t alice = 0, bob = 0;
    alice_state_t a;
    bob_state_t b;
    char url[256], config[512], id[64];
    size_t len;
    uint16_t port = 0;
    const char *log_level = getenv("RMW_LOG");
    int i;

    g_start = now_seconds();
    signal(SIGALRM, on_alarm);
    alarm(TIMEOUT_SECONDS + 2);

    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    pthread_mutex_init(&b.lock, NULL);
    pthread_cond_init(&b.changed, NULL);

    printf("remotemedia-webrtc %s (ABI %u)\n", rmw_version(), (unsigned)rmw_abi_version());
    if (rmw_abi_version() != RMW_ABI_VERSION)
        die("library ABI %u, header ABI %u", (unsigned)rmw_abi_version(), (unsigned)RMW_ABI_VERSION);
    if (log_level && *log_level)
        CHECK(rmw_set_log_callback(on_log, NULL, (int32_t)atoi(log_level)));

    /* 1. The embedded signaling server, on a free loopback port. */
    CHECK(rmw_signaling_server_start("127.0.0.1:0", 0, &server));
    CHECK(rmw_signaling_server_port(server, &port));
    len = sizeof url; /* size-query pattern: capacity in, size needed out */
    CHECK(rmw_signaling_server_url(server, url, &len));
    printf("signaling server on %s (port %u)\n", url, (unsigned)port);

    /* 2. Two transports. Bob gets his callback right away; events that came before it are
     *    delivered to it first. */
    snprintf(config, sizeof config,
             "{\"signaling_url\":\"%s\",\"peer_id\":\"alice\",\"ice_policy\":\"loopback\"}", url);
    CHECK(rmw_transport_new(config, &alice));
    snprintf(config, sizeof config,
             "{\"signaling_url\":\"%s\",\"peer_id\":\"bob\",\"ice_policy\":\"loopback\"}", url);
    CHECK(rmw_transport_new(config, &bob));
    CHECK(rmw_transport_set_event_callback(bob, on_bob_event, &b));
    len = sizeof id;
    CHECK(rmw_transport_peer_id(alice, id, &len));
    printf("created transports %s and bob\n", id);

    /* 3. Both on the server, each knowing the other. */
    alice_wait(alice, &a, &a.signaling_connected, 1, "alice to reach the signaling server");
    alice_wait(alice, &a, &a.discovered_bob, 1, "alice to discover bob");
    bob_wait(&b, &b.signaling_connected, 1, "bob to reach the signaling server");
    bob_wait(&b, &b.discovered_alice, 1, "bob to discover alice");

    /* 4. Alice offers; the default "data" channel opens on both sides. */
    CHECK(rmw_transport_connect_peer(alice, "bob"));
    alice_wait(alice, &a, &a.channel_open, 1, "alice's data channel to open");
    bob_wait(&b, &b.channel_open, 1, "bob's data channel to open");

    /* 5. Text both ways, then one binary message (with NUL bytes) from alice to bob. */
    for (i = 0; i < N_TEXTS; i++)
        send_text(alice, "bob", ALICE_SAYS[i]);
    for (i = 0; i < N_TEXTS; i++)
        send_text(bob, "alice", BOB_SAYS[i]);
    {
        size_t sent_to = 0;
        CHECK(rmw_transport_send_data(alice, "bob", BINARY, sizeof BINARY, true, &sent_to));
        if (sent_to != 1)
            die("binary message went to %u peers, expected 1", (unsigned)sent_to);
    }
    alice_wait(alice, &a, &a.texts_received, N_TEXTS, "alice to receive bob's messages");
    bob_wait(&b, &b.texts_received, N_TEXTS, "bob to receive alice's messages");
    bob_wait(&b, &b.binary_received, 1, "bob to receive the binary message");

    /* 6. Clean up. rmw_transport_free(bob) returns after bob's last callback has returned,
     *    so bob's state can be destroyed afterwards. */
    CHECK(rmw_transport_free(alice));
    CHECK(rmw_transport_free(bob));
    CHECK(rmw_signaling_server_stop(server));
    pthread_cond_destroy(&b.changed);
    pthread_mutex_destroy(&b.lock);
    if (b.error[0] != '\0')
        die("%s", b.error);

    printf("chat: OK (%.1f s)\n", now_seconds() - g_start);
    return 0;
}
