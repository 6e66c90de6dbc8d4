/*
 * core_int.h - the core's private structures, shared by its modules.
 *
 * Ownership in one picture:
 *   core ── map (name -> object), list of every live object, sessions,
 *           deadline heap, free lists of waiters and semaphore holds
 *   session ── handle table (chunks of slots; a slot keeps the object
 *              referenced and lists the waiters parked through it),
 *              Lock/RLock holds, semaphore holds, barrier actions it runs
 *   object ── kind state and one FIFO queue of waiters (a Barrier also
 *             keeps the entrants of its next cycle)
 *
 * A waiter is always reachable from its handle's list, so closing a handle
 * or ending a session finds every parked call without a scan of others.
 */
#ifndef PT_CORE_INT_H
#define PT_CORE_INT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "core.h"

typedef struct pt_obj pt_obj;
typedef struct pt_waiter pt_waiter;
typedef struct pt_semhold pt_semhold;
typedef struct pt_handle pt_handle;
typedef struct pt_uidcount pt_uidcount;

#define PT_HEAP_NONE    SIZE_MAX
#define PT_HANDLE_CHUNK 64u
/* Spare waiters and hold records kept for reuse beyond those in use: a
 * steady load allocates nothing, a peak gives its spares back as it ends. */
#define PT_SPARE_KEEP 64u
/* Room of the deadline heap when empty. */
#define PT_HEAP_INITIAL 64u
/* What glibc's malloc takes for n bytes on 64-bit: n + 8, rounded up to 16
 * (the per-uid arithmetic in core.h is checked with it). */
#define PT_MALLOC_CHUNK(n) (((size_t)(n) + 8u + 15u) & ~(size_t)15u)

/* A FIFO of parked calls with its length, for O(1) STATE answers. */
typedef struct pt_queue {
    TAILQ_HEAD(, pt_waiter) head;
    uint32_t len;
} pt_queue;

/* What a waiter waits for; decides how a timeout or cancel treats it. */
typedef enum {
    PT_WK_LOCK,      /* Lock/RLock acquire (also through a Condition) */
    PT_WK_REACQUIRE, /* Condition wait re-acquiring the lock */
    PT_WK_COND,      /* Condition wait before notify or timeout */
    PT_WK_SEM,       /* Semaphore acquire */
    PT_WK_EVENT,     /* Event wait */
    PT_WK_BARRIER,   /* Barrier party of the current cycle */
    PT_WK_ENTRANT    /* Barrier arrival held while the action runs */
} pt_wkind;

struct pt_waiter {
    uint64_t id;       /* request id, echoed in the answer */
    uint64_t thread;   /* owner thread within the session */
    uint64_t deadline; /* PT_DEADLINE_NONE when not in the heap */
    uint64_t seq;      /* breaks deadline ties in arrival order */
    pt_session *session;
    pt_obj *obj;    /* object whose queue holds it */
    pt_obj *target; /* object the caller addressed (named in messages) */
    pt_queue *queue;
    pt_semhold *spare; /* owned semaphores: hold record reserved at park */
    size_t heap_idx;
    uint32_t handle;
    uint32_t depth; /* condition wait: recursion level to restore */
    uint32_t index; /* barrier: this party's index */
    uint8_t kind;   /* pt_wkind */
    uint8_t notified : 1;
    uint8_t has_action : 1;
    uint8_t watch : 1;         /* Lock acquire: its caller watches the word (fastword.h) */
    uint8_t fail_deadlock : 1; /* a deadlock it closes fails it (PT_EDEADLK) */
    uint8_t indexed : 1;       /* in the core's index of lock waits (deadlock.c) */
    uint8_t in_cycle : 1;      /* its wait is in a standing deadlock (its lock's cycle) */
    double timeout;            /* barrier entrant: the timeout it asked for */
    uint64_t since;            /* when it was parked (inspection) */
    TAILQ_ENTRY(pt_waiter) qlink;
    LIST_ENTRY(pt_waiter) hlink; /* its handle's list */
    union {
        pt_waiter *free_next; /* while spare */
        pt_waiter *idx_next;  /* while indexed: its bucket's next */
    };
};

/* Permits of one session on one owned semaphore. With the fast path the
 * session's slot (fastword.h) counts its steps through the word, and the
 * record lives while the session has the semaphore open or holds permits. */
struct pt_semhold {
    pt_obj *sem;
    union {
        pt_session *session;
        pt_semhold *free_next; /* while spare */
    };
    int64_t count;                 /* >= 0 but while a claim adds up slots */
    int64_t seen;                  /* the slot's count when last read */
    uint32_t slot;                 /* the slot's id in words, 0 = none */
    uint32_t opens : 31;           /* the session's handles on sem, when it has a slot */
    uint32_t unsure : 1;           /* found busy: seen is not known yet */
    LIST_ENTRY(pt_semhold) slink;  /* session's holds */
    TAILQ_ENTRY(pt_semhold) olink; /* semaphore's holders, oldest first */
};

/* Inspection counters of one object; updated in O(1) by inspect.c. */
typedef struct pt_obj_counters {
    uint64_t acquires;
    uint64_t contended;
    uint64_t handed; /* Lock/RLock: contended acquires handed over through the word */
    uint64_t timeouts;
    uint64_t longest_wait; /* ns */
    uint64_t longest_hold; /* ns */
} pt_obj_counters;

enum { PT_BARRIER_FILLING, PT_BARRIER_ACTION, PT_BARRIER_BROKEN };
enum { PT_PENDING_NONE, PT_PENDING_ABORT, PT_PENDING_RESET };

/* Why a barrier broke; words for people come from pt__barrier_reason. */
typedef enum {
    PT_BR_NONE,
    PT_BR_TIMEOUT,
    PT_BR_ZERO_TIMEOUT,
    PT_BR_ABORT,
    PT_BR_RESET,
    PT_BR_ACTION_FAILED,
    PT_BR_PARTY_SESSION_END,
    PT_BR_PARTY_CLOSED,
    PT_BR_RUNNER_SESSION_END,
    PT_BR_RUNNER_CLOSED
} pt_break_reason;

struct pt_obj {
    int kind; /* pt_kind */
    uint32_t refs;
    uint8_t transient : 1;
    uint8_t unlinked : 1;
    uint8_t in_map : 1;
    uint8_t anonymous : 1;   /* a Condition's own RLock: no name, not in the map */
    uint8_t token_given : 1; /* Lock/RLock: token is the last one given, not the floor */
    uint8_t fast_claimed : 1;
    uint8_t reclaimed : 1; /* a restart's reclaim decided it (core/fast.c) */
    uint8_t restart;       /* pt_restart_mark the last restart left (restart.c) */
    uint16_t conds;        /* Lock/RLock: Conditions over it (at most: it stays there) */
    uint32_t mode;
    uid_t uid;
    gid_t gid;
    uint32_t fast;  /* the daemon's shared cell for it, 0 = none (fast.c) */
    uint64_t token; /* fencing token: only grows; starts at the core's floor */
    uint64_t hash;
    uint64_t serial;              /* creation order, the inspection paging cursor */
    LIST_ENTRY(pt_obj) fast_link; /* claimed in the current entry */
    pt_obj_counters stats;
    pt_obj *map_next;
    TAILQ_ENTRY(pt_obj) all_link;
    pt_queue queue;
    union {
        struct {
            pt_session *s; /* holder owner (a Lock records it too) */
            uint64_t thread;
            uint32_t depth;   /* 0 = free */
            uint32_t cycle_n; /* head of a standing deadlock: owners in it */
            uint64_t since;   /* when the current holder took it */
            LIST_ENTRY(pt_obj) hold_link;
            /* A standing deadlock it is in (deadlock.c): the cycle's head,
             * the lock its closing wait waits for (itself for the head).
             * Only the head keeps the rest. */
            struct pt_obj *cycle;
            pt_waiter *cycle_first; /* head: the wait that closed it */
            uint64_t cycle_id;      /* head: the nth deadlock found */
            uint64_t cycle_found;   /* head: when */
        } lock;
        struct {
            pt_obj *lock; /* referenced for the condition's lifetime */
        } cond;
        struct {
            int64_t value;
            int64_t initial;
            uint8_t owned;
            TAILQ_HEAD(, pt_semhold) holders;
        } sem;
        struct {
            uint8_t set;
        } event;
        struct {
            uint32_t parties;
            uint32_t count;
            double timeout;
            uint8_t state;
            uint8_t pending; /* abort/reset asked while the action runs */
            uint8_t reason;  /* pt_break_reason of the last break */
            uint8_t doom;    /* a party left while the action ran */
            int32_t status;  /* failed action's status */
            pt_session *runner;
            uint32_t runner_handle;
            uint32_t runner_index;
            LIST_ENTRY(pt_obj) run_link;
            pt_queue entrants;
        } barrier;
    } u;
    size_t name_len;
    char name[]; /* NUL-terminated */
};

struct pt_handle {
    pt_obj *obj; /* NULL when free */
    uint32_t next_free;
    LIST_HEAD(, pt_waiter) waiters;
};

struct pt_session {
    uint64_t id;
    pt_peer peer;
    pt_uidcount *user; /* its uid's counts; alive while the session is */
    void *udata;
    int ending;
    int awaited; /* kept across a restart, not taken up yet (restart.c) */
    pt_handle **chunks;
    uint32_t nchunks;
    uint32_t free_head; /* handle number, 0 = none */
    uint32_t next_new;  /* next never-used handle number */
    uint32_t nhandles;
    uint32_t nwaiters;
    LIST_HEAD(, pt_obj) locks;
    LIST_HEAD(, pt_semhold) sems;
    LIST_HEAD(, pt_obj) runs;
    LIST_ENTRY(pt_session) link;
};

typedef struct pt_map {
    pt_obj **buckets;
    size_t mask;
    size_t count;
} pt_map;

typedef struct pt_heap {
    pt_waiter **v;
    size_t len;
    size_t cap;
} pt_heap;

/* Parked Lock/RLock waits by owner (session id, thread), chained in
 * buckets through the waiters; the buckets double past one wait each. */
typedef struct pt_waitidx {
    pt_waiter **b;
    size_t mask;
    size_t count;
} pt_waitidx;

struct pt_core {
    pt_core_limits limits;
    pt_sink_fn sink;
    void *sink_ctx;
    int quiet;
    pt_map map;
    TAILQ_HEAD(pt_objlist, pt_obj) objects;
    uint64_t nobjects; /* named objects alive */
    LIST_HEAD(, pt_session) sessions;
    LIST_HEAD(, pt_uidcount) uids; /* per-user counts, see uid.c */
    uint64_t nsessions;
    uint64_t next_session_id;
    pt_heap heap;
    uint64_t nwaiters;
    uint64_t seq;
    uint64_t calls;
    uint64_t now;         /* time of the call being served (inspection) */
    uint64_t next_serial; /* serial of the next object created */
    uint64_t token_floor; /* the token base, then the highest token given */
    uint64_t nhandles;    /* open handles of every session */
    pt_waiter *free_waiters;
    uint32_t nfree_waiters;
    pt_semhold *free_holds;
    uint32_t nfree_holds;
    uint64_t nholds; /* hold records in use */
    pt_core_fast_hooks fast_hooks;
    void *fast_ctx;
    LIST_HEAD(, pt_obj) fast_claimed; /* to publish after the entry */
    uint8_t fast_lost;                /* restarting: the cells and slots objects name are gone */
    pt_obj **loading; /* an image being loaded: its objects by serial (image_sessions.c) */
    size_t nloading;
    pt_session **lsessions; /* its sessions by id, as loaded (ascending) */
    size_t nlsessions, lsessions_cap;
    uint64_t nawaited;       /* sessions awaited after a restart (restart.c) */
    pt_core_metrics metrics; /* what it served in all (metrics.c) */
    /* Deadlocks (deadlock.c): every parked Lock/RLock wait by its owner,
     * the count found, the hooks told, and room to describe a cycle. */
    pt_waitidx waits;
    uint64_t ndeadlocks;
    uint64_t nstanding;
    pt_core_deadlock_hooks deadlock_hooks;
    void *deadlock_ctx;
    pt_core_cycle_member *cycle_buf;
    size_t cycle_cap;
    void (*freed)(void *ctx, uint64_t serial); /* pt_core_set_freed_hook */
    void *freed_ctx;
    char msg[1024];
};

/* What one user has (see uid.c). */
struct pt_uidcount {
    LIST_ENTRY(pt_uidcount) link;
    uid_t uid;
    uint32_t objects; /* named objects it created, until they end */
    uint32_t sessions;
    uint32_t handles; /* open in its sessions */
    uint32_t waiters; /* parked in its sessions */
};

/* What a handler needs about the current request. */
typedef struct pt_req {
    pt_core *core;
    pt_session *s;
    const pt_call *call;
    uint64_t now;
    pt_obj *obj;     /* object of call->handle, when the op takes one */
    pt_handle *slot; /* its slot */
} pt_req;

/* map.c */
uint64_t pt__name_hash(const char *name, size_t len);
int pt__map_init(pt_map *m);
void pt__map_free(pt_map *m);
pt_obj *pt__map_find(const pt_map *m, const char *name, size_t len, uint64_t hash);
void pt__map_insert(pt_map *m, pt_obj *obj);
void pt__map_remove(pt_map *m, pt_obj *obj);
/* Halve the buckets while the names fill under 1/4 of them. */
void pt__map_fit(pt_map *m);

/* waiter.c */
int pt__waiter_new(pt_core *c, pt_session *s, pt_waiter **out);
pt_waiter *pt__waiter_for(pt_req *r, pt_obj *target, int kind);
void pt__waiter_park(pt_core *c, pt_waiter *w, pt_obj *obj, pt_queue *q, pt_handle *slot,
                     uint64_t deadline);
void pt__queue_init(pt_queue *q);
void pt__queue_push(pt_queue *q, pt_waiter *w);
void pt__queue_remove(pt_waiter *w);
void pt__waiter_detach(pt_core *c, pt_waiter *w);
void pt__waiter_free(pt_core *c, pt_waiter *w);
void pt__waiter_answer(pt_core *c, pt_waiter *w, pt_result *r);
void pt__waiter_fail(pt_core *c, pt_waiter *w, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void pt__waiter_cancel(pt_core *c, pt_waiter *w, int answer, uint64_t now);
void pt__waiter_timeout(pt_core *c, pt_waiter *w, uint64_t now);
int pt__heap_reserve(pt_heap *h, size_t n);
void pt__heap_push(pt_heap *h, pt_waiter *w);
void pt__heap_remove(pt_heap *h, pt_waiter *w);
pt_waiter *pt__heap_top(const pt_heap *h);
void pt__heap_free(pt_heap *h);
/* Shrink the room to the smallest power-of-two multiple of PT_HEAP_INITIAL
 * holding n. */
void pt__heap_fit(pt_heap *h, size_t n);
/* Free every spare waiter. */
void pt__waiters_trim(pt_core *c);

/* registry.c */
void pt__op_open(pt_req *r);
void pt__op_close(pt_req *r);
void pt__op_unlink(pt_req *r);
void pt__op_state(pt_req *r);
void pt__obj_ref(pt_obj *obj);
void pt__obj_unref(pt_core *c, pt_obj *obj);
void pt__objects_free_all(pt_core *c);
void pt__state_fill(const pt_obj *obj, const pt_session *s, uint64_t thread, pt_state *st);
void pt__object_info_fill(const pt_obj *obj, pt_core_object_info *info);
int pt__access_check(pt_core *c, const pt_session *s, const pt_obj *obj, int want);

/* uid.c */
pt_uidcount *pt__uid_get(pt_core *c, uid_t uid, int create);
/* Add to uid's counts (negative to take away); PT_ENOMEM only when adding
 * for a user not seen yet fails. */
int pt__uid_add(pt_core *c, uid_t uid, int objects, int sessions);
/* A new object of kind named name, last in the list of all (registry.c). */
pt_obj *pt__obj_alloc(pt_core *c, int kind, const char *name, size_t len);
void pt__uids_free_all(pt_core *c);
/* Is s's user at its per-uid quota of handles / waiters? (root never is) */
int pt__uid_handles_full(const pt_core *c, const pt_session *s);
int pt__uid_waiters_full(const pt_core *c, const pt_session *s);

/* session.c */
pt_handle *pt__handle_get(const pt_session *s, uint32_t h);
int pt__handle_reserve(pt_core *c, pt_session *s);
uint32_t pt__handle_new(pt_core *c, pt_session *s, pt_obj *obj);
void pt__handle_close(pt_core *c, pt_session *s, uint32_t h, uint64_t now);
void pt__lock_hold_take(pt_obj *lock, pt_session *s, uint64_t thread, uint32_t depth);
void pt__lock_hold_drop(pt_core *c, pt_obj *lock);
pt_semhold *pt__semhold_find(pt_obj *sem, const pt_session *s);
pt_semhold *pt__semhold_alloc(pt_core *c);
void pt__semhold_release(pt_core *c, pt_semhold *h);
void pt__semhold_link(pt_semhold *h, pt_obj *sem, pt_session *s);
void pt__semhold_unlink(pt_semhold *h);
/* Free every spare hold record. */
void pt__semholds_trim(pt_core *c);
/* A session with no handle open gives its table back but the first chunk. */
void pt__handles_fit(pt_session *s);

/* lock.c */
void pt__op_lock_acquire(pt_req *r, pt_obj *lock);
void pt__op_lock_release(pt_req *r, pt_obj *lock);
void pt__lock_grant_next(pt_core *c, pt_obj *lock);
void pt__lock_handed(pt_core *c, pt_obj *lock, uint64_t token);
void pt__lock_release_all(pt_core *c, pt_obj *lock);
int pt__lock_owned_by(const pt_obj *lock, const pt_session *s, uint64_t thread);

/* condition.c */
void pt__op_cond_acquire(pt_req *r);
void pt__op_cond_release(pt_req *r);
void pt__op_cond_wait(pt_req *r);
void pt__op_cond_notify(pt_req *r);
void pt__cond_timeout(pt_core *c, pt_waiter *w);

/* semaphore.c */
void pt__op_sem_acquire(pt_req *r);
void pt__op_sem_release(pt_req *r);
void pt__sem_give(pt_core *c, pt_obj *sem, uint64_t n);
/* n permits released by s count down holds: s's first, then the others'. */
void pt__sem_count_down(pt_core *c, pt_obj *sem, pt_session *s, uint64_t n);
/* h goes if it holds nothing and has no slot. */
void pt__semhold_idle(pt_core *c, pt_semhold *h);
void pt__sem_return_holds(pt_core *c, pt_session *s);

/* event.c */
void pt__op_event_set(pt_req *r);
void pt__op_event_clear(pt_req *r);
void pt__op_event_wait(pt_req *r);

/* barrier.c */
void pt__op_barrier_wait(pt_req *r);
void pt__op_barrier_action_done(pt_req *r);
void pt__op_barrier_abort(pt_req *r);
void pt__op_barrier_reset(pt_req *r);
void pt__barrier_party_left(pt_core *c, pt_obj *b, pt_break_reason why, uint64_t now);
void pt__barrier_timeout(pt_core *c, pt_waiter *w, uint64_t now);
void pt__barrier_abandon(pt_core *c, pt_obj *b, pt_break_reason why, uint64_t now);

/* inspect.c: counters, cheap enough for every call; each counts for the
 * object and for the core's metrics */
void pt__stat_acquired(pt_core *c, pt_obj *obj);
/* n acquires done through obj's word since the core last read it. */
void pt__stat_fast_acquired(pt_core *c, pt_obj *obj, uint64_t n);
void pt__stat_contended(pt_core *c, pt_obj *obj);
void pt__stat_handed(pt_core *c, pt_obj *lock);
void pt__stat_lock_released(pt_core *c, pt_obj *lock);
/* w is answered with r (a contended acquire granted is timed). */
void pt__stat_waited(pt_core *c, const pt_waiter *w, const pt_result *r);
void pt__stat_timeout(pt_core *c, const pt_waiter *w);

/* metrics.c: the core's totals (core.h) */
void pt__metric_answer(pt_core *c, int op, const pt_result *r);
void pt__metric_refused(pt_core *c, pt_core_limit limit);
void pt__metric_observe(pt_core_hist *h, uint64_t ns);

/* fast.c: the shared words (proto/fastword.h). Claim obj (a Condition's
 * lock for a Condition) before reading or changing its state in an entry.
 * 1 when this call claimed it: what the word said is taken, which may have
 * answered parked calls (a lock found released goes to its first waiter). */
int pt__fast_claim(pt_core *c, pt_obj *obj);
void pt__fast_created(pt_core *c, pt_obj *obj, uint32_t flags);
void pt__fast_freed(pt_core *c, pt_obj *obj);
/* lockview.c: a Condition over lock made (d = 1) or freed (-1). */
void pt__lock_cond_add(pt_obj *lock, int d);
/* Claim every object a session could have changed through its words. */
void pt__fast_claim_session(pt_core *c, pt_session *s);
/* A handle of s on obj opened: res gets the cell and, for an owned
 * semaphore, the session's slot (no cell without one). */
void pt__fast_opened(pt_core *c, pt_obj *obj, pt_session *s, pt_result *res);
/* Owned semaphores: a handle of s on sem closes; a hold's slot ends (its
 * count is already in the hold). */
void pt__fast_slot_close(pt_core *c, pt_obj *sem, pt_session *s);
void pt__fast_slot_end(pt_core *c, pt_semhold *h);

/* deadlock.c */
int pt__waitidx_init(pt_waitidx *x);
void pt__waitidx_free(pt_waitidx *x);
/* Halve the buckets while the waits fill under 1/4 of them. */
void pt__waitidx_fit(pt_waitidx *x);
/* w enters a lock's queue (PT_WK_LOCK or PT_WK_REACQUIRE): into the index
 * of lock waits by owner. */
void pt__deadlock_index(pt_core *c, pt_waiter *w);
/* w, indexed, waits for a held lock: follow the chain from it. A cycle it
 * closes is a deadlock found: w fails with PT_EDEADLK if it asked so (it is
 * then answered and freed), else the cycle stands. */
void pt__deadlock_check(pt_core *c, pt_waiter *w);
/* w leaves its queue for good (pt__waiter_detach): a standing deadlock it
 * is in is broken, and it leaves the index. */
void pt__deadlock_unwait(pt_core *c, pt_waiter *w);
/* lock's hold is about to end (pt__lock_hold_drop): a standing deadlock it
 * is in is broken. */
void pt__deadlock_unhold(pt_core *c, pt_obj *lock);
/* The standing deadlock a lock or a wait is in, 0 for none (inspection). */
uint64_t pt__deadlock_of_lock(const pt_obj *lock);
uint64_t pt__deadlock_of_wait(const pt_waiter *w);
/* A call the owner has parked, its Lock/RLock wait first; NULL for none. */
const pt_waiter *pt__owner_any_wait(const pt_core *c, const pt_session *s, uint64_t thread);
/* An image is loaded: mark the standing deadlocks it names again. */
int pt__deadlock_image_finish(pt_core *c);

/* restart.c: what the last restart did to each object (inspection only:
 * no answer depends on it) */
/* Every object is as the journal had it, until a reclaim or a release
 * says otherwise. */
void pt__restart_marks_reset(pt_core *c);
/* A reclaim decided obj (a Condition's lock, a semaphore). */
void pt__restart_reclaimed(pt_obj *obj);
/* obj is held by a session its process took up: reclaimed too. */
void pt__restart_taken_up(pt_obj *obj);
/* s ends: if it was kept across a restart and never taken up, what it
 * held is marked released. Before its holds and parties go. */
void pt__restart_session_end(pt_core *c, pt_session *s);
/* The mark obj shows now (pt_restart_mark). */
int pt__restart_mark(const pt_core *c, const pt_obj *obj);

/* call.c */
const char *pt__kind_name(int kind);
const char *pt__kind_article(int kind);
const char *pt__op_name(int op);
/* The one way out of an answer to op (a pt_op) for session s. */
void pt__answer(pt_core *c, pt_session *s, int op, pt_result *r);
void pt__reply(pt_req *r, pt_result *res);
void pt__fail(pt_req *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void pt__fail_obj(pt_req *r, const pt_obj *obj, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int pt__obj_prefix(char *buf, size_t len, const pt_obj *obj, int op);
void pt__fail_waiter(pt_req *r, int err);
int pt__check_lock_timeout(pt_req *r);
int pt__check_sem_timeout(pt_req *r);
int pt__check_wait_timeout(pt_req *r, double timeout);
uint64_t pt__deadline(uint64_t now, double timeout);
int pt__timeout_is_none(double timeout);
int pt__timeout_dont_wait(double timeout);

#endif /* PT_CORE_INT_H */
