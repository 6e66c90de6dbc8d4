/*
 * test_barrier.c - Barrier: cycles and indexes, timeouts and breaking,
 * abort and reset, the action protocol and arrivals during the action.
 */
#include <math.h>

#include "harness.h"

#define NP 4

/* NP sessions with a handle each on barrier "b". */
static pt_session *s[NP];
static uint32_t h[NP];

static void open_all(uint32_t parties, double timeout)
{
    for (int i = 0; i < NP; i++) {
        s[i] = th_session();
        h[i] = th_open_barrier(s[i], "b", parties, timeout);
    }
}

static const th_rec *bstate(void)
{
    return call_state(s[0], h[0], 0);
}

static void test_single_party_trips_at_once(void **state)
{
    const th_rec *r;

    (void)state;
    open_all(1, -1);
    for (int i = 0; i < 3; i++) {
        r = call_bwait(s[0], h[0], 1, -1, 0, 0);
        assert_answer(r, 1);
        assert_int_equal(r->value, 0);
        assert_false(r->run_action);
    }
}

static void test_cycle_gives_distinct_indexes(void **state)
{
    uint64_t id[2];
    const th_rec *r;
    size_t mark;

    (void)state;
    open_all(3, -1);
    for (int cycle = 0; cycle < 3; cycle++) {
        assert_null(call_bwait(s[0], h[0], 1, -1, 0, 0));
        id[0] = th_last_id();
        assert_int_equal(bstate()->state.n_waiting, 1);
        assert_null(call_bwait(s[1], h[1], 1, -1, 0, 0));
        id[1] = th_last_id();
        assert_int_equal(bstate()->state.n_waiting, 2);
        mark = th_count();
        r = call_bwait(s[2], h[2], 1, -1, 0, 0);
        assert_answer(r, 1);
        assert_int_equal(r->value, 2);
        assert_int_equal(th_since(mark), 3);
        assert_int_equal(th_find(id[0])->value, 0);
        assert_int_equal(th_find(id[1])->value, 1);
        assert_answer(th_find(id[0]), 1);
        assert_int_equal(bstate()->state.n_waiting, 0);
        assert_false(bstate()->state.broken);
    }
}

static void test_state_fields(void **state)
{
    const th_rec *r;

    (void)state;
    open_all(5, 2.5);
    r = bstate();
    assert_int_equal(r->state.kind, PT_KIND_BARRIER);
    assert_int_equal(r->state.parties, 5);
    assert_true(r->state.timeout == 2.5);
    assert_false(r->state.broken);
    assert_int_equal(r->state.n_waiting, 0);
}

static void test_timeout_breaks_for_everyone(void **state)
{
    uint64_t id0, id1;

    (void)state;
    open_all(3, -1);
    assert_null(call_bwait(s[0], h[0], 1, -1, 0, 0));
    id0 = th_last_id();
    assert_null(call_bwait(s[1], h[1], 1, 2, 0, 0));
    id1 = th_last_id();
    th_expire(TH_S(2));
    assert_error(th_find(id0), PT_EBROKEN, "a party's wait timed out");
    assert_error(th_find(id1), PT_EBROKEN, "Barrier 'b': wait: the barrier is broken");
    assert_true(bstate()->state.broken);
    assert_int_equal(bstate()->state.n_waiting, 0);
    /* every later wait fails until a reset */
    assert_error(call_bwait(s[2], h[2], 1, -1, 0, 0), PT_EBROKEN, "reset it");
    assert_answer(call_reset(s[2], h[2]), 1);
    assert_false(bstate()->state.broken);
    assert_null(call_bwait(s[2], h[2], 1, -1, 0, 0));
}

static void test_default_timeout_applies(void **state)
{
    uint64_t id0, id1;

    (void)state;
    open_all(3, 1);
    assert_null(call_bwait(s[0], h[0], 1, -1, 0, 0));
    id0 = th_last_id();
    assert_int_equal(pt_core_next_deadline(th_core()), TH_S(1));
    /* an explicit timeout overrides the default */
    assert_null(call_bwait(s[1], h[1], 1, 5, 0, 0));
    id1 = th_last_id();
    th_expire(TH_S(1));
    assert_error(th_find(id0), PT_EBROKEN, NULL);
    assert_error(th_find(id1), PT_EBROKEN, NULL);
    assert_int_equal(pt_core_next_deadline(th_core()), PT_DEADLINE_NONE);
}

static void test_nonpositive_timeout_breaks_now(void **state)
{
    uint64_t id0;

    (void)state;
    open_all(3, -1);
    assert_null(call_bwait(s[0], h[0], 1, -1, 0, 0));
    id0 = th_last_id();
    assert_error(call_bwait(s[1], h[1], 1, 0, 0, 0), PT_EBROKEN, "timeout <= 0");
    assert_error(th_find(id0), PT_EBROKEN, "timeout <= 0");
    assert_true(bstate()->state.broken);
    assert_answer(call_reset(s[0], h[0]), 1);
    assert_error(call_bwait(s[1], h[1], 1, -3, 0, 0), PT_EBROKEN, NULL);
}

static void test_nonpositive_default_timeout(void **state)
{
    (void)state;
    open_all(2, 0);
    assert_error(call_bwait(s[0], h[0], 1, -1, 0, 0), PT_EBROKEN, NULL);
    /* the last party trips without looking at the timeout */
    assert_answer(call_reset(s[0], h[0]), 1);
    assert_error(call_bwait(s[0], h[0], 1, -1, 0, 0), PT_EBROKEN, NULL);
}

static void test_last_party_ignores_timeout(void **state)
{
    uint64_t id0;

    (void)state;
    open_all(2, -1);
    assert_null(call_bwait(s[0], h[0], 1, -1, 0, 0));
    id0 = th_last_id();
    assert_answer(call_bwait(s[1], h[1], 1, 0, 0, 0), 1);
    assert_answer(th_find(id0), 1);
}

/* threading reads a wait's timeout only when the party has to wait: past
 * TIMEOUT_MAX it is OverflowError then, and that party leaves without being
 * counted or breaking the barrier. The last party and a broken barrier
 * answer as usual. */
static void test_too_large_timeout_fails_only_a_waiting_party(void **state)
{
    uint64_t id0;
    const th_rec *r;

    (void)state;
    open_all(2, -1);
    assert_error(call_bwait(s[0], h[0], 1, 1e11, 0, 0), PT_EOVERFLOW, "too large");
    assert_int_equal(bstate()->state.n_waiting, 0);
    assert_false(bstate()->state.broken);
    assert_null(call_bwait(s[0], h[0], 1, -1, 0, 0));
    id0 = th_last_id();
    r = call_bwait(s[1], h[1], 1, 1e11, 0, 0);
    assert_answer(r, 1);
    assert_int_equal(r->value, 1);
    assert_answer(th_find(id0), 1);
    assert_answer(call_abort(s[0], h[0]), 1);
    assert_error(call_bwait(s[0], h[0], 1, 1e11, 0, 0), PT_EBROKEN, "aborted");
}

/* A default timeout past TIMEOUT_MAX is taken at creation, as
 * threading.Barrier takes it, and fails only a party that has to wait. */
static void test_too_large_default_timeout(void **state)
{
    pt_session *a = th_session();
    uint32_t one = th_open_barrier(a, "one", 1, 1e20), two = th_open_barrier(a, "two", 2, 1e20);
    const th_rec *r;

    (void)state;
    r = call_bwait(a, one, 1, -1, 0, 0);
    assert_answer(r, 1);
    assert_int_equal(r->value, 0);
    assert_error(call_bwait(a, two, 1, -1, 0, 0), PT_EOVERFLOW, "too large");
    r = call_state(a, two, 1);
    assert_int_equal(r->state.n_waiting, 0);
    assert_false(r->state.broken);
    /* a timeout of its own replaces the default */
    assert_null(call_bwait(a, two, 1, 5, 0, 0));
    assert_int_equal(pt_core_next_deadline(th_core()), TH_S(5));
}

/* An entrant of the next cycle is checked when it arrives there. */
static void test_too_large_timeout_of_an_entrant(void **state)
{
    uint64_t e0;

    (void)state;
    open_all(2, -1);
    assert_null(call_bwait(s[0], h[0], 1, -1, 0, 0));
    assert_true(call_bwait(s[1], h[1], 1, -1, 1, 0)->run_action);
    assert_null(call_bwait(s[2], h[2], 1, 1e11, 0, 0));
    e0 = th_last_id();
    assert_answer(call_action_done(s[1], h[1], 0, 0), 1);
    assert_error(th_find(e0), PT_EOVERFLOW, "too large");
    assert_int_equal(bstate()->state.n_waiting, 0);
    assert_false(bstate()->state.broken);
}

/* NaN, as a wait's timeout or the default, never passes: threading's
 * wait_for computes a NaN end time, and the party waits for ever. */
static void test_nan_timeout_waits_for_ever(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t da = th_open_barrier(a, "d", 2, NAN), db = th_open_barrier(b, "d", 2, NAN);
    uint64_t id0;

    (void)state;
    open_all(2, -1);
    assert_null(call_bwait(s[0], h[0], 1, NAN, 0, 0));
    id0 = th_last_id();
    assert_int_equal(pt_core_next_deadline(th_core()), PT_DEADLINE_NONE);
    th_expire(UINT64_MAX - 1);
    assert_null(th_find(id0));
    assert_answer(call_bwait(s[1], h[1], 1, NAN, 0, 0), 1);
    assert_answer(th_find(id0), 1);
    /* the default: NaN, the same one on every open */
    assert_null(call_bwait(a, da, 1, -1, 0, 0));
    id0 = th_last_id();
    assert_int_equal(pt_core_next_deadline(th_core()), PT_DEADLINE_NONE);
    assert_answer(call_bwait(b, db, 1, -1, 0, 0), 1);
    assert_answer(th_find(id0), 1);
}

static void test_abort(void **state)
{
    uint64_t id0;

    (void)state;
    open_all(3, -1);
    assert_null(call_bwait(s[0], h[0], 1, -1, 0, 0));
    id0 = th_last_id();
    assert_answer(call_abort(s[1], h[1]), 1);
    assert_error(th_find(id0), PT_EBROKEN, "aborted");
    assert_true(bstate()->state.broken);
    assert_error(call_bwait(s[0], h[0], 1, -1, 0, 0), PT_EBROKEN, "aborted");
    assert_answer(call_abort(s[1], h[1]), 1);
}

static void test_reset_wakes_waiters_and_restarts(void **state)
{
    uint64_t id0, id1;

    (void)state;
    open_all(3, -1);
    assert_null(call_bwait(s[0], h[0], 1, -1, 0, 0));
    id0 = th_last_id();
    assert_null(call_bwait(s[1], h[1], 1, 5, 0, 0));
    id1 = th_last_id();
    assert_answer(call_reset(s[2], h[2]), 1);
    assert_error(th_find(id0), PT_EBROKEN, "reset");
    assert_error(th_find(id1), PT_EBROKEN, "reset");
    assert_false(bstate()->state.broken);
    assert_int_equal(bstate()->state.n_waiting, 0);
    assert_int_equal(pt_core_next_deadline(th_core()), PT_DEADLINE_NONE);
    /* a fresh cycle starts at index 0 */
    assert_null(call_bwait(s[0], h[0], 1, -1, 0, 0));
    id0 = th_last_id();
    assert_null(call_bwait(s[1], h[1], 1, -1, 0, 0));
    assert_int_equal(call_bwait(s[2], h[2], 1, -1, 0, 0)->value, 2);
    assert_int_equal(th_find(id0)->value, 0);
}

static void test_action_runs_before_release(void **state)
{
    uint64_t id0, id1;
    const th_rec *r;

    (void)state;
    open_all(3, -1);
    assert_null(call_bwait(s[0], h[0], 1, 1, 1, 0));
    id0 = th_last_id();
    assert_null(call_bwait(s[1], h[1], 1, -1, 1, 0));
    id1 = th_last_id();
    r = call_bwait(s[2], h[2], 1, -1, 1, 0);
    assert_answer(r, 1);
    assert_true(r->run_action);
    assert_int_equal(r->value, 2);
    assert_null(th_find(id0));
    assert_int_equal(bstate()->state.n_waiting, 3);
    /* nobody times out while the action runs */
    assert_int_equal(pt_core_next_deadline(th_core()), PT_DEADLINE_NONE);
    th_expire(TH_S(5));
    assert_null(th_find(id0));
    r = call_action_done(s[2], h[2], 0, TH_S(5));
    assert_answer(r, 1);
    assert_int_equal(r->value, 2);
    assert_int_equal(th_find(id0)->value, 0);
    assert_int_equal(th_find(id1)->value, 1);
    assert_int_equal(bstate()->state.n_waiting, 0);
    assert_false(bstate()->state.broken);
}

static void test_action_only_for_the_last_party(void **state)
{
    uint64_t id0;
    const th_rec *r;

    (void)state;
    open_all(2, -1);
    assert_null(call_bwait(s[0], h[0], 1, -1, 1, 0));
    id0 = th_last_id();
    r = call_bwait(s[1], h[1], 1, -1, 0, 0);
    assert_false(r->run_action);
    assert_answer(th_find(id0), 1);
    assert_false(th_find(id0)->run_action);
}

static void test_failed_action_breaks(void **state)
{
    uint64_t id0;

    (void)state;
    open_all(2, -1);
    assert_null(call_bwait(s[0], h[0], 1, -1, 0, 0));
    id0 = th_last_id();
    assert_true(call_bwait(s[1], h[1], 1, -1, 1, 0)->run_action);
    assert_error(call_action_done(s[1], h[1], 7, 0), PT_EBROKEN, "action failed with status 7");
    assert_error(th_find(id0), PT_EBROKEN, "status 7");
    assert_true(bstate()->state.broken);
    assert_error(call_bwait(s[0], h[0], 1, -1, 0, 0), PT_EBROKEN, "status 7");
}

static void test_action_done_rules(void **state)
{
    (void)state;
    open_all(2, -1);
    assert_error(call_action_done(s[0], h[0], 0, 0), PT_ERUNTIME, "no action of this session");
    assert_null(call_bwait(s[0], h[0], 1, -1, 0, 0));
    assert_true(call_bwait(s[1], h[1], 1, -1, 1, 0)->run_action);
    assert_error(call_action_done(s[0], h[0], 0, 0), PT_ERUNTIME, "no action");
    /* another handle of the runner's session may report */
    assert_answer(call_action_done(s[1], th_open_barrier(s[1], "b", 2, -1), 0, 0), 1);
    assert_error(call_action_done(s[1], h[1], 0, 0), PT_ERUNTIME, "no action");
}

static void test_arrivals_during_action_join_next_cycle(void **state)
{
    uint64_t id0, e0, e1;
    const th_rec *r;

    (void)state;
    open_all(2, -1);
    assert_null(call_bwait(s[0], h[0], 1, -1, 0, 0));
    id0 = th_last_id();
    assert_true(call_bwait(s[1], h[1], 1, -1, 1, 0)->run_action);
    assert_null(call_bwait(s[2], h[2], 1, 1, 0, 0));
    e0 = th_last_id();
    assert_null(call_bwait(s[3], h[3], 1, -1, 0, 0));
    e1 = th_last_id();
    /* entrants do not time out while held */
    th_expire(TH_S(10));
    assert_null(th_find(e0));
    r = call_action_done(s[1], h[1], 0, TH_S(10));
    assert_answer(r, 1);
    assert_answer(th_find(id0), 1);
    /* then they arrive in order: a full new cycle */
    assert_answer(th_find(e0), 1);
    assert_int_equal(th_find(e0)->value, 0);
    assert_answer(th_find(e1), 1);
    assert_int_equal(th_find(e1)->value, 1);
    assert_int_equal(bstate()->state.n_waiting, 0);
}

static void test_entrant_timeout_starts_when_it_arrives(void **state)
{
    uint64_t e0;

    (void)state;
    open_all(3, -1);
    assert_null(call_bwait(s[0], h[0], 1, -1, 0, 0));
    assert_null(call_bwait(s[1], h[1], 1, -1, 0, 0));
    assert_true(call_bwait(s[2], h[2], 1, -1, 1, 0)->run_action);
    assert_null(call_bwait(s[3], h[3], 1, 2, 0, TH_S(1)));
    e0 = th_last_id();
    assert_answer(call_action_done(s[2], h[2], 0, TH_S(5)), 1);
    assert_null(th_find(e0));
    assert_int_equal(bstate()->state.n_waiting, 1);
    assert_int_equal(pt_core_next_deadline(th_core()), TH_S(7));
    th_expire(TH_S(7));
    assert_error(th_find(e0), PT_EBROKEN, "timed out");
}

static void test_entrant_starts_another_action(void **state)
{
    uint64_t e0, e1, e2;
    const th_rec *r;

    (void)state;
    open_all(2, -1);
    assert_null(call_bwait(s[0], h[0], 1, -1, 0, 0));
    assert_true(call_bwait(s[1], h[1], 1, -1, 1, 0)->run_action);
    assert_null(call_bwait(s[2], h[2], 1, -1, 0, 0));
    e0 = th_last_id();
    assert_null(call_bwait(s[3], h[3], 1, -1, 1, 0));
    e1 = th_last_id();
    assert_null(call_bwait(s[0], h[0], 1, -1, 0, 0));
    e2 = th_last_id();
    assert_answer(call_action_done(s[1], h[1], 0, 0), 1);
    /* e1 completes the next cycle and runs its action; e2 stays held */
    assert_null(th_find(e0));
    r = th_find(e1);
    assert_answer(r, 1);
    assert_true(r->run_action);
    assert_int_equal(r->value, 1);
    assert_null(th_find(e2));
    assert_answer(call_action_done(s[3], h[3], 0, 0), 1);
    assert_int_equal(th_find(e0)->value, 0);
    assert_null(th_find(e2));
    assert_int_equal(bstate()->state.n_waiting, 1);
}

static void test_abort_during_action_applies_after(void **state)
{
    uint64_t id0, e0;

    (void)state;
    open_all(2, -1);
    assert_null(call_bwait(s[0], h[0], 1, -1, 0, 0));
    id0 = th_last_id();
    assert_true(call_bwait(s[1], h[1], 1, -1, 1, 0)->run_action);
    assert_null(call_bwait(s[2], h[2], 1, -1, 0, 0));
    e0 = th_last_id();
    assert_answer(call_abort(s[3], h[3]), 1);
    assert_false(bstate()->state.broken);
    assert_answer(call_action_done(s[1], h[1], 0, 0), 1);
    /* the cycle completed, then the abort broke the barrier */
    assert_answer(th_find(id0), 1);
    assert_error(th_find(e0), PT_EBROKEN, "aborted");
    assert_true(bstate()->state.broken);
}

static void test_reset_during_action_applies_after(void **state)
{
    uint64_t e0;

    (void)state;
    open_all(2, -1);
    assert_null(call_bwait(s[0], h[0], 1, -1, 0, 0));
    assert_true(call_bwait(s[1], h[1], 1, -1, 1, 0)->run_action);
    assert_null(call_bwait(s[2], h[2], 1, -1, 0, 0));
    e0 = th_last_id();
    assert_answer(call_reset(s[3], h[3]), 1);
    assert_error(call_action_done(s[1], h[1], 3, 0), PT_EBROKEN, "status 3");
    /* the failure broke it, the reset mended it, the entrant waits anew */
    assert_false(bstate()->state.broken);
    assert_null(th_find(e0));
    assert_int_equal(bstate()->state.n_waiting, 1);
}

static void test_runner_session_end_breaks(void **state)
{
    uint64_t id0, e0;

    (void)state;
    open_all(2, -1);
    assert_null(call_bwait(s[0], h[0], 1, -1, 0, 0));
    id0 = th_last_id();
    assert_true(call_bwait(s[1], h[1], 1, -1, 1, 0)->run_action);
    assert_null(call_bwait(s[2], h[2], 1, -1, 0, 0));
    e0 = th_last_id();
    th_end(s[1], 0);
    assert_error(th_find(id0), PT_EBROKEN, "session running the action ended");
    assert_error(th_find(e0), PT_EBROKEN, "session running the action ended");
    assert_true(bstate()->state.broken);
}

static void test_runner_handle_close_breaks(void **state)
{
    uint64_t id0;

    (void)state;
    open_all(2, -1);
    assert_null(call_bwait(s[0], h[0], 1, -1, 0, 0));
    id0 = th_last_id();
    assert_true(call_bwait(s[1], h[1], 1, -1, 1, 0)->run_action);
    assert_answer(call_close(s[1], h[1]), 1);
    assert_error(th_find(id0), PT_EBROKEN, "handle running the action was closed");
}

static void test_waiting_party_session_end_breaks(void **state)
{
    uint64_t id0;

    (void)state;
    open_all(3, -1);
    assert_null(call_bwait(s[0], h[0], 1, -1, 0, 0));
    id0 = th_last_id();
    assert_null(call_bwait(s[1], h[1], 1, -1, 0, 0));
    th_end(s[1], 0);
    assert_error(th_find(id0), PT_EBROKEN, "a waiting party's session ended");
    assert_true(bstate()->state.broken);
}

static void test_waiting_party_close_breaks(void **state)
{
    uint64_t id0, id1;

    (void)state;
    open_all(3, -1);
    assert_null(call_bwait(s[0], h[0], 1, -1, 0, 0));
    id0 = th_last_id();
    assert_null(call_bwait(s[1], h[1], 1, -1, 0, 0));
    id1 = th_last_id();
    assert_answer(call_close(s[1], h[1]), 1);
    assert_error(th_find(id1), PT_EBADHANDLE, "handle closed");
    assert_error(th_find(id0), PT_EBROKEN, "closed its handle");
}

static void test_party_leaving_during_action_breaks_after_it(void **state)
{
    uint64_t id0;

    (void)state;
    open_all(3, -1);
    assert_null(call_bwait(s[0], h[0], 1, -1, 0, 0));
    id0 = th_last_id();
    assert_null(call_bwait(s[1], h[1], 1, -1, 0, 0));
    assert_true(call_bwait(s[2], h[2], 1, -1, 1, 0)->run_action);
    th_end(s[1], 0);
    assert_null(th_find(id0));
    assert_error(call_action_done(s[2], h[2], 0, 0), PT_EBROKEN, "session ended");
    assert_error(th_find(id0), PT_EBROKEN, "session ended");
}

static void test_entrant_leaving_does_not_break(void **state)
{
    uint64_t id0;

    (void)state;
    open_all(2, -1);
    assert_null(call_bwait(s[0], h[0], 1, -1, 0, 0));
    id0 = th_last_id();
    assert_true(call_bwait(s[1], h[1], 1, -1, 1, 0)->run_action);
    assert_null(call_bwait(s[2], h[2], 1, -1, 0, 0));
    th_end(s[2], 0);
    assert_answer(call_action_done(s[1], h[1], 0, 0), 1);
    assert_answer(th_find(id0), 1);
    assert_false(bstate()->state.broken);
    assert_int_equal(bstate()->state.n_waiting, 0);
}

static void test_broken_barrier_during_action_entrants(void **state)
{
    uint64_t e0;

    (void)state;
    open_all(2, -1);
    assert_null(call_bwait(s[0], h[0], 1, -1, 0, 0));
    assert_true(call_bwait(s[1], h[1], 1, -1, 1, 0)->run_action);
    assert_null(call_bwait(s[2], h[2], 1, -1, 0, 0));
    e0 = th_last_id();
    assert_error(call_action_done(s[1], h[1], -1, 0), PT_EBROKEN, "status -1");
    assert_error(th_find(e0), PT_EBROKEN, "status -1");
}

static void test_open_rules(void **state)
{
    pt_session *a = th_session();
    pt_call c = {.name = "bb", .kind = PT_KIND_BARRIER, .parties = 0, .timeout = -1};

    (void)state;
    assert_error(call_open_full(a, &c), PT_EINVAL, "parties must be >= 1");
    assert_int_equal(th_stats().objects, 0);
    /* any default timeout is taken (see test_too_large_default_timeout) */
    c.parties = 2;
    c.timeout = NAN;
    assert_int_equal(call_open_full(a, &c)->status, 0);
    c.timeout = 1;
    assert_error(call_open_full(a, &c), PT_EEXIST, "exists with timeout=nan");
    c.name = "bc";
    c.timeout = 1e12;
    assert_int_equal(call_open_full(a, &c)->status, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TH_TEST(test_single_party_trips_at_once),
        TH_TEST(test_cycle_gives_distinct_indexes),
        TH_TEST(test_state_fields),
        TH_TEST(test_timeout_breaks_for_everyone),
        TH_TEST(test_default_timeout_applies),
        TH_TEST(test_nonpositive_timeout_breaks_now),
        TH_TEST(test_nonpositive_default_timeout),
        TH_TEST(test_last_party_ignores_timeout),
        TH_TEST(test_too_large_timeout_fails_only_a_waiting_party),
        TH_TEST(test_too_large_default_timeout),
        TH_TEST(test_too_large_timeout_of_an_entrant),
        TH_TEST(test_nan_timeout_waits_for_ever),
        TH_TEST(test_abort),
        TH_TEST(test_reset_wakes_waiters_and_restarts),
        TH_TEST(test_action_runs_before_release),
        TH_TEST(test_action_only_for_the_last_party),
        TH_TEST(test_failed_action_breaks),
        TH_TEST(test_action_done_rules),
        TH_TEST(test_arrivals_during_action_join_next_cycle),
        TH_TEST(test_entrant_timeout_starts_when_it_arrives),
        TH_TEST(test_entrant_starts_another_action),
        TH_TEST(test_abort_during_action_applies_after),
        TH_TEST(test_reset_during_action_applies_after),
        TH_TEST(test_runner_session_end_breaks),
        TH_TEST(test_runner_handle_close_breaks),
        TH_TEST(test_waiting_party_session_end_breaks),
        TH_TEST(test_waiting_party_close_breaks),
        TH_TEST(test_party_leaving_during_action_breaks_after_it),
        TH_TEST(test_entrant_leaving_does_not_break),
        TH_TEST(test_broken_barrier_during_action_entrants),
        TH_TEST(test_open_rules),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
