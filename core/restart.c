/*
 * restart.c - what the last restart did to each object, for inspection.
 *
 * pt_core_restart (fast.c) marks every object restored, then reclaimed
 * where a resuming process's word decided it or a session its process took
 * up holds it; a session the restart kept
 * that nobody took up marks released what its end gives back. Before the
 * restart is made (the daemon's grace period) an object held by a kept
 * session not taken up yet is in grace: that is read off its holders when
 * asked, since it changes with each session taken up.
 *
 * Only holds count (a Lock's holder, owned permits, a Barrier's parties,
 * whose leaving breaks it); waiting calls leave no mark. No answer depends
 * on a mark, so none is a journal input: a replay's marks are reset when
 * the words are lost at the next start, and its restart sets them again.
 */
#include "core_int.h"

void pt__restart_marks_reset(pt_core *c)
{
    pt_obj *obj;

    TAILQ_FOREACH(obj, &c->objects, all_link)
    obj->restart = PT_RESTART_RESTORED;
}

void pt__restart_reclaimed(pt_obj *obj)
{
    obj->restart = PT_RESTART_RECLAIMED;
}

/* A hold that stands with a session its process took up is that
 * process's, whatever its word said: a word the daemon had already read
 * before it died tells nothing new, and the hold is no less reclaimed. */
void pt__restart_taken_up(pt_obj *obj)
{
    const pt_semhold *h;

    switch (obj->kind) {
    case PT_KIND_LOCK:
    case PT_KIND_RLOCK:
        if (obj->u.lock.depth > 0 && !obj->u.lock.s->awaited)
            obj->restart = PT_RESTART_RECLAIMED;
        break;
    case PT_KIND_SEMAPHORE:
    case PT_KIND_BOUNDED_SEMAPHORE:
        TAILQ_FOREACH(h, &obj->u.sem.holders, olink)
        {
            if (h->count > 0 && !h->session->awaited)
                obj->restart = PT_RESTART_RECLAIMED;
        }
        break;
    default:
        break;
    }
}

void pt_core_session_awaited(pt_core *c, pt_session *s, int awaited)
{
    awaited = awaited != 0;
    if (s->awaited == awaited)
        return;
    s->awaited = awaited;
    if (awaited)
        c->nawaited++;
    else
        c->nawaited--;
}

/* A Barrier's party, waiting in its cycle or held while the action runs. */
static int is_party(const pt_waiter *w)
{
    return w->kind == PT_WK_BARRIER || w->kind == PT_WK_ENTRANT;
}

static void parties_released(pt_session *s)
{
    for (uint32_t i = 1; i < s->next_new; i++) {
        const pt_waiter *w;

        LIST_FOREACH(w, &pt__handle_get(s, i)->waiters, hlink)
        {
            if (is_party(w))
                w->obj->restart = PT_RESTART_RELEASED;
        }
    }
}

void pt__restart_session_end(pt_core *c, pt_session *s)
{
    pt_obj *obj;
    pt_semhold *h;

    if (!s->awaited)
        return;
    LIST_FOREACH(obj, &s->locks, u.lock.hold_link)
    obj->restart = PT_RESTART_RELEASED;
    LIST_FOREACH(h, &s->sems, slink)
    {
        if (h->count > 0)
            h->sem->restart = PT_RESTART_RELEASED;
    }
    LIST_FOREACH(obj, &s->runs, u.barrier.run_link)
    obj->restart = PT_RESTART_RELEASED;
    parties_released(s);
    pt_core_session_awaited(c, s, 0);
}

static int parties_awaited(const pt_queue *q)
{
    const pt_waiter *w;

    TAILQ_FOREACH(w, &q->head, qlink)
    {
        if (is_party(w) && w->session->awaited)
            return 1;
    }
    return 0;
}

static int held_by_awaited(const pt_obj *obj)
{
    const pt_semhold *h;

    switch (obj->kind) {
    case PT_KIND_LOCK:
    case PT_KIND_RLOCK:
        return obj->u.lock.depth > 0 && obj->u.lock.s->awaited;
    case PT_KIND_SEMAPHORE:
    case PT_KIND_BOUNDED_SEMAPHORE:
        TAILQ_FOREACH(h, &obj->u.sem.holders, olink)
        {
            if (h->count > 0 && h->session->awaited)
                return 1;
        }
        return 0;
    case PT_KIND_BARRIER:
        return (obj->u.barrier.runner != NULL && obj->u.barrier.runner->awaited) ||
               parties_awaited(&obj->queue) || parties_awaited(&obj->u.barrier.entrants);
    default:
        return 0;
    }
}

/* Outside a grace period no session is awaited: no holder is looked at. */
int pt__restart_mark(const pt_core *c, const pt_obj *obj)
{
    if (obj->kind == PT_KIND_CONDITION)
        obj = obj->u.cond.lock; /* its state is its lock's */
    if (c->nawaited > 0 && held_by_awaited(obj))
        return PT_RESTART_IN_GRACE;
    return obj->restart;
}

void pt_core_objects_by_restart(const pt_core *c, uint64_t counts[PT_RESTART_MARKS])
{
    const pt_obj *obj;

    for (int i = 0; i < PT_RESTART_MARKS; i++)
        counts[i] = 0;
    TAILQ_FOREACH(obj, &c->objects, all_link)
    {
        if (!obj->anonymous)
            counts[pt__restart_mark(c, obj)]++;
    }
}
