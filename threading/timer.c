/*
 * timer.c - Timer: a Thread whose run waits for an interval and calls its
 * function unless cancelled first (Python's threading.Timer, with its
 * "finished" Event folded into the thread's own mutex and condition).
 */
#include <errno.h>
#include <math.h>

#include "thread_int.h"

/* A NaN interval is taken and fires at once: Timer.run waits with
 * Event.wait(nan), which does not block (NaN is not > 0). */
int pt_timer_create(pt_thread **out, double interval, pt_thread_fn function, void *arg)
{
    int err = interval == PT_FOREVER || isnan(interval) ? 0 : pt__thread_timeout_check(interval);

    if (err != 0)
        return pt__thread_failf(err,
                                "Timer: create: interval %g is too large; use at most "
                                "PT_TIMEOUT_MAX seconds or PT_FOREVER",
                                interval);
    err = pt__thread_new(PT__KIND_TIMER, function, arg, NULL, out);
    if (err == 0)
        (*out)->interval = interval;
    return err;
}

int pt_timer_cancel(pt_thread *t)
{
    if (t->kind != PT__KIND_TIMER)
        return pt__thread_fail(t, PT_EINVAL, "cancel",
                               "not a timer; only threads made by pt_timer_create can be "
                               "cancelled");
    pthread_mutex_lock(&t->mu);
    t->finished = 1;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    return 0;
}

/* Wait out the interval as Event.wait(interval) would: for ever for
 * PT_FOREVER, not at all for 0 or less. Returns 1 if the function is due,
 * 0 if the timer was cancelled. */
static int pt__timer_due(pt_thread *t)
{
    struct timespec deadline;
    int forever = t->interval == PT_FOREVER;
    int timed = !forever && t->interval > 0 && pt__thread_deadline(t->interval, &deadline) == 0;
    int due;

    pthread_mutex_lock(&t->mu);
    while (!t->finished && (forever || timed)) {
        if (forever)
            pthread_cond_wait(&t->cv, &t->mu);
        else if (pthread_cond_timedwait(&t->cv, &t->mu, &deadline) == ETIMEDOUT)
            break;
    }
    due = !t->finished;
    pthread_mutex_unlock(&t->mu);
    return due;
}

/* Timer.run: the function's status is the thread's. */
int pt__timer_run(pt_thread *t)
{
    int status = 0;

    if (pt__timer_due(t) && t->target != NULL)
        status = t->target(t->arg);
    pthread_mutex_lock(&t->mu);
    t->finished = 1;
    pthread_mutex_unlock(&t->mu);
    return status;
}
