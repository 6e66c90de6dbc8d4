/*
 * Mutual exclusion across processes on one named Lock, and what a kill -9 of
 * the holder does to the process waiting behind it.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MUTEX_WORKERS    4
#define MUTEX_ITERATIONS 10000

typedef struct mutex_shared {
    atomic_int holders;    /* processes inside the critical section */
    atomic_int violations; /* times a holder saw another holder */
    char counter[160];     /* path of the shared counter file */
} mutex_shared;

/* Read, increment and write back the counter: a lost update shows as a
 * count below the total. */
static int counter_bump(int fd)
{
    uint64_t v;

    if (pread(fd, &v, sizeof v, 0) != (ssize_t)sizeof v)
        return -1;
    v++;
    if (pwrite(fd, &v, sizeof v, 0) != (ssize_t)sizeof v)
        return -1;
    return 0;
}

static int mutex_worker(pt_client *c, int index, void *arg)
{
    mutex_shared *sh = arg;
    pt_lock *l = NULL;
    int fd = open(sh->counter, O_RDWR | O_CLOEXEC);

    (void)index;
    WCHECK(fd >= 0);
    WCHECK_EQ(pt_lock_open(c, "it.mutex.counter", 0, 0, &l), 0);
    for (int i = 0; i < MUTEX_ITERATIONS; i++) {
        WCHECK_EQ(pt_lock_acquire(l, 1, PT_FOREVER), 1);
        if (atomic_fetch_add(&sh->holders, 1) + 1 != 1)
            atomic_fetch_add(&sh->violations, 1);
        WCHECK_EQ(counter_bump(fd), 0);
        atomic_fetch_sub(&sh->holders, 1);
        WCHECK_EQ(pt_lock_release(l), 0);
    }
    WCHECK_EQ(pt_lock_close(l), 0);
    close(fd);
    return 0;
}

static void test_mutual_exclusion(void **state)
{
    harness *h = *state;
    mutex_shared *sh = harness_shm_alloc(h, sizeof *sh);
    pid_t pids[MUTEX_WORKERS];
    uint64_t v = 0;
    int fd;

    snprintf(sh->counter, sizeof sh->counter, "%s/counter", h->dir);
    fd = open(sh->counter, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, &v, sizeof v, 0), sizeof v);

    harness_workers(h, pids, MUTEX_WORKERS, mutex_worker, sh);
    harness_join(h, pids, MUTEX_WORKERS, 90.0);

    assert_int_equal(pread(fd, &v, sizeof v, 0), sizeof v);
    close(fd);
    assert_int_equal(atomic_load(&sh->violations), 0);
    assert_int_equal(v, MUTEX_WORKERS * MUTEX_ITERATIONS);
    h->passed = 1;
}

typedef struct kill_shared {
    atomic_int holding;     /* the holder has the lock */
    uint64_t holder_token;  /* its fencing token */
    double waiter_acquired; /* monotonic time the waiter got the lock */
    uint64_t waiter_token;
} kill_shared;

static int kill_holder(pt_client *c, int index, void *arg)
{
    kill_shared *sh = arg;
    pt_lock *l = NULL;

    (void)index;
    WCHECK_EQ(pt_lock_open(c, "it.mutex.kill9", 0, 0, &l), 0);
    WCHECK_EQ(pt_lock_acquire_fenced(l, 1, PT_FOREVER, &sh->holder_token), 1);
    atomic_store(&sh->holding, 1);
    for (;;)
        pause(); /* until SIGKILL */
}

static int kill_waiter(pt_client *c, int index, void *arg)
{
    kill_shared *sh = arg;
    pt_lock *l = NULL;
    uint64_t token = 0;

    (void)index;
    WCHECK_EQ(pt_lock_open(c, "it.mutex.kill9", 0, 0, &l), 0);
    WCHECK_EQ(pt_lock_acquire_fenced(l, 1, PT_FOREVER, &token), 1);
    sh->waiter_acquired = harness_now();
    sh->waiter_token = token;
    WCHECK_EQ(pt_lock_release(l), 0);
    WCHECK_EQ(pt_lock_close(l), 0);
    return 0;
}

static void test_kill9_holder_wakes_waiter(void **state)
{
    harness *h = *state;
    kill_shared *sh = harness_shm_alloc(h, sizeof *sh);
    pid_t holder, waiter;
    double killed;

    holder = harness_worker(h, kill_holder, 0, sh);
    harness_wait_flag(&sh->holding, 1, HARNESS_DEADLINE, "holder acquired");
    waiter = harness_worker(h, kill_waiter, 1, sh);
    harness_wait_waiters(h, "it.mutex.kill9", PT_KIND_LOCK, 1, HARNESS_DEADLINE);
    assert_true(sh->waiter_acquired == 0.0);

    killed = harness_now();
    kill(holder, SIGKILL);
    harness_join(h, &waiter, 1, HARNESS_DEADLINE);
    harness_kill(h, holder);

    if (sh->waiter_acquired < killed)
        fail_msg("the waiter acquired %.1f ms before the holder was killed",
                 (killed - sh->waiter_acquired) * 1e3);
    if (sh->waiter_acquired - killed > 0.100)
        fail_msg("the waiter acquired %.1f ms after the kill, want within 100 ms",
                 (sh->waiter_acquired - killed) * 1e3);
    if (sh->waiter_token <= sh->holder_token)
        fail_msg("fencing token did not grow: holder %llu, waiter %llu",
                 (unsigned long long)sh->holder_token, (unsigned long long)sh->waiter_token);
    h->passed = 1;
}

/*
 * Fencing tokens only grow, across a restart of the daemon too: the lock of
 * the same name in the new daemon, and a new one, give a token above the
 * last one the old daemon gave.
 */
static void test_tokens_grow_across_restart(void **state)
{
    harness *h = *state;
    pt_client *c = NULL;
    pt_lock *l = NULL;
    pt_rlock *rl = NULL;
    uint64_t before = 0, after = 0, fresh = 0;

    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    PT_ASSERT_EQ(pt_lock_open(c, "it.mutex.fence", 0, 0, &l), 0);
    for (int i = 0; i < 3; i++) {
        PT_ASSERT_EQ(pt_lock_acquire_fenced(l, 1, PT_FOREVER, &before), 1);
        PT_ASSERT_EQ(pt_lock_release(l), 0);
    }
    PT_ASSERT_EQ(pt_lock_close(l), 0);
    pt_client_close(c);

    harness_daemon_stop(h);
    harness_daemon_start(h);

    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    PT_ASSERT_EQ(pt_lock_open(c, "it.mutex.fence", 0, 0, &l), 0);
    PT_ASSERT_EQ(pt_lock_acquire_fenced(l, 1, PT_FOREVER, &after), 1);
    PT_ASSERT_EQ(pt_rlock_open(c, "it.mutex.fence.new", 0, 0, &rl), 0);
    PT_ASSERT_EQ(pt_rlock_acquire_fenced(rl, 1, PT_FOREVER, &fresh), 1);
    if (after <= before || fresh <= before)
        fail_msg("fencing tokens went back across a restart: %llu before, %llu and %llu after",
                 (unsigned long long)before, (unsigned long long)after, (unsigned long long)fresh);
    PT_ASSERT_EQ(pt_lock_release(l), 0);
    PT_ASSERT_EQ(pt_rlock_release(rl), 0);
    PT_ASSERT_EQ(pt_rlock_close(rl), 0);
    PT_ASSERT_EQ(pt_lock_close(l), 0);
    pt_client_close(c);
    h->passed = 1;
}

/*
 * Waiters are served in arrival order (a promise Python leaves open): five
 * processes queued one after another on a held lock get it in that order.
 */
#define FIFO_WAITERS 5

typedef struct fifo_shared {
    atomic_int next;
    int order[FIFO_WAITERS];
} fifo_shared;

static int fifo_waiter(pt_client *c, int index, void *arg)
{
    fifo_shared *sh = arg;
    pt_lock *l = NULL;

    WCHECK_EQ(pt_lock_open(c, "it.mutex.fifo", 0, 0, &l), 0);
    WCHECK_EQ(pt_lock_acquire(l, 1, PT_FOREVER), 1);
    sh->order[index] = atomic_fetch_add(&sh->next, 1);
    WCHECK_EQ(pt_lock_release(l), 0);
    WCHECK_EQ(pt_lock_close(l), 0);
    return 0;
}

static void test_fifo_handoff(void **state)
{
    harness *h = *state;
    fifo_shared *sh = harness_shm_alloc(h, sizeof *sh);
    pid_t pids[FIFO_WAITERS];
    pt_client *c = NULL;
    pt_lock *l = NULL;

    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    PT_ASSERT_EQ(pt_lock_open(c, "it.mutex.fifo", 0, 0, &l), 0);
    PT_ASSERT_EQ(pt_lock_acquire(l, 1, PT_FOREVER), 1);
    for (int i = 0; i < FIFO_WAITERS; i++) {
        pids[i] = harness_worker(h, fifo_waiter, i, sh);
        harness_wait_waiters(h, "it.mutex.fifo", PT_KIND_LOCK, (uint32_t)i + 1, HARNESS_DEADLINE);
    }
    PT_ASSERT_EQ(pt_lock_release(l), 0);
    harness_join(h, pids, FIFO_WAITERS, HARNESS_DEADLINE);
    for (int i = 0; i < FIFO_WAITERS; i++)
        if (sh->order[i] != i)
            fail_msg("the waiter queued as number %d got the lock as number %d", i + 1,
                     sh->order[i] + 1);
    PT_ASSERT_EQ(pt_lock_close(l), 0);
    pt_client_close(c);
    h->passed = 1;
}

/*
 * unlink removes the name, not the object: a process waiting on it still
 * gets it, and the name then opens a new, free object.
 */
typedef struct unlink_shared {
    atomic_int got;
} unlink_shared;

static int unlink_waiter(pt_client *c, int index, void *arg)
{
    unlink_shared *sh = arg;
    pt_lock *l = NULL;

    (void)index;
    WCHECK_EQ(pt_lock_open(c, "it.mutex.unlink", 0, 0, &l), 0);
    WCHECK_EQ(pt_lock_acquire(l, 1, PT_FOREVER), 1);
    atomic_store(&sh->got, 1);
    WCHECK_EQ(pt_lock_release(l), 0);
    WCHECK_EQ(pt_lock_close(l), 0);
    return 0;
}

static void test_unlink_while_waiting(void **state)
{
    harness *h = *state;
    unlink_shared *sh = harness_shm_alloc(h, sizeof *sh);
    pt_client *c = NULL;
    pt_lock *old = NULL, *fresh = NULL;
    pid_t pid;

    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    PT_ASSERT_EQ(pt_lock_open(c, "it.mutex.unlink", 0, 0, &old), 0);
    PT_ASSERT_EQ(pt_lock_acquire(old, 1, PT_FOREVER), 1);
    pid = harness_worker(h, unlink_waiter, 0, sh);
    harness_wait_waiters(h, "it.mutex.unlink", PT_KIND_LOCK, 1, HARNESS_DEADLINE);

    PT_ASSERT_EQ(pt_unlink(c, "it.mutex.unlink"), 0);
    PT_ASSERT_EQ(pt_lock_open(c, "it.mutex.unlink", PT_OPEN_EXISTING, 0, &fresh), PT_ENOENT);
    PT_ASSERT_EQ(pt_lock_open(c, "it.mutex.unlink", PT_OPEN_EXCL, 0, &fresh), 0);
    PT_ASSERT_EQ(pt_lock_locked(fresh), 0);
    assert_int_equal(atomic_load(&sh->got), 0);

    PT_ASSERT_EQ(pt_lock_release(old), 0);
    harness_join(h, &pid, 1, HARNESS_DEADLINE);
    assert_int_equal(atomic_load(&sh->got), 1);
    PT_ASSERT_EQ(pt_lock_close(old), 0);
    PT_ASSERT_EQ(pt_lock_close(fresh), 0);
    PT_ASSERT_EQ(pt_unlink(c, "it.mutex.unlink"), 0);
    PT_ASSERT_EQ(pt_unlink(c, "it.mutex.unlink"), PT_ENOENT);
    pt_client_close(c);
    h->passed = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mutual_exclusion, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_kill9_holder_wakes_waiter, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_tokens_grow_across_restart, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_fifo_handoff, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_unlink_while_waiting, harness_setup, harness_teardown),
    };

    return cmocka_run_group_tests_name("integration: mutex", tests, NULL, NULL);
}
