/*
 * fast.c - the core's side of the shared words (proto/fastword.h).
 *
 * The words are input: what a client did through one since the last entry
 * reaches the core here, when the object is claimed, and is taken as if it
 * had been requested (a hold begun or ended, permits taken or given). The
 * core checks nothing a word says beyond its bounds; a client that wrote
 * nonsense into a word can only change objects it could open, and the
 * core's own invariants (the queue empty while a lock is free, waiters only
 * at value 0) are restored right here.
 */
#include "core_int.h"

void pt_core_set_fast_hooks(pt_core *c, const pt_core_fast_hooks *hooks, void *ctx)
{
    c->fast_hooks = *hooks;
    c->fast_ctx = ctx;
}

static int lock_kind(int kind)
{
    return kind == PT_KIND_LOCK || kind == PT_KIND_RLOCK;
}

/* Tokens only grow: a word's count behind the core's is a client's doing. */
static void take_token(pt_core *c, pt_obj *obj, uint64_t token)
{
    if (token <= obj->token)
        return;
    pt__stat_fast_acquired(c, obj, token - obj->token);
    obj->token = token;
    obj->token_given = 1;
    if (token > c->token_floor)
        c->token_floor = token;
}

static void lock_sync(pt_core *c, pt_obj *lock, const pt_core_fast_view *v)
{
    int same =
        lock->u.lock.depth > 0 && lock->u.lock.s == v->holder && lock->u.lock.thread == v->thread;

    take_token(c, lock, v->token);
    if (same) {
        if (lock->kind == PT_KIND_RLOCK)
            lock->u.lock.depth = v->depth ? v->depth : 1;
        return;
    }
    if (lock->u.lock.depth > 0) {
        /* Ended through the word. The lock keeps a reference through the
         * caller's claim (a handle or a hold of the entry), so the unref
         * never frees it here. */
        pt__stat_lock_released(c, lock);
        pt__lock_hold_drop(c, lock);
        pt__obj_unref(c, lock);
    }
    if (v->holder != NULL) {
        pt__lock_hold_take(lock, v->holder, v->thread,
                           lock->kind == PT_KIND_RLOCK && v->depth ? v->depth : 1);
        lock->u.lock.since = c->now;
        pt__lock_handed(c, lock, lock->token);
    }
    pt__lock_grant_next(c, lock);
}

/* ---- owned semaphores: holds counted in slots (fastword.h) ---- */

/* No slot, sum or hold passes this, whatever a client wrote: the sums of
 * every session's holds stay far inside int64_t. */
#define SLOT_LIMIT ((int64_t)1 << 40)

static int64_t clamp_slot(int64_t v)
{
    return v < -SLOT_LIMIT ? -SLOT_LIMIT : v > SLOT_LIMIT ? SLOT_LIMIT : v;
}

static int is_owned_sem(const pt_obj *obj)
{
    return (obj->kind == PT_KIND_SEMAPHORE || obj->kind == PT_KIND_BOUNDED_SEMAPHORE) &&
           obj->u.sem.owned;
}

static pt_semhold *slot_hold(pt_obj *sem, uint32_t slot)
{
    pt_semhold *h;

    if (slot == 0)
        return NULL;
    TAILQ_FOREACH(h, &sem->u.sem.holders, olink)
    {
        if (h->slot == slot)
            return h;
    }
    return NULL;
}

static int64_t holds_sum(const pt_obj *sem, const pt_semhold *but)
{
    const pt_semhold *h;
    int64_t sum = 0;

    TAILQ_FOREACH(h, &sem->u.sem.holders, olink)
    {
        if (h != but)
            sum += h->count;
    }
    return sum;
}

/* Whether the cells and slots objects name are there to read: not while
 * a restart ends the old sessions, nor in a core left with no hooks (a
 * replay's, until the daemon sets its own). */
static int words(const pt_core *c)
{
    return !c->fast_lost && c->fast_hooks.claim != NULL;
}

/* What the slot counted since it was last read joins the hold. A slot found
 * busy before has its step counted already: it is only read again. */
static void slot_fold(pt_core *c, pt_semhold *h)
{
    int64_t now;

    if (!words(c))
        return; /* what it counted since its last read is gone with it */
    now = clamp_slot(c->fast_hooks.slot_read(c->fast_ctx, h->slot));

    if (!h->unsure)
        h->count = clamp_slot(h->count + (now - h->seen));
    h->seen = now;
    h->unsure = 0;
}

static pt_semhold *first_short(pt_obj *sem)
{
    pt_semhold *h;

    TAILQ_FOREACH(h, &sem->u.sem.holders, olink)
    {
        if (h->count < 0)
            return h;
    }
    return NULL;
}

/* A hold below zero is a release through the word of permits its session
 * did not hold: it counts down the other holders' permits, as the same
 * release through the daemon would have. */
static void holds_settle(pt_core *c, pt_obj *sem)
{
    pt_semhold *h;

    while ((h = first_short(sem)) != NULL) {
        uint64_t n = (uint64_t)-h->count;

        h->count = 0;
        pt__sem_count_down(c, sem, h->session, n);
    }
}

/* A BoundedSemaphore's value and holds add up to its initial value; only a
 * client writing nonsense into its group's cells makes them differ. */
static int64_t bounded_value(pt_core *c, pt_obj *sem, int64_t value)
{
    int64_t initial = sem->u.sem.initial, held;

    if (sem->kind != PT_KIND_BOUNDED_SEMAPHORE)
        return value;
    held = holds_sum(sem, NULL);
    if (held > initial) {
        pt__sem_count_down(c, sem, NULL, (uint64_t)(held - initial));
        held = initial;
    }
    return initial - held;
}

/* Slots the word says changed are read; a busy one's hold is what the
 * total leaves, as every other slot is at rest (only the busy client may
 * change its slot until it clears BUSY). */
static void osem_sync(pt_core *c, pt_obj *sem, const pt_core_fast_view *v)
{
    int64_t total = sem->u.sem.value + holds_sum(sem, NULL);
    pt_semhold *busy = v->busy ? slot_hold(sem, v->slot) : NULL;
    int every = v->many || (v->busy && busy == NULL);
    int64_t value = v->value < 0 ? 0 : v->value;
    pt_semhold *h;

    TAILQ_FOREACH(h, &sem->u.sem.holders, olink)
    {
        if (h->slot != 0 && h != busy && (every || h->unsure || h->slot == v->slot))
            slot_fold(c, h);
    }
    if (busy != NULL) {
        busy->count = clamp_slot(total - value - holds_sum(sem, busy));
        busy->unsure = 1;
    }
    holds_settle(c, sem);
    value = bounded_value(c, sem, value);
    pt__stat_fast_acquired(c, sem, v->acquires);
    sem->u.sem.value = 0;
    pt__sem_give(c, sem, (uint64_t)value);
}

static uint32_t slot_open(pt_core *c, pt_obj *sem, pt_session *s)
{
    pt_semhold *h;

    if ((h = pt__semhold_find(sem, s)) == NULL) {
        if ((h = pt__semhold_alloc(c)) == NULL)
            return 0;
        pt__semhold_link(h, sem, s);
    }
    if (h->slot == 0) {
        h->slot = c->fast_hooks.slot_new(c->fast_ctx, sem->fast);
        h->seen = 0;
        h->unsure = 0;
        h->opens = 0;
    }
    if (h->slot == 0) {
        pt__semhold_idle(c, h);
        return 0;
    }
    h->opens++;
    return h->slot;
}

/* Owned permits go through the word only counted in a slot. */
void pt__fast_opened(pt_core *c, pt_obj *obj, pt_session *s, pt_result *res)
{
    res->fast = obj->fast;
    if (obj->fast == 0 || !is_owned_sem(obj))
        return;
    res->fast_slot = slot_open(c, obj, s);
    if (res->fast_slot == 0)
        res->fast = 0;
}

/* The session's last handle closes: its slot's count joins its hold, which
 * stays until the session ends or releases it through the daemon. */
void pt__fast_slot_close(pt_core *c, pt_obj *sem, pt_session *s)
{
    pt_semhold *h;

    if (sem->fast == 0 || !is_owned_sem(sem))
        return;
    h = pt__semhold_find(sem, s);
    if (h == NULL || h->slot == 0 || --h->opens > 0)
        return;
    pt__fast_claim(c, sem);
    pt__fast_slot_end(c, h);
    pt__semhold_idle(c, h);
}

void pt__fast_slot_end(pt_core *c, pt_semhold *h)
{
    if (h->slot == 0)
        return;
    if (words(c))
        c->fast_hooks.slot_free(c->fast_ctx, h->slot);
    h->slot = 0;
    h->opens = 0;
    h->unsure = 0;
}

static void sem_sync(pt_core *c, pt_obj *sem, const pt_core_fast_view *v)
{
    int64_t value = v->value < 0 ? 0 : v->value;

    if (sem->kind == PT_KIND_BOUNDED_SEMAPHORE && value > sem->u.sem.initial)
        value = sem->u.sem.initial;
    pt__stat_fast_acquired(c, sem, v->acquires);
    sem->u.sem.value = 0;
    pt__sem_give(c, sem, (uint64_t)value);
}

int pt__fast_claim(pt_core *c, pt_obj *obj)
{
    pt_core_fast_view v = {0};

    if (obj != NULL && obj->kind == PT_KIND_CONDITION)
        obj = obj->u.cond.lock;
    if (obj == NULL || obj->fast == 0 || obj->fast_claimed || !words(c))
        return 0;
    obj->fast_claimed = 1;
    LIST_INSERT_HEAD(&c->fast_claimed, obj, fast_link);
    pt__obj_ref(obj); /* until published */
    c->fast_hooks.claim(c->fast_ctx, obj->fast, obj->kind, &v);
    if (v.keep)
        return 1;
    if (lock_kind(obj->kind))
        lock_sync(c, obj, &v);
    else if (is_owned_sem(obj))
        osem_sync(c, obj, &v);
    else if (obj->kind == PT_KIND_SEMAPHORE || obj->kind == PT_KIND_BOUNDED_SEMAPHORE)
        sem_sync(c, obj, &v);
    return 1;
}

/* Which objects get a word: the ones whose uncontended operations a word
 * can carry (an owned semaphore's with its sessions' slots). */
static int fast_eligible(const pt_core *c, const pt_obj *obj, uint32_t flags)
{
    if (obj->anonymous || (flags & PT_OPEN_NOFAST))
        return 0;
    switch (obj->kind) {
    case PT_KIND_LOCK:
    case PT_KIND_RLOCK:
    case PT_KIND_EVENT:
        return 1;
    case PT_KIND_SEMAPHORE:
    case PT_KIND_BOUNDED_SEMAPHORE:
        return !obj->u.sem.owned || c->fast_hooks.slot_new != NULL;
    default:
        return 0;
    }
}

/* A new object's word is written by the publish that ends this entry. */
void pt__fast_created(pt_core *c, pt_obj *obj, uint32_t flags)
{
    if (c->fast_hooks.created == NULL || !fast_eligible(c, obj, flags))
        return;
    obj->fast = c->fast_hooks.created(c->fast_ctx, obj->kind, is_owned_sem(obj), obj->uid, obj->gid,
                                      obj->mode);
    if (obj->fast == 0)
        return;
    obj->fast_claimed = 1;
    LIST_INSERT_HEAD(&c->fast_claimed, obj, fast_link);
    pt__obj_ref(obj);
}

void pt__fast_freed(pt_core *c, pt_obj *obj)
{
    if (obj->fast != 0 && words(c))
        c->fast_hooks.freed(c->fast_ctx, obj->fast);
    obj->fast = 0;
}

/* ---- restart: the words are gone, their last state is reclaimed ---- */

/* Until the restart every object stands as the journal had it. */
void pt_core_words_lost(pt_core *c)
{
    c->fast_lost = 1;
    pt__restart_marks_reset(c);
}

/* The object a reclaim names, when it is of the kind the state is about. */
static pt_obj *reclaim_obj(const pt_core_reclaim *r)
{
    pt_handle *slot = pt__handle_get(r->session, r->handle);
    pt_obj *obj = slot ? slot->obj : NULL;

    /* only a word can have said anything: an object without one is the
     * journal's alone */
    if (obj == NULL || obj->reclaimed || obj->fast == 0)
        return NULL;
    if (r->state == PT_RECLAIM_VALUE || r->state == PT_RECLAIM_SLOT) {
        int sem = obj->kind == PT_KIND_SEMAPHORE || obj->kind == PT_KIND_BOUNDED_SEMAPHORE;

        return sem && obj->u.sem.owned == (r->state == PT_RECLAIM_SLOT) ? obj : NULL;
    }
    return lock_kind(obj->kind) ? obj : NULL;
}

/* The hold ends without a grant: a later reclaim may name the holder. */
static void reclaim_drop(pt_core *c, pt_obj *lock)
{
    pt__stat_lock_released(c, lock);
    pt__lock_hold_drop(c, lock);
    pt__obj_unref(c, lock);
}

static void reclaim_free(pt_core *c, const pt_core_reclaim *r)
{
    pt_obj *lock = reclaim_obj(r);

    if (lock != NULL && lock->u.lock.depth > 0 && lock->u.lock.s == r->session) {
        reclaim_drop(c, lock);
        pt__restart_reclaimed(lock); /* not ->reclaimed: a HELD may still name it */
    }
}

/* A word counts at most token_jump tokens past what the core knows; a
 * token further on is a client's invention (the base is in its memory) and
 * is not taken: the jump covers every token the word could have given. */
static void reclaim_held(pt_core *c, const pt_core_reclaim *r, uint64_t token_jump)
{
    pt_obj *lock = reclaim_obj(r);
    uint32_t depth = lock && lock->kind == PT_KIND_RLOCK && r->depth ? r->depth : 1;

    if (lock == NULL)
        return;
    lock->reclaimed = 1;
    pt__restart_reclaimed(lock);
    if (r->token > lock->token && r->token - lock->token <= token_jump)
        take_token(c, lock, r->token);
    if (lock->u.lock.depth > 0 &&
        (lock->u.lock.s != r->session || lock->u.lock.thread != r->thread))
        reclaim_drop(c, lock);
    if (lock->u.lock.depth == 0) {
        pt__lock_hold_take(lock, r->session, r->thread, depth);
        lock->u.lock.since = c->now;
        /* handed through the word to its first waiter, whose call waits */
        pt__lock_handed(c, lock, lock->token);
    }
    lock->u.lock.depth = depth;
}

static void reclaim_value(pt_core *c, const pt_core_reclaim *r)
{
    pt_obj *sem = reclaim_obj(r);
    pt_core_fast_view v = {.value = r->value};

    if (sem == NULL)
        return;
    sem->reclaimed = 1;
    pt__restart_reclaimed(sem);
    sem_sync(c, sem, &v);
}

/* What the session's slot counted since the core last read it joins its
 * hold, and leaves the value: permits moved between the two through the
 * word. Several sessions report on one semaphore, each for its own slot. */
static void reclaim_slot(pt_core *c, const pt_core_reclaim *r)
{
    pt_obj *sem = reclaim_obj(r);
    pt_semhold *h = sem ? pt__semhold_find(sem, r->session) : NULL;
    int64_t now = clamp_slot(r->value), delta;

    if (h == NULL || h->slot == 0)
        return;
    delta = h->unsure ? 0 : now - h->seen;
    h->count = clamp_slot(h->count + delta);
    h->seen = now;
    h->unsure = 0;
    /* a slot that counted nothing of a session holding nothing says no more
     * than a FREE of a lock it never held */
    if (delta != 0 || h->count > 0)
        pt__restart_reclaimed(sem);
    if (delta > 0) {
        sem->u.sem.value = sem->u.sem.value > delta ? sem->u.sem.value - delta : 0;
    } else if (delta < 0) {
        holds_settle(c, sem);
        pt__sem_give(c, sem, (uint64_t)-delta);
    }
}

/* Slots were cells of the words' daemon: what they counted since their
 * last read is gone, the holds stay as counted. */
static void slots_end(pt_core *c)
{
    pt_session *s;
    pt_semhold *h;

    LIST_FOREACH(s, &c->sessions, link)
    {
        pt_semhold *next;

        for (h = LIST_FIRST(&s->sems); h != NULL; h = next) {
            next = LIST_NEXT(h, slink);
            pt__fast_slot_end(c, h);
            pt__semhold_idle(c, h); /* a record kept for its slot alone goes */
        }
    }
}

/*
 * Holds ended by the words go first and grant nothing, then the holds they
 * name are taken, so the order in which sessions came back does not
 * matter; only then does a lock left free go to its first waiter. A Lock's
 * word may have given up to token_jump tokens past what the core knows, so
 * its next token jumps over them. Every object that had a cell gets a new
 * one, written by the publish that ends this entry.
 */
void pt_core_restart(pt_core *c, uint64_t now, uint64_t token_jump, const pt_core_reclaim *reclaims,
                     size_t n)
{
    pt_obj *obj;

    c->now = now;
    c->fast_lost = 1;
    pt__restart_marks_reset(c);
    for (size_t i = 0; i < n; i++) {
        if (reclaims[i].state == PT_RECLAIM_FREE)
            reclaim_free(c, &reclaims[i]);
    }
    for (size_t i = 0; i < n; i++) {
        if (reclaims[i].state == PT_RECLAIM_HELD)
            reclaim_held(c, &reclaims[i], token_jump);
        else if (reclaims[i].state == PT_RECLAIM_VALUE)
            reclaim_value(c, &reclaims[i]);
        else if (reclaims[i].state == PT_RECLAIM_SLOT)
            reclaim_slot(c, &reclaims[i]);
    }
    slots_end(c);
    TAILQ_FOREACH(obj, &c->objects, all_link)
    {
        obj->reclaimed = 0;
        pt__restart_taken_up(obj);
        if (obj->fast != 0 && lock_kind(obj->kind)) {
            obj->token += token_jump;
            if (obj->token > c->token_floor)
                c->token_floor = obj->token;
        }
        if (lock_kind(obj->kind))
            pt__lock_grant_next(c, obj);
    }
    c->fast_lost = 0;
    TAILQ_FOREACH(obj, &c->objects, all_link)
    {
        if (obj->fast != 0) {
            obj->fast = 0;
            pt__fast_created(c, obj, 0);
        }
    }
}

/* Every object the session reaches: its handles and the locks it holds
 * (a hold outlives the handle it was taken through). */
void pt__fast_claim_session(pt_core *c, pt_session *s)
{
    pt_obj *obj;

    LIST_FOREACH(obj, &s->locks, u.lock.hold_link)
    pt__fast_claim(c, obj);
    for (uint32_t h = 1; h < s->next_new; h++) {
        pt_handle *slot = pt__handle_get(s, h);

        if (slot->obj != NULL)
            pt__fast_claim(c, slot->obj);
    }
}

void pt_core_fast_claim_all(pt_core *c)
{
    pt_obj *obj;

    TAILQ_FOREACH(obj, &c->objects, all_link)
    pt__fast_claim(c, obj);
}

uint64_t pt_core_fast_unread(const pt_core *c)
{
    const pt_obj *obj;
    uint64_t n = 0;

    if (c->fast_hooks.unread == NULL || !words(c))
        return 0;
    TAILQ_FOREACH(obj, &c->objects, all_link)
    {
        if (obj->fast != 0 && !obj->fast_claimed)
            n += c->fast_hooks.unread(c->fast_ctx, obj->fast, obj->kind, obj->token);
    }
    return n;
}

uint32_t pt_core_fast_lock_cell(pt_core *c, pt_session *s, uint32_t handle)
{
    pt_handle *slot = pt__handle_get(s, handle);

    (void)c;
    if (slot == NULL || slot->obj == NULL || !lock_kind(slot->obj->kind))
        return 0;
    return slot->obj->fast;
}

static int any_unsure(const pt_obj *sem)
{
    const pt_semhold *h;

    TAILQ_FOREACH(h, &sem->u.sem.holders, olink)
    {
        if (h->unsure)
            return 1;
    }
    return 0;
}

/* The first waiter, if the lock may be handed to it through the word. */
static void next_fill(const pt_obj *lock, pt_core_fast_state *out)
{
    const pt_waiter *w = TAILQ_FIRST(&lock->queue.head);

    if (w != NULL && w->watch && w->kind == PT_WK_LOCK) {
        out->next = w->session;
        out->next_thread = w->thread;
    }
}

static void state_fill(const pt_obj *obj, pt_core_fast_state *out)
{
    *out = (pt_core_fast_state){.cell = obj->fast, .kind = obj->kind, .token = obj->token};
    out->waiters = obj->queue.len > 0;
    switch (obj->kind) {
    case PT_KIND_LOCK:
    case PT_KIND_RLOCK:
        if (obj->u.lock.depth > 0) {
            out->holder = obj->u.lock.s;
            out->thread = obj->u.lock.thread;
            out->depth = obj->u.lock.depth;
        }
        next_fill(obj, out);
        break;
    case PT_KIND_SEMAPHORE:
    case PT_KIND_BOUNDED_SEMAPHORE:
        out->value = obj->u.sem.value;
        out->owned = obj->u.sem.owned;
        out->busy = out->owned && any_unsure(obj);
        break;
    case PT_KIND_EVENT:
        out->is_set = obj->u.event.set;
        break;
    default:
        break;
    }
}

int pt_core_fast_next(pt_core *c, pt_core_fast_state *out)
{
    pt_obj *obj;

    while ((obj = LIST_FIRST(&c->fast_claimed)) != NULL) {
        /* An object this unref ends has its cell cleared by the freed
         * hook: nothing to publish. */
        int ends = obj->refs == 1 && (obj->transient || obj->unlinked || obj->anonymous);

        LIST_REMOVE(obj, fast_link);
        obj->fast_claimed = 0;
        out->cell = 0;
        if (obj->fast != 0 && !ends)
            state_fill(obj, out);
        pt__obj_unref(c, obj);
        if (out->cell != 0)
            return 1;
    }
    return 0;
}
