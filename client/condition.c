/*
 * condition.c - Condition over its own RLock or a named Lock/RLock. Waiting,
 * releasing and re-acquiring the lock all happen in the daemon; only
 * wait_for, which runs the caller's predicate, lives here.
 */
#include <time.h>

#include "session.h"

int pt_condition_open(pt_client *c, const char *name, pt_object *lock, int flags, unsigned mode,
                      pt_condition **out)
{
    pt__open_params p = {
        .kind = PT_KIND_CONDITION,
        .flags = (uint32_t)flags,
        .mode = mode,
        .lock = lock,
    };
    pt_object *o = NULL;
    int r = pt__object_open(c, sizeof(struct pt_condition), name, &p, out ? &o : NULL);

    if (out)
        *out = (pt_condition *)o;
    return r;
}

int pt_condition_acquire(pt_condition *cv, int blocking, double timeout)
{
    if (!cv)
        return pt__null_handle("pt_condition_acquire");
    return pt__object_acquire(&cv->o, blocking, timeout, NULL);
}

int pt_condition_release(pt_condition *cv)
{
    if (!cv)
        return pt__null_handle("pt_condition_release");
    return pt__object_release(&cv->o, 1);
}

int pt_condition_wait(pt_condition *cv, double timeout)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    pt__reply rep;
    int r;

    if (!cv)
        return pt__null_handle("pt_condition_wait");
    req.op = PYTHREAD__OP__OP_COND_WAIT;
    req.has_timeout = 1;
    req.timeout = timeout;
    pt__object_deadlock_ask(&cv->o, &req);
    r = pt__object_call(&cv->o, &req, &rep, NULL);
    return r < 0 ? r : rep.ok != 0;
}

static double monotonic_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* threading.Condition.wait_for, step by step: the end time is fixed at the
 * first wait, and each later wait gets what is left of it. A NaN timeout
 * gives an end time that never passes, and each wait(NaN) returns at once
 * with the lock held again, so the predicate is polled until it holds, as
 * in Python. */
int pt_condition_wait_for(pt_condition *cv, int (*predicate)(void *arg), void *arg, double timeout)
{
    int forever = timeout == PT_FOREVER;
    double waittime = timeout, endtime = 0;
    int have_end = 0, result, r;

    if (!cv)
        return pt__null_handle("pt_condition_wait_for");
    if (!predicate)
        return pt__object_error(&cv->o, "wait_for", PT_EINVAL,
                                "predicate is NULL; pass the function to wait on");
    result = predicate(arg);
    while (!result) {
        if (!forever) {
            if (!have_end) {
                endtime = monotonic_now() + waittime;
                have_end = 1;
            } else {
                waittime = endtime - monotonic_now();
                if (waittime <= 0)
                    break;
            }
        }
        r = pt_condition_wait(cv, waittime);
        if (r < 0)
            return r;
        result = predicate(arg);
    }
    return result;
}

/*
 * notify(0) wakes nobody, and NOTIFY with count 0 means "all" on the wire, so
 * nothing is sent to notify. Python still refuses it from a thread that
 * does not own the lock, so ownership is checked the way Condition._is_owned
 * checks it: an RLock (the condition's own, or a named one) by its owner, a
 * plain Lock by being locked at all.
 */
static int condition_check_owned(pt_condition *cv)
{
    const pt_object *lock = cv->o.params.lock;
    pt__state st;
    int owned, r;

    r = pt__object_state(&cv->o, "notify", &st);
    if (r < 0)
        return r;
    owned = lock && lock->params.kind == PT_KIND_LOCK ? st.locked : st.owner_depth > 0;
    if (!owned)
        return pt__object_error(&cv->o, "notify", PT_ERUNTIME,
                                "cannot notify on un-acquired lock; acquire the condition first");
    return 0;
}

int pt_condition_notify(pt_condition *cv, unsigned n)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    pt__reply rep;

    if (!cv)
        return pt__null_handle("pt_condition_notify");
    if (n == 0)
        return condition_check_owned(cv);
    req.op = PYTHREAD__OP__OP_NOTIFY;
    req.has_count = 1;
    req.count = n;
    return pt__object_call(&cv->o, &req, &rep, NULL);
}

int pt_condition_notify_all(pt_condition *cv)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    pt__reply rep;

    if (!cv)
        return pt__null_handle("pt_condition_notify_all");
    req.op = PYTHREAD__OP__OP_NOTIFY;
    req.has_count = 1;
    req.count = 0;
    return pt__object_call(&cv->o, &req, &rep, NULL);
}

int pt_condition_close(pt_condition *cv)
{
    return cv ? pt__object_close(&cv->o) : 0;
}
