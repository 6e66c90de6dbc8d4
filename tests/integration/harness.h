/*
 * harness.h - a real pythreadd on a temporary socket, real worker processes
 * against it, and a raw wire connection for the tests that speak the
 * protocol directly.
 *
 * cmocka's assertions longjmp into the test runner, so they are used only in
 * the test's own process and thread. Worker processes and threads check with
 * WCHECK*, which print where and why and _exit(2): the parent sees a failed
 * exit status.
 */
#ifndef PT_IT_HARNESS_H
#define PT_IT_HARNESS_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include <cmocka.h>

#include "pythread.h"
#include "pythread_inspect.h"
#include "wire.h"

#define HARNESS_MAX_KIDS 64
#define HARNESS_MAX_SHM  8
/* Default deadline for anything that should happen "at once". */
#define HARNESS_DEADLINE 5.0

typedef struct harness_shm {
    void *addr;
    size_t len;
} harness_shm;

typedef struct harness {
    char dir[128];  /* mkdtemp'd directory holding everything below */
    char sock[160]; /* the daemon's socket */
    char log[160];  /* the daemon's stderr */
    pid_t daemon;   /* 0 when not running */
    /* Extra daemon arguments (NULL-terminated) for the next start, or NULL. */
    const char *const *daemon_args;
    /* Open file limit (soft and hard) for the next start, 0: inherited. */
    unsigned long daemon_nofile;
    /* The program of the next start, NULL: the pythreadd built with the tests. */
    const char *daemon_path;
    /* "NAME=VALUE" strings (NULL-terminated) set in the next start's
     * environment after the harness cleared systemd's, or NULL. */
    const char *const *daemon_env;
    int passed; /* set by the test's last line; teardown shows the log if not */
    pid_t kids[HARNESS_MAX_KIDS];
    int nkids;
    harness_shm shm[HARNESS_MAX_SHM];
    int nshm;
} harness;

/* Seconds on CLOCK_MONOTONIC (the same clock in every process). */
double harness_now(void);
/* Sleeps a short polling interval (1 ms); used only inside deadline loops. */
void harness_tick(void);

/* mkdtemp, set PYTHREAD_SOCKET, start the daemon and wait until it answers. */
void harness_start(harness *h);
/* Stop workers left behind, SIGTERM the daemon (exit 0 and socket removed
 * within the deadline), unmap shared memory, remove the directory. */
void harness_stop(harness *h);

/* Start the daemon in h->dir on h->sock (the directory must exist) and wait
 * until a client can open a session. */
void harness_daemon_start(harness *h);
/* SIGTERM the daemon; asserts it exits 0 within the deadline and that it
 * removed its socket. */
void harness_daemon_stop(harness *h);
/* fork+exec the daemon on sock with stderr to log and the extra arguments
 * args (NULL-terminated, or NULL); returns its pid. */
pid_t harness_daemon_spawn(const char *sock, const char *log, const char *const *args);
/* The pythreadd built with the tests. */
const char *harness_daemon_program(void);
/* Copies the daemon's log to stderr (for a failed test). */
void harness_show_log(const char *log);
/* How many lines of the daemon's log contain what. */
int harness_log_count(const char *log, const char *what);
/* Poll the daemon's log until n of its lines contain what. */
void harness_log_wait(const harness *h, const char *what, int n, double timeout);
/* Inspection through a session of its own on the default socket. */
pt_inspect_detail *harness_show(const char *name);
void harness_status(pt_inspect_status *st);
/* Until the daemon's grace period after a restart is over (inspection is
 * served in it too). */
void harness_grace_over(void);
/* 1 if a client can open a session on sock. */
int harness_daemon_answers(const char *sock);

/* cmocka fixtures: *state is a started harness. */
int harness_setup(void **state);
int harness_teardown(void **state);

/* Zero-filled memory shared with every process forked afterwards. */
void *harness_shm_alloc(harness *h, size_t len);

/* Fork a child running fn(index, arg) and _exit()ing with its result. */
typedef int (*harness_fn)(int index, void *arg);
pid_t harness_fork(harness *h, harness_fn fn, int index, void *arg);

/* Fork a worker that opens its own pt_client (after the fork, from
 * PYTHREAD_SOCKET), runs fn and _exit()s with its result. */
typedef int (*harness_worker_fn)(pt_client *c, int index, void *arg);
pid_t harness_worker(harness *h, harness_worker_fn fn, int index, void *arg);
void harness_workers(harness *h, pid_t *pids, int n, harness_worker_fn fn, void *arg);

/* Wait for a child until the deadline (seconds from now); returns 0 and its
 * wait status, or -1 on timeout (the child is left running). */
int harness_wait(harness *h, pid_t pid, double timeout, int *status);
/* Wait for every pid; asserts that each exits with status 0 in time. */
void harness_join(harness *h, const pid_t *pids, int n, double timeout);
/* Track a child started otherwise (killed by harness_stop if still alive). */
void harness_adopt(harness *h, pid_t pid);
/* SIGKILL and reap. */
void harness_kill(harness *h, pid_t pid);

/* Poll *flag (shared memory) until it reaches at least value. */
void harness_wait_flag(const atomic_int *flag, int value, double timeout, const char *what);

/* Poll the daemon's State of an object until n_waiting reaches n. */
void harness_wait_waiters(const harness *h, const char *name, pt_kind kind, uint32_t n,
                          double timeout);

/* ------------------------------------------------------------------ */
/* Worker-side checks                                                  */
/* ------------------------------------------------------------------ */

_Noreturn void harness_child_fail(const char *file, int line, const char *expr, long long a,
                                  long long b);

#define WCHECK(cond)                                                                               \
    do {                                                                                           \
        if (!(cond))                                                                               \
            harness_child_fail(__FILE__, __LINE__, #cond, 0, 0);                                   \
    } while (0)

#define WCHECK_EQ(x, y)                                                                            \
    do {                                                                                           \
        long long wcheck_a_ = (long long)(x), wcheck_b_ = (long long)(y);                          \
        if (wcheck_a_ != wcheck_b_)                                                                \
            harness_child_fail(__FILE__, __LINE__, #x " == " #y, wcheck_a_, wcheck_b_);            \
    } while (0)

/* Assert an API result in the test's own process, with the daemon's words. */
#define PT_ASSERT_EQ(expr, want)                                                                   \
    do {                                                                                           \
        long long pt_got_ = (long long)(expr), pt_want_ = (long long)(want);                       \
        if (pt_got_ != pt_want_)                                                                   \
            fail_msg("%s: got %lld (%s), want %lld (%s); message: \"%s\"", #expr, pt_got_,         \
                     pt_got_ < 0 ? pt_err_name((int)pt_got_) : "-", pt_want_,                      \
                     pt_want_ < 0 ? pt_err_name((int)pt_want_) : "-", pt_last_error_message());    \
    } while (0)

/* Assert an API call succeeded (0 or a non-negative result). */
#define PT_ASSERT_OK(expr)                                                                         \
    do {                                                                                           \
        long long pt_got_ = (long long)(expr);                                                     \
        if (pt_got_ < 0)                                                                           \
            fail_msg("%s: got %lld (%s); message: \"%s\"", #expr, pt_got_,                         \
                     pt_err_name((int)pt_got_), pt_last_error_message());                          \
    } while (0)

/* ------------------------------------------------------------------ */
/* Raw wire connection                                                 */
/* ------------------------------------------------------------------ */

typedef struct raw_conn {
    int fd;
    uint64_t next_id;
    pt_wire_arena arena;
    uint8_t *arena_buf;
    uint8_t *in; /* bytes read and not yet consumed */
    size_t inlen;
    size_t incap;
} raw_conn;

/* Connect (no hello); 0 or -errno. */
int raw_connect(raw_conn *rc, const char *path);
void raw_close(raw_conn *rc);
/* Write all bytes; 0 or -errno. */
int raw_send(raw_conn *rc, const void *buf, size_t len);
/* Frame and send a request; fills req->id from the counter when it is 0. */
int raw_send_request(raw_conn *rc, Pythread__Request *req);

enum { RAW_FRAME = 1, RAW_EOF = 0, RAW_TIMEOUT = -1, RAW_ERROR = -2 };
/* Read one frame within timeout. RAW_FRAME stores a response valid until the
 * next receive; RAW_ERROR is a read error or an undecodable response. */
int raw_recv(raw_conn *rc, double timeout, Pythread__Response **out);
/* Send and read the response with the same id; NULL on EOF/timeout/error. */
Pythread__Response *raw_call(raw_conn *rc, Pythread__Request *req, double timeout);
/* A hello request in req with the given version, its arguments in hello. */
void raw_hello_init(Pythread__Request *req, Pythread__HelloArgs *hello, uint32_t version);
/* Hello with the given version; returns the response's status, or
 * PT_ESESSION when no response came. */
int raw_hello(raw_conn *rc, uint32_t version);
/* Open an object; returns the status and the handle. */
int raw_open(raw_conn *rc, const char *name, pt_kind kind, uint32_t flags, uint32_t *handle);
/* OP_STATE; returns the status and copies the state's n_waiting. */
int raw_state_waiting(raw_conn *rc, uint32_t handle, uint32_t *n_waiting);

/* What came back before the daemon closed a connection. */
typedef struct raw_closing {
    int frames;       /* frames received */
    int eproto;       /* of which with status PT_EPROTO */
    int with_message; /* of those, with a non-empty message */
    char message[256];
} raw_closing;

/* Read until EOF or the deadline: returns 1 on EOF, 0 on timeout. */
int raw_wait_eof(raw_conn *rc, double timeout, raw_closing *seen);

#endif /* PT_IT_HARNESS_H */
