/*
 * Argument checks of the C API that need a live object or a specific value:
 * invalid UTF-8, the size-query pattern, configuration errors, status names, the
 * thread-local last error, and rmw_event_release on odd input.
 *
 * Built by tests/c_api.rs with -DEXPECTED_VERSION="\"x.y.z\"" (the crate version).
 * Prints "FAIL ..." lines and exits 1 if anything is wrong.
 */
#include "test_util.h"

#ifndef EXPECTED_VERSION
#error "build with -DEXPECTED_VERSION=\"\\\"x.y.z\\\"\""
#endif

/* `call` must return `want`; on an error status the last error message must be non-empty. Unlike
 * test_util.h's EXPECT, a failure names the last error message even when the call returned RMW_OK
 * (the message of an earlier call, then). */
#undef EXPECT
#define EXPECT(call, want)                                                                         \
    do {                                                                                           \
        rmw_status_t got_ = (call);                                                                \
        if (got_ != (want))                                                                        \
            FAILF("%s returned %s, expected %s (%s)", #call, rmw_status_string((int32_t)got_),        \
                  rmw_status_string((int32_t)(want)), rmw_last_error_message());                   \
        else if ((want) != RMW_OK && rmw_last_error_message()[0] == '\0')                           \
            FAILF("%s: no error message", #call);                                                  \
    } while (0)

static const char CONFIG[] =
    "{\"signaling_url\":\"ws://127.0.0.1:9\",\"peer_id\":\"size-query-peer\",\"ice_policy\":\"loopback\"}";

/* ---- invalid UTF-8 ---------------------------------------------------------------------- */

static void invalid_utf8(rmw_transport_t t) {
    static const char *const bad[] = {"\xff\xfe", "bo\xc3\x28", "\xed\xa0\x80" /* surrogate */, "\xc0\xaf" /* overlong */};
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rmw_peer_state_t state = RMW_PEER_NEW;
        rmw_data_channel_t ch = 0;
        size_t len = 0;
        char buf[64];
        EXPECT(rmw_transport_connect_peer(t, bad[i]), RMW_ERR_INVALID_ARGUMENT);
        EXPECT(rmw_transport_accept_peer(t, bad[i]), RMW_ERR_INVALID_ARGUMENT);
        EXPECT(rmw_transport_disconnect_peer(t, bad[i]), RMW_ERR_INVALID_ARGUMENT);
        EXPECT(rmw_transport_peer_state(t, bad[i], &state), RMW_ERR_INVALID_ARGUMENT);
        EXPECT(rmw_transport_send_data(t, bad[i], (const uint8_t *)"x", 1, false, &len), RMW_ERR_INVALID_ARGUMENT);
        EXPECT(rmw_data_channel_create(t, bad[i], "label", NULL, &ch), RMW_ERR_INVALID_ARGUMENT);
        EXPECT(rmw_data_channel_create(t, "peer", bad[i], NULL, &ch), RMW_ERR_INVALID_ARGUMENT);
        EXPECT(rmw_session_create(t, bad[i]), RMW_ERR_INVALID_ARGUMENT);
        EXPECT(rmw_session_add_peer(t, "room", bad[i]), RMW_ERR_INVALID_ARGUMENT);
        len = sizeof buf;
        EXPECT(rmw_session_get(t, bad[i], buf, &len), RMW_ERR_INVALID_ARGUMENT);
        {
            rmw_signaling_server_t server = 0;
            EXPECT(rmw_signaling_server_start(bad[i], 0, &server), RMW_ERR_INVALID_ARGUMENT);
            EXPECT_TRUE(server == 0, "rmw_signaling_server_start wrote *out on error");
        }
        {
            rmw_transport_t out = 0x77;
            EXPECT(rmw_transport_new(bad[i], &out), RMW_ERR_INVALID_ARGUMENT);
            EXPECT_TRUE(out == 0x77, "rmw_transport_new wrote *out on error");
        }
        EXPECT_TRUE(state == RMW_PEER_NEW && ch == 0, "an out-parameter was written on error");
    }
    /* A peer id with invalid UTF-8 inside the JSON configuration. */
    {
        rmw_transport_t out = 0x77;
        EXPECT(rmw_transport_new("{\"peer_id\":\"\xff\"}", &out), RMW_ERR_INVALID_ARGUMENT);
        EXPECT_TRUE(out == 0x77, "rmw_transport_new wrote *out on error");
    }
}

/* ---- size-query pattern ----------------------------------------------------------------- */

static void size_query(rmw_transport_t t) {
    const char *id = "size-query-peer";
    const size_t needed = strlen(id) + 1;
    char buf[64];
    size_t len;

    len = 0; /* buf NULL: only asks for the size */
    EXPECT(rmw_transport_peer_id(t, NULL, &len), RMW_OK);
    EXPECT_TRUE(len == needed, "size query gave %zu, expected %zu", len, needed);

    len = 1000; /* buf NULL with a capacity: still only the size */
    EXPECT(rmw_transport_peer_id(t, NULL, &len), RMW_OK);
    EXPECT_TRUE(len == needed, "size query (capacity 1000) gave %zu, expected %zu", len, needed);

    memset(buf, 'Z', sizeof buf);
    len = needed - 1; /* one byte short: no room for the NUL */
    EXPECT(rmw_transport_peer_id(t, buf, &len), RMW_ERR_BUFFER_TOO_SMALL);
    EXPECT_TRUE(len == needed, "too-small buffer: *len is %zu, expected the needed %zu", len, needed);

    len = 0; /* zero capacity with a buffer */
    EXPECT(rmw_transport_peer_id(t, buf, &len), RMW_ERR_BUFFER_TOO_SMALL);
    EXPECT_TRUE(len == needed, "zero capacity: *len is %zu, expected %zu", len, needed);
    EXPECT_TRUE(all_bytes(buf, sizeof buf, 'Z'), "the buffer was written although it was too small");

    len = needed; /* exact */
    EXPECT(rmw_transport_peer_id(t, buf, &len), RMW_OK);
    EXPECT_TRUE(len == needed && strcmp(buf, id) == 0, "exact buffer: got \"%.*s\" len %zu", 60, buf, len);

    memset(buf, 'Z', sizeof buf);
    len = sizeof buf; /* larger */
    EXPECT(rmw_transport_peer_id(t, buf, &len), RMW_OK);
    EXPECT_TRUE(len == needed && strcmp(buf, id) == 0, "large buffer: got \"%.*s\" len %zu", 60, buf, len);

    EXPECT(rmw_transport_peer_id(t, buf, NULL), RMW_ERR_INVALID_ARGUMENT);
    EXPECT(rmw_transport_peer_id(t, NULL, NULL), RMW_ERR_INVALID_ARGUMENT);

    /* The same pattern on a JSON result. */
    len = 0;
    EXPECT(rmw_transport_stats_json(t, NULL, &len), RMW_OK);
    EXPECT_TRUE(len > 2, "stats size %zu", len);
    {
        char *json = (char *)malloc(len);
        size_t cap = len;
        EXPECT_TRUE(json != NULL, "malloc");
        EXPECT(rmw_transport_stats_json(t, json, &cap), RMW_OK);
        EXPECT_TRUE(cap == len && json[0] == '{' && strlen(json) + 1 == len, "stats JSON: %s", json);
        free(json);
    }
}

/* ---- configuration errors ---------------------------------------------------------------- */

static void config_error(const char *json, const char *field) {
    rmw_transport_t out = 0x77;
    rmw_status_t st = rmw_transport_new(json, &out);
    if (st != RMW_ERR_CONFIG) {
        FAILF("rmw_transport_new(%s) returned %s, expected RMW_ERR_CONFIG (%s)", json, rmw_status_string((int32_t)st),
              rmw_last_error_message());
        if (st == RMW_OK)
            rmw_transport_free(out);
        return;
    }
    EXPECT_TRUE(out == 0x77, "rmw_transport_new(%s) wrote *out on error", json);
    EXPECT_TRUE(rmw_last_error_message()[0] != '\0', "rmw_transport_new(%s): no error message", json);
    if (field != NULL)
        EXPECT_TRUE(strstr(rmw_last_error_message(), field) != NULL,
                    "rmw_transport_new(%s): the message does not name %s: \"%s\"", json, field, rmw_last_error_message());
    printf("config %s -> %s\n", json, rmw_last_error_message());
}

static void config_errors(void) {
    config_error("{\"max_peers\":0}", "max_peers");
    config_error("{\"max_peers\":1000000}", "max_peers");
    config_error("{\"event_queue_capacity\":0}", "event_queue_capacity");
    config_error("{\"signaling_url\":\"http://127.0.0.1:9\"}", "signaling_url");
    config_error("{\"no_such_field\":1}", "no_such_field");
    config_error("{", NULL);
    config_error("{\"peer_id\":\"a\",}", NULL);
    config_error("\"just a string\"", NULL);
    config_error("42", NULL);
    /* Type errors: rejected; naming the field is not asserted (see the report). */
    config_error("{\"max_peers\":\"ten\"}", NULL);
    config_error("{\"ice_policy\":\"sideways\"}", NULL);
    config_error("{\"max_peers\":-1}", NULL);
}

/* ---- status names, version, thread-local errors ------------------------------------------ */

static void statuses_and_version(void) {
    static const struct {
        rmw_status_t st;
        const char *name;
    } names[] = {
        {RMW_OK, "RMW_OK"},
        {RMW_ERR_INVALID_ARGUMENT, "RMW_ERR_INVALID_ARGUMENT"},
        {RMW_ERR_INVALID_HANDLE, "RMW_ERR_INVALID_HANDLE"},
        {RMW_ERR_BUFFER_TOO_SMALL, "RMW_ERR_BUFFER_TOO_SMALL"},
        {RMW_ERR_TIMEOUT, "RMW_ERR_TIMEOUT"},
        {RMW_ERR_NOT_FOUND, "RMW_ERR_NOT_FOUND"},
        {RMW_ERR_ALREADY_EXISTS, "RMW_ERR_ALREADY_EXISTS"},
        {RMW_ERR_MAX_PEERS, "RMW_ERR_MAX_PEERS"},
        {RMW_ERR_NOT_CONNECTED, "RMW_ERR_NOT_CONNECTED"},
        {RMW_ERR_SIGNALING, "RMW_ERR_SIGNALING"},
        {RMW_ERR_WEBRTC, "RMW_ERR_WEBRTC"},
        {RMW_ERR_CONFIG, "RMW_ERR_CONFIG"},
        {RMW_ERR_IO, "RMW_ERR_IO"},
        {RMW_ERR_CLOSED, "RMW_ERR_CLOSED"},
        {RMW_ERR_WOULD_BLOCK, "RMW_ERR_WOULD_BLOCK"},
        {RMW_ERR_INTERNAL, "RMW_ERR_INTERNAL"},
        {RMW_ERR_QUEUE_FULL, "RMW_ERR_QUEUE_FULL"},
        {RMW_ERR_CODEC, "RMW_ERR_CODEC"},
    };
    static const int32_t unknown[] = {1, -18, 100, -1000, INT32_MIN, INT32_MAX};
    size_t i;
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *s = rmw_status_string((int32_t)names[i].st);
        EXPECT_TRUE(s != NULL && strcmp(s, names[i].name) == 0, "rmw_status_string(%d) is %s", (int)names[i].st,
                    s ? s : "NULL");
    }
    for (i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *s = rmw_status_string(unknown[i]);
        EXPECT_TRUE(s != NULL && strcmp(s, "RMW_ERR_UNKNOWN") == 0, "rmw_status_string(%ld) is %s", (long)unknown[i],
                    s ? s : "NULL");
    }
    EXPECT_TRUE(strcmp(rmw_version(), EXPECTED_VERSION) == 0, "rmw_version() is %s, expected %s", rmw_version(),
                EXPECTED_VERSION);
    EXPECT_TRUE(rmw_abi_version() == RMW_ABI_VERSION, "rmw_abi_version() %u != RMW_ABI_VERSION %u",
                (unsigned)rmw_abi_version(), (unsigned)RMW_ABI_VERSION);
    EXPECT(rmw_set_log_callback(NULL, NULL, 0), RMW_ERR_INVALID_ARGUMENT);
    EXPECT(rmw_set_log_callback(NULL, NULL, 6), RMW_ERR_INVALID_ARGUMENT);
    EXPECT(rmw_set_log_callback(NULL, NULL, RMW_LOG_ERROR), RMW_OK); /* logging off: the default */
    {
        rmw_data_channel_options_t o = rmw_data_channel_options_default();
        EXPECT_TRUE(o.ordered && o.max_retransmits == -1 && o.max_packet_lifetime_ms == -1,
                    "rmw_data_channel_options_default is not ordered and reliable");
    }
}

static void *fresh_thread(void *arg) {
    const char *msg = rmw_last_error_message();
    *(int *)arg = (msg != NULL && msg[0] == '\0') ? 1 : 0;
    /* An error here is not seen by the main thread. */
    (void)rmw_transport_free(UINT64_C(0x0100000000abcdef));
    return NULL;
}

static void thread_local_errors(void) {
    pthread_t th;
    int fresh_empty = 0;
    char before[256];
    EXPECT(rmw_transport_connect_peer(0, "bob"), RMW_ERR_INVALID_HANDLE);
    snprintf(before, sizeof before, "%s", rmw_last_error_message());
    EXPECT_TRUE(pthread_create(&th, NULL, fresh_thread, &fresh_empty) == 0, "pthread_create");
    pthread_join(th, NULL);
    EXPECT_TRUE(fresh_empty, "rmw_last_error_message() on a new thread is not \"\"");
    EXPECT_TRUE(strcmp(before, rmw_last_error_message()) == 0,
                "another thread's error replaced this thread's message: \"%s\"", rmw_last_error_message());
    EXPECT_TRUE(strstr(before, "rmw_transport_connect_peer") != NULL, "the message does not name the function: %s",
                before);
}

/* ---- events ------------------------------------------------------------------------------ */

static void event_release(rmw_transport_t t) {
    rmw_event_t ev;
    rmw_status_t st;
    int i;
    rmw_event_release(NULL);
    memset(&ev, 0, sizeof ev);
    rmw_event_release(&ev); /* zeroed: no-op */
    rmw_event_release(&ev);
    /* The dead signaling URL produces events (disconnects, errors) eventually; poll a few
     * and release each twice. Timeouts are fine too. */
    for (i = 0; i < 3; i++) {
        st = rmw_transport_poll_event(t, &ev, 50);
        if (st == RMW_OK) {
            EXPECT_TRUE(ev.transport == t, "event of transport %#llx from transport %#llx",
                        (unsigned long long)ev.transport, (unsigned long long)t);
            rmw_event_release(&ev);
            EXPECT_TRUE(ev.internal == NULL && ev.peer_id == NULL && ev.message == NULL && ev.data == NULL,
                        "rmw_event_release did not zero the event");
            rmw_event_release(&ev); /* released before: no-op */
        } else if (st != RMW_ERR_TIMEOUT) {
            FAILF("rmw_transport_poll_event: %s: %s", rmw_status_string((int32_t)st), rmw_last_error_message());
        }
    }
    EXPECT(rmw_transport_poll_event(t, NULL, 0), RMW_ERR_INVALID_ARGUMENT);
    /* Switching to a callback and back to polling. */
    EXPECT(rmw_transport_set_event_callback(t, NULL, NULL), RMW_OK);
}

/* The first SIGNALING_CONNECTED or ERROR event of `t` (0 if neither within 10 s). */
static rmw_event_kind_t first_signaling_outcome(rmw_transport_t t) {
    rmw_event_t ev;
    int i;
    for (i = 0; i < 200; i++) {
        if (rmw_transport_poll_event(t, &ev, 50) != RMW_OK)
            continue;
        rmw_event_kind_t k = ev.kind;
        rmw_event_release(&ev);
        if (k == RMW_EVENT_SIGNALING_CONNECTED || k == RMW_EVENT_ERROR)
            return k;
    }
    return RMW_EVENT_NONE;
}

/* An authenticated server admits the transport with its secret and refuses the other. */
static void authenticated_server(void) {
    rmw_signaling_server_t s = 0x77;
    char url[128], cfg[512];
    size_t len = sizeof url;
    rmw_transport_t good = 0, bad = 0;
    EXPECT(rmw_signaling_server_start_authenticated("127.0.0.1:0", 0, 3, "k", &s), RMW_ERR_INVALID_ARGUMENT);
    EXPECT(rmw_signaling_server_start_authenticated("127.0.0.1:0", 0, RMW_AUTH_SHARED_SECRET, "", &s), RMW_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(s == 0x77, "wrote *out on error");
    EXPECT(rmw_signaling_server_start_authenticated("127.0.0.1:0", 0, RMW_AUTH_SHARED_SECRET, "opensesame", &s), RMW_OK);
    EXPECT(rmw_signaling_server_url(s, url, &len), RMW_OK);
    snprintf(cfg, sizeof cfg, "{\"signaling_url\":\"%s\",\"peer_id\":\"good\",\"ice_policy\":\"loopback\",\"signaling_token\":\"opensesame\"}", url);
    EXPECT(rmw_transport_new(cfg, &good), RMW_OK);
    snprintf(cfg, sizeof cfg, "{\"signaling_url\":\"%s\",\"peer_id\":\"bad\",\"ice_policy\":\"loopback\",\"signaling_token\":\"guess\"}", url);
    EXPECT(rmw_transport_new(cfg, &bad), RMW_OK);
    EXPECT_TRUE(first_signaling_outcome(good) == RMW_EVENT_SIGNALING_CONNECTED, "the right token was not admitted");
    EXPECT_TRUE(first_signaling_outcome(bad) == RMW_EVENT_ERROR, "the wrong token was not refused");
    EXPECT(rmw_transport_free(good), RMW_OK);
    EXPECT(rmw_transport_free(bad), RMW_OK);
    EXPECT(rmw_signaling_server_stop(s), RMW_OK);
}

int main(void) {
    rmw_transport_t t = 0;
    rmw_status_t st;
    int failures;
    g_prog.timeout = "api_checks timed out";
    watchdog(30);

    statuses_and_version();
    thread_local_errors();
    config_errors();

    st = rmw_transport_new(CONFIG, &t);
    if (st != RMW_OK) {
        printf("FAIL: rmw_transport_new: %s: %s\n", rmw_status_string((int32_t)st), rmw_last_error_message());
        return 1;
    }
    invalid_utf8(t);
    size_query(t);
    event_release(t);
    EXPECT(rmw_transport_free(t), RMW_OK);
    EXPECT(rmw_transport_free(t), RMW_ERR_INVALID_HANDLE);
    EXPECT(rmw_transport_free(0), RMW_OK);
    EXPECT(rmw_signaling_server_stop(0), RMW_OK);
    authenticated_server();

    failures = atomic_load(&g_failures);
    printf("api_checks: %s (%d failures)\n", failures ? "FAILED" : "OK", failures);
    return failures ? 1 : 0;
}
