/*
 * A session that ends gives back everything: a process exiting (normally, or
 * by SIGKILL) while it holds an RLock at depth 3 and two owned
 * BoundedSemaphore permits, with a thread waiting in a Barrier, leaves the
 * lock free, the permits back and the barrier broken for its other waiters;
 * the processes queued behind it are woken.
 */
#include "harness.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define SE_RLOCK   "it.se.rlock"
#define SE_BSEM    "it.se.bsem"
#define SE_BARRIER "it.se.barrier"
#define SE_PERMITS 3
#define SE_PARTIES 3
#define NOT_YET    99

enum { END_EXIT, END_KILL };

typedef struct se_shared {
    int how;
    atomic_int holding; /* the holder has everything and is in the barrier */
    atomic_int go;      /* END_EXIT: the holder may exit now */
    atomic_int partner_result;
    atomic_int rlock_result;
    atomic_int bsem_results[2];
} se_shared;

static int open_all(pt_client *c, pt_rlock **r, pt_semaphore **s, pt_barrier **b)
{
    int rc = pt_rlock_open(c, SE_RLOCK, 0, 0, r);

    if (rc == 0)
        rc = pt_semaphore_open(c, SE_BSEM, SE_PERMITS, 1, 0, 0, s);
    if (rc == 0)
        rc = pt_barrier_open(c, SE_BARRIER, SE_PARTIES, NULL, NULL, PT_FOREVER, 0, 0, b);
    return rc;
}

static void *barrier_thread(void *p)
{
    pt_barrier_wait(p, PT_FOREVER);
    return NULL;
}

static int holder(pt_client *c, int index, void *arg)
{
    se_shared *sh = arg;
    pt_rlock *r = NULL;
    pt_semaphore *s = NULL;
    pt_barrier *b = NULL;
    pthread_t t;
    double deadline;

    (void)index;
    WCHECK_EQ(open_all(c, &r, &s, &b), 0);
    for (int i = 0; i < 3; i++)
        WCHECK_EQ(pt_rlock_acquire(r, 1, PT_FOREVER), 1);
    WCHECK_EQ(pt_semaphore_acquire(s, 1, PT_FOREVER), 1);
    WCHECK_EQ(pt_semaphore_acquire(s, 1, PT_FOREVER), 1);
    WCHECK_EQ(pthread_create(&t, NULL, barrier_thread, b), 0);
    atomic_store(&sh->holding, 1);
    if (sh->how == END_KILL)
        for (;;)
            pause();
    deadline = harness_now() + 30.0;
    while (!atomic_load(&sh->go)) {
        WCHECK(harness_now() < deadline);
        harness_tick();
    }
    exit(0); /* holding it all, a thread still inside a barrier wait */
}

static int partner(pt_client *c, int index, void *arg)
{
    se_shared *sh = arg;
    pt_barrier *b = NULL;

    (void)index;
    WCHECK_EQ(pt_barrier_open(c, SE_BARRIER, SE_PARTIES, NULL, NULL, PT_FOREVER, 0, 0, &b), 0);
    atomic_store(&sh->partner_result, pt_barrier_wait(b, PT_FOREVER));
    WCHECK_EQ(pt_barrier_close(b), 0);
    return 0;
}

static int rlock_waiter(pt_client *c, int index, void *arg)
{
    se_shared *sh = arg;
    pt_rlock *r = NULL;
    int rc;

    (void)index;
    WCHECK_EQ(pt_rlock_open(c, SE_RLOCK, 0, 0, &r), 0);
    rc = pt_rlock_acquire(r, 1, PT_FOREVER);
    atomic_store(&sh->rlock_result, rc);
    WCHECK_EQ(rc, 1);
    WCHECK_EQ(pt_rlock_is_owned(r), 1);
    WCHECK_EQ(pt_rlock_release(r), 0);
    WCHECK_EQ(pt_rlock_locked(r), 0);
    WCHECK_EQ(pt_rlock_close(r), 0);
    return 0;
}

/* Takes 2 permits of the 1 left: the second waits for the give-back. It
 * exits holding both, which gives them back again. */
static int bsem_waiter(pt_client *c, int index, void *arg)
{
    se_shared *sh = arg;
    pt_semaphore *s = NULL;

    (void)index;
    WCHECK_EQ(pt_semaphore_open(c, SE_BSEM, SE_PERMITS, 1, 0, 0, &s), 0);
    atomic_store(&sh->bsem_results[0], pt_semaphore_acquire(s, 1, PT_FOREVER));
    atomic_store(&sh->bsem_results[1], pt_semaphore_acquire(s, 1, PT_FOREVER));
    _exit(0);
}

static void wait_value(pt_semaphore *s, int64_t want)
{
    double deadline = harness_now() + HARNESS_DEADLINE;
    int64_t v = -1;

    for (;;) {
        PT_ASSERT_EQ(pt_semaphore_value(s, &v), 0);
        if (v == want)
            return;
        if (harness_now() > deadline)
            fail_msg("BoundedSemaphore value is %lld %.0f s after its holders ended, want %lld",
                     (long long)v, HARNESS_DEADLINE, (long long)want);
        harness_tick();
    }
}

static void run_session_end(harness *h, int how)
{
    se_shared *sh = harness_shm_alloc(h, sizeof *sh);
    pid_t pids[3], hold;
    pt_client *c = NULL;
    pt_rlock *r = NULL;
    pt_semaphore *s = NULL;
    pt_barrier *b = NULL;
    int status;

    sh->how = how;
    atomic_store(&sh->partner_result, NOT_YET);
    atomic_store(&sh->rlock_result, NOT_YET);
    atomic_store(&sh->bsem_results[0], NOT_YET);
    atomic_store(&sh->bsem_results[1], NOT_YET);

    hold = harness_worker(h, holder, 0, sh);
    harness_wait_flag(&sh->holding, 1, HARNESS_DEADLINE, "holder ready");
    pids[0] = harness_worker(h, partner, 1, sh);
    pids[1] = harness_worker(h, rlock_waiter, 2, sh);
    pids[2] = harness_worker(h, bsem_waiter, 3, sh);
    harness_wait_waiters(h, SE_BARRIER, PT_KIND_BARRIER, 2, HARNESS_DEADLINE);
    harness_wait_waiters(h, SE_RLOCK, PT_KIND_RLOCK, 1, HARNESS_DEADLINE);
    harness_wait_waiters(h, SE_BSEM, PT_KIND_BOUNDED_SEMAPHORE, 1, HARNESS_DEADLINE);
    assert_int_equal(atomic_load(&sh->partner_result), NOT_YET);
    assert_int_equal(atomic_load(&sh->rlock_result), NOT_YET);
    assert_int_equal(atomic_load(&sh->bsem_results[0]), 1);
    assert_int_equal(atomic_load(&sh->bsem_results[1]), NOT_YET);

    if (how == END_EXIT) {
        atomic_store(&sh->go, 1);
        harness_join(h, &hold, 1, HARNESS_DEADLINE);
    } else {
        kill(hold, SIGKILL);
        if (harness_wait(h, hold, HARNESS_DEADLINE, &status) < 0)
            fail_msg("the holder did not die of SIGKILL");
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    }

    harness_join(h, pids, 3, HARNESS_DEADLINE);
    if (atomic_load(&sh->partner_result) != PT_EBROKEN)
        fail_msg("the other barrier waiter got %d (%s), want PT_EBROKEN",
                 atomic_load(&sh->partner_result), pt_err_name(atomic_load(&sh->partner_result)));
    assert_int_equal(atomic_load(&sh->rlock_result), 1);
    assert_int_equal(atomic_load(&sh->bsem_results[1]), 1);

    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    PT_ASSERT_EQ(open_all(c, &r, &s, &b), 0);
    PT_ASSERT_EQ(pt_rlock_locked(r), 0);
    PT_ASSERT_EQ(pt_rlock_acquire(r, 0, PT_FOREVER), 1);
    PT_ASSERT_EQ(pt_rlock_release(r), 0);
    wait_value(s, SE_PERMITS);
    PT_ASSERT_EQ(pt_barrier_broken(b), 1);
    PT_ASSERT_EQ(pt_barrier_n_waiting(b), 0);
    PT_ASSERT_EQ(pt_barrier_close(b), 0);
    PT_ASSERT_EQ(pt_semaphore_close(s), 0);
    PT_ASSERT_EQ(pt_rlock_close(r), 0);
    pt_client_close(c);
}

static void test_normal_exit_gives_back(void **state)
{
    harness *h = *state;

    run_session_end(h, END_EXIT);
    h->passed = 1;
}

static void test_sigkill_gives_back(void **state)
{
    harness *h = *state;

    run_session_end(h, END_KILL);
    h->passed = 1;
}

/* ---- what is owned and what is not ---- */

typedef struct own_shared {
    atomic_int holding;
} own_shared;

static const struct own_case {
    const char *name;
    int bounded;
    int flags;
    int64_t after; /* value once the holder is gone */
} own_cases[] = {
    /* A plain Semaphore is a counter: permits taken are not given back. */
    {"it.se.plain", 0, 0, 1},
    {"it.se.plain.owned", 0, PT_OPEN_OWNED, 3},
    {"it.se.bounded", 1, 0, 3},
    {"it.se.bounded.unowned", 1, PT_OPEN_UNOWNED, 1},
};
#define OWN_CASES (sizeof own_cases / sizeof own_cases[0])

static int own_holder(pt_client *c, int index, void *arg)
{
    own_shared *sh = arg;

    (void)index;
    for (size_t i = 0; i < OWN_CASES; i++) {
        pt_semaphore *s = NULL;

        WCHECK_EQ(pt_semaphore_open(c, own_cases[i].name, 3, own_cases[i].bounded,
                                    own_cases[i].flags, 0, &s),
                  0);
        WCHECK_EQ(pt_semaphore_acquire(s, 1, PT_FOREVER), 1);
        WCHECK_EQ(pt_semaphore_acquire(s, 1, PT_FOREVER), 1);
    }
    atomic_store(&sh->holding, 1);
    for (;;)
        pause();
}

static void test_owned_permits_only_come_back(void **state)
{
    harness *h = *state;
    own_shared *sh = harness_shm_alloc(h, sizeof *sh);
    pt_semaphore *s[OWN_CASES];
    pt_client *c = NULL;
    pid_t pid;

    pid = harness_worker(h, own_holder, 0, sh);
    harness_wait_flag(&sh->holding, 1, HARNESS_DEADLINE, "holder ready");
    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    for (size_t i = 0; i < OWN_CASES; i++)
        PT_ASSERT_EQ(pt_semaphore_open(c, own_cases[i].name, 3, own_cases[i].bounded,
                                       PT_OPEN_EXISTING, 0, &s[i]),
                     0);
    harness_kill(h, pid);
    /* The daemon ends a session in one step: once one owned semaphore is
     * back, every value is final. */
    wait_value(s[1], 3);
    for (size_t i = 0; i < OWN_CASES; i++) {
        int64_t v = -1;

        PT_ASSERT_EQ(pt_semaphore_value(s[i], &v), 0);
        if (v != own_cases[i].after)
            fail_msg("%s: value %lld after its holder was killed, want %lld", own_cases[i].name,
                     (long long)v, (long long)own_cases[i].after);
        PT_ASSERT_EQ(pt_semaphore_close(s[i]), 0);
    }
    pt_client_close(c);
    h->passed = 1;
}

/* ---- a transient object ends with the last process that had it open ---- */

static int transient_holder(pt_client *c, int index, void *arg)
{
    own_shared *sh = arg;
    pt_lock *t = NULL, *p = NULL;

    (void)index;
    WCHECK_EQ(pt_lock_open(c, "it.se.transient", PT_OPEN_TRANSIENT, 0, &t), 0);
    WCHECK_EQ(pt_lock_acquire(t, 1, PT_FOREVER), 1);
    WCHECK_EQ(pt_lock_open(c, "it.se.lasting", 0, 0, &p), 0);
    WCHECK_EQ(pt_lock_acquire(p, 1, PT_FOREVER), 1);
    atomic_store(&sh->holding, 1);
    for (;;)
        pause();
}

static void test_transient_object_ends_with_holder(void **state)
{
    harness *h = *state;
    own_shared *sh = harness_shm_alloc(h, sizeof *sh);
    double deadline;
    pt_client *c = NULL;
    pt_lock *l = NULL;
    pid_t pid;
    int rc;

    pid = harness_worker(h, transient_holder, 0, sh);
    harness_wait_flag(&sh->holding, 1, HARNESS_DEADLINE, "holder ready");
    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    PT_ASSERT_EQ(pt_lock_open(c, "it.se.transient", PT_OPEN_EXISTING, 0, &l), 0);
    PT_ASSERT_EQ(pt_lock_locked(l), 1);
    PT_ASSERT_EQ(pt_lock_close(l), 0);
    harness_kill(h, pid);

    deadline = harness_now() + HARNESS_DEADLINE;
    while ((rc = pt_lock_open(c, "it.se.transient", PT_OPEN_EXISTING, 0, &l)) == 0) {
        PT_ASSERT_EQ(pt_lock_close(l), 0);
        if (harness_now() > deadline)
            fail_msg("the transient Lock still exists %.0f s after its only holder was killed",
                     HARNESS_DEADLINE);
        harness_tick();
    }
    PT_ASSERT_EQ(rc, PT_ENOENT);
    /* The ordinary one lives on, given back. */
    PT_ASSERT_EQ(pt_lock_open(c, "it.se.lasting", PT_OPEN_EXISTING, 0, &l), 0);
    PT_ASSERT_EQ(pt_lock_acquire(l, 0, PT_FOREVER), 1);
    PT_ASSERT_EQ(pt_lock_release(l), 0);
    PT_ASSERT_EQ(pt_lock_close(l), 0);
    pt_client_close(c);
    h->passed = 1;
}

/* ---- a Lock released by another process is no longer the dead one's ---- */

static int handoff_holder(pt_client *c, int index, void *arg)
{
    own_shared *sh = arg;
    pt_lock *l = NULL;
    pt_semaphore *s = NULL;

    (void)index;
    WCHECK_EQ(pt_lock_open(c, "it.se.handoff", 0, 0, &l), 0);
    WCHECK_EQ(pt_lock_acquire(l, 1, PT_FOREVER), 1);
    /* An owned permit, whose return shows the daemon has ended the session. */
    WCHECK_EQ(pt_semaphore_open(c, "it.se.handoff.marker", 1, 1, 0, 0, &s), 0);
    WCHECK_EQ(pt_semaphore_acquire(s, 1, PT_FOREVER), 1);
    atomic_store(&sh->holding, 1);
    for (;;)
        pause();
}

static void test_released_lock_not_given_back_again(void **state)
{
    harness *h = *state;
    own_shared *sh = harness_shm_alloc(h, sizeof *sh);
    pt_client *p = NULL, *q = NULL;
    pt_lock *lp = NULL, *lq = NULL;
    pt_semaphore *marker = NULL;
    pid_t pid;

    pid = harness_worker(h, handoff_holder, 0, sh);
    harness_wait_flag(&sh->holding, 1, HARNESS_DEADLINE, "holder ready");
    PT_ASSERT_EQ(pt_client_open(&p, NULL), 0);
    PT_ASSERT_EQ(pt_client_open(&q, NULL), 0);
    PT_ASSERT_EQ(pt_lock_open(p, "it.se.handoff", 0, 0, &lp), 0);
    PT_ASSERT_EQ(pt_lock_open(q, "it.se.handoff", 0, 0, &lq), 0);
    PT_ASSERT_EQ(pt_semaphore_open(p, "it.se.handoff.marker", 1, 1, 0, 0, &marker), 0);

    /* Any owner may release a Lock; then another session takes it. */
    PT_ASSERT_EQ(pt_lock_release(lp), 0);
    PT_ASSERT_EQ(pt_lock_acquire(lq, 0, PT_FOREVER), 1);
    harness_kill(h, pid);
    wait_value(marker, 1);

    /* The dead process's end took nothing from the new holder. */
    PT_ASSERT_EQ(pt_lock_locked(lp), 1);
    PT_ASSERT_EQ(pt_lock_acquire(lp, 0, PT_FOREVER), 0);
    PT_ASSERT_EQ(pt_lock_release(lq), 0);
    PT_ASSERT_EQ(pt_lock_locked(lp), 0);
    PT_ASSERT_EQ(pt_semaphore_close(marker), 0);
    PT_ASSERT_EQ(pt_lock_close(lq), 0);
    PT_ASSERT_EQ(pt_lock_close(lp), 0);
    pt_client_close(q);
    pt_client_close(p);
    h->passed = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_normal_exit_gives_back, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_gives_back, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_owned_permits_only_come_back, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_transient_object_ends_with_holder, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_released_lock_not_given_back_again, harness_setup,
                                        harness_teardown),
    };

    return cmocka_run_group_tests_name("integration: session end", tests, NULL, NULL);
}
