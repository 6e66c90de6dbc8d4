/*
 * thread_timer.c - Timer: fires after its interval, cancel at 0 ms, in the
 * middle of the interval and after firing, and is a Thread in every other
 * respect (name, join, is_alive, excepthook, start once).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>

#include "tutil.h"

static atomic_int fired;

static int fire(void *arg)
{
    (void)arg;
    atomic_fetch_add(&fired, 1);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    atomic_store(&fired, 0);
    return 0;
}

static void test_fires_after_interval(void **state)
{
    pt_thread *t;
    double t0;
    char name[32];
    unsigned long n;

    (void)state;
    assert_int_equal(pt_timer_create(&t, 0.05, fire, NULL), 0);
    assert_int_equal(sscanf(tu_name(t, name, sizeof(name)), "Thread-%lu", &n), 1);
    assert_int_equal(pt_thread_is_daemon(t), 0);
    t0 = tu_now();
    assert_int_equal(pt_thread_start(t), 0);
    assert_true(tu_wait_int(&fired, 1));
    assert_true(tu_now() - t0 >= 0.05);
    assert_int_equal(pt_thread_join(t, PT_FOREVER), 0);
    assert_int_equal(pt_thread_is_alive(t), 0);
    assert_int_equal(atomic_load(&fired), 1);
    pt_thread_unref(t);
}

/* Timer(nan, f) fires at once in Python: its Event.wait(nan) does not
 * block, as NaN is not > 0. */
static void test_nan_interval_fires_at_once(void **state)
{
    pt_thread *t;

    (void)state;
    assert_int_equal(pt_timer_create(&t, NAN, fire, NULL), 0);
    assert_int_equal(pt_thread_start(t), 0);
    assert_true(tu_wait_int(&fired, 1));
    assert_int_equal(pt_thread_join(t, PT_FOREVER), 0);
    assert_int_equal(atomic_load(&fired), 1);
    pt_thread_unref(t);
}

/* Cancelled at 0 ms: before start, and at once after start. */
static void test_cancel_at_zero(void **state)
{
    pt_thread *t;
    double t0;

    (void)state;
    assert_int_equal(pt_timer_create(&t, 0, fire, NULL), 0);
    assert_int_equal(pt_timer_cancel(t), 0);
    assert_int_equal(pt_thread_start(t), 0);
    assert_int_equal(pt_thread_join(t, PT_FOREVER), 0);
    assert_int_equal(atomic_load(&fired), 0);
    pt_thread_unref(t);

    assert_int_equal(pt_timer_create(&t, 10.0, fire, NULL), 0);
    t0 = tu_now();
    assert_int_equal(pt_thread_start(t), 0);
    assert_int_equal(pt_timer_cancel(t), 0);
    assert_int_equal(pt_thread_join(t, TU_PATIENCE), 0);
    assert_int_equal(pt_thread_is_alive(t), 0);
    assert_true(tu_now() - t0 < 10.0);
    assert_int_equal(atomic_load(&fired), 0);
    pt_thread_unref(t);
}

/* Cancelled while it waits: the join shows it stopped long before the
 * interval, and its function never ran. */
static void test_cancel_mid_interval(void **state)
{
    pt_thread *t;
    double t0;

    (void)state;
    assert_int_equal(pt_timer_create(&t, 30.0, fire, NULL), 0);
    t0 = tu_now();
    assert_int_equal(pt_thread_start(t), 0);
    /* it is waiting: a join with a timeout times out */
    assert_int_equal(pt_thread_join(t, 0.05), 0);
    assert_int_equal(pt_thread_is_alive(t), 1);
    assert_int_equal(pt_timer_cancel(t), 0);
    assert_int_equal(pt_thread_join(t, 20.0), 0);
    assert_int_equal(pt_thread_is_alive(t), 0);
    assert_true(tu_now() - t0 < 20.0);
    assert_int_equal(atomic_load(&fired), 0);
    pt_thread_unref(t);
}

/* A cancel after the function ran changes nothing. */
static void test_cancel_after_firing(void **state)
{
    pt_thread *t;

    (void)state;
    assert_int_equal(pt_timer_create(&t, 0.001, fire, NULL), 0);
    assert_int_equal(pt_thread_start(t), 0);
    assert_true(tu_wait_int(&fired, 1));
    assert_int_equal(pt_timer_cancel(t), 0);
    assert_int_equal(pt_thread_join(t, PT_FOREVER), 0);
    assert_int_equal(pt_timer_cancel(t), 0);
    assert_int_equal(atomic_load(&fired), 1);
    pt_thread_unref(t);
}

/* A negative interval fires at once (Event.wait(-1) does not block);
 * PT_FOREVER waits until cancelled (Event.wait(None)). */
static void test_interval_edges(void **state)
{
    pt_thread *t;

    (void)state;
    assert_int_equal(pt_timer_create(&t, -3.0, fire, NULL), 0);
    assert_int_equal(pt_thread_start(t), 0);
    assert_int_equal(pt_thread_join(t, PT_FOREVER), 0);
    assert_int_equal(atomic_load(&fired), 1);
    pt_thread_unref(t);

    assert_int_equal(pt_timer_create(&t, PT_FOREVER, fire, NULL), 0);
    assert_int_equal(pt_thread_start(t), 0);
    assert_int_equal(pt_thread_join(t, 0.05), 0);
    assert_int_equal(pt_thread_is_alive(t), 1);
    assert_int_equal(pt_timer_cancel(t), 0);
    assert_int_equal(pt_thread_join(t, PT_FOREVER), 0);
    assert_int_equal(atomic_load(&fired), 1);
    pt_thread_unref(t);

    assert_int_equal(pt_timer_create(&t, 0.0, NULL, NULL), 0);
    assert_int_equal(pt_thread_start(t), 0);
    assert_int_equal(pt_thread_join(t, PT_FOREVER), 0);
    pt_thread_unref(t);
}

static void test_errors(void **state)
{
    pt_thread *t, *plain;

    (void)state;
    assert_int_equal(pt_timer_create(&t, PT_TIMEOUT_MAX * 2, fire, NULL), PT_EOVERFLOW);
    assert_int_equal(pt_timer_create(&t, INFINITY, fire, NULL), PT_EOVERFLOW);
    assert_int_equal(pt_timer_create(NULL, 1.0, fire, NULL), PT_EINVAL);
    assert_int_equal(pt_thread_create(&plain, fire, NULL, NULL), 0);
    assert_int_equal(pt_timer_cancel(plain), PT_EINVAL);
    assert_non_null(strstr(pt_last_error_message(), "not a timer"));
    pt_thread_unref(plain);

    assert_int_equal(pt_timer_create(&t, PT_TIMEOUT_MAX, fire, NULL), 0);
    assert_int_equal(pt_thread_join(t, PT_FOREVER), PT_ERUNTIME);
    assert_int_equal(pt_thread_is_alive(t), 0);
    assert_int_equal(pt_thread_start(t), 0);
    assert_int_equal(pt_thread_start(t), PT_ERUNTIME);
    assert_non_null(strstr(pt_last_error_message(), "Timer '"));
    assert_int_equal(pt_thread_set_daemon(t, 1), PT_ERUNTIME);
    assert_int_equal(pt_timer_cancel(t), 0);
    assert_int_equal(pt_thread_join(t, PT_FOREVER), 0);
    pt_thread_unref(t);
}

static atomic_int hook_calls;
static pt_thread *_Atomic hook_thread;
static atomic_int hook_status;

static void record_hook(pt_thread *thread, int status)
{
    atomic_store(&hook_thread, thread);
    atomic_store(&hook_status, status);
    atomic_fetch_add(&hook_calls, 1);
}

static int fail42(void *arg)
{
    (void)arg;
    return 42;
}

/* A failing function goes to the excepthook with the timer. */
static void test_failure_to_excepthook(void **state)
{
    pt_thread *t;

    (void)state;
    pt_excepthook_set(record_hook);
    assert_int_equal(pt_timer_create(&t, 0.0, fail42, NULL), 0);
    assert_int_equal(pt_thread_start(t), 0);
    assert_int_equal(pt_thread_join(t, PT_FOREVER), 0);
    pt_excepthook_set(pt_excepthook_original);
    assert_int_equal(atomic_load(&hook_calls), 1);
    assert_ptr_equal(atomic_load(&hook_thread), t);
    assert_int_equal(atomic_load(&hook_status), 42);
    pt_thread_unref(t);
}

/* Many timers at once, half of them cancelled. */
static void test_many_timers(void **state)
{
    enum { N = 40 };
    pt_thread *t[N];

    (void)state;
    for (int i = 0; i < N; i++) {
        assert_int_equal(pt_timer_create(&t[i], i % 2 ? 30.0 : 0.01, fire, NULL), 0);
        assert_int_equal(pt_thread_start(t[i]), 0);
    }
    for (int i = 1; i < N; i += 2)
        assert_int_equal(pt_timer_cancel(t[i]), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(pt_thread_join(t[i], TU_PATIENCE), 0);
        assert_int_equal(pt_thread_is_alive(t[i]), 0);
        pt_thread_unref(t[i]);
    }
    assert_int_equal(atomic_load(&fired), N / 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_fires_after_interval, setup),
        cmocka_unit_test_setup(test_nan_interval_fires_at_once, setup),
        cmocka_unit_test_setup(test_cancel_at_zero, setup),
        cmocka_unit_test_setup(test_cancel_mid_interval, setup),
        cmocka_unit_test_setup(test_cancel_after_firing, setup),
        cmocka_unit_test_setup(test_interval_edges, setup),
        cmocka_unit_test_setup(test_errors, setup),
        cmocka_unit_test_setup(test_failure_to_excepthook, setup),
        cmocka_unit_test_setup(test_many_timers, setup),
    };

    return tu_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
