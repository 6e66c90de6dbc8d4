/*
 * thread_state.c - who is who among the threads: the per-thread state, the
 * registry of alive threads behind enumerate(), the main and dummy threads,
 * the join of non-daemon threads at exit and the repair after fork().
 *
 * Lock order: the registry lock may be taken before a thread's mu, never
 * after; the locals' lock is never held together with either.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "thread_int.h"

_Thread_local struct pt__tstate pt__ts;

/* Runs pt__tstate_exit at the end of every thread that armed it. */
static pthread_key_t pt__key;

static pthread_mutex_t pt__reg_mu = PTHREAD_MUTEX_INITIALIZER;
static TAILQ_HEAD(pt__alive_list, pt_thread) pt__alive = TAILQ_HEAD_INITIALIZER(pt__alive);
static LIST_HEAD(pt__all_list, pt_thread) pt__all = LIST_HEAD_INITIALIZER(pt__all);
static int pt__nalive;        /* length of pt__alive (registry lock) */
static int pt__shutting_down; /* the exit handler has run (registry lock) */

/* The main thread's object. Written before main() runs and in the child of
 * fork(), when no other thread exists, so it is read without a lock. */
static pt_thread *pt__main;

/* Python's _counter: one sequence for "Thread-N" and "Dummy-N". */
static atomic_ulong pt__name_counter;

static pthread_once_t pt__atexit_once = PTHREAD_ONCE_INIT;

/* A name from the process-wide sequence, "PREFIX-N"; NULL out of memory. */
char *pt__thread_newname(const char *prefix)
{
    unsigned long n = atomic_fetch_add(&pt__name_counter, 1) + 1;
    size_t len = strlen(prefix) + 24;
    char *name = malloc(len);

    if (name != NULL)
        snprintf(name, len, "%s-%lu", prefix, n);
    return name;
}

/* Make sure pt__tstate_exit runs when the calling thread ends. */
void pt__tstate_arm(struct pt__tstate *ts)
{
    if (ts->keyed)
        return;
    if (pthread_setspecific(pt__key, ts) == 0)
        ts->keyed = 1;
}

/* A new object with one reference, taking ownership of name (which may be
 * NULL, for a failed allocation: then NULL is returned and name freed). */
pt_thread *pt__thread_alloc(enum pt__thread_kind kind, char *name, int daemon)
{
    pt_thread *t = name ? calloc(1, sizeof(*t)) : NULL;

    if (t == NULL) {
        free(name);
        return NULL;
    }
    atomic_init(&t->refs, 1);
    t->kind = kind;
    t->name = name;
    t->daemon = daemon;
    t->state = PT__STATE_NEW;
    pthread_mutex_init(&t->mu, NULL);
    pt__thread_cond_init(&t->cv);
    pthread_mutex_lock(&pt__reg_mu);
    LIST_INSERT_HEAD(&pt__all, t, all_link);
    pthread_mutex_unlock(&pt__reg_mu);
    return t;
}

/* Free an object whose last reference is gone. */
void pt__thread_destroy(pt_thread *t)
{
    pthread_mutex_lock(&pt__reg_mu);
    LIST_REMOVE(t, all_link);
    pthread_mutex_unlock(&pt__reg_mu);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t->name);
    free(t);
}

void pt__thread_register(pt_thread *t)
{
    pthread_mutex_lock(&pt__reg_mu);
    if (!t->registered) {
        TAILQ_INSERT_TAIL(&pt__alive, t, alive_link);
        t->registered = 1;
        pt__nalive++;
    }
    pthread_mutex_unlock(&pt__reg_mu);
}

/* Take t out of the registry, unlocked: registry lock held, or no other
 * thread left (after fork). */
static void pt__thread_unlink(pt_thread *t)
{
    if (t->registered) {
        TAILQ_REMOVE(&pt__alive, t, alive_link);
        t->registered = 0;
        pt__nalive--;
    }
}

void pt__thread_unregister(pt_thread *t)
{
    pthread_mutex_lock(&pt__reg_mu);
    pt__thread_unlink(t);
    pthread_mutex_unlock(&pt__reg_mu);
}

/* Called in the thread t stands for: it becomes the current thread and
 * alive, with its identifiers set. */
void pt__thread_enter(pt_thread *t)
{
    struct pt__tstate *ts = &pt__ts;

    ts->thread = t;
    pt__tstate_arm(ts);
    pthread_mutex_lock(&t->mu);
    t->handle = pthread_self();
    t->ident = pt_get_ident();
    t->native_id = pt_get_native_id();
    if (t->kind == PT__KIND_THREAD || t->kind == PT__KIND_TIMER)
        pt__thread_os_name(t->handle, t->name);
    t->state = PT__STATE_ALIVE;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

/* The end of the calling thread as the library sees it: its locals are
 * destructed, then it leaves the registry, then it stops being alive and
 * its joiners wake, in Python's order. The object's running reference (the
 * library's, for a dummy) goes; the main thread's object stays. */
void pt__thread_leave(struct pt__tstate *ts)
{
    pt_thread *t;

    pt__locals_clear(ts);
    t = ts->thread;
    if (t == NULL)
        return;
    ts->thread = NULL;
    pt__thread_unregister(t);
    pt__thread_set_state(t, PT__STATE_STOPPED);
    if (t->kind != PT__KIND_MAIN)
        pt_thread_unref(t);
}

/* Thread-specific-data destructor: the thread ended, by returning from its
 * start routine or by pthread_exit() (pt_thread_exit). The key is cleared
 * before this runs; using the library in here arms it again. */
static void pt__tstate_exit(void *arg)
{
    struct pt__tstate *ts = arg;

    ts->keyed = 0;
    pt__thread_leave(ts);
}

pt_thread *pt_current_thread(void)
{
    struct pt__tstate *ts = &pt__ts;
    pt_thread *t;

    if (ts->thread != NULL)
        return ts->thread;
    t = pt__thread_alloc(PT__KIND_DUMMY, pt__thread_newname("Dummy"), 1);
    if (t == NULL)
        return NULL;
    pt__thread_enter(t);
    pt__thread_register(t);
    return t;
}

pt_thread *pt_main_thread(void)
{
    return pt__main;
}

int pt__is_main_thread(void)
{
    return pt__ts.thread != NULL && pt__ts.thread == pt__main;
}

int pt_enumerate(pt_thread **out, size_t n)
{
    pt_thread *t;
    size_t i = 0;
    int count;

    if (out == NULL && n != 0)
        return pt__thread_failf(PT_EINVAL,
                                "enumerate: no array for %zu threads; pass NULL only with 0", n);
    pthread_mutex_lock(&pt__reg_mu);
    count = pt__nalive;
    TAILQ_FOREACH(t, &pt__alive, alive_link)
    {
        if (i == n)
            break;
        out[i++] = pt_thread_ref(t);
    }
    pthread_mutex_unlock(&pt__reg_mu);
    return count;
}

int pt_active_count(void)
{
    int count;

    pthread_mutex_lock(&pt__reg_mu);
    count = pt__nalive;
    pthread_mutex_unlock(&pt__reg_mu);
    return count;
}

/* A non-daemon thread started by the library, other than the caller, that
 * has not finished yet; with a reference. NULL when none is left. */
static pt_thread *pt__shutdown_next(void)
{
    pt_thread *t, *self = pt__ts.thread;

    pthread_mutex_lock(&pt__reg_mu);
    TAILQ_FOREACH(t, &pt__alive, alive_link)
    {
        if (t != self && !t->daemon && (t->kind == PT__KIND_THREAD || t->kind == PT__KIND_TIMER))
            break;
    }
    if (t != NULL)
        pt_thread_ref(t);
    pthread_mutex_unlock(&pt__reg_mu);
    return t;
}

/* Python's threading._shutdown, run by atexit: the main thread stops being
 * alive (its joiners wake), then every non-daemon thread is joined, again
 * and again, as they may start more. A thread being started is in the
 * registry already, so it is waited for too. */
static void pt__shutdown(void)
{
    pt_thread *t;
    int again;

    pthread_mutex_lock(&pt__reg_mu);
    again = pt__shutting_down;
    pt__shutting_down = 1;
    pthread_mutex_unlock(&pt__reg_mu);
    if (again)
        return;
    if (pt__is_main_thread())
        pt__thread_set_state(pt__main, PT__STATE_STOPPED);
    while ((t = pt__shutdown_next()) != NULL) {
        pt__thread_wait(t, NULL);
        pt_thread_unref(t);
    }
}

static void pt__shutdown_register(void)
{
    if (atexit(pt__shutdown) != 0)
        fputs("pythread: atexit: cannot register the exit-time join of non-daemon threads; "
              "join them before exit\n",
              stderr);
}

/* Register the exit-time join once, when the first thread starts. */
void pt__shutdown_arm(void)
{
    pthread_once(&pt__atexit_once, pt__shutdown_register);
}

/* The calling thread becomes the main thread, with a new object if it has
 * none. Runs before main() and in the child of fork(). */
static void pt__main_adopt(void)
{
    pt_thread *t = pt__ts.thread;

    if (t == NULL) {
        t = pt__thread_alloc(PT__KIND_MAIN, strdup("MainThread"), 0);
        if (t == NULL) {
            fputs("pythread: out of memory for the main thread's object\n", stderr);
            abort();
        }
        pt__thread_enter(t);
        pt__thread_register(t);
    } else {
        /* A Thread (or dummy) that forked: it keeps its object and kind,
         * and the library keeps one more reference for its role as main. */
        pt_thread_ref(t);
    }
    pt__main = t;
}

static void pt__fork_prepare(void)
{
    pthread_mutex_lock(&pt__reg_mu);
    pt__locals_lock();
}

static void pt__fork_parent(void)
{
    pt__locals_unlock();
    pthread_mutex_unlock(&pt__reg_mu);
}

/* Only the forking thread lives on in the child. The registry and locals
 * locks were taken by this very thread in the prepare handler, so they are
 * unlocked (re-initialising a locked mutex is undefined behaviour); each
 * thread's own lock may have been held by a thread that no longer exists,
 * so it is made anew, as Python's _after_fork does. Every other thread is
 * stopped and gives back the reference its life held. */
static void pt__fork_child(void)
{
    pt_thread *t, *next, *self = pt__ts.thread;

    pt__locals_after_fork();
    pthread_mutex_unlock(&pt__reg_mu);
    for (t = LIST_FIRST(&pt__all); t != NULL; t = next) {
        next = LIST_NEXT(t, all_link);
        pthread_mutex_init(&t->mu, NULL);
        pt__thread_cond_init(&t->cv);
        if (t == self)
            continue;
        if (t->state == PT__STATE_STARTING || t->state == PT__STATE_ALIVE) {
            pt__thread_unlink(t);
            t->state = PT__STATE_STOPPED;
            if (t->kind != PT__KIND_MAIN)
                pt_thread_unref(t);
        }
    }
    if (self != NULL)
        self->native_id = pt_get_native_id(); /* the child's own */
    /* The old main object keeps the library's reference: pt_main_thread()
     * promised it for the life of the process, and callers may hold it. */
    if (pt__main != self)
        pt__main_adopt();
}

__attribute__((constructor)) static void pt__thread_init(void)
{
    if (pthread_key_create(&pt__key, pt__tstate_exit) != 0) {
        fputs("pythread: no pthread key left for the thread state\n", stderr);
        abort();
    }
    pthread_atfork(pt__fork_prepare, pt__fork_parent, pt__fork_child);
    pt__main_adopt();
}
