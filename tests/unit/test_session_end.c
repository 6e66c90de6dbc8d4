/*
 * test_session_end.c - what a session's end gives back and to whom: locks
 * at any level, owned permits, queue places, condition re-acquires,
 * barriers, handles, transient objects; and that the ended session itself
 * is never answered (the harness's sink asserts it).
 */
#include "harness.h"

static void test_held_lock_goes_to_first_waiter(void **state)
{
    pt_session *a = th_session(), *b = th_session(), *c = th_session();
    uint32_t ha = th_open(a, "l", PT_KIND_LOCK, 0), hb = th_open(b, "l", PT_KIND_LOCK, 0),
             hc = th_open(c, "l", PT_KIND_LOCK, 0);
    uint64_t idb, idc;

    (void)state;
    assert_answer(call_acquire(a, ha, 1, 1, -1, 0), 1);
    assert_null(call_acquire(b, hb, 1, 1, 5, 0));
    idb = th_last_id();
    assert_null(call_acquire(c, hc, 1, 1, -1, 0));
    idc = th_last_id();
    th_end(a, TH_S(1));
    assert_answer(th_find(idb), 1);
    assert_int_equal(th_find(idb)->token, 2);
    assert_null(th_find(idc));
    assert_int_equal(pt_core_next_deadline(th_core()), PT_DEADLINE_NONE);
    th_end(b, TH_S(2));
    assert_answer(th_find(idc), 1);
}

static void test_rlock_released_at_any_depth(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t ha = th_open(a, "r", PT_KIND_RLOCK, 0), hb = th_open(b, "r", PT_KIND_RLOCK, 0);
    uint64_t idb;

    (void)state;
    for (int i = 0; i < 5; i++)
        assert_answer(call_acquire(a, ha, 1, 1, -1, 0), 1);
    assert_null(call_acquire(b, hb, 1, 1, -1, 0));
    idb = th_last_id();
    th_end(a, 0);
    assert_answer(th_find(idb), 1);
    assert_int_equal(call_state(b, hb, 1)->state.owner_depth, 1);
}

static void test_several_locks_of_several_threads(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t a1 = th_open(a, "l1", PT_KIND_LOCK, 0), a2 = th_open(a, "l2", PT_KIND_RLOCK, 0);
    uint32_t b1 = th_open(b, "l1", PT_KIND_LOCK, 0), b2 = th_open(b, "l2", PT_KIND_RLOCK, 0);

    (void)state;
    assert_answer(call_acquire(a, a1, 1, 1, -1, 0), 1);
    assert_answer(call_acquire(a, a2, 2, 1, -1, 0), 1);
    assert_answer(call_acquire(a, a2, 2, 1, -1, 0), 1);
    th_end(a, 0);
    assert_false(call_state(b, b1, 1)->state.locked);
    assert_false(call_state(b, b2, 1)->state.locked);
    assert_answer(call_acquire(b, b2, 1, 0, -1, 0), 1);
}

static void test_its_waiters_leave_silently(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t ha = th_open(a, "l", PT_KIND_LOCK, 0), hb = th_open(b, "l", PT_KIND_LOCK, 0);
    uint32_t ea = th_open(a, "e", PT_KIND_EVENT, 0), eb = th_open(b, "e", PT_KIND_EVENT, 0);
    size_t mark;

    (void)state;
    assert_answer(call_acquire(b, hb, 1, 1, -1, 0), 1);
    assert_null(call_acquire(a, ha, 1, 1, 3, 0));
    assert_null(call_acquire(a, ha, 2, 1, -1, 0));
    assert_null(call_event_wait(a, ea, 2, 0));
    assert_int_equal(th_stats().waiters, 3);
    mark = th_count();
    th_end(a, 0);
    assert_int_equal(th_since(mark), 0);
    assert_int_equal(th_stats().waiters, 0);
    assert_int_equal(pt_core_next_deadline(th_core()), PT_DEADLINE_NONE);
    assert_int_equal(call_state(b, hb, 1)->state.n_waiting, 0);
    assert_answer(call_release(b, hb, 1, 1, 0), 1);
    assert_false(call_state(b, hb, 1)->state.locked);
    assert_answer(call_set(b, eb), 1);
}

static void test_ending_waiter_does_not_get_the_lock(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t ha = th_open(a, "l", PT_KIND_LOCK, 0), hb = th_open(b, "l", PT_KIND_LOCK, 0);
    uint64_t ida;

    (void)state;
    /* a holds the lock and also waits for it in another thread */
    assert_answer(call_acquire(a, ha, 1, 1, -1, 0), 1);
    assert_null(call_acquire(a, ha, 2, 1, -1, 0));
    ida = th_last_id();
    th_end(a, 0);
    assert_null(th_find(ida));
    assert_false(call_state(b, hb, 1)->state.locked);
}

static void test_condition_reacquirer_removed(void **state)
{
    pt_session *a = th_session(), *b = th_session(), *c = th_session();
    uint32_t ca = th_open_cond(a, "c", 0), cb = th_open_cond(b, "c", 0),
             cc = th_open_cond(c, "c", 0);
    uint64_t idc;

    (void)state;
    assert_answer(call_acquire(a, ca, 1, 1, -1, 0), 1);
    assert_null(call_wait(a, ca, 1, -1, 0));
    assert_answer(call_acquire(c, cc, 1, 1, -1, 0), 1);
    assert_null(call_wait(c, cc, 1, -1, 0));
    idc = th_last_id();
    assert_answer(call_acquire(b, cb, 1, 1, -1, 0), 1);
    assert_int_equal(call_notify(b, cb, 1, 0)->value, 2);
    th_end(a, 0);
    assert_answer(call_release(b, cb, 1, 1, 0), 1);
    assert_answer(th_find(idc), 1);
    assert_answer(call_release(c, cc, 1, 1, 0), 1);
    assert_false(call_state(b, cb, 1)->state.locked);
}

static void test_condition_waiter_removed(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t ca = th_open_cond(a, "c", 0), cb = th_open_cond(b, "c", 0);

    (void)state;
    assert_answer(call_acquire(a, ca, 1, 1, -1, 0), 1);
    assert_null(call_wait(a, ca, 1, 10, 0));
    th_end(a, 0);
    assert_answer(call_acquire(b, cb, 1, 1, -1, 0), 1);
    assert_int_equal(call_state(b, cb, 1)->state.n_waiting, 0);
    assert_int_equal(call_notify(b, cb, 1, 0)->value, 0);
    assert_int_equal(pt_core_next_deadline(th_core()), PT_DEADLINE_NONE);
}

static void test_condition_lock_holder_ends_with_notified_waiters(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t ca = th_open_cond(a, "c", 0), cb = th_open_cond(b, "c", 0);
    uint64_t idb;

    (void)state;
    assert_answer(call_acquire(b, cb, 1, 1, -1, 0), 1);
    assert_answer(call_acquire(b, cb, 1, 1, -1, 0), 1);
    assert_null(call_wait(b, cb, 1, -1, 0));
    idb = th_last_id();
    assert_answer(call_acquire(a, ca, 1, 1, -1, 0), 1);
    assert_answer(call_notify(a, ca, 1, 1), 1);
    th_end(a, 0);
    assert_answer(th_find(idb), 1);
    assert_int_equal(call_state(b, cb, 1)->state.owner_depth, 2);
}

static void test_owned_and_unowned_permits(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t bs = th_open_sem(a, "bs", 2, 1, 0), ps = th_open_sem(a, "ps", 2, 0, 0);
    uint32_t bs2 = th_open_sem(b, "bs", 2, 1, 0), ps2 = th_open_sem(b, "ps", 2, 0, 0);

    (void)state;
    assert_answer(call_acquire(a, bs, 1, 1, -1, 0), 1);
    assert_answer(call_acquire(a, bs, 1, 1, -1, 0), 1);
    assert_answer(call_acquire(a, ps, 1, 1, -1, 0), 1);
    th_end(a, 0);
    assert_int_equal(call_state(b, bs2, 1)->state.value, 2);
    assert_int_equal(call_state(b, ps2, 1)->state.value, 1);
}

static void test_handles_closed_and_transients_end(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t hb;

    (void)state;
    th_open(a, "t1", PT_KIND_LOCK, PT_OPEN_TRANSIENT);
    th_open(a, "t2", PT_KIND_EVENT, PT_OPEN_TRANSIENT);
    th_open(a, "t2", PT_KIND_EVENT, 0);
    th_open(a, "keep", PT_KIND_EVENT, 0);
    hb = th_open(b, "t1", PT_KIND_LOCK, 0);
    assert_answer(call_acquire(a, 1, 1, 1, -1, 0), 1);
    assert_int_equal(th_stats().objects, 3);
    th_end(a, 0);
    /* t2 ended with a; t1 lives through b's handle, released */
    assert_int_equal(th_stats().objects, 2);
    assert_false(call_state(b, hb, 1)->state.locked);
    th_end(b, 0);
    assert_int_equal(th_stats().objects, 1);
}

static void test_unlinked_object_ends_with_session(void **state)
{
    pt_session *a = th_session(), *b = th_session();

    (void)state;
    th_open(a, "u", PT_KIND_LOCK, 0);
    assert_answer(call_acquire(a, 1, 1, 1, -1, 0), 1);
    assert_answer(call_unlink(b, "u"), 1);
    assert_int_equal(th_stats().objects, 1);
    th_end(a, 0);
    assert_int_equal(th_stats().objects, 0);
}

static void test_transient_condition_with_own_lock_held(void **state)
{
    pt_session *a = th_session();
    uint32_t c = th_open(a, "tc", PT_KIND_CONDITION, PT_OPEN_TRANSIENT);

    (void)state;
    assert_answer(call_acquire(a, c, 1, 1, -1, 0), 1);
    assert_answer(call_close(a, c), 1);
    assert_int_equal(th_stats().objects, 0);
    th_end(a, 0);
}

static void test_two_barrier_parties_of_ending_session(void **state)
{
    pt_session *a = th_session(), *b = th_session(), *c = th_session();
    uint32_t ha = th_open_barrier(a, "b", 3, -1), hb = th_open_barrier(b, "b", 3, -1),
             hc = th_open_barrier(c, "b", 3, -1);
    uint64_t idb;

    (void)state;
    /* two parties of a in one cycle: its end breaks it once for b */
    assert_null(call_bwait(a, ha, 1, -1, 0, 0));
    assert_null(call_bwait(b, hb, 1, -1, 0, 0));
    idb = th_last_id();
    th_end(a, 0);
    assert_error(th_find(idb), PT_EBROKEN, "session ended");
    assert_answer(call_reset(c, hc), 1);
    assert_null(call_bwait(c, hc, 1, -1, 0, 0));
    assert_true(call_state(c, hc, 0)->state.n_waiting == 1);
}

static void test_end_with_many_waiters_on_one_barrier(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t ha = th_open_barrier(a, "b", 10, -1), hb = th_open_barrier(b, "b", 10, -1);
    uint64_t idb;

    (void)state;
    for (int i = 0; i < 4; i++)
        assert_null(call_bwait(a, ha, (uint64_t)i, -1, 0, 0));
    assert_null(call_bwait(b, hb, 1, -1, 0, 0));
    idb = th_last_id();
    for (int i = 4; i < 8; i++)
        assert_null(call_bwait(a, ha, (uint64_t)i, -1, 0, 0));
    th_end(a, 0);
    assert_error(th_find(idb), PT_EBROKEN, NULL);
    assert_int_equal(th_stats().waiters, 0);
}

static void test_core_free_with_everything_live(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t la = th_open(a, "l", PT_KIND_LOCK, 0), lb = th_open(b, "l", PT_KIND_LOCK, 0);
    uint32_t c = th_open_cond(a, "c", la);

    (void)state;
    assert_answer(call_acquire(a, la, 1, 1, -1, 0), 1);
    assert_null(call_acquire(b, lb, 1, 1, 5, 0));
    assert_null(call_wait(a, c, 1, 5, 0));
    th_open_barrier(b, "bar", 3, -1);
    assert_null(call_bwait(b, 2, 1, -1, 0, 0));
    th_open_sem(a, "s", 1, 1, 0);
    assert_answer(call_acquire(a, 3, 1, 1, -1, 0), 1);
    /* teardown frees the core: nobody is answered, nothing leaks */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TH_TEST(test_held_lock_goes_to_first_waiter),
        TH_TEST(test_rlock_released_at_any_depth),
        TH_TEST(test_several_locks_of_several_threads),
        TH_TEST(test_its_waiters_leave_silently),
        TH_TEST(test_ending_waiter_does_not_get_the_lock),
        TH_TEST(test_condition_reacquirer_removed),
        TH_TEST(test_condition_waiter_removed),
        TH_TEST(test_condition_lock_holder_ends_with_notified_waiters),
        TH_TEST(test_owned_and_unowned_permits),
        TH_TEST(test_handles_closed_and_transients_end),
        TH_TEST(test_unlinked_object_ends_with_session),
        TH_TEST(test_transient_condition_with_own_lock_held),
        TH_TEST(test_two_barrier_parties_of_ending_session),
        TH_TEST(test_end_with_many_waiters_on_one_barrier),
        TH_TEST(test_core_free_with_everything_live),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
