/*
 * fastword.c - a client's steps on a shared word (the table in fastword.h).
 * Each function is a load, at most one CAS, and a plain store the holder
 * alone makes; anything else asks the daemon.
 */
#include "fastword.h"
#include "pythread.h"

static uint64_t word_load(pt_fast_cell *c)
{
    PT_FW_STEP();
    return PT_FW_SEEN(atomic_load_explicit(&c->word, memory_order_acquire));
}

static int word_cas(pt_fast_cell *c, uint64_t *old, uint64_t new)
{
    int ok;

    PT_FW_STEP();
    ok = atomic_compare_exchange_weak_explicit(&c->word, old, new, memory_order_acq_rel,
                                               memory_order_acquire);
    *old = PT_FW_SEEN(*old);
    return PT_FW_SEEN(ok);
}

static uint64_t owner_of(uint64_t w)
{
    return w & PT_FW_OWNER_MASK;
}

static uint32_t seq_of(uint64_t w)
{
    return (uint32_t)(w >> PT_FW_SEQ_SHIFT) & PT_FW_SEQ_MAX;
}

/* The holder takes its RLock once more: the word does not change. A
 * claimed word sends it to the daemon, which has read the depth: a word
 * left claimed by a daemon that handed its connections over (the clients
 * still map it) must not count a depth nobody reads again. */
static int lock_recurse(pt_fast_cell *c, uint64_t w, uint64_t *token)
{
    uint32_t depth = pt_fw_depth(c);

    if ((w & PT_FW_CLAIM) || depth == 0 || depth == UINT32_MAX)
        return PT_FAST_SLOW;
    pt_fw_set_depth(c, depth + 1);
    *token = pt_fw_base(c) + seq_of(w);
    return PT_FAST_OK;
}

int pt_fast_lock_acquire(pt_fast_cell *c, uint32_t sid, uint32_t tid, int recursive, int blocking,
                         uint64_t *token)
{
    uint64_t me = pt_fast_owner(sid, tid);
    uint64_t w = word_load(c);

    for (;;) {
        uint32_t seq = seq_of(w);

        if (recursive && owner_of(w) == me)
            return lock_recurse(c, w, token);
        if (w & PT_FW_FLAGS)
            return PT_FAST_SLOW;
        if (w & PT_FW_HELD)
            return blocking ? PT_FAST_SLOW : PT_FAST_NO;
        if (seq == PT_FW_SEQ_MAX)
            return PT_FAST_SLOW; /* the daemon folds seq into base */
        if (word_cas(c, &w, me | (uint64_t)(seq + 1) << PT_FW_SEQ_SHIFT))
            break;
    }
    if (recursive)
        pt_fw_set_depth(c, 1);
    *token = pt_fw_base(c) + seq_of(w) + 1;
    return PT_FAST_OK;
}

/* The waiter the daemon named, if the lock may go to it from the word w
 * (fastword.h, "hand-off"), else 0. */
static uint64_t handoff_to(pt_fast_cell *c, uint64_t w, uint64_t me)
{
    uint64_t n;

    if (seq_of(w) == PT_FW_SEQ_MAX)
        return 0;
    n = pt_fw_next(c);
    if (n == me || (n & PT_FW_HELD) == 0 || (n & ~PT_FW_OWNER_MASK) != 0)
        return 0;
    return n;
}

/* The word after w with the lock gone: free, or held by the waiter n. */
static uint64_t released(uint64_t w, uint64_t n)
{
    if (n == 0)
        return w & ~PT_FW_OWNER_MASK;
    return PT_FW_PARKED | n | (uint64_t)(seq_of(w) + 1) << PT_FW_SEQ_SHIFT;
}

int pt_fast_lock_release(pt_fast_cell *c, uint32_t sid, uint32_t tid, int recursive, uint64_t *to)
{
    uint64_t me = pt_fast_owner(sid, tid);
    uint64_t w = word_load(c), n = 0;

    if (owner_of(w) != me || (w & PT_FW_CLAIM))
        return PT_FAST_SLOW;
    if (recursive) {
        uint32_t depth = pt_fw_depth(c);

        if (depth > 1) {
            pt_fw_set_depth(c, depth - 1);
            return PT_FAST_OK;
        }
    }
    for (;;) {
        if ((w & PT_FW_CLAIM) || owner_of(w) != me)
            return PT_FAST_SLOW;
        n = (w & PT_FW_PARKED) ? handoff_to(c, w, me) : 0;
        if ((w & PT_FW_PARKED) && n == 0)
            return PT_FAST_SLOW;
        if (word_cas(c, &w, released(w, n)))
            break;
    }
    *to = n;
    return n ? PT_FAST_HANDED : PT_FAST_OK;
}

int pt_fast_lock_taken(pt_fast_cell *c, uint32_t sid, uint32_t tid, uint64_t *token)
{
    uint64_t w = word_load(c);

    if (owner_of(w) != pt_fast_owner(sid, tid))
        return PT_FAST_NO;
    *token = pt_fw_base(c) + seq_of(w);
    return PT_FAST_OK;
}

int pt_fast_claimed(pt_fast_cell *c)
{
    return (word_load(c) & PT_FW_CLAIM) != 0;
}

int pt_fast_lock_locked(pt_fast_cell *c)
{
    return (word_load(c) & PT_FW_HELD) != 0;
}

uint32_t pt_fast_lock_owned(pt_fast_cell *c, uint32_t sid, uint32_t tid)
{
    if (owner_of(word_load(c)) != pt_fast_owner(sid, tid))
        return 0;
    return pt_fw_depth(c);
}

int pt_fast_sem_acquire(pt_fast_cell *c, int blocking, int64_t *value)
{
    uint64_t w = word_load(c);

    for (;;) {
        int64_t v = (int64_t)(w >> PT_FW_SEM_SHIFT);

        if (w & PT_FW_FLAGS)
            return PT_FAST_SLOW;
        if (v == 0)
            return blocking ? PT_FAST_SLOW : PT_FAST_NO;
        if (word_cas(c, &w, w - ((uint64_t)1 << PT_FW_SEM_SHIFT))) {
            PT_FW_STEP();
            atomic_fetch_add_explicit(&c->count, 1, memory_order_relaxed);
            *value = v - 1;
            return PT_FAST_OK;
        }
    }
}

int pt_fast_sem_release(pt_fast_cell *c, uint64_t n, int64_t bound, int64_t *value)
{
    uint64_t w = word_load(c);

    if (n < 1 || n > (uint64_t)PT_FW_SEM_MAX)
        return PT_FAST_SLOW;
    for (;;) {
        int64_t v = (int64_t)(w >> PT_FW_SEM_SHIFT);

        if (w & PT_FW_FLAGS)
            return PT_FAST_SLOW;
        if ((uint64_t)(PT_FW_SEM_MAX - v) < n ||
            (bound >= 0 && (v > bound || (uint64_t)(bound - v) < n)))
            return PT_FAST_SLOW; /* the daemon says what is wrong */
        if (word_cas(c, &w, w + (n << PT_FW_SEM_SHIFT))) {
            *value = v + (int64_t)n;
            return PT_FAST_OK;
        }
    }
}

int pt_fast_sem_value(pt_fast_cell *c, int owned, int64_t *value)
{
    uint64_t w = word_load(c);

    if (w & PT_FW_CLAIM)
        return PT_FAST_SLOW;
    *value = (int64_t)(w >> (owned ? PT_FW_OSEM_SHIFT : PT_FW_SEM_SHIFT));
    return PT_FAST_OK;
}

/* ---- owned semaphores ---- */

/* w with BUSY and slot id named: MANY too when another slot was named. */
static uint64_t osem_mark(uint64_t w, uint32_t id)
{
    uint64_t mask = (uint64_t)PT_FW_SLOT_MAX << PT_FW_SLOT_SHIFT;
    uint64_t named = (w & mask) >> PT_FW_SLOT_SHIFT;

    if (named != 0 && named != id)
        w |= PT_FW_MANY;
    return (w & ~mask) | PT_FW_BUSY | (uint64_t)id << PT_FW_SLOT_SHIFT;
}

/* The step after a CAS that set BUSY: the slot says what the value moved,
 * then the word lets the next step in (a claim meanwhile keeps its CLAIM). */
static void osem_settle(pt_fast_cell *c, pt_fast_cell *slot, int64_t change)
{
    pt_fw_set_slot(slot, pt_fw_slot(slot) + change);
    PT_FW_STEP();
    atomic_fetch_and_explicit(&c->word, ~PT_FW_BUSY, memory_order_release);
}

int pt_fast_osem_acquire(pt_fast_cell *c, pt_fast_cell *slot, uint32_t id, int blocking,
                         int64_t *value)
{
    uint64_t one = (uint64_t)1 << PT_FW_OSEM_SHIFT;
    uint64_t w = word_load(c);
    int64_t v;

    if (id == 0 || id > PT_FW_SLOT_MAX)
        return PT_FAST_SLOW;
    for (;;) {
        v = (int64_t)(w >> PT_FW_OSEM_SHIFT);
        if (w & (PT_FW_FLAGS | PT_FW_BUSY))
            return PT_FAST_SLOW;
        if (v == 0)
            return blocking ? PT_FAST_SLOW : PT_FAST_NO;
        if (word_cas(c, &w, osem_mark(w, id) - one))
            break;
    }
    osem_settle(c, slot, 1);
    PT_FW_STEP();
    atomic_fetch_add_explicit(&c->count, 1, memory_order_relaxed);
    *value = v - 1;
    return PT_FAST_OK;
}

int pt_fast_osem_release(pt_fast_cell *c, pt_fast_cell *slot, uint32_t id, uint64_t n,
                         int64_t bound, int64_t *value)
{
    uint64_t w = word_load(c);
    int64_t v;

    if (id == 0 || id > PT_FW_SLOT_MAX || n < 1 || n > (uint64_t)PT_FW_OSEM_MAX)
        return PT_FAST_SLOW;
    for (;;) {
        v = (int64_t)(w >> PT_FW_OSEM_SHIFT);
        if (w & (PT_FW_FLAGS | PT_FW_BUSY))
            return PT_FAST_SLOW;
        if ((uint64_t)(PT_FW_OSEM_MAX - v) < n ||
            (bound >= 0 && (v > bound || (uint64_t)(bound - v) < n)))
            return PT_FAST_SLOW; /* the daemon says what is wrong */
        if (word_cas(c, &w, osem_mark(w, id) + (n << PT_FW_OSEM_SHIFT)))
            break;
    }
    osem_settle(c, slot, -(int64_t)n);
    *value = v + (int64_t)n;
    return PT_FAST_OK;
}

int pt_fast_event_is_set(pt_fast_cell *c)
{
    return (word_load(c) & PT_FW_SET) != 0;
}

/* A word claimed before: the old daemon was changing it (the bits are as
 * it found them), or kept it to itself (a holder no word can name: no sid;
 * a value too big for one). */
void pt_fast_reclaim_read(pt_fast_cell *c, int kind, uint32_t sid, pt_fast_reclaim *out)
{
    uint64_t w = atomic_fetch_or_explicit(&c->word, PT_FW_CLAIM, memory_order_acq_rel);
    pt_fast_lock_view lv;

    *out = (pt_fast_reclaim){.state = PT_FAST_RECLAIM_UNKNOWN};
    switch (kind) {
    case PT_KIND_LOCK:
    case PT_KIND_RLOCK:
        if (sid == 0)
            break; /* not acting through words: it cannot tell itself in them */
        pt_fast_lock_decode(w, &lv);
        if (lv.held && lv.sid == sid) {
            out->state = PT_FAST_RECLAIM_HELD;
            out->tid = lv.tid;
            out->depth = kind == PT_KIND_RLOCK ? pt_fw_depth(c) : 1;
            out->token = pt_fw_base(c) + lv.seq;
        } else if (!lv.held || lv.sid != 0) {
            out->state = PT_FAST_RECLAIM_FREE;
        }
        break;
    case PT_KIND_SEMAPHORE:
    case PT_KIND_BOUNDED_SEMAPHORE:
        if (!(w & PT_FW_CLAIM)) {
            out->state = PT_FAST_RECLAIM_VALUE;
            out->value = (int64_t)(w >> PT_FW_SEM_SHIFT);
        }
        break;
    default:
        break;
    }
}

/* The word is claimed: no step starts; one begun finishes in two stores. */
#define RECLAIM_BUSY_SPINS 100000

void pt_fast_reclaim_slot(pt_fast_cell *c, pt_fast_cell *slot, uint32_t id, pt_fast_reclaim *out)
{
    uint64_t w = atomic_fetch_or_explicit(&c->word, PT_FW_CLAIM, memory_order_acq_rel);

    for (int i = 0; i < RECLAIM_BUSY_SPINS && (w & PT_FW_BUSY) &&
                    ((uint32_t)(w >> PT_FW_SLOT_SHIFT) & PT_FW_SLOT_MAX) == id;
         i++)
        w = atomic_load_explicit(&c->word, memory_order_acquire);
    *out = (pt_fast_reclaim){.state = PT_FAST_RECLAIM_SLOT, .value = pt_fw_slot(slot)};
}
