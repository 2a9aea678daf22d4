/*
 * Support for the bad-input program that tests/c_api.rs generates from the header (on top of
 * test_util.h): the objects the calls are made against, the bad handle values, and the checks.
 *
 * Each call is announced on stdout ("CALL <function> <variant>") before it is made, so that
 * a crash names the call that caused it.
 */
#ifndef RMW_BAD_INPUT_HARNESS_H
#define RMW_BAD_INPUT_HARNESS_H

#include "test_util.h"

/* Handle kinds, in the top byte of a handle. */
#define KIND_SHIFT 56
#define KIND_TRANSPORT 1u
#define KIND_SERVER 2u
#define KIND_CHANNEL 3u
#define ID_MASK ((UINT64_C(1) << KIND_SHIFT) - 1)

static const char DEAD_TRANSPORT_CONFIG[] =
    "{\"signaling_url\":\"ws://127.0.0.1:9\",\"peer_id\":\"x\",\"ice_policy\":\"loopback\"}";
static const char LIVE_TRANSPORT_CONFIG[] =
    "{\"signaling_url\":\"ws://127.0.0.1:9\",\"peer_id\":\"live\",\"ice_policy\":\"loopback\"}";

static rmw_transport_t g_live_transport;
static rmw_signaling_server_t g_live_server;
static rmw_transport_t g_freed_transport;
static rmw_signaling_server_t g_freed_server;

static int g_calls; /* failures: test_util.h's g_failures */
static const char *g_fn = "", *g_variant = "";
static char g_sentinel[256];

UTIL void fatal(const char *what, rmw_status_t st) {
    printf("FATAL: %s: %s: %s\n", what, rmw_status_string((int32_t)st), rmw_last_error_message());
    fflush(stdout);
    exit(2);
}

UTIL void fail(const char *fmt, const char *detail) {
    atomic_fetch_add(&g_failures, 1);
    printf("FAIL %s [%s]: ", g_fn, g_variant);
    printf(fmt, detail);
    printf("\n");
    fflush(stdout);
}

/* A last error that no call under test produces. */
UTIL void set_sentinel_error(void) {
    rmw_status_t st = rmw_set_log_callback(NULL, NULL, -12345);
    if (st == RMW_OK)
        fatal("rmw_set_log_callback(NULL, NULL, -12345) should fail (sentinel)", st);
}

UTIL void harness_setup(void) {
    rmw_status_t st;
    g_prog.timeout = "the bad-input program timed out (a call blocked?)";
    g_prog.timeout_own_line = 1;
    watchdog(60);
    set_sentinel_error();
    snprintf(g_sentinel, sizeof g_sentinel, "%s", rmw_last_error_message());
    if (g_sentinel[0] == '\0')
        fatal("the sentinel error left no message", RMW_OK);

    if ((st = rmw_transport_new(LIVE_TRANSPORT_CONFIG, &g_live_transport)) != RMW_OK)
        fatal("rmw_transport_new (live)", st);
    if ((st = rmw_signaling_server_start("127.0.0.1:0", 0, &g_live_server)) != RMW_OK)
        fatal("rmw_signaling_server_start (live)", st);
    if ((st = rmw_transport_new(DEAD_TRANSPORT_CONFIG, &g_freed_transport)) != RMW_OK)
        fatal("rmw_transport_new (to free)", st);
    if ((st = rmw_transport_free(g_freed_transport)) != RMW_OK)
        fatal("rmw_transport_free", st);
    if ((st = rmw_signaling_server_start("127.0.0.1:0", 0, &g_freed_server)) != RMW_OK)
        fatal("rmw_signaling_server_start (to stop)", st);
    if ((st = rmw_signaling_server_stop(g_freed_server)) != RMW_OK)
        fatal("rmw_signaling_server_stop", st);
    if (g_live_transport >> KIND_SHIFT != KIND_TRANSPORT || g_live_server >> KIND_SHIFT != KIND_SERVER)
        fatal("handles do not carry their kind in the top byte", RMW_OK);
    printf("live transport %#llx, live server %#llx, freed transport %#llx, freed server %#llx\n",
           (unsigned long long)g_live_transport, (unsigned long long)g_live_server,
           (unsigned long long)g_freed_transport, (unsigned long long)g_freed_server);
}

/* ---- bad handle values ------------------------------------------------------------------ */

enum {
    BAD_NEVER_CREATED,
    BAD_NEVER_CREATED_MAX_ID,
    BAD_NO_KIND,
    BAD_UNKNOWN_KIND,
    BAD_ALL_ONES,
    BAD_WRONG_KIND_1,     /* the live transport's id under another kind byte */
    BAD_WRONG_KIND_2,     /* ... under the third kind byte */
    BAD_LIVE_OTHER_KIND,  /* a live handle of another kind, as is */
    BAD_FREED_TRANSPORT,  /* a freed transport handle, as is */
    BAD_FREED_SERVER,     /* a freed server handle, as is */
    BAD_FREED_RETAGGED,   /* the freed transport's id under the slot's kind */
    N_BAD
};

UTIL const char *const BAD_NAMES[N_BAD] = {
    "never-created", "never-created-max-id", "kind-0", "kind-0xff", "all-ones",
    "wrong-kind-1", "wrong-kind-2", "live-handle-of-other-kind", "freed-transport",
    "freed-server", "freed-id-with-slot-kind",
};

UTIL uint64_t with_kind(uint64_t kind, uint64_t id) { return (kind << KIND_SHIFT) | (id & ID_MASK); }

/* The other two kinds than `kind`, in order. */
UTIL uint64_t other_kind(uint64_t kind, int which) {
    uint64_t k[2];
    int n = 0;
    uint64_t c;
    for (c = 1; c <= 3; c++)
        if (c != kind)
            k[n++] = c;
    return k[which];
}

/* The value passed in a handle slot of `kind` for variant `v`. */
UTIL uint64_t bad_handle(uint64_t kind, int v) {
    switch (v) {
    case BAD_NEVER_CREATED: return with_kind(kind, 0xabcdef);
    case BAD_NEVER_CREATED_MAX_ID: return with_kind(kind, ID_MASK);
    case BAD_NO_KIND: return 0xabcdef;
    case BAD_UNKNOWN_KIND: return with_kind(0xff, 1);
    case BAD_ALL_ONES: return UINT64_MAX;
    case BAD_WRONG_KIND_1: return with_kind(other_kind(kind, 0), g_live_transport);
    case BAD_WRONG_KIND_2: return with_kind(other_kind(kind, 1), g_live_transport);
    case BAD_LIVE_OTHER_KIND: return kind == KIND_TRANSPORT ? g_live_server : g_live_transport;
    case BAD_FREED_TRANSPORT: return g_freed_transport;
    case BAD_FREED_SERVER: return g_freed_server;
    case BAD_FREED_RETAGGED: return with_kind(kind, g_freed_transport);
    default: return 0;
    }
}

/* ---- checks ----------------------------------------------------------------------------- */

UTIL void begin(const char *fn, const char *variant) {
    g_fn = fn;
    g_variant = variant;
    g_calls++;
    printf("CALL %s %s\n", fn, variant);
    fflush(stdout);
    set_sentinel_error();
}

UTIL void check_message(void) {
    const char *msg = rmw_last_error_message();
    if (msg == NULL)
        fail("rmw_last_error_message() returned NULL%s", "");
    else if (msg[0] == '\0')
        fail("rmw_last_error_message() is empty after the error%s", "");
    else if (strcmp(msg, g_sentinel) == 0)
        fail("the call failed without setting rmw_last_error_message() (still \"%s\")", msg);
}

/* Any error status, with a message. */
UTIL void expect_error(rmw_status_t st) {
    if (st == RMW_OK) {
        fail("returned RMW_OK%s", "");
        return;
    }
    if (strcmp(rmw_status_string((int32_t)st), "RMW_ERR_UNKNOWN") == 0)
        fail("returned a value that is no status%s", "");
    check_message();
}

UTIL void expect_status(rmw_status_t st, rmw_status_t want) {
    if (st != want) {
        char detail[300];
        snprintf(detail, sizeof detail, "returned %s, expected %s (%s)", rmw_status_string((int32_t)st),
                 rmw_status_string((int32_t)want), st == RMW_OK ? "" : rmw_last_error_message());
        fail("%s", detail);
        return;
    }
    if (want != RMW_OK)
        check_message();
}

UTIL void expect_nonnull_string(const char *s) {
    if (s == NULL)
        fail("returned NULL%s", "");
    else
        (void)strlen(s); /* readable */
}

/* The live objects are untouched by all the bad calls; then they are released. */
UTIL int harness_teardown(int n_functions) {
    char buf[64];
    size_t len = sizeof buf;
    uint16_t port = 0;
    rmw_status_t st;
    g_fn = "teardown";
    g_variant = "live objects";
    if ((st = rmw_transport_peer_id(g_live_transport, buf, &len)) != RMW_OK || strcmp(buf, "live") != 0)
        fail("the live transport was harmed by the bad calls: %s", rmw_last_error_message());
    if ((st = rmw_signaling_server_port(g_live_server, &port)) != RMW_OK || port == 0)
        fail("the live server was harmed by the bad calls: %s", rmw_last_error_message());
    if ((st = rmw_transport_free(g_live_transport)) != RMW_OK)
        fail("rmw_transport_free(live): %s", rmw_last_error_message());
    if ((st = rmw_transport_free(g_live_transport)) != RMW_ERR_INVALID_HANDLE)
        fail("second rmw_transport_free(live) did not give RMW_ERR_INVALID_HANDLE%s", "");
    if ((st = rmw_signaling_server_stop(g_live_server)) != RMW_OK)
        fail("rmw_signaling_server_stop(live): %s", rmw_last_error_message());
    if ((st = rmw_signaling_server_stop(g_live_server)) != RMW_ERR_INVALID_HANDLE)
        fail("second rmw_signaling_server_stop(live) did not give RMW_ERR_INVALID_HANDLE%s", "");
    printf("SUMMARY functions=%d calls=%d failures=%d\n", n_functions, g_calls, atomic_load(&g_failures));
    fflush(stdout);
    return atomic_load(&g_failures) == 0 ? 0 : 1;
}

#endif /* RMW_BAD_INPUT_HARNESS_H */
