/*
 * core.h - the primitives as non-blocking state machines.
 *
 * The core holds every named object, every session's handles and every
 * parked waiter. It does no I/O and reads no clock: the caller passes the
 * time (nanoseconds on one monotonic clock) into each call. Every answer to
 * a request, immediate or later (a release, notify, set, barrier trip,
 * timeout or session end wakes it), leaves through the sink callback, so the
 * daemon turns each into one response frame and the unit tests capture them.
 *
 * Single-threaded by design: the daemon calls it from its one loop thread.
 */
#ifndef PT_CORE_H
#define PT_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pythread.h"
/* PT_NAME_MAX and pt_name_valid: the name rule, the same the client checks. */
#include "names.h"

#define PT_NS_PER_SEC    1000000000ull
#define PT_DEADLINE_NONE UINT64_MAX

/* Operations; the numbers are the wire's Op numbers. */
typedef enum {
    PT_OP_HELLO = 1, /* handled by the daemon, never by the core */
    PT_OP_OPEN = 2,
    PT_OP_CLOSE = 3,
    PT_OP_UNLINK = 4,
    PT_OP_ACQUIRE = 5,
    PT_OP_RELEASE = 6,
    PT_OP_STATE = 7,
    PT_OP_COND_WAIT = 8,
    PT_OP_NOTIFY = 9,
    PT_OP_EVENT_SET = 10,
    PT_OP_EVENT_CLEAR = 11,
    PT_OP_EVENT_WAIT = 12,
    PT_OP_BARRIER_WAIT = 13,
    PT_OP_BARRIER_ACTION_DONE = 14,
    PT_OP_BARRIER_ABORT = 15,
    PT_OP_BARRIER_RESET = 16,
    /* 17-20 are the daemon's inspection */
    PT_OP_SYNC = 21, /* bring a Lock's word up to date; no answer */
    PT_OP_MAX_ = 22
} pt_op;

/* One request, in core terms (the daemon copies it out of the protobuf
 * message; name points into that message and is not kept). */
typedef struct pt_call {
    uint64_t id;
    pt_op op;
    uint64_t thread; /* owner = (session, thread) */
    uint32_t handle;
    int blocking;
    double timeout; /* seconds; -1 = Python's None */
    uint32_t count; /* release(n), notify(n) (0 = all) */
    const char *name;
    size_t name_len;
    int kind;
    uint32_t flags; /* PT_OPEN_* */
    uint32_t mode;
    int64_t value;        /* semaphore initial value */
    uint32_t parties;     /* barrier */
    uint32_t lock_handle; /* condition's lock, 0 = own RLock */
    int has_action;       /* barrier wait: this party can run the action */
    int32_t status;       /* barrier action result */
    int watch;            /* Lock/RLock acquire: may be handed the lock through its word */
    int fail_deadlock;    /* Lock/RLock acquire, Condition acquire or wait: a deadlock this
                             call's wait closes fails it with PT_EDEADLK (else it waits on) */
} pt_call;

/* What OP_STATE and OP_OPEN report about an object. */
typedef struct pt_state {
    int kind;
    int locked;
    uint32_t owner_depth; /* RLock level held by the caller's owner */
    int64_t value;
    int64_t initial;
    int is_set;
    uint32_t parties;
    uint32_t n_waiting;
    int broken;
    double timeout;
    uint64_t token;
} pt_state;

/* One answer. Pointers are valid only during the sink call. */
typedef struct pt_result {
    uint64_t id;
    uint64_t thread;     /* the caller's, as its request said */
    int status;          /* 0 or PT_E* */
    const char *message; /* set when status != 0 */
    int ok;              /* acquired / notified / flag / not timed out */
    int64_t value;       /* barrier index, notify count, semaphore value */
    uint64_t token;      /* fencing token */
    uint32_t handle;     /* OP_OPEN */
    int created;         /* OP_OPEN */
    int run_action;      /* OP_BARRIER_WAIT */
    uint32_t fast;       /* OP_OPEN: the object's shared cell, 0 = none */
    uint32_t fast_slot;  /* OP_OPEN of an owned semaphore: the session's slot */
    const pt_state *state;
} pt_result;

typedef struct pt_core pt_core;
typedef struct pt_session pt_session;

/* Called for every answer; session is the one the request came from. */
typedef void (*pt_sink_fn)(void *ctx, pt_session *session, const pt_result *result);

typedef struct pt_peer {
    pid_t pid;
    uid_t uid;
    gid_t gid;
} pt_peer;

typedef struct pt_core_limits {
    uint32_t max_objects;             /* named objects in all */
    uint32_t max_handles_per_session; /* open handles of one session */
    uint32_t max_waiters_per_session; /* parked requests of one session */
    uint32_t max_objects_per_uid;     /* named objects one user created */
    uint32_t max_handles_per_uid;     /* open handles of all of one user's sessions */
    uint32_t max_waiters_per_uid;     /* parked requests of all of one user's sessions */
} pt_core_limits;

/*
 * The most heap one waiter, handle or object can hold, in bytes, for the
 * per-uid quotas below and the daemon's measure of its load. On x86_64 with
 * glibc (a malloc'd block costs its size plus 8, rounded up to 16):
 *
 *   waiter   pt_waiter 152 -> 160; its slot in the deadline heap and
 *            its bucket in the index of lock waits by owner (deadlock.c),
 *            whose capacities double, <= 16 each; a waiter on an owned
 *            semaphore reserves a hold record, 72 -> 80          <= 272
 *   handle   a 24-byte slot in a calloc'd chunk of 64 (1536 -> 1552) plus
 *            the chunk's pointer: 24.4; on an owned semaphore with the
 *            fast path, its session's hold record, 72 -> 80, and slot, a
 *            cell in shared memory, 64                            <= 176
 *   object   pt_obj 256 + a name of up to 255 + NUL -> 528; a Condition
 *            without a named lock adds its own RLock, 257 -> 272; its
 *            share of the name table, 1/4 to 3/4 full: <= 4 pointers,
 *            32; its cell in shared memory (fastword.h), 64        <= 896
 *
 * So at the per-uid defaults one user holds at most 65536 * 272 = 17 MiB of
 * waiters, 131072 * 176 = 22 MiB of handles and 32768 * 896 = 28 MiB of
 * objects (with the daemon's 16 MiB of unread output and 8 MiB of held input:
 * 91 MiB). A standing deadlock costs nothing more: it is marked on the
 * locks and waits it is made of. Checked at compile time against the structures (waiter.c,
 * session.c, registry.c).
 */
#define PT_MEM_WAITER 272u
#define PT_MEM_HANDLE 176u
#define PT_MEM_OBJECT 896u

/* Defaults used when a limit is 0. */
#define PT_DEFAULT_MAX_OBJECTS         1000000u
#define PT_DEFAULT_MAX_HANDLES         65536u
#define PT_DEFAULT_MAX_WAITERS         65536u
#define PT_DEFAULT_MAX_OBJECTS_PER_UID 32768u
#define PT_DEFAULT_MAX_HANDLES_PER_UID 131072u
#define PT_DEFAULT_MAX_WAITERS_PER_UID 65536u

/* What a caller wants of an object (see pt_core_access in uid.c for the
 * whole rule): read and write bits of its class, or to unlink it. */
#define PT_ACCESS_READ   4
#define PT_ACCESS_WRITE  2
#define PT_ACCESS_USE    (PT_ACCESS_READ | PT_ACCESS_WRITE)
#define PT_ACCESS_UNLINK 8
/* 0 if peer may do want to an object created by uid/gid with mode, else
 * PT_EPERM. Inspection uses it with PT_ACCESS_READ for the detail (state,
 * counters, holders and waiters). */
int pt_core_access(const pt_peer *peer, uid_t uid, gid_t gid, uint32_t mode, int want);
/* Sessions open with this uid (for the daemon's per-uid session limit). */
uint32_t pt_core_uid_sessions(const pt_core *core, uid_t uid);
/* What one uid holds now (for tests and inspection): 0s for a uid unseen. */
typedef struct pt_core_uid_usage {
    uint32_t objects; /* named objects it created that still exist */
    uint32_t sessions;
    uint32_t handles; /* across its sessions */
    uint32_t waiters; /* across its sessions */
} pt_core_uid_usage;
void pt_core_uid_usage_get(const pt_core *core, uid_t uid, pt_core_uid_usage *out);

pt_core *pt_core_new(const pt_core_limits *limits, pt_sink_fn sink, void *sink_ctx);
/* Ends every session (no answers are sent) and frees everything. */
void pt_core_free(pt_core *core);
/* Fencing tokens continue from base: a Lock or RLock created afterwards
 * gives tokens above it, and above every token given before it was created
 * (so a name made again, after an unlink or a transient object's end, never
 * goes back either). pythreadd passes a number larger than any token of
 * its previous runs (its start on the wall clock, pt_daemon_token_base);
 * the core reads no clock. Call it before the first request; 0 (the
 * default) starts tokens at 1. */
void pt_core_set_token_base(pt_core *core, uint64_t base);

/* A new session; udata is the caller's (the daemon's connection). NULL when
 * out of memory. */
pt_session *pt_core_session_new(pt_core *core, const pt_peer *peer, void *udata);
void *pt_core_session_udata(const pt_session *s);
uint64_t pt_core_session_id(const pt_session *s);
/* The session has ended: give back every lock, owned permit and queue place
 * it held, break every barrier it was waiting in, close its handles, and
 * answer the waiters this frees at once (never the ended session itself). */
void pt_core_session_end(pt_core *core, pt_session *s, uint64_t now);

/* Apply one request. Every answer leaves through the sink: at once, or later
 * when the request is parked as a waiter. */
void pt_core_call(pt_core *core, pt_session *s, const pt_call *call, uint64_t now);

/* Earliest deadline of a parked waiter, or PT_DEADLINE_NONE. */
uint64_t pt_core_next_deadline(const pt_core *core);
/* Answer every waiter whose deadline is <= now. */
void pt_core_expire(pt_core *core, uint64_t now);

/* A Lock or RLock as a call on a handle would find it, for the cluster's
 * owned locks (daemon/cluster_core.c): what decides whether a call's outcome
 * can be known before the log orders it. */
typedef struct pt_core_lock_view {
    uint64_t serial;          /* the lock's (a Condition's own lock's) */
    int kind;                 /* of the handle's object: Lock, RLock or Condition */
    uint32_t depth;           /* 0 = free */
    const pt_session *holder; /* NULL when free */
    uint64_t holder_thread;
    int queued; /* its queue has waiters */
    uint32_t refs;
    uint32_t conds;  /* Conditions over it */
    uint64_t token;  /* the last token given (or the floor it starts above) */
    int token_given; /* token is one given */
} pt_core_lock_view;
/* 0 and *out for an open handle of s on a Lock, RLock or Condition; -1
 * for any other handle. */
int pt_core_lock_view_get(const pt_core *core, const pt_session *s, uint32_t handle,
                          pt_core_lock_view *out);
/* The floor new objects' tokens start from, exactly as it stands, and put
 * back: a call answered ahead of its place in the cluster's log raises it
 * only when it reaches that place. */
uint64_t pt_core_token_floor(const pt_core *core);
void pt_core_token_floor_put(pt_core *core, uint64_t floor);
/* The Lock or RLock with this serial (if alive) gives its next token past
 * jump more: tokens given that the core never saw stay below it. */
void pt_core_lock_token_jump(pt_core *core, uint64_t serial, uint64_t jump);
/* The Lock or RLock with this serial (if alive) has its token put back to
 * what a view showed (the floor unchanged). */
void pt_core_lock_token_put(pt_core *core, uint64_t serial, uint64_t token, int given);
/* fn(ctx, serial) as an object is freed. */
void pt_core_set_freed_hook(pt_core *core, void (*fn)(void *ctx, uint64_t serial), void *ctx);

/* Give back what a past peak left: the spare waiters and hold records kept
 * for reuse, the deadline heap's and the name table's room beyond what is
 * in use, and the handle tables of sessions with no handle open. Nothing
 * changes but memory; the caller decides when it is worth the time (it
 * costs O(sessions + spare + objects)). */
void pt_core_trim(pt_core *core);

/*
 * The fast path (proto/fastword.h). Some objects keep their hot state in a
 * word shared with the clients, who change it without a request while
 * nobody waits. The core stays the authority: before it reads or changes
 * such an object in an entry (call, expiry, session end, sync), it has the
 * daemon claim the word and report what it says, an input like a request;
 * after the entry the daemon publishes the state of every object claimed
 * (pt_core_fast_next). Without hooks nothing changes.
 */
typedef struct pt_obj pt_core_obj;

/* What a word says, as the daemon read it. */
typedef struct pt_core_fast_view {
    int keep;           /* nothing to take from the word (only the daemon writes it) */
    pt_session *holder; /* Lock/RLock holder, NULL when free */
    uint64_t thread;
    uint32_t depth;    /* RLock recursion level */
    uint64_t token;    /* the last fencing token given */
    int64_t value;     /* Semaphore */
    uint64_t acquires; /* Semaphore: acquires through the word since the last claim */
    uint32_t slot;     /* owned Semaphore: the slot the word names, 0 = none */
    uint8_t busy;      /* ... which has not yet counted its step */
    uint8_t many;      /* other slots changed too */
} pt_core_fast_view;

/* What the daemon publishes. */
typedef struct pt_core_fast_state {
    uint32_t cell;
    int kind;
    pt_session *holder; /* Lock/RLock */
    uint64_t thread;
    uint32_t depth;
    uint64_t token;
    int waiters; /* calls parked on the object */
    /* Lock/RLock: the first waiter, when it watches the word and may be
     * handed the lock there (fastword.h), else NULL. */
    pt_session *next;
    uint64_t next_thread;
    int64_t value; /* Semaphore */
    int owned;     /* Semaphore with owned permits */
    int busy;      /* owned: a slot is behind its step; leave the word claimed */
    int is_set;    /* Event */
} pt_core_fast_state;

typedef struct pt_core_fast_hooks {
    /* A named object is created: its cell, 0 for none. owned: a semaphore
     * whose permits are owned (its word is laid out for slots). */
    uint32_t (*created)(void *ctx, int kind, int owned, uid_t uid, gid_t gid, uint32_t mode);
    /* Claim cell's word and say what it holds. */
    void (*claim)(void *ctx, uint32_t cell, int kind, pt_core_fast_view *view);
    /* The object is gone; its cell is free. */
    void (*freed)(void *ctx, uint32_t cell);
    /* Owned semaphores: a session's slot beside the object's cell (its id
     * in words, 0 for none), what it counts now, and its end. */
    uint32_t (*slot_new)(void *ctx, uint32_t cell);
    int64_t (*slot_read)(void *ctx, uint32_t slot);
    void (*slot_free)(void *ctx, uint32_t slot);
    /* Only a look, for metrics (NULL: none): the acquires clients made
     * through cell's word since the core last had it claimed, token being
     * the last fencing token the core knows of the object. */
    uint64_t (*unread)(void *ctx, uint32_t cell, int kind, uint64_t token);
} pt_core_fast_hooks;

void pt_core_set_fast_hooks(pt_core *core, const pt_core_fast_hooks *hooks, void *ctx);
/* Next object claimed since the last publish, 0 when none is left. */
int pt_core_fast_next(pt_core *core, pt_core_fast_state *out);
/* What a session's word said of one of its handles when the daemon that
 * had the word stopped (its process read it, with CLAIM set so it stayed). */
typedef enum {
    PT_RECLAIM_UNKNOWN, /* the word does not tell */
    PT_RECLAIM_HELD,    /* Lock/RLock held by (session, thread), depth, token */
    PT_RECLAIM_FREE,    /* Lock/RLock not held by the session */
    PT_RECLAIM_VALUE,   /* Semaphore (permits not owned): value */
    PT_RECLAIM_SLOT     /* owned semaphore: value is what the session's slot counts */
} pt_reclaim_state;

typedef struct pt_core_reclaim {
    pt_session *session;
    uint32_t handle;
    int state; /* pt_reclaim_state */
    uint64_t thread;
    uint32_t depth;
    uint64_t token;
    int64_t value;
} pt_core_reclaim;

/* The daemon restarted (its journal replayed), and the words are gone with
 * the daemon that had them. Sessions stay (the daemon ends those no process
 * takes up again); what the core read of the words last is its state, but
 * for what the reclaims say the words held: a lock a session's word names
 * as held by it is its, one its word leaves free is not (held ones win, the
 * first for an object; then the first waiter of a lock left free gets it),
 * a semaphore's value is the first one reported, and what an owned
 * semaphore's slot counted since it was last read joins its session's hold
 * (the value gives or takes the difference). Each Lock/RLock with a
 * word gives its next token past token_jump more than its last, slots end
 * (owned permits stay as last counted), and objects get new cells
 * (published after). */
void pt_core_restart(pt_core *core, uint64_t now, uint64_t token_jump,
                     const pt_core_reclaim *reclaims, size_t n);
/* The words the core's objects name are gone (a replayed core, until its
 * pt_core_restart): nothing reads or frees them meanwhile. */
void pt_core_words_lost(pt_core *core);
/* Whether the session has request id parked (it will be answered). */
int pt_core_session_waits(const pt_session *s, uint64_t id);
/* The daemon's data for the session from now on. */
void pt_core_session_set_udata(pt_session *s, void *udata);
/* Answers go to sink from now on. */
void pt_core_set_sink(pt_core *core, pt_sink_fn sink, void *ctx);
/* Claim every object with a cell (before inspection reads them). */
void pt_core_fast_claim_all(pt_core *core);
/* The acquires made through words that no claim has taken in yet, summed
 * over every object with a cell: a look that changes nothing (metrics). */
uint64_t pt_core_fast_unread(const pt_core *core);
/* The cell of the Lock or RLock a session's handle names, 0 for none. */
uint32_t pt_core_fast_lock_cell(pt_core *core, pt_session *s, uint32_t handle);

/* Counts for inspection and tests. */
typedef struct pt_core_stats {
    uint64_t objects;
    uint64_t sessions;
    uint64_t waiters;
    uint64_t calls;
    uint64_t handles;            /* open, across every session */
    uint64_t spare;              /* waiters and hold records kept for reuse */
    uint64_t deadlocks;          /* found since the core began (over its journal's life) */
    uint64_t deadlocks_standing; /* found and still standing */
} pt_core_stats;
void pt_core_get_stats(const pt_core *core, pt_core_stats *out);

/* ---- Metrics (metrics.c) ---------------------------------------------
 * What the core served in all, for pythreadd --metrics: answers by
 * operation and result, acquisitions and how they went, the limits that
 * refused, and two histograms. Unlike an object's counters these are no
 * part of the state: no answer depends on them, no image keeps them, and
 * the daemon clears them after a replay, so they count what its process
 * served. Each count is one addition on a path that does more anyway. */

/* An answer's result: True, False (not acquired, timed out, flag clear),
 * or its error, PT_E* code -n at index PT_RESULT_FALSE + n. */
#define PT_RESULT_OK    0
#define PT_RESULT_FALSE 1
#define PT_RESULTS      (2 + 17) /* PT_EINVAL (-1) .. PT_EINTERNAL (-17) */
int pt_core_result_index(int status, int ok);

/* The core's limits, each of which refuses what would pass it. */
typedef enum pt_core_limit {
    PT_LIMIT_OBJECTS,         /* --max-objects */
    PT_LIMIT_OBJECTS_PER_UID, /* --max-objects-per-uid */
    PT_LIMIT_HANDLES,         /* --max-handles (per session) */
    PT_LIMIT_HANDLES_PER_UID, /* --max-handles-per-uid */
    PT_LIMIT_WAITERS,         /* --max-waiters (per session) */
    PT_LIMIT_WAITERS_PER_UID, /* --max-waiters-per-uid */
    PT_CORE_LIMITS
} pt_core_limit;

/* The buckets' upper bounds in ns, the same for both histograms (from 10
 * us, about one round trip to the daemon, to 5 min); one bucket more
 * counts what is above the last. */
#define PT_HIST_BUCKETS 22
extern const uint64_t pt_core_hist_bounds[PT_HIST_BUCKETS];

typedef struct pt_core_hist {
    uint64_t n[PT_HIST_BUCKETS + 1]; /* per bucket, not cumulative */
    uint64_t count;
    uint64_t sum; /* ns */
} pt_core_hist;

typedef struct pt_core_metrics {
    uint64_t answers[PT_OP_MAX_][PT_RESULTS]; /* by pt_op, result index */
    /* Successful Lock/RLock/Semaphore acquires the core granted (a
     * Condition's lock and its waits taking it back included), and those
     * done through shared words, counted when the daemon reads a word. */
    uint64_t acquires;
    uint64_t acquires_fast;
    uint64_t contended; /* acquires that found the object unavailable */
    uint64_t handed;    /* Lock/RLock waiters handed the lock through its word */
    uint64_t timeouts;  /* waits of any kind that timed out */
    uint64_t refused[PT_CORE_LIMITS];
    pt_core_hist wait; /* a contended acquire: parked until granted */
    pt_core_hist hold; /* a Lock/RLock hold, from acquire to release */
} pt_core_metrics;

const pt_core_metrics *pt_core_metrics_get(const pt_core *core);
void pt_core_metrics_clear(pt_core *core);

/* Inspection (for list/stat requests): one named object as it is now.
 * Pointers are valid only during the callback. */
typedef struct pt_core_object_info {
    const char *name;
    size_t name_len;
    int kind;
    int transient;
    int unlinked;
    uint32_t refs; /* handles + holds + internal references */
    uint32_t mode;
    uid_t uid; /* creator */
    gid_t gid;
    pt_state state;  /* as OP_STATE reports it to a non-owner */
    uint64_t serial; /* creation order */
} pt_core_object_info;
typedef void (*pt_core_object_fn)(void *ctx, const pt_core_object_info *info);
/* Calls fn for every named object alive, unlinked ones included, oldest
 * first. fn must not call back into the core. */
void pt_core_foreach_object(const pt_core *core, pt_core_object_fn fn, void *ctx);
/* The credentials the session was created with. */
const pt_peer *pt_core_session_peer(const pt_session *s);

/* ---- Inspection detail (inspect.c) ---------------------------------- */

/* Counters of one object since it was created; times in nanoseconds. */
typedef struct pt_core_counters {
    uint64_t acquires;     /* successful Lock/RLock/Semaphore acquires */
    uint64_t contended;    /* acquires that found it unavailable */
    uint64_t handed;       /* of those, Lock/RLock ones handed over through the word */
    uint64_t timeouts;     /* waits of any kind that timed out */
    uint64_t longest_wait; /* over answered waits */
    uint64_t longest_hold; /* over Lock/RLock holds, the current one included */
} pt_core_counters;

/* What inspection tells about one object beyond pt_core_object_info. */
typedef struct pt_core_object_detail {
    pt_core_object_info info;
    uint64_t serial;       /* creation order; the paging cursor */
    uint32_t waiters;      /* parked calls of any kind */
    int owned;             /* semaphore permits given back at session end */
    const char *cond_lock; /* Condition over a named lock: its name, else NULL */
    size_t cond_lock_len;
    pt_core_counters counters; /* at now: the hold going on counts */
    /* What the last restart did to it (pt_restart_mark): restored as
     * journaled, reclaimed through a resuming process's word, released
     * because its holder's session was not taken up; or, while a holder's
     * session is awaited (pt_core_session_awaited), in grace. A Condition
     * shows its lock's. */
    int restart;
    /* The standing deadlock it is in (its number), 0 for none; a Condition
     * shows its lock's. */
    uint64_t deadlock;
    /* The asker may not read the object (its mode): info.state (but its
     * kind), info.refs, waiters, counters, restart and deadlock are 0. */
    int hidden;
} pt_core_object_detail;

/* Calls fn for every named object with serial > after, oldest first, until
 * fn returns non-zero, hiding the detail of those asker (NULL: nobody) may
 * not read. now is the time on the core's clock. Pointers are valid only
 * during the call. */
typedef int (*pt_core_detail_fn)(void *ctx, const pt_core_object_detail *d);
void pt_core_inspect_objects(const pt_core *core, const pt_session *asker, uint64_t after,
                             uint64_t now, pt_core_detail_fn fn, void *ctx);

/* A holder or waiter of an object. */
typedef enum {
    PT_PARTY_HOLDER,
    PT_PARTY_ACQUIRE,   /* waiting to acquire */
    PT_PARTY_REACQUIRE, /* Condition wait, notified or timed out, taking the lock back */
    PT_PARTY_WAIT,      /* Condition/Event wait */
    PT_PARTY_BARRIER    /* Barrier party */
} pt_party_role;

typedef struct pt_core_party {
    pt_party_role role;
    const pt_session *session;
    uint64_t thread; /* 0 when not known (semaphore permits belong to a session) */
    uint64_t count;  /* RLock depth, semaphore permits held */
    uint64_t since;  /* ns on the core's clock; 0 when not known */
    /* The standing deadlock its wait (or, for a holder, its hold) is in,
     * 0 for none. */
    uint64_t deadlock;
    /* A Lock/RLock holder: what its thread waits for now, if anything
     * (waits NULL: nothing). waits_owner says whether that object has an
     * owner to wait for (a Lock or RLock, directly or as a Condition's
     * lock) or not (a Semaphore, Event, Condition waiting for a notify or
     * Barrier: deadlock detection follows no chain through it). */
    const char *waits;
    size_t waits_len;
    int waits_kind;
    int waits_owner;
} pt_core_party;
typedef void (*pt_core_party_fn)(void *ctx, const pt_core_party *p);

/* One named object by name at now: its detail, then (if asker may read it,
 * by the object's mode) fn for each holder and each waiter in queue order.
 * Returns 0, PT_ENOENT or PT_EPERM (the public part filled, out->hidden
 * set, no parties given). */
int pt_core_inspect_object(pt_core *core, const pt_session *asker, const char *name, size_t len,
                           uint64_t now, pt_core_object_detail *out, pt_core_party_fn fn,
                           void *ctx);

typedef struct pt_core_session_info {
    uint64_t id;
    pt_peer peer;
    uint32_t handles;
    uint32_t held;    /* locks held and semaphores with permits held */
    uint32_t waiting; /* calls parked */
} pt_core_session_info;
void pt_core_session_info_get(const pt_session *s, pt_core_session_info *out);

/* ---- Deadlocks (deadlock.c) ---------------------------------------------
 * The wait-for graph of Lock and RLock waits: an owner (session, thread)
 * parked acquiring a Lock or RLock (directly or through a Condition), or a
 * Condition wait taking its lock back, waits for the lock's holder. Each
 * thread waits in one call at a time, so each owner waits for one other.
 * A wait that closes a cycle in which no wait has a timeout is a
 * deadlock: nothing in the cycle can move by itself. It is found when it
 * forms, by following the chain from the lock the new wait is for: a cost
 * of the chain's length (the locks along it are claimed from their words
 * first, so the holders followed are the true ones). A cycle with a timed
 * wait is not one: its timeout breaks it, as in CPython, and it is not
 * reported. Semaphores, Events, Conditions waiting for a notify and
 * Barriers have no owner to wait for: a chain that reaches a wait on one
 * ends there, and nothing is guessed.
 *
 * The wait that closed the cycle fails with PT_EDEADLK when its call asked
 * so (pt_call.fail_deadlock); otherwise it waits on, as CPython's would,
 * and the cycle stands until a wait of it ends (a timeout cannot: it has
 * none; its session ends or its handle closes) or a lock of it is released
 * (a Lock may be released by anyone). Found and standing deadlocks are
 * core state, kept in images; no answer but the PT_EDEADLK depends on them.
 */
typedef enum {
    PT_CYCLE_STANDING, /* every wait of it goes on */
    PT_CYCLE_FAILED,   /* the wait that closed it was failed with PT_EDEADLK */
    PT_CYCLE_BROKEN    /* a wait of it ended, or a lock of it was released */
} pt_cycle_state;

/* One owner of a cycle and the wait it is in. */
typedef struct pt_core_cycle_member {
    const pt_session *session;
    uint64_t thread;
    uint64_t request; /* the waiting call's id */
    /* What it waits for: a Lock or RLock, or a Condition for the
     * Condition's own RLock. */
    int waits_kind;
    const char *waits;
    size_t waits_len;
    /* The Condition over a named lock it waits through, else NULL. */
    const char *via;
    size_t via_len;
    int reacquire; /* a Condition wait taking its lock back */
    /* Who may read what it waits for (pt_core_access): its creator, mode. */
    uid_t uid;
    gid_t gid;
    uint32_t mode;
} pt_core_cycle_member;

/* A deadlock. Pointers are valid only during the call it is given to. */
typedef struct pt_core_cycle {
    uint64_t id;    /* the nth found */
    uint64_t found; /* ns on the core's clock */
    pt_cycle_state state;
    size_t n; /* owners in it */
    /* Member i waits for what member i + 1 holds, the last for what member
     * 0 holds; member 0's wait closed the cycle. shown < n only when the
     * core had no memory to describe them all. */
    const pt_core_cycle_member *members;
    size_t shown;
    /* PT_CYCLE_BROKEN: the member whose wait ended, or whose held lock was
     * released (released 1). */
    size_t broke;
    int released;
} pt_core_cycle;

/* Told of each deadlock when it is found (state STANDING or FAILED; for
 * FAILED before the failure is answered) and of each standing one when it
 * is broken (BROKEN). Either may be NULL; nothing is told while the core
 * is freed. The hooks must not call back into the core. */
typedef struct pt_core_deadlock_hooks {
    void (*found)(void *ctx, const pt_core_cycle *cycle);
    void (*ended)(void *ctx, const pt_core_cycle *cycle);
} pt_core_deadlock_hooks;
void pt_core_set_deadlock_hooks(pt_core *core, const pt_core_deadlock_hooks *hooks, void *ctx);

/* fn for every standing deadlock, oldest first; -1 for want of memory. */
typedef void (*pt_core_cycle_fn)(void *ctx, const pt_core_cycle *cycle);
int pt_core_deadlocks_each(pt_core *core, pt_core_cycle_fn fn, void *ctx);

/* ---- Images (image.c): a core's objects as data, and back ---------- */

/* What a core holds besides its objects. */
typedef struct pt_core_image_head {
    uint64_t token_floor;
    uint64_t next_serial;
    uint64_t next_session_id;
    uint64_t seq;
    uint64_t calls;
    uint64_t deadlocks; /* found so far */
} pt_core_image_head;

/* One object: its own state (who holds it and waits for it are links). */
typedef struct pt_core_image {
    uint64_t serial;
    const char *name; /* "" for a Condition's own RLock */
    size_t name_len;
    int kind;
    int transient, unlinked, anonymous, token_given;
    uint32_t mode;
    uid_t uid;
    gid_t gid;
    uint32_t fast; /* its cell, 0 = none */
    uint64_t token;
    pt_core_counters counters;
    uint64_t lock_serial; /* Condition: its lock */
    int64_t value, initial;
    int owned; /* semaphores */
    int set;   /* Event */
    uint32_t parties;
    double timeout;
    int state, reason; /* Barrier: filling or broken, and why */
    int32_t status;
    /* The lock a standing deadlock's closing wait waits for: its number
     * and when it was found (0: none; a deadlock's other locks are found
     * again from it once the image's links are loaded). */
    uint64_t deadlock, deadlock_found;
} pt_core_image;

/* The head; -1 while a restart is between its words lost and its end. */
int pt_core_image_head_get(const pt_core *core, pt_core_image_head *out);
/* fn for every object, oldest first (a Condition after its lock). */
typedef void (*pt_core_image_fn)(void *ctx, const pt_core_image *image);
void pt_core_image_each(const pt_core *core, pt_core_image_fn fn, void *ctx);
/* Into a fresh core: the head, then each object in the order given.
 * -1 when the image does not fit (a core in use, an unknown kind, a name
 * taken, a Condition's lock not loaded yet, no memory). */
int pt_core_image_head_load(pt_core *core, const pt_core_image_head *head);
int pt_core_image_load(pt_core *core, const pt_core_image *image);

/* ---- Images with sessions (image_sessions.c) ---------------------------
 * A core in use as data: after the head and the objects (pt_core_image_each),
 * each session with its handles and holds, then each object's holders,
 * parked calls in queue order and barrier cycle. Loaded back in that order, then finished, it is
 * the same core: every list in the order that decides what happens next (sessions, a session's
 * holds, a semaphore's holders, queues, the deadline heap). The one order not kept is that of the
 * calls parked through one handle, which only decides in what order that session hears they were
 * cancelled. An image is taken between entries (pt_core_image_sessions_get refuses while a restart
 * has the words lost). */

typedef struct pt_core_image_hold { /* a Lock/RLock held */
    uint64_t serial, thread, since;
    uint32_t depth;
} pt_core_image_hold;

typedef struct pt_core_image_semhold { /* permits on an owned semaphore */
    uint64_t serial;
    int64_t count, seen;
    uint32_t slot, opens;
    int unsure;
} pt_core_image_semhold;

typedef struct pt_core_image_run { /* a barrier action it runs */
    uint64_t serial;
    uint32_t handle, index;
} pt_core_image_run;

typedef struct pt_core_image_session {
    const pt_session *session; /* the one imaged (unused by a load) */
    uint64_t id;
    pt_peer peer;
    const uint64_t *handles; /* [i]: serial of handle i + 1's object, 0 = closed */
    uint32_t nhandles;       /* numbers handed out */
    const uint32_t *free;    /* closed numbers, the next one reused first */
    uint32_t nfree;
    const pt_core_image_hold *locks; /* newest first, as the session lists them */
    size_t nlocks;
    const pt_core_image_semhold *sems;
    size_t nsems;
    const pt_core_image_run *runs;
    size_t nruns;
} pt_core_image_session;

typedef struct pt_core_image_waiter {
    uint64_t session, id, thread, deadline, seq, since;
    uint64_t target; /* serial of the object the call named */
    uint32_t handle, depth, index;
    int kind, notified, has_action, watch, spare, fail_deadlock;
    double timeout;
} pt_core_image_waiter;

typedef struct pt_core_image_links {
    uint64_t serial;
    const uint64_t *holders; /* owned semaphore: sessions holding, oldest first */
    size_t nholders;
    const pt_core_image_waiter *queue;
    size_t nqueue;
    const pt_core_image_waiter *entrants; /* Barrier: arrivals during its action */
    size_t nentrants;
    uint32_t count; /* Barrier: parties of this cycle */
    int pending, doom;
} pt_core_image_links;

/* fn for every session, in the order to load them, then for every object
 * with holders, parked calls or a barrier cycle, oldest first. The arrays
 * live during the call. -1 for want of memory or of a fn's (0 to go on). */
typedef int (*pt_core_image_session_fn)(void *ctx, const pt_core_image_session *s);
typedef int (*pt_core_image_links_fn)(void *ctx, const pt_core_image_links *l);
int pt_core_image_sessions_each(const pt_core *core, pt_core_image_session_fn fn, void *ctx);
int pt_core_image_links_each(const pt_core *core, pt_core_image_links_fn fn, void *ctx);
/* Into the core loaded with the head and objects: each session (NULL when
 * it does not fit: an id not above the last one loaded, a handle of no
 * object), then each object's links (-1 when they do not fit), then
 * pt_core_image_finish, which ends the load and checks what it adds up to.
 * After any -1 or NULL the core is to be freed; it can be. */
pt_session *pt_core_image_session_load(pt_core *core, const pt_core_image_session *s);
int pt_core_image_links_load(pt_core *core, const pt_core_image_links *l);
int pt_core_image_finish(pt_core *core);
/* A session kept across a restart whose process has not taken it up yet
 * (awaited 1; 0 once it has). What it holds shows as in grace; if it ends
 * still awaited, what its end gives back shows as released. Inspection
 * only: no answer depends on it, and it is no journal input. */
void pt_core_session_awaited(pt_core *core, pt_session *s, int awaited);
/* Named objects alive by the mark the last restart left on them, index
 * PT_RESTART_* (in grace: held by an awaited session now). */
void pt_core_objects_by_restart(const pt_core *core, uint64_t counts[PT_RESTART_MARKS]);

/* Named objects alive by kind, index PT_KIND_* (0 unused). */
void pt_core_objects_by_kind(const pt_core *core, uint64_t counts[PT_KIND_BARRIER + 1]);
/* The limits from now on (0 fields: the defaults); what is over them stays. */
void pt_core_set_limits(pt_core *core, const pt_core_limits *limits);
/* The limits in force (defaults filled in). */
void pt_core_get_limits(const pt_core *core, pt_core_limits *out);

#endif /* PT_CORE_H */
