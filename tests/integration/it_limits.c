/*
 * Every limit gives a clear error (PT_ELIMIT with a message), never a crash,
 * and the daemon keeps serving within it. Each test restarts the daemon with
 * one small limit.
 */
#include "harness.h"

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

static void restart_with(harness *h, const char *const *args)
{
    harness_daemon_stop(h);
    h->daemon_args = args;
    harness_daemon_start(h);
}

static void expect_limit_message(const char *what)
{
    if (!*pt_last_error_message())
        fail_msg("%s: PT_ELIMIT without a message for people", what);
}

/* Sessions of the harness's own start-up checks may still be closing in
 * the daemon: an open is retried until the deadline while refused. */
static int open_within_deadline(pt_client **c)
{
    double deadline = harness_now() + HARNESS_DEADLINE;
    int rc;

    while ((rc = pt_client_open(c, NULL)) == PT_ELIMIT && harness_now() < deadline)
        harness_tick();
    return rc;
}

static void test_max_sessions(void **state)
{
    static const char *const args[] = {"--max-sessions", "3", NULL};
    harness *h = *state;
    pt_client *c[4] = {NULL};

    restart_with(h, args);
    for (int i = 0; i < 3; i++)
        PT_ASSERT_EQ(open_within_deadline(&c[i]), 0);
    PT_ASSERT_EQ(pt_client_open(&c[3], NULL), PT_ELIMIT);
    expect_limit_message("a fourth session with --max-sessions 3");

    /* A place frees up when a session ends. */
    pt_client_close(c[0]);
    PT_ASSERT_EQ(open_within_deadline(&c[0]), 0);
    for (int i = 0; i < 3; i++)
        pt_client_close(c[i]);
    h->passed = 1;
}

static void test_max_objects(void **state)
{
    static const char *const args[] = {"--max-objects", "2", NULL};
    harness *h = *state;
    pt_client *c = NULL;
    pt_lock *a = NULL, *b = NULL, *x = NULL;

    restart_with(h, args);
    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    PT_ASSERT_EQ(pt_lock_open(c, "it.limit.a", 0, 0, &a), 0);
    PT_ASSERT_EQ(pt_lock_open(c, "it.limit.b", 0, 0, &b), 0);
    PT_ASSERT_EQ(pt_lock_open(c, "it.limit.c", 0, 0, &x), PT_ELIMIT);
    expect_limit_message("a third object with --max-objects 2");
    /* Existing objects still open and work. */
    PT_ASSERT_EQ(pt_lock_acquire(a, 1, PT_FOREVER), 1);
    PT_ASSERT_EQ(pt_lock_release(a), 0);
    /* Unlinking one makes room once its last handle is closed. */
    PT_ASSERT_EQ(pt_unlink(c, "it.limit.b"), 0);
    PT_ASSERT_EQ(pt_lock_close(b), 0);
    PT_ASSERT_EQ(pt_lock_open(c, "it.limit.c", 0, 0, &x), 0);
    PT_ASSERT_EQ(pt_lock_close(x), 0);
    PT_ASSERT_EQ(pt_lock_close(a), 0);
    pt_client_close(c);
    h->passed = 1;
}

static void test_max_handles(void **state)
{
    static const char *const args[] = {"--max-handles", "2", NULL};
    harness *h = *state;
    pt_client *c = NULL, *other = NULL;
    pt_event *e[3] = {NULL};

    restart_with(h, args);
    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    PT_ASSERT_EQ(pt_event_open(c, "it.limit.e0", 0, 0, &e[0]), 0);
    PT_ASSERT_EQ(pt_event_open(c, "it.limit.e1", 0, 0, &e[1]), 0);
    PT_ASSERT_EQ(pt_event_open(c, "it.limit.e2", 0, 0, &e[2]), PT_ELIMIT);
    expect_limit_message("a third handle with --max-handles 2");
    /* The limit is per session: another session is not affected. */
    PT_ASSERT_EQ(pt_client_open(&other, NULL), 0);
    PT_ASSERT_EQ(pt_event_open(other, "it.limit.e2", 0, 0, &e[2]), 0);
    PT_ASSERT_EQ(pt_event_close(e[2]), 0);
    pt_client_close(other);
    PT_ASSERT_EQ(pt_event_close(e[1]), 0);
    PT_ASSERT_EQ(pt_event_open(c, "it.limit.e2", 0, 0, &e[2]), 0);
    PT_ASSERT_EQ(pt_event_close(e[2]), 0);
    PT_ASSERT_EQ(pt_event_close(e[0]), 0);
    pt_client_close(c);
    h->passed = 1;
}

static void test_max_waiters(void **state)
{
    static const char *const args[] = {"--max-waiters", "1", NULL};
    harness *h = *state;
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    Pythread__Response *resp = NULL;
    pt_client *c = NULL;
    pt_lock *l = NULL;
    uint32_t handle = 0;
    raw_conn rc;
    int got_first = 0;

    restart_with(h, args);
    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    PT_ASSERT_EQ(pt_lock_open(c, "it.limit.w", 0, 0, &l), 0);
    PT_ASSERT_EQ(pt_lock_acquire(l, 1, PT_FOREVER), 1);

    /* A raw session parks one acquire, then asks for a second. */
    assert_int_equal(raw_connect(&rc, h->sock), 0);
    assert_int_equal(raw_hello(&rc, PT_PROTOCOL_VERSION), 0);
    assert_int_equal(raw_open(&rc, "it.limit.w", PT_KIND_LOCK, 0, &handle), 0);
    for (uint64_t id = 100; id <= 101; id++) {
        req = (Pythread__Request)PYTHREAD__REQUEST__INIT;
        req.id = id;
        req.op = PYTHREAD__OP__OP_ACQUIRE;
        req.has_handle = 1;
        req.handle = handle;
        req.has_thread = 1;
        req.thread = id; /* two threads of that process */
        assert_int_equal(raw_send_request(&rc, &req), 0);
    }
    if (raw_recv(&rc, HARNESS_DEADLINE, &resp) != RAW_FRAME) {
        raw_close(&rc);
        fail_msg("no answer to a second parked acquire with --max-waiters 1");
    }
    if (resp->id != 101 || !resp->has_status || resp->status != PT_ELIMIT || !resp->message ||
        !*resp->message) {
        int st = resp->has_status ? resp->status : 0;

        raw_close(&rc);
        fail_msg("second parked acquire with --max-waiters 1: response to %llu, status %d (%s), "
                 "want request 101 refused with PT_ELIMIT and a message",
                 (unsigned long long)resp->id, st, pt_err_name(st));
    }
    /* The parked one is still served. */
    PT_ASSERT_EQ(pt_lock_release(l), 0);
    if (raw_recv(&rc, HARNESS_DEADLINE, &resp) == RAW_FRAME && resp->id == 100 && resp->ok)
        got_first = 1;
    raw_close(&rc);
    if (!got_first)
        fail_msg("the parked acquire was not granted after the release");
    PT_ASSERT_EQ(pt_lock_close(l), 0);
    pt_client_close(c);
    h->passed = 1;
}

static void test_max_frame(void **state)
{
    static const char *const args[] = {"--max-frame", "1024", NULL};
    harness *h = *state;
    uint8_t hdr[PT_WIRE_HEADER];
    pt_client *c = NULL;
    pt_lock *l = NULL;
    raw_conn rc;
    raw_closing seen;

    restart_with(h, args);
    /* The library learns the limit from the hello and works within it. */
    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    PT_ASSERT_EQ(pt_lock_open(c, "it.limit.frame", 0, 0, &l), 0);
    PT_ASSERT_EQ(pt_lock_acquire(l, 1, PT_FOREVER), 1);

    assert_int_equal(raw_connect(&rc, h->sock), 0);
    assert_int_equal(raw_hello(&rc, PT_PROTOCOL_VERSION), 0);
    pt_wire_len_put(hdr, 1025);
    assert_int_equal(raw_send(&rc, hdr, sizeof hdr), 0);
    if (!raw_wait_eof(&rc, HARNESS_DEADLINE, &seen)) {
        raw_close(&rc);
        fail_msg("a 1025-byte frame with --max-frame 1024: the connection was not closed");
    }
    raw_close(&rc);
    if (seen.eproto != 1)
        fail_msg("a 1025-byte frame with --max-frame 1024: %d frames, %d with PT_EPROTO, want "
                 "one error frame",
                 seen.frames, seen.eproto);
    PT_ASSERT_EQ(pt_lock_release(l), 0);
    PT_ASSERT_EQ(pt_lock_close(l), 0);
    pt_client_close(c);
    h->passed = 1;
}

#define LIMIT_TEST(fn) cmocka_unit_test_setup_teardown(fn, harness_setup, harness_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        LIMIT_TEST(test_max_sessions), LIMIT_TEST(test_max_objects), LIMIT_TEST(test_max_handles),
        LIMIT_TEST(test_max_waiters),  LIMIT_TEST(test_max_frame),
    };

    return cmocka_run_group_tests_name("integration: limits", tests, NULL, NULL);
}
