/*
 * thread_module.c - the module functions: current_thread (dummies for
 * foreign threads), main_thread, enumerate, active_count, get_ident,
 * get_native_id, stack_size, settrace/setprofile, excepthook, TIMEOUT_MAX,
 * and the _thread layer: start_new_thread, interrupt_main, exit; and what a
 * fork leaves in the child.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tutil.h"

static int nothing(void *arg)
{
    (void)arg;
    return 0;
}

static int gate_target(void *arg)
{
    tu_gate_wait(arg);
    return 0;
}

static void test_timeout_max(void **state)
{
    (void)state;
    /* Python's threading.TIMEOUT_MAX on Linux */
    assert_true(PT_TIMEOUT_MAX == 9223372036.0);
    assert_true(PT_FOREVER == -1.0);
}

static void test_main_thread(void **state)
{
    pt_thread *m = pt_main_thread();
    char name[32];

    (void)state;
    assert_non_null(m);
    assert_ptr_equal(pt_current_thread(), m);
    assert_string_equal(tu_name(m, name, sizeof(name)), "MainThread");
    assert_int_equal(pt_thread_is_daemon(m), 0);
    assert_int_equal(pt_thread_is_alive(m), 1);
    assert_true(pt_thread_ident(m) == pt_get_ident());
    assert_true(pt_get_ident() == (unsigned long)pthread_self());
    assert_true(pt_thread_native_id(m) == (unsigned long)getpid());
    assert_true(pt_get_native_id() == (unsigned long)getpid());
    assert_int_equal(pt_thread_start(m), PT_ERUNTIME);
    assert_non_null(strstr(pt_last_error_message(), "threads can only be started once"));
    assert_int_equal(pt_thread_join(m, 0), PT_ERUNTIME);
    assert_true(tu_listed(m));
}

struct whoami {
    pt_thread *_Atomic current;
    atomic_ulong ident, native;
};

static int who(void *arg)
{
    struct whoami *w = arg;

    atomic_store(&w->current, pt_current_thread());
    atomic_store(&w->ident, pt_get_ident());
    atomic_store(&w->native, pt_get_native_id());
    return 0;
}

static void test_current_thread_in_thread(void **state)
{
    struct whoami w = {0};
    pt_thread *t;

    (void)state;
    assert_int_equal(pt_thread_create(&t, who, &w, NULL), 0);
    assert_int_equal(pt_thread_start(t), 0);
    assert_int_equal(pt_thread_join(t, PT_FOREVER), 0);
    assert_ptr_equal(atomic_load(&w.current), t);
    assert_true(atomic_load(&w.ident) == pt_thread_ident(t));
    assert_true(atomic_load(&w.native) == pt_thread_native_id(t));
    assert_true(atomic_load(&w.native) != pt_get_native_id());
    pt_thread_unref(t);
}

struct foreign {
    struct tu_gate looked, leave;
    pt_thread *dummy; /* with a reference */
    pt_thread *again;
    char name[32];
    int daemon, alive, child_daemon, child_rc;
};

static void *foreign_main(void *arg)
{
    struct foreign *f = arg;
    pt_thread *d = pt_current_thread(), *child;

    f->dummy = pt_thread_ref(d);
    f->again = pt_current_thread();
    pt_thread_get_name(d, f->name, sizeof(f->name));
    f->daemon = pt_thread_is_daemon(d);
    f->alive = pt_thread_is_alive(d);
    /* threads made here inherit the dummy's daemon flag */
    f->child_rc = pt_thread_create(&child, nothing, NULL, NULL);
    if (f->child_rc == 0) {
        f->child_daemon = pt_thread_is_daemon(child);
        pt_thread_unref(child);
    }
    tu_gate_open(&f->looked);
    tu_gate_wait(&f->leave);
    return NULL;
}

/* A thread the library did not start gets a dummy: "Dummy-N", alive,
 * daemonic, not joinable, listed until it exits. */
static void test_dummy_thread(void **state)
{
    struct foreign f;
    pthread_t th;
    int base = pt_active_count();
    unsigned long n;

    (void)state;
    memset(&f, 0, sizeof(f));
    tu_gate_init(&f.looked);
    tu_gate_init(&f.leave);
    assert_int_equal(pthread_create(&th, NULL, foreign_main, &f), 0);
    tu_gate_wait(&f.looked);
    assert_int_equal(sscanf(f.name, "Dummy-%lu", &n), 1);
    assert_ptr_equal(f.again, f.dummy);
    assert_int_equal(f.daemon, 1);
    assert_int_equal(f.alive, 1);
    assert_int_equal(f.child_rc, 0);
    assert_int_equal(f.child_daemon, 1);
    assert_true(pt_thread_ident(f.dummy) == (unsigned long)th);
    assert_int_equal(pt_thread_join(f.dummy, PT_FOREVER), PT_ERUNTIME);
    assert_non_null(strstr(pt_last_error_message(), "cannot join a dummy thread"));
    assert_int_equal(pt_thread_set_daemon(f.dummy, 0), PT_ERUNTIME);
    assert_int_equal(pt_active_count(), base + 1);
    assert_true(tu_listed(f.dummy));
    tu_gate_open(&f.leave);
    assert_int_equal(pthread_join(th, NULL), 0);
    /* gone with its thread */
    assert_int_equal(pt_active_count(), base);
    assert_false(tu_listed(f.dummy));
    assert_int_equal(pt_thread_is_alive(f.dummy), 0);
    pt_thread_unref(f.dummy);
    tu_gate_destroy(&f.looked);
    tu_gate_destroy(&f.leave);
}

static void test_enumerate_bounds(void **state)
{
    struct tu_gate g;
    pt_thread *t[3], *v[2];
    int base = pt_active_count(), n;

    (void)state;
    tu_gate_init(&g);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pt_thread_create(&t[i], gate_target, &g, NULL), 0);
        assert_int_equal(pt_thread_start(t[i]), 0);
    }
    n = pt_enumerate(v, 2);
    assert_int_equal(n, base + 3);
    assert_ptr_equal(v[0], pt_main_thread());
    pt_thread_unref(v[0]);
    pt_thread_unref(v[1]);
    assert_int_equal(pt_enumerate(NULL, 0), base + 3);
    assert_int_equal(pt_enumerate(NULL, 1), PT_EINVAL);
    tu_gate_open(&g);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pt_thread_join(t[i], PT_FOREVER), 0);
        pt_thread_unref(t[i]);
    }
    assert_int_equal(pt_active_count(), base);
    tu_gate_destroy(&g);
}

static int read_stack(void *arg)
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

/* 0 or at least 32 KiB, else ValueError; new threads use it. */
static void test_stack_size(void **state)
{
    _Atomic size_t seen = 0;
    size_t old = 1;
    pt_thread *t;

    (void)state;
    assert_int_equal(pt_stack_size_get(), 0);
    assert_int_equal(pt_stack_size_set(1000, &old), PT_EINVAL);
    assert_non_null(strstr(pt_last_error_message(), "size not valid: 1000 bytes"));
    assert_int_equal(old, 1);
    assert_int_equal(pt_stack_size_set(32767, NULL), PT_EINVAL);
    assert_int_equal(pt_stack_size_get(), 0);
    assert_int_equal(pt_stack_size_set(32768, &old), 0);
    assert_int_equal(old, 0);
    assert_int_equal(pt_stack_size_get(), 32768);
    assert_int_equal(pt_stack_size_set(16u << 20, &old), 0);
    assert_int_equal(old, 32768);
    assert_int_equal(pt_thread_create(&t, read_stack, &seen, NULL), 0);
    assert_int_equal(pt_thread_start(t), 0);
    assert_int_equal(pt_thread_join(t, PT_FOREVER), 0);
    assert_true(atomic_load(&seen) >= (16u << 20));
    pt_thread_unref(t);
    assert_int_equal(pt_stack_size_set(0, &old), 0);
    assert_int_equal(old, 16u << 20);
    assert_int_equal(pt_stack_size_get(), 0);
}

static atomic_int order;
static atomic_int trace_at, profile_at, target_at;
static pt_thread *_Atomic trace_thread;
static pt_thread *_Atomic profile_thread;

static void trace_hook(pt_thread *t)
{
    atomic_store(&trace_thread, t);
    atomic_store(&trace_at, atomic_fetch_add(&order, 1) + 1);
}

static void profile_hook(pt_thread *t)
{
    atomic_store(&profile_thread, t);
    atomic_store(&profile_at, atomic_fetch_add(&order, 1) + 1);
}

static int ordered_target(void *arg)
{
    (void)arg;
    atomic_store(&target_at, atomic_fetch_add(&order, 1) + 1);
    return 0;
}

static void run_one(pt_thread **t)
{
    atomic_store(&order, 0);
    atomic_store(&trace_at, 0);
    atomic_store(&profile_at, 0);
    atomic_store(&target_at, 0);
    assert_int_equal(pt_thread_create(t, ordered_target, NULL, NULL), 0);
    assert_int_equal(pt_thread_start(*t), 0);
    assert_int_equal(pt_thread_join(*t, PT_FOREVER), 0);
}

/* Hooks run in each new thread, trace then profile, before its target. */
static void test_trace_profile(void **state)
{
    pt_thread *t;

    (void)state;
    assert_null(pt_gettrace());
    assert_null(pt_getprofile());
    pt_settrace(trace_hook);
    pt_setprofile(profile_hook);
    assert_ptr_equal(pt_gettrace(), trace_hook);
    assert_ptr_equal(pt_getprofile(), profile_hook);
    run_one(&t);
    assert_int_equal(atomic_load(&trace_at), 1);
    assert_int_equal(atomic_load(&profile_at), 2);
    assert_int_equal(atomic_load(&target_at), 3);
    assert_ptr_equal(atomic_load(&trace_thread), t);
    assert_ptr_equal(atomic_load(&profile_thread), t);
    pt_thread_unref(t);

    pt_settrace(NULL);
    run_one(&t);
    assert_int_equal(atomic_load(&trace_at), 0);
    assert_int_equal(atomic_load(&profile_at), 1);
    assert_int_equal(atomic_load(&target_at), 2);
    pt_thread_unref(t);

    pt_setprofile(NULL);
    assert_null(pt_getprofile());
    run_one(&t);
    assert_int_equal(atomic_load(&profile_at), 0);
    assert_int_equal(atomic_load(&target_at), 1);
    pt_thread_unref(t);
}

static atomic_int hook_calls;
static pt_thread *_Atomic hook_thread;
static atomic_int hook_status;
static atomic_ulong hook_ident;

static void record_hook(pt_thread *thread, int status)
{
    atomic_store(&hook_thread, thread);
    atomic_store(&hook_status, status);
    atomic_store(&hook_ident, pt_get_ident());
    atomic_fetch_add(&hook_calls, 1);
}

static void other_hook(pt_thread *thread, int status)
{
    (void)thread;
    (void)status;
    atomic_fetch_add(&hook_calls, 100);
}

static int return_arg(void *arg)
{
    return (int)(intptr_t)arg;
}

static void run_status(int status, pt_thread **t)
{
    assert_int_equal(pt_thread_create(t, return_arg, (void *)(intptr_t)status, NULL), 0);
    assert_int_equal(pt_thread_start(*t), 0);
    assert_int_equal(pt_thread_join(*t, PT_FOREVER), 0);
}

/* A non-zero status goes to the excepthook, in the failing thread, with the
 * thread; the default and the original are kept apart. */
static void test_excepthook(void **state)
{
    pt_thread *t;

    (void)state;
    assert_ptr_equal(pt_excepthook_get(), pt_excepthook_original);
    pt_excepthook_set(record_hook);
    assert_ptr_equal(pt_excepthook_get(), record_hook);

    run_status(0, &t);
    assert_int_equal(atomic_load(&hook_calls), 0);
    pt_thread_unref(t);

    run_status(-7, &t);
    assert_int_equal(atomic_load(&hook_calls), 1);
    assert_ptr_equal(atomic_load(&hook_thread), t);
    assert_int_equal(atomic_load(&hook_status), -7);
    assert_true(atomic_load(&hook_ident) == pt_thread_ident(t));
    pt_thread_unref(t);

    /* NULL: each thread falls back to the hook set when it was made */
    assert_int_equal(pt_thread_create(&t, return_arg, (void *)(intptr_t)5, NULL), 0);
    pt_excepthook_set(NULL);
    assert_null(pt_excepthook_get());
    assert_int_equal(pt_thread_start(t), 0);
    assert_int_equal(pt_thread_join(t, PT_FOREVER), 0);
    assert_int_equal(atomic_load(&hook_calls), 2);
    assert_int_equal(atomic_load(&hook_status), 5);
    pt_thread_unref(t);
    /* and no thread can be made while it is NULL, as in Python */
    assert_int_equal(pt_thread_create(&t, nothing, NULL, NULL), PT_ERUNTIME);
    assert_non_null(strstr(pt_last_error_message(), "excepthook is NULL"));
    assert_int_equal(pt_timer_create(&t, 1.0, nothing, NULL), PT_ERUNTIME);

    /* a hook set later is the one called */
    pt_excepthook_set(record_hook);
    assert_int_equal(pt_thread_create(&t, return_arg, (void *)(intptr_t)9, NULL), 0);
    pt_excepthook_set(other_hook);
    assert_int_equal(pt_thread_start(t), 0);
    assert_int_equal(pt_thread_join(t, PT_FOREVER), 0);
    assert_int_equal(atomic_load(&hook_calls), 102);
    pt_thread_unref(t);

    pt_excepthook_set(pt_excepthook_original);
    assert_ptr_equal(pt_excepthook_get(), pt_excepthook_original);
}

struct exiter {
    pt_local *local;
    atomic_int before, after;
};

static atomic_int exit_dtors;

static void exit_dtor(void *block, void *arg)
{
    (void)block;
    (void)arg;
    atomic_fetch_add(&exit_dtors, 1);
}

static int exit_midway(void *arg)
{
    struct exiter *e = arg;

    pt_local_get(e->local);
    atomic_store(&e->before, 1);
    pt_thread_exit();
    atomic_store(&e->after, 1); /* never reached */
    return 1;
}

/* _thread.exit: the thread ends quietly, its locals destructed, its joiners
 * woken, no excepthook. */
static void test_thread_exit(void **state)
{
    struct exiter e = {0};
    int base = pt_active_count();
    pt_thread *t;

    (void)state;
    atomic_store(&hook_calls, 0);
    pt_excepthook_set(record_hook);
    assert_int_equal(pt_local_create(&e.local, 8, NULL, exit_dtor, NULL), 0);
    assert_int_equal(pt_thread_create(&t, exit_midway, &e, NULL), 0);
    assert_int_equal(pt_thread_start(t), 0);
    assert_int_equal(pt_thread_join(t, PT_FOREVER), 0);
    assert_int_equal(pt_thread_is_alive(t), 0);
    assert_int_equal(atomic_load(&e.before), 1);
    assert_int_equal(atomic_load(&e.after), 0);
    assert_int_equal(atomic_load(&exit_dtors), 1);
    assert_int_equal(atomic_load(&hook_calls), 0);
    assert_int_equal(pt_active_count(), base);
    pt_thread_unref(t);
    pt_local_free(e.local);
    pt_excepthook_set(pt_excepthook_original);
}

struct newthread {
    atomic_ulong ident;
    atomic_int counted; /* active_count inside, before and after current_thread */
    atomic_int counted_after;
    char name[32];
    struct tu_gate done;
};

static int new_thread_main(void *arg)
{
    struct newthread *n = arg;

    atomic_store(&n->counted, pt_active_count());
    atomic_store(&n->ident, pt_get_ident());
    pt_thread_get_name(pt_current_thread(), n->name, sizeof(n->name));
    atomic_store(&n->counted_after, pt_active_count());
    tu_gate_open(&n->done);
    return 0;
}

/* _thread.start_new_thread: an untracked thread, a dummy once it asks. */
static void test_start_new_thread(void **state)
{
    struct newthread n;
    unsigned long ident = 0;
    int base = pt_active_count();

    (void)state;
    memset(&n, 0, sizeof(n));
    tu_gate_init(&n.done);
    assert_int_equal(pt_start_new_thread(new_thread_main, &n, &ident), 0);
    tu_gate_wait(&n.done);
    assert_true(ident != 0);
    assert_true(atomic_load(&n.ident) == ident);
    assert_int_equal(atomic_load(&n.counted), base);
    assert_int_equal(atomic_load(&n.counted_after), base + 1);
    assert_int_equal(strncmp(n.name, "Dummy-", 6), 0);
    /* its dummy goes when it exits */
    assert_true(tu_wait_active(base));
    assert_int_equal(pt_start_new_thread(NULL, NULL, NULL), PT_EINVAL);
    tu_gate_destroy(&n.done);
}

static atomic_int sigint_seen;
static atomic_ulong sigint_thread;

static void on_sigint(int sig)
{
    (void)sig;
    atomic_store(&sigint_thread, (unsigned long)pthread_self());
    atomic_fetch_add(&sigint_seen, 1);
}

static int interrupt(void *arg)
{
    return pt_interrupt_main((int)(intptr_t)arg);
}

static void interrupt_from_thread(int sig)
{
    pt_thread *t;

    assert_int_equal(pt_thread_create(&t, interrupt, (void *)(intptr_t)sig, NULL), 0);
    assert_int_equal(pt_thread_start(t), 0);
    assert_int_equal(pt_thread_join(t, PT_FOREVER), 0);
    pt_thread_unref(t);
}

/* _thread.interrupt_main: the signal reaches the main thread; ignored and
 * default dispositions make it a no-op, as in Python. */
static void test_interrupt_main(void **state)
{
    struct sigaction sa, old_int, old_usr;

    (void)state;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGINT, &sa, &old_int), 0);
    interrupt_from_thread(SIGINT);
    assert_true(tu_wait_int(&sigint_seen, 1));
    assert_true(atomic_load(&sigint_thread) == (unsigned long)pthread_self());

    /* ignored: nothing happens */
    sa.sa_handler = SIG_IGN;
    assert_int_equal(sigaction(SIGINT, &sa, NULL), 0);
    interrupt_from_thread(SIGINT);
    /* default action of SIGUSR1 would end the process: not delivered */
    sa.sa_handler = SIG_DFL;
    assert_int_equal(sigaction(SIGUSR1, &sa, &old_usr), 0);
    interrupt_from_thread(SIGUSR1);
    assert_int_equal(pt_interrupt_main(SIGUSR1), 0);
    assert_int_equal(atomic_load(&sigint_seen), 1);

    assert_int_equal(pt_interrupt_main(0), PT_EINVAL);
    assert_non_null(strstr(pt_last_error_message(), "signal number out of range"));
    assert_int_equal(pt_interrupt_main(-1), PT_EINVAL);
    assert_int_equal(pt_interrupt_main(NSIG), PT_EINVAL);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGUSR1, &old_usr, NULL);
}

/* After fork the child has one thread: the forking one, now the main
 * thread; every other thread is stopped and joins return at once. */
static void test_fork_child(void **state)
{
    struct tu_gate g;
    pt_thread *t;
    pid_t pid;
    int status;

    (void)state;
    tu_gate_init(&g);
    assert_int_equal(pt_thread_create(&t, gate_target, &g, NULL), 0);
    assert_int_equal(pt_thread_start(t), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int bad = 0;

        bad |= (pt_active_count() != 1) << 0;
        bad |= (pt_current_thread() != pt_main_thread()) << 1;
        bad |= (pt_thread_is_alive(t) != 0) << 2;
        bad |= (pt_thread_join(t, PT_FOREVER) != 0) << 3;
        bad |= (pt_thread_native_id(pt_main_thread()) != (unsigned long)getpid()) << 4;
        bad |= !tu_listed(pt_main_thread()) << 5;
        pt_thread_unref(t);
        /* exit() runs the exit-time join: nothing to wait for here */
        exit(bad);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(pt_thread_is_alive(t), 1);
    tu_gate_open(&g);
    assert_int_equal(pt_thread_join(t, PT_FOREVER), 0);
    pt_thread_unref(t);
    tu_gate_destroy(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timeout_max),
        cmocka_unit_test(test_main_thread),
        cmocka_unit_test(test_current_thread_in_thread),
        cmocka_unit_test(test_dummy_thread),
        cmocka_unit_test(test_enumerate_bounds),
        cmocka_unit_test(test_stack_size),
        cmocka_unit_test(test_trace_profile),
        cmocka_unit_test(test_excepthook),
        cmocka_unit_test(test_thread_exit),
        cmocka_unit_test(test_start_new_thread),
        cmocka_unit_test(test_interrupt_main),
        cmocka_unit_test(test_fork_child),
    };

    return tu_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
