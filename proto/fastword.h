/*
 * fastword.h - the shared-memory fast path: one object's cell, the encoding
 * of its word, and every atomic step a client or the daemon takes on it.
 *
 * The daemon keeps a memfd per permission group (creator uid, gid, mode):
 * an array of cells, one per object that has one. A session that opened an
 * object of the group maps the group, so it can reach only words of objects
 * it could open anyway. The daemon is the authority: it parks waiters, hands
 * a lock on in FIFO order, gives fencing tokens, ends holds of dead sessions.
 * A client skips it only while nobody waits, and for one step more: a Lock
 * or RLock holder hands the lock to the first waiter when the daemon has
 * named it in the cell (hand-off, below).
 *
 * Lock and RLock word (64 bits):
 *
 *   bit  0      CLAIM   the daemon is reading or changing the object
 *   bit  1      PARKED  calls wait in the daemon: the holder's last release
 *                       and everybody's acquire go to the daemon (no barging)
 *   bit  2      HELD
 *   bits 3-24   tid     holder's thread (a Linux tid is below 2^22)
 *   bits 25-48  sid     holder's session (the daemon's fast id, never 0)
 *   bits 49-63  seq     tokens given since the cell's base: token = base + seq
 *
 * The state table. "me" is (my sid, my tid); a step is one atomic
 * instruction, and a party may stop (die) between any two of them.
 *
 *   state (word)          who     step                          next
 *   --------------------  ------  ----------------------------  ----------------
 *   free, seq s           client  CAS -> held(me), seq s+1      held(me); then
 *                                 (s < SEQ_MAX)                 token = base+s+1,
 *                                                               RLock depth := 1
 *   free, seq SEQ_MAX     client  -                             ask the daemon
 *   held(me)              client  RLock: depth += 1 (no CAS:    held(me)
 *                                 only the holder writes depth)
 *   held(me), depth > 1   client  RLock: depth -= 1             held(me)
 *   held(me), depth 1     client  CAS -> free, seq kept         free
 *   held(me), depth 1,    client  next N (N != me) read, then   held(N); then wake
 *   PARKED, next N,               CAS -> PARKED, held(N),       N, send OP_SYNC
 *   seq s < SEQ_MAX               seq s+1                       (no answer)
 *   held(me), depth 1,    client  ask the daemon                -
 *   PARKED, next 0 or me
 *   held(me), waiting     client  (a watcher) load: token =     goes on as holder
 *   for it                        base + seq
 *   held(X), X != me      client  non-blocking: answer False;   -
 *                                 else ask the daemon
 *   PARKED set            client  ask the daemon (RLock depth   -
 *                                 steps above excepted)
 *   CLAIM set             client  ask the daemon, for every     -
 *                                 step and look
 *   any                   daemon  fetch_or CLAIM                claimed; the word
 *                                                               as found is input
 *                                                               to the core
 *   claimed               daemon  store next (below), then the  published
 *                                 core's state, PARKED if it
 *                                 has waiters
 *
 * Hand-off. A waiter whose thread reads its session's socket while it
 * waits asks with `watch`: it watches the word too, and sleeps on the
 * cell's `wake` futex (fastwake.h). While such a waiter is the first, the
 * daemon writes its owner bits in `next`; the holder's release then makes
 * it the holder in one CAS, with the next token, and wakes it. The waiter
 * sees the word name it and goes on, without a trip through the daemon;
 * the releaser's OP_SYNC (or any claim before it) makes the daemon take the
 * new holder in, answer the waiter's call as granted with that same token
 * (the client drops that late answer), and name the waiter after it.
 *
 * What that keeps true:
 * - No barging: the daemon sets PARKED before it answers nobody yet (the
 *   waiter is parked) and clears it only when its queue is empty, so a
 *   client's CAS from free never passes a waiter.
 * - Tokens are exact: seq grows by one with every acquire, the daemon's
 *   grants included, and base changes only when the daemon publishes a
 *   word it holds claimed in a state other than held-by-a-fast-holder (it
 *   folds seq into base then). A fast acquirer reads base after its CAS,
 *   while it holds, so it reads the base its seq counts from.
 * - Death: a word held by a session is found and freed by the daemon when
 *   the session ends (it claims every object the session has open), and a
 *   word that names a session the daemon does not know is free.
 * - Hand-off goes only to the waiter the daemon named, and never to one
 *   that stopped waiting: next is written only while the word is claimed
 *   and before the word is published, so a releaser that read the word
 *   then next reads the next of that word. When the named waiter leaves
 *   the queue (it timed out, or its session ended) during a hold the
 *   releaser may have read next in, the daemon publishes that hold with
 *   CLAIM kept (the hold is fenced): the releaser's CAS fails and it asks
 *   the daemon. Without that, a word published again unchanged (ABA) would
 *   let a stale next through.
 * - RLock depth is written by the holder only while the word names it, and
 *   by the daemon only when it grants the lock (the holder is then not
 *   running in the fast path) or serves the holder's own request.
 *
 * Semaphore word: bit 0 CLAIM, bit 1 PARKED, bits 2-63 the value. Waiters
 * exist only at value 0, and then the word is PARKED, so a release goes to
 * the daemon, which hands the permit to the first waiter.
 *
 * Owned semaphore (a BoundedSemaphore unless opened PT_OPEN_UNOWNED): what
 * each session holds comes back when it ends, so it is counted in a slot of
 * the session's own, a cell of the same group that holds a signed count in
 * its first eight bytes. The word lets one client at a time be between its
 * CAS and its slot's update, and names it:
 *
 *   bit  0      CLAIM
 *   bit  1      PARKED
 *   bit  2      BUSY    the named slot's client has changed the value and
 *                       not yet its slot
 *   bit  3      MANY    slots other than the named one changed since the
 *                       daemon last published the word
 *   bits 4-27   slot    the slot of the last step (the daemon's id for it)
 *   bits 28-63  value
 *
 *   state (word)          who     step                          next
 *   --------------------  ------  ----------------------------  ----------------
 *   no flag, no BUSY      client  CAS -> value - 1 (acquire,    BUSY, my slot
 *                                 value > 0) or value + n
 *                                 (release, within the bound),
 *                                 BUSY, slot := mine, MANY if
 *                                 another slot was named
 *   BUSY, my slot         client  slot += 1 or -= n (a load     BUSY, my slot
 *                                 and a store: only I write it)
 *   BUSY, my slot         client  fetch_and ~BUSY               not BUSY
 *   a flag or BUSY        client  ask the daemon                -
 *   not BUSY              daemon  claim: read the named slot    claimed
 *                                 (every slot with MANY) and
 *                                 add its change to its hold
 *   BUSY, slot s          daemon  claim: s's session holds the  claimed; published
 *                                 total less the value and the  only by the next
 *                                 other holds (every other      claim, after the
 *                                 slot is at rest)              client's fetch_and
 *
 * The total (value and every hold) is the daemon's to change: a client's
 * step moves permits between the value and its own slot. So a session that
 * dies between any two of its steps holds exactly what the total says, and
 * gets it back. A release through the word of more than the session holds
 * leaves its slot short; the daemon counts the difference down from the
 * other holders, oldest first, as a release through it would.
 *
 * Event word: bit 2 SET. Only the daemon writes it (set and clear wake and
 * answer waiters); is_set is a load.
 *
 * Nothing in a cell is trusted by the daemon: a client may write anything
 * in the words of its group, so every decode clamps and checks. That can
 * break objects the client could open, never the daemon or other groups.
 */
#ifndef PT_FASTWORD_H
#define PT_FASTWORD_H

#include <stdatomic.h>
#include <stdint.h>

#define PT_FAST_CELL_SIZE 64u

#define PT_FW_CLAIM  ((uint64_t)1 << 0)
#define PT_FW_PARKED ((uint64_t)1 << 1)
#define PT_FW_HELD   ((uint64_t)1 << 2)
#define PT_FW_SET    PT_FW_HELD
#define PT_FW_FLAGS  (PT_FW_CLAIM | PT_FW_PARKED)

#define PT_FW_TID_SHIFT 3
#define PT_FW_TID_BITS  22
#define PT_FW_SID_SHIFT 25
#define PT_FW_SID_BITS  24
#define PT_FW_SEQ_SHIFT 49
#define PT_FW_SEQ_BITS  15

#define PT_FW_TID_MAX ((1u << PT_FW_TID_BITS) - 1)
#define PT_FW_SID_MAX ((1u << PT_FW_SID_BITS) - 1)
#define PT_FW_SEQ_MAX ((1u << PT_FW_SEQ_BITS) - 1)

#define PT_FW_SEM_SHIFT 2
#define PT_FW_SEM_MAX   ((int64_t)(UINT64_MAX >> PT_FW_SEM_SHIFT))

#define PT_FW_BUSY       ((uint64_t)1 << 2)
#define PT_FW_MANY       ((uint64_t)1 << 3)
#define PT_FW_SLOT_SHIFT 4
#define PT_FW_SLOT_BITS  24
#define PT_FW_SLOT_MAX   ((1u << PT_FW_SLOT_BITS) - 1)
#define PT_FW_OSEM_SHIFT 28
#define PT_FW_OSEM_MAX   ((int64_t)(UINT64_MAX >> PT_FW_OSEM_SHIFT))

/* One object's shared state: a cache line, so two busy objects never share
 * one. */
typedef struct pt_fast_cell {
    _Atomic uint64_t word;
    _Atomic uint64_t base;  /* Lock/RLock: the token of seq 0 */
    _Atomic uint32_t depth; /* RLock: recursion level of the holder */
    uint32_t kind;          /* PT_KIND_*: written by the daemon, shown only */
    _Atomic uint64_t count; /* Semaphore: acquires through the word (counters) */
    /* Lock/RLock: owner bits of the first waiter when the holder may hand
     * the lock to it through the word, else 0. Written by the daemon only
     * while it holds the word claimed. */
    _Atomic uint64_t next;
    /* Lock/RLock: a futex waiters watching the word sleep on; bumped, and
     * the sleeper woken, when a lock is handed to it or an answer is sent
     * to its session (fastwake.c). */
    _Atomic uint32_t wake;
    uint8_t pad[PT_FAST_CELL_SIZE - 44];
} pt_fast_cell;

_Static_assert(sizeof(pt_fast_cell) == PT_FAST_CELL_SIZE, "a cell is one cache line");

/* What a client step says: done, not possible now (a non-blocking acquire
 * of a held object: the answer is False), or ask the daemon; a release
 * may also have handed the lock to the waiter the cell names. */
enum { PT_FAST_SLOW = -1, PT_FAST_NO = 0, PT_FAST_OK = 1, PT_FAST_HANDED = 2 };

/* A Lock/RLock word taken apart. */
typedef struct pt_fast_lock_view {
    int held;
    uint32_t tid;
    uint32_t sid;
    uint32_t seq;
} pt_fast_lock_view;

static inline void pt_fast_lock_decode(uint64_t w, pt_fast_lock_view *v)
{
    v->held = (w & PT_FW_HELD) != 0;
    v->tid = (uint32_t)(w >> PT_FW_TID_SHIFT) & PT_FW_TID_MAX;
    v->sid = (uint32_t)(w >> PT_FW_SID_SHIFT) & PT_FW_SID_MAX;
    v->seq = (uint32_t)(w >> PT_FW_SEQ_SHIFT) & PT_FW_SEQ_MAX;
}

static inline uint64_t pt_fast_lock_encode(const pt_fast_lock_view *v)
{
    uint64_t w = (uint64_t)(v->seq & PT_FW_SEQ_MAX) << PT_FW_SEQ_SHIFT;

    if (v->held)
        w |= PT_FW_HELD | (uint64_t)(v->tid & PT_FW_TID_MAX) << PT_FW_TID_SHIFT |
             (uint64_t)(v->sid & PT_FW_SID_MAX) << PT_FW_SID_SHIFT;
    return w;
}

/* The owner bits a holder (sid, tid) puts in the word. */
static inline uint64_t pt_fast_owner(uint32_t sid, uint32_t tid)
{
    return PT_FW_HELD | (uint64_t)(tid & PT_FW_TID_MAX) << PT_FW_TID_SHIFT |
           (uint64_t)(sid & PT_FW_SID_MAX) << PT_FW_SID_SHIFT;
}

#define PT_FW_OWNER_MASK                                                                           \
    (PT_FW_HELD | (uint64_t)PT_FW_TID_MAX << PT_FW_TID_SHIFT |                                     \
     (uint64_t)PT_FW_SID_MAX << PT_FW_SID_SHIFT)

/* ---- client steps (fastword.c) ---- */

/* Lock/RLock acquire. recursive: an RLock (its holder may take it again).
 * On PT_FAST_OK *token is the fencing token. */
int pt_fast_lock_acquire(pt_fast_cell *c, uint32_t sid, uint32_t tid, int recursive, int blocking,
                         uint64_t *token);
/* Lock/RLock release by its holder; anything else asks the daemon. With
 * waiters parked, PT_FAST_HANDED: the lock went to the first of them, *to
 * (its owner bits), which the caller wakes (fastwake.h). */
int pt_fast_lock_release(pt_fast_cell *c, uint32_t sid, uint32_t tid, int recursive, uint64_t *to);
/* A waiter watching the word: PT_FAST_OK with *token when the lock was
 * handed to (sid, tid), else PT_FAST_NO. */
int pt_fast_lock_taken(pt_fast_cell *c, uint32_t sid, uint32_t tid, uint64_t *token);
/* Lock.locked(): 1 or 0. */
/* Is the word claimed? A look that answers from the word (locked,
 * is_owned, is_set) asks the daemon instead while it is: a daemon that
 * handed its connections over leaves its words claimed, not current. */
int pt_fast_claimed(pt_fast_cell *c);
int pt_fast_lock_locked(pt_fast_cell *c);
/* RLock depth held by (sid, tid), 0 if it is not the holder. */
uint32_t pt_fast_lock_owned(pt_fast_cell *c, uint32_t sid, uint32_t tid);

/* Semaphore acquire of one permit; *value gets the value after. */
int pt_fast_sem_acquire(pt_fast_cell *c, int blocking, int64_t *value);
/* Semaphore release(n); bound < 0 for none. *value gets the value after. */
int pt_fast_sem_release(pt_fast_cell *c, uint64_t n, int64_t bound, int64_t *value);
/* Owned semaphore: the same, counted in slot, whose id in words is id. */
int pt_fast_osem_acquire(pt_fast_cell *c, pt_fast_cell *slot, uint32_t id, int blocking,
                         int64_t *value);
int pt_fast_osem_release(pt_fast_cell *c, pt_fast_cell *slot, uint32_t id, uint64_t n,
                         int64_t bound, int64_t *value);
/* The value, or PT_FAST_SLOW while the daemon holds the word. */
int pt_fast_sem_value(pt_fast_cell *c, int owned, int64_t *value);

int pt_fast_event_is_set(pt_fast_cell *c);

/*
 * After the daemon that had the word is gone (its session's connection
 * ended), a client takes the word's last state to the daemon that replaces
 * it: it sets CLAIM for good, so no client changes the word any more, and
 * reads what it said at that instant. The numbers are the wire's
 * Reclaim.State.
 */
enum {
    PT_FAST_RECLAIM_UNKNOWN = 0, /* the word does not tell (the daemon kept it to itself) */
    PT_FAST_RECLAIM_HELD = 1,    /* Lock/RLock held by sid: tid, depth, token */
    PT_FAST_RECLAIM_FREE = 2,    /* Lock/RLock not held by sid */
    PT_FAST_RECLAIM_VALUE = 3,   /* Semaphore: value */
    PT_FAST_RECLAIM_SLOT = 4     /* owned semaphore: value is the session's slot's count */
};

typedef struct pt_fast_reclaim {
    int state;
    uint32_t tid;
    uint32_t depth;
    uint64_t token;
    int64_t value;
} pt_fast_reclaim;

/* kind is the object's PT_KIND_*; Events tell nothing (only the daemon
 * writes them), nor a Lock's word to a session with no id in words (sid
 * 0: it took nothing through them, and cannot tell itself there). */
void pt_fast_reclaim_read(pt_fast_cell *c, int kind, uint32_t sid, pt_fast_reclaim *out);
/* An owned semaphore's: what the session's slot (id) counts, once a step
 * of this process that the word names as busy has counted there. */
void pt_fast_reclaim_slot(pt_fast_cell *c, pt_fast_cell *slot, uint32_t id, pt_fast_reclaim *out);

/* ---- one step: one atomic access to a cell ---- */

/* The protocol's exhaustive test (tests/unit/test_fast_protocol.c) builds
 * the steps with these defined, to run another party before each access
 * and to see what it read. */
#ifndef PT_FW_STEP
#define PT_FW_STEP() ((void)0)
#endif
#ifndef PT_FW_SEEN
#define PT_FW_SEEN(v) (v)
#endif

/* The side fields are relaxed: the word's acquire and release order them. */
static inline uint32_t pt_fw_depth(pt_fast_cell *c)
{
    PT_FW_STEP();
    return PT_FW_SEEN(atomic_load_explicit(&c->depth, memory_order_relaxed));
}

static inline void pt_fw_set_depth(pt_fast_cell *c, uint32_t depth)
{
    PT_FW_STEP();
    atomic_store_explicit(&c->depth, depth, memory_order_relaxed);
}

static inline uint64_t pt_fw_base(pt_fast_cell *c)
{
    PT_FW_STEP();
    return PT_FW_SEEN(atomic_load_explicit(&c->base, memory_order_relaxed));
}

static inline void pt_fw_set_base(pt_fast_cell *c, uint64_t base)
{
    PT_FW_STEP();
    atomic_store_explicit(&c->base, base, memory_order_relaxed);
}

static inline uint64_t pt_fw_count(pt_fast_cell *c)
{
    PT_FW_STEP();
    return PT_FW_SEEN(atomic_load_explicit(&c->count, memory_order_relaxed));
}

static inline uint64_t pt_fw_next(pt_fast_cell *c)
{
    PT_FW_STEP();
    return PT_FW_SEEN(atomic_load_explicit(&c->next, memory_order_relaxed));
}

static inline void pt_fw_set_next(pt_fast_cell *c, uint64_t next)
{
    PT_FW_STEP();
    atomic_store_explicit(&c->next, next, memory_order_relaxed);
}

/* An owned semaphore's slot: the permits its session took through the word
 * less those it gave back through it. */
static inline int64_t pt_fw_slot(pt_fast_cell *slot)
{
    PT_FW_STEP();
    return (int64_t)PT_FW_SEEN(atomic_load_explicit(&slot->word, memory_order_relaxed));
}

static inline void pt_fw_set_slot(pt_fast_cell *slot, int64_t count)
{
    PT_FW_STEP();
    atomic_store_explicit(&slot->word, (uint64_t)count, memory_order_relaxed);
}

/* ---- daemon steps (daemon/fastsync.c) ---- */

/* Claim the word: clients step aside until pt_fast_publish. Returns the
 * word as found, CLAIM cleared (a client may have set it: never trusted). */
static inline uint64_t pt_fast_claim(pt_fast_cell *c)
{
    PT_FW_STEP();
    return PT_FW_SEEN(atomic_fetch_or_explicit(&c->word, PT_FW_CLAIM, memory_order_acq_rel)) &
           ~PT_FW_CLAIM;
}

/* Store the word the core's state gives: everything written to the cell
 * before is seen by whoever reads the word after. With CLAIM clear clients
 * may use it; with CLAIM set the daemon keeps it its own. */
static inline void pt_fast_publish(pt_fast_cell *c, uint64_t w)
{
    PT_FW_STEP();
    atomic_store_explicit(&c->word, w, memory_order_release);
}

#endif /* PT_FASTWORD_H */
