/*
 * pythread.h - Python's threading module, made real across processes.
 *
 * A process opens named Lock, RLock, Condition, Semaphore, BoundedSemaphore,
 * Event and Barrier objects hosted by the pythreadd daemon and gets exactly
 * the semantics CPython's threading module gives them, as if every process
 * were a thread of one program.
 *
 * Conventions:
 *   - Functions return 0 (or a non-negative result) on success and a negative
 *     PT_E* code on failure; pt_strerror() names the code and
 *     pt_last_error_message() gives the daemon's message for the last failure
 *     in the calling thread.
 *   - Timeouts are doubles in seconds; PT_FOREVER (-1) plays Python's None
 *     (or -1 for Lock.acquire).
 *   - A pt_client is one session with the daemon, shared by all threads of a
 *     process: a thread blocked in a call holds up no other thread.
 */
#ifndef PYTHREAD_H
#define PYTHREAD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(PT_BUILDING_LIBRARY) && defined(__GNUC__)
#define PT_EXTERN __attribute__((visibility("default")))
#else
#define PT_EXTERN
#endif

#define PT_VERSION_MAJOR  0
#define PT_VERSION_MINOR  1
#define PT_VERSION_PATCH  0
#define PT_VERSION_STRING "0.1.0"

/* Python's threading.TIMEOUT_MAX on Linux: the largest timeout accepted. */
#define PT_TIMEOUT_MAX 9223372036.0
/* "Wait forever": Python's timeout=None, or -1 for Lock.acquire(). */
#define PT_FOREVER (-1.0)

/*
 * Error codes. The numbers travel on the wire and never change.
 * XX(name, value, python_exception, text)
 */
#define PT_ERRNO_MAP(XX)                                                                           \
    XX(EINVAL, -1, "ValueError", "invalid argument")                                               \
    XX(ERUNTIME, -2, "RuntimeError", "operation not permitted in this state")                      \
    XX(EOVERFLOW, -3, "OverflowError", "timeout too large")                                        \
    XX(EBROKEN, -4, "BrokenBarrierError", "barrier is broken")                                     \
    XX(ENOENT, -5, "FileNotFoundError", "no object with that name")                                \
    XX(EEXIST, -6, "FileExistsError", "object exists with another kind or other parameters")       \
    XX(EKIND, -7, "TypeError", "operation does not apply to this kind of object")                  \
    XX(ENAME, -8, "ValueError", "invalid object name")                                             \
    XX(EPERM, -9, "PermissionError", "permission denied")                                          \
    XX(ELIMIT, -10, "OSError", "resource limit reached")                                           \
    XX(EBADHANDLE, -11, "ValueError", "handle is not open in this session")                        \
    XX(EPROTO, -12, "OSError", "protocol error")                                                   \
    XX(EVERSION, -13, "OSError", "protocol version mismatch")                                      \
    XX(ESESSION, -14, "ConnectionError", "session lost: the daemon closed the connection")         \
    XX(ECONNECT, -15, "ConnectionError", "cannot connect to the daemon")                           \
    XX(ENOMEM, -16, "MemoryError", "out of memory")                                                \
    XX(EINTERNAL, -17, "SystemError", "internal error")                                            \
    XX(EDEADLK, -18, "DeadlockError", "deadlock: the wait would close a cycle of lock waits")

typedef enum {
#define PT_ERRNO_GEN(name, val, exc, text) PT_##name = val,
    PT_ERRNO_MAP(PT_ERRNO_GEN)
#undef PT_ERRNO_GEN
} pt_errno;

/* Text for an error code ("invalid argument"); never NULL. */
PT_EXTERN const char *pt_strerror(int err);
/* Name of an error code ("PT_EINVAL"); never NULL. */
PT_EXTERN const char *pt_err_name(int err);
/* Python exception class an error code stands for ("ValueError"). */
PT_EXTERN const char *pt_err_exception(int err);
/* The message of the last failure in the calling thread (daemon's words
 * when the daemon refused), or "" when none. Valid until the next call.
 * Like errno, a success leaves it as it was: read it only after a call
 * returned an error. */
PT_EXTERN const char *pt_last_error_message(void);

/* Kinds of named objects. The numbers travel on the wire. */
typedef enum {
    PT_KIND_LOCK = 1,
    PT_KIND_RLOCK = 2,
    PT_KIND_CONDITION = 3,
    PT_KIND_SEMAPHORE = 4,
    PT_KIND_BOUNDED_SEMAPHORE = 5,
    PT_KIND_EVENT = 6,
    PT_KIND_BARRIER = 7,
} pt_kind;

PT_EXTERN const char *pt_kind_name(pt_kind kind); /* "Lock", "RLock", ... */

/* Open flags. */
enum {
    /* Fail with PT_EEXIST if the name exists (O_EXCL). */
    PT_OPEN_EXCL = 1 << 0,
    /* Fail with PT_ENOENT if the name does not exist; creation parameters
     * are then ignored and the existing object is opened as it is. */
    PT_OPEN_EXISTING = 1 << 1,
    /* The object ends when its last handle closes (when created here). */
    PT_OPEN_TRANSIENT = 1 << 2,
    /* Semaphore permits owned per session and given back when the session
     * ends (default for BoundedSemaphore), or not (default for Semaphore). */
    PT_OPEN_OWNED = 1 << 3,
    PT_OPEN_UNOWNED = 1 << 4,
    /* This handle never uses the shared-memory fast path: every operation
     * is a request to the daemon. An object created with it has no shared
     * word at all, so nobody's operations on it skip the daemon.
     * PYTHREAD_FASTPATH=0 in the environment does the same for every handle
     * of the process. */
    PT_OPEN_NOFAST = 1 << 5,
    /* A wait through this handle (a Lock, RLock or Condition acquire, a
     * Condition wait taking its lock back) that would close a cycle of lock
     * waits, a deadlock (pythreadd(8)), fails with PT_EDEADLK instead of
     * waiting for ever. Without it, as without it in Python, the wait goes
     * on and the daemon reports the deadlock. pt_client_set_deadlock (or
     * PYTHREAD_DEADLOCK=fail) asks the same for every handle of a client.
     * The daemon keeps nothing of it: each call says it. */
    PT_OPEN_DEADLOCK_FAIL = 1 << 6,
    /* The object is the cluster's (pythreadd --etcd): the same object for
     * every process on every host of the cluster, in a namespace of its
     * own beside the host's objects. Every handle of it says so, an
     * opening of an existing one too. On a daemon that is not in a cluster
     * the open fails with PT_ERUNTIME. */
    PT_OPEN_CLUSTER = 1 << 7,
};

/* Mode used when mode 0 is passed to an open function. */
#define PT_DEFAULT_MODE 0600u

/* ------------------------------------------------------------------ */
/* Client sessions                                                     */
/* ------------------------------------------------------------------ */

typedef struct pt_client pt_client;

/*
 * Where a client with no path of its own looks for the daemon, in order:
 * $PYTHREAD_SOCKET alone if set; else /run/pythread/pythreadd.sock alone for
 * root; else the user's own daemon at $XDG_RUNTIME_DIR/pythread/pythreadd.sock
 * (/tmp/pythread-UID/pythreadd.sock without XDG_RUNTIME_DIR), then the system
 * daemon at /run/pythread/pythreadd.sock. pt_default_socket_paths writes the
 * i-th (from 0) and returns its length, 0 past the last, PT_EINVAL when it
 * does not fit in len bytes with its NUL. pt_default_socket_path is the first,
 * where pythreadd with no --socket listens.
 */
PT_EXTERN int pt_default_socket_paths(int i, char *buf, size_t len);
PT_EXTERN int pt_default_socket_path(char *buf, size_t len);

/* Connect to the daemon at path. NULL: the pt_default_socket_paths in
 * order, passing on to the next only when nothing listens at one (no socket,
 * or the connection refused); the one reached stays the client's daemon. */
PT_EXTERN int pt_client_open(pt_client **out, const char *path);
/* The socket the client's daemon listens on; valid until pt_client_close. */
PT_EXTERN const char *pt_client_socket_path(pt_client *client);
/* Close the session: the daemon gives back everything it held. Every object
 * opened through the client must be closed first or is closed here. */
PT_EXTERN void pt_client_close(pt_client *client);
/* The descriptor of the client's session (its socket), or PT_ESESSION when
 * there is none now (lost, or a forked child that has made no call yet).
 * Do not read, write or close it. Not for watching the session: with a
 * daemon that keeps sessions (pythreadd --state-dir) a thread of the library
 * takes the end of the connection in at once and closes it, and its number
 * may name another file by the time it is polled; pt_client_loss_fd is the
 * descriptor to poll. */
PT_EXTERN int pt_client_fd(pt_client *client);
/* A descriptor that turns readable (POLLIN) when the client's session ends
 * and is not taken up again, so every lock held through it is gone: the
 * daemon stopped, or restarted without keeping it. A restart that keeps the
 * session does not wake it. It stays readable until read (8 bytes, an
 * eventfd) and stays valid until pt_client_close: the library never closes
 * it before. Asking for it starts the library's thread that notices the
 * end of the connection while no call is made. A forked child gets one of
 * its own from its own call. PT_ENOMEM when none can be made. */
PT_EXTERN int pt_client_loss_fd(pt_client *client);
/* After that descriptor reported the end of its connection: a daemon that
 * keeps its state (pythreadd --state-dir) keeps the session across its
 * restart, and the library takes it up again on its own. This waits until
 * that is settled: the session's new descriptor when the client's session
 * is `session` (pt_client_session_id, taken before) again, with what it
 * held; PT_ESESSION when that session is gone, and what it held with it. */
PT_EXTERN int pt_client_session_wait(pt_client *client, uint64_t session);

/* What a wait does when it would close a cycle of lock waits (a deadlock):
 * report it and wait on, as Python's would (the default), or fail with
 * PT_EDEADLK. */
enum { PT_DEADLOCK_REPORT = 0, PT_DEADLOCK_FAIL = 1 };
/* The policy for every wait through this client from now on, with or
 * without PT_OPEN_DEADLOCK_FAIL on the handle (either asks to fail). A new
 * client starts with PT_DEADLOCK_FAIL when $PYTHREAD_DEADLOCK is "fail",
 * else PT_DEADLOCK_REPORT. Returns 0 or PT_EINVAL. */
PT_EXTERN int pt_client_set_deadlock(pt_client *client, int policy);

/* Remove a name (sem_unlink style: open handles keep working). */
PT_EXTERN int pt_unlink(pt_client *client, const char *name);
/* The same for a cluster object's name (those opened with PT_OPEN_CLUSTER),
 * on every host of the cluster; PT_ERUNTIME from a daemon without --etcd. */
PT_EXTERN int pt_unlink_cluster(pt_client *client, const char *name);

/* ------------------------------------------------------------------ */
/* Named objects                                                        */
/* ------------------------------------------------------------------ */

typedef struct pt_lock pt_lock;
typedef struct pt_rlock pt_rlock;
typedef struct pt_condition pt_condition;
typedef struct pt_semaphore pt_semaphore;
typedef struct pt_event pt_event;
typedef struct pt_barrier pt_barrier;

/* Every open function: name is 1-255 bytes of [A-Za-z0-9._:/-]; flags are
 * PT_OPEN_*; mode is owner/group/other permission bits (0: PT_DEFAULT_MODE).
 * The handle is closed with the kind's close function. */

/* Lock. acquire returns 1 when acquired, 0 when not (non-blocking or timed
 * out), or an error: PT_EINVAL for a timeout with blocking=0 or a negative
 * timeout other than -1, PT_EOVERFLOW above PT_TIMEOUT_MAX. The _fenced form
 * also stores the fencing token of this holding (grows with every acquire,
 * and goes on growing for the name across an unlink or a daemon restart). */
PT_EXTERN int pt_lock_open(pt_client *c, const char *name, int flags, unsigned mode, pt_lock **out);
PT_EXTERN int pt_lock_acquire(pt_lock *l, int blocking, double timeout);
PT_EXTERN int pt_lock_acquire_fenced(pt_lock *l, int blocking, double timeout, uint64_t *token);
PT_EXTERN int pt_lock_release(pt_lock *l); /* PT_ERUNTIME if unlocked */
PT_EXTERN int pt_lock_locked(pt_lock *l);  /* 1 locked, 0 free */
PT_EXTERN int pt_lock_close(pt_lock *l);

/* RLock: owned by (session, thread); release by a non-owner is PT_ERUNTIME.
 * A nested acquire by the owner returns the token of the current holding. */
PT_EXTERN int pt_rlock_open(pt_client *c, const char *name, int flags, unsigned mode,
                            pt_rlock **out);
PT_EXTERN int pt_rlock_acquire(pt_rlock *l, int blocking, double timeout);
PT_EXTERN int pt_rlock_acquire_fenced(pt_rlock *l, int blocking, double timeout, uint64_t *token);
PT_EXTERN int pt_rlock_release(pt_rlock *l);
PT_EXTERN int pt_rlock_locked(pt_rlock *l);
PT_EXTERN int pt_rlock_is_owned(pt_rlock *l); /* 1 if the calling thread owns it */
PT_EXTERN int pt_rlock_close(pt_rlock *l);

/* Condition over its own RLock (lock == NULL) or over an open Lock or RLock
 * (pass pt_lock_as_object / pt_rlock_as_object). Every process opening the
 * same condition must name the same lock. */
typedef struct pt_object pt_object;
PT_EXTERN pt_object *pt_lock_as_object(pt_lock *l);
PT_EXTERN pt_object *pt_rlock_as_object(pt_rlock *l);

PT_EXTERN int pt_condition_open(pt_client *c, const char *name, pt_object *lock, int flags,
                                unsigned mode, pt_condition **out);
PT_EXTERN int pt_condition_acquire(pt_condition *cv, int blocking, double timeout);
PT_EXTERN int pt_condition_release(pt_condition *cv);
/* wait and notify need the lock: an RLock held by the calling thread, or a
 * plain Lock held by anyone (Python's rule), else PT_ERUNTIME.
 * wait: 1 when notified, 0 on timeout; the lock is held again either way. A
 * negative timeout other than -1 does not block (as in Python). */
PT_EXTERN int pt_condition_wait(pt_condition *cv, double timeout);
/* Python's wait_for: waits until predicate(arg) is non-zero or the timeout
 * passes; returns the last value of the predicate (0 or non-zero). With a
 * NaN timeout it never gives up, polling the predicate between waits that
 * do not block, as Python's does. */
PT_EXTERN int pt_condition_wait_for(pt_condition *cv, int (*predicate)(void *arg), void *arg,
                                    double timeout);
PT_EXTERN int pt_condition_notify(pt_condition *cv, unsigned n);
PT_EXTERN int pt_condition_notify_all(pt_condition *cv);
PT_EXTERN int pt_condition_close(pt_condition *cv);

/* Semaphore (bounded=0) or BoundedSemaphore (bounded=1). value < 0 is
 * PT_EINVAL. A BoundedSemaphore's permits are owned by the session that took
 * them and given back when it ends; PT_OPEN_OWNED / PT_OPEN_UNOWNED flip the
 * default. acquire: 1 acquired, 0 not; timeout with blocking=0 is PT_EINVAL;
 * a NaN timeout waits without limit (Python's loop never gives up on it).
 * release(n): n < 1 is PT_EINVAL; past the bound is PT_EINVAL. */
PT_EXTERN int pt_semaphore_open(pt_client *c, const char *name, int64_t value, int bounded,
                                int flags, unsigned mode, pt_semaphore **out);
PT_EXTERN int pt_semaphore_acquire(pt_semaphore *s, int blocking, double timeout);
PT_EXTERN int pt_semaphore_release(pt_semaphore *s, uint32_t n);
PT_EXTERN int pt_semaphore_value(pt_semaphore *s, int64_t *value);
PT_EXTERN int pt_semaphore_close(pt_semaphore *s);

/* Event: wait returns the flag (1) or 0 on timeout. */
PT_EXTERN int pt_event_open(pt_client *c, const char *name, int flags, unsigned mode,
                            pt_event **out);
PT_EXTERN int pt_event_set(pt_event *e);
PT_EXTERN int pt_event_clear(pt_event *e);
PT_EXTERN int pt_event_is_set(pt_event *e);
PT_EXTERN int pt_event_wait(pt_event *e, double timeout);
PT_EXTERN int pt_event_close(pt_event *e);

/* Barrier: parties >= 1; timeout is the default for wait (PT_FOREVER: none).
 * The action, if any, runs in the process of the last party to arrive before
 * anyone is released; a non-zero return breaks the barrier. wait returns the
 * party's index (0..parties-1) or PT_EBROKEN. wait(PT_FOREVER) uses the
 * barrier's default timeout, as Python's wait(None) does. Any default is
 * taken at open, as Python takes it: a timeout above PT_TIMEOUT_MAX is
 * PT_EOVERFLOW only for a party that has to wait (the last one does not),
 * which leaves without breaking the barrier; NaN waits without limit. */
typedef int (*pt_barrier_action)(void *arg);
PT_EXTERN int pt_barrier_open(pt_client *c, const char *name, uint32_t parties,
                              pt_barrier_action action, void *arg, double timeout, int flags,
                              unsigned mode, pt_barrier **out);
PT_EXTERN int pt_barrier_wait(pt_barrier *b, double timeout);
PT_EXTERN int pt_barrier_reset(pt_barrier *b);
PT_EXTERN int pt_barrier_abort(pt_barrier *b);
PT_EXTERN int pt_barrier_parties(pt_barrier *b);
PT_EXTERN int pt_barrier_n_waiting(pt_barrier *b);
PT_EXTERN int pt_barrier_broken(pt_barrier *b);
PT_EXTERN int pt_barrier_close(pt_barrier *b);

#ifdef __cplusplus
}
#endif

#include "pythread_thread.h"
#include "pythread_inspect.h"

#endif /* PYTHREAD_H */
