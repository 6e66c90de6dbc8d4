/*
 * thread.c - the Thread object: create, start, join, is_alive and the
 * properties, and the start routine of every library thread.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thread_int.h"

/* Started and not finished: what join waits out. */
static int pt__thread_running(const pt_thread *t)
{
    return t->state == PT__STATE_STARTING || t->state == PT__STATE_ALIVE;
}

void pt__thread_set_state(pt_thread *t, enum pt__thread_state state)
{
    pthread_mutex_lock(&t->mu);
    t->state = state;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

/* Wait until t is no longer running, or until the monotonic deadline when
 * one is given. */
void pt__thread_wait(pt_thread *t, const struct timespec *deadline)
{
    pthread_mutex_lock(&t->mu);
    while (pt__thread_running(t)) {
        if (deadline == NULL)
            pthread_cond_wait(&t->cv, &t->mu);
        else if (pthread_cond_timedwait(&t->cv, &t->mu, deadline) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&t->mu);
}

/* Python's Thread.__init__: the name is drawn before the daemon flag is
 * inherited, so a thread made in a foreign thread takes "Thread-N" and its
 * creator's dummy "Dummy-N+1", as in Python. */
int pt__thread_new(enum pt__thread_kind kind, pt_thread_fn target, void *arg, const char *name,
                   pt_thread **out)
{
    pt_excepthook_fn hook = pt_excepthook_get();
    pt_thread *self, *t;
    char *copy;

    if (out == NULL)
        return pt__thread_failf(PT_EINVAL, "Thread: create: no place for the result; pass &thread");
    if (hook == NULL)
        return pt__thread_failf(PT_ERUNTIME,
                                "Thread: create: the excepthook is NULL; set one with "
                                "pt_excepthook_set (pt_excepthook_original restores it)");
    copy = name != NULL && *name != '\0' ? strdup(name) : pt__thread_newname("Thread");
    self = pt_current_thread();
    t = self != NULL ? pt__thread_alloc(kind, copy, pt_thread_is_daemon(self)) : NULL;
    if (t == NULL) {
        if (self == NULL)
            free(copy);
        return pt__thread_failf(PT_ENOMEM, "Thread: create: out of memory");
    }
    t->target = target;
    t->arg = arg;
    t->excepthook = hook;
    *out = t;
    return 0;
}

int pt_thread_create(pt_thread **out, pt_thread_fn target, void *arg, const char *name)
{
    return pt__thread_new(PT__KIND_THREAD, target, arg, name, out);
}

pt_thread *pt_thread_ref(pt_thread *t)
{
    atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
    return t;
}

void pt_thread_unref(pt_thread *t)
{
    if (t != NULL && atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
        pt__thread_destroy(t);
}

/* Python's Thread.run, then the excepthook for a failure. */
static void pt__thread_run(pt_thread *t)
{
    int status;

    if (t->kind == PT__KIND_TIMER)
        status = pt__timer_run(t);
    else
        status = t->target != NULL ? t->target(t->arg) : 0;
    if (status != 0)
        pt__excepthook_invoke(t, status);
}

/* Start routine of every library thread (Python's _bootstrap_inner). A
 * pt_thread_exit() in the target skips the rest; the thread state's
 * destructor then does what pt__thread_leave does here. */
static void *pt__thread_main(void *arg)
{
    pt_thread *t = arg;

    pt__thread_enter(t);
    pt__thread_hooks_run(t);
    pt__thread_run(t);
    pt__thread_leave(&pt__ts);
    return NULL;
}

/* Undo a start whose OS thread could not be made: the object may be
 * started again, as in Python. */
static int pt__thread_start_failed(pt_thread *t, int err)
{
    char what[160];

    pt__thread_unregister(t);
    pt__thread_set_state(t, PT__STATE_NEW);
    pt_thread_unref(t);
    snprintf(what, sizeof(what),
             "can't start new thread (%s); lower the stack size or the number of threads",
             strerror(err));
    return pt__thread_fail(t, PT_ERUNTIME, "start", what);
}

int pt_thread_start(pt_thread *t)
{
    pthread_t handle;
    size_t stack;
    int err;

    pthread_mutex_lock(&t->mu);
    if (t->state != PT__STATE_NEW) {
        pthread_mutex_unlock(&t->mu);
        return pt__thread_fail(t, PT_ERUNTIME, "start",
                               "threads can only be started once; create a new thread instead");
    }
    t->state = PT__STATE_STARTING;
    stack = t->stack_size != 0 ? t->stack_size : pt_stack_size_get();
    pthread_mutex_unlock(&t->mu);

    pt_thread_ref(t); /* the running reference, dropped by pt__thread_leave */
    pt__thread_register(t);
    pt__shutdown_arm();
    err = pt__thread_spawn(pt__thread_main, t, stack, &handle);
    if (err != 0)
        return pt__thread_start_failed(t, err);

    pthread_mutex_lock(&t->mu);
    while (t->state == PT__STATE_STARTING)
        pthread_cond_wait(&t->cv, &t->mu);
    pthread_mutex_unlock(&t->mu);
    return 0;
}

/* Python's checks in Thread.join, in its order; 0 when t may be joined, 1
 * when it has already ended (Python then returns before it reads the
 * timeout, so even a NaN or huge one is fine). */
static int pt__join_check(pt_thread *t, double timeout)
{
    enum pt__thread_state state;
    int err;

    pthread_mutex_lock(&t->mu);
    state = t->state;
    pthread_mutex_unlock(&t->mu);
    if (t->kind == PT__KIND_DUMMY)
        return pt__thread_fail(t, PT_ERUNTIME, "join",
                               "cannot join a dummy thread; it was not started by pythread");
    if (state == PT__STATE_NEW || state == PT__STATE_STARTING)
        return pt__thread_fail(t, PT_ERUNTIME, "join",
                               "cannot join thread before it is started; call pt_thread_start");
    if (t == pt__ts.thread)
        return pt__thread_fail(t, PT_ERUNTIME, "join",
                               "cannot join current thread; a thread cannot wait for itself");
    if (state == PT__STATE_STOPPED)
        return 1;
    err = pt__thread_timeout_check(timeout);
    if (err == PT_EOVERFLOW)
        return pt__thread_fail(t, err, "join",
                               "timeout value is too large; use at most PT_TIMEOUT_MAX seconds "
                               "or PT_FOREVER");
    if (err != 0)
        return pt__thread_fail(t, err, "join", "timeout is NaN; use seconds or PT_FOREVER");
    return 0;
}

int pt_thread_join(pt_thread *t, double timeout)
{
    struct timespec deadline;
    int err = pt__join_check(t, timeout);

    if (err != 0)
        return err < 0 ? err : 0;
    if (timeout == PT_FOREVER) {
        pt__thread_wait(t, NULL);
        return 0;
    }
    /* A negative timeout has always acted as 0 in Python. */
    err = pt__thread_deadline(timeout > 0 ? timeout : 0, &deadline);
    if (err != 0)
        return pt__thread_fail(t, err, "join", "the monotonic clock cannot be read");
    pt__thread_wait(t, &deadline);
    return 0;
}

int pt_thread_is_alive(pt_thread *t)
{
    int alive;

    pthread_mutex_lock(&t->mu);
    alive = t->state == PT__STATE_ALIVE;
    pthread_mutex_unlock(&t->mu);
    return alive;
}

unsigned long pt_thread_ident(pt_thread *t)
{
    unsigned long ident;

    pthread_mutex_lock(&t->mu);
    ident = t->ident;
    pthread_mutex_unlock(&t->mu);
    return ident;
}

unsigned long pt_thread_native_id(pt_thread *t)
{
    unsigned long id;

    pthread_mutex_lock(&t->mu);
    id = t->native_id;
    pthread_mutex_unlock(&t->mu);
    return id;
}

int pt_thread_get_name(pt_thread *t, char *buf, size_t size)
{
    size_t len;

    if (buf == NULL && size != 0)
        return pt__thread_fail(t, PT_EINVAL, "get_name",
                               "no buffer for the name; pass NULL only with size 0");
    pthread_mutex_lock(&t->mu);
    len = strlen(t->name);
    if (size != 0) {
        size_t n = len < size ? len : size - 1;

        memcpy(buf, t->name, n);
        buf[n] = '\0';
    }
    pthread_mutex_unlock(&t->mu);
    return len > INT_MAX ? INT_MAX : (int)len;
}

/* An alive thread's OS name follows; its handle is valid while it is alive,
 * and it cannot stop while t->mu is held. */
int pt_thread_set_name(pt_thread *t, const char *name)
{
    char *copy, *old;

    if (name == NULL)
        return pt__thread_fail(t, PT_EINVAL, "set_name", "the name is NULL; pass a string");
    copy = strdup(name);
    if (copy == NULL)
        return pt__thread_fail(t, PT_ENOMEM, "set_name", "out of memory");
    pthread_mutex_lock(&t->mu);
    old = t->name;
    t->name = copy;
    if (t->state == PT__STATE_ALIVE)
        pt__thread_os_name(t->handle, copy);
    pthread_mutex_unlock(&t->mu);
    free(old);
    return 0;
}

int pt_thread_is_daemon(pt_thread *t)
{
    int daemon;

    pthread_mutex_lock(&t->mu);
    daemon = t->daemon;
    pthread_mutex_unlock(&t->mu);
    return daemon;
}

int pt_thread_set_daemon(pt_thread *t, int daemon)
{
    pthread_mutex_lock(&t->mu);
    if (t->state != PT__STATE_NEW) {
        pthread_mutex_unlock(&t->mu);
        return pt__thread_fail(t, PT_ERUNTIME, "set_daemon",
                               "cannot set daemon status of active thread; set it before "
                               "pt_thread_start");
    }
    t->daemon = daemon != 0;
    pthread_mutex_unlock(&t->mu);
    return 0;
}

int pt_thread_set_stack_size(pt_thread *t, size_t size)
{
    char what[160];

    if (pt__stack_size_check(size) != 0) {
        snprintf(what, sizeof(what),
                 "size not valid: %zu bytes; use 0 (the default) or at least %u bytes", size,
                 PT_STACK_MIN);
        return pt__thread_fail(t, PT_EINVAL, "set_stack_size", what);
    }
    pthread_mutex_lock(&t->mu);
    if (t->state != PT__STATE_NEW) {
        pthread_mutex_unlock(&t->mu);
        return pt__thread_fail(t, PT_ERUNTIME, "set_stack_size",
                               "the thread is started; set the stack size before pt_thread_start");
    }
    t->stack_size = size;
    pthread_mutex_unlock(&t->mu);
    return 0;
}
