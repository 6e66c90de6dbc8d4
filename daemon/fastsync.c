/*
 * fastsync.c - a claim turns a word into core input, a publish turns the
 * core's state into a word (proto/fastword.h has the protocol).
 */
#include <string.h>

#include "fastsync.h"

void pt_fastsync_init(pt_fastsync *s, pt_fast_cell *cell, int kind, int owned)
{
    *s = (pt_fastsync){.rebase = 1, .owned = (uint8_t)(owned != 0)};
    memset(cell, 0, sizeof(*cell));
    cell->kind = (uint32_t)kind;
    atomic_store_explicit(&cell->word, PT_FW_CLAIM, memory_order_release);
}

static void claim_lock(pt_fastsync *s, pt_fast_cell *cell, uint64_t w, int kind,
                       pt_fastsync_who who, void *ctx, pt_core_fast_view *v)
{
    pt_fast_lock_view lv;

    pt_fast_lock_decode(w, &lv);
    v->token = s->base + lv.seq;
    v->holder = lv.held ? who(ctx, lv.sid) : NULL;
    if (v->holder) {
        v->thread = lv.tid;
        v->depth = 1;
        /* Only an RLock's holder keeps its depth in the cell. */
        if (kind == PT_KIND_RLOCK) {
            uint32_t depth = pt_fw_depth(cell);

            v->depth = depth > 0 ? depth : 1;
        }
    }
    /* With no holder in the word nobody is between a CAS and reading
     * base: it may move. */
    s->rebase = v->holder == NULL;
}

void pt_fastsync_claim(pt_fastsync *s, pt_fast_cell *cell, int kind, pt_fastsync_who who, void *ctx,
                       pt_core_fast_view *v)
{
    uint64_t w = pt_fast_claim(cell);

    if (s->kept || kind == PT_KIND_EVENT) {
        v->keep = 1;
    } else if (kind == PT_KIND_LOCK || kind == PT_KIND_RLOCK) {
        claim_lock(s, cell, w, kind, who, ctx, v);
    } else {
        uint64_t n = pt_fw_count(cell);

        v->value = (int64_t)(w >> (s->owned ? PT_FW_OSEM_SHIFT : PT_FW_SEM_SHIFT));
        if (s->busy) /* nobody but the busy client's fetch_and wrote since */
            v->value = s->value;
        s->busy = 0;
        if (s->owned) {
            v->slot = (uint32_t)(w >> PT_FW_SLOT_SHIFT) & PT_FW_SLOT_MAX;
            v->busy = (w & PT_FW_BUSY) != 0;
            v->many = (w & PT_FW_MANY) != 0;
        }
        v->acquires = n - s->count;
        s->count = n;
    }
    s->seen = (pt_fastsync_hold){v->holder, v->thread, v->token, v->depth, (uint8_t)v->keep};
}

uint64_t pt_fastsync_unread(const pt_fastsync *s, pt_fast_cell *cell, int kind, uint64_t token)
{
    uint64_t n;

    if (s->kept || kind == PT_KIND_EVENT)
        return 0; /* the daemon's alone: nobody acquires through it */
    if (kind == PT_KIND_LOCK || kind == PT_KIND_RLOCK) {
        pt_fast_lock_view lv;

        pt_fast_lock_decode(atomic_load_explicit(&cell->word, memory_order_acquire), &lv);
        n = s->base + lv.seq;
        return n > token ? n - token : 0;
    }
    n = pt_fw_count(cell);
    return n > s->count ? n - s->count : 0;
}

/* The holder's depth is written only when the daemon changed the hold: a
 * holder recursing through the word meanwhile is not overwritten. */
static int hold_changed(const pt_fastsync *s, const pt_core_fast_state *st)
{
    return s->seen.keep || s->seen.holder != st->holder || s->seen.thread != st->thread ||
           s->seen.depth != st->depth;
}

/* The waiter the holder may hand the lock to through the word: the first
 * one, when it watches the word and a word can name it. */
static uint64_t next_owner(const pt_core_fast_state *st, uint32_t next_sid)
{
    if (!st->waiters || st->next == NULL || next_sid == 0 || st->next_thread > PT_FW_TID_MAX)
        return 0;
    return pt_fast_owner(next_sid, (uint32_t)st->next_thread);
}

/*
 * The holder of the word the claim found may have read next before, and
 * its hand-off CAS succeeds if the same word is published again. So when
 * the next it could have read is taken back during that hold (the waiter
 * timed out, was cancelled or died), the hold is fenced: each publish of it
 * keeps CLAIM set, and its release goes to the daemon. A next naming the
 * holder itself is never used by it, so replacing that one needs no fence.
 */
static int fence(pt_fastsync *s, const pt_core_fast_state *st, uint32_t sid, uint64_t n)
{
    int same = st->holder != NULL && st->holder == s->seen.holder && st->thread == s->seen.thread &&
               st->token == s->seen.token && !s->seen.keep;
    uint64_t holder = same ? pt_fast_owner(sid, (uint32_t)st->thread) : 0;

    if (!same)
        s->fenced = 0;
    else if (s->next != 0 && s->next != holder && s->next != n)
        s->fenced = 1;
    return s->fenced;
}

/* next is written before the word, so whoever reads the word reads it. */
static void next_write(pt_fastsync *s, pt_fast_cell *cell, uint64_t n)
{
    if (n == s->next)
        return;
    s->next = n;
    pt_fw_set_next(cell, n);
}

static uint64_t publish_lock(pt_fastsync *s, pt_fast_cell *cell, const pt_core_fast_state *st,
                             uint32_t sid, uint32_t next_sid)
{
    pt_fast_lock_view lv = {0};
    uint64_t n = next_owner(st, next_sid);

    if (st->holder && (sid == 0 || st->thread > PT_FW_TID_MAX)) {
        s->kept = 1; /* a holder no word can name: the daemon keeps it */
        s->fenced = 0;
        next_write(s, cell, 0);
        return PT_FW_CLAIM | PT_FW_HELD;
    }
    s->kept = 0;
    if (fence(s, st, sid, n))
        n = 0;
    next_write(s, cell, n);
    if (s->rebase && s->base != st->token) {
        s->base = st->token;
        pt_fw_set_base(cell, s->base);
    }
    /* Past SEQ_MAX only through the daemon's grants: its holder has its
     * token already and the core keeps the count, which only grows. */
    lv.seq = st->token - s->base > PT_FW_SEQ_MAX ? PT_FW_SEQ_MAX : (uint32_t)(st->token - s->base);
    if (st->holder) {
        lv.held = 1;
        lv.sid = sid;
        lv.tid = (uint32_t)st->thread;
        if (st->kind == PT_KIND_RLOCK && hold_changed(s, st))
            pt_fw_set_depth(cell, st->depth);
    }
    return pt_fast_lock_encode(&lv) | (s->fenced ? PT_FW_CLAIM : 0);
}

static uint64_t publish_sem(pt_fastsync *s, const pt_core_fast_state *st)
{
    int shift = s->owned ? PT_FW_OSEM_SHIFT : PT_FW_SEM_SHIFT;

    s->kept = st->value > (s->owned ? PT_FW_OSEM_MAX : PT_FW_SEM_MAX);
    if (s->kept)
        return PT_FW_CLAIM;
    return (uint64_t)st->value << shift;
}

void pt_fastsync_publish(pt_fastsync *s, pt_fast_cell *cell, const pt_core_fast_state *st,
                         uint32_t holder_sid, uint32_t next_sid)
{
    uint64_t w;

    /* A busy client clears BUSY in the claimed word itself; a store now
     * could set it again. The word stays claimed until a claim finds it
     * clear, and the value is kept here meanwhile. */
    if (st->busy) {
        s->busy = 1;
        s->value = st->value;
        return;
    }
    switch (st->kind) {
    case PT_KIND_LOCK:
    case PT_KIND_RLOCK:
        w = publish_lock(s, cell, st, holder_sid, next_sid);
        break;
    case PT_KIND_EVENT:
        w = st->is_set ? PT_FW_SET : 0;
        break;
    default:
        w = publish_sem(s, st);
        break;
    }
    if (st->waiters)
        w |= PT_FW_PARKED;
    pt_fast_publish(cell, w);
}
