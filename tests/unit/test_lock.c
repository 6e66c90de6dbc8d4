/*
 * test_lock.c - Lock: acquire/release, argument rules, FIFO hand-off,
 * timeouts and fencing tokens.
 */
#include <math.h>

#include "harness.h"

static void test_acquire_free_lock(void **state)
{
    pt_session *s = th_session();
    uint32_t h = th_open(s, "l", PT_KIND_LOCK, 0);
    const th_rec *r;

    (void)state;
    r = call_acquire(s, h, 1, 1, -1, 0);
    assert_answer(r, 1);
    assert_int_equal(r->token, 1);
    r = call_state(s, h, 1);
    assert_true(r->state.locked);
    assert_int_equal(r->state.owner_depth, 1);
    assert_int_equal(r->state.token, 1);
    r = call_state(s, h, 2);
    assert_int_equal(r->state.owner_depth, 0);
}

static void test_nonblocking_on_held_lock_fails(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t ha = th_open(a, "l", PT_KIND_LOCK, 0), hb = th_open(b, "l", PT_KIND_LOCK, 0);

    (void)state;
    assert_answer(call_acquire(a, ha, 1, 1, -1, 0), 1);
    assert_answer(call_acquire(b, hb, 1, 0, -1, 0), 0);
    /* blocking with timeout 0 tries once */
    assert_answer(call_acquire(b, hb, 1, 1, 0, 0), 0);
    assert_int_equal(th_stats().waiters, 0);
}

static void test_lock_is_not_recursive(void **state)
{
    pt_session *s = th_session();
    uint32_t h = th_open(s, "l", PT_KIND_LOCK, 0);

    (void)state;
    assert_answer(call_acquire(s, h, 1, 1, -1, 0), 1);
    assert_answer(call_acquire(s, h, 1, 0, -1, 0), 0);
    /* a blocking acquire by the holder itself parks (Python deadlocks) */
    assert_null(call_acquire(s, h, 1, 1, -1, 0));
    assert_int_equal(th_stats().waiters, 1);
}

static void test_release_unlocked_is_runtime_error(void **state)
{
    pt_session *s = th_session();
    uint32_t h = th_open(s, "jobs", PT_KIND_LOCK, 0);

    (void)state;
    assert_error(call_release(s, h, 1, 1, 0), PT_ERUNTIME,
                 "Lock 'jobs': release: release unlocked lock");
    assert_answer(call_acquire(s, h, 1, 1, -1, 0), 1);
    assert_answer(call_release(s, h, 1, 1, 0), 1);
    assert_error(call_release(s, h, 1, 1, 0), PT_ERUNTIME, "release unlocked lock");
}

static void test_any_owner_may_release(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t ha = th_open(a, "l", PT_KIND_LOCK, 0), hb = th_open(b, "l", PT_KIND_LOCK, 0);

    (void)state;
    assert_answer(call_acquire(a, ha, 1, 1, -1, 0), 1);
    assert_answer(call_release(b, hb, 7, 1, 0), 1);
    assert_false(call_state(a, ha, 1)->state.locked);
    assert_answer(call_acquire(a, ha, 1, 1, -1, 0), 1);
    assert_answer(call_release(a, ha, 2, 1, 0), 1);
}

static void test_argument_rules(void **state)
{
    pt_session *s = th_session();
    uint32_t h = th_open(s, "l", PT_KIND_LOCK, 0);

    (void)state;
    assert_error(call_acquire(s, h, 1, 0, 1, 0), PT_EINVAL,
                 "can't specify a timeout for a non-blocking call");
    assert_error(call_acquire(s, h, 1, 0, 0, 0), PT_EINVAL, "non-blocking");
    assert_error(call_acquire(s, h, 1, 1, -2, 0), PT_EINVAL, "timeout value must be positive");
    assert_error(call_acquire(s, h, 1, 1, -0.5, 0), PT_EINVAL, "must be positive");
    /* CPython converts the timeout first: a huge one overflows before the
     * non-blocking and sign checks are made */
    assert_error(call_acquire(s, h, 1, 0, PT_TIMEOUT_MAX * 2, 0), PT_EOVERFLOW, "too large");
    assert_error(call_acquire(s, h, 1, 1, -PT_TIMEOUT_MAX * 2, 0), PT_EOVERFLOW, "too large");
    assert_error(call_acquire(s, h, 1, 1, NAN, 0), PT_EINVAL, "NaN");
    assert_error(call_acquire(s, h, 1, 0, NAN, 0), PT_EINVAL, "NaN");
    assert_error(call_acquire(s, h, 1, 1, PT_TIMEOUT_MAX * 2, 0), PT_EOVERFLOW, "too large");
    assert_error(call_acquire(s, h, 1, 1, INFINITY, 0), PT_EOVERFLOW, "too large");
    /* none of those took the lock */
    assert_false(call_state(s, h, 1)->state.locked);
    /* the largest timeout and non-blocking with -1 are fine */
    assert_answer(call_acquire(s, h, 1, 1, PT_TIMEOUT_MAX, 0), 1);
    assert_answer(call_acquire(s, h, 2, 0, -1, 0), 0);
}

static void test_fifo_handoff_in_order(void **state)
{
    pt_session *s[5];
    uint32_t h[5];
    uint64_t id[5];

    (void)state;
    for (int i = 0; i < 5; i++) {
        s[i] = th_session();
        h[i] = th_open(s[i], "l", PT_KIND_LOCK, 0);
    }
    assert_answer(call_acquire(s[0], h[0], 1, 1, -1, 0), 1);
    for (int i = 1; i < 5; i++) {
        assert_null(call_acquire(s[i], h[i], 1, 1, -1, 0));
        id[i] = th_last_id();
    }
    assert_int_equal(call_state(s[0], h[0], 1)->state.n_waiting, 4);
    for (int i = 1; i < 5; i++) {
        for (int j = i; j < 5; j++)
            assert_null(th_find(id[j]));
        assert_answer(call_release(s[i - 1], h[i - 1], 1, 1, 0), 1);
        assert_answer(th_find(id[i]), 1);
        assert_int_equal(th_find(id[i])->token, (uint64_t)i + 1);
        assert_ptr_equal(th_find(id[i])->session, s[i]);
    }
    assert_int_equal(call_state(s[4], h[4], 1)->state.owner_depth, 1);
}

static void test_no_barging(void **state)
{
    pt_session *a = th_session(), *b = th_session(), *c = th_session();
    uint32_t ha = th_open(a, "l", PT_KIND_LOCK, 0), hb = th_open(b, "l", PT_KIND_LOCK, 0),
             hc = th_open(c, "l", PT_KIND_LOCK, 0);
    uint64_t idb;

    (void)state;
    assert_answer(call_acquire(a, ha, 1, 1, -1, 0), 1);
    assert_null(call_acquire(b, hb, 1, 1, -1, 0));
    idb = th_last_id();
    assert_answer(call_release(a, ha, 1, 1, 0), 1);
    /* the lock went to b directly: a newcomer cannot take it */
    assert_answer(th_find(idb), 1);
    assert_answer(call_acquire(c, hc, 1, 0, -1, 0), 0);
    assert_answer(call_acquire(a, ha, 1, 0, -1, 0), 0);
    assert_int_equal(call_state(c, hc, 1)->state.n_waiting, 0);
}

static void test_timed_waiter_times_out_and_is_never_granted(void **state)
{
    pt_session *a = th_session(), *b = th_session(), *c = th_session();
    uint32_t ha = th_open(a, "l", PT_KIND_LOCK, 0), hb = th_open(b, "l", PT_KIND_LOCK, 0),
             hc = th_open(c, "l", PT_KIND_LOCK, 0);
    uint64_t idb, idc;

    (void)state;
    assert_answer(call_acquire(a, ha, 1, 1, -1, TH_S(10)), 1);
    assert_null(call_acquire(b, hb, 1, 1, 2.0, TH_S(10)));
    idb = th_last_id();
    assert_null(call_acquire(c, hc, 1, 1, -1, TH_S(10)));
    idc = th_last_id();
    assert_int_equal(pt_core_next_deadline(th_core()), TH_S(12));
    th_expire(TH_S(12) - 1);
    assert_null(th_find(idb));
    th_expire(TH_S(12));
    assert_answer(th_find(idb), 0);
    assert_int_equal(th_find(idb)->token, 0);
    assert_answer(call_release(a, ha, 1, 1, TH_S(13)), 1);
    /* the lock skips the timed-out b and goes to c */
    assert_answer(th_find(idc), 1);
    assert_ptr_equal(th_find(idc)->session, c);
    assert_int_equal(call_state(a, ha, 1)->state.n_waiting, 0);
}

static void test_granted_waiter_leaves_the_heap(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t ha = th_open(a, "l", PT_KIND_LOCK, 0), hb = th_open(b, "l", PT_KIND_LOCK, 0);
    uint64_t idb;

    (void)state;
    assert_answer(call_acquire(a, ha, 1, 1, -1, 0), 1);
    assert_null(call_acquire(b, hb, 1, 1, 5, 0));
    idb = th_last_id();
    assert_int_equal(pt_core_next_deadline(th_core()), TH_S(5));
    assert_answer(call_release(a, ha, 1, 1, TH_S(1)), 1);
    assert_answer(th_find(idb), 1);
    assert_int_equal(pt_core_next_deadline(th_core()), PT_DEADLINE_NONE);
    /* no late timeout answer */
    th_expire(TH_S(100));
    assert_int_equal(th_stats().waiters, 0);
}

static void test_forever_waiter_has_no_deadline(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t ha = th_open(a, "l", PT_KIND_LOCK, 0), hb = th_open(b, "l", PT_KIND_LOCK, 0);
    uint64_t idb;

    (void)state;
    assert_answer(call_acquire(a, ha, 1, 1, -1, 0), 1);
    assert_null(call_acquire(b, hb, 1, 1, -1, 0));
    idb = th_last_id();
    assert_int_equal(pt_core_next_deadline(th_core()), PT_DEADLINE_NONE);
    th_expire(UINT64_MAX - 1);
    assert_null(th_find(idb));
}

static void test_tokens_only_grow(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t ha = th_open(a, "l", PT_KIND_LOCK, 0), hb = th_open(b, "l", PT_KIND_LOCK, 0);
    uint64_t last = 0;

    (void)state;
    for (int i = 0; i < 10; i++) {
        pt_session *s = i % 2 ? a : b;
        uint32_t h = i % 2 ? ha : hb;
        const th_rec *r = call_acquire(s, h, 1, 1, -1, 0);

        assert_answer(r, 1);
        assert_true(r->token > last);
        last = r->token;
        assert_int_equal(call_state(s, h, 1)->state.token, last);
        assert_answer(call_release(s, h, 1, 1, 0), 1);
    }
    /* a failed try does not consume a token */
    assert_answer(call_acquire(a, ha, 1, 1, -1, 0), 1);
    assert_answer(call_acquire(b, hb, 1, 0, -1, 0), 0);
    assert_int_equal(call_state(b, hb, 1)->state.token, last + 1);
}

/* The daemon's token base: tokens continue above it, each object counts on
 * from the highest token given when it was created (so a name made again
 * never goes back), and a lower base later lowers nothing. */
static void test_token_base(void **state)
{
    pt_session *s = th_session();
    uint32_t ha = th_open(s, "a", PT_KIND_LOCK, 0), hb;
    uint32_t hr = th_open(s, "r", PT_KIND_RLOCK, 0);

    (void)state;
    pt_core_set_token_base(th_core(), 1000);
    hb = th_open(s, "b", PT_KIND_LOCK, 0);
    /* objects created before the base keep their count; a new one starts above it */
    assert_int_equal(call_acquire(s, ha, 1, 1, -1, 0)->token, 1);
    assert_int_equal(call_state(s, hb, 1)->state.token, 0); /* none given yet */
    assert_int_equal(call_acquire(s, hb, 1, 1, -1, 0)->token, 1001);
    assert_answer(call_release(s, hb, 1, 1, 0), 1);
    assert_int_equal(call_acquire(s, hb, 1, 1, -1, 0)->token, 1002);
    assert_int_equal(call_state(s, hb, 1)->state.token, 1002);
    assert_int_equal(call_acquire(s, hr, 1, 1, -1, 0)->token, 1);
    /* made again after an unlink, "b" goes on above every token given */
    assert_answer(call_unlink(s, "b"), 1);
    assert_answer(call_close(s, hb), 1);
    hb = th_open(s, "b", PT_KIND_LOCK, 0);
    assert_int_equal(call_acquire(s, hb, 1, 1, -1, 0)->token, 1003);
    pt_core_set_token_base(th_core(), 5);
    ha = th_open(s, "c", PT_KIND_RLOCK, 0);
    assert_int_equal(call_acquire(s, ha, 1, 1, -1, 0)->token, 1004);
    assert_int_equal(call_acquire(s, ha, 1, 1, -1, 0)->token, 1004); /* nested: same holding */
}

static void test_state_of_free_lock(void **state)
{
    pt_session *s = th_session();
    const th_rec *r = call_open(s, "l", PT_KIND_LOCK, 0);

    (void)state;
    assert_int_equal(r->status, 0);
    /* Creating says nothing of the state: it is what was asked for. */
    assert_true(r->created);
    assert_false(r->has_state);
    r = call_state(s, r->handle, 1);
    assert_int_equal(r->state.kind, PT_KIND_LOCK);
    assert_false(r->state.locked);
    assert_int_equal(r->state.token, 0);
    assert_int_equal(r->state.n_waiting, 0);
}

static void test_release_by_waiter_thread_of_same_session(void **state)
{
    pt_session *s = th_session();
    uint32_t h = th_open(s, "l", PT_KIND_LOCK, 0);
    uint64_t id;

    (void)state;
    assert_answer(call_acquire(s, h, 1, 1, -1, 0), 1);
    assert_null(call_acquire(s, h, 2, 1, -1, 0));
    id = th_last_id();
    assert_answer(call_release(s, h, 1, 1, 0), 1);
    assert_answer(th_find(id), 1);
    assert_int_equal(call_state(s, h, 2)->state.owner_depth, 1);
    assert_int_equal(call_state(s, h, 1)->state.owner_depth, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TH_TEST(test_acquire_free_lock),
        TH_TEST(test_nonblocking_on_held_lock_fails),
        TH_TEST(test_lock_is_not_recursive),
        TH_TEST(test_release_unlocked_is_runtime_error),
        TH_TEST(test_any_owner_may_release),
        TH_TEST(test_argument_rules),
        TH_TEST(test_fifo_handoff_in_order),
        TH_TEST(test_no_barging),
        TH_TEST(test_timed_waiter_times_out_and_is_never_granted),
        TH_TEST(test_granted_waiter_leaves_the_heap),
        TH_TEST(test_forever_waiter_has_no_deadline),
        TH_TEST(test_tokens_only_grow),
        TH_TEST(test_token_base),
        TH_TEST(test_state_of_free_lock),
        TH_TEST(test_release_by_waiter_thread_of_same_session),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
