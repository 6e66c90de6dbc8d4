/*
 * test_limits.c - the per-session waiter limit on every kind that parks,
 * the spares a peak leaves going with it, and out-of-memory answers:
 * malloc, calloc and realloc are wrapped
 * (-Wl,--wrap) to fail the Nth allocation of the core, for every N a
 * scenario needs. Each call must then be answered PT_ENOMEM or succeed,
 * and the core's invariants must hold throughout.
 */
#include <stdlib.h>

#include "harness.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);

static int armed;
static long countdown;
static long failures;

static int should_fail(void)
{
    if (!armed || th_in_sink)
        return 0;
    if (countdown-- == 0) {
        failures++;
        return 1;
    }
    return 0;
}

void *__wrap_malloc(size_t n)
{
    return should_fail() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
    return should_fail() ? NULL : __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n)
{
    return should_fail() ? NULL : __real_realloc(p, n);
}

static void test_waiter_limit_every_kind(void **state)
{
    pt_core_limits lim = {.max_waiters_per_session = 1};
    pt_session *a, *b;
    uint32_t la, lb, ca, sa, ba, bb;

    (void)state;
    th_teardown(NULL);
    th_init(&lim);
    a = th_session();
    b = th_session();
    la = th_open(a, "l", PT_KIND_LOCK, 0);
    lb = th_open(b, "l", PT_KIND_LOCK, 0);
    ca = th_open_cond(a, "c", 0);
    sa = th_open_sem(a, "s", 0, 1, 0);
    ba = th_open_barrier(a, "b", 3, -1);
    bb = th_open_barrier(b, "b", 3, -1);
    assert_answer(call_acquire(b, lb, 1, 1, -1, 0), 1);
    assert_null(call_acquire(a, la, 1, 1, -1, 0));
    assert_error(call_acquire(a, la, 2, 1, -1, 0), PT_ELIMIT,
                 "Lock 'l': acquire: too many parked calls in this session (limit 1)");
    assert_error(call_acquire(a, sa, 1, 1, -1, 0), PT_ELIMIT, "BoundedSemaphore 's': acquire");
    assert_error(call_bwait(a, ba, 1, -1, 0, 0), PT_ELIMIT, "Barrier 'b': wait");
    assert_int_equal(call_state(b, bb, 0)->state.n_waiting, 0);
    /* a refused condition wait keeps the lock */
    assert_answer(call_acquire(a, ca, 3, 1, -1, 0), 1);
    assert_error(call_wait(a, ca, 3, -1, 0), PT_ELIMIT, "Condition 'c': wait");
    assert_int_equal(call_state(a, ca, 3)->state.owner_depth, 1);
    /* nor can an entrant of the next cycle park */
    assert_answer(call_close(a, la), 1);
    assert_null(call_bwait(b, bb, 1, -1, 0, 0));
    assert_null(call_bwait(a, ba, 1, -1, 0, 0));
    assert_true(call_bwait(b, bb, 2, -1, 1, 0)->run_action);
    assert_error(call_bwait(a, ba, 2, -1, 0, 0), PT_ELIMIT, NULL);
    assert_answer(call_action_done(b, bb, 0, 0), 1);
}

/* Touches every allocating path: objects, a condition's own lock, handle
 * chunks, waiters, the heap, semaphore holds and their spares. */
static int scenario(void)
{
    pt_session *a = th_session(), *b = th_session();
    const th_rec *r;
    uint32_t h[8] = {0};
    int answered = 0;

    armed = 1;
    r = call_open(a, "c", PT_KIND_CONDITION, 0);
    h[0] = r->status == 0 ? r->handle : 0;
    r = call_open(b, "c", PT_KIND_CONDITION, 0);
    h[1] = r->status == 0 ? r->handle : 0;
    r = call_open(a, "bs", PT_KIND_BOUNDED_SEMAPHORE, 0);
    h[2] = r->status == 0 ? r->handle : 0;
    r = call_open(b, "bs", PT_KIND_BOUNDED_SEMAPHORE, 0);
    h[3] = r->status == 0 ? r->handle : 0;
    for (int i = 0; i < 70; i++)
        call_open(a, "e", PT_KIND_EVENT, 0);
    if (h[0] && h[1]) {
        call_acquire(a, h[0], 1, 1, -1, 0);
        call_acquire(b, h[1], 1, 1, 5, 0);
        call_wait(a, h[0], 1, 3, 0);
    }
    if (h[2] && h[3]) {
        call_acquire(a, h[2], 1, 1, -1, 0);
        call_acquire(b, h[3], 1, 1, 2, 0);
        call_acquire(b, h[3], 2, 1, -1, 0);
    }
    for (size_t i = 0; i < th_count(); i++) {
        int st = th_at(i)->status;

        assert_true(st == 0 || st == PT_ENOMEM || st == PT_EBADHANDLE);
        answered += st == PT_ENOMEM;
    }
    th_expire(TH_S(3));
    th_end(a, TH_S(3));
    armed = 0;
    th_end(b, TH_S(4));
    assert_int_equal(th_stats().waiters, 0);
    return answered;
}

static void test_out_of_memory_everywhere(void **state)
{
    long n;

    (void)state;
    for (n = 0;; n++) {
        th_init(NULL);
        countdown = n;
        failures = 0;
        scenario();
        th_teardown(NULL);
        if (failures == 0)
            break;
    }
    print_message("allocation failures injected: %ld\n", n);
    /* the scenario allocated n times: every one of them failed once */
    assert_true(n > 10);
}

/* A thousand parked calls end with their session: the waiters kept for
 * reuse shrink with them to a few, and pt_core_trim frees the rest. */
static void test_spares_follow_the_load(void **state)
{
    enum { N = 1000 };
    pt_session *holder = th_session(), *s = th_session();
    uint32_t h, l;

    (void)state;
    l = th_open(holder, "peak", PT_KIND_LOCK, 0);
    assert_answer(call_acquire(holder, l, 1, 1, -1, 0), 1);
    h = th_open(s, "peak", PT_KIND_LOCK, 0);
    for (uint64_t t = 1; t <= N; t++)
        assert_null(call_acquire(s, h, t, 1, -1, 0));
    assert_int_equal(th_stats().waiters, N);
    th_end(s, 0);
    assert_int_equal(th_stats().waiters, 0);
    if (th_stats().spare > 64)
        fail_msg("%llu spare waiters kept after a peak of %d", (unsigned long long)th_stats().spare,
                 N);
    pt_core_trim(th_core());
    assert_int_equal(th_stats().spare, 0);
    /* The core serves on as before. */
    assert_null(call_acquire(holder, l, 2, 1, -1, 0));
    assert_answer(call_release(holder, l, 1, 1, 0), 1);
    th_end(holder, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TH_TEST(test_waiter_limit_every_kind),
        TH_TEST(test_spares_follow_the_load),
        cmocka_unit_test(test_out_of_memory_everywhere),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
