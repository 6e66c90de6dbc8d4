/*
 * test_steady_alloc.c - once warm, the daemon allocates nothing per request.
 *
 * The daemon's own code runs in this process (inproc_daemon.h) with two
 * sessions on socketpairs. Every allocation it can make is counted: the
 * daemon, core and wire code through the linker's --wrap of malloc, calloc
 * and realloc, libevent through event_set_mem_functions, protobuf-c's
 * decoding through the daemon's arena (no allocator call at all). After a
 * warm-up, rounds of the calls made most are counted: uncontended Lock and
 * Semaphore pairs, Event set/is_set/clear, a Condition's notify, and a
 * contended Lock handed from one session's release to the other's parked
 * acquire. Opening a new object while counting shows the counter sees the
 * daemon's allocations at all.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "inproc_daemon.h"

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);

static int counting;
static long allocs, requests;

void *__wrap_malloc(size_t size)
{
    allocs += counting;
    return __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
    allocs += counting;
    return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
    allocs += counting;
    return __real_realloc(p, size);
}

static void *ev_malloc(size_t size)
{
    return __wrap_malloc(size);
}

static void *ev_realloc(void *p, size_t size)
{
    return __wrap_realloc(p, size);
}

static void ev_free(void *p)
{
    free(p);
}

typedef struct peer {
    int fd;
    uint8_t in[4096];
    size_t len;
    uint64_t next_id;
} peer;

static pt_daemon d;
static peer a, b;
static uint8_t arena_mem[1 << 16];
static pt_wire_arena arena;

static void send_req(peer *p, Pythread__Request *req)
{
    uint8_t frame[1024];
    size_t n;

    requests += counting;
    req->id = ++p->next_id;
    req->has_thread = 1;
    req->thread = 1;
    assert_true(pt_wire_request_frame_bound(req) <= sizeof(frame));
    n = pt_wire_request_frame_pack(req, frame);
    assert_int_equal(write(p->fd, frame, n), (ssize_t)n);
}

/* Run the daemon until p has one whole answer; returns it decoded. */
static const Pythread__Response *read_resp(peer *p)
{
    char err[128];

    for (int i = 0; i < 1000; i++) {
        ssize_t n;
        uint32_t len;

        if (p->len >= PT_WIRE_HEADER) {
            len = pt_wire_len_get(p->in);
            if (p->len >= PT_WIRE_HEADER + len) {
                const Pythread__Response *r;

                pt_wire_arena_reset(&arena);
                r = pt_wire_response_decode(&arena, p->in + PT_WIRE_HEADER, len, err, sizeof(err));
                assert_non_null(r);
                p->len -= PT_WIRE_HEADER + len;
                memmove(p->in, p->in + PT_WIRE_HEADER + len, p->len);
                return r;
            }
        }
        event_base_loop(d.base, EVLOOP_NONBLOCK);
        n = read(p->fd, p->in + p->len, sizeof(p->in) - p->len);
        if (n > 0)
            p->len += (size_t)n;
        else
            assert_true(n < 0 && errno == EAGAIN);
    }
    fail_msg("no answer from the daemon");
    return NULL;
}

static const Pythread__Response *call(peer *p, Pythread__Op op, uint32_t handle)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    const Pythread__Response *r;

    req.op = op;
    req.has_handle = handle != 0;
    req.handle = handle;
    send_req(p, &req);
    r = read_resp(p);
    assert_int_equal(r->status, 0);
    return r;
}

static void hello(peer *p)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    Pythread__HelloArgs h = PYTHREAD__HELLO_ARGS__INIT;

    req.op = PYTHREAD__OP__OP_HELLO;
    req.hello = &h;
    h.has_version = 1;
    h.version = PT_PROTOCOL_VERSION;
    h.client_name = "steady";
    send_req(p, &req);
    assert_int_equal(read_resp(p)->status, 0);
}

static uint32_t open_obj(peer *p, const char *name, pt_kind kind)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    Pythread__OpenArgs o = PYTHREAD__OPEN_ARGS__INIT;
    const Pythread__Response *r;

    req.op = PYTHREAD__OP__OP_OPEN;
    req.has_name = 1;
    req.name.data = (uint8_t *)name;
    req.name.len = strlen(name);
    req.open = &o;
    o.has_kind = o.has_mode = 1;
    o.kind = (int32_t)kind;
    o.mode = 0600;
    send_req(p, &req);
    r = read_resp(p);
    assert_int_equal(r->status, 0);
    return r->handle;
}

static uint32_t lock_a, lock_b, sem, event, cond;

/* One round of the calls made most, contended hand-off included. */
static void round_of_calls(void)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;

    assert_true(call(&a, PYTHREAD__OP__OP_ACQUIRE, lock_a)->ok);
    call(&a, PYTHREAD__OP__OP_RELEASE, lock_a);
    assert_true(call(&a, PYTHREAD__OP__OP_ACQUIRE, sem)->ok);
    call(&a, PYTHREAD__OP__OP_RELEASE, sem);
    call(&a, PYTHREAD__OP__OP_EVENT_SET, event);
    assert_true(call(&a, PYTHREAD__OP__OP_STATE, event)->state->is_set);
    call(&a, PYTHREAD__OP__OP_EVENT_CLEAR, event);
    assert_true(call(&a, PYTHREAD__OP__OP_ACQUIRE, cond)->ok);
    call(&a, PYTHREAD__OP__OP_NOTIFY, cond);
    call(&a, PYTHREAD__OP__OP_RELEASE, cond);
    /* a holds, b parks, a's release hands the lock to b. */
    assert_true(call(&a, PYTHREAD__OP__OP_ACQUIRE, lock_a)->ok);
    req.op = PYTHREAD__OP__OP_ACQUIRE;
    req.has_handle = 1;
    req.handle = lock_b;
    send_req(&b, &req);
    call(&a, PYTHREAD__OP__OP_RELEASE, lock_a);
    assert_true(read_resp(&b)->ok);
    call(&b, PYTHREAD__OP__OP_RELEASE, lock_b);
}

static void test_steady_state_allocates_nothing(void **state)
{
    (void)state;
    for (int i = 0; i < 50; i++)
        round_of_calls();
    allocs = requests = 0;
    counting = 1;
    for (int i = 0; i < 500; i++)
        round_of_calls();
    counting = 0;
    if (allocs != 0)
        fail_msg("%ld allocations in %ld requests after the warm-up", allocs, requests);
    print_message("0 allocations in %ld requests after the warm-up\n", requests);
}

/*
 * A batch far longer than one turn is served over many turns: what it
 * allocates (the input held between turns, the output growing) is per
 * batch, not per request.
 */
static void test_long_batch_allocates_per_batch(void **state)
{
    enum { BATCH = 640 }; /* ten turns of PT_TURN_FRAMES */
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    static uint8_t frames[BATCH * 32];
    size_t n = 0;

    (void)state;
    req.op = PYTHREAD__OP__OP_STATE;
    req.has_handle = 1;
    req.handle = event;
    req.has_thread = 1;
    req.thread = 1;
    for (int round = 0; round < 3; round++) {
        allocs = 0;
        counting = round > 0; /* the first round warms up */
        n = 0;
        for (int i = 0; i < BATCH; i++) {
            req.id = ++a.next_id;
            assert_true(n + pt_wire_request_frame_size(&req) <= sizeof frames);
            n += pt_wire_request_frame_pack(&req, frames + n);
        }
        assert_int_equal(write(a.fd, frames, n), (ssize_t)n);
        for (int i = 0; i < BATCH; i++)
            assert_int_equal(read_resp(&a)->status, 0);
        counting = 0;
        if (allocs > BATCH / 32)
            fail_msg("%ld allocations for a batch of %d requests", allocs, BATCH);
    }
    print_message("%ld allocations for a batch of %d requests\n", allocs, BATCH);
}

/* The counter sees the daemon's allocations: a new object needs one. */
static void test_counter_sees_an_open(void **state)
{
    (void)state;
    allocs = 0;
    counting = 1;
    open_obj(&a, "steady.new", PT_KIND_LOCK);
    counting = 0;
    assert_true(allocs > 0);
}

static int setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    event_set_mem_functions(ev_malloc, ev_realloc, ev_free);
    if (inproc_daemon_init(&d) < 0)
        return -1;
    pt_wire_arena_init(&arena, arena_mem, sizeof(arena_mem));
    a.fd = inproc_session(&d);
    b.fd = inproc_session(&d);
    if (a.fd < 0 || b.fd < 0)
        return -1;
    hello(&a);
    hello(&b);
    lock_a = open_obj(&a, "steady.lock", PT_KIND_LOCK);
    lock_b = open_obj(&b, "steady.lock", PT_KIND_LOCK);
    sem = open_obj(&a, "steady.sem", PT_KIND_SEMAPHORE);
    event = open_obj(&a, "steady.event", PT_KIND_EVENT);
    cond = open_obj(&a, "steady.cond", PT_KIND_CONDITION);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    close(a.fd);
    close(b.fd);
    inproc_daemon_free(&d);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steady_state_allocates_nothing),
        cmocka_unit_test(test_long_batch_allocates_per_batch),
        cmocka_unit_test(test_counter_sees_an_open),
    };

    return cmocka_run_group_tests_name("inproc.steady_alloc", tests, setup, teardown);
}
