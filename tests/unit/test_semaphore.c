/*
 * test_semaphore.c - Semaphore and BoundedSemaphore: values, argument
 * rules, FIFO hand-off of released permits, and owned permits.
 */
#include <math.h>

#include "harness.h"

static void test_negative_initial_value(void **state)
{
    pt_session *s = th_session();
    pt_call c = {.name = "s", .kind = PT_KIND_SEMAPHORE, .value = -1, .timeout = -1};

    (void)state;
    assert_error(call_open_full(s, &c), PT_EINVAL, "semaphore initial value must be >= 0");
    c.kind = PT_KIND_BOUNDED_SEMAPHORE;
    assert_error(call_open_full(s, &c), PT_EINVAL, ">= 0");
    assert_int_equal(th_stats().objects, 0);
}

static void test_acquire_counts_down(void **state)
{
    pt_session *s = th_session();
    uint32_t h = th_open_sem(s, "s", 2, 0, 0);
    const th_rec *r;

    (void)state;
    r = call_acquire(s, h, 1, 1, -1, 0);
    assert_answer(r, 1);
    assert_int_equal(r->value, 1);
    assert_answer(call_acquire(s, h, 1, 0, -1, 0), 1);
    assert_answer(call_acquire(s, h, 1, 0, -1, 0), 0);
    assert_answer(call_acquire(s, h, 1, 1, 0, 0), 0);
    /* any negative timeout means "do not wait", as in threading.py */
    assert_answer(call_acquire(s, h, 1, 1, -3, 0), 0);
    assert_answer(call_acquire(s, h, 1, 1, -0.001, 0), 0);
    assert_int_equal(th_stats().waiters, 0);
    r = call_state(s, h, 1);
    assert_int_equal(r->state.value, 0);
    assert_int_equal(r->state.initial, 2);
    assert_int_equal(r->state.kind, PT_KIND_SEMAPHORE);
}

static void test_argument_rules(void **state)
{
    pt_session *s = th_session();
    uint32_t h = th_open_sem(s, "s", 1, 0, 0);

    (void)state;
    assert_error(call_acquire(s, h, 1, 0, 2, 0), PT_EINVAL,
                 "can't specify timeout for non-blocking acquire");
    /* the timeout's value matters only once the caller has to wait */
    assert_answer(call_acquire(s, h, 1, 1, 1e10, 0), 1);
    assert_error(call_acquire(s, h, 1, 1, 1e10, 0), PT_EOVERFLOW, "too large");
    assert_error(call_acquire(s, h, 1, 0, NAN, 0), PT_EINVAL, "non-blocking");
    assert_int_equal(call_state(s, h, 1)->state.value, 0);
    assert_answer(call_release(s, h, 1, 1, 0), 1);
    assert_error(call_release(s, h, 1, 0, 0), PT_EINVAL,
                 "Semaphore 's': release: n must be one or more");
}

/* threading.py's Semaphore.acquire(timeout=nan) computes a NaN end time
 * that never passes: it takes a free permit, else waits for ever. */
static void test_nan_timeout_waits_for_ever(void **state)
{
    pt_session *s = th_session();
    uint32_t h = th_open_sem(s, "s", 1, 0, 0);
    uint64_t id;

    (void)state;
    assert_answer(call_acquire(s, h, 1, 1, NAN, 0), 1);
    assert_null(call_acquire(s, h, 1, 1, NAN, 0));
    id = th_last_id();
    assert_int_equal(pt_core_next_deadline(th_core()), PT_DEADLINE_NONE);
    th_expire(UINT64_MAX - 1);
    assert_null(th_find(id));
    assert_answer(call_release(s, h, 2, 1, TH_S(5)), 1);
    assert_answer(th_find(id), 1);
}

static void test_bounded_release_too_many(void **state)
{
    pt_session *s = th_session();
    uint32_t h = th_open_sem(s, "b", 2, 1, 0);

    (void)state;
    assert_error(call_release(s, h, 1, 1, 0), PT_EINVAL, "Semaphore released too many times");
    assert_answer(call_acquire(s, h, 1, 1, -1, 0), 1);
    assert_answer(call_acquire(s, h, 1, 1, -1, 0), 1);
    assert_error(call_release(s, h, 1, 3, 0), PT_EINVAL, "released too many times");
    assert_answer(call_release(s, h, 1, 2, 0), 1);
    assert_int_equal(call_state(s, h, 1)->state.value, 2);
    assert_error(call_release(s, h, 1, 1, 0), PT_EINVAL, "released too many times");
}

static void test_unbounded_release_raises_value(void **state)
{
    pt_session *s = th_session();
    uint32_t h = th_open_sem(s, "s", 0, 0, 0);
    const th_rec *r;

    (void)state;
    r = call_release(s, h, 1, 5, 0);
    assert_answer(r, 1);
    assert_int_equal(r->value, 5);
    r = call_release(s, h, 1, UINT32_MAX, 0);
    assert_int_equal(r->value, 5 + (int64_t)UINT32_MAX);
    assert_int_equal(call_state(s, h, 1)->state.initial, 0);
}

static void test_unbounded_value_overflow(void **state)
{
    pt_session *s = th_session();
    uint32_t h = th_open_sem(s, "s", INT64_MAX - 1, 0, 0);

    (void)state;
    assert_answer(call_release(s, h, 1, 1, 0), 1);
    assert_error(call_release(s, h, 1, 1, 0), PT_EOVERFLOW, "value would pass");
    assert_int_equal(call_state(s, h, 1)->state.value, INT64_MAX);
}

static void test_release_wakes_waiters_fifo(void **state)
{
    pt_session *s[4];
    uint32_t h[4];
    uint64_t id[4];
    const th_rec *r;

    (void)state;
    for (int i = 0; i < 4; i++) {
        s[i] = th_session();
        h[i] = th_open_sem(s[i], "s", 0, 0, 0);
        assert_null(call_acquire(s[i], h[i], 1, 1, -1, 0));
        id[i] = th_last_id();
    }
    assert_int_equal(call_state(s[0], h[0], 1)->state.n_waiting, 4);
    assert_answer(call_release(s[0], h[0], 1, 1, 0), 1);
    assert_answer(th_find(id[0]), 1);
    assert_null(th_find(id[1]));
    r = call_release(s[0], h[0], 1, 2, 0);
    assert_answer(r, 1);
    assert_int_equal(r->value, 0);
    assert_answer(th_find(id[1]), 1);
    assert_answer(th_find(id[2]), 1);
    assert_null(th_find(id[3]));
    /* more permits than waiters: the rest raise the value */
    r = call_release(s[0], h[0], 1, 3, 0);
    assert_answer(th_find(id[3]), 1);
    assert_int_equal(r->value, 2);
    assert_int_equal(call_state(s[0], h[0], 1)->state.n_waiting, 0);
}

static void test_timed_out_waiter_is_never_granted(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t ha = th_open_sem(a, "s", 0, 0, 0), hb = th_open_sem(b, "s", 0, 0, 0);
    uint64_t id1, id2;

    (void)state;
    assert_null(call_acquire(a, ha, 1, 1, 1, 0));
    id1 = th_last_id();
    assert_null(call_acquire(b, hb, 1, 1, 3, 0));
    id2 = th_last_id();
    th_expire(TH_S(1));
    assert_answer(th_find(id1), 0);
    assert_null(th_find(id2));
    assert_answer(call_release(a, ha, 1, 1, TH_S(2)), 1);
    assert_answer(th_find(id2), 1);
    assert_int_equal(call_state(a, ha, 1)->state.value, 0);
    th_expire(TH_S(5));
    assert_int_equal(th_stats().waiters, 0);
}

static void test_bounded_permits_are_owned(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t ha = th_open_sem(a, "b", 3, 1, 0), hb = th_open_sem(b, "b", 3, 1, 0);

    (void)state;
    assert_answer(call_acquire(a, ha, 1, 1, -1, 0), 1);
    assert_answer(call_acquire(a, ha, 2, 1, -1, 0), 1);
    assert_answer(call_acquire(b, hb, 1, 1, -1, 0), 1);
    assert_int_equal(call_state(b, hb, 1)->state.value, 0);
    th_end(a, 0);
    assert_int_equal(call_state(b, hb, 1)->state.value, 2);
    assert_answer(call_release(b, hb, 1, 1, 0), 1);
    assert_int_equal(call_state(b, hb, 1)->state.value, 3);
}

static void test_plain_permits_are_not_owned(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t ha = th_open_sem(a, "s", 2, 0, 0), hb = th_open_sem(b, "s", 2, 0, 0);

    (void)state;
    assert_answer(call_acquire(a, ha, 1, 1, -1, 0), 1);
    assert_answer(call_acquire(a, ha, 1, 1, -1, 0), 1);
    th_end(a, 0);
    assert_int_equal(call_state(b, hb, 1)->state.value, 0);
}

static void test_flags_flip_ownership(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t ha = th_open_sem(a, "s", 1, 0, PT_OPEN_OWNED);
    uint32_t ha2 = th_open_sem(a, "b", 1, 1, PT_OPEN_UNOWNED);
    uint32_t hb = th_open_sem(b, "s", 1, 0, PT_OPEN_OWNED);
    uint32_t hb2 = th_open_sem(b, "b", 1, 1, PT_OPEN_UNOWNED);
    pt_call both = {.name = "x",
                    .kind = PT_KIND_SEMAPHORE,
                    .value = 1,
                    .timeout = -1,
                    .flags = PT_OPEN_OWNED | PT_OPEN_UNOWNED};

    (void)state;
    assert_answer(call_acquire(a, ha, 1, 1, -1, 0), 1);
    assert_answer(call_acquire(a, ha2, 1, 1, -1, 0), 1);
    th_end(a, 0);
    assert_int_equal(call_state(b, hb, 1)->state.value, 1);
    assert_int_equal(call_state(b, hb2, 1)->state.value, 0);
    assert_error(call_open_full(b, &both), PT_EINVAL, "contradict");
}

static void test_end_hands_owned_permits_to_waiters(void **state)
{
    pt_session *a = th_session(), *b = th_session(), *c = th_session();
    uint32_t ha = th_open_sem(a, "b", 2, 1, 0), hb = th_open_sem(b, "b", 2, 1, 0),
             hc = th_open_sem(c, "b", 2, 1, 0);
    uint64_t idb, idc;

    (void)state;
    assert_answer(call_acquire(a, ha, 1, 1, -1, 0), 1);
    assert_answer(call_acquire(a, ha, 1, 1, -1, 0), 1);
    assert_null(call_acquire(b, hb, 1, 1, -1, 0));
    idb = th_last_id();
    assert_null(call_acquire(c, hc, 1, 1, 10, 0));
    idc = th_last_id();
    th_end(a, TH_S(1));
    assert_answer(th_find(idb), 1);
    assert_answer(th_find(idc), 1);
    assert_int_equal(pt_core_next_deadline(th_core()), PT_DEADLINE_NONE);
    /* the permits now belong to b and c: their end gives them back */
    th_end(b, TH_S(2));
    assert_int_equal(call_state(c, hc, 1)->state.value, 1);
    th_end(c, TH_S(3));
}

static void test_release_counts_own_permits_first(void **state)
{
    pt_session *a = th_session(), *b = th_session(), *c = th_session();
    uint32_t ha = th_open_sem(a, "b", 3, 1, 0), hb = th_open_sem(b, "b", 3, 1, 0),
             hc = th_open_sem(c, "b", 3, 1, 0);

    (void)state;
    assert_answer(call_acquire(a, ha, 1, 1, -1, 0), 1);
    assert_answer(call_acquire(b, hb, 1, 1, -1, 0), 1);
    assert_answer(call_acquire(c, hc, 1, 1, -1, 0), 1);
    /* c releases two: its own, then the oldest other holder's (a's) */
    assert_answer(call_release(c, hc, 1, 2, 0), 1);
    assert_int_equal(call_state(c, hc, 1)->state.value, 2);
    th_end(a, 0);
    assert_int_equal(call_state(c, hc, 1)->state.value, 2);
    th_end(c, 0);
    assert_int_equal(call_state(b, hb, 1)->state.value, 2);
    /* b's permit is still b's: value + holds never pass the bound */
    th_end(b, 0);
}

static void test_value_plus_holds_never_exceed_bound(void **state)
{
    pt_session *a = th_session(), *b = th_session(), *o = th_session();
    uint32_t ha = th_open_sem(a, "b", 2, 1, 0), hb = th_open_sem(b, "b", 2, 1, 0),
             ho = th_open_sem(o, "b", 2, 1, 0);

    (void)state;
    assert_answer(call_acquire(a, ha, 1, 1, -1, 0), 1);
    assert_answer(call_acquire(b, hb, 1, 1, -1, 0), 1);
    /* a third party releases for both (allowed: permits are not locks) */
    assert_answer(call_release(o, ho, 1, 2, 0), 1);
    th_end(a, 0);
    th_end(b, 0);
    assert_int_equal(call_state(o, ho, 1)->state.value, 2);
}

static void test_session_end_cancels_its_waiter(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t ha = th_open_sem(a, "s", 0, 0, 0), hb = th_open_sem(b, "s", 0, 0, 0);
    uint64_t idb;

    (void)state;
    assert_null(call_acquire(a, ha, 1, 1, 5, 0));
    assert_null(call_acquire(b, hb, 1, 1, -1, 0));
    idb = th_last_id();
    th_end(a, 0);
    assert_int_equal(pt_core_next_deadline(th_core()), PT_DEADLINE_NONE);
    assert_answer(call_release(b, hb, 1, 1, 0), 1);
    assert_answer(th_find(idb), 1);
}

static void test_state_value_in_answers(void **state)
{
    pt_session *s = th_session();
    const th_rec *r;
    pt_call c = {.name = "s", .kind = PT_KIND_BOUNDED_SEMAPHORE, .value = 7, .timeout = -1};

    (void)state;
    r = call_open_full(s, &c);
    assert_int_equal(r->status, 0);
    r = call_state(s, r->handle, 0);
    assert_int_equal(r->state.kind, PT_KIND_BOUNDED_SEMAPHORE);
    assert_int_equal(r->state.value, 7);
    assert_int_equal(r->state.initial, 7);
    /* Attaching to it tells its state. */
    c.flags = PT_OPEN_EXISTING;
    r = call_open_full(s, &c);
    assert_false(r->created);
    assert_true(r->has_state);
    assert_int_equal(r->state.value, 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TH_TEST(test_negative_initial_value),
        TH_TEST(test_acquire_counts_down),
        TH_TEST(test_argument_rules),
        TH_TEST(test_nan_timeout_waits_for_ever),
        TH_TEST(test_bounded_release_too_many),
        TH_TEST(test_unbounded_release_raises_value),
        TH_TEST(test_unbounded_value_overflow),
        TH_TEST(test_release_wakes_waiters_fifo),
        TH_TEST(test_timed_out_waiter_is_never_granted),
        TH_TEST(test_bounded_permits_are_owned),
        TH_TEST(test_plain_permits_are_not_owned),
        TH_TEST(test_flags_flip_ownership),
        TH_TEST(test_end_hands_owned_permits_to_waiters),
        TH_TEST(test_release_counts_own_permits_first),
        TH_TEST(test_value_plus_holds_never_exceed_bound),
        TH_TEST(test_session_end_cancels_its_waiter),
        TH_TEST(test_state_value_in_answers),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
