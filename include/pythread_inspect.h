/*
 * pythread_inspect.h - looking inside pythreadd: its status, the objects it
 * hosts, who holds and waits for one of them, and the sessions connected.
 * Included by pythread.h; pythreadctl is built on it.
 *
 * Every call is one or more inspection requests on the caller's session
 * (the session shows up in the answers itself). Lists come in pages the
 * library fetches one after another, so a daemon with any number of objects
 * can be walked; the walk is not a snapshot (objects created or unlinked
 * meanwhile may or may not be seen), but it never gives one object twice.
 */
#ifndef PYTHREAD_INSPECT_H
#define PYTHREAD_INSPECT_H

#ifndef PYTHREAD_H
#error "include pythread.h, not pythread_inspect.h"
#endif

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PT_INSPECT_TEXT_MAX 256 /* names and process names, NUL included */
#define PT_INSPECT_PATH_MAX 108 /* sun_path */

/* What the daemon's last restart (pythreadd --state-dir) did to an object.
 * Only holds count: a Lock's or RLock's holder (a Condition shows its
 * lock's), the sessions holding an owned semaphore's permits, and a
 * Barrier's parties (a party that leaves breaks it); waiting calls do not. */
typedef enum pt_restart_mark {
    PT_RESTART_NONE = 0,  /* created after the last restart, or there was none */
    PT_RESTART_RESTORED,  /* its state is what the journal had */
    PT_RESTART_RECLAIMED, /* a process that had it open came back, and what its
                             shared word said of it was taken (held, let go,
                             a semaphore's count) */
    PT_RESTART_RELEASED,  /* a holder's session was not taken up: what it held
                             was given back (to the next waiter, if any) */
    PT_RESTART_IN_GRACE   /* in the grace period: the process of a holder the
                             journal knows has not taken its session up yet */
} pt_restart_mark;
#define PT_RESTART_MARKS 5 /* how many marks there are */

/* The daemon as a whole. */
typedef struct pt_inspect_status {
    char version[32];
    long pid;
    uint32_t protocol;
    double uptime;                        /* seconds */
    double started;                       /* seconds since the epoch */
    char socket[PT_INSPECT_PATH_MAX + 1]; /* as the daemon sees it */
    uint64_t sessions;
    uint64_t objects;
    uint64_t objects_by_kind[8]; /* index PT_KIND_* (0 unused) */
    uint64_t waiters;            /* calls parked right now */
    uint64_t operations;         /* requests served since start */
    uint32_t max_frame;
    uint32_t max_sessions;
    uint32_t max_objects;
    uint32_t max_handles_per_session;
    uint32_t max_waiters_per_session;
    uint32_t max_objects_per_uid;
    /* Per-uid quotas (root is held to none but sessions) and unread output. */
    uint32_t max_sessions_per_uid;
    uint32_t max_handles_per_uid;
    uint32_t max_waiters_per_uid;
    uint32_t max_output;         /* bytes of unread answers per session */
    uint32_t max_output_per_uid; /* the same for all of one user's sessions */
    uint32_t max_input_per_uid;  /* frames begun or unserved, one user's sessions */
    /* pythreadd --state-dir: "" without (the state ends with the daemon). */
    char state_dir[PT_INSPECT_PATH_MAX + 1];
    int state_sync;            /* each change fsynced before it is answered */
    uint64_t restored_objects; /* brought back at this start */
    uint64_t replayed_inputs;  /* journal records replayed at this start */
    uint64_t torn_bytes;       /* a torn tail cut off at this start */
    uint64_t journal_bytes;    /* the journal's size now */
    /* The sessions this start brought back (pythreadd --grace). */
    uint32_t grace_ms;
    int in_grace;                  /* calls wait for kept sessions' processes */
    uint64_t restored_sessions;    /* kept from before the restart */
    uint64_t sessions_taken_up;    /* by their processes */
    uint64_t sessions_ended_gone;  /* their process had died */
    uint64_t sessions_ended_late;  /* not taken up within the grace */
    uint64_t sessions_ended_empty; /* nothing to take up */
    /* The last restart: when it was done (the grace ended), seconds since
     * the epoch, 0 while in the grace or when this start restored nothing;
     * how long calls waited for the kept sessions (so far, in the grace);
     * and the objects there are now by the mark it left on them. */
    double restarted_at;
    double grace_seconds;
    uint64_t objects_by_restart[PT_RESTART_MARKS]; /* index PT_RESTART_* */
    /* pythreadd --metrics: where GET /metrics is served ("127.0.0.1:PORT",
     * "[::1]:PORT" or a socket path); "" without. */
    char metrics_address[PT_INSPECT_PATH_MAX + 16];
    /* Deadlocks (pt_inspect_deadlocks): found over the life of the
     * daemon's state (its journal's, with --state-dir), and standing now. */
    uint64_t deadlocks_found;
    uint64_t deadlocks_standing;
    /* Of sessions_taken_up: those on the connection they had, kept across
     * a planned restart (SIGUSR2, systemctl restart). */
    uint64_t sessions_kept_connection;
    /* pythreadd --etcd: this host's name in the cluster ("" without), the
     * etcd endpoints, the cluster's hosts as the daemon's copy has them
     * (space-separated, this one too once it joined; cluster_nmembers
     * counts them all), this host's lease (0 while it is not a member) and
     * how long it is sure to last. */
    char cluster_host[PT_INSPECT_TEXT_MAX];
    char cluster_endpoints[PT_INSPECT_PATH_MAX + 1];
    char cluster_members[4096];
    uint32_t cluster_nmembers;
    int64_t cluster_lease;
    double cluster_lease_seconds;
    /* pythreadd --etcd: the cluster locks this host owns now (its calls on
     * them whose outcome is fixed are answered ahead of the cluster's log),
     * and the calls this daemon answered so since it started. */
    uint64_t cluster_owned;
    uint64_t cluster_ahead;
} pt_inspect_status;

/* One object. Fields that do not apply to its kind are 0. */
typedef struct pt_inspect_object {
    char name[PT_INSPECT_TEXT_MAX];
    pt_kind kind;
    uint32_t mode;
    uint32_t uid; /* creator */
    uint32_t gid;
    int transient;
    int unlinked;     /* still alive through open handles */
    uint32_t refs;    /* handles, holds and internal references */
    uint32_t waiters; /* parked calls of any kind */
    /* state */
    int locked;    /* Lock, RLock, Condition's lock */
    int64_t value; /* Semaphore */
    int64_t initial;
    int owned;        /* semaphore permits given back when a session ends */
    int is_set;       /* Event */
    uint32_t parties; /* Barrier */
    uint32_t n_waiting;
    int broken;
    double timeout;                      /* Barrier default timeout, -1 none */
    uint64_t token;                      /* last fencing token given */
    char cond_lock[PT_INSPECT_TEXT_MAX]; /* Condition over a named lock, else "" */
    /* counters (in lists too) */
    uint64_t acquires;
    uint64_t contended;
    uint64_t handed; /* of those, Lock/RLock ones handed over through the word */
    uint64_t timeouts;
    double longest_wait; /* seconds */
    double longest_hold; /* seconds, the hold going on included */
    /* The object's mode does not let us read it: only its name, kind,
     * owner, mode, flags, permit ownership and a Condition's lock are
     * told; refs, waiters, the state and the counters are 0. */
    int hidden;
    /* What the daemon's last restart did to it; PT_RESTART_NONE too when
     * hidden. */
    pt_restart_mark restart;
    /* The standing deadlock it is in (its number, pt_inspect_deadlocks), 0
     * for none (and when hidden). A Condition shows its lock's. */
    uint64_t deadlock;
} pt_inspect_object;

/* A holder or a waiter of one object. */
typedef struct pt_inspect_party {
    uint64_t session;
    long pid;
    uint32_t uid;
    uint64_t thread;                   /* the caller's thread id (gettid), 0 when not known */
    char process[PT_INSPECT_TEXT_MAX]; /* the client's name, "" if it gave none */
    double seconds;                    /* held or waiting for this long; -1 when not known */
    uint64_t count;                    /* RLock depth, semaphore permits held */
    char what[16];                     /* "hold", "acquire", "reacquire", "wait", "barrier" */
    uint64_t deadlock;                 /* the standing deadlock its wait or hold is in, 0 none */
    /* A Lock's or RLock's holder: what its thread waits for now ("" for
     * nothing), and whether that has an owner to wait for (a Lock or RLock,
     * a Condition for its own RLock) or none (a Semaphore, Event, Condition
     * waiting for a notify, Barrier: deadlocks are not followed there). */
    char waits[PT_INSPECT_TEXT_MAX];
    pt_kind waits_kind;
    int waits_owner;
    int connection_kept;            /* its session's connection was kept across the last restart */
    char host[PT_INSPECT_TEXT_MAX]; /* a cluster object's party: its host ("" otherwise) */
} pt_inspect_party;

/* Everything about one object. */
typedef struct pt_inspect_detail {
    pt_inspect_object object;
    int detail_denied; /* the object's mode hides its detail from us (object.hidden) */
    size_t n_holders;
    pt_inspect_party *holders;
    size_t n_waiters; /* in the order they will be served */
    pt_inspect_party *waiters;
    uint32_t more_waiters; /* left out to fit one answer */
} pt_inspect_detail;

/* One connected session. */
typedef struct pt_inspect_session {
    uint64_t id;
    long pid;
    uint32_t uid;
    uint32_t gid;
    char process[PT_INSPECT_TEXT_MAX];
    double since; /* connected at, seconds since the epoch */
    uint32_t handles;
    uint32_t held;    /* locks held and semaphores with permits held */
    uint32_t waiting; /* calls parked */
    uint64_t requests;
    int resumed;         /* taken up again after a restart of the daemon (--state-dir) */
    int connection_kept; /* ... on the connection it had: nothing of it was seen */
} pt_inspect_session;

PT_EXTERN int pt_inspect_status_get(pt_client *c, pt_inspect_status *out);

/* Called once per object; a non-zero return stops the walk and becomes
 * pt_inspect_list's result. */
typedef int (*pt_inspect_object_fn)(void *arg, const pt_inspect_object *obj);
/* Every object whose name matches glob (fnmatch(3); NULL for all) and whose
 * kind is kind (0 for any), oldest first. Returns 0, fn's non-zero result,
 * or a negative error. */
PT_EXTERN int pt_inspect_list(pt_client *c, const char *glob, int kind, pt_inspect_object_fn fn,
                              void *arg);

/* Everything about the object called name, in *out (free it with
 * pt_inspect_detail_free). PT_ENOENT when there is none. */
PT_EXTERN int pt_inspect_show(pt_client *c, const char *name, pt_inspect_detail **out);
PT_EXTERN void pt_inspect_detail_free(pt_inspect_detail *d);

/* The same for the cluster's objects (pythreadd --etcd; PT_ERUNTIME on a
 * daemon in no cluster): each holder's and waiter's host is in its host
 * field, its session and pid are on that host. */
PT_EXTERN int pt_inspect_cluster_list(pt_client *c, const char *glob, int kind,
                                      pt_inspect_object_fn fn, void *arg);
PT_EXTERN int pt_inspect_cluster_show(pt_client *c, const char *name, pt_inspect_detail **out);

typedef int (*pt_inspect_session_fn)(void *arg, const pt_inspect_session *s);
/* Every connected session in the order they connected. Returns as
 * pt_inspect_list does. */
PT_EXTERN int pt_inspect_sessions(pt_client *c, pt_inspect_session_fn fn, void *arg);

/* pythreadd's metrics: the same Prometheus text (exposition format 0.0.4)
 * its --metrics endpoint serves, in *text (NUL-terminated, *len bytes
 * without the NUL; len may be NULL), to be freed with free(). Series of
 * single objects (pythreadd --metrics-object) are left out for objects
 * whose mode does not let the caller read them. The text comes in pieces
 * of one frame each; a session lost meanwhile fails the call. */
PT_EXTERN int pt_inspect_metrics(pt_client *c, char **text, size_t *len);
/*
 * Deadlocks: cycles of Lock and RLock waits none of which can time out
 * (pythreadd(8)). One is found when the wait that closes it begins; that
 * wait fails with PT_EDEADLK if its caller asked so (PT_OPEN_DEADLOCK_FAIL,
 * pt_client_set_deadlock), else every wait goes on and the deadlock stands
 * until one of them ends or a lock of it is released.
 */
typedef enum pt_deadlock_state {
    PT_DEADLOCK_STANDING = 0, /* every wait of it goes on */
    PT_DEADLOCK_FAILED = 1,   /* the wait that closed it failed with PT_EDEADLK */
    PT_DEADLOCK_BROKEN = 2    /* a wait of it ended, or a lock of it was released */
} pt_deadlock_state;

/* One owner of a deadlock and its wait. */
typedef struct pt_inspect_deadlock_member {
    uint64_t session;
    long pid;
    uint32_t uid;
    uint64_t thread;
    char process[PT_INSPECT_TEXT_MAX];
    uint64_t request; /* its waiting call's id */
    /* The Lock or RLock it waits for (a Condition for the Condition's own
     * RLock), and the Condition over a named lock it waits through ("" for
     * none). */
    pt_kind waits_kind;
    char waits[PT_INSPECT_TEXT_MAX];
    char via[PT_INSPECT_TEXT_MAX];
    int reacquire; /* a Condition wait taking its lock back */
    /* What it holds or waits for may not be read by us (its mode): session,
     * pid, uid, thread, process and request are 0 or "". */
    int hidden;
} pt_inspect_deadlock_member;

typedef struct pt_inspect_deadlock {
    uint64_t id; /* the nth found */
    pt_deadlock_state state;
    double found; /* seconds since the epoch */
    double ended; /* failed or broken at; 0 while standing */
    size_t size;  /* owners in it */
    /* members[i] waits for what members[i + 1] holds, the last for what
     * members[0] holds; members[0]'s wait closed the cycle. Fewer than size
     * when the daemon keeps only the first of a long one. */
    size_t n_members;
    pt_inspect_deadlock_member *members;
    /* PT_DEADLOCK_BROKEN: the member whose wait ended, or (released) whose
     * held lock was released. */
    size_t broke;
    int released;
} pt_inspect_deadlock;

/* Called once per deadlock (valid during the call); a non-zero return
 * stops the walk and becomes pt_inspect_deadlocks' result. */
typedef int (*pt_inspect_deadlock_fn)(void *arg, const pt_inspect_deadlock *d);
/* Every standing deadlock, oldest first, then the last ones that no longer
 * stand (the daemon keeps 16), newest first. *found, if not NULL, gets how
 * many were found over the life of the daemon's state, *more how many were
 * left out to fit one answer. Returns 0, fn's result or a negative error. */
PT_EXTERN int pt_inspect_deadlocks(pt_client *c, pt_inspect_deadlock_fn fn, void *arg,
                                   uint64_t *found, uint32_t *more);

/* The session id the daemon gave c's current session (0 before the first
 * call). */
PT_EXTERN uint64_t pt_client_session_id(pt_client *c);

#ifdef __cplusplus
}
#endif

#endif /* PYTHREAD_INSPECT_H */
