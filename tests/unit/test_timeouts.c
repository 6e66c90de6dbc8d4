/*
 * test_timeouts.c - deadlines: rounding, saturation, order of expiry,
 * earliest deadline, and removal of waiters answered early.
 */
#include <math.h>

#include "core_int.h"
#include "harness.h"

static void test_deadline_arithmetic(void **state)
{
    (void)state;
    assert_int_equal(pt__deadline(100, -1), PT_DEADLINE_NONE);
    /* NaN never passes (threading's loops never give up on it) */
    assert_int_equal(pt__deadline(100, NAN), PT_DEADLINE_NONE);
    assert_int_equal(pt__deadline(100, 1), 100 + PT_NS_PER_SEC);
    assert_int_equal(pt__deadline(0, 1.5), 1500000000ull);
    /* rounded up: a timeout never ends early */
    assert_int_equal(pt__deadline(0, 1e-10), 1);
    assert_int_equal(pt__deadline(0, 1.0000000001), PT_NS_PER_SEC + 1);
    assert_int_equal(pt__deadline(5, 0.0000000015), 5 + 2);
    /* saturates below "none" */
    assert_int_equal(pt__deadline(UINT64_MAX - 10, 1), PT_DEADLINE_NONE - 1);
    assert_int_equal(pt__deadline(0, 1e30), PT_DEADLINE_NONE - 1);
    assert_int_equal(pt__deadline(0, PT_TIMEOUT_MAX), 9223372036000000000ull);
}

static void test_next_deadline_is_earliest(void **state)
{
    pt_session *s = th_session();
    uint32_t e = th_open(s, "e", PT_KIND_EVENT, 0);

    (void)state;
    assert_int_equal(pt_core_next_deadline(th_core()), PT_DEADLINE_NONE);
    assert_null(call_event_wait(s, e, 5, 0));
    assert_int_equal(pt_core_next_deadline(th_core()), TH_S(5));
    assert_null(call_event_wait(s, e, 2, 0));
    assert_int_equal(pt_core_next_deadline(th_core()), TH_S(2));
    assert_null(call_event_wait(s, e, 9, 0));
    assert_null(call_event_wait(s, e, -1, 0));
    assert_int_equal(pt_core_next_deadline(th_core()), TH_S(2));
    th_expire(TH_S(2));
    assert_int_equal(pt_core_next_deadline(th_core()), TH_S(5));
    th_expire(TH_S(100));
    assert_int_equal(pt_core_next_deadline(th_core()), PT_DEADLINE_NONE);
    assert_int_equal(th_stats().waiters, 1);
}

static void test_expiry_order_and_ties(void **state)
{
    pt_session *s = th_session();
    uint32_t e = th_open(s, "e", PT_KIND_EVENT, 0);
    double t[8] = {3, 1, 2, 1, 3, 0.5, 2, 1};
    int want[8] = {5, 1, 3, 7, 2, 6, 0, 4};
    uint64_t id[8];
    size_t mark;

    (void)state;
    for (int i = 0; i < 8; i++) {
        assert_null(call_event_wait(s, e, t[i], 0));
        id[i] = th_last_id();
    }
    mark = th_count();
    th_expire(TH_S(3));
    assert_int_equal(th_since(mark), 8);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(th_at(mark + (size_t)i)->id, id[want[i]]);
        assert_answer(th_at(mark + (size_t)i), 0);
    }
}

static void test_expire_before_deadline_does_nothing(void **state)
{
    pt_session *s = th_session();
    uint32_t e = th_open(s, "e", PT_KIND_EVENT, 0);
    size_t mark;

    (void)state;
    assert_null(call_event_wait(s, e, 1, TH_S(10)));
    mark = th_count();
    th_expire(0);
    th_expire(TH_S(11) - 1);
    assert_int_equal(th_since(mark), 0);
    th_expire(TH_S(11));
    assert_int_equal(th_since(mark), 1);
}

/* Many waiters on several objects with pseudo-random deadlines, some
 * answered early: the rest must expire exactly in deadline order. */
static void test_heap_with_early_removals(void **state)
{
    enum { N = 600 };
    pt_session *s = th_session();
    uint32_t ev[3] = {th_open(s, "e0", PT_KIND_EVENT, 0), th_open(s, "e1", PT_KIND_EVENT, 0),
                      th_open(s, "e2", PT_KIND_EVENT, 0)};
    static uint64_t id[N], dl[N];
    uint32_t x = 12345;
    uint64_t last = 0;
    size_t mark;

    (void)state;
    for (int i = 0; i < N; i++) {
        x = x * 1103515245u + 12345u;
        dl[i] = 1 + (x >> 8) % 100000;
        assert_null(call_event_wait(s, ev[i % 3], (double)dl[i] / 1e9, 0));
        id[i] = th_last_id();
    }
    /* e1's waiters leave the heap early */
    assert_answer(call_set(s, ev[1]), 1);
    mark = th_count();
    th_expire(UINT64_MAX - 1);
    assert_int_equal(th_since(mark), N - N / 3);
    for (size_t k = mark; k < th_count(); k++) {
        const th_rec *r = th_at(k);
        int i = -1;

        for (int j = 0; j < N; j++) {
            if (id[j] == r->id)
                i = j;
        }
        assert_true(i >= 0 && i % 3 != 1);
        assert_true(dl[i] >= last);
        last = dl[i];
    }
    assert_int_equal(th_stats().waiters, 0);
}

static void test_timeout_answer_for_each_kind(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t l = th_open(a, "l", PT_KIND_LOCK, 0), lb = th_open(b, "l", PT_KIND_LOCK, 0);
    uint32_t sm = th_open_sem(b, "s", 0, 0, 0), e = th_open(b, "e", PT_KIND_EVENT, 0);
    uint64_t id[3];

    (void)state;
    assert_answer(call_acquire(a, l, 1, 1, -1, 0), 1);
    assert_null(call_acquire(b, lb, 1, 1, 1, 0));
    id[0] = th_last_id();
    assert_null(call_acquire(b, sm, 1, 1, 1, 0));
    id[1] = th_last_id();
    assert_null(call_event_wait(b, e, 1, 0));
    id[2] = th_last_id();
    th_expire(TH_S(1));
    for (int i = 0; i < 3; i++) {
        assert_answer(th_find(id[i]), 0);
        assert_int_equal(th_find(id[i])->token, 0);
    }
}

static void test_waiter_structs_are_reused(void **state)
{
    pt_session *s = th_session();
    uint32_t e = th_open(s, "e", PT_KIND_EVENT, 0);

    (void)state;
    for (int round = 0; round < 100; round++) {
        for (int i = 0; i < 10; i++)
            assert_null(call_event_wait(s, e, 1, 0));
        assert_int_equal(th_stats().waiters, 10);
        assert_answer(call_set(s, e), 1);
        assert_answer(call_clear(s, e), 1);
    }
    assert_int_equal(th_stats().waiters, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TH_TEST(test_deadline_arithmetic),       TH_TEST(test_next_deadline_is_earliest),
        TH_TEST(test_expiry_order_and_ties),     TH_TEST(test_expire_before_deadline_does_nothing),
        TH_TEST(test_heap_with_early_removals),  TH_TEST(test_timeout_answer_for_each_kind),
        TH_TEST(test_waiter_structs_are_reused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
