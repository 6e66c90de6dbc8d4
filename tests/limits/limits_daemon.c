/*
 * limits_daemon.c - the hardening limits of pythreadd against a real daemon:
 * objects and sessions per uid, a peer that stalls in the middle of a frame
 * (slowloris), a peer that never reads its answers, the open file limit,
 * and --help listing every limit with its default. Each limit yields a
 * clear error or a cut-off of the offending session alone, while another
 * session keeps being served at once.
 */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* --frame-timeout of the slowloris test, in seconds. */
#define FRAME_TIMEOUT     2
#define FRAME_TIMEOUT_ARG "2"

/* A round trip of a bystander must never wait on a misbehaving peer. */
#define PROMPT_SEC 0.5

static void restart_with(harness *h, const char *const *args)
{
    harness_daemon_stop(h);
    h->daemon_args = args;
    harness_daemon_start(h);
}

/* Sessions of the harness's start-up checks may still be ending. */
static int open_within_deadline(pt_client **c)
{
    double deadline = harness_now() + HARNESS_DEADLINE;
    int rc;

    while ((rc = pt_client_open(c, NULL)) == PT_ELIMIT && harness_now() < deadline)
        harness_tick();
    return rc;
}

/* A bystander's acquire and release, which must be answered promptly. */
static void bystander_prompt(pt_lock *l, const char *while_what)
{
    double t0 = harness_now();

    PT_ASSERT_EQ(pt_lock_acquire(l, 1, PT_FOREVER), 1);
    PT_ASSERT_EQ(pt_lock_release(l), 0);
    if (harness_now() - t0 > PROMPT_SEC)
        fail_msg("a bystander waited %.3f s while %s", harness_now() - t0, while_what);
}

static void test_objects_per_uid(void **state)
{
    static const char *const args[] = {"--max-objects-per-uid", "2", NULL};
    harness *h = *state;
    pt_client *c = NULL;
    pt_lock *l[3] = {NULL};

    restart_with(h, args);
    PT_ASSERT_EQ(open_within_deadline(&c), 0);
    PT_ASSERT_EQ(pt_lock_open(c, "lim.uid.a", 0, 0, &l[0]), 0);
    PT_ASSERT_EQ(pt_lock_open(c, "lim.uid.b", 0, 0, &l[1]), 0);
    PT_ASSERT_EQ(pt_lock_open(c, "lim.uid.c", 0, 0, &l[2]), PT_ELIMIT);
    if (!strstr(pt_last_error_message(), "--max-objects-per-uid"))
        fail_msg("message does not name the flag: %s", pt_last_error_message());
    /* Opening what exists is not creating. */
    {
        pt_lock *again = NULL;
        PT_ASSERT_EQ(pt_lock_open(c, "lim.uid.a", 0, 0, &again), 0);
        PT_ASSERT_EQ(pt_lock_close(again), 0);
    }
    /* An unlinked object gives its place back once closed. */
    PT_ASSERT_EQ(pt_unlink(c, "lim.uid.a"), 0);
    PT_ASSERT_EQ(pt_lock_close(l[0]), 0);
    PT_ASSERT_EQ(pt_lock_open(c, "lim.uid.c", 0, 0, &l[2]), 0);
    PT_ASSERT_EQ(pt_lock_close(l[1]), 0);
    PT_ASSERT_EQ(pt_lock_close(l[2]), 0);
    pt_client_close(c);
    h->passed = 1;
}

static void test_sessions_per_uid(void **state)
{
    static const char *const args[] = {"--max-sessions-per-uid", "2", NULL};
    harness *h = *state;
    pt_client *c[3] = {NULL};

    restart_with(h, args);
    PT_ASSERT_EQ(open_within_deadline(&c[0]), 0);
    PT_ASSERT_EQ(open_within_deadline(&c[1]), 0);
    PT_ASSERT_EQ(pt_client_open(&c[2], NULL), PT_ELIMIT);
    if (!strstr(pt_last_error_message(), "--max-sessions-per-uid"))
        fail_msg("message does not name the flag: %s", pt_last_error_message());
    pt_client_close(c[0]);
    PT_ASSERT_EQ(open_within_deadline(&c[2]), 0);
    pt_client_close(c[1]);
    pt_client_close(c[2]);
    h->passed = 1;
}

/* Stall inside the header, then inside a body: each is cut off with an
 * error frame after --frame-timeout, and nobody else waits meanwhile. */
static void test_slowloris(void **state)
{
    static const char *const args[] = {"--frame-timeout", FRAME_TIMEOUT_ARG, NULL};
    static const struct {
        const char *what;
        size_t len;
    } cases[] = {{"two bytes of a header", 2}, {"a header and half a body", 6}};
    harness *h = *state;
    pt_client *c = NULL;
    pt_lock *l = NULL;

    restart_with(h, args);
    PT_ASSERT_EQ(open_within_deadline(&c), 0);
    PT_ASSERT_EQ(pt_lock_open(c, "lim.slow", PT_OPEN_TRANSIENT, 0, &l), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t bytes[8] = {0, 0, 0, 4, 0x08, 0x01, 0x10, 0x07};
        raw_conn rc;
        raw_closing seen;
        double t0;

        assert_int_equal(raw_connect(&rc, h->sock), 0);
        assert_int_equal(raw_hello(&rc, PT_PROTOCOL_VERSION), 0);
        assert_int_equal(raw_send(&rc, bytes, cases[i].len), 0);
        t0 = harness_now();
        /* Served at once while the slow peer holds its half frame. */
        for (int k = 0; k < 20; k++)
            bystander_prompt(l, cases[i].what);
        if (!raw_wait_eof(&rc, FRAME_TIMEOUT + HARNESS_DEADLINE, &seen)) {
            raw_close(&rc);
            fail_msg("%s: not cut off after --frame-timeout %d", cases[i].what, FRAME_TIMEOUT);
        }
        raw_close(&rc);
        if (harness_now() - t0 < 0.9 * FRAME_TIMEOUT)
            fail_msg("%s: cut off after %.3f s, before the %d s timeout", cases[i].what,
                     harness_now() - t0, FRAME_TIMEOUT);
        if (seen.eproto != 1 || !strstr(seen.message, "--frame-timeout"))
            fail_msg("%s: %d error frames, message \"%s\"", cases[i].what, seen.eproto,
                     seen.message);
    }
    /* A peer that sends each frame in two pieces, well within the timeout,
     * is served for longer than the timeout: it runs from the start of
     * each frame, not of the session. */
    {
        Pythread__Request req = PYTHREAD__REQUEST__INIT;
        uint8_t frame[64];
        double t0 = harness_now();
        raw_conn rc;
        Pythread__Response *resp;
        size_t n;

        assert_int_equal(raw_connect(&rc, h->sock), 0);
        assert_int_equal(raw_hello(&rc, PT_PROTOCOL_VERSION), 0);
        req.op = PYTHREAD__OP__OP_STATUS;
        for (uint64_t id = 100; harness_now() - t0 < 2.5 * FRAME_TIMEOUT; id++) {
            double until = harness_now() + 0.2 * FRAME_TIMEOUT;

            req.id = id;
            n = pt_wire_request_frame_size(&req);
            assert_true(n <= sizeof frame);
            pt_wire_request_frame_pack(&req, frame);
            assert_int_equal(raw_send(&rc, frame, n / 2), 0);
            while (harness_now() < until)
                harness_tick();
            assert_int_equal(raw_send(&rc, frame + n / 2, n - n / 2), 0);
            assert_int_equal(raw_recv(&rc, HARNESS_DEADLINE, &resp), RAW_FRAME);
            assert_int_equal(resp->id, id);
        }
        raw_close(&rc);
    }
    PT_ASSERT_EQ(pt_lock_close(l), 0);
    pt_client_close(c);
    h->passed = 1;
}

/* Requests sent without ever reading an answer: the daemon stops reading
 * at --max-output, then cuts the session off after --stall-timeout. */
static void test_never_reads(void **state)
{
    static const char *const args[] = {"--max-output", "65536", "--stall-timeout", "1", NULL};
    harness *h = *state;
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    uint8_t batch[64 * 64];
    size_t one, n = 0;
    pt_client *c = NULL;
    pt_lock *l = NULL;
    raw_conn rc;
    raw_closing seen;
    double t0, deadline;
    int cut = 0;

    restart_with(h, args);
    PT_ASSERT_EQ(open_within_deadline(&c), 0);
    PT_ASSERT_EQ(pt_lock_open(c, "lim.reader", PT_OPEN_TRANSIENT, 0, &l), 0);
    assert_int_equal(raw_connect(&rc, h->sock), 0);
    assert_int_equal(raw_hello(&rc, PT_PROTOCOL_VERSION), 0);
    /* STATUS answers are some hundred bytes each: many per request byte. */
    req.id = 1;
    req.op = PYTHREAD__OP__OP_STATUS;
    one = pt_wire_request_frame_size(&req);
    while (n + one <= sizeof batch) {
        pt_wire_request_frame_pack(&req, batch + n);
        n += one;
    }
    t0 = harness_now();
    deadline = t0 + 10 * HARNESS_DEADLINE;
    while (!cut && harness_now() < deadline) {
        /* raw_send blocks once both socket buffers are full; the daemon
         * then has stopped reading us. A failure is the cut-off. */
        if (raw_send(&rc, batch, n) < 0)
            cut = 1;
        bystander_prompt(l, "a peer left its answers unread");
        if (harness_now() - t0 > 1.0 && !cut) {
            /* Past the stall timeout: whatever is still buffered is read
             * up to an EOF, proving the session was closed. */
            cut = raw_wait_eof(&rc, HARNESS_DEADLINE, &seen);
        }
    }
    raw_close(&rc);
    if (!cut)
        fail_msg("a peer that never reads was not cut off");
    bystander_prompt(l, "after the cut-off");
    PT_ASSERT_EQ(pt_lock_close(l), 0);
    pt_client_close(c);
    h->passed = 1;
}

/*
 * A peer that sends a long batch before reading any answer: the daemon
 * pauses its input at --max-output with frames of the batch already read
 * and held, and once the peer reads, serves every one of them in order,
 * without cutting it off.
 */
static void test_slow_reader_catches_up(void **state)
{
    enum { N = 8000 };
    static const char *const args[] = {"--max-output", "65536", NULL};
    harness *h = *state;
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    Pythread__Response *resp = NULL;
    uint8_t *batch;
    size_t n = 0;
    pt_client *c = NULL;
    pt_lock *l = NULL;
    raw_conn rc;

    restart_with(h, args);
    PT_ASSERT_EQ(open_within_deadline(&c), 0);
    PT_ASSERT_EQ(pt_lock_open(c, "lim.catchup", PT_OPEN_TRANSIENT, 0, &l), 0);
    assert_int_equal(raw_connect(&rc, h->sock), 0);
    assert_int_equal(raw_hello(&rc, PT_PROTOCOL_VERSION), 0);
    /* STATUS answers are some hundred bytes each: far past the cap and the
     * socket buffers while nothing is read. */
    batch = malloc(N * 16);
    assert_non_null(batch);
    req.op = PYTHREAD__OP__OP_STATUS;
    for (uint64_t id = 1; id <= N; id++) {
        req.id = 1000 + id;
        assert_true(n + pt_wire_request_frame_size(&req) <= N * 16);
        pt_wire_request_frame_pack(&req, batch + n);
        n += pt_wire_request_frame_size(&req);
    }
    assert_int_equal(raw_send(&rc, batch, n), 0);
    free(batch);
    bystander_prompt(l, "a peer had a long batch of answers unread");
    for (uint64_t id = 1; id <= N; id++) {
        int r = raw_recv(&rc, HARNESS_DEADLINE, &resp);

        if (r != RAW_FRAME)
            fail_msg("answer %llu of %d: %s", (unsigned long long)id, N,
                     r == RAW_EOF ? "the session was closed" : "none came");
        if (resp->id != 1000 + id)
            fail_msg("answer %llu of %d has id %llu, expected %llu", (unsigned long long)id, N,
                     (unsigned long long)resp->id, (unsigned long long)(1000 + id));
        if (resp->has_status && resp->status != 0)
            fail_msg("status request %llu: %s", (unsigned long long)resp->id,
                     pt_err_name(resp->status));
    }
    /* Still served, and nothing more came. */
    req.id = 7;
    resp = raw_call(&rc, &req, HARNESS_DEADLINE);
    if (!resp)
        fail_msg("the session did not answer after catching up");
    raw_close(&rc);
    bystander_prompt(l, "after the catch-up");
    PT_ASSERT_EQ(pt_lock_close(l), 0);
    pt_client_close(c);
    h->passed = 1;
}

/* The daemon raises its open file limit to the hard limit, even when it
 * inherits a low soft limit. */
static void test_nofile_raised(void **state)
{
    harness *h = *state;
    char path[64], line[256];
    struct rlimit mine, low;
    FILE *f;
    int found = 0;

    assert_int_equal(getrlimit(RLIMIT_NOFILE, &mine), 0);
    low = mine;
    low.rlim_cur = mine.rlim_max > 256 ? 256 : mine.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    harness_daemon_stop(h);
    harness_daemon_start(h);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &mine), 0);
    snprintf(path, sizeof path, "/proc/%d/limits", (int)h->daemon);
    f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f)) {
        unsigned long long soft, hard;
        if (sscanf(line, "Max open files %llu %llu", &soft, &hard) == 2) {
            found = 1;
            if (soft != hard)
                fail_msg("pythreadd's open file limit is %llu, its hard limit %llu", soft, hard);
        }
    }
    fclose(f);
    assert_true(found);
    h->passed = 1;
}

/* --help names every limit with its default. */
static void test_help_lists_limits(void **state)
{
    static const char *const flags[] = {
        "--max-frame BYTES",     "(default 65536",    "--max-sessions N",       "(default 65536)",
        "--max-objects N",       "(default 1000000)", "--max-handles N",        "--max-waiters N",
        "--max-objects-per-uid", "(default 100000)",  "--max-sessions-per-uid", "(default 4096)",
        "--max-output BYTES",    "(default 8388608)", "--stall-timeout",        "(default 30)",
        "--frame-timeout",       "(default 10)",      "--socket-mode",          "(default 0666",
    };
    harness *h = *state;
    char cmd[512], out[8192];
    size_t len;
    FILE *p;

    snprintf(cmd, sizeof cmd, "'%s' --help", PT_DAEMON_PATH);
    p = popen(cmd, "r");
    assert_non_null(p);
    len = fread(out, 1, sizeof out - 1, p);
    out[len] = '\0';
    assert_int_equal(pclose(p), 0);
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        if (!strstr(out, flags[i]))
            fail_msg("pythreadd --help lacks \"%s\":\n%s", flags[i], out);
    }
    h->passed = 1;
}

#define LIMIT_TEST(fn) cmocka_unit_test_setup_teardown(fn, harness_setup, harness_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        LIMIT_TEST(test_objects_per_uid),
        LIMIT_TEST(test_sessions_per_uid),
        LIMIT_TEST(test_slowloris),
        LIMIT_TEST(test_never_reads),
        LIMIT_TEST(test_slow_reader_catches_up),
        LIMIT_TEST(test_nofile_raised),
        LIMIT_TEST(test_help_lists_limits),
    };

    return cmocka_run_group_tests_name("limits: hardening", tests, NULL, NULL);
}
