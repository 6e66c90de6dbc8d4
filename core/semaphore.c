/*
 * semaphore.c - Semaphore and BoundedSemaphore.
 *
 * Each released permit goes straight to the first queued waiter, so waiters
 * exist only while the value is 0. When permits are owned, each session's
 * taken and not yet released permits are counted in a hold, so its end can
 * give them back; a waiter of an owned semaphore reserves its hold record
 * when it parks, so granting it never allocates.
 */
#include "core_int.h"

static int sem_is_owned(const pt_obj *sem)
{
    return sem->u.sem.owned;
}

/* The session's hold, made from spare (or a new record) when missing.
 * NULL only when out of memory. */
static pt_semhold *hold_get(pt_core *c, pt_obj *sem, pt_session *s, pt_semhold **spare)
{
    pt_semhold *h = pt__semhold_find(sem, s);

    if (h != NULL)
        return h;
    if (spare != NULL && *spare != NULL) {
        h = *spare;
        *spare = NULL;
    } else if ((h = pt__semhold_alloc(c)) == NULL) {
        return NULL;
    }
    pt__semhold_link(h, sem, s);
    return h;
}

/* A record with no permit and no slot goes. */
void pt__semhold_idle(pt_core *c, pt_semhold *h)
{
    pt_obj *sem = h->sem;

    if (h->count != 0 || h->slot != 0)
        return;
    pt__semhold_unlink(h);
    pt__semhold_release(c, h);
    pt__obj_unref(c, sem);
}

static void grant(pt_core *c, pt_obj *sem, pt_waiter *w)
{
    pt_result res = {.ok = 1};

    if (sem_is_owned(sem))
        hold_get(c, sem, w->session, &w->spare)->count++;
    pt__stat_acquired(c, sem);
    res.value = sem->u.sem.value;
    pt__waiter_answer(c, w, &res);
}

/* n permits come back: the first waiters get one each, the rest raise the
 * value. Loops only over waiters, never over n. */
void pt__sem_give(pt_core *c, pt_obj *sem, uint64_t n)
{
    pt_waiter *w;

    while (n > 0 && (w = TAILQ_FIRST(&sem->queue.head)) != NULL) {
        grant(c, sem, w);
        n--;
    }
    sem->u.sem.value += (int64_t)n;
}

/* Up to n of h's permits end; how many did. */
static uint64_t hold_count_down(pt_core *c, pt_semhold *h, uint64_t n)
{
    uint64_t take = h->count <= 0 ? 0 : (uint64_t)h->count < n ? (uint64_t)h->count : n;

    h->count -= (int64_t)take;
    pt__semhold_idle(c, h);
    return take;
}

/* The releasing session's own permits count down first, then other
 * holders' in the order they took them, so value + sum(holds) never
 * passes the bound. */
void pt__sem_count_down(pt_core *c, pt_obj *sem, pt_session *s, uint64_t n)
{
    pt_semhold *h = pt__semhold_find(sem, s), *next;

    if (h != NULL)
        n -= hold_count_down(c, h, n);
    for (h = TAILQ_FIRST(&sem->u.sem.holders); n > 0 && h != NULL; h = next) {
        next = TAILQ_NEXT(h, olink);
        n -= hold_count_down(c, h, n);
    }
}

void pt__op_sem_acquire(pt_req *r)
{
    const pt_call *call = r->call;
    pt_obj *sem = r->obj;
    double t = call->timeout;
    pt_result res = {.ok = 1};
    pt_waiter *w;

    if (pt__check_sem_timeout(r) != 0)
        return;
    if (sem->u.sem.value > 0) {
        if (sem_is_owned(sem)) {
            pt_semhold *h = hold_get(r->core, sem, r->s, NULL);

            if (h == NULL) {
                pt__fail_obj(r, sem, PT_ENOMEM, "out of memory in the daemon");
                return;
            }
            h->count++;
        }
        pt__stat_acquired(r->core, sem);
        res.value = --sem->u.sem.value;
        pt__reply(r, &res);
        return;
    }
    pt__stat_contended(r->core, sem);
    if (!call->blocking || (t <= 0 && !pt__timeout_is_none(t))) {
        res.ok = 0;
        pt__reply(r, &res);
        return;
    }
    if (pt__check_wait_timeout(r, t) != 0)
        return;
    if ((w = pt__waiter_for(r, sem, PT_WK_SEM)) == NULL)
        return;
    if (sem_is_owned(sem) && (w->spare = pt__semhold_alloc(r->core)) == NULL) {
        pt__waiter_free(r->core, w);
        pt__fail_waiter(r, PT_ENOMEM);
        return;
    }
    pt__waiter_park(r->core, w, sem, &sem->queue, r->slot, pt__deadline(r->now, t));
}

void pt__op_sem_release(pt_req *r)
{
    pt_obj *sem = r->obj;
    uint64_t n = r->call->count;
    pt_result res = {.ok = 1};

    if (n < 1) {
        pt__fail_obj(r, sem, PT_EINVAL, "n must be one or more");
        return;
    }
    if (sem->kind == PT_KIND_BOUNDED_SEMAPHORE &&
        n > (uint64_t)(sem->u.sem.initial - sem->u.sem.value)) {
        pt__fail_obj(r, sem, PT_EINVAL,
                     "Semaphore released too many times (value %lld + %llu > initial %lld); "
                     "release only what was acquired",
                     (long long)sem->u.sem.value, (unsigned long long)n,
                     (long long)sem->u.sem.initial);
        return;
    }
    if (n > (uint64_t)(INT64_MAX - sem->u.sem.value)) {
        pt__fail_obj(r, sem, PT_EOVERFLOW, "the value would pass %lld", (long long)INT64_MAX);
        return;
    }
    if (sem_is_owned(sem))
        pt__sem_count_down(r->core, sem, r->s, n);
    pt__sem_give(r->core, sem, n);
    res.value = sem->u.sem.value;
    pt__reply(r, &res);
}

/* A session's end: its owned permits go to waiters or back to the value.
 * The semaphore's reference goes after the hand-off. */
void pt__sem_return_holds(pt_core *c, pt_session *s)
{
    pt_semhold *h;

    while ((h = LIST_FIRST(&s->sems)) != NULL) {
        pt_obj *sem = h->sem;
        uint64_t n = h->count > 0 ? (uint64_t)h->count : 0;

        pt__fast_slot_end(c, h);
        pt__semhold_unlink(h);
        pt__semhold_release(c, h);
        pt__sem_give(c, sem, n);
        pt__obj_unref(c, sem);
    }
}
