/*
 * pythread_thread.h - in-process Thread, Timer, local and the module
 * functions of threading/_thread. Included by pythread.h; not used alone.
 *
 * The semantics are CPython 3.11's threading module, with C habits: a target
 * is a function and an argument, and its failure is a non-zero return status
 * instead of an exception. Python exceptions map to codes as elsewhere in
 * pythread: RuntimeError is PT_ERUNTIME, ValueError PT_EINVAL, OverflowError
 * PT_EOVERFLOW, MemoryError PT_ENOMEM.
 *
 * Ownership and lifetime of pt_thread objects
 * -------------------------------------------
 * A pt_thread is reference counted; pt_thread_unref() drops a reference and
 * the object is freed when the last one goes.
 *   - pt_thread_create() and pt_timer_create() return one reference, owned
 *     by the caller.
 *   - A started thread holds its own reference from pt_thread_start() until
 *     it has finished, so the creator may drop its reference at any time,
 *     even while the thread runs ("fire and forget").
 *   - pt_enumerate() returns a new reference for every thread it lists.
 *   - pt_current_thread() and pt_main_thread() return borrowed pointers: the
 *     current thread's object lives at least as long as the thread runs, the
 *     main thread's object as long as the process. Take a reference with
 *     pt_thread_ref() to keep one longer.
 *   - Dummy threads (threads the library did not start: foreign pthreads,
 *     threads of pt_start_new_thread) get an object from pt_current_thread(),
 *     owned by the library and dropped when that thread exits. Unlike Python
 *     3.11, which keeps them forever, they then leave enumerate() and stop
 *     being alive.
 *   - The excepthook and the trace/profile hooks receive borrowed pointers,
 *     valid for the duration of the call.
 *
 * The registry behind enumerate() and pt_active_count() holds the main
 * thread, every dummy thread, and every library thread from the moment
 * pt_thread_start() is called until the thread has finished its target and
 * the destructors of its locals. Registry membership takes no reference of
 * its own: a listed thread is always kept alive by its running reference or
 * by the library.
 *
 * Process exit and fork
 * ---------------------
 * At normal process exit (return from main, exit()), non-daemon threads
 * started by the library are joined first, as Python does at interpreter
 * shutdown; daemon threads are not waited for. The handler is registered
 * with atexit() when the first thread is started, so it runs before the
 * atexit handlers registered earlier than that. When the join starts, the
 * main thread stops being alive (its joiners wake) but stays listed, as in
 * Python; a thread that calls exit() joins the others, not itself. In a
 * child of fork(), the threads that did not survive the fork are stopped
 * and the forking thread becomes the main thread, as in Python.
 *
 * A library thread's pthread is detached; joining is done through the
 * object, any number of times, by any number of threads.
 */
#ifndef PYTHREAD_THREAD_H
#define PYTHREAD_THREAD_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef PT_NORETURN
#if defined(__GNUC__)
#define PT_NORETURN __attribute__((__noreturn__))
#else
#define PT_NORETURN
#endif
#endif

/* Smallest non-zero stack size accepted (Python's THREAD_STACK_MIN). */
#define PT_STACK_MIN 32768u

typedef struct pt_thread pt_thread;

/* A thread's target: a non-zero return is a failure sent to the excepthook. */
typedef int (*pt_thread_fn)(void *arg);
/* threading.excepthook: called in the failing thread with its status. */
typedef void (*pt_excepthook_fn)(pt_thread *thread, int status);
/* settrace/setprofile hook: called in each new thread before its target. */
typedef void (*pt_thread_hook)(pt_thread *thread);

/* ------------------------------------------------------------------ */
/* Thread                                                              */
/* ------------------------------------------------------------------ */

/* Make an unstarted thread running target(arg) (target may be NULL: does
 * nothing). name NULL or "" gives "Thread-N". The daemon flag is inherited
 * from the calling thread. PT_ERUNTIME while the excepthook is NULL. */
PT_EXTERN int pt_thread_create(pt_thread **out, pt_thread_fn target, void *arg, const char *name);
/* Take one more reference; returns t. */
PT_EXTERN pt_thread *pt_thread_ref(pt_thread *t);
/* Drop one reference (NULL is ignored); a running thread keeps its own. */
PT_EXTERN void pt_thread_unref(pt_thread *t);
/* Start the thread; returns once it is alive. A second start is PT_ERUNTIME,
 * and so is a failure to create the OS thread. */
PT_EXTERN int pt_thread_start(pt_thread *t);
/* Wait until the thread ends, at most timeout seconds (PT_FOREVER: no limit,
 * other negatives: 0). Returns 0 either way, as Python returns None: ask
 * pt_thread_is_alive() whether it timed out. PT_ERUNTIME for the current
 * thread, an unstarted or a dummy thread; while it runs, PT_EOVERFLOW above
 * PT_TIMEOUT_MAX and PT_EINVAL for NaN (once it has ended, any timeout
 * returns 0 at once, as Python's join does once it knows). */
PT_EXTERN int pt_thread_join(pt_thread *t, double timeout);
/* 1 from just before the target runs until just after it returns, else 0. */
PT_EXTERN int pt_thread_is_alive(pt_thread *t);
/* pthread_self() of the thread as an integer; 0 before start, kept after exit. */
PT_EXTERN unsigned long pt_thread_ident(pt_thread *t);
/* Kernel thread id (gettid); 0 before start, kept after exit. */
PT_EXTERN unsigned long pt_thread_native_id(pt_thread *t);
/* Copy the name into buf (size bytes with the NUL, truncated if needed);
 * returns the full length, as snprintf does. buf may be NULL when size is 0. */
PT_EXTERN int pt_thread_get_name(pt_thread *t, char *buf, size_t size);
/* Rename; an alive thread's OS name follows (cut to 15 bytes). */
PT_EXTERN int pt_thread_set_name(pt_thread *t, const char *name);
/* 1 if daemonic, else 0. */
PT_EXTERN int pt_thread_is_daemon(pt_thread *t);
/* Set the daemon flag; PT_ERUNTIME once started. */
PT_EXTERN int pt_thread_set_daemon(pt_thread *t, int daemon);
/* Stack size for this thread (0: pt_stack_size_get() at start); the rules
 * of pt_stack_size_set apply; PT_ERUNTIME once started. */
PT_EXTERN int pt_thread_set_stack_size(pt_thread *t, size_t size);

/* ------------------------------------------------------------------ */
/* Timer                                                               */
/* ------------------------------------------------------------------ */

/* A Thread ("Thread-N") that calls function(arg) interval seconds after it
 * starts unless cancelled first. PT_FOREVER waits for ever (only a cancel
 * ends it); other negatives and NaN fire at once (Python's Timer waits with
 * Event.wait, which does not block for them). PT_EOVERFLOW above
 * PT_TIMEOUT_MAX is reported here rather than in the thread. All
 * pt_thread_* functions apply to the result. */
PT_EXTERN int pt_timer_create(pt_thread **out, double interval, pt_thread_fn function, void *arg);
/* Stop the timer if its function has not started yet; PT_EINVAL if t is
 * not a timer. */
PT_EXTERN int pt_timer_cancel(pt_thread *t);

/* ------------------------------------------------------------------ */
/* local                                                               */
/* ------------------------------------------------------------------ */

typedef struct pt_local pt_local;
/* Run on a thread's fresh zero-filled block, in that thread, on first use. */
typedef void (*pt_local_init_fn)(void *block, void *arg);
/* Run on a block at its thread's exit, or in the freeing thread at free. */
typedef void (*pt_local_dtor_fn)(void *block, void *arg);

/* Make a local of size bytes per thread; init and dtor may be NULL. There is
 * no limit on the number of locals. */
PT_EXTERN int pt_local_create(pt_local **out, size_t size, pt_local_init_fn init,
                              pt_local_dtor_fn dtor, void *arg);
/* The calling thread's block (made on first use); NULL only out of memory. */
PT_EXTERN void *pt_local_get(pt_local *l);
/* Destruct and free every thread's block, then the local. No thread may use
 * it during or after the call. The main thread's blocks are destructed here
 * and not at exit, as with pthread keys. */
PT_EXTERN void pt_local_free(pt_local *l);

/* ------------------------------------------------------------------ */
/* Module functions (threading / _thread)                              */
/* ------------------------------------------------------------------ */

/* The calling thread's object; a dummy ("Dummy-N", alive, daemonic, not
 * joinable) for threads the library did not start. NULL only out of memory. */
PT_EXTERN pt_thread *pt_current_thread(void);
/* The main thread ("MainThread"). */
PT_EXTERN pt_thread *pt_main_thread(void);
/* Fill out with up to n alive threads (main and dummies included), each with
 * a new reference; returns how many are alive, which may exceed n. */
PT_EXTERN int pt_enumerate(pt_thread **out, size_t n);
/* Number of alive threads: what pt_enumerate() would return. */
PT_EXTERN int pt_active_count(void);
/* pthread_self() of the calling thread as an integer (never 0). */
PT_EXTERN unsigned long pt_get_ident(void);
/* Kernel thread id of the calling thread. */
PT_EXTERN unsigned long pt_get_native_id(void);
/* Stack size used for new threads; 0 is the system default. */
PT_EXTERN size_t pt_stack_size_get(void);
/* Set it: 0 or at least PT_STACK_MIN and settable by pthreads, else
 * PT_EINVAL. The previous size goes to *old when old is not NULL. Unlike
 * Python's stack_size(), getting does not reset it to 0. */
PT_EXTERN int pt_stack_size_set(size_t size, size_t *old);
/* Hooks run in each thread started by pt_thread_start, trace before
 * profile, before its target; NULL removes. */
PT_EXTERN void pt_settrace(pt_thread_hook hook);
PT_EXTERN pt_thread_hook pt_gettrace(void);
PT_EXTERN void pt_setprofile(pt_thread_hook hook);
PT_EXTERN pt_thread_hook pt_getprofile(void);
/* threading.excepthook: set (NULL allowed: each thread then uses the hook
 * that was set when it was created) and get. */
PT_EXTERN void pt_excepthook_set(pt_excepthook_fn hook);
PT_EXTERN pt_excepthook_fn pt_excepthook_get(void);
/* threading.__excepthook__, the original hook: prints "Exception in thread
 * NAME:" and the status to stderr. */
PT_EXTERN void pt_excepthook_original(pt_thread *thread, int status);

/* _thread.start_new_thread: start function(arg) in a new untracked thread
 * (no Thread object until it calls pt_current_thread; never joined at exit;
 * a non-zero status is reported on stderr). The ident goes to *ident when
 * ident is not NULL. PT_ERUNTIME if the thread cannot be created. */
PT_EXTERN int pt_start_new_thread(pt_thread_fn function, void *arg, unsigned long *ident);
/* _thread.interrupt_main: raise signum (SIGINT in Python's default) in the
 * main thread; does nothing when the signal is ignored or at its default
 * action, as in Python. PT_EINVAL for a signal number out of range. */
PT_EXTERN int pt_interrupt_main(int signum);
/* _thread.exit: end the calling thread quietly (no excepthook). In the main
 * thread it ends the process with status 0 after joining non-daemon
 * threads, as SystemExit would. */
PT_EXTERN PT_NORETURN void pt_thread_exit(void);

#ifdef __cplusplus
}
#endif

#endif /* PYTHREAD_THREAD_H */
