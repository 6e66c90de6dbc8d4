/*
 * The client against a real pythreadd on a temporary socket: every function,
 * threads of one process blocking independently, a forked child's own
 * session (finding only the objects its parent had), and a daemon that dies
 * (the pending calls fail with PT_ESESSION) and comes back (the next call
 * reconnects and opens the objects again).
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "pythread.h"

#define DEADLINE 10.0

static char dir[64], sock[128], logpath[128];
static pid_t daemon_pid;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void tick(void)
{
    struct timespec ts = {0, 1000000};

    nanosleep(&ts, NULL);
}

/* Start pythreadd on path (with one extra option, or NULL) and wait until it
 * answers. */
static pid_t daemon_spawn(const char *path, const char *option)
{
    double end = now_s() + DEADLINE;
    pt_client *c;
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);

        if (fd >= 0)
            dup2(fd, 2);
        execl(PT_DAEMON_PATH, "pythreadd", "--socket", path, option, (char *)NULL);
        _exit(127);
    }
    while (pt_client_open(&c, path) < 0) {
        assert_true(now_s() < end);
        tick();
    }
    pt_client_close(c);
    return pid;
}

static void daemon_start(void)
{
    daemon_pid = daemon_spawn(sock, NULL);
}

static void daemon_kill(int sig)
{
    int status;

    kill(daemon_pid, sig);
    assert_int_equal(waitpid(daemon_pid, &status, 0), daemon_pid);
    daemon_pid = 0;
}

static int group_setup(void **state)
{
    const char *tmp = getenv("TMPDIR");

    (void)state;
    snprintf(dir, sizeof(dir), "%s/ptcliXXXXXX", tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return -1;
    snprintf(sock, sizeof(sock), "%s/d.sock", dir);
    snprintf(logpath, sizeof(logpath), "%s/d.log", dir);
    signal(SIGPIPE, SIG_IGN);
    daemon_start();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (daemon_pid > 0)
        daemon_kill(SIGTERM);
    unlink(sock);
    unlink(logpath);
    rmdir(dir);
    return 0;
}

static int setup(void **state)
{
    pt_client *c;

    if (pt_client_open(&c, sock) < 0)
        return -1;
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    pt_client_close(*state);
    return 0;
}

/* A name no other test uses. */
static const char *uname_(const char *base)
{
    static char buf[8][64];
    static int n;
    char *b = buf[n++ % 8];

    snprintf(b, 64, "%s.%ld.%d", base, (long)getpid(), n);
    return b;
}

/* ------------------------------------------------------------------ */
/* Every function                                                      */
/* ------------------------------------------------------------------ */

static void test_lock(void **state)
{
    pt_client *c = *state;
    uint64_t t1 = 0, t2 = 0;
    pt_lock *l;
    double start;

    assert_int_equal(pt_lock_open(c, uname_("lock"), 0, 0, &l), 0);
    assert_int_equal(pt_lock_locked(l), 0);
    assert_int_equal(pt_lock_acquire_fenced(l, 1, PT_FOREVER, &t1), 1);
    assert_int_equal(pt_lock_locked(l), 1);
    assert_int_equal(pt_lock_acquire(l, 0, PT_FOREVER), 0);
    start = now_s();
    assert_int_equal(pt_lock_acquire(l, 1, 0.05), 0);
    assert_true(now_s() - start >= 0.05);
    assert_int_equal(pt_lock_release(l), 0);
    assert_int_equal(pt_lock_release(l), PT_ERUNTIME);
    assert_non_null(strstr(pt_last_error_message(), "Lock '"));
    assert_int_equal(pt_lock_acquire(l, 0, 1.0), PT_EINVAL);
    assert_int_equal(pt_lock_acquire(l, 1, -2.0), PT_EINVAL);
    assert_int_equal(pt_lock_acquire(l, 1, 1e10), PT_EOVERFLOW);
    assert_int_equal(pt_lock_acquire_fenced(l, 1, 1.0, &t2), 1);
    assert_true(t2 > t1);
    assert_int_equal(pt_lock_release(l), 0);
    assert_int_equal(pt_lock_close(l), 0);
}

typedef struct worker {
    pt_client *c;
    pt_lock *l;
    pt_rlock *r;
    int result;
    atomic_int done;
} worker;

static void *rlock_release_other(void *arg)
{
    worker *w = arg;

    w->result = pt_rlock_release(w->r);
    return NULL;
}

static void test_rlock(void **state)
{
    pt_client *c = *state;
    uint64_t t1 = 0, t2 = 0;
    worker w = {0};
    pthread_t t;

    assert_int_equal(pt_rlock_open(c, uname_("rlock"), 0, 0, &w.r), 0);
    assert_int_equal(pt_rlock_is_owned(w.r), 0);
    assert_int_equal(pt_rlock_acquire_fenced(w.r, 1, PT_FOREVER, &t1), 1);
    assert_int_equal(pt_rlock_acquire_fenced(w.r, 1, PT_FOREVER, &t2), 1);
    assert_true(t1 == t2); /* a nested acquire keeps the holding's token */
    assert_int_equal(pt_rlock_is_owned(w.r), 1);
    assert_int_equal(pt_rlock_locked(w.r), 1);
    pthread_create(&t, NULL, rlock_release_other, &w);
    pthread_join(t, NULL);
    assert_int_equal(w.result, PT_ERUNTIME); /* not the owner */
    assert_int_equal(pt_rlock_release(w.r), 0);
    assert_int_equal(pt_rlock_is_owned(w.r), 1);
    assert_int_equal(pt_rlock_release(w.r), 0);
    assert_int_equal(pt_rlock_is_owned(w.r), 0);
    assert_int_equal(pt_rlock_release(w.r), PT_ERUNTIME);
    assert_int_equal(pt_rlock_close(w.r), 0);
}

typedef struct cvctx {
    pt_condition *cv;
    pt_semaphore *flag; /* the shared "state" the predicate reads */
    int result;
} cvctx;

static int flag_up(void *arg)
{
    cvctx *x = arg;
    int64_t v = 0;

    return pt_semaphore_value(x->flag, &v) == 0 && v > 0 ? 7 : 0;
}

static void *cv_setter(void *arg)
{
    cvctx *x = arg;

    if (pt_condition_acquire(x->cv, 1, PT_FOREVER) != 1) {
        x->result = -100;
        return NULL;
    }
    pt_semaphore_release(x->flag, 1);
    x->result = pt_condition_notify_all(x->cv);
    pt_condition_release(x->cv);
    return NULL;
}

static void test_condition(void **state)
{
    pt_client *c = *state;
    cvctx x = {0};
    pt_rlock *rl;
    pt_lock *pl;
    pt_condition *over_rlock, *over_lock;
    pthread_t t;

    assert_int_equal(pt_condition_open(c, uname_("cv"), NULL, 0, 0, &x.cv), 0);
    assert_int_equal(pt_semaphore_open(c, uname_("flag"), 0, 0, 0, 0, &x.flag), 0);

    /* Without the lock: RuntimeError, for notify(0) too. */
    assert_int_equal(pt_condition_wait(x.cv, 0.01), PT_ERUNTIME);
    assert_int_equal(pt_condition_notify(x.cv, 1), PT_ERUNTIME);
    assert_int_equal(pt_condition_notify(x.cv, 0), PT_ERUNTIME);
    assert_int_equal(pt_condition_notify_all(x.cv), PT_ERUNTIME);

    assert_int_equal(pt_condition_acquire(x.cv, 1, PT_FOREVER), 1);
    assert_int_equal(pt_condition_acquire(x.cv, 1, PT_FOREVER), 1); /* its own RLock */
    assert_int_equal(pt_condition_notify(x.cv, 0), 0);
    assert_int_equal(pt_condition_wait(x.cv, 0.02), 0);
    assert_int_equal(pt_condition_wait(x.cv, -5), 0);
    assert_int_equal(pt_condition_wait_for(x.cv, flag_up, &x, 0.02), 0);
    pthread_create(&t, NULL, cv_setter, &x);
    assert_int_equal(pt_condition_wait_for(x.cv, flag_up, &x, DEADLINE), 7);
    assert_int_equal(pt_condition_release(x.cv), 0);
    assert_int_equal(pt_condition_release(x.cv), 0);
    assert_int_equal(pt_condition_release(x.cv), PT_ERUNTIME);
    pthread_join(t, NULL);
    assert_int_equal(x.result, 0);

    /* Over named locks: the RLock by its owner, the Lock by being locked. */
    assert_int_equal(pt_rlock_open(c, uname_("cvr"), 0, 0, &rl), 0);
    assert_int_equal(pt_condition_open(c, uname_("cv2"), pt_rlock_as_object(rl), 0, 0, &over_rlock),
                     0);
    assert_int_equal(pt_rlock_acquire(rl, 1, PT_FOREVER), 1);
    assert_int_equal(pt_condition_notify(over_rlock, 0), 0);
    assert_int_equal(pt_condition_notify(over_rlock, 2), 0);
    assert_int_equal(pt_condition_wait(over_rlock, 0.01), 0);
    assert_int_equal(pt_rlock_is_owned(rl), 1);
    assert_int_equal(pt_rlock_release(rl), 0);

    assert_int_equal(pt_lock_open(c, uname_("cvl"), 0, 0, &pl), 0);
    assert_int_equal(pt_condition_open(c, uname_("cv3"), pt_lock_as_object(pl), 0, 0, &over_lock),
                     0);
    assert_int_equal(pt_condition_notify(over_lock, 0), PT_ERUNTIME);
    assert_int_equal(pt_lock_acquire(pl, 1, PT_FOREVER), 1);
    assert_int_equal(pt_condition_notify(over_lock, 0), 0);
    assert_int_equal(pt_condition_wait(over_lock, 0.01), 0);
    assert_int_equal(pt_lock_locked(pl), 1);
    assert_int_equal(pt_lock_release(pl), 0);

    assert_int_equal(pt_rlock_close(rl), 0); /* kept open by its condition */
    assert_int_equal(pt_condition_notify(over_rlock, 0), PT_ERUNTIME);
    assert_int_equal(pt_condition_close(over_rlock), 0);
    assert_int_equal(pt_condition_close(over_lock), 0);
    assert_int_equal(pt_lock_close(pl), 0);
    assert_int_equal(pt_condition_close(x.cv), 0);
    assert_int_equal(pt_semaphore_close(x.flag), 0);
}

static void test_semaphore(void **state)
{
    pt_client *c = *state;
    pt_semaphore *s, *b, *bad = NULL;
    int64_t v = -1;

    assert_int_equal(pt_semaphore_open(c, uname_("sem"), -1, 0, 0, 0, &bad), PT_EINVAL);
    assert_null(bad);
    assert_int_equal(pt_semaphore_open(c, uname_("sem"), 2, 0, 0, 0, &s), 0);
    assert_int_equal(pt_semaphore_value(s, &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(pt_semaphore_acquire(s, 1, PT_FOREVER), 1);
    assert_int_equal(pt_semaphore_acquire(s, 0, PT_FOREVER), 1);
    assert_int_equal(pt_semaphore_acquire(s, 0, PT_FOREVER), 0);
    assert_int_equal(pt_semaphore_acquire(s, 1, 0.02), 0);
    assert_int_equal(pt_semaphore_acquire(s, 0, 1.0), PT_EINVAL);
    assert_int_equal(pt_semaphore_release(s, 5), 0); /* a plain Semaphore has no bound */
    assert_int_equal(pt_semaphore_value(s, &v), 0);
    assert_int_equal(v, 5);
    assert_int_equal(pt_semaphore_close(s), 0);

    assert_int_equal(pt_semaphore_open(c, uname_("bsem"), 1, 1, 0, 0, &b), 0);
    assert_int_equal(pt_semaphore_release(b, 1), PT_EINVAL);
    assert_int_equal(pt_semaphore_acquire(b, 1, PT_FOREVER), 1);
    assert_int_equal(pt_semaphore_release(b, 2), PT_EINVAL);
    assert_int_equal(pt_semaphore_release(b, 1), 0);
    assert_int_equal(pt_semaphore_close(b), 0);
}

static void test_event(void **state)
{
    pt_client *c = *state;
    pt_event *e;

    assert_int_equal(pt_event_open(c, uname_("ev"), 0, 0, &e), 0);
    assert_int_equal(pt_event_is_set(e), 0);
    assert_int_equal(pt_event_wait(e, 0.02), 0);
    assert_int_equal(pt_event_set(e), 0);
    assert_int_equal(pt_event_is_set(e), 1);
    assert_int_equal(pt_event_wait(e, PT_FOREVER), 1);
    assert_int_equal(pt_event_clear(e), 0);
    assert_int_equal(pt_event_wait(e, 0), 0);
    assert_int_equal(pt_event_close(e), 0);
}

typedef struct party {
    pt_barrier *b;
    int index;
} party;

static atomic_int action_runs;

static int barrier_action(void *arg)
{
    (void)arg;
    atomic_fetch_add(&action_runs, 1);
    return 0;
}

static void *barrier_party(void *arg)
{
    party *p = arg;

    p->index = pt_barrier_wait(p->b, PT_FOREVER);
    return NULL;
}

static void test_barrier(void **state)
{
    pt_client *c = *state;
    party p[3];
    pthread_t t[3];
    pt_barrier *b;
    int seen = 0, i, round;
    double end;

    assert_int_equal(
        pt_barrier_open(c, uname_("bar"), 3, barrier_action, NULL, PT_FOREVER, 0, 0, &b), 0);
    assert_int_equal(pt_barrier_parties(b), 3);
    for (round = 0; round < 3; round++) {
        seen = 0;
        for (i = 0; i < 3; i++) {
            p[i] = (party){.b = b, .index = -1};
            pthread_create(&t[i], NULL, barrier_party, &p[i]);
        }
        for (i = 0; i < 3; i++) {
            pthread_join(t[i], NULL);
            assert_true(p[i].index >= 0 && p[i].index < 3);
            seen |= 1 << p[i].index;
        }
        assert_int_equal(seen, 7);
    }
    assert_int_equal(atomic_load(&action_runs), 3);

    /* abort breaks it for a waiter and every later wait, until reset */
    p[0] = (party){.b = b, .index = -1};
    pthread_create(&t[0], NULL, barrier_party, &p[0]);
    end = now_s() + DEADLINE;
    while (pt_barrier_n_waiting(b) != 1) {
        assert_true(now_s() < end);
        tick();
    }
    assert_int_equal(pt_barrier_abort(b), 0);
    pthread_join(t[0], NULL);
    assert_int_equal(p[0].index, PT_EBROKEN);
    assert_int_equal(pt_barrier_broken(b), 1);
    assert_int_equal(pt_barrier_wait(b, 1.0), PT_EBROKEN);
    assert_int_equal(pt_barrier_reset(b), 0);
    assert_int_equal(pt_barrier_broken(b), 0);
    assert_int_equal(pt_barrier_wait(b, 0.02), PT_EBROKEN); /* a timeout breaks it */
    assert_int_equal(pt_barrier_broken(b), 1);
    assert_int_equal(pt_barrier_close(b), 0);
}

static void test_names(void **state)
{
    pt_client *c = *state;
    const char *name = uname_("named");
    pt_lock *a, *b, *x;
    pt_event *e;

    assert_int_equal(pt_lock_open(c, name, PT_OPEN_EXISTING, 0, &x), PT_ENOENT);
    assert_int_equal(pt_lock_open(c, name, PT_OPEN_EXCL, 0, &a), 0);
    assert_int_equal(pt_lock_open(c, name, PT_OPEN_EXCL, 0, &x), PT_EEXIST);
    assert_int_equal(pt_event_open(c, name, 0, 0, &e), PT_EEXIST);
    assert_int_equal(pt_lock_open(c, name, PT_OPEN_EXISTING, 0, &b), 0);
    assert_int_equal(pt_lock_acquire(a, 1, PT_FOREVER), 1);
    assert_int_equal(pt_lock_locked(b), 1); /* one object, two handles */
    assert_int_equal(pt_unlink(c, name), 0);
    assert_int_equal(pt_unlink(c, name), PT_ENOENT);
    assert_int_equal(pt_lock_release(b), 0); /* open handles keep working */
    assert_int_equal(pt_lock_open(c, name, PT_OPEN_EXISTING, 0, &x), PT_ENOENT);
    assert_int_equal(pt_lock_close(a), 0);
    assert_int_equal(pt_lock_close(b), 0);

    /* Anonymous objects are distinct. */
    assert_int_equal(pt_lock_open(c, NULL, 0, 0, &a), 0);
    assert_int_equal(pt_lock_open(c, NULL, 0, 0, &b), 0);
    assert_int_equal(pt_lock_acquire(a, 1, PT_FOREVER), 1);
    assert_int_equal(pt_lock_locked(b), 0);
    assert_int_equal(pt_lock_close(a), 0);
    assert_int_equal(pt_lock_close(b), 0);
}

/* ------------------------------------------------------------------ */
/* Threads, fork, loss                                                 */
/* ------------------------------------------------------------------ */

static void *blocked_acquirer(void *arg)
{
    worker *w = arg;

    w->result = pt_lock_acquire(w->l, 1, PT_FOREVER);
    atomic_store(&w->done, 1);
    return NULL;
}

/* A thread parked in acquire holds up no other thread of the process. */
static void test_threads_block_independently(void **state)
{
    pt_client *c = *state;
    worker w = {.c = c};
    pt_event *e;
    pthread_t t;
    double start;
    int i;

    assert_int_equal(pt_lock_open(c, uname_("indep"), 0, 0, &w.l), 0);
    assert_int_equal(pt_event_open(c, uname_("indep-ev"), 0, 0, &e), 0);
    assert_int_equal(pt_lock_acquire(w.l, 1, PT_FOREVER), 1);
    pthread_create(&t, NULL, blocked_acquirer, &w);
    start = now_s();
    for (i = 0; i < 200; i++) {
        assert_int_equal(pt_event_set(e), 0);
        assert_int_equal(pt_event_wait(e, PT_FOREVER), 1);
        assert_int_equal(pt_event_clear(e), 0);
    }
    assert_true(now_s() - start < DEADLINE);
    assert_int_equal(atomic_load(&w.done), 0);
    assert_int_equal(pt_lock_release(w.l), 0);
    pthread_join(t, NULL);
    assert_int_equal(w.result, 1);
    assert_int_equal(pt_lock_release(w.l), 0); /* any owner may release a Lock */
    pt_lock_close(w.l);
    pt_event_close(e);
}

/*
 * The child's calls run on a session of its own: what it holds when it dies
 * is given back, while the parent's holdings are untouched.
 */
static void test_forked_child_has_its_own_session(void **state)
{
    pt_client *c = *state;
    pt_lock *parents, *childs;
    pid_t pid;
    int status;

    assert_int_equal(pt_lock_open(c, uname_("parent"), 0, 0, &parents), 0);
    assert_int_equal(pt_lock_open(c, uname_("child"), 0, 0, &childs), 0);
    assert_int_equal(pt_lock_acquire(parents, 1, PT_FOREVER), 1);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int ok = pt_lock_acquire(parents, 0, PT_FOREVER) == 0 &&
                 pt_lock_acquire(childs, 1, PT_FOREVER) == 1;

        _exit(ok ? 0 : 1); /* dies holding childs */
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(pt_lock_acquire(childs, 1, DEADLINE), 1);
    assert_int_equal(pt_lock_locked(parents), 1);
    assert_int_equal(pt_lock_release(parents), 0);
    assert_int_equal(pt_lock_release(childs), 0);
    pt_lock_close(parents);
    pt_lock_close(childs);
}

/*
 * A child's inherited handle on a transient object finds the parent's
 * object, and only that: once the parent's last handle closed, it is
 * PT_ENOENT, and no new object appears under the name.
 */
static void test_forked_child_finds_only_inherited_transient(void **state)
{
    pt_client *c = *state;
    pt_event *kept, *anon, *gone;
    char name[64];
    int go[2], status;
    pid_t pid;

    snprintf(name, sizeof(name), "%s", uname_("gone"));
    assert_int_equal(pt_event_open(c, uname_("kept"), PT_OPEN_TRANSIENT, 0, &kept), 0);
    assert_int_equal(pt_event_open(c, NULL, 0, 0, &anon), 0);
    assert_int_equal(pt_event_open(c, name, PT_OPEN_TRANSIENT, 0, &gone), 0);
    assert_int_equal(pt_event_set(kept), 0);
    assert_int_equal(pt_event_set(anon), 0);
    assert_int_equal(pt_event_set(gone), 0);
    assert_int_equal(pipe(go), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        pt_event *again = NULL;
        char b;
        int ok;

        ok = read(go[0], &b, 1) == 1 && pt_event_is_set(kept) == 1 && pt_event_is_set(anon) == 1 &&
             pt_event_is_set(gone) == PT_ENOENT &&
             strstr(pt_last_error_message(), "forked child") != NULL &&
             pt_event_open(c, name, PT_OPEN_EXISTING, 0, &again) == PT_ENOENT;
        _exit(ok ? 0 : 1);
    }
    assert_int_equal(pt_event_close(gone), 0); /* the last handle: it ends */
    assert_int_equal(write(go[1], "", 1), 1);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    close(go[0]);
    close(go[1]);
    pt_event_close(kept);
    pt_event_close(anon);
}

/* Killing the daemon fails the calls waiting on it; a new daemon serves
 * the next call, with the objects opened again by name. */
static void test_daemon_restart(void **state)
{
    pt_client *c = *state;
    party p;
    pt_lock *l;
    pt_condition *cv;
    pthread_t t;
    double end;

    assert_int_equal(pt_lock_open(c, "restart.lock", 0, 0, &l), 0);
    assert_int_equal(pt_condition_open(c, "restart.cv", pt_lock_as_object(l), 0, 0, &cv), 0);
    assert_int_equal(pt_barrier_open(c, "restart.bar", 2, NULL, NULL, PT_FOREVER, 0, 0, &p.b), 0);
    assert_int_equal(pt_lock_acquire(l, 1, PT_FOREVER), 1);
    pthread_create(&t, NULL, barrier_party, &p);
    end = now_s() + DEADLINE;
    while (pt_barrier_n_waiting(p.b) != 1) { /* parked in the daemon */
        assert_true(now_s() < end);
        tick();
    }
    daemon_kill(SIGKILL);
    pthread_join(t, NULL);
    assert_int_equal(p.index, PT_ESESSION);

    /* The waiting thread was reading and has closed the session already,
     * so the next call tries a new one, and nobody serves the socket yet. */
    assert_int_equal(pt_lock_locked(l), PT_ECONNECT);
    daemon_start();
    assert_int_equal(pt_lock_locked(l), 0); /* a new daemon: nothing held */
    assert_int_equal(pt_condition_acquire(cv, 1, PT_FOREVER), 1);
    assert_int_equal(pt_lock_locked(l), 1); /* the condition is over the same lock */
    assert_int_equal(pt_condition_notify(cv, 1), 0);
    assert_int_equal(pt_condition_release(cv), 0);
    assert_int_equal(pt_barrier_n_waiting(p.b), 0);
    pt_barrier_close(p.b);
    pt_condition_close(cv);
    pt_lock_close(l);
}

/* A call made while the daemon is down says so and names the socket. */
static void test_daemon_gone_between_calls(void **state)
{
    pt_client *c = *state;
    pt_event *e;

    /* A request: through the shared word is_set would read the last
     * daemon's flag until a request notices the loss. */
    assert_int_equal(pt_event_open(c, "gone.ev", PT_OPEN_NOFAST, 0, &e), 0);
    assert_int_equal(pt_event_set(e), 0);
    daemon_kill(SIGTERM);
    assert_int_equal(pt_event_is_set(e), PT_ESESSION);
    assert_non_null(strstr(pt_last_error_message(), "session lost"));
    assert_int_equal(pt_event_is_set(e), PT_ECONNECT);
    assert_non_null(strstr(pt_last_error_message(), sock));
    daemon_start();
    assert_int_equal(pt_event_is_set(e), 0);
    pt_event_close(e);
}

/* A daemon refusing a session says why, through pt_client_open. */
static void test_refused_session(void **state)
{
    char path[160];
    pt_client *a, *b = NULL;
    pid_t pid;
    int status;

    (void)state;
    snprintf(path, sizeof(path), "%s/limit.sock", dir);
    pid = daemon_spawn(path, "--max-sessions=1");
    assert_int_equal(pt_client_open(&a, path), 0);
    assert_int_equal(pt_client_open(&b, path), PT_ELIMIT);
    assert_null(b);
    assert_true(strlen(pt_last_error_message()) > 0);
    pt_client_close(a);
    kill(pid, SIGTERM);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rlock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_condition, setup, teardown),
        cmocka_unit_test_setup_teardown(test_semaphore, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_barrier, setup, teardown),
        cmocka_unit_test_setup_teardown(test_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_block_independently, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forked_child_has_its_own_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forked_child_finds_only_inherited_transient, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_daemon_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_daemon_gone_between_calls, setup, teardown),
        cmocka_unit_test(test_refused_session),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
