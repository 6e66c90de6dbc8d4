/*
 * The client library's promises: threads sharing one pt_client block
 * independently, a forked child gets its own session, and a lost daemon is
 * reported once as PT_ESESSION before the next call reconnects.
 */
#include "harness.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Join a thread within timeout seconds; 0 when joined. */
static int join_within(pthread_t t, double timeout)
{
    struct timespec ts;
    double when;

    clock_gettime(CLOCK_REALTIME, &ts);
    when = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + timeout;
    ts.tv_sec = (time_t)when;
    ts.tv_nsec = (long)((when - (double)ts.tv_sec) * 1e9);
    return pthread_timedjoin_np(t, NULL, &ts);
}

/* ---- two threads on one client ---- */

typedef struct blocked_arg {
    pt_lock *l;
    atomic_int result;
} blocked_arg;

static void *blocked_acquire(void *p)
{
    blocked_arg *a = p;

    atomic_store(&a->result, pt_lock_acquire(a->l, 1, PT_FOREVER));
    return NULL;
}

typedef struct busy_arg {
    pt_client *c;
    atomic_int done;
    int failed_step;
    int failed_rc;
} busy_arg;

#define BUSY_STEP(n, expr, want)                                                                   \
    do {                                                                                           \
        int busy_rc_ = (expr);                                                                     \
        if (busy_rc_ != (want)) {                                                                  \
            a->failed_step = (n);                                                                  \
            a->failed_rc = busy_rc_;                                                               \
            return NULL;                                                                           \
        }                                                                                          \
    } while (0)

/* Calls of every kind while another thread of this client is blocked. */
static void *busy_calls(void *p)
{
    busy_arg *a = p;
    pt_lock *l = NULL;
    pt_event *e = NULL;

    BUSY_STEP(1, pt_lock_open(a->c, "it.client.free", 0, 0, &l), 0);
    BUSY_STEP(2, pt_event_open(a->c, "it.client.flag", 0, 0, &e), 0);
    for (int i = 0; i < 100; i++) {
        BUSY_STEP(3, pt_lock_acquire(l, 1, PT_FOREVER), 1);
        BUSY_STEP(4, pt_lock_release(l), 0);
        BUSY_STEP(5, pt_event_set(e), 0);
        BUSY_STEP(6, pt_event_is_set(e), 1);
        BUSY_STEP(7, pt_event_clear(e), 0);
    }
    BUSY_STEP(8, pt_event_close(e), 0);
    BUSY_STEP(9, pt_lock_close(l), 0);
    atomic_store(&a->done, 1);
    return NULL;
}

static void test_threads_block_independently(void **state)
{
    harness *h = *state;
    pt_client *c = NULL, *other = NULL;
    pt_lock *held = NULL;
    /* On the heap: if the test fails, threads still running touch no dead
     * stack frame (they are left behind, and so is this memory). */
    blocked_arg *pba = calloc(1, sizeof *pba);
    busy_arg *pbu = calloc(1, sizeof *pbu);
    pthread_t tb, tu;

    assert_true(pba && pbu);
    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    PT_ASSERT_EQ(pt_client_open(&other, NULL), 0);
    PT_ASSERT_EQ(pt_lock_open(other, "it.client.busy", 0, 0, &held), 0);
    PT_ASSERT_EQ(pt_lock_acquire(held, 1, PT_FOREVER), 1);
    PT_ASSERT_EQ(pt_lock_open(c, "it.client.busy", 0, 0, &pba->l), 0);
    atomic_store(&pba->result, 99);

    assert_int_equal(pthread_create(&tb, NULL, blocked_acquire, pba), 0);
    harness_wait_waiters(h, "it.client.busy", PT_KIND_LOCK, 1, HARNESS_DEADLINE);

    pbu->c = c;
    assert_int_equal(pthread_create(&tu, NULL, busy_calls, pbu), 0);
    if (join_within(tu, HARNESS_DEADLINE) != 0) {
        /* Unblock the waiter so the stuck calls can finish, then report. */
        pt_lock_release(held);
        pthread_join(tu, NULL);
        pthread_join(tb, NULL);
        fail_msg("calls on a pt_client did not complete within %.0f s while another thread of "
                 "it was blocked in acquire",
                 HARNESS_DEADLINE);
    }
    if (!atomic_load(&pbu->done)) {
        pt_lock_release(held);
        pthread_join(tb, NULL);
        fail_msg("while another thread was blocked, step %d failed with %d (%s)", pbu->failed_step,
                 pbu->failed_rc, pt_err_name(pbu->failed_rc));
    }
    assert_int_equal(atomic_load(&pba->result), 99); /* still blocked */

    PT_ASSERT_EQ(pt_lock_release(held), 0);
    if (join_within(tb, HARNESS_DEADLINE) != 0)
        fail_msg("the blocked acquire did not return within %.0f s of the release",
                 HARNESS_DEADLINE);
    PT_ASSERT_EQ(atomic_load(&pba->result), 1);
    PT_ASSERT_EQ(pt_lock_release(pba->l), 0);
    PT_ASSERT_EQ(pt_lock_close(pba->l), 0);
    PT_ASSERT_EQ(pt_lock_close(held), 0);
    pt_client_close(other);
    pt_client_close(c);
    free(pba);
    free(pbu);
    h->passed = 1;
}

/* ---- a forked child using the parent's client ---- */

typedef struct fork_env {
    pt_client *c;
    pt_lock *l;
    pt_rlock *r;
} fork_env;

/* Child of a process holding l and r, using the inherited client and
 * handles: they work, in a session of its own. */
static int child_on_inherited_handles(int index, void *arg)
{
    fork_env *env = arg;

    WCHECK_EQ(pt_lock_locked(env->l), 1);
    WCHECK_EQ(pt_lock_acquire(env->l, 0, PT_FOREVER), 0);
    WCHECK_EQ(pt_rlock_is_owned(env->r), 0);
    WCHECK_EQ(pt_rlock_release(env->r), PT_ERUNTIME);
    WCHECK_EQ(pt_rlock_acquire(env->r, 0, PT_FOREVER), 0);
    if (index == 1)
        pt_client_close(env->c); /* closes only the child's session */
    exit(0);                     /* atexit handlers run, as in a real program */
}

/* Same through a handle the child opens on the inherited client. */
static int child_on_new_handle(int index, void *arg)
{
    fork_env *env = arg;
    pt_rlock *r = NULL;

    (void)index;
    WCHECK_EQ(pt_rlock_open(env->c, "it.client.rlock", 0, 0, &r), 0);
    WCHECK_EQ(pt_rlock_is_owned(r), 0);
    WCHECK_EQ(pt_rlock_release(r), PT_ERUNTIME);
    WCHECK_EQ(pt_rlock_locked(r), 1);
    WCHECK_EQ(pt_rlock_close(r), 0);
    exit(0);
}

static void parent_still_holds(harness *h, fork_env *env)
{
    pt_client *probe = NULL;
    pt_lock *l = NULL;

    /* The parent's own session is intact... */
    PT_ASSERT_EQ(pt_lock_locked(env->l), 1);
    PT_ASSERT_EQ(pt_rlock_is_owned(env->r), 1);
    /* ...and another session sees the lock still taken. */
    PT_ASSERT_EQ(pt_client_open(&probe, h->sock), 0);
    PT_ASSERT_EQ(pt_lock_open(probe, "it.client.lock", 0, 0, &l), 0);
    PT_ASSERT_EQ(pt_lock_acquire(l, 0, PT_FOREVER), 0);
    PT_ASSERT_EQ(pt_lock_close(l), 0);
    pt_client_close(probe);
}

static void fork_setup_objects(fork_env *env)
{
    PT_ASSERT_EQ(pt_client_open(&env->c, NULL), 0);
    PT_ASSERT_EQ(pt_lock_open(env->c, "it.client.lock", 0, 0, &env->l), 0);
    PT_ASSERT_EQ(pt_rlock_open(env->c, "it.client.rlock", 0, 0, &env->r), 0);
    PT_ASSERT_EQ(pt_lock_acquire(env->l, 1, PT_FOREVER), 1);
    PT_ASSERT_EQ(pt_rlock_acquire(env->r, 1, PT_FOREVER), 1);
}

static void fork_release_objects(fork_env *env)
{
    PT_ASSERT_EQ(pt_rlock_release(env->r), 0);
    PT_ASSERT_EQ(pt_lock_release(env->l), 0);
    PT_ASSERT_EQ(pt_rlock_close(env->r), 0);
    PT_ASSERT_EQ(pt_lock_close(env->l), 0);
    pt_client_close(env->c);
}

static void test_fork_child_inherited_handles(void **state)
{
    harness *h = *state;
    fork_env env = {0};
    pid_t pid;

    fork_setup_objects(&env);
    for (int i = 0; i < 2; i++) {
        pid = harness_fork(h, child_on_inherited_handles, i, &env);
        harness_join(h, &pid, 1, HARNESS_DEADLINE);
        parent_still_holds(h, &env);
    }
    fork_release_objects(&env);
    h->passed = 1;
}

static void test_fork_child_new_handle(void **state)
{
    harness *h = *state;
    fork_env env = {0};
    pid_t pid;

    fork_setup_objects(&env);
    pid = harness_fork(h, child_on_new_handle, 0, &env);
    harness_join(h, &pid, 1, HARNESS_DEADLINE);
    parent_still_holds(h, &env);
    fork_release_objects(&env);
    h->passed = 1;
}

/* ---- the daemon goes away ---- */

static void test_daemon_restart_esession_once(void **state)
{
    harness *h = *state;
    pt_client *c = NULL;
    pt_lock *l = NULL, *l2 = NULL;

    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    PT_ASSERT_EQ(pt_lock_open(c, "it.client.restart", 0, 0, &l), 0);
    PT_ASSERT_EQ(pt_lock_acquire(l, 1, PT_FOREVER), 1);

    harness_daemon_stop(h);
    harness_daemon_start(h);

    /* Held locks are lost with the session; the caller learns it once. */
    PT_ASSERT_EQ(pt_lock_acquire(l, 0, PT_FOREVER), PT_ESESSION);
    if (!*pt_last_error_message())
        fail_msg("PT_ESESSION without a message for people");
    /* The next call reconnects; the new daemon has a fresh, free lock. */
    PT_ASSERT_EQ(pt_lock_acquire(l, 0, PT_FOREVER), 1);
    PT_ASSERT_EQ(pt_lock_locked(l), 1);
    PT_ASSERT_EQ(pt_lock_release(l), 0);
    PT_ASSERT_EQ(pt_lock_open(c, "it.client.restart2", 0, 0, &l2), 0);
    PT_ASSERT_EQ(pt_lock_acquire(l2, 1, PT_FOREVER), 1);
    PT_ASSERT_EQ(pt_lock_release(l2), 0);
    PT_ASSERT_EQ(pt_lock_close(l2), 0);
    PT_ASSERT_EQ(pt_lock_close(l), 0);
    pt_client_close(c);
    h->passed = 1;
}

/* A call blocked when the daemon goes away returns PT_ESESSION at once. */
static void test_blocked_call_sees_esession(void **state)
{
    harness *h = *state;
    pt_client *c = NULL, *other = NULL;
    pt_lock *held = NULL;
    blocked_arg *pba = calloc(1, sizeof *pba); /* outlives a failed test */
    pthread_t tb;

    assert_non_null(pba);
    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    PT_ASSERT_EQ(pt_client_open(&other, NULL), 0);
    PT_ASSERT_EQ(pt_lock_open(other, "it.client.gone", 0, 0, &held), 0);
    PT_ASSERT_EQ(pt_lock_acquire(held, 1, PT_FOREVER), 1);
    PT_ASSERT_EQ(pt_lock_open(c, "it.client.gone", 0, 0, &pba->l), 0);
    atomic_store(&pba->result, 99);
    assert_int_equal(pthread_create(&tb, NULL, blocked_acquire, pba), 0);
    harness_wait_waiters(h, "it.client.gone", PT_KIND_LOCK, 1, HARNESS_DEADLINE);

    harness_daemon_stop(h);
    if (join_within(tb, HARNESS_DEADLINE) != 0)
        fail_msg("a call blocked in acquire did not return within %.0f s of the daemon's exit",
                 HARNESS_DEADLINE);
    PT_ASSERT_EQ(atomic_load(&pba->result), PT_ESESSION);
    pt_lock_close(pba->l);
    pt_lock_close(held);
    pt_client_close(other);
    pt_client_close(c);
    free(pba);
    h->passed = 1;
}

/* ---- RLock ownership is per thread, even within one client ---- */

typedef struct thread_owner_arg {
    pt_rlock *r;
    int not_owned, release, try_acquire, acquire, owned_after, release_after;
} thread_owner_arg;

static void *other_thread_on_rlock(void *p)
{
    thread_owner_arg *a = p;

    a->not_owned = pt_rlock_is_owned(a->r);
    a->release = pt_rlock_release(a->r);
    a->try_acquire = pt_rlock_acquire(a->r, 0, PT_FOREVER);
    a->acquire = pt_rlock_acquire(a->r, 1, PT_FOREVER); /* waits for the main thread */
    a->owned_after = pt_rlock_is_owned(a->r);
    a->release_after = pt_rlock_release(a->r);
    return NULL;
}

static void test_rlock_owner_is_the_thread(void **state)
{
    harness *h = *state;
    thread_owner_arg *a = calloc(1, sizeof *a); /* outlives a failed test */
    pt_client *c = NULL;
    pthread_t t;

    assert_non_null(a);
    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    PT_ASSERT_EQ(pt_rlock_open(c, "it.client.owner", 0, 0, &a->r), 0);
    PT_ASSERT_EQ(pt_rlock_acquire(a->r, 1, PT_FOREVER), 1);
    assert_int_equal(pthread_create(&t, NULL, other_thread_on_rlock, a), 0);
    harness_wait_waiters(h, "it.client.owner", PT_KIND_RLOCK, 1, HARNESS_DEADLINE);
    PT_ASSERT_EQ(pt_rlock_is_owned(a->r), 1);
    PT_ASSERT_EQ(pt_rlock_release(a->r), 0);
    if (join_within(t, HARNESS_DEADLINE) != 0)
        fail_msg("the other thread did not get the RLock within %.0f s of its release",
                 HARNESS_DEADLINE);
    PT_ASSERT_EQ(a->not_owned, 0);
    PT_ASSERT_EQ(a->release, PT_ERUNTIME);
    PT_ASSERT_EQ(a->try_acquire, 0);
    PT_ASSERT_EQ(a->acquire, 1);
    PT_ASSERT_EQ(a->owned_after, 1);
    PT_ASSERT_EQ(a->release_after, 0);
    PT_ASSERT_EQ(pt_rlock_locked(a->r), 0);
    PT_ASSERT_EQ(pt_rlock_close(a->r), 0);
    pt_client_close(c);
    free(a);
    h->passed = 1;
}

/* ---- fork while another thread is blocked inside the client ---- */

static int child_after_busy_fork(int index, void *arg)
{
    fork_env *env = arg;
    pt_lock *l = NULL;

    (void)index;
    /* Only the forking thread exists in the child; the client must not be
     * stuck on state the blocked parent thread held at the fork. */
    WCHECK_EQ(pt_lock_open(env->c, "it.client.afterfork", 0, 0, &l), 0);
    WCHECK_EQ(pt_lock_acquire(l, 1, PT_FOREVER), 1);
    WCHECK_EQ(pt_lock_release(l), 0);
    WCHECK_EQ(pt_lock_locked(env->l), 1); /* held by the parent's other session */
    WCHECK_EQ(pt_lock_close(l), 0);
    _exit(0);
}

static void test_fork_while_thread_blocked(void **state)
{
    harness *h = *state;
    blocked_arg *pba = calloc(1, sizeof *pba); /* outlives a failed test */
    pt_client *other = NULL;
    pt_lock *held = NULL;
    fork_env env = {0};
    pthread_t tb;
    pid_t pid;

    assert_non_null(pba);
    PT_ASSERT_EQ(pt_client_open(&env.c, NULL), 0);
    PT_ASSERT_EQ(pt_client_open(&other, NULL), 0);
    PT_ASSERT_EQ(pt_lock_open(other, "it.client.forkbusy", 0, 0, &held), 0);
    PT_ASSERT_EQ(pt_lock_acquire(held, 1, PT_FOREVER), 1);
    PT_ASSERT_EQ(pt_lock_open(env.c, "it.client.forkbusy", 0, 0, &pba->l), 0);
    env.l = pba->l;
    atomic_store(&pba->result, 99);
    assert_int_equal(pthread_create(&tb, NULL, blocked_acquire, pba), 0);
    harness_wait_waiters(h, "it.client.forkbusy", PT_KIND_LOCK, 1, HARNESS_DEADLINE);

    pid = harness_fork(h, child_after_busy_fork, 0, &env);
    harness_join(h, &pid, 1, HARNESS_DEADLINE);

    /* The parent's blocked call is undisturbed and completes normally. */
    assert_int_equal(atomic_load(&pba->result), 99);
    PT_ASSERT_EQ(pt_lock_release(held), 0);
    if (join_within(tb, HARNESS_DEADLINE) != 0)
        fail_msg("the blocked acquire did not return within %.0f s of the release",
                 HARNESS_DEADLINE);
    PT_ASSERT_EQ(atomic_load(&pba->result), 1);
    PT_ASSERT_EQ(pt_lock_release(pba->l), 0);
    PT_ASSERT_EQ(pt_lock_close(pba->l), 0);
    PT_ASSERT_EQ(pt_lock_close(held), 0);
    pt_client_close(other);
    pt_client_close(env.c);
    free(pba);
    h->passed = 1;
}

/* ---- the daemon's words reach the caller ---- */

static void test_daemon_message_reaches_caller(void **state)
{
    harness *h = *state;
    pt_client *c = NULL;
    pt_lock *l = NULL, *bad = NULL;
    pt_semaphore *s = NULL;
    const char *msg;

    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    PT_ASSERT_EQ(pt_lock_open(c, "it.client.words", 0, 0, &l), 0);
    PT_ASSERT_EQ(pt_lock_release(l), PT_ERUNTIME);
    msg = pt_last_error_message();
    if (!strstr(msg, "it.client.words") || !strstr(msg, "release"))
        fail_msg("release of an unlocked Lock: the message \"%s\" should name the lock and the "
                 "operation",
                 msg);
    /* Opening the name as another kind says what exists. */
    PT_ASSERT_EQ(pt_semaphore_open(c, "it.client.words", 1, 0, 0, 0, &s), PT_EEXIST);
    msg = pt_last_error_message();
    if (!strstr(msg, "it.client.words") || !strstr(msg, "Lock"))
        fail_msg("open as another kind: the message \"%s\" should name the object and its kind",
                 msg);
    PT_ASSERT_EQ(pt_lock_open(c, "bad name!", 0, 0, &bad), PT_ENAME);
    PT_ASSERT_EQ(pt_lock_close(l), 0);
    pt_client_close(c);
    h->passed = 1;
}

/* pt_last_error_message() names the object and says what to do. */
static void cluster_refusal_told(const char *kind, const char *name)
{
    const char *msg = pt_last_error_message();
    char head[128];

    snprintf(head, sizeof(head), "%s '%s': open: a cluster object needs a daemon in a cluster",
             kind, name);
    if (!strstr(msg, head) || !strstr(msg, "--etcd ENDPOINTS"))
        fail_msg("cluster open on a daemon without --etcd: the message \"%s\" should start "
                 "\"%s\" and name --etcd ENDPOINTS",
                 msg, head);
}

/* A daemon without --etcd refuses PT_OPEN_CLUSTER for every kind, new
 * name or existing one, and the session serves on: the host's object of
 * that name is untouched. */
static void test_cluster_open_refused_without_etcd(void **state)
{
    harness *h = *state;
    const int f = PT_OPEN_CLUSTER;
    pt_client *c = NULL;
    pt_lock *l = NULL, *other = NULL;
    pt_rlock *rl = NULL;
    pt_condition *cv = NULL;
    pt_semaphore *s = NULL;
    pt_event *e = NULL;
    pt_barrier *b = NULL;

    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    PT_ASSERT_EQ(pt_lock_open(c, "it.cl.lock", 0, 0, &l), 0);
    PT_ASSERT_EQ(pt_lock_acquire(l, 1, PT_FOREVER), 1);
    PT_ASSERT_EQ(pt_lock_open(c, "it.cl.lock", f, 0, &other), PT_ERUNTIME);
    cluster_refusal_told("Lock", "it.cl.lock");
    PT_ASSERT_EQ(pt_lock_open(c, "it.cl.lock", f | PT_OPEN_EXISTING, 0, &other), PT_ERUNTIME);
    PT_ASSERT_EQ(pt_rlock_open(c, "it.cl.rlock", f, 0, &rl), PT_ERUNTIME);
    cluster_refusal_told("RLock", "it.cl.rlock");
    PT_ASSERT_EQ(pt_condition_open(c, "it.cl.cond", NULL, f, 0, &cv), PT_ERUNTIME);
    cluster_refusal_told("Condition", "it.cl.cond");
    PT_ASSERT_EQ(pt_semaphore_open(c, "it.cl.sem", 1, 1, f, 0, &s), PT_ERUNTIME);
    cluster_refusal_told("BoundedSemaphore", "it.cl.sem");
    PT_ASSERT_EQ(pt_event_open(c, "it.cl.event", f, 0, &e), PT_ERUNTIME);
    cluster_refusal_told("Event", "it.cl.event");
    PT_ASSERT_EQ(pt_barrier_open(c, "it.cl.barrier", 2, NULL, NULL, PT_FOREVER, f, 0, &b),
                 PT_ERUNTIME);
    cluster_refusal_told("Barrier", "it.cl.barrier");
    PT_ASSERT_EQ(pt_lock_locked(l), 1);
    PT_ASSERT_EQ(pt_unlink_cluster(c, "it.cl.lock"), PT_ERUNTIME);
    if (!strstr(pt_last_error_message(), "'it.cl.lock': unlink: cluster objects need a daemon "
                                         "in a cluster"))
        fail_msg("cluster unlink without --etcd: \"%s\"", pt_last_error_message());
    PT_ASSERT_EQ(pt_lock_locked(l), 1); /* the host's "it.cl.lock" is still there */
    PT_ASSERT_EQ(pt_lock_release(l), 0);
    PT_ASSERT_EQ(pt_lock_close(l), 0);
    PT_ASSERT_EQ(pt_lock_open(c, "it.cl.lock", PT_OPEN_EXISTING, 0, &l), 0);
    PT_ASSERT_EQ(pt_lock_close(l), 0);
    {
        pt_inspect_detail *d = NULL;

        PT_ASSERT_EQ(pt_inspect_cluster_show(c, "it.cl.lock", &d), PT_ERUNTIME);
        if (!strstr(pt_last_error_message(), "in no cluster"))
            fail_msg("cluster show without --etcd: \"%s\"", pt_last_error_message());
    }
    pt_client_close(c);
    h->passed = 1;
}

/* Down for a while: the loss is reported once, then each call says it cannot
 * connect, and calls work again as soon as a daemon is back. */
static void test_daemon_down_then_back(void **state)
{
    harness *h = *state;
    pt_client *c = NULL, *late = NULL;
    pt_lock *l = NULL;

    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    /* Requests, to see each report: through the shared word locked() reads
     * the last daemon's word until a request notices the loss. */
    PT_ASSERT_EQ(pt_lock_open(c, "it.client.down", PT_OPEN_NOFAST, 0, &l), 0);
    PT_ASSERT_EQ(pt_lock_acquire(l, 1, PT_FOREVER), 1);
    harness_daemon_stop(h);

    PT_ASSERT_EQ(pt_lock_locked(l), PT_ESESSION);
    PT_ASSERT_EQ(pt_lock_locked(l), PT_ECONNECT);
    if (!strstr(pt_last_error_message(), h->sock))
        fail_msg("PT_ECONNECT: the message \"%s\" should name the socket %s",
                 pt_last_error_message(), h->sock);
    PT_ASSERT_EQ(pt_lock_locked(l), PT_ECONNECT);
    PT_ASSERT_EQ(pt_client_open(&late, NULL), PT_ECONNECT);

    harness_daemon_start(h);
    PT_ASSERT_EQ(pt_lock_locked(l), 0);
    PT_ASSERT_EQ(pt_lock_acquire(l, 1, PT_FOREVER), 1);
    PT_ASSERT_EQ(pt_lock_release(l), 0);
    PT_ASSERT_EQ(pt_lock_close(l), 0);
    pt_client_close(c);
    h->passed = 1;
}

/* ---- watching the session: pt_client_fd ---- */

/* Poll fd for the session's end until the deadline; the events seen. */
static short hangup_within(int fd, double timeout)
{
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    double end = harness_now() + timeout;

    do {
        if (poll(&p, 1, 10) > 0)
            return p.revents;
    } while (harness_now() < end);
    return 0;
}

/* A forked child has no session until its first call. */
static int child_without_session(int index, void *arg)
{
    pt_client *c = arg;

    (void)index;
    WCHECK_EQ(pt_client_fd(c), PT_ESESSION);
    return 0;
}

static void test_client_fd_sees_daemon_end(void **state)
{
    harness *h = *state;
    pt_client *c = NULL;
    pt_lock *l = NULL;
    pid_t pid;
    int fd;

    PT_ASSERT_EQ(pt_client_fd(NULL), PT_EINVAL);
    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    PT_ASSERT_EQ(pt_lock_open(c, "it.client.fd", PT_OPEN_NOFAST, 0, &l), 0);
    PT_ASSERT_EQ(pt_lock_acquire(l, 1, PT_FOREVER), 1);
    PT_ASSERT_OK(fd = pt_client_fd(c));
    pid = harness_fork(h, child_without_session, 0, c);
    harness_join(h, &pid, 1, HARNESS_DEADLINE);
    /* A session that lasts is quiet, calls and all. */
    assert_int_equal(hangup_within(fd, 0.05), 0);
    PT_ASSERT_EQ(pt_lock_locked(l), 1);
    assert_int_equal(hangup_within(fd, 0.05), 0);

    harness_daemon_stop(h);
    if (!(hangup_within(fd, HARNESS_DEADLINE) & (POLLRDHUP | POLLHUP)))
        fail_msg("no hang-up on the session's descriptor within %.0f s of the daemon's exit",
                 HARNESS_DEADLINE);
    PT_ASSERT_EQ(pt_lock_locked(l), PT_ESESSION);
    PT_ASSERT_EQ(pt_client_fd(c), PT_ESESSION);

    harness_daemon_start(h);
    PT_ASSERT_EQ(pt_lock_locked(l), 0);
    PT_ASSERT_OK(fd = pt_client_fd(c));
    assert_int_equal(hangup_within(fd, 0.05), 0);
    PT_ASSERT_EQ(pt_lock_close(l), 0);
    pt_client_close(c);
    h->passed = 1;
}

#define CLIENT_TEST(fn) cmocka_unit_test_setup_teardown(fn, harness_setup, harness_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        CLIENT_TEST(test_threads_block_independently),
        CLIENT_TEST(test_rlock_owner_is_the_thread),
        CLIENT_TEST(test_fork_child_inherited_handles),
        CLIENT_TEST(test_fork_child_new_handle),
        CLIENT_TEST(test_fork_while_thread_blocked),
        CLIENT_TEST(test_daemon_message_reaches_caller),
        CLIENT_TEST(test_daemon_restart_esession_once),
        CLIENT_TEST(test_daemon_down_then_back),
        CLIENT_TEST(test_blocked_call_sees_esession),
        CLIENT_TEST(test_client_fd_sees_daemon_end),
        CLIENT_TEST(test_cluster_open_refused_without_etcd),
    };

    return cmocka_run_group_tests_name("integration: client", tests, NULL, NULL);
}
