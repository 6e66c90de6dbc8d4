/*
 * Timed waits end within 50 ms after their deadline and never before it.
 * The daemon starts the clock when the request arrives, which is after this
 * process starts its own, so "not before" holds for the time seen here too.
 */
#include "harness.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TIMEOUT_S 0.2
#define SLACK_S   0.050

typedef struct timeout_env {
    harness *h;
    pt_client *c;     /* the session under test */
    pt_client *other; /* a second session holding what the first waits for */
} timeout_env;

static int timeout_setup(void **state)
{
    timeout_env *env = calloc(1, sizeof *env);
    void *hs = NULL;

    assert_non_null(env);
    if (harness_setup(&hs) != 0 || !hs) {
        free(env);
        return -1;
    }
    env->h = hs;
    *state = env;
    return 0;
}

/* Every test's first step: the two sessions. */
static timeout_env *timeout_begin(void **state)
{
    timeout_env *env = *state;

    PT_ASSERT_EQ(pt_client_open(&env->c, NULL), 0);
    PT_ASSERT_EQ(pt_client_open(&env->other, NULL), 0);
    return env;
}

static int timeout_teardown(void **state)
{
    timeout_env *env = *state;
    void *hs = env->h;

    if (env->c)
        pt_client_close(env->c);
    if (env->other)
        pt_client_close(env->other);
    free(env);
    return harness_teardown(&hs);
}

static void check_elapsed(const char *what, double t0)
{
    double dt = harness_now() - t0;

    if (dt < TIMEOUT_S)
        fail_msg("%s: returned after %.1f ms, before its %.0f ms timeout", what, dt * 1e3,
                 TIMEOUT_S * 1e3);
    if (dt > TIMEOUT_S + SLACK_S)
        fail_msg("%s: returned after %.1f ms, want within %.0f ms of the %.0f ms timeout", what,
                 dt * 1e3, SLACK_S * 1e3, TIMEOUT_S * 1e3);
}

static void test_lock_acquire_timeout(void **state)
{
    timeout_env *env = timeout_begin(state);
    pt_lock *mine = NULL, *theirs = NULL;
    double t0;

    PT_ASSERT_EQ(pt_lock_open(env->other, "it.to.lock", 0, 0, &theirs), 0);
    PT_ASSERT_EQ(pt_lock_acquire(theirs, 1, PT_FOREVER), 1);
    PT_ASSERT_EQ(pt_lock_open(env->c, "it.to.lock", 0, 0, &mine), 0);

    t0 = harness_now();
    PT_ASSERT_EQ(pt_lock_acquire(mine, 1, TIMEOUT_S), 0);
    check_elapsed("Lock acquire", t0);

    /* The timed-out waiter is gone: a release leaves the lock free. */
    PT_ASSERT_EQ(pt_lock_release(theirs), 0);
    PT_ASSERT_EQ(pt_lock_locked(mine), 0);
    PT_ASSERT_EQ(pt_lock_close(mine), 0);
    PT_ASSERT_EQ(pt_lock_close(theirs), 0);
    env->h->passed = 1;
}

static void test_rlock_acquire_timeout(void **state)
{
    timeout_env *env = timeout_begin(state);
    pt_rlock *mine = NULL, *theirs = NULL;
    double t0;

    PT_ASSERT_EQ(pt_rlock_open(env->other, "it.to.rlock", 0, 0, &theirs), 0);
    PT_ASSERT_EQ(pt_rlock_acquire(theirs, 1, PT_FOREVER), 1);
    PT_ASSERT_EQ(pt_rlock_open(env->c, "it.to.rlock", 0, 0, &mine), 0);

    t0 = harness_now();
    PT_ASSERT_EQ(pt_rlock_acquire(mine, 1, TIMEOUT_S), 0);
    check_elapsed("RLock acquire", t0);

    PT_ASSERT_EQ(pt_rlock_release(theirs), 0);
    PT_ASSERT_EQ(pt_rlock_locked(mine), 0);
    PT_ASSERT_EQ(pt_rlock_close(mine), 0);
    PT_ASSERT_EQ(pt_rlock_close(theirs), 0);
    env->h->passed = 1;
}

static void test_condition_wait_timeout(void **state)
{
    timeout_env *env = timeout_begin(state);
    pt_condition *cv = NULL, *theirs = NULL;
    double t0;

    PT_ASSERT_EQ(pt_condition_open(env->c, "it.to.cv", NULL, 0, 0, &cv), 0);
    PT_ASSERT_EQ(pt_condition_acquire(cv, 1, PT_FOREVER), 1);

    t0 = harness_now();
    PT_ASSERT_EQ(pt_condition_wait(cv, TIMEOUT_S), 0);
    check_elapsed("Condition wait", t0);

    /* The lock is held again after a timed-out wait. */
    PT_ASSERT_EQ(pt_condition_open(env->other, "it.to.cv", NULL, 0, 0, &theirs), 0);
    PT_ASSERT_EQ(pt_condition_acquire(theirs, 0, PT_FOREVER), 0);
    PT_ASSERT_EQ(pt_condition_release(cv), 0);
    PT_ASSERT_EQ(pt_condition_acquire(theirs, 0, PT_FOREVER), 1);
    PT_ASSERT_EQ(pt_condition_release(theirs), 0);
    PT_ASSERT_EQ(pt_condition_close(theirs), 0);
    PT_ASSERT_EQ(pt_condition_close(cv), 0);
    env->h->passed = 1;
}

static void test_event_wait_timeout(void **state)
{
    timeout_env *env = timeout_begin(state);
    pt_event *e = NULL;
    double t0;

    PT_ASSERT_EQ(pt_event_open(env->c, "it.to.event", 0, 0, &e), 0);
    t0 = harness_now();
    PT_ASSERT_EQ(pt_event_wait(e, TIMEOUT_S), 0);
    check_elapsed("Event wait", t0);
    PT_ASSERT_EQ(pt_event_close(e), 0);
    env->h->passed = 1;
}

static void test_semaphore_acquire_timeout(void **state)
{
    timeout_env *env = timeout_begin(state);
    pt_semaphore *s = NULL;
    int64_t value = -1;
    double t0;

    PT_ASSERT_EQ(pt_semaphore_open(env->c, "it.to.sem", 0, 0, 0, 0, &s), 0);
    t0 = harness_now();
    PT_ASSERT_EQ(pt_semaphore_acquire(s, 1, TIMEOUT_S), 0);
    check_elapsed("Semaphore acquire", t0);

    /* No wake-up for a waiter that already timed out: the permit stays. */
    PT_ASSERT_EQ(pt_semaphore_release(s, 1), 0);
    PT_ASSERT_EQ(pt_semaphore_value(s, &value), 0);
    assert_int_equal(value, 1);
    PT_ASSERT_EQ(pt_semaphore_close(s), 0);
    env->h->passed = 1;
}

static void test_barrier_wait_timeout_breaks(void **state)
{
    timeout_env *env = timeout_begin(state);
    pt_barrier *b = NULL;
    double t0;

    PT_ASSERT_EQ(pt_barrier_open(env->c, "it.to.barrier", 2, NULL, NULL, PT_FOREVER, 0, 0, &b), 0);
    t0 = harness_now();
    PT_ASSERT_EQ(pt_barrier_wait(b, TIMEOUT_S), PT_EBROKEN);
    check_elapsed("Barrier wait", t0);
    PT_ASSERT_EQ(pt_barrier_broken(b), 1);
    PT_ASSERT_EQ(pt_barrier_n_waiting(b), 0);
    t0 = harness_now();
    PT_ASSERT_EQ(pt_barrier_wait(b, PT_FOREVER), PT_EBROKEN);
    if (harness_now() - t0 > SLACK_S)
        fail_msg("a wait on a broken barrier took %.1f ms, want at once",
                 (harness_now() - t0) * 1e3);
    PT_ASSERT_EQ(pt_barrier_close(b), 0);
    env->h->passed = 1;
}

/* wait(PT_FOREVER) uses the barrier's default timeout, as wait(None) does. */
static void test_barrier_default_timeout(void **state)
{
    timeout_env *env = timeout_begin(state);
    pt_barrier *b = NULL;
    double t0;

    PT_ASSERT_EQ(
        pt_barrier_open(env->c, "it.to.barrier.default", 2, NULL, NULL, TIMEOUT_S, 0, 0, &b), 0);
    t0 = harness_now();
    PT_ASSERT_EQ(pt_barrier_wait(b, PT_FOREVER), PT_EBROKEN);
    check_elapsed("Barrier wait with the default timeout", t0);
    PT_ASSERT_EQ(pt_barrier_broken(b), 1);
    PT_ASSERT_EQ(pt_barrier_close(b), 0);
    env->h->passed = 1;
}

/* Timeout arguments refused as Python refuses them, through the daemon. */
static void test_timeout_argument_errors(void **state)
{
    timeout_env *env = timeout_begin(state);
    pt_lock *l = NULL;
    pt_semaphore *s = NULL;
    pt_condition *cv = NULL;
    pt_event *e = NULL;
    double t0;

    PT_ASSERT_EQ(pt_lock_open(env->c, "it.to.args", 0, 0, &l), 0);
    PT_ASSERT_EQ(pt_lock_acquire(l, 0, 0.5), PT_EINVAL);     /* timeout with blocking=False */
    PT_ASSERT_EQ(pt_lock_acquire(l, 1, -2.0), PT_EINVAL);    /* negative other than -1 */
    PT_ASSERT_EQ(pt_lock_acquire(l, 1, 1e10), PT_EOVERFLOW); /* above TIMEOUT_MAX */
    PT_ASSERT_EQ(pt_lock_locked(l), 0);
    PT_ASSERT_EQ(pt_lock_acquire(l, 1, PT_TIMEOUT_MAX), 1); /* the maximum itself is fine */
    PT_ASSERT_EQ(pt_lock_acquire(l, 1, 0), 0);              /* zero: try once */
    PT_ASSERT_EQ(pt_lock_release(l), 0);
    PT_ASSERT_EQ(pt_lock_close(l), 0);

    PT_ASSERT_EQ(pt_semaphore_open(env->c, "it.to.args.sem", 0, 0, 0, 0, &s), 0);
    PT_ASSERT_EQ(pt_semaphore_acquire(s, 0, 0.5), PT_EINVAL);
    PT_ASSERT_EQ(pt_semaphore_acquire(s, 1, 0), 0);
    PT_ASSERT_EQ(pt_semaphore_release(s, 0), PT_EINVAL);
    PT_ASSERT_EQ(pt_semaphore_close(s), 0);

    /* A negative wait timeout does not block (Python: wait(-1) on a
     * Condition returns False at once). */
    PT_ASSERT_EQ(pt_condition_open(env->c, "it.to.args.cv", NULL, 0, 0, &cv), 0);
    PT_ASSERT_EQ(pt_condition_acquire(cv, 1, PT_FOREVER), 1);
    t0 = harness_now();
    PT_ASSERT_EQ(pt_condition_wait(cv, -0.5), 0);
    PT_ASSERT_EQ(pt_condition_wait(cv, 0), 0);
    if (harness_now() - t0 > SLACK_S)
        fail_msg("Condition wait with timeout -0.5 and 0 blocked for %.1f ms",
                 (harness_now() - t0) * 1e3);
    PT_ASSERT_EQ(pt_condition_release(cv), 0);
    PT_ASSERT_EQ(pt_condition_close(cv), 0);

    PT_ASSERT_EQ(pt_event_open(env->c, "it.to.args.event", 0, 0, &e), 0);
    t0 = harness_now();
    PT_ASSERT_EQ(pt_event_wait(e, 0), 0);
    PT_ASSERT_EQ(pt_event_wait(e, -0.5), 0);
    if (harness_now() - t0 > SLACK_S)
        fail_msg("Event wait with timeout 0 and -0.5 blocked for %.1f ms",
                 (harness_now() - t0) * 1e3);
    PT_ASSERT_EQ(pt_event_close(e), 0);
    env->h->passed = 1;
}

/* A call made in a thread of this process, so the test can watch it wait. */
typedef struct thread_call {
    pt_semaphore *s;
    pt_barrier *b;
    double timeout;
    atomic_int result;
} thread_call;

static void *thread_sem_acquire(void *arg)
{
    thread_call *tc = arg;

    atomic_store(&tc->result, pt_semaphore_acquire(tc->s, 1, tc->timeout));
    return NULL;
}

static void *thread_barrier_wait(void *arg)
{
    thread_call *tc = arg;

    atomic_store(&tc->result, pt_barrier_wait(tc->b, tc->timeout));
    return NULL;
}

/* Non-zero (7) from its fifth call on: wait_for must keep polling. */
static int nan_pred_calls;

static int nan_pred(void *arg)
{
    (void)arg;
    return ++nan_pred_calls >= 5 ? 7 : 0;
}

/*
 * NaN as threading treats it: the lock's own acquire refuses it
 * (ValueError); Condition.wait and Event.wait do not block on it (NaN is not
 * > 0); the loops of wait_for, Semaphore.acquire and Barrier.wait compute
 * a NaN end time that never passes, so they wait until they succeed.
 */
static void test_nan_timeouts_as_threading(void **state)
{
    timeout_env *env = timeout_begin(state);
    pt_lock *l = NULL;
    pt_rlock *rl = NULL;
    pt_condition *cv = NULL;
    pt_event *e = NULL;
    pt_semaphore *s = NULL, *so = NULL;
    pt_barrier *b = NULL, *bd = NULL;
    thread_call nc = {.timeout = NAN};
    pthread_t th;

    PT_ASSERT_EQ(pt_lock_open(env->c, "it.to.nan.lock", 0, 0, &l), 0);
    PT_ASSERT_EQ(pt_lock_acquire(l, 1, NAN), PT_EINVAL);
    PT_ASSERT_EQ(pt_lock_acquire(l, 0, NAN), PT_EINVAL);
    PT_ASSERT_EQ(pt_lock_locked(l), 0);
    PT_ASSERT_EQ(pt_rlock_open(env->c, "it.to.nan.rlock", 0, 0, &rl), 0);
    PT_ASSERT_EQ(pt_rlock_acquire(rl, 1, NAN), PT_EINVAL);

    PT_ASSERT_EQ(pt_condition_open(env->c, "it.to.nan.cv", NULL, 0, 0, &cv), 0);
    PT_ASSERT_EQ(pt_condition_acquire(cv, 1, NAN), PT_EINVAL);
    PT_ASSERT_EQ(pt_condition_acquire(cv, 1, PT_FOREVER), 1);
    PT_ASSERT_EQ(pt_condition_wait(cv, NAN), 0);
    nan_pred_calls = 4;
    PT_ASSERT_EQ(pt_condition_wait_for(cv, nan_pred, NULL, NAN), 7); /* true at once */
    nan_pred_calls = 0;
    PT_ASSERT_EQ(pt_condition_wait_for(cv, nan_pred, NULL, NAN), 7); /* after 4 passes */
    assert_int_equal(nan_pred_calls, 5);
    PT_ASSERT_EQ(pt_condition_release(cv), 0);
    PT_ASSERT_EQ(pt_condition_close(cv), 0);

    PT_ASSERT_EQ(pt_event_open(env->c, "it.to.nan.event", 0, 0, &e), 0);
    PT_ASSERT_EQ(pt_event_wait(e, NAN), 0);
    PT_ASSERT_EQ(pt_event_set(e), 0);
    PT_ASSERT_EQ(pt_event_wait(e, NAN), 1);
    PT_ASSERT_EQ(pt_event_close(e), 0);

    PT_ASSERT_EQ(pt_semaphore_open(env->c, "it.to.nan.sem", 1, 0, 0, 0, &s), 0);
    PT_ASSERT_EQ(pt_semaphore_acquire(s, 1, NAN), 1);
    PT_ASSERT_EQ(pt_semaphore_acquire(s, 0, NAN), PT_EINVAL);
    nc.s = s;
    atomic_store(&nc.result, 99);
    assert_int_equal(pthread_create(&th, NULL, thread_sem_acquire, &nc), 0);
    harness_wait_waiters(env->h, "it.to.nan.sem", PT_KIND_SEMAPHORE, 1, HARNESS_DEADLINE);
    PT_ASSERT_EQ(pt_semaphore_open(env->other, "it.to.nan.sem", 1, 0, 0, 0, &so), 0);
    PT_ASSERT_EQ(pt_semaphore_release(so, 1), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    PT_ASSERT_EQ(atomic_load(&nc.result), 1);
    PT_ASSERT_EQ(pt_semaphore_close(so), 0);
    PT_ASSERT_EQ(pt_semaphore_close(s), 0);

    /* a NaN default timeout is taken, and waits as NaN does */
    PT_ASSERT_EQ(pt_barrier_open(env->c, "it.to.nan.barrier", 2, NULL, NULL, NAN, 0, 0, &b), 0);
    PT_ASSERT_EQ(pt_barrier_open(env->other, "it.to.nan.barrier", 2, NULL, NULL, NAN, 0, 0, &bd),
                 0);
    nc.b = b;
    atomic_store(&nc.result, 99);
    assert_int_equal(pthread_create(&th, NULL, thread_barrier_wait, &nc), 0);
    harness_wait_waiters(env->h, "it.to.nan.barrier", PT_KIND_BARRIER, 1, HARNESS_DEADLINE);
    PT_ASSERT_EQ(pt_barrier_wait(bd, PT_FOREVER), 1);
    assert_int_equal(pthread_join(th, NULL), 0);
    PT_ASSERT_EQ(atomic_load(&nc.result), 0);
    PT_ASSERT_EQ(pt_barrier_broken(b), 0);
    PT_ASSERT_EQ(pt_barrier_close(bd), 0);
    PT_ASSERT_EQ(pt_barrier_close(b), 0);
    PT_ASSERT_EQ(pt_rlock_close(rl), 0);
    PT_ASSERT_EQ(pt_lock_close(l), 0);
    env->h->passed = 1;
}

/*
 * threading.Barrier takes any timeout at creation and fails with
 * OverflowError only when a party has to wait longer than TIMEOUT_MAX: the
 * last party goes as usual, and the one refused leaves without breaking it.
 */
static void test_barrier_timeout_past_max(void **state)
{
    timeout_env *env = timeout_begin(state);
    pt_barrier *one = NULL, *b = NULL, *bo = NULL;
    thread_call tc = {.timeout = 5.0};
    pthread_t th;

    PT_ASSERT_EQ(pt_barrier_open(env->c, "it.to.big.one", 1, NULL, NULL, 1e20, 0, 0, &one), 0);
    PT_ASSERT_EQ(pt_barrier_wait(one, PT_FOREVER), 0);
    PT_ASSERT_EQ(pt_barrier_wait(one, 1e20), 0);
    PT_ASSERT_EQ(pt_barrier_close(one), 0);

    PT_ASSERT_EQ(pt_barrier_open(env->c, "it.to.big", 2, NULL, NULL, 1e20, 0, 0, &b), 0);
    PT_ASSERT_EQ(pt_barrier_wait(b, PT_FOREVER), PT_EOVERFLOW);
    PT_ASSERT_EQ(pt_barrier_wait(b, 1e20), PT_EOVERFLOW);
    PT_ASSERT_EQ(pt_barrier_broken(b), 0);
    PT_ASSERT_EQ(pt_barrier_n_waiting(b), 0);
    /* the last party to arrive does not wait, so its timeout is not read */
    PT_ASSERT_EQ(pt_barrier_open(env->other, "it.to.big", 2, NULL, NULL, 1e20, 0, 0, &bo), 0);
    tc.b = bo;
    atomic_store(&tc.result, 99);
    assert_int_equal(pthread_create(&th, NULL, thread_barrier_wait, &tc), 0);
    harness_wait_waiters(env->h, "it.to.big", PT_KIND_BARRIER, 1, HARNESS_DEADLINE);
    PT_ASSERT_EQ(pt_barrier_wait(b, PT_FOREVER), 1);
    assert_int_equal(pthread_join(th, NULL), 0);
    PT_ASSERT_EQ(atomic_load(&tc.result), 0);
    PT_ASSERT_EQ(pt_barrier_close(bo), 0);
    PT_ASSERT_EQ(pt_barrier_close(b), 0);
    env->h->passed = 1;
}

/* utime + stime of a process in seconds, from /proc. */
static double cpu_seconds(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long long ut = 0, st = 0;
    FILE *f;
    size_t n;

    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    assert_non_null(f);
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')'); /* the command may contain spaces */
    assert_non_null(p);
    /* After ") ": state ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime stime. */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        fail_msg("cannot parse %s", path);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/*
 * The largest timeouts park like any other wait: the waiter still gets the
 * lock on release, and the daemon does not spin on a timer it cannot arm.
 */
static void test_timeout_max_parks_quietly(void **state)
{
    timeout_env *env = timeout_begin(state);
    pt_lock *theirs = NULL;
    pt_event *e = NULL;
    raw_conn rc;
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    Pythread__Response *resp = NULL;
    uint32_t lh = 0, eh = 0;
    double cpu0, t0;

    PT_ASSERT_EQ(pt_lock_open(env->other, "it.to.max", 0, 0, &theirs), 0);
    PT_ASSERT_EQ(pt_lock_acquire(theirs, 1, PT_FOREVER), 1);
    PT_ASSERT_EQ(pt_event_open(env->other, "it.to.max.event", 0, 0, &e), 0);

    /* A raw session parks an acquire and an event wait at TIMEOUT_MAX. */
    assert_int_equal(raw_connect(&rc, env->h->sock), 0);
    assert_int_equal(raw_hello(&rc, PT_PROTOCOL_VERSION), 0);
    assert_int_equal(raw_open(&rc, "it.to.max", PT_KIND_LOCK, 0, &lh), 0);
    assert_int_equal(raw_open(&rc, "it.to.max.event", PT_KIND_EVENT, 0, &eh), 0);
    req.id = 500;
    req.op = PYTHREAD__OP__OP_ACQUIRE;
    req.has_handle = 1;
    req.handle = lh;
    req.has_timeout = 1;
    req.timeout = PT_TIMEOUT_MAX;
    assert_int_equal(raw_send_request(&rc, &req), 0);
    req.id = 501;
    req.op = PYTHREAD__OP__OP_EVENT_WAIT;
    req.handle = eh;
    req.timeout = PT_TIMEOUT_MAX / 2;
    assert_int_equal(raw_send_request(&rc, &req), 0);
    harness_wait_waiters(env->h, "it.to.max", PT_KIND_LOCK, 1, HARNESS_DEADLINE);
    harness_wait_waiters(env->h, "it.to.max.event", PT_KIND_EVENT, 1, HARNESS_DEADLINE);

    /* A measuring window, not a wait for anything to happen. */
    cpu0 = cpu_seconds(env->h->daemon);
    t0 = harness_now();
    while (harness_now() < t0 + 0.3)
        harness_tick();
    if (cpu_seconds(env->h->daemon) - cpu0 > 0.1)
        fail_msg("the daemon used %.0f ms of CPU in 300 ms with only TIMEOUT_MAX waiters parked",
                 (cpu_seconds(env->h->daemon) - cpu0) * 1e3);

    PT_ASSERT_EQ(pt_lock_release(theirs), 0);
    PT_ASSERT_EQ(pt_event_set(e), 0);
    for (int i = 0; i < 2; i++) {
        if (raw_recv(&rc, HARNESS_DEADLINE, &resp) != RAW_FRAME) {
            raw_close(&rc);
            fail_msg("a TIMEOUT_MAX waiter got no answer after its release/set");
        }
        if ((resp->id != 500 && resp->id != 501) || (resp->has_status && resp->status) ||
            !resp->ok) {
            raw_close(&rc);
            fail_msg("request %llu: status %d, ok %d; want granted", (unsigned long long)resp->id,
                     resp->has_status ? resp->status : 0, (int)resp->ok);
        }
    }
    raw_close(&rc);
    PT_ASSERT_EQ(pt_event_close(e), 0);
    PT_ASSERT_EQ(pt_lock_close(theirs), 0);
    env->h->passed = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lock_acquire_timeout, timeout_setup, timeout_teardown),
        cmocka_unit_test_setup_teardown(test_rlock_acquire_timeout, timeout_setup,
                                        timeout_teardown),
        cmocka_unit_test_setup_teardown(test_condition_wait_timeout, timeout_setup,
                                        timeout_teardown),
        cmocka_unit_test_setup_teardown(test_event_wait_timeout, timeout_setup, timeout_teardown),
        cmocka_unit_test_setup_teardown(test_semaphore_acquire_timeout, timeout_setup,
                                        timeout_teardown),
        cmocka_unit_test_setup_teardown(test_barrier_wait_timeout_breaks, timeout_setup,
                                        timeout_teardown),
        cmocka_unit_test_setup_teardown(test_barrier_default_timeout, timeout_setup,
                                        timeout_teardown),
        cmocka_unit_test_setup_teardown(test_timeout_argument_errors, timeout_setup,
                                        timeout_teardown),
        cmocka_unit_test_setup_teardown(test_nan_timeouts_as_threading, timeout_setup,
                                        timeout_teardown),
        cmocka_unit_test_setup_teardown(test_barrier_timeout_past_max, timeout_setup,
                                        timeout_teardown),
        cmocka_unit_test_setup_teardown(test_timeout_max_parks_quietly, timeout_setup,
                                        timeout_teardown),
    };

    return cmocka_run_group_tests_name("integration: timeouts", tests, NULL, NULL);
}
