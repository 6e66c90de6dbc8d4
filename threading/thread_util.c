/*
 * thread_util.c - small helpers of the thread code: timeouts and deadlines,
 * OS thread names, and the messages that go with error codes.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "thread_int.h"

/* Linux keeps 15 bytes of a thread's name, plus the NUL. */
#define PT__OS_NAME_MAX 15

/* Check a timeout the way Python's lock acquire does: NaN is ValueError,
 * anything above TIMEOUT_MAX (infinity included) is OverflowError. */
int pt__thread_timeout_check(double timeout)
{
    if (isnan(timeout))
        return PT_EINVAL;
    if (timeout > PT_TIMEOUT_MAX)
        return PT_EOVERFLOW;
    return 0;
}

/* The CLOCK_MONOTONIC instant timeout seconds (0..PT_TIMEOUT_MAX) from now.
 * Python measures its waits on the monotonic clock too. */
int pt__thread_deadline(double timeout, struct timespec *out)
{
    struct timespec now;
    time_t whole = (time_t)timeout; /* timeout >= 0: truncation is floor */
    long nsec = (long)((timeout - (double)whole) * 1e9);

    if (clock_gettime(CLOCK_MONOTONIC, &now) != 0)
        return PT_EINTERNAL;
    out->tv_sec = now.tv_sec + whole;
    out->tv_nsec = now.tv_nsec + nsec;
    if (out->tv_nsec >= 1000000000L) {
        out->tv_sec++;
        out->tv_nsec -= 1000000000L;
    }
    return 0;
}

/* Every condition variable of the thread code waits on the monotonic
 * clock, so a change of the wall clock moves no deadline. */
void pt__thread_cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t attr;

    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &attr);
    pthread_condattr_destroy(&attr);
}

/* Give an OS thread the name, cut to what Linux keeps without splitting a
 * UTF-8 sequence. A failure only loses a debugging aid, so it is ignored. */
void pt__thread_os_name(pthread_t handle, const char *name)
{
    char buf[PT__OS_NAME_MAX + 1];
    size_t n = strlen(name);

    if (n > PT__OS_NAME_MAX) {
        n = PT__OS_NAME_MAX;
        while (n > 0 && ((unsigned char)name[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(buf, name, n);
    buf[n] = '\0';
    (void)pthread_setname_np(handle, buf);
}

/* A copy of the thread's current name for a message; NULL out of memory. */
char *pt__thread_name_dup(pt_thread *t)
{
    char *copy;

    pthread_mutex_lock(&t->mu);
    copy = strdup(t->name);
    pthread_mutex_unlock(&t->mu);
    return copy;
}

/* Record the message of the calling thread's failure, the one
 * pt_last_error_message() gives; returns code. */
int pt__thread_failf(int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(pt__errbuf(), PT__ERRMSG_MAX, fmt, ap);
    va_end(ap);
    return code;
}

/* A failure of an operation on a thread: "Thread 'NAME': OP: WHAT". Must be
 * called without t->mu held. */
int pt__thread_fail(pt_thread *t, int code, const char *op, const char *what)
{
    char *name = pt__thread_name_dup(t);
    const char *kind = t->kind == PT__KIND_TIMER ? "Timer" : "Thread";

    pt__thread_failf(code, "%s '%s': %s: %s", kind, name ? name : "?", op, what);
    free(name);
    return code;
}

/* Create a detached pthread running fn(arg) with the stack size (0: the
 * system's). Returns 0 or an errno value. Detached, because joining is done
 * through the Thread object, by any number of threads. */
int pt__thread_spawn(void *(*fn)(void *), void *arg, size_t stack_size, pthread_t *out)
{
    pthread_attr_t attr;
    int rc = pthread_attr_init(&attr);

    if (rc != 0)
        return rc;
    rc = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (rc == 0 && stack_size != 0)
        rc = pthread_attr_setstacksize(&attr, stack_size);
    if (rc == 0)
        rc = pthread_create(out, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    return rc;
}
