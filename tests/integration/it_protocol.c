/*
 * Protocol abuse on raw connections. Each malformed input must get an error
 * frame (PT_EPROTO, with a message) where the daemon can send one, then the
 * connection closed, while a normal session opened before keeps its lock and
 * keeps working. Well-formed but awkward input (pipelined frames, a frame in
 * single bytes, a frame of exactly the maximum size) must be served.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

typedef struct proto_env {
    harness *h;
    pt_client *c; /* the normal session */
    pt_lock *l;   /* held by it across the abuse */
    raw_conn rc;  /* the abusive one */
} proto_env;

static int proto_setup(void **state)
{
    proto_env *env = calloc(1, sizeof *env);
    void *hs = NULL;

    assert_non_null(env);
    env->rc.fd = -1;
    if (harness_setup(&hs) != 0 || !hs) {
        free(env);
        return -1;
    }
    env->h = hs;
    *state = env;
    return 0;
}

/* Every test's first step (a failed setup gets no teardown, so setup itself
 * does nothing that can fail after the daemon started). */
static proto_env *proto_begin(void **state)
{
    proto_env *env = *state;

    PT_ASSERT_EQ(pt_client_open(&env->c, NULL), 0);
    PT_ASSERT_EQ(pt_lock_open(env->c, "it.proto.normal", 0, 0, &env->l), 0);
    PT_ASSERT_EQ(pt_lock_acquire(env->l, 1, PT_FOREVER), 1);
    if (raw_connect(&env->rc, env->h->sock) != 0)
        fail_msg("connect %s failed", env->h->sock);
    return env;
}

static int proto_teardown(void **state)
{
    proto_env *env = *state;
    void *hs = env->h;

    raw_close(&env->rc);
    if (env->c)
        pt_client_close(env->c);
    free(env);
    return harness_teardown(&hs);
}

static void hello(proto_env *env)
{
    int st = raw_hello(&env->rc, PT_PROTOCOL_VERSION);

    if (st != 0)
        fail_msg("hello: %s", pt_err_name(st));
}

/* The daemon must close the abusive connection, having sent only PT_EPROTO
 * frames with a message (at least one when must_answer). */
static void expect_closed(proto_env *env, int must_answer, const char *what)
{
    raw_closing seen;

    if (!raw_wait_eof(&env->rc, HARNESS_DEADLINE, &seen))
        fail_msg("%s: the daemon did not close the connection within %.0f s (%d frames seen)", what,
                 HARNESS_DEADLINE, seen.frames);
    if (seen.frames != seen.eproto)
        fail_msg("%s: %d frames before the close, only %d with status PT_EPROTO", what, seen.frames,
                 seen.eproto);
    if (must_answer && seen.eproto == 0)
        fail_msg("%s: the connection was closed without an error frame (PT_EPROTO)", what);
    if (seen.eproto != seen.with_message)
        fail_msg("%s: an error frame came without a message for people", what);
}

/* The daemon is alive and the normal session still holds its lock and
 * still works. */
static void expect_normal_session_works(proto_env *env)
{
    int status;

    if (waitpid(env->h->daemon, &status, WNOHANG) == env->h->daemon) {
        env->h->daemon = 0;
        fail_msg("the daemon died (wait status 0x%x)", status);
    }
    PT_ASSERT_EQ(pt_lock_locked(env->l), 1);
    PT_ASSERT_EQ(pt_lock_release(env->l), 0);
    PT_ASSERT_EQ(pt_lock_acquire(env->l, 1, HARNESS_DEADLINE), 1);
    PT_ASSERT_EQ(pt_lock_release(env->l), 0);
    PT_ASSERT_EQ(pt_lock_close(env->l), 0);
    env->l = NULL;
}

static void send_header(proto_env *env, uint32_t len)
{
    uint8_t hdr[PT_WIRE_HEADER];

    pt_wire_len_put(hdr, len);
    assert_int_equal(raw_send(&env->rc, hdr, sizeof hdr), 0);
}

static void test_garbage_body(void **state)
{
    proto_env *env = proto_begin(state);
    uint8_t junk[12];

    hello(env);
    /* A run of 0xFF is an overlong varint: no protobuf parser accepts it. */
    memset(junk, 0xFF, sizeof junk);
    send_header(env, sizeof junk);
    assert_int_equal(raw_send(&env->rc, junk, sizeof junk), 0);
    expect_closed(env, 1, "garbage frame body");
    expect_normal_session_works(env);
    env->h->passed = 1;
}

static void test_garbage_text_before_hello(void **state)
{
    proto_env *env = proto_begin(state);
    static const char text[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";

    assert_int_equal(raw_send(&env->rc, text, sizeof text - 1), 0);
    expect_closed(env, 1, "text instead of frames");
    expect_normal_session_works(env);
    env->h->passed = 1;
}

static void test_length_4gib(void **state)
{
    proto_env *env = proto_begin(state);

    hello(env);
    send_header(env, 0xFFFFFFFFu);
    expect_closed(env, 1, "length prefix 0xFFFFFFFF");
    expect_normal_session_works(env);
    env->h->passed = 1;
}

static void test_length_one_past_max(void **state)
{
    proto_env *env = proto_begin(state);

    hello(env);
    send_header(env, PT_WIRE_MAX_FRAME + 1);
    expect_closed(env, 1, "length prefix one past the maximum frame");
    expect_normal_session_works(env);
    env->h->passed = 1;
}

static void test_truncated_frame(void **state)
{
    proto_env *env = proto_begin(state);
    uint8_t part[10];

    hello(env);
    memset(part, 0x08, sizeof part);
    send_header(env, 100);
    assert_int_equal(raw_send(&env->rc, part, sizeof part), 0);
    assert_int_equal(shutdown(env->rc.fd, SHUT_WR), 0);
    /* The daemon may or may not answer a frame cut short by EOF. */
    expect_closed(env, 0, "frame cut short (100 announced, 10 sent)");
    expect_normal_session_works(env);
    env->h->passed = 1;
}

static void test_unknown_op(void **state)
{
    proto_env *env = proto_begin(state);
    Pythread__Request req = PYTHREAD__REQUEST__INIT;

    hello(env);
    req.id = 7;
    req.op = (Pythread__Op)99;
    assert_int_equal(raw_send_request(&env->rc, &req), 0);
    expect_closed(env, 1, "request with op 99");
    expect_normal_session_works(env);
    env->h->passed = 1;
}

static void test_request_before_hello(void **state)
{
    proto_env *env = proto_begin(state);
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    Pythread__OpenArgs args = PYTHREAD__OPEN_ARGS__INIT;

    req.id = 5;
    req.op = PYTHREAD__OP__OP_OPEN;
    req.has_name = 1;
    req.name.data = (uint8_t *)"it.proto.early";
    req.name.len = strlen("it.proto.early");
    req.open = &args;
    args.has_kind = 1;
    args.kind = PT_KIND_LOCK;
    assert_int_equal(raw_send_request(&env->rc, &req), 0);
    expect_closed(env, 1, "open before hello");
    expect_normal_session_works(env);
    env->h->passed = 1;
}

static void test_empty_frame(void **state)
{
    proto_env *env = proto_begin(state);

    hello(env);
    /* Zero bytes lack the required id and op. */
    send_header(env, 0);
    expect_closed(env, 1, "empty frame");
    expect_normal_session_works(env);
    env->h->passed = 1;
}

static void test_request_id_zero(void **state)
{
    proto_env *env = proto_begin(state);
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    uint8_t buf[64];
    size_t len;

    hello(env);
    req.op = PYTHREAD__OP__OP_STATE;
    req.has_handle = 1;
    req.handle = 1;
    /* raw_send_request would number it; pack by hand to keep id 0. */
    len = pt_wire_request_frame_size(&req);
    assert_true(len <= sizeof buf);
    pt_wire_request_frame_pack(&req, buf);
    assert_int_equal(raw_send(&env->rc, buf, len), 0);
    expect_closed(env, 1, "request id 0");
    expect_normal_session_works(env);
    env->h->passed = 1;
}

/* A name is bytes on the wire: an embedded NUL is refused as a bad name, not
 * cut short into another, valid name. The session goes on. */
static void test_name_with_nul(void **state)
{
    proto_env *env = proto_begin(state);
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    Pythread__OpenArgs args = PYTHREAD__OPEN_ARGS__INIT;
    Pythread__Response *resp;
    uint32_t handle;

    hello(env);
    req.op = PYTHREAD__OP__OP_OPEN;
    req.has_name = 1;
    req.name.data = (uint8_t *)"it.nul\0tail";
    req.name.len = sizeof "it.nul\0tail" - 1;
    req.open = &args;
    args.has_kind = 1;
    args.kind = PT_KIND_LOCK;
    resp = raw_call(&env->rc, &req, 5.0);
    assert_non_null(resp);
    assert_int_equal(resp->status, PT_ENAME);
    assert_int_equal(raw_open(&env->rc, "it.nul", PT_KIND_LOCK, PT_OPEN_EXISTING, &handle),
                     PT_ENOENT);
    expect_normal_session_works(env);
    env->h->passed = 1;
}

/* ---- awkward but valid input is served ---- */

static Pythread__Request state_request(uint64_t id, uint32_t handle)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;

    req.id = id;
    req.op = PYTHREAD__OP__OP_STATE;
    req.has_handle = 1;
    req.handle = handle;
    return req;
}

static void test_pipelined_frames(void **state)
{
    enum { N = 50 };
    proto_env *env = proto_begin(state);
    uint8_t buf[N * 32];
    size_t off = 0;
    uint32_t handle = 0;
    int answered[N + 1] = {0};

    hello(env);
    PT_ASSERT_EQ(raw_open(&env->rc, "it.proto.normal", PT_KIND_LOCK, 0, &handle), 0);
    /* Many frames in one write: the daemon must handle every buffered one. */
    for (uint64_t id = 1; id <= N; id++) {
        Pythread__Request req = state_request(1000 + id, handle);
        size_t len = pt_wire_request_frame_size(&req);

        assert_true(off + len <= sizeof buf);
        pt_wire_request_frame_pack(&req, buf + off);
        off += len;
    }
    assert_int_equal(raw_send(&env->rc, buf, off), 0);
    for (int i = 0; i < N; i++) {
        Pythread__Response *resp = NULL;
        int r = raw_recv(&env->rc, HARNESS_DEADLINE, &resp);

        if (r != RAW_FRAME)
            fail_msg("pipelined request: %d of %d answered, then %s", i, N,
                     r == RAW_EOF       ? "closed"
                     : r == RAW_TIMEOUT ? "silence"
                                        : "a bad frame");
        if (resp->id <= 1000 || resp->id > 1000 + N || answered[resp->id - 1000]++)
            fail_msg("unexpected or repeated response id %llu", (unsigned long long)resp->id);
        if (resp->has_status && resp->status != 0)
            fail_msg("state request %llu: %s (%s)", (unsigned long long)resp->id,
                     pt_err_name(resp->status), resp->message ? resp->message : "");
        if (!resp->state || !resp->state->has_locked || !resp->state->locked)
            fail_msg("state request %llu: the lock held by the normal session shows unlocked",
                     (unsigned long long)resp->id);
    }
    expect_normal_session_works(env);
    env->h->passed = 1;
}

static void test_frame_in_single_bytes(void **state)
{
    proto_env *env = proto_begin(state);
    Pythread__Request req;
    Pythread__Response *resp;
    uint8_t buf[64];
    uint32_t handle = 0;
    size_t len;

    hello(env);
    PT_ASSERT_EQ(raw_open(&env->rc, "it.proto.normal", PT_KIND_LOCK, 0, &handle), 0);
    req = state_request(77, handle);
    len = pt_wire_request_frame_size(&req);
    assert_true(len <= sizeof buf);
    pt_wire_request_frame_pack(&req, buf);
    for (size_t i = 0; i < len; i++) {
        assert_int_equal(raw_send(&env->rc, buf + i, 1), 0);
        /* Nothing may come back before the frame is complete. */
        if (i + 1 < len && raw_recv(&env->rc, 0.002, &resp) != RAW_TIMEOUT)
            fail_msg("the daemon answered or closed after %zu of %zu bytes", i + 1, len);
    }
    assert_int_equal(raw_recv(&env->rc, HARNESS_DEADLINE, &resp), RAW_FRAME);
    assert_int_equal(resp->id, 77);
    PT_ASSERT_EQ(resp->has_status ? resp->status : 0, 0);
    expect_normal_session_works(env);
    env->h->passed = 1;
}

/*
 * A frame of exactly the maximum size is within the limit: a state request
 * padded with an unknown length-delimited field (protobuf readers skip
 * unknown fields) must be answered, not refused.
 */
static void test_frame_of_max_size(void **state)
{
    proto_env *env = proto_begin(state);
    Pythread__Request req;
    Pythread__Response *resp;
    uint32_t handle = 0;
    uint8_t *frame;
    size_t head, pad;

    hello(env);
    PT_ASSERT_EQ(raw_open(&env->rc, "it.proto.normal", PT_KIND_LOCK, 0, &handle), 0);
    req = state_request(88, handle);
    frame = calloc(1, PT_WIRE_HEADER + PT_WIRE_MAX_FRAME);
    assert_non_null(frame);
    pt_wire_request_frame_pack(&req, frame);
    head = pt_wire_request_frame_size(&req);
    /* Field 1000, wire type 2: tag 0xC2 0x3E, a 3-byte varint length, then
     * the padding bytes up to the maximum. */
    pad = PT_WIRE_HEADER + PT_WIRE_MAX_FRAME - head - 5;
    frame[head] = 0xC2;
    frame[head + 1] = 0x3E;
    frame[head + 2] = (uint8_t)(0x80 | (pad & 0x7F));
    frame[head + 3] = (uint8_t)(0x80 | ((pad >> 7) & 0x7F));
    frame[head + 4] = (uint8_t)(pad >> 14);
    pt_wire_len_put(frame, PT_WIRE_MAX_FRAME);
    assert_int_equal(raw_send(&env->rc, frame, PT_WIRE_HEADER + PT_WIRE_MAX_FRAME), 0);
    free(frame);
    if (raw_recv(&env->rc, HARNESS_DEADLINE, &resp) != RAW_FRAME)
        fail_msg("a frame of exactly %u bytes was not answered", PT_WIRE_MAX_FRAME);
    assert_int_equal(resp->id, 88);
    if (resp->has_status && resp->status != 0)
        fail_msg("a frame of exactly %u bytes was refused: %s (%s)", PT_WIRE_MAX_FRAME,
                 pt_err_name(resp->status), resp->message ? resp->message : "");
    expect_normal_session_works(env);
    env->h->passed = 1;
}

/*
 * A client that sends and never reads: the daemon must hold its memory
 * (stop reading from it, or drop it) and keep serving everyone else.
 */
static void test_client_that_never_reads(void **state)
{
    enum { BATCH = 1000 };
    proto_env *env = proto_begin(state);
    uint8_t *batch;
    size_t len = 0, sent = 0;
    uint32_t handle = 0;
    int flags;

    hello(env);
    PT_ASSERT_EQ(raw_open(&env->rc, "it.proto.normal", PT_KIND_LOCK, 0, &handle), 0);
    batch = malloc(BATCH * 32);
    assert_non_null(batch);
    for (uint64_t i = 0; i < BATCH; i++) {
        Pythread__Request req = state_request(100 + i, handle);

        pt_wire_request_frame_pack(&req, batch + len);
        len += pt_wire_request_frame_size(&req);
    }
    flags = fcntl(env->rc.fd, F_GETFL);
    assert_int_equal(fcntl(env->rc.fd, F_SETFL, flags | O_NONBLOCK), 0);
    /* Write until the daemon stops taking bytes for a while (or drops us);
     * 64 MiB is far past any sane output limit. */
    while (sent < (64u << 20)) {
        struct pollfd pfd = {.fd = env->rc.fd, .events = POLLOUT};
        ssize_t n;

        if (poll(&pfd, 1, 300) == 0)
            break; /* stalled: the daemon has stopped reading from us */
        n = send(env->rc.fd, batch, len, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            break; /* dropped */
        if (n > 0)
            sent += (size_t)n; /* a partial frame at the end does no harm */
    }
    free(batch);
    if (sent >= (64u << 20))
        fail_msg("the daemon took 64 MiB of requests from a client that reads no replies");
    expect_normal_session_works(env);
    env->h->passed = 1;
}

#define PROTO_TEST(fn) cmocka_unit_test_setup_teardown(fn, proto_setup, proto_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        PROTO_TEST(test_garbage_body),         PROTO_TEST(test_garbage_text_before_hello),
        PROTO_TEST(test_length_4gib),          PROTO_TEST(test_length_one_past_max),
        PROTO_TEST(test_truncated_frame),      PROTO_TEST(test_unknown_op),
        PROTO_TEST(test_request_before_hello), PROTO_TEST(test_empty_frame),
        PROTO_TEST(test_request_id_zero),      PROTO_TEST(test_name_with_nul),
        PROTO_TEST(test_pipelined_frames),     PROTO_TEST(test_frame_in_single_bytes),
        PROTO_TEST(test_frame_of_max_size),    PROTO_TEST(test_client_that_never_reads),
    };

    return cmocka_run_group_tests_name("integration: protocol", tests, NULL, NULL);
}
