/*
 * fast.c - the client's side of the shared words: which object may take
 * its word now, and each operation as one step of proto/fastword.c.
 */
#include "fast.h"
#include "fastwake.h"

void pt__fast_attach(pt_object *o, uint32_t gen, const pt__reply *rep)
{
    pt_fast_cell *cell = NULL, *hold = NULL;
    uint32_t id = 0;

    if (rep->has_fast && !(o->params.flags & PT_OPEN_NOFAST))
        cell = pt__client_cell(o->client, gen, rep->fast_group, rep->fast_cell);
    if (cell && rep->fast_slot_id != 0) {
        hold = pt__client_cell(o->client, gen, rep->fast_group, rep->fast_slot_cell);
        id = hold ? rep->fast_slot_id : 0;
        cell = hold ? cell : NULL; /* an owned word is not used without a slot */
    }
    /* Before the slot that names gen: whoever sees the new slot sees them. */
    atomic_store_explicit(&o->hold_cell, hold, memory_order_relaxed);
    atomic_store_explicit(&o->hold_id, id, memory_order_relaxed);
    atomic_store_explicit(&o->cell, cell, memory_order_relaxed);
}

/* An owned semaphore's slot and its id, NULL for another object. */
static pt_fast_cell *hold_of(pt_object *o, uint32_t *id)
{
    *id = atomic_load_explicit(&o->hold_id, memory_order_relaxed);
    return atomic_load_explicit(&o->hold_cell, memory_order_relaxed);
}

/* o's cell when the current session is the one it was opened in and it is
 * this process's own; *sid is then the session's id in words. */
static pt_fast_cell *usable(pt_object *o, uint32_t *sid, uint32_t *tid)
{
    uint64_t slot = atomic_load_explicit(&o->slot, memory_order_acquire);
    pt_fast_cell *cell = atomic_load_explicit(&o->cell, memory_order_relaxed);
    pid_t me;

    if (cell == NULL)
        return NULL;
    *sid = pt__client_fast_id(o->client, pt__slot_gen(slot));
    me = pt__tid();
    if (*sid == 0 || me <= 0 || (uint32_t)me > PT_FW_TID_MAX)
        return NULL;
    *tid = (uint32_t)me;
    return cell;
}

static int is_lock(const pt_object *o)
{
    return o->params.kind == PT_KIND_LOCK || o->params.kind == PT_KIND_RLOCK;
}

/* Arguments that are valid as they are: anything else goes to the daemon,
 * which words the error. */
static int plain_args(int blocking, double timeout)
{
    if (!blocking)
        return timeout == -1;
    return timeout == -1 || (timeout >= 0 && timeout <= PT_TIMEOUT_MAX);
}

/* A Lock acquire going to the daemon to wait may watch the word, unless
 * the word names the caller: a Lock's holder waits for itself, and nobody
 * will hand it over. */
static void watch_fill(pt_object *o, pt_fast_cell *cell, uint32_t sid, uint32_t tid,
                       pt__watch *watch)
{
    uint64_t t;

    /* a claimed word may be one the daemon will never write again (it
     * handed this connection over to its next image): the socket alone */
    if (pt_fast_lock_taken(cell, sid, tid, &t) == PT_FAST_OK || pt_fast_claimed(cell))
        return;
    watch->cell = cell;
    watch->gen = pt__slot_gen(atomic_load_explicit(&o->slot, memory_order_relaxed));
    watch->sid = sid;
    watch->tid = tid;
}

int pt__fast_acquire(pt_object *o, int blocking, double timeout, uint64_t *token, pt__watch *watch)
{
    uint32_t sid, tid;
    pt_fast_cell *cell = plain_args(blocking, timeout) ? usable(o, &sid, &tid) : NULL;
    int may_wait = blocking && timeout != 0;
    uint64_t t = 0;
    pt_fast_cell *hold;
    uint32_t id;
    int64_t value;
    int r;

    watch->cell = NULL;
    if (cell == NULL)
        return PT_FAST_SLOW;
    if (is_lock(o)) {
        r = pt_fast_lock_acquire(cell, sid, tid, o->params.kind == PT_KIND_RLOCK, may_wait, &t);
        if (r == PT_FAST_SLOW && may_wait)
            watch_fill(o, cell, sid, tid, watch);
    } else if ((hold = hold_of(o, &id)) != NULL)
        r = pt_fast_osem_acquire(cell, hold, id, may_wait, &value);
    else
        r = pt_fast_sem_acquire(cell, may_wait, &value);
    if (r != PT_FAST_SLOW && token)
        *token = t;
    return r;
}

/* The lock went to the waiter `to` in the word: wake it, then tell the
 * daemon, which answers the waiter's call and names the next waiter (no
 * answer comes back). The waker does not wait for either. */
static void handed(pt_object *o, pt_fast_cell *cell, uint64_t to)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    uint64_t slot = atomic_load_explicit(&o->slot, memory_order_relaxed);

    pt_fast_wake(cell, (uint32_t)(to >> PT_FW_TID_SHIFT) & PT_FW_TID_MAX);
    req.op = PYTHREAD__OP__OP_SYNC;
    req.has_handle = 1;
    req.handle = pt__slot_handle(slot);
    pt__client_post(o->client, pt__slot_gen(slot), &req);
}

static int lock_release(pt_object *o, pt_fast_cell *cell, uint32_t sid, uint32_t tid)
{
    uint64_t to = 0;
    int r = pt_fast_lock_release(cell, sid, tid, o->params.kind == PT_KIND_RLOCK, &to);

    if (r != PT_FAST_HANDED)
        return r;
    handed(o, cell, to);
    return PT_FAST_OK;
}

int pt__fast_release(pt_object *o, uint32_t count)
{
    uint32_t sid, tid, id;
    pt_fast_cell *cell = usable(o, &sid, &tid), *hold;
    int64_t value, bound = -1;

    if (cell == NULL)
        return PT_FAST_SLOW;
    if (is_lock(o))
        return lock_release(o, cell, sid, tid);
    if (o->params.kind == PT_KIND_BOUNDED_SEMAPHORE)
        bound = o->opened.initial;
    if ((hold = hold_of(o, &id)) != NULL)
        return pt_fast_osem_release(cell, hold, id, count, bound, &value);
    return pt_fast_sem_release(cell, count, bound, &value);
}

int pt__fast_locked(pt_object *o)
{
    uint32_t sid, tid;
    pt_fast_cell *cell = usable(o, &sid, &tid);

    return cell && !pt_fast_claimed(cell) ? pt_fast_lock_locked(cell) : PT_FAST_SLOW;
}

int pt__fast_is_owned(pt_object *o)
{
    uint32_t sid, tid;
    pt_fast_cell *cell = usable(o, &sid, &tid);

    return cell && !pt_fast_claimed(cell) ? pt_fast_lock_owned(cell, sid, tid) > 0 : PT_FAST_SLOW;
}

int pt__fast_is_set(pt_object *o)
{
    uint32_t sid, tid;
    pt_fast_cell *cell = usable(o, &sid, &tid);

    return cell && !pt_fast_claimed(cell) ? pt_fast_event_is_set(cell) : PT_FAST_SLOW;
}

int pt__fast_value(pt_object *o, int64_t *value)
{
    uint32_t sid, tid;
    pt_fast_cell *cell = usable(o, &sid, &tid);

    uint32_t id;

    return cell ? pt_fast_sem_value(cell, hold_of(o, &id) != NULL, value) : PT_FAST_SLOW;
}
