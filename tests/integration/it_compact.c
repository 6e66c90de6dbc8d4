/*
 * it_compact.c - pythreadd --state-dir rewrites its journal as a snapshot
 * while sessions hold and wait (--compact-after), and a kill -9 after
 * that loses nothing: the holder keeps its Lock and RLock depth, the
 * waiter its place and its timeout, the semaphore its value, and the
 * journal stays small however many calls were made.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "pythread_inspect.h"

#define ROUNDS 3000

typedef struct shared {
    atomic_int held; /* the holder holds */
    atomic_int go;   /* the holder may release */
    atomic_int got;  /* the waiter has the lock */
    uint64_t token_a, token_b;
} shared;

static shared *sh;
static const char *args[8];

static void daemon_start_on_state(harness *h)
{
    args[0] = "--state-dir";
    args[1] = h->dir;
    args[2] = "--grace";
    args[3] = "10";
    args[4] = "--compact-after";
    args[5] = "1024";
    args[6] = NULL;
    h->daemon_args = args;
    harness_daemon_start(h);
}

static void wait_flag(atomic_int *flag)
{
    double end = harness_now() + 30;

    while (atomic_load(flag) == 0) {
        WCHECK(harness_now() < end);
        harness_tick();
    }
}

/* Holds cmp.lock and cmp.rlock two deep, took a permit of cmp.sem. */
static int holder(pt_client *c, int index, void *arg)
{
    pt_lock *l;
    pt_rlock *rl;
    pt_semaphore *sem;

    (void)index, (void)arg;
    WCHECK_EQ(pt_lock_open(c, "cmp.lock", 0, 0, &l), 0);
    WCHECK_EQ(pt_rlock_open(c, "cmp.rlock", 0, 0, &rl), 0);
    WCHECK_EQ(pt_semaphore_open(c, "cmp.sem", 3, 1, 0, 0, &sem), 0);
    WCHECK_EQ(pt_lock_acquire_fenced(l, 0, -1, &sh->token_a), 1);
    WCHECK_EQ(pt_rlock_acquire(rl, 1, -1), 1);
    WCHECK_EQ(pt_rlock_acquire(rl, 1, -1), 1);
    WCHECK_EQ(pt_semaphore_acquire(sem, 1, -1), 1);
    atomic_store(&sh->held, 1);
    wait_flag(&sh->go);
    WCHECK_EQ(pt_rlock_release(rl), 0);
    WCHECK_EQ(pt_rlock_release(rl), 0);
    WCHECK_EQ(pt_lock_release(l), 0);
    pt_rlock_close(rl);
    pt_lock_close(l);
    pt_semaphore_close(sem);
    return 0;
}

/* Waits for cmp.lock with a timeout that outlasts the test. */
static int waiter(pt_client *c, int index, void *arg)
{
    pt_lock *l;

    (void)index, (void)arg;
    WCHECK_EQ(pt_lock_open(c, "cmp.lock", 0, 0, &l), 0);
    WCHECK_EQ(pt_lock_acquire_fenced(l, 1, 60, &sh->token_b), 1);
    atomic_store(&sh->got, 1);
    WCHECK_EQ(pt_lock_release(l), 0);
    pt_lock_close(l);
    return 0;
}

/* Barrier waits of one party: each is a call the journal records. */
static void calls(int n)
{
    pt_client *c = NULL;
    pt_barrier *b;

    PT_ASSERT_OK(pt_client_open(&c, NULL));
    PT_ASSERT_OK(pt_barrier_open(c, "cmp.one", 1, NULL, NULL, -1, 0, 0, &b));
    for (int i = 0; i < n; i++)
        assert_true(pt_barrier_wait(b, -1) >= 0);
    pt_barrier_close(b);
    pt_client_close(c);
}

/* The journal's bytes as the daemon counts them: the file is allocated
 * ahead of its records. */
static uint64_t journal_bytes(void)
{
    pt_inspect_status st;

    harness_status(&st);
    return st.journal_bytes;
}

static void test_snapshot_with_holders_survives_kill9(void **state)
{
    harness *h = *state;
    pt_inspect_detail *d;
    pid_t a, b;
    double end;

    sh = harness_shm_alloc(h, sizeof(*sh));
    harness_daemon_stop(h);
    daemon_start_on_state(h);
    a = harness_worker(h, holder, 0, NULL);
    wait_flag(&sh->held);
    b = harness_worker(h, waiter, 1, NULL);
    harness_wait_waiters(h, "cmp.lock", PT_KIND_LOCK, 1, HARNESS_DEADLINE);
    calls(ROUNDS);
    end = harness_now() + HARNESS_DEADLINE;
    while (harness_log_count(h->log, "rewritten as a snapshot") < 2) {
        if (harness_now() > end)
            fail_msg("no snapshot logged after %d calls", ROUNDS);
        harness_tick();
    }
    /* the journal is a snapshot and what came after it, not every call */
    assert_true(journal_bytes() < 64 * 1024);

    harness_kill(h, h->daemon);
    h->daemon = 0;
    daemon_start_on_state(h);
    harness_grace_over();
    d = harness_show("cmp.lock");
    assert_int_equal(d->n_holders, 1);
    assert_int_equal(d->holders[0].pid, a);
    assert_int_equal(d->n_waiters, 1);
    assert_int_equal(d->waiters[0].pid, b);
    pt_inspect_detail_free(d);
    d = harness_show("cmp.rlock");
    assert_int_equal(d->n_holders, 1);
    assert_int_equal(d->holders[0].count, 2);
    pt_inspect_detail_free(d);
    d = harness_show("cmp.sem");
    assert_int_equal(d->object.value, 2);
    pt_inspect_detail_free(d);

    atomic_store(&sh->go, 1);
    harness_join(h, (pid_t[]){a, b}, 2, HARNESS_DEADLINE);
    assert_int_equal(atomic_load(&sh->got), 1);
    assert_true(sh->token_b > sh->token_a);
    h->passed = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_snapshot_with_holders_survives_kill9, harness_setup,
                                        harness_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
