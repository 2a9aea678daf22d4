/*
 * Another thread frees a transport while polls are blocked on it (timeout -1, and a long
 * finite timeout). Every blocked poll must return RMW_ERR_CLOSED or RMW_ERR_INVALID_HANDLE
 * promptly, rmw_transport_free must return RMW_OK, and nothing may crash.
 */
#include "test_util.h"

#include <pthread.h>
#include <stdatomic.h>

#define N_POLLERS 4

typedef struct {
    rmw_transport_t t;
    int32_t timeout_ms;
    atomic_int returned;
    atomic_int status;
    atomic_int events;
} poller_t;

static void *poll_loop(void *arg) {
    poller_t *p = (poller_t *)arg;
    for (;;) {
        rmw_event_t ev;
        rmw_status_t st = rmw_transport_poll_event(p->t, &ev, p->timeout_ms);
        if (st == RMW_OK) {
            atomic_fetch_add(&p->events, 1);
            rmw_event_release(&ev);
            continue;
        }
        if (st == RMW_ERR_TIMEOUT && p->timeout_ms >= 0 && p->timeout_ms < 1000)
            continue;
        atomic_store(&p->status, (int)st);
        atomic_store(&p->returned, 1);
        return NULL;
    }
}

int main(void) {
    char url[128];
    rmw_signaling_server_t server;
    rmw_transport_t t;
    poller_t p[N_POLLERS];
    pthread_t th[N_POLLERS];
    static const int32_t timeouts[N_POLLERS] = {-1, -1, 60000, 10};
    int i, n_returned;
    double freed_at, deadline;
    rmw_event_t ev;

    watchdog(30);
    server = start_server(url, sizeof url);
    t = new_transport(url, "poller");
    poll_until(t, RMW_EVENT_SIGNALING_CONNECTED, NULL, NULL, 15);
    while (rmw_transport_poll_event(t, &ev, 0) == RMW_OK) /* drain */
        rmw_event_release(&ev);

    for (i = 0; i < N_POLLERS; i++) {
        p[i].t = t;
        p[i].timeout_ms = timeouts[i];
        atomic_init(&p[i].returned, 0);
        atomic_init(&p[i].status, 0);
        atomic_init(&p[i].events, 0);
        start_thread(&th[i], poll_loop, &p[i]);
    }
    sleep_ms(300);
    for (i = 0; i < N_POLLERS; i++)
        if (atomic_load(&p[i].returned))
            die("poller %d returned %s before the free", i, rmw_status_string(atomic_load(&p[i].status)));

    CHECK(rmw_transport_free(t));
    freed_at = now_s();
    deadline = freed_at + 10;
    do {
        n_returned = 0;
        for (i = 0; i < N_POLLERS; i++)
            n_returned += atomic_load(&p[i].returned);
        if (n_returned == N_POLLERS)
            break;
        sleep_ms(5);
    } while (now_s() < deadline);
    if (n_returned != N_POLLERS)
        die("%d of %d blocked polls did not return within 10 s of rmw_transport_free", N_POLLERS - n_returned,
            N_POLLERS);
    for (i = 0; i < N_POLLERS; i++) {
        int st = atomic_load(&p[i].status);
        pthread_join(th[i], NULL);
        if (st != RMW_ERR_CLOSED && st != RMW_ERR_INVALID_HANDLE)
            die("poller %d (timeout %d ms) returned %s, expected RMW_ERR_CLOSED or RMW_ERR_INVALID_HANDLE", i,
                (int)timeouts[i], rmw_status_string(st));
        printf("poller %d (timeout %d ms): %s\n", i, (int)timeouts[i], rmw_status_string(st));
    }
    printf("all polls returned within %.3f s of the free\n", now_s() - freed_at);

    /* Polling the freed handle fails at once. */
    if (rmw_transport_poll_event(t, &ev, -1) != RMW_ERR_INVALID_HANDLE)
        die("polling a freed transport did not give RMW_ERR_INVALID_HANDLE");
    CHECK(rmw_signaling_server_stop(server));
    printf("free_during_poll: OK\n");
    return 0;
}
