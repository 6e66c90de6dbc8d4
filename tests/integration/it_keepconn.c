/*
 * it_keepconn.c - a planned restart keeps the connections themselves:
 * across SIGUSR2 (pythreadd --state-dir re-executing itself) a raw-wire
 * client that knows nothing of resuming keeps its socket and its session,
 * its lock and its parked acquire (answered there, under its request id),
 * a frame it had half sent is finished and served by the new image, and
 * calls sent during the pause are read by it. Library clients do not
 * reconnect: two processes counting under a Lock through the shared words
 * lose no increment and never overlap, and a lock taken through a word
 * before the restart is released after it. A kill -9 cannot keep them:
 * the library reconnects and takes its session up, as before; so does an
 * upgrade to a program that knows nothing of kept connections (it closes
 * them as extra sockets).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "pythread_inspect.h"

/* The suite runs a second time with the fast path off. */
static int fast_path_off(void)
{
    const char *s = getenv("PYTHREAD_FASTPATH");

    return s != NULL && strcmp(s, "0") == 0;
}

static const char *state_args[6];

/* The daemon with --state-dir, keeping sessions for grace seconds. */
static void daemon_with_state(harness *h, const char *grace)
{
    if (h->daemon) {
        harness_kill(h, h->daemon);
        h->daemon = 0;
    }
    state_args[0] = "--state-dir";
    state_args[1] = h->dir;
    state_args[2] = "--grace";
    state_args[3] = grace;
    state_args[4] = getenv("PTVERBOSE") ? "--verbose" : NULL;
    state_args[5] = NULL;
    h->daemon_args = state_args;
    harness_daemon_start(h);
}

/* SIGUSR2, then the new image's restart is done (the nth such line). */
static void upgrade(harness *h, int nth)
{
    assert_int_equal(kill(h->daemon, SIGUSR2), 0);
    harness_log_wait(h, "restart done", nth, HARNESS_DEADLINE);
}

/* The session `id` as pythreadctl sessions sees it. */
typedef struct session_find {
    uint64_t id;
    int found;
    pt_inspect_session s;
} session_find;

static int session_one(void *arg, const pt_inspect_session *s)
{
    session_find *f = arg;

    if (s->id == f->id) {
        f->found = 1;
        f->s = *s;
    }
    return 0;
}

static pt_inspect_session session_of(uint64_t id)
{
    session_find f = {.id = id};
    pt_client *c = NULL;

    PT_ASSERT_OK(pt_client_open(&c, NULL));
    PT_ASSERT_OK(pt_inspect_sessions(c, session_one, &f));
    pt_client_close(c);
    if (!f.found)
        fail_msg("session %llu is not among the daemon's sessions", (unsigned long long)id);
    return f.s;
}

static ino_t inode_of(int fd)
{
    struct stat st;

    assert_int_equal(fstat(fd, &st), 0);
    return st.st_ino;
}

/* ------------------------------------------------------------------ */
/* The raw wire                                                        */
/* ------------------------------------------------------------------ */

static uint64_t raw_session_open(raw_conn *rc, const char *sock)
{
    Pythread__Request req;
    Pythread__HelloArgs hello;
    Pythread__Response *r;

    assert_int_equal(raw_connect(rc, sock), 0);
    raw_hello_init(&req, &hello, PT_PROTOCOL_VERSION);
    hello.client_name = "it_keepconn raw";
    r = raw_call(rc, &req, HARNESS_DEADLINE);
    assert_non_null(r);
    assert_non_null(r->hello);
    return r->hello->session;
}

static void lock_req(Pythread__Request *req, Pythread__Op op, uint32_t handle, uint64_t thread,
                     int blocking)
{
    *req = (Pythread__Request)PYTHREAD__REQUEST__INIT;
    req->op = op;
    req->has_handle = req->has_thread = 1;
    req->handle = handle;
    req->thread = thread;
    if (op == PYTHREAD__OP__OP_ACQUIRE) {
        req->has_blocking = 1;
        req->blocking = blocking;
    }
}

/* What came back for the calls ids[0..n): ok and status of each. */
typedef struct answer {
    int seen, ok, status, locked;
} answer;

/* Read until every call in ids has its answer (others are dropped). */
static void answers_wait(raw_conn *rc, const uint64_t *ids, answer *out, int n)
{
    double end = harness_now() + HARNESS_DEADLINE;
    int left = n;

    memset(out, 0, (size_t)n * sizeof(*out));
    while (left > 0) {
        Pythread__Response *r;
        double t = end - harness_now();
        int got = raw_recv(rc, t > 0 ? t : 0, &r);

        if (got != RAW_FRAME)
            fail_msg("%d answers never came on the kept connection (raw_recv: %d)", left, got);
        for (int i = 0; i < n; i++) {
            if (ids[i] == r->id && !out[i].seen) {
                out[i] = (answer){1, r->ok, r->has_status ? r->status : 0,
                                  r->state != NULL && r->state->locked};
                left--;
            }
        }
    }
}

/* A raw client holds kc.lock (thread 7) and waits for it on the same
 * connection (thread 8), and has half a frame sent, when SIGUSR2 comes:
 * the same socket goes on under the new image, the session is the same,
 * the half frame is finished and served, a call sent during the pause is
 * answered, the release works and the parked acquire is granted under its
 * own request id. */
static void test_raw_connection_kept_across_sigusr2(void **state)
{
    harness *h = *state;
    Pythread__Request req;
    Pythread__Response *r;
    pt_inspect_status before, after;
    pt_inspect_session s;
    uint8_t *frame;
    uint32_t handle, waiting = 0;
    uint64_t session, ids[2];
    answer ans[2];
    size_t len;
    raw_conn rc;

    daemon_with_state(h, "10");
    session = raw_session_open(&rc, h->sock);
    assert_int_equal(raw_open(&rc, "kc.lock", PT_KIND_LOCK, 0, &handle), 0);
    lock_req(&req, PYTHREAD__OP__OP_ACQUIRE, handle, 7, 0);
    r = raw_call(&rc, &req, HARNESS_DEADLINE);
    assert_non_null(r);
    assert_true(r->ok);
    lock_req(&req, PYTHREAD__OP__OP_ACQUIRE, handle, 8, 1);
    assert_int_equal(raw_send_request(&rc, &req), 0);
    ids[0] = req.id;
    for (double end = harness_now() + HARNESS_DEADLINE; waiting != 1; harness_tick()) {
        assert_int_equal(raw_state_waiting(&rc, handle, &waiting), 0);
        assert_true(harness_now() < end);
    }
    harness_status(&before);

    /* half of a frame before the restart, the rest after it */
    lock_req(&req, PYTHREAD__OP__OP_STATE, handle, 9, 0);
    req.id = rc.next_id++;
    ids[1] = req.id;
    len = pt_wire_request_frame_size(&req);
    frame = malloc(len);
    assert_non_null(frame);
    assert_int_equal(pt_wire_request_frame_pack(&req, frame), len);
    assert_int_equal(raw_send(&rc, frame, len / 2), 0);

    upgrade(h, 1);
    assert_int_equal(raw_send(&rc, frame + len / 2, len - len / 2), 0);
    free(frame);
    answers_wait(&rc, &ids[1], &ans[1], 1);
    assert_int_equal(ans[1].status, 0);
    assert_true(ans[1].locked); /* thread 7 still holds it */

    harness_status(&after);
    assert_int_equal(after.pid, before.pid);
    assert_int_equal(before.restored_sessions, 0);
    assert_true(after.restored_sessions >= 1);
    assert_true(after.sessions_kept_connection >= 1);
    s = session_of(session);
    assert_int_equal(s.pid, getpid());
    assert_true(s.connection_kept);
    {
        pt_client *c = NULL;
        pt_inspect_detail *d;

        PT_ASSERT_OK(pt_client_open(&c, NULL));
        PT_ASSERT_OK(pt_inspect_show(c, "kc.lock", &d));
        assert_int_equal(d->n_holders, 1);
        assert_int_equal(d->holders[0].session, session);
        assert_true(d->holders[0].connection_kept);
        assert_int_equal(d->object.restart, PT_RESTART_RECLAIMED);
        assert_int_equal(d->n_waiters, 1);
        assert_true(d->waiters[0].connection_kept);
        pt_inspect_detail_free(d);
        pt_client_close(c);
    }

    /* the release on the same socket; the parked acquire is granted there */
    lock_req(&req, PYTHREAD__OP__OP_RELEASE, handle, 7, 0);
    assert_int_equal(raw_send_request(&rc, &req), 0);
    ids[1] = req.id;
    answers_wait(&rc, ids, ans, 2);
    assert_int_equal(ans[1].status, 0);
    assert_int_equal(ans[0].status, 0);
    assert_true(ans[0].ok);
    /* and a call made during a second pause is read by the image after */
    assert_int_equal(kill(h->daemon, SIGUSR2), 0);
    lock_req(&req, PYTHREAD__OP__OP_RELEASE, handle, 8, 0);
    assert_int_equal(raw_send_request(&rc, &req), 0);
    ids[0] = req.id;
    answers_wait(&rc, ids, ans, 1);
    assert_int_equal(ans[0].status, 0);
    harness_log_wait(h, "restart done", 2, HARNESS_DEADLINE);
    assert_int_equal(session_of(session).pid, getpid());
    raw_close(&rc);
    h->passed = 1;
}

/* ------------------------------------------------------------------ */
/* Library clients                                                     */
/* ------------------------------------------------------------------ */

/* Rounds each worker counts after it has seen the restart done. */
#define ROUNDS_AFTER 2000

typedef struct shared {
    atomic_int inside;    /* holders of kc.count now: never more than one */
    atomic_int overlap;   /* times two were inside at once */
    atomic_int ready;     /* workers counting */
    atomic_int restarted; /* the new image is serving */
    long counter;         /* incremented under kc.count only */
    long rounds[2];       /* each worker's increments */
    uint64_t session_before[2], session_after[2];
    ino_t ino_before[2], ino_after[2];
} shared;

static shared *sh;

/* Counts under kc.count, through the shared word when it can, from before
 * the restart until ROUNDS_AFTER rounds after it. */
static int counter_worker(pt_client *c, int index, void *arg)
{
    double end = harness_now() + 30;
    struct stat st;
    long after = 0;
    pt_lock *l;

    (void)arg;
    WCHECK_EQ(pt_lock_open(c, "kc.count", 0, 0, &l), 0);
    WCHECK_EQ(fstat(pt_client_fd(c), &st), 0);
    sh->session_before[index] = pt_client_session_id(c);
    sh->ino_before[index] = st.st_ino;
    atomic_fetch_add(&sh->ready, 1);
    while (after < ROUNDS_AFTER) {
        WCHECK(harness_now() < end);
        /* a bound, so that a wake-up lost across the restart fails here,
         * at its line, instead of as a worker that never ends */
        WCHECK_EQ(pt_lock_acquire(l, 1, 10.0), 1);
        if (atomic_fetch_add(&sh->inside, 1) != 0)
            atomic_fetch_add(&sh->overlap, 1);
        sh->counter++;
        atomic_fetch_sub(&sh->inside, 1);
        WCHECK_EQ(pt_lock_release(l), 0);
        sh->rounds[index]++;
        if (atomic_load(&sh->restarted))
            after++;
    }
    WCHECK_EQ(fstat(pt_client_fd(c), &st), 0);
    sh->session_after[index] = pt_client_session_id(c);
    sh->ino_after[index] = st.st_ino;
    pt_lock_close(l);
    return 0;
}

/* The acquires made through shared words since the daemon's image began. */
static long fast_acquisitions(pt_client *c)
{
    const char *key = "acquisitions_total{path=\"fast\"} ";
    char *text = NULL, *p;
    size_t len;
    long n = -1;

    PT_ASSERT_OK(pt_inspect_metrics(c, &text, &len));
    p = strstr(text, key);
    if (p == NULL || sscanf(p + strlen(key), "%ld", &n) != 1)
        fail_msg("no fast acquisitions counter in the metrics text");
    free(text);
    return n;
}

/* Two processes count under kc.count while the daemon re-executes itself;
 * this process holds kc.held through its word across it. Nobody
 * reconnects, no increment is lost, nobody overlaps; the held lock is
 * released after the restart, and objects opened after it work. */
static void test_library_clients_keep_connections(void **state)
{
    harness *h = *state;
    pt_client *c = NULL;
    pt_lock *held, *again;
    pt_event *ev;
    pt_inspect_status st;
    uint64_t session;
    long fast;
    ino_t ino;
    pid_t pids[2];

    sh = harness_shm_alloc(h, sizeof(*sh));
    daemon_with_state(h, "10");
    PT_ASSERT_OK(pt_client_open(&c, NULL));
    PT_ASSERT_OK(pt_lock_open(c, "kc.held", 0, 0, &held));
    PT_ASSERT_OK(pt_event_open(c, "kc.event", 0, 0, &ev));
    PT_ASSERT_EQ(pt_lock_acquire(held, 1, -1), 1);
    session = pt_client_session_id(c);
    ino = inode_of(pt_client_fd(c));

    harness_workers(h, pids, 2, counter_worker, NULL);
    for (double end = harness_now() + HARNESS_DEADLINE; atomic_load(&sh->ready) < 2; harness_tick())
        assert_true(harness_now() < end);
    upgrade(h, 1);
    atomic_store(&sh->restarted, 1);
    harness_join(h, pids, 2, 40); /* their own bound is 30 s */
    assert_int_equal(sh->counter, sh->rounds[0] + sh->rounds[1]);
    assert_int_equal(atomic_load(&sh->overlap), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(sh->session_after[i], sh->session_before[i]);
        assert_int_equal(sh->ino_after[i], sh->ino_before[i]);
    }

    /* the lock taken through the word before: still held, released now */
    assert_int_equal(pt_client_session_id(c), session);
    assert_int_equal(inode_of(pt_client_fd(c)), ino);
    PT_ASSERT_EQ(pt_lock_locked(held), 1);
    PT_ASSERT_EQ(pt_lock_acquire(held, 0, -1), 0);
    PT_ASSERT_OK(pt_lock_release(held));
    PT_ASSERT_EQ(pt_lock_locked(held), 0);
    /* a look answered from a word would be stale: another session sets it */
    {
        pt_client *o = NULL;
        pt_event *oev;

        PT_ASSERT_OK(pt_client_open(&o, NULL));
        PT_ASSERT_OK(pt_event_open(o, "kc.event", 0, 0, &oev));
        PT_ASSERT_OK(pt_event_set(oev));
        pt_event_close(oev);
        pt_client_close(o);
    }
    PT_ASSERT_EQ(pt_event_is_set(ev), 1);
    /* opened after the restart, on the kept connection: through its word */
    fast = fast_acquisitions(c);
    PT_ASSERT_OK(pt_lock_open(c, "kc.after", 0, 0, &again));
    for (int i = 0; i < 100; i++) {
        PT_ASSERT_EQ(pt_lock_acquire(again, 1, -1), 1);
        PT_ASSERT_OK(pt_lock_release(again));
    }
    /* (every call is a request when the suite runs with PYTHREAD_FASTPATH=0) */
    if (!fast_path_off())
        assert_true(fast_acquisitions(c) - fast >= 100);
    pt_lock_close(again);

    harness_status(&st);
    assert_int_equal(st.sessions_kept_connection, st.sessions_taken_up);
    assert_true(st.sessions_kept_connection >= 3);
    /* no process took a session up by reconnecting */
    assert_int_equal(harness_log_count(h->log, "taken up again by pid"), 0);
    pt_event_close(ev);
    pt_lock_close(held);
    pt_client_close(c);
    h->passed = 1;
}

/* A crash cannot keep connections: the library reconnects and takes the
 * session up, with the lock it held. */
static void test_crash_still_resumes_by_reconnecting(void **state)
{
    harness *h = *state;
    pt_client *c = NULL;
    pt_inspect_status st;
    pt_lock *l;
    uint64_t session;
    ino_t ino;

    daemon_with_state(h, "10");
    PT_ASSERT_OK(pt_client_open(&c, NULL));
    PT_ASSERT_OK(pt_lock_open(c, "kc.crash", 0, 0, &l));
    PT_ASSERT_EQ(pt_lock_acquire(l, 1, -1), 1);
    session = pt_client_session_id(c);
    ino = inode_of(pt_client_fd(c));
    daemon_with_state(h, "10"); /* kill -9, then a new daemon */
    PT_ASSERT_OK(pt_client_session_wait(c, session));
    assert_int_not_equal(inode_of(pt_client_fd(c)), ino);
    assert_int_equal(pt_client_session_id(c), session);
    PT_ASSERT_EQ(pt_lock_locked(l), 1);
    PT_ASSERT_OK(pt_lock_release(l));
    harness_status(&st);
    assert_int_equal(st.sessions_kept_connection, 0);
    assert_true(st.sessions_taken_up >= 1);
    assert_int_equal(harness_log_count(h->log, "taken up again by pid"), 1);
    pt_lock_close(l);
    pt_client_close(c);
    h->passed = 1;
}

/* The program at the daemon's path is replaced by one that knows nothing
 * of kept connections (here: the same one without the table's name in
 * its environment, as an older version would be): it closes the sockets
 * as extra ones, and the library reconnects and takes its session up. */
static void test_upgrade_to_program_without_keep(void **state)
{
    harness *h = *state;
    char copy[200], script[600];
    pt_client *c = NULL;
    pt_inspect_status st;
    uint64_t session;
    pt_lock *l;
    ino_t ino;
    FILE *fp;
    int in, out;
    ssize_t n;
    char buf[65536];

    snprintf(copy, sizeof(copy), "%s/pythreadd-copy", h->dir);
    in = open(harness_daemon_program(), O_RDONLY | O_CLOEXEC);
    out = open(copy, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
    assert_true(in >= 0 && out >= 0);
    while ((n = read(in, buf, sizeof(buf))) > 0)
        assert_int_equal(write(out, buf, (size_t)n), n);
    close(in);
    assert_int_equal(close(out), 0);
    h->daemon_path = copy;
    daemon_with_state(h, "10");
    PT_ASSERT_OK(pt_client_open(&c, NULL));
    PT_ASSERT_OK(pt_lock_open(c, "kc.old", 0, 0, &l));
    PT_ASSERT_EQ(pt_lock_acquire(l, 1, -1), 1);
    session = pt_client_session_id(c);
    ino = inode_of(pt_client_fd(c));

    /* the "upgrade": a program that drops the table's name */
    assert_int_equal(unlink(copy), 0);
    snprintf(script, sizeof(script), "#!/bin/sh\nunset PYTHREAD_KEEP_TABLE\nexec %s \"$@\"\n",
             harness_daemon_program());
    fp = fopen(copy, "w");
    assert_non_null(fp);
    assert_true(fputs(script, fp) >= 0);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(chmod(copy, 0755), 0);

    assert_int_equal(kill(h->daemon, SIGUSR2), 0);
    harness_log_wait(h, "serving the first and closing the rest", 1, HARNESS_DEADLINE);
    /* that line comes before the closes: wait for the session to be taken
     * up on a new connection, or the wait below finds the old one open */
    harness_log_wait(h, "taken up again by pid", 1, HARNESS_DEADLINE);
    PT_ASSERT_OK(pt_client_session_wait(c, session));
    assert_int_not_equal(inode_of(pt_client_fd(c)), ino);
    PT_ASSERT_EQ(pt_lock_locked(l), 1);
    PT_ASSERT_OK(pt_lock_release(l));
    harness_status(&st);
    assert_int_equal(st.pid, h->daemon);
    assert_int_equal(st.sessions_kept_connection, 0);
    assert_true(st.sessions_taken_up >= 1);
    pt_lock_close(l);
    pt_client_close(c);
    h->passed = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_raw_connection_kept_across_sigusr2, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_library_clients_keep_connections, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_crash_still_resumes_by_reconnecting, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_to_program_without_keep, harness_setup,
                                        harness_teardown),
    };

    return cmocka_run_group_tests_name("integration.keepconn", tests, NULL, NULL);
}
