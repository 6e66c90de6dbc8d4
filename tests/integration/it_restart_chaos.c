/*
 * it_restart_chaos.c - pythreadd --state-dir killed with -9 twenty times in
 * a row at random moments under load, restarted each time, while workers
 * go on with a Lock, an RLock and a BoundedSemaphore; now and then a worker
 * dies too while the daemon is down, and a new one takes its place.
 *
 * The workers check, each time they get in, that no one else is in (a flag
 * per worker in shared memory, for the Lock and RLock; at most PERMITS for
 * the semaphore) and that the Lock's fencing token is above every token
 * before it, across all restarts. After each restart the test checks that
 * every object is there with its value, that the grace is over, that a
 * held lock's holder is a live worker and that the semaphore's permits add
 * up.
 *
 * The same load goes on while the daemon re-executes itself (SIGUSR2)
 * twenty times at random moments: there every connection is kept, so no
 * worker reconnects, and the same checks hold. The workers open their
 * objects again now and then, so that handles given words by each image
 * are in use when the next one takes over.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "pythread_inspect.h"

#define WORKERS  4
#define KILLS    20
#define PERMITS  2
#define OBJECTS  5
#define SLOTS    (WORKERS + KILLS)
#define HOLD_MAX 1000 /* microseconds a worker stays in, or out between rounds */

typedef struct chaos {
    atomic_int stop;
    atomic_int violations;
    atomic_int in_lock[SLOTS];
    atomic_int in_rlock[SLOTS];
    atomic_int in_sem[SLOTS];
    atomic_uint_fast64_t last_token;
    atomic_uint_fast64_t rounds;
    atomic_int reopen; /* workers open their objects again now and then */
    char why[256];
} chaos;

static chaos *sh;
static const char *args[7];

static void violation(const char *fmt, long long a, long long b)
{
    if (atomic_fetch_add(&sh->violations, 1) == 0)
        snprintf(sh->why, sizeof(sh->why), fmt, a, b);
}

/* Nobody but me has the flag up. */
static void alone(atomic_int *flags, int me, const char *what)
{
    for (int i = 0; i < SLOTS; i++) {
        if (i != me && atomic_load(&flags[i]))
            violation(what, me, i);
    }
}

static void stay(unsigned *seed)
{
    struct timespec ts = {0, (long)(rand_r(seed) % HOLD_MAX) * 1000};

    nanosleep(&ts, NULL);
}

static void lock_round(pt_lock *l, int me, unsigned *seed)
{
    uint64_t token = 0, last;

    WCHECK_EQ(pt_lock_acquire_fenced(l, 1, -1, &token), 1);
    atomic_store(&sh->in_lock[me], 1);
    alone(sh->in_lock, me, "Lock held by workers %lld and %lld at once");
    last = atomic_load(&sh->last_token);
    if (token <= last)
        violation("Lock token %lld after %lld", (long long)token, (long long)last);
    atomic_store(&sh->last_token, token);
    stay(seed);
    atomic_store(&sh->in_lock[me], 0);
    WCHECK_EQ(pt_lock_release(l), 0);
}

static void rlock_round(pt_rlock *rl, int me, unsigned *seed)
{
    WCHECK_EQ(pt_rlock_acquire(rl, 1, -1), 1);
    WCHECK_EQ(pt_rlock_acquire(rl, 1, -1), 1);
    atomic_store(&sh->in_rlock[me], 1);
    alone(sh->in_rlock, me, "RLock held by workers %lld and %lld at once");
    stay(seed);
    atomic_store(&sh->in_rlock[me], 0);
    WCHECK_EQ(pt_rlock_release(rl), 0);
    WCHECK_EQ(pt_rlock_release(rl), 0);
}

static void sem_round(pt_semaphore *sem, int me, unsigned *seed)
{
    int n = 0;

    WCHECK_EQ(pt_semaphore_acquire(sem, 1, -1), 1);
    atomic_store(&sh->in_sem[me], 1);
    for (int i = 0; i < SLOTS; i++)
        n += atomic_load(&sh->in_sem[i]) != 0;
    if (n > PERMITS)
        violation("BoundedSemaphore(%lld) held %lld times at once", PERMITS, n);
    stay(seed);
    atomic_store(&sh->in_sem[me], 0);
    WCHECK_EQ(pt_semaphore_release(sem, 1), 0);
}

static int worker(pt_client *c, int me, void *arg)
{
    unsigned seed = (unsigned)me * 7919u + 17u;
    pt_lock *l;
    pt_rlock *rl;
    pt_semaphore *sem;

    (void)arg;
    WCHECK_EQ(pt_lock_open(c, "rc.lock", 0, 0, &l), 0);
    WCHECK_EQ(pt_rlock_open(c, "rc.rlock", 0, 0, &rl), 0);
    WCHECK_EQ(pt_semaphore_open(c, "rc.bsem", PERMITS, 1, 0, 0, &sem), 0);
    while (!atomic_load(&sh->stop)) {
        /* out for a while too: a lock often free is taken through its word */
        stay(&seed);
        if (atomic_load(&sh->reopen) && rand_r(&seed) % 16 == 0) {
            /* new handles: words from the image serving now */
            pt_semaphore_close(sem);
            pt_rlock_close(rl);
            pt_lock_close(l);
            WCHECK_EQ(pt_lock_open(c, "rc.lock", 0, 0, &l), 0);
            WCHECK_EQ(pt_rlock_open(c, "rc.rlock", 0, 0, &rl), 0);
            WCHECK_EQ(pt_semaphore_open(c, "rc.bsem", PERMITS, 1, 0, 0, &sem), 0);
        }
        switch (rand_r(&seed) % 3) {
        case 0:
            lock_round(l, me, &seed);
            break;
        case 1:
            rlock_round(rl, me, &seed);
            break;
        default:
            sem_round(sem, me, &seed);
            break;
        }
        atomic_fetch_add(&sh->rounds, 1);
    }
    pt_semaphore_close(sem);
    pt_rlock_close(rl);
    pt_lock_close(l);
    return 0;
}

static void daemon_restart(harness *h)
{
    args[0] = "--state-dir";
    args[1] = h->dir;
    args[2] = "--grace";
    args[3] = "5";
    args[4] = "--compact-after"; /* snapshots all the time: kills land in them too */
    args[5] = "1024";
    args[6] = NULL;
    h->daemon_args = args;
    harness_daemon_start(h);
}

static pt_inspect_detail *show(pt_client *c, const char *name)
{
    pt_inspect_detail *d = NULL;

    PT_ASSERT_OK(pt_inspect_show(c, name, &d));
    return d;
}

static int alive(const pid_t *pids, long pid)
{
    for (int i = 0; i < SLOTS; i++) {
        if (pids[i] != 0 && pids[i] == pid)
            return 1;
    }
    return 0;
}

/* After a restart's grace: everything there, values that add up, holders
 * that live. */
static void check_after_restart(const pid_t *pids)
{
    pt_client *c = NULL;
    pt_inspect_status st;
    pt_inspect_detail *d;
    uint64_t held = 0;

    double end = harness_now() + HARNESS_DEADLINE;

    PT_ASSERT_OK(pt_client_open(&c, NULL));
    /* inspection is served in the grace too: every live worker comes back
     * long before --grace 5 runs out */
    for (;;) {
        PT_ASSERT_OK(pt_inspect_status_get(c, &st));
        if (!st.in_grace)
            break;
        assert_true(harness_now() < end);
        harness_tick();
    }
    assert_int_equal(st.objects, OBJECTS);
    assert_int_equal(st.sessions_ended_late, 0);
    d = show(c, "rc.event");
    assert_int_equal(d->object.is_set, 1);
    pt_inspect_detail_free(d);
    d = show(c, "rc.barrier");
    assert_int_equal(d->object.parties, 3);
    pt_inspect_detail_free(d);
    d = show(c, "rc.bsem");
    for (size_t i = 0; i < d->n_holders; i++) {
        assert_true(alive(pids, d->holders[i].pid));
        held += d->holders[i].count;
    }
    assert_int_equal((uint64_t)d->object.value + held, PERMITS);
    pt_inspect_detail_free(d);
    for (int k = 0; k < 2; k++) {
        d = show(c, k ? "rc.rlock" : "rc.lock");
        for (size_t i = 0; i < d->n_holders; i++)
            assert_true(alive(pids, d->holders[i].pid));
        pt_inspect_detail_free(d);
    }
    pt_client_close(c);
}

/* What outlives every restart untouched: a set Event, a Barrier's size. */
static void objects_make(void)
{
    pt_client *c = NULL;
    pt_event *ev;
    pt_barrier *b;

    PT_ASSERT_OK(pt_client_open(&c, NULL));
    PT_ASSERT_OK(pt_event_open(c, "rc.event", 0, 0, &ev));
    PT_ASSERT_OK(pt_event_set(ev));
    PT_ASSERT_OK(pt_barrier_open(c, "rc.barrier", 3, NULL, NULL, PT_FOREVER, 0, 0, &b));
    pt_barrier_close(b);
    pt_event_close(ev);
    pt_client_close(c);
}

static void run_for(double seconds)
{
    double end = harness_now() + seconds;

    while (harness_now() < end)
        harness_tick();
}

static void test_kill9_twenty_times_under_load(void **state)
{
    int snapshots;
    harness *h = *state;
    pid_t pids[SLOTS] = {0};
    unsigned seed = 12345;
    int next = WORKERS;
    uint64_t before;
    double deadline;

    sh = harness_shm_alloc(h, sizeof(*sh));
    harness_daemon_stop(h);
    daemon_restart(h);
    objects_make();
    for (int i = 0; i < WORKERS; i++)
        pids[i] = harness_worker(h, worker, i, NULL);
    for (int k = 0; k < KILLS; k++) {
        run_for(0.05 + (rand_r(&seed) % 400) / 1000.0);
        harness_kill(h, h->daemon);
        h->daemon = 0;
        if (k % 4 == 3) {
            /* a worker dies while the daemon is down: what it held goes back */
            int victim;

            do
                victim = rand_r(&seed) % next;
            while (pids[victim] == 0);
            harness_kill(h, pids[victim]);
            pids[victim] = 0;
            atomic_store(&sh->in_lock[victim], 0);
            atomic_store(&sh->in_rlock[victim], 0);
            atomic_store(&sh->in_sem[victim], 0);
        }
        daemon_restart(h);
        if (k % 4 == 3) {
            pids[next] = harness_worker(h, worker, next, NULL); /* in its place */
            next++;
        }
        check_after_restart(pids);
        if (atomic_load(&sh->violations))
            fail_msg("after kill %d: %s", k + 1, sh->why);
        /* the load goes on after each restart */
        before = atomic_load(&sh->rounds);
        deadline = harness_now() + 2 * HARNESS_DEADLINE;
        while (atomic_load(&sh->rounds) < before + 10) {
            if (harness_now() > deadline)
                fail_msg("after kill %d: no work done in %.0f s", k + 1, 2 * HARNESS_DEADLINE);
            harness_tick();
        }
    }
    atomic_store(&sh->stop, 1);
    for (int i = 0; i < next; i++) {
        if (pids[i] != 0)
            harness_join(h, &pids[i], 1, 3 * HARNESS_DEADLINE);
    }
    if (atomic_load(&sh->violations))
        fail_msg("%s", sh->why);
    check_after_restart(pids);
    snapshots = harness_log_count(h->log, "rewritten as a snapshot");
    print_message("%d kills, %llu rounds of work, %d snapshots, last Lock token %llu\n", KILLS,
                  (unsigned long long)atomic_load(&sh->rounds), snapshots,
                  (unsigned long long)atomic_load(&sh->last_token));
    assert_true(snapshots >= KILLS); /* one at least after each restart */
    h->passed = 1;
}

/* SIGUSR2 twenty times under the same load: the connections are kept, so
 * nobody reconnects, and everything holds as after a kill. */
static void test_sigusr2_twenty_times_under_load(void **state)
{
    harness *h = *state;
    pid_t pids[SLOTS] = {0};
    unsigned seed = 54321;
    pt_inspect_status st;
    pt_client *c = NULL;
    uint64_t before;
    double deadline;

    sh = harness_shm_alloc(h, sizeof(*sh));
    atomic_store(&sh->reopen, 1);
    harness_daemon_stop(h);
    daemon_restart(h);
    objects_make();
    for (int i = 0; i < WORKERS; i++)
        pids[i] = harness_worker(h, worker, i, NULL);
    for (int k = 0; k < KILLS; k++) {
        run_for(0.05 + (rand_r(&seed) % 400) / 1000.0);
        assert_int_equal(kill(h->daemon, SIGUSR2), 0);
        harness_log_wait(h, "restart done", k + 1, HARNESS_DEADLINE);
        check_after_restart(pids);
        if (atomic_load(&sh->violations))
            fail_msg("after upgrade %d: %s", k + 1, sh->why);
        PT_ASSERT_OK(pt_client_open(&c, NULL));
        PT_ASSERT_OK(pt_inspect_status_get(c, &st));
        pt_client_close(c);
        assert_int_equal(st.pid, h->daemon);
        assert_int_equal(st.sessions_kept_connection, st.sessions_taken_up);
        assert_true(st.sessions_kept_connection >= WORKERS);
        before = atomic_load(&sh->rounds);
        deadline = harness_now() + 2 * HARNESS_DEADLINE;
        while (atomic_load(&sh->rounds) < before + 10) {
            if (harness_now() > deadline)
                fail_msg("after upgrade %d: no work done in %.0f s", k + 1, 2 * HARNESS_DEADLINE);
            harness_tick();
        }
    }
    atomic_store(&sh->stop, 1);
    harness_join(h, pids, WORKERS, 3 * HARNESS_DEADLINE);
    if (atomic_load(&sh->violations))
        fail_msg("%s", sh->why);
    check_after_restart(pids);
    /* no process took its session up by connecting again */
    assert_int_equal(harness_log_count(h->log, "taken up again by pid"), 0);
    print_message("%d upgrades, %llu rounds of work, last Lock token %llu\n", KILLS,
                  (unsigned long long)atomic_load(&sh->rounds),
                  (unsigned long long)atomic_load(&sh->last_token));
    h->passed = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kill9_twenty_times_under_load, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_sigusr2_twenty_times_under_load, harness_setup,
                                        harness_teardown),
    };

    return cmocka_run_group_tests_name("integration.restart_chaos", tests, NULL, NULL);
}
