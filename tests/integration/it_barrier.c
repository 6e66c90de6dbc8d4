/*
 * Barrier across processes: 100 cycles with distinct indices and an action
 * run once per cycle before anyone is released; abort, reset and a failing
 * action seen from other processes.
 */
#include "harness.h"

#include <unistd.h>

#define BAR_PARTIES 5
#define BAR_CYCLES  100

typedef struct cycle_shared {
    atomic_int arrived[BAR_CYCLES];
    atomic_int released[BAR_CYCLES];
    atomic_int action_runs[BAR_CYCLES];
    atomic_int seen[BAR_CYCLES][BAR_PARTIES];
    atomic_int action_early; /* the action ran before every party arrived */
    atomic_int action_late;  /* somebody was released before the action ran */
    atomic_int bad_index;
} cycle_shared;

typedef struct cycle_ctx {
    cycle_shared *sh;
    int cycle; /* this process's current cycle */
} cycle_ctx;

static int cycle_action(void *arg)
{
    cycle_ctx *ctx = arg;
    cycle_shared *sh = ctx->sh;

    atomic_fetch_add(&sh->action_runs[ctx->cycle], 1);
    if (atomic_load(&sh->arrived[ctx->cycle]) != BAR_PARTIES)
        atomic_fetch_add(&sh->action_early, 1);
    if (atomic_load(&sh->released[ctx->cycle]) != 0)
        atomic_fetch_add(&sh->action_late, 1);
    return 0;
}

static int cycle_worker(pt_client *c, int index, void *arg)
{
    cycle_ctx ctx = {arg, 0};
    cycle_shared *sh = ctx.sh;
    pt_barrier *b = NULL;

    (void)index;
    WCHECK_EQ(pt_barrier_open(c, "it.barrier.cycles", BAR_PARTIES, cycle_action, &ctx, PT_FOREVER,
                              0, 0, &b),
              0);
    for (ctx.cycle = 0; ctx.cycle < BAR_CYCLES; ctx.cycle++) {
        int idx;

        atomic_fetch_add(&sh->arrived[ctx.cycle], 1);
        idx = pt_barrier_wait(b, PT_FOREVER);
        WCHECK(idx >= 0 && idx < BAR_PARTIES);
        atomic_fetch_add(&sh->seen[ctx.cycle][idx], 1);
        atomic_fetch_add(&sh->released[ctx.cycle], 1);
    }
    WCHECK_EQ(pt_barrier_broken(b), 0);
    WCHECK_EQ(pt_barrier_close(b), 0);
    return 0;
}

static void test_barrier_cycles(void **state)
{
    harness *h = *state;
    cycle_shared *sh = harness_shm_alloc(h, sizeof *sh);
    pid_t pids[BAR_PARTIES];

    harness_workers(h, pids, BAR_PARTIES, cycle_worker, sh);
    harness_join(h, pids, BAR_PARTIES, 60.0);

    for (int c = 0; c < BAR_CYCLES; c++) {
        if (atomic_load(&sh->action_runs[c]) != 1)
            fail_msg("cycle %d: the action ran %d times, want once", c,
                     atomic_load(&sh->action_runs[c]));
        for (int i = 0; i < BAR_PARTIES; i++)
            if (atomic_load(&sh->seen[c][i]) != 1)
                fail_msg("cycle %d: index %d returned %d times, want once", c, i,
                         atomic_load(&sh->seen[c][i]));
    }
    assert_int_equal(atomic_load(&sh->action_early), 0);
    assert_int_equal(atomic_load(&sh->action_late), 0);
    h->passed = 1;
}

/* ---- abort and reset ---- */

typedef struct abort_shared {
    int first[4];
    int second[4];
    int index[4];
} abort_shared;

static int abort_waiter(pt_client *c, int index, void *arg)
{
    abort_shared *sh = arg;
    pt_barrier *b = NULL;

    WCHECK_EQ(pt_barrier_open(c, "it.barrier.abort", 3, NULL, NULL, PT_FOREVER, 0, 0, &b), 0);
    sh->first[index] = pt_barrier_wait(b, PT_FOREVER);
    /* Broken until reset: a later wait fails at once. */
    sh->second[index] = pt_barrier_wait(b, PT_FOREVER);
    WCHECK_EQ(pt_barrier_close(b), 0);
    return 0;
}

static int reuse_waiter(pt_client *c, int index, void *arg)
{
    abort_shared *sh = arg;
    pt_barrier *b = NULL;

    WCHECK_EQ(pt_barrier_open(c, "it.barrier.abort", 3, NULL, NULL, PT_FOREVER, 0, 0, &b), 0);
    sh->index[index] = pt_barrier_wait(b, PT_FOREVER);
    WCHECK_EQ(pt_barrier_close(b), 0);
    return 0;
}

static void wait_n_waiting(pt_barrier *b, int n)
{
    double deadline = harness_now() + HARNESS_DEADLINE;
    int got;

    while ((got = pt_barrier_n_waiting(b)) != n) {
        if (got < 0)
            fail_msg("n_waiting: %s (%s)", pt_err_name(got), pt_last_error_message());
        if (harness_now() > deadline)
            fail_msg("n_waiting is %d after %.0f s, want %d", got, HARNESS_DEADLINE, n);
        harness_tick();
    }
}

static void test_barrier_abort_and_reset(void **state)
{
    harness *h = *state;
    abort_shared *sh = harness_shm_alloc(h, sizeof *sh);
    pt_client *c = NULL;
    pt_barrier *b = NULL;
    pid_t pids[2];
    int seen = 0, idx;

    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    PT_ASSERT_EQ(pt_barrier_open(c, "it.barrier.abort", 3, NULL, NULL, PT_FOREVER, 0, 0, &b), 0);
    PT_ASSERT_EQ(pt_barrier_parties(b), 3);
    PT_ASSERT_EQ(pt_barrier_broken(b), 0);

    harness_workers(h, pids, 2, abort_waiter, sh);
    wait_n_waiting(b, 2);
    PT_ASSERT_EQ(pt_barrier_abort(b), 0);
    harness_join(h, pids, 2, HARNESS_DEADLINE);
    for (int i = 0; i < 2; i++) {
        if (sh->first[i] != PT_EBROKEN || sh->second[i] != PT_EBROKEN)
            fail_msg("waiter %d: waits returned %d (%s) and %d (%s), want PT_EBROKEN twice", i,
                     sh->first[i], pt_err_name(sh->first[i]), sh->second[i],
                     pt_err_name(sh->second[i]));
    }
    PT_ASSERT_EQ(pt_barrier_broken(b), 1);
    PT_ASSERT_EQ(pt_barrier_wait(b, PT_FOREVER), PT_EBROKEN);

    PT_ASSERT_EQ(pt_barrier_reset(b), 0);
    PT_ASSERT_EQ(pt_barrier_broken(b), 0);
    PT_ASSERT_EQ(pt_barrier_n_waiting(b), 0);

    /* Usable again: two processes and this one trip it. */
    harness_workers(h, pids, 2, reuse_waiter, sh);
    wait_n_waiting(b, 2);
    idx = pt_barrier_wait(b, HARNESS_DEADLINE);
    harness_join(h, pids, 2, HARNESS_DEADLINE);
    sh->index[2] = idx;
    for (int i = 0; i < 3; i++) {
        if (sh->index[i] < 0 || sh->index[i] > 2)
            fail_msg("party %d: wait returned %d (%s)", i, sh->index[i], pt_err_name(sh->index[i]));
        seen |= 1 << sh->index[i];
    }
    assert_int_equal(seen, 7);
    PT_ASSERT_EQ(pt_barrier_broken(b), 0);
    PT_ASSERT_EQ(pt_barrier_close(b), 0);
    pt_client_close(c);
    h->passed = 1;
}

/* ---- a failing action breaks the barrier for the other process ---- */

typedef struct fail_shared {
    int result;
} fail_shared;

static int fail_waiter(pt_client *c, int index, void *arg)
{
    fail_shared *sh = arg;
    pt_barrier *b = NULL;

    (void)index;
    WCHECK_EQ(pt_barrier_open(c, "it.barrier.fail", 2, NULL, NULL, PT_FOREVER, 0, 0, &b), 0);
    sh->result = pt_barrier_wait(b, PT_FOREVER);
    WCHECK_EQ(pt_barrier_close(b), 0);
    return 0;
}

static int failing_action(void *arg)
{
    atomic_int *ran = arg;

    atomic_fetch_add(ran, 1);
    return 1;
}

static void test_barrier_failing_action_breaks(void **state)
{
    harness *h = *state;
    fail_shared *sh = harness_shm_alloc(h, sizeof *sh);
    atomic_int ran = 0;
    pt_client *c = NULL;
    pt_barrier *b = NULL;
    pid_t pid;
    int r;

    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    PT_ASSERT_EQ(
        pt_barrier_open(c, "it.barrier.fail", 2, failing_action, &ran, PT_FOREVER, 0, 0, &b), 0);
    pid = harness_worker(h, fail_waiter, 0, sh);
    wait_n_waiting(b, 1);
    /* This process arrives last, so its action runs, fails and breaks it. */
    r = pt_barrier_wait(b, HARNESS_DEADLINE);
    harness_join(h, &pid, 1, HARNESS_DEADLINE);
    assert_int_equal(atomic_load(&ran), 1);
    if (r >= 0)
        fail_msg("the party whose action failed got index %d, want an error", r);
    if (sh->result != PT_EBROKEN)
        fail_msg("the other party got %d (%s), want PT_EBROKEN", sh->result,
                 pt_err_name(sh->result));
    PT_ASSERT_EQ(pt_barrier_broken(b), 1);
    PT_ASSERT_EQ(pt_barrier_close(b), 0);
    pt_client_close(c);
    h->passed = 1;
}

/* ---- the process running the action dies in it ---- */

typedef struct doomed_shared {
    atomic_int in_action;
    int result[2];
} doomed_shared;

typedef struct doomed_ctx {
    doomed_shared *sh;
    int doomed;
} doomed_ctx;

static int doomed_action(void *arg)
{
    doomed_ctx *ctx = arg;

    if (!ctx->doomed)
        return 0;
    atomic_store(&ctx->sh->in_action, 1);
    for (;;)
        pause(); /* killed here, every party arrived and none released */
}

static int doomed_party(pt_client *c, int index, void *arg)
{
    doomed_ctx ctx = {arg, index == 2};
    pt_barrier *b = NULL;
    int r;

    WCHECK_EQ(pt_barrier_open(c, "it.barrier.doomed", 3, doomed_action, &ctx, PT_FOREVER, 0, 0, &b),
              0);
    r = pt_barrier_wait(b, PT_FOREVER);
    ctx.sh->result[index] = r;
    WCHECK_EQ(pt_barrier_close(b), 0);
    return 0;
}

static void test_barrier_action_runner_killed(void **state)
{
    harness *h = *state;
    doomed_shared *sh = harness_shm_alloc(h, sizeof *sh);
    pt_client *c = NULL;
    pt_barrier *b = NULL;
    pid_t pids[2], doomed;

    harness_workers(h, pids, 2, doomed_party, sh);
    harness_wait_waiters(h, "it.barrier.doomed", PT_KIND_BARRIER, 2, HARNESS_DEADLINE);
    doomed = harness_worker(h, doomed_party, 2, sh);
    harness_wait_flag(&sh->in_action, 1, HARNESS_DEADLINE, "the last party runs the action");
    harness_kill(h, doomed);
    harness_join(h, pids, 2, HARNESS_DEADLINE);
    for (int i = 0; i < 2; i++)
        if (sh->result[i] != PT_EBROKEN)
            fail_msg("party %d got %d (%s) after the action's process was killed, want "
                     "PT_EBROKEN",
                     i, sh->result[i], pt_err_name(sh->result[i]));
    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    PT_ASSERT_EQ(
        pt_barrier_open(c, "it.barrier.doomed", 3, NULL, NULL, PT_FOREVER, PT_OPEN_EXISTING, 0, &b),
        0);
    PT_ASSERT_EQ(pt_barrier_broken(b), 1);
    PT_ASSERT_EQ(pt_barrier_close(b), 0);
    pt_client_close(c);
    h->passed = 1;
}

/*
 * As in CPython (the action runs under the barrier's lock, so a waiter
 * cannot time out until it is over), a waiter's deadline passing while the
 * action runs does not break a barrier whose action succeeds.
 */
typedef struct slow_shared {
    double started; /* when the waiting party began its 0.2 s wait */
    int result;
} slow_shared;

static int slow_party(pt_client *c, int index, void *arg)
{
    slow_shared *sh = arg;
    pt_barrier *b = NULL;

    (void)index;
    WCHECK_EQ(pt_barrier_open(c, "it.barrier.slow", 2, NULL, NULL, PT_FOREVER, 0, 0, &b), 0);
    sh->started = harness_now();
    sh->result = pt_barrier_wait(b, 0.2);
    WCHECK_EQ(pt_barrier_close(b), 0);
    return 0;
}

static int slow_action(void *arg)
{
    slow_shared *sh = arg;

    /* Outlast the other party's deadline by a wide margin. */
    while (harness_now() < sh->started + 0.5)
        harness_tick();
    return 0;
}

static void test_barrier_deadline_during_action(void **state)
{
    harness *h = *state;
    slow_shared *sh = harness_shm_alloc(h, sizeof *sh);
    pt_client *c = NULL;
    pt_barrier *b = NULL;
    pid_t pid;
    int r;

    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    PT_ASSERT_EQ(pt_barrier_open(c, "it.barrier.slow", 2, slow_action, sh, PT_FOREVER, 0, 0, &b),
                 0);
    pid = harness_worker(h, slow_party, 0, sh);
    wait_n_waiting(b, 1);
    r = pt_barrier_wait(b, PT_FOREVER);
    harness_join(h, &pid, 1, HARNESS_DEADLINE);
    if (r != 1 || sh->result != 0)
        fail_msg("parties got %d (%s) and %d (%s), want indices 1 and 0: the action succeeded", r,
                 pt_err_name(r), sh->result, pt_err_name(sh->result));
    PT_ASSERT_EQ(pt_barrier_broken(b), 0);
    PT_ASSERT_EQ(pt_barrier_close(b), 0);
    pt_client_close(c);
    h->passed = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_barrier_cycles, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_barrier_abort_and_reset, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_barrier_failing_action_breaks, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_barrier_action_runner_killed, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_barrier_deadline_during_action, harness_setup,
                                        harness_teardown),
    };

    return cmocka_run_group_tests_name("integration: barrier", tests, NULL, NULL);
}
