/*
 * test_condition.c - Condition: ownership rules, wait/notify, restoring the
 * lock level, timeouts, the shared FIFO of the lock, and named locks.
 */
#include <math.h>

#include "harness.h"

static void test_wait_and_notify_need_the_lock(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t ca = th_open_cond(a, "c", 0), cb = th_open_cond(b, "c", 0);

    (void)state;
    assert_error(call_wait(a, ca, 1, -1, 0), PT_ERUNTIME,
                 "Condition 'c': wait: cannot wait on un-acquired lock");
    assert_error(call_notify(a, ca, 1, 1), PT_ERUNTIME,
                 "Condition 'c': notify: cannot notify on un-acquired lock");
    /* held by another owner: still not ours */
    assert_answer(call_acquire(b, cb, 1, 1, -1, 0), 1);
    assert_error(call_wait(a, ca, 1, -1, 0), PT_ERUNTIME, "un-acquired");
    assert_error(call_notify(a, ca, 1, 0), PT_ERUNTIME, "un-acquired");
    assert_error(call_wait(b, cb, 2, -1, 0), PT_ERUNTIME, "un-acquired");
    /* ownership is checked before the timeout */
    assert_error(call_wait(a, ca, 1, 1e300, 0), PT_ERUNTIME, "un-acquired");
}

static void test_wait_releases_notify_reacquires(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t ca = th_open_cond(a, "c", 0), cb = th_open_cond(b, "c", 0);
    uint64_t ida;
    const th_rec *r;

    (void)state;
    assert_answer(call_acquire(a, ca, 1, 1, -1, 0), 1);
    assert_null(call_wait(a, ca, 1, -1, 0));
    ida = th_last_id();
    /* the lock is free for b meanwhile */
    r = call_acquire(b, cb, 1, 1, -1, 0);
    assert_answer(r, 1);
    assert_int_equal(r->token, 2);
    assert_int_equal(call_state(b, cb, 1)->state.n_waiting, 1);
    r = call_notify(b, cb, 1, 1);
    assert_answer(r, 1);
    assert_int_equal(r->value, 1);
    /* notified, but answered only once it holds the lock again */
    assert_null(th_find(ida));
    assert_int_equal(call_state(b, cb, 1)->state.n_waiting, 0);
    assert_answer(call_release(b, cb, 1, 1, 0), 1);
    r = th_find(ida);
    assert_answer(r, 1);
    assert_int_equal(r->token, 3);
    assert_int_equal(call_state(a, ca, 1)->state.owner_depth, 1);
    assert_answer(call_release(a, ca, 1, 1, 0), 1);
}

static void test_rlock_level_is_restored(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t ca = th_open_cond(a, "c", 0), cb = th_open_cond(b, "c", 0);
    uint64_t ida;

    (void)state;
    for (int i = 0; i < 3; i++)
        assert_answer(call_acquire(a, ca, 1, 1, -1, 0), 1);
    assert_null(call_wait(a, ca, 1, -1, 0));
    ida = th_last_id();
    assert_false(call_state(b, cb, 1)->state.locked);
    assert_answer(call_acquire(b, cb, 1, 1, -1, 0), 1);
    assert_answer(call_notify(b, cb, 1, 0), 1);
    assert_answer(call_release(b, cb, 1, 1, 0), 1);
    assert_answer(th_find(ida), 1);
    assert_int_equal(call_state(a, ca, 1)->state.owner_depth, 3);
    for (int i = 0; i < 3; i++)
        assert_answer(call_release(a, ca, 1, 1, 0), 1);
    assert_error(call_release(a, ca, 1, 1, 0), PT_ERUNTIME, "un-acquired");
}

static void test_notify_n_in_fifo_order(void **state)
{
    pt_session *s = th_session();
    uint32_t c = th_open_cond(s, "c", 0);
    uint64_t id[5];
    const th_rec *r;

    (void)state;
    for (int i = 0; i < 5; i++) {
        assert_answer(call_acquire(s, c, (uint64_t)i + 1, 1, -1, 0), 1);
        assert_null(call_wait(s, c, (uint64_t)i + 1, -1, 0));
        id[i] = th_last_id();
    }
    assert_answer(call_acquire(s, c, 99, 1, -1, 0), 1);
    r = call_notify(s, c, 99, 2);
    assert_int_equal(r->value, 2);
    assert_int_equal(call_state(s, c, 99)->state.n_waiting, 3);
    assert_answer(call_release(s, c, 99, 1, 0), 1);
    assert_answer(th_find(id[0]), 1);
    assert_null(th_find(id[1]));
    assert_answer(call_release(s, c, 1, 1, 0), 1);
    assert_answer(th_find(id[1]), 1);
    assert_null(th_find(id[2]));
    /* notify(0) is notify_all; more than waiting moves what there is */
    r = call_notify(s, c, 2, 0);
    assert_int_equal(r->value, 3);
    assert_int_equal(call_notify(s, c, 2, 10)->value, 0);
    for (int i = 2; i < 5; i++) {
        assert_answer(call_release(s, c, (uint64_t)i, 1, 0), 1);
        assert_answer(th_find(id[i]), 1);
        for (int j = i + 1; j < 5; j++)
            assert_null(th_find(id[j]));
    }
}

static void test_notify_without_waiters(void **state)
{
    pt_session *s = th_session();
    uint32_t c = th_open_cond(s, "c", 0);
    const th_rec *r;

    (void)state;
    assert_answer(call_acquire(s, c, 1, 1, -1, 0), 1);
    r = call_notify(s, c, 1, 1);
    assert_answer(r, 1);
    assert_int_equal(r->value, 0);
}

static void test_timeout_with_free_lock_answers_at_once(void **state)
{
    pt_session *s = th_session();
    uint32_t c = th_open_cond(s, "c", 0);
    uint64_t id;
    const th_rec *r;

    (void)state;
    assert_answer(call_acquire(s, c, 1, 1, -1, 0), 1);
    assert_null(call_wait(s, c, 1, 1.5, TH_S(1)));
    id = th_last_id();
    assert_int_equal(pt_core_next_deadline(th_core()), TH_S(1) + TH_S(3) / 2);
    th_expire(TH_S(2));
    assert_null(th_find(id));
    th_expire(TH_S(3));
    r = th_find(id);
    assert_answer(r, 0);
    assert_int_equal(r->token, 2);
    assert_int_equal(call_state(s, c, 1)->state.owner_depth, 1);
    /* a timed-out waiter is not notified afterwards */
    assert_int_equal(call_notify(s, c, 1, 0)->value, 0);
}

static void test_timeout_while_lock_held_waits_for_it(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t ca = th_open_cond(a, "c", 0), cb = th_open_cond(b, "c", 0);
    uint64_t ida;

    (void)state;
    assert_answer(call_acquire(a, ca, 1, 1, -1, 0), 1);
    assert_null(call_wait(a, ca, 1, 1, 0));
    ida = th_last_id();
    assert_answer(call_acquire(b, cb, 1, 1, -1, 0), 1);
    th_expire(TH_S(1));
    assert_null(th_find(ida));
    assert_int_equal(call_state(b, cb, 1)->state.n_waiting, 0);
    assert_answer(call_release(b, cb, 1, 1, 0), 1);
    assert_answer(th_find(ida), 0);
    assert_int_equal(call_state(a, ca, 1)->state.owner_depth, 1);
}

static void test_zero_or_negative_timeout_does_not_block(void **state)
{
    pt_session *s = th_session();
    uint32_t c = th_open_cond(s, "c", 0);
    const th_rec *r;

    (void)state;
    assert_answer(call_acquire(s, c, 1, 1, -1, 0), 1);
    assert_answer(call_acquire(s, c, 1, 1, -1, 0), 1);
    r = call_wait(s, c, 1, 0, 0);
    assert_answer(r, 0);
    assert_int_equal(r->token, 2);
    assert_int_equal(call_state(s, c, 1)->state.owner_depth, 2);
    r = call_wait(s, c, 1, -5, 0);
    assert_answer(r, 0);
    assert_int_equal(r->token, 3);
    assert_int_equal(th_stats().waiters, 0);
}

static void test_zero_timeout_queues_behind_lock_waiters(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t ca = th_open_cond(a, "c", 0), cb = th_open_cond(b, "c", 0);
    uint64_t idb, ida;

    (void)state;
    assert_answer(call_acquire(a, ca, 1, 1, -1, 0), 1);
    assert_null(call_acquire(b, cb, 1, 1, -1, 0));
    idb = th_last_id();
    /* a releases the lock to b and must re-acquire behind it */
    assert_null(call_wait(a, ca, 1, 0, 0));
    ida = th_last_id();
    assert_answer(th_find(idb), 1);
    assert_answer(call_release(b, cb, 1, 1, 0), 1);
    assert_answer(th_find(ida), 0);
}

static void test_forever_wait_has_no_deadline(void **state)
{
    pt_session *s = th_session();
    uint32_t c = th_open_cond(s, "c", 0);
    uint64_t id;

    (void)state;
    assert_answer(call_acquire(s, c, 1, 1, -1, 0), 1);
    assert_null(call_wait(s, c, 1, -1, 0));
    id = th_last_id();
    assert_int_equal(pt_core_next_deadline(th_core()), PT_DEADLINE_NONE);
    th_expire(UINT64_MAX - 1);
    assert_null(th_find(id));
}

static void test_wait_argument_rules(void **state)
{
    pt_session *s = th_session();
    uint32_t c = th_open_cond(s, "c", 0);

    (void)state;
    assert_answer(call_acquire(s, c, 1, 1, -1, 0), 1);
    assert_error(call_wait(s, c, 1, PT_TIMEOUT_MAX + 1e6, 0), PT_EOVERFLOW, "too large");
    /* a refused wait did not release the lock */
    assert_int_equal(call_state(s, c, 1)->state.owner_depth, 1);
    /* NaN is not > 0: like threading.py, a wait that does not block, answered
     * False once the lock is back */
    assert_answer(call_wait(s, c, 1, NAN, 0), 0);
    assert_int_equal(call_state(s, c, 1)->state.owner_depth, 1);
    /* acquire through a condition follows the lock's rules */
    assert_error(call_acquire(s, c, 2, 0, 1, 0), PT_EINVAL, "non-blocking");
    assert_error(call_acquire(s, c, 2, 1, -3, 0), PT_EINVAL, "must be positive");
}

static void test_notified_waiter_cannot_time_out(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t ca = th_open_cond(a, "c", 0), cb = th_open_cond(b, "c", 0);
    uint64_t ida;

    (void)state;
    assert_answer(call_acquire(a, ca, 1, 1, -1, 0), 1);
    assert_null(call_wait(a, ca, 1, 2, 0));
    ida = th_last_id();
    assert_answer(call_acquire(b, cb, 1, 1, -1, 0), 1);
    assert_answer(call_notify(b, cb, 1, 1), 1);
    assert_int_equal(pt_core_next_deadline(th_core()), PT_DEADLINE_NONE);
    th_expire(TH_S(10));
    assert_null(th_find(ida));
    assert_answer(call_release(b, cb, 1, 1, TH_S(10)), 1);
    assert_answer(th_find(ida), 1);
}

static void test_lock_queue_shared_fifo(void **state)
{
    pt_session *a = th_session(), *b = th_session(), *c = th_session();
    uint32_t ca = th_open_cond(a, "c", 0), cb = th_open_cond(b, "c", 0),
             cc = th_open_cond(c, "c", 0);
    uint64_t ida, idc;

    (void)state;
    assert_answer(call_acquire(a, ca, 1, 1, -1, 0), 1);
    assert_null(call_wait(a, ca, 1, -1, 0));
    ida = th_last_id();
    assert_answer(call_acquire(b, cb, 1, 1, -1, 0), 1);
    /* c queues for the lock before a is notified */
    assert_null(call_acquire(c, cc, 1, 1, -1, 0));
    idc = th_last_id();
    assert_answer(call_notify(b, cb, 1, 1), 1);
    assert_int_equal(call_state(b, cb, 1)->state.n_waiting, 0);
    assert_answer(call_release(b, cb, 1, 1, 0), 1);
    assert_answer(th_find(idc), 1);
    assert_null(th_find(ida));
    assert_answer(call_release(c, cc, 1, 1, 0), 1);
    assert_answer(th_find(ida), 1);
}

static void test_named_lock(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t la = th_open(a, "m", PT_KIND_LOCK, 0), lb = th_open(b, "m", PT_KIND_LOCK, 0);
    uint32_t ca = th_open_cond(a, "c", la), cb = th_open_cond(b, "c", lb);
    uint64_t ida;
    const th_rec *r;

    (void)state;
    /* acquiring the lock itself makes the condition usable */
    assert_answer(call_acquire(a, la, 1, 1, -1, 0), 1);
    assert_true(call_state(a, ca, 1)->state.locked);
    assert_int_equal(call_state(a, ca, 1)->state.owner_depth, 1);
    assert_null(call_wait(a, ca, 1, -1, 0));
    ida = th_last_id();
    assert_false(call_state(b, lb, 1)->state.locked);
    r = call_acquire(b, cb, 1, 1, -1, 0);
    assert_answer(r, 1);
    assert_int_equal(r->token, 2);
    assert_int_equal(call_state(b, lb, 1)->state.token, 2);
    assert_answer(call_notify(b, cb, 1, 1), 1);
    /* releasing through the lock's own handle hands it to the waiter */
    assert_answer(call_release(b, lb, 1, 1, 0), 1);
    assert_answer(th_find(ida), 1);
    assert_int_equal(th_find(ida)->token, 3);
    assert_answer(call_release(a, ca, 1, 1, 0), 1);
    assert_error(call_release(a, ca, 1, 1, 0), PT_ERUNTIME, "release unlocked lock");
}

/* Python's Condition over a plain Lock asks only whether the lock is
 * locked (Condition._is_owned tries a non-blocking acquire), so any owner
 * may notify or wait while someone holds it; wait releases the lock for
 * its holder and the waiter comes back holding it. */
static void test_plain_lock_owned_by_anyone_while_locked(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t la = th_open(a, "m", PT_KIND_LOCK, 0), lb = th_open(b, "m", PT_KIND_LOCK, 0);
    uint32_t ca = th_open_cond(a, "c", la);
    uint64_t ida;
    const th_rec *r;

    (void)state;
    /* unlocked: nobody holds it, as in Python */
    assert_error(call_notify(a, ca, 7, 1), PT_ERUNTIME, "cannot notify on un-acquired lock");
    assert_error(call_notify(a, ca, 7, 0), PT_ERUNTIME, "cannot notify on un-acquired lock");
    assert_error(call_wait(a, ca, 7, 0.1, 0), PT_ERUNTIME, "cannot wait on un-acquired lock");
    /* held by b's thread 1: a's thread 7 may notify and wait */
    assert_answer(call_acquire(b, lb, 1, 1, -1, 0), 1);
    r = call_notify(a, ca, 7, 1);
    assert_answer(r, 1);
    assert_int_equal(r->value, 0);
    assert_answer(call_notify(a, ca, 7, 0), 1);
    assert_null(call_wait(a, ca, 7, 0.1, 0));
    ida = th_last_id();
    /* the wait released b's hold */
    r = call_state(b, lb, 1);
    assert_false(r->state.locked);
    assert_int_equal(call_state(a, ca, 7)->state.n_waiting, 1);
    assert_error(call_release(b, lb, 1, 1, 0), PT_ERUNTIME, "release unlocked lock");
    /* timed out, it re-acquires: a's thread 7 holds the lock now */
    th_expire(TH_S(1));
    r = th_find(ida);
    assert_answer(r, 0);
    assert_int_equal(r->token, 2);
    assert_int_equal(call_state(a, ca, 7)->state.owner_depth, 1);
    assert_int_equal(call_state(b, lb, 1)->state.owner_depth, 0);
    assert_true(call_state(b, lb, 1)->state.locked);
    /* and b may release it, as anyone may release a Lock */
    assert_answer(call_release(b, lb, 1, 1, 0), 1);
    assert_false(call_state(a, la, 7)->state.locked);
}

/* Over an RLock, only its owner holds it, as in Python. */
static void test_named_rlock_needs_its_owner(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t la = th_open(a, "m", PT_KIND_RLOCK, 0), lb = th_open(b, "m", PT_KIND_RLOCK, 0);
    uint32_t ca = th_open_cond(a, "c", la);

    (void)state;
    assert_answer(call_acquire(b, lb, 1, 1, -1, 0), 1);
    assert_error(call_notify(a, ca, 7, 1), PT_ERUNTIME, "un-acquired");
    assert_error(call_notify(a, ca, 7, 0), PT_ERUNTIME, "un-acquired");
    assert_error(call_wait(a, ca, 7, 0.1, 0), PT_ERUNTIME, "un-acquired");
    assert_error(call_wait(a, ca, 1, 0.1, 0), PT_ERUNTIME, "un-acquired");
    assert_int_equal(call_state(b, lb, 1)->state.owner_depth, 1);
}

static void test_two_conditions_share_a_lock(void **state)
{
    pt_session *s = th_session();
    uint32_t l = th_open(s, "m", PT_KIND_RLOCK, 0);
    uint32_t c1 = th_open_cond(s, "c1", l), c2 = th_open_cond(s, "c2", l);
    uint64_t id1, id2;

    (void)state;
    assert_answer(call_acquire(s, c1, 1, 1, -1, 0), 1);
    assert_null(call_wait(s, c1, 1, -1, 0));
    id1 = th_last_id();
    assert_answer(call_acquire(s, c2, 2, 1, -1, 0), 1);
    assert_null(call_wait(s, c2, 2, -1, 0));
    id2 = th_last_id();
    assert_answer(call_acquire(s, l, 3, 1, -1, 0), 1);
    assert_int_equal(call_notify(s, c2, 3, 0)->value, 1);
    assert_answer(call_release(s, l, 3, 1, 0), 1);
    assert_answer(th_find(id2), 1);
    assert_null(th_find(id1));
    assert_int_equal(call_state(s, c1, 2)->state.n_waiting, 1);
    assert_int_equal(call_state(s, c2, 2)->state.n_waiting, 0);
}

static void test_close_while_waiting(void **state)
{
    pt_session *s = th_session(), *b = th_session();
    uint32_t c = th_open_cond(s, "c", 0), c2 = th_open_cond(s, "c", 0),
             cb = th_open_cond(b, "c", 0);
    uint64_t id;

    (void)state;
    assert_answer(call_acquire(s, c, 1, 1, -1, 0), 1);
    assert_null(call_wait(s, c, 1, 5, 0));
    id = th_last_id();
    assert_answer(call_close(s, c), 1);
    assert_error(th_find(id), PT_EBADHANDLE, "handle closed while a call was waiting");
    /* the lock stays free: the waiter never re-acquired it */
    assert_false(call_state(s, c2, 1)->state.locked);
    assert_int_equal(pt_core_next_deadline(th_core()), PT_DEADLINE_NONE);
    /* a re-acquirer closed before it gets the lock is dropped as well */
    assert_answer(call_acquire(s, c2, 1, 1, -1, 0), 1);
    assert_null(call_wait(s, c2, 1, -1, 0));
    id = th_last_id();
    assert_answer(call_acquire(b, cb, 1, 1, -1, 0), 1);
    assert_answer(call_notify(b, cb, 1, 1), 1);
    assert_answer(call_close(s, c2), 1);
    assert_error(th_find(id), PT_EBADHANDLE, "handle closed");
    assert_answer(call_release(b, cb, 1, 1, 0), 1);
    assert_false(call_state(b, cb, 1)->state.locked);
}

static void test_state_reports_lock_and_waiters(void **state)
{
    pt_session *s = th_session();
    const th_rec *r = call_open(s, "c", PT_KIND_CONDITION, 0);
    uint32_t c = r->handle;

    (void)state;
    r = call_state(s, c, 1);
    assert_int_equal(r->state.kind, PT_KIND_CONDITION);
    assert_false(r->state.locked);
    assert_answer(call_acquire(s, c, 1, 1, -1, 0), 1);
    assert_null(call_wait(s, c, 1, -1, 0));
    assert_answer(call_acquire(s, c, 2, 1, -1, 0), 1);
    r = call_state(s, c, 2);
    assert_true(r->state.locked);
    assert_int_equal(r->state.owner_depth, 1);
    assert_int_equal(r->state.n_waiting, 1);
    assert_int_equal(r->state.token, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TH_TEST(test_wait_and_notify_need_the_lock),
        TH_TEST(test_wait_releases_notify_reacquires),
        TH_TEST(test_rlock_level_is_restored),
        TH_TEST(test_notify_n_in_fifo_order),
        TH_TEST(test_notify_without_waiters),
        TH_TEST(test_timeout_with_free_lock_answers_at_once),
        TH_TEST(test_timeout_while_lock_held_waits_for_it),
        TH_TEST(test_zero_or_negative_timeout_does_not_block),
        TH_TEST(test_zero_timeout_queues_behind_lock_waiters),
        TH_TEST(test_forever_wait_has_no_deadline),
        TH_TEST(test_wait_argument_rules),
        TH_TEST(test_notified_waiter_cannot_time_out),
        TH_TEST(test_lock_queue_shared_fifo),
        TH_TEST(test_named_lock),
        TH_TEST(test_plain_lock_owned_by_anyone_while_locked),
        TH_TEST(test_named_rlock_needs_its_owner),
        TH_TEST(test_two_conditions_share_a_lock),
        TH_TEST(test_close_while_waiting),
        TH_TEST(test_state_reports_lock_and_waiters),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
