/*
 * fake_daemon.h - a scripted stand-in for pythreadd, speaking the real wire
 * (the shared wire module) from one thread, so the client's multiplexer,
 * loss, reconnection and fork handling can be tested deterministically:
 * answers can be held back, given out of order, replaced by garbage, or the
 * connection dropped, and every request is logged.
 */
#ifndef FAKE_DAEMON_H
#define FAKE_DAEMON_H

#include <stdint.h>
#include <sys/types.h>

typedef struct fake_req {
    int conn;  /* connection number, in accept order from 0 */
    pid_t pid; /* peer pid (SO_PEERCRED) */
    int op;
    uint64_t id;
    uint64_t thread;
    uint32_t handle;
    uint32_t flags;
    uint32_t mode;
    uint32_t lock_handle;
    uint32_t count;
    int has_count;
    int kind;
    int blocking;
    int has_action;
    int32_t status;
    uint32_t version;
    double timeout;
    char name[256];
    char client_name[256];
} fake_req;

typedef struct fake fake;

/* Listen on a fresh socket in a temporary directory. */
fake *fake_start(void);
void fake_stop(fake *f);
const char *fake_path(const fake *f);

/* Requests with this op are not answered until fake_answer_held. */
void fake_hold(fake *f, int op);
/* Answer every held request, the latest first. */
void fake_answer_held(fake *f);
/* Close every connection now. */
void fake_drop(fake *f);
/* Answer the hello with this status and message (0: accept) and version. */
void fake_set_hello(fake *f, int32_t status, const char *message, uint32_t version);
/* Answer requests with this op by a frame that is not a Response. */
void fake_set_garbage(fake *f, int op);
/* On this op, send an id-0 error frame with message, then close. */
void fake_set_goodbye(fake *f, int op, const char *message);
/* Ask a barrier waiter that has an action to run it. */
void fake_set_run_action(fake *f, int on);
/* What OP_STATE reports as the caller's owner_depth and locked. */
void fake_set_owner(fake *f, uint32_t owner_depth, int locked);

/* Number of requests logged so far, with op (0: any). */
int fake_count(fake *f, int op);
/* Poll until at least n requests with op are logged, up to timeout_s. 0 or -1. */
int fake_wait_count(fake *f, int op, int n, double timeout_s);
/* Copy the i-th logged request (0-based); 0, or -1 if there is none. */
int fake_get(fake *f, int i, fake_req *out);
/* Index of the first logged request with op at or after index from, or -1. */
int fake_find(fake *f, int op, int from);
/* Connections accepted so far. */
int fake_conns(fake *f);

#endif /* FAKE_DAEMON_H */
