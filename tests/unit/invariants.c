/*
 * invariants.c - checks the core's whole structure after every step of a
 * test: queues, holds, reference counts, the deadline heap and the
 * per-session counts. Test code: it reads the core's private structures.
 */
#include <stdlib.h>

#include "core_int.h"
#include "harness.h"

static uint32_t count_queue(const pt_queue *q, const pt_obj *obj)
{
    const pt_waiter *w;
    uint32_t n = 0;

    TAILQ_FOREACH(w, &q->head, qlink)
    {
        assert_ptr_equal(w->queue, q);
        assert_ptr_equal(w->obj, obj);
        n++;
    }
    assert_int_equal(n, q->len);
    return n;
}

static int lock_in_session(const pt_obj *lock)
{
    const pt_obj *o;

    LIST_FOREACH(o, &lock->u.lock.s->locks, u.lock.hold_link)
    {
        if (o == lock)
            return 1;
    }
    return 0;
}

static void check_lock(const pt_obj *obj)
{
    const pt_waiter *w;

    if (obj->u.lock.depth == 0) {
        assert_int_equal(obj->queue.len, 0);
        assert_null(obj->u.lock.s);
    } else {
        assert_non_null(obj->u.lock.s);
        assert_true(lock_in_session(obj));
        assert_true(obj->kind == PT_KIND_RLOCK || obj->u.lock.depth == 1);
    }
    TAILQ_FOREACH(w, &obj->queue.head, qlink)
    {
        assert_true(w->kind == PT_WK_LOCK || w->kind == PT_WK_REACQUIRE);
        assert_true(w->indexed);
        if (w->kind == PT_WK_REACQUIRE) {
            assert_int_equal(w->deadline, PT_DEADLINE_NONE);
            assert_true(w->depth >= 1);
        }
        /* a wait in a standing deadlock waits for a lock of it */
        if (w->in_cycle)
            assert_non_null(obj->u.lock.cycle);
    }
    /* a lock in a standing deadlock is held, and its head heads itself */
    if (obj->u.lock.cycle != NULL) {
        const pt_obj *head = obj->u.lock.cycle;

        assert_true(obj->u.lock.depth > 0);
        assert_ptr_equal(head->u.lock.cycle, head);
        assert_true(head->u.lock.cycle_id > 0);
        assert_true(head->u.lock.cycle_n > 0);
        assert_true(head->u.lock.cycle_first->in_cycle);
    }
}

/* Every parked Lock/RLock wait is in the index of lock waits, once, in its
 * owner's bucket; standing deadlocks are counted. */
static void check_deadlocks(const pt_core *c)
{
    const pt_obj *obj;
    uint64_t waits = 0, heads = 0, indexed = 0;

    TAILQ_FOREACH(obj, &c->objects, all_link)
    {
        if (obj->kind != PT_KIND_LOCK && obj->kind != PT_KIND_RLOCK)
            continue;
        waits += obj->queue.len;
        heads += obj->u.lock.cycle == obj;
    }
    for (size_t i = 0; i <= c->waits.mask; i++) {
        for (const pt_waiter *w = c->waits.b[i]; w != NULL; w = w->idx_next) {
            assert_true(w->indexed);
            assert_true(w->kind == PT_WK_LOCK || w->kind == PT_WK_REACQUIRE);
            indexed++;
        }
    }
    assert_int_equal(indexed, c->waits.count);
    assert_int_equal(waits, c->waits.count);
    assert_int_equal(heads, c->nstanding);
    assert_true(c->nstanding <= c->ndeadlocks);
}

static void check_sem(const pt_obj *obj)
{
    const pt_semhold *h;
    const pt_waiter *w;
    uint64_t held = 0;

    assert_true(obj->u.sem.value >= 0);
    if (obj->queue.len > 0)
        assert_int_equal(obj->u.sem.value, 0);
    TAILQ_FOREACH(h, &obj->u.sem.holders, olink)
    {
        assert_ptr_equal(h->sem, obj);
        /* a record with a slot may hold nothing; none holds less */
        assert_true(h->count > 0 || (h->count == 0 && h->slot != 0));
        assert_true((h->slot != 0) == (h->opens > 0));
        held += (uint64_t)h->count;
    }
    if (!obj->u.sem.owned)
        assert_null(TAILQ_FIRST(&obj->u.sem.holders));
    if (obj->kind == PT_KIND_BOUNDED_SEMAPHORE) {
        assert_true(obj->u.sem.value <= obj->u.sem.initial);
        assert_true((uint64_t)obj->u.sem.value + held <= (uint64_t)obj->u.sem.initial);
    }
    TAILQ_FOREACH(w, &obj->queue.head, qlink)
    {
        assert_int_equal(w->kind, PT_WK_SEM);
        assert_true((w->spare != NULL) == (obj->u.sem.owned != 0));
    }
}

static void check_barrier(const pt_obj *obj)
{
    const pt_waiter *w;
    uint32_t i = 0;

    count_queue(&obj->u.barrier.entrants, obj);
    TAILQ_FOREACH(w, &obj->u.barrier.entrants.head, qlink)
    {
        assert_int_equal(w->kind, PT_WK_ENTRANT);
        assert_int_equal(w->deadline, PT_DEADLINE_NONE);
    }
    TAILQ_FOREACH(w, &obj->queue.head, qlink)
    {
        assert_int_equal(w->kind, PT_WK_BARRIER);
        assert_int_equal(w->index, i++);
    }
    switch (obj->u.barrier.state) {
    case PT_BARRIER_FILLING:
        assert_int_equal(obj->queue.len, obj->u.barrier.count);
        assert_true(obj->u.barrier.count < obj->u.barrier.parties);
        assert_int_equal(obj->u.barrier.entrants.len, 0);
        assert_null(obj->u.barrier.runner);
        break;
    case PT_BARRIER_ACTION:
        assert_non_null(obj->u.barrier.runner);
        assert_int_equal(obj->u.barrier.count, obj->u.barrier.parties);
        assert_true(obj->queue.len < obj->u.barrier.parties);
        TAILQ_FOREACH(w, &obj->queue.head, qlink)
        assert_int_equal(w->deadline, PT_DEADLINE_NONE);
        break;
    default:
        assert_int_equal(obj->queue.len, 0);
        assert_int_equal(obj->u.barrier.entrants.len, 0);
        assert_int_equal(obj->u.barrier.count, 0);
        assert_null(obj->u.barrier.runner);
        break;
    }
}

static void check_object(const pt_obj *obj)
{
    const pt_waiter *w;

    count_queue(&obj->queue, obj);
    if (obj->refs == 0)
        assert_true(obj->in_map && !obj->transient && !obj->unlinked && !obj->anonymous);
    assert_true(obj->in_map != obj->unlinked || obj->anonymous);
    switch (obj->kind) {
    case PT_KIND_LOCK:
    case PT_KIND_RLOCK:
        check_lock(obj);
        break;
    case PT_KIND_CONDITION:
        TAILQ_FOREACH(w, &obj->queue.head, qlink)
        assert_int_equal(w->kind, PT_WK_COND);
        break;
    case PT_KIND_SEMAPHORE:
    case PT_KIND_BOUNDED_SEMAPHORE:
        check_sem(obj);
        break;
    case PT_KIND_EVENT:
        if (obj->u.event.set)
            assert_int_equal(obj->queue.len, 0);
        break;
    case PT_KIND_BARRIER:
        check_barrier(obj);
        break;
    default:
        fail_msg("object of unknown kind %d", obj->kind);
    }
}

/* Expected references: handles, lock holds, semaphore holds, conditions,
 * and a claim of its shared word not yet published. */
static uint32_t expected_refs(const pt_core *c, const pt_obj *obj)
{
    const pt_session *s;
    const pt_obj *o;
    const pt_semhold *h;
    uint32_t n = obj->fast_claimed;

    LIST_FOREACH(s, &c->sessions, link)
    {
        for (uint32_t i = 1; i < s->next_new; i++)
            n += pt__handle_get(s, i)->obj == obj;
    }
    if ((obj->kind == PT_KIND_LOCK || obj->kind == PT_KIND_RLOCK) && obj->u.lock.depth > 0)
        n++;
    if (obj->kind == PT_KIND_SEMAPHORE || obj->kind == PT_KIND_BOUNDED_SEMAPHORE) {
        TAILQ_FOREACH(h, &obj->u.sem.holders, olink)
        n++;
    }
    TAILQ_FOREACH(o, &c->objects, all_link)
    {
        if (o->kind == PT_KIND_CONDITION && o->u.cond.lock == obj)
            n++;
    }
    return n;
}

static void check_heap(const pt_core *c)
{
    for (size_t i = 0; i < c->heap.len; i++) {
        const pt_waiter *w = c->heap.v[i];

        assert_int_equal(w->heap_idx, i);
        assert_true(w->deadline != PT_DEADLINE_NONE);
        if (i > 0) {
            const pt_waiter *p = c->heap.v[(i - 1) / 2];

            assert_true(p->deadline < w->deadline ||
                        (p->deadline == w->deadline && p->seq < w->seq));
        }
    }
    assert_true(c->heap.cap >= c->nwaiters);
}

static uint64_t check_session(const pt_core *c, const pt_session *s)
{
    const pt_semhold *h;
    uint32_t waiters = 0, handles = 0;

    for (uint32_t i = 1; i < s->next_new; i++) {
        const pt_handle *slot = pt__handle_get(s, i);
        const pt_waiter *w;

        if (slot->obj == NULL) {
            assert_null(LIST_FIRST(&slot->waiters));
            continue;
        }
        handles++;
        LIST_FOREACH(w, &slot->waiters, hlink)
        {
            assert_ptr_equal(w->session, s);
            assert_int_equal(w->handle, i);
            assert_non_null(w->queue);
            assert_true((w->deadline == PT_DEADLINE_NONE) == (w->heap_idx == PT_HEAP_NONE));
            if (w->heap_idx != PT_HEAP_NONE)
                assert_ptr_equal(c->heap.v[w->heap_idx], w);
            waiters++;
        }
    }
    assert_int_equal(handles, s->nhandles);
    assert_int_equal(waiters, s->nwaiters);
    LIST_FOREACH(h, &s->sems, slink)
    assert_ptr_equal(h->session, s);
    return waiters;
}

void th_check(void)
{
    const pt_core *c = th_core();
    const pt_session *s;
    const pt_obj *obj;
    uint64_t waiters = 0, named = 0, in_map = 0, sessions = 0;

    /* linear in the core's size: with thousands of objects, sample */
    if (c->nobjects > 256 && c->calls % 256 != 0)
        return;

    LIST_FOREACH(s, &c->sessions, link)
    {
        waiters += check_session(c, s);
        sessions++;
    }
    assert_int_equal(waiters, c->nwaiters);
    assert_int_equal(sessions, c->nsessions);
    TAILQ_FOREACH(obj, &c->objects, all_link)
    {
        check_object(obj);
        /* quadratic: skipped for the few tests with thousands of objects */
        if (c->nobjects <= 256)
            assert_int_equal(obj->refs, expected_refs(c, obj));
        named += !obj->anonymous;
        in_map += obj->in_map;
    }
    assert_int_equal(named, c->nobjects);
    assert_int_equal(in_map, c->map.count);
    check_heap(c);
    check_deadlocks(c);
}
