/*
 * it_resume.c - sessions outlive a kill -9 of pythreadd --state-dir for the
 * processes that live: a holder keeps its lock (taken through the shared
 * word, which the daemon never saw) and its waiter its place, with no call
 * of theirs failing; a holder that died, or does not come back within
 * --grace, gives everything back; a timeout counts from the original call;
 * Condition waiters and Barrier parties go on waiting; an RLock's depth and
 * a semaphore's value come back from the words; a call made while the
 * daemon was down is served by the next one. A resuming hello is refused
 * (the connection goes on as a new session) with a wrong key, from another
 * process or user, for a session taken up already or after the grace; the
 * answers kept for a resuming process make room oldest first. SIGUSR2 is
 * refused, the daemon serving on, without --state-dir, under systemd and
 * when its program cannot be run. pt_client_session_wait returns once the
 * session is taken up, even while another thread reads; the loss
 * descriptor stays quiet across it and tells a loss. Inspection marks
 * the lock reclaimed, in grace or released (pt_restart_mark) as the case
 * is.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
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

/* What a resuming hello names: the session its first hello was given, and
 * the key. */
typedef struct ticket {
    uint64_t session;
    uint8_t key[PT_WIRE_RESUME_KEY_MAX];
    size_t keylen;
    uint32_t grace_ms; /* how long a restarted daemon keeps it */
} ticket;

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
    ticket ticket;    /* a worker's raw session */
    int resumed;      /* what a worker's resuming hello was answered */
    uint64_t session; /* and the session it was given */
} shared;

static shared *sh;

/* In a worker: waits (30 s at most) until the test sets flag. */
static void wait_flag(atomic_int *flag, const char *what)
{
    double end = harness_now() + 30;

    while (atomic_load(flag) == 0) {
        if (harness_now() > end)
            fprintf(stderr, "[pid %d] no '%s' from the test within 30 s\n", (int)getpid(), what);
        WCHECK(harness_now() <= end);
        harness_tick();
    }
}

/* In a worker: tells the test through said, then waits for until. */
static void flag_then_wait(atomic_int *said, atomic_int *until, const char *what)
{
    atomic_store(said, 1);
    wait_flag(until, what);
}

static pt_lock *lock_opened(pt_client *c, const char *name)
{
    pt_lock *l = NULL;

    WCHECK_EQ(pt_lock_open(c, name, 0, 0, &l), 0);
    return l;
}

/* A daemon keeping its state, and the memory its workers share. */
static void state_start(harness *h)
{
    sh = harness_shm_alloc(h, sizeof(*sh));
    daemon_restart(h, "10");
}

/* A worker running fn, once it says it holds what it takes. */
static pid_t worker_holding(harness *h, harness_worker_fn fn)
{
    pid_t pid = harness_worker(h, fn, 0, NULL);

    harness_wait_flag(&sh->held, 1, HARNESS_DEADLINE, "the worker holds");
    return pid;
}

/* Holds res.lock through its word until told, then releases it. */
static int holder(pt_client *c, int index, void *arg)
{
    pt_lock *l;
    int r;

    (void)index, (void)arg;
    l = lock_opened(c, "res.lock");
    WCHECK_EQ(pt_lock_acquire_fenced(l, 0, -1, &sh->token_a), 1);
    flag_then_wait(&sh->held, &sh->go, "go");
    r = pt_lock_release(l);
    if (atomic_load(&sh->stopped)) {
        /* its session ended while it was stopped: libpythread(3) says so */
        WCHECK_EQ(r, PT_ESESSION);
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
    l = lock_opened(c, "res.lock");
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

/* A holder, and a second worker (fn) that waits for res.lock. */
static void setup_pair_with(harness *h, pid_t *a, pid_t *b, harness_worker_fn fn, void *arg)
{
    state_start(h);
    *a = worker_holding(h, holder);
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
    harness_grace_over();
    d = harness_show("res.lock");
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
    harness_status(&st);
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
 * the same process, and nobody loses anything, not even a connection. */
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

        /* a connection the old image took in its last instant goes on
         * with the new one, as every other connection does */
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
    /* both processes' sessions, on the connections they had (and maybe
     * the status connection the old image took in its last instant) */
    assert_true(st.sessions_taken_up >= 2);
    assert_int_equal(st.sessions_kept_connection, st.sessions_taken_up);
    d = harness_show("res.lock");
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
    harness_status(&st);
    assert_int_equal(st.sessions_taken_up, 1);
    assert_int_equal(st.sessions_ended_gone, 1);
    assert_int_equal(st.objects_by_restart[PT_RESTART_RELEASED], 1);
    d = harness_show("res.lock");
    assert_int_equal(d->object.restart, PT_RESTART_RELEASED);
    pt_inspect_detail_free(d);
    h->passed = 1;
}

/* A holder that lives but does not come back within --grace (stopped)
 * loses the lock; when it runs again, its library's resuming hello is
 * refused and its next call, the release, fails with PT_ESESSION
 * (libpythread(3)). Meanwhile the daemon is inspected: it says it waits. */
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
    harness_status(&st);
    assert_int_equal(st.in_grace, 1);
    assert_true(st.restored_sessions >= 2);
    assert_true(st.restarted_at == 0); /* not made yet */
    assert_int_equal(st.objects_by_restart[PT_RESTART_IN_GRACE], 1);
    d = harness_show("res.lock");
    assert_int_equal(d->object.restart, PT_RESTART_IN_GRACE);
    pt_inspect_detail_free(d);
    harness_join(h, &b, 1, HARNESS_DEADLINE + 3);
    assert_true(harness_now() - t0 >= 2.9);
    harness_status(&st);
    assert_int_equal(st.sessions_taken_up, 1);
    assert_int_equal(st.sessions_ended_late, 1);
    d = harness_show("res.lock");
    assert_int_equal(d->object.restart, PT_RESTART_RELEASED);
    pt_inspect_detail_free(d);
    atomic_store(&sh->stopped, 1);
    kill(a, SIGCONT);
    /* its library asks for the session back (its words frozen first, so
     * the release goes to the daemon), is refused, and tells the release */
    harness_log_wait(h, "refused: no session of that id waits", 1, HARNESS_DEADLINE);
    atomic_store(&sh->go, 1);
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

    state_start(h);
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
    flag_then_wait(&sh->held, &sh->go, "go");
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

    state_start(h);
    a = worker_holding(h, deep_holder);
    daemon_restart(h, "10");
    harness_grace_over();
    d = harness_show("res.deep");
    assert_int_equal(d->n_holders, 1);
    assert_int_equal(d->holders[0].pid, a);
    assert_int_equal(d->holders[0].count, 3);
    pt_inspect_detail_free(d);
    d = harness_show("res.sem");
    assert_int_equal(d->object.value, 3);
    pt_inspect_detail_free(d);
    d = harness_show("res.bsem");
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
    l = lock_opened(c, "res.late");
    flag_then_wait(&sh->held, &sh->down, "down");
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

    state_start(h);
    a = worker_holding(h, late_caller);
    daemon_kill9(h);
    atomic_store(&sh->down, 1);
    t0 = harness_now();
    while (harness_now() - t0 < 0.3)
        harness_tick();
    daemon_restart(h, "10");
    harness_join(h, &a, 1, HARNESS_DEADLINE);
    h->passed = 1;
}

/* ------------------------------------------------------------------ */
/* The resuming hello on the wire                                      */
/* ------------------------------------------------------------------ */

/* A hello on rc; with t, one asking to take up t's session, naming the
 * calls pending (n of them). Its answer, or NULL. */
static Pythread__HelloInfo *hello_call(raw_conn *rc, const ticket *t, uint64_t *pending, size_t n)
{
    Pythread__Request req;
    Pythread__HelloArgs hello;
    Pythread__Response *r;

    raw_hello_init(&req, &hello, PT_PROTOCOL_VERSION);
    if (t != NULL) {
        hello.has_resume_session = hello.has_resume_key = 1;
        hello.resume_session = t->session;
        hello.resume_key.data = (uint8_t *)t->key;
        hello.resume_key.len = t->keylen;
        hello.n_pending = n;
        hello.pending = pending;
    }
    r = raw_call(rc, &req, HARNESS_DEADLINE);
    return r ? r->hello : NULL;
}

/* A new connection on sock and its hello (with t, a resuming one). */
static Pythread__HelloInfo *hello_on(raw_conn *rc, const char *sock, const ticket *t)
{
    if (raw_connect(rc, sock) != 0)
        return NULL;
    return hello_call(rc, t, NULL, 0);
}

/* A Lock call (an acquire does not block) by thread th; its request id
 * in *id. The answer, or NULL. */
static Pythread__Response *lock_call(raw_conn *rc, Pythread__Op op, uint32_t handle, uint64_t th,
                                     uint64_t *id)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    Pythread__Response *r;

    req.op = op;
    req.has_handle = req.has_thread = 1;
    req.handle = handle;
    req.thread = th;
    req.has_blocking = op == PYTHREAD__OP__OP_ACQUIRE;
    req.blocking = 0;
    r = raw_call(rc, &req, HARNESS_DEADLINE);
    *id = req.id;
    return r;
}

/* A raw session of this process on sock, and in *t what takes it up again
 * (no key from a daemon that keeps no state); 0, or -1 if not. */
static int raw_session(raw_conn *rc, const char *sock, ticket *t)
{
    Pythread__HelloInfo *info = hello_on(rc, sock, NULL);

    if (info == NULL || info->resume_key.len > sizeof(t->key))
        return -1;
    t->session = info->session;
    t->grace_ms = info->grace_ms;
    t->keylen = info->resume_key.len;
    if (t->keylen > 0)
        memcpy(t->key, info->resume_key.data, t->keylen);
    return 0;
}

/* A raw session (raw_session) that holds the Lock name (thread 7), and its
 * handle. The acquire's request id, 0 if anything failed. */
static uint64_t raw_holder(raw_conn *rc, const char *sock, const char *name, ticket *t,
                           uint32_t *handle)
{
    Pythread__Response *r;
    uint64_t id;

    if (raw_session(rc, sock, t) < 0 || raw_open(rc, name, PT_KIND_LOCK, 0, handle) != 0)
        return 0;
    r = lock_call(rc, PYTHREAD__OP__OP_ACQUIRE, *handle, 7, &id);
    return r != NULL && r->ok ? id : 0;
}

/* The status of thread 7's release of handle on rc. */
static int release_status(raw_conn *rc, uint32_t handle)
{
    uint64_t id;
    Pythread__Response *r = lock_call(rc, PYTHREAD__OP__OP_RELEASE, handle, 7, &id);

    return r == NULL ? PT_ESESSION : r->has_status ? r->status : 0;
}

/* A hello naming t on a new connection: refused, so a new session. */
static void assert_refused(raw_conn *rc, const char *sock, const ticket *t)
{
    Pythread__HelloInfo *info = hello_on(rc, sock, t);

    assert_non_null(info);
    assert_false(info->resumed);
    assert_int_not_equal(info->session, t->session);
    assert_int_equal(info->n_resend, 0);
}

/* A hello naming t on a new connection takes its session up. */
static void assert_resumed(raw_conn *rc, const char *sock, const ticket *t)
{
    Pythread__HelloInfo *info = hello_on(rc, sock, t);

    assert_non_null(info);
    assert_true(info->resumed);
    assert_int_equal(info->session, t->session);
}

/* The resuming hello on the wire: the calls the process names that the
 * journal answered are answered again, after the hello's answer; those
 * the old daemon never read are named back to be sent again; the session
 * goes on with its holds. */
static void test_resume_on_the_wire(void **state)
{
    harness *h = *state;
    Pythread__HelloInfo *info;
    Pythread__Response *r;
    uint64_t pending[2];
    uint32_t handle;
    raw_conn rc1, rc2;
    ticket t;

    daemon_restart(h, "10");
    pending[0] = raw_holder(&rc1, h->sock, "res.wire", &t, &handle);
    assert_true(pending[0] != 0); /* answered, as if its answer had been lost */
    pending[1] = 1u << 20;        /* never sent */
    assert_true(t.keylen > 0);
    assert_int_equal(t.grace_ms, 10000);

    daemon_restart(h, "10"); /* kill -9 */
    assert_int_equal(raw_connect(&rc2, h->sock), 0);
    info = hello_call(&rc2, &t, pending, 2);
    assert_non_null(info);
    assert_true(info->resumed);
    assert_int_equal(info->session, t.session);
    assert_int_equal(info->n_resend, 1);
    assert_int_equal(info->resend[0], 1u << 20);
    assert_int_equal(raw_recv(&rc2, HARNESS_DEADLINE, &r), RAW_FRAME);
    assert_int_equal(r->id, pending[0]);
    assert_true(r->ok);
    assert_int_equal(release_status(&rc2, handle), 0); /* the same session, holding */
    raw_close(&rc2);
    raw_close(&rc1);
    h->passed = 1;
}

/* A wrong key is refused, and the session waits on for its process: the
 * right key takes it up, once only. */
static void test_resume_refused_wrong_key_and_twice(void **state)
{
    harness *h = *state;
    raw_conn rc1, rc2, bad, good, again, other;
    uint32_t handle, handle2;
    ticket t, t2, wrong;

    daemon_restart(h, "10");
    assert_true(raw_holder(&rc1, h->sock, "res.key", &t, &handle) != 0);
    /* a second session keeps the grace on after the first is taken up */
    assert_true(raw_holder(&rc2, h->sock, "res.key2", &t2, &handle2) != 0);
    daemon_restart(h, "10");
    wrong = t;
    wrong.key[0] ^= 1;
    assert_refused(&bad, h->sock, &wrong);
    assert_int_equal(harness_log_count(h->log, "refused: the key is not the one"), 1);
    assert_resumed(&good, h->sock, &t);
    assert_refused(&again, h->sock, &t);
    assert_int_equal(harness_log_count(h->log, "refused: it was taken up already"), 1);
    assert_resumed(&other, h->sock, &t2);
    harness_grace_over();
    assert_int_equal(release_status(&good, handle), 0);
    assert_int_equal(release_status(&other, handle2), 0);
    raw_close(&other);
    raw_close(&again);
    raw_close(&good);
    raw_close(&bad);
    raw_close(&rc2);
    raw_close(&rc1);
    h->passed = 1;
}

/* In another process: a resuming hello naming the ticket a worker left in
 * shared memory (arg: the socket); what it was answered goes back there. */
static int ask_for_session(int index, void *arg)
{
    Pythread__HelloInfo *info;
    raw_conn rc;

    (void)index;
    info = hello_on(&rc, arg, &sh->ticket);
    WCHECK(info != NULL);
    sh->resumed = info->resumed;
    sh->session = info->session;
    raw_close(&rc);
    return 0;
}

/* Another process with the key (a child of the session's, which knows
 * it) is refused; the session's own process then takes it up. */
static void test_resume_refused_to_another_process(void **state)
{
    harness *h = *state;
    raw_conn rc1, own;
    uint32_t handle;
    pid_t child;

    state_start(h);
    assert_true(raw_holder(&rc1, h->sock, "res.pid", &sh->ticket, &handle) != 0);
    daemon_restart(h, "10");
    child = harness_fork(h, ask_for_session, 0, h->sock);
    harness_join(h, &child, 1, HARNESS_DEADLINE);
    assert_false(sh->resumed);
    assert_int_not_equal(sh->session, sh->ticket.session);
    assert_int_equal(harness_log_count(h->log, "refused: it belongs to another process"), 1);
    assert_resumed(&own, h->sock, &sh->ticket);
    assert_int_equal(release_status(&own, handle), 0);
    raw_close(&own);
    raw_close(&rc1);
    h->passed = 1;
}

/* The session's own process, become another user: holds res.uid through a
 * raw session, and when told (the daemon restarted), becomes nobody and
 * asks for that session back. */
static int user_changer(int index, void *arg)
{
    uint32_t handle;
    raw_conn rc;

    WCHECK(raw_holder(&rc, arg, "res.uid", &sh->ticket, &handle) != 0);
    flag_then_wait(&sh->held, &sh->go, "go");
    raw_close(&rc);
    WCHECK(setgroups(0, NULL) == 0 && setgid(65534) == 0 && setuid(65534) == 0);
    return ask_for_session(index, arg);
}

/* The same process as another user is refused; the session ends with the
 * grace (its process gone), giving its lock back. */
static void test_resume_refused_to_another_user(void **state)
{
    harness *h = *state;
    pt_inspect_status st;
    pt_inspect_detail *d;
    pid_t w;

    if (geteuid() != 0) {
        print_message("skipped: becoming another user needs root\n");
        h->passed = 1; /* nothing to show of the daemon */
        skip();
    }
    state_start(h);
    assert_int_equal(chmod(h->dir, 0711), 0); /* nobody reaches the socket */
    w = harness_fork(h, user_changer, 0, h->sock);
    harness_wait_flag(&sh->held, 1, HARNESS_DEADLINE, "the worker holds res.uid");
    daemon_restart(h, "10");
    atomic_store(&sh->go, 1);
    harness_join(h, &w, 1, HARNESS_DEADLINE);
    assert_false(sh->resumed);
    assert_int_not_equal(sh->session, sh->ticket.session);
    assert_int_equal(harness_log_count(h->log, "refused: it belongs to another user"), 1);
    harness_grace_over();
    harness_status(&st);
    assert_int_equal(st.sessions_taken_up, 0);
    assert_int_equal(st.sessions_ended_gone, 1);
    d = harness_show("res.uid");
    assert_int_equal(d->object.locked, 0);
    pt_inspect_detail_free(d);
    h->passed = 1;
}

/* After the grace the session has ended: its process's resuming hello is
 * refused, its lock was given back and its handle is no more. */
static void test_resume_refused_after_grace(void **state)
{
    harness *h = *state;
    pt_inspect_status st;
    pt_inspect_detail *d;
    raw_conn rc1, late;
    uint32_t handle;
    ticket t;

    daemon_restart(h, "10");
    assert_true(raw_holder(&rc1, h->sock, "res.after", &t, &handle) != 0);
    daemon_restart(h, "1");
    harness_grace_over();
    harness_status(&st);
    assert_int_equal(st.sessions_ended_late, 1);
    assert_refused(&late, h->sock, &t);
    assert_int_equal(harness_log_count(h->log, "refused: no session of that id waits"), 1);
    assert_int_not_equal(release_status(&late, handle), 0);
    d = harness_show("res.after");
    assert_int_equal(d->object.locked, 0);
    pt_inspect_detail_free(d);
    raw_close(&late);
    raw_close(&rc1);
    h->passed = 1;
}

/*
 * The journal's answers are kept for 4096 threads per session (resume.c's
 * KEPT_ANSWERS_MAX); past that the answer given longest ago makes room.
 * The open (thread 0) and acquires that do not block by threads 100..4194
 * fill it; thread 100 is answered again (a release), then threads 5000 and
 * 5001 are: they push out the open's answer and thread 101's. Named as
 * pending, thread 101's call is to be sent again; those of threads 100,
 * 1003 (one from the middle), 5000 and 5001 are answered again.
 */
static void test_answers_kept_oldest_goes_first(void **state)
{
    enum { FIRST = 100, FILL = 4095 };
    harness *h = *state;
    Pythread__HelloInfo *info;
    Pythread__Response *r;
    uint64_t pending[5], id;
    raw_conn rc1, rc2;
    uint32_t handle;
    ticket t;

    daemon_restart(h, "10");
    assert_int_equal(raw_session(&rc1, h->sock, &t), 0);
    assert_int_equal(raw_open(&rc1, "res.many", PT_KIND_LOCK, 0, &handle), 0);
    for (uint64_t th = FIRST; th < FIRST + FILL; th++) {
        assert_non_null(lock_call(&rc1, PYTHREAD__OP__OP_ACQUIRE, handle, th, &id));
        if (th == FIRST + 1)
            pending[1] = id; /* pushed out */
        if (th == FIRST + 903)
            pending[2] = id; /* kept */
    }
    assert_non_null(lock_call(&rc1, PYTHREAD__OP__OP_RELEASE, handle, FIRST, &pending[0]));
    assert_non_null(lock_call(&rc1, PYTHREAD__OP__OP_ACQUIRE, handle, 5000, &pending[3]));
    assert_non_null(lock_call(&rc1, PYTHREAD__OP__OP_ACQUIRE, handle, 5001, &pending[4]));

    daemon_restart(h, "10");
    assert_int_equal(raw_connect(&rc2, h->sock), 0);
    info = hello_call(&rc2, &t, pending, 5);
    assert_non_null(info);
    assert_true(info->resumed);
    assert_int_equal(info->n_resend, 1);
    assert_int_equal(info->resend[0], pending[1]);
    for (int i = 0; i < 5; i++) {
        if (i == 1)
            continue;
        assert_int_equal(raw_recv(&rc2, HARNESS_DEADLINE, &r), RAW_FRAME);
        assert_int_equal(r->id, pending[i]);
    }
    raw_close(&rc2);
    raw_close(&rc1);
    h->passed = 1;
}

/* ------------------------------------------------------------------ */
/* SIGUSR2 refused                                                     */
/* ------------------------------------------------------------------ */

/* SIGUSR2 while a raw session of this process holds res.usr2: the log says
 * why it is ignored (a line with why, one more than before), and the same
 * daemon serves on with the session holding. */
static void sigusr2_refused(harness *h, const char *why)
{
    int before = harness_log_count(h->log, why);
    pt_inspect_detail *d;
    uint32_t handle;
    raw_conn rc;
    ticket t;

    assert_true(raw_holder(&rc, h->sock, "res.usr2", &t, &handle) != 0);
    assert_int_equal(kill(h->daemon, SIGUSR2), 0);
    harness_log_wait(h, why, before + 1, HARNESS_DEADLINE);
    assert_int_equal(waitpid(h->daemon, NULL, WNOHANG), 0); /* still running */
    d = harness_show("res.usr2");
    assert_int_equal(d->n_holders, 1);
    assert_int_equal(d->holders[0].pid, getpid());
    pt_inspect_detail_free(d);
    assert_int_equal(release_status(&rc, handle), 0); /* on the same connection */
    raw_close(&rc);
}

/* Without --state-dir a new image would start empty. */
static void test_sigusr2_refused_without_state(void **state)
{
    harness *h = *state;

    sigusr2_refused(h, "SIGUSR2 ignored: without --state-dir");
    h->passed = 1;
}

/* Under systemd the manager restarts the daemon, not SIGUSR2. Nobody
 * listens on the notify socket: the daemon warns and goes on. */
static void test_sigusr2_refused_under_systemd(void **state)
{
    harness *h = *state;
    char notify[200];
    const char *env[] = {notify, NULL};

    snprintf(notify, sizeof(notify), "NOTIFY_SOCKET=%s/notify", h->dir);
    h->daemon_env = env;
    daemon_restart(h, "10");
    sigusr2_refused(h, "SIGUSR2 ignored: under systemd");
    h->passed = 1;
}

static void file_copy(const char *from, const char *to, mode_t mode)
{
    char buf[65536];
    int in = open(from, O_RDONLY | O_CLOEXEC);
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    ssize_t n;

    assert_true(in >= 0 && out >= 0);
    while ((n = read(in, buf, sizeof(buf))) > 0)
        assert_int_equal(write(out, buf, (size_t)n), n);
    assert_int_equal(n, 0);
    close(in);
    assert_int_equal(close(out), 0);
}

/* The daemon runs from a copy of its program that can no longer be run
 * (no execute bit, then gone): an upgrade would end it, so it is refused,
 * and the daemon serves on with its state. */
static void test_sigusr2_refused_when_program_not_runnable(void **state)
{
    harness *h = *state;
    char copy[200], why[300];

    snprintf(copy, sizeof(copy), "%s/pythreadd-copy", h->dir);
    file_copy(harness_daemon_program(), copy, 0755);
    h->daemon_path = copy;
    daemon_restart(h, "10");
    assert_int_equal(chmod(copy, 0644), 0);
    snprintf(why, sizeof(why), "SIGUSR2 ignored: cannot run %s: %s", copy, strerror(EACCES));
    sigusr2_refused(h, why);
    assert_int_equal(unlink(copy), 0);
    snprintf(why, sizeof(why), "SIGUSR2 ignored: cannot run %s: %s", copy, strerror(ENOENT));
    sigusr2_refused(h, why);
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
 * res.lock, then for the session to be settled. It polls a duplicate of
 * the connection's descriptor: the reader may close its own and a new
 * connection take the same number before this thread gets to poll, and
 * the duplicate still names the ended socket. */
static int session_waiter(pt_client *c, int index, void *arg)
{
    uint64_t sid = pt_client_session_id(c);
    struct pollfd p = {.fd = dup(pt_client_fd(c)), .events = POLLRDHUP};
    pthread_t t;
    pt_lock *l;

    (void)index, (void)arg;
    WCHECK(p.fd >= 0);
    WCHECK_EQ(pt_lock_open(c, "res.lock", 0, 0, &l), 0);
    WCHECK_EQ(pthread_create(&t, NULL, acquire_thread, l), 0);
    WCHECK_EQ(poll(&p, 1, 30000), 1);
    close(p.fd);
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

/* ---- pt_client_loss_fd ---- */

/* 1 when fd turns readable within timeout seconds. */
static int readable_within(int fd, double timeout)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    double end = harness_now() + timeout;

    do {
        if (poll(&p, 1, 10) > 0)
            return (p.revents & POLLIN) != 0;
    } while (harness_now() < end);
    return 0;
}

/* What descriptor fd of this process is ("anon_inode:[eventfd]"). */
static void fd_what(int fd, char *buf, size_t len)
{
    char path[64];
    ssize_t n;

    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    n = readlink(path, buf, len - 1);
    buf[n > 0 ? n : 0] = '\0';
}

/* The loss descriptor stays quiet, and stays what it was, across a
 * restart that keeps the session, though the library's own thread closed
 * the socket under it and connected again; with no call made, it turns
 * readable when the session is lost (the daemon came back without its
 * state). pythreadctl lock polled the socket's number instead, and once
 * polled, and closed in its guard, a pipe that had taken that number. */
static void test_loss_fd_tells_only_a_loss(void **state)
{
    harness *h = *state;
    pt_client *c = NULL;
    pt_lock *l = NULL;
    char what[64];
    uint64_t sid;
    int lf;

    state_start(h);
    PT_ASSERT_EQ(pt_client_loss_fd(NULL), PT_EINVAL);
    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    PT_ASSERT_EQ(pt_lock_open(c, "res.loss", 0, 0, &l), 0);
    PT_ASSERT_EQ(pt_lock_acquire(l, 1, PT_FOREVER), 1);
    PT_ASSERT_OK(lf = pt_client_loss_fd(c));
    PT_ASSERT_EQ(pt_client_loss_fd(c), lf);
    sid = pt_client_session_id(c);
    daemon_restart(h, "10");
    PT_ASSERT_OK(pt_client_session_wait(c, sid));
    assert_int_equal(readable_within(lf, 0.05), 0);
    fd_what(lf, what, sizeof(what));
    assert_string_equal(what, "anon_inode:[eventfd]");
    PT_ASSERT_EQ(pt_lock_locked(l), 1);
    daemon_kill9(h);
    h->daemon_args = NULL;
    harness_daemon_start(h);
    assert_true(readable_within(lf, HARNESS_DEADLINE));
    PT_ASSERT_EQ(pt_client_session_wait(c, sid), PT_ESESSION); /* the loss, told */
    PT_ASSERT_EQ(pt_lock_locked(l), 0); /* on a new session: nobody holds it */
    pt_lock_close(l);
    pt_client_close(c);
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
        cmocka_unit_test_setup_teardown(test_resume_refused_wrong_key_and_twice, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_resume_refused_to_another_process, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_resume_refused_to_another_user, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_resume_refused_after_grace, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_answers_kept_oldest_goes_first, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_sigusr2_refused_without_state, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_sigusr2_refused_under_systemd, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_sigusr2_refused_when_program_not_runnable,
                                        harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_loss_fd_tells_only_a_loss, harness_setup,
                                        harness_teardown),
    };

    return cmocka_run_group_tests_name("integration.resume", tests, NULL, NULL);
}
