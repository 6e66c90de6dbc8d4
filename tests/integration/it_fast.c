/*
 * it_fast.c - the shared-memory fast path against a real daemon: what it
 * skips the daemon for, what it must not (waiters, FIFO, a dead holder,
 * inspection, Condition), the switches that turn it off, and a client that
 * scribbles on every word it can reach.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "pythread_inspect.h"

static uint64_t daemon_ops(pt_client *c)
{
    pt_inspect_status st;

    PT_ASSERT_OK(pt_inspect_status_get(c, &st));
    return st.operations;
}

static pt_client *client_open(void)
{
    pt_client *c = NULL;

    PT_ASSERT_OK(pt_client_open(&c, NULL));
    return c;
}

/* Uncontended operations send nothing; every acquire still gets the next
 * token, one more than the last. */
static void test_uncontended_skips_the_daemon(void **state)
{
    harness *h = *state;
    pt_client *c = client_open();
    pt_lock *l;
    pt_rlock *rl;
    pt_semaphore *s;
    pt_event *e;
    uint64_t before, token, last = 0;
    int64_t value;

    PT_ASSERT_OK(pt_lock_open(c, "fast.lock", 0, 0, &l));
    PT_ASSERT_OK(pt_rlock_open(c, "fast.rlock", 0, 0, &rl));
    PT_ASSERT_OK(pt_semaphore_open(c, "fast.sem", 5, 0, 0, 0, &s));
    PT_ASSERT_OK(pt_event_open(c, "fast.event", 0, 0, &e));
    before = daemon_ops(c);
    for (int i = 0; i < 1000; i++) {
        PT_ASSERT_EQ(pt_lock_acquire_fenced(l, 1, -1, &token), 1);
        if (last)
            assert_int_equal(token, last + 1);
        last = token;
        PT_ASSERT_EQ(pt_lock_locked(l), 1);
        PT_ASSERT_OK(pt_lock_release(l));
        for (int d = 0; d < 3; d++)
            PT_ASSERT_EQ(pt_rlock_acquire(rl, 1, -1), 1);
        PT_ASSERT_EQ(pt_rlock_is_owned(rl), 1);
        for (int d = 0; d < 3; d++)
            PT_ASSERT_OK(pt_rlock_release(rl));
        PT_ASSERT_EQ(pt_semaphore_acquire(s, 1, -1), 1);
        PT_ASSERT_OK(pt_semaphore_release(s, 1));
        PT_ASSERT_EQ(pt_event_is_set(e), 0);
    }
    PT_ASSERT_EQ(pt_lock_locked(l), 0);
    PT_ASSERT_EQ(pt_rlock_is_owned(rl), 0);
    PT_ASSERT_OK(pt_semaphore_value(s, &value));
    assert_int_equal(value, 5);
    /* 1000 rounds of 15 operations; the status call itself is one. */
    assert_true(daemon_ops(c) - before < 10);
    pt_lock_close(l);
    pt_rlock_close(rl);
    pt_semaphore_close(s);
    pt_event_close(e);
    pt_client_close(c);
    h->passed = 1;
}

static uint64_t pairs_cost(pt_client *c, pt_lock *l, int n)
{
    uint64_t before = daemon_ops(c);

    for (int i = 0; i < n; i++) {
        PT_ASSERT_EQ(pt_lock_acquire(l, 1, -1), 1);
        PT_ASSERT_OK(pt_lock_release(l));
    }
    return daemon_ops(c) - before - 1;
}

/* PYTHREAD_FASTPATH=0 and PT_OPEN_NOFAST make every operation a request;
 * an object created with PT_OPEN_NOFAST has no word for anybody. */
static void test_switches_turn_it_off(void **state)
{
    harness *h = *state;
    pt_client *c, *off;
    pt_lock *l, *l2, *nofast;

    setenv("PYTHREAD_FASTPATH", "0", 1);
    off = client_open();
    unsetenv("PYTHREAD_FASTPATH");
    c = client_open();
    PT_ASSERT_OK(pt_lock_open(off, "off.env", 0, 0, &l));
    assert_int_equal(pairs_cost(off, l, 100), 200);
    pt_lock_close(l);
    PT_ASSERT_OK(pt_lock_open(c, "off.flag", PT_OPEN_NOFAST, 0, &nofast));
    PT_ASSERT_OK(pt_lock_open(c, "off.flag", 0, 0, &l2));
    assert_int_equal(pairs_cost(c, nofast, 100), 200);
    assert_int_equal(pairs_cost(c, l2, 100), 200);
    pt_lock_close(l2);
    pt_lock_close(nofast);
    PT_ASSERT_OK(pt_lock_open(c, "off.env", 0, 0, &l));
    assert_int_equal(pairs_cost(c, l, 100), 0);
    pt_lock_close(l);
    pt_client_close(off);
    pt_client_close(c);
    h->passed = 1;
}

typedef struct shared {
    atomic_int step;
    atomic_llong token;
} shared;

static int hold_and_wait(pt_client *c, int index, void *arg)
{
    shared *sh = arg;
    pt_lock *l;
    pt_rlock *rl;
    uint64_t token;

    (void)index;
    WCHECK(pt_lock_open(c, "dead.lock", 0, 0, &l) == 0);
    WCHECK(pt_rlock_open(c, "dead.rlock", 0, 0, &rl) == 0);
    WCHECK_EQ(pt_lock_acquire_fenced(l, 1, -1, &token), 1);
    WCHECK_EQ(pt_rlock_acquire(rl, 1, -1), 1);
    WCHECK_EQ(pt_rlock_acquire(rl, 1, -1), 1);
    atomic_store(&sh->token, (long long)token);
    atomic_store(&sh->step, 1);
    for (;;)
        pause();
}

/* A holder killed while it holds through the word: its session's end frees
 * the lock at once, and the next token is above its own. */
static void test_killed_holder_frees_at_once(void **state)
{
    harness *h = *state;
    shared *sh = harness_shm_alloc(h, sizeof(*sh));
    pid_t kid = harness_worker(h, hold_and_wait, 0, sh);
    pt_client *c = client_open();
    pt_lock *l;
    pt_rlock *rl;
    uint64_t token;
    double t0;

    harness_wait_flag(&sh->step, 1, HARNESS_DEADLINE, "the worker holds");
    PT_ASSERT_OK(pt_lock_open(c, "dead.lock", 0, 0, &l));
    PT_ASSERT_OK(pt_rlock_open(c, "dead.rlock", 0, 0, &rl));
    PT_ASSERT_EQ(pt_lock_acquire(l, 0, -1), 0);
    PT_ASSERT_EQ(pt_lock_locked(l), 1);
    harness_kill(h, kid);
    t0 = harness_now();
    PT_ASSERT_EQ(pt_lock_acquire_fenced(l, 1, HARNESS_DEADLINE, &token), 1);
    PT_ASSERT_EQ(pt_rlock_acquire(rl, 1, HARNESS_DEADLINE), 1);
    assert_true(harness_now() - t0 < 2.0);
    assert_true(token > (uint64_t)atomic_load(&sh->token));
    PT_ASSERT_OK(pt_rlock_release(rl));
    PT_ASSERT_OK(pt_lock_release(l));
    pt_lock_close(l);
    pt_rlock_close(rl);
    pt_client_close(c);
    h->passed = 1;
}

static int wait_then_hold(pt_client *c, int index, void *arg)
{
    shared *sh = arg;
    pt_lock *l;
    uint64_t token;

    (void)index;
    WCHECK(pt_lock_open(c, "fifo.lock", 0, 0, &l) == 0);
    WCHECK_EQ(pt_lock_acquire_fenced(l, 1, -1, &token), 1);
    atomic_store(&sh->token, (long long)token);
    atomic_store(&sh->step, 1);
    while (atomic_load(&sh->step) < 2)
        harness_tick();
    WCHECK(pt_lock_release(l) == 0);
    pt_lock_close(l);
    return 0;
}

/* Once a waiter is parked nobody passes it: the holder's release hands the
 * lock over (through the word, which the waiter watches), a try by anyone
 * else fails, and inspection names the new holder and its token. */
static void test_parked_waiter_is_not_passed(void **state)
{
    harness *h = *state;
    shared *sh = harness_shm_alloc(h, sizeof(*sh));
    pt_client *c = client_open(), *other = client_open();
    pt_lock *l, *lo;
    pt_inspect_detail *d = NULL;
    pid_t kid;

    PT_ASSERT_OK(pt_lock_open(c, "fifo.lock", 0, 0, &l));
    PT_ASSERT_OK(pt_lock_open(other, "fifo.lock", 0, 0, &lo));
    PT_ASSERT_EQ(pt_lock_acquire(l, 1, -1), 1);
    kid = harness_worker(h, wait_then_hold, 0, sh);
    harness_wait_waiters(h, "fifo.lock", PT_KIND_LOCK, 1, HARNESS_DEADLINE);
    PT_ASSERT_OK(pt_lock_release(l));
    PT_ASSERT_EQ(pt_lock_acquire(lo, 0, -1), 0);
    harness_wait_flag(&sh->step, 1, HARNESS_DEADLINE, "the waiter got the lock");
    PT_ASSERT_EQ(pt_lock_acquire(lo, 0, -1), 0);
    PT_ASSERT_OK(pt_inspect_show(c, "fifo.lock", &d));
    assert_int_equal(d->n_holders, 1);
    assert_int_equal(d->holders[0].pid, kid);
    assert_int_equal(d->object.token, (uint64_t)atomic_load(&sh->token));
    assert_int_equal(d->object.handed, 1); /* the waiter watched the word */
    pt_inspect_detail_free(d);
    atomic_store(&sh->step, 2);
    harness_join(h, &kid, 1, HARNESS_DEADLINE);
    PT_ASSERT_EQ(pt_lock_acquire(lo, 1, HARNESS_DEADLINE), 1);
    PT_ASSERT_OK(pt_lock_release(lo));
    pt_lock_close(l);
    pt_lock_close(lo);
    pt_client_close(c);
    pt_client_close(other);
    h->passed = 1;
}

/* Hand-off through the word, with the waiters watching it. */
#define CHAIN_WORKERS 3
#define CHAIN_TURNS   2000

typedef struct chain {
    char name[32];
    int impatient;         /* workers but the first wait a moment only */
    atomic_int inside;     /* holders right now: never more than one */
    atomic_int violations; /* a second holder, or a token not above the last */
    atomic_llong last;     /* the token of the last acquire */
    atomic_int turns;
} chain;

/* One turn holding the lock: alone, with a token above the last. */
static void chain_turn(chain *ch, uint64_t token)
{
    if (atomic_fetch_add(&ch->inside, 1) != 0)
        atomic_fetch_add(&ch->violations, 1);
    if ((long long)token <= atomic_load(&ch->last))
        atomic_fetch_add(&ch->violations, 1);
    atomic_store(&ch->last, (long long)token);
    atomic_fetch_add(&ch->turns, 1);
    atomic_fetch_sub(&ch->inside, 1);
}

static int chain_worker(pt_client *c, int index, void *arg)
{
    chain *ch = arg;
    pt_lock *l;
    uint64_t token;

    WCHECK_EQ(pt_lock_open(c, ch->name, 0, 0, &l), 0);
    for (int i = 0; i < CHAIN_TURNS; i++) {
        double timeout = ch->impatient && index > 0 ? 0.0001 * (1 + i % 20) : -1;
        int r = pt_lock_acquire_fenced(l, 1, timeout, &token);

        WCHECK(r == 1 || (r == 0 && timeout > 0));
        if (r == 0)
            continue;
        chain_turn(ch, token);
        WCHECK_EQ(pt_lock_release(l), 0);
    }
    pt_lock_close(l);
    return 0;
}

/* Workers take turns on one Lock: one holder at a time, every token above
 * the one before, none lost or skipped (the next acquire after all of them
 * is one more than the turns taken), and the daemon names the true holder
 * with no waiter left behind. */
static void chain_run(harness *h, const char *name, int impatient)
{
    chain *ch = harness_shm_alloc(h, sizeof(*ch));
    pt_client *c = client_open();
    pid_t pids[CHAIN_WORKERS];
    pt_inspect_detail *d = NULL;
    pt_lock *l;
    uint64_t first, last;

    snprintf(ch->name, sizeof(ch->name), "%s", name);
    ch->impatient = impatient;
    PT_ASSERT_OK(pt_lock_open(c, name, 0, 0, &l));
    PT_ASSERT_EQ(pt_lock_acquire_fenced(l, 1, -1, &first), 1);
    PT_ASSERT_OK(pt_lock_release(l));
    harness_workers(h, pids, CHAIN_WORKERS, chain_worker, ch);
    harness_join(h, pids, CHAIN_WORKERS, 120.0);
    assert_int_equal(atomic_load(&ch->violations), 0);
    assert_true(atomic_load(&ch->turns) >= (impatient ? 1 : CHAIN_WORKERS) * CHAIN_TURNS);
    PT_ASSERT_EQ(pt_lock_acquire_fenced(l, 0, -1, &last), 1);
    assert_int_equal(last, first + (uint64_t)atomic_load(&ch->turns) + 1);
    PT_ASSERT_OK(pt_inspect_show(c, name, &d));
    assert_int_equal(d->n_holders, 1);
    assert_int_equal(d->holders[0].session, pt_client_session_id(c));
    assert_int_equal(d->object.token, last);
    assert_int_equal(d->n_waiters, 0);
    pt_inspect_detail_free(d);
    PT_ASSERT_OK(pt_lock_release(l));
    pt_lock_close(l);
    pt_client_close(c);
}

static void test_handoff_keeps_tokens_exact(void **state)
{
    harness *h = *state;

    chain_run(h, "chain.lock", 0);
    h->passed = 1;
}

/* Waiters give up while the holder hands the lock on: one that timed out
 * is never handed the lock (held by nobody who knows it, it would stop
 * everybody), and tokens stay exact. */
static void test_handoff_skips_a_waiter_that_timed_out(void **state)
{
    harness *h = *state;

    chain_run(h, "impatient.lock", 1);
    h->passed = 1;
}

static int wait_forever(pt_client *c, int index, void *arg)
{
    pt_lock *l;

    (void)index;
    (void)arg;
    WCHECK_EQ(pt_lock_open(c, "killed.next.lock", 0, 0, &l), 0);
    WCHECK_EQ(pt_lock_acquire(l, 1, -1), 1);
    return 0;
}

/* Poll the daemon until name has no waiter left. */
static void wait_no_waiters(pt_client *c, const char *name)
{
    double deadline = harness_now() + HARNESS_DEADLINE;
    pt_inspect_detail *d = NULL;

    for (;;) {
        size_t n;

        PT_ASSERT_OK(pt_inspect_show(c, name, &d));
        n = d->n_waiters;
        pt_inspect_detail_free(d);
        if (n == 0)
            return;
        if (harness_now() > deadline)
            fail_msg("%s: %zu waiters left after %.0f s", name, n, HARNESS_DEADLINE);
        harness_tick();
    }
}

/* The waiter the word names as next dies; the holder releases: the lock
 * comes free (or to the next live waiter), never kept by the dead. */
static void test_handoff_to_a_killed_waiter(void **state)
{
    harness *h = *state;
    pt_client *c = client_open(), *other = client_open();
    pt_lock *l, *lo;
    pid_t kid;

    PT_ASSERT_OK(pt_lock_open(c, "killed.next.lock", 0, 0, &l));
    PT_ASSERT_OK(pt_lock_open(other, "killed.next.lock", 0, 0, &lo));
    for (int round = 0; round < 20; round++) {
        PT_ASSERT_EQ(pt_lock_acquire(l, 1, -1), 1);
        kid = harness_worker(h, wait_forever, 0, NULL);
        harness_wait_waiters(h, "killed.next.lock", PT_KIND_LOCK, 1, HARNESS_DEADLINE);
        harness_kill(h, kid);
        /* before the daemon may have seen the death, or after */
        if (round % 2)
            wait_no_waiters(other, "killed.next.lock");
        PT_ASSERT_OK(pt_lock_release(l));
        PT_ASSERT_EQ(pt_lock_acquire(lo, 1, HARNESS_DEADLINE), 1);
        PT_ASSERT_OK(pt_lock_release(lo));
    }
    pt_lock_close(l);
    pt_lock_close(lo);
    pt_client_close(c);
    pt_client_close(other);
    h->passed = 1;
}

/* Inspection sees a hold taken through the word: holder, depth, token. */
static void test_show_names_the_fast_holder(void **state)
{
    harness *h = *state;
    pt_client *c = client_open(), *viewer = client_open();
    pt_rlock *rl;
    pt_inspect_detail *d = NULL;
    uint64_t token;

    PT_ASSERT_OK(pt_rlock_open(c, "show.rlock", 0, 0, &rl));
    PT_ASSERT_EQ(pt_rlock_acquire_fenced(rl, 1, -1, &token), 1);
    PT_ASSERT_EQ(pt_rlock_acquire(rl, 1, -1), 1);
    PT_ASSERT_OK(pt_inspect_show(viewer, "show.rlock", &d));
    assert_int_equal(d->object.locked, 1);
    assert_int_equal(d->object.token, token);
    assert_int_equal(d->n_holders, 1);
    assert_int_equal(d->holders[0].session, pt_client_session_id(c));
    assert_int_equal(d->holders[0].count, 2);
    pt_inspect_detail_free(d);
    PT_ASSERT_OK(pt_rlock_release(rl));
    PT_ASSERT_OK(pt_rlock_release(rl));
    PT_ASSERT_OK(pt_inspect_show(viewer, "show.rlock", &d));
    assert_int_equal(d->object.locked, 0);
    assert_int_equal(d->n_holders, 0);
    pt_inspect_detail_free(d);
    pt_rlock_close(rl);
    pt_client_close(c);
    pt_client_close(viewer);
    h->passed = 1;
}

/* A Condition over an RLock held through the word: wait releases it whole
 * and gives the level back. */
static void test_condition_over_a_fast_rlock(void **state)
{
    harness *h = *state;
    pt_client *c = client_open();
    pt_rlock *rl;
    pt_condition *cv;

    PT_ASSERT_OK(pt_rlock_open(c, "cond.rlock", 0, 0, &rl));
    PT_ASSERT_OK(pt_condition_open(c, "cond.cv", pt_rlock_as_object(rl), 0, 0, &cv));
    for (int i = 0; i < 3; i++)
        PT_ASSERT_EQ(pt_rlock_acquire(rl, 1, -1), 1);
    PT_ASSERT_EQ(pt_condition_wait(cv, 0.05), 0);
    PT_ASSERT_EQ(pt_rlock_is_owned(rl), 1);
    for (int i = 0; i < 3; i++)
        PT_ASSERT_OK(pt_rlock_release(rl));
    PT_ASSERT_EQ(pt_rlock_release(rl), PT_ERUNTIME);
    PT_ASSERT_EQ(pt_rlock_is_owned(rl), 0);
    pt_condition_close(cv);
    pt_rlock_close(rl);
    pt_client_close(c);
    h->passed = 1;
}

/* Semaphores through the word, owned or not; a bound still refused with
 * the daemon's words. */
static void test_semaphores(void **state)
{
    harness *h = *state;
    pt_client *c = client_open();
    pt_semaphore *s, *b, *owned;
    int64_t value;
    uint64_t before;

    PT_ASSERT_OK(pt_semaphore_open(c, "sem.plain", 2, 0, 0, 0, &s));
    PT_ASSERT_OK(pt_semaphore_open(c, "sem.bounded", 1, 1, PT_OPEN_UNOWNED, 0, &b));
    PT_ASSERT_OK(pt_semaphore_open(c, "sem.owned", 1, 1, 0, 0, &owned));
    before = daemon_ops(c);
    PT_ASSERT_EQ(pt_semaphore_acquire(s, 1, -1), 1);
    PT_ASSERT_EQ(pt_semaphore_acquire(s, 1, 0), 1);
    PT_ASSERT_EQ(pt_semaphore_acquire(s, 0, -1), 0);
    PT_ASSERT_OK(pt_semaphore_release(s, 3));
    PT_ASSERT_OK(pt_semaphore_value(s, &value));
    assert_int_equal(value, 3);
    PT_ASSERT_EQ(pt_semaphore_acquire(b, 1, -1), 1);
    PT_ASSERT_OK(pt_semaphore_release(b, 1));
    assert_int_equal(daemon_ops(c) - before, 1);
    PT_ASSERT_EQ(pt_semaphore_release(b, 1), PT_EINVAL);
    assert_non_null(strstr(pt_last_error_message(), "released too many times"));
    before = daemon_ops(c);
    PT_ASSERT_EQ(pt_semaphore_acquire(owned, 1, -1), 1);
    PT_ASSERT_EQ(pt_semaphore_acquire(owned, 0, -1), 0);
    PT_ASSERT_OK(pt_semaphore_release(owned, 1));
    PT_ASSERT_OK(pt_semaphore_value(owned, &value));
    assert_int_equal(value, 1);
    assert_int_equal(daemon_ops(c) - before, 1);
    PT_ASSERT_EQ(pt_semaphore_release(owned, 1), PT_EINVAL);
    pt_semaphore_close(s);
    pt_semaphore_close(b);
    pt_semaphore_close(owned);
    pt_client_close(c);
    h->passed = 1;
}

static int take_two_and_wait(pt_client *c, int index, void *arg)
{
    shared *sh = arg;
    pt_semaphore *s;

    (void)index;
    WCHECK(pt_semaphore_open(c, "owned.sem", 3, 1, 0, 0, &s) == 0);
    WCHECK_EQ(pt_semaphore_acquire(s, 1, -1), 1);
    WCHECK_EQ(pt_semaphore_acquire(s, 1, -1), 1);
    atomic_store(&sh->step, 1);
    for (;;)
        pause();
}

/* The holder of a BoundedSemaphore's permit the inspection names, after
 * every acquire and release through the word. */
static void expect_holder(pt_client *viewer, pid_t pid, uint64_t count, int64_t value)
{
    pt_inspect_detail *d = NULL;

    PT_ASSERT_OK(pt_inspect_show(viewer, "owned.sem", &d));
    assert_int_equal(d->object.value, value);
    assert_int_equal(d->n_holders, count > 0);
    if (count > 0) {
        assert_int_equal(d->holders[0].pid, pid);
        assert_int_equal(d->holders[0].count, count);
    }
    pt_inspect_detail_free(d);
}

/* Owned permits taken through the word: inspection names their holder, a
 * killed holder's come back at once, a release by another process counts
 * the holder's down, and the bound holds. */
static void test_owned_permits_come_back(void **state)
{
    harness *h = *state;
    shared *sh = harness_shm_alloc(h, sizeof(*sh));
    pid_t kid = harness_worker(h, take_two_and_wait, 0, sh);
    pt_client *c = client_open(), *other = client_open();
    pt_semaphore *s, *so;
    uint64_t before;
    double t0;

    harness_wait_flag(&sh->step, 1, HARNESS_DEADLINE, "the worker holds two permits");
    PT_ASSERT_OK(pt_semaphore_open(c, "owned.sem", 3, 1, 0, 0, &s));
    PT_ASSERT_OK(pt_semaphore_open(other, "owned.sem", 3, 1, 0, 0, &so));
    expect_holder(other, kid, 2, 1);
    before = daemon_ops(c);
    PT_ASSERT_EQ(pt_semaphore_acquire(s, 1, -1), 1);
    PT_ASSERT_EQ(pt_semaphore_acquire(s, 0, -1), 0);
    assert_int_equal(daemon_ops(c) - before, 1);
    harness_kill(h, kid);
    t0 = harness_now();
    PT_ASSERT_EQ(pt_semaphore_acquire(s, 1, HARNESS_DEADLINE), 1);
    assert_true(harness_now() - t0 < 2.0);
    expect_holder(other, getpid(), 2, 1);
    PT_ASSERT_OK(pt_semaphore_release(so, 1)); /* counts c's down */
    expect_holder(other, getpid(), 1, 2);
    PT_ASSERT_OK(pt_semaphore_release(s, 1));
    expect_holder(other, 0, 0, 3);
    PT_ASSERT_EQ(pt_semaphore_release(s, 1), PT_EINVAL);
    pt_semaphore_close(s);
    pt_semaphore_close(so);
    pt_client_close(c);
    pt_client_close(other);
    h->passed = 1;
}

/* Event.is_set follows another process's set and clear. */
static void test_event_follows_set_and_clear(void **state)
{
    harness *h = *state;
    pt_client *c = client_open(), *setter = client_open();
    pt_event *e, *es;

    PT_ASSERT_OK(pt_event_open(c, "ev", 0, 0, &e));
    PT_ASSERT_OK(pt_event_open(setter, "ev", 0, 0, &es));
    PT_ASSERT_EQ(pt_event_is_set(e), 0);
    PT_ASSERT_OK(pt_event_set(es));
    PT_ASSERT_EQ(pt_event_is_set(e), 1);
    PT_ASSERT_EQ(pt_event_wait(e, 0), 1);
    PT_ASSERT_OK(pt_event_clear(es));
    PT_ASSERT_EQ(pt_event_is_set(e), 0);
    PT_ASSERT_EQ(pt_event_wait(e, 0), 0);
    pt_event_close(e);
    pt_event_close(es);
    pt_client_close(c);
    pt_client_close(setter);
    h->passed = 1;
}

/* ------------------------------------------------------------------ */
/* A client that writes anything into every word it can reach           */
/* ------------------------------------------------------------------ */

/* The mapping of shared cells this process got from the daemon. */
static int find_cells(void **start, size_t *len)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int found = 0;

    if (!f)
        return 0;
    while (!found && fgets(line, sizeof line, f)) {
        unsigned long a, b;

        if (strstr(line, "pythreadd-cells") && sscanf(line, "%lx-%lx", &a, &b) == 2) {
            *start = (void *)a;
            *len = b - a;
            found = 1;
        }
    }
    fclose(f);
    return found;
}

static uint64_t rnd(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Opens objects of its own group (mode 0660), then writes random words
 * into the first cells of its mapping for a while, using its objects too. */
static int scribble(pt_client *c, int index, void *arg)
{
    shared *sh = arg;
    pt_lock *l;
    pt_semaphore *s;
    void *cells;
    size_t len;
    uint64_t x = 88172645463325252ull + (uint64_t)index;
    double end;

    WCHECK(pt_lock_open(c, "scribble.lock", 0, 0660, &l) == 0);
    WCHECK(pt_semaphore_open(c, "scribble.sem", 3, 0, 0, 0660, &s) == 0);
    WCHECK(find_cells(&cells, &len));
    atomic_store(&sh->step, 1);
    end = harness_now() + 1.0;
    while (harness_now() < end) {
        volatile uint64_t *w = cells;

        for (int i = 0; i < 64; i++)
            w[rnd(&x) % 32] = rnd(&x); /* the first four cells */
        (void)pt_lock_acquire(l, 1, 0.001);
        (void)pt_lock_release(l);
        (void)pt_semaphore_acquire(s, 1, 0.001);
        (void)pt_semaphore_release(s, 1);
    }
    pt_lock_close(l);
    pt_semaphore_close(s);
    return 0;
}

/* Fenced acquires of an object of another group, racing in two processes:
 * tokens strictly grow and nobody overlaps. */
static int victim(pt_client *c, int index, void *arg)
{
    atomic_int *inside = arg;
    pt_lock *l;
    uint64_t token, last = 0;
    double end = harness_now() + 1.0;

    (void)index;
    WCHECK(pt_lock_open(c, "victim.lock", 0, 0600, &l) == 0);
    while (harness_now() < end) {
        WCHECK_EQ(pt_lock_acquire_fenced(l, 1, HARNESS_DEADLINE, &token), 1);
        WCHECK_EQ(atomic_fetch_add(inside, 1), 0);
        WCHECK(token > last);
        last = token;
        atomic_fetch_sub(inside, 1);
        WCHECK(pt_lock_release(l) == 0);
    }
    pt_lock_close(l);
    return 0;
}

/* A client may break objects of its own group, nothing else: the daemon
 * lives, and objects of another group keep exact semantics. */
static void test_scribbler_breaks_only_its_own_group(void **state)
{
    harness *h = *state;
    shared *sh = harness_shm_alloc(h, sizeof(*sh));
    atomic_int *inside = harness_shm_alloc(h, sizeof(*inside));
    pt_client *c = client_open();
    pt_inspect_status st;
    pid_t kids[3];

    kids[0] = harness_worker(h, scribble, 0, sh);
    harness_wait_flag(&sh->step, 1, HARNESS_DEADLINE, "the scribbler has its mapping");
    kids[1] = harness_worker(h, victim, 1, inside);
    kids[2] = harness_worker(h, victim, 2, inside);
    harness_join(h, kids, 3, 3 * HARNESS_DEADLINE);
    PT_ASSERT_OK(pt_inspect_status_get(c, &st));
    assert_true(st.objects >= 3);
    pt_client_close(c);
    h->passed = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_uncontended_skips_the_daemon, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_switches_turn_it_off, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_killed_holder_frees_at_once, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_parked_waiter_is_not_passed, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_handoff_keeps_tokens_exact, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_handoff_skips_a_waiter_that_timed_out, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_handoff_to_a_killed_waiter, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_show_names_the_fast_holder, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_condition_over_a_fast_rlock, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_semaphores, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_owned_permits_come_back, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_event_follows_set_and_clear, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_scribbler_breaks_only_its_own_group, harness_setup,
                                        harness_teardown),
    };

    return cmocka_run_group_tests_name("integration.fast", tests, NULL, NULL);
}
