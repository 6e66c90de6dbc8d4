/*
 * thread_int.h - internals shared by the Thread, Timer, local and module
 * function code of libpythread. Not installed.
 */
#ifndef PT_THREAD_INT_H
#define PT_THREAD_INT_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/queue.h>
#include <time.h>

#include "pythread.h"

/* What an object stands for; fixed at creation (a Thread that survives a
 * fork becomes the main thread but keeps its kind). */
enum pt__thread_kind {
    PT__KIND_THREAD, /* started by pt_thread_start */
    PT__KIND_TIMER,  /* a Thread whose run is the timer's */
    PT__KIND_MAIN,   /* the process's main thread */
    PT__KIND_DUMMY,  /* a thread the library did not start */
};

/* Life of a Thread: NEW -> STARTING -> ALIVE -> STOPPED. Main and dummy
 * objects are born ALIVE. A failed start goes back to NEW, as Python lets a
 * failed start be tried again. */
enum pt__thread_state {
    PT__STATE_NEW,
    PT__STATE_STARTING,
    PT__STATE_ALIVE,
    PT__STATE_STOPPED,
};

struct pt_thread {
    atomic_int refs;
    enum pt__thread_kind kind; /* fixed */

    /* mu guards the fields down to handle, and finished; cv is broadcast on
     * every state change and on a timer's cancel. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    enum pt__thread_state state;
    int daemon;        /* fixed once STARTING */
    char *name;        /* never NULL */
    size_t stack_size; /* 0: the module's at start */
    unsigned long ident;
    unsigned long native_id;
    pthread_t handle; /* valid while ALIVE */

    /* Set when made, only read afterwards. */
    pt_thread_fn target;
    void *arg;
    pt_excepthook_fn excepthook; /* the hook when made: Python's fallback */
    double interval;             /* timer: seconds to wait (PT_FOREVER: no limit) */

    int finished; /* timer: cancelled or fired (mu) */

    /* The registry lock guards these. */
    TAILQ_ENTRY(pt_thread) alive_link; /* on the list of alive threads */
    int registered;                    /* on that list */
    LIST_ENTRY(pt_thread) all_link;    /* every object, for the fork repair */
};

/* One thread's slot table for locals: entry i holds the block of the local
 * in slot i if its generation matches that local's. Private to the thread. */
struct pt__local_entry {
    uint64_t gen;
    void *block;
};

/* Per-thread state, one instance in each thread's TLS. */
struct pt__tstate {
    pt_thread *thread; /* current thread's object, or NULL */
    struct pt__local_entry *locals;
    unsigned nlocals; /* capacity of locals */
    int keyed;        /* the exit destructor is armed for this thread */
};

/* The calling thread's state (thread_state.c). */
extern _Thread_local struct pt__tstate pt__ts;

/* thread_state.c: TLS, registry, main and dummy threads, exit and fork. */
void pt__tstate_arm(struct pt__tstate *ts);
pt_thread *pt__thread_alloc(enum pt__thread_kind kind, char *name, int daemon);
void pt__thread_destroy(pt_thread *t);
void pt__thread_register(pt_thread *t);
void pt__thread_unregister(pt_thread *t);
void pt__thread_enter(pt_thread *t);
void pt__thread_leave(struct pt__tstate *ts);
void pt__shutdown_arm(void);
int pt__is_main_thread(void);
char *pt__thread_newname(const char *prefix);

/* thread.c */
int pt__thread_new(enum pt__thread_kind kind, pt_thread_fn target, void *arg, const char *name,
                   pt_thread **out);
void pt__thread_wait(pt_thread *t, const struct timespec *deadline);
void pt__thread_set_state(pt_thread *t, enum pt__thread_state state);

/* timer.c */
int pt__timer_run(pt_thread *t);

/* local.c */
void pt__locals_clear(struct pt__tstate *ts);
void pt__locals_lock(void);
void pt__locals_unlock(void);
void pt__locals_after_fork(void);

/* thread_module.c */
int pt__stack_size_check(size_t size);
void pt__thread_hooks_run(pt_thread *t);
void pt__excepthook_invoke(pt_thread *t, int status);

/* thread_util.c */
int pt__thread_timeout_check(double timeout);
int pt__thread_deadline(double timeout, struct timespec *out);
void pt__thread_cond_init(pthread_cond_t *cv);
int pt__thread_spawn(void *(*fn)(void *), void *arg, size_t stack_size, pthread_t *out);
void pt__thread_os_name(pthread_t handle, const char *name);
char *pt__thread_name_dup(pt_thread *t);
int pt__thread_fail(pt_thread *t, int code, const char *op, const char *what);
int pt__thread_failf(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif /* PT_THREAD_INT_H */
