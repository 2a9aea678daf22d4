/*
 * An event callback frees its own transport (rmw_transport_free from inside the callback):
 *   A. on RMW_EVENT_SIGNALING_CONNECTED, with no peer;
 *   B. on a data-channel message, with a live peer connection (bob frees himself while
 *      connected to alice).
 * The free must return RMW_OK inside the callback, no callback may run after it, the handle
 * must then be invalid, and the program must exit cleanly.
 */
#include "test_util.h"

#include <stdatomic.h>

typedef struct {
    atomic_int calls;         /* callbacks entered */
    atomic_int late;          /* callbacks entered after the free returned */
    atomic_int freed;         /* 1 once rmw_transport_free returned inside the callback */
    atomic_int free_status;   /* what it returned */
    atomic_int after_status;  /* rmw_transport_peer_id on the freed handle, inside the callback */
    rmw_event_kind_t trigger; /* the event kind that makes the callback free its transport */
} self_free_t;

static void on_event(const rmw_event_t *ev, void *user_data) {
    self_free_t *s = (self_free_t *)user_data;
    atomic_fetch_add(&s->calls, 1);
    if (atomic_load(&s->freed)) {
        atomic_fetch_add(&s->late, 1);
        return;
    }
    if (ev->kind == s->trigger) {
        char buf[64];
        size_t len = sizeof buf;
        rmw_status_t st = rmw_transport_free(ev->transport);
        atomic_store(&s->free_status, (int)st);
        atomic_store(&s->after_status, (int)rmw_transport_peer_id(ev->transport, buf, &len));
        atomic_store(&s->freed, 1);
    }
}

static void init(self_free_t *s, rmw_event_kind_t trigger) {
    atomic_init(&s->calls, 0);
    atomic_init(&s->late, 0);
    atomic_init(&s->freed, 0);
    atomic_init(&s->free_status, 1);
    atomic_init(&s->after_status, 1);
    s->trigger = trigger;
}

static void wait_freed(self_free_t *s, const char *what) {
    double deadline = now_s() + 15;
    while (!atomic_load(&s->freed)) {
        if (now_s() > deadline)
            die("%s: the callback did not free its transport within 15 s (%d callbacks)", what,
                atomic_load(&s->calls));
        sleep_ms(10);
    }
    if (atomic_load(&s->free_status) != RMW_OK)
        die("%s: rmw_transport_free inside the callback returned %s", what,
            rmw_status_string(atomic_load(&s->free_status)));
    if (atomic_load(&s->after_status) != RMW_ERR_INVALID_HANDLE)
        die("%s: the freed handle gave %s inside the callback, expected RMW_ERR_INVALID_HANDLE", what,
            rmw_status_string(atomic_load(&s->after_status)));
    sleep_ms(300); /* room for a late callback, which must not come */
    if (atomic_load(&s->late) != 0)
        die("%s: %d callbacks ran after rmw_transport_free returned", what, atomic_load(&s->late));
}

int main(void) {
    char url[128];
    rmw_signaling_server_t server;
    self_free_t a, b;
    rmw_transport_t solo, alice, bob;

    watchdog(40);
    server = start_server(url, sizeof url);

    /* A: free on the first event. */
    init(&a, RMW_EVENT_SIGNALING_CONNECTED);
    solo = new_transport(url, "solo");
    CHECK(rmw_transport_set_event_callback(solo, on_event, &a));
    wait_freed(&a, "A (no peer)");
    if (rmw_transport_free(solo) != RMW_ERR_INVALID_HANDLE)
        die("A: freeing again did not give RMW_ERR_INVALID_HANDLE");
    if (rmw_transport_set_event_callback(solo, on_event, &a) != RMW_ERR_INVALID_HANDLE)
        die("A: setting a callback on the freed transport did not give RMW_ERR_INVALID_HANDLE");
    printf("A: callback freed its transport (%d callbacks, none late)\n", atomic_load(&a.calls));

    /* B: bob frees himself on alice's message, while connected. */
    init(&b, RMW_EVENT_DATA_CHANNEL_MESSAGE);
    alice = new_transport(url, "alice");
    bob = new_transport(url, "bob");
    /* bob polls until his side is open, then hands over to the callback. */
    connect_pair(alice, "alice", bob, "bob");
    CHECK(rmw_transport_set_event_callback(bob, on_event, &b));
    {
        const char msg[] = "free yourself";
        size_t sent = 0;
        CHECK(rmw_transport_send_data(alice, "bob", (const uint8_t *)msg, sizeof msg - 1, false, &sent));
        if (sent != 1)
            die("B: message went to %u peers", (unsigned)sent);
    }
    wait_freed(&b, "B (connected)");
    if (rmw_transport_free(bob) != RMW_ERR_INVALID_HANDLE)
        die("B: freeing bob again did not give RMW_ERR_INVALID_HANDLE");
    /* alice sees bob leave the signaling server. */
    poll_until(alice, RMW_EVENT_PEER_LEFT, "bob", NULL, 15);
    printf("B: bob freed himself inside his callback while connected (%d callbacks, none late); alice saw him leave\n",
           atomic_load(&b.calls));

    CHECK(rmw_transport_free(alice));
    CHECK(rmw_signaling_server_stop(server));
    printf("callback_free_self: OK\n");
    return 0;
}
