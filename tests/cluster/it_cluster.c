/*
 * it_cluster.c - pythreadd --etcd: three daemons as three hosts on a real
 * 3-member etcd cluster, and processes on each using the same cluster
 * objects through their own host's daemon.
 *
 * Locks exclude across hosts and hand over in order with growing tokens;
 * every kind keeps threading's semantics with its parties spread over the
 * hosts; a process that dies gives back at once; a daemon killed gives back
 * its processes' holds once its lease ends; a daemon stopped past its lease
 * finds its holder told, the lock another's with a larger token; a killed
 * etcd leader costs a pause, nothing else. Skipped (77) where etcd is not
 * installed.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "etcd_cluster.h"
#include "pythread.h"
#include "pythread_inspect.h"

#define HOSTS 3
/* The daemons' --etcd-ttl: short where a test waits for a lease to end,
 * long enough elsewhere that a busy machine (or an etcd election) costs no
 * lease: a keepalive must succeed within TTL less a quarter of it. */
#define TTL      2
#define TTL_LONG 10
#define DEADLINE 20.0 /* seconds for anything that should happen */

static pt_etcd_cluster etcd;
static char dir[128];
static int test_no;
static int ttl_now = TTL_LONG;

typedef struct daemon_proc {
    pid_t pid;
    char sock[200], log[200], host[16];
    char state[200]; /* --state-dir, when set */
} daemon_proc;

static daemon_proc daemons[HOSTS];

/* What the test and its workers share (MAP_SHARED, so forked workers see
 * it). */
typedef struct shared {
    atomic_int inside, overlap, done, go, ready;
    atomic_int order[64];
    atomic_int norder;
    uint64_t last_token;
    atomic_int token_back; /* a token not above the one before it */
    atomic_long rounds;
    atomic_int result[HOSTS];
    uint64_t token[HOSTS];
    double at[HOSTS];
} shared;

static shared *sh;

static double now_s(void)
{
    return pt_etcd_now();
}

static void nap(void)
{
    nanosleep(&(struct timespec){0, 5000000}, NULL);
}

/* ---- the daemons ------------------------------------------------------ */

static void daemon_start(int i)
{
    daemon_proc *d = &daemons[i];
    char prefix[32], ttl[8], err[300];
    const char *args[] = {"--etcd", etcd.endpoints, "--etcd-prefix", prefix,        "--etcd-ttl",
                          ttl,      "--host-name",  d->host,         "--state-dir", d->state,
                          NULL};

    snprintf(prefix, sizeof(prefix), "/it%d/", test_no);
    snprintf(ttl, sizeof(ttl), "%d", ttl_now);
    if (d->state[0] == '\0')
        args[8] = NULL;
    d->pid =
        pt_etcd_daemon_start(PT_DAEMON_PATH, d->sock, d->log, args, DEADLINE, err, sizeof(err));
    if (d->pid < 0)
        fail_msg("host %s: %s", d->host, err);
}

static void daemon_signal(int i, int sig)
{
    if (daemons[i].pid > 0)
        kill(daemons[i].pid, sig);
}

static void daemon_reap(int i)
{
    if (daemons[i].pid > 0)
        waitpid(daemons[i].pid, NULL, 0);
    daemons[i].pid = 0;
}

static void show_logs(void)
{
    for (int i = 0; i < HOSTS; i++)
        pt_etcd_file_show(daemons[i].host, daemons[i].log);
}

/* ---- workers ---------------------------------------------------------- */

typedef int (*work_fn)(pt_client *c, int host, void *arg);

/* The test's workers, so that teardown ends those a failed test left. */
static pid_t workers[32];
static int nworkers;

/* A process on host's daemon running fn; its exit status is fn's. */
static pid_t worker(int host, work_fn fn, void *arg)
{
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        pt_client *c = NULL;
        int r = pt_client_open(&c, daemons[host].sock);

        if (r < 0) {
            fprintf(stderr, "worker on %s: %s\n", daemons[host].host, pt_last_error_message());
            _exit(90);
        }
        r = fn(c, host, arg);
        pt_client_close(c);
        _exit(r);
    }
    if (nworkers < (int)(sizeof(workers) / sizeof(workers[0])))
        workers[nworkers++] = pid;
    return pid;
}

/* The workers not reaped yet (a child's pid is not reused before): killed
 * and reaped. */
static void workers_end(void)
{
    for (int i = 0; i < nworkers; i++) {
        if (waitpid(workers[i], NULL, WNOHANG) == 0) {
            kill(workers[i], SIGKILL);
            waitpid(workers[i], NULL, 0);
        }
    }
    nworkers = 0;
}

/* Each worker's exit status 0 within the deadline. */
static void join(pid_t *pids, int n)
{
    double end = now_s() + 3 * DEADLINE;

    for (int i = 0; i < n; i++) {
        int st = 0;
        pid_t w;

        while ((w = waitpid(pids[i], &st, WNOHANG)) == 0 && now_s() < end)
            nap();
        if (w != pids[i]) {
            kill(pids[i], SIGKILL);
            waitpid(pids[i], NULL, 0);
            show_logs();
            fail_msg("worker %d did not end within %.0f s", i, 3 * DEADLINE);
        }
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            show_logs();
            fail_msg("worker %d ended with status %d", i, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        }
    }
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #cond,                   \
                    pt_last_error_message());                                                      \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

static void wait_flag(atomic_int *flag, int value)
{
    double end = now_s() + DEADLINE;

    while (atomic_load(flag) < value && now_s() < end)
        nap();
}

/* ---- setup ------------------------------------------------------------ */

static int group_setup(void **state)
{
    (void)state;
    if (pt_etcd_cluster_start_or_skip(&etcd, 3, DEADLINE) != 0)
        return -1;
    snprintf(dir, sizeof(dir), "/tmp/pt-cluster.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return sh == MAP_FAILED ? -1 : 0;
}

static int group_teardown(void **state)
{
    char cmd[200];

    (void)state;
    pt_etcd_cluster_stop(&etcd);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Three daemons on a prefix of the test's own, each host's log apart. */
static int setup_ttl(int ttl)
{
    ttl_now = ttl;
    test_no++;
    memset(sh, 0, sizeof(*sh));
    for (int i = 0; i < HOSTS; i++) {
        snprintf(daemons[i].host, sizeof(daemons[i].host), "h%d", i);
        snprintf(daemons[i].sock, sizeof(daemons[i].sock), "%s/t%d-h%d.sock", dir, test_no, i);
        snprintf(daemons[i].log, sizeof(daemons[i].log), "%s/t%d-h%d.log", dir, test_no, i);
        daemons[i].state[0] = '\0';
        daemon_start(i);
    }
    return 0;
}

static int setup(void **state)
{
    (void)state;
    return setup_ttl(TTL_LONG);
}

/* For the tests that wait for a lease to end. */
static int setup_short(void **state)
{
    (void)state;
    return setup_ttl(TTL);
}

/* Each daemon still running stops cleanly on SIGTERM, exit status 0 (a
 * sanitizer's report at exit would change it). */
static int teardown(void **state)
{
    int bad = 0;

    (void)state;
    workers_end();
    for (int i = 0; i < HOSTS; i++) {
        int st = 0;

        if (daemons[i].pid <= 0)
            continue;
        daemon_signal(i, SIGCONT);
        daemon_signal(i, SIGTERM);
        waitpid(daemons[i].pid, &st, 0);
        daemons[i].pid = 0;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "pythreadd %s ended with status %d on SIGTERM\n", daemons[i].host,
                    WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
            bad = 1;
        }
    }
    if (bad)
        show_logs();
    return bad ? -1 : 0;
}

/* ---- a lock across hosts ---------------------------------------------- */

#define ROUNDS 20

/* ROUNDS turns under the cluster lock "L": never two inside, tokens only
 * growing from one holder to the next. */
static int count_rounds(pt_client *c, int host, void *arg)
{
    pt_lock *l;
    uint64_t token;

    (void)host, (void)arg;
    CHECK(pt_lock_open(c, "L", PT_OPEN_CLUSTER, 0, &l) == 0);
    atomic_fetch_add(&sh->ready, 1);
    for (int i = 0; i < ROUNDS; i++) {
        CHECK(pt_lock_acquire_fenced(l, 1, DEADLINE, &token) == 1);
        if (atomic_fetch_add(&sh->inside, 1) != 0)
            atomic_fetch_add(&sh->overlap, 1);
        if (token <= sh->last_token)
            atomic_fetch_add(&sh->token_back, 1);
        sh->last_token = token;
        atomic_fetch_add(&sh->rounds, 1);
        atomic_fetch_sub(&sh->inside, 1);
        CHECK(pt_lock_release(l) == 0);
    }
    CHECK(pt_lock_close(l) == 0);
    return 0;
}

/* What status through host's daemon says of the cluster, once its copy
 * counts n hosts. */
static void status_with(int host, uint32_t n, pt_inspect_status *st)
{
    pt_client *c = NULL;

    assert_int_equal(pt_client_open(&c, daemons[host].sock), 0);
    for (double end = now_s() + DEADLINE;;) {
        assert_int_equal(pt_inspect_status_get(c, st), 0);
        if (st->cluster_nmembers == n && st->cluster_lease != 0)
            break;
        assert_true(now_s() < end);
        nap();
    }
    pt_client_close(c);
}

static void test_lock_excludes_across_hosts(void **state)
{
    pt_inspect_status st;
    pid_t pids[HOSTS];

    (void)state;
    /* status: this host, the three, a lease sure for at most its ttl */
    status_with(1, HOSTS, &st);
    assert_string_equal(st.cluster_host, "h1");
    assert_string_equal(st.cluster_members, "h0 h1 h2"); /* in name order */
    assert_true(st.cluster_lease_seconds > 0 && st.cluster_lease_seconds <= TTL_LONG);
    assert_string_equal(st.cluster_endpoints, etcd.endpoints);
    for (int i = 0; i < HOSTS; i++)
        pids[i] = worker(i, count_rounds, NULL);
    join(pids, HOSTS);
    assert_int_equal(atomic_load(&sh->rounds), HOSTS * ROUNDS);
    assert_int_equal(atomic_load(&sh->overlap), 0);
    assert_int_equal(atomic_load(&sh->token_back), 0);
}

/* ---- every kind, its parties on three hosts --------------------------- */

/* Waits at the cluster Event "E", then at Barrier "B" (3 parties), takes a
 * permit of BoundedSemaphore "S" (2), and waits on Condition "C" for the
 * test's notify. */
static int kinds_party(pt_client *c, int host, void *arg)
{
    pt_event *e;
    pt_barrier *b;
    pt_semaphore *s;
    pt_condition *cv;
    int index;

    (void)arg;
    CHECK(pt_event_open(c, "E", PT_OPEN_CLUSTER, 0, &e) == 0);
    CHECK(pt_barrier_open(c, "B", 3, NULL, NULL, PT_FOREVER, PT_OPEN_CLUSTER, 0, &b) == 0);
    CHECK(pt_semaphore_open(c, "S", 2, 1, PT_OPEN_CLUSTER, 0, &s) == 0);
    CHECK(pt_condition_open(c, "C", NULL, PT_OPEN_CLUSTER, 0, &cv) == 0);
    atomic_fetch_add(&sh->ready, 1);
    CHECK(pt_event_wait(e, DEADLINE) == 1);
    index = pt_barrier_wait(b, DEADLINE);
    CHECK(index >= 0 && index < 3);
    sh->result[host] = index;
    CHECK(pt_semaphore_acquire(s, 1, DEADLINE) == 1);
    if (atomic_fetch_add(&sh->inside, 1) >= 2)
        atomic_fetch_add(&sh->overlap, 1);
    nap();
    atomic_fetch_sub(&sh->inside, 1);
    CHECK(pt_semaphore_release(s, 1) == 0);
    CHECK(pt_condition_acquire(cv, 1, DEADLINE) == 1);
    atomic_fetch_add(&sh->done, 1);
    CHECK(pt_condition_wait(cv, DEADLINE) == 1); /* notified, not timed out */
    CHECK(pt_condition_release(cv) == 0);
    pt_condition_close(cv);
    pt_semaphore_close(s);
    pt_barrier_close(b);
    pt_event_close(e);
    return 0;
}

static void test_every_kind_across_hosts(void **state)
{
    pt_client *c = NULL;
    pt_event *e = NULL;
    pt_condition *cv = NULL;
    pt_semaphore *s = NULL;
    pt_rlock *rl = NULL, *other = NULL;
    pt_client *c1 = NULL;
    int64_t value = -1;
    pid_t pids[HOSTS];
    int seen = 0;

    (void)state;
    for (int i = 0; i < HOSTS; i++)
        pids[i] = worker(i, kinds_party, NULL);
    wait_flag(&sh->ready, HOSTS);
    assert_int_equal(pt_client_open(&c, daemons[1].sock), 0);
    assert_int_equal(pt_event_open(c, "E", PT_OPEN_CLUSTER, 0, &e), 0);
    assert_int_equal(pt_event_is_set(e), 0);
    assert_int_equal(pt_event_set(e), 0);
    /* every party past the barrier and through the semaphore, then waiting
     * on C (with its lock given up): a notify_all wakes them all */
    assert_int_equal(pt_condition_open(c, "C", NULL, PT_OPEN_CLUSTER, 0, &cv), 0);
    wait_flag(&sh->done, HOSTS);
    for (double end = now_s() + DEADLINE; now_s() < end;) {
        assert_int_equal(pt_condition_acquire(cv, 1, DEADLINE), 1);
        seen = pt_condition_notify_all(cv);
        assert_int_equal(pt_condition_release(cv), 0);
        if (seen == 0 && atomic_load(&sh->done) == HOSTS)
            nap(); /* a party between its acquire and its wait */
        else
            break;
    }
    join(pids, HOSTS);
    assert_int_equal(atomic_load(&sh->overlap), 0);
    assert_int_equal(sh->result[0] + sh->result[1] + sh->result[2], 0 + 1 + 2);
    /* the permits all came back: the value is the cluster's, seen from host 1 */
    assert_int_equal(pt_semaphore_open(c, "S", 2, 1, PT_OPEN_CLUSTER, 0, &s), 0);
    assert_int_equal(pt_semaphore_value(s, &value), 0);
    assert_int_equal(value, 2);
    /* an RLock held twice on host 1 is not another host's to take */
    assert_int_equal(pt_rlock_open(c, "R", PT_OPEN_CLUSTER, 0, &rl), 0);
    assert_int_equal(pt_rlock_acquire(rl, 1, DEADLINE), 1);
    assert_int_equal(pt_rlock_acquire(rl, 1, DEADLINE), 1);
    assert_int_equal(pt_client_open(&c1, daemons[2].sock), 0);
    assert_int_equal(pt_rlock_open(c1, "R", PT_OPEN_CLUSTER, 0, &other), 0);
    assert_int_equal(pt_rlock_acquire(other, 0, PT_FOREVER), 0);
    assert_int_equal(pt_rlock_release(rl), 0);
    assert_int_equal(pt_rlock_acquire(other, 0, PT_FOREVER), 0); /* still held once */
    assert_int_equal(pt_rlock_release(rl), 0);
    assert_int_equal(pt_rlock_acquire(other, 1, DEADLINE), 1);
    assert_int_equal(pt_rlock_release(other), 0);
    /* host 1's "R" is not the cluster's "R" */
    pt_rlock_close(rl);
    assert_int_equal(pt_rlock_open(c, "R", 0, 0, &rl), 0);
    assert_int_equal(pt_rlock_acquire(rl, 0, PT_FOREVER), 1);
    pt_rlock_close(rl);
    pt_rlock_close(other);
    pt_semaphore_close(s);
    pt_condition_close(cv);
    pt_event_close(e);
    pt_client_close(c1);
    pt_client_close(c);
}

/* ---- time, death and partitions ------------------------------------- */

/* A Lock held on host 0: host 1's acquire with a timeout returns False
 * after it, not before; the holder's death (its process, not its daemon)
 * frees the lock at once for host 2. */
static int hold_until_killed(pt_client *c, int host, void *arg)
{
    pt_lock *l;
    uint64_t token;

    (void)host;
    CHECK(pt_lock_open(c, (const char *)arg, PT_OPEN_CLUSTER, 0, &l) == 0);
    CHECK(pt_lock_acquire_fenced(l, 1, DEADLINE, &token) == 1);
    sh->token[0] = token;
    atomic_store(&sh->ready, 1);
    for (;;)
        pause();
}

/* What `pythreadctl show --cluster --json NAME` through host's daemon says
 * of the first holder's host, into out; -1 when it failed (the copy there
 * may not have the object yet) or showed no holder. */
static int ctl_holder_host(int host, const char *name, char *out)
{
    char cmd[512], buf[8192], *p;
    size_t n;
    FILE *f;

    snprintf(cmd, sizeof(cmd), "PYTHREAD_SOCKET='%s' '%s' show --cluster --json '%s' 2>/dev/null",
             daemons[host].sock, PT_CTL_PATH, name);
    if ((f = popen(cmd, "r")) == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    if (pclose(f) != 0)
        return -1;
    p = strstr(buf, "\"holders\"");
    if (p == NULL || (p = strstr(p, "\"host\":\"")) == NULL)
        return -1;
    return sscanf(p + strlen("\"host\":\""), "%15[^\"]", out) == 1 ? 0 : -1;
}

static void test_timeout_and_holder_death(void **state)
{
    pt_client *c = NULL, *c2 = NULL;
    pt_lock *l = NULL, *l2 = NULL;
    pt_inspect_detail *d = NULL;
    char host[16];
    pid_t holder;
    double t0, took;
    uint64_t token;

    (void)state;
    holder = worker(0, hold_until_killed, "T");
    wait_flag(&sh->ready, 1);
    assert_int_equal(pt_client_open(&c, daemons[1].sock), 0);
    /* inspection through another host: the holder, its host and pid, once
     * that host's copy has applied the hold (a look reads the copy, which
     * follows the log by the watch's delivery) */
    for (double end = now_s() + DEADLINE;
         pt_inspect_cluster_show(c, "T", &d) != 0 || d->n_holders == 0;) {
        pt_inspect_detail_free(d);
        d = NULL;
        assert_true(now_s() < end);
        nap();
    }
    assert_int_equal(d->n_holders, 1);
    assert_string_equal(d->holders[0].host, "h0");
    assert_int_equal(d->holders[0].pid, holder);
    assert_true(d->object.locked);
    pt_inspect_detail_free(d);
    assert_int_equal(pt_inspect_show(c, "T", &d), PT_ENOENT); /* not host 1's "T" */
    for (double end = now_s() + DEADLINE; ctl_holder_host(2, "T", host) != 0;) {
        assert_true(now_s() < end);
        nap();
    }
    assert_string_equal(host, "h0");
    assert_int_equal(pt_lock_open(c, "T", PT_OPEN_CLUSTER, 0, &l), 0);
    t0 = now_s();
    assert_int_equal(pt_lock_acquire(l, 1, 0.5), 0);
    took = now_s() - t0;
    print_message("a 0.5 s timeout across hosts returned after %.3f s\n", took);
    assert_true(took >= 0.45 && took < 0.5 + 2.0);
    assert_int_equal(pt_client_open(&c2, daemons[2].sock), 0);
    assert_int_equal(pt_lock_open(c2, "T", PT_OPEN_CLUSTER, 0, &l2), 0);
    kill(holder, SIGKILL);
    waitpid(holder, NULL, 0);
    t0 = now_s();
    assert_int_equal(pt_lock_acquire_fenced(l2, 1, DEADLINE, &token), 1);
    print_message("the holder's death freed the lock for another host in %.3f s\n", now_s() - t0);
    assert_true(now_s() - t0 < 2.0);
    assert_true(token > sh->token[0]);
    pt_lock_close(l2);
    pt_lock_close(l);
    pt_client_close(c2);
    pt_client_close(c);
}

/* A process on host 0 holding the cluster lock name (its token in
 * sh->token[0]); *c and *l open it through host 1, where it is seen held.
 * The holder's pid. */
static pid_t held_on_host0(const char *name, pt_client **c, pt_lock **l)
{
    pid_t holder = worker(0, hold_until_killed, (void *)name);

    wait_flag(&sh->ready, 1);
    assert_int_equal(pt_client_open(c, daemons[1].sock), 0);
    assert_int_equal(pt_lock_open(*c, name, PT_OPEN_CLUSTER, 0, l), 0);
    assert_int_equal(pt_lock_acquire(*l, 0, PT_FOREVER), 0);
    return holder;
}

/* kill -9 of host 0's daemon while its process holds "K": host 1's waiter
 * gets "K" once host 0's lease has ended, within TTL + 1 s of the kill. */
static void test_daemon_killed_gives_back_after_ttl(void **state)
{
    pt_client *c = NULL;
    pt_lock *l = NULL;
    pid_t holder;
    double t0, took;
    uint64_t token;

    (void)state;
    holder = held_on_host0("K", &c, &l);
    daemon_signal(0, SIGKILL);
    daemon_reap(0);
    t0 = now_s();
    assert_int_equal(pt_lock_acquire_fenced(l, 1, DEADLINE, &token), 1);
    took = now_s() - t0;
    print_message("host 0's daemon killed: its lock went to host 1 after %.2f s (ttl %d s)\n", took,
                  TTL);
    assert_true(took < TTL + 1.0);
    assert_true(token > sh->token[0]);
    {
        pt_inspect_status st;

        status_with(2, HOSTS - 1, &st); /* host 0 is gone from the copies */
        assert_null(strstr(st.cluster_members, "h0"));
    }
    kill(holder, SIGKILL);
    waitpid(holder, NULL, 0);
    pt_lock_close(l);
    pt_client_close(c);
    /* started again at once under its name: the name's lease may still
     * stand, so it tries again once that can have ended, then serves */
    daemon_start(0);
    t0 = now_s();
    for (int r = -1; r != 0;) {
        pt_client *c0 = NULL;
        pt_lock *l0 = NULL;

        assert_true(now_s() - t0 < TTL + DEADLINE);
        assert_int_equal(pt_client_open(&c0, daemons[0].sock), 0);
        r = pt_lock_open(c0, "K", PT_OPEN_CLUSTER, 0, &l0);
        if (r == 0)
            pt_lock_close(l0);
        pt_client_close(c0);
        if (r != 0)
            nap();
    }
    print_message("host 0's daemon, started again under its name, served after %.2f s\n",
                  now_s() - t0);
}

/* Holds "P" and, under it, keeps writing its token to a fenced store (the
 * shared last_token: a write with a token below the last one is refused
 * and counted) until its next call tells it the lock is lost. */
static int hold_fenced(pt_client *c, int host, void *arg)
{
    pt_lock *l;
    uint64_t token;
    int r;

    (void)host, (void)arg;
    CHECK(pt_lock_open(c, "P", PT_OPEN_CLUSTER, 0, &l) == 0);
    CHECK(pt_lock_acquire_fenced(l, 1, DEADLINE, &token) == 1);
    sh->token[0] = token;
    atomic_store(&sh->ready, 1);
    wait_flag(&sh->go, 1); /* the test stopped and resumed the daemon */
    if (token < sh->last_token)
        atomic_fetch_add(&sh->token_back, 1); /* the store refuses the stale write */
    else
        sh->last_token = token;
    r = pt_lock_release(l);
    sh->result[0] = r;
    return r < 0 ? 0 : 1; /* its release must fail: the lock is not its any more */
}

/* SIGSTOP of host 0's daemon past its lease (a partition): host 1 gets
 * "P" with a larger token; after SIGCONT host 0's holder learns its lock
 * is gone (its release fails), and its stale write is refused by the
 * fence. */
static void test_partitioned_daemon_holder_learns(void **state)
{
    pt_client *c = NULL;
    pt_lock *l = NULL;
    pid_t holder;
    uint64_t token;
    double t0;

    (void)state;
    holder = worker(0, hold_fenced, NULL);
    wait_flag(&sh->ready, 1);
    assert_int_equal(pt_client_open(&c, daemons[1].sock), 0);
    assert_int_equal(pt_lock_open(c, "P", PT_OPEN_CLUSTER, 0, &l), 0);
    daemon_signal(0, SIGSTOP);
    t0 = now_s();
    assert_int_equal(pt_lock_acquire_fenced(l, 1, DEADLINE, &token), 1);
    print_message("host 0's daemon stopped: its lock went to host 1 after %.2f s\n", now_s() - t0);
    assert_true(token > sh->token[0]);
    sh->last_token = token; /* host 1 wrote under its token */
    daemon_signal(0, SIGCONT);
    atomic_store(&sh->go, 1);
    {
        pid_t one[1] = {holder};

        join(one, 1);
    }
    print_message("host 0's holder was told: %s\n", pt_strerror(sh->result[0]));
    assert_int_equal(atomic_load(&sh->token_back), 1);
    assert_int_equal(pt_lock_release(l), 0);
    pt_lock_close(l);
    pt_client_close(c);
}

/* ---- owned locks ------------------------------------------------------ */

#define OWN_ROUNDS 200

/* The text `pythreadctl ARGS` prints through host's daemon, into out; -1
 * when it failed. */
static int ctl_output(int host, const char *args, char *out, size_t size)
{
    char cmd[512];
    size_t n;
    FILE *f;

    snprintf(cmd, sizeof(cmd), "PYTHREAD_SOCKET='%s' '%s' %s 2>/dev/null", daemons[host].sock,
             PT_CTL_PATH, args);
    if ((f = popen(cmd, "r")) == NULL)
        return -1;
    n = fread(out, 1, size - 1, f);
    out[n] = '\0';
    return pclose(f) == 0 ? 0 : -1;
}

/* What `pythreadctl show --cluster --json NAME` through host's daemon says
 * of the lock: its last token and its first holder's host. -1 when it
 * failed or showed no holder. */
static int ctl_lock_seen(int host, const char *name, uint64_t *token, char *holder)
{
    char args[128], buf[8192], *p;
    unsigned long long t;

    snprintf(args, sizeof(args), "show --cluster --json '%s'", name);
    if (ctl_output(host, args, buf, sizeof(buf)) < 0 || (p = strstr(buf, "\"token\":")) == NULL ||
        sscanf(p + strlen("\"token\":"), " %llu", &t) != 1)
        return -1;
    *token = t;
    p = strstr(buf, "\"holders\"");
    if (p == NULL || (p = strstr(p, "\"host\":\"")) == NULL)
        return -1;
    return sscanf(p + strlen("\"host\":\""), "%15[^\"]", holder) == 1 ? 0 : -1;
}

/* Host's status once it says it owns n cluster locks. */
static void status_owning(int host, uint64_t n, pt_inspect_status *st)
{
    for (double end = now_s() + DEADLINE;;) {
        status_with(host, HOSTS, st);
        if (st->cluster_owned == n)
            break;
        assert_true(now_s() < end);
        nap();
    }
}

/* On host 0: OWN_ROUNDS turns under "O" (its last token in sh->token[0]);
 * then, once host 1 holds it, a non-blocking acquire (sh->result[0]) and a
 * blocking one, had once host 1 released (its token in sh->token[2]), held
 * until the test has looked. */
static int own_rounds(pt_client *c, int host, void *arg)
{
    pt_lock *l;
    uint64_t token, last = 0;

    (void)host, (void)arg;
    CHECK(pt_lock_open(c, "O", PT_OPEN_CLUSTER, 0, &l) == 0);
    for (int i = 0; i < OWN_ROUNDS; i++) {
        CHECK(pt_lock_acquire_fenced(l, 1, DEADLINE, &token) == 1);
        if (token <= last)
            atomic_fetch_add(&sh->token_back, 1);
        last = token;
        CHECK(pt_lock_release(l) == 0);
    }
    sh->token[0] = last;
    atomic_store(&sh->ready, 1);
    wait_flag(&sh->go, 1); /* host 1 holds it */
    sh->result[0] = pt_lock_acquire(l, 0, PT_FOREVER);
    atomic_store(&sh->ready, 2);
    CHECK(pt_lock_acquire_fenced(l, 1, 10.0, &token) == 1);
    sh->token[2] = token;
    atomic_store(&sh->ready, 3);
    wait_flag(&sh->go, 2); /* the test looked */
    CHECK(pt_lock_release(l) == 0);
    CHECK(pt_lock_close(l) == 0);
    return 0;
}

/* A Lock that only host 0 uses is host 0's: its daemon answers the calls
 * ahead of the log (status counts them, and the lock), each token larger
 * than the one before. Host 1's acquire takes it from host 0 with a larger
 * token; meanwhile host 0's non-blocking acquire is refused, and its
 * blocking one gets the lock after host 1's release, larger still; hosts 1
 * and 2 then see the same holder and token. */
static void test_owned_lock_answers_ahead(void **state)
{
    pt_client *c = NULL;
    pt_lock *l = NULL;
    pt_inspect_status st;
    pt_inspect_detail *d = NULL;
    char buf[8192], holder[16];
    uint64_t token, seen;
    pid_t owner;
    double t0;

    (void)state;
    t0 = now_s();
    owner = worker(0, own_rounds, NULL);
    wait_flag(&sh->ready, 1);
    assert_int_equal(atomic_load(&sh->ready), 1);
    print_message("%d acquire/release pairs on host 0 took %.2f s\n", OWN_ROUNDS, now_s() - t0);
    assert_int_equal(atomic_load(&sh->token_back), 0);
    status_owning(0, 1, &st);
    print_message("host 0 owns %llu lock(s), answered %llu calls ahead\n",
                  (unsigned long long)st.cluster_owned, (unsigned long long)st.cluster_ahead);
    assert_true(st.cluster_ahead >= 300);
    assert_true(st.cluster_ahead <= 2 * OWN_ROUNDS);
    for (int i = 1; i < HOSTS; i++) {
        status_with(i, HOSTS, &st);
        assert_int_equal(st.cluster_owned, 0);
        assert_int_equal(st.cluster_ahead, 0);
    }
    /* pythreadctl status says so too */
    assert_int_equal(ctl_output(0, "status --json", buf, sizeof(buf)), 0);
    assert_non_null(strstr(buf, "\"owned_locks\":1"));
    assert_non_null(strstr(buf, "\"answered_ahead\":"));
    assert_int_equal(ctl_output(0, "status", buf, sizeof(buf)), 0);
    assert_non_null(strstr(buf, "owns 1 locks"));

    /* host 1 takes it: host 0 hands it back */
    assert_int_equal(pt_client_open(&c, daemons[1].sock), 0);
    assert_int_equal(pt_lock_open(c, "O", PT_OPEN_CLUSTER, 0, &l), 0);
    t0 = now_s();
    assert_int_equal(pt_lock_acquire_fenced(l, 1, 10.0, &token), 1);
    print_message("host 1 took host 0's lock after %.3f s, token %llu after %llu\n", now_s() - t0,
                  (unsigned long long)token, (unsigned long long)sh->token[0]);
    assert_true(token > sh->token[0]);
    sh->token[1] = token;
    atomic_store(&sh->go, 1);
    wait_flag(&sh->ready, 2);
    assert_int_equal(atomic_load(&sh->ready), 2);
    assert_int_equal(sh->result[0], 0); /* the lock moved: host 0 cannot answer ahead */
    /* host 0's blocking acquire waits (as host 1's copy shows), then has it */
    for (double end = now_s() + DEADLINE;
         pt_inspect_cluster_show(c, "O", &d) != 0 || d->n_waiters == 0;) {
        pt_inspect_detail_free(d);
        d = NULL;
        assert_true(now_s() < end);
        nap();
    }
    assert_string_equal(d->waiters[0].host, "h0");
    assert_int_equal(d->waiters[0].pid, owner);
    pt_inspect_detail_free(d);
    d = NULL;
    assert_int_equal(pt_lock_release(l), 0);
    wait_flag(&sh->ready, 3);
    assert_int_equal(atomic_load(&sh->ready), 3);
    assert_true(sh->token[2] > token);
    /* hosts 1 and 2 agree: host 0's process holds it, with that token */
    for (double end = now_s() + DEADLINE;;) {
        int agree = pt_inspect_cluster_show(c, "O", &d) == 0 && d->n_holders == 1 &&
                    strcmp(d->holders[0].host, "h0") == 0 && d->object.token == sh->token[2] &&
                    ctl_lock_seen(2, "O", &seen, holder) == 0 && strcmp(holder, "h0") == 0 &&
                    seen == sh->token[2];

        pt_inspect_detail_free(d);
        d = NULL;
        if (agree)
            break;
        assert_true(now_s() < end);
        nap();
    }
    atomic_store(&sh->go, 2);
    {
        pid_t one[1] = {owner};

        join(one, 1);
    }
    pt_lock_close(l);
    pt_client_close(c);
}

#define JUMP_ROUNDS 300

/* On host 0: JUMP_ROUNDS turns under "J", then holds it (its token in
 * sh->token[0]) until killed. */
static int own_then_hold(pt_client *c, int host, void *arg)
{
    pt_lock *l;
    uint64_t token, last = 0;

    (void)host, (void)arg;
    CHECK(pt_lock_open(c, "J", PT_OPEN_CLUSTER, 0, &l) == 0);
    for (int i = 0; i < JUMP_ROUNDS; i++) {
        CHECK(pt_lock_acquire_fenced(l, 1, DEADLINE, &token) == 1);
        if (token <= last)
            atomic_fetch_add(&sh->token_back, 1);
        last = token;
        CHECK(pt_lock_release(l) == 0);
    }
    CHECK(pt_lock_acquire_fenced(l, 1, DEADLINE, &token) == 1);
    if (token <= last)
        atomic_fetch_add(&sh->token_back, 1);
    sh->token[0] = token;
    atomic_store(&sh->ready, 1);
    for (;;)
        pause();
}

/* On host 1: opens "J", then at the test's go acquires it (its result, token
 * and the time in sh->result[1], sh->token[1], sh->at[1]) and releases. */
static int acquire_at_go(pt_client *c, int host, void *arg)
{
    pt_lock *l;
    uint64_t token = 0;

    (void)arg;
    CHECK(pt_lock_open(c, "J", PT_OPEN_CLUSTER, 0, &l) == 0);
    atomic_store(&sh->done, 1);
    wait_flag(&sh->go, 1);
    sh->result[host] = pt_lock_acquire_fenced(l, 1, TTL + DEADLINE, &token);
    sh->token[host] = token;
    sh->at[host] = now_s();
    CHECK(sh->result[host] == 1);
    CHECK(pt_lock_release(l) == 0);
    CHECK(pt_lock_close(l) == 0);
    return 0;
}

/* kill -9 of host 0's daemon right after its process took "J", answered
 * ahead like the turns before it, whose entries may not all have reached
 * the log: host 1's waiter gets "J" once host 0's lease has ended, with a
 * token above every one host 0's process was given, and host 2 after it a
 * larger one still. */
static void test_owner_killed_tokens_jump(void **state)
{
    pt_client *c = NULL;
    pt_lock *l = NULL;
    pid_t holder, waiter;
    uint64_t token;
    double t0;

    (void)state;
    waiter = worker(1, acquire_at_go, NULL);
    wait_flag(&sh->done, 1);
    assert_int_equal(atomic_load(&sh->done), 1);
    holder = worker(0, own_then_hold, NULL);
    while (atomic_load(&sh->ready) < 1) {
        int st;

        assert_int_equal(waitpid(holder, &st, WNOHANG), 0); /* it did not fail */
    }
    atomic_store(&sh->go, 1); /* host 1's acquire goes */
    daemon_signal(0, SIGKILL);
    t0 = now_s();
    daemon_reap(0);
    {
        pid_t one[1] = {waiter};

        join(one, 1);
    }
    print_message("host 0's daemon killed: host 1 got its lock after %.2f s (ttl %d s), token "
                  "%llu after host 0's %llu\n",
                  sh->at[1] - t0, TTL, (unsigned long long)sh->token[1],
                  (unsigned long long)sh->token[0]);
    assert_int_equal(atomic_load(&sh->token_back), 0);
    assert_true(sh->at[1] - t0 < TTL + 3.0);
    assert_true(sh->token[1] > sh->token[0]);
    assert_int_equal(pt_client_open(&c, daemons[2].sock), 0);
    assert_int_equal(pt_lock_open(c, "J", PT_OPEN_CLUSTER, 0, &l), 0);
    assert_int_equal(pt_lock_acquire_fenced(l, 1, DEADLINE, &token), 1);
    assert_true(token > sh->token[1]);
    assert_int_equal(pt_lock_release(l), 0);
    kill(holder, SIGKILL);
    waitpid(holder, NULL, 0);
    pt_lock_close(l);
    pt_client_close(c);
}

/* ---- unlink ------------------------------------------------------------ */

/* An unlink of a cluster name through host 1 removes it on every host,
 * sem_unlink style: host 0's open handle keeps its object (and its hold),
 * an open of the name afterwards through host 2 makes another object, and
 * the host objects of that name are not touched. pythreadctl unlink
 * --cluster does the same. */
static void test_unlink_across_hosts(void **state)
{
    pt_client *c[HOSTS] = {NULL};
    pt_lock *held = NULL, *fresh = NULL, *host_l = NULL, *x = NULL;
    char cmd[512];

    (void)state;
    for (int i = 0; i < HOSTS; i++)
        assert_int_equal(pt_client_open(&c[i], daemons[i].sock), 0);
    assert_int_equal(pt_lock_open(c[0], "U", PT_OPEN_CLUSTER, 0, &held), 0);
    assert_int_equal(pt_lock_acquire(held, 1, DEADLINE), 1);
    assert_int_equal(pt_lock_open(c[1], "U", 0, 0, &host_l), 0); /* host 1's own "U" */
    assert_int_equal(pt_unlink_cluster(c[1], "U"), 0);
    assert_int_equal(pt_unlink_cluster(c[1], "U"), PT_ENOENT);
    assert_int_equal(pt_lock_open(c[2], "U", PT_OPEN_CLUSTER | PT_OPEN_EXISTING, 0, &x), PT_ENOENT);
    assert_int_equal(pt_lock_open(c[2], "U", PT_OPEN_CLUSTER, 0, &fresh), 0);
    assert_int_equal(pt_lock_acquire(fresh, 0, PT_FOREVER), 1); /* another object */
    assert_int_equal(pt_lock_locked(held), 1);                  /* the old one still held */
    assert_int_equal(pt_lock_release(held), 0);
    assert_int_equal(pt_lock_release(fresh), 0);
    assert_int_equal(pt_lock_close(host_l), 0);
    assert_int_equal(pt_lock_open(c[1], "U", PT_OPEN_EXISTING, 0, &host_l), 0);
    assert_int_equal(pt_lock_close(host_l), 0);
    snprintf(cmd, sizeof(cmd), "PYTHREAD_SOCKET='%s' '%s' unlink --cluster U", daemons[0].sock,
             PT_CTL_PATH);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(pt_lock_open(c[1], "U", PT_OPEN_CLUSTER | PT_OPEN_EXISTING, 0, &x), PT_ENOENT);
    assert_int_equal(pt_lock_open(c[1], "U", PT_OPEN_EXISTING, 0, &host_l), 0);
    assert_int_equal(pt_lock_close(host_l), 0);
    pt_lock_close(fresh);
    pt_lock_close(held);
    for (int i = 0; i < HOSTS; i++)
        pt_client_close(c[i]);
}

/* ---- stops and restarts ----------------------------------------------- */

/* SIGTERM of host 0's daemon while its process holds "S": the daemon
 * leaves the cluster as it stops (its lease revoked), so host 1's waiter
 * gets "S" at once, not after the lease's ttl. */
static void test_clean_stop_gives_back_at_once(void **state)
{
    pt_client *c = NULL;
    pt_lock *l = NULL;
    pid_t holder;
    int st = 0;
    double t0, took;
    uint64_t token;

    (void)state;
    holder = held_on_host0("S", &c, &l);
    t0 = now_s();
    daemon_signal(0, SIGTERM);
    waitpid(daemons[0].pid, &st, 0);
    daemons[0].pid = 0;
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(pt_lock_acquire_fenced(l, 1, DEADLINE, &token), 1);
    took = now_s() - t0;
    print_message("host 0's daemon stopped: its lock went to host 1 after %.2f s (ttl %d s)\n",
                  took, TTL_LONG);
    assert_true(took < TTL_LONG / 2.0);
    assert_true(token > sh->token[0]);
    kill(holder, SIGKILL);
    waitpid(holder, NULL, 0);
    pt_lock_close(l);
    pt_client_close(c);
    /* and it starts again at once under its name: the name is free */
    t0 = now_s();
    daemon_start(0);
    {
        pt_client *c0 = NULL;
        pt_lock *l0 = NULL;

        assert_int_equal(pt_client_open(&c0, daemons[0].sock), 0);
        assert_int_equal(pt_lock_open(c0, "S", PT_OPEN_CLUSTER, 0, &l0), 0);
        print_message("started again, it served a cluster call after %.2f s\n", now_s() - t0);
        assert_true(now_s() - t0 < TTL_LONG / 2.0);
        pt_lock_close(l0);
        pt_client_close(c0);
    }
}

/* A process on host 0 blocked on "W", which host 1 holds: its wait ends
 * with the daemon's restart, PT_ESESSION, instead of lasting for ever. */
static int wait_across_restart(pt_client *c, int host, void *arg)
{
    pt_lock *l;

    (void)host, (void)arg;
    CHECK(pt_lock_open(c, "W", PT_OPEN_CLUSTER, 0, &l) == 0);
    atomic_store(&sh->ready, 1);
    sh->result[0] = pt_lock_acquire(l, 1, PT_FOREVER);
    return 0;
}

/* Whether client c's loss descriptor says its session ended, within the
 * deadline. */
static int session_lost(int loss_fd)
{
    struct pollfd p = {.fd = loss_fd, .events = POLLIN};

    return poll(&p, 1, (int)(DEADLINE * 1000)) == 1 && (p.revents & POLLIN);
}

/* Host 0's daemon restarted with --state-dir (SIGUSR2, or a kill -9 and a
 * start) while a process holds cluster objects through it: its session
 * ends, never kept nor taken up (its cluster holds ended with the daemon's
 * place in the cluster), so the process hears at once, through its loss
 * descriptor and its blocked call, as when the lease is lost; a process
 * with host objects only keeps its session and its holds. */
static void restart_ends_cluster_sessions(int crash)
{
    pt_client *c0 = NULL, *c1 = NULL, *kept = NULL, *other = NULL;
    pt_lock *host_l = NULL, *old = NULL, *again = NULL, *w1 = NULL, *r1 = NULL, *k = NULL,
            *probe = NULL;
    pid_t waiter;
    int loss;
    double t0;

    assert_int_equal(pt_client_open(&c1, daemons[1].sock), 0);
    assert_int_equal(pt_lock_open(c1, "W", PT_OPEN_CLUSTER, 0, &w1), 0);
    assert_int_equal(pt_lock_acquire(w1, 1, DEADLINE), 1);
    waiter = worker(0, wait_across_restart, NULL);
    wait_flag(&sh->ready, 1);
    assert_int_equal(pt_client_open(&kept, daemons[0].sock), 0);
    assert_int_equal(pt_lock_open(kept, "K", 0, 0, &k), 0);
    assert_int_equal(pt_lock_acquire(k, 1, DEADLINE), 1);
    assert_int_equal(pt_client_open(&c0, daemons[0].sock), 0);
    assert_true((loss = pt_client_loss_fd(c0)) >= 0);
    assert_int_equal(pt_lock_open(c0, "H", 0, 0, &host_l), 0);
    assert_int_equal(pt_lock_acquire(host_l, 1, DEADLINE), 1);
    assert_int_equal(pt_lock_open(c0, "R", PT_OPEN_CLUSTER, 0, &old), 0);
    assert_int_equal(pt_lock_acquire(old, 1, DEADLINE), 1);
    assert_int_equal(pt_lock_open(c1, "R", PT_OPEN_CLUSTER, 0, &r1), 0);
    assert_int_equal(pt_lock_acquire(r1, 0, PT_FOREVER), 0);

    t0 = now_s();
    if (crash) {
        daemon_signal(0, SIGKILL);
        daemon_reap(0);
        daemon_start(0);
    } else {
        daemon_signal(0, SIGUSR2);
    }
    assert_true(session_lost(loss));
    print_message("%s: the cluster holder's session ended after %.2f s\n",
                  crash ? "kill -9 and a start" : "SIGUSR2", now_s() - t0);
    {
        pid_t one[1] = {waiter};

        join(one, 1);
    }
    assert_int_equal(sh->result[0], PT_ESESSION);
    assert_int_equal(pt_lock_release(old), PT_ESESSION);
    /* the process with host objects only kept its session and hold */
    assert_int_equal(pt_client_open(&other, daemons[0].sock), 0);
    assert_int_equal(pt_lock_open(other, "K", 0, 0, &probe), 0);
    assert_int_equal(pt_lock_acquire(probe, 0, PT_FOREVER), 0);
    assert_int_equal(pt_lock_release(k), 0);
    pt_lock_close(probe);
    /* the cluster holder's host lock went with its session */
    assert_int_equal(pt_lock_open(other, "H", 0, 0, &probe), 0);
    assert_int_equal(pt_lock_acquire(probe, 0, PT_FOREVER), 1);
    assert_int_equal(pt_lock_release(probe), 0);
    pt_lock_close(probe);
    /* its cluster lock: host 1's waiter has it, at once after SIGUSR2 (the
     * lease revoked), after the lease's end after a kill */
    assert_int_equal(pt_lock_acquire(r1, 1, TTL_LONG + DEADLINE), 1);
    print_message("host 1 got the cluster lock %.2f s after the %s\n", now_s() - t0,
                  crash ? "kill" : "SIGUSR2");
    if (!crash)
        assert_true(now_s() - t0 < TTL_LONG / 2.0);
    /* the process opens it again, on a session of its own */
    for (int r = -1; r != 0;) {
        r = pt_lock_open(c0, "R", PT_OPEN_CLUSTER, 0, &again);
        assert_true(r == 0 || now_s() - t0 < TTL_LONG + DEADLINE);
    }
    assert_int_equal(pt_lock_release(r1), 0);
    assert_int_equal(pt_lock_acquire(again, 1, DEADLINE), 1);
    assert_int_equal(pt_lock_release(again), 0);
    assert_int_equal(pt_lock_release(w1), 0);
    pt_lock_close(again);
    pt_lock_close(old);
    pt_lock_close(host_l);
    pt_lock_close(k);
    pt_lock_close(r1);
    pt_lock_close(w1);
    pt_client_close(other);
    pt_client_close(kept);
    pt_client_close(c0);
    pt_client_close(c1);
}

/* Host 0's daemon again, with a state directory. */
static void state_dir_for_host0(void)
{
    daemon_signal(0, SIGTERM);
    daemon_reap(0);
    snprintf(daemons[0].state, sizeof(daemons[0].state), "%s/t%d-state", dir, test_no);
    assert_int_equal(mkdir(daemons[0].state, 0700), 0);
    daemon_start(0);
}

static void test_upgrade_ends_cluster_sessions(void **state)
{
    (void)state;
    state_dir_for_host0();
    restart_ends_cluster_sessions(0);
}

static void test_crash_ends_cluster_sessions(void **state)
{
    (void)state;
    state_dir_for_host0();
    restart_ends_cluster_sessions(1);
}

/* Three hosts counting under "L" while the etcd leader is killed: every
 * round is done, none overlaps. */
static void test_etcd_leader_killed_midway(void **state)
{
    pid_t pids[HOSTS];
    int leader;

    (void)state;
    for (int i = 0; i < HOSTS; i++)
        pids[i] = worker(i, count_rounds, NULL);
    while (atomic_load(&sh->rounds) < ROUNDS)
        nap();
    leader = pt_etcd_cluster_kill_leader(&etcd, DEADLINE);
    assert_true(leader >= 0);
    print_message("killed etcd leader m%d after %ld rounds\n", leader,
                  (long)atomic_load(&sh->rounds));
    join(pids, HOSTS);
    assert_int_equal(atomic_load(&sh->rounds), HOSTS * ROUNDS);
    assert_int_equal(atomic_load(&sh->overlap), 0);
    assert_int_equal(atomic_load(&sh->token_back), 0);
    assert_int_equal(pt_etcd_cluster_restart(&etcd, leader, DEADLINE), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lock_excludes_across_hosts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_kind_across_hosts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_and_holder_death, setup, teardown),
        cmocka_unit_test_setup_teardown(test_daemon_killed_gives_back_after_ttl, setup_short,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_partitioned_daemon_holder_learns, setup_short,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unlink_across_hosts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clean_stop_gives_back_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_ends_cluster_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_ends_cluster_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_etcd_leader_killed_midway, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owned_lock_answers_ahead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owner_killed_tokens_jump, setup_short, teardown),
    };

    if (getenv("PT_IT_FILTER") != NULL)
        cmocka_set_test_filter(getenv("PT_IT_FILTER")); /* e.g. "test_owne*" */

    return cmocka_run_group_tests_name("integration.cluster", tests, group_setup, group_teardown);
}
