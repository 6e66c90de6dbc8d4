/*
 * inspect.c - what pythreadctl sees: per-object counters kept on every
 * call, and read-only walks over objects, their holders and waiters, and
 * sessions, handed out as fill-in structs so nothing outside the core
 * needs its private layout.
 *
 * Counting is O(1) and allocation-free: the core keeps the time of the call
 * it is serving (core->now), so the hooks need no extra argument.
 */
#include <string.h>

#include "core_int.h"

void pt__stat_acquired(pt_core *c, pt_obj *obj)
{
    obj->stats.acquires++;
    c->metrics.acquires++;
    if (obj->kind == PT_KIND_LOCK || obj->kind == PT_KIND_RLOCK)
        obj->u.lock.since = c->now;
}

void pt__stat_fast_acquired(pt_core *c, pt_obj *obj, uint64_t n)
{
    obj->stats.acquires += n;
    c->metrics.acquires_fast += n;
}

void pt__stat_contended(pt_core *c, pt_obj *obj)
{
    obj->stats.contended++;
    c->metrics.contended++;
}

void pt__stat_handed(pt_core *c, pt_obj *lock)
{
    lock->stats.handed++;
    c->metrics.handed++;
}

/* The hold ends whatever its recursion level. pt_core_free ends sessions
 * at time 0: a clock that went back is not a hold time. */
void pt__stat_lock_released(pt_core *c, pt_obj *lock)
{
    uint64_t since = lock->u.lock.since;

    if (lock->u.lock.depth == 0 || c->now < since)
        return;
    if (c->now - since > lock->stats.longest_hold)
        lock->stats.longest_hold = c->now - since;
    pt__metric_observe(&c->metrics.hold, c->now - since);
}

/* Only an acquire that got its object is a hand-off: a wait for a notify,
 * an event or a barrier measures the application, not the lock. */
static int handoff(const pt_waiter *w, const pt_result *r)
{
    return (w->kind == PT_WK_LOCK || w->kind == PT_WK_SEM) && r->status == 0 && r->ok;
}

void pt__stat_waited(pt_core *c, const pt_waiter *w, const pt_result *r)
{
    pt_obj *obj = w->obj;

    if (obj == NULL || c->now < w->since)
        return;
    if (c->now - w->since > obj->stats.longest_wait)
        obj->stats.longest_wait = c->now - w->since;
    if (handoff(w, r))
        pt__metric_observe(&c->metrics.wait, c->now - w->since);
}

void pt__stat_timeout(pt_core *c, const pt_waiter *w)
{
    c->metrics.timeouts++;
    if (w->obj != NULL)
        w->obj->stats.timeouts++;
}

/* The longest hold of lock, the one going on at now included: a lock held
 * for seconds must not show a longest hold of 0. */
static uint64_t longest_hold(const pt_obj *lock, uint64_t now)
{
    uint64_t since = lock->u.lock.since, longest = lock->stats.longest_hold;

    if (lock->u.lock.depth > 0 && now >= since && now - since > longest)
        return now - since;
    return longest;
}

/* What a caller without read permission must not learn: the state, the
 * counters, who waits and how many references there are. The name, kind,
 * owner, mode, flags and a Condition's lock name stay, as `ls -l` shows
 * a file it cannot read. */
static void detail_hide(pt_core_object_detail *d)
{
    d->info.state = (pt_state){.kind = d->info.kind};
    d->info.refs = 0;
    d->waiters = 0;
    d->counters = (pt_core_counters){0};
    d->restart = PT_RESTART_NONE;
    d->deadlock = 0;
    d->hidden = 1;
}

static void detail_fill(const pt_core *c, const pt_obj *obj, uint64_t now, pt_core_object_detail *d)
{
    const pt_obj *lock = obj->kind == PT_KIND_CONDITION ? obj->u.cond.lock : NULL;

    memset(d, 0, sizeof(*d));
    pt__object_info_fill(obj, &d->info);
    d->serial = obj->serial;
    d->restart = pt__restart_mark(c, obj);
    d->waiters = obj->queue.len;
    if (obj->kind == PT_KIND_BARRIER)
        d->waiters += obj->u.barrier.entrants.len;
    if (lock != NULL) {
        d->waiters += lock->queue.len;
        if (!lock->anonymous) {
            d->cond_lock = lock->name;
            d->cond_lock_len = lock->name_len;
        }
    }
    if (obj->kind == PT_KIND_SEMAPHORE || obj->kind == PT_KIND_BOUNDED_SEMAPHORE)
        d->owned = obj->u.sem.owned;
    if (obj->kind == PT_KIND_LOCK || obj->kind == PT_KIND_RLOCK)
        d->deadlock = pt__deadlock_of_lock(obj);
    else if (lock != NULL)
        d->deadlock = pt__deadlock_of_lock(lock);
    d->counters = (pt_core_counters){
        .acquires = obj->stats.acquires,
        .contended = obj->stats.contended,
        .handed = obj->stats.handed,
        .timeouts = obj->stats.timeouts,
        .longest_wait = obj->stats.longest_wait,
        .longest_hold = (obj->kind == PT_KIND_LOCK || obj->kind == PT_KIND_RLOCK)
                            ? longest_hold(obj, now)
                            : obj->stats.longest_hold,
    };
    /* A Condition's acquires and holds are its lock's. */
    if (lock != NULL) {
        d->counters.acquires = lock->stats.acquires;
        d->counters.contended = lock->stats.contended;
        d->counters.handed = lock->stats.handed;
        d->counters.longest_hold = longest_hold(lock, now);
        d->counters.timeouts += lock->stats.timeouts;
        if (lock->stats.longest_wait > d->counters.longest_wait)
            d->counters.longest_wait = lock->stats.longest_wait;
    }
}

/* Read permission by the object's mode (asker NULL: the caller sees all). */
static int may_read(const pt_core *core, const pt_session *asker, const pt_obj *obj)
{
    return asker == NULL || pt__access_check((pt_core *)core, asker, obj, PT_ACCESS_READ) == 0;
}

void pt_core_inspect_objects(const pt_core *core, const pt_session *asker, uint64_t after,
                             uint64_t now, pt_core_detail_fn fn, void *ctx)
{
    const pt_obj *obj;
    pt_core_object_detail d;

    TAILQ_FOREACH(obj, &core->objects, all_link)
    {
        if (obj->anonymous || obj->serial <= after)
            continue;
        detail_fill(core, obj, now, &d);
        if (!may_read(core, asker, obj))
            detail_hide(&d);
        if (fn(ctx, &d) != 0)
            return;
    }
}

static pt_party_role waiter_role(const pt_waiter *w)
{
    static const pt_party_role roles[] = {
        [PT_WK_LOCK] = PT_PARTY_ACQUIRE,    [PT_WK_REACQUIRE] = PT_PARTY_REACQUIRE,
        [PT_WK_COND] = PT_PARTY_WAIT,       [PT_WK_SEM] = PT_PARTY_ACQUIRE,
        [PT_WK_EVENT] = PT_PARTY_WAIT,      [PT_WK_BARRIER] = PT_PARTY_BARRIER,
        [PT_WK_ENTRANT] = PT_PARTY_BARRIER,
    };

    return w->kind < sizeof(roles) / sizeof(roles[0]) ? roles[w->kind] : PT_PARTY_WAIT;
}

static void queue_parties(const pt_queue *q, pt_core_party_fn fn, void *ctx)
{
    const pt_waiter *w;

    TAILQ_FOREACH(w, &q->head, qlink)
    {
        pt_core_party p = {
            .role = waiter_role(w),
            .session = w->session,
            .thread = w->thread,
            .count = w->depth,
            .since = w->since,
            .deadlock = pt__deadlock_of_wait(w),
        };

        fn(ctx, &p);
    }
}

/* What a holder's thread waits for now: a lock has an owner to wait for
 * (a Condition stands for its own RLock), anything else has none. */
static void holder_waits(const pt_core *c, pt_core_party *p)
{
    const pt_waiter *w = pt__owner_any_wait(c, p->session, p->thread);
    const pt_obj *shown;

    if (w == NULL)
        return;
    p->waits_owner = w->kind == PT_WK_LOCK || w->kind == PT_WK_REACQUIRE;
    shown = p->waits_owner && !w->obj->anonymous ? w->obj : w->target;
    p->waits = shown->name;
    p->waits_len = shown->name_len;
    p->waits_kind = shown->kind;
}

static void lock_holder(const pt_core *c, const pt_obj *lock, pt_core_party_fn fn, void *ctx)
{
    pt_core_party p = {
        .role = PT_PARTY_HOLDER,
        .session = lock->u.lock.s,
        .thread = lock->u.lock.thread,
        .count = lock->u.lock.depth,
        .since = lock->u.lock.since,
        .deadlock = pt__deadlock_of_lock(lock),
    };

    if (lock->u.lock.depth == 0 || lock->u.lock.s == NULL)
        return;
    holder_waits(c, &p);
    fn(ctx, &p);
}

/* Holders first, then waiters in the order they will be served. */
static void parties(const pt_core *c, const pt_obj *obj, pt_core_party_fn fn, void *ctx)
{
    const pt_semhold *h;

    switch (obj->kind) {
    case PT_KIND_LOCK:
    case PT_KIND_RLOCK:
        lock_holder(c, obj, fn, ctx);
        queue_parties(&obj->queue, fn, ctx);
        break;
    case PT_KIND_CONDITION:
        /* The lock's queue (acquirers and notified waiters taking the
         * lock back) is served before anyone still waiting for a notify. */
        lock_holder(c, obj->u.cond.lock, fn, ctx);
        queue_parties(&obj->u.cond.lock->queue, fn, ctx);
        queue_parties(&obj->queue, fn, ctx);
        break;
    case PT_KIND_SEMAPHORE:
    case PT_KIND_BOUNDED_SEMAPHORE:
        TAILQ_FOREACH(h, &obj->u.sem.holders, olink)
        {
            pt_core_party p = {
                .role = PT_PARTY_HOLDER, .session = h->session, .count = (uint64_t)h->count};

            if (h->count > 0) /* a slot's record holds nothing yet */
                fn(ctx, &p);
        }
        queue_parties(&obj->queue, fn, ctx);
        break;
    case PT_KIND_BARRIER:
        queue_parties(&obj->queue, fn, ctx);
        queue_parties(&obj->u.barrier.entrants, fn, ctx);
        break;
    default:
        queue_parties(&obj->queue, fn, ctx);
        break;
    }
}

int pt_core_inspect_object(pt_core *core, const pt_session *asker, const char *name, size_t len,
                           uint64_t now, pt_core_object_detail *out, pt_core_party_fn fn, void *ctx)
{
    pt_obj *obj;

    if (!pt_name_valid(name, len))
        return PT_ENAME;
    obj = pt__map_find(&core->map, name, len, pt__name_hash(name, len));
    if (obj == NULL)
        return PT_ENOENT;
    detail_fill(core, obj, now, out);
    /* The detail (state, counters, who holds it, who waits) needs read
     * permission by the object's mode; its existence does not. */
    if (!may_read(core, asker, obj)) {
        detail_hide(out);
        return PT_EPERM;
    }
    if (fn != NULL)
        parties(core, obj, fn, ctx);
    return 0;
}

void pt_core_session_info_get(const pt_session *s, pt_core_session_info *out)
{
    const pt_obj *lock;
    const pt_semhold *h;

    *out = (pt_core_session_info){
        .id = s->id,
        .peer = s->peer,
        .handles = s->nhandles,
        .waiting = s->nwaiters,
    };
    LIST_FOREACH(lock, &s->locks, u.lock.hold_link)
    out->held++;
    LIST_FOREACH(h, &s->sems, slink)
    out->held += h->count > 0;
}

void pt_core_objects_by_kind(const pt_core *core, uint64_t counts[PT_KIND_BARRIER + 1])
{
    const pt_obj *obj;

    memset(counts, 0, sizeof(uint64_t) * (PT_KIND_BARRIER + 1));
    TAILQ_FOREACH(obj, &core->objects, all_link)
    {
        if (!obj->anonymous && obj->kind >= PT_KIND_LOCK && obj->kind <= PT_KIND_BARRIER)
            counts[obj->kind]++;
    }
}

void pt_core_get_limits(const pt_core *core, pt_core_limits *out)
{
    *out = core->limits;
}
