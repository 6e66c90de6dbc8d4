/*
 * image_sessions.c - what a core in use holds beyond its objects, as data
 * (core.h, "Images with sessions"), and back: sessions with their handles
 * and holds, each object's holders and parked calls.
 *
 * Loading keeps the core whole after every step, so a load that stops half
 * way leaves a core pt_core_free can take apart: a session is listed
 * before its handles are filled, a semaphore hold is linked to its
 * semaphore at once (links_load only puts its holders in their order), and
 * every reference a hold, handle or call takes is counted as it is made.
 */
#include <stdlib.h>

#include "core_int.h"

/* ------------------------------------------------------------------ */
/* Out                                                                 */
/* ------------------------------------------------------------------ */

static void *array(size_t n, size_t size)
{
    return calloc(n ? n : 1, size);
}

static size_t locks_len(const pt_session *s)
{
    const pt_obj *obj;
    size_t n = 0;

    LIST_FOREACH(obj, &s->locks, u.lock.hold_link)
    n++;
    return n;
}

static size_t sems_len(const pt_session *s)
{
    const pt_semhold *h;
    size_t n = 0;

    LIST_FOREACH(h, &s->sems, slink)
    n++;
    return n;
}

static size_t runs_len(const pt_session *s)
{
    const pt_obj *obj;
    size_t n = 0;

    LIST_FOREACH(obj, &s->runs, u.barrier.run_link)
    n++;
    return n;
}

static void handles_out(const pt_session *s, uint64_t *handles, uint32_t *freel, uint32_t *nfree)
{
    uint32_t h;

    for (h = 1; h < s->next_new; h++) {
        const pt_obj *obj = pt__handle_get(s, h)->obj;

        handles[h - 1] = obj ? obj->serial : 0;
    }
    *nfree = 0;
    for (h = s->free_head; h != 0; h = pt__handle_get(s, h)->next_free)
        freel[(*nfree)++] = h;
}

static void holds_out(const pt_session *s, pt_core_image_hold *locks, pt_core_image_semhold *sems,
                      pt_core_image_run *runs)
{
    const pt_obj *obj;
    const pt_semhold *h;
    size_t i = 0;

    LIST_FOREACH(obj, &s->locks, u.lock.hold_link)
    locks[i++] =
        (pt_core_image_hold){obj->serial, obj->u.lock.thread, obj->u.lock.since, obj->u.lock.depth};
    i = 0;
    LIST_FOREACH(h, &s->sems, slink)
    sems[i++] =
        (pt_core_image_semhold){h->sem->serial, h->count, h->seen, h->slot, h->opens, h->unsure};
    i = 0;
    LIST_FOREACH(obj, &s->runs, u.barrier.run_link)
    runs[i++] =
        (pt_core_image_run){obj->serial, obj->u.barrier.runner_handle, obj->u.barrier.runner_index};
}

static int session_out(const pt_session *s, pt_core_image_session_fn fn, void *ctx)
{
    pt_core_image_session im = {
        .session = s,
        .id = s->id,
        .peer = s->peer,
        .nhandles = s->next_new - 1,
        .nlocks = locks_len(s),
        .nsems = sems_len(s),
        .nruns = runs_len(s),
    };
    uint64_t *handles = array(im.nhandles, sizeof(*handles));
    uint32_t *freel = array(im.nhandles, sizeof(*freel));
    pt_core_image_hold *locks = array(im.nlocks, sizeof(*locks));
    pt_core_image_semhold *sems = array(im.nsems, sizeof(*sems));
    pt_core_image_run *runs = array(im.nruns, sizeof(*runs));
    int rc = -1;

    if (handles && freel && locks && sems && runs) {
        handles_out(s, handles, freel, &im.nfree);
        holds_out(s, locks, sems, runs);
        im.handles = handles;
        im.free = freel;
        im.locks = locks;
        im.sems = sems;
        im.runs = runs;
        rc = fn(ctx, &im);
    }
    free(handles);
    free(freel);
    free(locks);
    free(sems);
    free(runs);
    return rc;
}

/* Oldest first: loading puts each at the head of the list, as creating
 * one does, so the list comes back in its order. */
int pt_core_image_sessions_each(const pt_core *c, pt_core_image_session_fn fn, void *ctx)
{
    pt_session **v = array(c->nsessions, sizeof(*v));
    pt_session *s;
    size_t n = 0;
    int rc = 0;

    if (v == NULL)
        return -1;
    LIST_FOREACH(s, &c->sessions, link)
    v[n++] = s;
    while (n > 0 && rc == 0)
        rc = session_out(v[--n], fn, ctx);
    free(v);
    return rc;
}

static void waiter_out(const pt_waiter *w, pt_core_image_waiter *o)
{
    *o = (pt_core_image_waiter){
        .session = w->session->id,
        .id = w->id,
        .thread = w->thread,
        .deadline = w->deadline,
        .seq = w->seq,
        .since = w->since,
        .target = w->target->serial,
        .handle = w->handle,
        .depth = w->depth,
        .index = w->index,
        .kind = w->kind,
        .notified = w->notified,
        .has_action = w->has_action,
        .watch = w->watch,
        .spare = w->spare != NULL,
        .fail_deadlock = w->fail_deadlock,
        .timeout = w->timeout,
    };
}

static pt_core_image_waiter *queue_out(const pt_queue *q)
{
    pt_core_image_waiter *v = array(q->len, sizeof(*v));
    const pt_waiter *w;
    size_t i = 0;

    if (v == NULL)
        return NULL;
    TAILQ_FOREACH(w, &q->head, qlink)
    waiter_out(w, &v[i++]);
    return v;
}

static int is_sem(const pt_obj *obj)
{
    return obj->kind == PT_KIND_SEMAPHORE || obj->kind == PT_KIND_BOUNDED_SEMAPHORE;
}

static uint64_t *holders_out(const pt_obj *sem, size_t *n)
{
    const pt_semhold *h;
    uint64_t *v;

    *n = 0;
    if (!is_sem(sem))
        return array(0, sizeof(*v));
    TAILQ_FOREACH(h, &sem->u.sem.holders, olink)
    (*n)++;
    v = array(*n, sizeof(*v));
    *n = 0;
    TAILQ_FOREACH(h, &sem->u.sem.holders, olink)
    {
        if (v != NULL)
            v[(*n)++] = h->session->id;
    }
    return v;
}

static int links_out(const pt_obj *obj, pt_core_image_links_fn fn, void *ctx)
{
    int barrier = obj->kind == PT_KIND_BARRIER;
    static const pt_queue none = {.len = 0};
    const pt_queue *entrants = barrier ? &obj->u.barrier.entrants : &none;
    pt_core_image_links l = {
        .serial = obj->serial,
        .nqueue = obj->queue.len,
        .nentrants = entrants->len,
        .count = barrier ? obj->u.barrier.count : 0,
        .pending = barrier ? obj->u.barrier.pending : 0,
        .doom = barrier ? obj->u.barrier.doom : 0,
    };
    uint64_t *holders = holders_out(obj, &l.nholders);
    pt_core_image_waiter *queue = queue_out(&obj->queue);
    pt_core_image_waiter *ent = entrants->len ? queue_out(entrants) : array(0, sizeof(*ent));
    int rc = -1;

    if (holders && queue && ent) {
        l.holders = holders;
        l.queue = queue;
        l.entrants = ent;
        rc = (l.nholders || l.nqueue || l.nentrants || l.count || l.pending || l.doom) ? fn(ctx, &l)
                                                                                       : 0;
    }
    free(holders);
    free(queue);
    free(ent);
    return rc;
}

int pt_core_image_links_each(const pt_core *c, pt_core_image_links_fn fn, void *ctx)
{
    const pt_obj *obj;

    TAILQ_FOREACH(obj, &c->objects, all_link)
    {
        if (links_out(obj, fn, ctx) < 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* In                                                                  */
/* ------------------------------------------------------------------ */

static int by_serial_cmp(const void *a, const void *b)
{
    uint64_t x = (*(pt_obj *const *)a)->serial, y = (*(pt_obj *const *)b)->serial;

    return (x > y) - (x < y);
}

/* The objects by serial while a load lasts; pt_core_image_finish frees it. */
static int index_build(pt_core *c)
{
    pt_obj *obj;
    size_t n = 0;

    if (c->loading != NULL)
        return 0;
    TAILQ_FOREACH(obj, &c->objects, all_link)
    n++;
    c->loading = array(n, sizeof(*c->loading));
    if (c->loading == NULL)
        return -1;
    TAILQ_FOREACH(obj, &c->objects, all_link)
    c->loading[c->nloading++] = obj;
    qsort(c->loading, c->nloading, sizeof(*c->loading), by_serial_cmp);
    return 0;
}

static pt_obj *find(const pt_core *c, uint64_t serial)
{
    size_t lo = 0, hi = c->nloading;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (c->loading[mid]->serial == serial)
            return c->loading[mid];
        if (c->loading[mid]->serial < serial)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Sessions come in ascending ids: each loaded one is appended. */
static int session_index_add(pt_core *c, pt_session *s)
{
    if (c->nlsessions == c->lsessions_cap) {
        size_t cap = c->lsessions_cap ? 2 * c->lsessions_cap : 64;
        pt_session **grown = realloc(c->lsessions, cap * sizeof(*grown));

        if (grown == NULL)
            return -1;
        c->lsessions = grown;
        c->lsessions_cap = cap;
    }
    c->lsessions[c->nlsessions++] = s;
    return 0;
}

static pt_session *session_find(const pt_core *c, uint64_t id)
{
    size_t lo = 0, hi = c->nlsessions;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (c->lsessions[mid]->id == id)
            return c->lsessions[mid];
        if (c->lsessions[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int is_lock(const pt_obj *obj)
{
    return obj != NULL && (obj->kind == PT_KIND_LOCK || obj->kind == PT_KIND_RLOCK);
}

/* Closed slots are marked unchained, then the free list must chain each
 * exactly once. */
static int free_chain(pt_session *s, const pt_core_image_session *im)
{
    uint32_t closed = 0, *link = &s->free_head;

    for (uint32_t h = 1; h < s->next_new; h++) {
        pt_handle *slot = pt__handle_get(s, h);

        if (slot->obj == NULL) {
            slot->next_free = UINT32_MAX;
            closed++;
        }
    }
    if (closed != im->nfree)
        return -1;
    for (uint32_t i = 0; i < im->nfree; i++) {
        pt_handle *slot = pt__handle_get(s, im->free[i]);

        if (slot == NULL || slot->obj != NULL || slot->next_free != UINT32_MAX)
            return -1;
        *link = im->free[i];
        link = &slot->next_free;
    }
    *link = 0;
    return 0;
}

static int handles_in(pt_core *c, pt_session *s, const pt_core_image_session *im)
{
    uint32_t nchunks = (im->nhandles + PT_HANDLE_CHUNK - 1) / PT_HANDLE_CHUNK;

    if (im->nhandles >= UINT32_MAX - 1)
        return -1;
    s->chunks = array(nchunks, sizeof(*s->chunks));
    if (s->chunks == NULL)
        return -1;
    for (; s->nchunks < nchunks; s->nchunks++) {
        s->chunks[s->nchunks] = calloc(PT_HANDLE_CHUNK, sizeof(pt_handle));
        if (s->chunks[s->nchunks] == NULL)
            return -1;
    }
    s->next_new = im->nhandles + 1;
    for (uint32_t h = 1; h < s->next_new; h++) {
        pt_handle *slot = pt__handle_get(s, h);
        pt_obj *obj = im->handles[h - 1] ? find(c, im->handles[h - 1]) : NULL;

        LIST_INIT(&slot->waiters);
        if (im->handles[h - 1] != 0 && obj == NULL)
            return -1;
        if (obj == NULL)
            continue;
        slot->obj = obj;
        pt__obj_ref(obj);
        s->nhandles++;
        s->user->handles++;
        c->nhandles++;
    }
    return free_chain(s, im);
}

/* Each list is filled from its end, at its head, so it keeps its order. */
static int locks_in(pt_core *c, pt_session *s, const pt_core_image_session *im)
{
    for (size_t i = im->nlocks; i-- > 0;) {
        const pt_core_image_hold *h = &im->locks[i];
        pt_obj *lock = find(c, h->serial);

        if (!is_lock(lock) || lock->u.lock.depth != 0 || h->depth == 0 ||
            (lock->kind == PT_KIND_LOCK && h->depth != 1))
            return -1;
        pt__lock_hold_take(lock, s, h->thread, h->depth);
        lock->u.lock.since = h->since;
    }
    return 0;
}

static int sems_in(pt_core *c, pt_session *s, const pt_core_image_session *im)
{
    for (size_t i = im->nsems; i-- > 0;) {
        const pt_core_image_semhold *in = &im->sems[i];
        pt_obj *sem = find(c, in->serial);
        pt_semhold *h;

        if (sem == NULL || !is_sem(sem) || !sem->u.sem.owned || pt__semhold_find(sem, s) != NULL)
            return -1;
        h = pt__semhold_alloc(c);
        if (h == NULL)
            return -1;
        pt__semhold_link(h, sem, s);
        h->count = in->count;
        h->seen = in->seen;
        h->slot = in->slot;
        h->opens = in->opens & 0x7fffffffu;
        h->unsure = in->unsure != 0;
    }
    return 0;
}

static int runs_in(pt_core *c, pt_session *s, const pt_core_image_session *im)
{
    for (size_t i = im->nruns; i-- > 0;) {
        const pt_core_image_run *r = &im->runs[i];
        pt_obj *b = find(c, r->serial);

        if (b == NULL || b->kind != PT_KIND_BARRIER || b->u.barrier.state != PT_BARRIER_ACTION ||
            b->u.barrier.runner != NULL || pt__handle_get(s, r->handle) == NULL ||
            pt__handle_get(s, r->handle)->obj != b)
            return -1;
        b->u.barrier.runner = s;
        b->u.barrier.runner_handle = r->handle;
        b->u.barrier.runner_index = r->index;
        LIST_INSERT_HEAD(&s->runs, b, u.barrier.run_link);
    }
    return 0;
}

/* Sessions come oldest first, each listed at the head as it is made. */
pt_session *pt_core_image_session_load(pt_core *c, const pt_core_image_session *im)
{
    pt_session *last = LIST_FIRST(&c->sessions);
    pt_session *s;

    if (index_build(c) < 0 || im->id == 0 || im->id > c->next_session_id ||
        (last != NULL && last->id >= im->id))
        return NULL;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->peer = im->peer;
    s->user = pt__uid_get(c, s->peer.uid, 1);
    if (s->user == NULL) {
        free(s);
        return NULL;
    }
    s->user->sessions++;
    s->id = im->id;
    s->next_new = 1;
    LIST_INIT(&s->locks);
    LIST_INIT(&s->sems);
    LIST_INIT(&s->runs);
    LIST_INSERT_HEAD(&c->sessions, s, link);
    c->nsessions++;
    if (session_index_add(c, s) < 0 || handles_in(c, s, im) < 0 || locks_in(c, s, im) < 0 ||
        sems_in(c, s, im) < 0 || runs_in(c, s, im) < 0)
        return NULL;
    return s;
}

static int waiter_valid(const pt_core *c, const pt_core_image_waiter *in, const pt_session *s,
                        const pt_obj *target)
{
    const pt_handle *slot = s ? pt__handle_get(s, in->handle) : NULL;

    return slot != NULL && target != NULL && slot->obj == target && in->kind >= PT_WK_LOCK &&
           in->kind <= PT_WK_ENTRANT && in->seq <= c->seq;
}

static int waiter_in(pt_core *c, pt_obj *obj, pt_queue *q, const pt_core_image_waiter *in)
{
    pt_session *s = session_find(c, in->session);
    pt_obj *target = find(c, in->target);
    pt_waiter *w;

    if (!waiter_valid(c, in, s, target) || pt__heap_reserve(&c->heap, c->nwaiters + 1) != 0 ||
        (w = calloc(1, sizeof(*w))) == NULL)
        return -1;
    *w = (pt_waiter){
        .id = in->id,
        .thread = in->thread,
        .seq = in->seq,
        .session = s,
        .target = target,
        .heap_idx = PT_HEAP_NONE,
        .handle = in->handle,
        .depth = in->depth,
        .index = in->index,
        .kind = (uint8_t)in->kind,
        .notified = in->notified != 0,
        .has_action = in->has_action != 0,
        .watch = in->watch != 0,
        .fail_deadlock = in->fail_deadlock != 0,
        .timeout = in->timeout,
        .since = in->since,
    };
    s->nwaiters++;
    s->user->waiters++;
    c->nwaiters++;
    pt__waiter_park(c, w, obj, q, pt__handle_get(s, in->handle), in->deadline);
    if (in->spare && (w->spare = pt__semhold_alloc(c)) == NULL)
        return -1;
    return 0;
}

/* Each holder named goes to the end of the list, in the order named. */
static int holders_in(pt_core *c, pt_obj *sem, const pt_core_image_links *l)
{
    if (l->nholders != 0 && !is_sem(sem))
        return -1;
    for (size_t i = 0; i < l->nholders; i++) {
        pt_session *s = session_find(c, l->holders[i]);
        pt_semhold *h = s ? pt__semhold_find(sem, s) : NULL;

        if (h == NULL)
            return -1;
        TAILQ_REMOVE(&sem->u.sem.holders, h, olink);
        TAILQ_INSERT_TAIL(&sem->u.sem.holders, h, olink);
    }
    return 0;
}

int pt_core_image_links_load(pt_core *c, const pt_core_image_links *l)
{
    pt_obj *obj = index_build(c) < 0 ? NULL : find(c, l->serial);
    int barrier = obj != NULL && obj->kind == PT_KIND_BARRIER;

    if (obj == NULL || obj->queue.len != 0 || (!barrier && (l->nentrants || l->count)) ||
        holders_in(c, obj, l) < 0)
        return -1;
    for (size_t i = 0; i < l->nqueue; i++) {
        if (waiter_in(c, obj, &obj->queue, &l->queue[i]) < 0)
            return -1;
    }
    if (!barrier)
        return 0;
    for (size_t i = 0; i < l->nentrants; i++) {
        if (waiter_in(c, obj, &obj->u.barrier.entrants, &l->entrants[i]) < 0)
            return -1;
    }
    obj->u.barrier.count = l->count;
    obj->u.barrier.pending = (uint8_t)l->pending;
    obj->u.barrier.doom = l->doom != 0;
    return 0;
}

/* A barrier runs its action if and only if a session runs it. */
static int whole(const pt_core *c)
{
    const pt_obj *obj;

    TAILQ_FOREACH(obj, &c->objects, all_link)
    {
        if (obj->kind == PT_KIND_BARRIER &&
            (obj->u.barrier.state == PT_BARRIER_ACTION) != (obj->u.barrier.runner != NULL))
            return 0;
    }
    return 1;
}

int pt_core_image_finish(pt_core *c)
{
    free(c->loading);
    c->loading = NULL;
    c->nloading = 0;
    free(c->lsessions);
    c->lsessions = NULL;
    c->nlsessions = c->lsessions_cap = 0;
    return whole(c) && pt__deadlock_image_finish(c) == 0 ? 0 : -1;
}
