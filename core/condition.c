/*
 * condition.c - Condition over its own RLock or a named Lock/RLock.
 *
 * wait releases the lock completely, parks in the condition's FIFO, and on
 * notify or timeout moves to the back of the lock's queue as a re-acquirer;
 * its wait is answered only once it holds the lock again at its old level.
 *
 * "Holding the lock" is checked as Python's Condition checks it: an RLock
 * (the condition's own or a named one) by its owner; a plain Lock, which
 * has no owner in Python, by being locked at all (Condition._is_owned tries
 * a non-blocking acquire). So a caller may wait on a plain Lock another
 * owner holds: wait releases it for that owner, and the caller re-acquires
 * it, as Python's _release_save and _acquire_restore do.
 */
#include "core_int.h"

static pt_obj *cond_lock(const pt_obj *cond)
{
    return cond->u.cond.lock;
}

static int cond_owned(const pt_obj *lock, const pt_session *s, uint64_t thread)
{
    if (lock->kind == PT_KIND_LOCK)
        return lock->u.lock.depth > 0;
    return pt__lock_owned_by(lock, s, thread);
}

void pt__op_cond_acquire(pt_req *r)
{
    pt__op_lock_acquire(r, cond_lock(r->obj));
}

void pt__op_cond_release(pt_req *r)
{
    pt__op_lock_release(r, cond_lock(r->obj));
}

/* From the condition's queue to the back of the lock's queue. */
static void to_lock_queue(pt_core *c, pt_waiter *w, pt_obj *lock, int notified)
{
    pt__queue_remove(w);
    w->kind = PT_WK_REACQUIRE;
    w->notified = notified != 0;
    w->obj = lock;
    pt__queue_push(&lock->queue, w);
    pt__deadlock_index(c, w);
}

/* w re-acquires lock from the back of its queue: at once when the lock is
 * free (then nobody is queued before it), else it waits for the holder,
 * which may close a cycle of lock waits. */
static void reacquire(pt_core *c, pt_waiter *w, pt_obj *lock)
{
    if (lock->u.lock.depth == 0)
        pt__lock_grant_next(c, lock);
    else
        pt__deadlock_check(c, w);
}

void pt__op_cond_wait(pt_req *r)
{
    const pt_call *call = r->call;
    pt_obj *cond = r->obj, *lock = cond_lock(cond);
    double t = call->timeout;
    pt_waiter *w;

    if (!cond_owned(lock, r->s, call->thread)) {
        pt__fail_obj(r, cond, PT_ERUNTIME,
                     "cannot wait on un-acquired lock; acquire the condition's lock first");
        return;
    }
    if (!pt__timeout_dont_wait(t) && pt__check_wait_timeout(r, t) != 0)
        return;
    if ((w = pt__waiter_for(r, cond, PT_WK_COND)) == NULL)
        return;
    w->depth = lock->u.lock.depth;
    pt__lock_release_all(r->core, lock);
    if (pt__timeout_dont_wait(t)) {
        /* Times out at once, but still queues behind anyone waiting for
         * the lock, as Python's re-acquire would. */
        w->kind = PT_WK_REACQUIRE;
        pt__waiter_park(r->core, w, lock, &lock->queue, r->slot, PT_DEADLINE_NONE);
        reacquire(r->core, w, lock);
        return;
    }
    pt__waiter_park(r->core, w, cond, &cond->queue, r->slot, pt__deadline(r->now, t));
}

void pt__op_cond_notify(pt_req *r)
{
    pt_obj *cond = r->obj, *lock = cond_lock(cond);
    uint32_t n = r->call->count ? r->call->count : UINT32_MAX;
    pt_result res = {.ok = 1};
    pt_waiter *w;

    if (!cond_owned(lock, r->s, r->call->thread)) {
        pt__fail_obj(r, cond, PT_ERUNTIME,
                     "cannot notify on un-acquired lock; acquire the condition's lock first");
        return;
    }
    while ((uint64_t)res.value < n && (w = TAILQ_FIRST(&cond->queue.head)) != NULL) {
        pt__heap_remove(&r->core->heap, w);
        w->deadline = PT_DEADLINE_NONE;
        to_lock_queue(r->core, w, lock, 1);
        res.value++;
        /* The notifier holds the lock (an RLock's owner), or someone does (a
         * Lock): the notified wait may close a cycle, and fail with it. */
        pt__deadlock_check(r->core, w);
    }
    pt__reply(r, &res);
}

/* A wait's deadline passed: it re-acquires, not notified; with the lock
 * free it gets it at once. */
void pt__cond_timeout(pt_core *c, pt_waiter *w)
{
    pt_obj *lock = cond_lock(w->obj);

    to_lock_queue(c, w, lock, 0);
    reacquire(c, w, lock);
}
