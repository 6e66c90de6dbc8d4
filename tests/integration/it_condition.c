/*
 * Condition variables across processes: producers and consumers over a queue
 * in shared memory, every item consumed exactly once, and wait giving the lock
 * back at the recursion level it was held at.
 */
#include "harness.h"

#include <stdio.h>
#include <string.h>

#define CV_ITEMS 3000
#define CV_RING  4

/* 1 producer, 2 consumers: an unbounded queue guarded by a Lock. */
typedef struct cv_shared {
    atomic_long head, tail; /* guarded by the named lock; atomic only for visibility */
    atomic_int done;
    int queue[CV_ITEMS];
    atomic_int consumed[CV_ITEMS];
    atomic_int per_consumer[2];
} cv_shared;

static int cv_open(pt_client *c, const char *lock_name, const char *cv_name, pt_lock **l,
                   pt_condition **cv)
{
    int rc = pt_lock_open(c, lock_name, 0, 0, l);

    if (rc != 0)
        return rc;
    return pt_condition_open(c, cv_name, pt_lock_as_object(*l), 0, 0, cv);
}

static int cv_producer(pt_client *c, cv_shared *sh)
{
    pt_lock *l = NULL;
    pt_condition *cv = NULL;

    WCHECK_EQ(cv_open(c, "it.cv.lock", "it.cv", &l, &cv), 0);
    for (int i = 0; i < CV_ITEMS; i++) {
        WCHECK_EQ(pt_condition_acquire(cv, 1, PT_FOREVER), 1);
        sh->queue[atomic_load(&sh->tail)] = i;
        atomic_fetch_add(&sh->tail, 1);
        WCHECK(pt_condition_notify(cv, 1) >= 0);
        WCHECK_EQ(pt_condition_release(cv), 0);
    }
    WCHECK_EQ(pt_condition_acquire(cv, 1, PT_FOREVER), 1);
    atomic_store(&sh->done, 1);
    WCHECK(pt_condition_notify_all(cv) >= 0);
    WCHECK_EQ(pt_condition_release(cv), 0);
    WCHECK_EQ(pt_condition_close(cv), 0);
    WCHECK_EQ(pt_lock_close(l), 0);
    return 0;
}

static int cv_consumer(pt_client *c, cv_shared *sh, int who)
{
    pt_lock *l = NULL;
    pt_condition *cv = NULL;

    WCHECK_EQ(cv_open(c, "it.cv.lock", "it.cv", &l, &cv), 0);
    for (;;) {
        long head;

        WCHECK_EQ(pt_condition_acquire(cv, 1, PT_FOREVER), 1);
        while (atomic_load(&sh->head) == atomic_load(&sh->tail) && !atomic_load(&sh->done))
            WCHECK_EQ(pt_condition_wait(cv, PT_FOREVER), 1);
        head = atomic_load(&sh->head);
        if (head == atomic_load(&sh->tail)) {
            WCHECK_EQ(pt_condition_release(cv), 0);
            break;
        }
        atomic_store(&sh->head, head + 1);
        atomic_fetch_add(&sh->consumed[sh->queue[head]], 1);
        atomic_fetch_add(&sh->per_consumer[who], 1);
        WCHECK_EQ(pt_condition_release(cv), 0);
    }
    WCHECK_EQ(pt_condition_close(cv), 0);
    WCHECK_EQ(pt_lock_close(l), 0);
    return 0;
}

static int cv_worker(pt_client *c, int index, void *arg)
{
    return index == 0 ? cv_producer(c, arg) : cv_consumer(c, arg, index - 1);
}

static void test_one_producer_two_consumers(void **state)
{
    harness *h = *state;
    cv_shared *sh = harness_shm_alloc(h, sizeof *sh);
    pid_t pids[3];

    /* Consumers first, so they really wait before the first item. */
    pids[1] = harness_worker(h, cv_worker, 1, sh);
    pids[2] = harness_worker(h, cv_worker, 2, sh);
    harness_wait_waiters(h, "it.cv", PT_KIND_CONDITION, 2, HARNESS_DEADLINE);
    pids[0] = harness_worker(h, cv_worker, 0, sh);
    harness_join(h, pids, 3, 60.0);

    assert_int_equal(atomic_load(&sh->tail), CV_ITEMS);
    assert_int_equal(atomic_load(&sh->head), CV_ITEMS);
    for (int i = 0; i < CV_ITEMS; i++)
        if (atomic_load(&sh->consumed[i]) != 1)
            fail_msg("item %d consumed %d times, want once", i, atomic_load(&sh->consumed[i]));
    assert_int_equal(atomic_load(&sh->per_consumer[0]) + atomic_load(&sh->per_consumer[1]),
                     CV_ITEMS);
    h->passed = 1;
}

/* 2 producers, 1 consumer: a ring of CV_RING slots, two conditions
 * (not_empty, not_full) over one named RLock. */
typedef struct ring_shared {
    int slot[CV_RING];
    atomic_int count, head;
    atomic_int consumed[CV_ITEMS];
} ring_shared;

static int ring_open(pt_client *c, pt_rlock **l, pt_condition **not_empty, pt_condition **not_full)
{
    int rc = pt_rlock_open(c, "it.ring.lock", 0, 0, l);

    if (rc == 0)
        rc = pt_condition_open(c, "it.ring.not_empty", pt_rlock_as_object(*l), 0, 0, not_empty);
    if (rc == 0)
        rc = pt_condition_open(c, "it.ring.not_full", pt_rlock_as_object(*l), 0, 0, not_full);
    return rc;
}

static int ring_producer(pt_client *c, ring_shared *sh, int who)
{
    pt_rlock *l = NULL;
    pt_condition *not_empty = NULL, *not_full = NULL;

    WCHECK_EQ(ring_open(c, &l, &not_empty, &not_full), 0);
    for (int i = who; i < CV_ITEMS; i += 2) {
        int n;

        WCHECK_EQ(pt_condition_acquire(not_full, 1, PT_FOREVER), 1);
        while ((n = atomic_load(&sh->count)) == CV_RING)
            WCHECK_EQ(pt_condition_wait(not_full, PT_FOREVER), 1);
        sh->slot[(atomic_load(&sh->head) + n) % CV_RING] = i;
        atomic_store(&sh->count, n + 1);
        /* not_empty shares the lock this process holds through not_full. */
        WCHECK(pt_condition_notify(not_empty, 1) >= 0);
        WCHECK_EQ(pt_condition_release(not_full), 0);
    }
    WCHECK_EQ(pt_condition_close(not_full), 0);
    WCHECK_EQ(pt_condition_close(not_empty), 0);
    WCHECK_EQ(pt_rlock_close(l), 0);
    return 0;
}

static int ring_consumer(pt_client *c, ring_shared *sh)
{
    pt_rlock *l = NULL;
    pt_condition *not_empty = NULL, *not_full = NULL;

    WCHECK_EQ(ring_open(c, &l, &not_empty, &not_full), 0);
    for (int got = 0; got < CV_ITEMS; got++) {
        int head;

        WCHECK_EQ(pt_condition_acquire(not_empty, 1, PT_FOREVER), 1);
        while (atomic_load(&sh->count) == 0)
            WCHECK_EQ(pt_condition_wait(not_empty, PT_FOREVER), 1);
        head = atomic_load(&sh->head);
        atomic_fetch_add(&sh->consumed[sh->slot[head]], 1);
        atomic_store(&sh->head, (head + 1) % CV_RING);
        atomic_fetch_sub(&sh->count, 1);
        WCHECK(pt_condition_notify(not_full, 1) >= 0);
        WCHECK_EQ(pt_condition_release(not_empty), 0);
    }
    WCHECK_EQ(pt_condition_close(not_full), 0);
    WCHECK_EQ(pt_condition_close(not_empty), 0);
    WCHECK_EQ(pt_rlock_close(l), 0);
    return 0;
}

static int ring_worker(pt_client *c, int index, void *arg)
{
    return index < 2 ? ring_producer(c, arg, index) : ring_consumer(c, arg);
}

static void test_two_producers_one_consumer(void **state)
{
    harness *h = *state;
    ring_shared *sh = harness_shm_alloc(h, sizeof *sh);
    pid_t pids[3];

    harness_workers(h, pids, 3, ring_worker, sh);
    harness_join(h, pids, 3, 60.0);

    assert_int_equal(atomic_load(&sh->count), 0);
    for (int i = 0; i < CV_ITEMS; i++)
        if (atomic_load(&sh->consumed[i]) != 1)
            fail_msg("item %d consumed %d times, want once", i, atomic_load(&sh->consumed[i]));
    h->passed = 1;
}

/*
 * wait() over an RLock held at depth 3 releases it completely (another
 * process can take it and notify) and restores depth 3 before answering.
 */
typedef struct depth_shared {
    atomic_int notified;
} depth_shared;

static int depth_notifier(pt_client *c, int index, void *arg)
{
    depth_shared *sh = arg;
    pt_rlock *l = NULL;
    pt_condition *cv = NULL;

    (void)index;
    WCHECK_EQ(pt_rlock_open(c, "it.depth.lock", 0, 0, &l), 0);
    WCHECK_EQ(pt_condition_open(c, "it.depth.cv", pt_rlock_as_object(l), 0, 0, &cv), 0);
    /* Succeeds only if the waiter gave the lock back completely. */
    WCHECK_EQ(pt_condition_acquire(cv, 1, HARNESS_DEADLINE), 1);
    WCHECK(pt_condition_notify(cv, 1) >= 0);
    atomic_store(&sh->notified, 1);
    WCHECK_EQ(pt_condition_release(cv), 0);
    WCHECK_EQ(pt_condition_close(cv), 0);
    WCHECK_EQ(pt_rlock_close(l), 0);
    return 0;
}

static void test_wait_restores_rlock_depth(void **state)
{
    harness *h = *state;
    depth_shared *sh = harness_shm_alloc(h, sizeof *sh);
    pt_client *c = NULL;
    pt_rlock *l = NULL;
    pt_condition *cv = NULL;
    pid_t pid;

    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    PT_ASSERT_EQ(pt_rlock_open(c, "it.depth.lock", 0, 0, &l), 0);
    PT_ASSERT_EQ(pt_condition_open(c, "it.depth.cv", pt_rlock_as_object(l), 0, 0, &cv), 0);
    for (int i = 0; i < 3; i++)
        PT_ASSERT_EQ(pt_rlock_acquire(l, 1, PT_FOREVER), 1);

    pid = harness_worker(h, depth_notifier, 0, sh);
    PT_ASSERT_EQ(pt_condition_wait(cv, 10.0), 1);
    assert_int_equal(atomic_load(&sh->notified), 1);
    harness_join(h, &pid, 1, HARNESS_DEADLINE);

    PT_ASSERT_EQ(pt_rlock_is_owned(l), 1);
    for (int i = 0; i < 3; i++)
        PT_ASSERT_EQ(pt_rlock_release(l), 0);
    PT_ASSERT_EQ(pt_rlock_release(l), PT_ERUNTIME);
    PT_ASSERT_EQ(pt_rlock_locked(l), 0);
    PT_ASSERT_EQ(pt_condition_close(cv), 0);
    PT_ASSERT_EQ(pt_rlock_close(l), 0);
    pt_client_close(c);
    h->passed = 1;
}

/* ---- notify(n) across processes, timed-out waits, killed waiters ---- */

#define NOTIFY_WAITERS 3

typedef struct notify_shared {
    double timeout; /* the waiters' wait timeout */
    atomic_int returned;
    atomic_int woke[NOTIFY_WAITERS]; /* 1 + the wait's result, 0 while waiting */
    atomic_int released[NOTIFY_WAITERS];
} notify_shared;

/* Waits on it.nc (over the named Lock it.nc.lock) and records the result;
 * returns holding the lock, which it then releases. */
static int notify_waiter(pt_client *c, int index, void *arg)
{
    notify_shared *sh = arg;
    pt_lock *l = NULL;
    pt_condition *cv = NULL;
    int r;

    WCHECK_EQ(cv_open(c, "it.nc.lock", "it.nc", &l, &cv), 0);
    WCHECK_EQ(pt_condition_acquire(cv, 1, PT_FOREVER), 1);
    r = pt_condition_wait(cv, sh->timeout);
    atomic_store(&sh->woke[index], 1 + r);
    atomic_fetch_add(&sh->returned, 1);
    WCHECK_EQ(pt_condition_release(cv), 0);
    atomic_store(&sh->released[index], 1);
    WCHECK_EQ(pt_condition_close(cv), 0);
    WCHECK_EQ(pt_lock_close(l), 0);
    return 0;
}

static void open_nc(pt_client **c, pt_lock **l, pt_condition **cv)
{
    PT_ASSERT_EQ(pt_client_open(c, NULL), 0);
    PT_ASSERT_EQ(cv_open(*c, "it.nc.lock", "it.nc", l, cv), 0);
}

static void close_nc(pt_client *c, pt_lock *l, pt_condition *cv)
{
    PT_ASSERT_EQ(pt_condition_close(cv), 0);
    PT_ASSERT_EQ(pt_lock_close(l), 0);
    pt_client_close(c);
}

/* notify(2) wakes exactly the two oldest of three waiting processes. */
static void test_notify_n_wakes_oldest_n(void **state)
{
    harness *h = *state;
    notify_shared *sh = harness_shm_alloc(h, sizeof *sh);
    pid_t pids[NOTIFY_WAITERS];
    pt_client *c = NULL;
    pt_lock *l = NULL;
    pt_condition *cv = NULL;

    sh->timeout = PT_FOREVER;
    open_nc(&c, &l, &cv);
    for (int i = 0; i < NOTIFY_WAITERS; i++) {
        pids[i] = harness_worker(h, notify_waiter, i, sh);
        harness_wait_waiters(h, "it.nc", PT_KIND_CONDITION, (uint32_t)i + 1, HARNESS_DEADLINE);
    }
    PT_ASSERT_EQ(pt_condition_acquire(cv, 1, PT_FOREVER), 1);
    PT_ASSERT_OK(pt_condition_notify(cv, 2));
    PT_ASSERT_EQ(pt_condition_release(cv), 0);
    harness_join(h, pids, 2, HARNESS_DEADLINE);
    assert_int_equal(atomic_load(&sh->woke[0]), 2);
    assert_int_equal(atomic_load(&sh->woke[1]), 2);
    /* The third still waits on the condition. */
    harness_wait_waiters(h, "it.nc", PT_KIND_CONDITION, 1, HARNESS_DEADLINE);
    assert_int_equal(atomic_load(&sh->woke[2]), 0);

    PT_ASSERT_EQ(pt_condition_acquire(cv, 1, PT_FOREVER), 1);
    PT_ASSERT_OK(pt_condition_notify_all(cv));
    PT_ASSERT_EQ(pt_condition_release(cv), 0);
    harness_join(h, pids + 2, 1, HARNESS_DEADLINE);
    assert_int_equal(atomic_load(&sh->woke[2]), 2);
    close_nc(c, l, cv);
    h->passed = 1;
}

/*
 * A wait that times out while another process holds the lock answers only
 * once it has the lock back: its timeout moves it to the lock's queue.
 */
static void test_timed_out_wait_reacquires_first(void **state)
{
    harness *h = *state;
    notify_shared *sh = harness_shm_alloc(h, sizeof *sh);
    pt_client *c = NULL;
    pt_lock *l = NULL;
    pt_condition *cv = NULL;
    pid_t pid;

    sh->timeout = 0.2;
    open_nc(&c, &l, &cv);
    pid = harness_worker(h, notify_waiter, 0, sh);
    harness_wait_waiters(h, "it.nc", PT_KIND_CONDITION, 1, HARNESS_DEADLINE);
    PT_ASSERT_EQ(pt_lock_acquire(l, 1, PT_FOREVER), 1);
    /* Timed out, the waiter queues for the lock this process holds. */
    harness_wait_waiters(h, "it.nc.lock", PT_KIND_LOCK, 1, HARNESS_DEADLINE);
    assert_int_equal(atomic_load(&sh->returned), 0);
    PT_ASSERT_EQ(pt_lock_release(l), 0);
    harness_join(h, &pid, 1, HARNESS_DEADLINE);
    assert_int_equal(atomic_load(&sh->woke[0]), 1); /* wait returned 0: timed out */
    close_nc(c, l, cv);
    h->passed = 1;
}

/* A waiter killed in wait leaves the queue: notify(1) goes to the live one. */
static void test_killed_waiter_takes_no_notify(void **state)
{
    harness *h = *state;
    notify_shared *sh = harness_shm_alloc(h, sizeof *sh);
    pt_client *c = NULL;
    pt_lock *l = NULL;
    pt_condition *cv = NULL;
    pid_t doomed, live;

    sh->timeout = PT_FOREVER;
    open_nc(&c, &l, &cv);
    doomed = harness_worker(h, notify_waiter, 0, sh);
    harness_wait_waiters(h, "it.nc", PT_KIND_CONDITION, 1, HARNESS_DEADLINE);
    live = harness_worker(h, notify_waiter, 1, sh);
    harness_wait_waiters(h, "it.nc", PT_KIND_CONDITION, 2, HARNESS_DEADLINE);
    harness_kill(h, doomed);

    /* Once the daemon has seen the death, one waiter is left. */
    {
        double deadline = harness_now() + HARNESS_DEADLINE;
        raw_conn rc;
        uint32_t handle = 0, n = 2;

        assert_int_equal(raw_connect(&rc, h->sock), 0);
        assert_int_equal(raw_hello(&rc, PT_PROTOCOL_VERSION), 0);
        assert_int_equal(raw_open(&rc, "it.nc", PT_KIND_CONDITION, PT_OPEN_EXISTING, &handle), 0);
        while (raw_state_waiting(&rc, handle, &n) == 0 && n != 1 && harness_now() < deadline)
            harness_tick();
        raw_close(&rc);
        if (n != 1)
            fail_msg("%u waiters on the condition after one of two was killed, want 1", n);
    }
    PT_ASSERT_EQ(pt_condition_acquire(cv, 1, PT_FOREVER), 1);
    PT_ASSERT_OK(pt_condition_notify(cv, 1));
    PT_ASSERT_EQ(pt_condition_release(cv), 0);
    harness_join(h, &live, 1, HARNESS_DEADLINE);
    assert_int_equal(atomic_load(&sh->woke[1]), 2);
    PT_ASSERT_EQ(pt_lock_locked(l), 0);
    close_nc(c, l, cv);
    h->passed = 1;
}

/*
 * A waiter notified and queued to re-acquire the lock, killed before it gets
 * it: the lock is not handed to the dead session, and is free once the
 * notifier releases it.
 */
static void test_killed_reacquirer_gets_no_lock(void **state)
{
    harness *h = *state;
    notify_shared *sh = harness_shm_alloc(h, sizeof *sh);
    pt_client *c = NULL, *probe = NULL;
    pt_lock *l = NULL, *pl = NULL;
    pt_condition *cv = NULL;
    double deadline;
    pid_t pid;

    sh->timeout = PT_FOREVER;
    open_nc(&c, &l, &cv);
    pid = harness_worker(h, notify_waiter, 0, sh);
    harness_wait_waiters(h, "it.nc", PT_KIND_CONDITION, 1, HARNESS_DEADLINE);
    PT_ASSERT_EQ(pt_condition_acquire(cv, 1, PT_FOREVER), 1);
    PT_ASSERT_OK(pt_condition_notify(cv, 1));
    /* Notified, it now waits for the lock this process holds. */
    harness_wait_waiters(h, "it.nc.lock", PT_KIND_LOCK, 1, HARNESS_DEADLINE);
    harness_kill(h, pid);
    PT_ASSERT_EQ(pt_condition_release(cv), 0);

    /* Whether the daemon saw the death before or after the release, the
     * lock must end up free. */
    PT_ASSERT_EQ(pt_client_open(&probe, NULL), 0);
    PT_ASSERT_EQ(pt_lock_open(probe, "it.nc.lock", 0, 0, &pl), 0);
    deadline = harness_now() + HARNESS_DEADLINE;
    while (pt_lock_acquire(pl, 0, PT_FOREVER) != 1) {
        if (harness_now() > deadline)
            fail_msg("the lock is still held %.0f s after its notified waiter was killed",
                     HARNESS_DEADLINE);
        harness_tick();
    }
    PT_ASSERT_EQ(pt_lock_release(pl), 0);
    PT_ASSERT_EQ(pt_lock_close(pl), 0);
    pt_client_close(probe);
    close_nc(c, l, cv);
    h->passed = 1;
}

/*
 * Over a plain Lock, Python counts the lock as held by whoever asks while it
 * is locked: another session may notify and wait, and its wait releases the
 * holder's lock and comes back holding it.
 */
static void test_plain_lock_held_by_another_session(void **state)
{
    harness *h = *state;
    pt_client *hc = NULL, *c = NULL;
    pt_lock *hl = NULL, *l = NULL;
    pt_condition *cv = NULL;

    PT_ASSERT_EQ(pt_client_open(&hc, NULL), 0);
    PT_ASSERT_EQ(pt_lock_open(hc, "it.pl.lock", 0, 0, &hl), 0);
    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    PT_ASSERT_EQ(cv_open(c, "it.pl.lock", "it.pl", &l, &cv), 0);
    /* unlocked, nobody holds it */
    PT_ASSERT_EQ(pt_condition_notify(cv, 1), PT_ERUNTIME);
    PT_ASSERT_EQ(pt_condition_notify(cv, 0), PT_ERUNTIME);
    PT_ASSERT_EQ(pt_condition_notify_all(cv), PT_ERUNTIME);
    PT_ASSERT_EQ(pt_condition_wait(cv, 0.1), PT_ERUNTIME);

    PT_ASSERT_EQ(pt_lock_acquire(hl, 1, PT_FOREVER), 1);
    PT_ASSERT_OK(pt_condition_notify(cv, 1));
    PT_ASSERT_OK(pt_condition_notify(cv, 0));
    PT_ASSERT_OK(pt_condition_notify_all(cv));
    PT_ASSERT_EQ(pt_condition_wait(cv, 0.1), 0);
    /* this session holds the lock now; the first holder's hold is gone */
    PT_ASSERT_EQ(pt_lock_locked(hl), 1);
    PT_ASSERT_EQ(pt_condition_release(cv), 0);
    PT_ASSERT_EQ(pt_lock_release(hl), PT_ERUNTIME);

    PT_ASSERT_EQ(pt_condition_close(cv), 0);
    PT_ASSERT_EQ(pt_lock_close(l), 0);
    PT_ASSERT_EQ(pt_lock_close(hl), 0);
    pt_client_close(c);
    pt_client_close(hc);
    h->passed = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_producer_two_consumers, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_two_producers_one_consumer, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_wait_restores_rlock_depth, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_notify_n_wakes_oldest_n, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_timed_out_wait_reacquires_first, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_killed_waiter_takes_no_notify, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_killed_reacquirer_gets_no_lock, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_plain_lock_held_by_another_session, harness_setup,
                                        harness_teardown),
    };

    return cmocka_run_group_tests_name("integration: condition", tests, NULL, NULL);
}
