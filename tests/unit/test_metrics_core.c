/*
 * test_metrics_core.c - the core's totals for pythreadd --metrics: answers
 * by operation and result (parked calls under the operation they came
 * with), the hand-off wait and hold histograms with their buckets, the
 * limits that refused, timeouts and contention, and clearing.
 */
#include <string.h>

#include "harness.h"

#define US(n) ((uint64_t)(n)*1000u)

static const pt_core_metrics *metrics(void)
{
    return pt_core_metrics_get(th_core());
}

static uint64_t answers(pt_op op, int status, int ok)
{
    return metrics()->answers[op][pt_core_result_index(status, ok)];
}

/* The bucket a time in ns falls in. */
static size_t bucket_of(uint64_t ns)
{
    size_t i = 0;

    while (i < PT_HIST_BUCKETS && ns > pt_core_hist_bounds[i])
        i++;
    return i;
}

static void result_index_covers_every_code(void **state)
{
    (void)state;
    assert_int_equal(pt_core_result_index(0, 1), PT_RESULT_OK);
    assert_int_equal(pt_core_result_index(0, 0), PT_RESULT_FALSE);
    assert_int_equal(pt_core_result_index(PT_EINVAL, 0), PT_RESULT_FALSE + 1);
    assert_int_equal(pt_core_result_index(PT_ELIMIT, 0), PT_RESULT_FALSE + 10);
    assert_int_equal(pt_core_result_index(PT_EINTERNAL, 0), PT_RESULTS - 1);
    /* an unknown code is an internal error, never out of the table */
    assert_int_equal(pt_core_result_index(-100, 0), PT_RESULTS - 1);
    assert_int_equal(pt_core_result_index(5, 0), PT_RESULTS - 1);
    for (size_t i = 1; i < PT_HIST_BUCKETS; i++)
        assert_true(pt_core_hist_bounds[i] > pt_core_hist_bounds[i - 1]);
}

static void answers_by_op_and_result(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t la = th_open(a, "L", PT_KIND_LOCK, 0);
    uint32_t lb = th_open(b, "L", PT_KIND_LOCK, 0);
    uint32_t e = th_open(a, "E", PT_KIND_EVENT, 0);

    (void)state;
    assert_int_equal(answers(PT_OP_OPEN, 0, 1), 3);
    assert_answer(call_acquire(a, la, 1, 1, -1, TH_S(1)), 1);
    assert_answer(call_acquire(b, lb, 2, 0, -1, TH_S(1)), 0); /* busy: False */
    assert_null(call_acquire(b, lb, 2, 1, 0.5, TH_S(1)));
    assert_null(call_event_wait(a, e, 0.25, TH_S(1)));
    th_expire(TH_S(2)); /* both time out: False, under the op they came with */
    assert_int_equal(answers(PT_OP_ACQUIRE, 0, 1), 1);
    assert_int_equal(answers(PT_OP_ACQUIRE, 0, 0), 2);
    assert_int_equal(answers(PT_OP_EVENT_WAIT, 0, 0), 1);
    assert_int_equal(metrics()->timeouts, 2);
    assert_int_equal(metrics()->contended, 2);
    assert_int_equal(metrics()->acquires, 1);
    assert_answer(call_release(a, la, 1, 1, TH_S(3)), 1);
    assert_error(call_release(a, la, 1, 1, TH_S(3)), PT_ERUNTIME, "unlocked");
    assert_int_equal(answers(PT_OP_RELEASE, 0, 1), 1);
    assert_int_equal(answers(PT_OP_RELEASE, PT_ERUNTIME, 0), 1);
    /* a session that ends is answered nothing, and nothing is counted */
    assert_null(call_event_wait(b, th_open(b, "E", PT_KIND_EVENT, 0), -1, TH_S(3)));
    th_end(b, TH_S(4));
    assert_int_equal(answers(PT_OP_EVENT_WAIT, 0, 1), 0);
    pt_core_metrics_clear(th_core());
    for (size_t op = 0; op < PT_OP_MAX_; op++)
        for (size_t i = 0; i < PT_RESULTS; i++)
            assert_int_equal(metrics()->answers[op][i], 0);
    assert_int_equal(metrics()->timeouts, 0);
}

/* a holds 4 s while b waits 3 s; b's own hold lasts 20 us. */
static void handoff_wait_and_hold_histograms(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t la = th_open(a, "L", PT_KIND_LOCK, 0);
    uint32_t lb = th_open(b, "L", PT_KIND_LOCK, 0);
    const pt_core_hist *wait = &metrics()->wait, *hold = &metrics()->hold;

    (void)state;
    assert_answer(call_acquire(a, la, 1, 1, -1, TH_S(1)), 1);
    assert_null(call_acquire(b, lb, 2, 1, -1, TH_S(2)));
    assert_answer(call_release(a, la, 1, 1, TH_S(5)), 1);
    assert_answer(th_find(th_last_id() - 1), 1); /* b was granted */
    assert_int_equal(wait->count, 1);
    assert_int_equal(wait->sum, TH_S(3));
    assert_int_equal(wait->n[bucket_of(TH_S(3))], 1);
    assert_int_equal(bucket_of(TH_S(3)), 17); /* (2.5 s, 5 s] */
    assert_int_equal(hold->count, 1);
    assert_int_equal(hold->sum, TH_S(4));
    assert_answer(call_release(b, lb, 2, 1, TH_S(5) + US(20)), 1);
    assert_int_equal(hold->count, 2);
    assert_int_equal(hold->n[1], 1); /* (10 us, 25 us] */
    assert_int_equal(hold->sum, TH_S(4) + US(20));
    /* a wait that ends without the lock is no hand-off */
    assert_answer(call_acquire(a, la, 1, 1, -1, TH_S(6)), 1);
    assert_null(call_acquire(b, lb, 2, 1, 1.0, TH_S(6)));
    th_expire(TH_S(8));
    assert_int_equal(wait->count, 1);
    /* past the last bound: the +Inf bucket */
    assert_answer(call_release(a, la, 1, 1, TH_S(6) + TH_S(3600)), 1);
    assert_int_equal(hold->n[PT_HIST_BUCKETS], 1);
}

/* A Condition's wait takes its lock back: no hand-off, but an acquire and
 * a hold. */
static void condition_wait_is_no_handoff(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t ca = th_open_cond(a, "C", 0);
    uint32_t cb = th_open_cond(b, "C", 0);

    (void)state;
    assert_answer(call_acquire(a, ca, 1, 1, -1, TH_S(1)), 1);
    assert_null(call_wait(a, ca, 1, -1, TH_S(1)));
    assert_answer(call_acquire(b, cb, 2, 1, -1, TH_S(2)), 1);
    assert_answer(call_notify(b, cb, 2, 1), 1);
    assert_answer(call_release(b, cb, 2, 1, TH_S(3)), 1);
    assert_int_equal(answers(PT_OP_COND_WAIT, 0, 1), 1);
    assert_int_equal(metrics()->wait.count, 0);
    assert_int_equal(metrics()->acquires, 3);
    assert_int_equal(metrics()->hold.count, 2); /* a's until its wait, b's */
}

static void semaphore_handoff_is_timed(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t sa = th_open_sem(a, "S", 1, 0, 0);
    uint32_t sb = th_open_sem(b, "S", 1, 0, 0);

    (void)state;
    assert_answer(call_acquire(a, sa, 1, 1, -1, TH_S(1)), 1);
    assert_null(call_acquire(b, sb, 2, 1, -1, TH_S(1)));
    assert_answer(call_release(a, sa, 1, 1, TH_S(1) + US(40)), 1);
    assert_int_equal(metrics()->wait.count, 1);
    assert_int_equal(metrics()->wait.n[2], 1);  /* (25 us, 50 us] */
    assert_int_equal(metrics()->hold.count, 0); /* permits have no holder to time */
}

static void limits_that_refused(void **state)
{
    pt_core_limits lim = {
        .max_objects = 1, .max_waiters_per_session = 1, .max_handles_per_session = 3};
    pt_session *a, *b;
    uint32_t la, lb;

    (void)state;
    th_teardown(NULL);
    th_init(&lim);
    a = th_session();
    b = th_session();
    la = th_open(a, "L", PT_KIND_LOCK, 0);
    lb = th_open(b, "L", PT_KIND_LOCK, 0);
    assert_error(call_open(a, "M", PT_KIND_LOCK, 0), PT_ELIMIT, "too many objects");
    assert_answer(call_acquire(a, la, 1, 1, -1, TH_S(1)), 1);
    assert_null(call_acquire(b, lb, 2, 1, -1, TH_S(1)));
    assert_error(call_acquire(b, lb, 3, 1, -1, TH_S(1)), PT_ELIMIT, "parked calls");
    th_open(b, "L", PT_KIND_LOCK, 0);
    th_open(b, "L", PT_KIND_LOCK, 0);
    assert_error(call_open(b, "L", PT_KIND_LOCK, 0), PT_ELIMIT, "handles");
    assert_int_equal(metrics()->refused[PT_LIMIT_OBJECTS], 1);
    assert_int_equal(metrics()->refused[PT_LIMIT_WAITERS], 1);
    assert_int_equal(metrics()->refused[PT_LIMIT_HANDLES], 1);
    assert_int_equal(metrics()->refused[PT_LIMIT_OBJECTS_PER_UID], 0);
    assert_int_equal(answers(PT_OP_OPEN, PT_ELIMIT, 0), 2);
    assert_int_equal(answers(PT_OP_ACQUIRE, PT_ELIMIT, 0), 1);
}

static void deadlocks_stat_is_there(void **state)
{
    (void)state;
    assert_int_equal(th_stats().deadlocks, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TH_TEST(result_index_covers_every_code),   TH_TEST(answers_by_op_and_result),
        TH_TEST(handoff_wait_and_hold_histograms), TH_TEST(condition_wait_is_no_handoff),
        TH_TEST(semaphore_handoff_is_timed),       TH_TEST(limits_that_refused),
        TH_TEST(deadlocks_stat_is_there),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
