/*
 * session.h - what the client's modules share and nobody else sees: the
 * request/response call over a pt_client, the common object handle, and the
 * thread-local error message.
 */
#ifndef PT_CLIENT_SESSION_H
#define PT_CLIENT_SESSION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "error.h"
#include "pythread.h"
#include "wire.h"

/*
 * pt__client_call's answer when the session is no longer the generation the
 * caller expected (or there is none and PT__CALL_NOCONNECT was asked): the
 * handle the caller holds means nothing in the current session. Never
 * returned to the user.
 */
#define PT__ESTALE (-1000)

/* pt__client_call flags. */
enum {
    /* Do not reconnect a lost session for this call (closing a handle of a
     * dead session needs no new one). */
    PT__CALL_NOCONNECT = 1 << 0,
};

/* An object's state as the daemon reported it (OP_STATE, OP_OPEN). */
typedef struct pt__state {
    int kind;
    int locked;
    uint32_t owner_depth;
    int64_t value;
    int64_t initial;
    int is_set;
    uint32_t parties;
    uint32_t n_waiting;
    int broken;
    double timeout;
    uint64_t token;
} pt__state;

/* A response, copied out of the decoded message by the reading thread. */
typedef struct pt__reply {
    int status;
    int ok;
    int run_action;
    int created;
    int has_state;
    uint32_t handle;
    int64_t value;
    uint64_t token;
    int has_fast; /* OP_OPEN: the object's shared cell */
    uint32_t fast_group;
    uint32_t fast_cell;
    uint32_t fast_slot_cell; /* owned semaphore: the session's slot */
    uint32_t fast_slot_id;   /* ... its id in words, 0 = none */
    pt__state state;
    /* Set only through pt__client_call_extra (pt__client_call clears
     * them): called by the reading thread with the whole decoded answer of
     * a successful call, for answers richer than this struct
     * (inspection). It may only copy; the message is gone once it
     * returns. */
    void (*extra)(void *arg, const Pythread__Response *m);
    void *extra_arg;
} pt__reply;

/*
 * Send req on c's session and wait for its answer. want_gen, when non-zero,
 * is the session generation the request's handles belong to: if the current
 * session is another one, nothing is sent and PT__ESTALE is returned. The
 * request's id and thread are filled in here. On success returns 0, stores the
 * answer in rep and the generation it was served by in *gen (if gen is not
 * NULL); a daemon's refusal is its negative status, with its message as the
 * calling thread's last error.
 */
int pt__client_call(pt_client *c, uint32_t want_gen, int flags, Pythread__Request *req,
                    pt__reply *rep, uint32_t *gen);

/* A Lock or RLock acquire whose caller may watch the lock's word while it
 * waits (proto/fastwake.h): the cell as session generation gen mapped it,
 * and the caller's ids in words. */
typedef struct pt__watch {
    struct pt_fast_cell *cell;
    uint32_t gen, sid, tid;
} pt__watch;

/* pt__client_call of a Lock acquire that may be handed the lock in its
 * word: when the calling thread reads for its process while it waits, it
 * watches the word too, and an acquire handed over there returns at once
 * (rep->ok and rep->token as the daemon's answer would say). */
int pt__client_call_watch(pt_client *c, uint32_t want_gen, Pythread__Request *req, pt__reply *rep,
                          const pt__watch *watch);

/* Send req on session generation want_gen and wait for nothing: for
 * OP_SYNC, which the daemon does not answer. Nothing is sent in another
 * generation. */
void pt__client_post(pt_client *c, uint32_t want_gen, Pythread__Request *req);

/* pt__client_call with rep->extra set to extra(arg, message). */
int pt__client_call_extra(pt_client *c, Pythread__Request *req, pt__reply *rep,
                          void (*extra)(void *arg, const Pythread__Response *m), void *arg);

/* The shared cell `cell` of group `group` as session generation gen mapped
 * it, NULL when there is none. */
struct pt_fast_cell *pt__client_cell(pt_client *c, uint32_t gen, uint32_t group, uint32_t cell);
/* The session's id in shared words when gen is the current session, alive
 * and this process's own; 0 otherwise or with PYTHREAD_FASTPATH=0. */
uint32_t pt__client_fast_id(pt_client *c, uint32_t gen);

/* Whether every wait through c fails a deadlock it closes
 * (pt_client_set_deadlock, PYTHREAD_DEADLOCK=fail). */
int pt__client_deadlock_fail(pt_client *c);

/* The calling thread's kernel id (gettid), cached; fresh after fork. */
pid_t pt__tid(void);

/* ------------------------------------------------------------------ */
/* The common object handle                                            */
/* ------------------------------------------------------------------ */

/* What an object was opened with, kept to open it again in a new session. */
typedef struct pt__open_params {
    pt_kind kind;
    uint32_t flags;
    uint32_t mode;
    int64_t value;    /* Semaphore, BoundedSemaphore */
    uint32_t parties; /* Barrier */
    double timeout;   /* Barrier default timeout */
    pt_object *lock;  /* Condition: its Lock/RLock, NULL for its own RLock */
} pt__open_params;

struct pt_object {
    LIST_ENTRY(pt_object) link; /* in the client's list of open objects */
    pt_client *client;
    /* Session generation << 32 | handle in that session: read without a
     * lock on every call, replaced (under reopen_mu) when a new session
     * needs the object opened again. */
    _Atomic uint64_t slot;
    pthread_mutex_t reopen_mu;
    /* Its shared cell in the session of slot's generation, NULL for none
     * (fast.c); stored before the slot. */
    _Atomic(struct pt_fast_cell *) cell;
    /* An owned semaphore's slot counting this session's permits, and its id
     * in words; stored with cell. */
    _Atomic(struct pt_fast_cell *) hold_cell;
    _Atomic uint32_t hold_id;
    unsigned refs; /* the user's handle + Conditions built on this lock */
    pt__open_params params;
    pt__state opened; /* state reported by the last open */
    /* Set in a forked child, cleared once opened again there (reopen_mu):
     * the handle names an object the parent had, which the child may only
     * find, never make (object_refresh). */
    int inherited;
    char name[PT_WIRE_NAME_MAX + 1];
};

struct pt_lock {
    pt_object o;
};
struct pt_rlock {
    pt_object o;
};
struct pt_condition {
    pt_object o;
};
struct pt_semaphore {
    pt_object o;
};
struct pt_event {
    pt_object o;
};
struct pt_barrier {
    pt_object o;
    pt_barrier_action action;
    void *action_arg;
};

static inline uint32_t pt__slot_gen(uint64_t slot)
{
    return (uint32_t)(slot >> 32);
}

static inline uint32_t pt__slot_handle(uint64_t slot)
{
    return (uint32_t)slot;
}

/* Open an object of size bytes (a struct pt_<kind>) by name, NULL for a
 * fresh anonymous transient one. */
int pt__object_open(pt_client *c, size_t size, const char *name, const pt__open_params *p,
                    pt_object **out);
/* Send req about o (its handle filled in), re-opening o first when the
 * session is a new one. *slot, if not NULL, gets the session and handle used. */
int pt__object_call(pt_object *o, Pythread__Request *req, pt__reply *rep, uint64_t *slot);
/* pt__object_call that may watch the word (pt__client_call_watch) while
 * the session is watch->gen. */
int pt__object_call_watch(pt_object *o, Pythread__Request *req, pt__reply *rep,
                          const pt__watch *watch);
/* Drop one reference; the last one closes the handle and frees o. */
int pt__object_close(pt_object *o);

/* A Lock, RLock or Condition wait whose client or handle asks it
 * (pt_client_set_deadlock, PT_OPEN_DEADLOCK_FAIL) fails a deadlock it
 * closes: req says so. */
void pt__object_deadlock_ask(const pt_object *o, Pythread__Request *req);

/* The operations several kinds share. */
int pt__object_acquire(pt_object *o, int blocking, double timeout, uint64_t *token);
int pt__object_release(pt_object *o, uint32_t count);
int pt__object_state(pt_object *o, const char *op, pt__state *st);
/* Plain request with a handle and nothing else (event set, barrier reset). */
int pt__object_simple(pt_object *o, Pythread__Op op);

/* Link/unlink o in its client's list of objects; freeing all of them. */
void pt__client_link(pt_client *c, pt_object *o);
void pt__client_unlink(pt_client *c, pt_object *o);
/* Take and drop a reference under the lock that guards the lists. */
void pt__object_ref(pt_object *o);
unsigned pt__object_unref(pt_object *o);
/* Free o's memory only (no request): used when its client goes away. */
void pt__object_free(pt_object *o);

/* ------------------------------------------------------------------ */
/* Errors                                                               */
/* ------------------------------------------------------------------ */

/* pt__error (error.h), naming the object and the operation: "Lock 'jobs': release: ...". */
int pt__object_error(const pt_object *o, const char *op, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif /* PT_CLIENT_SESSION_H */
