/*
 * deadlock.c - the wait-for graph of Lock and RLock waits (core.h,
 * "Deadlocks").
 *
 * The graph is not kept apart: its edges are the core's own state. An
 * owner's edge is its parked Lock/RLock wait (an index by owner finds it
 * in O(1)), which leads to the lock's holder, whose own wait leads on. A
 * thread waits in one call at a time, so each owner has one edge at most
 * and cycles never share an owner: a cycle can only be closed by a new
 * edge (a wait parked on a held lock, or a Condition wait moving to its
 * lock's queue), and the walk from that wait either comes back to its
 * owner, ends, or runs into a standing cycle, which it cannot leave. A
 * lock changing hands makes no cycle: its new holder was its first waiter
 * and waits for nothing else.
 *
 * A standing deadlock is marked on its locks (each points to the cycle's
 * head, the lock its closing wait waits for, which keeps the rest) and on
 * its waits (in_cycle), so the one wait or hold that breaks it finds it at
 * once. Nothing here allocates but the index's buckets and the room to
 * describe a cycle, and neither failing changes an answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_int.h"

#define IDX_INITIAL 64u

/* ---- the index of lock waits by owner -------------------------------- */

int pt__waitidx_init(pt_waitidx *x)
{
    x->b = calloc(IDX_INITIAL, sizeof(*x->b));
    x->mask = IDX_INITIAL - 1;
    x->count = 0;
    return x->b ? 0 : -1;
}

void pt__waitidx_free(pt_waitidx *x)
{
    free(x->b);
    x->b = NULL;
}

static size_t owner_bucket(const pt_waitidx *x, uint64_t session, uint64_t thread)
{
    uint64_t h = session * 0x9e3779b97f4a7c15ull ^ thread;

    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 29;
    return (size_t)h & x->mask;
}

/* Into buckets of size mask + 1; the old array goes if the new one came. */
static void idx_rehash(pt_waitidx *x, size_t mask)
{
    pt_waiter **b = calloc(mask + 1, sizeof(*b));
    pt_waiter **old = x->b;
    size_t oldn = x->mask + 1;

    if (b == NULL)
        return; /* longer chains, the same answers */
    x->b = b;
    x->mask = mask;
    for (size_t i = 0; i < oldn; i++) {
        pt_waiter *w = old[i];

        while (w != NULL) {
            pt_waiter *next = w->idx_next;
            size_t k = owner_bucket(x, w->session->id, w->thread);

            w->idx_next = b[k];
            b[k] = w;
            w = next;
        }
    }
    free(old);
}

void pt__waitidx_fit(pt_waitidx *x)
{
    size_t n = x->mask + 1;

    while (n > IDX_INITIAL && x->count < n / 4)
        n /= 2;
    if (n < x->mask + 1)
        idx_rehash(x, n - 1);
}

void pt__deadlock_index(pt_core *c, pt_waiter *w)
{
    pt_waitidx *x = &c->waits;
    size_t k;

    if (w->indexed)
        return;
    if (x->count >= x->mask + 1)
        idx_rehash(x, x->mask * 2 + 1);
    k = owner_bucket(x, w->session->id, w->thread);
    w->idx_next = x->b[k];
    x->b[k] = w;
    w->indexed = 1;
    x->count++;
}

static void idx_remove(pt_waitidx *x, pt_waiter *w)
{
    pt_waiter **p = &x->b[owner_bucket(x, w->session->id, w->thread)];

    while (*p != NULL && *p != w)
        p = &(*p)->idx_next;
    if (*p == NULL)
        return;
    *p = w->idx_next;
    w->idx_next = NULL;
    w->indexed = 0;
    x->count--;
}

/* The owner's parked Lock/RLock wait, or NULL. A thread that parked two
 * (only a client speaking the wire itself can) is followed by its oldest,
 * whatever the buckets' order. */
static pt_waiter *owner_wait(const pt_core *c, const pt_session *s, uint64_t thread)
{
    pt_waiter *w, *best = NULL;

    if (s == NULL)
        return NULL;
    for (w = c->waits.b[owner_bucket(&c->waits, s->id, thread)]; w != NULL; w = w->idx_next) {
        if (w->session == s && w->thread == thread && (best == NULL || w->seq < best->seq))
            best = w;
    }
    return best;
}

/* The wait of the holder of what w waits for. */
static pt_waiter *next_wait(const pt_core *c, const pt_waiter *w)
{
    const pt_obj *lock = w->obj;

    return lock->u.lock.depth > 0 ? owner_wait(c, lock->u.lock.s, lock->u.lock.thread) : NULL;
}

static int is_owner(const pt_obj *lock, const pt_waiter *w)
{
    return lock->u.lock.depth > 0 && lock->u.lock.s == w->session &&
           lock->u.lock.thread == w->thread;
}

/* ---- describing a cycle ------------------------------------------------ */

static void member_fill(const pt_waiter *w, pt_core_cycle_member *m)
{
    const pt_obj *lock = w->obj, *target = w->target;
    /* A Condition's own RLock has no name: the Condition stands for it. */
    const pt_obj *waits = lock->anonymous ? target : lock;

    *m = (pt_core_cycle_member){
        .session = w->session,
        .thread = w->thread,
        .request = w->id,
        .waits_kind = waits->kind,
        .waits = waits->name,
        .waits_len = waits->name_len,
        .reacquire = w->kind == PT_WK_REACQUIRE,
        .uid = waits->uid,
        .gid = waits->gid,
        .mode = waits->mode,
    };
    if (target != lock && !lock->anonymous) {
        m->via = target->name;
        m->via_len = target->name_len;
    }
}

/* Room for n members; fewer when memory is short (never none: the
 * message and the hooks say what they can). */
static size_t room(pt_core *c, size_t n)
{
    pt_core_cycle_member *v;
    size_t cap = c->cycle_cap ? c->cycle_cap : 8;

    if (n <= c->cycle_cap)
        return n;
    while (cap < n)
        cap *= 2;
    v = realloc(c->cycle_buf, cap * sizeof(*v));
    if (v == NULL)
        return c->cycle_cap;
    c->cycle_buf = v;
    c->cycle_cap = cap;
    return n;
}

/* The members of the cycle w0 closed, in cy (n set). */
static void describe(pt_core *c, const pt_waiter *w0, pt_core_cycle *cy)
{
    const pt_waiter *w = w0;

    cy->shown = room(c, cy->n);
    cy->members = c->cycle_buf;
    for (size_t i = 0; i < cy->shown && w != NULL; i++) {
        member_fill(w, &c->cycle_buf[i]);
        w = next_wait(c, w);
    }
}

static void tell(pt_core *c, const pt_core_cycle *cy)
{
    void (*fn)(void *, const pt_core_cycle *) =
        cy->state == PT_CYCLE_BROKEN ? c->deadlock_hooks.ended : c->deadlock_hooks.found;

    if (fn != NULL && !c->quiet)
        fn(c->deadlock_ctx, cy);
}

/* "session 3 (pid 100) thread 5 holds Lock 'b' and waits for Lock 'a'; ...":
 * each owner holds what the one before it waits for (the first, what the
 * last waits for), as far as len goes. */
static void cycle_text(char *buf, size_t len, const pt_core_cycle *cy)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < cy->shown && used < len; i++) {
        const pt_core_cycle_member *m = &cy->members[i];
        size_t h = (i + cy->n - 1) % cy->n;
        const pt_core_cycle_member *held = h < cy->shown ? &cy->members[h] : NULL;

        used += (size_t)snprintf(buf + used, len - used, "%ssession %llu (pid %ld) thread %llu ",
                                 i ? "; " : "", (unsigned long long)pt_core_session_id(m->session),
                                 (long)pt_core_session_peer(m->session)->pid,
                                 (unsigned long long)m->thread);
        if (held != NULL && used < len)
            used += (size_t)snprintf(buf + used, len - used, "holds %s '%.*s' and ",
                                     pt__kind_name(held->waits_kind), (int)held->waits_len,
                                     held->waits);
        if (used < len)
            used += (size_t)snprintf(buf + used, len - used, "waits for %s '%.*s'",
                                     pt__kind_name(m->waits_kind), (int)m->waits_len, m->waits);
    }
    if (cy->shown < cy->n && used < len)
        used += (size_t)snprintf(buf + used, len - used, "; and %zu more", cy->n - cy->shown);
    if (used >= len && len > 4)
        memcpy(buf + len - 4, "...", 4); /* cut: say so */
}

/* ---- found, standing, broken ------------------------------------------- */

/* Whether the chain from w0 comes back to w0's owner, with nothing in it
 * able to time out; *n is then the owners in it. Each lock reached is
 * claimed first, which may hand it to its first waiter (maybe the holder
 * followed there, whose wait then ended): the holder's wait is looked up
 * again after. A chain into a standing cycle stops there, since the
 * cycle's owners wait only for each other; the count of waits bounds the
 * walk even if that did not hold. */
static int closes_cycle(pt_core *c, pt_waiter *w0, size_t *n)
{
    pt_waiter *w = w0;

    for (*n = 1; *n <= c->waits.count; ++*n) {
        const pt_obj *lock = w->obj;
        const pt_session *hs = lock->u.lock.s;
        uint64_t ht = lock->u.lock.thread;

        if (w->deadline != PT_DEADLINE_NONE || (w != w0 && w->in_cycle) || lock->u.lock.depth == 0)
            return 0;
        if (is_owner(lock, w0))
            return 1;
        if ((w = owner_wait(c, hs, ht)) == NULL)
            return 0;
        if (pt__fast_claim(c, w->obj) && (w = owner_wait(c, hs, ht)) == NULL)
            return 0;
    }
    return 0;
}

/* Marks the cycle w0 closed as standing. */
static void stand(pt_core *c, pt_waiter *w0, size_t n, uint64_t id, uint64_t found)
{
    pt_obj *head = w0->obj;
    pt_waiter *w = w0;

    head->u.lock.cycle_first = w0;
    head->u.lock.cycle_id = id;
    head->u.lock.cycle_found = found;
    head->u.lock.cycle_n = (uint32_t)n;
    for (size_t i = 0; i < n && w != NULL; i++) {
        w->in_cycle = 1;
        w->obj->u.lock.cycle = head;
        w = next_wait(c, w);
    }
}

/* The message fits pt__waiter_fail's 512 bytes with its advice whole: the
 * cycle gets what is left. */
static void fail_closing(pt_core *c, pt_waiter *w0, const pt_core_cycle *cy)
{
    char text[340];

    cycle_text(text, sizeof(text), cy);
    pt__waiter_fail(c, w0, PT_EDEADLK,
                    "deadlock: this call would wait for ever in a cycle of %zu lock waits: %s; "
                    "release a lock of the cycle, or take the locks in one order everywhere",
                    cy->n, text);
}

void pt__deadlock_check(pt_core *c, pt_waiter *w0)
{
    pt_core_cycle cy = {.found = c->now};

    /* An owner's edge is its oldest wait: a later one of the same thread
     * (only a client speaking the wire itself parks two) closes nothing,
     * so every walk follows the same edges. */
    if (owner_wait(c, w0->session, w0->thread) != w0 || !closes_cycle(c, w0, &cy.n))
        return;
    cy.id = ++c->ndeadlocks;
    describe(c, w0, &cy);
    if (w0->fail_deadlock) {
        cy.state = PT_CYCLE_FAILED;
        tell(c, &cy);
        fail_closing(c, w0, &cy);
        return;
    }
    cy.state = PT_CYCLE_STANDING;
    stand(c, w0, cy.n, cy.id, cy.found);
    c->nstanding++;
    tell(c, &cy);
}

/* The standing cycle whose head is head, as data. */
static void standing_describe(pt_core *c, const pt_obj *head, pt_core_cycle *cy)
{
    *cy = (pt_core_cycle){
        .id = head->u.lock.cycle_id,
        .found = head->u.lock.cycle_found,
        .state = PT_CYCLE_STANDING,
        .n = head->u.lock.cycle_n,
    };
    describe(c, head->u.lock.cycle_first, cy);
}

/* Breaks the standing cycle of head: told (broke: the member whose wait
 * by ended, or whose held lock by_lock is about to be released), then
 * every mark goes. The graph is still whole here: the callers come before
 * the wait leaves or the hold ends. */
static void cycle_end(pt_core *c, pt_obj *head, const pt_waiter *by, const pt_obj *by_lock)
{
    pt_core_cycle cy;
    pt_waiter *w = head->u.lock.cycle_first;

    standing_describe(c, head, &cy);
    cy.state = PT_CYCLE_BROKEN;
    cy.released = by_lock != NULL;
    for (size_t i = 0; i < cy.n && w != NULL; i++, w = next_wait(c, w)) {
        if (w == by || w->obj == by_lock)
            cy.broke = by_lock ? (i + 1) % cy.n : i; /* the next one holds what w waits for */
    }
    tell(c, &cy);
    w = head->u.lock.cycle_first;
    for (size_t i = 0; i < cy.n && w != NULL; i++) {
        pt_waiter *next = next_wait(c, w);

        w->in_cycle = 0;
        w->obj->u.lock.cycle = NULL;
        w = next;
    }
    head->u.lock.cycle = NULL;
    head->u.lock.cycle_first = NULL;
    head->u.lock.cycle_id = 0;
    head->u.lock.cycle_n = 0;
    c->nstanding--;
}

void pt__deadlock_unwait(pt_core *c, pt_waiter *w)
{
    if (w->in_cycle && w->obj->u.lock.cycle != NULL)
        cycle_end(c, w->obj->u.lock.cycle, w, NULL);
    w->in_cycle = 0;
    if (w->indexed)
        idx_remove(&c->waits, w);
}

void pt__deadlock_unhold(pt_core *c, pt_obj *lock)
{
    if (lock->u.lock.cycle != NULL)
        cycle_end(c, lock->u.lock.cycle, NULL, lock);
}

/* ---- hooks, inspection, images ----------------------------------------- */

void pt_core_set_deadlock_hooks(pt_core *c, const pt_core_deadlock_hooks *hooks, void *ctx)
{
    c->deadlock_hooks = hooks ? *hooks : (pt_core_deadlock_hooks){0};
    c->deadlock_ctx = ctx;
}

static int is_lock(const pt_obj *obj)
{
    return obj->kind == PT_KIND_LOCK || obj->kind == PT_KIND_RLOCK;
}

static int is_head(const pt_obj *obj)
{
    return is_lock(obj) && obj->u.lock.cycle == obj;
}

static int by_id(const void *a, const void *b)
{
    uint64_t x = (*(pt_obj *const *)a)->u.lock.cycle_id;
    uint64_t y = (*(pt_obj *const *)b)->u.lock.cycle_id;

    return x < y ? -1 : x > y;
}

int pt_core_deadlocks_each(pt_core *c, pt_core_cycle_fn fn, void *ctx)
{
    pt_obj **heads = calloc(c->nstanding ? c->nstanding : 1, sizeof(*heads));
    pt_obj *obj;
    size_t n = 0;

    if (heads == NULL)
        return -1;
    TAILQ_FOREACH(obj, &c->objects, all_link)
    {
        if (is_head(obj) && n < c->nstanding)
            heads[n++] = obj;
    }
    qsort(heads, n, sizeof(*heads), by_id);
    for (size_t i = 0; i < n; i++) {
        pt_core_cycle cy;

        standing_describe(c, heads[i], &cy);
        fn(ctx, &cy);
    }
    free(heads);
    return 0;
}

uint64_t pt__deadlock_of_lock(const pt_obj *lock)
{
    return lock->u.lock.cycle ? lock->u.lock.cycle->u.lock.cycle_id : 0;
}

uint64_t pt__deadlock_of_wait(const pt_waiter *w)
{
    return w->in_cycle ? pt__deadlock_of_lock(w->obj) : 0;
}

/* Any call the owner has parked: its lock wait, else the first found
 * through its session's handles (inspection only). */
const pt_waiter *pt__owner_any_wait(const pt_core *c, const pt_session *s, uint64_t thread)
{
    const pt_waiter *w = owner_wait(c, s, thread);

    for (uint32_t h = 1; w == NULL && s != NULL && h < s->next_new; h++) {
        LIST_FOREACH(w, &pt__handle_get(s, h)->waiters, hlink)
        {
            if (w->thread == thread)
                return w;
        }
    }
    return w;
}

/* A loaded head: follow the holders from it to the wait on it that closed
 * its cycle, then mark the cycle again. -1 when the links do not make
 * that cycle. */
static int stand_again(pt_core *c, pt_obj *head)
{
    const pt_obj *lock = head;
    pt_waiter *w = NULL;
    size_t n = 0;

    for (;;) {
        if (++n > c->waits.count ||
            (w = owner_wait(c, lock->u.lock.depth ? lock->u.lock.s : NULL, lock->u.lock.thread)) ==
                NULL ||
            w->deadline != PT_DEADLINE_NONE || w->in_cycle)
            return -1;
        if (w->obj == head)
            break;
        lock = w->obj;
    }
    stand(c, w, n, head->u.lock.cycle_id, head->u.lock.cycle_found);
    c->nstanding++;
    return 0;
}

int pt__deadlock_image_finish(pt_core *c)
{
    pt_obj *obj;

    TAILQ_FOREACH(obj, &c->objects, all_link)
    {
        if (is_lock(obj) && obj->u.lock.cycle_id != 0 && obj->u.lock.cycle == NULL &&
            stand_again(c, obj) < 0)
            return -1;
    }
    return 0;
}
