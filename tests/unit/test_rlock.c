/*
 * test_rlock.c - RLock: owner and recursion level, release rules, hand-off
 * and tokens.
 */
#include <math.h>

#include "core_int.h"
#include "harness.h"

static void test_owner_reacquires_with_same_token(void **state)
{
    pt_session *s = th_session();
    uint32_t h = th_open(s, "r", PT_KIND_RLOCK, 0);
    const th_rec *r;

    (void)state;
    r = call_acquire(s, h, 1, 1, -1, 0);
    assert_answer(r, 1);
    assert_int_equal(r->token, 1);
    for (int i = 2; i <= 4; i++) {
        r = call_acquire(s, h, 1, 0, -1, 0);
        assert_answer(r, 1);
        assert_int_equal(r->token, 1);
        assert_int_equal(call_state(s, h, 1)->state.owner_depth, (uint32_t)i);
    }
}

static void test_other_thread_cannot_take_or_release(void **state)
{
    pt_session *s = th_session();
    uint32_t h = th_open(s, "r", PT_KIND_RLOCK, 0);

    (void)state;
    assert_answer(call_acquire(s, h, 1, 1, -1, 0), 1);
    assert_answer(call_acquire(s, h, 2, 0, -1, 0), 0);
    assert_error(call_release(s, h, 2, 1, 0), PT_ERUNTIME,
                 "RLock 'r': release: cannot release un-acquired lock");
    assert_int_equal(call_state(s, h, 2)->state.owner_depth, 0);
    assert_true(call_state(s, h, 2)->state.locked);
}

static void test_other_session_same_thread_id_is_another_owner(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t ha = th_open(a, "r", PT_KIND_RLOCK, 0), hb = th_open(b, "r", PT_KIND_RLOCK, 0);

    (void)state;
    assert_answer(call_acquire(a, ha, 1, 1, -1, 0), 1);
    assert_answer(call_acquire(b, hb, 1, 0, -1, 0), 0);
    assert_error(call_release(b, hb, 1, 1, 0), PT_ERUNTIME, "un-acquired");
}

static void test_release_free_rlock(void **state)
{
    pt_session *s = th_session();
    uint32_t h = th_open(s, "r", PT_KIND_RLOCK, 0);

    (void)state;
    assert_error(call_release(s, h, 1, 1, 0), PT_ERUNTIME, "cannot release un-acquired lock");
}

static void test_depth_unwinds_then_hands_off(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t ha = th_open(a, "r", PT_KIND_RLOCK, 0), hb = th_open(b, "r", PT_KIND_RLOCK, 0);
    uint64_t idb;

    (void)state;
    for (int i = 0; i < 3; i++)
        assert_answer(call_acquire(a, ha, 1, 1, -1, 0), 1);
    assert_null(call_acquire(b, hb, 9, 1, -1, 0));
    idb = th_last_id();
    assert_answer(call_release(a, ha, 1, 1, 0), 1);
    assert_answer(call_release(a, ha, 1, 1, 0), 1);
    assert_null(th_find(idb));
    assert_int_equal(call_state(a, ha, 1)->state.owner_depth, 1);
    assert_answer(call_release(a, ha, 1, 1, 0), 1);
    assert_answer(th_find(idb), 1);
    assert_int_equal(th_find(idb)->token, 2);
    assert_int_equal(call_state(b, hb, 9)->state.owner_depth, 1);
    assert_error(call_release(a, ha, 1, 1, 0), PT_ERUNTIME, "un-acquired");
}

static void test_argument_rules(void **state)
{
    pt_session *s = th_session();
    uint32_t h = th_open(s, "r", PT_KIND_RLOCK, 0);

    (void)state;
    assert_error(call_acquire(s, h, 1, 0, 3, 0), PT_EINVAL, "non-blocking");
    assert_error(call_acquire(s, h, 1, 1, -7, 0), PT_EINVAL, "must be positive");
    assert_error(call_acquire(s, h, 1, 1, 1e12, 0), PT_EOVERFLOW, "too large");
    assert_error(call_acquire(s, h, 1, 1, NAN, 0), PT_EINVAL, "NaN");
    /* the owner's nested acquire checks its arguments too */
    assert_answer(call_acquire(s, h, 1, 1, -1, 0), 1);
    assert_error(call_acquire(s, h, 1, 0, 3, 0), PT_EINVAL, "non-blocking");
    assert_int_equal(call_state(s, h, 1)->state.owner_depth, 1);
}

static void test_depth_overflow(void **state)
{
    pt_session *s = th_session();
    uint32_t h = th_open(s, "r", PT_KIND_RLOCK, 0);
    pt_obj *obj = pt__handle_get(s, h)->obj;

    (void)state;
    assert_answer(call_acquire(s, h, 1, 1, -1, 0), 1);
    obj->u.lock.depth = UINT32_MAX - 1;
    assert_answer(call_acquire(s, h, 1, 1, -1, 0), 1);
    assert_error(call_acquire(s, h, 1, 1, -1, 0), PT_EOVERFLOW, "count overflowed");
    assert_int_equal(obj->u.lock.depth, UINT32_MAX);
    obj->u.lock.depth = 1;
}

static void test_fifo_among_threads(void **state)
{
    pt_session *s = th_session();
    uint32_t h = th_open(s, "r", PT_KIND_RLOCK, 0);
    uint64_t id[4];

    (void)state;
    assert_answer(call_acquire(s, h, 100, 1, -1, 0), 1);
    for (int i = 0; i < 4; i++) {
        assert_null(call_acquire(s, h, (uint64_t)i + 1, 1, -1, 0));
        id[i] = th_last_id();
    }
    assert_answer(call_release(s, h, 100, 1, 0), 1);
    for (int i = 0; i < 4; i++) {
        assert_answer(th_find(id[i]), 1);
        for (int j = i + 1; j < 4; j++)
            assert_null(th_find(id[j]));
        assert_answer(call_release(s, h, (uint64_t)i + 1, 1, 0), 1);
    }
    assert_false(call_state(s, h, 1)->state.locked);
}

static void test_timeout_then_owner_releases(void **state)
{
    pt_session *s = th_session();
    uint32_t h = th_open(s, "r", PT_KIND_RLOCK, 0);
    uint64_t id;

    (void)state;
    assert_answer(call_acquire(s, h, 1, 1, -1, 0), 1);
    assert_null(call_acquire(s, h, 2, 1, 0.5, 0));
    id = th_last_id();
    th_expire(TH_S(1));
    assert_answer(th_find(id), 0);
    assert_answer(call_release(s, h, 1, 1, TH_S(1)), 1);
    assert_false(call_state(s, h, 1)->state.locked);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TH_TEST(test_owner_reacquires_with_same_token),
        TH_TEST(test_other_thread_cannot_take_or_release),
        TH_TEST(test_other_session_same_thread_id_is_another_owner),
        TH_TEST(test_release_free_rlock),
        TH_TEST(test_depth_unwinds_then_hands_off),
        TH_TEST(test_argument_rules),
        TH_TEST(test_depth_overflow),
        TH_TEST(test_fifo_among_threads),
        TH_TEST(test_timeout_then_owner_releases),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
