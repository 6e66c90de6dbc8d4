/*
 * limits_daemon.c - the hardening limits of pythreadd against a real daemon:
 * the per-uid quotas of objects, sessions, handles, waiters and unread
 * output (each met by one user while another is served), memory given back
 * after a peak, a peer that stalls in the middle of a frame (slowloris), a
 * peer that never reads its answers, the open file limit, and --help
 * listing every limit with its default. Each limit yields a clear error or
 * a cut-off of the offending session alone, while another session keeps
 * being served at once.
 *
 * The per-uid tests act as other users: the test runs as root, forks and
 * drops to an unused uid (and gid) in the child, which reaches the daemon's
 * socket (mode 0666) through a directory opened for the test. They are
 * skipped when not run as root.
 */
#include "harness.h"

#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* Users of the per-uid tests; neither needs to exist in /etc/passwd. */
#define QUOTA_UID 41101
#define OTHER_UID 41102

/* --frame-timeout of the slowloris test, in seconds. */
#define FRAME_TIMEOUT     2
#define FRAME_TIMEOUT_ARG "2"

/* A round trip of a bystander must never wait on a misbehaving peer. */
#define PROMPT_SEC 0.5

static void restart_with(harness *h, const char *const *args)
{
    harness_daemon_stop(h);
    h->daemon_args = args;
    harness_daemon_start(h);
}

/* Sessions of the harness's start-up checks may still be ending. */
static int open_within_deadline(pt_client **c)
{
    double deadline = harness_now() + HARNESS_DEADLINE;
    int rc;

    while ((rc = pt_client_open(c, NULL)) == PT_ELIMIT && harness_now() < deadline)
        harness_tick();
    return rc;
}

/* A bystander's acquire and release, which must be answered promptly. */
static void bystander_prompt(pt_lock *l, const char *while_what)
{
    double t0 = harness_now();

    PT_ASSERT_EQ(pt_lock_acquire(l, 1, PT_FOREVER), 1);
    PT_ASSERT_EQ(pt_lock_release(l), 0);
    if (harness_now() - t0 > PROMPT_SEC)
        fail_msg("a bystander waited %.3f s while %s", harness_now() - t0, while_what);
}

/* ------------------------------------------------------------------ */
/* Acting as another user                                              */
/* ------------------------------------------------------------------ */

typedef int (*user_fn)(harness *h, void *arg);

typedef struct as_user {
    harness *h;
    uid_t uid;
    user_fn fn;
    void *arg;
} as_user;

static int as_user_main(int index, void *arg)
{
    const as_user *a = arg;

    (void)index;
    if (setgroups(0, NULL) != 0 || setgid((gid_t)a->uid) != 0 || setuid(a->uid) != 0) {
        fprintf(stderr, "cannot become uid %u: %s\n", (unsigned)a->uid, strerror(errno));
        return 3;
    }
    return a->fn(a->h, a->arg);
}

/* A child running fn(h, arg) as uid (gid the same number, no groups). */
static pid_t fork_as(harness *h, uid_t uid, user_fn fn, void *arg)
{
    as_user a = {h, uid, fn, arg};

    return harness_fork(h, as_user_main, 0, &a);
}

/* Only root can act as other users: others skip. The directory of the
 * socket is opened for the users of the test. */
static int per_uid_test_runs(harness *h)
{
    if (geteuid() != 0) {
        print_message("skipped: acting as other users needs root\n");
        h->passed = 1;
        return 0;
    }
    assert_int_equal(chmod(h->dir, 0711), 0);
    return 1;
}

/* Flags in shared memory between the test and its users. */
typedef struct uid_flags {
    atomic_int ready;   /* the user has met its quota */
    atomic_int release; /* the test is done with it */
} uid_flags;

static void join_one(harness *h, pid_t pid)
{
    harness_join(h, &pid, 1, 4 * HARNESS_DEADLINE);
}

/* Opens in the child go through its own new session (the library's). */
static pt_client *child_client(void)
{
    pt_client *c = NULL;

    WCHECK_EQ(pt_client_open(&c, NULL), 0);
    return c;
}

static void child_expect_quota(int rc, const char *flag)
{
    char uid[32];

    snprintf(uid, sizeof uid, "uid %u", (unsigned)getuid());
    WCHECK_EQ(rc, PT_ELIMIT);
    if (!strstr(pt_last_error_message(), flag) || !strstr(pt_last_error_message(), uid)) {
        fprintf(stderr, "message names neither %s nor %s: %s\n", flag, uid,
                pt_last_error_message());
        _exit(2);
    }
}

/* ------------------------------------------------------------------ */
/* Objects per uid                                                     */
/* ------------------------------------------------------------------ */

static int objects_as_user(harness *h, void *arg)
{
    pt_client *c = child_client();
    pt_lock *l[3] = {NULL}, *again = NULL;

    (void)h;
    (void)arg;
    WCHECK_EQ(pt_lock_open(c, "lim.uid.a", 0, 0, &l[0]), 0);
    WCHECK_EQ(pt_lock_open(c, "lim.uid.b", 0, 0, &l[1]), 0);
    child_expect_quota(pt_lock_open(c, "lim.uid.c", 0, 0, &l[2]), "--max-objects-per-uid");
    /* Opening what exists is not creating. */
    WCHECK_EQ(pt_lock_open(c, "lim.uid.a", 0, 0, &again), 0);
    WCHECK_EQ(pt_lock_close(again), 0);
    /* An unlinked object gives its place back once closed. */
    WCHECK_EQ(pt_unlink(c, "lim.uid.a"), 0);
    WCHECK_EQ(pt_lock_close(l[0]), 0);
    WCHECK_EQ(pt_lock_open(c, "lim.uid.c", 0, 0, &l[2]), 0);
    WCHECK_EQ(pt_lock_close(l[1]), 0);
    WCHECK_EQ(pt_lock_close(l[2]), 0);
    pt_client_close(c);
    return 0;
}

static void test_objects_per_uid(void **state)
{
    static const char *const args[] = {"--max-objects-per-uid", "2", NULL};
    harness *h = *state;
    pt_client *c = NULL;
    pt_lock *l[3] = {NULL};
    char name[32];

    restart_with(h, args);
    if (!per_uid_test_runs(h))
        skip();
    join_one(h, fork_as(h, QUOTA_UID, objects_as_user, NULL));
    /* Root is exempt. */
    PT_ASSERT_EQ(open_within_deadline(&c), 0);
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "lim.root.%d", i);
        PT_ASSERT_EQ(pt_lock_open(c, name, PT_OPEN_TRANSIENT, 0, &l[i]), 0);
    }
    for (int i = 0; i < 3; i++)
        PT_ASSERT_EQ(pt_lock_close(l[i]), 0);
    pt_client_close(c);
    h->passed = 1;
}

/* ------------------------------------------------------------------ */
/* Handles per uid                                                     */
/* ------------------------------------------------------------------ */

#define HANDLE_QUOTA     8
#define HANDLE_QUOTA_ARG "8"

/* HANDLE_QUOTA handles over two sessions, then one more is refused in
 * either; it waits for the test while at its quota, then shows a closed
 * handle gives its place back. */
static int handles_as_user(harness *h, void *arg)
{
    uid_flags *f = arg;
    pt_client *c[2] = {child_client(), child_client()};
    pt_lock *l[HANDLE_QUOTA + 1] = {NULL};

    (void)h;
    for (int i = 0; i < HANDLE_QUOTA; i++)
        WCHECK_EQ(pt_lock_open(c[i % 2], "lim.handles", 0, 0, &l[i]), 0);
    child_expect_quota(pt_lock_open(c[0], "lim.handles", 0, 0, &l[HANDLE_QUOTA]),
                       "--max-handles-per-uid");
    child_expect_quota(pt_lock_open(c[1], "lim.handles", 0, 0, &l[HANDLE_QUOTA]),
                       "--max-handles-per-uid");
    atomic_store(&f->ready, 1);
    harness_wait_flag(&f->release, 1, 4 * HARNESS_DEADLINE, "release");
    WCHECK_EQ(pt_lock_close(l[0]), 0);
    WCHECK_EQ(pt_lock_open(c[1], "lim.handles", 0, 0, &l[0]), 0);
    for (int i = 0; i < HANDLE_QUOTA; i++)
        WCHECK_EQ(pt_lock_close(l[i]), 0);
    pt_client_close(c[0]);
    pt_client_close(c[1]);
    return 0;
}

/* Another user, while the first is at its quota, has its own. */
static int handles_other_user(harness *h, void *arg)
{
    pt_client *c = child_client();
    pt_lock *l[HANDLE_QUOTA] = {NULL};

    (void)h;
    (void)arg;
    for (int i = 0; i < HANDLE_QUOTA; i++)
        WCHECK_EQ(pt_lock_open(c, "lim.handles.other", 0, 0, &l[i]), 0);
    for (int i = 0; i < HANDLE_QUOTA; i++)
        WCHECK_EQ(pt_lock_close(l[i]), 0);
    pt_client_close(c);
    return 0;
}

static void test_handles_per_uid(void **state)
{
    static const char *const args[] = {"--max-handles-per-uid", HANDLE_QUOTA_ARG, NULL};
    harness *h = *state;
    uid_flags *f;
    pid_t user;
    pt_client *c = NULL;
    pt_lock *l[2 * HANDLE_QUOTA] = {NULL};

    restart_with(h, args);
    if (!per_uid_test_runs(h))
        skip();
    f = harness_shm_alloc(h, sizeof *f);
    user = fork_as(h, QUOTA_UID, handles_as_user, f);
    harness_wait_flag(&f->ready, 1, 4 * HARNESS_DEADLINE, "the user at its handle quota");
    join_one(h, fork_as(h, OTHER_UID, handles_other_user, NULL));
    /* Root is exempt. */
    PT_ASSERT_EQ(open_within_deadline(&c), 0);
    for (int i = 0; i < 2 * HANDLE_QUOTA; i++)
        PT_ASSERT_EQ(pt_lock_open(c, "lim.handles.root", PT_OPEN_TRANSIENT, 0, &l[i]), 0);
    for (int i = 0; i < 2 * HANDLE_QUOTA; i++)
        PT_ASSERT_EQ(pt_lock_close(l[i]), 0);
    pt_client_close(c);
    atomic_store(&f->release, 1);
    join_one(h, user);
    h->passed = 1;
}

/* ------------------------------------------------------------------ */
/* Waiters per uid, at the default quota                               */
/* ------------------------------------------------------------------ */

/* The scenario at the default quota: many sessions of one user
 * pipeline blocking acquires of a lock it holds, more of them than the
 * quota; the ones past it are refused at once, the others stay parked. */
#define WAIT_QUOTA    65536 /* the documented default of --max-waiters-per-uid */
#define WAIT_SESSIONS 16
#define WAIT_EACH     (WAIT_QUOTA / WAIT_SESSIONS + 4)
#define WAIT_OVER     (WAIT_SESSIONS * WAIT_EACH - WAIT_QUOTA)

/* n blocking acquires (thread 7, no timeout) of handle, framed into buf. */
static size_t acquire_batch(uint8_t *buf, uint32_t handle, int n, double timeout)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    size_t len = 0;

    req.op = PYTHREAD__OP__OP_ACQUIRE;
    req.has_handle = req.has_thread = req.has_timeout = 1;
    req.handle = handle;
    req.thread = 7;
    req.timeout = timeout;
    for (int i = 0; i < n; i++) {
        req.id = 1000 + (uint64_t)i;
        pt_wire_request_frame_pack(&req, buf + len);
        len += pt_wire_request_frame_size(&req);
    }
    return len;
}

static int waiters_as_user(harness *h, void *arg)
{
    uid_flags *f = arg;
    raw_conn holder, rc[WAIT_SESSIONS];
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    Pythread__Response *resp;
    uint32_t lock, handle, parked = 0;
    uint8_t *batch = malloc((size_t)WAIT_EACH * 32);
    int refused = 0;
    double deadline;

    WCHECK(batch != NULL);
    WCHECK_EQ(raw_connect(&holder, h->sock), 0);
    WCHECK_EQ(raw_hello(&holder, PT_PROTOCOL_VERSION), 0);
    WCHECK_EQ(raw_open(&holder, "lim.waiters", PT_KIND_LOCK, PT_OPEN_TRANSIENT, &lock), 0);
    req.op = PYTHREAD__OP__OP_ACQUIRE;
    req.has_handle = 1;
    req.handle = lock;
    resp = raw_call(&holder, &req, HARNESS_DEADLINE);
    WCHECK(resp != NULL && resp->ok);
    for (int i = 0; i < WAIT_SESSIONS; i++) {
        WCHECK_EQ(raw_connect(&rc[i], h->sock), 0);
        WCHECK_EQ(raw_hello(&rc[i], PT_PROTOCOL_VERSION), 0);
        WCHECK_EQ(raw_open(&rc[i], "lim.waiters", PT_KIND_LOCK, PT_OPEN_EXISTING, &handle), 0);
        WCHECK_EQ(raw_send(&rc[i], batch, acquire_batch(batch, handle, WAIT_EACH, -1)), 0);
    }
    /* Only the refusals are answered. */
    deadline = harness_now() + 4 * HARNESS_DEADLINE;
    while (refused < WAIT_OVER && harness_now() < deadline) {
        for (int i = 0; i < WAIT_SESSIONS; i++) {
            while (raw_recv(&rc[i], 0.001, &resp) == RAW_FRAME) {
                WCHECK_EQ(resp->has_status ? resp->status : 0, PT_ELIMIT);
                if (!strstr(resp->message, "--max-waiters-per-uid")) {
                    fprintf(stderr, "refusal without the quota's flag: %s\n", resp->message);
                    _exit(2);
                }
                refused++;
            }
        }
    }
    WCHECK_EQ(refused, WAIT_OVER);
    WCHECK_EQ(raw_state_waiting(&holder, lock, &parked), 0);
    WCHECK_EQ(parked, WAIT_QUOTA);
    atomic_store(&f->ready, 1);
    harness_wait_flag(&f->release, 1, 4 * HARNESS_DEADLINE, "release");
    for (int i = 0; i < WAIT_SESSIONS; i++)
        raw_close(&rc[i]);
    raw_close(&holder);
    free(batch);
    return 0;
}

/* Parks a call (and is answered on its timeout) while the first user is
 * at its quota. */
static int waiters_other_user(harness *h, void *arg)
{
    pt_client *c[2] = {child_client(), child_client()};
    pt_lock *l[2] = {NULL};

    (void)h;
    (void)arg;
    WCHECK_EQ(pt_lock_open(c[0], "lim.waiters.other", PT_OPEN_TRANSIENT, 0, &l[0]), 0);
    WCHECK_EQ(pt_lock_open(c[1], "lim.waiters.other", 0, 0, &l[1]), 0);
    WCHECK_EQ(pt_lock_acquire(l[0], 1, PT_FOREVER), 1);
    WCHECK_EQ(pt_lock_acquire(l[1], 1, 0.05), 0); /* parked, then timed out */
    WCHECK_EQ(pt_lock_release(l[0]), 0);
    WCHECK_EQ(pt_lock_acquire(l[1], 1, PT_FOREVER), 1);
    WCHECK_EQ(pt_lock_release(l[1]), 0);
    WCHECK_EQ(pt_lock_close(l[1]), 0);
    WCHECK_EQ(pt_lock_close(l[0]), 0);
    pt_client_close(c[0]);
    pt_client_close(c[1]);
    return 0;
}

static void test_waiters_per_uid(void **state)
{
    harness *h = *state;
    uid_flags *f;
    pid_t user;

    if (!per_uid_test_runs(h))
        skip();
    f = harness_shm_alloc(h, sizeof *f);
    user = fork_as(h, QUOTA_UID, waiters_as_user, f);
    harness_wait_flag(&f->ready, 1, 6 * HARNESS_DEADLINE, "the user at its waiter quota");
    join_one(h, fork_as(h, OTHER_UID, waiters_other_user, NULL));
    atomic_store(&f->release, 1);
    join_one(h, user);
    h->passed = 1;
}

/* ------------------------------------------------------------------ */
/* Unread output per uid                                               */
/* ------------------------------------------------------------------ */

/* Two sessions of one user each ask for 1.1 MB of STATUS answers and read
 * none: besides what the socket holds (some 200 KB), each leaves under the
 * per-session cap (--max-output, 8 MiB) and under the per-uid quota unread,
 * the two together over it. The session that takes its user past the quota
 * is paused and, not read, cut off after --stall-timeout. */
#define OUTPUT_EACH      1100000u
#define OUTPUT_QUOTA_ARG "1048576"

/* Has either connection been closed by the daemon? Nothing is read. */
static int hung_up(const raw_conn *a, const raw_conn *b, double timeout)
{
    struct pollfd p[2] = {{.fd = a->fd, .events = POLLRDHUP}, {.fd = b->fd, .events = POLLRDHUP}};
    double deadline = harness_now() + timeout;

    while (harness_now() < deadline) {
        if (poll(p, 2, 10) > 0 && ((p[0].revents | p[1].revents) & (POLLHUP | POLLRDHUP)))
            return 1;
    }
    return 0;
}

static int output_as_user(harness *h, void *arg)
{
    uid_flags *f = arg;
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    Pythread__Response *resp;
    raw_conn rc[2];
    uint8_t *batch;
    size_t one, n = 0, count;
    int cut;

    for (int i = 0; i < 2; i++) {
        WCHECK_EQ(raw_connect(&rc[i], h->sock), 0);
        WCHECK_EQ(raw_hello(&rc[i], PT_PROTOCOL_VERSION), 0);
    }
    req.op = PYTHREAD__OP__OP_STATUS;
    resp = raw_call(&rc[0], &req, HARNESS_DEADLINE);
    WCHECK(resp != NULL);
    count = OUTPUT_EACH / pt_wire_response_frame_size(resp);
    one = pt_wire_request_frame_size(&req);
    batch = malloc(count * (one + 8));
    WCHECK(batch != NULL);
    for (size_t i = 0; i < count; i++) {
        req.id = 100 + i;
        pt_wire_request_frame_pack(&req, batch + n);
        n += pt_wire_request_frame_size(&req);
    }
    WCHECK_EQ(raw_send(&rc[0], batch, n), 0);
    WCHECK_EQ(raw_send(&rc[1], batch, n), 0);
    cut = hung_up(&rc[0], &rc[1], 1 + 2 * HARNESS_DEADLINE);
    atomic_store(&f->ready, 1);
    raw_close(&rc[0]);
    raw_close(&rc[1]);
    free(batch);
    if (!cut)
        fprintf(stderr, "neither session was cut off with %u bytes unread in each\n", OUTPUT_EACH);
    return cut ? 0 : 2;
}

/*
 * The daemon restarted with args; a user (QUOTA_UID) runs fn until it has
 * met its quota (f->ready, bounded: a user that fails first is reported by
 * the join) while a root bystander's lock calls must stay prompt throughout
 * and after. 0, or 1 when per-uid tests cannot run here (skip).
 */
static int user_beside_bystander(harness *h, const char *const *args, user_fn fn,
                                 const char *while_what)
{
    pt_client *c = NULL;
    pt_lock *l = NULL;
    uid_flags *f;
    pid_t user;
    double deadline;

    restart_with(h, args);
    if (!per_uid_test_runs(h))
        return 1;
    f = harness_shm_alloc(h, sizeof *f);
    PT_ASSERT_EQ(open_within_deadline(&c), 0);
    PT_ASSERT_EQ(pt_lock_open(c, "lim.bystander", PT_OPEN_TRANSIENT, 0, &l), 0);
    user = fork_as(h, QUOTA_UID, fn, f);
    deadline = harness_now() + 4 * HARNESS_DEADLINE;
    while (!atomic_load(&f->ready) && harness_now() < deadline)
        bystander_prompt(l, while_what);
    join_one(h, user);
    bystander_prompt(l, "after the cut-off");
    PT_ASSERT_EQ(pt_lock_close(l), 0);
    pt_client_close(c);
    return 0;
}

static void test_output_per_uid(void **state)
{
    static const char *const args[] = {"--max-output-per-uid", OUTPUT_QUOTA_ARG, "--stall-timeout",
                                       "1", NULL};
    harness *h = *state;

    if (user_beside_bystander(h, args, output_as_user, "a user left its answers unread"))
        skip();
    h->passed = 1;
}

/* ------------------------------------------------------------------ */
/* Input held per uid                                                  */
/* ------------------------------------------------------------------ */

#define INPUT_QUOTA_ARG "1048576"
/* Sessions that each leave a frame of 60,000 bytes unfinished with 50,000
 * sent: its buffer grows to 64 KiB, so 16 of them fill the quota. */
#define INPUT_SESSIONS 24
#define INPUT_FRAME    60000u
#define INPUT_SENT     50000u

/* Sessions of this user that the daemon hung up on, waiting until at least
 * want have been or the deadline passes. */
static int count_hung_up(const raw_conn *rc, int n, int want, double timeout)
{
    struct pollfd p[INPUT_SESSIONS];
    double deadline = harness_now() + timeout;
    int hung = 0;

    for (int i = 0; i < n; i++)
        p[i] = (struct pollfd){.fd = rc[i].fd, .events = POLLRDHUP};
    do {
        hung = 0;
        if (poll(p, (nfds_t)n, 10) < 0)
            return -1;
        for (int i = 0; i < n; i++)
            hung += (p[i].revents & (POLLHUP | POLLRDHUP)) != 0;
    } while (hung < want && harness_now() < deadline);
    return hung;
}

static int input_as_user(harness *h, void *arg)
{
    uid_flags *f = arg;
    raw_conn rc[INPUT_SESSIONS];
    uint8_t *frame = calloc(1, PT_WIRE_HEADER + INPUT_SENT);
    int hung, rc_send;

    WCHECK(frame != NULL);
    pt_wire_len_put(frame, INPUT_FRAME);
    for (int i = 0; i < INPUT_SESSIONS; i++) {
        WCHECK_EQ(raw_connect(&rc[i], h->sock), 0);
        WCHECK_EQ(raw_hello(&rc[i], PT_PROTOCOL_VERSION), 0);
        /* The daemon may cut a session off before all of it is sent. */
        rc_send = raw_send(&rc[i], frame, PT_WIRE_HEADER + INPUT_SENT);
        WCHECK(rc_send == 0 || rc_send == -EPIPE || rc_send == -ECONNRESET);
    }
    hung = count_hung_up(rc, INPUT_SESSIONS, INPUT_SESSIONS - 16, 2 * HARNESS_DEADLINE);
    atomic_store(&f->ready, 1);
    for (int i = 0; i < INPUT_SESSIONS; i++)
        raw_close(&rc[i]);
    free(frame);
    if (hung < INPUT_SESSIONS - 16 || hung > INPUT_SESSIONS - 4) {
        fprintf(stderr, "%d of %d sessions holding %u bytes each were cut off, want %d..%d\n", hung,
                INPUT_SESSIONS, INPUT_SENT, INPUT_SESSIONS - 16, INPUT_SESSIONS - 4);
        return 2;
    }
    return 0;
}

/* Does the daemon's log have a line with word? */
static int log_has_word(const harness *h, const char *word)
{
    char line[1024];
    FILE *f = fopen(h->log, "r");
    int found = 0;

    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, word) != NULL;
    if (f)
        fclose(f);
    return found;
}

/* One user's sessions that each hold an unfinished frame may together hold
 * no more than --max-input-per-uid: the ones past it are cut off (with a
 * warning naming the option) while the rest, and other users, are served. */
static void test_input_per_uid(void **state)
{
    static const char *const args[] = {"--max-input-per-uid", INPUT_QUOTA_ARG, "--frame-timeout",
                                       "60", NULL};
    harness *h = *state;

    if (user_beside_bystander(h, args, input_as_user, "a user held unfinished frames"))
        skip();
    if (!log_has_word(h, "(--max-input-per-uid)"))
        fail_msg("no warning naming --max-input-per-uid in the daemon's log");
    h->passed = 1;
}

/* ------------------------------------------------------------------ */
/* Memory given back after a peak                                      */
/* ------------------------------------------------------------------ */

#define RSS_SESSIONS 16
#define RSS_EACH     4096

/* The daemon's resident memory in KiB, from /proc. */
static long daemon_rss_kib(const harness *h)
{
    char path[64], line[256];
    long kib = -1;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/status", (int)h->daemon);
    f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    assert_true(kib > 0);
    return kib;
}

/* n sessions each park per blocking acquires of the lock behind holder's
 * handle lock; returns when the daemon has them all. */
static void park_many(harness *h, raw_conn *holder, uint32_t lock, raw_conn *rc, int n, int per)
{
    uint8_t *batch = malloc((size_t)per * 32);
    uint32_t handle, parked = 0;
    double deadline;

    assert_non_null(batch);
    for (int i = 0; i < n; i++) {
        assert_int_equal(raw_connect(&rc[i], h->sock), 0);
        assert_int_equal(raw_hello(&rc[i], PT_PROTOCOL_VERSION), 0);
        assert_int_equal(raw_open(&rc[i], "lim.rss", PT_KIND_LOCK, PT_OPEN_EXISTING, &handle), 0);
        assert_int_equal(raw_send(&rc[i], batch, acquire_batch(batch, handle, per, -1)), 0);
    }
    free(batch);
    deadline = harness_now() + 4 * HARNESS_DEADLINE;
    while (parked < (uint32_t)(n * per) && harness_now() < deadline) {
        assert_int_equal(raw_state_waiting(holder, lock, &parked), 0);
        harness_tick();
    }
    if (parked != (uint32_t)(n * per))
        fail_msg("%u calls parked, want %d", parked, n * per);
}

/* 16 sessions x 4096 waiters take the daemon some 10 MB up; once they have
 * left, it gives the memory back to within 20% of where it started. */
static void test_memory_given_back(void **state)
{
    harness *h = *state;
    raw_conn holder, rc[RSS_SESSIONS];
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    Pythread__Response *resp;
    uint32_t lock, parked = 1;
    long base, peak, now = 0;
    double deadline;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    /* A sanitizer's allocator keeps freed memory on purpose. */
    h->passed = 1;
    skip();
#endif
    assert_int_equal(raw_connect(&holder, h->sock), 0);
    assert_int_equal(raw_hello(&holder, PT_PROTOCOL_VERSION), 0);
    assert_int_equal(raw_open(&holder, "lim.rss", PT_KIND_LOCK, PT_OPEN_TRANSIENT, &lock), 0);
    req.op = PYTHREAD__OP__OP_ACQUIRE;
    req.has_handle = 1;
    req.handle = lock;
    resp = raw_call(&holder, &req, HARNESS_DEADLINE);
    assert_true(resp != NULL && resp->ok);
    /* A small round first, so the baseline has every code path's pages. */
    park_many(h, &holder, lock, rc, 1, 64);
    raw_close(&rc[0]);
    base = daemon_rss_kib(h);
    park_many(h, &holder, lock, rc, RSS_SESSIONS, RSS_EACH);
    peak = daemon_rss_kib(h);
    if (peak - base < 8 * 1024)
        fail_msg("the daemon went from %ld to only %ld KiB with %d waiters", base, peak,
                 RSS_SESSIONS * RSS_EACH);
    for (int i = 0; i < RSS_SESSIONS; i++)
        raw_close(&rc[i]);
    deadline = harness_now() + 2 * HARNESS_DEADLINE;
    while (parked != 0 && harness_now() < deadline) {
        assert_int_equal(raw_state_waiting(&holder, lock, &parked), 0);
        harness_tick();
    }
    assert_int_equal(parked, 0);
    while (harness_now() < deadline && (now = daemon_rss_kib(h)) > base * 12 / 10)
        harness_tick();
    raw_close(&holder);
    if (now > base * 12 / 10)
        fail_msg("the daemon's memory went from %ld KiB to %ld KiB with %d waiters and is still "
                 "%ld KiB after they left, over 120%% of where it started",
                 base, peak, RSS_SESSIONS * RSS_EACH, now);
    h->passed = 1;
}

static void test_sessions_per_uid(void **state)
{
    static const char *const args[] = {"--max-sessions-per-uid", "2", NULL};
    harness *h = *state;
    pt_client *c[3] = {NULL};

    restart_with(h, args);
    PT_ASSERT_EQ(open_within_deadline(&c[0]), 0);
    PT_ASSERT_EQ(open_within_deadline(&c[1]), 0);
    PT_ASSERT_EQ(pt_client_open(&c[2], NULL), PT_ELIMIT);
    if (!strstr(pt_last_error_message(), "--max-sessions-per-uid"))
        fail_msg("message does not name the flag: %s", pt_last_error_message());
    pt_client_close(c[0]);
    PT_ASSERT_EQ(open_within_deadline(&c[2]), 0);
    pt_client_close(c[1]);
    pt_client_close(c[2]);
    h->passed = 1;
}

/* Stall inside the header, then inside a body: each is cut off with an
 * error frame after --frame-timeout, and nobody else waits meanwhile. */
static void test_slowloris(void **state)
{
    static const char *const args[] = {"--frame-timeout", FRAME_TIMEOUT_ARG, NULL};
    static const struct {
        const char *what;
        size_t len;
    } cases[] = {{"two bytes of a header", 2}, {"a header and half a body", 6}};
    harness *h = *state;
    pt_client *c = NULL;
    pt_lock *l = NULL;

    restart_with(h, args);
    PT_ASSERT_EQ(open_within_deadline(&c), 0);
    PT_ASSERT_EQ(pt_lock_open(c, "lim.slow", PT_OPEN_TRANSIENT, 0, &l), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t bytes[8] = {0, 0, 0, 4, 0x08, 0x01, 0x10, 0x07};
        raw_conn rc;
        raw_closing seen;
        double t0;

        assert_int_equal(raw_connect(&rc, h->sock), 0);
        assert_int_equal(raw_hello(&rc, PT_PROTOCOL_VERSION), 0);
        assert_int_equal(raw_send(&rc, bytes, cases[i].len), 0);
        t0 = harness_now();
        /* Served at once while the slow peer holds its half frame. */
        for (int k = 0; k < 20; k++)
            bystander_prompt(l, cases[i].what);
        if (!raw_wait_eof(&rc, FRAME_TIMEOUT + HARNESS_DEADLINE, &seen)) {
            raw_close(&rc);
            fail_msg("%s: not cut off after --frame-timeout %d", cases[i].what, FRAME_TIMEOUT);
        }
        raw_close(&rc);
        if (harness_now() - t0 < 0.9 * FRAME_TIMEOUT)
            fail_msg("%s: cut off after %.3f s, before the %d s timeout", cases[i].what,
                     harness_now() - t0, FRAME_TIMEOUT);
        if (seen.eproto != 1 || !strstr(seen.message, "--frame-timeout"))
            fail_msg("%s: %d error frames, message \"%s\"", cases[i].what, seen.eproto,
                     seen.message);
    }
    /* A peer that sends each frame in two pieces, well within the timeout,
     * is served for longer than the timeout: it runs from the start of
     * each frame, not of the session. */
    {
        Pythread__Request req = PYTHREAD__REQUEST__INIT;
        uint8_t frame[64];
        double t0 = harness_now();
        raw_conn rc;
        Pythread__Response *resp;
        size_t n;

        assert_int_equal(raw_connect(&rc, h->sock), 0);
        assert_int_equal(raw_hello(&rc, PT_PROTOCOL_VERSION), 0);
        req.op = PYTHREAD__OP__OP_STATUS;
        for (uint64_t id = 100; harness_now() - t0 < 2.5 * FRAME_TIMEOUT; id++) {
            double until = harness_now() + 0.2 * FRAME_TIMEOUT;

            req.id = id;
            n = pt_wire_request_frame_size(&req);
            assert_true(n <= sizeof frame);
            pt_wire_request_frame_pack(&req, frame);
            assert_int_equal(raw_send(&rc, frame, n / 2), 0);
            while (harness_now() < until)
                harness_tick();
            assert_int_equal(raw_send(&rc, frame + n / 2, n - n / 2), 0);
            assert_int_equal(raw_recv(&rc, HARNESS_DEADLINE, &resp), RAW_FRAME);
            assert_int_equal(resp->id, id);
        }
        raw_close(&rc);
    }
    PT_ASSERT_EQ(pt_lock_close(l), 0);
    pt_client_close(c);
    h->passed = 1;
}

/* Requests sent without ever reading an answer: the daemon stops reading
 * at --max-output, then cuts the session off after --stall-timeout. */
static void test_never_reads(void **state)
{
    static const char *const args[] = {"--max-output", "65536", "--stall-timeout", "1", NULL};
    harness *h = *state;
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    uint8_t batch[64 * 64];
    size_t one, n = 0;
    pt_client *c = NULL;
    pt_lock *l = NULL;
    raw_conn rc;
    raw_closing seen;
    double t0, deadline;
    int cut = 0;

    restart_with(h, args);
    PT_ASSERT_EQ(open_within_deadline(&c), 0);
    PT_ASSERT_EQ(pt_lock_open(c, "lim.reader", PT_OPEN_TRANSIENT, 0, &l), 0);
    assert_int_equal(raw_connect(&rc, h->sock), 0);
    assert_int_equal(raw_hello(&rc, PT_PROTOCOL_VERSION), 0);
    /* STATUS answers are some hundred bytes each: many per request byte. */
    req.id = 1;
    req.op = PYTHREAD__OP__OP_STATUS;
    one = pt_wire_request_frame_size(&req);
    while (n + one <= sizeof batch) {
        pt_wire_request_frame_pack(&req, batch + n);
        n += one;
    }
    t0 = harness_now();
    deadline = t0 + 10 * HARNESS_DEADLINE;
    while (!cut && harness_now() < deadline) {
        /* raw_send blocks once both socket buffers are full; the daemon
         * then has stopped reading us. A failure is the cut-off. */
        if (raw_send(&rc, batch, n) < 0)
            cut = 1;
        bystander_prompt(l, "a peer left its answers unread");
        if (harness_now() - t0 > 1.0 && !cut) {
            /* Past the stall timeout: whatever is still buffered is read
             * up to an EOF, proving the session was closed. */
            cut = raw_wait_eof(&rc, HARNESS_DEADLINE, &seen);
        }
    }
    raw_close(&rc);
    if (!cut)
        fail_msg("a peer that never reads was not cut off");
    bystander_prompt(l, "after the cut-off");
    PT_ASSERT_EQ(pt_lock_close(l), 0);
    pt_client_close(c);
    h->passed = 1;
}

/*
 * A peer that sends a long batch before reading any answer: the daemon
 * pauses its input at --max-output with frames of the batch already read
 * and held, and once the peer reads, serves every one of them in order,
 * without cutting it off.
 */
static void test_slow_reader_catches_up(void **state)
{
    enum { N = 8000 };
    static const char *const args[] = {"--max-output", "65536", NULL};
    harness *h = *state;
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    Pythread__Response *resp = NULL;
    uint8_t *batch;
    size_t n = 0;
    pt_client *c = NULL;
    pt_lock *l = NULL;
    raw_conn rc;

    restart_with(h, args);
    PT_ASSERT_EQ(open_within_deadline(&c), 0);
    PT_ASSERT_EQ(pt_lock_open(c, "lim.catchup", PT_OPEN_TRANSIENT, 0, &l), 0);
    assert_int_equal(raw_connect(&rc, h->sock), 0);
    assert_int_equal(raw_hello(&rc, PT_PROTOCOL_VERSION), 0);
    /* STATUS answers are some hundred bytes each: far past the cap and the
     * socket buffers while nothing is read. */
    batch = malloc(N * 16);
    assert_non_null(batch);
    req.op = PYTHREAD__OP__OP_STATUS;
    for (uint64_t id = 1; id <= N; id++) {
        req.id = 1000 + id;
        assert_true(n + pt_wire_request_frame_size(&req) <= N * 16);
        pt_wire_request_frame_pack(&req, batch + n);
        n += pt_wire_request_frame_size(&req);
    }
    assert_int_equal(raw_send(&rc, batch, n), 0);
    free(batch);
    bystander_prompt(l, "a peer had a long batch of answers unread");
    for (uint64_t id = 1; id <= N; id++) {
        int r = raw_recv(&rc, HARNESS_DEADLINE, &resp);

        if (r != RAW_FRAME)
            fail_msg("answer %llu of %d: %s", (unsigned long long)id, N,
                     r == RAW_EOF ? "the session was closed" : "none came");
        if (resp->id != 1000 + id)
            fail_msg("answer %llu of %d has id %llu, expected %llu", (unsigned long long)id, N,
                     (unsigned long long)resp->id, (unsigned long long)(1000 + id));
        if (resp->has_status && resp->status != 0)
            fail_msg("status request %llu: %s", (unsigned long long)resp->id,
                     pt_err_name(resp->status));
    }
    /* Still served, and nothing more came. */
    req.id = 7;
    resp = raw_call(&rc, &req, HARNESS_DEADLINE);
    if (!resp)
        fail_msg("the session did not answer after catching up");
    raw_close(&rc);
    bystander_prompt(l, "after the catch-up");
    PT_ASSERT_EQ(pt_lock_close(l), 0);
    pt_client_close(c);
    h->passed = 1;
}

/* The daemon raises its open file limit to the hard limit, even when it
 * inherits a low soft limit. */
static void test_nofile_raised(void **state)
{
    harness *h = *state;
    char path[64], line[256];
    struct rlimit mine, low;
    FILE *f;
    int found = 0;

    assert_int_equal(getrlimit(RLIMIT_NOFILE, &mine), 0);
    low = mine;
    low.rlim_cur = mine.rlim_max > 256 ? 256 : mine.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    harness_daemon_stop(h);
    harness_daemon_start(h);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &mine), 0);
    snprintf(path, sizeof path, "/proc/%d/limits", (int)h->daemon);
    f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f)) {
        unsigned long long soft, hard;
        if (sscanf(line, "Max open files %llu %llu", &soft, &hard) == 2) {
            found = 1;
            if (soft != hard)
                fail_msg("pythreadd's open file limit is %llu, its hard limit %llu", soft, hard);
        }
    }
    fclose(f);
    assert_true(found);
    h->passed = 1;
}

/* --help names every limit with its default. */
static void test_help_lists_limits(void **state)
{
    static const char *const flags[] = {
        "--max-frame BYTES",     "(default 65536",         "--max-sessions N",
        "(default 65536)",       "--max-objects N",        "(default 1000000)",
        "--max-handles N",       "--max-waiters N",        "--max-objects-per-uid",
        "(default 32768)",       "--max-sessions-per-uid", "(default 4096)",
        "--max-handles-per-uid", "(default 131072)",       "--max-waiters-per-uid",
        "(default 65536)",       "--max-output-per-uid",   "(default 16777216)",
        "--max-output BYTES",    "(default 8388608)",      "--stall-timeout",
        "(default 30)",          "--frame-timeout",        "(default 10)",
        "--socket-mode",         "(default 0666",          "--max-input-per-uid",
        "(default 8388608)",     "--spin-usec USEC",       "(default 50, 0..100000)",
    };
    harness *h = *state;
    char cmd[512], out[8192];
    size_t len;
    FILE *p;

    snprintf(cmd, sizeof cmd, "'%s' --help", PT_DAEMON_PATH);
    p = popen(cmd, "r");
    assert_non_null(p);
    len = fread(out, 1, sizeof out - 1, p);
    out[len] = '\0';
    assert_int_equal(pclose(p), 0);
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        if (!strstr(out, flags[i]))
            fail_msg("pythreadd --help lacks \"%s\":\n%s", flags[i], out);
    }
    h->passed = 1;
}

#define LIMIT_TEST(fn) cmocka_unit_test_setup_teardown(fn, harness_setup, harness_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        LIMIT_TEST(test_objects_per_uid),   LIMIT_TEST(test_sessions_per_uid),
        LIMIT_TEST(test_handles_per_uid),   LIMIT_TEST(test_waiters_per_uid),
        LIMIT_TEST(test_output_per_uid),    LIMIT_TEST(test_input_per_uid),
        LIMIT_TEST(test_memory_given_back), LIMIT_TEST(test_slowloris),
        LIMIT_TEST(test_never_reads),       LIMIT_TEST(test_slow_reader_catches_up),
        LIMIT_TEST(test_nofile_raised),     LIMIT_TEST(test_help_lists_limits),
    };

    return cmocka_run_group_tests_name("limits: hardening", tests, NULL, NULL);
}
