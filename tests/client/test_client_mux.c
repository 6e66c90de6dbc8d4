/*
 * The session against a scripted fake daemon: what goes on the wire, the
 * multiplexing of threads (answers out of order, a blocked call holding up
 * nobody), loss and reconnection with objects opened again by name, fork,
 * the barrier action, and the cost of one call (one send, one recv, no
 * malloc), counted by wrapping those functions in the statically linked
 * library.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_daemon.h"
#include "pythread.h"
#include "wire.h"

/* ------------------------------------------------------------------ */
/* Counting send/recv/malloc of the calling thread                     */
/* ------------------------------------------------------------------ */

ssize_t __real_send(int fd, const void *buf, size_t len, int flags);
ssize_t __real_recvmsg(int fd, struct msghdr *m, int flags);
void *__real_malloc(size_t size);
ssize_t __wrap_send(int fd, const void *buf, size_t len, int flags);
ssize_t __wrap_recvmsg(int fd, struct msghdr *m, int flags);
void *__wrap_malloc(size_t size);

static _Thread_local int counting;
static _Thread_local int n_send, n_recv, n_malloc;

ssize_t __wrap_send(int fd, const void *buf, size_t len, int flags)
{
    n_send += counting;
    return __real_send(fd, buf, len, flags);
}

/* Counts the reads that brought something: a spin's polls that found the
 * socket empty (MSG_DONTWAIT, EAGAIN) are the spin's bounded cost, not
 * reads. */
ssize_t __wrap_recvmsg(int fd, struct msghdr *m, int flags)
{
    ssize_t n = __real_recvmsg(fd, m, flags);

    if (!(n < 0 && (flags & MSG_DONTWAIT) && (errno == EAGAIN || errno == EWOULDBLOCK)))
        n_recv += counting;
    return n;
}

void *__wrap_malloc(size_t size)
{
    n_malloc += counting;
    return __real_malloc(size);
}

/* ------------------------------------------------------------------ */
/* Fixture                                                             */
/* ------------------------------------------------------------------ */

typedef struct fx {
    fake *f;
    pt_client *c;
} fx;

static int setup(void **state)
{
    fx *x = calloc(1, sizeof(*x));

    x->f = fake_start();
    assert_int_equal(pt_client_open(&x->c, fake_path(x->f)), 0);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    fx *x = *state;

    pt_client_close(x->c);
    fake_stop(x->f);
    free(x);
    return 0;
}

static fake_req req_at(fake *f, int i)
{
    fake_req q;

    assert_true(i >= 0);
    assert_int_equal(fake_get(f, i, &q), 0);
    return q;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------ */
/* What goes on the wire                                               */
/* ------------------------------------------------------------------ */

static void test_hello_and_open(void **state)
{
    fx *x = *state;
    pt_lock *l;
    fake_req q;

    q = req_at(x->f, 0);
    assert_int_equal(q.op, PYTHREAD__OP__OP_HELLO);
    assert_int_equal(q.version, PT_PROTOCOL_VERSION);
    assert_string_equal(q.client_name, program_invocation_short_name);
    assert_int_equal(q.pid, getpid());

    assert_int_equal(pt_lock_open(x->c, "jobs", 0, 0, &l), 0);
    q = req_at(x->f, 1);
    assert_int_equal(q.op, PYTHREAD__OP__OP_OPEN);
    assert_string_equal(q.name, "jobs");
    assert_int_equal(q.kind, PT_KIND_LOCK);
    assert_int_equal(q.mode, PT_DEFAULT_MODE);
    assert_int_equal(q.flags, 0);
    assert_int_equal(q.thread, (uint64_t)gettid());
    assert_true(q.id > req_at(x->f, 0).id);

    assert_int_equal(pt_lock_acquire(l, 1, 2.5), 1);
    q = req_at(x->f, 2);
    assert_int_equal(q.op, PYTHREAD__OP__OP_ACQUIRE);
    assert_int_equal(q.handle, 1);
    assert_int_equal(q.blocking, 1);
    assert_true(q.timeout == 2.5);
    assert_int_equal(pt_lock_close(l), 0);
    q = req_at(x->f, 3);
    assert_int_equal(q.op, PYTHREAD__OP__OP_CLOSE);
    assert_int_equal(q.handle, 1);
}

static void test_fenced_tokens_grow(void **state)
{
    fx *x = *state;
    uint64_t t1 = 0, t2 = 0;
    pt_rlock *l;

    assert_int_equal(pt_rlock_open(x->c, "r", 0, 0, &l), 0);
    assert_int_equal(pt_rlock_acquire_fenced(l, 1, PT_FOREVER, &t1), 1);
    assert_int_equal(pt_rlock_acquire_fenced(l, 1, PT_FOREVER, &t2), 1);
    assert_true(t1 > 0 && t2 > t1);
    assert_int_equal(pt_rlock_is_owned(l), 1);
    assert_int_equal(pt_rlock_close(l), 0);
}

static void test_version_refused(void **state)
{
    fx *x = *state;
    pt_client *c2 = NULL;
    char want[64];

    fake_set_hello(x->f, PT_EVERSION, "pythreadd speaks protocol 9; upgrade libpythread", 9);
    assert_int_equal(pt_client_open(&c2, fake_path(x->f)), PT_EVERSION);
    assert_null(c2);
    assert_string_equal(pt_last_error_message(),
                        "pythreadd speaks protocol 9; upgrade libpythread");

    fake_set_hello(x->f, 0, NULL, PT_PROTOCOL_VERSION + 1);
    assert_int_equal(pt_client_open(&c2, fake_path(x->f)), PT_EVERSION);
    snprintf(want, sizeof(want), "speaks protocol %u,", PT_PROTOCOL_VERSION + 1);
    assert_non_null(strstr(pt_last_error_message(), want));

    fake_set_hello(x->f, 0, NULL, 0); /* an answer without HelloInfo */
    assert_int_equal(pt_client_open(&c2, fake_path(x->f)), PT_EVERSION);
    assert_non_null(strstr(pt_last_error_message(), "speaks protocol 1,"));
    fake_set_hello(x->f, 0, NULL, PT_PROTOCOL_VERSION);
}

/* Checks that need no daemon happen before anything is sent. */
static void test_local_checks_send_nothing(void **state)
{
    fx *x = *state;
    char longname[300];
    pt_lock *l = (pt_lock *)&l;
    pt_semaphore *s;
    int before;

    assert_int_equal(pt_semaphore_open(x->c, "s", 1, 0, 0, 0, &s), 0);
    before = fake_count(x->f, 0);

    assert_int_equal(pt_lock_open(x->c, "", 0, 0, &l), PT_ENAME);
    assert_null(l);
    assert_int_equal(pt_lock_open(x->c, "a b", 0, 0, &l), PT_ENAME);
    assert_non_null(strstr(pt_last_error_message(), "Lock 'a b': open: invalid name"));
    memset(longname, 'x', 256);
    longname[256] = '\0';
    assert_int_equal(pt_lock_open(x->c, longname, 0, 0, &l), PT_ENAME);
    longname[255] = '\0';
    assert_int_equal(pt_unlink(x->c, "bad name"), PT_ENAME);
    assert_int_equal(pt_lock_open(x->c, "ok", 1 << 12, 0, &l), PT_EINVAL);
    assert_non_null(strstr(pt_last_error_message(), "unknown flag bits"));
    assert_int_equal(pt_lock_open(x->c, "ok", 0, 010000, &l), PT_EINVAL);
    assert_int_equal(pt_lock_open(x->c, NULL, PT_OPEN_EXISTING, 0, &l), PT_EINVAL);
    assert_int_equal(pt_semaphore_release(s, 0), PT_EINVAL);
    assert_string_equal(pt_last_error_message(), "Semaphore 's': release: n must be one or more");
    assert_int_equal(fake_count(x->f, 0), before);

    /* A name of exactly 255 bytes is fine; a success leaves the message. */
    assert_int_equal(pt_lock_open(x->c, longname, 0, 0, &l), 0);
    assert_non_null(strstr(pt_last_error_message(), "n must be one or more"));
    assert_int_equal(pt_lock_close(l), 0);
    assert_int_equal(pt_semaphore_close(s), 0);
}

static void test_every_kind_maps_to_its_request(void **state)
{
    fx *x = *state;
    pt_semaphore *s;
    pt_event *e;
    pt_barrier *b;
    int64_t v = 0;
    int i;

    assert_int_equal(pt_semaphore_open(x->c, "s", 3, 1, 0, 0, &s), 0);
    i = fake_find(x->f, PYTHREAD__OP__OP_OPEN, 0);
    assert_int_equal(req_at(x->f, i).kind, PT_KIND_BOUNDED_SEMAPHORE);
    assert_int_equal(pt_semaphore_release(s, 2), 0);
    i = fake_find(x->f, PYTHREAD__OP__OP_RELEASE, 0);
    assert_int_equal(req_at(x->f, i).count, 2);
    assert_int_equal(pt_semaphore_value(s, &v), 0);
    assert_int_equal(v, 5);
    assert_int_equal(pt_semaphore_acquire(s, 0, PT_FOREVER), 1);
    i = fake_find(x->f, PYTHREAD__OP__OP_ACQUIRE, 0);
    assert_int_equal(req_at(x->f, i).blocking, 0);

    assert_int_equal(pt_event_open(x->c, "e", 0, 0, &e), 0);
    assert_int_equal(pt_event_set(e), 0);
    assert_true(fake_find(x->f, PYTHREAD__OP__OP_EVENT_SET, 0) > 0);
    assert_int_equal(pt_event_clear(e), 0);
    assert_true(fake_find(x->f, PYTHREAD__OP__OP_EVENT_CLEAR, 0) > 0);
    assert_int_equal(pt_event_is_set(e), 1);
    assert_int_equal(pt_event_wait(e, 0.5), 1);
    i = fake_find(x->f, PYTHREAD__OP__OP_EVENT_WAIT, 0);
    assert_true(req_at(x->f, i).timeout == 0.5);

    assert_int_equal(pt_barrier_open(x->c, "b", 3, NULL, NULL, 7.0, 0, 0, &b), 0);
    i = fake_find(x->f, PYTHREAD__OP__OP_OPEN, i);
    while (req_at(x->f, i).kind != PT_KIND_BARRIER)
        i = fake_find(x->f, PYTHREAD__OP__OP_OPEN, i + 1);
    assert_true(req_at(x->f, i).timeout == 7.0);
    assert_int_equal(pt_barrier_parties(b), 3);
    assert_int_equal(pt_barrier_n_waiting(b), 2);
    assert_int_equal(pt_barrier_broken(b), 0);
    assert_int_equal(pt_barrier_wait(b, PT_FOREVER), 1);
    i = fake_find(x->f, PYTHREAD__OP__OP_BARRIER_WAIT, 0);
    assert_int_equal(req_at(x->f, i).has_action, 0);
    assert_int_equal(pt_barrier_reset(b), 0);
    assert_true(fake_find(x->f, PYTHREAD__OP__OP_BARRIER_RESET, 0) > 0);
    assert_int_equal(pt_barrier_abort(b), 0);
    assert_true(fake_find(x->f, PYTHREAD__OP__OP_BARRIER_ABORT, 0) > 0);

    assert_int_equal(pt_unlink(x->c, "s"), 0);
    i = fake_find(x->f, PYTHREAD__OP__OP_UNLINK, 0);
    assert_string_equal(req_at(x->f, i).name, "s");

    assert_int_equal(pt_semaphore_close(s), 0);
    assert_int_equal(pt_event_close(e), 0);
    assert_int_equal(pt_barrier_close(b), 0);
}

/* ------------------------------------------------------------------ */
/* Multiplexing                                                        */
/* ------------------------------------------------------------------ */

typedef struct acquirer {
    pt_lock *l;
    int result;
    pid_t tid;
} acquirer;

static void *acquire_thread(void *arg)
{
    acquirer *a = arg;

    a->tid = gettid();
    a->result = pt_lock_acquire(a->l, 1, PT_FOREVER);
    return NULL;
}

/*
 * Two threads blocked in acquire hold up nobody: the main thread's calls
 * are answered meanwhile, and the held answers, given latest first, each
 * reach the thread that asked.
 */
static void test_blocked_threads_hold_up_nobody(void **state)
{
    fx *x = *state;
    acquirer a = {0}, b = {0};
    pthread_t ta, tb;
    int i, ia, ib;

    assert_int_equal(pt_lock_open(x->c, "a", 0, 0, &a.l), 0);
    assert_int_equal(pt_lock_open(x->c, "b", 0, 0, &b.l), 0);
    fake_hold(x->f, PYTHREAD__OP__OP_ACQUIRE);
    pthread_create(&ta, NULL, acquire_thread, &a);
    assert_int_equal(fake_wait_count(x->f, PYTHREAD__OP__OP_ACQUIRE, 1, 10), 0);
    pthread_create(&tb, NULL, acquire_thread, &b);
    assert_int_equal(fake_wait_count(x->f, PYTHREAD__OP__OP_ACQUIRE, 2, 10), 0);

    for (i = 0; i < 20; i++)
        assert_int_equal(pt_lock_locked(a.l), 1);

    fake_hold(x->f, 0);
    fake_answer_held(x->f);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(a.result, 1);
    assert_int_equal(b.result, 1);

    /* Each request named its own thread as the owner. */
    ia = fake_find(x->f, PYTHREAD__OP__OP_ACQUIRE, 0);
    ib = fake_find(x->f, PYTHREAD__OP__OP_ACQUIRE, ia + 1);
    assert_int_equal(req_at(x->f, ia).thread, (uint64_t)a.tid);
    assert_int_equal(req_at(x->f, ib).thread, (uint64_t)b.tid);
    assert_int_equal(req_at(x->f, ia).handle, 1);
    assert_int_equal(req_at(x->f, ib).handle, 2);
    pt_lock_close(a.l);
    pt_lock_close(b.l);
}

typedef struct hammer {
    pt_client *c;
    int index;
    int errors;
} hammer;

static void *hammer_thread(void *arg)
{
    hammer *h = arg;
    char name[32];
    pt_semaphore *s;
    int64_t v;
    int i;

    snprintf(name, sizeof(name), "h%d", h->index);
    if (pt_semaphore_open(h->c, name, 1, 0, 0, 0, &s) < 0) {
        h->errors++;
        return NULL;
    }
    for (i = 0; i < 300; i++) {
        h->errors += pt_semaphore_acquire(s, 1, PT_FOREVER) != 1;
        h->errors += pt_semaphore_value(s, &v) != 0 || v != 5;
        h->errors += pt_semaphore_release(s, 1) != 0;
    }
    pt_semaphore_close(s);
    return NULL;
}

/* Many threads on one session, every answer reaching its own caller. */
static void test_many_threads_share_one_session(void **state)
{
    fx *x = *state;
    hammer h[8];
    pthread_t t[8];
    int i;

    for (i = 0; i < 8; i++) {
        h[i] = (hammer){.c = x->c, .index = i};
        pthread_create(&t[i], NULL, hammer_thread, &h[i]);
    }
    for (i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(h[i].errors, 0);
    }
    assert_int_equal(fake_conns(x->f), 1);
}

/* One call from a single thread: one send(), one recv(), no malloc. */
static void test_one_call_one_send_one_recv(void **state)
{
    fx *x = *state;
    pt_lock *l;
    int i;

    assert_int_equal(pt_lock_open(x->c, "fast", 0, 0, &l), 0);
    assert_int_equal(pt_lock_acquire(l, 1, PT_FOREVER), 1);
    for (i = 0; i < 10; i++) {
        n_send = n_recv = n_malloc = 0;
        counting = 1;
        assert_int_equal(pt_lock_locked(l), 1);
        counting = 0;
        assert_int_equal(n_send, 1);
        assert_int_equal(n_recv, 1);
        assert_int_equal(n_malloc, 0);
    }
    pt_lock_close(l);
}

/* ------------------------------------------------------------------ */
/* Loss and reconnection                                               */
/* ------------------------------------------------------------------ */

static void test_lost_session_fails_pending_then_reconnects(void **state)
{
    fx *x = *state;
    acquirer a = {0};
    pthread_t ta;
    fake_req q;
    int i;

    assert_int_equal(pt_lock_open(x->c, "jobs", PT_OPEN_EXCL, 0640, &a.l), 0);
    fake_hold(x->f, PYTHREAD__OP__OP_ACQUIRE);
    pthread_create(&ta, NULL, acquire_thread, &a);
    assert_int_equal(fake_wait_count(x->f, PYTHREAD__OP__OP_ACQUIRE, 1, 10), 0);
    fake_drop(x->f);
    pthread_join(ta, NULL);
    assert_int_equal(a.result, PT_ESESSION);
    fake_hold(x->f, 0);

    /* The next call reconnects, opens the lock again by name (no longer
     * exclusively), and then does its own request with the new handle. */
    assert_int_equal(pt_lock_locked(a.l), 1);
    assert_int_equal(fake_conns(x->f), 2);
    i = fake_find(x->f, PYTHREAD__OP__OP_HELLO, 1);
    q = req_at(x->f, i);
    assert_int_equal(q.conn, 1);
    q = req_at(x->f, i + 1);
    assert_int_equal(q.op, PYTHREAD__OP__OP_OPEN);
    assert_string_equal(q.name, "jobs");
    assert_int_equal(q.flags, 0);
    assert_int_equal(q.mode, 0640);
    q = req_at(x->f, i + 2);
    assert_int_equal(q.op, PYTHREAD__OP__OP_STATE);
    assert_int_equal(q.conn, 1);
    assert_int_equal(q.handle, 1);
    pt_lock_close(a.l);
}

static void test_lost_message_names_the_cause(void **state)
{
    fx *x = *state;
    pt_lock *l;

    assert_int_equal(pt_lock_open(x->c, "jobs", 0, 0, &l), 0);
    assert_int_equal(pt_lock_release(l), 0);
    /* A client learns of the loss from its next call. */
    fake_drop(x->f);
    assert_int_equal(pt_lock_locked(l), PT_ESESSION);
    assert_non_null(strstr(pt_last_error_message(), "session lost: "));
    assert_int_equal(pt_lock_locked(l), 1);

    fake_set_goodbye(x->f, PYTHREAD__OP__OP_STATE, "invalid request 9: unknown op");
    assert_int_equal(pt_lock_locked(l), PT_ESESSION);
    assert_non_null(strstr(pt_last_error_message(), "session lost: pythreadd: invalid request 9"));
    assert_non_null(strstr(pt_last_error_message(), "the next call reconnects"));
    fake_set_goodbye(x->f, 0, "");

    fake_set_garbage(x->f, PYTHREAD__OP__OP_STATE);
    assert_int_equal(pt_lock_locked(l), PT_ESESSION);
    assert_non_null(strstr(pt_last_error_message(), "malformed response"));
    fake_set_garbage(x->f, 0);
    assert_int_equal(pt_lock_locked(l), 1);
    pt_lock_close(l);
}

static void test_condition_reopens_its_lock_first(void **state)
{
    fx *x = *state;
    pt_lock *l;
    pt_condition *cv;
    fake_req q;
    int i;

    assert_int_equal(pt_lock_open(x->c, "m", 0, 0, &l), 0);
    assert_int_equal(pt_condition_open(x->c, "cv", pt_lock_as_object(l), 0, 0, &cv), 0);
    i = fake_find(x->f, PYTHREAD__OP__OP_OPEN, 2);
    assert_int_equal(req_at(x->f, i).lock_handle, 1);
    fake_drop(x->f);
    assert_int_equal(pt_condition_notify(cv, 1), PT_ESESSION);
    assert_int_equal(pt_condition_notify(cv, 1), 0);
    i = fake_find(x->f, PYTHREAD__OP__OP_HELLO, 1);
    q = req_at(x->f, i + 1);
    assert_int_equal(q.op, PYTHREAD__OP__OP_OPEN);
    assert_string_equal(q.name, "m");
    q = req_at(x->f, i + 2);
    assert_int_equal(q.op, PYTHREAD__OP__OP_OPEN);
    assert_string_equal(q.name, "cv");
    assert_int_equal(q.lock_handle, 1);
    q = req_at(x->f, fake_find(x->f, PYTHREAD__OP__OP_NOTIFY, i));
    assert_int_equal(q.handle, 2);
    assert_int_equal(q.count, 1);

    /* The lock stays open while the condition uses it. */
    assert_int_equal(pt_lock_close(l), 0);
    assert_int_equal(fake_find(x->f, PYTHREAD__OP__OP_CLOSE, 0), -1);
    assert_int_equal(pt_condition_notify(cv, 2), 0);
    assert_int_equal(pt_condition_close(cv), 0);
    i = fake_find(x->f, PYTHREAD__OP__OP_CLOSE, 0);
    assert_int_equal(req_at(x->f, i).handle, 2);
    assert_int_equal(req_at(x->f, i + 1).op, PYTHREAD__OP__OP_CLOSE);
    assert_int_equal(req_at(x->f, i + 1).handle, 1);
}

static void test_anonymous_objects(void **state)
{
    fx *x = *state;
    pt_lock *l1, *l2;
    char prefix[64];
    fake_req q1, q2;
    int i;

    assert_int_equal(pt_lock_open(x->c, NULL, 0, 0, &l1), 0);
    assert_int_equal(pt_lock_open(x->c, NULL, 0, 0, &l2), 0);
    i = fake_find(x->f, PYTHREAD__OP__OP_OPEN, 0);
    q1 = req_at(x->f, i);
    q2 = req_at(x->f, fake_find(x->f, PYTHREAD__OP__OP_OPEN, i + 1));
    snprintf(prefix, sizeof(prefix), "anon/%ld.", (long)getpid());
    assert_memory_equal(q1.name, prefix, strlen(prefix));
    assert_string_not_equal(q1.name, q2.name);
    assert_int_equal(q1.flags, PT_OPEN_TRANSIENT | PT_OPEN_EXCL);

    fake_drop(x->f);
    assert_int_equal(pt_lock_locked(l1), PT_ESESSION);
    assert_int_equal(pt_lock_locked(l1), 1);
    i = fake_find(x->f, PYTHREAD__OP__OP_HELLO, 1);
    q2 = req_at(x->f, i + 1);
    assert_string_equal(q2.name, q1.name);
    assert_int_equal(q2.flags, PT_OPEN_TRANSIENT);
    pt_lock_close(l1);
    pt_lock_close(l2);
}

/* Closing a handle of a lost session needs no new session. */
static void test_close_after_loss_does_not_reconnect(void **state)
{
    fx *x = *state;
    pt_event *e;
    acquirer a = {0};
    pthread_t ta;

    assert_int_equal(pt_event_open(x->c, "e", 0, 0, &e), 0);
    assert_int_equal(pt_lock_open(x->c, "l", 0, 0, &a.l), 0);
    fake_hold(x->f, PYTHREAD__OP__OP_ACQUIRE);
    pthread_create(&ta, NULL, acquire_thread, &a);
    assert_int_equal(fake_wait_count(x->f, PYTHREAD__OP__OP_ACQUIRE, 1, 10), 0);
    fake_drop(x->f);
    pthread_join(ta, NULL);
    assert_int_equal(a.result, PT_ESESSION);
    assert_int_equal(pt_event_close(e), 0);
    assert_int_equal(pt_lock_close(a.l), 0);
    assert_int_equal(fake_conns(x->f), 1);
    assert_int_equal(fake_find(x->f, PYTHREAD__OP__OP_CLOSE, 0), -1);
    fake_hold(x->f, 0);
}

/* ------------------------------------------------------------------ */
/* Fork                                                                */
/* ------------------------------------------------------------------ */

static void test_forked_child_gets_its_own_session(void **state)
{
    fx *x = *state;
    pt_lock *l;
    pid_t pid;
    int status, i, hellos;
    fake_req q;

    assert_int_equal(pt_lock_open(x->c, "shared", 0, 0, &l), 0);
    assert_int_equal(pt_lock_acquire(l, 1, PT_FOREVER), 1);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int ok = pt_lock_locked(l) == 1 && pt_lock_release(l) == 0;

        pt_client_close(x->c);
        _exit(ok ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    /* The child spoke on a connection of its own, from the hello on. */
    assert_int_equal(fake_conns(x->f), 2);
    i = fake_find(x->f, PYTHREAD__OP__OP_HELLO, 1);
    q = req_at(x->f, i);
    assert_int_equal(q.conn, 1);
    assert_int_equal(q.pid, pid);
    q = req_at(x->f, i + 1);
    assert_int_equal(q.op, PYTHREAD__OP__OP_OPEN);
    assert_string_equal(q.name, "shared");
    assert_int_equal(q.pid, pid);
    q = req_at(x->f, i + 3);
    assert_int_equal(q.op, PYTHREAD__OP__OP_RELEASE);
    assert_int_equal(q.conn, 1);
    assert_int_equal(q.thread, (uint64_t)pid); /* the child's main thread */

    /* The parent's session is untouched and goes on. */
    assert_int_equal(pt_lock_locked(l), 1);
    hellos = 0;
    for (i = 0; fake_get(x->f, i, &q) == 0; i++) {
        if (q.pid == getpid()) {
            assert_int_equal(q.conn, 0);
            hellos += q.op == PYTHREAD__OP__OP_HELLO;
        }
    }
    assert_int_equal(hellos, 1);
    pt_lock_close(l);
}

/* A child that never calls sends nothing: closing it closes only its copy. */
static void test_forked_child_close_leaves_parent_alone(void **state)
{
    fx *x = *state;
    pt_event *e;
    pid_t pid;
    int status, before;

    assert_int_equal(pt_event_open(x->c, "e", 0, 0, &e), 0);
    before = fake_count(x->f, 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        pt_event_close(e);
        pt_client_close(x->c);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(fake_count(x->f, 0), before);
    assert_int_equal(pt_event_set(e), 0);
    assert_int_equal(fake_conns(x->f), 1);
    pt_event_close(e);
}

/* ------------------------------------------------------------------ */
/* Barrier action, notify(0), wait_for                                 */
/* ------------------------------------------------------------------ */

static int action_runs;

static int action(void *arg)
{
    action_runs++;
    return *(int *)arg;
}

static void test_barrier_action_runs_in_last_party(void **state)
{
    fx *x = *state;
    pt_barrier *b;
    int status = 0, i;
    fake_req q;

    fake_set_run_action(x->f, 1);
    assert_int_equal(pt_barrier_open(x->c, "b", 3, action, &status, PT_FOREVER, 0, 0, &b), 0);
    assert_int_equal(pt_barrier_wait(b, PT_FOREVER), 2);
    assert_int_equal(action_runs, 1);
    i = fake_find(x->f, PYTHREAD__OP__OP_BARRIER_WAIT, 0);
    assert_int_equal(req_at(x->f, i).has_action, 1);
    q = req_at(x->f, fake_find(x->f, PYTHREAD__OP__OP_BARRIER_ACTION_DONE, i));
    assert_int_equal(q.status, 0);
    assert_int_equal(q.handle, req_at(x->f, i).handle);

    status = 7;
    assert_int_equal(pt_barrier_wait(b, 1.0), PT_EBROKEN);
    assert_int_equal(action_runs, 2);
    assert_non_null(strstr(pt_last_error_message(), "the action failed"));
    q = req_at(x->f, fake_find(x->f, PYTHREAD__OP__OP_BARRIER_ACTION_DONE, i + 2));
    assert_int_equal(q.status, 7);
    fake_set_run_action(x->f, 0);
    pt_barrier_close(b);
}

static void test_notify_zero_sends_no_notify(void **state)
{
    fx *x = *state;
    pt_condition *cv;
    pt_lock *l;
    pt_condition *cvl;
    int i;

    assert_int_equal(pt_condition_open(x->c, "cv", NULL, 0, 0, &cv), 0);
    fake_set_owner(x->f, 0, 1);
    assert_int_equal(pt_condition_notify(cv, 0), PT_ERUNTIME);
    assert_non_null(strstr(pt_last_error_message(), "Condition 'cv': notify: cannot notify"));
    fake_set_owner(x->f, 2, 1);
    assert_int_equal(pt_condition_notify(cv, 0), 0);
    assert_int_equal(fake_find(x->f, PYTHREAD__OP__OP_NOTIFY, 0), -1);

    /* Over a plain Lock, "owned" is "locked", as Condition._is_owned says. */
    assert_int_equal(pt_lock_open(x->c, "plain", 0, 0, &l), 0);
    assert_int_equal(pt_condition_open(x->c, "cvl", pt_lock_as_object(l), 0, 0, &cvl), 0);
    fake_set_owner(x->f, 0, 1);
    assert_int_equal(pt_condition_notify(cvl, 0), 0);
    fake_set_owner(x->f, 0, 0);
    assert_int_equal(pt_condition_notify(cvl, 0), PT_ERUNTIME);
    fake_set_owner(x->f, 1, 1);

    assert_int_equal(pt_condition_notify_all(cv), 0);
    i = fake_find(x->f, PYTHREAD__OP__OP_NOTIFY, 0);
    assert_int_equal(req_at(x->f, i).count, 0);
    assert_int_equal(req_at(x->f, i).has_count, 1);
    assert_int_equal(pt_condition_notify(cv, 3), 0);
    i = fake_find(x->f, PYTHREAD__OP__OP_NOTIFY, i + 1);
    assert_int_equal(req_at(x->f, i).count, 3);
    pt_condition_close(cvl);
    pt_lock_close(l);
    pt_condition_close(cv);
}

typedef struct pred {
    int calls;
    int true_at;
    int value;
} pred;

static int predicate(void *arg)
{
    struct timespec pause = {0, 40 * 1000000};
    pred *p = arg;

    if (p->true_at > 1000)
        nanosleep(&pause, NULL); /* the fake answers every wait at once */
    return ++p->calls >= p->true_at ? p->value : 0;
}

/* Condition.wait_for's loop: the first wait gets the whole timeout, later
 * ones what is left of it; the predicate's own value comes back. */
static void test_wait_for_follows_python(void **state)
{
    fx *x = *state;
    pt_condition *cv;
    pred p = {.true_at = 3, .value = 42};
    double start;
    fake_req q;
    int i, waits = 0;

    assert_int_equal(pt_condition_open(x->c, "wf", NULL, 0, 0, &cv), 0);
    assert_int_equal(pt_condition_wait_for(cv, predicate, &p, PT_FOREVER), 42);
    assert_int_equal(p.calls, 3);
    for (i = 0; (i = fake_find(x->f, PYTHREAD__OP__OP_COND_WAIT, i)) >= 0; i++) {
        assert_true(req_at(x->f, i).timeout == PT_FOREVER);
        waits++;
    }
    assert_int_equal(waits, 2);

    /* Never true: waits until the end time, each wait shorter. */
    p = (pred){.true_at = 1000000, .value = 1};
    i = fake_count(x->f, 0);
    start = now_s();
    assert_int_equal(pt_condition_wait_for(cv, predicate, &p, 0.2), 0);
    assert_true(now_s() - start >= 0.2);
    q = req_at(x->f, i);
    assert_int_equal(q.op, PYTHREAD__OP__OP_COND_WAIT);
    assert_true(q.timeout == 0.2);
    q = req_at(x->f, i + 1);
    assert_true(q.timeout > 0 && q.timeout < 0.2);

    /* Already true: no wait at all. */
    p = (pred){.true_at = 1, .value = 5};
    i = fake_count(x->f, PYTHREAD__OP__OP_COND_WAIT);
    assert_int_equal(pt_condition_wait_for(cv, predicate, &p, 1.0), 5);
    assert_int_equal(fake_count(x->f, PYTHREAD__OP__OP_COND_WAIT), i);
    pt_condition_close(cv);
}

/* Objects left open go with their client (checked for leaks under ASan). */
static void test_client_close_frees_open_objects(void **state)
{
    fx *x = *state;
    pt_lock *l;
    pt_condition *cv;
    pt_barrier *b;

    assert_int_equal(pt_lock_open(x->c, "left", 0, 0, &l), 0);
    assert_int_equal(pt_condition_open(x->c, "left-cv", pt_lock_as_object(l), 0, 0, &cv), 0);
    assert_int_equal(pt_barrier_open(x->c, "left-b", 2, NULL, NULL, PT_FOREVER, 0, 0, &b), 0);
    pt_client_close(x->c);
    x->c = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hello_and_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fenced_tokens_grow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_checks_send_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_kind_maps_to_its_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blocked_threads_hold_up_nobody, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_threads_share_one_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_call_one_send_one_recv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_session_fails_pending_then_reconnects, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lost_message_names_the_cause, setup, teardown),
        cmocka_unit_test_setup_teardown(test_condition_reopens_its_lock_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_anonymous_objects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_after_loss_does_not_reconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forked_child_gets_its_own_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forked_child_close_leaves_parent_alone, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_barrier_action_runs_in_last_party, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_zero_sends_no_notify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_for_follows_python, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_close_frees_open_objects, setup, teardown),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
