/*
 * lock.c - Lock and RLock.
 *
 * A release hands the lock straight to the first queued waiter, so the
 * queue is empty whenever the lock is free: strict FIFO, no barging. The
 * holder owner is recorded for a Lock too, because a Condition's ownership
 * check and a session's end need it. Plain acquirers and a Condition's
 * re-acquirers share the queue.
 */
#include "core_int.h"

/* The next fencing token of the lock; the core's floor follows the highest
 * token given, so an object created later starts above it. */
static uint64_t next_token(pt_core *c, pt_obj *lock)
{
    lock->token++;
    lock->token_given = 1;
    if (lock->token > c->token_floor)
        c->token_floor = lock->token;
    return lock->token;
}

int pt__lock_owned_by(const pt_obj *lock, const pt_session *s, uint64_t thread)
{
    return lock->u.lock.depth > 0 && lock->u.lock.s == s && lock->u.lock.thread == thread;
}

/* A re-acquirer gets its recursion level back, then its wait is answered:
 * ok says whether it was notified. */
static void grant(pt_core *c, pt_obj *lock, pt_waiter *w)
{
    int reacquire = w->kind == PT_WK_REACQUIRE;
    pt_result res = {.ok = reacquire ? w->notified : 1};

    pt__queue_remove(w);
    res.token = next_token(c, lock);
    pt__lock_hold_take(lock, w->session, w->thread, reacquire ? w->depth : 1);
    pt__stat_acquired(c, lock);
    pt__waiter_answer(c, w, &res);
}

/* The word says the lock was handed to its first waiter (fastword.h): the
 * hold is taken already, with its token; the waiter's call is answered as
 * the grant it was. */
void pt__lock_handed(pt_core *c, pt_obj *lock, uint64_t token)
{
    pt_waiter *w = TAILQ_FIRST(&lock->queue.head);
    pt_result res = {.ok = 1, .token = token};

    if (w == NULL || w->kind != PT_WK_LOCK || !pt__lock_owned_by(lock, w->session, w->thread))
        return;
    pt__queue_remove(w);
    pt__stat_handed(c, lock);
    pt__waiter_answer(c, w, &res);
}

void pt__lock_grant_next(pt_core *c, pt_obj *lock)
{
    pt_waiter *w = TAILQ_FIRST(&lock->queue.head);

    if (lock->u.lock.depth == 0 && w != NULL)
        grant(c, lock, w);
}

/* Frees the lock whatever its level and hands it on. The holder's reference
 * goes last, after the next holder took its own. */
void pt__lock_release_all(pt_core *c, pt_obj *lock)
{
    pt__stat_lock_released(c, lock);
    pt__lock_hold_drop(c, lock);
    pt__lock_grant_next(c, lock);
    pt__obj_unref(c, lock);
}

/* r->obj is the Lock/RLock itself or a Condition over it. */
void pt__op_lock_acquire(pt_req *r, pt_obj *lock)
{
    const pt_call *call = r->call;
    pt_result res = {.ok = 1};
    pt_waiter *w;

    if (pt__check_lock_timeout(r) != 0)
        return;
    if (lock->u.lock.depth == 0) {
        res.token = next_token(r->core, lock);
        pt__lock_hold_take(lock, r->s, call->thread, 1);
        pt__stat_acquired(r->core, lock);
        pt__reply(r, &res);
        return;
    }
    if (lock->kind == PT_KIND_RLOCK && pt__lock_owned_by(lock, r->s, call->thread)) {
        if (lock->u.lock.depth == UINT32_MAX) {
            pt__fail_obj(r, r->obj, PT_EOVERFLOW,
                         "Internal lock count overflowed; release the lock before acquiring it "
                         "again");
            return;
        }
        lock->u.lock.depth++;
        res.token = lock->token;
        pt__reply(r, &res);
        return;
    }
    pt__stat_contended(r->core, lock);
    if (!call->blocking || call->timeout == 0) {
        res.ok = 0;
        pt__reply(r, &res);
        return;
    }
    if ((w = pt__waiter_for(r, r->obj, PT_WK_LOCK)) == NULL)
        return;
    w->watch = call->watch && r->obj == lock && lock->fast != 0;
    pt__waiter_park(r->core, w, lock, &lock->queue, r->slot, pt__deadline(r->now, call->timeout));
    pt__deadlock_check(r->core, w);
}

void pt__op_lock_release(pt_req *r, pt_obj *lock)
{
    pt_result res = {.ok = 1};

    if (lock->u.lock.depth == 0 && lock->kind == PT_KIND_LOCK) {
        pt__fail_obj(r, r->obj, PT_ERUNTIME,
                     "release unlocked lock; acquire it before releasing it");
        return;
    }
    if (lock->kind == PT_KIND_RLOCK) {
        if (!pt__lock_owned_by(lock, r->s, r->call->thread)) {
            pt__fail_obj(r, r->obj, PT_ERUNTIME,
                         "cannot release un-acquired lock; only the owning thread may release "
                         "it");
            return;
        }
        if (lock->u.lock.depth > 1) {
            lock->u.lock.depth--;
            pt__reply(r, &res);
            return;
        }
    }
    pt__lock_release_all(r->core, lock);
    pt__reply(r, &res);
}
