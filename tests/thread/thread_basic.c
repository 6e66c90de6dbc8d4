/*
 * thread_basic.c - the Thread object: names, start, join, is_alive, ident,
 * daemon, stack size, and 100 threads seen through enumerate/active_count.
 * cmocka asserts only in the test's own thread: workers record what they
 * see and the test checks it after joining them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tutil.h"

static int ret_zero(void *arg)
{
    atomic_int *ran = arg;

    if (ran != NULL)
        atomic_fetch_add(ran, 1);
    return 0;
}

static int wait_gate(void *arg)
{
    tu_gate_wait(arg);
    return 0;
}

/* "Thread-N" counts up per process; a given name takes no number. */
static void test_default_names(void **state)
{
    pt_thread *a, *b, *c, *named, *d;
    char buf[64];
    unsigned long n;

    (void)state;
    assert_int_equal(pt_thread_create(&a, ret_zero, NULL, NULL), 0);
    assert_int_equal(pt_thread_create(&b, ret_zero, NULL, ""), 0);
    assert_int_equal(pt_thread_create(&named, ret_zero, NULL, "worker"), 0);
    assert_int_equal(pt_thread_create(&c, ret_zero, NULL, NULL), 0);
    assert_int_equal(pt_timer_create(&d, 1.0, ret_zero, NULL), 0);
    assert_int_equal(sscanf(tu_name(a, buf, sizeof(buf)), "Thread-%lu", &n), 1);
    assert_true(n >= 1);
    snprintf(buf, sizeof(buf), "Thread-%lu", n + 1);
    assert_int_equal(pt_thread_get_name(b, NULL, 0), (int)strlen(buf));
    assert_string_equal(tu_name(b, buf + 32, 32), buf);
    assert_string_equal(tu_name(named, buf, sizeof(buf)), "worker");
    snprintf(buf + 32, 32, "Thread-%lu", n + 2);
    assert_string_equal(tu_name(c, buf, 32), buf + 32);
    snprintf(buf + 32, 32, "Thread-%lu", n + 3);
    assert_string_equal(tu_name(d, buf, 32), buf + 32);
    pt_thread_unref(a);
    pt_thread_unref(b);
    pt_thread_unref(c);
    pt_thread_unref(d);
    pt_thread_unref(named);
}

static void test_start_join(void **state)
{
    atomic_int ran = 0;
    pt_thread *t;
    unsigned long ident, native;

    (void)state;
    assert_int_equal(pt_thread_create(&t, ret_zero, &ran, "sj"), 0);
    assert_int_equal(pt_thread_ident(t), 0);
    assert_int_equal(pt_thread_native_id(t), 0);
    assert_int_equal(pt_thread_is_alive(t), 0);
    assert_int_equal(pt_thread_start(t), 0);
    ident = pt_thread_ident(t);
    native = pt_thread_native_id(t);
    assert_true(ident != 0);
    assert_true(native != 0);
    assert_true(native != (unsigned long)getpid());
    assert_int_equal(pt_thread_join(t, PT_FOREVER), 0);
    assert_int_equal(atomic_load(&ran), 1);
    assert_int_equal(pt_thread_is_alive(t), 0);
    /* kept after exit */
    assert_true(pt_thread_ident(t) == ident);
    assert_true(pt_thread_native_id(t) == native);
    /* joined any number of times */
    assert_int_equal(pt_thread_join(t, PT_FOREVER), 0);
    assert_int_equal(pt_thread_join(t, 0), 0);
    pt_thread_unref(t);
}

static void test_null_target(void **state)
{
    pt_thread *t;

    (void)state;
    assert_int_equal(pt_thread_create(&t, NULL, NULL, NULL), 0);
    assert_int_equal(pt_thread_start(t), 0);
    assert_int_equal(pt_thread_join(t, PT_FOREVER), 0);
    assert_int_equal(pt_thread_is_alive(t), 0);
    pt_thread_unref(t);
    assert_int_equal(pt_thread_create(NULL, NULL, NULL, NULL), PT_EINVAL);
}

static void test_start_twice(void **state)
{
    struct tu_gate g;
    pt_thread *t;

    (void)state;
    tu_gate_init(&g);
    assert_int_equal(pt_thread_create(&t, wait_gate, &g, "twice"), 0);
    assert_int_equal(pt_thread_start(t), 0);
    assert_int_equal(pt_thread_start(t), PT_ERUNTIME);
    assert_non_null(strstr(pt_last_error_message(), "threads can only be started once"));
    assert_non_null(strstr(pt_last_error_message(), "'twice'"));
    tu_gate_open(&g);
    assert_int_equal(pt_thread_join(t, PT_FOREVER), 0);
    assert_int_equal(pt_thread_start(t), PT_ERUNTIME);
    pt_thread_unref(t);
    tu_gate_destroy(&g);
}

static void test_join_unstarted(void **state)
{
    pt_thread *t;

    (void)state;
    assert_int_equal(pt_thread_create(&t, ret_zero, NULL, "idle"), 0);
    assert_int_equal(pt_thread_join(t, PT_FOREVER), PT_ERUNTIME);
    assert_non_null(strstr(pt_last_error_message(), "cannot join thread before it is started"));
    assert_int_equal(pt_thread_join(t, 0.1), PT_ERUNTIME);
    pt_thread_unref(t);
}

struct self_join {
    atomic_int rc;
    atomic_int alive_inside;
    char message[512];
};

static int join_self(void *arg)
{
    struct self_join *r = arg;

    atomic_store(&r->alive_inside, pt_thread_is_alive(pt_current_thread()));
    atomic_store(&r->rc, pt_thread_join(pt_current_thread(), 1.0));
    snprintf(r->message, sizeof(r->message), "%s", pt_last_error_message());
    return 0;
}

static void test_join_current(void **state)
{
    struct self_join r = {0};
    pt_thread *t;

    (void)state;
    assert_int_equal(pt_thread_create(&t, join_self, &r, NULL), 0);
    assert_int_equal(pt_thread_start(t), 0);
    assert_int_equal(pt_thread_join(t, PT_FOREVER), 0);
    assert_int_equal(atomic_load(&r.rc), PT_ERUNTIME);
    assert_int_equal(atomic_load(&r.alive_inside), 1);
    assert_non_null(strstr(r.message, "cannot join current thread"));
    /* the main thread too */
    assert_int_equal(pt_thread_join(pt_main_thread(), PT_FOREVER), PT_ERUNTIME);
    assert_non_null(strstr(pt_last_error_message(), "cannot join current thread"));
    pt_thread_unref(t);
}

/* Alive from before the target runs (seen from inside and right after
 * start) until it returns; not alive after join. */
static void test_is_alive_span(void **state)
{
    struct self_join r = {0};
    struct tu_gate g;
    pt_thread *t;

    (void)state;
    tu_gate_init(&g);
    assert_int_equal(pt_thread_create(&t, wait_gate, &g, NULL), 0);
    assert_int_equal(pt_thread_is_alive(t), 0);
    assert_int_equal(pt_thread_start(t), 0);
    assert_int_equal(pt_thread_is_alive(t), 1);
    assert_true(tu_listed(t));
    tu_gate_open(&g);
    assert_int_equal(pt_thread_join(t, PT_FOREVER), 0);
    assert_int_equal(pt_thread_is_alive(t), 0);
    assert_false(tu_listed(t));
    pt_thread_unref(t);
    tu_gate_destroy(&g);

    assert_int_equal(pt_thread_create(&t, join_self, &r, NULL), 0);
    assert_int_equal(pt_thread_start(t), 0);
    assert_int_equal(pt_thread_join(t, PT_FOREVER), 0);
    assert_int_equal(atomic_load(&r.alive_inside), 1);
    pt_thread_unref(t);
}

/* A join whose timeout passes first returns 0 with the thread alive, after
 * at least the timeout; negative timeouts act as 0. */
static void test_join_timeout(void **state)
{
    struct tu_gate g;
    pt_thread *t;
    double t0;

    (void)state;
    tu_gate_init(&g);
    assert_int_equal(pt_thread_create(&t, wait_gate, &g, NULL), 0);
    assert_int_equal(pt_thread_start(t), 0);
    t0 = tu_now();
    assert_int_equal(pt_thread_join(t, 0.05), 0);
    assert_true(tu_now() - t0 >= 0.05);
    assert_int_equal(pt_thread_is_alive(t), 1);
    assert_int_equal(pt_thread_join(t, 0), 0);
    assert_int_equal(pt_thread_join(t, -5.0), 0);
    assert_int_equal(pt_thread_is_alive(t), 1);
    tu_gate_open(&g);
    assert_int_equal(pt_thread_join(t, TU_PATIENCE), 0);
    assert_int_equal(pt_thread_is_alive(t), 0);
    pt_thread_unref(t);
    tu_gate_destroy(&g);
}

/* Python's join reads the timeout only while the thread runs: NaN is
 * ValueError and one past TIMEOUT_MAX OverflowError then; once the end is
 * known, join returns at once whatever the timeout. */
static void test_join_timeout_errors(void **state)
{
    struct tu_gate g;
    pt_thread *t;

    (void)state;
    tu_gate_init(&g);
    assert_int_equal(pt_thread_create(&t, wait_gate, &g, NULL), 0);
    assert_int_equal(pt_thread_start(t), 0);
    assert_int_equal(pt_thread_join(t, PT_TIMEOUT_MAX * 2), PT_EOVERFLOW);
    assert_non_null(strstr(pt_last_error_message(), "timeout value is too large"));
    assert_int_equal(pt_thread_join(t, INFINITY), PT_EOVERFLOW);
    assert_int_equal(pt_thread_join(t, NAN), PT_EINVAL);
    tu_gate_open(&g);
    assert_int_equal(pt_thread_join(t, PT_TIMEOUT_MAX), 0);
    assert_int_equal(pt_thread_is_alive(t), 0);
    assert_int_equal(pt_thread_join(t, NAN), 0);
    assert_int_equal(pt_thread_join(t, PT_TIMEOUT_MAX * 2), 0);
    pt_thread_unref(t);
    tu_gate_destroy(&g);
}

struct joiner {
    pt_thread *target;
    atomic_int *done;
};

static int join_other(void *arg)
{
    struct joiner *j = arg;

    if (pt_thread_join(j->target, PT_FOREVER) == 0 && !pt_thread_is_alive(j->target))
        atomic_fetch_add(j->done, 1);
    return 0;
}

/* Several threads join the same one; all wake when it ends. */
static void test_many_joiners(void **state)
{
    enum { N = 8 };
    atomic_int done = 0;
    struct tu_gate g;
    struct joiner j;
    pt_thread *t, *w[N];

    (void)state;
    tu_gate_init(&g);
    assert_int_equal(pt_thread_create(&t, wait_gate, &g, NULL), 0);
    assert_int_equal(pt_thread_start(t), 0);
    j = (struct joiner){t, &done};
    for (int i = 0; i < N; i++) {
        assert_int_equal(pt_thread_create(&w[i], join_other, &j, NULL), 0);
        assert_int_equal(pt_thread_start(w[i]), 0);
    }
    assert_int_equal(atomic_load(&done), 0);
    tu_gate_open(&g);
    for (int i = 0; i < N; i++) {
        assert_int_equal(pt_thread_join(w[i], PT_FOREVER), 0);
        pt_thread_unref(w[i]);
    }
    assert_int_equal(atomic_load(&done), N);
    pt_thread_unref(t);
    tu_gate_destroy(&g);
}

struct daemon_probe {
    atomic_int daemon_of_child;
};

static int make_child(void *arg)
{
    struct daemon_probe *p = arg;
    pt_thread *c;

    if (pt_thread_create(&c, ret_zero, NULL, NULL) != 0)
        return 1;
    atomic_store(&p->daemon_of_child, pt_thread_is_daemon(c));
    pt_thread_unref(c);
    return 0;
}

/* Inherited from the creator, settable only before start. */
static void test_daemon(void **state)
{
    struct daemon_probe p = {0};
    struct tu_gate g;
    pt_thread *t;

    (void)state;
    tu_gate_init(&g);
    assert_int_equal(pt_thread_is_daemon(pt_main_thread()), 0);
    assert_int_equal(pt_thread_create(&t, wait_gate, &g, NULL), 0);
    assert_int_equal(pt_thread_is_daemon(t), 0);
    assert_int_equal(pt_thread_set_daemon(t, 1), 0);
    assert_int_equal(pt_thread_is_daemon(t), 1);
    assert_int_equal(pt_thread_set_daemon(t, 0), 0);
    assert_int_equal(pt_thread_set_daemon(t, 7), 0);
    assert_int_equal(pt_thread_is_daemon(t), 1);
    assert_int_equal(pt_thread_start(t), 0);
    assert_int_equal(pt_thread_set_daemon(t, 0), PT_ERUNTIME);
    assert_non_null(strstr(pt_last_error_message(), "cannot set daemon status of active thread"));
    assert_int_equal(pt_thread_is_daemon(t), 1);
    tu_gate_open(&g);
    assert_int_equal(pt_thread_join(t, PT_FOREVER), 0);
    assert_int_equal(pt_thread_set_daemon(t, 0), PT_ERUNTIME);
    pt_thread_unref(t);
    assert_int_equal(pt_thread_set_daemon(pt_main_thread(), 1), PT_ERUNTIME);

    /* a daemon's children are daemons, a non-daemon's are not */
    for (int daemon = 0; daemon <= 1; daemon++) {
        assert_int_equal(pt_thread_create(&t, make_child, &p, NULL), 0);
        assert_int_equal(pt_thread_set_daemon(t, daemon), 0);
        atomic_store(&p.daemon_of_child, -1);
        assert_int_equal(pt_thread_start(t), 0);
        assert_int_equal(pt_thread_join(t, PT_FOREVER), 0);
        assert_int_equal(atomic_load(&p.daemon_of_child), daemon);
        pt_thread_unref(t);
    }
    tu_gate_destroy(&g);
}

struct os_name {
    struct tu_gate read, renamed;
    char at_start[32];
    char after_rename[32];
};

static int read_os_name(void *arg)
{
    struct os_name *o = arg;

    pthread_getname_np(pthread_self(), o->at_start, sizeof(o->at_start));
    tu_gate_open(&o->read);
    tu_gate_wait(&o->renamed);
    pthread_getname_np(pthread_self(), o->after_rename, sizeof(o->after_rename));
    return 0;
}

/* The name is the OS thread's name too, cut to 15 bytes on a character
 * boundary; get_name truncates like snprintf. */
static void test_names_and_os_names(void **state)
{
    struct os_name o;
    pt_thread *t;
    char small[5];
    /* nine two-byte characters: 18 bytes, cut to 14, not 15 */
    const char *accents =
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9";

    (void)state;
    memset(&o, 0, sizeof(o));
    tu_gate_init(&o.read);
    tu_gate_init(&o.renamed);
    assert_int_equal(pt_thread_create(&t, read_os_name, &o, "a-very-long-thread-name"), 0);
    assert_int_equal(pt_thread_get_name(t, small, sizeof(small)), 23);
    assert_string_equal(small, "a-ve");
    assert_int_equal(pt_thread_get_name(t, NULL, 1), PT_EINVAL);
    assert_int_equal(pt_thread_start(t), 0);
    tu_gate_wait(&o.read);
    assert_int_equal(pt_thread_set_name(t, accents), 0);
    tu_gate_open(&o.renamed);
    assert_int_equal(pt_thread_join(t, PT_FOREVER), 0);
    assert_string_equal(o.at_start, "a-very-long-thr");
    assert_int_equal(strlen(o.after_rename), 14);
    assert_memory_equal(o.after_rename, accents, 14);
    assert_int_equal(pt_thread_set_name(t, NULL), PT_EINVAL);
    /* renaming a finished thread is allowed: only the object changes */
    assert_int_equal(pt_thread_set_name(t, "done"), 0);
    assert_string_equal(tu_name(t, small, sizeof(small)), "done");
    pt_thread_unref(t);
    tu_gate_destroy(&o.read);
    tu_gate_destroy(&o.renamed);
}

/* 100 threads, each held by its own gate, seen by enumerate and
 * active_count as they start and as they are joined one by one. */
static void test_hundred_threads(void **state)
{
    enum { N = 100 };
    struct tu_gate *g = calloc(N, sizeof(*g));
    pt_thread *t[N];
    int base = pt_active_count();

    (void)state;
    assert_non_null(g);
    assert_true(base >= 1);
    assert_true(tu_listed(pt_main_thread()));
    for (int i = 0; i < N; i++) {
        tu_gate_init(&g[i]);
        assert_int_equal(pt_thread_create(&t[i], wait_gate, &g[i], NULL), 0);
        assert_false(tu_listed(t[i]));
        assert_int_equal(pt_thread_start(t[i]), 0);
        assert_int_equal(pt_active_count(), base + i + 1);
        assert_true(tu_listed(t[i]));
    }
    {
        pt_thread *v[N + 16];
        int n = pt_enumerate(v, N + 16);

        assert_int_equal(n, base + N);
        for (int i = 0; i < n; i++)
            pt_thread_unref(v[i]);
    }
    for (int i = 0; i < N; i++) {
        tu_gate_open(&g[i]);
        assert_int_equal(pt_thread_join(t[i], PT_FOREVER), 0);
        assert_int_equal(pt_active_count(), base + N - i - 1);
        assert_false(tu_listed(t[i]));
        if (i + 1 < N)
            assert_true(tu_listed(t[i + 1]));
        assert_true(tu_listed(pt_main_thread()));
        pt_thread_unref(t[i]);
        tu_gate_destroy(&g[i]);
    }
    assert_int_equal(pt_active_count(), base);
    free(g);
}

static int read_stack_size(void *arg)
{
    _Atomic size_t *size = arg;
    pthread_attr_t attr;
    size_t s = 0;

    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        pthread_attr_getstacksize(&attr, &s);
        pthread_attr_destroy(&attr);
    }
    atomic_store(size, s);
    return 0;
}

static void test_thread_stack_size(void **state)
{
    _Atomic size_t seen = 0;
    pt_thread *t;

    (void)state;
    assert_int_equal(pt_thread_create(&t, read_stack_size, &seen, NULL), 0);
    assert_int_equal(pt_thread_set_stack_size(t, 1000), PT_EINVAL);
    assert_non_null(strstr(pt_last_error_message(), "size not valid: 1000 bytes"));
    assert_int_equal(pt_thread_set_stack_size(t, PT_STACK_MIN - 1), PT_EINVAL);
    assert_int_equal(pt_thread_set_stack_size(t, PT_STACK_MIN), 0);
    /* above the 8 MiB default, so the test can tell */
    assert_int_equal(pt_thread_set_stack_size(t, 16u << 20), 0);
    assert_int_equal(pt_thread_start(t), 0);
    assert_int_equal(pt_thread_set_stack_size(t, 1u << 20), PT_ERUNTIME);
    assert_int_equal(pt_thread_join(t, PT_FOREVER), 0);
    /* glibc may hand out a cached stack somewhat larger than asked */
    assert_true(atomic_load(&seen) >= (16u << 20));
    pt_thread_unref(t);
}

/* An OS thread that cannot be made is PT_ERUNTIME; the object stays
 * unstarted and can be started once the cause is gone. */
static void test_start_failure(void **state)
{
    atomic_int ran = 0;
    int base = pt_active_count();
    pt_thread *t;

    (void)state;
    assert_int_equal(pt_thread_create(&t, ret_zero, &ran, "huge"), 0);
    assert_int_equal(pt_thread_set_stack_size(t, (size_t)1 << 60), 0);
    assert_int_equal(pt_thread_start(t), PT_ERUNTIME);
    assert_non_null(strstr(pt_last_error_message(), "can't start new thread"));
    assert_int_equal(pt_active_count(), base);
    assert_int_equal(pt_thread_is_alive(t), 0);
    assert_int_equal(pt_thread_join(t, 0), PT_ERUNTIME);
    assert_int_equal(pt_thread_set_stack_size(t, 0), 0);
    assert_int_equal(pt_thread_start(t), 0);
    assert_int_equal(pt_thread_join(t, PT_FOREVER), 0);
    assert_int_equal(atomic_load(&ran), 1);
    pt_thread_unref(t);
}

/* The creator may drop its reference at once: the running thread keeps
 * its own until it ends. */
static void test_fire_and_forget(void **state)
{
    atomic_int ran = 0;
    int base = pt_active_count();

    (void)state;
    for (int i = 0; i < 20; i++) {
        pt_thread *t;

        assert_int_equal(pt_thread_create(&t, ret_zero, &ran, NULL), 0);
        assert_int_equal(pt_thread_start(t), 0);
        pt_thread_unref(t);
    }
    assert_true(tu_wait_int(&ran, 20));
    assert_true(tu_wait_active(base));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_names),
        cmocka_unit_test(test_start_join),
        cmocka_unit_test(test_null_target),
        cmocka_unit_test(test_start_twice),
        cmocka_unit_test(test_join_unstarted),
        cmocka_unit_test(test_join_current),
        cmocka_unit_test(test_is_alive_span),
        cmocka_unit_test(test_join_timeout),
        cmocka_unit_test(test_join_timeout_errors),
        cmocka_unit_test(test_many_joiners),
        cmocka_unit_test(test_daemon),
        cmocka_unit_test(test_names_and_os_names),
        cmocka_unit_test(test_hundred_threads),
        cmocka_unit_test(test_thread_stack_size),
        cmocka_unit_test(test_start_failure),
        cmocka_unit_test(test_fire_and_forget),
    };

    return tu_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
