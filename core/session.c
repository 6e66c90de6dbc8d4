/*
 * session.c - sessions: the handle table, the holds that give a session's
 * locks and owned permits back, and what a session's end undoes.
 *
 * Handles live in fixed chunks of slots so a slot never moves: the list of
 * waiters parked through a handle is headed in its slot, and growing the
 * table only reallocates the array of chunk pointers.
 */
#include <stdlib.h>

#include "core_int.h"

pt_session *pt_core_session_new(pt_core *core, const pt_peer *peer, void *udata)
{
    pt_session *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    if (peer != NULL)
        s->peer = *peer;
    /* Counting the session keeps the entry alive as long as s. */
    s->user = pt__uid_get(core, s->peer.uid, 1);
    if (s->user == NULL) {
        free(s);
        return NULL;
    }
    s->user->sessions++;
    s->id = ++core->next_session_id;
    s->udata = udata;
    s->next_new = 1;
    LIST_INIT(&s->locks);
    LIST_INIT(&s->sems);
    LIST_INIT(&s->runs);
    LIST_INSERT_HEAD(&core->sessions, s, link);
    core->nsessions++;
    return s;
}

void *pt_core_session_udata(const pt_session *s)
{
    return s->udata;
}

void pt_core_session_set_udata(pt_session *s, void *udata)
{
    s->udata = udata;
}

int pt_core_session_waits(const pt_session *s, uint64_t id)
{
    for (uint32_t h = 1; h < s->next_new; h++) {
        const pt_handle *slot = pt__handle_get(s, h);
        const pt_waiter *w;

        LIST_FOREACH(w, &slot->waiters, hlink)
        {
            if (w->id == id)
                return 1;
        }
    }
    return 0;
}

uint64_t pt_core_session_id(const pt_session *s)
{
    return s->id;
}

const pt_peer *pt_core_session_peer(const pt_session *s)
{
    return &s->peer;
}

/* Slot of handle h, or NULL if h was never handed out. */
pt_handle *pt__handle_get(const pt_session *s, uint32_t h)
{
    uint32_t i;

    if (h == 0 || h >= s->next_new)
        return NULL;
    i = h - 1;
    return &s->chunks[i / PT_HANDLE_CHUNK][i % PT_HANDLE_CHUNK];
}

/* A slot, plus its share of its chunk's malloc overhead and pointer. */
_Static_assert(sizeof(pt_handle) +
                       (PT_MALLOC_CHUNK(PT_HANDLE_CHUNK * sizeof(pt_handle)) -
                        PT_HANDLE_CHUNK * sizeof(pt_handle) + sizeof(pt_handle *)) /
                           PT_HANDLE_CHUNK +
                       1 <=
                   PT_MEM_HANDLE,
               "a handle outgrew PT_MEM_HANDLE: update it and the per-uid arithmetic in core.h");

/* Makes sure pt__handle_new will succeed. Returns 0, PT_ELIMIT (the
 * session's limit or its user's quota) or PT_ENOMEM. */
int pt__handle_reserve(pt_core *c, pt_session *s)
{
    uint32_t chunk;
    pt_handle **chunks;

    if (s->nhandles >= c->limits.max_handles_per_session || pt__uid_handles_full(c, s))
        return PT_ELIMIT;
    if (s->free_head != 0)
        return 0;
    if (s->next_new == UINT32_MAX)
        return PT_ELIMIT;
    chunk = (s->next_new - 1) / PT_HANDLE_CHUNK;
    if (chunk < s->nchunks)
        return 0;
    chunks = realloc(s->chunks, (size_t)(chunk + 1) * sizeof(*chunks));
    if (chunks == NULL)
        return PT_ENOMEM;
    s->chunks = chunks;
    chunks[chunk] = calloc(PT_HANDLE_CHUNK, sizeof(**chunks));
    if (chunks[chunk] == NULL)
        return PT_ENOMEM;
    s->nchunks = chunk + 1;
    return 0;
}

/* A new handle on obj (referenced); pt__handle_reserve succeeded before. */
uint32_t pt__handle_new(pt_core *c, pt_session *s, pt_obj *obj)
{
    uint32_t h;
    pt_handle *slot;

    if (s->free_head != 0) {
        h = s->free_head;
        slot = pt__handle_get(s, h);
        s->free_head = slot->next_free;
    } else {
        h = s->next_new++;
        slot = pt__handle_get(s, h);
    }
    slot->obj = obj;
    slot->next_free = 0;
    LIST_INIT(&slot->waiters);
    pt__obj_ref(obj);
    s->nhandles++;
    s->user->handles++;
    c->nhandles++;
    return h;
}

static void handle_drop(pt_core *c, pt_session *s, uint32_t h)
{
    pt_handle *slot = pt__handle_get(s, h);
    pt_obj *obj = slot->obj;

    slot->obj = NULL;
    slot->next_free = s->free_head;
    s->free_head = h;
    s->nhandles--;
    s->user->handles--;
    c->nhandles--;
    pt__fast_slot_close(c, obj, s);
    pt__obj_unref(c, obj);
}

void pt__handles_fit(pt_session *s)
{
    pt_handle **chunks;

    if (s->nhandles != 0 || s->nchunks <= 1)
        return;
    /* No handle is open, so no number is in use: numbering starts over in
     * the first chunk, whose slots are set up again as they are handed out. */
    for (uint32_t i = 1; i < s->nchunks; i++)
        free(s->chunks[i]);
    s->nchunks = 1;
    s->free_head = 0;
    s->next_new = 1;
    chunks = realloc(s->chunks, sizeof(*chunks));
    if (chunks != NULL)
        s->chunks = chunks;
}

/* Closing a handle answers the calls parked through it and abandons a
 * barrier action run through it; it never releases a lock. */
void pt__handle_close(pt_core *c, pt_session *s, uint32_t h, uint64_t now)
{
    pt_handle *slot = pt__handle_get(s, h);
    pt_obj *obj = slot->obj;
    pt_waiter *w;

    while ((w = LIST_FIRST(&slot->waiters)) != NULL)
        pt__waiter_cancel(c, w, 1, now);
    if (obj->kind == PT_KIND_BARRIER && obj->u.barrier.runner == s &&
        obj->u.barrier.runner_handle == h)
        pt__barrier_abandon(c, obj, PT_BR_RUNNER_CLOSED, now);
    handle_drop(c, s, h);
}

/* Lock/RLock holder record: the lock is linked into its owner session's
 * list and referenced while held. The caller drops the reference after any
 * hand-off, so the object outlives the hand-off. */
void pt__lock_hold_take(pt_obj *lock, pt_session *s, uint64_t thread, uint32_t depth)
{
    lock->u.lock.s = s;
    lock->u.lock.thread = thread;
    lock->u.lock.depth = depth;
    LIST_INSERT_HEAD(&s->locks, lock, u.lock.hold_link);
    pt__obj_ref(lock);
}

void pt__lock_hold_drop(pt_core *c, pt_obj *lock)
{
    pt__deadlock_unhold(c, lock); /* while its holder is known */
    LIST_REMOVE(lock, u.lock.hold_link);
    lock->u.lock.s = NULL;
    lock->u.lock.thread = 0;
    lock->u.lock.depth = 0;
}

/* A session's hold on a semaphore: the list has a record per session
 * holding permits or (with the fast path) having it open, and is scanned:
 * a semaphore open in thousands of sessions pays for that on each request. */
pt_semhold *pt__semhold_find(pt_obj *sem, const pt_session *s)
{
    pt_semhold *h;

    TAILQ_FOREACH(h, &sem->u.sem.holders, olink)
    {
        if (h->session == s)
            return h;
    }
    return NULL;
}

pt_semhold *pt__semhold_alloc(pt_core *c)
{
    pt_semhold *h = c->free_holds;

    if (h != NULL) {
        c->free_holds = h->free_next;
        c->nfree_holds--;
    } else if ((h = malloc(sizeof(*h))) == NULL) {
        return NULL;
    }
    *h = (pt_semhold){0};
    c->nholds++;
    return h;
}

/* Kept for reuse while spares are fewer than the records in use (and
 * PT_SPARE_KEEP); past that a spare goes too, so the spares of a peak go as
 * it ends, a few at a time. */
void pt__semhold_release(pt_core *c, pt_semhold *h)
{
    c->nholds--;
    if (c->nfree_holds >= PT_SPARE_KEEP && c->nfree_holds >= c->nholds) {
        free(h);
        if ((h = c->free_holds) != NULL && c->nfree_holds > PT_SPARE_KEEP &&
            c->nfree_holds > c->nholds) {
            c->free_holds = h->free_next;
            c->nfree_holds--;
            free(h);
        }
        return;
    }
    h->free_next = c->free_holds;
    c->free_holds = h;
    c->nfree_holds++;
}

void pt__semholds_trim(pt_core *c)
{
    pt_semhold *h;

    while ((h = c->free_holds) != NULL) {
        c->free_holds = h->free_next;
        free(h);
    }
    c->nfree_holds = 0;
}

void pt__semhold_link(pt_semhold *h, pt_obj *sem, pt_session *s)
{
    h->sem = sem;
    h->session = s;
    h->count = 0;
    LIST_INSERT_HEAD(&s->sems, h, slink);
    TAILQ_INSERT_TAIL(&sem->u.sem.holders, h, olink);
    pt__obj_ref(sem);
}

/* Unlinks; the caller drops the semaphore reference when done with it. */
void pt__semhold_unlink(pt_semhold *h)
{
    LIST_REMOVE(h, slink);
    TAILQ_REMOVE(&h->sem->u.sem.holders, h, olink);
}

/* Every waiter of the session leaves silently first, so nothing given back
 * below can be handed to the ending session itself: not even by the claims
 * of its objects' words, which may give what a word says was released. */
void pt_core_session_end(pt_core *core, pt_session *s, uint64_t now)
{
    pt_obj *obj;

    core->now = now;
    s->ending = 1;
    pt__restart_session_end(core, s); /* while its holds and parties are there */
    for (uint32_t h = 1; h < s->next_new; h++) {
        pt_handle *slot = pt__handle_get(s, h);
        pt_waiter *w;

        while ((w = LIST_FIRST(&slot->waiters)) != NULL)
            pt__waiter_cancel(core, w, 0, now);
    }
    pt__fast_claim_session(core, s);
    while ((obj = LIST_FIRST(&s->runs)) != NULL)
        pt__barrier_abandon(core, obj, PT_BR_RUNNER_SESSION_END, now);
    while ((obj = LIST_FIRST(&s->locks)) != NULL)
        pt__lock_release_all(core, obj);
    pt__sem_return_holds(core, s);
    for (uint32_t h = 1; h < s->next_new; h++) {
        if (pt__handle_get(s, h)->obj != NULL)
            handle_drop(core, s, h);
    }
    for (uint32_t i = 0; i < s->nchunks; i++)
        free(s->chunks[i]);
    free(s->chunks);
    LIST_REMOVE(s, link);
    core->nsessions--;
    pt__uid_add(core, s->peer.uid, 0, -1);
    free(s);
}
