/*
 * thread_module.c - the module functions of threading and _thread that are
 * not about the registry: identifiers, stack size, trace/profile hooks, the
 * excepthook, start_new_thread, interrupt_main and exit.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "thread_int.h"

static _Atomic size_t pt__stack_size;
static _Atomic(pt_thread_hook) pt__trace_hook;
static _Atomic(pt_thread_hook) pt__profile_hook;
static _Atomic(pt_excepthook_fn) pt__excepthook = pt_excepthook_original;

unsigned long pt_get_ident(void)
{
    return (unsigned long)(uintptr_t)pthread_self();
}

unsigned long pt_get_native_id(void)
{
    return (unsigned long)gettid();
}

/* Python's rule (thread_pthread.h): 0, or at least THREAD_STACK_MIN and
 * accepted by pthread_attr_setstacksize. 0 or -1. */
int pt__stack_size_check(size_t size)
{
    pthread_attr_t attr;
    int rc;

    if (size == 0)
        return 0;
    if (size < PT_STACK_MIN || pthread_attr_init(&attr) != 0)
        return -1;
    rc = pthread_attr_setstacksize(&attr, size);
    pthread_attr_destroy(&attr);
    return rc == 0 ? 0 : -1;
}

size_t pt_stack_size_get(void)
{
    return atomic_load(&pt__stack_size);
}

int pt_stack_size_set(size_t size, size_t *old)
{
    size_t prev;

    if (pt__stack_size_check(size) != 0)
        return pt__thread_failf(PT_EINVAL,
                                "stack_size: size not valid: %zu bytes; use 0 (the default) or at "
                                "least %u bytes",
                                size, PT_STACK_MIN);
    prev = atomic_exchange(&pt__stack_size, size);
    if (old != NULL)
        *old = prev;
    return 0;
}

void pt_settrace(pt_thread_hook hook)
{
    atomic_store(&pt__trace_hook, hook);
}

pt_thread_hook pt_gettrace(void)
{
    return atomic_load(&pt__trace_hook);
}

void pt_setprofile(pt_thread_hook hook)
{
    atomic_store(&pt__profile_hook, hook);
}

pt_thread_hook pt_getprofile(void)
{
    return atomic_load(&pt__profile_hook);
}

/* In a new library thread, before its target: trace first, as Python calls
 * sys.settrace before sys.setprofile. */
void pt__thread_hooks_run(pt_thread *t)
{
    pt_thread_hook trace = atomic_load(&pt__trace_hook);
    pt_thread_hook profile = atomic_load(&pt__profile_hook);

    if (trace != NULL)
        trace(t);
    if (profile != NULL)
        profile(t);
}

void pt_excepthook_set(pt_excepthook_fn hook)
{
    atomic_store(&pt__excepthook, hook);
}

pt_excepthook_fn pt_excepthook_get(void)
{
    return atomic_load(&pt__excepthook);
}

/* The line that stands for Python's traceback: the status, and the code's
 * name when the status is one of ours. */
static void pt__status_print(FILE *out, int status)
{
    const char *name = pt_err_name(status);

    if (status < 0 && strcmp(name, "PT_EUNKNOWN") != 0)
        fprintf(out, "target failed with status %d (%s: %s)\n", status, name, pt_strerror(status));
    else
        fprintf(out, "target failed with status %d\n", status);
}

void pt_excepthook_original(pt_thread *thread, int status)
{
    char *name = thread != NULL ? pt__thread_name_dup(thread) : NULL;

    flockfile(stderr);
    if (name != NULL)
        fprintf(stderr, "Exception in thread %s:\n", name);
    else
        fprintf(stderr, "Exception in thread %lu:\n", pt_get_ident());
    pt__status_print(stderr, status);
    fflush(stderr);
    funlockfile(stderr);
    free(name);
}

/* A failed target: the current hook, or the one set when the thread was
 * made if the hook is NULL now (Python's old_excepthook). */
void pt__excepthook_invoke(pt_thread *t, int status)
{
    pt_excepthook_fn hook = atomic_load(&pt__excepthook);

    if (hook == NULL)
        hook = t->excepthook;
    hook(t, status);
}

struct pt__boot {
    pt_thread_fn function;
    void *arg;
};

/* Start routine of pt_start_new_thread: a failure is reported as Python's
 * unraisable hook reports it for _thread threads. */
static void *pt__new_thread_main(void *p)
{
    struct pt__boot boot = *(struct pt__boot *)p;
    int status;

    free(p);
    status = boot.function(boot.arg);
    if (status != 0) {
        flockfile(stderr);
        fputs("Exception ignored in thread started by pt_start_new_thread:\n", stderr);
        pt__status_print(stderr, status);
        fflush(stderr);
        funlockfile(stderr);
    }
    return NULL;
}

int pt_start_new_thread(pt_thread_fn function, void *arg, unsigned long *ident)
{
    struct pt__boot *boot;
    pthread_t handle;
    int err;

    if (function == NULL)
        return pt__thread_failf(PT_EINVAL,
                                "start_new_thread: the function is NULL; pass one to run");
    boot = malloc(sizeof(*boot));
    if (boot == NULL)
        return pt__thread_failf(PT_ENOMEM, "start_new_thread: out of memory");
    *boot = (struct pt__boot){.function = function, .arg = arg};
    err = pt__thread_spawn(pt__new_thread_main, boot, pt_stack_size_get(), &handle);
    if (err != 0) {
        free(boot);
        return pt__thread_failf(
            PT_ERUNTIME,
            "start_new_thread: can't start new thread (%s); lower the stack size "
            "or the number of threads",
            strerror(err));
    }
    if (ident != NULL)
        *ident = (unsigned long)(uintptr_t)handle;
    return 0;
}

/* Python's PyErr_SetInterruptEx: a signal whose disposition is the default
 * or ignore is not delivered, so this never kills the process. */
int pt_interrupt_main(int signum)
{
    struct sigaction sa;
    pt_thread *mt = pt_main_thread();

    if (signum < 1 || signum >= NSIG || sigaction(signum, NULL, &sa) != 0)
        return pt__thread_failf(
            PT_EINVAL,
            "interrupt_main: signal number out of range: %d; use 1 to %d (SIGINT "
            "is Python's default)",
            signum, NSIG - 1);
    if (!(sa.sa_flags & SA_SIGINFO) && (sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN))
        return 0;
    /* The handle is valid while the main thread is alive, and it cannot
     * stop while its mu is held. */
    pthread_mutex_lock(&mt->mu);
    if (mt->state == PT__STATE_ALIVE)
        pthread_kill(mt->handle, signum);
    pthread_mutex_unlock(&mt->mu);
    return 0;
}

void pt_thread_exit(void)
{
    if (pt__is_main_thread())
        exit(0);
    pthread_exit(NULL);
}
