/*
 * it_resume.c - sessions outlive a kill -9 of pythreadd --state-dir for the
 * processes that live: a holder keeps its lock (taken through the shared
 * word, which the daemon never saw) and its waiter its place, with no call
 * of theirs failing; a holder that died, or does not come back within
 * --grace, gives everything back; a timeout counts from the original call;
 * Condition waiters and Barrier parties go on waiting; an RLock's depth and
 * a semaphore's value come back from the words; a call made while the
 * daemon was down is served by the next one; pt_client_session_wait
 * returns once the session is taken up, even while another thread reads.
 * Inspection marks the lock reclaimed, in grace or released
 * (pt_restart_mark) as the case is.
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "pythread_inspect.h"

static const char *state_args[6];

static void daemon_kill9(harness *h)
{
    harness_kill(h, h->daemon);
    h->daemon = 0;
}

/* The daemon again on the same state directory, with --grace sec. */
static void daemon_restart(harness *h, const char *grace)
{
    if (h->daemon)
        daemon_kill9(h);
    state_args[0] = "--state-dir";
    state_args[1] = h->dir;
    state_args[2] = "--grace";
    state_args[3] = grace;
    state_args[4] = getenv("PTVERBOSE") ? "--verbose" : NULL;
    state_args[5] = NULL;
    h->daemon_args = state_args;
    harness_daemon_start(h);
}

/* What the test and its workers share. */
typedef struct shared {
    atomic_int held;    /* the holder holds */
    atomic_int go;      /* the holder may release */
    atomic_int got;     /* the waiter has the lock */
    atomic_int done;    /* a worker's last step is over */
    atomic_int down;    /* the daemon is dead */
    atomic_int stopped; /* the holder saw its session gone */
    uint64_t token_a, token_b;
    double t_call, t_back;
    int64_t value;
} shared;

static shared *sh;

static void wait_flag(atomic_int *flag, const char *what)
{
    double end = harness_now() + 30;

    while (atomic_load(flag) == 0) {
        WCHECK(harness_now() < end);
        (void)what;
        harness_tick();
    }
}

/* Holds res.lock through its word until told, then releases it. */
static int holder(pt_client *c, int index, void *arg)
{
    pt_lock *l;
    int r;

    (void)index, (void)arg;
    WCHECK_EQ(pt_lock_open(c, "res.lock", 0, 0, &l), 0);
    WCHECK_EQ(pt_lock_acquire_fenced(l, 0, -1, &sh->token_a), 1);
    atomic_store(&sh->held, 1);
    wait_flag(&sh->go, "go");
    r = pt_lock_release(l);
    if (atomic_load(&sh->stopped)) {
        WCHECK(r < 0); /* its session ended while it was stopped */
        return 0;
    }
    WCHECK_EQ(r, 0);
    pt_lock_close(l);
    return 0;
}

/* Waits for res.lock (timeout: arg, or none). */
static int waiter(pt_client *c, int index, void *arg)
{
    double timeout = arg ? *(double *)arg : -1;
    pt_lock *l;
    int r;

    (void)index;
    wait_flag(&sh->held, "held");
    WCHECK_EQ(pt_lock_open(c, "res.lock", 0, 0, &l), 0);
    sh->t_call = harness_now();
    r = pt_lock_acquire_fenced(l, 1, timeout, &sh->token_b);
    sh->t_back = harness_now();
    WCHECK(r >= 0);
    if (r == 1) {
        atomic_store(&sh->got, 1);
        WCHECK_EQ(pt_lock_release(l), 0);
    }
    atomic_store(&sh->done, r == 1 ? 1 : 2);
    pt_lock_close(l);
    return 0;
}

static void wait_waiters(harness *h, const char *name, pt_kind kind, uint32_t n)
{
    harness_wait_waiters(h, name, kind, n, HARNESS_DEADLINE);
}

static pt_inspect_detail *show(const char *name)
{
    pt_client *c = NULL;
    pt_inspect_detail *d = NULL;

    PT_ASSERT_OK(pt_client_open(&c, NULL));
    PT_ASSERT_OK(pt_inspect_show(c, name, &d));
    pt_client_close(c);
    return d;
}

static void status_get(pt_inspect_status *st)
{
    pt_client *c = NULL;

    PT_ASSERT_OK(pt_client_open(&c, NULL));
    PT_ASSERT_OK(pt_inspect_status_get(c, st));
    pt_client_close(c);
}

/* Inspection is served in the grace period too: wait until it is over. */
static void grace_over(void)
{
    double end = harness_now() + HARNESS_DEADLINE;
    pt_inspect_status st;

    for (status_get(&st); st.in_grace; status_get(&st)) {
        if (harness_now() > end)
            fail_msg("the grace period is not over after %.0f s", HARNESS_DEADLINE);
        harness_tick();
    }
}

/* A holder, and a second worker (fn) that waits for res.lock. */
static void setup_pair_with(harness *h, pid_t *a, pid_t *b, harness_worker_fn fn, void *arg)
{
    sh = harness_shm_alloc(h, sizeof(*sh));
    daemon_restart(h, "10");
    *a = harness_worker(h, holder, 0, NULL);
    wait_flag(&sh->held, "held");
    *b = harness_worker(h, fn, 1, arg);
    wait_waiters(h, "res.lock", PT_KIND_LOCK, 1);
}

static void setup_pair(harness *h, pid_t *a, pid_t *b, double *timeout)
{
    setup_pair_with(h, a, b, waiter, timeout);
}

/* The holder took the lock through its word; after the restart it still
 * holds it, the waiter still waits, and the release hands it over. */
static void test_holder_keeps_lock_waiter_keeps_place(void **state)
{
    harness *h = *state;
    pt_inspect_status st;
    pt_inspect_detail *d;
    pid_t a, b;
    double t0;

    setup_pair(h, &a, &b, NULL);
    t0 = harness_now();
    daemon_restart(h, "10");
    grace_over();
    d = show("res.lock");
    /* every kept session came back: the grace ended long before 10 s */
    assert_true(harness_now() - t0 < 5);
    assert_int_equal(d->object.locked, 1);
    assert_int_equal(d->n_holders, 1);
    assert_int_equal(d->holders[0].pid, a);
    assert_int_equal(d->n_waiters, 1);
    assert_int_equal(d->waiters[0].pid, b);
    /* the hold came back from the holder's word, not from the journal */
    assert_int_equal(d->object.restart, PT_RESTART_RECLAIMED);
    pt_inspect_detail_free(d);
    status_get(&st);
    assert_int_equal(st.grace_ms, 10000);
    assert_int_equal(st.in_grace, 0);
    assert_true(st.restarted_at > 0);
    assert_int_equal(st.objects_by_restart[PT_RESTART_RECLAIMED], 1);
    assert_int_equal(st.sessions_taken_up, 2);
    assert_int_equal(st.sessions_ended_gone + st.sessions_ended_late, 0);
    assert_int_equal(atomic_load(&sh->got), 0);
    atomic_store(&sh->go, 1);
    harness_join(h, (pid_t[]){a, b}, 2, HARNESS_DEADLINE);
    assert_int_equal(atomic_load(&sh->got), 1);
    assert_true(sh->token_b > sh->token_a);
    h->passed = 1;
}

/* SIGUSR2: the daemon replaces its image with the program at its path, in
 * the same process, and nobody loses anything. */
static void test_sigusr2_upgrade_keeps_everything(void **state)
{
    harness *h = *state;
    pt_inspect_status st;
    pt_inspect_detail *d;
    double end;
    pid_t a, b;

    setup_pair(h, &a, &b, NULL);
    assert_int_equal(kill(h->daemon, SIGUSR2), 0);
    end = harness_now() + HARNESS_DEADLINE;
    for (;;) {
        pt_client *c = NULL;

        /* a connection the old image took in its last instant is closed
         * with it: a new one goes to the new image */
        if (pt_client_open(&c, NULL) == 0) {
            int r = pt_inspect_status_get(c, &st);

            pt_client_close(c);
            if (r == 0 && st.restored_sessions > 0 && !st.in_grace)
                break;
        }
        if (harness_now() > end)
            fail_msg("no new image served after SIGUSR2 within %.0f s", HARNESS_DEADLINE);
        harness_tick();
    }
    assert_int_equal(st.pid, h->daemon); /* the same process */
    assert_int_equal(st.sessions_taken_up, 2);
    d = show("res.lock");
    assert_int_equal(d->n_holders, 1);
    assert_int_equal(d->holders[0].pid, a);
    assert_int_equal(d->n_waiters, 1);
    assert_int_equal(d->waiters[0].pid, b);
    pt_inspect_detail_free(d);
    atomic_store(&sh->go, 1);
    harness_join(h, (pid_t[]){a, b}, 2, HARNESS_DEADLINE);
    assert_int_equal(atomic_load(&sh->got), 1);
    assert_true(sh->token_b > sh->token_a);
    h->passed = 1; /* the teardown's SIGTERM: exit 0, the socket file removed */
}

/* A holder that died while the daemon was down gives the lock back as
 * soon as everyone alive is back. */
static void test_dead_holder_gives_back(void **state)
{
    harness *h = *state;
    pt_inspect_status st;
    pt_inspect_detail *d;
    pid_t a, b;
    double t0;

    setup_pair(h, &a, &b, NULL);
    daemon_kill9(h);
    harness_kill(h, a);
    t0 = harness_now();
    daemon_restart(h, "10");
    harness_join(h, &b, 1, HARNESS_DEADLINE);
    assert_int_equal(atomic_load(&sh->got), 1);
    assert_true(harness_now() - t0 < 5);
    assert_true(sh->token_b > sh->token_a);
    status_get(&st);
    assert_int_equal(st.sessions_taken_up, 1);
    assert_int_equal(st.sessions_ended_gone, 1);
    assert_int_equal(st.objects_by_restart[PT_RESTART_RELEASED], 1);
    d = show("res.lock");
    assert_int_equal(d->object.restart, PT_RESTART_RELEASED);
    pt_inspect_detail_free(d);
    h->passed = 1;
}

/* A holder that lives but does not come back within --grace (stopped)
 * loses the lock; when it runs again its release fails. Meanwhile the
 * daemon is inspected: it says it waits. */
static void test_holder_not_back_in_grace_loses(void **state)
{
    harness *h = *state;
    pt_inspect_status st;
    pt_inspect_detail *d;
    pid_t a, b;
    double t0;
    int status;

    setup_pair(h, &a, &b, NULL);
    kill(a, SIGSTOP);
    daemon_kill9(h);
    t0 = harness_now();
    daemon_restart(h, "3");
    status_get(&st);
    assert_int_equal(st.in_grace, 1);
    assert_true(st.restored_sessions >= 2);
    assert_true(st.restarted_at == 0); /* not made yet */
    assert_int_equal(st.objects_by_restart[PT_RESTART_IN_GRACE], 1);
    d = show("res.lock");
    assert_int_equal(d->object.restart, PT_RESTART_IN_GRACE);
    pt_inspect_detail_free(d);
    harness_join(h, &b, 1, HARNESS_DEADLINE + 3);
    assert_true(harness_now() - t0 >= 2.9);
    status_get(&st);
    assert_int_equal(st.sessions_taken_up, 1);
    assert_int_equal(st.sessions_ended_late, 1);
    d = show("res.lock");
    assert_int_equal(d->object.restart, PT_RESTART_RELEASED);
    pt_inspect_detail_free(d);
    atomic_store(&sh->stopped, 1);
    atomic_store(&sh->go, 1);
    kill(a, SIGCONT);
    assert_int_equal(harness_wait(h, a, HARNESS_DEADLINE, &status), 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    h->passed = 1;
}

/* A wait's timeout counts from the call, not from the restart. */
static void test_timeout_counts_from_the_call(void **state)
{
    harness *h = *state;
    double timeout = 3.0;
    pid_t a, b;

    setup_pair(h, &a, &b, &timeout);
    while (harness_now() - sh->t_call < 1.0)
        harness_tick();
    daemon_restart(h, "10");
    harness_join(h, &b, 1, HARNESS_DEADLINE);
    assert_int_equal(atomic_load(&sh->done), 2); /* timed out */
    assert_true(sh->t_back - sh->t_call >= 2.95);
    assert_true(sh->t_back - sh->t_call < 4.5);
    atomic_store(&sh->go, 1);
    harness_join(h, &a, 1, HARNESS_DEADLINE);
    h->passed = 1;
}

static int cond_waiter(pt_client *c, int index, void *arg)
{
    pt_rlock *rl;
    pt_condition *cv;

    (void)index, (void)arg;
    WCHECK_EQ(pt_rlock_open(c, "res.rlock", 0, 0, &rl), 0);
    WCHECK_EQ(pt_condition_open(c, "res.cond", pt_rlock_as_object(rl), 0, 0, &cv), 0);
    WCHECK_EQ(pt_condition_acquire(cv, 1, -1), 1);
    WCHECK_EQ(pt_condition_wait(cv, -1), 1); /* notified after the restart */
    WCHECK_EQ(pt_condition_release(cv), 0);
    atomic_fetch_add(&sh->done, 1);
    pt_condition_close(cv);
    pt_rlock_close(rl);
    return 0;
}

static int party(pt_client *c, int index, void *arg)
{
    pt_barrier *b;

    (void)index, (void)arg;
    WCHECK_EQ(pt_barrier_open(c, "res.barrier", 3, NULL, NULL, PT_FOREVER, 0, 0, &b), 0);
    WCHECK(pt_barrier_wait(b, PT_FOREVER) >= 0);
    atomic_fetch_add(&sh->done, 1);
    pt_barrier_close(b);
    return 0;
}

/* Condition waiters come back as waiters (no notify can have been given
 * meanwhile) and Barrier parties as parties. */
static void test_condition_and_barrier_wait_on(void **state)
{
    harness *h = *state;
    pt_client *c = NULL;
    pt_rlock *rl;
    pt_condition *cv;
    pt_barrier *b;
    pid_t kids[3];

    sh = harness_shm_alloc(h, sizeof(*sh));
    daemon_restart(h, "10");
    kids[0] = harness_worker(h, cond_waiter, 0, NULL);
    kids[1] = harness_worker(h, party, 1, NULL);
    kids[2] = harness_worker(h, party, 2, NULL);
    wait_waiters(h, "res.cond", PT_KIND_CONDITION, 1);
    wait_waiters(h, "res.barrier", PT_KIND_BARRIER, 2);
    daemon_restart(h, "10");
    assert_int_equal(atomic_load(&sh->done), 0);
    PT_ASSERT_OK(pt_client_open(&c, NULL));
    PT_ASSERT_OK(pt_rlock_open(c, "res.rlock", 0, 0, &rl));
    PT_ASSERT_OK(pt_condition_open(c, "res.cond", pt_rlock_as_object(rl), 0, 0, &cv));
    PT_ASSERT_EQ(pt_condition_acquire(cv, 1, -1), 1);
    PT_ASSERT_EQ(pt_condition_notify(cv, 1), 0);
    PT_ASSERT_OK(pt_condition_release(cv));
    PT_ASSERT_OK(pt_barrier_open(c, "res.barrier", 3, NULL, NULL, PT_FOREVER, 0, 0, &b));
    PT_ASSERT_OK(pt_barrier_wait(b, 5.0));
    harness_join(h, kids, 3, HARNESS_DEADLINE);
    assert_int_equal(atomic_load(&sh->done), 3);
    pt_barrier_close(b);
    pt_condition_close(cv);
    pt_rlock_close(rl);
    pt_client_close(c);
    h->passed = 1;
}

/* An RLock three deep, a semaphore's permits and a BoundedSemaphore's
 * owned ones, all taken through their words, are what the daemon knows
 * after the restart. */
static int deep_holder(pt_client *c, int index, void *arg)
{
    pt_rlock *rl;
    pt_semaphore *sem, *bsem;
    int64_t v;

    (void)index, (void)arg;
    WCHECK_EQ(pt_rlock_open(c, "res.deep", 0, 0, &rl), 0);
    WCHECK_EQ(pt_semaphore_open(c, "res.sem", 5, 0, 0, 0, &sem), 0);
    WCHECK_EQ(pt_semaphore_open(c, "res.bsem", 3, 1, 0, 0, &bsem), 0);
    for (int i = 0; i < 3; i++)
        WCHECK_EQ(pt_rlock_acquire(rl, 1, -1), 1);
    WCHECK_EQ(pt_semaphore_acquire(sem, 1, -1), 1);
    WCHECK_EQ(pt_semaphore_acquire(sem, 1, -1), 1);
    WCHECK_EQ(pt_semaphore_acquire(bsem, 1, -1), 1);
    WCHECK_EQ(pt_semaphore_acquire(bsem, 1, -1), 1);
    atomic_store(&sh->held, 1);
    wait_flag(&sh->go, "go");
    WCHECK_EQ(pt_semaphore_value(sem, &sh->value), 0);
    for (int i = 0; i < 3; i++)
        WCHECK_EQ(pt_rlock_release(rl), 0);
    WCHECK_EQ(pt_rlock_release(rl), PT_ERUNTIME);
    /* the two owned permits are this session's: both go back, a third may not */
    WCHECK_EQ(pt_semaphore_release(bsem, 2), 0);
    WCHECK_EQ(pt_semaphore_value(bsem, &v), 0);
    WCHECK_EQ(v, 3);
    WCHECK(pt_semaphore_release(bsem, 1) < 0);
    pt_semaphore_close(bsem);
    pt_semaphore_close(sem);
    pt_rlock_close(rl);
    return 0;
}

static void test_rlock_depth_and_value_from_words(void **state)
{
    harness *h = *state;
    pt_inspect_detail *d;
    pid_t a;

    sh = harness_shm_alloc(h, sizeof(*sh));
    daemon_restart(h, "10");
    a = harness_worker(h, deep_holder, 0, NULL);
    wait_flag(&sh->held, "held");
    daemon_restart(h, "10");
    grace_over();
    d = show("res.deep");
    assert_int_equal(d->n_holders, 1);
    assert_int_equal(d->holders[0].pid, a);
    assert_int_equal(d->holders[0].count, 3);
    pt_inspect_detail_free(d);
    d = show("res.sem");
    assert_int_equal(d->object.value, 3);
    pt_inspect_detail_free(d);
    d = show("res.bsem");
    assert_int_equal(d->object.value, 1);
    assert_int_equal(d->n_holders, 1);
    assert_int_equal(d->holders[0].count, 2);
    pt_inspect_detail_free(d);
    atomic_store(&sh->go, 1);
    harness_join(h, &a, 1, HARNESS_DEADLINE);
    assert_int_equal(sh->value, 3);
    h->passed = 1;
}

/* A call made while no daemon runs waits for the next one. */
static int late_caller(pt_client *c, int index, void *arg)
{
    pt_lock *l;

    (void)index, (void)arg;
    WCHECK_EQ(pt_lock_open(c, "res.late", 0, 0, &l), 0);
    atomic_store(&sh->held, 1);
    wait_flag(&sh->down, "down");
    WCHECK_EQ(pt_lock_acquire(l, 1, -1), 1);
    WCHECK_EQ(pt_lock_release(l), 0);
    pt_lock_close(l);
    return 0;
}

static void test_call_while_down_is_served_after(void **state)
{
    harness *h = *state;
    double t0;
    pid_t a;

    sh = harness_shm_alloc(h, sizeof(*sh));
    daemon_restart(h, "10");
    a = harness_worker(h, late_caller, 0, NULL);
    wait_flag(&sh->held, "held");
    daemon_kill9(h);
    atomic_store(&sh->down, 1);
    t0 = harness_now();
    while (harness_now() - t0 < 0.3)
        harness_tick();
    daemon_restart(h, "10");
    harness_join(h, &a, 1, HARNESS_DEADLINE);
    h->passed = 1;
}

/* Waits for res.lock (the lock handed to it as arg), so that this thread
 * is the one reading for its process when the connection ends. */
static void *acquire_thread(void *arg)
{
    pt_lock *l = arg;

    WCHECK_EQ(pt_lock_acquire(l, 1, -1), 1);
    atomic_store(&sh->got, 1);
    WCHECK_EQ(pt_lock_release(l), 0);
    return NULL;
}

/* Waits for the end of its connection while another thread waits for
 * res.lock, then for the session to be settled. The poll holds the socket
 * it watches, so the reader closing it meanwhile does no harm here. */
static int session_waiter(pt_client *c, int index, void *arg)
{
    uint64_t sid = pt_client_session_id(c);
    struct pollfd p = {.fd = pt_client_fd(c), .events = POLLRDHUP};
    pthread_t t;
    pt_lock *l;

    (void)index, (void)arg;
    WCHECK_EQ(pt_lock_open(c, "res.lock", 0, 0, &l), 0);
    WCHECK_EQ(pthread_create(&t, NULL, acquire_thread, l), 0);
    WCHECK_EQ(poll(&p, 1, 30000), 1);
    WCHECK(pt_client_session_wait(c, sid) >= 0);
    atomic_store(&sh->done, 1);
    WCHECK_EQ(pthread_join(t, NULL), 0);
    pt_lock_close(l);
    return 0;
}

/* pt_client_session_wait waits for the thread that reads to take the end
 * in; that thread reads again on the new connection at once, and the wait
 * still ends with the session taken up. */
static void test_session_wait_while_another_thread_reads(void **state)
{
    harness *h = *state;
    pid_t a, b;

    setup_pair_with(h, &a, &b, session_waiter, NULL);
    daemon_restart(h, "10");
    harness_wait_flag(&sh->done, 1, HARNESS_DEADLINE, "pt_client_session_wait returns");
    assert_int_equal(atomic_load(&sh->got), 0);
    atomic_store(&sh->go, 1);
    harness_join(h, (pid_t[]){a, b}, 2, HARNESS_DEADLINE);
    assert_int_equal(atomic_load(&sh->got), 1);
    h->passed = 1;
}

/* The resuming hello on the wire: the calls the process names that the
 * journal answered are answered again, after the hello's answer; those
 * the old daemon never read are named back to be sent again; the session
 * goes on with its holds. */
static void test_resume_on_the_wire(void **state)
{
    harness *h = *state;
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    Pythread__HelloArgs hello = PYTHREAD__HELLO_ARGS__INIT;
    Pythread__Response *r;
    uint8_t key[PT_WIRE_RESUME_KEY_MAX];
    uint64_t session, acquired, pending[2];
    size_t keylen;
    uint32_t handle;
    raw_conn rc1, rc2;

    daemon_restart(h, "10");
    assert_int_equal(raw_connect(&rc1, h->sock), 0);
    req.op = PYTHREAD__OP__OP_HELLO;
    req.hello = &hello;
    hello.has_version = 1;
    hello.version = PT_PROTOCOL_VERSION;
    r = raw_call(&rc1, &req, HARNESS_DEADLINE);
    assert_non_null(r);
    assert_non_null(r->hello);
    assert_true(r->hello->has_resume_key && r->hello->resume_key.len <= sizeof(key));
    assert_int_equal(r->hello->grace_ms, 10000);
    session = r->hello->session;
    keylen = r->hello->resume_key.len;
    memcpy(key, r->hello->resume_key.data, keylen);
    assert_int_equal(raw_open(&rc1, "res.wire", PT_KIND_LOCK, 0, &handle), 0);
    req = (Pythread__Request)PYTHREAD__REQUEST__INIT;
    req.op = PYTHREAD__OP__OP_ACQUIRE;
    req.has_handle = req.has_thread = 1;
    req.handle = handle;
    req.thread = 7;
    r = raw_call(&rc1, &req, HARNESS_DEADLINE);
    assert_non_null(r);
    assert_true(r->ok);
    acquired = req.id;

    daemon_restart(h, "10"); /* kill -9 */
    assert_int_equal(raw_connect(&rc2, h->sock), 0);
    pending[0] = acquired; /* answered, as if its answer had been lost */
    pending[1] = 1u << 20; /* never sent */
    req = (Pythread__Request)PYTHREAD__REQUEST__INIT;
    hello = (Pythread__HelloArgs)PYTHREAD__HELLO_ARGS__INIT;
    req.op = PYTHREAD__OP__OP_HELLO;
    req.hello = &hello;
    hello.has_version = hello.has_resume_session = hello.has_resume_key = 1;
    hello.version = PT_PROTOCOL_VERSION;
    hello.resume_session = session;
    hello.resume_key.data = key;
    hello.resume_key.len = keylen;
    hello.n_pending = 2;
    hello.pending = pending;
    r = raw_call(&rc2, &req, HARNESS_DEADLINE);
    assert_non_null(r);
    assert_non_null(r->hello);
    assert_true(r->hello->resumed);
    assert_int_equal(r->hello->session, session);
    assert_int_equal(r->hello->n_resend, 1);
    assert_int_equal(r->hello->resend[0], 1u << 20);
    assert_int_equal(raw_recv(&rc2, HARNESS_DEADLINE, &r), RAW_FRAME);
    assert_int_equal(r->id, acquired);
    assert_true(r->ok);
    /* the same session, holding: thread 7 releases */
    req = (Pythread__Request)PYTHREAD__REQUEST__INIT;
    req.op = PYTHREAD__OP__OP_RELEASE;
    req.has_handle = req.has_thread = 1;
    req.handle = handle;
    req.thread = 7;
    r = raw_call(&rc2, &req, HARNESS_DEADLINE);
    assert_non_null(r);
    assert_int_equal(r->status, 0);
    raw_close(&rc2);
    raw_close(&rc1);
    h->passed = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_holder_keeps_lock_waiter_keeps_place, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_dead_holder_gives_back, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_sigusr2_upgrade_keeps_everything, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_holder_not_back_in_grace_loses, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_timeout_counts_from_the_call, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_condition_and_barrier_wait_on, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_rlock_depth_and_value_from_words, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_call_while_down_is_served_after, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_resume_on_the_wire, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_session_wait_while_another_thread_reads, harness_setup,
                                        harness_teardown),
    };

    return cmocka_run_group_tests_name("integration.resume", tests, NULL, NULL);
}
